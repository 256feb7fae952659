/*
 * tls.h - the certificate and key HTTPS serves, loaded from PEM files and
 * replaceable while the node runs (SIGHUP).
 *
 * libmicrohttpd hands certificate selection to GnuTLS's retrieve callback,
 * which has no user pointer: the generation being served is therefore one
 * process-wide pointer, set by the main thread and read by handshakes on
 * MHD workers. Generations are kept until the server stops, because a
 * handshake may still use the one it was given when a reload swaps it.
 *
 * Threads: load, set and free on the main thread; the callback on MHD
 * workers.
 */
#ifndef API_TLS_H
#define API_TLS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

struct api_tls;

/* Loads a PEM certificate chain and its private key and checks that they
 * belong together. -CELLAR_EINVAL with a message in err. */
int api_tls_load(const char *cert_file, const char *key_file, struct api_tls **out, char *err,
                 size_t errlen);
void api_tls_free(struct api_tls *t);

/* Whether a and b were loaded from identical file contents. */
bool api_tls_same(const struct api_tls *a, const struct api_tls *b);

/* What new handshakes get from now on (borrowed; NULL: none). */
void api_tls_serve(struct api_tls *t);

/* The GnuTLS certificate retrieve callback for MHD_OPTION_HTTPS_CERT_CALLBACK. */
int api_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                     const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                     gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey);

#endif

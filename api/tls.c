/*
 * tls.c - HTTPS credentials (tls.h): PEM files into GnuTLS certificates and
 * a private key, and the retrieve callback that hands them to handshakes.
 *
 * Threads: loading on the main thread; api_tls_retrieve on MHD workers,
 * reading the served generation through an atomic pointer.
 */
#include "api/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "common/cellar.h"

#define MAX_CHAIN 8

struct api_tls {
    gnutls_pcert_st certs[MAX_CHAIN];
    unsigned n_certs;
    gnutls_privkey_t key;
    unsigned char digest[32]; /* of the two files' contents */
};

/* The generation new handshakes get. The one piece of process-wide state
 * in the API layer: GnuTLS's retrieve callback has no user pointer. */
static struct api_tls *served;

static int load_file(const char *path, gnutls_datum_t *out, char *err, size_t errlen)
{
    int rc = gnutls_load_file(path, out);
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot read (%s)", path, gnutls_strerror(rc));
        return -CELLAR_EINVAL;
    }
    return 0;
}

int api_tls_load(const char *cert_file, const char *key_file, struct api_tls **out, char *err,
                 size_t errlen)
{
    int rc = 0;
    gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
    gnutls_certificate_credentials_t check = NULL;
    struct api_tls *t = cellar_xcalloc(1, sizeof(*t));
    if ((rc = load_file(cert_file, &cert, err, errlen)) < 0 ||
        (rc = load_file(key_file, &key, err, errlen)) < 0)
        goto out;
    /* GnuTLS checks here that the key belongs to the first certificate. */
    gnutls_certificate_allocate_credentials(&check);
    int g = gnutls_certificate_set_x509_key_mem(check, &cert, &key, GNUTLS_X509_FMT_PEM);
    if (g < 0) {
        snprintf(err, errlen, "%s, %s: %s", cert_file, key_file, gnutls_strerror(g));
        rc = -CELLAR_EINVAL;
        goto out;
    }
    t->n_certs = MAX_CHAIN;
    g = gnutls_pcert_list_import_x509_raw(t->certs, &t->n_certs, &cert, GNUTLS_X509_FMT_PEM, 0);
    if (g < 0) {
        t->n_certs = 0;
        snprintf(err, errlen, "%s: %s", cert_file, gnutls_strerror(g));
        rc = -CELLAR_EINVAL;
        goto out;
    }
    gnutls_privkey_init(&t->key);
    g = gnutls_privkey_import_x509_raw(t->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (g < 0) {
        snprintf(err, errlen, "%s: %s", key_file, gnutls_strerror(g));
        rc = -CELLAR_EINVAL;
        goto out;
    }
    gnutls_hash_hd_t h;
    gnutls_hash_init(&h, GNUTLS_DIG_SHA256);
    gnutls_hash(h, cert.data, cert.size);
    gnutls_hash(h, key.data, key.size);
    gnutls_hash_deinit(h, t->digest);
out:
    if (check)
        gnutls_certificate_free_credentials(check);
    if (key.data) {
        memset(key.data, 0, key.size);
        gnutls_free(key.data);
    }
    gnutls_free(cert.data);
    if (rc < 0) {
        api_tls_free(t);
        t = NULL;
    }
    *out = t;
    return rc;
}

void api_tls_free(struct api_tls *t)
{
    if (!t)
        return;
    for (unsigned i = 0; i < t->n_certs; i++)
        gnutls_pcert_deinit(&t->certs[i]);
    if (t->key)
        gnutls_privkey_deinit(t->key);
    free(t);
}

bool api_tls_same(const struct api_tls *a, const struct api_tls *b)
{
    return memcmp(a->digest, b->digest, sizeof(a->digest)) == 0;
}

void api_tls_serve(struct api_tls *t)
{
    __atomic_store_n(&served, t, __ATOMIC_RELEASE);
}

int api_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                     const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                     gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    struct api_tls *t = __atomic_load_n(&served, __ATOMIC_ACQUIRE);
    if (!t)
        return -1;
    *pcert = t->certs;
    *pcert_length = t->n_certs;
    *pkey = t->key;
    return 0;
}

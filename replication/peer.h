/*
 * peer.h - blocking calls from this node to another node's /internal/
 * endpoints: the member's beacons to meta, meta's map pushes to data
 * nodes. Each call carries the cluster secret as its bearer token and
 * leaves from the advertise host (CURLOPT_INTERFACE), so that packet
 * filters between node addresses cut node-to-node traffic.
 *
 * Client requests are not sent from here: the forwarder (forwarder.h)
 * relays those without blocking any HTTP worker.
 *
 * Threads: any thread that may block (the member thread, the admin
 * thread); one curl easy handle per call, no shared state but the
 * read-only configuration.
 */
#ifndef REPL_PEER_H
#define REPL_PEER_H

#include "common/cellar.h"
#include "replication/replica.h"

#define REPL_SECRET_MAX 4096

struct repl_peer_config {
    char secret[REPL_SECRET_MAX];  /* the cluster secret, without its final newline */
    char bind_host[REPL_ADDR_MAX]; /* the advertise host: connections leave from it */
};

/* Reads the cluster secret file (as api/auth.c does: at most one final
 * newline trimmed) and the advertise host into pc. -CELLAR_EINVAL with
 * err set. */
int repl_peer_config_init(struct repl_peer_config *pc, const char *secret_file,
                          const char *advertise, char *err, size_t errlen);

/* POSTs the JSON text body to http://addr/path and waits at most
 * timeout_ms. 0 with the HTTP status in *status and the reply body in
 * reply (appended), or -CELLAR_EUNAVAIL when the peer could not be reached
 * or did not answer in time (the log says why at debug level). */
int repl_peer_post(const struct repl_peer_config *pc, const char *addr, const char *path,
                   const char *body, size_t len, uint64_t timeout_ms, long *status,
                   struct cellar_buf *reply);

#endif

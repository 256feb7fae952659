/*
 * peer.h - blocking calls from this node to another node's /internal/
 * endpoints: the member's beacons to meta, meta's map pushes to data
 * nodes, a primary's prepares, a learner's checkpoint downloads. Each
 * call carries the cluster secret as its bearer token and leaves from the
 * advertise host (CURLOPT_INTERFACE), so that packet filters between node
 * addresses cut node-to-node traffic.
 *
 * Client requests are not sent from here: the forwarder (forwarder.h)
 * relays those without blocking any HTTP worker.
 *
 * Threads: any thread that may block (the member thread, the admin
 * thread, a primary's writer thread, a learning thread); one curl easy
 * handle per call, or a session of the caller's own; no shared state but
 * the read-only configuration.
 */
#ifndef REPL_PEER_H
#define REPL_PEER_H

#include <curl/curl.h>
#include <stdio.h>

#include "common/cellar.h"
#include "replication/replica.h"

#define REPL_SECRET_MAX 4096

struct repl_peer_config {
    char secret[REPL_SECRET_MAX];  /* the cluster secret, without its final newline */
    char iface[REPL_ADDR_MAX + 8]; /* "host!<advertise host>", CURLOPT_INTERFACE ('': none) */
    char meta[REPL_ADDR_MAX];      /* the meta server (meta_servers' first) */
};

/* Reads the cluster secret file (as api/auth.c does: at most one final
 * newline trimmed) and the advertise host into pc. -CELLAR_EINVAL with
 * err set. */
int repl_peer_config_init(struct repl_peer_config *pc, const char *secret_file,
                          const char *advertise, char *err, size_t errlen);

/* Where a node-to-node connection goes and leaves from, for every curl
 * handle that talks to a peer: straight to it, never through a proxy
 * named by the environment (http_proxy, ALL_PROXY: the cluster secret is
 * in every request), from the advertise host. pc outlives the transfer. */
void repl_peer_route(CURL *c, const struct repl_peer_config *pc);

/* POSTs the JSON text body to http://addr/path and waits at most
 * timeout_ms. 0 with the HTTP status in *status and the reply body in
 * reply (appended), or -CELLAR_EUNAVAIL when the peer could not be reached
 * or did not answer in time (the log says why at debug level). */
int repl_peer_post(const struct repl_peer_config *pc, const char *addr, const char *path,
                   const char *body, size_t len, uint64_t timeout_ms, long *status,
                   struct cellar_buf *reply);

/* DELETEs http://addr/path: 0 with the status, as repl_peer_post. */
int repl_peer_delete(const struct repl_peer_config *pc, const char *addr, const char *path,
                     uint64_t timeout_ms, long *status);

/* GETs http://addr/path into out (its body, whatever the status: check
 * *status). No limit on the whole transfer, but one that stalls for 30 s
 * is given up, and one is aborted as soon as *stop is set (atomic).
 * -CELLAR_EUNAVAIL when it did not complete. */
int repl_peer_download(const struct repl_peer_config *pc, const char *addr, const char *path,
                       FILE *out, const bool *stop, long *status);

/* Calls to each peer, their failures and how long their answers took,
 * for /metrics: the forwarder's relays, a primary's prepares. Any thread
 * (a mutex inside). The first REPL_PEER_FIGURES_MAX peers are counted. */
#define REPL_PEER_FIGURES_MAX 64
struct repl_peer_figure {
    char addr[REPL_ADDR_MAX];
    uint64_t calls, errors;
    uint64_t us_sum; /* from the call to its answer (or failure) */
};
struct repl_peer_figures;
struct repl_peer_figures *repl_peer_figures_new(void);
void repl_peer_figures_free(struct repl_peer_figures *f); /* accepts NULL */
void repl_peer_figures_note(struct repl_peer_figures *f, const char *addr, bool error, uint64_t us);
/* Up to max peers' figures into out (none for a NULL f); how many. */
size_t repl_peer_figures_get(struct repl_peer_figures *f, struct repl_peer_figure *out, size_t max);

/* A thread's kept-alive connections to its peers, for calls to several
 * of them at once: a primary's writer thread sends each group to all its
 * secondaries in parallel, on connections it keeps from group to group.
 * One thread at a time. */
struct repl_peer_session;
struct repl_peer_session *repl_peer_session_new(const struct repl_peer_config *pc);
void repl_peer_session_free(struct repl_peer_session *s); /* accepts NULL */

/* POSTs the same body to path on each of the n addrs at once and waits
 * for every answer, each at most timeout_ms; rcs[i], statuses[i] and
 * replies[i] are what repl_peer_post would give for addrs[i]. Each call
 * is noted in figures (NULL: not counted). */
void repl_peer_post_all(struct repl_peer_session *s, const char (*addrs)[REPL_ADDR_MAX], size_t n,
                        const char *path, const char *body, size_t len, uint64_t timeout_ms,
                        int *rcs, long *statuses, struct cellar_buf *replies,
                        struct repl_peer_figures *figures);

#endif

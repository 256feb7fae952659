/*
 * forwarder.h - client requests relayed to the node that serves them: one
 * thread owns a libcurl multi handle, so any number of requests are in
 * flight to peers while no HTTP worker waits (the client's connection is
 * suspended meanwhile, api/forward.c). Connections to a peer are kept
 * alive and reused; they leave from the advertise host, and every request
 * carries the cluster secret and X-Cellar-Forwarded (one hop at most).
 * Batchable requests queued for one peer at the same moment (two or more,
 * all reads or all writes) travel together in one envelope
 * (envelope.h), one HTTP exchange for them all; each still gets its own
 * answer and done call.
 *
 * Ownership: a submitted request belongs to the forwarder until its done
 * callback runs (on the forwarder thread, exactly once); the callback may
 * then keep or free it. The body is borrowed until then.
 *
 * Threads: repl_forwarder_submit from any thread (a mutex-guarded queue
 * and an eventfd); everything else on the forwarder thread.
 */
#ifndef REPL_FORWARDER_H
#define REPL_FORWARDER_H

#include <curl/curl.h>

#include "common/cellar.h"
#include "replication/catalog.h"
#include "replication/peer.h"

struct repl_registry;

struct repl_forward;
typedef void (*repl_forward_fn)(struct repl_forward *f);

struct repl_forward {
    /* Filled by the caller. */
    char method[16];
    char addr[REPL_ADDR_MAX];   /* the peer */
    char *target;               /* path and query, as the client sent them (malloc'ed; freed by
                                   repl_forward_fini) */
    struct curl_slist *headers; /* the client's headers to pass on (freed by repl_forward_fini) */
    const void *body;
    size_t body_len;
    uint64_t timeout_ms;
    repl_forward_fn done;
    void *arg;
    bool batchable; /* may share an envelope with others for the same peer (a data request) */
    /* A request for one partition, relayed to its primary as the node's
     * map had it (table empty: another kind). Should the map name another
     * primary, or none, while it is out, and no longer count addr among
     * the partition's replicas, it ends at once, stale. */
    char table[REPL_TABLE_NAME_MAX + 1];
    uint32_t partition;
    /* Filled by the forwarder before done. */
    int error; /* 0 (an answer came), -CELLAR_EUNAVAIL (the peer was not reached: nothing
                  was sent), -CELLAR_EOUTCOME (sent, but no answer) */
    long status;
    /* Ended early: addr is no longer its partition's primary, nor a
     * replica (error set as for no answer: -CELLAR_EUNAVAIL when it was
     * surely not sent). */
    bool stale;
    struct cellar_buf head; /* the answer's header lines, "Name: value\r\n" each */
    struct cellar_buf body_out;
    uint64_t started_us, ended_us;
    /* The forwarder's own. */
    CURL *easy;
    bool sent;    /* a connection was ready for the request: it may have left */
    bool carrier; /* an envelope's own POST, not a relayed request */
    struct repl_forward *next;
};

/* Frees what repl_forward owns (target, headers, head, body_out). */
void repl_forward_fini(struct repl_forward *f);

struct repl_forwarder;

/* Starts the forwarder thread. peer and reg (the node's map, to tell
 * stale relays; NULL: none are) are borrowed. */
int repl_forwarder_start(const struct repl_peer_config *peer, struct repl_registry *reg,
                         struct repl_forwarder **out);
/* Cancels what is in flight (each done runs with -CELLAR_EOUTCOME, or
 * -CELLAR_EUNAVAIL when not yet sent) and stops. Accepts NULL. */
void repl_forwarder_stop(struct repl_forwarder *fw);

/* Queues f; f->done runs on the forwarder thread. */
void repl_forwarder_submit(struct repl_forwarder *fw, struct repl_forward *f);

/* The relays to each peer (for /metrics): calls, errors (no answer),
 * and the time from relaying to the answer. */
struct repl_peer_figures *repl_forwarder_figures(struct repl_forwarder *fw);
/* The envelopes sent, and the requests they carried (any thread). */
void repl_forwarder_envelopes(struct repl_forwarder *fw, uint64_t *envelopes, uint64_t *carried);

#endif

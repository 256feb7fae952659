/*
 * server.h - the HTTP server: a libmicrohttpd daemon (epoll thread pool,
 * suspend/resume) serving API.md over the table registry.
 *
 * Threads: api_server_start/stop and the state setters from the main
 * thread. Inside, MHD workers run handlers; writes complete on partition
 * writer threads, which resume the suspended connection; admin calls run on
 * one admin thread of the server's own.
 */
#ifndef API_SERVER_H
#define API_SERVER_H

#include "common/cellar.h"
#include "replication/cluster.h"
#include "replication/forwarder.h"
#include "replication/learn.h"
#include "replication/member.h"
#include "replication/meta.h"
#include "replication/registry.h"

struct api_config {
    char listen_host[256]; /* bind address when no socket is inherited */
    uint16_t listen_port;
    int listen_fd;                  /* an inherited listening socket, or -1 */
    unsigned threads;               /* MHD worker threads; 0 = online CPUs */
    unsigned connection_limit;      /* concurrent connections */
    unsigned connection_timeout_s;  /* idle keep-alive connections are closed after this */
    size_t connection_memory_bytes; /* per connection: headers and URL */
    size_t max_body_bytes;          /* request body */
    size_t max_value_bytes;         /* a cell's value */
    uint64_t admin_queue_max;       /* table admin requests waiting */
    size_t max_batch_items;         /* keys or items per request body */
    size_t max_page_cells;          /* the largest `limit` of a page */
    size_t max_page_bytes;          /* the largest `max_bytes` of a page */
    size_t max_scan_cells;          /* cells examined per request */
    uint64_t max_scan_ms;           /* time spent examining cells per request */
    uint64_t slow_request_ms;       /* requests taking at least this long are logged; 0 = off */
    char cors_origins[1024];        /* comma-separated origins, "*", or "" (no CORS) */

    /* Access (api/auth.h). With no tokens file only loopback clients are
     * served, and a non-loopback listener is refused unless insecure. */
    char tokens_file[4096];         /* "" = no tokens */
    char cluster_secret_file[4096]; /* "" = /internal/ is closed */
    bool insecure;                  /* serve everyone without tokens */
    bool metrics_auth;              /* /metrics needs a token (when tokens exist) */
    bool readyz_auth;               /* /readyz needs a token (when tokens exist) */
    /* HTTPS: both set, or both empty (plain HTTP). Reloadable. */
    char tls_cert_file[4096];
    char tls_key_file[4096];
    unsigned connection_limit_per_ip; /* concurrent connections from one address; 0 = none */
    unsigned request_timeout_s;       /* a request must arrive whole within this */
};

void api_config_defaults(struct api_config *cfg);

/* Checks what start would refuse, before anything is opened: the tokens,
 * cluster secret and TLS files must load, and a listener that is not on
 * loopback needs tokens (or insecure). -CELLAR_EINVAL with a message saying
 * what to do in err. */
int api_config_check(const struct api_config *cfg, char *err, size_t errlen);

/* Parses "HOST:PORT" (IPv4 address or name, or "[v6]:PORT") into cfg. */
int api_config_set_listen(struct api_config *cfg, const char *hostport);

struct api_server;

/* What a node of a cluster serves with, besides its registry (NULL for a
 * cluster of one; borrowed for the server's life). */
struct api_cluster {
    const struct repl_cluster_config *cfg;
    struct repl_meta *meta;             /* on the meta server, else NULL */
    struct repl_forwarder *forwarder;   /* client requests to other nodes */
    struct repl_learning *learning;     /* learners copying checkpoints */
    struct repl_peer_figures *prepares; /* this node's primaries' prepares, per peer */
};

/* Starts listening and serving. Errors: -CELLAR_ESYS (cannot bind: the log
 * says why), -CELLAR_EINVAL. cfg and reg are borrowed and must outlive the
 * server; the caller may change cfg's per-request limits (max_body_bytes,
 * max_value_bytes, admin_queue_max, max_batch_items, max_page_cells,
 * max_page_bytes, max_scan_cells, max_scan_ms) while it
 * serves, one atomic store each: requests already past their checks keep
 * the limits they were checked against. */
int api_server_start(const struct api_config *cfg, struct repl_registry *reg,
                     const struct api_cluster *cluster, struct api_server **out);

/* The node's member (replication/member.h), once it beacons: requests
 * wait on it for a newer map. Any thread; set once. */
void api_server_set_member(struct api_server *s, struct repl_member *m);

/* /readyz answers 200 only while ready. */
void api_server_set_ready(struct api_server *s, bool ready);

/* The port actually bound (useful with port 0). */
uint16_t api_server_port(const struct api_server *s);

/* Stops accepting connections; requests in flight go on. */
void api_server_quiesce(struct api_server *s);

/* Requests currently being handled (including suspended ones). */
unsigned api_server_inflight(const struct api_server *s);

/* Begins a graceful stop: /readyz turns 503, the listener closes, new
 * requests on open connections get 503, queued admin calls finish. Then
 * waits up to timeout_ms for the requests in flight to complete (writes
 * still commit: the writers run until the registry closes). 0, or
 * -CELLAR_EBUSY when requests were still in flight at the deadline. */
int api_server_shutdown(struct api_server *s, uint64_t timeout_ms);

/* Stops the daemon and the admin thread and frees s. Suspended requests
 * must have been resumed (their writers stopped) first. Accepts NULL. */
void api_server_stop(struct api_server *s);

/* --- Lifecycle additions (main thread) ---------------------------------- */

/* Reload (SIGHUP): reads the tokens file, the cluster secret file and the
 * TLS certificate and key again (their paths as at start). Returns
 * -CELLAR_EINVAL with err set when a file no longer loads; the previous
 * tokens or certificate then stay in force. */
int api_server_reload(struct api_server *s, char *err, size_t errlen);

/* Whether the server speaks HTTPS. */
bool api_server_tls(const struct api_server *s);

/* The listening socket (bound or inherited) for the watchdog's self-probe,
 * or -1 once the server has been quiesced. Borrowed: do not close it. */
int api_server_listen_fd(const struct api_server *s);

/* Connections open now (served, idle keep-alive or suspended). */
unsigned api_server_connections(const struct api_server *s);

#endif

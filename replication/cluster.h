/*
 * cluster.h - how a node takes part in a cluster: its configuration
 * (meta_servers, advertise, roles and the failure-detection and forwarding
 * timings) and the check that refuses contradictory settings at start.
 *
 * Without meta_servers a node is a cluster of one and nothing here is used.
 * With them, every node of the cluster is started with the same
 * meta_servers and cluster secret; a node's own address is advertise (its
 * listen address when not set); roles says whether it keeps the metadata
 * (meta), holds replicas (data) or both.
 *
 * Threads: the configuration is read at start (main thread) and read-only
 * afterwards.
 */
#ifndef REPL_CLUSTER_H
#define REPL_CLUSTER_H

#include "common/cellar.h"
#include "replication/replica.h"

#define REPL_META_SERVERS_MAX 7

struct repl_cluster_config {
    size_t n_meta;                                           /* 0: a cluster of one */
    char meta_servers[REPL_META_SERVERS_MAX][REPL_ADDR_MAX]; /* host:port */
    char advertise[REPL_ADDR_MAX];                           /* "": the listen address */
    bool roles_set;                                          /* roles was given */
    bool role_meta, role_data;
    uint64_t fd_beacon_ms;            /* a data node's beacon to meta, this often */
    uint64_t fd_lease_ms;             /* a primary's lease, from a message its secondaries acked */
    uint64_t fd_grace_ms;             /* a node silent this long is unreachable */
    uint64_t replica_replace_after_s; /* ... and dead after this long */
    uint64_t balance_moves_max;       /* replica moves under way at once */
    uint64_t forward_wait_ms;         /* a request for a partition without a primary waits */
    uint64_t prepare_timeout_ms;      /* a primary waits this long for a secondary to log */
    uint64_t prepare_gather_us;       /* a busy primary waits this long for more writes */
};

void repl_cluster_config_defaults(struct repl_cluster_config *c);

/* Parses a comma-separated list of host:port into c->meta_servers. */
int repl_cluster_set_meta_servers(struct repl_cluster_config *c, const char *list);
/* Parses "meta", "data" or "meta,data" (either order). */
int repl_cluster_set_roles(struct repl_cluster_config *c, const char *roles);
/* Parses one host:port (a node address, as advertise). */
int repl_addr_valid(const char *addr);

/* Completes and checks the cluster settings against the listen address
 * (listen_host, listen_port: the port the node will bind; 0 for a port
 * the kernel picks) and whether a cluster secret is configured: fills in
 * advertise and the default roles. -CELLAR_EINVAL with a message naming
 * the settings when they contradict each other. */
int repl_cluster_config_check(struct repl_cluster_config *c, const char *listen_host,
                              uint16_t listen_port, bool have_secret, char *err, size_t errlen);

/* Whether this node is part of a cluster of several (meta_servers set). */
static inline bool repl_cluster_enabled(const struct repl_cluster_config *c)
{
    return c->n_meta > 0;
}

#endif

/*
 * meta.h - the meta role: the cluster's metadata and the decisions made
 * with it. Meta learns the nodes from their beacons (there is no join
 * call) and keeps their state (alive, unreachable after fd_grace_ms of
 * silence, dead after replica_replace_after_s); it owns the catalog
 * (catalog.h) and every partition's configuration {ballot, primary,
 * secondaries}; it places the partitions of a new table on the data nodes
 * (never two replicas of a partition on one node, primaries spread
 * evenly); and it serves the partition map that every node routes by.
 *
 * The map carries a version: (meta's start count << 32) + changes since
 * that start, so it only grows, across restarts too. A node beacons the
 * version it has and gets the map back when it is older. After a table
 * change meta also pushes the map to every data node at once and applies
 * it to its own node's registry, so that a table is served everywhere
 * when its create returns.
 *
 * One meta server keeps its metadata in the embedded store in its data
 * directory (metadata.h).
 *
 * Threads: the beacon call runs on HTTP workers; the table calls block
 * (metadata writes, map pushes) and run on the admin thread; a thread of
 * meta's own judges node liveness. One mutex guards the state; pushes are
 * made without it.
 */
#ifndef REPL_META_H
#define REPL_META_H

#include <jansson.h>

#include "replication/peer.h"
#include "replication/registry.h"

struct repl_meta_config {
    char self[REPL_ADDR_MAX]; /* this meta server's address */
    uint64_t fd_beacon_ms;
    uint64_t fd_grace_ms;
    uint64_t replace_after_ms;
    uint64_t balance_moves_max; /* replica moves (drain, balance) under way at once */
    uint64_t drop_retention_ms;
    uint32_t default_partition_count;
    uint32_t default_replica_count;
    const struct repl_peer_config *peer; /* borrowed */
    struct repl_registry *local;         /* this node's registry, fed the map directly */
};

struct repl_meta;

/* Opens the metadata in dir and starts judging node liveness. Nodes named
 * in the partition configurations start alive, so that each has a full
 * grace period to beacon to a restarted meta. */
int repl_meta_open(const char *dir, const struct repl_meta_config *cfg, struct repl_meta **out);
void repl_meta_close(struct repl_meta *m); /* accepts NULL */

/* A node's beacon {"address", "roles": [...], "version", "replicas"}:
 * records the node (alive) and answers {"version"} with "map" when the
 * node's version is older. -CELLAR_EINVAL for a malformed beacon. */
int repl_meta_beacon(struct repl_meta *m, json_t *beacon, json_t **reply);

/* The current map (a new reference). */
json_t *repl_meta_map(struct repl_meta *m);

/* Table changes, as the registry's admin calls of a cluster of one
 * (registry.h), plus: -CELLAR_ENONODES when replica_count exceeds the data
 * nodes alive. Blocking. */
int repl_meta_table_create(struct repl_meta *m, const struct repl_table_spec *spec,
                           struct repl_table_meta *out);
int repl_meta_table_drop(struct repl_meta *m, const char *name, bool purge,
                         struct repl_table_meta *out);
int repl_meta_table_recall(struct repl_meta *m, const char *name, const char *new_name,
                           struct repl_table_meta *out);
int repl_meta_table_update(struct repl_meta *m, const char *name, bool set_ttl, int64_t ttl_s,
                           size_t n_envs, const struct repl_env *envs, struct repl_table_meta *out);
int repl_meta_purge_expired(struct repl_meta *m, uint64_t now_ms);

/* A configuration change a replica asks for, granted one ballot at a
 * time: a primary removes a secondary that did not log a group
 * (REMOVE_SECONDARY, node the secondary, by the primary); a secondary that
 * heard nothing from its primary for fd_grace_ms takes its place
 * (PROMOTE, node and by that secondary: it becomes primary, the old
 * primary leaves); a primary makes its learner, which has everything it
 * committed, a secondary (ADD_SECONDARY, node the learner, by the
 * primary). Granted only when ballot is the partition's ballot now
 * (compare-and-set) and the change applies to its configuration; the new
 * configuration, ballot + 1, is saved and returned in out. Nodes learn of
 * it with their next beacon; the proposer applies it at once.
 * -CELLAR_ENOTFOUND (no such partition), -CELLAR_ENOTPRIMARY (the
 * configuration moved on, or the change does not apply to it). */
enum repl_change { REPL_CHANGE_REMOVE_SECONDARY, REPL_CHANGE_PROMOTE, REPL_CHANGE_ADD_SECONDARY };
int repl_meta_propose(struct repl_meta *m, uint32_t table_id, uint32_t partition, uint64_t ballot,
                      enum repl_change change, const char *node, const char *by,
                      struct repl_config *out);

/* Drains a node: its primaries are handed to secondaries that stay, its
 * replicas move to other nodes (by learning), and nothing new is placed
 * on it; its state is "draining", then "drained" once no configuration
 * names it. *node is {"address", "state"}. -CELLAR_ENOTFOUND for a node
 * meta does not know. */
int repl_meta_drain(struct repl_meta *m, const char *addr, json_t **node);

/* Forgets a node that is dead or drained and that no configuration names.
 * -CELLAR_ENOTFOUND (not known), -CELLAR_EEXIST (a configuration still
 * names it: it holds data), -CELLAR_EBUSY (alive and not drained). */
int repl_meta_forget(struct repl_meta *m, const char *addr);

/* Asks every other node that beacons (draining ones too) to compact its
 * replicas of the table (POST /internal/v1/compact); blocking, one node
 * at a time. */
void repl_meta_compact_everywhere(struct repl_meta *m, const char *name);

#endif

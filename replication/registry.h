/*
 * registry.h - the tables this node serves and the replicas behind them:
 * each table's record (catalog.h), its admission (admission.h) and one
 * hosted replica per partition (replica.h), and the one routing call that
 * says which replica serves a request (repl_route).
 *
 * Records are persisted in the node's metadata store (catalog.h). Replicas
 * of every available table are opened at start; a dropped table's replicas
 * are closed (after their write queues drain) and its data kept until it is
 * recalled or purged, which happens once drop_retention has passed.
 *
 * Locking: one rwlock guards the table list. Request handlers hold it for
 * reading between repl_table_acquire and repl_table_release (a short,
 * non-blocking section: a RocksDB read or a queue submit). Admin calls are
 * serialised by a mutex of their own and take the rwlock for writing only
 * to change the list, never across RocksDB opens, closes or fsyncs. Admin
 * calls block (they open, close and fsync): call them off the HTTP workers.
 *
 * In a cluster this is the node's view of the configuration that meta owns.
 */
#ifndef REPL_REGISTRY_H
#define REPL_REGISTRY_H

#include <jansson.h>

#include "common/cellar.h"
#include "replication/admission.h"
#include "replication/catalog.h"
#include "replication/replica.h"
#include "replication/writer.h"
#include "storage/engine.h"
#include "storage/partition.h"

struct repl_registry_config {
    uint64_t drop_retention_ms; /* dropped tables are purged after this */
    uint32_t default_partition_count;
    uint32_t default_replica_count;
    struct repl_writer_config writer;
    /* This node's address in a cluster (advertise), or "" for a cluster of
     * one. In a cluster the registry keeps no catalog of its own: it
     * follows the map meta serves (repl_registry_apply_map). */
    char self[REPL_ADDR_MAX];
    /* In a cluster: how each replica takes part in its replica group
     * (replica.h; group.self is self). */
    struct repl_group_config group;
};

void repl_registry_config_defaults(struct repl_registry_config *cfg);

struct repl_registry;

/* Callback for progress while opening partitions ("opening partition 3/24"). */
typedef void (*repl_progress_fn)(void *arg, size_t done, size_t total);

/* Opens the metadata store in <data_dir>/node and every partition of every
 * available table under <data_dir>/replicas/<id>.<index>. A partition that
 * cannot be opened does not stop the node: it is logged and served as a
 * failed partition (its keys get -CELLAR_EUNAVAIL; store_partition_health
 * says why). */
int repl_registry_open(struct store_engine *e, const char *data_dir,
                       const struct repl_registry_config *cfg, repl_progress_fn progress,
                       void *progress_arg, struct repl_registry **out);

/* Stops every writer (draining its queue), closes every partition and the
 * metadata store, frees r. Accepts NULL. */
void repl_registry_close(struct repl_registry *r);

/* --- In a cluster ------------------------------------------------------- */

/* Whether the registry follows a map from meta (cfg.self set). */
bool repl_registry_member(const struct repl_registry *r);

/* Applies a partition map as meta serves it (JSON: {"version", "meta_leader",
 * "nodes": [...], "tables": [{table record..., "configs": [{"ballot",
 * "primary", "secondaries"}]}]}): tables appear, change and go; the
 * replicas this node is assigned are opened (a partition that cannot be
 * opened stands in as failed), the others closed, and those of tables no
 * longer in the map destroyed. A map older than the one applied is
 * ignored. Blocking (opens and closes RocksDB): not on HTTP workers.
 * -CELLAR_EINVAL for a map that does not parse (nothing changed). */
int repl_registry_apply_map(struct repl_registry *r, json_t *map);

/* A secondary's part of a group: the replica of (table_id, partition)
 * here logs the mutations (taken) and applies up to committed
 * (repl_replica_prepare). -CELLAR_ENOTFOUND when this node holds no such
 * replica, -CELLAR_ENOTPRIMARY when it is not a secondary of that ballot. */
int repl_registry_prepare(struct repl_registry *r, const struct repl_prepare_header *h,
                          struct store_mutation **ms, size_t n, repl_prepared_fn done, void *arg);

/* Data nodes the map says are alive. */
size_t repl_registry_data_nodes(struct repl_registry *r);

/* The version of the map applied (0: none yet), and a copy of its JSON
 * (json_decref it; NULL before the first). */
uint64_t repl_registry_map_version(struct repl_registry *r);
json_t *repl_registry_map_json(struct repl_registry *r);

/* Learning from a checkpoint (learn.h). The node's data directory. */
const char *repl_registry_data_dir(const struct repl_registry *r);

/* Makes a checkpoint of this node's replica of (table_id, partition)
 * under <data_dir>/checkpoints/<name> (name set; older checkpoints
 * expire). Blocking (it flushes): the admin thread. -CELLAR_ENOTFOUND when
 * no such replica is here. */
int repl_registry_checkpoint(struct repl_registry *r, uint32_t table_id, uint32_t partition,
                             char *name, size_t name_len);

/* This node's role in (table_id, partition); -CELLAR_ENOTFOUND when it
 * does not host it. */
int repl_registry_replica_role(struct repl_registry *r, uint32_t table_id, uint32_t partition,
                               enum repl_role *role);

/* Puts the partition copied into the directory copy (repl_learn_fetch) in
 * place of this node's replica of (table_id, partition), which must still
 * be a learner: the replica closes, its files go, copy takes their place,
 * and it opens again with the same configuration and role. Blocking.
 * -CELLAR_ENOTFOUND (copy untouched) when the replica is gone or no longer
 * a learner. */
int repl_registry_install(struct repl_registry *r, uint32_t table_id, uint32_t partition,
                          const char *copy);

/* The replicas this node hosts, as a beacon reports them: a JSON array of
 * {"table_id", "partition", "ballot", "role", "decree"} (json_decref it). */
json_t *repl_registry_hosted_json(struct repl_registry *r);

/* --- Request path ------------------------------------------------------- */

struct repl_table;

/* Finds the available table name and holds the registry's read lock until
 * repl_table_release. -CELLAR_ENOTFOUND (then nothing is held). */
int repl_table_acquire(struct repl_registry *r, const char *name, struct repl_table **out);
void repl_table_release(struct repl_registry *r, struct repl_table *t);
/* Whether the calling thread holds a table (and so the read lock): the
 * API layer checks that it never answers a client while it does. */
bool repl_table_held(void);

/* Borrowed while the table is held. */
const struct repl_table_meta *repl_table_meta(const struct repl_table *t);
uint32_t repl_table_partition_of(const struct repl_table *t, const void *hk, size_t hklen);

/* Whether the table takes n more writes now: 0, -CELLAR_EREADONLY (env
 * read_only) or -CELLAR_ETHROTTLED (env write_rate_limit, a token bucket
 * of one second's worth). Thread-safe while the table is held. */
int repl_table_admit_writes(struct repl_table *t, uint64_t n);

/* Where a request for one partition goes: the replica here that serves it
 * (LOCAL; its gates, replica.h, still decide per read and write), the
 * node that is its primary (REMOTE), or nowhere right now (NO_PRIMARY).
 * Every handler asks this, once per partition it touches. */
enum repl_route_kind {
    REPL_ROUTE_LOCAL = 0,
    REPL_ROUTE_REMOTE,
    REPL_ROUTE_NO_PRIMARY,
};
struct repl_route {
    enum repl_route_kind kind;
    struct repl_replica *replica; /* LOCAL: borrowed while the table is held */
    uint64_t ballot;              /* of the configuration the route follows */
    char primary[REPL_ADDR_MAX];  /* REMOTE: the primary's address */
};
void repl_route(const struct repl_table *t, uint32_t partition, struct repl_route *out);
/* Whether addr is the primary or a secondary of partition in the
 * configuration repl_route follows (false in a cluster of one). */
bool repl_route_replica_of(const struct repl_table *t, uint32_t partition, const char *addr);

/* The replica of partition index hosted here, or NULL: for the node's own
 * bookkeeping (statistics), never to serve a client. */
struct repl_replica *repl_table_replica(const struct repl_table *t, uint32_t index);

/* Partition index's configuration as this node knows it (the map's, in a
 * cluster; the replica's own, for a cluster of one, whose primary is ""
 * for "this node"), and its last committed decree when known here (the
 * replica's, or 0). */
void repl_table_config(const struct repl_table *t, uint32_t index, struct repl_config *out,
                       uint64_t *last_committed);

/* --- Admin (blocking; not on HTTP workers) ------------------------------ */

/* What a create asks for; 0 fields take the configured defaults. */
struct repl_table_spec {
    const char *name;
    uint32_t partition_count;
    uint32_t replica_count;
    int64_t default_ttl_s;
    size_t n_envs;
    struct repl_env envs[REPL_ENVS_MAX];
};

/* Errors: -CELLAR_EINVAL (bad name or counts), -CELLAR_EEXIST (an available
 * table has that name), -CELLAR_EIO. */
int repl_table_create(struct repl_registry *r, const struct repl_table_spec *spec,
                      struct repl_table_meta *out);

/* Every table, ordered by name then id; dropped ones too when
 * include_dropped. *out is malloc'ed (free() it). */
int repl_table_list(struct repl_registry *r, bool include_dropped, struct repl_table_meta **out,
                    size_t *n);

/* Soft delete (status dropped, partitions closed, data kept) or, with
 * purge, delete at once. *out is the table as it was left. */
int repl_table_drop(struct repl_registry *r, const char *name, bool purge,
                    struct repl_table_meta *out);

/* Brings back the most recently dropped table called name, renamed to
 * new_name when not NULL. -CELLAR_ENOTFOUND (no dropped table of that
 * name), -CELLAR_EEXIST (the name is taken by an available table). */
int repl_table_recall(struct repl_registry *r, const char *name, const char *new_name,
                      struct repl_table_meta *out);

/* Changes a table's default TTL (when set_ttl) and envs: each env in envs
 * is set, or removed when its value is empty. Known envs are validated:
 * write_rate_limit (writes per second, a decimal >= 0; 0 = unlimited) and
 * read_only ("true" or "false"). -CELLAR_ENOTFOUND, -CELLAR_EINVAL (bad
 * env value or too many envs), -CELLAR_EIO. */
int repl_table_update(struct repl_registry *r, const char *name, bool set_ttl, int64_t ttl_s,
                      size_t n_envs, const struct repl_env *envs, struct repl_table_meta *out);

/* Compacts every partition of the table (blocking). */
int repl_table_compact(struct repl_registry *r, const char *name);

/* Purges dropped tables whose retention has run out as of now_ms; returns
 * how many were purged (or a negative code). */
int repl_registry_purge_expired(struct repl_registry *r, uint64_t now_ms);

/* Partition count and totals over every open partition, for metrics. */
struct repl_registry_stats {
    size_t tables;
    size_t partitions;
    size_t partitions_failed;         /* STORE_HEALTH_FAILED */
    size_t partitions_no_space;       /* STORE_HEALTH_NO_SPACE */
    struct repl_writer_stats writers; /* summed; committed_decree = max */
};
void repl_registry_stats(struct repl_registry *r, struct repl_registry_stats *out);

/* Calls fn for every hosted replica of every available table, in table
 * order, with the registry's read lock held: fn must be quick and must not
 * call back into the registry. For /metrics and /readyz. */
typedef void (*repl_partition_fn)(void *arg, const char *table, uint32_t index,
                                  struct repl_replica *r);
void repl_registry_foreach_partition(struct repl_registry *r, repl_partition_fn fn, void *arg);

/* Liveness for the watchdog: true when every writer of every available
 * table has beaten its heartbeat (repl_writer_heartbeat_ms) within the last
 * stall_ms. Otherwise false, with the first stalled writer's name and how
 * long it has been silent written to stalled (may be NULL) and
 * *stalled_for_ms. Takes the read lock briefly; any thread. */
bool repl_registry_writers_alive(struct repl_registry *r, uint64_t stall_ms, char *stalled,
                                 size_t stalled_len, uint64_t *stalled_for_ms);

#endif

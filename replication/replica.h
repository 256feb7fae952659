/*
 * replica.h - one partition replica this node hosts: its RocksDB (storage),
 * its writer (decrees, group commit), its configuration {ballot, primary,
 * secondaries} and its role in it.
 *
 * Everything that reads or writes a replica's data goes through it: a read
 * through the read gate (repl_replica_read: is this replica the primary,
 * and does it hold its lease), a write through its writer
 * (repl_replica_writer, primaries only). A node that is its own cluster
 * hosts every replica as primary of ballot 1 with no secondaries; the
 * gate then always opens.
 *
 * Ownership: the registry owns each replica (one per hosted partition) and
 * frees it with repl_replica_close, after no request can reach it. Pointers
 * a replica returns are borrowed for as long as the caller may use the
 * replica (the registry's read lock, registry.h).
 *
 * Threads: any thread may call the accessors and the gates; open, close
 * and set_config run on the admin or main thread. The configuration and
 * role are guarded by the replica's own mutex.
 */
#ifndef REPL_REPLICA_H
#define REPL_REPLICA_H

#include <jansson.h>

#include "common/cellar.h"
#include "replication/writer.h"
#include "storage/engine.h"
#include "storage/partition.h"

#define REPL_REPLICAS_MAX 5
/* A node address, "host:port" ("[v6]:port"), NUL-terminated. */
#define REPL_ADDR_MAX 272

enum repl_role {
    REPL_ROLE_INACTIVE = 0, /* serves nothing */
    REPL_ROLE_PRIMARY,
    REPL_ROLE_SECONDARY,
    REPL_ROLE_LEARNER,
};

/* A partition's configuration, as meta grants it: ballot b names one
 * primary and its secondaries; it only ever moves from b to b + 1. */
struct repl_config {
    uint64_t ballot;
    char primary[REPL_ADDR_MAX]; /* empty: no primary */
    size_t n_secondaries;
    char secondaries[REPL_REPLICAS_MAX - 1][REPL_ADDR_MAX];
    /* A node catching up to become a secondary ("": none). Not a member:
     * its acks count for nothing until meta adds it (ballot + 1). */
    char learner[REPL_ADDR_MAX];
    /* Moves meta asks of the primary ("": none): the secondary to take
     * out once the learner has joined, and the secondary to hand the
     * primary's role to (the primary stays, as a secondary). */
    char leaving[REPL_ADDR_MAX];
    char want_primary[REPL_ADDR_MAX];
};

/* Whether addr ("" never) is one of c's secondaries. */
bool repl_config_is_secondary(const struct repl_config *c, const char *addr);

struct repl_replica;
struct repl_peer_figures;

/* Opens the replica of partition index of table (id, name) whose RocksDB
 * is in dir, and starts its writer. With tolerate, a partition that cannot
 * be opened is logged and stands in as a failed partition (its keys answer
 * -CELLAR_EUNAVAIL), and the call succeeds; otherwise its error is
 * returned. The replica starts as primary of config (copied). */
int repl_replica_open(struct store_engine *e, const char *dir, const char *table, uint32_t id,
                      uint32_t index, const struct repl_writer_config *wcfg,
                      const struct repl_config *config, bool tolerate, struct repl_replica **out);

/* How a replica of a cluster node takes part in its replica group
 * (borrowed; it must outlive the replica). */
struct repl_group_config {
    const struct repl_peer_config *peer; /* how to reach the others and meta */
    char self[REPL_ADDR_MAX];            /* this node's address */
    uint64_t prepare_timeout_ms;         /* a primary waits this long for a secondary */
    uint64_t beacon_ms;                  /* fd_beacon_ms: a primary sends at least this often */
    uint64_t lease_ms;                   /* fd_lease_ms: a primary's lease, from a send acked */
    uint64_t grace_ms;                   /* fd_grace_ms: a secondary's patience (> lease_ms) */
    uint64_t gather_us; /* prepare_gather_us: a busy primary's wait for more writes */
    struct repl_peer_figures *prepares; /* every prepare sent, per peer (/metrics) */
};

/* Makes r a member of its replica group, with no role until
 * repl_replica_set_config gives it one. Its writer then runs the
 * replica's timer: a new primary commits its log's tail before it serves
 * (repl_writer_commit_tail); a primary with secondaries sends a heartbeat
 * (an empty prepare) when it sent nothing for beacon_ms, and serves reads
 * only while every secondary has acked a message it sent less than
 * lease_ms ago; a secondary that heard nothing from its primary for
 * grace_ms refuses that ballot from then on and asks meta to make it
 * primary instead. A replica that never joins (a node that is its own
 * cluster) is a primary with no secondaries and needs none of it. */
void repl_replica_join(struct repl_replica *r, const struct repl_group_config *group);

/* Stops the writer (its queued writes are committed first) and closes the
 * partition. Accepts NULL. */
void repl_replica_close(struct repl_replica *r);

/* The read gate: the partition to read, borrowed, when this replica may
 * serve reads now (it is the primary and holds its lease). Otherwise
 * -CELLAR_ENOTPRIMARY. */
int repl_replica_read(struct repl_replica *r, struct store_partition **out);

/* The writer of a primary, borrowed; -CELLAR_ENOTPRIMARY otherwise. */
int repl_replica_writer(struct repl_replica *r, struct repl_writer **out);

/* The partition and the writer whatever the role, for the node's own
 * bookkeeping (health, compaction, statistics, liveness): never to serve a
 * client. Borrowed. */
struct store_partition *repl_replica_partition(const struct repl_replica *r);
struct repl_writer *repl_replica_writer_any(const struct repl_replica *r);

/* The replica's configuration and role. A primary with secondaries (and a
 * peer) sends every group of its writer to each of them before it commits
 * it (POST /internal/v1/prepare); a group one of them does not log fails. */
void repl_replica_config(struct repl_replica *r, struct repl_config *config, enum repl_role *role);
/* Its ballot alone (cheap: for every request's routing). */
uint64_t repl_replica_ballot(struct repl_replica *r);

/* A primary's replication figures since it opened (relaxed atomics: any
 * thread may read them). */
struct repl_replication_stats {
    uint64_t groups;     /* groups sent to the secondaries */
    uint64_t failed;     /* groups that failed (not every secondary logged them) */
    uint64_t wait_us;    /* time the groups waited for the secondaries, summed */
    uint64_t dropped;    /* secondaries meta dropped at this primary's request */
    uint64_t promotions; /* times this replica took over as primary */
    uint64_t learned;    /* log entries sent to learners */
};
void repl_replica_replication_stats(struct repl_replica *r, struct repl_replication_stats *out);
void repl_replica_set_config(struct repl_replica *r, const struct repl_config *config,
                             enum repl_role role);

/* The header of a prepare: which partition, the sender's ballot and
 * address, and its committed decree. */
struct repl_prepare_header {
    uint32_t table_id, partition;
    uint64_t ballot, committed;
    char primary[REPL_ADDR_MAX];
};

/* A secondary's part of a group its primary sent: the n mutations (taken;
 * none for a heartbeat). -CELLAR_ENOTPRIMARY when this replica is not a
 * secondary of that ballot, or gave up on it (nothing taken then but the
 * mutations, freed); else as repl_writer_submit_prepare. */
int repl_replica_prepare(struct repl_replica *r, const struct repl_prepare_header *h,
                         struct store_mutation **ms, size_t n, repl_prepared_fn done, void *arg);

/* The prepare message (a binary body): u32 BE length of a JSON header
 * {"table_id", "partition", "ballot", "primary", "committed", "n"}, the
 * header, then n (0 for a heartbeat) times a u32 BE length and an encoded
 * mutation (storage/mutation.h). */
void repl_prepare_encode(const struct repl_prepare_header *h, struct store_mutation *const *ms,
                         size_t n, struct cellar_buf *out);
/* And back: -CELLAR_EINVAL for anything malformed. *ms is malloc'ed, its
 * n mutations the caller's. */
int repl_prepare_decode(const char *data, size_t len, struct repl_prepare_header *h,
                        struct store_mutation ***ms, size_t *n);

const char *repl_role_name(enum repl_role role);

/* A configuration as JSON: {"ballot", "primary" (null when none),
 * "secondaries": [...], and "learner", "leaving", "want_primary" only when
 * set} (a new reference). */
json_t *repl_config_json(const struct repl_config *c);
/* And back: -CELLAR_EINVAL when j is not such an object. */
int repl_config_parse(json_t *j, struct repl_config *c);

#endif

/*
 * writer.h - a partition's write queue and its writer thread: the single
 * path by which mutations reach storage.
 *
 * Producers (HTTP workers) submit a mutation with a completion callback and
 * return at once; they never wait on a lock held across I/O. The writer
 * takes everything queued (up to the group limits), gives each mutation the
 * next decree and a timestamp, applies them in decree order into one batch
 * (apply.h), and commits the group with one write and, under
 * durability=fsync, one fsync. Then it calls each callback in decree order.
 * This is the seam PacificA will drive later: the primary's prepare/commit
 * replaces the single local commit.
 *
 * Invariants: decrees are dense and increasing; a callback is called
 * exactly once per accepted mutation, after its group is durable (or with
 * an error, when the group could not be written: then nothing of the group
 * was applied and the decrees are reused).
 *
 * Threads: repl_submit_take from any thread. Callbacks run on the writer
 * thread and must not block. start/stop from one controlling thread.
 */
#ifndef REPL_WRITER_H
#define REPL_WRITER_H

#include "common/cellar.h"
#include "storage/mutation.h"
#include "storage/partition.h"

struct repl_writer_config {
    size_t queue_max;       /* mutations waiting per partition; beyond: -CELLAR_EBUSY */
    size_t batch_max;       /* mutations per group commit */
    size_t batch_max_bytes; /* user bytes per group commit */
    bool sync;              /* durability=fsync */
    uint64_t log_retain;    /* log entries kept behind the applied decree */
    /* Liveness: the writer stamps a heartbeat at least this often, even
     * when idle (a timed wait), so a stalled writer can be told from an
     * idle one (repl_writer_heartbeat_ms). */
    uint64_t heartbeat_ms;
    /* TEST ONLY (config key test_wedge_writer_after_s): when non-zero, the
     * writer wedges this long after it started: it stops taking work and
     * stops its heartbeat, as a writer stuck in I/O would, so the watchdog
     * logic can be exercised for real. Only repl_writer_stop ends the wedge
     * (the queue then drains as usual). 0 in every real deployment. */
    uint64_t test_wedge_after_ms;
};

void repl_writer_config_defaults(struct repl_writer_config *cfg);

/* Called once per mutation. status is 0 (out holds the outcome, borrowed for
 * the call) or a negative code when the mutation was not committed
 * (-CELLAR_EIO, -CELLAR_ENOSPC, -CELLAR_EUNAVAIL; out is NULL).
 * Callbacks must not block and must not call repl_writer_stop (the writer
 * would wait for itself). */
typedef void (*repl_done_fn)(void *arg, int status, const struct store_outcome *out);

struct repl_writer;

/* Replication of a primary's groups to its secondaries. Called for every
 * group once it is applied into the batch and before the batch commits,
 * with the group's mutations in decree order (decrees and timestamps set)
 * and the partition's committed decree before the group. 0: every
 * secondary has logged the group, and the writer commits it.
 * -CELLAR_EOUTCOME: the group went out but not every secondary logged it;
 * some may have: the writer keeps it as its log's tail (logged, not
 * applied; its decrees are not given again), fails its mutations with
 * -CELLAR_EOUTCOME, and commits the tail before the next group (see
 * repl_writer_commit_tail). Another error: nobody logged it; the group
 * fails with that error and its decrees are used again. Runs on the
 * writer thread and may block up to its own timeout. */
typedef int (*repl_replicate_fn)(void *arg, struct store_mutation *const *ms, size_t n,
                                 uint64_t committed);

/* The replica's timer: called on the writer thread, between groups (no
 * group runs meanwhile), at least every every_ms and soon after
 * repl_writer_tick_soon. It may block (it asks peers things) and may call
 * repl_writer_commit_tail. */
typedef void (*repl_tick_fn)(void *arg);

/* What became of a secondary's prepare: status 0 with the last decree it
 * has logged and the last it has applied, or a negative code (nothing of
 * it was logged). */
typedef void (*repl_prepared_fn)(void *arg, int status, uint64_t logged, uint64_t applied);
/* Starts the writer of sp (borrowed; it must outlive the writer). name is
 * used in logs and the thread name. */
int repl_writer_start(struct store_partition *sp, const struct repl_writer_config *cfg,
                      const char *name, struct repl_writer **out);

/* Stops accepting, commits everything already queued, joins the thread and
 * frees w. Accepts NULL. */
void repl_writer_stop(struct repl_writer *w);

/* From the replication hook, on the writer thread: the group being run
 * went to secondaries, so when writes are already queued as it ends, the
 * next group may wait up to us microseconds for the writes expected
 * (writer.c, "Gathering"). Each group starts at 0. */
void repl_writer_gather_next(struct repl_writer *w, uint64_t us);

/* Sets (fn non-NULL) or clears the replication of this writer's groups.
 * Groups already queued are replicated when they run. Any thread. */
void repl_writer_set_replicate(struct repl_writer *w, repl_replicate_fn fn, void *arg);

/* Sets (fn non-NULL) or clears the replica's timer, and runs it soon. Any
 * thread. */
void repl_writer_set_tick(struct repl_writer *w, repl_tick_fn fn, void *arg, uint64_t every_ms);
void repl_writer_tick_soon(struct repl_writer *w);

/* Log retention leaves every entry from decree on (0: back to
 * log_retain alone): a primary keeps what a learner still needs. Any
 * thread. */
void repl_writer_keep_log_from(struct repl_writer *w, uint64_t decree);

/* Commits the log's tail: the decrees logged beyond the applied one (a
 * secondary's prepares not yet known committed when it became primary, or
 * a group that failed after it went out). They go through the replicate
 * hook again (to the current secondaries, under the current ballot), are
 * applied and committed here; later groups take the decrees after them.
 * 0 also when there is no tail; else the error (the tail stays). Only on
 * the writer thread, from the tick (or from a group). */
int repl_writer_commit_tail(struct repl_writer *w);

/* A secondary's side: logs the n mutations (taken, with the decrees and
 * timestamps their primary gave them; a decree logged before under the
 * same ballot and not yet applied is overwritten) and applies, in decree
 * order, every logged decree up to committed not yet applied (reading
 * earlier ones back from the log), all in one commit; then done. Queued
 * with the writes: -CELLAR_EBUSY, -CELLAR_ESHUTDOWN, -CELLAR_EUNAVAIL as
 * repl_submit_take, the mutations then freed and done never called. */
int repl_writer_submit_prepare(struct repl_writer *w, struct store_mutation **ms, size_t n,
                               uint64_t committed, repl_prepared_fn done, void *arg);

/* Queues m, taking ownership of it in every case. Returns 0 (done will be
 * called exactly once, from the writer thread, possibly before this returns)
 * or -CELLAR_EBUSY (queue full) / -CELLAR_ESHUTDOWN (stopping) /
 * -CELLAR_EUNAVAIL (the partition has failed): then done is never called
 * and m is already freed. */
int repl_submit_take(struct repl_writer *w, struct store_mutation *m, repl_done_fn done, void *arg);

/* Under durability=os (cfg.sync false), runs m at once on the calling
 * thread as a group of its own when the writer has nothing queued and no
 * group running: returns 1 after done was called (on this thread, with
 * m's outcome; m is consumed). Otherwise returns 0 and has done nothing
 * (m is still the caller's: submit it with repl_submit_take). Always 0
 * under durability=fsync, while stopping, and with the test wedge set. */
int repl_commit_inline(struct repl_writer *w, struct store_mutation *m, repl_done_fn done,
                       void *arg);

/* Counters for metrics; read without a lock (relaxed). */
struct repl_writer_stats {
    uint64_t committed_decree; /* last durable decree (a secondary: applied) */
    uint64_t logged_decree;    /* a secondary: the last decree logged (else committed) */
    uint64_t batches;          /* group commits */
    uint64_t mutations;        /* mutations committed */
    uint64_t queue_depth;      /* mutations waiting now */
    uint64_t failed_batches;   /* group commits that failed */
    uint64_t gathers;          /* groups that waited for more writes (Gathering) */
    /* histogram of group sizes: bucket i counts groups of size <= 2^i */
    uint64_t batch_size_buckets[12];
    /* histogram of group commit times (the RocksDB write and, under
     * durability=fsync, the WAL fsync): bucket i counts commits of at most
     * REPL_COMMIT_BUCKET_US(i) microseconds, the last one all longer ones */
    uint64_t commit_buckets[16];
    uint64_t commit_us_sum;
};
#define REPL_COMMIT_BUCKET_US(i) (64ull << (i))
#define REPL_COMMIT_BUCKETS 16
void repl_writer_stats(const struct repl_writer *w, struct repl_writer_stats *out);

/* For a callback, about the group it belongs to: when the writer took the
 * group off the queue and when its commit returned (cellar_mono_us()).
 * Only valid on the writer thread during that group's callbacks. */
void repl_writer_group_times(const struct repl_writer *w, uint64_t *taken_us,
                             uint64_t *committed_us);

/* Liveness: the cellar_mono_ms() at which the writer thread last went
 * round its loop (at least every cfg.heartbeat_ms while it is healthy, idle
 * or busy; a single group commit may hold it longer). Any thread, no lock. */
uint64_t repl_writer_heartbeat_ms(const struct repl_writer *w);

/* The writer's name as given to repl_writer_start (borrowed, lives as long
 * as w). */
const char *repl_writer_name(const struct repl_writer *w);

#endif

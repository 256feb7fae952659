/*
 * writer.c - a partition's write queue and its writer thread (writer.h):
 * explicit group commit, one write and at most one fsync per group.
 *
 * Design. Producers link a small entry {mutation, done, arg} at the tail of
 * an intrusive FIFO list and signal the writer when it sleeps; the lock is
 * held only for the link, never across I/O, and the queue is bounded by
 * cfg.queue_max (-CELLAR_EBUSY beyond). The writer thread unlinks a whole
 * group in one critical section (up to batch_max mutations and
 * batch_max_bytes of user data, always at least one), then, without the
 * lock, stamps each mutation with the next decree and a timestamp, applies
 * them in order into the writer's one store_batch (so later mutations of
 * the group see earlier ones), commits the batch with applied decree = the
 * group's last decree, and only then calls the callbacks in decree order.
 * After a commit it trims the log every TRIM_STEP decrees so that about
 * cfg.log_retain entries stay behind the applied decree.
 *
 * Failure. If store_apply cannot read the partition, or the commit fails,
 * the whole group fails: the batch is discarded (a failed commit clears it;
 * after a failed apply it is freed and replaced), next_decree goes back to
 * applied + 1 so the decrees are reused, and every callback of the group
 * gets the error and a NULL outcome. Nothing of the group was applied.
 * A primary's group that went to its secondaries and was not logged by
 * all of them is different: some may have logged it, so it stays here as
 * the log's tail (logged, not applied), its callbacks get
 * -CELLAR_EOUTCOME, and the next group (or the replica's tick) commits the
 * tail first (repl_writer_commit_tail). A secondary promoted to primary
 * commits its own tail the same way.
 *
 * A full disk. RocksDB refuses every write once it has hit ENOSPC (a
 * background error), until its SstFileManager sees free space again and
 * resumes the DB by itself. Meanwhile every group fails with
 * -CELLAR_ENOSPC (507 to clients) and reuses its decrees, reads go on, and
 * the partition's health says no space (storage/partition.h). The writer
 * logs the first failure and the recovery, not every group. While short
 * of space and idle, it probes once per heartbeat by committing an empty
 * group (the applied decree rewritten unchanged), so the health clears as
 * soon as writes are possible again, not only at the next client write.
 * A failed partition (corruption) is refused at submit with
 * -CELLAR_EUNAVAIL, before anything is queued.
 *
 * Invariants:
 * - decrees are dense: next_decree == logged + 1 between groups, where
 *   logged is the applied decree or, after a group that went out and
 *   failed, the end of the log's tail;
 * - timestamps never go backwards within a partition, across groups and
 *   restarts (the start reads the last logged mutation's timestamp), so
 *   apply sees time move forward even when the wall clock steps back;
 * - every accepted entry is completed exactly once, also during stop: the
 *   thread exits only once stopping is set and the queue is empty, and
 *   nothing is accepted after stopping is set.
 *
 * Inline groups (durability=os only). repl_commit_inline lets the
 * submitting thread run its own mutation as a group of one when the
 * writer has nothing queued and no group running: the same run_group
 * (decree, timestamp, apply, log, one commit, callback), only without the
 * two thread hand-offs, which cost more than the commit itself when there
 * is no fsync to share. `busy` says a group is running (the writer's or an
 * inline one); the writer takes no group while it is set, and an inline
 * caller finding the queue non-empty or busy set queues as usual, so
 * groups still run one at a time and in decree order. Under fsync the
 * writer thread always commits: an HTTP worker must not wait for a disk,
 * and queued writes are what make the groups grow.
 *
 * Gathering (a primary with secondaries). Such a group costs a round trip
 * to every secondary and an fsync on each of them besides its own, so
 * when writes arrive faster than groups end, larger groups are cheaper
 * than prompt ones: the CPU a group saves is what the next writes wait
 * for. So when the writer comes back from a group and finds writes
 * already queued (it did not have to wait for the first one), and its
 * last group went to secondaries, it waits up to gather_us for the writes
 * it expects: those queued meanwhile plus one from each writer of the
 * last group, whose answers just went out (closed-loop clients send
 * again), at most batch_max. It stops as soon as they are there. A writer
 * that was idle when a write came never waits: a lone client pays
 * nothing. (On a lone node, where a group is one local fsync, gathering
 * measured slower, so it is left to replicated groups.)
 *
 * Liveness: the thread stamps a heartbeat (monotonic ms) every time it goes
 * round its loop, and while idle it waits with a timeout of
 * cfg.heartbeat_ms, so an idle writer keeps beating and only a writer stuck
 * in a group (a hung fsync, a blocked callback) falls silent. The watchdog
 * (service/watchdog.c) reads the heartbeats. The test-only wedge
 * (cfg.test_wedge_after_ms) blocks the thread on `wake` without beating
 * until stop.
 *
 * Threads and locks:
 * - mu protects head, tail, depth, gather_want, stopping, idle and wedged.
 *   Producers take it in repl_submit_take; the writer takes it to wait and
 *   to unlink a group.
 * - batch, outcomes, next_decree, last_ts, trimmed_below, taken_us,
 *   committed_us, last_group and gather_us belong to whoever runs the
 *   current group: the writer thread, or an inline caller while it holds
 *   `busy` (set and cleared under mu, which orders the hand-over).
 * - the stats fields are written with relaxed atomics (by producers and the
 *   writer) and read without the lock by repl_writer_stats; the copy is not a
 *   consistent snapshot across fields.
 * - callbacks run on the writer thread without mu held, so a callback may
 *   submit to this writer again; it must not block and must not call
 *   repl_writer_stop (the thread would join itself).
 */
#include "replication/writer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/apply.h"

/* Trim the log when it holds this many decrees beyond log_retain: one
 * range delete per 1024 commits instead of one per group. */
#define TRIM_STEP 1024u

/* The writer runs RocksDB's write path and the callbacks on its stack.
 * glibc's default is 8 MiB; 1 MiB is still generous for that path and
 * sanitizer builds, and only touched pages cost memory. */
#define WRITER_STACK_BYTES (1024u * 1024u)

#define N_BUCKETS (sizeof(((struct repl_writer_stats *)0)->batch_size_buckets) / sizeof(uint64_t))

/* A secondary's prepare: mutations to log, the primary's committed decree. */
struct repl_prepare {
    struct store_mutation **ms;
    size_t n;
    uint64_t committed;
    repl_prepared_fn done;
};

struct repl_entry {
    struct repl_entry *next;
    struct store_mutation *m;
    size_t size; /* store_mutation_size(m), computed before the lock */
    repl_done_fn done;
    void *arg;
    struct repl_prepare *prep; /* a prepare instead of a write (m NULL) */
};

struct repl_writer {
    struct store_partition *sp; /* borrowed */
    struct repl_writer_config cfg;
    char name[64];        /* for logs */
    char thread_name[16]; /* pthread_setname_np limit: 15 chars + NUL */
    pthread_t thread;

    /* Protected by mu. */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* CLOCK_MONOTONIC; the writer waits here; one waiter only */
    struct repl_entry *head, *tail;
    size_t depth;
    size_t gather_want; /* gathering: the writer waits for this depth */
    bool stopping;
    bool idle;                   /* the writer is waiting on wake: producers signal it */
    bool wedged;                 /* the test-only wedge has happened (it happens once) */
    bool busy;                   /* a group is running (the writer's or an inline one) */
    repl_replicate_fn replicate; /* a primary's secondaries get each group first */
    void *replicate_arg;
    repl_tick_fn tick; /* the replica's timer, on this thread */
    void *tick_arg;
    uint64_t tick_ms;   /* at least this often */
    uint64_t keep_from; /* atomic: trimming leaves decrees from here (0: none) */
    bool tick_now;      /* asked for at once */

    /* Writer thread only. */
    struct store_batch *batch;
    struct store_outcome *outcomes; /* one per mutation of the group */
    size_t outcomes_cap;
    uint64_t next_decree;
    uint64_t logged;        /* the last decree logged (applied, or beyond: a tail) */
    uint64_t ticked_ms;     /* cellar_mono_ms() of the last tick */
    uint64_t last_ts;       /* timestamp_ms of the last stamped mutation */
    uint64_t trimmed_below; /* log entries below this were trimmed */
    uint64_t started_ms;    /* cellar_mono_ms() at start, for the test wedge */
    uint64_t taken_us;      /* the current group: taken off the queue */
    uint64_t committed_us;  /* the current group: its commit returned */
    size_t last_group;      /* mutations in the last group run */
    uint64_t gather_us;     /* the last group went to secondaries: gather this long */
    bool short_of_space;    /* the last commit failed with -CELLAR_ENOSPC */
    uint64_t probed_ms;     /* cellar_mono_ms() of the last no-space probe */

    /* Relaxed atomics; see repl_writer_stats. */
    uint64_t st_committed_decree;
    uint64_t st_logged_decree; /* a secondary's last logged decree */
    uint64_t st_batches;
    uint64_t st_mutations;
    uint64_t st_queue_depth;
    uint64_t st_failed_batches;
    uint64_t st_gathers;
    uint64_t st_buckets[N_BUCKETS];
    uint64_t st_commit_buckets[REPL_COMMIT_BUCKETS];
    uint64_t st_commit_us_sum;
    uint64_t st_heartbeat_ms; /* cellar_mono_ms() of the last loop */
};

static inline void stat_add(uint64_t *p, uint64_t v)
{
    __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}

static inline void stat_set(uint64_t *p, uint64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline uint64_t stat_get(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void repl_writer_config_defaults(struct repl_writer_config *cfg)
{
    cfg->queue_max = 4096;
    cfg->batch_max = 512;
    cfg->batch_max_bytes = 8u * 1024 * 1024;
    cfg->sync = true;
    cfg->log_retain = 100000;
    cfg->heartbeat_ms = 1000;
    cfg->test_wedge_after_ms = 0;
}

/* The histogram bucket of a group of n: the smallest i with n <= 2^i, the
 * last bucket taking everything larger. Buckets are not cumulative. */
static size_t bucket_of(size_t n)
{
    size_t i = 0;
    while (i < N_BUCKETS - 1 && ((size_t)1 << i) < n)
        i++;
    return i;
}

/* Unlinks the next group from the queue. Called with mu held and the queue
 * non-empty. Returns the group's first entry (a NULL-terminated list). */
static struct repl_entry *take_group(struct repl_writer *w, size_t *out_n)
{
    /* The first entry always goes, however large: a group is never empty.
     * A prepare is a group of its own. */
    struct repl_entry *first = w->head, *last = first, *e = first->next;
    size_t n = 1, bytes = first->size;
    while (e && !first->prep && !e->prep && n < w->cfg.batch_max &&
           bytes + e->size <= w->cfg.batch_max_bytes) {
        bytes += e->size;
        n++;
        last = e;
        e = e->next;
    }
    last->next = NULL;
    w->head = e;
    if (!e)
        w->tail = NULL;
    w->depth -= n;
    stat_set(&w->st_queue_depth, w->depth);
    *out_n = n;
    return first;
}

/* The next timestamp: the wall clock, but never before the previous one. */
static uint64_t next_timestamp(struct repl_writer *w)
{
    uint64_t now = cellar_now_ms();
    if (now < w->last_ts)
        now = w->last_ts;
    w->last_ts = now;
    return now;
}

/* Keeps about log_retain log entries behind the applied decree. A failure
 * here loses nothing (the entries are trimmed by a later call), so it is
 * only logged. */
static void maybe_trim(struct repl_writer *w, uint64_t applied)
{
    if (applied <= w->cfg.log_retain)
        return;
    uint64_t below = applied - w->cfg.log_retain + 1;
    uint64_t keep = __atomic_load_n(&w->keep_from, __ATOMIC_RELAXED);
    if (keep && keep < below)
        below = keep; /* a learner still needs them */
    if (below < w->trimmed_below + TRIM_STEP)
        return;
    int rc = store_partition_trim_log(w->sp, below);
    if (rc) {
        log_warn("writer %s: trimming the log below decree %" PRIu64 " failed: %s", w->name, below,
                 cellar_strerror(rc));
        return;
    }
    w->trimmed_below = below;
}

/* Logs the moments a partition runs out of space and gets it back: one
 * line each, not one per failed group. rc is a commit's result; another
 * error ends the no-space episode silently (it is logged where it
 * happens). */
static void note_space(struct repl_writer *w, int rc)
{
    bool short_now = rc == -CELLAR_ENOSPC;
    if (short_now == w->short_of_space)
        return;
    w->short_of_space = short_now;
    if (short_now)
        log_err("writer %s: the disk is full: writes are refused (507) until space is freed; "
                "reads go on",
                w->name);
    else if (rc == 0)
        log_notice("writer %s: space is available again: writes resumed", w->name);
}

/* While short of space and idle: one empty commit (the applied decree,
 * unchanged) per heartbeat tells whether RocksDB takes writes again. */
static bool probe_due(const struct repl_writer *w)
{
    return w->short_of_space && cellar_mono_ms() - w->probed_ms >= w->cfg.heartbeat_ms;
}

static void probe_space(struct repl_writer *w)
{
    w->probed_ms = cellar_mono_ms();
    int rc = store_batch_commit(w->batch, w->next_decree - 1, w->cfg.sync);
    if (rc && rc != -CELLAR_ENOSPC)
        log_warn("writer %s: probing for free space failed: %s", w->name, cellar_strerror(rc));
    note_space(w, rc);
}

/* A primary's group that failed after it went to the secondaries: one of
 * them may have logged it, and a later primary may commit it, so it is
 * not undone but kept here as the log's tail (logged, not applied), and
 * its decrees are not given again. The next group first commits it
 * (repl_writer_commit_tail). When it cannot even be logged its decrees
 * are given again, which a secondary takes as an overwrite. */
static void keep_as_tail(struct repl_writer *w, struct repl_entry *group, uint64_t last)
{
    store_batch_free(w->batch);
    w->batch = store_batch_new(w->sp);
    for (struct repl_entry *e = group; e; e = e->next)
        store_log(w->batch, e->m);
    int rc = store_batch_commit(w->batch, store_partition_applied_decree(w->sp), w->cfg.sync);
    if (rc) {
        log_err("writer %s: keeping decrees up to %" PRIu64 " as the log's tail failed: %s",
                w->name, last, cellar_strerror(rc));
        store_batch_free(w->batch);
        w->batch = store_batch_new(w->sp);
        return;
    }
    w->logged = last;
    stat_set(&w->st_logged_decree, last);
}

/* Applies, commits and completes one group (whoever holds `busy`, no
 * lock). inline_entry, when not NULL, is the caller's own entry, not
 * malloc'ed. A tail left by an earlier group is committed first; when it
 * cannot be, this group is not sent anywhere and fails. */
static void run_group(struct repl_writer *w, struct repl_entry *group, size_t n,
                      const struct repl_entry *inline_entry)
{
    w->last_group = n;
    w->gather_us = 0; /* until the replication hook says this group went out */
    if (n > w->outcomes_cap) {
        w->outcomes = cellar_xrealloc(w->outcomes, n * sizeof(*w->outcomes));
        w->outcomes_cap = n;
    }
    memset(w->outcomes, 0, n * sizeof(*w->outcomes));

    int rc = 0;
    if (w->logged > store_partition_applied_decree(w->sp)) {
        rc = repl_writer_commit_tail(w);
        if (rc == -CELLAR_EOUTCOME)
            rc = -CELLAR_EUNAVAIL; /* the tail's fate, not this group's: it went nowhere */
    }
    size_t touched = 0; /* outcomes store_apply filled: to fini */
    for (struct repl_entry *e = rc == 0 ? group : NULL; e; e = e->next) {
        e->m->decree = w->next_decree++;
        e->m->timestamp_ms = next_timestamp(w);
        store_log(w->batch, e->m);
        rc = store_apply(w->batch, e->m, &w->outcomes[touched++]);
        if (rc) {
            log_err("writer %s: applying decree %" PRIu64 " failed: %s; failing %zu mutations",
                    w->name, e->m->decree, cellar_strerror(rc), n);
            /* The batch holds part of the group: discard it whole. */
            store_batch_free(w->batch);
            w->batch = store_batch_new(w->sp);
            break;
        }
    }
    uint64_t last = w->next_decree - 1;
    pthread_mutex_lock(&w->mu);
    repl_replicate_fn replicate = w->replicate;
    void *replicate_arg = w->replicate_arg;
    pthread_mutex_unlock(&w->mu);
    if (rc == 0 && replicate) {
        struct store_mutation **ms = cellar_xmalloc(n * sizeof(*ms));
        size_t k = 0;
        for (struct repl_entry *e = group; e; e = e->next)
            ms[k++] = e->m;
        rc = replicate(replicate_arg, ms, n, last - n);
        free(ms);
        if (rc == -CELLAR_EOUTCOME) {
            keep_as_tail(w, group, last);
        } else if (rc) {
            /* Nobody logged the group: the batch is discarded whole. */
            store_batch_free(w->batch);
            w->batch = store_batch_new(w->sp);
        }
    }
    if (rc == 0) {
        uint64_t t0 = cellar_mono_us();
        rc = store_batch_commit(w->batch, last, w->cfg.sync);
        w->committed_us = cellar_mono_us();
        uint64_t us = w->committed_us - t0;
        size_t b = 0;
        while (b < REPL_COMMIT_BUCKETS - 1 && us > REPL_COMMIT_BUCKET_US(b))
            b++;
        stat_add(&w->st_commit_buckets[b], 1);
        stat_add(&w->st_commit_us_sum, us);
        note_space(w, rc);
        if (rc == -CELLAR_ENOSPC)
            log_debug("writer %s: committing decrees %" PRIu64 "..%" PRIu64 " failed: %s", w->name,
                      last + 1 - n, last, cellar_strerror(rc));
        else if (rc)
            log_err("writer %s: committing decrees %" PRIu64 "..%" PRIu64 " failed: %s", w->name,
                    last + 1 - n, last, cellar_strerror(rc));
    }
    if (rc) {
        w->committed_us = cellar_mono_us();
        /* After the tail (kept, or one that could not be committed), or
         * the group's decrees again. */
        w->next_decree = w->logged + 1;
        stat_add(&w->st_failed_batches, 1);
    } else {
        w->logged = last;
        stat_set(&w->st_committed_decree, last);
        stat_set(&w->st_logged_decree, last);
        stat_add(&w->st_batches, 1);
        stat_add(&w->st_mutations, n);
        stat_add(&w->st_buckets[bucket_of(n)], 1);
    }

    size_t i = 0;
    for (struct repl_entry *e = group, *next; e; e = next, i++) {
        next = e->next;
        e->done(e->arg, rc, rc ? NULL : &w->outcomes[i]);
        if (i < touched)
            store_outcome_fini(&w->outcomes[i]);
        store_mutation_free(e->m);
        if (e != inline_entry)
            free(e);
    }

    if (rc == 0)
        maybe_trim(w, last);
}

/* A mutation logged at decree d: this prepare's own, or read back from
 * the log. NULL when the log has no entry there. Owned by the caller
 * when *owned. */
static struct store_mutation *logged_at(struct repl_writer *w, const struct repl_prepare *p,
                                        uint64_t d, bool *owned)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->ms[i]->decree == d) {
            *owned = false;
            return p->ms[i];
        }
    }
    struct cellar_buf buf = {0};
    struct store_mutation *m = NULL;
    if (store_partition_read_log(w->sp, d, &buf) < 0 ||
        store_mutation_decode(buf.data, buf.len, &m) < 0 || m->decree != d) {
        store_mutation_free(m);
        m = NULL;
    }
    cellar_buf_fini(&buf);
    *owned = true;
    return m;
}

int repl_writer_commit_tail(struct repl_writer *w)
{
    uint64_t applied = store_partition_applied_decree(w->sp);
    if (w->logged <= applied) {
        w->logged = applied;
        w->next_decree = applied + 1;
        return 0;
    }
    static const struct repl_prepare none;
    size_t n = (size_t)(w->logged - applied);
    struct store_mutation **ms = cellar_xcalloc(n, sizeof(*ms));
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        bool owned;
        ms[i] = logged_at(w, &none, applied + 1 + i, &owned);
        if (!ms[i]) {
            log_err("writer %s: the log's tail has no decree %" PRIu64, w->name, applied + 1 + i);
            rc = -CELLAR_ECORRUPT;
            break;
        }
        rc = store_replay(w->batch, ms[i]);
    }
    pthread_mutex_lock(&w->mu);
    repl_replicate_fn replicate = w->replicate;
    void *replicate_arg = w->replicate_arg;
    pthread_mutex_unlock(&w->mu);
    if (rc == 0 && replicate)
        rc = replicate(replicate_arg, ms, n, applied);
    if (rc == 0)
        rc = store_batch_commit(w->batch, w->logged, w->cfg.sync);
    if (rc) {
        store_batch_free(w->batch);
        w->batch = store_batch_new(w->sp);
    } else {
        log_info("writer %s: committed the log's tail, decrees %" PRIu64 "..%" PRIu64, w->name,
                 applied + 1, w->logged);
        w->next_decree = w->logged + 1;
        if (ms[n - 1]->timestamp_ms > w->last_ts)
            w->last_ts = ms[n - 1]->timestamp_ms;
        stat_set(&w->st_committed_decree, w->logged);
    }
    for (size_t i = 0; i < n; i++)
        store_mutation_free(ms[i]);
    free(ms);
    return rc;
}

/* A secondary's prepare: log its mutations, apply what is committed and
 * logged, one commit (synced under durability=fsync), then done. */
static void run_prepare(struct repl_writer *w, struct repl_entry *e)
{
    struct repl_prepare *p = e->prep;
    /* The log ends at the newest decree this prepare logs (entries beyond
     * it are from a primary that failed before committing them), or where
     * it ended when it logs nothing. */
    uint64_t applied = store_partition_applied_decree(w->sp);
    uint64_t logged = w->logged > applied ? w->logged : applied, newest = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->ms[i]->decree <= applied)
            continue; /* committed already: the same mutation, logged */
        store_log(w->batch, p->ms[i]);
        if (p->ms[i]->decree > newest)
            newest = p->ms[i]->decree;
    }
    if (newest)
        logged = newest;
    int rc = 0;
    uint64_t target = p->committed < logged ? p->committed : logged, d = applied + 1;
    for (; d <= target && rc == 0; d++) {
        bool owned = false;
        struct store_mutation *m = logged_at(w, p, d, &owned);
        if (!m)
            break; /* not logged here: applied up to the gap */
        rc = store_replay(w->batch, m);
        if (owned)
            store_mutation_free(m);
    }
    uint64_t now_applied = rc == 0 ? d - 1 : applied;
    /* A heartbeat that makes nothing newly committed writes nothing. */
    bool nothing = p->n == 0 && now_applied == applied;
    if (rc == 0 && !nothing)
        rc = store_batch_commit(w->batch, now_applied, w->cfg.sync);
    if (rc) {
        log_err("writer %s: a prepare up to decree %" PRIu64 " failed: %s", w->name, logged,
                cellar_strerror(rc));
        store_batch_free(w->batch);
        w->batch = store_batch_new(w->sp);
    } else if (!nothing) {
        stat_set(&w->st_committed_decree, now_applied);
        stat_add(&w->st_batches, 1);
        stat_add(&w->st_mutations, p->n);
        w->logged = logged;
        stat_set(&w->st_logged_decree, logged);
        maybe_trim(w, now_applied);
    }
    p->done(e->arg, rc, rc ? 0 : logged, rc ? 0 : now_applied);
    for (size_t i = 0; i < p->n; i++)
        store_mutation_free(p->ms[i]);
    free(p->ms);
    free(p);
    free(e);
}

static void beat(struct repl_writer *w)
{
    stat_set(&w->st_heartbeat_ms, cellar_mono_ms());
}

/* Whether the replica's tick is due (asked for, or tick_ms since the
 * last). mu held. */
static bool tick_due(const struct repl_writer *w)
{
    return w->tick && !w->stopping &&
           (w->tick_now || cellar_mono_ms() - w->ticked_ms >= w->tick_ms);
}

/* Waits on wake for at most cfg.heartbeat_ms, and no longer than until
 * the next tick. mu held. */
static void wait_one_beat(struct repl_writer *w)
{
    uint64_t ms = w->cfg.heartbeat_ms;
    if (w->tick) {
        uint64_t since = cellar_mono_ms() - w->ticked_ms;
        uint64_t left = since < w->tick_ms ? w->tick_ms - since : 1;
        if (left < ms)
            ms = left;
    }
    struct timespec ts = cellar_deadline_us(CLOCK_MONOTONIC, ms * 1000u);
    pthread_cond_timedwait(&w->wake, &w->mu, &ts);
}

/* TEST ONLY (cfg.test_wedge_after_ms): once the time has come, stop working
 * and beating until repl_writer_stop, like a writer stuck in I/O. mu held. */
static void maybe_wedge(struct repl_writer *w)
{
    if (w->cfg.test_wedge_after_ms == 0 || w->wedged ||
        cellar_mono_ms() - w->started_ms < w->cfg.test_wedge_after_ms)
        return;
    w->wedged = true;
    log_warn("writer %s: wedged on purpose (test_wedge_writer_after_s, a test-only setting)",
             w->name);
    while (!w->stopping)
        pthread_cond_wait(&w->wake, &w->mu);
    log_warn("writer %s: wedge released by stop", w->name);
}

/* Gathering (see the top): caller holds mu, the queue is not empty and the
 * writer found it so without waiting. */
static void gather(struct repl_writer *w)
{
    size_t want = w->depth + w->last_group;
    if (want > w->cfg.batch_max)
        want = w->cfg.batch_max;
    if (!w->gather_us || w->head->prep || w->depth >= want || w->stopping)
        return;
    struct timespec until = cellar_deadline_us(CLOCK_MONOTONIC, w->gather_us);
    w->gather_want = want;
    while (w->depth < want && !w->stopping &&
           pthread_cond_timedwait(&w->wake, &w->mu, &until) == 0) {
    }
    w->gather_want = 0;
    stat_add(&w->st_gathers, 1);
}

static void *writer_main(void *arg)
{
    struct repl_writer *w = arg;
    pthread_setname_np(pthread_self(), w->thread_name);
    for (;;) {
        bool probe = false, tick = false, waited = false;
        pthread_mutex_lock(&w->mu);
        for (;;) {
            beat(w);
            maybe_wedge(w);
            if (!w->busy &&
                ((tick = tick_due(w)) || w->head || w->stopping || (probe = probe_due(w))))
                break;
            w->idle = true;
            waited = true;
            wait_one_beat(w);
            w->idle = false;
        }
        if (tick) {
            /* Before any queued group: a primary's tail, or its lease. */
            w->tick_now = false;
            w->ticked_ms = cellar_mono_ms();
            w->busy = true;
            pthread_mutex_unlock(&w->mu);
            w->tick(w->tick_arg);
            pthread_mutex_lock(&w->mu);
            w->busy = false;
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        if (!w->head && probe) {
            w->busy = true; /* the batch is the probe's: no inline group now */
            pthread_mutex_unlock(&w->mu);
            probe_space(w);
            pthread_mutex_lock(&w->mu);
            w->busy = false;
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        if (!w->head) { /* stopping and drained */
            pthread_mutex_unlock(&w->mu);
            break;
        }
        if (!waited)
            gather(w);
        size_t n = 0;
        struct repl_entry *group = take_group(w, &n);
        w->busy = true;
        pthread_mutex_unlock(&w->mu);
        w->taken_us = cellar_mono_us();
        if (group->prep)
            run_prepare(w, group);
        else
            run_group(w, group, n, NULL);
        pthread_mutex_lock(&w->mu);
        w->busy = false;
        pthread_mutex_unlock(&w->mu);
    }
    log_debug("writer %s: stopped at decree %" PRIu64, w->name, w->next_decree - 1);
    return NULL;
}

/* The timestamp of the last logged mutation, so that timestamps keep
 * increasing across restarts. 0 when the log has no entry for it (new
 * partition, log_retain 0) or it cannot be read: then the clock alone
 * decides, which is what a fresh partition does anyway. */
static uint64_t last_logged_timestamp(struct repl_writer *w, uint64_t applied)
{
    if (applied == 0)
        return 0;
    struct cellar_buf buf = {0};
    struct store_mutation *m = NULL;
    uint64_t ts = 0;
    int rc = store_partition_read_log(w->sp, applied, &buf);
    if (rc == 0)
        rc = store_mutation_decode(buf.data, buf.len, &m);
    if (rc == 0)
        ts = m->timestamp_ms;
    else if (rc != -CELLAR_ENOTFOUND && rc != -CELLAR_EUNAVAIL)
        log_warn("writer %s: reading log entry %" PRIu64 " failed: %s", w->name, applied,
                 cellar_strerror(rc));
    store_mutation_free(m);
    cellar_buf_fini(&buf);
    return ts;
}

int repl_writer_start(struct store_partition *sp, const struct repl_writer_config *cfg,
                      const char *name, struct repl_writer **out)
{
    *out = NULL;
    if (!sp || !cfg || !name || cfg->queue_max == 0 || cfg->batch_max == 0)
        return -CELLAR_EINVAL;

    struct repl_writer *w = cellar_xcalloc(1, sizeof(*w));
    w->sp = sp;
    w->cfg = *cfg;
    snprintf(w->name, sizeof(w->name), "%s", name);
    snprintf(w->thread_name, sizeof(w->thread_name), "%s", name);
    if (w->cfg.heartbeat_ms == 0)
        w->cfg.heartbeat_ms = 1000;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);

    uint64_t applied = store_partition_applied_decree(sp);
    w->next_decree = applied + 1;
    /* A secondary may have logged decrees beyond what it applied. */
    w->logged = applied;
    struct cellar_buf probe = {0};
    while (w->logged < applied + 100000 &&
           store_partition_read_log(sp, w->logged + 1, &probe) == 0) {
        cellar_buf_reset(&probe);
        w->logged++;
    }
    cellar_buf_fini(&probe);
    w->st_logged_decree = w->logged;
    w->last_ts = last_logged_timestamp(w, applied);
    w->trimmed_below = 1;
    w->st_committed_decree = applied;
    w->batch = store_batch_new(sp);
    w->started_ms = cellar_mono_ms();
    w->st_heartbeat_ms = w->started_ms;

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WRITER_STACK_BYTES);
    int err = pthread_create(&w->thread, &attr, writer_main, w);
    pthread_attr_destroy(&attr);
    if (err) {
        log_err("writer %s: cannot start thread: %s", name, strerror(err));
        store_batch_free(w->batch);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return -CELLAR_ESYS;
    }
    log_debug("writer %s: started at decree %" PRIu64, w->name, applied);
    *out = w;
    return 0;
}

void repl_writer_stop(struct repl_writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);

    CELLAR_ASSERT(w->head == NULL && w->depth == 0);
    store_batch_free(w->batch);
    free(w->outcomes);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* Queues e for the writer thread, or refuses it: -CELLAR_ESHUTDOWN
 * (stopping), -CELLAR_EUNAVAIL (the partition failed), -CELLAR_EBUSY (the
 * queue is full). A refused entry stays the caller's. */
static int enqueue(struct repl_writer *w, struct repl_entry *e)
{
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        rc = -CELLAR_ESHUTDOWN;
    } else if (store_partition_health(w->sp, NULL, 0) == STORE_HEALTH_FAILED) {
        rc = -CELLAR_EUNAVAIL;
    } else if (w->depth >= w->cfg.queue_max) {
        rc = -CELLAR_EBUSY;
    } else {
        if (w->tail)
            w->tail->next = e;
        else
            w->head = e;
        w->tail = e;
        w->depth++;
        stat_set(&w->st_queue_depth, w->depth);
        if (w->idle || w->depth == w->gather_want)
            pthread_cond_signal(&w->wake);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int repl_submit_take(struct repl_writer *w, struct store_mutation *m, repl_done_fn done, void *arg)
{
    CELLAR_ASSERT(w && m && done);
    /* Everything that can be done without the lock is done here. */
    struct repl_entry *e = cellar_xmalloc(sizeof(*e));
    e->next = NULL;
    e->prep = NULL;
    e->m = m;
    e->size = store_mutation_size(m);
    e->done = done;
    e->arg = arg;

    int rc = enqueue(w, e);
    if (rc) {
        free(e);
        store_mutation_free(m);
    }
    return rc;
}

void repl_writer_gather_next(struct repl_writer *w, uint64_t us)
{
    w->gather_us = us;
}

void repl_writer_set_replicate(struct repl_writer *w, repl_replicate_fn fn, void *arg)
{
    pthread_mutex_lock(&w->mu);
    w->replicate = fn;
    w->replicate_arg = arg;
    pthread_mutex_unlock(&w->mu);
}

void repl_writer_set_tick(struct repl_writer *w, repl_tick_fn fn, void *arg, uint64_t every_ms)
{
    pthread_mutex_lock(&w->mu);
    w->tick = fn;
    w->tick_arg = arg;
    w->tick_ms = every_ms ? every_ms : 1;
    w->tick_now = fn != NULL;
    if (w->idle)
        pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
}

void repl_writer_keep_log_from(struct repl_writer *w, uint64_t decree)
{
    __atomic_store_n(&w->keep_from, decree, __ATOMIC_RELAXED);
}

void repl_writer_tick_soon(struct repl_writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->tick_now = true;
    if (w->idle)
        pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
}

int repl_writer_submit_prepare(struct repl_writer *w, struct store_mutation **ms, size_t n,
                               uint64_t committed, repl_prepared_fn done, void *arg)
{
    struct repl_entry *e = cellar_xcalloc(1, sizeof(*e));
    struct repl_prepare *p = cellar_xcalloc(1, sizeof(*p));
    p->ms = ms;
    p->n = n;
    p->committed = committed;
    p->done = done;
    e->prep = p;
    e->arg = arg;
    int rc = enqueue(w, e);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            store_mutation_free(ms[i]);
        free(ms);
        free(p);
        free(e);
    }
    return rc;
}

int repl_commit_inline(struct repl_writer *w, struct store_mutation *m, repl_done_fn done,
                       void *arg)
{
    CELLAR_ASSERT(w && m && done);
    if (w->cfg.sync || w->cfg.test_wedge_after_ms)
        return 0;
    pthread_mutex_lock(&w->mu);
    if (w->replicate) { /* a primary's groups go to its secondaries first */
        pthread_mutex_unlock(&w->mu);
        return 0;
    }
    /* Only a healthy partition: a failed one is refused and a full one is
     * probed by the writer thread, both on the queued path. */
    bool mine = !w->stopping && !w->busy && !w->head &&
                store_partition_health(w->sp, NULL, 0) == STORE_HEALTH_OK;
    if (mine)
        w->busy = true;
    pthread_mutex_unlock(&w->mu);
    if (!mine)
        return 0;

    struct repl_entry e = {
        .next = NULL, .m = m, .size = store_mutation_size(m), .done = done, .arg = arg};
    w->taken_us = cellar_mono_us();
    run_group(w, &e, 1, &e);

    pthread_mutex_lock(&w->mu);
    w->busy = false;
    if (w->idle && (w->head || w->stopping))
        pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    return 1;
}

void repl_writer_stats(const struct repl_writer *w, struct repl_writer_stats *out)
{
    out->committed_decree = stat_get(&w->st_committed_decree);
    out->logged_decree = stat_get(&w->st_logged_decree);
    if (out->logged_decree < out->committed_decree)
        out->logged_decree = out->committed_decree;
    out->batches = stat_get(&w->st_batches);
    out->mutations = stat_get(&w->st_mutations);
    out->queue_depth = stat_get(&w->st_queue_depth);
    out->failed_batches = stat_get(&w->st_failed_batches);
    out->gathers = stat_get(&w->st_gathers);
    for (size_t i = 0; i < N_BUCKETS; i++)
        out->batch_size_buckets[i] = stat_get(&w->st_buckets[i]);
    for (size_t i = 0; i < REPL_COMMIT_BUCKETS; i++)
        out->commit_buckets[i] = stat_get(&w->st_commit_buckets[i]);
    out->commit_us_sum = stat_get(&w->st_commit_us_sum);
}

void repl_writer_group_times(const struct repl_writer *w, uint64_t *taken_us,
                             uint64_t *committed_us)
{
    *taken_us = w->taken_us;
    *committed_us = w->committed_us;
}

uint64_t repl_writer_heartbeat_ms(const struct repl_writer *w)
{
    return stat_get(&w->st_heartbeat_ms);
}

const char *repl_writer_name(const struct repl_writer *w)
{
    return w->name;
}

/*
 * test_writer.c - the partition writer (replication/writer.h) against a real
 * engine and partition: group commit under concurrent producers, dense
 * decrees, callbacks exactly once and in order, the queue and group limits,
 * stop draining the queue, durability across a killed process, decrees and
 * timestamps continuing after a reopen, log retention, and the failure
 * paths: a group whose commit fails (full disk, injected with
 * store_partition_test_fail_commits) reuses its decrees, the no-space probe,
 * a corrupt partition, and one that could not be opened.
 *
 * No test sleeps to wait out a race. Completions are counted under a mutex
 * and waited for on a condvar with a deadline; the writer is held still by
 * a completion callback that blocks on a semaphore the test controls (the
 * writer thread runs callbacks), which makes queue contents and group sizes
 * deterministic.
 */
#include "common/cellar.h"
#include "replication/writer.h"
#include "storage/engine.h"
#include "storage/mutation.h"
#include "storage/partition.h"
#include "tests/unit/harness.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <time.h>

#define DEADLINE_S 60
#define MAX_PRODUCERS 16

/* --- Fixture: an engine and one partition in a temporary directory ------ */

struct fixture {
    struct store_engine *e;
    struct store_partition *p;
    char dir[4200];
};

static void fx_open_at(struct fixture *f, const char *dir)
{
    struct store_engine_config ec;
    store_engine_config_defaults(&ec);
    ec.block_cache_bytes = 8u << 20;
    snprintf(f->dir, sizeof(f->dir), "%s", dir);
    CHECK_OK(store_engine_new(&ec, &f->e));
    CHECK_OK(store_partition_open(f->e, f->dir, &f->p));
}

static void fx_open(struct fixture *f)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/p0", tmpdir_new());
    fx_open_at(f, dir);
}

static void fx_close(struct fixture *f)
{
    store_partition_close(f->p);
    store_engine_free(f->e);
    f->p = NULL;
    f->e = NULL;
}

static void fx_reopen(struct fixture *f)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", f->dir);
    fx_close(f);
    fx_open_at(f, dir);
}

/* --- Completion tracking ------------------------------------------------ */

struct tracker {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    size_t completed;
    uint64_t last_decree[MAX_PRODUCERS]; /* per producer, in callback order */
    size_t order_errors;
    char thread_name[16]; /* of the thread running the callbacks */
    sem_t entered;        /* posted by a blocking callback on entry */
    sem_t release;        /* a blocking callback waits for this */
};

/* One submitted mutation, filled by its callback. */
struct rec {
    struct tracker *t;
    int producer;
    bool block; /* the callback blocks the writer on t->release */
    int calls;
    int status;
    uint64_t decree;
    bool applied;
    int error;
    int64_t incr_value;
};

static void tracker_init(struct tracker *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    sem_init(&t->entered, 0, 0);
    sem_init(&t->release, 0, 0);
}

static void tracker_fini(struct tracker *t)
{
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->mu);
    sem_destroy(&t->entered);
    sem_destroy(&t->release);
}

static void on_done(void *arg, int status, const struct store_outcome *out)
{
    struct rec *r = arg;
    struct tracker *t = r->t;
    pthread_mutex_lock(&t->mu);
    r->calls++;
    r->status = status;
    if (!t->thread_name[0])
        pthread_getname_np(pthread_self(), t->thread_name, sizeof(t->thread_name));
    if (out) {
        r->decree = out->decree;
        r->applied = out->applied;
        r->error = out->error;
        r->incr_value = out->incr_value;
        if (out->decree <= t->last_decree[r->producer])
            t->order_errors++;
        t->last_decree[r->producer] = out->decree;
    }
    t->completed++;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
    if (r->block) {
        sem_post(&t->entered);
        sem_wait(&t->release);
    }
}

/* Clears n records and ties them to t. */
static void recs_init(struct rec *recs, size_t n, struct tracker *t)
{
    memset(recs, 0, n * sizeof(*recs));
    for (size_t i = 0; i < n; i++)
        recs[i].t = t;
}

static void tracker_wait(struct tracker *t, size_t target)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += DEADLINE_S;
    pthread_mutex_lock(&t->mu);
    while (t->completed < target) {
        int rc = pthread_cond_timedwait(&t->cond, &t->mu, &dl);
        if (rc == ETIMEDOUT && t->completed < target) {
            size_t done = t->completed;
            pthread_mutex_unlock(&t->mu);
            FAIL("only %zu of %zu completions after %d s", done, target, DEADLINE_S);
        }
    }
    pthread_mutex_unlock(&t->mu);
}

/* Waits until a blocking callback has entered: the writer is then held. */
static void wait_entered(struct tracker *t)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += DEADLINE_S;
    while (sem_timedwait(&t->entered, &dl) != 0) {
        if (errno != EINTR)
            FAIL("the blocking callback was not called within %d s", DEADLINE_S);
    }
}

/* --- Mutations and reads ------------------------------------------------ */

/* Producer k's i-th mutation: on row "t<k>", INCR "count" and PUT the
 * unique cell "t<k>-<i>" = "v<i>". */
static struct store_mutation *build_mutation(int k, size_t i)
{
    char hk[32], sk[48], val[32];
    int hl = snprintf(hk, sizeof(hk), "t%d", k);
    int sl = snprintf(sk, sizeof(sk), "t%d-%zu", k, i);
    int vl = snprintf(val, sizeof(val), "v%zu", i);
    struct store_mutation *m = store_mutation_new(hk, (size_t)hl);
    store_mutation_incr(m, "count", 5, 1, 0);
    store_mutation_put(m, sk, (size_t)sl, val, (size_t)vl, NULL, 0, 0);
    return m;
}

/* Submits producer k's i-th mutation, retrying while the queue is full. */
static void submit_retry(struct repl_writer *w, int k, size_t i, struct rec *r, size_t *busy)
{
    for (;;) {
        int rc = repl_submit_take(w, build_mutation(k, i), on_done, r);
        if (rc == 0)
            return;
        if (rc != -CELLAR_EBUSY)
            FAIL("submit returned %d", rc);
        (*busy)++;
        sched_yield();
    }
}

/* Reads a cell; returns false when it does not exist. */
static bool get_cell(struct fixture *f, const char *hk, const char *sk, char *val, size_t cap,
                     uint64_t *version)
{
    struct store_cell c;
    memset(&c, 0, sizeof(c));
    int rc = store_get(f->p, hk, strlen(hk), sk, strlen(sk), store_engine_now(f->e), &c);
    if (rc == -CELLAR_ENOTFOUND)
        return false;
    CHECK_OK(rc);
    if (c.value_len >= cap)
        FAIL("cell %s/%s is %zu bytes", hk, sk, c.value_len);
    memcpy(val, c.value, c.value_len);
    val[c.value_len] = '\0';
    *version = c.hdr.version;
    store_cell_release(&c);
    return true;
}

static int64_t get_int(struct fixture *f, const char *hk, const char *sk)
{
    char val[64];
    uint64_t version = 0;
    int64_t v = 0;
    if (!get_cell(f, hk, sk, val, sizeof(val), &version))
        FAIL("cell %s/%s missing", hk, sk);
    CHECK_OK(cellar_parse_i64(val, strlen(val), &v));
    return v;
}

/* Checks producer k's first n mutations are in the partition, each unique
 * cell with the version its callback reported (when recs is given). */
static void check_producer_data(struct fixture *f, int k, size_t n, const struct rec *recs)
{
    char hk[32], sk[48], val[64], want[32];
    snprintf(hk, sizeof(hk), "t%d", k);
    CHECK_EQ_INT(get_int(f, hk, "count"), (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        uint64_t version = 0;
        snprintf(sk, sizeof(sk), "t%d-%zu", k, i);
        snprintf(want, sizeof(want), "v%zu", i);
        if (!get_cell(f, hk, sk, val, sizeof(val), &version))
            FAIL("cell %s/%s missing", hk, sk);
        CHECK_BYTES(val, strlen(val), want);
        if (recs)
            CHECK_EQ_U64(version, recs[i].decree);
    }
}

/* The timestamp logged with decree d. */
static uint64_t logged_timestamp(struct fixture *f, uint64_t d)
{
    struct cellar_buf buf = {0};
    struct store_mutation *m = NULL;
    int rc = store_partition_read_log(f->p, d, &buf);
    if (rc == 0)
        rc = store_mutation_decode(buf.data, buf.len, &m);
    if (rc)
        FAIL("log entry %" PRIu64 ": %s", d, cellar_strerror(rc));
    CHECK_EQ_U64(m->decree, d);
    uint64_t ts = m->timestamp_ms;
    store_mutation_free(m);
    cellar_buf_fini(&buf);
    return ts;
}

/* --- Producers ---------------------------------------------------------- */

struct producer {
    struct repl_writer *w;
    struct rec *recs; /* n of them */
    int k;
    size_t n;
    size_t busy; /* -CELLAR_EBUSY retries */
};

static void *producer_main(void *arg)
{
    struct producer *pr = arg;
    for (size_t i = 0; i < pr->n; i++)
        submit_retry(pr->w, pr->k, i, &pr->recs[i], &pr->busy);
    return NULL;
}

/* Runs n_prod producer threads of per_prod mutations each against w and
 * waits for every completion. recs holds n_prod * per_prod records. */
static void run_producers(struct repl_writer *w, struct tracker *t, struct rec *recs, int n_prod,
                          size_t per_prod, size_t *busy)
{
    pthread_t th[MAX_PRODUCERS];
    struct producer pr[MAX_PRODUCERS];
    CHECK(n_prod <= MAX_PRODUCERS);
    for (int k = 0; k < n_prod; k++) {
        for (size_t i = 0; i < per_prod; i++) {
            struct rec *r = &recs[(size_t)k * per_prod + i];
            memset(r, 0, sizeof(*r));
            r->t = t;
            r->producer = k;
        }
        pr[k] = (struct producer){w, &recs[(size_t)k * per_prod], k, per_prod, 0};
        CHECK_EQ_INT(pthread_create(&th[k], NULL, producer_main, &pr[k]), 0);
    }
    *busy = 0;
    for (int k = 0; k < n_prod; k++) {
        pthread_join(th[k], NULL);
        *busy += pr[k].busy;
    }
    tracker_wait(t, (size_t)n_prod * per_prod);
}

static void print_stats(const char *test, const struct repl_writer_stats *st, size_t busy)
{
    fprintf(stderr,
            "    %s: %" PRIu64 " mutations in %" PRIu64
            " groups (avg %.1f), %zu EBUSY retries, buckets",
            test, st->mutations, st->batches,
            st->batches ? (double)st->mutations / (double)st->batches : 0.0, busy);
    for (size_t i = 0; i < 12; i++)
        fprintf(stderr, " %" PRIu64, st->batch_size_buckets[i]);
    fprintf(stderr, "\n");
}

/* --- Tests -------------------------------------------------------------- */

TEST(config_defaults_and_bad_config)
{
    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    CHECK_EQ_INT(cfg.queue_max, 4096);
    CHECK_EQ_INT(cfg.batch_max, 512);
    CHECK_EQ_INT(cfg.batch_max_bytes, 8u << 20);
    CHECK(cfg.sync);
    CHECK_EQ_U64(cfg.log_retain, 100000);

    struct fixture f = {0};
    fx_open(&f);
    struct repl_writer *w = (struct repl_writer *)&f; /* must be reset */
    cfg.queue_max = 0;
    CHECK_EQ_INT(repl_writer_start(f.p, &cfg, "p0", &w), -CELLAR_EINVAL);
    CHECK(w == NULL);
    cfg.queue_max = 4;
    cfg.batch_max = 0;
    CHECK_EQ_INT(repl_writer_start(f.p, &cfg, "p0", &w), -CELLAR_EINVAL);
    CHECK(w == NULL);
    repl_writer_stop(NULL);
    fx_close(&f);
}

TEST(group_commit_many_producers)
{
    enum { NP = 8, PER = 2000, N = NP * PER };
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec *recs = cellar_xcalloc(N, sizeof(*recs));

    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "test-writer-with-a-long-name", &w));
    size_t busy = 0;
    run_producers(w, &t, recs, NP, PER, &busy);

    struct repl_writer_stats st;
    repl_writer_stats(w, &st);
    print_stats("group_commit_many_producers", &st, busy);
    repl_writer_stop(w);

    /* Callbacks: once each, success, dense unique decrees 1..N. */
    CHECK_EQ_INT(t.completed, N);
    CHECK_EQ_INT(t.order_errors, 0);
    CHECK_BYTES(t.thread_name, strlen(t.thread_name), "test-writer-wit"); /* 15 chars */
    bool *seen = cellar_xcalloc(N + 1, 1);
    for (size_t j = 0; j < N; j++) {
        const struct rec *r = &recs[j];
        CHECK_EQ_INT(r->calls, 1);
        CHECK_EQ_INT(r->status, 0);
        CHECK(r->applied);
        CHECK_EQ_INT(r->error, 0);
        CHECK(r->decree >= 1 && r->decree <= N);
        CHECK(!seen[r->decree]);
        seen[r->decree] = true;
    }
    /* Per producer: FIFO, so decrees increase with the submission order
     * and the counter's new value is the submission index + 1. */
    for (int k = 0; k < NP; k++) {
        for (size_t i = 0; i < PER; i++) {
            const struct rec *r = &recs[(size_t)k * PER + i];
            if (i > 0)
                CHECK(r->decree > r[-1].decree);
            CHECK_EQ_INT(r->incr_value, (int64_t)i + 1);
        }
    }
    free(seen);

    /* The partition: every cell, versions = decrees, applied decree N. */
    CHECK_EQ_U64(store_partition_applied_decree(f.p), N);
    for (int k = 0; k < NP; k++)
        check_producer_data(&f, k, PER, &recs[(size_t)k * PER]);

    /* Timestamps never go backwards in decree order. */
    uint64_t prev = 0;
    for (uint64_t d = 1; d <= N; d++) {
        uint64_t ts = logged_timestamp(&f, d);
        CHECK(ts >= prev);
        prev = ts;
    }

    /* Stats: grouping happened and the counters add up. */
    CHECK_EQ_U64(st.mutations, N);
    CHECK_EQ_U64(st.committed_decree, N);
    CHECK_EQ_U64(st.queue_depth, 0);
    CHECK_EQ_U64(st.failed_batches, 0);
    CHECK(st.batches < st.mutations);
    uint64_t sum = 0;
    for (size_t i = 0; i < 12; i++)
        sum += st.batch_size_buckets[i];
    CHECK_EQ_U64(sum, st.batches);
    for (size_t i = 10; i < 12; i++) /* no group above batch_max = 512 */
        CHECK_EQ_U64(st.batch_size_buckets[i], 0);

    free(recs);
    tracker_fini(&t);
    fx_close(&f);
}

/* With sync, a completed mutation survives the process being killed right
 * after its callback: the writer calls back only after the write. The
 * engine lives only in the child, so no RocksDB thread crosses the fork. */
TEST(sync_durability_survives_kill)
{
    enum { NP = 4, PER = 500, N = NP * PER };
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/p0", tmpdir_new());

    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct fixture f = {0};
        fx_open_at(&f, dir);
        struct tracker t;
        tracker_init(&t);
        struct rec *recs = cellar_xcalloc(N, sizeof(*recs));
        struct repl_writer_config cfg;
        repl_writer_config_defaults(&cfg);
        cfg.sync = true;
        struct repl_writer *w = NULL;
        CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
        size_t busy = 0;
        run_producers(w, &t, recs, NP, PER, &busy);
        for (size_t j = 0; j < N; j++)
            CHECK_EQ_INT(recs[j].status, 0);
        kill(getpid(), SIGKILL);
        _exit(3); /* not reached */
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        FAIL("the child did not reach the kill (status %d)", status);

    struct fixture f = {0};
    fx_open_at(&f, dir);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), N);
    for (int k = 0; k < NP; k++)
        check_producer_data(&f, k, PER, NULL);
    fx_close(&f);
}

/* A held writer lets exactly queue_max mutations wait; the next one is
 * refused without a callback. Then the queue is taken as one group. */
TEST(queue_limit)
{
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec recs[6];
    recs_init(recs, 6, &t);
    recs[0].block = true;

    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    cfg.queue_max = 4;
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));

    CHECK_OK(repl_submit_take(w, build_mutation(0, 0), on_done, &recs[0]));
    wait_entered(&t); /* the writer now sits in recs[0]'s callback */
    for (size_t i = 1; i <= 4; i++)
        CHECK_OK(repl_submit_take(w, build_mutation(0, i), on_done, &recs[i]));
    struct repl_writer_stats st;
    repl_writer_stats(w, &st);
    CHECK_EQ_U64(st.queue_depth, 4);
    /* Refused: freed by the call (ASan would report a leak), no callback. */
    CHECK_EQ_INT(repl_submit_take(w, build_mutation(0, 5), on_done, &recs[5]), -CELLAR_EBUSY);
    repl_writer_stats(w, &st);
    CHECK_EQ_U64(st.queue_depth, 4);

    sem_post(&t.release);
    tracker_wait(&t, 5);
    repl_writer_stats(w, &st);
    repl_writer_stop(w);

    for (size_t i = 0; i <= 4; i++) {
        CHECK_EQ_INT(recs[i].calls, 1);
        CHECK_EQ_INT(recs[i].status, 0);
        CHECK_EQ_U64(recs[i].decree, i + 1);
    }
    CHECK_EQ_INT(recs[5].calls, 0);
    CHECK_EQ_U64(st.batches, 2); /* {1}, then the four queued at once */
    CHECK_EQ_U64(st.batch_size_buckets[0], 1);
    CHECK_EQ_U64(st.batch_size_buckets[2], 1);
    CHECK_EQ_U64(st.queue_depth, 0);
    CHECK_EQ_INT(get_int(&f, "t0", "count"), 5);
    tracker_fini(&t);
    fx_close(&f);
}

/* Groups stop at batch_max mutations and at batch_max_bytes (but always
 * hold at least one mutation, however large). */
TEST(group_limits)
{
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec recs[16];
    recs_init(recs, 16, &t);

    /* batch_max = 3: seven queued mutations form groups of 3, 3, 1. */
    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    cfg.batch_max = 3;
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
    recs[0].block = true;
    CHECK_OK(repl_submit_take(w, build_mutation(0, 0), on_done, &recs[0]));
    wait_entered(&t);
    for (size_t i = 1; i <= 7; i++)
        CHECK_OK(repl_submit_take(w, build_mutation(0, i), on_done, &recs[i]));
    sem_post(&t.release);
    tracker_wait(&t, 8);
    struct repl_writer_stats st;
    repl_writer_stats(w, &st);
    repl_writer_stop(w);
    CHECK_EQ_U64(st.batches, 4); /* {1} {3} {3} {1} */
    CHECK_EQ_U64(st.batch_size_buckets[0], 2);
    CHECK_EQ_U64(st.batch_size_buckets[2], 2);

    /* batch_max_bytes = two mutations' worth: 2, 2, then a mutation
     * larger than the limit alone, then 1. */
    struct store_mutation *probe = build_mutation(1, 0);
    size_t one = store_mutation_size(probe);
    store_mutation_free(probe);
    CHECK(one > 0);
    repl_writer_config_defaults(&cfg);
    cfg.batch_max_bytes = 2 * one;
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
    t.completed = 0;
    recs[8].block = true;
    CHECK_OK(repl_submit_take(w, build_mutation(1, 0), on_done, &recs[8]));
    wait_entered(&t);
    for (size_t i = 1; i <= 4; i++)
        CHECK_OK(repl_submit_take(w, build_mutation(1, i), on_done, &recs[8 + i]));
    char big[256];
    memset(big, 'x', sizeof(big));
    struct store_mutation *m = store_mutation_new("t1", 2);
    store_mutation_put(m, "big", 3, big, sizeof(big), NULL, 0, 0);
    CHECK(store_mutation_size(m) > cfg.batch_max_bytes);
    CHECK_OK(repl_submit_take(w, m, on_done, &recs[13]));
    CHECK_OK(repl_submit_take(w, build_mutation(1, 5), on_done, &recs[14]));
    sem_post(&t.release);
    tracker_wait(&t, 7);
    repl_writer_stats(w, &st);
    repl_writer_stop(w);
    CHECK_EQ_U64(st.batches, 5); /* {1} {2} {2} {big} {1} */
    CHECK_EQ_U64(st.batch_size_buckets[0], 3);
    CHECK_EQ_U64(st.batch_size_buckets[1], 2);
    for (size_t i = 0; i <= 14; i++) {
        CHECK_EQ_INT(recs[i].calls, 1);
        CHECK_EQ_INT(recs[i].status, 0);
        CHECK_EQ_U64(recs[i].decree, i + 1);
    }
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 15);
    tracker_fini(&t);
    fx_close(&f);
}

/* Stop right after a burst of submissions: every accepted mutation is
 * committed and called back before stop returns. */
TEST(stop_drains_queue)
{
    enum { N = 20000 };
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec *recs = cellar_xcalloc(N, sizeof(*recs));

    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    cfg.queue_max = N;
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
    for (size_t i = 0; i < N; i++) {
        recs[i].t = &t;
        CHECK_OK(repl_submit_take(w, build_mutation(0, i), on_done, &recs[i]));
    }
    repl_writer_stop(w);

    /* No wait: stop returned, so every callback has run. */
    CHECK_EQ_INT(t.completed, N);
    for (size_t i = 0; i < N; i++) {
        CHECK_EQ_INT(recs[i].calls, 1);
        CHECK_EQ_INT(recs[i].status, 0);
        CHECK_EQ_U64(recs[i].decree, i + 1);
    }
    CHECK_EQ_U64(store_partition_applied_decree(f.p), N);
    check_producer_data(&f, 0, N, recs);
    free(recs);
    tracker_fini(&t);
    fx_close(&f);
}

struct stopper {
    struct repl_writer *w;
};

static void *stopper_main(void *arg)
{
    struct stopper *s = arg;
    repl_writer_stop(s->w);
    return NULL;
}

/* Once stop has begun, submissions are refused with -CELLAR_ESHUTDOWN and
 * no callback, while what was queued before is still committed. The writer
 * is held in a callback with a full queue, so until stop begins every
 * submission is refused with -CELLAR_EBUSY: the switch to ESHUTDOWN is
 * observed without any timing assumption, and w cannot be freed before
 * the test releases the writer. */
TEST(stop_refuses_new_and_commits_queued)
{
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec recs[6];
    recs_init(recs, 6, &t);
    recs[0].block = true;

    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    cfg.queue_max = 4;
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
    CHECK_OK(repl_submit_take(w, build_mutation(0, 0), on_done, &recs[0]));
    wait_entered(&t);
    for (size_t i = 1; i <= 4; i++)
        CHECK_OK(repl_submit_take(w, build_mutation(0, i), on_done, &recs[i]));

    struct stopper s = {w};
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, stopper_main, &s), 0);
    uint64_t deadline = cellar_mono_ms() + DEADLINE_S * 1000u;
    size_t busy = 0;
    for (;;) {
        int rc = repl_submit_take(w, build_mutation(0, 5), on_done, &recs[5]);
        if (rc == -CELLAR_ESHUTDOWN)
            break;
        CHECK_EQ_INT(rc, -CELLAR_EBUSY);
        busy++;
        if (cellar_mono_ms() > deadline)
            FAIL("stop did not begin within %d s", DEADLINE_S);
        sched_yield();
    }
    sem_post(&t.release); /* from here on w may be freed at any moment */
    pthread_join(th, NULL);

    CHECK_EQ_INT(t.completed, 5);
    for (size_t i = 0; i <= 4; i++) {
        CHECK_EQ_INT(recs[i].calls, 1);
        CHECK_EQ_INT(recs[i].status, 0);
        CHECK_EQ_U64(recs[i].decree, i + 1);
    }
    CHECK_EQ_INT(recs[5].calls, 0);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 5);
    CHECK_EQ_INT(get_int(&f, "t0", "count"), 5);
    tracker_fini(&t);
    fx_close(&f);
}

/* After a reopen the writer continues at applied + 1, with timestamps not
 * before the last logged one; a mutation refused by its check still takes
 * a decree and reports status 0 with applied = false. */
TEST(decrees_continue_after_reopen)
{
    enum { N = 10 };
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec recs[N + 2];
    recs_init(recs, N + 2, &t);

    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
    for (size_t i = 0; i < N; i++)
        CHECK_OK(repl_submit_take(w, build_mutation(0, i), on_done, &recs[i]));
    tracker_wait(&t, N);
    repl_writer_stop(w);
    uint64_t ts_before = logged_timestamp(&f, N);

    fx_reopen(&f);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), N);
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
    struct repl_writer_stats st;
    repl_writer_stats(w, &st);
    CHECK_EQ_U64(st.committed_decree, N);

    CHECK_OK(repl_submit_take(w, build_mutation(0, N), on_done, &recs[N]));
    struct store_mutation *m = store_mutation_new("t0", 2);
    store_mutation_set_check(m, STORE_CHECK_VALUE_NOT_EXIST, "count", 5, NULL, 0, false);
    store_mutation_put(m, "refused", 7, "x", 1, NULL, 0, 0);
    CHECK_OK(repl_submit_take(w, m, on_done, &recs[N + 1]));
    tracker_wait(&t, N + 2);
    repl_writer_stop(w);

    CHECK_EQ_U64(recs[N].decree, N + 1);
    CHECK(recs[N].applied);
    CHECK_EQ_INT(recs[N + 1].status, 0);
    CHECK_EQ_U64(recs[N + 1].decree, N + 2);
    CHECK(!recs[N + 1].applied);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), N + 2);
    CHECK(logged_timestamp(&f, N + 1) >= ts_before);
    CHECK(logged_timestamp(&f, N + 2) >= logged_timestamp(&f, N + 1));
    check_producer_data(&f, 0, N + 1, recs);
    char val[16];
    uint64_t version = 0;
    CHECK(!get_cell(&f, "t0", "refused", val, sizeof(val), &version));
    tracker_fini(&t);
    fx_close(&f);
}

/* With log_retain = 100 the writer trims old log entries (in steps of
 * 1024 decrees) and keeps the last 100. */
TEST(log_retention)
{
    enum { N = 1500, RETAIN = 100 };
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec *recs = cellar_xcalloc(N, sizeof(*recs));

    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    cfg.queue_max = N;
    cfg.sync = false;
    cfg.log_retain = RETAIN;
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
    for (size_t i = 0; i < N; i++) {
        recs[i].t = &t;
        CHECK_OK(repl_submit_take(w, build_mutation(0, i), on_done, &recs[i]));
    }
    tracker_wait(&t, N);
    repl_writer_stop(w);

    /* The first trim happens once applied - RETAIN + 1 >= 1 + 1024. */
    struct cellar_buf buf = {0};
    CHECK_EQ_INT(store_partition_read_log(f.p, 1, &buf), -CELLAR_ENOTFOUND);
    CHECK_EQ_INT(store_partition_read_log(f.p, 1024, &buf), -CELLAR_ENOTFOUND);
    for (uint64_t d = N - RETAIN + 1; d <= N; d++)
        logged_timestamp(&f, d);

    /* Held for a learner from decree KEEP on: trimming stops short of it,
     * then goes on once let go. (Above N - RETAIN, so whatever the groups
     * were, the first writer has left it.) How far below KEEP the held
     * trim reaches depends on the groups (trims go in steps of 1024 from
     * the first one), so only what is held and what is let go are checked. */
    enum { KEEP = N - RETAIN / 2 };
    memset(recs, 0, N * sizeof(*recs));
    tracker_fini(&t);
    tracker_init(&t);
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
    repl_writer_keep_log_from(w, KEEP);
    for (size_t i = 0; i < N; i++) {
        recs[i].t = &t;
        CHECK_OK(repl_submit_take(w, build_mutation(0, i), on_done, &recs[i]));
    }
    tracker_wait(&t, N);
    for (uint64_t d = KEEP; d <= 2 * N; d += 97)
        logged_timestamp(&f, d);
    repl_writer_keep_log_from(w, 0);
    for (size_t i = 0; i < N; i++)
        CHECK_OK(repl_submit_take(w, build_mutation(0, i), on_done, &recs[i]));
    tracker_wait(&t, 2 * N);
    repl_writer_stop(w);
    CHECK_EQ_INT(store_partition_read_log(f.p, KEEP, &buf), -CELLAR_ENOTFOUND);
    for (uint64_t d = 3 * N - RETAIN + 1; d <= 3 * N; d++)
        logged_timestamp(&f, d);
    cellar_buf_fini(&buf);
    free(recs);
    tracker_fini(&t);
    fx_close(&f);
}

/* Polls the partition's health until it is want, for at most DEADLINE_S. */
static void wait_health(struct fixture *f, enum store_health want)
{
    uint64_t deadline = cellar_mono_ms() + DEADLINE_S * 1000u;
    while (store_partition_health(f->p, NULL, 0) != want) {
        if (cellar_mono_ms() > deadline)
            FAIL("health still %d, not %d, after %d s", store_partition_health(f->p, NULL, 0), want,
                 DEADLINE_S);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* A group whose commit fails (a full disk, injected): every mutation of it
 * gets -CELLAR_ENOSPC and no outcome, nothing of it is applied, its decrees
 * are reused by the next group, and the health says no space until a
 * commit succeeds. The state in memory and on disk (after a reopen) agree. */
TEST(failed_group_reuses_decrees)
{
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec recs[5];
    recs_init(recs, 5, &t);

    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
    /* Decree 1 commits; its callback holds the writer while 1..3 queue. */
    recs[0].block = true;
    CHECK_OK(repl_submit_take(w, build_mutation(0, 0), on_done, &recs[0]));
    wait_entered(&t);
    for (size_t i = 1; i <= 3; i++)
        CHECK_OK(repl_submit_take(w, build_mutation(0, i), on_done, &recs[i]));
    store_partition_test_fail_commits(f.p, -CELLAR_ENOSPC, 1);
    sem_post(&t.release);
    tracker_wait(&t, 4);

    CHECK_EQ_INT(recs[0].status, 0);
    CHECK_EQ_U64(recs[0].decree, 1);
    for (size_t i = 1; i <= 3; i++) {
        CHECK_EQ_INT(recs[i].calls, 1);
        CHECK_EQ_INT(recs[i].status, -CELLAR_ENOSPC);
        CHECK_EQ_U64(recs[i].decree, 0); /* no outcome */
    }
    CHECK_EQ_INT(store_partition_health(f.p, NULL, 0), STORE_HEALTH_NO_SPACE);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 1);
    struct repl_writer_stats st;
    repl_writer_stats(w, &st);
    CHECK_EQ_U64(st.failed_batches, 1);
    CHECK_EQ_U64(st.committed_decree, 1);
    CHECK_EQ_U64(st.mutations, 1);

    /* The next mutation (producer 0's #1 again) gets decree 2 back. */
    CHECK_OK(repl_submit_take(w, build_mutation(0, 1), on_done, &recs[4]));
    tracker_wait(&t, 5);
    CHECK_EQ_INT(recs[4].status, 0);
    CHECK_EQ_U64(recs[4].decree, 2);
    CHECK_EQ_INT(store_partition_health(f.p, NULL, 0), STORE_HEALTH_OK);
    repl_writer_stop(w);

    for (int round = 0; round < 2; round++) { /* in memory, then on disk */
        char val[16];
        uint64_t version = 0;
        CHECK_EQ_U64(store_partition_applied_decree(f.p), 2);
        CHECK_EQ_INT(get_int(&f, "t0", "count"), 2);
        CHECK(get_cell(&f, "t0", "t0-1", val, sizeof(val), &version));
        CHECK_EQ_U64(version, 2);
        CHECK(!get_cell(&f, "t0", "t0-2", val, sizeof(val), &version));
        CHECK(!get_cell(&f, "t0", "t0-3", val, sizeof(val), &version));
        logged_timestamp(&f, 2); /* the log holds decree 2 ... */
        struct cellar_buf buf = {0};
        CHECK_EQ_INT(store_partition_read_log(f.p, 3, &buf), -CELLAR_ENOTFOUND); /* ... not 3 */
        cellar_buf_fini(&buf);
        fx_reopen(&f);
    }
    tracker_fini(&t);
    fx_close(&f);
}

/* Short of space and idle, the writer probes once per heartbeat with an
 * empty commit, so the health clears without a client write; the probes
 * consume no decree. */
TEST(no_space_probe_clears_health_when_idle)
{
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec recs[2];
    recs_init(recs, 2, &t);

    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    cfg.heartbeat_ms = 20;
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
    /* The group and the first two probes fail, the third probe succeeds. */
    store_partition_test_fail_commits(f.p, -CELLAR_ENOSPC, 3);
    CHECK_OK(repl_submit_take(w, build_mutation(0, 0), on_done, &recs[0]));
    tracker_wait(&t, 1);
    CHECK_EQ_INT(recs[0].status, -CELLAR_ENOSPC);
    wait_health(&f, STORE_HEALTH_OK);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 0);
    CHECK_OK(repl_submit_take(w, build_mutation(0, 0), on_done, &recs[1]));
    tracker_wait(&t, 2);
    CHECK_EQ_INT(recs[1].status, 0);
    CHECK_EQ_U64(recs[1].decree, 1);
    repl_writer_stop(w);
    tracker_fini(&t);
    fx_close(&f);
}

/* Corruption met by a commit fails the partition for good: the group gets
 * -CELLAR_EUNAVAIL, later submits are refused at once (no callback), reads
 * are refused, the health says failed and why. */
TEST(corruption_fails_the_partition)
{
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec recs[3];
    recs_init(recs, 3, &t);

    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
    CHECK_OK(repl_submit_take(w, build_mutation(0, 0), on_done, &recs[0]));
    tracker_wait(&t, 1);
    store_partition_test_fail_commits(f.p, -CELLAR_ECORRUPT, 1);
    CHECK_OK(repl_submit_take(w, build_mutation(0, 1), on_done, &recs[1]));
    tracker_wait(&t, 2);
    CHECK_EQ_INT(recs[1].status, -CELLAR_EUNAVAIL);
    char why[256];
    CHECK_EQ_INT(store_partition_health(f.p, why, sizeof(why)), STORE_HEALTH_FAILED);
    CHECK(strstr(why, "corruption") != NULL);
    CHECK_EQ_INT(repl_submit_take(w, build_mutation(0, 2), on_done, &recs[2]), -CELLAR_EUNAVAIL);
    struct store_cell c;
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(store_get(f.p, "t0", 2, "count", 5, store_engine_now(f.e), &c), -CELLAR_EUNAVAIL);
    struct store_iter *it = NULL;
    CHECK_EQ_INT(store_iter_row(f.p, "t0", 2, NULL, false, 0, &it), -CELLAR_EUNAVAIL);
    CHECK(it == NULL);
    repl_writer_stop(w);
    CHECK_EQ_INT(recs[2].calls, 0);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 1);
    tracker_fini(&t);
    fx_close(&f);
}

/* A partition that could not be opened stands in as a failed one: a writer
 * runs on it (the registry starts one per partition) and refuses every
 * submit; every read is refused; it closes like any other. */
TEST(writer_on_a_partition_that_could_not_open)
{
    struct store_engine_config ec;
    store_engine_config_defaults(&ec);
    ec.block_cache_bytes = 8u << 20;
    struct store_engine *e = NULL;
    CHECK_OK(store_engine_new(&ec, &e));
    struct store_partition *p = store_partition_new_failed(e, "/nonexistent/p0", "cannot open");
    char why[64];
    CHECK_EQ_INT(store_partition_health(p, why, sizeof(why)), STORE_HEALTH_FAILED);
    CHECK_BYTES(why, strlen(why), "cannot open");
    CHECK_EQ_U64(store_partition_applied_decree(p), 0);
    CHECK_EQ_U64(store_partition_estimate_keys(p), 0);
    CHECK_EQ_INT(store_partition_compact(p), -CELLAR_EUNAVAIL);
    struct cellar_buf buf = {0};
    CHECK_EQ_INT(store_partition_read_log(p, 1, &buf), -CELLAR_EUNAVAIL);
    struct store_iter *it = NULL;
    CHECK_EQ_INT(store_iter_partition(p, NULL, 0, NULL, 0, 0, &it), -CELLAR_EUNAVAIL);

    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(p, &cfg, "p0", &w));
    struct tracker t;
    tracker_init(&t);
    struct rec r = {.t = &t};
    CHECK_EQ_INT(repl_submit_take(w, build_mutation(0, 0), on_done, &r), -CELLAR_EUNAVAIL);
    repl_writer_stop(w);
    CHECK_EQ_INT(r.calls, 0);
    tracker_fini(&t);
    store_partition_close(p);
    store_engine_free(e);
}

/* durability=os: an idle writer lets the caller commit its mutation as a
 * group of one on its own thread; a busy or non-empty writer, fsync, and
 * a stopping writer do not (the mutation stays the caller's). */
TEST(inline_commit)
{
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec recs[5];
    recs_init(recs, 5, &t);
    recs[1].block = true;
    pthread_setname_np(pthread_self(), "inline-caller");

    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    cfg.sync = false;
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));

    /* Idle: committed here, callback on this thread, before the return. */
    CHECK_EQ_INT(repl_commit_inline(w, build_mutation(0, 0), on_done, &recs[0]), 1);
    CHECK_EQ_INT(recs[0].calls, 1);
    CHECK_EQ_INT(recs[0].status, 0);
    CHECK_EQ_U64(recs[0].decree, 1);
    CHECK(strcmp(t.thread_name, "inline-caller") == 0);

    /* The writer runs a group (held in its callback): not inline. */
    CHECK_OK(repl_submit_take(w, build_mutation(0, 1), on_done, &recs[1]));
    wait_entered(&t);
    struct store_mutation *m = build_mutation(0, 2);
    CHECK_EQ_INT(repl_commit_inline(w, m, on_done, &recs[2]), 0);
    CHECK_EQ_INT(recs[2].calls, 0);
    CHECK_OK(repl_submit_take(w, m, on_done, &recs[2])); /* still ours: queue it */
    sem_post(&t.release);
    tracker_wait(&t, 3);
    CHECK_EQ_U64(recs[1].decree, 2);
    CHECK_EQ_U64(recs[2].decree, 3);

    /* Idle again (once the writer has left its group): inline again,
     * decrees stay dense. */
    m = build_mutation(0, 3);
    uint64_t deadline = cellar_mono_ms() + DEADLINE_S * 1000u;
    while (repl_commit_inline(w, m, on_done, &recs[3]) == 0) {
        CHECK(cellar_mono_ms() < deadline);
        sched_yield();
    }
    CHECK_EQ_U64(recs[3].decree, 4);
    struct repl_writer_stats st;
    repl_writer_stats(w, &st);
    CHECK_EQ_U64(st.mutations, 4);
    CHECK_EQ_U64(st.batches, 4);
    repl_writer_stop(w);
    CHECK_EQ_INT(get_int(&f, "t0", "count"), 4);

    /* fsync: never inline. */
    cfg.sync = true;
    CHECK_OK(repl_writer_start(f.p, &cfg, "p0", &w));
    m = build_mutation(0, 4);
    CHECK_EQ_INT(repl_commit_inline(w, m, on_done, &recs[4]), 0);
    CHECK_OK(repl_submit_take(w, m, on_done, &recs[4]));
    tracker_wait(&t, 5);
    CHECK_EQ_U64(recs[4].decree, 5);
    repl_writer_stop(w);
    tracker_fini(&t);
    fx_close(&f);
}

/* --- Replication: a secondary's prepares, a primary's hook --------------- */

struct prepared {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int calls, status;
    uint64_t logged;
};

static void on_prepared(void *arg, int status, uint64_t logged, uint64_t applied)
{
    (void)applied;
    struct prepared *p = arg;
    pthread_mutex_lock(&p->mu);
    p->calls++;
    p->status = status;
    p->logged = logged;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

/* One prepare of (decree, value of cell "c") pairs, waited for. */
static int prepare(struct repl_writer *w, const uint64_t *decrees, const char *const *values,
                   size_t n, uint64_t committed, uint64_t *logged)
{
    struct prepared p = {.calls = 0};
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cond, NULL);
    struct store_mutation **ms = cellar_xcalloc(n, sizeof(*ms));
    for (size_t i = 0; i < n; i++) {
        ms[i] = store_mutation_new("row", 3);
        store_mutation_put(ms[i], "c", 1, values[i], strlen(values[i]), NULL, 0, 0);
        ms[i]->decree = decrees[i];
        ms[i]->timestamp_ms = 1000 + decrees[i];
    }
    CHECK_OK(repl_writer_submit_prepare(w, ms, n, committed, on_prepared, &p));
    pthread_mutex_lock(&p.mu);
    while (p.calls == 0)
        pthread_cond_wait(&p.cond, &p.mu);
    pthread_mutex_unlock(&p.mu);
    pthread_cond_destroy(&p.cond);
    pthread_mutex_destroy(&p.mu);
    *logged = p.logged;
    return p.status;
}

static void expect_cell(struct fixture *f, const char *want)
{
    struct store_cell c;
    int rc = store_get(f->p, "row", 3, "c", 1, 0, &c);
    if (!want) {
        CHECK_EQ_INT(rc, -CELLAR_ENOTFOUND);
        return;
    }
    CHECK_OK(rc);
    CHECK_BYTES(c.value, c.value_len, want);
    store_cell_release(&c);
}

TEST(secondary_logs_then_applies_what_is_committed)
{
    struct fixture f = {0};
    fx_open(&f);
    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "sec", &w));
    uint64_t logged = 0;

    /* Logged, nothing committed yet: nothing applied. */
    const uint64_t d123[] = {1, 2, 3};
    const char *const v123[] = {"a", "b", "c"};
    CHECK_OK(prepare(w, d123, v123, 3, 0, &logged));
    CHECK_EQ_U64(logged, 3);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 0);
    expect_cell(&f, NULL);

    /* Committed up to 2 comes with the next prepare: 1 and 2 apply. */
    const uint64_t d4[] = {4};
    const char *const v4[] = {"d"};
    CHECK_OK(prepare(w, d4, v4, 1, 2, &logged));
    CHECK_EQ_U64(logged, 4);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 2);
    expect_cell(&f, "b");

    /* A decree not committed is logged again (its group failed at the
     * primary, which gave the decree to another mutation): the new one is
     * what applies. */
    const char *const v4b[] = {"D"};
    CHECK_OK(prepare(w, d4, v4b, 1, 3, &logged));
    const uint64_t d5[] = {5};
    const char *const v5[] = {"e"};
    CHECK_OK(prepare(w, d5, v5, 1, 4, &logged));
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 4);
    expect_cell(&f, "D");

    /* Across a restart: what was logged is known, and applies later. */
    repl_writer_stop(w);
    fx_reopen(&f);
    CHECK_OK(repl_writer_start(f.p, &cfg, "sec", &w));
    struct repl_writer_stats st;
    repl_writer_stats(w, &st);
    CHECK_EQ_U64(st.committed_decree, 4);
    CHECK_EQ_U64(st.logged_decree, 5);
    const uint64_t d6[] = {6};
    const char *const v6[] = {"f"};
    CHECK_OK(prepare(w, d6, v6, 1, 5, &logged));
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 5);
    expect_cell(&f, "e");

    /* A prepare that only carries the committed decree keeps the log's
     * end; one that logs an earlier decree again moves it back there (what
     * was beyond came from a primary that never committed it). */
    const uint64_t d7[] = {7};
    const char *const v7[] = {"g"};
    CHECK_OK(prepare(w, d7, v7, 1, 5, &logged));
    CHECK_OK(prepare(w, NULL, NULL, 0, 5, &logged));
    CHECK_EQ_U64(logged, 7);
    const char *const v6b[] = {"F"};
    CHECK_OK(prepare(w, d6, v6b, 1, 5, &logged));
    CHECK_EQ_U64(logged, 6);
    CHECK_OK(prepare(w, NULL, NULL, 0, 7, &logged));
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 6);
    expect_cell(&f, "F");
    repl_writer_stop(w);
    fx_close(&f);
}

/* A primary's replication hook that fails the first group it sees with
 * first_rc and accepts the rest, recording what it was given. */
struct hook {
    int first_rc;
    int calls;
    uint64_t first_decree[4];
    uint64_t committed[4];
};

static int fail_first(void *arg, struct store_mutation *const *ms, size_t n, uint64_t committed)
{
    struct hook *h = arg;
    (void)n;
    if (h->calls < 4) {
        h->first_decree[h->calls] = ms[0]->decree;
        h->committed[h->calls] = committed;
    }
    return h->calls++ == 0 ? h->first_rc : 0;
}

TEST(primary_commits_only_what_replication_accepts)
{
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec recs[2];
    recs_init(recs, 2, &t);
    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    cfg.sync = false;
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "pri", &w));
    struct hook h = {.first_rc = -CELLAR_EUNAVAIL}; /* nobody logged it */
    repl_writer_set_replicate(w, fail_first, &h);
    /* Never inline while replicating: the hook runs on the writer. */
    struct store_mutation *m = build_mutation(0, 0);
    CHECK_EQ_INT(repl_commit_inline(w, m, on_done, &recs[0]), 0);
    CHECK_OK(repl_submit_take(w, m, on_done, &recs[0]));
    tracker_wait(&t, 1);
    CHECK_EQ_INT(recs[0].status, -CELLAR_EUNAVAIL);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 0); /* nothing committed */
    CHECK_OK(repl_submit_take(w, build_mutation(0, 1), on_done, &recs[1]));
    tracker_wait(&t, 2);
    CHECK_OK(recs[1].status);
    CHECK_EQ_U64(recs[1].decree, 1); /* the refused group's decree, used again */
    CHECK_EQ_INT(h.calls, 2);
    CHECK_EQ_U64(h.first_decree[1], 1);
    CHECK_EQ_U64(h.committed[1], 0);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 1);
    repl_writer_stop(w);
    tracker_fini(&t);
    fx_close(&f);
}

TEST(group_that_went_out_stays_as_the_tail_and_commits_first)
{
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec recs[2];
    recs_init(recs, 2, &t);
    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    cfg.sync = false;
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "pri", &w));
    /* It went out, and not every secondary logged it. */
    struct hook h = {.first_rc = -CELLAR_EOUTCOME};
    repl_writer_set_replicate(w, fail_first, &h);
    CHECK_OK(repl_submit_take(w, build_mutation(0, 0), on_done, &recs[0]));
    tracker_wait(&t, 1);
    CHECK_EQ_INT(recs[0].status, -CELLAR_EOUTCOME);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 0); /* not applied here */
    struct repl_writer_stats st;
    repl_writer_stats(w, &st);
    CHECK_EQ_U64(st.logged_decree, 1); /* but logged: the tail */
    /* The next group first sends the tail again and commits it, then
     * itself, on the next decree: decree 1 is not given twice. */
    CHECK_OK(repl_submit_take(w, build_mutation(0, 1), on_done, &recs[1]));
    tracker_wait(&t, 2);
    CHECK_OK(recs[1].status);
    CHECK_EQ_U64(recs[1].decree, 2);
    CHECK_EQ_INT(h.calls, 3);
    CHECK_EQ_U64(h.first_decree[1], 1); /* the tail, again */
    CHECK_EQ_U64(h.committed[1], 0);
    CHECK_EQ_U64(h.first_decree[2], 2);
    CHECK_EQ_U64(h.committed[2], 1);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 2);
    CHECK_EQ_INT(recs[1].incr_value, 2); /* the tail's incr came first */
    repl_writer_stop(w);
    tracker_fini(&t);
    fx_close(&f);
}

/* A replication hook for gathering: every group "went to secondaries"
 * (it sets the writer's gather time), its size is recorded, and the group
 * numbered hold (1-based) waits on t->release after posting t->entered. */
struct gather_hook {
    struct repl_writer *w;
    struct tracker *t;
    uint64_t gather_us;
    int hold;
    int calls;
    size_t sizes[8];
};

static int gathering(void *arg, struct store_mutation *const *ms, size_t n, uint64_t committed)
{
    struct gather_hook *h = arg;
    (void)ms;
    (void)committed;
    repl_writer_gather_next(h->w, h->gather_us);
    if (h->calls < 8)
        h->sizes[h->calls] = n;
    if (++h->calls == h->hold) {
        sem_post(&h->t->entered);
        sem_wait(&h->t->release);
    }
    return 0;
}

TEST(replicated_groups_gather_the_writes_expected)
{
    struct fixture f = {0};
    fx_open(&f);
    struct tracker t;
    tracker_init(&t);
    struct rec recs[8];
    recs_init(recs, 8, &t);
    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    cfg.sync = false;
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "pri", &w));
    /* Long enough that only a missing write ends a gathering by time. */
    struct gather_hook h = {.w = w, .t = &t, .gather_us = 2000000, .hold = 1};
    repl_writer_set_replicate(w, gathering, &h);
    /* Group 1 is held while writes 2 and 3 queue behind it. */
    CHECK_OK(repl_submit_take(w, build_mutation(0, 0), on_done, &recs[0]));
    wait_entered(&t);
    CHECK_OK(repl_submit_take(w, build_mutation(0, 1), on_done, &recs[1]));
    CHECK_OK(repl_submit_take(w, build_mutation(0, 2), on_done, &recs[2]));
    sem_post(&t.release);
    /* The writer of group 1 writes again once answered, as a client
     * does: the writer found 2 and 3 queued, so it waits for that one
     * too, and the next group holds all three. */
    tracker_wait(&t, 1);
    CHECK_OK(repl_submit_take(w, build_mutation(0, 3), on_done, &recs[3]));
    tracker_wait(&t, 4);
    CHECK_EQ_INT(h.calls, 2);
    CHECK_EQ_U64(h.sizes[0], 1);
    CHECK_EQ_U64(h.sizes[1], 3);
    struct repl_writer_stats st;
    repl_writer_stats(w, &st);
    CHECK_EQ_U64(st.gathers, 1);
    /* Stopping ends a gathering: group 5 is held while 6 queues, so the
     * writer then waits for a seventh write that never comes; stop
     * commits 6 and returns. */
    h.gather_us = 600ull * 1000000; /* a stop that did not end it would hang here */
    h.hold = 3;
    CHECK_OK(repl_submit_take(w, build_mutation(0, 4), on_done, &recs[4]));
    wait_entered(&t);
    CHECK_OK(repl_submit_take(w, build_mutation(0, 5), on_done, &recs[5]));
    sem_post(&t.release);
    tracker_wait(&t, 5);
    repl_writer_stop(w);
    CHECK_EQ_INT(t.completed, 6);
    for (size_t i = 0; i < 6; i++)
        CHECK_OK(recs[i].status);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 6);
    tracker_fini(&t);
    fx_close(&f);
}

TEST_MAIN(config_defaults_and_bad_config, group_commit_many_producers,
          sync_durability_survives_kill, queue_limit, group_limits, stop_drains_queue,
          stop_refuses_new_and_commits_queued, decrees_continue_after_reopen, log_retention,
          failed_group_reuses_decrees, no_space_probe_clears_health_when_idle,
          corruption_fails_the_partition, writer_on_a_partition_that_could_not_open, inline_commit,
          secondary_logs_then_applies_what_is_committed,
          primary_commits_only_what_replication_accepts,
          group_that_went_out_stays_as_the_tail_and_commits_first,
          replicated_groups_gather_the_writes_expected)

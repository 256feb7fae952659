/*
 * test_liveness.c - the writer heartbeat the watchdog relies on
 * (repl_writer_heartbeat_ms, repl_registry_writers_alive), the test-only
 * wedge that exercises it, and the config keys a reload may change.
 *
 * No test sleeps to wait out a race: each polls a condition against a
 * deadline (and "stays silent" checks observe a bounded window).
 */
#include "common/cellar.h"
#include "replication/registry.h"
#include "replication/writer.h"
#include "service/config.h"
#include "storage/engine.h"
#include "storage/mutation.h"
#include "storage/partition.h"
#include "tests/unit/harness.h"

#include <pthread.h>
#include <time.h>

#define DEADLINE_MS 20000u

static void nap_ms(unsigned ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls until the writer has beaten after `after`; fails at the deadline. */
static void wait_beat_after(const struct repl_writer *w, uint64_t after)
{
    uint64_t deadline = cellar_mono_ms() + DEADLINE_MS;
    while (repl_writer_heartbeat_ms(w) <= after) {
        if (cellar_mono_ms() > deadline)
            FAIL("no heartbeat after %llu within %u ms", (unsigned long long)after, DEADLINE_MS);
        nap_ms(5);
    }
}

struct fixture {
    struct store_engine *e;
    struct store_partition *p;
};

static void fx_open(struct fixture *f)
{
    struct store_engine_config ec;
    store_engine_config_defaults(&ec);
    ec.block_cache_bytes = 8u << 20;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/p0", tmpdir_new());
    CHECK_OK(store_engine_new(&ec, &f->e));
    CHECK_OK(store_partition_open(f->e, dir, &f->p));
}

static void fx_close(struct fixture *f)
{
    store_partition_close(f->p);
    store_engine_free(f->e);
}

struct done {
    pthread_mutex_t mu;
    int calls;
    int status;
};

static void on_done(void *arg, int status, const struct store_outcome *out)
{
    struct done *d = arg;
    pthread_mutex_lock(&d->mu);
    d->calls++;
    d->status = status;
    pthread_mutex_unlock(&d->mu);
}

static int calls(struct done *d)
{
    pthread_mutex_lock(&d->mu);
    int n = d->calls;
    pthread_mutex_unlock(&d->mu);
    return n;
}

static struct store_mutation *a_put(void)
{
    struct store_mutation *m = store_mutation_new("row", 3);
    store_mutation_put(m, "col", 3, "value", 5, NULL, 0, 0);
    return m;
}

TEST(idle_writer_keeps_beating)
{
    struct fixture f;
    fx_open(&f);
    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    CHECK_EQ_U64(cfg.heartbeat_ms, 1000);
    CHECK_EQ_U64(cfg.test_wedge_after_ms, 0);
    cfg.heartbeat_ms = 20;
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "w1.0", &w));
    CHECK(strcmp(repl_writer_name(w), "w1.0") == 0);
    /* No work at all, yet the heartbeat moves on, several times. */
    for (int i = 0; i < 5; i++)
        wait_beat_after(w, repl_writer_heartbeat_ms(w));
    /* And it keeps beating around work. */
    struct done d = {.mu = PTHREAD_MUTEX_INITIALIZER};
    CHECK_OK(repl_submit_take(w, a_put(), on_done, &d));
    wait_beat_after(w, repl_writer_heartbeat_ms(w));
    repl_writer_stop(w);
    CHECK_EQ_INT(calls(&d), 1);
    CHECK_EQ_INT(d.status, 0);
    fx_close(&f);
}

TEST(wedged_writer_falls_silent_until_stop)
{
    struct fixture f;
    fx_open(&f);
    struct repl_writer_config cfg;
    repl_writer_config_defaults(&cfg);
    cfg.heartbeat_ms = 20;
    cfg.test_wedge_after_ms = 100;
    struct repl_writer *w = NULL;
    CHECK_OK(repl_writer_start(f.p, &cfg, "w1.0", &w));
    /* Silent for 10 heartbeat periods: it is wedged. */
    uint64_t deadline = cellar_mono_ms() + DEADLINE_MS;
    while (cellar_mono_ms() - repl_writer_heartbeat_ms(w) < 200) {
        if (cellar_mono_ms() > deadline)
            FAIL("the writer never fell silent");
        nap_ms(10);
    }
    /* A write waits (bounded observation), and stop still drains it. */
    struct done d = {.mu = PTHREAD_MUTEX_INITIALIZER};
    CHECK_OK(repl_submit_take(w, a_put(), on_done, &d));
    uint64_t beat = repl_writer_heartbeat_ms(w);
    nap_ms(200);
    CHECK_EQ_INT(calls(&d), 0);
    CHECK_EQ_U64(repl_writer_heartbeat_ms(w), beat);
    repl_writer_stop(w);
    CHECK_EQ_INT(calls(&d), 1);
    CHECK_EQ_INT(d.status, 0);
    fx_close(&f);
}

TEST(registry_reports_the_stalled_writer)
{
    const char *dir = tmpdir_new();
    struct store_engine_config ec;
    store_engine_config_defaults(&ec);
    ec.block_cache_bytes = 8u << 20;
    struct store_engine *e = NULL;
    CHECK_OK(store_engine_new(&ec, &e));
    struct repl_registry_config rc;
    repl_registry_config_defaults(&rc);
    rc.writer.heartbeat_ms = 20;
    rc.writer.test_wedge_after_ms = 500;
    struct repl_registry *r = NULL;
    CHECK_OK(repl_registry_open(e, dir, &rc, NULL, NULL, &r));
    char name[64] = "";
    uint64_t silent = 0;
    /* No tables, no writers: alive. */
    CHECK(repl_registry_writers_alive(r, 150, name, sizeof(name), &silent));
    struct repl_table_spec spec = {.name = "t", .partition_count = 2};
    struct repl_table_meta meta;
    CHECK_OK(repl_table_create(r, &spec, &meta));
    CHECK(repl_registry_writers_alive(r, 150, name, sizeof(name), &silent));
    uint64_t deadline = cellar_mono_ms() + DEADLINE_MS;
    while (repl_registry_writers_alive(r, 150, name, sizeof(name), &silent)) {
        if (cellar_mono_ms() > deadline)
            FAIL("the wedged writers were never reported");
        nap_ms(10);
    }
    char want[32];
    snprintf(want, sizeof(want), "w%u.", meta.id);
    if (strncmp(name, want, strlen(want)) != 0)
        FAIL("stalled writer \"%s\", expected %s*", name, want);
    CHECK(silent > 150);
    /* Without the out-parameters too. */
    CHECK(!repl_registry_writers_alive(r, 150, NULL, 0, NULL));
    repl_registry_close(r); /* stopping releases the wedge */
    store_engine_free(e);
}

static int changed_count;
static char changed_keys[8][64];

static void on_changed(void *arg, const char *key)
{
    if (changed_count < 8)
        snprintf(changed_keys[changed_count], sizeof(changed_keys[0]), "%s", key);
    changed_count++;
}

TEST(config_changes_and_reloadable_keys)
{
    struct svc_config a, b;
    svc_config_defaults(&a);
    svc_config_defaults(&b);
    svc_config_foreach_change(&a, &b, on_changed, NULL);
    CHECK_EQ_INT(changed_count, 0);
    char err[256];
    CHECK_OK(svc_config_set(&b, "max_value_bytes", "2K", err, sizeof(err)));
    CHECK_OK(svc_config_set(&b, "log_level", "debug", err, sizeof(err)));
    CHECK_OK(svc_config_set(&b, "listen", "127.0.0.1:9", err, sizeof(err)));
    CHECK_OK(svc_config_set(&b, "test_wedge_writer_after_s", "3", err, sizeof(err)));
    CHECK_EQ_U64(b.registry.writer.test_wedge_after_ms, 3000);
    svc_config_foreach_change(&a, &b, on_changed, NULL);
    CHECK_EQ_INT(changed_count, 4);
    CHECK(strcmp(changed_keys[0], "listen") == 0);
    CHECK(strcmp(changed_keys[1], "log_level") == 0);
    CHECK(svc_config_key_reloadable("log_level"));
    CHECK(svc_config_key_reloadable("max_value_bytes"));
    CHECK(svc_config_key_reloadable("max_body_bytes"));
    CHECK(!svc_config_key_reloadable("listen"));
    CHECK(!svc_config_key_reloadable("data_dir"));
    CHECK(!svc_config_key_reloadable("write_queue_max"));
    CHECK(!svc_config_key_reloadable("test_wedge_writer_after_s"));
    CHECK(svc_config_key_reloadable("max_scan_ms"));
    CHECK(!svc_config_key_reloadable("cors_origins"));
    /* A reload applies the reloadable keys and nothing else. */
    struct svc_config live;
    svc_config_defaults(&live);
    svc_config_apply_reloadable(&live, &b);
    CHECK_EQ_U64(live.api.max_value_bytes, 2048);
    CHECK_EQ_INT(live.log_level, b.log_level);
    CHECK_EQ_INT(live.api.listen_port, a.api.listen_port);
    struct svc_config c;
    svc_config_defaults(&c);
    CHECK_OK(svc_config_set(&c, "cors_origins", "*", err, sizeof(err)));
    changed_count = 0;
    svc_config_foreach_change(&a, &c, on_changed, NULL);
    CHECK_EQ_INT(changed_count, 1);
    CHECK(strcmp(changed_keys[0], "cors_origins") == 0);
}

TEST_MAIN(idle_writer_keeps_beating, wedged_writer_falls_silent_until_stop,
          registry_reports_the_stalled_writer, config_changes_and_reloadable_keys)

/*
 * engine.c - the RocksDB resources all partitions of the node share (see
 * engine.h): one LRU block cache, one env with sized pools, one optional
 * rate limiter, one statistics object, the TTL compaction filter and the
 * row prefix extractor.
 *
 * Design: store_engine_new() builds two options objects once. "base" holds
 * the DB-wide settings and the table factory (shared cache, full bloom
 * filter with 10 bits per key, index and filter blocks charged to the cache
 * at high priority, format_version 5); it is what the log and meta column
 * families use. "cells" is a copy of base plus what only the default (cells)
 * CF may have: the "cellar.rowprefix" prefix extractor with a memtable
 * prefix bloom, the TTL compaction filter and periodic_compaction_seconds.
 * Partitions never receive these two objects, only fresh copies
 * (store_engine_options_new), so an owned object such as the prefix
 * extractor is set exactly once and then shared through the copies' smart
 * pointers (c-craft C.2).
 *
 * Ownership (c-craft C.2): the prefix extractor and filter policy belong to
 * the options once set; the cache and rate limiter wrappers are released
 * when convenient (RocksDB copied the shared reference), except the cache
 * wrapper, kept for store_engine_cache_usage(); the env wrapper and the
 * compaction filter are raw pointers RocksDB borrows, so they are freed
 * last, in store_engine_free(), after every partition was closed.
 *
 * The TTL filter runs only in compactions of the cells CF (never the log or
 * meta CF: their values are not cells). It decodes the value header and
 * asks RocksDB to drop a cell whose expiry is <= the engine clock. RocksDB
 * turns a dropped entry into a deletion until the bottommost level, so an
 * older version of the key below cannot resurface. A value that does not
 * decode is kept: a compaction is no place to destroy evidence.
 *
 * periodic_compaction_s = 0 is written explicitly as 0: RocksDB would
 * otherwise pick 30 days on its own because a compaction filter is set,
 * and the header promises that 0 means off.
 *
 * Memory: per partition, memtables are capped by db_write_buffer_size =
 * write_buffer_bytes * max_write_buffers across its three CFs (7.8's C API
 * has no cross-DB WriteBufferManager), plus the one shared block cache.
 *
 * Threads: new/free from the main thread. The compaction filter and the
 * prefix extractor are called concurrently by RocksDB background and
 * reader threads; they only read immutable state and the clock function,
 * which must itself be thread-safe.
 */
#include "storage/engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "storage/keycodec.h"
#include "storage/valcodec.h"

#define PREFIX_EXTRACTOR_NAME "cellar.rowprefix"
#define TTL_FILTER_NAME "cellar.ttl"
/* RocksDB's own LOG file gets only FATAL lines (and the header at open).
 * In 7.8 the LOG is written through a WritableFileWriter, which asserts
 * (and Debian builds it with assertions on) when it is written again after
 * a failed write: on a full disk, the first failed LOG line and the next
 * warning (the SstFileManager polling for space logs one every 5 s) would
 * abort the node. Errors reach our own log through the statuses RocksDB
 * returns. */
#define ROCKSDB_LOG_LEVEL 4 /* InfoLogLevel::FATAL_LEVEL */

struct store_engine {
    store_clock_fn clock; /* NULL = wall clock */
    void *clock_arg;
    rocksdb_env_t *env;                     /* borrowed by every DB */
    rocksdb_cache_t *cache;                 /* our reference to the shared cache */
    rocksdb_compactionfilter_t *ttl_filter; /* borrowed by every cells CF */
    rocksdb_options_t *base;                /* DB-wide, log and meta CFs */
    rocksdb_options_t *cells;               /* the default CF */
};

void store_engine_config_defaults(struct store_engine_config *cfg)
{
    /* A laptop, 8 partitions, ~200 MiB RSS for the node: 64 MiB of cache
     * plus at most 8 * 2 * 4 MiB = 64 MiB of memtables. */
    *cfg = (struct store_engine_config){
        .block_cache_bytes = 64u << 20,
        .background_threads = 2,
        .flush_threads = 1,
        .rate_limit_bytes_per_sec = 0,
        .write_buffer_bytes = 4u << 20,
        .max_write_buffers = 2,
        .max_open_files = 256,
        .periodic_compaction_s = 7 * 24 * 3600,
        .clock = NULL,
        .clock_arg = NULL,
    };
}

uint32_t store_engine_now(const struct store_engine *e)
{
    if (e->clock)
        return e->clock(e->clock_arg);
    uint64_t s = cellar_now_ms() / 1000;
    return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* --- Callbacks RocksDB calls (any thread) ------------------------------- */

/* RocksDB calls the destructor of a C callback object unconditionally, so it
 * must not be NULL; our state (the engine) is freed by store_engine_free. */
static void state_keep(void *state)
{
    (void)state;
}

static char *prefix_transform(void *state, const char *key, size_t len, size_t *dst_len)
{
    (void)state;
    *dst_len = store_key_prefix_len(key, len);
    return (char *)key; /* a pointer into the key: RocksDB wraps it in a Slice */
}

static unsigned char prefix_in_domain(void *state, const char *key, size_t len)
{
    (void)state;
    return store_key_prefix_len(key, len) != 0;
}

static unsigned char prefix_in_range(void *state, const char *key, size_t len)
{
    (void)state;
    (void)key;
    (void)len;
    return 0;
}

static const char *prefix_name(void *state)
{
    (void)state;
    return PREFIX_EXTRACTOR_NAME;
}

static unsigned char ttl_filter(void *state, int level, const char *key, size_t key_len,
                                const char *value, size_t value_len, char **new_value,
                                size_t *new_value_len, unsigned char *value_changed)
{
    const struct store_engine *e = state;
    (void)level;
    (void)key;
    (void)key_len;
    (void)new_value;
    (void)new_value_len;
    *value_changed = 0; /* never rewrite: the wrapper would leak the new value */
    struct store_value_header hdr;
    const char *data;
    size_t len;
    if (store_value_decode(value, value_len, &hdr, &data, &len) != 0)
        return 0;
    return store_value_expired(hdr.expiry, store_engine_now(e));
}

static const char *ttl_filter_name(void *state)
{
    (void)state;
    return TTL_FILTER_NAME;
}

/* --- Construction ------------------------------------------------------- */

static int config_check(const struct store_engine_config *cfg)
{
    if (cfg->block_cache_bytes == 0 || cfg->background_threads < 1 || cfg->flush_threads < 1 ||
        cfg->rate_limit_bytes_per_sec < 0 || cfg->write_buffer_bytes < (64u << 10) ||
        cfg->max_write_buffers < 1 || (cfg->max_open_files < 16 && cfg->max_open_files != -1))
        return -CELLAR_EINVAL;
    return 0;
}

int store_engine_new(const struct store_engine_config *cfg, struct store_engine **out)
{
    struct store_engine *e = NULL;
    rocksdb_block_based_table_options_t *bbto = NULL;
    rocksdb_options_t *periodic = NULL;
    char *err = NULL;
    int rc = config_check(cfg);
    if (rc)
        goto out;

    e = cellar_xcalloc(1, sizeof(*e));
    e->clock = cfg->clock;
    e->clock_arg = cfg->clock_arg;

    /* Env::Default's pools are process-wide: LOW runs compactions, HIGH
     * flushes, for every partition. */
    e->env = rocksdb_create_default_env();
    rocksdb_env_set_background_threads(e->env, cfg->background_threads);
    rocksdb_env_set_high_priority_background_threads(e->env, cfg->flush_threads);

    e->cache = rocksdb_cache_create_lru(cfg->block_cache_bytes);
    bbto = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(bbto, e->cache);
    rocksdb_block_based_options_set_filter_policy(bbto, rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(bbto, 1);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks_with_high_priority(bbto, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(bbto, 1);
    rocksdb_block_based_options_set_whole_key_filtering(bbto, 1);
    rocksdb_block_based_options_set_format_version(bbto, 5);

    e->base = rocksdb_options_create();
    rocksdb_options_set_env(e->base, e->env);
    rocksdb_options_set_block_based_table_factory(e->base, bbto);
    rocksdb_options_enable_statistics(e->base);
    rocksdb_options_set_write_buffer_size(e->base, cfg->write_buffer_bytes);
    rocksdb_options_set_max_write_buffer_number(e->base, cfg->max_write_buffers);
    rocksdb_options_set_db_write_buffer_size(e->base, cfg->write_buffer_bytes *
                                                          (size_t)cfg->max_write_buffers);
    /* Bounds the WAL kept alive by a rarely written CF (meta, log): past
     * this, RocksDB flushes the CFs pinning the oldest WAL file. */
    rocksdb_options_set_max_total_wal_size(e->base, 4 * (uint64_t)cfg->write_buffer_bytes *
                                                        (uint64_t)cfg->max_write_buffers);
    rocksdb_options_set_max_open_files(e->base, cfg->max_open_files);
    rocksdb_options_set_max_background_jobs(e->base, cfg->background_threads + cfg->flush_threads);
    rocksdb_options_set_keep_log_file_num(e->base, 2);
    rocksdb_options_set_max_log_file_size(e->base, 1u << 20);
    rocksdb_options_set_info_log_level(e->base, ROCKSDB_LOG_LEVEL);
    if (cfg->rate_limit_bytes_per_sec > 0) {
        rocksdb_ratelimiter_t *rl =
            rocksdb_ratelimiter_create(cfg->rate_limit_bytes_per_sec, 100000, 10);
        rocksdb_options_set_ratelimiter(e->base, rl);
        rocksdb_ratelimiter_destroy(rl); /* the options hold their own reference */
    }

    e->cells = rocksdb_options_create_copy(e->base);
    rocksdb_options_set_prefix_extractor(
        e->cells, rocksdb_slicetransform_create(NULL, state_keep, prefix_transform,
                                                prefix_in_domain, prefix_in_range, prefix_name));
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(e->cells, 0.1);
    e->ttl_filter = rocksdb_compactionfilter_create(e, state_keep, ttl_filter, ttl_filter_name);
    rocksdb_options_set_compaction_filter(e->cells, e->ttl_filter);

    /* No setter in 7.8's C API (c-craft C.9): go through the options
     * string, which copies every other field of cells. */
    char opt[64];
    snprintf(opt, sizeof(opt), "periodic_compaction_seconds=%" PRIu64, cfg->periodic_compaction_s);
    periodic = rocksdb_options_create();
    rocksdb_get_options_from_string(e->cells, opt, periodic, &err);
    if (err) {
        log_err("storage: engine options \"%s\": %s", opt, err);
        rc = -CELLAR_EINVAL;
        goto out;
    }
    rocksdb_options_destroy(e->cells);
    e->cells = periodic;
    periodic = NULL;

    *out = e;
    e = NULL;
out:
    rocksdb_free(err);
    if (periodic)
        rocksdb_options_destroy(periodic);
    if (bbto)
        rocksdb_block_based_options_destroy(bbto);
    store_engine_free(e);
    return rc;
}

void store_engine_free(struct store_engine *e)
{
    if (!e)
        return;
    /* Options first: they hold references to the cache and the filter
     * policy. The raw-pointer objects (filter, env) go last. */
    if (e->cells)
        rocksdb_options_destroy(e->cells);
    if (e->base)
        rocksdb_options_destroy(e->base);
    if (e->ttl_filter)
        rocksdb_compactionfilter_destroy(e->ttl_filter);
    if (e->cache)
        rocksdb_cache_destroy(e->cache);
    if (e->env)
        rocksdb_env_destroy(e->env); /* the wrapper only: Env::Default lives on */
    free(e);
}

char *store_engine_stats(struct store_engine *e)
{
    return rocksdb_options_statistics_get_string(e->base);
}

size_t store_engine_cache_usage(struct store_engine *e)
{
    return rocksdb_cache_get_usage(e->cache);
}

/* The COUNT of one ticker in a statistics dump ("name COUNT : 123"). */
static uint64_t ticker(const char *text, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
        if ((p != text && p[-1] != '\n') || strncmp(p + len, " COUNT : ", 9) != 0)
            continue;
        uint64_t v = 0;
        for (p += len + 9; *p >= '0' && *p <= '9'; p++)
            v = v * 10 + (uint64_t)(*p - '0');
        return v;
    }
    return 0;
}

void store_engine_cache_stats(struct store_engine *e, struct store_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->capacity = rocksdb_cache_get_capacity(e->cache);
    out->usage = rocksdb_cache_get_usage(e->cache);
    out->pinned = rocksdb_cache_get_pinned_usage(e->cache);
    char *text = store_engine_stats(e);
    if (text) {
        out->hits = ticker(text, "rocksdb.block.cache.hit");
        out->misses = ticker(text, "rocksdb.block.cache.miss");
    }
    rocksdb_free(text);
}

struct rocksdb_options_t *store_engine_options_new(struct store_engine *e,
                                                   enum store_engine_opts kind)
{
    return rocksdb_options_create_copy(kind == STORE_OPTS_CELLS ? e->cells : e->base);
}

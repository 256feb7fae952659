/*
 * engine.h - the RocksDB resources every partition of the node shares: one
 * LRU block cache, one env with sized background pools, one rate limiter,
 * one statistics object, the TTL compaction filter, and the base options
 * each partition copies.
 *
 * Ownership (c-craft C.2): the engine owns the env and the compaction
 * filter, which RocksDB only borrows, so the engine must outlive every
 * partition opened with it: close all partitions, then store_engine_free().
 *
 * Threads: store_engine_new/free from the main thread; the rest from any.
 */
#ifndef STORE_ENGINE_H
#define STORE_ENGINE_H

#include "common/cellar.h"

struct store_engine;

/* Wall clock for the TTL compaction filter, Unix seconds. Tests replace it
 * to age cells without waiting. */
typedef uint32_t (*store_clock_fn)(void *arg);

struct store_engine_config {
    size_t block_cache_bytes;         /* shared LRU block cache */
    int background_threads;           /* env LOW pool: compactions */
    int flush_threads;                /* env HIGH pool: flushes */
    int64_t rate_limit_bytes_per_sec; /* flush+compaction I/O budget; 0 = none */
    size_t write_buffer_bytes;        /* memtable size per partition */
    int max_write_buffers;            /* memtables per partition */
    int max_open_files;               /* table files kept open per partition; -1 = all */
    uint64_t periodic_compaction_s;   /* recompact files older than this; 0 = off */
    store_clock_fn clock;             /* NULL = real time */
    void *clock_arg;
};

/* Fills cfg with the defaults documented in README.md. */
void store_engine_config_defaults(struct store_engine_config *cfg);

/* Creates the shared resources. Errors: -CELLAR_EINVAL (bad config). */
int store_engine_new(const struct store_engine_config *cfg, struct store_engine **out);

/* Frees the engine. Every partition must be closed first. Accepts NULL. */
void store_engine_free(struct store_engine *e);

/* The engine clock, Unix seconds. */
uint32_t store_engine_now(const struct store_engine *e);

/* Statistics text of the shared statistics object; free() the result.
 * NULL when unavailable. */
char *store_engine_stats(struct store_engine *e);

/* Block cache usage in bytes. */
size_t store_engine_cache_usage(struct store_engine *e);

/* The shared block cache: capacity, usage, pinned usage, and the lookups
 * that hit and missed since start (from the statistics object; 0 when it
 * cannot be read). For /metrics: the hit counts cost a statistics dump. */
struct store_cache_stats {
    uint64_t capacity, usage, pinned;
    uint64_t hits, misses;
};
void store_engine_cache_stats(struct store_engine *e, struct store_cache_stats *out);

/* --- For partition.c only ------------------------------------------------ */

struct rocksdb_options_t; /* rocksdb/c.h's rocksdb_options_t */

enum store_engine_opts {
    STORE_OPTS_BASE,  /* DB-wide options, and the log and meta CFs' options */
    STORE_OPTS_CELLS, /* the default (cells) CF: prefix extractor, TTL filter */
};

/* A fresh rocksdb_options_create_copy() of the engine's options of that
 * kind, owned by the caller (rocksdb_options_destroy() it after the DB is
 * closed). The copy shares the engine's cache, env, rate limiter,
 * statistics, table factory, prefix extractor and filter, so setting plain
 * fields on it (create_if_missing, write_buffer_size) is safe, while
 * setting an owned object on it is not (c-craft C.2). */
struct rocksdb_options_t *store_engine_options_new(struct store_engine *e,
                                                   enum store_engine_opts kind);

#endif

/*
 * metastore.c - the node's metadata store (see metastore.h): a small
 * RocksDB of its own, separate from the partitions and their engine.
 *
 * Design: one DB, default column family, string keys, opaque values.
 * Every write is a single synced write (the table registry is small and
 * rarely written, and losing a table creation after it was acknowledged is
 * not acceptable). It uses its own small options (1 MiB memtable, 1 MiB
 * block cache) so that it stays out of the partitions' memory budget and
 * does not depend on a store_engine.
 *
 * Invariants: RocksDB's errptr is NULL on entry to every call and freed at
 * the exit; a scan's iterator carries both bounds of the prefix range, and
 * its read options and bound buffer outlive it.
 *
 * Threads: any. RocksDB serialises writes; callers needing read-modify-write
 * atomicity hold their own lock.
 */
#include "storage/metastore.h"

#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "storage/keycodec.h"

/* RocksDB's own LOG file gets only FATAL lines (and the header at open).
 * In 7.8 the LOG is written through a WritableFileWriter, which asserts
 * (and Debian builds it with assertions on) when it is written again after
 * a failed write: on a full disk, the first failed LOG line and the next
 * warning (the SstFileManager polling for space logs one every 5 s) would
 * abort the node. Errors reach our own log through the statuses RocksDB
 * returns. */
#define ROCKSDB_LOG_LEVEL 4 /* InfoLogLevel::FATAL_LEVEL */

struct store_metastore {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_readoptions_t *ro;
    rocksdb_writeoptions_t *wo; /* sync */
};

static int io_err(const char *what, const char *err)
{
    log_err("storage: metastore %s: %s", what, err);
    return -CELLAR_EIO;
}

int store_metastore_open(const char *dir, struct store_metastore **out)
{
    char *err = NULL;
    int rc = 0;
    struct store_metastore *m = cellar_xcalloc(1, sizeof(*m));
    m->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(m->opts, 1);
    rocksdb_options_set_write_buffer_size(m->opts, 1u << 20);
    rocksdb_options_set_max_open_files(m->opts, 64);
    rocksdb_options_set_keep_log_file_num(m->opts, 2);
    rocksdb_options_set_max_log_file_size(m->opts, 1u << 20);
    rocksdb_options_set_info_log_level(m->opts, ROCKSDB_LOG_LEVEL);
    rocksdb_block_based_table_options_t *bbto = rocksdb_block_based_options_create();
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(1u << 20);
    rocksdb_block_based_options_set_block_cache(bbto, cache);
    rocksdb_options_set_block_based_table_factory(m->opts, bbto);
    rocksdb_cache_destroy(cache); /* the table factory holds a reference */
    rocksdb_block_based_options_destroy(bbto);
    m->ro = rocksdb_readoptions_create();
    m->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(m->wo, 1);

    m->db = rocksdb_open(m->opts, dir, &err);
    if (err) {
        m->db = NULL;
        rc = io_err(dir, err);
        goto out;
    }
    *out = m;
    m = NULL;
out:
    rocksdb_free(err);
    store_metastore_close(m);
    return rc;
}

void store_metastore_close(struct store_metastore *m)
{
    if (!m)
        return;
    if (m->db) {
        rocksdb_cancel_all_background_work(m->db, 1);
        rocksdb_close(m->db);
    }
    if (m->wo)
        rocksdb_writeoptions_destroy(m->wo);
    if (m->ro)
        rocksdb_readoptions_destroy(m->ro);
    if (m->opts)
        rocksdb_options_destroy(m->opts);
    free(m);
}

int store_metastore_get(struct store_metastore *m, const char *key, struct cellar_buf *out)
{
    char *err = NULL;
    int rc = 0;
    rocksdb_pinnableslice_t *pin = rocksdb_get_pinned(m->db, m->ro, key, strlen(key), &err);
    if (err) {
        rc = io_err("get", err);
        goto out;
    }
    if (!pin) {
        rc = -CELLAR_ENOTFOUND;
        goto out;
    }
    size_t len = 0;
    const char *val = rocksdb_pinnableslice_value(pin, &len);
    cellar_buf_append(out, val, len);
out:
    if (pin)
        rocksdb_pinnableslice_destroy(pin);
    rocksdb_free(err);
    return rc;
}

int store_metastore_put(struct store_metastore *m, const char *key, const void *val, size_t len)
{
    char *err = NULL;
    int rc = 0;
    rocksdb_put(m->db, m->wo, key, strlen(key), val, len, &err);
    if (err)
        rc = io_err("put", err);
    rocksdb_free(err);
    return rc;
}

int store_metastore_delete(struct store_metastore *m, const char *key)
{
    char *err = NULL;
    int rc = 0;
    rocksdb_delete(m->db, m->wo, key, strlen(key), &err);
    if (err)
        rc = io_err("delete", err);
    rocksdb_free(err);
    return rc;
}

int store_metastore_scan(struct store_metastore *m, const char *prefix, store_metastore_fn fn,
                         void *arg)
{
    char *err = NULL;
    int rc = 0;
    size_t plen = strlen(prefix);
    struct cellar_buf upper = {0};
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = NULL;
    cellar_buf_append(&upper, prefix, plen);
    bool has_upper = store_key_successor(&upper) == 0; /* none for "" or all 0xff */
    if (plen)
        rocksdb_readoptions_set_iterate_lower_bound(ro, prefix, plen);
    if (has_upper)
        rocksdb_readoptions_set_iterate_upper_bound(ro, upper.data, upper.len);
    it = rocksdb_create_iterator(m->db, ro);
    for (rocksdb_iter_seek(it, prefix, plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen = 0, vlen = 0;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, prefix, plen) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vlen);
        rc = fn(arg, k, klen, v, vlen);
        if (rc)
            goto out;
    }
    rocksdb_iter_get_error(it, &err);
    if (err)
        rc = io_err("scan", err);
out:
    if (it)
        rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    cellar_buf_fini(&upper);
    rocksdb_free(err);
    return rc;
}

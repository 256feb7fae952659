/*
 * partition.c - one partition replica in one RocksDB (see partition.h).
 *
 * Design: the directory holds one RocksDB with three column families:
 * "default" (cells, key = keycodec, value = valcodec), "log" (key = u64 BE
 * decree, value = the encoded mutation) and "meta" ("format" = u64 BE 1,
 * "applied_decree" = u64 BE). Each partition opens with fresh copies of the
 * engine's options, so it shares the engine's cache, env, rate limiter and
 * statistics but owns nothing RocksDB could free twice. Reads go straight to
 * RocksDB. Every write goes through a store_batch, a WriteBatchWithIndex
 * (overwrite_keys on) that answers reads with the batch's own writes over
 * the DB, so apply sees earlier mutations of the same group commit; commit
 * adds the applied decree to the same batch, so cells, log entries and the
 * applied decree become durable atomically in one WAL record.
 *
 * Iterators carry both bounds in their read options; the bound buffers and
 * the read options live in the store_iter until the RocksDB iterator is
 * destroyed (RocksDB keeps pointers to both). A batch iterator merges the
 * batch's delta with a base DB iterator, and the delta does not know the
 * bounds (7.8's C API passes no read options to it), so store_iter_next()
 * checks every key against the bounds itself, in every kind of iterator.
 * Ascending row scans use prefix_same_as_start (the per-row bloom); reverse
 * and partition-wide scans use total_order_seek.
 *
 * Health. A partition is ok, short of space, or failed. A commit that
 * RocksDB refuses for a full disk sets no_space (writes are refused, reads
 * go on; RocksDB's SstFileManager polls the free space and resumes writes
 * by itself) and the next commit that succeeds clears it. Corruption seen
 * anywhere (RocksDB reports "Corruption", or a stored cell does not decode)
 * fails the partition for good: the first sighting logs why, and from then
 * on every read, iterator and commit returns -CELLAR_EUNAVAIL at once, so
 * nothing built on damaged data is served or written. A partition that
 * could not be opened at all is a failed partition without a DB
 * (store_partition_new_failed), so the node can still serve the others.
 * Failure is not undone while the process runs: the files need repair (or
 * a replica, later) and the node a restart.
 *
 * Invariants: p->applied equals the "applied_decree" stored in meta, except
 * between a successful write and the atomic store that follows it. A batch
 * is empty after every commit, failed or not. RocksDB's errptr is NULL on
 * entry to every call and freed at the exit. p->db is NULL only in a failed
 * partition, and every entry point checks failure before touching it.
 *
 * Threads: store_get, the iterators, read_log and the getters from any
 * thread (p->ro is shared read-only; p->applied, failed and no_space are
 * atomic; reason is guarded by health_mu). A batch belongs
 * to one thread at a time (the partition's writer); commit and trim_log may
 * run concurrently with readers. open, close, destroy, checkpoint and
 * compact from one controlling thread.
 */
#include "storage/partition.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rocksdb/c.h>

#include "storage/keycodec.h"

enum { CF_CELLS, CF_LOG, CF_META, CF_COUNT };
static const char *const cf_names[CF_COUNT] = {"default", "log", "meta"};

#define META_FORMAT_KEY "format"
#define META_APPLIED_KEY "applied_decree"
#define PARTITION_FORMAT 1
#define META_WRITE_BUFFER (256u << 10) /* a handful of tiny keys */
#define BOTTOMMOST_FORCE 2             /* BottommostLevelCompaction::kForce */

struct store_partition {
    struct store_engine *engine; /* borrowed; outlives p */
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_options_t *db_opts; /* copies owned by p, kept until close */
    rocksdb_options_t *cf_opts[CF_COUNT];
    rocksdb_readoptions_t *ro; /* point gets, shared read-only */
    rocksdb_writeoptions_t *wo_sync;
    rocksdb_writeoptions_t *wo_nosync;
    uint64_t applied; /* __atomic: written by the committing thread only */
    char *dir;        /* for logs */
    int failed;       /* __atomic bool, sticky: see Health above */
    int no_space;     /* __atomic bool: the last commit found the disk full */
    pthread_mutex_t health_mu;
    char reason[256]; /* why it failed; written once, under health_mu */
    /* TEST ONLY (store_partition_test_fail_commits): commits left to fail,
     * and with which code. */
    unsigned test_fail_commits; /* __atomic */
    int test_fail_err;
};

struct store_batch {
    struct store_partition *p;
    rocksdb_writebatch_wi_t *wb;
    struct cellar_buf key; /* scratch, reused by every call */
    struct cellar_buf val;
};

struct store_iter {
    struct store_partition *p; /* borrowed: failed when corruption shows */
    rocksdb_iterator_t *it;    /* NULL for an empty range */
    rocksdb_readoptions_t *ro; /* outlives it: holds the bound slices */
    struct cellar_buf lower;   /* inclusive, when has_lower */
    struct cellar_buf upper;   /* exclusive, when has_upper */
    struct cellar_buf prefix;  /* row iterators: every key starts with it */
    bool has_lower;
    bool has_upper;
    bool reverse;
    bool started;
    bool done;
    uint32_t now_s;
};

/* --- Helpers ------------------------------------------------------------- */

/* Maps a RocksDB error string (Status::ToString) to a status code. RocksDB
 * reports a full disk as "IO error: No space left on device". */
static int err_code(const char *err)
{
    if (strstr(err, "No space left") || strstr(err, "NoSpace"))
        return -CELLAR_ENOSPC;
    if (strncmp(err, "Corruption", 10) == 0)
        return -CELLAR_ECORRUPT;
    return -CELLAR_EIO;
}

/* err_code, and the error logged. */
static int map_err(const char *what, const char *err)
{
    log_err("storage: %s: %s", what, err);
    return err_code(err);
}

static bool part_failed(const struct store_partition *p)
{
    return __atomic_load_n(&p->failed, __ATOMIC_ACQUIRE) != 0;
}

/* Fails p for good (see Health above) and says why in the log the first
 * time. Returns -CELLAR_EUNAVAIL, what every later call on p returns. */
static int part_fail(struct store_partition *p, const char *why)
{
    bool first = false;
    pthread_mutex_lock(&p->health_mu);
    if (!__atomic_load_n(&p->failed, __ATOMIC_RELAXED)) {
        snprintf(p->reason, sizeof(p->reason), "%s", why);
        __atomic_store_n(&p->failed, 1, __ATOMIC_RELEASE);
        first = true;
    }
    pthread_mutex_unlock(&p->health_mu);
    if (first)
        log_err("storage: partition %s failed: %s; its keys are unavailable until it is "
                "repaired and the node restarted",
                p->dir, why);
    return -CELLAR_EUNAVAIL;
}

/* map_err for a call on p: corruption fails the partition. */
static int part_err(struct store_partition *p, const char *what, const char *err)
{
    int rc = map_err(what, err);
    if (rc == -CELLAR_ECORRUPT) {
        char why[256];
        snprintf(why, sizeof(why), "%s: %s", what, err);
        rc = part_fail(p, why);
    }
    return rc;
}

/* One pinned read of key in cf: 0 and *out (destroy it), -CELLAR_ENOTFOUND,
 * -CELLAR_EIO or -CELLAR_EUNAVAIL. A read never reports a full disk. */
static int pinned_get(struct store_partition *p, int cf, const char *key, size_t klen,
                      const char *what, rocksdb_pinnableslice_t **out)
{
    char *err = NULL;
    *out = NULL;
    if (part_failed(p))
        return -CELLAR_EUNAVAIL;
    *out = rocksdb_get_pinned_cf(p->db, p->ro, p->cf[cf], key, klen, &err);
    if (err) {
        int rc = part_err(p, what, err);
        rocksdb_free(err);
        *out = NULL;
        return rc == -CELLAR_ENOSPC ? -CELLAR_EIO : rc;
    }
    return *out ? 0 : -CELLAR_ENOTFOUND;
}

/* Reads a u64 BE value from the meta CF. 0, or -CELLAR_ENOTFOUND, or an
 * error (-CELLAR_ECORRUPT when the value has the wrong size). */
static int meta_get_u64(struct store_partition *p, const char *key, uint64_t *v)
{
    rocksdb_pinnableslice_t *pin = NULL;
    int rc = pinned_get(p, CF_META, key, strlen(key), "read meta", &pin);
    if (rc < 0)
        goto out;
    size_t len = 0;
    const char *val = rocksdb_pinnableslice_value(pin, &len);
    if (len != 8) {
        log_err("storage: meta key %s has %zu bytes, expected 8", key, len);
        rc = -CELLAR_ECORRUPT;
        goto out;
    }
    *v = cellar_load_u64be(val);
out:
    if (pin)
        rocksdb_pinnableslice_destroy(pin);
    return rc;
}

/* Checks the format key (writing it into a new partition) and loads the
 * applied decree. A partition with an applied decree but no format key was
 * not written by us: corrupt. */
static int meta_load(struct store_partition *p)
{
    char *err = NULL;
    uint64_t format = 0, applied = 0;
    int rc = meta_get_u64(p, META_APPLIED_KEY, &applied);
    if (rc == -CELLAR_ENOTFOUND)
        applied = 0;
    else if (rc)
        goto out;
    bool has_applied = rc == 0;
    rc = meta_get_u64(p, META_FORMAT_KEY, &format);
    if (rc == -CELLAR_ENOTFOUND && !has_applied) {
        uint8_t v[8];
        cellar_store_u64be(v, PARTITION_FORMAT);
        rocksdb_put_cf(p->db, p->wo_sync, p->cf[CF_META], META_FORMAT_KEY, strlen(META_FORMAT_KEY),
                       (const char *)v, sizeof(v), &err);
        if (err) {
            rc = map_err("write format", err);
            goto out;
        }
        format = PARTITION_FORMAT;
        rc = 0;
    } else if (rc == -CELLAR_ENOTFOUND) {
        log_err("storage: partition has an applied decree but no format");
        rc = -CELLAR_ECORRUPT;
        goto out;
    } else if (rc) {
        goto out;
    }
    if (format != PARTITION_FORMAT) {
        log_err("storage: unknown partition format %llu", (unsigned long long)format);
        rc = -CELLAR_ECORRUPT;
        goto out;
    }
    __atomic_store_n(&p->applied, applied, __ATOMIC_RELEASE);
out:
    rocksdb_free(err);
    return rc;
}

/* --- Open, close, destroy ------------------------------------------------ */

static struct store_partition *part_new(struct store_engine *e, const char *dir)
{
    struct store_partition *p = cellar_xcalloc(1, sizeof(*p));
    p->engine = e;
    p->dir = cellar_xstrdup(dir);
    pthread_mutex_init(&p->health_mu, NULL);
    return p;
}

struct store_partition *store_partition_new_failed(struct store_engine *e, const char *dir,
                                                   const char *why)
{
    struct store_partition *p = part_new(e, dir);
    part_fail(p, why);
    return p;
}

int store_partition_open(struct store_engine *e, const char *dir, struct store_partition **out)
{
    char *err = NULL;
    int rc = 0;
    *out = NULL;
    struct store_partition *p = part_new(e, dir);
    p->db_opts = store_engine_options_new(e, STORE_OPTS_BASE);
    rocksdb_options_set_create_if_missing(p->db_opts, 1);
    rocksdb_options_set_create_missing_column_families(p->db_opts, 1);
    p->cf_opts[CF_CELLS] = store_engine_options_new(e, STORE_OPTS_CELLS);
    p->cf_opts[CF_LOG] = store_engine_options_new(e, STORE_OPTS_BASE);
    p->cf_opts[CF_META] = store_engine_options_new(e, STORE_OPTS_BASE);
    rocksdb_options_set_write_buffer_size(p->cf_opts[CF_META], META_WRITE_BUFFER);
    p->ro = rocksdb_readoptions_create();
    p->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(p->wo_sync, 1);
    p->wo_nosync = rocksdb_writeoptions_create();

    p->db = rocksdb_open_column_families(p->db_opts, dir, CF_COUNT, cf_names,
                                         (const rocksdb_options_t *const *)p->cf_opts, p->cf, &err);
    if (err) {
        rc = map_err(dir, err);
        if (rc == -CELLAR_ENOSPC)
            rc = -CELLAR_EIO; /* the header promises EIO or ECORRUPT */
        p->db = NULL;
        goto out;
    }
    rc = meta_load(p);
    if (rc)
        goto out;
    *out = p;
    p = NULL;
out:
    rocksdb_free(err);
    store_partition_close(p);
    return rc;
}

void store_partition_close(struct store_partition *p)
{
    if (!p)
        return;
    if (p->db) {
        rocksdb_cancel_all_background_work(p->db, 1);
        for (int i = 0; i < CF_COUNT; i++) {
            if (p->cf[i])
                rocksdb_column_family_handle_destroy(p->cf[i]);
        }
        rocksdb_close(p->db);
    }
    if (p->wo_nosync)
        rocksdb_writeoptions_destroy(p->wo_nosync);
    if (p->wo_sync)
        rocksdb_writeoptions_destroy(p->wo_sync);
    if (p->ro)
        rocksdb_readoptions_destroy(p->ro);
    for (int i = 0; i < CF_COUNT; i++) {
        if (p->cf_opts[i])
            rocksdb_options_destroy(p->cf_opts[i]);
    }
    if (p->db_opts)
        rocksdb_options_destroy(p->db_opts);
    pthread_mutex_destroy(&p->health_mu);
    free(p->dir);
    free(p);
}

int store_partition_destroy(struct store_engine *e, const char *dir)
{
    char *err = NULL;
    rocksdb_options_t *opts = NULL;
    struct stat st;
    int rc = 0;
    if (lstat(dir, &st) != 0) {
        if (errno == ENOENT)
            goto out;
        log_err("storage: stat %s: %s", dir, strerror(errno));
        rc = -CELLAR_ESYS;
        goto out;
    }
    /* DestroyDB takes the DB lock first, so it refuses (and we keep the
     * files) when the partition is still open. */
    opts = store_engine_options_new(e, STORE_OPTS_BASE);
    rocksdb_destroy_db(opts, dir, &err);
    if (err) {
        rc = map_err(dir, err);
        goto out;
    }
    /* DestroyDB leaves files it does not know (and maybe the directory). */
    rc = cellar_remove_tree(dir);
out:
    rocksdb_free(err);
    if (opts)
        rocksdb_options_destroy(opts);
    return rc;
}

uint64_t store_partition_applied_decree(const struct store_partition *p)
{
    return __atomic_load_n(&p->applied, __ATOMIC_ACQUIRE);
}

struct store_engine *store_partition_engine(const struct store_partition *p)
{
    return p->engine;
}

enum store_health store_partition_health(struct store_partition *p, char *reason, size_t n)
{
    if (part_failed(p)) {
        if (reason && n) {
            pthread_mutex_lock(&p->health_mu);
            snprintf(reason, n, "%s", p->reason);
            pthread_mutex_unlock(&p->health_mu);
        }
        return STORE_HEALTH_FAILED;
    }
    if (reason && n)
        reason[0] = '\0';
    return __atomic_load_n(&p->no_space, __ATOMIC_ACQUIRE) ? STORE_HEALTH_NO_SPACE
                                                           : STORE_HEALTH_OK;
}

void store_partition_test_fail_commits(struct store_partition *p, int err, unsigned n)
{
    p->test_fail_err = err;
    __atomic_store_n(&p->test_fail_commits, n, __ATOMIC_RELEASE);
}

int store_partition_checkpoint(struct store_partition *p, const char *dir)
{
    char *err = NULL;
    rocksdb_checkpoint_t *cp = NULL;
    struct stat st;
    int rc = 0;
    if (part_failed(p)) {
        rc = -CELLAR_EUNAVAIL;
        goto out;
    }
    if (lstat(dir, &st) == 0) {
        rc = -CELLAR_EEXIST;
        goto out;
    }
    cp = rocksdb_checkpoint_object_create(p->db, &err);
    if (err) {
        rc = part_err(p, "checkpoint", err);
        goto out;
    }
    /* log_size_for_flush 0: flush first, so the copy needs no WAL replay. */
    rocksdb_checkpoint_create(cp, dir, 0, &err);
    if (err) {
        rc = part_err(p, dir, err);
        goto out;
    }
out:
    if (cp)
        rocksdb_checkpoint_object_destroy(cp);
    rocksdb_free(err);
    return rc;
}

int store_partition_compact(struct store_partition *p)
{
    /* CompactRange reports no status through the C API: a background error
     * counter that moved during the call is our only signal. */
    uint64_t errors_before = 0, errors_after = 0;
    if (part_failed(p))
        return -CELLAR_EUNAVAIL;
    rocksdb_property_int(p->db, "rocksdb.background-errors", &errors_before);
    rocksdb_compactoptions_t *co = rocksdb_compactoptions_create();
    /* Rewrite the bottommost level too, so the TTL filter sees every cell
     * and range deletions in the log CF are dropped. */
    rocksdb_compactoptions_set_bottommost_level_compaction(co, BOTTOMMOST_FORCE);
    for (int i = 0; i < CF_COUNT; i++)
        rocksdb_compact_range_cf_opt(p->db, p->cf[i], co, NULL, 0, NULL, 0);
    rocksdb_compactoptions_destroy(co);
    rocksdb_property_int(p->db, "rocksdb.background-errors", &errors_after);
    if (errors_after > errors_before) {
        log_err("storage: %s: compaction failed (a RocksDB background error)", p->dir);
        return -CELLAR_EIO;
    }
    return 0;
}

uint64_t store_partition_estimate_keys(struct store_partition *p)
{
    uint64_t n = 0;
    if (part_failed(p))
        return 0;
    if (rocksdb_property_int_cf(p->db, p->cf[CF_CELLS], "rocksdb.estimate-num-keys", &n) != 0)
        return 0;
    return n;
}

static uint64_t prop_cf(struct store_partition *p, int cf, const char *name)
{
    uint64_t v = 0;
    return rocksdb_property_int_cf(p->db, p->cf[cf], name, &v) == 0 ? v : 0;
}

void store_partition_props(struct store_partition *p, struct store_partition_props *out)
{
    memset(out, 0, sizeof(*out));
    if (!p->db)
        return; /* a partition that could not open: nothing to report */
    out->estimate_keys = store_partition_estimate_keys(p);
    for (int cf = 0; cf < CF_COUNT; cf++) {
        out->sst_bytes += prop_cf(p, cf, "rocksdb.total-sst-files-size");
        out->memtable_bytes += prop_cf(p, cf, "rocksdb.cur-size-all-mem-tables");
        out->pending_compaction_bytes +=
            prop_cf(p, cf, "rocksdb.estimate-pending-compaction-bytes");
    }
    uint64_t v = 0;
    if (rocksdb_property_int(p->db, "rocksdb.num-running-compactions", &v) == 0)
        out->running_compactions = v;
}

/* --- Point reads --------------------------------------------------------- */

int store_get(struct store_partition *p, const void *hk, size_t hklen, const void *sk, size_t sklen,
              uint32_t now_s, struct store_cell *out)
{
    struct cellar_buf key = {0};
    rocksdb_pinnableslice_t *pin = NULL;
    store_key_encode(&key, hk, hklen, sk, sklen);
    int rc = pinned_get(p, CF_CELLS, key.data, key.len, "get", &pin);
    if (rc < 0)
        goto out;
    size_t rawlen = 0;
    const char *raw = rocksdb_pinnableslice_value(pin, &rawlen);
    struct store_value_header hdr;
    const char *data;
    size_t len;
    rc = store_value_decode(raw, rawlen, &hdr, &data, &len);
    if (rc) {
        rc = part_fail(p, "a stored cell value does not decode");
        goto out;
    }
    if (store_value_expired(hdr.expiry, now_s)) {
        rc = -CELLAR_ENOTFOUND;
        goto out;
    }
    out->value = data;
    out->value_len = len;
    out->hdr = hdr;
    out->pin = pin;
    pin = NULL;
out:
    if (pin)
        rocksdb_pinnableslice_destroy(pin);
    cellar_buf_fini(&key);
    return rc;
}

void store_cell_release(struct store_cell *c)
{
    store_pin_free(c->pin);
    memset(c, 0, sizeof(*c));
}

void store_pin_free(void *pin)
{
    if (pin)
        rocksdb_pinnableslice_destroy(pin);
}

/* --- Iterators ----------------------------------------------------------- */

static struct store_iter *iter_new(struct store_partition *p, uint32_t now_s, bool reverse)
{
    struct store_iter *it = cellar_xcalloc(1, sizeof(*it));
    it->p = p;
    it->now_s = now_s;
    it->reverse = reverse;
    return it;
}

/* start > stop, or start == stop and not both inclusive. */
static bool row_range_empty(const struct store_row_range *r)
{
    if (r->stop_end)
        return false;
    int c = cellar_bytes_cmp(r->start, r->start_len, r->stop, r->stop_len);
    return c > 0 || (c == 0 && !(r->start_incl && r->stop_incl));
}

/* Encodes the bounds of row hk within r (NULL = the whole row):
 *   lower = prefix + start (+ "\0" when start is exclusive: the smallest
 *           sortkey greater than start);
 *   upper = prefix + stop (+ "\0" when stop is inclusive), or, for stop_end,
 *           the successor of the prefix (the first key of the next row).
 * Only a row prefix of all 0xff bytes has no successor; nothing can sort
 * after it, so that row scan alone runs without an upper bound. */
static void iter_row_bounds(struct store_iter *it, const void *hk, size_t hklen,
                            const struct store_row_range *r)
{
    store_key_row_prefix(&it->prefix, hk, hklen);
    cellar_buf_append(&it->lower, it->prefix.data, it->prefix.len);
    if (r) {
        cellar_buf_append(&it->lower, r->start, r->start_len);
        if (!r->start_incl)
            cellar_buf_append_byte(&it->lower, 0);
    }
    it->has_lower = true;
    cellar_buf_append(&it->upper, it->prefix.data, it->prefix.len);
    if (r && !r->stop_end) {
        cellar_buf_append(&it->upper, r->stop, r->stop_len);
        if (r->stop_incl)
            cellar_buf_append_byte(&it->upper, 0);
        it->has_upper = true;
    } else {
        it->has_upper = store_key_successor(&it->upper) == 0;
    }
}

/* Read options carrying the iterator's bounds; created after the bound
 * buffers are final (RocksDB keeps pointers into them). */
static void iter_readoptions(struct store_iter *it)
{
    it->ro = rocksdb_readoptions_create();
    if (it->has_lower)
        rocksdb_readoptions_set_iterate_lower_bound(it->ro, it->lower.data, it->lower.len);
    if (it->has_upper)
        rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->upper.data, it->upper.len);
}

/* The common part of store_iter_row and store_batch_iter_row: bounds and
 * read options, or it->done (and no read options) for an empty range.
 * r == NULL means the whole row. */
static struct store_iter *iter_row_setup(struct store_partition *p, const void *hk, size_t hklen,
                                         const struct store_row_range *r, bool reverse,
                                         uint32_t now_s)
{
    struct store_iter *it = iter_new(p, now_s, reverse);
    if (r && row_range_empty(r)) {
        it->done = true;
        return it;
    }
    iter_row_bounds(it, hk, hklen, r);
    iter_readoptions(it);
    if (reverse)
        rocksdb_readoptions_set_total_order_seek(it->ro, 1);
    else
        rocksdb_readoptions_set_prefix_same_as_start(it->ro, 1);
    return it;
}

int store_iter_row(struct store_partition *p, const void *hk, size_t hklen,
                   const struct store_row_range *r, bool reverse, uint32_t now_s,
                   struct store_iter **out)
{
    *out = NULL;
    if (part_failed(p))
        return -CELLAR_EUNAVAIL;
    struct store_iter *it = iter_row_setup(p, hk, hklen, r, reverse, now_s);
    if (!it->done)
        it->it = rocksdb_create_iterator_cf(p->db, it->ro, p->cf[CF_CELLS]);
    *out = it;
    return 0;
}

int store_iter_partition(struct store_partition *p, const void *lower, size_t lower_len,
                         const void *upper, size_t upper_len, uint32_t now_s,
                         struct store_iter **out)
{
    *out = NULL;
    if (part_failed(p))
        return -CELLAR_EUNAVAIL;
    struct store_iter *it = iter_new(p, now_s, false);
    if (lower) {
        cellar_buf_append(&it->lower, lower, lower_len);
        it->has_lower = true;
    }
    if (upper) {
        cellar_buf_append(&it->upper, upper, upper_len);
        it->has_upper = true;
    }
    if (lower && upper && cellar_bytes_cmp(lower, lower_len, upper, upper_len) >= 0) {
        it->done = true;
    } else {
        iter_readoptions(it);
        rocksdb_readoptions_set_total_order_seek(it->ro, 1);
        it->it = rocksdb_create_iterator_cf(p->db, it->ro, p->cf[CF_CELLS]);
    }
    *out = it;
    return 0;
}

/* The iterator ran out (or left its range): done, with RocksDB's verdict. */
static int iter_finish(struct store_iter *it)
{
    char *err = NULL;
    int rc = 0;
    it->done = true;
    rocksdb_iter_get_error(it->it, &err);
    if (err) {
        rc = part_err(it->p, "iterator", err);
        if (rc == -CELLAR_ENOSPC)
            rc = -CELLAR_EIO;
    }
    rocksdb_free(err);
    return rc;
}

static void iter_step(struct store_iter *it)
{
    if (it->started) {
        if (it->reverse)
            rocksdb_iter_prev(it->it);
        else
            rocksdb_iter_next(it->it);
        return;
    }
    it->started = true;
    if (it->reverse) {
        /* Lands on upper itself when present; the bound check skips it. */
        if (it->has_upper)
            rocksdb_iter_seek_for_prev(it->it, it->upper.data, it->upper.len);
        else
            rocksdb_iter_seek_to_last(it->it);
    } else {
        if (it->has_lower)
            rocksdb_iter_seek(it->it, it->lower.data, it->lower.len);
        else
            rocksdb_iter_seek_to_first(it->it);
    }
}

int store_iter_next(struct store_iter *it, struct store_item *item)
{
    if (it->done)
        return 0;
    for (;;) {
        iter_step(it);
        if (!rocksdb_iter_valid(it->it))
            return iter_finish(it);
        size_t klen = 0;
        const char *k = rocksdb_iter_key(it->it, &klen);
        /* Keys outside the bounds: before the range in the direction of
         * travel is skipped, past it ends the scan. Only a batch iterator's
         * delta can produce them; for the others this is a cheap check. */
        if (it->has_lower && cellar_bytes_cmp(k, klen, it->lower.data, it->lower.len) < 0) {
            if (it->reverse)
                return iter_finish(it);
            continue;
        }
        if (it->has_upper && cellar_bytes_cmp(k, klen, it->upper.data, it->upper.len) >= 0) {
            if (!it->reverse)
                return iter_finish(it);
            continue;
        }
        if (it->prefix.len &&
            (klen < it->prefix.len || memcmp(k, it->prefix.data, it->prefix.len) != 0))
            return iter_finish(it);
        size_t vlen = 0;
        const char *v = rocksdb_iter_value(it->it, &vlen);
        if (store_key_decode(k, klen, &item->hk, &item->hklen, &item->sk, &item->sklen) != 0 ||
            store_value_decode(v, vlen, &item->hdr, &item->value, &item->value_len) != 0) {
            log_err("storage: undecodable cell (key %zu bytes, value %zu bytes)", klen, vlen);
            it->done = true;
            return part_fail(it->p, "a stored cell does not decode");
        }
        item->expired = store_value_expired(item->hdr.expiry, it->now_s);
        return 1;
    }
}

void store_iter_free(struct store_iter *it)
{
    if (!it)
        return;
    if (it->it)
        rocksdb_iter_destroy(it->it); /* before the read options and bounds */
    if (it->ro)
        rocksdb_readoptions_destroy(it->ro);
    cellar_buf_fini(&it->lower);
    cellar_buf_fini(&it->upper);
    cellar_buf_fini(&it->prefix);
    free(it);
}

/* --- Write batches ------------------------------------------------------- */

struct store_batch *store_batch_new(struct store_partition *p)
{
    struct store_batch *b = cellar_xcalloc(1, sizeof(*b));
    b->p = p;
    /* overwrite_keys: the index keeps the latest entry per key, which is
     * what read-your-writes needs. */
    b->wb = rocksdb_writebatch_wi_create(0, 1);
    return b;
}

void store_batch_free(struct store_batch *b)
{
    if (!b)
        return;
    rocksdb_writebatch_wi_destroy(b->wb);
    cellar_buf_fini(&b->key);
    cellar_buf_fini(&b->val);
    free(b);
}

struct store_partition *store_batch_partition(const struct store_batch *b)
{
    return b->p;
}

void store_value_fini(struct store_value *v)
{
    free(v->raw);
    memset(v, 0, sizeof(*v));
}

int store_batch_get(struct store_batch *b, const void *hk, size_t hklen, const void *sk,
                    size_t sklen, uint32_t now_s, struct store_value *out)
{
    struct store_partition *p = b->p;
    char *err = NULL;
    char *raw = NULL;
    size_t rawlen = 0;
    int rc = 0;
    if (part_failed(p))
        return -CELLAR_EUNAVAIL;
    cellar_buf_reset(&b->key);
    store_key_encode(&b->key, hk, hklen, sk, sklen);
    raw = rocksdb_writebatch_wi_get_from_batch_and_db_cf(b->wb, p->db, p->ro, p->cf[CF_CELLS],
                                                         b->key.data, b->key.len, &rawlen, &err);
    if (err) {
        rc = part_err(p, "batch get", err);
        if (rc == -CELLAR_ENOSPC)
            rc = -CELLAR_EIO;
        goto out;
    }
    if (!raw) {
        rc = -CELLAR_ENOTFOUND;
        goto out;
    }
    struct store_value v = {.raw = raw};
    rc = store_value_decode(raw, rawlen, &v.hdr, &v.value, &v.value_len);
    if (rc) {
        rc = part_fail(p, "a stored cell value does not decode");
        goto out;
    }
    if (store_value_expired(v.hdr.expiry, now_s)) {
        rc = -CELLAR_ENOTFOUND;
        goto out;
    }
    *out = v;
    raw = NULL;
out:
    free(raw); /* malloc()ed by the C API */
    rocksdb_free(err);
    return rc;
}

void store_batch_put(struct store_batch *b, const void *hk, size_t hklen, const void *sk,
                     size_t sklen, uint32_t expiry, uint64_t version, const char *ctype,
                     size_t ctype_len, const void *data, size_t len)
{
    cellar_buf_reset(&b->key);
    cellar_buf_reset(&b->val);
    store_key_encode(&b->key, hk, hklen, sk, sklen);
    store_value_encode(&b->val, expiry, version, ctype, ctype_len, data, len);
    rocksdb_writebatch_wi_put_cf(b->wb, b->p->cf[CF_CELLS], b->key.data, b->key.len, b->val.data,
                                 b->val.len);
}

void store_batch_delete(struct store_batch *b, const void *hk, size_t hklen, const void *sk,
                        size_t sklen)
{
    cellar_buf_reset(&b->key);
    store_key_encode(&b->key, hk, hklen, sk, sklen);
    rocksdb_writebatch_wi_delete_cf(b->wb, b->p->cf[CF_CELLS], b->key.data, b->key.len);
}

int store_batch_iter_row(struct store_batch *b, const void *hk, size_t hklen,
                         const struct store_row_range *r, uint32_t now_s, struct store_iter **out)
{
    struct store_partition *p = b->p;
    *out = NULL;
    if (part_failed(p))
        return -CELLAR_EUNAVAIL;
    struct store_iter *it = iter_row_setup(p, hk, hklen, r, false, now_s);
    if (!it->done) {
        rocksdb_iterator_t *base = rocksdb_create_iterator_cf(p->db, it->ro, p->cf[CF_CELLS]);
        /* Takes over base; the result reads base's bounds from it->ro. */
        it->it = rocksdb_writebatch_wi_create_iterator_with_base_cf(b->wb, base, p->cf[CF_CELLS]);
    }
    *out = it;
    return 0;
}

void store_batch_savepoint(struct store_batch *b)
{
    rocksdb_writebatch_wi_set_save_point(b->wb);
}

/* -CELLAR_EINVAL when there is no mark to roll back to (a caller bug). */
int store_batch_rollback(struct store_batch *b)
{
    char *err = NULL;
    int rc = 0;
    rocksdb_writebatch_wi_rollback_to_save_point(b->wb, &err);
    if (err) {
        log_err("storage: batch rollback: %s", err);
        rc = -CELLAR_EINVAL;
    }
    rocksdb_free(err);
    return rc;
}

void store_batch_log(struct store_batch *b, uint64_t decree, const void *data, size_t len)
{
    uint8_t key[8];
    cellar_store_u64be(key, decree);
    rocksdb_writebatch_wi_put_cf(b->wb, b->p->cf[CF_LOG], (const char *)key, sizeof(key), data,
                                 len);
}

size_t store_batch_count(struct store_batch *b)
{
    int n = rocksdb_writebatch_wi_count(b->wb);
    return n > 0 ? (size_t)n : 0;
}

size_t store_batch_bytes(struct store_batch *b)
{
    size_t size = 0;
    rocksdb_writebatch_wi_data(b->wb, &size);
    return size;
}

int store_batch_commit(struct store_batch *b, uint64_t decree, bool sync)
{
    struct store_partition *p = b->p;
    char *err = NULL;
    int rc = 0;
    uint8_t v[8];
    if (part_failed(p)) {
        rc = -CELLAR_EUNAVAIL;
        goto out;
    }
    if (__atomic_load_n(&p->test_fail_commits, __ATOMIC_ACQUIRE) > 0) {
        __atomic_sub_fetch(&p->test_fail_commits, 1, __ATOMIC_ACQ_REL);
        rc = p->test_fail_err;
        log_err("storage: commit: failed on purpose (test): %s", cellar_strerror(rc));
        if (rc == -CELLAR_ECORRUPT)
            rc = part_fail(p, "commit: corruption injected by a test");
    } else {
        cellar_store_u64be(v, decree);
        rocksdb_writebatch_wi_put_cf(b->wb, p->cf[CF_META], META_APPLIED_KEY,
                                     strlen(META_APPLIED_KEY), (const char *)v, sizeof(v));
        rocksdb_write_writebatch_wi(p->db, sync ? p->wo_sync : p->wo_nosync, b->wb, &err);
        if (err && err_code(err) == -CELLAR_ENOSPC) {
            /* Every commit fails until RocksDB resumes: say it once. */
            rc = -CELLAR_ENOSPC;
            cellar_log(__atomic_load_n(&p->no_space, __ATOMIC_RELAXED) ? CELLAR_LOG_DEBUG
                                                                       : CELLAR_LOG_ERR,
                       "storage: commit: %s", err);
        } else if (err) {
            rc = part_err(p, "commit", err);
            if (rc != -CELLAR_EUNAVAIL)
                rc = -CELLAR_EIO;
        }
    }
    if (rc == -CELLAR_ENOSPC) {
        __atomic_store_n(&p->no_space, 1, __ATOMIC_RELEASE);
        goto out;
    }
    if (rc)
        goto out;
    __atomic_store_n(&p->applied, decree, __ATOMIC_RELEASE);
    if (__atomic_load_n(&p->no_space, __ATOMIC_RELAXED))
        __atomic_store_n(&p->no_space, 0, __ATOMIC_RELEASE);
out:
    rocksdb_writebatch_wi_clear(b->wb);
    rocksdb_free(err);
    return rc;
}

int store_partition_trim_log(struct store_partition *p, uint64_t below)
{
    char *err = NULL;
    int rc = 0;
    if (below == 0)
        return 0;
    if (part_failed(p))
        return -CELLAR_EUNAVAIL;
    uint8_t begin[8], end[8];
    cellar_store_u64be(begin, 0);
    cellar_store_u64be(end, below);
    rocksdb_delete_range_cf(p->db, p->wo_nosync, p->cf[CF_LOG], (const char *)begin, sizeof(begin),
                            (const char *)end, sizeof(end), &err);
    if (err)
        rc = part_err(p, "trim log", err);
    rocksdb_free(err);
    return rc;
}

int store_partition_read_log(struct store_partition *p, uint64_t decree, struct cellar_buf *out)
{
    uint8_t key[8];
    cellar_store_u64be(key, decree);
    rocksdb_pinnableslice_t *pin = NULL;
    int rc = pinned_get(p, CF_LOG, (const char *)key, sizeof(key), "read log", &pin);
    if (rc < 0)
        goto out;
    size_t len = 0;
    const char *val = rocksdb_pinnableslice_value(pin, &len);
    cellar_buf_append(out, val, len);
out:
    if (pin)
        rocksdb_pinnableslice_destroy(pin);
    return rc;
}

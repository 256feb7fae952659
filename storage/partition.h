/*
 * partition.h - one partition replica: one RocksDB in its own directory with
 * the column families default (cells), log (decree -> encoded mutation) and
 * meta (applied decree, format version).
 *
 * Reads go straight to RocksDB: point gets are pinned (no copy), ranges use
 * iterators that always carry iterate_upper_bound. Writes go only through a
 * store_batch (a RocksDB WriteBatchWithIndex), filled by apply (apply.h) and
 * committed by the partition's writer (replication/writer.c): the batch
 * holds the cells, the log entries and the applied decree, so they commit
 * atomically in one write (the three CFs share one WAL).
 *
 * Expired cells are invisible to store_get; iterators return them with
 * item.expired set, so callers can count them toward their work bound.
 *
 * Health (store_partition_health): a commit refused for a full disk marks
 * the partition short of space until a commit succeeds again (RocksDB
 * resumes writes by itself once space is free). Corruption, seen by any
 * read, iterator or commit, fails the partition for good: from then on
 * every call that reads or writes it returns -CELLAR_EUNAVAIL. A partition
 * that could not be opened is represented by a failed partition too
 * (store_partition_new_failed), so callers need no NULL checks.
 *
 * Threads: reads and iterators from any thread, concurrently. A store_batch
 * belongs to one thread at a time (the partition's writer). open, close,
 * destroy, checkpoint and compact from one controlling thread; close only
 * after the writer stopped and no reader holds the partition.
 */
#ifndef STORE_PARTITION_H
#define STORE_PARTITION_H

#include "common/cellar.h"
#include "storage/engine.h"
#include "storage/valcodec.h"

struct store_partition;

/* Opens (creating if missing) the partition stored in dir. Errors:
 * -CELLAR_EIO (RocksDB refused: the log says why), -CELLAR_ECORRUPT; then
 * *out is NULL. */
int store_partition_open(struct store_engine *e, const char *dir, struct store_partition **out);

/* A partition that could not be opened: failed from the start with why
 * (copied), no DB behind it; every call on it fails with -CELLAR_EUNAVAIL,
 * store_partition_applied_decree is 0. Free it with store_partition_close. */
struct store_partition *store_partition_new_failed(struct store_engine *e, const char *dir,
                                                   const char *why);

enum store_health {
    STORE_HEALTH_OK = 0,
    STORE_HEALTH_NO_SPACE, /* the last commit found the disk full; reads go on */
    STORE_HEALTH_FAILED,   /* corrupt or never opened; nothing is served */
};

/* The partition's health; when failed, why is copied into reason (n bytes,
 * may be NULL), otherwise reason is made empty. Any thread. */
enum store_health store_partition_health(struct store_partition *p, char *reason, size_t n);

/* TEST ONLY: the next n commits fail with err as if RocksDB had refused
 * them, without reaching RocksDB, and with the same effect on health
 * (-CELLAR_ENOSPC marks no space, -CELLAR_ECORRUPT fails the partition).
 * For unit tests of the writer's failed-group path; nothing else calls it. */
void store_partition_test_fail_commits(struct store_partition *p, int err, unsigned n);

/* Waits for background work, closes the DB and frees p. Accepts NULL. */
void store_partition_close(struct store_partition *p);

/* Deletes the partition's files. The partition must be closed. Missing dir
 * is success. */
int store_partition_destroy(struct store_engine *e, const char *dir);

/* The decree of the last applied mutation (0 for a new partition). Read at
 * open and advanced by store_batch_commit. */
uint64_t store_partition_applied_decree(const struct store_partition *p);

/* The engine this partition belongs to (borrowed). */
struct store_engine *store_partition_engine(const struct store_partition *p);

/* Writes a consistent copy of the partition into dir, which must not exist
 * (hard links when on the same filesystem). */
int store_partition_checkpoint(struct store_partition *p, const char *dir);

/* Compacts every column family fully; the TTL filter drops expired cells.
 * Blocks until done. */
int store_partition_compact(struct store_partition *p);

/* Approximate number of keys in the cells CF (RocksDB estimate). */
uint64_t store_partition_estimate_keys(struct store_partition *p);

/* RocksDB's figures for one partition, for /metrics. Sizes are summed over
 * the column families; keys are the cells CF's estimate. A property RocksDB
 * cannot give reads 0. */
struct store_partition_props {
    uint64_t estimate_keys;
    uint64_t sst_bytes;                /* total-sst-files-size */
    uint64_t memtable_bytes;           /* cur-size-all-mem-tables */
    uint64_t pending_compaction_bytes; /* estimate-pending-compaction-bytes */
    uint64_t running_compactions;      /* num-running-compactions (DB-wide) */
};
void store_partition_props(struct store_partition *p, struct store_partition_props *out);

/* --- Point reads ------------------------------------------------------- */

/* A cell read without copying: value and hdr.ctype point into pinned RocksDB
 * memory, valid until store_cell_release(). */
struct store_cell {
    const char *value;
    size_t value_len;
    struct store_value_header hdr;
    void *pin; /* owner of the memory; freed by store_pin_free */
};

/* Reads one cell as of now_s (Unix seconds). Errors: -CELLAR_ENOTFOUND
 * (missing or expired; *out untouched), -CELLAR_EIO, -CELLAR_EUNAVAIL (the
 * partition has failed, maybe just now: corruption). */
int store_get(struct store_partition *p, const void *hk, size_t hklen, const void *sk, size_t sklen,
              uint32_t now_s, struct store_cell *out);

/* Releases the pinned memory of a cell from store_get. Accepts a zeroed
 * cell. */
void store_cell_release(struct store_cell *c);

/* Frees a pin directly: c.pin may be handed to a response as its owner and
 * freed with this when the response is done. Accepts NULL. */
void store_pin_free(void *pin);

/* --- Iterators ---------------------------------------------------------- */

/* A range of sortkeys inside one row. stop_end: to the end of the row (stop
 * and stop_incl ignored). The range is empty when start > stop, or start ==
 * stop and not both inclusive. */
struct store_row_range {
    const void *start;
    size_t start_len;
    bool start_incl;
    const void *stop;
    size_t stop_len;
    bool stop_incl;
    bool stop_end;
};

/* One entry seen by an iterator. Every pointer is borrowed until the next
 * store_iter_next or store_iter_free. */
struct store_item {
    const char *hk;
    size_t hklen;
    const char *sk;
    size_t sklen;
    const char *value;
    size_t value_len;
    struct store_value_header hdr;
    bool expired; /* as of the iterator's now_s; the caller skips it */
};

struct store_iter;

/* Iterates the cells of row hk within r, ascending, or descending when
 * reverse. -CELLAR_EUNAVAIL (and *out NULL) on a failed partition. */
int store_iter_row(struct store_partition *p, const void *hk, size_t hklen,
                   const struct store_row_range *r, bool reverse, uint32_t now_s,
                   struct store_iter **out);

/* Iterates every cell of the partition in key order from lower (an encoded
 * key, inclusive; NULL = start) to upper (encoded, exclusive; NULL = end). */
int store_iter_partition(struct store_partition *p, const void *lower, size_t lower_len,
                         const void *upper, size_t upper_len, uint32_t now_s,
                         struct store_iter **out);

/* Advances: 1 and *item filled, 0 at the end, or -CELLAR_EIO /
 * -CELLAR_EUNAVAIL (corruption: the partition has failed). The first call
 * returns the first entry. */
int store_iter_next(struct store_iter *it, struct store_item *item);

/* Accepts NULL. */
void store_iter_free(struct store_iter *it);

/* --- Write batches (used by apply and the partition writer) ------------- */

struct store_batch;

/* A read-your-writes batch for p. */
struct store_batch *store_batch_new(struct store_partition *p);
void store_batch_free(struct store_batch *b); /* accepts NULL */

/* The partition the batch writes to (borrowed). */
struct store_partition *store_batch_partition(const struct store_batch *b);

/* A cell as seen through the batch: the batch's own writes first, then the
 * DB. raw is owned (free() it through store_value_fini); value and
 * hdr.ctype point into raw. */
struct store_value {
    char *raw;
    const char *value;
    size_t value_len;
    struct store_value_header hdr;
};
void store_value_fini(struct store_value *v);

/* Errors: -CELLAR_ENOTFOUND (missing or expired as of now_s), -CELLAR_EIO,
 * -CELLAR_EUNAVAIL. */
int store_batch_get(struct store_batch *b, const void *hk, size_t hklen, const void *sk,
                    size_t sklen, uint32_t now_s, struct store_value *out);

void store_batch_put(struct store_batch *b, const void *hk, size_t hklen, const void *sk,
                     size_t sklen, uint32_t expiry, uint64_t version, const char *ctype,
                     size_t ctype_len, const void *data, size_t len);
void store_batch_delete(struct store_batch *b, const void *hk, size_t hklen, const void *sk,
                        size_t sklen);

/* Iterates row hk within r (ascending) as seen through the batch. The
 * iterator must be freed before the batch is written to again. */
int store_batch_iter_row(struct store_batch *b, const void *hk, size_t hklen,
                         const struct store_row_range *r, uint32_t now_s, struct store_iter **out);

/* Marks the current state; store_batch_rollback() undoes every write since
 * the last mark (apply uses it to make a failed mutation change nothing). */
void store_batch_savepoint(struct store_batch *b);
int store_batch_rollback(struct store_batch *b);

/* Records the log entry of decree (the encoded mutation). */
void store_batch_log(struct store_batch *b, uint64_t decree, const void *data, size_t len);

/* Number of entries and approximate bytes in the batch. */
size_t store_batch_count(struct store_batch *b);
size_t store_batch_bytes(struct store_batch *b);

/* Writes the batch together with applied decree = decree, fsyncing the WAL
 * when sync, then clears the batch for reuse. On error nothing was applied
 * and the batch is cleared. Errors: -CELLAR_ENOSPC (health: no space),
 * -CELLAR_EIO, -CELLAR_EUNAVAIL (failed partition). */
int store_batch_commit(struct store_batch *b, uint64_t decree, bool sync);

/* Deletes log entries with decree < below (log retention). */
int store_partition_trim_log(struct store_partition *p, uint64_t below);

/* Reads the log entry of decree into out. -CELLAR_ENOTFOUND when trimmed
 * or never written, -CELLAR_EUNAVAIL on a failed partition. */
int store_partition_read_log(struct store_partition *p, uint64_t decree, struct cellar_buf *out);

#endif

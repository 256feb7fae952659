/*
 * test_partition.c - one partition replica on a real RocksDB: batches and
 * commits, point gets, the applied decree and the log, row and partition
 * iterators with every kind of bound, read-your-writes through a batch,
 * TTL compaction with a controlled clock, checkpoints and destroy.
 */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include <rocksdb/c.h>

#include "storage/engine.h"
#include "storage/keycodec.h"
#include "storage/partition.h"
#include "tests/unit/harness.h"

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (strcmp(sa_, sb_) != 0)                                                                 \
            FAIL("%s is \"%s\", expected \"%s\"", #a, sa_, sb_);                                   \
    } while (0)

static uint32_t clock_value;

static uint32_t test_clock(void *arg)
{
    return __atomic_load_n((uint32_t *)arg, __ATOMIC_RELAXED);
}

static struct store_engine *engine_new(void)
{
    struct store_engine_config cfg;
    store_engine_config_defaults(&cfg);
    cfg.block_cache_bytes = 8u << 20;
    cfg.clock = test_clock;
    cfg.clock_arg = &clock_value;
    struct store_engine *e = NULL;
    CHECK_OK(store_engine_new(&cfg, &e));
    return e;
}

static const char *base_dir;

/* base_dir/name; a few rotating buffers so two paths can be live at once */
static const char *path(const char *name)
{
    static char bufs[4][4200];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof(bufs[0]), "%s/%s", base_dir, name);
    return b;
}

static struct store_partition *open_at(struct store_engine *e, const char *name)
{
    struct store_partition *p = NULL;
    CHECK_OK(store_partition_open(e, path(name), &p));
    return p;
}

static void put(struct store_batch *b, const char *hk, const char *sk, const char *val,
                uint32_t expiry, uint64_t version)
{
    store_batch_put(b, hk, strlen(hk), sk, strlen(sk), expiry, version, NULL, 0, val, strlen(val));
}

/* Appends p[0..n) printably: bytes outside 0x21..0x7e (and , / \) as \xNN. */
static void render(char *out, size_t cap, size_t *pos, const char *p, size_t n)
{
    if (n == 0) {
        *pos += (size_t)snprintf(out + *pos, cap - *pos, "<>");
        return;
    }
    for (size_t i = 0; i < n && *pos + 5 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c > 0x20 && c < 0x7f && c != ',' && c != '/' && c != '\\')
            out[(*pos)++] = (char)c;
        else
            *pos += (size_t)snprintf(out + *pos, cap - *pos, "\\x%02x", c);
    }
    out[*pos] = '\0';
}

/* Runs an iterator to its end and frees it: "sk,sk!,..." ('!' = expired),
 * or "hk/sk,..." when with_hk. Checks every item's hashkey against hk when
 * hk is not NULL, and that the end is sticky. */
static const char *drain(struct store_iter *it, const char *hk, size_t hklen, bool with_hk)
{
    static char out[16384];
    size_t pos = 0;
    out[0] = '\0';
    struct store_item item;
    int rc;
    while ((rc = store_iter_next(it, &item)) == 1) {
        if (hk)
            CHECK(item.hklen == hklen && memcmp(item.hk, hk, hklen) == 0);
        if (pos)
            out[pos++] = ',';
        if (with_hk) {
            render(out, sizeof(out), &pos, item.hk, item.hklen);
            out[pos++] = '/';
        }
        render(out, sizeof(out), &pos, item.sk, item.sklen);
        if (item.expired)
            out[pos++] = '!';
        out[pos] = '\0';
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(store_iter_next(it, &item), 0);
    store_iter_free(it);
    return out;
}

static const char *row_scan(struct store_partition *p, const char *hk, const char *start, bool si,
                            const char *stop, bool sti, bool to_end, bool reverse)
{
    struct store_row_range r = {
        .start = start,
        .start_len = strlen(start),
        .start_incl = si,
        .stop = stop,
        .stop_len = stop ? strlen(stop) : 0,
        .stop_incl = sti,
        .stop_end = to_end,
    };
    struct store_iter *it = NULL;
    CHECK_OK(store_iter_row(p, hk, strlen(hk), &r, reverse, 0, &it));
    return drain(it, hk, strlen(hk), false);
}

static const char *whole_row(struct store_partition *p, const void *hk, size_t hklen, bool reverse)
{
    struct store_row_range r = {.start = "", .start_incl = true, .stop_end = true};
    struct store_iter *it = NULL;
    CHECK_OK(store_iter_row(p, hk, hklen, &r, reverse, 0, &it));
    return drain(it, hk, hklen, false);
}

static const char *partition_scan(struct store_partition *p, const struct cellar_buf *lo,
                                  const struct cellar_buf *hi, uint32_t now_s)
{
    struct store_iter *it = NULL;
    CHECK_OK(store_iter_partition(p, lo ? lo->data : NULL, lo ? lo->len : 0, hi ? hi->data : NULL,
                                  hi ? hi->len : 0, now_s, &it));
    return drain(it, NULL, 0, true);
}

static void check_get(struct store_partition *p, const char *hk, const char *sk, uint32_t now_s,
                      const char *expect)
{
    struct store_cell c = {0};
    int rc = store_get(p, hk, strlen(hk), sk, strlen(sk), now_s, &c);
    if (!expect) {
        CHECK_EQ_INT(rc, -CELLAR_ENOTFOUND);
        CHECK(c.pin == NULL);
        return;
    }
    CHECK_OK(rc);
    CHECK_BYTES(c.value, c.value_len, expect);
    store_cell_release(&c);
    CHECK(c.pin == NULL);
}

/* --- Tests --------------------------------------------------------------- */

TEST(open_commit_get_reopen)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    CHECK_EQ_U64(store_partition_applied_decree(p), 0);
    CHECK(store_partition_engine(p) == e);
    check_get(p, "user", "name", 0, NULL);

    struct store_batch *b = store_batch_new(p);
    CHECK(store_batch_partition(b) == p);
    store_batch_put(b, "user", 4, "name", 4, 0, 5, "text/plain", 10, "alice", 5);
    put(b, "user", "city", "paris", 0, 5);
    store_batch_log(b, 5, "mutation-5", 10);
    CHECK_EQ_INT(store_batch_count(b), 3);
    CHECK(store_batch_bytes(b) > 20);
    CHECK_OK(store_batch_commit(b, 5, true));
    CHECK_EQ_INT(store_batch_count(b), 0); /* cleared for reuse */
    CHECK_EQ_U64(store_partition_applied_decree(p), 5);

    struct store_cell c = {0};
    CHECK_OK(store_get(p, "user", 4, "name", 4, 0, &c));
    CHECK_BYTES(c.value, c.value_len, "alice");
    CHECK_EQ_U64(c.hdr.version, 5);
    CHECK_EQ_U64(c.hdr.expiry, 0);
    CHECK_BYTES(c.hdr.ctype, c.hdr.ctype_len, "text/plain");
    store_cell_release(&c);
    check_get(p, "user", "city", 0, "paris");
    check_get(p, "use", "rcity", 0, NULL); /* same bytes, other row */
    CHECK(store_partition_estimate_keys(p) >= 1);

    /* the batch is reusable after a commit */
    put(b, "user", "city", "rome", 0, 6);
    CHECK_OK(store_batch_commit(b, 6, false));
    store_batch_free(b);
    store_partition_close(p);

    p = open_at(e, "p0");
    CHECK_EQ_U64(store_partition_applied_decree(p), 6);
    check_get(p, "user", "name", 0, "alice");
    check_get(p, "user", "city", 0, "rome");
    struct cellar_buf log = {0};
    CHECK_OK(store_partition_read_log(p, 5, &log));
    CHECK_BYTES(log.data, log.len, "mutation-5");
    cellar_buf_fini(&log);
    store_partition_close(p);
    store_engine_free(e);
}

TEST(pinned_get_survives_overwrite)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    struct store_batch *b = store_batch_new(p);
    put(b, "h", "s", "first", 0, 1);
    CHECK_OK(store_batch_commit(b, 1, false));

    struct store_cell c = {0};
    CHECK_OK(store_get(p, "h", 1, "s", 1, 0, &c));
    CHECK(c.pin != NULL);
    /* overwrite, delete and compact under the pinned cell */
    put(b, "h", "s", "second", 0, 2);
    CHECK_OK(store_batch_commit(b, 2, false));
    store_batch_delete(b, "h", 1, "s", 1);
    CHECK_OK(store_batch_commit(b, 3, false));
    CHECK_OK(store_partition_compact(p));
    CHECK_BYTES(c.value, c.value_len, "first");
    CHECK_EQ_U64(c.hdr.version, 1);
    /* the pin may be handed on and freed on its own */
    void *pin = c.pin;
    c.pin = NULL;
    store_pin_free(pin);
    store_pin_free(NULL);
    struct store_cell zero = {0};
    store_cell_release(&zero);
    check_get(p, "h", "s", 0, NULL);

    store_batch_free(b);
    store_partition_close(p);
    store_engine_free(e);
}

TEST(expired_cells_hidden_from_get_flagged_by_iterators)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    struct store_batch *b = store_batch_new(p);
    put(b, "r", "a", "A", 100, 1);
    put(b, "r", "b", "B", 0, 1);
    put(b, "r", "c", "C", 200, 1);
    CHECK_OK(store_batch_commit(b, 1, false));

    check_get(p, "r", "a", 99, "A");
    check_get(p, "r", "a", 100, NULL);
    check_get(p, "r", "a", 4000000000u, NULL);
    check_get(p, "r", "b", 4000000000u, "B");

    struct store_row_range all = {.start = "", .start_incl = true, .stop_end = true};
    struct store_iter *it = NULL;
    CHECK_OK(store_iter_row(p, "r", 1, &all, false, 150, &it));
    CHECK_STR(drain(it, "r", 1, false), "a!,b,c");
    CHECK_OK(store_iter_row(p, "r", 1, &all, true, 200, &it));
    CHECK_STR(drain(it, "r", 1, false), "c!,b,a!");
    CHECK_OK(store_iter_partition(p, NULL, 0, NULL, 0, 99, &it));
    CHECK_STR(drain(it, NULL, 0, false), "a,b,c");

    /* through a batch, too */
    struct store_value v = {0};
    CHECK_EQ_INT(store_batch_get(b, "r", 1, "a", 1, 100, &v), -CELLAR_ENOTFOUND);
    CHECK(v.raw == NULL);
    CHECK_OK(store_batch_get(b, "r", 1, "a", 1, 99, &v));
    CHECK_BYTES(v.value, v.value_len, "A");
    store_value_fini(&v);
    CHECK_OK(store_batch_iter_row(b, "r", 1, &all, 100, &it));
    CHECK_STR(drain(it, "r", 1, false), "a!,b,c");

    store_batch_free(b);
    store_partition_close(p);
    store_engine_free(e);
}

static void write_row(struct store_batch *b, const char *hk, size_t hklen, const char *const *sks,
                      size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_batch_put(b, hk, hklen, sks[i], strlen(sks[i]), 0, 1, NULL, 0, "v", 1);
}

TEST(row_iterator_ranges)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    struct store_batch *b = store_batch_new(p);
    const char *sks[] = {"", "a", "b", "c", "d", "e"};
    write_row(b, "r", 1, sks, 6);
    write_row(b, "q", 1, sks, 6);  /* neighbour below */
    write_row(b, "rr", 2, sks, 6); /* hashkey with "r" as prefix */
    write_row(b, "s", 1, sks, 6);  /* the row right after "r" */
    CHECK_OK(store_batch_commit(b, 1, false));

    /* whole row, both directions */
    CHECK_STR(row_scan(p, "r", "", true, NULL, false, true, false), "<>,a,b,c,d,e");
    CHECK_STR(row_scan(p, "r", "", true, NULL, false, true, true), "e,d,c,b,a,<>");
    /* the four combinations of inclusive ends */
    CHECK_STR(row_scan(p, "r", "b", true, "d", true, false, false), "b,c,d");
    CHECK_STR(row_scan(p, "r", "b", false, "d", false, false, false), "c");
    CHECK_STR(row_scan(p, "r", "b", true, "d", false, false, false), "b,c");
    CHECK_STR(row_scan(p, "r", "b", false, "d", true, false, false), "c,d");
    CHECK_STR(row_scan(p, "r", "b", true, "d", true, false, true), "d,c,b");
    CHECK_STR(row_scan(p, "r", "b", false, "d", false, false, true), "c");
    CHECK_STR(row_scan(p, "r", "b", true, "d", false, false, true), "c,b");
    CHECK_STR(row_scan(p, "r", "b", false, "d", true, false, true), "d,c");
    /* to the end of the row, exclusive start; the empty sortkey excluded */
    CHECK_STR(row_scan(p, "r", "c", false, NULL, false, true, false), "d,e");
    CHECK_STR(row_scan(p, "r", "c", false, "zzz", true, true, true), "e,d");
    CHECK_STR(row_scan(p, "r", "", false, NULL, false, true, false), "a,b,c,d,e");
    CHECK_STR(row_scan(p, "r", "", true, "", true, false, false), "<>");
    /* stops between and beyond the cells */
    CHECK_STR(row_scan(p, "r", "bb", true, "dd", true, false, false), "c,d");
    CHECK_STR(row_scan(p, "r", "a", true, "zz", true, false, false), "a,b,c,d,e");
    CHECK_STR(row_scan(p, "r", "a", true, "zz", true, false, true), "e,d,c,b,a");
    CHECK_STR(row_scan(p, "r", "x", true, "zz", true, false, false), "");
    /* empty ranges */
    CHECK_STR(row_scan(p, "r", "d", true, "b", true, false, false), "");
    CHECK_STR(row_scan(p, "r", "d", true, "b", true, false, true), "");
    CHECK_STR(row_scan(p, "r", "b", true, "b", false, false, false), "");
    CHECK_STR(row_scan(p, "r", "b", false, "b", true, false, false), "");
    CHECK_STR(row_scan(p, "r", "b", false, "b", false, false, true), "");
    CHECK_STR(row_scan(p, "r", "b", true, "b", true, false, false), "b");
    CHECK_STR(row_scan(p, "r", "b", true, "b", true, false, true), "b");
    /* missing row */
    CHECK_STR(row_scan(p, "nope", "", true, NULL, false, true, false), "");
    CHECK_STR(row_scan(p, "nope", "", true, NULL, false, true, true), "");
    /* stop_end ignores stop */
    CHECK_STR(row_scan(p, "s", "a", true, "b", false, true, false), "a,b,c,d,e");

    store_batch_free(b);
    store_partition_close(p);
    store_engine_free(e);
}

TEST(row_iterator_binary_sortkeys)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    struct store_batch *b = store_batch_new(p);
    /* "b", "b\0", "b\0\0", "b\xff" */
    store_batch_put(b, "r", 1, "b", 1, 0, 1, NULL, 0, "v", 1);
    store_batch_put(b, "r", 1, "b\0", 2, 0, 1, NULL, 0, "v", 1);
    store_batch_put(b, "r", 1, "b\0\0", 3, 0, 1, NULL, 0, "v", 1);
    store_batch_put(b, "r", 1, "b\xff", 2, 0, 1, NULL, 0, "v", 1);
    CHECK_OK(store_batch_commit(b, 1, false));

    struct store_iter *it = NULL;
    /* (b, ...: the exclusive start "b" + "\0" still admits "b\0" */
    struct store_row_range r1 = {.start = "b", .start_len = 1, .stop_end = true};
    CHECK_OK(store_iter_row(p, "r", 1, &r1, false, 0, &it));
    CHECK_STR(drain(it, "r", 1, false), "b\\x00,b\\x00\\x00,b\\xff");
    /* ..., b]: the inclusive stop "b" + "\0" excludes "b\0" */
    struct store_row_range r2 = {
        .start = "", .start_incl = true, .stop = "b", .stop_len = 1, .stop_incl = true};
    CHECK_OK(store_iter_row(p, "r", 1, &r2, false, 0, &it));
    CHECK_STR(drain(it, "r", 1, false), "b");
    CHECK_OK(store_iter_row(p, "r", 1, &r2, true, 0, &it));
    CHECK_STR(drain(it, "r", 1, false), "b");
    /* [b\0, b\0] */
    struct store_row_range r3 = {.start = "b\0",
                                 .start_len = 2,
                                 .start_incl = true,
                                 .stop = "b\0",
                                 .stop_len = 2,
                                 .stop_incl = true};
    CHECK_OK(store_iter_row(p, "r", 1, &r3, false, 0, &it));
    CHECK_STR(drain(it, "r", 1, false), "b\\x00");
    CHECK_OK(store_iter_row(p, "r", 1, &r3, true, 0, &it));
    CHECK_STR(drain(it, "r", 1, false), "b\\x00");
    /* NULL range = whole row */
    CHECK_OK(store_iter_row(p, "r", 1, NULL, true, 0, &it));
    CHECK_STR(drain(it, "r", 1, false), "b\\xff,b\\x00\\x00,b\\x00,b");

    store_batch_free(b);
    store_partition_close(p);
    store_engine_free(e);
}

TEST(rows_with_prefix_hashkeys_stay_contiguous)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    struct store_batch *b = store_batch_new(p);

    /* the all-0xff hashkey of maximum length: its row prefix has no
     * successor, so that scan runs without an upper bound */
    char *maxhk = malloc(STORE_HASHKEY_MAX);
    memset(maxhk, 0xff, STORE_HASHKEY_MAX);
    struct {
        const char *hk;
        size_t len;
    } rows[] = {
        {"a", 1},
        {"ab", 2},
        {"a\xff", 2},
        {"a\x00", 2},
        {"\xff", 1},
        {"\xff\xff", 2},
        {"\xff\xff\xff", 3},
        {"\xfe\xff", 2},
        {"b", 1},
        {maxhk, STORE_HASHKEY_MAX - 1},
        {maxhk, STORE_HASHKEY_MAX},
    };
    size_t nrows = sizeof(rows) / sizeof(rows[0]);
    for (size_t i = 0; i < nrows; i++) {
        store_batch_put(b, rows[i].hk, rows[i].len, "", 0, 0, 1, NULL, 0, "v", 1);
        store_batch_put(b, rows[i].hk, rows[i].len, "\x00", 1, 0, 1, NULL, 0, "v", 1);
        store_batch_put(b, rows[i].hk, rows[i].len, "b", 1, 0, 1, NULL, 0, "v", 1);
        store_batch_put(b, rows[i].hk, rows[i].len, "\xff\xff", 2, 0, 1, NULL, 0, "v", 1);
    }
    CHECK_OK(store_batch_commit(b, 1, false));
    /* also check after a flush to SST files, where the prefix bloom and the
     * table iterators take part */
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < nrows; i++) {
            CHECK_STR(whole_row(p, rows[i].hk, rows[i].len, false), "<>,\\x00,b,\\xff\\xff");
            CHECK_STR(whole_row(p, rows[i].hk, rows[i].len, true), "\\xff\\xff,b,\\x00,<>");
            struct store_cell c = {0};
            CHECK_OK(store_get(p, rows[i].hk, rows[i].len, "\xff\xff", 2, 0, &c));
            store_cell_release(&c);
        }
        CHECK_OK(store_partition_compact(p));
    }
    free(maxhk);
    store_batch_free(b);
    store_partition_close(p);
    store_engine_free(e);
}

TEST(partition_iterator_bounds)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    struct store_batch *b = store_batch_new(p);
    const char *sks[] = {"1", "2"};
    write_row(b, "b", 1, sks, 2);
    write_row(b, "d", 1, sks, 2);
    write_row(b, "c", 1, sks, 2);
    write_row(b, "aa", 2, sks, 2);
    write_row(b, "a", 1, sks, 2);
    CHECK_OK(store_batch_commit(b, 1, false));

    /* key order: rows by (length, bytes) */
    CHECK_STR(partition_scan(p, NULL, NULL, 0), "a/1,a/2,b/1,b/2,c/1,c/2,d/1,d/2,aa/1,aa/2");
    struct cellar_buf lo = {0}, hi = {0};
    store_key_row_prefix(&lo, "b", 1);
    store_key_row_prefix(&hi, "d", 1);
    CHECK_STR(partition_scan(p, &lo, &hi, 0), "b/1,b/2,c/1,c/2");
    CHECK_STR(partition_scan(p, &lo, NULL, 0), "b/1,b/2,c/1,c/2,d/1,d/2,aa/1,aa/2");
    CHECK_STR(partition_scan(p, NULL, &hi, 0), "a/1,a/2,b/1,b/2,c/1,c/2");
    /* mid-row bounds */
    cellar_buf_reset(&lo);
    store_key_encode(&lo, "b", 1, "2", 1);
    cellar_buf_reset(&hi);
    store_key_encode(&hi, "c", 1, "2", 1);
    CHECK_STR(partition_scan(p, &lo, &hi, 0), "b/2,c/1");
    /* empty: lower >= upper */
    CHECK_STR(partition_scan(p, &hi, &lo, 0), "");
    CHECK_STR(partition_scan(p, &lo, &lo, 0), "");
    cellar_buf_fini(&lo);
    cellar_buf_fini(&hi);
    store_batch_free(b);
    store_partition_close(p);
    store_engine_free(e);
}

TEST(batch_reads_its_own_writes)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    struct store_batch *b = store_batch_new(p);
    const char *sks[] = {"a", "b", "c"};
    write_row(b, "r", 1, sks, 3);
    CHECK_OK(store_batch_commit(b, 1, false));
    CHECK_OK(store_partition_compact(p)); /* base data in SST files */

    put(b, "r", "bb", "new", 0, 2);
    store_batch_delete(b, "r", 1, "b", 1);
    put(b, "r", "c", "C2", 0, 2);
    put(b, "q", "z", "other row below", 0, 2);
    put(b, "rr", "", "other row above", 0, 2);
    put(b, "s", "", "first key past row r", 0, 2);

    struct store_value v = {0};
    CHECK_EQ_INT(store_batch_get(b, "r", 1, "b", 1, 0, &v), -CELLAR_ENOTFOUND);
    CHECK_OK(store_batch_get(b, "r", 1, "bb", 2, 0, &v));
    CHECK_BYTES(v.value, v.value_len, "new");
    CHECK_EQ_U64(v.hdr.version, 2);
    store_value_fini(&v);
    CHECK_OK(store_batch_get(b, "r", 1, "c", 1, 0, &v));
    CHECK_BYTES(v.value, v.value_len, "C2");
    store_value_fini(&v);
    CHECK_OK(store_batch_get(b, "r", 1, "a", 1, 0, &v)); /* from the DB */
    store_value_fini(&v);
    /* the DB itself is untouched until commit */
    check_get(p, "r", "b", 0, "v");
    check_get(p, "r", "bb", 0, NULL);

    struct store_row_range all = {.start = "", .start_incl = true, .stop_end = true};
    struct store_iter *it = NULL;
    CHECK_OK(store_batch_iter_row(b, "r", 1, &all, 0, &it));
    CHECK_STR(drain(it, "r", 1, false), "a,bb,c");
    struct store_row_range mid = {
        .start = "a", .start_len = 1, .stop = "bb", .stop_len = 2, .stop_incl = true};
    CHECK_OK(store_batch_iter_row(b, "r", 1, &mid, 0, &it));
    CHECK_STR(drain(it, "r", 1, false), "bb");
    struct store_row_range below = {
        .start = "", .start_incl = true, .stop = "bb", .stop_len = 2, .stop_incl = false};
    CHECK_OK(store_batch_iter_row(b, "r", 1, &below, 0, &it));
    CHECK_STR(drain(it, "r", 1, false), "a");
    CHECK_OK(store_batch_iter_row(b, "q", 1, &all, 0, &it));
    CHECK_STR(drain(it, "q", 1, false), "z");
    CHECK_OK(store_batch_iter_row(b, "s", 1, &all, 0, &it));
    CHECK_STR(drain(it, "s", 1, false), "<>");
    /* a plain iterator does not see the batch */
    CHECK_STR(whole_row(p, "r", 1, false), "a,b,c");

    /* savepoint and rollback */
    store_batch_savepoint(b);
    put(b, "r", "d", "D", 0, 3);
    store_batch_delete(b, "r", 1, "a", 1);
    put(b, "r", "bb", "newer", 0, 3);
    CHECK_OK(store_batch_iter_row(b, "r", 1, &all, 0, &it));
    CHECK_STR(drain(it, "r", 1, false), "bb,c,d");
    size_t count = store_batch_count(b);
    CHECK_OK(store_batch_rollback(b));
    CHECK(store_batch_count(b) == count - 3);
    CHECK_OK(store_batch_iter_row(b, "r", 1, &all, 0, &it));
    CHECK_STR(drain(it, "r", 1, false), "a,bb,c");
    CHECK_OK(store_batch_get(b, "r", 1, "bb", 2, 0, &v));
    CHECK_BYTES(v.value, v.value_len, "new");
    store_value_fini(&v);
    CHECK_EQ_INT(store_batch_rollback(b), -CELLAR_EINVAL); /* no mark left */

    CHECK_OK(store_batch_commit(b, 2, false));
    CHECK_STR(whole_row(p, "r", 1, false), "a,bb,c");
    check_get(p, "r", "c", 0, "C2");
    check_get(p, "s", "", 0, "first key past row r");
    /* a savepoint does not survive the commit */
    CHECK_EQ_INT(store_batch_rollback(b), -CELLAR_EINVAL);

    store_batch_free(b);
    store_partition_close(p);
    store_engine_free(e);
}

TEST(commit_records_applied_decree_and_log)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    struct store_batch *b = store_batch_new(p);
    for (uint64_t d = 1; d <= 300; d++) {
        char m[32];
        int n = snprintf(m, sizeof(m), "mutation-%llu", (unsigned long long)d);
        store_batch_log(b, d, m, (size_t)n);
        put(b, "r", "counter", m, 0, d);
        if (d % 3 == 0) { /* group commit of three */
            CHECK_OK(store_batch_commit(b, d, d % 2 == 0));
            CHECK_EQ_U64(store_partition_applied_decree(p), d);
        }
    }
    struct cellar_buf log = {0};
    CHECK_OK(store_partition_read_log(p, 1, &log));
    CHECK_BYTES(log.data, log.len, "mutation-1");
    cellar_buf_reset(&log);
    CHECK_OK(store_partition_read_log(p, 256, &log)); /* BE key: 0x100 sorts after 0xff */
    CHECK_BYTES(log.data, log.len, "mutation-256");
    CHECK_EQ_INT(store_partition_read_log(p, 301, &log), -CELLAR_ENOTFOUND);
    CHECK_EQ_INT(store_partition_read_log(p, 0, &log), -CELLAR_ENOTFOUND);

    CHECK_OK(store_partition_trim_log(p, 0)); /* nothing */
    CHECK_OK(store_partition_trim_log(p, 257));
    for (uint64_t d = 1; d <= 300; d++) {
        cellar_buf_reset(&log);
        int rc = store_partition_read_log(p, d, &log);
        CHECK_EQ_INT(rc, d < 257 ? -CELLAR_ENOTFOUND : 0);
    }
    /* cells and meta are untouched by trimming and by compaction */
    CHECK_OK(store_partition_compact(p));
    check_get(p, "r", "counter", 0, "mutation-300");
    store_partition_close(p);

    p = open_at(e, "p0");
    CHECK_EQ_U64(store_partition_applied_decree(p), 300);
    cellar_buf_reset(&log);
    CHECK_EQ_INT(store_partition_read_log(p, 256, &log), -CELLAR_ENOTFOUND);
    CHECK_OK(store_partition_read_log(p, 257, &log));
    CHECK_BYTES(log.data, log.len, "mutation-257");
    cellar_buf_fini(&log);
    store_batch_free(b);
    store_partition_close(p);
    store_engine_free(e);
}

TEST(ttl_compaction_drops_expired_cells)
{
    base_dir = tmpdir_new();
    clock_value = 1000;
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    struct store_batch *b = store_batch_new(p);
    put(b, "r", "old", "x", 500, 1);
    put(b, "r", "edge", "x", 1000, 1); /* expiry == now: expired */
    put(b, "r", "live", "x", 0, 1);
    put(b, "r", "future", "x", 5000, 1);
    put(b, "r", "shadow", "x", 0, 1);
    /* a log entry whose bytes look like an expired cell: the filter must
     * not touch the log CF */
    struct cellar_buf fake = {0};
    store_value_encode(&fake, 1, 1, NULL, 0, "log", 3);
    store_batch_log(b, 1, fake.data, fake.len);
    CHECK_OK(store_batch_commit(b, 1, false));

    /* before compaction the iterator still returns them, flagged */
    CHECK_STR(partition_scan(p, NULL, NULL, 1000), "r/edge!,r/future,r/live,r/old!,r/shadow");
    CHECK_OK(store_partition_compact(p));
    CHECK_STR(partition_scan(p, NULL, NULL, 0), "r/future,r/live,r/shadow");

    /* a newer, expired version over an older live one in the bottom level:
     * dropping it must not resurrect the old version */
    put(b, "r", "shadow", "x", 900, 2);
    CHECK_OK(store_batch_commit(b, 2, false));
    CHECK_OK(store_partition_compact(p));
    CHECK_STR(partition_scan(p, NULL, NULL, 0), "r/future,r/live");

    /* time passes */
    __atomic_store_n(&clock_value, 6000, __ATOMIC_RELAXED);
    CHECK_OK(store_partition_compact(p));
    CHECK_STR(partition_scan(p, NULL, NULL, 0), "r/live");

    struct cellar_buf log = {0};
    CHECK_OK(store_partition_read_log(p, 1, &log));
    CHECK(log.len == fake.len && memcmp(log.data, fake.data, fake.len) == 0);
    CHECK_EQ_U64(store_partition_applied_decree(p), 2);
    cellar_buf_fini(&log);
    cellar_buf_fini(&fake);
    store_batch_free(b);
    store_partition_close(p);
    p = open_at(e, "p0"); /* the meta CF survived the compactions */
    CHECK_EQ_U64(store_partition_applied_decree(p), 2);
    store_partition_close(p);
    store_engine_free(e);
}

/* Reads the newest OPTIONS-* file RocksDB wrote into dir. */
static char *read_options_file(const char *dir)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    char best[256] = "";
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "OPTIONS-", 8) == 0 && strlen(de->d_name) < sizeof(best) &&
            (strlen(de->d_name) > strlen(best) ||
             (strlen(de->d_name) == strlen(best) && strcmp(de->d_name, best) > 0)))
            snprintf(best, sizeof(best), "%s", de->d_name);
    }
    closedir(d);
    CHECK(best[0] != '\0');
    char file[4500];
    snprintf(file, sizeof(file), "%s/%s", dir, best);
    FILE *f = fopen(file, "r");
    CHECK(f != NULL);
    struct cellar_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        cellar_buf_append(&b, chunk, n);
    fclose(f);
    return cellar_buf_steal(&b, NULL);
}

/* The value of "key=" inside the section that starts with header. */
static const char *section_value(const char *text, const char *header, const char *key, char *out,
                                 size_t cap)
{
    const char *s = strstr(text, header);
    CHECK(s != NULL);
    const char *end = strstr(s + 1, "\n[");
    char pat[128];
    snprintf(pat, sizeof(pat), "\n  %s=", key);
    const char *k = strstr(s, pat);
    if (!k || (end && k > end))
        return NULL;
    k += strlen(pat);
    size_t n = strcspn(k, "\n");
    snprintf(out, cap, "%.*s", (int)n, k);
    return out;
}

TEST(engine_options_reach_the_right_column_families)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    char *text = read_options_file(path("p0"));
    char v[256];
    const char *cells = "[CFOptions \"default\"]";
    const char *log = "[CFOptions \"log\"]";
    const char *meta = "[CFOptions \"meta\"]";
    CHECK(section_value(text, cells, "prefix_extractor", v, sizeof(v)) != NULL);
    CHECK(strstr(v, "cellar.rowprefix") != NULL);
    CHECK(section_value(text, cells, "compaction_filter", v, sizeof(v)) != NULL);
    CHECK(strstr(v, "cellar.ttl") != NULL);
    CHECK(section_value(text, cells, "periodic_compaction_seconds", v, sizeof(v)) != NULL);
    CHECK_STR(v, "604800");
    CHECK(section_value(text, cells, "memtable_prefix_bloom_size_ratio", v, sizeof(v)) != NULL);
    CHECK(strtod(v, NULL) > 0.09 && strtod(v, NULL) < 0.11);
    CHECK(section_value(text, cells, "write_buffer_size", v, sizeof(v)) != NULL);
    CHECK_STR(v, "4194304");
    for (int i = 0; i < 2; i++) {
        const char *sec = i ? meta : log;
        if (section_value(text, sec, "prefix_extractor", v, sizeof(v)))
            CHECK(strstr(v, "cellar") == NULL);
        if (section_value(text, sec, "compaction_filter", v, sizeof(v)))
            CHECK(strstr(v, "cellar") == NULL);
    }
    /* table options shared by all: bloom filter, format 5, cached index */
    const char *tbl = "[TableOptions/BlockBasedTable \"default\"]";
    CHECK(section_value(text, tbl, "format_version", v, sizeof(v)) != NULL);
    CHECK_STR(v, "5");
    CHECK(section_value(text, tbl, "cache_index_and_filter_blocks", v, sizeof(v)) != NULL);
    CHECK_STR(v, "true");
    CHECK(section_value(text, tbl, "filter_policy", v, sizeof(v)) != NULL);
    CHECK(strstr(v, "bloom") != NULL || strstr(v, "Bloom") != NULL);
    CHECK(section_value(text, "[DBOptions]", "max_open_files", v, sizeof(v)) != NULL);
    CHECK_STR(v, "256");
    free(text);

    /* statistics are shared and readable */
    struct store_batch *b = store_batch_new(p);
    put(b, "r", "s", "v", 0, 1);
    CHECK_OK(store_batch_commit(b, 1, true));
    check_get(p, "r", "s", 0, "v");
    char *stats = store_engine_stats(e);
    CHECK(stats != NULL);
    CHECK(strstr(stats, "rocksdb.") != NULL);
    free(stats);
    (void)store_engine_cache_usage(e);
    store_batch_free(b);
    store_partition_close(p);
    store_engine_free(e);
}

TEST(engine_config_checked_and_periodic_off)
{
    base_dir = tmpdir_new();
    struct store_engine_config cfg;
    struct store_engine *e = NULL;
    store_engine_config_defaults(&cfg);
    cfg.background_threads = 0;
    CHECK_EQ_INT(store_engine_new(&cfg, &e), -CELLAR_EINVAL);
    CHECK(e == NULL);
    store_engine_config_defaults(&cfg);
    cfg.max_write_buffers = 0;
    CHECK_EQ_INT(store_engine_new(&cfg, &e), -CELLAR_EINVAL);
    store_engine_config_defaults(&cfg);
    cfg.rate_limit_bytes_per_sec = -1;
    CHECK_EQ_INT(store_engine_new(&cfg, &e), -CELLAR_EINVAL);
    store_engine_free(NULL);

    /* 0 = off really is 0 (RocksDB would pick 30 days for a filtered CF),
     * and a rate limiter is accepted */
    store_engine_config_defaults(&cfg);
    cfg.periodic_compaction_s = 0;
    cfg.rate_limit_bytes_per_sec = 64 << 20;
    CHECK_OK(store_engine_new(&cfg, &e));
    struct store_partition *p = open_at(e, "p0");
    char *text = read_options_file(path("p0"));
    char v[64];
    CHECK(section_value(text, "[CFOptions \"default\"]", "periodic_compaction_seconds", v,
                        sizeof(v)) != NULL);
    CHECK_STR(v, "0");
    free(text);
    store_partition_close(p);
    store_engine_free(e);
}

TEST(checkpoint_opens_as_a_partition)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    struct store_batch *b = store_batch_new(p);
    put(b, "r", "a", "A", 0, 7);
    store_batch_log(b, 7, "m7", 2);
    CHECK_OK(store_batch_commit(b, 7, false)); /* only in the WAL and memtable */
    CHECK_OK(store_partition_checkpoint(p, path("cp")));
    CHECK_EQ_INT(store_partition_checkpoint(p, path("cp")), -CELLAR_EEXIST);
    /* later writes do not reach the checkpoint */
    put(b, "r", "b", "B", 0, 8);
    CHECK_OK(store_batch_commit(b, 8, false));

    struct store_partition *cp = open_at(e, "cp");
    CHECK_EQ_U64(store_partition_applied_decree(cp), 7);
    check_get(cp, "r", "a", 0, "A");
    check_get(cp, "r", "b", 0, NULL);
    struct cellar_buf log = {0};
    CHECK_OK(store_partition_read_log(cp, 7, &log));
    CHECK_BYTES(log.data, log.len, "m7");
    cellar_buf_fini(&log);
    store_partition_close(cp);
    store_batch_free(b);
    store_partition_close(p);
    store_engine_free(e);
}

TEST(destroy_removes_the_directory)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    struct store_batch *b = store_batch_new(p);
    put(b, "r", "a", "A", 0, 1);
    CHECK_OK(store_batch_commit(b, 1, false));
    store_batch_free(b);
    CHECK_OK(store_partition_compact(p));
    /* refused while open, and the data is kept */
    CHECK(store_partition_destroy(e, path("p0")) != 0);
    check_get(p, "r", "a", 0, "A");
    store_partition_close(p);

    /* a stray file RocksDB does not know about goes too */
    FILE *f = fopen(path("p0/stray"), "w");
    CHECK(f != NULL);
    fclose(f);
    struct stat st;
    CHECK(stat(path("p0"), &st) == 0);
    CHECK_OK(store_partition_destroy(e, path("p0")));
    CHECK(stat(path("p0"), &st) != 0 && errno == ENOENT);
    CHECK_OK(store_partition_destroy(e, path("p0"))); /* missing is success */

    /* a destroyed partition reopens empty */
    p = open_at(e, "p0");
    CHECK_EQ_U64(store_partition_applied_decree(p), 0);
    check_get(p, "r", "a", 0, NULL);
    store_partition_close(p);
    store_engine_free(e);
}

/* Writes meta[key] = u64 BE value straight into a closed partition's DB. */
static void poke_meta(const char *dir, const char *key, uint64_t value)
{
    char *err = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    const char *names[] = {"default", "log", "meta"};
    const rocksdb_options_t *cfo[] = {o, o, o};
    rocksdb_column_family_handle_t *h[3] = {0};
    rocksdb_t *db = rocksdb_open_column_families(o, dir, 3, names, cfo, h, &err);
    if (err)
        FAIL("open %s: %s", dir, err);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    uint8_t v[8];
    cellar_store_u64be(v, value);
    if (key)
        rocksdb_put_cf(db, wo, h[2], key, strlen(key), (const char *)v, 8, &err);
    else
        rocksdb_delete_cf(db, wo, h[2], "format", 6, &err);
    CHECK(err == NULL);
    rocksdb_writeoptions_destroy(wo);
    for (int i = 0; i < 3; i++)
        rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
}

TEST(unknown_format_is_corrupt)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = open_at(e, "p0");
    struct store_batch *b = store_batch_new(p);
    put(b, "r", "a", "A", 0, 1);
    CHECK_OK(store_batch_commit(b, 1, false));
    store_batch_free(b);
    store_partition_close(p);

    poke_meta(path("p0"), "format", 2);
    p = NULL;
    CHECK_EQ_INT(store_partition_open(e, path("p0"), &p), -CELLAR_ECORRUPT);
    CHECK(p == NULL);
    /* an applied decree without a format key is not ours either */
    poke_meta(path("p0"), NULL, 0);
    CHECK_EQ_INT(store_partition_open(e, path("p0"), &p), -CELLAR_ECORRUPT);
    poke_meta(path("p0"), "format", 1);
    p = open_at(e, "p0");
    CHECK_EQ_U64(store_partition_applied_decree(p), 1);
    store_partition_close(p);
    store_engine_free(e);
}

TEST(open_fails_cleanly_on_a_bad_directory)
{
    base_dir = tmpdir_new();
    struct store_engine *e = engine_new();
    struct store_partition *p = NULL;
    CHECK_EQ_INT(store_partition_open(e, path("missing/parent/p0"), &p), -CELLAR_EIO);
    CHECK(p == NULL);
    /* the same directory twice: the second open finds the lock taken */
    struct store_partition *p1 = open_at(e, "p0");
    CHECK_EQ_INT(store_partition_open(e, path("p0"), &p), -CELLAR_EIO);
    store_partition_close(p1);
    store_engine_free(e);
}

TEST_MAIN(open_commit_get_reopen, pinned_get_survives_overwrite,
          expired_cells_hidden_from_get_flagged_by_iterators, row_iterator_ranges,
          row_iterator_binary_sortkeys, rows_with_prefix_hashkeys_stay_contiguous,
          partition_iterator_bounds, batch_reads_its_own_writes,
          commit_records_applied_decree_and_log, ttl_compaction_drops_expired_cells,
          engine_options_reach_the_right_column_families, engine_config_checked_and_periodic_off,
          checkpoint_opens_as_a_partition, destroy_removes_the_directory, unknown_format_is_corrupt,
          open_fails_cleanly_on_a_bad_directory)

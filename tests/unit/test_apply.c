/*
 * test_apply.c - store_apply() against a real engine and partition: every
 * op, every check type passing and failing, return_value, all-or-nothing,
 * read-your-writes inside one batch, delete-range counting, version
 * stamping, the log entry of every decree and the applied decree, and
 * store_replay leaving the same cells as store_apply.
 *
 * Time never passes on its own: each mutation carries the fixture's
 * timestamp, and reads use the same "now", so expiry is exercised by moving
 * the fixture's clock forward.
 */
#include "storage/apply.h"
#include "storage/engine.h"
#include "storage/mutation.h"
#include "storage/partition.h"
#include "storage/valcodec.h"
#include "tests/unit/harness.h"

#define T0_MS 1700000000000ull
#define HK "row"
#define HKLEN 3

struct fx {
    char dir[4096];
    struct store_engine *e;
    struct store_partition *p;
    struct store_batch *b;
    uint64_t decree;
    uint64_t now_ms;
};

static uint32_t fixed_clock(void *arg)
{
    return (uint32_t)(T0_MS / 1000);
}

static void fx_open(struct fx *f)
{
    struct store_engine_config cfg;
    memset(f, 0, sizeof(*f));
    int n = snprintf(f->dir, sizeof(f->dir), "%s/p", tmpdir_new());
    CHECK(n > 0 && (size_t)n < sizeof(f->dir));
    store_engine_config_defaults(&cfg);
    cfg.clock = fixed_clock;
    CHECK_OK(store_engine_new(&cfg, &f->e));
    CHECK_OK(store_partition_open(f->e, f->dir, &f->p));
    f->b = store_batch_new(f->p);
    CHECK(f->b != NULL);
    f->now_ms = T0_MS;
}

static void fx_close(struct fx *f)
{
    store_batch_free(f->b);
    store_partition_close(f->p);
    store_engine_free(f->e);
}

static uint32_t now_s(const struct fx *f)
{
    return (uint32_t)(f->now_ms / 1000);
}

/* Stamps m with the next decree and the fixture's time, logs it and
 * applies it into the open batch (no commit), as the writer does. */
static void apply_nc(struct fx *f, struct store_mutation *m, struct store_outcome *o)
{
    m->decree = ++f->decree;
    m->timestamp_ms = f->now_ms;
    store_log(f->b, m);
    CHECK_OK(store_apply(f->b, m, o));
    CHECK_EQ_U64(o->decree, m->decree);
}

static void commit(struct fx *f)
{
    CHECK_OK(store_batch_commit(f->b, f->decree, false));
    CHECK_EQ_U64(store_partition_applied_decree(f->p), f->decree);
}

/* Applies, commits and frees m. */
static void apply(struct fx *f, struct store_mutation *m, struct store_outcome *o)
{
    apply_nc(f, m, o);
    commit(f);
    store_mutation_free(m);
}

static struct store_mutation *mut(void)
{
    return store_mutation_new(HK, HKLEN);
}

/* Puts sk = val with a TTL in its own mutation; returns its decree. */
static uint64_t put_ttl(struct fx *f, const char *sk, const char *val, int64_t ttl)
{
    struct store_mutation *m = mut();
    struct store_outcome o;
    store_mutation_put(m, sk, strlen(sk), val, strlen(val), NULL, 0, ttl);
    apply(f, m, &o);
    CHECK(o.applied);
    store_outcome_fini(&o);
    return o.decree;
}

static uint64_t put(struct fx *f, const char *sk, const char *val)
{
    return put_ttl(f, sk, val, 0);
}

/* 0 and the cell when sk is live now, else -CELLAR_ENOTFOUND. */
static int get(struct fx *f, const char *sk, struct store_cell *c)
{
    memset(c, 0, sizeof(*c));
    return store_get(f->p, HK, HKLEN, sk, strlen(sk), now_s(f), c);
}

static void expect_value(struct fx *f, const char *sk, const char *val)
{
    struct store_cell c;
    int rc = get(f, sk, &c);
    if (rc != 0)
        FAIL("cell \"%s\": get returned %d, expected \"%s\"", sk, rc, val);
    CHECK_BYTES(c.value, c.value_len, val);
    store_cell_release(&c);
}

static void expect_missing(struct fx *f, const char *sk)
{
    struct store_cell c;
    int rc = get(f, sk, &c);
    if (rc != -CELLAR_ENOTFOUND)
        FAIL("cell \"%s\": get returned %d, expected not found", sk, rc);
}

static uint64_t version_of(struct fx *f, const char *sk)
{
    struct store_cell c;
    CHECK_OK(get(f, sk, &c));
    uint64_t v = c.hdr.version;
    store_cell_release(&c);
    return v;
}

/* Number of entries the partition's iterator sees in the row, expired ones
 * included (so an expired cell that was deleted for real is not counted). */
static int row_entries(struct fx *f, int *expired)
{
    struct store_row_range r = {.start = "", .start_incl = true, .stop_end = true};
    struct store_iter *it = NULL;
    struct store_item item;
    int n = 0, rc;
    *expired = 0;
    CHECK_OK(store_iter_row(f->p, HK, HKLEN, &r, false, now_s(f), &it));
    while ((rc = store_iter_next(it, &item)) == 1) {
        n++;
        if (item.expired)
            (*expired)++;
    }
    CHECK_EQ_INT(rc, 0);
    store_iter_free(it);
    return n;
}

/* --- Ops ---------------------------------------------------------------- */

TEST(put_writes_value_version_ctype_and_expiry)
{
    struct fx f;
    fx_open(&f);
    struct store_mutation *m = mut();
    struct store_outcome o;
    store_mutation_put(m, "a", 1, "hello", 5, "text/plain", 10, 60);
    store_mutation_put(m, "b", 1, "", 0, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK_EQ_INT(o.error, 0);
    CHECK(!o.existed);
    CHECK_EQ_U64(o.decree, 1);

    struct store_cell c;
    CHECK_OK(get(&f, "a", &c));
    CHECK_BYTES(c.value, c.value_len, "hello");
    CHECK_EQ_U64(c.hdr.version, 1);
    CHECK_BYTES(c.hdr.ctype, c.hdr.ctype_len, "text/plain");
    CHECK_EQ_U64(c.hdr.expiry, store_expiry_from_ttl(T0_MS, 60));
    CHECK(c.hdr.expiry != 0);
    store_cell_release(&c);

    /* An empty value is a live cell, with no TTL and no content type. */
    CHECK_OK(get(&f, "b", &c));
    CHECK_EQ_INT(c.value_len, 0);
    CHECK_EQ_U64(c.hdr.version, 1);
    CHECK_EQ_U64(c.hdr.expiry, 0);
    CHECK(c.hdr.ctype == NULL);
    store_cell_release(&c);

    /* Replacing: existed, new version, the TTL goes with a TTL-less put. */
    m = mut();
    store_mutation_put(m, "a", 1, "world", 5, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK(o.existed);
    CHECK_OK(get(&f, "a", &c));
    CHECK_BYTES(c.value, c.value_len, "world");
    CHECK_EQ_U64(c.hdr.version, 2);
    CHECK_EQ_U64(c.hdr.expiry, 0);
    CHECK(c.hdr.ctype == NULL);
    store_cell_release(&c);

    /* The TTL runs out as time moves on. */
    put_ttl(&f, "t", "x", 10);
    f.now_ms += 9000;
    expect_value(&f, "t", "x");
    f.now_ms += 2000;
    expect_missing(&f, "t");
    fx_close(&f);
}

TEST(put_on_expired_cell_did_not_exist)
{
    struct fx f;
    fx_open(&f);
    put_ttl(&f, "a", "old", 5);
    f.now_ms += 10000;
    struct store_mutation *m = mut();
    struct store_outcome o;
    store_mutation_put(m, "a", 1, "new", 3, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK(!o.existed);
    expect_value(&f, "a", "new");
    fx_close(&f);
}

TEST(delete_counts_live_cells_only)
{
    struct fx f;
    fx_open(&f);
    put(&f, "a", "1");
    put_ttl(&f, "x", "2", 5);
    f.now_ms += 6000;

    struct store_mutation *m = mut();
    struct store_outcome o;
    store_mutation_delete(m, "a", 1);
    store_mutation_delete(m, "missing", 7);
    store_mutation_delete(m, "x", 1);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK(o.existed);
    CHECK_EQ_U64(o.deleted, 1);
    expect_missing(&f, "a");
    /* The expired cell is gone for real, not only invisible. */
    int expired = 0;
    CHECK_EQ_INT(row_entries(&f, &expired), 0);

    m = mut();
    store_mutation_delete(m, "a", 1);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK(!o.existed);
    CHECK_EQ_U64(o.deleted, 0);
    fx_close(&f);
}

TEST(delete_range_counts_live_and_removes_expired)
{
    struct fx f;
    fx_open(&f);
    put(&f, "a", "1");
    put(&f, "b", "2");
    put_ttl(&f, "c", "3", 5);
    put(&f, "d", "4");
    put_ttl(&f, "e", "5", 5);
    put(&f, "f", "6");
    put(&f, "", "empty-sortkey");
    f.now_ms += 6000;
    int expired = 0;
    CHECK_EQ_INT(row_entries(&f, &expired), 7);
    CHECK_EQ_INT(expired, 2);

    /* [b, e): b, c (expired), d. */
    struct store_mutation *m = mut();
    struct store_outcome o;
    store_mutation_delete_range(m, "b", 1, true, "e", 1, false, false);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK_EQ_U64(o.deleted, 2);
    CHECK(!o.existed);
    expect_value(&f, "a", "1");
    expect_missing(&f, "b");
    expect_missing(&f, "d");
    CHECK_EQ_INT(row_entries(&f, &expired), 4); /* "", a, e (expired), f */
    CHECK_EQ_INT(expired, 1);

    /* (a, end of row]: e (expired) and f. */
    m = mut();
    store_mutation_delete_range(m, "a", 1, false, "", 0, false, true);
    apply(&f, m, &o);
    CHECK_EQ_U64(o.deleted, 1);
    CHECK_EQ_INT(row_entries(&f, &expired), 2);
    CHECK_EQ_INT(expired, 0);
    expect_value(&f, "", "empty-sortkey");
    expect_value(&f, "a", "1");

    /* An empty range deletes nothing. */
    m = mut();
    store_mutation_delete_range(m, "z", 1, true, "a", 1, true, false);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK_EQ_U64(o.deleted, 0);
    CHECK_EQ_INT(row_entries(&f, &expired), 2);

    /* The whole row, including the empty sortkey. */
    m = mut();
    store_mutation_delete_range(m, "", 0, true, "", 0, false, true);
    apply(&f, m, &o);
    CHECK_EQ_U64(o.deleted, 2);
    CHECK_EQ_INT(row_entries(&f, &expired), 0);
    fx_close(&f);
}

TEST(delete_range_sees_the_batch)
{
    struct fx f;
    fx_open(&f);
    put(&f, "a", "1");
    /* Uncommitted puts, then a range delete in the same batch. */
    struct store_mutation *m1 = mut(), *m2 = mut();
    struct store_outcome o1, o2;
    store_mutation_put(m1, "b", 1, "2", 1, NULL, 0, 0);
    store_mutation_put(m1, "c", 1, "3", 1, NULL, 0, 0);
    apply_nc(&f, m1, &o1);
    store_mutation_delete_range(m2, "", 0, true, "", 0, false, true);
    store_mutation_put(m2, "z", 1, "after", 5, NULL, 0, 0);
    apply_nc(&f, m2, &o2);
    CHECK_EQ_U64(o2.deleted, 3);
    commit(&f);
    int expired = 0;
    CHECK_EQ_INT(row_entries(&f, &expired), 1);
    expect_value(&f, "z", "after");
    store_mutation_free(m1);
    store_mutation_free(m2);
    fx_close(&f);
}

TEST(ops_apply_in_order)
{
    struct fx f;
    fx_open(&f);
    struct store_mutation *m = mut();
    struct store_outcome o;
    store_mutation_put(m, "a", 1, "1", 1, NULL, 0, 0);
    store_mutation_delete(m, "a", 1);
    store_mutation_put(m, "b", 1, "1", 1, NULL, 0, 0);
    store_mutation_put(m, "b", 1, "2", 1, NULL, 0, 0);
    store_mutation_incr(m, "b", 1, 5, 0);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK(!o.existed);
    CHECK_EQ_U64(o.deleted, 1); /* "a" was live (in this mutation) when deleted */
    CHECK_EQ_INT(o.incr_value, 7);
    expect_missing(&f, "a");
    expect_value(&f, "b", "7");
    fx_close(&f);
}

TEST(versions_are_the_decree)
{
    struct fx f;
    fx_open(&f);
    CHECK_EQ_U64(put(&f, "a", "1"), 1);
    CHECK_EQ_U64(put(&f, "b", "1"), 2);
    f.decree = 41; /* the writer's numbering, whatever it is */
    struct store_mutation *m = mut();
    struct store_outcome o;
    store_mutation_put(m, "a", 1, "2", 1, NULL, 0, 0);
    store_mutation_incr(m, "n", 1, 1, 0);
    store_mutation_put(m, "c", 1, "3", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK_EQ_U64(o.decree, 42);
    CHECK_EQ_U64(version_of(&f, "a"), 42);
    CHECK_EQ_U64(version_of(&f, "n"), 42);
    CHECK_EQ_U64(version_of(&f, "c"), 42);
    CHECK_EQ_U64(version_of(&f, "b"), 2);

    /* The version is the ETag a check sees. */
    m = mut();
    store_mutation_set_check(m, STORE_CHECK_VALUE_EXIST, "c", 1, NULL, 0, false);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK(o.check_exists);
    CHECK_EQ_U64(o.check_version, 42);
    fx_close(&f);
}

/* --- Checks ------------------------------------------------------------- */

struct check_case {
    enum store_check_type type;
    const char *sk;
    const char *operand;
    bool pass;
    int error;
};

#define OK(t, sk, op)                                                                              \
    {                                                                                              \
        STORE_CHECK_##t, sk, op, true, 0                                                           \
    }
#define NO(t, sk, op)                                                                              \
    {                                                                                              \
        STORE_CHECK_##t, sk, op, false, 0                                                          \
    }
#define ERR(t, sk, op, e)                                                                          \
    {                                                                                              \
        STORE_CHECK_##t, sk, op, false, -CELLAR_##e                                                \
    }

/* Cells: str = "hello", empty = "", int = "10", neg = "-7", bin = "\x80",
 * big = "99999999999999999999" (out of int64 range), exp = expired,
 * missing = never written. */
static const struct check_case check_cases[] = {
    OK(NO_CHECK, "missing", ""),
    OK(NO_CHECK, "str", "anything"),

    OK(VALUE_NOT_EXIST, "missing", ""),
    OK(VALUE_NOT_EXIST, "exp", ""),
    NO(VALUE_NOT_EXIST, "str", ""),
    NO(VALUE_NOT_EXIST, "empty", ""),

    OK(VALUE_NOT_EXIST_OR_EMPTY, "missing", ""),
    OK(VALUE_NOT_EXIST_OR_EMPTY, "exp", ""),
    OK(VALUE_NOT_EXIST_OR_EMPTY, "empty", ""),
    NO(VALUE_NOT_EXIST_OR_EMPTY, "str", ""),

    OK(VALUE_EXIST, "str", ""),
    OK(VALUE_EXIST, "empty", ""),
    NO(VALUE_EXIST, "missing", ""),
    NO(VALUE_EXIST, "exp", ""),

    OK(VALUE_NOT_EMPTY, "str", ""),
    NO(VALUE_NOT_EMPTY, "empty", ""),
    NO(VALUE_NOT_EMPTY, "missing", ""),
    NO(VALUE_NOT_EMPTY, "exp", ""),

    OK(VALUE_MATCH_ANYWHERE, "str", "ell"),
    OK(VALUE_MATCH_ANYWHERE, "str", "hello"),
    OK(VALUE_MATCH_ANYWHERE, "str", "o"),
    OK(VALUE_MATCH_ANYWHERE, "str", ""),
    OK(VALUE_MATCH_ANYWHERE, "empty", ""),
    NO(VALUE_MATCH_ANYWHERE, "str", "elo"),
    NO(VALUE_MATCH_ANYWHERE, "str", "hello!"),
    NO(VALUE_MATCH_ANYWHERE, "empty", "a"),
    NO(VALUE_MATCH_ANYWHERE, "missing", ""),
    NO(VALUE_MATCH_ANYWHERE, "exp", ""),

    OK(VALUE_MATCH_PREFIX, "str", "he"),
    OK(VALUE_MATCH_PREFIX, "str", "hello"),
    OK(VALUE_MATCH_PREFIX, "str", ""),
    OK(VALUE_MATCH_PREFIX, "empty", ""),
    NO(VALUE_MATCH_PREFIX, "str", "el"),
    NO(VALUE_MATCH_PREFIX, "str", "hello!"),
    NO(VALUE_MATCH_PREFIX, "missing", ""),

    OK(VALUE_MATCH_POSTFIX, "str", "llo"),
    OK(VALUE_MATCH_POSTFIX, "str", "hello"),
    OK(VALUE_MATCH_POSTFIX, "str", ""),
    NO(VALUE_MATCH_POSTFIX, "str", "hel"),
    NO(VALUE_MATCH_POSTFIX, "str", "hhello"),
    NO(VALUE_MATCH_POSTFIX, "missing", ""),

    OK(VALUE_BYTES_LESS, "str", "help"),
    OK(VALUE_BYTES_LESS, "str", "hello!"), /* a proper prefix is less */
    OK(VALUE_BYTES_LESS, "empty", "a"),
    OK(VALUE_BYTES_LESS, "bin", "\x81"),
    NO(VALUE_BYTES_LESS, "str", "hello"),
    NO(VALUE_BYTES_LESS, "str", "hell"),
    NO(VALUE_BYTES_LESS, "bin", "\x7f"), /* bytes compare unsigned */
    NO(VALUE_BYTES_LESS, "empty", ""),
    NO(VALUE_BYTES_LESS, "missing", "zzz"),

    OK(VALUE_BYTES_LESS_OR_EQUAL, "str", "hello"),
    OK(VALUE_BYTES_LESS_OR_EQUAL, "str", "help"),
    OK(VALUE_BYTES_LESS_OR_EQUAL, "empty", ""),
    NO(VALUE_BYTES_LESS_OR_EQUAL, "str", "hell"),
    NO(VALUE_BYTES_LESS_OR_EQUAL, "missing", "zzz"),

    OK(VALUE_BYTES_EQUAL, "str", "hello"),
    OK(VALUE_BYTES_EQUAL, "empty", ""),
    NO(VALUE_BYTES_EQUAL, "str", "hellO"),
    NO(VALUE_BYTES_EQUAL, "str", "hell"),
    NO(VALUE_BYTES_EQUAL, "missing", ""),
    NO(VALUE_BYTES_EQUAL, "exp", "x"),

    OK(VALUE_BYTES_GREATER_OR_EQUAL, "str", "hello"),
    OK(VALUE_BYTES_GREATER_OR_EQUAL, "str", "hell"),
    OK(VALUE_BYTES_GREATER_OR_EQUAL, "str", ""),
    NO(VALUE_BYTES_GREATER_OR_EQUAL, "str", "hello!"),
    NO(VALUE_BYTES_GREATER_OR_EQUAL, "missing", ""),

    OK(VALUE_BYTES_GREATER, "str", "hell"),
    OK(VALUE_BYTES_GREATER, "str", "Hello"),
    OK(VALUE_BYTES_GREATER, "bin", "\x7f"),
    NO(VALUE_BYTES_GREATER, "str", "hello"),
    NO(VALUE_BYTES_GREATER, "str", "help"),
    NO(VALUE_BYTES_GREATER, "bin", "\x80"),
    NO(VALUE_BYTES_GREATER, "missing", ""),

    OK(VALUE_INT_LESS, "int", "11"),
    OK(VALUE_INT_LESS, "neg", "-6"),
    NO(VALUE_INT_LESS, "int", "10"),
    NO(VALUE_INT_LESS, "int", "9"), /* numeric, not bytes: "10" < "9" as bytes */
    NO(VALUE_INT_LESS, "missing", "5"),
    NO(VALUE_INT_LESS, "exp", "5"),
    ERR(VALUE_INT_LESS, "str", "5", ENOTINT),
    ERR(VALUE_INT_LESS, "empty", "5", ENOTINT),
    ERR(VALUE_INT_LESS, "big", "5", ENOTINT),
    ERR(VALUE_INT_LESS, "int", "1.5", EINVAL),
    ERR(VALUE_INT_LESS, "int", "", EINVAL),
    ERR(VALUE_INT_LESS, "int", "+5", EINVAL),
    ERR(VALUE_INT_LESS, "missing", "abc", EINVAL),
    ERR(VALUE_INT_LESS, "str", "abc", EINVAL), /* the request is wrong first */

    OK(VALUE_INT_LESS_OR_EQUAL, "int", "10"),
    OK(VALUE_INT_LESS_OR_EQUAL, "int", "100"),
    NO(VALUE_INT_LESS_OR_EQUAL, "int", "9"),
    NO(VALUE_INT_LESS_OR_EQUAL, "missing", "9"),
    ERR(VALUE_INT_LESS_OR_EQUAL, "str", "9", ENOTINT),
    ERR(VALUE_INT_LESS_OR_EQUAL, "int", "9223372036854775808", EINVAL),

    OK(VALUE_INT_EQUAL, "int", "10"),
    OK(VALUE_INT_EQUAL, "int", "010"),
    OK(VALUE_INT_EQUAL, "neg", "-7"),
    NO(VALUE_INT_EQUAL, "int", "11"),
    NO(VALUE_INT_EQUAL, "neg", "7"),
    NO(VALUE_INT_EQUAL, "missing", "0"),
    ERR(VALUE_INT_EQUAL, "str", "0", ENOTINT),
    ERR(VALUE_INT_EQUAL, "int", " 10", EINVAL),

    OK(VALUE_INT_GREATER_OR_EQUAL, "int", "10"),
    OK(VALUE_INT_GREATER_OR_EQUAL, "int", "-9223372036854775808"),
    NO(VALUE_INT_GREATER_OR_EQUAL, "int", "11"),
    NO(VALUE_INT_GREATER_OR_EQUAL, "missing", "0"),
    ERR(VALUE_INT_GREATER_OR_EQUAL, "empty", "0", ENOTINT),
    ERR(VALUE_INT_GREATER_OR_EQUAL, "int", "0x10", EINVAL),

    OK(VALUE_INT_GREATER, "int", "9"),
    OK(VALUE_INT_GREATER, "int", "-9223372036854775808"),
    OK(VALUE_INT_GREATER, "neg", "-8"),
    NO(VALUE_INT_GREATER, "int", "10"),
    NO(VALUE_INT_GREATER, "int", "9223372036854775807"),
    NO(VALUE_INT_GREATER, "missing", "0"),
    ERR(VALUE_INT_GREATER, "bin", "0", ENOTINT),
    ERR(VALUE_INT_GREATER, "int", "ten", EINVAL),
};

/* Writes the cells the check cases read; returns the decree of "str". */
static uint64_t check_cells(struct fx *f)
{
    put_ttl(f, "exp", "gone", 1);
    uint64_t v = put(f, "str", "hello");
    put(f, "empty", "");
    put(f, "int", "10");
    put(f, "neg", "-7");
    put(f, "bin", "\x80");
    put(f, "big", "99999999999999999999");
    f->now_ms += 5000;
    return v;
}

TEST(every_check_type_passes_and_fails)
{
    struct fx f;
    fx_open(&f);
    check_cells(&f);
    bool seen_pass[STORE_CHECK_COUNT] = {false}, seen_fail[STORE_CHECK_COUNT] = {false};
    size_t n = sizeof(check_cases) / sizeof(check_cases[0]);
    for (size_t i = 0; i < n; i++) {
        const struct check_case *cc = &check_cases[i];
        char target[32];
        snprintf(target, sizeof(target), "target%zu", i);
        struct store_mutation *m = mut();
        struct store_outcome o;
        store_mutation_set_check(m, cc->type, cc->sk, strlen(cc->sk), cc->operand,
                                 strlen(cc->operand), false);
        store_mutation_put(m, target, strlen(target), "set", 3, NULL, 0, 0);
        apply(&f, m, &o);
        if (o.applied != cc->pass || o.error != cc->error)
            FAIL("case %zu: %s on \"%s\" with \"%s\": applied %d error %d, expected %d %d", i,
                 store_check_name(cc->type), cc->sk, cc->operand, o.applied, o.error, cc->pass,
                 cc->error);
        bool live = strcmp(cc->sk, "missing") != 0 && strcmp(cc->sk, "exp") != 0;
        if (cc->type != STORE_CHECK_NO_CHECK) {
            CHECK_EQ_INT(o.check_exists, live);
            if (live)
                CHECK(o.check_version != 0);
        }
        CHECK(o.check_value.data == NULL);
        if (cc->pass)
            expect_value(&f, target, "set");
        else
            expect_missing(&f, target);
        if (cc->pass)
            seen_pass[cc->type] = true;
        else
            seen_fail[cc->type] = true;
        store_outcome_fini(&o);
    }
    for (int t = 0; t < STORE_CHECK_VERSION_IN; t++) {
        CHECK(seen_pass[t]);
        if (t != STORE_CHECK_NO_CHECK)
            CHECK(seen_fail[t]);
    }
    /* The cells the checks read are unchanged. */
    expect_value(&f, "str", "hello");
    expect_value(&f, "int", "10");
    fx_close(&f);
}

TEST(version_check)
{
    struct fx f;
    fx_open(&f);
    uint64_t v = put(&f, "a", "1");
    struct store_mutation *m;
    struct store_outcome o;

    /* Passes on the current version, and the write makes a new one. */
    m = mut();
    store_mutation_set_version_check(m, "a", 1, &v, 1, false);
    store_mutation_put(m, "a", 1, "2", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK(o.existed);
    CHECK(o.check_exists);
    CHECK_EQ_U64(o.check_version, v);
    CHECK_EQ_U64(version_of(&f, "a"), o.decree);

    /* The old version no longer matches. */
    m = mut();
    store_mutation_set_version_check(m, "a", 1, &v, 1, false);
    store_mutation_put(m, "a", 1, "3", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(!o.applied);
    CHECK_EQ_INT(o.error, 0);
    CHECK(o.check_exists);
    CHECK_EQ_U64(o.check_version, v + 1);
    expect_value(&f, "a", "2");

    /* A missing cell has no version (If-Match on a missing cell fails),
     * even for version 0. */
    for (uint64_t want = 0; want < 2; want++) {
        m = mut();
        store_mutation_set_version_check(m, "b", 1, &want, 1, false);
        store_mutation_delete(m, "b", 1);
        apply(&f, m, &o);
        CHECK(!o.applied);
        CHECK(!o.check_exists);
    }

    /* An expired cell neither. */
    uint64_t ve = put_ttl(&f, "e", "x", 1);
    f.now_ms += 2000;
    m = mut();
    store_mutation_set_version_check(m, "e", 1, &ve, 1, false);
    store_mutation_put(m, "e", 1, "y", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(!o.applied);
    expect_missing(&f, "e");

    /* A list passes when any of its versions is the current one; an empty
     * list never does. */
    uint64_t va = version_of(&f, "a");
    uint64_t list[] = {1, va + 5, va, 7};
    m = mut();
    store_mutation_set_version_check(m, "a", 1, list, 4, false);
    store_mutation_put(m, "a", 1, "4", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(o.applied);
    expect_value(&f, "a", "4");
    m = mut();
    store_mutation_set_version_check(m, "a", 1, NULL, 0, false);
    store_mutation_put(m, "a", 1, "5", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(!o.applied);
    CHECK(o.check_exists);
    expect_value(&f, "a", "4");

    /* NOT_IN (If-None-Match with tags): passes on a missing cell and on
     * any version but the listed ones. */
    va = version_of(&f, "a");
    uint64_t other = va + 1;
    m = mut();
    store_mutation_set_version_check(m, "a", 1, &va, 1, true);
    store_mutation_put(m, "a", 1, "6", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(!o.applied);
    CHECK_EQ_U64(o.check_version, va);
    m = mut();
    store_mutation_set_version_check(m, "a", 1, &other, 1, true);
    store_mutation_put(m, "a", 1, "7", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(o.applied);
    expect_value(&f, "a", "7");
    m = mut();
    store_mutation_set_version_check(m, "nothere", 7, &va, 1, true);
    store_mutation_put(m, "nothere", 7, "8", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(o.applied);
    expect_value(&f, "nothere", "8");
    fx_close(&f);
}

TEST(return_value)
{
    struct fx f;
    fx_open(&f);
    uint64_t v = put(&f, "c", "current");
    put(&f, "e", "");
    struct store_mutation *m;
    struct store_outcome o;

    /* Returned when the check passes and when it fails. */
    const bool pass[] = {true, false};
    for (int i = 0; i < 2; i++) {
        m = mut();
        store_mutation_set_check(m, STORE_CHECK_VALUE_BYTES_EQUAL, "c", 1,
                                 pass[i] ? "current" : "other", pass[i] ? 7 : 5, true);
        store_mutation_put(m, "x", 1, "1", 1, NULL, 0, 0);
        apply(&f, m, &o);
        CHECK_EQ_INT(o.applied, pass[i]);
        CHECK(o.check_exists);
        CHECK_EQ_U64(o.check_version, v);
        CHECK_BYTES(o.check_value.data, o.check_value.len, "current");
        store_outcome_fini(&o);
        CHECK(o.check_value.data == NULL);
    }

    /* An empty value is returned as empty, not as missing. */
    m = mut();
    store_mutation_set_check(m, STORE_CHECK_VALUE_NOT_EMPTY, "e", 1, NULL, 0, true);
    apply(&f, m, &o);
    CHECK(!o.applied);
    CHECK(o.check_exists);
    CHECK(o.check_value.data != NULL);
    CHECK_EQ_INT(o.check_value.len, 0);
    store_outcome_fini(&o);

    /* Missing: nothing to return. */
    m = mut();
    store_mutation_set_check(m, STORE_CHECK_VALUE_NOT_EXIST, "nope", 4, NULL, 0, true);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK(!o.check_exists);
    CHECK(o.check_value.data == NULL);
    CHECK_EQ_INT(o.check_value.len, 0);
    store_outcome_fini(&o);

    /* Returned even when the int compare is refused. */
    m = mut();
    store_mutation_set_check(m, STORE_CHECK_VALUE_INT_EQUAL, "c", 1, "1", 1, true);
    apply(&f, m, &o);
    CHECK(!o.applied);
    CHECK_EQ_INT(o.error, -CELLAR_ENOTINT);
    CHECK_BYTES(o.check_value.data, o.check_value.len, "current");
    store_outcome_fini(&o);
    fx_close(&f);
}

TEST(pure_check_writes_nothing)
{
    struct fx f;
    fx_open(&f);
    put(&f, "a", "1");
    size_t before = 0;
    struct store_mutation *m = mut();
    struct store_outcome o;
    store_mutation_set_check(m, STORE_CHECK_VALUE_EXIST, "a", 1, NULL, 0, true);
    m->decree = ++f.decree;
    m->timestamp_ms = f.now_ms;
    before = store_batch_count(f.b);
    CHECK_OK(store_apply(f.b, m, &o));
    CHECK(o.applied);
    CHECK(o.check_exists);
    CHECK(!o.existed);
    CHECK_BYTES(o.check_value.data, o.check_value.len, "1");
    /* Nothing at all: not even a log entry, which is store_log's. */
    CHECK_EQ_INT(store_batch_count(f.b), before);
    store_outcome_fini(&o);
    commit(&f);
    store_mutation_free(m);
    CHECK_EQ_U64(version_of(&f, "a"), 1);
    fx_close(&f);
}

TEST(check_on_the_written_cell_gives_existed)
{
    struct fx f;
    fx_open(&f);
    put(&f, "a", "1");
    struct store_mutation *m;
    struct store_outcome o;

    m = mut();
    store_mutation_set_check(m, STORE_CHECK_VALUE_EXIST, "a", 1, NULL, 0, false);
    store_mutation_put(m, "a", 1, "2", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK(o.existed);

    m = mut();
    store_mutation_set_check(m, STORE_CHECK_VALUE_NOT_EXIST, "b", 1, NULL, 0, false);
    store_mutation_put(m, "b", 1, "2", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK(!o.existed);

    /* Check on another cell: existed still describes the written one. */
    m = mut();
    store_mutation_set_check(m, STORE_CHECK_VALUE_NOT_EXIST, "zz", 2, NULL, 0, false);
    store_mutation_put(m, "a", 1, "3", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK(o.existed);

    m = mut();
    store_mutation_set_check(m, STORE_CHECK_VALUE_EXIST, "a", 1, NULL, 0, false);
    store_mutation_put(m, "new", 3, "3", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(o.applied);
    CHECK(!o.existed);
    fx_close(&f);
}

/* --- Atomicity and the batch -------------------------------------------- */

TEST(all_or_nothing)
{
    struct fx f;
    fx_open(&f);
    put(&f, "a", "old");
    put(&f, "b", "keep");
    put(&f, "r1", "x");
    put(&f, "r2", "y");
    put(&f, "s", "not a number");

    /* Mutation 1 in the batch succeeds; mutation 2 fails on its last op;
     * mutation 3 succeeds. Only mutation 2 leaves no trace. */
    struct store_mutation *m1 = mut(), *m2 = mut(), *m3 = mut();
    struct store_outcome o1, o2, o3;
    store_mutation_put(m1, "m1", 2, "1", 1, NULL, 0, 0);
    apply_nc(&f, m1, &o1);
    CHECK(o1.applied);

    store_mutation_put(m2, "a", 1, "new", 3, NULL, 0, 0);
    store_mutation_delete(m2, "b", 1);
    store_mutation_delete_range(m2, "r", 1, true, "s", 1, false, false);
    store_mutation_put(m2, "m1", 2, "2", 1, NULL, 0, 0);
    store_mutation_incr(m2, "s", 1, 1, 0);
    apply_nc(&f, m2, &o2);
    CHECK(!o2.applied);
    CHECK_EQ_INT(o2.error, -CELLAR_ENOTINT);
    CHECK_EQ_U64(o2.deleted, 0);
    CHECK(o2.existed);

    store_mutation_put(m3, "m3", 2, "3", 1, NULL, 0, 0);
    store_mutation_set_check(m3, STORE_CHECK_VALUE_BYTES_EQUAL, "m1", 2, "1", 1, false);
    apply_nc(&f, m3, &o3);
    CHECK(o3.applied);
    commit(&f);

    expect_value(&f, "a", "old");
    expect_value(&f, "b", "keep");
    expect_value(&f, "r1", "x");
    expect_value(&f, "r2", "y");
    expect_value(&f, "s", "not a number");
    expect_value(&f, "m1", "1");
    expect_value(&f, "m3", "3");
    CHECK_EQ_U64(version_of(&f, "a"), 1);
    store_mutation_free(m1);
    store_mutation_free(m2);
    store_mutation_free(m3);
    fx_close(&f);
}

TEST(failed_check_writes_nothing)
{
    struct fx f;
    fx_open(&f);
    put(&f, "a", "1");
    struct store_mutation *m = mut();
    struct store_outcome o;
    store_mutation_set_check(m, STORE_CHECK_VALUE_NOT_EXIST, "a", 1, NULL, 0, false);
    store_mutation_put(m, "a", 1, "2", 1, NULL, 0, 0);
    store_mutation_delete(m, "a", 1);
    store_mutation_incr(m, "n", 1, 1, 0);
    m->decree = ++f.decree;
    m->timestamp_ms = f.now_ms;
    size_t before = store_batch_count(f.b);
    CHECK_OK(store_apply(f.b, m, &o));
    CHECK(!o.applied);
    CHECK_EQ_INT(o.error, 0);
    CHECK(!o.existed);
    CHECK_EQ_U64(o.deleted, 0);
    CHECK_EQ_INT(o.incr_value, 0);
    /* Nothing at all: not even a log entry, which is store_log's. */
    CHECK_EQ_INT(store_batch_count(f.b), before);
    commit(&f);
    store_mutation_free(m);
    expect_value(&f, "a", "1");
    expect_missing(&f, "n");
    fx_close(&f);
}

TEST(mutations_in_one_batch_see_each_other)
{
    struct fx f;
    fx_open(&f);
    struct store_mutation *m1 = mut(), *m2 = mut(), *m3 = mut(), *m4 = mut();
    struct store_outcome o1, o2, o3, o4;

    store_mutation_put(m1, "k", 1, "v1", 2, NULL, 0, 0);
    apply_nc(&f, m1, &o1);
    CHECK(o1.applied);

    store_mutation_set_check(m2, STORE_CHECK_VALUE_EXIST, "k", 1, NULL, 0, true);
    store_mutation_put(m2, "k2", 2, "v2", 2, NULL, 0, 0);
    store_mutation_incr(m2, "n", 1, 5, 0);
    apply_nc(&f, m2, &o2);
    CHECK(o2.applied);
    CHECK(o2.check_exists);
    CHECK_EQ_U64(o2.check_version, o1.decree);
    CHECK_BYTES(o2.check_value.data, o2.check_value.len, "v1");

    store_mutation_set_check(m3, STORE_CHECK_VALUE_INT_EQUAL, "n", 1, "5", 1, false);
    store_mutation_incr(m3, "n", 1, 5, 0);
    store_mutation_delete(m3, "k", 1);
    apply_nc(&f, m3, &o3);
    CHECK(o3.applied);
    CHECK_EQ_INT(o3.incr_value, 10);
    CHECK_EQ_U64(o3.deleted, 1);

    store_mutation_set_check(m4, STORE_CHECK_VALUE_NOT_EXIST, "k", 1, NULL, 0, false);
    store_mutation_put(m4, "k", 1, "v4", 2, NULL, 0, 0);
    apply_nc(&f, m4, &o4);
    CHECK(o4.applied);
    CHECK(!o4.existed);

    /* Nothing is visible outside the batch before the commit. */
    expect_missing(&f, "k2");
    commit(&f);
    expect_value(&f, "k", "v4");
    expect_value(&f, "k2", "v2");
    expect_value(&f, "n", "10");
    CHECK_EQ_U64(version_of(&f, "n"), o3.decree);
    CHECK_EQ_U64(version_of(&f, "k"), o4.decree);
    store_outcome_fini(&o2);
    store_mutation_free(m1);
    store_mutation_free(m2);
    store_mutation_free(m3);
    store_mutation_free(m4);
    fx_close(&f);
}

/* --- Log and applied decree --------------------------------------------- */

static void expect_log(struct fx *f, uint64_t decree, const struct store_mutation *want)
{
    struct cellar_buf got = {0}, enc = {0};
    struct store_mutation *back = NULL;
    CHECK_OK(store_partition_read_log(f->p, decree, &got));
    store_mutation_encode(want, &enc);
    CHECK_EQ_INT(got.len, enc.len);
    CHECK(memcmp(got.data, enc.data, enc.len) == 0);
    CHECK_OK(store_mutation_decode(got.data, got.len, &back));
    CHECK_EQ_U64(back->decree, decree);
    CHECK_EQ_U64(back->timestamp_ms, want->timestamp_ms);
    store_mutation_free(back);
    cellar_buf_fini(&got);
    cellar_buf_fini(&enc);
}

TEST(log_entry_for_every_decree)
{
    struct fx f;
    fx_open(&f);
    put(&f, "s", "text");
    struct store_mutation *ok = mut(), *refused = mut(), *failed = mut(), *pure = mut();
    struct store_outcome o;

    store_mutation_put(ok, "a", 1, "1", 1, "t/x", 3, 30);
    apply_nc(&f, ok, &o);
    CHECK(o.applied);

    store_mutation_set_check(refused, STORE_CHECK_VALUE_NOT_EXIST, "s", 1, NULL, 0, true);
    store_mutation_put(refused, "b", 1, "2", 1, NULL, 0, 0);
    apply_nc(&f, refused, &o);
    CHECK(!o.applied);
    store_outcome_fini(&o);

    store_mutation_put(failed, "c", 1, "3", 1, NULL, 0, 0);
    store_mutation_incr(failed, "s", 1, 1, 0);
    apply_nc(&f, failed, &o);
    CHECK(!o.applied);
    CHECK_EQ_INT(o.error, -CELLAR_ENOTINT);

    store_mutation_set_check(pure, STORE_CHECK_VALUE_INT_LESS, "s", 1, "x", 1, false);
    apply_nc(&f, pure, &o);
    CHECK(!o.applied);
    CHECK_EQ_INT(o.error, -CELLAR_EINVAL);
    commit(&f);

    CHECK_EQ_U64(store_partition_applied_decree(f.p), 5);
    expect_log(&f, ok->decree, ok);
    expect_log(&f, refused->decree, refused);
    expect_log(&f, failed->decree, failed);
    expect_log(&f, pure->decree, pure);
    for (uint64_t d = 1; d <= 5; d++) {
        struct cellar_buf got = {0};
        CHECK_OK(store_partition_read_log(f.p, d, &got));
        cellar_buf_fini(&got);
    }
    struct cellar_buf none = {0};
    CHECK_EQ_INT(store_partition_read_log(f.p, 6, &none), -CELLAR_ENOTFOUND);
    cellar_buf_fini(&none);
    expect_missing(&f, "b");
    expect_missing(&f, "c");
    store_mutation_free(ok);
    store_mutation_free(refused);
    store_mutation_free(failed);
    store_mutation_free(pure);
    fx_close(&f);
}

TEST(applied_decree_survives_reopen)
{
    struct fx f;
    fx_open(&f);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 0);
    put(&f, "a", "1");
    put(&f, "b", "2");
    struct store_mutation *m = mut();
    struct store_outcome o;
    store_mutation_set_check(m, STORE_CHECK_VALUE_NOT_EXIST, "a", 1, NULL, 0, false);
    store_mutation_put(m, "a", 1, "3", 1, NULL, 0, 0);
    apply(&f, m, &o);
    CHECK(!o.applied);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 3);

    store_batch_free(f.b);
    store_partition_close(f.p);
    CHECK_OK(store_partition_open(f.e, f.dir, &f.p));
    f.b = store_batch_new(f.p);
    CHECK_EQ_U64(store_partition_applied_decree(f.p), 3);
    expect_value(&f, "a", "1");
    expect_value(&f, "b", "2");
    CHECK_EQ_U64(version_of(&f, "b"), 2);
    fx_close(&f);
}

TEST(other_rows_are_untouched)
{
    struct fx f;
    fx_open(&f);
    struct store_mutation *m = store_mutation_new("other", 5);
    struct store_outcome o;
    store_mutation_put(m, "a", 1, "x", 1, NULL, 0, 0);
    apply(&f, m, &o);
    put(&f, "a", "1");
    /* Delete the whole of HK's row; "other" keeps its cell. */
    m = mut();
    store_mutation_delete_range(m, "", 0, true, "", 0, false, true);
    apply(&f, m, &o);
    CHECK_EQ_U64(o.deleted, 1);
    struct store_cell c;
    memset(&c, 0, sizeof(c));
    CHECK_OK(store_get(f.p, "other", 5, "a", 1, now_s(&f), &c));
    CHECK_BYTES(c.value, c.value_len, "x");
    store_cell_release(&c);
    fx_close(&f);
}

/* --- Replay ------------------------------------------------------------- */

/* The mutations of replay_matches_apply, built afresh for each side: one
 * of every kind whose replay skips a read (PUT over a live cell and over a
 * missing one, DELETE of a live and of a missing cell) and of every kind
 * that cannot (INCR, a checked PUT passing and failing, DELETE_RANGE, a
 * refused INCR). */
static struct store_mutation *replay_case(int i)
{
    struct store_mutation *m = mut();
    switch (i) {
    case 0:
        store_mutation_put(m, "a", 1, "1", 1, NULL, 0, 0);
        store_mutation_put(m, "b", 1, "2", 1, "text/plain", 10, 0);
        store_mutation_put(m, "n", 1, "5", 1, NULL, 0, 0);
        store_mutation_put(m, "r1", 2, "x", 1, NULL, 0, 0);
        store_mutation_put(m, "r2", 2, "y", 1, NULL, 0, 0);
        break;
    case 1:
        store_mutation_put(m, "a", 1, "again", 5, NULL, 0, 60);
        break;
    case 2:
        store_mutation_delete(m, "b", 1);
        break;
    case 3:
        store_mutation_delete(m, "never", 5);
        break;
    case 4:
        store_mutation_incr(m, "n", 1, 7, 0);
        break;
    case 5:
        store_mutation_set_check(m, STORE_CHECK_VALUE_NOT_EXIST, "c", 1, NULL, 0, false);
        store_mutation_put(m, "c", 1, "created", 7, NULL, 0, 0);
        break;
    case 6:
        store_mutation_set_check(m, STORE_CHECK_VALUE_NOT_EXIST, "a", 1, NULL, 0, false);
        store_mutation_put(m, "a", 1, "refused", 7, NULL, 0, 0);
        break;
    case 7:
        store_mutation_delete_range(m, "r", 1, true, "s", 1, false, false);
        break;
    case 8:
        store_mutation_incr(m, "a", 1, 1, 0); /* "again" is no integer: refused */
        store_mutation_put(m, "z", 1, "not written", 11, NULL, 0, 0);
        break;
    default:
        store_mutation_free(m);
        return NULL;
    }
    return m;
}

TEST(replay_matches_apply)
{
    struct fx a, r;
    fx_open(&a);
    fx_open(&r);
    struct store_mutation *m;
    for (int i = 0; (m = replay_case(i)) != NULL; i++) {
        struct store_outcome o;
        apply(&a, m, &o);
        store_outcome_fini(&o);
        m = replay_case(i);
        m->decree = ++r.decree;
        m->timestamp_ms = r.now_ms;
        store_log(r.b, m);
        CHECK_OK(store_replay(r.b, m));
        commit(&r);
        store_mutation_free(m);
    }
    CHECK_EQ_U64(store_partition_applied_decree(r.p), store_partition_applied_decree(a.p));
    static const char *const keys[] = {"a", "b", "c", "n", "never", "r1", "r2", "z"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        struct store_cell ca, cr;
        int rca = get(&a, keys[i], &ca), rcr = get(&r, keys[i], &cr);
        CHECK_EQ_INT(rcr, rca);
        if (rca != 0)
            continue;
        CHECK_EQ_U64(cr.value_len, ca.value_len);
        CHECK(memcmp(cr.value, ca.value, ca.value_len) == 0);
        CHECK_EQ_U64(cr.hdr.version, ca.hdr.version);
        CHECK_EQ_U64(cr.hdr.expiry, ca.hdr.expiry);
        CHECK_EQ_U64(cr.hdr.ctype_len, ca.hdr.ctype_len);
        store_cell_release(&ca);
        store_cell_release(&cr);
    }
    expect_value(&r, "a", "again");
    expect_value(&r, "n", "12");
    expect_missing(&r, "b");
    expect_missing(&r, "r1");
    expect_missing(&r, "z");
    int expired;
    CHECK_EQ_INT(row_entries(&r, &expired), row_entries(&a, &expired));
    fx_close(&a);
    fx_close(&r);
}

TEST_MAIN(put_writes_value_version_ctype_and_expiry, put_on_expired_cell_did_not_exist,
          delete_counts_live_cells_only, delete_range_counts_live_and_removes_expired,
          delete_range_sees_the_batch, ops_apply_in_order, versions_are_the_decree,
          every_check_type_passes_and_fails, version_check, return_value, pure_check_writes_nothing,
          check_on_the_written_cell_gives_existed, all_or_nothing, failed_check_writes_nothing,
          mutations_in_one_batch_see_each_other, log_entry_for_every_decree,
          applied_decree_survives_reopen, other_rows_are_untouched, replay_matches_apply)

/*
 * test_incr.c - the incr op through store_apply() on a real partition:
 * missing, expired and empty cells count as 0; strict decimal int64 only;
 * overflow in both directions; the int64 edges; the TTL rules (0 keeps,
 * >0 sets, -1 removes, other negatives refused); accumulation in one batch.
 * Every refused incr must leave the stored value, version and expiry as
 * they were.
 */
#include "storage/apply.h"
#include "storage/engine.h"
#include "storage/mutation.h"
#include "storage/partition.h"
#include "storage/valcodec.h"
#include "tests/unit/harness.h"

#define T0_MS 1700000000000ull
#define HK "counter-row"
#define HKLEN 11

struct fx {
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
    char dir[4096];
    memset(f, 0, sizeof(*f));
    int n = snprintf(dir, sizeof(dir), "%s/p", tmpdir_new());
    CHECK(n > 0 && (size_t)n < sizeof(dir));
    store_engine_config_defaults(&cfg);
    cfg.clock = fixed_clock;
    CHECK_OK(store_engine_new(&cfg, &f->e));
    CHECK_OK(store_partition_open(f->e, dir, &f->p));
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

static void apply_nc(struct fx *f, struct store_mutation *m, struct store_outcome *o)
{
    m->decree = ++f->decree;
    m->timestamp_ms = f->now_ms;
    store_log(f->b, m);
    CHECK_OK(store_apply(f->b, m, o));
}

static void commit(struct fx *f)
{
    CHECK_OK(store_batch_commit(f->b, f->decree, false));
}

/* One incr of sk in its own committed mutation. */
static struct store_outcome incr(struct fx *f, const char *sk, int64_t by, int64_t ttl)
{
    struct store_mutation *m = store_mutation_new(HK, HKLEN);
    struct store_outcome o;
    store_mutation_incr(m, sk, strlen(sk), by, ttl);
    apply_nc(f, m, &o);
    commit(f);
    store_mutation_free(m);
    return o;
}

static void put_ttl(struct fx *f, const char *sk, const char *val, int64_t ttl)
{
    struct store_mutation *m = store_mutation_new(HK, HKLEN);
    struct store_outcome o;
    store_mutation_put(m, sk, strlen(sk), val, strlen(val), "text/plain", 10, ttl);
    apply_nc(f, m, &o);
    CHECK(o.applied);
    commit(f);
    store_mutation_free(m);
}

/* The live cell sk, which must exist; release with store_cell_release. */
static struct store_cell cell(struct fx *f, const char *sk)
{
    struct store_cell c;
    memset(&c, 0, sizeof(c));
    int rc = store_get(f->p, HK, HKLEN, sk, strlen(sk), now_s(f), &c);
    if (rc != 0)
        FAIL("cell \"%s\": get returned %d", sk, rc);
    return c;
}

static void expect_value(struct fx *f, const char *sk, const char *val)
{
    struct store_cell c = cell(f, sk);
    CHECK_BYTES(c.value, c.value_len, val);
    store_cell_release(&c);
}

static uint32_t expiry_of(struct fx *f, const char *sk)
{
    struct store_cell c = cell(f, sk);
    uint32_t e = c.hdr.expiry;
    store_cell_release(&c);
    return e;
}

TEST(missing_cell_starts_at_zero)
{
    struct fx f;
    fx_open(&f);
    struct store_outcome o = incr(&f, "n", 7, 0);
    CHECK(o.applied);
    CHECK_EQ_INT(o.error, 0);
    CHECK(!o.existed);
    CHECK_EQ_INT(o.incr_value, 7);
    struct store_cell c = cell(&f, "n");
    CHECK_BYTES(c.value, c.value_len, "7");
    CHECK_EQ_U64(c.hdr.version, o.decree);
    CHECK_EQ_U64(c.hdr.expiry, 0);
    CHECK(c.hdr.ctype == NULL);
    store_cell_release(&c);

    o = incr(&f, "n", 1, 0);
    CHECK(o.existed);
    CHECK_EQ_INT(o.incr_value, 8);
    expect_value(&f, "n", "8");

    o = incr(&f, "neg", -3, 0);
    CHECK_EQ_INT(o.incr_value, -3);
    expect_value(&f, "neg", "-3");
    o = incr(&f, "neg", -10, 0);
    CHECK_EQ_INT(o.incr_value, -13);
    expect_value(&f, "neg", "-13");
    o = incr(&f, "neg", 13, 0);
    CHECK_EQ_INT(o.incr_value, 0);
    expect_value(&f, "neg", "0");

    o = incr(&f, "zero", 0, 0);
    CHECK(o.applied);
    CHECK_EQ_INT(o.incr_value, 0);
    expect_value(&f, "zero", "0");
    fx_close(&f);
}

TEST(expired_cell_counts_as_zero_without_ttl)
{
    struct fx f;
    fx_open(&f);
    put_ttl(&f, "n", "100", 5);
    f.now_ms += 6000;
    struct store_outcome o = incr(&f, "n", 2, 0);
    CHECK(o.applied);
    CHECK(!o.existed);
    CHECK_EQ_INT(o.incr_value, 2);
    expect_value(&f, "n", "2");
    CHECK_EQ_U64(expiry_of(&f, "n"), 0);
    /* Even much later it is still there. */
    f.now_ms += 1000ull * 86400 * 365;
    expect_value(&f, "n", "2");

    /* An expired non-integer is just as missing. */
    put_ttl(&f, "s", "abc", 1);
    f.now_ms += 2000;
    o = incr(&f, "s", 1, 0);
    CHECK(o.applied);
    expect_value(&f, "s", "1");
    fx_close(&f);
}

TEST(empty_value_counts_as_zero)
{
    struct fx f;
    fx_open(&f);
    put_ttl(&f, "n", "", 0);
    struct store_outcome o = incr(&f, "n", -4, 0);
    CHECK(o.applied);
    CHECK(o.existed);
    CHECK_EQ_INT(o.incr_value, -4);
    struct store_cell c = cell(&f, "n");
    CHECK_BYTES(c.value, c.value_len, "-4");
    CHECK(c.hdr.ctype == NULL); /* an incremented cell has no content type */
    store_cell_release(&c);
    fx_close(&f);
}

TEST(non_integer_is_refused_unchanged)
{
    struct fx f;
    fx_open(&f);
    const char *bad[] = {"abc",
                         "1.5",
                         " 1",
                         "1 ",
                         "0x10",
                         "+1",
                         "-",
                         "1e3",
                         "--1",
                         "12a",
                         "9223372036854775808",
                         "-9223372036854775809"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *v = bad[i];
        char sk[16];
        snprintf(sk, sizeof(sk), "bad%zu", i);
        put_ttl(&f, sk, v, 1000);
        struct store_cell before = cell(&f, sk);
        uint64_t ver = before.hdr.version;
        uint32_t exp = before.hdr.expiry;
        store_cell_release(&before);

        struct store_outcome o = incr(&f, sk, 1, 0);
        if (o.applied || o.error != -CELLAR_ENOTINT)
            FAIL("\"%s\": applied %d error %d", v, o.applied, o.error);
        CHECK(o.existed);
        CHECK_EQ_INT(o.incr_value, 0);
        struct store_cell after = cell(&f, sk);
        CHECK_BYTES(after.value, after.value_len, v);
        CHECK_EQ_U64(after.hdr.version, ver);
        CHECK_EQ_U64(after.hdr.expiry, exp);
        CHECK_BYTES(after.hdr.ctype, after.hdr.ctype_len, "text/plain");
        store_cell_release(&after);
        /* Nor do TTL changes slip through. */
        o = incr(&f, sk, 1, -1);
        CHECK_EQ_INT(o.error, -CELLAR_ENOTINT);
        CHECK_EQ_U64(expiry_of(&f, sk), exp);
    }
    /* A NUL inside the value: "1\0" is not "1". */
    struct store_mutation *m = store_mutation_new(HK, HKLEN);
    struct store_outcome o;
    store_mutation_put(m, "nul", 3, "1\0", 2, NULL, 0, 0);
    apply_nc(&f, m, &o);
    commit(&f);
    store_mutation_free(m);
    o = incr(&f, "nul", 1, 0);
    CHECK_EQ_INT(o.error, -CELLAR_ENOTINT);
    struct store_cell c = cell(&f, "nul");
    CHECK_EQ_INT(c.value_len, 2);
    CHECK(memcmp(c.value, "1\0", 2) == 0);
    store_cell_release(&c);
    fx_close(&f);
}

TEST(overflow_is_refused_unchanged)
{
    struct fx f;
    fx_open(&f);
    put_ttl(&f, "max", "9223372036854775807", 0);
    put_ttl(&f, "min", "-9223372036854775808", 0);
    put_ttl(&f, "near", "9223372036854775800", 0);

    struct store_outcome o = incr(&f, "max", 1, 0);
    CHECK(!o.applied);
    CHECK_EQ_INT(o.error, -CELLAR_EOVERFLOW);
    CHECK(o.incr_value == INT64_MAX);
    expect_value(&f, "max", "9223372036854775807");

    o = incr(&f, "min", -1, 0);
    CHECK(!o.applied);
    CHECK_EQ_INT(o.error, -CELLAR_EOVERFLOW);
    CHECK(o.incr_value == INT64_MIN);
    expect_value(&f, "min", "-9223372036854775808");

    o = incr(&f, "near", 8, 0);
    CHECK_EQ_INT(o.error, -CELLAR_EOVERFLOW);
    CHECK(o.incr_value == INT64_MAX - 7);
    expect_value(&f, "near", "9223372036854775800");

    o = incr(&f, "min", INT64_MIN, 0);
    CHECK_EQ_INT(o.error, -CELLAR_EOVERFLOW);
    o = incr(&f, "max", INT64_MAX, 0);
    CHECK_EQ_INT(o.error, -CELLAR_EOVERFLOW);
    expect_value(&f, "max", "9223372036854775807");
    expect_value(&f, "min", "-9223372036854775808");
    fx_close(&f);
}

TEST(int64_edges)
{
    struct fx f;
    fx_open(&f);
    struct store_outcome o = incr(&f, "a", INT64_MAX, 0);
    CHECK(o.applied);
    CHECK(o.incr_value == INT64_MAX);
    expect_value(&f, "a", "9223372036854775807");
    o = incr(&f, "a", 0, 0);
    CHECK(o.applied);
    o = incr(&f, "a", INT64_MIN, 0);
    CHECK(o.applied);
    CHECK_EQ_INT(o.incr_value, -1);
    expect_value(&f, "a", "-1");

    o = incr(&f, "b", INT64_MIN, 0);
    CHECK(o.applied);
    CHECK(o.incr_value == INT64_MIN);
    expect_value(&f, "b", "-9223372036854775808");
    o = incr(&f, "b", INT64_MAX, 0);
    CHECK_EQ_INT(o.incr_value, -1);

    put_ttl(&f, "c", "-9223372036854775807", 0);
    o = incr(&f, "c", -1, 0);
    CHECK(o.applied);
    CHECK(o.incr_value == INT64_MIN);
    expect_value(&f, "c", "-9223372036854775808");

    /* Leading zeros and "-0" are decimal integers. */
    put_ttl(&f, "d", "007", 0);
    o = incr(&f, "d", 1, 0);
    CHECK_EQ_INT(o.incr_value, 8);
    expect_value(&f, "d", "8");
    put_ttl(&f, "e", "-0", 0);
    o = incr(&f, "e", -1, 0);
    CHECK_EQ_INT(o.incr_value, -1);
    fx_close(&f);
}

TEST(ttl_zero_keeps_expiry_exactly)
{
    struct fx f;
    fx_open(&f);
    put_ttl(&f, "n", "1", 100);
    uint32_t exp = expiry_of(&f, "n");
    CHECK_EQ_U64(exp, store_expiry_from_ttl(T0_MS, 100));
    f.now_ms += 50500; /* a later timestamp must not move it */
    struct store_outcome o = incr(&f, "n", 1, 0);
    CHECK(o.applied);
    CHECK_EQ_U64(expiry_of(&f, "n"), exp);
    expect_value(&f, "n", "2");
    f.now_ms = (uint64_t)exp * 1000 - 1;
    expect_value(&f, "n", "2");
    f.now_ms = (uint64_t)exp * 1000;
    struct store_cell c;
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(store_get(f.p, HK, HKLEN, "n", 1, now_s(&f), &c), -CELLAR_ENOTFOUND);

    /* No TTL stays no TTL. */
    o = incr(&f, "m", 1, 0);
    o = incr(&f, "m", 1, 0);
    CHECK_EQ_U64(expiry_of(&f, "m"), 0);
    fx_close(&f);
}

TEST(ttl_positive_sets_from_timestamp)
{
    struct fx f;
    fx_open(&f);
    put_ttl(&f, "n", "5", 10);
    f.now_ms += 3700; /* not a whole second: the expiry rounds up */
    struct store_outcome o = incr(&f, "n", 1, 1000);
    CHECK(o.applied);
    CHECK_EQ_U64(expiry_of(&f, "n"), store_expiry_from_ttl(f.now_ms, 1000));
    CHECK(expiry_of(&f, "n") >= now_s(&f) + 1000);

    /* On a missing cell too. */
    o = incr(&f, "fresh", 1, 60);
    CHECK(!o.existed);
    CHECK_EQ_U64(expiry_of(&f, "fresh"), store_expiry_from_ttl(f.now_ms, 60));
    fx_close(&f);
}

TEST(ttl_minus_one_removes)
{
    struct fx f;
    fx_open(&f);
    put_ttl(&f, "n", "5", 10);
    CHECK(expiry_of(&f, "n") != 0);
    struct store_outcome o = incr(&f, "n", 1, -1);
    CHECK(o.applied);
    CHECK_EQ_INT(o.incr_value, 6);
    CHECK_EQ_U64(expiry_of(&f, "n"), 0);
    f.now_ms += 20000;
    expect_value(&f, "n", "6");
    fx_close(&f);
}

TEST(ttl_below_minus_one_is_invalid)
{
    struct fx f;
    fx_open(&f);
    put_ttl(&f, "n", "5", 10);
    uint32_t exp = expiry_of(&f, "n");
    const int64_t bad[] = {-2, -100, INT64_MIN};
    for (size_t i = 0; i < 3; i++) {
        struct store_outcome o = incr(&f, "n", 1, bad[i]);
        CHECK(!o.applied);
        CHECK_EQ_INT(o.error, -CELLAR_EINVAL);
        expect_value(&f, "n", "5");
        CHECK_EQ_U64(expiry_of(&f, "n"), exp);
    }
    /* Refused before the value is looked at. */
    put_ttl(&f, "s", "abc", 0);
    struct store_outcome o = incr(&f, "s", 1, -2);
    CHECK_EQ_INT(o.error, -CELLAR_EINVAL);
    struct store_cell c;
    memset(&c, 0, sizeof(c));
    o = incr(&f, "missing", 1, -2);
    CHECK_EQ_INT(o.error, -CELLAR_EINVAL);
    CHECK_EQ_INT(store_get(f.p, HK, HKLEN, "missing", 7, now_s(&f), &c), -CELLAR_ENOTFOUND);
    fx_close(&f);
}

TEST(many_incrs_in_one_batch_accumulate)
{
    struct fx f;
    fx_open(&f);
    int64_t want = 0;
    for (int i = 1; i <= 100; i++) {
        struct store_mutation *m = store_mutation_new(HK, HKLEN);
        struct store_outcome o;
        int64_t by = (i % 3 == 0) ? -i : i;
        store_mutation_incr(m, "n", 1, by, 0);
        apply_nc(&f, m, &o);
        want += by;
        CHECK(o.applied);
        CHECK_EQ_INT(o.incr_value, want);
        store_mutation_free(m);
    }
    /* Two incrs of one cell inside a single mutation as well. */
    struct store_mutation *m = store_mutation_new(HK, HKLEN);
    struct store_outcome o;
    store_mutation_incr(m, "n", 1, 1000, 0);
    store_mutation_incr(m, "n", 1, 1, 0);
    apply_nc(&f, m, &o);
    CHECK(o.applied);
    CHECK_EQ_INT(o.incr_value, want + 1001);
    store_mutation_free(m);
    commit(&f);

    char text[24];
    cellar_format_i64(want + 1001, text);
    expect_value(&f, "n", text);
    struct store_cell c = cell(&f, "n");
    CHECK_EQ_U64(c.hdr.version, 101);
    store_cell_release(&c);
    fx_close(&f);
}

TEST(incr_after_overflow_in_batch_keeps_earlier_value)
{
    struct fx f;
    fx_open(&f);
    struct store_mutation *m1 = store_mutation_new(HK, HKLEN);
    struct store_mutation *m2 = store_mutation_new(HK, HKLEN);
    struct store_outcome o1, o2;
    store_mutation_incr(m1, "n", 1, INT64_MAX - 1, 0);
    apply_nc(&f, m1, &o1);
    CHECK(o1.applied);
    store_mutation_incr(m2, "n", 1, 2, 0);
    apply_nc(&f, m2, &o2);
    CHECK_EQ_INT(o2.error, -CELLAR_EOVERFLOW);
    CHECK(o2.incr_value == INT64_MAX - 1);
    commit(&f);
    expect_value(&f, "n", "9223372036854775806");
    struct store_cell c = cell(&f, "n");
    CHECK_EQ_U64(c.hdr.version, 1);
    store_cell_release(&c);
    store_mutation_free(m1);
    store_mutation_free(m2);
    fx_close(&f);
}

TEST_MAIN(missing_cell_starts_at_zero, expired_cell_counts_as_zero_without_ttl,
          empty_value_counts_as_zero, non_integer_is_refused_unchanged,
          overflow_is_refused_unchanged, int64_edges, ttl_zero_keeps_expiry_exactly,
          ttl_positive_sets_from_timestamp, ttl_minus_one_removes, ttl_below_minus_one_is_invalid,
          many_incrs_in_one_batch_accumulate, incr_after_overflow_in_batch_keeps_earlier_value)

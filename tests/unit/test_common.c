/*
 * test_common.c - the shared vocabulary: strict int64 parsing and
 * formatting, the partition hash, the byte buffer.
 */
#include "common/cellar.h"
#include "tests/unit/harness.h"

static int parse(const char *s, int64_t *v)
{
    return cellar_parse_i64(s, strlen(s), v);
}

TEST(parse_i64_accepts_strict_decimal)
{
    int64_t v = 0;
    CHECK_OK(parse("0", &v));
    CHECK_EQ_INT(v, 0);
    CHECK_OK(parse("-17", &v));
    CHECK_EQ_INT(v, -17);
    CHECK_OK(parse("9223372036854775807", &v));
    CHECK(v == INT64_MAX);
    CHECK_OK(parse("-9223372036854775808", &v));
    CHECK(v == INT64_MIN);
    CHECK_OK(parse("007", &v));
    CHECK_EQ_INT(v, 7);
}

TEST(parse_i64_rejects_everything_else)
{
    int64_t v = 42;
    const char *bad[] = {"", "-", "+1", " 1", "1 ", "0x10", "1.5", "1e3", "--1", "12a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ_INT(parse(bad[i], &v), -CELLAR_ENOTINT);
    CHECK_EQ_INT(parse("9223372036854775808", &v), -CELLAR_EOVERFLOW);
    CHECK_EQ_INT(parse("-9223372036854775809", &v), -CELLAR_EOVERFLOW);
    CHECK_EQ_INT(parse("99999999999999999999999", &v), -CELLAR_EOVERFLOW);
    CHECK_EQ_INT(v, 42);
}

TEST(format_i64_round_trips)
{
    int64_t cases[] = {0, 1, -1, 1234567890, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[24];
        size_t n = cellar_format_i64(cases[i], buf);
        CHECK_EQ_INT(n, strlen(buf));
        int64_t back = 0;
        CHECK_OK(cellar_parse_i64(buf, n, &back));
        CHECK(back == cases[i]);
    }
}

TEST(hash64_is_crc64_xz)
{
    CHECK_EQ_U64(cellar_hash64("123456789", 9), 0x995dc9bbdf1939faull);
    CHECK_EQ_U64(cellar_hash64("", 0), 0);
}

TEST(buf_grows_and_steals)
{
    struct cellar_buf b = {0};
    for (int i = 0; i < 1000; i++)
        cellar_buf_append_byte(&b, (uint8_t)i);
    CHECK_EQ_INT(b.len, 1000);
    CHECK_EQ_INT((uint8_t)b.data[999], (uint8_t)999);
    cellar_buf_append_u32be(&b, 0x01020304);
    CHECK_EQ_INT(cellar_load_u32be(b.data + 1000), 0x01020304);
    cellar_buf_printf(&b, "%d-%s", 7, "x");
    CHECK_BYTES(b.data + 1004, b.len - 1004, "7-x");
    size_t n = 0;
    char *p = cellar_buf_steal(&b, &n);
    CHECK_EQ_INT(n, 1007);
    CHECK(b.data == NULL && b.len == 0);
    free(p);
}

TEST(strerror_names_every_code)
{
    for (int e = 0; e < CELLAR_ERR_COUNT; e++)
        CHECK(strcmp(cellar_strerror(-e), "unknown error") != 0);
    CHECK(strcmp(cellar_strerror(-CELLAR_ERR_COUNT), "unknown error") == 0);
}

static uint64_t ts_us(struct timespec ts)
{
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A deadline lies us after the moment it was asked, on the clock asked
 * for, with whole seconds carried out of tv_nsec. */
TEST(deadline_is_now_plus_the_wait)
{
    static const clockid_t clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME};
    static const uint64_t waits[] = {0, 1, 999999, 1000000, 1500000, 3600000000ull};
    for (size_t c = 0; c < 2; c++) {
        for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
            struct timespec before, after;
            clock_gettime(clocks[c], &before);
            struct timespec d = cellar_deadline_us(clocks[c], waits[i]);
            clock_gettime(clocks[c], &after);
            CHECK(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
            CHECK(ts_us(d) >= ts_us(before) + waits[i]);
            CHECK(ts_us(d) <= ts_us(after) + waits[i]);
        }
    }
}

TEST_MAIN(parse_i64_accepts_strict_decimal, parse_i64_rejects_everything_else,
          format_i64_round_trips, hash64_is_crc64_xz, buf_grows_and_steals,
          strerror_names_every_code, deadline_is_now_plus_the_wait)

/*
 * test_valcodec.c - cell values: round trip with and without a content
 * type, rejection of short and unknown values, TTL to expiry arithmetic.
 */
#include "storage/valcodec.h"
#include "tests/unit/harness.h"

TEST(round_trip_with_ctype)
{
    struct cellar_buf b = {0};
    store_value_encode(&b, 1700000000u, 0x0102030405060708ull, "text/plain", 10, "hello", 5);
    CHECK_EQ_INT(b.len, STORE_VALUE_HEADER_MIN + 1 + 10 + 5);
    struct store_value_header h;
    const char *data;
    size_t len;
    CHECK_OK(store_value_decode(b.data, b.len, &h, &data, &len));
    CHECK_EQ_U64(h.expiry, 1700000000u);
    CHECK_EQ_U64(h.version, 0x0102030405060708ull);
    CHECK_BYTES(h.ctype, h.ctype_len, "text/plain");
    CHECK_BYTES(data, len, "hello");
    /* pointers borrow from the raw value */
    CHECK(data >= b.data && data + len == b.data + b.len);
    cellar_buf_fini(&b);
}

TEST(round_trip_without_ctype)
{
    struct cellar_buf b = {0};
    store_value_encode(&b, 0, 7, NULL, 99, "\x00\xff", 2);
    CHECK_EQ_INT(b.len, STORE_VALUE_HEADER_MIN + 2);
    struct store_value_header h;
    const char *data;
    size_t len;
    CHECK_OK(store_value_decode(b.data, b.len, &h, &data, &len));
    CHECK_EQ_U64(h.expiry, 0);
    CHECK_EQ_U64(h.version, 7);
    CHECK(h.ctype == NULL);
    CHECK_EQ_INT(h.ctype_len, 0);
    CHECK_EQ_INT(len, 2);
    CHECK(memcmp(data, "\x00\xff", 2) == 0);

    /* an empty content type is stored as none */
    cellar_buf_reset(&b);
    store_value_encode(&b, 0, 7, "", 0, "x", 1);
    CHECK_EQ_INT(b.len, STORE_VALUE_HEADER_MIN + 1);
    CHECK_OK(store_value_decode(b.data, b.len, &h, &data, &len));
    CHECK(h.ctype == NULL);
    cellar_buf_fini(&b);
}

TEST(empty_value_and_longest_ctype)
{
    struct cellar_buf b = {0};
    char ct[STORE_CTYPE_MAX];
    memset(ct, 'c', sizeof(ct));
    store_value_encode(&b, 5, 6, ct, sizeof(ct), NULL, 0);
    struct store_value_header h;
    const char *data;
    size_t len;
    CHECK_OK(store_value_decode(b.data, b.len, &h, &data, &len));
    CHECK_EQ_INT(len, 0);
    CHECK_EQ_INT(h.ctype_len, STORE_CTYPE_MAX);
    CHECK(memcmp(h.ctype, ct, sizeof(ct)) == 0);

    cellar_buf_reset(&b);
    store_value_encode(&b, 0, 0, NULL, 0, "", 0);
    CHECK_EQ_INT(b.len, STORE_VALUE_HEADER_MIN);
    CHECK_OK(store_value_decode(b.data, b.len, &h, &data, &len));
    CHECK_EQ_INT(len, 0);
    cellar_buf_fini(&b);
}

TEST(decode_rejects_short_and_unknown)
{
    struct cellar_buf b = {0};
    store_value_encode(&b, 1, 2, "ab", 2, "data", 4);
    struct store_value_header h = {.expiry = 42};
    const char *data = NULL;
    size_t len = 0;
    /* every truncation that cuts into the header or the content type */
    for (size_t n = 0; n < STORE_VALUE_HEADER_MIN + 1 + 2; n++)
        CHECK_EQ_INT(store_value_decode(b.data, n, &h, &data, &len), -CELLAR_ECORRUPT);
    CHECK_EQ_U64(h.expiry, 42); /* untouched on error */
    CHECK_OK(store_value_decode(b.data, STORE_VALUE_HEADER_MIN + 3, &h, &data, &len));
    CHECK_EQ_INT(len, 0);

    b.data[0] = 2; /* unknown format */
    CHECK_EQ_INT(store_value_decode(b.data, b.len, &h, &data, &len), -CELLAR_ECORRUPT);
    b.data[0] = 0;
    CHECK_EQ_INT(store_value_decode(b.data, b.len, &h, &data, &len), -CELLAR_ECORRUPT);
    b.data[0] = STORE_VALUE_FORMAT_1;
    b.data[1] = 0x02; /* unknown flag */
    CHECK_EQ_INT(store_value_decode(b.data, b.len, &h, &data, &len), -CELLAR_ECORRUPT);
    b.data[1] = STORE_VALUE_HAS_CTYPE;
    b.data[STORE_VALUE_HEADER_MIN] = (char)200; /* content type longer than the value */
    CHECK_EQ_INT(store_value_decode(b.data, b.len, &h, &data, &len), -CELLAR_ECORRUPT);
    cellar_buf_fini(&b);
}

TEST(expiry_from_ttl)
{
    /* no TTL */
    CHECK_EQ_U64(store_expiry_from_ttl(1500, 0), 0);
    CHECK_EQ_U64(store_expiry_from_ttl(1500, -1), 0);
    CHECK_EQ_U64(store_expiry_from_ttl(1500, INT64_MIN), 0);
    /* whole second: exactly ttl later */
    CHECK_EQ_U64(store_expiry_from_ttl(1000, 1), 2);
    CHECK_EQ_U64(store_expiry_from_ttl(0, 5), 5);
    /* a fraction rounds up, so the cell lives at least ttl seconds */
    CHECK_EQ_U64(store_expiry_from_ttl(1001, 1), 3);
    CHECK_EQ_U64(store_expiry_from_ttl(1999, 10), 12);
    for (uint64_t ts = 1700000000000ull; ts < 1700000002000ull; ts += 37) {
        uint32_t exp = store_expiry_from_ttl(ts, 3);
        /* visible at every whole-second now before ts + 3 s */
        uint64_t last_alive_s = (ts + 3000 - 1) / 1000;
        CHECK(!store_value_expired(exp, (uint32_t)last_alive_s));
        /* and no longer than needed: gone at the next second */
        CHECK(store_value_expired(exp, (uint32_t)last_alive_s + 1));
    }
    /* saturation */
    CHECK_EQ_U64(store_expiry_from_ttl(0, INT64_MAX), UINT32_MAX);
    CHECK_EQ_U64(store_expiry_from_ttl((uint64_t)UINT32_MAX * 1000, 10), UINT32_MAX);
    CHECK_EQ_U64(store_expiry_from_ttl(UINT64_MAX, 1), UINT32_MAX);
    CHECK_EQ_U64(store_expiry_from_ttl(((uint64_t)UINT32_MAX - 10) * 1000, 9), UINT32_MAX - 1);
    CHECK_EQ_U64(store_expiry_from_ttl(((uint64_t)UINT32_MAX - 10) * 1000, 10), UINT32_MAX);
    /* expired() */
    CHECK(!store_value_expired(0, UINT32_MAX));
    CHECK(store_value_expired(10, 10));
    CHECK(!store_value_expired(10, 9));
}

TEST_MAIN(round_trip_with_ctype, round_trip_without_ctype, empty_value_and_longest_ctype,
          decode_rejects_short_and_unknown, expiry_from_ttl)

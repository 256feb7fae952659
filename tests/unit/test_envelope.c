/*
 * test_envelope.c - the fields of a relay envelope: a round trip (empty
 * fields included), and a reader that stops at a truncated length or a
 * field longer than what is left.
 */
#include "replication/envelope.h"
#include "tests/unit/harness.h"

TEST(fields_round_trip)
{
    struct cellar_buf b = {0};
    repl_envelope_put(&b, "GET", 3);
    repl_envelope_put(&b, "", 0);
    repl_envelope_put(&b, "a\0b", 3);
    CHECK_EQ_INT(b.len, 4 + 3 + 4 + 0 + 4 + 3);
    CHECK(memcmp(b.data, "\x03\x00\x00\x00GET", 7) == 0);
    struct repl_envelope_reader r;
    repl_envelope_reader_init(&r, b.data, b.len);
    const char *f;
    size_t len;
    bool bad = false;
    CHECK(repl_envelope_get(&r, &f, &len, &bad));
    CHECK_BYTES(f, len, "GET");
    CHECK(repl_envelope_get(&r, &f, &len, &bad));
    CHECK_EQ_INT(len, 0);
    CHECK(repl_envelope_get(&r, &f, &len, &bad));
    CHECK(len == 3 && memcmp(f, "a\0b", 3) == 0);
    CHECK(!repl_envelope_get(&r, &f, &len, &bad));
    CHECK(!bad);
    cellar_buf_fini(&b);
}

TEST(truncated_fields_are_bad)
{
    struct repl_envelope_reader r;
    const char *f;
    size_t len;
    bool bad = false;
    repl_envelope_reader_init(&r, "\x02\x00\x00", 3); /* a length cut short */
    CHECK(!repl_envelope_get(&r, &f, &len, &bad));
    CHECK(bad);
    bad = false;
    repl_envelope_reader_init(&r,
                              "\x05\x00\x00\x00"
                              "abcd",
                              8); /* 5 bytes said, 4 there */
    CHECK(!repl_envelope_get(&r, &f, &len, &bad));
    CHECK(bad);
    bad = false;
    repl_envelope_reader_init(&r, "\xff\xff\xff\xff", 4); /* a length past any end */
    CHECK(!repl_envelope_get(&r, &f, &len, &bad));
    CHECK(bad);
}

TEST_MAIN(fields_round_trip, truncated_fields_are_bad)

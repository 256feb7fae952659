/*
 * test_mutation.c - mutation builders, check names and the log encoding:
 * round trips of every op and check type, and a decoder that refuses every
 * malformed input (truncations, trailing bytes, bad types and flags, lengths
 * beyond the buffer or the key limits, op counts the input cannot hold).
 */
#include "storage/mutation.h"
#include "tests/unit/harness.h"

static bool bytes_eq(const struct store_bytes *a, const struct store_bytes *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Field-by-field equality of two mutations. */
static void check_same(const struct store_mutation *a, const struct store_mutation *b)
{
    CHECK_EQ_U64(a->decree, b->decree);
    CHECK_EQ_U64(a->timestamp_ms, b->timestamp_ms);
    CHECK(bytes_eq(&a->hashkey, &b->hashkey));
    CHECK_EQ_INT(a->check.type, b->check.type);
    CHECK(bytes_eq(&a->check.sortkey, &b->check.sortkey));
    CHECK(bytes_eq(&a->check.operand, &b->check.operand));
    CHECK_EQ_INT(a->check.return_value, b->check.return_value);
    CHECK_EQ_INT(a->n_ops, b->n_ops);
    for (size_t i = 0; i < a->n_ops; i++) {
        const struct store_op *x = &a->ops[i], *y = &b->ops[i];
        CHECK_EQ_INT(x->type, y->type);
        CHECK(bytes_eq(&x->sortkey, &y->sortkey));
        CHECK(bytes_eq(&x->value, &y->value));
        CHECK(bytes_eq(&x->ctype, &y->ctype));
        CHECK_EQ_INT(x->ttl_s, y->ttl_s);
        CHECK_EQ_INT(x->by, y->by);
        CHECK(bytes_eq(&x->start, &y->start));
        CHECK(bytes_eq(&x->stop, &y->stop));
        CHECK_EQ_INT(x->start_incl, y->start_incl);
        CHECK_EQ_INT(x->stop_incl, y->stop_incl);
        CHECK_EQ_INT(x->stop_end, y->stop_end);
    }
}

/* Encodes m, decodes it back, compares, and re-encodes to the same bytes. */
static void round_trip(const struct store_mutation *m)
{
    struct cellar_buf enc = {0}, enc2 = {0};
    struct store_mutation *back = NULL;
    store_mutation_encode(m, &enc);
    CHECK_OK(store_mutation_decode(enc.data, enc.len, &back));
    CHECK(back != NULL);
    check_same(m, back);
    store_mutation_encode(back, &enc2);
    CHECK_EQ_INT(enc.len, enc2.len);
    CHECK(memcmp(enc.data, enc2.data, enc.len) == 0);
    store_mutation_free(back);
    cellar_buf_fini(&enc);
    cellar_buf_fini(&enc2);
}

/* A mutation with every op type, binary keys and a check. */
static struct store_mutation *sample(void)
{
    struct store_mutation *m = store_mutation_new("h\0k", 3);
    m->decree = 0x0102030405060708ull;
    m->timestamp_ms = 1700000000123ull;
    store_mutation_set_check(m, STORE_CHECK_VALUE_BYTES_EQUAL, "c\xff", 2, "op\0x", 4, true);
    store_mutation_put(m, "a", 1, "value\0bytes", 11, "text/plain", 10, 3600);
    store_mutation_put(m, "", 0, "", 0, NULL, 0, 0);
    store_mutation_delete(m, "d", 1);
    store_mutation_delete_range(m, "s", 1, true, "t", 1, false, false);
    store_mutation_delete_range(m, "", 0, false, "", 0, true, true);
    store_mutation_incr(m, "n", 1, -5, -1);
    store_mutation_incr(m, "n2", 2, INT64_MIN, INT64_MAX);
    return m;
}

TEST(round_trip_every_op)
{
    struct store_mutation *m = sample();
    CHECK_EQ_INT(m->n_ops, 7);
    round_trip(m);
    store_mutation_free(m);
}

TEST(round_trip_every_check_type)
{
    for (int t = 0; t < STORE_CHECK_COUNT; t++) {
        struct store_mutation *m = store_mutation_new("row", 3);
        m->decree = (uint64_t)t + 1;
        uint64_t versions[] = {UINT64_MAX - 3, 1};
        if (t == STORE_CHECK_VERSION_IN || t == STORE_CHECK_VERSION_NOT_IN)
            store_mutation_set_version_check(m, "sk", 2, versions, 2,
                                             t == STORE_CHECK_VERSION_NOT_IN);
        else
            store_mutation_set_check(m, (enum store_check_type)t, "sk", 2, "42", 2, t % 2);
        store_mutation_put(m, "sk", 2, "v", 1, NULL, 0, 0);
        round_trip(m);
        store_mutation_free(m);
    }
}

TEST(round_trip_pure_check_and_empty)
{
    struct store_mutation *m = store_mutation_new("h", 1);
    store_mutation_set_check(m, STORE_CHECK_VALUE_EXIST, "", 0, "", 0, true);
    CHECK_EQ_INT(m->n_ops, 0);
    round_trip(m);
    store_mutation_free(m);

    m = store_mutation_new("h", 1);
    round_trip(m);
    store_mutation_free(m);
}

TEST(round_trip_max_keys)
{
    size_t n = 65535;
    char *big = malloc(n);
    CHECK(big != NULL);
    memset(big, 'k', n);
    struct store_mutation *m = store_mutation_new(big, n);
    store_mutation_put(m, big, n, big, n, NULL, 0, 0);
    store_mutation_delete_range(m, big, n, true, big, n, true, false);
    round_trip(m);
    store_mutation_free(m);
    free(big);
}

TEST(size_counts_keys_and_values)
{
    struct store_mutation *m = store_mutation_new("hk", 2);
    CHECK_EQ_INT(store_mutation_size(m), 2);
    store_mutation_put(m, "abc", 3, "12345", 5, "t/x", 3, 0);
    CHECK_EQ_INT(store_mutation_size(m), 2 + 3 + 5 + 3);
    store_mutation_delete_range(m, "a", 1, true, "zz", 2, false, false);
    CHECK_EQ_INT(store_mutation_size(m), 13 + 3);
    store_mutation_set_check(m, STORE_CHECK_VALUE_MATCH_PREFIX, "ck", 2, "op", 2, false);
    CHECK_EQ_INT(store_mutation_size(m), 16 + 4);
    store_mutation_free(m);
}

TEST(check_names_map_both_ways)
{
    static const char *names[] = {
        "no_check",
        "value_not_exist",
        "value_not_exist_or_empty",
        "value_exist",
        "value_not_empty",
        "value_match_anywhere",
        "value_match_prefix",
        "value_match_postfix",
        "value_bytes_less",
        "value_bytes_less_or_equal",
        "value_bytes_equal",
        "value_bytes_greater_or_equal",
        "value_bytes_greater",
        "value_int_less",
        "value_int_less_or_equal",
        "value_int_equal",
        "value_int_greater_or_equal",
        "value_int_greater",
    };
    CHECK_EQ_INT(sizeof(names) / sizeof(names[0]), STORE_CHECK_VERSION_IN);
    for (int t = 0; t < STORE_CHECK_VERSION_IN; t++) {
        const char *n = store_check_name((enum store_check_type)t);
        CHECK(n != NULL);
        CHECK(strcmp(n, names[t]) == 0);
        enum store_check_type back = STORE_CHECK_COUNT;
        CHECK_OK(store_check_parse(names[t], strlen(names[t]), &back));
        CHECK_EQ_INT(back, t);
    }
    CHECK(store_check_name(STORE_CHECK_VERSION_IN) == NULL);
    CHECK(store_check_name(STORE_CHECK_VERSION_NOT_IN) == NULL);
    CHECK(store_check_name(STORE_CHECK_COUNT) == NULL);
    CHECK(store_check_name((enum store_check_type) - 1) == NULL);

    enum store_check_type t = STORE_CHECK_NO_CHECK;
    const char *bad[] = {"",         "version_equal", "value_exis", "value_exist_", "VALUE_EXIST",
                         "no_check_"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ_INT(store_check_parse(bad[i], strlen(bad[i]), &t), -CELLAR_EINVAL);
    /* Length matters, not a NUL terminator. */
    CHECK_EQ_INT(store_check_parse("value_exist", 5, &t), -CELLAR_EINVAL);
    CHECK_EQ_INT(store_check_parse("no_check\0", 9, &t), -CELLAR_EINVAL);
    CHECK_OK(store_check_parse("value_existXYZ", 11, &t));
    CHECK_EQ_INT(t, STORE_CHECK_VALUE_EXIST);
}

TEST(builders_copy_arguments)
{
    char sk[4] = "abc", val[4] = "xyz";
    struct store_mutation *m = store_mutation_new("h", 1);
    store_mutation_put(m, sk, 3, val, 3, NULL, 5, 7);
    memset(sk, 0, sizeof(sk));
    memset(val, 0, sizeof(val));
    CHECK_BYTES(m->ops[0].sortkey.data, m->ops[0].sortkey.len, "abc");
    CHECK_BYTES(m->ops[0].value.data, m->ops[0].value.len, "xyz");
    CHECK_EQ_INT(m->ops[0].ctype.len, 0); /* NULL ctype: length ignored */
    CHECK(m->ops[0].ctype.data != NULL);
    CHECK_EQ_INT(m->ops[0].ttl_s, 7);
    /* A second check replaces the first. */
    store_mutation_set_check(m, STORE_CHECK_VALUE_EXIST, "a", 1, "b", 1, true);
    uint64_t v99 = 99;
    store_mutation_set_version_check(m, "c", 1, &v99, 1, false);
    CHECK_EQ_INT(m->check.type, STORE_CHECK_VERSION_IN);
    CHECK_BYTES(m->check.sortkey.data, m->check.sortkey.len, "c");
    CHECK_EQ_INT(m->check.operand.len, 8);
    CHECK(memcmp(m->check.operand.data, "\0\0\0\0\0\0\0\x63", 8) == 0);
    CHECK(!m->check.return_value);
    /* Many ops grow the array. */
    for (int i = 0; i < 100; i++)
        store_mutation_delete(m, &i, sizeof(i));
    CHECK_EQ_INT(m->n_ops, 101);
    CHECK(m->cap_ops >= 101);
    store_mutation_free(m);
    store_mutation_free(NULL);
}

static int decode(const void *p, size_t len)
{
    struct store_mutation *m = (struct store_mutation *)1;
    int rc = store_mutation_decode(p, len, &m);
    if (rc == 0)
        store_mutation_free(m);
    else if (m != NULL)
        FAIL("decode failed but left *out set");
    return rc;
}

TEST(decoder_rejects_every_truncation)
{
    struct store_mutation *m = sample();
    struct cellar_buf enc = {0};
    store_mutation_encode(m, &enc);
    CHECK_OK(decode(enc.data, enc.len));
    for (size_t n = 0; n < enc.len; n++) {
        /* A fresh copy of exactly n bytes, so ASan sees any overread. */
        char *p = cellar_xmemdup(enc.data, n);
        int rc = decode(p, n);
        if (rc != -CELLAR_ECORRUPT)
            FAIL("prefix of %zu bytes decoded with %d", n, rc);
        free(p);
    }
    cellar_buf_fini(&enc);
    store_mutation_free(m);
}

TEST(decoder_rejects_trailing_bytes)
{
    struct store_mutation *m = sample();
    struct cellar_buf enc = {0};
    store_mutation_encode(m, &enc);
    cellar_buf_append_byte(&enc, 0);
    CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    enc.len--;
    cellar_buf_append(&enc, "\x01\x00\x00\x00\x00", 5); /* a whole extra DELETE */
    CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    cellar_buf_fini(&enc);
    store_mutation_free(m);
}

/* Offsets into the encoding of a mutation with hashkey "hk", a check with
 * sortkey "ck" and operand "op", and the given ops. */
#define OFF_VERSION 0
#define OFF_HKLEN 17
#define OFF_CHECK_TYPE (OFF_HKLEN + 4 + 2)
#define OFF_CHECK_FLAGS (OFF_CHECK_TYPE + 1)
#define OFF_CHECK_SKLEN (OFF_CHECK_FLAGS + 1)
#define OFF_CHECK_OPLEN (OFF_CHECK_SKLEN + 4 + 2)
#define OFF_NOPS (OFF_CHECK_OPLEN + 4 + 2)
#define OFF_OP0 (OFF_NOPS + 4)

static void encode_simple(struct cellar_buf *enc, enum store_op_type op0)
{
    struct store_mutation *m = store_mutation_new("hk", 2);
    store_mutation_set_check(m, STORE_CHECK_VALUE_EXIST, "ck", 2, "op", 2, false);
    switch (op0) {
    case STORE_OP_PUT:
        store_mutation_put(m, "sk", 2, "val", 3, "ct", 2, 5);
        break;
    case STORE_OP_DELETE:
        store_mutation_delete(m, "sk", 2);
        break;
    case STORE_OP_DELETE_RANGE:
        store_mutation_delete_range(m, "a", 1, true, "b", 1, false, false);
        break;
    case STORE_OP_INCR:
        store_mutation_incr(m, "sk", 2, 1, 0);
        break;
    }
    cellar_buf_reset(enc);
    store_mutation_encode(m, enc);
    store_mutation_free(m);
    CHECK_OK(decode(enc->data, enc->len));
}

TEST(decoder_rejects_bad_types_and_flags)
{
    struct cellar_buf enc = {0};

    encode_simple(&enc, STORE_OP_DELETE);
    CHECK_EQ_INT((uint8_t)enc.data[OFF_VERSION], 2);
    CHECK_EQ_INT((uint8_t)enc.data[OFF_CHECK_TYPE], STORE_CHECK_VALUE_EXIST);
    CHECK_EQ_INT((uint8_t)enc.data[OFF_OP0], STORE_OP_DELETE);

    const uint8_t bad_versions[] = {0, 1, 3, 0xff};
    for (size_t i = 0; i < sizeof(bad_versions); i++) {
        enc.data[OFF_VERSION] = (char)bad_versions[i];
        CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    }
    enc.data[OFF_VERSION] = 2;

    const uint8_t bad_checks[] = {STORE_CHECK_COUNT, STORE_CHECK_COUNT + 1, 0x80, 0xff};
    for (size_t i = 0; i < sizeof(bad_checks); i++) {
        enc.data[OFF_CHECK_TYPE] = (char)bad_checks[i];
        CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    }
    /* The version checks are internal, but valid in the log when their
     * operand is a list of u64s: the 2-byte operand "op" is not. */
    enc.data[OFF_CHECK_TYPE] = STORE_CHECK_VERSION_IN;
    CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    enc.data[OFF_CHECK_TYPE] = STORE_CHECK_VERSION_NOT_IN;
    CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    enc.data[OFF_CHECK_TYPE] = STORE_CHECK_VALUE_MATCH_PREFIX;
    CHECK_OK(decode(enc.data, enc.len));

    enc.data[OFF_CHECK_FLAGS] = 0x06; /* an unknown flag bit */
    CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    enc.data[OFF_CHECK_FLAGS] = 0x01; /* a check type without the present bit */
    CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    enc.data[OFF_CHECK_FLAGS] = 0x03;
    CHECK_OK(decode(enc.data, enc.len));

    const uint8_t bad_ops[] = {0, 5, 0x81, 0xff};
    for (size_t i = 0; i < sizeof(bad_ops); i++) {
        enc.data[OFF_OP0] = (char)bad_ops[i];
        CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    }

    encode_simple(&enc, STORE_OP_DELETE_RANGE);
    CHECK_EQ_INT((uint8_t)enc.data[OFF_OP0 + 1], 0x01);
    for (int bit = 3; bit < 8; bit++) {
        enc.data[OFF_OP0 + 1] = (char)(1u << bit);
        CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    }
    enc.data[OFF_OP0 + 1] = 0x07;
    CHECK_OK(decode(enc.data, enc.len));
    cellar_buf_fini(&enc);
}

static void put_u32_at(struct cellar_buf *b, size_t off, uint32_t v)
{
    cellar_store_u32be(b->data + off, v);
}

TEST(decoder_rejects_bad_lengths)
{
    struct cellar_buf enc = {0};
    const uint32_t huge[] = {UINT32_MAX, UINT32_MAX - 3, 0x80000000u, 1000};

    /* Hashkey: empty, longer than the buffer, or longer than 65535. */
    encode_simple(&enc, STORE_OP_DELETE);
    put_u32_at(&enc, OFF_HKLEN, 0);
    CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        put_u32_at(&enc, OFF_HKLEN, huge[i]);
        CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    }

    /* Check sortkey and operand longer than the buffer. */
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        encode_simple(&enc, STORE_OP_DELETE);
        put_u32_at(&enc, OFF_CHECK_SKLEN, huge[i]);
        CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
        encode_simple(&enc, STORE_OP_DELETE);
        put_u32_at(&enc, OFF_CHECK_OPLEN, huge[i]);
        CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    }

    /* Op counts beyond what the bytes can hold (and 0 with an op left). */
    const uint32_t counts[] = {0, 2, 1000, 0x10000000u, UINT32_MAX};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        encode_simple(&enc, STORE_OP_DELETE);
        put_u32_at(&enc, OFF_NOPS, counts[i]);
        CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
    }

    /* Every u32 length field of every op type, set past the buffer. */
    const enum store_op_type types[] = {STORE_OP_PUT, STORE_OP_DELETE, STORE_OP_DELETE_RANGE,
                                        STORE_OP_INCR};
    for (size_t t = 0; t < 4; t++) {
        encode_simple(&enc, types[t]);
        size_t first = OFF_OP0 + 1 + (types[t] == STORE_OP_DELETE_RANGE ? 1 : 0);
        size_t nfields = types[t] == STORE_OP_PUT ? 3 : types[t] == STORE_OP_DELETE_RANGE ? 2 : 1;
        size_t off = first;
        for (size_t f = 0; f < nfields; f++) {
            uint32_t orig = cellar_load_u32be(enc.data + off);
            for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
                put_u32_at(&enc, off, huge[i]);
                CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
            }
            /* One byte too many or too few shifts everything: also rejected. */
            put_u32_at(&enc, off, orig + 1);
            CHECK_EQ_INT(decode(enc.data, enc.len), -CELLAR_ECORRUPT);
            put_u32_at(&enc, off, orig);
            CHECK_OK(decode(enc.data, enc.len));
            off += 4 + orig;
        }
    }
    cellar_buf_fini(&enc);
}

/* Builds an encoding by hand with the given key lengths. */
static void encode_raw(struct cellar_buf *b, size_t hklen, size_t check_sklen, uint8_t op,
                       size_t sklen, size_t ctlen)
{
    static char zeros[70000];
    cellar_buf_reset(b);
    cellar_buf_append_byte(b, 2); /* encoding version */
    cellar_buf_append_u64be(b, 1);
    cellar_buf_append_u64be(b, 2);
    cellar_buf_append_u32be(b, (uint32_t)hklen);
    cellar_buf_append(b, zeros, hklen);
    cellar_buf_append_byte(b, 0);
    cellar_buf_append_byte(b, 0);
    cellar_buf_append_u32be(b, (uint32_t)check_sklen);
    cellar_buf_append(b, zeros, check_sklen);
    cellar_buf_append_u32be(b, 0);
    cellar_buf_append_u32be(b, 1);
    cellar_buf_append_byte(b, op);
    if (op == STORE_OP_DELETE_RANGE) {
        cellar_buf_append_byte(b, 0);
        cellar_buf_append_u32be(b, (uint32_t)sklen);
        cellar_buf_append(b, zeros, sklen);
        cellar_buf_append_u32be(b, (uint32_t)sklen);
        cellar_buf_append(b, zeros, sklen);
        return;
    }
    cellar_buf_append_u32be(b, (uint32_t)sklen);
    cellar_buf_append(b, zeros, sklen);
    if (op == STORE_OP_PUT) {
        cellar_buf_append_u32be(b, 0);
        cellar_buf_append_u32be(b, (uint32_t)ctlen);
        cellar_buf_append(b, zeros, ctlen);
        cellar_buf_append_u64be(b, 0);
    } else if (op == STORE_OP_INCR) {
        cellar_buf_append_u64be(b, 1);
        cellar_buf_append_u64be(b, 0);
    }
}

TEST(decoder_enforces_key_limits)
{
    struct cellar_buf b = {0};
    encode_raw(&b, 65535, 65535, STORE_OP_PUT, 65535, 255);
    CHECK_OK(decode(b.data, b.len));
    encode_raw(&b, 0, 0, STORE_OP_DELETE, 0, 0);
    CHECK_EQ_INT(decode(b.data, b.len), -CELLAR_ECORRUPT);
    encode_raw(&b, 1, 0, STORE_OP_DELETE, 0, 0);
    CHECK_OK(decode(b.data, b.len));
    encode_raw(&b, 65536, 0, STORE_OP_DELETE, 0, 0);
    CHECK_EQ_INT(decode(b.data, b.len), -CELLAR_ECORRUPT);
    encode_raw(&b, 1, 65536, STORE_OP_DELETE, 0, 0);
    CHECK_EQ_INT(decode(b.data, b.len), -CELLAR_ECORRUPT);
    const uint8_t ops[] = {STORE_OP_PUT, STORE_OP_DELETE, STORE_OP_DELETE_RANGE, STORE_OP_INCR};
    for (size_t i = 0; i < sizeof(ops); i++) {
        encode_raw(&b, 1, 0, ops[i], 65535, 0);
        CHECK_OK(decode(b.data, b.len));
        encode_raw(&b, 1, 0, ops[i], 65536, 0);
        CHECK_EQ_INT(decode(b.data, b.len), -CELLAR_ECORRUPT);
    }
    encode_raw(&b, 1, 0, STORE_OP_PUT, 1, 256);
    CHECK_EQ_INT(decode(b.data, b.len), -CELLAR_ECORRUPT);
    cellar_buf_fini(&b);
}

/* A cheap fuzz pass: flipping any single byte of a valid encoding either
 * decodes to something that re-encodes to the same bytes, or is refused. */
TEST(decoder_survives_byte_flips)
{
    struct store_mutation *m = sample();
    struct cellar_buf enc = {0};
    store_mutation_encode(m, &enc);
    const uint8_t xors[] = {0x01, 0x80, 0xff};
    for (size_t i = 0; i < enc.len; i++) {
        for (size_t k = 0; k < sizeof(xors); k++) {
            char *p = cellar_xmemdup(enc.data, enc.len);
            p[i] = (char)(p[i] ^ xors[k]);
            struct store_mutation *d = NULL;
            int rc = store_mutation_decode(p, enc.len, &d);
            if (rc == 0) {
                struct cellar_buf again = {0};
                store_mutation_encode(d, &again);
                CHECK_EQ_INT(again.len, enc.len);
                CHECK(memcmp(again.data, p, enc.len) == 0);
                cellar_buf_fini(&again);
                store_mutation_free(d);
            } else {
                CHECK_EQ_INT(rc, -CELLAR_ECORRUPT);
                CHECK(d == NULL);
            }
            free(p);
        }
    }
    cellar_buf_fini(&enc);
    store_mutation_free(m);
}

TEST(outcome_fini_frees_and_accepts_empty)
{
    struct store_outcome o;
    memset(&o, 0, sizeof(o));
    store_outcome_fini(&o);
    o.check_value.data = cellar_xmemdup("abc", 3);
    o.check_value.len = 3;
    store_outcome_fini(&o);
    CHECK(o.check_value.data == NULL);
    CHECK_EQ_INT(o.check_value.len, 0);
    store_outcome_fini(&o);
}

TEST_MAIN(round_trip_every_op, round_trip_every_check_type, round_trip_pure_check_and_empty,
          round_trip_max_keys, size_counts_keys_and_values, check_names_map_both_ways,
          builders_copy_arguments, decoder_rejects_every_truncation, decoder_rejects_trailing_bytes,
          decoder_rejects_bad_types_and_flags, decoder_rejects_bad_lengths,
          decoder_enforces_key_limits, decoder_survives_byte_flips,
          outcome_fini_frees_and_accepts_empty)

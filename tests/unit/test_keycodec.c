/*
 * test_keycodec.c - cell keys: round trip, the ordering property every
 * range scan relies on (a row's cells are contiguous and sorted by sortkey,
 * whatever the hashkey lengths), the successor and the prefix length.
 */
#include "storage/keycodec.h"
#include "tests/unit/harness.h"

TEST(round_trip)
{
    struct cellar_buf k = {0};
    store_key_encode(&k, "user1", 5, "\x00zz\xff", 4);
    CHECK_EQ_INT(k.len, 2 + 5 + 4);
    CHECK_EQ_INT(cellar_load_u16be(k.data), 5);
    const char *hk, *sk;
    size_t hklen, sklen;
    CHECK_OK(store_key_decode(k.data, k.len, &hk, &hklen, &sk, &sklen));
    CHECK_BYTES(hk, hklen, "user1");
    CHECK_EQ_INT(sklen, 4);
    CHECK(memcmp(sk, "\x00zz\xff", 4) == 0);

    /* empty sortkey = the row prefix */
    struct cellar_buf pfx = {0};
    store_key_row_prefix(&pfx, "user1", 5);
    cellar_buf_reset(&k);
    store_key_encode(&k, "user1", 5, "", 0);
    CHECK(k.len == pfx.len && memcmp(k.data, pfx.data, k.len) == 0);
    CHECK_OK(store_key_decode(k.data, k.len, &hk, &hklen, &sk, &sklen));
    CHECK_EQ_INT(sklen, 0);
    CHECK_EQ_INT(store_key_prefix_len(k.data, k.len), 7);

    /* the longest hashkey */
    char *big = malloc(STORE_HASHKEY_MAX);
    memset(big, 0xab, STORE_HASHKEY_MAX);
    cellar_buf_reset(&k);
    store_key_encode(&k, big, STORE_HASHKEY_MAX, "s", 1);
    CHECK_OK(store_key_decode(k.data, k.len, &hk, &hklen, &sk, &sklen));
    CHECK_EQ_INT(hklen, STORE_HASHKEY_MAX);
    CHECK_BYTES(sk, sklen, "s");
    free(big);
    cellar_buf_fini(&k);
    cellar_buf_fini(&pfx);
}

TEST(decode_rejects_truncated)
{
    struct cellar_buf k = {0};
    store_key_encode(&k, "abc", 3, "x", 1);
    const char *hk, *sk;
    size_t hklen, sklen;
    CHECK_EQ_INT(store_key_decode(k.data, 0, &hk, &hklen, &sk, &sklen), -CELLAR_ECORRUPT);
    CHECK_EQ_INT(store_key_decode(k.data, 1, &hk, &hklen, &sk, &sklen), -CELLAR_ECORRUPT);
    CHECK_EQ_INT(store_key_decode(k.data, 2, &hk, &hklen, &sk, &sklen), -CELLAR_ECORRUPT);
    CHECK_EQ_INT(store_key_decode(k.data, 4, &hk, &hklen, &sk, &sklen), -CELLAR_ECORRUPT);
    CHECK_OK(store_key_decode(k.data, 5, &hk, &hklen, &sk, &sklen)); /* empty sortkey */
    CHECK_EQ_INT(sklen, 0);
    CHECK_EQ_INT(store_key_decode("\x00\x00zz", 4, &hk, &hklen, &sk, &sklen), -CELLAR_ECORRUPT);
    CHECK_EQ_INT(store_key_decode("\xff\xff", 2, &hk, &hklen, &sk, &sklen), -CELLAR_ECORRUPT);

    CHECK_EQ_INT(store_key_prefix_len(k.data, 0), 0);
    CHECK_EQ_INT(store_key_prefix_len(k.data, 1), 0);
    CHECK_EQ_INT(store_key_prefix_len(k.data, 4), 0);
    CHECK_EQ_INT(store_key_prefix_len(k.data, 5), 5);
    CHECK_EQ_INT(store_key_prefix_len(k.data, 6), 5);
    cellar_buf_fini(&k);
}

static void set(struct cellar_buf *b, const char *p, size_t n)
{
    cellar_buf_reset(b);
    cellar_buf_append(b, p, n);
}

TEST(successor_edge_cases)
{
    struct cellar_buf b = {0};
    set(&b, "abc", 3);
    CHECK_OK(store_key_successor(&b));
    CHECK_BYTES(b.data, b.len, "abd");

    set(&b, "ab\xff\xff", 4);
    CHECK_OK(store_key_successor(&b));
    CHECK_BYTES(b.data, b.len, "ac");

    set(&b, "a\xfe", 2);
    CHECK_OK(store_key_successor(&b));
    CHECK_BYTES(b.data, b.len, "a\xff");

    set(&b, "\x00", 1);
    CHECK_OK(store_key_successor(&b));
    CHECK_BYTES(b.data, b.len, "\x01");

    set(&b, "\xff\xff\xff", 3);
    CHECK_EQ_INT(store_key_successor(&b), -CELLAR_ENOTFOUND);
    CHECK_EQ_INT(b.len, 3); /* left as it was */

    cellar_buf_reset(&b);
    CHECK_EQ_INT(store_key_successor(&b), -CELLAR_ENOTFOUND);

    /* the successor bounds every extension of the original */
    set(&b, "k\x7f\xff", 3);
    CHECK_OK(store_key_successor(&b));
    const char *ext[] = {"k\x7f\xff", "k\x7f\xff\xff\xff", "k\x7f\xff\x00"};
    size_t extlen[] = {3, 5, 4};
    for (int i = 0; i < 3; i++) {
        size_t n = extlen[i] < b.len ? extlen[i] : b.len;
        int c = memcmp(ext[i], b.data, n);
        CHECK(c < 0 || (c == 0 && extlen[i] < b.len));
    }
    cellar_buf_fini(&b);
}

/* --- The ordering property ---------------------------------------------- */

struct cell {
    unsigned char hk[6];
    size_t hklen;
    unsigned char sk[6];
    size_t sklen;
    struct cellar_buf key;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    /* xorshift64*: deterministic, so a failure reproduces */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* Bytes from a small alphabet heavy in 0x00 and 0xff, so prefixes and
 * equal runs are common. */
static unsigned char rnd_byte(void)
{
    static const unsigned char alphabet[] = {0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xfe, 0xff};
    return alphabet[rnd() % sizeof(alphabet)];
}

static int bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (alen > blen) - (alen < blen);
}

static int cmp_keys(const void *x, const void *y)
{
    const struct cell *a = x, *b = y;
    return bytes_cmp(a->key.data, a->key.len, b->key.data, b->key.len);
}

TEST(ordering_rows_contiguous_and_sorted)
{
    enum { N = 4000 };
    struct cell *cells = calloc(N, sizeof(*cells));
    for (int i = 0; i < N; i++) {
        struct cell *c = &cells[i];
        c->hklen = 1 + rnd() % 4; /* hashkeys of length 1..4, often prefixes of each other */
        for (size_t j = 0; j < c->hklen; j++)
            c->hk[j] = rnd_byte();
        c->sklen = rnd() % 5; /* including the empty sortkey */
        for (size_t j = 0; j < c->sklen; j++)
            c->sk[j] = rnd_byte();
        store_key_encode(&c->key, c->hk, c->hklen, c->sk, c->sklen);
    }
    qsort(cells, N, sizeof(*cells), cmp_keys);

    /* Contiguity: once a row is left, it never appears again. */
    for (int i = 0; i < N; i++) {
        int end = i;
        while (end + 1 < N && cells[end + 1].hklen == cells[i].hklen &&
               memcmp(cells[end + 1].hk, cells[i].hk, cells[i].hklen) == 0)
            end++;
        for (int j = end + 1; j < N; j++)
            CHECK(!(cells[j].hklen == cells[i].hklen &&
                    memcmp(cells[j].hk, cells[i].hk, cells[i].hklen) == 0));
        /* within the row, sortkey byte order */
        for (int j = i; j < end; j++)
            CHECK(bytes_cmp(cells[j].sk, cells[j].sklen, cells[j + 1].sk, cells[j + 1].sklen) <= 0);
        /* every key of the row lies in [row prefix, successor(row prefix)) */
        struct cellar_buf lo = {0}, hi = {0};
        store_key_row_prefix(&lo, cells[i].hk, cells[i].hklen);
        store_key_row_prefix(&hi, cells[i].hk, cells[i].hklen);
        CHECK_OK(store_key_successor(&hi));
        for (int j = 0; j < N; j++) {
            bool same = cells[j].hklen == cells[i].hklen &&
                        memcmp(cells[j].hk, cells[i].hk, cells[i].hklen) == 0;
            bool inside = bytes_cmp(cells[j].key.data, cells[j].key.len, lo.data, lo.len) >= 0 &&
                          bytes_cmp(cells[j].key.data, cells[j].key.len, hi.data, hi.len) < 0;
            CHECK(same == inside);
        }
        cellar_buf_fini(&lo);
        cellar_buf_fini(&hi);
        i = end;
    }
    for (int i = 0; i < N; i++)
        cellar_buf_fini(&cells[i].key);
    free(cells);
}

TEST(prefix_of_each_other_rows_do_not_interleave)
{
    /* "a" < "ab" as rows, and row "a" with sortkey "b..." stays in row "a" */
    struct cellar_buf a_b = {0}, ab = {0}, a_end = {0};
    store_key_encode(&a_b, "a", 1, "b\xff\xff", 3);
    store_key_encode(&ab, "ab", 2, "", 0);
    store_key_row_prefix(&a_end, "a", 1);
    CHECK_OK(store_key_successor(&a_end));
    CHECK(bytes_cmp(a_b.data, a_b.len, a_end.data, a_end.len) < 0);
    CHECK(bytes_cmp(a_end.data, a_end.len, ab.data, ab.len) <= 0);
    cellar_buf_fini(&a_b);
    cellar_buf_fini(&ab);
    cellar_buf_fini(&a_end);
}

TEST_MAIN(round_trip, decode_rejects_truncated, successor_edge_cases,
          ordering_rows_contiguous_and_sorted, prefix_of_each_other_rows_do_not_interleave)

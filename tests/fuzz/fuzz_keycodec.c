/*
 * fuzz_keycodec.c - the cell key codec (store_key_encode/decode,
 * store_key_prefix_len, store_key_successor). Keys reach it from disk and
 * from scan cursors, so decode must hold on any bytes.
 *
 * Input: any bytes, read as a stored key; and, split at the position its
 * first byte names, as a (hashkey, sortkey) pair. Properties: a key that
 * decodes re-encodes to itself, with prefix_len = 2 + hashkey length;
 * encode then decode gives the pair back; the successor of a row prefix is
 * greater than every key of the row and not greater than any key of a
 * later row with a hashkey of the same length; the successor of any string
 * is greater than it and than every extension of it.
 */
#include <string.h>

#include "storage/keycodec.h"
#include "tests/fuzz/fuzz.h"

static int cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *key = (const char *)data;
    const char *hk, *sk;
    size_t hklen, sklen;
    struct cellar_buf b = {0};
    if (store_key_decode(key, size, &hk, &hklen, &sk, &sklen) == 0) {
        FUZZ_CHECK(hklen >= 1 && hk == key + 2 && sk == hk + hklen && 2 + hklen + sklen == size);
        FUZZ_CHECK(store_key_prefix_len(key, size) == 2 + hklen);
        store_key_encode(&b, hk, hklen, sk, sklen);
        FUZZ_CHECK(b.len == size && memcmp(b.data, key, size) == 0);
    } else {
        size_t p = store_key_prefix_len(key, size);
        FUZZ_CHECK(p == 0 || p == 2);
    }

    if (size >= 2) {
        size_t split = 1 + data[0] % (size - 1);
        if (split > STORE_HASHKEY_MAX)
            split = STORE_HASHKEY_MAX;
        cellar_buf_reset(&b);
        store_key_encode(&b, key, split, key + split, size - split);
        FUZZ_CHECK(store_key_decode(b.data, b.len, &hk, &hklen, &sk, &sklen) == 0);
        FUZZ_CHECK(hklen == split && memcmp(hk, key, split) == 0);
        FUZZ_CHECK(sklen == size - split && (sklen == 0 || memcmp(sk, key + split, sklen) == 0));
        /* Every key of the row sorts below the successor of its prefix. */
        struct cellar_buf row = {0};
        store_key_row_prefix(&row, key, split);
        if (store_key_successor(&row) == 0) {
            FUZZ_CHECK(cmp(b.data, b.len, row.data, row.len) < 0);
            /* ... and no later row of the same hashkey length sorts below it. */
            char *later = cellar_xmemdup(b.data, 2 + split);
            size_t i = 2 + split;
            while (i > 2 && (uint8_t)later[i - 1] == 0xff)
                i--;
            if (i > 2) {
                later[i - 1] = (char)((uint8_t)later[i - 1] + 1);
                FUZZ_CHECK(cmp(later, 2 + split, row.data, row.len) >= 0);
            }
            free(later);
        }
        cellar_buf_fini(&row);
    }

    /* The successor of the whole input as a plain string. */
    cellar_buf_reset(&b);
    cellar_buf_append(&b, data, size);
    if (store_key_successor(&b) == 0) {
        FUZZ_CHECK(cmp(b.data, b.len, data, size) > 0);
        struct cellar_buf ext = {0};
        cellar_buf_append(&ext, data, size);
        cellar_buf_append(&ext, "\xff\xff\xff", 3);
        FUZZ_CHECK(cmp(b.data, b.len, ext.data, ext.len) > 0);
        cellar_buf_fini(&ext);
    } else {
        for (size_t i = 0; i < size; i++)
            FUZZ_CHECK(data[i] == 0xff);
    }
    cellar_buf_fini(&b);
    return 0;
}

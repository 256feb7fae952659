/*
 * keycodec.c - a cell's address as a RocksDB key (see keycodec.h).
 *
 * Design: a key is [u16 BE hashkey length][hashkey][sortkey]. Because the
 * length comes first, two rows whose hashkeys are prefixes of each other
 * ("a" and "ab") never interleave: every key of a row starts with the same
 * 2 + hklen bytes, and no key of another row starts with them (a different
 * length field differs in the first two bytes; the same length with other
 * bytes differs inside the hashkey). Within a row, keys compare as their
 * sortkeys do. The row prefix is the smallest key of the row (empty
 * sortkey), and store_key_successor() of it is the first key past the row.
 *
 * Invariants: encode never produces a hashkey length of 0 (asserted), and
 * decode rejects one, so every stored key has a non-empty row prefix.
 *
 * Threads: pure functions, any thread.
 */
#include "storage/keycodec.h"

void store_key_encode(struct cellar_buf *out, const void *hk, size_t hklen, const void *sk,
                      size_t sklen)
{
    CELLAR_ASSERT(hklen >= 1 && hklen <= STORE_HASHKEY_MAX);
    cellar_buf_reserve(out, 2 + hklen + sklen);
    cellar_buf_append_u16be(out, (uint16_t)hklen);
    cellar_buf_append(out, hk, hklen);
    cellar_buf_append(out, sk, sklen);
}

void store_key_row_prefix(struct cellar_buf *out, const void *hk, size_t hklen)
{
    store_key_encode(out, hk, hklen, NULL, 0);
}

int store_key_decode(const char *key, size_t klen, const char **hk, size_t *hklen, const char **sk,
                     size_t *sklen)
{
    size_t plen = store_key_prefix_len(key, klen);
    if (plen <= 2) /* too short, or a zero hashkey length that encode never writes */
        return -CELLAR_ECORRUPT;
    *hk = key + 2;
    *hklen = plen - 2;
    *sk = key + plen;
    *sklen = klen - plen;
    return 0;
}

int store_key_successor(struct cellar_buf *b)
{
    size_t n = b->len;
    while (n > 0 && (uint8_t)b->data[n - 1] == 0xff)
        n--;
    if (n == 0)
        return -CELLAR_ENOTFOUND; /* b left as it was */
    b->data[n - 1] = (char)((uint8_t)b->data[n - 1] + 1);
    b->len = n;
    b->data[n] = '\0'; /* keep the buffer's courtesy NUL */
    return 0;
}

size_t store_key_prefix_len(const char *key, size_t klen)
{
    if (klen < 2)
        return 0;
    size_t n = 2 + (size_t)cellar_load_u16be(key);
    return n <= klen ? n : 0;
}

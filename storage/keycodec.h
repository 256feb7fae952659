/*
 * keycodec.h - how a cell's address becomes a RocksDB key.
 *
 * Layout: [u16 big-endian hashkey length][hashkey][sortkey]. All cells of a
 * row are therefore contiguous and ordered by sortkey bytes, whatever the
 * hashkey lengths; rows are ordered by (hashkey length, hashkey bytes). The
 * prefix extractor (engine.c) maps a key to its row prefix [length][hashkey]
 * for the per-row bloom filter.
 *
 * Pure functions, callable from any thread.
 */
#ifndef STORE_KEYCODEC_H
#define STORE_KEYCODEC_H

#include "common/cellar.h"

#define STORE_HASHKEY_MAX 65535u
#define STORE_SORTKEY_MAX 65535u

/* Appends the key of (hashkey, sortkey) to out. hklen must be 1..65535. */
void store_key_encode(struct cellar_buf *out, const void *hk, size_t hklen, const void *sk,
                      size_t sklen);

/* Appends the row prefix [length][hashkey] to out: the smallest key of the
 * row (the empty sortkey). */
void store_key_row_prefix(struct cellar_buf *out, const void *hk, size_t hklen);

/* Splits a key into borrowed pointers into key. -CELLAR_ECORRUPT when the
 * length field does not fit. */
int store_key_decode(const char *key, size_t klen, const char **hk, size_t *hklen, const char **sk,
                     size_t *sklen);

/* Turns b into the smallest byte string greater than every string that has
 * b as a prefix: drops trailing 0xff bytes and increments the last byte.
 * Returns 0, or -CELLAR_ENOTFOUND when b was empty or all 0xff (no such
 * string: the range is unbounded above). */
int store_key_successor(struct cellar_buf *b);

/* Length of the row prefix of key (2 + hashkey length), or 0 when key is too
 * short to hold one. Used by the prefix extractor. */
size_t store_key_prefix_len(const char *key, size_t klen);

#endif

/*
 * cursor.c - stateless page cursors. A cursor carries only a position: the
 * client repeats its parameters and adds the cursor, and any node can
 * continue it. Layout before base64url: [u8 version = 1][u8 kind][u32 BE
 * partition][key bytes][u32 BE check] where the key is the last sortkey
 * examined (rows) or the last RocksDB key examined (scans; empty = start of
 * the partition) and check is the low 32 bits of the partition hash
 * (CRC-64) of everything before it, so a cursor cut short or changed is
 * refused rather than read as another position (it is an integrity check
 * against accidents, not a signature). Cursors come from clients, so
 * decoding checks everything and
 * a bad one is -CELLAR_EINVAL (400 INVALID_CURSOR), never a read elsewhere:
 * the key only ever narrows the range the request already names.
 *
 * Pure functions, any thread.
 */
#include <string.h>

#include "api/internal.h"
#include "storage/keycodec.h"

#define CURSOR_VERSION 1
#define CURSOR_HEADER 6
#define CURSOR_CHECK 4
#define CURSOR_KEY_MAX (2 + STORE_HASHKEY_MAX + STORE_SORTKEY_MAX)

char *api_cursor_encode(struct api_request *req, enum api_cursor_kind kind, uint32_t partition,
                        const void *key, size_t key_len)
{
    size_t raw_len = CURSOR_HEADER + key_len + CURSOR_CHECK;
    char *raw = api_alloc(req, raw_len);
    raw[0] = CURSOR_VERSION;
    raw[1] = (char)kind;
    cellar_store_u32be(raw + 2, partition);
    if (key_len)
        memcpy(raw + CURSOR_HEADER, key, key_len);
    cellar_store_u32be(raw + raw_len - CURSOR_CHECK,
                       (uint32_t)cellar_hash64(raw, raw_len - CURSOR_CHECK));
    char *out = api_alloc(req, api_base64_encoded_len(raw_len) + 1);
    size_t n = api_base64_encode(raw, raw_len, out, true);
    out[n] = '\0';
    return out;
}

int api_cursor_decode(struct api_request *req, const char *text, size_t len,
                      enum api_cursor_kind kind, struct api_cursor *out)
{
    if (len > api_base64_encoded_len(CURSOR_HEADER + CURSOR_KEY_MAX + CURSOR_CHECK))
        return -CELLAR_EINVAL;
    char *raw = api_alloc(req, len + 1);
    size_t n = 0;
    if (api_base64_decode(text, len, raw, &n, true) < 0 || n < CURSOR_HEADER + CURSOR_CHECK ||
        raw[0] != CURSOR_VERSION || raw[1] != (char)kind ||
        cellar_load_u32be(raw + n - CURSOR_CHECK) != (uint32_t)cellar_hash64(raw, n - CURSOR_CHECK))
        return -CELLAR_EINVAL;
    out->partition = cellar_load_u32be(raw + 2);
    out->key = raw + CURSOR_HEADER;
    out->key_len = n - CURSOR_HEADER - CURSOR_CHECK;
    if (kind == API_CURSOR_ROW && out->key_len > STORE_SORTKEY_MAX)
        return -CELLAR_EINVAL;
    if (kind == API_CURSOR_SCAN && out->key_len > 0) {
        const char *hk, *sk;
        size_t hklen, sklen;
        if (store_key_decode(out->key, out->key_len, &hk, &hklen, &sk, &sklen) < 0 || hklen == 0)
            return -CELLAR_EINVAL;
    }
    return 0;
}

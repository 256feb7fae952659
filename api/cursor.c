/*
 * cursor.c - stateless page cursors. A cursor carries only a position: the
 * client repeats its parameters and adds the cursor, and any node can
 * continue it. Layout before base64url: [u8 version = 2][u8 kind][u32 BE
 * partition][key bytes][u32 BE check] where the key is a boundary between
 * the last key a page examined and the next one: a sortkey (rows;
 * partition 0) or a RocksDB key (scans; empty = start of the partition).
 * Forward pages go on at or after it, reverse row pages strictly before
 * it. The boundary is the shortest start of the far key that sorts past
 * the near one (api_cursor_boundary), so a cursor stays short whatever the
 * keys' lengths, unless the two keys share a long start.
 *
 * The check is the low 32 bits of the partition hash (CRC-64) of what the
 * request reads - [u32 BE length][table name of the path], then for row
 * cursors the row's hashkey - followed by everything before the check. So
 * a cursor cut short or changed, or one of another table, another row or
 * another kind, is refused rather than read as another position. It is an
 * integrity check against accidents, not a signature: anyone can compute
 * it, so nothing relies on it. What keeps a forged cursor harmless is that
 * the position is checked against the request before it is used
 * (api_cursor_row_range, api_cursor_scan_check): the key only ever narrows
 * the range the request names, and a scan resumes only in a partition of
 * the table, whose keys alone it reads. Every failure is -CELLAR_EINVAL,
 * which handlers answer with 400 INVALID_CURSOR.
 *
 * Pure functions on the request's path, any thread.
 */
#include <string.h>

#include "api/internal.h"
#include "storage/keycodec.h"

#define CURSOR_VERSION 2
#define CURSOR_HEADER 6
#define CURSOR_CHECK 4
#define CURSOR_KEY_MAX (2 + STORE_HASHKEY_MAX + STORE_SORTKEY_MAX)
#define SEG_HASHKEY 4

/* The check of raw[0..n) for this request and kind into *out. -CELLAR_EINVAL
 * when the path has no usable hashkey for a row cursor. */
static int cursor_check(struct api_request *req, enum api_cursor_kind kind, const char *raw,
                        size_t n, uint32_t *out)
{
    struct api_bytes table = {"", 0}, hk = {"", 0};
    if (req->n_segs > API_SEG_TABLE)
        table = req->segs[API_SEG_TABLE];
    if (kind == API_CURSOR_ROW && api_path_key(req, SEG_HASHKEY, &hk) < 0)
        return -CELLAR_EINVAL;
    struct cellar_buf b = {0};
    cellar_buf_reserve(&b, 4 + table.len + hk.len + n);
    cellar_buf_append_u32be(&b, (uint32_t)table.len);
    cellar_buf_append(&b, table.data, table.len);
    cellar_buf_append(&b, hk.data, hk.len);
    cellar_buf_append(&b, raw, n);
    *out = (uint32_t)cellar_hash64(b.data, b.len);
    cellar_buf_fini(&b);
    return 0;
}

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
    uint32_t check = 0;
    int rc = cursor_check(req, kind, raw, raw_len - CURSOR_CHECK, &check);
    /* Only handlers that already read the row's hashkey encode row cursors. */
    CELLAR_ASSERT(rc == 0);
    cellar_store_u32be(raw + raw_len - CURSOR_CHECK, check);
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
    uint32_t check = 0;
    if (api_base64_decode(text, len, raw, &n, true) < 0 || n < CURSOR_HEADER + CURSOR_CHECK ||
        raw[0] != CURSOR_VERSION || raw[1] != (char)kind ||
        cursor_check(req, kind, raw, n - CURSOR_CHECK, &check) < 0 ||
        cellar_load_u32be(raw + n - CURSOR_CHECK) != check)
        return -CELLAR_EINVAL;
    out->partition = cellar_load_u32be(raw + 2);
    out->key = raw + CURSOR_HEADER;
    out->key_len = n - CURSOR_HEADER - CURSOR_CHECK;
    if (kind == API_CURSOR_ROW && (out->partition != 0 || out->key_len > STORE_SORTKEY_MAX))
        return -CELLAR_EINVAL;
    return 0;
}

size_t api_cursor_boundary(const void *lo, size_t lo_len, const void *hi, size_t hi_len)
{
    const unsigned char *a = lo, *b = hi;
    size_t i = 0;
    while (i < lo_len && i < hi_len && a[i] == b[i])
        i++;
    CELLAR_ASSERT(i < hi_len); /* hi sorts after lo */
    return i + 1;
}

int api_cursor_row_range(const struct api_cursor *cur, bool reverse, struct store_row_range *r)
{
    /* A page's cursor lies between two keys of the range, so in it; one
     * that does not was not issued for these parameters. */
    int lo = cellar_bytes_cmp(cur->key, cur->key_len, r->start, r->start_len);
    if (lo < 0 || (lo == 0 && !r->start_incl))
        return -CELLAR_EINVAL;
    if (!r->stop_end) {
        int hi = cellar_bytes_cmp(cur->key, cur->key_len, r->stop, r->stop_len);
        if (hi > 0 || (hi == 0 && !r->stop_incl))
            return -CELLAR_EINVAL;
    }
    /* Continue at the boundary, or strictly below it in reverse. */
    if (!reverse) {
        r->start = cur->key;
        r->start_len = cur->key_len;
        r->start_incl = true;
    } else {
        r->stop = cur->key;
        r->stop_len = cur->key_len;
        r->stop_incl = false;
        r->stop_end = false;
    }
    return 0;
}

int api_cursor_scan_check(const struct api_cursor *cur, uint32_t count, int64_t only)
{
    if (cur->partition >= count || (only >= 0 && cur->partition != (uint64_t)only))
        return -CELLAR_EINVAL;
    return 0;
}

/*
 * fuzz_cursor.c - page cursors from clients: api_cursor_decode, and what
 * makes a decoded cursor safe to use, api_cursor_row_range (rows) and
 * api_cursor_scan_check (scans).
 *
 * Input: byte 0 is flags (bit 0: scan cursor, else row; bit 1: reverse;
 * bits 2-4: start_inclusive, stop_inclusive, stop at the end of the row;
 * bit 5: the payload is the cursor's bytes before the check, and the
 * target seals it with the right check, so that the fuzzer reaches the
 * checks behind it; otherwise the payload is the cursor text as a client
 * sends it). Byte 1: the table has 2^(b % 11) partitions. Byte 2: the scan
 * is limited to partition b, or none when b is 255. Then the range: a
 * length byte and the start, a length byte and the stop. The rest is the
 * payload. The request is on table "tbl", row "row".
 *
 * Properties: a cursor that decodes re-encodes to the same text; a row
 * cursor names partition 0 and a key of at most 65535 bytes; a row cursor
 * is accepted exactly when its key lies inside the requested range, and the
 * range it leaves is the part of the old one at or after (reverse: strictly
 * before) it; a scan cursor is accepted exactly when its partition is one
 * of the table's (and the one asked for), whatever its key (a position in
 * that partition's keys); no cursor decodes as both kinds.
 */
#include <string.h>

#include "storage/keycodec.h"
#include "tests/fuzz/fuzz.h"

static int cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return alen < blen ? -1 : alen > blen;
}

static bool in_range(const struct store_row_range *r, const char *k, size_t klen)
{
    int lo = cmp(k, klen, r->start, r->start_len);
    if (lo < 0 || (lo == 0 && !r->start_incl))
        return false;
    if (r->stop_end)
        return true;
    int hi = cmp(k, klen, r->stop, r->stop_len);
    return hi < 0 || (hi == 0 && r->stop_incl);
}

/* The cursor text for raw (without check), sealed as cursor.c does. */
static char *seal(const uint8_t *raw, size_t n, bool row)
{
    struct cellar_buf b = {0};
    cellar_buf_append_u32be(&b, 3);
    cellar_buf_append(&b, "tbl", 3);
    if (row)
        cellar_buf_append(&b, "row", 3);
    cellar_buf_append(&b, raw, n);
    uint32_t check = (uint32_t)cellar_hash64(b.data, b.len);
    cellar_buf_reset(&b);
    cellar_buf_append(&b, raw, n);
    cellar_buf_append_u32be(&b, check);
    char *text = cellar_xmalloc(api_base64_encoded_len(b.len) + 1);
    size_t len = api_base64_encode(b.data, b.len, text, true);
    text[len] = '\0';
    cellar_buf_fini(&b);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint8_t flags = data[0];
    bool scan = flags & 1, reverse = flags & 2;
    uint32_t count = 1u << (data[1] % 11);
    int64_t only = data[2] == 255 ? -1 : data[2];
    size_t pos = 3;
    size_t start_len = data[pos++];
    if (size - pos < start_len)
        return 0;
    const uint8_t *start = data + pos;
    pos += start_len;
    if (pos >= size)
        return 0;
    size_t stop_len = data[pos++];
    if (size - pos < stop_len)
        return 0;
    const uint8_t *stop = data + pos;
    pos += stop_len;
    const uint8_t *payload = data + pos;
    size_t payload_len = size - pos;
    enum api_cursor_kind kind = scan ? API_CURSOR_SCAN : API_CURSOR_ROW;

    struct fuzz_req f;
    fuzz_req_init(&f, API_GET, scan ? "/v1/tables/tbl/scan" : "/v1/tables/tbl/rows/row");
    FUZZ_CHECK(api_split_path(&f.req) == 0);
    char *text =
        flags & 32 ? seal(payload, payload_len, !scan) : fuzz_strndup(payload, payload_len);
    size_t text_len = flags & 32 ? strlen(text) : payload_len;

    struct api_cursor cur = {0}, other = {0};
    int rc = api_cursor_decode(&f.req, text, text_len, kind, &cur);
    FUZZ_CHECK(rc == 0 || rc == -CELLAR_EINVAL);
    if (rc == 0) {
        FUZZ_CHECK(api_cursor_decode(&f.req, text, text_len,
                                     scan ? API_CURSOR_ROW : API_CURSOR_SCAN, &other) < 0);
        char *again = api_cursor_encode(&f.req, kind, cur.partition, cur.key, cur.key_len);
        FUZZ_CHECK(strlen(again) == text_len && memcmp(again, text, text_len) == 0);
        if (!scan) {
            FUZZ_CHECK(cur.partition == 0 && cur.key_len <= STORE_SORTKEY_MAX);
            struct store_row_range r = {.start = start,
                                        .start_len = start_len,
                                        .start_incl = flags & 4,
                                        .stop = stop,
                                        .stop_len = stop_len,
                                        .stop_incl = flags & 8,
                                        .stop_end = flags & 16};
            struct store_row_range old = r;
            bool inside = in_range(&old, cur.key, cur.key_len);
            int rrc = api_cursor_row_range(&cur, reverse, &r);
            FUZZ_CHECK((rrc == 0) == inside);
            if (rrc < 0) {
                FUZZ_CHECK(memcmp(&r, &old, sizeof(r)) == 0);
            } else if (!reverse) {
                FUZZ_CHECK(r.start == cur.key && r.start_len == cur.key_len && r.start_incl);
                FUZZ_CHECK(r.stop == old.stop && r.stop_len == old.stop_len &&
                           r.stop_incl == old.stop_incl && r.stop_end == old.stop_end);
            } else {
                FUZZ_CHECK(r.stop == cur.key && r.stop_len == cur.key_len && !r.stop_incl &&
                           !r.stop_end);
                FUZZ_CHECK(r.start == old.start && r.start_len == old.start_len &&
                           r.start_incl == old.start_incl);
            }
        } else {
            FUZZ_CHECK(cur.key_len <= 2 + STORE_HASHKEY_MAX + STORE_SORTKEY_MAX);
            bool want = cur.partition < count && (only < 0 || cur.partition == (uint64_t)only);
            FUZZ_CHECK((api_cursor_scan_check(&cur, count, only) == 0) == want);
        }
    }
    FUZZ_CHECK(f.conn.replies == 0);
    free(text);
    fuzz_req_fini(&f);
    return 0;
}

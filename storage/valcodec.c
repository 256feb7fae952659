/*
 * valcodec.c - the bytes stored for a cell (see valcodec.h for the layout).
 *
 * Design: a fixed 14-byte header (format, flags, expiry, version), an
 * optional length-prefixed content type, then the user's bytes verbatim, so
 * decoding is a few loads and returns pointers into the raw value: no copy
 * on the read path. The TTL compaction filter (engine.c) decodes only the
 * header.
 *
 * Invariants: decode accepts exactly what encode writes for format 1; an
 * unknown format byte or unknown flag bit is -CELLAR_ECORRUPT, so a newer
 * format is never misread as user data. An empty content type is stored as
 * none (ctype NULL on decode): an empty media type means nothing.
 *
 * Threads: pure functions, any thread.
 */
#include "storage/valcodec.h"

void store_value_encode(struct cellar_buf *out, uint32_t expiry, uint64_t version,
                        const char *ctype, size_t ctype_len, const void *data, size_t len)
{
    bool has_ctype = ctype != NULL && ctype_len > 0;
    if (has_ctype)
        CELLAR_ASSERT(ctype_len <= STORE_CTYPE_MAX);
    cellar_buf_reserve(out, STORE_VALUE_HEADER_MIN + (has_ctype ? 1 + ctype_len : 0) + len);
    cellar_buf_append_byte(out, STORE_VALUE_FORMAT_1);
    cellar_buf_append_byte(out, has_ctype ? STORE_VALUE_HAS_CTYPE : 0);
    cellar_buf_append_u32be(out, expiry);
    cellar_buf_append_u64be(out, version);
    if (has_ctype) {
        cellar_buf_append_byte(out, (uint8_t)ctype_len);
        cellar_buf_append(out, ctype, ctype_len);
    }
    cellar_buf_append(out, data, len);
}

int store_value_decode(const char *raw, size_t rawlen, struct store_value_header *hdr,
                       const char **data, size_t *len)
{
    if (rawlen < STORE_VALUE_HEADER_MIN || (uint8_t)raw[0] != STORE_VALUE_FORMAT_1)
        return -CELLAR_ECORRUPT;
    uint8_t flags = (uint8_t)raw[1];
    if (flags & ~STORE_VALUE_HAS_CTYPE)
        return -CELLAR_ECORRUPT;
    size_t pos = STORE_VALUE_HEADER_MIN;
    const char *ctype = NULL;
    size_t ctype_len = 0;
    if (flags & STORE_VALUE_HAS_CTYPE) {
        if (rawlen < pos + 1)
            return -CELLAR_ECORRUPT;
        ctype_len = (uint8_t)raw[pos];
        pos++;
        /* encode writes the flag only with a content type; an empty one
         * would decode to a non-NULL empty ctype, which encode never makes. */
        if (ctype_len == 0 || rawlen - pos < ctype_len)
            return -CELLAR_ECORRUPT;
        ctype = raw + pos;
        pos += ctype_len;
    }
    hdr->expiry = cellar_load_u32be(raw + 2);
    hdr->version = cellar_load_u64be(raw + 6);
    hdr->ctype = ctype;
    hdr->ctype_len = ctype_len;
    *data = raw + pos;
    *len = rawlen - pos;
    return 0;
}

uint32_t store_expiry_from_ttl(uint64_t timestamp_ms, int64_t ttl_s)
{
    if (ttl_s <= 0)
        return 0;
    /* ceil(timestamp) + ttl: expired means expiry <= now_s (whole seconds),
     * so the cell is visible for every instant before timestamp + ttl. */
    uint64_t start = timestamp_ms / 1000 + (timestamp_ms % 1000 != 0);
    if (start >= UINT32_MAX || (uint64_t)ttl_s >= UINT32_MAX - start)
        return UINT32_MAX;
    return (uint32_t)(start + (uint64_t)ttl_s);
}

/*
 * valcodec.h - the bytes stored for a cell.
 *
 * Layout (format 1): [u8 format = 1][u8 flags][u32 BE expiry][u64 BE version]
 * then, when flags has STORE_VALUE_HAS_CTYPE, [u8 length][content type], then
 * the user's bytes. expiry is Unix seconds, 0 = never; a cell is expired when
 * expiry != 0 && expiry <= now. version is the decree of the mutation that
 * wrote the cell (its ETag).
 *
 * Pure functions, callable from any thread.
 */
#ifndef STORE_VALCODEC_H
#define STORE_VALCODEC_H

#include "common/cellar.h"

#define STORE_VALUE_FORMAT_1 1
#define STORE_VALUE_HAS_CTYPE 0x01
#define STORE_VALUE_HEADER_MIN 14u /* format, flags, expiry, version */
#define STORE_CTYPE_MAX 255u

struct store_value_header {
    uint32_t expiry;   /* Unix seconds, 0 = no expiry */
    uint64_t version;  /* decree that wrote the cell */
    const char *ctype; /* borrowed from the raw value; NULL when none */
    size_t ctype_len;
};

/* Appends the encoded cell to out. ctype may be NULL (then ctype_len is
 * ignored); ctype_len must be <= STORE_CTYPE_MAX. */
void store_value_encode(struct cellar_buf *out, uint32_t expiry, uint64_t version,
                        const char *ctype, size_t ctype_len, const void *data, size_t len);

/* Parses raw. hdr->ctype and *data point into raw (borrowed for raw's
 * lifetime). -CELLAR_ECORRUPT on an unknown format or a short value. */
int store_value_decode(const char *raw, size_t rawlen, struct store_value_header *hdr,
                       const char **data, size_t *len);

static inline bool store_value_expired(uint32_t expiry, uint32_t now_s)
{
    return expiry != 0 && expiry <= now_s;
}

/* The expiry for a TTL of ttl_s seconds written at timestamp_ms: rounded up,
 * so a cell lives at least ttl_s seconds. ttl_s <= 0 gives 0 (none);
 * saturates at UINT32_MAX. */
uint32_t store_expiry_from_ttl(uint64_t timestamp_ms, int64_t ttl_s);

#endif

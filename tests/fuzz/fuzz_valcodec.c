/*
 * fuzz_valcodec.c - the stored cell value codec (store_value_encode/decode)
 * and expiry arithmetic (store_expiry_from_ttl). Values come from disk,
 * where a torn or foreign file must not crash a read.
 *
 * Input: any bytes, read as a stored value; its first bytes also give a
 * header to encode. Properties: a value that decodes re-encodes to exactly
 * its bytes (decode accepts only what encode writes) and its pointers stay
 * inside it; encode then decode gives back every field; an expiry is 0
 * exactly for a TTL <= 0 and otherwise no earlier than the TTL asks.
 */
#include <string.h>

#include "storage/valcodec.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *raw = (const char *)data;
    struct store_value_header h;
    const char *val;
    size_t vlen;
    struct cellar_buf b = {0};
    if (store_value_decode(raw, size, &h, &val, &vlen) == 0) {
        FUZZ_CHECK(val >= raw && val + vlen == raw + size);
        FUZZ_CHECK(!h.ctype || (h.ctype >= raw && h.ctype + h.ctype_len <= val));
        FUZZ_CHECK(!h.ctype || h.ctype_len > 0);
        store_value_encode(&b, h.expiry, h.version, h.ctype, h.ctype_len, val, vlen);
        FUZZ_CHECK(b.len == size && memcmp(b.data, raw, size) == 0);
    }

    if (size >= 13) {
        uint32_t expiry = cellar_load_u32be(data);
        uint64_t version = cellar_load_u64be(data + 4);
        size_t ctype_len = data[12];
        const uint8_t *rest = data + 13;
        size_t rest_len = size - 13;
        if (ctype_len > rest_len)
            ctype_len = rest_len;
        cellar_buf_reset(&b);
        store_value_encode(&b, expiry, version, (const char *)rest, ctype_len,
                           (const char *)rest + ctype_len, rest_len - ctype_len);
        FUZZ_CHECK(store_value_decode(b.data, b.len, &h, &val, &vlen) == 0);
        FUZZ_CHECK(h.expiry == expiry && h.version == version);
        FUZZ_CHECK(h.ctype_len == ctype_len &&
                   (ctype_len == 0 ? h.ctype == NULL : memcmp(h.ctype, rest, ctype_len) == 0));
        FUZZ_CHECK(vlen == rest_len - ctype_len &&
                   (vlen == 0 || memcmp(val, rest + ctype_len, vlen) == 0));

        uint64_t ts = cellar_load_u64be(data) >> 20; /* up to ~2^44 ms */
        int64_t ttl = (int64_t)cellar_load_u64be(data + 4);
        uint32_t e = store_expiry_from_ttl(ts, ttl);
        if (ttl <= 0)
            FUZZ_CHECK(e == 0);
        else
            FUZZ_CHECK(e == UINT32_MAX ||
                       (ttl < UINT32_MAX && (uint64_t)e * 1000 >= ts + (uint64_t)ttl * 1000));
    }
    cellar_buf_fini(&b);
    return 0;
}

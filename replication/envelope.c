/*
 * envelope.c - the fields of a relay envelope (envelope.h).
 *
 * Threads: any; no state.
 */
#include "replication/envelope.h"

#include <stdint.h>
#include <string.h>

void repl_envelope_put(struct cellar_buf *b, const void *data, size_t len)
{
    CELLAR_ASSERT(len <= UINT32_MAX);
    unsigned char n[4] = {(unsigned char)len, (unsigned char)(len >> 8), (unsigned char)(len >> 16),
                          (unsigned char)(len >> 24)};
    cellar_buf_append(b, n, sizeof(n));
    if (len)
        cellar_buf_append(b, data, len);
}

void repl_envelope_reader_init(struct repl_envelope_reader *r, const void *data, size_t len)
{
    r->p = data;
    r->end = r->p + len;
}

bool repl_envelope_get(struct repl_envelope_reader *r, const char **data, size_t *len, bool *bad)
{
    if (r->p == r->end)
        return false;
    if (r->end - r->p < 4) {
        *bad = true;
        return false;
    }
    size_t n =
        (size_t)r->p[0] | (size_t)r->p[1] << 8 | (size_t)r->p[2] << 16 | (size_t)r->p[3] << 24;
    if ((size_t)(r->end - r->p) - 4 < n) {
        *bad = true;
        return false;
    }
    *data = (const char *)r->p + 4;
    *len = n;
    r->p += 4 + n;
    return true;
}

/*
 * fuzz_envelope.c - the fields of a relay envelope (repl_envelope_get),
 * which a node reads from its peers' POST /internal/v1/relay bodies and
 * their answers.
 *
 * Input: any bytes, read as an envelope. Properties: the reader always
 * ends; every field lies inside the input, right after the one before; it
 * stops early (bad) exactly when bytes are left that are not a whole
 * field; writing the fields back gives exactly the bytes they were read
 * from.
 */
#include <string.h>

#include "replication/envelope.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct repl_envelope_reader r;
    repl_envelope_reader_init(&r, data, size);
    struct cellar_buf back = {0};
    const char *f;
    size_t len, fields = 0;
    bool bad = false;
    const char *at = (const char *)data;
    while (repl_envelope_get(&r, &f, &len, &bad)) {
        FUZZ_CHECK(f == at + 4 && f + len <= (const char *)data + size);
        at = f + len;
        repl_envelope_put(&back, f, len);
        FUZZ_CHECK(fields++ < size / 4);
    }
    FUZZ_CHECK(back.len == (size_t)(at - (const char *)data));
    FUZZ_CHECK(back.len == 0 || memcmp(back.data, data, back.len) == 0);
    FUZZ_CHECK(bad == (back.len != size));
    cellar_buf_fini(&back);
    return 0;
}

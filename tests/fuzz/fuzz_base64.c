/*
 * fuzz_base64.c - standard base64 and base64url (api_base64_encode/decode),
 * UTF-8 validation (api_utf8_valid) and the JSON form of bytes
 * (api_json_set_bytes / api_json_bytes).
 *
 * Input: any bytes. Properties: decode(encode(x)) == x in both alphabets,
 * with the lengths the encodings call for; whatever the strict decoders
 * accept re-encodes to exactly the text given (canonical); api_utf8_valid
 * agrees with jansson's own UTF-8 check; and bytes put into a JSON object
 * as "v" or "v_base64" read back as the same bytes, in the plain form only
 * when they are valid UTF-8 without NUL.
 */
#include <string.h>

#include "tests/fuzz/fuzz.h"

static void check_roundtrip(const uint8_t *data, size_t size, bool url)
{
    size_t cap = api_base64_encoded_len(size);
    char *enc = cellar_xmalloc(cap + 1);
    char *dec = cellar_xmalloc(size + 1);
    size_t n = api_base64_encode(data, size, enc, url);
    FUZZ_CHECK(url ? n == (size * 4 + 2) / 3 : n == cap);
    size_t m = 0;
    FUZZ_CHECK(api_base64_decode(enc, n, dec, &m, url) == 0);
    FUZZ_CHECK(m == size && (size == 0 || memcmp(dec, data, size) == 0));
    free(enc);
    free(dec);
}

static void check_canonical(const char *text, size_t len, bool url)
{
    char *dec = cellar_xmalloc(len + 1);
    size_t m = 0;
    if (api_base64_decode(text, len, dec, &m, url) == 0) {
        FUZZ_CHECK(m <= len / 4 * 3 + 2);
        char *enc = cellar_xmalloc(api_base64_encoded_len(m) + 1);
        size_t n = api_base64_encode(dec, m, enc, url);
        FUZZ_CHECK(n == len && memcmp(enc, text, len) == 0);
        free(enc);
    }
    free(dec);
}

static void check_json_form(const uint8_t *data, size_t size, bool force)
{
    struct fuzz_req f;
    fuzz_req_init(&f, API_POST, "/");
    json_t *obj = json_object();
    api_json_set_bytes(obj, "v", data, size, force);
    bool plain = json_object_get(obj, "v") != NULL;
    FUZZ_CHECK(plain != (json_object_get(obj, "v_base64") != NULL));
    if (plain)
        FUZZ_CHECK(!force && api_utf8_valid((const char *)data, size) && !memchr(data, 0, size));
    /* Through the text form, as a client would send it back. */
    char *text = json_dumps(obj, JSON_COMPACT);
    json_t *back = json_loads(text, 0, NULL);
    FUZZ_CHECK(back != NULL);
    struct api_bytes b;
    FUZZ_CHECK(api_json_bytes(&f.req, back, "v", true, &b) == 1);
    FUZZ_CHECK(b.len == size && (size == 0 || memcmp(b.data, data, size) == 0));
    FUZZ_CHECK(f.conn.replies == 0);
    free(text);
    json_decref(back);
    json_decref(obj);
    fuzz_req_fini(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_roundtrip(data, size, false);
    check_roundtrip(data, size, true);
    check_canonical((const char *)data, size, false);
    check_canonical((const char *)data, size, true);

    json_t *s = json_stringn((const char *)data, size);
    FUZZ_CHECK(api_utf8_valid((const char *)data, size) == (s != NULL));
    json_decref(s);

    check_json_form(data, size, false);
    check_json_form(data, size, size & 1);
    return 0;
}

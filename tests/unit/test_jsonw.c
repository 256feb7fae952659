/*
 * test_jsonw.c - the direct JSON writer of hot responses (api/codec.c,
 * api_jw_*) against jansson: for every string a page can carry, the text
 * must be exactly what json_dumps(JSON_COMPACT) writes for the same value,
 * and api_jw_bytes must choose plain or _base64 as api_json_set_bytes
 * does. Single-threaded.
 */
#include <jansson.h>
#include <string.h>

#include "api/internal.h"
#include "tests/unit/harness.h"

/* The text jansson writes for obj[name] set by api_json_set_bytes, without
 * the enclosing braces. */
static char *jansson_member(const char *name, const void *data, size_t len, bool force_b64)
{
    json_t *o = json_object();
    api_json_set_bytes(o, name, data, len, force_b64);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    size_t n = strlen(text);
    memmove(text, text + 1, n - 2); /* drop { and } */
    text[n - 2] = '\0';
    return text;
}

static void check_member(const char *name, const void *data, size_t len, bool force_b64)
{
    struct cellar_buf b = {0};
    api_jw_bytes(&b, name, data, len, force_b64);
    char *want = jansson_member(name, data, len, force_b64);
    CHECK_EQ_U64(b.len, strlen(want));
    CHECK_BYTES(b.data, b.len, want);
    free(want);
    cellar_buf_fini(&b);
}

TEST(every_byte_alone_and_in_context)
{
    for (int c = 0; c < 256; c++) {
        char s[5] = {'a', (char)c, 'b', (char)c, 0};
        check_member("sortkey", s + 1, 1, false); /* the byte alone */
        check_member("value", s, 4, false);       /* between others */
        check_member("value", s, 4, true);        /* forced base64 */
    }
}

TEST(utf8_escapes_and_empty)
{
    static const char *const cases[] = {
        "",
        "plain",
        "with \"quotes\" and \\backslash\\",
        "tab\tnew\nline\r\b\f",
        "\x01\x1f\x7f",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        "a/b<c>&",
        "\xc3",
        "\xff\xfe",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_member("sortkey", cases[i], strlen(cases[i]), false);
        check_member("sortkey", cases[i], strlen(cases[i]), true);
    }
    check_member("value", "a\0b", 3, false); /* NUL: base64, as jansson's path */
}

TEST(quoted_strings_and_numbers)
{
    struct cellar_buf b = {0};
    api_jw_string(&b, "x\"y", 3);
    CHECK_BYTES(b.data, b.len, "\"x\\\"y\"");
    cellar_buf_reset(&b);
    api_jw_u64(&b, 0);
    cellar_buf_append_byte(&b, ' ');
    api_jw_u64(&b, UINT64_MAX);
    CHECK_BYTES(b.data, b.len, "0 18446744073709551615");
    cellar_buf_fini(&b);
}

TEST_MAIN(every_byte_alone_and_in_context, utf8_escapes_and_empty, quoted_strings_and_numbers)

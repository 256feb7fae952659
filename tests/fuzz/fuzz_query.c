/*
 * fuzz_query.c - query parameters: api_query (percent-decoding, and
 * base64url for key parameters under key_encoding=base64url),
 * api_query_bool, api_query_i64 and api_query_value_decode on every
 * argument, as the handlers call them.
 *
 * Input: byte 0 is flags (bit 0: key_encoding=base64url); the rest is a raw
 * query string, split into arguments the way MHD does with Cellar's
 * identity unescaper. Properties: a decoded value is the reference
 * percent-decoding of the first raw value of that name (for keys in
 * base64url, one that re-encodes to it); booleans come only from "true" and
 * "false"; integers land in their range and format back to a text that
 * parses to the same number; an absent parameter gives its default; no
 * call replies.
 */
#include <string.h>

#include "tests/fuzz/fuzz.h"

static const char *const key_names[] = {"sortkey",        "start",          "stop", "filter",
                                        "hashkey_prefix", "sortkey_prefix", NULL};
static const char *const other_names[] = {"cursor",
                                          "encoding",
                                          "key_encoding",
                                          "filter_type",
                                          "include_dropped",
                                          "purge",
                                          "values",
                                          "reverse",
                                          "start_inclusive",
                                          "stop_inclusive",
                                          "limit",
                                          "max_bytes",
                                          "partition",
                                          "ttl",
                                          NULL};

/* The first raw value of name: 1 and *raw (NULL when given without '='),
 * or 0 when absent. */
static int raw_arg(struct fuzz_req *f, const char *name, const char **raw)
{
    for (size_t i = 0; i < f->conn.n_args; i++) {
        if (strcmp(f->conn.args[i].key, name) == 0) {
            *raw = f->conn.args[i].value;
            return 1;
        }
    }
    return 0;
}

static void check_value(struct fuzz_req *f, const char *name, bool is_key)
{
    struct api_bytes v;
    const char *raw = NULL;
    int rc = api_query(&f->req, name, &v);
    int present = raw_arg(f, name, &raw);
    FUZZ_CHECK(rc == -CELLAR_EINVAL || rc == present);
    if (!present)
        return;
    if (!raw)
        raw = "";
    size_t len = strlen(raw), n = 0;
    char *ref = cellar_xmalloc(len + 1);
    int ref_rc = fuzz_ref_pct_decode(raw, len, ref, &n);
    if (!is_key || !f->req.key_base64url) {
        FUZZ_CHECK((rc == 1) == (ref_rc == 0));
        if (rc == 1)
            FUZZ_CHECK(v.len == n && memcmp(v.data, ref, n) == 0 && v.data[n] == '\0');
    } else if (rc == 1) {
        FUZZ_CHECK(ref_rc == 0);
        char *enc = cellar_xmalloc(api_base64_encoded_len(v.len) + 1);
        size_t m = api_base64_encode(v.data, v.len, enc, true);
        FUZZ_CHECK(m == n && memcmp(enc, ref, n) == 0);
        free(enc);
    }
    free(ref);
}

static void check_bool(struct fuzz_req *f, const char *name)
{
    bool def = name[0] & 1, out = !def;
    struct api_bytes v;
    int rc = api_query_bool(&f->req, name, def, &out);
    if (rc == 0)
        FUZZ_CHECK(out == def);
    if (rc == 1) {
        FUZZ_CHECK(api_query(&f->req, name, &v) == 1);
        FUZZ_CHECK(out ? (v.len == 4 && memcmp(v.data, "true", 4) == 0)
                       : (v.len == 5 && memcmp(v.data, "false", 5) == 0));
    }
}

static void check_i64(struct fuzz_req *f, const char *name, int64_t min, int64_t max)
{
    int64_t def = min, out = 0;
    int rc = api_query_i64(&f->req, name, def, min, max, &out);
    FUZZ_CHECK(rc == -CELLAR_EINVAL || rc == 0 || rc == 1);
    if (rc == 0)
        FUZZ_CHECK(out == def);
    if (rc == 1) {
        FUZZ_CHECK(out >= min && out <= max);
        char text[24];
        int64_t back = 0;
        size_t n = cellar_format_i64(out, text);
        FUZZ_CHECK(cellar_parse_i64(text, n, &back) == 0 && back == out);
    }
}

struct walk {
    struct fuzz_req *f;
    size_t seen;
};

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    struct walk *w = cls;
    struct api_bytes out;
    if (!value)
        value = "";
    int rc = api_query_value_decode(&w->f->req, value, strlen(value), w->seen & 1, &out);
    FUZZ_CHECK(rc == 0 || rc == -CELLAR_EINVAL);
    if (rc == 0)
        FUZZ_CHECK(out.len <= strlen(value));
    w->seen++;
    return MHD_YES;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct fuzz_req f;
    fuzz_req_init(&f, API_GET, "/v1/tables/t/rows/h");
    f.req.key_base64url = data[0] & 1;
    fuzz_parse_query(&f, (const char *)data + 1, size - 1);
    for (size_t i = 0; key_names[i]; i++)
        check_value(&f, key_names[i], true);
    for (size_t i = 0; other_names[i]; i++) {
        check_value(&f, other_names[i], false);
        check_bool(&f, other_names[i]);
    }
    check_i64(&f, "limit", 1, 10000);
    check_i64(&f, "max_bytes", 1, 4 << 20);
    check_i64(&f, "partition", -1, 1023);
    check_i64(&f, "ttl", 0, INT32_MAX);
    check_i64(&f, "values", INT64_MIN, INT64_MAX);
    struct walk w = {&f, 0};
    MHD_get_connection_values(&f.conn, MHD_GET_ARGUMENT_KIND, each_arg, &w);
    FUZZ_CHECK(w.seen == f.conn.n_args);
    FUZZ_CHECK(f.conn.replies == 0);
    fuzz_req_fini(&f);
    return 0;
}

/*
 * fuzz_url.c - the request path: splitting the raw path into segments and
 * percent-decoding each once (api_split_path), the key_encoding parameter,
 * and path keys in both encodings (api_path_key).
 *
 * Input: byte 0 is flags (bit 0: key_encoding=base64url); the rest is the
 * request target "/path?query" up to the first NUL (MHD hands the handler
 * a C string). Properties: the segments are exactly the reference decoding
 * of the '/'-separated pieces, and the error is the one the pieces call for
 * (-CELLAR_ETOOMANY past API_MAX_SEGMENTS, -CELLAR_EINVAL for a bad
 * escape); a base64url path key re-encodes to its segment (the decoder is
 * canonical); and api_pct_decode inverts a full percent-encoding of the
 * same bytes.
 */
#include <string.h>

#include "tests/fuzz/fuzz.h"

static void check_split(struct fuzz_req *f, const char *path)
{
    struct api_request *req = &f->req;
    int rc = api_split_path(req);
    if (path[0] != '/') {
        FUZZ_CHECK(rc == -CELLAR_EINVAL);
        return;
    }
    /* The expected outcome, piece by piece. */
    const char *p = path + 1;
    size_t i = 0;
    int want = 0;
    char *buf = cellar_xmalloc(strlen(path) + 1);
    for (;; i++) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (i == API_MAX_SEGMENTS) {
            want = -CELLAR_ETOOMANY;
            break;
        }
        size_t n = 0;
        if (fuzz_ref_pct_decode(p, len, buf, &n) < 0) {
            want = -CELLAR_EINVAL;
            break;
        }
        if (rc == 0) {
            FUZZ_CHECK(i < req->n_segs);
            FUZZ_CHECK(req->segs[i].len == n && memcmp(req->segs[i].data, buf, n) == 0);
        }
        if (!slash)
            break;
        p = slash + 1;
    }
    free(buf);
    FUZZ_CHECK(rc == want);
    if (rc == 0)
        FUZZ_CHECK(req->n_segs == i + 1 && req->n_segs <= API_MAX_SEGMENTS);
}

static void check_path_keys(struct fuzz_req *f)
{
    struct api_request *req = &f->req;
    for (size_t i = 0; i <= req->n_segs; i++) {
        struct api_bytes k;
        int rc = api_path_key(req, i, &k);
        if (i == req->n_segs) {
            FUZZ_CHECK(rc == -CELLAR_EINVAL);
            continue;
        }
        if (!req->key_base64url) {
            FUZZ_CHECK(rc == 0 && k.len == req->segs[i].len);
            continue;
        }
        if (rc < 0)
            continue;
        char *enc = cellar_xmalloc(api_base64_encoded_len(k.len) + 1);
        size_t n = api_base64_encode(k.data, k.len, enc, true);
        FUZZ_CHECK(n == req->segs[i].len && memcmp(enc, req->segs[i].data, n) == 0);
        free(enc);
    }
}

/* Every byte as %XX (mixed case by position) decodes back to the bytes. */
static void check_pct_inverse(const uint8_t *data, size_t size)
{
    static const char up[] = "0123456789ABCDEF", low[] = "0123456789abcdef";
    char *enc = cellar_xmalloc(size * 3 + 1), *dec = cellar_xmalloc(size * 3 + 1);
    for (size_t i = 0; i < size; i++) {
        const char *hex = i & 1 ? low : up;
        enc[3 * i] = '%';
        enc[3 * i + 1] = hex[data[i] >> 4];
        enc[3 * i + 2] = hex[data[i] & 15];
    }
    size_t n = 0;
    FUZZ_CHECK(api_pct_decode(enc, size * 3, dec, &n) == 0);
    FUZZ_CHECK(n == size && (size == 0 || memcmp(dec, data, size) == 0));
    free(enc);
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool b64 = data[0] & 1;
    char *target = fuzz_strndup(data + 1, size - 1); /* up to the first NUL */
    char *q = strchr(target, '?');
    if (q)
        *q++ = '\0';
    struct fuzz_req f;
    fuzz_req_init(&f, API_GET, target);
    if (b64)
        fuzz_add_arg(&f, "key_encoding", 12, "base64url", 9, true);
    if (q)
        fuzz_parse_query(&f, q, strlen(q));
    struct api_bytes enc;
    int rc = api_query(&f.req, "key_encoding", &enc);
    f.req.key_base64url = rc == 1 && enc.len == 9 && memcmp(enc.data, "base64url", 9) == 0;
    check_split(&f, target);
    if (f.req.n_segs)
        check_path_keys(&f);
    FUZZ_CHECK(f.conn.replies == 0);
    fuzz_req_fini(&f);
    free(target);
    check_pct_inverse(data + 1, size - 1 > 4096 ? 4096 : size - 1);
    return 0;
}

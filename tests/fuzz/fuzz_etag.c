/*
 * fuzz_etag.c - the entity-tag lists of If-Match and If-None-Match
 * (api_etag_next) and the ETag of a version (api_etag_format).
 *
 * Input: a header value (up to the first NUL; a field value cannot hold
 * one). Properties: the reader always ends (each tag moves the position
 * forward, and a list of n bytes holds at most n/2 tags); a list that
 * parses, written out again from its tags, parses to the same tags; a tag
 * is "ours" exactly when api_etag_format of its version spells it; and the
 * ETag of any version (taken from the input's first bytes) reads back as
 * that version, strong.
 */
#include <string.h>

#include "tests/fuzz/fuzz.h"

#define MAX_TAGS 4096

/* Reads the whole list into tags (and the opaque text of each into
 * opaque, NUL-separated). The rc of the last api_etag_next. */
static int read_list(const char *s, size_t len, struct api_etag *tags, size_t *n,
                     struct cellar_buf *opaque)
{
    size_t pos = 0;
    int rc;
    *n = 0;
    for (;;) {
        size_t before = pos;
        rc = api_etag_next(s, len, &pos, &tags[*n]);
        if (rc != 1)
            break;
        FUZZ_CHECK(pos > before && pos <= len);
        /* The opaque text: between the first two quotes after before. */
        const char *q1 = memchr(s + before, '"', len - before);
        FUZZ_CHECK(q1 != NULL);
        const char *q2 = memchr(q1 + 1, '"', (size_t)(s + len - q1 - 1));
        FUZZ_CHECK(q2 != NULL && q2 < s + pos);
        cellar_buf_append(opaque, q1 + 1, (size_t)(q2 - q1 - 1));
        cellar_buf_append_byte(opaque, 0);
        FUZZ_CHECK(++*n <= len / 2);
        FUZZ_CHECK(*n < MAX_TAGS);
    }
    if (rc == 0)
        FUZZ_CHECK(pos == len);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * MAX_TAGS)
        return 0;
    char *s = fuzz_strndup(data, size);
    size_t len = strlen(s), n = 0, n2 = 0;
    struct api_etag *tags = cellar_xcalloc(MAX_TAGS, sizeof(*tags));
    struct api_etag *tags2 = cellar_xcalloc(MAX_TAGS, sizeof(*tags2));
    struct cellar_buf opaque = {0}, opaque2 = {0}, again = {0};
    if (read_list(s, len, tags, &n, &opaque) == 0) {
        /* Write it out again, canonically, and read that. */
        const char *o = opaque.data;
        for (size_t i = 0; i < n; i++) {
            size_t olen = strlen(o);
            char etag[API_ETAG_MAX];
            if (tags[i].ours) {
                size_t elen = api_etag_format(tags[i].version, etag);
                FUZZ_CHECK(elen == olen + 2 && memcmp(etag + 1, o, olen) == 0);
            }
            cellar_buf_printf(&again, "%s%s\"%s\"", i ? ", " : "", tags[i].weak ? "W/" : "", o);
            o += olen + 1;
        }
        FUZZ_CHECK(read_list(again.data ? again.data : "", again.len, tags2, &n2, &opaque2) == 0);
        FUZZ_CHECK(n2 == n && opaque2.len == opaque.len);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(tags2[i].weak == tags[i].weak && tags2[i].ours == tags[i].ours &&
                       tags2[i].version == tags[i].version);
    }
    if (size >= 8) {
        uint64_t v = cellar_load_u64be(data);
        char etag[API_ETAG_MAX];
        size_t elen = api_etag_format(v, etag), pos = 0;
        struct api_etag t;
        FUZZ_CHECK(elen < API_ETAG_MAX && api_etag_next(etag, elen, &pos, &t) == 1);
        FUZZ_CHECK(t.ours && !t.weak && t.version == v && pos == elen);
    }
    cellar_buf_fini(&opaque);
    cellar_buf_fini(&opaque2);
    cellar_buf_fini(&again);
    free(tags);
    free(tags2);
    free(s);
    return 0;
}

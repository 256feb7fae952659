/*
 * handlers_console.c - the web console (GET /), the API reference
 * (GET /docs) and the files they load (GET /ui/{asset}), served from the
 * assets built into the binary: console/assets.txt lists them and
 * scripts/embed-assets turns the list into the table below at build time,
 * so a deployed node needs no file besides itself.
 *
 * Every answer carries the asset's ETag (a hash of its bytes computed at
 * build time; If-None-Match gives 304) and Cache-Control: no-cache, so a
 * browser revalidates and a new binary's files are never hidden behind an
 * old cache. The pages run under a Content-Security-Policy that allows
 * scripts, styles, fonts, images and fetches from the node only (no inline
 * script, no CDN, no framing). Anything not in the table is 404 NOT_FOUND.
 *
 * Threads: MHD workers; the table is constant.
 */
#include <string.h>

#include "api/internal.h"

/* One embedded file; the layout the generated assembly emits. */
struct api_asset {
    const char *path;  /* the URL path: "/", "/docs", "/ui/app.js" */
    const char *ctype; /* Content-Type */
    const char *etag;  /* strong, quoted */
    const char *data;
    uint64_t len;
};

/* From the generated console_assets.S. */
extern const struct api_asset api_assets[];
extern const uint64_t api_assets_count;

#define CONSOLE_CSP                                                                                \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; "                   \
    "frame-ancestors 'none'"

static const struct api_asset *find_asset(const char *path, size_t len)
{
    for (uint64_t i = 0; i < api_assets_count; i++) {
        const struct api_asset *a = &api_assets[i];
        if (strlen(a->path) == len && memcmp(a->path, path, len) == 0)
            return a;
    }
    return NULL;
}

/* Whether an If-None-Match list ("*", or tags, weak or strong) names etag. */
static bool etag_matches(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        size_t len = (size_t)(end - p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len >= 2 && p[0] == 'W' && p[1] == '/') {
            p += 2;
            len -= 2;
        }
        if ((len == 1 && *p == '*') || (len == elen && memcmp(p, etag, len) == 0))
            return true;
        p = end;
    }
    return false;
}

void api_h_console(struct api_request *req)
{
    /* The path again from its decoded segments: "/" is one empty segment. */
    char path[256];
    size_t used = 0;
    for (size_t i = 0; i < req->n_segs; i++) {
        if (used + 1 + req->segs[i].len >= sizeof(path)) {
            api_reply_problem(req, 404, "NOT_FOUND", "no such file");
            return;
        }
        path[used++] = '/';
        memcpy(path + used, req->segs[i].data, req->segs[i].len);
        used += req->segs[i].len;
    }
    const struct api_asset *a = find_asset(path, used);
    if (!a) {
        api_reply_problem(req, 404, "NOT_FOUND", "the console has no file %.*s", (int)used, path);
        return;
    }
    const char *inm = api_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool fresh = inm && etag_matches(inm, a->etag);
    struct MHD_Response *resp =
        fresh ? api_response(req, 0, "", MHD_RESPMEM_PERSISTENT)
              : api_response(req, (size_t)a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    CELLAR_ASSERT(resp);
    if (!fresh)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, a->etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Security-Policy", CONSOLE_CSP);
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    api_reply_response(req, fresh ? 304 : 200, resp);
}

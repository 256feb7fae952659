/*
 * request.c - the handlers' toolkit: the request's server-wide settings,
 * per-request allocation, path segments, query parameters, path keys, JSON
 * bodies, and replies (JSON, JSON text, problem+json with the one table
 * from status codes to HTTP, CORS headers on every reply).
 *
 * Every reply goes through api_reply_response, which queues exactly one
 * response per request (a second is a logged bug, as is a reply while the
 * thread holds a table of the registry).
 *
 * Threads: MHD workers, on the request's own connection.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"

struct repl_registry *api_registry(struct api_request *req)
{
    return req->srv->reg;
}

struct api_metrics *api_metrics(struct api_request *req)
{
    return req->srv->metrics;
}

const struct api_config *api_config(struct api_request *req)
{
    return req->srv->cfg;
}

bool api_ready(struct api_request *req)
{
    return __atomic_load_n(&req->srv->ready, __ATOMIC_ACQUIRE);
}

void *api_alloc(struct api_request *req, size_t n)
{
    req->allocs = cellar_xrealloc(req->allocs, (req->n_allocs + 1) * sizeof(*req->allocs));
    void *p = cellar_xmalloc(n);
    req->allocs[req->n_allocs++] = p;
    return p;
}

const char *api_header(struct api_request *req, const char *name)
{
    const struct api_relayed *r = req->relayed;
    if (!r)
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
    for (size_t i = 0; i < r->n_headers; i++) {
        if (strcasecmp(r->header_names[i], name) == 0)
            return r->header_values[i];
    }
    return NULL;
}

const char *api_query_raw(struct api_request *req, const char *name, bool *present)
{
    const struct api_relayed *r = req->relayed;
    if (!r) {
        const char *v = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
        *present = v || MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name,
                                                      strlen(name), NULL, NULL) == MHD_YES;
        return v;
    }
    for (size_t i = 0; i < r->n_query; i++) {
        if (strcmp(r->query_names[i], name) == 0) {
            *present = true;
            return r->query_values[i];
        }
    }
    *present = false;
    return NULL;
}

void api_query_each(struct api_request *req, MHD_KeyValueIterator fn, void *cls)
{
    const struct api_relayed *r = req->relayed;
    if (!r) {
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, fn, cls);
        return;
    }
    for (size_t i = 0; i < r->n_query; i++) {
        if (fn(cls, MHD_GET_ARGUMENT_KIND, r->query_names[i], r->query_values[i]) != MHD_YES)
            return;
    }
}

void api_header_lines(const char *p, size_t len, api_header_line_fn fn, void *arg)
{
    const char *end = p + len;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon) {
            const char *v = colon + 1;
            while (v < line_end && (*v == ' ' || *v == '\t'))
                v++;
            const char *v_end = line_end;
            while (v_end > v && (v_end[-1] == '\r' || v_end[-1] == ' '))
                v_end--;
            if (!fn(p, (size_t)(colon - p), v, (size_t)(v_end - v), arg))
                return;
        }
        p = eol ? eol + 1 : end;
    }
}

/* --- Responses ---------------------------------------------------------- */

struct MHD_Response *api_response(struct api_request *req, size_t len, void *data,
                                  enum MHD_ResponseMemoryMode mode)
{
    if (!req->relayed)
        return MHD_create_response_from_buffer(len, data, mode);
    cellar_buf_append(&req->relayed->body, data, len);
    if (mode == MHD_RESPMEM_MUST_FREE)
        free(data);
    return MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
}

struct MHD_Response *api_response_with_free(struct api_request *req, size_t len, void *data,
                                            MHD_ContentReaderFreeCallback free_fn, void *cls)
{
    if (!req->relayed)
        return MHD_create_response_from_buffer_with_free_callback_cls(len, data, free_fn, cls);
    cellar_buf_append(&req->relayed->body, data, len);
    free_fn(cls);
    return MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
}

/* Keeps a response header of a request that came in an envelope. */
static enum MHD_Result keep_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct cellar_buf *head = cls;
    cellar_buf_append(head, key, strlen(key));
    cellar_buf_append(head, ": ", 2);
    if (value)
        cellar_buf_append(head, value, strlen(value));
    cellar_buf_append(head, "\r\n", 2);
    return MHD_YES;
}

/* --- Replies ------------------------------------------------------------ */

const char *api_cors_origin(struct api_request *req)
{
    const char *allowed = req->srv->cfg->cors_origins;
    const char *origin = api_header(req, "Origin");
    if (!origin || !*allowed)
        return NULL;
    size_t olen = strlen(origin);
    for (const char *p = allowed; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ')
            end++;
        size_t len = (size_t)(end - p);
        if ((len == 1 && *p == '*') || (len == olen && memcmp(p, origin, len) == 0))
            return origin;
        p = end;
    }
    return NULL;
}

void api_reply_response(struct api_request *req, unsigned status, struct MHD_Response *resp)
{
    if (req->state == API_REQ_ANSWERED) {
        log_err("bug: second reply to %s %s", req->method_name, req->url);
        MHD_destroy_response(resp);
        return;
    }
    if (repl_table_held())
        log_err("bug: a reply to %s %s under the registry lock", req->method_name, req->url);
    const char *origin = api_cors_origin(req);
    if (origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, "Vary", "Origin");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "ETag, Location, Retry-After");
    }
    if (req->forwarded && req->srv->cluster.meta) {
        char version[24];
        snprintf(version, sizeof(version), "%" PRIu64,
                 repl_registry_map_version(api_registry(req)));
        MHD_add_response_header(resp, API_MAP_VERSION_HEADER, version);
    }
    req->http_status = status;
    req->answered_us = cellar_mono_us();
    if (req->relayed)
        MHD_get_response_headers(resp, keep_header, &req->relayed->head);
    else if (MHD_queue_response(req->conn, status, resp) != MHD_YES)
        log_warn("could not queue a %u response to %s %s", status, req->method_name, req->url);
    MHD_destroy_response(resp);
    req->state = API_REQ_ANSWERED;
}

static struct MHD_Response *text_response(struct api_request *req, char *text, size_t len,
                                          const char *ctype)
{
    struct MHD_Response *resp = api_response(req, len, text, MHD_RESPMEM_MUST_FREE);
    CELLAR_ASSERT(resp);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    return resp;
}

void api_reply_json(struct api_request *req, unsigned status, json_t *json)
{
    char *text = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    CELLAR_ASSERT(text);
    api_reply_response(req, status, text_response(req, text, strlen(text), "application/json"));
}

void api_reply_json_text(struct api_request *req, unsigned status, struct cellar_buf *b)
{
    size_t len = 0;
    char *text = cellar_buf_steal(b, &len);
    if (!text)
        text = cellar_xmemdup("", 1);
    api_reply_response(req, status, text_response(req, text, len, "application/json"));
}

static const char *status_title(unsigned status)
{
    switch (status) {
    case 400:
        return "Bad request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not found";
    case 405:
        return "Method not allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition failed";
    case 413:
        return "Payload too large";
    case 414:
        return "URI too long";
    case 421:
        return "Misdirected request";
    case 415:
        return "Unsupported media type";
    case 422:
        return "Unprocessable content";
    case 429:
        return "Too many requests";
    case 503:
        return "Service unavailable";
    case 501:
        return "Not implemented";
    case 504:
        return "Gateway timeout";
    case 507:
        return "Insufficient storage";
    default:
        return "Internal server error";
    }
}

struct MHD_Response *api_problem_response(struct api_request *req, unsigned status,
                                          const char *code, const char *detail)
{
    char type[96] = "/problems/";
    size_t t = strlen(type);
    for (const char *c = code; *c && t < sizeof(type) - 1; c++)
        type[t++] = *c == '_' ? '-' : (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    type[t] = '\0';
    json_t *doc =
        json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", status_title(status),
                  "status", (int)status, "detail", detail, "code", code);
    if (status == 412 && req->n_writes && req->writes[0].outcome.check_exists)
        json_object_set_new(
            doc, "current_etag",
            json_sprintf("%llu", (unsigned long long)req->writes[0].outcome.check_version));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct MHD_Response *resp = text_response(req, text, strlen(text), "application/problem+json");
    if (status == 503 || status == 429)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    return resp;
}

static void vreply_problem(struct api_request *req, unsigned status, const char *code,
                           const char *fmt, va_list ap)
{
    char detail[512];
    vsnprintf(detail, sizeof(detail), fmt, ap);
    api_reply_response(req, status, api_problem_response(req, status, code, detail));
}

void api_reply_problem(struct api_request *req, unsigned status, const char *code, const char *fmt,
                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreply_problem(req, status, code, fmt, ap);
    va_end(ap);
}

/* The one table from status codes to HTTP. */
void api_error_status(int err, unsigned *status, const char **code)
{
    switch (err < 0 ? -err : err) {
    case CELLAR_EINVAL:
        *status = 400;
        *code = "INVALID_ARGUMENT";
        return;
    case CELLAR_ENOTFOUND:
        *status = 404;
        *code = "NOT_FOUND";
        return;
    case CELLAR_EEXIST:
        *status = 409;
        *code = "TABLE_EXISTS";
        return;
    case CELLAR_ETOOLARGE:
        *status = 413;
        *code = "TOO_LARGE";
        return;
    case CELLAR_ETOOMANY:
        *status = 400;
        *code = "TOO_MANY_ITEMS";
        return;
    case CELLAR_ENOTINT:
        *status = 422;
        *code = "NOT_AN_INTEGER";
        return;
    case CELLAR_EOVERFLOW:
        *status = 422;
        *code = "INTEGER_OVERFLOW";
        return;
    case CELLAR_EBUSY:
        *status = 503;
        *code = "BUSY";
        return;
    case CELLAR_ESHUTDOWN:
        *status = 503;
        *code = "SHUTTING_DOWN";
        return;
    case CELLAR_ETHROTTLED:
        *status = 429;
        *code = "THROTTLED";
        return;
    case CELLAR_EREADONLY:
        *status = 403;
        *code = "TABLE_READ_ONLY";
        return;
    case CELLAR_ENOSPC:
        *status = 507;
        *code = "INSUFFICIENT_STORAGE";
        return;
    case CELLAR_EUNAVAIL:
        *status = 503;
        *code = "PARTITION_UNAVAILABLE";
        return;
    case CELLAR_ENOTPRIMARY:
        *status = 503;
        *code = "NO_PRIMARY";
        return;
    case CELLAR_ENONODES:
        *status = 400;
        *code = "NOT_ENOUGH_NODES";
        return;
    case CELLAR_ENOMETA:
        *status = 503;
        *code = "META_UNAVAILABLE";
        return;
    case CELLAR_EOUTCOME:
        *status = 504;
        *code = "OUTCOME_UNKNOWN";
        return;
    default:
        *status = 500;
        *code = "INTERNAL";
        return;
    }
}

void api_reply_error(struct api_request *req, int err, const char *fmt, ...)
{
    unsigned status;
    const char *code;
    api_error_status(err, &status, &code);
    va_list ap;
    va_start(ap, fmt);
    vreply_problem(req, status, code, fmt, ap);
    va_end(ap);
}

/* --- Query parameters and path keys ------------------------------------- */

static int decode_key(struct api_request *req, const char *raw, size_t len, struct api_bytes *out)
{
    char *buf = api_alloc(req, len + 1);
    size_t n = 0;
    if (api_pct_decode(raw, len, buf, &n) < 0)
        return -CELLAR_EINVAL;
    if (req->key_base64url) {
        char *bin = api_alloc(req, n + 1);
        size_t m = 0;
        if (api_base64_decode(buf, n, bin, &m, true) < 0)
            return -CELLAR_EINVAL;
        buf = bin;
        n = m;
    }
    buf[n] = '\0';
    out->data = buf;
    out->len = n;
    return 0;
}

int api_path_key(struct api_request *req, size_t i, struct api_bytes *out)
{
    if (i >= req->n_segs)
        return -CELLAR_EINVAL;
    if (!req->key_base64url) {
        *out = req->segs[i];
        return 0;
    }
    char *bin = api_alloc(req, req->segs[i].len + 1);
    size_t m = 0;
    if (api_base64_decode(req->segs[i].data, req->segs[i].len, bin, &m, true) < 0)
        return -CELLAR_EINVAL;
    bin[m] = '\0';
    out->data = bin;
    out->len = m;
    return 0;
}

static const char *const key_params[] = {"sortkey",        "start",          "stop", "filter",
                                         "hashkey_prefix", "sortkey_prefix", NULL};

int api_query_value_decode(struct api_request *req, const char *raw, size_t len, bool is_key,
                           struct api_bytes *out)
{
    if (is_key)
        return decode_key(req, raw, len, out) < 0 ? -CELLAR_EINVAL : 0;
    size_t n = 0;
    char *buf = api_alloc(req, len + 1);
    if (api_pct_decode(raw, len, buf, &n) < 0)
        return -CELLAR_EINVAL;
    buf[n] = '\0';
    out->data = buf;
    out->len = n;
    return 0;
}

int api_query(struct api_request *req, const char *name, struct api_bytes *out)
{
    bool present;
    const char *raw = api_query_raw(req, name, &present);
    if (!present)
        return 0;
    if (!raw)
        raw = ""; /* "?name" with no '=' is present with an empty value */
    bool is_key = false;
    for (size_t i = 0; key_params[i]; i++)
        is_key |= strcmp(key_params[i], name) == 0;
    return api_query_value_decode(req, raw, strlen(raw), is_key, out) < 0 ? -CELLAR_EINVAL : 1;
}

int api_query_bool(struct api_request *req, const char *name, bool def, bool *out)
{
    struct api_bytes v;
    int rc = api_query(req, name, &v);
    if (rc <= 0) {
        *out = def;
        return rc;
    }
    if (v.len == 4 && memcmp(v.data, "true", 4) == 0)
        *out = true;
    else if (v.len == 5 && memcmp(v.data, "false", 5) == 0)
        *out = false;
    else
        return -CELLAR_EINVAL;
    return 1;
}

int api_query_i64(struct api_request *req, const char *name, int64_t def, int64_t min, int64_t max,
                  int64_t *out)
{
    struct api_bytes v;
    int rc = api_query(req, name, &v);
    if (rc <= 0) {
        *out = def;
        return rc;
    }
    int64_t x = 0;
    if (cellar_parse_i64(v.data, v.len, &x) < 0 || x < min || x > max)
        return -CELLAR_EINVAL;
    *out = x;
    return 1;
}

/* --- JSON bodies ------------------------------------------------------- */

/* What is wrong with a JSON text, in the API's words: the parser's own
 * messages may name its flags and internals. */
static const char *json_error_words(const json_error_t *err)
{
    switch (json_error_code(err)) {
    case json_error_invalid_utf8:
        return "invalid UTF-8";
    case json_error_premature_end_of_input:
        return "the text ends too early";
    case json_error_end_of_input_expected:
        return "text follows the JSON value";
    case json_error_duplicate_key:
        return "a field name given twice";
    case json_error_null_byte_in_key:
        return "a field name holding NUL";
    case json_error_numeric_overflow:
        return "a number out of range";
    case json_error_stack_overflow:
        return "nesting too deep";
    default:
        return "a syntax error";
    }
}

json_t *api_json_body(struct api_request *req, bool empty_ok)
{
    if (req->body.len == 0) {
        if (!empty_ok)
            api_reply_problem(req, 400, "INVALID_JSON", "a JSON body is required");
        return empty_ok ? json_object() : NULL;
    }
    const char *ctype = api_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ctype || strncasecmp(ctype, "application/json", 16) != 0 ||
        (ctype[16] != '\0' && ctype[16] != ';' && ctype[16] != ' ')) {
        api_reply_problem(req, 415, "UNSUPPORTED_MEDIA_TYPE",
                          "this endpoint takes Content-Type: application/json");
        return NULL;
    }
    /* Keys and values are bytes, so a string may hold NUL (\u0000); the
     * fields where NUL means nothing (names, envs) refuse it themselves. */
    json_error_t err;
    json_t *doc =
        json_loadb(req->body.data, req->body.len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!doc) {
        api_reply_problem(req, 400, "INVALID_JSON",
                          "the body is not valid JSON: %s at line %d, column %d",
                          json_error_words(&err), err.line, err.column);
        return NULL;
    }
    if (!json_is_object(doc)) {
        api_reply_problem(req, 400, "INVALID_JSON", "the body is a JSON %s, not an object",
                          json_is_array(doc) ? "array" : "scalar");
        json_decref(doc);
        return NULL;
    }
    return doc;
}

int api_json_bytes(struct api_request *req, json_t *obj, const char *name, bool required,
                   struct api_bytes *out)
{
    char b64name[64];
    snprintf(b64name, sizeof(b64name), "%s_base64", name);
    json_t *plain = json_object_get(obj, name), *b64 = json_object_get(obj, b64name);
    if (plain && b64) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "give %s or %s, not both", name, b64name);
        return -CELLAR_EINVAL;
    }
    if (!plain && !b64) {
        if (required) {
            api_reply_problem(req, 400, "INVALID_ARGUMENT", "%s (or %s) is required", name,
                              b64name);
            return -CELLAR_EINVAL;
        }
        return 0;
    }
    json_t *v = plain ? plain : b64;
    if (!json_is_string(v)) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "%s must be a string",
                          plain ? name : b64name);
        return -CELLAR_EINVAL;
    }
    size_t len = json_string_length(v);
    char *buf = api_alloc(req, len + 1);
    if (plain) {
        memcpy(buf, json_string_value(v), len);
        out->len = len;
    } else if (api_base64_decode(json_string_value(v), len, buf, &out->len, false) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "%s is not valid base64", b64name);
        return -CELLAR_EINVAL;
    }
    buf[out->len] = '\0';
    out->data = buf;
    return 1;
}

bool api_json_int(struct api_request *req, json_t *doc, const char *name, int64_t min, int64_t max,
                  int64_t *out)
{
    json_t *v = json_object_get(doc, name);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "%s must be an integer in %lld..%lld", name,
                          (long long)min, (long long)max);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

bool api_json_only_fields(struct api_request *req, json_t *doc, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            ok |= strcmp(key, allowed[i]) == 0;
        if (!ok) {
            api_reply_problem(req, 400, "INVALID_ARGUMENT", "unknown field \"%s\"", key);
            return false;
        }
    }
    return true;
}

int api_split_path(struct api_request *req)
{
    const char *p = req->url;
    if (*p != '/')
        return -CELLAR_EINVAL;
    p++;
    size_t total = strlen(p);
    char *store = api_alloc(req, total + 1);
    size_t used = 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (req->n_segs == API_MAX_SEGMENTS)
            return -CELLAR_ETOOMANY;
        size_t n = 0;
        if (api_pct_decode(p, len, store + used, &n) < 0)
            return -CELLAR_EINVAL;
        req->segs[req->n_segs].data = store + used;
        req->segs[req->n_segs].len = n;
        req->n_segs++;
        used += n;
        if (!slash)
            break;
        p = slash + 1;
    }
    return 0;
}

void api_request_fini(struct api_request *req)
{
    json_decref(req->held);
    if (req->forward) {
        repl_forward_fini(req->forward);
        free(req->forward);
    }
    for (size_t i = 0; i < req->n_subs; i++) {
        repl_forward_fini(req->subs[i]);
        free(req->subs[i]);
    }
    cellar_buf_fini(&req->body);
    for (size_t i = 0; i < req->n_writes; i++)
        store_outcome_fini(&req->writes[i].outcome);
    free(req->writes);
    if (req->relayed) {
        cellar_buf_fini(&req->relayed->head);
        cellar_buf_fini(&req->relayed->body);
    }
    if (req->relay) {
        for (size_t i = 0; i < req->relay->n_subs; i++) {
            api_request_fini(req->relay->subs[i]);
            free(req->relay->subs[i]);
        }
    }
    for (size_t i = 0; i < req->n_allocs; i++)
        free(req->allocs[i]);
    free(req->allocs);
}

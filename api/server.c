/*
 * server.c - the libmicrohttpd daemon and the life of a request.
 *
 * Design (c-craft.md part B): MHD_USE_INTERNAL_POLLING_THREAD | EPOLL with a
 * thread pool, suspend/resume allowed. The access handler never answers on
 * its first call for a request (that would cost keep-alive): the first call
 * only creates the request context; body chunks are appended up to
 * max_body_bytes; the handler runs on the final call. URL unescaping is
 * turned off, so the router sees raw segments and decodes each exactly
 * once (%2F stays data).
 *
 * Deferred work: a write suspends the connection, then (never before) hands
 * the mutation to the partition writer; the writer's callback copies the
 * outcome into the request and resumes the connection, and MHD calls the
 * handler again on the connection's own worker, which replies. Admin calls
 * (table create, drop, recall) go the same way through one admin thread,
 * because they open, close and fsync RocksDB files.
 *
 * Invariants: a request context is freed only in the completion
 * notification; every suspended connection is resumed exactly once (the
 * writer calls back exactly once per accepted mutation, and a refused submit
 * resumes at once).
 *
 * Threads: MHD workers run handlers; writer threads and the admin thread
 * only store results and resume; the main thread starts, quiesces and
 * stops. `ready` and `inflight` are atomics; the admin queue has its own
 * mutex.
 */
#include "api/server.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/auth.h"
#include "api/deadline.h"
#include "api/internal.h"
#include "api/tls.h"

struct api_server {
    struct MHD_Daemon *daemon;
    /* Borrowed from the caller for the server's life (the offline server's
     * points at own_cfg); its reloadable fields change under the workers,
     * one atomic store each (svc_config_apply_reloadable). */
    const struct api_config *cfg;
    struct api_config own_cfg;
    struct repl_registry *reg;
    int ready;         /* atomic bool */
    int stopping;      /* atomic bool: new requests get 503 */
    unsigned inflight; /* atomic: requests between first call and completion */
    uint16_t port;
    struct api_metrics *metrics;

    pthread_t admin_thread;
    bool admin_started;
    pthread_mutex_t admin_lock; /* guards admin_head/tail/len/stop */
    pthread_cond_t admin_cond;
    struct api_request *admin_head, *admin_tail;
    uint64_t admin_len;
    bool admin_stop;

    /* Access and HTTPS: the generation in force (atomic pointers, read by
     * workers) and every earlier one, kept until stop (auth.h, tls.h). */
    struct api_auth *auth;
    struct api_auth **auth_gens;
    size_t n_auth_gens;
    struct api_tls *tls;
    struct api_tls **tls_gens;
    size_t n_tls_gens;

    struct api_deadlines *deadlines; /* request and idle time limits */
};

void api_config_defaults(struct api_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
    cfg->listen_port = 8080;
    cfg->listen_fd = -1;
    cfg->threads = 0;
    cfg->connection_limit = 1024;
    cfg->connection_timeout_s = 60;
    cfg->connection_memory_bytes = 32 * 1024;
    cfg->max_body_bytes = 4 * 1024 * 1024;
    cfg->max_value_bytes = 1024 * 1024;
    cfg->admin_queue_max = 64;
    cfg->max_batch_items = 1000;
    cfg->max_page_cells = 10000;
    cfg->max_page_bytes = 4 * 1024 * 1024;
    cfg->max_scan_cells = 10000;
    cfg->max_scan_ms = 100;
    cfg->slow_request_ms = 1000;
    cfg->cors_origins[0] = '\0';
    cfg->metrics_auth = true;
    cfg->readyz_auth = false;
    cfg->connection_limit_per_ip = 256;
    cfg->request_timeout_s = 30;
}

int api_config_set_listen(struct api_config *cfg, const char *hostport)
{
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon == hostport)
        return -CELLAR_EINVAL;
    const char *host = hostport;
    size_t hlen = (size_t)(colon - hostport);
    if (host[0] == '[') {
        if (hlen < 3 || host[hlen - 1] != ']')
            return -CELLAR_EINVAL;
        host++;
        hlen -= 2;
    }
    if (hlen >= sizeof(cfg->listen_host))
        return -CELLAR_EINVAL;
    int64_t port = 0;
    if (cellar_parse_i64(colon + 1, strlen(colon + 1), &port) < 0 || port < 0 || port > 65535)
        return -CELLAR_EINVAL;
    memcpy(cfg->listen_host, host, hlen);
    cfg->listen_host[hlen] = '\0';
    cfg->listen_port = (uint16_t)port;
    return 0;
}

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
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

/* --- Replies ------------------------------------------------------------ */

static uint64_t now_us(void)
{
    return cellar_mono_us();
}

/* The request's Origin when cors_origins allows it, else NULL. */
static const char *cors_origin(struct api_request *req)
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
    const char *origin = cors_origin(req);
    if (origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        MHD_add_response_header(resp, "Vary", "Origin");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "ETag, Location, Retry-After");
    }
    req->http_status = status;
    req->answered_us = now_us();
    if (MHD_queue_response(req->conn, status, resp) != MHD_YES)
        log_warn("could not queue a %u response to %s %s", status, req->method_name, req->url);
    MHD_destroy_response(resp);
    req->state = API_REQ_ANSWERED;
}

static struct MHD_Response *text_response(const char *text, size_t len, const char *ctype)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_FREE);
    CELLAR_ASSERT(resp);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    return resp;
}

void api_reply_json(struct api_request *req, unsigned status, json_t *json)
{
    char *text = json_dumps(json, JSON_COMPACT);
    json_decref(json);
    CELLAR_ASSERT(text);
    api_reply_response(req, status, text_response(text, strlen(text), "application/json"));
}

void api_reply_json_text(struct api_request *req, unsigned status, struct cellar_buf *b)
{
    size_t len = 0;
    char *text = cellar_buf_steal(b, &len);
    if (!text)
        text = cellar_xmemdup("", 1);
    api_reply_response(req, status, text_response(text, len, "application/json"));
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
    case 415:
        return "Unsupported media type";
    case 422:
        return "Unprocessable content";
    case 429:
        return "Too many requests";
    case 503:
        return "Service unavailable";
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
    struct MHD_Response *resp = text_response(text, strlen(text), "application/problem+json");
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
    const char *raw = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!raw) {
        /* "?name" with no '=' is present with an empty value. */
        if (MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name),
                                          NULL, NULL) != MHD_YES)
            return 0;
        raw = "";
    }
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

/* --- Deferral ----------------------------------------------------------- */

static void resume(struct api_request *req)
{
    req->resumed_us = now_us();
    __atomic_store_n(&req->state, API_REQ_RESUMED, __ATOMIC_RELEASE);
    MHD_resume_connection(req->conn);
}

/* One deferred mutation: where its result goes. */
struct write_slot {
    struct api_request *req;
    size_t index;
    struct repl_writer *writer;
};

/* Writer thread: keep what the handler needs; the last one resumes. */
static void on_write_done(void *arg, int status, const struct store_outcome *out)
{
    struct write_slot *slot = arg;
    struct api_request *req = slot->req;
    struct api_write_result *r = &req->writes[slot->index];
    r->status = status;
    repl_writer_group_times(slot->writer, &r->taken_us, &r->committed_us);
    if (out) {
        r->outcome = *out;
        if (out->check_value.data)
            r->outcome.check_value.data =
                cellar_xmemdup(out->check_value.data, out->check_value.len);
    }
    if (__atomic_sub_fetch(&req->writes_pending, 1, __ATOMIC_ACQ_REL) == 0)
        resume(req);
}

void api_defer_writes(struct api_request *req, struct api_table *t, size_t n,
                      const uint32_t *partitions, struct store_mutation **mutations,
                      api_handler_fn complete)
{
    CELLAR_ASSERT(n > 0 && !req->writes);
    req->writes = cellar_xcalloc(n, sizeof(*req->writes));
    req->n_writes = n;
    struct write_slot *slots = api_alloc(req, n * sizeof(*slots));
    req->complete = complete;
    req->state = API_REQ_WAITING;
    /* Held by this thread until every mutation is handed over, so no
     * callback can resume the request half-way through. */
    req->writes_pending = n + 1;
    req->deferred_us = now_us();
    if (n == 1) {
        /* durability=os and an idle writer: commit here, no suspend. The
         * callback runs before this returns and leaves the +1 to us. The
         * reply waits until the table is ended. */
        slots[0] = (struct write_slot){req, 0, repl_table_writer(t->table, partitions[0])};
        if (repl_commit_inline(slots[0].writer, mutations[0], on_write_done, &slots[0])) {
            api_table_end(t);
            req->writes_pending = 0;
            req->resumed_us = now_us();
            __atomic_store_n(&req->state, API_REQ_RESUMED, __ATOMIC_RELEASE);
            req->complete(req);
            if (req->state != API_REQ_ANSWERED)
                api_reply_problem(req, 500, "INTERNAL", "the request produced no reply");
            return;
        }
    }
    /* Suspend before publishing: a writer may call back at once. */
    MHD_suspend_connection(req->conn);
    for (size_t i = 0; i < n; i++) {
        slots[i] = (struct write_slot){req, i, repl_table_writer(t->table, partitions[i])};
        int rc = repl_submit_take(slots[i].writer, mutations[i], on_write_done, &slots[i]);
        if (rc < 0) {
            req->writes[i].status = rc;
            __atomic_sub_fetch(&req->writes_pending, 1, __ATOMIC_ACQ_REL);
        }
    }
    /* Every mutation is with its writer: the writers no longer need the
     * table held, and the request may be resumed (and answered) from here
     * on. */
    api_table_end(t);
    if (__atomic_sub_fetch(&req->writes_pending, 1, __ATOMIC_ACQ_REL) == 0)
        resume(req);
}

void api_defer_write(struct api_request *req, struct api_table *t, uint32_t partition,
                     struct store_mutation *m, api_handler_fn complete)
{
    api_defer_writes(req, t, 1, &partition, &m, complete);
}

void api_defer_admin(struct api_request *req, api_handler_fn admin, api_handler_fn complete)
{
    struct api_server *s = req->srv;
    req->complete = complete;
    req->admin = admin;
    req->admin_next = NULL;
    req->state = API_REQ_WAITING;
    req->deferred_us = now_us();
    MHD_suspend_connection(req->conn);
    pthread_mutex_lock(&s->admin_lock);
    if (s->admin_stop || s->admin_len >= s->cfg->admin_queue_max) {
        int rc = s->admin_stop ? -CELLAR_ESHUTDOWN : -CELLAR_EBUSY;
        pthread_mutex_unlock(&s->admin_lock);
        req->status = rc;
        resume(req);
        return;
    }
    if (s->admin_tail)
        s->admin_tail->admin_next = req;
    else
        s->admin_head = req;
    s->admin_tail = req;
    s->admin_len++;
    pthread_cond_signal(&s->admin_cond);
    pthread_mutex_unlock(&s->admin_lock);
}

static void *admin_main(void *arg)
{
    struct api_server *s = arg;
    pthread_setname_np(pthread_self(), "api-admin");
    pthread_mutex_lock(&s->admin_lock);
    for (;;) {
        while (!s->admin_head && !s->admin_stop)
            pthread_cond_wait(&s->admin_cond, &s->admin_lock);
        struct api_request *req = s->admin_head;
        if (!req)
            break; /* stopping and drained */
        s->admin_head = req->admin_next;
        if (!s->admin_head)
            s->admin_tail = NULL;
        s->admin_len--;
        pthread_mutex_unlock(&s->admin_lock);
        req->admin(req);
        resume(req);
        pthread_mutex_lock(&s->admin_lock);
    }
    pthread_mutex_unlock(&s->admin_lock);
    return NULL;
}

/* --- Access ----------------------------------------------------------- */

/* The listener's address: the inherited socket's own, or the first address
 * listen_host resolves to. 0, or -CELLAR_EINVAL with err set. */
static int listen_address(const struct api_config *cfg, struct sockaddr_storage *ss, char *err,
                          size_t errlen)
{
    memset(ss, 0, sizeof(*ss));
    if (cfg->listen_fd >= 0) {
        socklen_t len = sizeof(*ss);
        if (getsockname(cfg->listen_fd, (struct sockaddr *)ss, &len) != 0) {
            snprintf(err, errlen, "cannot read the address of the socket passed by systemd: %s",
                     strerror(errno));
            return -CELLAR_EINVAL;
        }
        return 0;
    }
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(cfg->listen_host, NULL, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listen address %s: %s", cfg->listen_host,
                 gai_strerror(gai));
        return -CELLAR_EINVAL;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

static bool tls_configured(const struct api_config *cfg)
{
    return cfg->tls_cert_file[0] || cfg->tls_key_file[0];
}

/* Loads the TLS generation cfg names (NULL when HTTPS is off). */
static int load_tls(const struct api_config *cfg, struct api_tls **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!tls_configured(cfg))
        return 0;
    if (!cfg->tls_cert_file[0] || !cfg->tls_key_file[0]) {
        snprintf(err, errlen, "HTTPS needs both tls_cert_file and tls_key_file");
        return -CELLAR_EINVAL;
    }
    return api_tls_load(cfg->tls_cert_file, cfg->tls_key_file, out, err, errlen);
}

int api_config_check(const struct api_config *cfg, char *err, size_t errlen)
{
    struct api_auth *auth = NULL;
    struct api_tls *tls = NULL;
    int rc = api_auth_load(cfg->tokens_file, cfg->cluster_secret_file, &auth, err, errlen);
    if (rc < 0)
        goto out;
    if ((rc = load_tls(cfg, &tls, err, errlen)) < 0)
        goto out;
    struct sockaddr_storage ss;
    if ((rc = listen_address(cfg, &ss, err, errlen)) < 0)
        goto out;
    if (api_auth_token_count(auth) == 0 && !api_addr_is_loopback((struct sockaddr *)&ss)) {
        if (cfg->insecure) {
            log_warn("serving %s without tokens (--insecure): anyone who can reach the node "
                     "can read and change every table",
                     cfg->listen_fd >= 0 ? "the socket passed by systemd" : cfg->listen_host);
        } else {
            snprintf(err, errlen,
                     "refusing to serve %s without access tokens: anyone who can reach it could "
                     "read and change every table. Set tokens_file in the config (README.md, "
                     "\"Access\"), listen on 127.0.0.1, or pass --insecure to serve everyone "
                     "without authentication",
                     cfg->listen_fd >= 0 ? "the socket passed by systemd (not loopback)"
                                         : cfg->listen_host);
            rc = -CELLAR_EINVAL;
        }
    }
out:
    api_auth_free(auth);
    api_tls_free(tls);
    return rc;
}

static bool peer_is_loopback(struct api_request *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci && api_addr_is_loopback(ci->client_addr);
}

/* The credentials of "Authorization: Bearer <token>", or false. */
static bool bearer_token(struct api_request *req, struct api_bytes *out)
{
    const char *h = api_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    size_t len = strlen(h);
    while (len && h[len - 1] == ' ')
        len--;
    out->data = h;
    out->len = len;
    return len > 0;
}

static void reply_unauthorized(struct api_request *req, const char *challenge, const char *detail)
{
    struct MHD_Response *resp = api_problem_response(req, 401, "UNAUTHORIZED", detail);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
    api_reply_response(req, 401, resp);
}

static const char *role_name(enum api_role r)
{
    return r == API_ROLE_ADMIN ? "admin" : r == API_ROLE_WRITE ? "write" : "read";
}

bool api_authorize(struct api_request *req, enum api_perm perm, const struct api_bytes *table)
{
    struct api_server *s = req->srv;
    if (perm == API_PERM_PUBLIC)
        return true;
    const struct api_auth *auth = __atomic_load_n(&s->auth, __ATOMIC_ACQUIRE);
    struct api_bytes tok = {NULL, 0};
    bool presented = bearer_token(req, &tok);
    if (perm == API_PERM_INTERNAL) {
        if (!api_auth_has_secret(auth)) {
            api_reply_problem(req, 403, "FORBIDDEN",
                              "no cluster secret is configured: internal endpoints are closed");
            return false;
        }
        if (presented && api_auth_is_secret(auth, tok.data, tok.len))
            return true;
        reply_unauthorized(req, "Bearer realm=\"cellar-internal\"",
                           "internal endpoints accept only the cluster secret");
        return false;
    }
    if (api_auth_token_count(auth) == 0) {
        if (s->cfg->insecure || peer_is_loopback(req))
            return true;
        api_reply_problem(req, 403, "FORBIDDEN",
                          "this node has no access tokens configured and serves loopback "
                          "clients only");
        return false;
    }
    if ((perm == API_PERM_METRICS && !s->cfg->metrics_auth) ||
        (perm == API_PERM_READYZ && !s->cfg->readyz_auth))
        return true;
    if (!presented) {
        reply_unauthorized(req, "Bearer realm=\"cellar\"",
                           "this node needs a token: send Authorization: Bearer <token>");
        return false;
    }
    const struct api_token *t = api_auth_find(auth, tok.data, tok.len);
    if (!t) {
        reply_unauthorized(req, "Bearer realm=\"cellar\", error=\"invalid_token\"",
                           "the bearer token is not valid");
        return false;
    }
    req->token = t;
    enum api_role need = perm == API_PERM_ADMIN   ? API_ROLE_ADMIN
                         : perm == API_PERM_WRITE ? API_ROLE_WRITE
                                                  : API_ROLE_READ;
    if (api_token_role(t) < need) {
        api_reply_problem(req, 403, "FORBIDDEN", "token \"%s\" has the role %s; this needs %s",
                          api_token_name(t), role_name(api_token_role(t)), role_name(need));
        return false;
    }
    if (table && !api_token_allows_table(t, table->data, table->len)) {
        api_reply_problem(req, 403, "FORBIDDEN", "token \"%s\" may not use table \"%.*s\"",
                          api_token_name(t), (int)table->len, table->data);
        return false;
    }
    return true;
}

bool api_table_visible(struct api_request *req, const char *name, size_t len)
{
    return !req->token || api_token_allows_table(req->token, name, len);
}

/* --- MHD callbacks ------------------------------------------------------ */

static enum api_method parse_method(const char *m)
{
    static const struct {
        const char *name;
        enum api_method method;
    } methods[] = {
        {"GET", API_GET},       {"HEAD", API_HEAD},   {"PUT", API_PUT},         {"POST", API_POST},
        {"DELETE", API_DELETE}, {"PATCH", API_PATCH}, {"OPTIONS", API_OPTIONS},
    };
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(m, methods[i].name) == 0)
            return methods[i].method;
    }
    return 0;
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

static void dispatch(struct api_request *req)
{
    int rc = api_split_path(req);
    if (rc == -CELLAR_ETOOMANY) {
        api_reply_problem(req, 404, "NOT_FOUND", "no such route");
        return;
    }
    if (rc < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "the path has a malformed %%-escape");
        return;
    }
    struct api_bytes enc;
    rc = api_query(req, "key_encoding", &enc);
    if (rc < 0 || (rc == 1 && !(enc.len == 9 && memcmp(enc.data, "base64url", 9) == 0) &&
                   !(enc.len == 7 && memcmp(enc.data, "percent", 7) == 0))) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT",
                          "key_encoding must be base64url or percent");
        return;
    }
    req->key_base64url = rc == 1 && enc.len == 9;
    if (__atomic_load_n(&req->srv->stopping, __ATOMIC_SEQ_CST) &&
        !(req->n_segs == 1 && req->segs[0].len == 7 &&
          memcmp(req->segs[0].data, "healthz", 7) == 0)) {
        api_reply_problem(req, 503, "SHUTTING_DOWN", "the node is shutting down");
        return;
    }
    if (req->body_too_large) {
        api_reply_problem(req, 413, "TOO_LARGE", "the request body exceeds %zu bytes",
                          req->srv->cfg->max_body_bytes);
        return;
    }
    if (req->method == API_OPTIONS) {
        /* CORS preflight: answered for any path, before routing and auth. */
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (cors_origin(req)) {
            MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                                    "GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS");
            MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                    "Content-Type, If-Match, If-None-Match, Authorization");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        }
        api_reply_response(req, 204, resp);
        return;
    }
    api_route(req);
}

static enum MHD_Result add_header_bytes(void *cls, enum MHD_ValueKind kind, const char *key,
                                        const char *value)
{
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* Whether the request line and headers leave room in the connection's
 * memory (http_connection_memory_bytes) for the reply's headers. MHD
 * refuses a request that does not fit its read buffer, but one that fits
 * and leaves too little room would run and then have its reply dropped
 * with the connection; such a request is refused first, with 414. */
static bool request_fits(struct api_server *s, struct MHD_Connection *conn, const char *url)
{
    size_t bytes = strlen(url) + 32;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header_bytes, &bytes);
    return bytes + 1024 <= s->cfg->connection_memory_bytes / 2;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct api_server *s = cls;
    struct api_request *req = *con_cls;
    if (!req) {
        /* First call: set up only; answering now would cost keep-alive. */
        req = cellar_xcalloc(1, sizeof(*req));
        req->srv = s;
        req->conn = conn;
        req->url = url;
        req->method_name = method;
        req->method = parse_method(method);
        req->start_us = now_us();
        req->route = -1;
        req->partition = -1;
        __atomic_add_fetch(&s->inflight, 1, __ATOMIC_SEQ_CST);
        *con_cls = req;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        int64_t declared = 0;
        if (cl && cellar_parse_i64(cl, strlen(cl), &declared) == 0 &&
            (uint64_t)declared > s->cfg->max_body_bytes)
            req->body_too_large = true; /* answered once the body is skipped */
        if (cl &&
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
            /* Two framings: where this body ends is ambiguous, and so is
             * where the next request on the connection starts (request
             * smuggling). RFC 9112 6.3: refuse, then close. */
            struct MHD_Response *resp = api_problem_response(
                req, 400, "INVALID_ARGUMENT",
                "a request may not carry both Content-Length and Transfer-Encoding");
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
            api_reply_response(req, 400, resp);
        } else if (!request_fits(s, conn, url))
            api_reply_problem(req, 414, "URI_TOO_LONG",
                              "the request line and headers take more than half of "
                              "http_connection_memory_bytes (%zu)",
                              s->cfg->connection_memory_bytes);
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->body_too_large) {
            if (req->body.len + *upload_data_size > s->cfg->max_body_bytes) {
                req->body_too_large = true;
                cellar_buf_fini(&req->body);
            } else {
                cellar_buf_append(&req->body, upload_data, *upload_data_size);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    switch (__atomic_load_n(&req->state, __ATOMIC_ACQUIRE)) {
    case API_REQ_NEW:
        api_tracked_busy(api_deadlines_of(conn));
        req->dispatch_us = now_us();
        dispatch(req);
        return MHD_YES;
    case API_REQ_WAITING:
        return MHD_YES; /* spurious call while suspended */
    case API_REQ_RESUMED:
        req->complete(req);
        if (req->state != API_REQ_ANSWERED)
            api_reply_problem(req, 500, "INTERNAL", "the request produced no reply");
        return MHD_YES;
    case API_REQ_ANSWERED:
        return MHD_YES;
    }
    return MHD_YES;
}

static double ms_between(uint64_t from_us, uint64_t to_us)
{
    return from_us && to_us >= from_us ? (double)(to_us - from_us) / 1000.0 : 0.0;
}

/* One line for a request slower than slow_request_ms, with where the time
 * went: reading the request, the handler, for writes the queue, the group
 * commit and the wait to be resumed, for admin calls the admin thread, and
 * sending the reply. */
void api_log_slow(struct api_request *req, uint64_t end_us)
{
    uint64_t threshold = __atomic_load_n(&req->srv->cfg->slow_request_ms, __ATOMIC_RELAXED);
    if (!threshold || end_us - req->start_us < threshold * 1000u)
        return;
    char phases[256];
    size_t n = 0;
    n += (size_t)snprintf(phases + n, sizeof(phases) - n, "read %.1f",
                          ms_between(req->start_us, req->dispatch_us));
    if (req->deferred_us) {
        uint64_t taken = 0, committed = 0;
        for (size_t i = 0; i < req->n_writes; i++) {
            taken = req->writes[i].taken_us > taken ? req->writes[i].taken_us : taken;
            committed =
                req->writes[i].committed_us > committed ? req->writes[i].committed_us : committed;
        }
        n += (size_t)snprintf(phases + n, sizeof(phases) - n, ", handler %.1f",
                              ms_between(req->dispatch_us, req->deferred_us));
        if (req->n_writes)
            n += (size_t)snprintf(phases + n, sizeof(phases) - n,
                                  ", queued %.1f, commit %.1f, resume %.1f",
                                  ms_between(req->deferred_us, taken), ms_between(taken, committed),
                                  ms_between(committed, req->resumed_us));
        else
            n += (size_t)snprintf(phases + n, sizeof(phases) - n, ", admin %.1f",
                                  ms_between(req->deferred_us, req->resumed_us));
        n += (size_t)snprintf(phases + n, sizeof(phases) - n, ", complete %.1f",
                              ms_between(req->resumed_us, req->answered_us));
    } else {
        n += (size_t)snprintf(phases + n, sizeof(phases) - n, ", handler %.1f",
                              ms_between(req->dispatch_us, req->answered_us));
    }
    snprintf(phases + n, sizeof(phases) - n, ", send %.1f", ms_between(req->answered_us, end_us));
    log_warn("slow request: %s %.200s -> %u in %.1f ms (route %s, partition %lld; ms: %s)",
             req->method_name, req->url, req->http_status, ms_between(req->start_us, end_us),
             req->route >= 0 ? api_route_name(req->route) : "unmatched", (long long)req->partition,
             phases);
}

void api_request_fini(struct api_request *req)
{
    cellar_buf_fini(&req->body);
    for (size_t i = 0; i < req->n_writes; i++)
        store_outcome_fini(&req->writes[i].outcome);
    free(req->writes);
    for (size_t i = 0; i < req->n_allocs; i++)
        free(req->allocs[i]);
    free(req->allocs);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api_server *s = cls;
    struct api_request *req = *con_cls;
    api_tracked_idle(api_deadlines_of(conn));
    if (!req)
        return;
    *con_cls = NULL;
    uint64_t end_us = now_us();
    if (req->state == API_REQ_ANSWERED) {
        api_metrics_record(s->metrics, req->route, req->method, req->http_status,
                           end_us - req->start_us);
        api_log_slow(req, end_us);
    }
    api_request_fini(req);
    free(req);
    __atomic_sub_fetch(&s->inflight, 1, __ATOMIC_SEQ_CST);
}

/* The request line arrived: the request deadline starts. Returns the
 * initial request context (none: on_access makes it). */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    api_tracked_receiving(api_deadlines_of(conn));
    return NULL;
}

/* Leaves URLs and query strings as they came: the router decodes each
 * segment and value exactly once itself. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_warn("http: %s", line);
}

/* --- Lifecycle ---------------------------------------------------------- */

int api_server_start(const struct api_config *cfg, struct repl_registry *reg,
                     struct api_server **out)
{
    int rc = 0;
    struct addrinfo *ai = NULL;
    struct api_server *s = cellar_xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->reg = reg;
    s->metrics = api_metrics_new();
    pthread_mutex_init(&s->admin_lock, NULL);
    char err[600];
    if (api_auth_load(cfg->tokens_file, cfg->cluster_secret_file, &s->auth, err, sizeof(err)) < 0 ||
        load_tls(cfg, &s->tls, err, sizeof(err)) < 0) {
        log_err("%s", err);
        rc = -CELLAR_EINVAL;
        goto out;
    }
    api_tls_serve(s->tls);
    pthread_cond_init(&s->admin_cond, NULL);
    if (pthread_create(&s->admin_thread, NULL, admin_main, s) != 0) {
        rc = -CELLAR_ESYS;
        goto out;
    }
    s->admin_started = true;

    unsigned threads = cfg->threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    struct MHD_OptionItem opts[24];
    size_t n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL};
    if (threads > 1)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, threads, NULL};
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, cfg->connection_limit, NULL};
    if (cfg->connection_limit_per_ip)
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                            cfg->connection_limit_per_ip, NULL};
    if (s->tls) {
        flags |= MHD_USE_TLS;
        /* MHD reads this option's function from ptr_value in an array. */
        opts[n++] =
            (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)api_tls_retrieve};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                            "NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:-VERS-SSL3.0"};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                        (intptr_t)cfg->connection_memory_bytes, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    s->deadlines = api_deadlines_new((uint64_t)cfg->request_timeout_s * 1000u,
                                     (uint64_t)cfg->connection_timeout_s * 1000u);
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION,
                                        (intptr_t)api_deadlines_notify, s->deadlines};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_request_line, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)no_unescape, s};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
    if (cfg->listen_fd >= 0) {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd, NULL};
    } else {
        char port[8];
        snprintf(port, sizeof(port), "%u", cfg->listen_port);
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        int gai = getaddrinfo(cfg->listen_host, port, &hints, &ai);
        if (gai != 0) {
            log_err("cannot resolve listen address %s: %s", cfg->listen_host, gai_strerror(gai));
            rc = -CELLAR_EINVAL;
            goto out;
        }
        if (ai->ai_family == AF_INET6)
            flags |= MHD_USE_IPv6;
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    s->daemon = MHD_start_daemon(flags, cfg->listen_port, NULL, NULL, on_access, s,
                                 MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!s->daemon) {
        log_err("cannot start serving on %s:%u (the port is in use, or a line above says why)",
                cfg->listen_host, cfg->listen_port);
        rc = -CELLAR_ESYS;
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->listen_port;
    log_info("listening on %s:%u with %u HTTP threads (%s; %zu access tokens)",
             cfg->listen_fd >= 0 ? "(inherited)" : cfg->listen_host, s->port, threads,
             s->tls ? "HTTPS" : "plain HTTP", api_auth_token_count(s->auth));
out:
    if (ai)
        freeaddrinfo(ai);
    if (rc < 0) {
        api_server_stop(s);
        s = NULL;
    }
    *out = s;
    return rc;
}

void api_server_set_ready(struct api_server *s, bool ready)
{
    __atomic_store_n(&s->ready, ready, __ATOMIC_RELEASE);
}

uint16_t api_server_port(const struct api_server *s)
{
    return s->port;
}

void api_server_quiesce(struct api_server *s)
{
    if (s->daemon) {
        MHD_socket fd = MHD_quiesce_daemon(s->daemon);
        if (fd != MHD_INVALID_SOCKET && s->cfg->listen_fd < 0)
            close(fd);
    }
}

unsigned api_server_inflight(const struct api_server *s)
{
    return __atomic_load_n(&s->inflight, __ATOMIC_SEQ_CST);
}

static void admin_stop(struct api_server *s)
{
    if (!s->admin_started)
        return;
    pthread_mutex_lock(&s->admin_lock);
    s->admin_stop = true;
    pthread_cond_signal(&s->admin_cond);
    pthread_mutex_unlock(&s->admin_lock);
    pthread_join(s->admin_thread, NULL);
    s->admin_started = false;
}

int api_server_shutdown(struct api_server *s, uint64_t timeout_ms)
{
    api_server_set_ready(s, false);
    __atomic_store_n(&s->stopping, 1, __ATOMIC_SEQ_CST);
    api_server_quiesce(s);
    admin_stop(s); /* finishes the admin calls already queued */
    uint64_t deadline = cellar_mono_ms() + timeout_ms;
    while (api_server_inflight(s) > 0) {
        if (cellar_mono_ms() >= deadline) {
            log_warn("shutdown: %u requests still in flight after %llu ms", api_server_inflight(s),
                     (unsigned long long)timeout_ms);
            return -CELLAR_EBUSY;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

void api_server_stop(struct api_server *s)
{
    if (!s)
        return;
    admin_stop(s);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    api_deadlines_free(s->deadlines);
    pthread_cond_destroy(&s->admin_cond);
    pthread_mutex_destroy(&s->admin_lock);
    api_metrics_free(s->metrics);
    api_tls_serve(NULL);
    api_auth_free(s->auth);
    for (size_t i = 0; i < s->n_auth_gens; i++)
        api_auth_free(s->auth_gens[i]);
    free(s->auth_gens);
    api_tls_free(s->tls);
    for (size_t i = 0; i < s->n_tls_gens; i++)
        api_tls_free(s->tls_gens[i]);
    free(s->tls_gens);
    free(s);
}

/* --- Lifecycle additions (service/main.c and service/watchdog.c) -------- */

/* Swaps in the access files' and the certificate's current contents when
 * they changed; the old generations stay allocated (auth.h, tls.h). */
static int reload_files(struct api_server *s, char *err, size_t errlen)
{
    struct api_auth *auth = NULL;
    struct api_tls *tls = NULL;
    int rc = api_auth_load(s->cfg->tokens_file, s->cfg->cluster_secret_file, &auth, err, errlen);
    if (rc == 0 && s->tls)
        rc = load_tls(s->cfg, &tls, err, errlen);
    if (rc < 0) {
        api_auth_free(auth);
        return rc;
    }
    if (api_auth_same(auth, s->auth)) {
        api_auth_free(auth);
    } else {
        s->auth_gens = cellar_xrealloc(s->auth_gens, (s->n_auth_gens + 1) * sizeof(*s->auth_gens));
        s->auth_gens[s->n_auth_gens++] = s->auth;
        __atomic_store_n(&s->auth, auth, __ATOMIC_RELEASE);
        log_notice("reload: %zu access tokens in force", api_auth_token_count(auth));
    }
    if (tls && api_tls_same(tls, s->tls)) {
        api_tls_free(tls);
    } else if (tls) {
        s->tls_gens = cellar_xrealloc(s->tls_gens, (s->n_tls_gens + 1) * sizeof(*s->tls_gens));
        s->tls_gens[s->n_tls_gens++] = s->tls;
        s->tls = tls;
        api_tls_serve(tls);
        log_notice("reload: new HTTPS certificate in force");
    }
    return 0;
}

int api_server_reload(struct api_server *s, char *err, size_t errlen)
{
    return reload_files(s, err, errlen);
}

bool api_server_tls(const struct api_server *s)
{
    return s->tls != NULL;
}

int api_server_listen_fd(const struct api_server *s)
{
    const union MHD_DaemonInfo *info =
        s->daemon ? MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_LISTEN_FD) : NULL;
    return info ? info->listen_fd : -1;
}

unsigned api_server_connections(const struct api_server *s)
{
    const union MHD_DaemonInfo *info =
        s->daemon ? MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
    return info ? info->num_connections : 0;
}

/* --- Offline servers (tests/fuzz) ---------------------------------------- */

struct api_server *api_server_new_offline(const struct api_config *cfg, struct repl_registry *reg)
{
    struct api_server *s = cellar_xcalloc(1, sizeof(*s));
    s->own_cfg = *cfg;
    s->cfg = &s->own_cfg;
    s->reg = reg;
    s->metrics = api_metrics_new();
    pthread_mutex_init(&s->admin_lock, NULL);
    pthread_cond_init(&s->admin_cond, NULL);
    char err[256];
    int rc = api_auth_load("", "", &s->auth, err, sizeof(err)); /* no tokens: loopback rules */
    CELLAR_ASSERT(rc == 0);
    return s;
}

/*
 * forward.c - relaying a client request to the node that serves it, and
 * its answer back (internal.h, api_forward). The forwarder thread
 * (replication/forwarder.h) carries it; this file builds the request from
 * the client's (method, raw path and query, the headers that matter, the
 * body) and the reply from the peer's answer.
 *
 * What is passed on: Content-Type, Accept, If-Match and If-None-Match.
 * Not passed on: the client's Authorization (the token was checked here;
 * the peer gets the cluster secret) and Origin (CORS headers are this
 * node's to add). What comes back: the status, the body and every header
 * but the hop-by-hop ones and those MHD sets itself.
 *
 * Threads: api_forward and the completion on MHD workers; the forwarder's
 * done callback on the forwarder thread (it only resumes).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/internal.h"

static const char *const passed_on[] = {"Content-Type", "Accept", "If-Match", "If-None-Match",
                                        NULL};
static const char *const not_relayed[] = {
    "connection",           "keep-alive", "transfer-encoding", "content-length", "date",
    API_MAP_VERSION_HEADER, NULL};

static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct cellar_buf *b = cls;
    cellar_buf_append_byte(b, b->len ? '&' : '?');
    cellar_buf_append(b, key, strlen(key));
    if (value) {
        cellar_buf_append_byte(b, '=');
        cellar_buf_append(b, value, strlen(value));
    }
    return MHD_YES;
}

struct query_filter {
    struct cellar_buf *b;
    const char *const *drop;
};

static enum MHD_Result add_kept_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct query_filter *qf = cls;
    for (size_t i = 0; qf->drop && qf->drop[i]; i++) {
        if (strcmp(qf->drop[i], key) == 0)
            return MHD_YES;
    }
    return add_query_arg(qf->b, kind, key, value);
}

char *api_request_target_with(struct api_request *req, const char *const *drop, const char *extra)
{
    struct cellar_buf q = {0};
    struct query_filter qf = {&q, drop};
    api_query_each(req, add_kept_arg, &qf);
    if (extra && *extra) {
        cellar_buf_append_byte(&q, q.len ? '&' : '?');
        cellar_buf_append(&q, extra, strlen(extra));
    }
    size_t plen = strlen(req->url);
    char *t = cellar_xmalloc(plen + q.len + 1);
    memcpy(t, req->url, plen);
    if (q.len)
        memcpy(t + plen, q.data, q.len);
    t[plen + q.len] = '\0';
    cellar_buf_fini(&q);
    return t;
}

char *api_request_target(struct api_request *req)
{
    return api_request_target_with(req, NULL, NULL);
}

/* Forwarder thread: the answer (or its absence) is in; the worker replies. */
static void on_answer(struct repl_forward *f)
{
    api_resume(f->arg);
}

/* Forwarder thread: one sub-request is answered; the last resumes. */
static void on_sub_answer(struct repl_forward *f)
{
    struct api_request *req = f->arg;
    if (__atomic_sub_fetch(&req->fanout_pending, 1, __ATOMIC_ACQ_REL) == 0)
        api_resume(req);
}

struct repl_forward *api_sub_new(struct api_request *req, const char *addr, char *target,
                                 const char *body, size_t len)
{
    struct repl_forward *f = cellar_xcalloc(1, sizeof(*f));
    snprintf(f->method, sizeof(f->method), "%s", req->method_name);
    snprintf(f->addr, sizeof(f->addr), "%s", addr);
    f->target = target;
    f->headers = curl_slist_append(NULL, "Content-Type: application/json");
    f->body = body;
    f->body_len = len;
    f->timeout_ms = req->srv->cluster.cfg->forward_wait_ms;
    f->done = on_sub_answer;
    f->arg = req;
    f->batchable = true;
    return f;
}

void api_fanout(struct api_request *req, struct repl_forward **subs, size_t n, api_handler_fn merge)
{
    CELLAR_ASSERT(n > 0);
    /* A later round (a scan page that hops again): the last one's are done. */
    for (size_t i = 0; i < req->n_subs; i++) {
        repl_forward_fini(req->subs[i]);
        free(req->subs[i]);
    }
    req->subs = subs;
    req->n_subs = n;
    req->fanout_pending = n;
    api_suspend(req, merge);
    for (size_t i = 0; i < n; i++)
        repl_forwarder_submit(req->srv->cluster.forwarder, subs[i]);
}

bool api_sub_failed(struct api_request *req, const struct repl_forward *f)
{
    if (f->error == 0 && f->status == 200)
        return false;
    if (f->error == -CELLAR_EUNAVAIL || (f->error && (req->method & (API_GET | API_HEAD)))) {
        api_reply_problem(req, 503, "NO_PRIMARY", "%s did not answer; retry shortly", f->addr);
    } else if (f->error) {
        api_reply_problem(req, 504, "OUTCOME_UNKNOWN",
                          "%s failed after it received its part of the request: it may or may "
                          "not have taken effect",
                          f->addr);
    } else {
        /* The node's own refusal, as it gave it. */
        size_t len = 0;
        char *body = cellar_buf_steal(&((struct repl_forward *)f)->body_out, &len);
        struct MHD_Response *resp = body ? api_response(req, len, body, MHD_RESPMEM_MUST_FREE)
                                         : api_response(req, 0, "", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/problem+json");
        if (f->status == 503 || f->status == 429)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        api_reply_response(req, (unsigned)f->status, resp);
    }
    return true;
}

static bool relayed(const char *name)
{
    for (size_t i = 0; not_relayed[i]; i++) {
        if (strcasecmp(name, not_relayed[i]) == 0)
            return false;
    }
    return true;
}

/* A header line of the peer's answer onto the reply (a line too long
 * for these buffers is not relayed). */
static bool add_relayed(const char *name, size_t nlen, const char *value, size_t vlen, void *arg)
{
    char n[128], v[1024];
    if (nlen >= sizeof(n) || vlen >= sizeof(v))
        return true;
    memcpy(n, name, nlen);
    n[nlen] = '\0';
    memcpy(v, value, vlen);
    v[vlen] = '\0';
    if (relayed(n))
        MHD_add_response_header(arg, n, v);
    return true;
}

struct header_lookup {
    const char *name;
    char value[1024];
    bool found;
};

static bool find_header(const char *name, size_t nlen, const char *value, size_t vlen, void *arg)
{
    struct header_lookup *h = arg;
    if (nlen != strlen(h->name) || strncasecmp(name, h->name, nlen) != 0 ||
        vlen >= sizeof(h->value))
        return true;
    memcpy(h->value, value, vlen);
    h->value[vlen] = '\0';
    h->found = true;
    return false;
}

/* The peer's answer, relayed as it came (but for hop-by-hop headers). */
static void relay_answer(struct api_request *req)
{
    struct repl_forward *f = req->forward;
    size_t len = 0;
    char *body = cellar_buf_steal(&f->body_out, &len);
    struct MHD_Response *resp = body ? api_response(req, len, body, MHD_RESPMEM_MUST_FREE)
                                     : api_response(req, 0, "", MHD_RESPMEM_PERSISTENT);
    api_header_lines(f->head.data, f->head.len, add_relayed, resp);
    api_reply_response(req, (unsigned)f->status, resp);
}

static void forward_done(struct api_request *req)
{
    struct repl_forward *f = req->forward;
    if (f->error == 0 && f->status == 421 && req->map_retries == 0) {
        /* The peer is not the primary: this node's map is stale. Once a
         * newer one is here the request is routed again, once. */
        req->map_retries++;
        api_hold_for_map(req, req->relayed_on_map);
        return;
    }
    if (f->stale && (f->error == -CELLAR_EUNAVAIL || (req->method & (API_GET | API_HEAD)))) {
        /* Its partition's primary changed while it was out, and a read,
         * or a write surely not sent, may go again: routed on the newer
         * map. A sent write is of unknown outcome, below. */
        api_route_again(req);
        return;
    }
    if (f->error == 0 && f->status == 421) {
        api_reply_problem(req, 503, "NO_PRIMARY",
                          "%s is no longer the partition's primary and no newer map names "
                          "another; retry shortly",
                          f->addr);
        return;
    }
    if (f->error == -CELLAR_EUNAVAIL && strcmp(req->scratch, "NO_PRIMARY") == 0) {
        /* Surely not sent (the primary could not be reached): held until
         * a newer map names another primary, then sent there, within
         * forward_wait_ms in all. */
        api_hold_for_map(req, req->relayed_on_map);
        return;
    }
    if (f->error == -CELLAR_EUNAVAIL || (f->error && (req->method & (API_GET | API_HEAD)))) {
        api_reply_problem(req, 503, (const char *)req->scratch, "%s did not answer; retry shortly",
                          f->addr);
        return;
    }
    if (f->error) {
        api_reply_problem(req, 504, "OUTCOME_UNKNOWN",
                          "the primary %s failed after it received the request: it may or may "
                          "not have taken effect",
                          f->addr);
        return;
    }
    /* A table change the meta server made: answered once it is in force
     * here too. */
    struct header_lookup h = {.name = API_MAP_VERSION_HEADER};
    api_header_lines(f->head.data, f->head.len, find_header, &h);
    api_wait_map_version(req, h.found ? strtoull(h.value, NULL, 10) : 0, relay_answer);
}

/* api_forward_to and api_forward_to_primary; table (NULL: not a data
 * request) and part say which partition's primary addr is. */
static void relay(struct api_request *req, const char *addr, const char *unreached_code,
                  uint64_t timeout_ms, const struct api_bytes *table, uint32_t part)
{
    struct api_server *s = req->srv;
    if (!s->cluster.forwarder) {
        api_reply_problem(req, 503, unreached_code, "this node cannot reach %s", addr);
        return;
    }
    struct repl_forward *f = cellar_xcalloc(1, sizeof(*f));
    /* A HEAD is asked as a GET: the answer's Content-Length is then the
     * body's, and MHD sends no body for the client's HEAD. */
    snprintf(f->method, sizeof(f->method), "%s",
             req->method == API_HEAD ? "GET" : req->method_name);
    snprintf(f->addr, sizeof(f->addr), "%s", addr);
    f->target = api_request_target(req);
    if (!api_header(req, MHD_HTTP_HEADER_CONTENT_TYPE))
        f->headers = curl_slist_append(f->headers, "Content-Type:"); /* none, not curl's */
    for (size_t i = 0; passed_on[i]; i++) {
        const char *v = api_header(req, passed_on[i]);
        if (!v)
            continue;
        size_t n = strlen(passed_on[i]) + strlen(v) + 3;
        char *line = cellar_xmalloc(n);
        snprintf(line, n, "%s: %s", passed_on[i], v);
        f->headers = curl_slist_append(f->headers, line);
        free(line);
    }
    f->body = req->body.data;
    f->body_len = req->body.len;
    f->timeout_ms = timeout_ms;
    f->done = on_answer;
    f->arg = req;
    /* A request for a partition's primary may share an envelope; table
     * changes for the meta server go alone (they take their time). */
    f->batchable = strcmp(unreached_code, "NO_PRIMARY") == 0;
    if (table && table->len < sizeof(f->table)) {
        memcpy(f->table, table->data, table->len);
        f->table[table->len] = '\0';
        f->partition = part;
    }
    req->scratch = (void *)unreached_code;
    req->forward = f;
    req->relayed_on_map = repl_registry_map_version(api_registry(req));
    api_suspend(req, forward_done);
    repl_forwarder_submit(s->cluster.forwarder, f);
}

void api_forward_to(struct api_request *req, const char *addr, const char *unreached_code,
                    uint64_t timeout_ms)
{
    relay(req, addr, unreached_code, timeout_ms, NULL, 0);
}

void api_forward_to_primary(struct api_request *req, const char *addr, uint32_t part)
{
    relay(req, addr, "NO_PRIMARY", req->srv->cluster.cfg->forward_wait_ms,
          &req->segs[API_SEG_TABLE], part);
}

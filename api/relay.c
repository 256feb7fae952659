/*
 * relay.c - POST /internal/v1/relay: the requests another node packed in
 * one envelope (replication/envelope.h), each served as if it had come
 * alone with X-Cellar-Forwarded, their answers sent back in order in one
 * envelope once the last is answered.
 *
 * Each carried request is an api_request of its own with no connection:
 * its headers and query are read from what the envelope carried
 * (api_header, api_query_raw), its answer is kept rather than queued
 * (api_response, api_reply_response), and its suspensions count in the
 * envelope's relay->pending (defer.c). While any of them waits, the
 * envelope's own connection is suspended; the last to resume resumes it,
 * and its worker runs their completions.
 *
 * Threads: MHD workers, on the envelope's connection; writers, the admin
 * thread and the member thread only resume (defer.c).
 */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "replication/envelope.h"

static char *copy_str(struct api_request *req, const char *p, size_t len)
{
    char *s = api_alloc(req, len + 1);
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

static bool keep_header(const char *name, size_t nlen, const char *value, size_t vlen, void *arg)
{
    struct api_request *sub = arg;
    struct api_relayed *r = sub->relayed;
    r->header_names[r->n_headers] = copy_str(sub, name, nlen);
    r->header_values[r->n_headers] = copy_str(sub, value, vlen);
    r->n_headers++;
    return true;
}

/* The carried header lines, "Name: value\r\n" each, as the request's. */
static void parse_headers(struct api_request *sub, const char *p, size_t len)
{
    struct api_relayed *r = sub->relayed;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += p[i] == '\n';
    r->header_names = api_alloc(sub, lines * sizeof(char *));
    r->header_values = api_alloc(sub, lines * sizeof(char *));
    api_header_lines(p, len, keep_header, sub);
}

/* Splits a query string ("a=1&b&c=") into the request's parameters, left
 * encoded, as MHD keeps them for this server (no_unescape). */
static void parse_query(struct api_request *sub, const char *q, size_t len)
{
    struct api_relayed *r = sub->relayed;
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += q[i] == '&';
    r->query_names = api_alloc(sub, cap * sizeof(char *));
    r->query_values = api_alloc(sub, cap * sizeof(char *));
    const char *end = q + len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *item_end = amp ? amp : end;
        if (item_end > q) {
            const char *eq = memchr(q, '=', (size_t)(item_end - q));
            r->query_names[r->n_query] = copy_str(sub, q, (size_t)((eq ? eq : item_end) - q));
            r->query_values[r->n_query] =
                eq ? copy_str(sub, eq + 1, (size_t)(item_end - eq - 1)) : NULL;
            r->n_query++;
        }
        q = amp ? amp + 1 : end;
    }
}

/* One carried request, from its four fields. */
static struct api_request *carried(struct api_request *env, const char *const *f, const size_t *len)
{
    struct api_request *sub = cellar_xcalloc(1, sizeof(*sub));
    sub->srv = env->srv;
    sub->envelope = env;
    sub->relayed = api_alloc(sub, sizeof(*sub->relayed));
    memset(sub->relayed, 0, sizeof(*sub->relayed));
    sub->method_name = copy_str(sub, f[0], len[0]);
    sub->method = api_parse_method(sub->method_name);
    const char *qm = memchr(f[1], '?', len[1]);
    size_t path_len = qm ? (size_t)(qm - f[1]) : len[1];
    sub->url = copy_str(sub, f[1], path_len);
    if (qm)
        parse_query(sub, qm + 1, len[1] - path_len - 1);
    parse_headers(sub, f[2], len[2]);
    if (len[3])
        cellar_buf_append(&sub->body, f[3], len[3]);
    sub->start_us = cellar_mono_us();
    sub->route = -1;
    sub->partition = -1;
    return sub;
}

/* A carried request's handler or completion returned: it has replied or
 * handed itself on. */
static void ran(struct api_request *sub)
{
    if (!sub->deferred && sub->state != API_REQ_ANSWERED)
        api_reply_problem(sub, 500, "INTERNAL", "the request produced no reply");
}

/* Every carried request is answered: their answers, in order. */
static void answer(struct api_request *req)
{
    struct api_relay *rl = req->relay;
    struct cellar_buf out = {0};
    uint64_t now = cellar_mono_us();
    for (size_t i = 0; i < rl->n_subs; i++) {
        struct api_request *sub = rl->subs[i];
        char status[8];
        int n = snprintf(status, sizeof(status), "%03u", sub->http_status);
        repl_envelope_put(&out, status, (size_t)n);
        repl_envelope_put(&out, sub->relayed->head.data, sub->relayed->head.len);
        repl_envelope_put(&out, sub->relayed->body.data, sub->relayed->body.len);
        api_metrics_record(api_metrics(req), sub->route, sub->method, sub->http_status,
                           now - sub->start_us);
        api_log_slow(sub, now);
    }
    size_t len = 0;
    char *body = cellar_buf_steal(&out, &len);
    struct MHD_Response *resp = body ? api_response(req, len, body, MHD_RESPMEM_MUST_FREE)
                                     : api_response(req, 0, "", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    api_reply_response(req, 200, resp);
}

static void run_resumed(struct api_request *req);

/* The envelope's worker, holding one count of pending: answers when every
 * carried request is answered; otherwise waits for the last of those
 * handed on to resume the envelope. */
static void go_on(struct api_request *req)
{
    struct api_relay *rl = req->relay;
    bool all = true;
    for (size_t i = 0; i < rl->n_subs && all; i++)
        all = __atomic_load_n(&rl->subs[i]->state, __ATOMIC_ACQUIRE) == API_REQ_ANSWERED;
    if (all) {
        answer(req);
        return;
    }
    api_suspend(req, run_resumed);
    if (__atomic_sub_fetch(&rl->pending, 1, __ATOMIC_ACQ_REL) == 0)
        api_resume(req);
}

/* The envelope resumed: the completions of the carried requests that
 * were resumed. */
static void run_resumed(struct api_request *req)
{
    struct api_relay *rl = req->relay;
    __atomic_add_fetch(&rl->pending, 1, __ATOMIC_ACQ_REL);
    for (size_t i = 0; i < rl->n_subs; i++) {
        struct api_request *sub = rl->subs[i];
        if (__atomic_load_n(&sub->state, __ATOMIC_ACQUIRE) != API_REQ_RESUMED)
            continue;
        sub->deferred = false;
        sub->complete(sub);
        ran(sub);
    }
    go_on(req);
}

void api_h_internal_relay(struct api_request *req)
{
    struct repl_envelope_reader r;
    const char *f[REPL_ENVELOPE_REQUEST_FIELDS];
    size_t len[REPL_ENVELOPE_REQUEST_FIELDS];
    size_t fields = 0;
    bool bad = false;
    repl_envelope_reader_init(&r, req->body.data, req->body.len);
    while (repl_envelope_get(&r, &f[0], &len[0], &bad))
        fields++;
    if (bad || fields == 0 || fields % REPL_ENVELOPE_REQUEST_FIELDS) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT",
                          "the envelope is not a whole number of requests");
        return;
    }
    struct api_relay *rl = api_alloc(req, sizeof(*rl));
    rl->n_subs = fields / REPL_ENVELOPE_REQUEST_FIELDS;
    rl->subs = api_alloc(req, rl->n_subs * sizeof(*rl->subs));
    rl->pending = 1; /* this worker's, while it runs them */
    repl_envelope_reader_init(&r, req->body.data, req->body.len);
    for (size_t i = 0; i < rl->n_subs; i++) {
        for (size_t k = 0; k < REPL_ENVELOPE_REQUEST_FIELDS; k++)
            repl_envelope_get(&r, &f[k], &len[k], &bad);
        rl->subs[i] = carried(req, f, len);
    }
    req->relay = rl; /* from here on api_request_fini frees them */
    for (size_t i = 0; i < rl->n_subs; i++) {
        struct api_request *sub = rl->subs[i];
        sub->dispatch_us = cellar_mono_us();
        api_dispatch(sub);
        ran(sub);
    }
    go_on(req);
}

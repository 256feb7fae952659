/*
 * server.c - the libmicrohttpd daemon, the life of a request and the
 * server's lifecycle (start, readiness, quiesce, shutdown, reload).
 *
 * Design (c-craft.md part B): MHD_USE_INTERNAL_POLLING_THREAD | EPOLL with a
 * thread pool, suspend/resume allowed. The access handler never answers on
 * its first call for a request (that would cost keep-alive) unless the
 * request must be refused before its body (framing, size): the first call
 * creates the request context; body chunks are appended up to
 * max_body_bytes; the request is dispatched to the router on the final
 * call, and a deferred request's completion runs when MHD calls again after
 * resume (defer.c). URL unescaping is turned off, so the router sees raw
 * segments and decodes each exactly once (%2F stays data).
 *
 * Invariant: a request context is freed only in the completion
 * notification.
 *
 * Threads: MHD workers run the callbacks; the main thread starts,
 * quiesces, reloads and stops. `ready`, `stopping` and `inflight` are
 * atomics.
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

/* --- Start-up checks ---------------------------------------------------- */

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

/* --- MHD callbacks ------------------------------------------------------ */

enum api_method api_parse_method(const char *m)
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

void api_dispatch(struct api_request *req)
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
        struct MHD_Response *resp = api_response(req, 0, "", MHD_RESPMEM_PERSISTENT);
        if (api_cors_origin(req)) {
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
        req->method = api_parse_method(method);
        req->start_us = cellar_mono_us();
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
        req->dispatch_us = cellar_mono_us();
        req->deferred = false;
        api_dispatch(req);
        return MHD_YES;
    case API_REQ_WAITING:
        return MHD_YES; /* spurious call while suspended */
    case API_REQ_RESUMED:
        req->deferred = false;
        req->complete(req);
        /* Answered, or handed on again (a scan page that hops once more,
         * a request routed again after a newer map). */
        if (!req->deferred && req->state != API_REQ_ANSWERED)
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

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api_server *s = cls;
    struct api_request *req = *con_cls;
    api_tracked_idle(api_deadlines_of(conn));
    if (!req)
        return;
    *con_cls = NULL;
    uint64_t end_us = cellar_mono_us();
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
                     const struct api_cluster *cluster, struct api_server **out)
{
    int rc = 0;
    struct addrinfo *ai = NULL;
    struct api_server *s = cellar_xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->reg = reg;
    if (cluster)
        s->cluster = *cluster;
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
    if ((rc = api_admin_start(s)) < 0)
        goto out;

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

void api_server_set_member(struct api_server *s, struct repl_member *m)
{
    __atomic_store_n(&s->member, m, __ATOMIC_RELEASE);
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

int api_server_shutdown(struct api_server *s, uint64_t timeout_ms)
{
    api_server_set_ready(s, false);
    __atomic_store_n(&s->stopping, 1, __ATOMIC_SEQ_CST);
    api_server_quiesce(s);
    api_admin_stop(s); /* finishes the admin calls already queued */
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
    api_admin_stop(s);
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

/*
 * forwarder.c - the forwarder thread and its libcurl multi handle
 * (forwarder.h).
 *
 * Design: submitters append to `queue` under `mu` and wake the thread
 * through an eventfd when it waits (`polling`; a busy thread looks at the
 * queue before it waits); the thread moves queued requests into the multi
 * handle and completes each finished transfer. The multi handle keeps a
 * connection cache, so consecutive requests to a peer reuse a kept-alive
 * connection.
 *
 * Events: the thread drives libcurl through its socket interface
 * (curl_multi_socket_action), with an epoll set of its own: libcurl says
 * which sockets to watch (on_socket) and when its next timeout is due
 * (on_timer), and the thread hands it only the sockets epoll found ready.
 * A wakeup then costs what is ready, not a look at every transfer in
 * flight (curl_multi_perform checks each one's socket, one poll call per
 * transfer, however many are waiting for a slow primary's answer).
 * A kept-alive connection stays in the epoll set between its transfers
 * (libcurl says "remove" at the end of each and "watch for input" at the
 * start of the next: two epoll_ctl calls per exchange for nothing); the
 * thread takes it out only when an event comes while libcurl does not
 * want it (the peer closed it). This holds only for the sockets the
 * thread sees libcurl open and close (on_open, on_close: so none keeps a
 * stale entry once its number is reused); any other socket libcurl
 * watches (a resolver's) is added and removed as libcurl says.
 *
 * Whether a failed request may have reached the peer decides between
 * "not reached" (nothing was sent: a connect failure) and "outcome
 * unknown" (the request went out and no answer came).
 *
 * Stale relays: a request for one partition went to the primary the
 * node's map named. When the map changes while it is out (a failover, a
 * move), the thread looks at each relay in flight (stale_relays) and ends
 * at once those whose partition's primary is now another node or none
 * and which went to a node no longer among the partition's replicas,
 * rather than let them wait out their timeout on a primary that may be
 * cut off (one that handed its role on and stayed a secondary answers:
 * those relays go on). The caller routes a read, or a write surely not
 * sent, again, and answers a sent write as of unknown outcome. A relay
 * inside an envelope ends alone; the envelope goes on for the others.
 *
 * Requests queued for one peer at the same moment, when batchable, go in
 * envelopes (start_queued): under load the queue fills while the thread
 * is busy, so one exchange carries what arrived meanwhile, and an idle
 * forwarder sends a lone request at once as it always did.
 *
 * Threads: submit from any thread; the rest on the forwarder thread.
 * `mu` guards queue, stop and polling; the per-peer figures have their own lock.
 */
#include "replication/forwarder.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "replication/envelope.h"
#include "replication/registry.h"

/* Easy handles kept for reuse: making one and freeing it costs more than
 * resetting it. */
#define SPARE_HANDLES 256

/* Envelopes: a request whose body is larger goes alone; an envelope holds
 * at most ENVELOPE_MEMBERS requests and ENVELOPE_BYTES of their bodies
 * (well under any node's max_body_bytes default; a peer that refuses one
 * as too large gets its requests one by one). */
#define ENVELOPE_MEMBER_BYTES 16384
#define ENVELOPE_BYTES 65536
#define ENVELOPE_MEMBERS 64

/* Events taken from epoll per wait, and the longest wait when libcurl has
 * no timeout due (a stop or a submit wakes the thread anyway). */
#define EVENTS_MAX 64
#define IDLE_WAIT_MS 1000
/* With relays in flight, the map is looked at least this often. */
#define MAP_CHECK_MS 100

/* fw->watch: the socket is in epfd for these events (EPOLLIN, EPOLLOUT),
 * and whether libcurl wants them now (WATCH_WANTED; a kept-alive
 * connection between transfers is in epfd without it). */
#define WATCH_IN_SET 0x80000000u
#define WATCH_WANTED 0x40000000u
/* Opened by on_open, so on_close will say when it is closed. */
#define WATCH_OURS 0x20000000u

struct repl_forwarder {
    const struct repl_peer_config *peer;
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t mu;
    struct repl_forward *queue, *queue_tail;
    bool stop;
    bool polling;          /* the thread waits (or is about to) in epoll_wait */
    int epfd;              /* the sockets libcurl watches, and wakefd */
    int wakefd;            /* eventfd: submitters and stop wake the thread */
    uint64_t timer_due_us; /* libcurl's next timeout (0: none; forwarder thread only) */
    uint32_t *watch;       /* by socket: what epfd watches it for (WATCH_*; 0: not in it) */
    size_t n_watch;
    struct repl_registry *reg;   /* the node's map (NULL: no stale relays) */
    uint64_t map_checked;        /* the map version stale_relays last looked at */
    struct repl_forward *active; /* in the multi handle (forwarder thread only) */
    CURL *spare[SPARE_HANDLES];  /* reset handles to reuse (forwarder thread only) */
    size_t n_spare;
    struct repl_peer_figures *figures;
    uint64_t envelopes, carried; /* atomic: written by the forwarder thread */
    char auth[REPL_SECRET_MAX + 32];
};

void repl_forward_fini(struct repl_forward *f)
{
    free(f->target);
    f->target = NULL;
    curl_slist_free_all(f->headers);
    f->headers = NULL;
    cellar_buf_fini(&f->head);
    cellar_buf_fini(&f->body_out);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct repl_forward *f = arg;
    cellar_buf_append(&f->body_out, data, size * n);
    return size * n;
}

/* Keeps the final answer's header lines (a 100 Continue's are dropped). */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct repl_forward *f = arg;
    size_t len = size * n;
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        cellar_buf_reset(&f->head);
        return len;
    }
    if (len > 2)
        cellar_buf_append(&f->head, data, len);
    return len;
}

static void finish(struct repl_forwarder *fw, struct repl_forward *f)
{
    f->ended_us = cellar_mono_us();
    if (f->easy) {
        curl_multi_remove_handle(fw->multi, f->easy);
        if (fw->n_spare < SPARE_HANDLES) {
            curl_easy_reset(f->easy);
            fw->spare[fw->n_spare++] = f->easy;
        } else {
            curl_easy_cleanup(f->easy);
        }
        f->easy = NULL;
        for (struct repl_forward **p = &fw->active; *p; p = &(*p)->next) {
            if (*p == f) {
                *p = f->next;
                break;
            }
        }
        f->next = NULL;
    }
    if (!f->carrier)
        repl_peer_figures_note(fw->figures, f->addr, f->error != 0, f->ended_us - f->started_us);
    f->done(f);
}

/* Forwarder thread: a connection (new or kept alive) is ready and the
 * request is about to be sent on it. From here a failure leaves its fate
 * unknown, even when libcurl then finds the kept-alive connection dead and
 * fails to make a new one: the peer may have taken it and died. */
static int on_prereq(void *arg, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port)
{
    struct repl_forward *f = arg;
    f->sent = true;
    return CURL_PREREQFUNC_OK;
}

static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *address);
static int on_close(void *arg, curl_socket_t s);

static void start_one(struct repl_forwarder *fw, struct repl_forward *f)
{
    char url[REPL_ADDR_MAX + 16];
    snprintf(url, sizeof(url), "http://%s", f->addr);
    size_t ulen = strlen(url) + strlen(f->target) + 1;
    char *full = cellar_xmalloc(ulen);
    snprintf(full, ulen, "%s%s", url, f->target);
    f->headers = curl_slist_append(f->headers, fw->auth);
    f->headers = curl_slist_append(f->headers, "X-Cellar-Forwarded: 1");
    f->headers = curl_slist_append(f->headers, "Expect:");
    CURL *c = fw->n_spare ? fw->spare[--fw->n_spare] : curl_easy_init();
    f->easy = c;
    f->started_us = cellar_mono_us();
    if (!c) {
        free(full);
        f->error = -CELLAR_EUNAVAIL;
        finish(fw, f);
        return;
    }
    curl_easy_setopt(c, CURLOPT_URL, full);
    free(full); /* libcurl copies the URL */
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, f->method);
    if (strcmp(f->method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (f->body_len || strcmp(f->method, "PUT") == 0 || strcmp(f->method, "POST") == 0 ||
        strcmp(f->method, "PATCH") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->body ? f->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->body_len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, f->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)f->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(c, CURLOPT_PRIVATE, f);
    f->sent = false;
    curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(c, CURLOPT_PREREQDATA, f);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* "." and ".." are keys, not directories */
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_open);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, fw);
    curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, on_close);
    curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, fw);
    repl_peer_route(c, fw->peer);
    curl_multi_add_handle(fw->multi, c);
    f->next = fw->active;
    fw->active = f;
}

/* A transfer ended: its answer, or whether the peer may have seen it. */
static void complete(struct repl_forwarder *fw, CURL *c, CURLcode cc)
{
    struct repl_forward *f = NULL;
    curl_easy_getinfo(c, CURLINFO_PRIVATE, (char **)&f);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
        f->error = 0;
    } else {
        /* The request may have left once a connection was ready for it
         * (on_prereq), whatever the error says after that. */
        bool reached = f->sent;
        f->error = reached ? -CELLAR_EOUTCOME : -CELLAR_EUNAVAIL;
        log_debug("forward %s %s to %s: %s (%s)", f->method, f->target, f->addr,
                  curl_easy_strerror(cc), reached ? "outcome unknown" : "not reached");
    }
    finish(fw, f);
}

/* --- Envelopes ------------------------------------------------------------ */

struct envelope {
    struct repl_forward carrier; /* POST /internal/v1/relay */
    struct repl_forwarder *fw;
    struct repl_forward *members[ENVELOPE_MEMBERS];
    size_t n;
    size_t bytes; /* of the members' bodies */
    struct cellar_buf body;
};

static bool is_read(const struct repl_forward *f)
{
    return strcmp(f->method, "GET") == 0 || strcmp(f->method, "HEAD") == 0;
}

static bool may_join(const struct envelope *e, const struct repl_forward *f)
{
    const struct repl_forward *first = e->members[0];
    return f->batchable && f->body_len <= ENVELOPE_MEMBER_BYTES && e->n < ENVELOPE_MEMBERS &&
           e->bytes + f->body_len <= ENVELOPE_BYTES && strcmp(f->addr, first->addr) == 0 &&
           is_read(f) == is_read(first);
}

/* Appends a request's four fields. Header lines without a value (those
 * that tell libcurl to leave a header out) are left out. */
static void pack(struct envelope *e, struct repl_forward *f)
{
    struct cellar_buf head = {0};
    for (const struct curl_slist *h = f->headers; h; h = h->next) {
        const char *colon = strchr(h->data, ':');
        if (!colon || !colon[1])
            continue;
        cellar_buf_append(&head, h->data, strlen(h->data));
        cellar_buf_append(&head, "\r\n", 2);
    }
    repl_envelope_put(&e->body, f->method, strlen(f->method));
    repl_envelope_put(&e->body, f->target, strlen(f->target));
    repl_envelope_put(&e->body, head.data, head.len);
    repl_envelope_put(&e->body, f->body, f->body_len);
    cellar_buf_fini(&head);
    e->members[e->n++] = f;
    e->bytes += f->body_len;
    if (f->timeout_ms > e->carrier.timeout_ms)
        e->carrier.timeout_ms = f->timeout_ms;
}

static void envelope_free(struct envelope *e)
{
    repl_forward_fini(&e->carrier);
    cellar_buf_fini(&e->body);
    free(e);
}

/* The answers, in order, into the members; false (members untouched)
 * when the envelope's answer is not one whole answer for each. */
static bool unpack(struct envelope *e)
{
    const struct repl_forward *c = &e->carrier;
    struct repl_envelope_reader r;
    const char *f;
    size_t len, fields = 0;
    bool bad = false;
    repl_envelope_reader_init(&r, c->body_out.data, c->body_out.len);
    while (repl_envelope_get(&r, &f, &len, &bad)) {
        if (fields % REPL_ENVELOPE_ANSWER_FIELDS == 0 &&
            (len != 3 || f[0] < '1' || f[0] > '5' || f[1] < '0' || f[1] > '9' || f[2] < '0' ||
             f[2] > '9'))
            bad = true;
        fields++;
    }
    if (bad || fields != e->n * REPL_ENVELOPE_ANSWER_FIELDS)
        return false;
    repl_envelope_reader_init(&r, c->body_out.data, c->body_out.len);
    for (size_t i = 0; i < e->n; i++) {
        struct repl_forward *m = e->members[i];
        const char *status, *head, *body;
        size_t hlen, blen;
        repl_envelope_get(&r, &status, &len, &bad);
        repl_envelope_get(&r, &head, &hlen, &bad);
        repl_envelope_get(&r, &body, &blen, &bad);
        if (!m)
            continue; /* ended early, stale */
        m->status = (status[0] - '0') * 100 + (status[1] - '0') * 10 + (status[2] - '0');
        cellar_buf_append(&m->head, head, hlen);
        cellar_buf_append(&m->body_out, body, blen);
        m->error = 0;
    }
    return true;
}

static void start_one(struct repl_forwarder *fw, struct repl_forward *f);

/* Forwarder thread: the envelope's exchange ended; each member ends with
 * its own answer, or with what became of the envelope. */
static void envelope_done(struct repl_forward *c)
{
    struct envelope *e = c->arg;
    struct repl_forwarder *fw = e->fw;
    if (c->error == 0 && (c->status == 404 || c->status == 405 || c->status == 413)) {
        /* The peer takes no envelopes (an older version), or not one this
         * large: none of them ran there. Each goes alone. */
        for (size_t i = 0; i < e->n; i++) {
            if (!e->members[i])
                continue;
            e->members[i]->batchable = false;
            start_one(fw, e->members[i]);
        }
        envelope_free(e);
        return;
    }
    /* An answer that is not one for each member: they went out and their
     * fate is unknown. */
    bool unpacked = c->error == 0 && c->status == 200 && unpack(e);
    for (size_t i = 0; i < e->n; i++) {
        struct repl_forward *m = e->members[i];
        if (!m)
            continue; /* ended early, stale */
        m->sent = c->sent;
        m->started_us = c->started_us;
        if (c->error) {
            m->error = c->error;
        } else if (c->status != 200) {
            /* The peer refused the envelope (shutting down, the secret):
             * as it would have refused each. */
            m->error = 0;
            m->status = c->status;
            cellar_buf_append(&m->head, c->head.data, c->head.len);
            cellar_buf_append(&m->body_out, c->body_out.data, c->body_out.len);
        } else if (!unpacked) {
            m->error = -CELLAR_EOUTCOME;
        }
        finish(fw, m);
    }
    envelope_free(e);
}

static struct envelope *envelope_new(struct repl_forwarder *fw, struct repl_forward *first)
{
    struct envelope *e = cellar_xcalloc(1, sizeof(*e));
    e->fw = fw;
    struct repl_forward *c = &e->carrier;
    snprintf(c->method, sizeof(c->method), "POST");
    snprintf(c->addr, sizeof(c->addr), "%s", first->addr);
    c->target = cellar_xstrdup("/internal/v1/relay");
    c->headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    c->done = envelope_done;
    c->arg = e;
    c->carrier = true;
    pack(e, first);
    return e;
}

/* Forwarder thread: starts what was queued, those for one peer that may
 * travel together in envelopes, the others alone. */
static void start_queued(struct repl_forwarder *fw, struct repl_forward *q)
{
    while (q) {
        struct repl_forward *f = q;
        q = q->next;
        f->next = NULL;
        if (!f->batchable || f->body_len > ENVELOPE_MEMBER_BYTES) {
            start_one(fw, f);
            continue;
        }
        struct envelope *e = NULL;
        struct repl_forward **pp = &q;
        while (*pp) {
            struct repl_forward *g = *pp;
            if (!e)
                e = envelope_new(fw, f);
            if (!may_join(e, g)) {
                pp = &g->next;
                continue;
            }
            *pp = g->next;
            g->next = NULL;
            pack(e, g);
        }
        if (e && e->n > 1) {
            e->carrier.body = e->body.data;
            e->carrier.body_len = e->body.len;
            __atomic_add_fetch(&fw->envelopes, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&fw->carried, e->n, __ATOMIC_RELAXED);
            start_one(fw, &e->carrier);
        } else {
            if (e)
                envelope_free(e);
            start_one(fw, f);
        }
    }
}

static uint32_t *watch_of(struct repl_forwarder *fw, curl_socket_t s)
{
    if (s < 0)
        return NULL;
    if ((size_t)s >= fw->n_watch) {
        size_t n = fw->n_watch ? fw->n_watch : 64;
        while (n <= (size_t)s)
            n *= 2;
        fw->watch = cellar_xrealloc(fw->watch, n * sizeof(*fw->watch));
        memset(fw->watch + fw->n_watch, 0, (n - fw->n_watch) * sizeof(*fw->watch));
        fw->n_watch = n;
    }
    return &fw->watch[s];
}

/* libcurl (forwarder thread): watch s for what, or stop watching it. A
 * socket libcurl stops watching stays in epfd, watched for input alone
 * (see the top of the file). */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *arg, void *socketp)
{
    struct repl_forwarder *fw = arg;
    uint32_t *w = watch_of(fw, s);
    if (!w)
        return -1;
    uint32_t events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT || what == CURL_POLL_REMOVE)
        events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= EPOLLOUT;
    uint32_t want = what == CURL_POLL_REMOVE ? 0 : WATCH_WANTED, ours = *w & WATCH_OURS;
    if (what == CURL_POLL_REMOVE && !ours) {
        epoll_ctl(fw->epfd, EPOLL_CTL_DEL, s, NULL); /* may be closed already: then gone */
        *w = 0;
        return 0;
    }
    if ((*w & WATCH_IN_SET) && (*w & (EPOLLIN | EPOLLOUT)) == events) {
        *w = WATCH_IN_SET | ours | want | events;
        return 0;
    }
    struct epoll_event ev = {.events = events, .data.fd = s};
    int op = *w & WATCH_IN_SET ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(fw->epfd, op, s, &ev) != 0 &&
        epoll_ctl(fw->epfd, op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev) != 0) {
        *w = ours;
        if (what == CURL_POLL_REMOVE)
            return 0;
        log_warn("forwarder: watching a socket failed: %s", strerror(errno));
        return -1;
    }
    *w = WATCH_IN_SET | ours | want | events;
    return 0;
}

/* libcurl (forwarder thread): a socket for a connection. Its number may
 * be one a socket closed behind the thread's back had (a resolver's):
 * whatever was noted for it is stale (epoll forgot that socket when it
 * was closed). */
static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *address)
{
    struct repl_forwarder *fw = arg;
    (void)purpose;
    curl_socket_t s = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    uint32_t *w = watch_of(fw, s);
    if (w)
        *w = WATCH_OURS;
    return s;
}

/* libcurl (forwarder thread): closing a socket it opened. Closing takes
 * it out of epfd; its number may come back for another socket. */
static int on_close(void *arg, curl_socket_t s)
{
    struct repl_forwarder *fw = arg;
    if (s >= 0 && (size_t)s < fw->n_watch)
        fw->watch[s] = 0;
    return close(s);
}

/* Forwarder thread: an event on s. One libcurl does not want is a kept-
 * alive connection between transfers that the peer closed or wrote to:
 * it leaves epfd, and libcurl finds it dead when it next picks it. */
static void socket_event(struct repl_forwarder *fw, curl_socket_t s, uint32_t events)
{
    uint32_t *w = watch_of(fw, s);
    if (w && !(*w & WATCH_WANTED)) {
        epoll_ctl(fw->epfd, EPOLL_CTL_DEL, s, NULL);
        *w &= WATCH_OURS;
        return;
    }
    int flags = 0, running = 0;
    if (events & EPOLLIN)
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP))
        flags |= CURL_CSELECT_ERR;
    curl_multi_socket_action(fw->multi, s, flags, &running);
}

/* libcurl (forwarder thread): its next timeout, in ms from now (-1: none). */
static int on_timer(CURLM *multi, long timeout_ms, void *arg)
{
    struct repl_forwarder *fw = arg;
    fw->timer_due_us = timeout_ms < 0 ? 0 : cellar_mono_us() + (uint64_t)timeout_ms * 1000;
    return 0;
}

/* How long the thread may wait for events: until libcurl's timeout. */
static int wait_ms(const struct repl_forwarder *fw)
{
    int most = fw->reg && fw->active ? MAP_CHECK_MS : IDLE_WAIT_MS;
    if (!fw->timer_due_us)
        return most;
    uint64_t now = cellar_mono_us();
    if (fw->timer_due_us <= now)
        return 0;
    uint64_t ms = (fw->timer_due_us - now + 999) / 1000;
    return ms < (uint64_t)most ? (int)ms : most;
}

/* Whether f went to a node the node's map no longer counts among its
 * partition's replicas, as primary or secondary (a failover took it out).
 * One that handed its role on and stays, as a secondary, is alive and
 * answers: a write that came too late for it went nowhere and is refused
 * (421), so it is waited for. */
static bool is_stale(struct repl_forwarder *fw, const struct repl_forward *f)
{
    if (!f->table[0])
        return false;
    struct repl_table *t;
    if (repl_table_acquire(fw->reg, f->table, &t) < 0)
        return true; /* dropped meanwhile: routed again, it is answered 404 */
    bool replica = f->partition < repl_table_meta(t)->partition_count &&
                   repl_route_replica_of(t, f->partition, f->addr);
    repl_table_release(fw->reg, t);
    return !replica;
}

/* Ends f early, stale: as if no answer came. */
static void end_stale(struct repl_forwarder *fw, struct repl_forward *f, bool sent)
{
    f->stale = true;
    f->sent = sent;
    f->error = sent ? -CELLAR_EOUTCOME : -CELLAR_EUNAVAIL;
    log_debug("forward %s %s to %s: the map names another primary now (%s)", f->method, f->target,
              f->addr, sent ? "outcome unknown" : "not sent");
    finish(fw, f);
}

/* The stale members of an envelope end alone; when none is left, the
 * envelope ends too (nobody waits for its answer). */
static void stale_members(struct repl_forwarder *fw, struct repl_forward *c)
{
    struct envelope *e = c->arg;
    size_t left = 0;
    for (size_t i = 0; i < e->n; i++) {
        struct repl_forward *m = e->members[i];
        if (!m)
            continue;
        if (!is_stale(fw, m)) {
            left++;
            continue;
        }
        e->members[i] = NULL;
        m->started_us = c->started_us;
        end_stale(fw, m, c->sent);
    }
    if (!left) {
        c->error = -CELLAR_EOUTCOME;
        finish(fw, c);
    }
}

/* When the node's map has changed: ends the relays it made stale. */
static void stale_relays(struct repl_forwarder *fw)
{
    if (!fw->reg || !fw->active)
        return;
    uint64_t v = repl_registry_map_version(fw->reg);
    if (v == fw->map_checked)
        return;
    fw->map_checked = v;
    for (struct repl_forward *f = fw->active, *next; f; f = next) {
        next = f->next; /* finish unlinks f alone */
        if (f->carrier)
            stale_members(fw, f);
        else if (is_stale(fw, f))
            end_stale(fw, f, f->sent);
    }
}

static void complete_finished(struct repl_forwarder *fw)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(fw->multi, &left))) {
        if (msg->msg == CURLMSG_DONE)
            complete(fw, msg->easy_handle, msg->data.result);
    }
}

static void *forwarder_main(void *arg)
{
    struct repl_forwarder *fw = arg;
    pthread_setname_np(pthread_self(), "forwarder");
    struct epoll_event evs[EVENTS_MAX];
    for (;;) {
        pthread_mutex_lock(&fw->mu);
        struct repl_forward *q = fw->queue;
        fw->queue = fw->queue_tail = NULL;
        bool stop = fw->stop;
        fw->polling = false;
        pthread_mutex_unlock(&fw->mu);
        if (!stop) {
            start_queued(fw, q);
            q = NULL;
        }
        while (q) {
            struct repl_forward *next = q->next;
            q->next = NULL;
            q->error = -CELLAR_EUNAVAIL;
            q->started_us = cellar_mono_us();
            finish(fw, q);
            q = next;
        }
        if (stop)
            break;
        int running = 0;
        if (fw->timer_due_us && fw->timer_due_us <= cellar_mono_us()) {
            fw->timer_due_us = 0;
            curl_multi_socket_action(fw->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            complete_finished(fw);
        }
        stale_relays(fw);
        /* Requests queued meanwhile are taken at once; otherwise wait,
         * saying so, for a submitter to wake the thread. */
        pthread_mutex_lock(&fw->mu);
        bool more = fw->queue || fw->stop;
        fw->polling = !more;
        pthread_mutex_unlock(&fw->mu);
        int n = epoll_wait(fw->epfd, evs, EVENTS_MAX, more ? 0 : wait_ms(fw));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == fw->wakefd) {
                uint64_t v;
                (void)!read(fw->wakefd, &v, sizeof(v));
                continue;
            }
            socket_event(fw, evs[i].data.fd, evs[i].events);
        }
        complete_finished(fw);
    }
    /* Stopping: what is still in flight ends without an answer. */
    while (fw->active) {
        struct repl_forward *f = fw->active;
        f->error = -CELLAR_EOUTCOME;
        finish(fw, f);
    }
    return NULL;
}

static void wake(struct repl_forwarder *fw)
{
    uint64_t one = 1;
    (void)!write(fw->wakefd, &one, sizeof(one));
}

int repl_forwarder_start(const struct repl_peer_config *peer, struct repl_registry *reg,
                         struct repl_forwarder **out)
{
    struct repl_forwarder *fw = cellar_xcalloc(1, sizeof(*fw));
    fw->peer = peer;
    fw->reg = reg;
    if (reg)
        fw->map_checked = repl_registry_map_version(reg);
    pthread_mutex_init(&fw->mu, NULL);
    snprintf(fw->auth, sizeof(fw->auth), "Authorization: Bearer %s", peer->secret);
    fw->figures = repl_peer_figures_new();
    fw->multi = curl_multi_init();
    fw->epfd = epoll_create1(EPOLL_CLOEXEC);
    fw->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fw->wakefd};
    bool ready = fw->multi && fw->epfd >= 0 && fw->wakefd >= 0 &&
                 epoll_ctl(fw->epfd, EPOLL_CTL_ADD, fw->wakefd, &ev) == 0;
    if (ready) {
        curl_multi_setopt(fw->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(fw->multi, CURLMOPT_SOCKETDATA, fw);
        curl_multi_setopt(fw->multi, CURLMOPT_TIMERFUNCTION, on_timer);
        curl_multi_setopt(fw->multi, CURLMOPT_TIMERDATA, fw);
    }
    if (!ready || pthread_create(&fw->thread, NULL, forwarder_main, fw) != 0) {
        if (fw->multi)
            curl_multi_cleanup(fw->multi);
        if (fw->epfd >= 0)
            close(fw->epfd);
        if (fw->wakefd >= 0)
            close(fw->wakefd);
        repl_peer_figures_free(fw->figures);
        pthread_mutex_destroy(&fw->mu);
        free(fw);
        *out = NULL;
        return -CELLAR_ESYS;
    }
    *out = fw;
    return 0;
}

void repl_forwarder_submit(struct repl_forwarder *fw, struct repl_forward *f)
{
    f->next = NULL;
    pthread_mutex_lock(&fw->mu);
    if (fw->queue_tail)
        fw->queue_tail->next = f;
    else
        fw->queue = f;
    fw->queue_tail = f;
    bool wake_it = fw->polling; /* a busy thread takes the queue before it waits */
    fw->polling = false;
    pthread_mutex_unlock(&fw->mu);
    if (wake_it)
        wake(fw);
}

void repl_forwarder_stop(struct repl_forwarder *fw)
{
    if (!fw)
        return;
    pthread_mutex_lock(&fw->mu);
    fw->stop = true;
    pthread_mutex_unlock(&fw->mu);
    wake(fw);
    pthread_join(fw->thread, NULL);
    for (size_t i = 0; i < fw->n_spare; i++)
        curl_easy_cleanup(fw->spare[i]);
    curl_multi_cleanup(fw->multi);
    close(fw->epfd);
    close(fw->wakefd);
    free(fw->watch);
    repl_peer_figures_free(fw->figures);
    pthread_mutex_destroy(&fw->mu);
    free(fw);
}

struct repl_peer_figures *repl_forwarder_figures(struct repl_forwarder *fw)
{
    return fw->figures;
}

void repl_forwarder_envelopes(struct repl_forwarder *fw, uint64_t *envelopes, uint64_t *carried)
{
    *envelopes = __atomic_load_n(&fw->envelopes, __ATOMIC_RELAXED);
    *carried = __atomic_load_n(&fw->carried, __ATOMIC_RELAXED);
}

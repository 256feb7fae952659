/*
 * forwarder.c - the forwarder thread and its libcurl multi handle
 * (forwarder.h).
 *
 * Design: submitters append to `queue` under `mu` and wake the thread
 * with curl_multi_wakeup; the thread moves queued requests into the multi
 * handle, runs curl_multi_poll/perform, and completes each finished
 * transfer. The multi handle keeps a connection cache, so consecutive
 * requests to a peer reuse a kept-alive connection.
 *
 * Whether a failed request may have reached the peer decides between
 * "not reached" (nothing was sent: a connect failure) and "outcome
 * unknown" (the request went out and no answer came).
 *
 * Threads: submit from any thread; the rest on the forwarder thread.
 * `mu` guards queue and stop; the per-peer figures have their own lock.
 */
#include "replication/forwarder.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Easy handles kept for reuse: making one and freeing it costs more than
 * resetting it. */
#define SPARE_HANDLES 256

struct repl_forwarder {
    const struct repl_peer_config *peer;
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t mu;
    struct repl_forward *queue, *queue_tail;
    bool stop;
    struct repl_forward *active; /* in the multi handle (forwarder thread only) */
    CURL *spare[SPARE_HANDLES];  /* reset handles to reuse (forwarder thread only) */
    size_t n_spare;
    struct repl_peer_figures *figures;
    char auth[REPL_SECRET_MAX + 32];
    char iface[REPL_ADDR_MAX + 8];
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
    if (fw->iface[0])
        curl_easy_setopt(c, CURLOPT_INTERFACE, fw->iface);
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

static void *forwarder_main(void *arg)
{
    struct repl_forwarder *fw = arg;
    pthread_setname_np(pthread_self(), "forwarder");
    for (;;) {
        pthread_mutex_lock(&fw->mu);
        struct repl_forward *q = fw->queue;
        fw->queue = fw->queue_tail = NULL;
        bool stop = fw->stop;
        pthread_mutex_unlock(&fw->mu);
        while (q) {
            struct repl_forward *next = q->next;
            q->next = NULL;
            if (stop) {
                q->error = -CELLAR_EUNAVAIL;
                q->started_us = cellar_mono_us();
                finish(fw, q);
            } else {
                start_one(fw, q);
            }
            q = next;
        }
        if (stop)
            break;
        int running = 0;
        curl_multi_perform(fw->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(fw->multi, &left))) {
            if (msg->msg == CURLMSG_DONE)
                complete(fw, msg->easy_handle, msg->data.result);
        }
        curl_multi_poll(fw->multi, NULL, 0, 1000, NULL);
    }
    /* Stopping: what is still in flight ends without an answer. */
    while (fw->active) {
        struct repl_forward *f = fw->active;
        f->error = -CELLAR_EOUTCOME;
        finish(fw, f);
    }
    return NULL;
}

int repl_forwarder_start(const struct repl_peer_config *peer, struct repl_forwarder **out)
{
    struct repl_forwarder *fw = cellar_xcalloc(1, sizeof(*fw));
    fw->peer = peer;
    pthread_mutex_init(&fw->mu, NULL);
    snprintf(fw->auth, sizeof(fw->auth), "Authorization: Bearer %s", peer->secret);
    if (peer->bind_host[0])
        snprintf(fw->iface, sizeof(fw->iface), "host!%s", peer->bind_host);
    fw->figures = repl_peer_figures_new();
    fw->multi = curl_multi_init();
    if (!fw->multi || pthread_create(&fw->thread, NULL, forwarder_main, fw) != 0) {
        if (fw->multi)
            curl_multi_cleanup(fw->multi);
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
    pthread_mutex_unlock(&fw->mu);
    curl_multi_wakeup(fw->multi);
}

void repl_forwarder_stop(struct repl_forwarder *fw)
{
    if (!fw)
        return;
    pthread_mutex_lock(&fw->mu);
    fw->stop = true;
    pthread_mutex_unlock(&fw->mu);
    curl_multi_wakeup(fw->multi);
    pthread_join(fw->thread, NULL);
    for (size_t i = 0; i < fw->n_spare; i++)
        curl_easy_cleanup(fw->spare[i]);
    curl_multi_cleanup(fw->multi);
    repl_peer_figures_free(fw->figures);
    pthread_mutex_destroy(&fw->mu);
    free(fw);
}

struct repl_peer_figures *repl_forwarder_figures(struct repl_forwarder *fw)
{
    return fw->figures;
}

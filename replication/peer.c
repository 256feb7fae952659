/*
 * peer.c - blocking node-to-node calls (peer.h): one at a time with
 * libcurl's easy interface, or to several peers at once on a session's
 * multi handle (whose connection cache keeps them alive between calls).
 *
 * Threads: callers that may block; a session belongs to one thread at a
 * time; nothing shared but the configuration.
 */
#include "replication/peer.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A download that moves no byte for this long is given up. */
#define PEER_DOWNLOAD_STALL_S 30

int repl_peer_config_init(struct repl_peer_config *pc, const char *secret_file,
                          const char *advertise, char *err, size_t errlen)
{
    memset(pc, 0, sizeof(*pc));
    FILE *f = fopen(secret_file, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", secret_file, strerror(errno));
        return -CELLAR_EINVAL;
    }
    size_t len = fread(pc->secret, 1, sizeof(pc->secret) - 1, f);
    fclose(f);
    while (len && (pc->secret[len - 1] == '\n' || pc->secret[len - 1] == '\r'))
        len--;
    pc->secret[len] = '\0';
    if (len < 16 || memchr(pc->secret, '\0', len)) {
        snprintf(err, errlen, "%s: the cluster secret must be at least 16 bytes of text",
                 secret_file);
        return -CELLAR_EINVAL;
    }
    /* The host part of host:port, without brackets. */
    const char *colon = strrchr(advertise, ':');
    size_t hlen = colon ? (size_t)(colon - advertise) : strlen(advertise);
    const char *host = advertise;
    if (hlen >= 2 && host[0] == '[') {
        host++;
        hlen -= 2;
    }
    if (hlen)
        snprintf(pc->iface, sizeof(pc->iface), "host!%.*s", (int)hlen, host);
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    cellar_buf_append(arg, data, size * n);
    return size * n;
}

void repl_peer_route(CURL *c, const struct repl_peer_config *pc)
{
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    if (pc->iface[0])
        curl_easy_setopt(c, CURLOPT_INTERFACE, pc->iface);
}

/* Runs one transfer, then frees c and h: 0 with the HTTP status in
 * *status, or -CELLAR_EUNAVAIL (no answer), logged at level. */
static int perform(CURL *c, struct curl_slist *h, int level, const char *method, const char *addr,
                   const char *path, long *status)
{
    CURLcode cc = curl_easy_perform(c);
    int rc = 0;
    if (cc != CURLE_OK) {
        cellar_log(level, "peer %s %s%s: %s", method, addr, path, curl_easy_strerror(cc));
        rc = -CELLAR_EUNAVAIL;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc;
}

/* The options every call shares: the secret, the JSON body, the timeout,
 * the route (repl_peer_route). h is the caller's (freed after the transfer). */
static void set_common(CURL *c, const struct repl_peer_config *pc, const char *url,
                       struct curl_slist *h, const char *body, size_t len, uint64_t timeout_ms,
                       struct cellar_buf *reply)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
    repl_peer_route(c, pc);
}

static struct curl_slist *headers(const struct repl_peer_config *pc)
{
    char auth[REPL_SECRET_MAX + 32];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", pc->secret);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    return curl_slist_append(h, "Expect:");
}

/* One call with a JSON body (none for DELETE), as repl_peer_post says. */
static int call(const struct repl_peer_config *pc, const char *method, const char *addr,
                const char *path, const char *body, size_t len, uint64_t timeout_ms, long *status,
                struct cellar_buf *reply)
{
    CURL *c = curl_easy_init();
    if (!c)
        return -CELLAR_ENOMEM;
    char url[REPL_ADDR_MAX + 256];
    snprintf(url, sizeof(url), "http://%s%s", addr, path);
    struct curl_slist *h = headers(pc);
    set_common(c, pc, url, h, body, len, timeout_ms, reply);
    if (strcmp(method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    return perform(c, h, CELLAR_LOG_DEBUG, method, addr, path, status);
}

int repl_peer_post(const struct repl_peer_config *pc, const char *addr, const char *path,
                   const char *body, size_t len, uint64_t timeout_ms, long *status,
                   struct cellar_buf *reply)
{
    return call(pc, "POST", addr, path, body, len, timeout_ms, status, reply);
}

int repl_peer_delete(const struct repl_peer_config *pc, const char *addr, const char *path,
                     uint64_t timeout_ms, long *status)
{
    struct cellar_buf reply = {0};
    int rc = call(pc, "DELETE", addr, path, "", 0, timeout_ms, status, &reply);
    cellar_buf_fini(&reply);
    return rc;
}

static size_t on_file(char *data, size_t size, size_t n, void *arg)
{
    return fwrite(data, 1, size * n, arg);
}

/* A set *stop aborts the transfer. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return __atomic_load_n((const bool *)arg, __ATOMIC_ACQUIRE) ? 1 : 0;
}

int repl_peer_download(const struct repl_peer_config *pc, const char *addr, const char *path,
                       FILE *out, const bool *stop, long *status)
{
    CURL *c = curl_easy_init();
    if (!c)
        return -CELLAR_ENOMEM;
    char url[REPL_ADDR_MAX + 256];
    snprintf(url, sizeof(url), "http://%s%s", addr, path);
    struct curl_slist *h = headers(pc);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)PEER_DOWNLOAD_STALL_S * 1000);
    /* No limit on the whole: a slow but moving transfer goes on. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)PEER_DOWNLOAD_STALL_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_file);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)stop);
    repl_peer_route(c, pc);
    return perform(c, h, CELLAR_LOG_WARNING, "GET", addr, path, status);
}

struct repl_peer_session {
    const struct repl_peer_config *pc;
    CURLM *multi;
    struct curl_slist *h;
    CURL **easy; /* one per peer slot, reused from call to call */
    size_t n_easy;
};

struct repl_peer_session *repl_peer_session_new(const struct repl_peer_config *pc)
{
    struct repl_peer_session *s = cellar_xcalloc(1, sizeof(*s));
    s->pc = pc;
    s->multi = curl_multi_init();
    s->h = headers(pc);
    if (!s->multi) {
        repl_peer_session_free(s);
        return NULL;
    }
    return s;
}

void repl_peer_session_free(struct repl_peer_session *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_easy; i++)
        curl_easy_cleanup(s->easy[i]);
    free(s->easy);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    curl_slist_free_all(s->h);
    free(s);
}

void repl_peer_post_all(struct repl_peer_session *s, const char (*addrs)[REPL_ADDR_MAX], size_t n,
                        const char *path, const char *body, size_t len, uint64_t timeout_ms,
                        int *rcs, long *statuses, struct cellar_buf *replies,
                        struct repl_peer_figures *figures)
{
    if (n > s->n_easy) {
        s->easy = cellar_xrealloc(s->easy, n * sizeof(*s->easy));
        for (; s->n_easy < n; s->n_easy++)
            s->easy[s->n_easy] = curl_easy_init();
    }
    char(*urls)[REPL_ADDR_MAX + 256] = cellar_xmalloc(n * sizeof(*urls));
    size_t added = 0;
    for (size_t i = 0; i < n; i++) {
        rcs[i] = -CELLAR_EUNAVAIL;
        statuses[i] = 0;
        CURL *c = s->easy[i];
        if (!c)
            continue;
        snprintf(urls[i], sizeof(urls[i]), "http://%s%s", addrs[i], path);
        set_common(c, s->pc, urls[i], s->h, body, len, timeout_ms, &replies[i]);
        curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)(uintptr_t)i);
        if (curl_multi_add_handle(s->multi, c) == CURLM_OK)
            added++;
    }
    int running = (int)added;
    while (running > 0) {
        if (curl_multi_perform(s->multi, &running) != CURLM_OK)
            break;
        if (running > 0)
            curl_multi_poll(s->multi, NULL, 0, 100, NULL);
    }
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(s->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        size_t i = (size_t)(uintptr_t)priv;
        if (msg->data.result == CURLE_OK) {
            rcs[i] = 0;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &statuses[i]);
        } else {
            log_debug("peer %s%s: %s", addrs[i], path, curl_easy_strerror(msg->data.result));
        }
        curl_off_t us = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME_T, &us);
        if (figures)
            repl_peer_figures_note(figures, addrs[i], rcs[i] < 0, (uint64_t)us);
    }
    for (size_t i = 0; i < n; i++) {
        if (s->easy[i])
            curl_multi_remove_handle(s->multi, s->easy[i]);
    }
    free(urls);
}

struct repl_peer_figures {
    pthread_mutex_t mu;
    struct repl_peer_figure peers[REPL_PEER_FIGURES_MAX];
    size_t n;
};

struct repl_peer_figures *repl_peer_figures_new(void)
{
    struct repl_peer_figures *f = cellar_xcalloc(1, sizeof(*f));
    pthread_mutex_init(&f->mu, NULL);
    return f;
}

void repl_peer_figures_free(struct repl_peer_figures *f)
{
    if (!f)
        return;
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void repl_peer_figures_note(struct repl_peer_figures *f, const char *addr, bool error, uint64_t us)
{
    pthread_mutex_lock(&f->mu);
    struct repl_peer_figure *p = NULL;
    for (size_t i = 0; i < f->n && !p; i++) {
        if (strcmp(f->peers[i].addr, addr) == 0)
            p = &f->peers[i];
    }
    if (!p && f->n < REPL_PEER_FIGURES_MAX) {
        p = &f->peers[f->n++];
        snprintf(p->addr, sizeof(p->addr), "%s", addr);
    }
    if (p) {
        p->calls++;
        p->errors += error;
        p->us_sum += us;
    }
    pthread_mutex_unlock(&f->mu);
}

size_t repl_peer_figures_get(struct repl_peer_figures *f, struct repl_peer_figure *out, size_t max)
{
    if (!f)
        return 0;
    pthread_mutex_lock(&f->mu);
    size_t n = f->n < max ? f->n : max;
    memcpy(out, f->peers, n * sizeof(*out));
    pthread_mutex_unlock(&f->mu);
    return n;
}

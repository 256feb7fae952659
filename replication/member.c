/*
 * member.c - the beacon loop of a cluster node (member.h).
 *
 * Threads: the member thread; `last_ok_ms` is read by others atomically.
 */
#include "replication/member.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A request waiting for a newer map. */
struct map_waiter {
    uint64_t version, deadline_ms;
    repl_map_wait_fn fn;
    void *arg;
    struct map_waiter *next;
};

struct repl_member {
    const struct repl_cluster_config *cfg;
    const struct repl_peer_config *peer;
    struct repl_registry *reg;
    pthread_t thread;
    pthread_mutex_t mu; /* guards stop, waiters and kick */
    pthread_cond_t wake;
    bool stop;
    bool kick; /* beacon now */
    struct map_waiter *waiters;
    uint64_t last_ok_ms; /* atomic: cellar_mono_ms() of the last answered beacon */
    bool warned;         /* meta's silence has been logged */
};

/* One beacon and what comes of it. */
static void beacon(struct repl_member *m)
{
    json_t *roles = json_array();
    if (m->cfg->role_meta)
        json_array_append_new(roles, json_string("meta"));
    if (m->cfg->role_data)
        json_array_append_new(roles, json_string("data"));
    json_t *doc = json_pack("{s:s, s:o, s:I, s:o}", "address", m->cfg->advertise, "roles", roles,
                            "version", (json_int_t)repl_registry_map_version(m->reg), "replicas",
                            repl_registry_hosted_json(m->reg));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    long status = 0;
    struct cellar_buf reply = {0};
    uint64_t timeout = m->cfg->fd_grace_ms;
    int rc = repl_peer_post(m->peer, m->cfg->meta_servers[0], "/internal/v1/beacon", text,
                            strlen(text), timeout, &status, &reply);
    free(text);
    json_t *ans = rc == 0 && status == 200 ? json_loadb(reply.data, reply.len, 0, NULL) : NULL;
    cellar_buf_fini(&reply);
    if (!ans) {
        if (!m->warned)
            log_warn("member: meta %s did not answer a beacon (%s)", m->cfg->meta_servers[0],
                     rc < 0 ? cellar_strerror(rc) : "refused");
        m->warned = true;
        return;
    }
    if (m->warned)
        log_notice("member: meta %s answers again", m->cfg->meta_servers[0]);
    m->warned = false;
    __atomic_store_n(&m->last_ok_ms, cellar_mono_ms(), __ATOMIC_RELEASE);
    json_t *map = json_object_get(ans, "map");
    if (map && repl_registry_apply_map(m->reg, map) < 0)
        log_err("member: meta %s sent a map that does not parse", m->cfg->meta_servers[0]);
    json_decref(ans);
}

/* Calls back the waiters whose map came or whose time ran out (all of them
 * when stopping). Caller holds mu; the callbacks run without it. */
static void settle_waiters(struct repl_member *m, bool all)
{
    uint64_t version = repl_registry_map_version(m->reg), now = cellar_mono_ms();
    struct map_waiter *done = NULL;
    for (struct map_waiter **p = &m->waiters; *p;) {
        struct map_waiter *w = *p;
        if (all || version > w->version || now >= w->deadline_ms) {
            *p = w->next;
            w->next = done;
            done = w;
        } else {
            p = &w->next;
        }
    }
    pthread_mutex_unlock(&m->mu);
    while (done) {
        struct map_waiter *w = done;
        done = w->next;
        w->fn(w->arg, !all && version > w->version);
        free(w);
    }
    pthread_mutex_lock(&m->mu);
}

void repl_member_wait_map(struct repl_member *m, uint64_t version, uint64_t deadline_ms, bool kick,
                          repl_map_wait_fn fn, void *arg)
{
    struct map_waiter *w = cellar_xcalloc(1, sizeof(*w));
    *w = (struct map_waiter){version, deadline_ms, fn, arg, NULL};
    pthread_mutex_lock(&m->mu);
    if (m->stop) {
        pthread_mutex_unlock(&m->mu);
        free(w);
        fn(arg, false);
        return;
    }
    w->next = m->waiters;
    m->waiters = w;
    m->kick |= kick;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->mu);
}

/* Waits on wake until the next beacon is due or the first waiter's
 * deadline, whichever is sooner. mu held. */
static void wait_for_next(struct repl_member *m, uint64_t next_beacon_ms)
{
    uint64_t until = next_beacon_ms;
    for (const struct map_waiter *w = m->waiters; w; w = w->next) {
        if (w->deadline_ms < until)
            until = w->deadline_ms;
    }
    uint64_t now = cellar_mono_ms();
    if (until <= now)
        return;
    struct timespec ts = cellar_deadline_us(CLOCK_REALTIME, (until - now) * 1000u);
    pthread_cond_timedwait(&m->wake, &m->mu, &ts);
}

static void *member_main(void *arg)
{
    struct repl_member *m = arg;
    pthread_setname_np(pthread_self(), "member");
    uint64_t next_beacon = 0;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        if (m->kick || cellar_mono_ms() >= next_beacon) {
            m->kick = false;
            pthread_mutex_unlock(&m->mu);
            beacon(m);
            pthread_mutex_lock(&m->mu);
            next_beacon = cellar_mono_ms() + m->cfg->fd_beacon_ms;
        }
        settle_waiters(m, false);
        if (m->stop || m->kick)
            continue;
        wait_for_next(m, next_beacon);
    }
    settle_waiters(m, true);
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int repl_member_start(const struct repl_cluster_config *cfg, const struct repl_peer_config *peer,
                      struct repl_registry *reg, struct repl_member **out)
{
    struct repl_member *m = cellar_xcalloc(1, sizeof(*m));
    m->cfg = cfg;
    m->peer = peer;
    m->reg = reg;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->wake, NULL);
    if (pthread_create(&m->thread, NULL, member_main, m) != 0) {
        pthread_cond_destroy(&m->wake);
        pthread_mutex_destroy(&m->mu);
        free(m);
        *out = NULL;
        return -CELLAR_ESYS;
    }
    log_info("member: %s beacons to meta %s every %llu ms", cfg->advertise, cfg->meta_servers[0],
             (unsigned long long)cfg->fd_beacon_ms);
    *out = m;
    return 0;
}

void repl_member_stop(struct repl_member *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

bool repl_member_meta_reachable(const struct repl_member *m)
{
    uint64_t last = __atomic_load_n(&m->last_ok_ms, __ATOMIC_ACQUIRE);
    return last && cellar_mono_ms() - last < m->cfg->fd_grace_ms;
}

/*
 * deadline.c - the request and idle deadlines (deadline.h): a list of the
 * open connections with their phase, and the reaper that cuts the ones
 * that overstay.
 *
 * Threads: notify (STARTED, CLOSED) on MHD's threads under `lock`; phase
 * changes on MHD workers through atomics; the reaper under `lock`.
 */
#include "api/deadline.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "common/cellar.h"

#define REAP_EVERY_MS 250

enum phase {
    PHASE_IDLE = 0, /* between requests (or before the first) */
    PHASE_RECEIVING,
    PHASE_BUSY,
    PHASE_CUT, /* shut down by the reaper; waiting for MHD to close it */
};

struct api_tracked {
    struct api_tracked *prev, *next; /* under lock */
    int fd;
    int phase;         /* enum phase; atomic */
    uint64_t since_ms; /* atomic: when the phase began */
};

struct api_deadlines {
    uint64_t request_timeout_ms, idle_timeout_ms;
    pthread_mutex_t lock; /* guards the list and stop */
    pthread_cond_t wake;
    struct api_tracked *head;
    bool stop;
    pthread_t reaper;
};

static void set_phase(struct api_tracked *t, enum phase p)
{
    if (!t)
        return;
    __atomic_store_n(&t->since_ms, cellar_mono_ms(), __ATOMIC_RELAXED);
    __atomic_store_n(&t->phase, p, __ATOMIC_RELEASE);
}

void api_tracked_receiving(struct api_tracked *t)
{
    set_phase(t, PHASE_RECEIVING);
}

void api_tracked_busy(struct api_tracked *t)
{
    set_phase(t, PHASE_BUSY);
}

void api_tracked_idle(struct api_tracked *t)
{
    set_phase(t, PHASE_IDLE);
}

struct api_tracked *api_deadlines_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void api_deadlines_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct api_deadlines *d = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct api_tracked *t = cellar_xcalloc(1, sizeof(*t));
        t->fd = ci ? ci->connect_fd : -1;
        t->since_ms = cellar_mono_ms();
        t->phase = PHASE_IDLE;
        pthread_mutex_lock(&d->lock);
        t->next = d->head;
        if (d->head)
            d->head->prev = t;
        d->head = t;
        pthread_mutex_unlock(&d->lock);
        *socket_context = t;
        return;
    }
    struct api_tracked *t = *socket_context;
    if (!t)
        return;
    pthread_mutex_lock(&d->lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        d->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&d->lock);
    *socket_context = NULL;
    free(t);
}

/* One pass over the list. Called with lock held. */
static void reap(struct api_deadlines *d)
{
    uint64_t now = cellar_mono_ms();
    for (struct api_tracked *t = d->head; t; t = t->next) {
        int phase = __atomic_load_n(&t->phase, __ATOMIC_ACQUIRE);
        uint64_t since = __atomic_load_n(&t->since_ms, __ATOMIC_RELAXED);
        uint64_t limit = phase == PHASE_RECEIVING ? d->request_timeout_ms
                         : phase == PHASE_IDLE    ? d->idle_timeout_ms
                                                  : 0;
        if (!limit || t->fd < 0 || now < since || now - since <= limit)
            continue;
        /* A worker may have moved it on meanwhile: only cut it if the
         * phase is still the one judged. */
        if (!__atomic_compare_exchange_n(&t->phase, &phase, PHASE_CUT, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            continue;
        shutdown(t->fd, SHUT_RDWR);
        if (phase == PHASE_RECEIVING) {
            log_info("http: cut a connection whose request did not arrive within %llu ms",
                     (unsigned long long)d->request_timeout_ms);
        } else {
            log_debug("http: cut a connection idle for %llu ms", (unsigned long long)(now - since));
        }
    }
}

static void *reaper_main(void *arg)
{
    struct api_deadlines *d = arg;
    pthread_setname_np(pthread_self(), "api-deadline");
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        struct timespec ts = cellar_deadline_us(CLOCK_MONOTONIC, REAP_EVERY_MS * 1000u);
        pthread_cond_timedwait(&d->wake, &d->lock, &ts);
        if (!d->stop)
            reap(d);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

struct api_deadlines *api_deadlines_new(uint64_t request_timeout_ms, uint64_t idle_timeout_ms)
{
    struct api_deadlines *d = cellar_xcalloc(1, sizeof(*d));
    d->request_timeout_ms = request_timeout_ms;
    d->idle_timeout_ms = idle_timeout_ms;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&d->reaper, NULL, reaper_main, d) != 0)
        CELLAR_ASSERT(!"cannot start the deadline reaper");
    return d;
}

void api_deadlines_free(struct api_deadlines *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stop = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->reaper, NULL);
    /* Connections still listed (none once the daemon stopped) are freed
     * with their records. */
    for (struct api_tracked *t = d->head, *next; t; t = next) {
        next = t->next;
        free(t);
    }
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

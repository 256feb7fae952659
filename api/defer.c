/*
 * defer.c - work a handler cannot finish on its MHD worker: writes handed
 * to partition writers and admin calls queued for the admin thread.
 *
 * A deferred request's connection is suspended (MHD_suspend_connection)
 * before the work is published, so a writer may call back at once; the
 * last callback stores the results and resumes it, and MHD calls the
 * access handler again on the connection's own worker, which runs the
 * request's completion and replies. Admin calls (table create, drop,
 * recall, PATCH, compact) go the same way through one admin thread,
 * because they open, close and fsync RocksDB files.
 *
 * Invariants: every suspended connection is resumed exactly once (a writer
 * calls back exactly once per accepted mutation; a refused submit counts
 * down at once); no reply is sent while the table is held.
 *
 * A request that came in an envelope (relay.c) has no connection: its
 * suspension counts in its envelope's pending, and the last of them to
 * resume resumes the envelope's connection instead.
 *
 * Threads: handlers call in on MHD workers; writer threads and the admin
 * thread only store results and resume. The admin queue has its own mutex
 * (admin_lock); writes_pending and state are atomics.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

/* Suspends the request's connection; for one that came in an envelope
 * (no connection of its own), counts it among those its envelope waits
 * for. */
static void hand_on(struct api_request *req)
{
    if (req->envelope)
        __atomic_add_fetch(&req->envelope->relay->pending, 1, __ATOMIC_ACQ_REL);
    else
        MHD_suspend_connection(req->conn);
}

void api_suspend(struct api_request *req, api_handler_fn complete)
{
    req->complete = complete;
    req->state = API_REQ_WAITING;
    req->deferred = true; /* this call of the handler (or completion) handed it on */
    req->deferred_us = cellar_mono_us();
    hand_on(req);
}

void api_resume(struct api_request *req)
{
    req->resumed_us = cellar_mono_us();
    struct api_request *envelope = req->envelope;
    __atomic_store_n(&req->state, API_REQ_RESUMED, __ATOMIC_RELEASE);
    if (!envelope)
        MHD_resume_connection(req->conn);
    else if (__atomic_sub_fetch(&envelope->relay->pending, 1, __ATOMIC_ACQ_REL) == 0)
        api_resume(envelope); /* the last of its requests to end: the envelope goes on */
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
        api_resume(req);
}

/* The writer of partition part's primary when it is here
 * (repl_route, then the replica's write gate), else -CELLAR_ENOTPRIMARY. */
static int writer_of(struct api_table *t, uint32_t part, struct repl_writer **out)
{
    struct repl_route route;
    repl_route(t->table, part, &route);
    if (route.kind != REPL_ROUTE_LOCAL)
        return -CELLAR_ENOTPRIMARY;
    return repl_replica_writer(route.replica, out);
}

/* The most times one request is routed again for writes that did not go
 * out (each is a primary role moving on while it was queued). */
#define WRITE_REROUTES_MAX 2

/* Resumed with every write back. -CELLAR_ENOTPRIMARY says a write was
 * never sent: its replica was not (or no longer) the primary when it
 * was submitted or when its group ran, and its group was discarded. */
static void writes_back(struct api_request *req)
{
    bool unsent = true;
    for (size_t i = 0; i < req->n_writes; i++)
        unsent &= req->writes[i].status == -CELLAR_ENOTPRIMARY;
    if (!unsent || req->write_reroutes >= WRITE_REROUTES_MAX) {
        req->writes_done(req);
        return;
    }
    req->write_reroutes++;
    for (size_t i = 0; i < req->n_writes; i++)
        store_outcome_fini(&req->writes[i].outcome);
    free(req->writes);
    req->writes = NULL;
    req->n_writes = 0;
    api_route_again(req);
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
    req->deferred = true; /* this call of the handler (or completion) handed it on */
    /* Held by this thread until every mutation is handed over, so no
     * callback can resume the request half-way through. */
    req->writes_pending = n + 1;
    req->deferred_us = cellar_mono_us();
    if (n == 1) {
        /* durability=os and an idle writer: commit here, no suspend. The
         * callback runs before this returns and leaves the +1 to us. The
         * reply waits until the table is ended. */
        slots[0] = (struct write_slot){req, 0, NULL};
        if (writer_of(t, partitions[0], &slots[0].writer) == 0 &&
            repl_commit_inline(slots[0].writer, mutations[0], on_write_done, &slots[0])) {
            api_table_end(t);
            req->writes_pending = 0;
            req->resumed_us = cellar_mono_us();
            __atomic_store_n(&req->state, API_REQ_RESUMED, __ATOMIC_RELEASE);
            req->complete(req);
            if (req->state != API_REQ_ANSWERED)
                api_reply_problem(req, 500, "INTERNAL", "the request produced no reply");
            return;
        }
    }
    req->writes_done = complete;
    req->complete = writes_back;
    /* Suspend before publishing: a writer may call back at once. */
    hand_on(req);
    for (size_t i = 0; i < n; i++) {
        slots[i] = (struct write_slot){req, i, NULL};
        int rc = writer_of(t, partitions[i], &slots[i].writer);
        if (rc < 0)
            store_mutation_free(mutations[i]);
        else
            rc = repl_submit_take(slots[i].writer, mutations[i], on_write_done, &slots[i]);
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
        api_resume(req);
}

void api_defer_write(struct api_request *req, struct api_table *t, uint32_t partition,
                     struct store_mutation *m, api_handler_fn complete)
{
    api_defer_writes(req, t, 1, &partition, &m, complete);
}

void api_defer_admin(struct api_request *req, api_handler_fn admin, api_handler_fn complete)
{
    struct api_server *s = req->srv;
    req->admin = admin;
    req->admin_next = NULL;
    api_suspend(req, complete);
    pthread_mutex_lock(&s->admin_lock);
    if (s->admin_stop || s->admin_len >= s->cfg->admin_queue_max) {
        int rc = s->admin_stop ? -CELLAR_ESHUTDOWN : -CELLAR_EBUSY;
        pthread_mutex_unlock(&s->admin_lock);
        req->status = rc;
        api_resume(req);
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
        api_resume(req);
        pthread_mutex_lock(&s->admin_lock);
    }
    pthread_mutex_unlock(&s->admin_lock);
    return NULL;
}

int api_admin_start(struct api_server *s)
{
    pthread_cond_init(&s->admin_cond, NULL);
    if (pthread_create(&s->admin_thread, NULL, admin_main, s) != 0)
        return -CELLAR_ESYS;
    s->admin_started = true;
    return 0;
}

void api_admin_stop(struct api_server *s)
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

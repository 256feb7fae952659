/*
 * replica.c - one hosted partition replica (replica.h): storage, writer,
 * configuration and role, and the gates reads and writes go through.
 *
 * Threads: the gates run on HTTP workers; open, close and set_config on
 * the admin or main thread. `mu` guards config and role.
 */
#include "replication/replica.h"

#include "replication/peer.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a primary waits before sending again to a secondary whose node
 * has not opened the replica yet. */
#define OPENING_PAUSE_MS 20
/* A learner gets log entries this many at a time, for at most this long
 * per tick of its primary. */
#define LEARN_CHUNK 1000
#define LEARN_SLICE_MS 100

struct repl_replica {
    struct store_partition *sp;
    struct repl_writer *writer;
    uint32_t table_id, index;
    const struct repl_group_config *group; /* NULL: a node that is its own cluster */
    struct repl_peer_session *session;     /* the writer thread's, for prepares */
    struct repl_replication_stats st;      /* relaxed atomics */
    uint64_t lease_until_us;               /* atomic: a primary may serve reads until then */
    uint64_t sent_us;                      /* writer thread: the last group or heartbeat sent */
    uint64_t learn_after_ms; /* writer thread: the learner did not answer; not before */
    pthread_mutex_t mu;
    struct repl_config config;
    enum repl_role role;
    bool ready;        /* a primary that has committed its tail */
    bool suspect;      /* a secondary that gave up on its ballot's primary */
    uint64_t heard_ms; /* a secondary: cellar_mono_ms() of its primary's last message */
};

int repl_replica_open(struct store_engine *e, const char *dir, const char *table, uint32_t id,
                      uint32_t index, const struct repl_writer_config *wcfg,
                      const struct repl_config *config, bool tolerate, struct repl_replica **out)
{
    *out = NULL;
    struct repl_replica *r = cellar_xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    r->config = *config;
    r->role = REPL_ROLE_PRIMARY;
    r->ready = true;
    r->table_id = id;
    r->index = index;
    char name[32];
    snprintf(name, sizeof(name), "w%" PRIu32 ".%" PRIu32, id, index);
    int rc = store_partition_open(e, dir, &r->sp);
    if (rc < 0) {
        log_err("table %s: cannot open partition %" PRIu32 " in %s: %s", table, index, dir,
                cellar_strerror(rc));
        if (!tolerate)
            goto out;
        char why[128];
        snprintf(why, sizeof(why), "cannot open: %s (the log says more)", cellar_strerror(rc));
        r->sp = store_partition_new_failed(e, dir, why);
        rc = 0;
    }
    rc = repl_writer_start(r->sp, wcfg, name, &r->writer);
out:
    if (rc < 0) {
        repl_replica_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void repl_replica_close(struct repl_replica *r)
{
    if (!r)
        return;
    repl_writer_stop(r->writer);
    repl_peer_session_free(r->session);
    store_partition_close(r->sp);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Whether the replica may serve clients now: a primary that has committed
 * its log's tail and, for reads, holds its lease (every secondary acked a
 * message sent less than fd_lease_ms ago). A node that is its own
 * cluster, or a primary without secondaries, needs no lease. */
static bool serves(struct repl_replica *r, bool read)
{
    pthread_mutex_lock(&r->mu);
    bool ok = r->role == REPL_ROLE_PRIMARY && r->ready;
    if (ok && read && r->group && r->config.n_secondaries > 0)
        ok = cellar_mono_us() < __atomic_load_n(&r->lease_until_us, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&r->mu);
    return ok;
}

int repl_replica_read(struct repl_replica *r, struct store_partition **out)
{
    if (!serves(r, true))
        return -CELLAR_ENOTPRIMARY;
    *out = r->sp;
    return 0;
}

int repl_replica_writer(struct repl_replica *r, struct repl_writer **out)
{
    if (!serves(r, false))
        return -CELLAR_ENOTPRIMARY;
    *out = r->writer;
    return 0;
}

uint64_t repl_replica_ballot(struct repl_replica *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t b = r->config.ballot;
    pthread_mutex_unlock(&r->mu);
    return b;
}

struct store_partition *repl_replica_partition(const struct repl_replica *r)
{
    return r->sp;
}

struct repl_writer *repl_replica_writer_any(const struct repl_replica *r)
{
    return r->writer;
}

void repl_replica_config(struct repl_replica *r, struct repl_config *config, enum repl_role *role)
{
    pthread_mutex_lock(&r->mu);
    if (config)
        *config = r->config;
    if (role)
        *role = r->role;
    pthread_mutex_unlock(&r->mu);
}

/* The writer thread: asks meta for the next configuration of this
 * partition, a compare-and-set on c's ballot: "remove_secondary" (node, by
 * its primary) or "promote" (node, a secondary that heard nothing from its
 * primary for fd_grace_ms, in place of that primary). true when meta
 * granted it; the new configuration is then in *next. */
static bool propose(struct repl_replica *r, const struct repl_config *c, const char *change,
                    const char *node, struct repl_config *next)
{
    json_t *req = json_pack("{s:I, s:I, s:I, s:s, s:s, s:s}", "table_id", (json_int_t)r->table_id,
                            "partition", (json_int_t)r->index, "ballot", (json_int_t)c->ballot,
                            "change", change, "node", node, "by", r->group->self);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    long status = 0;
    struct cellar_buf reply = {0};
    int rc = repl_peer_post(r->group->peer, r->group->peer->meta, "/internal/v1/propose", text,
                            strlen(text), r->group->prepare_timeout_ms, &status, &reply);
    free(text);
    json_t *doc = rc == 0 && status == 200 ? json_loadb(reply.data, reply.len, 0, NULL) : NULL;
    cellar_buf_fini(&reply);
    bool ok = doc && repl_config_parse(json_object_get(doc, "config"), next) == 0 &&
              next->ballot > c->ballot;
    json_decref(doc);
    if (!ok)
        log_warn("replica %" PRIu32 ".%" PRIu32 ": meta did not grant %s of %s at ballot %" PRIu64
                 " (%s)",
                 r->table_id, r->index, change, node, c->ballot,
                 rc < 0          ? "not reached"
                 : status == 409 ? "the configuration moved on"
                                 : "refused");
    return ok;
}

/* The writer thread: asks meta to drop a secondary that did not log a
 * group; true when it did, with the new configuration applied here. */
static bool drop_secondary(struct repl_replica *r, const struct repl_config *c,
                           const char *secondary)
{
    struct repl_config next;
    if (!propose(r, c, "remove_secondary", secondary, &next))
        return false;
    log_notice("replica %" PRIu32 ".%" PRIu32 ": secondary %s dropped; ballot %" PRIu64
               ", %zu secondaries",
               r->table_id, r->index, secondary, next.ballot, next.n_secondaries);
    repl_replica_set_config(r, &next, REPL_ROLE_PRIMARY);
    __atomic_add_fetch(&r->st.dropped, 1, __ATOMIC_RELAXED);
    return true;
}

/* A prepare from this replica as primary of ballot (n 0: a heartbeat, or
 * a learner's probe). */
static void encode_prepare(const struct repl_replica *r, uint64_t ballot, uint64_t committed,
                           struct store_mutation *const *ms, size_t n, struct cellar_buf *body)
{
    struct repl_prepare_header h = {
        .table_id = r->table_id, .partition = r->index, .ballot = ballot, .committed = committed};
    snprintf(h.primary, sizeof(h.primary), "%s", r->group->self);
    repl_prepare_encode(&h, ms, n, body);
}

/* The writer thread of a primary with secondaries: the group (or, with n
 * 0, a heartbeat) goes to every secondary of the configuration at once,
 * on connections the replica keeps; each logs it and answers with the
 * last decree it has logged. The group commits only when every secondary
 * of the configuration has logged it: one that did not is dropped from
 * the configuration by meta (a new ballot), and the group goes again to
 * the ones left. When meta cannot drop it, the group fails:
 * -CELLAR_EOUTCOME when a secondary may have logged it, else
 * -CELLAR_EUNAVAIL. Every round that all secondaries acked renews the
 * lease from the moment it was sent. */
static int replicate_group(struct repl_replica *r, struct store_mutation *const *ms, size_t n,
                           uint64_t committed)
{
    if (!r->session && !(r->session = repl_peer_session_new(r->group->peer)))
        return -CELLAR_EUNAVAIL;
    uint64_t last = n ? ms[n - 1]->decree : committed;
    bool went_out = false; /* a secondary may have logged it */
    uint64_t first_round_ms = cellar_mono_ms();
    for (int round = 0; round < REPL_REPLICAS_MAX;) {
        struct repl_config c;
        pthread_mutex_lock(&r->mu);
        c = r->config;
        pthread_mutex_unlock(&r->mu);
        if (c.n_secondaries == 0)
            return 0;
        struct cellar_buf body = {0};
        encode_prepare(r, c.ballot, committed, ms, n, &body);
        int rcs[REPL_REPLICAS_MAX - 1];
        long statuses[REPL_REPLICAS_MAX - 1];
        struct cellar_buf replies[REPL_REPLICAS_MAX - 1];
        memset(replies, 0, sizeof(replies));
        uint64_t sent = cellar_mono_us();
        r->sent_us = sent;
        repl_peer_post_all(r->session, c.secondaries, c.n_secondaries, "/internal/v1/prepare",
                           body.data, body.len, r->group->prepare_timeout_ms, rcs, statuses,
                           replies, r->group->prepares);
        cellar_buf_fini(&body);
        const char *failed = NULL; /* the last secondary that did not log it */
        bool opening = false;      /* one has not opened its replica yet */
        /* A secondary that does not host the replica yet (its node has not
         * applied the map that placed it there) gets up to fd_grace_ms
         * from the first round, as a silent one would. */
        bool patient = cellar_mono_ms() - first_round_ms < r->group->grace_ms;
        for (size_t i = 0; i < c.n_secondaries; i++) {
            json_t *doc = rcs[i] == 0 ? json_loadb(replies[i].data, replies[i].len, 0, NULL) : NULL;
            json_t *logged = json_object_get(doc, "logged");
            bool ok = rcs[i] == 0 && statuses[i] == 200 && json_is_integer(logged) &&
                      (uint64_t)json_integer_value(logged) >= last;
            /* Only a refusal it answered says it logged nothing. */
            went_out |= n > 0 && (rcs[i] < 0 || statuses[i] == 200);
            if (!ok && rcs[i] == 0 && statuses[i] == 404 && patient) {
                opening = true;
            } else if (!ok) {
                log_warn("replica %" PRIu32 ".%" PRIu32 ": secondary %s did not log %s up to "
                         "decree %" PRIu64 " (%s)",
                         r->table_id, r->index, c.secondaries[i], n ? "a group" : "a heartbeat",
                         last, rcs[i] < 0 ? "not reached" : "refused");
                failed = c.secondaries[i];
            }
            json_decref(doc);
            cellar_buf_fini(&replies[i]);
        }
        if (!failed && !opening) {
            uint64_t until = sent + r->group->lease_ms * 1000;
            __atomic_store_n(&r->lease_until_us, until, __ATOMIC_RELEASE);
            return 0;
        }
        if (!failed) {
            struct timespec pause = {0, OPENING_PAUSE_MS * 1000000L};
            nanosleep(&pause, NULL);
            continue;
        }
        /* One at a time: each drop is its own ballot. */
        if (!drop_secondary(r, &c, failed))
            break;
        round++;
    }
    return went_out ? -CELLAR_EOUTCOME : -CELLAR_EUNAVAIL;
}

/* The writer's replication hook, set for every replica of a cluster: a
 * group commits only on a primary (a role handed on or lost while writes
 * were queued fails them, unsent, rather than committing them here), and
 * only once its secondaries logged it (replicate_group, counted). */
static int replicate(void *arg, struct store_mutation *const *ms, size_t n, uint64_t committed)
{
    struct repl_replica *r = arg;
    pthread_mutex_lock(&r->mu);
    bool primary = r->role == REPL_ROLE_PRIMARY;
    size_t secondaries = r->config.n_secondaries;
    pthread_mutex_unlock(&r->mu);
    if (!primary)
        return -CELLAR_ENOTPRIMARY;
    if (secondaries == 0)
        return 0;
    repl_writer_gather_next(r->writer, r->group->gather_us);
    uint64_t t0 = cellar_mono_us();
    int rc = replicate_group(r, ms, n, committed);
    __atomic_add_fetch(&r->st.groups, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&r->st.wait_us, cellar_mono_us() - t0, __ATOMIC_RELAXED);
    if (rc < 0)
        __atomic_add_fetch(&r->st.failed, 1, __ATOMIC_RELAXED);
    return rc;
}

void repl_replica_replication_stats(struct repl_replica *r, struct repl_replication_stats *out)
{
    out->groups = __atomic_load_n(&r->st.groups, __ATOMIC_RELAXED);
    out->failed = __atomic_load_n(&r->st.failed, __ATOMIC_RELAXED);
    out->wait_us = __atomic_load_n(&r->st.wait_us, __ATOMIC_RELAXED);
    out->dropped = __atomic_load_n(&r->st.dropped, __ATOMIC_RELAXED);
    out->promotions = __atomic_load_n(&r->st.promotions, __ATOMIC_RELAXED);
    out->learned = __atomic_load_n(&r->st.learned, __ATOMIC_RELAXED);
}

/* One prepare to the learner alone: n entries (none: only a probe, which
 * applies nothing there) and the committed decree to apply up to. 0 with
 * its applied decree in *applied; -CELLAR_ENOTFOUND when it answered but
 * took nothing (its node has not applied the map naming it yet: it will
 * with its next beacon), -CELLAR_EUNAVAIL when it could not be reached. */
static int learner_post(struct repl_replica *r, const struct repl_config *c,
                        struct store_mutation *const *ms, size_t n, uint64_t committed,
                        uint64_t *applied)
{
    struct cellar_buf body = {0};
    encode_prepare(r, c->ballot, committed, ms, n, &body);
    int rc = 0;
    long status = 0;
    struct cellar_buf reply = {0};
    repl_peer_post_all(r->session, &c->learner, 1, "/internal/v1/prepare", body.data, body.len,
                       r->group->prepare_timeout_ms, &rc, &status, &reply, r->group->prepares);
    cellar_buf_fini(&body);
    json_t *doc = rc == 0 && status == 200 ? json_loadb(reply.data, reply.len, 0, NULL) : NULL;
    cellar_buf_fini(&reply);
    json_t *a = json_object_get(doc, "applied");
    bool answered = rc == 0 && status > 0;
    rc = json_is_integer(a) ? 0 : answered ? -CELLAR_ENOTFOUND : -CELLAR_EUNAVAIL;
    if (rc == 0)
        *applied = (uint64_t)json_integer_value(a);
    json_decref(doc);
    return rc;
}

/* A learner that needs decrees the log no longer holds copies this
 * replica's checkpoint instead (learn.h): it is asked to, and probed
 * again after fd_grace_ms, until the copy is in place and the log reaches
 * back far enough. */
static void ask_to_copy(struct repl_replica *r, const struct repl_config *c, uint64_t theirs)
{
    char body[REPL_ADDR_MAX + 128];
    int len =
        snprintf(body, sizeof(body),
                 "{\"table_id\": %" PRIu32 ", \"partition\": %" PRIu32 ", \"primary\": \"%s\"}",
                 r->table_id, r->index, r->group->self);
    long status = 0;
    struct cellar_buf reply = {0};
    int rc = repl_peer_post(r->group->peer, c->learner, "/internal/v1/learn", body, (size_t)len,
                            r->group->prepare_timeout_ms, &status, &reply);
    cellar_buf_fini(&reply);
    log_notice("replica %" PRIu32 ".%" PRIu32 ": learner %s needs decree %" PRIu64
               ", which the log no longer holds; it copies a checkpoint (%s %ld)",
               r->table_id, r->index, c->learner, theirs + 1,
               rc ? "not reached" : "asked:", status);
    r->learn_after_ms = cellar_mono_ms() + r->group->grace_ms;
}

/* A primary's learner (the writer thread): the committed log entries it
 * lacks go to it a chunk at a time, for at most LEARN_SLICE_MS per tick so
 * that writes go on between ticks. Once it has everything committed here
 * (and, the writer being busy with this, nothing new can commit), meta is
 * asked to make it a secondary (ballot + 1), and the next group goes to
 * it. The first contact only asks for its applied decree: what it logged
 * beyond that may be from an old primary and is overwritten, never
 * applied. */
static void learn(struct repl_replica *r, const struct repl_config *c)
{
    if (!r->session && !(r->session = repl_peer_session_new(r->group->peer)))
        return;
    uint64_t start = cellar_mono_ms(), theirs = 0;
    if (start < r->learn_after_ms)
        return;
    int probe = learner_post(r, c, NULL, 0, 0, &theirs);
    if (probe < 0) {
        /* One that answered is asked again at the next tick; one not
         * reached not every tick: each try may cost the writer
         * prepare_timeout_ms. */
        if (probe == -CELLAR_EUNAVAIL)
            r->learn_after_ms = start + r->group->grace_ms;
        return;
    }
    /* What it lacks stays in the log until it joins (or copies a
     * checkpoint, then needs what comes after it). */
    repl_writer_keep_log_from(r->writer, theirs + 1);
    uint64_t ours = store_partition_applied_decree(r->sp);
    while (theirs < ours && cellar_mono_ms() - start < LEARN_SLICE_MS) {
        size_t n = ours - theirs < LEARN_CHUNK ? (size_t)(ours - theirs) : LEARN_CHUNK;
        struct store_mutation **ms = cellar_xcalloc(n, sizeof(*ms));
        struct cellar_buf buf = {0};
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            cellar_buf_reset(&buf);
            rc = store_partition_read_log(r->sp, theirs + 1 + i, &buf);
            if (rc == 0)
                rc = store_mutation_decode(buf.data, buf.len, &ms[i]);
        }
        cellar_buf_fini(&buf);
        uint64_t now = theirs;
        if (rc == 0)
            rc = learner_post(r, c, ms, n, theirs + n, &now);
        else if (rc == -CELLAR_ENOTFOUND)
            ask_to_copy(r, c, theirs);
        else
            log_err("replica %" PRIu32 ".%" PRIu32 ": reading the log for learner %s failed: %s",
                    r->table_id, r->index, c->learner, cellar_strerror(rc));
        for (size_t i = 0; i < n; i++)
            store_mutation_free(ms[i]);
        free(ms);
        if (rc < 0 || now <= theirs)
            return;
        __atomic_add_fetch(&r->st.learned, now - theirs, __ATOMIC_RELAXED);
        theirs = now;
    }
    if (theirs < ours)
        return; /* more at the next tick */
    struct repl_config next;
    if (!propose(r, c, "add_secondary", c->learner, &next))
        return;
    log_notice("replica %" PRIu32 ".%" PRIu32 ": learner %s caught up at decree %" PRIu64
               "; a secondary from ballot %" PRIu64,
               r->table_id, r->index, c->learner, ours, next.ballot);
    repl_replica_set_config(r, &next, REPL_ROLE_PRIMARY);
}

bool repl_config_is_secondary(const struct repl_config *c, const char *addr)
{
    for (size_t s = 0; addr[0] && s < c->n_secondaries; s++) {
        if (strcmp(c->secondaries[s], addr) == 0)
            return true;
    }
    return false;
}

/* The moves meta asks of a primary (the writer thread, no group in
 * flight): hand the role to want_primary (this replica stays, as a
 * secondary: everything it committed, that one has logged), or, once the
 * learner has joined, take the leaving secondary out. */
static void carry_out_moves(struct repl_replica *r, const struct repl_config *c)
{
    struct repl_config next;
    if (repl_config_is_secondary(c, c->want_primary)) {
        if (!propose(r, c, "promote", c->want_primary, &next))
            return;
        log_notice("replica %" PRIu32 ".%" PRIu32 ": primary role handed to %s (ballot %" PRIu64
                   ")",
                   r->table_id, r->index, c->want_primary, next.ballot);
        repl_replica_set_config(r, &next, REPL_ROLE_SECONDARY);
    } else if (repl_config_is_secondary(c, c->leaving)) {
        if (!propose(r, c, "remove_secondary", c->leaving, &next))
            return;
        log_notice("replica %" PRIu32 ".%" PRIu32 ": %s moved off (ballot %" PRIu64 ")",
                   r->table_id, r->index, c->leaving, next.ballot);
        repl_replica_set_config(r, &next, REPL_ROLE_PRIMARY);
    }
}

/* A primary's timer (the writer thread, every fd_beacon_ms / 2): commit
 * the log's tail once after becoming primary, then keep the lease with a
 * heartbeat when nothing was sent for fd_beacon_ms. */
static void primary_tick(struct repl_replica *r, const struct repl_config *c, bool ready)
{
    if (!ready) {
        if (repl_writer_commit_tail(r->writer) < 0)
            return; /* again at the next tick */
        if (c->n_secondaries > 0 &&
            replicate_group(r, NULL, 0, store_partition_applied_decree(r->sp)) < 0)
            return;
        pthread_mutex_lock(&r->mu);
        bool same = r->role == REPL_ROLE_PRIMARY && r->config.ballot == c->ballot;
        r->ready |= same;
        pthread_mutex_unlock(&r->mu);
        if (same)
            log_notice("replica %" PRIu32 ".%" PRIu32 ": serving as primary of ballot %" PRIu64
                       " from decree %" PRIu64,
                       r->table_id, r->index, c->ballot, store_partition_applied_decree(r->sp));
        return;
    }
    /* A group that went out and failed left a tail: settled now rather
     * than with the next write. */
    if (repl_writer_commit_tail(r->writer) < 0)
        return;
    if (c->n_secondaries > 0 && cellar_mono_us() - r->sent_us >= r->group->beacon_ms * 1000)
        replicate_group(r, NULL, 0, store_partition_applied_decree(r->sp));
    if (c->learner[0])
        learn(r, c);
    else
        carry_out_moves(r, c);
}

/* A secondary's timer: after fd_grace_ms without a word from its primary
 * it stops taking that ballot's messages (the primary's lease has run out
 * by then: it is shorter, and timed from sends that came before) and asks
 * meta to make it primary in its place. */
static void secondary_tick(struct repl_replica *r, const struct repl_config *c, uint64_t heard)
{
    uint64_t silent = cellar_mono_ms() - heard;
    if (silent < r->group->grace_ms)
        return;
    pthread_mutex_lock(&r->mu);
    bool same = r->role == REPL_ROLE_SECONDARY && r->config.ballot == c->ballot;
    bool first = same && !r->suspect;
    if (same)
        r->suspect = true;
    pthread_mutex_unlock(&r->mu);
    if (!same)
        return;
    if (first)
        log_warn("replica %" PRIu32 ".%" PRIu32 ": nothing from primary %s for %" PRIu64
                 " ms (ballot %" PRIu64 "); asking to take over",
                 r->table_id, r->index, c->primary[0] ? c->primary : "(none)", silent, c->ballot);
    struct repl_config next;
    if (!propose(r, c, "promote", r->group->self, &next))
        return; /* again at the next tick, unless a map or a newer primary comes first */
    log_notice("replica %" PRIu32 ".%" PRIu32 ": primary of ballot %" PRIu64
               " in place of %s, with %zu secondaries",
               r->table_id, r->index, next.ballot, c->primary, next.n_secondaries);
    __atomic_add_fetch(&r->st.promotions, 1, __ATOMIC_RELAXED);
    repl_replica_set_config(r, &next, REPL_ROLE_PRIMARY);
    primary_tick(r, &next, false);
}

static void tick(void *arg)
{
    struct repl_replica *r = arg;
    pthread_mutex_lock(&r->mu);
    struct repl_config c = r->config;
    enum repl_role role = r->role;
    bool ready = r->ready;
    uint64_t heard = r->heard_ms;
    pthread_mutex_unlock(&r->mu);
    /* Only a primary with a learner keeps its log for it (learn). */
    if (role != REPL_ROLE_PRIMARY || !c.learner[0])
        repl_writer_keep_log_from(r->writer, 0);
    if (role == REPL_ROLE_PRIMARY)
        primary_tick(r, &c, ready);
    else if (role == REPL_ROLE_SECONDARY)
        secondary_tick(r, &c, heard);
}

void repl_replica_join(struct repl_replica *r, const struct repl_group_config *group)
{
    pthread_mutex_lock(&r->mu);
    r->group = group;
    r->role = REPL_ROLE_INACTIVE;
    r->ready = false;
    pthread_mutex_unlock(&r->mu);
    uint64_t every = group->beacon_ms / 2;
    repl_writer_set_replicate(r->writer, replicate, r);
    repl_writer_set_tick(r->writer, tick, r, every ? every : 1);
}

void repl_replica_set_config(struct repl_replica *r, const struct repl_config *config,
                             enum repl_role role)
{
    pthread_mutex_lock(&r->mu);
    if (config->ballot < r->config.ballot) {
        /* A map made before a change this replica already applied. */
        pthread_mutex_unlock(&r->mu);
        return;
    }
    bool became_primary = role == REPL_ROLE_PRIMARY && r->role != REPL_ROLE_PRIMARY;
    if (role == REPL_ROLE_SECONDARY &&
        (r->role != REPL_ROLE_SECONDARY || config->ballot != r->config.ballot)) {
        /* A new primary, or a new ballot: a full grace period for it. */
        r->heard_ms = cellar_mono_ms();
        r->suspect = false;
    }
    r->config = *config;
    r->role = role;
    if (became_primary && r->group)
        r->ready = false; /* until its tail is committed (the tick) */
    pthread_mutex_unlock(&r->mu);
    if (became_primary && r->group)
        repl_writer_tick_soon(r->writer);
}

int repl_replica_prepare(struct repl_replica *r, const struct repl_prepare_header *h,
                         struct store_mutation **ms, size_t n, repl_prepared_fn done, void *arg)
{
    /* An older ballot's primary is refused, and so is the current one's
     * once this secondary gave up on it; a newer ballot is adopted, with
     * the primary that sent it (meta's map with the rest follows). */
    pthread_mutex_lock(&r->mu);
    bool member = r->role == REPL_ROLE_SECONDARY || r->role == REPL_ROLE_LEARNER;
    /* A primary that handed its role on hears from its successor before
     * meta's answer reaches it: it is a secondary from then on (the
     * successor commits nothing it has not logged, so it serves nothing
     * stale meanwhile). */
    bool deposed = r->role == REPL_ROLE_PRIMARY && r->group && h->ballot > r->config.ballot &&
                   strcmp(h->primary, r->group->self) != 0;
    if (deposed) {
        log_notice("replica %" PRIu32 ".%" PRIu32 ": %s is primary of ballot %" PRIu64
                   "; a secondary from now on",
                   r->table_id, r->index, h->primary, h->ballot);
        r->role = REPL_ROLE_SECONDARY;
        r->ready = false;
        member = true;
    }
    bool mine =
        member && (h->ballot > r->config.ballot || (h->ballot == r->config.ballot && !r->suspect));
    if (mine) {
        if (h->ballot > r->config.ballot) {
            r->config.ballot = h->ballot;
            snprintf(r->config.primary, sizeof(r->config.primary), "%s", h->primary);
            r->suspect = false;
        }
        r->heard_ms = cellar_mono_ms();
    }
    pthread_mutex_unlock(&r->mu);
    if (!mine) {
        for (size_t i = 0; i < n; i++)
            store_mutation_free(ms[i]);
        free(ms);
        return -CELLAR_ENOTPRIMARY;
    }
    return repl_writer_submit_prepare(r->writer, ms, n, h->committed, done, arg);
}

void repl_prepare_encode(const struct repl_prepare_header *h, struct store_mutation *const *ms,
                         size_t n, struct cellar_buf *out)
{
    json_t *j =
        json_pack("{s:I, s:I, s:I, s:s, s:I, s:I}", "table_id", (json_int_t)h->table_id,
                  "partition", (json_int_t)h->partition, "ballot", (json_int_t)h->ballot, "primary",
                  h->primary, "committed", (json_int_t)h->committed, "n", (json_int_t)n);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    cellar_buf_append_u32be(out, (uint32_t)strlen(text));
    cellar_buf_append(out, text, strlen(text));
    free(text);
    struct cellar_buf enc = {0};
    for (size_t i = 0; i < n; i++) {
        cellar_buf_reset(&enc);
        store_mutation_encode(ms[i], &enc);
        cellar_buf_append_u32be(out, (uint32_t)enc.len);
        cellar_buf_append(out, enc.data, enc.len);
    }
    cellar_buf_fini(&enc);
}

int repl_prepare_decode(const char *data, size_t len, struct repl_prepare_header *hdr,
                        struct store_mutation ***ms, size_t *n)
{
    *ms = NULL;
    *n = 0;
    memset(hdr, 0, sizeof(*hdr));
    if (len < 4)
        return -CELLAR_EINVAL;
    uint32_t hlen = cellar_load_u32be(data);
    if (hlen > len - 4)
        return -CELLAR_EINVAL;
    json_t *h = json_loadb(data + 4, hlen, 0, NULL);
    json_int_t id = 0, part = 0, b = 0, c = 0, count = 0;
    const char *primary = NULL;
    int rc = json_unpack(h, "{s:I, s:I, s:I, s:s, s:I, s:I}", "table_id", &id, "partition", &part,
                         "ballot", &b, "primary", &primary, "committed", &c, "n", &count);
    if (rc == 0 && strlen(primary) < sizeof(hdr->primary))
        snprintf(hdr->primary, sizeof(hdr->primary), "%s", primary);
    else
        rc = -1;
    json_decref(h);
    if (rc != 0 || id < 1 || id > UINT32_MAX || part < 0 || part >= 1024 || b < 1 || c < 0 ||
        count < 0 || (size_t)count > (len - 4 - hlen) / 4)
        return -CELLAR_EINVAL;
    struct store_mutation **list = cellar_xcalloc(count ? (size_t)count : 1, sizeof(*list));
    size_t pos = 4 + hlen;
    for (json_int_t i = 0; i < count; i++) {
        uint32_t mlen = len - pos >= 4 ? cellar_load_u32be(data + pos) : UINT32_MAX;
        if (mlen == UINT32_MAX || mlen > len - pos - 4 ||
            store_mutation_decode(data + pos + 4, mlen, &list[i]) < 0) {
            for (json_int_t k = 0; k < i; k++)
                store_mutation_free(list[k]);
            free(list);
            return -CELLAR_EINVAL;
        }
        pos += 4 + mlen;
    }
    if (pos != len) {
        for (json_int_t k = 0; k < count; k++)
            store_mutation_free(list[k]);
        free(list);
        return -CELLAR_EINVAL;
    }
    hdr->table_id = (uint32_t)id;
    hdr->partition = (uint32_t)part;
    hdr->ballot = (uint64_t)b;
    hdr->committed = (uint64_t)c;
    *ms = list;
    *n = (size_t)count;
    return 0;
}

const char *repl_role_name(enum repl_role role)
{
    switch (role) {
    case REPL_ROLE_PRIMARY:
        return "primary";
    case REPL_ROLE_SECONDARY:
        return "secondary";
    case REPL_ROLE_LEARNER:
        return "learner";
    default:
        return "inactive";
    }
}

json_t *repl_config_json(const struct repl_config *c)
{
    json_t *secs = json_array();
    for (size_t i = 0; i < c->n_secondaries; i++)
        json_array_append_new(secs, json_string(c->secondaries[i]));
    json_t *j =
        json_pack("{s:I, s:o, s:o}", "ballot", (json_int_t)c->ballot, "primary",
                  c->primary[0] ? json_string(c->primary) : json_null(), "secondaries", secs);
    if (c->learner[0])
        json_object_set_new(j, "learner", json_string(c->learner));
    if (c->leaving[0])
        json_object_set_new(j, "leaving", json_string(c->leaving));
    if (c->want_primary[0])
        json_object_set_new(j, "want_primary", json_string(c->want_primary));
    return j;
}

int repl_config_parse(json_t *j, struct repl_config *c)
{
    memset(c, 0, sizeof(*c));
    json_t *ballot = json_object_get(j, "ballot"), *primary = json_object_get(j, "primary");
    json_t *secs = json_object_get(j, "secondaries");
    struct {
        const char *key;
        char *into;
    } moves[] = {
        {"learner", c->learner}, {"leaving", c->leaving}, {"want_primary", c->want_primary}};
    for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++) {
        json_t *v = json_object_get(j, moves[i].key);
        if (v && !json_is_string(v))
            return -CELLAR_EINVAL;
        if (v)
            snprintf(moves[i].into, REPL_ADDR_MAX, "%s", json_string_value(v));
    }
    if (!json_is_integer(ballot) || json_integer_value(ballot) < 0 ||
        (primary && !json_is_null(primary) && !json_is_string(primary)) ||
        (secs && !json_is_array(secs)) || json_array_size(secs) > REPL_REPLICAS_MAX - 1)
        return -CELLAR_EINVAL;
    c->ballot = (uint64_t)json_integer_value(ballot);
    if (json_is_string(primary))
        snprintf(c->primary, sizeof(c->primary), "%s", json_string_value(primary));
    size_t i;
    json_t *s;
    json_array_foreach(secs, i, s)
    {
        if (!json_is_string(s))
            return -CELLAR_EINVAL;
        snprintf(c->secondaries[c->n_secondaries++], REPL_ADDR_MAX, "%s", json_string_value(s));
    }
    return 0;
}

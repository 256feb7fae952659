/*
 * meta.c - the meta role (meta.h): nodes from beacons, the catalog, every
 * partition's configuration, placement, and the map.
 *
 * Persistence (metadata.h): the catalog's records and next id
 * (catalog.h), each table's configurations under "config/<id>" (a JSON
 * array, one per partition), and "meta_epoch", the count of meta's starts,
 * which makes map versions grow across restarts. A record and its
 * configurations are written before the in-memory state changes.
 *
 * Node state is soft: it is rebuilt from beacons after a restart, starting
 * every node named in a configuration as alive.
 *
 * Threads: HTTP workers (beacons, maps), the admin thread (table changes)
 * and meta's liveness thread. `mu` guards everything below it; the map
 * pushes of a table change run after it is let go, serialised by
 * `change_mu`.
 */
#include "replication/meta.h"

#include "replication/cluster.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_KEY_PREFIX "config/"
#define DRAIN_KEY_PREFIX "draining/"
#define EPOCH_KEY "meta_epoch"
/* A push opens or closes every replica of a table on the node: a table of
 * many partitions takes a while. */
#define PUSH_TIMEOUT_MS 120000
/* A node a primary handed its role to: it opens nothing, so it answers
 * at once. */
#define HANDOVER_PUSH_TIMEOUT_MS 2000

enum node_state { NODE_ALIVE = 0, NODE_UNREACHABLE, NODE_DEAD };

struct meta_node {
    char addr[REPL_ADDR_MAX];
    bool role_meta, role_data;
    bool draining; /* an admin asked for its replicas to move off (saved) */
    enum node_state state;
    uint64_t last_beacon_ms; /* cellar_mono_ms() */
};

/* What meta remembers of a partition between changes (not saved: a
 * restarted meta starts afresh). */
struct part_state {
    uint64_t under_since_ms; /* short of replicas since (cellar_mono_ms), 0: it is not */
    /* The nodes last taken out of its configuration, newest first. */
    char removed[REPL_REPLICAS_MAX][REPL_ADDR_MAX];
};

struct meta_table {
    struct repl_table_meta meta;
    struct repl_config *configs; /* partition_count */
    struct part_state *parts;    /* partition_count */
};

struct repl_meta {
    struct repl_meta_config cfg;
    struct repl_metadata *md;
    pthread_mutex_t change_mu; /* one table change (and its pushes) at a time */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool stop;
    pthread_t thread;
    bool thread_started;
    struct meta_node *nodes;
    size_t n_nodes;
    struct meta_table *tables;
    size_t n_tables;
    uint32_t next_id;
    uint64_t version;   /* epoch << 32 | changes */
    uint64_t judged_ms; /* when judge_nodes last ran */
};

static const char *state_name(enum node_state s)
{
    return s == NODE_ALIVE ? "alive" : s == NODE_UNREACHABLE ? "unreachable" : "dead";
}

/* --- Nodes (callers hold mu) --------------------------------------------- */

static struct meta_node *node_find(struct repl_meta *m, const char *addr)
{
    for (size_t i = 0; i < m->n_nodes; i++) {
        if (strcmp(m->nodes[i].addr, addr) == 0)
            return &m->nodes[i];
    }
    return NULL;
}

static struct meta_node *node_add(struct repl_meta *m, const char *addr)
{
    m->nodes = cellar_xrealloc(m->nodes, (m->n_nodes + 1) * sizeof(*m->nodes));
    struct meta_node *n = &m->nodes[m->n_nodes++];
    memset(n, 0, sizeof(*n));
    snprintf(n->addr, sizeof(n->addr), "%s", addr);
    n->role_data = true;
    n->state = NODE_ALIVE;
    n->last_beacon_ms = cellar_mono_ms();
    m->version++;
    return n;
}

/* Judges every node by the time since its last beacon; a change of state
 * is a change of the map. Time in which meta itself could not hear is not
 * the nodes' silence: when this runs late (mu held by a slow synced save,
 * the process descheduled or stopped), beacons were waiting too, so every
 * node's silence is shortened by the delay. */
static void judge_nodes(struct repl_meta *m, uint64_t now)
{
    uint64_t period = m->cfg.fd_beacon_ms;
    uint64_t late =
        m->judged_ms && now > m->judged_ms + 2 * period ? now - m->judged_ms - period : 0;
    m->judged_ms = now;
    if (late)
        log_warn("meta: liveness ran %" PRIu64 " ms late; not counted as silence", late);
    for (size_t i = 0; i < m->n_nodes; i++) {
        struct meta_node *n = &m->nodes[i];
        n->last_beacon_ms = n->last_beacon_ms + late < now ? n->last_beacon_ms + late : now;
        uint64_t silent = now > n->last_beacon_ms ? now - n->last_beacon_ms : 0;
        enum node_state s = silent >= m->cfg.replace_after_ms ? NODE_DEAD
                            : silent >= m->cfg.fd_grace_ms    ? NODE_UNREACHABLE
                                                              : NODE_ALIVE;
        if (s != n->state) {
            log_notice("meta: node %s is %s (silent for %" PRIu64 " ms)", n->addr, state_name(s),
                       silent);
            n->state = s;
            m->version++;
        }
    }
}

static int configs_save(struct repl_meta *m, const struct meta_table *t);

/* The liveness thread changed t's configurations (learners, moves): saved,
 * and a new map version. A failed save is logged; the next change saves
 * them all again. Caller holds mu. */
static void configs_changed(struct repl_meta *m, const struct meta_table *t)
{
    if (configs_save(m, t) < 0)
        log_err("meta: saving the configurations of table %s failed", t->meta.name);
    m->version++;
}

static bool in_config(const struct repl_config *c, const char *addr)
{
    return strcmp(c->primary, addr) == 0 || strcmp(c->learner, addr) == 0 ||
           repl_config_is_secondary(c, addr);
}

/* A node that may take replicas: alive, data, not draining. */
static bool takes_replicas(const struct meta_node *n)
{
    return n && n->role_data && n->state == NODE_ALIVE && !n->draining;
}

/* The replicas (or, with primaries, the primaries) node addr holds in
 * the available tables once the moves under way are done: a learner's
 * replica counts, a leaving one does not, and a primary to be handed over
 * counts for the node it goes to. */
static size_t load_of(const struct repl_meta *m, const char *addr, bool primaries)
{
    size_t load = 0;
    for (size_t k = 0; k < m->n_tables; k++) {
        if (m->tables[k].meta.status != REPL_TABLE_AVAILABLE)
            continue;
        for (uint32_t p = 0; p < m->tables[k].meta.partition_count; p++) {
            const struct repl_config *c = &m->tables[k].configs[p];
            if (primaries)
                load += strcmp(c->want_primary[0] ? c->want_primary : c->primary, addr) == 0;
            else
                load += in_config(c, addr) && strcmp(c->leaving, addr) != 0;
        }
    }
    return load;
}

/* The node that takes replicas, is not in c, and holds the fewest. */
static const struct meta_node *least_loaded(struct repl_meta *m, const struct repl_config *c)
{
    const struct meta_node *best = NULL;
    size_t best_load = 0;
    for (size_t i = 0; i < m->n_nodes; i++) {
        const struct meta_node *n = &m->nodes[i];
        if (!takes_replicas(n) || in_config(c, n->addr))
            continue;
        size_t load = load_of(m, n->addr, false);
        if (!best || load < best_load) {
            best = n;
            best_load = load;
        }
    }
    return best;
}

/* A learner for a partition short of replicas (caller holds mu): a node
 * lately taken out of it, as soon as it is alive again (it has the data up
 * to where it left, and learns the rest from the log); another alive data
 * node, the one with the fewest replicas, once the partition has been
 * short for replace_after_ms. NULL: none yet. */
static const struct meta_node *pick_learner(struct repl_meta *m, const struct repl_config *c,
                                            const struct part_state *ps, uint64_t now)
{
    for (size_t i = 0; i < REPL_REPLICAS_MAX; i++) {
        const struct meta_node *back = node_find(m, ps->removed[i]);
        if (takes_replicas(back) && !in_config(c, back->addr))
            return back;
    }
    if (now - ps->under_since_ms < m->cfg.replace_after_ms)
        return NULL;
    return least_loaded(m, c);
}

static bool move_pending(const struct repl_config *c)
{
    return c->learner[0] || c->leaving[0] || c->want_primary[0];
}

/* A member of c on a draining node (its primary first), or NULL. */
static const char *draining_member(struct repl_meta *m, const struct repl_config *c)
{
    const struct meta_node *n = node_find(m, c->primary);
    if (n && n->draining)
        return c->primary;
    for (size_t s = 0; s < c->n_secondaries; s++) {
        n = node_find(m, c->secondaries[s]);
        if (n && n->draining)
            return c->secondaries[s];
    }
    return NULL;
}

/* A secondary of c that is to stay (its node is not draining). */
static const char *staying_secondary(struct repl_meta *m, const struct repl_config *c)
{
    for (size_t s = 0; s < c->n_secondaries; s++) {
        const struct meta_node *n = node_find(m, c->secondaries[s]);
        if (n && !n->draining && n->state == NODE_ALIVE)
            return c->secondaries[s];
    }
    return NULL;
}

/* Moves one replica of c off node `from` (a secondary): a learner on the
 * least loaded node, then, once it has joined, the primary takes `from`
 * out. false when no node can take it. */
static bool move_secondary(struct repl_meta *m, struct repl_config *c, const char *from)
{
    const struct meta_node *to = least_loaded(m, c);
    if (!to)
        return false;
    snprintf(c->learner, sizeof(c->learner), "%s", to->addr);
    snprintf(c->leaving, sizeof(c->leaving), "%s", from);
    return true;
}

/* Drain and balance (caller holds mu), at most balance_moves_max moves at
 * a time, each carried out by the partition's primary (replica.c): a
 * draining node's primaries are handed to a secondary that stays, then
 * its secondaries are replaced by learners on other nodes; then replicas,
 * and then primaries, go from the node that holds the most to the one
 * that holds the fewest while they differ by two or more. Changes are
 * saved and make a new map version. */
static void plan_moves(struct repl_meta *m)
{
    size_t pending = 0;
    for (size_t k = 0; k < m->n_tables; k++) {
        const struct meta_table *t = &m->tables[k];
        for (uint32_t p = 0; t->meta.status == REPL_TABLE_AVAILABLE && p < t->meta.partition_count;
             p++)
            pending += move_pending(&t->configs[p]);
    }
    size_t budget = pending < m->cfg.balance_moves_max ? m->cfg.balance_moves_max - pending : 0;
    /* Balance only a healthy cluster: every data node alive, every
     * partition whole (repair comes first). */
    bool healthy = true;
    for (size_t i = 0; i < m->n_nodes; i++)
        healthy &=
            !m->nodes[i].role_data || m->nodes[i].state == NODE_ALIVE || m->nodes[i].draining;
    for (size_t k = 0; k < m->n_tables && healthy; k++) {
        for (uint32_t p = 0; p < m->tables[k].meta.partition_count; p++)
            healthy &= m->tables[k].meta.status != REPL_TABLE_AVAILABLE ||
                       1 + m->tables[k].configs[p].n_secondaries >= m->tables[k].meta.replica_count;
    }
    /* Drain, then the two balances: pass 0, 1, 2. A balance pass that
     * planned a move measures the loads again (again) and goes on, until
     * the budget is spent or the loads are even. */
    bool again = false;
    for (int pass = 0; pass < (healthy ? 3 : 1) && budget > 0; pass += !again) {
        again = false;
        const struct meta_node *most = NULL, *fewest = NULL;
        size_t hi = 0, lo = 0;
        if (pass > 0) {
            for (size_t i = 0; i < m->n_nodes; i++) {
                const struct meta_node *n = &m->nodes[i];
                if (!takes_replicas(n))
                    continue;
                size_t load = load_of(m, n->addr, pass == 2);
                if (!most || load > hi) {
                    most = n;
                    hi = load;
                }
                if (!fewest || load < lo) {
                    fewest = n;
                    lo = load;
                }
            }
            if (!most || hi < lo + 2)
                continue;
        }
        for (size_t k = 0; k < m->n_tables && budget > 0; k++) {
            struct meta_table *t = &m->tables[k];
            if (t->meta.status != REPL_TABLE_AVAILABLE)
                continue;
            bool changed = false;
            for (uint32_t p = 0; p < t->meta.partition_count && budget > 0; p++) {
                struct repl_config *c = &t->configs[p];
                if (!c->primary[0] || move_pending(c))
                    continue;
                bool moved = false;
                if (pass == 0) {
                    /* A primary is handed to a secondary that stays (one
                     * learns first when there is none); a secondary goes
                     * once another has joined in its place. */
                    const char *x = draining_member(m, c), *stay = NULL;
                    if (!x)
                        continue;
                    bool spare = 1 + c->n_secondaries > t->meta.replica_count;
                    const struct meta_node *to = NULL;
                    if (strcmp(x, c->primary) == 0 && (stay = staying_secondary(m, c))) {
                        snprintf(c->want_primary, sizeof(c->want_primary), "%s", stay);
                        moved = true;
                    } else if (strcmp(x, c->primary) == 0 && (to = least_loaded(m, c))) {
                        snprintf(c->learner, sizeof(c->learner), "%s", to->addr);
                        moved = true;
                    } else if (strcmp(x, c->primary) != 0 && spare) {
                        snprintf(c->leaving, sizeof(c->leaving), "%s", x);
                        moved = true;
                    } else if (strcmp(x, c->primary) != 0) {
                        moved = move_secondary(m, c, x);
                    }
                } else if (pass == 1) {
                    bool sec = in_config(c, most->addr) && strcmp(c->primary, most->addr) != 0;
                    moved = sec && !in_config(c, fewest->addr) && move_secondary(m, c, most->addr);
                } else {
                    bool sec = in_config(c, fewest->addr) && strcmp(c->primary, fewest->addr) != 0;
                    if (strcmp(c->primary, most->addr) == 0 && sec) {
                        snprintf(c->want_primary, sizeof(c->want_primary), "%s", fewest->addr);
                        moved = true;
                    }
                }
                if (!moved)
                    continue;
                log_notice("meta: table %s partition %" PRIu32 ": %s", t->meta.name, p,
                           c->want_primary[0] ? "primary to be handed over"
                           : c->leaving[0]    ? "replica to be moved"
                                              : "a replica to learn first");
                changed = true;
                budget--;
                if (pass > 0)
                    break; /* loads changed: measured again */
            }
            if (changed)
                configs_changed(m, t);
            if (changed && pass > 0) {
                again = true;
                break;
            }
        }
    }
}

/* A learner whose node is not alive is given up, and with it the move it
 * was learning for, if any (caller holds mu): repair then picks another
 * node, and balance plans again. The one place where learners are let go
 * for their node, so that a repair never inherits a move's leaving node. */
static void drop_gone_learners(struct repl_meta *m)
{
    for (size_t k = 0; k < m->n_tables; k++) {
        struct meta_table *t = &m->tables[k];
        bool changed = false;
        for (uint32_t p = 0; t->meta.status == REPL_TABLE_AVAILABLE && p < t->meta.partition_count;
             p++) {
            struct repl_config *c = &t->configs[p];
            const struct meta_node *ln = node_find(m, c->learner);
            if (!c->learner[0] || (ln && ln->state == NODE_ALIVE))
                continue;
            log_notice("meta: table %s partition %" PRIu32 ": learner %s gone%s", t->meta.name, p,
                       c->learner, c->leaving[0] ? "; its move is given up" : "");
            c->learner[0] = c->leaving[0] = '\0';
            changed = true;
        }
        if (changed)
            configs_changed(m, t);
    }
}

/* Repair (caller holds mu): every partition short of replicas gets a
 * learner; its primary brings it up to date and has meta make it a
 * secondary (repl_meta_propose, ADD_SECONDARY); drop_gone_learners has
 * let go of the ones whose node died. Changes are saved and make a new
 * map version; nodes learn of them from their beacons. */
static void plan_learners(struct repl_meta *m, uint64_t now)
{
    for (size_t k = 0; k < m->n_tables; k++) {
        struct meta_table *t = &m->tables[k];
        if (t->meta.status != REPL_TABLE_AVAILABLE)
            continue;
        bool changed = false;
        for (uint32_t p = 0; p < t->meta.partition_count; p++) {
            struct repl_config *c = &t->configs[p];
            struct part_state *ps = &t->parts[p];
            size_t have = 1 + c->n_secondaries;
            if (!c->primary[0] || have >= t->meta.replica_count) {
                ps->under_since_ms = 0;
                continue;
            }
            if (!ps->under_since_ms)
                ps->under_since_ms = now;
            if (c->learner[0])
                continue; /* alive: drop_gone_learners ran first */
            const struct meta_node *pick = pick_learner(m, c, ps, now);
            if (!pick)
                continue;
            snprintf(c->learner, sizeof(c->learner), "%s", pick->addr);
            log_notice("meta: table %s partition %" PRIu32 ": %s learns from primary %s",
                       t->meta.name, p, pick->addr, c->primary);
            changed = true;
        }
        if (changed)
            configs_changed(m, t);
    }
}

static void *liveness_main(void *arg)
{
    struct repl_meta *m = arg;
    pthread_setname_np(pthread_self(), "meta-liveness");
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        judge_nodes(m, cellar_mono_ms());
        drop_gone_learners(m);
        plan_learners(m, cellar_mono_ms());
        plan_moves(m);
        struct timespec until = cellar_deadline_us(CLOCK_REALTIME, m->cfg.fd_beacon_ms * 1000u);
        pthread_cond_timedwait(&m->wake, &m->mu, &until);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* --- Tables (callers hold mu) -------------------------------------------- */

static struct meta_table *table_find(struct repl_meta *m, const char *name, bool dropped)
{
    struct meta_table *best = NULL;
    for (size_t i = 0; i < m->n_tables; i++) {
        struct meta_table *t = &m->tables[i];
        if (strcmp(t->meta.name, name) != 0)
            continue;
        if (!dropped && t->meta.status == REPL_TABLE_AVAILABLE)
            return t;
        if (dropped && t->meta.status == REPL_TABLE_DROPPED &&
            (!best || t->meta.drop_time_ms >= best->meta.drop_time_ms))
            best = t;
    }
    return best;
}

static json_t *configs_json(const struct meta_table *t)
{
    json_t *a = json_array();
    for (uint32_t p = 0; p < t->meta.partition_count; p++)
        json_array_append_new(a, repl_config_json(&t->configs[p]));
    return a;
}

static int configs_save(struct repl_meta *m, const struct meta_table *t)
{
    char key[32];
    snprintf(key, sizeof(key), CONFIG_KEY_PREFIX "%010" PRIu32, t->meta.id);
    json_t *a = configs_json(t);
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    int rc = m->md->ops->put(m->md, key, text, strlen(text));
    free(text);
    return rc;
}

static int configs_delete(struct repl_meta *m, uint32_t id)
{
    char key[32];
    snprintf(key, sizeof(key), CONFIG_KEY_PREFIX "%010" PRIu32, id);
    return m->md->ops->del(m->md, key);
}

/* Records then configurations: a table is saved whole before it exists. */
static int table_save(struct repl_meta *m, const struct meta_table *t)
{
    int rc = repl_catalog_save(m->md, &t->meta);
    return rc < 0 ? rc : configs_save(m, t);
}

static void table_append(struct repl_meta *m, const struct meta_table *t)
{
    m->tables = cellar_xrealloc(m->tables, (m->n_tables + 1) * sizeof(*m->tables));
    struct meta_table *added = &m->tables[m->n_tables++];
    *added = *t;
    added->parts = cellar_xcalloc(t->meta.partition_count, sizeof(*added->parts));
}

static void table_remove(struct repl_meta *m, struct meta_table *t)
{
    free(t->configs);
    free(t->parts);
    size_t i = (size_t)(t - m->tables);
    memmove(&m->tables[i], &m->tables[i + 1], (m->n_tables - i - 1) * sizeof(*m->tables));
    m->n_tables--;
}

/* --- The map ------------------------------------------------------------- */

/* Whether a configuration of any table, dropped ones included, names
 * addr (as primary, secondary or learner). Caller holds mu. */
static bool named_anywhere(const struct repl_meta *m, const char *addr)
{
    for (size_t k = 0; k < m->n_tables; k++) {
        for (uint32_t p = 0; p < m->tables[k].meta.partition_count; p++) {
            if (in_config(&m->tables[k].configs[p], addr))
                return true;
        }
    }
    return false;
}

/* A node's state as the map shows it: a draining node is "drained" once
 * no configuration names it (alive or not), "draining" before while it
 * is alive. */
static const char *node_state_name(const struct repl_meta *m, const struct meta_node *n)
{
    if (!n->draining)
        return state_name(n->state);
    if (named_anywhere(m, n->addr))
        return n->state == NODE_ALIVE ? "draining" : state_name(n->state);
    return "drained";
}

static json_t *map_locked(struct repl_meta *m)
{
    json_t *nodes = json_array();
    for (size_t i = 0; i < m->n_nodes; i++) {
        const struct meta_node *n = &m->nodes[i];
        json_t *roles = json_array();
        if (n->role_meta)
            json_array_append_new(roles, json_string("meta"));
        if (n->role_data)
            json_array_append_new(roles, json_string("data"));
        json_array_append_new(nodes, json_pack("{s:s, s:s, s:o}", "address", n->addr, "state",
                                               node_state_name(m, n), "roles", roles));
    }
    json_t *tables = json_array();
    for (size_t i = 0; i < m->n_tables; i++) {
        char *text = repl_table_meta_encode(&m->tables[i].meta);
        json_t *jt = json_loads(text, 0, NULL);
        free(text);
        json_object_set_new(jt, "configs", configs_json(&m->tables[i]));
        json_array_append_new(tables, jt);
    }
    return json_pack("{s:I, s:s, s:o, s:o}", "version", (json_int_t)m->version, "meta_leader",
                     m->cfg.self, "nodes", nodes, "tables", tables);
}

json_t *repl_meta_map(struct repl_meta *m)
{
    pthread_mutex_lock(&m->mu);
    json_t *map = map_locked(m);
    pthread_mutex_unlock(&m->mu);
    return map;
}

/* Sends the map (its JSON text) to one node, best effort: it gets it with
 * its next beacon anyway. */
static void send_map(struct repl_meta *m, const char *addr, const char *text, uint64_t timeout_ms)
{
    long status = 0;
    struct cellar_buf reply = {0};
    int rc = repl_peer_post(m->cfg.peer, addr, "/internal/v1/map", text, strlen(text), timeout_ms,
                            &status, &reply);
    if (rc < 0 || status != 200)
        log_warn("meta: pushing the map to %s failed (%s); it gets it with its next beacon", addr,
                 rc < 0 ? cellar_strerror(rc) : "refused");
    cellar_buf_fini(&reply);
}

/* Sends the map to the one node a primary handed its role to. */
static void push_to(struct repl_meta *m, const char *addr)
{
    if (strcmp(addr, m->cfg.self) == 0)
        return; /* applied here already */
    json_t *map = repl_meta_map(m);
    char *text = json_dumps(map, JSON_COMPACT);
    json_decref(map);
    send_map(m, addr, text, HANDOVER_PUSH_TIMEOUT_MS);
    free(text);
}

/* The addresses of the nodes other than this one that beacon (alive,
 * draining and drained alike: they all still hear from meta); n set to
 * their count. The caller frees the array. */
static char (*peers_alive(struct repl_meta *m, size_t *n))[REPL_ADDR_MAX]
{
    pthread_mutex_lock(&m->mu);
    char(*addrs)[REPL_ADDR_MAX] = cellar_xcalloc(m->n_nodes + 1, sizeof(*addrs));
    *n = 0;
    for (size_t i = 0; i < m->n_nodes; i++) {
        const struct meta_node *nd = &m->nodes[i];
        if (nd->state == NODE_ALIVE && strcmp(nd->addr, m->cfg.self) != 0)
            memcpy(addrs[(*n)++], nd->addr, REPL_ADDR_MAX);
    }
    pthread_mutex_unlock(&m->mu);
    return addrs;
}

/* Sends the map to this node's registry and, with others, to every other
 * node that beacons, so that a table change is in force everywhere when
 * the call that made it returns. A node that misses it gets it with its
 * next beacon. */
static void push_map(struct repl_meta *m, bool others)
{
    json_t *map = repl_meta_map(m);
    if (m->cfg.local)
        repl_registry_apply_map(m->cfg.local, map);
    if (others) {
        char *text = json_dumps(map, JSON_COMPACT);
        size_t n;
        char(*addrs)[REPL_ADDR_MAX] = peers_alive(m, &n);
        for (size_t i = 0; i < n; i++)
            send_map(m, addrs[i], text, PUSH_TIMEOUT_MS);
        free(addrs);
        free(text);
    }
    json_decref(map);
}

void repl_meta_compact_everywhere(struct repl_meta *m, const char *name)
{
    json_t *req = json_pack("{s:s}", "table", name);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    size_t n;
    char(*addrs)[REPL_ADDR_MAX] = peers_alive(m, &n);
    for (size_t i = 0; i < n; i++) {
        long status = 0;
        struct cellar_buf reply = {0};
        /* Compaction takes as long as it takes: a generous bound. */
        if (repl_peer_post(m->cfg.peer, addrs[i], "/internal/v1/compact", text, strlen(text),
                           600000, &status, &reply) < 0 ||
            status != 202)
            log_warn("meta: %s did not compact table %s", addrs[i], name);
        cellar_buf_fini(&reply);
    }
    free(addrs);
    free(text);
}

/* --- Beacons ------------------------------------------------------------- */

int repl_meta_beacon(struct repl_meta *m, json_t *beacon, json_t **reply)
{
    const char *addr = json_string_value(json_object_get(beacon, "address"));
    json_t *roles = json_object_get(beacon, "roles");
    json_t *jv = json_object_get(beacon, "version");
    if (!addr || repl_addr_valid(addr) < 0 || !json_is_array(roles) || !json_is_integer(jv))
        return -CELLAR_EINVAL;
    bool meta = false, data = false;
    size_t i;
    json_t *r;
    json_array_foreach(roles, i, r)
    {
        const char *s = json_string_value(r);
        meta |= s && strcmp(s, "meta") == 0;
        data |= s && strcmp(s, "data") == 0;
    }
    pthread_mutex_lock(&m->mu);
    struct meta_node *n = node_find(m, addr);
    if (!n) {
        log_notice("meta: node %s joined (roles:%s%s)", addr, meta ? " meta" : "",
                   data ? " data" : "");
        n = node_add(m, addr);
    }
    if (n->role_meta != meta || n->role_data != data) {
        n->role_meta = meta;
        n->role_data = data;
        m->version++;
    }
    n->last_beacon_ms = cellar_mono_ms();
    if (n->state != NODE_ALIVE) {
        log_notice("meta: node %s is alive again", addr);
        n->state = NODE_ALIVE;
        m->version++;
    }
    uint64_t known = (uint64_t)json_integer_value(jv);
    *reply = json_pack("{s:I}", "version", (json_int_t)m->version);
    if (known != m->version)
        json_object_set_new(*reply, "map", map_locked(m));
    pthread_mutex_unlock(&m->mu);
    return 0;
}

/* --- Table changes --------------------------------------------------------- */

/* A change: one at a time, under mu; change_end lets mu go, pushes the
 * map when the change was made (rc 0: to this node only, or to every node
 * with push_others), and returns rc. */
static void change_begin(struct repl_meta *m)
{
    pthread_mutex_lock(&m->change_mu);
    pthread_mutex_lock(&m->mu);
}

static int change_end(struct repl_meta *m, int rc, bool push_others)
{
    pthread_mutex_unlock(&m->mu);
    if (rc == 0)
        push_map(m, push_others);
    pthread_mutex_unlock(&m->change_mu);
    return rc;
}

/* Places a new table's partitions: each primary on the alive data node
 * with the fewest primaries so far (counting the ones placed here), then
 * each secondary on another alive data node with the fewest replicas, ties
 * to the address order: never two replicas of a partition on one node.
 * -CELLAR_ENONODES when there are fewer alive data nodes than replicas.
 * Caller holds mu. */
static int place(struct repl_meta *m, struct meta_table *t)
{
    size_t n = 0;
    size_t *load = cellar_xcalloc(m->n_nodes ? m->n_nodes : 1, sizeof(*load));
    size_t *replicas = cellar_xcalloc(m->n_nodes ? m->n_nodes : 1, sizeof(*replicas));
    for (size_t i = 0; i < m->n_nodes; i++)
        n += takes_replicas(&m->nodes[i]);
    if (n < t->meta.replica_count || n == 0) {
        free(load);
        free(replicas);
        return -CELLAR_ENONODES;
    }
    for (size_t k = 0; k < m->n_tables; k++) {
        for (uint32_t p = 0; p < m->tables[k].meta.partition_count; p++) {
            const struct repl_config *c = &m->tables[k].configs[p];
            struct meta_node *pn = node_find(m, c->primary);
            if (pn) {
                load[pn - m->nodes]++;
                replicas[pn - m->nodes]++;
            }
            for (size_t s = 0; s < c->n_secondaries; s++) {
                struct meta_node *sn = node_find(m, c->secondaries[s]);
                if (sn)
                    replicas[sn - m->nodes]++;
            }
        }
    }
    for (uint32_t p = 0; p < t->meta.partition_count; p++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < m->n_nodes; i++) {
            const struct meta_node *c = &m->nodes[i];
            if (!takes_replicas(c))
                continue;
            if (best == SIZE_MAX || load[i] < load[best] ||
                (load[i] == load[best] && strcmp(c->addr, m->nodes[best].addr) < 0))
                best = i;
        }
        struct repl_config *cfg = &t->configs[p];
        memset(cfg, 0, sizeof(*cfg));
        cfg->ballot = 1;
        snprintf(cfg->primary, sizeof(cfg->primary), "%s", m->nodes[best].addr);
        load[best]++;
        replicas[best]++;
        while (cfg->n_secondaries + 1 < t->meta.replica_count) {
            size_t pick = SIZE_MAX;
            for (size_t i = 0; i < m->n_nodes; i++) {
                const struct meta_node *c = &m->nodes[i];
                bool taken = strcmp(c->addr, cfg->primary) == 0;
                for (size_t s = 0; s < cfg->n_secondaries; s++)
                    taken |= strcmp(c->addr, cfg->secondaries[s]) == 0;
                if (taken || !takes_replicas(c))
                    continue;
                if (pick == SIZE_MAX || replicas[i] < replicas[pick] ||
                    (replicas[i] == replicas[pick] && strcmp(c->addr, m->nodes[pick].addr) < 0))
                    pick = i;
            }
            snprintf(cfg->secondaries[cfg->n_secondaries++], REPL_ADDR_MAX, "%s",
                     m->nodes[pick].addr);
            replicas[pick]++;
        }
    }
    free(load);
    free(replicas);
    return 0;
}

int repl_meta_table_create(struct repl_meta *m, const struct repl_table_spec *spec,
                           struct repl_table_meta *out)
{
    uint32_t pc = spec->partition_count ? spec->partition_count : m->cfg.default_partition_count;
    uint32_t rcnt = spec->replica_count ? spec->replica_count : m->cfg.default_replica_count;
    bool ro;
    uint64_t rate;
    if (!repl_table_name_valid(spec->name, strlen(spec->name)) || pc < 1 ||
        pc > REPL_PARTITIONS_MAX || (pc & (pc - 1)) != 0 || rcnt > REPL_REPLICAS_MAX ||
        spec->default_ttl_s < 0 || spec->n_envs > REPL_ENVS_MAX ||
        repl_envs_parse(spec->envs, spec->n_envs, &ro, &rate) < 0)
        return -CELLAR_EINVAL;
    change_begin(m);
    int rc = 0;
    struct meta_table t = {0};
    if (table_find(m, spec->name, false)) {
        rc = -CELLAR_EEXIST;
        goto out;
    }
    if (rcnt == 0) {
        /* Automatic: three, or every data node alive when fewer. */
        for (size_t i = 0; i < m->n_nodes; i++)
            rcnt += takes_replicas(&m->nodes[i]);
        rcnt = rcnt < 3 ? (rcnt ? rcnt : 1) : 3;
    }
    t.meta.id = m->next_id;
    snprintf(t.meta.name, sizeof(t.meta.name), "%s", spec->name);
    t.meta.partition_count = pc;
    t.meta.replica_count = rcnt;
    t.meta.default_ttl_s = spec->default_ttl_s;
    t.meta.status = REPL_TABLE_AVAILABLE;
    t.meta.create_time_ms = cellar_now_ms();
    t.meta.n_envs = spec->n_envs;
    memcpy(t.meta.envs, spec->envs, spec->n_envs * sizeof(spec->envs[0]));
    t.configs = cellar_xcalloc(pc, sizeof(*t.configs));
    if ((rc = place(m, &t)) < 0)
        goto out;
    if ((rc = repl_catalog_save_next_id(m->md, m->next_id + 1)) < 0)
        goto out;
    m->next_id++;
    if ((rc = table_save(m, &t)) < 0)
        goto out;
    table_append(m, &t);
    t.configs = NULL;
    m->version++;
    *out = m->tables[m->n_tables - 1].meta;
    log_info("meta: table %s created: id %" PRIu32 ", %" PRIu32 " partitions", out->name, out->id,
             pc);
out:
    free(t.configs);
    return change_end(m, rc, true);
}

/* Purges t (caller holds mu): its record and configurations go; nodes
 * destroy its replicas once the map no longer names it. */
static int purge_locked(struct repl_meta *m, struct meta_table *t)
{
    int rc = configs_delete(m, t->meta.id);
    if (rc == 0)
        rc = repl_catalog_delete(m->md, t->meta.id);
    if (rc < 0)
        return rc;
    log_info("meta: table %s (id %" PRIu32 ") purged", t->meta.name, t->meta.id);
    table_remove(m, t);
    m->version++;
    return 0;
}

int repl_meta_table_drop(struct repl_meta *m, const char *name, bool purge,
                         struct repl_table_meta *out)
{
    change_begin(m);
    int rc = 0;
    struct meta_table *t = table_find(m, name, false);
    if (!t) {
        rc = -CELLAR_ENOTFOUND;
        goto out;
    }
    struct repl_table_meta rec = t->meta;
    rec.status = REPL_TABLE_DROPPED;
    rec.drop_time_ms = cellar_now_ms();
    if ((rc = repl_catalog_save(m->md, &rec)) < 0)
        goto out;
    t->meta = rec;
    m->version++;
    *out = rec;
    log_info("meta: table %s (id %" PRIu32 ") dropped", rec.name, rec.id);
    if (purge)
        rc = purge_locked(m, t);
out:
    return change_end(m, rc, true);
}

int repl_meta_table_recall(struct repl_meta *m, const char *name, const char *new_name,
                           struct repl_table_meta *out)
{
    if (new_name && !repl_table_name_valid(new_name, strlen(new_name)))
        return -CELLAR_EINVAL;
    change_begin(m);
    int rc = 0;
    struct meta_table *t = table_find(m, name, true);
    const char *target = new_name ? new_name : name;
    if (!t) {
        rc = -CELLAR_ENOTFOUND;
        goto out;
    }
    if (table_find(m, target, false)) {
        rc = -CELLAR_EEXIST;
        goto out;
    }
    struct repl_table_meta rec = t->meta;
    snprintf(rec.name, sizeof(rec.name), "%s", target);
    rec.status = REPL_TABLE_AVAILABLE;
    rec.drop_time_ms = 0;
    if ((rc = repl_catalog_save(m->md, &rec)) < 0)
        goto out;
    t->meta = rec;
    m->version++;
    *out = rec;
    log_info("meta: table %s (id %" PRIu32 ") recalled as %s", name, rec.id, rec.name);
out:
    return change_end(m, rc, true);
}

int repl_meta_table_update(struct repl_meta *m, const char *name, bool set_ttl, int64_t ttl_s,
                           size_t n_envs, const struct repl_env *envs, struct repl_table_meta *out)
{
    if (set_ttl && ttl_s < 0)
        return -CELLAR_EINVAL;
    change_begin(m);
    int rc = 0;
    struct meta_table *t = table_find(m, name, false);
    if (!t) {
        rc = -CELLAR_ENOTFOUND;
        goto out;
    }
    struct repl_table_meta rec = t->meta;
    if (set_ttl)
        rec.default_ttl_s = ttl_s;
    if ((rc = repl_envs_merge(&rec, envs, n_envs)) < 0)
        goto out;
    if ((rc = repl_catalog_save(m->md, &rec)) < 0)
        goto out;
    t->meta = rec;
    m->version++;
    *out = rec;
out:
    return change_end(m, rc, true);
}

static void note_removed(struct part_state *ps, const char *addr)
{
    memmove(ps->removed[1], ps->removed[0], (REPL_REPLICAS_MAX - 1) * sizeof(ps->removed[0]));
    snprintf(ps->removed[0], REPL_ADDR_MAX, "%s", addr);
}

/* The configuration after change (at ballot + 1), made from cur; false
 * when the change does not apply to cur. */
static bool next_config(const struct repl_config *cur, enum repl_change change, const char *node,
                        const char *by, struct repl_config *next)
{
    if (change == REPL_CHANGE_ADD_SECONDARY) {
        /* The primary vouches that its learner has everything committed. */
        if (strcmp(cur->primary, by) != 0 || strcmp(cur->learner, node) != 0 ||
            cur->n_secondaries + 1 >= REPL_REPLICAS_MAX)
            return false;
        *next = *cur;
        snprintf(next->secondaries[next->n_secondaries++], REPL_ADDR_MAX, "%s", node);
        next->learner[0] = '\0';
        next->ballot = cur->ballot + 1;
        return true;
    }
    size_t k = 0;
    while (k < cur->n_secondaries && strcmp(cur->secondaries[k], node) != 0)
        k++;
    if (k == cur->n_secondaries)
        return false; /* node is not a secondary of cur */
    *next = *cur;
    memmove(next->secondaries[k], next->secondaries[k + 1],
            (next->n_secondaries - k - 1) * sizeof(next->secondaries[0]));
    next->n_secondaries--;
    next->ballot = cur->ballot + 1;
    if (change == REPL_CHANGE_REMOVE_SECONDARY)
        return strcmp(cur->primary, by) == 0;
    /* A promotion: the secondary asks for itself; the primary it gave up
     * on leaves the configuration. */
    snprintf(next->primary, sizeof(next->primary), "%s", node);
    if (strcmp(by, cur->primary) == 0) {
        /* A handover: the primary passes its role on and stays, as a
         * secondary (a move meta asked for, or a drain). */
        snprintf(next->secondaries[next->n_secondaries++], REPL_ADDR_MAX, "%s", cur->primary);
        return true;
    }
    return strcmp(node, by) == 0;
}

/* Moves a change completed or made moot are forgotten. */
static void settle_moves(struct repl_config *c)
{
    bool leaving = false, wanted = false;
    for (size_t s = 0; s < c->n_secondaries; s++) {
        leaving |= strcmp(c->secondaries[s], c->leaving) == 0;
        wanted |= strcmp(c->secondaries[s], c->want_primary) == 0;
    }
    if (!leaving)
        c->leaving[0] = '\0';
    if (!wanted)
        c->want_primary[0] = '\0';
}

int repl_meta_propose(struct repl_meta *m, uint32_t table_id, uint32_t partition, uint64_t ballot,
                      enum repl_change change, const char *node, const char *by,
                      struct repl_config *out)
{
    change_begin(m);
    int rc = -CELLAR_ENOTFOUND;
    struct meta_table *t = NULL;
    for (size_t i = 0; i < m->n_tables && !t; i++) {
        if (m->tables[i].meta.id == table_id && m->tables[i].meta.status == REPL_TABLE_AVAILABLE)
            t = &m->tables[i];
    }
    if (!t || partition >= t->meta.partition_count)
        goto out;
    struct repl_config *c = &t->configs[partition], was = *c, next;
    rc = -CELLAR_ENOTPRIMARY;
    if (c->ballot != ballot || !next_config(c, change, node, by, &next))
        goto out;
    settle_moves(&next);
    *c = next;
    if ((rc = configs_save(m, t)) < 0) {
        *c = was;
        goto out;
    }
    m->version++;
    *out = *c;
    if (change == REPL_CHANGE_REMOVE_SECONDARY)
        note_removed(&t->parts[partition], node);
    else if (change == REPL_CHANGE_PROMOTE && strcmp(by, node) == 0)
        note_removed(&t->parts[partition], was.primary);
    if (change == REPL_CHANGE_ADD_SECONDARY)
        log_notice("meta: table %" PRIu32 " partition %" PRIu32 ": learner %s is a secondary of "
                   "ballot %" PRIu64,
                   table_id, partition, node, c->ballot);
    else if (change == REPL_CHANGE_PROMOTE)
        log_notice("meta: table %" PRIu32 " partition %" PRIu32 ": %s is primary of ballot %" PRIu64
                   " in place of %s",
                   table_id, partition, node, c->ballot, was.primary);
    else
        log_notice("meta: table %" PRIu32 " partition %" PRIu32 ": secondary %s removed at the "
                   "request of primary %s (ballot %" PRIu64 ")",
                   table_id, partition, node, by, c->ballot);
out:
    /* This node's registry has it at once; no push to the others: the
     * proposer applies the answer, the rest learn of it from their
     * beacons, and a push must not wait on a failed node. But for the
     * node a primary handed its role to, which serves nothing until it
     * knows. */
    rc = change_end(m, rc, false);
    if (rc == 0 && change == REPL_CHANGE_PROMOTE && strcmp(by, node) != 0)
        push_to(m, node);
    return rc;
}

static void drain_key(const char *addr, char *key, size_t n)
{
    snprintf(key, n, DRAIN_KEY_PREFIX "%s", addr);
}

int repl_meta_drain(struct repl_meta *m, const char *addr, json_t **node)
{
    change_begin(m);
    int rc = -CELLAR_ENOTFOUND;
    struct meta_node *n = node_find(m, addr);
    if (!n)
        goto out;
    if (!n->draining) {
        char key[REPL_ADDR_MAX + 16];
        drain_key(addr, key, sizeof(key));
        if ((rc = m->md->ops->put(m->md, key, "1", 1)) < 0)
            goto out;
        n->draining = true;
        m->version++;
        log_notice("meta: draining node %s", addr);
    }
    rc = 0;
    *node = json_pack("{s:s, s:s}", "address", n->addr, "state", node_state_name(m, n));
out:
    return change_end(m, rc, false);
}

int repl_meta_forget(struct repl_meta *m, const char *addr)
{
    change_begin(m);
    int rc = -CELLAR_ENOTFOUND;
    struct meta_node *n = node_find(m, addr);
    if (!n)
        goto out;
    rc = -CELLAR_EEXIST; /* it still holds data */
    if (named_anywhere(m, addr))
        goto out;
    rc = -CELLAR_EBUSY;
    const char *state = node_state_name(m, n);
    if (strcmp(state, "dead") != 0 && strcmp(state, "drained") != 0)
        goto out;
    char key[REPL_ADDR_MAX + 16];
    drain_key(addr, key, sizeof(key));
    if ((rc = m->md->ops->del(m->md, key)) < 0 && rc != -CELLAR_ENOTFOUND)
        goto out;
    rc = 0;
    log_notice("meta: node %s forgotten", addr);
    size_t i = (size_t)(n - m->nodes);
    memmove(&m->nodes[i], &m->nodes[i + 1], (m->n_nodes - i - 1) * sizeof(*m->nodes));
    m->n_nodes--;
    m->version++;
out:
    return change_end(m, rc, false);
}

int repl_meta_purge_expired(struct repl_meta *m, uint64_t now_ms)
{
    int purged = 0;
    change_begin(m);
    for (size_t i = 0; i < m->n_tables;) {
        struct meta_table *t = &m->tables[i];
        if (t->meta.status == REPL_TABLE_DROPPED &&
            t->meta.drop_time_ms + m->cfg.drop_retention_ms <= now_ms && purge_locked(m, t) == 0) {
            purged++;
            continue; /* the array shifted into slot i */
        }
        i++;
    }
    change_end(m, purged ? 0 : -CELLAR_ENOTFOUND, true);
    return purged;
}

/* --- Open and close ------------------------------------------------------- */

static int load_record(void *arg, const struct repl_table_meta *rec)
{
    struct repl_meta *m = arg;
    struct meta_table t = {.meta = *rec};
    t.configs = cellar_xcalloc(rec->partition_count, sizeof(*t.configs));
    char key[32];
    snprintf(key, sizeof(key), CONFIG_KEY_PREFIX "%010" PRIu32, rec->id);
    struct cellar_buf text = {0};
    int rc = m->md->ops->get(m->md, key, &text);
    json_t *a = rc == 0 ? json_loadb(text.data, text.len, 0, NULL) : NULL;
    cellar_buf_fini(&text);
    if (!json_is_array(a) || json_array_size(a) != rec->partition_count) {
        log_err("meta: the configurations of table %s (id %" PRIu32 ") are missing or corrupt",
                rec->name, rec->id);
        json_decref(a);
        free(t.configs);
        return -CELLAR_ECORRUPT;
    }
    for (uint32_t p = 0; p < rec->partition_count && rc == 0; p++)
        rc = repl_config_parse(json_array_get(a, p), &t.configs[p]);
    json_decref(a);
    if (rc < 0) {
        free(t.configs);
        return -CELLAR_ECORRUPT;
    }
    table_append(m, &t);
    if (rec->id >= m->next_id)
        m->next_id = rec->id + 1;
    return 0;
}

/* A node being drained, as saved: known (and draining) from the start. */
static int load_draining(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct repl_meta *m = arg;
    (void)val;
    (void)vlen;
    size_t plen = strlen(DRAIN_KEY_PREFIX);
    char addr[REPL_ADDR_MAX];
    if (klen <= plen || klen - plen >= sizeof(addr))
        return 0;
    memcpy(addr, key + plen, klen - plen);
    addr[klen - plen] = '\0';
    struct meta_node *n = node_find(m, addr);
    if (!n)
        n = node_add(m, addr);
    n->draining = true;
    return 0;
}

void repl_meta_close(struct repl_meta *m)
{
    if (!m)
        return;
    if (m->thread_started) {
        pthread_mutex_lock(&m->mu);
        m->stop = true;
        pthread_cond_signal(&m->wake);
        pthread_mutex_unlock(&m->mu);
        pthread_join(m->thread, NULL);
    }
    for (size_t i = 0; i < m->n_tables; i++) {
        free(m->tables[i].configs);
        free(m->tables[i].parts);
    }
    free(m->tables);
    free(m->nodes);
    if (m->md)
        m->md->ops->close(m->md);
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->change_mu);
    free(m);
}

int repl_meta_open(const char *dir, const struct repl_meta_config *cfg, struct repl_meta **out)
{
    struct repl_meta *m = cellar_xcalloc(1, sizeof(*m));
    m->cfg = *cfg;
    pthread_mutex_init(&m->change_mu, NULL);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->wake, NULL);
    struct cellar_buf text = {0};
    int rc = repl_metadata_embedded(dir, &m->md);
    if (rc < 0)
        goto out;
    if ((rc = repl_catalog_next_id(m->md, &m->next_id)) < 0 ||
        (rc = repl_catalog_load(m->md, load_record, m)) < 0)
        goto out;
    /* This start's epoch: every version it gives is above the last one's. */
    uint64_t epoch = 0;
    int64_t v = 0;
    rc = m->md->ops->get(m->md, EPOCH_KEY, &text);
    if (rc == 0 && cellar_parse_i64(text.data, text.len, &v) == 0 && v >= 0)
        epoch = (uint64_t)v;
    else if (rc < 0 && rc != -CELLAR_ENOTFOUND)
        goto out;
    epoch++;
    char num[24];
    size_t len = cellar_format_i64((int64_t)epoch, num);
    if ((rc = m->md->ops->put(m->md, EPOCH_KEY, num, len)) < 0)
        goto out;
    m->version = epoch << 32;
    /* Every node that holds a replica gets a full grace period. */
    for (size_t i = 0; i < m->n_tables; i++) {
        for (uint32_t p = 0; p < m->tables[i].meta.partition_count; p++) {
            const char *addr = m->tables[i].configs[p].primary;
            if (addr[0] && !node_find(m, addr))
                node_add(m, addr);
        }
    }
    if ((rc = m->md->ops->scan(m->md, DRAIN_KEY_PREFIX, load_draining, m)) < 0)
        goto out;
    if (pthread_create(&m->thread, NULL, liveness_main, m) != 0) {
        rc = -CELLAR_ESYS;
        goto out;
    }
    m->thread_started = true;
    log_info("meta: serving the cluster's metadata (%zu tables, epoch %" PRIu64 ")", m->n_tables,
             epoch);
out:
    cellar_buf_fini(&text);
    if (rc < 0) {
        repl_meta_close(m);
        m = NULL;
    }
    *out = m;
    return rc;
}

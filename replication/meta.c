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
#define EPOCH_KEY "meta_epoch"
/* A push opens or closes every replica of a table on the node: a table of
 * many partitions takes a while. */
#define PUSH_TIMEOUT_MS 120000

enum node_state { NODE_ALIVE = 0, NODE_UNREACHABLE, NODE_DEAD };

struct meta_node {
    char addr[REPL_ADDR_MAX];
    bool role_meta, role_data;
    enum node_state state;
    uint64_t last_beacon_ms; /* cellar_mono_ms() */
};

struct meta_table {
    struct repl_table_meta meta;
    struct repl_config *configs; /* partition_count */
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
    uint64_t version; /* epoch << 32 | changes */
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
 * is a change of the map. */
static void judge_nodes(struct repl_meta *m, uint64_t now)
{
    for (size_t i = 0; i < m->n_nodes; i++) {
        struct meta_node *n = &m->nodes[i];
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

static void *liveness_main(void *arg)
{
    struct repl_meta *m = arg;
    pthread_setname_np(pthread_self(), "meta-liveness");
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        judge_nodes(m, cellar_mono_ms());
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + m->cfg.fd_beacon_ms * 1000000ull;
        until.tv_sec += (time_t)(ns / 1000000000ull);
        until.tv_nsec = (long)(ns % 1000000000ull);
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
    m->tables[m->n_tables++] = *t;
}

static void table_remove(struct repl_meta *m, struct meta_table *t)
{
    free(t->configs);
    size_t i = (size_t)(t - m->tables);
    memmove(&m->tables[i], &m->tables[i + 1], (m->n_tables - i - 1) * sizeof(*m->tables));
    m->n_tables--;
}

/* --- The map ------------------------------------------------------------- */

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
                                               state_name(n->state), "roles", roles));
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

/* Sends the map to this node's registry and, with others, to every data
 * node that is alive, so that a table change is in force everywhere when
 * the call that made it returns. A node that misses it gets it with its
 * next beacon. */
static void push_map(struct repl_meta *m, bool others)
{
    json_t *map = repl_meta_map(m);
    if (m->cfg.local)
        repl_registry_apply_map(m->cfg.local, map);
    if (!others) {
        json_decref(map);
        return;
    }
    char *text = json_dumps(map, JSON_COMPACT);
    json_t *nodes = json_object_get(map, "nodes");
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *addr = json_string_value(json_object_get(n, "address"));
        const char *state = json_string_value(json_object_get(n, "state"));
        if (!addr || strcmp(addr, m->cfg.self) == 0 || strcmp(state, "alive") != 0)
            continue;
        long status = 0;
        struct cellar_buf reply = {0};
        int rc = repl_peer_post(m->cfg.peer, addr, "/internal/v1/map", text, strlen(text),
                                PUSH_TIMEOUT_MS, &status, &reply);
        if (rc < 0 || status != 200)
            log_warn("meta: pushing the map to %s failed (%s); it gets it with its next beacon",
                     addr, rc < 0 ? cellar_strerror(rc) : "refused");
        cellar_buf_fini(&reply);
    }
    free(text);
    json_decref(map);
}

void repl_meta_compact_everywhere(struct repl_meta *m, const char *name)
{
    json_t *map = repl_meta_map(m);
    json_t *req = json_pack("{s:s}", "table", name);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(map, "nodes"), i, n)
    {
        const char *addr = json_string_value(json_object_get(n, "address"));
        const char *state = json_string_value(json_object_get(n, "state"));
        if (!addr || strcmp(addr, m->cfg.self) == 0 || strcmp(state, "alive") != 0)
            continue;
        long status = 0;
        struct cellar_buf reply = {0};
        /* Compaction takes as long as it takes: a generous bound. */
        if (repl_peer_post(m->cfg.peer, addr, "/internal/v1/compact", text, strlen(text), 600000,
                           &status, &reply) < 0 ||
            status != 202)
            log_warn("meta: %s did not compact table %s", addr, name);
        cellar_buf_fini(&reply);
    }
    free(text);
    json_decref(map);
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
    for (size_t i = 0; i < m->n_nodes; i++) {
        if (m->nodes[i].role_data && m->nodes[i].state == NODE_ALIVE)
            n++;
    }
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
            if (!c->role_data || c->state != NODE_ALIVE)
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
                if (taken || !c->role_data || c->state != NODE_ALIVE)
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
        pc > REPL_PARTITIONS_MAX || (pc & (pc - 1)) != 0 || rcnt < 1 || rcnt > REPL_REPLICAS_MAX ||
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

/* The configuration after change (at ballot + 1), made from cur; false
 * when the change does not apply to cur. */
static bool next_config(const struct repl_config *cur, enum repl_change change, const char *node,
                        const char *by, struct repl_config *next)
{
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
    return strcmp(node, by) == 0;
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
    *c = next;
    if ((rc = configs_save(m, t)) < 0) {
        *c = was;
        goto out;
    }
    m->version++;
    *out = *c;
    if (change == REPL_CHANGE_PROMOTE)
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
     * beacons, and a push must not wait on a failed node. */
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
    for (size_t i = 0; i < m->n_tables; i++)
        free(m->tables[i].configs);
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

/*
 * registry.c - the node's tables and their hosted replicas (registry.h).
 *
 * Design: every table ever created and not yet purged has a struct
 * repl_table in one array; available tables also hold one open replica
 * per partition. Metadata is written to the metadata store before
 * the in-memory state changes, so a crash between the two leaves the store
 * describing what the next start will open. The next table id is persisted
 * (fsynced) before a table with that id creates any file, so ids are never
 * reused, even across a crash in the middle of a create.
 *
 * Locks: `lock` (rwlock, writer-preferring) guards the array and every
 * table's meta, parts and writers. Request handlers hold it for reading
 * while they use a table. `admin` (mutex) serialises admin calls, which
 * take `lock` for writing only to swap state, never across I/O.
 *
 * Threads: acquire/release from HTTP workers; admin calls from the API's
 * admin thread or the main thread (purge); open/close from main.
 */
#include "replication/registry.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "replication/learn.h"

struct repl_table {
    struct repl_table_meta meta;
    /* partition_count entries; NULL when dropped. In a cluster, an entry is
     * NULL for a partition this node does not host. */
    struct repl_replica **replicas;
    /* In a cluster: every partition's configuration from the map, for
     * routing (partition_count entries). NULL for a cluster of one. */
    struct repl_config *configs;
    /* Derived from meta.envs whenever they change (under the write lock). */
    struct repl_admission adm;
    const char *self; /* in a cluster: this node's address (the registry's) */
};

struct repl_registry {
    pthread_rwlock_t lock;
    pthread_mutex_t admin;
    struct repl_table **tables;
    size_t n_tables;
    size_t cap_tables;
    struct store_engine *engine;
    struct repl_metadata *meta; /* the catalog's store (a cluster of one) */
    char *data_dir;
    struct repl_registry_config cfg;
    uint32_t next_id; /* guarded by admin */
    /* In a cluster: the map applied (guarded by lock for reading, admin
     * and lock for writing). */
    uint64_t map_version;
    json_t *map;
};

void repl_registry_config_defaults(struct repl_registry_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->drop_retention_ms = 7ull * 24 * 3600 * 1000;
    cfg->default_partition_count = 8;
    cfg->default_replica_count = 0; /* automatic: 1 on a node of its own, 3 in a cluster */
    repl_writer_config_defaults(&cfg->writer);
}

/* --- Replicas ---------------------------------------------------------- */

static void partition_dir(const struct repl_registry *r, uint32_t id, uint32_t index, char *out,
                          size_t n)
{
    snprintf(out, n, "%s/replicas/%" PRIu32 ".%" PRIu32, r->data_dir, id, index);
}

/* Closes the replicas (draining their writers) and frees the array. */
static void replicas_close(uint32_t count, struct repl_replica **replicas)
{
    for (uint32_t i = 0; replicas && i < count; i++)
        repl_replica_close(replicas[i]);
    free(replicas);
}

/* The configuration of a replica of a node that is its own cluster: the
 * primary of ballot 1, no secondaries. */
static void own_config(struct repl_config *c)
{
    memset(c, 0, sizeof(*c));
    c->ballot = 1;
}

/* Opens a table's replicas. With tolerate (the node's start), a partition
 * that cannot be opened is logged and stands in as a failed partition, so
 * the node still serves every other one; otherwise (create, recall) it
 * fails the call. */
static int replicas_open(struct repl_registry *r, const struct repl_table_meta *m,
                         struct repl_replica ***out, bool tolerate, repl_progress_fn progress,
                         void *arg, size_t *done, size_t total)
{
    int rc = 0;
    struct repl_replica **replicas = cellar_xcalloc(m->partition_count, sizeof(*replicas));
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/replicas", r->data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        log_err("cannot create %s: %s", dir, strerror(errno));
        rc = -CELLAR_ESYS;
        goto out;
    }
    struct repl_config config;
    own_config(&config);
    for (uint32_t i = 0; i < m->partition_count; i++) {
        partition_dir(r, m->id, i, dir, sizeof(dir));
        rc = repl_replica_open(r->engine, dir, m->name, m->id, i, &r->cfg.writer, &config, tolerate,
                               &replicas[i]);
        if (rc < 0)
            goto out;
        if (progress && done)
            progress(arg, ++*done, total);
    }
out:
    if (rc < 0) {
        replicas_close(m->partition_count, replicas);
        replicas = NULL;
    }
    *out = replicas;
    return rc;
}

static int partitions_destroy(struct repl_registry *r, const struct repl_table_meta *m)
{
    int rc = 0;
    for (uint32_t i = 0; i < m->partition_count; i++) {
        char dir[4200];
        partition_dir(r, m->id, i, dir, sizeof(dir));
        int e = store_partition_destroy(r->engine, dir);
        if (e < 0) {
            log_err("table %s: cannot destroy %s: %s", m->name, dir, cellar_strerror(e));
            rc = e;
        }
    }
    return rc;
}

/* --- Table array (callers hold lock for writing, or admin while only
 * reading) ---------------------------------------------------------------- */

static void tables_append(struct repl_registry *r, struct repl_table *t)
{
    if (r->n_tables == r->cap_tables) {
        r->cap_tables = r->cap_tables ? r->cap_tables * 2 : 8;
        r->tables = cellar_xrealloc(r->tables, r->cap_tables * sizeof(*r->tables));
    }
    r->tables[r->n_tables++] = t;
}

static void tables_remove(struct repl_registry *r, struct repl_table *t)
{
    for (size_t i = 0; i < r->n_tables; i++) {
        if (r->tables[i] == t) {
            memmove(&r->tables[i], &r->tables[i + 1], (r->n_tables - i - 1) * sizeof(*r->tables));
            r->n_tables--;
            return;
        }
    }
}

static struct repl_table *find_available(struct repl_registry *r, const char *name)
{
    for (size_t i = 0; i < r->n_tables; i++) {
        struct repl_table *t = r->tables[i];
        if (t->meta.status == REPL_TABLE_AVAILABLE && strcmp(t->meta.name, name) == 0)
            return t;
    }
    return NULL;
}

/* The most recently dropped table called name. */
static struct repl_table *find_dropped(struct repl_registry *r, const char *name)
{
    struct repl_table *best = NULL;
    for (size_t i = 0; i < r->n_tables; i++) {
        struct repl_table *t = r->tables[i];
        if (t->meta.status == REPL_TABLE_DROPPED && strcmp(t->meta.name, name) == 0 &&
            (!best || t->meta.drop_time_ms >= best->meta.drop_time_ms))
            best = t;
    }
    return best;
}

static struct repl_table *table_new(const struct repl_table_meta *m)
{
    struct repl_table *t = cellar_xcalloc(1, sizeof(*t));
    t->meta = *m;
    repl_admission_init(&t->adm);
    return t;
}

static void table_free(struct repl_table *t)
{
    if (!t)
        return;
    repl_admission_fini(&t->adm);
    free(t->configs);
    free(t);
}

/* Applies the envs of t->meta to its admission (caller: write lock, or a
 * table no request can reach yet). */
static int table_envs(struct repl_table *t)
{
    bool read_only;
    uint64_t rate;
    int rc = repl_envs_parse(t->meta.envs, t->meta.n_envs, &read_only, &rate);
    if (rc == 0)
        repl_admission_set(&t->adm, read_only, rate);
    return rc;
}

int repl_table_admit_writes(struct repl_table *t, uint64_t n)
{
    return repl_admission_admit(&t->adm, n);
}

/* --- Open and close ----------------------------------------------------- */

static int load_table(void *arg, const struct repl_table_meta *m)
{
    struct repl_registry *r = arg;
    struct repl_table *t = table_new(m);
    int rc = table_envs(t);
    if (rc < 0) {
        table_free(t);
        return rc;
    }
    tables_append(r, t);
    return 0;
}

int repl_registry_open(struct store_engine *e, const char *data_dir,
                       const struct repl_registry_config *cfg, repl_progress_fn progress,
                       void *progress_arg, struct repl_registry **out)
{
    int rc = 0;
    struct repl_registry *r = cellar_xcalloc(1, sizeof(*r));
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&r->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&r->admin, NULL);
    r->engine = e;
    r->data_dir = cellar_xstrdup(data_dir);
    r->cfg = *cfg;

    char dir[4200];
    if (repl_registry_member(r)) {
        /* Copies made or fetched for learners are of no use any more. */
        repl_checkpoints_expire(data_dir, 0);
        snprintf(dir, sizeof(dir), "%s/learning", data_dir);
        cellar_remove_tree(dir);
        /* The map from meta says what to open. */
        log_info("registry: serving as %s; waiting for the cluster's map", r->cfg.self);
        goto out;
    }
    snprintf(dir, sizeof(dir), "%s/node", data_dir);
    rc = repl_metadata_embedded(dir, &r->meta);
    if (rc < 0)
        goto out;

    rc = repl_catalog_next_id(r->meta, &r->next_id);
    if (rc < 0)
        goto out;
    rc = repl_catalog_load(r->meta, load_table, r);
    if (rc < 0)
        goto out;

    size_t total = 0, done = 0;
    for (size_t i = 0; i < r->n_tables; i++) {
        if (r->tables[i]->meta.status == REPL_TABLE_AVAILABLE)
            total += r->tables[i]->meta.partition_count;
        if (r->tables[i]->meta.id >= r->next_id) /* never reuse, whatever the store says */
            r->next_id = r->tables[i]->meta.id + 1;
    }
    for (size_t i = 0; i < r->n_tables; i++) {
        struct repl_table *t = r->tables[i];
        if (t->meta.status != REPL_TABLE_AVAILABLE)
            continue;
        rc = replicas_open(r, &t->meta, &t->replicas, true, progress, progress_arg, &done, total);
        if (rc < 0)
            goto out;
    }
    log_info("registry: %zu tables, %zu partitions open", r->n_tables, total);
out:
    if (rc < 0) {
        repl_registry_close(r);
        r = NULL;
    }
    *out = r;
    return rc;
}

void repl_registry_close(struct repl_registry *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_tables; i++) {
        struct repl_table *t = r->tables[i];
        replicas_close(t->meta.partition_count, t->replicas);
        table_free(t);
    }
    free(r->tables);
    json_decref(r->map);
    if (r->meta)
        r->meta->ops->close(r->meta);
    pthread_mutex_destroy(&r->admin);
    pthread_rwlock_destroy(&r->lock);
    free(r->data_dir);
    free(r);
}

/* --- Request path ------------------------------------------------------- */

/* Tables the calling thread holds (repl_table_held): a per-thread count,
 * not shared state. */
static __thread unsigned tables_held;

int repl_table_acquire(struct repl_registry *r, const char *name, struct repl_table **out)
{
    pthread_rwlock_rdlock(&r->lock);
    struct repl_table *t = find_available(r, name);
    if (!t) {
        pthread_rwlock_unlock(&r->lock);
        *out = NULL;
        return -CELLAR_ENOTFOUND;
    }
    tables_held++;
    *out = t;
    return 0;
}

void repl_table_release(struct repl_registry *r, struct repl_table *t)
{
    if (t) {
        tables_held--;
        pthread_rwlock_unlock(&r->lock);
    }
}

bool repl_table_held(void)
{
    return tables_held > 0;
}

const struct repl_table_meta *repl_table_meta(const struct repl_table *t)
{
    return &t->meta;
}

uint32_t repl_table_partition_of(const struct repl_table *t, const void *hk, size_t hklen)
{
    return (uint32_t)(cellar_hash64(hk, hklen) & (t->meta.partition_count - 1));
}

/* Partition's configuration in a cluster: the map's, or the replica's
 * own when it knows a newer ballot than the map (it took over, or a newer
 * primary's prepare came), copied into *own then. */
static const struct repl_config *newest_config(const struct repl_table *t, uint32_t partition,
                                               struct repl_config *own)
{
    struct repl_replica *r = t->replicas[partition];
    const struct repl_config *c = &t->configs[partition];
    if (r && repl_replica_ballot(r) > c->ballot) {
        repl_replica_config(r, own, NULL);
        if (own->ballot > c->ballot)
            c = own;
    }
    return c;
}

void repl_route(const struct repl_table *t, uint32_t partition, struct repl_route *out)
{
    struct repl_replica *r = t->replicas[partition];
    out->replica = NULL;
    out->primary[0] = '\0';
    if (!t->configs) {
        /* A cluster of one: every replica is here. */
        struct repl_config c;
        repl_replica_config(r, &c, NULL);
        out->kind = REPL_ROUTE_LOCAL;
        out->replica = r;
        out->ballot = c.ballot;
        return;
    }
    struct repl_config own;
    const struct repl_config *c = newest_config(t, partition, &own);
    out->ballot = c->ballot;
    if (!c->primary[0]) {
        out->kind = REPL_ROUTE_NO_PRIMARY;
    } else if (r && strcmp(c->primary, t->self) == 0) {
        /* The map names this node the primary, and the replica is open. */
        out->kind = REPL_ROUTE_LOCAL;
        out->replica = r;
    } else {
        out->kind = REPL_ROUTE_REMOTE;
        snprintf(out->primary, sizeof(out->primary), "%s", c->primary);
    }
}

bool repl_route_replica_of(const struct repl_table *t, uint32_t partition, const char *addr)
{
    if (!t->configs)
        return false;
    struct repl_config own;
    const struct repl_config *c = newest_config(t, partition, &own);
    return strcmp(c->primary, addr) == 0 || repl_config_is_secondary(c, addr);
}

struct repl_replica *repl_table_replica(const struct repl_table *t, uint32_t index)
{
    return t->replicas ? t->replicas[index] : NULL;
}

void repl_table_config(const struct repl_table *t, uint32_t index, struct repl_config *out,
                       uint64_t *last_committed)
{
    struct repl_replica *r = repl_table_replica(t, index);
    if (t->configs)
        *out = t->configs[index];
    else
        repl_replica_config(r, out, NULL);
    *last_committed = 0;
    if (r) {
        struct repl_writer_stats st;
        repl_writer_stats(repl_replica_writer_any(r), &st);
        *last_committed = st.committed_decree;
    }
}

/* --- Admin -------------------------------------------------------------- */

int repl_table_create(struct repl_registry *r, const struct repl_table_spec *spec,
                      struct repl_table_meta *out)
{
    int rc = 0;
    struct repl_table *t = NULL;
    uint32_t pc = spec->partition_count ? spec->partition_count : r->cfg.default_partition_count;
    uint32_t rcnt = spec->replica_count            ? spec->replica_count
                    : r->cfg.default_replica_count ? r->cfg.default_replica_count
                                                   : 1;
    if (!repl_table_name_valid(spec->name, strlen(spec->name)) || pc < 1 ||
        pc > REPL_PARTITIONS_MAX || (pc & (pc - 1)) != 0 || rcnt < 1 || rcnt > REPL_REPLICAS_MAX ||
        spec->default_ttl_s < 0 || spec->n_envs > REPL_ENVS_MAX)
        return -CELLAR_EINVAL;

    pthread_mutex_lock(&r->admin);
    pthread_rwlock_rdlock(&r->lock);
    bool taken = find_available(r, spec->name) != NULL;
    pthread_rwlock_unlock(&r->lock);
    if (taken) {
        rc = -CELLAR_EEXIST;
        goto out;
    }

    struct repl_table_meta m = {0};
    m.id = r->next_id;
    snprintf(m.name, sizeof(m.name), "%s", spec->name);
    m.partition_count = pc;
    m.replica_count = rcnt;
    m.default_ttl_s = spec->default_ttl_s;
    m.status = REPL_TABLE_AVAILABLE;
    m.create_time_ms = cellar_now_ms();
    m.n_envs = spec->n_envs;
    memcpy(m.envs, spec->envs, spec->n_envs * sizeof(spec->envs[0]));
    t = table_new(&m);
    if (table_envs(t) < 0) {
        rc = -CELLAR_EINVAL;
        goto out;
    }

    /* Burn the id first: files of a half-made table never meet a later one. */
    rc = repl_catalog_save_next_id(r->meta, r->next_id + 1);
    if (rc < 0)
        goto out;
    r->next_id++;
    rc = replicas_open(r, &t->meta, &t->replicas, false, NULL, NULL, NULL, 0);
    if (rc < 0) {
        partitions_destroy(r, &t->meta);
        goto out;
    }
    rc = repl_catalog_save(r->meta, &t->meta);
    if (rc < 0) {
        replicas_close(pc, t->replicas);
        partitions_destroy(r, &t->meta);
        goto out;
    }
    pthread_rwlock_wrlock(&r->lock);
    tables_append(r, t);
    pthread_rwlock_unlock(&r->lock);
    *out = t->meta;
    t = NULL;
    log_info("table %s created: id %" PRIu32 ", %" PRIu32 " partitions", out->name, out->id, pc);
out:
    pthread_mutex_unlock(&r->admin);
    table_free(t);
    return rc;
}

static int meta_cmp(const void *a, const void *b)
{
    const struct repl_table_meta *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->id < y->id ? -1 : x->id > y->id;
}

int repl_table_list(struct repl_registry *r, bool include_dropped, struct repl_table_meta **out,
                    size_t *n)
{
    pthread_rwlock_rdlock(&r->lock);
    struct repl_table_meta *list = cellar_xcalloc(r->n_tables, sizeof(*list));
    size_t k = 0;
    for (size_t i = 0; i < r->n_tables; i++) {
        if (include_dropped || r->tables[i]->meta.status == REPL_TABLE_AVAILABLE)
            list[k++] = r->tables[i]->meta;
    }
    pthread_rwlock_unlock(&r->lock);
    qsort(list, k, sizeof(*list), meta_cmp);
    *out = list;
    *n = k;
    return 0;
}

/* Deletes a dropped table's files and record and forgets it. Caller holds
 * admin; t is not available, so no request can hold it. */
static int purge_table(struct repl_registry *r, struct repl_table *t)
{
    int rc = partitions_destroy(r, &t->meta);
    if (rc < 0)
        return rc;
    rc = repl_catalog_delete(r->meta, t->meta.id);
    if (rc < 0)
        return rc;
    log_info("table %s (id %" PRIu32 ") purged", t->meta.name, t->meta.id);
    pthread_rwlock_wrlock(&r->lock);
    tables_remove(r, t);
    pthread_rwlock_unlock(&r->lock);
    table_free(t);
    return 0;
}

int repl_table_drop(struct repl_registry *r, const char *name, bool purge,
                    struct repl_table_meta *out)
{
    int rc = 0;
    pthread_mutex_lock(&r->admin);
    struct repl_table *t = find_available(r, name); /* admin held: the list cannot change */
    if (!t) {
        rc = -CELLAR_ENOTFOUND;
        goto out;
    }
    struct repl_table_meta m = t->meta;
    m.status = REPL_TABLE_DROPPED;
    m.drop_time_ms = cellar_now_ms();
    rc = repl_catalog_save(r->meta, &m);
    if (rc < 0)
        goto out;
    pthread_rwlock_wrlock(&r->lock);
    t->meta = m;
    struct repl_replica **replicas = t->replicas;
    t->replicas = NULL;
    pthread_rwlock_unlock(&r->lock);
    /* No request can reach the replicas now; queued writes still finish. */
    replicas_close(m.partition_count, replicas);
    *out = m;
    log_info("table %s (id %" PRIu32 ") dropped", m.name, m.id);
    if (purge)
        rc = purge_table(r, t);
out:
    pthread_mutex_unlock(&r->admin);
    return rc;
}

int repl_table_recall(struct repl_registry *r, const char *name, const char *new_name,
                      struct repl_table_meta *out)
{
    int rc = 0;
    struct repl_replica **replicas = NULL;
    if (new_name && !repl_table_name_valid(new_name, strlen(new_name)))
        return -CELLAR_EINVAL;
    pthread_mutex_lock(&r->admin);
    struct repl_table *t = find_dropped(r, name);
    if (!t) {
        rc = -CELLAR_ENOTFOUND;
        goto out;
    }
    const char *target = new_name ? new_name : name;
    if (find_available(r, target)) {
        rc = -CELLAR_EEXIST;
        goto out;
    }
    struct repl_table_meta m = t->meta;
    snprintf(m.name, sizeof(m.name), "%s", target);
    m.status = REPL_TABLE_AVAILABLE;
    m.drop_time_ms = 0;
    rc = replicas_open(r, &m, &replicas, false, NULL, NULL, NULL, 0);
    if (rc < 0)
        goto out;
    rc = repl_catalog_save(r->meta, &m);
    if (rc < 0) {
        replicas_close(m.partition_count, replicas);
        goto out;
    }
    pthread_rwlock_wrlock(&r->lock);
    t->meta = m;
    t->replicas = replicas;
    pthread_rwlock_unlock(&r->lock);
    *out = m;
    log_info("table %s (id %" PRIu32 ") recalled as %s", name, m.id, m.name);
out:
    pthread_mutex_unlock(&r->admin);
    return rc;
}

int repl_table_update(struct repl_registry *r, const char *name, bool set_ttl, int64_t ttl_s,
                      size_t n_envs, const struct repl_env *envs, struct repl_table_meta *out)
{
    int rc = 0;
    if (set_ttl && ttl_s < 0)
        return -CELLAR_EINVAL;
    pthread_mutex_lock(&r->admin);
    struct repl_table *t = find_available(r, name);
    if (!t) {
        rc = -CELLAR_ENOTFOUND;
        goto out;
    }
    struct repl_table_meta m = t->meta;
    if (set_ttl)
        m.default_ttl_s = ttl_s;
    if ((rc = repl_envs_merge(&m, envs, n_envs)) < 0)
        goto out;
    bool read_only;
    uint64_t rate;
    repl_envs_parse(m.envs, m.n_envs, &read_only, &rate);
    rc = repl_catalog_save(r->meta, &m);
    if (rc < 0)
        goto out;
    pthread_rwlock_wrlock(&r->lock);
    t->meta = m;
    repl_admission_set(&t->adm, read_only, rate);
    pthread_rwlock_unlock(&r->lock);
    *out = m;
out:
    pthread_mutex_unlock(&r->admin);
    return rc;
}

int repl_table_compact(struct repl_registry *r, const char *name)
{
    int rc = 0;
    /* admin is held throughout: no drop can close the partitions, while
     * requests go on (they only take the rwlock for reading). */
    pthread_mutex_lock(&r->admin);
    struct repl_table *t = find_available(r, name);
    if (!t) {
        rc = -CELLAR_ENOTFOUND;
        goto out;
    }
    for (uint32_t i = 0; i < t->meta.partition_count && rc == 0; i++) {
        /* A failed partition is skipped: the others still get compacted. */
        if (!t->replicas[i])
            continue;
        struct store_partition *sp = repl_replica_partition(t->replicas[i]);
        if (store_partition_health(sp, NULL, 0) == STORE_HEALTH_FAILED) {
            log_warn("table %s: partition %" PRIu32 " has failed; not compacted", name, i);
            continue;
        }
        rc = store_partition_compact(sp);
    }
    log_info("table %s compacted: %s", name, rc == 0 ? "ok" : cellar_strerror(rc));
out:
    pthread_mutex_unlock(&r->admin);
    return rc;
}

int repl_registry_purge_expired(struct repl_registry *r, uint64_t now_ms)
{
    int purged = 0;
    pthread_mutex_lock(&r->admin);
    for (size_t i = 0; i < r->n_tables;) {
        struct repl_table *t = r->tables[i];
        if (t->meta.status == REPL_TABLE_DROPPED &&
            t->meta.drop_time_ms + r->cfg.drop_retention_ms <= now_ms) {
            int rc = purge_table(r, t);
            if (rc < 0) {
                i++;
                continue;
            }
            purged++;
            continue; /* the array shifted into slot i */
        }
        i++;
    }
    pthread_mutex_unlock(&r->admin);
    return purged;
}

void repl_registry_stats(struct repl_registry *r, struct repl_registry_stats *out)
{
    memset(out, 0, sizeof(*out));
    pthread_rwlock_rdlock(&r->lock);
    for (size_t i = 0; i < r->n_tables; i++) {
        struct repl_table *t = r->tables[i];
        if (t->meta.status != REPL_TABLE_AVAILABLE)
            continue;
        out->tables++;
        for (uint32_t p = 0; p < t->meta.partition_count; p++) {
            if (!t->replicas[p])
                continue;
            struct repl_writer_stats s;
            repl_writer_stats(repl_replica_writer_any(t->replicas[p]), &s);
            out->partitions++;
            enum store_health h =
                store_partition_health(repl_replica_partition(t->replicas[p]), NULL, 0);
            out->partitions_failed += h == STORE_HEALTH_FAILED;
            out->partitions_no_space += h == STORE_HEALTH_NO_SPACE;
            out->writers.batches += s.batches;
            out->writers.mutations += s.mutations;
            out->writers.queue_depth += s.queue_depth;
            out->writers.failed_batches += s.failed_batches;
            out->writers.gathers += s.gathers;
            for (size_t b = 0; b < sizeof(s.batch_size_buckets) / sizeof(s.batch_size_buckets[0]);
                 b++)
                out->writers.batch_size_buckets[b] += s.batch_size_buckets[b];
            for (size_t b = 0; b < REPL_COMMIT_BUCKETS; b++)
                out->writers.commit_buckets[b] += s.commit_buckets[b];
            out->writers.commit_us_sum += s.commit_us_sum;
        }
    }
    pthread_rwlock_unlock(&r->lock);
}

void repl_registry_foreach_partition(struct repl_registry *r, repl_partition_fn fn, void *arg)
{
    pthread_rwlock_rdlock(&r->lock);
    for (size_t i = 0; i < r->n_tables; i++) {
        struct repl_table *t = r->tables[i];
        if (t->meta.status != REPL_TABLE_AVAILABLE)
            continue;
        for (uint32_t p = 0; p < t->meta.partition_count; p++) {
            if (t->replicas[p])
                fn(arg, t->meta.name, p, t->replicas[p]);
        }
    }
    pthread_rwlock_unlock(&r->lock);
}

bool repl_registry_writers_alive(struct repl_registry *r, uint64_t stall_ms, char *stalled,
                                 size_t stalled_len, uint64_t *stalled_for_ms)
{
    bool alive = true;
    uint64_t now = cellar_mono_ms();
    pthread_rwlock_rdlock(&r->lock);
    for (size_t i = 0; i < r->n_tables && alive; i++) {
        struct repl_table *t = r->tables[i];
        for (uint32_t p = 0; t->replicas && p < t->meta.partition_count; p++) {
            if (!t->replicas[p])
                continue;
            struct repl_writer *w = repl_replica_writer_any(t->replicas[p]);
            uint64_t beat = repl_writer_heartbeat_ms(w);
            if (now > beat && now - beat > stall_ms) {
                alive = false;
                if (stalled)
                    snprintf(stalled, stalled_len, "%s", repl_writer_name(w));
                if (stalled_for_ms)
                    *stalled_for_ms = now - beat;
                break;
            }
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return alive;
}

/* --- In a cluster: the map from meta -------------------------------------- */

bool repl_registry_member(const struct repl_registry *r)
{
    return r->cfg.self[0] != '\0';
}

/* One table of a map: its record and every partition's configuration. */
struct map_table {
    struct repl_table_meta meta;
    struct repl_config *configs;
};

static void map_tables_free(struct map_table *mt, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(mt[i].configs);
    free(mt);
}

/* The tables of a map. -CELLAR_EINVAL when one does not parse. */
static int map_tables_parse(json_t *map, struct map_table **out, size_t *n_out)
{
    json_t *tables = json_object_get(map, "tables");
    if (!json_is_array(tables))
        return -CELLAR_EINVAL;
    size_t n = json_array_size(tables);
    struct map_table *mt = cellar_xcalloc(n ? n : 1, sizeof(*mt));
    for (size_t i = 0; i < n; i++) {
        json_t *jt = json_array_get(tables, i);
        json_t *configs = json_object_get(jt, "configs");
        char *text = json_dumps(jt, JSON_COMPACT);
        int rc = text ? repl_table_meta_decode(text, strlen(text), &mt[i].meta) : -CELLAR_EINVAL;
        free(text);
        if (rc < 0 || !json_is_array(configs) ||
            json_array_size(configs) != mt[i].meta.partition_count) {
            map_tables_free(mt, n);
            return -CELLAR_EINVAL;
        }
        mt[i].configs = cellar_xcalloc(mt[i].meta.partition_count, sizeof(*mt[i].configs));
        for (uint32_t p = 0; p < mt[i].meta.partition_count; p++) {
            if (repl_config_parse(json_array_get(configs, p), &mt[i].configs[p]) < 0) {
                map_tables_free(mt, n);
                return -CELLAR_EINVAL;
            }
        }
    }
    *out = mt;
    *n_out = n;
    return 0;
}

static struct repl_table *find_id(struct repl_registry *r, uint32_t id)
{
    for (size_t i = 0; i < r->n_tables; i++) {
        if (r->tables[i]->meta.id == id)
            return r->tables[i];
    }
    return NULL;
}

/* This node's replica of (table id, partition), or NULL; its table in
 * *t when not NULL. Caller holds lock or admin. */
static struct repl_replica *hosted(struct repl_registry *r, uint32_t id, uint32_t partition,
                                   struct repl_table **t)
{
    struct repl_table *found = find_id(r, id);
    if (t)
        *t = found;
    return found && found->replicas && partition < found->meta.partition_count
               ? found->replicas[partition]
               : NULL;
}

/* This node's role in partition p of a map table: primary, secondary,
 * learner, or none (INACTIVE: it is not to host it). */
static enum repl_role role_in(const struct repl_registry *r, const struct map_table *mt, uint32_t p)
{
    const struct repl_config *c = &mt->configs[p];
    if (mt->meta.status != REPL_TABLE_AVAILABLE)
        return REPL_ROLE_INACTIVE;
    if (strcmp(c->primary, r->cfg.self) == 0)
        return REPL_ROLE_PRIMARY;
    if (repl_config_is_secondary(c, r->cfg.self))
        return REPL_ROLE_SECONDARY;
    if (strcmp(c->learner, r->cfg.self) == 0)
        return REPL_ROLE_LEARNER;
    return REPL_ROLE_INACTIVE;
}

static bool hosts(const struct repl_registry *r, const struct map_table *mt, uint32_t p)
{
    return role_in(r, mt, p) != REPL_ROLE_INACTIVE;
}

/* Brings one table of the map into the registry (caller holds admin). The
 * replicas to open are opened before the write lock is taken; those to
 * close are closed after it is let go. */
static void apply_table(struct repl_registry *r, const struct map_table *mt)
{
    struct repl_table *t = find_id(r, mt->meta.id);
    uint32_t pc = mt->meta.partition_count;
    struct repl_replica **open = cellar_xcalloc(pc, sizeof(*open));
    struct repl_replica **gone = cellar_xcalloc(pc, sizeof(*gone));
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/replicas", r->data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        log_err("cannot create %s: %s", dir, strerror(errno));
    for (uint32_t p = 0; p < pc; p++) {
        bool have = t && t->replicas && t->replicas[p];
        if (!hosts(r, mt, p) || have)
            continue;
        partition_dir(r, mt->meta.id, p, dir, sizeof(dir));
        if (repl_replica_open(r->engine, dir, mt->meta.name, mt->meta.id, p, &r->cfg.writer,
                              &mt->configs[p], true, &open[p]) < 0) {
            open[p] = NULL;
            continue;
        }
        repl_replica_join(open[p], &r->cfg.group);
        repl_replica_set_config(open[p], &mt->configs[p], role_in(r, mt, p));
    }
    bool read_only = false;
    uint64_t rate = 0;
    repl_envs_parse(mt->meta.envs, mt->meta.n_envs, &read_only, &rate);

    pthread_rwlock_wrlock(&r->lock);
    bool fresh = t == NULL;
    if (fresh) {
        t = table_new(&mt->meta);
        t->self = r->cfg.self;
        tables_append(r, t);
    }
    t->meta = mt->meta;
    repl_admission_set(&t->adm, read_only, rate);
    free(t->configs);
    t->configs = cellar_xmemdup(mt->configs, pc * sizeof(*mt->configs));
    if (!t->replicas)
        t->replicas = cellar_xcalloc(pc, sizeof(*t->replicas));
    for (uint32_t p = 0; p < pc; p++) {
        if (open[p]) {
            t->replicas[p] = open[p];
        } else if (t->replicas[p] && !hosts(r, mt, p)) {
            gone[p] = t->replicas[p];
            t->replicas[p] = NULL;
        } else if (t->replicas[p]) {
            repl_replica_set_config(t->replicas[p], &mt->configs[p], role_in(r, mt, p));
        }
    }
    pthread_rwlock_unlock(&r->lock);
    for (uint32_t p = 0; p < pc; p++) {
        if (open[p])
            log_info("table %s: partition %" PRIu32 " opened here as %s (ballot %" PRIu64 ")",
                     mt->meta.name, p, repl_role_name(role_in(r, mt, p)), mt->configs[p].ballot);
        if (gone[p])
            log_info("table %s: partition %" PRIu32 " closed here", mt->meta.name, p);
    }
    replicas_close(pc, gone);
    free(open);
}

int repl_registry_apply_map(struct repl_registry *r, json_t *map)
{
    json_t *jv = json_object_get(map, "version");
    if (!json_is_integer(jv) || json_integer_value(jv) < 1)
        return -CELLAR_EINVAL;
    uint64_t version = (uint64_t)json_integer_value(jv);
    struct map_table *mt = NULL;
    size_t n = 0;
    int rc = map_tables_parse(map, &mt, &n);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&r->admin);
    if (version <= r->map_version) {
        pthread_mutex_unlock(&r->admin);
        map_tables_free(mt, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        apply_table(r, &mt[i]);
    /* Tables no longer in the map were purged: their replicas go, files
     * and all. */
    for (size_t i = 0; i < r->n_tables;) {
        struct repl_table *t = r->tables[i];
        bool listed = false;
        for (size_t k = 0; k < n && !listed; k++)
            listed = mt[k].meta.id == t->meta.id;
        if (listed) {
            i++;
            continue;
        }
        pthread_rwlock_wrlock(&r->lock);
        tables_remove(r, t);
        pthread_rwlock_unlock(&r->lock);
        replicas_close(t->meta.partition_count, t->replicas);
        partitions_destroy(r, &t->meta);
        log_info("table %s (id %" PRIu32 ") purged here", t->meta.name, t->meta.id);
        table_free(t);
    }
    pthread_rwlock_wrlock(&r->lock);
    json_decref(r->map);
    r->map = json_deep_copy(map);
    r->map_version = version;
    pthread_rwlock_unlock(&r->lock);
    pthread_mutex_unlock(&r->admin);
    map_tables_free(mt, n);
    return 0;
}

size_t repl_registry_data_nodes(struct repl_registry *r)
{
    size_t n = 0, i, k;
    json_t *node, *role;
    pthread_rwlock_rdlock(&r->lock);
    json_array_foreach(json_object_get(r->map, "nodes"), i, node)
    {
        const char *state = json_string_value(json_object_get(node, "state"));
        bool data = false;
        json_array_foreach(json_object_get(node, "roles"), k, role)
        {
            data |= json_is_string(role) && strcmp(json_string_value(role), "data") == 0;
        }
        n += data && state && strcmp(state, "alive") == 0;
    }
    pthread_rwlock_unlock(&r->lock);
    return n;
}

uint64_t repl_registry_map_version(struct repl_registry *r)
{
    pthread_rwlock_rdlock(&r->lock);
    uint64_t v = r->map_version;
    pthread_rwlock_unlock(&r->lock);
    return v;
}

json_t *repl_registry_map_json(struct repl_registry *r)
{
    pthread_rwlock_rdlock(&r->lock);
    json_t *copy = r->map ? json_deep_copy(r->map) : NULL;
    pthread_rwlock_unlock(&r->lock);
    return copy;
}

json_t *repl_registry_hosted_json(struct repl_registry *r)
{
    json_t *list = json_array();
    pthread_rwlock_rdlock(&r->lock);
    for (size_t i = 0; i < r->n_tables; i++) {
        struct repl_table *t = r->tables[i];
        for (uint32_t p = 0; t->replicas && p < t->meta.partition_count; p++) {
            if (!t->replicas[p])
                continue;
            struct repl_config c;
            enum repl_role role;
            struct repl_writer_stats st;
            repl_replica_config(t->replicas[p], &c, &role);
            repl_writer_stats(repl_replica_writer_any(t->replicas[p]), &st);
            json_array_append_new(list, json_pack("{s:I, s:I, s:I, s:s, s:I, s:I}", "table_id",
                                                  (json_int_t)t->meta.id, "partition",
                                                  (json_int_t)p, "ballot", (json_int_t)c.ballot,
                                                  "role", repl_role_name(role), "decree",
                                                  (json_int_t)st.committed_decree, "logged",
                                                  (json_int_t)st.logged_decree));
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return list;
}

int repl_registry_prepare(struct repl_registry *r, const struct repl_prepare_header *h,
                          struct store_mutation **ms, size_t n, repl_prepared_fn done, void *arg)
{
    pthread_rwlock_rdlock(&r->lock);
    struct repl_replica *rep = hosted(r, h->table_id, h->partition, NULL);
    int rc;
    if (!rep) {
        for (size_t i = 0; i < n; i++)
            store_mutation_free(ms[i]);
        free(ms);
        rc = -CELLAR_ENOTFOUND;
    } else {
        /* Queued under the read lock: the replica cannot close meanwhile,
         * and closing it drains what was queued. */
        rc = repl_replica_prepare(rep, h, ms, n, done, arg);
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}

/* --- Learning from a checkpoint (learn.h) -------------------------------- */

const char *repl_registry_data_dir(const struct repl_registry *r)
{
    return r->data_dir;
}

int repl_registry_checkpoint(struct repl_registry *r, uint32_t table_id, uint32_t partition,
                             char *name, size_t name_len)
{
    static uint64_t made; /* under admin */
    char dir[4400];
    repl_checkpoint_path(r->data_dir, NULL, NULL, dir, sizeof(dir));
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        log_err("cannot create %s: %s", dir, strerror(errno));
        return -CELLAR_ESYS;
    }
    pthread_mutex_lock(&r->admin);
    repl_checkpoints_expire(r->data_dir, REPL_CHECKPOINT_MAX_AGE_S);
    /* Replicas close only under admin: this one stays open meanwhile. */
    struct repl_replica *rep = hosted(r, table_id, partition, NULL);
    int rc = -CELLAR_ENOTFOUND;
    if (rep) {
        snprintf(name, name_len, "%" PRIu32 ".%" PRIu32 ".%llu%03" PRIu64, table_id, partition,
                 (unsigned long long)time(NULL), made++ % 1000);
        repl_checkpoint_path(r->data_dir, name, NULL, dir, sizeof(dir));
        rc = store_partition_checkpoint(repl_replica_partition(rep), dir);
    }
    pthread_mutex_unlock(&r->admin);
    return rc;
}

int repl_registry_replica_role(struct repl_registry *r, uint32_t table_id, uint32_t partition,
                               enum repl_role *role)
{
    pthread_rwlock_rdlock(&r->lock);
    struct repl_replica *rep = hosted(r, table_id, partition, NULL);
    struct repl_config c;
    if (rep)
        repl_replica_config(rep, &c, role);
    pthread_rwlock_unlock(&r->lock);
    return rep ? 0 : -CELLAR_ENOTFOUND;
}

int repl_registry_install(struct repl_registry *r, uint32_t table_id, uint32_t partition,
                          const char *copy)
{
    pthread_mutex_lock(&r->admin);
    struct repl_table *t;
    struct repl_replica *rep = hosted(r, table_id, partition, &t);
    struct repl_config c;
    enum repl_role role = REPL_ROLE_INACTIVE;
    if (rep)
        repl_replica_config(rep, &c, &role);
    if (role != REPL_ROLE_LEARNER) {
        /* Gone, or a member meanwhile: its data is not to be replaced. */
        pthread_mutex_unlock(&r->admin);
        return -CELLAR_ENOTFOUND;
    }
    pthread_rwlock_wrlock(&r->lock);
    t->replicas[partition] = NULL;
    pthread_rwlock_unlock(&r->lock);
    repl_replica_close(rep);

    char dir[4200], parent[4200];
    partition_dir(r, table_id, partition, dir, sizeof(dir));
    snprintf(parent, sizeof(parent), "%s/replicas", r->data_dir);
    int rc = store_partition_destroy(r->engine, dir);
    if (rc == 0 && rename(copy, dir) != 0) {
        log_err("cannot move %s to %s: %s", copy, dir, strerror(errno));
        rc = -CELLAR_ESYS;
    }
    cellar_fsync_dir(parent);
    /* Whatever happened, the replica opens again (a partition that cannot
     * be opened stands in as failed), and keeps learning. */
    struct repl_replica *fresh = NULL;
    if (repl_replica_open(r->engine, dir, t->meta.name, table_id, partition, &r->cfg.writer, &c,
                          true, &fresh) == 0) {
        repl_replica_join(fresh, &r->cfg.group);
        repl_replica_set_config(fresh, &c, role);
    }
    if (rc == 0)
        log_notice("table %s: partition %" PRIu32 " replaced here by a copy of its primary's, at "
                   "decree %" PRIu64,
                   t->meta.name, partition,
                   fresh ? store_partition_applied_decree(repl_replica_partition(fresh)) : 0);
    pthread_rwlock_wrlock(&r->lock);
    t->replicas[partition] = fresh;
    pthread_rwlock_unlock(&r->lock);
    pthread_mutex_unlock(&r->admin);
    return rc;
}

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

#include "storage/metastore.h"

struct repl_table {
    struct repl_table_meta meta;
    /* partition_count entries; NULL when dropped. */
    struct repl_replica **replicas;
    /* Derived from meta.envs whenever they change (under the write lock). */
    struct repl_admission adm;
};

struct repl_registry {
    pthread_rwlock_t lock;
    pthread_mutex_t admin;
    struct repl_table **tables;
    size_t n_tables;
    size_t cap_tables;
    struct store_engine *engine;
    struct store_metastore *meta;
    char *data_dir;
    struct repl_registry_config cfg;
    uint32_t next_id; /* guarded by admin */
};

void repl_registry_config_defaults(struct repl_registry_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->drop_retention_ms = 7ull * 24 * 3600 * 1000;
    cfg->default_partition_count = 8;
    cfg->default_replica_count = 1;
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
    snprintf(dir, sizeof(dir), "%s/node", data_dir);
    rc = store_metastore_open(dir, &r->meta);
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
    store_metastore_close(r->meta);
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

void repl_route(const struct repl_table *t, uint32_t partition, struct repl_route *out)
{
    struct repl_replica *r = t->replicas[partition];
    struct repl_config c;
    repl_replica_config(r, &c, NULL);
    out->kind = REPL_ROUTE_LOCAL;
    out->replica = r;
    out->ballot = c.ballot;
    out->primary[0] = '\0';
}

struct repl_replica *repl_table_replica(const struct repl_table *t, uint32_t index)
{
    return t->replicas ? t->replicas[index] : NULL;
}

/* --- Admin -------------------------------------------------------------- */

int repl_table_create(struct repl_registry *r, const struct repl_table_spec *spec,
                      struct repl_table_meta *out)
{
    int rc = 0;
    struct repl_table *t = NULL;
    uint32_t pc = spec->partition_count ? spec->partition_count : r->cfg.default_partition_count;
    uint32_t rcnt = spec->replica_count ? spec->replica_count : r->cfg.default_replica_count;
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
    for (size_t i = 0; i < n_envs; i++) {
        size_t k = 0;
        while (k < m.n_envs && strcmp(m.envs[k].key, envs[i].key) != 0)
            k++;
        if (envs[i].value[0] == '\0') { /* remove */
            if (k < m.n_envs)
                m.envs[k] = m.envs[--m.n_envs];
            continue;
        }
        if (k == m.n_envs) {
            if (m.n_envs == REPL_ENVS_MAX) {
                rc = -CELLAR_EINVAL;
                goto out;
            }
            m.n_envs++;
        }
        m.envs[k] = envs[i];
    }
    bool read_only;
    uint64_t rate;
    rc = repl_envs_parse(m.envs, m.n_envs, &read_only, &rate);
    if (rc < 0)
        goto out;
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
        for (uint32_t p = 0; p < t->meta.partition_count; p++)
            fn(arg, t->meta.name, p, t->replicas[p]);
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

/*
 * registry.c - the node's tables and their open partitions (registry.h).
 *
 * Design: every table ever created and not yet purged has a struct
 * repl_table in one array; available tables also hold their open
 * partitions and writers. Metadata is written to the metadata store before
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
    struct store_partition **parts; /* partition_count entries; NULL when dropped */
    struct repl_writer **writers;
    /* Derived from meta.envs whenever they change (under the write lock). */
    bool read_only;
    uint64_t write_rate_limit; /* writes per second; 0 = unlimited */
    /* Token bucket for write_rate_limit; guarded by bucket_lock. */
    pthread_mutex_t bucket_lock;
    double tokens;
    uint64_t refill_ms;
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

#define NEXT_ID_KEY "next_table_id"
#define TABLE_KEY_PREFIX "table/"

void repl_registry_config_defaults(struct repl_registry_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->drop_retention_ms = 7ull * 24 * 3600 * 1000;
    cfg->default_partition_count = 8;
    cfg->default_replica_count = 1;
    repl_writer_config_defaults(&cfg->writer);
}

bool repl_table_name_valid(const char *name, size_t len)
{
    if (len < 1 || len > REPL_TABLE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* --- Persistence -------------------------------------------------------- */

static void table_key(char *out, size_t n, uint32_t id)
{
    snprintf(out, n, TABLE_KEY_PREFIX "%010" PRIu32, id);
}

static void partition_dir(const struct repl_registry *r, uint32_t id, uint32_t index, char *out,
                          size_t n)
{
    snprintf(out, n, "%s/replicas/%" PRIu32 ".%" PRIu32, r->data_dir, id, index);
}

static int meta_save(struct repl_registry *r, const struct repl_table_meta *m)
{
    json_t *envs = json_object();
    for (size_t i = 0; i < m->n_envs; i++)
        json_object_set_new(envs, m->envs[i].key, json_string(m->envs[i].value));
    json_t *doc = json_pack(
        "{s:I, s:s, s:I, s:I, s:I, s:s, s:I, s:I, s:o}", "id", (json_int_t)m->id, "name", m->name,
        "partition_count", (json_int_t)m->partition_count, "replica_count",
        (json_int_t)m->replica_count, "default_ttl", (json_int_t)m->default_ttl_s, "status",
        m->status == REPL_TABLE_AVAILABLE ? "available" : "dropped", "create_time_ms",
        (json_int_t)m->create_time_ms, "drop_time_ms", (json_int_t)m->drop_time_ms, "envs", envs);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    char key[32];
    table_key(key, sizeof(key), m->id);
    int rc = store_metastore_put(r->meta, key, text, strlen(text));
    free(text);
    return rc;
}

static int meta_parse(const char *text, size_t len, struct repl_table_meta *m)
{
    int rc = -CELLAR_ECORRUPT;
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    json_int_t id = 0, pc = 0, rcnt = 0, ttl = 0, ct = 0, dt = 0;
    const char *name = NULL, *status = NULL;
    json_t *envs = NULL;
    if (!doc ||
        json_unpack(doc, "{s:I, s:s, s:I, s:I, s:I, s:s, s:I, s:I, s:o}", "id", &id, "name", &name,
                    "partition_count", &pc, "replica_count", &rcnt, "default_ttl", &ttl, "status",
                    &status, "create_time_ms", &ct, "drop_time_ms", &dt, "envs", &envs) != 0)
        goto out;
    if (strlen(name) > REPL_TABLE_NAME_MAX || pc < 1 || pc > REPL_PARTITIONS_MAX)
        goto out;
    memset(m, 0, sizeof(*m));
    m->id = (uint32_t)id;
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->partition_count = (uint32_t)pc;
    m->replica_count = (uint32_t)rcnt;
    m->default_ttl_s = ttl;
    m->status = strcmp(status, "available") == 0 ? REPL_TABLE_AVAILABLE : REPL_TABLE_DROPPED;
    m->create_time_ms = (uint64_t)ct;
    m->drop_time_ms = (uint64_t)dt;
    const char *k;
    json_t *v;
    json_object_foreach(envs, k, v)
    {
        if (m->n_envs == REPL_ENVS_MAX || !json_is_string(v))
            goto out;
        snprintf(m->envs[m->n_envs].key, sizeof(m->envs[0].key), "%s", k);
        snprintf(m->envs[m->n_envs].value, sizeof(m->envs[0].value), "%s", json_string_value(v));
        m->n_envs++;
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

static int next_id_save(struct repl_registry *r, uint32_t next)
{
    char text[16];
    int n = snprintf(text, sizeof(text), "%" PRIu32, next);
    return store_metastore_put(r->meta, NEXT_ID_KEY, text, (size_t)n);
}

/* --- Partitions --------------------------------------------------------- */

/* Closes the writers (draining them) and partitions in the arrays and frees
 * the arrays. */
static void partitions_close(uint32_t count, struct store_partition **parts,
                             struct repl_writer **writers)
{
    for (uint32_t i = 0; writers && i < count; i++)
        repl_writer_stop(writers[i]);
    for (uint32_t i = 0; parts && i < count; i++)
        store_partition_close(parts[i]);
    free(writers);
    free(parts);
}

/* Opens a table's partitions and starts their writers. With tolerate (the
 * node's start), a partition that cannot be opened is logged and stands in
 * as a failed partition (store_partition_new_failed), so the node still
 * serves every other one; otherwise (create, recall) it fails the call. */
static int partitions_open(struct repl_registry *r, const struct repl_table_meta *m,
                           struct store_partition ***out_parts, struct repl_writer ***out_writers,
                           bool tolerate, repl_progress_fn progress, void *arg, size_t *done,
                           size_t total)
{
    int rc = 0;
    struct store_partition **parts = cellar_xcalloc(m->partition_count, sizeof(*parts));
    struct repl_writer **writers = cellar_xcalloc(m->partition_count, sizeof(*writers));
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/replicas", r->data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        log_err("cannot create %s: %s", dir, strerror(errno));
        rc = -CELLAR_ESYS;
        goto out;
    }
    for (uint32_t i = 0; i < m->partition_count; i++) {
        partition_dir(r, m->id, i, dir, sizeof(dir));
        rc = store_partition_open(r->engine, dir, &parts[i]);
        if (rc < 0) {
            log_err("table %s: cannot open partition %" PRIu32 " in %s: %s", m->name, i, dir,
                    cellar_strerror(rc));
            if (!tolerate)
                goto out;
            char why[128];
            snprintf(why, sizeof(why), "cannot open: %s (the log says more)", cellar_strerror(rc));
            parts[i] = store_partition_new_failed(r->engine, dir, why);
            rc = 0;
        }
        char name[32];
        snprintf(name, sizeof(name), "w%" PRIu32 ".%" PRIu32, m->id, i);
        rc = repl_writer_start(parts[i], &r->cfg.writer, name, &writers[i]);
        if (rc < 0)
            goto out;
        if (progress && done)
            progress(arg, ++*done, total);
    }
out:
    if (rc < 0) {
        partitions_close(m->partition_count, parts, writers);
        parts = NULL;
        writers = NULL;
    }
    *out_parts = parts;
    *out_writers = writers;
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

/* --- Envs --------------------------------------------------------------- */

static const char *env_get(const struct repl_table_meta *m, const char *key)
{
    for (size_t i = 0; i < m->n_envs; i++) {
        if (strcmp(m->envs[i].key, key) == 0)
            return m->envs[i].value;
    }
    return NULL;
}

/* Parses the envs the node acts on. -CELLAR_EINVAL on a bad value. */
static int envs_parse(const struct repl_table_meta *m, bool *read_only, uint64_t *rate)
{
    const char *ro = env_get(m, "read_only");
    const char *wr = env_get(m, "write_rate_limit");
    *read_only = false;
    *rate = 0;
    if (ro) {
        if (strcmp(ro, "true") == 0)
            *read_only = true;
        else if (strcmp(ro, "false") != 0)
            return -CELLAR_EINVAL;
    }
    if (wr) {
        int64_t v = 0;
        if (cellar_parse_i64(wr, strlen(wr), &v) < 0 || v < 0)
            return -CELLAR_EINVAL;
        *rate = (uint64_t)v;
    }
    return 0;
}

static struct repl_table *table_new(void)
{
    struct repl_table *t = cellar_xcalloc(1, sizeof(*t));
    pthread_mutex_init(&t->bucket_lock, NULL);
    return t;
}

static void table_free(struct repl_table *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->bucket_lock);
    free(t);
}

int repl_table_admit_writes(struct repl_table *t, uint64_t n)
{
    if (t->read_only)
        return -CELLAR_EREADONLY;
    if (t->write_rate_limit == 0)
        return 0;
    int rc = 0;
    uint64_t now = cellar_mono_ms();
    pthread_mutex_lock(&t->bucket_lock);
    double cap = (double)t->write_rate_limit;
    if (t->refill_ms == 0) {
        t->tokens = cap;
    } else {
        t->tokens += (double)(now - t->refill_ms) * cap / 1000.0;
        if (t->tokens > cap)
            t->tokens = cap;
    }
    t->refill_ms = now;
    if (t->tokens >= (double)n)
        t->tokens -= (double)n;
    else
        rc = -CELLAR_ETHROTTLED;
    pthread_mutex_unlock(&t->bucket_lock);
    return rc;
}

/* --- Open and close ----------------------------------------------------- */

static int load_table(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct repl_registry *r = arg;
    struct repl_table *t = table_new();
    int rc = meta_parse(val, vlen, &t->meta);
    if (rc == 0)
        rc = envs_parse(&t->meta, &t->read_only, &t->write_rate_limit);
    if (rc < 0) {
        log_err("metadata record %.*s is corrupt", (int)klen, key);
        table_free(t);
        return -CELLAR_ECORRUPT;
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

    struct cellar_buf b = {0};
    rc = store_metastore_get(r->meta, NEXT_ID_KEY, &b);
    if (rc == 0) {
        int64_t v = 0;
        if (cellar_parse_i64(b.data, b.len, &v) < 0 || v < 1 || v > UINT32_MAX) {
            cellar_buf_fini(&b);
            rc = -CELLAR_ECORRUPT;
            goto out;
        }
        r->next_id = (uint32_t)v;
    } else if (rc == -CELLAR_ENOTFOUND) {
        r->next_id = 1;
    } else {
        cellar_buf_fini(&b);
        goto out;
    }
    cellar_buf_fini(&b);

    rc = store_metastore_scan(r->meta, TABLE_KEY_PREFIX, load_table, r);
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
        rc = partitions_open(r, &t->meta, &t->parts, &t->writers, true, progress, progress_arg,
                             &done, total);
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
        partitions_close(t->meta.partition_count, t->parts, t->writers);
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

struct store_partition *repl_table_partition(const struct repl_table *t, uint32_t index)
{
    return t->parts[index];
}

struct repl_writer *repl_table_writer(const struct repl_table *t, uint32_t index)
{
    return t->writers[index];
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

    t = table_new();
    t->meta.id = r->next_id;
    snprintf(t->meta.name, sizeof(t->meta.name), "%s", spec->name);
    t->meta.partition_count = pc;
    t->meta.replica_count = rcnt;
    t->meta.default_ttl_s = spec->default_ttl_s;
    t->meta.status = REPL_TABLE_AVAILABLE;
    t->meta.create_time_ms = cellar_now_ms();
    t->meta.n_envs = spec->n_envs;
    memcpy(t->meta.envs, spec->envs, spec->n_envs * sizeof(spec->envs[0]));
    if (envs_parse(&t->meta, &t->read_only, &t->write_rate_limit) < 0) {
        rc = -CELLAR_EINVAL;
        goto out;
    }

    /* Burn the id first: files of a half-made table never meet a later one. */
    rc = next_id_save(r, r->next_id + 1);
    if (rc < 0)
        goto out;
    r->next_id++;
    rc = partitions_open(r, &t->meta, &t->parts, &t->writers, false, NULL, NULL, NULL, 0);
    if (rc < 0) {
        partitions_destroy(r, &t->meta);
        goto out;
    }
    rc = meta_save(r, &t->meta);
    if (rc < 0) {
        partitions_close(pc, t->parts, t->writers);
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
    char key[32];
    table_key(key, sizeof(key), t->meta.id);
    rc = store_metastore_delete(r->meta, key);
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
    rc = meta_save(r, &m);
    if (rc < 0)
        goto out;
    pthread_rwlock_wrlock(&r->lock);
    t->meta = m;
    struct store_partition **parts = t->parts;
    struct repl_writer **writers = t->writers;
    t->parts = NULL;
    t->writers = NULL;
    pthread_rwlock_unlock(&r->lock);
    /* No request can reach the partitions now; queued writes still finish. */
    partitions_close(m.partition_count, parts, writers);
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
    struct store_partition **parts = NULL;
    struct repl_writer **writers = NULL;
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
    rc = partitions_open(r, &m, &parts, &writers, false, NULL, NULL, NULL, 0);
    if (rc < 0)
        goto out;
    rc = meta_save(r, &m);
    if (rc < 0) {
        partitions_close(m.partition_count, parts, writers);
        goto out;
    }
    pthread_rwlock_wrlock(&r->lock);
    t->meta = m;
    t->parts = parts;
    t->writers = writers;
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
    rc = envs_parse(&m, &read_only, &rate);
    if (rc < 0)
        goto out;
    rc = meta_save(r, &m);
    if (rc < 0)
        goto out;
    pthread_rwlock_wrlock(&r->lock);
    t->meta = m;
    t->read_only = read_only;
    t->write_rate_limit = rate;
    t->refill_ms = 0; /* a new limit starts with a full bucket */
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
        if (store_partition_health(t->parts[i], NULL, 0) == STORE_HEALTH_FAILED) {
            log_warn("table %s: partition %" PRIu32 " has failed; not compacted", name, i);
            continue;
        }
        rc = store_partition_compact(t->parts[i]);
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
            repl_writer_stats(t->writers[p], &s);
            out->partitions++;
            enum store_health h = store_partition_health(t->parts[p], NULL, 0);
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
            fn(arg, t->meta.name, p, t->parts[p], t->writers[p]);
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
        for (uint32_t p = 0; t->writers && p < t->meta.partition_count; p++) {
            uint64_t beat = repl_writer_heartbeat_ms(t->writers[p]);
            if (now > beat && now - beat > stall_ms) {
                alive = false;
                if (stalled)
                    snprintf(stalled, stalled_len, "%s", repl_writer_name(t->writers[p]));
                if (stalled_for_ms)
                    *stalled_for_ms = now - beat;
                break;
            }
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return alive;
}

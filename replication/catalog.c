/*
 * catalog.c - table records, their JSON form and their persistence
 * (catalog.h).
 *
 * Threads: any; the caller serialises changes to one store.
 */
#include "replication/catalog.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEXT_ID_KEY "next_table_id"
#define TABLE_KEY_PREFIX "table/"

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

int repl_envs_merge(struct repl_table_meta *m, const struct repl_env *envs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < m->n_envs && strcmp(m->envs[k].key, envs[i].key) != 0)
            k++;
        if (envs[i].value[0] == '\0') { /* remove */
            if (k < m->n_envs)
                m->envs[k] = m->envs[--m->n_envs];
            continue;
        }
        if (k == m->n_envs) {
            if (m->n_envs == REPL_ENVS_MAX)
                return -CELLAR_EINVAL;
            m->n_envs++;
        }
        m->envs[k] = envs[i];
    }
    bool read_only;
    uint64_t rate;
    return repl_envs_parse(m->envs, m->n_envs, &read_only, &rate);
}

char *repl_table_meta_encode(const struct repl_table_meta *m)
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
    CELLAR_ASSERT(text);
    return text;
}

int repl_table_meta_decode(const char *text, size_t len, struct repl_table_meta *m)
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
    if (!repl_table_name_valid(name, strlen(name)) || pc < 1 || pc > REPL_PARTITIONS_MAX ||
        (pc & (pc - 1)) != 0 || id < 1 || id > UINT32_MAX || rcnt < 1 || !json_is_object(envs))
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
        if (m->n_envs == REPL_ENVS_MAX || !json_is_string(v) || strlen(k) > REPL_ENV_BYTES_MAX ||
            json_string_length(v) > REPL_ENV_BYTES_MAX)
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

static void table_key(char *out, size_t n, uint32_t id)
{
    snprintf(out, n, TABLE_KEY_PREFIX "%010" PRIu32, id);
}

int repl_catalog_save(struct repl_metadata *md, const struct repl_table_meta *m)
{
    char *text = repl_table_meta_encode(m);
    char key[32];
    table_key(key, sizeof(key), m->id);
    int rc = md->ops->put(md, key, text, strlen(text));
    free(text);
    return rc;
}

int repl_catalog_delete(struct repl_metadata *md, uint32_t id)
{
    char key[32];
    table_key(key, sizeof(key), id);
    return md->ops->del(md, key);
}

struct load_ctx {
    int (*fn)(void *arg, const struct repl_table_meta *m);
    void *arg;
};

static int load_one(void *arg, const char *key, size_t klen, const char *val, size_t vlen)
{
    struct load_ctx *c = arg;
    struct repl_table_meta m;
    bool ro;
    uint64_t rate;
    if (repl_table_meta_decode(val, vlen, &m) < 0 ||
        repl_envs_parse(m.envs, m.n_envs, &ro, &rate) < 0) {
        log_err("metadata record %.*s is corrupt", (int)klen, key);
        return -CELLAR_ECORRUPT;
    }
    return c->fn(c->arg, &m);
}

int repl_catalog_load(struct repl_metadata *md,
                      int (*fn)(void *arg, const struct repl_table_meta *m), void *arg)
{
    struct load_ctx c = {fn, arg};
    return md->ops->scan(md, TABLE_KEY_PREFIX, load_one, &c);
}

int repl_catalog_next_id(struct repl_metadata *md, uint32_t *out)
{
    struct cellar_buf b = {0};
    int rc = md->ops->get(md, NEXT_ID_KEY, &b);
    if (rc == -CELLAR_ENOTFOUND) {
        *out = 1;
        rc = 0;
    } else if (rc == 0) {
        int64_t v = 0;
        if (cellar_parse_i64(b.data, b.len, &v) < 0 || v < 1 || v > UINT32_MAX)
            rc = -CELLAR_ECORRUPT;
        else
            *out = (uint32_t)v;
    }
    cellar_buf_fini(&b);
    return rc;
}

int repl_catalog_save_next_id(struct repl_metadata *md, uint32_t next)
{
    char text[16];
    int n = snprintf(text, sizeof(text), "%" PRIu32, next);
    return md->ops->put(md, NEXT_ID_KEY, text, (size_t)n);
}

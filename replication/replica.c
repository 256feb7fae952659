/*
 * replica.c - one hosted partition replica (replica.h): storage, writer,
 * configuration and role, and the gates reads and writes go through.
 *
 * Threads: the gates run on HTTP workers; open, close and set_config on
 * the admin or main thread. `mu` guards config and role.
 */
#include "replication/replica.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct repl_replica {
    struct store_partition *sp;
    struct repl_writer *writer;
    pthread_mutex_t mu;
    struct repl_config config;
    enum repl_role role;
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
    store_partition_close(r->sp);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Whether the replica may serve clients now. A cluster of one node is
 * always primary; leases between replicas come with secondaries. */
static bool serves(struct repl_replica *r)
{
    pthread_mutex_lock(&r->mu);
    bool ok = r->role == REPL_ROLE_PRIMARY;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

int repl_replica_read(struct repl_replica *r, struct store_partition **out)
{
    if (!serves(r))
        return -CELLAR_ENOTPRIMARY;
    *out = r->sp;
    return 0;
}

int repl_replica_writer(struct repl_replica *r, struct repl_writer **out)
{
    if (!serves(r))
        return -CELLAR_ENOTPRIMARY;
    *out = r->writer;
    return 0;
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

void repl_replica_set_config(struct repl_replica *r, const struct repl_config *config,
                             enum repl_role role)
{
    pthread_mutex_lock(&r->mu);
    r->config = *config;
    r->role = role;
    pthread_mutex_unlock(&r->mu);
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
    return json_pack("{s:I, s:o, s:o}", "ballot", (json_int_t)c->ballot, "primary",
                     c->primary[0] ? json_string(c->primary) : json_null(), "secondaries", secs);
}

int repl_config_parse(json_t *j, struct repl_config *c)
{
    memset(c, 0, sizeof(*c));
    json_t *ballot = json_object_get(j, "ballot"), *primary = json_object_get(j, "primary");
    json_t *secs = json_object_get(j, "secondaries");
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

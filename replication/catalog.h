/*
 * catalog.h - table records: what a table is (id, name, partition count,
 * replica count, default TTL, envs, status, times), their JSON form, and
 * their persistence in a metadata store.
 *
 * The catalog is what the meta role owns in a cluster; a node that is its
 * own cluster keeps it in its own metadata store. Either way it lives in a
 * repl_metadata (metadata.h) under "table/<id>", with the next table id
 * under "next_table_id". Ids
 * only grow: the next id is saved (fsynced) before a table with that id
 * creates any file, so an id is never reused, even across a crash.
 *
 * Threads: pure functions and metastore calls; the caller serialises
 * changes (the registry's admin mutex).
 */
#ifndef REPL_CATALOG_H
#define REPL_CATALOG_H

#include "common/cellar.h"
#include "replication/admission.h"
#include "replication/metadata.h"

#define REPL_TABLE_NAME_MAX 128
#define REPL_PARTITIONS_MAX 1024

enum repl_table_status {
    REPL_TABLE_AVAILABLE = 0,
    REPL_TABLE_DROPPED = 1,
};

/* A snapshot of one table's record (plain data, copyable). */
struct repl_table_meta {
    uint32_t id;
    char name[REPL_TABLE_NAME_MAX + 1];
    uint32_t partition_count;
    uint32_t replica_count;
    int64_t default_ttl_s; /* 0 = none */
    enum repl_table_status status;
    uint64_t create_time_ms;
    uint64_t drop_time_ms; /* when dropped */
    size_t n_envs;
    struct repl_env envs[REPL_ENVS_MAX];
};

/* Validates a table name: [A-Za-z0-9_.-]{1,128}. */
bool repl_table_name_valid(const char *name, size_t len);

/* Applies a PATCH's envs to m: each is set, or removed when its value is
 * empty; the result is validated (repl_envs_parse). -CELLAR_EINVAL (m
 * unchanged in part) for more than REPL_ENVS_MAX or a bad value. */
int repl_envs_merge(struct repl_table_meta *m, const struct repl_env *envs, size_t n);

/* A record as JSON text (malloc'ed, NUL-terminated; free() it), and back:
 * -CELLAR_ECORRUPT for anything that is not a valid record. */
char *repl_table_meta_encode(const struct repl_table_meta *m);
int repl_table_meta_decode(const char *text, size_t len, struct repl_table_meta *m);

/* Persistence. -CELLAR_EIO (or the metastore's code) on failure. */
int repl_catalog_save(struct repl_metadata *md, const struct repl_table_meta *m);
int repl_catalog_delete(struct repl_metadata *md, uint32_t id);
/* Calls fn for every record; a record that does not decode stops the load
 * with -CELLAR_ECORRUPT (logged with its key). fn's error stops it too. */
int repl_catalog_load(struct repl_metadata *md,
                      int (*fn)(void *arg, const struct repl_table_meta *m), void *arg);
/* The next table id to give (1 when none was ever saved). */
int repl_catalog_next_id(struct repl_metadata *md, uint32_t *out);
/* Saves next as the next id: every id below it is used up. */
int repl_catalog_save_next_id(struct repl_metadata *md, uint32_t next);

#endif

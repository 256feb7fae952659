/*
 * metadata.h - where the meta role keeps the cluster's metadata: a small
 * key-value interface (get, put, delete, scan by prefix) with one
 * implementation per backend. The embedded one (repl_metadata_embedded)
 * keeps it in a RocksDB of the meta node's own data directory; several
 * meta servers will keep it in etcd behind the same interface.
 *
 * Every put is durable when it returns (the embedded store syncs).
 *
 * Threads: the meta role serialises its calls (its own mutex).
 */
#ifndef REPL_METADATA_H
#define REPL_METADATA_H

#include "common/cellar.h"

struct repl_metadata;

struct repl_metadata_ops {
    /* -CELLAR_ENOTFOUND when absent. out is appended to. */
    int (*get)(struct repl_metadata *md, const char *key, struct cellar_buf *out);
    int (*put)(struct repl_metadata *md, const char *key, const void *val, size_t len);
    int (*del)(struct repl_metadata *md, const char *key);
    /* Calls fn for every key with the prefix, in key order; fn's error
     * stops the scan and is returned. */
    int (*scan)(struct repl_metadata *md, const char *prefix,
                int (*fn)(void *arg, const char *key, size_t klen, const char *val, size_t vlen),
                void *arg);
    void (*close)(struct repl_metadata *md);
};

struct repl_metadata {
    const struct repl_metadata_ops *ops;
};

/* The embedded store, in dir (created when missing). */
int repl_metadata_embedded(const char *dir, struct repl_metadata **out);

#endif

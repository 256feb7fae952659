/*
 * metastore.h - the node's metadata store: a small RocksDB of its own
 * (<data>/node) holding the table registry. Every write is fsynced.
 *
 * Threads: any; RocksDB serialises writes. Callers that need
 * read-modify-write atomicity hold their own lock (the registry does).
 */
#ifndef STORE_METASTORE_H
#define STORE_METASTORE_H

#include "common/cellar.h"

struct store_metastore;

int store_metastore_open(const char *dir, struct store_metastore **out);
void store_metastore_close(struct store_metastore *m); /* accepts NULL */

/* Errors: -CELLAR_ENOTFOUND, -CELLAR_EIO. out is appended to. */
int store_metastore_get(struct store_metastore *m, const char *key, struct cellar_buf *out);
int store_metastore_put(struct store_metastore *m, const char *key, const void *val, size_t len);
int store_metastore_delete(struct store_metastore *m, const char *key);

/* Calls fn for every key starting with prefix, in key order; stops early
 * when fn returns non-zero (that value is returned). */
typedef int (*store_metastore_fn)(void *arg, const char *key, size_t klen, const char *val,
                                  size_t vlen);
int store_metastore_scan(struct store_metastore *m, const char *prefix, store_metastore_fn fn,
                         void *arg);

#endif

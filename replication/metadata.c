/*
 * metadata.c - the embedded metadata store (metadata.h): the node's
 * metastore (storage/metastore.h, a synced RocksDB) behind the meta role's
 * interface.
 *
 * Threads: whoever the meta role lets in (one at a time).
 */
#include "replication/metadata.h"

#include <stdlib.h>

#include "storage/metastore.h"

struct embedded {
    struct repl_metadata base;
    struct store_metastore *ms;
};

static struct store_metastore *ms_of(struct repl_metadata *md)
{
    return ((struct embedded *)md)->ms;
}

static int e_get(struct repl_metadata *md, const char *key, struct cellar_buf *out)
{
    return store_metastore_get(ms_of(md), key, out);
}

static int e_put(struct repl_metadata *md, const char *key, const void *val, size_t len)
{
    return store_metastore_put(ms_of(md), key, val, len);
}

static int e_del(struct repl_metadata *md, const char *key)
{
    return store_metastore_delete(ms_of(md), key);
}

static int e_scan(struct repl_metadata *md, const char *prefix,
                  int (*fn)(void *arg, const char *key, size_t klen, const char *val, size_t vlen),
                  void *arg)
{
    return store_metastore_scan(ms_of(md), prefix, fn, arg);
}

static void e_close(struct repl_metadata *md)
{
    store_metastore_close(ms_of(md));
    free(md);
}

static const struct repl_metadata_ops embedded_ops = {e_get, e_put, e_del, e_scan, e_close};

int repl_metadata_embedded(const char *dir, struct repl_metadata **out)
{
    struct embedded *e = cellar_xcalloc(1, sizeof(*e));
    e->base.ops = &embedded_ops;
    int rc = store_metastore_open(dir, &e->ms);
    if (rc < 0) {
        free(e);
        *out = NULL;
        return rc;
    }
    *out = &e->base;
    return 0;
}

/*
 * config.h - the node's configuration: defaults, the config file and the
 * command line. Read in main before any thread starts and passed down by
 * pointer; a reload (SIGHUP) reads the file into a new struct, and main
 * hands the few keys that may change at run time to their owners.
 *
 * Config file: one "key = value" per line, '#' starts a comment, blank lines
 * are ignored. Sizes accept the suffixes K, M, G (powers of 1024). Unknown
 * keys and bad values are errors that name the file and line. The command
 * line (--listen, --data-dir) overrides the file. README.md lists every key.
 */
#ifndef SVC_CONFIG_H
#define SVC_CONFIG_H

#include "api/server.h"
#include "replication/cluster.h"
#include "replication/registry.h"
#include "storage/engine.h"

struct svc_config {
    char data_dir[4096];
    int log_level;
    uint64_t shutdown_timeout_ms; /* bound on draining at shutdown */
    uint64_t purge_interval_ms;   /* how often dropped tables are checked */
    struct api_config api;
    struct store_engine_config engine;
    struct repl_registry_config registry;
    struct repl_cluster_config cluster;
};

void svc_config_defaults(struct svc_config *cfg);

/* Applies the config file at path. On error returns -CELLAR_EINVAL and
 * writes a one-line message naming the file, line and key into err. */
int svc_config_load(struct svc_config *cfg, const char *path, char *err, size_t errlen);

/* Applies one "key = value" setting (the same keys as the file). */
int svc_config_set(struct svc_config *cfg, const char *key, const char *value, char *err,
                   size_t errlen);

/* Reload (SIGHUP): main reads the file again into a fresh svc_config and
 * applies the keys that may change at run time (README.md lists them);
 * the others take effect at the next start. */
bool svc_config_key_reloadable(const char *key);
/* Copies the reloadable keys' values from src into the running dst, each
 * with one atomic store: the API server reads its limits from dst (it
 * borrows &dst->api) while this runs. */
void svc_config_apply_reloadable(struct svc_config *dst, const struct svc_config *src);

/* Calls fn(arg, key) for each key whose value differs between a and b. */
void svc_config_foreach_change(const struct svc_config *a, const struct svc_config *b,
                               void (*fn)(void *arg, const char *key), void *arg);

#endif

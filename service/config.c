/*
 * config.c - defaults, the config file and single settings (config.h).
 *
 * Design: one table lists every key with its type, bounds and the field it
 * sets, so the file parser, the command line and README.md's reference all
 * describe the same set. Main thread only (at start, and on a reload into
 * a fresh struct).
 */
#include "service/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum kind {
    K_SIZE,      /* bytes, with K/M/G suffixes */
    K_UINT,      /* plain unsigned integer */
    K_SECONDS,   /* seconds, stored as milliseconds (uint64_t) */
    K_SECONDS_U, /* seconds, stored as unsigned */
    K_BOOL,      /* true or false */
    K_STRING,    /* special-cased by key */
};

struct key {
    const char *name;
    enum kind kind;
    uint64_t min, max;
    size_t offset;
    size_t width; /* of the field: 2, 4 or 8 bytes, or sizeof(size_t) */
    bool reload;  /* a reload (SIGHUP) applies it to the running node (the
                     others take effect at the next start) */
};

/* The field a key sets: F for a key that takes effect at the next start, R
 * for one a reload applies in place (svc_config_apply_reloadable). */
#define F(field) offsetof(struct svc_config, field), sizeof(((struct svc_config *)0)->field), false
#define R(field) offsetof(struct svc_config, field), sizeof(((struct svc_config *)0)->field), true

static const struct key keys[] = {
    {"listen", K_STRING, 0, 0, 0, 0, false},
    {"data_dir", K_STRING, 0, 0, 0, 0, false},
    {"log_level", K_STRING, 0, 0, R(log_level)},
    {"durability", K_STRING, 0, 0, 0, 0, false},
    {"cors_origins", K_STRING, 0, 0, 0, 0, false},
    {"tokens_file", K_STRING, 0, 0, 0, 0, false},
    {"cluster_secret_file", K_STRING, 0, 0, 0, 0, false},
    {"meta_servers", K_STRING, 0, 0, 0, 0, false},
    {"advertise", K_STRING, 0, 0, 0, 0, false},
    {"roles", K_STRING, 0, 0, 0, 0, false},
    {"default_replica_count", K_UINT, 0, REPL_REPLICAS_MAX, F(registry.default_replica_count)},
    {"fd_beacon_ms", K_UINT, 50, 60000, F(cluster.fd_beacon_ms)},
    {"fd_lease_ms", K_UINT, 60, 600000, F(cluster.fd_lease_ms)},
    {"fd_grace_ms", K_UINT, 100, 600000, F(cluster.fd_grace_ms)},
    {"replica_replace_after_s", K_UINT, 1, 30ull * 86400, F(cluster.replica_replace_after_s)},
    {"balance_moves_max", K_UINT, 1, 1024, F(cluster.balance_moves_max)},
    {"forward_wait_ms", K_UINT, 0, 600000, F(cluster.forward_wait_ms)},
    {"prepare_timeout_ms", K_UINT, 10, 600000, F(cluster.prepare_timeout_ms)},
    {"prepare_gather_us", K_UINT, 0, 1000000, F(cluster.prepare_gather_us)},
    {"tls_cert_file", K_STRING, 0, 0, 0, 0, false},
    {"tls_key_file", K_STRING, 0, 0, 0, 0, false},
    {"insecure", K_BOOL, 0, 1, F(api.insecure)},
    {"metrics_auth", K_BOOL, 0, 1, F(api.metrics_auth)},
    {"readyz_auth", K_BOOL, 0, 1, F(api.readyz_auth)},
    {"http_threads", K_UINT, 0, 256, F(api.threads)},
    {"http_connection_limit", K_UINT, 1, 1000000, F(api.connection_limit)},
    {"http_connection_limit_per_ip", K_UINT, 0, 1000000, F(api.connection_limit_per_ip)},
    {"http_request_timeout_s", K_SECONDS_U, 1, 86400, F(api.request_timeout_s)},
    {"http_connection_timeout_s", K_SECONDS_U, 1, 86400, F(api.connection_timeout_s)},
    {"http_connection_memory_bytes", K_SIZE, 4096, 64ull << 20, F(api.connection_memory_bytes)},
    {"max_body_bytes", K_SIZE, 1024, 1ull << 30, R(api.max_body_bytes)},
    {"max_value_bytes", K_SIZE, 1, 512ull << 20, R(api.max_value_bytes)},
    {"admin_queue_max", K_UINT, 1, 100000, R(api.admin_queue_max)},
    {"max_batch_items", K_UINT, 1, 1000000, R(api.max_batch_items)},
    {"max_page_cells", K_UINT, 1, 1000000, R(api.max_page_cells)},
    {"max_page_bytes", K_SIZE, 1024, 1ull << 30, R(api.max_page_bytes)},
    {"max_scan_cells", K_UINT, 1, 100000000, R(api.max_scan_cells)},
    {"max_scan_ms", K_UINT, 1, 3600000, R(api.max_scan_ms)},
    {"slow_request_ms", K_UINT, 0, 3600000, F(api.slow_request_ms)},
    {"write_queue_max", K_UINT, 1, 10000000, F(registry.writer.queue_max)},
    {"write_batch_max", K_UINT, 1, 100000, F(registry.writer.batch_max)},
    {"write_batch_max_bytes", K_SIZE, 1024, 1ull << 30, F(registry.writer.batch_max_bytes)},
    {"log_retain_decrees", K_UINT, 0, 1ull << 40, F(registry.writer.log_retain)},
    {"default_partition_count", K_UINT, 1, 1024, F(registry.default_partition_count)},
    {"drop_retention_s", K_SECONDS, 0, 100ull * 365 * 86400, F(registry.drop_retention_ms)},
    {"purge_interval_s", K_SECONDS, 1, 86400, R(purge_interval_ms)},
    {"shutdown_timeout_s", K_SECONDS, 1, 3600, R(shutdown_timeout_ms)},
    {"block_cache_bytes", K_SIZE, 1 << 20, 1ull << 40, F(engine.block_cache_bytes)},
    {"write_buffer_bytes", K_SIZE, 64 << 10, 1ull << 32, F(engine.write_buffer_bytes)},
    {"max_write_buffers", K_UINT, 2, 64, F(engine.max_write_buffers)},
    {"rocksdb_background_threads", K_UINT, 1, 64, F(engine.background_threads)},
    {"rocksdb_flush_threads", K_UINT, 1, 64, F(engine.flush_threads)},
    {"rocksdb_rate_limit_bytes_per_sec", K_SIZE, 0, 1ull << 40, F(engine.rate_limit_bytes_per_sec)},
    {"rocksdb_max_open_files", K_UINT, 16, 1000000, F(engine.max_open_files)},
    {"periodic_compaction_s", K_UINT, 0, 100ull * 365 * 86400, F(engine.periodic_compaction_s)},
    /* TEST ONLY: wedges every partition writer this long after it starts
     * (replication/writer.h), to exercise the watchdog for real. */
    {"test_wedge_writer_after_s", K_SECONDS, 0, 86400, F(registry.writer.test_wedge_after_ms)},
};

void svc_config_defaults(struct svc_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "./data");
    cfg->log_level = CELLAR_LOG_INFO;
    cfg->shutdown_timeout_ms = 30 * 1000;
    cfg->purge_interval_ms = 60 * 1000;
    api_config_defaults(&cfg->api);
    store_engine_config_defaults(&cfg->engine);
    repl_registry_config_defaults(&cfg->registry);
    repl_cluster_config_defaults(&cfg->cluster);
}

static int parse_u64(const char *s, bool size_suffix, uint64_t *out)
{
    size_t len = strlen(s);
    uint64_t mult = 1;
    if (size_suffix && len > 1) {
        switch (s[len - 1]) {
        case 'K':
        case 'k':
            mult = 1ull << 10;
            len--;
            break;
        case 'M':
        case 'm':
            mult = 1ull << 20;
            len--;
            break;
        case 'G':
        case 'g':
            mult = 1ull << 30;
            len--;
            break;
        default:
            break;
        }
    }
    int64_t v = 0;
    if (cellar_parse_i64(s, len, &v) < 0 || v < 0)
        return -CELLAR_EINVAL;
    if ((uint64_t)v > UINT64_MAX / mult)
        return -CELLAR_EINVAL;
    *out = (uint64_t)v * mult;
    return 0;
}

static void store_field(struct svc_config *cfg, const struct key *k, uint64_t v)
{
    char *field = (char *)cfg + k->offset;
    switch (k->width) {
    case 1:
        *(uint8_t *)field = (uint8_t)v;
        break;
    case 2:
        *(uint16_t *)field = (uint16_t)v;
        break;
    case 4:
        *(uint32_t *)field = (uint32_t)v;
        break;
    case 8:
        *(uint64_t *)field = v;
        break;
    default:
        CELLAR_ASSERT(!"unexpected field width");
    }
}

/* The path-valued keys and where they go. */
static char *path_field(struct svc_config *cfg, const char *key, size_t *size)
{
    struct {
        const char *key;
        char *field;
        size_t size;
    } paths[] = {
        {"tokens_file", cfg->api.tokens_file, sizeof(cfg->api.tokens_file)},
        {"cluster_secret_file", cfg->api.cluster_secret_file, sizeof(cfg->api.cluster_secret_file)},
        {"tls_cert_file", cfg->api.tls_cert_file, sizeof(cfg->api.tls_cert_file)},
        {"tls_key_file", cfg->api.tls_key_file, sizeof(cfg->api.tls_key_file)},
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (strcmp(paths[i].key, key) == 0) {
            *size = paths[i].size;
            return paths[i].field;
        }
    }
    return NULL;
}

static int set_string(struct svc_config *cfg, const char *key, const char *value, char *err,
                      size_t errlen)
{
    size_t size = 0;
    char *path = path_field(cfg, key, &size);
    if (path) {
        if (strlen(value) >= size) {
            snprintf(err, errlen, "%s: expected a path shorter than %zu bytes", key, size);
            return -CELLAR_EINVAL;
        }
        snprintf(path, size, "%s", value);
        return 0;
    }
    if (strcmp(key, "listen") == 0) {
        if (api_config_set_listen(&cfg->api, value) < 0) {
            snprintf(err, errlen, "listen: expected HOST:PORT, got \"%s\"", value);
            return -CELLAR_EINVAL;
        }
        return 0;
    }
    if (strcmp(key, "data_dir") == 0) {
        if (!*value || strlen(value) >= sizeof(cfg->data_dir) - 64) {
            snprintf(err, errlen, "data_dir: expected a path shorter than %zu bytes",
                     sizeof(cfg->data_dir) - 64);
            return -CELLAR_EINVAL;
        }
        snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", value);
        return 0;
    }
    if (strcmp(key, "cors_origins") == 0) {
        if (strlen(value) >= sizeof(cfg->api.cors_origins)) {
            snprintf(err, errlen, "cors_origins: at most %zu bytes",
                     sizeof(cfg->api.cors_origins) - 1);
            return -CELLAR_EINVAL;
        }
        snprintf(cfg->api.cors_origins, sizeof(cfg->api.cors_origins), "%s", value);
        return 0;
    }
    if (strcmp(key, "meta_servers") == 0) {
        if (repl_cluster_set_meta_servers(&cfg->cluster, value) < 0) {
            snprintf(err, errlen,
                     "meta_servers: expected HOST:PORT[,HOST:PORT...] (at most %d), got \"%s\"",
                     REPL_META_SERVERS_MAX, value);
            return -CELLAR_EINVAL;
        }
        return 0;
    }
    if (strcmp(key, "advertise") == 0) {
        if (*value && repl_addr_valid(value) < 0) {
            snprintf(err, errlen, "advertise: expected HOST:PORT with a port 1..65535, got \"%s\"",
                     value);
            return -CELLAR_EINVAL;
        }
        snprintf(cfg->cluster.advertise, sizeof(cfg->cluster.advertise), "%s", value);
        return 0;
    }
    if (strcmp(key, "roles") == 0) {
        if (repl_cluster_set_roles(&cfg->cluster, value) < 0) {
            snprintf(err, errlen, "roles: expected meta, data or meta,data, got \"%s\"", value);
            return -CELLAR_EINVAL;
        }
        return 0;
    }
    if (strcmp(key, "log_level") == 0) {
        if (cellar_log_level_parse(value, &cfg->log_level) < 0) {
            snprintf(err, errlen, "log_level: expected error, warning, notice, info or debug");
            return -CELLAR_EINVAL;
        }
        return 0;
    }
    /* durability */
    if (strcmp(value, "fsync") == 0) {
        cfg->registry.writer.sync = true;
    } else if (strcmp(value, "os") == 0) {
        cfg->registry.writer.sync = false;
    } else {
        snprintf(err, errlen, "durability: expected fsync or os, got \"%s\"", value);
        return -CELLAR_EINVAL;
    }
    return 0;
}

int svc_config_set(struct svc_config *cfg, const char *key, const char *value, char *err,
                   size_t errlen)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const struct key *k = &keys[i];
        if (strcmp(k->name, key) != 0)
            continue;
        if (k->kind == K_STRING)
            return set_string(cfg, key, value, err, errlen);
        if (k->kind == K_BOOL) {
            if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
                snprintf(err, errlen, "%s: expected true or false, got \"%s\"", key, value);
                return -CELLAR_EINVAL;
            }
            store_field(cfg, k, strcmp(value, "true") == 0);
            return 0;
        }
        uint64_t v = 0;
        if (parse_u64(value, k->kind == K_SIZE, &v) < 0 || v < k->min || v > k->max) {
            snprintf(err, errlen, "%s: expected %s in %llu..%llu, got \"%s\"", key,
                     k->kind == K_SIZE ? "a size (K, M, G suffixes allowed)" : "an integer",
                     (unsigned long long)k->min, (unsigned long long)k->max, value);
            return -CELLAR_EINVAL;
        }
        if (k->kind == K_SECONDS)
            v *= 1000;
        store_field(cfg, k, v);
        return 0;
    }
    snprintf(err, errlen, "unknown setting \"%s\"", key);
    return -CELLAR_EINVAL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int svc_config_load(struct svc_config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -CELLAR_EINVAL;
    }
    int rc = 0;
    char line[8192];
    unsigned lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%u: expected key = value", path, lineno);
            rc = -CELLAR_EINVAL;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        char msg[512];
        rc = svc_config_set(cfg, key, value, msg, sizeof(msg));
        if (rc < 0) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, msg);
            break;
        }
    }
    fclose(f);
    return rc;
}

bool svc_config_key_reloadable(const char *key)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].name, key) == 0)
            return keys[i].reload;
    }
    return false;
}

void svc_config_apply_reloadable(struct svc_config *dst, const struct svc_config *src)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const struct key *k = &keys[i];
        if (!k->reload)
            continue;
        /* Other threads read these fields while this runs: one atomic
         * store each, so a reader sees the old value or the new one. */
        char *to = (char *)dst + k->offset;
        const char *from = (const char *)src + k->offset;
        switch (k->width) {
        case 4:
            __atomic_store_n((uint32_t *)to, *(const uint32_t *)from, __ATOMIC_RELAXED);
            break;
        case 8:
            __atomic_store_n((uint64_t *)to, *(const uint64_t *)from, __ATOMIC_RELAXED);
            break;
        default:
            CELLAR_ASSERT(!"a reloadable field is 4 or 8 bytes");
        }
    }
}

/* Whether the string-valued key differs between a and b. */
static bool string_differs(const char *key, const struct svc_config *a, const struct svc_config *b)
{
    if (strcmp(key, "listen") == 0)
        return strcmp(a->api.listen_host, b->api.listen_host) != 0 ||
               a->api.listen_port != b->api.listen_port;
    if (strcmp(key, "data_dir") == 0)
        return strcmp(a->data_dir, b->data_dir) != 0;
    if (strcmp(key, "log_level") == 0)
        return a->log_level != b->log_level;
    if (strcmp(key, "durability") == 0)
        return a->registry.writer.sync != b->registry.writer.sync;
    if (strcmp(key, "cors_origins") == 0)
        return strcmp(a->api.cors_origins, b->api.cors_origins) != 0;
    if (strcmp(key, "meta_servers") == 0) {
        bool differs = a->cluster.n_meta != b->cluster.n_meta;
        for (size_t i = 0; !differs && i < a->cluster.n_meta; i++)
            differs = strcmp(a->cluster.meta_servers[i], b->cluster.meta_servers[i]) != 0;
        return differs;
    }
    if (strcmp(key, "advertise") == 0)
        return strcmp(a->cluster.advertise, b->cluster.advertise) != 0;
    if (strcmp(key, "roles") == 0)
        return a->cluster.roles_set != b->cluster.roles_set ||
               a->cluster.role_meta != b->cluster.role_meta ||
               a->cluster.role_data != b->cluster.role_data;
    size_t size;
    const char *pa = path_field((struct svc_config *)a, key, &size);
    const char *pb = path_field((struct svc_config *)b, key, &size);
    if (pa && pb)
        return strcmp(pa, pb) != 0;
    return false; /* a string key this function does not know yet */
}

void svc_config_foreach_change(const struct svc_config *a, const struct svc_config *b,
                               void (*fn)(void *arg, const char *key), void *arg)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const struct key *k = &keys[i];
        bool differs = k->kind == K_STRING ? string_differs(k->name, a, b)
                                           : memcmp((const char *)a + k->offset,
                                                    (const char *)b + k->offset, k->width) != 0;
        if (differs)
            fn(arg, k->name);
    }
}

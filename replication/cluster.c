/*
 * cluster.c - the cluster settings and their start-up check (cluster.h).
 *
 * Threads: main thread at start.
 */
#include "replication/cluster.h"

#include <stdio.h>
#include <string.h>

void repl_cluster_config_defaults(struct repl_cluster_config *c)
{
    memset(c, 0, sizeof(*c));
    c->fd_beacon_ms = 500;
    c->fd_lease_ms = 2000;
    c->fd_grace_ms = 3000;
    c->replica_replace_after_s = 600;
    c->balance_moves_max = 4;
    c->forward_wait_ms = 8000;
    c->prepare_timeout_ms = 1000;
    c->prepare_gather_us = 10000;
}

int repl_addr_valid(const char *addr)
{
    size_t len = strlen(addr);
    const char *colon = strrchr(addr, ':');
    if (!len || len >= REPL_ADDR_MAX || !colon || colon == addr)
        return -CELLAR_EINVAL;
    if (addr[0] == '[' && colon[-1] != ']')
        return -CELLAR_EINVAL;
    int64_t port = 0;
    if (cellar_parse_i64(colon + 1, strlen(colon + 1), &port) < 0 || port < 1 || port > 65535)
        return -CELLAR_EINVAL;
    for (const char *p = addr; p < colon; p++) {
        if (*p == ',' || *p == ' ' || *p == '/' || (unsigned char)*p < 0x21)
            return -CELLAR_EINVAL;
    }
    return 0;
}

/* The next item of a list separated by commas and spaces: its start and
 * length, with *p moved past it; false at the end. */
static bool next_item(const char **p, const char **item, size_t *len)
{
    while (**p == ' ' || **p == ',')
        (*p)++;
    if (!**p)
        return false;
    const char *end = *p;
    while (*end && *end != ',' && *end != ' ')
        end++;
    *item = *p;
    *len = (size_t)(end - *p);
    *p = end;
    return true;
}

int repl_cluster_set_meta_servers(struct repl_cluster_config *c, const char *list)
{
    size_t n = 0, len;
    const char *p = list, *item;
    while (next_item(&p, &item, &len)) {
        if (n == REPL_META_SERVERS_MAX || len >= REPL_ADDR_MAX)
            return -CELLAR_EINVAL;
        memcpy(c->meta_servers[n], item, len);
        c->meta_servers[n][len] = '\0';
        if (repl_addr_valid(c->meta_servers[n]) < 0)
            return -CELLAR_EINVAL;
        n++;
    }
    c->n_meta = n;
    return 0;
}

int repl_cluster_set_roles(struct repl_cluster_config *c, const char *roles)
{
    bool meta = false, data = false;
    const char *p = roles, *item;
    size_t len;
    if (!*p) {
        c->roles_set = c->role_meta = c->role_data = false; /* the default */
        return 0;
    }
    while (next_item(&p, &item, &len)) {
        if (len == 4 && memcmp(item, "meta", 4) == 0)
            meta = true;
        else if (len == 4 && memcmp(item, "data", 4) == 0)
            data = true;
        else
            return -CELLAR_EINVAL;
    }
    if (!meta && !data)
        return -CELLAR_EINVAL;
    c->role_meta = meta;
    c->role_data = data;
    c->roles_set = true;
    return 0;
}

static bool wildcard(const char *host)
{
    return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || host[0] == '\0';
}

int repl_cluster_config_check(struct repl_cluster_config *c, const char *listen_host,
                              uint16_t listen_port, bool have_secret, char *err, size_t errlen)
{
    if (!repl_cluster_enabled(c)) {
        if (c->roles_set || c->advertise[0]) {
            snprintf(err, errlen,
                     "%s is set but meta_servers is not: a node without meta_servers is a "
                     "cluster of one (set meta_servers, or remove %s)",
                     c->roles_set ? "roles" : "advertise", c->roles_set ? "roles" : "advertise");
            return -CELLAR_EINVAL;
        }
        return 0;
    }
    if (c->n_meta > 1) {
        snprintf(err, errlen,
                 "meta_servers lists %zu servers: several meta servers keep the metadata in "
                 "etcd, which this version does not support yet; list one",
                 c->n_meta);
        return -CELLAR_EINVAL;
    }
    if (!have_secret) {
        snprintf(err, errlen,
                 "meta_servers is set but cluster_secret_file is not: nodes of a cluster "
                 "prove themselves to each other with the cluster secret "
                 "(--cluster-secret-file FILE)");
        return -CELLAR_EINVAL;
    }
    if (!c->advertise[0]) {
        if (wildcard(listen_host) || listen_port == 0) {
            snprintf(err, errlen,
                     "the node listens on %s:%u, which other nodes cannot reach: set advertise "
                     "(--advertise HOST:PORT) to the address they use",
                     listen_host, (unsigned)listen_port);
            return -CELLAR_EINVAL;
        }
        bool v6 = strchr(listen_host, ':') != NULL;
        snprintf(c->advertise, sizeof(c->advertise), "%s%s%s:%u", v6 ? "[" : "", listen_host,
                 v6 ? "]" : "", (unsigned)listen_port);
    }
    bool listed = false;
    for (size_t i = 0; i < c->n_meta; i++)
        listed |= strcmp(c->meta_servers[i], c->advertise) == 0;
    if (!c->roles_set) {
        c->role_meta = listed;
        c->role_data = true;
    }
    if (c->role_meta && !listed) {
        snprintf(err, errlen,
                 "roles has meta but this node's address %s is not in meta_servers: a meta "
                 "server must be listed there so that the others find it",
                 c->advertise);
        return -CELLAR_EINVAL;
    }
    if (!c->role_meta && listed) {
        snprintf(err, errlen,
                 "this node's address %s is in meta_servers but roles has no meta: the other "
                 "nodes would look for the metadata here",
                 c->advertise);
        return -CELLAR_EINVAL;
    }
    /* The lease rule: a secondary gives up on its primary only after
     * fd_grace_ms of silence, when the primary's lease (fd_lease_ms from
     * the last message acked) has run out; a primary renews it every
     * fd_beacon_ms. */
    if (!(c->fd_beacon_ms < c->fd_lease_ms && c->fd_lease_ms < c->fd_grace_ms)) {
        snprintf(err, errlen,
                 "fd_beacon_ms (%llu) < fd_lease_ms (%llu) < fd_grace_ms (%llu) must hold",
                 (unsigned long long)c->fd_beacon_ms, (unsigned long long)c->fd_lease_ms,
                 (unsigned long long)c->fd_grace_ms);
        return -CELLAR_EINVAL;
    }
    return 0;
}

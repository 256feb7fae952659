/*
 * main.c - the cellard process: command line, configuration, start-up,
 * the main loop (signals, watchdog, timers), reload and the orderly stop,
 * with systemd's notification protocol throughout (sd_notify(3)).
 *
 * Start: read the config, block the signals every thread inherits, take
 * the listening socket from systemd when it passes one (socket activation,
 * sd_listen_fds) or bind --listen later, create the data directory, the
 * storage engine and the registry (which opens every partition: STATUS=
 * "opening partition 12/64", with EXTEND_TIMEOUT_USEC= while progress is
 * made, so a long recovery is not killed by TimeoutStartSec=), then the
 * HTTP server; READY=1 only then. A failed start sends ERRNO= and a STATUS=
 * line saying why, and exits 1 (2 for a bad command line or config file).
 *
 * Running: the main thread waits for signals with a timeout, and in
 * between pings the watchdog when it has earned it (watchdog.h), purges
 * expired dropped tables and keeps STATUS= ("serving 3 tables, 24
 * partitions") current. SIGHUP reloads the config file: RELOADING=1, the
 * keys that may change at run time are applied (log level, limits), the
 * others are reported as needing a restart, READY=1.
 *
 * Stop (SIGTERM or SIGINT): STOPPING=1, /readyz 503, stop accepting, wait
 * (at most shutdown_timeout_s) for requests in flight, close the registry
 * (each writer drains its queue, so every accepted write commits and is
 * answered), stop HTTP, free the engine, exit 0. Pings stop with STOPPING=1
 * (systemd does not watch a stopping service).
 *
 * Logging: stderr, one line per event, "<N>" syslog priority prefixes
 * (common/cellar.h), so journald keeps the priorities.
 *
 * Threads: this file runs on the main thread only, and only it calls
 * sd_notify. It owns the server struct (`struct node`) and passes pieces
 * down; there is no global state.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "api/auth.h"
#include "api/server.h"
#include "replication/member.h"
#include "replication/registry.h"
#include "service/config.h"
#include "service/watchdog.h"
#include "storage/engine.h"

/* Each sign of start-up progress (a partition opened) asks systemd for
 * this much more time, at most once a second. */
#define START_EXTEND_US (60ull * 1000 * 1000)
#define START_EXTEND_EVERY_MS 1000u
/* Beyond shutdown_timeout_s, time asked for at stop to close partitions. */
#define STOP_CLOSE_MARGIN_US (30ull * 1000 * 1000)
/* The longest the main loop sleeps: the STATUS= refresh period. */
#define LOOP_MAX_WAIT_MS 1000u

struct node {
    struct svc_config cfg;
    /* The command line, kept for reloads: the file is read again and the
     * command line applied on top, as at start. */
    const char *config_path; /* NULL: no file */
    const char *cli_listen;
    const char *cli_data_dir;
    const char *cli_meta;
    const char *cli_advertise;
    const char *cli_secret;
    bool cli_insecure;

    struct store_engine *engine;
    struct repl_registry *registry;
    /* In a cluster (meta_servers set); all NULL for a cluster of one. */
    struct repl_peer_config peer;
    struct repl_forwarder *forwarder;
    struct repl_learning *learning;
    struct repl_peer_figures *prepares;
    struct repl_meta *meta;
    struct repl_member *member;
    struct api_cluster cluster_api;
    struct api_server *server;
    struct svc_watchdog *watchdog;
    uint64_t watchdog_us;

    uint64_t last_extend_ms; /* start-up: last EXTEND_TIMEOUT_USEC */
    char status[128];        /* the last STATUS= sent while serving */
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: cellard [--listen HOST:PORT] [--data-dir DIR] [--config FILE]\n"
                 "               [--insecure] [--meta HOST:PORT[,...]] [--advertise HOST:PORT]\n"
                 "               [--cluster-secret-file FILE]\n"
                 "       cellard --hash-token < FILE\n"
                 "       cellard --help | --version\n"
                 "\n"
                 "Cellar node: a key-value store with tables, rows and sorted cells,\n"
                 "served over HTTP/JSON.\n"
                 "\n"
                 "  --listen HOST:PORT  address to serve on (default 127.0.0.1:8080);\n"
                 "                      ignored when systemd passes a socket\n"
                 "  --data-dir DIR      where data lives (default ./data)\n"
                 "  --config FILE       a config file of key = value lines (see README.md);\n"
                 "                      --listen and --data-dir override it; SIGHUP\n"
                 "                      reads it again\n"
                 "  --insecure          serve clients on other hosts even without access\n"
                 "                      tokens (anyone who reaches the node may read and\n"
                 "                      change every table)\n"
                 "  --meta HOST:PORT    the cluster's meta server (meta_servers); without\n"
                 "                      it the node is a cluster of one\n"
                 "  --advertise HOST:PORT  this node's address for the other nodes\n"
                 "                      (default: the listen address)\n"
                 "  --cluster-secret-file FILE  the secret nodes present to each other\n"
                 "                      (required in a cluster)\n"
                 "  --hash-token        read a token from stdin (up to the first newline)\n"
                 "                      and print its SHA-256, for the tokens file\n"
                 "  --help              this text\n"
                 "  --version           the version\n");
}

/* A failed start: one log line, and ERRNO= with a STATUS= line for
 * systemd (shown by systemctl status). err is an errno value. */
static void fail_start(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_start(int err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++) {
        if (*c == '\n')
            *c = ' ';
    }
    log_err("%s", msg);
    sd_notifyf(0, "STATUS=failed to start: %s\nERRNO=%d", msg, err > 0 ? err : EIO);
}

/* The errno value closest to a Cellar status, for ERRNO=. */
static int errno_of(int cellar_err)
{
    switch (cellar_err < 0 ? -cellar_err : cellar_err) {
    case CELLAR_EINVAL:
        return EINVAL;
    case CELLAR_ENOTFOUND:
        return ENOENT;
    case CELLAR_ENOSPC:
        return ENOSPC;
    case CELLAR_ENOMEM:
        return ENOMEM;
    case CELLAR_EBUSY:
        return EBUSY;
    case CELLAR_ECORRUPT:
        return EUCLEAN;
    default:
        return EIO;
    }
}

/* mkdir -p. On failure errno says why. */
static int make_dirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -CELLAR_ESYS;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -CELLAR_ESYS;
    struct stat st;
    if (stat(tmp, &st) != 0)
        return -CELLAR_ESYS;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -CELLAR_ESYS;
    }
    return 0;
}

static void on_progress(void *arg, size_t done, size_t total)
{
    struct node *n = arg;
    uint64_t now = cellar_mono_ms();
    if (n->last_extend_ms == 0 || now - n->last_extend_ms >= START_EXTEND_EVERY_MS) {
        sd_notifyf(0, "STATUS=opening partition %zu/%zu\nEXTEND_TIMEOUT_USEC=%llu", done, total,
                   (unsigned long long)START_EXTEND_US);
        n->last_extend_ms = now;
    } else {
        sd_notifyf(0, "STATUS=opening partition %zu/%zu", done, total);
    }
}

/* Reads the config: defaults, then the file, then the command line. */
static int read_config(const struct node *n, struct svc_config *cfg, char *err, size_t errlen)
{
    char msg[600];
    svc_config_defaults(cfg);
    if (n->config_path && svc_config_load(cfg, n->config_path, err, errlen) < 0)
        return -CELLAR_EINVAL;
    if (n->cli_listen && svc_config_set(cfg, "listen", n->cli_listen, msg, sizeof(msg)) < 0) {
        snprintf(err, errlen, "--%s", msg);
        return -CELLAR_EINVAL;
    }
    if (n->cli_data_dir && svc_config_set(cfg, "data_dir", n->cli_data_dir, msg, sizeof(msg)) < 0) {
        snprintf(err, errlen, "--%s", msg);
        return -CELLAR_EINVAL;
    }
    const struct {
        const char *value, *key, *flag;
    } flags[] = {
        {n->cli_meta, "meta_servers", "meta"},
        {n->cli_advertise, "advertise", "advertise"},
        {n->cli_secret, "cluster_secret_file", "cluster-secret-file"},
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (flags[i].value &&
            svc_config_set(cfg, flags[i].key, flags[i].value, msg, sizeof(msg)) < 0) {
            snprintf(err, errlen, "--%s: %s", flags[i].flag, msg);
            return -CELLAR_EINVAL;
        }
    }
    if (n->cli_insecure)
        cfg->api.insecure = true;
    if (repl_cluster_enabled(&cfg->cluster) &&
        (cfg->api.tls_cert_file[0] || cfg->api.tls_key_file[0])) {
        snprintf(err, errlen,
                 "tls_cert_file is set with meta_servers: nodes of a cluster speak "
                 "plain HTTP to each other in this version; run the cluster without "
                 "HTTPS, on a network you trust");
        return -CELLAR_EINVAL;
    }
    return repl_cluster_config_check(&cfg->cluster, cfg->api.listen_host, cfg->api.listen_port,
                                     cfg->api.cluster_secret_file[0] != '\0', err, errlen);
}

/* --hash-token: the tokens file's hash column for the token on stdin. */
static int hash_token(void)
{
    char line[4096];
    size_t len = fread(line, 1, sizeof(line), stdin);
    const char *nl = memchr(line, '\n', len);
    if (nl)
        len = (size_t)(nl - line);
    if (len && line[len - 1] == '\r')
        len--;
    if (len == 0 || (!nl && len == sizeof(line))) {
        fprintf(stderr, "cellard --hash-token: expected one token (1..4095 bytes) on stdin\n");
        return 2;
    }
    char hex[65];
    api_sha256_hex(line, len, hex);
    printf("%s\n", hex);
    return 0;
}

static int parse_args(int argc, char **argv, struct node *n)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"insecure", no_argument, NULL, 'i'},
        {"hash-token", no_argument, NULL, 't'},
        {"meta", required_argument, NULL, 'm'},
        {"advertise", required_argument, NULL, 'a'},
        {"cluster-secret-file", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0; /* our own one-line messages instead of getopt's */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            n->cli_listen = optarg;
            break;
        case 'd':
            n->cli_data_dir = optarg;
            break;
        case 'c':
            n->config_path = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("cellard %s\n", CELLAR_VERSION);
            exit(0);
        case 'i':
            n->cli_insecure = true;
            break;
        case 'm':
            n->cli_meta = optarg;
            break;
        case 'a':
            n->cli_advertise = optarg;
            break;
        case 's':
            n->cli_secret = optarg;
            break;
        case 't':
            exit(hash_token());
        default:
            fail_start(EINVAL, "bad command line option \"%s\" (see cellard --help)",
                       argv[optind - 1]);
            return -CELLAR_EINVAL;
        }
    }
    if (optind < argc) {
        fail_start(EINVAL, "unexpected argument \"%s\" (see cellard --help)", argv[optind]);
        return -CELLAR_EINVAL;
    }
    char err[700];
    if (read_config(n, &n->cfg, err, sizeof(err)) < 0) {
        fail_start(EINVAL, "%s", err);
        return -CELLAR_EINVAL;
    }
    return 0;
}

/* Socket activation: the one listening socket systemd passes, if any. 0
 * (cfg.api.listen_fd set or left -1) or a negative code after fail_start. */
static int take_listen_socket(struct node *n)
{
    int fds = sd_listen_fds(1);
    if (fds == 0)
        return 0;
    if (fds < 0) {
        fail_start(-fds, "cannot read the sockets passed by systemd: %s", strerror(-fds));
        return -CELLAR_ESYS;
    }
    if (fds > 1) {
        fail_start(EINVAL, "systemd passed %d sockets; cellard takes exactly one", fds);
        return -CELLAR_EINVAL;
    }
    int r = sd_is_socket_inet(SD_LISTEN_FDS_START, AF_UNSPEC, SOCK_STREAM, 1, 0);
    if (r <= 0) {
        fail_start(r < 0 ? -r : ENOTSOCK,
                   "the socket passed by systemd is not a listening TCP socket");
        return -CELLAR_EINVAL;
    }
    n->cfg.api.listen_fd = SD_LISTEN_FDS_START;
    log_info("socket activation: serving on the socket passed by systemd (fd %d); listen = "
             "%s:%u is not used",
             SD_LISTEN_FDS_START, n->cfg.api.listen_host, n->cfg.api.listen_port);
    return 0;
}

/* STATUS= while serving, sent when it changes. */
static void refresh_status(struct node *n)
{
    struct repl_registry_stats st;
    repl_registry_stats(n->registry, &st);
    char status[sizeof(n->status)];
    snprintf(status, sizeof(status), "serving %zu tables, %zu partitions", st.tables,
             st.partitions);
    if (strcmp(status, n->status) == 0)
        return;
    snprintf(n->status, sizeof(n->status), "%s", status);
    sd_notifyf(0, "STATUS=%s", n->status);
}

/* --- Cluster ------------------------------------------------------------- */

/* The forwarder and, on a meta server, the meta role. 0, or a negative
 * code after fail_start. */
static int start_cluster(struct node *n)
{
    const struct repl_cluster_config *c = &n->cfg.cluster;
    int e = repl_forwarder_start(&n->peer, n->registry, &n->forwarder);
    if (e < 0) {
        fail_start(errno_of(e), "cannot start the forwarder: %s", cellar_strerror(e));
        return e;
    }
    if (c->role_meta) {
        struct repl_meta_config mc = {
            .fd_beacon_ms = c->fd_beacon_ms,
            .fd_grace_ms = c->fd_grace_ms,
            .replace_after_ms = c->replica_replace_after_s * 1000,
            .balance_moves_max = c->balance_moves_max,
            .drop_retention_ms = n->cfg.registry.drop_retention_ms,
            .default_partition_count = n->cfg.registry.default_partition_count,
            .default_replica_count = n->cfg.registry.default_replica_count,
            .peer = &n->peer,
            .local = n->registry,
        };
        snprintf(mc.self, sizeof(mc.self), "%s", c->advertise);
        char dir[4200];
        snprintf(dir, sizeof(dir), "%s/meta", n->cfg.data_dir);
        e = repl_meta_open(dir, &mc, &n->meta);
        if (e < 0) {
            fail_start(errno_of(e), "cannot open the cluster's metadata in %s: %s", dir,
                       cellar_strerror(e));
            return e;
        }
    }
    if (c->role_data)
        n->learning = repl_learning_new(n->registry, &n->peer);
    n->cluster_api = (struct api_cluster){c, n->meta, n->forwarder, n->learning, n->prepares};
    log_info("cluster: this node is %s (roles:%s%s), meta %s", c->advertise,
             c->role_meta ? " meta" : "", c->role_data ? " data" : "", c->meta_servers[0]);
    return 0;
}

/* --- Reload (SIGHUP) ---------------------------------------------------- */

struct reload_ctx {
    unsigned applied;
    unsigned deferred;
};

static void on_changed_key(void *arg, const char *key)
{
    struct reload_ctx *c = arg;
    if (svc_config_key_reloadable(key)) {
        log_info("reload: %s changed", key);
        c->applied++;
    } else {
        log_warn("reload: %s changed in the file; it takes effect at the next start", key);
        c->deferred++;
    }
}

static void reload(struct node *n)
{
    sd_notifyf(0, "RELOADING=1\nSTATUS=reloading %s", n->config_path ? n->config_path : "");
    if (!n->config_path) {
        log_notice("SIGHUP: no --config file, nothing to reload");
        n->status[0] = '\0';
        sd_notify(0, "READY=1");
        refresh_status(n);
        return;
    }
    struct svc_config next;
    char err[700];
    if (read_config(n, &next, err, sizeof(err)) < 0) {
        log_err("reload failed, the running configuration stays: %s", err);
        n->status[0] = '\0';
        sd_notifyf(0, "READY=1\nSTATUS=reload failed (%s); serving with the previous settings",
                   err);
        return;
    }
    struct reload_ctx ctx = {0};
    svc_config_foreach_change(&n->cfg, &next, on_changed_key, &ctx);

    /* The reloadable keys, in place: the server reads its limits from
     * n->cfg.api. The access files and the certificate are read again. */
    svc_config_apply_reloadable(&n->cfg, &next);
    cellar_log_set_level(n->cfg.log_level);
    if (api_server_reload(n->server, err, sizeof(err)) < 0)
        log_err("reload: %s; the previous access tokens and certificate stay in force", err);

    log_notice("reloaded %s: %u settings applied, %u need a restart", n->config_path, ctx.applied,
               ctx.deferred);
    n->status[0] = '\0';
    sd_notify(0, "READY=1");
    refresh_status(n);
}

/* --- Main loop ---------------------------------------------------------- */

/* Serves until SIGTERM/SIGINT; returns the signal. */
static int main_loop(struct node *n, const sigset_t *sigs)
{
    uint64_t next_purge = cellar_mono_ms() + n->cfg.purge_interval_ms;
    for (;;) {
        uint64_t wait = svc_watchdog_tick(n->watchdog);
        uint64_t now = cellar_mono_ms();
        if (now >= next_purge) {
            if (n->meta)
                repl_meta_purge_expired(n->meta, cellar_now_ms());
            else if (!repl_registry_member(n->registry))
                repl_registry_purge_expired(n->registry, cellar_now_ms());
            now = cellar_mono_ms();
            next_purge = now + n->cfg.purge_interval_ms;
            wait = svc_watchdog_tick(n->watchdog); /* a purge can take a while */
        }
        if (next_purge - now < wait)
            wait = next_purge - now;
        if (wait > LOOP_MAX_WAIT_MS)
            wait = LOOP_MAX_WAIT_MS;
        struct timespec ts = {(time_t)(wait / 1000u), (long)(wait % 1000u) * 1000000L};
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
        if (sig == SIGHUP) {
            log_notice("SIGHUP: reloading");
            reload(n);
            next_purge = cellar_mono_ms() + n->cfg.purge_interval_ms;
        }
        refresh_status(n);
    }
}

int main(int argc, char **argv)
{
    struct node n = {0};
    int rc = 0;
    if (parse_args(argc, argv, &n) < 0)
        return 2;
    cellar_log_set_level(n.cfg.log_level);

    /* Every thread inherits this mask; only the main loop takes signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    json_object_seed(0);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: it is not thread-safe */

    log_info("cellard %s starting, data in %s", CELLAR_VERSION, n.cfg.data_dir);
    n.watchdog_us = svc_watchdog_interval_us();
    if (n.watchdog_us) {
        /* Writers must beat well within the interval, even when idle. */
        n.cfg.registry.writer.heartbeat_ms = svc_watchdog_heartbeat_ms(n.watchdog_us);
    }
    if (n.cfg.registry.writer.test_wedge_after_ms)
        log_warn("test_wedge_writer_after_s = %llu: every writer will wedge that long after it "
                 "starts. This setting exists for tests only.",
                 (unsigned long long)(n.cfg.registry.writer.test_wedge_after_ms / 1000));
    if (take_listen_socket(&n) < 0) {
        rc = 1;
        goto out;
    }
    char why[1024];
    if (api_config_check(&n.cfg.api, why, sizeof(why)) < 0) {
        fail_start(EINVAL, "%s", why);
        rc = 2;
        goto out;
    }
    if (make_dirs(n.cfg.data_dir) < 0) {
        int e = errno;
        fail_start(e, "cannot create data directory %s: %s", n.cfg.data_dir, strerror(e));
        rc = 1;
        goto out;
    }
    sd_notifyf(0, "STATUS=opening the storage engine\nEXTEND_TIMEOUT_USEC=%llu",
               (unsigned long long)START_EXTEND_US);
    n.last_extend_ms = cellar_mono_ms();
    int e = store_engine_new(&n.cfg.engine, &n.engine);
    if (e < 0) {
        fail_start(errno_of(e), "cannot start the storage engine: %s", cellar_strerror(e));
        rc = 1;
        goto out;
    }
    if (repl_cluster_enabled(&n.cfg.cluster) &&
        repl_peer_config_init(&n.peer, n.cfg.api.cluster_secret_file, n.cfg.cluster.advertise, why,
                              sizeof(why)) < 0) {
        fail_start(EINVAL, "%s", why);
        rc = 2;
        goto out;
    }
    if (repl_cluster_enabled(&n.cfg.cluster)) {
        snprintf(n.cfg.registry.self, sizeof(n.cfg.registry.self), "%s", n.cfg.cluster.advertise);
        snprintf(n.peer.meta, sizeof(n.peer.meta), "%s", n.cfg.cluster.meta_servers[0]);
        struct repl_group_config *g = &n.cfg.registry.group;
        g->peer = &n.peer;
        snprintf(g->self, sizeof(g->self), "%s", n.cfg.cluster.advertise);
        g->prepare_timeout_ms = n.cfg.cluster.prepare_timeout_ms;
        g->gather_us = n.cfg.cluster.prepare_gather_us;
        g->beacon_ms = n.cfg.cluster.fd_beacon_ms;
        g->lease_ms = n.cfg.cluster.fd_lease_ms;
        g->grace_ms = n.cfg.cluster.fd_grace_ms;
        g->prepares = n.prepares = repl_peer_figures_new();
    }
    e = repl_registry_open(n.engine, n.cfg.data_dir, &n.cfg.registry, on_progress, &n, &n.registry);
    if (e < 0) {
        fail_start(errno_of(e), "cannot open the tables in %s: %s", n.cfg.data_dir,
                   cellar_strerror(e));
        rc = 1;
        goto out;
    }
    if (repl_cluster_enabled(&n.cfg.cluster) && start_cluster(&n) < 0) {
        rc = 1;
        goto out;
    }
    sd_notify(0, "STATUS=starting the HTTP server");
    errno = 0;
    e = api_server_start(&n.cfg.api, n.registry, n.cluster_api.cfg ? &n.cluster_api : NULL,
                         &n.server);
    if (e < 0) {
        int err = errno ? errno : EADDRINUSE;
        if (n.cfg.api.listen_fd >= 0)
            fail_start(err, "cannot serve on the socket passed by systemd");
        else
            fail_start(err, "cannot listen on %s:%u: %s", n.cfg.api.listen_host,
                       n.cfg.api.listen_port, strerror(err));
        rc = 1;
        goto out;
    }
    if (repl_cluster_enabled(&n.cfg.cluster) &&
        (e = repl_member_start(&n.cfg.cluster, &n.peer, n.registry, &n.member)) < 0) {
        fail_start(errno_of(e), "cannot start beaconing to meta: %s", cellar_strerror(e));
        rc = 1;
        goto out;
    }
    api_server_set_member(n.server, n.member);
    svc_watchdog_new(n.watchdog_us, n.server, n.cfg.api.connection_limit, n.registry, &n.watchdog);
    api_server_set_ready(n.server, true);
    struct repl_registry_stats st;
    repl_registry_stats(n.registry, &st);
    snprintf(n.status, sizeof(n.status), "serving %zu tables, %zu partitions", st.tables,
             st.partitions);
    /* The log says the port before the manager hears READY: whoever waits
     * for READY finds it there. */
    log_notice("serving %zu tables, %zu partitions on port %u", st.tables, st.partitions,
               api_server_port(n.server));
    sd_notifyf(0, "READY=1\nSTATUS=%s", n.status);

    int sig = main_loop(&n, &sigs);

    unsigned inflight = api_server_inflight(n.server);
    log_notice("%s: stopping, %u requests in flight", sig == SIGINT ? "SIGINT" : "SIGTERM",
               inflight);
    sd_notifyf(0, "STOPPING=1\nSTATUS=stopping: draining %u requests\nEXTEND_TIMEOUT_USEC=%llu",
               inflight,
               (unsigned long long)(n.cfg.shutdown_timeout_ms * 1000u + STOP_CLOSE_MARGIN_US));
    api_server_shutdown(n.server, n.cfg.shutdown_timeout_ms);
    sd_notify(0, "STATUS=stopping: closing partitions");
out:
    /* Writers drain inside registry close and the forwarder ends what it
     * relays, resuming their connections, which MHD (still running)
     * answers; only then does HTTP stop. */
    repl_member_stop(n.member);
    repl_forwarder_stop(n.forwarder);
    repl_meta_close(n.meta);
    repl_learning_free(n.learning);
    repl_registry_close(n.registry);
    api_server_stop(n.server);
    repl_peer_figures_free(n.prepares);
    store_engine_free(n.engine);
    svc_watchdog_free(n.watchdog);
    if (rc == 0) {
        log_notice("stopped cleanly");
        sd_notify(0, "STATUS=stopped cleanly");
    }
    return rc;
}

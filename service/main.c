/*
 * main.c - the cellard process: command line, configuration, start-up,
 * the main loop (signals and timers) and the orderly stop.
 *
 * Start: read the config, block the signals every thread inherits, create
 * the data directory, the storage engine, the registry (which opens every
 * partition), then the HTTP server; READY=1 to systemd once serving.
 * Stop (SIGTERM or SIGINT): STOPPING=1, /readyz 503, stop accepting, wait
 * (bounded) for requests in flight, close the registry (each writer drains
 * its queue, so every accepted write commits and is answered), stop HTTP,
 * free the engine, exit 0.
 *
 * Threads: this file runs on the main thread only. It owns the server
 * struct (`struct node`) and passes pieces down; there is no global state.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "api/server.h"
#include "replication/registry.h"
#include "service/config.h"
#include "storage/engine.h"

struct node {
    struct svc_config cfg;
    struct store_engine *engine;
    struct repl_registry *registry;
    struct api_server *server;
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: cellard [--listen HOST:PORT] [--data-dir DIR] [--config FILE]\n"
                 "       cellard --help | --version\n"
                 "\n"
                 "Cellar node: a key-value store with tables, rows and sorted cells,\n"
                 "served over HTTP/JSON.\n"
                 "\n"
                 "  --listen HOST:PORT  address to serve on (default 127.0.0.1:8080)\n"
                 "  --data-dir DIR      where data lives (default ./data)\n"
                 "  --config FILE       a config file of key = value lines (see README.md);\n"
                 "                      --listen and --data-dir override it\n"
                 "  --help              this text\n"
                 "  --version           the version\n");
}

/* mkdir -p */
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
    return 0;
}

static void on_progress(void *arg, size_t done, size_t total)
{
    sd_notifyf(0, "STATUS=opening partition %zu/%zu", done, total);
}

static int parse_args(int argc, char **argv, struct svc_config *cfg)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'}, {"data-dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
    };
    const char *listen = NULL, *data_dir = NULL, *config = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            listen = optarg;
            break;
        case 'd':
            data_dir = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("cellard %s\n", CELLAR_VERSION);
            exit(0);
        default:
            usage(stderr);
            return -CELLAR_EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cellard: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return -CELLAR_EINVAL;
    }
    char err[600];
    if (config && svc_config_load(cfg, config, err, sizeof(err)) < 0) {
        fprintf(stderr, "cellard: %s\n", err);
        return -CELLAR_EINVAL;
    }
    if (listen && svc_config_set(cfg, "listen", listen, err, sizeof(err)) < 0) {
        fprintf(stderr, "cellard: --%s\n", err);
        return -CELLAR_EINVAL;
    }
    if (data_dir && svc_config_set(cfg, "data_dir", data_dir, err, sizeof(err)) < 0) {
        fprintf(stderr, "cellard: --%s\n", err);
        return -CELLAR_EINVAL;
    }
    return 0;
}

/* Waits for SIGTERM/SIGINT, purging expired dropped tables on the way. */
static void main_loop(struct node *n, const sigset_t *sigs)
{
    uint64_t next_purge = cellar_mono_ms() + n->cfg.purge_interval_ms;
    for (;;) {
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            log_notice("signal %d: stopping", sig);
            return;
        }
        if (sig == SIGHUP)
            log_info("SIGHUP: nothing to reload yet");
        if (cellar_mono_ms() >= next_purge) {
            repl_registry_purge_expired(n->registry, cellar_now_ms());
            next_purge = cellar_mono_ms() + n->cfg.purge_interval_ms;
        }
    }
}

int main(int argc, char **argv)
{
    struct node n = {0};
    int rc = 0;
    svc_config_defaults(&n.cfg);
    if (parse_args(argc, argv, &n.cfg) < 0)
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

    if (make_dirs(n.cfg.data_dir) < 0) {
        log_err("cannot create data directory %s: %s", n.cfg.data_dir, strerror(errno));
        rc = 1;
        goto out;
    }
    log_info("cellard %s starting, data in %s", CELLAR_VERSION, n.cfg.data_dir);
    sd_notify(0, "STATUS=opening the storage engine");
    if (store_engine_new(&n.cfg.engine, &n.engine) < 0) {
        rc = 1;
        goto out;
    }
    int e = repl_registry_open(n.engine, n.cfg.data_dir, &n.cfg.registry, on_progress, NULL,
                               &n.registry);
    if (e < 0) {
        log_err("cannot open the tables in %s: %s", n.cfg.data_dir, cellar_strerror(e));
        sd_notifyf(0, "STATUS=cannot open the tables: %s", cellar_strerror(e));
        rc = 1;
        goto out;
    }
    int sd_fds = sd_listen_fds(1);
    if (sd_fds > 0)
        n.cfg.api.listen_fd = SD_LISTEN_FDS_START;
    if (api_server_start(&n.cfg.api, n.registry, &n.server) < 0) {
        sd_notify(0, "STATUS=cannot listen");
        rc = 1;
        goto out;
    }
    api_server_set_ready(n.server, true);
    struct repl_registry_stats st;
    repl_registry_stats(n.registry, &st);
    sd_notifyf(0, "READY=1\nSTATUS=serving %zu tables, %zu partitions", st.tables, st.partitions);
    log_notice("serving %zu tables, %zu partitions on port %u", st.tables, st.partitions,
               api_server_port(n.server));

    main_loop(&n, &sigs);

    sd_notify(0, "STOPPING=1\nSTATUS=draining");
    api_server_shutdown(n.server, n.cfg.shutdown_timeout_ms);
out:
    /* Writers drain inside registry close and resume their connections,
     * which MHD (still running) answers; only then does HTTP stop. */
    repl_registry_close(n.registry);
    api_server_stop(n.server);
    store_engine_free(n.engine);
    if (rc == 0)
        log_notice("stopped cleanly");
    return rc;
}

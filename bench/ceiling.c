/*
 * ceiling.c - the benchmark's reference server: libmicrohttpd answering
 * every request with one fixed small JSON body, keep-alive, nothing else.
 * It is the ceiling for any libmicrohttpd service on the machine, so
 * bench/run divides each workload's rate by its rate.
 *
 * It runs the daemon the way cellard does (internal polling thread, epoll,
 * suspend/resume allowed, a pool of THREADS workers, 0 = one per CPU) and
 * follows the access handler protocol of c-craft.md B.3: the first call
 * only marks the request, the reply is queued on the next one, so the
 * connection stays alive.
 *
 * Usage: ceiling PORT [THREADS [MEMORY]]: MEMORY is the per-connection
 * memory (MHD_OPTION_CONNECTION_MEMORY_LIMIT, default MHD's 32 KiB), which
 * libmicrohttpd zeroes for every request, so bench/run gives it cellard's
 * default. Binds 127.0.0.1 only; stops on SIGTERM
 * or SIGINT. Threads: MHD's workers run on_access; the main thread waits
 * for the signal.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char body[] = "{\"hashkey\":\"r00042\",\"sortkey\":\"c07\",\"etag\":\"42\"}";

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    static int marker;
    struct MHD_Response *resp = cls;
    if (*con_cls == NULL) {
        *con_cls = &marker; /* first call: answering now would cost keep-alive */
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* bodies are read and dropped */
        return MHD_YES;
    }
    return MHD_queue_response(conn, MHD_HTTP_OK, resp);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ceiling PORT [THREADS]\n");
        return 2;
    }
    unsigned port = (unsigned)strtoul(argv[1], NULL, 10);
    unsigned threads = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 0;
    size_t memory = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 32 * 1024;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* MHD's threads inherit the mask */

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &addr},
        {MHD_OPTION_CONNECTION_TIMEOUT, 60, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, 1024, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)memory, NULL},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                                                MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
                                            (uint16_t)port, NULL, NULL, on_access, resp,
                                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "ceiling: cannot listen on 127.0.0.1:%u\n", port);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(resp);
    return 0;
}

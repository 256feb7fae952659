/*
 * watchdog.c - earned WATCHDOG=1 pings (watchdog.h): the writer heartbeat
 * check and the HTTP self-probe.
 *
 * Timing: a ping is due every interval/2 (sd_watchdog_enabled(3)
 * recommends half). The check runs when a ping is due; if it passes the
 * ping goes out, if not the next check is one period later, so a node that
 * stays unhealthy for a whole interval misses every ping in it and systemd
 * acts. The probe's timeout is a quarter of the interval (at most 2 s), so
 * a check always ends well before the next ping is due.
 *
 * The probe: a non-blocking TCP connect to the listening socket's own
 * address (a wildcard address is replaced by loopback), one "GET /healthz"
 * with "Connection: close", and a read of the status line; any answer but
 * 200 within the timeout fails it. It uses the node's real accept path and
 * MHD workers, so it proves what a client would see. When the node serves
 * HTTPS the probe goes through libcurl instead (a TLS handshake, then the
 * same request; the node's own certificate is not verified: it is the
 * node talking to itself over loopback).
 *
 * Threads: main thread only.
 */
#include "service/watchdog.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define PROBE_TIMEOUT_MAX_MS 2000u

struct svc_watchdog {
    uint64_t interval_ms;
    uint64_t period_ms; /* between pings: interval / 2 */
    uint64_t probe_timeout_ms;
    uint64_t next_ms;          /* cellar_mono_ms() when the next ping is due */
    struct api_server *srv;    /* borrowed */
    struct repl_registry *reg; /* borrowed */
    unsigned connection_limit;
    struct sockaddr_storage addr; /* where the probe connects */
    socklen_t addr_len;           /* 0: no address (the probe is skipped) */
    bool failing;                 /* the last check failed (log transitions only) */
    char last_reason[256];
};

uint64_t svc_watchdog_interval_us(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0)
        return 0;
    return usec;
}

uint64_t svc_watchdog_heartbeat_ms(uint64_t interval_us)
{
    uint64_t ms = interval_us / 1000u / 4u;
    if (ms < 50)
        ms = 50;
    if (ms > 1000)
        ms = 1000;
    return ms;
}

/* The address the probe connects to: the listening socket's own, with a
 * wildcard address replaced by loopback. */
static void probe_address(struct svc_watchdog *wd)
{
    int fd = api_server_listen_fd(wd->srv);
    socklen_t len = sizeof(wd->addr);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&wd->addr, &len) != 0) {
        log_warn("watchdog: cannot find the listening address (%s); HTTP probe off",
                 fd < 0 ? "no socket" : strerror(errno));
        return;
    }
    if (wd->addr.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&wd->addr;
        if (in->sin_addr.s_addr == htonl(INADDR_ANY))
            in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (wd->addr.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&wd->addr;
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
            in6->sin6_addr = in6addr_loopback;
    } else {
        log_warn("watchdog: the listening socket is not TCP/IP; HTTP probe off");
        return;
    }
    wd->addr_len = len;
}

int svc_watchdog_new(uint64_t interval_us, struct api_server *srv, unsigned connection_limit,
                     struct repl_registry *reg, struct svc_watchdog **out)
{
    *out = NULL;
    if (interval_us == 0)
        return 0;
    struct svc_watchdog *wd = cellar_xcalloc(1, sizeof(*wd));
    wd->interval_ms = interval_us / 1000u;
    if (wd->interval_ms < 2)
        wd->interval_ms = 2;
    wd->period_ms = wd->interval_ms / 2;
    wd->probe_timeout_ms = wd->interval_ms / 4;
    if (wd->probe_timeout_ms > PROBE_TIMEOUT_MAX_MS)
        wd->probe_timeout_ms = PROBE_TIMEOUT_MAX_MS;
    if (wd->probe_timeout_ms == 0)
        wd->probe_timeout_ms = 1;
    wd->srv = srv;
    wd->reg = reg;
    wd->connection_limit = connection_limit;
    probe_address(wd);
    wd->next_ms = cellar_mono_ms(); /* the first ping goes out at once */
    log_info("watchdog: interval %llu ms, ping every %llu ms when writers and HTTP are alive",
             (unsigned long long)wd->interval_ms, (unsigned long long)wd->period_ms);
    *out = wd;
    return 0;
}

void svc_watchdog_free(struct svc_watchdog *wd)
{
    free(wd);
}

/* Waits until fd is ready for events or the deadline passes. 0, or
 * -CELLAR_EBUSY on timeout, -CELLAR_ESYS on error. */
static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = cellar_mono_ms();
        if (now >= deadline_ms)
            return -CELLAR_EBUSY;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(deadline_ms - now));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -CELLAR_ESYS;
    }
}

/* libcurl write callback: the probe needs the status only. */
static size_t discard_body(char *data, size_t size, size_t nmemb, void *arg)
{
    return size * nmemb;
}

/* The HTTPS form of probe_http(), through libcurl. */
static int probe_https(struct svc_watchdog *wd, char *why, size_t whylen)
{
    char host[INET6_ADDRSTRLEN] = "";
    unsigned port = 0;
    if (wd->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&wd->addr;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&wd->addr;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    }
    char url[128];
    snprintf(url, sizeof(url),
             wd->addr.ss_family == AF_INET6 ? "https://[%s]:%u/healthz" : "https://%s:%u/healthz",
             host, port);
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, whylen, "HTTPS probe: cannot create a curl handle");
        return -CELLAR_ENOMEM;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)wd->probe_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* this node itself, whatever https_proxy says */
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    int rc = 0;
    CURLcode res = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (res != CURLE_OK) {
        snprintf(why, whylen, "HTTPS probe: %s", curl_easy_strerror(res));
        rc = -CELLAR_EIO;
    } else if (status != 200) {
        snprintf(why, whylen, "HTTPS probe: GET /healthz answered %ld", status);
        rc = -CELLAR_EIO;
    }
    curl_easy_cleanup(c);
    return rc;
}

/* GET /healthz on the node's own socket. 0 when answered 200 in time;
 * otherwise a negative code and a reason in why. */
static int probe_http(struct svc_watchdog *wd, char *why, size_t whylen)
{
    if (api_server_tls(wd->srv))
        return probe_https(wd, why, whylen);
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: cellard-watchdog\r\n"
                              "Connection: close\r\n\r\n";
    uint64_t deadline = cellar_mono_ms() + wd->probe_timeout_ms;
    int rc = 0;
    int fd = socket(wd->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "HTTP probe: socket: %s", strerror(errno));
        return -CELLAR_ESYS;
    }
    if (connect(fd, (struct sockaddr *)&wd->addr, wd->addr_len) != 0 && errno != EINPROGRESS) {
        snprintf(why, whylen, "HTTP probe: connect: %s", strerror(errno));
        rc = -CELLAR_ESYS;
        goto out;
    }
    rc = wait_fd(fd, POLLOUT, deadline);
    int soerr = 0;
    socklen_t slen = sizeof(soerr);
    if (rc == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0 || soerr != 0)) {
        snprintf(why, whylen, "HTTP probe: connect: %s", strerror(soerr ? soerr : errno));
        rc = -CELLAR_ESYS;
        goto out;
    }
    if (rc < 0) {
        snprintf(why, whylen, "HTTP probe: no connection within %llu ms",
                 (unsigned long long)wd->probe_timeout_ms);
        goto out;
    }
    if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1)) {
        snprintf(why, whylen, "HTTP probe: send: %s", strerror(errno));
        rc = -CELLAR_ESYS;
        goto out;
    }
    /* The status line: "HTTP/1.1 200 OK". 12 bytes decide. */
    char buf[64];
    size_t got = 0;
    while (got < 12) {
        rc = wait_fd(fd, POLLIN, deadline);
        if (rc < 0) {
            snprintf(why, whylen, "HTTP probe: no answer to GET /healthz within %llu ms",
                     (unsigned long long)wd->probe_timeout_ms);
            goto out;
        }
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            snprintf(why, whylen, "HTTP probe: connection closed before an answer");
            rc = -CELLAR_ESYS;
            goto out;
        }
        if (n > 0)
            got += (size_t)n;
    }
    buf[got] = '\0';
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0 && strncmp(buf, "HTTP/1.0 200", 12) != 0) {
        char *eol = strpbrk(buf, "\r\n");
        if (eol)
            *eol = '\0';
        snprintf(why, whylen, "HTTP probe: GET /healthz answered \"%s\"", buf);
        rc = -CELLAR_EIO;
    }
out:
    close(fd);
    return rc;
}

/* The liveness check. true when the node may ping; otherwise why says
 * what is wrong. */
static bool healthy(struct svc_watchdog *wd, char *why, size_t whylen)
{
    char name[64] = "";
    uint64_t silent = 0;
    if (!repl_registry_writers_alive(wd->reg, wd->interval_ms, name, sizeof(name), &silent)) {
        snprintf(why, whylen, "writer %s has not beaten for %llu ms", name,
                 (unsigned long long)silent);
        return false;
    }
    if (wd->addr_len == 0)
        return true;
    if (probe_http(wd, why, whylen) == 0)
        return true;
    unsigned conns = api_server_connections(wd->srv);
    if (conns >= wd->connection_limit) {
        /* Busy, not wedged: see "Known gap" in watchdog.h. */
        log_debug("watchdog: %s, but %u connections are open (the limit): not held against "
                  "the node",
                  why, conns);
        return true;
    }
    return false;
}

uint64_t svc_watchdog_tick(struct svc_watchdog *wd)
{
    if (!wd)
        return UINT64_MAX;
    uint64_t now = cellar_mono_ms();
    if (now < wd->next_ms)
        return wd->next_ms - now;
    char why[256] = "";
    if (healthy(wd, why, sizeof(why))) {
        sd_notify(0, "WATCHDOG=1");
        if (wd->failing)
            log_notice("watchdog: healthy again, pinging (was: %s)", wd->last_reason);
        wd->failing = false;
    } else if (!wd->failing) {
        log_err("watchdog: not pinging systemd: %s", why);
        snprintf(wd->last_reason, sizeof(wd->last_reason), "%s", why);
        wd->failing = true;
    }
    /* Keep the cadence; after a long check, start from now. */
    wd->next_ms += wd->period_ms;
    now = cellar_mono_ms();
    if (wd->next_ms <= now)
        wd->next_ms = now + wd->period_ms;
    return wd->next_ms - now;
}

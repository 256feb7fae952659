/*
 * peer.c - blocking node-to-node calls (peer.h), with libcurl's easy
 * interface.
 *
 * Threads: callers that may block; nothing shared but the configuration.
 */
#include "replication/peer.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int repl_peer_config_init(struct repl_peer_config *pc, const char *secret_file,
                          const char *advertise, char *err, size_t errlen)
{
    memset(pc, 0, sizeof(*pc));
    FILE *f = fopen(secret_file, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", secret_file, strerror(errno));
        return -CELLAR_EINVAL;
    }
    size_t len = fread(pc->secret, 1, sizeof(pc->secret) - 1, f);
    fclose(f);
    while (len && (pc->secret[len - 1] == '\n' || pc->secret[len - 1] == '\r'))
        len--;
    pc->secret[len] = '\0';
    if (len < 16 || memchr(pc->secret, '\0', len)) {
        snprintf(err, errlen, "%s: the cluster secret must be at least 16 bytes of text",
                 secret_file);
        return -CELLAR_EINVAL;
    }
    /* The host part of host:port, without brackets. */
    const char *colon = strrchr(advertise, ':');
    size_t hlen = colon ? (size_t)(colon - advertise) : strlen(advertise);
    const char *host = advertise;
    if (hlen >= 2 && host[0] == '[') {
        host++;
        hlen -= 2;
    }
    if (hlen >= sizeof(pc->bind_host))
        hlen = sizeof(pc->bind_host) - 1;
    memcpy(pc->bind_host, host, hlen);
    pc->bind_host[hlen] = '\0';
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    cellar_buf_append(arg, data, size * n);
    return size * n;
}

int repl_peer_post(const struct repl_peer_config *pc, const char *addr, const char *path,
                   const char *body, size_t len, uint64_t timeout_ms, long *status,
                   struct cellar_buf *reply)
{
    CURL *c = curl_easy_init();
    if (!c)
        return -CELLAR_ENOMEM;
    char url[REPL_ADDR_MAX + 256];
    snprintf(url, sizeof(url), "http://%s%s", addr, path);
    char auth[REPL_SECRET_MAX + 32];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", pc->secret);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
    char iface[REPL_ADDR_MAX + 8];
    if (pc->bind_host[0]) {
        snprintf(iface, sizeof(iface), "host!%s", pc->bind_host);
        curl_easy_setopt(c, CURLOPT_INTERFACE, iface);
    }
    CURLcode cc = curl_easy_perform(c);
    int rc = 0;
    if (cc != CURLE_OK) {
        log_debug("peer %s%s: %s", addr, path, curl_easy_strerror(cc));
        rc = -CELLAR_EUNAVAIL;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc;
}

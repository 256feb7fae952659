/*
 * auth.c - tokens, roles, table lists and the cluster secret (auth.h).
 *
 * Hashing is GnuTLS's SHA-256 (the library libmicrohttpd already uses for
 * HTTPS). Comparison never stops early: every stored hash is compared in
 * full, and the match is selected with a mask, not a branch.
 *
 * Threads: loading runs on the main thread; lookups run on MHD workers over
 * an immutable api_auth.
 */
#include "api/auth.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "common/cellar.h"
#include "replication/registry.h"

#define HASH_LEN 32
#define NAME_MAX_LEN 64

struct api_token {
    char name[NAME_MAX_LEN + 1];
    enum api_role role;
    uint8_t hash[HASH_LEN];
    char **tables; /* NULL: every table */
    size_t n_tables;
};

struct api_auth {
    struct api_token *tokens;
    size_t n_tokens;
    bool has_secret;
    uint8_t secret_hash[HASH_LEN];
    /* The files' contents, hashed, for api_auth_same(). */
    uint8_t tokens_digest[HASH_LEN];
    uint8_t secret_digest[HASH_LEN];
};

static void sha256(const void *data, size_t len, uint8_t out[HASH_LEN])
{
    int rc = gnutls_hash_fast(GNUTLS_DIG_SHA256, data, len, out);
    CELLAR_ASSERT(rc == 0);
}

void api_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t h[HASH_LEN];
    sha256(data, len, h);
    for (size_t i = 0; i < HASH_LEN; i++) {
        out[2 * i] = hex[h[i] >> 4];
        out[2 * i + 1] = hex[h[i] & 15];
    }
    out[64] = '\0';
}

/* 0 when a and b are equal; time depends on the length only. */
static unsigned ct_differs(const uint8_t *a, const uint8_t *b, size_t n)
{
    unsigned diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(a[i] ^ b[i]);
    return diff;
}

/* --- Loading ------------------------------------------------------------ */

/* Reads a whole (small) file. 0, or -CELLAR_EINVAL with err set. */
static int read_file(const char *path, struct cellar_buf *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -CELLAR_EINVAL;
    }
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (out->len + n > (1u << 20)) {
            fclose(f);
            snprintf(err, errlen, "%s: larger than 1 MiB", path);
            return -CELLAR_EINVAL;
        }
        cellar_buf_append(out, chunk, n);
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        snprintf(err, errlen, "%s: read error", path);
        return -CELLAR_EINVAL;
    }
    return 0;
}

/* Splits line (NUL-terminated, modified) into at most max fields separated
 * by blanks; returns how many, or max + 1 when there are more. */
static size_t split_fields(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            return n;
        if (n == max)
            return max + 1;
        fields[n++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (*p)
            *p++ = '\0';
    }
}

static void token_fini(struct api_token *t)
{
    for (size_t i = 0; i < t->n_tables; i++)
        free(t->tables[i]);
    free(t->tables);
}

static int parse_tables(struct api_token *t, const char *list, char *msg, size_t msglen)
{
    if (strcmp(list, "*") == 0)
        return 0;
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len > REPL_TABLE_NAME_MAX) {
            snprintf(msg, msglen, "a table name in \"%s\" is empty or longer than %d bytes", list,
                     REPL_TABLE_NAME_MAX);
            return -CELLAR_EINVAL;
        }
        t->tables = cellar_xrealloc(t->tables, (t->n_tables + 1) * sizeof(*t->tables));
        char *name = cellar_xmalloc(len + 1);
        memcpy(name, p, len);
        name[len] = '\0';
        t->tables[t->n_tables++] = name;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* One "NAME ROLE SHA256 [TABLES]" line into t. */
static int parse_token_line(char *line, struct api_token *t, char *msg, size_t msglen)
{
    char *f[5];
    size_t n = split_fields(line, f, 4);
    if (n < 3 || n > 4) {
        snprintf(msg, msglen, "expected NAME ROLE SHA256 [TABLES]");
        return -CELLAR_EINVAL;
    }
    size_t name_len = strlen(f[0]);
    if (name_len > NAME_MAX_LEN) {
        snprintf(msg, msglen, "the name is longer than %d bytes", NAME_MAX_LEN);
        return -CELLAR_EINVAL;
    }
    memcpy(t->name, f[0], name_len + 1);
    if (strcmp(f[1], "read") == 0) {
        t->role = API_ROLE_READ;
    } else if (strcmp(f[1], "write") == 0) {
        t->role = API_ROLE_WRITE;
    } else if (strcmp(f[1], "admin") == 0) {
        t->role = API_ROLE_ADMIN;
    } else {
        snprintf(msg, msglen, "role \"%s\" is not read, write or admin", f[1]);
        return -CELLAR_EINVAL;
    }
    if (strlen(f[2]) != 2 * HASH_LEN) {
        snprintf(msg, msglen,
                 "the hash must be 64 hex digits (the SHA-256 of the token: "
                 "cellard --hash-token < tokenfile, or sha256sum)");
        return -CELLAR_EINVAL;
    }
    for (size_t i = 0; i < HASH_LEN; i++) {
        int hi = api_hex_value(f[2][2 * i]), lo = api_hex_value(f[2][2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(msg, msglen, "the hash must be 64 hex digits");
            return -CELLAR_EINVAL;
        }
        t->hash[i] = (uint8_t)(hi << 4 | lo);
    }
    return n == 4 ? parse_tables(t, f[3], msg, msglen) : 0;
}

static int load_tokens(struct api_auth *a, const char *path, char *err, size_t errlen)
{
    struct cellar_buf file = {0};
    int rc = read_file(path, &file, err, errlen);
    if (rc < 0)
        goto out;
    sha256(file.data, file.len, a->tokens_digest);
    cellar_buf_append(&file, "", 1); /* NUL-terminate */
    unsigned lineno = 0;
    for (char *line = file.data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[len - 1] = '\0';
        if (line[strspn(line, " \t")] != '\0') {
            struct api_token t = {0};
            char msg[256];
            rc = parse_token_line(line, &t, msg, sizeof(msg));
            for (size_t i = 0; rc == 0 && i < a->n_tokens; i++) {
                if (strcmp(a->tokens[i].name, t.name) == 0) {
                    snprintf(msg, sizeof(msg), "the name \"%s\" is used twice", t.name);
                    rc = -CELLAR_EINVAL;
                } else if (memcmp(a->tokens[i].hash, t.hash, HASH_LEN) == 0) {
                    snprintf(msg, sizeof(msg), "the same token hash appears twice");
                    rc = -CELLAR_EINVAL;
                }
            }
            if (rc < 0) {
                token_fini(&t);
                snprintf(err, errlen, "%s:%u: %s", path, lineno, msg);
                goto out;
            }
            a->tokens = cellar_xrealloc(a->tokens, (a->n_tokens + 1) * sizeof(*a->tokens));
            a->tokens[a->n_tokens++] = t;
        }
        line = nl ? nl + 1 : NULL;
    }
    if (a->n_tokens == 0) {
        snprintf(err, errlen, "%s: no tokens (a tokens file must list at least one)", path);
        rc = -CELLAR_EINVAL;
    }
out:
    cellar_buf_fini(&file);
    return rc;
}

static int load_secret(struct api_auth *a, const char *path, char *err, size_t errlen)
{
    struct cellar_buf file = {0};
    int rc = read_file(path, &file, err, errlen);
    if (rc < 0)
        goto out;
    sha256(file.data, file.len, a->secret_digest);
    size_t len = file.len;
    while (len && (file.data[len - 1] == '\n' || file.data[len - 1] == '\r'))
        len--;
    if (len < 16) {
        snprintf(err, errlen, "%s: the cluster secret must be at least 16 bytes", path);
        rc = -CELLAR_EINVAL;
        goto out;
    }
    sha256(file.data, len, a->secret_hash);
    a->has_secret = true;
out:
    cellar_buf_fini(&file);
    return rc;
}

int api_auth_load(const char *tokens_file, const char *secret_file, struct api_auth **out,
                  char *err, size_t errlen)
{
    struct api_auth *a = cellar_xcalloc(1, sizeof(*a));
    int rc = 0;
    if (tokens_file && *tokens_file && (rc = load_tokens(a, tokens_file, err, errlen)) < 0)
        goto out;
    if (secret_file && *secret_file && (rc = load_secret(a, secret_file, err, errlen)) < 0)
        goto out;
out:
    if (rc < 0) {
        api_auth_free(a);
        a = NULL;
    }
    *out = a;
    return rc;
}

void api_auth_free(struct api_auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_tokens; i++)
        token_fini(&a->tokens[i]);
    free(a->tokens);
    free(a);
}

bool api_auth_same(const struct api_auth *a, const struct api_auth *b)
{
    return a->n_tokens == b->n_tokens && a->has_secret == b->has_secret &&
           memcmp(a->tokens_digest, b->tokens_digest, HASH_LEN) == 0 &&
           memcmp(a->secret_digest, b->secret_digest, HASH_LEN) == 0;
}

size_t api_auth_token_count(const struct api_auth *a)
{
    return a->n_tokens;
}

bool api_auth_has_secret(const struct api_auth *a)
{
    return a->has_secret;
}

/* --- Lookups ------------------------------------------------------------ */

const struct api_token *api_auth_find(const struct api_auth *a, const char *token, size_t len)
{
    uint8_t h[HASH_LEN];
    sha256(token, len, h);
    uintptr_t found = 0;
    for (size_t i = 0; i < a->n_tokens; i++) {
        /* mask is all ones when equal, zero otherwise: no branch on it. */
        uintptr_t mask =
            (uintptr_t)0 - (uintptr_t)(ct_differs(h, a->tokens[i].hash, HASH_LEN) == 0);
        found |= mask & (uintptr_t)&a->tokens[i];
    }
    return (const struct api_token *)found;
}

bool api_auth_is_secret(const struct api_auth *a, const char *token, size_t len)
{
    uint8_t h[HASH_LEN];
    sha256(token, len, h);
    return a->has_secret && ct_differs(h, a->secret_hash, HASH_LEN) == 0;
}

const char *api_token_name(const struct api_token *t)
{
    return t->name;
}

enum api_role api_token_role(const struct api_token *t)
{
    return t->role;
}

bool api_token_allows_table(const struct api_token *t, const char *name, size_t len)
{
    if (!t->tables)
        return true;
    for (size_t i = 0; i < t->n_tables; i++) {
        if (strlen(t->tables[i]) == len && memcmp(t->tables[i], name, len) == 0)
            return true;
    }
    return false;
}

bool api_addr_is_loopback(const struct sockaddr *sa)
{
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a6))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127;
    }
    return false;
}

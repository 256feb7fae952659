/*
 * auth.h - who may do what: bearer tokens with roles and table lists, the
 * loopback-only default when no tokens are configured, and the cluster
 * secret that alone opens /internal/.
 *
 * The tokens file holds one token per line, "NAME ROLE SHA256 [TABLES]":
 * a name for logs, a role (read, write or admin), the SHA-256 of the token
 * in hex (the token itself is never stored), and optionally a
 * comma-separated list of the tables the token may touch ("*" or nothing:
 * every table). '#' starts a comment. The cluster secret file holds the
 * secret itself (node-to-node calls must present it); only its hash is kept
 * in memory.
 *
 * A presented token is hashed and compared with every stored hash in
 * constant time, so neither timing nor the position of a match tells an
 * attacker anything about the stored tokens.
 *
 * Threads: an api_auth is immutable once loaded. The server loads one at
 * start and on every reload that finds the files changed, and keeps every
 * generation until it stops (reloads are rare and operator-driven), so a
 * request may hold a token pointer for its whole life without a lock.
 */
#ifndef API_AUTH_H
#define API_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum api_role {
    API_ROLE_READ = 1,
    API_ROLE_WRITE = 2,
    API_ROLE_ADMIN = 3,
};

/* What a route needs. */
enum api_perm {
    API_PERM_PUBLIC = 0, /* health, the console's pages, the API document, preflight */
    API_PERM_METRICS,    /* any valid token when metrics_auth is on, else public */
    API_PERM_READYZ,     /* any valid token when readyz_auth is on, else public */
    API_PERM_READ,
    API_PERM_WRITE,
    API_PERM_ADMIN,
    API_PERM_INTERNAL, /* the cluster secret, never a client token */
};

struct api_token;
struct api_auth;

/* Loads the tokens file and the cluster secret file; either path may be
 * empty (none). On error returns -CELLAR_EINVAL with a message naming the
 * file and line in err. *out is owned by the caller (api_auth_free). */
int api_auth_load(const char *tokens_file, const char *secret_file, struct api_auth **out,
                  char *err, size_t errlen);
void api_auth_free(struct api_auth *a);

/* Whether a's files hold exactly the same content as b's (a reload that
 * changes nothing keeps the running generation). */
bool api_auth_same(const struct api_auth *a, const struct api_auth *b);

size_t api_auth_token_count(const struct api_auth *a);
bool api_auth_has_secret(const struct api_auth *a);

/* The token whose hash matches, or NULL. Constant time in the token's
 * content. The pointer lives as long as a. */
const struct api_token *api_auth_find(const struct api_auth *a, const char *token, size_t len);

/* Whether token is the cluster secret (constant time). */
bool api_auth_is_secret(const struct api_auth *a, const char *token, size_t len);

const char *api_token_name(const struct api_token *t);
enum api_role api_token_role(const struct api_token *t);
/* Whether t may touch table name[0..len). */
bool api_token_allows_table(const struct api_token *t, const char *name, size_t len);

/* Whether the address is a loopback one (127.0.0.0/8, ::1, or
 * ::ffff:127.0.0.0/104). */
bool api_addr_is_loopback(const struct sockaddr *sa);

/* SHA-256 of data, as 64 lowercase hex digits and a NUL. */
void api_sha256_hex(const void *data, size_t len, char out[65]);

#endif

/*
 * access.c - who may do what: the bearer token of a request checked against
 * the access files (auth.h) for the permission a route needs, the cluster
 * secret for /internal/, and the loopback-only rule of a node without
 * tokens. A request another node relays (X-Cellar-Forwarded, with the
 * cluster secret as its token) was authorized at the node the client
 * reached. A refusal replies 401 (with WWW-Authenticate) or 403.
 *
 * Threads: MHD workers. The access generation in force is an atomic
 * pointer, swapped by a reload (server.c).
 */
#include <string.h>
#include <strings.h>

#include "api/internal.h"

static bool peer_is_loopback(struct api_request *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return ci && api_addr_is_loopback(ci->client_addr);
}

/* The credentials of "Authorization: Bearer <token>", or false. */
static bool bearer_token(struct api_request *req, struct api_bytes *out)
{
    const char *h = api_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    size_t len = strlen(h);
    while (len && h[len - 1] == ' ')
        len--;
    out->data = h;
    out->len = len;
    return len > 0;
}

static void reply_unauthorized(struct api_request *req, const char *challenge, const char *detail)
{
    struct MHD_Response *resp = api_problem_response(req, 401, "UNAUTHORIZED", detail);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
    api_reply_response(req, 401, resp);
}

static const char *role_name(enum api_role r)
{
    return r == API_ROLE_ADMIN ? "admin" : r == API_ROLE_WRITE ? "write" : "read";
}

bool api_authorize(struct api_request *req, enum api_perm perm, const struct api_bytes *table)
{
    struct api_server *s = req->srv;
    if (perm == API_PERM_PUBLIC)
        return true;
    const struct api_auth *auth = __atomic_load_n(&s->auth, __ATOMIC_ACQUIRE);
    if (req->envelope) {
        /* It came in an envelope, which the cluster secret opened: like a
         * request relayed alone. Internal endpoints are not relayed. */
        if (perm == API_PERM_INTERNAL) {
            api_reply_problem(req, 403, "FORBIDDEN", "internal endpoints are not relayed");
            return false;
        }
        req->forwarded = true;
        return true;
    }
    struct api_bytes tok = {NULL, 0};
    bool presented = bearer_token(req, &tok);
    if (presented && api_header(req, "X-Cellar-Forwarded") &&
        api_auth_is_secret(auth, tok.data, tok.len)) {
        /* Another node relays a client's request: that node checked the
         * client's token; the secret vouches for the node. */
        req->forwarded = true;
        return true;
    }
    if (perm == API_PERM_INTERNAL) {
        if (!api_auth_has_secret(auth)) {
            api_reply_problem(req, 403, "FORBIDDEN",
                              "no cluster secret is configured: internal endpoints are closed");
            return false;
        }
        if (presented && api_auth_is_secret(auth, tok.data, tok.len))
            return true;
        reply_unauthorized(req, "Bearer realm=\"cellar-internal\"",
                           "internal endpoints accept only the cluster secret");
        return false;
    }
    if (api_auth_token_count(auth) == 0) {
        if (s->cfg->insecure || peer_is_loopback(req))
            return true;
        api_reply_problem(req, 403, "FORBIDDEN",
                          "this node has no access tokens configured and serves loopback "
                          "clients only");
        return false;
    }
    if ((perm == API_PERM_METRICS && !s->cfg->metrics_auth) ||
        (perm == API_PERM_READYZ && !s->cfg->readyz_auth))
        return true;
    if (!presented) {
        reply_unauthorized(req, "Bearer realm=\"cellar\"",
                           "this node needs a token: send Authorization: Bearer <token>");
        return false;
    }
    const struct api_token *t = api_auth_find(auth, tok.data, tok.len);
    if (!t) {
        reply_unauthorized(req, "Bearer realm=\"cellar\", error=\"invalid_token\"",
                           "the bearer token is not valid");
        return false;
    }
    req->token = t;
    enum api_role need = perm == API_PERM_ADMIN   ? API_ROLE_ADMIN
                         : perm == API_PERM_WRITE ? API_ROLE_WRITE
                                                  : API_ROLE_READ;
    if (api_token_role(t) < need) {
        api_reply_problem(req, 403, "FORBIDDEN", "token \"%s\" has the role %s; this needs %s",
                          api_token_name(t), role_name(api_token_role(t)), role_name(need));
        return false;
    }
    if (table && !api_token_allows_table(t, table->data, table->len)) {
        api_reply_problem(req, 403, "FORBIDDEN", "token \"%s\" may not use table \"%.*s\"",
                          api_token_name(t), (int)table->len, table->data);
        return false;
    }
    return true;
}

bool api_table_visible(struct api_request *req, const char *name, size_t len)
{
    return !req->token || api_token_allows_table(req->token, name, len);
}

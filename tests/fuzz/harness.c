/*
 * harness.c - the fuzz targets' stand-in for a libmicrohttpd connection and
 * their request helpers (see fuzz.h for why the MHD functions defined here
 * replace the library's).
 *
 * Threads: one (the fuzzing or replaying thread).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tests/fuzz/fuzz.h"

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: property failed: %s\n", file, line, what);
    abort();
}

char *fuzz_strndup(const uint8_t *data, size_t len)
{
    char *s = cellar_xmalloc(len + 1);
    if (len)
        memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

struct api_server *fuzz_server(void)
{
    static struct api_server *srv;
    if (!srv) {
        struct api_config cfg;
        api_config_defaults(&cfg);
        cellar_log_set_level(CELLAR_LOG_ERR);
        srv = api_server_new_offline(&cfg, NULL);
    }
    return srv;
}

void fuzz_req_init(struct fuzz_req *f, enum api_method method, const char *url)
{
    memset(f, 0, sizeof(*f));
    f->req.srv = fuzz_server();
    f->req.conn = &f->conn;
    f->req.method = method;
    f->req.method_name = "FUZZ";
    f->req.url = cellar_xstrdup(url);
    f->req.route = -1;
}

static void kv_free(struct fuzz_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
}

void fuzz_req_fini(struct fuzz_req *f)
{
    struct api_request *req = &f->req;
    api_request_fini(req);
    free((char *)req->url);
    kv_free(f->conn.headers, f->conn.n_headers);
    kv_free(f->conn.args, f->conn.n_args);
}

void fuzz_add_header(struct fuzz_req *f, const char *key, const char *value)
{
    if (f->conn.n_headers == FUZZ_MAX_KV)
        return;
    struct fuzz_kv *kv = &f->conn.headers[f->conn.n_headers++];
    kv->key = cellar_xstrdup(key);
    kv->value = cellar_xstrdup(value);
}

void fuzz_add_arg(struct fuzz_req *f, const char *key, size_t klen, const char *value, size_t vlen,
                  bool has_value)
{
    if (f->conn.n_args == FUZZ_MAX_KV)
        return;
    struct fuzz_kv *kv = &f->conn.args[f->conn.n_args++];
    kv->key = fuzz_strndup((const uint8_t *)key, klen);
    kv->value = has_value ? fuzz_strndup((const uint8_t *)value, vlen) : NULL;
}

void fuzz_parse_query(struct fuzz_req *f, const char *q, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && q[end] != '&')
            end++;
        if (end > i) {
            const char *eq = memchr(q + i, '=', end - i);
            if (eq)
                fuzz_add_arg(f, q + i, (size_t)(eq - (q + i)), eq + 1, (size_t)(q + end - eq - 1),
                             true);
            else
                fuzz_add_arg(f, q + i, end - i, NULL, 0, false);
        }
        i = end + 1;
    }
}

int fuzz_ref_pct_decode(const char *in, size_t len, char *out, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            out[o++] = in[i];
            continue;
        }
        if (len - i < 3 || !isxdigit((unsigned char)in[i + 1]) ||
            !isxdigit((unsigned char)in[i + 2]))
            return -1;
        char hex[3] = {in[i + 1], in[i + 2], '\0'};
        out[o++] = (char)strtol(hex, NULL, 16);
        i += 2;
    }
    *out_len = o;
    return 0;
}

/* --- The stand-in connection ---------------------------------------------- */

static const struct fuzz_kv *find(struct MHD_Connection *c, enum MHD_ValueKind kind,
                                  const char *key, size_t klen)
{
    if (kind & MHD_HEADER_KIND) {
        for (size_t i = 0; i < c->n_headers; i++)
            if (strlen(c->headers[i].key) == klen && strncasecmp(c->headers[i].key, key, klen) == 0)
                return &c->headers[i];
    }
    if (kind & MHD_GET_ARGUMENT_KIND) {
        for (size_t i = 0; i < c->n_args; i++)
            if (strlen(c->args[i].key) == klen && memcmp(c->args[i].key, key, klen) == 0)
                return &c->args[i];
    }
    return NULL;
}

const char *MHD_lookup_connection_value(struct MHD_Connection *c, enum MHD_ValueKind kind,
                                        const char *key)
{
    const struct fuzz_kv *kv = find(c, kind, key, strlen(key));
    return kv ? kv->value : NULL;
}

enum MHD_Result MHD_lookup_connection_value_n(struct MHD_Connection *c, enum MHD_ValueKind kind,
                                              const char *key, size_t key_size,
                                              const char **value_ptr, size_t *value_size_ptr)
{
    const struct fuzz_kv *kv = find(c, kind, key, key_size);
    if (!kv)
        return MHD_NO;
    if (value_ptr)
        *value_ptr = kv->value;
    if (value_size_ptr)
        *value_size_ptr = kv->value ? strlen(kv->value) : 0;
    return MHD_YES;
}

int MHD_get_connection_values(struct MHD_Connection *c, enum MHD_ValueKind kind,
                              MHD_KeyValueIterator iterator, void *iterator_cls)
{
    int n = 0;
    if (kind & MHD_HEADER_KIND) {
        for (size_t i = 0; i < c->n_headers; i++, n++)
            if (iterator && iterator(iterator_cls, MHD_HEADER_KIND, c->headers[i].key,
                                     c->headers[i].value) != MHD_YES)
                return n + 1;
    }
    if (kind & MHD_GET_ARGUMENT_KIND) {
        for (size_t i = 0; i < c->n_args; i++, n++)
            if (iterator && iterator(iterator_cls, MHD_GET_ARGUMENT_KIND, c->args[i].key,
                                     c->args[i].value) != MHD_YES)
                return n + 1;
    }
    return n;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *c, unsigned int status_code,
                                   struct MHD_Response *response)
{
    c->replies++;
    c->last_status = status_code;
    return MHD_YES;
}

void MHD_suspend_connection(struct MHD_Connection *c)
{
    fuzz_fail(__FILE__, __LINE__, "a parser suspended the connection");
}

void MHD_resume_connection(struct MHD_Connection *c)
{
    fuzz_fail(__FILE__, __LINE__, "a parser resumed the connection");
}

/*
 * internal.h - what the API layer's files share: the request context, the
 * route table, and the reply and defer helpers handlers use. Not for other
 * layers.
 *
 * A handler runs on an MHD worker once the whole request is read. It either
 * replies at once (api_reply_*) or defers: api_defer_write() suspends the
 * connection and queues a mutation on a partition writer, api_defer_admin()
 * suspends it and queues a blocking admin call on the admin thread. Either
 * way the `complete` function runs later on the MHD worker, after resume,
 * and must reply. Exactly one reply per request.
 *
 * Ownership: everything a request allocates hangs off its api_request and
 * is freed in the completion notification, never in a handler.
 */
#ifndef API_INTERNAL_H
#define API_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>

#include "api/server.h"
#include "replication/registry.h"
#include "storage/mutation.h"

enum api_method {
    API_GET = 1 << 0,
    API_HEAD = 1 << 1,
    API_PUT = 1 << 2,
    API_POST = 1 << 3,
    API_DELETE = 1 << 4,
    API_PATCH = 1 << 5,
    API_OPTIONS = 1 << 6,
};

#define API_MAX_SEGMENTS 8

/* A decoded path segment (or query value): owned by the request. */
struct api_bytes {
    const char *data;
    size_t len;
};

enum api_req_state {
    API_REQ_NEW = 0,  /* reading headers and body */
    API_REQ_WAITING,  /* suspended: a writer or the admin thread has it */
    API_REQ_RESUMED,  /* the deferred work is done; complete() replies */
    API_REQ_ANSWERED, /* a response was queued */
};

struct api_request;
typedef void (*api_handler_fn)(struct api_request *req);

struct api_request {
    struct api_server *srv;
    struct MHD_Connection *conn;
    enum api_method method;
    const char *method_name;
    const char *url; /* raw path, borrowed from MHD for the request's life */
    struct api_bytes segs[API_MAX_SEGMENTS];
    size_t n_segs;
    bool key_base64url; /* ?key_encoding=base64url */

    struct cellar_buf body;
    bool body_too_large;

    int state;               /* enum api_req_state; atomic across writer/admin threads */
    api_handler_fn complete; /* after resume */
    api_handler_fn admin;    /* on the admin thread */
    struct api_request *admin_next;

    /* Result of deferred work. */
    int status;                   /* 0 or -CELLAR_E* */
    struct store_outcome outcome; /* copied from the writer */
    struct repl_table_meta table; /* admin results */
    char name_arg[REPL_TABLE_NAME_MAX + 1];
    char name_arg2[REPL_TABLE_NAME_MAX + 1];
    struct repl_table_spec spec;
    bool flag_arg;

    void **allocs; /* api_alloc'ed blocks */
    size_t n_allocs;
    uint64_t start_us;
};

/* Per-request allocation, freed with the request. Never returns NULL. */
void *api_alloc(struct api_request *req, size_t n);

/* The registry the server serves. */
struct repl_registry *api_registry(struct api_request *req);
const struct api_config *api_config(struct api_request *req);

/* Replies. Each queues exactly one response; later replies are ignored with
 * a log line (a bug). json is stolen. */
void api_reply_json(struct api_request *req, unsigned status, json_t *json);
void api_reply_empty(struct api_request *req, unsigned status);
void api_reply_response(struct api_request *req, unsigned status, struct MHD_Response *resp);
void api_reply_problem(struct api_request *req, unsigned status, const char *code, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
/* A problem+json response, for callers that add headers before replying. */
struct MHD_Response *api_problem_response(struct api_request *req, unsigned status,
                                          const char *code, const char *detail);
/* Maps a -CELLAR_E* code to its status and problem code. */
void api_reply_error(struct api_request *req, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Deferral. The request must not be touched by the caller after these
 * return, except to return from the handler. */
void api_defer_write(struct api_request *req, struct repl_writer *w, struct store_mutation *m,
                     api_handler_fn complete);
void api_defer_admin(struct api_request *req, api_handler_fn admin, api_handler_fn complete);

/* Query parameters, percent-decoded (and base64url-decoded for key
 * parameters when ?key_encoding=base64url). Returns 1 and sets *out when
 * present, 0 when absent, -CELLAR_EINVAL when malformed. */
int api_query(struct api_request *req, const char *name, struct api_bytes *out);
/* Boolean query parameter: "true"/"false" (absent: def). */
int api_query_bool(struct api_request *req, const char *name, bool def, bool *out);
/* Integer query parameter within [min, max] (absent: def). */
int api_query_i64(struct api_request *req, const char *name, int64_t def, int64_t min, int64_t max,
                  int64_t *out);

/* A request header, or NULL. */
const char *api_header(struct api_request *req, const char *name);

/* Path key segment i decoded per key_encoding. -CELLAR_EINVAL when bad. */
int api_path_key(struct api_request *req, size_t i, struct api_bytes *out);

/* Codecs (codec.c). */
int api_pct_decode(const char *in, size_t len, char *out, size_t *out_len);
size_t api_base64_encoded_len(size_t len);
size_t api_base64_encode(const void *in, size_t len, char *out, bool url); /* no NUL */
int api_base64_decode(const char *in, size_t len, char *out, size_t *out_len, bool url);
bool api_utf8_valid(const char *s, size_t len);
/* Sets obj[name] (or obj[name_base64]) to the bytes: plain when valid UTF-8
 * and not force_base64. */
void api_json_set_bytes(json_t *obj, const char *name, const void *data, size_t len,
                        bool force_base64);

/* Handlers (handlers_*.c). */
void api_h_healthz(struct api_request *req);
void api_h_readyz(struct api_request *req);
void api_h_openapi(struct api_request *req);
void api_h_tables_list(struct api_request *req);
void api_h_table_get(struct api_request *req);
void api_h_table_put(struct api_request *req);
void api_h_table_delete(struct api_request *req);
void api_h_table_recall(struct api_request *req);
void api_h_cell_get(struct api_request *req);
void api_h_cell_put(struct api_request *req);
void api_h_cell_delete(struct api_request *req);

/* Route the request: fills nothing, replies 404/405 or calls a handler. */
void api_route(struct api_request *req);

/* Whether the server is ready (readyz). */
bool api_ready(struct api_request *req);

/* The JSON form of a table's metadata. */
json_t *api_table_json(const struct repl_table_meta *m);

#endif

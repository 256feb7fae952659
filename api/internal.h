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
#include <pthread.h>

#include "api/auth.h"
#include "api/server.h"
#include "replication/registry.h"
#include "storage/mutation.h"

/* The server every request belongs to: the daemon and its lifecycle
 * (server.c), the admin queue (defer.c), the access and HTTPS generations
 * (access.c, server.c). */

struct api_server {
    struct MHD_Daemon *daemon;
    /* Borrowed from the caller for the server's life (the offline server's
     * points at own_cfg); its reloadable fields change under the workers,
     * one atomic store each (svc_config_apply_reloadable). */
    const struct api_config *cfg;
    struct api_config own_cfg;
    struct api_cluster cluster; /* all NULL for a cluster of one */
    struct repl_member *member; /* atomic: set once it beacons (api_server_set_member) */
    struct repl_registry *reg;
    int ready;         /* atomic bool */
    int stopping;      /* atomic bool: new requests get 503 */
    unsigned inflight; /* atomic: requests between first call and completion */
    uint16_t port;
    struct api_metrics *metrics;

    pthread_t admin_thread;
    bool admin_started;
    pthread_mutex_t admin_lock; /* guards admin_head/tail/len/stop */
    pthread_cond_t admin_cond;
    struct api_request *admin_head, *admin_tail;
    uint64_t admin_len;
    bool admin_stop;

    /* Access and HTTPS: the generation in force (atomic pointers, read by
     * workers) and every earlier one, kept until stop (auth.h, tls.h). */
    struct api_auth *auth;
    struct api_auth **auth_gens;
    size_t n_auth_gens;
    struct api_tls *tls;
    struct api_tls **tls_gens;
    size_t n_tls_gens;

    struct api_deadlines *deadlines; /* request and idle time limits */
};

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
/* The table's name in /v1/tables/{table}/...: segment 2. */
#define API_SEG_TABLE 2

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

/* What became of one deferred mutation. */
struct api_write_result {
    int status;                   /* 0, or why it was not committed */
    struct store_outcome outcome; /* valid when status == 0 */
    uint64_t taken_us;            /* the writer took its group (cellar_mono_us) */
    uint64_t committed_us;        /* the group's commit returned */
};

/* A table admin call's arguments and result: kept out of api_request,
 * which every request allocates, because the envs make them large. */
struct api_admin_args {
    struct repl_table_meta table; /* admin results */
    char name_arg[REPL_TABLE_NAME_MAX + 1];
    char name_arg2[REPL_TABLE_NAME_MAX + 1];
    struct repl_table_spec spec;
};

struct api_request {
    struct api_server *srv;
    struct MHD_Connection *conn;
    enum api_method method;
    const char *method_name;
    const char *url; /* raw path, borrowed from MHD for the request's life */
    struct api_bytes segs[API_MAX_SEGMENTS];
    size_t n_segs;
    bool key_base64url;           /* ?key_encoding=base64url */
    bool forwarded;               /* another node of the cluster sent it (X-Cellar-Forwarded) */
    struct repl_forward *forward; /* while relayed to another node (forward.c) */
    uint64_t hold_until_ms;       /* waiting for a primary: until then (cellar_mono_ms) */
    int map_retries;              /* relays retried after a newer map */
    uint64_t relayed_on_map;      /* the map version its last relay was routed on */
    bool map_newer;               /* what the wait for a map came to */
    struct repl_forward **subs;   /* a request fanned out to several nodes */
    size_t n_subs;
    size_t fanout_pending; /* atomic: the last answered sub-request resumes */

    struct cellar_buf body;
    bool body_too_large;

    int state;               /* enum api_req_state; atomic across writer/admin threads */
    bool deferred;           /* the handler or completion running now handed the request on
                                (the worker's own: read once it returns, whatever the state,
                                which another thread may already have moved on) */
    api_handler_fn complete; /* after resume */
    api_handler_fn admin;    /* on the admin thread */
    struct api_request *admin_next;

    /* Results of deferred writes, one per mutation, in submission order. */
    struct api_write_result *writes;
    size_t n_writes;
    size_t writes_pending;      /* atomic: the last writer callback resumes */
    api_handler_fn writes_done; /* the handler's completion, once they are back */
    int write_reroutes;         /* routed again: none of its writes went out */

    /* Result of deferred admin work. */
    int status;                 /* 0 or -CELLAR_E* */
    struct api_admin_args *adm; /* table admin calls only (handlers_tables.c) */
    bool flag_arg;
    bool force_b64; /* ?encoding=base64, for completions that build JSON */

    void *scratch; /* a handler's own state for its completion (api_alloc'ed) */
    json_t *held;  /* a document a handler builds across hops: freed with the request */

    void **allocs; /* api_alloc'ed blocks */
    size_t n_allocs;
    uint64_t start_us;
    unsigned http_status;          /* of the reply, for metrics */
    int route;                     /* index in the route table, -1 when none matched */
    const struct api_token *token; /* the bearer token that authorized it, or NULL */

    /* Phases, cellar_mono_us(), for the slow request log (0: not reached). */
    uint64_t dispatch_us; /* the whole request was read; the handler runs */
    uint64_t deferred_us; /* handed to writers or the admin thread */
    uint64_t resumed_us;  /* the completion runs */
    uint64_t answered_us; /* a response was queued */
    int64_t partition;    /* the row's partition, -1 when none or several */

    /* Requests that came in an envelope (relay.c): each has no connection
     * of its own; envelope is the POST /internal/v1/relay that carried
     * it, relayed its headers, query and captured answer. The envelope's
     * own request keeps them in relay. */
    struct api_request *envelope;
    struct api_relayed *relayed;
    struct api_relay *relay;
};

/* A request that came in an envelope: what MHD keeps for a request with a
 * connection, and its answer as the envelope carries it back (relay.c). */
struct api_relayed {
    char **header_names, **header_values; /* n_headers each (api_alloc'ed) */
    size_t n_headers;
    char **query_names, **query_values; /* n_query each; a value is NULL for "?name" */
    size_t n_query;
    struct cellar_buf head; /* the answer's header lines, "Name: value\r\n" each */
    struct cellar_buf body; /* the answer's body */
};

/* The envelope's own request: the requests it carries. pending counts one
 * for each of them handed on (suspended) and not yet resumed, plus one
 * while the envelope's worker is running them: the last to end resumes
 * the envelope (relay.c, defer.c). */
struct api_relay {
    struct api_request **subs;
    size_t n_subs;
    size_t pending; /* atomic */
};

/* The request's Origin when cors_origins allows it, else NULL (request.c). */
const char *api_cors_origin(struct api_request *req);

/* Hands the request on: suspends its connection, with complete to run
 * once api_resume is called (by whatever thread does the work; publish
 * the work only after this). The caller must not touch the request after
 * publishing it (defer.c). */
void api_suspend(struct api_request *req, api_handler_fn complete);

/* Marks a waiting request's deferred work done and resumes its connection:
 * MHD then runs req->complete on the connection's worker (defer.c). Any
 * thread, once per deferral. */
void api_resume(struct api_request *req);

/* Relays the request as it came to the node at addr (forward.c): the
 * connection is suspended, and the peer's answer (status, headers such as
 * ETag, Location, Retry-After and Content-Type, and body) is the reply.
 * A peer that was not reached is 503 with unreached_code (NO_PRIMARY,
 * META_UNAVAILABLE) and Retry-After; one that failed after it had the
 * request is 504 OUTCOME_UNKNOWN for a write (its fate is unknown: never
 * retried blindly), 503 for a read. Nothing may be held. */
void api_forward_to(struct api_request *req, const char *addr, const char *unreached_code,
                    uint64_t timeout_ms);
/* api_forward_to for a request about partition part of the table its path
 * names, sent to that partition's primary addr (NO_PRIMARY, within
 * forward_wait_ms). Should this node's map name another primary, or none,
 * while it is out, it is not waited for: a read, or a write that surely
 * did not leave, is routed again on the newer map; a write that left is
 * 504 OUTCOME_UNKNOWN. */
void api_forward_to_primary(struct api_request *req, const char *addr, uint32_t part);

/* Routes the request again as if it had just come (a relay it made is
 * dropped first). */
void api_route_again(struct api_request *req);
/* How long a relayed table change may take: opening or closing a table's
 * every replica on every node. */
#define API_TABLE_CHANGE_TIMEOUT_MS 300000

/* Holds the request until this node has a map newer than version seen
 * (a primary appeared, or a stale map was replaced: at once when that
 * happened already), then routes it again; after forward_wait_ms since
 * its first hold, 503 NO_PRIMARY with Retry-After (data.c). Nothing may
 * be held. */
void api_hold_for_map(struct api_request *req, uint64_t seen);

/* Holds the request until this node's map is at least version (or
 * forward_wait_ms passes), then calls then: a table change relayed to the
 * meta server is answered once it is in force here, so that the client's
 * next request to this node sees it (data.c). Nothing may be held. */
void api_wait_map_version(struct api_request *req, uint64_t version, api_handler_fn then);

/* The header with which the meta server's answers to relayed requests
 * carry its map version (never relayed to clients). */
#define API_MAP_VERSION_HEADER "X-Cellar-Map-Version"

/* The request's path and query as the client sent them (malloc'ed); the
 * _with form leaves out the query parameters named in drop (NULL-ended)
 * and appends extra ("name=value&...", already encoded). */
char *api_request_target(struct api_request *req);
char *api_request_target_with(struct api_request *req, const char *const *drop, const char *extra);

/* Fan-out (forward.c): a request about partitions on several nodes is sent
 * as one sub-request per node, concurrently, and merged into one answer.
 * api_sub_new makes a sub-request of the request's method to addr with
 * target (taken) and a JSON body (borrowed until the request ends);
 * api_fanout sends the n subs (the array api_alloc'ed, the subs freed with
 * the request) and runs merge once every one is answered. In merge,
 * api_sub_failed replies for a sub that did not answer 200 (503 when not
 * reached or a read went unanswered, 504 OUTCOME_UNKNOWN for a write, else
 * the node's own problem) and returns true. */
struct repl_forward *api_sub_new(struct api_request *req, const char *addr, char *target,
                                 const char *body, size_t len);
void api_fanout(struct api_request *req, struct repl_forward **subs, size_t n,
                api_handler_fn merge);
bool api_sub_failed(struct api_request *req, const struct repl_forward *f);

/* The admin thread (defer.c): started with the server, stopped (after the
 * calls already queued) at shutdown. api_admin_start: 0 or -CELLAR_ESYS. */
int api_admin_start(struct api_server *s);
void api_admin_stop(struct api_server *s);

/* Whether the request may use a route that needs perm (on table, when the
 * route names one). When not, it has replied 401 or 403 (access.c). */
bool api_authorize(struct api_request *req, enum api_perm perm, const struct api_bytes *table);

/* Whether the request's token may see the table (true without tokens). */
bool api_table_visible(struct api_request *req, const char *name, size_t len);

/* Frees what the request owns (its body, write results and api_alloc'ed
 * blocks), not the request itself: the completion notification's teardown,
 * shared with requests built by hand (tests/fuzz). */
void api_request_fini(struct api_request *req);

/* Per-request allocation, freed with the request. Never returns NULL. */
void *api_alloc(struct api_request *req, size_t n);

/* The registry the server serves. */
struct repl_registry *api_registry(struct api_request *req);
const struct api_config *api_config(struct api_request *req);

/* Responses: every reply's body is made by one of these (a request that
 * came in an envelope keeps a copy for the envelope's answer). mode as
 * MHD_create_response_from_buffer's; with_free: free_fn(cls) once the
 * body is no longer needed. */
struct MHD_Response *api_response(struct api_request *req, size_t len, void *data,
                                  enum MHD_ResponseMemoryMode mode);
struct MHD_Response *api_response_with_free(struct api_request *req, size_t len, void *data,
                                            MHD_ContentReaderFreeCallback free_fn, void *cls);

/* Replies. Each queues exactly one response; later replies are ignored with
 * a log line (a bug). json is stolen. */
void api_reply_json(struct api_request *req, unsigned status, json_t *json);
void api_reply_response(struct api_request *req, unsigned status, struct MHD_Response *resp);
void api_reply_problem(struct api_request *req, unsigned status, const char *code, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
/* A problem+json response, for callers that add headers before replying. */
struct MHD_Response *api_problem_response(struct api_request *req, unsigned status,
                                          const char *code, const char *detail);
/* The HTTP status and problem code of a -CELLAR_E* code. */
void api_error_status(int err, unsigned *status, const char **code);
/* Maps a -CELLAR_E* code to its status and problem code. */
void api_reply_error(struct api_request *req, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Deferral. The request must not be touched by the caller after these
 * return, except to return from the handler. api_defer_writes takes the n
 * mutations, mutation i to the writer of the held table t's partition
 * partitions[i], and resumes once every one is answered; results land in
 * req->writes[i]. It ends t itself, once the writers have the mutations
 * and before anything can reply (a commit done inline, under durability
 * os, replies before it returns): no reply is ever sent under the
 * registry lock. A request none of whose mutations went out, because the
 * partition's primary role moved on between routing and the writer's turn
 * (a handover, a failover), is routed again, once or twice, rather than
 * completed: nothing of it took effect, and the new primary may take it. */
struct api_table;
void api_defer_writes(struct api_request *req, struct api_table *t, size_t n,
                      const uint32_t *partitions, struct store_mutation **mutations,
                      api_handler_fn complete);
void api_defer_write(struct api_request *req, struct api_table *t, uint32_t partition,
                     struct store_mutation *m, api_handler_fn complete);
void api_defer_admin(struct api_request *req, api_handler_fn admin, api_handler_fn complete);

/* Splits req->url (the raw path) on '/' into req->segs, percent-decoding
 * each segment once. -CELLAR_ETOOMANY beyond API_MAX_SEGMENTS segments,
 * -CELLAR_EINVAL for a path without a leading '/' or with a malformed
 * %-escape. */
int api_split_path(struct api_request *req);

/* Query parameters, percent-decoded (and base64url-decoded for key
 * parameters when ?key_encoding=base64url). Returns 1 and sets *out when
 * present, 0 when absent, -CELLAR_EINVAL when malformed. */
int api_query(struct api_request *req, const char *name, struct api_bytes *out);
/* A query parameter as it came (not decoded): NULL when absent; "?name"
 * without '=' is present (*present true) with a NULL value. */
const char *api_query_raw(struct api_request *req, const char *name, bool *present);
/* Calls fn(cls, MHD_GET_ARGUMENT_KIND, name, raw value) for each query
 * parameter in order, until it returns MHD_NO. */
void api_query_each(struct api_request *req, MHD_KeyValueIterator fn, void *cls);
/* Decodes one raw query value (a key parameter when is_key). */
int api_query_value_decode(struct api_request *req, const char *raw, size_t len, bool is_key,
                           struct api_bytes *out);
/* Boolean query parameter: "true"/"false" (absent: def). */
int api_query_bool(struct api_request *req, const char *name, bool def, bool *out);
/* Integer query parameter within [min, max] (absent: def). */
int api_query_i64(struct api_request *req, const char *name, int64_t def, int64_t min, int64_t max,
                  int64_t *out);

/* The request's JSON object body (an empty object for an empty body when
 * empty_ok). Replies 415 / 400 and returns NULL on error. json_decref it. */
json_t *api_json_body(struct api_request *req, bool empty_ok);

/* Reads obj[name] (UTF-8 string) or obj[name_base64] (standard base64) into
 * request-owned bytes. 1 when present, 0 when absent and not required, or
 * -CELLAR_EINVAL after replying 400 (both given, wrong type, bad base64,
 * missing but required). */
int api_json_bytes(struct api_request *req, json_t *obj, const char *name, bool required,
                   struct api_bytes *out);

/* obj[name] as an integer in [min, max] into *out (left alone when absent
 * or null). Replies 400 and returns false otherwise. */
bool api_json_int(struct api_request *req, json_t *obj, const char *name, int64_t min, int64_t max,
                  int64_t *out);
/* Replies 400 and returns false when obj has a field not in allowed. */
bool api_json_only_fields(struct api_request *req, json_t *obj, const char *const *allowed);

/* A request header, or NULL. */
const char *api_header(struct api_request *req, const char *name);
/* Calls fn for each "Name: value" line of a header block (lines end in
 * "\r\n" or "\n"; blanks around the value left out; lines without ':'
 * skipped), until it returns false. The pointers are into the block. */
typedef bool (*api_header_line_fn)(const char *name, size_t name_len, const char *value,
                                   size_t value_len, void *arg);
void api_header_lines(const char *p, size_t len, api_header_line_fn fn, void *arg);

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
/* The value of one hex digit (either case), or -1. */
int api_hex_value(char c);

void api_json_set_bytes(json_t *obj, const char *name, const void *data, size_t len,
                        bool force_base64);

/* Direct JSON text for hot responses (codec.c): the same text jansson
 * writes (compact, UTF-8 as is, control characters escaped). */
void api_jw_string(struct cellar_buf *b, const char *s, size_t len); /* quoted */
/* "name":"..." (valid UTF-8 without NUL, and not force_base64) or
 * "name_base64":"..." (standard base64), as api_json_set_bytes decides. */
void api_jw_bytes(struct cellar_buf *b, const char *name, const void *data, size_t len,
                  bool force_base64);
void api_jw_u64(struct cellar_buf *b, uint64_t v);
/* A reply whose body is the JSON text in b (taken). */
void api_reply_json_text(struct api_request *req, unsigned status, struct cellar_buf *b);
/* One entity tag of an If-Match / If-None-Match list. A cell's ETag is its
 * version as a canonical decimal in quotes ("42"); ours says the tag has
 * that form (a tag such as "x", "007" or "-1" is well-formed but names no
 * version). */
struct api_etag {
    bool weak;        /* W/"..." */
    bool ours;        /* the opaque tag is a canonical decimal uint64 */
    uint64_t version; /* when ours */
};
/* Reads the next entity tag of the field value s[0..len) from *pos,
 * skipping whitespace and empty list elements. 1 and *tag when there is
 * one, 0 at the end, -CELLAR_EINVAL when the value is not a comma-separated
 * list of entity tags (unquoted, unterminated, a bad character, two tags
 * without a comma, "*" inside a list). "*" alone is the caller's. */
int api_etag_next(const char *s, size_t len, size_t *pos, struct api_etag *tag);
#define API_ETAG_MAX 24 /* two quotes, up to 20 digits, NUL */
/* Writes the ETag of a version (quoted decimal, NUL-terminated) into out (at
 * least API_ETAG_MAX bytes); returns its length. */
size_t api_etag_format(uint64_t version, char *out);

/* Table and row access (data.c). A held table keeps the registry's read
 * lock: end it before replying when possible, always before returning. */
struct api_table {
    struct repl_registry *reg;
    struct repl_table *table;
};
/* The table in the path; replies 404 and returns false when there is none. */
bool api_table_begin(struct api_request *req, struct api_table *t);
void api_table_end(struct api_table *t); /* does not touch the request */
/* The partition to read for partition part of the held table t: the
 * replica that repl_route names here, through its read gate (primary,
 * holding its lease). Otherwise ends t and returns NULL after relaying the
 * request to the primary elsewhere (whole: the request reads that
 * partition only, and came from a client) or replying 503 NO_PRIMARY.
 * Borrowed while t is held. */
struct store_partition *api_read_gate(struct api_request *req, struct api_table *t, uint32_t part,
                                      bool whole);
/* Whether a write to partition part of the held table t may go on: false
 * (t then ended, the request held and routed again shortly) when this
 * node is the partition's primary but does not serve yet (committing its
 * log's tail after taking over); true otherwise, including when the
 * primary is elsewhere. */
bool api_write_ready(struct api_request *req, struct api_table *t, uint32_t part);
/* The path's hashkey, decoded and checked; replies 400 and returns false
 * when it is bad. Holds nothing. */
bool api_row_key(struct api_request *req, struct api_bytes *hk);
/* The table in the path and the partition of hk in it; replies 404 and
 * returns false when there is no such table. */
bool api_row_table(struct api_request *req, struct api_table *t, const struct api_bytes *hk,
                   uint32_t *partition);
/* api_row_key, then api_row_table. */
bool api_row_begin(struct api_request *req, struct api_table *t, struct api_bytes *hk,
                   uint32_t *partition);
/* Replies 400 INVALID_KEY and returns false for a key of a bad length. */
bool api_key_valid(struct api_request *req, const struct api_bytes *k, bool hashkey);
/* A parsed mutation of the row hk on its way to the writer: the table
 * (404), its default_ttl for the sets without a TTL, admission of a
 * mutation that writes (403, 429; a pure check writes nothing), then
 * api_defer_write with done. An empty mutation is a no-op answered 200
 * {"applied": true}. Takes m. Nothing replies while the table is held. */
void api_row_write(struct api_request *req, const struct api_bytes *hk, struct store_mutation *m,
                   api_handler_fn done);
/* Read-only and rate-limit admission of n writes; on refusal ends the table
 * and replies 403 / 429. */
bool api_admit_writes(struct api_request *req, struct api_table *t, uint64_t n);
/* Whether a page has done its work: max_scan_cells examined, or the
 * deadline (monotonic ms, start + max_scan_ms) passed. */
bool api_page_exhausted(struct api_request *req, size_t examined, uint64_t deadline_ms);
/* A cell's "ttl" field: whole seconds left, or null without expiry. */
json_t *api_ttl_json(uint32_t expiry);
/* For completions of a single deferred write: replies with the error when
 * the write was not committed or apply refused it, and returns true. */
bool api_write_failed(struct api_request *req);
/* Wall clock, Unix seconds: "now" for expiry on reads. */
uint32_t api_now_s(void);

/* Page cursors (cursor.c). */
enum api_cursor_kind {
    API_CURSOR_ROW = 1,  /* key: a sortkey boundary */
    API_CURSOR_SCAN = 2, /* key: a storage key boundary, or empty */
};
struct api_cursor {
    uint32_t partition;
    const char *key; /* request-owned */
    size_t key_len;
};
/* A request-owned, NUL-terminated base64url cursor, bound to the table of
 * the path and, for a row cursor, to the path's hashkey (which the caller
 * has already checked). */
char *api_cursor_encode(struct api_request *req, enum api_cursor_kind kind, uint32_t partition,
                        const void *key, size_t key_len);
/* -CELLAR_EINVAL for anything that is not a cursor of this kind issued for
 * this table (and row). The key is request-owned. */
int api_cursor_decode(struct api_request *req, const char *text, size_t len,
                      enum api_cursor_kind kind, struct api_cursor *out);
/* The length of the shortest start of hi that sorts after lo (lo < hi): a
 * boundary that no key between the two separates from hi. */
size_t api_cursor_boundary(const void *lo, size_t lo_len, const void *hi, size_t hi_len);
/* Narrows the row range r to what follows a row cursor (at or after its
 * key, or strictly before it when reverse). -CELLAR_EINVAL, r unchanged, when the
 * key lies outside r: no page of this range can have issued it. r then
 * borrows the cursor's key. */
int api_cursor_row_range(const struct api_cursor *cur, bool reverse, struct store_row_range *r);
/* Whether a scan cursor can resume a scan of a table of count partitions
 * (a power of two), restricted to partition only when only >= 0: its
 * partition is in range. -CELLAR_EINVAL otherwise. */
int api_cursor_scan_check(const struct api_cursor *cur, uint32_t count, int64_t only);

/* Handlers (handlers_*.c). */
void api_h_healthz(struct api_request *req);
void api_h_readyz(struct api_request *req);
void api_h_openapi(struct api_request *req);
void api_h_internal_node(struct api_request *req);
void api_h_internal_beacon(struct api_request *req);
void api_h_internal_map(struct api_request *req);
void api_h_internal_compact(struct api_request *req);
void api_h_internal_prepare(struct api_request *req);
void api_h_internal_replicas(struct api_request *req);
void api_h_internal_propose(struct api_request *req);
void api_h_internal_learn(struct api_request *req);
void api_h_internal_checkpoint_new(struct api_request *req);
void api_h_internal_checkpoint_file(struct api_request *req);
void api_h_internal_checkpoint_delete(struct api_request *req);
void api_h_tables_list(struct api_request *req);
void api_h_table_get(struct api_request *req);
void api_h_table_put(struct api_request *req);
void api_h_table_delete(struct api_request *req);
void api_h_table_recall(struct api_request *req);
void api_h_table_patch(struct api_request *req);
void api_h_table_compact(struct api_request *req);
void api_h_cell_get(struct api_request *req);
void api_h_cell_put(struct api_request *req);
void api_h_cell_delete(struct api_request *req);
void api_h_cell_incr(struct api_request *req);
void api_h_batch_get(struct api_request *req);
void api_h_batch_write(struct api_request *req);
void api_h_scan(struct api_request *req);
void api_h_row_get(struct api_request *req);
void api_h_row_patch(struct api_request *req);
void api_h_row_delete(struct api_request *req);
void api_h_row_count(struct api_request *req);
void api_h_row_check_and_mutate(struct api_request *req);
void api_h_cluster(struct api_request *req);
/* POST /v1/cluster/nodes/{address}/drain, DELETE /v1/cluster/nodes/{address}. */
void api_h_cluster_node_moves(struct api_request *req);
/* GET /, /docs and /ui/{asset}: the embedded console (handlers_console.c). */
void api_h_console(struct api_request *req);

/* The address this node serves on, "host:port" ("[v6]:port") with the port
 * it is actually bound to (handlers_cluster.c). */
void api_node_address(struct api_request *req, char *buf, size_t size);

/* Shared by row and batch handlers (handlers_rows.c). */
#include "storage/partition.h"
json_t *api_cell_json(const char *sk, size_t sklen, const char *value, size_t vlen,
                      const struct store_value_header *hdr, bool values, bool force_b64);
/* ?encoding=base64; replies 400 and returns false when malformed. */
bool api_encoding_param(struct api_request *req, bool *force_b64);
/* Appends doc's "delete" then "set" items to m (sets without a ttl get
 * ttl, the request's own). Replies and returns <0 on bad input; *n_items
 * counts them. */
int api_parse_row_ops(struct api_request *req, json_t *doc, struct store_mutation *m, int64_t ttl,
                      size_t *n_items);

/* Request bodies into mutations: the whole of each endpoint's body parsing,
 * apart from the request (a path, a table), so that it can be fuzzed. Each
 * replies (400, 413) and returns <0 on bad input, else returns 0 without
 * replying. They run before the table is held (no reply under the
 * registry lock): a set without a TTL of its own or the request's keeps
 * ttl_s 0, and the handler gives it the table's default_ttl afterwards
 * (store_mutation_default_ttl). */
/* PATCH .../rows/{h}: appends the deletes then the sets to m. */
int api_parse_patch(struct api_request *req, json_t *doc, struct store_mutation *m);
/* POST .../check-and-mutate: sets m's check and appends the ops; sets
 * req->flag_arg to return_check_value. */
int api_parse_check_and_mutate(struct api_request *req, json_t *doc, struct store_mutation *m);
/* POST .../batch-write: one new mutation per row, rows in order of first
 * appearance; *hks (request-owned) names them. The caller frees each of
 * the *n_rows mutations and the array. */
int api_parse_batch_write(struct api_request *req, json_t *doc, struct api_bytes **hks,
                          struct store_mutation ***mutations, size_t *n_rows);
/* POST .../batch-get: the keys, in request order (request-owned arrays). */
int api_parse_batch_get(struct api_request *req, json_t *doc, struct api_bytes **hks,
                        struct api_bytes **sks, size_t *n_keys);
/* POST .../incr: by (default 1) and ttl (default 0). Replies 400 and
 * returns false on bad input. */
bool api_parse_incr(struct api_request *req, json_t *doc, int64_t *by, int64_t *ttl);

/* Route the request: sets req->route, replies 404/405 or calls a handler. */
void api_route(struct api_request *req);
/* A whole request (headers and body read): checks what applies to every
 * route (path, key_encoding, shutting down, body size, CORS preflight),
 * then routes it (server.c). */
void api_dispatch(struct api_request *req);
/* The method's enum api_method, 0 for one this API does not know. */
enum api_method api_parse_method(const char *name);
/* POST /internal/v1/relay (relay.c): the requests of an envelope, each
 * served as if it had come alone, answered in one envelope. */
void api_h_internal_relay(struct api_request *req);
size_t api_route_count(void);
const char *api_route_name(int route);

/* Metrics (metrics.c). */
struct api_metrics;
struct api_metrics *api_metrics_new(void);
void api_metrics_free(struct api_metrics *m);
void api_metrics_record(struct api_metrics *m, int route, enum api_method method, unsigned status,
                        uint64_t elapsed_us);
/* Logs the request when it took at least slow_request_ms (server.c). */
void api_log_slow(struct api_request *req, uint64_t end_us);
struct api_metrics *api_metrics(struct api_request *req);
void api_h_metrics(struct api_request *req);
/* Appends the partition health families to a /metrics page
 * (handlers_node.c). */
void api_metrics_partition_health(struct cellar_buf *b, const struct repl_registry_stats *st);

/* A server with no daemon, no admin thread and no listening socket, for
 * requests built by hand on a connection of the caller's (tests/fuzz, whose
 * stand-ins for MHD's connection functions answer them). reg may be NULL
 * when no handler that reads a table runs. api_server_stop frees it. */
struct api_server *api_server_new_offline(const struct api_config *cfg, struct repl_registry *reg);

/* Whether the server is ready (readyz). */
bool api_ready(struct api_request *req);

/* The JSON form of a table's metadata. */
json_t *api_table_json(const struct repl_table_meta *m);

#endif

/*
 * handlers_cells.c - one cell: GET and HEAD (raw bytes, or JSON by Accept),
 * PUT (body = value, ?ttl=, If-None-Match: *, If-Match), DELETE (If-Match).
 *
 * Reads go straight to the partition (a pinned get whose memory becomes the
 * response body without a copy). Writes become a mutation on the row's
 * partition writer; the connection is suspended until the mutation's group
 * is durable, and the reply is built from apply's outcome: 201 when the
 * cell did not exist, 204 when it was replaced or deleted, 412 when a
 * precondition failed. ETags are the cell's version, strong and quoted.
 *
 * Threads: MHD workers (completions run there too, after resume).
 */
#include <inttypes.h>
#include <string.h>

#include "api/internal.h"
#include "storage/keycodec.h"

#define SEG_SORTKEY 6

/* The cell's keys from the path, decoded and checked. Replies 400 and
 * returns false when one is bad. Holds nothing. */
static bool cell_keys(struct api_request *req, struct api_bytes *hk, struct api_bytes *sk)
{
    if (api_path_key(req, SEG_SORTKEY, sk) < 0) {
        api_reply_problem(req, 400, "INVALID_KEY", "the sortkey is not valid base64url");
        return false;
    }
    return api_key_valid(req, sk, false) && api_row_key(req, hk);
}

/* If-None-Match of a read: "*" or a list of entity tags, compared weakly
 * (RFC 9110 13.1.2). 0 and *match, or -CELLAR_EINVAL when the value is not
 * such a list (an empty one included): a malformed precondition is 400,
 * never silently ignored. */
static int if_none_match(const char *v, uint64_t version, bool *match)
{
    *match = false;
    if (strcmp(v, "*") == 0) {
        *match = true;
        return 0;
    }
    size_t len = strlen(v), pos = 0, n = 0;
    struct api_etag tag;
    int rc;
    while ((rc = api_etag_next(v, len, &pos, &tag)) == 1) {
        n++;
        *match |= tag.ours && tag.version == version;
    }
    return rc < 0 || n == 0 ? -CELLAR_EINVAL : 0;
}

/* The versions an entity-tag list of a write's precondition names:
 * If-Match compares strongly (a weak tag matches nothing), If-None-Match
 * weakly (RFC 9110 8.8.3.2). A well-formed tag that is not one of ours
 * names no version and matches nothing. 0 and the request-owned list, or
 * -CELLAR_EINVAL when the value is not a non-empty list of entity tags. */
static int tag_versions(struct api_request *req, const char *v, bool strong, uint64_t **versions,
                        size_t *n)
{
    size_t len = strlen(v), pos = 0, tags = 0;
    struct api_etag tag;
    int rc;
    /* A list of len bytes holds fewer than len / 2 tags ("" and a comma). */
    *versions = api_alloc(req, (len / 2 + 1) * sizeof(**versions));
    *n = 0;
    while ((rc = api_etag_next(v, len, &pos, &tag)) == 1) {
        tags++;
        if (tag.ours && !(strong && tag.weak))
            (*versions)[(*n)++] = tag.version;
    }
    return rc < 0 || tags == 0 ? -CELLAR_EINVAL : 0;
}

static void set_etag(struct MHD_Response *resp, uint64_t version)
{
    char etag[API_ETAG_MAX];
    api_etag_format(version, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
}

static bool wants_json(struct api_request *req)
{
    const char *accept = api_header(req, MHD_HTTP_HEADER_ACCEPT);
    return accept && strstr(accept, "application/json") != NULL;
}

/* --- GET / HEAD --------------------------------------------------------- */

void api_h_cell_get(struct api_request *req)
{
    struct api_bytes hk, sk;
    struct api_table t;
    uint32_t part;
    bool force_b64 = false, not_modified = false;
    const char *inm = api_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && if_none_match(inm, 0, &not_modified) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT",
                          "If-None-Match takes * or a list of ETags such as \"42\"");
        return;
    }
    if (!api_encoding_param(req, &force_b64) || !cell_keys(req, &hk, &sk) ||
        !api_row_table(req, &t, &hk, &part))
        return;
    struct store_partition *p = api_read_gate(req, &t, part, true);
    if (!p)
        return;
    struct store_cell cell = {0};
    int rc = store_get(p, hk.data, hk.len, sk.data, sk.len, api_now_s(), &cell);
    api_table_end(&t);
    if (rc == -CELLAR_ENOTFOUND) {
        api_reply_problem(req, 404, "CELL_NOT_FOUND", "no such cell");
        return;
    }
    if (rc < 0) {
        api_reply_error(req, rc, "cannot read the cell: %s", cellar_strerror(rc));
        return;
    }
    if (inm && if_none_match(inm, cell.hdr.version, &not_modified) == 0 && not_modified) {
        struct MHD_Response *resp = api_response(req, 0, "", MHD_RESPMEM_PERSISTENT);
        set_etag(resp, cell.hdr.version);
        store_cell_release(&cell);
        api_reply_response(req, 304, resp);
        return;
    }
    struct MHD_Response *resp;
    if (wants_json(req)) {
        json_t *doc = json_object();
        api_json_set_bytes(doc, "hashkey", hk.data, hk.len, force_b64);
        api_json_set_bytes(doc, "sortkey", sk.data, sk.len, force_b64);
        api_json_set_bytes(doc, "value", cell.value, cell.value_len, force_b64);
        json_object_set_new(doc, "ttl", api_ttl_json(cell.hdr.expiry));
        json_object_set_new(doc, "etag", json_sprintf("%" PRIu64, cell.hdr.version));
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        resp = api_response(req, strlen(text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        set_etag(resp, cell.hdr.version);
        store_cell_release(&cell);
    } else {
        /* The pinned value becomes the body; MHD frees the pin when done. */
        char ctype[STORE_CTYPE_MAX + 1] = "application/octet-stream";
        if (cell.hdr.ctype) {
            memcpy(ctype, cell.hdr.ctype, cell.hdr.ctype_len);
            ctype[cell.hdr.ctype_len] = '\0';
        }
        resp = api_response_with_free(req, cell.value_len, (void *)cell.value, store_pin_free,
                                      cell.pin);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
        set_etag(resp, cell.hdr.version);
    }
    api_reply_response(req, 200, resp);
}

/* --- PUT and DELETE ----------------------------------------------------- */

/* Reads If-Match / If-None-Match into a check on the mutation. Replies and
 * returns false when a header is malformed. */
static bool preconditions(struct api_request *req, struct store_mutation *m,
                          const struct api_bytes *sk)
{
    const char *im = api_header(req, MHD_HTTP_HEADER_IF_MATCH);
    const char *inm = api_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (im && inm) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT",
                          "send either If-Match or If-None-Match, not both");
        return false;
    }
    const char *v = im ? im : inm;
    if (!v)
        return true;
    if (strcmp(v, "*") == 0) {
        store_mutation_set_check(m, im ? STORE_CHECK_VALUE_EXIST : STORE_CHECK_VALUE_NOT_EXIST,
                                 sk->data, sk->len, NULL, 0, false);
        return true;
    }
    uint64_t *versions;
    size_t n;
    if (tag_versions(req, v, im != NULL, &versions, &n) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT",
                          "%s takes * or a list of entity tags such as \"42\"",
                          im ? "If-Match" : "If-None-Match");
        return false;
    }
    store_mutation_set_version_check(m, sk->data, sk->len, versions, n, inm != NULL);
    return true;
}

static void write_done(struct api_request *req, bool is_put)
{
    if (api_write_failed(req))
        return;
    const struct store_outcome *o = &req->writes[0].outcome;
    if (!o->applied) {
        api_reply_problem(req, 412, "PRECONDITION_FAILED",
                          o->check_exists ? "the cell has another version"
                                          : "the precondition does not hold for this cell");
        return;
    }
    struct MHD_Response *resp = api_response(req, 0, "", MHD_RESPMEM_PERSISTENT);
    unsigned status = 204;
    if (is_put) {
        set_etag(resp, o->decree);
        if (!o->existed) {
            status = 201;
            MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, req->url);
        }
    }
    api_reply_response(req, status, resp);
}

static void put_done(struct api_request *req)
{
    write_done(req, true);
}

static void delete_done(struct api_request *req)
{
    write_done(req, false);
}

void api_h_cell_put(struct api_request *req)
{
    const struct api_config *cfg = api_config(req);
    if (req->body.len > cfg->max_value_bytes) {
        api_reply_problem(req, 413, "TOO_LARGE", "a value is at most %zu bytes",
                          cfg->max_value_bytes);
        return;
    }
    int64_t ttl = 0;
    if (api_query_i64(req, "ttl", 0, 0, INT32_MAX, &ttl) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "ttl is a number of seconds, 0..%d",
                          INT32_MAX);
        return;
    }
    const char *ctype = api_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t ctype_len = ctype ? strlen(ctype) : 0;
    if (ctype_len > STORE_CTYPE_MAX) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "Content-Type is at most %u bytes",
                          STORE_CTYPE_MAX);
        return;
    }
    if (ctype && strcmp(ctype, "application/octet-stream") == 0)
        ctype_len = 0; /* the default needs no bytes on disk */
    struct api_bytes hk, sk;
    if (!cell_keys(req, &hk, &sk))
        return;
    struct store_mutation *m = store_mutation_new(hk.data, hk.len);
    if (!preconditions(req, m, &sk)) {
        store_mutation_free(m);
        return;
    }
    /* ttl 0: the table's default_ttl, given by api_row_write. */
    store_mutation_put(m, sk.data, sk.len, req->body.data ? req->body.data : "", req->body.len,
                       ctype_len ? ctype : NULL, ctype_len, ttl);
    api_row_write(req, &hk, m, put_done);
}

void api_h_cell_delete(struct api_request *req)
{
    struct api_bytes hk, sk;
    if (!cell_keys(req, &hk, &sk))
        return;
    struct store_mutation *m = store_mutation_new(hk.data, hk.len);
    if (!preconditions(req, m, &sk)) {
        store_mutation_free(m);
        return;
    }
    store_mutation_delete(m, sk.data, sk.len);
    api_row_write(req, &hk, m, delete_done);
}

/* --- incr --------------------------------------------------------------- */

static void incr_done(struct api_request *req)
{
    const struct api_write_result *w = &req->writes[0];
    if (api_write_failed(req))
        return;
    json_t *doc = json_pack("{s:I, s:o}", "value", (json_int_t)w->outcome.incr_value, "etag",
                            json_sprintf("%" PRIu64, w->outcome.decree));
    struct MHD_Response *resp = NULL;
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    resp = api_response(req, strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    set_etag(resp, w->outcome.decree);
    api_reply_response(req, 200, resp);
}

bool api_parse_incr(struct api_request *req, json_t *doc, int64_t *by, int64_t *ttl)
{
    static const char *const fields[] = {"by", "ttl", NULL};
    *by = 1;
    *ttl = 0;
    return api_json_only_fields(req, doc, fields) &&
           api_json_int(req, doc, "by", INT64_MIN, INT64_MAX, by) &&
           api_json_int(req, doc, "ttl", -1, INT32_MAX, ttl);
}

void api_h_cell_incr(struct api_request *req)
{
    json_t *doc = api_json_body(req, true);
    if (!doc)
        return;
    int64_t by = 1, ttl = 0;
    bool ok = api_parse_incr(req, doc, &by, &ttl);
    json_decref(doc);
    if (!ok)
        return;
    struct api_bytes hk, sk;
    if (!cell_keys(req, &hk, &sk))
        return;
    struct store_mutation *m = store_mutation_new(hk.data, hk.len);
    store_mutation_incr(m, sk.data, sk.len, by, ttl);
    api_row_write(req, &hk, m, incr_done);
}

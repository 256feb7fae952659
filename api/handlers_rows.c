/*
 * handlers_rows.c - one row: multi-get (by sortkey list, or a range with
 * filters, reverse, paging), atomic PATCH (deletes then sets), DELETE of all
 * or a range, count, and check-and-mutate.
 *
 * Range reads are bounded per request: at most `limit` cells and about
 * `max_bytes` of values returned, and at most max_scan_cells examined
 * (expired and filtered cells count), so a page may be short or empty and
 * still carry a next_cursor; only a null next_cursor means the end. The
 * cursor is the last sortkey examined; the next page starts strictly after
 * it (before it, in reverse).
 *
 * Writes become one mutation on the row's partition writer: the whole
 * request is atomic, as apply is.
 *
 * Threads: MHD workers.
 */
#include <inttypes.h>
#include <string.h>

#include "api/internal.h"
#include "storage/keycodec.h"

/* --- Parameters --------------------------------------------------------- */

/* A range from start/stop/start_inclusive/stop_inclusive. Replies 400 and
 * returns false when malformed. */
static bool range_params(struct api_request *req, struct store_row_range *r)
{
    struct api_bytes start = {"", 0}, stop = {"", 0};
    bool si = true, so = false;
    if (api_query(req, "start", &start) < 0 || api_query(req, "stop", &stop) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "start or stop is malformed");
        return false;
    }
    if (api_query_bool(req, "start_inclusive", true, &si) < 0 ||
        api_query_bool(req, "stop_inclusive", false, &so) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT",
                          "start_inclusive and stop_inclusive are true or false");
        return false;
    }
    if (!api_key_valid(req, &start, false) || !api_key_valid(req, &stop, false))
        return false;
    *r = (struct store_row_range){.start = start.data,
                                  .start_len = start.len,
                                  .start_incl = si,
                                  .stop = stop.data,
                                  .stop_len = stop.len,
                                  .stop_incl = so,
                                  .stop_end = stop.len == 0};
    return true;
}

enum filter_type { FILTER_NONE, FILTER_PREFIX, FILTER_POSTFIX, FILTER_ANYWHERE };

static bool filter_match(enum filter_type type, const struct api_bytes *f, const char *s,
                         size_t len)
{
    if (f->len == 0 || type == FILTER_NONE)
        return true;
    if (f->len > len)
        return false;
    switch (type) {
    case FILTER_PREFIX:
        return memcmp(s, f->data, f->len) == 0;
    case FILTER_POSTFIX:
        return memcmp(s + len - f->len, f->data, f->len) == 0;
    case FILTER_ANYWHERE:
        return memmem(s, len, f->data, f->len) != NULL;
    case FILTER_NONE:
        break;
    }
    return true;
}

/* --- The JSON of cells ---------------------------------------------------- */

json_t *api_cell_json(const char *sk, size_t sklen, const char *value, size_t vlen,
                      const struct store_value_header *hdr, bool values, bool force_b64)
{
    json_t *cell = json_object();
    api_json_set_bytes(cell, "sortkey", sk, sklen, force_b64);
    if (values)
        api_json_set_bytes(cell, "value", value, vlen, force_b64);
    json_object_set_new(cell, "ttl", api_ttl_json(hdr->expiry));
    json_object_set_new(cell, "etag", json_sprintf("%" PRIu64, hdr->version));
    return cell;
}

/* api_cell_json's object as text, appended to a page's "cells" array. */
static void cell_write(struct cellar_buf *b, bool first, const char *sk, size_t sklen,
                       const char *value, size_t vlen, const struct store_value_header *hdr,
                       bool values, bool force_b64)
{
    cellar_buf_append(b, first ? "{" : ",{", first ? 1 : 2);
    api_jw_bytes(b, "sortkey", sk, sklen, force_b64);
    if (values) {
        cellar_buf_append_byte(b, ',');
        api_jw_bytes(b, "value", value, vlen, force_b64);
    }
    cellar_buf_append(b, ",\"ttl\":", 7);
    if (!hdr->expiry) {
        cellar_buf_append(b, "null", 4);
    } else {
        uint64_t now_ms = cellar_now_ms(), end_ms = (uint64_t)hdr->expiry * 1000;
        api_jw_u64(b, end_ms > now_ms ? (end_ms - now_ms) / 1000 : 0);
    }
    cellar_buf_append(b, ",\"etag\":\"", 9);
    api_jw_u64(b, hdr->version);
    cellar_buf_append(b, "\"}", 2);
}

bool api_encoding_param(struct api_request *req, bool *force_b64)
{
    struct api_bytes enc;
    int rc = api_query(req, "encoding", &enc);
    if (rc < 0 || (rc == 1 && !(enc.len == 6 && memcmp(enc.data, "base64", 6) == 0))) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "encoding must be base64");
        return false;
    }
    *force_b64 = rc == 1;
    return true;
}

/* --- GET: multi-get ----------------------------------------------------- */

/* A row page is written as text while the cells are read: page_begin
 * opens the document, page_end closes it and replies (or replies with the
 * read error rc and drops the text). next: the cursor, NULL at the end. */
static void page_begin(struct cellar_buf *b, const struct api_bytes *hk, bool force_b64)
{
    cellar_buf_append_byte(b, '{');
    api_jw_bytes(b, "hashkey", hk->data, hk->len, force_b64);
    cellar_buf_append(b, ",\"cells\":[", 10);
}

static void page_end(struct api_request *req, int rc, struct cellar_buf *b, const char *next)
{
    if (rc < 0) {
        cellar_buf_fini(b);
        api_reply_error(req, rc, "cannot read the row: %s", cellar_strerror(rc));
        return;
    }
    cellar_buf_append(b, "],\"next_cursor\":", 16);
    if (next)
        api_jw_string(b, next, strlen(next));
    else
        cellar_buf_append(b, "null", 4);
    cellar_buf_append_byte(b, '}');
    api_reply_json_text(req, 200, b);
}

struct sortkey_list {
    struct api_request *req;
    struct api_bytes *keys;
    size_t n, cap;
    bool bad;
};

static enum MHD_Result collect_sortkey(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    struct sortkey_list *l = cls;
    if (strcmp(key, "sortkey") != 0)
        return MHD_YES;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        struct api_bytes *grown = api_alloc(l->req, l->cap * sizeof(*grown));
        if (l->n)
            memcpy(grown, l->keys, l->n * sizeof(*grown));
        l->keys = grown;
    }
    struct api_bytes *k = &l->keys[l->n];
    if (!value)
        value = "";
    if (api_query_value_decode(l->req, value, strlen(value), true, k) < 0)
        l->bad = true;
    l->n++;
    return MHD_YES;
}

static int keys_cmp(const void *a, const void *b)
{
    const struct api_bytes *x = a, *y = b;
    return cellar_bytes_cmp(x->data, x->len, y->data, y->len);
}

/* ?cursor= of a row page, narrowing the range r (or, for a sortkey list,
 * setting *from to the boundary the page goes on at). Replies 400 and
 * returns false when the cursor is not one of this table's and row's, or
 * is not a position in r. */
static bool row_cursor(struct api_request *req, bool reverse, struct store_row_range *r,
                       struct api_bytes *from, bool *has_from)
{
    struct api_bytes ctext;
    struct api_cursor cur = {0};
    int crc = api_query(req, "cursor", &ctext);
    *has_from = false;
    if (crc == 0)
        return true;
    if (crc < 0 || api_cursor_decode(req, ctext.data, ctext.len, API_CURSOR_ROW, &cur) < 0) {
        api_reply_problem(req, 400, "INVALID_CURSOR", "the cursor is not one this API issued");
        return false;
    }
    if (r && api_cursor_row_range(&cur, reverse, r) < 0) {
        api_reply_problem(req, 400, "INVALID_CURSOR", "the cursor is not a position in this range");
        return false;
    }
    if (from) {
        *from = (struct api_bytes){cur.key, cur.key_len};
        *has_from = true;
    }
    return true;
}

/* The cursor of a page that stopped between sortkeys near (the last it
 * examined) and far (the next one), in the page's direction. */
static char *row_boundary_cursor(struct api_request *req, bool reverse, const void *near,
                                 size_t near_len, const void *far, size_t far_len)
{
    if (reverse) /* a start of near that sorts after far */
        return api_cursor_encode(req, API_CURSOR_ROW, 0, near,
                                 api_cursor_boundary(far, far_len, near, near_len));
    return api_cursor_encode(req, API_CURSOR_ROW, 0, far,
                             api_cursor_boundary(near, near_len, far, far_len));
}

/* A page's bounds: cells returned, value bytes returned, and the work done
 * (api_page_exhausted). */
struct page_bounds {
    int64_t limit, max_bytes;
    uint64_t deadline_ms;
    size_t examined, returned, bytes;
};

/* Counts one examined cell (returned or not) and says whether the page is
 * full. */
static bool page_full(struct api_request *req, struct page_bounds *pb, bool returned,
                      size_t value_bytes)
{
    pb->examined++;
    if (returned) {
        pb->returned++;
        pb->bytes += value_bytes;
    }
    return pb->returned == (size_t)pb->limit || pb->bytes >= (uint64_t)pb->max_bytes ||
           api_page_exhausted(req, pb->examined, pb->deadline_ms);
}

/* A full page stopped at item: the cursor between its sortkey and the
 * next one when the iterator has more, else NULL (the row's end). *rc
 * takes the iterator's status. */
static const char *next_row_cursor(struct api_request *req, struct store_iter *it, bool reverse,
                                   struct store_item *item, int *rc)
{
    char *last = api_alloc(req, item->sklen + 1);
    memcpy(last, item->sk, item->sklen);
    size_t last_len = item->sklen;
    *rc = store_iter_next(it, item);
    return *rc == 1 ? row_boundary_cursor(req, reverse, last, last_len, item->sk, item->sklen)
                    : NULL;
}

/* GET by an explicit sortkey list: the listed cells that exist, sorted by
 * sortkey, paged like a range (the cursor is a boundary before the next
 * listed sortkey). */
static void multi_get_list(struct api_request *req, struct sortkey_list *l, bool values,
                           bool force_b64, struct page_bounds *pb)
{
    static const char *const exclusive[] = {"start",          "stop",        "start_inclusive",
                                            "stop_inclusive", "filter_type", "filter",
                                            "reverse",        NULL};
    for (size_t i = 0; exclusive[i]; i++) {
        bool present;
        if (api_query_raw(req, exclusive[i], &present)) {
            api_reply_problem(req, 400, "INVALID_ARGUMENT",
                              "sortkey lists cannot be combined with %s", exclusive[i]);
            return;
        }
    }
    if (l->n > api_config(req)->max_batch_items) {
        api_reply_problem(req, 400, "TOO_MANY_ITEMS", "at most %zu sortkeys",
                          api_config(req)->max_batch_items);
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (!api_key_valid(req, &l->keys[i], false))
            return;
    }
    struct api_bytes from;
    bool has_from;
    if (!row_cursor(req, false, NULL, &from, &has_from))
        return;
    qsort(l->keys, l->n, sizeof(*l->keys), keys_cmp);
    /* Each key once, and only those at or after the cursor. */
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        if ((n > 0 && keys_cmp(&l->keys[n - 1], &l->keys[i]) == 0) ||
            (has_from && keys_cmp(&l->keys[i], &from) < 0))
            continue;
        l->keys[n++] = l->keys[i];
    }
    struct api_table t;
    struct api_bytes hk;
    uint32_t part;
    if (!api_row_begin(req, &t, &hk, &part))
        return;
    struct store_partition *p = api_read_gate(req, &t, part, true);
    if (!p)
        return;
    uint32_t now_s = api_now_s();
    struct cellar_buf page = {0};
    page_begin(&page, &hk, force_b64);
    const char *next = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct store_cell c;
        rc = store_get(p, hk.data, hk.len, l->keys[i].data, l->keys[i].len, now_s, &c);
        bool found = rc == 0;
        size_t vbytes = found && values ? c.value_len : 0;
        if (rc == -CELLAR_ENOTFOUND)
            rc = 0;
        if (rc < 0)
            break;
        if (found) {
            cell_write(&page, pb->returned == 0, l->keys[i].data, l->keys[i].len, c.value,
                       c.value_len, &c.hdr, values, force_b64);
            store_cell_release(&c);
        }
        if (page_full(req, pb, found, vbytes)) {
            if (i + 1 < n)
                next = row_boundary_cursor(req, false, l->keys[i].data, l->keys[i].len,
                                           l->keys[i + 1].data, l->keys[i + 1].len);
            break;
        }
    }
    api_table_end(&t);
    page_end(req, rc, &page, next);
}

void api_h_row_get(struct api_request *req)
{
    bool values = true, reverse = false, force_b64 = false;
    const struct api_config *cfg = api_config(req);
    struct page_bounds pb = {.deadline_ms = cellar_mono_ms() + cfg->max_scan_ms};
    if (!api_encoding_param(req, &force_b64))
        return;
    if (api_query_bool(req, "values", true, &values) < 0 ||
        api_query_bool(req, "reverse", false, &reverse) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "values and reverse are true or false");
        return;
    }
    if (api_query_i64(req, "limit", 100, 1, (int64_t)cfg->max_page_cells, &pb.limit) < 0 ||
        api_query_i64(req, "max_bytes", (int64_t)cfg->max_page_bytes, 1,
                      (int64_t)cfg->max_page_bytes, &pb.max_bytes) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "limit is 1..%zu and max_bytes 1..%zu",
                          cfg->max_page_cells, cfg->max_page_bytes);
        return;
    }
    struct sortkey_list list = {.req = req};
    api_query_each(req, collect_sortkey, &list);
    if (list.bad) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "a sortkey parameter is malformed");
        return;
    }
    if (list.n > 0) {
        multi_get_list(req, &list, values, force_b64, &pb);
        return;
    }

    struct store_row_range r;
    if (!range_params(req, &r))
        return;
    enum filter_type ftype = FILTER_NONE;
    struct api_bytes ft, filter = {"", 0};
    int frc = api_query(req, "filter_type", &ft);
    if (frc == 1) {
        if (ft.len == 6 && memcmp(ft.data, "prefix", 6) == 0)
            ftype = FILTER_PREFIX;
        else if (ft.len == 7 && memcmp(ft.data, "postfix", 7) == 0)
            ftype = FILTER_POSTFIX;
        else if (ft.len == 8 && memcmp(ft.data, "anywhere", 8) == 0)
            ftype = FILTER_ANYWHERE;
        else
            frc = -1;
    }
    if (frc < 0 || api_query(req, "filter", &filter) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT",
                          "filter_type is prefix, postfix or anywhere");
        return;
    }
    bool unused;
    if (!row_cursor(req, reverse, &r, NULL, &unused))
        return;

    struct api_table t;
    struct api_bytes hk;
    uint32_t part;
    struct store_partition *p;
    if (!api_row_begin(req, &t, &hk, &part) || !(p = api_read_gate(req, &t, part, true)))
        return;
    struct store_iter *it = NULL;
    int rc = store_iter_row(p, hk.data, hk.len, &r, reverse, api_now_s(), &it);
    struct cellar_buf page = {0};
    page_begin(&page, &hk, force_b64);
    const char *next = NULL;
    struct store_item item;
    while (rc >= 0 && (rc = store_iter_next(it, &item)) == 1) {
        bool keep = !item.expired && filter_match(ftype, &filter, item.sk, item.sklen);
        if (keep)
            cell_write(&page, pb.returned == 0, item.sk, item.sklen, item.value, item.value_len,
                       &item.hdr, values, force_b64);
        if (page_full(req, &pb, keep, keep && values ? item.value_len : 0)) {
            next = next_row_cursor(req, it, reverse, &item, &rc);
            break;
        }
    }
    store_iter_free(it);
    api_table_end(&t);
    page_end(req, rc, &page, next);
}

/* --- count -------------------------------------------------------------- */

/* GET .../count: live cells of the range, bounded per request like a page
 * (max_scan_cells examined, max_scan_ms); a next_cursor says "this many so
 * far, continue from here". */
void api_h_row_count(struct api_request *req)
{
    struct store_row_range r;
    bool unused;
    if (!range_params(req, &r) || !row_cursor(req, false, &r, NULL, &unused))
        return;
    struct api_table t;
    struct api_bytes hk;
    uint32_t part;
    struct store_partition *p;
    if (!api_row_begin(req, &t, &hk, &part) || !(p = api_read_gate(req, &t, part, true)))
        return;
    struct page_bounds pb = {.limit = INT64_MAX,
                             .max_bytes = INT64_MAX,
                             .deadline_ms = cellar_mono_ms() + api_config(req)->max_scan_ms};
    struct store_iter *it = NULL;
    int rc = store_iter_row(p, hk.data, hk.len, &r, false, api_now_s(), &it);
    const char *next = NULL;
    struct store_item item;
    while (rc >= 0 && (rc = store_iter_next(it, &item)) == 1) {
        if (page_full(req, &pb, !item.expired, 0)) {
            next = next_row_cursor(req, it, false, &item, &rc);
            break;
        }
    }
    store_iter_free(it);
    api_table_end(&t);
    if (rc < 0) {
        api_reply_error(req, rc, "cannot read the row: %s", cellar_strerror(rc));
        return;
    }
    json_t *doc = json_pack("{s:I}", "count", (json_int_t)pb.returned);
    json_object_set_new(doc, "next_cursor", next ? json_string(next) : json_null());
    api_reply_json(req, 200, doc);
}

/* --- Writes ------------------------------------------------------------- */

int api_parse_row_ops(struct api_request *req, json_t *doc, struct store_mutation *m, int64_t ttl,
                      size_t *n_items)
{
    json_t *sets = json_object_get(doc, "set"), *dels = json_object_get(doc, "delete");
    if ((sets && !json_is_array(sets)) || (dels && !json_is_array(dels))) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "set and delete are arrays");
        return -CELLAR_EINVAL;
    }
    size_t n = json_array_size(sets) + json_array_size(dels);
    if (n > api_config(req)->max_batch_items) {
        api_reply_problem(req, 400, "TOO_MANY_ITEMS", "at most %zu items",
                          api_config(req)->max_batch_items);
        return -CELLAR_ETOOMANY;
    }
    static const char *const del_fields[] = {"sortkey", "sortkey_base64", NULL};
    static const char *const set_fields[] = {
        "sortkey", "sortkey_base64", "value", "value_base64", "ttl", NULL};
    size_t i;
    json_t *item;
    /* Deletes first: a sortkey in both lists ends up set. */
    json_array_foreach(dels, i, item)
    {
        struct api_bytes sk;
        if (!json_is_object(item)) {
            api_reply_problem(req, 400, "INVALID_ARGUMENT", "each delete item is an object");
            return -CELLAR_EINVAL;
        }
        if (!api_json_only_fields(req, item, del_fields) ||
            api_json_bytes(req, item, "sortkey", true, &sk) < 0 || !api_key_valid(req, &sk, false))
            return -CELLAR_EINVAL;
        store_mutation_delete(m, sk.data, sk.len);
    }
    json_array_foreach(sets, i, item)
    {
        struct api_bytes sk, val;
        int64_t item_ttl = 0;
        if (!json_is_object(item)) {
            api_reply_problem(req, 400, "INVALID_ARGUMENT", "each set item is an object");
            return -CELLAR_EINVAL;
        }
        bool has_ttl = json_object_get(item, "ttl") != NULL;
        if (!api_json_only_fields(req, item, set_fields) ||
            api_json_bytes(req, item, "sortkey", true, &sk) < 0 ||
            api_json_bytes(req, item, "value", true, &val) < 0 ||
            !api_json_int(req, item, "ttl", 0, INT32_MAX, &item_ttl) ||
            !api_key_valid(req, &sk, false))
            return -CELLAR_EINVAL;
        if (val.len > api_config(req)->max_value_bytes) {
            api_reply_problem(req, 413, "TOO_LARGE", "a value is at most %zu bytes",
                              api_config(req)->max_value_bytes);
            return -CELLAR_ETOOLARGE;
        }
        store_mutation_put(m, sk.data, sk.len, val.data, val.len, NULL, 0,
                           has_ttl && item_ttl ? item_ttl : ttl);
    }
    *n_items = n;
    return 0;
}

/* The TTL that sets without their own get: the body's "ttl" (0 when
 * absent: then the table's default, applied later). */
static bool body_ttl(struct api_request *req, json_t *doc, int64_t *out)
{
    *out = 0;
    return api_json_int(req, doc, "ttl", 0, INT32_MAX, out);
}

static void patch_done(struct api_request *req)
{
    if (!api_write_failed(req))
        api_reply_json(req, 200, json_pack("{s:b}", "applied", req->writes[0].outcome.applied));
}

int api_parse_patch(struct api_request *req, json_t *doc, struct store_mutation *m)
{
    static const char *const fields[] = {"set", "delete", "ttl", NULL};
    size_t n = 0;
    int64_t ttl = 0;
    if (!api_json_only_fields(req, doc, fields) || !body_ttl(req, doc, &ttl))
        return -CELLAR_EINVAL;
    return api_parse_row_ops(req, doc, m, ttl, &n);
}

void api_h_row_patch(struct api_request *req)
{
    struct api_bytes hk;
    if (!api_row_key(req, &hk))
        return;
    json_t *doc = api_json_body(req, false);
    if (!doc)
        return;
    struct store_mutation *m = store_mutation_new(hk.data, hk.len);
    int rc = api_parse_patch(req, doc, m);
    json_decref(doc);
    if (rc < 0) {
        store_mutation_free(m);
        return;
    }
    api_row_write(req, &hk, m, patch_done);
}

static void delete_done(struct api_request *req)
{
    if (!api_write_failed(req))
        api_reply_json(req, 200,
                       json_pack("{s:I}", "deleted", (json_int_t)req->writes[0].outcome.deleted));
}

void api_h_row_delete(struct api_request *req)
{
    struct store_row_range r;
    struct api_bytes hk;
    if (!range_params(req, &r) || !api_row_key(req, &hk))
        return;
    struct store_mutation *m = store_mutation_new(hk.data, hk.len);
    store_mutation_delete_range(m, r.start, r.start_len, r.start_incl, r.stop, r.stop_len,
                                r.stop_incl, r.stop_end);
    api_row_write(req, &hk, m, delete_done);
}

/* --- check-and-mutate --------------------------------------------------- */

static void cam_done(struct api_request *req)
{
    const struct api_write_result *w = &req->writes[0];
    if (api_write_failed(req))
        return;
    json_t *doc = json_pack("{s:b, s:b}", "applied", w->outcome.applied, "check_value_exists",
                            w->outcome.check_exists);
    if (req->flag_arg) {
        if (w->outcome.check_exists)
            api_json_set_bytes(doc, "check_value", w->outcome.check_value.data,
                               w->outcome.check_value.len, req->force_b64);
        else
            json_object_set_new(doc, "check_value", json_null());
    }
    api_reply_json(req, 200, doc);
}

static bool is_int_check(enum store_check_type t)
{
    return t >= STORE_CHECK_VALUE_INT_LESS && t <= STORE_CHECK_VALUE_INT_GREATER;
}

int api_parse_check_and_mutate(struct api_request *req, json_t *doc, struct store_mutation *m)
{
    static const char *const fields[] = {"check", "set", "delete", "return_check_value",
                                         "ttl",   NULL};
    static const char *const check_fields[] = {"sortkey", "sortkey_base64", "type",
                                               "operand", "operand_base64", NULL};
    struct api_bytes sk, operand = {"", 0};
    size_t n = 0;
    int64_t ttl = 0;
    enum store_check_type type;
    json_t *check = json_object_get(doc, "check");
    json_t *ret = json_object_get(doc, "return_check_value");
    json_t *jtype = json_is_object(check) ? json_object_get(check, "type") : NULL;
    if (!api_json_only_fields(req, doc, fields))
        return -CELLAR_EINVAL;
    if (!json_is_object(check) || !api_json_only_fields(req, check, check_fields)) {
        if (!json_is_object(check))
            api_reply_problem(req, 400, "INVALID_ARGUMENT", "check is a required object");
        return -CELLAR_EINVAL;
    }
    if (ret && !json_is_boolean(ret)) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "return_check_value is true or false");
        return -CELLAR_EINVAL;
    }
    req->flag_arg = json_is_true(ret);
    if (!json_is_string(jtype) ||
        store_check_parse(json_string_value(jtype), json_string_length(jtype), &type) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "check.type is not a known check type");
        return -CELLAR_EINVAL;
    }
    if (api_json_bytes(req, check, "sortkey", true, &sk) < 0 ||
        api_json_bytes(req, check, "operand", false, &operand) < 0 ||
        !api_key_valid(req, &sk, false))
        return -CELLAR_EINVAL;
    int64_t iv;
    if (is_int_check(type) && cellar_parse_i64(operand.data, operand.len, &iv) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT",
                          "an int check takes a decimal int64 operand");
        return -CELLAR_EINVAL;
    }
    store_mutation_set_check(m, type, sk.data, sk.len, operand.data, operand.len, req->flag_arg);
    if (!body_ttl(req, doc, &ttl))
        return -CELLAR_EINVAL;
    return api_parse_row_ops(req, doc, m, ttl, &n);
}

void api_h_row_check_and_mutate(struct api_request *req)
{
    if (!api_encoding_param(req, &req->force_b64))
        return;
    struct api_bytes hk;
    if (!api_row_key(req, &hk))
        return;
    json_t *doc = api_json_body(req, false);
    if (!doc)
        return;
    struct store_mutation *m = store_mutation_new(hk.data, hk.len);
    int rc = api_parse_check_and_mutate(req, doc, m);
    json_decref(doc);
    if (rc < 0) {
        store_mutation_free(m);
        return;
    }
    api_row_write(req, &hk, m, cam_done);
}

/*
 * handlers_batch.c - many rows at once: batch-get (point reads in request
 * order), batch-write (one atomic mutation per row, rows committed in
 * parallel on their partitions' writers, one outcome per row) and the
 * full-table scan (partition by partition, stateless cursors).
 *
 * A scan page is bounded like a row page (limit, max_scan_cells examined,
 * expired and filtered cells included); its cursor is (partition, last key
 * examined), and the next page starts strictly after that key, so a scan
 * run to the end returns every cell that lived throughout exactly once.
 *
 * Threads: MHD workers.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "storage/keycodec.h"

/* --- Fan-out across nodes ------------------------------------------------ */

/* Which node serves each of n hashkeys of the held table t: when every one
 * is served here (or the request was relayed to us, or this node is its
 * own cluster), false. Otherwise true, with the nodes' addresses and, per
 * key, the index of its node. A partition without a primary ends t and
 * replies 503 (*failed). */
struct fan_plan {
    size_t n_nodes;
    char (*addrs)[REPL_ADDR_MAX];
    size_t *node_of;
};

static bool fan_plan(struct api_request *req, struct api_table *t, const struct api_bytes *hks,
                     size_t n, struct fan_plan *plan, bool *failed)
{
    *failed = false;
    if (!req->srv->cluster.cfg || req->forwarded)
        return false;
    const char *self = req->srv->cluster.cfg->advertise;
    plan->addrs = api_alloc(req, (n + 1) * sizeof(*plan->addrs));
    plan->node_of = api_alloc(req, (n + 1) * sizeof(*plan->node_of));
    plan->n_nodes = 0;
    bool remote = false;
    for (size_t i = 0; i < n; i++) {
        struct repl_route route;
        uint32_t part = repl_table_partition_of(t->table, hks[i].data, hks[i].len);
        repl_route(t->table, part, &route);
        if (route.kind == REPL_ROUTE_NO_PRIMARY) {
            api_table_end(t);
            api_reply_problem(req, 503, "NO_PRIMARY",
                              "partition %" PRIu32 " has no primary right now", part);
            *failed = true;
            return true;
        }
        const char *addr = route.kind == REPL_ROUTE_LOCAL ? self : route.primary;
        remote |= route.kind == REPL_ROUTE_REMOTE;
        size_t k = 0;
        while (k < plan->n_nodes && strcmp(plan->addrs[k], addr) != 0)
            k++;
        if (k == plan->n_nodes)
            snprintf(plan->addrs[plan->n_nodes++], REPL_ADDR_MAX, "%s", addr);
        plan->node_of[i] = k;
    }
    return remote;
}

/* The JSON text of doc, owned by the request. */
static const char *req_text(struct api_request *req, json_t *doc, size_t *len)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    *len = strlen(text);
    char *own = api_alloc(req, *len + 1);
    memcpy(own, text, *len + 1);
    free(text);
    return own;
}

/* A key object for a sub-request's body: the bytes in base64. */
static json_t *key_json(const struct api_bytes *hk, const struct api_bytes *sk)
{
    json_t *k = json_object();
    api_json_set_bytes(k, "hashkey", hk->data, hk->len, true);
    if (sk)
        api_json_set_bytes(k, "sortkey", sk->data, sk->len, true);
    return k;
}

/* Each node's answer to its part, parsed: the "results" arrays. NULL after
 * replying when one failed. */
static json_t **sub_results(struct api_request *req)
{
    json_t **res = api_alloc(req, req->n_subs * sizeof(*res));
    for (size_t i = 0; i < req->n_subs; i++)
        res[i] = NULL;
    for (size_t i = 0; i < req->n_subs; i++) {
        struct repl_forward *f = req->subs[i];
        if (api_sub_failed(req, f))
            goto fail;
        json_t *doc = json_loadb(f->body_out.data, f->body_out.len, 0, NULL);
        res[i] = json_incref(json_object_get(doc, "results"));
        json_decref(doc);
        if (!json_is_array(res[i])) {
            api_reply_problem(req, 500, "INTERNAL", "%s answered its part with no results",
                              f->addr);
            goto fail;
        }
    }
    return res;
fail:
    for (size_t i = 0; i < req->n_subs; i++)
        json_decref(res[i]);
    return NULL;
}

/* The per-key (or per-row) results in request order: item i is the next
 * result of its node's answer. */
static void merge_in_order(struct api_request *req, json_t **res, const size_t *node_of, size_t n)
{
    size_t *next = api_alloc(req, req->n_subs * sizeof(*next));
    memset(next, 0, req->n_subs * sizeof(*next));
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(res[node_of[i]], next[node_of[i]]++);
        json_array_append(out, r ? r : json_null());
    }
    for (size_t i = 0; i < req->n_subs; i++)
        json_decref(res[i]);
    api_reply_json(req, 200, json_pack("{s:o}", "results", out));
}

struct fan_order {
    const size_t *node_of;
    size_t n;
};

static void fan_merge(struct api_request *req)
{
    const struct fan_order *o = req->scratch;
    json_t **res = sub_results(req);
    if (res)
        merge_in_order(req, res, o->node_of, o->n);
}

/* Sends each node its part (bodies[k]) and merges the answers in the order
 * plan->node_of gives. */
static void fan_send(struct api_request *req, const struct fan_plan *plan, json_t **bodies,
                     size_t n_items)
{
    struct repl_forward **subs = api_alloc(req, plan->n_nodes * sizeof(*subs));
    for (size_t k = 0; k < plan->n_nodes; k++) {
        size_t len = 0;
        const char *text = req_text(req, bodies[k], &len);
        json_decref(bodies[k]);
        subs[k] = api_sub_new(req, plan->addrs[k], api_request_target(req), text, len);
    }
    struct fan_order *o = api_alloc(req, sizeof(*o));
    o->node_of = plan->node_of;
    o->n = n_items;
    req->scratch = o;
    api_fanout(req, subs, plan->n_nodes, fan_merge);
}

/* --- batch-get ---------------------------------------------------------- */

int api_parse_batch_get(struct api_request *req, json_t *doc, struct api_bytes **hks,
                        struct api_bytes **sks, size_t *n_keys)
{
    static const char *const fields[] = {"keys", NULL};
    static const char *const key_fields[] = {"hashkey", "hashkey_base64", "sortkey",
                                             "sortkey_base64", NULL};
    json_t *keys = json_object_get(doc, "keys");
    if (!api_json_only_fields(req, doc, fields))
        return -CELLAR_EINVAL;
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "keys is a non-empty array");
        return -CELLAR_EINVAL;
    }
    size_t n = json_array_size(keys);
    if (n > api_config(req)->max_batch_items) {
        api_reply_problem(req, 400, "TOO_MANY_ITEMS", "at most %zu keys",
                          api_config(req)->max_batch_items);
        return -CELLAR_ETOOMANY;
    }
    struct api_bytes *h = api_alloc(req, n * sizeof(*h));
    struct api_bytes *s = api_alloc(req, n * sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        json_t *k = json_array_get(keys, i);
        if (!json_is_object(k) || !api_json_only_fields(req, k, key_fields) ||
            api_json_bytes(req, k, "hashkey", true, &h[i]) < 0 ||
            api_json_bytes(req, k, "sortkey", true, &s[i]) < 0 ||
            !api_key_valid(req, &h[i], true) || !api_key_valid(req, &s[i], false)) {
            if (!json_is_object(k))
                api_reply_problem(req, 400, "INVALID_ARGUMENT", "each key is an object");
            return -CELLAR_EINVAL;
        }
    }
    *hks = h;
    *sks = s;
    *n_keys = n;
    return 0;
}

void api_h_batch_get(struct api_request *req)
{
    bool force_b64 = false;
    if (!api_encoding_param(req, &force_b64))
        return;
    json_t *doc = api_json_body(req, false);
    if (!doc)
        return;
    struct api_table t = {0};
    json_t *results = NULL;
    struct api_bytes *hks = NULL, *sks = NULL;
    size_t n = 0;
    if (api_parse_batch_get(req, doc, &hks, &sks, &n) < 0 || !api_table_begin(req, &t))
        goto out;
    struct fan_plan plan;
    bool failed;
    if (fan_plan(req, &t, hks, n, &plan, &failed)) {
        if (failed)
            goto out;
        api_table_end(&t);
        json_t **bodies = api_alloc(req, plan.n_nodes * sizeof(*bodies));
        for (size_t k = 0; k < plan.n_nodes; k++)
            bodies[k] = json_pack("{s:[]}", "keys");
        for (size_t i = 0; i < n; i++)
            json_array_append_new(json_object_get(bodies[plan.node_of[i]], "keys"),
                                  key_json(&hks[i], &sks[i]));
        fan_send(req, &plan, bodies, n);
        goto out;
    }
    uint32_t now_s = api_now_s();
    results = json_array();
    for (size_t i = 0; i < n; i++) {
        uint32_t part = repl_table_partition_of(t.table, hks[i].data, hks[i].len);
        struct store_partition *p = api_read_gate(req, &t, part, false);
        if (!p)
            goto out;
        struct store_cell c;
        int rc = store_get(p, hks[i].data, hks[i].len, sks[i].data, sks[i].len, now_s, &c);
        if (rc < 0 && rc != -CELLAR_ENOTFOUND) {
            api_table_end(&t);
            api_reply_error(req, rc, "cannot read: %s", cellar_strerror(rc));
            goto out;
        }
        json_t *r = json_object();
        api_json_set_bytes(r, "hashkey", hks[i].data, hks[i].len, force_b64);
        api_json_set_bytes(r, "sortkey", sks[i].data, sks[i].len, force_b64);
        json_object_set_new(r, "found", json_boolean(rc == 0));
        if (rc == 0) {
            api_json_set_bytes(r, "value", c.value, c.value_len, force_b64);
            json_object_set_new(r, "etag", json_sprintf("%" PRIu64, c.hdr.version));
            store_cell_release(&c);
        }
        json_array_append_new(results, r);
    }
    api_table_end(&t);
    api_reply_json(req, 200, json_pack("{s:o}", "results", results));
    results = NULL;
out:
    json_decref(results);
    json_decref(doc);
}

/* --- batch-write -------------------------------------------------------- */

/* Per-request state: the rows in order of first appearance. */
struct batch_rows {
    struct api_bytes *hks;
    size_t n;
    bool force_b64;
};

static void batch_write_done(struct api_request *req)
{
    struct batch_rows *rows = (struct batch_rows *)req->scratch;
    json_t *results = json_array();
    for (size_t i = 0; i < rows->n; i++) {
        const struct api_write_result *w = &req->writes[i];
        json_t *r = json_object();
        api_json_set_bytes(r, "hashkey", rows->hks[i].data, rows->hks[i].len, rows->force_b64);
        int err = w->status < 0 ? w->status : w->outcome.error;
        if (err == 0) {
            json_object_set_new(r, "status", json_integer(200));
        } else {
            unsigned status;
            const char *code;
            api_error_status(err, &status, &code);
            json_object_set_new(r, "status", json_integer(status));
            json_object_set_new(r, "code", json_string(code));
        }
        json_array_append_new(results, r);
    }
    api_reply_json(req, 200, json_pack("{s:o}", "results", results));
}

/* One parsed item of a batch-write. */
struct batch_item {
    struct api_bytes hk, sk, val;
    int64_t ttl;
    bool is_set;
    size_t row;
};

/* The index of hk among rows, adding it when new. */
static size_t row_index(struct batch_rows *rows, const struct api_bytes *hk)
{
    for (size_t i = 0; i < rows->n; i++) {
        if (rows->hks[i].len == hk->len && memcmp(rows->hks[i].data, hk->data, hk->len) == 0)
            return i;
    }
    rows->hks[rows->n] = *hk;
    return rows->n++;
}

int api_parse_batch_write(struct api_request *req, json_t *doc, struct api_bytes **hks,
                          struct store_mutation ***mutations, size_t *n_rows)
{
    static const char *const fields[] = {"set", "delete", NULL};
    static const char *const del_fields[] = {"hashkey", "hashkey_base64", "sortkey",
                                             "sortkey_base64", NULL};
    static const char *const set_fields[] = {
        "hashkey", "hashkey_base64", "sortkey", "sortkey_base64",
        "value",   "value_base64",   "ttl",     NULL};
    const struct api_config *cfg = api_config(req);
    struct batch_rows rows = {0};
    struct store_mutation **muts = NULL;
    json_t *sets = json_object_get(doc, "set"), *dels = json_object_get(doc, "delete");
    size_t n = json_array_size(sets) + json_array_size(dels);
    int rc = -CELLAR_EINVAL;
    if (!api_json_only_fields(req, doc, fields))
        goto out;
    if ((sets && !json_is_array(sets)) || (dels && !json_is_array(dels))) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "set and delete are arrays");
        goto out;
    }
    if (n > cfg->max_batch_items) {
        api_reply_problem(req, 400, "TOO_MANY_ITEMS", "at most %zu items", cfg->max_batch_items);
        rc = -CELLAR_ETOOMANY;
        goto out;
    }
    rows.hks = api_alloc(req, (n ? n : 1) * sizeof(*rows.hks));
    muts = cellar_xcalloc(n ? n : 1, sizeof(*muts));
    /* Parse and check everything first, registering rows in order of first
     * appearance in "set", then in "delete". */
    struct batch_item *items = api_alloc(req, n * sizeof(*items));
    size_t k = 0;
    for (int pass = 0; pass < 2; pass++) {
        bool is_set = pass == 0;
        size_t i;
        json_t *item;
        json_array_foreach(is_set ? sets : dels, i, item)
        {
            struct batch_item *it = &items[k++];
            it->is_set = is_set;
            it->ttl = 0;
            bool ok = json_is_object(item) &&
                      api_json_only_fields(req, item, is_set ? set_fields : del_fields) &&
                      api_json_bytes(req, item, "hashkey", true, &it->hk) >= 0 &&
                      api_json_bytes(req, item, "sortkey", true, &it->sk) >= 0 &&
                      (!is_set || api_json_bytes(req, item, "value", true, &it->val) >= 0) &&
                      (!is_set || api_json_int(req, item, "ttl", 0, INT32_MAX, &it->ttl)) &&
                      api_key_valid(req, &it->hk, true) && api_key_valid(req, &it->sk, false);
            if (!ok) {
                if (!json_is_object(item))
                    api_reply_problem(req, 400, "INVALID_ARGUMENT", "each item is an object");
                goto out;
            }
            if (is_set && it->val.len > cfg->max_value_bytes) {
                api_reply_problem(req, 413, "TOO_LARGE", "a value is at most %zu bytes",
                                  cfg->max_value_bytes);
                rc = -CELLAR_ETOOLARGE;
                goto out;
            }
            it->row = row_index(&rows, &it->hk);
        }
    }
    /* Deletes before sets, as in a row PATCH: a cell in both ends up set. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            struct batch_item *it = &items[i];
            if (it->is_set != (pass == 1))
                continue;
            if (!muts[it->row])
                muts[it->row] = store_mutation_new(it->hk.data, it->hk.len);
            if (it->is_set)
                store_mutation_put(muts[it->row], it->sk.data, it->sk.len, it->val.data,
                                   it->val.len, NULL, 0, it->ttl);
            else
                store_mutation_delete(muts[it->row], it->sk.data, it->sk.len);
        }
    }
    *hks = rows.hks;
    *mutations = muts;
    *n_rows = rows.n;
    muts = NULL;
    rc = 0;
out:
    for (size_t i = 0; muts && i < n; i++)
        store_mutation_free(muts[i]);
    free(muts);
    return rc;
}

void api_h_batch_write(struct api_request *req)
{
    struct batch_rows *rows = api_alloc(req, sizeof(*rows));
    memset(rows, 0, sizeof(*rows));
    req->scratch = rows;
    if (!api_encoding_param(req, &rows->force_b64))
        return;
    json_t *doc = api_json_body(req, false);
    if (!doc)
        return;
    struct api_table t = {0};
    struct store_mutation **muts = NULL;
    if (api_parse_batch_write(req, doc, &rows->hks, &muts, &rows->n) < 0 ||
        !api_table_begin(req, &t))
        goto out;
    struct fan_plan plan;
    bool failed;
    if (fan_plan(req, &t, rows->hks, rows->n, &plan, &failed)) {
        if (failed)
            goto out;
        api_table_end(&t);
        /* Each node gets its rows' items, in their order: its answer lists
         * its rows in the same relative order as ours. */
        json_t **bodies = api_alloc(req, plan.n_nodes * sizeof(*bodies));
        for (size_t k = 0; k < plan.n_nodes; k++)
            bodies[k] = json_pack("{s:[], s:[]}", "set", "delete");
        for (int pass = 0; pass < 2; pass++) {
            const char *list = pass == 0 ? "set" : "delete";
            size_t i;
            json_t *item;
            json_array_foreach(json_object_get(doc, list), i, item)
            {
                struct api_bytes hk;
                api_json_bytes(req, item, "hashkey", true, &hk); /* parsed before: valid */
                size_t r = 0;
                while (r < rows->n && (rows->hks[r].len != hk.len ||
                                       memcmp(rows->hks[r].data, hk.data, hk.len) != 0))
                    r++;
                json_array_append(json_object_get(bodies[plan.node_of[r]], list), item);
            }
        }
        fan_send(req, &plan, bodies, rows->n);
        goto out;
    }
    for (size_t r = 0; r < rows->n; r++)
        store_mutation_default_ttl(muts[r], repl_table_meta(t.table)->default_ttl_s);
    if (rows->n == 0) {
        /* Nothing to write: a no-op, no decree used. */
        api_table_end(&t);
        batch_write_done(req);
        goto out;
    }
    if (!api_admit_writes(req, &t, rows->n))
        goto out;
    uint32_t *parts = api_alloc(req, rows->n * sizeof(*parts));
    for (size_t r = 0; r < rows->n; r++) {
        parts[r] = repl_table_partition_of(t.table, rows->hks[r].data, rows->hks[r].len);
        if (!api_write_ready(req, &t, parts[r]))
            goto out; /* held: nothing was written */
    }
    api_defer_writes(req, &t, rows->n, parts, muts, batch_write_done);
    memset(muts, 0, rows->n * sizeof(*muts)); /* the writers have them now */
out:
    for (size_t i = 0; muts && i < rows->n; i++)
        store_mutation_free(muts[i]);
    free(muts);
    json_decref(doc);
}

/* --- scan --------------------------------------------------------------- */

static bool has_prefix(const char *s, size_t len, const struct api_bytes *p)
{
    return p->len <= len && memcmp(s, p->data, p->len) == 0;
}

/* A scan page. It walks the partitions in order from the cursor's; a
 * partition this node serves is read here; one that another node serves
 * is asked of it (that partition alone, at most the cells still wanted,
 * the client's cursor when it is in that partition), and the page goes on
 * with the next partition once that node's part is exhausted. So a page
 * may gather cells from several nodes; its cursor is the position where
 * it stopped, whichever node holds it. A request another node relays
 * reads only what is here. */
struct scan_page {
    bool values, force_b64;
    int64_t limit;
    struct api_bytes hkp, skp;
    uint32_t part, last_part;
    struct api_cursor cur; /* the client's, when it had one (has_cur) */
    bool has_cur;
    json_t *items;
    size_t examined, returned;
    uint64_t deadline_ms;
};

static void scan_reply(struct api_request *req, struct scan_page *sp, const char *next)
{
    json_t *doc = json_pack("{s:O}", "items", sp->items);
    json_object_set_new(doc, "next_cursor", next ? json_string(next) : json_null());
    api_reply_json(req, 200, doc);
}

static void scan_run(struct api_request *req);

/* The answer of the node asked for one partition: its cells join the
 * page; the page ends with its cursor, or goes on after the partition. */
static void scan_hop_done(struct api_request *req)
{
    struct scan_page *sp = req->scratch;
    struct repl_forward *f = req->subs[0];
    if (api_sub_failed(req, f))
        return;
    json_t *doc = json_loadb(f->body_out.data, f->body_out.len, 0, NULL);
    json_t *items = json_object_get(doc, "items"), *next = json_object_get(doc, "next_cursor");
    if (!json_is_array(items)) {
        json_decref(doc);
        api_reply_problem(req, 500, "INTERNAL", "%s answered a scan with no page", f->addr);
        return;
    }
    sp->returned += json_array_size(items);
    json_array_extend(sp->items, items);
    if (json_is_string(next)) {
        size_t len = json_string_length(next);
        char *c = api_alloc(req, len + 1);
        memcpy(c, json_string_value(next), len + 1);
        json_decref(doc);
        scan_reply(req, sp, c);
        return;
    }
    json_decref(doc);
    if (sp->part == sp->last_part) {
        scan_reply(req, sp, NULL);
        return;
    }
    sp->part++;
    sp->has_cur = false;
    scan_run(req);
}

static void scan_hop(struct api_request *req, struct scan_page *sp, const char *addr)
{
    static const char *const dropped[] = {"partition", "cursor", "limit", NULL};
    struct cellar_buf extra = {0};
    cellar_buf_printf(&extra, "partition=%" PRIu32 "&limit=%lld", sp->part,
                      (long long)(sp->limit - (int64_t)sp->returned));
    if (sp->has_cur) {
        bool present;
        const char *c = api_query_raw(req, "cursor", &present);
        cellar_buf_printf(&extra, "&cursor=%s", c ? c : "");
    }
    cellar_buf_append_byte(&extra, 0);
    char *target = api_request_target_with(req, dropped, extra.data);
    cellar_buf_fini(&extra);
    struct repl_forward **subs = api_alloc(req, sizeof(*subs));
    subs[0] = api_sub_new(req, addr, target, NULL, 0);
    api_fanout(req, subs, 1, scan_hop_done);
}

/* Reads partitions here from sp->part until the page is full, the work
 * bound is reached, the table ends, or a partition is elsewhere. */
static void scan_run(struct api_request *req)
{
    struct scan_page *sp = req->scratch;
    struct api_table t;
    if (!api_table_begin(req, &t))
        return;
    uint32_t now_s = api_now_s();
    const char *next = NULL;
    int rc = 0;
    for (; sp->part <= sp->last_part && rc >= 0 && !next; sp->part++) {
        if (sp->returned >= (size_t)sp->limit) {
            /* Full with the last partition's cells: the page ends here. */
            next = api_cursor_encode(req, API_CURSOR_SCAN, sp->part, NULL, 0);
            break;
        }
        struct repl_route route;
        repl_route(t.table, sp->part, &route);
        if (route.kind == REPL_ROUTE_REMOTE && req->srv->cluster.cfg && !req->forwarded) {
            api_table_end(&t);
            scan_hop(req, sp, route.primary);
            return;
        }
        struct store_partition *p = api_read_gate(req, &t, sp->part, false);
        if (!p)
            return;
        struct store_iter *it = NULL;
        /* The client's cursor, in its partition only: at or after its key. */
        bool from = sp->has_cur && sp->cur.key_len;
        rc = store_iter_partition(p, from ? sp->cur.key : NULL, from ? sp->cur.key_len : 0, NULL, 0,
                                  now_s, &it);
        sp->has_cur = false;
        struct store_item item;
        bool stop = false;
        while (rc >= 0 && (rc = store_iter_next(it, &item)) == 1) {
            sp->examined++;
            if (!item.expired && has_prefix(item.hk, item.hklen, &sp->hkp) &&
                has_prefix(item.sk, item.sklen, &sp->skp)) {
                json_t *cell = api_cell_json(item.sk, item.sklen, item.value, item.value_len,
                                             &item.hdr, sp->values, sp->force_b64);
                api_json_set_bytes(cell, "hashkey", item.hk, item.hklen, sp->force_b64);
                json_object_del(cell, "etag");
                json_array_append_new(sp->items, cell);
                sp->returned++;
            }
            if (sp->returned == (size_t)sp->limit ||
                api_page_exhausted(req, sp->examined, sp->deadline_ms)) {
                stop = true;
                break;
            }
        }
        if (stop) {
            struct cellar_buf last = {0}, following = {0};
            store_key_encode(&last, item.hk, item.hklen, item.sk, item.sklen);
            rc = store_iter_next(it, &item);
            if (rc == 1) {
                store_key_encode(&following, item.hk, item.hklen, item.sk, item.sklen);
                size_t n = api_cursor_boundary(last.data, last.len, following.data, following.len);
                next = api_cursor_encode(req, API_CURSOR_SCAN, sp->part, following.data, n);
            } else if (rc == 0 && sp->part < sp->last_part) {
                next = api_cursor_encode(req, API_CURSOR_SCAN, sp->part + 1, NULL, 0);
            }
            cellar_buf_fini(&last);
            cellar_buf_fini(&following);
        }
        store_iter_free(it);
    }
    api_table_end(&t);
    if (rc < 0) {
        api_reply_error(req, rc, "cannot scan: %s", cellar_strerror(rc));
        return;
    }
    scan_reply(req, sp, next);
}

void api_h_scan(struct api_request *req)
{
    const struct api_config *cfg = api_config(req);
    struct scan_page *sp = api_alloc(req, sizeof(*sp));
    memset(sp, 0, sizeof(*sp));
    sp->values = true;
    sp->limit = 100;
    sp->hkp = (struct api_bytes){"", 0};
    sp->skp = (struct api_bytes){"", 0};
    int64_t only = -1;
    struct api_bytes ctext;
    if (!api_encoding_param(req, &sp->force_b64))
        return;
    if (api_query_bool(req, "values", true, &sp->values) < 0 ||
        api_query_i64(req, "limit", 100, 1, (int64_t)cfg->max_page_cells, &sp->limit) < 0 ||
        api_query_i64(req, "partition", -1, 0, REPL_PARTITIONS_MAX - 1, &only) < 0 ||
        api_query(req, "hashkey_prefix", &sp->hkp) < 0 ||
        api_query(req, "sortkey_prefix", &sp->skp) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT",
                          "values is true or false, limit 1..%zu, partition a partition index",
                          cfg->max_page_cells);
        return;
    }
    int crc = api_query(req, "cursor", &ctext);
    if (crc < 0 || (crc == 1 &&
                    api_cursor_decode(req, ctext.data, ctext.len, API_CURSOR_SCAN, &sp->cur) < 0)) {
        api_reply_problem(req, 400, "INVALID_CURSOR", "the cursor is not one this API issued");
        return;
    }
    sp->has_cur = crc == 1;
    struct api_table t;
    if (!api_table_begin(req, &t))
        return;
    uint32_t count = repl_table_meta(t.table)->partition_count;
    api_table_end(&t);
    if (only >= (int64_t)count ||
        (sp->has_cur && api_cursor_scan_check(&sp->cur, count, only) < 0)) {
        api_reply_problem(req, 400, only >= (int64_t)count ? "INVALID_ARGUMENT" : "INVALID_CURSOR",
                          "the partition is not one of this table's %u", count);
        return;
    }
    sp->part = sp->has_cur ? sp->cur.partition : only >= 0 ? (uint32_t)only : 0;
    sp->last_part = only >= 0 ? (uint32_t)only : count - 1;
    sp->deadline_ms = cellar_mono_ms() + cfg->max_scan_ms;
    sp->items = req->held = json_array(); /* the request's: freed with it */
    req->scratch = sp;
    scan_run(req);
}

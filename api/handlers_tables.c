/*
 * handlers_tables.c - table endpoints: list, create, get (with partitions),
 * drop (soft or purge) and recall.
 *
 * Create, drop and recall open, close and fsync RocksDB files, so they run
 * on the admin thread (api_defer_admin); list and get read the registry in
 * place. Request bodies are validated completely before anything is
 * queued: unknown fields, wrong types and out-of-range numbers are 400.
 *
 * Threads: handlers and completions on MHD workers; *_admin functions on
 * the admin thread.
 */
#include <string.h>

#include "api/internal.h"

json_t *api_table_json(const struct repl_table_meta *m)
{
    json_t *envs = json_object();
    for (size_t i = 0; i < m->n_envs; i++)
        json_object_set_new(envs, m->envs[i].key, json_string(m->envs[i].value));
    json_t *doc = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:s, s:o}", "name", m->name, "id", (json_int_t)m->id,
        "partition_count", (json_int_t)m->partition_count, "replica_count",
        (json_int_t)m->replica_count, "default_ttl", (json_int_t)m->default_ttl_s, "status",
        m->status == REPL_TABLE_AVAILABLE ? "available" : "dropped", "envs", envs);
    if (m->status == REPL_TABLE_DROPPED)
        json_object_set_new(doc, "drop_time_ms", json_integer((json_int_t)m->drop_time_ms));
    return doc;
}

/* Copies the table name segment into dst; replies 400 and returns false
 * when it is not a valid name. */
/* The arguments and result of an admin call, allocated by the first use:
 * they are large (a table's envs), and only table requests need them. */
static struct api_admin_args *adm(struct api_request *req)
{
    if (!req->adm) {
        req->adm = api_alloc(req, sizeof(*req->adm));
        memset(req->adm, 0, sizeof(*req->adm));
    }
    return req->adm;
}

static bool table_name(struct api_request *req, char *dst)
{
    const struct api_bytes *seg = &req->segs[API_SEG_TABLE];
    if (!repl_table_name_valid(seg->data, seg->len)) {
        api_reply_problem(req, 400, "INVALID_TABLE_NAME",
                          "a table name is 1 to 128 characters of A-Z a-z 0-9 _ . -");
        return false;
    }
    memcpy(dst, seg->data, seg->len);
    dst[seg->len] = '\0';
    return true;
}

/* --- List and get ------------------------------------------------------- */

void api_h_tables_list(struct api_request *req)
{
    bool dropped = false;
    if (api_query_bool(req, "include_dropped", false, &dropped) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "include_dropped must be true or false");
        return;
    }
    struct repl_table_meta *list = NULL;
    size_t n = 0;
    repl_table_list(api_registry(req), dropped, &list, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (api_table_visible(req, list[i].name, strlen(list[i].name)))
            json_array_append_new(arr, api_table_json(&list[i]));
    }
    free(list);
    api_reply_json(req, 200, json_pack("{s:o}", "tables", arr));
}

/* In a cluster, each partition's last committed decree is known exactly
 * on its primary's node: the table as each other primary's node sees it
 * gives its partitions' figures (a node that does not answer leaves its
 * partitions at what this node knows). */
static void table_get_merge(struct api_request *req)
{
    json_t *doc = req->scratch;
    json_t *parts = json_object_get(doc, "partitions");
    for (size_t k = 0; k < req->n_subs; k++) {
        const struct repl_forward *f = req->subs[k];
        if (f->error || f->status != 200)
            continue;
        json_t *theirs = json_loadb(f->body_out.data, f->body_out.len, 0, NULL);
        json_t *tparts = json_object_get(theirs, "partitions");
        size_t i;
        json_t *p;
        json_array_foreach(parts, i, p)
        {
            json_t *tp = json_array_get(tparts, i);
            const char *primary = json_string_value(json_object_get(p, "primary"));
            if (tp && primary && strcmp(primary, f->addr) == 0)
                json_object_set(p, "last_committed", json_object_get(tp, "last_committed"));
        }
        json_decref(theirs);
    }
    api_reply_json(req, 200, json_incref(doc));
}

void api_h_table_get(struct api_request *req)
{
    char name[REPL_TABLE_NAME_MAX + 1];
    if (!table_name(req, name))
        return;
    struct repl_table *t = NULL;
    if (repl_table_acquire(api_registry(req), name, &t) < 0) {
        api_reply_problem(req, 404, "TABLE_NOT_FOUND", "no table named %s", name);
        return;
    }
    const struct repl_table_meta *m = repl_table_meta(t);
    json_t *doc = api_table_json(m);
    json_t *parts = json_array();
    char self[300];
    api_node_address(req, self, sizeof(self));
    char(*others)[REPL_ADDR_MAX] = api_alloc(req, (m->partition_count + 1) * sizeof(*others));
    size_t n_others = 0;
    for (uint32_t i = 0; i < m->partition_count; i++) {
        struct repl_config c;
        uint64_t committed = 0;
        repl_table_config(t, i, &c, &committed);
        json_t *secs = json_array();
        for (size_t k = 0; k < c.n_secondaries; k++)
            json_array_append_new(secs, json_string(c.secondaries[k]));
        json_t *part = json_pack("{s:I, s:I, s:s, s:o, s:I}", "index", (json_int_t)i, "ballot",
                                 (json_int_t)c.ballot, "primary", c.primary[0] ? c.primary : self,
                                 "secondaries", secs, "last_committed", (json_int_t)committed);
        if (c.learner[0])
            json_object_set_new(part, "learners", json_pack("[s]", c.learner));
        json_array_append_new(parts, part);
        size_t k = 0;
        while (c.primary[0] && strcmp(c.primary, self) != 0 && k < n_others &&
               strcmp(others[k], c.primary) != 0)
            k++;
        if (c.primary[0] && strcmp(c.primary, self) != 0 && k == n_others)
            snprintf(others[n_others++], REPL_ADDR_MAX, "%s", c.primary);
    }
    repl_table_release(api_registry(req), t);
    json_object_set_new(doc, "partitions", parts);
    if (n_others == 0 || req->forwarded || !req->srv->cluster.forwarder) {
        api_reply_json(req, 200, doc);
        return;
    }
    struct repl_forward **subs = api_alloc(req, n_others * sizeof(*subs));
    for (size_t k = 0; k < n_others; k++)
        subs[k] = api_sub_new(req, others[k], api_request_target(req), NULL, 0);
    req->scratch = req->held = doc; /* the request's: freed with it */
    api_fanout(req, subs, n_others, table_get_merge);
}

/* --- Create ------------------------------------------------------------- */

/* The envs object of a create, or of a PATCH (patch: null removes an env,
 * kept as an empty value), into the request's spec. Keys are 1..256 bytes,
 * values strings of at most 256 bytes (at least 1 in a PATCH), neither
 * holding NUL: envs are names and settings, not data. Replies 400 and
 * returns false otherwise. */
static bool parse_envs(struct api_request *req, json_t *envs, bool patch)
{
    if (!json_is_object(envs) || json_object_size(envs) > REPL_ENVS_MAX) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "envs is an object of at most %d strings%s",
                          REPL_ENVS_MAX, patch ? " (null removes one)" : "");
        return false;
    }
    struct repl_table_spec *spec = &adm(req)->spec;
    const char *k;
    json_t *v;
    json_object_foreach(envs, k, v)
    {
        bool is_str = json_is_string(v);
        size_t klen = strlen(k), vlen = is_str ? json_string_length(v) : 0;
        if ((!is_str && !(patch && json_is_null(v))) || klen == 0 || klen > REPL_ENV_BYTES_MAX ||
            vlen > REPL_ENV_BYTES_MAX || (is_str && patch && vlen == 0) ||
            (is_str && memchr(json_string_value(v), '\0', vlen))) {
            api_reply_problem(req, 400, "INVALID_ARGUMENT",
                              "env \"%.64s\" must be a%s string of at most %d bytes without NUL%s",
                              k, patch ? " non-empty" : "", REPL_ENV_BYTES_MAX,
                              patch ? ", or null to remove it" : "");
            return false;
        }
        struct repl_env *e = &spec->envs[spec->n_envs++];
        memcpy(e->key, k, klen + 1);
        memcpy(e->value, is_str ? json_string_value(v) : "", vlen + 1);
    }
    return true;
}

/* In a cluster, table changes are the meta server's: a node that is not
 * relays them there (one hop). Returns true when the request went (or was
 * refused), false when this node makes the change itself. */
static bool to_meta(struct api_request *req)
{
    const struct api_cluster *c = &req->srv->cluster;
    if (!c->cfg || c->meta)
        return false;
    if (req->forwarded)
        api_reply_problem(req, 503, "META_UNAVAILABLE", "this node is not the meta server");
    else
        api_forward_to(req, c->cfg->meta_servers[0], "META_UNAVAILABLE",
                       API_TABLE_CHANGE_TIMEOUT_MS);
    return true;
}

static void create_admin(struct api_request *req)
{
    adm(req)->spec.name = adm(req)->name_arg;
    struct repl_meta *meta = req->srv->cluster.meta;
    req->status = meta ? repl_meta_table_create(meta, &adm(req)->spec, &adm(req)->table)
                       : repl_table_create(api_registry(req), &adm(req)->spec, &adm(req)->table);
}

static void create_done(struct api_request *req)
{
    if (req->status == -CELLAR_EEXIST) {
        api_reply_problem(req, 409, "TABLE_EXISTS", "a table named %s exists", adm(req)->name_arg);
        return;
    }
    if (req->status < 0) {
        api_reply_error(req, req->status, "cannot create table %s: %s", adm(req)->name_arg,
                        cellar_strerror(req->status));
        return;
    }
    json_t *doc = api_table_json(&adm(req)->table);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct MHD_Response *resp = api_response(req, strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    char loc[200];
    snprintf(loc, sizeof(loc), "/v1/tables/%s", adm(req)->table.name);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, loc);
    api_reply_response(req, 201, resp);
}

void api_h_table_put(struct api_request *req)
{
    static const char *const fields[] = {"partition_count", "replica_count", "default_ttl", "envs",
                                         NULL};
    if (!table_name(req, adm(req)->name_arg))
        return;
    if (to_meta(req))
        return;
    json_t *doc = api_json_body(req, true);
    if (!doc)
        return;
    int64_t pc = 0, rc = 0, ttl = 0;
    bool ok = api_json_only_fields(req, doc, fields) &&
              api_json_int(req, doc, "partition_count", 1, REPL_PARTITIONS_MAX, &pc) &&
              api_json_int(req, doc, "replica_count", 1, REPL_REPLICAS_MAX, &rc) &&
              api_json_int(req, doc, "default_ttl", 0, INT32_MAX, &ttl);
    if (ok && pc && (pc & (pc - 1)) != 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "partition_count must be a power of two");
        ok = false;
    }
    json_t *envs = json_object_get(doc, "envs");
    if (ok && envs && !json_is_null(envs))
        ok = parse_envs(req, envs, false);
    json_decref(doc);
    if (!ok)
        return;
    size_t data_nodes = req->srv->cluster.cfg ? repl_registry_data_nodes(api_registry(req)) : 0;
    if (req->srv->cluster.cfg && (uint64_t)rc > data_nodes) {
        api_reply_problem(req, 400, "NOT_ENOUGH_NODES",
                          "replica_count %lld is more than the %zu data nodes alive", (long long)rc,
                          data_nodes);
        return;
    }
    adm(req)->spec.partition_count = (uint32_t)pc;
    adm(req)->spec.replica_count = (uint32_t)rc;
    adm(req)->spec.default_ttl_s = ttl;
    api_defer_admin(req, create_admin, create_done);
}

/* --- Drop and recall ---------------------------------------------------- */

static void drop_admin(struct api_request *req)
{
    struct repl_meta *meta = req->srv->cluster.meta;
    req->status =
        meta ? repl_meta_table_drop(meta, adm(req)->name_arg, req->flag_arg, &adm(req)->table)
             : repl_table_drop(api_registry(req), adm(req)->name_arg, req->flag_arg,
                               &adm(req)->table);
}

static void table_done(struct api_request *req)
{
    if (req->status == -CELLAR_ENOTFOUND) {
        api_reply_problem(req, 404, "TABLE_NOT_FOUND", "no table named %s", adm(req)->name_arg);
        return;
    }
    if (req->status == -CELLAR_EEXIST) {
        api_reply_problem(req, 409, "TABLE_EXISTS", "a table named %s exists; give a new_name",
                          adm(req)->name_arg2[0] ? adm(req)->name_arg2 : adm(req)->name_arg);
        return;
    }
    if (req->status < 0) {
        api_reply_error(req, req->status, "%s", cellar_strerror(req->status));
        return;
    }
    api_reply_json(req, 200, api_table_json(&adm(req)->table));
}

void api_h_table_delete(struct api_request *req)
{
    if (!table_name(req, adm(req)->name_arg))
        return;
    if (to_meta(req))
        return;
    if (api_query_bool(req, "purge", false, &req->flag_arg) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "purge must be true or false");
        return;
    }
    api_defer_admin(req, drop_admin, table_done);
}

static void recall_admin(struct api_request *req)
{
    struct repl_meta *meta = req->srv->cluster.meta;
    const char *new_name = adm(req)->name_arg2[0] ? adm(req)->name_arg2 : NULL;
    req->status =
        meta ? repl_meta_table_recall(meta, adm(req)->name_arg, new_name, &adm(req)->table)
             : repl_table_recall(api_registry(req), adm(req)->name_arg, new_name, &adm(req)->table);
}

void api_h_table_recall(struct api_request *req)
{
    static const char *const fields[] = {"new_name", NULL};
    if (!table_name(req, adm(req)->name_arg))
        return;
    if (to_meta(req))
        return;
    json_t *doc = api_json_body(req, true);
    if (!doc)
        return;
    bool ok = api_json_only_fields(req, doc, fields);
    json_t *nn = json_object_get(doc, "new_name");
    if (ok && nn && !json_is_null(nn)) {
        if (!json_is_string(nn) ||
            !repl_table_name_valid(json_string_value(nn), json_string_length(nn))) {
            api_reply_problem(req, 400, "INVALID_TABLE_NAME",
                              "new_name must be 1 to 128 characters of A-Z a-z 0-9 _ . -");
            ok = false;
        } else {
            snprintf(adm(req)->name_arg2, sizeof(adm(req)->name_arg2), "%s", json_string_value(nn));
        }
    }
    json_decref(doc);
    if (ok)
        api_defer_admin(req, recall_admin, table_done);
}

/* --- PATCH and compact -------------------------------------------------- */

static void patch_admin(struct api_request *req)
{
    struct repl_meta *meta = req->srv->cluster.meta;
    struct api_admin_args *a = adm(req);
    req->status =
        meta ? repl_meta_table_update(meta, a->name_arg, req->flag_arg, a->spec.default_ttl_s,
                                      a->spec.n_envs, a->spec.envs, &a->table)
             : repl_table_update(api_registry(req), a->name_arg, req->flag_arg,
                                 a->spec.default_ttl_s, a->spec.n_envs, a->spec.envs, &a->table);
}

static void patch_done(struct api_request *req)
{
    if (req->status == -CELLAR_EINVAL) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT",
                          "write_rate_limit is a decimal >= 0 and read_only true or false; at "
                          "most %d envs",
                          REPL_ENVS_MAX);
        return;
    }
    table_done(req);
}

void api_h_table_patch(struct api_request *req)
{
    static const char *const fields[] = {"default_ttl", "envs", NULL};
    if (!table_name(req, adm(req)->name_arg))
        return;
    if (to_meta(req))
        return;
    json_t *doc = api_json_body(req, false);
    if (!doc)
        return;
    int64_t ttl = -1;
    bool ok = api_json_only_fields(req, doc, fields) &&
              api_json_int(req, doc, "default_ttl", 0, INT32_MAX, &ttl);
    req->flag_arg = ttl >= 0;
    adm(req)->spec.default_ttl_s = ttl;
    json_t *envs = json_object_get(doc, "envs");
    if (ok && envs)
        ok = parse_envs(req, envs, true);
    json_decref(doc);
    if (ok)
        api_defer_admin(req, patch_admin, patch_done);
}

static void compact_admin(struct api_request *req)
{
    req->status = repl_table_compact(api_registry(req), adm(req)->name_arg);
    if (req->status == 0 && req->srv->cluster.meta)
        repl_meta_compact_everywhere(req->srv->cluster.meta, adm(req)->name_arg);
}

static void compact_done(struct api_request *req)
{
    if (req->status == 0) {
        api_reply_json(req, 202, json_pack("{s:s}", "status", "compacted"));
        return;
    }
    table_done(req);
}

void api_h_table_compact(struct api_request *req)
{
    if (table_name(req, adm(req)->name_arg) && !to_meta(req))
        api_defer_admin(req, compact_admin, compact_done);
}

/*
 * handlers_internal.c - what the nodes of a cluster ask of each other,
 * under /internal/ (the cluster secret only, access.c):
 *
 *   POST /internal/v1/beacon   to meta: a node's beacon; the answer may
 *                              carry the map (replication/meta.h)
 *   POST /internal/v1/map      to a node: meta's map, applied at once
 *   POST /internal/v1/compact  to a node: compact its replicas of a table
 *   POST /internal/v1/prepare  to a secondary: its primary's group to log,
 *                              or a heartbeat (a binary body:
 *                              replication/replica.h)
 *   POST /internal/v1/propose  to meta: a replica asks for its partition's
 *                              next configuration (replication/meta.h)
 *   POST /internal/v1/learn    to a learner: copy a checkpoint of the
 *                              primary's (replication/learn.h)
 *   POST /internal/v1/checkpoints            to the primary: make one
 *   GET  /internal/v1/checkpoints/{n}/{file} one of its files
 *   DELETE /internal/v1/checkpoints/{n}      the learner has its copy
 *
 * Bodies are JSON. The map, compaction and checkpoints block (RocksDB
 * opens, closes, compactions, flushes) and run on the admin thread; beacons are quick and answer
 * on the worker.
 *
 * Threads: MHD workers and the admin thread.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "replication/learn.h"

#include "api/internal.h"

/* The JSON body of a call only the meta server answers; NULL after a
 * reply (503 META_UNAVAILABLE on another node, 400 for a bad body). */
static json_t *meta_body(struct api_request *req)
{
    if (!req->srv->cluster.meta) {
        api_reply_problem(req, 503, "META_UNAVAILABLE", "this node is not the meta server");
        return NULL;
    }
    return api_json_body(req, false);
}

void api_h_internal_beacon(struct api_request *req)
{
    struct repl_meta *meta = req->srv->cluster.meta;
    json_t *doc = meta_body(req);
    if (!doc)
        return;
    json_t *reply = NULL;
    int rc = repl_meta_beacon(meta, doc, &reply);
    json_decref(doc);
    if (rc < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "not a beacon");
        return;
    }
    api_reply_json(req, 200, reply);
}

/* POST /internal/v1/propose (meta): a replica asks for its partition's
 * next configuration. {table_id, partition, ballot, change
 * ("remove_secondary", "promote" or "add_secondary"), node, by} -> 200
 * {config}; 409
 * STALE_CONFIG when the configuration moved on or the change does not
 * apply to it; 404 when there is no such partition. */
void api_h_internal_propose(struct api_request *req)
{
    struct repl_meta *meta = req->srv->cluster.meta;
    json_t *doc = meta_body(req);
    if (!doc)
        return;
    json_int_t table_id = -1, partition = -1, ballot = -1;
    const char *change = NULL, *node = NULL, *by = NULL;
    enum repl_change kind = REPL_CHANGE_REMOVE_SECONDARY;
    bool ok = json_unpack(doc, "{s:I, s:I, s:I, s:s, s:s, s:s}", "table_id", &table_id, "partition",
                          &partition, "ballot", &ballot, "change", &change, "node", &node, "by",
                          &by) == 0 &&
              table_id >= 0 && table_id <= UINT32_MAX && partition >= 0 &&
              partition <= UINT32_MAX && ballot >= 0;
    if (ok && strcmp(change, "promote") == 0)
        kind = REPL_CHANGE_PROMOTE;
    else if (ok && strcmp(change, "add_secondary") == 0)
        kind = REPL_CHANGE_ADD_SECONDARY;
    else if (ok && strcmp(change, "remove_secondary") != 0)
        ok = false;
    if (!ok) {
        json_decref(doc);
        api_reply_problem(req, 400, "INVALID_ARGUMENT",
                          "{table_id, partition, ballot, change (remove_secondary, promote or "
                          "add_secondary), node, by} are required");
        return;
    }
    struct repl_config c;
    int rc = repl_meta_propose(meta, (uint32_t)table_id, (uint32_t)partition, (uint64_t)ballot,
                               kind, node, by, &c);
    if (rc == -CELLAR_ENOTPRIMARY)
        api_reply_problem(req, 409, "STALE_CONFIG",
                          "the partition's configuration moved on, or the change does not apply "
                          "to it");
    else if (rc == -CELLAR_ENOTFOUND)
        api_reply_problem(req, 404, "NOT_FOUND", "no such partition");
    else if (rc < 0)
        api_reply_error(req, rc, "%s of %s", change, node);
    else
        api_reply_json(req, 200, json_pack("{s:o}", "config", repl_config_json(&c)));
    json_decref(doc);
}

static void map_admin(struct api_request *req)
{
    req->status = repl_registry_apply_map(api_registry(req), req->scratch);
    json_decref(req->scratch);
    req->scratch = NULL;
}

static void map_done(struct api_request *req)
{
    if (req->status < 0)
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "the map does not parse");
    else
        api_reply_json(req, 200,
                       json_pack("{s:I}", "version",
                                 (json_int_t)repl_registry_map_version(api_registry(req))));
}

void api_h_internal_map(struct api_request *req)
{
    if (!repl_registry_member(api_registry(req))) {
        api_reply_problem(req, 409, "NOT_A_MEMBER", "this node is not part of a cluster");
        return;
    }
    json_t *doc = api_json_body(req, false);
    if (!doc)
        return;
    req->scratch = doc;
    api_defer_admin(req, map_admin, map_done);
}

static void compact_admin(struct api_request *req)
{
    req->status = repl_table_compact(api_registry(req), req->scratch);
}

static void compact_done(struct api_request *req)
{
    if (req->status < 0 && req->status != -CELLAR_ENOTFOUND)
        api_reply_error(req, req->status, "%s", cellar_strerror(req->status));
    else
        api_reply_json(req, 202, json_pack("{s:s}", "status", "compacted"));
}

void api_h_internal_compact(struct api_request *req)
{
    json_t *doc = api_json_body(req, false);
    if (!doc)
        return;
    const char *name = json_string_value(json_object_get(doc, "table"));
    if (!name || !repl_table_name_valid(name, strlen(name))) {
        json_decref(doc);
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "{\"table\": name} is required");
        return;
    }
    size_t len = strlen(name);
    char *copy = api_alloc(req, len + 1);
    memcpy(copy, name, len + 1);
    json_decref(doc);
    req->scratch = copy;
    api_defer_admin(req, compact_admin, compact_done);
}

/* A secondary's part of a group: the writer thread calls back once the
 * mutations are logged (and what is committed applied). */
static void on_prepared(void *arg, int status, uint64_t logged, uint64_t applied)
{
    struct api_request *req = arg;
    req->status = status;
    req->flag_arg = false;
    ((uint64_t *)req->scratch)[0] = logged;
    ((uint64_t *)req->scratch)[1] = applied;
    api_resume(req);
}

static void prepare_done(struct api_request *req)
{
    if (req->status == -CELLAR_ENOTFOUND) {
        /* Not placed here, or its map has not come yet. */
        api_reply_problem(req, 404, "NOT_HOSTED", "this node holds no replica of that partition");
        return;
    }
    if (req->status == -CELLAR_ENOTPRIMARY) {
        api_reply_problem(req, 409, "NOT_A_SECONDARY",
                          "this node is not a secondary of that partition and ballot");
        return;
    }
    if (req->status < 0) {
        api_reply_error(req, req->status, "not logged: %s", cellar_strerror(req->status));
        return;
    }
    const uint64_t *d = req->scratch;
    api_reply_json(
        req, 200, json_pack("{s:I, s:I}", "logged", (json_int_t)d[0], "applied", (json_int_t)d[1]));
}

void api_h_internal_prepare(struct api_request *req)
{
    struct repl_prepare_header h;
    struct store_mutation **ms = NULL;
    size_t n = 0;
    if (repl_prepare_decode(req->body.data, req->body.len, &h, &ms, &n) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "not a prepare");
        return;
    }
    req->scratch = api_alloc(req, 2 * sizeof(uint64_t));
    /* Suspended before the writer has it: it may call back at once. */
    api_suspend(req, prepare_done);
    int rc = repl_registry_prepare(api_registry(req), &h, ms, n, on_prepared, req);
    if (rc < 0) {
        req->status = rc;
        api_resume(req);
    }
}

/* GET /internal/v1/replicas: the replicas this node holds, with their role,
 * ballot, applied and logged decrees (what its beacons report). */
void api_h_internal_replicas(struct api_request *req)
{
    api_reply_json(req, 200,
                   json_pack("{s:o}", "replicas", repl_registry_hosted_json(api_registry(req))));
}

/* {"table_id", "partition"} of a body into *id and *p; replies 400 and
 * returns false when they are missing. */
static bool partition_of(struct api_request *req, json_t *doc, uint32_t *id, uint32_t *p)
{
    json_t *jid = json_object_get(doc, "table_id"), *jp = json_object_get(doc, "partition");
    if (!json_is_integer(jid) || !json_is_integer(jp) || json_integer_value(jid) < 0 ||
        json_integer_value(jid) > UINT32_MAX || json_integer_value(jp) < 0 ||
        json_integer_value(jp) > UINT32_MAX) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT",
                          "{\"table_id\", \"partition\"} are required");
        return false;
    }
    *id = (uint32_t)json_integer_value(jid);
    *p = (uint32_t)json_integer_value(jp);
    return true;
}

/* POST /internal/v1/learn (a learner): {table_id, partition, primary} ->
 * 202 while it copies a checkpoint of the primary's (already under way or
 * just begun); 404 NOT_HOSTED when no such learner is here. */
void api_h_internal_learn(struct api_request *req)
{
    json_t *doc = api_json_body(req, false);
    if (!doc)
        return;
    uint32_t id, p;
    const char *primary = json_string_value(json_object_get(doc, "primary"));
    if (!partition_of(req, doc, &id, &p)) {
        json_decref(doc);
        return;
    }
    if (!primary || repl_addr_valid(primary) < 0) {
        json_decref(doc);
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "{\"primary\": address} is required");
        return;
    }
    int rc = req->srv->cluster.learning
                 ? repl_learning_begin(req->srv->cluster.learning, id, p, primary)
                 : -CELLAR_ENOTFOUND;
    json_decref(doc);
    if (rc == -CELLAR_ENOTFOUND)
        api_reply_problem(req, 404, "NOT_HOSTED", "this node holds no learner of that partition");
    else if (rc < 0 && rc != -CELLAR_EEXIST)
        api_reply_error(req, rc, "cannot learn: %s", cellar_strerror(rc));
    else
        api_reply_json(req, 202, json_pack("{s:s}", "state", "copying"));
}

struct checkpoint_args {
    uint32_t table_id, partition;
    char name[64];
};

static void checkpoint_admin(struct api_request *req)
{
    struct checkpoint_args *a = req->scratch;
    req->status = repl_registry_checkpoint(api_registry(req), a->table_id, a->partition, a->name,
                                           sizeof(a->name));
}

static void checkpoint_done(struct api_request *req)
{
    struct checkpoint_args *a = req->scratch;
    if (req->status == -CELLAR_ENOTFOUND) {
        api_reply_problem(req, 404, "NOT_HOSTED", "this node holds no replica of that partition");
        return;
    }
    json_t *files = NULL;
    char dir[4300];
    repl_checkpoint_path(repl_registry_data_dir(api_registry(req)), a->name, NULL, dir,
                         sizeof(dir));
    if (req->status == 0)
        req->status = repl_checkpoint_files(dir, &files);
    if (req->status < 0) {
        api_reply_error(req, req->status, "no checkpoint: %s", cellar_strerror(req->status));
        return;
    }
    api_reply_json(req, 201, json_pack("{s:s, s:o}", "name", a->name, "files", files));
}

/* POST /internal/v1/checkpoints {table_id, partition} -> 201 {name,
 * files: [{name, size}]}: a copy of this node's replica, made on the
 * admin thread (it flushes the memtables). */
void api_h_internal_checkpoint_new(struct api_request *req)
{
    json_t *doc = api_json_body(req, false);
    if (!doc)
        return;
    struct checkpoint_args *a = api_alloc(req, sizeof(*a));
    memset(a, 0, sizeof(*a));
    bool ok = partition_of(req, doc, &a->table_id, &a->partition);
    json_decref(doc);
    if (!ok)
        return;
    req->scratch = a;
    api_defer_admin(req, checkpoint_admin, checkpoint_done);
}

/* The checkpoint path segment 3 names (and segment 4's file), or NULL
 * after a 404. */
static bool checkpoint_path(struct api_request *req, bool file, char *out, size_t n)
{
    char name[64], fname[256];
    const struct api_bytes *sn = &req->segs[3], *sf = &req->segs[4];
    if (sn->len >= sizeof(name) || (file && sf->len >= sizeof(fname)))
        goto missing;
    memcpy(name, sn->data, sn->len);
    name[sn->len] = '\0';
    if (file) {
        memcpy(fname, sf->data, sf->len);
        fname[sf->len] = '\0';
    }
    if (!repl_checkpoint_name_valid(name) || (file && !repl_checkpoint_file_valid(fname)))
        goto missing;
    repl_checkpoint_path(repl_registry_data_dir(api_registry(req)), name, file ? fname : NULL, out,
                         n);
    return true;
missing:
    api_reply_problem(req, 404, "NOT_FOUND", "no such checkpoint");
    return false;
}

/* GET /internal/v1/checkpoints/{name}/{file}: the file's bytes, sent
 * from the file (MHD owns the descriptor). */
void api_h_internal_checkpoint_file(struct api_request *req)
{
    char path[4500];
    if (!checkpoint_path(req, true, path, sizeof(path)))
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        api_reply_problem(req, 404, "NOT_FOUND", "no such checkpoint file");
        return;
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!resp) {
        close(fd);
        api_reply_error(req, -CELLAR_ENOMEM, "cannot send the file");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    api_reply_response(req, 200, resp);
}

/* DELETE /internal/v1/checkpoints/{name}: 204; the files go. */
void api_h_internal_checkpoint_delete(struct api_request *req)
{
    char path[4500];
    if (!checkpoint_path(req, false, path, sizeof(path)))
        return;
    int rc = cellar_remove_tree(path);
    if (rc < 0)
        api_reply_error(req, rc, "cannot remove the checkpoint");
    else
        api_reply_response(req, 204, api_response(req, 0, "", MHD_RESPMEM_PERSISTENT));
}

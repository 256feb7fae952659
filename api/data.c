/*
 * data.c - what data handlers share: finding the table a request names
 * (held under the registry's read lock until api_table_end), the row of a
 * path hashkey and its partition, key validation, and write admission
 * (read-only tables, write rate limits).
 *
 * Threads: MHD workers.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "storage/keycodec.h"

#define SEG_HASHKEY 4

bool api_key_valid(struct api_request *req, const struct api_bytes *k, bool hashkey)
{
    if (hashkey && (k->len == 0 || k->len > STORE_HASHKEY_MAX)) {
        api_reply_problem(req, 400, "INVALID_KEY", "a hashkey is 1 to %u bytes", STORE_HASHKEY_MAX);
        return false;
    }
    if (!hashkey && k->len > STORE_SORTKEY_MAX) {
        api_reply_problem(req, 400, "INVALID_KEY", "a sortkey is 0 to %u bytes", STORE_SORTKEY_MAX);
        return false;
    }
    return true;
}

bool api_table_begin(struct api_request *req, struct api_table *t)
{
    memset(t, 0, sizeof(*t));
    t->reg = api_registry(req);
    const struct api_bytes *seg = &req->segs[API_SEG_TABLE];
    char name[REPL_TABLE_NAME_MAX + 1];
    if (!repl_table_name_valid(seg->data, seg->len)) {
        api_reply_problem(req, 404, "TABLE_NOT_FOUND", "no such table");
        return false;
    }
    memcpy(name, seg->data, seg->len);
    name[seg->len] = '\0';
    if (repl_table_acquire(t->reg, name, &t->table) < 0) {
        api_reply_problem(req, 404, "TABLE_NOT_FOUND", "no table named %s", name);
        return false;
    }
    return true;
}

void api_table_end(struct api_table *t)
{
    if (t->table)
        repl_table_release(t->reg, t->table);
    t->table = NULL;
}

/* The member thread: a newer map came, or the wait ran out. */
static void on_map(void *arg, bool newer)
{
    struct api_request *req = arg;
    req->map_newer = newer;
    api_resume(req);
}

/* After a hold: the request is routed again as if it had just come,
 * unless the hold ran out with no newer map. */
static void route_again(struct api_request *req)
{
    if (!req->map_newer && cellar_mono_ms() >= req->hold_until_ms) {
        api_reply_problem(req, 503, "NO_PRIMARY",
                          "the partition has had no reachable primary for %llu ms; retry shortly",
                          (unsigned long long)req->srv->cluster.cfg->forward_wait_ms);
        return;
    }
    api_route_again(req);
}

void api_route_again(struct api_request *req)
{
    if (req->forward) {
        repl_forward_fini(req->forward);
        free(req->forward);
        req->forward = NULL;
    }
    api_route(req);
}

void api_hold_for_map(struct api_request *req, uint64_t seen)
{
    struct api_server *s = req->srv;
    struct repl_member *m = __atomic_load_n(&s->member, __ATOMIC_ACQUIRE);
    uint64_t now = cellar_mono_ms();
    if (!req->hold_until_ms)
        req->hold_until_ms = now + s->cluster.cfg->forward_wait_ms;
    req->map_newer = repl_registry_map_version(api_registry(req)) > seen;
    if (!m || now >= req->hold_until_ms || req->map_newer) {
        route_again(req);
        return;
    }
    api_suspend(req, route_again);
    repl_member_wait_map(m, seen, req->hold_until_ms, true, on_map, req);
}

/* A partition whose primary is this node but does not serve right now (it
 * is committing its log's tail after taking over, or waits for its
 * secondaries to renew its lease): looked at again every HOLD_POLL_MS,
 * for up to forward_wait_ms (half of it for a request another node
 * relayed here, so that the relaying node hears back in its own time),
 * then 503 NO_PRIMARY: nothing of it was applied. */
#define HOLD_POLL_MS 25

static void hold_briefly(struct api_request *req)
{
    struct api_server *s = req->srv;
    struct repl_member *m = __atomic_load_n(&s->member, __ATOMIC_ACQUIRE);
    uint64_t now = cellar_mono_ms();
    uint64_t wait = s->cluster.cfg->forward_wait_ms;
    if (!req->hold_until_ms)
        req->hold_until_ms = now + (req->forwarded ? wait / 2 : wait);
    if (!m || now >= req->hold_until_ms) {
        api_reply_problem(req, 503, "NO_PRIMARY",
                          "this node is the partition's primary but cannot serve it yet; retry "
                          "shortly");
        return;
    }
    uint64_t until =
        now + HOLD_POLL_MS < req->hold_until_ms ? now + HOLD_POLL_MS : req->hold_until_ms;
    req->map_newer = false;
    api_suspend(req, route_again);
    repl_member_wait_map(m, repl_registry_map_version(api_registry(req)), until, false, on_map,
                         req);
}

/* hold_briefly, once t is ended (nothing replies while it is held). */
static void hold_briefly_ended(struct api_request *req, struct api_table *t)
{
    api_table_end(t);
    hold_briefly(req);
}

void api_wait_map_version(struct api_request *req, uint64_t version, api_handler_fn then)
{
    struct api_server *s = req->srv;
    struct repl_member *m = __atomic_load_n(&s->member, __ATOMIC_ACQUIRE);
    if (!m || version == 0 || repl_registry_map_version(api_registry(req)) >= version) {
        then(req);
        return;
    }
    api_suspend(req, then);
    repl_member_wait_map(m, version - 1, cellar_mono_ms() + s->cluster.cfg->forward_wait_ms, true,
                         on_map, req);
}

/* A request whose partition is served elsewhere: relayed there when it
 * came from a client (whole: the request is about that partition only),
 * held for a newer map while the partition has no primary; refused when
 * another node relayed it here (421, so that node refreshes its map and
 * tries once more: one hop at most), or when it is about several
 * partitions (those fan out themselves). t is ended. */
static void elsewhere(struct api_request *req, struct api_table *t, uint32_t part,
                      const struct repl_route *route, bool whole)
{
    if (route->kind == REPL_ROUTE_LOCAL && req->srv->cluster.cfg) {
        hold_briefly_ended(req, t);
        return;
    }
    api_table_end(t);
    if (req->forwarded) {
        api_reply_problem(req, 421, "NOT_PRIMARY",
                          "this node does not serve partition %" PRIu32 " (ballot %" PRIu64 ")",
                          part, route->ballot);
        return;
    }
    if (whole && req->srv->cluster.cfg) {
        if (route->kind == REPL_ROUTE_REMOTE)
            api_forward_to_primary(req, route->primary, part);
        else
            api_hold_for_map(req, repl_registry_map_version(api_registry(req)));
        return;
    }
    api_reply_problem(req, 503, "NO_PRIMARY", "partition %" PRIu32 " has no primary right now",
                      part);
}

struct store_partition *api_read_gate(struct api_request *req, struct api_table *t, uint32_t part,
                                      bool whole)
{
    struct repl_route route;
    struct store_partition *sp = NULL;
    repl_route(t->table, part, &route);
    if (route.kind == REPL_ROUTE_LOCAL && repl_replica_read(route.replica, &sp) == 0)
        return sp;
    elsewhere(req, t, part, &route, whole);
    return NULL;
}

bool api_write_ready(struct api_request *req, struct api_table *t, uint32_t part)
{
    struct repl_route route;
    struct repl_writer *w;
    repl_route(t->table, part, &route);
    if (route.kind != REPL_ROUTE_LOCAL || repl_replica_writer(route.replica, &w) == 0)
        return true;
    hold_briefly_ended(req, t);
    return false;
}

bool api_row_key(struct api_request *req, struct api_bytes *hk)
{
    if (api_path_key(req, SEG_HASHKEY, hk) < 0) {
        api_reply_problem(req, 400, "INVALID_KEY", "the hashkey is not valid base64url");
        return false;
    }
    return api_key_valid(req, hk, true);
}

bool api_row_table(struct api_request *req, struct api_table *t, const struct api_bytes *hk,
                   uint32_t *partition)
{
    if (!api_table_begin(req, t))
        return false;
    *partition = repl_table_partition_of(t->table, hk->data, hk->len);
    req->partition = (int64_t)*partition;
    return true;
}

bool api_row_begin(struct api_request *req, struct api_table *t, struct api_bytes *hk,
                   uint32_t *partition)
{
    return api_row_key(req, hk) && api_row_table(req, t, hk, partition);
}

bool api_admit_writes(struct api_request *req, struct api_table *t, uint64_t n)
{
    int rc = repl_table_admit_writes(t->table, n);
    if (rc == 0)
        return true;
    api_table_end(t);
    if (rc == -CELLAR_EREADONLY)
        api_reply_problem(req, 403, "TABLE_READ_ONLY", "the table is read-only");
    else
        api_reply_problem(req, 429, "THROTTLED", "the table's write_rate_limit is exceeded");
    return false;
}

/* A parsed row mutation's way to its writer: the table (404), its default
 * TTL for the sets without one, admission of a mutation that writes (403,
 * 429; a pure check writes nothing), then the writer. Takes m. Nothing
 * replies while the table is held. */
void api_row_write(struct api_request *req, const struct api_bytes *hk, struct store_mutation *m,
                   api_handler_fn done)
{
    struct api_table t;
    uint32_t part;
    if (!api_row_table(req, &t, hk, &part)) {
        store_mutation_free(m);
        return;
    }
    struct repl_route route;
    struct repl_writer *w;
    repl_route(t.table, part, &route);
    if (route.kind != REPL_ROUTE_LOCAL || repl_replica_writer(route.replica, &w) < 0) {
        store_mutation_free(m);
        elsewhere(req, &t, part, &route, true);
        return;
    }
    store_mutation_default_ttl(m, repl_table_meta(t.table)->default_ttl_s);
    if (m->n_ops > 0 && !api_admit_writes(req, &t, 1)) {
        store_mutation_free(m);
        return;
    }
    if (m->n_ops == 0 && !m->check.present) {
        /* An empty mutation is a valid no-op: nothing written, no decree. */
        api_table_end(&t);
        store_mutation_free(m);
        api_reply_json(req, 200, json_pack("{s:b}", "applied", true));
        return;
    }
    api_defer_write(req, &t, part, m, done);
}

uint32_t api_now_s(void)
{
    return (uint32_t)(cellar_now_ms() / 1000);
}

bool api_page_exhausted(struct api_request *req, size_t examined, uint64_t deadline_ms)
{
    if (examined >= api_config(req)->max_scan_cells)
        return true;
    /* The clock is read every 64 cells: cheap, and fine-grained enough. */
    return (examined & 63) == 0 && cellar_mono_ms() >= deadline_ms;
}

json_t *api_ttl_json(uint32_t expiry)
{
    if (!expiry)
        return json_null();
    /* Whole seconds left, rounded down: never more than the TTL given. */
    uint64_t now_ms = cellar_now_ms(), end_ms = (uint64_t)expiry * 1000;
    return json_integer(end_ms > now_ms ? (json_int_t)((end_ms - now_ms) / 1000) : 0);
}

bool api_write_failed(struct api_request *req)
{
    const struct api_write_result *w = &req->writes[0];
    if (w->status < 0) {
        api_reply_error(req, w->status, "the write was not committed: %s",
                        cellar_strerror(w->status));
        return true;
    }
    if (w->outcome.error) {
        /* Refused by apply (not an integer, overflow, ...): nothing changed. */
        api_reply_error(req, w->outcome.error, "%s; nothing was changed",
                        cellar_strerror(w->outcome.error));
        return true;
    }
    return false;
}

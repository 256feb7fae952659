/*
 * handlers_node.c - the node's own endpoints: /healthz (the process runs)
 * and /readyz (it serves its partitions; 503 before that and while
 * stopping), /openapi.yaml (the API description built into the binary),
 * /internal/v1/node (what this node is, for its peers; the cluster secret
 * guards it), and the partition health part of /metrics.
 *
 * Readiness and partition health: a node serving its partitions is ready
 * (200) even when some of them are short of space (writes refused, 507) or
 * have failed (corrupt or could not open: 503 PARTITION_UNAVAILABLE for
 * their keys); then the body says "degraded" and names each such partition
 * with its state and reason. A 503 from /readyz would take every healthy
 * partition out of a load balancer with the broken one; API.md keeps 503
 * for "not serving" (starting, stopping).
 *
 * Threads: MHD workers.
 */
#include <inttypes.h>

#include "api/internal.h"

/* From openapi_blob.S. */
extern const char api_openapi_yaml[];
extern const uint64_t api_openapi_yaml_len;

void api_h_healthz(struct api_request *req)
{
    api_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static const char *health_name(enum store_health h)
{
    switch (h) {
    case STORE_HEALTH_OK:
        return "ok";
    case STORE_HEALTH_NO_SPACE:
        return "no_space";
    default:
        return "failed";
    }
}

struct degraded {
    json_t *list; /* partitions not ok */
    size_t total;
    size_t failed;
    size_t no_space;
};

static void collect_degraded(void *arg, const char *table, uint32_t index, struct repl_replica *r)
{
    struct degraded *d = arg;
    char reason[256] = "";
    enum store_health health =
        store_partition_health(repl_replica_partition(r), reason, sizeof(reason));
    d->total++;
    if (health == STORE_HEALTH_OK)
        return;
    d->failed += health == STORE_HEALTH_FAILED;
    d->no_space += health == STORE_HEALTH_NO_SPACE;
    json_t *p = json_pack("{s:s, s:I, s:s}", "table", table, "partition", (json_int_t)index,
                          "state", health_name(health));
    if (reason[0])
        json_object_set_new(p, "reason", json_string(reason));
    json_array_append_new(d->list, p);
}

void api_h_readyz(struct api_request *req)
{
    if (!api_ready(req)) {
        api_reply_problem(req, 503, "NOT_READY", "the node is not serving its partitions");
        return;
    }
    struct degraded d = {.list = json_array()};
    repl_registry_foreach_partition(api_registry(req), collect_degraded, &d);
    if (json_array_size(d.list) == 0) {
        json_decref(d.list);
        api_reply_json(req, 200, json_pack("{s:s}", "status", "ready"));
        return;
    }
    json_t *doc = json_pack("{s:s, s:o}", "status", "degraded", "partitions", d.list);
    json_object_set_new(doc, "detail",
                        json_sprintf("%zu of %zu partitions failed (their keys get 503), %zu "
                                     "short of space (writes get 507); the others serve",
                                     d.failed, d.total, d.no_space));
    api_reply_json(req, 200, doc);
}

void api_metrics_partition_health(struct cellar_buf *b, const struct repl_registry_stats *st)
{
    cellar_buf_printf(b,
                      "# HELP cellar_partitions_by_state Partitions by health: ok, no_space "
                      "(writes refused, reads served), failed (nothing served).\n"
                      "# TYPE cellar_partitions_by_state gauge\n"
                      "cellar_partitions_by_state{state=\"ok\"} %zu\n"
                      "cellar_partitions_by_state{state=\"no_space\"} %zu\n"
                      "cellar_partitions_by_state{state=\"failed\"} %zu\n",
                      st->partitions - st->partitions_failed - st->partitions_no_space,
                      st->partitions_no_space, st->partitions_failed);
}

void api_h_openapi(struct api_request *req)
{
    size_t len = (size_t)api_openapi_yaml_len;
    struct MHD_Response *resp =
        api_response(req, len, (void *)api_openapi_yaml, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/yaml");
    api_reply_response(req, 200, resp);
}

void api_h_internal_node(struct api_request *req)
{
    struct repl_registry_stats st;
    repl_registry_stats(api_registry(req), &st);
    api_reply_json(req, 200,
                   json_pack("{s:s, s:b, s:I, s:I}", "version", CELLAR_VERSION, "ready",
                             api_ready(req), "tables", (json_int_t)st.tables, "partitions",
                             (json_int_t)st.partitions));
}

/*
 * router.c - the route table: which handler serves which method on which
 * path shape. Paths are matched on decoded segments; "*" in a pattern
 * matches any one segment (a table name, a hashkey, a sortkey, possibly
 * empty). A path that matches no pattern is 404 NOT_FOUND; a path that
 * matches but not with this method is 405 METHOD_NOT_ALLOWED with an Allow
 * header listing the methods it has. HEAD is served wherever GET is.
 *
 * Threads: MHD workers; the table is constant.
 */
#include <string.h>

#include "api/internal.h"

#define MAX_PATTERN (API_MAX_SEGMENTS + 1)

struct route_method {
    enum api_method method;
    api_handler_fn fn;
    enum api_perm perm; /* who may call it (auth.h) */
};

struct route {
    const char *name;              /* the metrics label */
    const char *segs[MAX_PATTERN]; /* NULL-terminated; "*" = any segment */
    struct route_method methods[4];
};

static const struct route routes[] = {
    {"healthz", {"healthz", NULL}, {{API_GET, api_h_healthz, API_PERM_PUBLIC}}},
    {"readyz", {"readyz", NULL}, {{API_GET, api_h_readyz, API_PERM_READYZ}}},
    {"metrics", {"metrics", NULL}, {{API_GET, api_h_metrics, API_PERM_METRICS}}},
    {"openapi", {"openapi.yaml", NULL}, {{API_GET, api_h_openapi, API_PERM_PUBLIC}}},
    {"internal_node",
     {"internal", "v1", "node", NULL},
     {{API_GET, api_h_internal_node, API_PERM_INTERNAL}}},
    {"internal_beacon",
     {"internal", "v1", "beacon", NULL},
     {{API_POST, api_h_internal_beacon, API_PERM_INTERNAL}}},
    {"internal_map",
     {"internal", "v1", "map", NULL},
     {{API_POST, api_h_internal_map, API_PERM_INTERNAL}}},
    {"internal_prepare",
     {"internal", "v1", "prepare", NULL},
     {{API_POST, api_h_internal_prepare, API_PERM_INTERNAL}}},
    {"internal_propose",
     {"internal", "v1", "propose", NULL},
     {{API_POST, api_h_internal_propose, API_PERM_INTERNAL}}},
    {"internal_replicas",
     {"internal", "v1", "replicas", NULL},
     {{API_GET, api_h_internal_replicas, API_PERM_INTERNAL}}},
    {"internal_learn",
     {"internal", "v1", "learn", NULL},
     {{API_POST, api_h_internal_learn, API_PERM_INTERNAL}}},
    {"internal_checkpoints",
     {"internal", "v1", "checkpoints", NULL},
     {{API_POST, api_h_internal_checkpoint_new, API_PERM_INTERNAL}}},
    {"internal_checkpoint",
     {"internal", "v1", "checkpoints", "*", NULL},
     {{API_DELETE, api_h_internal_checkpoint_delete, API_PERM_INTERNAL}}},
    {"internal_checkpoint_file",
     {"internal", "v1", "checkpoints", "*", "*", NULL},
     {{API_GET, api_h_internal_checkpoint_file, API_PERM_INTERNAL}}},
    {"internal_compact",
     {"internal", "v1", "compact", NULL},
     {{API_POST, api_h_internal_compact, API_PERM_INTERNAL}}},
    {"internal_relay",
     {"internal", "v1", "relay", NULL},
     {{API_POST, api_h_internal_relay, API_PERM_INTERNAL}}},
    {"console", {"", NULL}, {{API_GET, api_h_console, API_PERM_PUBLIC}}},
    {"docs", {"docs", NULL}, {{API_GET, api_h_console, API_PERM_PUBLIC}}},
    {"console_asset", {"ui", "*", NULL}, {{API_GET, api_h_console, API_PERM_PUBLIC}}},
    {"cluster", {"v1", "cluster", NULL}, {{API_GET, api_h_cluster, API_PERM_READ}}},
    {"cluster_node",
     {"v1", "cluster", "nodes", "*", NULL},
     {{API_DELETE, api_h_cluster_node_moves, API_PERM_ADMIN}}},
    {"cluster_node_drain",
     {"v1", "cluster", "nodes", "*", "drain", NULL},
     {{API_POST, api_h_cluster_node_moves, API_PERM_ADMIN}}},
    {"tables", {"v1", "tables", NULL}, {{API_GET, api_h_tables_list, API_PERM_READ}}},
    {"table",
     {"v1", "tables", "*", NULL},
     {{API_GET, api_h_table_get, API_PERM_READ},
      {API_PUT, api_h_table_put, API_PERM_ADMIN},
      {API_PATCH, api_h_table_patch, API_PERM_ADMIN},
      {API_DELETE, api_h_table_delete, API_PERM_ADMIN}}},
    {"table_compact",
     {"v1", "tables", "*", "compact", NULL},
     {{API_POST, api_h_table_compact, API_PERM_ADMIN}}},
    {"table_recall",
     {"v1", "tables", "*", "recall", NULL},
     {{API_POST, api_h_table_recall, API_PERM_ADMIN}}},
    {"batch_get",
     {"v1", "tables", "*", "batch-get", NULL},
     {{API_POST, api_h_batch_get, API_PERM_READ}}},
    {"batch_write",
     {"v1", "tables", "*", "batch-write", NULL},
     {{API_POST, api_h_batch_write, API_PERM_WRITE}}},
    {"scan", {"v1", "tables", "*", "scan", NULL}, {{API_GET, api_h_scan, API_PERM_READ}}},
    {"row",
     {"v1", "tables", "*", "rows", "*", NULL},
     {{API_GET, api_h_row_get, API_PERM_READ},
      {API_PATCH, api_h_row_patch, API_PERM_WRITE},
      {API_DELETE, api_h_row_delete, API_PERM_WRITE}}},
    {"row_count",
     {"v1", "tables", "*", "rows", "*", "count", NULL},
     {{API_GET, api_h_row_count, API_PERM_READ}}},
    {"row_check_and_mutate",
     {"v1", "tables", "*", "rows", "*", "check-and-mutate", NULL},
     {{API_POST, api_h_row_check_and_mutate, API_PERM_WRITE}}},
    {"cell_incr",
     {"v1", "tables", "*", "rows", "*", "cells", "*", "incr", NULL},
     {{API_POST, api_h_cell_incr, API_PERM_WRITE}}},
    {"cell",
     {"v1", "tables", "*", "rows", "*", "cells", "*", NULL},
     {{API_GET, api_h_cell_get, API_PERM_READ},
      {API_PUT, api_h_cell_put, API_PERM_WRITE},
      {API_DELETE, api_h_cell_delete, API_PERM_WRITE}}},
};

static bool matches(const struct route *r, const struct api_request *req)
{
    size_t i = 0;
    for (; i < MAX_PATTERN && r->segs[i]; i++) {
        if (i >= req->n_segs)
            return false;
        if (strcmp(r->segs[i], "*") == 0)
            continue;
        size_t len = strlen(r->segs[i]);
        if (req->segs[i].len != len || memcmp(req->segs[i].data, r->segs[i], len) != 0)
            return false;
    }
    return i == req->n_segs;
}

static const char *method_name(enum api_method m)
{
    switch (m) {
    case API_GET:
        return "GET";
    case API_HEAD:
        return "HEAD";
    case API_PUT:
        return "PUT";
    case API_POST:
        return "POST";
    case API_DELETE:
        return "DELETE";
    case API_PATCH:
        return "PATCH";
    case API_OPTIONS:
        return "OPTIONS";
    }
    return "?";
}

size_t api_route_count(void)
{
    return sizeof(routes) / sizeof(routes[0]);
}

const char *api_route_name(int route)
{
    return routes[route].name;
}

void api_route(struct api_request *req)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *r = &routes[i];
        if (!matches(r, req))
            continue;
        req->route = (int)i;
        char allow[128] = "";
        size_t used = 0;
        for (size_t k = 0; k < 4 && r->methods[k].fn; k++) {
            enum api_method m = r->methods[k].method;
            if (m == req->method || (m == API_GET && req->method == API_HEAD)) {
                bool on_table = r->segs[0] && strcmp(r->segs[0], "v1") == 0 && r->segs[1] &&
                                strcmp(r->segs[1], "tables") == 0 && r->segs[2];
                if (api_authorize(req, r->methods[k].perm, on_table ? &req->segs[2] : NULL))
                    r->methods[k].fn(req);
                return;
            }
            used += (size_t)snprintf(allow + used, sizeof(allow) - used, "%s%s", used ? ", " : "",
                                     method_name(m));
            if (m == API_GET)
                used += (size_t)snprintf(allow + used, sizeof(allow) - used, ", HEAD");
        }
        char detail[160];
        snprintf(detail, sizeof(detail), "%s is not allowed here; allowed: %s", req->method_name,
                 allow);
        struct MHD_Response *resp = api_problem_response(req, 405, "METHOD_NOT_ALLOWED", detail);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
        api_reply_response(req, 405, resp);
        return;
    }
    api_reply_problem(req, 404, "NOT_FOUND", "no route for %s %s", req->method_name, req->url);
}

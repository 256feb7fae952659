/*
 * handlers_cluster.c - GET /v1/cluster: the nodes, their state and
 * address, which node leads the metadata, and the partitions that lack a
 * full replica group.
 *
 * A single node is the whole cluster: it is "alive", leads the metadata
 * (the table registry is its own), and is the primary of every partition
 * it serves, with no secondaries. A table that asks for replica_count > 1
 * therefore has every partition short of replicas, and each is listed
 * (up to ?limit=, at most max_page_cells; under_replicated_count counts
 * them all). The shape is the one a cluster will fill in: more nodes,
 * other states, secondaries.
 *
 * Threads: MHD workers; the registry is read under its own lock.
 */
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"

#define CLUSTER_DEFAULT_LIMIT 100

void api_node_address(struct api_request *req, char *buf, size_t size)
{
    if (req->srv->cluster.cfg) {
        snprintf(buf, size, "%s", req->srv->cluster.cfg->advertise);
        return;
    }
    const struct api_config *cfg = api_config(req);
    bool v6 = strchr(cfg->listen_host, ':') != NULL;
    snprintf(buf, size, "%s%s%s:%u", v6 ? "[" : "", cfg->listen_host, v6 ? "]" : "",
             (unsigned)api_server_port(req->srv));
}

/* The cluster as the map this node has says it is. */
static void cluster_of_map(struct api_request *req, json_t *map, int64_t limit)
{
    json_t *nodes = json_array(), *under = json_array();
    json_t *mnodes = json_object_get(map, "nodes");
    size_t i, k;
    json_t *n, *t;
    uint64_t partitions = 0, under_count = 0;
    json_t *moves = json_array();
    json_array_foreach(mnodes, i, n)
    {
        json_array_append_new(nodes, json_pack("{s:O, s:O, s:O, s:I, s:I}", "address",
                                               json_object_get(n, "address"), "state",
                                               json_object_get(n, "state"), "roles",
                                               json_object_get(n, "roles"), "primaries",
                                               (json_int_t)0, "secondaries", (json_int_t)0));
    }
    json_array_foreach(json_object_get(map, "tables"), k, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "status")), "available") != 0 ||
            !api_table_visible(req, json_string_value(json_object_get(t, "name")),
                               strlen(json_string_value(json_object_get(t, "name")))))
            continue;
        json_int_t want = json_integer_value(json_object_get(t, "replica_count"));
        size_t p;
        json_t *c;
        json_array_foreach(json_object_get(t, "configs"), p, c)
        {
            partitions++;
            json_t *primary = json_object_get(c, "primary"),
                   *secs = json_object_get(c, "secondaries");
            json_int_t have = (json_is_string(primary) ? 1 : 0) + (json_int_t)json_array_size(secs);
            json_t *learner = json_object_get(c, "learner"),
                   *leaving = json_object_get(c, "leaving"),
                   *handover = json_object_get(c, "want_primary");
            const struct {
                const char *kind;
                json_t *at, *from, *to;
            } mv[] = {{"learn", learner, primary, learner},
                      {"leave", leaving, leaving, learner ? learner : json_null()},
                      {"handover", handover, primary, handover}};
            for (size_t m = 0; m < 3; m++) {
                if (json_is_string(mv[m].at))
                    json_array_append_new(
                        moves, json_pack("{s:s, s:O, s:I, s:O, s:O}", "kind", mv[m].kind, "table",
                                         json_object_get(t, "name"), "index", (json_int_t)p, "from",
                                         mv[m].from, "to", mv[m].to));
            }
            json_array_foreach(nodes, i, n)
            {
                const char *addr = json_string_value(json_object_get(n, "address"));
                if (json_is_string(primary) && strcmp(addr, json_string_value(primary)) == 0)
                    json_object_set_new(
                        n, "primaries",
                        json_integer(json_integer_value(json_object_get(n, "primaries")) + 1));
                size_t s;
                json_t *sec;
                json_array_foreach(secs, s, sec)
                {
                    if (strcmp(addr, json_string_value(sec)) == 0)
                        json_object_set_new(
                            n, "secondaries",
                            json_integer(json_integer_value(json_object_get(n, "secondaries")) +
                                         1));
                }
            }
            if (have >= want)
                continue;
            under_count++;
            if (json_array_size(under) < (size_t)limit)
                json_array_append_new(under,
                                      json_pack("{s:O, s:I, s:I, s:I, s:O, s:O}", "table",
                                                json_object_get(t, "name"), "index", (json_int_t)p,
                                                "replica_count", want, "replicas", have, "primary",
                                                primary, "secondaries", secs));
        }
    }
    api_reply_json(req, 200,
                   json_pack("{s:o, s:O, s:I, s:I, s:o, s:o}", "nodes", nodes, "meta_leader",
                             json_object_get(map, "meta_leader"), "partition_count",
                             (json_int_t)partitions, "under_replicated_count",
                             (json_int_t)under_count, "under_replicated", under, "moves", moves));
}

void api_h_cluster(struct api_request *req)
{
    const struct api_config *cfg = api_config(req);
    int64_t max = (int64_t)cfg->max_page_cells;
    int64_t limit = 0;
    if (api_query_i64(req, "limit", CLUSTER_DEFAULT_LIMIT < max ? CLUSTER_DEFAULT_LIMIT : max, 0,
                      max, &limit) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "limit must be an integer in 0..%lld",
                          (long long)max);
        return;
    }
    if (repl_registry_member(api_registry(req))) {
        json_t *map = repl_registry_map_json(api_registry(req));
        if (!map) {
            api_reply_problem(req, 503, "NOT_READY", "this node has not heard from meta yet");
            return;
        }
        cluster_of_map(req, map, limit);
        json_decref(map);
        return;
    }
    char self[300];
    api_node_address(req, self, sizeof(self));

    struct repl_table_meta *tables = NULL;
    size_t n_tables = 0;
    int rc = repl_table_list(api_registry(req), false, &tables, &n_tables);
    if (rc < 0) {
        api_reply_error(req, rc, "cannot list the tables: %s", cellar_strerror(rc));
        return;
    }
    uint64_t partitions = 0, under_count = 0;
    json_t *under = json_array();
    for (size_t i = 0; i < n_tables; i++) {
        const struct repl_table_meta *m = &tables[i];
        partitions += m->partition_count;
        if (m->replica_count <= 1)
            continue; /* this node alone is the full group */
        under_count += m->partition_count;
        for (uint32_t p = 0; p < m->partition_count && json_array_size(under) < (size_t)limit; p++)
            json_array_append_new(under, json_pack("{s:s, s:I, s:I, s:I, s:s, s:[]}", "table",
                                                   m->name, "index", (json_int_t)p, "replica_count",
                                                   (json_int_t)m->replica_count, "replicas",
                                                   (json_int_t)1, "primary", self, "secondaries"));
    }
    free(tables);
    json_t *node = json_pack("{s:s, s:s, s:[ss], s:I, s:I}", "address", self, "state", "alive",
                             "roles", "meta", "data", "primaries", (json_int_t)partitions,
                             "secondaries", (json_int_t)0);
    api_reply_json(req, 200,
                   json_pack("{s:[o], s:s, s:I, s:I, s:o, s:[]}", "nodes", node, "meta_leader",
                             self, "partition_count", (json_int_t)partitions,
                             "under_replicated_count", (json_int_t)under_count, "under_replicated",
                             under, "moves"));
}

/* POST /v1/cluster/nodes/{address}/drain and DELETE
 * /v1/cluster/nodes/{address}: the meta server's (relayed there from
 * any other node). 202 with the node (state draining or drained); 200
 * when forgotten; 404 NOT_FOUND; 409 NODE_HOLDS_DATA while a
 * configuration names the node, NODE_NOT_RETIRED when it is alive and not
 * drained. A node of its own has nowhere to move its replicas: 409
 * NOT_ENOUGH_NODES, or NODE_HOLDS_DATA to forget it. */
void api_h_cluster_node_moves(struct api_request *req)
{
    const struct api_bytes *addr = &req->segs[3];
    char text[REPL_ADDR_MAX];
    if (addr->len == 0 || addr->len >= sizeof(text)) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "a node address is HOST:PORT");
        return;
    }
    memcpy(text, addr->data, addr->len);
    text[addr->len] = '\0';
    if (repl_addr_valid(text) < 0) {
        api_reply_problem(req, 400, "INVALID_ARGUMENT", "a node address is HOST:PORT");
        return;
    }
    bool drain = req->method == API_POST;
    const struct api_cluster *c = &req->srv->cluster;
    if (!c->cfg) {
        char self[300];
        api_node_address(req, self, sizeof(self));
        if (strcmp(self, text) != 0)
            api_reply_problem(req, 404, "NOT_FOUND", "no node %s in this cluster", text);
        else if (drain)
            api_reply_problem(req, 409, "NOT_ENOUGH_NODES",
                              "%s is a node of its own: there is no other node to move its "
                              "replicas to",
                              text);
        else
            api_reply_problem(req, 409, "NODE_HOLDS_DATA", "%s holds every partition", text);
        return;
    }
    if (!c->meta) {
        if (req->forwarded)
            api_reply_problem(req, 503, "META_UNAVAILABLE", "this node is not the meta server");
        else
            api_forward_to(req, c->cfg->meta_servers[0], "META_UNAVAILABLE",
                           c->cfg->forward_wait_ms);
        return;
    }
    json_t *node = NULL;
    int rc = drain ? repl_meta_drain(c->meta, text, &node) : repl_meta_forget(c->meta, text);
    if (rc == -CELLAR_ENOTFOUND)
        api_reply_problem(req, 404, "NOT_FOUND", "no node %s in this cluster", text);
    else if (rc == -CELLAR_EEXIST)
        api_reply_problem(req, 409, "NODE_HOLDS_DATA",
                          "a partition's configuration still names %s; drain it first", text);
    else if (rc == -CELLAR_EBUSY)
        api_reply_problem(req, 409, "NODE_NOT_RETIRED",
                          "%s is alive and not drained: drain it first, or stop it", text);
    else if (rc < 0)
        api_reply_error(req, rc, "%s of %s", drain ? "draining" : "forgetting", text);
    else if (drain)
        api_reply_json(req, 202, node);
    else
        api_reply_json(req, 200, json_pack("{s:s, s:b}", "address", text, "forgotten", true));
}

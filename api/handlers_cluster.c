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
    const struct api_config *cfg = api_config(req);
    bool v6 = strchr(cfg->listen_host, ':') != NULL;
    snprintf(buf, size, "%s%s%s:%u", v6 ? "[" : "", cfg->listen_host, v6 ? "]" : "",
             (unsigned)api_server_port(req->srv));
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
    json_t *node = json_pack("{s:s, s:s, s:I, s:I}", "address", self, "state", "alive", "primaries",
                             (json_int_t)partitions, "secondaries", (json_int_t)0);
    api_reply_json(req, 200,
                   json_pack("{s:[o], s:s, s:I, s:I, s:o}", "nodes", node, "meta_leader", self,
                             "partition_count", (json_int_t)partitions, "under_replicated_count",
                             (json_int_t)under_count, "under_replicated", under));
}

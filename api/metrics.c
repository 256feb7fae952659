/*
 * metrics.c - request counters and latency histograms, and the /metrics
 * page in Prometheus text format (version 0.0.4).
 *
 * Design: fixed arrays indexed by (route, method, status) and (route,
 * method, latency bucket), bumped with relaxed atomic adds when a request
 * completes, so recording costs no lock. The page also reports the table
 * registry (tables, partitions), the partition writers (group commits,
 * mutations, queue depth, group size and commit time histograms) and, per
 * partition, RocksDB's figures and the queue depth, plus the shared block
 * cache (usage, hits and misses).
 *
 * Threads: api_metrics_record from MHD workers (completion callback);
 * the page from an MHD worker.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "api/internal.h"

#define MAX_ROUTES 40
#define N_METHODS 8
static const unsigned statuses[] = {200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 409,
                                    412, 413, 414, 415, 422, 429, 500, 503, 504, 507, 0};
#define N_STATUSES (sizeof(statuses) / sizeof(statuses[0])) /* last: any other */
static const double bounds_s[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                  0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
#define N_BUCKETS (sizeof(bounds_s) / sizeof(bounds_s[0]) + 1) /* last: +Inf */

struct api_metrics {
    uint64_t requests[MAX_ROUTES + 1][N_METHODS][N_STATUSES]; /* last route: unmatched */
    uint64_t latency[MAX_ROUTES + 1][N_METHODS][N_BUCKETS];
    uint64_t latency_sum_us[MAX_ROUTES + 1][N_METHODS];
    uint64_t latency_count[MAX_ROUTES + 1][N_METHODS];
};

struct api_metrics *api_metrics_new(void)
{
    CELLAR_ASSERT(api_route_count() <= MAX_ROUTES);
    return cellar_xcalloc(1, sizeof(struct api_metrics));
}

void api_metrics_free(struct api_metrics *m)
{
    free(m);
}

static size_t method_index(enum api_method m)
{
    for (size_t i = 0; i < N_METHODS - 1; i++) {
        if (m == (enum api_method)(1u << i))
            return i;
    }
    return N_METHODS - 1;
}

static const char *method_label(size_t i)
{
    static const char *const names[N_METHODS] = {"GET",    "HEAD",  "PUT",     "POST",
                                                 "DELETE", "PATCH", "OPTIONS", "other"};
    return names[i];
}

void api_metrics_record(struct api_metrics *m, int route, enum api_method method, unsigned status,
                        uint64_t elapsed_us)
{
    size_t r = route < 0 ? MAX_ROUTES : (size_t)route;
    size_t s = 0, k = method_index(method);
    while (statuses[s] && statuses[s] != status)
        s++;
    __atomic_add_fetch(&m->requests[r][k][s], 1, __ATOMIC_RELAXED);
    size_t b = 0;
    while (b < N_BUCKETS - 1 && (double)elapsed_us / 1e6 > bounds_s[b])
        b++;
    __atomic_add_fetch(&m->latency[r][k][b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->latency_sum_us[r][k], elapsed_us, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->latency_count[r][k], 1, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static const char *route_label(size_t r)
{
    return r == MAX_ROUTES ? "unmatched" : api_route_name((int)r);
}

/* One partition's figures, gathered under the registry lock and printed
 * after it, family by family. */
struct part_row {
    char table[REPL_TABLE_NAME_MAX + 1];
    uint32_t index;
    uint64_t queue_depth, committed_decree;
    uint64_t state; /* enum store_health */
    uint64_t ballot, logged_decree, primary, serving;
    struct store_partition_props props;
};

/* Replicas by role, and the primaries' replication figures summed. */
struct role_count {
    size_t primaries, secondaries;
    struct repl_replication_stats st;
};

struct part_rows {
    struct part_row *rows;
    size_t n, cap;
    struct role_count roles;
    struct store_engine *engine; /* of the first partition: every one shares it */
};

static void collect_partition(void *arg, const char *table, uint32_t index, struct repl_replica *r)
{
    struct part_rows *pr = arg;
    struct store_partition *p = repl_replica_partition(r);
    struct repl_writer *w = repl_replica_writer_any(r);
    if (pr->n == pr->cap) {
        pr->cap = pr->cap ? 2 * pr->cap : 16;
        pr->rows = cellar_xrealloc(pr->rows, pr->cap * sizeof(*pr->rows));
    }
    struct part_row *row = &pr->rows[pr->n++];
    snprintf(row->table, sizeof(row->table), "%s", table);
    row->index = index;
    struct repl_writer_stats ws;
    repl_writer_stats(w, &ws);
    row->queue_depth = ws.queue_depth;
    row->committed_decree = ws.committed_decree;
    row->logged_decree = ws.logged_decree;
    struct repl_config c;
    enum repl_role role;
    repl_replica_config(r, &c, &role);
    row->ballot = c.ballot;
    row->primary = role == REPL_ROLE_PRIMARY;
    struct store_partition *readable;
    row->serving = repl_replica_read(r, &readable) == 0;
    pr->roles.primaries += role == REPL_ROLE_PRIMARY;
    pr->roles.secondaries += role == REPL_ROLE_SECONDARY;
    struct repl_replication_stats rs;
    repl_replica_replication_stats(r, &rs);
    pr->roles.st.groups += rs.groups;
    pr->roles.st.failed += rs.failed;
    pr->roles.st.wait_us += rs.wait_us;
    pr->roles.st.dropped += rs.dropped;
    pr->roles.st.promotions += rs.promotions;
    pr->roles.st.learned += rs.learned;
    row->state = (uint64_t)store_partition_health(p, NULL, 0);
    store_partition_props(p, &row->props);
    if (!pr->engine)
        pr->engine = store_partition_engine(p);
}

/* The group commit time histogram, the per-partition gauges and the block
 * cache; the replicas by role in *roles. */
static void storage_metrics(struct cellar_buf *b, const struct repl_registry_stats *st,
                            struct repl_registry *reg, struct role_count *roles)
{
    cellar_buf_printf(b, "# HELP cellar_write_fsync_seconds Time of one group commit: the "
                         "RocksDB write and, under durability=fsync, the WAL fsync.\n"
                         "# TYPE cellar_write_fsync_seconds histogram\n");
    uint64_t cum = 0, commits = 0;
    for (size_t k = 0; k < REPL_COMMIT_BUCKETS; k++) {
        cum += st->writers.commit_buckets[k];
        if (k < REPL_COMMIT_BUCKETS - 1)
            cellar_buf_printf(b, "cellar_write_fsync_seconds_bucket{le=\"%g\"} %llu\n",
                              (double)REPL_COMMIT_BUCKET_US(k) / 1e6, (unsigned long long)cum);
    }
    commits = cum;
    cellar_buf_printf(
        b,
        "cellar_write_fsync_seconds_bucket{le=\"+Inf\"} %llu\n"
        "cellar_write_fsync_seconds_sum %.6f\ncellar_write_fsync_seconds_count %llu\n",
        (unsigned long long)commits, (double)st->writers.commit_us_sum / 1e6,
        (unsigned long long)commits);

    struct part_rows pr = {0};
    repl_registry_foreach_partition(reg, collect_partition, &pr);
    static const struct {
        const char *name, *help;
        size_t offset;
    } gauges[] = {
        {"cellar_partition_write_queue_depth", "Mutations waiting in the partition's write queue.",
         offsetof(struct part_row, queue_depth)},
        {"cellar_partition_committed_decree", "The partition's last durable decree.",
         offsetof(struct part_row, committed_decree)},
        {"cellar_partition_state", "A partition's health: 0 ok, 1 no_space, 2 failed.",
         offsetof(struct part_row, state)},
        {"cellar_partition_logged_decree",
         "The last decree in the replica's log (a secondary's may be ahead of what it applied).",
         offsetof(struct part_row, logged_decree)},
        {"cellar_partition_ballot", "The ballot of the replica's configuration.",
         offsetof(struct part_row, ballot)},
        {"cellar_partition_primary",
         "1 when this node holds the partition's primary, 0 when a "
         "secondary.",
         offsetof(struct part_row, primary)},
        {"cellar_partition_serving",
         "1 while this replica serves reads: the primary, ready, holding its lease (every "
         "secondary acked within fd_lease_ms).",
         offsetof(struct part_row, serving)},
        {"cellar_rocksdb_estimated_keys", "RocksDB's estimate of the cells in the partition.",
         offsetof(struct part_row, props.estimate_keys)},
        {"cellar_rocksdb_sst_bytes", "Size of the partition's SST files.",
         offsetof(struct part_row, props.sst_bytes)},
        {"cellar_rocksdb_memtable_bytes", "Size of the partition's memtables.",
         offsetof(struct part_row, props.memtable_bytes)},
        {"cellar_rocksdb_pending_compaction_bytes",
         "Bytes RocksDB estimates compaction has to rewrite in the partition.",
         offsetof(struct part_row, props.pending_compaction_bytes)},
        {"cellar_rocksdb_running_compactions", "Compactions running in the partition.",
         offsetof(struct part_row, props.running_compactions)},
    };
    for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++) {
        cellar_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n", gauges[g].name, gauges[g].help,
                          gauges[g].name);
        for (size_t i = 0; i < pr.n; i++) {
            uint64_t v;
            memcpy(&v, (const char *)&pr.rows[i] + gauges[g].offset, sizeof(v));
            cellar_buf_printf(b, "%s{table=\"%s\",partition=\"%u\"} %llu\n", gauges[g].name,
                              pr.rows[i].table, pr.rows[i].index, (unsigned long long)v);
        }
    }
    if (pr.engine) {
        struct store_cache_stats cs;
        store_engine_cache_stats(pr.engine, &cs);
        uint64_t lookups = cs.hits + cs.misses;
        cellar_buf_printf(
            b,
            "# HELP cellar_rocksdb_block_cache_capacity_bytes The node's shared block cache.\n"
            "# TYPE cellar_rocksdb_block_cache_capacity_bytes gauge\n"
            "cellar_rocksdb_block_cache_capacity_bytes %llu\n"
            "# HELP cellar_rocksdb_block_cache_usage_bytes Bytes in the block cache.\n"
            "# TYPE cellar_rocksdb_block_cache_usage_bytes gauge\n"
            "cellar_rocksdb_block_cache_usage_bytes %llu\n"
            "# HELP cellar_rocksdb_block_cache_pinned_bytes Bytes of the block cache in use.\n"
            "# TYPE cellar_rocksdb_block_cache_pinned_bytes gauge\n"
            "cellar_rocksdb_block_cache_pinned_bytes %llu\n"
            "# HELP cellar_rocksdb_block_cache_hits_total Block cache lookups that hit.\n"
            "# TYPE cellar_rocksdb_block_cache_hits_total counter\n"
            "cellar_rocksdb_block_cache_hits_total %llu\n"
            "# HELP cellar_rocksdb_block_cache_misses_total Block cache lookups that missed.\n"
            "# TYPE cellar_rocksdb_block_cache_misses_total counter\n"
            "cellar_rocksdb_block_cache_misses_total %llu\n"
            "# HELP cellar_rocksdb_block_cache_hit_ratio Hits over lookups since start.\n"
            "# TYPE cellar_rocksdb_block_cache_hit_ratio gauge\n"
            "cellar_rocksdb_block_cache_hit_ratio %.4f\n",
            (unsigned long long)cs.capacity, (unsigned long long)cs.usage,
            (unsigned long long)cs.pinned, (unsigned long long)cs.hits,
            (unsigned long long)cs.misses, lookups ? (double)cs.hits / (double)lookups : 0.0);
    }
    *roles = pr.roles;
    free(pr.rows);
}

/* Calls to each peer, as three families: <prefix>_requests_total,
 * <prefix>_errors_total, <prefix>_seconds (a summary). */
static void peer_figures(struct cellar_buf *b, const char *prefix, const char *calls_help,
                         const char *errors_help, const char *seconds_help,
                         struct repl_peer_figures *figures)
{
    struct repl_peer_figure peers[REPL_PEER_FIGURES_MAX];
    size_t n = repl_peer_figures_get(figures, peers, REPL_PEER_FIGURES_MAX);
    cellar_buf_printf(b, "# HELP %s_requests_total %s\n# TYPE %s_requests_total counter\n", prefix,
                      calls_help, prefix);
    for (size_t i = 0; i < n; i++)
        cellar_buf_printf(b, "%s_requests_total{peer=\"%s\"} %llu\n", prefix, peers[i].addr,
                          (unsigned long long)peers[i].calls);
    cellar_buf_printf(b, "# HELP %s_errors_total %s\n# TYPE %s_errors_total counter\n", prefix,
                      errors_help, prefix);
    for (size_t i = 0; i < n; i++)
        cellar_buf_printf(b, "%s_errors_total{peer=\"%s\"} %llu\n", prefix, peers[i].addr,
                          (unsigned long long)peers[i].errors);
    cellar_buf_printf(b, "# HELP %s_seconds %s\n# TYPE %s_seconds summary\n", prefix, seconds_help,
                      prefix);
    for (size_t i = 0; i < n; i++)
        cellar_buf_printf(b,
                          "%s_seconds_sum{peer=\"%s\"} %.6f\n"
                          "%s_seconds_count{peer=\"%s\"} %llu\n",
                          prefix, peers[i].addr, (double)peers[i].us_sum / 1e6, prefix,
                          peers[i].addr, (unsigned long long)peers[i].calls);
}

/* The node's view of its cluster (nodes by state, replicas here by role)
 * and what it relayed to each peer. A cluster of one is one alive node
 * with every replica primary. */
static void cluster_metrics(struct api_request *req, struct cellar_buf *b,
                            const struct role_count *rc)
{
    static const char *const states[] = {"alive", "unreachable", "dead"};
    size_t by_state[3] = {0};
    json_t *map = repl_registry_map_json(api_registry(req));
    if (map) {
        size_t i;
        json_t *n;
        json_array_foreach(json_object_get(map, "nodes"), i, n)
        {
            const char *s = json_string_value(json_object_get(n, "state"));
            for (size_t k = 0; s && k < 3; k++)
                by_state[k] += strcmp(s, states[k]) == 0;
        }
        json_decref(map);
    } else {
        by_state[0] = 1;
    }
    cellar_buf_printf(b, "# HELP cellar_cluster_nodes Nodes of the cluster by state, as this node "
                         "knows them.\n# TYPE cellar_cluster_nodes gauge\n");
    for (size_t k = 0; k < 3; k++)
        cellar_buf_printf(b, "cellar_cluster_nodes{state=\"%s\"} %zu\n", states[k], by_state[k]);
    cellar_buf_printf(
        b,
        "# HELP cellar_replicas Replicas this node holds, by role.\n"
        "# TYPE cellar_replicas gauge\n"
        "cellar_replicas{role=\"primary\"} %zu\n"
        "cellar_replicas{role=\"secondary\"} %zu\n"
        "# HELP cellar_replication_groups_total Groups this node's primaries sent to their "
        "secondaries.\n"
        "# TYPE cellar_replication_groups_total counter\n"
        "cellar_replication_groups_total %llu\n"
        "# HELP cellar_replication_failed_groups_total Groups not logged by every secondary "
        "(refused to the client: not applied, or its outcome unknown).\n"
        "# TYPE cellar_replication_failed_groups_total counter\n"
        "cellar_replication_failed_groups_total %llu\n"
        "# HELP cellar_replication_wait_seconds_total Time groups waited for the secondaries.\n"
        "# TYPE cellar_replication_wait_seconds_total counter\n"
        "cellar_replication_wait_seconds_total %.6f\n"
        "# HELP cellar_replication_secondaries_dropped_total Secondaries meta dropped at the "
        "request of this node's primaries.\n"
        "# TYPE cellar_replication_secondaries_dropped_total counter\n"
        "cellar_replication_secondaries_dropped_total %llu\n"
        "# HELP cellar_replication_promotions_total Times a secondary here took over as its "
        "partition's primary (failovers).\n"
        "# TYPE cellar_replication_promotions_total counter\n"
        "cellar_replication_promotions_total %llu\n"
        "# HELP cellar_replication_learned_entries_total Log entries this node's primaries sent "
        "to learners.\n"
        "# TYPE cellar_replication_learned_entries_total counter\n"
        "cellar_replication_learned_entries_total %llu\n",
        rc->primaries, rc->secondaries, (unsigned long long)rc->st.groups,
        (unsigned long long)rc->st.failed, (double)rc->st.wait_us / 1e6,
        (unsigned long long)rc->st.dropped, (unsigned long long)rc->st.promotions,
        (unsigned long long)rc->st.learned);
    uint64_t copies, copied;
    repl_learning_stats(req->srv->cluster.learning, &copies, &copied);
    cellar_buf_printf(b,
                      "# HELP cellar_replication_checkpoint_copies_total Replicas here replaced "
                      "by a copy of their primary's checkpoint (learners the log could not "
                      "catch up).\n"
                      "# TYPE cellar_replication_checkpoint_copies_total counter\n"
                      "cellar_replication_checkpoint_copies_total %llu\n"
                      "# HELP cellar_replication_checkpoint_bytes_total Bytes of checkpoints "
                      "copied here from primaries.\n"
                      "# TYPE cellar_replication_checkpoint_bytes_total counter\n"
                      "cellar_replication_checkpoint_bytes_total %llu\n",
                      (unsigned long long)copies, (unsigned long long)copied);
    peer_figures(b, "cellar_forward", "Requests relayed to each peer.",
                 "Relayed requests with no answer (the peer not reached, or silent).",
                 "Time from relaying a request to its answer, per peer.",
                 req->srv->cluster.forwarder ? repl_forwarder_figures(req->srv->cluster.forwarder)
                                             : NULL);
    uint64_t envelopes = 0, carried = 0;
    if (req->srv->cluster.forwarder)
        repl_forwarder_envelopes(req->srv->cluster.forwarder, &envelopes, &carried);
    cellar_buf_printf(b,
                      "# HELP cellar_forward_envelopes_total Envelopes sent: requests queued "
                      "for one peer at the same moment, relayed in one exchange.\n"
                      "# TYPE cellar_forward_envelopes_total counter\n"
                      "cellar_forward_envelopes_total %llu\n"
                      "# HELP cellar_forward_enveloped_requests_total Relayed requests that "
                      "went in envelopes.\n"
                      "# TYPE cellar_forward_enveloped_requests_total counter\n"
                      "cellar_forward_enveloped_requests_total %llu\n",
                      (unsigned long long)envelopes, (unsigned long long)carried);
    peer_figures(b, "cellar_replication_prepare",
                 "Prepares (groups and heartbeats) this node's primaries sent to each secondary "
                 "or learner.",
                 "Prepares with no answer (the peer not reached, or silent).",
                 "Round trip of a prepare, from sending it to the peer's answer (its log "
                 "written, and fsynced under durability = fsync).",
                 req->srv->cluster.prepares);
}

void api_h_metrics(struct api_request *req)
{
    struct api_metrics *m = api_metrics(req);
    struct cellar_buf b = {0};
    size_t routes = api_route_count();
    cellar_buf_printf(&b, "# HELP cellar_http_requests_total HTTP requests by route, method "
                          "and status.\n# TYPE cellar_http_requests_total counter\n");
    for (size_t r = 0; r <= MAX_ROUTES; r++) {
        if (r >= routes && r != MAX_ROUTES)
            continue;
        for (size_t k = 0; k < N_METHODS; k++) {
            for (size_t s = 0; s < N_STATUSES; s++) {
                uint64_t v = load(&m->requests[r][k][s]);
                if (!v)
                    continue;
                char status[16];
                if (statuses[s])
                    snprintf(status, sizeof(status), "%u", statuses[s]);
                else
                    snprintf(status, sizeof(status), "other");
                cellar_buf_printf(&b,
                                  "cellar_http_requests_total{route=\"%s\",method=\"%s\","
                                  "status=\"%s\"} %llu\n",
                                  route_label(r), method_label(k), status, (unsigned long long)v);
            }
        }
    }
    cellar_buf_printf(&b, "# HELP cellar_http_request_duration_seconds Time from the first byte "
                          "of a request to its completion, by route and method.\n"
                          "# TYPE cellar_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= MAX_ROUTES; r++) {
        if (r >= routes && r != MAX_ROUTES)
            continue;
        for (size_t k = 0; k < N_METHODS; k++) {
            if (!load(&m->latency_count[r][k]))
                continue;
            char labels[128];
            snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\"", route_label(r),
                     method_label(k));
            uint64_t cum = 0;
            for (size_t i = 0; i < N_BUCKETS; i++) {
                cum += load(&m->latency[r][k][i]);
                char le[16];
                if (i < N_BUCKETS - 1)
                    snprintf(le, sizeof(le), "%g", bounds_s[i]);
                else
                    snprintf(le, sizeof(le), "+Inf");
                cellar_buf_printf(
                    &b, "cellar_http_request_duration_seconds_bucket{%s,le=\"%s\"} %llu\n", labels,
                    le, (unsigned long long)cum);
            }
            cellar_buf_printf(&b,
                              "cellar_http_request_duration_seconds_sum{%s} %.6f\n"
                              "cellar_http_request_duration_seconds_count{%s} %llu\n",
                              labels, (double)load(&m->latency_sum_us[r][k]) / 1e6, labels,
                              (unsigned long long)load(&m->latency_count[r][k]));
        }
    }

    struct repl_registry_stats st;
    repl_registry_stats(api_registry(req), &st);
    cellar_buf_printf(
        &b,
        "# HELP cellar_tables Tables being served.\n# TYPE cellar_tables gauge\n"
        "cellar_tables %zu\n"
        "# HELP cellar_partitions Partitions open on this node.\n"
        "# TYPE cellar_partitions gauge\ncellar_partitions %zu\n"
        "# HELP cellar_write_batches_total Group commits.\n"
        "# TYPE cellar_write_batches_total counter\n"
        "cellar_write_batches_total %llu\n"
        "# HELP cellar_write_batch_failures_total Group commits that failed.\n"
        "# TYPE cellar_write_batch_failures_total counter\n"
        "cellar_write_batch_failures_total %llu\n"
        "# HELP cellar_write_mutations_total Mutations committed.\n"
        "# TYPE cellar_write_mutations_total counter\n"
        "cellar_write_mutations_total %llu\n"
        "# HELP cellar_write_gathers_total Replicated groups that waited for "
        "more writes before they went out (prepare_gather_us).\n"
        "# TYPE cellar_write_gathers_total counter\n"
        "cellar_write_gathers_total %llu\n"
        "# HELP cellar_write_queue_depth Mutations waiting in write queues.\n"
        "# TYPE cellar_write_queue_depth gauge\ncellar_write_queue_depth %llu\n"
        "# HELP cellar_write_batch_size Mutations per group commit.\n"
        "# TYPE cellar_write_batch_size histogram\n",
        st.tables, st.partitions, (unsigned long long)st.writers.batches,
        (unsigned long long)st.writers.failed_batches, (unsigned long long)st.writers.mutations,
        (unsigned long long)st.writers.gathers, (unsigned long long)st.writers.queue_depth);
    size_t nb = sizeof(st.writers.batch_size_buckets) / sizeof(st.writers.batch_size_buckets[0]);
    uint64_t cum = 0;
    for (size_t k = 0; k < nb; k++) {
        cum += st.writers.batch_size_buckets[k];
        if (k < nb - 1)
            cellar_buf_printf(&b, "cellar_write_batch_size_bucket{le=\"%llu\"} %llu\n", 1ull << k,
                              (unsigned long long)cum);
    }
    cellar_buf_printf(&b,
                      "cellar_write_batch_size_bucket{le=\"+Inf\"} %llu\n"
                      "cellar_write_batch_size_sum %llu\ncellar_write_batch_size_count %llu\n",
                      (unsigned long long)cum, (unsigned long long)st.writers.mutations,
                      (unsigned long long)st.writers.batches);
    struct role_count roles = {0};
    storage_metrics(&b, &st, api_registry(req), &roles);
    api_metrics_partition_health(&b, &st);
    cluster_metrics(req, &b, &roles);
    size_t len = 0;
    char *text = cellar_buf_steal(&b, &len);
    struct MHD_Response *resp = api_response(req, len, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
    api_reply_response(req, 200, resp);
}

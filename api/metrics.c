/*
 * metrics.c - request counters and latency histograms, and the /metrics
 * page in Prometheus text format (version 0.0.4).
 *
 * Design: fixed arrays indexed by (route, method, status) and (route,
 * latency bucket), bumped with relaxed atomic adds when a request
 * completes, so recording costs no lock. The page also reports the table
 * registry (tables, partitions) and the partition writers (group commits,
 * mutations, queue depth, group size histogram).
 *
 * Threads: api_metrics_record from MHD workers (completion callback);
 * the page from an MHD worker.
 */
#include <string.h>

#include "api/internal.h"

#define MAX_ROUTES 32
#define N_METHODS 8
static const unsigned statuses[] = {200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 409,
                                    412, 413, 414, 415, 422, 429, 500, 503, 504, 507, 0};
#define N_STATUSES (sizeof(statuses) / sizeof(statuses[0])) /* last: any other */
static const double bounds_s[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_BUCKETS (sizeof(bounds_s) / sizeof(bounds_s[0]) + 1) /* last: +Inf */

struct api_metrics {
    uint64_t requests[MAX_ROUTES + 1][N_METHODS][N_STATUSES]; /* last route: unmatched */
    uint64_t latency[MAX_ROUTES + 1][N_BUCKETS];
    uint64_t latency_sum_us[MAX_ROUTES + 1];
    uint64_t latency_count[MAX_ROUTES + 1];
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
    size_t s = 0;
    while (statuses[s] && statuses[s] != status)
        s++;
    __atomic_add_fetch(&m->requests[r][method_index(method)][s], 1, __ATOMIC_RELAXED);
    size_t b = 0;
    while (b < N_BUCKETS - 1 && (double)elapsed_us / 1e6 > bounds_s[b])
        b++;
    __atomic_add_fetch(&m->latency[r][b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->latency_sum_us[r], elapsed_us, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->latency_count[r], 1, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static const char *route_label(size_t r)
{
    return r == MAX_ROUTES ? "unmatched" : api_route_name((int)r);
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
                          "of a request to its completion, by route.\n"
                          "# TYPE cellar_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= MAX_ROUTES; r++) {
        if ((r >= routes && r != MAX_ROUTES) || !load(&m->latency_count[r]))
            continue;
        uint64_t cum = 0;
        for (size_t k = 0; k < N_BUCKETS; k++) {
            cum += load(&m->latency[r][k]);
            if (k < N_BUCKETS - 1)
                cellar_buf_printf(&b,
                                  "cellar_http_request_duration_seconds_bucket{route=\"%s\","
                                  "le=\"%g\"} %llu\n",
                                  route_label(r), bounds_s[k], (unsigned long long)cum);
            else
                cellar_buf_printf(&b,
                                  "cellar_http_request_duration_seconds_bucket{route=\"%s\","
                                  "le=\"+Inf\"} %llu\n",
                                  route_label(r), (unsigned long long)cum);
        }
        cellar_buf_printf(&b,
                          "cellar_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                          "cellar_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                          route_label(r), (double)load(&m->latency_sum_us[r]) / 1e6, route_label(r),
                          (unsigned long long)load(&m->latency_count[r]));
    }

    struct repl_registry_stats st;
    repl_registry_stats(api_registry(req), &st);
    cellar_buf_printf(&b,
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
                      "# HELP cellar_write_queue_depth Mutations waiting in write queues.\n"
                      "# TYPE cellar_write_queue_depth gauge\ncellar_write_queue_depth %llu\n"
                      "# HELP cellar_write_batch_size Mutations per group commit.\n"
                      "# TYPE cellar_write_batch_size histogram\n",
                      st.tables, st.partitions, (unsigned long long)st.writers.batches,
                      (unsigned long long)st.writers.failed_batches,
                      (unsigned long long)st.writers.mutations,
                      (unsigned long long)st.writers.queue_depth);
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
    api_metrics_partition_health(&b, api_registry(req));
    size_t len = 0;
    char *text = cellar_buf_steal(&b, &len);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
    api_reply_response(req, 200, resp);
}

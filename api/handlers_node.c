/*
 * handlers_node.c - the node's own endpoints: /healthz (the process runs)
 * and /readyz (it serves its partitions; 503 before that and while
 * stopping), /openapi.yaml (the API description built into the binary),
 * and /internal/v1/node (what this node is, for its peers; the cluster
 * secret guards it).
 * Threads: MHD workers.
 */
#include "api/internal.h"

/* From openapi_blob.S. */
extern const char api_openapi_yaml[];
extern const uint64_t api_openapi_yaml_len;

void api_h_healthz(struct api_request *req)
{
    api_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

void api_h_readyz(struct api_request *req)
{
    if (!api_ready(req)) {
        api_reply_problem(req, 503, "NOT_READY", "the node is not serving its partitions");
        return;
    }
    api_reply_json(req, 200, json_pack("{s:s}", "status", "ready"));
}

void api_h_openapi(struct api_request *req)
{
    size_t len = (size_t)api_openapi_yaml_len;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)api_openapi_yaml, MHD_RESPMEM_PERSISTENT);
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

/*
 * handlers_node.c - the node's own endpoints: /healthz (the process runs)
 * and /readyz (it serves its partitions; 503 before that and while
 * stopping). Threads: MHD workers.
 */
#include "api/internal.h"

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

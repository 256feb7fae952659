"""The node's own endpoints, routing errors and CORS."""
import yaml

from helpers import CORS_ORIGIN, SPEC, cell, local_hashkey, unique


def test_healthz(api):
    assert api.get("/healthz").ok() == {"status": "ok"}


def test_readyz(api):
    assert api.get("/readyz").ok() == {"status": "ready"}


def test_openapi_served_is_the_repository_document(api):
    r = api.get("/openapi.yaml")
    assert r.status == 200
    assert r.headers["content-type"].split(";")[0] == "application/yaml", r.headers
    assert r.body == SPEC.raw, "the binary serves another openapi.yaml than the repository's"
    doc = yaml.safe_load(r.body)
    assert doc["openapi"] == "3.0.3"


def test_openapi_document_is_complete():
    """Every operation has an id and at least one success response; every
    error response is problem+json; the codes are exactly the contract's."""
    ids = set()
    for template, item in SPEC.doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            assert op.get("operationId"), (template, method)
            assert op["operationId"] not in ids
            ids.add(op["operationId"])
            statuses = [int(s) for s in op["responses"] if s != "default"]
            assert any(200 <= s < 300 for s in statuses), (template, method)
            for s, resp in op["responses"].items():
                resp = SPEC.resolve(resp)
                if s != "default" and int(s) >= 400 and method != "head":
                    assert list(resp.get("content", {})) == ["application/problem+json"], (template, method, s)
    assert SPEC.error_codes == {
        "INVALID_ARGUMENT", "INVALID_JSON", "INVALID_KEY", "INVALID_TABLE_NAME", "INVALID_CURSOR",
        "TOO_MANY_ITEMS", "NOT_FOUND", "TABLE_NOT_FOUND", "CELL_NOT_FOUND", "METHOD_NOT_ALLOWED",
        "TABLE_EXISTS", "PRECONDITION_FAILED", "TOO_LARGE", "URI_TOO_LONG", "UNSUPPORTED_MEDIA_TYPE",
        "NOT_AN_INTEGER", "INTEGER_OVERFLOW", "THROTTLED", "TABLE_READ_ONLY", "BUSY", "SHUTTING_DOWN",
        "NOT_READY", "PARTITION_UNAVAILABLE", "INSUFFICIENT_STORAGE", "INTERNAL", "NOT_ENOUGH_NODES",
        "NODE_HOLDS_DATA", "NODE_NOT_RETIRED", "NO_PRIMARY", "META_UNAVAILABLE", "OUTCOME_UNKNOWN"}
    paths = set(SPEC.doc["paths"])
    for p in ("/healthz", "/readyz", "/metrics", "/openapi.yaml", "/v1/tables", "/v1/tables/{table}",
              "/v1/tables/{table}/recall", "/v1/tables/{table}/compact", "/v1/tables/{table}/scan",
              "/v1/tables/{table}/batch-get", "/v1/tables/{table}/batch-write",
              "/v1/tables/{table}/rows/{hashkey}", "/v1/tables/{table}/rows/{hashkey}/count",
              "/v1/tables/{table}/rows/{hashkey}/check-and-mutate",
              "/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}",
              "/v1/tables/{table}/rows/{hashkey}/cells/{sortkey}/incr", "/v1/cluster", "/", "/docs",
              "/ui/{asset}"):
        assert p in paths, p
    # Stated defaults and limits.
    params = SPEC.doc["components"]["parameters"]
    assert params["limit"]["schema"]["default"] == 100 and params["limit"]["schema"]["maximum"] == 10000
    assert params["max_bytes"]["schema"]["default"] == 4194304
    assert params["start_inclusive"]["schema"]["default"] is True
    assert params["stop_inclusive"]["schema"]["default"] is False
    assert params["values"]["schema"]["default"] is True
    create = SPEC.doc["components"]["schemas"]["TableCreate"]["properties"]
    assert create["partition_count"]["default"] == 8 and create["replica_count"]["default"] == 1


def test_every_documented_route_is_served(api, table):
    """A request to each documented path and method reaches a handler: no
    404 NOT_FOUND and no 405 from routing."""
    filled = {"table": table, "hashkey": "h", "sortkey": "s", "asset": "app.js"}
    for template, item in SPEC.doc["paths"].items():
        path = template
        for k, v in filled.items():
            path = path.replace("{%s}" % k, v)
        for method in item:
            if method in ("parameters",):
                continue
            headers = {}
            if method == "options":
                headers = {"Origin": CORS_ORIGIN, "Access-Control-Request-Method": "GET"}
            body = None
            if method in ("post", "patch", "put") and "cells/{sortkey}" not in template:
                body = b"{}"
                headers["Content-Type"] = "application/json"
            if method in ("delete", "put") and template in ("/v1/tables/{table}",):
                continue  # not on the shared table
            r = api.call(method.upper(), path, body=body, headers=headers)
            assert r.status not in (405,), r
            assert not (r.status == 404 and r.json and r.json["code"] == "NOT_FOUND"), r


def test_unknown_route_is_404_problem(api):
    for path in ("/v2/tables", "/v1", "/v1/tables/t/rows", "/v1/tables/t/rows/h/cells/s/x",
                 "/nothing", "/v1/tables/t/other"):
        api.get(path).problem(404, "NOT_FOUND")


def test_wrong_method_is_405_with_allow(api, table):
    cases = [
        ("POST", "/v1/tables", {"GET"}),
        ("POST", "/healthz", {"GET"}),
        ("DELETE", "/metrics", {"GET"}),
        ("POST", "/v1/tables/%s" % table, {"GET", "PUT", "PATCH", "DELETE"}),
        ("GET", "/v1/tables/%s/recall" % table, {"POST"}),
        ("GET", "/v1/tables/%s/compact" % table, {"POST"}),
        ("POST", "/v1/tables/%s/scan" % table, {"GET"}),
        ("GET", "/v1/tables/%s/batch-get" % table, {"POST"}),
        ("PUT", "/v1/tables/%s/batch-write" % table, {"POST"}),
        ("PUT", "/v1/tables/%s/rows/h" % table, {"GET", "PATCH", "DELETE"}),
        ("POST", "/v1/tables/%s/rows/h/count" % table, {"GET"}),
        ("GET", "/v1/tables/%s/rows/h/check-and-mutate" % table, {"POST"}),
        ("PATCH", cell(table, "h", "s"), {"GET", "PUT", "DELETE"}),
        ("POST", cell(table, "h", "s"), {"GET", "PUT", "DELETE"}),
        ("GET", cell(table, "h", "s") + "/incr", {"POST"}),
    ]
    for method, path, must in cases:
        r = api.call(method, path)
        r.problem(405, "METHOD_NOT_ALLOWED")
        allow = {m.strip() for m in r.headers["allow"].split(",")}
        assert must <= allow, (method, path, allow)
        assert method not in allow, (method, path, allow)


def test_metrics(api, table):
    api.put(cell(table, "metrics-h", "s"), b"v")
    api.get(cell(table, "metrics-h", "s"))
    r = api.get("/metrics")
    assert r.status == 200
    assert r.headers["content-type"].replace(" ", "") == "text/plain;version=0.0.4", r.headers
    text = r.body.decode()
    for family, kind in (("cellar_http_requests_total", "counter"),
                         ("cellar_http_request_duration_seconds", "histogram"),
                         ("cellar_tables", "gauge"), ("cellar_partitions", "gauge"),
                         ("cellar_write_batches_total", "counter"),
                         ("cellar_write_mutations_total", "counter"),
                         ("cellar_write_batch_size", "histogram"),
                         ("cellar_write_queue_depth", "gauge")):
        assert "# TYPE %s %s" % (family, kind) in text, family
    lines = [line for line in text.splitlines() if line.startswith("cellar_http_requests_total{")]
    assert any('method="PUT"' in line and 'status="201"' in line for line in lines), lines
    for line in lines:
        assert 'route="' in line and 'method="' in line and 'status="' in line, line
    assert "cellar_http_request_duration_seconds_bucket{" in text
    assert 'le="+Inf"' in text
    # Counts grow.

    def total():
        t = api.get("/metrics").body.decode()
        return sum(float(x.rsplit(" ", 1)[1]) for x in t.splitlines()
                   if x.startswith("cellar_write_mutations_total"))
    before = total()
    # A row this node commits itself (in a cluster, one whose primary it is).
    api.put(cell(table, local_hashkey(api, table, "metrics-h"), "s2"), b"v")
    assert total() >= before + 1


def test_cors_allowed_origin(api, table):
    r = api.get("/v1/tables/%s" % table, headers={"Origin": CORS_ORIGIN})
    assert r.status == 200
    assert r.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "Origin" in r.headers["vary"]
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "location", "retry-after"} <= exposed
    # Errors carry them too.
    r = api.get("/v1/tables/%s" % unique("nope"), headers={"Origin": CORS_ORIGIN})
    assert r.status == 404 and r.headers["access-control-allow-origin"] == CORS_ORIGIN


def test_cors_other_origin_gets_no_cors_headers(api):
    r = api.get("/healthz", headers={"Origin": "http://evil.example"})
    assert r.status == 200
    assert not [h for h in r.headers if h.startswith("access-control-")], r.headers
    r = api.get("/healthz")
    assert not [h for h in r.headers if h.startswith("access-control-")], r.headers


def test_cors_preflight_on_any_path(api, table):
    for path in ("/v1/tables/%s" % table, cell(table, "h", "s"), "/v1/tables/%s/rows/h" % table,
                 "/healthz"):
        r = api.call("OPTIONS", path, headers={"Origin": CORS_ORIGIN,
                                               "Access-Control-Request-Method": "PUT",
                                               "Access-Control-Request-Headers": "If-Match"})
        assert r.status == 204 and r.body == b"", r
        assert r.headers["access-control-allow-origin"] == CORS_ORIGIN
        methods = {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
        assert {"GET", "PUT", "DELETE", "POST", "PATCH"} <= methods, methods
        allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
        assert {"content-type", "if-match", "if-none-match", "authorization"} <= allowed
        assert r.headers["access-control-max-age"] == "600"

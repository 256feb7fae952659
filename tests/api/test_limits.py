"""Size limits: value (max_value_bytes), body (max_body_bytes), URL
(http_connection_memory_bytes, 414)."""
from helpers import LIMITS, cell, row, unique

MAXV = LIMITS["max_value_bytes"]
MAXB = LIMITS["max_body_bytes"]


def test_value_limit(api, table):
    h = unique("h")
    api.put(cell(table, h, "max"), b"x" * MAXV).ok(201)
    assert len(api.get(cell(table, h, "max")).body) == MAXV
    api.put(cell(table, h, "over"), b"x" * (MAXV + 1)).problem(413, "TOO_LARGE")
    api.get(cell(table, h, "over")).problem(404, "CELL_NOT_FOUND")
    api.put(cell(table, h, "max"), b"y" * (MAXV + 1)).problem(413, "TOO_LARGE")
    assert api.get(cell(table, h, "max")).body == b"x" * MAXV
    # The same limit in JSON bodies (after base64 decoding).
    import base64
    api.patch(row(table, h), {"set": [{"sortkey": "j", "value_base64": base64.b64encode(b"\xff" * MAXV).decode()}]}).ok()
    api.patch(row(table, h), {"set": [{"sortkey": "j", "value_base64": base64.b64encode(b"\xff" * (MAXV + 1)).decode()}]}) \
        .problem(413, "TOO_LARGE")
    assert api.get(cell(table, h, "j")).body == b"\xff" * MAXV


def test_body_limit(api, table):
    h = unique("h")
    # Over max_body_bytes: refused whatever the endpoint, nothing written.
    api.put(cell(table, h, "s"), b"x" * (MAXB + 1)).problem(413, "TOO_LARGE")
    sets = [{"sortkey": "s%d" % i, "value": "x" * 4000} for i in range(MAXB // 4000 + 2)][:40]
    body_len = len(str(sets))
    assert body_len > MAXB
    api.patch(row(table, h), {"set": sets}).problem(413, "TOO_LARGE")
    api.post("/v1/tables/%s/batch-write" % table,
             {"set": [dict(s, hashkey=h) for s in sets]}).problem(413, "TOO_LARGE")
    api.call("PUT", "/v1/tables/" + unique(), body=b" " * (MAXB + 1),
             headers={"Content-Type": "application/json"}).problem(413, "TOO_LARGE")
    assert api.get(row(table, h) + "/count").ok() == {"count": 0, "next_cursor": None}
    # The node still serves on.
    api.put(cell(table, h, "after"), b"v").ok(201)


def test_uri_too_long(api, table):
    # Long keys within the request-line limit work...
    h = "k" * 14000
    api.put(cell(table, h, "s"), b"v").ok(201)
    assert api.get(cell(table, h, "s")).body == b"v"
    # ...beyond http_connection_memory_bytes (32K) the URL is refused with 414;
    # the HTTP library may answer that itself, so the body is not checked.
    r = api.call("GET", cell(table, "k" * 70000, "s"), validate=False)
    assert r.status == 414, r
    r = api.call("PUT", cell(table, "k" * 70000, "s"), body=b"v", validate=False)
    assert r.status == 414, r
    api.get("/healthz").ok()

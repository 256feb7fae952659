"""The single node over HTTP: tables (create, list, get, drop, recall,
purge, retention), cells (GET, HEAD, PUT, DELETE, conditional requests,
TTL, binary keys, base64url keys), errors as problem+json, limits, and
persistence across a clean restart.
"""
import base64
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from cellar import Node, cell_path, quote, run_tests, wait_for  # noqa: E402

node = None


def setup():
    global node
    node = Node(config={"max_value_bytes": "64K", "max_body_bytes": "128K",
                        "purge_interval_s": 1}).start()


def problem(status, hdrs, body, code, expect):
    assert status == expect, (status, body)
    assert hdrs["content-type"] == "application/problem+json", hdrs
    assert body["code"] == code, body
    assert body["status"] == expect and body["type"].startswith("/problems/"), body
    assert body["title"] and "detail" in body, body


def create(name, **kw):
    status, hdrs, body = node.json("PUT", "/v1/tables/" + name, kw)
    assert status == 201, (status, body)
    return body


def test_health_and_readiness():
    assert node.json("GET", "/healthz")[0] == 200
    status, _, body = node.json("GET", "/readyz")
    assert status == 200 and body["status"] == "ready"


def test_table_create_list_get():
    body = create("t.basic-1", partition_count=4, default_ttl=0)
    assert body["partition_count"] == 4 and body["replica_count"] == 1
    assert body["status"] == "available"
    status, hdrs, body = node.json("PUT", "/v1/tables/t.basic-1", {})
    problem(status, hdrs, body, "TABLE_EXISTS", 409)
    status, _, body = node.json("GET", "/v1/tables")
    assert "t.basic-1" in [t["name"] for t in body["tables"]]
    status, _, body = node.json("GET", "/v1/tables/t.basic-1")
    assert status == 200 and len(body["partitions"]) == 4
    assert [p["index"] for p in body["partitions"]] == [0, 1, 2, 3]
    status, hdrs, body = node.json("GET", "/v1/tables/nope")
    problem(status, hdrs, body, "TABLE_NOT_FOUND", 404)


def test_table_create_rejects_bad_input():
    cases = [
        ({"partition_count": 3}, "INVALID_ARGUMENT"),
        ({"partition_count": 2048}, "INVALID_ARGUMENT"),
        ({"partition_count": 0}, "INVALID_ARGUMENT"),
        ({"replica_count": 6}, "INVALID_ARGUMENT"),
        ({"default_ttl": -1}, "INVALID_ARGUMENT"),
        ({"partition_count": "8"}, "INVALID_ARGUMENT"),
        ({"colour": "blue"}, "INVALID_ARGUMENT"),
    ]
    for doc, code in cases:
        status, hdrs, body = node.json("PUT", "/v1/tables/bad", doc)
        problem(status, hdrs, body, code, 400)
    status, hdrs, body = node.request("PUT", "/v1/tables/bad", b"{not json",
                                      {"Content-Type": "application/json"})
    assert status == 400
    status, hdrs, body = node.request("PUT", "/v1/tables/bad", b"{}", {"Content-Type": "text/plain"})
    assert status == 415, status
    status, hdrs, body = node.json("PUT", "/v1/tables/bad%20name", {})
    problem(status, hdrs, body, "INVALID_TABLE_NAME", 400)
    status, hdrs, body = node.json("PUT", "/v1/tables/" + "x" * 129, {})
    problem(status, hdrs, body, "INVALID_TABLE_NAME", 400)
    assert node.json("GET", "/v1/tables/bad")[0] == 404  # nothing was created


def test_cell_put_get_delete():
    create("cells")
    path = cell_path("cells", "h1", "s1")
    status, hdrs, _ = node.request("PUT", path, b"hello", {"Content-Type": "text/plain"})
    assert status == 201 and hdrs["etag"].startswith('"'), (status, hdrs)
    v1 = hdrs["etag"]
    status, hdrs, body = node.request("GET", path)
    assert status == 200 and body == b"hello" and hdrs["etag"] == v1
    assert hdrs["content-type"] == "text/plain" and hdrs["x-content-type-options"] == "nosniff"
    status, hdrs, _ = node.request("PUT", path, b"world")
    assert status == 204 and hdrs["etag"] != v1
    status, hdrs, body = node.request("GET", path)
    assert body == b"world" and hdrs["content-type"] == "application/octet-stream"
    status, hdrs, body = node.json("GET", path, headers={"Accept": "application/json"})
    assert body == {"hashkey": "h1", "sortkey": "s1", "value": "world", "ttl": None,
                    "etag": hdrs["etag"].strip('"')}, body
    status, hdrs, body = node.request("HEAD", path)
    assert status == 200 and body == b"" and hdrs["content-length"] == "5"
    assert node.request("DELETE", path)[0] == 204
    status, hdrs, body = node.json("GET", path)
    problem(status, hdrs, body, "CELL_NOT_FOUND", 404)
    assert node.request("HEAD", path)[0] == 404
    assert node.request("DELETE", path)[0] == 204  # idempotent


def test_empty_value_and_empty_sortkey():
    create("empties")
    assert node.request("PUT", cell_path("empties", "h", ""), b"")[0] == 201
    assert node.request("PUT", cell_path("empties", "h", "a"), b"x")[0] == 201
    status, _, body = node.request("GET", "/v1/tables/empties/rows/h/cells/")
    assert status == 200 and body == b""
    status, hdrs, body = node.json("GET", "/v1/tables/empties/rows//cells/x")
    problem(status, hdrs, body, "INVALID_KEY", 400)


def test_binary_keys_round_trip():
    create("binkeys")
    keys = [b"a/b", b"%", b"\x00", b"\xff\xfe", b"sp ace", "ключ".encode(), b"?#&="]
    for i, hk in enumerate(keys):
        for j, sk in enumerate(keys):
            val = bytes([i, j]) * 3
            status = node.request("PUT", cell_path("binkeys", hk, sk), val)[0]
            assert status == 201, (hk, sk, status)
    for i, hk in enumerate(keys):
        for j, sk in enumerate(keys):
            status, _, body = node.request("GET", cell_path("binkeys", hk, sk))
            assert status == 200 and body == bytes([i, j]) * 3, (hk, sk, status, body)
    # JSON: valid UTF-8 comes back plain, the rest as _base64.
    status, _, body = node.json("GET", cell_path("binkeys", b"\xff\xfe", b"a/b"),
                                headers={"Accept": "application/json"})
    assert body["hashkey_base64"] == base64.b64encode(b"\xff\xfe").decode()
    assert body["sortkey"] == "a/b"
    # base64url addressing reaches the same cell.
    hk = base64.urlsafe_b64encode(b"\xff\xfe").rstrip(b"=").decode()
    sk = base64.urlsafe_b64encode(b"\x00").rstrip(b"=").decode()
    status, _, body = node.request("GET", "/v1/tables/binkeys/rows/%s/cells/%s?key_encoding=base64url" % (hk, sk))
    assert status == 200 and body == bytes([keys.index(b"\xff\xfe"), keys.index(b"\x00")]) * 3
    status, hdrs, body = node.json("GET", "/v1/tables/binkeys/rows/%%%%/cells/x")
    problem(status, hdrs, body, "INVALID_ARGUMENT", 400)
    status, hdrs, body = node.json("GET", "/v1/tables/binkeys/rows/a$/cells/x?key_encoding=base64url")
    problem(status, hdrs, body, "INVALID_KEY", 400)


def test_conditional_requests():
    create("cond")
    path = cell_path("cond", "h", "s")
    assert node.request("PUT", path, b"1", {"If-Match": '"1"'})[0] == 412  # missing cell
    status, hdrs, _ = node.request("PUT", path, b"1", {"If-None-Match": "*"})
    assert status == 201
    etag = hdrs["etag"]
    status, hdrs, body = node.json("PUT", path, doc=None, headers={"If-None-Match": "*"})
    problem(status, hdrs, body, "PRECONDITION_FAILED", 412)
    assert body["current_etag"] == etag.strip('"')
    status, hdrs, _ = node.request("PUT", path, b"2", {"If-Match": etag})
    assert status == 204
    etag2 = hdrs["etag"]
    assert node.request("PUT", path, b"3", {"If-Match": etag})[0] == 412
    assert node.request("GET", path)[2] == b"2"
    status, hdrs, body = node.request("GET", path, headers={"If-None-Match": etag2})
    assert status == 304 and body == b"" and hdrs["etag"] == etag2
    assert node.request("GET", path, headers={"If-None-Match": etag})[0] == 200
    assert node.request("DELETE", path, headers={"If-Match": etag})[0] == 412
    assert node.request("DELETE", path, headers={"If-Match": etag2})[0] == 204
    assert node.request("PUT", path, b"x", {"If-Match": "42"})[0] == 400  # not quoted


def test_ttl_expiry():
    create("ttl")
    path = cell_path("ttl", "h", "short")
    assert node.request("PUT", path + "?ttl=1", b"v")[0] == 201
    status, _, body = node.json("GET", path, headers={"Accept": "application/json"})
    assert status == 404 or body["ttl"] in (0, 1, 2), body
    wait_for(lambda: node.request("GET", path)[0] == 404, 10, "the cell to expire")
    assert node.request("PUT", cell_path("ttl", "h", "long") + "?ttl=3600", b"v")[0] == 201
    status, _, body = node.json("GET", cell_path("ttl", "h", "long"), headers={"Accept": "application/json"})
    assert 3590 <= body["ttl"] <= 3601, body
    for bad in ("-1", "abc", "1.5", "99999999999"):
        status, hdrs, body = node.json("PUT", cell_path("ttl", "h", "x") + "?ttl=" + bad)
        problem(status, hdrs, body, "INVALID_ARGUMENT", 400)


def test_default_ttl():
    create("dttl", default_ttl=3600)
    assert node.request("PUT", cell_path("dttl", "h", "s"), b"v")[0] == 201
    _, _, body = node.json("GET", cell_path("dttl", "h", "s"), headers={"Accept": "application/json"})
    assert 3590 <= body["ttl"] <= 3601, body


def test_value_and_body_limits():
    create("limits")
    path = cell_path("limits", "h", "s")
    assert node.request("PUT", path, b"x" * 65536)[0] == 201  # max_value_bytes = 64K
    status, hdrs, body = node.json("PUT", path + "x", doc=None)  # warm: empty value is fine
    assert status == 201
    status, hdrs, data = node.request("PUT", path, b"x" * 65537)
    assert status == 413 and b"TOO_LARGE" in data
    status, hdrs, data = node.request("PUT", path, b"x" * (200 * 1024))  # > max_body_bytes
    assert status == 413 and b"TOO_LARGE" in data
    assert len(node.request("GET", path)[2]) == 65536  # unchanged
    # A URL beyond http_connection_memory_bytes (32K) is refused. libmicrohttpd
    # answers 414 and closes with the rest of the URL unread, so the kernel
    # may reset the connection before the client reads the answer (None).
    status, hdrs, data = node.request("PUT", cell_path("limits", "k" * 70000, "s"), b"v")
    assert status in (414, None), status
    assert node.request("GET", "/healthz")[0] == 200
    # So is one that fits but would leave less than half of it for the
    # reply: refused before it runs (it used to be written and its reply
    # dropped with the connection).
    status, hdrs, data = node.request("PUT", cell_path("limits", "k" * 17000, "s"), b"v")
    assert status == 414 and b"URI_TOO_LONG" in data, (status, data)
    assert node.request("GET", cell_path("limits", "k" * 17000, "s"))[0] == 414
    status, _, doc = node.json("POST", "/v1/tables/limits/batch-get",
                               {"keys": [{"hashkey": "k" * 17000, "sortkey": "s"}]})
    assert status == 200 and doc["results"][0]["found"] is False, doc
    assert node.request("PUT", cell_path("limits", "k" * 14000, "s"), b"v")[0] == 201


def test_routing_errors():
    status, hdrs, body = node.json("GET", "/v2/nothing")
    problem(status, hdrs, body, "NOT_FOUND", 404)
    status, hdrs, body = node.json("POST", "/v1/tables")
    problem(status, hdrs, body, "METHOD_NOT_ALLOWED", 405)
    assert "GET" in hdrs["allow"]
    status, hdrs, body = node.json("PATCH", cell_path("cells", "h", "s"))
    problem(status, hdrs, body, "METHOD_NOT_ALLOWED", 405)
    assert set(hdrs["allow"].split(", ")) == {"GET", "HEAD", "PUT", "DELETE"}
    status, hdrs, body = node.json("GET", cell_path("no-such-table", "h", "s"))
    problem(status, hdrs, body, "TABLE_NOT_FOUND", 404)


def read_until_closed(sock, timeout):
    """Everything the node sends until it closes the connection (or the
    deadline passes: then the connection was left open)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False


def test_content_length_with_transfer_encoding_is_refused_and_closed():
    """Request smuggling (RFC 9112 6.3): a request with both framings is
    refused with 400 and the connection closed, so the request pipelined
    behind it is never served."""
    create("t.smuggle")
    path = cell_path("t.smuggle", "h", "s")
    smuggled = cell_path("t.smuggle", "h", "smuggled")
    raw = ("PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
           "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
           "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nbad" % (path, smuggled))
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(raw.encode())
        data, closed = read_until_closed(sock, 10)
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert b"connection: close" in head, data
    assert closed, "the connection stayed open after the refusal"
    assert data.count(b"HTTP/1.1 ") == 1, data
    assert node.request("GET", path)[0] == 404
    assert node.request("GET", smuggled)[0] == 404
    # The same two requests with one framing each are both served.
    raw = ("PUT %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nhello\r\n0\r\n\r\n"
           "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
           % (path, smuggled))
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(raw.encode())
        data, closed = read_until_closed(sock, 10)
    assert data.count(b"HTTP/1.1 201 ") == 2 and closed, data
    assert node.request("GET", path)[2] == b"hello"


def test_inline_commits_answer_outside_the_registry_lock():
    """durability=os commits a write on the HTTP worker when its writer is
    idle; the reply must still come after the table (the registry's read
    lock) is let go. Every kind of write, then the node's log has no bug."""
    os_node = Node(config={"durability": "os"}).start()
    try:
        assert os_node.json("PUT", "/v1/tables/t", {"partition_count": 2})[0] == 201
        base = "/v1/tables/t/rows/h"
        assert os_node.request("PUT", base + "/cells/a", b"1")[0] == 201
        assert os_node.request("DELETE", base + "/cells/a")[0] == 204
        assert os_node.json("POST", base + "/cells/n/incr", {"by": 2})[0] == 200
        assert os_node.json("PATCH", base, {"set": [{"sortkey": "b", "value": "x"}]})[0] == 200
        assert os_node.json("POST", base + "/check-and-mutate",
                            {"check": {"sortkey": "b", "type": "value_exist"},
                             "set": [{"sortkey": "c", "value": "y"}]})[0] == 200
        assert os_node.json("POST", "/v1/tables/t/batch-write",
                            {"set": [{"hashkey": "h2", "sortkey": "s", "value": "v"}]})[0] == 200
        assert os_node.request("DELETE", base)[0] == 200
        assert not os_node.bugs(), os_node.bugs()
        assert os_node.stop() == 0
    finally:
        os_node.cleanup()


def test_drop_recall_purge():
    create("dr", partition_count=2)
    assert node.request("PUT", cell_path("dr", "h", "s"), b"kept")[0] == 201
    status, _, body = node.json("DELETE", "/v1/tables/dr")
    assert status == 200 and body["status"] == "dropped"
    old_id = body["id"]
    assert node.json("GET", "/v1/tables/dr")[0] == 404
    assert node.request("GET", cell_path("dr", "h", "s"))[0] == 404
    _, _, body = node.json("GET", "/v1/tables?include_dropped=true")
    assert [t for t in body["tables"] if t["name"] == "dr" and t["status"] == "dropped"]
    _, _, body = node.json("GET", "/v1/tables")
    assert not [t for t in body["tables"] if t["name"] == "dr"]
    # The name can be reused; then recall needs a new name.
    reused = create("dr", partition_count=1)
    assert reused["id"] > old_id
    status, hdrs, body = node.json("POST", "/v1/tables/dr/recall", {})
    problem(status, hdrs, body, "TABLE_EXISTS", 409)
    status, _, body = node.json("POST", "/v1/tables/dr/recall", {"new_name": "dr-back"})
    assert status == 200 and body["name"] == "dr-back" and body["id"] == old_id
    assert node.request("GET", cell_path("dr-back", "h", "s"))[2] == b"kept"
    # Purge at once: gone from every list, and the id is not reused.
    status, _, body = node.json("DELETE", "/v1/tables/dr-back?purge=true")
    assert status == 200
    _, _, body = node.json("GET", "/v1/tables?include_dropped=true")
    assert not [t for t in body["tables"] if t["id"] == old_id]
    assert node.json("POST", "/v1/tables/dr-back/recall", {})[0] == 404
    assert create("dr-next")["id"] > reused["id"]


def test_restart_keeps_tables_cells_and_ids():
    create("persist", partition_count=8)
    for i in range(200):
        assert node.request("PUT", cell_path("persist", "row%d" % (i % 17), "c%d" % i), b"v%d" % i)[0] == 201
    _, _, before = node.json("GET", "/v1/tables?include_dropped=true")
    assert node.stop() == 0
    assert "stopped cleanly" in node.log_text()
    node.start()
    _, _, after = node.json("GET", "/v1/tables?include_dropped=true")
    assert before == after
    for i in range(200):
        assert node.request("GET", cell_path("persist", "row%d" % (i % 17), "c%d" % i))[2] == b"v%d" % i
    max_id = max(t["id"] for t in after["tables"])
    assert create("after-restart")["id"] > max_id


def test_background_purge_after_retention():
    # A node whose dropped tables are purged at once by the background timer.
    other = Node(config={"drop_retention_s": 0, "purge_interval_s": 1}).start()
    try:
        assert other.json("PUT", "/v1/tables/gone", {})[0] == 201
        assert other.json("DELETE", "/v1/tables/gone")[0] == 200

        def purged():
            body = other.json("GET", "/v1/tables?include_dropped=true")[2]
            return not body["tables"]
        wait_for(purged, 15, "the background purge")
        assert other.json("POST", "/v1/tables/gone/recall", {})[0] == 404
        replicas = os.path.join(other.dir, "data", "replicas")
        assert os.listdir(replicas) == [], os.listdir(replicas)
    finally:
        other.stop()
        other.cleanup()


def test_concurrent_writes_to_one_cell_all_answered():
    create("conc")
    path = cell_path("conc", "h", "s")
    results = []

    def worker(i):
        c = node.conn()
        for k in range(50):
            results.append(node.request("PUT", path, b"%d-%d" % (i, k), conn=c)[0])
        c.close()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 400 and set(results) <= {201, 204}, set(results)
    assert results.count(201) == 1


def test_sigterm_exits_cleanly():
    status = node.stop()
    assert status == 0, status
    assert "stopped cleanly" in node.log_text()
    node.start()


if __name__ == "__main__":
    setup()
    try:
        run_tests(globals())
    finally:
        node.stop()
        node.cleanup()

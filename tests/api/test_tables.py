"""Tables: create, list, get with partitions, PATCH (default_ttl, envs,
read_only, write_rate_limit), drop, recall, purge, compact."""
import re
import time

from helpers import cell, row, unique, wait_until


def test_create_defaults_and_location(api):
    name = unique()
    r = api.call("PUT", "/v1/tables/" + name, json_body={})
    t = r.ok(201)
    assert r.headers["location"] == "/v1/tables/" + name
    assert t["name"] == name and t["status"] == "available"
    assert t["partition_count"] == 8 and t["replica_count"] == 1 and t["default_ttl"] == 0
    assert t["envs"] == {} and "drop_time_ms" not in t
    assert isinstance(t["id"], int) and t["id"] >= 1


def test_create_with_empty_body(api):
    name = unique()
    r = api.call("PUT", "/v1/tables/" + name)
    assert r.ok(201)["partition_count"] == 8


def test_create_with_every_field(api):
    name = unique()
    t = api.call("PUT", "/v1/tables/" + name, json_body={
        "partition_count": 16, "replica_count": 1, "default_ttl": 60,
        "envs": {"read_only": "false", "custom.key": "v"}}).ok(201)
    assert t["partition_count"] == 16 and t["default_ttl"] == 60
    assert t["envs"] == {"read_only": "false", "custom.key": "v"}
    got = api.get("/v1/tables/" + name).ok()
    assert {k: v for k, v in got.items() if k != "partitions"} == t


def test_partition_counts(api):
    for pc in (1, 2, 1024):
        name = unique()
        t = api.call("PUT", "/v1/tables/" + name, json_body={"partition_count": pc}).ok(201)
        assert t["partition_count"] == pc
        assert len(api.get("/v1/tables/" + name).ok()["partitions"]) == pc
        api.delete("/v1/tables/%s?purge=true" % name).ok()
    for bad in (0, 3, 6, 2048, -1, 1.5, "8", True):
        api.call("PUT", "/v1/tables/" + unique(), json_body={"partition_count": bad}) \
            .problem(400, "INVALID_ARGUMENT")


def test_create_rejects_bad_input(api):
    for doc in ({"replica_count": 0}, {"replica_count": 6}, {"default_ttl": -1},
                {"envs": {"a": 1}}, {"envs": []}, {"colour": "blue"}, {"name": "x"}):
        api.call("PUT", "/v1/tables/" + unique(), json_body=doc).problem(400, "INVALID_ARGUMENT")
    name = unique()
    api.call("PUT", "/v1/tables/" + name, body=b"{nope",
             headers={"Content-Type": "application/json"}).problem(400, "INVALID_JSON")
    api.call("PUT", "/v1/tables/" + name, body=b"[]",
             headers={"Content-Type": "application/json"}).problem(400)
    api.call("PUT", "/v1/tables/" + name, body=b"{}",
             headers={"Content-Type": "text/plain"}).problem(415, "UNSUPPORTED_MEDIA_TYPE")
    api.get("/v1/tables/" + name).problem(404, "TABLE_NOT_FOUND")


def test_table_names(api):
    for name in ("x" * 128, "Ab_9.-" + str(time.time_ns()), "z"):
        api.delete("/v1/tables/%s?purge=true" % name)
        api.call("PUT", "/v1/tables/" + name, json_body={"partition_count": 1}).ok(201)
        api.get("/v1/tables/" + name).ok()
        api.delete("/v1/tables/%s?purge=true" % name).ok()
    for bad in ("x" * 129, "bad%20name", "a%2Fb", "%C3%A9", "a%00", "a+b", "a:b"):
        api.call("PUT", "/v1/tables/" + bad, json_body={}).problem(400, "INVALID_TABLE_NAME")
        api.get("/v1/tables/" + bad).problem(400, "INVALID_TABLE_NAME")


def test_exists_is_409(api):
    name = api.create_table()
    api.call("PUT", "/v1/tables/" + name, json_body={}).problem(409, "TABLE_EXISTS")


def test_get_table_with_partitions(api):
    name = api.create_table(partition_count=4)
    t = api.get("/v1/tables/" + name).ok()
    assert t["name"] == name and t["partition_count"] == 4
    parts = t["partitions"]
    assert [p["index"] for p in parts] == [0, 1, 2, 3]
    for p in parts:
        assert re.fullmatch(r"[^:]+:\d+", p["primary"]), p
        assert p["secondaries"] == [] and p["ballot"] >= 0 and p["last_committed"] >= 0
    before = sum(p["last_committed"] for p in parts)
    for i in range(8):
        api.put_cell(name, "h%d" % i, "s", b"v")
    after = sum(p["last_committed"] for p in api.get("/v1/tables/" + name).ok()["partitions"])
    assert after >= before + 8
    api.get("/v1/tables/" + unique("nope")).problem(404, "TABLE_NOT_FOUND")


def test_list_tables(api):
    name = api.create_table(partition_count=2)
    tables = api.get("/v1/tables").ok()["tables"]
    mine = [t for t in tables if t["name"] == name]
    assert len(mine) == 1 and mine[0]["partition_count"] == 2 and "partitions" not in mine[0]
    assert all(t["status"] == "available" for t in tables)
    api.get("/v1/tables?include_dropped=maybe").problem(400, "INVALID_ARGUMENT")


def test_patch_default_ttl_and_envs(api):
    name = api.create_table(partition_count=1)
    t = api.patch("/v1/tables/" + name, {"default_ttl": 3600}).ok()
    assert t["default_ttl"] == 3600
    api.put_cell(name, "h", "s", b"v")
    ttl = api.get(cell(name, "h", "s"), headers={"Accept": "application/json"}).ok()["ttl"]
    assert 3590 <= ttl <= 3601, ttl
    api.put_cell(name, "h", "explicit", b"v", ttl=60)
    ttl = api.get(cell(name, "h", "explicit"), headers={"Accept": "application/json"}).ok()["ttl"]
    assert 50 <= ttl <= 61, ttl
    t = api.patch("/v1/tables/" + name, {"default_ttl": 0, "envs": {"a": "1", "b": "2"}}).ok()
    assert t["default_ttl"] == 0 and t["envs"] == {"a": "1", "b": "2"}
    t = api.patch("/v1/tables/" + name, {"envs": {"a": None, "c": "3"}}).ok()
    assert t["envs"] == {"b": "2", "c": "3"}
    assert api.get("/v1/tables/" + name).ok()["envs"] == {"b": "2", "c": "3"}
    api.put_cell(name, "h", "none", b"v")
    assert api.get(cell(name, "h", "none"), headers={"Accept": "application/json"}).ok()["ttl"] is None
    for bad in ({"default_ttl": -1}, {"default_ttl": "1"}, {"envs": {"a": 1}}, {"partition_count": 2},
                {"envs": {"write_rate_limit": "fast"}}, {"envs": {"read_only": "yes"}},
                {"envs": {"a": "x\x00y"}}, {"envs": {"read_only": "true\x00"}}):
        p = api.patch("/v1/tables/" + name, bad).problem(400, "INVALID_ARGUMENT")
        assert "JSON_" not in p["detail"], p
    assert api.get("/v1/tables/" + name).ok()["envs"] == {"b": "2", "c": "3"}
    # NUL in a create's env value or a recall's new_name: refused, nothing made.
    other = unique("nul")
    p = api.call("PUT", "/v1/tables/" + other, json_body={"envs": {"k": "a\x00b"}}).problem(400, "INVALID_ARGUMENT")
    assert "NUL" in p["detail"], p
    api.get("/v1/tables/" + other).problem(404, "TABLE_NOT_FOUND")
    api.call("PATCH", "/v1/tables/" + name, body=b"{}", headers={"Content-Type": "text/plain"}) \
        .problem(415, "UNSUPPORTED_MEDIA_TYPE")
    api.patch("/v1/tables/" + unique("nope"), {"default_ttl": 1}).problem(404, "TABLE_NOT_FOUND")


def test_read_only_table_refuses_every_write(api):
    name = api.create_table(partition_count=2)
    api.put_cell(name, "h", "s", b"1")
    api.patch("/v1/tables/" + name, {"envs": {"read_only": "true"}}).ok()
    writes = [
        lambda: api.put(cell(name, "h", "s"), b"2"),
        lambda: api.delete(cell(name, "h", "s")),
        lambda: api.post(cell(name, "h", "s") + "/incr", {}),
        lambda: api.patch(row(name, "h"), {"set": [{"sortkey": "x", "value": "y"}]}),
        lambda: api.delete(row(name, "h")),
        lambda: api.post(row(name, "h") + "/check-and-mutate",
                         {"check": {"sortkey": "s", "type": "no_check"},
                          "set": [{"sortkey": "x", "value": "y"}]}),
        lambda: api.post("/v1/tables/%s/batch-write" % name,
                         {"set": [{"hashkey": "h", "sortkey": "x", "value": "y"}]}),
    ]
    for w in writes:
        w().problem(403, "TABLE_READ_ONLY")
    # Reads go on.
    assert api.get(cell(name, "h", "s")).body == b"1"
    assert len(api.read_row(name, "h")[0]) == 1
    api.post("/v1/tables/%s/batch-get" % name, {"keys": [{"hashkey": "h", "sortkey": "s"}]}).ok()
    api.get("/v1/tables/%s/scan" % name).ok()
    api.patch("/v1/tables/" + name, {"envs": {"read_only": "false"}}).ok()
    api.put_cell(name, "h", "s", b"2")
    api.patch("/v1/tables/" + name, {"envs": {"read_only": "true"}}).ok()
    api.put(cell(name, "h", "s"), b"3").problem(403, "TABLE_READ_ONLY")
    api.patch("/v1/tables/" + name, {"envs": {"read_only": None}}).ok()
    api.put_cell(name, "h", "s", b"4")


def test_write_rate_limit_throttles_with_retry_after(api):
    name = api.create_table(partition_count=1)
    api.patch("/v1/tables/" + name, {"envs": {"write_rate_limit": "5"}}).ok()
    statuses, throttled = [], None
    start = time.monotonic()
    for i in range(60):
        r = api.put(cell(name, "h", "s%d" % i), b"v")
        statuses.append(r.status)
        if r.status == 429:
            throttled = r
            break
    assert throttled is not None, "60 writes in %.1fs were never throttled at 5/s: %s" % (
        time.monotonic() - start, statuses)
    p = throttled.problem(429, "THROTTLED")
    assert int(throttled.headers["retry-after"]) >= 1, throttled.headers
    assert p["detail"]
    # Reads are not throttled.
    for _ in range(20):
        assert api.get(cell(name, "h", "s0")).status == 200
    # Unlimited again.
    api.patch("/v1/tables/" + name, {"envs": {"write_rate_limit": "0"}}).ok()
    for i in range(30):
        api.put_cell(name, "h", "u%d" % i, b"v")


def test_drop_recall_purge(api):
    name = api.create_table(partition_count=2)
    api.put_cell(name, "h", "s", b"kept")
    t = api.delete("/v1/tables/" + name).ok()
    assert t["status"] == "dropped" and t["name"] == name and isinstance(t["drop_time_ms"], int)
    assert abs(t["drop_time_ms"] / 1000 - time.time()) < 600
    old_id = t["id"]
    api.get("/v1/tables/" + name).problem(404, "TABLE_NOT_FOUND")
    api.get(cell(name, "h", "s")).problem(404, "TABLE_NOT_FOUND")
    api.delete("/v1/tables/" + name).problem(404, "TABLE_NOT_FOUND")
    assert name not in [t["name"] for t in api.get("/v1/tables").ok()["tables"]]
    dropped = [t for t in api.get("/v1/tables?include_dropped=true").ok()["tables"] if t["name"] == name]
    assert len(dropped) == 1 and dropped[0]["status"] == "dropped" and "drop_time_ms" in dropped[0]
    # Recall under the same name.
    t = api.post("/v1/tables/%s/recall" % name).ok()
    assert t["status"] == "available" and t["id"] == old_id and "drop_time_ms" not in t
    assert api.get(cell(name, "h", "s")).body == b"kept"
    api.post("/v1/tables/%s/recall" % name).problem(404, "TABLE_NOT_FOUND")
    # Name reused: recall needs a new name, which must be free.
    api.delete("/v1/tables/" + name).ok()
    api.call("PUT", "/v1/tables/" + name, json_body={"partition_count": 1}).ok(201)
    api.post("/v1/tables/%s/recall" % name, {}).problem(409, "TABLE_EXISTS")
    api.post("/v1/tables/%s/recall" % name, {"new_name": name}).problem(409, "TABLE_EXISTS")
    api.post("/v1/tables/%s/recall" % name, {"new_name": "bad name"}).problem(400)
    api.post("/v1/tables/%s/recall" % name, {"new_name": name + "\x00x"}).problem(400, "INVALID_TABLE_NAME")
    api.post("/v1/tables/%s/recall" % name, {"colour": "x"}).problem(400, "INVALID_ARGUMENT")
    new = unique("back")
    t = api.post("/v1/tables/%s/recall" % name, {"new_name": new}).ok()
    assert t["name"] == new and t["id"] == old_id
    assert api.get(cell(new, "h", "s")).body == b"kept"
    # Purge: gone from every list, no recall.
    t = api.delete("/v1/tables/%s?purge=true" % new).ok()
    assert t["status"] == "dropped"
    assert not [t for t in api.get("/v1/tables?include_dropped=true").ok()["tables"] if t["id"] == old_id]
    api.post("/v1/tables/%s/recall" % new, {}).problem(404, "TABLE_NOT_FOUND")
    api.delete("/v1/tables/%s?purge=maybe" % name).problem(400, "INVALID_ARGUMENT")


def test_compact(api):
    name = api.create_table(partition_count=2)
    for i in range(20):
        api.put_cell(name, "h%d" % i, "s", b"v%d" % i, ttl=1 if i % 2 else None)
    assert api.post("/v1/tables/%s/compact" % name).ok(202) == {"status": "compacted"}
    for i in range(0, 20, 2):
        assert api.get(cell(name, "h%d" % i, "s")).body == b"v%d" % i

    def expired():
        return all(api.get(cell(name, "h%d" % i, "s")).status == 404 for i in range(1, 20, 2))
    wait_until(expired, 10, "the TTL=1 cells to expire")
    api.post("/v1/tables/%s/compact" % name).ok(202)
    assert len(api.scan_all(name)[0]) == 10
    api.post("/v1/tables/%s/compact" % unique("nope")).problem(404, "TABLE_NOT_FOUND")

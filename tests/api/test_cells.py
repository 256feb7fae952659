"""Cells: raw and JSON GET, HEAD, PUT (201/204, ETag, Location, stored
Content-Type, TTL), DELETE, conditional requests, incr."""
import pytest

from helpers import cell, unique, wait_until

JSON = {"Accept": "application/json"}


def test_put_get_raw_and_json(api, table):
    h = unique("h")
    path = cell(table, h, "s")
    r = api.put(path, b"hello", headers={"Content-Type": "text/plain; charset=utf-8"})
    assert r.status == 201 and r.body == b""
    assert r.headers["location"] == path
    etag = r.etag
    assert etag.startswith('"') and etag.endswith('"') and etag[1:-1].isdigit(), etag
    r = api.get(path)
    assert r.status == 200 and r.body == b"hello" and r.etag == etag
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"
    doc = api.get(path, headers=JSON).ok()
    assert doc == {"hashkey": h, "sortkey": "s", "value": "hello", "ttl": None, "etag": etag[1:-1]}
    # Replace: 204, a new and larger version, no Content-Type means octet-stream.
    r = api.put(path, b'{"a": 1}')
    assert r.status == 204 and int(r.etag[1:-1]) > int(etag[1:-1])
    r = api.get(path)
    assert r.body == b'{"a": 1}' and r.headers["content-type"] == "application/octet-stream"
    # A JSON document is stored as is, whatever its Content-Type.
    api.put(path, b'{"b": 2}', headers={"Content-Type": "application/json"})
    r = api.get(path)
    assert r.body == b'{"b": 2}' and r.headers["content-type"] == "application/json"


def test_head(api, table):
    h = unique("h")
    path = cell(table, h, "s")
    r = api.call("HEAD", path)
    assert r.status == 404 and r.body == b""
    etag = api.put_cell(table, h, "s", b"12345").etag
    r = api.call("HEAD", path)
    assert r.status == 200 and r.body == b"" and r.etag == etag
    assert r.headers["content-length"] == "5"
    r = api.call("HEAD", path, headers={"If-None-Match": etag})
    assert r.status == 304


def test_get_missing_is_cell_not_found(api, table):
    api.get(cell(table, unique("h"), "s")).problem(404, "CELL_NOT_FOUND")
    api.get(cell(table, unique("h"), "s"), headers=JSON).problem(404, "CELL_NOT_FOUND")
    api.get(cell(unique("nope"), "h", "s")).problem(404, "TABLE_NOT_FOUND")
    api.put(cell(unique("nope"), "h", "s"), b"v").problem(404, "TABLE_NOT_FOUND")
    api.delete(cell(unique("nope"), "h", "s")).problem(404, "TABLE_NOT_FOUND")


def test_empty_value_and_empty_sortkey_are_real(api, table):
    h = unique("h")
    api.put_cell(table, h, "", b"row default")
    api.put_cell(table, h, "empty", b"")
    assert api.get("/v1/tables/%s/rows/%s/cells/" % (table, h)).body == b"row default"
    r = api.get(cell(table, h, "empty"))
    assert r.status == 200 and r.body == b""
    doc = api.get(cell(table, h, "empty"), headers=JSON).ok()
    assert doc["value"] == "" and doc["sortkey"] == "empty"
    doc = api.get(cell(table, h, ""), headers=JSON).ok()
    assert doc["sortkey"] == "" and doc["value"] == "row default"
    api.delete(cell(table, h, "")).ok(204)
    api.get(cell(table, h, "")).problem(404, "CELL_NOT_FOUND")
    assert api.get(cell(table, h, "empty")).status == 200


def test_delete_is_idempotent(api, table):
    h = unique("h")
    api.put_cell(table, h, "s", b"v")
    assert api.delete(cell(table, h, "s")).status == 204
    assert api.delete(cell(table, h, "s")).status == 204
    api.get(cell(table, h, "s")).problem(404, "CELL_NOT_FOUND")


def test_conditional_put_and_delete(api, table):
    h = unique("h")
    path = cell(table, h, "s")
    p = api.put(path, b"1", headers={"If-Match": '"1"'}).problem(412, "PRECONDITION_FAILED")
    assert "current_etag" not in p
    api.put(path, b"1", headers={"If-Match": "*"}).problem(412, "PRECONDITION_FAILED")
    r = api.put(path, b"1", headers={"If-None-Match": "*"})
    assert r.status == 201
    e1 = r.etag
    p = api.put(path, b"x", headers={"If-None-Match": "*"}).problem(412, "PRECONDITION_FAILED")
    assert p["current_etag"] == e1[1:-1]
    r = api.put(path, b"2", headers={"If-Match": e1})
    assert r.status == 204
    e2 = r.etag
    p = api.put(path, b"3", headers={"If-Match": e1}).problem(412, "PRECONDITION_FAILED")
    assert p["current_etag"] == e2[1:-1]
    assert api.get(path).body == b"2"
    e3 = api.put(path, b"3", headers={"If-Match": "*"}).etag
    p = api.delete(path, headers={"If-Match": e2}).problem(412, "PRECONDITION_FAILED")
    assert p["current_etag"] == e3[1:-1]
    assert api.delete(path, headers={"If-Match": e3}).status == 204
    api.delete(path, headers={"If-Match": e3}).problem(412, "PRECONDITION_FAILED")
    api.delete(path, headers={"If-Match": "*"}).problem(412, "PRECONDITION_FAILED")
    for bad in ("42", "W/1", '"x', ""):
        api.put(path, b"x", headers={"If-Match": bad}).problem(400)
    # Well-formed tags naming no version: If-Match fails, If-None-Match holds.
    for foreign in ('W/"1"', '"x"'):
        api.put(path, b"x", headers={"If-Match": foreign}).problem(412, "PRECONDITION_FAILED")
    assert api.put(path, b"x", headers={"If-None-Match": '"1"'}).status == 201


def test_if_none_match_get_304(api, table):
    h = unique("h")
    path = cell(table, h, "s")
    e1 = api.put_cell(table, h, "s", b"a").etag
    r = api.get(path, headers={"If-None-Match": e1})
    assert r.status == 304 and r.body == b"" and r.etag == e1
    e2 = api.put_cell(table, h, "s", b"b").etag
    r = api.get(path, headers={"If-None-Match": e1})
    assert r.status == 200 and r.body == b"b" and r.etag == e2
    r = api.get(path, headers={"If-None-Match": e2, "Accept": "application/json"})
    assert r.status == 304


def test_ttl(api, table):
    h = unique("h")
    api.put_cell(table, h, "long", b"v", ttl=3600)
    ttl = api.get(cell(table, h, "long"), headers=JSON).ok()["ttl"]
    assert 3590 <= ttl <= 3601, ttl
    api.put_cell(table, h, "zero", b"v", ttl=0)
    assert api.get(cell(table, h, "zero"), headers=JSON).ok()["ttl"] is None
    api.put_cell(table, h, "max", b"v", ttl=2147483647)
    assert api.get(cell(table, h, "max"), headers=JSON).ok()["ttl"] > 2147483000
    # Rewriting without ttl removes it.
    api.put_cell(table, h, "long", b"v2")
    assert api.get(cell(table, h, "long"), headers=JSON).ok()["ttl"] is None
    for bad in ("-1", "abc", "1.5", "2147483648", "", "1e3", " 1"):
        api.put(cell(table, h, "x"), b"v", query={"ttl": bad}).problem(400, "INVALID_ARGUMENT")
    api.get(cell(table, h, "x")).problem(404, "CELL_NOT_FOUND")


def test_ttl_expiry(api, table):
    h = unique("h")
    api.put_cell(table, h, "short", b"v", ttl=1)
    api.put_cell(table, h, "stays", b"v")
    wait_until(lambda: api.get(cell(table, h, "short")).status == 404, 10, "the cell to expire")
    api.get(cell(table, h, "short"), headers=JSON).problem(404, "CELL_NOT_FOUND")
    assert api.call("HEAD", cell(table, h, "short")).status == 404
    # Invisible to row reads, counts and conditional writes at once.
    cells, _ = api.read_row(table, h)
    assert [c["sortkey"] for c in cells] == ["stays"]
    assert api.get("/v1/tables/%s/rows/%s/count" % (table, h)).ok() == {"count": 1, "next_cursor": None}
    api.put(cell(table, h, "short"), b"v", headers={"If-Match": "*"}).problem(412)
    assert api.put(cell(table, h, "short"), b"new", headers={"If-None-Match": "*"}).status == 201


def test_default_ttl(api):
    name = api.create_table(partition_count=1, default_ttl=100)
    api.put_cell(name, "h", "s", b"v")
    ttl = api.get(cell(name, "h", "s"), headers=JSON).ok()["ttl"]
    assert 90 <= ttl <= 101, ttl
    api.put_cell(name, "h", "t", b"v", ttl=5000)
    assert api.get(cell(name, "h", "t"), headers=JSON).ok()["ttl"] > 4900
    api.put_cell(name, "h", "z", b"v", ttl=0)
    ttl = api.get(cell(name, "h", "z"), headers=JSON).ok()["ttl"]
    assert 90 <= ttl <= 101, ttl


# ---------------------------------------------------------------- incr

def incr(api, table, h, s, doc=None, **kw):
    return api.post(cell(table, h, s) + "/incr", doc, **kw)


def test_incr_basics(api, table):
    h = unique("h")
    r = api.call("POST", cell(table, h, "n") + "/incr")  # no body at all
    doc = r.ok()
    assert doc["value"] == 1 and doc["etag"].isdigit()
    assert api.get(cell(table, h, "n")).body == b"1"
    assert api.get(cell(table, h, "n")).etag == '"%s"' % doc["etag"]
    assert incr(api, table, h, "n", {}).ok()["value"] == 2
    assert incr(api, table, h, "n", {"by": 40}).ok()["value"] == 42
    assert incr(api, table, h, "n", {"by": -50}).ok()["value"] == -8
    assert incr(api, table, h, "n", {"by": 0}).ok()["value"] == -8
    assert api.get(cell(table, h, "n")).body == b"-8"
    r = api.call("POST", cell(table, h, "n") + "/incr", body=b"",
                 headers={"Content-Type": "application/json"})
    assert r.ok()["value"] == -7


def test_incr_base_values(api, table):
    h = unique("h")
    api.put_cell(table, h, "empty", b"")
    assert incr(api, table, h, "empty", {"by": 5}).ok()["value"] == 5
    api.put_cell(table, h, "neg", b"-10")
    assert incr(api, table, h, "neg", {"by": 3}).ok()["value"] == -7
    api.put_cell(table, h, "exp", b"100", ttl=1)
    wait_until(lambda: api.get(cell(table, h, "exp")).status == 404, 10, "expiry")
    doc = incr(api, table, h, "exp", {"by": 2}).ok()
    assert doc["value"] == 2
    assert api.get(cell(table, h, "exp"), headers=JSON).ok()["ttl"] is None


@pytest.mark.parametrize("stored", [b"abc", b"1.5", b" 1", b"1 ", b"+1", b"0x10", b"1e3", b"--1",
                                    b"-", b"\x001", b"99999999999999999999"])
def test_incr_on_non_integer_is_422(api, table, stored):
    h = unique("h")
    api.put_cell(table, h, "s", stored)
    incr(api, table, h, "s", {"by": 1}).problem(422, "NOT_AN_INTEGER")
    assert api.get(cell(table, h, "s")).body == stored


def test_incr_overflow_is_422(api, table):
    h = unique("h")
    api.put_cell(table, h, "max", b"9223372036854775807")
    incr(api, table, h, "max", {"by": 1}).problem(422, "INTEGER_OVERFLOW")
    assert api.get(cell(table, h, "max")).body == b"9223372036854775807"
    api.put_cell(table, h, "min", b"-9223372036854775808")
    incr(api, table, h, "min", {"by": -1}).problem(422, "INTEGER_OVERFLOW")
    assert incr(api, table, h, "min", {"by": 9223372036854775807}).ok()["value"] == -1
    assert incr(api, table, h, "big", {"by": -9223372036854775808}).ok()["value"] == -9223372036854775808


def test_incr_rejects_bad_requests(api, table):
    h = unique("h")
    for bad in ({"by": "1"}, {"by": 1.5}, {"by": 9223372036854775808}, {"by": -9223372036854775809},
                {"by": True}, {"by": [1]}, {"ttl": -2}, {"ttl": "5"}, {"ttl": 2147483648},
                {"what": 1}):
        incr(api, table, h, "s", bad).problem(400)
    api.call("POST", cell(table, h, "s") + "/incr", body=b'{"by": 1}',
             headers={"Content-Type": "text/plain"}).problem(415, "UNSUPPORTED_MEDIA_TYPE")
    api.call("POST", cell(table, h, "s") + "/incr", body=b'{"by": ',
             headers={"Content-Type": "application/json"}).problem(400, "INVALID_JSON")
    api.get(cell(table, h, "s")).problem(404, "CELL_NOT_FOUND")


def test_incr_ttl(api, table):
    h = unique("h")

    def ttl():
        return api.get(cell(table, h, "c"), headers=JSON).ok()["ttl"]
    incr(api, table, h, "c", {"by": 1, "ttl": 3600}).ok()
    assert 3590 <= ttl() <= 3601
    incr(api, table, h, "c", {"by": 1}).ok()  # absent: keeps
    assert 3590 <= ttl() <= 3601
    incr(api, table, h, "c", {"by": 1, "ttl": 0}).ok()  # 0: keeps
    assert 3590 <= ttl() <= 3601
    incr(api, table, h, "c", {"by": 1, "ttl": 100}).ok()  # >0: sets (shorter too)
    assert 90 <= ttl() <= 101
    assert incr(api, table, h, "c", {"by": 1, "ttl": -1}).ok()["value"] == 5  # -1: removes
    assert ttl() is None
    api.put_cell(table, h, "d", b"7", ttl=1)
    assert incr(api, table, h, "d", {"by": 1, "ttl": 0}).ok()["value"] == 8
    wait_until(lambda: api.get(cell(table, h, "d")).status == 404, 10, "the kept TTL to expire")

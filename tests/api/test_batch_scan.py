"""batch-get, batch-write and the full-table scan: order, per-row outcome,
limits, and a scan (whole table, per partition, with prefixes, under
concurrent writes) that returns every cell exactly once."""
import collections
import threading

from helpers import LIMITS, b64, cell, jbytes, jfield, row, unique, wait_until

BG = "/v1/tables/%s/batch-get"
BW = "/v1/tables/%s/batch-write"


def test_batch_get_in_request_order(api, table):
    h1, h2 = unique("h"), unique("h") + "\xff"
    api.put_cell(table, h1, "a", b"A")
    api.put_cell(table, h1, "", b"empty sortkey")
    e = api.put_cell(table, h2.encode("latin-1"), b"\x00", b"\xff").etag
    keys = [{"hashkey": h1, "sortkey": "a"}, {"hashkey": h1, "sortkey": "missing"},
            {"hashkey_base64": b64(h2.encode("latin-1")), "sortkey_base64": "AA=="},
            {"hashkey": h1, "sortkey": ""}, {"hashkey": h1, "sortkey": "a"},
            {"hashkey": unique("none"), "sortkey": "a"}]
    res = api.post(BG % table, {"keys": keys}).ok()["results"]
    assert len(res) == 6
    assert [(jbytes(r, "hashkey"), jbytes(r, "sortkey"), r["found"]) for r in res] == [
        (h1.encode(), b"a", True), (h1.encode(), b"missing", False), (h2.encode("latin-1"), b"\x00", True),
        (h1.encode(), b"", True), (h1.encode(), b"a", True), (keys[5]["hashkey"].encode(), b"a", False)]
    assert [jbytes(r, "value") for r in res] == [b"A", None, b"\xff", b"empty sortkey", b"A", None]
    assert res[2]["etag"] == e[1:-1]
    for r in res:
        assert ("etag" in r) is r["found"] and ("value" in r or "value_base64" in r) is r["found"]


def test_batch_get_limits_and_errors(api, table):
    n = LIMITS["max_batch_items"]
    keys = [{"hashkey": "h%d" % i, "sortkey": "s"} for i in range(n)]
    assert len(api.post(BG % table, {"keys": keys}).ok()["results"]) == n
    api.post(BG % table, {"keys": keys + [{"hashkey": "x", "sortkey": "s"}]}).problem(400, "TOO_MANY_ITEMS")
    api.post(BG % table, {"keys": []}).problem(400)
    api.post(BG % table, {}).problem(400)
    api.post(BG % table, {"keys": [{"hashkey": "h"}]}).problem(400)
    api.post(BG % table, {"keys": "h"}).problem(400)
    api.call("POST", BG % table, body=b'{"keys": []}', headers={"Content-Type": "text/plain"}) \
        .problem(415, "UNSUPPORTED_MEDIA_TYPE")
    api.call("POST", BG % table, body=b'{"keys": [', headers={"Content-Type": "application/json"}) \
        .problem(400, "INVALID_JSON")
    api.post(BG % unique("nope"), {"keys": [{"hashkey": "h", "sortkey": "s"}]}).problem(404, "TABLE_NOT_FOUND")


def test_batch_write_per_row_results(api, table):
    a, b, c = unique("a"), unique("b"), unique("c")
    api.put_cell(table, c, "gone", b"x")
    res = api.post(BW % table, {
        "set": [{"hashkey": a, "sortkey": "1", "value": "a1"}, {"hashkey": b, "sortkey": "1", "value": "b1"},
                {"hashkey": a, "sortkey": "2", "value": "a2", "ttl": 100},
                {"hashkey": b, "sortkey": "both", "value": "set wins"}],
        "delete": [{"hashkey": c, "sortkey": "gone"}, {"hashkey": b, "sortkey": "both"},
                   {"hashkey": a, "sortkey": "never"}]}).ok()
    assert res == {"results": [{"hashkey": a, "status": 200}, {"hashkey": b, "status": 200},
                               {"hashkey": c, "status": 200}]}
    assert api.get(cell(table, a, "1")).body == b"a1"
    assert 90 <= api.get(cell(table, a, "2"), headers={"Accept": "application/json"}).ok()["ttl"] <= 101
    assert api.get(cell(table, b, "both")).body == b"set wins"
    api.get(cell(table, c, "gone")).problem(404, "CELL_NOT_FOUND")
    # One row's cells share one version (atomic per row).
    cells = api.read_row(table, a)[0]
    assert len({x["etag"] for x in cells}) == 1
    # Only deletes; binary hashkeys come back in their _base64 form.
    hb = b"\x00" + unique("h").encode()
    api.post(BW % table, {"set": [dict(jfield("hashkey", hb), sortkey="s", value="v")]}).ok()
    res = api.post(BW % table, {"delete": [dict(jfield("hashkey", hb), sortkey="s")]}).ok()
    assert [jbytes(r, "hashkey") for r in res["results"]] == [hb] and res["results"][0]["status"] == 200
    assert "hashkey_base64" in res["results"][0]


def test_batch_write_limits_and_errors(api, table):
    n = LIMITS["max_batch_items"]
    h = unique("h")
    sets = [{"hashkey": "%s-%d" % (h, i % 7), "sortkey": "s%d" % i, "value": "v"} for i in range(n - 1)]
    res = api.post(BW % table, {"set": sets, "delete": [{"hashkey": h, "sortkey": "x"}]}).ok()
    assert [r["hashkey"] for r in res["results"]] == ["%s-%d" % (h, i) for i in range(7)] + [h]
    api.post(BW % table, {"set": sets, "delete": [{"hashkey": h, "sortkey": "x"}, {"hashkey": h, "sortkey": "y"}]}) \
        .problem(400, "TOO_MANY_ITEMS")
    for doc in ({"set": {}}, {"delete": "x"}, {"set": [{"hashkey": "h", "sortkey": "s"}]},
                {"set": [{"hashkey": "h", "sortkey": "s", "value": "v", "ttl": -5}]},
                {"delete": [{"sortkey": "s"}]}):
        api.post(BW % table, doc).problem(400)
    big = "x" * (LIMITS["max_value_bytes"] + 1)
    h2 = unique("h")
    api.post(BW % table, {"set": [{"hashkey": h2, "sortkey": "ok", "value": "v"},
                                  {"hashkey": h2, "sortkey": "big", "value": big}]}).problem(413, "TOO_LARGE")
    assert api.get(cell(table, h2, "ok")).status == 404
    api.call("POST", BW % table, body=b"{}", headers={"Content-Type": "text/plain"}) \
        .problem(415, "UNSUPPORTED_MEDIA_TYPE")
    api.post(BW % unique("nope"), {"delete": [{"hashkey": "h", "sortkey": "s"}]}).problem(404, "TABLE_NOT_FOUND")


# ---------------------------------------------------------------- scan

def fill(api, name, rows, per_row, prefix="r"):
    want = {}
    for i in range(rows):
        h = "%s%04d" % (prefix, i)
        sets = [{"sortkey": "s%03d" % j, "value": "%s/%d" % (h, j)} for j in range(per_row)]
        for k in range(0, len(sets), 40):
            api.patch(row(name, h), {"set": sets[k:k + 40]}).ok()
        for j in range(per_row):
            want[(h.encode(), b"s%03d" % j)] = ("%s/%d" % (h, j)).encode()
    return want


def got_of(items):
    c = collections.Counter((jbytes(i, "hashkey"), jbytes(i, "sortkey")) for i in items)
    dup = [k for k, n in c.items() if n > 1]
    assert not dup, "returned more than once: %s" % dup[:10]
    return set(c)


def test_empty_batch_write_is_a_no_op(api, table):
    h = unique("h")
    e1 = api.put_cell(table, h, "a", b"1").etag
    for doc in ({}, {"set": []}, {"delete": []}, {"set": [], "delete": []}):
        assert api.post(BW % table, doc).ok() == {"results": []}
    e2 = api.put_cell(table, h, "a", b"2").etag
    assert int(e2.strip('"')) == int(e1.strip('"')) + 1, "a no-op used a version"
    api.post(BW % unique("nope"), {}).problem(404, "TABLE_NOT_FOUND")


def test_scan_whole_table_exactly_once(api):
    name = api.create_table(partition_count=8)
    want = fill(api, name, 60, 7)
    items, pages = api.scan_all(name, limit=13)
    assert got_of(items) == set(want)
    for i in items:
        assert jbytes(i, "value") == want[(jbytes(i, "hashkey"), jbytes(i, "sortkey"))] and i["ttl"] is None
    assert pages >= 420 // 13
    # Within a row, sorted by sortkey.
    by_row = collections.defaultdict(list)
    for i in items:
        by_row[i["hashkey"]].append(i["sortkey"])
    assert all(v == sorted(v) for v in by_row.values())
    # Default limit 100, bounded by max_scan_cells per page.
    doc = api.get("/v1/tables/%s/scan" % name).ok()
    assert 0 < len(doc["items"]) <= min(100, LIMITS["max_scan_cells"]) and doc["next_cursor"]
    # values=false.
    items, _ = api.scan_all(name, values=False, limit=500)
    assert got_of(items) == set(want)
    assert all("value" not in i and "value_base64" not in i for i in items)


def test_scan_per_partition_and_prefixes(api):
    name = api.create_table(partition_count=4)
    want = fill(api, name, 40, 3, prefix="a")
    want.update(fill(api, name, 10, 3, prefix="b"))
    union = []
    for p in range(4):
        items, _ = api.scan_all(name, partition=p, limit=7)
        union += items
    assert got_of(union) == set(want)
    sizes = [len(api.scan_all(name, partition=p)[0]) for p in range(4)]
    assert sum(sizes) == len(want) and sum(1 for s in sizes if s) >= 2, sizes
    for bad in (4, -1, "x"):
        api.get("/v1/tables/%s/scan" % name, query={"partition": bad}).problem(400, "INVALID_ARGUMENT")
    items, _ = api.scan_all(name, hashkey_prefix="b", limit=4)
    assert got_of(items) == {k for k in want if k[0].startswith(b"b")}
    items, _ = api.scan_all(name, hashkey_prefix="a001", limit=4)
    assert got_of(items) == {k for k in want if k[0].startswith(b"a001")}
    items, _ = api.scan_all(name, sortkey_prefix="s001", limit=9)
    assert got_of(items) == {k for k in want if k[1] == b"s001"}
    items, _ = api.scan_all(name, hashkey_prefix="a", sortkey_prefix="s002", partition=1)
    part1 = {(jbytes(i, "hashkey"), jbytes(i, "sortkey")) for i in api.scan_all(name, partition=1)[0]}
    assert got_of(items) == {k for k in part1 if k[0].startswith(b"a") and k[1] == b"s002"}
    items, _ = api.scan_all(name, hashkey_prefix="zzz")
    assert items == []
    for bad in (0, LIMITS["max_page_cells"] + 1, "x"):
        api.get("/v1/tables/%s/scan" % name, query={"limit": bad}).problem(400, "INVALID_ARGUMENT")
    api.get("/v1/tables/%s/scan" % name, query={"cursor": "nope!"}).problem(400, "INVALID_CURSOR")
    api.get("/v1/tables/%s/scan" % unique("nope")).problem(404, "TABLE_NOT_FOUND")
    # base64url prefixes.
    items, _ = api.scan_all(name, hashkey_prefix="Yg", key_encoding="base64url")
    assert got_of(items) == {k for k in want if k[0].startswith(b"b")}


def test_scan_cursors_stay_short_after_long_keys(api):
    """A page that stops on a 64 KiB key still hands out a cursor that fits
    in a URL: the position is where the next key parts from it. Only a
    position inside a row carries that row's hashkey."""
    name = api.create_table(partition_count=1)
    longest = "k" * 65535
    mid = b"m" * 3000
    want = {(b"a", longest.encode()), (b"b", b"s"), (b"h" * 65535, b"s"), (mid, b"s"), (mid, b"t")}
    api.patch(row(name, "a"), {"set": [{"sortkey": longest, "value": "1"}]}).ok()
    api.post(BW % name, {"set": [{"hashkey": h.decode(), "sortkey": s.decode(), "value": "2"}
                                 for h, s in want if h != b"a"]}).ok()
    # Keys sort by hashkey length first: a, b, then the 3000-byte row, then the longest.
    items, cursor, lengths = [], None, []
    for _ in range(10):
        q = {"limit": 1, "values": "false"}
        if cursor:
            q["cursor"] = cursor
        doc = api.get("/v1/tables/%s/scan" % name, query=q).ok()
        items += doc["items"]
        cursor = doc["next_cursor"]
        if cursor is None:
            break
        lengths.append(len(cursor))
    assert cursor is None and got_of(items) == want
    assert len(lengths) == 4, lengths
    assert lengths[0] < 40 and lengths[1] < 40 and lengths[3] < 40, lengths
    assert 4000 < lengths[2] < 4100, lengths


def test_scan_skips_expired_cells_with_short_pages(api):
    name = api.create_table(partition_count=2)
    for chunk in range(0, 3 * LIMITS["max_scan_cells"], 40):
        api.patch(row(name, "exp"), {"ttl": 1, "set": [{"sortkey": "e%04d" % i, "value": "x"}
                                                        for i in range(chunk, chunk + 40)]}).ok()
    api.patch(row(name, "live"), {"set": [{"sortkey": "s%d" % i, "value": "x"} for i in range(3)]}).ok()
    wait_until(lambda: api.get(row(name, "exp") + "/count").ok()["count"] == 0, 15, "expiry")
    items, pages = api.scan_all(name, limit=50)
    assert got_of(items) == {(b"live", b"s%d" % i) for i in range(3)}
    assert pages >= 3, pages


def test_scan_under_concurrent_writes(api):
    """Cells that exist for the whole scan come back exactly once; nothing
    ever comes back twice, whatever is written and deleted meanwhile."""
    name = api.create_table(partition_count=8)
    stable = fill(api, name, 50, 4, prefix="s")
    volatile = fill(api, name, 30, 2, prefix="v")
    stop = threading.Event()
    errors = []

    def writer():
        i = 0
        try:
            while not stop.is_set() and i < 2000:
                api.put_cell(name, "n%05d" % i, "x", b"new")
                api.delete(cell(name, "v%04d" % (i % 30), "s%03d" % (i % 2)))
                i += 1
        except Exception as e:  # reported below
            errors.append(e)
    t = threading.Thread(target=writer)
    t.start()
    items, cursor, pages = [], None, 0
    try:
        while True:
            q = {"limit": 5}
            if cursor:
                q["cursor"] = cursor
            doc = api.get("/v1/tables/%s/scan" % name, query=q).ok()
            items += doc["items"]
            cursor = doc["next_cursor"]
            pages += 1
            if cursor is None:
                break
            # Between pages: new rows everywhere, volatile cells deleted.
            api.put_cell(name, "n%05d" % (10000 + pages), "x", b"new")
            api.delete(cell(name, "v%04d" % (pages % 30), "s000"))
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert pages > 40
    got = got_of(items)
    assert set(stable) <= got, sorted(set(stable) - got)[:10]
    assert got <= set(stable) | set(volatile) | {(b"n%05d" % i, b"x") for i in range(20000)}

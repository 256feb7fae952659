"""Rows: the multi-get range matrix of Pegasus' base_api test (13 sortkeys
including the empty one; every start/stop inclusive/exclusive combination
with empty, present and absent bounds; start == stop; start > stop;
reverse), filters, values=false, limit, max_bytes, cursors, the work bound,
sortkey lists, count, row DELETE and PATCH."""
import itertools

import pytest

from helpers import LIMITS, cell, count_all, jbytes, row, unique, wait_until

SORTKEYS = [b"", b"1", b"11", b"111", b"12", b"2", b"21", b"22", b"3", b"31", b"311", b"4", b"44"]
ABSENT = [b"0", b"10", b"115", b"5", b"\xff"]
BOUNDS = SORTKEYS + ABSENT


def in_range(k, start, stop, si, so):
    if k < start or (k == start and not si):
        return False
    if stop != b"" and (k > stop or (k == stop and not so)):
        return False
    return True


def expected(keys, start=b"", stop=b"", si=True, so=False, reverse=False, limit=None,
             filter_type=None, pattern=b""):
    out = [k for k in sorted(keys) if in_range(k, start, stop, si, so)]
    if filter_type == "prefix":
        out = [k for k in out if k.startswith(pattern)]
    elif filter_type == "postfix":
        out = [k for k in out if k.endswith(pattern)]
    elif filter_type == "anywhere":
        out = [k for k in out if pattern in k]
    if reverse:
        out = out[::-1]
    return out[:limit] if limit else out


def value_of(k):
    return b"v" + k


@pytest.fixture(scope="module")
def matrix_row(api, table):
    h = unique("matrix")
    api.patch(row(table, h), {"set": [{"sortkey_base64": __import__("base64").b64encode(k).decode(),
                                       "value_base64": __import__("base64").b64encode(value_of(k)).decode()}
                                      for k in SORTKEYS]}).ok()
    return h


def keys_of(cells):
    return [jbytes(c, "sortkey") for c in cells]


def range_query(start, stop, si, so, reverse=False, **extra):
    p = [("start", start), ("stop", stop), ("start_inclusive", si), ("stop_inclusive", so)]
    if reverse:
        p.append(("reverse", True))
    return p + list(extra.items())


def test_range_matrix(api, table, matrix_row):
    """Every (start, stop, start_inclusive, stop_inclusive, reverse) over
    present, absent and empty bounds, one page (limit > row size)."""
    n = 0
    for start, stop, si, so, rev in itertools.product(BOUNDS, BOUNDS, (True, False), (True, False),
                                                      (False, True)):
        doc = api.get(row(table, matrix_row), query=range_query(start, stop, si, so, rev)).ok()
        want = expected(SORTKEYS, start, stop, si, so, rev)
        assert keys_of(doc["cells"]) == want, (start, stop, si, so, rev, doc)
        assert doc["next_cursor"] is None
        for c in doc["cells"]:
            assert jbytes(c, "value") == value_of(jbytes(c, "sortkey"))
            assert c["ttl"] is None and c["etag"].isdigit()
        n += 1
    assert n == len(BOUNDS) ** 2 * 8


def test_range_defaults_and_special_cases(api, table, matrix_row):
    path = row(table, matrix_row)
    assert keys_of(api.get(path).ok()["cells"]) == SORTKEYS
    # Empty start exclusive excludes the empty sortkey.
    assert keys_of(api.get(path, query={"start_inclusive": False}).ok()["cells"]) == SORTKEYS[1:]
    # start == stop: one cell only when both ends are inclusive.
    assert keys_of(api.get(path, query=range_query(b"2", b"2", True, True)).ok()["cells"]) == [b"2"]
    for si, so in ((True, False), (False, True), (False, False)):
        assert api.get(path, query=range_query(b"2", b"2", si, so)).ok()["cells"] == []
    # start > stop: empty, not an error.
    assert api.get(path, query=range_query(b"3", b"2", True, True)).ok() == \
        {"hashkey": matrix_row, "cells": [], "next_cursor": None}
    # Empty stop is the end of the row whatever stop_inclusive says.
    assert keys_of(api.get(path, query=range_query(b"4", b"", True, True)).ok()["cells"]) == [b"4", b"44"]
    # The empty sortkey as both bounds, inclusive.
    assert keys_of(api.get(path, query=[("start", ""), ("stop", ""), ("stop_inclusive", True)])
                   .ok()["cells"]) == SORTKEYS
    # A missing row is an empty page.
    assert api.get(row(table, unique("none"))).ok()["cells"] == []


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("limit", [1, 2, 5])
def test_range_paging(api, table, matrix_row, reverse, limit):
    """Following next_cursor yields the whole range once, in order (descending
    with reverse), and no page is larger than limit."""
    for start, stop, si, so in itertools.product([b"", b"1", b"115", b"22"], [b"", b"3", b"311", b"5"],
                                                 (True, False), (True, False)):
        got, cursor, pages = [], None, 0
        while True:
            q = range_query(start, stop, si, so, reverse, limit=limit)
            if cursor:
                q.append(("cursor", cursor))
            doc = api.get(row(table, matrix_row), query=q).ok()
            assert len(doc["cells"]) <= limit
            got += keys_of(doc["cells"])
            cursor = doc["next_cursor"]
            pages += 1
            if cursor is None:
                break
            assert pages < 50
        assert got == expected(SORTKEYS, start, stop, si, so, reverse), (start, stop, si, so)


def test_reverse_returns_the_last_n_descending(api, table, matrix_row):
    doc = api.get(row(table, matrix_row), query={"reverse": True, "limit": 3}).ok()
    assert keys_of(doc["cells"]) == [b"44", b"4", b"311"] and doc["next_cursor"]
    doc = api.get(row(table, matrix_row), query=range_query(b"1", b"3", True, False, True, limit=2)).ok()
    assert keys_of(doc["cells"]) == [b"22", b"21"]
    doc2 = api.get(row(table, matrix_row), query=range_query(b"1", b"3", True, False, True, limit=2,
                                                             cursor=doc["next_cursor"])).ok()
    assert keys_of(doc2["cells"]) == [b"2", b"12"]


@pytest.mark.parametrize("filter_type", ["prefix", "postfix", "anywhere"])
def test_filters(api, table, matrix_row, filter_type):
    for pattern in (b"", b"1", b"11", b"2", b"31", b"4", b"9", b"111"):
        for reverse, (start, stop) in itertools.product((False, True), [(b"", b""), (b"11", b"31")]):
            for limit in (None, 2):
                want = expected(SORTKEYS, start, stop, True, False, reverse, None, filter_type, pattern)
                q = range_query(start, stop, True, False, reverse, filter_type=filter_type, filter=pattern)
                if limit:
                    got, cursor = [], None
                    while True:
                        doc = api.get(row(table, matrix_row),
                                      query=q + [("limit", limit)] + ([("cursor", cursor)] if cursor else [])).ok()
                        got += keys_of(doc["cells"])
                        cursor = doc["next_cursor"]
                        if not cursor:
                            break
                else:
                    got = keys_of(api.get(row(table, matrix_row), query=q).ok()["cells"])
                assert got == want, (filter_type, pattern, reverse, start, stop, limit)
    api.get(row(table, matrix_row), query={"filter_type": "exact", "filter": "1"}).problem(400, "INVALID_ARGUMENT")


def test_values_false(api, table, matrix_row):
    doc = api.get(row(table, matrix_row), query={"values": False, "limit": 5}).ok()
    assert keys_of(doc["cells"]) == SORTKEYS[:5]
    for c in doc["cells"]:
        assert "value" not in c and "value_base64" not in c and "etag" in c and "ttl" in c
    cells, _ = api.read_row(table, matrix_row, values=False, limit=3)
    assert keys_of(cells) == SORTKEYS
    doc = api.get(row(table, matrix_row), query=[("values", "false"), ("sortkey", "2")]).ok()
    assert doc["cells"] == [{"sortkey": "2", "ttl": None, "etag": doc["cells"][0]["etag"]}]
    api.get(row(table, matrix_row), query={"values": "no"}).problem(400, "INVALID_ARGUMENT")


def test_limit_bounds(api, table, matrix_row):
    path = row(table, matrix_row)
    assert len(api.get(path, query={"limit": 1}).ok()["cells"]) == 1
    api.get(path, query={"limit": LIMITS["max_page_cells"]}).ok()
    for bad in (0, -1, LIMITS["max_page_cells"] + 1, "x", "1.5", ""):
        api.get(path, query={"limit": bad}).problem(400, "INVALID_ARGUMENT")
    for bad in (0, -1, LIMITS["max_page_bytes"] + 1, "x"):
        api.get(path, query={"max_bytes": bad}).problem(400, "INVALID_ARGUMENT")
    api.get(path, query={"max_bytes": LIMITS["max_page_bytes"]}).ok()


def test_max_bytes(api, table):
    h = unique("h")
    api.patch(row(table, h), {"set": [{"sortkey": "k%02d" % i, "value": "x" * 100} for i in range(20)]}).ok()
    # At least one cell per page, even when one value is larger than max_bytes.
    doc = api.get(row(table, h), query={"max_bytes": 1}).ok()
    assert len(doc["cells"]) == 1 and doc["next_cursor"]
    # The page stops once the values reach max_bytes.
    doc = api.get(row(table, h), query={"max_bytes": 350}).ok()
    assert 3 <= len(doc["cells"]) <= 4, len(doc["cells"])
    assert doc["next_cursor"]
    cells, pages = api.read_row(table, h, max_bytes=350)
    assert [c["sortkey"] for c in cells] == ["k%02d" % i for i in range(20)]
    assert 5 <= pages <= 8, pages
    cells, pages = api.read_row(table, h, max_bytes=1, reverse=True)
    assert [c["sortkey"] for c in cells] == ["k%02d" % i for i in reversed(range(20))] and pages == 20


def test_cursor_rules(api, table, matrix_row):
    path = row(table, matrix_row)
    doc = api.get(path, query={"limit": 2}).ok()
    cursor = doc["next_cursor"]
    assert isinstance(cursor, str) and cursor
    # The same cursor twice gives the same page (stateless).
    a = api.get(path, query={"limit": 2, "cursor": cursor}).ok()
    b = api.get(path, query={"limit": 2, "cursor": cursor}).ok()
    assert a == b and keys_of(a["cells"]) == SORTKEYS[2:4]
    # Malformed cursors.
    for bad in ("x", "AAAA", cursor[::-1], "!!!", "a" * 300, "%00", "AQ", "=" + cursor):
        api.get(path, query={"limit": 2, "cursor": bad}).problem(400, "INVALID_CURSOR")
    # A row cursor is not a scan cursor.
    api.get("/v1/tables/%s/scan" % table, query={"cursor": cursor}).problem(400, "INVALID_CURSOR")


def test_work_bound_short_pages_and_expired_cells(api):
    """Expired and filtered cells count toward max_scan_cells: pages may be
    short, even empty, with a next_cursor; only null ends the range. (A table
    of its own: no other test's writes cause a compaction that would drop
    the expired cells early.)"""
    table = api.create_table(partition_count=1)
    h = unique("h")
    bound = LIMITS["max_scan_cells"]
    n_expiring = bound * 2 + 17
    for chunk in range(0, n_expiring, 40):
        api.patch(row(table, h), {"ttl": 1, "set": [{"sortkey": "e%05d" % i, "value": "x"}
                                                     for i in range(chunk, min(chunk + 40, n_expiring))]}).ok()
    api.patch(row(table, h), {"set": [{"sortkey": "z%02d" % i, "value": "live"} for i in range(5)]}).ok()
    wait_until(lambda: count_all(api, row(table, h) + "/count")[0] == 5, 15, "the TTL=1 cells to expire")
    cells, pages = api.read_row(table, h, limit=10)
    assert [c["sortkey"] for c in cells] == ["z%02d" % i for i in range(5)]
    assert pages >= 3, pages  # at most max_scan_cells examined per page
    doc = api.get(row(table, h), query={"limit": 10}).ok()
    assert doc["cells"] == [] and doc["next_cursor"] is not None
    # Filtered cells count too.
    h2 = unique("h")
    for chunk in range(0, bound * 2, 40):
        api.patch(row(table, h2), {"set": [{"sortkey": "a%05d" % i, "value": "x"}
                                           for i in range(chunk, chunk + 40)]}).ok()
    api.put_cell(table, h2, "b-match", b"x")
    # (postfix and anywhere filters cannot narrow the range as prefix may)
    doc = api.get(row(table, h2), query={"filter_type": "anywhere", "filter": "-match"}).ok()
    assert doc["cells"] == [] and doc["next_cursor"]
    cells, pages = api.read_row(table, h2, filter_type="postfix", filter="match")
    assert [c["sortkey"] for c in cells] == ["b-match"] and pages >= 2
    # Reverse pages are bounded the same way.
    cells, pages = api.read_row(table, h, reverse=True, limit=3)
    assert [c["sortkey"] for c in cells] == ["z%02d" % i for i in reversed(range(5))]


def test_sortkey_list(api, table, matrix_row):
    path = row(table, matrix_row)
    doc = api.get(path, query=[("sortkey", "3"), ("sortkey", "nope"), ("sortkey", ""), ("sortkey", "11")]).ok()
    assert keys_of(doc["cells"]) == [b"", b"11", b"3"] and doc["next_cursor"] is None
    assert jbytes(doc["cells"][0], "value") == b"v"
    doc = api.get(path, query=[("sortkey", "2"), ("sortkey", "2")]).ok()
    assert keys_of(doc["cells"]) == [b"2"]
    many = [("sortkey", "k%d" % i) for i in range(LIMITS["max_batch_items"])]
    assert api.get(path, query=many).ok()["cells"] == []
    api.get(path, query=many + [("sortkey", "one-more")]).problem(400, "TOO_MANY_ITEMS")
    for extra in (("start", "1"), ("stop", "2"), ("start_inclusive", "false"), ("stop_inclusive", "true"),
                  ("reverse", "true"), ("filter_type", "prefix")):
        api.get(path, query=[("sortkey", "1"), extra]).problem(400, "INVALID_ARGUMENT")
    api.get(path, query=[("sortkey", "1"), ("cursor", "x")]).problem(400, "INVALID_CURSOR")


def test_sortkey_list_pages_by_limit(api, table, matrix_row):
    """A sortkey list is paged like a range: at most limit cells a page,
    the rest through next_cursor (missing keys are skipped, not counted)."""
    path = row(table, matrix_row)
    asked = [b"4", b"nope", b"", b"2", b"11", b"3", b"zz", b"2"]
    want = sorted(k for k in set(asked) if k in SORTKEYS)
    query = [("sortkey", k) for k in asked]
    for limit in (1, 2, 3, len(want), len(want) + 1):
        got, cursor, pages = [], None, 0
        while True:
            doc = api.get(path, query=query + [("limit", limit)] + ([("cursor", cursor)] if cursor else [])).ok()
            assert len(doc["cells"]) <= limit, (limit, doc)
            got += keys_of(doc["cells"])
            pages += 1
            cursor = doc["next_cursor"]
            if cursor is None:
                break
            assert pages < 20
        assert got == want, (limit, got)
        assert pages >= -(-len(want) // limit), (limit, pages)
    doc = api.get(path, query=query + [("limit", 1), ("values", "false")]).ok()
    assert len(doc["cells"]) == 1 and "value" not in doc["cells"][0] and doc["next_cursor"]
    # A cursor of another row is refused.
    other = unique("h")
    api.put_cell(table, other, "x", b"v")
    api.get(row(table, other), query=[("sortkey", "x"), ("cursor", doc["next_cursor"])]) \
        .problem(400, "INVALID_CURSOR")


def test_count(api, table, matrix_row):
    base = row(table, matrix_row) + "/count"
    assert api.get(base).ok() == {"count": len(SORTKEYS), "next_cursor": None}
    for start, stop, si, so in itertools.product(BOUNDS[::2], BOUNDS[1::2], (True, False), (True, False)):
        n, _ = count_all(api, base, range_query(start, stop, si, so))
        assert n == len(expected(SORTKEYS, start, stop, si, so)), (start, stop, si, so)
    assert api.get(row(table, unique("none")) + "/count").ok() == {"count": 0, "next_cursor": None}
    api.get(base, query={"start_inclusive": "x"}).problem(400, "INVALID_ARGUMENT")
    api.get(row(unique("nope"), "h") + "/count").problem(404, "TABLE_NOT_FOUND")


def test_count_is_bounded_like_a_page(api, table):
    """A row longer than max_scan_cells is counted a page at a time: each
    page examines at most max_scan_cells cells, and the pages sum to the
    row's live cells (ranges and expired cells included)."""
    bound = LIMITS["max_scan_cells"]
    h = unique("h")
    n = 2 * bound + 37
    for first in range(0, n, LIMITS["max_batch_items"]):
        api.patch(row(table, h), {"set": [{"sortkey": "k%05d" % i, "value": "v"}
                                          for i in range(first, min(n, first + LIMITS["max_batch_items"]))]}).ok()
    path = row(table, h) + "/count"
    doc = api.get(path).ok()
    assert doc["count"] <= bound and doc["next_cursor"], doc
    total, pages = count_all(api, path)
    assert total == n and pages >= 3, (total, pages)
    total, _ = count_all(api, path, [("start", "k00100"), ("stop", "k00200")])
    assert total == 100
    api.get(path, query=[("cursor", "garbage")]).problem(400, "INVALID_CURSOR")
    # A cursor outside the range asked is refused, as for pages.
    api.get(path, query=[("start", "k9"), ("cursor", doc["next_cursor"])]).problem(400, "INVALID_CURSOR")


def test_empty_patch_is_a_no_op(api, table):
    """An empty mutation (as a client building a PATCH from a diff sends)
    is a valid no-op: 200 applied, nothing written, no version used."""
    h = unique("h")
    e1 = api.put_cell(table, h, "a", b"1").etag
    for doc in ({}, {"set": []}, {"delete": []}, {"set": [], "delete": []}, {"ttl": 5}):
        assert api.patch(row(table, h), doc).ok() == {"applied": True}
    e2 = api.put_cell(table, h, "a", b"2").etag
    # Versions grow by one per write to the partition: none went to the no-ops.
    assert int(e2.strip('"')) == int(e1.strip('"')) + 1
    assert [c["sortkey"] for c in api.read_row(table, h)[0]] == ["a"]
    api.patch(row(unique("nope"), "h"), {}).problem(404, "TABLE_NOT_FOUND")


def test_row_delete_ranges(api, table):
    for start, stop, si, so in [(b"", b"", True, False), (b"11", b"3", True, False), (b"11", b"3", False, True),
                                (b"", b"2", False, True), (b"2", b"2", True, True), (b"3", b"2", True, True),
                                (b"115", b"", True, False), (b"5", b"", True, True)]:
        h = unique("h")
        api.patch(row(table, h), {"set": [{"sortkey": k.decode(), "value": "v"} for k in SORTKEYS]}).ok()
        gone = expected(SORTKEYS, start, stop, si, so)
        q = range_query(start, stop, si, so)
        doc = api.delete(row(table, h), query=q).ok()
        assert doc == {"deleted": len(gone)}, (start, stop, si, so, doc)
        cells, _ = api.read_row(table, h)
        assert keys_of(cells) == [k for k in SORTKEYS if k not in gone]
        assert api.delete(row(table, h), query=q).ok() == {"deleted": 0}


def test_row_delete_counts_only_live_cells(api, table):
    h = unique("h")
    api.patch(row(table, h), {"set": [{"sortkey": "live%d" % i, "value": "v"} for i in range(3)]}).ok()
    api.patch(row(table, h), {"ttl": 1, "set": [{"sortkey": "exp%d" % i, "value": "v"} for i in range(4)]}).ok()
    wait_until(lambda: api.get(row(table, h) + "/count").ok()["count"] == 3, 10, "expiry")
    assert api.delete(row(table, h)).ok() == {"deleted": 3}
    assert api.get(row(table, h) + "/count").ok() == {"count": 0, "next_cursor": None}
    assert api.delete(row(table, unique("none"))).ok() == {"deleted": 0}
    api.delete(row(unique("nope"), "h")).problem(404, "TABLE_NOT_FOUND")


def test_patch(api, table):
    h = unique("h")
    api.put_cell(table, h, "old", b"1")
    api.put_cell(table, h, "both", b"1")
    doc = api.patch(row(table, h), {"set": [{"sortkey": "a", "value": "A"},
                                            {"sortkey": "both", "value": "set wins"},
                                            {"sortkey": "t", "value": "T", "ttl": 100}],
                                    "delete": [{"sortkey": "old"}, {"sortkey": "both"}, {"sortkey": "never"}]}).ok()
    assert doc == {"applied": True}
    cells, _ = api.read_row(table, h)
    got = {c["sortkey"]: (c["value"], c["ttl"]) for c in cells}
    assert set(got) == {"a", "both", "t"}
    assert got["both"][0] == "set wins" and got["a"] == ("A", None) and 90 <= got["t"][1] <= 101
    etags = {c["etag"] for c in cells if c["sortkey"] in ("a", "both", "t")}
    assert len(etags) == 1, "one atomic mutation stamps one version: %s" % cells
    # A request ttl is the default for its sets; an item's own ttl wins.
    api.patch(row(table, h), {"ttl": 500, "set": [{"sortkey": "d1", "value": "x"},
                                                   {"sortkey": "d2", "value": "x", "ttl": 50}]}).ok()
    ttls = {c["sortkey"]: c["ttl"] for c in api.read_row(table, h)[0]}
    assert 490 <= ttls["d1"] <= 501 and 40 <= ttls["d2"] <= 51
    # Only deletes.
    api.patch(row(table, h), {"delete": [{"sortkey": "d1"}, {"sortkey": "d2"}]}).ok()
    assert "d1" not in {c["sortkey"] for c in api.read_row(table, h)[0]}


def test_patch_rejects_and_is_all_or_nothing(api, table):
    h = unique("h")
    api.put_cell(table, h, "keep", b"1")
    for doc in ({"set": [{"sortkey": "a"}]}, {"set": [{"value": "a"}]},
                {"set": [{"sortkey": "a", "value": 1}]}, {"set": [{"sortkey": "a", "value": "v", "ttl": -1}]},
                {"set": [{"sortkey": "a", "value": "v"}], "ttl": "5"}, {"delete": [{}]},
                {"set": {"sortkey": "a", "value": "v"}},
                {"set": [{"sortkey": "a", "value": "v"}], "delete": [{"sortkey": "keep"}], "extra": [{}]},
                {"set": [{"sortkey": "ok", "value": "v"}, {"sortkey": "bad", "value_base64": "***"}],
                 "delete": [{"sortkey": "keep"}]}):
        api.patch(row(table, h), doc).problem(400)
    cells, _ = api.read_row(table, h)
    assert [c["sortkey"] for c in cells] == ["keep"], "a rejected PATCH changed the row"
    n = LIMITS["max_batch_items"]
    api.patch(row(table, h), {"set": [{"sortkey": "s%d" % i, "value": "v"} for i in range(n // 2)],
                              "delete": [{"sortkey": "d%d" % i} for i in range(n - n // 2)]}).ok()
    api.patch(row(table, h), {"set": [{"sortkey": "s%d" % i, "value": "v"} for i in range(n // 2 + 1)],
                              "delete": [{"sortkey": "d%d" % i} for i in range(n - n // 2)]}) \
        .problem(400, "TOO_MANY_ITEMS")
    api.call("PATCH", row(table, h), body=b'{"set": []}', headers={"Content-Type": "text/plain"}) \
        .problem(415, "UNSUPPORTED_MEDIA_TYPE")
    api.call("PATCH", row(table, h), body=b'{"set": [', headers={"Content-Type": "application/json"}) \
        .problem(400, "INVALID_JSON")
    big = "x" * (LIMITS["max_value_bytes"] + 1)
    api.patch(row(table, h), {"set": [{"sortkey": "big", "value": big}]}).problem(413, "TOO_LARGE")
    api.patch(row(unique("nope"), "h"), {"delete": [{"sortkey": "a"}]}).problem(404, "TABLE_NOT_FOUND")
    assert api.get(cell(table, h, "big")).status == 404


def test_tampered_cursor_is_rejected(api, table, matrix_row):
    """A cursor changed by one character, or cut short, is corrupt: 400
    INVALID_CURSOR rather than a page from some other position."""
    path = row(table, matrix_row)
    cursor = api.get(path, query={"limit": 2}).ok()["next_cursor"]
    for bad in (cursor + "A", cursor[:-1], cursor[:-2], cursor[:-1] + ("B" if cursor[-1] != "B" else "C")):
        api.get(path, query={"limit": 2, "cursor": bad}).problem(400, "INVALID_CURSOR")

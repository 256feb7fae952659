"""Binary keys and values both ways: percent-encoded and base64url path
segments, base64url query keys, the plain and _base64 JSON forms in
requests and responses, ?encoding=base64, and key length limits."""
import base64

import pytest

from helpers import b64, b64url, cell, jbytes, jfield, plain_ok, q, row, unique

KEYS = [b"a/b", b"%", b"%2F", b"\x00", b"\xff", b"\xff\xfe", b"sp ace", "ключ".encode(),
        b"?#&=+", b".", b"..", b"\x00\x00", b"\xc3", b"\x7f", "😀".encode()]
JSON = {"Accept": "application/json"}


def test_percent_encoded_path_keys_round_trip(api, table):
    hs = [unique("h").encode() + k for k in KEYS[:5]] + [b"\xff", b"\x00", b"/"]
    for i, h in enumerate(hs):
        for j, s in enumerate(KEYS):
            api.put_cell(table, h, s, bytes([i, j, 0, 255]))
    for i, h in enumerate(hs):
        for j, s in enumerate(KEYS):
            r = api.get(cell(table, h, s))
            assert r.status == 200 and r.body == bytes([i, j, 0, 255]), (h, s, r)
            doc = api.get(cell(table, h, s), headers=JSON).ok()
            assert jbytes(doc, "hashkey") == h and jbytes(doc, "sortkey") == s
            assert jbytes(doc, "value") == bytes([i, j, 0, 255])
            assert "value_base64" in doc  # NUL and 0xFF are never plain
    # A row read returns every sortkey, sorted by bytes.
    for h in hs:
        cells, _ = api.read_row(table, h)
        assert [jbytes(c, "sortkey") for c in cells] == sorted(KEYS)


def test_base64url_path_keys_reach_the_same_cells(api, table):
    h = b"\xff/" + unique("h").encode()
    for s in KEYS + [b""]:
        api.put_cell(table, h, s, b"v:" + s)
    for s in KEYS + [b""]:
        r = api.get(cell(table, h, s, key_encoding=True))
        assert r.status == 200 and r.body == b"v:" + s, (s, r)
    # Writes and deletes that way too.
    api.put(cell(table, h, b"\x01\x02", key_encoding=True), b"x").ok(201)
    assert api.get(cell(table, h, b"\x01\x02")).body == b"x"
    api.delete(cell(table, h, b"\x01\x02", key_encoding=True)).ok(204)
    api.get(cell(table, h, b"\x01\x02")).problem(404, "CELL_NOT_FOUND")
    # The empty sortkey is an empty segment in base64url too.
    assert api.get("/v1/tables/%s/rows/%s/cells/?key_encoding=base64url" % (table, b64url(h))).body == b"v:"
    # incr, row reads, counts and check-and-mutate by base64url.
    path = "/v1/tables/%s/rows/%s/cells/%s/incr?key_encoding=base64url" % (table, b64url(h), b64url(b"\x00n"))
    assert api.post(path, {"by": 3}).ok()["value"] == 3
    assert api.get(cell(table, h, b"\x00n")).body == b"3"
    rp = row(table, h, key_encoding=True)
    doc = api.get(rp, query={"key_encoding": "base64url", "sortkey": [b64url(b"\xff"), b64url(b"%")]}
                  if False else [("key_encoding", "base64url"), ("sortkey", b64url(b"\xff")),
                                 ("sortkey", b64url(b"%"))]).ok()
    assert [jbytes(c, "sortkey") for c in doc["cells"]] == [b"%", b"\xff"]
    assert jbytes(doc, "hashkey") == h
    doc = api.get(rp, query=[("key_encoding", "base64url"), ("start", b64url(b"\x00")),
                             ("stop", b64url(b"\x01")), ("values", "false")]).ok()
    assert [jbytes(c, "sortkey") for c in doc["cells"]] == [b"\x00", b"\x00\x00", b"\x00n"]
    n = api.get(rp + "/count", query=[("key_encoding", "base64url"), ("start", b64url(b"\xff"))]).ok()
    assert n == {"count": 2, "next_cursor": None}  # \xff and \xff\xfe
    r = api.post(rp + "/check-and-mutate?key_encoding=base64url",
                 {"check": {"sortkey_base64": b64(b"\x00n"), "type": "value_int_equal", "operand": "3"},
                  "set": [{"sortkey_base64": b64(b"\x00m"), "value": "set"}]}).ok()
    assert r["applied"] is True
    assert api.get(cell(table, h, b"\x00m")).body == b"set"
    doc = api.get(rp, query=[("key_encoding", "base64url"), ("filter_type", "prefix"),
                             ("filter", b64url(b"\x00"))]).ok()
    assert [jbytes(c, "sortkey") for c in doc["cells"]] == [b"\x00", b"\x00\x00", b"\x00m", b"\x00n"]


def test_bad_key_encodings_are_400(api, table):
    api.get("/v1/tables/%s/rows/%%%%/cells/x" % table).problem(400)
    api.get("/v1/tables/%s/rows/%%zz/cells/x" % table).problem(400)
    api.get("/v1/tables/%s/rows/a$/cells/x?key_encoding=base64url" % table).problem(400, "INVALID_KEY")
    api.get("/v1/tables/%s/rows/YQ==/cells/x?key_encoding=base64url" % table).problem(400)
    api.get("/v1/tables/%s/rows/a/cells/x?key_encoding=hex" % table).problem(400, "INVALID_ARGUMENT")
    api.get("/v1/tables/%s/rows/YQ?key_encoding=base64url&start=$$" % table).problem(400)
    api.get("/v1/tables/%s/rows/a?encoding=hex" % table).problem(400, "INVALID_ARGUMENT")


def test_empty_hashkey_is_400(api, table):
    api.get("/v1/tables/%s/rows//cells/x" % table).problem(400, "INVALID_KEY")
    api.put("/v1/tables/%s/rows//cells/x" % table, b"v").problem(400, "INVALID_KEY")
    api.get("/v1/tables/%s/rows/" % table).problem(400, "INVALID_KEY")
    api.get("/v1/tables/%s/rows//count" % table).problem(400, "INVALID_KEY")
    api.post("/v1/tables/%s/rows//cells/x/incr" % table).problem(400, "INVALID_KEY")
    api.get("/v1/tables/%s/rows/?key_encoding=base64url" % table).problem(400, "INVALID_KEY")
    api.post("/v1/tables/%s/batch-get" % table, {"keys": [{"hashkey": "", "sortkey": "s"}]}) \
        .problem(400, "INVALID_KEY")
    api.post("/v1/tables/%s/batch-write" % table,
             {"set": [{"hashkey": "", "sortkey": "s", "value": "v"}]}).problem(400, "INVALID_KEY")
    api.post("/v1/tables/%s/batch-write" % table,
             {"delete": [{"hashkey_base64": "", "sortkey": "s"}]}).problem(400, "INVALID_KEY")


def test_key_length_limits(api, table):
    h = unique("h")
    longest = b"k" * 65535
    api.patch(row(table, h), {"set": [{"sortkey": longest.decode(), "value": "v"}]}).ok()
    api.patch(row(table, h), {"set": [{"sortkey": "k" * 65536, "value": "v"}]}).problem(400, "INVALID_KEY")
    cells, _ = api.read_row(table, h)
    assert [jbytes(c, "sortkey") for c in cells] == [longest]
    r = api.post("/v1/tables/%s/batch-write" % table,
                 {"set": [{"hashkey": "h" * 65535, "sortkey": "s", "value": "v"}]}).ok()
    assert r["results"][0]["status"] == 200
    doc = api.post("/v1/tables/%s/batch-get" % table, {"keys": [{"hashkey": "h" * 65535, "sortkey": "s"}]}).ok()
    assert doc["results"][0]["found"] is True and doc["results"][0]["value"] == "v"
    api.post("/v1/tables/%s/batch-write" % table,
             {"set": [{"hashkey": "h" * 65536, "sortkey": "s", "value": "v"}]}).problem(400, "INVALID_KEY")
    api.post("/v1/tables/%s/batch-get" % table,
             {"keys": [{"hashkey": "h" * 65536, "sortkey": "s"}]}).problem(400, "INVALID_KEY")


def test_json_request_forms(api, table):
    h = unique("h").encode() + b"\x00\xff"
    hb = b64(h)
    r = api.post("/v1/tables/%s/batch-write" % table, {"set": [
        {"hashkey_base64": hb, "sortkey": "plain", "value": "text"},
        {"hashkey_base64": hb, "sortkey_base64": b64(b"\x00"), "value_base64": b64(b"\xff\x00")},
        {"hashkey_base64": hb, "sortkey_base64": b64("ключ"), "value_base64": b64("значение")},
    ]}).ok()
    assert jbytes(r["results"][0], "hashkey") == h and r["results"][0]["status"] == 200
    assert api.get(cell(table, h, b"plain")).body == b"text"
    assert api.get(cell(table, h, b"\x00")).body == b"\xff\x00"
    assert api.get(cell(table, h, "ключ".encode())).body == "значение".encode()
    # Both forms of one field: 400, nothing written.
    for doc in ({"set": [{"hashkey": "x", "hashkey_base64": "eA==", "sortkey": "s", "value": "v"}]},
                {"set": [{"hashkey": "x", "sortkey": "s", "sortkey_base64": "cw==", "value": "v"}]},
                {"set": [{"hashkey": "x", "sortkey": "s", "value": "v", "value_base64": "dg=="}]}):
        api.post("/v1/tables/%s/batch-write" % table, doc).problem(400, "INVALID_ARGUMENT")
    api.patch(row(table, h), {"set": [{"sortkey": "s", "sortkey_base64": "cw==", "value": "v"}]}) \
        .problem(400, "INVALID_ARGUMENT")
    api.post(row(table, h) + "/check-and-mutate",
             {"check": {"sortkey": "s", "type": "value_match_prefix", "operand": "a",
                        "operand_base64": "YQ=="}}).problem(400, "INVALID_ARGUMENT")
    # Bad base64, wrong types, missing keys.
    for item in ({"hashkey_base64": "!!", "sortkey": "s", "value": "v"},
                 {"hashkey_base64": "eA", "sortkey": "s", "value": "v"},   # no padding
                 {"hashkey": "x", "sortkey": "s", "value_base64": "dg=!"},
                 {"hashkey": 1, "sortkey": "s", "value": "v"},
                 {"hashkey": "x", "sortkey": None, "value": "v"},
                 {"hashkey": "x", "value": "v"},
                 {"sortkey": "s", "value": "v"},
                 {"hashkey": "x", "sortkey": "s"}):
        api.post("/v1/tables/%s/batch-write" % table, {"set": [item]}).problem(400)


def test_row_cursors_stay_short_after_long_sortkeys(api, table):
    """A page that stops on a 64 KiB sortkey hands out a cursor that fits in
    a URL, forward and in reverse: a cursor is where the next sortkey parts
    from the last one."""
    h = unique("h")
    longest = "k" * 65535
    keys = ["a" + "x" * 9000, "a" + "x" * 9000 + "y", "j", longest, "m"]
    for k in keys:
        api.patch(row(table, h), {"set": [{"sortkey": k, "value": "v"}]}).ok()
    path = row(table, h)
    for query, want in (({}, sorted(keys)), ({"reverse": "true"}, sorted(keys, reverse=True))):
        got, cursor, lengths = [], None, []
        for _ in range(len(keys) + 1):
            q = dict(query, limit=1, values="false")
            if cursor:
                q["cursor"] = cursor
            doc = api.get(path, query=q).ok()
            got += [jbytes(c, "sortkey").decode() for c in doc["cells"]]
            cursor = doc["next_cursor"]
            if cursor is None:
                break
            lengths.append(len(cursor))
        assert got == want, query
        # Only the two sortkeys sharing 9001 bytes give a long cursor.
        assert len(lengths) == 4 and sorted(lengths)[2] < 40 and 12000 < max(lengths) < 12100, \
            (query, lengths)


def test_response_forms_follow_the_bytes(api, table):
    """Plain when valid UTF-8 without NUL, _base64 otherwise (helpers check
    this on every response); encoding=base64 forces _base64 everywhere."""
    h = unique("h")
    vals = {b"utf8": "é✓".encode(), b"nul": b"a\x00b", b"bad": b"\xc3\x28", b"empty": b""}
    for s, v in vals.items():
        api.put_cell(table, h, s, v)
    cells, _ = api.read_row(table, h)
    forms = {jbytes(c, "sortkey"): ("value" in c, jbytes(c, "value")) for c in cells}
    assert forms == {b"bad": (False, vals[b"bad"]), b"empty": (True, b""), b"nul": (False, vals[b"nul"]),
                     b"utf8": (True, vals[b"utf8"])}
    # encoding=base64 on every kind of response with keys or values.
    doc = api.get(row(table, h), query={"encoding": "base64"}).ok()
    assert "hashkey_base64" in doc and all("sortkey_base64" in c and "value_base64" in c
                                           for c in doc["cells"])
    assert base64.b64decode(doc["hashkey_base64"]) == h.encode()
    doc = api.get(cell(table, h, "utf8"), query={"encoding": "base64"}, headers=JSON).ok()
    assert set(doc) == {"hashkey_base64", "sortkey_base64", "value_base64", "ttl", "etag"}
    doc = api.post("/v1/tables/%s/batch-get?encoding=base64" % table,
                   {"keys": [{"hashkey": h, "sortkey": "utf8"}, {"hashkey": h, "sortkey": "none"}]}).ok()
    assert [set(x) for x in doc["results"]] == [
        {"hashkey_base64", "sortkey_base64", "found", "value_base64", "etag"},
        {"hashkey_base64", "sortkey_base64", "found"}]
    doc = api.post("/v1/tables/%s/batch-write?encoding=base64" % table,
                   {"set": [{"hashkey": h, "sortkey": "x", "value": "y"}]}).ok()
    assert set(doc["results"][0]) == {"hashkey_base64", "status"}
    items, _ = api.scan_all(table, hashkey_prefix=h, encoding="base64")
    assert items and all("hashkey_base64" in i and "sortkey_base64" in i and "value_base64" in i
                         for i in items)


def test_keys_survive_query_parameters(api, table):
    """Query keys are percent-decoded exactly once: %25, %26, + and %2B."""
    h = unique("h")
    keys = [b"a&b", b"a+b", b"a b", b"a%b", b"a=b", b"a#b", b"a\x00b", b"a\xffb"]
    for s in keys:
        api.put_cell(table, h, s, b"v")
    for s in keys:
        doc = api.get(row(table, h), query=[("sortkey", s)]).ok()
        assert [jbytes(c, "sortkey") for c in doc["cells"]] == [s], (s, doc)
        doc = api.get(row(table, h), query=[("start", s), ("stop", s), ("stop_inclusive", "true")]).ok()
        assert [jbytes(c, "sortkey") for c in doc["cells"]] == [s], (s, doc)
    assert plain_ok(b"a b") and q(b"a b") == "a%20b"


def test_check_value_follows_encoding_base64(api, table):
    h = unique("h")
    api.put_cell(table, h, "c", "é✓".encode())
    doc = api.post(row(table, h) + "/check-and-mutate?encoding=base64",
                   {"check": {"sortkey": "c", "type": "value_exist"}, "return_check_value": True}).ok()
    assert base64.b64decode(doc["check_value_base64"]) == "é✓".encode() and "check_value" not in doc


def test_nul_in_json_strings_is_data(api, table):
    """\\u0000 is valid JSON and keys and values are bytes: NUL travels in
    the plain form of every JSON body (PATCH, batch-get, batch-write,
    check-and-mutate), and comes back (in the _base64 form, as JSON text
    with NUL is not plain)."""
    h = "row\x00" + unique("h")
    sk, val = "x\x00y", "v\x00al"
    api.patch(row(table, h), {"set": [{"sortkey": sk, "value": val}]}).ok()
    got = api.get(cell(table, h.encode(), sk.encode())).body
    assert got == val.encode()
    res = api.post("/v1/tables/%s/batch-get" % table, {"keys": [{"hashkey": h, "sortkey": sk}]}).ok()["results"]
    assert res[0]["found"] and jbytes(res[0], "value") == val.encode()
    assert jbytes(res[0], "hashkey") == h.encode() and "hashkey_base64" in res[0]
    res = api.post("/v1/tables/%s/batch-write" % table,
                   {"set": [{"hashkey": h, "sortkey": "\x00", "value": "\x00"}],
                    "delete": [{"hashkey": h, "sortkey": sk}]}).ok()["results"]
    assert res[0]["status"] == 200
    assert api.get(cell(table, h.encode(), b"\x00")).body == b"\x00"
    assert api.get(cell(table, h.encode(), sk.encode())).status == 404
    doc = api.post(row(table, h) + "/check-and-mutate",
                   {"check": {"sortkey": "\x00", "type": "value_bytes_equal", "operand": "\x00"},
                    "set": [{"sortkey": "a\x00", "value": "b\x00"}], "return_check_value": True}).ok()
    assert doc["applied"] and jbytes(doc, "check_value") == b"\x00"
    assert api.get(cell(table, h.encode(), b"a\x00")).body == b"b\x00"
    doc = api.post(row(table, h) + "/check-and-mutate",
                   {"check": {"sortkey": "\x00", "type": "value_match_prefix", "operand": "\x00x"}}).ok()
    assert not doc["applied"]


def test_bad_json_detail_names_no_library_internals(api, table):
    for body in (b'{"set": [', b'{"a": 1, "a": 2}', b'{"k\\u0000": 1}', b'[1]', b'{"x": "\xff"}', b'{} x'):
        p = api.call("PATCH", row(table, "h"), body=body,
                     headers={"Content-Type": "application/json"}).problem(400, "INVALID_JSON")
        assert "JSON_" not in p["detail"] and "jansson" not in p["detail"].lower(), p

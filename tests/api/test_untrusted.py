"""Cursors and ETags from clients are untrusted input: forged, corrupted,
foreign and oversized ones get a defined 400 (or, for a precondition that
is well-formed but names no version, 412), never a crash, and never cells
from outside what the request names.

Cursors are forged here exactly as the node makes them (api/cursor.c): the
bytes [2][kind][u32 partition][key], then a u32 check = the low 32 bits of
CRC-64/XZ over [u32 len][table name] (+ the row's hashkey for row
cursors) and those bytes, in base64url. A forged cursor with a valid check
is accepted only when it is a position a page of this very request could
have issued: a row cursor's key inside the requested range, a scan
cursor's partition one of the table's (the one asked for, if any); a scan
cursor's key is a position in that partition, whatever its bytes."""
import base64
import os
import random
import struct

from helpers import b64url, cell, jbytes, row, unique

JSON = {"Accept": "application/json"}
ROW, SCAN = 1, 2


def crc64(data):
    poly, crc = 0xC96C5795D7870F42, 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFFFFFFFFFF


assert crc64(b"123456789") == 0x995DC9BBDF1939FA


def forge(kind, partition, key, table, hashkey=b""):
    raw = bytes([2, kind]) + struct.pack(">I", partition) + key
    t = table.encode()
    scope = struct.pack(">I", len(t)) + t + (hashkey if kind == ROW else b"")
    return b64url(raw + struct.pack(">I", crc64(scope + raw) & 0xFFFFFFFF))


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cell_key(hk, sk):
    return struct.pack(">H", len(hk)) + hk + sk


def keys_of(cells):
    return [jbytes(c, "sortkey") for c in cells]


def make_row(api, table, n=30):
    h = unique("h").encode()
    doc = {"set": [{"sortkey": "k%02d" % i, "value": "v%02d" % i} for i in range(n)]}
    api.patch(row(table, h), doc).ok()
    return h


def test_forged_row_cursor_round_trip_matches_the_node(api, table):
    """The forging above is the node's own encoding: a cursor the node issued
    equals the forged one for the same position."""
    h = make_row(api, table)
    doc = api.get(row(table, h), query={"limit": 5}).ok()
    assert doc["next_cursor"] == forge(ROW, 0, b"k05", table, h)  # k04 examined, k05 next
    page = api.get(row(table, h), query={"limit": 5, "cursor": forge(ROW, 0, b"k05", table, h)}).ok()
    assert keys_of(page["cells"]) == [b"k%02d" % i for i in range(5, 10)]


def test_corrupt_row_cursors_are_400(api, table):
    h = make_row(api, table)
    path = row(table, h)
    good = api.get(path, query={"limit": 5}).ok()["next_cursor"]
    raw = unb64url(good)
    rnd = random.Random(7)
    bad = []
    bad += [b64url(rnd.randbytes(n)) for n in (1, 5, 9, 10, 16, 64, 300)]  # random bytes
    bad += [good[:n] for n in range(1, len(good))]  # every truncation
    for bit in range(len(raw) * 8):  # every single-bit flip
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        bad.append(b64url(bytes(flipped)))
    bad += [good + "A", good + "AA", "A" * 12000, "%00", "", "AQ", good[:-1] + "+", "/" + good[1:], good + "=="]
    for b in bad:
        api.get(path, query={"limit": 5, "cursor": b}).problem(400, "INVALID_CURSOR")
    # Still serving, and the good cursor still works.
    assert keys_of(api.get(path, query={"limit": 1, "cursor": good}).ok()["cells"]) == [b"k05"]


def test_oversized_cursor_is_refused(api, table):
    """Longer than any cursor and than the connection's memory: 414 or 400,
    and the node goes on serving."""
    h = make_row(api, table, 2)
    r = api.get(row(table, h), query={"cursor": "A" * 200000}, validate=False)
    assert r.status in (400, 414), r
    api.get(row(table, h)).ok()


def test_valid_check_row_cursor_must_lie_in_the_range(api, table):
    h = make_row(api, table)
    path = row(table, h)
    q = {"start": "k10", "stop": "k20"}

    def get(cursor, **extra):
        return api.get(path, query=dict(q, cursor=cursor, **extra))

    # Outside the range, on either side, or on an exclusive bound: 400.
    for key in (b"k05", b"", b"k09\xff", b"k20", b"k25", b"\xff" * 5):
        get(forge(ROW, 0, key, table, h)).problem(400, "INVALID_CURSOR")
        get(forge(ROW, 0, key, table, h), reverse="true").problem(400, "INVALID_CURSOR")
    get(forge(ROW, 0, b"k10", table, h), start_inclusive="false").problem(400, "INVALID_CURSOR")
    # stop_inclusive makes the stop key a position of the range.
    doc = get(forge(ROW, 0, b"k20", table, h), stop_inclusive="true", reverse="true").ok()
    assert keys_of(doc["cells"]) == [b"k%02d" % i for i in range(19, 9, -1)]
    # A row cursor names partition 0 only, valid check or not.
    get(forge(ROW, 1, b"k12", table, h)).problem(400, "INVALID_CURSOR")
    get(forge(ROW, 2 ** 32 - 1, b"k12", table, h)).problem(400, "INVALID_CURSOR")
    # Inside: at or after it (strictly before it in reverse), never outside the range.
    doc = get(forge(ROW, 0, b"k12", table, h)).ok()
    assert keys_of(doc["cells"]) == [b"k%02d" % i for i in range(12, 20)]
    doc = get(forge(ROW, 0, b"k12", table, h), reverse="true").ok()
    assert keys_of(doc["cells"]) == [b"k11", b"k10"]
    doc = get(forge(ROW, 0, b"k10", table, h)).ok()
    assert keys_of(doc["cells"]) == [b"k%02d" % i for i in range(10, 20)]
    # Not a key of the row, but inside the range: a position like any other.
    doc = get(forge(ROW, 0, b"k15\x00", table, h)).ok()
    assert keys_of(doc["cells"]) == [b"k%02d" % i for i in range(16, 20)]
    # A long key past every cell of the range: an empty last page.
    doc = get(forge(ROW, 0, b"k1" + b"\xff" * 3000, table, h)).ok()
    assert doc["cells"] == [] and doc["next_cursor"] is None


def test_row_cursor_of_another_row_table_or_kind_is_400(api, table):
    h = make_row(api, table)
    other_row = make_row(api, table)
    other_table = api.create_table(partition_count=2)
    api.patch(row(other_table, h), {"set": [{"sortkey": "k00", "value": "x"}]}).ok()
    c = api.get(row(table, h), query={"limit": 3}).ok()["next_cursor"]
    api.get(row(table, other_row), query={"cursor": c}).problem(400, "INVALID_CURSOR")
    api.get(row(other_table, h), query={"cursor": c}).problem(400, "INVALID_CURSOR")
    api.get("/v1/tables/%s/scan" % table, query={"cursor": c}).problem(400, "INVALID_CURSOR")
    # A valid-check scan cursor is not a row cursor either.
    api.get(row(table, h), query={"cursor": forge(SCAN, 0, b"", table)}).problem(400, "INVALID_CURSOR")
    # The same row named in base64url is the same row.
    r = api.get(row(table, h, key_encoding=True) + "?key_encoding=base64url&limit=2&cursor=" + c)
    assert keys_of(r.ok()["cells"]) == [b"k03", b"k04"]


def test_forged_scan_cursors(api):
    name = api.create_table(partition_count=4)
    hks = [("r%d" % i).encode() for i in range(40)]
    api.post("/v1/tables/%s/batch-write" % name,
             {"set": [{"hashkey": h.decode(), "sortkey": "s", "value": "v"} for h in hks]}).ok()
    part = {h: crc64(h) & 3 for h in hks}
    scan = "/v1/tables/%s/scan" % name

    def get(cursor, **extra):
        return api.get(scan, query=dict(cursor=cursor, limit=500, **extra))

    # The node's own cursor is what forge makes.
    c = api.get(scan, query={"limit": 1}).ok()["next_cursor"]
    raw = unb64url(c)
    assert c == forge(SCAN, struct.unpack(">I", raw[2:6])[0], raw[6:-4], name)
    # Partitions beyond the table's, or other than the one asked for.
    for p in (4, 5, 1023, 1024, 2 ** 32 - 1):
        get(forge(SCAN, p, b"", name)).problem(400, "INVALID_CURSOR")
    get(forge(SCAN, 1, b"", name), partition=2).problem(400, "INVALID_CURSOR")
    # Any bytes are a position in the cursor's partition: a key of a row that
    # lives in another partition, or bytes that are no key at all, only say
    # where in that partition the page resumes.
    h = hks[0]
    q = (part[h] + 1) & 3
    for key in (cell_key(h, b"s"), b"\x00\x00s", b"\x01", struct.pack(">H", 5) + b"ab"):
        got = [jbytes(i, "hashkey") for i in get(forge(SCAN, q, key, name)).ok()["items"]]
        assert all(part[g] >= q for g in got) and {g for g in hks if part[g] > q} <= set(got)
    # Past every key of partition 0: the page starts with partition 1.
    got = [jbytes(i, "hashkey") for i in get(forge(SCAN, 0, b"\xff\xffabc", name)).ok()["items"]]
    assert sorted(got) == sorted(g for g in hks if part[g] > 0)
    # Another table's cursor, and a row cursor.
    other = api.create_table(partition_count=4)
    get(forge(SCAN, 0, b"", other)).problem(400, "INVALID_CURSOR")
    get(forge(ROW, 0, b"", name, b"r1")).problem(400, "INVALID_CURSOR")
    # A position resumes in its partition, at or after its key, and returns
    # only cells of that and later partitions.
    p = part[h]
    for key, has_h in ((cell_key(h, b"s"), True), (cell_key(h, b"s\x00"), False)):
        got = [jbytes(i, "hashkey") for i in get(forge(SCAN, p, key, name)).ok()["items"]]
        assert (h in got) == has_h
        assert all(part[g] >= p for g in got)
        assert {g for g in hks if part[g] > p} <= set(got)
    # A long key is a position like any other.
    big = b"x" * 9000  # its cursor still fits half of the 32K connection memory
    get(forge(SCAN, crc64(big) & 3, cell_key(big, b"y" * 100), name)).ok()


def put(api, table, h, body=b"v", **headers):
    return api.put(cell(table, h, "s"), body, headers=headers)


# Not entity-tag lists (RFC 9110 8.8.3): 400, whatever the cell's state.
GARBAGE_IF_MATCH = ["42", "", " ", '"1', '1"', '*, "1"', "**", '"1" "2"', '"1"x', "W/1", '"\x01"',
                    '"a b"', "w/\"1\"", ","]
# Well-formed entity tags that name no version of any cell.
FOREIGN_TAGS = ['"-1"', '"007"', '"+1"', '"99999999999999999999"', '"x"', '"abc"', '""']


def test_garbage_if_match_is_400_and_changes_nothing(api, table):
    h = unique("h")
    etag = api.put_cell(table, h, "s", b"orig").etag
    for bad in GARBAGE_IF_MATCH + [etag[1:-1], etag + " " + etag]:
        put(api, table, h, b"new", **{"If-Match": bad}).problem(400, "INVALID_ARGUMENT")
        api.delete(cell(table, h, "s"), headers={"If-Match": bad}).problem(400, "INVALID_ARGUMENT")
        put(api, table, h, b"new", **{"If-None-Match": bad}).problem(400, "INVALID_ARGUMENT")
    r = api.get(cell(table, h, "s"))
    assert r.body == b"orig" and r.etag == etag


def test_entity_tags_that_match_nothing_follow_rfc_9110(api, table):
    """RFC 9110 13.1.1-2: a well-formed tag matching no current one makes
    If-Match false (412 with current_etag) and If-None-Match true (the
    write proceeds). If-Match compares strongly, If-None-Match weakly;
    a list matches when any member does."""
    h = unique("h")
    path = cell(table, h, "s")
    etag = api.put_cell(table, h, "s", b"orig").etag
    for tag in FOREIGN_TAGS + ["W/" + etag, 'W/"x"', '"1", "2"' if etag not in ('"1"', '"2"') else '"x"']:
        p = put(api, table, h, b"new", **{"If-Match": tag}).problem(412, "PRECONDITION_FAILED")
        assert p["current_etag"] == etag[1:-1], (tag, p)
        api.delete(path, headers={"If-Match": tag}).problem(412, "PRECONDITION_FAILED")
    assert api.get(path).body == b"orig"
    # A list holding the current tag matches, wherever it stands.
    r = put(api, table, h, b"v2", **{"If-Match": '"x", %s, W/"1"' % etag})
    assert r.status == 204
    etag = r.etag
    # If-None-Match with tags: proceeds unless one matches (weakly).
    for tag in FOREIGN_TAGS + ['"x", W/"y"']:
        r = put(api, table, h, b"v3", **{"If-None-Match": tag})
        assert r.status == 204, (tag, r)
        etag = r.etag
    for tag in (etag, "W/" + etag, '"x", ' + etag):
        p = put(api, table, h, b"no", **{"If-None-Match": tag}).problem(412, "PRECONDITION_FAILED")
        assert p["current_etag"] == etag[1:-1]
        api.delete(path, headers={"If-None-Match": tag}).problem(412, "PRECONDITION_FAILED")
    assert api.get(path).body == b"v3"
    # On a missing cell: If-Match with any tag fails, If-None-Match with tags passes.
    missing = unique("h")
    p = put(api, table, missing, b"x", **{"If-Match": '"abc"'}).problem(412, "PRECONDITION_FAILED")
    assert "current_etag" not in p
    assert put(api, table, missing, b"x", **{"If-None-Match": etag}).status == 201
    assert api.delete(path, headers={"If-None-Match": '"zzz"'}).status == 204
    assert api.get(path).status == 404


def test_well_formed_if_match_naming_no_version_is_412(api, table):
    h = unique("h")
    etag = api.put_cell(table, h, "s", b"orig").etag
    for tag in ('"0"', '"18446744073709551615"', '"9223372036854775808"'):
        p = put(api, table, h, b"new", **{"If-Match": tag}).problem(412, "PRECONDITION_FAILED")
        assert p["current_etag"] == etag[1:-1]
        api.delete(cell(table, h, "s"), headers={"If-Match": tag}).problem(412, "PRECONDITION_FAILED")
    # Optional whitespace around the one tag is fine.
    assert put(api, table, h, b"new", **{"If-Match": " %s\t" % etag}).status == 204
    assert api.get(cell(table, h, "s")).body == b"new"


GARBAGE_IF_NONE_MATCH = ["42", '"1', '1"', '"1""2"', '"1" "2"', ",", ", ,", "", "*, \"1\"", "**",
                         "W/", 'W/1', 'w/"1"', '"\x01"', '"a b"', '"1 "']


def test_if_none_match_on_reads(api, table):
    h = unique("h")
    path = cell(table, h, "s")
    etag = api.put_cell(table, h, "s", b"v").etag
    for bad in GARBAGE_IF_NONE_MATCH:
        api.get(path, headers={"If-None-Match": bad}).problem(400, "INVALID_ARGUMENT")
        r = api.call("HEAD", path, headers={"If-None-Match": bad})
        assert r.status == 400 and r.body == b"", r
        # Checked before the cell is looked up: the same on a missing one.
        api.get(cell(table, h, "missing"), headers={"If-None-Match": bad}).problem(400, "INVALID_ARGUMENT")
    # Weak comparison, lists, empty elements, whitespace, "*".
    for match in (etag, "W/" + etag, '"x", ' + etag, ' , %s ,' % etag, '"1", W/%s, "2"' % etag, "*"):
        r = api.get(path, headers={"If-None-Match": match})
        assert r.status == 304 and r.etag == etag and r.body == b"", (match, r)
    for miss in ('"x"', '"0"', '"007"', 'W/"%d"' % (int(etag[1:-1]) + 1), '"18446744073709551616"'):
        r = api.get(path, headers={"If-None-Match": miss})
        assert r.status == 200 and r.body == b"v", (miss, r)
    api.get(cell(table, h, "missing"), headers={"If-None-Match": "*"}).problem(404, "CELL_NOT_FOUND")


def test_huge_precondition_headers(api, table):
    """Long lists stay bounded by the connection's memory: answered, and the
    node goes on serving."""
    h = unique("h")
    path = cell(table, h, "s")
    etag = api.put_cell(table, h, "s", b"v").etag
    many = ", ".join('"%d"' % i for i in range(5000)) + ", " + etag
    r = api.get(path, headers={"If-None-Match": many}, validate=False)
    assert r.status in (304, 431, 400, 413), r
    r = api.put(path, b"x", headers={"If-Match": '"' + "9" * 20000 + '"'}, validate=False)
    assert r.status in (400, 414, 431, 413), r
    assert api.get(path).body == b"v"


def test_json_bodies_with_non_object_items_are_400(api, table):
    """Found by the body fuzz target: a non-object item in a row PATCH or
    check-and-mutate got no reply at all."""
    h = unique("h")
    for doc in ({"set": ["keys"]}, {"delete": [1]}, {"set": [None]}, {"delete": [[]]}):
        api.patch(row(table, h), doc).problem(400, "INVALID_ARGUMENT")
        cam = dict(doc, check={"sortkey": "c", "type": "no_check"})
        api.post(row(table, h) + "/check-and-mutate", cam).problem(400, "INVALID_ARGUMENT")
    assert api.get(row(table, h)).ok()["cells"] == []


def test_random_cursor_storm_keeps_serving(api, table):
    """Many random byte strings as cursors, of both kinds: every one is a 400
    or a page within the request; the node keeps serving."""
    h = make_row(api, table, 10)
    rnd = random.Random(int.from_bytes(os.urandom(4), "big"))
    for _ in range(200):
        text = b64url(rnd.randbytes(rnd.randrange(0, 40)))
        r = api.get(row(table, h), query={"start": "k03", "stop": "k07", "cursor": text})
        if r.status == 200:  # astronomically unlikely: a valid check by chance
            assert all(b"k03" <= k < b"k07" for k in keys_of(r.json["cells"]))
        else:
            r.problem(400, "INVALID_CURSOR")
        r = api.get("/v1/tables/%s/scan" % table, query={"cursor": text})
        assert r.status in (200, 400), r
    api.get(row(table, h)).ok()

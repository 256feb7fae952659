"""Corruption: a damaged SST file fails its partition alone.

The test damages the cells SST file (the one whose properties name the
"cellar.rowprefix" prefix extractor: only the cells column family has it)
of one partition, in two ways:

- while the node is stopped, the file's footer: RocksDB refuses to open
  the partition. The node must still start, report that partition as
  failed in /readyz (200, "degraded") and /metrics, answer its keys with
  503 PARTITION_UNAVAILABLE, and serve every other partition and table
  (reads and writes) exactly as before;
- while the node runs, a data block: the damage shows at the first read
  of that block (block checksum), which must answer 503 and fail the
  partition from then on (reads and writes), while the rest serves.

Every value read back from a healthy partition is compared with what was
written, and every /readyz and error response is validated against
openapi.yaml (tests/api/oas.py).
"""
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
from cellar import Node, cell_path, metric, partition_of, run_tests  # noqa: E402
from oas import Spec  # noqa: E402

SPEC = Spec(os.path.join(os.path.dirname(__file__), "..", "..", "openapi.yaml"))

ROWS = 300


def value_of(table, i):
    # ~300 bytes: several data blocks per SST file
    return (("%s-%d-" % (table, i)) * 40).encode()[:300]


def fill(node, table, count):
    conn = node.conn()
    for i in range(ROWS):
        status = node.request("PUT", cell_path(table, "h%d" % i, "s"), body=value_of(table, i),
                              conn=conn)[0]
        assert status == 201, status
    status, _, body = node.json("POST", "/v1/tables/%s/compact" % table)
    assert status == 202, (status, body)


def table_id(node, table):
    status, _, doc = node.json("GET", "/v1/tables/%s" % table)
    assert status == 200, status
    return doc["id"]


def cells_sst(node, tid, part):
    """The cells column family's SST file of a partition."""
    files = glob.glob(os.path.join(node.dir, "data", "replicas", "%d.%d" % (tid, part), "*.sst"))
    cells = [f for f in files if b"cellar.rowprefix" in open(f, "rb").read()]
    assert len(cells) == 1, (files, cells)
    return cells[0]


def flip(path, offset, n=16):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(n)
        f.seek(offset)
        f.write(bytes(x ^ 0xFF for x in b))
        f.flush()
        os.fsync(f.fileno())


def readyz(node):
    status, hdrs, data = node.request("GET", "/readyz")
    SPEC.validate("GET", "/readyz", status, hdrs, data)
    return status, json.loads(data)


def check_unavailable(node, method, path, body=None):
    status, hdrs, data = node.request(method, path, body=body)
    SPEC.validate(method, path, status, hdrs, data)
    assert status == 503, (method, path, status, data)
    if method != "HEAD":
        assert b'"PARTITION_UNAVAILABLE"' in data, data
        assert hdrs.get("content-type") == "application/problem+json", hdrs
    assert hdrs.get("retry-after"), hdrs


def check_table(node, table, count, bad_part, rewrite):
    """Every row of table: its value (healthy partitions) or 503 (bad_part);
    with rewrite, a new value is written and read back (healthy) or refused
    with 503 (bad_part). Returns (rows served, rows refused)."""
    served = refused = 0
    conn = node.conn()
    for i in range(ROWS):
        path = cell_path(table, "h%d" % i, "s")
        if partition_of("h%d" % i, count) == bad_part:
            check_unavailable(node, "GET", path)
            if rewrite:
                check_unavailable(node, "PUT", path, body=b"new")
            refused += 1
            continue
        status, _, data = node.request("GET", path, conn=conn)
        assert status == 200 and data == value_of(table, i), (table, i, status, data[:40])
        if rewrite:
            status = node.request("PUT", path, body=b"new-%d" % i, conn=conn)[0]
            assert status == 204, status
            status, _, data = node.request("GET", path, conn=conn)
            assert status == 200 and data == b"new-%d" % i, (status, data)
        served += 1
    return served, refused


def test_damaged_sst_footer_fails_its_partition_at_start():
    node = Node()
    try:
        node.start()
        assert node.json("PUT", "/v1/tables/a", {"partition_count": 4})[0] == 201
        assert node.json("PUT", "/v1/tables/b", {"partition_count": 2})[0] == 201
        fill(node, "a", 4)
        fill(node, "b", 2)
        tid = table_id(node, "a")
        assert node.stop() == 0

        sst = cells_sst(node, tid, 1)
        flip(sst, os.path.getsize(sst) - 24)  # the footer: the file cannot be opened
        node.start()  # must start and be ready despite the damage

        status, doc = readyz(node)
        assert status == 200, status
        assert doc["status"] == "degraded", doc
        assert [(p["table"], p["partition"], p["state"]) for p in doc["partitions"]] == \
            [("a", 1, "failed")], doc
        assert "cannot open" in doc["partitions"][0]["reason"], doc
        assert "1 of 6 partitions failed" in doc["detail"], doc
        assert metric(node, "cellar_partition_state", 'table="a",partition="1"') == 2
        for t, p in (("a", 0), ("a", 2), ("a", 3), ("b", 0), ("b", 1)):
            assert metric(node, "cellar_partition_state", 'table="%s",partition="%d"' % (t, p)) == 0
        assert metric(node, "cellar_partitions_by_state", 'state="failed"') == 1
        assert metric(node, "cellar_partitions_by_state", 'state="ok"') == 5
        log = node.log_text()
        assert "cannot open partition 1" in log and "Corruption" in log, log

        served, refused = check_table(node, "a", 4, 1, rewrite=True)
        served_b, _ = check_table(node, "b", 2, None, rewrite=True)
        assert refused > 0 and served > 0, (served, refused)
        check_unavailable(node, "HEAD", cell_path("a", next(
            "h%d" % i for i in range(ROWS) if partition_of("h%d" % i, 4) == 1), "s"))
        # a scan of the failed partition is refused; of another, served
        check_unavailable(node, "GET", "/v1/tables/a/scan?partition=1")
        status, _, doc = node.json("GET", "/v1/tables/a/scan?partition=0&limit=1000")
        assert status == 200 and doc["items"], status
        # the table itself is still described, compaction skips the failure
        assert node.json("GET", "/v1/tables/a")[0] == 200
        assert node.json("POST", "/v1/tables/a/compact")[0] == 202
        print("    footer damaged: %d rows served (and rewritten), %d refused with 503, "
              "table b: %d rows served" % (served, refused, served_b))
        assert node.stop() == 0
    finally:
        node.cleanup()


def test_damaged_data_block_fails_its_partition_at_first_read():
    node = Node()
    try:
        node.start()
        assert node.json("PUT", "/v1/tables/c", {"partition_count": 4})[0] == 201
        fill(node, "c", 4)
        tid = table_id(node, "c")
        assert node.stop() == 0
        node.start()  # a cold block cache: no data block has been read

        sst = cells_sst(node, tid, 2)
        flip(sst, 64)  # inside the first data block, while the node runs
        status, doc = readyz(node)
        assert status == 200 and doc["status"] == "ready", doc  # not noticed yet

        conn = node.conn()
        before = after = 0
        for i in range(ROWS):
            if partition_of("h%d" % i, 4) != 2:
                continue
            status, _, data = node.request("GET", cell_path("c", "h%d" % i, "s"), conn=conn)
            if after == 0 and status == 200:
                assert data == value_of("c", i), (i, data[:40])
                before += 1
                continue
            assert status == 503 and b'"PARTITION_UNAVAILABLE"' in data, (i, status, data)
            after += 1
        assert after > 0, "no read noticed the damaged block"
        first = next(i for i in range(ROWS) if partition_of("h%d" % i, 4) == 2)
        check_unavailable(node, "PUT", cell_path("c", "h%d" % first, "s"), body=b"x")

        status, doc = readyz(node)
        assert status == 200 and doc["status"] == "degraded", doc
        assert [(p["table"], p["partition"], p["state"]) for p in doc["partitions"]] == \
            [("c", 2, "failed")], doc
        assert "Corruption" in doc["partitions"][0]["reason"], doc
        assert metric(node, "cellar_partition_state", 'table="c",partition="2"') == 2
        served, refused = check_table(node, "c", 4, 2, rewrite=True)
        print("    data block damaged while running: %d reads served before the damaged "
              "block, %d refused after; other partitions: %d rows served and rewritten"
              % (before, after, served))
        assert "partition" in node.log_text() and "failed" in node.log_text()
        assert node.stop() == 0
    finally:
        node.cleanup()


if __name__ == "__main__":
    run_tests(globals())

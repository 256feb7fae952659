"""Learning from a checkpoint: a data node stopped while its partitions'
primaries write more than their logs keep (log_retain_decrees, small
here) comes back as a learner the log cannot catch up. Its primary has it
copy a RocksDB checkpoint of the partition over HTTP (POST
/internal/v1/learn, then /internal/v1/checkpoints), then sends it the log
from there; it becomes a secondary again. The proof that the copy holds
every acknowledged write: the two other data nodes are then killed one
after the other, so that it serves every partition alone, and every row
is read back from it.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, run_module, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from cellar import metric  # noqa: E402

TABLE = "copied"
PARTITIONS = 2
# The writer trims its log 1024 decrees at a time, beyond what it keeps.
RETAIN = 20
ROWS = 3000
cluster = None
SECRET = None


def setup():
    global cluster, SECRET
    cluster = Cluster(4, meta_only=True, config={
        "log_retain_decrees": RETAIN, "prepare_timeout_ms": 500,
        "forward_wait_ms": 3000}).start()
    with open(cluster.secret) as f:
        SECRET = f.read().strip()


def internal(n, method, path, doc=None):
    body = json.dumps(doc).encode() if doc is not None else None
    headers = {"Authorization": "Bearer " + SECRET}
    if body is not None:
        headers["Content-Type"] = "application/json"
    status, _, raw = n.request(method, path, body=body, headers=headers)
    return status, raw


def partitions():
    return cluster.nodes[0].json("GET", "/v1/tables/" + TABLE)[2]["partitions"]


def whole():
    cl = cluster.nodes[0].json("GET", "/v1/cluster")[2]
    return cl["under_replicated_count"] == 0 and not cl["moves"]


def without(dead):
    def done():
        return all(p["primary"] and p["primary"] != dead.address and
                   dead.address not in p["secondaries"] for p in partitions())
    wait_for(done, 30, "the partitions to leave %s out" % dead.address)


def write_rows(via, first, count, tag):
    for start in range(first, first + count, 500):
        rows = [{"hashkey": "r%05d" % i, "sortkey": "s", "value": "%s-%d" % (tag, i)}
                for i in range(start, min(start + 500, first + count))]
        status, _, body = via.json("POST", "/v1/tables/%s/batch-write" % TABLE, {"set": rows})
        assert status == 200, (status, body)
        assert all(r["status"] == 200 for r in body["results"]), body


def test_internal_checkpoint_calls_refuse_what_is_not_there():
    a = cluster.nodes[1]
    status, _, t = a.json("PUT", "/v1/tables/" + TABLE,
                          {"partition_count": PARTITIONS, "replica_count": 3})
    assert status == 201, t
    # Without the cluster secret: refused whatever the path.
    status, _, _ = a.request("POST", "/internal/v1/learn", body=b"{}",
                             headers={"Content-Type": "application/json"})
    assert status in (401, 403), status
    status, raw = internal(a, "POST", "/internal/v1/learn",
                           {"table_id": t["id"], "partition": 0, "primary": a.address})
    assert status == 404 and json.loads(raw)["code"] == "NOT_HOSTED", raw  # not a learner
    status, raw = internal(a, "POST", "/internal/v1/learn", {"table_id": t["id"]})
    assert status == 400, raw
    status, raw = internal(a, "POST", "/internal/v1/checkpoints",
                           {"table_id": 999999, "partition": 0})
    assert status == 404 and json.loads(raw)["code"] == "NOT_HOSTED", raw
    for path in ("/internal/v1/checkpoints/1.0.5/CURRENT", "/internal/v1/checkpoints/x/CURRENT",
                 "/internal/v1/checkpoints/1.0.5/..%2Fnode"):
        status, raw = internal(a, "GET", path)
        assert status == 404, (path, status, raw)


def test_a_checkpoint_is_made_and_served_file_by_file():
    a = cluster.nodes[1]
    t = a.json("GET", "/v1/tables/" + TABLE)[2]
    write_rows(a, 0, 10, "seed")
    status, raw = internal(a, "POST", "/internal/v1/checkpoints",
                           {"table_id": t["id"], "partition": 0})
    assert status == 201, raw
    cp = json.loads(raw)
    names = {f["name"]: f["size"] for f in cp["files"]}
    assert "CURRENT" in names and any(n.startswith("MANIFEST") for n in names), names
    for name, size in names.items():
        status, raw = internal(a, "GET", "/internal/v1/checkpoints/%s/%s" % (cp["name"], name))
        assert status == 200 and len(raw) == size, (name, status, len(raw), size)
    status, _ = internal(a, "DELETE", "/internal/v1/checkpoints/" + cp["name"])
    assert status == 204
    status, _ = internal(a, "GET", "/internal/v1/checkpoints/%s/CURRENT" % cp["name"])
    assert status == 404


def test_a_learner_behind_the_log_copies_a_checkpoint_then_stands_alone():
    a, b, c = cluster.nodes[1:]
    write_rows(a, 0, 100, "before")
    b.kill9()
    without(b)
    write_rows(a, 100, ROWS, "while-down")
    write_rows(a, 0, 50, "again")
    t0 = time.monotonic()
    b.start()
    wait_for(whole, 60, "the restarted node to copy, learn and rejoin every partition")
    took = time.monotonic() - t0
    copies = metric(b, "cellar_replication_checkpoint_copies_total")
    copied = metric(b, "cellar_replication_checkpoint_bytes_total")
    print("    %d partitions copied from checkpoints (%d bytes) and rejoined in %.1f s"
          % (copies, copied, took))
    assert copies == PARTITIONS, copies
    assert copied > 0
    for p in partitions():
        assert b.address in [p["primary"]] + p["secondaries"], p
    # Written after it rejoined: the log carries on from the copy.
    write_rows(c, ROWS + 100, 20, "after")
    a.kill9()
    without(a)
    c.kill9()
    without(c)
    for p in partitions():
        assert p["primary"] == b.address and p["secondaries"] == [], p
    keys = [{"hashkey": "r%05d" % i, "sortkey": "s"} for i in range(ROWS + 120)]
    got = {}
    for start in range(0, len(keys), 500):
        status, _, body = b.json("POST", "/v1/tables/%s/batch-get" % TABLE,
                                 {"keys": keys[start:start + 500]})
        assert status == 200, (status, body)
        for r in body["results"]:
            got[r["hashkey"]] = r.get("value")
    for i in range(ROWS + 120):
        want = ("again-%d" % i if i < 50 else "before-%d" % i if i < 100 else
                "while-down-%d" % i if i < ROWS + 100 else "after-%d" % i)
        assert got.get("r%05d" % i) == want, (i, got.get("r%05d" % i), want)
    a.start()
    c.start()
    cluster.wait_formed()


if __name__ == "__main__":
    run_module(globals())

"""Relays that a failover leaves behind: a node relays a client's request
to the partition's primary, and that primary is cut off by packet filters
before it answers. forward_wait_ms is long here (60 s), so a relay that
waited for its own timeout would keep the client far longer than the
failover takes. Once the relaying node's map names the new primary, the
relay ends: a read is sent to the new primary and answered there; a write
that surely did not leave is sent there too, and one that may have left is
504 OUTCOME_UNKNOWN (it may have been taken by the old primary). Each
client here waits at most half of forward_wait_ms.
"""
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, run_module  # noqa: E402
from cellar import partition_of  # noqa: E402

PARTITIONS = 4
FORWARD_WAIT_S = 60
cluster = None


def setup():
    global cluster
    cluster = Cluster(3, config={"forward_wait_ms": FORWARD_WAIT_S * 1000}).start()


def cell(table, h):
    return "/v1/tables/%s/rows/%s/cells/v" % (table, urllib.parse.quote(h, safe=""))


def test_relays_to_a_cut_off_primary_end_with_the_failover():
    table = "stale"
    via = cluster.nodes[0]  # the meta node: its map changes first
    status, _, body = via.json("PUT", "/v1/tables/" + table,
                               {"partition_count": PARTITIONS, "replica_count": 3})
    assert status == 201, body
    parts = via.json("GET", "/v1/tables/" + table)[2]["partitions"]
    victim = next(n for n in cluster.nodes[1:] if any(p["primary"] == n.address for p in parts))
    on_victim = [p["index"] for p in parts if p["primary"] == victim.address]
    keys = [h for h in ("k%d" % i for i in range(1000))
            if partition_of(h.encode(), PARTITIONS) in on_victim][:6]
    assert len(keys) == 6, keys
    for h in keys:
        assert via.json("PUT", cell(table, h), {"v": "before"})[0] in (201, 204)
        # Read through the meta node: relayed, on a connection it keeps.
        status, _, body = via.json("GET", cell(table, h))
        assert status == 200 and body["v"] == "before", (status, body)

    results = {}

    def client(name, method, h, doc):
        c = via.conn(timeout=FORWARD_WAIT_S / 2)
        t0 = time.monotonic()
        try:
            results[name] = via.json(method, cell(table, h), doc, conn=c)[::2] + (
                time.monotonic() - t0,)
        except OSError as e:
            results[name] = (None, repr(e), time.monotonic() - t0)
        finally:
            c.close()

    rules = cluster.cut_off(victim)
    try:
        # The writes first: one of them likely takes the kept connection,
        # and so leaves (504), where a new connection's never does.
        threads = [threading.Thread(target=client,
                                    args=("write%d" % i, "PUT", keys[3 + i], {"v": "after"}))
                   for i in range(3)]
        threads += [threading.Thread(target=client, args=("read%d" % i, "GET", keys[i], None))
                    for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(FORWARD_WAIT_S)
        for name, (status, body, took) in sorted(results.items()):
            print("    %s: %s after %.1f s" % (name, status, took))
        assert len(results) == 6, results
        for name, (status, body, took) in results.items():
            if name.startswith("read"):
                assert status == 200 and body["v"] == "before", (name, status, body, took)
            else:
                assert status in (201, 204, 504), (name, status, body, took)
                if status == 504:
                    assert body["code"] == "OUTCOME_UNKNOWN", body
    finally:
        cluster.heal(rules)
    cluster.wait_formed()


if __name__ == "__main__":
    run_module(globals())

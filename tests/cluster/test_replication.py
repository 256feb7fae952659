"""Replicated writes (the first step of PacificA): a table with
replica_count 3 on three nodes has, per partition, a primary and two
secondaries on distinct nodes; every write is logged by every secondary
before its primary commits and answers (so a secondary's logged decree is
never behind its primary's committed one once a write is acknowledged), and
secondaries apply what their primary has committed. The configuration is
static in this step: a secondary that cannot log a group fails it (503,
nothing applied anywhere) until it is back; failover and the removal of a
failed secondary come next.
"""
import json
import os
import random
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from cellar import run_tests  # noqa: E402

cluster = None
SECRET = None


def setup():
    global cluster, SECRET
    cluster = Cluster(3, config={"prepare_timeout_ms": 500, "forward_wait_ms": 3000}).start()
    with open(cluster.secret) as f:
        SECRET = f.read().strip()


def node(i):
    return cluster.nodes[i - 1]


def replicas(n, table_id):
    """{partition: replica} as node n reports them."""
    status, _, body = n.request("GET", "/internal/v1/replicas",
                                headers={"Authorization": "Bearer " + SECRET})
    assert status == 200, (status, body)
    return {r["partition"]: r for r in json.loads(body)["replicas"] if r["table_id"] == table_id}


def cell(table, h, s="s"):
    return "/v1/tables/%s/rows/%s/cells/%s" % (table, urllib.parse.quote(h, safe=""), s)


def test_three_replicas_on_distinct_nodes_and_every_write_logged_by_all():
    status, _, t = node(2).json("PUT", "/v1/tables/r3", {"partition_count": 4, "replica_count": 3})
    assert status == 201, t
    t = node(3).json("GET", "/v1/tables/r3")[2]
    for p in t["partitions"]:
        group = [p["primary"]] + p["secondaries"]
        assert len(group) == 3 and len(set(group)) == 3, p
    cl = node(1).json("GET", "/v1/cluster")[2]
    assert cl["under_replicated_count"] == 0
    assert sorted(n["secondaries"] for n in cl["nodes"]) == [2, 3, 3], cl["nodes"]
    rnd = random.Random(7)
    for i in range(60):
        via = rnd.choice(cluster.nodes)
        assert via.request("PUT", cell("r3", "k%d" % i), b"v%d" % i)[0] == 201
        # Acknowledged: logged by every replica of its partition.
        views = [replicas(n, t["id"]) for n in cluster.nodes]
        for p in range(4):
            primary = [v[p] for v in views if v[p]["role"] == "primary"]
            assert len(primary) == 1
            for v in views:
                assert v[p]["logged"] >= primary[0]["decree"], (p, views)
    # Secondaries apply what their primary committed: one more write per
    # partition carries the committed decree.
    for i in range(60, 90):
        assert node(1).request("PUT", cell("r3", "k%d" % i), b"v")[0] == 201
    views = [replicas(n, t["id"]) for n in cluster.nodes]
    for p in range(4):
        primary = next(v[p] for v in views if v[p]["role"] == "primary")
        for v in views:
            assert v[p]["decree"] >= primary["decree"] - 1 or v[p]["role"] == "primary", views
    for i in range(90):
        assert node(rnd.randint(1, 3)).request("GET", cell("r3", "k%d" % i))[0] == 200


def test_a_secondary_down_fails_writes_and_applies_none():
    victim = node(3)
    victim.kill9()
    try:
        status, hdrs, body = node(1).json("PUT", cell("r3", "down-1"), {"v": 1})
        assert status in (503, 504), (status, body)
        assert hdrs.get("retry-after"), hdrs
        # A primary on node 1 or 2 answers reads; nothing of the failed
        # write was applied.
        t = node(1).json("GET", "/v1/tables/r3")[2]
        from cellar import partition_of
        p = partition_of(b"down-1", 4)
        if t["partitions"][p]["primary"] != victim.address:
            assert node(2).request("GET", cell("r3", "down-1"))[0] == 404
    finally:
        victim.start()
    cluster.wait_formed()
    wait_for(lambda: node(1).request("PUT", cell("r3", "down-2"), b"x")[0] == 201, 20,
             "writes to resume with every secondary back")
    assert node(3).request("GET", cell("r3", "down-2"))[2] == b"x"
    t = node(1).json("GET", "/v1/tables/r3")[2]
    views = [replicas(n, t["id"]) for n in cluster.nodes]
    for p in range(4):
        primary = next(v[p] for v in views if v[p]["role"] == "primary")
        assert all(v[p]["logged"] >= primary["decree"] for v in views), views


def teardown():
    try:
        cluster.stop()
    finally:
        cluster.cleanup()


if __name__ == "__main__":
    setup()
    try:
        run_tests({k: v for k, v in globals().items() if k.startswith("test_")})
    finally:
        teardown()

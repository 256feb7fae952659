"""Replicated writes (the first step of PacificA): a table with
replica_count 3 on three nodes has, per partition, a primary and two
secondaries on distinct nodes; every write is logged by every secondary
before its primary commits and answers (so a secondary's logged decree is
never behind its primary's committed one once a write is acknowledged), and
secondaries apply what their primary has committed. A secondary that
cannot log a group is dropped from the partition's configuration by meta
at its primary's request (a new ballot), and the group commits with the
secondaries left; failover of a primary comes next.
"""
import json
import os
import random
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, run_module, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from cellar import metric  # noqa: E402

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
    # Without replica_count a table has default_replica_count's automatic
    # value: three, the data nodes being three.
    status, _, t = node(2).json("PUT", "/v1/tables/r3", {"partition_count": 4})
    assert status == 201 and t["replica_count"] == 3, t
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
    # /metrics: replicas by role (4 partitions x 3 replicas over 3 nodes),
    # the groups primaries sent, per-partition ballots and logged decrees.
    by_role = [(metric(n, "cellar_replicas", 'role="primary"'),
                metric(n, "cellar_replicas", 'role="secondary"')) for n in cluster.nodes]
    assert sum(p for p, _ in by_role) == 4 and sum(s for _, s in by_role) == 8, by_role
    assert sum(metric(n, "cellar_replication_groups_total") for n in cluster.nodes) >= 90
    assert sum(metric(n, "cellar_replication_failed_groups_total") for n in cluster.nodes) == 0
    # Each node primary of a partition sent prepares to the two others,
    # every one answered, each round trip timed.
    for (primaries, _), n in zip(by_role, cluster.nodes):
        for m in cluster.nodes:
            if m is n or not primaries:
                continue
            peer = 'peer="%s"' % m.address
            sent = metric(n, "cellar_replication_prepare_requests_total", peer)
            took = metric(n, "cellar_replication_prepare_seconds_sum", peer)
            assert sent >= 1 and metric(n, "cellar_replication_prepare_seconds_count", peer) == sent
            assert 0 < took < sent * 0.5, (n.address, m.address, sent, took)
            assert metric(n, "cellar_replication_prepare_errors_total", peer) == 0
    for n in cluster.nodes:
        for p in range(4):
            labels = 'table="r3",partition="%d"' % p
            assert metric(n, "cellar_partition_ballot", labels) == t["partitions"][p]["ballot"]
            # Only the primary serves reads (it holds its lease: writes
            # just went through).
            assert metric(n, "cellar_partition_serving", labels) == \
                (t["partitions"][p]["primary"] == n.address)
            assert metric(n, "cellar_partition_logged_decree", labels) >= \
                metric(n, "cellar_partition_committed_decree", labels)


def test_a_batch_right_after_create_waits_for_the_new_primaries():
    """A new table's primaries serve once they have heard from their
    secondaries (their lease); a batch-write sent the moment the table
    exists is held until they do, not refused."""
    for k in range(3):
        name = "fresh%d" % k
        status, _, t = node(1).json("PUT", "/v1/tables/" + name, {"partition_count": 8})
        assert status == 201, t
        rows = [{"hashkey": "b%d" % i, "sortkey": "s", "value": "v%d" % i} for i in range(40)]
        status, _, body = node(2).json("POST", "/v1/tables/%s/batch-write" % name, {"set": rows})
        assert status == 200, (status, body)
        assert all(r["status"] == 200 for r in body["results"]), body


def test_a_secondary_down_is_dropped_and_writes_go_on():
    """Node 3 killed: a primary on node 1 or 2 whose group node 3 does not
    log asks meta to drop it (a new ballot, compare-and-set on the old) and
    commits the group with the secondaries left: the client's write
    succeeds. Partitions whose primary was node 3 refuse writes (no
    failover in this step). Every acknowledged write is readable."""
    from cellar import partition_of
    victim = node(3)
    t = node(1).json("GET", "/v1/tables/r3")[2]
    before = {p["index"]: p for p in t["partitions"]}
    keys = [h for h in ("d-%d" % i for i in range(200))
            if before[partition_of(h.encode(), 4)]["primary"] != victim.address][:20]
    victim.kill9()
    try:
        for h in keys:
            status, _, body = node(1).json("PUT", cell("r3", h), {"v": h})
            assert status == 201, (h, status, body)
        moved = {partition_of(h.encode(), 4) for h in keys}

        def dropped():
            parts = node(2).json("GET", "/v1/tables/r3")[2]["partitions"]
            return all(victim.address not in parts[p]["secondaries"] and
                       parts[p]["ballot"] == before[p]["ballot"] + 1 for p in moved)
        wait_for(dropped, 10, "node 3 dropped from the partitions written")
        cl = node(1).json("GET", "/v1/cluster")[2]
        assert cl["under_replicated_count"] >= len(moved), cl
        # Heartbeats find it gone too, in partitions nobody wrote to.
        dropped_total = sum(metric(n, "cellar_replication_secondaries_dropped_total")
                            for n in cluster.nodes[:2])
        assert dropped_total >= len(moved), (dropped_total, moved)
        for h in keys:
            status, _, body = node(2).json("GET", cell("r3", h))
            assert status == 200 and body == {"v": h}, (h, status, body)
    finally:
        victim.start()
    cluster.wait_formed()
    for h in keys:
        assert node(3).json("GET", cell("r3", h))[2] == {"v": h}


def test_meta_grants_a_change_only_for_the_current_ballot():
    t = node(1).json("GET", "/v1/tables/r3")[2]
    p = next(p for p in t["partitions"] if p["secondaries"])
    auth = {"Authorization": "Bearer " + SECRET, "Content-Type": "application/json"}

    def propose(n, **kw):
        req = {"table_id": t["id"], "partition": p["index"], "ballot": p["ballot"],
               "change": "remove_secondary", "node": p["secondaries"][0], "by": p["primary"]}
        req.update(kw)
        status, _, body = n.request("POST", "/internal/v1/propose", json.dumps(req).encode(), auth)
        return status, json.loads(body)
    status, body = propose(node(1), ballot=p["ballot"] - 1)
    assert status == 409 and body["code"] == "STALE_CONFIG", (status, body)
    # Not a secondary; not asked by the primary; a promotion asked by a
    # node that is neither the secondary nor the primary (a handover); a
    # handover to a node that is not a secondary: none applies.
    assert propose(node(1), node="127.0.0.9:7000")[0] == 409
    assert propose(node(1), by=p["secondaries"][0])[0] == 409
    assert propose(node(1), change="promote", by="127.0.0.9:7000")[0] == 409
    assert propose(node(1), change="promote", node="127.0.0.9:7000", by=p["primary"])[0] == 409
    assert propose(node(1), change="add_secondary", node="127.0.0.9:7000",
                   by=p["primary"])[0] == 409
    assert propose(node(1), change="resign")[0] == 400
    status, _, body = node(1).request("POST", "/internal/v1/propose", b'{"table_id": 1}', auth)
    assert status == 400, (status, body)
    status, body = propose(node(2))
    assert status == 503 and body["code"] == "META_UNAVAILABLE", (status, body)
    assert node(1).json("GET", "/v1/tables/r3")[2]["partitions"][p["index"]] == p


if __name__ == "__main__":
    run_module(globals())

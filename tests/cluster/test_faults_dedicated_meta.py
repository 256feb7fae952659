"""Fault scenarios on a cluster of a meta-only node and three data nodes,
tables with three replicas, the workload and checks of workload.py
running through the data nodes:

- the meta node killed (kill -9) for 20 seconds: heartbeats and leases run
  between replicas, so no read or write needs meta: every data operation
  in that time must succeed. Table changes meanwhile are 503
  META_UNAVAILABLE. Then meta comes back on its data directory.
- a data node killed while writes go on, and restarted: it learns what it
  missed from the primaries' logs and is a secondary again everywhere;
  then the two other data nodes are killed one after the other, each time
  after the partitions failed over, so that the restarted node ends up the
  only replica of every partition, and the history (final reads included)
  shows nothing acknowledged lost.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import workload  # noqa: E402
from harness import Cluster, run_module, wait_for  # noqa: E402
from linearizability import OK  # noqa: E402
from workload import run_scenario  # noqa: E402

OUTAGE_S = 20.0
cluster = None


def setup():
    global cluster
    cluster = Cluster(4, config={"forward_wait_ms": 2000}, meta_only=True).start()
    workload.use(cluster)


def test_meta_killed_for_20_seconds_stops_no_data_operation():
    meta = cluster.nodes[0]
    data = cluster.nodes[1:]
    refused = {}

    def fault():
        meta.kill9()
        status, _, body = data[0].json("PUT", "/v1/tables/meanwhile", {})
        refused["create"] = (status, body.get("code") if isinstance(body, dict) else body)
        return meta

    def heal(victim):
        victim.start()
    history, t_fault, t_heal = run_scenario("meta down for %d s" % OUTAGE_S, "meta-down", fault,
                                            heal, lasts=OUTAGE_S, via=data)
    assert refused["create"] == (503, "META_UNAVAILABLE"), refused
    during = [op for op in history
              if op.process != "final" and op.invoke >= t_fault and op.complete is not None and
              op.complete <= t_heal]
    failed = [op for op in during if op.outcome != OK]
    print("    %d operations while meta was down, %d not ok" % (len(during), len(failed)))
    assert len(during) > 100, len(during)
    assert not failed, failed[:5]
    cluster.wait_formed()
    status, _, body = data[1].json("PUT", "/v1/tables/after", {"replica_count": 3})
    assert status == 201, body


def partitions(table):
    return cluster.nodes[0].json("GET", "/v1/tables/" + table)[2]["partitions"]


def test_a_node_learns_then_is_the_last_replica_standing():
    a, b, c = cluster.nodes[1:]

    def whole():
        cl = cluster.nodes[0].json("GET", "/v1/cluster")[2]
        return cl["under_replicated_count"] == 0 and not cl["moves"]

    def without(dead, table):
        """Every partition's configuration leaves dead out, and a write to
        each partition goes through."""
        def done():
            return all(p["primary"] and p["primary"] != dead.address and
                       dead.address not in p["secondaries"] for p in partitions(table))
        wait_for(done, 30, "the partitions to fail over from %s" % dead.address)

    def fault():
        b.kill9()
        time.sleep(5)  # writes go on without it
        t0 = time.monotonic()
        b.start()
        wait_for(whole, 30, "the restarted node to learn and rejoin every partition")
        learned = time.monotonic() - t0
        for p in partitions("last-standing"):
            assert b.address in [p["primary"]] + p["secondaries"], p
        t0 = time.monotonic()
        a.kill9()
        without(a, "last-standing")
        t1 = time.monotonic()
        c.kill9()
        without(c, "last-standing")
        print("    restarted and caught up in %.1f s; configurations without the second "
              "node killed after %.1f s, without the third after %.1f s"
              % (learned, t1 - t0, time.monotonic() - t1))
        for p in partitions("last-standing"):
            assert p["primary"] == b.address and p["secondaries"] == [], p
        return c

    def heal(victim):
        a.start()
        c.start()
    run_scenario("learn, then the last replica standing", "last-standing", fault, heal,
                 lasts=3.0, via=[a, b, c])
    cluster.wait_formed()


def test_a_node_added_then_one_drained_and_forgotten():
    """Scenario 6: a fourth data node joins while the workload runs:
    replicas, then primaries, move to it (by learning, then a switch)
    until every data node holds about as many; then a node is drained (its
    primaries handed over, its replicas learnt elsewhere), stopped and
    forgotten. Nothing acknowledged is lost."""
    meta = cluster.nodes[0]
    via = list(cluster.nodes[1:])
    seen = {}

    def view():
        return meta.json("GET", "/v1/cluster")[2]

    def fault():
        t0 = time.monotonic()
        new = cluster.add_node()
        wait_for(lambda: cluster.balanced(4), 120, "the replicas and primaries to spread to the new node")
        seen["balanced"] = time.monotonic() - t0
        assert cluster.loads()[0][new.address][1] > 0
        victim = via[0]
        status, _, body = meta.json("POST", "/v1/cluster/nodes/%s/drain" % victim.address)
        assert status == 202 and body["state"] in ("draining", "drained"), (status, body)
        t0 = time.monotonic()
        # A draining node still hears of table changes when they are made
        # (meta pushes the map to it), not a beacon later.
        for name in ("while-draining", "while-draining-2"):
            status, _, body = meta.json("PUT", "/v1/tables/" + name, {"partition_count": 2})
            assert status == 201, body
            status, _, body = victim.json("GET", "/v1/tables/" + name)
            assert status == 200, (status, body)

        def drained():
            return any(n["address"] == victim.address and n["state"] == "drained"
                       for n in view()["nodes"])
        wait_for(drained, 120, "the node to be drained")
        seen["drained"] = time.monotonic() - t0
        for p in partitions("moves"):
            assert victim.address not in [p["primary"]] + p["secondaries"], p
        # Nothing is placed on it any more; then it is stopped and
        # forgotten.
        status, _, body = meta.json("PUT", "/v1/tables/after-drain", {"partition_count": 4})
        assert status == 201, body
        assert all(victim.address not in [p["primary"]] + p["secondaries"]
                   for p in partitions("after-drain"))
        assert victim.json("GET", "/v1/tables/after-drain")[0] == 200
        victim.stop()
        status, _, body = meta.json("DELETE", "/v1/cluster/nodes/%s" % victim.address)
        assert status == 200, (status, body)
        assert victim.address not in [n["address"] for n in view()["nodes"]]
        return victim

    def heal(victim):
        pass
    run_scenario("a node added, another drained", "moves", fault, heal, lasts=1.0,
                 via=via)
    print("    balanced %.1f s after the node joined; drained %.1f s after asked"
          % (seen["balanced"], seen["drained"]))
    cluster.nodes.remove(via[0])


if __name__ == "__main__":
    run_module(globals())

"""The meta server down: a cluster of a meta-only node and three data nodes,
tables with three replicas; the meta node is killed (kill -9) for 20
seconds while clients work through the data nodes. Heartbeats and leases
run between replicas, so no read or write needs meta: every data operation
in that time must succeed, and the history stays linearizable. Table
changes meanwhile are 503 META_UNAVAILABLE. Then meta comes back on its
data directory and the cluster goes on.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import workload  # noqa: E402
from harness import Cluster, run_module  # noqa: E402
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


if __name__ == "__main__":
    run_module(globals())

"""A node that joins gets its share of replicas and primaries. Each move
puts a learner on the new node; the partition's primary probes it at
once, usually before the new node has heard from meta that it is one
(it hears with its next beacon) and so before it hosts the replica. Such a
learner answered, so it is probed again at the next tick of the primary;
only one that cannot be reached waits fd_grace_ms. Here fd_grace_ms is
long (60 s), so a move held up by that wait would show: every move must
be done well within it.

Meta plans as many moves at a time as balance_moves_max allows (here 2),
measuring the loads as they will be once the moves under way are done,
and never more: GET /v1/cluster is watched all along.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, run_module, wait_for  # noqa: E402

PARTITIONS = 16
GRACE_S = 60
MOVES_MAX = 2
cluster = None


def setup():
    global cluster
    cluster = Cluster(3, config={"fd_lease_ms": 20000, "fd_grace_ms": GRACE_S * 1000,
                                 "balance_moves_max": MOVES_MAX}).start()


def test_a_joining_node_gets_its_share_without_waiting_out_the_grace():
    status, _, body = cluster.nodes[0].json("PUT", "/v1/tables/spread",
                                            {"partition_count": PARTITIONS, "replica_count": 2})
    assert status == 201, body
    cluster.write_and_read_everywhere("spread", 32)
    t0 = time.monotonic()
    new = cluster.add_node()
    seen = []  # partitions moving, at each look
    wait_for(lambda: cluster.balanced(4, seen), GRACE_S / 2,
             "the replicas and primaries to spread to the new node sooner than fd_grace_ms")
    print("    balanced %.1f s after the node joined; at most %d moves at a time, in %d looks"
          % (time.monotonic() - t0, max(seen), len(seen)))
    assert max(seen) == MOVES_MAX, seen
    assert cluster.loads()[0][new.address][1] >= PARTITIONS * 2 // 4 - 1
    # What was written before is there, through every node, the new one
    # included.
    for node in cluster.nodes:
        for i in range(32):
            status, _, body = node.request("GET", "/v1/tables/spread/rows/r%d/cells/c" % i)
            assert (status, body) == (200, b"v%d" % i), (node.address, i, status, body)


if __name__ == "__main__":
    run_module(globals())

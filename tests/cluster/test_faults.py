"""Fault tests with recorded histories: clients run reads, writes, deletes,
If-Match compare-and-sets and incrs on a few hot cells through random nodes
of a three-node cluster while a node is killed (kill -9) and restarted,
frozen (SIGSTOP) and woken, or cut off by packet filters and healed; the
history is checked for linearizability per cell, final reads of every cell
from every node included, so that an acknowledged write lost would show.

Tables have three replicas per partition (and one scenario one replica):
a secondary on the failed node is dropped by its primary (through meta),
and a primary on it is replaced by a secondary that heard nothing from it
for fd_grace_ms (failover); with one replica, its partitions wait for the
node to come back. Meanwhile requests for them are 503 (nothing applied)
or 504 (taken, fate unknown). The node killed is never the meta server:
with one meta server, no configuration can change while it is down (its
own scenario covers that). The figures printed per scenario: operations,
acknowledged, unknown, the time until a write to each affected cell was
acknowledged again, and the checker's verdict.
(The workload and its checks: workload.py.)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import workload  # noqa: E402
from harness import Cluster, run_module  # noqa: E402
from workload import run_scenario  # noqa: E402

cluster = None


def setup():
    global cluster
    cluster = Cluster(3, config={"forward_wait_ms": 1000}).start()
    workload.use(cluster)


def most_primaries():
    """The data node with the most primaries, meta's node left out."""
    body = cluster.nodes[0].json("GET", "/v1/cluster")[2]
    nodes = [n for n in body["nodes"] if n["address"] != cluster.meta]
    addr = max(nodes, key=lambda n: n["primaries"])["address"]
    return next(n for n in cluster.nodes if n.address == addr)


def kill_and_restart(name, table, replicas):
    def fault():
        victim = most_primaries()
        victim.kill9()
        return victim

    def heal(victim):
        victim.start()
    # With one replica there is no failover: the cells wait for the node.
    run_scenario(name, table, fault, heal, replicas=replicas, lasts=6.0 if replicas > 1 else 3.0)
    cluster.wait_formed()


def test_kill9_of_the_node_with_most_primaries_then_restart():
    kill_and_restart("kill -9 and restart", "faults-kill", 3)


def test_kill9_and_restart_with_one_replica_per_partition():
    kill_and_restart("kill -9 and restart, one replica", "faults-kill-1", 1)


def test_sigstop_of_a_node_then_sigcont():
    import signal

    def fault():
        victim = cluster.nodes[1]
        victim.proc.send_signal(signal.SIGSTOP)
        return victim

    def heal(victim):
        victim.proc.send_signal(signal.SIGCONT)
    run_scenario("SIGSTOP and SIGCONT", "faults-stop", fault, heal)
    cluster.wait_formed()


def test_a_node_cut_off_from_the_others_then_healed():
    """Packet filters drop everything between node 2 and the other nodes
    (both ways); clients, on an address of their own, still reach every
    node. Requests relayed across the cut get no answer (503, or 504 for a
    write that may have arrived); node 2 serves what it holds to clients
    that come to it."""
    victim = cluster.nodes[1]
    rules = []

    def fault():
        rules.extend(cluster.cut_off(victim))
        return victim

    def heal(v):
        cluster.heal(rules)
    run_scenario("cut off and healed", "faults-cut", fault, heal)
    cluster.wait_formed()


if __name__ == "__main__":
    run_module(globals())

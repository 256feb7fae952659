"""Nodes that name each other by host name, not address: each node's
--listen, --meta and so its advertised address is "nodeN:7000", and each
node resolves those names through a hosts file of its own (the node runs
in a mount namespace of its own, with that file over /etc/hosts; the test
itself and its clients use the addresses). Relays go to the primary by
name (through libcurl's resolver), prepares go to secondaries by name,
and every write is read back from every node.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import PORT, Cluster, ClusterNode, run_module  # noqa: E402

NODES = 3
CELLS = 60
cluster = None


class NamedCluster(Cluster):
    """A Cluster whose nodes are node1..nodeN in each other's eyes."""

    def new_node(self, index):
        hosts = os.path.join(self.dir, "hosts")
        if not os.path.exists(hosts):
            with open(hosts, "w") as f:
                f.write("127.0.0.1 localhost\n")
                for i in range(1, 10):
                    f.write("127.0.0.%d node%d\n" % (i, i))
        n = ClusterNode(index, "node1:%d" % PORT, self.secret, config=self.config,
                        data_dir=os.path.join(self.dir, "n%d" % index))
        n.address = n.listen = "node%d:%d" % (index, PORT)
        n.wrapper = ["unshare", "-m", "sh", "-c",
                     'mount --bind "$1" /etc/hosts && shift && exec "$@"', "sh", hosts]
        return n


def setup():
    global cluster
    cluster = NamedCluster(NODES).start()


def metric(node, name, label):
    """The sum of a counter's samples whose labels contain label."""
    status, _, body = node.request("GET", "/metrics")
    assert status == 200
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if line.split("{")[0].split(" ")[0] == name and label in line)


def test_relays_and_prepares_by_host_name():
    status, _, body = cluster.nodes[0].json("PUT", "/v1/tables/named",
                                            {"partition_count": 4, "replica_count": NODES})
    assert status == 201, body
    status, _, body = cluster.nodes[1].json("GET", "/v1/tables/named")
    assert status == 200, body
    primaries = {p["primary"] for p in body["partitions"]}
    assert primaries <= {n.address for n in cluster.nodes}, primaries
    cluster.write_and_read_everywhere("named", CELLS)
    # Each node relayed to the others by name, and the primaries' groups
    # went to their secondaries by name, none failing.
    groups = sum(metric(n, "cellar_replication_groups_total", "") for n in cluster.nodes)
    failed = sum(metric(n, "cellar_replication_failed_groups_total", "") for n in cluster.nodes)
    assert groups >= 1 and failed == 0, (groups, failed)
    for node in cluster.nodes:
        others = [o.address for o in cluster.nodes if o is not node]
        relayed = sum(metric(node, "cellar_forward_requests_total", 'peer="%s"' % a)
                      for a in others)
        assert relayed > 0, (node.address, relayed)
        status, _, body = node.json("GET", "/v1/cluster")
        assert status == 200
        assert sorted(n["address"] for n in body["nodes"]) == sorted(
            n.address for n in cluster.nodes), body["nodes"]


if __name__ == "__main__":
    run_module(globals())

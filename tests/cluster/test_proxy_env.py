"""Nodes started with proxy variables in their environment (http_proxy,
HTTPS_PROXY, ALL_PROXY, as a shell or a unit file may carry them) still
talk to each other directly: libcurl would otherwise send beacons, map
pushes, relays and prepares, the cluster secret with each of them, to the
proxy. The "proxy" is a listening socket the test never accepts on; a
connection to it stays pending in its backlog, so the test sees it.
"""
import os
import select
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, run_module  # noqa: E402

NODES = 3
CELLS = 60
PROXY = ("127.0.0.99", 3128)
cluster = None
proxy = None


class ProxiedCluster(Cluster):
    """A Cluster whose nodes find a proxy named in their environment."""

    def new_node(self, index):
        n = super().new_node(index)
        url = "http://%s:%d" % PROXY
        n.wrapper = ["env", "http_proxy=" + url, "HTTPS_PROXY=" + url, "ALL_PROXY=" + url,
                     "no_proxy="]
        return n


def setup():
    global cluster, proxy
    proxy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    proxy.bind(PROXY)
    proxy.listen(64)
    cluster = ProxiedCluster(NODES).start()


def proxy_connections():
    """Whether anything connected to the proxy (a pending connection makes
    the listening socket readable)."""
    readable, _, _ = select.select([proxy], [], [], 0)
    return bool(readable)


def test_nodes_ignore_proxy_variables():
    status, _, body = cluster.nodes[0].json("PUT", "/v1/tables/direct",
                                            {"partition_count": 4, "replica_count": NODES})
    assert status == 201, body
    cluster.write_and_read_everywhere("direct", CELLS)
    assert not proxy_connections(), "a node connected to the proxy named in its environment"


if __name__ == "__main__":
    run_module(globals())

"""The cluster harness: several real cellard nodes on 127.0.0.x addresses
of a private network namespace (tests/cluster/run puts every test file in
one, made with `unshare -n`), one of them the meta server, all sharing a
cluster secret. Clients connect from an address of their own (127.0.0.100),
so that packet filters between node addresses cut nodes apart without
cutting the client off.

Every wait polls a condition against a deadline; every node started is
stopped (or killed) by its process, at the end of the test that started it.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from cellar import Node, run_tests, wait_for  # noqa: E402,F401

PORT = 7000
CLIENT_ADDRESS = "127.0.0.100"


class ClusterNode(Node):
    """One node of a cluster: listens on 127.0.0.<index>:PORT."""

    def __init__(self, index, meta, secret_file, config=None, data_dir=None):
        super().__init__(data_dir=data_dir, config=config)
        self.index = index
        self.host = "127.0.0.%d" % index
        self.address = "%s:%d" % (self.host, PORT)
        self.listen = self.address
        self.port = PORT
        self.source_address = (CLIENT_ADDRESS, 0)
        self.args = ["--meta", meta, "--cluster-secret-file", secret_file]


class Cluster:
    """n nodes; node 1 is the meta server (and a data node, unless
    meta_only)."""

    def __init__(self, n, config=None, tmp=None, meta_only=False):
        import tempfile
        self.dir = tmp or tempfile.mkdtemp(prefix="cellar-cluster-")
        self.secret = os.path.join(self.dir, "secret")
        with open(self.secret, "w") as f:
            f.write("cluster-secret-%s\n" % os.urandom(16).hex())
        self.meta = "127.0.0.1:%d" % PORT
        self.config = dict(config or {})
        self.meta_only = meta_only
        self.nodes = [self.new_node(i + 1) for i in range(n)]

    def new_node(self, index):
        config = dict(self.config)
        if index == 1 and self.meta_only:
            config["roles"] = "meta"
        return ClusterNode(index, self.meta, self.secret, config=config,
                           data_dir=os.path.join(self.dir, "n%d" % index))

    def start(self):
        for n in self.nodes:
            n.start()
        self.wait_formed()
        return self

    def add_node(self):
        """A new data node, started: it joins with its first beacon."""
        n = self.new_node(len(self.nodes) + 1)
        self.nodes.append(n)
        n.start()
        return n

    def wait_formed(self, timeout=30):
        """Every node alive in every node's view of the cluster."""
        want = {n.address for n in self.nodes if n.proc and n.proc.poll() is None}

        def formed():
            for n in self.nodes:
                if not n.proc or n.proc.poll() is not None:
                    continue
                status, _, body = n.json("GET", "/v1/cluster")
                if status != 200:
                    return False
                alive = {x["address"] for x in body["nodes"] if x["state"] == "alive"}
                if not want <= alive:
                    return False
            return True
        wait_for(formed, timeout, "the cluster to form")

    def stop(self):
        """Stops every node still running; a node that died on its own
        (a crash: not SIGKILL, which tests send) fails the stop, with its
        log."""
        dead = [n for n in self.nodes if n.proc and n.proc.poll() not in (None, 0, -9)]
        for n in self.nodes:
            if n.proc and n.proc.poll() is None:
                assert n.stop() == 0, n.log_text()
        assert not dead, "\n".join("node %s exited with %s:\n%s" % (n.address, n.proc.returncode, n.log_text())
                                    for n in dead)

    def cleanup(self):
        import shutil
        for n in self.nodes:
            n.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_and_read_everywhere(self, table, cells):
        """Writes cells r0..r<cells-1> ("c" each), each through the next
        node in turn, then reads every one back from every node."""
        for i in range(cells):
            node = self.nodes[i % len(self.nodes)]
            status, _, body = node.request("PUT", "/v1/tables/%s/rows/r%d/cells/c" % (table, i),
                                           body=b"v%d" % i)
            assert status == 201, (node.address, status, body)
        for node in self.nodes:
            for i in range(cells):
                status, _, body = node.request("GET", "/v1/tables/%s/rows/r%d/cells/c" % (table, i))
                assert (status, body) == (200, b"v%d" % i), (node.address, i, status, body)

    def loads(self):
        """Meta's view (node 1's): {address: (primaries, replicas)} of every
        alive data node, and the whole of GET /v1/cluster."""
        cl = self.nodes[0].json("GET", "/v1/cluster")[2]
        return {n["address"]: (n["primaries"], n["primaries"] + n["secondaries"])
                for n in cl["nodes"] if "data" in n["roles"] and n["state"] == "alive"}, cl

    def balanced(self, data_nodes, moving=None):
        """No move under way, no partition short of replicas, and the
        data_nodes alive data nodes within one of each other in primaries
        and in replicas. moving: a list the number of partitions moving is
        appended to (a move shows one entry per step: learn, leave,
        handover)."""
        by_node, cl = self.loads()
        if moving is not None:
            moving.append(len({(m["table"], m["index"]) for m in cl["moves"]}))
        if cl["moves"] or cl["under_replicated_count"] or len(by_node) < data_nodes:
            return False
        prim = [p for p, _ in by_node.values()]
        reps = [r for _, r in by_node.values()]
        return max(prim) - min(prim) <= 1 and max(reps) - min(reps) <= 1

    def cut_off(self, victim):
        """Packet filters drop everything between victim and every other
        node, both ways; clients, on CLIENT_ADDRESS, still reach every node.
        Returns the rules, for heal."""
        rules = []
        for o in self.nodes:
            if o is not victim:
                rules.append(("INPUT", "-s", victim.host, "-d", o.host, "-j", "DROP"))
                rules.append(("INPUT", "-s", o.host, "-d", victim.host, "-j", "DROP"))
        for r in rules:
            iptables("-A", *r)
        return rules

    def heal(self, rules):
        """Removes the rules cut_off added."""
        for r in rules:
            iptables("-D", *r)


def iptables(*args):
    import subprocess
    subprocess.run(["iptables"] + list(args), check=True)


def run_module(namespace):
    """What running a cluster test file does: its setup() (which starts the
    module's `cluster`), its test_ functions in order (run_tests), then the
    cluster stopped (a node that crashed fails the run) and its files
    removed."""
    namespace["setup"]()
    try:
        run_tests({k: v for k, v in namespace.items() if k.startswith("test_")})
    finally:
        cluster = namespace["cluster"]
        try:
            cluster.stop()
        finally:
            cluster.cleanup()

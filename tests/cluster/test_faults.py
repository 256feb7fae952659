"""Fault tests with recorded histories: clients run reads, writes, deletes,
If-Match compare-and-sets and incrs on a few hot cells through random nodes
of a three-node cluster while a node is killed (kill -9) and restarted;
every operation is recorded (invoke and completion time, outcome ok, fail
or unknown) and the history is checked for linearizability per cell
(tests/cluster/linearizability.py), final reads of every cell from every
node included, so that an acknowledged write lost would show.

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
"""
import http.client
import os
import random
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import CLIENT_ADDRESS, Cluster, run_module  # noqa: E402
from linearizability import Recorder, check  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from cellar import partition_of, wait_for  # noqa: E402

PARTITIONS = 8
WORKERS = 6
cluster = None


def setup():
    global cluster
    cluster = Cluster(3, config={"forward_wait_ms": 1000}).start()


def q(s):
    return urllib.parse.quote(s, safe="")


class Client:
    """One worker's keep-alive connections, one per node, from the client
    address. A request refused at connect was surely not sent; once a
    request has been written, a failure leaves its fate unknown (the node
    may have applied it and died before answering): never retried."""

    def __init__(self):
        self.conns = {}

    def request(self, node, method, path, body=None, headers=None):
        """(status or None, headers, body, sent): sent False when the
        connection could not be made (nothing reached the node)."""
        c = self.conns.get(node.address)
        if c is None:
            c = http.client.HTTPConnection(node.host, node.port, timeout=2,
                                           source_address=(CLIENT_ADDRESS, 0))
            try:
                c.connect()
            except OSError:
                return None, {}, b"", False
            self.conns[node.address] = c
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data, True
        except OSError:
            c.close()
            self.conns.pop(node.address, None)
            return None, {}, b"", True
        except http.client.HTTPException:
            c.close()
            self.conns.pop(node.address, None)
            return None, {}, b"", True

    def close(self):
        for c in self.conns.values():
            c.close()


def cells(table, count):
    """Hashkeys spread over the nodes: count on each primary's node."""
    t = cluster.nodes[0].json("GET", "/v1/tables/" + table)[2]
    by_node = {}
    for i in range(10000):
        h = "hot-%d" % i
        primary = t["partitions"][partition_of(h.encode(), PARTITIONS)]["primary"]
        if len(by_node.setdefault(primary, [])) < count:
            by_node[primary].append(h)
        if all(len(v) >= count for v in by_node.values()) and len(by_node) == len(cluster.nodes):
            break
    return by_node


def worker(rec, wid, table, keys, counters, stop):
    rnd = random.Random(wid)
    client = Client()
    n = 0
    while not stop.is_set():
        node = rnd.choice(cluster.nodes)
        key = rnd.choice(keys)
        path = "/v1/tables/%s/rows/%s/cells/v" % (table, q(key))
        kind = rnd.choice(("read", "read", "write", "write", "cas", "delete", "incr"))
        if kind == "incr":
            path = "/v1/tables/%s/rows/%s/cells/n" % (table, q(key))
            op = rec.invoke(wid, key + "/n", "incr", by=1)
            st, hd, body, sent = client.request(node, "POST", path + "/incr", b'{"by": 1}',
                                                {"Content-Type": "application/json"})
        elif kind == "read":
            op = rec.invoke(wid, key, "read")
            st, hd, body, sent = client.request(node, "GET", path)
        elif kind == "write":
            value = b"w%d-%d" % (wid, n)
            op = rec.invoke(wid, key, "write", value=value)
            st, hd, body, sent = client.request(node, "PUT", path, value)
        elif kind == "delete":
            op = rec.invoke(wid, key, "delete")
            st, hd, body, sent = client.request(node, "DELETE", path)
        else:
            # Read the version, then write only if it is still the same.
            op = rec.invoke(wid, key, "read")
            st, hd, body, sent = client.request(node, "GET", path)
            if sent:
                rec.complete_http(op, st, hd, body)
            else:
                rec.fail(op)
            etag = hd.get("etag") if st == 200 else None
            if not etag:
                continue
            value = b"c%d-%d" % (wid, n)
            op = rec.invoke(wid, key, "cas", value=value, expected=int(etag.strip('"')))
            st, hd, body, sent = client.request(node, "PUT", path, value, {"If-Match": etag})
        if not sent:
            rec.fail(op)
        else:
            rec.complete_http(op, st, hd, body)
            if st is not None and 200 <= st < 300 and kind != "read":
                counters["acked"] += 1
                counters["ok_times"].setdefault(key, []).append(time.monotonic())
        n += 1
    client.close()


def prober(rec, table, keys, counters, stop):
    client = Client()
    node = next(n for n in cluster.nodes if n.address == cluster.meta)
    pending = list(keys)
    n = 0
    while pending and not stop.is_set():
        key = pending[n % len(pending)]
        value = b"probe-%d" % n
        op = rec.invoke("probe", key, "write", value=value)
        st, hd, body, sent = client.request(
            node, "PUT", "/v1/tables/%s/rows/%s/cells/v" % (table, q(key)), value)
        if not sent:
            rec.fail(op)
        else:
            rec.complete_http(op, st, hd, body)
        if st is not None and 200 <= st < 300:
            counters["ok_times"].setdefault(key, []).append(time.monotonic())
            pending.remove(key)
        else:
            time.sleep(0.02)
        n += 1
    client.close()


def run_scenario(name, table, fault, heal, duration=9.0, replicas=3, lasts=6.0):
    """The workload runs for duration/4 before the fault, which lasts
    `lasts` seconds (longer than a failover takes, so that the time
    printed is the failover's and not the heal's), and duration/4 after
    every affected cell was written again."""
    status, _, body = cluster.nodes[1].json("PUT", "/v1/tables/" + table,
                                            {"partition_count": PARTITIONS, "replica_count": replicas})
    assert status == 201, body
    by_node = cells(table, 2)
    keys = [k for ks in by_node.values() for k in ks]
    rec = Recorder()
    stop = threading.Event()
    counters = {"acked": 0, "ok_times": {}}
    threads = [threading.Thread(target=worker, args=(rec, w, table, keys, counters, stop))
               for w in range(WORKERS)]
    for t in threads:
        t.start()
    try:
        time.sleep(duration / 4)  # the workload runs before the fault
        victim = fault()
        t_fault = time.monotonic()
        affected = by_node[victim.address]
        # A prober writes each of the victim's cells through the meta
        # node (never the victim) until it is acknowledged: the outage,
        # to within one request.
        probe = threading.Thread(target=prober, args=(rec, table, affected, counters, stop))
        probe.start()
        threads.append(probe)
        time.sleep(lasts)
        heal(victim)
        # The first acknowledged write to each of the victim's cells after
        # the fault: how long they could not be written.
        def first_ok(k):
            return next((t for t in counters["ok_times"].get(k, []) if t > t_fault), None)
        wait_for(lambda: all(first_ok(k) for k in affected), 30,
                 "writes to the victim's cells to succeed again")
        outage = max(first_ok(k) for k in affected) - t_fault
        time.sleep(duration / 4)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    # Every cell read from every node, after everything: a lost write shows.
    client = Client()
    for node in cluster.nodes:
        for key in keys:
            for sk, k in (("v", key), ("n", key + "/n")):
                op = rec.invoke("final", k, "read")
                st, hd, body, sent = client.request(
                    node, "GET", "/v1/tables/%s/rows/%s/cells/%s" % (table, q(key), sk))
                assert st in (200, 404), (node.address, key, st, body)
                rec.complete_http(op, st, hd, body)
    client.close()
    history = rec.history()
    result = check(history)
    unknown = sum(1 for op in history if op.outcome == "unknown")
    print("    %s: %d operations, %d acknowledged writes, %d unknown, the first write "
          "acknowledged on each of the victim's cells after the fault at +%.1f s, "
          "linearizable: %s" % (name, len(history), counters["acked"], unknown, outage,
                                        result.status))
    assert result.ok, result.describe()
    assert counters["acked"] > 50, counters["acked"]


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


def iptables(*args):
    import subprocess
    subprocess.run(["iptables"] + list(args), check=True)


def test_a_node_cut_off_from_the_others_then_healed():
    """Packet filters drop everything between node 2 and the other nodes
    (both ways); clients, on an address of their own, still reach every
    node. Requests relayed across the cut get no answer (503, or 504 for a
    write that may have arrived); node 2 serves what it holds to clients
    that come to it."""
    victim = cluster.nodes[1]
    others = [n.host for n in cluster.nodes if n is not victim]
    rules = []
    for o in others:
        rules.append(("INPUT", "-s", victim.host, "-d", o, "-j", "DROP"))
        rules.append(("INPUT", "-s", o, "-d", victim.host, "-j", "DROP"))

    def fault():
        for r in rules:
            iptables("-A", *r)
        return victim

    def heal(v):
        for r in rules:
            iptables("-D", *r)
    run_scenario("cut off and healed", "faults-cut", fault, heal)
    cluster.wait_formed()


if __name__ == "__main__":
    run_module(globals())

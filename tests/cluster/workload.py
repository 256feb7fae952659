"""The fault tests' workload (tests/cluster/test_faults.py,
test_meta_down.py): clients run reads, writes, deletes, If-Match
compare-and-sets and incrs on a few hot cells through the nodes of a
cluster while a fault is injected and healed; every operation is recorded
(invoke and completion time, outcome ok, fail or unknown) and the history
is checked for linearizability per cell (linearizability.py), final reads
of every cell from every node included, so that an acknowledged write lost
would show. use(cluster) names the cluster first.
"""
import http.client
import os
import random
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import CLIENT_ADDRESS  # noqa: E402
from linearizability import Recorder, check  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from cellar import partition_of, wait_for  # noqa: E402

PARTITIONS = 8
WORKERS = 6
cluster = None


def use(c):
    global cluster
    cluster = c


def data_nodes():
    return [n for n in cluster.nodes if n.config.get("roles") != "meta"]


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
        if all(len(v) >= count for v in by_node.values()) and len(by_node) == len(data_nodes()):
            break
    return by_node


def worker(rec, wid, table, keys, counters, stop, via):
    rnd = random.Random(wid)
    client = Client()
    n = 0
    while not stop.is_set():
        node = rnd.choice(via)
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


def run_scenario(name, table, fault, heal, duration=9.0, replicas=3, lasts=6.0, via=None):
    """The workload (through the nodes via, all by default) runs for
    duration/4 before the fault, which lasts `lasts` seconds (longer than
    a failover takes, so that the time printed is the failover's and not
    the heal's), and duration/4 after every cell of the victim's
    primaries was written again. Returns the history and the fault's
    start and end (time.monotonic())."""
    via = via or cluster.nodes
    status, _, body = cluster.nodes[1].json("PUT", "/v1/tables/" + table,
                                            {"partition_count": PARTITIONS, "replica_count": replicas})
    assert status == 201, body
    by_node = cells(table, 2)
    keys = [k for ks in by_node.values() for k in ks]
    rec = Recorder()
    stop = threading.Event()
    counters = {"acked": 0, "ok_times": {}}
    threads = [threading.Thread(target=worker, args=(rec, w, table, keys, counters, stop, via))
               for w in range(WORKERS)]
    for t in threads:
        t.start()
    try:
        time.sleep(duration / 4)  # the workload runs before the fault
        victim = fault()
        t_fault = time.monotonic()
        affected = by_node.get(victim.address, [])
        # A prober writes each of the victim's cells through the meta
        # node (never the victim) until it is acknowledged: the outage,
        # to within one request.
        probe = threading.Thread(target=prober, args=(rec, table, affected, counters, stop))
        probe.start()
        threads.append(probe)
        time.sleep(lasts)
        t_heal = time.monotonic()
        heal(victim)
        # The first acknowledged write to each of the victim's cells after
        # the fault: how long they could not be written.
        def first_ok(k):
            return next((t for t in counters["ok_times"].get(k, []) if t > t_fault), None)
        wait_for(lambda: all(first_ok(k) for k in affected), 30,
                 "writes to the victim's cells to succeed again")
        outage = max([first_ok(k) for k in affected] + [t_fault]) - t_fault
        time.sleep(duration / 4)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    # Every cell read from every node, after everything: a lost write shows.
    client = Client()
    for node in cluster.nodes:
        if not node.proc or node.proc.poll() is not None:
            continue  # stopped for good by the scenario
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
    after = ("the first write acknowledged on each of the victim's cells after the fault at "
             "+%.1f s" % outage) if affected else "the victim held no primaries"
    print("    %s: %d operations, %d acknowledged writes, %d unknown, %s, linearizable: %s"
          % (name, len(history), counters["acked"], unknown, after, result.status))
    assert result.ok, result.describe()
    assert counters["acked"] > 50, counters["acked"]
    return history, t_fault, t_heal

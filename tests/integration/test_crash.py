"""Crash test: many concurrent writers, kill -9 the node mid-storm, restart.

The writers spread over three tables with different partition counts (8,
1 and 16); the 1-partition table has a default_ttl. A third of the PUTs
carry a long ?ttl= (hours: nothing can expire during the test), the
default_ttl table gives its TTL to the others. Every write that got a 2xx
must be there with its exact value after the restart (or, when a later
write to the same cell was in flight at the kill, either that in-flight
result or the acknowledged one), and nothing may be half-applied: every
value read back is byte-for-byte one that was written. Every acknowledged
TTL must have survived too: the remaining ttl read back lies between the
TTL given minus the seconds since the write was sent (less 2 s of
rounding) and the TTL given; cells written without one have none.
Runs once with durability=fsync and once with durability=os (a process
crash loses nothing under either; only a machine crash tells them apart).
"""
import base64
import hashlib
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from cellar import Node, cell_path, run_tests, wait_for  # noqa: E402

WRITERS = 16
KEYS_PER_WRITER = 40
ACKS_BEFORE_KILL = 8000
# name -> (partition_count, default_ttl)
TABLES = {"crash": (8, 0), "crash_one": (1, 86400), "crash_wide": (16, 0)}
TTL_SLACK_S = 2


def value_for(writer, seq):
    """A value of 1..3000 bytes whose content proves which write made it."""
    head = ("w%d-s%d-" % (writer, seq)).encode()
    size = 1 + (int(hashlib.sha256(head).hexdigest()[:6], 16) % 3000)
    body = hashlib.sha256(head).digest() * (size // 32 + 1)
    return (head + body)[:max(size, len(head))]


class Writer(threading.Thread):
    """Writes its own cells in a loop over one keep-alive connection and
    records, per cell, the last acknowledged state and the in-flight op."""

    def __init__(self, node, table, idx, acked_counter):
        super().__init__(daemon=True)
        self.node, self.table, self.idx = node, table, idx
        self.default_ttl = TABLES[table][1]
        # key -> (value bytes or None when deleted, TTL expected or None,
        #         time.time() when the write was sent)
        self.acked = {}
        self.inflight = None  # (key, value-or-None) when the connection died
        self.counter = acked_counter
        self.acks = 0
        self.error = None

    def key(self, seq):
        if seq % 2:
            # Written once: this acknowledged write is checked on its own.
            return ("once-%d-%d" % (self.idx, seq // 64), "s%d" % seq)
        # Overwritten and deleted again and again: the latest state counts.
        k = seq % KEYS_PER_WRITER
        return ("row-%d-%d" % (self.idx, k // 4), "cell/%d%%x" % k)

    def run(self):
        conn = self.node.conn(timeout=30)
        seq = 0
        try:
            while True:
                seq += 1
                key = self.key(seq)
                path = cell_path(self.table, *key)
                sent = time.time()
                ttl = None
                if seq % 2 == 0 and seq % 7 == 0:
                    op = (key, None)
                    self.inflight = op
                    status = self.node.request("DELETE", path, conn=conn)[0]
                    if status != 204:
                        raise AssertionError("DELETE gave %s" % status)
                else:
                    val = value_for(self.idx, seq)
                    op = (key, val)
                    ttl = self.default_ttl or None
                    if seq % 3 == 0:
                        ttl = 3600 * (2 + seq % 20)  # hours: cannot expire during the test
                        path += "?ttl=%d" % ttl
                    self.inflight = op
                    status = self.node.request("PUT", path, body=val, conn=conn)[0]
                    if status not in (201, 204):
                        raise AssertionError("PUT gave %s" % status)
                self.acked[key] = (op[1], ttl, sent)
                self.inflight = None
                self.acks += 1
                with self.counter["lock"]:
                    self.counter["n"] += 1
        except (ConnectionError, OSError, __import__("http.client").client.HTTPException):
            return  # the node was killed: self.inflight is the uncertain op
        except Exception as e:  # a wrong status before the kill is a failure
            self.error = e


def read_cell(node, table, key, conn):
    """(value bytes or None, ttl or None) of a cell, from its JSON form."""
    status, _, body = node.request("GET", cell_path(table, *key),
                                   headers={"Accept": "application/json"}, conn=conn)
    assert status in (200, 404), status
    if status == 404:
        return None, None
    doc = json.loads(body)
    if "value_base64" in doc:
        return base64.b64decode(doc["value_base64"]), doc["ttl"]
    return doc["value"].encode(), doc["ttl"]


def storm_then_kill(durability):
    node = Node(config={"durability": durability})
    try:
        node.start()
        for name, (count, ttl) in TABLES.items():
            status, _, _ = node.json("PUT", "/v1/tables/%s" % name,
                                     {"partition_count": count, "default_ttl": ttl})
            assert status == 201, status
        counter = {"n": 0, "lock": threading.Lock()}
        names = sorted(TABLES)
        writers = [Writer(node, names[i % len(names)], i, counter) for i in range(WRITERS)]
        for w in writers:
            w.start()
        wait_for(lambda: counter["n"] >= ACKS_BEFORE_KILL or any(not w.is_alive() for w in writers),
                 120, "%d acknowledged writes" % ACKS_BEFORE_KILL)
        for w in writers:
            assert w.error is None, "writer %d failed before the kill: %s" % (w.idx, w.error)
            assert w.is_alive(), "writer %d stopped before the kill" % w.idx
        node.kill9()  # mid-storm: every writer still has a request going
        for w in writers:
            w.join(60)
            assert not w.is_alive(), "writer %d still running after the kill" % w.idx
            assert w.error is None, "writer %d failed: %s" % (w.idx, w.error)

        node.start()
        checked = lost = uncertain_seen = ttl_checked = ttl_wrong = with_ttl = 0
        per_table = {name: 0 for name in TABLES}
        conn = node.conn()
        for w in writers:
            for key, (expected, ttl, sent) in w.acked.items():
                got, got_ttl = read_cell(node, w.table, key, conn)
                read_at = time.time()
                allowed = [expected]
                if w.inflight and w.inflight[0] == key:
                    allowed.append(w.inflight[1])
                    if got == w.inflight[1] and got != expected:
                        uncertain_seen += 1
                checked += 1
                per_table[w.table] += 1
                if got not in allowed:
                    lost += 1
                    print("    %s %s %r: expected %s, got %s" % (
                        durability, w.table, key,
                        "absent" if expected is None else "%d bytes" % len(expected),
                        "absent" if got is None else "%d bytes %r" % (len(got), got[:24])))
                    continue
                if got is None or got != expected:
                    continue  # absent, or the in-flight write's (TTL unknown)
                ttl_checked += 1
                with_ttl += ttl is not None
                if ttl is None:
                    ok = got_ttl is None
                else:
                    ok = got_ttl is not None and \
                        ttl - (read_at - sent) - TTL_SLACK_S <= got_ttl <= ttl
                if not ok:
                    ttl_wrong += 1
                    print("    %s %s %r: ttl %s, expected %s set %.1fs before the read" % (
                        durability, w.table, key, got_ttl, ttl, read_at - sent))
        print("    durability=%s: %d writes acknowledged, %d cells checked (%s), %d lost, "
              "%d in-flight writes found applied, %d TTLs checked (%d of them set, %d wrong)"
              % (durability, sum(w.acks for w in writers), checked,
                 ", ".join("%s %d" % kv for kv in sorted(per_table.items())), lost,
                 uncertain_seen, ttl_checked, with_ttl, ttl_wrong))
        assert with_ttl > 0 and ttl_checked > with_ttl, (ttl_checked, with_ttl)
        assert min(per_table.values()) >= WRITERS // len(TABLES), "too few cells checked"
        assert lost == 0, "%d acknowledged writes lost" % lost
        assert ttl_wrong == 0, "%d acknowledged TTLs wrong" % ttl_wrong
        assert node.stop() == 0
    finally:
        node.cleanup()


def test_kill9_storm_fsync():
    storm_then_kill("fsync")


def test_kill9_storm_os():
    storm_then_kill("os")


if __name__ == "__main__":
    run_tests(globals())

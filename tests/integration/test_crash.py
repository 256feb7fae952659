"""Crash test: many concurrent writers, kill -9 the node mid-storm, restart.

Every write that got a 2xx must be there with its exact value after the
restart (or, when a later write to the same cell was in flight at the kill,
either that in-flight result or the acknowledged one), and nothing may be
half-applied: every value read back is byte-for-byte one that was written.
Runs once with durability=fsync and once with durability=os (a process
crash loses nothing under either; only a machine crash tells them apart).
"""
import hashlib
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from cellar import Node, cell_path, run_tests, wait_for  # noqa: E402

WRITERS = 16
KEYS_PER_WRITER = 40
ACKS_BEFORE_KILL = 8000


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
        self.acked = {}      # key -> bytes (value) or None (deleted)
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
                if seq % 2 == 0 and seq % 7 == 0:
                    op = (key, None)
                    self.inflight = op
                    status = self.node.request("DELETE", path, conn=conn)[0]
                    if status != 204:
                        raise AssertionError("DELETE gave %s" % status)
                else:
                    val = value_for(self.idx, seq)
                    op = (key, val)
                    self.inflight = op
                    status = self.node.request("PUT", path, body=val, conn=conn)[0]
                    if status not in (201, 204):
                        raise AssertionError("PUT gave %s" % status)
                self.acked[key] = op[1]
                self.inflight = None
                self.acks += 1
                with self.counter["lock"]:
                    self.counter["n"] += 1
        except (ConnectionError, OSError, __import__("http.client").client.HTTPException):
            return  # the node was killed: self.inflight is the uncertain op
        except Exception as e:  # a wrong status before the kill is a failure
            self.error = e


def storm_then_kill(durability):
    node = Node(config={"durability": durability})
    try:
        node.start()
        status, _, _ = node.json("PUT", "/v1/tables/crash", {"partition_count": 8})
        assert status == 201, status
        counter = {"n": 0, "lock": threading.Lock()}
        writers = [Writer(node, "crash", i, counter) for i in range(WRITERS)]
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
        checked = lost = uncertain_seen = 0
        conn = node.conn()
        for w in writers:
            for key, expected in w.acked.items():
                status, _, body = node.request("GET", cell_path("crash", *key), conn=conn)
                got = body if status == 200 else None
                assert status in (200, 404), status
                allowed = [expected]
                if w.inflight and w.inflight[0] == key:
                    allowed.append(w.inflight[1])
                    if got == w.inflight[1] and got != expected:
                        uncertain_seen += 1
                checked += 1
                if got not in allowed:
                    lost += 1
                    print("    %s %r: expected %s, got %s" % (durability, key,
                          "absent" if expected is None else "%d bytes" % len(expected),
                          "absent" if got is None else "%d bytes %r" % (len(got), got[:24])))
        print("    durability=%s: %d writes acknowledged, %d cells checked, %d lost, "
              "%d in-flight writes found applied" % (durability, sum(w.acks for w in writers),
                                                     checked, lost, uncertain_seen))
        assert checked >= WRITERS, "too few cells checked"
        assert lost == 0, "%d acknowledged writes lost" % lost
        assert node.stop() == 0
    finally:
        node.cleanup()


def test_kill9_storm_fsync():
    storm_then_kill("fsync")


def test_kill9_storm_os():
    storm_then_kill("os")


if __name__ == "__main__":
    run_tests(globals())

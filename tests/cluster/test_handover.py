"""A primary handing its role on (a drain, a balancing move) while writes
are queued for it: none of those writes went out, so they go to the new
primary rather than fail, and relays in flight to the old primary wait
for its answer rather than end as of unknown outcome. Clients writing
and reading back through every node all the while get every write
acknowledged and read, and every one is there afterwards.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, run_module, wait_for  # noqa: E402

PARTITIONS = 2
WRITERS = 8
cluster = None


def setup():
    global cluster
    cluster = Cluster(4).start()


def partitions(table):
    return cluster.nodes[0].json("GET", "/v1/tables/" + table)[2]["partitions"]


class Writers:
    """WRITERS threads, each on a keep-alive connection to one node in
    turn, writing cells of their own and reading each back until stopped;
    every write's answer kept, and every read that did not return it."""

    def __init__(self, table):
        self.table = table
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers = []  # (key, status, body)
        self.threads = [threading.Thread(target=self.run, args=(w,)) for w in range(WRITERS)]

    def run(self, w):
        node = cluster.nodes[w % len(cluster.nodes)]
        conn = node.conn(timeout=30)
        for i in range(100000):
            if self.stop.is_set():
                break
            key = "w%d-%d" % (w, i)
            path = "/v1/tables/%s/rows/%s/cells/c" % (self.table, key)
            status, _, body = node.request("PUT", path, body=key.encode(), conn=conn)
            with self.lock:
                self.answers.append((key, status, body))
            if status in (201, 204):
                # Read back at once: acknowledged means readable, wherever
                # the primary is by now.
                got = node.request("GET", path, conn=conn)
                if got[0] != 200 or got[2] != key.encode():
                    with self.lock:
                        self.answers.append((key, "read %s" % got[0], got[2]))
        conn.close()

    def count(self):
        with self.lock:
            return len(self.answers)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        assert not any(t.is_alive() for t in self.threads), "a writer did not stop"


def test_writes_queued_at_a_primary_that_hands_over_go_to_the_new_one():
    meta = cluster.nodes[0]
    status, _, body = meta.json("PUT", "/v1/tables/ho", {"partition_count": PARTITIONS,
                                                        "replica_count": 3})
    assert status == 201, body
    victim = next(n for n in cluster.nodes[1:]
                  if any(p["primary"] == n.address for p in partitions("ho")))
    with Writers("ho") as writers:
        wait_for(lambda: writers.count() >= 200, 30, "writes before the drain")
        status, _, body = meta.json("POST", "/v1/cluster/nodes/%s/drain" % victim.address)
        assert status == 202, (status, body)
        wait_for(lambda: all(victim.address != p["primary"] for p in partitions("ho")), 30,
                 "the drained node to hand its primaries on")
        handed = writers.count()
        wait_for(lambda: writers.count() >= handed + 200, 30, "writes after the handover")
    failed = [a for a in writers.answers if a[1] not in (201, 204)]
    print("    %d answers during the handover, %d not ok" % (len(writers.answers), len(failed)))
    assert not failed, failed[:5]
    for node in cluster.nodes:
        for key, _, _ in writers.answers[::7]:
            status, _, body = node.request("GET", "/v1/tables/ho/rows/%s/cells/c" % key)
            assert (status, body) == (200, key.encode()), (node.address, key, status, body)


if __name__ == "__main__":
    run_module(globals())

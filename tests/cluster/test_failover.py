"""Failover (PacificA with leases): when a partition's primary crashes or
freezes, a secondary that has heard nothing from it for fd_grace_ms asks
meta to take its place (a compare-and-set on the ballot), commits its log's
tail with the secondaries left, and serves; the other nodes learn the new
primary from their next beacon and send requests there. Nothing
acknowledged is lost. A primary woken from SIGSTOP has lost its lease (its
secondaries stopped acking it) and serves nothing stale: it holds its
requests until its map names the new primary, then forwards them.

The failover time printed is from the fault to the first write acknowledged
on each of the victim's partitions; it is not asserted (timings belong to
benchmarks), only that it happens.
"""
import json
import os
import signal
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, run_module, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from cellar import metric, partition_of  # noqa: E402

PARTITIONS = 4
cluster = None


def setup():
    global cluster
    cluster = Cluster(3, config={"prepare_timeout_ms": 500, "forward_wait_ms": 2000}).start()


def node(i):
    return cluster.nodes[i - 1]


def cell(table, h):
    return "/v1/tables/%s/rows/%s/cells/v" % (table, urllib.parse.quote(h, safe=""))


def partitions(table):
    return node(1).json("GET", "/v1/tables/" + table)[2]["partitions"]


def victim_and_keys(table, count=40):
    """A data node that is not meta and holds a primary, and keys of the
    table by partition."""
    parts = partitions(table)
    victim = next(n for n in cluster.nodes[1:] if any(p["primary"] == n.address for p in parts))
    keys = {}
    for i in range(2000):
        h = "k%d" % i
        keys.setdefault(partition_of(h.encode(), PARTITIONS), []).append(h)
        if all(len(keys.get(p, [])) >= count // PARTITIONS for p in range(PARTITIONS)):
            break
    return victim, parts, keys


def write_all(table, keys, value):
    for p, hs in keys.items():
        for h in hs:
            via = cluster.nodes[hash(h) % 3]
            status, _, body = via.json("PUT", cell(table, h), {"v": value, "h": h})
            assert status in (201, 204), (h, status, body)


def wait_failover(table, victim, before, probe):
    """Writes through node 1 to a key of each of the victim's partitions
    until each succeeds; the time from now to the last first success."""
    lost = [p["index"] for p in before if p["primary"] == victim.address]
    t0 = time.monotonic()
    done = {}

    def all_written():
        for p in lost:
            if p in done:
                continue
            status, _, _ = node(1).json("PUT", cell(table, probe[p]), {"v": "after"})
            if status in (201, 204):
                done[p] = time.monotonic() - t0
        return len(done) == len(lost)
    wait_for(all_written, 20, "writes to the victim's partitions to succeed again")
    return lost, max(done.values())


def check_new_primaries(table, victim, before, lost):
    after = partitions(table)
    for p in lost:
        assert after[p]["primary"] not in (None, victim.address), after[p]
        assert victim.address not in after[p]["secondaries"], after[p]
        assert after[p]["ballot"] > before[p]["ballot"], (before[p], after[p])


killed = []


def test_kill9_of_a_primary_fails_over_to_a_secondary():
    status, _, body = node(1).json("PUT", "/v1/tables/fo-kill",
                                   {"partition_count": PARTITIONS, "replica_count": 3})
    assert status == 201, body
    victim, before, keys = victim_and_keys("fo-kill")
    write_all("fo-kill", keys, "before")
    probe = {p: hs[0] for p, hs in keys.items()}
    victim.kill9()
    killed.append(victim)
    try:
        lost, took = wait_failover("fo-kill", victim, before, probe)
        print("    kill -9 of %s: %d partitions failed over, the last in %.1f s"
              % (victim.address, len(lost), took))
        check_new_primaries("fo-kill", victim, before, lost)
        promoted = sum(metric(n, "cellar_replication_promotions_total")
                       for n in cluster.nodes if n is not victim)
        assert promoted >= len(lost), (promoted, lost)
        # Every acknowledged write is there, through either node left.
        for p, hs in keys.items():
            for h in hs:
                want = "after" if h == probe[p] and p in lost else "before"
                for n in cluster.nodes:
                    if n is victim:
                        continue
                    status, _, body = n.json("GET", cell("fo-kill", h))
                    assert status == 200 and body["v"] == want, (n.address, h, status, body)
    finally:
        victim.start()
    cluster.wait_formed()
    # The restarted node is out of those partitions; it still answers for
    # them, forwarding.
    for p, hs in keys.items():
        status, _, body = victim.json("GET", cell("fo-kill", hs[-1]))
        assert status == 200 and body["v"] == "before", (status, body)


def test_the_restarted_node_learns_and_is_a_secondary_again():
    """The node killed above is back: meta makes it a learner of every
    partition it was taken out of; the primaries send it the log entries
    it lacks and have meta make it a secondary again (ballot + 1). Then
    balancing may hand it primaries back."""
    victim = killed[0]

    def whole():
        cl = node(1).json("GET", "/v1/cluster")[2]
        return cl["under_replicated_count"] == 0 and not cl["moves"]
    wait_for(whole, 20, "every partition to have three replicas again")
    for p in partitions("fo-kill"):
        assert victim.address in [p["primary"]] + p["secondaries"], p
    learned = sum(metric(n, "cellar_replication_learned_entries_total") for n in cluster.nodes)
    assert learned > 0, learned
    # It has every write: one more write per partition carries the
    # committed decree, and its applied decree matches its primary's.
    t = node(1).json("GET", "/v1/tables/fo-kill")[2]
    for i in range(PARTITIONS * 8):
        status, _, body = node(1).json("PUT", cell("fo-kill", "x%d" % i), {"v": i})
        assert status in (201, 204), (i, status, body)
    with open(cluster.secret) as f:
        auth = {"Authorization": "Bearer " + f.read().strip()}

    def decrees(n):
        st, _, body = n.request("GET", "/internal/v1/replicas", headers=auth)
        return {r["partition"]: r for r in json.loads(body)["replicas"] if r["table_id"] == t["id"]}
    wait_for(lambda: all(r["role"] in ("secondary", "primary")
                         for r in decrees(victim).values()), 10,
             "the restarted node to know itself a member everywhere")
    mine = decrees(victim)
    for p in partitions("fo-kill"):
        if p["primary"] == victim.address:
            continue
        primary = next(n for n in cluster.nodes if n.address == p["primary"])
        theirs = decrees(primary)[p["index"]]
        assert mine[p["index"]]["role"] == "secondary", mine
        assert mine[p["index"]]["logged"] >= theirs["decree"], (mine, theirs)
        assert mine[p["index"]]["decree"] >= theirs["decree"] - 8, (mine, theirs)


def test_a_frozen_primary_is_replaced_and_serves_nothing_stale_when_woken():
    status, _, body = node(1).json("PUT", "/v1/tables/fo-stop",
                                   {"partition_count": PARTITIONS, "replica_count": 3})
    assert status == 201, body
    victim, before, keys = victim_and_keys("fo-stop")
    write_all("fo-stop", keys, "before")
    probe = {p: hs[0] for p, hs in keys.items()}
    victim.proc.send_signal(signal.SIGSTOP)
    try:
        lost, took = wait_failover("fo-stop", victim, before, probe)
        print("    SIGSTOP of %s: %d partitions failed over, the last in %.1f s"
              % (victim.address, len(lost), took))
        check_new_primaries("fo-stop", victim, before, lost)
    finally:
        victim.proc.send_signal(signal.SIGCONT)
    # Woken, it must not answer from its own (stale) copy: every read of a
    # key written since the failover sees the new value, or is refused.
    seen = {"after": 0, "refused": 0}
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for p in lost:
            status, _, body = victim.json("GET", cell("fo-stop", probe[p]))
            if status == 200:
                assert body["v"] == "after", ("stale read from the woken primary", p, body)
                seen["after"] += 1
            else:
                assert status in (503, 504), (status, body)
                seen["refused"] += 1
    assert seen["after"] > 0, seen
    # Writes through it reach the new primary.
    for p in lost:
        status, _, body = victim.json("PUT", cell("fo-stop", probe[p]), {"v": "woken"})
        assert status in (201, 204), (status, body)
        status, _, body = node(1).json("GET", cell("fo-stop", probe[p]))
        assert status == 200 and body["v"] == "woken", (status, body)
    cluster.wait_formed()


def test_secondaries_refuse_the_ballot_they_gave_up_on():
    """The lease rule's other half, seen from the outside: after a
    failover, a prepare from the old ballot is refused by the new
    primary's replica group."""
    t = node(1).json("GET", "/v1/tables/fo-kill")[2]
    with open(cluster.secret) as f:
        secret = f.read().strip()
    p = next(p for p in t["partitions"] if p["ballot"] > 1 and p["secondaries"])
    header = json.dumps({"table_id": t["id"], "partition": p["index"], "ballot": p["ballot"] - 1,
                         "primary": "127.0.0.9:7000", "committed": 0, "n": 0}).encode()
    body = len(header).to_bytes(4, "big") + header
    target = next(n for n in cluster.nodes if n.address == p["secondaries"][0])
    status, _, reply = target.request("POST", "/internal/v1/prepare", body,
                                      {"Authorization": "Bearer " + secret})
    assert status == 409, (status, reply)


if __name__ == "__main__":
    run_module(globals())

"""A cluster of three nodes (node 1 the meta server): it forms from beacons,
places partitions evenly on distinct nodes, answers every route on any node
by forwarding to the partition's primary (answers relayed unchanged, a
1 MiB value included), takes table changes on any node, keeps
/internal/ to the cluster secret, answers 503 and 504 as API.md says when
a primary is down or freezes, and a restarted node rejoins and serves its
replicas again.
"""
import json
import os
import signal
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, iptables, run_module, wait_for  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from cellar import partition_of  # noqa: E402

cluster = None


def setup():
    global cluster
    # One replica per partition: these tests are about placement and
    # forwarding (test_replication.py and test_failover.py have three).
    cluster = Cluster(3, config={"forward_wait_ms": 1500, "fd_lease_ms": 1200, "fd_grace_ms": 2000,
                                 "default_replica_count": 1}).start()


def node(i):
    return cluster.nodes[i - 1]


def table_map(name, via=1):
    status, _, body = node(via).json("GET", "/v1/tables/" + name)
    assert status == 200, (status, body)
    return body


def create(name, via=2, **spec):
    status, _, body = node(via).json("PUT", "/v1/tables/" + name, spec)
    assert status == 201, (status, body)
    return body


def q(s):
    return urllib.parse.quote(s, safe="")


def cell(table, h, s):
    return "/v1/tables/%s/rows/%s/cells/%s" % (table, q(h), q(s))


def remote_hashkeys(table, via, count=3):
    """Hashkeys whose partition's primary is not node `via`."""
    t = table_map(table)
    out = []
    for i in range(1000):
        h = "key-%d" % i
        p = partition_of(h.encode(), t["partition_count"])
        if t["partitions"][p]["primary"] != node(via).address:
            out.append(h)
            if len(out) == count:
                return out
    raise AssertionError("no remote hashkeys")


def test_the_cluster_forms_from_beacons():
    status, _, body = node(3).json("GET", "/v1/cluster")
    assert status == 200
    assert body["meta_leader"] == node(1).address
    nodes = {n["address"]: n for n in body["nodes"]}
    assert set(nodes) == {n.address for n in cluster.nodes}
    assert all(n["state"] == "alive" for n in nodes.values())
    assert nodes[node(1).address]["roles"] == ["meta", "data"]
    assert nodes[node(2).address]["roles"] == ["data"]


def test_placement_spreads_primaries_on_distinct_nodes():
    create("spread", partition_count=16)
    for via in (1, 2, 3):
        t = table_map("spread", via)
        primaries = [p["primary"] for p in t["partitions"]]
        assert sorted(set(primaries)) == sorted(n.address for n in cluster.nodes), primaries
        counts = sorted(primaries.count(a) for a in set(primaries))
        assert counts[-1] - counts[0] <= 1, counts
        assert all(p["ballot"] >= 1 and p["secondaries"] == [] for p in t["partitions"])
    status, _, body = node(1).json("GET", "/v1/cluster")
    counts = sorted(n["primaries"] for n in body["nodes"])
    assert sum(counts) == body["partition_count"] and counts[-1] - counts[0] <= 1, body
    assert body["under_replicated_count"] == 0


def test_every_route_is_forwarded_and_relayed_unchanged():
    create("routes", partition_count=8)
    via = node(3)
    h, h2, h3 = remote_hashkeys("routes", 3)
    path = cell("routes", h, "s")
    status, hdrs, _ = via.request("PUT", path, b"one", {"Content-Type": "text/plain"})
    assert status == 201 and hdrs["etag"] and hdrs["location"] == path, (status, hdrs)
    etag = hdrs["etag"]
    status, hdrs, body = via.request("GET", path)
    assert (status, body, hdrs["etag"], hdrs["content-type"]) == (200, b"one", etag, "text/plain")
    assert hdrs.get("x-content-type-options") == "nosniff"
    assert via.request("HEAD", path)[0] == 200
    assert via.request("GET", path, headers={"If-None-Match": etag})[0] == 304
    status, hdrs, body = via.request("PUT", path, b"two", {"If-Match": '"999999", "abc"'})
    assert status == 412 and json.loads(body)["current_etag"] == etag.strip('"'), body
    assert via.request("PUT", path, b"two", {"If-Match": etag})[0] == 204
    status, _, body = via.json("GET", path, headers={"Accept": "application/json"})
    assert body["value"] == "two"
    status, _, body = via.json("POST", cell("routes", h, "n") + "/incr", {"by": 5})
    assert status == 200 and body["value"] == 5
    row = "/v1/tables/routes/rows/" + q(h)
    status, _, body = via.json("PATCH", row, {"set": [{"sortkey": "a", "value": "1"},
                                                      {"sortkey": "b", "value": "2"}]})
    assert (status, body) == (200, {"applied": True})
    status, _, body = via.json("GET", row + "?limit=2")
    assert status == 200 and [c["sortkey"] for c in body["cells"]] == ["a", "b"]
    assert body["next_cursor"]
    status, _, body2 = via.json("GET", row + "?limit=2&cursor=" + q(body["next_cursor"]))
    assert status == 200 and [c["sortkey"] for c in body2["cells"]] == ["n", "s"]
    status, _, body = via.json("GET", row + "/count")
    assert (status, body) == (200, {"count": 4, "next_cursor": None})
    status, _, body = via.json("POST", row + "/check-and-mutate",
                               {"check": {"sortkey": "a", "type": "value_bytes_equal",
                                          "operand": "1"},
                                "set": [{"sortkey": "c", "value": "3"}],
                                "return_check_value": True})
    assert status == 200 and body["applied"] and body["check_value"] == "1", body
    status, _, body = via.json("DELETE", row + "?start=a&stop=c")
    assert (status, body) == (200, {"deleted": 2})
    assert via.request("DELETE", path)[0] == 204
    assert via.request("GET", path)[0] == 404
    status, hdrs, body = via.json("GET", path)
    assert hdrs["content-type"] == "application/problem+json" and body["code"] == "CELL_NOT_FOUND"
    # 1 MiB through a hop, both ways.
    big = os.urandom(1 << 20)
    big_path = cell("routes", h2, "big")
    assert via.request("PUT", big_path, big)[0] == 201
    status, _, got = via.request("GET", big_path)
    assert status == 200 and got == big
    # Bad input is refused at the node the client reached, as on one node.
    status, _, body = via.json("PATCH", "/v1/tables/routes/rows/" + q(h3), {"set": "x"})
    assert status == 400 and body["code"] == "INVALID_ARGUMENT"
    status, _, body = via.json("GET", cell("nope", h3, "s"))
    assert status == 404 and body["code"] == "TABLE_NOT_FOUND"
    # What node 3 relayed, per peer, and its view of the cluster.
    text = via.request("GET", "/metrics")[2].decode()
    relayed = {}
    for line in text.splitlines():
        if line.startswith("cellar_forward_requests_total{"):
            relayed[line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
    primary = table_map("routes")["partitions"][partition_of(h.encode(), 8)]["primary"]
    assert relayed.get(primary, 0) >= 10, relayed
    assert node(3).address not in relayed
    assert 'cellar_cluster_nodes{state="alive"} 3' in text
    assert "cellar_forward_seconds_count{peer=" in text


def metric(node_, name):
    status, _, body = node_.request("GET", "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError("no %s in /metrics" % name)


def test_concurrent_relays_share_envelopes_and_each_gets_its_own_answer():
    """Many clients at once on node 3, every key's primary elsewhere: the
    forwarder packs what is queued for one peer into envelopes, and each
    client still gets its own answer (status, body, Content-Type, ETag, a
    412's current_etag, a 404's problem). Rounds go on until node 3 has
    sent envelopes, within a bound."""
    create("env", partition_count=8)
    keys = remote_hashkeys("env", 3, 24)
    deadline = time.monotonic() + 60
    for rnd in range(30):
        start = threading.Barrier(len(keys))
        results = {}

        def client(i, h):
            c = node(3).conn()
            try:
                start.wait(10)
                value = ("value %d of round %d " % (i, rnd)).encode() * (i + 1)
                ctype = "text/x-%d" % i
                put = node(3).request("PUT", cell("env", h, "s"), value,
                                      {"Content-Type": ctype}, conn=c)
                got = node(3).request("GET", cell("env", h, "s"), conn=c)
                stale = node(3).request("PUT", cell("env", h, "s"), b"no",
                                        {"If-Match": '"999999999"'}, conn=c)
                missing = node(3).request("GET", cell("env", h, "absent"), conn=c)
                results[i] = (value, ctype, put, got, stale, missing)
            finally:
                c.close()
        threads = [threading.Thread(target=client, args=(i, h)) for i, h in enumerate(keys)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(results) == len(keys), "clients did not finish"
        for i, (value, ctype, put, got, stale, missing) in results.items():
            assert put[0] in (201, 204), (i, put)
            assert got[0] == 200 and got[2] == value, (i, got[0], got[2][:40])
            assert got[1]["content-type"] == ctype and got[1]["etag"] == put[1]["etag"], got[1]
            assert stale[0] == 412, (i, stale)
            assert json.loads(stale[2])["current_etag"] == put[1]["etag"].strip('"'), stale
            assert missing[0] == 404 and json.loads(missing[2])["code"] == "CELL_NOT_FOUND"
        if metric(node(3), "cellar_forward_enveloped_requests_total") > 0:
            break
        assert time.monotonic() < deadline, "no envelope formed"
    else:
        raise AssertionError("no envelope formed in 30 rounds")
    assert metric(node(3), "cellar_forward_envelopes_total") > 0


def test_an_envelope_is_refused_when_malformed_and_carries_no_internal_call():
    """POST /internal/v1/relay as another node would send it: a body that
    is not whole requests is 400; a carried call to /internal/ is 403
    inside the answer, next to a carried GET answered as usual."""
    import struct

    def field(b):
        return struct.pack("<I", len(b)) + b

    def envelope(*reqs):
        return b"".join(field(m) + field(t) + field(h) + field(b) for m, t, h, b in reqs)
    with open(cluster.secret) as f:
        hdr = {"Authorization": "Bearer " + f.read().strip(),
               "Content-Type": "application/octet-stream"}
    status, _, _ = node(1).request("POST", "/internal/v1/relay", b"\x05\x00\x00\x00ab", hdr)
    assert status == 400
    status, _, _ = node(1).request("POST", "/internal/v1/relay", field(b"GET"), hdr)
    assert status == 400
    body = envelope((b"GET", b"/internal/v1/node", b"", b""),
                    (b"GET", b"/healthz?x=1&y", b"Accept: */*\r\n", b""))
    status, _, data = node(1).request("POST", "/internal/v1/relay", body, hdr)
    assert status == 200, (status, data)
    out, at = [], 0
    while at < len(data):
        n = struct.unpack_from("<I", data, at)[0]
        out.append(data[at + 4:at + 4 + n])
        at += 4 + n
    assert len(out) == 6 and out[0] == b"403" and out[3] == b"200", out


def test_table_changes_on_any_node_go_to_meta():
    create("ddl", via=3, partition_count=2)
    status, _, body = node(2).json("PATCH", "/v1/tables/ddl", {"default_ttl": 60,
                                                                "envs": {"read_only": "true"}})
    assert status == 200 and body["default_ttl"] == 60, body
    wait_for(lambda: table_map("ddl", 3)["envs"] == {"read_only": "true"}, 10, "the PATCH everywhere")
    h = remote_hashkeys("ddl", 3, 1)[0]
    status, _, body = node(3).json("PUT", cell("ddl", h, "s"), None)
    assert status == 403 and body["code"] == "TABLE_READ_ONLY", body
    status, _, body = node(3).json("PUT", "/v1/tables/ddl", {})
    assert status == 409 and body["code"] == "TABLE_EXISTS"
    assert node(3).json("DELETE", "/v1/tables/ddl")[0] == 200
    for via in (1, 2, 3):
        assert node(via).json("GET", "/v1/tables/ddl")[0] == 404
    status, _, body = node(2).json("POST", "/v1/tables/ddl/recall", {})
    assert status == 200 and body["status"] == "available", body
    assert node(3).json("GET", "/v1/tables/ddl")[0] == 200
    assert node(2).json("DELETE", "/v1/tables/ddl?purge=true")[0] == 200
    status, _, body = node(1).json("GET", "/v1/tables?include_dropped=true")
    assert "ddl" not in [t["name"] for t in body["tables"]]
    status, _, body = node(3).json("POST", "/v1/tables/routes/compact")
    assert status == 202, body


def test_a_table_change_is_in_force_where_it_was_asked_when_answered():
    """The meta server's push of a new map to node 3 is refused (packet
    filter: its connections to node 3 are reset), so node 3 learns of the
    table from its own beacon only. Asked through node 3, the creation is
    answered once node 3 has the map: node 3 knows the table at once, and
    the header that carried the map version is not relayed."""
    rule = ["OUTPUT", "-p", "tcp", "-s", node(1).host, "-d", node(3).host, "--dport",
            str(node(3).port), "--syn", "-j", "REJECT", "--reject-with", "tcp-reset"]
    iptables("-A", *rule)
    try:
        for i in range(3):
            name = "seen-at-once-%d" % i
            status, headers, body = node(3).json("PUT", "/v1/tables/" + name, {"partition_count": 1})
            assert status == 201, (status, body)
            assert "x-cellar-map-version" not in {k.lower() for k in headers}, headers
            status, _, body = node(3).json("GET", "/v1/tables/" + name)
            assert status == 200, (status, body)
            assert node(3).json("DELETE", "/v1/tables/%s?purge=true" % name)[0] == 200
            assert node(3).json("GET", "/v1/tables/" + name)[0] == 404
    finally:
        iptables("-D", *rule)


def test_replica_counts_and_forgetting_nodes():
    status, _, body = node(2).json("PUT", "/v1/tables/many", {"replica_count": 4})
    assert status == 400 and body["code"] == "NOT_ENOUGH_NODES", body
    assert node(1).json("GET", "/v1/tables/many")[0] == 404
    # A node that holds data is not forgotten; an unknown one is not found
    # (asked through a node that is not meta).
    status, _, body = node(3).json("DELETE", "/v1/cluster/nodes/%s" % node(2).address)
    assert status == 409 and body["code"] == "NODE_HOLDS_DATA", body
    status, _, body = node(3).json("DELETE", "/v1/cluster/nodes/127.0.0.9:7000")
    assert status == 404 and body["code"] == "NOT_FOUND", body
    status, _, body = node(3).json("POST", "/v1/cluster/nodes/127.0.0.9:7000/drain")
    assert status == 404 and body["code"] == "NOT_FOUND", body


def test_internal_endpoints_take_the_cluster_secret_only():
    beacon = json.dumps({"address": "127.0.0.9:7000", "roles": ["data"], "version": 0,
                         "replicas": []}).encode()
    hdr = {"Content-Type": "application/json"}
    status, hdrs, _ = node(1).request("POST", "/internal/v1/beacon", beacon, hdr)
    assert status == 401 and "www-authenticate" in hdrs
    bad = dict(hdr, Authorization="Bearer not-the-secret-at-all")
    assert node(1).request("POST", "/internal/v1/beacon", beacon, bad)[0] == 401
    with open(cluster.secret) as f:
        secret = f.read().strip()
    good = dict(hdr, Authorization="Bearer " + secret)
    status, _, body = node(2).request("POST", "/internal/v1/beacon", beacon, good)
    assert status == 503 and json.loads(body)["code"] == "META_UNAVAILABLE"  # node 2 is not meta
    # A request relayed to a node that does not serve its partition (the
    # relaying node's map was stale) is refused with 421, never relayed on.
    create("misdirected", partition_count=4)
    h = remote_hashkeys("misdirected", 2, 1)[0]
    relayed = {"Authorization": "Bearer " + secret, "X-Cellar-Forwarded": "1"}
    status, _, body = node(2).request("GET", cell("misdirected", h, "s"), None, relayed)
    assert status == 421 and json.loads(body)["code"] == "NOT_PRIMARY", (status, body)
    status, _, body = node(2).request("PUT", cell("misdirected", h, "s"), b"v", relayed)
    assert status == 421, (status, body)
    assert node(1).request("GET", cell("misdirected", h, "s"))[0] == 404  # nothing written


def queued_bytes(server, client):
    """Bytes a node has received from another and not yet read, over all
    their connections (ss: Recv-Q of the server's sockets)."""
    import subprocess
    out = subprocess.run(["ss", "-tnH", "state", "established", "src", "%s:%d" % (server.host, server.port),
                          "dst", client.host], check=True, capture_output=True, text=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if line.strip())


def test_a_primary_that_is_down_or_frozen():
    create("faults", partition_count=4)
    h = None
    t = table_map("faults")
    for i in range(1000):
        cand = "f-%d" % i
        if t["partitions"][partition_of(cand.encode(), 4)]["primary"] == node(2).address:
            h = cand
            break
    path = cell("faults", h, "s")
    assert node(3).request("PUT", path, b"v")[0] == 201
    # Frozen: the request reaches it and no answer comes: a write's fate is unknown.
    node(2).proc.send_signal(signal.SIGSTOP)
    try:
        status, hdrs, body = node(3).json("PUT", path, {"x": 1})
        assert status == 504 and body["code"] == "OUTCOME_UNKNOWN", (status, body)
        status, hdrs, body = node(3).json("GET", path)
        assert status == 503 and body["code"] == "NO_PRIMARY" and hdrs.get("retry-after"), body
    finally:
        node(2).proc.send_signal(signal.SIGCONT)
    # Killed with a relayed write waiting in its socket, sent on a
    # kept-alive connection: the new connection the relay then tries is
    # refused, and still the write's fate is unknown (it left).
    assert node(3).request("PUT", path, b"warm")[0] == 204
    node(2).proc.send_signal(signal.SIGSTOP)
    answer = []
    writer = threading.Thread(target=lambda: answer.append(node(3).json("PUT", path, {"x": 3})))
    writer.start()
    wait_for(lambda: queued_bytes(node(2), node(3)) > 0, 10, "the write to wait in node 2's socket")
    node(2).kill9()
    writer.join(30)
    status, _, body = answer[0]
    assert status == 504 and body["code"] == "OUTCOME_UNKNOWN", (status, body)
    # Down: nothing reaches it; nothing was applied.
    status, hdrs, body = node(3).json("PUT", path, {"x": 2})
    assert status == 503 and body["code"] == "NO_PRIMARY" and hdrs.get("retry-after"), body
    wait_for(lambda: {n["address"]: n["state"] for n in node(1).json("GET", "/v1/cluster")[2]["nodes"]}
             [node(2).address] == "unreachable", 15, "meta to see node 2 unreachable")
    # Restarted on its data directory: it rejoins and serves its replicas again.
    node(2).start()
    cluster.wait_formed()
    status, _, body = node(3).request("GET", path)
    # {"x": 3} was never read; {"x": 1}, whose fate was unknown, may have
    # been read after SIGCONT and applied after "warm".
    assert status == 200 and body in (b"warm", b'{"x": 1}'), (status, body)


def test_a_frozen_meta_judges_no_node_by_its_own_silence():
    """Meta frozen past fd_grace_ms (SIGSTOP here; a synced save that holds
    its lock that long does the same) heard no beacon meanwhile: woken, it
    does not count that time as the nodes' silence, so no node is judged
    unreachable and the map does not change."""
    meta = node(1)
    seen = len(meta.log_text())
    before = meta.json("GET", "/v1/cluster")[2]
    meta.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(3.5)  # the fault's length: past the 2 s grace period
    finally:
        meta.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: "liveness ran" in meta.log_text()[seen:], 10, "meta to see it ran late")
    # A few beacon periods after waking, still nobody was judged.
    late = time.monotonic()
    wait_for(lambda: time.monotonic() - late > 1.5 and
             all(n["state"] == "alive" for n in meta.json("GET", "/v1/cluster")[2]["nodes"]),
             10, "a second and a half of beacons after waking")
    assert "is unreachable" not in meta.log_text()[seen:], meta.log_text()[seen:]
    assert before["nodes"] == meta.json("GET", "/v1/cluster")[2]["nodes"]


def test_meta_down_and_restarted():
    """With the meta server down, the other nodes keep serving the
    partitions they hold (beacons fail; nothing else needs meta) and table
    changes are 503 META_UNAVAILABLE; restarted, meta serves a newer map
    (its epoch grows) that every node takes, and table changes work again."""
    create("metadown", partition_count=8)
    t = table_map("metadown")
    on2 = next("m-%d" % i for i in range(1000)
               if t["partitions"][partition_of(b"m-%d" % i, 8)]["primary"] == node(2).address)
    path = cell("metadown", on2, "s")
    assert node(3).request("PUT", path, b"before")[0] == 201
    node(1).kill9()
    try:
        for i in range(20):
            assert node(3).request("PUT", path, b"during-%d" % i)[0] == 204
        assert node(2).request("GET", path)[2] == b"during-19"
        status, hdrs, body = node(3).json("PUT", "/v1/tables/while-meta-is-down", {})
        assert status == 503 and body["code"] == "META_UNAVAILABLE" and hdrs.get("retry-after"), body
    finally:
        node(1).start()
    cluster.wait_formed()
    assert node(3).json("PUT", "/v1/tables/after-meta", {"partition_count": 2})[0] == 201
    for via in (1, 2, 3):
        assert node(via).json("GET", "/v1/tables/after-meta")[0] == 200
    assert node(1).request("GET", path)[2] == b"during-19"


if __name__ == "__main__":
    run_module(globals())

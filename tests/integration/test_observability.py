"""What a node tells about its speed: the slow request log (slow_request_ms)
and the /metrics figures the benchmark reads (per-partition RocksDB gauges,
queue depths, the block cache, group commit times, latency by route and
method)."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cellar import Node, cell_path, run_tests, wait_for  # noqa: E402

SLOW = re.compile(r"slow request: (\S+) (\S+) -> (\d+) in ([\d.]+) ms "
                  r"\(route (\S+), partition (-?\d+); ms: ([^)]*)\)")


def big_batch(table, n=1000, size=1024):
    """A batch-write of n cells of size bytes, all in row "slow": one
    partition, one group commit of about n * size bytes."""
    items = [{"hashkey": "slow", "sortkey": "s%04d" % i, "value": "x" * size} for i in range(n)]
    return "/v1/tables/%s/batch-write" % table, {"set": items}


def slow_lines(node):
    return [m.groups() for m in SLOW.finditer(node.log_text())]


def test_slow_request_logged_with_route_partition_and_phases():
    # 1 ms: a 1 MB batch-write (JSON parse, apply, one commit) takes longer
    # than that on any machine; the loop only bounds the attempt.
    node = Node(config={"slow_request_ms": 1}).start()
    try:
        assert node.json("PUT", "/v1/tables/t", {"partition_count": 4})[0] == 201
        path, doc = big_batch("t")

        def logged():
            assert node.json("POST", path, doc)[0] == 200
            return [g for g in slow_lines(node) if g[4] == "batch_write"]
        lines = wait_for(logged, 30, "a slow batch-write in the log")
        method, url, status, total, route, partition, phases = lines[0]
        assert (method, url, status) == ("POST", path, "200"), lines[0]
        assert float(total) >= 1.0
        for phase in ("read", "handler", "queued", "commit", "resume", "complete", "send"):
            assert re.search(r"\b%s [\d.]+" % phase, phases), phases
        # A cell write names its partition.
        status, hdrs, _ = node.request("PUT", cell_path("t", "h", "s"), b"v" * 100000)
        assert status == 201
        slow_cells = [g for g in slow_lines(node) if g[4] == "cell"]
        for g in slow_cells:
            assert int(g[5]) in range(4), g
    finally:
        node.stop()
        node.cleanup()


def test_slow_request_threshold_and_off():
    # The same work under a threshold it never reaches, and with the log
    # off (0): no line at all.
    for value in (3600000, 0):
        node = Node(config={"slow_request_ms": value}).start()
        try:
            assert node.json("PUT", "/v1/tables/t", {"partition_count": 4})[0] == 201
            path, doc = big_batch("t")
            for _ in range(3):
                assert node.json("POST", path, doc)[0] == 200
            assert node.request("GET", "/metrics")[0] == 200
            assert slow_lines(node) == [], (value, node.log_text())
            assert "slow request" not in node.log_text()
        finally:
            node.stop()
            node.cleanup()


def metric(text, name, labels=None):
    """The value of one sample (labels: a dict that must match exactly)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"(\w+)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if labels is None and not got or labels == got:
            return float(m.group(3))
    return None


def test_metrics_per_partition_cache_and_commit_times():
    node = Node().start()
    try:
        assert node.json("PUT", "/v1/tables/m", {"partition_count": 4})[0] == 201
        text = node.request("GET", "/metrics")[2].decode()
        for family, kind in (("cellar_write_fsync_seconds", "histogram"),
                             ("cellar_partition_write_queue_depth", "gauge"),
                             ("cellar_rocksdb_estimated_keys", "gauge"),
                             ("cellar_rocksdb_sst_bytes", "gauge"),
                             ("cellar_rocksdb_memtable_bytes", "gauge"),
                             ("cellar_rocksdb_pending_compaction_bytes", "gauge"),
                             ("cellar_rocksdb_block_cache_usage_bytes", "gauge"),
                             ("cellar_rocksdb_block_cache_hits_total", "counter"),
                             ("cellar_rocksdb_block_cache_misses_total", "counter"),
                             ("cellar_rocksdb_block_cache_hit_ratio", "gauge")):
            assert "# TYPE %s %s" % (family, kind) in text, family
        for p in range(4):
            labels = {"table": "m", "partition": str(p)}
            assert metric(text, "cellar_partition_write_queue_depth", labels) == 0
            assert metric(text, "cellar_rocksdb_estimated_keys", labels) == 0
            assert metric(text, "cellar_rocksdb_memtable_bytes", labels) > 0
        assert metric(text, "cellar_partition_write_queue_depth",
                      {"table": "m", "partition": "4"}) is None
        commits = metric(text, "cellar_write_fsync_seconds_count")

        # 20 cells in one row: its partition counts them, a group commit
        # is timed, and the cell PUT has its own latency histogram.
        status, _, doc = node.json("POST", "/v1/tables/m/batch-write", {
            "set": [{"hashkey": "row", "sortkey": "s%02d" % i, "value": "v"} for i in range(20)]})
        assert status == 200 and doc["results"][0]["status"] == 200, doc
        assert node.request("PUT", cell_path("m", "row", "extra"), b"v")[0] == 201
        assert node.request("GET", cell_path("m", "row", "extra"))[0] == 200

        # A request is counted when libmicrohttpd reports it complete, which
        # may come just after the client has read the whole answer.
        def counted():
            text = node.request("GET", "/metrics")[2].decode()
            done = all(metric(text, "cellar_http_request_duration_seconds_count",
                              {"route": "cell", "method": m}) for m in ("GET", "PUT"))
            return text if done else None

        text = wait_for(counted, 10, "the cell GET and PUT in the request histogram")
        keys = [metric(text, "cellar_rocksdb_estimated_keys", {"table": "m", "partition": str(p)})
                for p in range(4)]
        assert sorted(keys)[-1] == 21 and sum(keys) == 21, keys
        assert metric(text, "cellar_write_fsync_seconds_count") == commits + 2
        assert metric(text, "cellar_write_fsync_seconds_bucket", {"le": "+Inf"}) == commits + 2
        for method in ("GET", "PUT"):
            labels = {"route": "cell", "method": method}
            assert metric(text, "cellar_http_request_duration_seconds_count", labels) == 1, method
            assert metric(text, "cellar_http_request_duration_seconds_bucket",
                          dict(labels, le="+Inf")) == 1, method
        ratio = metric(text, "cellar_rocksdb_block_cache_hit_ratio")
        assert 0.0 <= ratio <= 1.0
        assert metric(text, "cellar_rocksdb_block_cache_capacity_bytes") == 64 << 20
    finally:
        node.stop()
        node.cleanup()


if __name__ == "__main__":
    run_tests(globals())

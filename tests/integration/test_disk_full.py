"""Full disk: a node whose data directory runs out of space.

The test re-executes itself in a private mount namespace (unshare --mount,
so nothing is left mounted when it ends) and mounts a 64 MiB tmpfs as the
node's data directory (its log file stays outside). It writes cells that it records as acknowledged, fills
the filesystem with a filler file, then keeps writing unique cells until
every partition refuses writes. Then:

- every write is answered 201 (acknowledged) or 507 INSUFFICIENT_STORAGE,
  problem+json, nothing else; a DELETE is refused with 507 too;
- reads go on: every acknowledged cell reads back with its exact value;
- /readyz says "degraded" naming the partitions short of space, /metrics
  counts them and the failed group commits, the log says the disk is full
  once per partition (not once per failed write);
- it removes the filler: without a restart, /readyz turns "ready" again
  and a write to each partition is acknowledged with ETag = the last
  acknowledged decree of that partition + 1 (refused writes consumed no
  decree);
- after a restart every acknowledged cell is there and no refused one is.

Needs root for the mount namespace; where the environment clearly cannot
make one (not root, or unshare refused with EPERM) it reports SKIPPED with
the reason, and the summary line counts nothing.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
from cellar import (Node, cell_path, metric, mount_namespace_skip_reason,  # noqa: E402
                    partition_of, wait_for)
from oas import Spec  # noqa: E402

SPEC = Spec(os.path.join(os.path.dirname(__file__), "..", "..", "openapi.yaml"))

NS_FLAG = "CELLAR_DISK_FULL_NS"
FS_BYTES = 64 << 20
LEAVE_FREE = 3 << 20      # what the filler leaves for the node
PARTITIONS = 4
VALUE_BYTES = 60000
MAX_ATTEMPTS = 3000       # bounds the fill loop (3000 * 60 kB >> 64 MiB)


def value_of(i):
    head = b"v%d-" % i
    return (head * (VALUE_BYTES // len(head) + 1))[:VALUE_BYTES]


def disk_full(base, mnt):
    node = Node(data_dir=base)  # its log stays outside the small filesystem
    acked = {}                          # (hashkey, sortkey) -> value
    refused = []                        # keys whose only PUT got 507
    last_etag = [0] * PARTITIONS        # last acknowledged decree per partition
    try:
        node.start()
        assert node.json("PUT", "/v1/tables/full", {"partition_count": PARTITIONS})[0] == 201
        conn = node.conn()

        def put(i):
            key = ("row%d" % i, "c")
            val = value_of(i)
            path = cell_path("full", *key)
            status, hdrs, body = node.request("PUT", path, body=val, conn=conn)
            SPEC.validate("PUT", path, status, hdrs, body)
            p = partition_of(key[0], PARTITIONS)
            if status == 201:
                acked[key] = val
                etag = int(hdrs["etag"].strip('"'))
                assert etag == last_etag[p] + 1, (p, etag, last_etag[p])
                last_etag[p] = etag
            else:
                assert status == 507, (status, body)
                assert hdrs.get("content-type") == "application/problem+json", hdrs
                assert json.loads(body)["code"] == "INSUFFICIENT_STORAGE", body
                refused.append(key)
            return status, p

        for i in range(100):  # before the disk fills
            assert put(i)[0] == 201

        st = os.statvfs(mnt)
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            left = st.f_bavail * st.f_frsize - LEAVE_FREE
            chunk = b"\0" * (1 << 20)
            while left > 0:
                f.write(chunk[:min(left, len(chunk))])
                left -= len(chunk)

        full = set()
        i = 100
        while len(full) < PARTITIONS and i < 100 + MAX_ATTEMPTS:
            status, p = put(i)
            if status == 507:
                full.add(p)
            i += 1
        assert len(full) == PARTITIONS, "only partitions %s ran out of space" % sorted(full)
        attempts = i - 100
        acked_while_filling = len(acked) - 100

        # more refusals: a DELETE of an acknowledged cell, a row PATCH
        gone = next(iter(acked))
        status, _, body = node.request("DELETE", cell_path("full", *gone))
        assert status == 507, (status, body)
        status, _, body = node.json("PATCH", "/v1/tables/full/rows/%s" % gone[0],
                                    {"set": [{"sortkey": "x", "value": "y"}]})
        assert status == 507, (status, body)

        # reads go on, and nothing acknowledged is lost
        for key, val in acked.items():
            status, _, body = node.request("GET", cell_path("full", *key), conn=conn)
            assert status == 200 and body == val, (key, status, len(body))

        status, hdrs, body = node.request("GET", "/readyz")
        SPEC.validate("GET", "/readyz", status, hdrs, body)
        doc = json.loads(body)
        assert status == 200 and doc["status"] == "degraded", doc
        states = {(p["table"], p["partition"]): p["state"] for p in doc["partitions"]}
        assert states == {("full", p): "no_space" for p in range(PARTITIONS)}, doc
        assert metric(node, "cellar_partitions_by_state", 'state="no_space"') == PARTITIONS
        assert metric(node, "cellar_partition_state", 'table="full",partition="0"') == 1
        failures = metric(node, "cellar_write_batch_failures_total")
        assert failures >= len(refused), (failures, len(refused))
        log = node.log_text()
        assert log.count("the disk is full") == PARTITIONS, log

        # free the space: the node recovers by itself, no restart
        os.unlink(filler)
        t0 = time.monotonic()
        wait_for(lambda: node.json("GET", "/readyz")[2]["status"] == "ready", 60,
                 "readyz to say ready again")
        recovered_s = time.monotonic() - t0
        assert metric(node, "cellar_partitions_by_state", 'state="ok"') == PARTITIONS
        assert "writes resumed" in node.log_text()
        j = 100000
        resumed = set()
        while len(resumed) < PARTITIONS:
            status, p = put(j)  # asserts ETag == last acknowledged + 1
            assert status == 201, status
            resumed.add(p)
            j += 1

        node.stop()
        node.start()
        conn = node.conn()
        for key, val in acked.items():
            status, _, body = node.request("GET", cell_path("full", *key), conn=conn)
            assert status == 200 and body == val, (key, status, len(body))
        for key in refused:
            status = node.request("GET", cell_path("full", *key), conn=conn)[0]
            assert status == 404, (key, status)
        print("    %d writes while filling: %d acknowledged, %d refused with 507 (%d failed "
              "group commits); readable all along; ready again %.1fs after the space was freed; "
              "after a restart %d acknowledged cells intact, %d refused cells absent"
              % (attempts, acked_while_filling, len(refused), failures, recovered_s,
                 len(acked), len(refused)))
        assert node.stop() == 0
    except Exception:
        if node.log_path:
            print("    the node's log (last 4000 bytes):\n" + node.log_text()[-4000:])
        raise
    finally:
        node.cleanup()


def main():
    if os.environ.get(NS_FLAG) != "1":
        reason = mount_namespace_skip_reason("mounting a size-limited tmpfs")
        if reason:
            print("  SKIPPED (1 test): %s" % reason)
            print("0 passed, 0 failed", flush=True)
            sys.exit(0)
        env = dict(os.environ)
        env[NS_FLAG] = "1"
        sys.stdout.flush()
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private",
                               sys.executable, os.path.abspath(sys.argv[0])] + sys.argv[1:], env)
    base = tempfile.mkdtemp(prefix="cellar-full-")
    mnt = os.path.join(base, "data")  # the node's data directory
    os.mkdir(mnt)
    ok = False
    try:
        subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0700" % FS_BYTES,
                               "tmpfs", mnt])
        try:
            disk_full(base, mnt)
            ok = True
        finally:
            subprocess.call(["umount", "-l", mnt])
    except Exception:
        import traceback
        traceback.print_exc()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("  %s  test_disk_full_refuses_writes_serves_reads_and_recovers" % ("ok  " if ok else "FAIL"))
    print("%d passed, %d failed" % (1 if ok else 0, 0 if ok else 1), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

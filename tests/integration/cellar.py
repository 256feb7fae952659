"""Helpers for Cellar's integration tests: start and stop real cellard
processes on loopback, speak HTTP to them, and run test functions.

Every test runs the real binary ($CELLARD) over real sockets. Nothing here
sleeps to paper over a race: waits poll a condition against a deadline.
"""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

CELLARD = os.environ.get("CELLARD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "cellard")


def wait_for(cond, timeout, what):
    """Polls cond() until it returns a true value or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(0.02)


class Node:
    """One cellard process with its own data directory and log file."""

    def __init__(self, data_dir=None, config=None, args=None, ssl_context=None, headers=None):
        """args: extra command-line arguments; ssl_context: speak HTTPS with
        it; headers: sent with every request (e.g. Authorization)."""
        self.own_dir = data_dir is None
        self.dir = data_dir or tempfile.mkdtemp(prefix="cellar-it-")
        self.config = config or {}
        self.args = list(args or [])
        self.ssl_context = ssl_context
        self.headers = dict(headers or {})
        self.proc = None
        self.port = None
        self.log_path = None
        self.runs = 0
        self.host = "127.0.0.1"       # where the node listens
        self.listen = "127.0.0.1:0"   # --listen (port 0: one the kernel picks)
        self.source_address = None    # the address clients connect from (None: any)
        self.wrapper = []             # a command that runs cellard (it must exec it: same pid)

    def start(self, timeout=None):
        # CELLAR_START_TIMEOUT: slower runs (valgrind) wait longer.
        timeout = timeout or float(os.environ.get("CELLAR_START_TIMEOUT", "30"))
        self.runs += 1
        self.log_path = os.path.join(self.dir, "cellard-%d.log" % self.runs)
        os.makedirs(self.dir, exist_ok=True)
        args = self.wrapper + [CELLARD, "--listen", self.listen, "--data-dir",
                               os.path.join(self.dir, "data")]
        if self.config:
            path = os.path.join(self.dir, "cellard.conf")
            with open(path, "w") as f:
                for k, v in self.config.items():
                    f.write("%s = %s\n" % (k, v))
            args += ["--config", path]
        args += self.args
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

        def port():
            if self.proc.poll() is not None:
                raise AssertionError("cellard exited with %s:\n%s" % (self.proc.returncode, self.log_text()))
            m = re.search(r"on port (\d+)", self.log_text())
            return m and int(m.group(1))
        self.port = wait_for(port, timeout, "cellard to listen")
        wait_for(lambda: self.request("GET", "/readyz")[0] == 200, timeout, "readyz")
        return self

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def bugs(self):
        """The lines where the node caught itself breaking an invariant of
        its own (it logs them as "bug: ...")."""
        return [line for line in self.log_text().splitlines() if "bug: " in line]

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        assert not self.bugs(), self.bugs()

    def stop(self, timeout=60):
        """SIGTERM and wait; returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("cellard did not stop within %ss" % timeout)
        self.log.close()
        assert not self.bugs(), self.bugs()
        return self.proc.returncode

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def conn(self, timeout=None):
        # CELLAR_REQUEST_TIMEOUT: slower runs (valgrind) wait longer.
        timeout = timeout or float(os.environ.get("CELLAR_REQUEST_TIMEOUT", "30"))
        if self.ssl_context:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self.ssl_context,
                                               source_address=self.source_address)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout,
                                          source_address=self.source_address)

    def request(self, method, path, body=None, headers=None, conn=None):
        """One request; returns (status, headers dict (lower-case), body bytes)."""
        own = conn is None
        c = conn or self.conn()
        h = dict(self.headers)
        h.update(headers or {})
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        except (ConnectionError, OSError):
            if own:
                return None, {}, b""
            raise
        finally:
            if own:
                c.close()

    def json(self, method, path, doc=None, headers=None, conn=None):
        h = {"Content-Type": "application/json"} if doc is not None else {}
        h.update(headers or {})
        body = json.dumps(doc).encode() if doc is not None else None
        status, hdrs, data = self.request(method, path, body, h, conn)
        return status, hdrs, (json.loads(data) if data else None)


def make_test_pki(directory, names=("127.0.0.1",), ca=None):
    """A throwaway CA (unless ca=(ca_pem, ca_key) is given) and a server
    certificate for the IP addresses in names, made with openssl. Returns
    a dict with the paths: ca, ca_key, cert, key."""
    os.makedirs(directory, exist_ok=True)
    p = lambda n: os.path.join(directory, n)
    run = lambda *a: subprocess.run(a, check=True, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    if ca is None:
        run("openssl", "req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.pem"),
            "-days", "2", "-subj", "/CN=Cellar test CA")
        ca = (p("ca.pem"), p("ca.key"))
    run("openssl", "req", *ec, "-keyout", p("node.key"), "-out", p("node.csr"),
        "-subj", "/CN=%s" % names[0])
    with open(p("ext"), "w") as f:
        f.write("subjectAltName=%s\n" % ",".join("IP:" + n for n in names))
    run("openssl", "x509", "-req", "-in", p("node.csr"), "-CA", ca[0], "-CAkey", ca[1],
        "-CAcreateserial", "-out", p("node.pem"), "-days", "2", "-extfile", p("ext"))
    return {"ca": ca[0], "ca_key": ca[1], "cert": p("node.pem"), "key": p("node.key")}


def mount_namespace_skip_reason(need):
    """Why this environment clearly cannot make a private mount namespace
    (need says what for), or None when it should work."""
    if os.geteuid() != 0:
        return "not root: %s needs CAP_SYS_ADMIN" % need
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        msg = r.stdout.decode("utf-8", "replace").strip()
        if "Operation not permitted" in msg or "Permission denied" in msg:
            return "unshare --mount refused (%s): the container lacks CAP_SYS_ADMIN" % msg
    return None


def metric(node, name, labels=None):
    """The value of one /metrics sample; labels is the exact text inside
    the braces (none: a sample without labels)."""
    text = node.request("GET", "/metrics")[2].decode()
    sel = re.escape(name) + (r"\{%s\}" % re.escape(labels) if labels else "")
    m = re.search(r"^%s (\S+)$" % sel, text, re.M)
    assert m, "%s missing from /metrics" % sel
    return float(m.group(1))


def quote(b):
    """Percent-encodes bytes (or str) as one path segment."""
    if isinstance(b, str):
        b = b.encode()
    return urllib.parse.quote(b, safe="")


def cell_path(table, hashkey, sortkey):
    return "/v1/tables/%s/rows/%s/cells/%s" % (table, quote(hashkey), quote(sortkey))


def _crc64_table():
    poly = 0xC96C5795D7870F42  # ECMA-182, reflected
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC64 = _crc64_table()


def partition_of(hashkey, partition_count):
    """The partition of a row: crc64(hashkey) & (count - 1), CRC-64/XZ."""
    if isinstance(hashkey, str):
        hashkey = hashkey.encode()
    crc = 0xFFFFFFFFFFFFFFFF
    for b in hashkey:
        crc = _CRC64[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return (crc ^ 0xFFFFFFFFFFFFFFFF) & (partition_count - 1)


assert partition_of(b"123456789", 1 << 63) == 0x995dc9bbdf1939fa & ((1 << 63) - 1)


def run_tests(namespace):
    """Runs every test_* function of namespace in definition order in this
    process; prints one line per test and a final "N passed, N failed"."""
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    only = sys.argv[1:]
    passed = failed = 0
    for name, fn in tests:
        if only and name not in only:
            continue
        try:
            fn()
            print("  ok    %s" % name, flush=True)
            passed += 1
        except Exception:
            print("  FAIL  %s" % name, flush=True)
            traceback.print_exc()
            failed += 1
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)

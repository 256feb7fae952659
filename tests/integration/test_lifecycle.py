"""The node's lifecycle without systemd: the notification protocol on a
NOTIFY_SOCKET of the test's own, the watchdog's cadence and its refusal to
ping for a wedged writer, socket activation through systemd-socket-activate,
reload on SIGHUP, failed starts, and a graceful stop (SIGTERM) in the
middle of a write storm that loses no acknowledged write.

The notify socket is an AF_UNIX datagram socket bound in the test's
directory; every datagram the node sends is recorded with its arrival time
(time.monotonic), so the tests check the exact order of READY=1, WATCHDOG=1,
RELOADING=1 and STOPPING=1, and the spacing of the pings.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from cellar import CELLARD, Node, cell_path, run_tests, wait_for  # noqa: E402

WATCHDOG_USEC = 1000000  # pings every 0.5 s


class Notify:
    """A NOTIFY_SOCKET that records (time, {key: value}) per datagram."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.monotonic()
            fields = {}
            for line in data.decode("utf-8", "replace").split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            with self.lock:
                self.messages.append((t, fields))

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def times(self, key, value=None):
        return [t for t, f in self.snapshot() if key in f and (value is None or f[key] == value)]

    def wait(self, key, value=None, count=1, timeout=30):
        return wait_for(lambda: len(self.times(key, value)) >= count and self.times(key, value),
                        timeout, "%d x %s=%s" % (count, key, value or "*"))

    def close(self):
        self.done = True
        self.thread.join(5)
        self.sock.close()

    def transcript(self, t0):
        """One line per datagram, with its time since t0."""
        out = []
        for t, f in self.snapshot():
            out.append("%7.3fs  %s" % (t - t0, "  ".join("%s=%s" % kv for kv in f.items())))
        return "\n".join(out)


class NotifyNode(Node):
    """A Node started with NOTIFY_SOCKET (and more environment) set."""

    def __init__(self, env=None, **kw):
        super().__init__(**kw)
        self.env = env or {}
        self.notify = Notify(self.dir)
        self.t0 = None

    def start(self, timeout=30, wait_ready=True):
        self.runs += 1
        self.log_path = os.path.join(self.dir, "cellard-%d.log" % self.runs)
        args = [CELLARD, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(self.dir, "data")]
        if self.config:
            args += ["--config", self.write_config(self.config)]
        env = dict(os.environ)
        env.update(self.env)
        env["NOTIFY_SOCKET"] = self.notify.path
        self.log = open(self.log_path, "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait_ready:
            t0 = self.t0
            wait_for(lambda: [t for t in self.notify.times("READY", "1") if t >= t0], timeout,
                     "READY=1")
            m = re.search(r"on port (\d+)", self.log_text())
            self.port = int(m.group(1))
        return self

    def write_config(self, config):
        path = os.path.join(self.dir, "cellard.conf")
        with open(path, "w") as f:
            for k, v in config.items():
                f.write("%s = %s\n" % (k, v))
        return path

    def cleanup(self):
        super().cleanup()
        self.notify.close()


def make_table(node, name, partitions):
    status, _, body = node.json("PUT", "/v1/tables/" + name, {"partition_count": partitions})
    assert status == 201, (status, body)


def prepared_node(partitions, **kw):
    """A NotifyNode whose data directory already holds one table (so the
    next start opens partitions and starts writers)."""
    n = NotifyNode(**kw)
    plain = Node(data_dir=n.dir)
    plain.start()
    make_table(plain, "t", partitions)
    rc = plain.stop()
    assert rc == 0, (rc, plain.log_text())
    return n


def test_notify_sequence_and_watchdog_cadence():
    node = prepared_node(16, env={"WATCHDOG_USEC": str(WATCHDOG_USEC)})
    try:
        node.start()
        pings = node.notify.wait("WATCHDOG", "1", count=8, timeout=30)
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(30) == 0
        node.log.close()
        msgs = node.notify.snapshot()
        print("    observed (WATCHDOG_USEC=%d):" % WATCHDOG_USEC)
        for line in node.notify.transcript(node.t0).splitlines():
            print("      " + line)

        kinds = []
        for _t, f in msgs:
            for k in ("READY", "WATCHDOG", "STOPPING", "RELOADING"):
                if k in f:
                    kinds.append(k)
        # READY once, then only pings, then STOPPING once, then nothing but STATUS.
        assert kinds[0] == "READY" and kinds.count("READY") == 1, kinds
        assert kinds[-1] == "STOPPING" and kinds.count("STOPPING") == 1, kinds
        assert set(kinds[1:-1]) == {"WATCHDOG"}, kinds

        statuses = [f["STATUS"] for _t, f in msgs if "STATUS" in f]
        opening = [s for s in statuses if s.startswith("opening partition")]
        assert opening == ["opening partition %d/16" % i for i in range(1, 17)], opening
        ready = [f for _t, f in msgs if "READY" in f][0]
        assert ready["STATUS"] == "serving 1 tables, 16 partitions", ready
        assert any("EXTEND_TIMEOUT_USEC" in f for _t, f in msgs[:3]), msgs[:3]
        stopping = [f for _t, f in msgs if "STOPPING" in f][0]
        assert stopping["STATUS"].startswith("stopping: draining"), stopping
        assert int(stopping["EXTEND_TIMEOUT_USEC"]) > 30 * 1000000, stopping
        assert statuses[-1] == "stopped cleanly", statuses

        # Cadence: half the interval, never close to the interval itself.
        ready_t = [t for t, f in msgs if "READY" in f][0]
        pings = [t for t, f in msgs if "WATCHDOG" in f]
        assert pings[0] - ready_t < 0.25, pings[0] - ready_t
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        half = WATCHDOG_USEC / 2e6
        assert all(0.6 * half < g < 1.5 * half for g in gaps), gaps
        assert abs(sum(gaps) / len(gaps) - half) < 0.1, gaps

        # Every log line: one "<N>" syslog priority prefix, one event.
        lines = node.log_text().splitlines()
        assert lines and all(re.match(r"^<[0-7]>[^<]", x) for x in lines), lines
    finally:
        node.cleanup()


def test_no_pings_without_watchdog_or_for_another_pid():
    for env in ({}, {"WATCHDOG_USEC": str(WATCHDOG_USEC), "WATCHDOG_PID": "1"}):
        node = NotifyNode(env=env)
        try:
            node.start()
            # Long enough for three pings if the node were pinging.
            assert node.request("GET", "/readyz")[0] == 200
            deadline = time.monotonic() + 1.6
            while time.monotonic() < deadline:
                assert not node.notify.times("WATCHDOG"), env
                time.sleep(0.05)
            assert node.stop() == 0
        finally:
            node.cleanup()


def test_wedged_writer_stops_the_pings():
    # test_wedge_writer_after_s is a TEST ONLY setting: every writer stops
    # working (and beating) that long after it starts.
    node = prepared_node(2, env={"WATCHDOG_USEC": str(WATCHDOG_USEC)},
                         config={"test_wedge_writer_after_s": 2})
    try:
        node.start()
        assert node.request("PUT", cell_path("t", "k", "s"), body=b"v")[0] == 201
        stalled = wait_for(lambda: "not pinging systemd: writer" in node.log_text()
                           and time.monotonic(), 30, "the watchdog to refuse")
        pings = node.notify.times("WATCHDOG")
        assert len(pings) >= 4, pings  # it pinged while healthy
        # From the refusal on: silence for more than two intervals.
        deadline = stalled + 2.2
        while time.monotonic() < deadline:
            late = [t for t in node.notify.times("WATCHDOG") if t > stalled]
            assert not late, "pinged %.2fs after refusing" % (late[0] - stalled)
            time.sleep(0.05)
        log = node.log_text()
        assert "wedged on purpose (test_wedge_writer_after_s" in log
        assert re.search(r"<3>watchdog: not pinging systemd: writer w\d+\.\d+ has not beaten", log)
        assert log.count("not pinging systemd") == 1, log  # one line per event
        assert node.stop() == 0  # the stop releases the wedge
    finally:
        node.cleanup()


def server_side_drained(port, client):
    """True when the node's end of the client's connection has no unread
    bytes (/proc/net/tcp rx_queue 0): the node has read the request."""
    def hexaddr(addr):
        return "%s:%04X" % ("".join("%02X" % int(x) for x in reversed(addr[0].split("."))),
                            addr[1])
    local, remote = hexaddr(("127.0.0.1", port)), hexaddr(client.getsockname())
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                return int(fields[4].split(":")[1], 16) == 0
    return False


def drain_attempt():
    """One try of test_sigterm_drains...: None when the PUT had not yet been
    dispatched at the SIGTERM (the log says 0 requests in flight), so the
    scenario did not happen and must be tried again."""
    node = prepared_node(1, config={"test_wedge_writer_after_s": 1, "shutdown_timeout_s": 2})
    try:
        node.start()
        wait_for(lambda: "wedged on purpose" in node.log_text(), 30, "the wedge")
        keep = node.conn()
        assert node.request("GET", "/readyz", conn=keep)[0] == 200
        put = socket.create_connection(("127.0.0.1", node.port), timeout=30)
        put.sendall(b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nq"
                    % cell_path("t", "queued", "c").encode())
        wait_for(lambda: server_side_drained(node.port, put), 30, "the node to read the PUT")
        node.proc.send_signal(signal.SIGTERM)
        node.notify.wait("STOPPING", "1")
        t0 = time.monotonic()
        # The PUT counts; so may the /readyz just answered on keep, until
        # MHD's completion callback for it has run (slow under ASan).
        counted = re.search(r"SIGTERM: stopping, (\d+) requests in flight", node.log_text())
        assert counted, node.log_text()[-2000:]
        if counted.group(1) == "0":
            return None
        assert counted.group(1) in ("1", "2"), counted.group(0)
        assert node.request("GET", "/readyz", conn=keep)[0] == 503
        assert node.request("GET", "/healthz", conn=keep)[0] == 200
        try:
            socket.create_connection(("127.0.0.1", node.port), timeout=2).close()
            accepted = True
        except OSError:
            accepted = False
        assert not accepted, "a new connection was accepted while stopping"
        assert node.proc.wait(30) == 0
        waited = time.monotonic() - t0
        assert 1.0 < waited < 10, waited  # the bounded wait, and not much more
        answer = put.recv(100)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 201"), answer  # or cut by the stop
        log = node.log_text()
        assert "requests still in flight after 2000 ms" in log
        assert "wedge released by stop" in log
        assert log.rstrip().endswith("stopped cleanly")
        node.log.close()
        plain = Node(data_dir=node.dir).start()
        try:
            assert plain.request("GET", cell_path("t", "queued", "c"))[2] == b"q"
            assert plain.stop() == 0
        finally:
            plain.cleanup()
        return True
    finally:
        node.cleanup()


def test_sigterm_drains_readyz_503_and_bounded_wait():
    # A write waits in a wedged writer's queue: SIGTERM must turn /readyz 503,
    # stop accepting, wait shutdown_timeout_s for the request, then close the
    # partitions (the queued write commits: the stop releases the wedge) and
    # exit 0.
    for _attempt in range(3):
        if drain_attempt():
            return
    raise AssertionError("the PUT was never in flight at the SIGTERM in 3 tries")


class StormWriter(threading.Thread):
    """PUTs and DELETEs its own cells over one keep-alive connection until
    the node refuses (503) or goes away; records the acknowledged state of
    each cell and the one operation whose answer never came."""

    def __init__(self, node, idx):
        super().__init__(daemon=True)
        self.node, self.idx = node, idx
        self.acked = {}
        self.uncertain = None
        self.refused = 0
        self.error = None
        self.acks = 0

    def run(self):
        conn = self.node.conn(timeout=30)
        seq = 0
        try:
            while True:
                seq += 1
                key = ("r%d-%d" % (self.idx, seq % 13), "c%d" % (seq % 31))
                value = None if seq % 9 == 0 else ("w%d-s%d" % (self.idx, seq)).encode()
                self.uncertain = (key, value)
                if value is None:
                    status = self.node.request("DELETE", cell_path("storm", *key), conn=conn)[0]
                    ok = status == 204
                else:
                    status = self.node.request("PUT", cell_path("storm", *key), body=value,
                                               conn=conn)[0]
                    ok = status in (201, 204)
                if ok:
                    self.acked[key] = value
                    self.acks += 1
                    self.uncertain = None
                elif status == 503:
                    self.refused += 1  # refused before it was queued: not applied
                    self.uncertain = None
                    return
                else:
                    raise AssertionError("status %s" % status)
        except (ConnectionError, OSError, __import__("http.client").client.HTTPException):
            return
        except Exception as e:
            self.error = e


def test_sigterm_during_write_storm_loses_no_acknowledged_write():
    node = NotifyNode()
    try:
        node.start()
        make_table(node, "storm", 8)
        writers = [StormWriter(node, i) for i in range(16)]
        for w in writers:
            w.start()
        wait_for(lambda: sum(w.acks for w in writers) >= 3000, 120, "3000 acknowledged writes")
        node.proc.send_signal(signal.SIGTERM)
        for w in writers:
            w.join(60)
            assert not w.is_alive(), "writer %d still running" % w.idx
            assert w.error is None, "writer %d: %s" % (w.idx, w.error)
        assert node.proc.wait(60) == 0
        node.log.close()
        assert node.log_text().rstrip().endswith("stopped cleanly")

        node.start()
        conn = node.conn()
        checked = lost = 0
        for w in writers:
            for key, value in w.acked.items():
                status, _, body = node.request("GET", cell_path("storm", *key), conn=conn)
                got = body if status == 200 else None
                allowed = [value]
                if w.uncertain and w.uncertain[0] == key:
                    allowed.append(w.uncertain[1])
                checked += 1
                if got not in allowed:
                    lost += 1
                    print("    %r: expected %r, got %r" % (key, value, got))
        print("    %d writes acknowledged, %d refused with 503 at the stop, %d cells checked, "
              "%d lost" % (sum(w.acks for w in writers), sum(w.refused for w in writers), checked,
                           lost))
        assert checked > 100 and lost == 0
        assert node.stop() == 0
    finally:
        node.cleanup()


def test_sighup_reloads_limits_and_log_level():
    node = NotifyNode(config={"max_value_bytes": "1K", "log_level": "info"})
    try:
        node.start()
        make_table(node, "r", 1)
        path = cell_path("r", "h", "s")
        assert node.request("PUT", path, body=b"x" * 2048)[0] == 413
        assert node.request("GET", "/v1/tables/r/rows/h?limit=60")[0] == 200
        node.write_config({"max_value_bytes": "4K", "log_level": "debug",
                           "http_threads": 3, "write_queue_max": 7,
                           "cors_origins": "https://example.org", "max_page_cells": 50})
        node.proc.send_signal(signal.SIGHUP)
        ready = node.notify.wait("READY", "1", count=2)
        reloading = node.notify.times("RELOADING", "1")
        assert len(reloading) == 1 and reloading[0] <= ready[1], (reloading, ready)
        assert node.request("PUT", path, body=b"x" * 2048)[0] == 201
        assert node.request("PUT", path, body=b"x" * 8192)[0] == 413
        assert node.request("GET", "/v1/tables/r/rows/h?limit=60")[0] == 400  # max_page_cells 50
        log = node.log_text()
        assert "reload: max_value_bytes changed" in log and "reload: log_level changed" in log
        assert "http_threads changed in the file; it takes effect at the next start" in log
        assert "write_queue_max changed in the file; it takes effect at the next start" in log
        assert "cors_origins changed in the file; it takes effect at the next start" in log
        assert "3 settings applied, 3 need a restart" in log, log
        make_table(node, "after", 1)
        wait_for(lambda: re.search(r"<7>writer w\d+\.0: started", node.log_text()), 10,
                 "a debug line once log_level = debug")

        # A broken file: the running settings stay, READY=1 comes back.
        with open(os.path.join(node.dir, "cellard.conf"), "w") as f:
            f.write("max_value_bytes = lots\n")
        node.proc.send_signal(signal.SIGHUP)
        node.notify.wait("READY", "1", count=3)
        failed = [f for _t, f in node.notify.snapshot() if f.get("STATUS", "").startswith(
            "reload failed")]
        assert failed, node.notify.snapshot()[-3:]
        assert node.request("PUT", path, body=b"x" * 2048)[0] == 204
        assert node.request("PUT", path, body=b"x" * 8192)[0] == 413
        assert "reload failed, the running configuration stays" in node.log_text()
        assert node.stop() == 0
    finally:
        node.cleanup()


def test_failed_starts_send_errno_and_status():
    tmp = tempfile.mkdtemp(prefix="cellar-it-")
    notify = Notify(tmp)
    env = dict(os.environ, NOTIFY_SOCKET=notify.path)

    def failure(args, rc):
        before = len(notify.snapshot())
        r = subprocess.run([CELLARD] + args, env=env, stderr=subprocess.PIPE)
        assert r.returncode == rc, (r.returncode, r.stderr)
        wait_for(lambda: any("ERRNO" in f for _t, f in notify.snapshot()[before:]), 10, "ERRNO=")
        msgs = [f for _t, f in notify.snapshot()[before:]]
        assert not any("READY" in f for f in msgs), msgs
        lines = r.stderr.decode().splitlines()
        assert lines and all(re.match(r"^<[0-7]>", x) for x in lines), lines
        return [f for f in msgs if "ERRNO" in f][-1], r.stderr.decode()
    try:
        # The data directory is below a file.
        blocker = os.path.join(tmp, "file")
        open(blocker, "w").close()
        msg, _err = failure(["--data-dir", blocker + "/data", "--listen", "127.0.0.1:0"], 1)
        assert msg["ERRNO"] == "20", msg  # ENOTDIR
        assert msg["STATUS"].startswith("failed to start: cannot create data directory"), msg

        # The port is taken.
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        try:
            msg, _err = failure(["--data-dir", os.path.join(tmp, "d2"), "--listen",
                                 "127.0.0.1:%d" % port], 1)
        finally:
            busy.close()
        assert msg["STATUS"].startswith("failed to start: cannot listen on 127.0.0.1:%d" % port), msg
        assert msg["ERRNO"] == "98", msg  # EADDRINUSE

        # A bad config file: exit 2, which the units do not restart.
        bad = os.path.join(tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write("max_value_bytes = lots\n")
        msg, err = failure(["--config", bad], 2)
        assert msg["ERRNO"] == "22" and "bad.conf:1: max_value_bytes" in msg["STATUS"], msg
        assert err.startswith("<3>"), err

        # A bad option: one line, exit 2.
        msg, err = failure(["--bogus"], 2)
        assert msg["ERRNO"] == "22" and "--bogus" in msg["STATUS"], msg
    finally:
        notify.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_socket_activation_without_systemd():
    # systemd-socket-activate listens, starts the node on the first
    # connection and passes the socket as fd 3 (LISTEN_FDS=1).
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    node = NotifyNode(env={"WATCHDOG_USEC": str(WATCHDOG_USEC)})
    try:
        env = dict(os.environ, NOTIFY_SOCKET=node.notify.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
        node.log_path = os.path.join(node.dir, "cellard-1.log")
        node.log = open(node.log_path, "wb")
        node.proc = subprocess.Popen(
            ["systemd-socket-activate", "-l", "127.0.0.1:%d" % port, "-E", "NOTIFY_SOCKET",
             "-E", "WATCHDOG_USEC", CELLARD, "--listen", "127.0.0.1:1",
             "--data-dir", os.path.join(node.dir, "data")],
            stdout=node.log, stderr=subprocess.STDOUT, env=env)

        def listening():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        # Not started before a connection: no notification yet.
        wait_for(lambda: "Listening on" in node.log_text(), 30, "systemd-socket-activate")
        assert not node.notify.snapshot()
        node.port = port
        assert listening()  # the first connection starts it
        node.notify.wait("READY", "1")
        assert node.request("GET", "/readyz")[0] == 200
        node.notify.wait("WATCHDOG", "1", count=2)  # the probe works on an inherited socket
        assert "socket activation: serving on the socket passed by systemd (fd 3)" in \
            node.log_text()
        assert node.stop() == 0
    finally:
        node.cleanup()


def test_socket_activation_rejects_what_is_not_a_listening_socket():
    node = NotifyNode()
    try:
        env = dict(os.environ, NOTIFY_SOCKET=node.notify.path)
        r = subprocess.run(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@" 3</dev/null', "sh",
                            CELLARD, "--data-dir", os.path.join(node.dir, "data")],
                           env=env, stderr=subprocess.PIPE)
        assert r.returncode == 1, r
        msg = node.notify.wait("ERRNO") and \
            [m for _t, m in node.notify.snapshot() if "ERRNO" in m][-1]
        assert "not a listening TCP socket" in msg["STATUS"], msg
        assert not os.path.exists(os.path.join(node.dir, "data")), "it went on starting"
    finally:
        node.cleanup()


if __name__ == "__main__":
    run_tests(globals())

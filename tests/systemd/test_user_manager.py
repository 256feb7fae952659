"""The repository's units under a real systemd (a user manager started by
this test, see sdharness.py), with the node built by this tree.

The units come from `make install` into a scratch prefix: the files in
systemd/ with only ExecStart='s path changed (checked below). One drop-in
relaxes what a user manager cannot do: switch to User=cellar/Group=cellar
(the manager runs as root, the user does not exist here). Everything
else, the hardening included, is exactly what production runs. The
instances' own settings are what an operator writes: a config file per
node (%E/cellar/<node>.conf) and, for socket activation, a ListenStream=
drop-in for the instance's socket (the template leaves the address to the
instance).

Covered: two nodes (cellard@a, cellard@b) reach "active (running)" through
Type=notify and serve; the hardening is in force in the running process;
journald keeps the priorities of the node's log lines; reload; a killed
node comes back with its data (Restart=on-failure); a wedged writer stops
the watchdog pings and systemd restarts the node; socket activation starts
a node on the first connection; `systemctl stop` during writes drains: exit
0, and every acknowledged write is there after a restart; the single-node
cellard.service.
"""
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdharness as H  # noqa: E402

BASE = "/srv/cellar-systemd-test"  # a private tmpfs (see sdharness.py)
M = None
UNIT_DIR = None
PORTS = {}

RELAX = """# Only what a user manager cannot do: it runs as root and cannot switch to
# the cellar user (which does not exist on a test machine).
[Service]
User=
Group=
"""


def node_config(name, extra=""):
    PORTS.setdefault(name, H.free_port())
    M.write("cellar/%s.conf" % name, "# node %s\nlisten = 127.0.0.1:%d\n%s"
            % (name, PORTS[name], extra))


def main_pid(unit):
    return int(M.show(unit, "MainPID")["MainPID"])


def cell(port, table, row, col, value=None, method=None):
    path = "/v1/tables/%s/rows/%s/cells/%s" % (table, row, col)
    if value is None and method is None:
        return H.http(port, "GET", path)
    return H.http(port, method or "PUT", path, body=value,
                  headers={"Content-Type": "application/octet-stream"})


def create_table(port, name, partitions=4):
    st, body = H.http(port, "PUT", "/v1/tables/" + name,
                      body=json.dumps({"partition_count": partitions}).encode(),
                      headers={"Content-Type": "application/json"})
    assert st == 201, (st, body)


def node_lines(pid):
    """(PRIORITY, MESSAGE) of the node process's journal entries."""
    return [(int(e.get("PRIORITY", -1)), e.get("MESSAGE", "")) for e in M.journal("_PID=%d" % pid)]


def nofile(pid):
    """(soft, hard) RLIMIT_NOFILE of a process."""
    with open("/proc/%d/limits" % pid) as f:
        line = [x for x in f if x.startswith("Max open files")][0].split()
    return int(line[3]), int(line[4])


def setup_module():
    global M, UNIT_DIR
    M = H.UserManager(BASE)
    UNIT_DIR = H.install(os.path.join(BASE, "usr"), M.dirs["config"])
    M.write("systemd/user/cellard@.service.d/user-manager.conf", RELAX)
    M.write("systemd/user/cellard.service.d/user-manager.conf", RELAX)
    M.start([UNIT_DIR])
    # For an ASan build of the node (make check): LeakSanitizer stops the
    # world with ptrace, which SystemCallFilter= forbids, so it would fail
    # every exit. Leaks are checked by the tests that run the node without
    # the sandbox. No effect on a normal build.
    M.systemctl("set-environment", "ASAN_OPTIONS=detect_leaks=0")


def teardown_module():
    if M:
        M.stop()


def test_units_are_the_repositorys():
    for name in sorted(os.listdir(os.path.join(H.REPO, "systemd"))):
        if not name.split(".")[-1] in ("service", "socket", "target"):
            continue
        with open(os.path.join(H.REPO, "systemd", name)) as f:
            repo = f.read().splitlines()
        with open(os.path.join(UNIT_DIR, name)) as f:
            installed = f.read().splitlines()
        assert len(repo) == len(installed), name
        for a, b in zip(repo, installed):
            if a != b:
                assert a.startswith("ExecStart=/usr/bin/cellard ") and b == a.replace(
                    "/usr/bin/cellard", os.path.join(BASE, "usr", "bin", "cellard")), (a, b)
    _rc, out = M.systemctl("cat", "cellard@a.service")
    assert UNIT_DIR + "/cellard@.service" in out, out
    assert "User=\nGroup=\n" in out, out


def test_two_nodes_reach_active_running_through_notify():
    node_config("a")
    node_config("b")
    M.systemctl("start", "cellard@a", "cellard@b")  # returns once both sent READY=1
    for name in ("a", "b"):
        unit = "cellard@%s.service" % name
        s = M.show(unit, "Type", "NotifyAccess", "ActiveState", "SubState", "StatusText",
                   "WatchdogUSec", "Restart")
        assert s["Type"] == "notify" and s["NotifyAccess"] == "main", s
        assert (s["ActiveState"], s["SubState"]) == ("active", "running"), s
        assert s["StatusText"] == "serving 0 tables, 0 partitions", s
        assert s["WatchdogUSec"] == "10s" and s["Restart"] == "on-failure", s
        assert "active (running)" in M.status(unit)
        assert H.http(PORTS[name], "GET", "/readyz")[0] == 200


def test_hardening_is_in_force():
    pid = main_pid("cellard@a.service")
    with open("/proc/%d/status" % pid) as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    assert status["NoNewPrivs"].strip() == "1", status["NoNewPrivs"]
    assert status["Seccomp"].strip() == "2", status["Seccomp"]  # a filter is loaded
    assert int(status["CapBnd"].strip(), 16) == 0, status["CapBnd"]
    with open("/proc/%d/mountinfo" % pid) as f:
        mounts = [line.split() for line in f]
    root = [m for m in mounts if m[4] == "/"][-1]
    assert "ro" in root[5].split(","), root  # ProtectSystem=strict
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().split(b"\0")
    data_dir = argv[argv.index(b"--data-dir") + 1].decode()
    data = [m for m in mounts if m[4] == data_dir]
    assert data and "rw" in data[-1][5].split(","), (data_dir, data)  # StateDirectory=
    home = [m for m in mounts if m[4] == "/home"]
    assert home, "ProtectHome= did not hide /home"
    # LimitNOFILE=65536, capped by a user manager at its own hard limit.
    assert M.show("cellard@a.service", "LimitNOFILE")["LimitNOFILE"] == "65536"
    want = min(65536, nofile(M.proc.pid)[1])
    assert nofile(pid) == (want, want), (nofile(pid), want)


def test_nodes_serve_their_own_data_and_journald_keeps_priorities():
    a, b = PORTS["a"], PORTS["b"]
    create_table(a, "users")
    create_table(b, "users")
    assert cell(a, "users", "alice", "email", b"alice@a")[0] == 201
    assert cell(b, "users", "alice", "email", b"alice@b")[0] == 201
    assert cell(a, "users", "alice", "email") == (200, b"alice@a")
    assert cell(b, "users", "alice", "email") == (200, b"alice@b")
    pid = main_pid("cellard@a.service")
    lines = H.wait_for(lambda: [x for x in node_lines(pid) if "serving" in x[1]] and node_lines(pid),
                       30, "the node's lines in the journal")
    by_msg = {msg: prio for prio, msg in lines}
    serving = [m for m in by_msg if m.startswith("serving 0 tables")]
    assert serving and by_msg[serving[0]] == 5, lines  # "<5>": notice
    starting = [m for m in by_msg if m.startswith("cellard 0.")]
    assert starting and by_msg[starting[0]] == 6, lines  # "<6>": info
    assert not any(m.startswith("<") for m in by_msg), "a prefix reached the journal: %s" % lines


def test_reload_applies_limits_and_log_level():
    unit = "cellard@a.service"
    pid = main_pid(unit)
    assert cell(PORTS["a"], "users", "bob", "big", b"x" * 3000)[0] == 201
    node_config("a", "max_value_bytes = 2K\nlog_level = debug\n")
    M.systemctl("reload", unit)
    assert main_pid(unit) == pid
    H.wait_for(lambda: any(m.startswith("reloaded ") for _p, m in node_lines(pid)), 30,
               "the reload in the journal")
    assert cell(PORTS["a"], "users", "bob", "big", b"x" * 3000)[0] == 413
    assert cell(PORTS["a"], "users", "bob", "small", b"x" * 1000)[0] == 201
    s = M.show(unit, "ActiveState", "SubState", "StatusText")
    assert (s["ActiveState"], s["SubState"]) == ("active", "running"), s
    node_config("a")  # back to the defaults
    M.systemctl("reload", unit)
    H.wait_for(lambda: sum(m.startswith("reloaded ") for _p, m in node_lines(pid)) == 2, 30,
               "the second reload")
    assert cell(PORTS["a"], "users", "bob", "big", b"x" * 3000)[0] in (201, 204)


def test_killed_node_comes_back_with_its_data():
    unit = "cellard@b.service"
    pid = main_pid(unit)
    os.kill(pid, 9)
    new = M.wait_active(unit, timeout=60, pid_not=pid)
    assert new != pid
    s = M.show(unit, "NRestarts")
    assert int(s["NRestarts"]) >= 1, s
    assert cell(PORTS["b"], "users", "alice", "email") == (200, b"alice@b")


def test_watchdog_timeout_restarts_a_wedged_node():
    unit = "cellard@c.service"
    # TEST ONLY setting: every writer wedges 1 s after it starts, as one
    # stuck in I/O would; the node must then stop pinging.
    node_config("c", "test_wedge_writer_after_s = 1\n")
    M.systemctl("start", unit)
    pid = main_pid(unit)
    create_table(PORTS["c"], "t", partitions=2)  # writers exist from here on
    H.wait_for(lambda: any("not pinging systemd: writer" in m for _p, m in node_lines(pid)), 60,
               "the node to stop pinging")
    H.wait_for(lambda: any("Watchdog timeout" in m for m in M.messages("_PID=%d" % M.proc.pid)),
               60, "systemd to notice the watchdog timeout")
    new = M.wait_active(unit, timeout=60, pid_not=pid)
    assert int(M.show(unit, "NRestarts")["NRestarts"]) >= 1
    prio = [p for p, m in node_lines(pid) if "not pinging systemd" in m]
    assert prio == [3], prio  # one err line, not one per missed ping
    # The restarted node wedges again (same config); a stop still works.
    node_config("c")
    M.systemctl("stop", unit)
    assert M.show(unit, "ActiveState")["ActiveState"] in ("inactive", "failed")
    assert new != pid


def test_socket_activation_starts_the_node_on_first_connection():
    port = H.free_port()
    node_config("d")  # its `listen` is not used under socket activation
    M.write("systemd/user/cellard@d.socket.d/listen.conf",
            "[Socket]\nListenStream=127.0.0.1:%d\n" % port)
    M.systemctl("start", "cellard@d.socket")
    assert M.show("cellard@d.service", "ActiveState")["ActiveState"] == "inactive"
    got = H.http(port, "GET", "/healthz", timeout=60)  # starts it
    assert got[0] == 200, got
    pid = M.wait_active("cellard@d.service")
    assert H.http(port, "GET", "/readyz")[0] == 200
    assert any("socket activation" in m for _p, m in node_lines(pid))
    assert H.http(PORTS["d"], "GET", "/healthz", timeout=5)[0] is None
    # The socket outlives the service: the next connection starts it again.
    # (/healthz: a queued connection may be served a moment before READY=1,
    # when /readyz still says 503.)
    M.systemctl("stop", "cellard@d.service")
    got = H.http(port, "GET", "/healthz", timeout=60)
    assert got[0] == 200, got
    M.wait_active("cellard@d.service", pid_not=pid)
    assert H.http(port, "GET", "/readyz")[0] == 200
    M.systemctl("stop", "cellard@d.socket", "cellard@d.service")


class Writer(threading.Thread):
    """PUTs its own keys over one keep-alive connection until the node goes
    away; remembers what was acknowledged."""

    def __init__(self, port, idx):
        super().__init__(daemon=True)
        self.port, self.idx = port, idx
        self.acked = {}
        self.refused = 0
        self.error = None

    def run(self):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        seq = 0
        try:
            while True:
                seq += 1
                key, val = "k%d-%d" % (self.idx, seq % 50), ("v%d-%d" % (self.idx, seq)).encode()
                c.request("PUT", "/v1/tables/users/rows/w%d/cells/%s" % (self.idx, key), body=val)
                r = c.getresponse()
                r.read()
                if r.status in (201, 204):
                    self.acked[key] = val
                elif r.status == 503:
                    self.refused += 1  # not applied: the node is stopping
                    return
                else:
                    raise AssertionError("PUT gave %d" % r.status)
        except (ConnectionError, OSError, http.client.HTTPException):
            return
        except Exception as e:
            self.error = e


def test_stop_drains_writes_and_exits_zero():
    unit = "cellard@a.service"
    writers = [Writer(PORTS["a"], i) for i in range(4)]
    for w in writers:
        w.start()
    H.wait_for(lambda: sum(len(w.acked) for w in writers) >= 200, 60, "writes to flow")
    pid = main_pid(unit)
    M.systemctl("stop", unit)
    for w in writers:
        w.join(60)
        assert not w.is_alive() and w.error is None, w.error
    s = M.show(unit, "ActiveState", "Result", "ExecMainStatus", "ExecMainCode")
    assert s["ActiveState"] == "inactive" and s["Result"] == "success", s
    assert s["ExecMainStatus"] == "0", s
    msgs = [m for _p, m in node_lines(pid)]
    assert any(m.startswith("SIGTERM: stopping") for m in msgs), msgs[-10:]
    assert msgs[-1] == "stopped cleanly", msgs[-10:]
    M.systemctl("start", unit)
    for w in writers:
        for key, val in w.acked.items():
            got = cell(PORTS["a"], "users", "w%d" % w.idx, key)
            assert got[0] == 200, (key, got)
            # The acknowledged value, or one written after it whose answer
            # the stop cut off.
            assert got[1] == val or int(got[1].split(b"-")[1]) > int(val.split(b"-")[1]), (
                key, val, got)


def test_single_node_unit():
    port = H.free_port()
    conf = os.path.join(M.dirs["config"], "cellar", "cellard.conf")
    with open(conf) as f:
        text = f.read()
    assert "listen = 127.0.0.1:8080" in text  # the installed default
    with open(conf, "w") as f:
        f.write(text.replace("listen = 127.0.0.1:8080", "listen = 127.0.0.1:%d" % port))
    M.systemctl("start", "cellard.service")
    M.wait_active("cellard.service")
    assert H.http(port, "GET", "/readyz")[0] == 200
    M.systemctl("stop", "cellard.service")
    s = M.show("cellard.service", "Result", "ExecMainStatus")
    assert s == {"Result": "success", "ExecMainStatus": "0"}, s


if __name__ == "__main__":
    H.run_tests(globals(), needs_namespace=True)

"""Helpers for the systemd tests: a real systemd user manager started by the
test, the repository's units installed by `make install` into a scratch
prefix, and systemctl.

How a real systemd runs here without booting it: the test re-executes
itself in a private mount namespace (`unshare --mount`), mounts a tmpfs on
/run/systemd (with /run/systemd/system in it, so the tools see a systemd
system) and one on /srv, where everything else lives: the install prefix,
HOME and the XDG directories of the manager. /srv rather than /tmp, /home
or /root because the units' hardening (PrivateTmp=, ProtectHome=) hides
those from the node. Then `/lib/systemd/systemd --user` runs as root and
`systemctl --user` starts real units, Type=notify and the watchdog
included.

The manager is put in a cgroup of its own (in every mounted hierarchy)
before it starts: a user manager takes its starting cgroup as its root and
moves every process it finds there into init.scope, so started in the
root cgroup it would regroup the whole machine. The cgroups are removed at
the end.

Nothing sleeps to paper over a race: waits poll a condition against a
deadline. Only root can do this (mount namespaces); run() reports a skip,
loudly, when the environment clearly lacks the capability (not root, or
unshare refused with EPERM), and a failure for anything else.
"""
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from cellar import mount_namespace_skip_reason, wait_for  # noqa: E402,F401  (shared with the integration tests)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CELLARD = os.path.abspath(os.environ.get("CELLARD") or os.path.join(REPO, "build", "cellard"))
SYSTEMD = "/lib/systemd/systemd"
JOURNALD = "/lib/systemd/systemd-journald"
NS_FLAG = "CELLAR_SYSTEMD_TEST_NS"
CGROUP_NAME = "cellar-systemd-test-%d" % os.getpid()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sh(*args, check=True, timeout=120, env=None, **kw):
    r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, env=env, **kw)
    out = r.stdout.decode("utf-8", "replace")
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d:\n%s" % (" ".join(args), r.returncode, out))
    return r.returncode, out


def install(prefix, sysconfdir):
    """`make install` of the binary under test ($CELLARD) into prefix. -o
    keeps make from rebuilding it (it may be an ASan build)."""
    build = os.path.relpath(os.path.dirname(CELLARD), REPO)
    sh("make", "--no-print-directory", "-C", REPO, "-o", os.path.join(build, "cellard"),
       "install", "BUILD=" + build, "PREFIX=" + prefix, "SYSCONFDIR=" + sysconfdir)
    return os.path.join(prefix, "lib", "systemd", "system")


# --- cgroups ---------------------------------------------------------------

def _cgroup_dirs():
    """{hierarchy key of /proc/self/cgroup: the directory of our cgroup in
    it} for every mounted hierarchy ("" is cgroup2; v1 keys are the
    controllers, or name=..., as /proc/self/cgroup writes them)."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _hid, key, path = line.rstrip("\n").split(":", 2)
            own[key] = path
    dirs = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype, _source, opts = right.split()[:3]
            mnt = left.split()[4]
            opts = set(opts.split(","))
            for key, path in own.items():
                if key in dirs:
                    continue
                if (fstype == "cgroup2" and key == "") or (
                        fstype == "cgroup" and key and set(key.split(",")) <= opts):
                    dirs[key] = mnt.rstrip("/") + path
    return dirs


def make_cgroups():
    """Creates a child of our current cgroup in every hierarchy; returns the
    cgroup.procs files to join."""
    procs = []
    for _key, base in sorted(_cgroup_dirs().items()):
        d = os.path.join(base, CGROUP_NAME)
        try:
            os.makedirs(d, exist_ok=True)
        except OSError:
            continue  # a hierarchy we may not write: systemd copes
        for knob in ("cpuset.cpus", "cpuset.mems"):  # v1 cpuset: empty until copied
            try:
                with open(os.path.join(base, knob)) as f:
                    val = f.read().strip()
                with open(os.path.join(d, knob), "w") as f:
                    f.write(val)
            except OSError:
                pass
        procs.append(os.path.join(d, "cgroup.procs"))
    return procs


def remove_cgroups(procs):
    """Removes the cgroups made by make_cgroups and everything systemd made
    below them, killing any process of ours still inside (there should be
    none once the manager has exited)."""
    for p in procs:
        top = os.path.dirname(p)
        if not os.path.isdir(top):
            continue
        for _ in range(50):
            left = []
            for d, _subdirs, _files in os.walk(top):
                try:
                    with open(os.path.join(d, "cgroup.procs")) as f:
                        left += [int(x) for x in f.read().split()]
                except OSError:
                    pass
            for pid in left:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            if not left:
                break
            time.sleep(0.1)
        for d, _subdirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                os.rmdir(d)
            except OSError as e:
                print("    note: could not remove cgroup %s: %s" % (d, e))


# --- the user manager --------------------------------------------------------

class UserManager:
    """A systemd user manager in this (private) mount namespace."""

    def __init__(self, base):
        self.base = base
        self.dirs = {k: os.path.join(base, k) for k in
                     ("home", "runtime", "config", "state", "share", "cache", "usr")}
        for d in self.dirs.values():
            os.makedirs(d, exist_ok=True)
        os.chmod(self.dirs["runtime"], 0o700)
        self.unit_dir = os.path.join(self.dirs["config"], "systemd", "user")
        os.makedirs(self.unit_dir, exist_ok=True)
        self.log_path = os.path.join(base, "manager.log")
        self.proc = None
        self.journald = None
        self.cgroups = []
        self.env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": self.dirs["home"],
            "XDG_RUNTIME_DIR": self.dirs["runtime"],
            "XDG_CONFIG_HOME": self.dirs["config"],
            "XDG_STATE_HOME": self.dirs["state"],
            "XDG_DATA_HOME": self.dirs["share"],
            "XDG_CACHE_HOME": self.dirs["cache"],
            "LANG": "C.UTF-8",
        }

    def start(self, extra_unit_dirs=()):
        env = dict(self.env)
        # The test's drop-ins and the installed units first, then the
        # defaults (the trailing colon).
        env["SYSTEMD_LOG_TARGET"] = "journal"  # a user manager's "console" is /dev/console
        env["SYSTEMD_LOG_LEVEL"] = "info"
        env["SYSTEMD_UNIT_PATH"] = ":".join([self.unit_dir] + list(extra_unit_dirs)) + ":"
        log = open(self.log_path, "wb")
        # journald, so the nodes' stderr is kept with its priorities (without
        # it, systemd connects a unit's stderr to /dev/null) and the
        # manager's own messages ("Watchdog timeout") can be read back.
        # Its own messages go to the kernel log (/dev/kmsg, the host's):
        # warnings only, so it does not fill dmesg with "sync" requests.
        self.journald = subprocess.Popen([JOURNALD], stdout=log, stderr=subprocess.STDOUT,
                                         env=dict(self.env, SYSTEMD_LOG_LEVEL="warning"))
        wait_for(lambda: os.path.exists("/run/systemd/journal/stdout")
                 and os.path.exists("/run/systemd/journal/socket"), 30, "journald's sockets")
        self.cgroups = make_cgroups()
        self.proc = subprocess.Popen(
            ["sh", "-c", 'for f; do echo $$ 2>/dev/null > "$f" || echo "note: cannot join $f"; done; '
             'exec %s --user' % SYSTEMD, "sh"]
            + self.cgroups, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

        def up():
            if self.proc.poll() is not None:
                raise AssertionError("systemd --user exited with %s:\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            if not os.path.exists(os.path.join(self.dirs["runtime"], "systemd", "private")):
                return False
            rc, out = self.systemctl("is-system-running", check=False)
            return out.strip() in ("running", "degraded")
        try:
            wait_for(up, 60, "the user manager to run")
        except Exception:
            self.stop()
            raise

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # the manager stops every unit, then exits
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        remove_cgroups(self.cgroups)
        if self.journald and self.journald.poll() is None:
            self.journald.terminate()
            self.journald.wait(60)

    def log_tail(self, n=60):
        """The last n journal lines (manager and units) and journald's own
        output."""
        out = ""
        if self.journald and self.journald.poll() is None:
            out = sh("journalctl", "--no-pager", "-o", "short-monotonic", "-n", str(n),
                     check=False)[1]
        try:
            with open(self.log_path, "rb") as f:
                out += f.read().decode("utf-8", "replace")
        except OSError:
            pass
        return out

    def journal(self, *matches):
        """Journal entries (dicts) matching journalctl matches, e.g. "_PID=12"."""
        sh("journalctl", "--sync", check=False)
        _rc, out = sh("journalctl", "--no-pager", "-o", "json", *matches, check=False)
        entries = []
        for line in out.splitlines():
            if line.startswith("{"):
                entries.append(json.loads(line))
        return entries

    def messages(self, *matches):
        return [e.get("MESSAGE", "") for e in self.journal(*matches)
                if isinstance(e.get("MESSAGE"), str)]

    def systemctl(self, *args, check=True, timeout=180):
        return sh("systemctl", "--user", "--no-pager", *args, check=check, timeout=timeout,
                  env=self.env)

    def show(self, unit, *props):
        _rc, out = self.systemctl("show", unit, "-p", ",".join(props))
        d = {}
        for line in out.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                d[k] = v
        return d

    def wait_active(self, unit, timeout=120, pid_not=None):
        """Waits for ActiveState=active, SubState=running (and a MainPID other
        than pid_not); returns the MainPID."""
        def ok():
            s = self.show(unit, "ActiveState", "SubState", "MainPID")
            pid = int(s.get("MainPID", "0") or 0)
            if s.get("ActiveState") == "failed":
                raise AssertionError("%s failed:\n%s" % (unit, self.status(unit)))
            return (s.get("ActiveState") == "active" and s.get("SubState") == "running" and pid
                    and pid != pid_not and pid)
        return wait_for(ok, timeout, "%s active (running)" % unit)

    def status(self, unit):
        return self.systemctl("status", unit, check=False)[1]

    def write(self, rel, text):
        """Writes a file below the manager's config home (drop-ins, configs)."""
        path = os.path.join(self.dirs["config"], rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path


# --- namespace entry and the runner -------------------------------------------

def make_inaccessible_nodes(d):
    """What PID 1 creates at boot in /run/systemd/inaccessible: one node of
    each type, mode 0000, that sandboxing (ProtectHome=, InaccessiblePaths=)
    mounts over what it hides."""
    os.makedirs(d)
    os.mkdir(os.path.join(d, "dir"), 0)
    os.close(os.open(os.path.join(d, "reg"), os.O_CREAT | os.O_WRONLY, 0))
    os.mkfifo(os.path.join(d, "fifo"), 0)
    os.mknod(os.path.join(d, "sock"), stat.S_IFSOCK)
    os.mknod(os.path.join(d, "chr"), stat.S_IFCHR, os.makedev(0, 0))
    os.mknod(os.path.join(d, "blk"), stat.S_IFBLK, os.makedev(0, 0))
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name), 0)


def enter_namespace():
    """Re-executes the running script in a private mount namespace, once.
    Returns only inside it, with /run/systemd and /srv on private tmpfs."""
    if os.environ.get(NS_FLAG) == "1":
        sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run/systemd")
        os.makedirs("/run/systemd/system")
        make_inaccessible_nodes("/run/systemd/inaccessible")
        # journald's files: volatile ones in /run/log, persistent ones in
        # /var/log/journal when that exists; both private to this test.
        for d in ("/run/log", "/var/log/journal"):
            if os.path.isdir(d):
                sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", d)
        if not os.path.isdir("/srv"):
            os.makedirs("/srv")
        sh("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/srv")
        return
    env = dict(os.environ)
    env[NS_FLAG] = "1"
    sys.stdout.flush()
    os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private",
                           sys.executable, os.path.abspath(sys.argv[0])] + sys.argv[1:], env)


def run_tests(namespace, needs_namespace=True):
    """Runs every test_* function of namespace in definition order, between
    setup_module() and teardown_module() when defined; prints one line per
    test and a final "N passed, N failed".

    needs_namespace=True: the tests need the private namespace; when the
    environment clearly cannot make one (skip_reason) they are reported as
    SKIPPED, loudly, and count neither as passed nor failed; any other
    problem is a failure. needs_namespace="preferred": use the namespace
    when possible (so the tests leave the host's /run/systemd alone), else
    run outside it."""
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    only = [a for a in sys.argv[1:] if not a.startswith("-")]
    if needs_namespace:
        if os.environ.get(NS_FLAG) != "1":
            if not os.path.exists(SYSTEMD):
                print("  FAIL  %s is missing (make test installs the systemd package)" % SYSTEMD)
                print("0 passed, 1 failed", flush=True)
                sys.exit(1)
            reason = mount_namespace_skip_reason("a private mount namespace for /run/systemd")
            if reason and needs_namespace == "preferred":
                print("  note: running outside a private namespace: %s" % reason)
            elif reason:
                print("  SKIPPED (%d tests): %s" % (len(tests), reason))
                print("  SKIPPED: this environment cannot run a private systemd; "
                      "these tests did not run")
                print("0 passed, 0 failed", flush=True)
                sys.exit(0)
            else:
                enter_namespace()  # re-executes this script inside it
        else:
            enter_namespace()  # inside it: the mounts
    passed = failed = 0
    setup = namespace.get("setup_module")
    teardown = namespace.get("teardown_module")
    try:
        if setup:
            setup()
        for name, fn in tests:
            if only and name not in only:
                continue
            t0 = time.monotonic()
            try:
                fn()
                print("  ok    %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
                passed += 1
            except Exception:
                print("  FAIL  %s" % name, flush=True)
                traceback.print_exc()
                failed += 1
    except Exception:
        print("  FAIL  setup", flush=True)
        traceback.print_exc()
        failed += 1
    finally:
        if teardown:
            try:
                teardown()
            except Exception:
                print("  FAIL  teardown", flush=True)
                traceback.print_exc()
                failed += 1
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(1 if failed else 0)


def http(port, method, path, body=None, headers=None, timeout=30):
    """One HTTP request to 127.0.0.1:port; (status, body bytes), or (None,
    b"") when the connection fails."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    except (ConnectionError, OSError, http.client.HTTPException):
        return None, b""
    finally:
        c.close()

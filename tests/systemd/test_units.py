"""Static checks of the systemd files and of `make install`.

- systemd-analyze verify on every unit as installed (templates as
  instances, the socket template with the ListenStream= drop-in an
  instance needs), failing on any output at all: verify reports unknown
  keys and bad values but still exits 0. A deliberately broken copy proves
  the check fails.
- The sysusers.d and tmpfiles.d snippets applied to a scratch root.
- `make install` with DESTDIR/PREFIX: the layout, the kept config, and
  `make uninstall`.
- The directives the node relies on are present in every service.

systemd-analyze verify writes a timestamp file into /run/systemd, so as
root the tests run in a private mount namespace (sdharness.py) and leave the
host's /run/systemd alone; otherwise they run as they are.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdharness as H  # noqa: E402

SCRATCH = None
UNIT_DIR = None

REQUIRED_SERVICE = [
    "Type=notify", "NotifyAccess=main", "ExecReload=/bin/kill -HUP $MAINPID",
    "WatchdogSec=", "Restart=on-failure", "RestartPreventExitStatus=2", "StateDirectory=",
    "ConfigurationDirectory=cellar", "LimitNOFILE=65536", "ProtectSystem=strict",
    "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes", "NoNewPrivileges=yes",
    "CapabilityBoundingSet=\n", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "MemoryDenyWriteExecute=yes", "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service", "User=cellar", "Group=cellar", "UMask=0077",
]


def setup_module():
    global SCRATCH, UNIT_DIR
    base = "/srv" if os.environ.get(H.NS_FLAG) == "1" else None
    SCRATCH = tempfile.mkdtemp(prefix="cellar-units-", dir=base)
    UNIT_DIR = H.install(os.path.join(SCRATCH, "usr"), os.path.join(SCRATCH, "etc"))


def teardown_module():
    if SCRATCH:
        shutil.rmtree(SCRATCH, ignore_errors=True)


def verify(path):
    """systemd-analyze verify; returns (exit code, everything it printed)."""
    r = subprocess.run(["systemd-analyze", "verify", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, cwd=os.path.dirname(path))
    return r.returncode, r.stdout.decode("utf-8", "replace").strip()


def verify_dir():
    """The installed units, with the templates as instance "a" and the
    socket instance's ListenStream= drop-in."""
    d = os.path.join(SCRATCH, "verify")
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    names = []
    for name in sorted(os.listdir(UNIT_DIR)):
        target = name.replace("@.", "@a.")
        shutil.copy(os.path.join(UNIT_DIR, name), os.path.join(d, target))
        names.append(target)
    os.makedirs(os.path.join(d, "cellard@a.socket.d"))
    with open(os.path.join(d, "cellard@a.socket.d", "listen.conf"), "w") as f:
        f.write("[Socket]\nListenStream=127.0.0.1:7001\n")
    return d, names


def test_verify_every_unit_without_a_word():
    d, names = verify_dir()
    expected = {"cellard.service", "cellard@a.service", "cellard.socket", "cellard@a.socket",
                "cellard.target"}
    assert set(names) == expected, names
    for name in names:
        rc, out = verify(os.path.join(d, name))
        assert rc == 0 and out == "", "systemd-analyze verify %s (exit %d):\n%s" % (name, rc, out)


def test_verify_check_catches_mistakes():
    d, _names = verify_dir()
    path = os.path.join(d, "cellard@a.service")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("ProtectSystem=strict", "ProtectSystem=strict\nProtectSystm=yes"))
    rc, out = verify(path)
    assert "Unknown key" in out, (rc, out)  # exit code 0, yet the check above fails it
    with open(path, "w") as f:
        f.write(text.replace("ExecStart=" + os.path.join(SCRATCH, "usr"), "ExecStart=/nowhere"))
    rc, out = verify(path)
    assert out != "", (rc, out)


def test_services_carry_the_lifecycle_and_hardening():
    for name in ("cellard.service", "cellard@.service"):
        with open(os.path.join(H.REPO, "systemd", name)) as f:
            text = f.read()
        missing = [d for d in REQUIRED_SERVICE if d not in text]
        assert not missing, "%s lacks %s" % (name, missing)
    with open(os.path.join(H.REPO, "systemd", "cellard@.service")) as f:
        text = f.read()
    assert "--config %E/cellar/%i.conf --data-dir %S/cellar/%i" in text
    assert "StateDirectory=cellar/%i" in text


def test_sysusers_and_tmpfiles_snippets_apply():
    root = os.path.join(SCRATCH, "root")
    os.makedirs(os.path.join(root, "etc"))
    sysusers = os.path.join(SCRATCH, "usr", "lib", "sysusers.d", "cellar.conf")
    tmpfiles = os.path.join(SCRATCH, "usr", "lib", "tmpfiles.d", "cellar.conf")
    H.sh("systemd-sysusers", "--root=" + root, sysusers)
    with open(os.path.join(root, "etc", "passwd")) as f:
        users = [line.split(":") for line in f]
    cellar = [u for u in users if u[0] == "cellar"]
    assert cellar and cellar[0][5] == "/var/lib/cellar", users
    uid = int(cellar[0][2])
    assert 0 < uid < 1000, uid  # a system user
    rc, out = H.sh("systemd-tmpfiles", "--root=" + root, "--create", tmpfiles, check=False)
    if os.geteuid() == 0:
        assert rc == 0, out
    else:  # only root may hand the directory to the cellar user
        assert all("fchownat()" in x and "Operation not permitted" in x
                   for x in out.splitlines() if x.strip()), out
    st = os.stat(os.path.join(root, "var", "lib", "cellar"))
    assert st.st_mode & 0o777 == 0o700, oct(st.st_mode)
    assert st.st_uid == uid or os.geteuid() != 0, (st.st_uid, uid)
    assert os.path.isdir(os.path.join(root, "etc", "cellar"))


def test_make_install_layout_and_uninstall():
    dest = os.path.join(SCRATCH, "dest")
    build = os.path.relpath(os.path.dirname(H.CELLARD), H.REPO)

    def make(*args):
        return H.sh("make", "--no-print-directory", "-C", H.REPO, "-o",
                    os.path.join(build, "cellard"), "BUILD=" + build, "DESTDIR=" + dest,
                    "PREFIX=/usr", *args)[1]
    make("install")
    want = ["usr/bin/cellard", "usr/lib/systemd/system/cellard.service",
            "usr/lib/systemd/system/cellard@.service", "usr/lib/systemd/system/cellard.socket",
            "usr/lib/systemd/system/cellard@.socket", "usr/lib/systemd/system/cellard.target",
            "usr/lib/sysusers.d/cellar.conf", "usr/lib/tmpfiles.d/cellar.conf",
            "etc/cellar/cellard.conf"]
    for rel in want:
        assert os.path.isfile(os.path.join(dest, rel)), rel
    assert os.access(os.path.join(dest, "usr/bin/cellard"), os.X_OK)
    with open(os.path.join(dest, "usr/lib/systemd/system/cellard@.service")) as f:
        assert "ExecStart=/usr/bin/cellard --config" in f.read()  # PREFIX=/usr: as written
    conf = os.path.join(dest, "etc/cellar/cellard.conf")
    with open(conf, "a") as f:
        f.write("# the operator's edit\n")
    out = make("install")
    assert "kept the existing" in out, out
    with open(conf) as f:
        assert "# the operator's edit" in f.read()
    make("uninstall")
    left = [rel for rel in want if os.path.exists(os.path.join(dest, rel))]
    assert left == ["etc/cellar/cellard.conf"], left  # configuration stays


if __name__ == "__main__":
    H.run_tests(globals(), needs_namespace="preferred")

"""Access control against the real binary: bearer tokens with roles and
table lists, what needs no token, the cluster secret on /internal/,
reloading the tokens file, and the refusal to serve a non-loopback address
without tokens.

Each test attacks one rule and checks both the refusal (status, problem
code, WWW-Authenticate) and that nothing changed behind it.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile

from cellar import CELLARD, Node, cell_path, run_tests, wait_for

ADMIN = "admin-token-0123456789abcdef"
WRITER = "writer-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
SECRET = "cluster-secret-0123456789abcdef"


def sha(token):
    return hashlib.sha256(token.encode()).hexdigest()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def tokens_text(extra=""):
    return ("# name role sha256 [tables]\n"
            "root   admin %s\n"
            "app    write %s  orders,carts   # only two tables\n"
            "report read  %s\n%s" % (sha(ADMIN), sha(WRITER), sha(READER), extra))


def auth(token):
    return {"Authorization": "Bearer " + token}


def secured_node(headers=None, **kw):
    d = tempfile.mkdtemp(prefix="cellar-auth-")
    config = {"tokens_file": write(os.path.join(d, "tokens"), tokens_text()),
              "cluster_secret_file": write(os.path.join(d, "secret"), SECRET + "\n")}
    config.update(kw)
    node = Node(config=config, headers=headers)
    node.files = d
    return node.start()


def finish(node):
    try:
        node.stop()
    finally:
        node.cleanup()
        shutil.rmtree(node.files, ignore_errors=True)


def problem(resp, status, code):
    st, hdrs, body = resp
    assert st == status, (st, body)
    assert hdrs["content-type"] == "application/problem+json", hdrs
    doc = body if isinstance(body, dict) else json.loads(body)
    assert doc["status"] == status and doc["code"] == code, doc
    return hdrs, doc


def test_roles_and_tables():
    node = secured_node()
    try:
        for t in ("orders", "carts", "audit"):
            assert node.json("PUT", "/v1/tables/" + t, {"partition_count": 2},
                             headers=auth(ADMIN))[0] == 201
        put = lambda tok, table, v: node.request(
            "PUT", cell_path(table, "h", "s"), v, auth(tok) if tok else {})
        # No token, an unknown token, a malformed header: 401 with a challenge.
        hdrs, _ = problem(put(None, "orders", b"x"), 401, "UNAUTHORIZED")
        assert hdrs["www-authenticate"].startswith("Bearer"), hdrs
        hdrs, _ = problem(put("not-a-token", "orders", b"x"), 401, "UNAUTHORIZED")
        assert 'error="invalid_token"' in hdrs["www-authenticate"]
        problem(node.request("GET", "/v1/tables", headers={"Authorization": "Basic " + ADMIN}),
                401, "UNAUTHORIZED")
        # A token's prefix or the token with a byte changed is not the token.
        problem(put(ADMIN[:-1], "orders", b"x"), 401, "UNAUTHORIZED")
        problem(put(ADMIN[:-1] + "g", "orders", b"x"), 401, "UNAUTHORIZED")
        # The reader reads but cannot write; the writer writes its tables only.
        _, doc = problem(put(READER, "orders", b"x"), 403, "FORBIDDEN")
        assert "report" in doc["detail"] and "write" in doc["detail"], doc
        assert put(WRITER, "orders", b"v1")[0] == 201
        problem(put(WRITER, "audit", b"x"), 403, "FORBIDDEN")
        st, _, body = node.request("GET", cell_path("orders", "h", "s"), headers=auth(READER))
        assert (st, body) == (200, b"v1")
        problem(node.request("GET", cell_path("audit", "h", "s"), headers=auth(WRITER)),
                403, "FORBIDDEN")
        # Nothing the refused writes tried is there.
        st, _, _ = node.request("GET", cell_path("audit", "h", "s"), headers=auth(ADMIN))
        assert st == 404
        # Table administration needs admin.
        problem(node.request("PUT", "/v1/tables/newt", headers=auth(WRITER)), 403, "FORBIDDEN")
        problem(node.request("DELETE", "/v1/tables/orders", headers=auth(WRITER)), 403,
                "FORBIDDEN")
        problem(node.request("POST", "/v1/tables/orders/compact", headers=auth(WRITER)), 403,
                "FORBIDDEN")
        problem(node.request("POST", "/v1/tables/orders/recall", headers=auth(READER)), 403,
                "FORBIDDEN")
        assert node.request("GET", "/v1/tables/newt", headers=auth(ADMIN))[0] == 404
        assert node.request("DELETE", "/v1/tables/audit", headers=auth(ADMIN))[0] == 200
        assert node.request("POST", "/v1/tables/audit/recall", headers=auth(ADMIN))[0] == 200
        # A token limited to some tables lists only those.
        st, _, doc = node.json("GET", "/v1/tables", headers=auth(WRITER))
        assert st == 200 and sorted(t["name"] for t in doc["tables"]) == ["carts", "orders"], doc
        st, _, doc = node.json("GET", "/v1/tables", headers=auth(READER))
        assert sorted(t["name"] for t in doc["tables"]) == ["audit", "carts", "orders"], doc
        # Batch writes and row PATCH are writes; batch-get is a read.
        body = {"set": [{"hashkey": "h2", "sortkey": "s", "value": "v"}]}
        problem(node.json("POST", "/v1/tables/orders/batch-write", body, headers=auth(READER)),
                403, "FORBIDDEN")
        assert node.json("POST", "/v1/tables/orders/batch-write", body,
                         headers=auth(WRITER))[0] == 200
        assert node.json("POST", "/v1/tables/orders/batch-get", {"keys": [{"hashkey": "h2",
                         "sortkey": "s"}]}, headers=auth(READER))[0] == 200
    finally:
        finish(node)


def test_what_needs_no_token():
    node = secured_node(cors_origins="https://app.example")
    try:
        assert node.request("GET", "/healthz")[0] == 200
        assert node.request("GET", "/readyz")[0] == 200  # readyz_auth = false by default
        assert node.request("GET", "/openapi.yaml")[0] == 200
        st, hdrs, _ = node.request("OPTIONS", "/v1/tables/x/rows/h",
                                   headers={"Origin": "https://app.example",
                                            "Access-Control-Request-Method": "PUT"})
        assert st == 204 and "Authorization" in hdrs["access-control-allow-headers"], hdrs
        # /metrics needs a token of any role by default.
        problem(node.request("GET", "/metrics"), 401, "UNAUTHORIZED")
        assert node.request("GET", "/metrics", headers=auth(READER))[0] == 200
    finally:
        finish(node)
    node = secured_node(metrics_auth="false", readyz_auth="true", headers=auth(READER))
    node.headers = {}
    try:
        assert node.request("GET", "/metrics")[0] == 200
        problem(node.request("GET", "/readyz"), 401, "UNAUTHORIZED")
        assert node.request("GET", "/readyz", headers=auth(READER))[0] == 200
    finally:
        finish(node)


def test_cluster_secret_only_on_internal():
    node = secured_node()
    try:
        st, _, doc = node.json("GET", "/internal/v1/node", headers=auth(SECRET))
        assert st == 200 and doc["ready"] is True, doc
        # Client tokens, even admin, are not accepted there ...
        problem(node.request("GET", "/internal/v1/node", headers=auth(ADMIN)), 401,
                "UNAUTHORIZED")
        problem(node.request("GET", "/internal/v1/node"), 401, "UNAUTHORIZED")
        # ... and the cluster secret is not a client token.
        problem(node.request("GET", "/v1/tables", headers=auth(SECRET)), 401, "UNAUTHORIZED")
    finally:
        finish(node)
    # Without a cluster secret /internal/ is closed, even on loopback
    # without tokens.
    node = Node().start()
    try:
        problem(node.request("GET", "/internal/v1/node", headers=auth(SECRET)), 403,
                "FORBIDDEN")
        assert node.request("GET", "/v1/tables")[0] == 200  # loopback, no tokens: served
    finally:
        node.stop()
        node.cleanup()


def test_reload_rotates_tokens():
    node = secured_node()
    try:
        new = "rotated-token-0123456789abcdef"
        write(node.config["tokens_file"],
              "root admin %s\n" % sha(new))
        node.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: node.request("GET", "/v1/tables", headers=auth(new))[0] == 200, 10,
                 "the new token to be accepted")
        problem(node.request("GET", "/v1/tables", headers=auth(ADMIN)), 401, "UNAUTHORIZED")
        # A broken file keeps the tokens in force.
        write(node.config["tokens_file"], "root superuser %s\n" % sha(ADMIN))
        node.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "superuser" in node.log_text(), 10, "the reload error to be logged")
        assert node.request("GET", "/v1/tables", headers=auth(new))[0] == 200
        problem(node.request("GET", "/v1/tables", headers=auth(ADMIN)), 401, "UNAUTHORIZED")
    finally:
        finish(node)


def run_cellard(args, timeout=30):
    return subprocess.run([CELLARD] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout)


def test_bad_tokens_files_stop_the_start():
    d = tempfile.mkdtemp(prefix="cellar-auth-")
    try:
        cases = [
            ("root admin %s\n" % sha(ADMIN)[:63], "64 hex digits"),
            ("root owner %s\n" % sha(ADMIN), "owner"),
            ("a admin %s\nb read %s\n" % (sha(ADMIN), sha(ADMIN)), "twice"),
            ("# only a comment\n", "no tokens"),
        ]
        for text, needle in cases:
            conf = write(os.path.join(d, "c.conf"),
                         "tokens_file = %s\n" % write(os.path.join(d, "t"), text))
            r = run_cellard(["--listen", "127.0.0.1:0", "--data-dir", os.path.join(d, "data"),
                             "--config", conf])
            out = r.stdout.decode()
            assert r.returncode == 2 and needle in out, (text, out)
        r = subprocess.run([CELLARD, "--hash-token"], input=(ADMIN + "\n").encode(),
                           stdout=subprocess.PIPE, timeout=10)
        assert r.returncode == 0 and r.stdout.decode().strip() == sha(ADMIN), r.stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_no_tokens_refuses_a_non_loopback_listener():
    d = tempfile.mkdtemp(prefix="cellar-auth-")
    try:
        r = run_cellard(["--listen", "0.0.0.0:0", "--data-dir", os.path.join(d, "data")])
        out = r.stdout.decode()
        assert r.returncode == 2, out
        for needle in ("without access tokens", "tokens_file", "--insecure", "127.0.0.1"):
            assert needle in out, (needle, out)
        assert not os.path.exists(os.path.join(d, "data", "node")), "it opened storage first"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def netns_run(script):
    """Runs a shell script in a new network namespace with lo up and the
    address 10.213.0.1 (not loopback: a client there connects from it); None
    when namespaces cannot be made here."""
    probe = subprocess.run(["unshare", "-n", "true"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    if probe.returncode != 0 or not shutil.which("ip"):
        return None
    setup = "set -e; ip link set lo up; ip addr add 10.213.0.1/32 dev lo; "
    return subprocess.run(["unshare", "-n", "sh", "-c", setup + script],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)


def test_non_loopback_with_tokens_or_insecure():
    """In a private network namespace (nothing outside can reach it): a node
    on 10.213.0.1 serves clients there with a token; with --insecure and no
    tokens it serves them without one."""
    d = tempfile.mkdtemp(prefix="cellar-auth-")
    try:
        tokens = write(os.path.join(d, "tokens"), tokens_text())
        conf = write(os.path.join(d, "c.conf"), "tokens_file = %s\n" % tokens)
        script = r"""
cd "$D"
wait_up() { for i in $(seq 1 300); do
    curl -s -o /dev/null http://10.213.0.1:18080/healthz && return 0; sleep 0.1; done; return 1; }
"$CELLARD" --listen 10.213.0.1:18080 --data-dir "$D/a" --config "$D/c.conf" > "$D/a.log" 2>&1 &
P=$!; wait_up
echo "no-token $(curl -s -o /dev/null -w '%{http_code}' http://10.213.0.1:18080/v1/tables)"
echo "token $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOK" http://10.213.0.1:18080/v1/tables)"
kill $P; wait $P
"$CELLARD" --listen 10.213.0.1:18080 --data-dir "$D/b" --insecure > "$D/b.log" 2>&1 &
P=$!; wait_up
echo "insecure $(curl -s -o /dev/null -w '%{http_code}' http://10.213.0.1:18080/v1/tables)"
kill $P; wait $P
grep -c 'without tokens (--insecure)' "$D/b.log" | sed 's/^/warned /'
"""
        os.environ["D"], os.environ["TOK"] = d, READER
        r = netns_run(script)
        if r is None:
            print("  SKIPPED: cannot create a network namespace here (needs root and unshare -n)")
            return
        out = r.stdout.decode()
        for line in ("no-token 401", "token 200", "insecure 200", "warned 1"):
            assert line in out.splitlines(), (line, out)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())

"""HTTPS against the real binary: a test CA made with openssl, curl and
Python clients that verify the node's certificate, a certificate swapped by
SIGHUP without a restart, refusals at start for broken files, and the
watchdog's self-probe speaking TLS. (The whole API suite also runs over
HTTPS with a token: make test sets CELLAR_API_SECURE for its second run.)
"""
import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile

from cellar import CELLARD, Node, cell_path, make_test_pki, run_tests, wait_for
from test_lifecycle import NotifyNode


def tls_node(d, **kw):
    pki = make_test_pki(os.path.join(d, "pki"))
    ctx = ssl.create_default_context(cafile=pki["ca"])
    config = {"tls_cert_file": pki["cert"], "tls_key_file": pki["key"]}
    node = Node(config=config, ssl_context=ctx, **kw).start()
    return node, pki


def curl(*args):
    r = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    body, _, code = r.stdout.decode().rpartition("\n")
    return r.returncode, code, body, r.stderr.decode()


def peer_cert_digest(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def test_https_with_curl_and_python():
    d = tempfile.mkdtemp(prefix="cellar-tls-")
    node, pki = tls_node(d)
    try:
        base = "https://127.0.0.1:%d" % node.port
        rc, code, body, err = curl("--cacert", pki["ca"], base + "/healthz")
        assert (rc, code) == (0, "200") and '"ok"' in body, (rc, code, body, err)
        rc, code, _, _ = curl("--cacert", pki["ca"], "-X", "PUT", "-H",
                              "Content-Type: application/json", "-d", "{}", base + "/v1/tables/t")
        assert code == "201", code
        rc, code, _, _ = curl("--cacert", pki["ca"], "-X", "PUT", "--data-binary", "hello",
                              base + cell_path("t", "h", "s"))
        assert code == "201", code
        rc, code, body, _ = curl("--cacert", pki["ca"], base + cell_path("t", "h", "s"))
        assert (code, body) == ("200", "hello"), (code, body)
        # curl without the CA refuses the certificate (exit 60).
        rc, _, _, err = curl(base + "/healthz")
        assert rc == 60, (rc, err)
        # Python's client, verifying, over keep-alive.
        c = node.conn()
        for i in range(20):
            st, _, _ = node.request("PUT", cell_path("t", "h", "k%d" % i), b"v", conn=c)
            assert st == 201
        st, _, doc = node.json("GET", "/v1/tables/t/rows/h", conn=c)
        assert st == 200 and len(doc["cells"]) == 21, doc
        c.close()
        # Plain HTTP to the HTTPS port gets no HTTP answer.
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                data = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                data = b""
            assert not data.startswith(b"HTTP/1.1 200"), data
        assert node.request("GET", "/healthz")[0] == 200  # still serving
    finally:
        node.stop()
        node.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def test_reload_swaps_the_certificate():
    d = tempfile.mkdtemp(prefix="cellar-tls-")
    node, pki = tls_node(d)
    try:
        before = peer_cert_digest(node.port, pki["ca"])
        kept = node.conn()
        assert node.request("GET", "/healthz", conn=kept)[0] == 200
        # A new key and certificate from the same CA, written over the old files.
        fresh = make_test_pki(os.path.join(d, "fresh"), ca=(pki["ca"], pki["ca_key"]))
        shutil.copyfile(fresh["cert"], pki["cert"])
        shutil.copyfile(fresh["key"], pki["key"])
        node.proc.send_signal(signal.SIGHUP)
        after = wait_for(lambda: (lambda x: x != before and x)(peer_cert_digest(node.port,
                                                                                pki["ca"])),
                         20, "the new certificate to be served")
        with open(fresh["cert"], "rb") as f:
            der = ssl.PEM_cert_to_DER_cert(f.read().decode())
        assert after == hashlib.sha256(der).hexdigest()
        # The connection made before the swap keeps working.
        assert node.request("GET", "/healthz", conn=kept)[0] == 200
        kept.close()
        # A broken key on reload keeps the certificate in force.
        with open(pki["key"], "w") as f:
            f.write("not a key\n")
        node.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "previous access tokens and certificate stay" in node.log_text(), 20,
                 "the reload error")
        assert peer_cert_digest(node.port, pki["ca"]) == after
        assert node.request("GET", "/healthz")[0] == 200
    finally:
        node.stop()
        node.cleanup()
        shutil.rmtree(d, ignore_errors=True)


def test_broken_tls_files_stop_the_start():
    d = tempfile.mkdtemp(prefix="cellar-tls-")
    try:
        a = make_test_pki(os.path.join(d, "a"))
        b = make_test_pki(os.path.join(d, "b"))
        cases = [
            ({"tls_cert_file": a["cert"]}, "both tls_cert_file and tls_key_file"),
            ({"tls_cert_file": a["cert"], "tls_key_file": b["key"]}, a["cert"]),
            ({"tls_cert_file": os.path.join(d, "missing.pem"), "tls_key_file": a["key"]},
             "missing.pem"),
        ]
        for config, needle in cases:
            conf = os.path.join(d, "c.conf")
            with open(conf, "w") as f:
                f.write("".join("%s = %s\n" % kv for kv in config.items()))
            r = subprocess.run([CELLARD, "--listen", "127.0.0.1:0", "--data-dir",
                                os.path.join(d, "data"), "--config", conf],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
            out = r.stdout.decode()
            assert r.returncode == 2 and needle in out, (config, r.returncode, out)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_watchdog_probe_speaks_tls():
    d = tempfile.mkdtemp(prefix="cellar-tls-")
    pki = make_test_pki(os.path.join(d, "pki"))
    # The probe goes to the node itself, whatever proxy the environment
    # names (nothing listens on port 9: through it, the probe would fail).
    proxy = "http://127.0.0.1:9"
    node = NotifyNode(env={"WATCHDOG_USEC": "1000000", "https_proxy": proxy,
                           "HTTPS_PROXY": proxy, "ALL_PROXY": proxy, "no_proxy": ""},
                      config={"tls_cert_file": pki["cert"], "tls_key_file": pki["key"]},
                      ssl_context=ssl.create_default_context(cafile=pki["ca"]))
    try:
        node.start()
        # A ping is sent only after the probe got 200 from GET /healthz.
        node.notify.wait("WATCHDOG", "1", count=4, timeout=30)
        assert "not pinging" not in node.log_text(), node.log_text()
    finally:
        node.stop()
        node.cleanup()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())

"""A cluster whose nodes have access tokens: the client's token is checked
at the node the client reaches, and only there; the request goes on to the
primary with the cluster secret. A client token, even an admin one, opens
nothing under /internal/; the secret is not a client token.
"""
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Cluster, run_module  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from cellar import partition_of  # noqa: E402

ADMIN = "admin-token-of-the-cluster-0123456789"
READER = "reader-token-of-the-cluster-0123456789"
cluster = None


def bearer(token):
    return {"Authorization": "Bearer " + token}


def setup():
    global cluster
    import tempfile
    d = tempfile.mkdtemp(prefix="cellar-cluster-auth-")
    tokens = os.path.join(d, "tokens")
    with open(tokens, "w") as f:
        for name, role, token in (("root", "admin", ADMIN), ("viewer", "read", READER)):
            f.write("%s %s %s\n" % (name, role, hashlib.sha256(token.encode()).hexdigest()))
    cluster = Cluster(3, config={"tokens_file": tokens}, tmp=d)
    for n in cluster.nodes:
        n.headers = bearer(ADMIN)  # the harness's own requests (readiness, /v1/cluster)
    cluster.start()


def test_the_token_is_checked_where_the_client_comes_in():
    n1, n3 = cluster.nodes[0], cluster.nodes[2]
    status, _, body = n3.json("PUT", "/v1/tables/secured", {"partition_count": 4})
    assert status == 201, body
    t = n1.json("GET", "/v1/tables/secured")[2]
    h = next("k%d" % i for i in range(1000)
             if t["partitions"][partition_of(b"k%d" % i, 4)]["primary"] != n3.address)
    path = "/v1/tables/secured/rows/%s/cells/s" % h
    assert n3.request("PUT", path, b"v")[0] == 201           # admin token, relayed
    assert n3.request("GET", path, headers=bearer(READER))[2] == b"v"
    status, hdrs, _ = n3.request("PUT", path, b"w", headers=bearer(READER))
    assert status == 403                                     # refused here, not relayed
    status, hdrs, _ = n3.request("GET", path, headers={"Authorization": ""})
    assert status == 401 and "www-authenticate" in hdrs
    # Table changes too: checked here, then made by meta.
    status, _, _ = n3.json("DELETE", "/v1/tables/secured", headers=bearer(READER))
    assert status == 403
    assert n1.json("GET", "/v1/tables/secured")[0] == 200


def test_internal_takes_the_secret_and_nothing_else():
    n1 = cluster.nodes[0]
    beacon = json.dumps({"address": "127.0.0.9:7000", "roles": ["data"], "version": 0,
                         "replicas": []}).encode()
    hdr = {"Content-Type": "application/json"}
    for token in (ADMIN, READER):
        status, hdrs, _ = n1.request("POST", "/internal/v1/beacon", beacon, dict(hdr, **bearer(token)))
        assert status == 401 and "cellar-internal" in hdrs.get("www-authenticate", ""), status
    with open(cluster.secret) as f:
        secret = f.read().strip()
    assert n1.request("POST", "/internal/v1/beacon", beacon, dict(hdr, **bearer(secret)))[0] == 200
    # The secret opens no client route by itself (only with a relay's header).
    status, _, _ = n1.request("GET", "/v1/tables", headers=bearer(secret))
    assert status == 401


if __name__ == "__main__":
    run_module(globals())

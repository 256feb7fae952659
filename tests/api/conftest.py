"""Fixtures of the black-box API suite: one real cellard node for the
session (small limits, CORS for one origin) and the validating client.

With CELLAR_API_CLUSTER=1 (make test runs the suite so, inside a private
network namespace: tests/cluster/run-api) the suite talks to node 3 of a
three-node cluster instead, so that most requests are forwarded to the
partitions' primaries on the other nodes; the suite is the same."""
import hashlib
import os
import ssl
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import CORS_ORIGIN, LIMITS, Api, Node, unique  # noqa: E402
from cellar import make_test_pki  # noqa: E402  (helpers put it on the path)


@pytest.fixture(scope="session")
def node(tmp_path_factory):
    config = dict(LIMITS)
    config.update({"cors_origins": CORS_ORIGIN, "purge_interval_s": 1, "drop_retention_s": 3600})
    kw = {}
    if os.environ.get("CELLAR_API_SECURE"):
        # The same suite over HTTPS (a test CA) with an admin bearer token
        # on every request: make test runs it both ways.
        d = str(tmp_path_factory.mktemp("secure"))
        pki = make_test_pki(d)
        token = "api-suite-admin-token-0123456789"
        tokens = os.path.join(d, "tokens")
        with open(tokens, "w") as f:
            f.write("suite admin %s\n" % hashlib.sha256(token.encode()).hexdigest())
        config.update({"tls_cert_file": pki["cert"], "tls_key_file": pki["key"],
                       "tokens_file": tokens})
        kw = {"ssl_context": ssl.create_default_context(cafile=pki["ca"]),
              "headers": {"Authorization": "Bearer " + token}}
    if os.environ.get("CELLAR_API_CLUSTER"):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
        from harness import Cluster
        # One replica per partition, so that the suite's tables spread
        # their primaries and most requests are forwarded.
        cluster = Cluster(3, config=dict(config, default_replica_count=1)).start()
        try:
            yield cluster.nodes[2]
            cluster.stop()
        finally:
            cluster.cleanup()
        return
    n = Node(config=config, **kw).start()
    yield n
    try:
        n.stop()
    finally:
        n.cleanup()


@pytest.fixture(scope="session")
def api(node):
    return Api(node)


@pytest.fixture(scope="session")
def table(api):
    """A shared table with 8 partitions for tests that use their own rows."""
    return api.create_table(unique("shared"))

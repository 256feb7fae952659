"""GET /v1/cluster on a single node: the node itself, alive and leading the
metadata, and every partition of a table that asks for more replicas than
one node holds listed as short of replicas (bounded by ?limit)."""
import os

import pytest

from helpers import unique

# These check a single node's own view of itself (one node, the metadata
# leader, every partition here); tests/cluster checks a cluster's.
pytestmark = pytest.mark.skipif(bool(os.environ.get("CELLAR_API_CLUSTER")),
                                reason="a single node's view of itself; tests/cluster covers clusters")


def address(node):
    return "127.0.0.1:%d" % node.port


def cluster(api, **query):
    return api.get("/v1/cluster", query=query).ok()


def test_the_single_node_is_alive_and_leads_the_metadata(api, node):
    doc = cluster(api)
    assert doc["meta_leader"] == address(node)
    assert len(doc["nodes"]) == 1
    me = doc["nodes"][0]
    assert me["address"] == address(node)
    assert me["state"] == "alive"
    assert me["secondaries"] == 0
    total = sum(t["partition_count"] for t in api.get("/v1/tables").ok()["tables"])
    assert doc["partition_count"] == total
    assert me["primaries"] == total


def test_partitions_of_a_table_wanting_more_replicas_are_listed(api, node):
    full = api.create_table(unique("one-replica"), partition_count=2, replica_count=1)
    short = api.create_table(unique("three-replicas"), partition_count=4, replica_count=3)
    doc = cluster(api, limit=500)
    mine = [p for p in doc["under_replicated"] if p["table"] == short]
    assert [p["index"] for p in mine] == [0, 1, 2, 3]
    for p in mine:
        assert p == {"table": short, "index": p["index"], "replica_count": 3, "replicas": 1,
                     "primary": address(node), "secondaries": []}
    assert not [p for p in doc["under_replicated"] if p["table"] == full]
    assert doc["under_replicated_count"] >= 4
    assert len(doc["under_replicated"]) == doc["under_replicated_count"]
    # The table's own partitions name the same primary.
    parts = api.get("/v1/tables/%s" % short).ok()["partitions"]
    assert {p["primary"] for p in parts} == {address(node)}
    # Dropped, its partitions are no longer counted.
    before = doc["under_replicated_count"]
    api.delete("/v1/tables/%s" % short).ok()
    after = cluster(api, limit=500)
    assert after["under_replicated_count"] == before - 4
    assert not [p for p in after["under_replicated"] if p["table"] == short]


def test_limit_bounds_the_list_not_the_count(api):
    api.create_table(unique("short"), partition_count=8, replica_count=2)
    doc = cluster(api, limit=3)
    assert len(doc["under_replicated"]) == 3
    assert doc["under_replicated_count"] >= 8
    assert cluster(api, limit=0)["under_replicated"] == []
    # Without limit, at most 100 (the test node's max_page_cells is 500).
    doc = cluster(api)
    assert len(doc["under_replicated"]) == min(100, doc["under_replicated_count"])


def test_limit_beyond_max_page_cells_or_malformed_is_400(api):
    for bad in ("501", "-1", "ten", ""):
        api.get("/v1/cluster", query={"limit": bad}).problem(400, "INVALID_ARGUMENT")
    cluster(api, limit=500)


def test_cluster_takes_only_get(api):
    r = api.call("POST", "/v1/cluster")
    r.problem(405, "METHOD_NOT_ALLOWED")
    assert "GET" in r.headers["allow"]


def test_a_node_of_its_own_cannot_be_drained_or_forgotten(api, node):
    api.post("/v1/cluster/nodes/%s/drain" % address(node)).problem(409, "NOT_ENOUGH_NODES")
    api.delete("/v1/cluster/nodes/%s" % address(node)).problem(409, "NODE_HOLDS_DATA")
    api.post("/v1/cluster/nodes/127.0.0.9:1/drain").problem(404, "NOT_FOUND")
    api.delete("/v1/cluster/nodes/127.0.0.9:1").problem(404, "NOT_FOUND")
    api.post("/v1/cluster/nodes/not-an-address/drain").problem(400, "INVALID_ARGUMENT")
    api.get("/v1/cluster/nodes/%s/drain" % address(node)).problem(405, "METHOD_NOT_ALLOWED")

"""Fixtures of the black-box API suite: one real cellard node for the
session (small limits, CORS for one origin) and the validating client."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import CORS_ORIGIN, LIMITS, Api, Node, unique  # noqa: E402


@pytest.fixture(scope="session")
def node():
    config = dict(LIMITS)
    config.update({"cors_origins": CORS_ORIGIN, "purge_interval_s": 1, "drop_retention_s": 3600})
    n = Node(config=config).start()
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

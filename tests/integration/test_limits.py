"""HTTP limits that need a node of their own: the connection limit and the
idle keep-alive timeout (value and body limits are in test_http.py, the
write queue limit in tests/unit/test_writer.c)."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cellar import Node, run_tests, wait_for  # noqa: E402

REQ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def open_served(port):
    """A keep-alive connection that has been served one request."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(REQ)
    data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 200"), data
    return s


def test_connection_limit():
    node = Node(config={"http_connection_limit": 4, "http_threads": 1}).start()
    try:
        held = [open_served(node.port) for _ in range(4)]
        # At the limit the node stops accepting: a fifth client waits in the
        # listen backlog, unanswered, for as long as the four stay open.
        fifth = socket.create_connection(("127.0.0.1", node.port), timeout=5)
        fifth.sendall(REQ)
        fifth.settimeout(1.0)
        try:
            early = fifth.recv(4096)
        except socket.timeout:
            early = None
        assert early is None, "a fifth connection was served: %r" % early
        # One closes: the fifth is accepted and answered.
        held.pop().close()
        fifth.settimeout(10)
        assert fifth.recv(4096).startswith(b"HTTP/1.1 200")
        for s in held + [fifth]:
            s.close()
    finally:
        node.stop()
        node.cleanup()


def test_idle_connection_timeout():
    node = Node(config={"http_connection_timeout_s": 1}).start()
    try:
        s = open_served(node.port)
        s.settimeout(10)
        # The server closes the idle connection: recv returns EOF.
        assert s.recv(1) == b"", "the idle connection was not closed"
        s.close()
        assert node.request("GET", "/healthz")[0] == 200
    finally:
        node.stop()
        node.cleanup()


if __name__ == "__main__":
    run_tests(globals())

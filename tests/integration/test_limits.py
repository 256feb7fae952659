"""HTTP limits that need a node of their own: the connection limits (in
total and per client address), the idle keep-alive timeout, the request
deadline against slow clients (slowloris), and the header size (value and
body limits are in test_http.py and tests/api, the write queue limit in
tests/unit/test_writer.c)."""
import os
import socket
import sys
import threading
import time

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


def is_cut(s):
    """Whether the server ended the connection (EOF or reset), without
    waiting: the socket is non-blocking here."""
    try:
        return s.recv(4096) == b""
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


class Trickler:
    """A slow client: sends `head` at once, then one byte of `tail` every
    `every` seconds until the server cuts it off or the bytes run out."""

    def __init__(self, port, head, tail, every=0.3, source="127.0.0.1"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5,
                                             source_address=(source, 0))
        self.sock.sendall(head)
        self.tail, self.every = tail, every
        self.sent = 0
        self.cut = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for b in self.tail:
            time.sleep(self.every)  # the attack itself: bytes far apart
            try:
                self.sock.sendall(bytes([b]))
                self.sent += 1
            except OSError:
                self.cut = True
                return

    def is_cut(self):
        self.sock.setblocking(False)
        self.cut = self.cut or is_cut(self.sock)
        return self.cut


def test_slow_requests_are_cut_off():
    """Headers and bodies trickled one byte at a time never time out on
    inactivity; http_request_timeout_s cuts them while others are served."""
    node = Node(config={"http_request_timeout_s": 2, "http_connection_timeout_s": 60}).start()
    try:
        assert node.json("PUT", "/v1/tables/t", {"partition_count": 1})[0] == 201
        headers = [Trickler(node.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
                            b"X-Slow: " + b"a" * 200) for _ in range(4)]
        body = Trickler(node.port, b"PUT /v1/tables/t/rows/h/cells/s HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: 200\r\n\r\n", b"b" * 200)
        started = time.monotonic()
        # Others are served at once meanwhile.
        for _ in range(20):
            assert node.request("GET", "/healthz")[0] == 200
        for t in headers + [body]:
            wait_for(t.is_cut, 15, "the slow client to be cut off")
        took = time.monotonic() - started
        assert took >= 1.5, "cut before the deadline: %.2fs" % took
        # Inactivity alone would never have ended them: bytes kept coming.
        assert all(t.sent >= 3 for t in headers + [body]), [t.sent for t in headers]
        # The half-sent body changed nothing.
        assert node.request("GET", "/v1/tables/t/rows/h/cells/s")[0] == 404
        assert "did not arrive within 2000 ms" in node.log_text()
    finally:
        node.stop()
        node.cleanup()


def test_idle_time_is_bounded_even_when_trickling():
    """A request line sent a byte at a time keeps a connection "active" for
    libmicrohttpd; the idle bound (http_connection_timeout_s) counts from the
    last response regardless."""
    node = Node(config={"http_connection_timeout_s": 2, "http_request_timeout_s": 60}).start()
    try:
        t = Trickler(node.port, b"", b"GET /healthz HTTP/1.1" + b" " * 200)
        wait_for(t.is_cut, 15, "the trickling connection to be cut off")
        assert t.sent >= 4, t.sent
        assert node.request("GET", "/healthz")[0] == 200
    finally:
        node.stop()
        node.cleanup()


def test_connection_limit_per_address():
    node = Node(config={"http_connection_limit_per_ip": 3}).start()
    try:
        held = [open_served(node.port) for _ in range(3)]
        # A fourth from the same address is closed without an answer ...
        extra = socket.create_connection(("127.0.0.1", node.port), timeout=5)
        try:
            extra.sendall(REQ)
            data = extra.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        assert data == b"", data
        extra.close()
        # ... while another address is served.
        other = socket.create_connection(("127.0.0.1", node.port), timeout=5,
                                         source_address=("127.0.0.2", 0))
        other.sendall(REQ)
        assert other.recv(4096).startswith(b"HTTP/1.1 200")
        other.close()
        # One of the three closes: the address may connect again.
        held.pop().close()
        wait_for(lambda: node.request("GET", "/healthz")[0] == 200, 10, "a free slot")
        for s in held:
            s.close()
    finally:
        node.stop()
        node.cleanup()


def test_header_size_limit():
    node = Node(config={"http_connection_memory_bytes": "8K"}).start()
    try:
        s = socket.create_connection(("127.0.0.1", node.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
        s.close()
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else None
        assert status in (413, 431), data[:200]
        assert node.request("GET", "/healthz")[0] == 200
        # Headers within the limit are fine.
        assert node.request("GET", "/healthz", headers={"X-Ok": "a" * 2000})[0] == 200
    finally:
        node.stop()
        node.cleanup()


if __name__ == "__main__":
    run_tests(globals())

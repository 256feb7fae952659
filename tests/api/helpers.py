"""Helpers of the black-box API suite (fixtures are in conftest.py).

One real cellard node (tests/integration/cellar.py's Node: the binary in
$CELLARD, real sockets on loopback) is started for the whole session with
small limits, so that tests can reach them. Every response any test gets
through `api` is checked against openapi.yaml (tests/api/oas.py), and every
JSON body against the plain/_base64 rule: plain form exactly when the bytes
are valid UTF-8 without NUL, unless ?encoding=base64 was asked for.
"""
import base64
import http.client
import itertools
import json
import os
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)

from cellar import Node, wait_for  # noqa: E402
import oas  # noqa: E402

# The limits of the test node (the defaults are 1000, 10000, 4M, 10000).
LIMITS = {
    "max_value_bytes": 65536,
    "max_body_bytes": 131072,
    "max_batch_items": 50,
    "max_page_cells": 500,
    "max_page_bytes": 262144,
    "max_scan_cells": 100,
}
CORS_ORIGIN = "http://allowed.example"
SPEC = oas.Spec(os.path.join(ROOT, "openapi.yaml"))
_names = itertools.count(1)
BYTE_FIELDS = ("hashkey", "sortkey", "value", "check_value", "operand")


def unique(prefix="t"):
    """A table name (or key) no other test uses."""
    return "%s-%d-%d" % (prefix, os.getpid(), next(_names))


def plain_ok(b):
    """Whether bytes travel in the plain JSON form."""
    if b"\x00" in b:
        return False
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def q(b):
    """Percent-encodes bytes (or str) as one path segment or query value."""
    if isinstance(b, str):
        b = b.encode()
    return urllib.parse.quote(b, safe="")


def b64url(b):
    if isinstance(b, str):
        b = b.encode()
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64(b):
    if isinstance(b, str):
        b = b.encode()
    return base64.b64encode(b).decode()


def jbytes(obj, name):
    """The bytes of obj[name] or obj[name_base64]; None when neither (or null)."""
    if obj.get(name) is not None:
        return obj[name].encode("utf-8")
    if obj.get(name + "_base64") is not None:
        return base64.b64decode(obj[name + "_base64"], validate=True)
    return None


def jfield(name, b):
    """{name: text} or {name_base64: ...} for a request."""
    if isinstance(b, str):
        b = b.encode()
    if plain_ok(b):
        return {name: b.decode()}
    return {name + "_base64": b64(b)}


def check_byte_forms(doc, forced, where):
    """Walks a response body: every byte field has exactly one form, and the
    plain one exactly when the bytes allow it (never with encoding=base64)."""
    if isinstance(doc, list):
        for x in doc:
            check_byte_forms(x, forced, where)
        return
    if not isinstance(doc, dict):
        return
    for name in BYTE_FIELDS:
        plain, enc = name in doc, name + "_base64" in doc
        assert not (plain and enc), "%s: both %s and %s_base64 in %s" % (where, name, name, doc)
        if plain and isinstance(doc[name], str):  # incr's "value" is a number
            assert not forced, "%s: plain %s despite encoding=base64: %s" % (where, name, doc)
            assert "\x00" not in doc[name], "%s: NUL in plain %s: %s" % (where, name, doc)
        if enc and doc[name + "_base64"] is not None:
            raw = base64.b64decode(doc[name + "_base64"], validate=True)
            assert forced or not plain_ok(raw), \
                "%s: %s_base64 for bytes that are valid UTF-8 without NUL: %r" % (where, name, raw)
    for v in doc.values():
        check_byte_forms(v, forced, where)


def local_hashkey(api, table, prefix):
    """A hashkey (prefix, or prefix-N) whose row the node under test serves
    itself: in a cluster, one whose partition's primary is that node."""
    address = getattr(api.node, "address", None)
    if not address:
        return prefix
    t = api.get("/v1/tables/" + table).ok()
    from cellar import partition_of
    for i in range(10000):
        h = prefix if i == 0 else "%s-%d" % (prefix, i)
        if t["partitions"][partition_of(h.encode(), t["partition_count"])]["primary"] == address:
            return h
    raise AssertionError("no hashkey of %s is served by %s" % (table, address))


def count_all(api, path, query=()):
    """The sum of a row count's pages (GET .../count), following
    next_cursor to the end; returns (total, pages)."""
    total, pages, cursor = 0, 0, None
    while True:
        doc = api.get(path, query=list(query) + ([("cursor", cursor)] if cursor else [])).ok()
        total += doc["count"]
        pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            return total, pages
        assert pages < 10000, "a count that never ends"


class Resp:
    def __init__(self, method, path, status, headers, body):
        self.method, self.path = method, path
        self.status, self.headers, self.body = status, headers, body
        ctype = headers.get("content-type", "")
        self.json = None
        if body and ctype.split(";")[0].strip() in ("application/json", "application/problem+json"):
            try:
                self.json = json.loads(body)
            except ValueError:
                pass  # a raw value stored as application/json need not be JSON

    def __repr__(self):
        return "<%s %s -> %s %s>" % (self.method, self.path[:120], self.status, self.body[:400])

    def ok(self, status=200):
        assert self.status == status, "want %s: %r" % (status, self)
        return self.json

    def problem(self, status, code=None):
        assert self.status == status, "want %s %s: %r" % (status, code, self)
        assert self.headers.get("content-type", "").startswith("application/problem+json"), self
        if code is not None:
            assert self.json["code"] == code, "want %s: %r" % (code, self)
        return self.json

    @property
    def etag(self):
        return self.headers.get("etag")


class Api:
    """HTTP/1.1 to the node with one keep-alive connection per thread; every
    response is checked against openapi.yaml unless validate=False."""

    def __init__(self, node):
        self.node = node
        self.local = threading.local()
        self.count = 0

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = self.node.conn(timeout=300)
            self.local.conn = c
        return c

    def _drop(self):
        c = getattr(self.local, "conn", None)
        if c is not None:
            c.close()
        self.local.conn = None

    def call(self, method, path, body=None, headers=None, query=None, json_body=None, validate=True):
        """query: a dict or a list of (name, value); values str, bytes, int or bool."""
        if query:
            items = query.items() if isinstance(query, dict) else query
            parts = []
            for k, v in items:
                if v is None:
                    continue
                if isinstance(v, bool):
                    v = "true" if v else "false"
                parts.append("%s=%s" % (k, q(v if isinstance(v, (str, bytes)) else str(v))))
            if parts:
                path += ("&" if "?" in path else "?") + "&".join(parts)
        hdrs = dict(self.node.headers)
        hdrs.update(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in (0, 1):
            c = self._conn()
            try:
                c.request(method, path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                status = r.status
                rh = {}
                for k, v in r.getheaders():
                    k = k.lower()
                    rh[k] = rh[k] + ", " + v if k in rh else v
                if r.will_close:
                    self._drop()
                break
            except TimeoutError:
                # Not retried: the request may have been carried out (a
                # second table create would then answer 409).
                self._drop()
                raise
            except (ConnectionError, http.client.HTTPException, OSError):
                # A kept-alive connection the server closed: sent again once.
                self._drop()
                if attempt:
                    raise
        self.count += 1
        if validate:
            accept = {k.lower(): v for k, v in hdrs.items()}.get("accept")
            SPEC.validate(method, path, status, rh, data, accept)
            raw = status < 400 and "/cells/" in path and "application/json" not in (accept or "") \
                and not path.split("?")[0].endswith("/incr")
            if data and not raw and rh.get("content-type", "").split(";")[0] in (
                    "application/json", "application/problem+json"):
                forced = "encoding=base64" in path.split("?", 1)[-1].split("&") if "?" in path else False
                check_byte_forms(json.loads(data), forced, "%s %s" % (method, path[:120]))
        return Resp(method, path, status, rh, data)

    # Shorthands.
    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body=body, **kw)

    def post(self, path, doc=None, **kw):
        return self.call("POST", path, json_body=doc, **kw)

    def patch(self, path, doc=None, **kw):
        return self.call("PATCH", path, json_body=doc, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def create_table(self, name=None, **spec):
        name = name or unique()
        r = self.call("PUT", "/v1/tables/" + name, json_body=spec)
        assert r.status == 201, r
        return name

    def put_cell(self, table, h, s, value, ttl=None, headers=None):
        r = self.call("PUT", cell(table, h, s), body=value,
                      query={"ttl": ttl} if ttl is not None else None, headers=headers)
        assert r.status in (201, 204), r
        return r

    def read_row(self, table, h, max_pages=10000, **params):
        """Every cell of a row range, following next_cursor to the end.
        Returns (cells, pages)."""
        cells, pages, cursor = [], 0, None
        while True:
            p = dict(params)
            if cursor is not None:
                p["cursor"] = cursor
            r = self.call("GET", row(table, h), query=p)
            doc = r.ok()
            cells += doc["cells"]
            pages += 1
            cursor = doc["next_cursor"]
            if cursor is None:
                return cells, pages
            assert pages < max_pages, "no end after %d pages" % pages

    def scan_all(self, table, max_pages=100000, **params):
        items, pages, cursor = [], 0, None
        while True:
            p = dict(params)
            if cursor is not None:
                p["cursor"] = cursor
            doc = self.call("GET", "/v1/tables/%s/scan" % table, query=p).ok()
            items += doc["items"]
            pages += 1
            cursor = doc["next_cursor"]
            if cursor is None:
                return items, pages
            assert pages < max_pages, "no end after %d pages" % pages


def row(table, h, key_encoding=None):
    hk = b64url(h) if key_encoding else q(h)
    return "/v1/tables/%s/rows/%s" % (table, hk)


def cell(table, h, s, key_encoding=None):
    if key_encoding:
        return "/v1/tables/%s/rows/%s/cells/%s?key_encoding=base64url" % (table, b64url(h), b64url(s))
    return "/v1/tables/%s/rows/%s/cells/%s" % (table, q(h), q(s))


def wait_until(cond, timeout, what):
    """Polls cond() until it is true or timeout seconds pass (no bare sleeps)."""
    return wait_for(cond, timeout, what)

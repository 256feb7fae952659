"""The web console (GET /), the API reference (GET /docs) and their files
(GET /ui/<name>): served from the binary exactly as in the repository, with
the right Content-Type, an ETag that gives 304, no-cache, nosniff and a
Content-Security-Policy that allows nothing from elsewhere; unknown files
are 404 problems."""
import os
import re

from helpers import ROOT

CONSOLE = os.path.join(ROOT, "console")


def manifest():
    """(url, file) of console/assets.txt."""
    out = []
    with open(os.path.join(CONSOLE, "assets.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                url, path = line.split()
                out.append((url, os.path.join(ROOT, path)))
    return out


def test_every_listed_file_is_served_byte_for_byte(api):
    types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
             ".svg": "image/svg+xml", ".txt": "text/plain"}
    for url, path in manifest():
        r = api.get(url)
        assert r.status == 200, r
        ext = os.path.splitext(url)[1] or os.path.splitext(path)[1]
        assert r.headers["content-type"].split(";")[0] == types[ext], (url, r.headers)
        with open(path, "rb") as f:  # build/npm/ files too: make fetched them
            assert r.body == f.read(), "%s is not %s" % (url, path)
        assert re.fullmatch(r'"[0-9a-f]{32}"', r.etag), r.headers
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["x-content-type-options"] == "nosniff"


def test_pages_forbid_anything_not_served_by_the_node(api):
    for url in ("/", "/docs"):
        r = api.get(url)
        csp = {d.split()[0]: d.split()[1:] for d in
               (x.strip() for x in r.headers["content-security-policy"].split(";")) if d}
        assert csp["default-src"] == ["'none'"]
        for directive in ("script-src", "style-src", "connect-src", "font-src"):
            assert csp[directive] == ["'self'"], (directive, csp)
        assert csp["img-src"] == ["'self'", "data:"]
        assert csp["frame-ancestors"] == ["'none'"]
        assert b"http://" not in r.body and b"https://" not in r.body, url


def test_everything_the_pages_load_is_served(api):
    """Each src/href of the pages and each import of the modules is a file
    the node serves."""
    wanted = set()
    for url in ("/", "/docs"):
        wanted |= set(re.findall(r'(?:src|href)="(/ui/[^"]+)"', api.get(url).body.decode()))
    for name in os.listdir(CONSOLE):
        if name.endswith(".js"):
            with open(os.path.join(CONSOLE, name)) as f:
                wanted |= {"/ui/" + m for m in re.findall(r'from "\./([^"]+)"', f.read())}
    assert "/ui/app.js" in wanted and "/ui/swagger-ui-bundle.js" in wanted
    for url in sorted(wanted):
        assert api.get(url).status == 200, url


def test_etag_gives_304_and_head_has_no_body(api):
    r = api.get("/")
    etag = r.etag
    for inm in (etag, "W/" + etag, '"nope", ' + etag, "*"):
        r304 = api.get("/", headers={"If-None-Match": inm})
        assert r304.status == 304 and r304.body == b"", (inm, r304)
        assert r304.etag == etag
    assert api.get("/", headers={"If-None-Match": '"0000"'}).status == 200
    h = api.call("HEAD", "/ui/app.js", validate=False)
    g = api.get("/ui/app.js")
    assert h.status == 200 and h.body == b""
    assert h.etag == g.etag
    assert int(h.headers["content-length"]) == len(g.body)
    assert h.headers["content-type"] == g.headers["content-type"]


def test_unknown_files_are_404_problems(api):
    for url in ("/ui/nope.js", "/ui/", "/ui/app.js/x", "/ui/..%2Fopenapi.yaml", "/docs/",
                "/index.html", "/ui/%2E%2E"):
        api.get(url).problem(404, "NOT_FOUND")


def test_console_pages_take_only_get(api):
    for url in ("/", "/docs", "/ui/app.js"):
        r = api.call("POST", url)
        r.problem(405, "METHOD_NOT_ALLOWED")
        assert {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "HEAD"}

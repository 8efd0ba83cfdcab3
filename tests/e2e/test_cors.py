"""CORS allow-list (--cors-origin) and the headers on every response:
X-Content-Type-Options, and on the page a Content-Security-Policy whose
hashes are those of web/index.html's inline script and style, computed
here from the file independently of the server."""

import base64
import hashlib
import re
import subprocess

import pytest

from attnd_e2e import REPO, AttndServer, attnd_bin, free_port
from secure_e2e import KEY_A

ALLOWED = "https://app.example.com"
ALSO = "http://localhost:5173"
REFUSED = "https://evil.example.net"

# One request of each kind of answer: 200, 204, 304-able, 400, 404, 405, 413, 415.
KINDS = [
    ("GET", "/healthz", None, {}),
    ("POST", "/randn", {"seed": 1, "shape": [2]}, {}),
    ("OPTIONS", "/bow", None, {"Access-Control-Request-Method": "POST"}),
    ("GET", "/", None, {}),
    ("POST", "/bow", "{", {}),
    ("GET", "/nope", None, {}),
    ("DELETE", "/bow", None, {}),
    ("POST", "/bow", "x", {"Content-Type": "text/plain"}),
    ("GET", "/v2/models/nope", None, {}),
]


@pytest.fixture(scope="module")
def listed(tmp_path_factory):
    srv = AttndServer(tmp_path_factory.mktemp("cors"),
                      ["--cors-origin", ALLOWED, "--cors-origin", ALSO], name="cors")
    yield srv
    assert srv.stop() == 0


def send(srv, method, path, body, headers, origin=None):
    h = dict(headers)
    if origin:
        h["Origin"] = origin
    ct = h.pop("Content-Type", "application/json")
    return srv.request(method, path, body, headers=h, content_type=ct)


def test_default_is_any_origin(server):
    for method, path, body, headers in KINDS:
        r = send(server, method, path, body, headers, origin=REFUSED)
        assert r.header("Access-Control-Allow-Origin") == "*", (method, path)
        # Vary: Accept-Encoding on computed answers (issue 16), never Origin
        assert "Origin" not in (r.header("Vary") or ""), (method, path)
        assert r.header("X-Content-Type-Options") == "nosniff", (method, path)


def test_allow_list_echoes_listed_origins_only(listed):
    for method, path, body, headers in KINDS:
        for origin in (ALLOWED, ALSO):
            r = send(listed, method, path, body, headers, origin=origin)
            assert r.header("Access-Control-Allow-Origin") == origin, (method, path, origin)
            assert r.header("Vary") in ("Origin", "Origin, Accept-Encoding"), (method, path)
        for origin in (REFUSED, None, ALLOWED + ".evil.net", ALLOWED + ":444", "null"):
            r = send(listed, method, path, body, headers, origin=origin)
            assert r.header("Access-Control-Allow-Origin") is None, (method, path, origin)
            assert r.header("Vary") in ("Origin", "Origin, Accept-Encoding"), (method, path)
            assert r.header("X-Content-Type-Options") == "nosniff"


def test_preflight_allows_authorization_only_with_keys(listed, tmp_path):
    h = {"Access-Control-Request-Method": "POST",
         "Access-Control-Request-Headers": "content-type, authorization"}
    r = send(listed, "OPTIONS", "/attention", None, h, origin=ALLOWED)
    assert r.status == 204
    assert "Authorization" not in r.header("Access-Control-Allow-Headers")
    keys = tmp_path / "keys"
    keys.write_text(KEY_A + "\n")
    srv = AttndServer(tmp_path, ["--api-keys", str(keys), "--cors-origin", ALLOWED], name="keyed-cors")
    try:
        r = send(srv, "OPTIONS", "/attention", None, h, origin=ALLOWED)
        assert r.status == 204
        assert r.header("Access-Control-Allow-Origin") == ALLOWED
        allowed = [x.strip() for x in r.header("Access-Control-Allow-Headers").split(",")]
        assert "Authorization" in allowed and "Content-Type" in allowed
        # the 401 is readable by the listed page (it needs the CORS header)
        r = send(srv, "POST", "/randn", {"seed": 1, "shape": [1]}, {}, origin=ALLOWED)
        assert r.status == 401 and r.header("Access-Control-Allow-Origin") == ALLOWED
    finally:
        assert srv.stop() == 0


def test_origins_from_the_environment(tmp_path):
    srv = AttndServer(tmp_path, env_extra={"ATTND_CORS_ORIGINS": ALLOWED + ", " + ALSO}, name="env")
    try:
        assert send(srv, "GET", "/healthz", None, {}, origin=ALSO).header(
            "Access-Control-Allow-Origin") == ALSO
        assert send(srv, "GET", "/healthz", None, {}, origin=REFUSED).header(
            "Access-Control-Allow-Origin") is None
    finally:
        assert srv.stop() == 0


def test_invalid_origins_refused_at_start():
    for bad in ("example.com", "https://example.com/", "https://a.com/path", "ftp://x", "https://"):
        p = subprocess.run([attnd_bin(), "--port", str(free_port()), "--cors-origin", bad],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode == 2, (bad, p.stderr)
        assert 'invalid --cors-origin "%s"' % bad in p.stderr


def inline_hashes(html, tag):
    out = []
    for m in re.finditer(r"<%s(\s[^>]*)?>(.*?)</%s" % (tag, tag), html, re.S | re.I):
        if m.group(1) and "src=" in m.group(1):
            continue
        digest = hashlib.sha256(m.group(2).encode("utf-8")).digest()
        out.append("'sha256-%s'" % base64.b64encode(digest).decode())
    return out


def test_page_csp_allows_only_its_own_inline_code(server):
    html = (REPO / "web" / "index.html").read_text(encoding="utf-8")
    r = server.request("GET", "/")
    assert r.status == 200
    csp = r.header("Content-Security-Policy")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    scripts, styles = inline_hashes(html, "script"), inline_hashes(html, "style")
    assert scripts and styles, "the page has inline script and style: the test must see them"
    assert directives["script-src"] == ["'self'"] + scripts
    assert directives["style-src"] == ["'self'"] + styles
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp and "*" not in csp
    assert r.header("X-Frame-Options") == "DENY"
    assert r.header("X-Content-Type-Options") == "nosniff"
    # the 304 of a revalidation carries it too
    r2 = server.request("GET", "/", headers={"If-None-Match": r.header("ETag")})
    assert r2.status == 304 and r2.header("Content-Security-Policy") == csp
    # API answers: nothing to run, nothing to frame
    api = server.request("GET", "/healthz")
    assert api.header("Content-Security-Policy") == "default-src 'none'; frame-ancestors 'none'"


def test_refusals_before_any_handler_follow_the_list(listed):
    """Answers sent before a request reaches a handler -- libmicrohttpd's own
    (431 headers too large, 400 no Host) and attnd's framing refusals (400
    two Content-Length values) -- carry nosniff and the API CSP, and with an
    allow-list no Access-Control-Allow-Origin: *."""
    import socket
    cases = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nOrigin: " + REFUSED.encode() +
        b"\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nOrigin: " + REFUSED.encode() + b"\r\n\r\n",
        b"POST /bow HTTP/1.1\r\nHost: x\r\nOrigin: " + ALLOWED.encode() +
        b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
        b"Content-Length: 3\r\n\r\n{}",
    ]
    for data in cases:
        with socket.create_connection(("127.0.0.1", listed.port), timeout=5) as s:
            s.sendall(data)
            got = b""
            while b"\r\n\r\n" not in got:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        head = got.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
        assert head.split(" ", 2)[1] in ("400", "431"), head
        assert "x-content-type-options: nosniff" in head, head
        assert "content-security-policy: default-src 'none'; frame-ancestors 'none'" in head, head
        assert "access-control-allow-origin: *" not in head, head
        assert "vary: origin" in head, head

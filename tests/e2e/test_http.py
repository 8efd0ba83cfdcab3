"""HTTP behaviour of attnd: routes, headers, keep-alive, limits, defaults, formatting, access log."""

import json
import random
import re
import time

import pytest

from attnd_e2e import (REPO, compare, do_request, f32, shortest_f32_digits, significant_digits)


def rand_tensor(rng, *dims):
    if len(dims) == 1:
        return [f32(rng.uniform(-2, 2)) for _ in range(dims[0])]
    return [rand_tensor(rng, *dims[1:]) for _ in range(dims[0])]


def att_body(seed=1, B=2, T=5, C=4, hs=3, **kw):
    rng = random.Random(seed)
    d = {"x": rand_tensor(rng, B, T, C), "wq": rand_tensor(rng, hs, C),
         "wk": rand_tensor(rng, hs, C), "wv": rand_tensor(rng, hs, C)}
    d.update(kw)
    return d


def tokens(v):
    return {t.strip().upper() for t in (v or "").split(",") if t.strip()}


def assert_json_error(r, status, code):
    assert r.status == status, r
    assert r.media_type() == "application/json", r.header("Content-Type")
    err = r.json()["error"]
    assert err["status"] == status and err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"], err
    return err


# ---------------------------------------------------------------- simple routes

def test_healthz(server):
    r = server.request("GET", "/healthz")
    assert r.status == 200
    assert r.media_type() == "application/json"
    assert r.json() == {"status": "ok"}
    assert r.header("Access-Control-Allow-Origin") == "*"


def _openapi_file():
    for p in (REPO / "openapi.yaml", REPO / "api" / "openapi.yaml"):
        if p.is_file():
            return p
    pytest.fail("the repo has no openapi.yaml (looked at ./openapi.yaml and ./api/openapi.yaml)")


def test_openapi_yaml(server):
    spec = _openapi_file().read_bytes()
    r = server.request("GET", "/openapi.yaml")
    assert r.status == 200
    assert r.media_type() == "application/yaml", r.header("Content-Type")
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert r.body == spec, "served spec differs from %s (%d vs %d bytes)" % (_openapi_file(), len(r.body), len(spec))


@pytest.mark.parametrize("path", ["/healthz", "/openapi.yaml"])
def test_head(server, path):
    conn = server.connect()
    try:
        g = do_request(conn, "GET", path)
        h = do_request(conn, "HEAD", path)
        assert h.status == 200, h
        assert h.body == b""
        assert h.header("Content-Type") == g.header("Content-Type")
        cl = h.header("Content-Length")
        if cl is not None:
            assert int(cl) == len(g.body), "HEAD Content-Length %s, GET body is %d bytes" % (cl, len(g.body))
        assert h.header("Access-Control-Allow-Origin") == "*"
        # HEAD must not have sent a body that would corrupt the next response on this connection
        g2 = do_request(conn, "GET", "/healthz")
        assert g2.status == 200 and g2.json() == {"status": "ok"}
    finally:
        conn.close()


# ---------------------------------------------------------------- CORS / preflight / 405

def test_cors_on_every_kind_of_response(server):
    cases = [
        ("GET", "/healthz", None, 200),
        ("POST", "/bow", {"x": [[[1.0, 2.0]]]}, 200),
        ("POST", "/attention", att_body(), 200),
        ("POST", "/attention", dict(att_body(), casual=True), 422),
        ("POST", "/bow", b"{", 400),
        ("GET", "/nope", None, 404),
        ("POST", "/nope", {"x": 1}, 404),
        ("GET", "/bow", None, 405),
        ("DELETE", "/healthz", None, 405),
        ("OPTIONS", "/bow", None, 204),
    ]
    for method, path, body, status in cases:
        r = server.request(method, path, body)
        assert r.status == status, (method, path, r)
        assert r.header("Access-Control-Allow-Origin") == "*", (method, path, dict(r.headers))


def test_cors_on_415(server):
    r = server.request("POST", "/bow", b'{"x": [[[1]]]}', content_type="text/plain")
    assert_json_error(r, 415, "unsupported_media_type")
    assert r.header("Access-Control-Allow-Origin") == "*"


ROUTE_METHODS = {"/bow": "POST, OPTIONS", "/attention": "POST, OPTIONS",
                 "/healthz": "GET, HEAD, OPTIONS", "/openapi.yaml": "GET, HEAD, OPTIONS"}


@pytest.mark.parametrize("path", sorted(ROUTE_METHODS))
def test_preflight(server, path):
    r = server.request("OPTIONS", path, headers={"Origin": "http://example.test",
                                                 "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "content-type"})
    assert r.status == 204, r
    assert r.body == b""
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert tokens(r.header("Access-Control-Allow-Methods")) == tokens(ROUTE_METHODS[path]), \
        r.header("Access-Control-Allow-Methods")
    assert tokens(r.header("Access-Control-Allow-Headers")) >= {"CONTENT-TYPE"}, r.header("Access-Control-Allow-Headers")
    assert r.header("Access-Control-Max-Age") == "86400"


def test_head_on_post_only_route_is_405(server):
    r = server.request("HEAD", "/bow")
    assert r.status == 405, r
    assert tokens(r.header("Allow")) == tokens(ROUTE_METHODS["/bow"]), r.header("Allow")
    assert r.header("Access-Control-Allow-Origin") == "*"


def test_preflight_unknown_path_is_404(server):
    r = server.request("OPTIONS", "/nope")
    assert_json_error(r, 404, "not_found")
    assert r.header("Access-Control-Allow-Origin") == "*"


@pytest.mark.parametrize("method,path", [("GET", "/bow"), ("GET", "/attention"), ("PUT", "/bow"),
                                         ("POST", "/healthz"), ("POST", "/openapi.yaml"),
                                         ("PATCH", "/attention"), ("DELETE", "/openapi.yaml")])
def test_405_allow_header(server, method, path):
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    r = server.request(method, path, body)
    err = assert_json_error(r, 405, "method_not_allowed")
    assert "path" not in err, err
    assert r.header("Allow") is not None, dict(r.headers)
    assert tokens(r.header("Allow")) == tokens(ROUTE_METHODS[path]), r.header("Allow")
    pre = server.request("OPTIONS", path)
    assert r.header("Allow") == pre.header("Access-Control-Allow-Methods")


# ---------------------------------------------------------------- keep-alive

def test_keep_alive_same_socket(server):
    conn = server.connect()
    try:
        seq = [
            ("GET", "/healthz", None, 200),
            ("POST", "/bow", {"x": [[[1, 2], [3, 4]]], "method": "loop"}, 200),
            ("POST", "/bow", b'{"x": [[[1, 2]]],}', 400),
            ("POST", "/attention", dict(att_body(), casual=True), 422),
            ("POST", "/bow", {"x": [[[1, 2]]]}, 200),
            ("GET", "/nope", None, 404),
            ("GET", "/bow", None, 405),
            ("OPTIONS", "/attention", None, 204),
            ("HEAD", "/healthz", None, 200),
            ("POST", "/attention", att_body(), 200),
        ]
        sock = None
        local = None
        for method, path, body, status in seq:
            r = do_request(conn, method, path, body)
            assert r.status == status, (method, path, r)
            assert (r.header("Connection") or "").lower() != "close", (method, path, "server closed")
            if sock is None:
                sock, local = conn.sock, conn.sock.getsockname()
            assert conn.sock is sock and conn.sock.getsockname() == local, \
                "connection was re-opened after %s %s" % (method, path)
        out = r.json()
        assert list(out) == ["weights", "out"]
    finally:
        conn.close()


# ---------------------------------------------------------------- limits (second instance)

def _padded_bow_body(size):
    base = b'{"x": [[[1, 2], [3, 4]]], "method": "matmul"}'
    assert len(base) <= size
    return base[:-1] + b" " * (size - len(base)) + b"}"


def test_body_too_large_then_connection_usable(small_server):
    conn = small_server.connect()
    try:
        big = _padded_bow_body(5000)
        r = do_request(conn, "POST", "/bow", big)
        assert_json_error(r, 413, "body_too_large")
        assert r.header("Access-Control-Allow-Origin") == "*"
        sock = conn.sock
        assert sock is not None, "server closed the connection after 413 (contract: drained, stays usable)"
        r2 = do_request(conn, "POST", "/bow", {"x": [[[1, 2], [3, 4]]], "method": "matmul"})
        assert conn.sock is sock, "connection was re-opened after 413"
        assert r2.status == 200, r2
        assert compare({"out": [[[1, 2], [2, 3]]]}, r2.json()) == []
    finally:
        conn.close()


def test_body_size_boundary(small_server):
    r = small_server.request("POST", "/bow", _padded_bow_body(1000))
    assert r.status == 200, "a body of exactly --max-body bytes must be accepted: %r" % r
    r = small_server.request("POST", "/bow", _padded_bow_body(1001))
    assert_json_error(r, 413, "body_too_large")


def test_request_header_limit(server):
    """Request headers fit in libmicrohttpd's 16 KiB per-connection memory: 12 KiB of
    them are served; 20 KiB get libmicrohttpd's own 431."""
    r = server.request("POST", "/bow", {"x": [[[1, 2]]]}, headers={"X-Pad": "a" * 12000})
    assert r.status == 200, r
    r = server.request("GET", "/healthz", headers={"X-Pad": "a" * 20000})
    assert r.status == 431, r


def test_too_large_attention_scores(small_server):
    # B*T*T = 2*8*8 = 128 > 100 (every input tensor is <= 32 elements)
    r = small_server.post("/attention", att_body(B=2, T=8, C=2, hs=2))
    assert_json_error(r, 413, "too_large")
    assert r.header("Access-Control-Allow-Origin") == "*"
    r = small_server.post("/attention", att_body(B=1, T=8, C=2, hs=2))  # 64 <= 100
    assert r.status == 200, r


def test_too_large_bow_weights(small_server):
    r = small_server.post("/bow", {"x": [[[1]] * 11], "method": "all"})  # weights 11*11 = 121 > 100
    assert_json_error(r, 413, "too_large")
    # 10*10 = 100, not more
    r = small_server.post("/bow", {"x": [[[1]] * 10], "method": "matmul"})
    assert r.status == 200, r


def test_too_large_input_tensor(small_server):
    r = small_server.post("/bow", {"x": [[[0] * 101]]})  # x itself has 101 elements
    assert_json_error(r, 413, "too_large")


# ---------------------------------------------------------------- /attention semantics

def test_attention_defaults(server):
    base = att_body(seed=7, B=2, T=6, C=4, hs=3)
    implicit = server.post("/attention", base)
    explicit = server.post("/attention", dict(base, causal=True, scale=True, **{"return": ["weights", "out"]}))
    assert implicit.status == 200 and explicit.status == 200, (implicit, explicit)
    a, b = implicit.json(), explicit.json()
    assert list(a) == ["weights", "out"]
    assert a == b
    for w in a["weights"]:
        for t in range(6):
            for s in range(t + 1, 6):
                assert w[t][s] == 0, "default must be causal"


def test_causal_default_with_context_or_mask(server):
    """causal defaults to false when context or mask is sent: the same
    answer as an explicit false, and something above the diagonal."""
    rng = random.Random(11)
    ctx = rand_tensor(rng, 2, 6, 4)
    for extra in ({"context": ctx}, {"mask": [[True] * 6] * 6}):
        base = att_body(seed=8, B=2, T=6, C=4, hs=3, **extra)
        implicit = server.post("/attention", base)
        explicit = server.post("/attention", dict(base, causal=False))
        assert implicit.status == 200 and explicit.status == 200, (implicit, explicit)
        assert implicit.json() == explicit.json()
        assert any(w[t][s] > 0 for w in implicit.json()["weights"]
                   for t in range(6) for s in range(t + 1, 6))


def test_mask_forms_agree_exactly(server):
    """A bool mask, the same mask as 0/null numbers, and as B x T x S
    (the T x S mask repeated) give byte-identical answers; an all-true mask
    is no mask; a tril mask is causal."""
    T = 5
    rng = random.Random(12)
    m = [[rng.random() < 0.6 or s == 0 for s in range(T)] for _ in range(T)]
    m[3] = [False] * T                       # a fully masked row
    ret = {"return": ["scores", "weights", "out"]}
    base = att_body(seed=9, B=2, T=T, C=4, hs=3, **ret)
    bodies = [dict(base, mask=m),
              dict(base, mask=[[0 if v else None for v in row] for row in m]),
              dict(base, mask=[m, m])]
    answers = [server.post("/attention", b) for b in bodies]
    assert all(r.status == 200 for r in answers), answers
    assert answers[0].body == answers[1].body == answers[2].body
    got = answers[0].json()
    for b in range(2):
        assert got["weights"][b][3] == [0] * T and got["out"][b][3] == [0] * 3
        assert got["scores"][b][3] == [None] * T
    ones = server.post("/attention", dict(base, mask=[[True] * T] * T))
    plain = server.post("/attention", dict(base, causal=False))
    assert ones.body == plain.body
    tril = [[s <= t for s in range(T)] for t in range(T)]
    masked = server.post("/attention", dict(base, mask=tril))
    causal = server.post("/attention", dict(base, causal=True))
    assert masked.body == causal.body


def test_multihead_mask_applies_to_every_head(server):
    """/multihead with a mask: head h's weights are /attention's with head
    h's weights, the same context and the same mask."""
    rng = random.Random(13)
    H, hs, C, T, S = 2, 2, 4, 3, 5
    x, ctx = rand_tensor(rng, 1, T, C), rand_tensor(rng, 1, S, C)
    w = {k: rand_tensor(rng, H, hs, C) for k in ("wq", "wk", "wv")}
    mask = [[True, False, True, True, False], [False] * S, [True] * S]
    r = server.post("/multihead", dict(x=x, context=ctx, mask=mask, wo=rand_tensor(rng, C, H * hs),
                                       bo=rand_tensor(rng, C), **w, **{"return": ["weights"]}))
    assert r.status == 200, r
    for h in range(H):
        a = server.post("/attention", dict(x=x, context=ctx, mask=mask, wq=w["wq"][h], wk=w["wk"][h],
                                           wv=w["wv"][h], **{"return": ["weights"]}))
        assert a.status == 200, a
        assert r.json()["weights"][0][h] == a.json()["weights"][0]


def test_attention_scale_values(server):
    base = att_body(seed=8, B=1, T=4, C=4, hs=4, causal=False, **{"return": ["scores"]})
    s_true = server.post("/attention", dict(base, scale=True)).json()["scores"]
    s_half = server.post("/attention", dict(base, scale=0.5)).json()["scores"]  # hs**-0.5 = 0.5
    s_false = server.post("/attention", dict(base, scale=False)).json()["scores"]
    s_one = server.post("/attention", dict(base, scale=1)).json()["scores"]
    assert compare(s_half, s_true) == []
    assert compare(s_one, s_false) == []
    assert compare([[[2 * v for v in row] for row in m] for m in s_true], s_false) == []


def test_return_order_and_duplicates(server):
    base = att_body(seed=3, B=2, T=4, C=3, hs=2)
    full = server.post("/attention", dict(base, **{"return": ["q", "k", "v", "scores", "weights", "out"]}))
    assert full.status == 200, full
    full = full.json()
    assert list(full) == ["q", "k", "v", "scores", "weights", "out"]
    r = server.post("/attention", dict(base, **{"return": ["out", "q", "out", "scores", "weights", "q"]}))
    assert r.status == 200, r
    got = r.json()
    assert list(got) == ["out", "q", "scores", "weights"]
    assert got == {k: full[k] for k in got}
    rev = server.post("/attention", dict(base, **{"return": ["out", "weights", "scores", "v", "k", "q"]})).json()
    assert list(rev) == ["out", "weights", "scores", "v", "k", "q"]
    single = server.post("/attention", dict(base, **{"return": ["v"]})).json()
    assert list(single) == ["v"] and single["v"] == full["v"]
    # the response text itself keeps that order and has no duplicate key
    raw = r.body.decode()
    assert raw.count('"out"') == 1 and raw.count('"q"') == 1


@pytest.mark.parametrize("causal", [True, False])
def test_scores_nulls(server, causal):
    B, T = 2, 6
    r = server.post("/attention", att_body(seed=5, B=B, T=T, C=4, hs=3, causal=causal,
                                           **{"return": ["scores", "weights"]}))
    assert r.status == 200, r
    body = r.json()
    for b in range(B):
        for t in range(T):
            for s in range(T):
                v = body["scores"][b][t][s]
                w = body["weights"][b][t][s]
                if causal and s > t:
                    assert v is None, (b, t, s, v)
                    assert w == 0, (b, t, s, w)
                else:
                    assert isinstance(v, (int, float)) and not isinstance(v, bool), (b, t, s, v)
                    assert w is not None and w > 0, (b, t, s, w)
            assert abs(sum(body["weights"][b][t]) - 1) < 1e-5


# ---------------------------------------------------------------- number formatting

def _literals(body):
    """Parse with number literals kept as strings."""
    return json.loads(body, parse_float=str, parse_int=str)


def _walk(v):
    if isinstance(v, list):
        for x in v:
            yield from _walk(x)
    elif isinstance(v, dict):
        for x in v.values():
            yield from _walk(x)
    elif isinstance(v, str):
        yield v


def test_float_format_examples(server):
    r = server.post("/bow", {"x": [[[1], [0], [0]]], "method": "matmul"})
    assert r.status == 200, r
    lit = _literals(r.body)
    assert lit["weights"] == [["1", "0", "0"], ["0.5", "0.5", "0"],
                              ["0.33333334", "0.33333334", "0.33333334"]], lit["weights"]
    assert lit["out"] == [[["1"], ["0.5"], ["0.33333334"]]], lit["out"]


def test_float_format_shortest_roundtrip(server):
    r = server.post("/attention", att_body(seed=11, B=2, T=7, C=5, hs=4, causal=False,
                                           **{"return": ["q", "k", "v", "scores", "weights", "out"]}))
    assert r.status == 200, r
    bad = []
    n = 0
    for s in _walk(_literals(r.body)):
        n += 1
        v = f32(float(s))
        if significant_digits(s) > shortest_f32_digits(v):
            bad.append("%s is not the shortest (%d digits suffice)" % (s, shortest_f32_digits(v)))
        if len(bad) > 10:
            break
    assert n > 100
    assert not bad, bad


# ---------------------------------------------------------------- access log

def test_access_log(server):
    r = server.post("/bow", {"x": [[[1, 2], [3, 4]]], "method": "loop"})
    assert r.status == 200
    r404 = server.request("GET", "/definitely-not-here")
    assert r404.status == 404
    pat = re.compile(r"^POST /bow 200 (\d+) (\d+)us$", re.M)
    pat404 = re.compile(r"^GET /definitely-not-here 404 \d+ \d+us$", re.M)
    deadline = time.monotonic() + 3
    while True:
        text = server.stderr_text()
        if (pat.search(text) and pat404.search(text)) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert pat.search(text), "no `POST /bow 200 <bytes> <us>us` line in stderr:\n%s" % text[-2000:]
    assert pat404.search(text), "no 404 access line in stderr:\n%s" % text[-2000:]
    sizes = {int(m.group(1)) for m in pat.finditer(text)}
    assert len(r.body) in sizes or any(s >= len(r.body) for s in sizes), (sizes, len(r.body))
    assert re.search(r"^attnd listening on http://127\.0\.0\.1:%d(\s|$)" % server.port, text, re.M), text[:500]

"""Request identity (issue 16): X-Request-Id echoed on every response
(the client's when it is 1-128 visible ASCII bytes, else 32 new hex
digits) and written in the access log with a valid W3C traceparent; both
allowed by CORS preflights; the v2 "id" echoed on every infer path."""

import json
import re
import struct
import time

import pytest

from attnd_e2e import AttndServer
from test_v2 import seeded, to_binary

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
HEX32 = re.compile(r"[0-9a-f]{32}")

# one request of each kind of answer: handler, early error, 404, 405, 304,
# preflight, 413, static file, v2
CALLS = [
    ("POST", "/bow", {"x": [[[1.0]]]}, {}),
    ("POST", "/bow", "{", {}),
    ("GET", "/nope", None, {}),
    ("GET", "/bow", None, {}),
    ("OPTIONS", "/bow", None, {}),
    ("GET", "/openapi.yaml", None, {}),
    ("GET", "/v2/health/ready", None, {}),
    ("POST", "/v2/models/bow/infer", seeded("bow"), {}),
    ("POST", "/bow", "x", {"Content-Type": "text/plain"}),
]


@pytest.mark.parametrize("method,path,body,headers", CALLS, ids=["%s %s" % c[:2] for c in CALLS])
def test_request_id_on_every_response(server, method, path, body, headers):
    r = server.request(method, path, body, headers=headers)
    assert HEX32.fullmatch(r.header("X-Request-Id") or ""), r.headers
    assert "X-Request-Id" in r.header("Access-Control-Expose-Headers").split(", ")
    mine = server.request(method, path, body, headers=dict(headers, **{"X-Request-Id": "req-42/a:b"}))
    assert mine.status == r.status and mine.header("X-Request-Id") == "req-42/a:b", mine.headers


def test_request_ids_are_new_each_time(server):
    ids = {server.request("GET", "/healthz").header("X-Request-Id") for _ in range(50)}
    assert len(ids) == 50


@pytest.mark.parametrize("given", ["", "a b", "x" * 129, "caf\u00e9".encode().decode("latin-1"), "\t"])
def test_unusable_request_id_is_replaced(server, given):
    r = server.request("GET", "/healthz", headers={"X-Request-Id": given})
    assert r.status == 200 and HEX32.fullmatch(r.header("X-Request-Id")), (given, r.headers)


def test_longest_request_id_is_kept(server):
    rid = "".join(chr(0x21 + i % 94) for i in range(128))
    assert server.request("GET", "/healthz", headers={"X-Request-Id": rid}).header("X-Request-Id") == rid


def test_304_and_413_carry_it(server, small_server):
    etag = server.request("GET", "/openapi.yaml").header("ETag")
    r = server.request("GET", "/openapi.yaml", headers={"If-None-Match": etag, "X-Request-Id": "r304"})
    assert (r.status, r.header("X-Request-Id")) == (304, "r304")
    r = small_server.request("POST", "/bow", "[" * 2000, headers={"X-Request-Id": "r413"})
    assert (r.status, r.header("X-Request-Id")) == (413, "r413")


def wait_for(srv, pred, what):
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        lines = [l for l in srv.stderr_text().splitlines() if pred(l)]
        if lines:
            return lines
        time.sleep(0.05)
    raise AssertionError("no %s in the log:\n%s" % (what, srv.stderr_text()[-2000:]))


def test_access_log_text(server):
    # (the log's path has no query: distinct paths, each a 404)
    server.request("GET", "/ident-text-1", headers={"X-Request-Id": "log-me-1", "traceparent": TRACE})
    server.request("GET", "/ident-text-2", headers={"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"})
    (line,) = wait_for(server, lambda l: l.startswith("GET /ident-text-1 "), "text line")
    assert re.fullmatch(r"GET /ident-text-1 404 \d+ \d+us id=log-me-1 trace=" + TRACE, line), line
    (line,) = wait_for(server, lambda l: l.startswith("GET /ident-text-2 "), "text line")
    assert re.fullmatch(r"GET /ident-text-2 404 \d+ \d+us id=[0-9a-f]{32}", line), line  # invalid: not logged


@pytest.mark.parametrize("trace,logged", [
    (TRACE, TRACE),
    (TRACE.upper(), None),                                       # W3C: lowercase hex only
    ("ff" + TRACE[2:], None),                                    # version ff is invalid
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01", None),
    (TRACE + "-extra", None),                                    # version 00 is exactly 55 bytes
    ("01" + TRACE[2:] + "-future", "01" + TRACE[2:]),            # a later version: its first 55
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", None),
])
def test_traceparent_json_log(tmp_path, trace, logged):
    srv = AttndServer(tmp_path, extra_args=["--log-format", "json"], name="ident")
    try:
        srv.request("GET", "/ident-json", headers={"X-Request-Id": 'a"b\\c', "traceparent": trace})
        (line,) = wait_for(srv, lambda l: '"path":"/ident-json"' in l, "JSON line")
        o = json.loads(line)
        assert o["request_id"] == 'a"b\\c'
        assert o.get("traceparent") == logged, o
    finally:
        srv.stop(10.0)


def test_preflight_allows_identity_headers(server):
    for path in ("/bow", "/v2/models/bow/infer", "/healthz"):
        r = server.request("OPTIONS", path, headers={
            "Origin": "http://example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-request-id,traceparent"})
        assert r.status == 204
        allowed = {h.strip().lower() for h in r.header("Access-Control-Allow-Headers").split(",")}
        assert {"x-request-id", "traceparent"} <= allowed, r.headers


# ---------------------------------------------------------------- the v2 id, every path

def test_v2_id_on_every_path(server):
    body = dict(seeded("bow"), id="req-\u00e9\"7")

    def ok(r):
        assert r.status == 200, r
        n = int(r.header("Inference-Header-Content-Length") or len(r.body))
        return json.loads(r.body[:n])["id"]
    # JSON outputs, versioned URL, with model_name, binary outputs (per
    # output and by default), binary inputs, Inference-Header-Content-Length 0
    assert ok(server.post("/v2/models/bow/infer", body)) == body["id"]
    assert ok(server.post("/v2/models/bow/versions/1/infer", dict(body, model_name="bow"))) == body["id"]
    b = dict(body, parameters=dict(body["parameters"], binary_data_output=True))
    assert ok(server.post("/v2/models/bow/infer", b)) == body["id"]
    b = dict(body, outputs=[{"name": "out", "parameters": {"binary_data": True}}])
    assert ok(server.post("/v2/models/bow/infer", b)) == body["id"]
    x = {"id": "bin", "inputs": [{"name": "x", "shape": [1, 2, 1], "datatype": "FP32", "data": [1.0, 2.0]}]}
    raw, hdrs = to_binary(x)
    r = server.request("POST", "/v2/models/bow/infer", raw, headers=hdrs, content_type="application/octet-stream")
    assert ok(r) == "bin"
    r = server.request("POST", "/v2/models/bow/infer", json.dumps(body),
                       headers={"Inference-Header-Content-Length": "0"})
    assert ok(r) == body["id"]


@pytest.mark.parametrize("body,status", [
    ({"id": "e1", "inputs": []}, 400),                                     # the call's error
    ({"id": "e1", "inputs": [], "extra": 1}, 400),                         # the request's structure
    ({"id": "e1", "model_name": "attention", "inputs": []}, 400),           # model_mismatch
    ({"id": "e1", "inputs": [{"name": "x", "shape": [1, 1, 1], "datatype": "FP32", "data": [1e39]}]}, 400),
    ({"id": "e1", "inputs": [], "parameters": {"seed": 1, "shape": [1, 2, 2]},
      "outputs": [{"name": "max_abs_diff"}]}, 400),                         # not produced
])
def test_v2_id_on_errors(server, body, status):
    r = server.post("/v2/models/bow/infer", body)
    assert r.status == status and list(r.json()) == ["error", "id"] and r.json()["id"] == "e1", r


def test_v2_id_absent_or_unusable(server):
    r = server.post("/v2/models/bow/infer", {"inputs": []})
    assert list(r.json()) == ["error"], r
    r = server.post("/v2/models/bow/infer", {"id": 7, "inputs": []})
    assert list(r.json()) == ["error"] and "wrong_type at id" in r.json()["error"], r
    r = server.request("POST", "/v2/models/bow/infer", '{"id": "x", "inputs": [')
    assert list(r.json()) == ["error"], r      # not JSON: no id to echo

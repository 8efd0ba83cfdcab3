"""Operations: GET /metrics, GET /readyz with --drain-delay, --log-format json.

Each test runs its own instance, so the counters start at zero and can be
checked exactly.  The Prometheus text is parsed strictly (format 0.0.4:
HELP/TYPE before each family's samples, label syntax, cumulative histogram
buckets ending in +Inf whose count equals _count).
"""

import http.client
import json
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from attnd_e2e import AttndServer, attnd_bin, do_request, raw_connect, read_http_response

LINE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"(,|$)')
REASONS = ["body_too_large", "too_large", "request_too_large", "work_too_large", "body_too_complex",
           "dimension_too_large", "too_deep",
           "request_timeout", "connection_timeout", "connection_limit", "out_of_memory",
           "bad_request", "header_timeout", "send_timeout", "compute_timeout", "client_gone",
           "shutting_down", "memory_budget", "idle_closed"]


def parse_metrics(text):
    """{(name, frozenset(labels)): value}; asserts the exposition format."""
    assert text.endswith("\n")
    types, helps, samples, order = {}, {}, {}, []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in helps, "two HELP lines for " + name
            helps[name] = line
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, "two TYPE lines for " + name
            types[name] = typ
            order.append(name)
            continue
        assert not line.startswith("#"), line
        m = LINE_RE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels_text, value = m.group(1), m.group(3) or "", m.group(4)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if types.get(
            re.sub(r"_(bucket|sum|count)$", "", name)) == "histogram" else name
        assert family in types, "sample before its TYPE: %r" % line
        assert order[-1] == family, "family %s interleaved" % family
        labels = {}
        pos = 0
        while pos < len(labels_text):
            lm = LABEL_RE.match(labels_text, pos)
            assert lm, "bad labels in %r" % line
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        key = (name, frozenset(labels.items()))
        assert key not in samples, "duplicate series %r" % line
        samples[key] = float(value)
    for name, typ in types.items():
        if typ != "histogram":
            continue
        routes = {dict(k[1]).get("route") for k in samples if k[0] == name + "_count"}
        for route in routes:
            buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in samples.items()
                              if k[0] == name + "_bucket" and dict(k[1]).get("route") == route))
            assert buckets[-1][0] == float("inf"), "no +Inf bucket for " + route
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), "buckets not cumulative for %s: %r" % (route, counts)
            assert counts[-1] == samples[(name + "_count", frozenset({("route", route)}))]
    return types, samples


def get(srv, path, headers=None):
    conn = srv.connect()
    try:
        return do_request(conn, "GET", path, headers=headers)
    finally:
        conn.close()


def metric(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(srv):
    r = get(srv, "/metrics")
    assert r.status == 200
    assert r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    return parse_metrics(r.body.decode())


def stopped_ok(srv):
    alive = srv.alive()
    rc = srv.stop(10.0)
    assert alive and rc == 0, "exit %r; stderr:\n%s" % (rc, srv.stderr_text()[-3000:])


@pytest.fixture
def fresh(tmp_path):
    srvs = []

    def start(*args, env=None, name="ops"):
        s = AttndServer(tmp_path / ("%s%d" % (name, len(srvs))), extra_args=list(args), env_extra=env,
                        name=name)
        srvs.append(s)
        return s
    yield start
    for s in srvs:
        if s.alive():
            stopped_ok(s)


def test_metrics_count_requests_exactly(fresh):
    srv = fresh("--max-body", "2000", "--max-elements", "100", "--max-total-elements", "1000",
                "--max-seq", "50")
    bodies = []

    def post(path, body, ct="application/json"):
        raw = body if isinstance(body, str) else json.dumps(body)
        bodies.append((path, len(raw.encode())))
        return srv.request("POST", path, raw, content_type=ct)
    assert post("/bow", {"x": [[[1, 2]]]}).status == 200
    assert post("/bow", {"x": [[[1, 2]]], "method": "mean"}).status == 422
    assert post("/bow", "[" * 40 + "]" * 40).status == 400                        # too_deep
    assert post("/bow", {"x": [[[1.5] * 500]]}).status == 413                     # body_too_large
    assert post("/randn", {"seed": 1, "shape": [11, 11]}).status == 413           # too_large
    assert post("/bow", {"seed": 1, "shape": [1, 60, 1]}).status == 413           # dimension_too_large
    assert post("/attention", {"seed": 1, "shape": [1, 8, 10], "head_size": 10}).status == 413
    assert post("/bow", "{}", ct="text/plain").status == 415
    assert srv.request("HEAD", "/healthz").status == 200
    assert srv.request("GET", "/nope").status == 404
    assert srv.request("PUT", "/nope").status == 404
    assert srv.request("DELETE", "/bow").status == 405
    time.sleep(0.2)   # request_completed runs just after each response is sent
    types, s = scrape(srv)

    assert types["attnd_requests_total"] == "counter"
    assert types["attnd_request_duration_seconds"] == "histogram"
    assert types["attnd_requests_in_flight"] == "gauge"
    assert metric(s, "attnd_up") == 1 and metric(s, "attnd_ready") == 1
    req = lambda route, method, status: metric(s, "attnd_requests_total", route=route, method=method,
                                               status=str(status))
    assert req("/bow", "POST", 200) == 1
    assert req("/bow", "POST", 422) == 1
    assert req("/bow", "POST", 400) == 1
    assert req("/bow", "POST", 413) == 2
    assert req("/bow", "POST", 415) == 1
    assert req("/randn", "POST", 413) == 1
    assert req("/healthz", "HEAD", 200) == 1
    assert req("other", "GET", 404) == 1 and req("other", "PUT", 404) == 1
    assert req("/bow", "DELETE", 405) == 1
    # the scrape is in flight while it renders
    assert metric(s, "attnd_requests_in_flight") == 1
    rejected = {r: metric(s, "attnd_rejected_total", reason=r) for r in REASONS}
    assert rejected == {"body_too_large": 1, "too_large": 1, "request_too_large": 1,
                        "work_too_large": 0, "body_too_complex": 0, "dimension_too_large": 1, "too_deep": 1, "request_timeout": 0,
                        "connection_timeout": 0, "connection_limit": 0, "out_of_memory": 0,
                        "bad_request": 0, "header_timeout": 0, "send_timeout": 0,
                        "compute_timeout": 0, "client_gone": 0, "shutting_down": 0,
                        "memory_budget": 0, "idle_closed": 0}, rejected
    # every reason is always listed (a fixed label set)
    assert {dict(k[1])["reason"] for k in s if k[0] == "attnd_rejected_total"} == set(REASONS)
    # bytes in: exactly the bodies sent, by route
    for route in ("/bow", "/randn", "/attention"):
        assert metric(s, "attnd_request_bytes_total", route=route) == sum(
            n for p, n in bodies if p == route), route
    # HEAD sends no body: only the GETs of the start-up wait count
    assert metric(s, "attnd_response_bytes_total", route="/healthz") == 15 * req("/healthz", "GET", 200)
    assert metric(s, "attnd_request_duration_seconds_count", route="/bow") == 7
    assert metric(s, "attnd_request_duration_seconds_count", route="other") == 2
    assert 0 < metric(s, "attnd_request_duration_seconds_sum", route="/bow") < 5
    # routes are the table's paths (plus "other"): nothing a client names
    routes = {dict(k[1]).get("route") for k in s if "route" in dict(k[1])}
    assert "/nope" not in routes and {"/bow", "/attention", "/randn", "/healthz", "/readyz",
                                      "/metrics", "/openapi.yaml", "other"} <= routes
    # versions only with --metrics-versions or under a key (test_auth.py)
    assert not [k for k in s if k[0] == "attnd_build_info"]


def test_metrics_are_exact_under_concurrency(fresh):
    srv = fresh("--threads", "4")
    n_threads, n = 8, 40
    errors = []

    def worker():
        conn = srv.connect()
        try:
            for i in range(n):
                r = do_request(conn, "POST", "/randn", {"seed": i, "shape": [3]})
                if r.status != 200:
                    errors.append(r)
        finally:
            conn.close()
    ts = [threading.Thread(target=worker) for _ in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    time.sleep(0.2)
    _, s = scrape(srv)
    assert metric(s, "attnd_requests_total", route="/randn", method="POST", status="200") == n_threads * n
    assert metric(s, "attnd_request_duration_seconds_count", route="/randn") == n_threads * n
    body = len(json.dumps({"seed": 0, "shape": [3]}))
    assert metric(s, "attnd_request_bytes_total", route="/randn") == sum(
        len(json.dumps({"seed": i, "shape": [3]})) for i in range(n)) * n_threads
    assert body > 0


def test_metrics_count_connection_limit_and_request_timeout(fresh):
    srv = fresh("--max-per-ip", "2", "--request-timeout", "1", "--timeout", "10")
    # two connections from 127.0.0.3, each proven accepted by an answer, then
    # a third from there: closed without a response
    held = []
    try:
        for _ in range(2):
            h = raw_connect(srv.port, source="127.0.0.3")
            h.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_http_response(h, time.monotonic() + 3)[0] == 200
            held.append(h)
        extra = raw_connect(srv.port, source="127.0.0.3")
        try:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _, how = read_http_response(extra, time.monotonic() + 3)
            assert status is None and how in ("eof", "reset"), (status, how)
        except (BrokenPipeError, ConnectionResetError):
            pass
        extra.close()
    finally:
        for h in held:
            h.close()
    # a body still arriving after --request-timeout: cut, logged as 408
    s = raw_connect(srv.port, source="127.0.0.2")
    s.sendall(b"POST /bow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 20\r\n\r\n{\"x\":")
    time.sleep(1.5)
    try:
        s.sendall(b" [[[1]]]")
        s.settimeout(3)
        s.recv(100)
    except OSError:
        pass
    s.close()
    time.sleep(0.3)
    _, m = scrape(srv)
    assert metric(m, "attnd_rejected_total", reason="connection_limit") >= 1
    assert metric(m, "attnd_rejected_total", reason="request_timeout") == 1
    assert metric(m, "attnd_requests_total", route="/bow", method="POST", status="408") == 1


def test_readyz_and_drain_delay(fresh):
    srv = fresh("--drain-delay", "2", "--grace", "5")
    r = get(srv, "/readyz")
    assert (r.status, r.body, r.media_type()) == (200, b'{"status":"ready"}', "application/json")
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert srv.request("HEAD", "/readyz").status == 200
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 2
    while True:     # new connections are still accepted while draining
        r = get(srv, "/readyz")
        if r.status == 503:
            break
        assert time.monotonic() < deadline, "no 503 after SIGTERM"
        time.sleep(0.02)
    assert r.body == b'{"status":"draining"}' and r.header("Connection") == "close"
    h = get(srv, "/healthz")
    assert h.status == 200 and h.header("Connection") == "close"     # alive, just leaving
    _, s = scrape(srv)
    assert metric(s, "attnd_ready") == 0
    assert srv.proc.wait(10) == 0
    took = time.monotonic() - t0
    assert 1.8 <= took < 5, took
    log = srv.stderr_text()
    assert "attnd: signal 15, draining for 2 s (/readyz answers 503)" in log
    assert log.strip().splitlines()[-1] == "attnd: stopped"


def test_second_signal_ends_the_drain(fresh):
    srv = fresh("--drain-delay", "60")
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert get(srv, "/readyz").status == 503
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(10) == 0
    assert time.monotonic() - t0 < 3


def test_readyz_without_drain_delay_stops_at_once(fresh):
    srv = fresh()
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(10) == 0 and time.monotonic() - t0 < 2
    assert "draining" not in srv.stderr_text()


def test_log_format_json(fresh):
    srv = fresh("--log-format", "json")
    srv.request("POST", "/bow", {"x": [[[1]]]})
    srv.request("GET", '/we"ird\\path?q=1')
    srv.request("HEAD", "/healthz")
    time.sleep(0.2)
    srv.stop(10.0)
    lines = srv.stderr_text().splitlines()
    objs = [json.loads(l) for l in lines]        # every line is JSON
    # the harness's readiness probe can be logged before "listening"
    msgs = [o["msg"] for o in objs if "msg" in o]
    assert msgs[0].startswith("attnd listening on http://127.0.0.1:"), msgs
    assert objs[-1]["msg"] == "attnd: stopped"
    # The harness's readiness probes (GET /healthz) are not this test's.
    access = [o for o in objs if "method" in o and
              (o["method"], o["path"]) != ("GET", "/healthz")]
    # A line is written when its request completes, on whichever pool
    # thread served it, and each thread batches its own lines: the order
    # across threads is not promised, so a probe's line can come after
    # these.
    assert sorted((o["method"], o["path"], o["status"]) for o in access) == [
        ("GET", '/we"ird\\path', 404), ("HEAD", "/healthz", 200), ("POST", "/bow", 200)]
    access.sort(key=lambda o: o["method"] != "POST")
    for o in access:
        assert set(o) == {"ts", "method", "path", "status", "bytes", "duration_us", "remote",
                          "request_id"}, o
        assert re.fullmatch(r"[0-9a-f]{32}", o["request_id"]), o
        assert o["remote"] == "127.0.0.1" and isinstance(o["duration_us"], int)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", o["ts"]), o["ts"]
    assert access[0]["bytes"] == len(b'{"method":"softmax","weights":[[1]],"out":[[[1]]]}')


def test_log_format_from_environment_and_invalid(fresh):
    srv = fresh(env={"ATTND_LOG_FORMAT": "json"})
    assert srv.request("GET", "/healthz").status == 200
    srv.stop(10.0)
    assert all(l.startswith("{") for l in srv.stderr_text().splitlines())
    for args, env, msg in (
            (["--log-format", "xml"], {}, 'attnd: invalid --log-format "xml" (expected text or json)'),
            ([], {"ATTND_LOG_FORMAT": "JSON"}, 'attnd: invalid ATTND_LOG_FORMAT "JSON"'),
            (["--drain-delay", "-1"], {}, 'attnd: invalid --drain-delay "-1"')):
        p = subprocess.run([attnd_bin(), "--port", "0"] + args, capture_output=True, text=True,
                           timeout=10, env=dict(__import__("os").environ, **env))
        assert p.returncode == 2 and msg in p.stderr, (args, env, p.stderr)


def test_help_lists_the_new_options():
    out = subprocess.run([attnd_bin(), "--help"], capture_output=True, text=True, timeout=10).stdout
    for s in ("--drain-delay", "ATTND_DRAIN_DELAY", "--log-format", "ATTND_LOG_FORMAT",
              "GET /readyz", "GET /metrics"):
        assert s in out, s

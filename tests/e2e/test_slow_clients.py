"""Slow clients and connection limits, against dedicated instances with small limits.

- "slow": --timeout 2 --request-timeout 3.  A client dribbling a body is cut after
  --request-timeout: libmicrohttpd 0.9.75 cannot send a response while a body is
  still arriving, so the connection is closed without one and the access log shows
  "POST /bow 408 ... aborted" (docs/operations.md, "Limits and robustness"); an idle connection
  is closed after --timeout; meanwhile other clients are served within 1 s.
- "limits": --max-per-ip 4 --max-connections 8 --timeout 10.  The 5th connection
  from one address is refused (libmicrohttpd closes it); at 8 in all, a new
  client is served after the keep-alive connection idle longest is closed for
  it, or, when none is idle, answered 503 connection_limit (JSON, Retry-After)
  within 1 s -- never left without an answer.

Other source addresses are 127.0.0.2 and up (all of 127/8 is loopback on Linux).
Every test here is bounded to well under 15 s.
"""

import json
import threading
import time

import pytest

from attnd_e2e import (REPO, AttndServer, check_fixture_response, do_request, load_fixture,
                       raw_connect, read_http_response)

TIMEOUT = 2
REQUEST_TIMEOUT = 3
PER_IP = 4
MAX_CONN = 8
PROMPT = 1.0       # seconds within which other clients must be answered

BOW_FIXTURE = REPO / "tests" / "fixtures" / "bow" / "b4_t8_c2_all.json"


def _stop(srv):
    alive = srv.alive()
    rc = srv.stop(10.0)
    assert alive, "attnd died; stderr tail:\n%s" % srv.stderr_text()[-3000:]
    assert rc == 0, "exit %r after SIGTERM; stderr tail:\n%s" % (rc, srv.stderr_text()[-3000:])


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    srv = AttndServer(tmp_path_factory.mktemp("slow"), name="slow",
                      extra_args=["--timeout", str(TIMEOUT), "--request-timeout", str(REQUEST_TIMEOUT)])
    yield srv
    _stop(srv)


@pytest.fixture(scope="module")
def limits_server(tmp_path_factory):
    srv = AttndServer(tmp_path_factory.mktemp("limits"), name="limits",
                      extra_args=["--max-per-ip", str(PER_IP), "--max-connections", str(MAX_CONN),
                                  "--timeout", "10"])
    yield srv
    _stop(srv)


def timed_checks(srv, fx):
    """/healthz and a /bow fixture on fresh connections; returns (seconds, problems) for each."""
    out = []
    for what in ("healthz", "bow"):
        t0 = time.monotonic()
        try:
            conn = srv.connect(timeout=5)
            try:
                if what == "healthz":
                    r = do_request(conn, "GET", "/healthz")
                    problems = [] if r.status == 200 and r.json() == {"status": "ok"} else ["%r" % r]
                else:
                    r = do_request(conn, "POST", fx["endpoint"], fx["request"])
                    problems = check_fixture_response(fx, r)
            finally:
                conn.close()
        except OSError as e:
            problems = ["%r" % e]
        out.append((what, time.monotonic() - t0, problems))
    return out


class Dribbler(threading.Thread):
    """Sends `head`, then `body` one byte every `gap` seconds, until the server
    answers or closes, or `limit` seconds pass.  Records what happened."""

    def __init__(self, port, head, body, gap=0.25, limit=8.0):
        super().__init__(daemon=True)
        self.port, self.head, self.body, self.gap, self.limit = port, head, body, gap, limit
        self.result = None   # (how, seconds, status, body bytes, bytes sent)

    def run(self):
        s = raw_connect(self.port)
        t0 = time.monotonic()
        sent = 0
        how, status, body = "timeout", None, b""
        try:
            s.sendall(self.head)
            while time.monotonic() - t0 < self.limit and sent < len(self.body):
                try:
                    s.sendall(self.body[sent:sent + 1])
                    sent += 1
                except OSError:
                    how = "send_failed"
                    break
                status, _, body, how = read_http_response(s, time.monotonic() + self.gap)
                if how != "timeout" or status is not None:
                    break
            if how == "send_failed":   # the server closed; collect whatever it sent
                status, _, body, how = read_http_response(s, time.monotonic() + 0.5)
                how = how if status is not None else "closed"
        finally:
            s.close()
        self.result = (how, time.monotonic() - t0, status, body, sent)


def _bow_head(length):
    return ("POST /bow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % length).encode()


def _slow_body():
    body = b'{"x": [[[1, 2], [3, 4]]], "method": "loop"}'
    return body + b" " * 200          # far more than can arrive in REQUEST_TIMEOUT at 4 B/s


def _cut_ok(res):
    """A dribbled body ends in a close without an answer (the documented behaviour
    with libmicrohttpd 0.9.75), or in a 408 request_timeout JSON error should a
    later libmicrohttpd let the server send one."""
    how, took, status, body, sent = res
    if status is None:
        return how in ("eof", "reset", "closed")
    if status != 408:
        return False
    try:
        return json.loads(body)["error"]["code"] == "request_timeout"
    except (ValueError, KeyError, TypeError):
        return False


def test_slowloris_bodies_cut_while_others_served(slow_server):
    """3 clients dribble /bow bodies at 4 B/s; each is cut after --request-timeout
    (408 or close), and /healthz and a /bow fixture are answered within 1 s meanwhile."""
    fx = load_fixture(BOW_FIXTURE)
    body = _slow_body()
    ds = [Dribbler(slow_server.port, _bow_head(len(body)), body) for _ in range(3)]
    t0 = time.monotonic()
    for d in ds:
        d.start()
    checks = []
    for at in (0.5, 1.5, 2.5):         # all while the three are still dribbling
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        checks.append(timed_checks(slow_server, fx))
    for d in ds:
        d.join(12)
    assert not any(d.is_alive() for d in ds), "a dribbling client was never cut"
    for round_ in checks:
        for what, took, problems in round_:
            assert not problems, "%s while slow clients dribble: %s" % (what, problems)
            assert took < PROMPT, "%s took %.2f s while slow clients dribble" % (what, took)
    for d in ds:
        how, took, status, rbody, sent = d.result
        print("slow body: %s after %.2f s, status %s, %d of %d body bytes sent"
              % (how, took, status, sent, len(body)))
        assert _cut_ok(d.result), "dribbled body ended with %r" % (d.result[:4],)
        assert REQUEST_TIMEOUT - 0.3 <= took <= REQUEST_TIMEOUT + TIMEOUT + 1.0, \
            "cut after %.2f s (--request-timeout %d)" % (took, REQUEST_TIMEOUT)
        assert sent < len(body)
    assert slow_server.alive()
    # the access log names the cut requests: 408, and "aborted" when nothing was sent
    # (lines arriving together share a write about a millisecond later: poll)
    deadline = time.monotonic() + 3
    while True:
        log = slow_server.stderr_text()
        cut_lines = [l for l in log.splitlines() if l.startswith("POST /bow 408 ")]
        if len(cut_lines) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(cut_lines) >= 3, log[-2000:]
    for d in ds:
        if d.result[2] is None:
            assert all(l.endswith(" aborted") for l in cut_lines), cut_lines


def test_idle_connections_closed_after_timeout(slow_server):
    """A connection that sends nothing, and a keep-alive connection left idle after a
    request, are both closed by the server after --timeout (2 s)."""
    results = {}

    def idle(tag, first_request):
        s = raw_connect(slow_server.port)
        try:
            if first_request:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                status, _, _, how = read_http_response(s, time.monotonic() + 2)
                assert status == 200 and how == "ok", (status, how)
            t0 = time.monotonic()
            status, _, _, how = read_http_response(s, t0 + TIMEOUT + 3)
            results[tag] = (how, status, time.monotonic() - t0)
        finally:
            s.close()

    ts = [threading.Thread(target=idle, args=(tag, fr), daemon=True)
          for tag, fr in (("silent", False), ("keepalive", True))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)
    for tag in ("silent", "keepalive"):
        assert tag in results, "%s: no result (assertion in thread?)" % tag
        how, status, took = results[tag]
        print("idle %s: %s after %.2f s" % (tag, how, took))
        assert status is None and how in ("eof", "reset"), "%s: %r" % (tag, results[tag])
        assert TIMEOUT - 0.5 <= took <= TIMEOUT + 1.5, "%s closed after %.2f s (--timeout %d)" % (tag, took, TIMEOUT)


def test_slow_headers_do_not_block_others(slow_server):
    """Two clients dribble request headers (one byte every 0.5 s, so --timeout never
    fires) for 4 s; /healthz and /bow stay prompt.  --request-timeout covers bodies
    only, so such a client holds its connection for as long as it keeps dribbling
    (bounded by the 16 KiB per-connection memory); the test prints what it saw."""
    fx = load_fixture(BOW_FIXTURE)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    ds = [Dribbler(slow_server.port, b"", head, gap=0.5, limit=4.0) for _ in range(2)]
    for d in ds:
        d.start()
    checks = []
    for _ in range(3):
        time.sleep(1.0)
        checks.append(timed_checks(slow_server, fx))
    for d in ds:
        d.join(10)
    for round_ in checks:
        for what, took, problems in round_:
            assert not problems, "%s while headers dribble: %s" % (what, problems)
            assert took < PROMPT, "%s took %.2f s while headers dribble" % (what, took)
    for d in ds:
        how, took, status, _, sent = d.result
        print("slow headers: %s after %.2f s (%d header bytes sent), status %s" % (how, took, sent, status))
        assert status in (None, 400, 408, 431), d.result[:3]
    assert slow_server.alive()


# ---------------------------------------------------------------- connection limits

def _held(port, source, n, settle=5.0):
    """n keep-alive connections from `source`, each proven accepted by a /healthz.
    libmicrohttpd frees the slots of connections an earlier test closed only when
    it notices the close, which takes a moment on a loaded machine: each
    connection is retried for up to `settle` seconds before the test fails."""
    socks = []
    for _ in range(n):
        deadline = time.monotonic() + settle
        while True:
            s = raw_connect(port, source)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _, how = read_http_response(s, time.monotonic() + 2)
            if (status == 200 and how == "ok") or time.monotonic() > deadline:
                break
            s.close()
            time.sleep(0.2)
        assert status == 200 and how == "ok", "held connection from %s: %s %s" % (source, status, how)
        socks.append(s)
    return socks


def _probe(port, source, wait):
    """Connect from `source` and ask /healthz; returns (status, how, seconds)."""
    t0 = time.monotonic()
    try:
        s = raw_connect(port, source, timeout=wait)
    except OSError as e:
        return None, "connect_failed:%s" % type(e).__name__, time.monotonic() - t0
    try:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        except OSError:
            return None, "send_failed", time.monotonic() - t0
        status, _, _, how = read_http_response(s, t0 + wait)
        return status, how, time.monotonic() - t0
    finally:
        s.close()


def _served_again(port, source, within=3.0):
    deadline = time.monotonic() + within
    last = None
    while time.monotonic() < deadline:
        last = _probe(port, source, 1.0)
        if last[0] == 200:
            return last
        time.sleep(0.1)
    return last


def test_per_ip_limit(limits_server):
    held = _held(limits_server.port, "127.0.0.1", PER_IP)
    try:
        fifth = _probe(limits_server.port, "127.0.0.1", 1.0)
        other = _probe(limits_server.port, "127.0.0.2", 1.0)
    finally:
        for s in held:
            s.close()
    print("per-ip: 5th from 127.0.0.1 -> %r; from 127.0.0.2 -> %r" % (fifth, other))
    assert fifth[0] is None, "the %dth connection from 127.0.0.1 was served: %r" % (PER_IP + 1, fifth)
    assert fifth[2] < 1.5
    assert other[0] == 200, "another address must still be served: %r" % (other,)
    again = _served_again(limits_server.port, "127.0.0.1")
    assert again and again[0] == 200, "not served after the held connections closed: %r" % (again,)
    assert limits_server.alive()


def _busy(port, source, n):
    """n connections from `source` that are each in the middle of a request (headers
    sent, body not), so none of them is idle."""
    socks = []
    for _ in range(n):
        s = raw_connect(port, source)
        s.sendall(b"POST /bow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{")
        socks.append(s)
    time.sleep(0.3)
    return socks


def test_total_connection_limit_closes_idle_first(limits_server):
    """8 idle keep-alive connections (2 each from 127.0.0.2-5); a 9th client from
    127.0.0.6 is served at once, and the connection idle longest was closed for it."""
    held = []
    try:
        for i in range(MAX_CONN // 2):
            held += _held(limits_server.port, "127.0.0.%d" % (2 + i), 2)
        t0 = time.monotonic()
        ninth = _probe(limits_server.port, "127.0.0.6", 1.0)
        took = time.monotonic() - t0
        print("total: 9th with 8 idle held -> %r after %.3f s" % (ninth, took))
        assert ninth[0] == 200, "the 9th client was not served: %r" % (ninth,)
        # one held connection (the one idle longest) was closed by the server
        closed = []
        for i, h in enumerate(held):
            status, _, _, how = read_http_response(h, time.monotonic() + 0.2)
            if status is None and how in ("eof", "reset"):
                closed.append(i)
        print("closed for it: held %r" % closed)
        assert len(closed) == 1, closed
    finally:
        for s in held:
            s.close()
    fx = load_fixture(BOW_FIXTURE)
    again = _served_again(limits_server.port, "127.0.0.6")
    assert again and again[0] == 200, again
    for what, took, problems in timed_checks(limits_server, fx):
        assert not problems and took < PROMPT, (what, took, problems)
    assert limits_server.alive()


def test_total_connection_limit_answers_503(limits_server):
    """8 connections each mid-request (none idle): a 9th client gets 503
    connection_limit (JSON, Retry-After, Connection: close) within 1 s, not silence;
    once the 8 close, the server serves again."""
    held = []
    try:
        for i in range(MAX_CONN // 2):
            held += _busy(limits_server.port, "127.0.0.%d" % (2 + i), 2)
        t0 = time.monotonic()
        s = raw_connect(limits_server.port, "127.0.0.7")
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, head, body, how = read_http_response(s, t0 + 1.0)
        finally:
            s.close()
        took = time.monotonic() - t0
        print("total: 9th with 8 busy held -> %s %s after %.3f s" % (status, how, took))
        assert status == 503, (status, how, body)
        assert json.loads(body)["error"]["code"] == "connection_limit"
        assert "retry-after: 1" in head.lower() and "connection: close" in head.lower(), head
        assert "x-content-type-options: nosniff" in head.lower(), head
    finally:
        for h in held:
            h.close()
    again = _served_again(limits_server.port, "127.0.0.7")
    assert again and again[0] == 200, "not served after the held connections closed: %r" % (again,)
    assert limits_server.alive()

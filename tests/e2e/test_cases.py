"""Data-driven error cases: tests/cases/<name>/{request.body,case.json}.

case.json keys:
  method, path          the request line
  content_type          the Content-Type header to send, or null to send none
  status, code          expected HTTP status and error.code
  error_path            optional; a string = the expected error.path, null = error must have no "path"
  line, column, position optional (invalid_json); exact values expected
  headers               optional {name: value}; for Allow the comma-separated tokens are compared as a set
"""

import json
import socket
import time

import pytest

from attnd_e2e import CASES_DIR, case_dirs, do_request

_DIRS = case_dirs()
_MISSING = object()


def _params():
    if not _DIRS:
        return [pytest.param(None, id="NO_CASES_FOUND")]
    return [pytest.param(d, id=d.name) for d in _DIRS]


def _tokens(v):
    return {t.strip().upper() for t in v.split(",") if t.strip()}


def send_case(server, d):
    case = json.loads((d / "case.json").read_text())
    body = (d / "request.body").read_bytes()
    method = case["method"]
    if not body and method in ("GET", "HEAD", "DELETE", "OPTIONS"):
        body = None
    conn = server.connect()
    try:
        r = do_request(conn, method, case["path"], body=body, content_type=case.get("content_type"))
    finally:
        conn.close()
    return case, r


@pytest.mark.parametrize("case_dir", _params())
def test_error_case(server, case_dir):
    if case_dir is None:
        pytest.fail("no cases under %s" % CASES_DIR)
    case, r = send_case(server, case_dir)
    desc = "%s %s -> %d %r" % (case["method"], case["path"], r.status, r.body[:400])
    assert r.status == case["status"], desc
    assert r.media_type() == "application/json", "Content-Type %r; %s" % (r.header("Content-Type"), desc)
    assert r.header("Access-Control-Allow-Origin") == "*", desc
    body = r.json()
    assert isinstance(body, dict) and list(body.keys()) == ["error"], desc
    err = body["error"]
    assert isinstance(err, dict), desc
    assert err.get("status") == case["status"] and not isinstance(err.get("status"), bool), desc
    assert err.get("code") == case["code"], desc
    assert isinstance(err.get("message"), str) and err["message"].strip(), desc
    exp_path = case.get("error_path", _MISSING)
    if exp_path is None:
        assert "path" not in err, "error must carry no path; %s" % desc
    elif exp_path is not _MISSING:
        assert err.get("path", _MISSING) == exp_path, "expected path %r; %s" % (exp_path, desc)
    if case["code"] == "invalid_json":
        for k in ("line", "column", "position"):
            assert isinstance(err.get(k), int) and not isinstance(err.get(k), bool) and err[k] >= 0, \
                "invalid_json needs integer %s; %s" % (k, desc)
        assert err["line"] >= 1, desc
        for k in ("line", "column", "position"):
            if k in case:
                assert err[k] == case[k], "%s: expected %r got %r; %s" % (k, case[k], err[k], desc)
    for name, value in (case.get("headers") or {}).items():
        got = r.header(name)
        assert got is not None, "missing header %s; %s" % (name, desc)
        if name.lower() == "allow":
            assert _tokens(got) == _tokens(value), "%s: %r, expected %r" % (name, got, value)
        else:
            assert got == value, "%s: %r, expected %r" % (name, got, value)


def test_case_count():
    assert len(_DIRS) >= 30, "only %d cases" % len(_DIRS)
    for d in _DIRS:
        assert (d / "request.body").is_file() and (d / "case.json").is_file(), d
        c = json.loads((d / "case.json").read_text())
        for k in ("method", "path", "content_type", "status", "code"):
            assert k in c, "%s: case.json lacks %s" % (d.name, k)


def _raw(server, data, close_write=True, read=True, timeout=1.0):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    try:
        try:
            s.sendall(data)
            if close_write:
                s.shutdown(socket.SHUT_WR)
            if read:
                s.recv(65536)
        except OSError:
            pass
    finally:
        s.close()


# Complete-but-malformed HTTP messages. (Requests cut off mid-way are in
# test_process.py, on their own instance, since they also concern shutdown.)
RAW_ABUSE = [
    b"GARBAGE\r\n\r\n",
    b"\x00\x01\x02\xff\xfe\r\n\r\n",
    b"POST /bow HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /bow HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}",
    b"POST /bow HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
    b"POST /bow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"",
]


def test_server_survives_everything(server):
    """Runs after all cases (same module, defined later): raw malformed HTTP, then /healthz."""
    for data in RAW_ABUSE:
        _raw(server, data)
        assert server.alive(), "attnd died after raw input %r" % data[:80]
    time.sleep(0.1)
    assert server.alive(), "attnd died; stderr tail:\n%s" % server.stderr_text()[-2000:]
    r = server.request("GET", "/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}, r

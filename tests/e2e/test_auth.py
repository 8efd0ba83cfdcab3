"""API keys (--api-keys FILE): every route with a good, a missing and a
wrong key; the open ones (/healthz, /readyz, GET /, OPTIONS, /metrics with
--metrics-public); the 401's body and WWW-Authenticate; keys never in the
log; the file re-read on SIGHUP; the versions in /metrics; start-up errors."""

import signal
import subprocess

import pytest

from attnd_e2e import AttndServer, attnd_bin, do_request, free_port
from secure_e2e import KEY_A, KEY_B, wait_for_log

WRONG = "test-key-wrong-0123456789abcdef"

# Every route of the table, with a request that reaches its handler.
GUARDED = [
    ("POST", "/bow", {"x": [[[1, 2], [3, 4]]]}),
    ("POST", "/attention", {"seed": 1, "shape": [1, 2, 4], "head_size": 2}),
    ("POST", "/multihead", {"seed": 1, "shape": [1, 2, 4], "head_size": 2, "num_heads": 2}),
    ("POST", "/randn", {"seed": 1, "shape": [3]}),
    ("GET", "/openapi.yaml", None),
    ("HEAD", "/openapi.yaml", None),
    ("GET", "/metrics", None),
    ("GET", "/v2", None),
    ("GET", "/v2/health/live", None),
    ("GET", "/v2/health/ready", None),
    ("GET", "/v2/models/bow", None),
    ("GET", "/v2/models/attention/ready", None),
    ("GET", "/v2/models/multihead/versions/1", None),
    ("POST", "/v2/models/bow/infer",
     {"inputs": [{"name": "x", "shape": [1, 2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}),
    # unknown paths and wrong methods need a key too: no route discovery
    ("GET", "/nope", None),
    ("GET", "/v2/models/nope", None),
    ("GET", "/bow", None),
]
OPEN = [
    ("GET", "/healthz", None),
    ("HEAD", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", "/", None),
    ("OPTIONS", "/bow", None),
    ("OPTIONS", "/v2/models/bow/infer", None),
]


def write_keys(path, *keys):
    path.write_text("# attnd test keys\n\n" + "".join("  %s \n" % k for k in keys) + "# end\n")
    return path


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory):
    return write_keys(tmp_path_factory.mktemp("keys") / "keys", KEY_A, KEY_B)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, keyfile):
    srv = AttndServer(tmp_path_factory.mktemp("keyed"), ["--api-keys", str(keyfile)], name="keyed")
    yield srv
    assert srv.stop() == 0


def call(srv, method, path, body, key=None, scheme="Bearer"):
    headers = {"Authorization": "%s %s" % (scheme, key)} if key else {}
    return srv.request(method, path, body, headers=headers)


def comparable(r):
    """What must not depend on the key: status and body (the metrics text
    and the log-ish parts aside)."""
    return r.status, (r.body if b"attnd_" not in r.body else None)


def test_every_guarded_route_good_missing_wrong(keyed, server):
    for method, path, body in GUARDED:
        plain = call(server, method, path, body)
        good = call(keyed, method, path, body, KEY_A)
        assert comparable(good) == comparable(plain), (method, path, good, plain)
        assert call(keyed, method, path, body, KEY_B).status == plain.status, (method, path)
        for key, wrong in ((None, False), (WRONG, True)):
            r = call(keyed, method, path, body, key)
            assert r.status == 401, (method, path, key, r)
            www = r.header("WWW-Authenticate")
            assert www.startswith('Bearer realm="attnd"'), www
            assert ('error="invalid_token"' in www) == wrong, www
            assert r.header("X-Content-Type-Options") == "nosniff"
            if method == "HEAD":
                continue
            err = r.json()["error"]
            if path.startswith("/v2"):
                assert err.startswith("unauthorized: "), err          # the v2 form
            else:
                assert err["status"] == 401 and err["code"] == "unauthorized", err
                assert ("not one of this server's keys" in err["message"]) == wrong, err
                assert wrong or "Authorization: Bearer" in err["message"], err


def test_open_routes_need_no_key(keyed, server):
    for method, path, body in OPEN:
        r, plain = call(keyed, method, path, body), call(server, method, path, body)
        assert r.status == plain.status and r.status in (200, 204), (method, path, r)
        # a wrong key on an open route is no reason to refuse
        assert call(keyed, method, path, body, WRONG).status == r.status


def test_near_misses_are_wrong(keyed):
    for token in (KEY_A[:-1], KEY_A + "x", KEY_A.upper(), " " + KEY_B[1:], KEY_A[::-1]):
        assert call(keyed, "GET", "/v2", None, token).status == 401, token
    # the scheme is case-insensitive, surrounding blanks are not part of the key
    assert call(keyed, "GET", "/v2", None, KEY_A, scheme="bearer").status == 200
    assert call(keyed, "GET", "/v2", None, KEY_A + "  ", scheme="Bearer ").status == 200
    # another scheme, or a bare key, is a missing key
    for value in ("Basic " + KEY_A, KEY_A, "Bearer", "Bearer "):
        r = keyed.request("GET", "/v2", headers={"Authorization": value})
        assert r.status == 401 and "invalid_token" not in r.header("WWW-Authenticate"), value
    # comments and blank lines of the file are not keys
    assert call(keyed, "GET", "/v2", None, "#", scheme="Bearer").status == 401
    assert call(keyed, "GET", "/v2", None, "attnd test keys").status == 401


def test_401_keeps_the_connection_and_drains_the_body(keyed):
    conn = keyed.connect()
    try:
        big = {"x": [[[float(i), 1.0] for i in range(2000)]]}
        r = do_request(conn, "POST", "/bow", big)
        assert r.status == 401
        r = do_request(conn, "POST", "/bow", {"x": [[[1, 2]]]},
                       headers={"Authorization": "Bearer " + KEY_A})
        assert r.status == 200, r
    finally:
        conn.close()


def test_keys_never_logged(keyed):
    call(keyed, "GET", "/v2", None, KEY_A)
    call(keyed, "GET", "/v2", None, WRONG)
    call(keyed, "POST", "/randn", {"seed": 1, "shape": [1]}, KEY_B)
    log = keyed.stderr_text()
    for secret in (KEY_A, KEY_B, WRONG, KEY_A[:12], WRONG[:12]):
        assert secret not in log
    assert "GET /v2 401" in log       # the request itself is logged


def test_metrics_versions_only_under_a_key_or_when_asked(tmp_path, keyfile):
    pub = AttndServer(tmp_path / "pub", ["--api-keys", str(keyfile), "--metrics-public"], name="pub")
    ver = AttndServer(tmp_path / "ver", ["--metrics-versions"], name="ver")
    try:
        open_ = pub.request("GET", "/metrics")
        assert open_.status == 200 and b"attnd_requests_total" in open_.body
        assert b"attnd_build_info" not in open_.body and b'libmicrohttpd="' not in open_.body
        keyed_ = call(pub, "GET", "/metrics", None, KEY_A)
        assert b'attnd_build_info{version="' in keyed_.body and b'libmicrohttpd="' in keyed_.body
        # a wrong key on the public /metrics: served, without versions
        wrong = call(pub, "GET", "/metrics", None, WRONG)
        assert wrong.status == 200 and b"attnd_build_info" not in wrong.body
        # other routes stay guarded under --metrics-public
        assert pub.request("GET", "/openapi.yaml").status == 401
        asked = ver.request("GET", "/metrics")
        assert asked.status == 200 and b'attnd_build_info{version="' in asked.body
    finally:
        assert pub.stop() == 0 and ver.stop() == 0


def test_metrics_count_401(keyed):
    call(keyed, "GET", "/openapi.yaml", None)
    text = call(keyed, "GET", "/metrics", None, KEY_A).body.decode()
    assert 'route="/openapi.yaml",method="GET",status="401"' in text


def test_sighup_rereads_the_key_file(tmp_path):
    keys = write_keys(tmp_path / "keys", KEY_A)
    srv = AttndServer(tmp_path, ["--api-keys", str(keys)], name="reload")
    try:
        assert call(srv, "GET", "/v2", None, KEY_A).status == 200
        assert call(srv, "GET", "/v2", None, KEY_B).status == 401
        write_keys(keys, KEY_B)
        mark = len(srv.stderr_text())
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_for_log(srv, "API keys reloaded: 1 from", start=mark), srv.stderr_text()
        assert call(srv, "GET", "/v2", None, KEY_B).status == 200
        assert call(srv, "GET", "/v2", None, KEY_A).status == 401
        # a file that is gone, or holds no key: logged, the keys in use kept
        for bad, why in ((None, "No such file"), ("# nothing\n", "holds no key")):
            if bad is None:
                keys.unlink()
            else:
                keys.write_text(bad)
            mark = len(srv.stderr_text())
            srv.proc.send_signal(signal.SIGHUP)
            assert wait_for_log(srv, "API keys not reloaded", start=mark), srv.stderr_text()
            assert why in srv.stderr_text()[mark:]
            assert call(srv, "GET", "/v2", None, KEY_B).status == 200
        assert srv.alive()
    finally:
        assert srv.stop() == 0


def test_keys_from_the_environment(tmp_path, keyfile):
    srv = AttndServer(tmp_path, env_extra={"ATTND_API_KEYS": str(keyfile)}, name="env")
    try:
        assert srv.request("GET", "/v2").status == 401
        assert call(srv, "GET", "/v2", None, KEY_A).status == 200
    finally:
        assert srv.stop() == 0


def start_fails(args, expect):
    p = subprocess.run([attnd_bin(), "--host", "127.0.0.1", "--port", str(free_port())] + args,
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert expect in p.stderr, p.stderr
    return p.stderr


def test_key_file_startup_errors(tmp_path):
    missing = tmp_path / "missing"
    start_fails(["--api-keys", str(missing)], "cannot read --api-keys %s: No such file" % missing)
    empty = write_keys(tmp_path / "empty")
    start_fails(["--api-keys", str(empty)], "holds no key")
    short = write_keys(tmp_path / "short", KEY_A, "short-key")
    err = start_fails(["--api-keys", str(short)], "line 4: a key needs at least 16 characters")
    assert "short-key" not in err and KEY_A not in err       # keys are never printed
    spaced = write_keys(tmp_path / "spaced", "two words in one key line")
    err = start_fails(["--api-keys", str(spaced)], "line 3: a key may hold only")
    assert "two words" not in err

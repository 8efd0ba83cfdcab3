"""Process-level behaviour: --help, env configuration, graceful shutdown."""

import socket
import subprocess
import time

from attnd_e2e import AttndServer, do_request


def test_help(attnd_path):
    p = subprocess.run([attnd_path, "--help"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    text = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode == 0, "--help exited %d: %s" % (p.returncode, text)
    for flag in ("--port", "--host", "--threads", "--max-body"):
        assert flag in text, "usage does not mention %s:\n%s" % (flag, text)
    assert "usage" in text.lower(), text


def test_help_mentions_max_elements(attnd_path):
    p = subprocess.run([attnd_path, "--help"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    assert "--max-elements" in (p.stdout + p.stderr).decode("utf-8", "replace")


def test_help_total_follows_max_elements(attnd_path):
    p = subprocess.run([attnd_path, "--help"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    text = " ".join(p.stdout.decode().split())
    assert "413 request_too_large; default 4 x --max-elements (134217728)" in text, text


def test_max_total_elements_follows_max_elements(attnd_path, tmp_path):
    """--max-total-elements defaults to 4 x --max-elements, whatever that is
    (here 100, so 400): a /bow of x 4x5x5 (100 floats, T*T = 25) needs
    (m+1)(B*T*C + T*T) = 250 floats with one method and 500 with all
    three.  A --max-total-elements or ATTND_MAX_TOTAL_ELEMENTS given wins."""
    x = [[[0.5] * 5 for _ in range(5)] for _ in range(4)]
    runs = [(["--max-elements", "100"], {}, 400),
            (["--max-elements", "100", "--max-total-elements", "500"], {}, None),
            (["--max-elements", "100"], {"ATTND_MAX_TOTAL_ELEMENTS": "500"}, None),
            ([], {"ATTND_MAX_ELEMENTS": "100"}, 400)]
    for i, (args, env, limit) in enumerate(runs):
        srv = AttndServer(tmp_path, extra_args=args, env_extra=env, name="total%d" % i)
        try:
            assert srv.post("/bow", {"x": x}).status == 200
            r = srv.post("/bow", {"x": x, "method": "all"})
            if limit is None:
                assert r.status == 200, (args, env, r)
            else:
                assert r.status == 413, (args, env, r)
                err = r.json()["error"]
                assert err["code"] == "request_too_large", err
                assert err["message"] == (
                    "this request needs 500 floats in all (inputs, intermediates and results), "
                    "over this server's limit of %d (--max-total-elements)" % limit), err
        finally:
            assert srv.stop(10.0) == 0


def test_max_work(tmp_path):
    """--max-work bounds the multiply-adds of one request, counted from its shapes
    before anything is allocated: /attention B*(3*C*hs*T + 2*T*T*hs), /bow per
    method T*T plus B*T*T*C (matmul, softmax) or B*T*C (the loop's running sums)."""
    # 1x64x8, head_size 8: 3*8*8*64 + 2*64*64*8 = 77824 multiply-adds
    body = {"seed": 1, "shape": [1, 64, 8], "head_size": 8}
    for limit, ok in ((77824, True), (77823, False)):
        srv = AttndServer(tmp_path, extra_args=["--max-work", str(limit)], name="work%d" % limit)
        try:
            r = srv.post("/attention", body)
            if ok:
                assert r.status == 200, r
            else:
                assert r.status == 413, r
                err = r.json()["error"]
                assert err["code"] == "work_too_large" and "path" not in err, err
                assert err["message"] == (
                    "this request needs 7.782e+04 multiply-adds, over this server's limit of "
                    "7.782e+04 (--max-work, about a second of one core); send a smaller "
                    "batch, sequence, C or head_size"), err
        finally:
            assert srv.stop(10.0) == 0
    # The loop method is O(T*T + B*T*C): T = 2048 is cheap, and refused only by a
    # limit under its 2048*2048 + 2048 multiply-adds, unlike the matmul method
    srv = AttndServer(tmp_path, extra_args=["--max-work", str(2048 * 2048 + 2048)], name="workloop")
    try:
        r = srv.post("/bow", {"seed": 1, "shape": [1, 2048, 1], "method": "loop"})
        assert r.status == 200, r
        r = srv.post("/bow", {"seed": 1, "shape": [1, 2048, 1], "method": "matmul"})
        assert r.status == 413 and r.json()["error"]["code"] == "work_too_large", r
    finally:
        assert srv.stop(10.0) == 0
    # the default (10^10) refuses the 81-byte /attention (1.2e11)
    srv = AttndServer(tmp_path, name="workdefault")
    try:
        r = srv.post("/attention", {"seed": 1, "shape": [1, 4096, 2048], "head_size": 2048})
        assert r.status == 413 and r.json()["error"]["code"] == "work_too_large", r
    finally:
        assert srv.stop(10.0) == 0


def test_bad_flag_fails(attnd_path):
    p = subprocess.run([attnd_path, "--no-such-flag"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    assert p.returncode != 0


def test_env_port_and_sigterm_with_idle_keepalive(attnd_path, tmp_path):
    srv = AttndServer(tmp_path, port_via_env=True, name="envport")
    try:
        assert "--port" not in srv.cmd
        conn = srv.connect()
        r = do_request(conn, "GET", "/healthz")
        assert r.status == 200 and r.json() == {"status": "ok"}
        # leave `conn` idle and open: shutdown must not wait on it forever
        rc = srv.stop(10.0)
        assert rc == 0, "exit %r after SIGTERM with an idle keep-alive connection; stderr:\n%s" % (
            rc, srv.stderr_text()[-2000:])
        conn.close()
        text = srv.stderr_text()
        assert "attnd listening on http://127.0.0.1:%d" % srv.port in text, text[:500]
    finally:
        if srv.alive():
            srv.proc.kill()
            srv.proc.wait()


def test_env_limits_honoured(attnd_path, tmp_path):
    srv = AttndServer(tmp_path, env_extra={"ATTND_MAX_BODY": "200", "ATTND_THREADS": "2"}, name="envlimits")
    try:
        r = srv.post("/bow", {"x": [[[0] * 100]]})
        assert r.status == 413 and r.json()["error"]["code"] == "body_too_large", r
        r = srv.post("/bow", {"x": [[[0, 1]]]})
        assert r.status == 200, r
    finally:
        assert srv.stop(10.0) == 0


def test_sigterm_finishes_in_flight_request(attnd_path, tmp_path):
    """A request whose body is still arriving when SIGTERM lands gets its answer, then exit 0."""
    srv = AttndServer(tmp_path, name="inflight")
    try:

        body = b'{"x": [[[1, 2], [3, 4]]], "method": "loop"}'
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        head = ("POST /bow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)).encode()
        s.sendall(head + body[:10])
        time.sleep(0.3)
        srv.proc.send_signal(15)
        time.sleep(0.3)
        s.sendall(body[10:])
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
        assert b'"out"' in data
        srv.proc.wait(10)
        assert srv.proc.returncode == 0
    finally:
        if srv.alive():
            srv.proc.kill()
            srv.proc.wait()


def test_client_gone_mid_request_does_not_block_shutdown(attnd_path, tmp_path):
    """Clients that send headers (and part of a body) and then disconnect are not in flight:
    SIGTERM must still stop the server promptly (well inside the 10 s budget)."""
    import socket
    srv = AttndServer(tmp_path, name="gone")
    try:
        partial = [
            b'POST /bow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"x":',
            b'POST /bow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n',
            b'POST /attention HTTP/1.1\r\nHost: x\r\nContent-Le',
        ]
        for data in partial:
            for _ in range(3):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
                s.sendall(data)
                s.close()
        time.sleep(0.3)
        assert srv.alive()
        r = srv.request("GET", "/healthz")
        assert r.status == 200
        t0 = time.monotonic()
        rc = srv.stop(10.0)
        took = time.monotonic() - t0
        tail = srv.stderr_text()[-600:]
        assert rc == 0, "exit %r (None = still running after 10 s); stderr tail:\n%s" % (rc, tail)
        assert took < 5.0, "shutdown took %.1f s: disconnected clients were waited for; stderr tail:\n%s" % (took, tail)
    finally:
        if srv.alive():
            srv.proc.kill()
            srv.proc.wait()

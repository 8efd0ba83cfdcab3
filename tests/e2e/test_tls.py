"""HTTPS (--tls-cert/--tls-key): handshakes with Python's ssl and curl
against a throwaway CA made here, TLS 1.0/1.1 refused by default (and
accepted when --tls-priorities allows them, so the refusal is the server's),
a wrong host name refused by the client, the pair re-read on SIGHUP without
dropping an open connection, and a clear start-up error for each bad pair."""

import os
import signal
import socket
import ssl
import subprocess
import time
import warnings

import pytest

from attnd_e2e import attnd_bin, do_request, free_port
from secure_e2e import CA, TlsServer, wait_for_log


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, ca):
    cert, key = ca.issue("main")
    srv = TlsServer(tmp_path_factory.mktemp("tls"), ca, ["--tls-cert", str(cert), "--tls-key", str(key)])
    yield srv
    assert srv.alive(), srv.stderr_text()[-2000:]
    assert srv.stop() == 0


def handshake(port, ctx, host="localhost"):
    """The negotiated version and the server's certificate (DER)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=host) as t:
            return t.version(), t.getpeercert(binary_form=True)


def old_tls_context(ca, version):
    """A client that offers only TLS 1.0 or 1.1 (OpenSSL 3 needs security
    level 0 for them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ca.client_context(minimum=version, maximum=version)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def test_handshake_tls12_and_tls13_and_requests(tls_server, ca):
    for v, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        got, _ = handshake(tls_server.port, ca.client_context(minimum=v, maximum=v))
        assert got == name
    # keep-alive: several requests, one connection
    conn = tls_server.connect()
    try:
        for seed in range(3):
            r = do_request(conn, "POST", "/randn", {"seed": seed, "shape": [2]})
            assert r.status == 200, r
            assert len(r.json()["data"]) == 2
        r = do_request(conn, "GET", "/healthz")
        assert r.status == 200 and r.header("X-Content-Type-Options") == "nosniff"
    finally:
        conn.close()
    assert "listening on https://127.0.0.1:%d" % tls_server.port in tls_server.stderr_text()


def test_curl_verifies_the_chain(tls_server, ca):
    out = subprocess.run(["curl", "-sS", "--cacert", str(ca.pem_path), "-H", "Content-Type: application/json",
                          "--data", '{"seed": 1, "shape": [3]}',
                          "https://localhost:%d/randn" % tls_server.port],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert "\"data\"" in out.stdout
    # without the CA, curl refuses the certificate (60: peer not verified)
    out = subprocess.run(["curl", "-sS", "https://localhost:%d/healthz" % tls_server.port],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 60, (out.returncode, out.stderr)


def test_tls10_and_tls11_refused_by_default(tls_server, ca):
    for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            handshake(tls_server.port, old_tls_context(ca, v))
    out = subprocess.run(["curl", "-sS", "--cacert", str(ca.pem_path), "--tlsv1.0", "--tls-max", "1.1",
                          "--ciphers", "DEFAULT@SECLEVEL=0", "https://localhost:%d/healthz" % tls_server.port],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 35, (out.returncode, out.stderr)      # handshake failed
    assert tls_server.request("GET", "/healthz").status == 200


def test_old_versions_only_when_priorities_allow_them(tmp_path, ca):
    """The positive control of the refusal above: the same clients get
    through when --tls-priorities adds TLS 1.0 and 1.1."""
    cert, key = ca.issue("old")
    srv = TlsServer(tmp_path, ca, ["--tls-cert", str(cert), "--tls-key", str(key),
                                   "--tls-priorities", "NORMAL:+VERS-TLS1.1:+VERS-TLS1.0"])
    try:
        assert handshake(srv.port, old_tls_context(ca, ssl.TLSVersion.TLSv1_1))[0] == "TLSv1.1"
        assert handshake(srv.port, old_tls_context(ca, ssl.TLSVersion.TLSv1))[0] == "TLSv1"
    finally:
        assert srv.stop() == 0


def test_wrong_host_name_refused(tls_server, ca):
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch|match"):
        handshake(tls_server.port, ca.client_context(), host="attnd.example.org")
    out = subprocess.run(["curl", "-sS", "--cacert", str(ca.pem_path),
                          "--resolve", "attnd.example.org:%d:127.0.0.1" % tls_server.port,
                          "https://attnd.example.org:%d/healthz" % tls_server.port],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 60, (out.returncode, out.stderr)


def test_plain_http_to_the_tls_port_gets_no_answer(tls_server):
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert b"HTTP/1.1 200" not in data and b'"ok"' not in data
    assert tls_server.request("GET", "/healthz").status == 200


def test_sighup_reloads_the_pair_without_dropping_connections(tmp_path, ca):
    cert, key = ca.issue("live", cn="first.localhost")
    srv = TlsServer(tmp_path / "srv", ca, ["--tls-cert", str(cert), "--tls-key", str(key)])
    try:
        _, der1 = handshake(srv.port, ca.client_context())
        held = srv.connect()
        assert do_request(held, "GET", "/healthz").status == 200

        # a new pair (new key too) written over the files, then SIGHUP
        new_cert, new_key = ca.issue("next", cn="second.localhost")
        os.replace(new_cert, cert)
        os.replace(new_key, key)
        mark = len(srv.stderr_text())
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_for_log(srv, "TLS certificate reloaded", start=mark), srv.stderr_text()[-2000:]
        assert "CN=second.localhost" in srv.stderr_text()[mark:]

        _, der2 = handshake(srv.port, ca.client_context())
        assert der2 != der1 and der2 == ssl.PEM_cert_to_DER_cert(cert.read_text())
        # the connection opened before the reload still works
        r = do_request(held, "POST", "/randn", {"seed": 3, "shape": [2]})
        assert r.status == 200, r
        held.close()

        # a bad pair on SIGHUP: refused, logged, the good one kept
        _, other_key = ca.issue("other")
        os.replace(other_key, key)
        mark = len(srv.stderr_text())
        srv.proc.send_signal(signal.SIGHUP)
        assert wait_for_log(srv, "TLS pair not reloaded", start=mark), srv.stderr_text()[-2000:]
        assert "mismatched pair" in srv.stderr_text()[mark:]
        _, der3 = handshake(srv.port, ca.client_context())
        assert der3 == der2
        assert srv.alive()
    finally:
        assert srv.stop() == 0


# ------------------------------------------------------------ start-up errors

def start_fails(args, expect):
    """attnd with these arguments exits 1 at once and says expect."""
    p = subprocess.run([attnd_bin(), "--host", "127.0.0.1", "--port", str(free_port())] + args,
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert expect in p.stderr, p.stderr
    assert "listening" not in p.stderr
    return p.stderr


def test_startup_errors(tmp_path, ca):
    cert, key = ca.issue("good")
    _, other_key = ca.issue("other")
    exp_cert, exp_key = ca.issue("expired", days=(-30, -1))
    fut_cert, fut_key = ca.issue("future", days=(2, 30))
    enc_cert, enc_key = ca.issue("encrypted", password="secret")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    missing = str(tmp_path / "missing.pem")

    start_fails(["--tls-cert", missing, "--tls-key", str(key)],
                "cannot read --tls-cert %s: No such file or directory" % missing)
    start_fails(["--tls-cert", str(cert), "--tls-key", missing],
                "cannot read --tls-key %s: No such file or directory" % missing)
    # a directory: opened but unreadable, whoever runs the test (root too)
    start_fails(["--tls-cert", str(tmp_path), "--tls-key", str(key)],
                "cannot read --tls-cert %s: Is a directory" % tmp_path)
    start_fails(["--tls-cert", str(cert), "--tls-key", str(other_key)], "mismatched pair")
    start_fails(["--tls-cert", str(exp_cert), "--tls-key", str(exp_key)], "expired on")
    start_fails(["--tls-cert", str(fut_cert), "--tls-key", str(fut_key)], "is not valid before")
    start_fails(["--tls-cert", str(not_pem), "--tls-key", str(key)], "holds no PEM certificate")
    start_fails(["--tls-cert", str(cert), "--tls-key", str(not_pem)], "holds no usable PEM private key")
    start_fails(["--tls-cert", str(enc_cert), "--tls-key", str(enc_key)], "it is encrypted")
    start_fails(["--tls-cert", str(cert)], "--tls-cert given without --tls-key")
    start_fails(["--tls-key", str(key)], "--tls-key given without --tls-cert")
    start_fails(["--tls-cert", str(cert), "--tls-key", str(key), "--tls-priorities", "NORMAL:+NOPE"],
                "invalid --tls-priorities")


def test_tls_from_the_environment(tmp_path, ca):
    cert, key = ca.issue("env")
    srv = TlsServer(tmp_path, ca, env_extra={"ATTND_TLS_CERT": str(cert), "ATTND_TLS_KEY": str(key)})
    try:
        assert handshake(srv.port, ca.client_context())[0] in ("TLSv1.2", "TLSv1.3")
    finally:
        assert srv.stop() == 0


def healthcheck(port, tls_cert=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTND_")}
    env.update(ATTND_PORT=str(port), ATTND_HOST="127.0.0.1")
    if tls_cert:
        env["ATTND_TLS_CERT"] = str(tls_cert)
    return subprocess.run([attnd_bin(), "--healthcheck"], env=env, capture_output=True, text=True,
                          timeout=20)


def test_healthcheck_command(tls_server, server):
    """attnd --healthcheck (the image's HEALTHCHECK): GET /healthz over
    HTTPS when ATTND_TLS_CERT is set, plain HTTP otherwise."""
    assert healthcheck(tls_server.port, tls_cert="/any/cert.pem").returncode == 0
    p = healthcheck(tls_server.port)            # plain HTTP to the TLS port
    assert p.returncode == 1 and "did not answer 200" in p.stderr, p.stderr
    assert healthcheck(server.port).returncode == 0
    p = healthcheck(server.port, tls_cert="/any/cert.pem")   # TLS to a plain port
    assert p.returncode == 1 and "TLS handshake" in p.stderr, p.stderr
    p = healthcheck(free_port())
    assert p.returncode == 1 and "cannot connect" in p.stderr, p.stderr

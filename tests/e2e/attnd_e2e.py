"""Shared helpers for the attnd end-to-end suite (stdlib only)."""

import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
E2E_DIR = Path(__file__).resolve().parent
FIXTURES_DIR = REPO / "tests" / "fixtures"
CASES_DIR = REPO / "tests" / "cases"
DATA_DIR = E2E_DIR / "data"

ABS_TOL = 1e-5
REL_TOL = 1e-5


def attnd_bin():
    return os.environ.get("ATTND_BIN") or str(REPO / "build" / "attnd")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage (case-insensitive)
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def media_type(self):
        ct = self.headers.get("Content-Type")
        if ct is None:
            return None
        return ct.split(";")[0].strip().lower()

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:300])


def do_request(conn, method, path, body=None, headers=None, content_type="application/json"):
    """One request on an existing HTTPConnection; returns a Response (body fully read)."""
    hdrs = dict(headers or {})
    if content_type is not None and body is not None:
        hdrs.setdefault("Content-Type", content_type)
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    return Response(r.status, r.headers, data)


class AttndServer:
    """A running attnd process on 127.0.0.1 with stderr captured to a file."""

    def __init__(self, workdir, extra_args=(), env_extra=None, port_via_env=False, name="attnd",
                 preexec=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.stderr_path = self.workdir / (name + ".stderr")
        self.stdout_path = self.workdir / (name + ".stdout")
        cmd = [attnd_bin(), "--host", "127.0.0.1"]
        env = dict(os.environ)
        if port_via_env:
            env["ATTND_PORT"] = str(self.port)
        else:
            cmd += ["--port", str(self.port)]
        cmd += list(extra_args)
        if env_extra:
            env.update(env_extra)
        self.cmd = cmd
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, env=env, preexec_fn=preexec)
        self._wait_ready(10.0)

    def stderr_text(self):
        if not self._err.closed:
            self._err.flush()
        return self.stderr_path.read_bytes().decode("utf-8", "replace")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError("attnd %r exited with %s before becoming ready; stderr:\n%s"
                                   % (self.cmd, rc, self.stderr_text()))
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                try:
                    r = do_request(conn, "GET", "/healthz")
                finally:
                    conn.close()
                if r.status == 200:
                    return
                last = r
            except OSError as e:
                last = e
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("attnd %r not ready within %ss (last: %r); stderr:\n%s"
                           % (self.cmd, timeout, last, self.stderr_text()))

    def connect(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, content_type="application/json"):
        conn = self.connect()
        try:
            return do_request(conn, method, path, body, headers, content_type)
        finally:
            conn.close()

    def post(self, path, obj):
        return self.request("POST", path, obj)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, wait; returns the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close_files()
                return None
        self._close_files()
        return self.proc.returncode

    def _close_files(self):
        for f in (self._err, self._out):
            try:
                f.close()
            except OSError:
                pass


# ---------------------------------------------------------------- comparison

def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def compare(expected, got, path="", out=None, abs_tol=ABS_TOL, rel_tol=REL_TOL, limit=20):
    """Collect mismatches (strings) between expected and got into `out`."""
    if out is None:
        out = []
    if len(out) >= limit:
        return out
    where = path or "<root>"
    if expected is None:
        if got is not None:
            out.append("%s: expected null, got %r" % (where, got))
    elif isinstance(expected, bool):
        if not isinstance(got, bool) or got != expected:
            out.append("%s: expected %r, got %r" % (where, expected, got))
    elif is_number(expected):
        if not is_number(got):
            out.append("%s: expected number %r, got %r" % (where, expected, got))
        elif not (abs(got - expected) <= abs_tol + rel_tol * abs(expected)):
            out.append("%s: expected %r, got %r (diff %.3g)" % (where, expected, got, abs(got - expected)))
    elif isinstance(expected, str):
        if got != expected:
            out.append("%s: expected %r, got %r" % (where, expected, got))
    elif isinstance(expected, list):
        if not isinstance(got, list):
            out.append("%s: expected array of %d, got %r" % (where, len(expected), type(got).__name__))
        elif len(got) != len(expected):
            out.append("%s: expected length %d, got %d" % (where, len(expected), len(got)))
        else:
            for i, (e, g) in enumerate(zip(expected, got)):
                compare(e, g, "%s[%d]" % (path, i), out, abs_tol, rel_tol, limit)
    elif isinstance(expected, dict):
        if not isinstance(got, dict):
            out.append("%s: expected object, got %r" % (where, type(got).__name__))
        else:
            for k, e in expected.items():
                if k not in got:
                    out.append("%s: missing key %r" % (where, k))
                else:
                    compare(e, got[k], "%s.%s" % (path, k) if path else k, out, abs_tol, rel_tol, limit)
    else:
        out.append("%s: unsupported expected value %r" % (where, expected))
    return out


def shape(v):
    s = []
    while isinstance(v, list):
        s.append(len(v))
        v = v[0] if v else None
    return s


# ---------------------------------------------------------------- fixtures / cases

def fixture_files():
    return sorted(FIXTURES_DIR.glob("*/*.json"))


def load_fixture(p):
    with open(p, "rb") as f:
        d = json.loads(f.read().decode("utf-8"))
    ep = d["endpoint"]
    if not ep.startswith("/"):
        ep = "/" + ep
    d["endpoint"] = ep
    return d


def case_dirs():
    if not CASES_DIR.is_dir():
        return []
    return sorted(p for p in CASES_DIR.iterdir() if p.is_dir())


def check_fixture_response(fx, r):
    """Return a list of problems with response r for fixture fx."""
    problems = []
    if r.status != 200:
        return ["status %d (expected 200), body %r" % (r.status, r.body[:500])]
    if r.media_type() != "application/json":
        problems.append("Content-Type %r" % r.header("Content-Type"))
    try:
        got = r.json()
    except ValueError as e:
        return problems + ["body is not JSON (%s): %r" % (e, r.body[:300])]
    exp = fx["expect"]
    if not isinstance(got, dict):
        return problems + ["body is not an object: %r" % (r.body[:300],)]
    if fx["endpoint"] != "/bow":
        if list(got.keys()) != list(exp.keys()):
            problems.append("keys %r, expected exactly %r (in order)" % (list(got.keys()), list(exp.keys())))
    for k in exp:
        if k in got and isinstance(exp[k], list) and shape(exp[k]) != shape(got[k]):
            problems.append("%s: shape %r, expected %r" % (k, shape(got[k]), shape(exp[k])))
    compare(exp, got, "", problems)
    return problems


# ---------------------------------------------------------------- float32 formatting

def f32(x):
    """Round a Python float to the nearest float32 (C conversion, so 3.4028235e38 -> FLT_MAX)."""
    return ctypes.c_float(x).value


def shortest_f32_digits(v):
    """Number of significant digits of the shortest decimal round-tripping float32 v."""
    if v == 0:
        return 1
    for p in range(1, 10):
        if f32(float("%.*e" % (p - 1, v))) == v:
            return p
    return 9


def significant_digits(literal):
    s = literal.lstrip("-")
    mant = s.split("e")[0].split("E")[0]
    digits = mant.replace(".", "").lstrip("0")
    if "." not in mant:
        digits = digits.rstrip("0")  # 100 has one significant digit; 1.00 has three
    return max(len(digits), 1)


# ---------------------------------------------------------------- hostile-input helpers
# (used by test_hostile_json.py, test_slow_clients.py, test_shutdown_load.py)

def error_of(r):
    """Validate r as attnd's JSON error envelope; return (status, code).

    Raises AssertionError with the response when the body is not
    {"error": {"status": <r.status>, "code": str, "message": str, ...}}."""
    assert r.media_type() == "application/json", "Content-Type %r: %r" % (r.header("Content-Type"), r)
    try:
        body = r.json()
    except ValueError as e:
        raise AssertionError("error body is not JSON (%s): %r" % (e, r)) from None
    assert isinstance(body, dict) and list(body) == ["error"], "not an error envelope: %r" % (r,)
    err = body["error"]
    assert isinstance(err, dict), r
    assert err.get("status") == r.status and not isinstance(err.get("status"), bool), \
        "error.status %r differs from HTTP %d" % (err.get("status"), r.status)
    assert isinstance(err.get("code"), str) and err["code"], r
    assert isinstance(err.get("message"), str) and err["message"].strip(), r
    return r.status, err["code"]


def raw_connect(port, source=None, timeout=5.0):
    """A plain TCP connection to 127.0.0.1:port, optionally from another loopback
    address (source="127.0.0.2": Linux routes all of 127/8 to lo)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_http_response(sock, deadline):
    """Read one HTTP/1.1 response (Content-Length framed) from a raw socket until
    `deadline` (time.monotonic()).  Returns (status, headers_text, body, how):
    how = "ok" (complete), "eof" (closed first), "reset", or "timeout";
    status is None when no status line arrived."""
    data = b""
    how = "timeout"
    need = None
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            how = "reset"
            break
        except OSError:
            how = "reset"
            break
        if not chunk:
            how = "eof"
            break
        data += chunk
        if need is None and b"\r\n\r\n" in data:
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
            need = len(head) + 4
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    need += int(v.strip())
        if need is not None and len(data) >= need:
            how = "ok"
            break
    status = None
    head_text = ""
    body = b""
    if data.startswith(b"HTTP/1."):
        head_text, _, body = data.partition(b"\r\n\r\n")
        head_text = head_text.decode("latin-1")
        try:
            status = int(head_text.split(" ", 2)[1])
        except (IndexError, ValueError):
            status = None
    return status, head_text, body, how

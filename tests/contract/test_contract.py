"""The contract test: openapi.yaml against a running attnd.

Every example of a response in openapi.yaml is turned into a real request
(the request example of the same name, the operation's plain GET/HEAD/
OPTIONS, or the example's `x-request`, described in the document's
introduction), sent to a real build/attnd, and the answer must have the
example's status and media type, validate against the schema of that
operation and status (JSON Schema draft 2020-12, $refs resolved in
openapi.yaml, by Debian's python3-jsonschema), carry the response's
declared headers with valid values, and equal the example (floats within
|a-b| <= 1e-5 + 1e-5*|b|, keys in order).  Responses without a body (HEAD,
preflights) are requested too.  So the spec cannot drift from the server:
a changed message, field, status or header fails here.

Examples that need another server get one: `server` flags (small limits,
--drain-delay), `rlimit_as_kb` (an address-space cap, for the 503s) and
`sigterm`.  The only examples not sent are listed in SKIPS, each with its
reason, and pytest reports them as skipped.
"""

import gzip
import http.client
import json
import math
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator, RefResolver

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from attnd_e2e import ABS_TOL, REL_TOL, attnd_bin, free_port  # noqa: E402

SPEC_PATH = REPO / "openapi.yaml"
METHODS = ("get", "head", "post", "put", "delete", "options", "patch")

# Examples that are documented but cannot be produced, with the reason
# (keyed by where the example lives in openapi.yaml).
SKIPS = {
    "#/components/responses/InternalError":
        "500 internal_error is reserved for bugs: the spec says no code path returns it",
}


class SpecLoader(yaml.SafeLoader):
    """YAML 1.2's floats: PyYAML (YAML 1.1) reads 1e39 or 3e-8 as strings."""


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?$|^[-+]?\d+[eE][-+]?\d+$"),
    list("-+0123456789."))


def _int_or_float(loader, node):
    text = loader.construct_scalar(node)
    return int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)


SpecLoader.add_constructor("tag:yaml.org,2002:float", _int_or_float)

SPEC = yaml.load(SPEC_PATH.read_text(encoding="utf-8"), Loader=SpecLoader)
RESOLVER = RefResolver(base_uri="", referrer=SPEC)


def deref(obj, where):
    """Follows $ref chains inside openapi.yaml; returns (object, its pointer)."""
    while isinstance(obj, dict) and "$ref" in obj:
        where = obj["$ref"]
        assert where.startswith("#/"), where
        obj = SPEC
        for part in where[2:].split("/"):
            obj = obj[part.replace("~1", "/").replace("~0", "~")]
    return obj, where


def validator(schema):
    return Draft202012Validator(schema, resolver=RESOLVER)


# ==== the cases ====

def _request_examples(op):
    rb = op.get("requestBody")
    if not rb:
        return {}
    rb, _ = deref(rb, "")
    exs = (rb.get("content", {}).get("application/json", {}) or {}).get("examples", {}) or {}
    return {name: deref(ex, "")[0] for name, ex in exs.items()}


def collect():
    cases = []
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if not op:
                continue
            req_examples = _request_examples(op)
            for status, resp in op["responses"].items():
                where = "#/paths/%s/%s/responses/%s" % (path.replace("/", "~1"), method, status)
                resp, where = deref(resp, where)
                base = {"path": path, "method": method.upper(), "status": int(status),
                        "headers": resp.get("headers") or {}, "op": op["operationId"]}
                content = resp.get("content")
                if not content:
                    if status.startswith("2"):
                        cases.append(dict(base, id="%s %s %s" % (method.upper(), path, status),
                                          media=None, schema=None, example=None, has_example=False,
                                          request={}, skip=None))
                    continue
                for media, mobj in content.items():
                    exs = dict(mobj.get("examples") or {})
                    if "example" in mobj:
                        exs["example"] = {"value": mobj["example"]}
                    if not exs:     # (GET /openapi.yaml: the file itself)
                        cases.append(dict(base, id="%s %s %s %s" % (method.upper(), path, status, media),
                                          media=media, schema=mobj.get("schema"), example=None,
                                          has_example=False, skip=None, request={} if "requestBody" not in op else None,
                                          problem=None if "requestBody" not in op else
                                          "%s (%s) has no example to send" % (where, media)))
                    for name, ex in exs.items():
                        ex, ex_where = deref(ex, where + "/" + name)
                        xr = ex.get("x-request")
                        problem = None
                        if xr is not None:
                            request = {k: v for k, v in xr.items() if k != "by_path"}
                            request.update((xr.get("by_path") or {}).get(path, {}))
                        elif status.startswith("2") and name in req_examples:
                            request = {"body": json.dumps(req_examples[name]["value"])}
                        elif "requestBody" not in op:
                            request = {}
                        else:
                            request = None
                            problem = ("%s (%s) has no request: add x-request, or a request "
                                       "example named %r" % (ex_where, media, name))
                        skip = next((why for prefix, why in SKIPS.items()
                                     if ex_where == prefix or ex_where.startswith(prefix + "/")), None)
                        cases.append(dict(base, id="%s %s %s %s" % (method.upper(), path, status, name),
                                          media=media, schema=mobj.get("schema"), has_example=True,
                                          example=ex.get("value"), binary=ex.get("x-binary-data"),
                                          request=request, skip=skip,
                                          problem=problem, where=ex_where))
    return cases


CASES = collect()


# ==== servers ====

class Server:
    """attnd on 127.0.0.1 with extra flags, an optional address-space cap,
    and optionally SIGTERM already sent (for /readyz's 503)."""

    def __init__(self, workdir, flags=(), rlimit_as_kb=None, sigterm=False):
        self.port = free_port()
        self.cmd = [attnd_bin(), "--host", "127.0.0.1", "--port", str(self.port)] + list(flags)
        self.log = Path(workdir) / ("attnd-%d.log" % self.port)
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")

        def cap():
            if rlimit_as_kb:
                resource.setrlimit(resource.RLIMIT_AS, (rlimit_as_kb * 1024, rlimit_as_kb * 1024))
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=self._log,
                                     stdin=subprocess.DEVNULL, env=env, preexec_fn=cap)
        try:
            self._wait("/healthz", 200)
            if sigterm:
                self.proc.send_signal(signal.SIGTERM)
                self._wait("/readyz", 503)
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise

    def _wait(self, path, status):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%r exited with %s:\n%s" % (self.cmd, self.proc.returncode,
                                                              self.log.read_text(errors="replace")))
            try:
                if send(self.port, "GET", path, None, {})[0] == status:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("%r: GET %s never answered %d" % (self.cmd, path, status))

    def stop(self):
        """SIGTERM (a second one ends a --drain-delay); returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self._log.close()


def send(port, method, path, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    if not os.access(attnd_bin(), os.X_OK):
        pytest.fail("attnd binary not found: %s (set ATTND_BIN or run make)" % attnd_bin(),
                    pytrace=False)
    workdir = tmp_path_factory.mktemp("contract")
    started = {}
    cache = {}

    def get(request):
        key = (tuple(request.get("server") or ()), request.get("rlimit_as_kb"),
               bool(request.get("sigterm")))
        if key not in started:
            started[key] = Server(workdir, key[0], key[1], key[2])
        return started[key]
    yield get, cache
    for key, srv in started.items():
        alive = srv.proc.poll() is None
        rc = srv.stop()
        assert alive and rc == 0, "attnd %r: alive=%s, exit %r after SIGTERM; log:\n%s" % (
            srv.cmd, alive, rc, srv.log.read_text(errors="replace")[-3000:])


def ones(shape):
    if not shape:
        return 1
    return [ones(shape[1:]) for _ in range(shape[0])]


def build_request(case):
    req = case["request"]
    method = req.get("method", case["method"])
    path = req.get("path", case["path"])
    headers = {}
    body = None
    if "body_size" in req:
        body = b" " * req["body_size"]
    elif "body" in req:
        text = req["body"]
        if req.get("fill"):
            obj = json.loads(text)
            for field, shape in req["fill"].items():
                obj[field] = ones(shape)
            text = json.dumps(obj, separators=(",", ":"))
        body = text.encode("utf-8")
    if body is not None and req.get("encode"):
        # a compressed request body (Content-Encoding): gzip or deflate
        body = gzip.compress(body) if req["encode"] == "gzip" else zlib.compress(body)
        headers["Content-Encoding"] = req["encode"]
    if body is not None:
        ct = req.get("content_type", "application/json")
        if ct is not None:
            headers["Content-Type"] = ct
    headers.update(req.get("headers") or {})
    return method, path, body, headers


# ==== comparison ====

def close(a, b, where):
    """a (the server's) equals b (the example's); floats within tolerance."""
    if isinstance(b, bool) or b is None or isinstance(b, str):
        assert a == b, "%s: server %r, example %r" % (where, a, b)
    elif isinstance(b, (int, float)):
        assert isinstance(a, (int, float)) and not isinstance(a, bool), "%s: %r vs %r" % (where, a, b)
        assert math.isfinite(a) and abs(a - b) <= ABS_TOL + REL_TOL * abs(b), \
            "%s: server %r, example %r" % (where, a, b)
    elif isinstance(b, list):
        assert isinstance(a, list) and len(a) == len(b), "%s: server %r, example %r" % (where, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, "%s[%d]" % (where, i))
    elif isinstance(b, dict):
        assert isinstance(a, dict) and list(a) == list(b), \
            "%s: server keys %r, example keys %r" % (where, list(a) if isinstance(a, dict) else a, list(b))
        for k in b:
            close(a[k], b[k], "%s.%s" % (where, k))
    else:
        raise AssertionError("%s: unexpected example value %r" % (where, b))


def header_value(schema, text):
    t = schema.get("type")
    if t == "integer" or isinstance(schema.get("const"), int):
        return int(text)
    return text


# ==== the tests ====

@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_example(case, servers):
    if case["skip"]:
        pytest.skip(case["skip"])
    if case.get("problem"):
        pytest.fail(case["problem"], pytrace=False)
    req = case["request"]
    if req.get("rlimit_as_kb") and os.environ.get("ATTND_SANITIZED") == "1":
        pytest.skip("an address-space cap (ulimit -v) cannot apply to a sanitized build: "
                    "ASan reserves terabytes of address space")
    get, cache = servers
    srv = get(req)
    method, path, body, headers = build_request(case)
    key = (srv.port, method, path, body, tuple(sorted(headers.items())))
    if key not in cache:
        cache[key] = send(srv.port, method, path, body, headers)
    status, hdrs, data = cache[key]
    shown = "%s %s -> %d %r" % (method, path, status, data[:300])

    assert status == case["status"], shown
    for name, h in case["headers"].items():
        h, _ = deref(h, "")
        value = hdrs.get(name)
        if value is None and h.get("required") is False:
            continue        # declared as sent by some answers only
        assert value is not None, "%s: header %s missing" % (shown, name)
        if "schema" in h:
            errors = list(validator(h["schema"]).iter_errors(header_value(h["schema"], value)))
            assert not errors, "%s: header %s: %s" % (shown, name, errors[0].message)

    if case["media"] is None:
        assert data == b"", "%s: expected no body" % shown
        return
    media = (hdrs.get("Content-Type") or "").split(";")[0].strip().lower()
    assert media == case["media"], "%s: Content-Type %r" % (shown, hdrs.get("Content-Type"))
    binary = None
    if media == "application/octet-stream":
        # v2 binary outputs: the JSON answer, then each binary output's
        # bytes in output order (float32 little-endian; null for -inf)
        n = hdrs.get("Inference-Header-Content-Length")
        assert n is not None, "%s: no Inference-Header-Content-Length" % shown
        doc, tail, binary = json.loads(data[:int(n)].decode("utf-8")), data[int(n):], {}
        for o in doc.get("outputs", []):
            size = (o.get("parameters") or {}).get("binary_data_size")
            if size is not None:
                chunk, tail = tail[:size], tail[size:]
                binary[o["name"]] = [bool(b) for b in chunk] if o["datatype"] == "BOOL" else [
                    None if v == float("-inf") else v
                    for v in struct.unpack("<%df" % (len(chunk) // 4), chunk)]
        assert tail == b"", "%s: %d bytes after the binary outputs" % (shown, len(tail))
    elif media.endswith("json"):
        doc = json.loads(data.decode("utf-8"))
    else:
        doc = data.decode("utf-8")
    if case["schema"] is not None:
        errors = sorted(validator(case["schema"]).iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, "%s: not valid against the schema: %s at %s" % (
            shown, errors[0].message, "/".join(map(str, errors[0].path)))
    if case["example"] is None:
        return
    if binary is not None:
        close(doc, case["example"], "response")
        close(binary, case["binary"] or {}, "binary data")
    elif media.endswith("json"):
        close(doc, case["example"], "response")
    elif media == "text/plain":
        # counters differ from run to run: the families must be the same
        for line in case["example"].splitlines():
            if line.startswith("# TYPE "):
                assert line in doc.splitlines(), "%s: %r missing" % (shown, line)


@pytest.mark.parametrize("case", [c for c in CASES if c["has_example"]],
                         ids=[c["id"] for c in CASES if c["has_example"]])
def test_example_matches_its_schema(case):
    """The example itself is valid against the schema it illustrates."""
    if case["schema"] is None or case["example"] is None:
        pytest.skip("no schema or value")
    errors = list(validator(case["schema"]).iter_errors(case["example"]))
    assert not errors, "%s: %s" % (case["where"], errors[0].message)


def test_request_examples_are_all_sent():
    """Each request example has a 2xx response example of the same name
    (the answer compared), and each is valid against the request schema."""
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if not op or "requestBody" not in op:
                continue
            rb, _ = deref(op["requestBody"], "")
            schema = rb["content"]["application/json"]["schema"]
            answered = {c["id"].split()[-1] for c in CASES
                        if c["op"] == op["operationId"] and 200 <= c["status"] < 300}
            for name, ex in _request_examples(op).items():
                assert name in answered, "%s %s: request example %r has no response example" % (
                    method.upper(), path, name)
                errors = list(validator(schema).iter_errors(ex["value"]))
                assert not errors, "%s %s %s: %s" % (method.upper(), path, name, errors[0].message)


def test_every_route_is_documented(servers):
    """Each path the server routes is in openapi.yaml: a path the server
    knows answers something other than 404, and every documented path does."""
    get, _ = servers
    srv = get({})
    for path in SPEC["paths"]:
        status = send(srv.port, "OPTIONS", path, None, {})[0]
        assert status == 204, "OPTIONS %s: %d" % (path, status)
    status, _, data = send(srv.port, "GET", "/nope", None, {})
    listed = re.findall(r"(?:GET|POST) (/\S*?)[,\"]", data.decode())
    for path in listed:
        assert path in SPEC["paths"], "the server routes %s, openapi.yaml does not document it" % path

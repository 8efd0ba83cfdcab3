"""Parsing bounded by the body (issue 15): the shapes that made Jansson's
tree 15-79x the body, at a few MiB each, sent to a server of their own.

For each: the answer is the one every path gives (the unit tests compare
the texts with Jansson alone), the server's peak RSS over its RSS before the
request is at most 3x the body, and after the request its RSS is back
within 2x of what it was idle before any of them.  Peak RSS is VmHWM after resetting it (/proc/PID/clear_refs 5).
Skipped under ASan, whose allocator keeps freed memory in quarantine."""
import os
from pathlib import Path
import time

import pytest

from attnd_e2e import AttndServer, attnd_bin

MIB = 1 << 20
SIZE = 3 * MIB


def sanitized():
    data = Path(attnd_bin()).read_bytes()
    return b"__asan_init" in data or os.environ.get("ATTND_SANITIZED") == "1"


pytestmark = pytest.mark.skipif(sanitized(), reason="RSS means nothing under ASan")


def rows(item, n):
    return ",".join([item] * n)


def shapes(n):
    """name -> (path, body, status, code, error path); bodies of about n bytes."""
    k = n // 12
    r = n // 6
    t = 512
    return {
        # an unknown field holding an array of empty objects / arrays
        "objects_unknown": ("/bow", '{"seed":1,"shape":[1,2,3],"junk":[%s]}' % rows("{}", n // 3),
                            422, "unknown_field", "junk"),
        "arrays_unknown": ("/bow", '{"seed":1,"shape":[1,2,3],"junk":[%s]}' % rows("[]", n // 3),
                           422, "unknown_field", "junk"),
        # many keys, at the top and nested in an unknown field
        "keys": ("/bow", "{%s}" % ",".join('"k%07d":0' % i for i in range(k)),
                 422, "unknown_field", "k0000000"),
        "keys_nested": ("/bow", '{"junk":{%s}}' % ",".join('"k%07d":0' % i for i in range(k)),
                        422, "unknown_field", "junk"),
        # a tensor ragged, or with a string, at its very end
        "ragged_x": ("/bow", '{"x":[[%s,[1]]]}' % rows("[1,2]", r),
                     422, "ragged_array", "x[0][%d]" % r),
        "string_in_x": ("/bow", '{"x":[[%s,[1,"a"]]]}' % rows("[1,2]", r),
                        422, "not_a_number", "x[0][%d][1]" % r),
        # a syntax error at the very end
        "syntax_error": ("/bow", '{"seed":1,"junk":[%s,]}' % rows("{}", n // 3),
                         400, "invalid_json", None),
        # a random /randn with an unknown field of arrays
        "randn_unknown": ("/randn", '{"seed":1,"shape":[2],"junk":[%s]}' % rows("[0]", n // 4),
                          422, "unknown_field", "junk"),
        # a field the endpoint reads whose tree would pass 2 bytes a byte
        "return_list": ("/attention", '{"seed":1,"shape":[1,2,2],"head_size":2,"return":[%s]}'
                        % rows('"out"', n // 6), 413, "body_too_complex", "return"),
        # valid: a large boolean mask (read from the text, not refused)
        "bool_mask": ("/attention", '{"seed":1,"shape":[1,%d,2],"head_size":2,"return":["out"],'
                      '"mask":[%s]}' % (t, rows("[%s]" % rows("true", t), t)), 200, None, None),
    }


@pytest.fixture(scope="module")
def lone_server(tmp_path_factory):
    srv = AttndServer(tmp_path_factory.mktemp("parse_memory"),
                      extra_args=["--threads", "2", "--max-body", str(64 * MIB)],
                      name="parse_memory")
    # idle: after a small request, so that lazily made things exist
    assert srv.post("/bow", {"seed": 1, "shape": [1, 2, 3]}).status == 200
    srv.idle = status_kb(srv.proc.pid, "VmRSS")
    yield srv
    srv.stop(10.0)


def status_kb(pid, field):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(field)


@pytest.mark.parametrize("name", list(shapes(1024)))
def test_parse_memory(lone_server, name):
    path, body, status, code, epath = shapes(SIZE)[name]
    body = body.encode()
    pid = lone_server.proc.pid
    before = status_kb(pid, "VmRSS")
    Path("/proc/%d/clear_refs" % pid).write_text("5")    # VmHWM := VmRSS
    r = lone_server.request("POST", path, body)
    assert r.status == status, r
    if code:
        err = r.json()["error"]
        assert err["code"] == code, err
        if epath:
            assert err["path"] == epath, err
    peak = status_kb(pid, "VmHWM") - before
    assert peak <= 3 * len(body), "%s: peak RSS +%.2f MiB for a %.2f MiB body (%.2fx)" % (
        name, peak / MIB, len(body) / MIB, peak / len(body))
    idle = lone_server.idle             # the server's, before any load
    deadline = time.monotonic() + 2
    while True:
        after = status_kb(pid, "VmRSS")
        if after <= 2 * idle or time.monotonic() > deadline:
            break
        time.sleep(0.05)                # the answer's buffers go after it is sent
    assert after <= 2 * idle, "%s: RSS %.1f MiB after, idle %.1f MiB" % (
        name, after / MIB, idle / MIB)

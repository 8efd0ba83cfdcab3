#!/usr/bin/python3
"""compress.py ATTND_BIN BODIES_DIR -- what response compression costs.

The bodies attnd answers (small /bow, medium and large /attention as
nested JSON, flat JSON and b64, large v2 JSON and v2 binary outputs),
each compressed with zlib (gzip framing, the library attnd links, called
through Python's zlib module: one deflate() call on the whole buffer, as
server/encoding.c does) at levels 1, 3, 6 and 9.  Printed per body and
level: size, ratio, microseconds (median of repeats, one core), MB/s of
input, and the link speed below which compressing pays (bytes saved x 8
/ compression time, in Mbit/s: on a slower link the bytes not sent take
longer than the compression did).  Then, for the chosen threshold,
the request rate of attnd itself on 127.0.0.1 with and without
Accept-Encoding (wrk, if installed).  Python stdlib only.
"""
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

BIN, BODIES = sys.argv[1], Path(sys.argv[2])
LEVELS = (1, 3, 6, 9)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def post(port, path, body, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", path, body=body, headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    r = c.getresponse()
    data = r.read()
    c.close()
    assert r.status == 200, (path, r.status, data[:200])
    return data, r


def v2(req):
    """A native /attention request as a v2 one (inputs flat)."""
    def flat(v):
        return [y for x in v for y in flat(x)] if isinstance(v, list) else [v]

    def shape(v):
        return [len(v)] + shape(v[0]) if isinstance(v, list) else []
    inputs = [{"name": k, "shape": shape(req[k]), "datatype": "FP32", "data": flat(req[k])}
              for k in ("x", "wq", "wk", "wv")]
    return {"inputs": inputs, "outputs": [{"name": "weights"}, {"name": "out"}]}


def timed(data, level):
    runs = max(3, min(50, int(2e7 // max(len(data), 1))))
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = zlib.compress(data, level, 31)
        ts.append(time.perf_counter() - t0)
    return len(out), statistics.median(ts)


def main():
    port = free_port()
    proc = subprocess.Popen([BIN, "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        large = json.loads((BODIES / "large.json").read_text())
        cases = [
            ("small /bow", post(port, "/bow", (BODIES / "small.json").read_bytes())[0]),
            ("medium /attention", post(port, "/attention", (BODIES / "medium.json").read_bytes())[0]),
            ("large /attention nested", post(port, "/attention", (BODIES / "large.json").read_bytes())[0]),
            ("large /attention flat", post(port, "/attention", (BODIES / "large_flat.json").read_bytes())[0]),
            ("large /attention b64", post(port, "/attention", (BODIES / "large_b64.json").read_bytes())[0]),
            ("large v2 JSON", post(port, "/v2/models/attention/infer", json.dumps(v2(large)).encode())[0]),
        ]
        b = v2(large)
        b["parameters"] = {"binary_data_output": True}
        cases.append(("large v2 binary", post(port, "/v2/models/attention/infer", json.dumps(b).encode())[0]))
        print("| answer | bytes | level | gzip bytes | ratio | us | MB/s | pays below (Mbit/s) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, data in cases:
            for level in LEVELS:
                n, t = timed(data, level)
                saved = len(data) - n
                print("| %s | %d | %d | %d | %.2f | %.0f | %.0f | %s |" % (
                    name, len(data), level, n, len(data) / n, t * 1e6, len(data) / t / 1e6,
                    "%.0f" % (saved * 8 / t / 1e6) if saved > 0 else "never"))
        if shutil.which("wrk"):
            lua = Path(__file__).with_name("post.lua")
            print()
            print("| wrk -t1 -c4 -d5s, 127.0.0.1 | identity rps | Accept-Encoding: gzip rps |")
            print("|---|---:|---:|")
            for name, f, path in (("small /bow", "small.json", "/bow"),
                                  ("medium /attention", "medium.json", "/attention")):
                row = []
                for hdr in ([], ["-H", "Accept-Encoding: gzip"]):
                    out = subprocess.run(["wrk", "-t1", "-c4", "-d5s", "-s", str(lua)] + hdr +
                                         ["http://127.0.0.1:%d%s" % (port, path)],
                                         capture_output=True, text=True,
                                         env=dict(os.environ, WRK_BODY=str(BODIES / f))).stdout
                    line = next(l for l in out.splitlines() if l.startswith("WRKRESULT"))
                    row.append(line.split("rps=")[1].split()[0])
                print("| %s | %s | %s |" % (name, row[0], row[1]))
    finally:
        proc.terminate()
        proc.wait(10)


main()

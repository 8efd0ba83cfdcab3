#!/usr/bin/python3
"""probe.py -- small HTTP helpers for bench/run.sh (python3 stdlib only).

  probe.py wait PORT SECONDS          until something accepts on 127.0.0.1:PORT
  probe.py post PORT PATH BODY [OUT]  POST the file BODY as JSON; print
                                      "status=S bytes=N ms=T"; save the
                                      response to OUT; exit 1 unless 200
  probe.py agree A B                  compare two saved JSON responses key by
                                      key with the contract's tolerance
                                      |a-b| <= 1e-5 + 1e-5*|b|; print
                                      "agree" or "DIFFER ..."; exit 1 if not
"""
import http.client
import json
import math
import socket
import sys
import time


def wait(port, seconds):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(port)), 0.5).close()
            return 0
        except OSError:
            time.sleep(0.2)
    print(f"nothing listens on 127.0.0.1:{port} after {seconds} s",
          file=sys.stderr)
    return 1


def post(port, path, body_file, out=None):
    with open(body_file, "rb") as f:
        body = f.read()
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=120)
    t0 = time.perf_counter()
    conn.request("POST", path, body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    ms = (time.perf_counter() - t0) * 1e3
    conn.close()
    if out:
        with open(out, "wb") as f:
            f.write(data)
    print(f"status={resp.status} bytes={len(data)} ms={ms:.1f}")
    if resp.status != 200:
        print(data[:500].decode("utf-8", "replace"), file=sys.stderr)
        return 1
    return 0


def flatten(v, acc):
    if isinstance(v, list):
        for e in v:
            flatten(e, acc)
    else:
        acc.append(v)
    return acc


def agree(a_file, b_file):
    with open(a_file) as f:
        a = json.load(f)
    with open(b_file) as f:
        b = json.load(f)
    worst = 0.0
    for key in ("weights", "out"):
        if key not in a or key not in b:
            print(f"DIFFER: {key} missing")
            return 1
        fa, fb = flatten(a[key], []), flatten(b[key], [])
        if len(fa) != len(fb):
            print(f"DIFFER: {key} has {len(fa)} vs {len(fb)} numbers")
            return 1
        for x, y in zip(fa, fb):
            d = abs(x - y)
            if not d <= 1e-5 + 1e-5 * abs(y):
                print(f"DIFFER: {key} {x} vs {y}")
                return 1
            if not math.isnan(d):
                worst = max(worst, d)
    print(f"agree (max |diff| {worst:.2g})")
    return 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "wait":
        return wait(argv[2], argv[3])
    if len(argv) >= 5 and argv[1] == "post":
        return post(argv[2], argv[3], argv[4], argv[5] if len(argv) > 5
                    else None)
    if len(argv) == 4 and argv[1] == "agree":
        return agree(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

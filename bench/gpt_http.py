#!/usr/bin/python3
"""bench/gpt_http.py MODELS MODEL B T ITERS THREADS ATTND: POST /gpt on a
real attnd (--models MODELS, --threads 1, OMP capped at THREADS through
OMP_NUM_THREADS) with B rows of T ids, return ["last_logits"]: what a
client sees, parsing and JSON included.  Prints "http B T ms" (the median
of ITERS requests on one keep-alive connection)."""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import time

models, model, B, T, iters, threads, attnd = sys.argv[1:8]
B, T, iters = int(B), int(T), int(iters)
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS=threads)
p = subprocess.Popen([attnd, "--host", "127.0.0.1", "--port", str(port),
                      "--threads", "1", "--models", models],
                     stderr=subprocess.DEVNULL, env=env)
try:
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.request("GET", "/healthz")
            c.getresponse().read()
            break
        except OSError:
            time.sleep(0.05)
    body = json.dumps({"model": model, "idx": [[(7 * b + t) % 65 for t in range(T)]
                                                for b in range(B)],
                       "return": ["last_logits"]})
    hdr = {"Content-Type": "application/json"}
    times = []
    for i in range(iters + 3):
        t0 = time.perf_counter()
        c.request("POST", "/gpt", body, hdr)
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
    print("http %d %d %.2f" % (B, T, statistics.median(times)))
finally:
    p.terminate()
    p.wait()

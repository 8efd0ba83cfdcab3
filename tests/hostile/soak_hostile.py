"""make soak, the hostile part (issue 15): loads a real build/attnd over raw
sockets on 127.0.0.1 and prints the figures; exits non-zero on a violation.

1. 16 concurrent maximum-size bodies (--max-body 2M here: 2 MiB of floats in
   /bow's x, a ragged one, an unknown field full of {}), while /healthz is
   probed every 50 ms on fresh connections: every probe answered, the slowest
   probe reported (must be < 1 s; the issue's goal is 100 ms on an idle
   machine), peak RSS (from /proc) under --max-memory.
2. Long computations on every worker plus slow-header, slow-body and
   non-reading clients at the same time, probes again.
3. RSS before and after: after the loads, within 2x of idle (+16 MiB slack
   for glibc's arenas).  The api's parser still builds whole trees (its bound
   is the api's part of issue 15), so the figure is printed, and failing it
   is reported, not hidden.
4. SIGTERM with --grace 1 while every worker computes: seconds to exit.

Bounded: each phase stops by its own deadline; the whole run takes ~1-2 min.
"""

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
from attnd_e2e import AttndServer, raw_connect, read_http_response  # noqa: E402

MAX_BODY = 2 << 20   # small: the api does not bound parsing memory yet (79x for {})
MAX_MEMORY = 1 << 30
HEAVY = json.dumps({"seed": 1, "shape": [1, 1536, 512], "head_size": 512}).encode()
problems = []


def rss_kb(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def post(port, path, body, wait=120):
    s = raw_connect(port, timeout=wait)
    try:
        s.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return read_http_response(s, time.monotonic() + wait)[0]
    except OSError:
        return None
    finally:
        s.close()


class Prober(threading.Thread):
    def __init__(self, port, pid):
        super().__init__(daemon=True)
        self.port, self.pid = port, pid
        self.lat, self.failed, self.peak_rss = [], 0, 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak_rss = max(self.peak_rss, rss_kb(self.pid))
            t0 = time.monotonic()
            try:
                s = raw_connect(self.port, timeout=3)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                status = read_http_response(s, t0 + 3)[0]
                s.close()
            except OSError:
                status = None
            if status == 200:
                self.lat.append((time.monotonic() - t0) * 1000)
            else:
                self.failed += 1
            time.sleep(0.05)

    def report(self, what):
        self.stop.set()
        self.join(5)
        lat = sorted(self.lat) or [float("nan")]
        print("%s: %d probes, %d failed, median %.1f ms, p99 %.1f ms, max %.1f ms, peak RSS %d MiB"
              % (what, len(self.lat), self.failed, lat[len(lat) // 2], lat[int(len(lat) * 0.99)],
                 lat[-1], self.peak_rss >> 10))
        if self.failed or lat[-1] > 1000:
            problems.append("%s: probes failed %d, max %.0f ms" % (what, self.failed, lat[-1]))
        if self.peak_rss * 1024 > MAX_MEMORY:
            problems.append("%s: peak RSS %d MiB over --max-memory" % (what, self.peak_rss >> 10))


def big_bodies():
    n = (MAX_BODY - 100) // 2
    floats = b'{"x":[[[' + b",".join([b"1"] * (n // 2 - 8)) + b']]],"method":"matmul"}'
    ragged = b'{"x":[[[1,2],[3]' + b",[1]" * ((MAX_BODY - 40) // 4 - 8) + b"]]}"
    objs = b'{"x":[[[1]]],"junk":[' + b",".join([b"{}"] * ((MAX_BODY - 40) // 3 - 8)) + b"]}"
    return [b[:MAX_BODY] for b in (floats, ragged, objs)]


def main():
    work = Path(os.environ.get("HOSTILE_OUT", "/tmp")) / ("attnd-hostile-%d" % os.getpid())
    srv = AttndServer(work, name="hostile", extra_args=[
        "--threads", "2", "--max-body", str(MAX_BODY), "--max-memory", str(MAX_MEMORY),
        "--header-timeout", "3", "--request-timeout", "5", "--send-timeout", "3", "--grace", "1"],
        env_extra={"ATTND_MAX_WORK": str(10 ** 15), "OMP_NUM_THREADS": "1"})
    pid = srv.proc.pid
    time.sleep(0.5)
    idle = rss_kb(pid)
    print("idle RSS %d MiB" % (idle >> 10))

    # 1. 16 concurrent maximum-size bodies
    bodies = big_bodies()
    pr = Prober(srv.port, pid)
    pr.start()
    statuses = []
    ts = [threading.Thread(target=lambda b=bodies[i % 3]: statuses.append(post(srv.port, b"/bow", b)))
          for i in range(16)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join(180)
    print("16 bodies of %d MiB: %.1f s, statuses %s" % (MAX_BODY >> 20, time.monotonic() - t0,
                                                         sorted(set(map(str, statuses)))))
    pr.report("probes during 16 max-size bodies")
    time.sleep(2)
    after1 = rss_kb(pid)
    print("RSS after the bodies: %d MiB (idle %d MiB)" % (after1 >> 10, idle >> 10))

    # 2. computations on every worker + slow and non-reading clients
    pr = Prober(srv.port, pid)
    pr.start()
    held = []
    for i in range(20):
        s = raw_connect(srv.port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")          # headers never finish
        held.append(s)
        s = raw_connect(srv.port)
        s.sendall(b"POST /bow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")  # body never finishes
        held.append(s)
    readers = []
    for i in range(4):
        s = raw_connect(srv.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        b = b'{"seed":1,"shape":[4000000]}'
        s.sendall(b"POST /randn HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
        readers.append(s)                                          # never read
    cs = [threading.Thread(target=lambda: statuses.append(post(srv.port, b"/attention", HEAVY))) for _ in range(3)]
    for t in cs:
        t.start()
    for t in cs:
        t.join(180)
    time.sleep(4)   # past --header/--request/--send-timeout
    pr.report("probes during computations + 40 slow + 4 non-reading clients")
    cut = 0
    for s in held + readers:
        s.settimeout(0.2)
        try:
            while s.recv(65536):
                pass
            cut += 1
        except socket.timeout:
            pass
        except OSError:
            cut += 1
        s.close()
    print("slow/non-reading clients cut by the deadlines: %d of %d" % (cut, len(held) + len(readers)))
    if cut != len(held) + len(readers):
        problems.append("only %d of %d slow clients cut" % (cut, len(held) + len(readers)))
    time.sleep(2)
    after2 = rss_kb(pid)
    print("RSS after the loads: %d MiB (idle %d MiB, %.1fx)" % (after2 >> 10, idle >> 10, after2 / idle))
    if after2 > 2 * idle + 16 * 1024:
        problems.append("RSS %d MiB after the loads, over 2x idle (%d MiB): the api's parser "
                        "keeps trees (issue 15, api part)" % (after2 >> 10, idle >> 10))

    # 4. --grace while every worker computes
    cs = [threading.Thread(target=lambda: post(srv.port, b"/attention", HEAVY)) for _ in range(3)]
    for t in cs:
        t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    rc = srv.proc.wait(30)
    took = time.monotonic() - t0
    print("SIGTERM with --grace 1 during computations: exit %s after %.2f s" % (rc, took))
    if rc != 0 or took > 3:
        problems.append("grace: exit %s after %.2f s" % (rc, took))
    srv.stop(1)
    for p in problems:
        print("PROBLEM: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

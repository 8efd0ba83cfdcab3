#!/usr/bin/env python3
"""Differential runner: the same requests to two attnd binaries, compared.

    run.py OLD NEW [--seed S] [--count N] [--allow FILE] [--examples K]
                   [--flags "..."] [--report FILE]

Starts OLD and NEW on 127.0.0.1 (--port 0: each on a free port, read from
its "listening on" line), with the same flags (gen.DEFAULT_FLAGS unless
--flags), sends every request of gen.generate(seed, count) to both over one
keep-alive connection each (a thread per server, the same order), and
compares, per request: the status, every response header except Date
(Content-Type, Content-Length, Connection, Allow, ETag, Cache-Control,
Access-Control-*, Inference-Header-Content-Length...), and the body byte
for byte.  /metrics answers are compared without Content-Length, with
their timing lines (request_duration_seconds, start_time_seconds) and
response_bytes_total masked (/metrics' own length follows the timings,
and one differing body would show again in every later scrape): they are
the only answers that vary between two runs of one binary.  requests_total is compared: a status
that differs earlier shows there again.

A difference is allowed when a line of the allow-list (--allow, default
tests/diff/allow.txt) matches it; see that file for the format.  Prints a
summary by category and the first --examples differing requests of each,
and exits 1 on any difference not allowed, 2 when a server failed.
"""

import argparse
import fnmatch
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402

IGNORED_HEADERS = {"date"}
ERROR_CODE = re.compile(rb'^\{"error":(?:\{"status":\d+,"code":"|")([a-z_]+)')
METRICS_MASK = re.compile(rb"^(attnd_request_duration_seconds\S*|attnd_start_time_seconds\S*|"
                          rb"attnd_response_bytes_total\S*)"
                          rb" .*$", re.M)


class Server:
    def __init__(self, binary, flags, workdir, name):
        self.name = name
        self.log = open(os.path.join(workdir, name + ".stderr"), "wb+")
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
        self.proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", "0"] + flags,
                                     stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        self.port = None
        deadline = time.time() + 30
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s" % (binary, self.proc.returncode))
            self.log.flush()
            with open(self.log.name, "rb") as f:
                m = re.search(rb"listening on http://[^:]+:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        if self.port is None:
            self.stop()
            raise RuntimeError("%s did not say where it listens" % binary)
        self.conn = None

    def connect(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def send(self, q):
        """(status, headers as a sorted tuple, body); transport errors as
        status -1 and the exception's class name, after a reconnect."""
        for attempt in (0, 1):
            if self.conn is None:
                self.connect()
            try:
                self.conn.putrequest(q.method, q.path, skip_accept_encoding=True)
                for k, v in q.headers:
                    self.conn.putheader(k, v)
                if q.body is not None:
                    self.conn.putheader("Content-Length", str(len(q.body)))
                self.conn.endheaders(q.body)
                r = self.conn.getresponse()
                body = r.read()
                metrics = q.path.startswith("/metrics")
                hdrs = tuple(sorted((k.lower(), v) for k, v in r.getheaders()
                                    if k.lower() not in IGNORED_HEADERS and
                                    not (metrics and k.lower() == "content-length")))
                if r.will_close:
                    self.conn.close()
                    self.conn = None
                if metrics:
                    body = METRICS_MASK.sub(rb"\1 <masked>", body)
                return r.status, hdrs, body
            except (OSError, http.client.HTTPException) as e:
                self.conn.close()
                self.conn = None
                err = type(e).__name__
                # a server that closed an idle keep-alive connection: once more
                if attempt == 0 and isinstance(e, (http.client.RemoteDisconnected,
                                                   BrokenPipeError, ConnectionResetError)):
                    continue
                return -1, (("transport-error", err),), b""

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ==== the allow-list ====

class Rule:
    """<category glob> <what> [old=REGEX] [new=REGEX] [path=GLOB] -- reason

    what: status, header:<name>, body, or any.  old=/new= must match
    (re.search) the old/new body for the rule to apply."""

    def __init__(self, line, where):
        head, _, self.reason = line.partition("--")
        parts = head.split()
        if len(parts) < 2:
            raise ValueError("%s: need '<category glob> <what> ... -- reason'" % where)
        self.cat, self.what = parts[0], parts[1]
        self.old = self.new = None
        self.path = "*"
        for p in parts[2:]:
            k, _, v = p.partition("=")
            if k == "old":
                self.old = re.compile(v.encode())
            elif k == "new":
                self.new = re.compile(v.encode())
            elif k == "path":
                self.path = v
            else:
                raise ValueError("%s: unknown key %r" % (where, k))
        self.where = where
        self.used = 0

    def allows(self, q, what, a, b):
        if not fnmatch.fnmatchcase(q.category, self.cat) or \
                not fnmatch.fnmatchcase(q.path, self.path):
            return False
        if self.what != "any" and self.what != what and \
                not (self.what == "header" and what.startswith("header:")):
            return False
        if self.old and not self.old.search(a[2]):
            return False
        if self.new and not self.new.search(b[2]):
            return False
        return True


def load_rules(path):
    rules = []
    if not path or not os.path.exists(path):
        return rules
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line and not line.startswith("#"):
                rules.append(Rule(line, "%s:%d" % (path, n)))
    return rules


def differences(a, b):
    """What differs between two (status, headers, body) answers."""
    out = []
    if a[0] != b[0]:
        out.append("status")
    ha, hb = dict(a[1]), dict(b[1])
    for k in sorted(set(ha) | set(hb)):
        if ha.get(k) != hb.get(k):
            out.append("header:" + k)
    if a[2] != b[2]:
        out.append("body")
    return out


def show(b, at=0, limit=400):
    """Up to limit bytes of b, from a little before offset at."""
    start = max(0, min(at - 100, len(b) - limit))
    s = b[start:start + limit].decode("utf-8", "backslashreplace")
    return ("(from byte %d) " % start if start else "") + s + \
        ("... (%d bytes)" % len(b) if len(b) > start + limit else "")


def first_diff(x, y):
    n = min(len(x), len(y))
    i = next((i for i in range(n) if x[i] != y[i]), n)
    return i


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=30000)
    ap.add_argument("--allow", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "allow.txt"))
    ap.add_argument("--examples", type=int, default=3)
    ap.add_argument("--flags", default=None,
                    help="attnd flags for both (default: gen.DEFAULT_FLAGS)")
    ap.add_argument("--report", default=None, help="write every difference here")
    ap.add_argument("--quiet", action="store_true", help="no per-category table")
    ap.add_argument("--codes", action="store_true",
                    help="also print OLD's statuses and error codes by group (coverage)")
    args = ap.parse_args()

    flags = args.flags.split() if args.flags is not None else gen.DEFAULT_FLAGS
    rules = load_rules(args.allow)
    t0 = time.time()
    reqs = gen.generate(args.seed, args.count)
    t_gen = time.time() - t0
    work = tempfile.mkdtemp(prefix="attnd-diff-")
    servers = []
    try:
        servers = [Server(args.old, flags, work, "old"), Server(args.new, flags, work, "new")]
        results = [[None] * len(reqs), [None] * len(reqs)]

        def drive(k):
            s = servers[k]
            for i, q in enumerate(reqs):
                results[k][i] = s.send(q)

        t0 = time.time()
        threads = [threading.Thread(target=drive, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t_run = time.time() - t0
        alive = [s.alive() for s in servers]
    finally:
        for s in servers:
            s.stop()

    per_cat = defaultdict(Counter)
    examples = defaultdict(list)
    report = open(args.report, "w") if args.report else None
    transport = 0
    for i, q in enumerate(reqs):
        a, b = results[0][i], results[1][i]
        c = per_cat[q.category]
        c["requests"] += 1
        if a[0] == -1 or b[0] == -1:
            transport += 1
        diffs = differences(a, b)
        if not diffs:
            c["same"] += 1
            continue
        unallowed = []
        for what in diffs:
            rule = next((r for r in rules if r.allows(q, what, a, b)), None)
            if rule:
                rule.used += 1
            else:
                unallowed.append(what)
        if not unallowed:
            c["allowed"] += 1
            continue
        c["differ"] += 1
        at = first_diff(a[2], b[2])
        text = ("#%d %s %s %s  [%s]\n  request headers %s\n  request body    %s\n"
                "  old %s %s\n      %s\n  new %s %s\n      %s\n  first differing body byte: %d\n"
                % (i, q.category, q.method, q.path, ", ".join(unallowed), q.headers,
                   show(q.body or b""), a[0], dict(a[1]), show(a[2], at), b[0], dict(b[1]),
                   show(b[2], at), at))
        if len(examples[q.category]) < args.examples:
            examples[q.category].append(text)
        if report:
            report.write(text)
    if report:
        report.close()

    total = Counter()
    for c in per_cat.values():
        total.update(c)
    if not args.quiet:
        print("%-40s %8s %8s %8s %8s" % ("category", "requests", "same", "allowed", "DIFFER"))
        for cat in sorted(per_cat):
            c = per_cat[cat]
            print("%-40s %8d %8d %8d %8s" % (cat, c["requests"], c["same"], c["allowed"],
                                             c["differ"] or ""))
    # the same by top-level group (endpoint or family)
    groups = defaultdict(Counter)
    for cat, c in per_cat.items():
        groups["/".join(cat.split("/")[:2]) if cat.startswith("v2/") else cat.split("/")[0]].update(c)
    print("\n%-40s %8s %8s %8s %8s" % ("group", "requests", "same", "allowed", "DIFFER"))
    for grp in sorted(groups):
        c = groups[grp]
        print("%-40s %8d %8d %8d %8s" % (grp, c["requests"], c["same"], c["allowed"],
                                         c["differ"] or ""))
    print("%-40s %8d %8d %8d %8d" % ("total", total["requests"], total["same"],
                                     total["allowed"], total["differ"]))
    print("\nseed %d, %d requests generated in %.1f s, run in %.1f s; flags: %s"
          % (args.seed, len(reqs), t_gen, t_run, " ".join(flags)))
    print("old: %s\nnew: %s\nserver logs (removed when all is well): %s"
          % (args.old, args.new, work))
    if args.codes:
        codes = defaultdict(Counter)
        for q, a in zip(reqs, results[0]):
            grp = "/".join(q.category.split("/")[:2]) if q.category.startswith("v2/") \
                else q.category.split("/")[0]
            m = ERROR_CODE.search(a[2][:300])
            codes[grp]["%d %s" % (a[0], m.group(1).decode() if m else "")] += 1
        print("\nOLD's answers by group: status and error code (count)")
        for grp in sorted(codes):
            print("  %-14s %s" % (grp, ", ".join("%s (%d)" % (k.strip(), n) for k, n in
                                                  sorted(codes[grp].items()))))
    if transport:
        print("transport errors (connection reset, timeout): %d" % transport)
    for r in rules:
        print("allow rule %s used %d times: %s %s --%s" % (r.where, r.used, r.cat, r.what,
                                                          r.reason))
    if examples:
        print("\n==== first differences per category ====")
        for cat in sorted(examples):
            for text in examples[cat]:
                print(text)
    if not all(alive):
        print("a server was no longer running at the end: old %s, new %s"
              % ("alive" if alive[0] else "DEAD", "alive" if alive[1] else "DEAD"))
        return 2
    if total["differ"] or transport:
        return 1
    shutil.rmtree(work, ignore_errors=True)    # the logs are kept on failure only
    return 0


if __name__ == "__main__":
    sys.exit(main())

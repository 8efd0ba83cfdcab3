#!/usr/bin/python3
"""Helpers for tests/soak/soak.sh (stdlib only).

  soak.py wait URL              wait (10 s at most) until /healthz answers
  soak.py prepare URL WORKDIR   wait for /healthz, fetch every request of the mix once,
                                check each answer (fixtures against PyTorch, error cases
                                against tests/cases), write WORKDIR/manifest.lua for mix.lua
  soak.py verify URL WORKDIR    send every request of the mix once more; each answer must
                                be byte-identical to the one recorded by prepare
  soak.py report WORKDIR        read the numbers soak.sh and mix.lua left in WORKDIR,
                                print the summary, exit 1 on any violation
"""

import http.client
import json
import re
import sys
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from attnd_e2e import check_fixture_response, load_fixture  # noqa: E402

# (fixture, weight): valid requests, compared byte for byte with the answer
# recorded before the run (which is itself checked against PyTorch's numbers).
VALID = [
    ("bow/b4_t8_c2_all.json", 3),
    ("bow/seeded_1337_loop.json", 2),
    ("bow/b2_t17_c3_softmax.json", 1),
    ("attention/odd_b3_t7_c5_hs3.json", 3),
    ("attention/lecture_seed1337.json", 1),
    ("attention/seeded_lecture_1337.json", 2),
    ("attention/seeded_n16_big_seed.json", 1),
    ("attention/t64_b2_c32_hs16.json", 1),
    ("randn/randn_s1337_2x8.json", 2),
    ("randn/randn_s2_31_m1_33.json", 1),
]
HEALTHZ_WEIGHT = 1
# tests/cases folders: invalid requests, each must get its expected 4xx (and the
# same error body every time).
INVALID = [
    "json_truncated", "json_syntax_trailing_comma", "json_invalid_utf8", "json_duplicate_keys",
    "too_deep", "nan_string_in_wk", "ragged_x1", "unknown_field_casual", "empty_x",
    "seed_string_2_64", "shape_huge", "shape_t_squared_too_large", "request_too_large_bow_all",
    "randn_too_large", "method_not_allowed_get_bow", "not_found_post", "ct_text_plain",
]


def _conn(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=30)


class _Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def media_type(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def _send(url, method, path, body, ctype):
    c = _conn(url)
    try:
        hdrs = {"Content-Type": ctype} if (ctype and body is not None) else {}
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        return _Resp(r.status, r.headers, r.read())
    finally:
        c.close()


def mix():
    """The soak mix: list of dicts name, method, path, ctype, body (bytes or None),
    weight, and for checking: fixture or case."""
    out = []
    for rel, w in VALID:
        fx = load_fixture(REPO / "tests" / "fixtures" / rel)
        out.append(dict(name="ok:" + rel[:-5], method="POST", path=fx["endpoint"], ctype="application/json",
                        body=json.dumps(fx["request"]).encode(), weight=w, fixture=fx))
    out.append(dict(name="ok:healthz", method="GET", path="/healthz", ctype=None, body=None,
                    weight=HEALTHZ_WEIGHT, fixture=None))
    for name in INVALID:
        d = REPO / "tests" / "cases" / name
        case = json.loads((d / "case.json").read_text())
        body = (d / "request.body").read_bytes()
        if not body and case["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            body = None
        out.append(dict(name="bad:" + name, method=case["method"], path=case["path"],
                        ctype=case.get("content_type"), body=body, weight=1, case=case))
    return out


def _lua_str(b):
    """A Lua string literal for arbitrary bytes (\\ddd escapes, always 3 digits)."""
    parts = []
    for ch in b:
        if 0x20 <= ch < 0x7F and ch not in (0x22, 0x5C):
            parts.append(chr(ch))
        else:
            parts.append("\\%03d" % ch)
    return '"' + "".join(parts) + '"'


def wait_ready(url, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = _send(url, "GET", "/healthz", None, None)
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("soak: attnd not ready at %s within %.0f s" % (url, timeout))


def prepare(url, work):
    wait_ready(url)
    entries = mix()
    problems = []
    lines = ["-- written by tests/soak/soak.py prepare; read by tests/soak/mix.lua", "return {"]
    for e in entries:
        r = _send(url, e["method"], e["path"], e["body"], e["ctype"])
        if e["name"] == "ok:healthz":
            if r.status != 200 or r.json() != {"status": "ok"}:
                problems.append("%s: %r" % (e["name"], r.body[:200]))
        elif "fixture" in e and e["fixture"] is not None:
            p = check_fixture_response(e["fixture"], r)
            if p:
                problems.append("%s: %s" % (e["name"], p[:3]))
        else:
            case = e["case"]
            try:
                code = r.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = None
            if r.status != case["status"] or code != case["code"]:
                problems.append("%s: expected %s %s, got %s %r" % (e["name"], case["status"], case["code"],
                                                                   r.status, r.body[:200]))
        e["status"], e["expect"] = r.status, r.body
        lines.append("  {name=%s, method=%s, path=%s, ctype=%s, body=%s, weight=%d, status=%d, expect=%s},"
                     % (_lua_str(e["name"].encode()), _lua_str(e["method"].encode()), _lua_str(e["path"].encode()),
                        _lua_str(e["ctype"].encode()) if e["ctype"] else "nil",
                        _lua_str(e["body"]) if e["body"] is not None else "nil",
                        e["weight"], e["status"], _lua_str(e["expect"])))
    lines.append("}")
    if problems:
        sys.exit("soak: the answers recorded before the run are wrong:\n  " + "\n  ".join(problems))
    (Path(work) / "manifest.lua").write_text("\n".join(lines) + "\n")
    json.dump({e["name"]: [e["status"], e["expect"].decode("latin-1")] for e in entries},
              open(Path(work) / "expected.json", "w"))
    n_ok = sum(1 for e in entries if e["name"].startswith("ok:"))
    print("soak: recorded %d valid and %d invalid requests (weights %d)"
          % (n_ok, len(entries) - n_ok, sum(e["weight"] for e in entries)))


def verify(url, work):
    expected = json.load(open(Path(work) / "expected.json"))
    bad = []
    for e in mix():
        r = _send(url, e["method"], e["path"], e["body"], e["ctype"])
        st, body = expected[e["name"]]
        if r.status != st or r.body != body.encode("latin-1"):
            bad.append("%s: %d %r" % (e["name"], r.status, r.body[:200]))
    if bad:
        sys.exit("soak: after the run, answers differ from before it:\n  " + "\n  ".join(bad))
    print("soak: after the run every request of the mix still gets its recorded answer")


def _kv(path):
    d = {}
    p = Path(path)
    if not p.is_file():
        return d
    for line in p.read_text().splitlines():
        k, _, v = line.partition(" ")
        if k:
            d.setdefault(k, []).append(v)
    return d


def report(work):
    work = Path(work)
    env = {k: v[0] for k, v in _kv(work / "numbers.txt").items()}
    lua = _kv(work / "lua_result.txt")
    one = lambda k, default="0": (lua.get(k) or [default])[0]  # noqa: E731
    violations = []
    secs = float(env.get("seconds", "0") or 0)
    requests = int(one("requests"))
    sent, ok, bad, lost = (int(one(k)) for k in ("sent", "ok", "bad", "lost"))
    errs = {k: int(one("errors_" + k)) for k in ("connect", "read", "write", "timeout")}
    by_status = {}
    for v in lua.get("status", []):
        s, n = v.split()
        by_status[int(s)] = by_status.get(int(s), 0) + int(n)
    per_entry = sorted((v.split() for v in lua.get("entry", [])), key=lambda x: x[0])
    issues = lua.get("issue", [])

    # the server's own view: its access log
    log = (work / "attnd.stderr").read_text(errors="replace") if (work / "attnd.stderr").is_file() else ""
    srv_status = {}
    aborted = 0
    for m in re.finditer(r"(?m)^[A-Z]+ \S* (\d{3}|0) \d+ \d+us( aborted)?$", log):
        srv_status[int(m.group(1))] = srv_status.get(int(m.group(1)), 0) + 1
        aborted += bool(m.group(2))

    kb = lambda k: int(env.get(k, "0") or 0)  # noqa: E731
    rss0, rss_warm, rss_end, rss_idle, hwm = (kb(k) for k in ("rss_start_kb", "rss_warm_kb", "rss_end_kb",
                                                              "rss_idle_kb", "hwm_kb"))
    slack_kb = int(float(env.get("rss_slack_mb", "20")) * 1024)

    print()
    print("==== attnd soak summary ====")
    print("wrk: %s threads x 1 connection, %.0f s, %d responses (%.0f req/s)"
          % (env.get("threads", "?"), secs, requests, requests / secs if secs else 0))
    print("mix.lua: %d sent, %d as expected, %d wrong, %d without a response" % (sent, ok, bad, lost))
    print("by status (client):  " + ", ".join("%d: %d" % kv for kv in sorted(by_status.items())))
    print("by status (access log): " + ", ".join("%d: %d" % kv for kv in sorted(srv_status.items()))
          + "; aborted: %d" % aborted)
    print("socket errors: " + ", ".join("%s %d" % kv for kv in errs.items()))
    print("per request (sent ok):")
    for name, n_sent, n_ok in per_entry:
        print("  %-42s %8s %8s" % (name, n_sent, n_ok))
    print("RSS: start %.1f MB, after warm-up %.1f MB, end of load %.1f MB, after %s s idle %.1f MB; "
          "peak (VmHWM) %.1f MB" % (rss0 / 1024, rss_warm / 1024, rss_end / 1024, env.get("idle_seconds", "?"),
                                   rss_idle / 1024, hwm / 1024))
    if env.get("rss_samples"):
        print("RSS samples during the run (MB, every %s s): %s" % (env.get("sample_every", "?"),
                                                                   env["rss_samples"]))
    print("after the run: alive=%s, recorded answers=%s, SIGTERM exit=%s"
          % (env.get("alive", "?"), env.get("verify", "?"), env.get("exit_code", "?")))

    if requests == 0 or sent == 0:
        violations.append("no requests were made")
    if bad:
        violations.append("%d wrong answers" % bad)
    if lost:
        violations.append("%d requests without a response" % lost)
    if any(errs.values()):
        violations.append("socket errors %r" % errs)
    five = {s: n for s, n in list(by_status.items()) + list(srv_status.items()) if s >= 500}
    if five:
        violations.append("5xx answers %r" % five)
    if rss_idle - rss0 > slack_kb:
        violations.append("RSS after idle %.1f MB is more than %.0f MB over the start (%.1f MB)"
                          % (rss_idle / 1024, slack_kb / 1024, rss0 / 1024))
    if env.get("alive") != "yes":
        violations.append("attnd was not alive after the run")
    if env.get("verify") != "ok":
        violations.append("answers after the run differ from before it")
    if env.get("exit_code") != "0":
        violations.append("exit status %s after SIGTERM" % env.get("exit_code"))
    for i in issues[:10]:
        print("  issue: " + i)
    if violations:
        print("SOAK FAILED: " + "; ".join(violations))
        return 1
    print("SOAK PASSED")
    return 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "wait":
        wait_ready(argv[1])
    elif len(argv) >= 3 and argv[0] == "prepare":
        prepare(argv[1], argv[2])
    elif len(argv) >= 3 and argv[0] == "verify":
        verify(argv[1], argv[2])
    elif len(argv) >= 2 and argv[0] == "report":
        return report(argv[1])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Every shell example of README.md and docs/*.md, run against a real attnd.

A ```console block is a transcript: lines starting with `$ ` are commands
(continued over the following lines while a quote is open or a line ends
with `\\` or `|`), the lines after a command up to the next `$ ` are what it
prints.  Each command is run by bash in a fresh directory, with
`localhost:8080` (and `localhost:9000`) pointing at a test server and
`$(pidof attnd)` replaced by that server's pid and `build/attnd` by the
binary under test, and then:

- its output must be the documented one: text exactly, except that numbers
  may differ within the suites' tolerance (|a-b| <= 1e-5 + 1e-5*|b|, as the
  last float32 bit can differ between CPUs) and are written no longer than
  documented (or at most 9 significant digits); a documented line that is
  `...` stands for any lines (none included), a line ending in `...` for
  any line that starts with the text before it, and a `Date:` header line
  for any `Date:` line.
- the HTTP status of every curl in it must be the documented one: the status
  line when the output shows one, else the `"status"` of a native error
  body, else a 4xx/5xx for a v2 error body (`{"error": "..."}`), else 2xx.

The line right before a block may hold a marker (HTML comment, invisible
when rendered):

    <!-- doc-test: attnd --drain-delay 5 -->   a server of its own, with flags
    <!-- doc-test: attnd --threads 2; ulimit -v 60000 -->   and an address-space cap
    <!-- doc-test: skip REASON -->             not run (the reason is required)

Without a marker the block runs against the session's server.  Blocks of any
other language (```sh, ```text, ...) are not run.  A doc without a single
checked example fails: the test must not pass because it found nothing.
"""

import json
import os
import re
import resource
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from attnd_e2e import REPO, AttndServer, attnd_bin

DOCS = [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md"))
MARKER = re.compile(r"^<!--\s*doc-test:\s*(.*?)\s*-->$")
NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
ABS_TOL = REL_TOL = 1e-5
# Each curl also writes its status to stderr, after what it prints.
PRELUDE = "curl() { command curl -w '%{stderr}doc-test-status %{http_code}\\n' \"$@\"; }\n"


# ---------------------------------------------------------------- extraction

class Command:
    def __init__(self, text, output, line):
        self.text, self.output, self.line = text, output, line


class Block:
    def __init__(self, path, line, marker, commands):
        self.path, self.line, self.marker, self.commands = path, line, marker, commands

    @property
    def id(self):
        return "%s:%d" % (self.path.relative_to(REPO), self.line)


def _complete(text):
    if text.rstrip().endswith(("\\", "|")):
        return False
    try:
        shlex.split(text)
    except ValueError:          # an open quote: the command goes on
        return False
    return True


def parse_commands(lines, first_line):
    cmds, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise ValueError("line %d: console block text before any `$ ` command" % (first_line + i))
        start = i
        text = lines[i][2:]
        i += 1
        while not _complete(text) and i < len(lines):
            text += "\n" + lines[i]
            i += 1
        out = []
        while i < len(lines) and not lines[i].startswith("$ "):
            out.append(lines[i])
            i += 1
        while out and out[-1] == "":
            out.pop()
        cmds.append(Command(text, out, first_line + start))
    return cmds


def extract(path):
    blocks, lines = [], path.read_text().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^( *)(```+)\s*(\S*)", lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang, start = len(m.group(1)), m.group(2), m.group(3), i
        j = i + 1
        while j < len(lines) and not lines[j].lstrip(" ").startswith(fence):
            j += 1
        if lang == "console":       # (a block inside a list item is indented)
            k = start - 1
            while k >= 0 and lines[k].strip() == "":
                k -= 1
            mm = MARKER.match(lines[k].strip()) if k >= 0 else None
            body = [l[indent:] if l[:indent].strip() == "" else l for l in lines[start + 1:j]]
            blocks.append(Block(path, start + 1, mm.group(1) if mm else "",
                                parse_commands(body, start + 2)))
        i = j + 1
    return blocks


ALL_BLOCKS = [b for p in DOCS for b in extract(p)]


# ---------------------------------------------------------------- comparison

def _sig_digits(tok):
    mant = re.split(r"[eE]", tok)[0].lstrip("-").replace(".", "").lstrip("0")
    return len(mant.rstrip("0")) or 1


def line_matches(doc, got):
    if doc.startswith("Date: ") and got.startswith("Date: "):
        return True
    if doc.endswith("...") and doc != "...":
        prefix = doc[:-3].rstrip()
        return line_matches(prefix, got[:len(prefix)]) if len(got) >= len(prefix) else False
    dt, gt = NUMBER.split(doc), NUMBER.split(got)
    dn, gn = NUMBER.findall(doc), NUMBER.findall(got)
    if dt != gt or len(dn) != len(gn):
        return False
    for d, g in zip(dn, gn):
        if d == g:
            continue
        a, b = float(g), float(d)
        if abs(a - b) > ABS_TOL + REL_TOL * abs(b):
            return False
        if _sig_digits(g) > max(9, _sig_digits(d)):
            return False
    return True


def output_matches(doc, got):
    """doc lines (with `...` wildcards) against got lines."""
    memo = {}

    def m(i, j):
        if (i, j) in memo:
            return memo[i, j]
        if i == len(doc):
            r = j == len(got)
        elif doc[i] == "...":
            r = any(m(i + 1, k) for k in range(j, len(got) + 1))
        else:
            r = j < len(got) and line_matches(doc[i], got[j]) and m(i + 1, j + 1)
        memo[i, j] = r
        return r
    return m(0, 0)


def expected_status(cmd):
    out = "\n".join(cmd.output)
    m = re.search(r"^HTTP/1\.[01] (\d{3})", out, re.M)
    if m:
        return int(m.group(1)), int(m.group(1))
    try:
        body = json.loads(cmd.output[0]) if cmd.output else None
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]["status"], body["error"]["status"]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return 400, 599
    return 200, 299


# ---------------------------------------------------------------- running

def sanitized():
    data = Path(attnd_bin()).read_bytes()
    return b"__asan_init" in data or os.environ.get("ATTND_SANITIZED") == "1"


def own_server(tmp_path, spec):
    """attnd with the marker's flags (`attnd ARGS [; ulimit -v KB]`)."""
    parts = [p.strip() for p in spec.split(";")]
    args = shlex.split(parts[0])
    assert args and args[0] == "attnd", "marker %r: expected `attnd [flags]`" % spec
    cap = None
    for p in parts[1:]:
        m = re.fullmatch(r"ulimit -v (\d+)", p)
        assert m, "marker %r: unknown part %r" % (spec, p)
        cap = int(m.group(1)) * 1024
    if cap and sanitized():
        pytest.skip("an address-space cap (ulimit -v) cannot apply to a sanitized build")
    preexec = (lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap))) if cap else None
    return AttndServer(tmp_path / "srv", extra_args=args[1:], name="doc", preexec=preexec)


def run(cmd, srv, cwd):
    text = cmd.text.replace("localhost:8080", "127.0.0.1:%d" % srv.port)
    text = text.replace("localhost:9000", "127.0.0.1:%d" % srv.port)
    text = text.replace("$(pidof attnd)", str(srv.proc.pid))
    text = re.sub(r"(?<![\w/.-])build/attnd\b", attnd_bin(), text)
    p = subprocess.run(["bash", "-c", PRELUDE + text], cwd=cwd, capture_output=True, timeout=60,
                       env=dict(os.environ, LC_ALL="C.UTF-8"))
    return p


def test_docs_have_checked_examples():
    checked = [b for b in ALL_BLOCKS if not b.marker.startswith("skip")]
    assert any(b.path.name == "README.md" for b in checked), "README.md has no checked example"
    assert len(checked) >= 20, "only %d checked console blocks found" % len(checked)


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: b.id)
def test_doc_example(block, request, tmp_path):
    if block.marker.startswith("skip"):
        reason = block.marker[4:].strip()
        assert reason, "%s: `doc-test: skip` needs a reason" % block.id
        pytest.skip(reason)
    assert block.commands, "%s: empty console block" % block.id
    srv = own_server(tmp_path, block.marker) if block.marker else request.getfixturevalue("server")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    try:
        for cmd in block.commands:
            p = run(cmd, srv, cwd)
            where = "%s:%d `%s`" % (block.path.relative_to(REPO), cmd.line, cmd.text.splitlines()[0])
            err = p.stderr.decode("utf-8", "replace")
            assert p.returncode == 0, "%s exited %d: %s" % (where, p.returncode, err)
            got = p.stdout.decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n")
            got_lines = got.split("\n") if got else []
            assert output_matches(cmd.output, got_lines), \
                "%s printed something else.\n--- documented\n%s\n--- got\n%s" % (
                    where, "\n".join(cmd.output), got)
            statuses = [int(s) for s in re.findall(r"^doc-test-status (\d+)$", err, re.M)]
            lo, hi = expected_status(cmd)
            for s in statuses:
                assert lo <= s <= hi, "%s: HTTP status %d, documented %s" % (
                    where, s, lo if lo == hi else "%d-%d" % (lo, hi))
            if "kill " in cmd.text:     # wait until the signal has been handled
                deadline = time.monotonic() + 10
                while "signal" not in srv.stderr_text() and time.monotonic() < deadline:
                    time.sleep(0.02)
    finally:
        if block.marker:
            rc = srv.stop(15.0)
            assert rc == 0, "%s: attnd exited %r; stderr:\n%s" % (block.id, rc, srv.stderr_text()[-2000:])


# ---------------------------------------------------------------- links

def _anchors(path):
    """GitHub's heading anchors of a Markdown file."""
    out, fence = set(), False
    for line in path.read_text().split("\n"):
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"^#+ (.*)$", line)
        if m:
            out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


def test_doc_links():
    """Every relative link of README.md and docs/*.md names a file that exists,
    and every #anchor a heading of its page: pages that move cannot leave
    dead links behind."""
    bad = []
    for path in DOCS:
        text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                bad.append("%s: %s (no such file)" % (path.relative_to(REPO), target))
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                bad.append("%s: %s (no such heading)" % (path.relative_to(REPO), target))
    assert not bad, "dead links:\n" + "\n".join(bad)

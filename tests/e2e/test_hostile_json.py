"""Hostile bodies: every file of nst/JSONTestSuite's test_parsing/ (MIT, copied into
tests/data/JSONTestSuite/) is POSTed byte for byte to /bow and to /attention.

- n_* (invalid JSON): 400 invalid_json or 400 too_deep, as a JSON error.
- y_* (valid JSON): a JSON 4xx error or a 200 (none of them is an attnd request, so
  in practice 4xx); never a 5xx and never a dropped connection.
- i_* (implementation-defined): a JSON 4xx or a 200; the outcome of each file must
  match the table in tests/e2e/README.md (section "JSONTestSuite i_* outcomes").
Each file is also sent as a tensor value, {"x": [[<file>]]}, twice: once as is,
which goes through attnd's own tensor scanner (api/body.c), and once with the key
spelled "\\u0078", which the scanner leaves to Jansson; both must get the same answer.
Afterwards the same instance is still alive and answers fixtures correctly.

The corpus runs on its own instance so a crash is pinned to this module.
Exceptions to the rules above are listed below, each with the reason.
"""

import http.client
import json
import re

import pytest

from attnd_e2e import (E2E_DIR, REPO, AttndServer, check_fixture_response, do_request, error_of,
                       load_fixture)

SUITE = REPO / "tests" / "data" / "JSONTestSuite" / "test_parsing"
FILES = sorted(SUITE.glob("*.json")) if SUITE.is_dir() else []
ENDPOINTS = ("/bow", "/attention")

# n_* files that Jansson 2.14 parses anyway.  The server then judges the parsed
# value, which for these is never a request object, so the answer is still a 4xx.
# (n_multidigit_number_then_00, "123" + NUL, used to be one: Jansson 2.14
# skips a NUL byte right after a number.  attnd now refuses any NUL byte
# before Jansson sees the body -- test_nul_after_number.)
N_ACCEPTED_BY_JANSSON = {}

# y_* files (valid JSON) that attnd refuses as invalid_json by design.
Y_REFUSED_AS_INVALID_JSON = {
    # Duplicate keys are refused (JSON_REJECT_DUPLICATES; docs/errors.md).
    "y_object_duplicated_key.json": "duplicate keys are refused",
    "y_object_duplicated_key_and_value.json": "duplicate keys are refused",
    # Jansson refuses \u0000 unless JSON_ALLOW_NUL, which attnd does not set.
    "y_object_escaped_null_in_key.json": "\\u0000 in a key (Jansson without JSON_ALLOW_NUL)",
    "y_string_null_escape.json": "\\u0000 in a string (Jansson without JSON_ALLOW_NUL)",
}

I_OUTCOMES = {}  # i_* file name -> {endpoint: "status code"}


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory):
    srv = AttndServer(tmp_path_factory.mktemp("corpus"), name="corpus")
    yield srv
    alive = srv.alive()
    rc = srv.stop(10.0)
    assert alive, "attnd died during the JSONTestSuite corpus; stderr tail:\n%s" % srv.stderr_text()[-3000:]
    assert rc == 0, "exit %r after SIGTERM; stderr tail:\n%s" % (rc, srv.stderr_text()[-3000:])


def post_raw(srv, path, body):
    """POST body byte for byte on a fresh connection; a dropped connection fails the test."""
    conn = srv.connect(timeout=10)
    try:
        return do_request(conn, "POST", path, body=body)
    except (http.client.HTTPException, OSError) as e:
        pytest.fail("POST %s: connection failed (%r); attnd alive: %s; stderr tail:\n%s"
                    % (path, e, srv.alive(), srv.stderr_text()[-1500:]))
    finally:
        conn.close()


def _params(prefix):
    fs = [f for f in FILES if f.name.startswith(prefix)]
    if not fs:
        return [pytest.param(None, id="NO_FILES")]
    return [pytest.param(f, id=f.name[:-5]) for f in fs]


def _need(f):
    if f is None:
        pytest.fail("no JSONTestSuite files under %s" % SUITE)


def test_corpus_present():
    assert (SUITE.parent / "LICENSE").is_file(), "JSONTestSuite's LICENSE must ship with the copy"
    counts = {p: sum(1 for f in FILES if f.name.startswith(p)) for p in ("n_", "y_", "i_")}
    assert counts["n_"] >= 180 and counts["y_"] >= 90 and counts["i_"] >= 30, counts


@pytest.mark.parametrize("f", _params("n_"))
def test_n_file_refused(corpus_server, f):
    _need(f)
    body = f.read_bytes()
    for ep in ENDPOINTS:
        r = post_raw(corpus_server, ep, body)
        status, code = error_of(r)
        if f.name in N_ACCEPTED_BY_JANSSON:
            assert (status, code) == N_ACCEPTED_BY_JANSSON[f.name], (
                "%s %s -> %r; the documented Jansson exception changed, update N_ACCEPTED_BY_JANSSON"
                % (f.name, ep, r))
            continue
        assert status == 400 and code in ("invalid_json", "too_deep"), "%s %s -> %r" % (f.name, ep, r)


@pytest.mark.parametrize("f", _params("y_"))
def test_y_file_answered(corpus_server, f):
    _need(f)
    body = f.read_bytes()
    for ep in ENDPOINTS:
        r = post_raw(corpus_server, ep, body)
        assert r.status < 500, "%s %s -> %r" % (f.name, ep, r)
        if r.status == 200:
            assert r.media_type() == "application/json", r
            r.json()
            continue
        status, code = error_of(r)
        assert 400 <= status < 500, "%s %s -> %r" % (f.name, ep, r)
        if code == "invalid_json":
            assert f.name in Y_REFUSED_AS_INVALID_JSON, (
                "valid JSON %s refused as invalid_json by %s: %r (if intended, add it to "
                "Y_REFUSED_AS_INVALID_JSON with the reason)" % (f.name, ep, r))
        else:
            assert f.name not in Y_REFUSED_AS_INVALID_JSON, (
                "%s is now parsed (%s %s); drop it from Y_REFUSED_AS_INVALID_JSON" % (f.name, status, code))


@pytest.mark.parametrize("f", _params("i_"))
def test_i_file_answered(corpus_server, f):
    _need(f)
    body = f.read_bytes()
    outcome = {}
    for ep in ENDPOINTS:
        r = post_raw(corpus_server, ep, body)
        assert r.status == 200 or 400 <= r.status < 500, "%s %s -> %r" % (f.name, ep, r)
        if r.status == 200:
            assert r.media_type() == "application/json", r
            r.json()
            outcome[ep] = "200"
        else:
            status, code = error_of(r)
            outcome[ep] = "%d %s" % (status, code)
    I_OUTCOMES[f.name[:-5]] = outcome
    print("%s: %s" % (f.name, outcome))


def _documented_i_outcomes():
    """Parse the i_* table of tests/e2e/README.md: | `400` `code` | `i_a`, `i_b` |."""
    text = (E2E_DIR / "README.md").read_text()
    m = re.search(r"<!-- i_outcomes -->(.*?)<!-- /i_outcomes -->", text, re.S)
    assert m, "tests/e2e/README.md lacks the <!-- i_outcomes --> table"
    doc = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not re.match(r"`\d{3}", cells[0]):
            continue
        outcome = " ".join(re.findall(r"`([^`]+)`", cells[0]))
        for name in re.findall(r"`(i_[^`]+)`", cells[1]):
            doc[name] = outcome
    return doc


def test_i_outcomes_match_readme(corpus_server):
    """Runs after the i_* tests: what the server did is what tests/e2e/README.md documents."""
    names = [f.name[:-5] for f in FILES if f.name.startswith("i_")]
    if set(I_OUTCOMES) != set(names):
        pytest.skip("needs every test_i_file_answered case in the same run")
    got = {}
    for name, per_ep in I_OUTCOMES.items():
        assert per_ep["/bow"] == per_ep["/attention"], "%s: endpoints differ: %r" % (name, per_ep)
        got[name] = per_ep["/bow"]
    rows = {}
    for name in sorted(got):
        rows.setdefault(got[name], []).append(name)
    print("\ni_* outcomes (both endpoints):")
    for outcome, ns in sorted(rows.items()):
        print("  %-22s %2d  %s" % (outcome, len(ns), ", ".join(ns)))
    doc = _documented_i_outcomes()
    diff = {n: (doc.get(n), got.get(n)) for n in set(doc) | set(got) if doc.get(n) != got.get(n)}
    assert not diff, "README table (documented, observed) differs: %r" % diff


def test_nul_after_number(corpus_server):
    """Jansson 2.14 skips a NUL byte right after a number, so {"x": [[[1\\0]]]}
    would read as {"x": [[[1]]]}; attnd refuses every NUL byte before parsing,
    with its line and column."""
    r = post_raw(corpus_server, "/bow", b'{"x": [[[1\x00]]]}')
    assert error_of(r) == (400, "invalid_json"), r
    err = r.json()["error"]
    assert (err["line"], err["column"], err["position"]) == (1, 11, 10), err
    r = post_raw(corpus_server, "/bow", b'{"x": [[[1]]]}\x00')
    assert error_of(r) == (400, "invalid_json"), r


# ---------------------------------------------------------------- the corpus as tensor values

def _answer(r):
    """What must agree between the two spellings: status and, for errors, code, path,
    line; column and position are compared by the caller (the key is 5 bytes longer)."""
    assert r.status < 500, r
    if r.status == 200:
        assert r.media_type() == "application/json", r
        return 200, r.body, None
    status, _ = error_of(r)
    err = r.json()["error"]
    return status, (err["code"], err.get("path"), err.get("line")), (err.get("column"), err.get("position"))


EMBED = {
    "/bow": b'{"%s": [[%s]]}',
    "/attention": b'{"wq": [[1]], "wk": [[1]], "wv": [[1]], "%s": [[%s]]}',
}


@pytest.mark.parametrize("f", _params(""))
def test_embedded_scanner_matches_jansson(corpus_server, f):
    """{"x": [[<file>]]} (attnd's tensor scanner) and {"\\u0078": [[<file>]]} (Jansson
    alone) are the same request and must get the same answer: the same 200 body, or
    the same status, code, path and line (column and position 5 further on line 1,
    position 5 further on later lines)."""
    _need(f)
    content = f.read_bytes()
    for ep, tmpl in EMBED.items():
        fast = post_raw(corpus_server, ep, tmpl.replace(b"%s", b"x", 1).replace(b"%s", content, 1))
        slow = post_raw(corpus_server, ep, tmpl.replace(b"%s", b"\\u0078", 1).replace(b"%s", content, 1))
        a, b = _answer(fast), _answer(slow)
        desc = "%s %s: scanner %r, Jansson %r" % (f.name, ep, fast, slow)
        assert a[:2] == b[:2], desc
        if a[2] is not None:
            (col_a, pos_a), (col_b, pos_b), line = a[2], b[2], a[1][2]
            if pos_a is not None:
                assert pos_b == pos_a + 5, desc
            if col_a is not None and line:
                assert col_b == col_a + (5 if line == 1 else 0), desc


# ---------------------------------------------------------------- error texts cut inside a character
#
# Regression: error messages quote the body (Jansson's "near '...'" excerpt, the
# "%.60s" of an unknown field name, the 160-byte error path); a cut inside a
# multi-byte UTF-8 character made the text invalid UTF-8, Jansson refused it, and
# the client got 503 out_of_memory.  Fixed in 074d25c; found by this corpus
# (n_string_escaped_emoji).

def _utf8_error(r, status, code):
    assert error_of(r) == (status, code), "expected %d %s, got %r" % (status, code, r)
    r.body.decode("utf-8")        # strict: the error body is valid UTF-8


@pytest.mark.parametrize("body", [
    pytest.param('["\\\U0001F300"]', id="escaped_emoji"),          # n_string_escaped_emoji.json
    pytest.param('["\\\u00e9"]', id="backslash_e_acute"),
    pytest.param('["\\u12\u00e9"]', id="short_u_escape_then_e_acute"),
    pytest.param('{"x": [[[1]]], "m\\\u00e9": 1}', id="in_a_key"),
])
def test_invalid_escape_before_multibyte_char(corpus_server, body):
    r = post_raw(corpus_server, "/bow", body.encode("utf-8"))
    _utf8_error(r, 400, "invalid_json")


@pytest.mark.parametrize("key", [
    pytest.param("a" * 59 + "\u00e9" * 5, id="message_60_byte_cut"),
    pytest.param("\u00e9" * 100, id="path_160_byte_cut"),
    pytest.param("\U0001F300" * 50, id="four_byte_chars"),
])
def test_unknown_field_with_multibyte_name(corpus_server, key):
    body = json.dumps({"x": [[[1]]], key: 1}, ensure_ascii=False).encode("utf-8")
    r = post_raw(corpus_server, "/bow", body)
    _utf8_error(r, 422, "unknown_field")


def test_alive_and_correct_after_corpus(corpus_server):
    """Last in the module: the instance survived the corpus and still computes correctly."""
    assert corpus_server.alive(), corpus_server.stderr_text()[-3000:]
    r = corpus_server.request("GET", "/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}, r
    for rel in ("bow/b4_t8_c2_all.json", "attention/lecture_seed1337.json", "randn/randn_s1337_2x8.json"):
        fx = load_fixture(REPO / "tests" / "fixtures" / rel)
        r = corpus_server.post(fx["endpoint"], fx["request"])
        problems = check_fixture_response(fx, r)
        assert not problems, "%s after the corpus: %s" % (rel, problems[:5])
    status_500 = re.findall(r"(?m)^[A-Z]+ \S* 500 .*$", corpus_server.stderr_text())
    assert not status_500, "500 internal_error is reserved for bugs: %s" % status_500[:5]

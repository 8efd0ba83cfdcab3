"""Golden PyTorch fixtures (tests/fixtures/*/*.json) and the seed's worked example."""

import json
import threading

import pytest

from attnd_e2e import DATA_DIR, FIXTURES_DIR, check_fixture_response, do_request, fixture_files, load_fixture

_FILES = fixture_files()


def _fixture_params():
    if not _FILES:
        return [pytest.param(None, id="NO_FIXTURES_FOUND")]
    return [pytest.param(p, id="%s/%s" % (p.parent.name, p.stem)) for p in _FILES]


@pytest.mark.parametrize("fixture_path", _fixture_params())
def test_fixture(server, fixture_path):
    if fixture_path is None:
        pytest.fail("no fixtures found under %s/*/*.json" % FIXTURES_DIR)
    fx = load_fixture(fixture_path)
    assert fx["endpoint"] in ("/bow", "/attention", "/multihead", "/randn"), fx["endpoint"]
    r = server.post(fx["endpoint"], fx["request"])
    problems = check_fixture_response(fx, r)
    assert not problems, "%s: %d problem(s):\n  %s" % (fixture_path.name, len(problems), "\n  ".join(problems))


def test_fixture_folders_not_empty():
    for sub in ("bow", "attention", "multihead", "randn"):
        assert list((FIXTURES_DIR / sub).glob("*.json")), "no fixtures in %s" % (FIXTURES_DIR / sub)


def test_concurrent_fixture_requests(server):
    """8 threads x 25 requests, each thread on its own keep-alive connection, all correct."""
    assert _FILES, "no fixtures"
    fixtures = [load_fixture(p) for p in _FILES]
    errors = []
    lock = threading.Lock()

    def worker(tid):
        conn = server.connect(timeout=30)
        try:
            for i in range(25):
                fx = fixtures[(tid * 25 + i) % len(fixtures)]
                try:
                    r = do_request(conn, "POST", fx["endpoint"], fx["request"])
                    problems = check_fixture_response(fx, r)
                except Exception as e:  # connection-level failure
                    problems = ["exception %r" % (e,)]
                    conn.close()
                    conn = server.connect(timeout=30)
                if problems:
                    with lock:
                        errors.append("thread %d req %d (%s): %s" % (tid, i, fx["name"], problems[:3]))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "worker threads hung"
    assert not errors, "%d bad responses, first ones:\n%s" % (len(errors), "\n".join(errors[:10]))


# ---------------------------------------------------------------- seed worked example

SEED = DATA_DIR / "seed_000.txt"


def _tensor_after(text, marker):
    """Parse the first printed `tensor([[...]])` that follows `marker` in the text."""
    i = text.index(marker)
    j = text.index("tensor(", i) + len("tensor(")
    k = text.index("]])", j) + 2
    rows = json.loads(text[j:k])
    assert rows and all(isinstance(r, list) for r in rows)
    return rows


def seed_tensors():
    text = SEED.read_text()
    # `x[0]` printed alone after In [11], `xbow[0]` is the first tensor of the In [24] output tuple.
    x0 = _tensor_after(text, "\nx[0]\n")
    xbow0 = _tensor_after(text, "\nxbow[0], x[0]")
    weights = _tensor_after(text, "print (weights)")
    return x0, xbow0, weights


def test_seed_parse():
    x0, xbow0, weights = seed_tensors()
    assert [len(x0), len(x0[0])] == [8, 2]
    assert [len(xbow0), len(xbow0[0])] == [8, 2]
    assert [len(weights), len(weights[0])] == [8, 8]
    assert x0[0] == [1.1117, -1.1870] and xbow0[1] == [0.3534, -0.7486]


@pytest.mark.parametrize("method", ["loop", "matmul", "softmax", "all"])
def test_seed_worked_example(server, method):
    x0, xbow0, weights = seed_tensors()
    r = server.post("/bow", {"x": [x0], "method": method})
    assert r.status == 200, r
    body = r.json()
    assert body["method"] == method
    out0 = body["out"][0]
    assert len(out0) == 8 and all(len(row) == 2 for row in out0)
    for t in range(8):
        for c in range(2):
            assert abs(out0[t][c] - xbow0[t][c]) <= 1.01e-4, (t, c, out0[t][c], xbow0[t][c])
    # The note also prints the averaging matrix at 4 decimals.
    for t in range(8):
        for s in range(8):
            assert abs(body["weights"][t][s] - weights[t][s]) <= 5.01e-5, (t, s, body["weights"][t][s])
    if method == "all":
        assert body["allclose"] is True
        assert set(body["max_abs_diff"]) == {"loop_matmul", "loop_softmax", "matmul_softmax"}


# ---------------------------------------------------------------- seed note 004: the lecture cell as a seed

SEED_004 = DATA_DIR / "seed_004.txt"


def seed_004_wei0():
    """The `wei[0]` table the note prints (4 decimals), parsed from its text."""
    text = SEED_004.read_text()
    j = text.index("tensor(", text.index("Example:")) + len("tensor(")
    depth, k = 0, j
    while True:                     # the matching ']' of the outer '['
        depth += {"[": 1, "]": -1}.get(text[k], 0)
        k += 1
        if depth == 0:
            break
    rows = json.loads(text[j:k])
    assert [len(rows), len(rows[0])] == [8, 8]
    return rows


def test_seed_004_lecture_cell(server):
    """torch.manual_seed(1337); B,T,C = 4,8,32; head_size 16; key, query, value
    created in that order; no scaling -- the note's wei[0], from a seed alone."""
    wei0 = seed_004_wei0()
    r = server.post("/attention", {"seed": 1337, "shape": [4, 8, 32], "head_size": 16,
                                   "scale": False, "return": ["weights"]})
    assert r.status == 200, r
    got = r.json()["weights"][0]
    for t in range(8):
        for s in range(8):
            assert abs(got[t][s] - wei0[t][s]) <= 5.01e-5, (t, s, got[t][s], wei0[t][s])
    # The scaled default is a different matrix: the table really tests the flag.
    r2 = server.post("/attention", {"seed": 1337, "shape": [4, 8, 32], "head_size": 16,
                                    "return": ["weights"]})
    assert r2.status == 200 and r2.json()["weights"][0] != got

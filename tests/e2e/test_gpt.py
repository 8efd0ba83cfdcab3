"""POST /block, POST /gpt, --models, GET /models and the v2 models of a
repository, against the PyTorch fixtures of tests/fixtures/gpt/
(gen_gpt.py: the lecture's own classes) and the shipped model."""

import json
import math
import shutil

import pytest

from attnd_e2e import (REPO, FIXTURES_DIR, AttndServer, attnd_bin, compare,
                       do_request, error_of, shape)

GPT_FX = FIXTURES_DIR / "gpt"
MODELS = REPO / "models"
TINY = GPT_FX / "models"          # a repository holding "tiny"


def load(kind, name):
    with open(GPT_FX / kind / (name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def fixtures(kind):
    return sorted(p.stem for p in (GPT_FX / kind).glob("*.json"))


@pytest.fixture(scope="module")
def gpt_server(tmp_path_factory):
    """attnd serving the shipped repository and the test one."""
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(MODELS / "shakespeare", repo / "shakespeare")
    shutil.copytree(TINY / "tiny", repo / "tiny")
    srv = AttndServer(tmp_path_factory.mktemp("gpt"),
                      extra_args=["--models", str(repo)], name="gpt")
    yield srv
    assert srv.alive(), srv.stderr_text()[-2000:]
    assert srv.stop(60.0) == 0


def post_slow(srv, path, body):
    """A request that generates: 200 forward passes, slow under ASan on a
    loaded machine (the answer is checked, never its time)."""
    conn = srv.connect(timeout=300)
    try:
        return do_request(conn, "POST", path, body)
    finally:
        conn.close()


def ok(r):
    assert r.status == 200, r
    return r.json()


def close(exp, got, atol=1e-5, rtol=1e-5, what=""):
    problems = compare(exp, got, what, None, atol, rtol)
    assert not problems, problems


# ==== /block ====

BLOCK_PARAMS = ["ln1_w", "ln1_b", "ln2_w", "ln2_b", "wo", "bo", "fc1_w",
                "fc1_b", "fc2_w", "fc2_b"]


def block_weights(params, H):
    """The state_dict of Block(n_embd, n_head) as /block's inputs."""
    w = {k: [params["sa.heads.%d.%s.weight" % (h, name)] for h in range(H)]
         for k, name in (("wq", "query"), ("wk", "key"), ("wv", "value"))}
    w.update(wo=params["sa.proj.weight"], bo=params["sa.proj.bias"],
             fc1_w=params["ffwd.net.0.weight"], fc1_b=params["ffwd.net.0.bias"],
             fc2_w=params["ffwd.net.2.weight"], fc2_b=params["ffwd.net.2.bias"],
             ln1_w=params["ln1.weight"], ln1_b=params["ln1.bias"],
             ln2_w=params["ln2.weight"], ln2_b=params["ln2.bias"])
    return w


@pytest.mark.parametrize("name", fixtures("block"))
def test_block_fixture(gpt_server, name):
    fx = load("block", name)
    req = dict(fx["request"])
    if "weights" in req:                    # explicit: the packed inputs
        req.pop("weights")
        req.pop("n_embd")
        req.update(block_weights(fx["params"], req.pop("n_head")))
    got = ok(gpt_server.post("/block", req))
    assert list(got) == req["return"]
    for k in req["return"]:
        assert shape(got[k]) == shape(fx["expect"][k]), k
    close(fx["expect"], got)


def test_block_seeded_equals_explicit(gpt_server):
    """The seeded Block's weights are PyTorch's bit for bit: sending them
    explicitly gives the very same answer."""
    fx = load("block", "block_seed1337_b2_t8_c16_h4")
    req = {k: fx["request"][k] for k in ("x", "seed", "n_head")}
    req["return"] = ["out", "weights"]
    seeded = gpt_server.post("/block", req)
    explicit = {"x": req["x"], "return": req["return"]}
    explicit.update(block_weights(fx["params"], 4))
    assert seeded.status == 200
    assert seeded.body == gpt_server.post("/block", explicit).body


def test_block_default_is_out(gpt_server):
    fx = load("block", "block_seed42_b3_t4_c4_h2")
    got = ok(gpt_server.post("/block", {"x": fx["request"]["x"], "seed": 42,
                                        "n_head": 2}))
    assert list(got) == ["out"]
    close(fx["expect"]["out"], got["out"])


# ==== /gpt: seeded models ====

def gpt_request(fx):
    r = dict(fx["request"])
    r.pop("generate", None)
    return r


@pytest.mark.parametrize("name", fixtures("gpt"))
def test_gpt_fixture(gpt_server, name):
    fx = load("gpt", name)
    req = gpt_request(fx)
    req["return"] = ["logits", "probs", "weights", "hidden", "last_logits"]
    got = ok(gpt_server.post("/gpt", req))
    exp = fx["expect"]
    for k in ("logits", "probs", "weights", "hidden"):
        assert shape(got[k]) == shape(exp[k]), k
        close(exp[k], got[k], what=k)
    close([row[-1] for row in exp["logits"]], got["last_logits"])
    assert len(shape(got["weights"])) == 5      # B x L x H x T x T


@pytest.mark.parametrize("name", [n for n in fixtures("gpt")
                                  if "generate" in load("gpt", n)["request"]])
def test_gpt_generate_tokens(gpt_server, name):
    """torch.manual_seed(s); model.generate(idx, n): the very tokens."""
    fx = load("gpt", name)
    g = fx["request"]["generate"]
    req = gpt_request(fx)
    req.update(idx=g["idx"], max_new_tokens=g["max_new_tokens"],
               sample_seed=g["seed"])
    got = ok(post_slow(gpt_server, "/gpt", req))
    assert list(got) == ["last_logits", "probs", "tokens"]
    assert got["tokens"] == fx["expect"]["generated"]


# ==== /gpt: the shipped model ====

def test_shipped_logits_on_held_out_text(gpt_server):
    fx = load("shipped", "shakespeare")
    tol = fx["expect"]["tolerance"]
    got = ok(gpt_server.post("/gpt", {"model": "shakespeare",
                                      "text": fx["request"]["text"],
                                      "return": ["logits", "probs"]}))
    close(fx["expect"]["logits"], got["logits"], tol["atol"], tol["rtol"])
    close(fx["expect"]["probs"], got["probs"], tol["atol"], tol["rtol"])


def test_shipped_generates_pytorchs_text(gpt_server):
    fx = load("shipped", "shakespeare")
    g = fx["request"]["generate"]
    got = ok(post_slow(gpt_server, "/gpt", {
        "model": "shakespeare", "text": g["text"],
        "max_new_tokens": g["max_new_tokens"], "sample_seed": g["seed"],
        "return": ["tokens", "text"]}))
    assert got["tokens"] == fx["expect"]["generated"]
    assert got["text"] == [fx["expect"]["generated_text"]]


def test_shipped_answers_first_citizen(gpt_server):
    """The README's first request: a trained model's next-character
    distribution after "First Citizen:" puts its mass on the newline."""
    got = ok(gpt_server.post("/gpt", {"model": "shakespeare",
                                      "text": "First Citizen:"}))
    assert list(got) == ["last_logits", "probs"]
    p = got["probs"][0]
    assert abs(sum(p) - 1) < 1e-4
    assert p.index(max(p)) == 0                 # "\n", id 0


def test_idx_equals_text(gpt_server):
    cfg = json.loads((MODELS / "shakespeare" / "config.json").read_text())
    text = "ROMEO:\nBut soft"
    ids = [cfg["vocab"].index(ch) for ch in text]
    a = gpt_server.post("/gpt", {"model": "shakespeare", "idx": ids})
    b = gpt_server.post("/gpt", {"model": "shakespeare", "text": text})
    assert a.status == 200 and a.body == b.body


# ==== GET /models and v2 ====

def test_models_lists_repository(gpt_server):
    got = ok(gpt_server.request("GET", "/models"))
    names = [m["name"] for m in got["models"]]
    assert names == ["shakespeare", "tiny"]
    sh = got["models"][0]
    assert sh["v2"] == "/v2/models/shakespeare"
    assert sh["config"]["n_layer"] == 4 and sh["config"]["vocab_size"] == 65
    assert sh["parameters"] == 211777


def test_v2_metadata_from_table(gpt_server):
    got = ok(gpt_server.request("GET", "/v2/models/shakespeare"))
    assert got["name"] == "shakespeare"
    assert got["inputs"] == [{"name": "idx", "datatype": "INT64",
                              "shape": [-1, -1],
                              "parameters": {"ranks": "1,2"}}]
    outs = {o["name"]: (o["datatype"], len(o["shape"])) for o in got["outputs"]}
    assert outs["weights"] == ("FP32", 5)
    assert outs["tokens"] == ("INT64", 2) and outs["text"] == ("BYTES", 1)


def test_v2_infer_matches_native(gpt_server):
    fx = load("shipped", "shakespeare")
    g = fx["request"]["generate"]
    body = {"inputs": [], "parameters": {"text": g["text"],
                                         "max_new_tokens": g["max_new_tokens"],
                                         "sample_seed": g["seed"]},
            "outputs": [{"name": "text"}, {"name": "tokens"}]}
    got = ok(post_slow(gpt_server, "/v2/models/shakespeare/infer", body))
    assert got["model_name"] == "shakespeare"
    text, toks = got["outputs"]
    assert text == {"name": "text", "shape": [1], "datatype": "BYTES",
                    "data": [fx["expect"]["generated_text"]]}
    assert toks["datatype"] == "INT64" and toks["shape"] == [1, 214]
    assert toks["data"] == fx["expect"]["generated"][0]


def test_v2_infer_idx_int64(gpt_server):
    fx = load("shipped", "shakespeare")
    cfg = json.loads((MODELS / "shakespeare" / "config.json").read_text())
    ids = [[cfg["vocab"].index(ch) for ch in t] for t in fx["request"]["text"]]
    body = {"inputs": [{"name": "idx", "shape": [2, 64], "datatype": "INT64",
                        "data": ids}],
            "outputs": [{"name": "logits"}]}
    got = ok(gpt_server.post("/v2/models/shakespeare/infer", body))
    out = got["outputs"][0]
    assert out["shape"] == [2, 64, 65]
    flat = [v for b in fx["expect"]["logits"] for t in b for v in t]
    close(flat, out["data"], 1e-4, 1e-4)


def test_v2_seeded_gpt_and_block(gpt_server):
    fx = load("gpt", "gpt_seed7_v5_bs3_c4_h2_l1")
    req = gpt_request(fx)
    idx = req.pop("idx")
    body = {"inputs": [{"name": "idx", "shape": shape(idx), "datatype": "INT32",
                        "data": idx}], "parameters": req,
            "outputs": [{"name": "probs"}]}
    got = ok(gpt_server.post("/v2/models/gpt/infer", body))
    exp = [v for row in fx["expect"]["probs"] for v in row]
    close(exp, got["outputs"][0]["data"])
    meta = ok(gpt_server.request("GET", "/v2/models/block"))
    assert [i["name"] for i in meta["inputs"]][:6] == ["x", "wq", "wk", "wv",
                                                       "wo", "bo"]


# ==== errors ====

def err(r, status, code, path=None):
    assert error_of(r) == (status, code), r
    if path is not None:
        assert r.json()["error"].get("path") == path, r


@pytest.mark.parametrize("body,status,code,path", [
    ({"text": "hi"}, 422, "missing_field", "model"),
    ({"model": "nope", "text": "hi"}, 404, "unknown_model", "model"),
    ({"model": 3, "text": "hi"}, 422, "wrong_type", "model"),
    ({"model": "shakespeare"}, 422, "missing_field", "idx"),
    ({"model": "shakespeare", "text": "hi", "idx": [1]}, 422,
     "invalid_value", "text"),
    ({"model": "shakespeare", "text": "caf\u00e9"}, 422,
     "unknown_character", "text"),
    ({"model": "shakespeare", "text": ["ab", "abc"]}, 422, "ragged_array",
     "text[1]"),
    ({"model": "shakespeare", "text": ""}, 422, "empty_dimension", "text"),
    ({"model": "shakespeare", "idx": [[1, 2], [3, 65]]}, 422,
     "out_of_range", "idx[1][1]"),
    ({"model": "shakespeare", "idx": [1, 2.5]}, 422, "wrong_type", "idx[1]"),
    ({"model": "shakespeare", "idx": [[1, 2], [3]]}, 422, "ragged_array",
     "idx[1]"),
    ({"model": "shakespeare", "idx": [[[1]]]}, 422, "wrong_rank", "idx"),
    ({"model": "shakespeare", "idx": []}, 422, "empty_dimension", "idx"),
    ({"model": "shakespeare", "idx": list(range(65)) + [0]}, 413,
     "dimension_too_large", "idx"),
    ({"model": "shakespeare", "text": "a", "max_new_tokens": 5000}, 413,
     "dimension_too_large", "max_new_tokens"),
    # 800 forwards of up to 64 tokens: ~1.2e10 multiply-adds > --max-work
    # (701 is the most the default allows after one character)
    ({"model": "shakespeare", "text": "a", "max_new_tokens": 800}, 413,
     "work_too_large", None),
    ({"model": "shakespeare", "text": "a", "max_new_tokens": -1}, 422,
     "out_of_range", "max_new_tokens"),
    ({"model": "shakespeare", "text": "a", "seed": 1}, 422, "invalid_value",
     "seed"),
    ({"model": "shakespeare", "text": "a", "return": ["nope"]}, 422,
     "unknown_return", "return[0]"),
    ({"seed": 1, "vocab_size": 5, "block_size": 4, "n_embd": 4,
      "n_head": 2, "idx": [1]}, 422, "missing_field", "n_layer"),
    ({"seed": 1, "vocab_size": 5, "block_size": 4, "n_embd": 4,
      "n_head": 8, "n_layer": 1, "idx": [1]}, 422, "invalid_value", "n_head"),
    ({"seed": 1, "vocab_size": 5, "block_size": 4, "n_embd": 4,
      "n_head": 2, "n_layer": 1, "text": "a"}, 422, "invalid_value", "text"),
    ({"seed": 1, "vocab_size": 5, "block_size": 4, "n_embd": 4,
      "n_head": 2, "n_layer": 1, "idx": [1], "return": ["text"]}, 422,
     "invalid_value", "return"),
    ({"seed": 1, "vocab_size": 5, "block_size": 4, "n_embd": 1 << 24,
      "n_head": 2, "n_layer": 1, "idx": [1]}, 413, "too_large",
     "vocab_size"),
    ({"model": "shakespeare", "text": "a", "tokens": 1}, 422,
     "unknown_field", "tokens"),
])
def test_gpt_errors(gpt_server, body, status, code, path):
    err(gpt_server.post("/gpt", body), status, code, path)


def test_gpt_limits_413(tmp_path):
    srv = AttndServer(tmp_path, name="gpt-small",
                      extra_args=["--models", str(MODELS), "--max-elements",
                                  "1000", "--max-total-elements", "100000"])
    try:
        # 2 x 64 x 65 logits are over 1000 elements: refused before running
        r = srv.post("/gpt", {"model": "shakespeare", "idx": [[1] * 8] * 2,
                              "return": ["logits"]})
        err(r, 413, "too_large", "return")
        r = srv.post("/gpt", {"model": "shakespeare", "idx": [[1] * 8] * 2,
                              "return": ["weights"]})
        err(r, 413, "too_large", "return")
        ok(srv.post("/gpt", {"model": "shakespeare", "idx": [1] * 8}))
        # all the floats one forward holds (scratch, lm_head transposed)
        r = srv.post("/gpt", {"model": "shakespeare", "idx": [[1] * 64] * 4})
        err(r, 413, "request_too_large")
    finally:
        assert srv.stop(60.0) == 0


@pytest.mark.parametrize("body,code,path", [
    ({"x": [[[1.0, 2.0]]]}, "missing_field", "wq"),
    ({"x": [[[1.0, 2.0]]], "seed": 1}, "missing_field", "n_head"),
    ({"x": [[[1.0, 2.0]]], "seed": 1, "n_head": 3}, "invalid_value",
     "n_head"),
    ({"x": [[[1.0, 2.0]]], "seed": 1, "n_head": 1, "n_embd": 4},
     "shape_mismatch", "n_embd"),
    ({"x": [[[1.0, 2.0]]], "seed": 1, "n_head": 1, "fc1_w": [[1.0, 2.0]]},
     "shape_mismatch", "fc1_w"),
    ({"x": [[[1.0, 2.0]]], "seed": 1, "n_head": 1, "return": ["logits"]},
     "unknown_return", "return[0]"),
    ({"seed": 1, "n_head": 1}, "missing_field", "x"),
])
def test_block_errors(gpt_server, body, code, path):
    err(gpt_server.post("/block", body), 422, code, path)


def test_block_scores_masked_as_null(gpt_server):
    got = ok(gpt_server.post("/block", {"x": [[[1.0, 2.0], [3.0, 4.0]]],
                                        "seed": 1, "n_head": 2,
                                        "return": ["scores"]}))
    assert got["scores"][0][0][0][1] is None
    assert got["scores"][0][1][1][0] is not None


# ==== --models at start-up ====

def start_fails(tmp_path, args):
    import subprocess
    p = subprocess.run([attnd_bin(), "--port", "0"] + args, cwd=tmp_path,
                       capture_output=True, timeout=30)
    assert p.returncode == 1, p
    return p.stderr.decode()


def test_models_missing_dir_refused(tmp_path):
    msg = start_fails(tmp_path, ["--models", str(tmp_path / "none")])
    assert "--models" in msg and "none" in msg


def test_models_bad_tensor_named(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(TINY / "tiny", repo / "tiny")
    cfg = json.loads((repo / "tiny" / "config.json").read_text())
    cfg["n_embd"] = cfg["n_embd"] * 2
    (repo / "tiny" / "config.json").write_text(json.dumps(cfg))
    msg = start_fails(tmp_path, ["--models", str(repo)])
    assert "model.safetensors" in msg and "token_embedding_table" in msg, msg


def test_models_builtin_name_refused(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(TINY / "tiny", repo / "gpt")
    msg = start_fails(tmp_path, ["--models", str(repo)])
    assert "gpt" in msg and "built-in" in msg, msg


def test_default_models_dir(tmp_path):
    """Without --models, ./models is served when it exists (make run)."""
    shutil.copytree(MODELS / "shakespeare", tmp_path / "models" / "shakespeare")
    srv = AttndServer(tmp_path, name="default-models")
    try:
        got = ok(srv.request("GET", "/models"))
        assert [m["name"] for m in got["models"]] == ["shakespeare"]
    finally:
        assert srv.stop(60.0) == 0


@pytest.mark.parametrize("body,status,start", [
    ({"inputs": [], "parameters": {"text": "caf\u00e9"}}, 400,
     "unknown_character at parameters.text: "),
    ({"inputs": [{"name": "idx", "shape": [1, 2], "datatype": "INT64",
                  "data": [1, 65]}]}, 400,
     "out_of_range at inputs[0].data[1] (idx[0][1]): "),
    ({"inputs": [{"name": "idx", "shape": [1, 2], "datatype": "FP32",
                  "data": [1, 2]}]}, 400, "wrong_datatype at inputs[0].datatype: "),
    ({"inputs": [], "parameters": {"text": "a", "max_new_tokens": 5000}}, 413,
     "dimension_too_large at parameters.max_new_tokens: "),
])
def test_v2_errors(gpt_server, body, status, start):
    r = gpt_server.post("/v2/models/shakespeare/infer", body)
    assert r.status == status, r
    assert r.json()["error"].startswith(start), r


def test_v2_binary_tokens_and_text(gpt_server):
    """tokens as little-endian INT64 and text as Triton's BYTES (4-byte
    length, then the bytes) after the JSON."""
    import struct
    body = {"inputs": [{"name": "idx", "shape": [2, 3], "datatype": "INT64",
                        "data": [[1, 2, 3], [4, 5, 6]]}],
            "parameters": {"max_new_tokens": 4, "sample_seed": 5,
                           "binary_data_output": True},
            "outputs": [{"name": "tokens"}, {"name": "text"}]}
    r = gpt_server.post("/v2/models/shakespeare/infer", body)
    assert r.status == 200, r
    n = int(r.header("Inference-Header-Content-Length"))
    head = json.loads(r.body[:n])
    toks, text = head["outputs"]
    assert toks["shape"] == [2, 7] and toks["datatype"] == "INT64"
    tb = r.body[n:n + toks["parameters"]["binary_data_size"]]
    ids = list(struct.unpack("<14q", tb))
    assert ids[:3] == [1, 2, 3] and ids[7:10] == [4, 5, 6]
    xb = r.body[n + len(tb):]
    assert len(xb) == text["parameters"]["binary_data_size"]
    cfg = json.loads((MODELS / "shakespeare" / "config.json").read_text())
    strings = []
    while xb:
        k = struct.unpack("<I", xb[:4])[0]
        strings.append(xb[4:4 + k].decode())
        xb = xb[4 + k:]
    assert strings == ["".join(cfg["vocab"][i] for i in ids[7 * b:7 * b + 7])
                       for b in range(2)]
    # the same request in JSON gives the same tokens
    body["parameters"]["binary_data_output"] = False
    got = ok(gpt_server.post("/v2/models/shakespeare/infer", body))
    assert got["outputs"][0]["data"] == ids
    assert got["outputs"][1]["data"] == strings

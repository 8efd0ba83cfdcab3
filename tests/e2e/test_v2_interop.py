"""What Triton's and KServe's own clients send and read (issue 16), each
call's wire format as the protocol documents write it: health bodies,
top-level model_name / model_version, model configuration, statistics,
the model repository, request identity and compression.  The clients
themselves were run by hand (see the README's v2 section)."""

import json
import signal
import time

import pytest

from attnd_e2e import AttndServer
from test_v2 import TENSORS, seeded, v2_error


def infer(server, model, body):
    return server.post("/v2/models/%s/infer" % model, body)


# ---------------------------------------------------------------- model_name / model_version

def test_top_level_model_name_and_version(server):
    """KServe's InferRequest always sends model_name (and model_version
    when it has one): accepted when they name the URL's model."""
    plain = infer(server, "bow", seeded("bow"))
    assert plain.status == 200, plain
    for extra in ({"model_name": "bow"}, {"model_name": "bow", "model_version": "1"},
                  {"model_version": "1"}):
        r = infer(server, "bow", dict(seeded("bow"), **extra))
        assert r.status == 200 and r.body == plain.body, (extra, r)
    r = server.post("/v2/models/bow/versions/1/infer", dict(seeded("bow"), model_name="bow"))
    assert r.status == 200 and r.body == plain.body, r


@pytest.mark.parametrize("extra,text", [
    ({"model_name": "attention"}, 'model_mismatch at model_name: model_name is "attention" but this '
                                  "request was sent to model bow version 1 (the URL)"),
    ({"model_name": "Bow"}, 'model_mismatch at model_name: model_name is "Bow"'),
    ({"model_name": "bow "}, "model_mismatch at model_name"),
    ({"model_version": "2"}, 'model_mismatch at model_version: model_version is "2"'),
    ({"model_name": 1}, "wrong_type at model_name: model_name must be a string, not integer"),
    ({"model_version": 1}, "wrong_type at model_version: model_version must be a string, not integer"),
])
def test_model_name_mismatch(server, extra, text):
    msg = v2_error(infer(server, "bow", dict(seeded("bow"), **extra)), 400)
    assert text in msg, msg


# ---------------------------------------------------------------- model configuration

BOW_CONFIG = {
    "name": "bow", "platform": "attnd", "backend": "attnd",
    "version_policy": {"latest": {"num_versions": 1}}, "max_batch_size": 0,
    "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [-1, -1, -1], "format": "FORMAT_NONE",
               "is_shape_tensor": False, "allow_ragged_batch": False, "optional": False}],
    "output": [dict(o, label_filename="", is_shape_tensor=False) for o in (
        {"name": "out", "data_type": "TYPE_FP32", "dims": [-1, -1, -1]},
        {"name": "weights", "data_type": "TYPE_FP32", "dims": [-1, -1]},
        {"name": "x", "data_type": "TYPE_FP32", "dims": [-1, -1, -1]},
        {"name": "max_abs_diff", "data_type": "TYPE_FP32", "dims": [3]},
        {"name": "allclose", "data_type": "TYPE_BOOL", "dims": [1]})],
    "instance_group": [{"name": "bow", "kind": "KIND_CPU", "count": 1}],
    "model_transaction_policy": {"decoupled": False},
}


def test_model_config_bow(server):
    """Triton's JSON form of model_config.proto, as tritonclient's
    get_model_config returns it."""
    for path in ("/v2/models/bow/config", "/v2/models/bow/versions/1/config"):
        r = server.request("GET", path)
        assert r.status == 200 and r.media_type() == "application/json", r
        assert r.json() == BOW_CONFIG
        assert list(r.json()) == list(BOW_CONFIG)       # Triton's field order


@pytest.mark.parametrize("model", sorted(TENSORS))
def test_model_config_follows_metadata(server, model):
    """Every model's configuration says what its metadata says: the same
    tensors in the same order, TYPE_<datatype>, dims of the largest rank
    (-1 where free), and optional exactly for the inputs a request may
    leave out without a seed (context and mask)."""
    meta = server.request("GET", "/v2/models/" + model).json()
    cfg = server.request("GET", "/v2/models/%s/config" % model).json()
    assert (cfg["name"], cfg["max_batch_size"]) == (model, 0)
    for key, tensors in (("input", meta["inputs"]), ("output", meta["outputs"])):
        assert [t["name"] for t in cfg[key]] == [t["name"] for t in tensors]
        for c, t in zip(cfg[key], tensors):
            assert c["data_type"] == "TYPE_" + t["datatype"] and c["dims"] == t["shape"], (c, t)
    assert [t["name"] for t in cfg["input"] if t["optional"]] == \
        [n for n in TENSORS[model] if n in ("context", "mask")]


def test_model_config_of_every_model(server):
    """Block, GPT and the --models models too: INT64 idx, BYTES text as
    Triton's TYPE_STRING; each configuration says what its metadata says."""
    for model in model_names(server):
        meta = server.request("GET", "/v2/models/" + model).json()
        cfg = server.request("GET", "/v2/models/%s/config" % model).json()
        assert cfg["name"] == model and cfg["max_batch_size"] == 0
        for key, tensors in (("input", meta["inputs"]), ("output", meta["outputs"])):
            assert [t["name"] for t in cfg[key]] == [t["name"] for t in tensors], model
            for c, t in zip(cfg[key], tensors):
                want = "TYPE_STRING" if t["datatype"] == "BYTES" else "TYPE_" + t["datatype"]
                assert c["data_type"] == want and c["dims"] == t["shape"], (model, c, t)


def test_model_config_errors(server):
    for path, text in (("/v2/models/nope/config", 'not_found: unknown model "nope"'),
                       ("/v2/models/bow/versions/2/config", 'not_found: model bow has no version "2"')):
        assert text in v2_error(server.request("GET", path), 404)
    assert "method_not_allowed" in v2_error(server.request("POST", "/v2/models/bow/config", "{}"), 405)


def test_server_metadata_extensions(server):
    """GET /v2 lists exactly the extensions attnd implements: each one's
    route answers."""
    ext = server.request("GET", "/v2").json()["extensions"]
    assert ext == ["binary_tensor_data", "parameters", "model_configuration", "statistics",
                   "model_repository"]
    assert server.request("GET", "/v2/models/bow/config").status == 200
    assert server.request("GET", "/v2/models/stats").status == 200
    assert server.request("POST", "/v2/repository/index").status == 200


# ---------------------------------------------------------------- statistics

def stat_keys():
    return ["name", "version", "last_inference", "inference_count", "execution_count",
            "inference_stats", "response_stats", "batch_stats", "memory_usage"]


DURATIONS = ["success", "fail", "queue", "compute_input", "compute_infer", "compute_output",
             "cache_hit", "cache_miss"]


def test_statistics(tmp_path):
    """Triton's statistics extension on a fresh server: zeros, then native
    and v2 requests counted alike (successes and failures), each
    success's time split into compute_input + compute_infer +
    compute_output exactly, last_inference in ms since the epoch."""
    srv = AttndServer(tmp_path, name="v2stats")
    try:
        r = srv.request("GET", "/v2/models/stats")
        assert r.status == 200 and r.media_type() == "application/json", r
        stats = r.json()["model_stats"]
        assert [s["name"] for s in stats] == model_names(srv)
        for s in stats:
            assert list(s) == stat_keys(), s
            assert list(s["inference_stats"]) == DURATIONS
            assert s == dict(s, version="1", last_inference=0, inference_count=0, execution_count=0,
                             inference_stats={d: {"count": 0, "ns": 0} for d in DURATIONS},
                             response_stats={}, batch_stats=[], memory_usage=[])
        t0 = int(time.time() * 1000) - 1000     # the server's coarse clock may lag a tick
        assert srv.post("/bow", {"x": [[[1.0, 2.0]]]}).status == 200
        assert srv.post("/bow", {"seed": 1, "shape": [1, 2, 2]}).status == 200
        assert srv.post("/v2/models/bow/infer", seeded("bow")).status == 200
        assert srv.post("/v2/models/bow/versions/1/infer", {"inputs": []}).status == 400
        assert srv.post("/bow", {"x": [[1.0]]}).status == 422
        t1 = int(time.time() * 1000) + 1000
        for path in ("/v2/models/bow/stats", "/v2/models/bow/versions/1/stats"):
            r = srv.request("GET", path)
            assert r.status == 200, r
            (s,) = r.json()["model_stats"]
            st = s["inference_stats"]
            assert (s["name"], s["inference_count"], s["execution_count"]) == ("bow", 3, 3), s
            assert t0 <= s["last_inference"] <= t1, (t0, s["last_inference"], t1)
            assert [st[d]["count"] for d in DURATIONS] == [3, 2, 3, 3, 3, 3, 0, 0], st
            assert st["queue"]["ns"] == 0 and st["fail"]["ns"] > 0
            assert st["success"]["ns"] == sum(st[d]["ns"] for d in
                                              ("compute_input", "compute_infer", "compute_output")), st
            assert all(st[d]["ns"] > 0 for d in ("compute_input", "compute_infer", "compute_output"))
            assert s["batch_stats"] == [{"batch_size": 1, **{d: st[d] for d in
                                         ("compute_input", "compute_infer", "compute_output")}}]
        others = srv.request("GET", "/v2/models/stats").json()["model_stats"][1:]
        assert all(s["inference_count"] == 0 and s["last_inference"] == 0 for s in others), others
        for path, text in (("/v2/models/nope/stats", 'not_found: unknown model "nope"'),
                           ("/v2/models/bow/versions/7/stats", 'not_found: model bow has no version "7"')):
            assert text in v2_error(srv.request("GET", path), 404)
        assert "method_not_allowed" in v2_error(srv.request("POST", "/v2/models/stats", "{}"), 405)
    finally:
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(10) == 0


# ---------------------------------------------------------------- model repository

BUILTIN = ["bow", "attention", "multihead", "block", "gpt"]


def model_names(server):
    """The built-in models, then those --models loaded (GET /models)."""
    return BUILTIN + [m["name"] for m in server.request("GET", "/models").json()["models"]]


@pytest.mark.parametrize("body,headers", [
    (None, {}),                                    # tritonclient: no body, no Content-Type
    (b"", {"Content-Type": "application/json"}),
    (b"{}", {"Content-Type": "application/json"}),
    (b'{"ready": true}', {"Content-Type": "application/json"}),
    (b'{"ready": false}', {}),
])
def test_repository_index(server, body, headers):
    r = server.request("POST", "/v2/repository/index", body, headers=headers, content_type=None)
    assert r.status == 200 and r.media_type() == "application/json", r
    assert r.json() == [{"name": m, "version": "1", "state": "READY"} for m in model_names(server)]
    assert "shakespeare" in model_names(server)     # the session server loads models/
    assert list(r.json()[0]) == ["name", "version", "state"]


@pytest.mark.parametrize("body,status,text", [
    (b'{"ready": 1}', 400, "wrong_type at ready: ready must be true or false"),
    (b'{"ready": true, "x": 1}', 400, "unknown_field at x: a repository index request has one field, ready"),
    (b"[]", 400, "wrong_type: the request body must be a JSON object, not array"),
    (b"{", 400, "invalid_json"),
])
def test_repository_index_errors(server, body, status, text):
    assert text in v2_error(server.request("POST", "/v2/repository/index", body), status)


def test_repository_load_unload_refused(server):
    """Built-in models: load and unload are a clear v2 error, not a 404."""
    for m in TENSORS:
        for action, says in (("load", "there is no repository to load it from"),
                             ("unload", "it cannot be unloaded")):
            for body in (None, json.dumps({"parameters": {}})):
                r = server.request("POST", "/v2/repository/models/%s/%s" % (m, action), body,
                                   content_type=None)
                msg = v2_error(r, 400)
                assert msg == ("not_supported: model %s is built into attnd and always loaded: %s "
                               "(POST /v2/repository/index lists the models, all READY)" % (m, says)), msg
    msg = v2_error(server.request("POST", "/v2/repository/models/shakespeare/unload"), 400)
    assert msg == ("not_supported: model shakespeare was loaded from --models at start-up and stays "
                   "loaded while the server runs: it cannot be unloaded (POST /v2/repository/index "
                   "lists the models, all READY)"), msg
    assert 'not_found: unknown model "nope"' in \
        v2_error(server.request("POST", "/v2/repository/models/nope/load", "{}"), 404)
    assert "method_not_allowed" in v2_error(server.request("GET", "/v2/repository/index"), 405)
    # a model still answers after an unload request
    assert server.post("/v2/models/bow/infer", seeded("bow")).status == 200

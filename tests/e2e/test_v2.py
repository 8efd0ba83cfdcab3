"""The KServe / Triton v2 inference protocol (/v2/...).

Every PyTorch fixture of /bow, /attention and /multihead is sent again as a
v2 infer request (its tensors as inputs with a flat, and again a nested,
"data"; its other fields as parameters; its "return" as outputs): the
outputs must match the fixture within the suite's tolerance, and hold
exactly the numbers (the same text) of the native endpoint's answer to the
same request.  Then health, metadata, readiness while draining, errors in
the protocol's {"error": "..."} form, CORS and metrics.
"""

import json
import re
import signal
import struct
import time

import pytest
import yaml

from attnd_e2e import REPO, AttndServer, compare, fixture_files, load_fixture, shape

MODELS = {"/bow": "bow", "/attention": "attention", "/multihead": "multihead"}
TENSORS = {"bow": ["x"],
           "attention": ["x", "wq", "wk", "wv", "context", "mask"],
           "multihead": ["x", "wq", "wk", "wv", "wo", "bo", "context", "mask"]}
FIXTURES = [p for p in fixture_files() if "/" + p.parent.name in MODELS]
# GET /v2's "extensions": exactly what attnd implements, as Triton names them
V2_EXTENSIONS = ["binary_tensor_data", "parameters", "model_configuration", "statistics",
                 "model_repository"]


def flat(v):
    if isinstance(v, list):
        return [y for x in v for y in flat(x)]
    return [v]


def native_tensors(value):
    """A native answer's value as (shape, flat data), as v2 writes it."""
    if isinstance(value, dict):         # bow's max_abs_diff
        return [len(value)], list(value.values())
    if isinstance(value, bool) or value in ("true", "false"):   # bow's allclose
        return [1], [value]
    return shape(value), flat(value)


def to_v2(fx, nested=False):
    model = MODELS[fx["endpoint"]]
    inputs, params, body = [], {}, {"id": fx["name"]}
    for k, v in fx["request"].items():
        if k in TENSORS[model]:
            dt = "BOOL" if k == "mask" and isinstance(flat(v)[0], bool) else "FP32"
            inputs.append({"name": k, "shape": shape(v), "datatype": dt,
                           "data": v if nested else flat(v)})
        elif k == "return":
            body["outputs"] = [{"name": n} for n in v]
        else:
            params[k] = v
    body["inputs"] = inputs
    if params:
        body["parameters"] = params
    return model, body


def to_binary(body):
    """A v2 request with every input's data moved after the JSON, as
    tritonclient sends it (with the Inference-Header-Content-Length header)."""
    body = json.loads(json.dumps(body))
    tail = b""
    for t in body["inputs"]:
        data = flat(t.pop("data"))
        if t["datatype"] == "BOOL":
            raw_ = bytes(int(v) for v in data)
        else:
            # null in an FP32 mask is -inf ("may not attend")
            raw_ = struct.pack("<%df" % len(data), *(float("-inf") if v is None else v for v in data))
        t["parameters"] = {"binary_data_size": len(raw_)}
        tail += raw_
    head = json.dumps(body).encode()
    return head + tail, {"Inference-Header-Content-Length": str(len(head))}


def raw(r):
    """The body with every number kept as its text."""
    return json.loads(r.body.decode(), parse_float=str, parse_int=str)


def binary_outputs(r):
    """A response with binary outputs (Triton's binary tensor data) as (its
    JSON, {name: values}): each binary output's binary_data_size bytes, in
    output order after the JSON, as float32 (FP32) or booleans (BOOL)."""
    assert r.status == 200 and r.media_type() == "application/octet-stream", r
    assert "Inference-Header-Content-Length" in r.header("Access-Control-Expose-Headers").split(", "), r
    n = int(r.header("Inference-Header-Content-Length"))
    head = json.loads(r.body[:n].decode())
    tail, values = r.body[n:], {}
    for o in head["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size")
        if size is None:
            continue
        assert "data" not in o, o
        chunk, tail = tail[:size], tail[size:]
        assert len(chunk) == size, (o, len(chunk))
        if o["datatype"] == "BOOL":
            assert set(chunk) <= {0, 1}, chunk
            values[o["name"]] = [bool(b) for b in chunk]
        else:
            values[o["name"]] = list(struct.unpack("<%df" % (size // 4), chunk))
    assert tail == b"", "%d bytes after the outputs' binary data" % len(tail)
    return head, values


def same_float32(binary, text):
    """binary (float32 values) holds exactly the numbers of JSON data, read
    as text (raw: json would read -0 as 0), -inf where the data has null."""
    def bits(v):
        return struct.pack("<f", float("-inf") if v is None else float(v))
    return [bits(v) for v in binary] == [bits(v) for v in text]


def v2_error(r, status):
    assert r.status == status, r
    assert r.media_type() == "application/json", r
    body = r.json()
    assert list(body) == ["error"] and isinstance(body["error"], str), r
    return body["error"]


@pytest.mark.parametrize("path", FIXTURES, ids=["%s/%s" % (p.parent.name, p.stem) for p in FIXTURES])
def test_fixture_round_trip(server, path):
    fx = load_fixture(path)
    model, body = to_v2(fx)
    r = server.post("/v2/models/%s/infer" % model, body)
    assert r.status == 200, r
    got = r.json()
    assert list(got) == ["model_name", "model_version", "id", "outputs"], got.keys()
    assert (got["model_name"], got["model_version"], got["id"]) == (model, "1", fx["name"])
    expect = {k: v for k, v in fx["expect"].items() if not isinstance(v, str)}     # bow's method
    names = [o["name"] for o in got["outputs"]]
    if model == "bow":     # the fixtures leave out max_abs_diff (summation order)
        assert set(expect) <= set(names) and set(names) - set(expect) <= {"max_abs_diff"}, names
    else:
        assert names == list(expect), names
    for o in got["outputs"]:
        assert list(o) == ["name", "shape", "datatype", "data"], o
        if o["name"] not in expect:
            continue
        want_shape, want = native_tensors(expect[o["name"]])
        assert o["shape"] == want_shape, (o["name"], o["shape"], want_shape)
        assert o["datatype"] == ("BOOL" if o["name"] == "allclose" else "FP32")
        problems = compare(want, o["data"], o["name"])
        assert not problems, problems

    # exactly the native answer's numbers, as text
    native = raw(server.post(fx["endpoint"], fx["request"]))
    for o in raw(r)["outputs"]:
        s, data = native_tensors(native[o["name"]])
        assert o["shape"] == [str(n) for n in s], o["name"]
        assert o["data"] == data, o["name"]

    # nested data, as Triton takes it: the same answer, byte for byte
    _, nested = to_v2(fx, nested=True)
    assert server.post("/v2/models/%s/infer" % model, nested).body == r.body

    # binary tensor data (tritonclient's default): the same answer too
    body, headers = to_binary(to_v2(fx)[1])
    b = server.request("POST", "/v2/models/%s/infer" % model, body, headers=headers,
                       content_type="application/octet-stream")
    assert b.status == 200 and b.body == r.body, b

    # binary outputs (binary_data_output): every output's bytes after the
    # JSON, exactly the JSON answer's numbers (-inf where it has null), so
    # as close to PyTorch's
    _, bin_body = to_v2(fx)
    bin_body["parameters"] = dict(bin_body.get("parameters", {}), binary_data_output=True)
    head, values = binary_outputs(server.post("/v2/models/%s/infer" % model, bin_body))
    assert head == dict(got, outputs=[
        {"name": o["name"], "shape": o["shape"], "datatype": o["datatype"],
         "parameters": {"binary_data_size": len(o["data"]) * (1 if o["datatype"] == "BOOL" else 4)}}
        for o in got["outputs"]]), head
    for o, text in zip(got["outputs"], raw(r)["outputs"]):
        if o["datatype"] == "BOOL":
            assert values[o["name"]] == o["data"], o["name"]
            continue
        assert same_float32(values[o["name"]], text["data"]), o["name"]
        if o["name"] in expect:
            as_json = [None if v == float("-inf") else v for v in values[o["name"]]]
            problems = compare(native_tensors(expect[o["name"]])[1], as_json, o["name"])
            assert not problems, problems


def test_round_trip_covers_every_model():
    assert {p.parent.name for p in FIXTURES} == {"bow", "attention", "multihead"}


def test_versioned_urls_are_the_same_routes(server):
    fx = load_fixture(FIXTURES[0])
    model, body = to_v2(fx)
    a = server.post("/v2/models/%s/infer" % model, body)
    b = server.post("/v2/models/%s/versions/1/infer" % model, body)
    assert a.status == b.status == 200 and a.body == b.body
    for m in MODELS.values():
        assert server.request("GET", "/v2/models/%s/versions/1" % m).body == \
            server.request("GET", "/v2/models/%s" % m).body
        assert server.request("GET", "/v2/models/%s/versions/1/ready" % m).status == 200


def test_masked_scores_are_null(server):
    body = {"inputs": [{"name": "x", "shape": [1, 2, 2], "datatype": "FP32", "data": [1, 0, 0, 1]},
                       {"name": "wq", "shape": [1, 2], "datatype": "FP32", "data": [1, 1]},
                       {"name": "wk", "shape": [1, 2], "datatype": "FP32", "data": [1, 1]},
                       {"name": "wv", "shape": [1, 2], "datatype": "FP32", "data": [1, 1]}],
            "outputs": [{"name": "scores"}]}
    r = server.post("/v2/models/attention/infer", body)
    assert r.status == 200, r
    assert r.json()["outputs"] == [{"name": "scores", "shape": [1, 2, 2], "datatype": "FP32",
                                    "data": [1, None, 1, 1]}]
    assert "id" not in r.json()


def test_id_is_echoed_escaped(server):
    body = {"id": "a \"quoted\" id \\ \u00e9", "inputs": [],
            "parameters": {"seed": 1, "shape": [1, 2, 2]}, "outputs": [{"name": "out"}]}
    r = server.post("/v2/models/bow/infer", body)
    assert r.status == 200 and r.json()["id"] == body["id"], r


def test_binary_outputs(server):
    """Triton's binary tensor data for outputs: an output's binary_data, or
    else the request's binary_data_output, sends its float32 after the JSON
    (Content-Type application/octet-stream, Inference-Header-Content-Length
    the JSON's length), in output order; masked scores keep -inf's bits."""
    fx = load_fixture(REPO / "tests/fixtures/attention/mask_bool_is_causal_b2_t5_c4_hs3.json")
    model, body = to_v2(fx)
    assert [o["name"] for o in body["outputs"]] == ["scores", "weights", "out"]
    plain = server.post("/v2/models/attention/infer", body)
    assert plain.status == 200 and plain.media_type() == "application/json", plain
    assert plain.header("Inference-Header-Content-Length") is None

    def ask(params, per_output):
        b = json.loads(json.dumps(body))
        b["parameters"] = dict(b.get("parameters", {}), **params)
        for o, p in zip(b["outputs"], per_output):
            if p is not None:
                o["parameters"] = {"binary_data": p}
        return server.post("/v2/models/attention/infer", b)

    cases = [({"binary_data_output": True}, [None, False, None], ["scores", "out"]),
             ({}, [True, None, None], ["scores"]),
             ({"binary_data_output": False}, [None, None, True], ["out"])]
    for params, per_output, binary in cases:
        r = ask(params, per_output)
        head, values = binary_outputs(r)
        assert list(values) == binary, (params, per_output, list(values))
        assert len(r.body) == int(r.header("Content-Length"))
        for o, p, text in zip(head["outputs"], plain.json()["outputs"], raw(plain)["outputs"]):
            if o["name"] not in values:
                assert o == p, o
                continue
            assert o == {"name": p["name"], "shape": p["shape"], "datatype": "FP32",
                         "parameters": {"binary_data_size": 4 * len(p["data"])}}, o
            assert same_float32(values[o["name"]], text["data"]), o["name"]
            got = [None if v == float("-inf") else v for v in values[o["name"]]]
            problems = compare(flat(fx["expect"][o["name"]]), got, o["name"])
            assert not problems, problems
    # masked scores: exactly -inf's bits
    head, values = binary_outputs(ask({"binary_data_output": True}, [None, None, None]))
    masked = [v for v, e in zip(values["scores"], flat(fx["expect"]["scores"])) if e is None]
    assert masked and {struct.pack("<f", v) for v in masked} == {b"\x00\x00\x80\xff"}
    # all JSON (binary_data false each, as tritonclient may ask): the plain answer
    r = ask({"binary_data_output": True}, [False, False, False])
    assert r.media_type() == "application/json" and r.body == plain.body, r
    assert r.header("Inference-Header-Content-Length") is None


# ---------------------------------------------------------------- health and metadata

def test_health_and_server_metadata(server):
    # a status as the protocol says, and a body as KServe's SDK reads it
    for path, body in (("/v2/health/live", {"live": True}), ("/v2/health/ready", {"ready": True}),
                       ("/v2/models/bow/ready", {"name": "bow", "ready": True}),
                       ("/v2/models/attention/ready", {"name": "attention", "ready": True}),
                       ("/v2/models/multihead/versions/1/ready", {"name": "multihead", "ready": True})):
        r = server.request("GET", path)
        assert r.status == 200 and r.media_type() == "application/json" and r.json() == body, (path, r)
        assert r.header("Access-Control-Allow-Origin") == "*"
        h = server.request("HEAD", path)
        assert (h.status, h.body, h.header("Content-Length")) == (200, b"", str(len(r.body))), (path, h)
    r = server.request("GET", "/v2")
    version = yaml.safe_load((REPO / "openapi.yaml").read_text())["info"]["version"]
    assert r.status == 200 and r.media_type() == "application/json"
    assert r.json() == {"name": "attnd", "version": version, "extensions": V2_EXTENSIONS}


def metadata_forms(t):
    """Every (datatype, rank) a metadata tensor says it takes: its datatype
    and rank, or those its parameters list (a metadata tensor has one of
    each; attnd's parameters name the others)."""
    p = t.get("parameters", {})
    assert set(p) <= {"datatypes", "ranks"} and all(isinstance(v, str) for v in p.values()), t
    datatypes = p["datatypes"].split(",") if "datatypes" in p else [t["datatype"]]
    ranks = [int(r) for r in p["ranks"].split(",")] if "ranks" in p else [len(t["shape"])]
    assert t["datatype"] == datatypes[0] and len(t["shape"]) == max(ranks), t
    return [(d, r) for d in datatypes for r in ranks]


def seeded(model, **extra):
    params = {"seed": 0, "shape": [1, 2, 4]}
    if model == "attention":
        params["head_size"] = 2
    if model == "multihead":
        params.update(num_heads=2, head_size=2)
    params.update(extra)
    return {"inputs": [], "parameters": params}


@pytest.mark.parametrize("model", sorted(TENSORS))
def test_model_metadata(server, model):
    r = server.request("GET", "/v2/models/" + model)
    assert r.status == 200 and r.media_type() == "application/json", r
    m = r.json()
    assert list(m) == ["name", "versions", "platform", "inputs", "outputs"]
    assert (m["name"], m["versions"], m["platform"]) == (model, ["1"], "attnd")
    assert [t["name"] for t in m["inputs"]] == TENSORS[model]
    for t in m["inputs"] + m["outputs"]:
        assert list(t) in (["name", "datatype", "shape"], ["name", "datatype", "shape", "parameters"]), t
        assert t["datatype"] in ("FP32", "BOOL")
        assert t["shape"] and all(d == -1 or d > 0 for d in t["shape"]), t
    # a mask is BOOL or FP32, T x S or B x T x S: the metadata says so
    if "mask" in TENSORS[model]:
        mask = next(t for t in m["inputs"] if t["name"] == "mask")
        assert sorted(metadata_forms(mask)) == [("BOOL", 2), ("BOOL", 3), ("FP32", 2), ("FP32", 3)]
        # each form is taken: a mask hiding nothing is no mask
        plain = server.post("/v2/models/%s/infer" % model, seeded(model, causal=False)).json()
        for datatype, rank in metadata_forms(mask):
            shape = [1, 2, 2][3 - rank:]
            body = seeded(model)
            body["inputs"] = [{"name": "mask", "shape": shape, "datatype": datatype,
                               "data": [True if datatype == "BOOL" else 0] * 4}]
            r = server.post("/v2/models/%s/infer" % model, body)
            assert r.status == 200, (datatype, rank, r)
            problems = compare(plain["outputs"], r.json()["outputs"], "outputs")
            assert not problems, (datatype, rank, problems)
    # every output the metadata lists can be asked for, in every rank it lists
    for t in m["outputs"]:
        produced = set()
        for extra in ({}, {"average_weights": True}) if model == "multihead" else ({},):
            body = seeded(model, **extra)
            if t["name"] in ("max_abs_diff", "allclose"):
                body["parameters"]["method"] = "all"
            body["outputs"] = [{"name": t["name"]}]
            r = server.post("/v2/models/%s/infer" % model, body)
            assert r.status == 200, (t, r)
            o = r.json()["outputs"][0]
            assert (o["datatype"], len(o["shape"])) in metadata_forms(t), (t, o)
            assert all(d == -1 or d == g for d, g in zip(t["shape"], o["shape"])), (t, o)
            produced.add((o["datatype"], len(o["shape"])))
        assert produced == set(metadata_forms(t)), (t, produced)


def test_ready_follows_draining(tmp_path):
    srv = AttndServer(tmp_path, extra_args=["--drain-delay", "3"], name="v2drain")
    try:
        assert srv.request("GET", "/v2/health/ready").status == 200
        srv.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2
        while srv.request("GET", "/readyz").status != 503:
            assert time.monotonic() < deadline, "no 503 after SIGTERM"
            time.sleep(0.02)
        for path, body in (("/v2/health/ready", {"ready": False}),
                           ("/v2/models/bow/ready", {"name": "bow", "ready": False}),
                           ("/v2/models/bow/versions/1/ready", {"name": "bow", "ready": False})):
            r = srv.request("GET", path)
            assert (r.status, r.json()) == (400, body), (path, r)     # the protocol: 4xx = false
        r = srv.request("GET", "/v2/health/live")
        assert (r.status, r.json()) == (200, {"live": True})
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(10) == 0
    finally:
        srv.stop()


# ---------------------------------------------------------------- errors

X = {"name": "x", "shape": [1, 2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}
W = [{"name": n, "shape": [2, 2], "datatype": "FP32", "data": [1, 0, 0, 1]} for n in ("wq", "wk", "wv")]

ERRORS = [
    ("bow", {}, 400, "missing_field at inputs: inputs is required"),
    ("bow", {"inputs": {}}, 400, "wrong_type at inputs: inputs must be an array, not object"),
    ("bow", {"inputs": [X], "extra": 1}, 400, 'unknown_field at extra: unknown field "extra"; an inference request has id, model_name, model_version'),
    ("bow", {"inputs": [X], "id": 7}, 400, "wrong_type at id: id must be a string, not integer"),
    ("bow", {"inputs": [dict(X, name="y")]}, 400,
     'unknown_input at inputs[0].name: model bow has no input "y"; its inputs: x'),
    ("bow", {"inputs": [X, X]}, 400, "duplicate_input at inputs[1].name: input x is given twice"),
    ("bow", {"inputs": [dict(X, datatype="INT32")]}, 400,
     'wrong_datatype at inputs[0].datatype: x must have datatype FP32, not "INT32"'),
    ("attention", {"inputs": [X, dict(W[0], name="mask", datatype="FP64")] + W[1:]}, 400,
     "mask must have datatype BOOL or FP32"),
    ("bow", {"inputs": [dict(X, data=[1, 2, 3])]}, 400,
     "shape_mismatch at inputs[0].data: x's shape [1, 2, 2] holds 4 elements but its data has 3"),
    ("bow", {"inputs": [dict(X, data=[1, 2, "3", 4])]}, 400,
     "wrong_type at inputs[0].data[2]: x's element 2 must be a number (datatype FP32), not string"),
    ("bow", {"inputs": [dict(X, shape=[1, -2, 2])]}, 400, "at inputs[0].shape[1]"),
    ("bow", {"inputs": [{"name": "x", "shape": [1]}]}, 400, 'missing_field at inputs[0].datatype'),
    ("bow", {"inputs": [dict(X, parameters={"binary_data_size": 16})]}, 400,
     "invalid_value at inputs[0].parameters.binary_data_size: x has both data and binary_data_size"),
    ("bow", {"inputs": [dict(X, data=[1, 2, 3, 1e39])]}, 400,
     "out_of_range at inputs[0].data[3] (x[0][1][1]): "),
    ("bow", {"inputs": [X], "parameters": {"method": "mean"}}, 400,
     'unknown_method at parameters.method: unknown method "mean"'),
    ("bow", {"inputs": [X], "parameters": {"causal": True}}, 400, "unknown_field at parameters.causal"),
    ("bow", {"inputs": [X], "parameters": {"x": 1}}, 400, "invalid_value at parameters.x: x is a tensor"),
    ("bow", {"inputs": [X], "parameters": {"return": ["out"]}}, 400, "invalid_value at parameters.return"),
    ("bow", {"inputs": [X], "parameters": {"format": "b64"}}, 400, "invalid_value at parameters.format: v2 outputs are flat JSON data or binary tensor data"),
    ("bow", {"inputs": [X], "outputs": [{"name": "q"}]}, 400,
     'unknown_output at outputs[0].name: model bow has no output "q"'),
    ("bow", {"inputs": [X], "outputs": []}, 400, "invalid_value at outputs: outputs is empty"),
    ("bow", {"inputs": [X], "outputs": [{"name": "out"}, {"name": "allclose"}]}, 400,
     "not_produced at outputs[1].name: model bow produced no allclose for this request; "
     "it produced: weights, out"),
    ("attention", {"inputs": [X, W[0], W[2]]}, 400, "missing_field at inputs (wk)"),
    ("attention", {"inputs": [X, W[0], dict(W[1], shape=[1, 4]), W[2]]}, 400,
     "shape_mismatch at inputs[2] (wk): wk is 1 x 4 but must be head_size x C"),
    ("attention", {"inputs": [X] + W, "parameters": {"causal": "yes"}}, 400,
     "wrong_type at parameters.causal"),
    ("attention", {"inputs": [X] + W, "outputs": [{"name": "out", "parameters": {"classification": 2}}]},
     400, "unknown_parameter at outputs[0].parameters.classification"),
    ("multihead", {"inputs": [X]}, 400, "missing_field at inputs (wq)"),
    ("attention", {"inputs": [], "parameters": {"seed": 1, "shape": [1, 2, 2], "head_size": 2.0}}, 400,
     "wrong_type at parameters.head_size: head_size must be an integer, not number"),
]


@pytest.mark.parametrize("model,body,status,text", ERRORS, ids=[e[3][:50] for e in ERRORS])
def test_errors(server, model, body, status, text):
    msg = v2_error(server.post("/v2/models/%s/infer" % model, body), status)
    assert text in msg, msg


def test_error_bodies_that_are_not_requests(server):
    r = server.request("POST", "/v2/models/bow/infer", '{"inputs": [')
    assert v2_error(r, 400).startswith("invalid_json: malformed JSON at line 1, column 12")
    assert v2_error(server.request("POST", "/v2/models/bow/infer", "[]"), 400) == \
        "wrong_type: the request body must be a JSON object, not array"


def test_limits_keep_their_status(small_server):
    body = {"inputs": [dict(X, shape=[1, 1, 101], data=[1] * 101)]}
    msg = v2_error(small_server.post("/v2/models/bow/infer", body), 413)
    assert msg.startswith("too_large at inputs[0].shape[2]: x's shape holds more than"), msg


def test_body_over_max_body_in_v2_form(small_server):
    """--max-body is checked by the HTTP layer before any handler runs; on a
    /v2 path its 413 is still in the protocol's form, elsewhere in attnd's."""
    body = b" " * 1001
    for path in ("/v2/models/bow/infer", "/v2/models/attention/versions/1/infer"):
        r = small_server.request("POST", path, body)
        assert v2_error(r, 413) == ("body_too_large: the request body is over this "
                                    "server's limit of 1000 bytes (--max-body)"), (path, r)
    r = small_server.request("POST", "/bow", body)
    assert r.status == 413 and r.json()["error"]["code"] == "body_too_large", r


def test_early_errors_in_v2_form(server):
    cases = [
        ("POST", "/v2/models/nope/infer", 404, 'not_found: unknown model "nope"; models: bow, attention, multihead'),
        ("GET", "/v2/models/bow/versions/2", 404, 'not_found: model bow has no version "2"; versions: 1'),
        ("GET", "/v2/models/bow/versions/1/nope", 404, "not_found: no route GET /v2/models/bow/versions/1/nope; v2 routes:"),
        ("GET", "/v2/repository", 404, "not_found: no route GET /v2/repository; v2 routes:"),
        ("GET", "/v2/models/bow/infer", 405, "method_not_allowed: GET is not allowed on /v2/models/bow/infer; allowed: POST, OPTIONS"),
        ("POST", "/v2/health/live", 405, "method_not_allowed: POST is not allowed on /v2/health/live"),
    ]
    for method, path, status, text in cases:
        r = server.request(method, path, "{}" if method == "POST" else None)
        msg = v2_error(r, status)
        assert msg.startswith(text), (path, msg)
        if status == 405:
            assert r.header("Allow") == ("POST, OPTIONS" if path.endswith("infer") else "GET, HEAD, OPTIONS")
    r = server.request("POST", "/v2/models/bow/infer", "{}", content_type="text/plain")
    assert v2_error(r, 415) == ("unsupported_media_type: Content-Type text/plain is not supported; "
                                "send the body as application/json (or application/octet-stream "
                                "with binary tensor data)")
    # octet-stream is binary tensor data's, on v2 infer alone
    assert server.request("POST", "/bow", "{}", content_type="application/octet-stream").status == 415
    # other paths keep attnd's own error form
    assert server.request("GET", "/v3").json()["error"]["code"] == "not_found"


def test_cors_preflight(server):
    for path, allow in (("/v2/models/attention/infer", "POST, OPTIONS"),
                        ("/v2/models/attention/versions/1/infer", "POST, OPTIONS"),
                        ("/v2/models/attention", "GET, HEAD, OPTIONS"),
                        ("/v2/health/ready", "GET, HEAD, OPTIONS"), ("/v2", "GET, HEAD, OPTIONS")):
        # what a browser asks before a page's binary tensor data request
        r = server.request("OPTIONS", path, headers={
            "Origin": "http://example.com", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,inference-header-content-length"})
        assert r.status == 204 and r.body == b"", (path, r)
        assert r.header("Access-Control-Allow-Origin") == "*"
        assert r.header("Access-Control-Allow-Methods") == allow
        allowed = {h.strip().lower() for h in r.header("Access-Control-Allow-Headers").split(",")}
        assert allowed == {"content-type", "inference-header-content-length", "x-request-id",
                           "traceparent", "content-encoding"}, r


def test_metrics_count_v2_routes(tmp_path):
    srv = AttndServer(tmp_path, name="v2metrics")
    try:
        body = {"inputs": [X]}
        assert srv.post("/v2/models/bow/infer", body).status == 200
        assert srv.post("/v2/models/bow/versions/1/infer", body).status == 200
        assert srv.post("/v2/models/bow/infer", {}).status == 400
        assert srv.request("GET", "/v2/models/nope").status == 404
        time.sleep(0.2)
        text = srv.request("GET", "/metrics").body.decode()

        def count(route, status):
            m = re.search(r'^attnd_requests_total\{route="%s",method="POST",status="%d"\} (\d+)$'
                          % (re.escape(route), status), text, re.M)
            return int(m.group(1)) if m else 0
        assert count("/v2/models/bow/infer", 200) == 2
        assert count("/v2/models/bow/infer", 400) == 1
        assert 'route="/v2/models/bow/versions/1/infer"' not in text
        assert re.search(r'^attnd_requests_total\{route="other",method="GET",status="404"\} 1$', text, re.M)
    finally:
        srv.stop()


def test_binary_tensor_data(server):
    """Inputs as raw little-endian float32 after the JSON, mixed with JSON
    data, any Content-Type of JSON or octet-stream; errors name the input."""
    x = [1.5, -2.25, 3.0, 0.1]
    head = {"inputs": [{"name": "x", "shape": [1, 2, 2], "datatype": "FP32",
                        "parameters": {"binary_data_size": 16}}], "outputs": [{"name": "out"}]}
    body = json.dumps(head).encode() + struct.pack("<4f", *x)
    want = server.post("/v2/models/bow/infer", dict(head, inputs=[
        {"name": "x", "shape": [1, 2, 2], "datatype": "FP32",
         "data": [struct.unpack("<f", struct.pack("<f", v))[0] for v in x]}]))
    assert want.status == 200
    for ct in ("application/octet-stream", "application/json", None):
        r = server.request("POST", "/v2/models/bow/infer", body, content_type=ct)
        assert r.status == 200 and r.body == want.body, (ct, r)

    # attention: wq and wv binary, x and wk as JSON, in any order
    w = [1, 0, 0, 1]
    mixed = {"inputs": [{"name": "wq", "shape": [2, 2], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
                        dict(X),
                        {"name": "wv", "shape": [2, 2], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
                        {"name": "wk", "shape": [2, 2], "datatype": "FP32", "data": w}]}
    r = server.request("POST", "/v2/models/attention/infer",
                       json.dumps(mixed).encode() + struct.pack("<8f", *(w + w)))
    plain = server.post("/v2/models/attention/infer", {"inputs": [X] + W})
    assert r.status == 200 and r.body == plain.body, r

    def err(tail, head_=head, status=400):
        return v2_error(server.request("POST", "/v2/models/bow/infer", json.dumps(head_).encode() + tail), status)
    assert err(struct.pack("<3f", *x[:3])).startswith(
        "invalid_value at inputs[0].parameters.binary_data_size: the binary data after the JSON is 12 bytes")
    assert err(struct.pack("<4f", *x) + b"\0").startswith(
        "invalid_value at inputs: 17 bytes follow the JSON request but the inputs' binary_data_size add up to 16")
    assert err(struct.pack("<4f", 1, 2, float("inf"), 4)).startswith(
        "not_a_number at inputs[0].data[2]: x's element 2 in the binary data is not a finite float32")
    bad = json.loads(json.dumps(head))
    bad["inputs"][0]["parameters"]["binary_data_size"] = 12
    assert err(struct.pack("<3f", *x[:3]), bad).startswith(
        "shape_mismatch at inputs[0].parameters.binary_data_size: x's shape holds 4 elements, 16 bytes as FP32")
    assert err(b"zz", {"inputs": [X]}) == (
        "invalid_json: 2 bytes follow the JSON object and no input has parameters.binary_data_size to take them")
    # an FP32 mask hides a key with -inf in binary data, null in JSON
    xw = [X] + W
    T = X["shape"][1]
    m = [0.0 if s <= t else float("-inf") for t in range(T) for s in range(T)]
    binm = {"inputs": xw + [{"name": "mask", "shape": [T, T], "datatype": "FP32",
                             "parameters": {"binary_data_size": 4 * T * T}}]}
    r = server.request("POST", "/v2/models/attention/infer",
                       json.dumps(binm).encode() + struct.pack("<%df" % (T * T), *m))
    jsonm = server.post("/v2/models/attention/infer", {"inputs": xw + [
        {"name": "mask", "shape": [T, T], "datatype": "FP32", "data": [None if v else 0 for v in m]}]})
    causal = server.post("/v2/models/attention/infer", {"inputs": xw, "parameters": {"causal": True}})
    assert r.status == 200 and r.body == jsonm.body == causal.body, (r, jsonm, causal)
    # a BOOL mask is one byte 0/1 each
    mask = {"inputs": [{"name": "mask", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": 2}}]}
    assert v2_error(server.request("POST", "/v2/models/attention/infer",
                                   json.dumps(mask).encode() + b"\x01\x02"), 400).startswith(
        "wrong_type at inputs[0].data[1]: mask's element 1 in the binary data is a byte other than 0 or 1")


def test_inference_header_content_length(server):
    """As in Triton, Inference-Header-Content-Length (when sent) is the
    length of the JSON at the body's start; the binary data is the rest,
    whatever the JSON's own text would suggest."""
    x = [1.5, -2.25, 3.0, 0.1]
    head = {"inputs": [{"name": "x", "shape": [1, 2, 2], "datatype": "FP32",
                        "parameters": {"binary_data_size": 16}}], "outputs": [{"name": "out"}]}
    text, data = json.dumps(head).encode(), struct.pack("<4f", *x)
    want = server.request("POST", "/v2/models/bow/infer", text + data)
    assert want.status == 200, want

    def infer(body, length, model="bow"):
        return server.request("POST", "/v2/models/%s/infer" % model, body,
                              headers={"Inference-Header-Content-Length": length},
                              content_type="application/octet-stream")
    assert infer(text + data, str(len(text))).body == want.body
    # the JSON part may end in whitespace: the header, not the '}', ends it
    r = infer(text + b" \n" + data, str(len(text) + 2))
    assert r.status == 200 and r.body == want.body, r
    # "0" (Triton's default): all of the body is JSON
    plain = {"inputs": [X], "outputs": [{"name": "out"}]}
    r = infer(json.dumps(plain).encode() + b" ", "0")
    assert r.status == 200 and r.body == server.post("/v2/models/bow/infer", plain).body, r
    # bytes after the told length are binary data, whitespace included
    assert v2_error(infer(json.dumps(plain).encode() + b" ", str(len(json.dumps(plain)))), 400) == (
        "invalid_json: 1 byte follow the JSON object and no input has parameters.binary_data_size to take them")
    # a length that cuts the JSON short: the JSON part is malformed
    assert v2_error(infer(text + data, str(len(text) - 1)), 400).startswith("invalid_json: ")
    # a length that ends inside the binary data: the JSON part has trailing bytes
    assert v2_error(infer(text + data, str(len(text) + 4)), 400).startswith("invalid_json: ")
    size = len(text) + len(data)
    assert v2_error(infer(text + data, str(size + 1)), 400) == (
        "invalid_value: Inference-Header-Content-Length is %d but the body has only %d bytes" % (size + 1, size))
    assert v2_error(infer(text + data, "9" * 30), 400) == (
        "invalid_value: Inference-Header-Content-Length is %s but the body has only %d bytes" % ("9" * 30, size))
    for bad in ("abc", "-1", "+5", "1e3", "12x", "0x10", "1.0"):
        assert v2_error(infer(text + data, bad), 400) == (
            "invalid_value: Inference-Header-Content-Length is \"%s\"; it must be the length in bytes "
            "of the JSON at the start of the body (a whole number)" % bad), bad
    # the native endpoints do not read it
    r = server.request("POST", "/bow", json.dumps({"x": [[[1.0]]]}),
                       headers={"Inference-Header-Content-Length": "abc"})
    assert r.status == 200, r

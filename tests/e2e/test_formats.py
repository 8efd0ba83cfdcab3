"""Tensor formats: nested, flat {"shape", "data"} and b64 {"shape", "dtype", "b64"}, in and out.

The flat and b64 requests are made here from the PyTorch fixtures' own numbers (b64 holds
float32(number), packed by struct); no number is typed by hand.
"""

import base64
import ctypes
import ctypes.util
import json
import struct

import pytest

from attnd_e2e import check_fixture_response, fixture_files, load_fixture

TENSORS = {"/bow": ("x",), "/attention": ("x", "wq", "wk", "wv", "context", "mask"),
           "/multihead": ("x", "wq", "wk", "wv", "wo", "bo", "context", "mask"), "/randn": ()}

_libc = ctypes.CDLL(ctypes.util.find_library("c"))
_libc.strtof.restype = ctypes.c_float
_libc.strtof.argtypes = (ctypes.c_char_p, ctypes.c_void_p)


def strtof_bits(text):
    """The float32 bits C's strtof reads from a number's text (exact: no trip through double)."""
    return struct.unpack("<I", struct.pack("<f", _libc.strtof(text.encode(), None)))[0]


NEG_INF_BITS = 0xFF800000


def dims(v):
    d = []
    while isinstance(v, list):
        d.append(len(v))
        if not v:
            break
        v = v[0]
    return d


def leaves(v):
    if isinstance(v, list):
        for x in v:
            yield from leaves(x)
    else:
        yield v


def as_flat(v):
    return {"shape": dims(v), "data": list(leaves(v))}


def as_b64(v):
    # a mask's booleans and nulls as the additive float32 they stand for:
    # true -> 0, false and null -> -inf
    vals = [0.0 if x is True else float("-inf") if x is False or x is None else x
            for x in leaves(v)]
    return {"shape": dims(v), "dtype": "float32",
            "b64": base64.b64encode(struct.pack("<%df" % len(vals), *vals)).decode()}


def b64_bits(obj):
    raw = base64.b64decode(obj["b64"], validate=True)
    assert len(raw) % 4 == 0
    return list(struct.unpack("<%dI" % (len(raw) // 4), raw))


def convert(request, endpoint, form):
    r = dict(request)
    for name in TENSORS[endpoint]:
        if isinstance(r.get(name), list):
            r[name] = form(r[name])
    return r


def text_tensors(body):
    """The response parsed with each number kept as its text (null stays None)."""
    return json.loads(body, parse_float=str, parse_int=str)


_FIXTURES = [pytest.param(p, id="%s/%s" % (p.parent.name, p.stem)) for p in fixture_files()]


@pytest.mark.parametrize("path", _FIXTURES)
def test_three_input_forms_identical(server, path):
    """Flat and b64 tensors give the nested request's response byte for byte."""
    fx = load_fixture(path)
    ep = fx["endpoint"]
    nested = server.post(ep, fx["request"])
    assert not check_fixture_response(fx, nested)
    for form in (as_flat, as_b64):
        req = convert(fx["request"], ep, form)
        r = server.post(ep, req)
        assert r.status == 200, r
        assert r.body == nested.body, (form.__name__, r.body[:300], nested.body[:300])


@pytest.mark.parametrize("path", _FIXTURES)
def test_output_formats_exact(server, path):
    """format flat prints the nested numbers' very texts; format b64 holds exactly the float32
    bits those texts read as (strtof), masked scores as -inf."""
    fx = load_fixture(path)
    ep = fx["endpoint"]
    nested = server.post(ep, fx["request"])
    assert nested.status == 200
    want = text_tensors(nested.body)
    flat = server.post(ep, dict(fx["request"], format="flat"))
    b64 = server.post(ep, dict(fx["request"], format="b64"))
    assert flat.status == 200 and b64.status == 200
    got_f, got_b = text_tensors(flat.body), text_tensors(b64.body)
    if ep == "/randn":
        pairs = [("data", want["data"], got_f, got_b)]
        assert list(got_f) == ["shape", "data"] and list(got_b) == ["shape", "dtype", "b64"]
    else:
        assert list(got_f) == list(want) and list(got_b) == list(want)
        pairs = []
        for k, v in want.items():
            if isinstance(v, list):
                pairs.append((k, v, got_f[k], got_b[k]))
            else:
                assert got_f[k] == v and got_b[k] == v, k
    assert pairs
    for k, v, f, b in pairs:
        # /randn's nested answer says its shape, which an empty tensor's
        # nesting cannot always tell ([0, 10**12] is [])
        shape = want["shape"] if ep == "/randn" else [str(d) for d in dims(v)]
        assert f["shape"] == shape and b["shape"] == shape, k
        texts = list(leaves(v))
        assert f["data"] == texts, k
        assert b["dtype"] == "float32"
        want_bits = [NEG_INF_BITS if t is None else strtof_bits(t) for t in texts]
        assert b64_bits(b) == want_bits, k
        # and the fixture check passes on the decoded numbers too
        if ep != "/randn":
            fx_vals = list(leaves(fx["expect"][k]))
            dec = struct.unpack("<%df" % len(want_bits), struct.pack("<%dI" % len(want_bits), *want_bits))
            for g, e in zip(dec, fx_vals):
                if e is None:
                    assert g == float("-inf")
                else:
                    assert abs(g - e) <= 1e-5 + 1e-5 * abs(e), (k, g, e)


def test_round_trip_attention(server):
    """The seeded lecture tensors returned as b64, sent back as b64 inputs, give the seeded
    response's weights and out, bit for bit."""
    seeded = {"seed": 1337, "shape": [4, 8, 32], "head_size": 16}
    inputs = server.post("/attention", dict(seeded, format="b64", **{"return": ["x", "wq", "wk", "wv"]}))
    assert inputs.status == 200, inputs
    tensors = inputs.json()
    ref = server.post("/attention", dict(seeded, format="b64"))
    back = server.post("/attention", dict(tensors, format="b64"))
    assert back.status == 200, back
    assert back.body == ref.body
    # and as nested output, the same bytes as the seeded nested request
    assert server.post("/attention", tensors).body == server.post("/attention", seeded).body


def test_round_trip_randn_to_bow(server):
    """/randn's b64 response is a tensor object as it stands: it is /bow's x, as torch.randn
    would be, and the nested /bow with the seed gives the same bytes."""
    t = server.post("/randn", {"seed": 42, "shape": [2, 5, 3], "format": "b64"})
    assert t.status == 200
    r = server.post("/bow", {"x": t.json()})
    seeded = server.post("/bow", {"seed": 42, "shape": [2, 5, 3]})
    assert r.status == 200
    # the seeded response shows x first; the rest is the same text
    s = seeded.json()
    s.pop("x")
    assert r.json() == s
    assert json.dumps(r.json()) == json.dumps(s)


def test_masked_scores_keep_neg_inf_in_b64(server):
    req = {"seed": 3, "shape": [1, 4, 8], "head_size": 4, "return": ["scores"]}
    nested = server.post("/attention", req).json()["scores"]
    b = server.post("/attention", dict(req, format="b64")).json()["scores"]
    f = server.post("/attention", dict(req, format="flat")).json()["scores"]
    bits = b64_bits(b)
    for i, v in enumerate(leaves(nested)):
        t, s = divmod(i % 16, 4)
        assert (v is None) == (s > t)
        assert (bits[i] == NEG_INF_BITS) == (s > t)
        assert f["data"][i] == v


def test_multihead_flat_in_b64_out_big_enough_for_threads(server):
    """A tensor large enough for the multi-threaded writers: flat and b64 agree with nested."""
    req = {"seed": 7, "shape": [2, 64, 32], "num_heads": 4, "head_size": 8,
           "return": ["x", "heads", "weights", "out"]}
    nested = server.post("/multihead", req)
    flat = server.post("/multihead", dict(req, format="flat"))
    assert nested.status == 200 and flat.status == 200
    want, got = text_tensors(nested.body), text_tensors(flat.body)
    for k in req["return"]:
        assert got[k]["data"] == list(leaves(want[k])), k
    # the x it generated, sent back flat, reproduces the response
    x = flat.json()["x"]
    again = server.post("/multihead", dict(req, x=x))
    assert again.body == nested.body


def test_errors_limits_small_server(small_server):
    """The element cap holds for tensor objects before anything is decoded (--max-elements 100)."""
    r = small_server.post("/bow", {"x": {"shape": [1, 11, 10], "dtype": "float32", "b64": "!!!!"}})
    assert r.status == 413 and r.json()["error"]["path"] == "x", r
    ok = small_server.post("/bow", {"x": {"shape": [1, 10, 10], "data": [0.5] * 100}})
    assert ok.status == 200, ok

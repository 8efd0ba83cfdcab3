#!/usr/bin/python3
"""gen_bodies.py OUTDIR -- write the benchmark request bodies.

Python stdlib only, fixed seeds, so every run sends the same bytes:

  small.json   POST /bow        B=4, T=8, C=2: the seed notebook's shape;
                                x[0] is the notebook's printed x[0], the other
                                rows are N(0,1) printed to 4 decimals as the
                                notebook prints them; method softmax (the
                                only one the peer implements).
  medium.json  POST /attention  B=4, T=8, C=32, hs=16, explicit weights.
  large.json   POST /attention  B=8, T=256, C=64, hs=64, explicit weights,
                                return weights and out (~3 MB in).

  large_flat.json, large_b64.json
               large.json's tensors as {"shape", "data"} and as {"shape",
                                "dtype": "float32", "b64"}, with "format"
                                "flat" / "b64" (README, "Tensor formats").

Tensor values are float32 values written the way torch's .tolist() writes
them (Python's repr of the double), x ~ N(0,1) and weights ~ U(-1/sqrt(C),
1/sqrt(C)) like nn.Linear's initialisation, so both servers parse the same
exact float32 numbers.
"""
import base64
import json
import math
import os
import random
import struct
import sys

# The seed notebook's printed x[0] (shared/seeds/000_*.txt), B,T,C = 4,8,2.
NOTEBOOK_X0 = [[1.1117, -1.1870], [-0.4048, -0.3101], [1.6475, 0.9239],
               [-1.4163, 1.3245], [-0.2045, -0.9434], [-1.5406, 1.1350],
               [1.4756, 1.0943], [-0.0473, -2.3244]]


def f32(v):
    """The float32 nearest v, as a Python float (exact)."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


def randn(rng, *shape):
    if len(shape) == 1:
        return [f32(rng.gauss(0.0, 1.0)) for _ in range(shape[0])]
    return [randn(rng, *shape[1:]) for _ in range(shape[0])]


def linear_weight(rng, hs, c):
    bound = 1.0 / math.sqrt(c)
    return [[f32(rng.uniform(-bound, bound)) for _ in range(c)]
            for _ in range(hs)]


def attention_body(seed, B, T, C, hs):
    rng = random.Random(seed)
    return {"x": randn(rng, B, T, C),
            "wq": linear_weight(rng, hs, C),
            "wk": linear_weight(rng, hs, C),
            "wv": linear_weight(rng, hs, C),
            "causal": True, "scale": True,
            "return": ["weights", "out"]}


def small_body():
    rng = random.Random(1337)
    x = [NOTEBOOK_X0] + [[[round(rng.gauss(0.0, 1.0), 4) for _ in range(2)]
                          for _ in range(8)] for _ in range(3)]
    return {"x": x, "method": "softmax"}


def dims(v):
    d = []
    while isinstance(v, list):
        d.append(len(v))
        v = v[0]
    return d


def flatten(v):
    return [y for x in v for y in flatten(x)] if isinstance(v, list) else [v]


def in_form(body, form):
    """body's tensors as flat or b64 objects, and the response asked in that form."""
    out = dict(body, format=form)
    for k in ("x", "wq", "wk", "wv"):
        vals = flatten(body[k])
        if form == "flat":
            out[k] = {"shape": dims(body[k]), "data": vals}
        else:
            raw = struct.pack("<%df" % len(vals), *vals)
            out[k] = {"shape": dims(body[k]), "dtype": "float32",
                      "b64": base64.b64encode(raw).decode()}
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/bench"
    os.makedirs(out, exist_ok=True)
    bodies = {
        "small.json": small_body(),
        "medium.json": attention_body(1001, 4, 8, 32, 16),
        "large.json": attention_body(1002, 8, 256, 64, 64),
    }
    bodies["large_flat.json"] = in_form(bodies["large.json"], "flat")
    bodies["large_b64.json"] = in_form(bodies["large.json"], "b64")
    for name, body in bodies.items():
        path = os.path.join(out, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(body, f, separators=(",", ":"))
        os.replace(tmp, path)
        print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()

"""Deterministic request generator for the differential runner (run.py).

generate(seed, n) returns n requests, each a Req(category, method, path,
headers, body).  The same seed gives the same bytes on every machine
(random.Random only, no hash ordering).  Requests are small except a few
"large" ones; errors are made by mutating valid requests, as JSON values
(a field removed, retyped, renamed, an element made ragged...) and as text
(truncated, a byte changed), plus hand-written families for base64,
content types, methods, paths, v2 binary framing and the server limits.

The limits assumed here are run.py's DEFAULT_FLAGS (LIMITS below); other
flags still work, the limit cases then just land elsewhere.
"""

import base64
import json
import math
import random
import struct
from collections import namedtuple

Req = namedtuple("Req", "category method path headers body")

# run.py starts both servers with these; the limit cases are sized on them
LIMITS = dict(max_body=4 << 20, max_elements=200000, max_total=1000000,
              max_batch=16, max_seq=256, max_head=128, max_depth=32)
DEFAULT_FLAGS = ["--max-body", str(LIMITS["max_body"]),
                 "--max-elements", str(LIMITS["max_elements"]),
                 "--max-total-elements", str(LIMITS["max_total"]),
                 "--max-batch", str(LIMITS["max_batch"]),
                 "--max-seq", str(LIMITS["max_seq"]),
                 "--max-head-size", str(LIMITS["max_head"]),
                 "--max-depth", str(LIMITS["max_depth"])]

JSON_CT = "application/json"
MODELS = ("bow", "attention", "multihead")


# ==== a JSON writer with raw number text and optional whitespace ====

class Raw:
    """A number written as this exact text."""
    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text


def dump(v, ws=False):
    out = []
    sep, colon = (", ", ": ") if ws else (",", ":")

    def w(v):
        if isinstance(v, Raw):
            out.append(v.text)
        elif v is None:
            out.append("null")
        elif v is True:
            out.append("true")
        elif v is False:
            out.append("false")
        elif isinstance(v, int):
            out.append(str(v))
        elif isinstance(v, float):
            out.append(json.dumps(v) if math.isfinite(v) else "1e999")
        elif isinstance(v, str):
            out.append(json.dumps(v, ensure_ascii=False))
        elif isinstance(v, list):
            out.append("[")
            for i, x in enumerate(v):
                if i:
                    out.append(sep)
                w(x)
            out.append("]")
        elif isinstance(v, dict):
            out.append("{")
            for i, (k, x) in enumerate(v.items()):
                if i:
                    out.append(sep)
                out.append(json.dumps(k, ensure_ascii=False))
                out.append(colon)
                w(x)
            out.append("}")
        else:
            raise TypeError(type(v))
    w(v)
    return "".join(out).encode("utf-8", "surrogatepass")


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def f32_bits(x):
    return struct.pack("<f", x)


class G:
    """All random choices go through one random.Random."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    # ---- numbers ----
    def value(self, scale=1.0):
        r = self.r
        k = r.random()
        if k < 0.55:
            v = r.gauss(0, scale)
        elif k < 0.7:
            v = float(r.randint(-4, 4))
        elif k < 0.8:
            v = r.uniform(-1, 1) * 10 ** r.randint(-8, 3)
        elif k < 0.85:
            v = r.choice([0.0, -0.0, 0.5, -1.0, 1e-7, 1e-30, 1.4e-45, 65504.0])
        else:
            v = r.uniform(-3, 3)
        return f32(v)

    def num_text(self, v):
        """Some text that reads back as float32 v."""
        r = self.r
        k = r.random()
        if v == int(v) and abs(v) < 1e15 and k < 0.5:
            return "-0" if (v == 0 and math.copysign(1, v) < 0) else str(int(v))
        if k < 0.4:
            return "%.9g" % v
        if k < 0.7:
            return repr(v)
        if k < 0.8:
            return "%.8e" % v
        if k < 0.9:
            return ("%.9E" % v).replace("E+", "E")
        return "%.12f" % v if abs(v) < 1e6 else "%.9g" % v

    def values(self, n, scale=1.0):
        return [self.value(scale) for _ in range(n)]

    # ---- tensors: (shape, flat float32 values) -> one of three forms ----
    def nest(self, shape, flat, leaf):
        if not shape:
            return leaf(flat[0])
        step = len(flat) // shape[0] if shape[0] else 0
        return [self.nest(shape[1:], flat[i * step:(i + 1) * step], leaf)
                for i in range(shape[0])]

    def tensor(self, shape, form=None, scale=1.0, flat=None):
        n = 1
        for d in shape:
            n *= d
        if flat is None:
            flat = self.values(n, scale)
        form = form or self.form()
        if form == "nested":
            return self.nest(shape, flat, lambda v: Raw(self.num_text(v)))
        if form == "flat":
            return {"shape": list(shape),
                    "data": [Raw(self.num_text(v)) for v in flat]}
        return {"shape": list(shape), "dtype": "float32",
                "b64": base64.b64encode(b"".join(map(f32_bits, flat))).decode()}

    def form(self):
        return self.r.choice(("nested", "nested", "flat", "b64"))

    def mask(self, shape, form=None):
        r = self.r
        n = 1
        for d in shape:
            n *= d
        form = form or self.form()
        kind = r.choice(("bool", "num"))
        if form == "b64":
            vals = [r.choice((0.0, -math.inf, self.value())) for _ in range(n)]
            return {"shape": list(shape), "dtype": "float32",
                    "b64": base64.b64encode(b"".join(map(f32_bits, vals))).decode()}
        if kind == "bool":
            p = r.random()
            leaves = [r.random() < p for _ in range(n)]
        else:
            leaves = [None if r.random() < 0.3 else Raw(self.num_text(self.value()))
                      for _ in range(n)]
        if form == "flat":
            return {"shape": list(shape), "data": leaves}
        return self.nest(shape, leaves, lambda v: v)

    def seed(self):
        r = self.r
        k = r.random()
        if k < 0.6:
            return r.choice([0, 1, 42, 1337, 3, 7]) if r.random() < 0.5 else r.randint(0, 2 ** 31)
        if k < 0.75:
            return r.randint(-2 ** 63, 2 ** 63 - 1)
        if k < 0.9:
            return str(r.choice([r.randint(0, 2 ** 64 - 1), -r.randint(0, 2 ** 63)]))
        return r.choice(["18446744073709551615", "-1", "-9223372036854775808",
                         "4294967296", "4294969633"])

    def shuffled(self, d):
        items = list(d.items())
        if self.r.random() < 0.3:
            self.r.shuffle(items)
        return dict(items)


# ==== valid native requests ====

BOW_METHODS = ("loop", "matmul", "softmax", "all")
ATT_RETURN = ("q", "k", "v", "scores", "weights", "out", "x", "wq", "wk", "wv")
MH_RETURN = ("out", "weights", "heads", "q", "k", "v", "scores", "x", "wq",
             "wk", "wv", "wo", "bo")


def dims(g, big=False):
    r = g.r
    if big:
        return r.randint(1, 4), r.randint(8, 48), r.randint(4, 32)
    return r.randint(1, 3), r.randint(1, 6), r.randint(1, 5)


def out_format(g, d):
    k = g.r.random()
    if k < 0.25:
        d["format"] = "nested"
    elif k < 0.45:
        d["format"] = "flat"
    elif k < 0.65:
        d["format"] = "b64"


def bow_req(g, big=False):
    r = g.r
    B, T, C = dims(g, big)
    d = {}
    if r.random() < 0.3:
        d["seed"] = g.seed()
        d["shape"] = [B, T, C]
        if r.random() < 0.2:
            d["x"] = g.tensor([B, T, C])
            if r.random() < 0.5:
                del d["shape"]
    else:
        d["x"] = g.tensor([B, T, C])
    if r.random() < 0.8:
        d["method"] = r.choice(BOW_METHODS)
    out_format(g, d)
    return g.shuffled(d), "seed" if "seed" in d else "tensors"


def att_common(g, d, B, T, S, ctx, mh):
    r = g.r
    if r.random() < 0.25:
        mshape = [T, S] if r.random() < 0.5 else [B, T, S]
        d["mask"] = g.mask(mshape)
    if r.random() < 0.5:
        if "mask" in d:
            d["causal"] = False if r.random() < 0.8 else r.choice([False, True])
        else:
            d["causal"] = r.choice([True, False])
    if r.random() < 0.4:
        d["scale"] = r.choice([True, False, Raw(g.num_text(g.value())), 0.25, 2, 0])
    if r.random() < 0.6:
        names = MH_RETURN if mh else ATT_RETURN
        d["return"] = [r.choice(names) for _ in range(r.randint(1, 5))]
    out_format(g, d)


def attention_req(g, big=False):
    r = g.r
    B, T, C = dims(g, big)
    hs = r.randint(1, 4) if not big else r.randint(4, 32)
    S = r.randint(1, 6) if not big else r.randint(8, 48)
    ctx = r.random() < 0.25
    d = {}
    if r.random() < 0.3:
        d["seed"] = g.seed()
        d["shape"] = [B, T, C]
        d["head_size"] = hs
        for k in ("x", "wq", "wk", "wv"):
            if r.random() < 0.12:
                d[k] = g.tensor([B, T, C] if k == "x" else [hs, C])
        if "x" in d and r.random() < 0.5:
            del d["shape"]
        if any(k in d for k in ("wq", "wk", "wv")) and r.random() < 0.5:
            del d["head_size"]
    else:
        d["x"] = g.tensor([B, T, C])
        for k in ("wq", "wk", "wv"):
            d[k] = g.tensor([hs, C], scale=0.5)
    if ctx:
        d["context"] = g.tensor([B, S, C])
    att_common(g, d, B, T, S if ctx else T, ctx, False)
    return g.shuffled(d), ("seed" if "seed" in d else "tensors") + ("+ctx" if ctx else "") + \
        ("+mask" if "mask" in d else "")


def multihead_req(g, big=False):
    r = g.r
    B, T, C = dims(g, big)
    H = r.randint(1, 3)
    hs = r.randint(1, 3) if not big else r.randint(4, 16)
    S = r.randint(1, 6) if not big else r.randint(8, 48)
    ctx = r.random() < 0.25
    d = {}
    if r.random() < 0.3:
        d["seed"] = g.seed()
        d["shape"] = [B, T, C]
        d["num_heads"] = H
        d["head_size"] = hs
        for k in ("x", "wq", "wk", "wv", "wo", "bo"):
            if r.random() < 0.1:
                d[k] = g.tensor({"x": [B, T, C], "wo": [C, H * hs], "bo": [C]}.get(k, [H, hs, C]))
    else:
        d["x"] = g.tensor([B, T, C])
        for k in ("wq", "wk", "wv"):
            d[k] = g.tensor([H, hs, C], scale=0.5)
        d["wo"] = g.tensor([C, H * hs], scale=0.5)
        d["bo"] = g.tensor([C])
    if ctx:
        d["context"] = g.tensor([B, S, C])
    if r.random() < 0.3:
        d["average_weights"] = r.choice([True, False])
    att_common(g, d, B, T, S if ctx else T, ctx, True)
    return g.shuffled(d), ("seed" if "seed" in d else "tensors") + ("+ctx" if ctx else "") + \
        ("+mask" if "mask" in d else "")


def randn_req(g, big=False):
    r = g.r
    rank = r.randint(0, 4)
    if big:
        shape = [r.randint(100, 300), r.randint(100, 300)]
    else:
        shape = [r.choice([0, 1, 1, 2, 3, 5, 8, 17]) for _ in range(rank)]
        if r.random() < 0.05 and shape:
            shape[r.randrange(len(shape))] = 0
            if r.random() < 0.5:
                shape.append(10 ** 12)
    d = {"seed": g.seed(), "shape": shape}
    if r.random() < 0.5:
        d["dist"] = r.choice(["randn", "rand"])
    out_format(g, d)
    return g.shuffled(d), "ok"


NATIVE = {"bow": bow_req, "attention": attention_req,
          "multihead": multihead_req, "randn": randn_req}


def ctype(g):
    k = g.r.random()
    if k < 0.85:
        return [("Content-Type", JSON_CT)]
    if k < 0.93:
        return []
    return [("Content-Type", g.r.choice(["application/json; charset=utf-8",
                                         "Application/JSON", "application/vnd.a+json"]))]


def native_ok(g, ep, big=False):
    d, sub = NATIVE[ep](g, big)
    return Req("%s/%s%s" % (ep, "large-" if big else "", sub), "POST", "/" + ep,
               ctype(g), dump(d, g.r.random() < 0.2))


# ==== v2 requests, from native ones ====

def flat_of(v):
    if isinstance(v, list):
        return [y for x in v for y in flat_of(x)]
    return [v]


def shape_of(v):
    s = []
    while isinstance(v, list):
        s.append(len(v))
        v = v[0] if v else None
    return s


def raw_value(x):
    if isinstance(x, Raw):
        return float(x.text)
    return x


def v2_from_native(g, model, d):
    """A v2 request for native request d: JSON data or binary tensor data."""
    r = g.r
    inputs, params, tail = [], {}, []
    outputs = None
    binary_in = r.random() < 0.4
    for k, v in d.items():
        if k == "return":
            outputs = [{"name": n} for n in v]
        elif k == "format":
            continue
        elif k in ("x", "wq", "wk", "wv", "wo", "bo", "context", "mask"):
            if isinstance(v, dict):            # flat / b64 object -> its numbers
                shape = v["shape"]
                if "b64" in v:
                    raw = base64.b64decode(v["b64"])
                    vals = list(struct.unpack("<%df" % (len(raw) // 4), raw))
                    vals = [None if x == -math.inf else Raw(repr(x)) for x in vals]
                else:
                    vals = v["data"]
            else:
                shape, vals = shape_of(v), flat_of(v)
            is_bool = k == "mask" and vals and isinstance(vals[0], bool)
            dt = "BOOL" if is_bool else "FP32"
            inp = {"name": k, "shape": shape, "datatype": dt}
            if binary_in and r.random() < 0.85:
                if is_bool:
                    blob = bytes(1 if x else 0 for x in vals)
                else:
                    blob = b"".join(f32_bits(-math.inf if x is None else raw_value(x))
                                    for x in vals)
                inp["parameters"] = {"binary_data_size": len(blob)}
                tail.append(blob)
            else:
                data = vals if r.random() < 0.8 else g.nest(shape, vals, lambda x: x)
                inp["data"] = data
            inputs.append(inp)
        else:
            params[k] = v
    if model != "bow" and outputs is None and r.random() < 0.3:
        names = MH_RETURN if model == "multihead" else ATT_RETURN
        outputs = [{"name": n} for n in r.sample(names, r.randint(1, min(3, len(names))))]
    if model == "bow" and r.random() < 0.3:
        names = ["weights", "out"]
        if r.random() < 0.1 or "seed" in d:
            names.append("x")
        if r.random() < 0.1 or d.get("method") == "all":
            names += ["max_abs_diff", "allclose"]
        outputs = [{"name": n} for n in r.sample(names, r.randint(1, min(3, len(names))))]
    binary_out = r.random() < 0.4
    if binary_out and r.random() < 0.5:
        params["binary_data_output"] = r.choice([True, False])
    if outputs is not None and binary_out:
        for o in outputs:
            if r.random() < 0.5:
                o["parameters"] = {"binary_data": r.choice([True, False])}
    body = {}
    if r.random() < 0.3:
        body["id"] = r.choice(["42", "", "req-%d" % r.randint(0, 999), "é\u00e8"])
    body["inputs"] = inputs
    if outputs is not None:
        body["outputs"] = outputs
    if params:
        body["parameters"] = params
    return body, tail


def v2_path(g, model, suffix="infer"):
    if g.r.random() < 0.15:
        return "/v2/models/%s/versions/1/%s" % (model, suffix)
    return "/v2/models/%s/%s" % (model, suffix)


def v2_frame(g, body, tail, ws=False):
    """body (dict or bytes) + binary tail -> (headers, bytes)."""
    js = body if isinstance(body, bytes) else dump(body, ws)
    blob = b"".join(tail)
    hdrs = []
    if tail or g.r.random() < 0.1:
        k = g.r.random()
        if k < 0.6:
            hdrs.append(("Inference-Header-Content-Length", str(len(js))))
        elif k < 0.65:
            hdrs.append(("Inference-Header-Content-Length", "0" if not blob else str(len(js))))
        hdrs.append(("Content-Type", g.r.choice(["application/octet-stream", JSON_CT])))
    else:
        hdrs.append(("Content-Type", JSON_CT))
    return hdrs, js + blob


def v2_ok(g, model, big=False):
    d, sub = NATIVE[model](g, big)
    body, tail = v2_from_native(g, model, d)
    hdrs, data = v2_frame(g, body, tail, g.r.random() < 0.2)
    kind = "bin-in" if tail else "json-in"
    return Req("v2/%s/%s%s" % (model, "large-" if big else "", kind), "POST",
               v2_path(g, model), hdrs, data)


# ==== errors: mutations of valid requests ====

def paths_in(v, prefix=()):
    """Every (path tuple) of a JSON value, the root included."""
    out = [prefix]
    if isinstance(v, dict):
        for k, x in v.items():
            out += paths_in(x, prefix + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v[:6]):
            out += paths_in(x, prefix + (i,))
    return out


def get_at(v, path):
    for p in path:
        v = v[p]
    return v


FIELD_NAMES = ["x", "wq", "wk", "wv", "wo", "bo", "context", "mask", "causal",
               "scale", "return", "format", "seed", "shape", "head_size",
               "num_heads", "average_weights", "method", "dist", "casual",
               "retrun", "X", "shape ", "", "b64", "data", "dtype", "name",
               "datatype", "parameters", "binary_data", "binary_data_size",
               "inputs", "outputs", "id", "binary_data_output", "foo"]


def other_value(g):
    r = g.r
    return r.choice([None, True, False, 0, -1, 1.5, Raw("1e39"), Raw("-1e39"),
                     Raw("1e400"), "x", "", "float32", "b64", "nested", [], {},
                     [[]], [1, 2], [[1, 2], [3]], {"shape": [1]},
                     Raw("9223372036854775808"), Raw("-0"), Raw("1E-50"),
                     "AAAA", [True, 1], [None], 2 ** 40, 16.0, "16",
                     [1, 2, 3, 4, 5], [[[1]]], Raw("123456789012345678901234")])


def mutate_value(g, d):
    """One structural change somewhere in d (a deep copy is changed)."""
    r = g.r
    d = json.loads(json.dumps(d, default=lambda o: float(o.text)))  # plain copy
    paths = paths_in(d)
    path = r.choice(paths)
    parent = get_at(d, path[:-1]) if path else None
    k = r.random()
    if not path:
        key = r.choice(FIELD_NAMES)
        d[key] = other_value(g)
        return d, "add-field"
    last = path[-1]
    cur = parent[last]
    if k < 0.3:
        parent[last] = other_value(g)
        return d, "retype"
    if k < 0.45 and isinstance(parent, dict):
        del parent[last]
        return d, "remove"
    if k < 0.55 and isinstance(parent, dict):
        parent[r.choice(FIELD_NAMES)] = other_value(g)
        return d, "add-key"
    if k < 0.7 and isinstance(cur, list):
        op = r.randrange(4)
        if op == 0 and cur:
            cur.pop()
        elif op == 1:
            cur.append(cur[-1] if cur and r.random() < 0.5 else other_value(g))
        elif op == 2:
            cur.insert(0, [json.loads(json.dumps(cur))] if cur else [])
        else:
            cur.clear()
        return d, "reshape"
    if k < 0.8 and isinstance(cur, (int, float)) and not isinstance(cur, bool):
        parent[last] = r.choice([cur * 1000, -cur, cur + 0.5, 0, -1, 10 ** 6, 1e38, 3.5e38])
        return d, "number"
    if k < 0.9 and isinstance(cur, str):
        parent[last] = r.choice([cur.upper(), cur + "x", cur[:-1], " " + cur,
                                 cur.replace("A", "-"), cur + "=", "=" + cur])
        return d, "string"
    if isinstance(parent, dict):
        parent[last + "_"] = parent.pop(last) if r.random() < 0.5 else other_value(g)
        return d, "rename"
    parent[last] = other_value(g)
    return d, "retype"


def mutate_text(g, data):
    r = g.r
    k = r.random()
    if not data:
        return b"{", "text-empty"
    if k < 0.25:
        return data[:r.randrange(len(data))], "truncate"
    i = r.randrange(len(data))
    if k < 0.5:
        return data[:i] + bytes([r.choice(b"{}[],:\"\\ 0-eE.+tfn\x00\xff\xc3\x80")]) + \
            data[i + 1:], "byte"
    if k < 0.65:
        return data[:i] + r.choice([b",", b"]", b"[", b"\"", b"\\u", b"\xef\xbb\xbf",
                                    b"\xc3", b"\xed\xa0\x80", b"//", b"NaN", b"Infinity"]) + \
            data[i:], "insert"
    if k < 0.75:
        return b"\xef\xbb\xbf" + data, "bom"
    if k < 0.85:
        return data + r.choice([b" ", b"\n", b"x", b"{}", b",", b"\x00"]), "trailing"
    # duplicate a key: {"a":..., "a":...}
    if data.startswith(b"{") and data.endswith(b"}") and len(data) > 2:
        j = data.find(b",")
        if j > 0:
            return data[:-1] + b"," + data[1:j] + b"}", "dup-key"
    return data[:i] + data[i + 1:], "delete"


def native_err(g, ep):
    r = g.r
    d, _ = NATIVE[ep](g)
    if r.random() < 0.75:
        m, kind = mutate_value(g, d)
        body = dump(m, r.random() < 0.2)
    else:
        body, kind = mutate_text(g, dump(d))
    return Req("%s/err-%s" % (ep, kind), "POST", "/" + ep, ctype(g), body)


def v2_err(g, model):
    r = g.r
    d, _ = NATIVE[model](g)
    body, tail = v2_from_native(g, model, d)
    k = r.random()
    if k < 0.6:
        m, kind = mutate_value(g, body)
        hdrs, data = v2_frame(g, dump(m), tail)
    elif k < 0.8:
        js, kind = mutate_text(g, dump(body))
        hdrs, data = v2_frame(g, js, tail)
    else:
        hdrs, data = v2_frame(g, body, tail)
        kind = "framing"
        js_len = len(dump(body))
        op = r.randrange(8)
        hdrs = [h for h in hdrs if h[0] != "Inference-Header-Content-Length"]
        if op == 0:
            hdrs.append(("Inference-Header-Content-Length",
                         r.choice(["abc", "-1", "", " 5", "5 ", "+3", "0x10",
                                   "99999999999999999999", "1.5"])))
        elif op == 1:
            hdrs.append(("Inference-Header-Content-Length", str(len(data) + r.randint(1, 5))))
        elif op == 2:
            hdrs.append(("Inference-Header-Content-Length",
                         str(max(0, js_len + r.randint(-5, 5)))))
        elif op == 3:
            data = data + r.choice([b"\x00", b"AAAA", b" ", b"\n"])
        elif op == 4 and len(data) > js_len:
            data = data[:r.randrange(js_len, len(data))]
        elif op == 5:
            hdrs.append(("Inference-Header-Content-Length", str(len(data))))
        elif op == 6:
            hdrs = [("Content-Type", r.choice(["text/plain", "application/x-www-form-urlencoded",
                                               "application/octet-stream; x=1",
                                               "application/problem+json"]))]
            hdrs.append(("Inference-Header-Content-Length", str(js_len)))
        else:
            hdrs.append(("Inference-Header-Content-Length", "0"))
        if r.random() < 0.3:
            hdrs = [h for h in hdrs if h[0] != "Content-Type"]
    return Req("v2/%s/err-%s" % (model, kind), "POST", v2_path(g, model), hdrs, data)


# ==== base64: valid and corrupted strings (short and multi-chunk) ====

B64_ALPHA = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64_string(g):
    """(text, note): valid or corrupted base64 of float32 data."""
    r = g.r
    n = r.choice([1, 2, 3, 4, 5, 7, 100, 767, 768, 769, 1023, 1024, 1025,
                  1536, 2304, 3071, 3072, 3073, 5000])
    if r.random() < 0.5:
        n = r.randint(1, 12)
    raw = b"".join(f32_bits(g.value()) for _ in range(n))
    if r.random() < 0.2:
        raw = raw[:len(raw) - r.randint(1, 3)]      # not whole floats
    s = bytearray(base64.b64encode(raw))
    k = r.random()
    if k < 0.3:
        return bytes(s).decode("latin-1"), "valid", n
    i = r.randrange(len(s)) if r.random() < 0.6 else \
        min(len(s) - 1, max(0, r.choice([4095, 4096, 4097, 8191, 8192, len(s) - 1,
                                         len(s) - 2, len(s) - 3, len(s) - 4])))
    if k < 0.55:
        s[i] = r.choice(b" \n\t=-_.*@\x7f\x80\xc3\xff!~")
        note = "bad-char"
    elif k < 0.65:
        while s.endswith(b"="):
            s.pop()
        if not s.endswith(b"=") and len(s) % 4 == 0:
            s.pop()
        note = "no-padding"
    elif k < 0.72:
        s = s + r.choice([b"=", b"==", b"A", b"AA==", b"====", b"A==="])
        note = "extra"
    elif k < 0.8:
        s.insert(i, r.choice(b"=\n \r"))
        note = "insert"
    elif k < 0.88:
        # nonzero trailing bits before the padding
        if s.endswith(b"=="):
            s[-3] = r.choice(b"BCDEFGHIJKLMNOP")
        elif s.endswith(b"="):
            s[-2] = r.choice(b"BCDEFGH")
        note = "trailing-bits"
    else:
        s = bytearray(base64.urlsafe_b64encode(raw))
        s[i % len(s)] = r.choice(b"-_")
        note = "urlsafe"
    return bytes(s).decode("latin-1"), note, n


def b64_req(g):
    r = g.r
    text, note, n = b64_string(g)
    ep = r.choice(["bow", "attention", "multihead"])
    # the b64 as x; a shape that fits the decoded count when it can
    T = max(1, n)
    if ep == "bow":
        d = {"x": {"shape": [1, 1, T], "dtype": "float32", "b64": text}}
    elif ep == "attention":
        d = {"x": {"shape": [1, T, 1], "dtype": "float32", "b64": text},
             "wq": [[1]], "wk": [[0.5]], "wv": {"shape": [1, 1], "dtype": "float32",
                                               "b64": "AACAPw=="}}
        if T > LIMITS["max_seq"]:
            d["x"]["shape"] = [1, 1, T]
            d.update(wq=[[1] * T], wk=[[0] * T], wv=[[1] * T])
    else:
        d = {"x": [[[1.0]]], "wq": [[[1]]], "wk": [[[1]]], "wv": [[[1]]],
             "wo": {"shape": [1, 1], "dtype": "float32", "b64": "AACAPw=="},
             "bo": {"shape": [T], "dtype": "float32", "b64": text}}
        if r.random() < 0.5:
            d["bo"] = [1]
            d["mask"] = {"shape": [1, 1, 1], "dtype": "float32",
                         "b64": text if n == 1 else "AACA/w=="}
    out_format(g, d)
    # the characters go in raw (bytes from 0x80 are then not UTF-8) or as
    # JSON escapes (\u0080 is UTF-8, "\n" an escaped newline)
    raw = text.encode("latin-1")
    if r.random() < 0.5:
        raw = json.dumps(text)[1:-1].encode("ascii")
    body = dump(d).replace(json.dumps(text).encode(), b'"' + raw + b'"')
    return Req("b64/%s/%s" % (ep, note), "POST", "/" + ep, [("Content-Type", JSON_CT)], body)


# ==== routes, methods, headers ====

GET_PATHS = ["/", "/healthz", "/readyz", "/openapi.yaml", "/metrics", "/v2",
             "/v2/health/live", "/v2/health/ready"] + \
    ["/v2/models/%s" % m for m in MODELS] + \
    ["/v2/models/%s/ready" % m for m in MODELS] + \
    ["/v2/models/%s/versions/1" % m for m in MODELS] + \
    ["/v2/models/%s/versions/1/ready" % m for m in MODELS]
POST_PATHS = ["/bow", "/attention", "/multihead", "/randn"] + \
    ["/v2/models/%s/infer" % m for m in MODELS]
ODD_PATHS = ["/nope", "/bow/", "/BOW", "//bow", "/v2/", "/v2/models",
             "/v2/models/", "/v2/models/gpt", "/v2/models/gpt/infer",
             "/v2/models/bow/versions/2", "/v2/models/bow/versions/2/infer",
             "/v2/models/bow/versions/1/ready/x", "/v2/models/bow/infer/x",
             "/v2/health", "/v2/health/other", "/healthz/x", "/index.html",
             "/openapi.json", "/v2/repository/index", "/v2/models/attention/config",
             "/v2/models/multihead/versions/", "/%62ow", "/healthz?x=1",
             "/v2?y", "/bow?x=1", "/" + "a" * 300, "/v2/models/" + "b" * 200]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
           "FOO"]


def route_req(g):
    r = g.r
    k = r.random()
    hdrs = []
    if k < 0.4:
        path = r.choice(GET_PATHS)
        method = r.choice(["GET", "GET", "HEAD"])
        if path in ("/", "/openapi.yaml") and r.random() < 0.3:
            hdrs.append(("If-None-Match", r.choice(['"x"', "*", 'W/"abc"', ""])))
        cat = "route/get"
    elif k < 0.55:
        path = r.choice(GET_PATHS + POST_PATHS + ODD_PATHS)
        method = "OPTIONS"
        if r.random() < 0.7:
            hdrs.append(("Origin", "https://example.org"))
            hdrs.append(("Access-Control-Request-Method", r.choice(["POST", "GET", "PUT"])))
        cat = "route/options"
    elif k < 0.8:
        path = r.choice(GET_PATHS + POST_PATHS)
        method = r.choice(METHODS)
        cat = "route/method"
    else:
        path = r.choice(ODD_PATHS + GET_PATHS)
        method = r.choice(["GET", "POST", "HEAD", "DELETE"])
        cat = "route/path"
    body = None
    if method in ("POST", "PUT", "PATCH") or r.random() < 0.05:
        body = r.choice([b"", b"{}", b'{"x": [[[1]]]}', b"null", b"[" * 40])
        hdrs.append(("Content-Type", r.choice([JSON_CT, "text/plain"])))
    if r.random() < 0.1:
        hdrs.append(("Origin", "http://a.example"))
    return Req(cat, method, path, hdrs, body)


def content_type_req(g):
    r = g.r
    ep = r.choice(["/bow", "/attention", "/multihead", "/randn"] +
                  ["/v2/models/%s/infer" % m for m in MODELS])
    if ep.startswith("/v2"):
        d, _ = NATIVE[ep.split("/")[3]](g)
        body, tail = v2_from_native(g, ep.split("/")[3], d)
        data = dump(body) + b"".join(tail)
    else:
        d, _ = NATIVE[ep[1:]](g)
        data = dump(d)
    ct = r.choice(["text/json", "text/plain", "application/x-www-form-urlencoded",
                   "application/jsonx", "application/json;charset=utf-8",
                   "APPLICATION/JSON", "application/problem+json", "application/+json",
                   "multipart/form-data; boundary=x", "application/octet-stream",
                   "application/json ; q=1", "", "json", "application/ld+json"])
    return Req("content-type", "POST", ep, [("Content-Type", ct)], data)


# ==== hand-written odd bodies ====

def odd_body_req(g):
    r = g.r
    ep = r.choice(["/bow", "/attention", "/multihead", "/randn",
                   "/v2/models/bow/infer", "/v2/models/attention/infer"])
    depth = r.choice([LIMITS["max_depth"] - 1, LIMITS["max_depth"],
                      LIMITS["max_depth"] + 1, 100, 5])
    body = r.choice([
        b"", b" ", b"null", b"true", b"1", b"\"x\"", b"[]", b"{}", b"[{}]",
        b"{" * 3, b"[" * depth + b"]" * depth,
        b'{"x": ' + b"[" * depth + b"1" + b"]" * depth + b"}",
        b'{"x": "' + b"[" * 50 + b'"}',
        b'{"x": [[[1, 2], [3]]]}', b'{"x": [[[1], [2, 3]]]}', b'{"x": [[[1, [2]]]]}',
        b'{"x": [[["1"]]]}', b'{"x": [[[null]]]}', b'{"x": [[[true]]]}',
        b'{"x": [[[1e39]]]}', b'{"x": [[[-1e39]]]}', b'{"x": [[[1e999]]]}',
        b'{"x": [[[NaN]]]}', b'{"x": [[[01]]]}', b'{"x": [[[1.]]]}', b'{"x": [[[.5]]]}',
        b'{"x": [[[-]]]}', b'{"x": [[[+1]]]}', b'{"x": [[[1e]]]}', b'{"x": [[[0x1]]]}',
        b'{"x": [[[1]]], "x": [[[2]]]}', b'{"x": [[[1]]]} {}', b'{"x": [[[1]]],}',
        b'{"x": [[[1,]]]}', b"{\"x\": [[[1]]], \"method\": \"\xff\"}",
        b'{"x": [[[1]]], "method": "\\u0000"}', b'{"x": [[[1]]], "method": "\\ud800"}',
        b'{"seed": 1, "shape": [1, 2, 3], "method": "all"}',
        b'{"seed": 9223372036854775808, "shape": [1]}',
        b'{"seed": -9223372036854775809, "shape": [1]}',
        b'{"seed": 1.5, "shape": [1]}', b'{"seed": "1.0", "shape": [1]}',
        b'{"seed": "+1", "shape": [1]}', b'{"seed": " 1", "shape": [1]}',
        b'{"seed": "", "shape": [1]}', b'{"seed": "18446744073709551616", "shape": [1]}',
        b'{"seed": 1, "shape": [1, 2, 3, 4, 5]}', b'{"seed": 1, "shape": [-1]}',
        b'{"seed": 1, "shape": [1.5]}', b'{"seed": 1, "shape": "3"}',
        b'{"seed": 1, "shape": [1e3]}', b'{"seed": 1, "shape": [2, 3], "dist": "normal"}',
        b'{"seed": 1, "shape": [2, 3], "dist": 1}', b'{"seed": 1, "shape": [2], "format": "B64"}',
        b'{"inputs": []}', b'{"inputs": {}}', b'{"inputs": [1]}', b'{"inputs": [{}]}',
        b'{"inputs": [], "outputs": {}}', b'{"inputs": [], "parameters": []}',
        b'{"inputs": [], "parameters": {"seed": 1, "shape": [1, 2, 2]}}',
        b'{"inputs": [], "parameters": {"seed": 1, "shape": [1, 2, 2], "head_size": 2}}',
        b'{"inputs": [], "parameters": {"seed": 1, "shape": [1, 2, 2], "format": "b64"}}',
        b'{"inputs": [], "parameters": {"seed": 1, "shape": [1, 2, 2], "return": ["out"]}}',
        b'{"id": 5, "inputs": []}', b'{"inputs": [], "extra": 1}',
        b'{"x": [[[1]]], "format": "b64", "method": "loop"}',
        "{\"x\": [[[1]]], \"m\u00e9thod\": \"loop\"}".encode(),
        b'{"x": {"shape": [1, 1, 1], "data": [1], "dtype": "float32"}}',
        b'{"x": {"shape": [1, 1, 1], "dtype": "float64", "b64": "AAAAAAAA8D8="}}',
        b'{"x": {"shape": [1, 1, 1], "dtype": "float16", "data": [1]}}',
        b'{"x": {"shape": [1, 1, 1], "b64": "AACAPw=="}}',
        b'{"x": {"shape": [1, 1, 1], "dtype": "float32", "b64": "AADAfw=="}}',
        b'{"x": {"shape": [1, 1, 1], "dtype": "float32", "b64": "AACAfw=="}}',
        b'{"x": {"shape": [1, 1, 1], "dtype": "float32", "b64": "AACA/w=="}}',
        b'{"x": {"data": [1]}}', b'{"x": {"shape": [1, 1, 1]}}', b'{"x": {}}',
        b'{"x": {"shape": [1, 1, 1], "data": [1], "b64": "AACAPw=="}}',
        b'{"x": {"shape": [1, 1, 9223372036854775807], "data": [1]}}',
        b'{"x": {"shape": [100000, 100000, 100000], "data": [1]}}',
    ])
    return Req("odd-body", "POST", ep, [("Content-Type", JSON_CT)], body)


# ==== the server limits ====

def limit_req(g):
    r = g.r
    L = LIMITS
    k = r.randrange(12)
    ep = "/attention"
    if k == 0:
        d = {"seed": 1, "shape": [L["max_batch"] + r.randint(0, 2), 2, 2], "head_size": 2}
    elif k == 1:
        d = {"seed": 1, "shape": [1, L["max_seq"] + r.randint(0, 2), 2], "head_size": 2}
    elif k == 2:
        d = {"seed": 1, "shape": [1, 2, 2], "head_size": L["max_head"] + r.randint(0, 2)}
    elif k == 3:
        ep = "/multihead"
        d = {"seed": 1, "shape": [1, 2, 2], "num_heads": L["max_head"] + r.randint(0, 2),
             "head_size": 1}
    elif k == 4:
        ep = "/randn"
        n = L["max_elements"] + r.randint(-1, 1)
        d = {"seed": 1, "shape": [n], "format": "b64"}
    elif k == 5:
        ep = "/bow"
        d = {"seed": 1, "shape": [1, 200, 1001 + r.randint(-1, 1)], "method": "loop"}
    elif k == 6:
        ep = "/bow"
        d = {"seed": 1, "shape": [4, 250, 250], "method": r.choice(BOW_METHODS)}
    elif k == 7:
        d = {"seed": 1, "shape": [16, 250, 8], "head_size": 8}
    elif k == 8:
        ep = "/randn"
        d = {"seed": 1, "shape": [r.choice([10 ** 6, 10 ** 12, 2 ** 63 - 1]), 0]}
    elif k == 9:
        ep = "/multihead"
        d = {"seed": 1, "shape": [8, 200, 16], "num_heads": 4, "head_size": 8,
             "average_weights": True}
    elif k == 10:
        d = {"x": {"shape": [1, 1, L["max_elements"] + 1], "data": [1]},
             "wq": [[1]], "wk": [[1]], "wv": [[1]]}
    else:
        d = {"seed": 1, "shape": [1, 4, 4], "head_size": 2,
             "context": {"shape": [1, L["max_seq"] + 1, 4], "dtype": "float32", "b64": ""}}
    if ep != "/randn" and r.random() < 0.2:
        model = ep.strip("/")
        body, tail = v2_from_native(g, model, d)
        hdrs, data = v2_frame(g, body, tail)
        return Req("limits/v2", "POST", v2_path(g, model), hdrs, data)
    return Req("limits", "POST", ep, [("Content-Type", JSON_CT)], dump(d))


def body_too_large_req(g):
    n = LIMITS["max_body"] + g.r.choice([1, 1000])
    ep = g.r.choice(["/bow", "/v2/models/bow/infer", "/randn"])
    body = b'{"x": [' + b" " * (n - 9) + b"]}"
    return Req("limits/body", "POST", ep, [("Content-Type", JSON_CT)], body)


# ==== the mix ====

def generate(seed=1, n=30000):
    g = G(seed)
    r = g.r
    out = []
    # a few large ones first (multi-chunk b64, threaded writers)
    for i in range(max(1, n // 1500)):
        ep = ("bow", "attention", "multihead", "randn")[i % 4]
        if i % 3 == 2 and ep != "randn":
            out.append(v2_ok(g, ep, big=True))
        else:
            out.append(native_ok(g, ep, big=True))
    for _ in range(max(1, n // 10000)):
        out.append(body_too_large_req(g))
    table = [
        (14, lambda: native_ok(g, "bow")),
        (16, lambda: native_ok(g, "attention")),
        (14, lambda: native_ok(g, "multihead")),
        (6, lambda: native_ok(g, "randn")),
        (4, lambda: v2_ok(g, "bow")),
        (6, lambda: v2_ok(g, "attention")),
        (5, lambda: v2_ok(g, "multihead")),
        (5, lambda: native_err(g, "bow")),
        (6, lambda: native_err(g, "attention")),
        (6, lambda: native_err(g, "multihead")),
        (3, lambda: native_err(g, "randn")),
        (3, lambda: v2_err(g, "bow")),
        (4, lambda: v2_err(g, "attention")),
        (4, lambda: v2_err(g, "multihead")),
        (5, lambda: b64_req(g)),
        (4, lambda: route_req(g)),
        (1.5, lambda: content_type_req(g)),
        (2, lambda: odd_body_req(g)),
        (0.3, lambda: limit_req(g)),
    ]
    weights = [w for w, _ in table]
    while len(out) < n:
        f = r.choices(table, weights)[0][1]
        out.append(f())
    return out


if __name__ == "__main__":
    import sys
    from collections import Counter
    reqs = generate(int(sys.argv[1]) if len(sys.argv) > 1 else 1,
                    int(sys.argv[2]) if len(sys.argv) > 2 else 30000)
    c = Counter(q.category for q in reqs)
    for k in sorted(c):
        print("%6d %s" % (c[k], k))
    print("%6d total, %d bytes" % (len(reqs), sum(len(q.body or b"") for q in reqs)))

#!/bin/sh
# Seed corpus for fuzz_request from tests/cases and the PyTorch fixtures,
# in the fuzzer's input format (see fuzz_request.c).  Usage: make_corpus.sh DIR
set -eu
out=$1
mkdir -p "$out"
for d in tests/cases/*/; do
    name=$(basename "$d")
    /usr/bin/python3 - "$d" "$out/case_$name" <<'PY'
import json, sys
d, out = sys.argv[1], sys.argv[2]
c = json.load(open(d + "case.json"))
body = open(d + "request.body", "rb").read()
ct = c.get("content_type") or ""
open(out, "wb").write(("%s %s\n%s\n" % (c["method"], c["path"], ct)).encode() + body)
PY
done
# every input the fuzzer ever crashed on, kept as is
cp tests/fuzz/regressions/* "$out/"
for f in tests/fixtures/bow/*.json tests/fixtures/attention/*.json \
         tests/fixtures/multihead/*.json; do
    /usr/bin/python3 - "$f" "$out/fixture_$(basename "$f" .json)" <<'PY'
import json, sys
import base64, struct
fx = json.load(open(sys.argv[1]))


def dims(v):
    d = []
    while isinstance(v, list):
        d.append(len(v))
        v = v[0] if v else None
    return d


def flat(v):
    return [y for x in v for y in flat(x)] if isinstance(v, list) else [v]


# the request as it is, then its tensors flat and as b64 (Tensor formats)
forms = {"": fx["request"]}
for form in ("flat", "b64"):
    r = dict(fx["request"], format=form)
    for k in ("x", "wq", "wk", "wv", "wo", "bo"):
        if isinstance(r.get(k), list):
            vals = flat(r[k])
            r[k] = {"shape": dims(r[k]), "data": vals} if form == "flat" else \
                {"shape": dims(r[k]), "dtype": "float32",
                 "b64": base64.b64encode(struct.pack("<%df" % len(vals), *vals)).decode()}
    forms["_" + form] = r
for suffix, req in forms.items():
    body = json.dumps(req, separators=(",", ":")).encode()
    if len(body) <= 65536:
        open(sys.argv[2] + suffix, "wb").write(("POST %s\napplication/json\n" % fx["endpoint"]).encode() + body)
PY
done

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
    for k in ("x", "wq", "wk", "wv", "wo", "bo", "context"):
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
# the same request over the v2 protocol
def shape(v):
    return [len(v)] + shape(v[0]) if isinstance(v, list) and v else []
model = fx["endpoint"].strip("/")
inputs, params, v2 = [], {}, {}
for k, v in fx["request"].items():
    if k == "return":
        v2["outputs"] = [{"name": n} for n in v]
    elif isinstance(v, list) and k != "shape":
        dt = "BOOL" if k == "mask" and isinstance(flat(v)[0], bool) else "FP32"
        inputs.append({"name": k, "shape": shape(v), "datatype": dt, "data": flat(v)})
    else:
        params[k] = v
v2["inputs"] = inputs
if params:
    v2["parameters"] = params
body = json.dumps(v2, separators=(",", ":")).encode()
if len(body) <= 65536:
    open(sys.argv[2] + "_v2", "wb").write(("POST /v2/models/%s/infer\napplication/json\n" % model).encode() + body)
PY
done
for p in "GET /v2" "GET /v2/health/ready" "GET /v2/models/multihead/versions/1" \
         "POST /v2/models/bow/versions/2/infer" "GET /v2/models/stats" \
         "GET /v2/models/attention/versions/1/config" "GET /v2/models/bow/stats" \
         "POST /v2/repository/index" "POST /v2/repository/models/bow/unload"; do
    printf '%s\napplication/json\n{}' "$p" > "$out/v2_$(echo "$p" | tr ' /' '__')"
done
printf 'POST /v2/repository/index\napplication/json\n{"ready": true}' > "$out/v2_index_ready"
printf 'POST /v2/models/bow/infer\napplication/json\n{"id":"7","model_name":"bow","model_version":"1","inputs":[],"parameters":{"seed":1,"shape":[1,2,2]}}' \
    > "$out/v2_model_name"
printf 'POST /v2/models/bow/infer\napplication/octet-stream\n{"inputs":[{"name":"x","shape":[1,2,1],"datatype":"FP32","parameters":{"binary_data_size":8}}]}AAAABBBB' \
    > "$out/v2_binary"
printf 'POST /v2/models/bow/infer\napplication/json\n{"inputs":[],"parameters":{"seed":1,"shape":[1,2,2],"method":"all","binary_data_output":true},"outputs":[{"name":"out"},{"name":"weights","parameters":{"binary_data":false}},{"name":"allclose"}]}' \
    > "$out/v2_binary_outputs"

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
fx = json.load(open(sys.argv[1]))
body = json.dumps(fx["request"], separators=(",", ":")).encode()
if len(body) <= 65536:
    open(sys.argv[2], "wb").write(("POST %s\napplication/json\n" % fx["endpoint"]).encode() + body)
PY
done

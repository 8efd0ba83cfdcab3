#!/usr/bin/env bash
# bench/gpt_bench.sh -- `make bench-gpt`: the shipped model's forward,
# T = block_size, attnd's engine against PyTorch on the same exported file,
# in the same run (ratios, never a timed assertion).  Knobs:
#   GPT_BENCH  the gpt_bench binary   MODELS  the repository (models/)
#   MODEL      its name (shakespeare) ITERS   forwards per case (50)
#   PYTHON     Debian's python with torch
#   ATTND_BIN  the server, for the POST /gpt column (bench/gpt_http.py:
#              the same forward through HTTP, JSON and all, last_logits)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GPT_BENCH=${GPT_BENCH:-$ROOT/build/bench/gpt_bench}
MODELS=${MODELS:-$ROOT/models}
MODEL=${MODEL:-shakespeare}
ITERS=${ITERS:-50}
PYTHON=${PYTHON:-/usr/bin/python3}
ATTND_BIN=${ATTND_BIN:-$ROOT/build/attnd}
T=$($PYTHON -c "import json,sys; print(json.load(open(sys.argv[1]))['block_size'])" \
	"$MODELS/$MODEL/config.json")
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| B | T | threads | attnd engine ms | POST /gpt ms | PyTorch ms | PyTorch/attnd | logit sums (attnd, torch) |\n|---|---|---|---|---|---|---|---|\n'
for B in 1 8; do
	for TH in 1 2; do
		read -r _ _ _ ems esum < <(OMP_WAIT_POLICY=PASSIVE "$GPT_BENCH" "$MODELS" "$MODEL" "$B" "$T" "$ITERS" "$TH")
		read -r _ _ _ tms tsum blas < <(OMP_WAIT_POLICY=PASSIVE $PYTHON "$ROOT/bench/gpt_torch.py" "$MODELS" "$MODEL" "$B" "$T" "$ITERS" "$TH")
		read -r _ _ _ hms < <($PYTHON "$ROOT/bench/gpt_http.py" "$MODELS" "$MODEL" "$B" "$T" "$ITERS" "$TH" "$ATTND_BIN")
		ratio=$(awk -v a="$ems" -v b="$tms" 'BEGIN{printf "%.2f", b/a}')
		printf '| %s | %s | %s | %s | %s | %s | %s | %s, %s |\n' "$B" "$T" "$TH" "$ems" "$hms" "$tms" "$ratio" "$esum" "$tsum"
	done
done
echo "PyTorch: $($PYTHON -c 'import torch; print(torch.__version__)'), $blas"

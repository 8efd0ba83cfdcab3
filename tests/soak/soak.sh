#!/usr/bin/env bash
# make soak: a bounded soak of build/attnd under wrk (tests/soak/README.md).
#
# Starts attnd on a free 127.0.0.1 port, records the answer to every request of
# the mix once (soak.py prepare), runs wrk with mix.lua for SOAK_SECONDS, then
# checks that every answer was the recorded one, that nothing was a 5xx or a
# socket error, that RSS is back near where it started after SOAK_IDLE seconds,
# and that the server is alive, still correct and exits 0 on SIGTERM.
# Exits non-zero on any violation.  Stops only the processes it started.
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ATTND_BIN=${ATTND_BIN:-$repo/build/attnd}
PYTHON=${PYTHON:-/usr/bin/python3}
SOAK_SECONDS=${SOAK_SECONDS:-60}
SOAK_THREADS=${SOAK_THREADS:-4}
SOAK_IDLE=${SOAK_IDLE:-3}
SOAK_RSS_SLACK_MB=${SOAK_RSS_SLACK_MB:-20}
SAMPLE_EVERY=5

command -v wrk >/dev/null 2>&1 || {
    echo "soak: wrk not found; make soak installs Debian's wrk (apt-get install wrk)" >&2
    exit 2
}
[ -x "$ATTND_BIN" ] || { echo "soak: $ATTND_BIN is not built (run make)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/attnd-soak.XXXXXX")
pid=""
sampler=""
wrk_pid=""
cleanup() {
    for p in "$wrk_pid" "$sampler"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill "$p" 2>/dev/null
            wait "$p" 2>/dev/null
        fi
    done
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

num() { echo "$1 $2" >> "$work/numbers.txt"; }
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status" 2>/dev/null; }

port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
OMP_WAIT_POLICY=PASSIVE "$ATTND_BIN" --host 127.0.0.1 --port "$port" 2>"$work/attnd.stderr" &
pid=$!
echo "soak: attnd pid $pid on $url, ${SOAK_SECONDS}s, $SOAK_THREADS wrk threads; work dir $work"

"$PYTHON" "$here/soak.py" wait "$url" || exit 1
num rss_start_kb "$(status_kb VmRSS)"
"$PYTHON" "$here/soak.py" prepare "$url" "$work" || exit 1
num rss_warm_kb "$(status_kb VmRSS)"

( while kill -0 "$pid" 2>/dev/null; do
      awk '$1 == "VmRSS:" { printf "%.1f\n", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null
      sleep "$SAMPLE_EVERY"
  done > "$work/rss_samples.txt" ) &
sampler=$!

# in the background, so that a signal to this script runs its traps at once
SOAK_MANIFEST="$work/manifest.lua" SOAK_RESULT="$work/lua_result.txt" \
    wrk -t "$SOAK_THREADS" -c "$SOAK_THREADS" -d "${SOAK_SECONDS}s" --timeout 10s --latency \
        -s "$here/mix.lua" "$url" > "$work/wrk.out" 2>&1 &
wrk_pid=$!
wait "$wrk_pid"
wrk_rc=$?
wrk_pid=""
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null; sampler=""
cat "$work/wrk.out"
num rss_end_kb "$(status_kb VmRSS)"
sleep "$SOAK_IDLE"
num rss_idle_kb "$(status_kb VmRSS)"
num hwm_kb "$(status_kb VmHWM)"
num seconds "$SOAK_SECONDS"
num threads "$SOAK_THREADS"
num idle_seconds "$SOAK_IDLE"
num rss_slack_mb "$SOAK_RSS_SLACK_MB"
num sample_every "$SAMPLE_EVERY"
num rss_samples "$(paste -sd' ' "$work/rss_samples.txt")"
num wrk_rc "$wrk_rc"

if kill -0 "$pid" 2>/dev/null; then num alive yes; else num alive no; fi
if "$PYTHON" "$here/soak.py" verify "$url" "$work"; then num verify ok; else num verify differs; fi

kill -TERM "$pid"
code=timeout
for _ in $(seq 100); do
    if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; code=$?; break; fi
    sleep 0.1
done
[ "$code" = timeout ] || pid=""
num exit_code "$code"
tail -n 2 "$work/attnd.stderr"

"$PYTHON" "$here/soak.py" report "$work"
rc=$?
[ "$wrk_rc" = 0 ] || { echo "soak: wrk exited $wrk_rc" >&2; rc=1; }
if [ "$rc" = 0 ] && [ "${SOAK_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
else
    echo "soak: details (access log, wrk output, numbers) in $work"
fi
exit $rc

#!/usr/bin/env bash
# bench/ab.sh -- interleaved A/B of attnd builds on the small case, with
# nginx (the HTTP ceiling) in the same series.  Not part of `make test`.
#
#   bash bench/ab.sh [-r ROUNDS] [-s SECONDS] NAME=BINARY[,ARG...] ...
#   e.g. bash bench/ab.sh -r 7 -s 3 old=/tmp/attnd-old new=build/attnd \
#            new1=build/attnd,--threads,1
#
# Each binary runs as its own server for the whole series; every round runs
# wrk -t2 -c32 (keep-alive, POST /bow with the small body, as `make bench`
# does) against each server in turn and nginx, the order rotating by one
# each round, so that slow phases of a shared machine hit every server
# alike.  Per server it prints medians over
# the rounds of: req/s, req/s over nginx's in the same round, and CPU per
# request -- the server's (user and sys, from /proc/PID/stat over the run,
# all threads or worker processes) and wrk's.  CPU per request changes far
# less with load from other processes than req/s does, so it is the number
# to compare on a busy machine; req/s over nginx is the one the target uses.
#
# Needs wrk and nginx (`make bench-deps`), PYTHON (default /usr/bin/python3);
# with AB_PERF=1, uses perf (if it can count syscall tracepoints) for the
# last two columns.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/bench
# shellcheck source=bench/nginx_conf.sh
. "$HERE/nginx_conf.sh"
OUT=${BENCH_OUT:-$ROOT/build/bench}/ab
PYTHON=${PYTHON:-/usr/bin/python3}
ROUNDS=5 SECS=3
while getopts r:s: o; do
    case $o in r) ROUNDS=$OPTARG ;; s) SECS=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
for tool in wrk nginx "$PYTHON"; do
    command -v "$tool" >/dev/null || { echo "ab: $tool not found" >&2; exit 1; }
done
mkdir -p "$OUT/nginx/tmp"
OUT=$(cd "$OUT" && pwd)

STARTED=()
CLIENT=
cleanup() {
    local pid _
    [ -n "$CLIENT" ] && { kill -TERM "$CLIENT" 2>/dev/null || true; }
    for pid in "${STARTED[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

"$PYTHON" "$HERE/gen_bodies.py" "$OUT" >/dev/null
BODY=$OUT/small.json

NAMES=() PORTS=() PIDS=()
for spec in "$@"; do
    name=${spec%%=*} rest=${spec#*=}
    IFS=, read -r -a cmd <<<"$rest"
    port=$(free_port)
    setsid env OMP_WAIT_POLICY=PASSIVE "${cmd[@]}" --host 127.0.0.1 \
        --port "$port" >"$OUT/$name.log" 2>&1 </dev/null &
    STARTED+=("$!") NAMES+=("$name") PORTS+=("$port") PIDS+=("$!")
done
for i in "${!NAMES[@]}"; do
    "$PYTHON" "$HERE/probe.py" wait "${PORTS[$i]}" 20 || {
        echo "ab: ${NAMES[$i]} did not start:" >&2; cat "$OUT/${NAMES[$i]}.log" >&2; exit 1; }
done

# nginx answers with the first server's own response: the same bytes.
"$PYTHON" "$HERE/probe.py" post "${PORTS[0]}" /bow "$BODY" "$OUT/resp.json" >/dev/null
N_PORT=$(free_port)
NGX=$OUT/nginx
nginx_conf "$NGX" "$N_PORT" "$(cat "$OUT/resp.json")" || exit 1
setsid nginx -p "$NGX/" -e "$NGX/error.log" -c "$NGX/nginx.conf" \
    >"$NGX/stderr.log" 2>&1 </dev/null &
STARTED+=("$!") NAMES+=(nginx) PORTS+=("$N_PORT") PIDS+=("$!")
"$PYTHON" "$HERE/probe.py" wait "$N_PORT" 20

# CPU ticks (user sys) of a process group: the server and all its threads
# or worker processes.
ticks() {
    local pid
    for pid in $(pgrep -g "$1"); do cat "/proc/$pid/stat" 2>/dev/null; done |
        awk '{ sub(/^.*\) /, ""); u += $12; s += $13 } END { print u + 0, s + 0 }'
}

# With perf and its syscall tracepoints (Debian's linux-perf, as root),
# system calls and context switches per request are counted too: exact
# counts, unlike times, do not care what else runs.
# Off by default: counting costs each system call a little, and nginx makes
# more of them per unit of work than attnd, so it tilts the req/s ratio
# (two 7-round series of the same build back to back: 0.724x with
# counting, 0.681x without).
PERF=no
[ "${AB_PERF:-0}" = 1 ] &&
    perf stat -e raw_syscalls:sys_enter,context-switches -o /dev/null -- true \
        >/dev/null 2>&1 && PERF=yes
HZ=$(getconf CLK_TCK)
RES=$OUT/rounds.txt
: >"$RES"
NS=${#NAMES[@]}
for r in $(seq "$ROUNDS"); do
    for j in $(seq 0 $((NS - 1))); do
        i=$(( (j + r - 1) % NS ))     # each round starts one server later
        read -r u0 s0 < <(ticks "${PIDS[$i]}")
        PERFPID=
        if [ "$PERF" = yes ]; then
            perf stat -x, -e raw_syscalls:sys_enter,context-switches \
                -p "$(pgrep -g "${PIDS[$i]}" | paste -sd,)" -o "$OUT/perf.txt" &
            PERFPID=$!
            STARTED+=("$PERFPID")
            sleep 0.2           # perf attaches before the run starts
        fi
        WRK_BODY=$BODY /usr/bin/time -f '%U %S' -o "$OUT/wrk.time" \
            wrk -t2 -c32 -d"${SECS}s" -s "$HERE/post.lua" \
            "http://127.0.0.1:${PORTS[$i]}/bow" >"$OUT/wrk.txt" 2>&1 &
        CLIENT=$!
        wait "$CLIENT"
        CLIENT=
        read -r u1 s1 < <(ticks "${PIDS[$i]}")
        sc=0 cs=0
        if [ -n "$PERFPID" ]; then
            kill -INT "$PERFPID"
            wait "$PERFPID" 2>/dev/null || true
            unset 'STARTED[-1]'
            sc=$(awk -F, '$3 ~ /sys_enter/ { print $1 }' "$OUT/perf.txt")
            cs=$(awk -F, '$3 ~ /context-switches/ { print $1 }' "$OUT/perf.txt")
        fi
        read -r wu ws <"$OUT/wrk.time"
        line=$(grep '^WRKRESULT' "$OUT/wrk.txt")
        n=$(sed 's/.* requests=\([0-9]*\).*/\1/' <<<"$line")
        rps=$(sed 's/.* rps=\([0-9.]*\).*/\1/' <<<"$line")
        errs=$(awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] ~ /^(connect|read|write|status|timeout)$/) e += kv[2] } } END { print e + 0 }' <<<"$line")
        echo "$r ${NAMES[$i]} $rps $n $((u1 - u0)) $((s1 - s0)) $wu $ws $errs ${sc:-0} ${cs:-0}" >>"$RES"
        printf '[ab] round %d %-10s %8.0f req/s  %s errors\n' "$r" "${NAMES[$i]}" "$rps" "$errs" >&2
    done
done

echo
echo "$ROUNDS rounds of wrk -t2 -c32 -d${SECS}s each, POST /bow small body; medians over rounds; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| server | req/s | / nginx (same round) | server CPU µs/req user + sys | wrk CPU µs/req | server syscalls/req | server context switches/req | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
awk -v hz="$HZ" -v perf=$([ "$PERF" = yes ] && echo 1 || echo 0) '
    { round[NR] = $1; name[NR] = $2; rps[NR] = $3; n = $4
      su[NR] = $5 / hz * 1e6 / n; ss[NR] = $6 / hz * 1e6 / n
      wt[NR] = ($7 + $8) * 1e6 / n; err[$2] += $9
      sc[NR] = $10 / n; cs[NR] = $11 / n
      if ($2 == "nginx") ngx[$1] = $3
      if (!($2 in seen)) { seen[$2] = 1; order[++k] = $2 } }
    function med(a, who,   i, m, x, t, j) {
        m = 0
        for (i = 1; i <= NR; i++) if (name[i] == who) x[++m] = a[i]
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
            if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
        return m % 2 ? x[(m + 1) / 2] : (x[m / 2] + x[m / 2 + 1]) / 2 }
    END {
        for (i = 1; i <= NR; i++) ratio[i] = rps[i] / ngx[round[i]]
        for (j = 1; j <= k; j++) {
            w = order[j]
            printf "| %s | %.0f | %.3f | %.2f + %.2f = %.2f | %.2f | %s | %s | %d |\n", w,
                med(rps, w), med(ratio, w), med(su, w), med(ss, w),
                med(su, w) + med(ss, w), med(wt, w),
                perf ? sprintf("%.2f", med(sc, w)) : "—",
                perf ? sprintf("%.3f", med(cs, w)) : "—", err[w] } }' "$RES"

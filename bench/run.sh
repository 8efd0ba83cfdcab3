#!/usr/bin/env bash
# bench/run.sh -- `make bench`, attnd's yardstick.  Not part of `make test`.
#
# Starts attnd, an nginx "HTTP ceiling" and the FastAPI+PyTorch reference
# peer on free 127.0.0.1 ports, drives them with wrk (bench/post.lua POSTs a
# body file), runs the engine without HTTP against PyTorch, and prints one
# table, also written to build/bench/results.md.  Targets are reported as
# ratios measured in this same run; nothing here asserts a time.
#
# `make bench` builds what this needs and installs the Debian packages
# (wrk nginx-light python3-torch python3-fastapi uvicorn).  Knobs, all
# optional (the Makefile passes the first five):
#   ATTND_BIN      attnd binary              default build/attnd
#   ENGINE_BENCH   engine_bench binary       default build/bench/engine_bench
#   PYTHON         Debian's python with torch default /usr/bin/python3
#   PEERS_DIR      folder of torch_service.py default ../shared/peers
#   BENCH_OUT      output folder             default build/bench
#   BENCH_SECONDS  seconds per wrk throughput run          default 10
#   BENCH_LARGE_SECONDS  seconds per large latency run     default 15
#   BENCH_SMALL_ROUNDS  attnd/nginx turns on the small case   default 3
#   ATTND_THREADS  attnd's --threads         default: attnd's (the cores)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BENCH_OUT:-$ROOT/build/bench}
ATTND_BIN=${ATTND_BIN:-$ROOT/build/attnd}
ENGINE_BENCH=${ENGINE_BENCH:-$OUT/engine_bench}
PYTHON=${PYTHON:-/usr/bin/python3}
PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/peers}
SECS=${BENCH_SECONDS:-10}
SMALL_ROUNDS=${BENCH_SMALL_ROUNDS:-3}
LARGE_SECS=${BENCH_LARGE_SECONDS:-15}
HERE=$ROOT/bench
# shellcheck source=bench/nginx_conf.sh
. "$HERE/nginx_conf.sh"
PROBE="$PYTHON $HERE/probe.py"

LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ -d "$PEERS_DIR" ] || {
    echo "bench: no peer folder at $PEERS_DIR (set PEERS_DIR=...)" >&2; exit 1; }
PEERS_DIR=$(cd "$PEERS_DIR" && pwd)
[ -f "$PEERS_DIR/torch_service.py" ] || {
    echo "bench: $PEERS_DIR/torch_service.py is missing (set PEERS_DIR=...)" >&2
    exit 1; }
for tool in wrk nginx "$ATTND_BIN" "$ENGINE_BENCH" "$PYTHON"; do
    command -v "$tool" >/dev/null || {
        echo "bench: $tool not found (run it through make bench)" >&2
        exit 1; }
done

log() { printf '[bench] %s\n' "$*" >&2; }

# ==== processes: start in their own session, stop by pid on any exit ====

STARTED=()
start() {               # start NAME LOGFILE CMD...  -> sets $PID
    local name=$1 logf=$2; shift 2
    # setsid: the server leads a new process group whose id is its pid, so
    # stopping it also stops the workers it forks (uvicorn, nginx) and
    # nothing else.
    setsid "$@" >"$logf" 2>&1 </dev/null &
    PID=$!
    STARTED+=("$PID")
    log "started $name (pid $PID): $*"
}

stop() {                # stop PID: TERM its group, KILL it after 10 s
    local pid=$1 _
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# A client (wrk, the engine runs) runs in the background while the script
# waits for it, so that a signal stops the run at once, not when it ends.
CLIENT=
run_client() {          # run_client CMD...  (redirect as for a command)
    "$@" &
    CLIENT=$!
    local rc=0
    wait "$CLIENT" || rc=$?
    CLIENT=
    return "$rc"
}

cleanup() {
    local pid
    if [ -n "$CLIENT" ]; then
        kill -TERM "$CLIENT" 2>/dev/null || true
        wait "$CLIENT" 2>/dev/null || true
    fi
    for pid in "${STARTED[@]}"; do stop "$pid"; done
    STARTED=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_up() {             # wait_up NAME PID PORT SECONDS
    local name=$1 pid=$2 port=$3 secs=$4 logf=$5
    if ! $PROBE wait "$port" "$secs" || ! kill -0 "$pid" 2>/dev/null; then
        log "$name did not come up on port $port; its log:"
        tail -n 30 "$logf" >&2 || true
        exit 1
    fi
}

# ==== numbers ====

declare -A R            # results: R[key]=value

status_kib() {          # status_kib PID FIELD  (VmRSS, VmHWM) in KiB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# Reset attnd's VmHWM to its current RSS (Linux clear_refs 5) so that each
# run's peak is its own; if the kernel refuses, peaks are cumulative.
HWM_RESET=yes
reset_hwm() {
    echo 5 2>/dev/null >"/proc/$1/clear_refs" || HWM_RESET=no
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# run_wrk KEY PORT PATH BODY THREADS CONNS SECONDS TIMEOUT [ATTND_PID]
run_wrk() {
    local key=$1 port=$2 path=$3 body=$4 thr=$5 conns=$6 secs=$7 tmo=$8
    local pid=${9:-} file="$OUT/wrk-$1.txt" kv
    if [ -n "$pid" ]; then
        reset_hwm "$pid"
        R[${key}_idle]=$(status_kib "$pid" VmRSS)
    fi
    log "wrk $key: -t$thr -c$conns -d${secs}s POST $path $(basename "$body")"
    run_client env WRK_BODY="$body" wrk -t"$thr" -c"$conns" -d"${secs}s" --timeout "$tmo" \
        --latency -s "$HERE/post.lua" "${WRK_SCHEME:-http}://127.0.0.1:$port$path" \
        >"$file" 2>&1 || { log "wrk failed:"; cat "$file" >&2; exit 1; }
    if [ -n "$pid" ]; then
        kill -0 "$pid" 2>/dev/null || { log "attnd died during $key"; exit 1; }
        R[${key}_hwm]=$(status_kib "$pid" VmHWM)
    fi
    local line
    line=$(grep '^WRKRESULT' "$file") || { log "no result in $file"; exit 1; }
    for kv in ${line#WRKRESULT }; do R[${key}_${kv%%=*}]=${kv#*=}; done
    R[${key}_errors]=$(( R[${key}_connect] + R[${key}_read] + \
        R[${key}_write] + R[${key}_status] + R[${key}_timeout] ))
    log "  $(calc '%.1f' "${R[${key}_rps]}") req/s, p50 $(calc '%.2f' \
"${R[${key}_p50_us]}/1000") ms, p99 $(calc '%.2f' "${R[${key}_p99_us]}/1000") ms, \
${R[${key}_requests]} requests, ${R[${key}_errors]} errors"
}

median() {              # median NUMBER...
    printf '%s\n' "$@" | sort -g |
        awk '{ a[NR] = $1 } END { print NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# merge_rounds KEY: KEY_1 .. KEY_n (SMALL_ROUNDS runs) -> KEY: medians of
# req/s and latencies, totals of requests and errors, the highest peak RSS
# and the first idle RSS.
merge_rounds() {
    local k=$1 f i v
    for f in rps p50_us p99_us; do
        v=()
        for i in $(seq "$SMALL_ROUNDS"); do v+=("${R[${k}_${i}_$f]}"); done
        R[${k}_$f]=$(median "${v[@]}")
    done
    R[${k}_requests]=0 R[${k}_errors]=0
    for i in $(seq "$SMALL_ROUNDS"); do
        R[${k}_requests]=$(( R[${k}_requests] + R[${k}_${i}_requests] ))
        R[${k}_errors]=$(( R[${k}_errors] + R[${k}_${i}_errors] ))
        if [ -n "${R[${k}_${i}_hwm]:-}" ]; then
            [ "$i" = 1 ] && R[${k}_idle]=${R[${k}_1_idle]} R[${k}_hwm]=0
            [ "${R[${k}_${i}_hwm]}" -gt "${R[${k}_hwm]}" ] && R[${k}_hwm]=${R[${k}_${i}_hwm]}
        fi
    done
    return 0
}
SMALL_RATIOS=()

# Two-core check: the same busy loop once alone, then two at once.  2.00
# means the two cores each ran at full speed; 1.00 means the host gave this
# machine one core's worth (seen here: its vCPUs share the host with others),
# and then no 1 -> 2 thread speed-up can show.
spin() { awk 'BEGIN { for (i = 0; i < 4e7; i++) s += i }'; }
core_check() {
    local TIMEFORMAT=%R one two sp
    one=$( { time spin; } 2>&1 )
    two=$( { time { spin & sp=$!; spin; wait "$sp"; }; } 2>&1 )
    calc '%.2f' "2*$one/$two"
}
R[cores_start]=$(core_check)
log "two-core check: two busy loops ran at ${R[cores_start]}x one loop's throughput"

# ==== bodies, servers ====

log "bodies -> $OUT"
"$PYTHON" "$HERE/gen_bodies.py" "$OUT" >&2
SMALL=$OUT/small.json MEDIUM=$OUT/medium.json LARGE=$OUT/large.json

A_PORT=$(free_port)
start attnd "$OUT/attnd.log" env OMP_WAIT_POLICY=PASSIVE "$ATTND_BIN" \
    --host 127.0.0.1 --port "$A_PORT" ${ATTND_THREADS:+--threads "$ATTND_THREADS"}
A_PID=$PID
P_PORT=$(free_port)
start peer "$OUT/peer.log" "$PYTHON" -m uvicorn --app-dir "$PEERS_DIR" \
    torch_service:app --host 127.0.0.1 --port "$P_PORT" --workers 2 \
    --log-level warning
P_PID=$PID
wait_up attnd "$A_PID" "$A_PORT" 20 "$OUT/attnd.log"
R[attnd_idle_start]=$(status_kib "$A_PID" VmRSS)

# nginx answers /bow with attnd's own response to the small body: a fixed
# body of the same size.
$PROBE post "$A_PORT" /bow "$SMALL" "$OUT/resp-small-attnd.json" >/dev/null
NGX=$OUT/nginx
N_PORT=$(free_port)
nginx_conf "$NGX" "$N_PORT" "$(cat "$OUT/resp-small-attnd.json")" || exit 1
start nginx "$NGX/stderr.log" nginx -p "$NGX/" -e "$NGX/error.log" \
    -c "$NGX/nginx.conf"
N_PID=$PID
wait_up nginx "$N_PID" "$N_PORT" 20 "$NGX/stderr.log"
wait_up peer "$P_PID" "$P_PORT" 60 "$OUT/peer.log"

# One request each: checks 200 and that attnd and the peer agree, and warms
# both up (the peer's first torch call is slow).
log "checking responses"
$PROBE post "$N_PORT" /bow "$SMALL" "$OUT/resp-small-nginx.json" >&2
for c in small:/bow medium:/attention large:/attention; do
    name=${c%%:*} path=${c#*:}
    $PROBE post "$A_PORT" "$path" "$OUT/$name.json" \
        "$OUT/resp-$name-attnd.json" >&2
    $PROBE post "$P_PORT" "$path" "$OUT/$name.json" \
        "$OUT/resp-$name-peer.json" >&2
    R[${name}_agree]=$($PROBE agree "$OUT/resp-$name-attnd.json" \
        "$OUT/resp-$name-peer.json") || true
    log "  $name: attnd vs peer: ${R[${name}_agree]}"
    R[${name}_in]=$(stat -c %s "$OUT/$name.json")
    R[${name}_out_attnd]=$(stat -c %s "$OUT/resp-$name-attnd.json")
    R[${name}_out_peer]=$(stat -c %s "$OUT/resp-$name-peer.json")
done
R[small_out_nginx]=$(stat -c %s "$OUT/resp-small-nginx.json")

# ==== 1-3: HTTP ====

# Small: attnd and nginx take turns SMALL_ROUNDS times, so that a slow
# phase of a shared host (req/s moves by +-20% between runs here) hits
# both; the target is the median of the per-round ratios, and each row
# shows medians (requests and errors: totals).
for i in $(seq "$SMALL_ROUNDS"); do
    run_wrk "small_attnd_$i" "$A_PORT" /bow "$SMALL" 2 32 "$SECS" 10s "$A_PID"
    run_wrk "small_nginx_$i" "$N_PORT" /bow "$SMALL" 2 32 "$SECS" 10s
    SMALL_RATIOS+=("$(calc '%.4f' "${R[small_attnd_${i}_rps]}/${R[small_nginx_${i}_rps]}")")
done
merge_rounds small_attnd
merge_rounds small_nginx

# Small over TLS (keep-alive: one handshake per connection): attnd with
# --tls-cert/--tls-key and nginx with the same certificate and TLS
# versions, taking turns as above.
TLSD=$OUT/tls
mkdir -p "$TLSD"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$TLSD/key.pem" -out "$TLSD/cert.pem" 2>/dev/null
AT_PORT=$(free_port)
start attnd_tls "$OUT/attnd-tls.log" env OMP_WAIT_POLICY=PASSIVE "$ATTND_BIN" \
    --host 127.0.0.1 --port "$AT_PORT" --tls-cert "$TLSD/cert.pem" \
    --tls-key "$TLSD/key.pem" ${ATTND_THREADS:+--threads "$ATTND_THREADS"}
AT_PID=$PID
NGXT=$OUT/nginx-tls
NT_PORT=$(free_port)
nginx_conf "$NGXT" "$NT_PORT" "$(cat "$OUT/resp-small-attnd.json")" \
    "$TLSD/cert.pem" "$TLSD/key.pem" || exit 1
start nginx_tls "$NGXT/stderr.log" nginx -p "$NGXT/" -e "$NGXT/error.log" \
    -c "$NGXT/nginx.conf"
NT_PID=$PID
sleep 1
kill -0 "$AT_PID" && kill -0 "$NT_PID" || { log "a TLS server did not start"; exit 1; }
WRK_SCHEME=https
SMALL_TLS_RATIOS=()
for i in $(seq "$SMALL_ROUNDS"); do
    run_wrk "small_attnd_tls_$i" "$AT_PORT" /bow "$SMALL" 2 32 "$SECS" 10s "$AT_PID"
    run_wrk "small_nginx_tls_$i" "$NT_PORT" /bow "$SMALL" 2 32 "$SECS" 10s
    SMALL_TLS_RATIOS+=("$(calc '%.4f' "${R[small_attnd_tls_${i}_rps]}/${R[small_nginx_tls_${i}_rps]}")")
done
WRK_SCHEME=http
merge_rounds small_attnd_tls
merge_rounds small_nginx_tls
stop "$AT_PID"
stop "$NT_PID"
run_wrk small_peer "$P_PORT" /bow "$SMALL" 2 32 "$SECS" 10s
run_wrk medium_attnd "$A_PORT" /attention "$MEDIUM" 2 32 "$SECS" 10s "$A_PID"
run_wrk medium_peer "$P_PORT" /attention "$MEDIUM" 2 32 "$SECS" 10s
# Large: one connection, requests back to back; p50 = median latency.
run_wrk large_attnd "$A_PORT" /attention "$LARGE" 1 1 "$LARGE_SECS" 60s "$A_PID"
run_wrk large_peer "$P_PORT" /attention "$LARGE" 1 1 "$LARGE_SECS" 60s

cleanup                 # free the cores for the engine runs

# ==== 4: engine ====

R[cores_engine]=$(core_check)
log "two-core check: ${R[cores_engine]}x"
# One process per thread count on the torch side: Debian's torch calls the
# generic libblas.so.3 (OpenBLAS here), whose threads only
# OPENBLAS_NUM_THREADS sets; engine_torch.py sets torch.set_num_threads to
# the same count.
ENG=$OUT/engine.txt
: >"$ENG"
torch_run() {           # torch_run WHAT THREADS
    run_client env OPENBLAS_NUM_THREADS="$2" OMP_NUM_THREADS="$2" \
        "$PYTHON" "$HERE/engine_torch.py" "$1" "$2" >>"$ENG"
}
log "engine: the ceiling, OpenBLAS sgemm n=2048 (torch.mm and numpy), 1 and 2 threads"
torch_run ceiling 1
torch_run ceiling 2
for c in a b c d; do
    log "engine case $c: attnd (engine_bench) and torch, 1 and 2 threads"
    run_client env OMP_WAIT_POLICY=PASSIVE "$ENGINE_BENCH" "$c" 1 2 >>"$ENG"
    torch_run "$c" 1
    torch_run "$c" 2
done
while read -r tag rest; do
    cn=''
    for kv in $rest; do [ "${kv%%=*}" = case ] && cn=${kv#*=}; done
    case $tag in
    CORES)              # CORES case=C threads=N cores=X
        read -r _ c_thr c_cores <<<"$rest"
        R[eng_cores_${cn}_${c_thr#threads=}]=${c_cores#cores=} ;;
    CEILING)            # CEILING threads=N torch_gflops=.. numpy_gflops=..
        thr=''
        for kv in $rest; do [ "${kv%%=*}" = threads ] && thr=${kv#*=}; done
        for kv in $rest; do R[ceil_${thr}_${kv%%=*}]=${kv#*=}; done ;;
    ENGINE)             # ENGINE case=C impl=I threads=N key=value...
        impl='' thr=''
        for kv in $rest; do
            case $kv in impl=*) impl=${kv#*=} ;; threads=*) thr=${kv#*=} ;; esac
        done
        for kv in $rest; do R[eng_${cn}_${impl}_${thr}_${kv%%=*}]=${kv#*=}; done ;;
    esac
done <"$ENG"
cat "$ENG" >&2
R[cores_end]=$(core_check)
log "two-core check: ${R[cores_end]}x"
# The ceiling: the better of torch.mm and numpy.matmul, both on this BLAS.
for n in 1 2; do
    R[ceil_$n]=$(awk -v a="${R[ceil_${n}_torch_gflops]}" \
        -v b="${R[ceil_${n}_numpy_gflops]}" 'BEGIN { printf "%.1f", (a > b ? a : b) }')
done
BLAS=${R[ceil_1_blas]:-?}
BLAS_PKG=$(for f in ${BLAS//,/ }; do dpkg -S "$f" 2>/dev/null | cut -d: -f1; done |
    sort -u | paste -sd, -) || true

# ==== the table ====

ms() { calc '%.2f' "$1/1000"; }
rps() { calc '%.0f' "$1"; }
rss_cell() {            # attnd's idle -> peak for run KEY
    local k=$1
    printf '%s → %s MiB (+%s)' "$(mib "${R[${k}_idle]}")" \
        "$(mib "${R[${k}_hwm]}")" "$(mib $(( R[${k}_hwm] - R[${k}_idle] )))"
}
http_row() {            # http_row CASE SERVER KEY [attnd]
    local k=$3 rss="—"
    [ -n "${4:-}" ] && rss=$(rss_cell "$k")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" \
        "$(rps "${R[${k}_rps]}")" "$(ms "${R[${k}_p50_us]}")" \
        "$(ms "${R[${k}_p99_us]}")" "${R[${k}_requests]}" \
        "${R[${k}_errors]}" "$rss"
}
eng_row() {             # eng_row CASE THREADS LABEL
    local p=eng_$1_attnd_$2 t=eng_$1_torch_$2
    printf '| %s | %s | %s (%s–%s) | %s | %s%% | %s (%s–%s) | %sx | %s | %s |\n' \
        "$3" "$2" "${R[${p}_p50_ms]}" "${R[${p}_min_ms]}" "${R[${p}_max_ms]}" \
        "$(calc '%.1f' "${R[${p}_gflops]}")" \
        "$(calc '%.0f' "100*${R[${p}_gflops]}/${R[ceil_1]}")" \
        "${R[${t}_p50_ms]}" "${R[${t}_min_ms]}" "${R[${t}_max_ms]}" \
        "$(calc '%.2f' "${R[${t}_p50_ms]}/${R[${p}_p50_ms]}")" \
        "$(mib "${R[${p}_vmhwm_kib]}")" "$(mib "${R[${t}_vmhwm_kib]}")"
}
scaling_note() {        # a miss while the machine itself gave < 1.7 cores
    # the ALU loop between the engine calls, and the two-core checks just
    # before and after the engine runs: the lowest of them
    awk -v s="$r_scale" -v a="${R[eng_cores_b_2]}" -v b="${R[cores_engine]}" \
        -v e="${R[cores_end]}" 'BEGIN {
        c = ""; n = split(a " " b " " e, v, " ")
        for (i = 1; i <= n; i++)
            if (v[i] != "?" && v[i] != "" && (c == "" || v[i] + 0 < c + 0)) c = v[i]
        if (s < 1.8 && c != "" && c + 0 < 1.8)
            printf " (inconclusive: the host gave %s cores'"'"' worth)", c }'
}
verdict() {             # verdict VALUE OP GOAL
    if awk -v v="$1" -v g="$3" "BEGIN { exit !(v $2 g) }"; then
        echo meets; else echo "**misses**"; fi
}

r_small=$(calc '%.2f' "$(median "${SMALL_RATIOS[@]}")")
r_small_rounds=$(printf '%.2f, ' "${SMALL_RATIOS[@]}")
r_small_peer=$(calc '%.1f' "${R[small_attnd_rps]}/${R[small_peer_rps]}")
r_medium_peer=$(calc '%.1f' "${R[medium_attnd_rps]}/${R[medium_peer_rps]}")
r_large=$(calc '%.1f' "${R[large_peer_p50_us]}/${R[large_attnd_p50_us]}")
r_eng1=$(calc '%.2f' "${R[eng_a_torch_1_p50_ms]}/${R[eng_a_attnd_1_p50_ms]}")
r_ceil_a=$(calc '%.0f' "100*${R[eng_a_attnd_1_gflops]}/${R[ceil_1]}")
r_ceil_c=$(calc '%.0f' "100*${R[eng_c_attnd_1_gflops]}/${R[ceil_1]}")
r_scale=$(calc '%.2f' "${R[eng_b_attnd_1_p50_ms]}/${R[eng_b_attnd_2_p50_ms]}")
r_tscale=$(calc '%.2f' "${R[eng_b_torch_1_p50_ms]}/${R[eng_b_torch_2_p50_ms]}")
r_rss=$(calc '%.2f' "(${R[large_attnd_hwm]}-${R[large_attnd_idle]})*1024/${R[large_in]}")

{
    echo "# attnd benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || echo '+dirty'), $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), load average before: ${LOAD_BEFORE:-$(cut -d' ' -f1-3 /proc/loadavg)}."
    echo "wrk, nginx, the peer and attnd share these cores. Throughput runs: wrk -t2 -c32 -d${SECS}s keep-alive (small: attnd and nginx take ${SMALL_ROUNDS} turns each; their rows give medians, requests and errors in total, and the target the median of the per-turn ratios); large: wrk -t1 -c1 -d${LARGE_SECS}s (requests back to back)."
    echo "Bodies: small ${R[small_in]} B in (attnd ${R[small_out_attnd]} B out, nginx ${R[small_out_nginx]} B, peer ${R[small_out_peer]} B); medium ${R[medium_in]} B in (attnd ${R[medium_out_attnd]} B out, peer ${R[medium_out_peer]} B); large ${R[large_in]} B in (attnd ${R[large_out_attnd]} B out, peer ${R[large_out_peer]} B)."
    echo "Two-core check (two busy loops at once vs one; 2.00 = two full cores, 1.00 = one core's worth): ${R[cores_start]}x at the start, ${R[cores_engine]}x before the engine runs, ${R[cores_end]}x after them."
    echo "attnd vs peer answers: small ${R[small_agree]}; medium ${R[medium_agree]}; large ${R[large_agree]}."
    echo "attnd peak RSS: VmHWM after the run, idle = VmRSS before it$( [ "$HWM_RESET" = yes ] && echo ', VmHWM reset before each run (clear_refs 5)' || echo '; VmHWM could not be reset, so peaks are cumulative')."
    echo
    echo "| case | server | req/s | p50 ms | p99 ms | requests | errors | attnd RSS idle → peak |"
    echo "|---|---|---:|---:|---:|---:|---:|---|"
    http_row "1 small /bow B4 T8 C2" attnd small_attnd attnd
    http_row "1 small /bow B4 T8 C2" "nginx (fixed body)" small_nginx
    http_row "1 small /bow B4 T8 C2" "peer (FastAPI+torch)" small_peer
    http_row "1 small /bow over TLS" "attnd --tls-cert" small_attnd_tls attnd
    http_row "1 small /bow over TLS" "nginx (fixed body, same cert)" small_nginx_tls
    http_row "2 medium /attention B4 T8 C32 hs16" attnd medium_attnd attnd
    http_row "2 medium /attention B4 T8 C32 hs16" "peer (FastAPI+torch)" medium_peer
    http_row "3 large /attention B8 T256 C64 hs64" attnd large_attnd attnd
    http_row "3 large /attention B8 T256 C64 hs64" "peer (FastAPI+torch)" large_peer
    echo
    echo "Engine, no HTTP: engine_attend (bench/engine_bench.c) against PyTorch ${R[eng_a_torch_1_torch]} doing the same ops (bench/engine_torch.py), each thread count in turn. GFLOP/s counts only the work that must be done: the projections, q·kᵀ and weights·v over the pairs a query sees (the causal half once), at the p50 time, for both sides. PyTorch runs on ${BLAS} (${BLAS_PKG:-?}), OPENBLAS_NUM_THREADS = torch.set_num_threads = the thread count. Ceiling: OpenBLAS sgemm n=2048, 1 thread ${R[ceil_1]} GFLOP/s, 2 threads ${R[ceil_2]} GFLOP/s (torch.mm ${R[ceil_1_torch_gflops]} / ${R[ceil_2_torch_gflops]}, numpy ${R[ceil_1_numpy_gflops]} / ${R[ceil_2_numpy_gflops]}). attnd kernels: ${R[eng_a_attnd_1_kernel]}. Peak RSS: each process's VmHWM (inputs and outputs included). Between the attnd calls of case b a pure ALU loop on 2 threads got ${R[eng_cores_b_2]}x the throughput of 1 thread."
    echo
    echo "| engine case | threads | attnd p50 ms (min–max) | attnd GFLOP/s | % of 1-thr ceiling | PyTorch p50 ms (min–max) | attnd speed-up | attnd peak RSS MiB | PyTorch peak RSS MiB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for c in a b c d; do
        case $c in
        a) label="(a) B16 T512 hs64 causal, weights" ;;
        b) label="(b) B1 T8192 hs64 causal, out only" ;;
        c) label="(c) B4 T1024 H8 hs64 C512 causal, proj, out only" ;;
        d) label="(d) cross B4 T=S=1024 hs64, no mask, weights" ;;
        esac
        eng_row "$c" 1 "$label"
        eng_row "$c" 2 "$label"
    done
    echo
    echo "| target | measured | goal | verdict |"
    echo "|---|---:|---:|---|"
    echo "| small: attnd / nginx req/s (median of ${SMALL_ROUNDS} rounds: ${r_small_rounds%, }) | ${r_small}x | ≥ 0.6x | $(verdict "$r_small" '>=' 0.6) |"
    echo "| large: peer p50 / attnd p50 | ${r_large}x | ≥ 15x | $(verdict "$r_large" '>=' 15) |"
    echo "| engine (a): attnd / PyTorch+OpenBLAS, 1 thread | ${r_eng1}x | ≥ 3x | $(verdict "$r_eng1" '>=' 3) |"
    echo "| engine (a): useful GFLOP/s / 1-thread sgemm ceiling | ${r_ceil_a}% | ≥ 50% | $(verdict "$r_ceil_a" '>=' 50) |"
    echo "| engine (c): useful GFLOP/s / 1-thread sgemm ceiling | ${r_ceil_c}% | ≥ 50% | $(verdict "$r_ceil_c" '>=' 50) |"
    echo "| engine (b): attnd speed-up 1 → 2 threads (torch: ${r_tscale}x; a pure ALU loop between the same calls: ${R[eng_cores_b_2]}x) | ${r_scale}x | ≥ 1.8x | $(verdict "$r_scale" '>=' 1.8)$(scaling_note) |"
    echo "| large: attnd peak RSS above idle / request body | ${r_rss}x | ≤ 8x | $(verdict "$r_rss" '<=' 8) |"
    echo
    echo "For reference: small attnd / peer req/s ${r_small_peer}x; medium attnd / peer req/s ${r_medium_peer}x; small over TLS (keep-alive, same certificate, TLS 1.2+): attnd / nginx req/s $(calc '%.2f' "$(median "${SMALL_TLS_RATIOS[@]}")")x (rounds: $(printf '%.2f, ' "${SMALL_TLS_RATIOS[@]}" | sed 's/, $//')), attnd over TLS / attnd plain $(calc '%.2f' "${R[small_attnd_tls_rps]}/${R[small_attnd_rps]}")x."
} >"$OUT/results.md"

echo
cat "$OUT/results.md"
echo
echo "(written to ${OUT#"$ROOT"/}/results.md; raw wrk output in ${OUT#"$ROOT"/}/wrk-*.txt)"

# ==== 5: response compression (bench/compress.py, its own attnd) ====
# What gzip costs per answer (zlib levels 1-9: ratio, time, the link speed
# below which it pays) and attnd's req/s with and without Accept-Encoding;
# server/encoding.c's threshold and level were chosen from this table.
log "compression"
run_client "$PYTHON" "$HERE/compress.py" "$ATTND_BIN" "$OUT" >"$OUT/compress.md"
echo
cat "$OUT/compress.md"
echo "(written to ${OUT#"$ROOT"/}/compress.md)"

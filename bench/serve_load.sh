#!/usr/bin/env bash
# serve_load.sh [STEER] — load test of `steer serve` on loopback (docs/PERFORMANCE.md,
# "Server"), with the node load generator bench/serve_load.mjs (greedy, fixed
# max_tokens; every figure is generated tokens per second of wall time, over
# all streams):
#   1. stories260K, --parallel 8 --threads 1, 8 streams: steering none / same / different
#      (each stream its own vector at its own site and layer), interleaved,
#      ROUNDS times; ratios of medians different/same and same/none, of wall-clock
#      tok/s and of tokens per CPU-second of the server's forward passes (the
#      scheduler thread's CPU time, /metrics: robust to a loaded machine);
#   2. the bench model (BENCH_D, default 2048: steer make-random as in
#      scripts/bench.sh, bf16): --parallel 8 with 8 streams vs --parallel 1
#      with 1 stream, interleaved, ROUNDS times; throughput ratio and p50/p99.
# Env: SKIP_BENCH_MODEL (0; 1 = part 1 only), ROUNDS (3), TOKENS (200), BENCH_D (2048), BENCH_LAYERS (2), BENCH_TOKENS (32), THREADS (0 = all).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
STEER=${1:-$REPO/build/steer}
ROUNDS=${ROUNDS:-3}; TOKENS=${TOKENS:-200}; BENCH_D=${BENCH_D:-2048}; BENCH_LAYERS=${BENCH_LAYERS:-2}
BENCH_TOKENS=${BENCH_TOKENS:-32}; THREADS=${THREADS:-0}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} # a shared machine: no spinning threads
TMP=$(mktemp -d); PID=
trap '[ -n "$PID" ] && kill -TERM $PID 2>/dev/null; rm -rf "$TMP"' EXIT
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|f16c|avx512f|avx512_bf16)$' | tr '\n' ' ')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

start() { # MODEL PARALLEL THREADS
    "$STEER" serve -m "$1" --port 0 --parallel "$2" --threads "$3" 2>"$TMP/err" &
    PID=$!
    for _ in $(seq 300); do
        PORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$TMP/err" | sed 's/.*://' || true)
        [ -n "$PORT" ] && return 0
        sleep 0.1
    done
    echo "server did not start: $(cat "$TMP/err")"; exit 1
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=; }
load() { node "$REPO/bench/serve_load.mjs" "http://127.0.0.1:$PORT" "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$2'])" "$1"; }

echo "== 1. stories260K, --parallel 8 --threads 1, 8 streams x 8 requests x $TOKENS tokens"
start "$REPO/models/stories260K/stories260K.bin" 8 1
load none 8 1 8 64 5 >/dev/null # warm-up
for r in $(seq "$ROUNDS"); do
    for m in none same different; do
        o=$(load "$m" 8 8 "$TOKENS" 64 5); echo "  $o"
        field "$o" tok_s >>"$TMP/s1_$m"
        field "$o" tok_per_fwd_cpu_s >>"$TMP/c1_$m"
    done
done
stop
n=$(median <"$TMP/s1_none"); s=$(median <"$TMP/s1_same"); d=$(median <"$TMP/s1_different")
echo "  median tok/s: none $n, same $s, different $d"
echo "  ratio different/same = $(awk -v a="$d" -v b="$s" 'BEGIN{printf "%.3f", a/b}'), same/none = $(awk -v a="$s" -v b="$n" 'BEGIN{printf "%.3f", a/b}')"
n=$(median <"$TMP/c1_none"); s=$(median <"$TMP/c1_same"); d=$(median <"$TMP/c1_different")
echo "  median tok per forward-CPU-second: none $n, same $s, different $d"
echo "  ratio different/same = $(awk -v a="$d" -v b="$s" 'BEGIN{printf "%.3f", a/b}'), same/none = $(awk -v a="$s" -v b="$n" 'BEGIN{printf "%.3f", a/b}')"

[ "${SKIP_BENCH_MODEL:-0}" = 1 ] && exit 0
BM=$REPO/out/bench/random-$BENCH_D-bf16-L$BENCH_LAYERS.gguf
mkdir -p "$REPO/out/bench"
[ -f "$BM" ] || "$STEER" make-random -o "$BM" --d "$BENCH_D" --ff $((BENCH_D * 4)) --heads 32 --kv-heads 8 \
    --layers "$BENCH_LAYERS" --vocab 32000 --dtype bf16 >/dev/null
echo "== 2. bench model d=$BENCH_D, $BENCH_LAYERS layers, bf16: --parallel 8 (8 streams) vs --parallel 1 (1 stream), $BENCH_TOKENS tokens"
for r in $(seq "$ROUNDS"); do
    start "$BM" 1 "$THREADS"
    o=$(load none 1 2 "$BENCH_TOKENS" "$BENCH_D" "$BENCH_LAYERS"); echo "  p1: $o"; field "$o" tok_s >>"$TMP/p1"; field "$o" tok_per_fwd_cpu_s >>"$TMP/q1"
    stop
    start "$BM" 8 "$THREADS"
    o=$(load none 8 2 "$BENCH_TOKENS" "$BENCH_D" "$BENCH_LAYERS"); echo "  p8: $o"; field "$o" tok_s >>"$TMP/p8"; field "$o" tok_per_fwd_cpu_s >>"$TMP/q8"
    field "$o" p50_s >>"$TMP/p8_50"; field "$o" p99_s >>"$TMP/p8_99"
    stop
done
a=$(median <"$TMP/p1"); b=$(median <"$TMP/p8")
echo "  median tok/s: parallel 1 $a, parallel 8 $b; ratio $(awk -v a="$b" -v b="$a" 'BEGIN{printf "%.2f", a/b}')"
a=$(median <"$TMP/q1"); b=$(median <"$TMP/q8")
echo "  median tok per forward-CPU-second (meaningful with THREADS=1): parallel 1 $a, parallel 8 $b; ratio $(awk -v a="$b" -v b="$a" 'BEGIN{printf "%.2f", a/b}')"
echo "  parallel 8 latency per request: p50 $(median <"$TMP/p8_50") s, p99 $(median <"$TMP/p8_99") s"

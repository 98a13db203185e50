#!/usr/bin/env bash
# bench_vs_llamacpp.sh MODEL.gguf... [-r ROUNDS (5)] [-t THREADS (2)] [-p N (128)] [-n N (32)]
#
# steer and llama.cpp side by side on the same GGUF files: ROUNDS interleaved
# rounds, each running `steer bench -o json -r 1` and the shared
# `llama-bench -o json -r 1` (same -p/-n/-t; each does its own warm-up run) on
# every model, the two in alternating order from one round to the next. Then,
# per model and metric (ppP, tgN): min/median/max tok/s of each, and the ratio
# of the medians steer/llama.cpp. Also prints the CPU model and flags, the
# llama.cpp CPU variant that llama-bench loaded and steer's kernel path.
#
# Environment:
#   STEER       steer binary (default: $BUILD_DIR/steer, built Release first)
#   BUILD_DIR   build directory used when STEER is not set (default build)
#   LLAMA_DIR   llama.cpp tools (default ../shared/tools/llama.cpp beside the repo)
#   LLAMA_ARGS  extra llama-bench arguments, e.g. "-ctk f32 -ctv f32" for an F32
#               KV cache like steer's (default: none, llama-bench's F16 cache)
#   OUT_DIR     where the raw JSON and the summary go (default out/bench/vs-llamacpp)
# Exits 0 with a message when llama-bench is not there (the comparison needs
# ../shared/tools/llama.cpp; the project itself never calls it).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
usage() {
    echo "usage: $0 MODEL.gguf... [-r ROUNDS (5)] [-t THREADS (2)] [-p N (128)] [-n N (32)]" >&2
    exit 2
}
ROUNDS=5 THREADS=2 NP=128 NG=32
models=()
while [ $# -gt 0 ]; do
    case "$1" in
    -r | -t | -p | -n)
        [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] || { echo "$0: $1 expects a non-negative integer" >&2; usage; }
        case "$1" in -r) ROUNDS=$2 ;; -t) THREADS=$2 ;; -p) NP=$2 ;; -n) NG=$2 ;; esac
        shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "$0: unknown option $1" >&2; usage ;;
    *) models+=("$1"); shift ;;
    esac
done
[ ${#models[@]} -ge 1 ] || usage
[ "$ROUNDS" -ge 1 ] && [ "$THREADS" -ge 1 ] && [ $((NP + NG)) -ge 1 ] || { echo "$0: need -r >= 1, -t >= 1 and -p or -n > 0" >&2; exit 2; }

LLAMA_DIR=${LLAMA_DIR:-$REPO/../shared/tools/llama.cpp}
LLAMA_BENCH=$LLAMA_DIR/llama-bench
if [ ! -x "$LLAMA_BENCH" ]; then
    echo "bench_vs_llamacpp: skipped: $LLAMA_BENCH not found (set LLAMA_DIR to a llama.cpp build with llama-bench)"
    exit 0
fi
for m in "${models[@]}"; do
    [ -f "$m" ] || { echo "$0: $m: no such file" >&2; exit 1; }
    [ "$(head -c 4 "$m" | tr -d '\0')" = GGUF ] || { echo "$0: $m: not a GGUF file (llama-bench reads GGUF only)" >&2; exit 1; }
done
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
if [ -z "${STEER:-}" ]; then
    BUILD_DIR=${BUILD_DIR:-build}
    cmake -S "$REPO" -B "$REPO/$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$REPO/$BUILD_DIR" -j2 --target steer_cli >/dev/null
    STEER=$REPO/$BUILD_DIR/steer
fi
OUT_DIR=${OUT_DIR:-$REPO/out/bench/vs-llamacpp}
RAW=$OUT_DIR/raw
mkdir -p "$RAW"
rm -f "$RAW"/*.json "$RAW"/*.err

# Each round: every model, steer and llama.cpp in alternating order.
run_steer() { # MODEL_INDEX ROUND
    "$STEER" bench -m "${models[$1]}" -p "$NP" -n "$NG" -t "$THREADS" -r 1 -o json -q \
        >"$RAW/steer-$1-$2.json" 2>"$RAW/steer-$1-$2.err" ||
        { echo "steer bench failed on ${models[$1]}:" >&2; cat "$RAW/steer-$1-$2.err" >&2; exit 1; }
}
run_llama() {
    # shellcheck disable=SC2086
    "$LLAMA_BENCH" -m "${models[$1]}" -p "$NP" -n "$NG" -t "$THREADS" -r 1 -o json ${LLAMA_ARGS:-} \
        >"$RAW/llama-$1-$2.json" 2>"$RAW/llama-$1-$2.err" ||
        { echo "llama-bench failed on ${models[$1]}:" >&2; cat "$RAW/llama-$1-$2.err" >&2; exit 1; }
}
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; r++)); do
    for i in "${!models[@]}"; do
        [ -t 2 ] && printf '\rround %d/%d: %s ' "$r" "$ROUNDS" "${models[$i]}" >&2
        if ((r % 2)); then run_steer "$i" "$r"; run_llama "$i" "$r"; else run_llama "$i" "$r"; run_steer "$i" "$r"; fi
    done
done
[ -t 2 ] && printf '\r\033[K' >&2

{
    echo "== machine"
    echo "date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "cpu:       $(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -1)"
    echo "cores:     $(nproc) online"
    flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n')
    line=""
    for f in avx2 fma f16c avx512f avx512bw avx512_bf16 avx512_vnni; do
        if grep -qx "$f" <<<"$flags"; then line+=" $f"; else line+=" no-$f"; fi
    done
    echo "flags:    $line"
    variant=$(sed -n 's|.*loaded CPU backend from .*libggml-cpu-\(.*\)\.so.*|\1|p' "$RAW/llama-0-1.err" | head -1)
    echo "llama.cpp: $LLAMA_BENCH, CPU variant ${variant:-unknown} (load_backend line of llama-bench's stderr)${LLAMA_ARGS:+, extra args: $LLAMA_ARGS}"
    echo "load avg:  $load0 (before), $(cut -d' ' -f1-3 /proc/loadavg) (after)"
    echo "runs:      $ROUNDS interleaved rounds, -p $NP -n $NG -t $THREADS -r 1 each (one warm-up run each)"
    echo
    "$PY" - "$RAW" "$ROUNDS" "${models[@]}" <<'EOF'
import json, os, statistics, sys
raw, rounds, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

def load(tool, i, r):
    with open(os.path.join(raw, "%s-%d-%d.json" % (tool, i, r))) as f:
        return json.load(f)

def test_name(row):  # llama-bench's JSON has no "test" field; its markdown names it so
    return "pp%d" % row["n_prompt"] if row["n_prompt"] > 0 else "tg%d" % row["n_gen"]

first = load("steer", 0, 1)[0]
llama_first = load("llama", 0, 1)[0]
print("steer:     build %s, kernel path %s" % (first.get("build_commit", "?"), first.get("cpu_path", "?")))
print("llama.cpp: build %s (%s)" % (llama_first.get("build_commit", "?"), llama_first.get("build_number", "?")))
print()
print("| model | metric | steer min / median / max | llama.cpp min / median / max | steer/llama.cpp (medians) |")
print("|---|---|---|---|---|")
for i, m in enumerate(models):
    ts = {}  # (metric, tool) -> [tok/s per round]
    for r in range(1, rounds + 1):
        for tool in ("steer", "llama"):
            for row in load(tool, i, r):
                ts.setdefault((test_name(row), tool), []).append(row["avg_ts"])
    metrics = sorted({k[0] for k in ts}, key=lambda t: (t[:2] != "pp", int(t[2:])))
    for t in metrics:
        s, l = ts.get((t, "steer"), []), ts.get((t, "llama"), [])
        if not s or not l:
            continue
        fmt = lambda v: "%.1f / %.1f / %.1f" % (min(v), statistics.median(v), max(v))
        print("| %s | %s | %s | %s | %.2f |" % (os.path.basename(m), t, fmt(s), fmt(l),
                                             statistics.median(s) / statistics.median(l)))
EOF
    echo
    echo "raw JSON: $RAW"
} | tee "$OUT_DIR/summary.txt"

#!/usr/bin/env bash
# bench/scaling.sh — the measurements behind docs/SCALING.md.
#   1. per-core forward rates at the layer shapes of Llama-3.2-1B, Gemma-2-2B
#      and Llama-3-8B: random 1-layer models (vocabulary 512, so the head is
#      negligible) through bench_forward --threads 1 (pp64: 64 tokens, all
#      rows), bf16, f32 and Q8_0 weights; and the head alone at each model's real
#      vocabulary (a 1-layer model with it: pp64 minus pp64_last = 63 heads).
#   2. `steer sweep` 2 ranks x 1 thread (mpirun --mpi) vs 1 rank x 2 threads
#      (plain) on a random d=256 4-layer pair, 48 items, in paired rounds
#      (A B B A, then B A A B).
# Usage: bash bench/scaling.sh [BUILD_DIR (build)] [OUT_DIR (out/scaling)]
# Environment: ROUNDS (3), RUNS (bench_forward best-of, 3), SWEEP_N (48),
# MPI_ARGS (mpirun options; default: the shared-memory transport), SKIP_RATES=1,
# SKIP_MPI=1. Needs ~3 GB of disk and memory for the 8B-shape models.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
OUT=${2:-out/scaling}
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-3}
S=$BUILD/steer
mkdir -p "$OUT"
echo "== machine"
echo "date:   $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "cpu:    $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores online"
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n')
have=""
for f in avx2 fma f16c avx512f avx512bw avx512_bf16; do
  if grep -qx "$f" <<<"$flags"; then have="$have $f"; else have="$have no-$f"; fi
done
echo "flags: $have"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (before)"

if [ "${SKIP_RATES:-0}" != 1 ]; then
  echo "== per-core rates (bench_forward --threads 1 --prompt 64)"
  mk() { [ -e "$OUT/$1" ] || "$@" >/dev/null; }
  for dt in bf16 f32; do
    [ -e "$OUT/l1b_$dt.gguf" ] || $S make-random -o "$OUT/l1b_$dt.gguf" --d 2048 --ff 8192 --heads 32 --kv-heads 8 --layers 1 --vocab 512 --dtype $dt >/dev/null
    [ -e "$OUT/l8b_$dt.gguf" ] || $S make-random -o "$OUT/l8b_$dt.gguf" --d 4096 --ff 14336 --heads 32 --kv-heads 8 --layers 1 --vocab 512 --dtype $dt >/dev/null
    [ -e "$OUT/g2b_$dt" ] || $S make-model --arch gemma2 -o "$OUT/g2b_$dt" --d 2304 --ff 9216 --heads 8 --kv-heads 4 --head-dim 256 --layers 1 --vocab 512 --ctx 512 --dtype $dt --seed 1 >/dev/null
    for m in l1b g2b l8b; do
      f=$OUT/${m}_$dt.gguf; [ -e "$f" ] || f=$OUT/${m}_$dt
      echo "-- layer $m $dt"
      $BUILD/bench_forward "$f" --prompt 64 --gen 2 --threads 1 --runs "$RUNS" 2>&1 | grep -E "^config|^machine|metric=pp64 |metric=pp64_last|^contention"
      if [ "$dt" = f32 ]; then # Q8_0 (the pure file type, as llama-quantize's Q8_0) from the f32 layer
        [ -e "$OUT/${m}_q8_0.gguf" ] || $S convert "$f" "$OUT/${m}_q8_0.gguf" --dtype q8_0 >/dev/null
        echo "-- layer $m q8_0"
        $BUILD/bench_forward "$OUT/${m}_q8_0.gguf" --prompt 64 --gen 2 --threads 1 --runs "$RUNS" 2>&1 | grep -E "^config|metric=pp64 |metric=pp64_last|^contention"
      fi
    done
  done
  # heads at the real vocabularies (bf16; tied, so the embedding is the head)
  [ -e "$OUT/h1b.gguf" ] || $S make-random -o "$OUT/h1b.gguf" --d 2048 --ff 64 --heads 32 --kv-heads 8 --layers 1 --vocab 128256 --dtype bf16 --tied >/dev/null
  [ -e "$OUT/h8b.gguf" ] || $S make-random -o "$OUT/h8b.gguf" --d 4096 --ff 64 --heads 32 --kv-heads 8 --layers 1 --vocab 128256 --dtype bf16 --tied >/dev/null
  [ -e "$OUT/h2b" ] || $S make-model --arch gemma2 -o "$OUT/h2b" --d 2304 --ff 64 --heads 8 --kv-heads 4 --head-dim 256 --layers 1 --vocab 256000 --ctx 512 --dtype bf16 --seed 1 >/dev/null
  for m in h1b h2b h8b; do
    f=$OUT/$m.gguf; [ -e "$f" ] || f=$OUT/$m
    echo "-- head $m bf16"
    $BUILD/bench_forward "$f" --prompt 64 --gen 2 --threads 1 --runs "$RUNS" 2>&1 | grep -E "^config|metric=pp64 |metric=pp64_last|^contention"
  done
fi

if [ "${SKIP_MPI:-0}" != 1 ]; then
  echo "== sweep: 2 ranks x 1 thread (mpirun --mpi) vs 1 rank x 2 threads, paired rounds (ABBA)"
  [ -e "$OUT/sb.gguf" ] || $S make-random -o "$OUT/sb.gguf" --d 256 --ff 768 --heads 4 --kv-heads 2 --layers 4 --vocab 512 --ctx 1024 --seed 1 >/dev/null
  [ -e "$OUT/sf.gguf" ] || $S make-random -o "$OUT/sf.gguf" --d 256 --ff 768 --heads 4 --kv-heads 2 --layers 4 --vocab 512 --ctx 1024 --seed 2 >/dev/null
  SW=("$S" sweep --base "$OUT/sb.gguf" --ft "$OUT/sf.gguf" --data winogrande:tests/data/winogrande/dev.jsonl --n "${SWEEP_N:-48}" --quiet)
  # One node: the shared-memory transport (ob1/vader). The default also ends
  # up there, after probing the Omni-Path and OFI libraries (~0.2 s of
  # MPI_Init here); MPI_ARGS="" measures the default.
  read -r -a MPIARGS <<<"${MPI_ARGS---mca pml ob1 --mca mtl ^psm,psm2,ofi}"
  MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none "${MPIARGS[@]}")
  echo "mpirun: ${MPIRUN[*]}"
  # t CMD...: "wall user+sys" seconds of CMD and its children (the ranks)
  t() { /usr/bin/time -f "%e %U %S" -o "$OUT/time.txt" "$@" >/dev/null 2>&1; awk '{printf "%s %.2f", $1, $2 + $3}' "$OUT/time.txt"; }
  plain() { rm -rf "$OUT/p"; OMP_NUM_THREADS=2 t "${SW[@]}" --threads 2 --out "$OUT/p"; }
  ranks() { rm -rf "$OUT/m"; OMP_NUM_THREADS=1 t "${MPIRUN[@]}" -np 2 "${SW[@]}" --threads 1 --mpi --out "$OUT/m"; }
  # Each round runs each configuration twice, mirrored (A B B A, then
  # B A A B), so a slow spell of the VM (tens of seconds) or a drift falls
  # on both alike; its ratio is (sum of the 2 x 1 walls) / (sum of the 1 x 2).
  ratios=()
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then a1=$(plain); b1=$(ranks); b2=$(ranks); a2=$(plain)
    else b1=$(ranks); a1=$(plain); a2=$(plain); b2=$(ranks); fi
    same=$(cmp -s "$OUT/p/dkl.csv" "$OUT/m/dkl.csv" && cmp -s "$OUT/p/items.csv" "$OUT/m/items.csv" && echo yes || echo NO)
    ratio=$(echo "scale=3; (${b1%% *} + ${b2%% *}) / (${a1%% *} + ${a2%% *})" | bc)
    ratios+=("$ratio")
    echo "round $r: 1x2 wall ${a1% *} ${a2% *} s cpu ${a1#* } ${a2#* } s | 2x1 wall ${b1% *} ${b2% *} s cpu ${b1#* } ${b2#* } s | wall ratio 2x1/1x2 $ratio | same files $same | load $(cut -d' ' -f1 /proc/loadavg)"
  done
  echo "median wall ratio 2x1/1x2 over $ROUNDS rounds: $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')"
fi

#!/usr/bin/env bash
# Builds steer (Release) and runs the benchmarks: bench_matmul (our matmul
# kernel vs OpenBLAS sgemm), then bench_forward on the bundled stories260K and
# on random 2-layer d_model=2048 models (f32 and bf16) made with
# `steer make-random`. Prints the machine first. Output is also saved to
# out/bench/bench.log. See docs/PERFORMANCE.md.
#
# Environment: OMP_NUM_THREADS (default: all cores), BUILD_DIR (default build),
# BENCH_RUNS (bench_forward best-of runs on the random models, default 5;
# stories260K runs in milliseconds and always gets 20), SWEEP_N (bench_sweep
# items, default 16).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
RUNS=${BENCH_RUNS:-5}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
mkdir -p out/bench
exec > >(tee out/bench/bench.log) 2>&1

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j2 >/dev/null

echo "== machine"
echo "date:        $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "cpu:         $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "cores:       $(nproc) online ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s)/core)"
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n')
have=""
for f in avx2 fma f16c avx512f avx512bw avx512_bf16; do
  if grep -qx "$f" <<<"$flags"; then have="$have $f"; else have="$have no-$f"; fi
done
echo "flags:      $have"
echo "memory:      $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
echo "gcc:         $(gcc --version | head -1)"
echo "openblas:    libopenblas0-openmp $(dpkg -s libopenblas0-openmp 2>/dev/null | sed -n 's/^Version: //p')"
echo "threads:     OMP_NUM_THREADS=$OMP_NUM_THREADS"
echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) (before)"
echo

echo "== bench_matmul"
"./$BUILD_DIR/bench_matmul"
echo

echo "== bench_forward stories260K"
"./$BUILD_DIR/bench_forward" models/stories260K/stories260K.bin --runs 20
echo

for dt in f32 bf16; do
  m=out/bench/random-2048-$dt.gguf
  echo "== make-random $dt"
  "./$BUILD_DIR/steer" make-random -o "$m" --d 2048 --ff 8192 --heads 32 --kv-heads 8 --layers 2 \
    --vocab 32000 --dtype "$dt"
  echo "== bench_forward random-2048 $dt"
  "./$BUILD_DIR/bench_forward" "$m" --runs "$RUNS"
  echo
done
echo "== bench_train (training update vs steer_forward; stories260K and a random d=512 llama, docs/PERFORMANCE.md)"
"./$BUILD_DIR/bench_train" --model models/stories260K/stories260K.bin --runs "$RUNS"
echo
echo "== bench_sweep (oracle dKL sweep: engine vs --naive, demo config, docs/PERFORMANCE.md)"
"./$BUILD_DIR/bench_sweep" --n "${SWEEP_N:-16}" --runs 3
echo
echo "load avg:    $(cut -d' ' -f1-3 /proc/loadavg) (after)"

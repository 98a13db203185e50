#!/usr/bin/env bash
# fuzz.sh [SECONDS] [NAME...] — builds the libFuzzer harnesses tests/fuzz/fuzz_*.c
# (clang, CMake STEER_FUZZ, build dir build-fuzz) and runs each for SECONDS
# (default 60) on its corpus, then prints executions, coverage and corpus size
# per harness. NAMEs (gguf, safetensors, ...) limit the run to those harnesses.
#
# Corpora: new inputs go to build-fuzz/corpus/NAME (kept between runs, so
# repeated runs go deeper); the committed seeds tests/fuzz/corpus/NAME and the
# crash reproducers tests/fuzz/regress/NAME are read too. A crash, leak,
# sanitizer report, timeout (> 10 s for one input) or broken invariant stops
# that harness: the input is saved as build-fuzz/artifacts/NAME-crash-* and the
# script exits 1 after the summary. Fix the parser, then add the input to
# tests/fuzz/regress/NAME/ (test_fuzz_regress replays it in every build).
#
# Environment: FUZZ_JOBS=N runs N harnesses at once (default 1);
# FUZZ_RUNS=N stops each harness after N inputs (SECONDS stays the cap) with
# a fixed seed (FUZZ_SEED, default 1), so a run does the same work whatever
# the machine's speed (scripts/test.sh uses this); FUZZ_ARGS adds libFuzzer
# flags (e.g. "-max_len=65536").
# Longer runs: scripts/fuzz.sh 3600 gguf; docs/ROBUSTNESS.md lists the last
# measured executions.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
B=build-fuzz
if ! command -v clang >/dev/null; then
    echo "fuzz.sh: clang not found (scripts/setup.sh installs it)" >&2
    exit 1
fi
CC=clang cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DSTEER_FUZZ=ON >/dev/null || exit 1
cmake --build "$B" --target fuzz_all -j"$(nproc)" >"$B/build.log" 2>&1 || { tail -30 "$B/build.log"; exit 1; }

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do n=$(basename "$f" .c); names+=("${n#fuzz_}"); done
fi
mkdir -p "$B/artifacts" "$B/logs"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
# The harnesses write every input to a scratch file: in memory (/dev/shm) that
# is ~15x faster. One directory for this run, removed at the end (a harness
# that crashes cannot remove its own scratch files).
base=${TMPDIR:-/tmp}
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
TMPDIR=$(mktemp -d "$base/steer-fuzz-run.XXXXXX") || exit 1
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp"

run_one() {
    local n=$1 dirs=() extra=()
    [ -n "${FUZZ_RUNS:-}" ] && extra=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}")
    mkdir -p "$B/corpus/$n"
    for d in "tests/fuzz/corpus/$n" "tests/fuzz/regress/$n"; do [ -d "$d" ] && dirs+=("$d"); done
    # shellcheck disable=SC2086
    "$B/fuzz_$n" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$B/artifacts/$n-" "${extra[@]}" ${FUZZ_ARGS:-} "$B/corpus/$n" "${dirs[@]}" \
        >"$B/logs/$n.log" 2>&1
    echo $? >"$B/logs/$n.rc"
}

jobs_max=${FUZZ_JOBS:-1}
for n in "${names[@]}"; do
    [ -x "$B/fuzz_$n" ] || { echo "fuzz.sh: no harness fuzz_$n" >&2; exit 1; }
    run_one "$n" &
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
done
wait

status=0
printf '%-12s %12s %9s %7s %8s %9s  %s\n' harness executions exec/s cov corpus seconds result
for n in "${names[@]}"; do
    log=$B/logs/$n.log
    rc=$(cat "$B/logs/$n.rc" 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    corp=$(ls "$B/corpus/$n" | wc -l)
    secs=$(grep -Eo 'DONE .*|Done [0-9]+ runs in [0-9]+ second' "$log" | grep -Eo 'in [0-9]+ second' | grep -Eo '[0-9]+')
    res=ok
    if [ "$rc" != 0 ]; then
        res="FAILED (exit $rc): $(grep -Eo "$B/artifacts/$n-[a-z]+-[0-9a-f]+" "$log" | tail -1) — log $log"
        status=1
    fi
    printf '%-12s %12s %9s %7s %8s %9s  %s\n' "$n" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$corp" "${secs:-$SECONDS_EACH}" "$res"
done
if [ $status -ne 0 ]; then
    for n in "${names[@]}"; do
        [ "$(cat "$B/logs/$n.rc")" = 0 ] && continue
        echo "---- $n (last lines of $B/logs/$n.log)"
        grep -E 'ERROR|SUMMARY|invariant|runtime error|#0 |#1 |#2 |#3 ' "$B/logs/$n.log" | head -12
    done
fi
exit $status

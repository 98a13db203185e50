#!/usr/bin/env bash
# Runs the demo's commands (info, generate, a 2-item oracle sweep with its
# figures, the report) under valgrind memcheck: any invalid read/write, use of
# uninitialised memory or definite leak fails (exit 99). fontconfig's process
# cache is suppressed (tests/valgrind.supp). Not part of scripts/test.sh (the
# ASan/UBSan suite covers the same code there); about 2 minutes of CPU.
#   bash scripts/valgrind_demo.sh [STEER]
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:-build/steer}
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install valgrind)" >&2; exit 1; }
B=models/stories260K/stories260K.bin
F=models/stories260K-winogrande/stories260K-winogrande.bin
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
VG=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --suppressions=tests/valgrind.supp -q)
export OMP_NUM_THREADS=1
"${VG[@]}" "$S" info "$B" >/dev/null && echo "ok   info"
"${VG[@]}" "$S" generate -m "$F" -p "Once upon a time" -n 8 --temp 0 --quiet >/dev/null && echo "ok   generate"
"${VG[@]}" "$S" sweep --base "$B" --ft "$F" --data winogrande:tests/data/winogrande/dev.jsonl --n 2 \
  --out "$OUT/sweep" --quiet && echo "ok   sweep (2 items, figures)"
"${VG[@]}" "$S" report "$OUT/sweep" -q && echo "ok   report"
echo "valgrind: clean"

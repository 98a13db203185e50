#!/usr/bin/env bash
# Sets up, builds and runs every test (CTest), then the same tests under
# AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure -j2)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSTEER_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
# test_train (the training loop on stories260K, ~45 s in Release) exceeds its
# 5-minute limit under ASan; its code also runs under ASan in cli_train, and
# the graph and ops it uses in test_train_grad and test_train_ops.
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$PWD/../tests/lsan.supp" \
  ctest --output-on-failure -j2 -E '^test_train$')
# Fuzzing (docs/ROBUSTNESS.md): every parser harness under libFuzzer with
# AddressSanitizer + UBSan (clang, build-fuzz), 3000 inputs each with a fixed
# seed (at most 10 s each), two at a time. Longer runs: scripts/fuzz.sh 600.
FUZZ_JOBS=2 FUZZ_RUNS=3000 bash scripts/fuzz.sh 10

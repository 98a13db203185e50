#!/usr/bin/env bash
# Sets up, builds and runs every test (CTest), then the same tests under
# AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
(cd build && ctest --output-on-failure -j2)
# Debug (assertions on) at -O1, as AddressSanitizer's documentation advises
# for usable speed: at -O0 the instrumented training loops ran ~30x slower
# than Release and the ASan part alone took ~9 minutes on 2 cores.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DSTEER_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
# Left out under ASan, to keep this script under 15 minutes on 2 cores (each
# runs above in Release):
#  - test_train (the training loop on stories260K, ~45 s in Release) exceeds its
#    5-minute limit; its code also runs under ASan in cli_train, and the graph
#    and ops it uses in test_train_grad and test_train_ops;
#  - cli_mpi_commands (~170 s under ASan: mpirun of instrumented binaries); the
#    shared MPI scheduler (tools/mpi) runs under ASan in cli_mpi;
#  - test_quant_model (~75 s: 11 quantized files x 2 paths x 2 precisions);
#    the same loader, kernels and quantized dots run under ASan in cli_quant,
#    test_qdot and test_quant;
#  - test_convert_quant (~45 s): the quantizers run under ASan in test_quant,
#    convert's quantized output in cli_convert;
#  - cli_study_twins (~64 s): its training, sweep and report code runs under
#    ASan in cli_train, cli_sweep and cli_report.
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$PWD/../tests/lsan.supp" \
  ctest --output-on-failure -j2 -E '^(test_train|cli_mpi_commands|test_quant_model|test_convert_quant|cli_study_twins)$')
# Fuzzing (docs/ROBUSTNESS.md): every parser harness under libFuzzer with
# AddressSanitizer + UBSan (clang, build-fuzz), 3000 inputs each with a fixed
# seed (at most 10 s each), two at a time. Longer runs: scripts/fuzz.sh 600.
FUZZ_JOBS=2 FUZZ_RUNS=3000 bash scripts/fuzz.sh 10

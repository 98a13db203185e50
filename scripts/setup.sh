#!/usr/bin/env bash
# Installs the Debian 12 packages steer builds against (idempotent; needs root
# or sudo). Each is chosen on purpose:
#   OpenMP (libgomp, with gcc)     threads
#   libopenblas-openmp-dev         sgemm for large f32 matmuls, sharing OpenMP's threads
#   libcjson-dev                   JSON (safetensors headers, configs, datasets)
#   libpcre2-dev                   tokenizer pre-split regexes (Hugging Face BPE)
#   libcairo2-dev                  PNG/SVG figures
#   cmake, pkg-config, gcc         build
#   clang, libclang-rt-dev         libFuzzer + sanitizer runtimes for scripts/fuzz.sh
#   libomp-dev                     OpenMP for clang (the fuzz build)
#   libsimde-dev                   SIMDe (header only): on any AVX2 CPU test_qdot runs the VNNI kernels' code
#                                  with its portable VPDPBUSD/VPDPWSSD and test_ops the AVX-512 paths' sources
#                                  over its AVX-512 (tests only; the library does not use it)
#   libmicrohttpd-dev              `steer serve`'s HTTP server: GNU, small C API, thread-per-connection
#                                  mode (handlers may block on a request), kept up in Debian
#   nodejs                         runs the official OpenAI Node SDK client of tests/cli/cli_serve.sh
#                                  (npm: Debian's npm package conflicts with NodeSource's nodejs, which
#                                  ships npm; without npm that part of the test is skipped, saying why)
#   python3-numpy, python3-pytest  the Python package python/steer (ctypes over libsteer: numpy arrays)
#                                  and its tests (docs/PYTHON.md); Debian's, as PyPI is not reachable
#   python3-matplotlib             the quickstart example's figure (examples/steering_quickstart.py)
#   python3-pip, python3-setuptools, python3-wheel, python3-venv
#                                  offline `pip install --no-build-isolation --no-index ./python`
#   libopenmpi-dev, openmpi-bin    `steer sweep --mpi` over many machines (docs/SCALING.md): Open MPI is
#                                  what Slurm clusters run and Debian's MPI default; optional (STEER_MPI)
#   slurmctld, slurmd, slurm-client, munge
#                                  tests/cli/cli_srun.sh starts a private one-node Slurm (22.05) on localhost
#                                  and runs `srun --mpi=pmix steer sweep --mpi` and the job-array recipe of
#                                  docs/SCALING.md; Debian's Slurm and Open MPI meet through PMIx (pmi2 does
#                                  not work with Debian's Open MPI); it uses no system service or /etc config
set -euo pipefail
PKGS="build-essential cmake pkg-config libopenblas-openmp-dev libcjson-dev libpcre2-dev libcairo2-dev libsimde-dev clang libclang-rt-dev libomp-dev libmicrohttpd-dev nodejs python3-numpy python3-pytest python3-matplotlib python3-pip python3-setuptools python3-wheel python3-venv libopenmpi-dev openmpi-bin slurmctld slurmd slurm-client munge"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

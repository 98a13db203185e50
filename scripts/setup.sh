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
set -euo pipefail
PKGS="build-essential cmake pkg-config libopenblas-openmp-dev libcjson-dev libpcre2-dev libcairo2-dev clang libclang-rt-dev libomp-dev"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

#!/usr/bin/env bash
# The main job: sets up, builds, and runs the demo on the bundled model —
# prints model info, generates a story greedily, and captures activations at
# resid_post and attn_out of every layer into out/demo/acts.safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
M=models/stories260K/stories260K.bin
mkdir -p out/demo
./build/steer info "$M"
echo
./build/steer generate -m "$M" -p "Once upon a time" -n 120 --temp 0
echo
./build/steer capture -m "$M" -p "Once upon a time" --sites resid_post,attn_out --layers all \
  -o out/demo/acts.safetensors
echo "wrote out/demo/acts.safetensors"

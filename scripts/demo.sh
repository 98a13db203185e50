#!/usr/bin/env bash
# The main job: sets up, builds, and runs the demo on the bundled models —
# the oracle ΔKL sweep of SPEC E1 (stories260K against its Winogrande
# fine-tune, 256 dev items, sites mlp_in, attn_out, mlp_out, resid_post, every
# layer, α ∈ {0, 0.1, 0.25, 0.5, 1}, K = 5 tokens) and its report:
# out/demo/sweep/report.html (self-contained) and report.md with the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
B=models/stories260K/stories260K.bin
F=models/stories260K-winogrande/stories260K-winogrande.bin
mkdir -p out/demo
./build/steer info "$B"
echo
echo "== a Winogrande dev prompt (SPEC §6 template) and each model's greedy answer"
P=$(./build/steer data show winogrande:tests/data/winogrande/dev.jsonl --n 1 | sed -n '/^--- prompt$/,/^--- completion$/p' | sed '1d;$d')
printf '%s\n' "$P"
for M in "$B" "$F"; do
  OUT=$(./build/steer generate -m "$M" -p "$P" -n 8 --temp 0 --quiet)
  printf '  %-28s →%s\n' "$(basename "$M")" "${OUT#"$P"}"
done
echo
echo "== oracle ΔKL sweep (SPEC E1): 256 Winogrande dev items"
rm -rf out/demo/sweep
./build/steer sweep --base "$B" --ft "$F" --data winogrande:tests/data/winogrande/dev.jsonl --n 256 \
  --sites mlp_in,attn_out,mlp_out,resid_post --layers all --alphas 0,0.1,0.25,0.5,1 --tokens 5 \
  --out out/demo/sweep
./build/steer report out/demo/sweep
echo "open out/demo/sweep/report.html (figures: out/demo/sweep/dkl_<site>.png, heatmap_<site>.png)"

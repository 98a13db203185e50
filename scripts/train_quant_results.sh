#!/usr/bin/env bash
# Training on a frozen quantized base (issue 19, must-show 3): a steering vector
# and a LoRA trained on stories260K (the base of models/stories260K-winogrande)
# as f32 and as its Q8_0 and Q4_0 conversions, with the settings of
# scripts/train_results.sh (Winogrande train_m -> dev, 16 sequences per update,
# seed 1, one thread, evaluation on the first EVAL_N dev items). Prints a
# Markdown table of held-out loss and accuracy before and after, and checks
# that every base file's sha256 is the same after training (docs/RESULTS.md).
#
#   bash scripts/train_quant_results.sh [STEPS] [OUTDIR]
#
# STEPS updates (default 200), runs in OUTDIR (default /tmp/steer-train-quant).
# PRECISION (default fast) is passed as --precision.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-200}
EVAL_N=${EVAL_N:-128}
OUT=${2:-/tmp/steer-train-quant}
STEER=${STEER:-build/steer}
PRECISION=${PRECISION:-fast}
export OMP_NUM_THREADS=1
mkdir -p "$OUT"

# The bases: f32 GGUF, Q8_0 and Q4_0 (steer convert --dtype: every matrix in the
# type; ffn_down, whose rows of d_ff = 172 are not a multiple of 32, falls back
# to F16; norms F32).
"$STEER" convert models/stories260K/stories260K.bin "$OUT/stories260K.f32.gguf" --dtype f32 >/dev/null
"$STEER" convert models/stories260K/stories260K.bin "$OUT/stories260K.q8_0.gguf" --dtype q8_0 >/dev/null
"$STEER" convert models/stories260K/stories260K.bin "$OUT/stories260K.q4_0.gguf" --dtype q4_0 >/dev/null

TRAIN=winogrande:tests/data/winogrande/train_m.jsonl
DEV=winogrande:tests/data/winogrande/dev.jsonl
# method | extra options | learning rate (as scripts/train_results.sh)
METHODS=("vector|--site resid_post|5e-3" "lora|--rank 8|1.5e-3")

echo "| base | method | options | lr | loss before | loss after | acc before | acc after | base sha256 unchanged |"
echo "|---|---|---|---|---|---|---|---|---|"
for spec in "${METHODS[@]}"; do
  IFS='|' read -r method opts lr <<<"$spec"
  for dt in f32 q8_0 q4_0; do
    base=$OUT/stories260K.$dt.gguf
    sha0=$(sha256sum <"$base")
    tag=$method-$dt
    # shellcheck disable=SC2086
    "$STEER" train -m "$base" --data "$TRAIN" --eval-data "$DEV" --eval-n "$EVAL_N" \
      --method "$method" $opts --lr "$lr" --steps "$STEPS" --batch 16 --seed 1 --precision "$PRECISION" \
      --eval-every "$STEPS" --quiet --out "$OUT/$tag" >"$OUT/$tag.log" 2>&1
    same=$([ "$(sha256sum <"$base")" = "$sha0" ] && echo yes || echo NO)
    # train.csv: step,lr,loss,grad_norm,eval_loss,eval_acc,eval_exact,eval_format,tokens_per_s
    awk -F, -v b="$dt" -v m="$method" -v o="$opts" -v lr="$lr" -v s="$same" '
      NR > 1 && $5 != "" { if (!seen) { l0 = $5; a0 = $6; seen = 1 } l1 = $5; a1 = $6 }
      END { printf "| %s | %s | %s | %s | %.3f | %.3f | %.3f | %.3f | %s |\n", b, m, o, lr, l0, l1, a0, a1, s }' \
      "$OUT/$tag/train.csv"
  done
done

#!/usr/bin/env bash
# Trains every method of `steer train` on stories260K for Winogrande and ListOps
# and prints a Markdown table of held-out loss and greedy accuracy before and
# after training (docs/RESULTS.md, "Every method on Winogrande and ListOps").
#
#   bash scripts/train_results.sh [STEPS] [OUTDIR]
#
# STEPS updates of 16 sequences each (default 200), evaluated on the first
# EVAL_N held-out items (default 128); runs go to OUTDIR (default
# /tmp/steer-train-results). Single-threaded (OMP_NUM_THREADS=1) so the
# numbers do not depend on the machine's core count.
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-200}
EVAL_N=${EVAL_N:-128}
OUT=${2:-/tmp/steer-train-results}
STEER=${STEER:-build/steer}
MODEL=models/stories260K/stories260K.bin
export OMP_NUM_THREADS=1
mkdir -p "$OUT"

# ListOps: 4000 training expressions (seed 1), 500 held out (seed 2).
"$STEER" data listops --n 4000 --seed 1 --max-depth 3 --max-args 5 -o "$OUT/listops-train.jsonl" >/dev/null
"$STEER" data listops --n 500 --seed 2 --max-depth 3 --max-args 5 -o "$OUT/listops-dev.jsonl" >/dev/null

declare -A TRAIN=([winogrande]="winogrande:tests/data/winogrande/train_m.jsonl"
                  [listops]="listops:$OUT/listops-train.jsonl")
declare -A DEV=([winogrande]="winogrande:tests/data/winogrande/dev.jsonl"
                [listops]="listops:$OUT/listops-dev.jsonl")

# method | extra options | learning rate
METHODS=(
  "full||1e-3"
  "lora|--rank 8|1.5e-3"
  "joint|--rank 8|1.5e-3"
  "adapter|--rank 8 --act silu --site resid_post|5e-3"
  "adapter-linear|--rank 8 --site resid_post|5e-3"
  "rank1|--site resid_post|5e-3"
  "vector|--site resid_post|5e-3"
  "loreft|--rank 8 --site resid_post|5e-3"
)

echo "| task | method | options | lr | trainable | loss before | loss after | acc before | acc after |"
echo "|---|---|---|---|---|---|---|---|---|"
for task in winogrande listops; do
  for spec in "${METHODS[@]}"; do
    IFS='|' read -r method opts lr <<<"$spec"
    tag="$task-$method-$(echo "$opts" | tr -cd 'a-z_0-9')"
    # shellcheck disable=SC2086
    "$STEER" train -m "$MODEL" --data "${TRAIN[$task]}" --eval-data "${DEV[$task]}" --eval-n "$EVAL_N" \
      --method "$method" $opts --lr "$lr" --steps "$STEPS" --batch 16 --seed 1 \
      --eval-every "$STEPS" --quiet --out "$OUT/$tag" >"$OUT/$tag.log" 2>&1
    trainable=$("$STEER" train -m "$MODEL" --data "${TRAIN[$task]}" --method "$method" $opts \
      --steps 1 --dry-run 2>&1 | sed -n 's/.*trainable[^0-9]*\([0-9][0-9]*\).*/\1/p' | head -1)
    # train.csv: step,lr,loss,grad_norm,eval_loss,eval_acc,eval_exact,eval_format,tokens_per_s
    awk -F, -v t="$task" -v m="$method" -v o="$opts" -v lr="$lr" -v n="$trainable" '
      NR > 1 && $5 != "" { if (!seen) { l0 = $5; a0 = $6; seen = 1 } l1 = $5; a1 = $6 }
      END { printf "| %s | %s | %s | %s | %s | %.3f | %.3f | %.3f | %.3f |\n", t, m, o, lr, n, l0, l1, a0, a1 }' \
      "$OUT/$tag/train.csv"
  done
done

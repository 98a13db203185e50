#!/usr/bin/env bash
# cli_merge_lora.sh STEER REPO — `steer merge-lora` end to end on stories260K:
# a LoRA run merged into GGUF and llama2.c outputs evaluates like the base
# with the adapter (same held-out loss and accuracy), a joint run merged with
# --steer-out evaluates like the joint run, and bad input (missing file, an
# adapter of another model, a checkpoint without LoRA, joint without
# --steer-out, a bad --dtype) fails with one line and leaves nothing behind.
set -u
STEER=${1:?usage: cli_merge_lora.sh STEER REPO}
REPO=${2:?usage: cli_merge_lora.sh STEER REPO}
DEV=$REPO/tests/data/winogrande/dev.jsonl
M=$REPO/models/stories260K/stories260K.bin
source "$(dirname "$0")/lib_cli.sh"
mkdir -p "$TMP/out" "$TMP/l2c"

# same_eval A B: the two eval JSON lines have the same n and acc, and losses
# within 1e-5 relative (printed with 6 digits; merged vs adapter logits
# differ by < 1e-6, test_merge_lora)
same_eval() {
    python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:3])
ok = a["n"] == b["n"] and a["acc"] == b["acc"] and abs(a["loss"] - b["loss"]) <= 1e-5 * abs(b["loss"])
print("   ", a["loss"], b["loss"])
sys.exit(0 if ok else 1)
PY
}

ok "merge-lora --help" "$STEER" merge-lora --help
has "$TMP/stdout.txt" "^example" "help has an example"

R=$TMP/lora
ok "train lora" "$STEER" train -m "$M" --data "winogrande:$DEV" --n-train 16 --method lora --lr 1e-2 --steps 4 \
    --batch 4 --out "$R" --quiet
ok "eval base + adapter" "$STEER" eval -m "$M" --adapter "$R/adapter.safetensors" --data "winogrande:$DEV" --n 4
cp "$TMP/stdout.txt" "$TMP/eval_adapter.txt"
ok "eval base" "$STEER" eval -m "$M" --data "winogrande:$DEV" --n 4
cp "$TMP/stdout.txt" "$TMP/eval_base.txt"
same_eval "$TMP/eval_base.txt" "$TMP/eval_adapter.txt" && fail "the LoRA changes nothing" || pass "the LoRA changes the loss"

ok "merge-lora -> gguf" "$STEER" merge-lora -m "$M" --adapter "$R/adapter.safetensors" -o "$TMP/merged.gguf"
has "$TMP/stdout.txt" "^wrote .*merged.gguf" "prints what it wrote"
ok "eval merged gguf" "$STEER" eval -m "$TMP/merged.gguf" --data "winogrande:$DEV" --n 4
same_eval "$TMP/stdout.txt" "$TMP/eval_adapter.txt" && pass "merged gguf = base + adapter" || fail "merged gguf differs"
ok "merge-lora -> llama2.c" "$STEER" merge-lora -m "$M" --adapter "$R/adapter.safetensors" -o "$TMP/l2c/m.bin" --quiet
[ -s "$TMP/l2c/tokenizer.bin" ] && pass "tokenizer.bin beside the .bin" || fail "no tokenizer.bin"
ok "eval merged llama2.c" "$STEER" eval -m "$TMP/l2c/m.bin" --data "winogrande:$DEV" --n 4
same_eval "$TMP/stdout.txt" "$TMP/eval_adapter.txt" && pass "merged .bin = base + adapter" || fail "merged .bin differs"
ok "merge-lora -> hf bf16" "$STEER" merge-lora -m "$M" --adapter "$R/adapter.safetensors" -o "$TMP/hf16" --dtype bf16
ok "tensors of the bf16 output" "$STEER" tensors "$TMP/hf16/model.safetensors"
has "$TMP/stdout.txt" "q_proj.weight +BF16" "matrices are BF16"

J=$TMP/joint
ok "train joint" "$STEER" train -m "$M" --data "winogrande:$DEV" --n-train 16 --method joint --lr 1e-2 --steps 4 \
    --batch 4 --out "$J" --quiet
ok "eval base + joint" "$STEER" eval -m "$M" --adapter "$J/adapter.safetensors" --data "winogrande:$DEV" --n 4
cp "$TMP/stdout.txt" "$TMP/eval_joint.txt"
ok "merge-lora joint" "$STEER" merge-lora -m "$M" --adapter "$J/adapter.safetensors" -o "$TMP/joint.gguf" \
    --steer-out "$TMP/joint_steer.safetensors"
ok "eval merged + steering adapter" "$STEER" eval -m "$TMP/joint.gguf" --adapter "$TMP/joint_steer.safetensors" \
    --data "winogrande:$DEV" --n 4
same_eval "$TMP/stdout.txt" "$TMP/eval_joint.txt" && pass "merged + adapter = base + joint" || fail "joint merge differs"

# bad input: nothing may appear in $TMP/out
expect_fail "missing adapter" "nope.safetensors" "$STEER" merge-lora -m "$M" --adapter "$TMP/nope.safetensors" -o "$TMP/out/m.gguf"
expect_fail "adapter of another model" "adapter.safetensors" "$STEER" merge-lora -m "$REPO/tests/data/llama/hf" \
    --adapter "$R/adapter.safetensors" -o "$TMP/out/m.gguf"
ok "train adapter" "$STEER" train -m "$M" --data "winogrande:$DEV" --n-train 8 --method adapter --steps 1 --batch 4 \
    --out "$TMP/adp" --quiet
expect_fail "not a LoRA checkpoint" "not a LoRA checkpoint" "$STEER" merge-lora -m "$M" \
    --adapter "$TMP/adp/adapter.safetensors" -o "$TMP/out/m.gguf"
expect_fail "joint without --steer-out" "--steer-out" "$STEER" merge-lora -m "$M" --adapter "$J/adapter.safetensors" \
    -o "$TMP/out/m.gguf"
expect_fail "bad --dtype" "--dtype" "$STEER" merge-lora -m "$M" --adapter "$R/adapter.safetensors" -o "$TMP/out/m.gguf" \
    --dtype q4
expect_fail "missing -o" "-o OUT" "$STEER" merge-lora -m "$M" --adapter "$R/adapter.safetensors"
expect_fail "output directory missing" "does not exist" "$STEER" merge-lora -m "$M" --adapter "$R/adapter.safetensors" \
    -o "$TMP/out/no/m.gguf"
finish

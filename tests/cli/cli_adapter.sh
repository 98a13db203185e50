#!/usr/bin/env bash
# cli_adapter.sh STEER REPO — `--adapter` (a steer train checkpoint) on
# generate, logits and capture, for the methods vector, adapter, LoReFT, joint and
# LoRA (stories260K, 2 training steps each): every method changes the
# output; a vector checkpoint gives bit for bit what --steer with the same
# file gives; LoRA gives the text of merge-lora + a plain generate; files of
# another kind get a message saying what they are and what was expected.
set -u
STEER=${1:?usage: cli_adapter.sh STEER REPO}
REPO=${2:?usage: cli_adapter.sh STEER REPO}
M=$REPO/models/stories260K/stories260K.bin
TOK=$REPO/models/stories260K/tok512.bin
source "$(dirname "$0")/lib_cli.sh"
printf '{"prompt": "Once upon a time", "completion": " there was a cat."}\n{"prompt": "The dog", "completion": " ran to the park."}\n' >"$TMP/d.jsonl"
P="Once upon a time"

"$STEER" generate -m "$M" -p "$P" -n 30 -q >"$TMP/base.txt"
for meth in vector adapter loreft lora joint; do
    # one thread: training is a few milliseconds of work, OpenMP spinning would dominate on a loaded machine
    OMP_NUM_THREADS=1 "$STEER" train -m "$M" --data "jsonl:$TMP/d.jsonl" --holdout 0 --method $meth --lr 5e-2 \
        --steps 2 --batch 2 --out "$TMP/$meth" --quiet >/dev/null 2>"$TMP/err.txt" || fail "train $meth: $(cat "$TMP/err.txt")"
    if "$STEER" generate -m "$M" -p "$P" -n 30 -q --adapter "$TMP/$meth/adapter.safetensors" >"$TMP/g_$meth.txt" 2>"$TMP/err.txt"; then
        cmp -s "$TMP/base.txt" "$TMP/g_$meth.txt" && fail "generate --adapter ($meth): same text as the base model" ||
            pass "generate --adapter ($meth): $(cat "$TMP/g_$meth.txt")"
    else
        fail "generate --adapter ($meth): $(cat "$TMP/err.txt")"
    fi
done

# vector: --adapter = --steer with the checkpoint (it is a vector file too), logits bit for bit.
"$STEER" logits -m "$M" -p "$P" --adapter "$TMP/vector/adapter.safetensors" -o "$TMP/la.st" 2>/dev/null
"$STEER" logits -m "$M" -p "$P" --steer "$TMP/vector/adapter.safetensors" -o "$TMP/ls.st" 2>/dev/null
"$STEER" logits -m "$M" -p "$P" -o "$TMP/l0.st" 2>/dev/null
N=$((5 * 512 * 4 + 5 * 4))
cmp -s <(tail -c $N "$TMP/la.st") <(tail -c $N "$TMP/ls.st") && pass "logits --adapter vector = --steer (bitwise)" ||
    fail "logits --adapter vector != --steer"
cmp -s <(tail -c $N "$TMP/la.st") <(tail -c $N "$TMP/l0.st") && fail "logits --adapter vector = base" ||
    pass "logits --adapter vector differ from the base"

# LoRA: the text of merge-lora + plain generate.
mkdir -p "$TMP/mg"
if OMP_NUM_THREADS=1 "$STEER" merge-lora -m "$M" --adapter "$TMP/lora/adapter.safetensors" -o "$TMP/mg/m.bin" --quiet \
    >/dev/null 2>"$TMP/err.txt"; then
    "$STEER" generate -m "$TMP/mg/m.bin" -z "$TOK" -p "$P" -n 30 -q >"$TMP/g_merged.txt"
    cmp -s "$TMP/g_merged.txt" "$TMP/g_lora.txt" && pass "generate --adapter lora = merge-lora + generate (30 tokens)" ||
        fail "LoRA: '$(cat "$TMP/g_lora.txt")' vs merged '$(cat "$TMP/g_merged.txt")'"
else
    fail "merge-lora: $(cat "$TMP/err.txt")"
fi

# capture --adapter (batch): LoReFT changes resid_post.4.
printf 'Once upon a time\nThe dog\n' >"$TMP/p.txt"
"$STEER" capture -m "$M" --prompts "$TMP/p.txt" --layers -1 -q -o "$TMP/c0.st" 2>/dev/null
if "$STEER" capture -m "$M" --prompts "$TMP/p.txt" --layers -1 -q --adapter "$TMP/loreft/adapter.safetensors" \
    -o "$TMP/c1.st" 2>"$TMP/err.txt"; then
    cmp -s "$TMP/c0.st" "$TMP/c1.st" && fail "capture --adapter loreft: same activations" ||
        pass "capture --adapter loreft changes the activations"
else
    fail "capture --adapter: $(cat "$TMP/err.txt")"
fi

# Files of another kind.
printf 'happy\n' >"$TMP/pos.txt"
printf 'sad\n' >"$TMP/neg.txt"
"$STEER" extract -m "$M" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" -o "$TMP/md.st" >/dev/null 2>&1
"$STEER" capture -m "$M" -p hi -o "$TMP/cap.st" 2>/dev/null
expect_fail "a vector file" "md.st: is a steering vector file (method 'mean-diff'), not a training checkpoint: pass it with --steer" \
    "$STEER" generate -m "$M" -p "$P" -n 2 --adapter "$TMP/md.st"
expect_fail "a capture" "cap.st: is an output of steer capture (activations), not a training checkpoint" \
    "$STEER" logits -m "$M" -p "$P" --adapter "$TMP/cap.st" -o "$TMP/out/x.st"
expect_fail "a GGUF model" "is a GGUF file (a model or a llama.cpp control vector), not a training checkpoint" \
    "$STEER" generate -m "$M" -p "$P" -n 2 --adapter "$REPO/models/stories260K/stories260K.gguf"
expect_fail "another model's checkpoint" "trained for a model with 5 layers" \
    "$STEER" generate -m "$REPO/tests/data/llama-2-tiny-random.gguf" -p "$P" -n 2 --adapter "$TMP/vector/adapter.safetensors"
expect_fail "a missing file" "nope.safetensors: cannot open" \
    "$STEER" generate -m "$M" -p "$P" -n 2 --adapter "$TMP/nope.safetensors"
finish

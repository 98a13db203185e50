#!/usr/bin/env bash
# cli_badinput.sh STEER REPO — bad inputs fail cleanly: exit status 1..127
# (no crash), exactly one line on stderr naming the offending file, site or
# layer, and no output file (nor a temporary one) left behind.
set -u
STEER=${1:?usage: cli_badinput.sh STEER REPO}
REPO=${2:?usage: cli_badinput.sh STEER REPO}
DIR=$REPO/models/stories260K
MODEL=$DIR/stories260K.bin
TOK=$DIR/tok512.bin
source "$(dirname "$0")/lib_cli.sh"
OUT=$TMP/out/result.safetensors
mkdir -p "$TMP/out"


# ---------------------------------------------------------------- broken files
head -c 5000 "$MODEL" >"$TMP/truncated.bin"
expect_fail "truncated .bin" "truncated.bin" \
    "$STEER" logits -m "$TMP/truncated.bin" -z "$TOK" --ids "1 403" -o "$OUT"

head -c 100000 "$DIR/stories260K.gguf" >"$TMP/truncated.gguf"
expect_fail "truncated .gguf" "truncated.gguf" \
    "$STEER" logits -m "$TMP/truncated.gguf" --ids "1 403" -o "$OUT"

head -c 600 "$DIR/stories260K.gguf" >"$TMP/header_only.gguf"
expect_fail "GGUF cut inside its header" "header_only.gguf" \
    "$STEER" logits -m "$TMP/header_only.gguf" --ids "1 403" -o "$OUT"

cp "$DIR/stories260K.gguf" "$TMP/badmagic.gguf"
printf 'GGUX' | dd of="$TMP/badmagic.gguf" bs=1 seek=0 conv=notrunc status=none
expect_fail "corrupt .gguf (wrong magic)" "badmagic.gguf" \
    "$STEER" logits -m "$TMP/badmagic.gguf" --ids "1 403" -o "$OUT"

head -c 3000 "$TOK" >"$TMP/truncated_tok.bin"
expect_fail "truncated tokenizer (-z)" "truncated_tok.bin" \
    "$STEER" logits -m "$MODEL" -z "$TMP/truncated_tok.bin" -p "The cat" -o "$OUT"

expect_fail "missing model file" "no_such_model.bin" \
    "$STEER" logits -m "$TMP/no_such_model.bin" --ids "1 403" -o "$OUT"
expect_fail "missing model file (generate)" "no_such_model.gguf" \
    "$STEER" generate -m "$TMP/no_such_model.gguf" -p "The cat" -n 4

: >"$TMP/empty.gguf"
expect_fail "empty model file" "empty.gguf" \
    "$STEER" info "$TMP/empty.gguf"

# ---------------------------------------------------------------- sites and layers
expect_fail "unknown site (--sites)" "foo" \
    "$STEER" capture -m "$MODEL" -p "The cat" --sites resid_post,foo -o "$OUT"
expect_fail "layer out of range (--layers)" "layer 9 out of range (model has 5 layers)" \
    "$STEER" capture -m "$MODEL" -p "The cat" --layers 0,9 -o "$OUT"

# A valid vector file: resid_post.2 [1, 64] from a 1-token prompt (BOS).
VEC=$TMP/vec.safetensors
if "$STEER" capture -m "$MODEL" --ids "1" --sites resid_post --layers 2 -o "$VEC" 2>"$TMP/err.txt"; then
    pass "made vector file resid_post.2 [1, 64]"
else
    fail "capture of a vector: $(cat "$TMP/err.txt")"
fi
"$STEER" logits -m "$MODEL" --ids "1 403" --steer "$VEC" -o "$TMP/ok.safetensors" 2>"$TMP/err.txt" &&
    pass "the valid vector file is accepted" || fail "valid vector rejected: $(cat "$TMP/err.txt")"

expect_fail "unknown site (--steer FILE:SITE)" "foo" \
    "$STEER" logits -m "$MODEL" --ids "1 403" --steer "$VEC:foo" -o "$OUT"
expect_fail "layer out of range (--steer FILE:SITE:LAYERS)" "layer 9 out of range" \
    "$STEER" logits -m "$MODEL" --ids "1 403" --steer "$VEC:resid_post:9" -o "$OUT"
expect_fail "--steer filters match no tensor" "vec.safetensors" \
    "$STEER" logits -m "$MODEL" --ids "1 403" --steer "$VEC:attn_out" -o "$OUT"
expect_fail "missing vector file" "no_such_vec.safetensors" \
    "$STEER" generate -m "$MODEL" -p "The cat" -n 4 --steer "$TMP/no_such_vec.safetensors"

# Wrong length: resid_post.0 [1, 128] captured from tiny-random-llama (d=128)
# given to stories260K (d=64).
WIDE=$TMP/wide128.safetensors
if "$STEER" capture -m "$REPO/tests/data/llama/tiny-random-llama.f32.gguf" --ids "1" --sites resid_post --layers 0 \
    -o "$WIDE" 2>"$TMP/err.txt"; then
    expect_fail "vector of the wrong length (128 for a 64-wide site)" "wide128.safetensors" \
        "$STEER" logits -m "$MODEL" --ids "1 403" --steer "$WIDE" -o "$OUT"
    expect_fail "vector of the wrong length names the tensor" "resid_post.0" \
        "$STEER" generate -m "$MODEL" -p "The cat" -n 4 --steer "$WIDE"
else
    fail "capture from tiny-random-llama: $(cat "$TMP/err.txt")"
fi

# NaN: overwrite the last float of the data (the file ends with the data) by
# 0x7fc00000, little-endian.
cp "$VEC" "$TMP/nan.safetensors"
size=$(stat -c %s "$TMP/nan.safetensors")
printf '\x00\x00\xc0\x7f' | dd of="$TMP/nan.safetensors" bs=1 seek=$((size - 4)) conv=notrunc status=none
expect_fail "NaN in a vector" "nan.safetensors" \
    "$STEER" logits -m "$MODEL" --ids "1 403" --steer "$TMP/nan.safetensors" -o "$OUT"
expect_fail "NaN in a vector (generate)" "nan.safetensors" \
    "$STEER" generate -m "$MODEL" -p "The cat" -n 4 --steer "$TMP/nan.safetensors"

# A truncated vector file.
head -c $((size - 100)) "$VEC" >"$TMP/short_vec.safetensors"
expect_fail "truncated vector file" "short_vec.safetensors" \
    "$STEER" logits -m "$MODEL" --ids "1 403" --steer "$TMP/short_vec.safetensors" -o "$OUT"

# ---------------------------------------------------------------- context
LONG="Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
expect_fail "prompt longer than the context (logits --ctx 8)" "context" \
    "$STEER" logits -m "$MODEL" --ctx 8 -p "$LONG" -o "$OUT"
expect_fail "prompt longer than the context (generate --ctx 8)" "context holds 8" \
    "$STEER" generate -m "$MODEL" --ctx 8 -p "$LONG" -n 4

# ---------------------------------------------------------------- outputs
expect_fail "output in a missing directory" "no_such_dir" \
    "$STEER" logits -m "$MODEL" --ids "1 403" -o "$TMP/out/no_such_dir/x.safetensors"

# ---------------------------------------------------------------- usage
expect_fail "unknown option" "--frobnicate" \
    "$STEER" generate -m "$MODEL" --frobnicate
expect_fail "token id out of range" "600" \
    "$STEER" logits -m "$MODEL" --ids "1 600" -o "$OUT"
expect_fail "unknown command" "frobnicate" \
    "$STEER" frobnicate

echo "cli_badinput: $fails failure(s)"
[ "$fails" -eq 0 ]

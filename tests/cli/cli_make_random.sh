#!/usr/bin/env bash
# cli_make_random.sh STEER REPO — `steer make-random` writes GGUF llama models
# that load (info), list llama.cpp's tensor names, generate, and are
# deterministic in --seed; f32, f16 and bf16.
set -u
STEER=${1:?usage: cli_make_random.sh STEER REPO}
source "$(dirname "$0")/lib_cli.sh"

SIZES="--d 64 --ff 160 --heads 4 --kv-heads 2 --layers 3 --vocab 400 --ctx 128"
for dt in f32 f16 bf16; do
    M=$TMP/rand_$dt.gguf
    # shellcheck disable=SC2086
    if ! "$STEER" make-random -o "$M" $SIZES --dtype $dt --seed 5 2>"$TMP/err.txt"; then
        fail "make-random --dtype $dt: $(cat "$TMP/err.txt")"
        continue
    fi
    "$STEER" info "$M" >"$TMP/info.txt" 2>&1
    has "$TMP/info.txt" '^layers: +3$' "$dt: info layers 3"
    has "$TMP/info.txt" '^d_model: +64$' "$dt: info d_model 64"
    has "$TMP/info.txt" '^heads: +4$' "$dt: info heads 4"
    has "$TMP/info.txt" '^kv_heads: +2$' "$dt: info kv_heads 2"
    has "$TMP/info.txt" '^head_dim: +16$' "$dt: info head_dim 16"
    has "$TMP/info.txt" '^d_ff: +160$' "$dt: info d_ff 160"
    has "$TMP/info.txt" '^vocab: +400$' "$dt: info vocab 400"
    has "$TMP/info.txt" '^context: +128$' "$dt: info context 128"
    has "$TMP/info.txt" "^dtype: +$(echo $dt | tr a-z A-Z)\$" "$dt: info dtype"
    # params: embd + head 2*400*64, per layer q,o 64*64, k,v 32*64, gate,up,down 3*160*64, 2 norms; final norm
    params=$((2 * 400 * 64 + 3 * (2 * 64 * 64 + 2 * 32 * 64 + 3 * 160 * 64 + 2 * 64) + 64))
    has "$TMP/info.txt" "^parameters: +$params " "$dt: info parameters $params"
    "$STEER" tensors "$M" >"$TMP/list.txt" 2>&1
    has "$TMP/list.txt" '^tensors: 30 ' "$dt: 30 tensors (embd, 3 x 9, output_norm, output)"
    T=$(echo $dt | tr a-z A-Z)
    has "$TMP/list.txt" "^ +token_embd\\.weight +$T +\\[400, 64\\]$" "$dt: token_embd.weight [400, 64]"
    has "$TMP/list.txt" "^ +blk\\.2\\.attn_k\\.weight +$T +\\[32, 64\\]$" "$dt: blk.2.attn_k.weight [32, 64]"
    has "$TMP/list.txt" "^ +blk\\.0\\.ffn_down\\.weight +$T +\\[64, 160\\]$" "$dt: blk.0.ffn_down.weight [64, 160]"
    has "$TMP/list.txt" '^ +blk\.1\.ffn_norm\.weight +F32 +\[64\]$' "$dt: norms stay F32"
    has "$TMP/list.txt" "^ +output\\.weight +$T +\\[400, 64\\]$" "$dt: output.weight [400, 64]"
    has "$TMP/list.txt" '^general.architecture = llama$' "$dt: general.architecture llama"
    if "$STEER" generate -m "$M" -p "hello world" -n 12 >"$TMP/gen_$dt.txt" 2>"$TMP/err.txt" &&
        grep -q '^hello world' "$TMP/gen_$dt.txt"; then
        pass "$dt: generates: $(head -c 80 "$TMP/gen_$dt.txt")"
    else
        fail "$dt: generate: $(cat "$TMP/err.txt")"
    fi
done

# The bytes are pinned: these digests were taken from the binary before issue
# 17 moved make-random onto the public API (steer_gguf_writer_*,
# steer_f32_to_f16/bf16), so any change in key order, padding, rounding or the
# random stream shows here. (Integer hashing and exact float products: the same
# on every x86-64 build.)
for pin in "f32 733664 ec21b5244018f53c69435a8ed88dd3efc8490fc1a9afdf110d97a3f4afefe710" \
    "f16 373216 80388de40589d6fa8885737b142aaaf3b86f16470ee469a2f6df2462d60151b0" \
    "bf16 373216 80c4876045a98c68e9bb8350ab84489027246aec5cc4ed5064f251711cf777d6"; do
    read -r dt size sum <<<"$pin"
    got_size=$(stat -c %s "$TMP/rand_$dt.gguf" 2>/dev/null)
    got_sum=$(sha256sum "$TMP/rand_$dt.gguf" 2>/dev/null | cut -d' ' -f1)
    [ "$got_size" = "$size" ] && [ "$got_sum" = "$sum" ] && pass "$dt --seed 5: $size bytes, sha256 ${sum:0:16}…" ||
        fail "$dt --seed 5: $got_size bytes sha256 $got_sum, want $size bytes sha256 $sum"
done

# Deterministic in --seed; another seed gives other weights.
# shellcheck disable=SC2086
"$STEER" make-random -o "$TMP/again.gguf" $SIZES --dtype f32 --seed 5 &&
    "$STEER" make-random -o "$TMP/other.gguf" $SIZES --dtype f32 --seed 6 || fail "make-random (seed runs)"
cmp -s "$TMP/rand_f32.gguf" "$TMP/again.gguf" && pass "same --seed: identical files ($(stat -c %s "$TMP/again.gguf") bytes)" ||
    fail "same --seed gave different files"
cmp -s "$TMP/rand_f32.gguf" "$TMP/other.gguf" && fail "--seed 5 and 6 gave identical files" ||
    pass "--seed 5 and --seed 6 differ"

# --tied leaves out output.weight.
# shellcheck disable=SC2086
"$STEER" make-random -o "$TMP/tied.gguf" $SIZES --tied 2>"$TMP/err.txt" && "$STEER" info "$TMP/tied.gguf" >"$TMP/info.txt" 2>&1
has "$TMP/info.txt" '^tied_head: +yes$' "--tied: info tied_head yes"

# Bad sizes are usage errors (exit 2, one line, no file).
"$STEER" make-random -o "$TMP/bad.gguf" --d 64 --heads 5 2>"$TMP/err.txt"
rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l <"$TMP/err.txt")" -eq 1 ] && [ ! -e "$TMP/bad.gguf" ] &&
    pass "--d 64 --heads 5 -> exit 2: $(cat "$TMP/err.txt")" || fail "--heads 5: exit $rc: $(cat "$TMP/err.txt")"

echo "cli_make_random: $fails failure(s)"
[ "$fails" -eq 0 ]

#!/usr/bin/env bash
# cli_convert.sh STEER REPO — `steer make-model` and `steer convert`: --help,
# a random model of every architecture round-trips HF -> GGUF -> HF with the
# same tensors and the same greedy text, llama also through llama2.c, a bf16
# conversion, quantizing (a pure block type, llama-quantize's mixes, quantized
# inputs, `steer info` on the result), and one-line errors that leave nothing
# behind.
set -u
STEER=${1:?usage: cli_convert.sh STEER REPO}
REPO=${2:?usage: cli_convert.sh STEER REPO}
# shellcheck source=tests/cli/lib_cli.sh
. "$REPO/tests/cli/lib_cli.sh" # TMP, pass, fail, has, finish

# run NAME CMD...: the command must succeed
run() {
    local name=$1
    shift
    if "$@" >"$TMP/out.txt" 2>"$TMP/err.txt"; then pass "$name"; else
        fail "$name: exit $?: $(cat "$TMP/err.txt")"
    fi
}
# fails NAME STATUS NEEDLE CMD...: exit STATUS, one line on stderr holding NEEDLE
fails_with() {
    local name=$1 want=$2 needle=$3
    shift 3
    "$@" >"$TMP/out.txt" 2>"$TMP/err.txt"
    local rc=$?
    if [ "$rc" -eq "$want" ] && [ "$(wc -l <"$TMP/err.txt")" -eq 1 ] && grep -q -- "$needle" "$TMP/err.txt"; then
        pass "$name -> exit $rc: $(cat "$TMP/err.txt")"
    else
        fail "$name: exit $rc (want $want), stderr: $(cat "$TMP/err.txt")"
    fi
}
# the tensors of a GGUF or safetensors file, as `steer tensors` lists them
tensors() { "$STEER" tensors "$1" 2>&1 | grep -E '^ +[a-z_.0-9]+ +(F32|F16|BF16) ' | sort; }
greedy() { "$STEER" generate -m "$1" -p "hello world" -n 16 2>/dev/null; }

# --help
for cmd in convert make-model; do
    "$STEER" $cmd --help >"$TMP/help.txt" 2>&1 && has "$TMP/help.txt" "^usage: steer $cmd" "$cmd --help" ||
        fail "$cmd --help exits non-zero"
    has "$TMP/help.txt" '^example:' "$cmd --help has an example"
done
"$STEER" --help >"$TMP/help.txt" 2>&1
has "$TMP/help.txt" '^  convert ' "steer --help lists convert"
has "$TMP/help.txt" '^  make-model ' "steer --help lists make-model"

# every architecture: HF -> GGUF -> HF
for arch in llama gemma gemma2 gemma3 qwen2; do
    D=$TMP/$arch
    run "make-model --arch $arch" "$STEER" make-model --arch $arch --d 64 --ff 128 --layers 2 --heads 4 --kv-heads 2 \
        --vocab 512 --ctx 64 --seed 5 -o "$D"
    run "$arch: convert hf -> gguf" "$STEER" convert "$D" "$D.gguf"
    run "$arch: convert gguf -> hf" "$STEER" convert "$D.gguf" "${D}_back"
    "$STEER" info "$D.gguf" >"$TMP/info.txt" 2>&1
    has "$TMP/info.txt" "^architecture: +$arch\$" "$arch: gguf info architecture"
    has "$TMP/info.txt" '^head_dim: +16$' "$arch: gguf info head_dim 16"
    if [ "$arch" = llama ] || [ "$arch" = qwen2 ]; then
        # no (1 + w) norms: the safetensors files are identical
        cmp -s "$D/model.safetensors" "${D}_back/model.safetensors" && pass "$arch: hf -> gguf -> hf: identical model.safetensors" ||
            fail "$arch: hf -> gguf -> hf changed model.safetensors"
    fi
    tensors "$D/model.safetensors" | awk '{print $1, $2, $3, $4}' >"$TMP/a.txt"
    tensors "${D}_back/model.safetensors" | awk '{print $1, $2, $3, $4}' >"$TMP/b.txt"
    [ -s "$TMP/a.txt" ] && cmp -s "$TMP/a.txt" "$TMP/b.txt" && pass "$arch: same tensor names, dtypes and shapes ($(wc -l <"$TMP/a.txt"))" ||
        fail "$arch: tensor lists differ: $(diff "$TMP/a.txt" "$TMP/b.txt" | head -5)"
    g1=$(greedy "$D") g2=$(greedy "$D.gguf") g3=$(greedy "${D}_back")
    [ -n "$g1" ] && [ "$g1" = "$g2" ] && [ "$g1" = "$g3" ] && pass "$arch: same greedy text from hf, gguf, hf again: ${g1:0:50}" ||
        fail "$arch: greedy text differs: '$g1' / '$g2' / '$g3'"
done

# llama through llama2.c and back; bf16
mkdir "$TMP/l2c"
run "llama: gguf -> llama2.c" "$STEER" convert "$TMP/llama.gguf" "$TMP/l2c/model.bin"
[ -f "$TMP/l2c/tokenizer.bin" ] && pass "llama2.c output has tokenizer.bin beside it" || fail "no tokenizer.bin"
run "llama: llama2.c -> hf" "$STEER" convert "$TMP/l2c/model.bin" "$TMP/llama_l2c"
cmp -s "$TMP/llama/model.safetensors" "$TMP/llama_l2c/model.safetensors" &&
    pass "llama: hf -> gguf -> llama2.c -> hf: identical model.safetensors" || fail "llama: llama2.c round trip changed tensors"
[ "$(greedy "$TMP/l2c/model.bin")" = "$(greedy "$TMP/llama")" ] && pass "llama: same greedy text from llama2.c" ||
    fail "llama: llama2.c greedy text differs"
run "llama: hf -> gguf bf16" "$STEER" convert "$TMP/llama" "$TMP/llama16.gguf" --dtype bf16
"$STEER" info "$TMP/llama16.gguf" >"$TMP/info.txt" 2>&1
has "$TMP/info.txt" '^dtype: +BF16$' "bf16 conversion: info dtype BF16"
"$STEER" tensors "$TMP/llama16.gguf" >"$TMP/list.txt" 2>&1
has "$TMP/list.txt" '^ +blk\.0\.attn_norm\.weight +F32 ' "bf16 conversion: norms stay F32"
has "$TMP/list.txt" '^ +blk\.1\.attn_q\.weight +BF16 ' "bf16 conversion: matrices BF16"
run "--format gguf with another extension" "$STEER" convert "$TMP/llama" "$TMP/llama.model" --format gguf
"$STEER" info "$TMP/llama.model" >"$TMP/info.txt" 2>&1
has "$TMP/info.txt" '^format: +gguf$' "--format gguf: a GGUF file"

run "an HF output named with a trailing slash" "$STEER" convert "$TMP/llama.gguf" "$TMP/slash/"
[ -f "$TMP/slash/config.json" ] && [ -z "$(ls -d "$TMP"/slash?* 2>/dev/null)" ] && pass "trailing slash: directory slash" ||
    fail "trailing slash: $(ls -A "$TMP")"
run "converting onto an earlier output replaces it" "$STEER" convert "$TMP/gemma.gguf" "$TMP/slash"
"$STEER" info "$TMP/slash" >"$TMP/info.txt" 2>&1
has "$TMP/info.txt" '^architecture: +gemma$' "the replaced directory holds the new model"

# quantizing: a random llama with rows of 256 (every K type applies)
Q=$TMP/q
run "make-model llama d 256" "$STEER" make-model --arch llama --d 256 --ff 256 --layers 2 --heads 4 --kv-heads 2 \
    --vocab 512 --ctx 64 --seed 5 -o "$Q"
run "hf -> gguf q4_k_m" "$STEER" convert "$Q" "$Q.q4km.gguf" --dtype q4_k_m
has "$TMP/out.txt" '^tensor types: F32 5, Q4_K 13, Q6_K 3 \(general.file_type 15 Q4_K_M\)$' \
    "q4_k_m: attn_v, ffn_down of layer 1 and output.weight Q6_K, the rest Q4_K"
"$STEER" info "$Q.q4km.gguf" --tensors >"$TMP/info.txt" 2>&1
has "$TMP/info.txt" '^file_type: +15 \(Q4_K_M\)$' "info: general.file_type and its name"
has "$TMP/info.txt" '^  Q4_K +13 tensors +[0-9]+ bytes' "info: count and bytes per type"
has "$TMP/info.txt" '^  Q6_K +3 tensors ' "info: Q6_K count"
has "$TMP/info.txt" '^  blk\.1\.attn_v\.weight +Q6_K +\[128, 256\] ' "info --tensors: each tensor's type and shape"
has "$TMP/info.txt" '^  blk\.0\.attn_norm\.weight +F32 +\[256\] ' "info --tensors: norms F32"
[ -n "$(greedy "$Q.q4km.gguf")" ] && pass "q4_k_m: generates text" || fail "q4_k_m: no text"
run "gguf -> q8_0" "$STEER" convert "$Q.q4km.gguf" "$Q.q8.gguf" --dtype q8_0
has "$TMP/out.txt" '^tensor types: F32 5, Q8_0 16 \(general.file_type 7 Q8_0\)$' "q8_0: every matrix Q8_0"
if [ "$(wc -l <"$TMP/err.txt")" -eq 1 ] && grep -q 'warning: .*q4km.gguf holds 16 block-quantized tensors (Q4_K 13, Q6_K 3)' \
    "$TMP/err.txt"; then pass "re-quantizing a quantized input warns (one line)"; else
    fail "no re-quantization warning: $(cat "$TMP/err.txt")"
fi
run "hf -> gguf q4_0 --mix" "$STEER" convert "$Q" "$Q.q40.gguf" --dtype q4_0 --mix
has "$TMP/out.txt" '^tensor types: F32 5, Q4_0 15, Q6_K 1 \(general.file_type 2 Q4_0\)$' \
    "q4_0 --mix: llama-quantize's Q4_0 (output.weight Q6_K)"
run "hf -> gguf q2_k --mix" "$STEER" convert "$Q" "$Q.q2k.gguf" --dtype q2_k --mix
has "$TMP/out.txt" '^tensor types: F32 5, Q2_K 9, Q3_K 6, Q6_K 1 \(general.file_type 10 Q2_K\)$' "q2_k --mix: attn_v, attn_output, ffn_down Q3_K"
run "quantized gguf -> hf" "$STEER" convert "$Q.q4km.gguf" "${Q}_deq"
[ "$(tensors "${Q}_deq/model.safetensors" | awk '$2 != "F32"' | wc -l)" -eq 0 ] &&
    [ "$(tensors "${Q}_deq/model.safetensors" | wc -l)" -eq 21 ] && pass "quantized -> hf: 21 tensors, all F32" ||
    fail "quantized -> hf: $(tensors "${Q}_deq/model.safetensors" | head -3)"
run "quantized gguf -> gguf (keep)" "$STEER" convert "$Q.q4km.gguf" "$Q.keep.gguf"
has "$TMP/out.txt" '^tensor types: F32 5, Q4_K 13, Q6_K 3 \(general.file_type 15 Q4_K_M\)$' "keep: types and file_type kept"
# an input with a tensor type steer does not read: output_norm.weight as IQ2_XXS (16)
cp "$Q.q4km.gguf" "$TMP/iq2.gguf"
at=$(grep -obUa -- output_norm.weight "$TMP/iq2.gguf" | head -1 | cut -d: -f1)
printf '\x10' | dd of="$TMP/iq2.gguf" bs=1 seek=$((at + 18 + 4 + 8)) conv=notrunc status=none

# errors: one line, right status, nothing left behind
n_before=$(ls -A "$TMP" | wc -l)
fails_with "--dtype iq2_xxs" 2 "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, or a mix q3_k_s" \
    "$STEER" convert "$Q" "$TMP/x.gguf" --dtype iq2_xxs
fails_with "--dtype q4_k_l" 2 "q4_k_m" "$STEER" convert "$Q" "$TMP/x.gguf" --dtype q4_k_l
fails_with "--mix without --dtype" 2 "--mix needs --dtype" "$STEER" convert "$Q" "$TMP/x.gguf" --mix
fails_with "--mix with f16" 2 "--mix needs a block type" "$STEER" convert "$Q" "$TMP/x.gguf" --dtype f16 --mix
fails_with "q4_0 to a Hugging Face directory" 1 "need a GGUF output" "$STEER" convert "$Q" "$TMP/x" --dtype q4_0
fails_with "q4_k_m to llama2.c" 1 "need a GGUF output" "$STEER" convert "$Q" "$TMP/x.bin" --dtype q4_k_m
fails_with "convert an IQ2_XXS tensor" 1 "iq2.gguf: tensor output_norm.weight has unsupported ggml type 16 (IQ2_XXS)" \
    "$STEER" convert "$TMP/iq2.gguf" "$TMP/x.gguf" --dtype q8_0
fails_with "info on an IQ2_XXS tensor" 1 "iq2.gguf: tensor output_norm.weight has unsupported ggml type 16 (IQ2_XXS)" \
    "$STEER" info "$TMP/iq2.gguf"
fails_with "--format onnx" 2 "hf, gguf or llama2c" "$STEER" convert "$TMP/llama" "$TMP/x" --format onnx
fails_with "--dtype f8" 2 "f32, f16, bf16" "$STEER" convert "$TMP/llama" "$TMP/x.gguf" --dtype f8
fails_with "gemma -> llama2.c" 1 "llama2.c checkpoints hold only the llama architecture" \
    "$STEER" convert "$TMP/gemma" "$TMP/gemma.bin"
fails_with "output in a missing directory" 1 "does not exist" "$STEER" convert "$TMP/llama" "$TMP/no/such/dir/x.gguf"
fails_with "missing input" 1 "no-model" "$STEER" convert "$TMP/no-model" "$TMP/y.gguf"
fails_with "make-model --arch gpt2" 2 "unknown --arch" "$STEER" make-model --arch gpt2 -o "$TMP/z"
fails_with "make-model --heads 5" 2 "not a multiple" "$STEER" make-model --arch llama --heads 5 -o "$TMP/z"
fails_with "make-model without -o" 2 "missing -o" "$STEER" make-model --arch llama
fails_with "convert with one argument" 2 "" "$STEER" convert "$TMP/llama"
n_after=$(ls -A "$TMP" | wc -l)
[ "$n_before" -eq "$n_after" ] && pass "failed commands left nothing behind" ||
    fail "failed commands left $((n_after - n_before)) entries: $(ls -A "$TMP")"

echo -n "cli_convert: "
finish

#!/usr/bin/env bash
# cli_robust.sh STEER REPO — bad inputs not covered by cli_badinput.sh,
# cli_data.sh and cli_vectors.sh (docs/ROBUSTNESS.md lists them all): broken
# llama2.c / GGUF / safetensors / Hugging Face files, safetensors headers that
# lie about their data, vector files with foreign tensors, bad dataset lines,
# and non-finite numbers in a model. Each must give exit status 1..127 (no
# crash), exactly one line on stderr naming the file and the problem, and no
# output file (nor a temporary one) left in the output directory.
set -u
STEER=${1:?usage: cli_robust.sh STEER REPO}
REPO=${2:?usage: cli_robust.sh STEER REPO}
DIR=$REPO/models/stories260K
MODEL=$DIR/stories260K.bin
GGUF=$DIR/stories260K.gguf
TOK=$DIR/tok512.bin
source "$(dirname "$0")/lib_cli.sh"
export LC_ALL=C
mkdir -p "$TMP/out"
OUT=$TMP/out/result.safetensors

# put FILE OFFSET BYTES: overwrites bytes (printf escapes) at OFFSET.
put() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# offset_of FILE STRING: byte offset of STRING's first occurrence.
offset_of() { grep -obUa -- "$2" "$1" | head -1 | cut -d: -f1; }
# st_write FILE HEADER DATA_BYTES [DATA]: a safetensors file (header length
# as u64 little-endian, the header, then DATA (printf escapes) padded with
# zero bytes to DATA_BYTES).
st_write() {
    local n=${#2}
    {
        printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x00\\x00\\x00\\x00' $((n & 255)) $((n >> 8 & 255)) \
            $((n >> 16 & 255)) $((n >> 24 & 255)))"
        printf '%s' "$2"
        printf "${4:-}" >"$1.data"
        cat "$1.data"
        head -c $(($3 - $(wc -c <"$1.data"))) /dev/zero
    } >"$1"
    rm -f "$1.data"
}

# ---------------------------------------------------------------- llama2.c checkpoints
{ cat "$MODEL"; printf 'xxxx'; } >"$TMP/trailing.bin"
expect_fail "llama2.c: trailing bytes after the weights" "trailing.bin: trailing bytes after the weights" \
    "$STEER" logits -m "$TMP/trailing.bin" -z "$TOK" --ids "1 403" -o "$OUT"
cp "$MODEL" "$TMP/badheader.bin" && put "$TMP/badheader.bin" 0 '\xfb\xff\xff\xff'
expect_fail "llama2.c: negative dim in the header" "badheader.bin: not a llama2.c checkpoint (bad header: dim -5" \
    "$STEER" info "$TMP/badheader.bin" -z "$TOK"
cp "$MODEL" "$TMP/v2.bin" && put "$TMP/v2.bin" 0 'ak42'
expect_fail "llama2.c: version-2 export" "v2.bin: llama2.c version-2 export ('ak42')" \
    "$STEER" info "$TMP/v2.bin" -z "$TOK"
mkdir -p "$TMP/notok" && cp "$MODEL" "$TMP/notok/model.bin"
expect_fail "llama2.c: no tokenizer beside it" "model.bin: no tokenizer found" \
    "$STEER" generate -m "$TMP/notok/model.bin" -p "The cat" -n 4

# ---------------------------------------------------------------- GGUF
cp "$GGUF" "$TMP/v9.gguf" && put "$TMP/v9.gguf" 4 '\x09'
expect_fail "GGUF: unknown version" "v9.gguf: unknown GGUF version 9" "$STEER" info "$TMP/v9.gguf"
cp "$GGUF" "$TMP/be.gguf" && put "$TMP/be.gguf" 4 '\x00\x00\x00\x03'
expect_fail "GGUF: big-endian" "be.gguf: big-endian GGUF files are not supported" "$STEER" info "$TMP/be.gguf"
# tensor info of output_norm.weight: name (18 bytes), n_dims u32, ne[0] u64, type u32
cp "$GGUF" "$TMP/iq2.gguf" && put "$TMP/iq2.gguf" $(($(offset_of "$TMP/iq2.gguf" output_norm.weight) + 18 + 4 + 8)) '\x10'
expect_fail "GGUF: unsupported tensor type (IQ2_XXS)" "iq2.gguf: tensor output_norm.weight has unsupported ggml type 16 (IQ2_XXS)" \
    "$STEER" logits -m "$TMP/iq2.gguf" --ids "1 403" -o "$OUT"
cp "$GGUF" "$TMP/dims.gguf" && put "$TMP/dims.gguf" $(($(offset_of "$TMP/dims.gguf" output_norm.weight) + 18)) '\x07'
expect_fail "GGUF: tensor with 7 dimensions" "dims.gguf: tensor output_norm.weight has 7 dimensions" \
    "$STEER" info "$TMP/dims.gguf"
# general.architecture's value: key (20 bytes), type u32, length u64, then "llama"
cp "$GGUF" "$TMP/arch.gguf" && put "$TMP/arch.gguf" $(($(offset_of "$TMP/arch.gguf" general.architecture) + 20 + 4 + 8)) 'xxxxx'
expect_fail "GGUF: unsupported architecture" "arch.gguf: architecture 'xxxxx' is not supported" \
    "$STEER" info "$TMP/arch.gguf"
expect_fail "GGUF: convert a truncated file (no output left)" "short.gguf" \
    bash -c "head -c 200000 '$GGUF' >'$TMP/short.gguf' && '$STEER' convert '$TMP/short.gguf' '$TMP/out/x.gguf'"

# ---------------------------------------------------------------- Hugging Face directories
HF=$TMP/hf
"$STEER" make-model --arch llama --d 16 --ff 32 --layers 1 --heads 2 --kv-heads 1 --vocab 259 --ctx 16 --seed 7 \
    -o "$HF" >/dev/null 2>&1 && pass "made a tiny HF model" || fail "make-model"
hfcopy() { rm -rf "$TMP/$1" && cp -r "$HF" "$TMP/$1"; }
hfcopy cfgjson && printf '{"hidden_size": 16,' >"$TMP/cfgjson/config.json"
expect_fail "HF: config.json not JSON" "cfgjson/config.json: not a valid JSON object" \
    "$STEER" logits -m "$TMP/cfgjson" --ids "1 3" -o "$OUT"
hfcopy cfgmiss && sed -i 's/"hidden_size"/"hidden_sizes"/' "$TMP/cfgmiss/config.json"
expect_fail "HF: config.json without hidden_size" "cfgmiss/config.json: missing field 'hidden_size'" \
    "$STEER" info "$TMP/cfgmiss"
hfcopy cfgtype && sed -i 's/"num_hidden_layers":[[:space:]]*1/"num_hidden_layers": "1"/' "$TMP/cfgtype/config.json"
expect_fail "HF: num_hidden_layers is a string" "cfgtype/config.json: field 'num_hidden_layers' is not an integer" \
    "$STEER" info "$TMP/cfgtype"
hfcopy cfgarch && sed -i 's/LlamaForCausalLM/GPT2LMHeadModel/; s/"model_type":[[:space:]]*"llama"/"model_type": "gpt2"/' \
    "$TMP/cfgarch/config.json"
expect_fail "HF: unsupported architecture" "cfgarch/config.json: unsupported architecture 'GPT2LMHeadModel'" \
    "$STEER" info "$TMP/cfgarch"
hfcopy cfgdims && sed -i 's/"hidden_size":[[:space:]]*16/"hidden_size": 32/' "$TMP/cfgdims/config.json"
expect_fail "HF: config.json sizes disagree with the weights" "cfgdims: tensor model.embed_tokens.weight has shape [259, 16], expected [259, 32]" \
    "$STEER" info "$TMP/cfgdims"
hfcopy cfgbig && sed -i 's/"vocab_size":[[:space:]]*259/"vocab_size": 2592222222222222222/' "$TMP/cfgbig/config.json"
expect_fail "HF: vocab_size beyond int" "cfgbig/config.json: field 'vocab_size' = 2.59222e+18 is out of range" \
    "$STEER" info "$TMP/cfgbig"
hfcopy cfgrope && sed -i 's/"rope_scaling":[[:space:]]*null/"rope_scaling": {"type": "linear", "factor": 0}/' \
    "$TMP/cfgrope/config.json"
expect_fail "HF: rope_scaling factor 0" "cfgrope/config.json: rope_scaling factor 0 must be positive and finite" \
    "$STEER" info "$TMP/cfgrope"
hfcopy trunc && truncate -s 5000 "$TMP/trunc/model.safetensors"
expect_fail "HF: truncated model.safetensors" "trunc/model.safetensors: tensor" \
    "$STEER" logits -m "$TMP/trunc" --ids "1 3" -o "$OUT"
hfcopy noweights && rm "$TMP/noweights/model.safetensors"
expect_fail "HF: no weights" "noweights: no model.safetensors or model.safetensors.index.json" \
    "$STEER" info "$TMP/noweights"
hfcopy shard && mv "$TMP/shard/model.safetensors" "$TMP/shard/model-00001-of-00002.safetensors" &&
    printf '{"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00002-of-00002.safetensors"}}' \
        >"$TMP/shard/model.safetensors.index.json"
expect_fail "HF: index names a missing shard" "shard/model-00002-of-00002.safetensors: cannot open" \
    "$STEER" info "$TMP/shard"
printf '{"weight_map": {"model.norm.weight": 3}}' >"$TMP/shard/model.safetensors.index.json"
expect_fail "HF: index entry that is not a file name" "model.safetensors.index.json: weight_map entry 'model.norm.weight' is not a file name" \
    "$STEER" info "$TMP/shard"
printf '{"weight_map": {"model.norm.weight": "../model.safetensors"}}' >"$TMP/shard/model.safetensors.index.json"
expect_fail "HF: shard name with a '/'" "shard name '../model.safetensors' has a '/'" "$STEER" info "$TMP/shard"
hfcopy tokjson && printf '{"model": {"type": "BPE", "vocab": ' >"$TMP/tokjson/tokenizer.json"
expect_fail "HF: tokenizer.json not JSON" "tokjson/tokenizer.json" "$STEER" info "$TMP/tokjson"
hfcopy tokmodel && rm "$TMP/tokmodel/tokenizer.json" && head -c 300 "$DIR/tok512.model" >"$TMP/tokmodel/tokenizer.model"
expect_fail "HF: truncated tokenizer.model" "tokmodel/tokenizer.model" "$STEER" info "$TMP/tokmodel"
expect_fail "HF: convert a broken directory (no output left)" "cfgmiss/config.json" \
    "$STEER" convert "$TMP/cfgmiss" "$TMP/out/x.gguf"

# ---------------------------------------------------------------- safetensors headers that lie
F=$TMP/st
st_write "$F-big.safetensors" '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}' 8
expect_fail "safetensors: data_offsets past the end" "st-big.safetensors: tensor a data runs past end of file (ends at data byte 16 of 8)" \
    "$STEER" tensors "$F-big.safetensors"
st_write "$F-span.safetensors" '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}' 16
expect_fail "safetensors: shape and offsets disagree" "st-span.safetensors: tensor a: shape [4] of F32 is 16 bytes but data_offsets span 12" \
    "$STEER" tensors "$F-span.safetensors"
st_write "$F-overlap.safetensors" '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}' 16
expect_fail "safetensors: overlapping tensors" "st-overlap.safetensors: tensors a and b overlap" \
    "$STEER" tensors "$F-overlap.safetensors"
st_write "$F-rev.safetensors" '{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}' 8
expect_fail "safetensors: reversed data_offsets" "st-rev.safetensors: tensor a: data_offsets [8, 0] are reversed" \
    "$STEER" tensors "$F-rev.safetensors"
st_write "$F-dtype.safetensors" '{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}' 8
expect_fail "safetensors: unknown dtype" "st-dtype.safetensors: tensor a has unknown dtype Q4" \
    "$STEER" tensors "$F-dtype.safetensors"
st_write "$F-hlen.safetensors" '{}' 0 && put "$F-hlen.safetensors" 0 '\xff\xff'
expect_fail "safetensors: header length beyond the file" "st-hlen.safetensors: header length 65535 is larger than the file (10 bytes)" \
    "$STEER" tensors "$F-hlen.safetensors"
st_write "$F-json.safetensors" '{"a":{"dtype":"F32",' 0
expect_fail "safetensors: header is not JSON" "st-json.safetensors: header is not valid JSON" \
    "$STEER" tensors "$F-json.safetensors"
st_write "$F-utf8.safetensors" '{"__metadata__":{"k":"v?"}}' 0 && put "$F-utf8.safetensors" $((8 + 23)) '\xff'
expect_fail "safetensors: header is not UTF-8" "st-utf8.safetensors: header is not valid UTF-8" \
    "$STEER" tensors "$F-utf8.safetensors"

# ---------------------------------------------------------------- vector files
st_write "$F-foreign.safetensors" '{"foo.1":{"dtype":"F32","shape":[64],"data_offsets":[0,256]}}' 256
expect_fail "vector file with a foreign tensor name" "st-foreign.safetensors: tensor 'foo.1' is not a steering vector (expected <site>.<layer>)" \
    "$STEER" logits -m "$MODEL" --ids "1 403" --steer "$F-foreign.safetensors" -o "$OUT"
st_write "$F-lead0.safetensors" '{"resid_post.01":{"dtype":"F32","shape":[64],"data_offsets":[0,256]}}' 256
expect_fail "vector file: layer written with a leading zero" "tensor 'resid_post.01' is not a steering vector" \
    "$STEER" vec info "$F-lead0.safetensors"
st_write "$F-rank3.safetensors" '{"resid_post.1":{"dtype":"F32","shape":[1,1,64],"data_offsets":[0,256]}}' 256
expect_fail "vector file: 3-D tensor" "st-rank3.safetensors: tensor resid_post.1 must have shape [d] or [T, d]" \
    "$STEER" vec scale "$F-rank3.safetensors" 2 -o "$TMP/out/x.safetensors"
st_write "$F-i32.safetensors" '{"resid_post.1":{"dtype":"I32","shape":[64],"data_offsets":[0,256]}}' 256
expect_fail "vector file: integer dtype" "st-i32.safetensors: tensor resid_post.1 has dtype I32 (expected F32, F16, BF16 or F64)" \
    "$STEER" vec info "$F-i32.safetensors"
st_write "$F-inf.safetensors" '{"resid_post.1":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}' 8 \
    '\x00\x3c\x00\x7c'
expect_fail "vector file: Inf in an F16 vector" "st-inf.safetensors: tensor resid_post.1 has a non-finite value (inf) at row 0, index 1" \
    "$STEER" vec normalize "$F-inf.safetensors" -o "$TMP/out/x.safetensors"

# ---------------------------------------------------------------- datasets
printf '%s\n' '{"prompt": "a"}' '["prompt", "b"]' >"$TMP/array.jsonl"
expect_fail "jsonl: a line that is not an object" "array.jsonl:2: expected a JSON object" \
    "$STEER" data export "jsonl:$TMP/array.jsonl" -o "$TMP/out/x.jsonl"
printf '{"prompt": "a"}\n{"prompt": "b"}\0\n' >"$TMP/nul.jsonl"
expect_fail "jsonl: NUL byte" "nul.jsonl:2: NUL byte in line" "$STEER" data show "$TMP/nul.jsonl"
printf '{"prompt": "a"} {"prompt": "b"}\n' >"$TMP/two.jsonl"
expect_fail "jsonl: two values on a line" "two.jsonl:1: unexpected text after the JSON value at column 17" \
    "$STEER" data show "$TMP/two.jsonl"
printf '\n  \n' >"$TMP/blank.jsonl"
expect_fail "jsonl: no items" "blank.jsonl: no items (empty file)" "$STEER" data stats "$TMP/blank.jsonl"
printf '%s\n' '{"prompt": 5}' >"$TMP/type.jsonl"
expect_fail "jsonl: prompt is a number" "type.jsonl:1: " "$STEER" data show "$TMP/type.jsonl"
printf '%s\n' '{"expr": "[MAX 2 9 ]", "answer": 9}' '{"answer": 9}' >"$TMP/lo.jsonl"
expect_fail "listops: row without expr" "lo.jsonl:2: missing field 'expr'" "$STEER" data show "listops:$TMP/lo.jsonl"
printf '%s\n' '{"sentence": "a _ b _", "option1": "x", "option2": "y", "answer": "1"}' >"$TMP/two_.jsonl"
expect_fail "winogrande: two blanks" "two_.jsonl:1: sentence has 2 blanks '_' (expected exactly one)" \
    "$STEER" train -m "$MODEL" --tokenizer "$TOK" --data "winogrande:$TMP/two_.jsonl" --method vector --steps 1 --out "$TMP/out/r"

# ---------------------------------------------------------------- non-finite numbers in a model
# token 1 (BOS) embedding row: header 28 bytes + 64 floats of token 0
cp "$MODEL" "$TMP/nan_embd.bin" && put "$TMP/nan_embd.bin" $((28 + 64 * 4)) '\x00\x00\xc0\x7f'
expect_fail "NaN in the BOS embedding (generate)" "non-finite logits at position" \
    "$STEER" generate -m "$TMP/nan_embd.bin" -z "$TOK" -p "The cat" -n 4
expect_fail "NaN in the BOS embedding (logits, no output left)" "residual stream after the last layer is already non-finite" \
    "$STEER" logits -m "$TMP/nan_embd.bin" -z "$TOK" --ids "1 403" -o "$OUT"
# The final norm weight (d = 64 floats at byte 28 + 4·259968 in stories260K: embeddings, then the
# layer weights in run.c's order) set to FLT_MAX: the residual stays finite, the head overflows.
cp "$MODEL" "$TMP/huge_norm.bin"
for i in $(seq 0 63); do put "$TMP/huge_norm.bin" $((28 + 4 * 259968 + 4 * i)) '\xff\xff\x7f\x7f'; done
expect_fail "FLT_MAX final norm: the head overflows" "the residual stream after the last layer is finite, so the final norm or head overflowed" \
    "$STEER" generate -m "$TMP/huge_norm.bin" -z "$TOK" -p "The cat" -n 4
# Training on the NaN model stops at the first step (its run directory is
# outside $TMP/out: train.csv is written as the run goes).
expect_fail "NaN in the model: training stops, naming the step" "step 1: gradient norm is nan (NaN/Inf in the gradients)" \
    "$STEER" train -m "$TMP/nan_embd.bin" --tokenizer "$TOK" --data "winogrande:$REPO/tests/data/winogrande/dev.jsonl" \
    --n-train 8 --method vector --steps 2 --batch 4 --out "$TMP/run_nan" --quiet
finish

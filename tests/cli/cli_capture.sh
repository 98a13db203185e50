#!/usr/bin/env bash
# cli_capture.sh STEER REPO — `steer capture`, `steer logits`, `steer tensors`
# and `steer info` on stories260K: tensor names, dtypes, shapes, file sizes,
# metadata, and the sizes info prints.
set -u
STEER=${1:?usage: cli_capture.sh STEER REPO}
REPO=${2:?usage: cli_capture.sh STEER REPO}
MODEL=$REPO/models/stories260K/stories260K.bin
source "$(dirname "$0")/lib_cli.sh"

# safetensors_data_bytes FILE: file size minus the 8-byte length and the header.
safetensors_data_bytes() {
    local n size
    n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    size=$(stat -c %s "$1")
    echo $((size - 8 - n))
}

# ---------------------------------------------------------------- info
if "$STEER" info "$MODEL" >"$TMP/info.txt" 2>"$TMP/err.txt"; then
    has "$TMP/info.txt" '^layers: +5$' "info: 5 layers"
    has "$TMP/info.txt" '^d_model: +64$' "info: d_model 64"
    has "$TMP/info.txt" '^vocab: +512$' "info: vocab 512"
    has "$TMP/info.txt" '^heads: +8$' "info: 8 heads"
    has "$TMP/info.txt" '^kv_heads: +4$' "info: 4 kv heads"
    has "$TMP/info.txt" '^d_ff: +172$' "info: d_ff 172"
    has "$TMP/info.txt" '^context: +512$' "info: context 512"
    has "$TMP/info.txt" '^ +resid_post +64$' "info: site resid_post is 64 wide"
    has "$TMP/info.txt" '^ +mlp_act +172$' "info: site mlp_act is 172 wide"
else
    fail "info: $(cat "$TMP/err.txt")"
fi

# ---------------------------------------------------------------- capture
# "Once upon a time" = 1 403 407 261 378 (T = 5).
ACTS=$TMP/acts.safetensors
if "$STEER" capture -m "$MODEL" -p "Once upon a time" --sites resid_post,attn_out --layers all \
    -o "$ACTS" 2>"$TMP/err.txt"; then
    "$STEER" tensors "$ACTS" >"$TMP/list.txt" 2>&1
    has "$TMP/list.txt" '^tensors: 10$' "capture: 10 tensors (2 sites x 5 layers)"
    for site in resid_post attn_out; do
        for l in 0 1 2 3 4; do
            has "$TMP/list.txt" "^ +$site\\.$l +F32 +\\[5, 64\\]$" "capture: $site.$l F32 [5, 64]"
        done
    done
    has "$TMP/list.txt" '^ +format_version = 1$' "capture metadata: format_version 1"
    has "$TMP/list.txt" '^ +prompt = Once upon a time$' "capture metadata: prompt"
    has "$TMP/list.txt" '^ +sites = resid_post,attn_out$' "capture metadata: sites"
    has "$TMP/list.txt" '^ +tokens = 1 403 407 261 378$' "capture metadata: tokens"
    has "$TMP/list.txt" "^ +command = steer capture " "capture metadata: command"
    has "$TMP/list.txt" "^ +model = .*stories260K.bin$" "capture metadata: model"
    bytes=$(safetensors_data_bytes "$ACTS")
    [ "$bytes" -eq $((10 * 5 * 64 * 4)) ] && pass "capture: data section is 10*5*64*4 = $bytes bytes" ||
        fail "capture: data section is $bytes bytes, expected $((10 * 5 * 64 * 4))"
else
    fail "capture: $(cat "$TMP/err.txt")"
fi

# The same tokens given as --ids capture the same numbers (the data section,
# which ends the file, is identical; only the metadata differs).
if "$STEER" capture -m "$MODEL" --ids "1 403 407 261 378" --sites resid_post,attn_out \
    -o "$TMP/acts_ids.safetensors" 2>"$TMP/err.txt"; then
    tail -c 12800 "$ACTS" >"$TMP/a.bin"
    tail -c 12800 "$TMP/acts_ids.safetensors" >"$TMP/b.bin"
    cmp -s "$TMP/a.bin" "$TMP/b.bin" && pass "capture --ids = capture -p (12800 data bytes identical)" ||
        fail "capture --ids and -p give different activations"
else
    fail "capture --ids: $(cat "$TMP/err.txt")"
fi

# One d_ff-wide site at a layer subset.
if "$STEER" capture -m "$MODEL" -p "The cat" --sites mlp_act --layers 0,3-4 \
    -o "$TMP/ff.safetensors" 2>"$TMP/err.txt"; then
    "$STEER" tensors "$TMP/ff.safetensors" >"$TMP/list.txt" 2>&1
    has "$TMP/list.txt" '^tensors: 3$' "capture --layers 0,3-4: 3 tensors"
    for l in 0 3 4; do
        has "$TMP/list.txt" "^ +mlp_act\\.$l +F32 +\\[4, 172\\]$" "capture: mlp_act.$l F32 [4, 172]"
    done
else
    fail "capture mlp_act: $(cat "$TMP/err.txt")"
fi

# ---------------------------------------------------------------- logits
LOGITS=$TMP/logits.safetensors
if "$STEER" logits -m "$MODEL" --ids "1 403 407 261 378" -o "$LOGITS" 2>"$TMP/err.txt"; then
    "$STEER" tensors "$LOGITS" >"$TMP/list.txt" 2>&1
    has "$TMP/list.txt" '^ +logits +F32 +\[5, 512\]$' "logits: logits F32 [5, 512]"
    has "$TMP/list.txt" '^ +tokens +I32 +\[5\]$' "logits: tokens I32 [5]"
    bytes=$(safetensors_data_bytes "$LOGITS")
    [ "$bytes" -eq $((5 * 512 * 4 + 5 * 4)) ] && pass "logits: data section is $bytes bytes" ||
        fail "logits: data section is $bytes bytes, expected $((5 * 512 * 4 + 5 * 4))"
    # The token ids are stored as little-endian int32 somewhere in the data.
    od -An -t d4 -v "$LOGITS" | tr -s ' \n' ' ' | grep -q ' 1 403 407 261 378 ' &&
        pass "logits: tokens tensor holds 1 403 407 261 378" || fail "logits: token ids not found in the file"
else
    fail "logits: $(cat "$TMP/err.txt")"
fi
# --prompt gives the same logits (same tokens).
if "$STEER" logits -m "$MODEL" --prompt "Once upon a time" -o "$TMP/logits_p.safetensors" 2>"$TMP/err.txt"; then
    tail -c 10260 "$LOGITS" >"$TMP/a.bin"
    tail -c 10260 "$TMP/logits_p.safetensors" >"$TMP/b.bin"
    cmp -s "$TMP/a.bin" "$TMP/b.bin" && pass "logits --prompt = logits --ids (10260 data bytes identical)" ||
        fail "logits --prompt and --ids differ"
else
    fail "logits --prompt: $(cat "$TMP/err.txt")"
fi
# Same logits from the GGUF conversion of the model (shape only: numerics are the C tests' job).
if "$STEER" logits -m "${MODEL%.bin}.gguf" --ids "1 403 407" -o "$TMP/logits_g.safetensors" 2>"$TMP/err.txt"; then
    "$STEER" tensors "$TMP/logits_g.safetensors" >"$TMP/list.txt" 2>&1
    has "$TMP/list.txt" '^ +logits +F32 +\[3, 512\]$' "logits (gguf): logits F32 [3, 512]"
else
    fail "logits gguf: $(cat "$TMP/err.txt")"
fi

# ---------------------------------------------------------------- usage errors
"$STEER" capture -m "$MODEL" -p x -o "$TMP/x.safetensors" --bogus 2>"$TMP/err.txt"
rc=$?
[ "$rc" -eq 2 ] && [ "$(wc -l <"$TMP/err.txt")" -eq 1 ] && grep -q -- "--bogus" "$TMP/err.txt" &&
    pass "unknown option: exit 2, one line: $(cat "$TMP/err.txt")" ||
    fail "unknown option: exit $rc, stderr: $(cat "$TMP/err.txt")"
"$STEER" >"$TMP/out.txt" 2>&1
for c in info generate capture logits tensors make-random; do
    grep -q "^  $c " "$TMP/out.txt" || fail "'steer' does not list $c"
    "$STEER" "$c" --help >"$TMP/help.txt" 2>&1 && grep -q "^example:" "$TMP/help.txt" ||
        fail "steer $c --help has no example"
done
pass "steer lists the commands; each --help has an example"

echo "cli_capture: $fails failure(s)"
[ "$fails" -eq 0 ]

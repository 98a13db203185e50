#!/usr/bin/env bash
# cli_positions.sh STEER REPO — position selectors on --steer, --control-vector
# and --ablate (@prompt, @generated, @last, @A:B, @A:, @A,B), negative layer
# indices, and TransformerLens hook names as sites, on stories260K with
# `steer logits` (5 positions): a selector changes exactly the logit rows at
# and after its first position (causal attention) and leaves the rows before
# it bit for bit; @prompt equals no selector; @generated changes nothing.
set -u
STEER=${1:?usage: cli_positions.sh STEER REPO}
REPO=${2:?usage: cli_positions.sh STEER REPO}
MODEL=$REPO/models/stories260K/stories260K.bin
source "$(dirname "$0")/lib_cli.sh"
V=512
T=5

printf 'I love this\nWhat a happy day\nThis is wonderful\nGreat and good\n' >"$TMP/pos.txt"
printf 'I hate this\nWhat a sad day\nThis is terrible\nBad and awful\n' >"$TMP/neg.txt"
MD=$TMP/md.safetensors
CV=$TMP/cv.gguf
"$STEER" extract -m "$MODEL" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" -o "$MD" >/dev/null 2>&1 || fail "extract"
"$STEER" vec export --llamacpp "$MD" --layers 1-4 -m "$MODEL" -o "$CV" >/dev/null 2>&1 || fail "vec export"

# logits NAME ARGS...: steer logits of "Once upon a time" (T = 5) into
# $TMP/NAME.st, and its logit rows as hex, one line per row, into $TMP/NAME.rows.
logits() {
    local name=$1 n
    shift
    "$STEER" logits -m "$MODEL" -p "Once upon a time" "$@" -o "$TMP/$name.st" 2>"$TMP/err.txt" ||
        fail "logits $name: $(cat "$TMP/err.txt")"
    n=$(od -An -t u8 -N 8 "$TMP/$name.st" | tr -d ' ')
    tail -c +$((8 + n + 1)) "$TMP/$name.st" | head -c $((T * V * 4)) | od -An -v -tx1 -w$((V * 4)) |
        tr -d ' ' >"$TMP/$name.rows"
}
# rows_changed A B: the rows (0..T-1) where A and B differ, e.g. "3 4".
rows_changed() {
    paste -d' ' "$TMP/$1.rows" "$TMP/$2.rows" | awk '$1 != $2 { printf "%s%d", (n++ ? " " : ""), NR - 1 } END { print "" }'
}
# expect_rows NAME A B ROWS
expect_rows() {
    local got
    got=$(rows_changed "$2" "$3")
    [ "$got" = "$4" ] && pass "$1: rows changed = '${4}'" || fail "$1: rows changed '$got', expected '$4'"
}

logits none
logits all --steer "$MD:resid_post:2:4"
expect_rows "--steer (no selector)" none all "0 1 2 3 4"
logits prompt --steer "$MD:resid_post:2:4@prompt"
expect_rows "@prompt = every position of the input" all prompt ""
logits gen --steer "$MD:resid_post:2:4@generated"
expect_rows "@generated steers nothing of the input" none gen ""
logits last --steer "$MD:resid_post:2:4@last"
expect_rows "@last" none last "4"
logits last2 --steer "$MD:resid_post:2:4@last:2"
expect_rows "@last:2" none last2 "3 4"
logits r35 --steer "$MD:resid_post:2:4@3:5"
expect_rows "@3:5 (3 and 4)" none r35 "3 4"
logits from3 --steer "$MD:resid_post:2:4@3:"
expect_rows "@3: = @3:5" r35 from3 ""
logits l2 --steer "$MD:resid_post:2:4@2"
expect_rows "@2 (position 2 alone; later rows see it)" none l2 "2 3 4"
logits l13 --steer "$MD:resid_post:2:4@1,3"
expect_rows "@1,3" none l13 "1 2 3 4"
# Two selectors: the sum over @3:5 and @last differs from @3:5 at row 4 only.
logits two --steer "$MD:resid_post:2:4@3:5" --steer "$MD:resid_post:2:1@last"
expect_rows "two selectors compose" r35 two "4"
logits abl --ablate "$MD:resid_post:2@4"
expect_rows "--ablate @4" none abl "4"
logits cv --control-vector "$CV:2@last"
expect_rows "--control-vector @last" none cv "4"
logits cvall --control-vector "$CV:2"
expect_rows "--control-vector (no selector)" none cvall "0 1 2 3 4"

# Negative layers and TransformerLens names give the same bytes as their plain spelling.
logits neg --steer "$MD:resid_post:-3:4"
expect_rows "layer -3 = layer 2" all neg ""
logits tl --steer "$MD:blocks.2.hook_resid_post::4"
expect_rows "blocks.2.hook_resid_post = resid_post, layer 2" all tl ""
logits tl2 --steer "$MD:hook_resid_post:2:4"
expect_rows "hook_resid_post = resid_post" all tl2 ""
if "$STEER" capture -m "$MODEL" -p "Once upon a time" --sites hook_resid_pre,mlp.hook_post,mlp.hook_pre,hook_mlp_out \
    --layers -1 -o "$TMP/c.st" 2>"$TMP/err.txt"; then
    "$STEER" tensors "$TMP/c.st" >"$TMP/list.txt"
    for t in resid_pre.4 mlp_act.4 mlp_gate.4 mlp_out.4; do has "$TMP/list.txt" "^ +${t//./\\.} +F32" "capture TL name -> $t"; done
else
    fail "capture with TL names: $(cat "$TMP/err.txt")"
fi
# generate: @generated leaves the first new token (predicted at the last prompt position) alone.
"$STEER" generate -m "$MODEL" -p "Once upon a time" -n 1 -q >"$TMP/g0.txt" 2>&1
"$STEER" generate -m "$MODEL" -p "Once upon a time" -n 1 -q --steer "$MD:resid_post:2:40@generated" >"$TMP/g1.txt" 2>&1
cmp -s "$TMP/g0.txt" "$TMP/g1.txt" && pass "generate @generated: first token unchanged" || fail "generate @generated"

# vec slice without a model: -2--1 are the file's last two layers.
if "$STEER" vec slice "$MD" --layers -2--1 -o "$TMP/sl.st" 2>"$TMP/err.txt"; then
    "$STEER" tensors "$TMP/sl.st" >"$TMP/list.txt"
    has "$TMP/list.txt" '^tensors: 2$' "vec slice --layers -2--1: 2 vectors"
    has "$TMP/list.txt" '^ +resid_post\.3 ' "vec slice --layers -2--1 keeps resid_post.3"
else
    fail "vec slice --layers -2--1: $(cat "$TMP/err.txt")"
fi

expect_fail "empty range" "position range @3:3 is empty" \
    "$STEER" logits -m "$MODEL" -p "Once upon a time" --steer "$MD:resid_post:2:4@3:3" -o "$TMP/out/x.st"
expect_fail "bad selector" "bad position selector '@middle'" \
    "$STEER" logits -m "$MODEL" -p "Once upon a time" --steer "$MD@middle" -o "$TMP/out/x.st"
expect_fail "bad @last:0" "bad position selector '@last:0'" \
    "$STEER" logits -m "$MODEL" -p "Once upon a time" --ablate "$MD:resid_post:2@last:0" -o "$TMP/out/x.st"
expect_fail "TL name with a layer and LAYERS" "names layer 2; give no LAYERS field" \
    "$STEER" logits -m "$MODEL" -p "Once upon a time" --steer "$MD:blocks.2.hook_resid_post:3:4" -o "$TMP/out/x.st"
expect_fail "TL name with a layer in --sites" "'blocks.3.hook_resid_post' names a layer: give --sites hook_resid_post --layers 3" \
    "$STEER" capture -m "$MODEL" -p "Once upon a time" --sites blocks.3.hook_resid_post -o "$TMP/out/x.st"
expect_fail "unmapped TL name" "unknown site 'ln2.hook_normalized'" \
    "$STEER" capture -m "$MODEL" -p "Once upon a time" --sites ln2.hook_normalized -o "$TMP/out/x.st"
expect_fail "negative layer out of range" "layer -6 out of range (model has 5 layers)" \
    "$STEER" logits -m "$MODEL" -p "Once upon a time" --steer "$MD:resid_post:-6" -o "$TMP/out/x.st"
finish

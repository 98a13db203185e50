#!/usr/bin/env bash
# cli_capture_batch.sh STEER REPO — `steer capture --prompts/--data` on
# stories260K: shapes of the one output file for --positions all/last/mean,
# the metadata, progress on stderr (none with -q), and bad input. (The rows'
# values are checked against single-prompt captures in tests/unit/test_capture_batch.c.)
set -u
STEER=${1:?usage: cli_capture_batch.sh STEER REPO}
REPO=${2:?usage: cli_capture_batch.sh STEER REPO}
MODEL=$REPO/models/stories260K/stories260K.bin
source "$(dirname "$0")/lib_cli.sh"

printf 'Once upon a time\n\nThe cat sat on the mat\nLily\n' >"$TMP/p.txt" # 3 prompts: 5, 10 and 3 tokens with BOS
if "$STEER" capture -m "$MODEL" --prompts "$TMP/p.txt" --sites resid_post,mlp_act --layers 0,-1 \
    -o "$TMP/a.safetensors" >"$TMP/out.txt" 2>"$TMP/err.txt"; then
    "$STEER" tensors "$TMP/a.safetensors" >"$TMP/list.txt" 2>&1
    has "$TMP/list.txt" '^tensors: 6$' "all: 4 activation tensors + lengths + tokens"
    has "$TMP/list.txt" '^ +resid_post\.0 +F32 +\[3, 10, 64\]$' "all: resid_post.0 [N=3, T_max=10, 64]"
    has "$TMP/list.txt" '^ +resid_post\.4 +F32 +\[3, 10, 64\]$' "all: layer -1 is resid_post.4"
    has "$TMP/list.txt" '^ +mlp_act\.4 +F32 +\[3, 10, 172\]$' "all: mlp_act.4 [3, 10, 172]"
    has "$TMP/list.txt" '^ +lengths +I32 +\[3\]$' "lengths I32 [3]"
    has "$TMP/list.txt" '^ +tokens +I32 +\[3, 10\]$' "tokens I32 [3, 10]"
    has "$TMP/list.txt" '^ +positions = all$' "metadata: positions"
    has "$TMP/list.txt" '^ +n_prompts = 3$' "metadata: n_prompts"
    has "$TMP/err.txt" '^capture: 3/3 prompts' "progress on stderr"
    [ ! -s "$TMP/out.txt" ] && pass "nothing on stdout" || fail "stdout: $(cat "$TMP/out.txt")"
else
    fail "capture --prompts: $(cat "$TMP/err.txt")"
fi
for p in last mean; do
    if "$STEER" capture -m "$MODEL" --prompts "$TMP/p.txt" --layers -2--1 --positions $p -q \
        -o "$TMP/$p.safetensors" 2>"$TMP/err.txt"; then
        ! grep -q '^capture' "$TMP/err.txt" && pass "$p: -q prints no progress" || fail "$p: -q printed $(cat "$TMP/err.txt")"
        "$STEER" tensors "$TMP/$p.safetensors" >"$TMP/list.txt" 2>&1
        has "$TMP/list.txt" '^tensors: 4$' "$p: layers -2--1 = 3,4 + lengths + tokens"
        has "$TMP/list.txt" '^ +resid_post\.3 +F32 +\[3, 64\]$' "$p: resid_post.3 [3, 64]"
    else
        fail "capture --positions $p: $(cat "$TMP/err.txt")"
    fi
done
printf '{"prompt": "Once upon a time", "completion": " x"}\n{"prompt": "Lily", "completion": " y"}\n' >"$TMP/d.jsonl"
if "$STEER" capture -m "$MODEL" --data "jsonl:$TMP/d.jsonl" --layers 2 --positions mean -q -o "$TMP/d.safetensors" 2>"$TMP/err.txt"; then
    "$STEER" tensors "$TMP/d.safetensors" >"$TMP/list.txt" 2>&1
    has "$TMP/list.txt" '^ +resid_post\.2 +F32 +\[2, 64\]$' "--data: two prompts"
else
    fail "capture --data: $(cat "$TMP/err.txt")"
fi

printf '\n\n' >"$TMP/empty.txt"
expect_fail "missing prompts file" "nope.txt: cannot open" \
    "$STEER" capture -m "$MODEL" --prompts "$TMP/nope.txt" -o "$TMP/out/a.safetensors"
expect_fail "empty prompts file" "no prompts" \
    "$STEER" capture -m "$MODEL" --prompts "$TMP/empty.txt" -o "$TMP/out/a.safetensors"
expect_fail "--prompts and -p" "take no --prompt" \
    "$STEER" capture -m "$MODEL" --prompts "$TMP/p.txt" -p hi -o "$TMP/out/a.safetensors"
expect_fail "--prompts and --data" "one of --prompts and --data" \
    "$STEER" capture -m "$MODEL" --prompts "$TMP/p.txt" --data "$TMP/d.jsonl" -o "$TMP/out/a.safetensors"
expect_fail "bad --positions" "--positions must be all, last or mean" \
    "$STEER" capture -m "$MODEL" --prompts "$TMP/p.txt" --positions first -o "$TMP/out/a.safetensors"
expect_fail "--positions without --prompts" "go with --prompts" \
    "$STEER" capture -m "$MODEL" -p hi --positions last -o "$TMP/out/a.safetensors"
expect_fail "prompt longer than --ctx" "prompt 2 is 10 tokens but the context holds 6" \
    "$STEER" capture -m "$MODEL" --prompts "$TMP/p.txt" --ctx 6 -o "$TMP/out/a.safetensors"
expect_fail "bad dataset" "d.jsonl" \
    "$STEER" capture -m "$MODEL" --data "winogrande:$TMP/d.jsonl" -o "$TMP/out/a.safetensors"
finish

#!/usr/bin/env bash
# cli_icl.sh STEER REPO — `steer icl` and `steer compress` end to end on tiny
# settings (stories260K-winogrande, one demonstration, a few Winogrande dev
# queries): the files, the exact equivalence (a) in the summary, the report
# section, a compressed context that reloads and steers `steer generate`, and
# bad input (a context longer than the window, an empty query set, vectors of
# another model, too many demonstrations) as one-line errors with nothing left
# behind.
set -u
STEER=${1:?usage: cli_icl.sh STEER REPO}
REPO=${2:?usage: cli_icl.sh STEER REPO}
DEV=$REPO/tests/data/winogrande/dev.jsonl
TRAIN=$REPO/tests/data/winogrande/train_m.jsonl
M=$REPO/models/stories260K-winogrande/stories260K-winogrande.bin
source "$(dirname "$0")/lib_cli.sh"
export OMP_NUM_THREADS=1
mkdir -p "$TMP/out"

ok "icl --help" "$STEER" icl --help
has "$TMP/stdout.txt" "steer icl -m models/stories260K-winogrande" "icl --help has an example"
ok "compress --help" "$STEER" compress --help
has "$TMP/stdout.txt" "steer compress -m " "compress --help has an example"

R=$TMP/icl
ok "icl end to end" "$STEER" icl -m "$M" --data "winogrande:$DEV" --pool "winogrande:$TRAIN" --shots 1 \
    --n 3 --n-train 4 --steps 3 --batch 2 --out "$R"
has "$TMP/stdout.txt" "every layer patched: max \|logit - ICL logit\| = 0 over 3" "(a) exact on every held-out query"
has "$TMP/stdout.txt" "KV cache [0-9]+ bytes vs 1280 bytes of vectors" "memory printed (L·d·4 = 1280)"
for f in icl.csv icl_layers.csv items_icl.csv summary_icl.json mean_delta.safetensors learned.safetensors \
    kl_to_icl.png kl_to_icl.svg recovery_by_layer.png recovery_by_layer.svg; do
    [ -s "$R/$f" ] && pass "wrote $f" || fail "missing $f"
done
has "$R/icl.csv" "^method,kl_mean,kl_se,acc,format,n$" "icl.csv header"
has "$R/icl.csv" "^patched-all,0,0,,,3$" "patched-all row: KL 0"
has "$R/icl_layers.csv" "^layer,kl_patch_mean,kl_patch_se,recovery,delta_norm,learned_norm,n$" "icl_layers.csv header"
has "$R/icl_layers.csv" "^4," "a row per layer (5 layers)"
has "$R/summary_icl.json" '"exact_max_abs":[[:space:]]*0' "summary: exact_max_abs 0"
"$STEER" tensors "$R/mean_delta.safetensors" >"$TMP/t.txt" 2>&1
has "$TMP/t.txt" "attn_out.4" "mean_delta has attn_out.4"
has "$TMP/t.txt" "icl-mean" "mean_delta method metadata"
mkdir -p "$TMP/rep"
ok "report over the icl directory" "$STEER" report "$R" -o "$TMP/rep"
has "$TMP/rep/report.md" "In-context learning as pre-MLP steering \(E3\)" "report section"
has "$TMP/rep/report.md" "attn_out patched at every layer \| 0.0000" "report: patched row"

# compress: one demonstration as the context, dev queries
"$STEER" data show "winogrande:$TRAIN" --fewshot 1 --n 1 | sed -n '/^--- context/,/^--- prompt/p' | sed '1d;$d' >"$TMP/ctx.txt"
[ -s "$TMP/ctx.txt" ] && pass "context file" || fail "context file empty"
V=$TMP/c.safetensors
ok "compress --learn" "$STEER" compress -m "$M" --context "$TMP/ctx.txt" --queries "winogrande:$DEV" --n 4 \
    --learn --steps 4 --batch 2 -o "$V"
has "$TMP/stdout.txt" "its KV cache [0-9]+ bytes; vectors 1280 bytes" "compress prints the memory"
has "$TMP/stdout.txt" "reload check: max \|logit difference\| = 0$" "compressed file reloads to the same logits"
has "$TMP/stdout.txt" "^learned: 4 updates" "learned"
"$STEER" tensors "$V" >"$TMP/t.txt" 2>&1
has "$TMP/t.txt" "icl-learned" "compressed file: method metadata"
ok "generate --steer compressed" "$STEER" generate -m "$M" --steer "$V" -p "Answer: The correct answer is" -n 4
ok "compress from paragraphs" "$STEER" compress -m "$M" --context "$TMP/ctx.txt" -o "$TMP/p.safetensors" --quiet
[ -s "$TMP/p.safetensors" ] && pass "paragraph queries" || fail "no file from paragraph queries"

# bad input
python3 -c "print('the cat sat on the mat. ' * 100)" >"$TMP/long.txt"
expect_fail "context longer than the window" "long.txt: context is" \
    "$STEER" compress -m "$M" --context "$TMP/long.txt" -o "$TMP/out/x.safetensors"
: >"$TMP/empty.jsonl"
expect_fail "empty query set" "empty.jsonl" \
    "$STEER" compress -m "$M" --context "$TMP/ctx.txt" --queries "winogrande:$TMP/empty.jsonl" -o "$TMP/out/x.safetensors"
: >"$TMP/empty.txt"
expect_fail "empty context" "empty.txt: the context is empty" \
    "$STEER" compress -m "$M" --context "$TMP/empty.txt" -o "$TMP/out/x.safetensors"
printf 'the cat sat on the mat.\n\nthe dog ran in the park.\n' >"$TMP/small.txt"
ok "vectors for another model (llama fixture, d 128)" "$STEER" compress -m "$REPO/tests/data/llama/hf" \
    --context "$TMP/small.txt" -o "$TMP/llama.safetensors" --quiet
expect_fail "--init vectors of another model" "llama.safetensors: tensor attn_out.0 is 128 wide" \
    "$STEER" compress -m "$M" --context "$TMP/ctx.txt" --init "$TMP/llama.safetensors" -o "$TMP/out/x.safetensors"
expect_fail "generate with vectors of another model" "128 wide" \
    "$STEER" generate -m "$M" --steer "$TMP/llama.safetensors" -p "Once" -n 2
expect_fail "too many long demonstrations" "context window" \
    "$STEER" icl -m "$M" --data "winogrande:$DEV" --pool "winogrande:$TRAIN" --shots 4 --out "$TMP/out/r"
head -n 3 "$DEV" >"$TMP/dev3.jsonl"
expect_fail "icl without training queries" "no training queries" \
    "$STEER" icl -m "$M" --data "winogrande:$TMP/dev3.jsonl" --pool "winogrande:$TRAIN" --shots 1 --n 3 --out "$TMP/out/r"
finish

#!/usr/bin/env bash
# cli_patch.sh STEER REPO — `steer patch` on stories260K ("The cat sat on the"
# → " g…", "The dog sat on the" → " s…"; 8 tokens each, positions 2 and 3
# differ): the CSV's shape, the invariants that hold bit for bit (resid_post
# of the last layer patched at the last position gives the clean metric, at
# any other position the corrupted one; resid_pre of layer 0 at a position
# whose tokens agree gives the corrupted metric; KL of the clean run from
# itself is 0), the heat maps, negative layers, and bad input.
set -u
STEER=${1:?usage: cli_patch.sh STEER REPO}
REPO=${2:?usage: cli_patch.sh STEER REPO}
MODEL=$REPO/models/stories260K/stories260K.bin
source "$(dirname "$0")/lib_cli.sh"
CLEAN="The cat sat on the"
CORR="The dog sat on the"

# csv_metric SITE LAYER POS: the metric column of that row.
csv_metric() { awk -F, -v s="$1" -v l="$2" -v p="$3" '$1 == s && $2 == l && $3 == p { print $6 }' "$TMP/p/patch.csv"; }

if "$STEER" patch -m "$MODEL" --clean "$CLEAN" --corrupted "$CORR" --answer g --wrong s \
    --sites resid_pre,resid_post --layers 0,-1 -o "$TMP/p" >"$TMP/sum.txt" 2>"$TMP/err.txt"; then
    pass "patch runs"
    has "$TMP/sum.txt" '^metric logit_diff: clean ' "summary: clean and corrupted metric"
    clean=$(sed -n 's/^metric logit_diff: clean \([^,]*\), corrupted \(.*\)$/\1/p' "$TMP/sum.txt")
    corr=$(sed -n 's/^metric logit_diff: clean \([^,]*\), corrupted \(.*\)$/\2/p' "$TMP/sum.txt")
    [ -n "$clean" ] && [ -n "$corr" ] && [ "$clean" != "$corr" ] && pass "clean $clean != corrupted $corr" ||
        fail "clean '$clean' and corrupted '$corr' metrics"
    [ "$(wc -l <"$TMP/p/patch.csv")" -eq 33 ] && pass "patch.csv: header + 2 sites x 2 layers x 8 positions" ||
        fail "patch.csv has $(wc -l <"$TMP/p/patch.csv") lines, expected 33"
    has "$TMP/p/patch.csv" '^site,layer,position,clean_token,corrupted_token,metric,recovered$' "patch.csv header"
    has "$TMP/p/patch.csv" '^resid_pre,0,2,280,400,' "patch.csv: the clean and corrupted token of position 2"
    [ "$(csv_metric resid_post 4 7)" = "$clean" ] && pass "resid_post.-1 (= 4) at the last position = clean metric" ||
        fail "resid_post.4 position 7: $(csv_metric resid_post 4 7), clean $clean"
    bad=""
    for t in 0 1 2 3 4 5 6; do [ "$(csv_metric resid_post 4 $t)" = "$corr" ] || bad+=" $t"; done
    [ -z "$bad" ] && pass "resid_post.4 at positions 0-6 = corrupted metric" || fail "resid_post.4 positions$bad"
    bad=""
    for t in 0 1 4 5 6 7; do [ "$(csv_metric resid_pre 0 $t)" = "$corr" ] || bad+=" $t"; done
    [ -z "$bad" ] && pass "resid_pre.0 where the tokens agree = corrupted metric" || fail "resid_pre.0 positions$bad"
    [ "$(csv_metric resid_pre 0 2)" != "$corr" ] && pass "resid_pre.0 at the differing position 2 moves the metric" ||
        fail "resid_pre.0 position 2 = corrupted metric"
    has "$TMP/p/patch.csv" '^resid_post,4,7,265,265,[^,]*,1$' "recovered = 1 at resid_post.4 position 7"
    for s in resid_pre resid_post; do
        [ "$(head -c 4 "$TMP/p/patch_$s.png" | od -An -c | tr -d ' ')" = "211PNG" ] && pass "patch_$s.png is a PNG" ||
            fail "patch_$s.png"
        grep -q '<svg' "$TMP/p/patch_$s.svg" && pass "patch_$s.svg is an SVG" || fail "patch_$s.svg"
    done
    has "$TMP/sum.txt" '^resid_post: strongest at layer 4, position 7 ' "summary: the strongest resid_post cell"
else
    fail "patch: $(cat "$TMP/err.txt")"
fi

# Token ids, KL: patching the last position at the last layer gives the clean run (KL 0).
if "$STEER" patch -m "$MODEL" --clean-ids "1 291 280 294 262 294 353 265" --corrupted-ids "1 291 400 428 262 294 353 265" \
    --metric kl --sites resid_post --layers -1 --batch 3 -q -o "$TMP/p" >"$TMP/sum.txt" 2>"$TMP/err.txt"; then
    # (stderr may hold a sanitizer's summary in ASan builds: only our lines count)
    [ ! -s "$TMP/sum.txt" ] && ! grep -q '^patch' "$TMP/err.txt" && pass "-q prints nothing" || fail "-q printed something"
    [ "$(csv_metric resid_post 4 7)" = "0" ] && pass "kl: resid_post.4 at the last position = 0" ||
        fail "kl at resid_post.4 position 7: $(csv_metric resid_post 4 7)"
    v=$(csv_metric resid_post 4 0)
    awk -v v="$v" 'BEGIN { exit !(v > 0) }' && pass "kl: position 0 = KL(clean || corrupted) = $v > 0" || fail "kl position 0: $v"
else
    fail "patch --metric kl: $(cat "$TMP/err.txt")"
fi

# Bad input: one line, non-zero exit, nothing written.
P=(-m "$MODEL" --clean "$CLEAN" --corrupted "$CORR")
expect_fail "different token lengths" "the clean prompt is 8 tokens and the corrupted one 9" \
    "$STEER" patch -m "$MODEL" --clean "$CLEAN" --corrupted "The big dog sat on the" --answer g --wrong s -o "$TMP/out/p"
expect_fail "answer of several tokens" "--answer 'ground' is 4 tokens" \
    "$STEER" patch "${P[@]}" --answer ground --wrong s -o "$TMP/out/p"
expect_fail "same answer and wrong token" "are the same token" \
    "$STEER" patch "${P[@]}" --answer g --wrong-id 298 -o "$TMP/out/p"
expect_fail "answer id out of range" "--answer-id 512 out of range" \
    "$STEER" patch "${P[@]}" --answer-id 512 --wrong s -o "$TMP/out/p"
expect_fail "logit_diff without --wrong" "needs --answer" "$STEER" patch "${P[@]}" --answer g -o "$TMP/out/p"
expect_fail "unknown metric" "--metric must be logit_diff or kl" \
    "$STEER" patch "${P[@]}" --metric prob -o "$TMP/out/p"
expect_fail "unknown site" "unknown site 'resid'" \
    "$STEER" patch "${P[@]}" --answer g --wrong s --sites resid -o "$TMP/out/p"
expect_fail "layer out of range" "layer -6 out of range (model has 5 layers)" \
    "$STEER" patch "${P[@]}" --answer g --wrong s --layers -6 -o "$TMP/out/p"
expect_fail "missing -o" "missing -o DIR" "$STEER" patch "${P[@]}" --answer g --wrong s
"$STEER" patch --help >"$TMP/help.txt" 2>&1 && has "$TMP/help.txt" '^example:' "--help has an example" || fail "patch --help"
finish

#!/usr/bin/env bash
# cli_tune.sh STEER REPO — `steer tune` (issue 22) on stories260K: a vector
# extracted from A/B items (tests/data/tune/ab_train.jsonl), tuned on 4 held-out
# items over 2 sites × layers 1-3 × 4 scales with 4 neutral texts (small for
# the ASan run: every cell is a forward of every item and text): the files,
# a CSV row per cell, scale-0 rows equal to the unsteered numbers, the
# recommendation within the KL budget (checked against the CSV by awk), the
# report section, and bad input as one-line errors with nothing written.
set -u
STEER=${1:?usage: cli_tune.sh STEER REPO}
REPO=${2:?usage: cli_tune.sh STEER REPO}
B=$REPO/models/stories260K/stories260K.bin
D=$REPO/tests/data/tune
source "$(dirname "$0")/lib_cli.sh"

ok "tune --help" "$STEER" tune --help
has "$TMP/stdout.txt" "^example:" "help has an example"

V=$TMP/happy.safetensors
ok "extract from A/B items" "$STEER" extract -m "$B" --data "$D/ab_train.jsonl" --site resid_post,mlp_out \
    --token answer -o "$V"
R=$TMP/tune
head -4 "$D/neutral.txt" >"$TMP/neutral.txt"
ok "tune" "$STEER" tune -m "$B" -v "$V" --data "$D/ab_dev.jsonl" -n 4 --neutral "$TMP/neutral.txt" \
    --layers 1-3 --scales 0,0.25,0.5,1 --kl-budget 0.1 -o "$R" --quiet
for f in tune.csv tune_summary.json tune_logit_diff.png tune_logit_diff.svg tune_kl.png tune_kl.svg tune_ppl.png \
    tune_ppl.svg; do
    [ -s "$R/$f" ] && pass "wrote $f" || fail "missing $f"
done
has "$R/tune.csv" "^vector,site,layer,scale,n,logit_diff_mean,logit_diff_se,share_positive,share_moved,kl_mean," \
    "tune.csv header"
rows=$(($(wc -l <"$R/tune.csv") - 1))
[ "$rows" -eq 24 ] && pass "24 cells (2 sites x 3 layers x 4 scales)" || fail "$rows rows, want 24"
# scale 0: the unsteered numbers, KL exactly 0
base=$(grep -o '"logit_diff_mean":[^,]*' "$R/tune_summary.json" | head -1 | cut -d: -f2 | tr -d '\t ')
awk -F, -v b="$base" 'NR > 1 && $4 == 0 { if ($10 != 0 || ($6 - b) > 1e-8 || (b - $6) > 1e-8) bad++ }
    END { exit bad > 0 }' "$R/tune.csv" && pass "scale-0 rows = unsteered ($base), KL 0" || fail "scale-0 rows differ"
# the recommendation: the best logit difference among rows with KL <= 0.1
want=$(awk -F, 'NR > 1 && $10 <= 0.1 && ($6 > best || !n) { best = $6; s = $2; l = $3; a = $4; n = 1 }
    END { printf "%s %s %s", s, l, a }' "$R/tune.csv")
got=$(tr -d '\n\t ' <"$R/tune_summary.json" | grep -o '"recommended":{[^}]*}' |
    sed -E 's/.*"site":"([a-z_]+)","layer":([0-9]+),"scale":([0-9.e-]+).*/\1 \2 \3/')
[ "$want" = "$got" ] && pass "recommended $got = best within the KL budget" || fail "recommended '$got', want '$want'"
# the budget binds: some cell over it has a larger logit difference
awk -F, 'NR > 1 && $10 <= 0.1 && $6 > b { b = $6 } NR > 1 && $10 > 0.1 { o[NR] = $6 }
    END { for (k in o) if (o[k] > b) exit 0; exit 1 }' "$R/tune.csv" &&
    pass "a cell over the KL budget has a larger logit difference" || fail "the KL budget excludes nothing better"
ok "report" "$STEER" report "$R"
has "$R/report.md" "steer tune" "report section"
has "$R/report.md" "^Recommended .*: happy at resid_post, layer" "report names the recommendation"

# bad input
mkdir -p "$TMP/out"
printf '{"prompt": "a", "positive": " b"}\n' >"$TMP/bad.jsonl"
expect_fail "A/B row without negative" "bad.jsonl:1: missing" "$STEER" tune -m "$B" -v "$V" --data "$TMP/bad.jsonl" \
    -o "$TMP/out/t"
expect_fail "NaN scale" "--scales" "$STEER" tune -m "$B" -v "$V" --data "$D/ab_dev.jsonl" --scales 0,nan -o "$TMP/out/t"
expect_fail "site the vectors lack" "no vector" "$STEER" tune -m "$B" -v "$V" --data "$D/ab_dev.jsonl" \
    --sites attn_out -o "$TMP/out/t"
expect_fail "missing vectors file" "nope.safetensors" "$STEER" tune -m "$B" -v "$TMP/nope.safetensors" \
    --data "$D/ab_dev.jsonl" -o "$TMP/out/t"
expect_fail "unknown option suggests the nearest" "did you mean --scales?" "$STEER" tune -m "$B" -v "$V" --data "$D/ab_dev.jsonl" --scale 1 -o "$TMP/out/t"
finish

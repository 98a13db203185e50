#!/usr/bin/env bash
# cli_analyze_mlp.sh STEER REPO — `steer analyze-mlp` (SPEC E2) end to end on
# stories260K and its Winogrande fine-tune (a few dev items) with oracle
# vectors from `steer extract --method oracle-mean`: the files and headers,
# histogram counts that sum to positions × d_ff with bins shared by the two
# models, a line per (model, site, layer) naming the weakest stage, the
# `steer report` section, --token all, and bad input (vectors of another
# model, bad options, data without completions) as one-line errors with
# nothing left behind. (An MLP without a gate cannot be loaded from any file
# format steer reads; test_mlp_analysis checks that refusal in memory.)
set -u
STEER=${1:?usage: cli_analyze_mlp.sh STEER REPO}
REPO=${2:?usage: cli_analyze_mlp.sh STEER REPO}
DEV=$REPO/tests/data/winogrande/dev.jsonl
B=$REPO/models/stories260K/stories260K.bin
F=$REPO/models/stories260K-winogrande/stories260K-winogrande.bin
source "$(dirname "$0")/lib_cli.sh"
mkdir -p "$TMP/out"

ok "analyze-mlp --help" "$STEER" analyze-mlp --help
has "$TMP/stdout.txt" "^example:" "help has an example"
has "$TMP/stdout.txt" "n_prompt - 1 \+ K - 1" "help states the position of --token K"

# oracle vectors at attn_out and mlp_in (mean of F - B over 8 prompts)
ok "export 8 items" "$STEER" data export "winogrande:$DEV" --n 8 -o "$TMP/wg8.jsonl"
V=$TMP/oracle.safetensors
ok "extract oracle-mean" "$STEER" extract --method oracle-mean -m "$B" --ft "$F" --pos "$TMP/wg8.jsonl" \
    --token all --site attn_out,mlp_in -o "$V"

R=$TMP/r
ok "analyze-mlp two models + vectors" "$STEER" analyze-mlp -m "$B" -m "$F" --data "winogrande:$DEV" --n 6 \
    --token 2 --vectors "$V" --out "$R"
cp "$TMP/stdout.txt" "$TMP/run.txt"
for f in mlp_stats.csv hist.csv attenuation.csv mlp_summary.json mlp_hist.png mlp_hist.svg attenuation.png \
    attenuation.svg; do
    [ -s "$R/$f" ] && pass "wrote $f" || fail "missing $f"
done
has "$R/mlp_stats.csv" "^model,layer,quantity,n,mean,median,p90,p99,share_below_1e-3$" "mlp_stats.csv header"
has "$R/hist.csv" "^model,quantity,layer,bin_lo,bin_hi,count$" "hist.csv header"
has "$R/attenuation.csv" "^model,site,layer,n,delta_norm,dhat_norm," "attenuation.csv header"
# 2 models x 5 layers x 2 terms, n = 6 positions x 172 units
rows=$(awk -F, 'NR > 1 && $4 == 1032' "$R/mlp_stats.csv" | wc -l)
[ "$rows" -eq 20 ] && pass "mlp_stats.csv: 20 rows with n = 6 x 172" || fail "mlp_stats.csv: $rows rows with n = 1032"
# counts of every (model, term, layer) sum to the row's n
bad=$(awk -F, 'NR == FNR { if (FNR > 1) n[$1 "," $3 "," $2] = $4; next }
               FNR > 1 { s[$1 "," $2 "," $3] += $6 }
               END { b = 0; for (k in n) if (s[k] != n[k]) b++; for (k in s) if (!(k in n)) b++; print b }' \
    "$R/mlp_stats.csv" "$R/hist.csv")
[ "$bad" -eq 0 ] && pass "histogram counts sum to the number of values" || fail "$bad histograms do not sum to n"
# the two models' bins are the same list for every (term, layer)
awk -F, 'NR > 1 && $1 == "stories260K" { print $2, $3, $4, $5 }' "$R/hist.csv" >"$TMP/bins_b.txt"
awk -F, 'NR > 1 && $1 == "stories260K-winogrande" { print $2, $3, $4, $5 }' "$R/hist.csv" >"$TMP/bins_f.txt"
if [ -s "$TMP/bins_b.txt" ] && cmp -s "$TMP/bins_b.txt" "$TMP/bins_f.txt"; then pass "bins shared by the two models"
else fail "bins differ between the models"; fi
has "$R/hist.csv" "^stories260K,g1,0,0,1e-06," "underflow bin [0, 1e-6)"
has "$R/mlp_summary.json" '"format":[[:space:]]*"steer-mlp/1"' "summary format"
has "$R/mlp_summary.json" '"token":[[:space:]]*2' "summary token"
# attenuation: 2 models x 2 sites x 5 layers, each with a weakest stage
rows=$(awk -F, 'NR > 1 && NF == 32 && $4 == 6 && $NF ~ /^(in|gate|down|post|norm)$/ && $(NF-1) ~ /^(in|gate|down|post|norm)$/' \
    "$R/attenuation.csv" | wc -l)
[ "$rows" -eq 20 ] && pass "attenuation.csv: 20 rows of 6 positions with weakest stages" || fail "attenuation.csv: $rows rows"
# mlp_in: the norm stage is the identity (‖Δ̂‖/‖δ‖, its norm gain and its relative gain are 1)
bad=$(awk -F, 'NR > 1 && $2 == "mlp_in" && ($14 != 1 || $21 != 1 || $26 != 1)' "$R/attenuation.csv" | wc -l)
[ "$bad" -eq 0 ] && pass "mlp_in: |dhat|/|delta| = 1 and norm gain 1" || fail "$bad mlp_in rows with a norm stage"
# linearisation error shrinks with alpha (1 > 0.5 > 0.25 > 0.125) in every row
bad=$(awk -F, 'NR > 1 && !($16 > $17 && $17 > $18 && $18 > $19)' "$R/attenuation.csv" | wc -l)
[ "$bad" -eq 0 ] && pass "linearisation error decreases with alpha in every row" || fail "$bad rows where it does not"
lines=$(grep -Ec '^layer [0-4], (attn_out|mlp_in), stories260K(-winogrande)?: (its norm shrinks most in|no stage shrinks its norm).*; relative to the activation it rides on (it loses most in|no stage shrinks it)' \
    "$TMP/run.txt")
[ "$lines" -eq 20 ] && pass "a plain-language line per (model, site, layer)" || fail "$lines summary lines"

# the report section
ok "report" "$STEER" report "$R" -o "$TMP/rep.html"
has "$TMP/rep.md" "^## MLP modulation and attenuation \(E2\): stories260K vs stories260K-winogrande" "report section"
has "$TMP/rep.md" "^- layer 3, attn_out, stories260K: " "report names the weakest stage per layer"
has "$TMP/rep.md" "mlp_hist.png" "report links the histogram figure"

# --token all: every position predicting a completion token (more positions than items)
ok "analyze-mlp --token all, one layer, no vectors" "$STEER" analyze-mlp -m "$B" --data "winogrande:$DEV" --n 3 \
    --token all --layers 2 --out "$TMP/all"
has "$TMP/stdout.txt" "^stories260K: 3 items \(0 skipped\), [1-9][0-9]+ positions$" "--token all: several positions per item"
[ ! -e "$TMP/all/attenuation.csv" ] && pass "no attenuation without vectors" || fail "attenuation.csv without vectors"

# ---------------------------------------------------------------- bad input
printf '%s\n' "Once upon a time there was a happy girl" "Tom smiled at his friend" >"$TMP/pos.txt"
printf '%s\n' "Once upon a time there was a sad girl" "Tom frowned at his friend" >"$TMP/neg.txt"
ok "make a 32-wide llama" "$STEER" make-model --arch llama --d 32 --ff 64 --layers 5 --heads 4 --kv-heads 2 \
    --ctx 128 --seed 3 -o "$TMP/m32"
ok "vectors of the 32-wide model" "$STEER" extract -m "$TMP/m32" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" \
    --site attn_out -o "$TMP/v32.safetensors"
expect_fail "vectors of another width" "v32.safetensors" "$STEER" analyze-mlp -m "$B" --data "winogrande:$DEV" \
    --n 2 --vectors "$TMP/v32.safetensors" --out "$TMP/out/r"
ok "make a gemma of the same width" "$STEER" make-model --arch gemma --d 64 --ff 128 --layers 5 --heads 4 \
    --kv-heads 2 --ctx 128 --seed 3 -o "$TMP/g64"
ok "vectors of the gemma" "$STEER" extract -m "$TMP/g64" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" \
    --site mlp_in -o "$TMP/vg.safetensors"
expect_fail "vectors made for another architecture" "made for a gemma model" "$STEER" analyze-mlp -m "$B" \
    --data "winogrande:$DEV" --n 2 --vectors "$TMP/vg.safetensors" --out "$TMP/out/r"
ok "attn_out-only vectors of stories260K" "$STEER" extract -m "$B" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" \
    --site attn_out -o "$TMP/va.safetensors"
expect_fail "vectors without the chosen site" "no vector mlp_in.0" "$STEER" analyze-mlp -m "$B" \
    --data "winogrande:$DEV" --n 2 --vectors "$TMP/va.safetensors" --site mlp_in --out "$TMP/out/r"
expect_fail "--site mlp_out" "attn_out or mlp_in" "$STEER" analyze-mlp -m "$B" --data "winogrande:$DEV" \
    --vectors "$V" --site mlp_out --out "$TMP/out/r"
expect_fail "--token 0" "--token" "$STEER" analyze-mlp -m "$B" --data "winogrande:$DEV" --token 0 --out "$TMP/out/r"
expect_fail "--token beyond every completion" "every item was skipped" "$STEER" analyze-mlp -m "$B" \
    --data "winogrande:$DEV" --n 2 --token 99 --out "$TMP/out/r"
# the numbers do not depend on the thread count (dgemm on fixed tiles; --token all: 30+ positions)
for t in 1 2; do
    OMP_NUM_THREADS=$t "$STEER" analyze-mlp -m "$B" --data "winogrande:$DEV" --n 3 --token all --vectors "$V" \
        --out "$TMP/th$t" --quiet || fail "run with $t thread(s)"
done
if cmp -s "$TMP/th1/attenuation.csv" "$TMP/th2/attenuation.csv" && cmp -s "$TMP/th1/hist.csv" "$TMP/th2/hist.csv" &&
    cmp -s "$TMP/th1/mlp_stats.csv" "$TMP/th2/mlp_stats.csv"; then pass "1 thread = 2 threads, byte for byte"
else fail "outputs differ between 1 and 2 threads"; fi

expect_fail "missing --out" "--out" "$STEER" analyze-mlp -m "$B" --data "winogrande:$DEV"
expect_fail "missing model file" "nope.bin" "$STEER" analyze-mlp -m "$TMP/nope.bin" --data "winogrande:$DEV" \
    --out "$TMP/out/r"
printf '{"prompt": "Once upon a time"}\n' >"$TMP/nocomp.jsonl"
expect_fail "data without completions" "no completion" "$STEER" analyze-mlp -m "$B" --data "$TMP/nocomp.jsonl" \
    --out "$TMP/out/r"
finish

#!/usr/bin/env bash
# cli_study_twins.sh STEER REPO — `steer study twins` end to end on a tiny
# configuration (d 32, 2 layers, 48 stories, 10 pretraining and 5 fine-tuning
# updates, 2 sweep items): the four initial models differ in exactly the
# intended factor (steer info lines; identical weights for the two Llama twins),
# the tables hold every twin, site and layer with the stated invariants
# (alpha-0 rows of the sweeps are 0, mlp_in has no norm stage so its norm
# ratio is 1), a second run skips every finished stage and changes nothing,
# and bad option values are one-line usage errors.
set -u
STEER=${1:?usage: cli_study_twins.sh STEER REPO}
REPO=${2:?usage: cli_study_twins.sh STEER REPO}
source "$(dirname "$0")/lib_cli.sh"
export OMP_NUM_THREADS=1
cd "$REPO" || exit 1

S=$TMP/study
ARGS=(--d 32 --ff 64 --layers 2 --heads 4 --kv-heads 2 --stories 48 --story-len 60 --heldout 8
      --steps-pretrain 10 --batch-pretrain 8 --steps-ft 5 --batch-ft 8 --n-items 2 --jobs 2)
ok "study twins (tiny)" "$STEER" study twins --out "$S" "${ARGS[@]}" --progress
cp "$TMP/stderr.txt" "$TMP/first.err"
for t in llama-silu llama-gelu gemma-gelu gemma-silu; do
    for f in init/config.json pretrain/model/model.safetensors pretrain_eval.json ft/model/model.safetensors \
             ft_eval.json oracle.safetensors sweep/dkl.csv mlp/mlp_stats.csv mlp/attenuation.csv; do
        [ -s "$S/$t/$f" ] || fail "$t: missing $f"
    done
done
for f in corpus/train.jsonl corpus/heldout.jsonl twins.csv twins.md report.html report.md; do
    [ -s "$S/$f" ] && pass "wrote $f" || fail "missing $f"
done
[ "$(wc -l <"$S/corpus/heldout.jsonl")" -eq 8 ] && pass "8 held-out stories" || fail "held-out count"
has "$S/corpus/train.jsonl" '^\{"prompt":"","completion":"' "corpus rows: empty prompt, story as completion"

# the factors: info lines that differ between twins
for t in llama-silu llama-gelu gemma-gelu gemma-silu; do
    # (the tensor-type summary counts the tensors, which the block styles change by design)
    "$STEER" info "$S/$t/init" | grep -v -e '^model:' -e '^tensor types:' -e '^  [A-Z][A-Z0-9_]* .* tensors ' >"$TMP/info_$t.txt"
done
d_act=$(diff "$TMP/info_llama-silu.txt" "$TMP/info_llama-gelu.txt" | grep '^[<>]' | cut -c3- | cut -d: -f1 | sort -u | tr '\n' ' ')
[ "$d_act" = "activation " ] && pass "llama-silu vs llama-gelu: only the activation differs" \
    || fail "llama act twins differ in: $d_act"
d_act=$(diff "$TMP/info_gemma-silu.txt" "$TMP/info_gemma-gelu.txt" | grep '^[<>]' | cut -c3- | cut -d: -f1 | sort -u | tr '\n' ' ')
[ "$d_act" = "activation " ] && pass "gemma-silu vs gemma-gelu: only the activation differs" \
    || fail "gemma act twins differ in: $d_act"
d_blk=$(diff "$TMP/info_llama-silu.txt" "$TMP/info_gemma-silu.txt" | grep '^[<>]' | cut -c3- | cut -d: -f1 | sort -u | tr '\n' ' ')
[ "$d_blk" = "architecture embed_scale norms parameters rms_eps tied_head " ] \
    && pass "llama-silu vs gemma-silu: block style only ($d_blk)" || fail "block twins differ in: $d_blk"
grep -q '^activation: *gelu' "$TMP/info_llama-gelu.txt" && grep -q '^activation: *silu' "$TMP/info_gemma-silu.txt" \
    && pass "activations as named" || fail "activation lines"
grep -q '^norms: *sandwich' "$TMP/info_gemma-gelu.txt" && pass "gemma twins have sandwich norms" || fail "gemma norms"
cmp -s "$S/llama-silu/init/model.safetensors" "$S/llama-gelu/init/model.safetensors" \
    && pass "llama twins start from identical weights" || fail "llama twins' initial weights differ"
cmp -s "$S/gemma-silu/init/model.safetensors" "$S/gemma-gelu/init/model.safetensors" \
    && pass "gemma twins start from identical weights" || fail "gemma twins' initial weights differ"
grep -q '"attn_logit_softcapping":	null' "$S/gemma-gelu/init/config.json" && grep -q '"sliding_window":	null' "$S/gemma-gelu/init/config.json" \
    && pass "gemma twins: no soft-cap, no sliding window" || fail "gemma twins config"

# tables: 4 twins x 4 sites x 2 layers, finite losses, invariants
[ "$(tail -n +2 "$S/twins.csv" | wc -l)" -eq 32 ] && pass "twins.csv has 32 rows" || fail "twins.csv rows"
awk -F, 'NR > 1 && !($4 > 0 && $4 < 7) { bad++ } END { exit bad > 0 }' "$S/twins.csv" \
    && pass "held-out losses in (0, 7) (uniform over 512 = 6.24)" || fail "held-out loss out of range"
TOL=$(sed -n 's/^#define TOL_TWINS_MLP_IN_NORM_RATIO //p' "$REPO/tests/unit/tolerances.h")
awk -F, -v tol="$TOL" 'NR > 1 && $8 == "mlp_in" && ($15 - 1 > tol || 1 - $15 > tol) { bad++ } END { exit bad > 0 }' "$S/twins.csv" \
    && pass "mlp_in norm ratio = 1 for every twin and layer" || fail "mlp_in norm ratio != 1"
awk -F, 'NR > 1 && $5 == 0 && $7 != 0 { bad++ } END { exit bad > 0 }' "$S/llama-gelu/sweep/dkl.csv" \
    && pass "alpha 0 gives dKL 0" || fail "alpha 0 dKL"
has "$S/twins.md" "^Held-out loss spread: max/min − 1 = [0-9.]+%" "twins.md states the loss spread"
has "$S/report.md" "gemma-silu" "report names the twins"

# resume: nothing is redone, nothing changes
sum1=$(cat "$S"/*/pretrain/model/model.safetensors "$S"/*/ft/model/model.safetensors "$S"/*/sweep/dkl.csv | cksum)
ok "study twins again (resume)" "$STEER" study twins --out "$S" "${ARGS[@]}" --progress
sum2=$(cat "$S"/*/pretrain/model/model.safetensors "$S"/*/ft/model/model.safetensors "$S"/*/sweep/dkl.csv | cksum)
grep -q 'pretrain' "$TMP/first.err" && ! grep -Eq 'make-model|pretrain|fine-tune|sweep|analysis|corpus:' "$TMP/stderr.txt" \
    && pass "second run skips every finished stage" || fail "second run redid a stage: $(cat "$TMP/stderr.txt")"
[ "$sum1" = "$sum2" ] && pass "resume changes no result" || fail "results changed on resume"

# --seeds: a study per seed in DIR/seed-S plus the across-seed table. Seed 1
# is the study above (copied: only seed 2 trains), so its contrasts must be
# the ones it already wrote.
[ "$(tail -n +2 "$S/contrasts.csv" | wc -l)" -eq 24 ] && pass "contrasts.csv has 4 x 6 rows" || fail "contrasts.csv rows"
M=$TMP/seeds
mkdir -p "$M" && cp -r "$S" "$M/seed-1"
ok "study twins --seeds 1,2" "$STEER" study twins --out "$M" --seeds 1,2 "${ARGS[@]}" --quiet
for f in seed-2/twins.csv seed-2/contrasts.csv twins_seeds.md twins_seeds.csv; do
    [ -s "$M/$f" ] || fail "--seeds: missing $f"
done
[ "$(tail -n +2 "$M/twins_seeds.csv" | wc -l)" -eq 48 ] && pass "twins_seeds.csv: 24 contrast cells x 2 seeds" \
    || fail "twins_seeds.csv rows"
cmp -s "$S/contrasts.csv" "$M/seed-1/contrasts.csv" && pass "seed 1 reuses the finished study (same contrasts)" \
    || fail "seed 1 contrasts changed"
# every table row's seed columns and verdict agree with the two contrasts.csv files
awk -F, 'FNR == 1 { f++; next } f == 1 { m1[$1 "," $2] = $3; s1[$1 "," $2] = $4; next }
         f == 2 { m2[$1 "," $2] = $3; s2[$1 "," $2] = $4; next }
         f == 3 { k = $1 "," $2; if (!(k in m1) || ($3 == 1 ? m1[k] : m2[k]) != $4) bad++; n++ }
         END { for (k in m1) { c = (m1[k] > 2 * s1[k] && m2[k] > 2 * s2[k]) || (m1[k] < -2 * s1[k] && m2[k] < -2 * s2[k]); nc += c }
               print nc > "/dev/stderr"; exit bad > 0 || n != 48 }' \
    "$M/seed-1/contrasts.csv" "$M/seed-2/contrasts.csv" "$M/twins_seeds.csv" 2>"$TMP/nc.txt" \
    && pass "twins_seeds.csv holds both seeds' contrasts" || fail "twins_seeds.csv values differ from contrasts.csv"
[ "$(grep -c '| yes (' "$M/twins_seeds.md")" -eq "$(cat "$TMP/nc.txt")" ] \
    && pass "consistent cells: $(cat "$TMP/nc.txt") (same sign, |mean| > 2 s.e. in both seeds)" \
    || fail "twins_seeds.md marks $(grep -c '| yes (' "$M/twins_seeds.md") consistent cells, expected $(cat "$TMP/nc.txt")"
expect_fail "--seeds with one seed" "--seeds" "$STEER" study twins --out "$TMP/out/x" --seeds 3
expect_fail "--seeds repeated" "twice" "$STEER" study twins --out "$TMP/out/x" --seeds 1,1
expect_fail "--seeds not a number" "--seeds" "$STEER" study twins --out "$TMP/out/x" --seeds 1,x

# bad input
expect_fail "missing --out" "--out" "$STEER" study twins
expect_fail "bad --jobs" "--jobs" "$STEER" study twins --out "$TMP/out/x" --jobs 0
expect_fail "bad --threads value" "--threads" "$STEER" study twins --out "$TMP/out/x" --threads abc
expect_fail "unknown option" "--frobnicate" "$STEER" study twins --out "$TMP/out/x" --frobnicate
expect_fail "make-model --act relu" "--act" "$STEER" make-model --arch llama --act relu -o "$TMP/out/m"
expect_fail "make-model tokenizer of another size" "tok512.bin" "$STEER" make-model --arch llama --vocab 600 \
    --tokenizer models/stories260K/tok512.bin -o "$TMP/out/m"
expect_fail "missing teacher" "nope.bin" "$STEER" study twins --out "$TMP/out/x" --teacher "$TMP/nope.bin"
finish

#!/usr/bin/env bash
# cli_study_adapt.sh STEER REPO — `steer study adapt` (SPEC E4) end to end on
# tiny settings (stories260K, generated ListOps of depth 1, 3 updates of 2
# sequences per run, 2 validation and 3 test items: ASan runs it): the
# files, trainable counts and shares against the formulas computed here from
# `steer info` (adapter 2·d·r per layer, vector d, rank1 2·d, LoReFT 2·r·d + r,
# LoRA r·(in + out) per projection), the same seed in another directory gives
# the same table.csv bytes, a rerun in the same directory retrains nothing,
# and bad input (unknown method, task, site; a missing data file) is one line
# with nothing written.
set -u
STEER=${1:?usage: cli_study_adapt.sh STEER REPO}
REPO=${2:?usage: cli_study_adapt.sh STEER REPO}
M=$REPO/models/stories260K/stories260K.bin
source "$(dirname "$0")/lib_cli.sh"
export OMP_NUM_THREADS=1

ok "info" "$STEER" info "$M"
cfg() { awk -v k="$1:" '$1 == k {print $2}' "$TMP/stdout.txt"; }
L=$(cfg layers) D=$(cfg d_model) H=$(cfg heads) KV=$(cfg kv_heads) HD=$(cfg head_dim) FF=$(cfg d_ff) P=$(cfg parameters)
R=8
Q=$((H * HD)) KVD=$((KV * HD))
# LoRA on q, k, v, o, gate, up, down: r·(in + out) each
LORA=$((L * R * ((D + Q) + (D + KVD) + (D + KVD) + (Q + D) + (D + FF) + (D + FF) + (FF + D))))
declare -A WANT=(
    [vector]=$((L * D)) [adapter-silu]=$((L * 2 * D * R)) [rank1]=$((L * 2 * D))
    [loreft]=$((L * (2 * R * D + R))) [lora]=$LORA
)

S=(study adapt -m "$M" --task listops --methods vector,adapter-silu,rank1,loreft,lora --sites resid_post,mlp_in
   --depth 1 --steps 3 --batch 2 --n-train 8 --val-n 2 --eval-n 3 --seed 5 --quiet)
O1=$TMP/s1
ok "study adapt (9 runs)" "$STEER" "${S[@]}" --out "$O1"
for f in table.csv table.md timing.csv summary.json acc_vs_params.png acc_vs_params.svg; do
    [ -s "$O1/$f" ] && pass "wrote $f" || fail "missing $f"
done
has "$O1/table.csv" "^method,site,rank,lr,trainable,share,val_acc,test_acc,test_loss$" "table.csv header (no timing)"
has "$O1/table.csv" "^untrained,-," "untrained row"
[ "$(wc -l <"$O1/table.csv")" -eq 11 ] && pass "11 lines: header, untrained, 4 methods x 2 sites + lora" ||
    fail "table.csv has $(wc -l <"$O1/table.csv") lines"
for meth in vector adapter-silu rank1 loreft lora; do
    while IFS=, read -r mm site rank lr tr share rest; do
        [ "$mm" = "$meth" ] || continue
        [ "$tr" = "${WANT[$meth]}" ] && pass "$meth @ $site: trainable $tr = formula" ||
            fail "$meth @ $site: trainable $tr, formula ${WANT[$meth]}"
        awk -v s="$share" -v t="$tr" -v p="$P" 'BEGIN { e = t / p; d = s - e; if (d < 0) d = -d; exit !(d <= 1e-8 * e) }' &&
            pass "$meth @ $site: share $share = $tr / $P" || fail "$meth @ $site: share $share != $tr / $P"
    done <"$O1/table.csv"
done
[ -f "$O1/runs/adapter-silu-mlp_in/result.json" ] && [ -f "$O1/runs/lora-model/adapter.safetensors" ] &&
    pass "run directories per method and site" || fail "run directories: $(ls "$O1/runs")"

# same seed, another directory: the same table bytes
O2=$TMP/s2
ok "study adapt again" "$STEER" "${S[@]}" --out "$O2"
cmp -s "$O1/table.csv" "$O2/table.csv" && pass "same seed -> identical table.csv" || {
    fail "table.csv differs"
    diff "$O1/table.csv" "$O2/table.csv" | head
}
# another seed gives another table (the comparison can fail)
O3=$TMP/s3
ok "study adapt, seed 6, vector only" "$STEER" study adapt -m "$M" --task listops --methods vector --depth 1 --steps 3 \
    --batch 2 --n-train 8 --val-n 2 --eval-n 3 --seed 6 --quiet --out "$O3"
grep "^vector,resid_post" "$O1/table.csv" >"$TMP/a.txt"
grep "^vector,resid_post" "$O3/table.csv" >"$TMP/b.txt"
cmp -s "$TMP/a.txt" "$TMP/b.txt" && fail "seed 6 gives the seed-5 row" || pass "another seed, another row"

# rerun in place: nothing retrained (state files untouched), same outputs
before=$(stat -c %Y.%s "$O1"/runs/*/state.safetensors | md5sum)
cp "$O1/timing.csv" "$TMP/timing.csv"
sleep 1
ok "study adapt rerun (resume)" "$STEER" "${S[@]}" --out "$O1"
after=$(stat -c %Y.%s "$O1"/runs/*/state.safetensors | md5sum)
[ "$before" = "$after" ] && pass "finished runs not retrained" || fail "runs were retrained"
cmp -s "$O1/timing.csv" "$TMP/timing.csv" && pass "timing.csv kept from result.json" || fail "timing.csv changed"
cmp -s "$O1/table.csv" "$O2/table.csv" && pass "resumed table.csv identical" || fail "resumed table.csv differs"

ok "steer report on the study" "$STEER" report "$O1" -o "$TMP/rep.html"
has "$TMP/rep.md" "^## Learned steering against weight updates \(E4\): listops" "report has the E4 section"
has "$TMP/rep.md" "^\| adapter-silu \| mlp_in \| 8 \| 0.005 \| 5120 \| " "report has the adapter row"

# bad input
B=(study adapt -m "$M" --steps 1 --out "$TMP/out/s")
expect_fail "unknown method" "unknown method 'dora'" "$STEER" "${B[@]}" --task listops --methods lora,dora
expect_fail "unknown task" "unknown --task 'boolq'" "$STEER" "${B[@]}" --task boolq
expect_fail "unknown site" "unknown site 'mlp_sideways'" "$STEER" "${B[@]}" --task listops --sites resid_post,mlp_sideways
expect_fail "site outside the study" "site 'mlp_gate' in --sites is not" "$STEER" "${B[@]}" --task listops --sites mlp_gate
expect_fail "missing jsonl" "nope.jsonl" "$STEER" "${B[@]}" --task "jsonl:$TMP/nope.jsonl"
expect_fail "missing --out" "--out" "$STEER" study adapt -m "$M" --task listops
ok "--help" "$STEER" study adapt --help
has "$TMP/stdout.txt" "steer study adapt -m" "--help has the usage and an example"
finish

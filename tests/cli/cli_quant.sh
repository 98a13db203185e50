#!/usr/bin/env bash
# cli_quant.sh STEER REPO — every command on quantized GGUF models (issue 19):
# the llama-quant fixture (d_model 256, d_ff 768, 2 layers, tok512) as Q4_K_M
# (and Q8_0 where a second model or a second type is wanted). logits against
# llama.cpp's for the same file, --precision exact vs fast; capture shapes,
# batch capture; extract, --steer, --control-vector, --ablate (the capture's
# projection on the ablated direction ~0); sweep (Q4_K_M base, Q8_0 "ft"),
# analyze-mlp, icl, tune, patch with their invariants; training on the frozen
# quantized base (vector, adapter, LoReFT, LoRA: loss down, base file's bytes
# unchanged), eval with the trained adapter, full fine-tuning refused; bad
# input (vectors of another width) as one-line errors.
set -u
STEER=${1:?usage: cli_quant.sh STEER REPO}
REPO=${2:?usage: cli_quant.sh STEER REPO}
FIX=$REPO/tests/data/llama-quant
Q=$FIX/tiny-random-llama-quant.Q4_K_M.gguf
Q8=$FIX/tiny-random-llama-quant.Q8_0.gguf
DEV=$REPO/tests/data/winogrande/dev.jsonl
TRAIN=$REPO/tests/data/winogrande/train_m.jsonl
TUNE=$REPO/tests/data/tune
source "$(dirname "$0")/lib_cli.sh"
mkdir -p "$TMP/out"
SHA_Q=$(sha256sum <"$Q")
SHA_Q8=$(sha256sum <"$Q8")

# Numbers from safetensors files (python3 stdlib only: struct + json).
cat >"$TMP/st.py" <<'PY'
import json, math, struct, sys
def load(path):
    b = open(path, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        lo, hi = v['data_offsets']; raw = b[8 + n + lo:8 + n + hi]
        fmt = {'F32': 'f', 'I32': 'i'}[v['dtype']]
        out[k] = (v['shape'], struct.unpack('<%d%s' % (len(raw) // 4, fmt), raw))
    return out
cmd = sys.argv[1]
if cmd == 'maxdiff':      # A B: max |A.logits - B.logits| (B may be a raw f32 .bin)
    a = load(sys.argv[2])['logits'][1]
    if sys.argv[3].endswith('.bin'):
        raw = open(sys.argv[3], 'rb').read(); b = struct.unpack('<%df' % (len(raw) // 4), raw)
    else:
        b = load(sys.argv[3])['logits'][1]
    assert len(a) == len(b), (len(a), len(b))
    d = [abs(x - y) for x, y in zip(a, b)]
    print('%.6g %.6g' % (max(d), math.sqrt(sum(x * x for x in d) / len(d))))
elif cmd == 'proj':       # CAPTURE TENSOR VECTORS VTENSOR: max |h.u| / max |h| over rows (u = v/|v|)
    sh, h = load(sys.argv[2])[sys.argv[3]]; v = load(sys.argv[4])[sys.argv[5]][1]
    d = sh[-1]; nv = math.sqrt(sum(x * x for x in v)); u = [x / nv for x in v]
    rows = [h[i:i + d] for i in range(0, len(h), d)]
    p = max(abs(sum(x * y for x, y in zip(r, u))) for r in rows)
    m = max(math.sqrt(sum(x * x for x in r)) for r in rows)
    print('%.6g %.6g' % (p, m))
elif cmd == 'finite':     # FILE: every value of every tensor is finite
    sys.exit(0 if all(math.isfinite(x) for s, t in load(sys.argv[2]).values() for x in t) else 1)
PY
st() { python3 "$TMP/st.py" "$@"; }
# lt A B: A < B (floats)
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

# ---------------------------------------------------------------- info, logits
ok "info Q4_K_M" "$STEER" info "$Q"
has "$TMP/stdout.txt" '^ +Q4_K +13 tensors' "info: 13 Q4_K tensors"
has "$TMP/stdout.txt" '^ +Q6_K +3 tensors' "info: 3 Q6_K tensors"
has "$TMP/stdout.txt" '^d_model: +256$' "info: d_model 256"
# The fixture's 24 ids; llama.cpp's logits of the same files (tolerance: the
# fixture README's for a dequantize-then-f32 implementation, max 0.15 rms 0.03).
IDS="1 274 287 394 261 370 400 428 426 291 400 428 286 393 269 352 303 267 270 288 272 412 356 443"
for ty in Q4_K_M Q8_0; do
    for prec in fast exact; do
        ok "logits $ty --precision $prec" "$STEER" logits -m "$FIX/tiny-random-llama-quant.$ty.gguf" --ids "$IDS" \
            --precision $prec -o "$TMP/logits_${ty}_$prec.safetensors"
        read -r mx rms < <(st maxdiff "$TMP/logits_${ty}_$prec.safetensors" "$FIX/logits.llamacpp.$ty.f32.bin")
        lt "$mx" 0.15 && lt "$rms" 0.03 && pass "logits $ty $prec vs llama.cpp: max $mx, rms $rms" ||
            fail "logits $ty $prec vs llama.cpp: max $mx rms $rms (want < 0.15, < 0.03)"
    done
    read -r mx rms < <(st maxdiff "$TMP/logits_${ty}_fast.safetensors" "$TMP/logits_${ty}_exact.safetensors")
    # fast (int8 activations, every quantized type) and exact (dequantized
    # weights x f32) must differ, by at most the tolerance: equal logits would
    # mean --precision does not reach the kernels.
    lt 0 "$mx" && lt "$mx" 0.15 && pass "logits $ty: fast and exact differ but are close: max $mx, rms $rms" ||
        fail "logits $ty fast vs exact: max $mx (want > 0 and < 0.15)"
done
"$STEER" tensors "$TMP/logits_Q4_K_M_fast.safetensors" >"$TMP/t.txt" 2>&1
has "$TMP/t.txt" '^ +logits +F32 +\[24, 512\]$' "logits [24, 512]"
expect_fail "--precision of an unknown kind" "--precision" \
    "$STEER" logits -m "$Q" --ids "1 2" --precision half -o "$TMP/out/l.safetensors"

# ---------------------------------------------------------------- capture
ok "capture -p" "$STEER" capture -m "$Q" -p "Once upon a time" --sites resid_post,mlp_act --layers all \
    -o "$TMP/acts.safetensors"
"$STEER" tensors "$TMP/acts.safetensors" >"$TMP/t.txt" 2>&1
for l in 0 1; do
    has "$TMP/t.txt" "^ +resid_post\\.$l +F32 +\\[5, 256\\]$" "capture resid_post.$l [T=5, 256]"
    has "$TMP/t.txt" "^ +mlp_act\\.$l +F32 +\\[5, 768\\]$" "capture mlp_act.$l [5, 768]"
done
st finite "$TMP/acts.safetensors" && pass "capture: finite values" || fail "capture: non-finite values"
printf 'Once upon a time\nThe cat sat on the mat\nLily\n' >"$TMP/p.txt"
ok "capture --prompts (batch)" "$STEER" capture -m "$Q8" --prompts "$TMP/p.txt" --layers -1 -q -o "$TMP/batch.safetensors"
"$STEER" tensors "$TMP/batch.safetensors" >"$TMP/t.txt" 2>&1
has "$TMP/t.txt" '^ +resid_post\.1 +F32 +\[3, 10, 256\]$' "batch capture (Q8_0) resid_post.1 [N=3, T_max=10, 256]"
printf '{"prompt": "Once upon a time", "completion": " x"}\n{"prompt": "Lily", "completion": " y"}\n' >"$TMP/d.jsonl"
ok "capture --data --positions last" "$STEER" capture -m "$Q" --data "$TMP/d.jsonl" --positions last -q \
    -o "$TMP/bd.safetensors"
"$STEER" tensors "$TMP/bd.safetensors" >"$TMP/t.txt" 2>&1
has "$TMP/t.txt" '^ +resid_post\.1 +F32 +\[2, 256\]$' "capture --data --positions last: [2, 256]"

# ---------------------------------------------------------------- extract, steer, control vector, ablate
printf '%s\n' "Once upon a time there was a happy girl" "The sun was bright and she laughed" \
    "Tom smiled at his friend" "Lily was glad to play" >"$TMP/pos.txt"
printf '%s\n' "Once upon a time there was a sad girl" "The rain fell and she cried" \
    "Tom frowned at his friend" "Lily was upset to stay" >"$TMP/neg.txt"
V=$TMP/md.safetensors
ok "extract mean-diff" "$STEER" extract -m "$Q" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" -o "$V"
ok "vec info" "$STEER" vec info "$V"
has "$TMP/stdout.txt" '^resid_post\.1 +\[256\]' "vector resid_post.1 [256]"
has "$TMP/stdout.txt" '^  d_model = 256$' "vector metadata d_model 256"
P="Once upon a time"
gen() { "$STEER" generate -m "$Q" -p "$P" -n 24 "$@" 2>"$TMP/gen_err.txt"; }
gen >"$TMP/plain.txt" && pass "generate: $(head -c 60 "$TMP/plain.txt")" || fail "generate: $(cat "$TMP/gen_err.txt")"
gen >"$TMP/plain2.txt"
cmp -s "$TMP/plain.txt" "$TMP/plain2.txt" && pass "generate greedy twice: same text" || fail "generate is not deterministic"
gen --precision exact >"$TMP/exact.txt" && [ -s "$TMP/exact.txt" ] && pass "generate --precision exact runs" ||
    fail "generate --precision exact: $(cat "$TMP/gen_err.txt")"
gen --steer "$V:resid_post:1:4" >"$TMP/st.txt" || fail "generate --steer: $(cat "$TMP/gen_err.txt")"
cmp -s "$TMP/st.txt" "$TMP/plain.txt" && fail "--steer changed nothing" ||
    pass "--steer changes the text: $(head -c 60 "$TMP/st.txt")"
ok "vec export --llamacpp" "$STEER" vec export --llamacpp "$V" --layers 1 -m "$Q" -o "$TMP/cv.gguf"
gen --control-vector "$TMP/cv.gguf:4" >"$TMP/cv.txt" || fail "--control-vector: $(cat "$TMP/gen_err.txt")"
cmp -s "$TMP/cv.txt" "$TMP/st.txt" && pass "--control-vector cv.gguf:4 = --steer V:resid_post:1:4" ||
    fail "--control-vector and --steer differ: $(head -c 60 "$TMP/cv.txt")"
gen --ablate "$V:resid_post:0" >"$TMP/abl.txt" || fail "--ablate: $(cat "$TMP/gen_err.txt")"
cmp -s "$TMP/abl.txt" "$TMP/plain.txt" && fail "--ablate changed nothing" || pass "--ablate changes the text"
# The capture with the direction ablated at resid_post.0 has (almost) no
# component along it: |h.u| <= 1e-5 |h|_max (float32 rounding of h - (h.u)u);
# without the ablation the component is of order 0.1-1.
ok "capture --ablate" "$STEER" capture -m "$Q" -p "$P" --layers 0 --ablate "$V:resid_post:0" -o "$TMP/abl.safetensors"
read -r p0 m0 < <(st proj "$TMP/acts.safetensors" resid_post.0 "$V" resid_post.0)
read -r p1 m1 < <(st proj "$TMP/abl.safetensors" resid_post.0 "$V" resid_post.0)
lt "$p1" "$(awk -v m="$m1" 'BEGIN { print 1e-5 * m }')" && lt 0.01 "$p0" &&
    pass "ablated capture: max |h.u| = $p1 (|h| <= $m1; without ablation $p0)" ||
    fail "ablated capture: max |h.u| = $p1 (|h| <= $m1), without ablation $p0"
# --steer on the Q8_0 file changes its logits exactly from the steered layer on
ok "logits Q8_0 --steer" "$STEER" logits -m "$Q8" --ids "$IDS" --steer "$V:resid_post:1:4" -o "$TMP/l8s.safetensors"
read -r mx _ < <(st maxdiff "$TMP/l8s.safetensors" "$TMP/logits_Q8_0_fast.safetensors")
lt 0.01 "$mx" && pass "Q8_0: --steer moves the logits (max $mx)" || fail "Q8_0: --steer moved the logits by $mx"

# wrong widths: a stories260K vector (d_model 64) on the 256-wide model
WIDE=$TMP/narrow64.safetensors
"$STEER" extract -m "$REPO/models/stories260K/stories260K.bin" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" \
    --layers 1 -o "$WIDE" 2>"$TMP/err.txt" || fail "extract on stories260K: $(cat "$TMP/err.txt")"
expect_fail "--steer vector of another width" "resid_post.1 is 64 wide but resid_post is 256 wide" \
    "$STEER" generate -m "$Q" -p "$P" -n 4 --steer "$WIDE"
"$STEER" vec export --llamacpp "$WIDE" -o "$TMP/narrow.gguf" 2>/dev/null
expect_fail "--control-vector of another width" "64 values but the model's n_embd (d_model) is 256" \
    "$STEER" generate -m "$Q" -p "$P" -n 4 --control-vector "$TMP/narrow.gguf"
expect_fail "--ablate of another width" "narrow64.safetensors" \
    "$STEER" capture -m "$Q" -p "$P" --ablate "$WIDE" -o "$TMP/out/a.safetensors"

# ---------------------------------------------------------------- patch
CLEAN="The cat sat on the"
CORR="The dog sat on the"
if "$STEER" patch -m "$Q" --clean "$CLEAN" --corrupted "$CORR" --answer g --wrong s --sites resid_post \
    --layers -1 -o "$TMP/p" >"$TMP/sum.txt" 2>"$TMP/err.txt"; then
    pass "patch runs"
    clean=$(sed -n 's/^metric logit_diff: clean \([^,]*\), corrupted \(.*\)$/\1/p' "$TMP/sum.txt")
    corr=$(sed -n 's/^metric logit_diff: clean \([^,]*\), corrupted \(.*\)$/\2/p' "$TMP/sum.txt")
    [ "$(wc -l <"$TMP/p/patch.csv")" -eq 9 ] && pass "patch.csv: header + 8 positions" ||
        fail "patch.csv has $(wc -l <"$TMP/p/patch.csv") lines"
    m7=$(awk -F, '$1 == "resid_post" && $2 == 1 && $3 == 7 { print $6 }' "$TMP/p/patch.csv")
    m0=$(awk -F, '$1 == "resid_post" && $2 == 1 && $3 == 0 { print $6 }' "$TMP/p/patch.csv")
    [ -n "$clean" ] && [ "$m7" = "$clean" ] && [ "$m0" = "$corr" ] &&
        pass "resid_post.1 patched at the last position = clean metric $clean, at position 0 = corrupted $corr" ||
        fail "patch invariants: last $m7 vs clean $clean, first $m0 vs corrupted $corr"
else
    fail "patch: $(cat "$TMP/err.txt")"
fi

# ---------------------------------------------------------------- tune
ok "extract from A/B items" "$STEER" extract -m "$Q" --data "$TUNE/ab_train.jsonl" --site resid_post \
    --token answer -o "$TMP/ab.safetensors"
ok "tune" "$STEER" tune -m "$Q" -v "$TMP/ab.safetensors" --data "$TUNE/ab_dev.jsonl" --neutral "$TUNE/neutral.txt" \
    --scales 0,1 --kl-budget 0.5 -o "$TMP/tune" --quiet
rows=$(($(wc -l <"$TMP/tune/tune.csv") - 1))
[ "$rows" -eq 4 ] && pass "tune.csv: 4 cells (1 site x 2 layers x 2 scales)" || fail "tune.csv: $rows rows, want 4"
awk -F, 'NR > 1 && $4 == 0 && $10 != 0 { bad++ } NR > 1 && $4 == 1 && !($10 > 0) { bad++ } END { exit bad > 0 }' \
    "$TMP/tune/tune.csv" && pass "tune: KL 0 at scale 0, > 0 at scale 1" || fail "tune KL column: $(cat "$TMP/tune/tune.csv")"

# ---------------------------------------------------------------- sweep (Q4_K_M base, Q8_0 as F)
ok "sweep" "$STEER" sweep --base "$Q" --ft "$Q8" --data "winogrande:$DEV" --n 2 --sites resid_post,mlp_in \
    --layers 1 --alphas 0,1 --tokens 2 --quiet --out "$TMP/sw"
rows=$(($(wc -l <"$TMP/sw/dkl.csv") - 1))
[ "$rows" -eq 8 ] && pass "dkl.csv: 2 sites x 1 layer x 2 alphas x 2 tokens = 8 rows" || fail "dkl.csv: $rows rows"
awk -F, 'NR > 1 && $5 == "0" && ($7 != "0" || $8 != "0") { bad++ }
    NR > 1 && ($7 == "" || $7 ~ /nan|inf/ || $9 != 2) { bad++ } END { exit bad > 0 }' "$TMP/sw/dkl.csv" &&
    pass "dkl.csv: finite, n = 2, dKL(alpha=0) = 0 exactly" || fail "dkl.csv: $(cat "$TMP/sw/dkl.csv")"
# alpha = 1 at resid_post of the last layer gives F's final residual stream
# (B's output norm and head): closer to F than B is, dKL < 0
awk -F, 'NR > 1 && $3 == "resid_post" && $5 == "1" && !($7 < 0) { bad++ } END { exit bad > 0 }' "$TMP/sw/dkl.csv" &&
    pass "resid_post alpha 1: dKL < 0" || fail "resid_post alpha 1: $(grep resid_post "$TMP/sw/dkl.csv")"

# ---------------------------------------------------------------- analyze-mlp (Q4_K_M and Q8_0)
ok "data export" "$STEER" data export "winogrande:$DEV" --n 4 -o "$TMP/wg4.jsonl"
ok "extract oracle-mean (B Q4_K_M, F Q8_0)" "$STEER" extract --method oracle-mean -m "$Q" --ft "$Q8" \
    --pos "$TMP/wg4.jsonl" --token all --site attn_out -o "$TMP/oracle.safetensors"
ok "analyze-mlp" "$STEER" analyze-mlp -m "$Q" -m "$Q8" --data "winogrande:$DEV" --n 2 --token 1 \
    --vectors "$TMP/oracle.safetensors" --out "$TMP/mlp"
rows=$(awk -F, 'NR > 1 && $4 == 2 * 768' "$TMP/mlp/mlp_stats.csv" | wc -l)
[ "$rows" -eq 8 ] && pass "mlp_stats.csv: 8 rows (2 models x 2 layers x 2 terms) with n = 2 x 768" ||
    fail "mlp_stats.csv: $rows rows with n = 1536"
rows=$(awk -F, 'NR > 1 && $2 == "attn_out" && $4 == 2' "$TMP/mlp/attenuation.csv" | wc -l)
[ "$rows" -eq 4 ] && pass "attenuation.csv: 2 models x 2 layers at attn_out" || fail "attenuation.csv: $rows rows"

# ---------------------------------------------------------------- icl
ok "icl" "$STEER" icl -m "$Q" --data "winogrande:$DEV" --pool "winogrande:$TRAIN" --shots 1 --n 2 --n-train 2 \
    --steps 1 --batch 2 --out "$TMP/icl"
has "$TMP/stdout.txt" "every layer patched: max \|logit - ICL logit\| = 0 over 2" "icl (a): exact on the quantized model"
has "$TMP/icl/icl_layers.csv" "^1," "icl_layers.csv: a row per layer"

# ---------------------------------------------------------------- train on the frozen quantized base
python3 - "$TMP/tr.jsonl" <<'PY'
import json, sys
items = [("Lily was", "happy"), ("The dog was", "big"), ("Tom saw a", "cat"), ("The sun was", "bright"),
         ("Mom gave him a", "hug"), ("The bird could", "fly"), ("She ate the", "cake"), ("They went to the", "park")]
with open(sys.argv[1], "w") as f:
    for p, c in items: f.write(json.dumps({"prompt": p, "completion": " " + c}) + "\n")
PY
for m in vector adapter loreft lora; do
    ok "train $m on Q4_K_M" "$STEER" train -m "$Q" --data "jsonl:$TMP/tr.jsonl" --eval-data "jsonl:$TMP/tr.jsonl" \
        --method $m --lr 3e-2 --steps 4 --batch 4 --out "$TMP/tr_$m"
    before=$(grep -o '"eval_loss_before": [0-9.e+-]*' "$TMP/stdout.txt" | cut -d' ' -f2)
    after=$(grep -o '"eval_loss": [0-9.e+-]*' "$TMP/stdout.txt" | cut -d' ' -f2)
    [ $m = lora ] && lora_after=$after
    [ -n "$after" ] && lt "$after" "$before" && pass "$m: held-out loss $before -> $after" ||
        fail "$m: held-out loss $before -> $after"
done
ok "eval Q4_K_M + LoRA adapter" "$STEER" eval -m "$Q" --adapter "$TMP/tr_lora/adapter.safetensors" \
    --data "jsonl:$TMP/tr.jsonl"
ev=$(grep -o '"loss": [0-9.e+-]*' "$TMP/stdout.txt" | cut -d' ' -f2)
awk -v a="$ev" -v b="$lora_after" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-3 * b) }' &&
    pass "eval loss with the adapter $ev = train's eval loss $lora_after" || fail "eval loss $ev vs train $lora_after"
expect_fail "full fine-tuning of a quantized base is refused" "full fine-tuning needs float weights" \
    "$STEER" train -m "$Q" --data "jsonl:$TMP/tr.jsonl" --method full --steps 1 --out "$TMP/out/full"
[ "$(sha256sum <"$Q")" = "$SHA_Q" ] && [ "$(sha256sum <"$Q8")" = "$SHA_Q8" ] &&
    pass "the quantized files' bytes are unchanged (sha256)" || fail "a quantized model file changed"
finish

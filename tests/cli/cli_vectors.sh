#!/usr/bin/env bash
# cli_vectors.sh STEER REPO — `steer extract`, `steer vec …` and the control
# vector options of `steer generate` on stories260K (d_model 64, 5 layers):
# metadata, `vec norms` output, arithmetic (scale, add, sub, slice,
# normalize), llama.cpp export → import bit for bit, --control-vector equal to
# the same vectors given with --steer, composition order, and bad inputs (one
# line on stderr naming the file, non-zero exit, nothing written).
set -u
STEER=${1:?usage: cli_vectors.sh STEER REPO}
REPO=${2:?usage: cli_vectors.sh STEER REPO}
MODEL=$REPO/models/stories260K/stories260K.bin
source "$(dirname "$0")/lib_cli.sh"
mkdir -p "$TMP/out"



# norm_of FILE TENSOR: the norm `vec norms` prints for TENSOR.
norm_of() { "$STEER" vec norms "$1" | awk -v t="$2" '$1 == t { print $2 }'; }
# same_num A B TOL: |A - B| <= TOL.
same_num() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }

# ---------------------------------------------------------------- extract
printf '%s\n' "Once upon a time there was a happy girl" "The sun was bright and she laughed" \
    "Tom smiled at his friend" "Lily was glad to play" >"$TMP/pos.txt"
printf '%s\n' "Once upon a time there was a sad girl" "The rain fell and she cried" \
    "Tom frowned at his friend" "Lily was upset to stay" >"$TMP/neg.txt"
MD=$TMP/md.safetensors
ok "extract mean-diff (all layers)" "$STEER" extract -m "$MODEL" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" -o "$MD"
"$STEER" vec info "$MD" >"$TMP/info.txt" 2>&1
has "$TMP/info.txt" '^vectors: 5$' "vec info: 5 vectors"
has "$TMP/info.txt" '^format: steer vector file \(safetensors\)$' "vec info: format"
for kv in 'format_version = 1' 'model_hint = llama' 'method = mean-diff' 'site = resid_post' 'token = last' \
    'n_pos = 4' 'n_neg = 4' 'd_model = 64' 'command = steer extract -m '; do
    has "$TMP/info.txt" "^  $kv" "vec info metadata: $kv"
done
for l in 0 1 2 3 4; do has "$TMP/info.txt" "^resid_post\\.$l +\\[64\\] +[0-9.]+" "vec info: resid_post.$l [64]"; done

# vec norms: a header and "<tensor> <norm>" per tensor in layer order.
"$STEER" vec norms "$MD" >"$TMP/norms.txt"
head -1 "$TMP/norms.txt" | grep -Eq '^tensor +norm$' && pass "vec norms header" || fail "vec norms header: $(head -1 "$TMP/norms.txt")"
[ "$(tail -n +2 "$TMP/norms.txt" | awk '{print $1}' | tr '\n' ' ')" = "resid_post.0 resid_post.1 resid_post.2 resid_post.3 resid_post.4 " ] &&
    pass "vec norms lists resid_post.0..4 in order" || fail "vec norms order: $(cat "$TMP/norms.txt")"
tail -n +2 "$TMP/norms.txt" | grep -Evq '^resid_post\.[0-4] +[0-9]+\.[0-9]{6}$' &&
    fail "vec norms line format: $(cat "$TMP/norms.txt")" || pass "vec norms lines are '<tensor> <norm with 6 decimals>'"
N2=$(norm_of "$MD" resid_post.2)

# PCA methods: unit vectors; pca-diff pairs by order (unequal counts fail).
ok "extract pca-diff" "$STEER" extract --method pca-diff -m "$MODEL" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" \
    --layers 1-4 -o "$TMP/pca.safetensors"
ok "extract pca-center" "$STEER" extract --method pca-center -m "$MODEL" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" \
    --layers 1-4 -o "$TMP/pcac.safetensors"
"$STEER" vec norms "$TMP/pca.safetensors" >"$TMP/n.txt"
[ "$(grep -c ' 1\.000000$' "$TMP/n.txt")" -eq 4 ] && pass "pca-diff: 4 unit vectors (layers 1-4)" ||
    fail "pca-diff norms: $(cat "$TMP/n.txt")"
"$STEER" vec info "$TMP/pca.safetensors" >"$TMP/info.txt"
has "$TMP/info.txt" '^  explained\.resid_post\.2 = 0\.[0-9]+$' "pca-diff records the explained share per layer"
# Mean difference and PCA direction agree in sign (positives project higher).
"$STEER" vec norms "$MD" "$TMP/pca.safetensors" >"$TMP/cos.txt"
awk 'NR > 1 && $4 != "-" { if ($4 <= 0) bad = 1; n++ } END { exit !(n == 4 && !bad) }' "$TMP/cos.txt" &&
    pass "vec norms A B: cosine(mean-diff, pca-diff) > 0 at layers 1-4: $(awk 'NR>1{printf "%s ", $4}' "$TMP/cos.txt")" ||
    fail "cosine table: $(cat "$TMP/cos.txt")"
grep -Eq '^resid_post\.0 +[0-9.]+ +- +-$' "$TMP/cos.txt" && pass "vec norms A B: '-' where B lacks the tensor" ||
    fail "missing tensor not marked: $(cat "$TMP/cos.txt")"

# JSONL with completions: --token answer and all.
cat >"$TMP/pos.jsonl" <<'EOF'
{"prompt": "Lily was", "completion": " happy"}
{"prompt": "The dog felt", "completion": " glad"}
EOF
cat >"$TMP/neg.jsonl" <<'EOF'
{"prompt": "Lily was", "completion": " sad"}
{"prompt": "The dog felt", "completion": " bad"}
EOF
ok "extract --token answer (JSONL)" "$STEER" extract -m "$MODEL" --pos "$TMP/pos.jsonl" --neg "$TMP/neg.jsonl" \
    --token answer --layers 3 -o "$TMP/ans.safetensors"
ok "extract --token all (JSONL)" "$STEER" extract -m "$MODEL" --pos "$TMP/pos.jsonl" --neg "$TMP/neg.jsonl" \
    --token all --layers 3 -o "$TMP/all.safetensors"
# The same pairs as --data rows with a shared prompt give the same bytes.
cat >"$TMP/pairs.jsonl" <<'EOF'
{"prompt": "Lily was", "positive": " happy", "negative": " sad"}
{"prompt": "The dog felt", "positive": " glad", "negative": " bad"}
EOF
ok "extract --data --token answer" "$STEER" extract -m "$MODEL" --data "$TMP/pairs.jsonl" --token answer --layers 3 \
    -o "$TMP/ans2.safetensors"
tail -c 256 "$TMP/ans.safetensors" >"$TMP/a.bin"
tail -c 256 "$TMP/ans2.safetensors" >"$TMP/b.bin"
cmp -s "$TMP/a.bin" "$TMP/b.bin" && pass "--data pairs = --pos/--neg JSONL (256 data bytes identical)" ||
    fail "--data and --pos/--neg JSONL differ"

# --chat: a random model given a [INST] chat template.
"$STEER" make-model --arch llama --seed 3 -o "$TMP/chatmodel" >/dev/null 2>&1
sed -i 's/^{/{"chat_template":"{{ bos_token }}{% for m in messages %}[INST] {{ m.content }} [\/INST]{% endfor %}",/' \
    "$TMP/chatmodel/tokenizer_config.json"
ok "extract --chat" "$STEER" extract -m "$TMP/chatmodel" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" --chat \
    -o "$TMP/chat.safetensors"
ok "extract without --chat" "$STEER" extract -m "$TMP/chatmodel" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" \
    -o "$TMP/nochat.safetensors"
"$STEER" vec info "$TMP/chat.safetensors" >"$TMP/info.txt"
has "$TMP/info.txt" '^  chat = 1$' "--chat recorded in the metadata"
"$STEER" vec norms "$TMP/chat.safetensors" "$TMP/nochat.safetensors" >"$TMP/cos.txt"
awk 'NR == 2 { exit !($4 < 0.999999) }' "$TMP/cos.txt" && pass "--chat changes the vectors (cosine $(awk 'NR==2{print $4}' "$TMP/cos.txt"))" ||
    fail "--chat made no difference: $(cat "$TMP/cos.txt")"

# oracle-mean: B and F from make-random (same shape, different seeds).
"$STEER" make-random -o "$TMP/B.gguf" --d 64 --ff 128 --heads 4 --kv-heads 2 --layers 3 --vocab 512 --ctx 128 --seed 1 >/dev/null 2>&1
"$STEER" make-random -o "$TMP/F.gguf" --d 64 --ff 128 --heads 4 --kv-heads 2 --layers 3 --vocab 512 --ctx 128 --seed 2 >/dev/null 2>&1
ok "extract oracle-mean" "$STEER" extract --method oracle-mean -m "$TMP/B.gguf" --ft "$TMP/F.gguf" --pos "$TMP/pos.txt" \
    --site resid_post,mlp_in -o "$TMP/oracle.safetensors"
"$STEER" vec info "$TMP/oracle.safetensors" >"$TMP/info.txt"
has "$TMP/info.txt" '^vectors: 6$' "oracle-mean: 2 sites x 3 layers"
has "$TMP/info.txt" '^  method = oracle-mean$' "oracle-mean: method"
has "$TMP/info.txt" '^  ft = .*F\.gguf$' "oracle-mean: ft recorded"
ok "oracle-mean with F = B" "$STEER" extract --method oracle-mean -m "$TMP/B.gguf" --ft "$TMP/B.gguf" --pos "$TMP/pos.txt" \
    -o "$TMP/oracle0.safetensors"
[ "$("$STEER" vec norms "$TMP/oracle0.safetensors" | awk 'NR > 1 && $2 != "0.000000"' | wc -l)" -eq 0 ] &&
    pass "oracle-mean with F = B: every vector is exactly zero" || fail "F = B gives non-zero vectors"

# ---------------------------------------------------------------- arithmetic
ok "vec scale 2" "$STEER" vec scale "$MD" 2 -o "$TMP/x2.safetensors"
same_num "$(norm_of "$TMP/x2.safetensors" resid_post.2)" "$(awk -v n="$N2" 'BEGIN{printf "%.6f", 2*n}')" 0.000002 &&
    pass "vec scale 2: norm $N2 -> $(norm_of "$TMP/x2.safetensors" resid_post.2)" || fail "vec scale 2 norm"
ok "vec scale -1 (negative factor as ALPHA)" "$STEER" vec scale "$MD" -1 -o "$TMP/neg1.safetensors"
"$STEER" vec norms "$MD" "$TMP/neg1.safetensors" >"$TMP/cos.txt"
[ "$(awk 'NR > 1 && $4 == "-1.000000"' "$TMP/cos.txt" | wc -l)" -eq 5 ] && pass "vec scale -1: cosine -1 at all 5 layers" ||
    fail "vec scale -1: $(cat "$TMP/cos.txt")"
ok "vec add A A" "$STEER" vec add "$MD" "$MD" -o "$TMP/sum.safetensors"
# A + A = 2A exactly: the data sections are byte-identical.
tail -c 1280 "$TMP/sum.safetensors" >"$TMP/a.bin"
tail -c 1280 "$TMP/x2.safetensors" >"$TMP/b.bin"
cmp -s "$TMP/a.bin" "$TMP/b.bin" && pass "vec add A A = vec scale A 2 (1280 data bytes identical)" || fail "A + A != 2A"
ok "vec sub A A" "$STEER" vec sub "$MD" "$MD" -o "$TMP/zero.safetensors"
[ "$("$STEER" vec norms "$TMP/zero.safetensors" | awk 'NR > 1 && $2 == "0.000000"' | wc -l)" -eq 5 ] &&
    pass "vec sub A A: 5 zero vectors" || fail "vec sub A A: $("$STEER" vec norms "$TMP/zero.safetensors")"
ok "vec add --alpha -1 = sub" "$STEER" vec add "$MD" "$TMP/x2.safetensors" --alpha -0.5 -o "$TMP/zero2.safetensors"
[ "$("$STEER" vec norms "$TMP/zero2.safetensors" | awk 'NR > 1 && $2 == "0.000000"' | wc -l)" -eq 5 ] &&
    pass "vec add A 2A --alpha -0.5: zero" || fail "vec add --alpha"
ok "vec slice --layers 1,3" "$STEER" vec slice "$MD" --layers 1,3 -o "$TMP/sl.safetensors"
[ "$("$STEER" vec norms "$TMP/sl.safetensors" | awk 'NR > 1 {printf "%s ", $1}')" = "resid_post.1 resid_post.3 " ] &&
    pass "vec slice --layers 1,3 keeps resid_post.1 and resid_post.3" || fail "vec slice: $("$STEER" vec norms "$TMP/sl.safetensors")"
same_num "$(norm_of "$TMP/sl.safetensors" resid_post.3)" "$(norm_of "$MD" resid_post.3)" 0 &&
    pass "vec slice keeps the values" || fail "vec slice changed values"
ok "vec normalize" "$STEER" vec normalize "$MD" -o "$TMP/unit.safetensors"
[ "$("$STEER" vec norms "$TMP/unit.safetensors" | awk 'NR > 1 && $2 == "1.000000"' | wc -l)" -eq 5 ] &&
    pass "vec normalize: 5 unit vectors" || fail "vec normalize"
"$STEER" vec info "$TMP/sl.safetensors" >"$TMP/info.txt"
has "$TMP/info.txt" '^  command = steer vec slice ' "vec output records its command"
has "$TMP/info.txt" '^  method = mean-diff$' "vec output keeps the input's method"

# ---------------------------------------------------------------- llama.cpp control vectors
CV=$TMP/cv.gguf
expect_fail "export with resid_post.0" "resid_post.0" \
    "$STEER" vec export --llamacpp "$MD" -o "$TMP/out/cv.gguf"
ok "export --llamacpp --layers 1-4 -m MODEL" "$STEER" vec export --llamacpp "$MD" --layers 1-4 -m "$MODEL" -o "$CV"
head -c 4 "$CV" | grep -q GGUF && pass "export writes a GGUF" || fail "export: not GGUF"
# Layout: 32-byte aligned data section ending with 4 directions of 256 bytes.
size=$(stat -c %s "$CV")
[ $((size % 32)) -eq 0 ] && pass "exported file size $size is a multiple of 32" || fail "size $size"
"$STEER" vec info "$CV" >"$TMP/info.txt"
has "$TMP/info.txt" '^format: llama.cpp control vector \(GGUF\)$' "vec info reads the GGUF"
has "$TMP/info.txt" '^  model_hint = llama$' "model_hint = llama"
has "$TMP/info.txt" '^  controlvector.layer_count = 4$' "layer_count = 4"
"$STEER" tensors "$CV" >"$TMP/t.txt" 2>&1
for l in 1 2 3 4; do has "$TMP/t.txt" "direction\\.$l" "steer tensors lists direction.$l"; done
ok "import -m MODEL" "$STEER" vec import "$CV" -m "$MODEL" -o "$TMP/back.safetensors"
ok "slice of the original" "$STEER" vec slice "$MD" --layers 1-4 -o "$TMP/orig14.safetensors"
tail -c 1024 "$TMP/back.safetensors" >"$TMP/a.bin"
tail -c 1024 "$TMP/orig14.safetensors" >"$TMP/b.bin"
tail -c 1024 "$CV" >"$TMP/c.bin"
cmp -s "$TMP/a.bin" "$TMP/b.bin" && cmp -s "$TMP/a.bin" "$TMP/c.bin" &&
    pass "export -> import: 4 x 64 floats bit for bit (safetensors, GGUF, re-imported)" || fail "export/import changed bytes"

# generate: --control-vector = --steer of the same vectors; scales and the layer range.
P="Once upon a time"
gen() { "$STEER" generate -m "$MODEL" -p "$P" -n 40 "$@" 2>"$TMP/gen_err.txt"; }
gen >"$TMP/plain.txt"
gen --control-vector "$CV:0.5" >"$TMP/cv.txt"
gen --steer "$TMP/orig14.safetensors:resid_post:all:0.5" >"$TMP/st.txt"
cmp -s "$TMP/cv.txt" "$TMP/st.txt" && pass "--control-vector F:0.5 = --steer of the same vectors at 0.5" ||
    fail "--control-vector and --steer differ: $(head -c 100 "$TMP/cv.txt") | $(head -c 100 "$TMP/st.txt")"
cmp -s "$TMP/cv.txt" "$TMP/plain.txt" && fail "--control-vector F:0.5 changed nothing" ||
    pass "--control-vector changes the text: $(head -c 70 "$TMP/cv.txt")"
gen --control-vector "$CV:0.25" --control-vector "$CV:0.25" >"$TMP/cv2.txt"
cmp -s "$TMP/cv.txt" "$TMP/cv2.txt" && pass "two control vectors sum: 0.25 + 0.25 = 0.5" || fail "control vectors do not sum"
gen --control-vector "$CV:0.5" --control-vector-layer-range 2 3 >"$TMP/cvr.txt"
gen --steer "$TMP/orig14.safetensors:resid_post:2-3:0.5" >"$TMP/str.txt"
cmp -s "$TMP/cvr.txt" "$TMP/str.txt" && pass "--control-vector-layer-range 2 3 = --steer ...:2-3" ||
    fail "layer range differs from --steer 2-3"
gen --control-vector "$CV:0.5" --control-vector-layer-range 0 -1 >"$TMP/cvr0.txt"
cmp -s "$TMP/cvr0.txt" "$TMP/cv.txt" && pass "--control-vector-layer-range 0 -1 = all layers (llama.cpp defaults)" ||
    fail "range 0 -1 is not all layers"
gen --control-vector "$CV" >"$TMP/cv1.txt"
gen --steer "$TMP/orig14.safetensors" >"$TMP/st1.txt"
cmp -s "$TMP/cv1.txt" "$TMP/st1.txt" && pass "--control-vector F (scale 1) = --steer F" || fail "scale 1 differs"
# --steer also takes the GGUF (read as resid_post).
gen --steer "$CV:resid_post:all:0.5" >"$TMP/stg.txt"
cmp -s "$TMP/stg.txt" "$TMP/cv.txt" && pass "--steer reads a control-vector GGUF" || fail "--steer GGUF differs"

# Composition order: ablations come before additions at a (site, layer). If
# the addition ran first, ablating its own direction would cancel it and the
# text would equal the ablation alone.
ok "slice resid_post.2" "$STEER" vec slice "$MD" --layers 2 -o "$TMP/l2.safetensors"
gen --ablate "$TMP/l2.safetensors" >"$TMP/abl.txt"
gen --ablate "$TMP/l2.safetensors" --steer "$TMP/l2.safetensors:resid_post:2:3" >"$TMP/ablst.txt"
gen --ablate "$TMP/l2.safetensors" --steer "$TMP/l2.safetensors:resid_post:2:3" >"$TMP/ablst_again.txt"
cmp -s "$TMP/abl.txt" "$TMP/ablst.txt" && fail "ablate+steer equals ablate alone (addition was ablated)" ||
    pass "ablation runs before the addition (ablate+steer != ablate alone)"
cmp -s "$TMP/abl.txt" "$TMP/plain.txt" && fail "--ablate changed nothing" || pass "--ablate changes the text"
# Order on the command line does not matter between kinds: the documented
# order is fixed.
gen --steer "$TMP/l2.safetensors:resid_post:2:3" --ablate "$TMP/l2.safetensors" >"$TMP/stabl.txt"
cmp -s "$TMP/stabl.txt" "$TMP/ablst.txt" && pass "--steer before --ablate on the command line: same result" ||
    fail "composition depends on option order"

# ---------------------------------------------------------------- bad inputs
# A vector file for d_model 128 (tiny-random-llama) given to a 64-wide model.
WIDE=$TMP/wide128.safetensors
"$STEER" extract -m "$REPO/tests/data/llama/tiny-random-llama.f32.gguf" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" \
    --layers 1 -o "$WIDE" 2>"$TMP/err.txt" || fail "extract on tiny-random-llama: $(cat "$TMP/err.txt")"
expect_fail "vector file for another d_model (names the file)" "wide128.safetensors" \
    "$STEER" generate -m "$MODEL" -p "$P" -n 4 --steer "$WIDE"
expect_fail "vector file for another d_model (names tensor and widths)" "resid_post.1 is 128 wide but resid_post is 64 wide" \
    "$STEER" generate -m "$MODEL" -p "$P" -n 4 --steer "$WIDE"
expect_fail "vec add of different widths" "128 wide" \
    "$STEER" vec add "$MD" "$WIDE" -o "$TMP/out/x.safetensors"
"$STEER" vec export --llamacpp "$WIDE" -o "$TMP/wide.gguf" 2>/dev/null
expect_fail "control vector n_embd 128 for d_model 64" "128 values but the model's n_embd (d_model) is 64" \
    "$STEER" generate -m "$MODEL" -p "$P" -n 4 --control-vector "$TMP/wide.gguf"
expect_fail "export -m checks d_model" "wide128.safetensors" \
    "$STEER" vec export --llamacpp "$WIDE" -m "$MODEL" -o "$TMP/out/w.gguf"

# Control vectors edited byte by byte: direction.1 renamed (same length).
patch_name() { # FILE FROM TO: replace the first occurrence of FROM (same length)
    local off
    off=$(grep -obUa -- "$2" "$1" | head -1 | cut -d: -f1)
    printf '%s' "$3" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}
cp "$CV" "$TMP/zero.gguf" && patch_name "$TMP/zero.gguf" direction.1 direction.0
expect_fail "control vector with direction.0" "direction.0: layer 0" \
    "$STEER" generate -m "$MODEL" -p "$P" -n 4 --control-vector "$TMP/zero.gguf"
cp "$CV" "$TMP/name.gguf" && patch_name "$TMP/name.gguf" direction.1 dimension.1
expect_fail "control vector tensor not named direction.N" "'dimension.1' is not named direction.<N>" \
    "$STEER" generate -m "$MODEL" -p "$P" -n 4 --control-vector "$TMP/name.gguf"
expect_fail "import: tensor not named direction.N" "name.gguf" \
    "$STEER" vec import "$TMP/name.gguf" -o "$TMP/out/x.safetensors"
cp "$CV" "$TMP/dupt.gguf" && patch_name "$TMP/dupt.gguf" direction.2 direction.1
expect_fail "control vector with a duplicate tensor" "duplicate tensor direction.1" \
    "$STEER" vec import "$TMP/dupt.gguf" -o "$TMP/out/x.safetensors"
cp "$CV" "$TMP/high.gguf" && patch_name "$TMP/high.gguf" direction.4 direction.5
expect_fail "control vector direction.5 for a 5-layer model" "layer 5 out of range" \
    "$STEER" generate -m "$MODEL" -p "$P" -n 4 --control-vector "$TMP/high.gguf"
cp "$CV" "$TMP/arch.gguf" && patch_name "$TMP/arch.gguf" controlvector controlvectox
expect_fail "GGUF that is not a control vector" "not a control vector" \
    "$STEER" generate -m "$MODEL" -p "$P" -n 4 --control-vector "$TMP/arch.gguf"
expect_fail "a model GGUF as a control vector" "general.architecture is 'llama'" \
    "$STEER" generate -m "$MODEL" -p "$P" -n 4 --control-vector "$REPO/models/stories260K/stories260K.gguf"

# A duplicate key, written byte by byte (our writer refuses duplicates).
le32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)))"; }
le64() { le32 "$1"; le32 0; }
gstr() { le64 ${#1}; printf '%s' "$1"; }
{
    printf 'GGUF'; le32 3; le64 1; le64 3
    gstr general.architecture; le32 8; gstr controlvector
    gstr controlvector.model_hint; le32 8; gstr llama
    gstr controlvector.model_hint; le32 8; gstr mistral
    gstr direction.1; le32 1; le64 64; le32 0; le64 0
} >"$TMP/dupkey.gguf"
pad=$(( (32 - $(stat -c %s "$TMP/dupkey.gguf") % 32) % 32 + 256 ))
head -c "$pad" /dev/zero >>"$TMP/dupkey.gguf"
expect_fail "control vector with a duplicate key" "duplicate key controlvector.model_hint" \
    "$STEER" generate -m "$MODEL" -p "$P" -n 4 --control-vector "$TMP/dupkey.gguf"
# The same bytes without the duplicate load fine (the builder is sound).
{
    printf 'GGUF'; le32 3; le64 1; le64 2
    gstr general.architecture; le32 8; gstr controlvector
    gstr controlvector.model_hint; le32 8; gstr llama
    gstr direction.1; le32 1; le64 64; le32 0; le64 0
} >"$TMP/single.gguf"
pad=$(( (32 - $(stat -c %s "$TMP/single.gguf") % 32) % 32 + 256 ))
head -c "$pad" /dev/zero >>"$TMP/single.gguf"
ok "hand-built control vector without the duplicate loads" "$STEER" generate -m "$MODEL" -p "$P" -n 4 \
    --control-vector "$TMP/single.gguf"

expect_fail "truncated control vector" "short.gguf" \
    bash -c "head -c 300 '$CV' >'$TMP/short.gguf' && '$STEER' vec info '$TMP/short.gguf'"
expect_fail "missing vector file" "no_such.safetensors" "$STEER" vec info "$TMP/no_such.safetensors"

# Extraction inputs.
printf 'a\nb\nc\n' >"$TMP/three.txt"
expect_fail "pca-diff with unpaired files" "pairs positives with negatives" \
    "$STEER" extract --method pca-diff -m "$MODEL" --pos "$TMP/three.txt" --neg "$TMP/neg.txt" -o "$TMP/out/x.safetensors"
expect_fail "--token answer without completions" "pos.txt:1: --token answer needs a completion" \
    "$STEER" extract -m "$MODEL" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" --token answer -o "$TMP/out/x.safetensors"
printf '{"prompt": "ok"}\n{"text": "no prompt"}\n' >"$TMP/bad.jsonl"
expect_fail "JSONL row without prompt" "bad.jsonl:2: missing string field \"prompt\"" \
    "$STEER" extract -m "$MODEL" --pos "$TMP/bad.jsonl" --neg "$TMP/neg.txt" -o "$TMP/out/x.safetensors"
printf '{"positive": "a"}\n' >"$TMP/badpair.jsonl"
expect_fail "--data row without negative" "badpair.jsonl:1: missing field \"negative\"" \
    "$STEER" extract -m "$MODEL" --data "$TMP/badpair.jsonl" -o "$TMP/out/x.safetensors"
expect_fail "--chat without a chat template" "--chat" \
    "$STEER" extract -m "$MODEL" --pos "$TMP/pos.txt" --neg "$TMP/neg.txt" --chat -o "$TMP/out/x.safetensors"
expect_fail "oracle-mean with a model of another shape" "not the same shape" \
    "$STEER" extract --method oracle-mean -m "$MODEL" --ft "$TMP/B.gguf" --pos "$TMP/pos.txt" -o "$TMP/out/x.safetensors"
"$STEER" extract --method bogus -m "$MODEL" --pos a --neg b -o x 2>"$TMP/err.txt"
rc=$?
[ "$rc" -eq 2 ] && grep -q "unknown --method 'bogus'" "$TMP/err.txt" && pass "unknown --method: exit 2" ||
    fail "unknown --method: exit $rc, $(cat "$TMP/err.txt")"
"$STEER" generate -m "$MODEL" -p x -n 1 --control-vector "$CV" --control-vector-layer-range 3 2>"$TMP/err.txt"
rc=$?
[ "$rc" -eq 2 ] && grep -q "two layer numbers" "$TMP/err.txt" && pass "--control-vector-layer-range with one number: exit 2" ||
    fail "layer range with one number: exit $rc, $(cat "$TMP/err.txt")"

# ---------------------------------------------------------------- help
"$STEER" >"$TMP/out.txt" 2>&1
grep -q '^  extract ' "$TMP/out.txt" && grep -q '^  vec ' "$TMP/out.txt" && pass "'steer' lists extract and vec" ||
    fail "'steer' does not list extract/vec"
"$STEER" extract --help | grep -q '^example:' && pass "extract --help has an example" || fail "extract --help"
for sub in info norms scale add sub normalize slice export import; do
    "$STEER" vec "$sub" --help >"$TMP/help.txt" 2>&1 && grep -q '^example:' "$TMP/help.txt" ||
        fail "steer vec $sub --help has no example"
done
pass "every vec subcommand's --help has an example"

finish

#!/usr/bin/env bash
# make_corpus.sh STEER [REPO] — regenerates the seed corpus tests/fuzz/corpus/
# from the repository's bundled and golden files and from tiny models made
# with the steer CLI (maintainers only; CI uses the committed corpus). Needs
# python3 (to cut JSON files down). Every seed is small: big files are
# truncated to a few KB or reduced (vocabularies to their first few hundred
# entries), so the whole corpus stays well under 2 MB.
# Each harness's input layout is described at the top of its fuzz_<name>.c.
set -euo pipefail
STEER=$(realpath "${1:?usage: make_corpus.sh STEER [REPO]}")
REPO=$(realpath "${2:-$(dirname "$0")/../..}")
C=$REPO/tests/fuzz/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
rm -rf "$C"
for d in gguf safetensors vectors llama2c tokbin tokjson spm hf jsonl; do mkdir -p "$C/$d"; done
q() { "$STEER" "$@" >/dev/null; }
# chat templates (GGUF tokenizer.chat_template) for the chat formatter
chat() { python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["chat_template"]=open(sys.argv[2]).read(); json.dump(c,open(sys.argv[1],"w"))' "$1/tokenizer_config.json" "$2"; }
HF=$REPO/tests/data/tokenizers/hf
TINY="--d 16 --ff 32 --layers 1 --heads 2 --kv-heads 1 --vocab 259 --ctx 16"

# ---------------------------------------------------------------- models
# The fuzz_hf fixture (same parameters and seed as fuzz_hf.c).
q make-model --arch llama $TINY --seed 7 -o "$T/llama"
q make-model --arch llama $TINY --seed 5 -o "$T/llama_chat"
chat "$T/llama_chat" "$HF/llama-3.2-3b-instruct/chat_template.jinja"
q convert "$T/llama_chat" "$C/gguf/llama_llama3chat.gguf"
printf '{"chat_template": "{%% for m in messages %%}[INST] {{ m.content }} [/INST]{%% endfor %%}"}' >"$T/llama_chat/tokenizer_config.json"
q convert "$T/llama_chat" "$C/gguf/llama_inst_chat.gguf"
q make-random -o "$C/gguf/llama_f32.gguf" --d 8 --ff 16 --heads 2 --kv-heads 1 --layers 1 --vocab 259 --ctx 16
q make-random -o "$C/gguf/llama_f16_tied.gguf" --d 8 --ff 16 --heads 2 --kv-heads 1 --layers 1 --vocab 259 \
    --ctx 16 --dtype f16 --tied
for a in qwen2 gemma gemma2 gemma3; do
    q make-model --arch $a $TINY --seed 3 -o "$T/$a"
    case $a in
    gemma*) chat "$T/$a" "$HF/gemma-2-2b-it/chat_template.jinja" ;;
    qwen2) python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["chat_template"])' \
               "$HF/qwen2.5-instruct/tokenizer_config.json" >"$T/qwen.jinja"
           chat "$T/$a" "$T/qwen.jinja" ;;
    esac
    q convert "$T/$a" "$C/gguf/${a}_bf16.gguf" --dtype bf16
done
head -c 4096 "$REPO/models/stories260K/stories260K.gguf" >"$C/gguf/stories260K_head4k.gguf"
# quantized GGUFs (src/formats/quant.h): a tiny llama whose matrices are Q8_0 and Q4_0 (the model
# loader's quantized paths) and one tensor of every block type (the decoders), written here in Python
q make-model --arch llama --d 32 --ff 64 --layers 1 --heads 2 --kv-heads 1 --vocab 259 --ctx 16 --seed 9 -o "$T/lq"
q convert "$T/lq" "$T/lq.gguf"
python3 - "$T/lq.gguf" "$C/gguf" <<'EOF'
import struct, sys
src, out = sys.argv[1], sys.argv[2]
d = open(src, "rb").read()
n_t, n_kv = struct.unpack_from("<QQ", d, 8)
SZ = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
def skip(t, p):
    if t == 8:
        return p + 8 + struct.unpack_from("<Q", d, p)[0]
    if t == 9:
        et, n = struct.unpack_from("<IQ", d, p)
        p += 12
        if et != 8:
            return p + n * SZ[et]
        for _ in range(n):
            p = skip(8, p)
        return p
    return p + SZ[t]
pos, align = 24, 32
for _ in range(n_kv):
    kl = struct.unpack_from("<Q", d, pos)[0]
    key = d[pos + 8:pos + 8 + kl]
    pos += 8 + kl
    t = struct.unpack_from("<I", d, pos)[0]
    pos += 4
    if key == b"general.alignment":
        align = struct.unpack_from("<I", d, pos)[0]
    pos = skip(t, pos)
kvs = d[24:pos]
infos = []
for _ in range(n_t):
    nl = struct.unpack_from("<Q", d, pos)[0]
    name = d[pos + 8:pos + 8 + nl]
    pos += 8 + nl
    nd = struct.unpack_from("<I", d, pos)[0]
    ne = struct.unpack_from("<%dQ" % nd, d, pos + 4)
    pos += 4 + 8 * nd
    ty, off = struct.unpack_from("<IQ", d, pos)
    pos += 12
    infos.append((name, ne, ty, off))
base = -(-pos // align) * align
def f16(x):
    return struct.pack("<e", x)
def q8_0(xs):  # ggml's reference scheme (the bytes need not be llama-quantize's)
    dd = max(abs(v) for v in xs) / 127
    idd = 1 / dd if dd else 0.0
    return f16(dd) + bytes(int(round(v * idd)) & 0xFF for v in xs)
def q4_0(xs):
    dd = max(xs, key=abs) / -8
    idd = 1 / dd if dd else 0.0
    q = [min(15, int(v * idd + 8.5)) for v in xs]
    return f16(dd) + bytes(q[j] | (q[j + 16] << 4) for j in range(16))
def gguf(path, kv_count, kv_bytes, tensors):  # tensors: (name, ne, type, bytes)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), kv_count) + kv_bytes
    body, ti = b"", b""
    for name, ne, ty, raw in tensors:
        body += b"\0" * (-len(body) % align)
        ti += struct.pack("<Q", len(name)) + name + struct.pack("<I%dQ" % len(ne), len(ne), *ne)
        ti += struct.pack("<IQ", ty, len(body))
        body += raw
    hdr = head + ti
    open(path, "wb").write(hdr + b"\0" * (-len(hdr) % align) + body)
tensors, k = [], 0
for name, ne, ty, off in infos:
    n = 1
    for x in ne:
        n *= x
    raw = d[base + off:base + off + 4 * n]
    if ty == 0 and len(ne) == 2 and ne[0] % 32 == 0:
        xs = struct.unpack("<%df" % n, raw)
        qt, fn = (8, q8_0) if k % 2 == 0 else (2, q4_0)
        raw = b"".join(fn(xs[i:i + 32]) for i in range(0, n, 32))
        ty, k = qt, k + 1
    tensors.append((name, ne, ty, raw))
gguf(out + "/llama_q8_0_q4_0.gguf", n_kv, kvs, tensors)
# one tensor of every block type (2 rows of one block; deterministic bytes)
blocks = {8: (32, 34), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
          10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210)}
state, tensors = 12345, []
for ty, (be, bb) in blocks.items():
    raw = bytearray()
    for _ in range(2 * bb):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        raw.append((state >> 16) & 0xFF)
    tensors.append((b"q.%d" % ty, (be, 2), ty, bytes(raw)))
gguf(out + "/quant_types.gguf", 0, b"", tensors)
EOF
mkdir -p "$T/l2c" "$T/l2c_untied"
q convert "$T/llama" "$T/l2c/model.bin"
cp "$T/l2c/model.bin" "$C/llama2c/llama_d16_v259.bin"
q make-model --arch llama --d 8 --ff 8 --layers 2 --heads 1 --kv-heads 1 --vocab 259 --ctx 4 --tied 0 --seed 2 \
    -o "$T/llama_untied"
q convert "$T/llama_untied" "$T/l2c_untied/model.bin"
cp "$T/l2c_untied/model.bin" "$C/llama2c/llama_d8_untied.bin"
head -c 28 "$REPO/models/stories260K/stories260K.bin" >"$C/llama2c/stories260K_header.bin"

# ---------------------------------------------------------------- tokenizers
# tokbin: 2 bytes k (vocabulary 3 + k % 1024) + tokenizer.bin
printf '\xfd\x01' | cat - "$REPO/models/stories260K/tok512.bin" >"$C/tokbin/tok512.in"
printf '\x00\x01' | cat - "$T/l2c/tokenizer.bin" >"$C/tokbin/tok259.in"
cp "$REPO/models/stories260K/tok512.model" "$C/spm/tok512.model"
# tokjson: tokenizer.json [\0 tokenizer_config.json]
python3 - "$REPO" "$T" <<'EOF'
import json, sys
repo, t = sys.argv[1], sys.argv[2]
def cut(src, n_keep, dst):
    j = json.load(open(src, encoding="utf-8"))
    m = j["model"]
    vocab = {k: v for k, v in m["vocab"].items() if v < n_keep}
    def ok(merge):
        a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
        return a in vocab and b in vocab and a + b in vocab
    m["vocab"] = vocab
    m["merges"] = [x for x in m["merges"] if ok(x)]
    # added tokens past the cut are renumbered n_keep, n_keep + 1, ...
    nxt = n_keep
    for a in j["added_tokens"]:
        if a["id"] >= n_keep:
            a["id"], nxt = nxt, nxt + 1
            vocab[a["content"]] = a["id"]
    json.dump(j, open(dst, "w", encoding="utf-8"), ensure_ascii=False)
    return j
g = cut(repo + "/tests/data/tokenizers/hf/gpt2/tokenizer.json", 400, t + "/gpt2.json")
# (<|endoftext|> became id 400) plus Qwen's chat markers, for the Qwen config
q = json.loads(json.dumps(g))
for i, tok in enumerate(("<|im_start|>", "<|im_end|>")):
    q["model"]["vocab"][tok] = 401 + i
    q["added_tokens"].append({"id": 401 + i, "special": True, "content": tok, "single_word": False,
                              "lstrip": False, "rstrip": False, "normalized": False})
json.dump(q, open(t + "/gpt2_chatml.json", "w", encoding="utf-8"), ensure_ascii=False)
# the same vocabulary with Llama 3's split regex and a TemplateProcessing BOS
l3 = json.loads(json.dumps(g))
l3["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Isolated", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
l3["model"]["vocab"]["<|begin_of_text|>"] = 401
l3["added_tokens"].append({"id": 401, "special": True, "content": "<|begin_of_text|>", "single_word": False,
                           "lstrip": False, "rstrip": False, "normalized": False})
l3["post_processor"] = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}], "pair": [], "special_tokens": {}}
json.dump(l3, open(t + "/llama3.json", "w", encoding="utf-8"), ensure_ascii=False)
p = cut(repo + "/tests/data/tokenizers/hf/phi-3-mini-4k-instruct/tokenizer.json", 600, t + "/phi3.json")
# merges as ["a", "b"] pairs (the newer tokenizers spelling)
p["model"]["merges"] = [x.split(" ", 1) for x in p["model"]["merges"]]
json.dump(p, open(t + "/phi3_pairs.json", "w", encoding="utf-8"), ensure_ascii=False)
EOF
cp "$T/gpt2.json" "$C/tokjson/gpt2_400.json"
{ cat "$T/gpt2_chatml.json"; printf '\0'; cat "$HF/qwen2.5-instruct/tokenizer_config.json"; } >"$C/tokjson/gpt2_chatml+qwen_config.in"
{ cat "$T/llama3.json"; printf '\0'; printf '{"add_bos_token": true, "bos_token": "<|begin_of_text|>", "eos_token": "<|endoftext|>", "chat_template": %s}' \
    "$(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$HF/llama-3.2-3b-instruct/chat_template.jinja")"; } \
    >"$C/tokjson/llama3_400+config.in"
{ cat "$T/phi3.json"; printf '\0'; cat "$HF/phi-3-mini-4k-instruct/tokenizer_config.json"; } >"$C/tokjson/phi3_600+config.in"
cp "$T/phi3_pairs.json" "$C/tokjson/phi3_600_pairs.json"
{ cat "$T/gemma/tokenizer.json"; printf '\0'; cat "$T/gemma/tokenizer_config.json"; } >"$C/tokjson/synthetic_spm+config.in"
# a GGUF with a byte-level vocabulary: the gpt2 cut in a tiny llama
q make-model --arch llama --d 8 --ff 8 --layers 1 --heads 1 --kv-heads 1 --vocab 401 --ctx 8 --seed 4 -o "$T/bl"
cp "$T/gpt2.json" "$T/bl/tokenizer.json"
printf '{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": false}' >"$T/bl/tokenizer_config.json"
q convert "$T/bl" "$C/gguf/llama_gpt2vocab.gguf"

# ---------------------------------------------------------------- hf directories: config.json [\0 index]
cp "$T/llama/config.json" "$C/hf/llama_fixture.json"
python3 - "$REPO" "$T" "$C/hf" <<'EOF'
import json, sys
repo, t, out = sys.argv[1:4]
cfg = json.load(open(t + "/llama/config.json"))
def w(name, c, index=None):
    with open(out + "/" + name, "wb") as f:
        f.write(json.dumps(c).encode())
        if index is not None:
            f.write(b"\0" + json.dumps(index).encode())
l3 = dict(cfg, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 8})
w("llama_rope_llama3.json", l3)
w("llama_rope_linear_tied.json", dict(cfg, rope_scaling={"type": "linear", "factor": 2.0}, tie_word_embeddings=True,
                                      hidden_act="gelu", head_dim=8))
# the index of fuzz_hf.c's two shards: layer 0's MLP in the second
names = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"] + [
    "model.layers.0." + n for n in ("input_layernorm.weight", "post_attention_layernorm.weight",
                                    "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                                    "self_attn.v_proj.weight", "self_attn.o_proj.weight")]
mlp = ["model.layers.0.mlp." + n for n in ("gate_proj.weight", "up_proj.weight", "down_proj.weight")]
wm = {n: "model-00001-of-00002.safetensors" for n in names}
wm.update({n: "model-00002-of-00002.safetensors" for n in mlp})
w("llama_sharded.in", cfg, {"metadata": {"total_size": 0}, "weight_map": wm})
for a in ("llama", "qwen2", "gemma", "gemma2"):
    w("config_%s.json" % a, json.load(open("%s/tests/data/%s/hf/config.json" % (repo, a))))
EOF
for a in gemma2 gemma3; do cp "$T/$a/config.json" "$C/hf/${a}_tiny.json"; done

# ---------------------------------------------------------------- safetensors and vector files
cp "$T/llama/model.safetensors" "$C/safetensors/llama_tiny.safetensors"
head -c 4096 "$REPO/tests/data/gemma/hf/model.safetensors" >"$C/safetensors/gemma_head4k.safetensors"
MODEL=$REPO/models/stories260K/stories260K.bin
q capture -m "$MODEL" --ids "1 403" --sites resid_post,mlp_in --layers 1,2 -o "$C/vectors/capture_T2.safetensors"
python3 - "$C" <<'EOF'
import json, struct, sys
c = sys.argv[1]
def st(path, tensors, meta=None):
    hdr, data = {}, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)
f32 = lambda xs: struct.pack("<%df" % len(xs), *xs)
v = [0.5 * (i % 5) - 1 for i in range(8)]
st(c + "/vectors/resid_post_d8.safetensors", [("resid_post.%d" % l, "F32", [8], f32(v)) for l in (1, 2, 4)],
   {"format_version": "1", "model_hint": "tiny", "method": "mean_diff", "site": "resid_post", "command": "steer extract"})
st(c + "/vectors/mixed_dtypes.safetensors", [
    ("attn_out.0", "F16", [4], struct.pack("<4e", 1, -2, 0.5, 3)),
    ("mlp_out.1", "BF16", [2, 2], bytes.fromhex("803f0040 40408040")),
    ("mlp_in.3", "F64", [3], struct.pack("<3d", 1e-3, 2.0, -7.5))], {"format_version": "1"})
st(c + "/vectors/nan.safetensors", [("resid_post.1", "F32", [4], f32([1, float("nan"), 2, 3]))])
st(c + "/safetensors/dtypes.safetensors", [
    ("a", "F32", [2, 3], f32(range(6))), ("b", "I8", [5], bytes(5)), ("c", "U8", [0], b""),
    ("d", "I64", [1], struct.pack("<q", -1)), ("e", "F16", [], struct.pack("<e", 1.5))],
   {"k": "v", "model_hint": "x"})
open(c + "/safetensors/empty_header.safetensors", "wb").write(struct.pack("<Q", 8) + b"{}      ")
EOF
q vec export --llamacpp "$C/vectors/resid_post_d8.safetensors" -o "$C/vectors/control_d8.gguf"
cp "$C/vectors/control_d8.gguf" "$C/gguf/control_d8.gguf"

# ---------------------------------------------------------------- datasets: selector byte + file
W=$REPO/tests/data/winogrande/dev.jsonl
{ printf '\1'; head -n 4 "$W"; } >"$C/jsonl/winogrande_dev4.in"
q data listops --n 4 --seed 1 --max-depth 3 --max-args 4 -o "$T/lo.jsonl"
{ printf '\2'; cat "$T/lo.jsonl"; } >"$C/jsonl/listops4.in"
printf '\0{"prompt": "The cat", "completion": " sat.", "id": 7, "label": 1}\n\n{"prompt": "caf\\u00e9 \\"q\\"\\n", "id": "x"}\n' \
    >"$C/jsonl/jsonl_rows.in"
printf '\357\273\277{"prompt": "bom first"}\r\n' | cat <(printf '\0') - >"$C/jsonl/jsonl_bom_crlf.in"
printf '\3[MAX 2 9 [MIN 4 7 ] 0 ]' >"$C/jsonl/listops_expr.in"
printf '\3[SM [MED 1 2 3 ] [MAX 9 ] 5 ]' >"$C/jsonl/listops_expr2.in"

du -sh "$C"; for d in "$C"/*; do echo "$(basename "$d"): $(ls "$d" | wc -l) files, $(du -sk "$d" | cut -f1) KB"; done

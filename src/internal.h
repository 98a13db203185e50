/*
 * internal.h — interfaces between libsteer's modules (not installed).
 * Modules are flat files named by prefix: err_, io_mmap_, gguf_, st_ (safetensors),
 * tok_ (tokenizer), ops_, model_, fwd_ (forward), hook_, sample_.
 */
#ifndef STEER_INTERNAL_H
#define STEER_INTERNAL_H

#include "steer.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- errors (error.c) */

/* Formats the thread-local error message and returns code (so callers can
 * `return steer_err(STEER_EFORMAT, "%s: truncated header", path);`). */
int steer_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- mmap (io_mmap.c) */

typedef struct {
    const uint8_t *data; /* read-only mapping of the whole file          */
    size_t size;
} io_map;

/* Maps path read-only. STEER_EIO (message names the file) if missing/unreadable.
 * An empty file maps to data = NULL, size = 0. */
int io_map_open(const char *path, io_map *out);
void io_map_close(io_map *m);

/* Writes `size` bytes to path atomically: path.tmp.<pid> then rename. */
int io_write_atomic(const char *path, const void *data, size_t size);
/* Reads a whole (small) file as a NUL-terminated string: *out (caller frees),
 * *size its length in bytes (size may be NULL). Errors name the file. */
int io_read_text(const char *path, char **out, size_t *size);
/* Writes j as indented JSON plus a final newline, atomically (io_write_atomic). */
struct cJSON;
int io_write_json(const char *path, const struct cJSON *j);

/* Opens a temporary file beside path for streaming writes; io_commit renames it
 * over path (or removes it if ok == 0). tmp_path must hold 4096 bytes. */
FILE *io_tmp_open(const char *path, char *tmp_path);
int io_tmp_commit(FILE *f, const char *tmp_path, const char *path, int ok);

/* ---------------------------------------------------------------- GGUF (io_gguf.c) */

/* ggml tensor types we read (values as in ggml.h). */
enum { GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1, GGML_TYPE_Q8_0 = 8, GGML_TYPE_BF16 = 30 };

/* GGUF metadata value types (as in the GGUF spec). */
enum {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
};

typedef struct {
    char *name;        /* owned by the file                                   */
    int type;          /* GGML_TYPE_*                                         */
    int n_dims;
    uint64_t ne[4];    /* ggml order: ne[0] fastest-varying (= columns)       */
    const void *data;  /* into the mapping                                    */
    size_t nbytes;
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Opens and fully validates a GGUF v2/v3 file (magic, version, every key and
 * tensor record inside the file, tensor data inside the file and aligned).
 * Errors name the file: "x.gguf: truncated at tensor info 3". */
int gguf_open(const char *path, gguf_file **out);
void gguf_close(gguf_file *f);
const char *gguf_path(const gguf_file *f);

/* Scalars, converting between integer types. STEER_EARG if the key is missing
 * ("<file>: missing key llama.block_count") or of another kind. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
int gguf_get_f32(const gguf_file *f, const char *key, float *out);
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
/* NUL-terminated copy owned by the file. */
int gguf_get_str(const gguf_file *f, const char *key, const char **out);
int gguf_has_key(const gguf_file *f, const char *key);
/* Array of strings: NUL-terminated copies (lens[i] = byte length, strings may
 * hold NUL bytes in principle) owned by the file. */
int gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t *n, const char *const **strs,
                     const uint32_t **lens);
/* Array of numbers converted to float / int32 (malloc'd, caller frees). */
int gguf_get_arr_f32(const gguf_file *f, const char *key, uint64_t *n, float **out);
int gguf_get_arr_i32(const gguf_file *f, const char *key, uint64_t *n, int32_t **out);

int gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* A GGUF v3 writer (alignment 32). Data pointers must stay valid until write. */
typedef struct gguf_writer gguf_writer;
int gguf_writer_new(gguf_writer **out);
void gguf_writer_free(gguf_writer *w);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, int v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, int n);
int gguf_writer_set_arr_f32(gguf_writer *w, const char *key, const float *v, int n);
int gguf_writer_set_arr_i32(gguf_writer *w, const char *key, const int32_t *v, int n);
/* ne in ggml order (ne[0] fastest). */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, int ggml_type, int n_dims, const uint64_t *ne,
                           const void *data);
int gguf_writer_write(gguf_writer *w, const char *path); /* atomic */

/* ---------------------------------------------------------------- HF directories (io_hf.c) */

#include <cjson/cJSON.h>

/* A Hugging Face model directory: config.json plus model.safetensors or a
 * sharded model.safetensors.index.json, every shard memory-mapped. */
typedef struct hf_dir hf_dir;

/* Opens dir. Errors name the file: "<dir>/config.json: not valid JSON",
 * "<dir>/model-00002-of-00002.safetensors: cannot open …" (missing shard),
 * "<dir>: no model.safetensors or model.safetensors.index.json". */
int hf_open(const char *dir, hf_dir **out);
void hf_close(hf_dir *h);
const char *hf_path(const hf_dir *h);
/* The parsed config.json; valid until hf_close. */
const cJSON *hf_config(const hf_dir *h);
/* Config getters. With required = 1 a missing key is STEER_EFORMAT
 * "<dir>/config.json: missing field 'hidden_size'"; with required = 0 *out
 * keeps its value. A present key of the wrong JSON type is always an error.
 * A JSON null counts as missing. */
int hf_cfg_int(const hf_dir *h, const char *key, int required, int *out);
int hf_cfg_float(const hf_dir *h, const char *key, int required, float *out);
int hf_cfg_bool(const hf_dir *h, const char *key, int required, int *out);
int hf_cfg_str(const hf_dir *h, const char *key, int required, const char **out);
/* Tensors across all shards. */
int hf_n_tensors(const hf_dir *h);
const steer_tensor_info *hf_tensor_at(const hf_dir *h, int i);
const steer_tensor_info *hf_find(const hf_dir *h, const char *name);

/* ---------------------------------------------------------------- tokenizer (tokenizer.c) */

/* BPE tokenizers (tokenizer.c, tok_hf.c, tok_pretok.c; shared struct in
 * tok_impl.h). SentencePiece style, as llama2.c run.c and llama.cpp's SPM
 * tokenizer do it: dummy-prefix space, spaces as U+2581 "▁", code points
 * looked up whole or as <0xXX> byte tokens, then greedy merges of the adjacent
 * pair with the highest score (leftmost wins ties). Byte-level style (GPT-2,
 * Llama 3, Qwen2): PCRE2 pre-split, bytes mapped to characters, merges by
 * rank. */
typedef struct tokenizer tokenizer;

/* Token types (as GGUF tokenizer.ggml.token_type). */
enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER = 4, TOK_UNUSED = 5, TOK_BYTE = 6 };

/* llama2.c tokenizer.bin: int32 max_token_length, then per token
 * float score, int32 len, bytes. n_vocab from the model header. */
int tok_load_llama2c(const char *path, int n_vocab, tokenizer **out);
/* tokenizer.ggml.{model="llama", tokens, scores, token_type, bos/eos/unk ids,
 * add_space_prefix}. */
int tok_load_gguf(const gguf_file *f, tokenizer **out);
void tok_free(tokenizer *t);

int tok_n_vocab(const tokenizer *t);
int tok_bos(const tokenizer *t);
int tok_eos(const tokenizer *t);
/* The vocabulary's add_bos_token / add_eos_token settings (1/0). */
int tok_add_bos(const tokenizer *t);
int tok_add_eos(const tokenizer *t);

/* Encodes text; see steer_tokenize for the contract. */
int tok_encode(const tokenizer *t, const char *text, int add_bos, int *tokens, int max_tokens, int *n_tokens);
/* flags: STEER_TOK_ADD_BOS | STEER_TOK_PARSE_SPECIAL (see steer_tokenize_ex). */
int tok_encode_ex(const tokenizer *t, const char *text, int flags, int *tokens, int max_tokens, int *n_tokens);

/* Hugging Face tokenizer files in dir: tokenizer.json (model BPE, either
 * SentencePiece-style — "▁", byte fallback, Llama 2 / Mistral / Gemma — or
 * byte-level with a pre-tokenizer split regex run through PCRE2 — GPT-2,
 * Llama 3, Qwen2), with its added/special tokens; else tokenizer.model (a
 * SentencePiece protobuf). tokenizer_config.json gives add_bos_token,
 * add_eos_token, bos/eos tokens and chat_template. Errors name the file. */
int tok_load_hf(const char *dir, tokenizer **out);
/* A SentencePiece-style vocabulary from arrays (pieces use U+2581 for space;
 * types as TOK_*; copied). For random-weight models and tests. */
int tok_build_spm(int n, const char *const *pieces, const float *scores, const int *types, int bos, int eos,
                  int unk, int add_space_prefix, tokenizer **out);
/* Writers: the vocabulary as GGUF tokenizer.ggml.* keys (the tokenizer must
 * outlive gguf_writer_write), as tokenizer.json + tokenizer_config.json in dir
 * (atomic), or as a llama2.c tokenizer.bin (SentencePiece-style only). */
int tok_write_gguf(const tokenizer *t, gguf_writer *w);
int tok_write_hf(const tokenizer *t, const char *dir);
int tok_write_llama2c(const tokenizer *t, const char *path);
/* The raw chat template (tokenizer_config.json chat_template or GGUF
 * tokenizer.chat_template), or NULL. Valid until tok_free. */
const char *tok_chat_template(const tokenizer *t);
/* Id of a piece spelled exactly so (e.g. "<|im_start|>"), or -1. */
int tok_piece_id(const tokenizer *t, const char *piece);
/* See steer_token_piece. */
const char *tok_piece(const tokenizer *t, int prev, int token, size_t *len);

/* ---------------------------------------------------------------- ops (ops.c) */

/* A weight matrix W [rows, cols], row-major, y = W·x. */
typedef struct {
    const void *data;
    steer_dtype dtype; /* F32, F16 or BF16                                    */
    int rows, cols;
} steer_mat;

float ops_f16_to_f32(uint16_t h);
uint16_t ops_f32_to_f16(float f);
float ops_bf16_to_f32(uint16_t h);
uint16_t ops_f32_to_bf16(float f); /* round to nearest even                   */
/* dst[n] = src[n] converted from dtype to f32. */
void ops_to_f32(float *dst, const void *src, steer_dtype dtype, size_t n);

/* out[n, W.rows] = in[n, W.cols] · Wᵀ. The one matmul interface: a
 * batch-invariant AVX2/FMA kernel for f32, f16 and bf16 weights (ops.c). */
void ops_matmul(float *out, const float *in, const steer_mat *W, int n);
/* The same product through OpenBLAS sgemm (f32 weights only; not
 * batch-invariant). Baseline for bench/. */
void ops_matmul_blas(float *out, const float *in, const steer_mat *W, int n);
/* Scalar reference for tests: plain loops, each dot product summed in double
 * (not bitwise equal to ops_matmul; compare within TOL_MATMUL_REF). */
void ops_matmul_ref(float *out, const float *in, const steer_mat *W, int n);
/* The kernel before issue 9 (same per-element order as ops_matmul, so the
 * same bits; slower). Kept for bench/bench_matmul and bench_forward. */
void ops_matmul_v1(float *out, const float *in, const steer_mat *W, int n);
/* Benchmarks only: when non-zero, ops_matmul runs ops_matmul_v1 (so
 * bench_forward can time the whole forward pass with the old kernel). */
extern int ops_matmul_use_v1;
/* out[n, d] = x / sqrt(mean(x²) + eps) * w. out may alias x. */
void ops_rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps);
/* out[n] = φ(g[n]) * u[n] for φ = act. */
void ops_glu(float *out, const float *g, const float *u, size_t n, steer_act act);
/* x[i, :] += b for each of n rows of width w. */
void ops_add_bias(float *x, const float *b, int n, int w);
/* x ← c·tanh(x/c). */
void ops_softcap(float *x, size_t n, float c);
void ops_softmax(float *x, int n);
/* Causal attention over a KV cache (grouped-query). For each batch row i
 * and query head h: att[i, h] = softmax_t(s_t) · V over the cached
 * positions t0..pos[i] of sequence seq[i], s_t = scale · q[i, h] · k_t (then
 * softcap · tanh(s_t / softcap) when softcap > 0), t0 = pos[i] − window + 1
 * when window > 0 (else 0). Query head h reads KV head h / (nh / nkv).
 * att, q: [n, nh·hd]; kc, vc: [n_seq, n_ctx, nkv·hd] (positions 0..pos[i]
 * of seq[i] written); scores: scratch [n_scores, nh / nkv, n_ctx], one slice
 * per OpenMP thread (n_scores >= the threads of the enclosing region).
 * Each (row, KV head) is computed by one thread with the same code whatever
 * n is, so results do not depend on the batch or the thread count. */
void ops_attention(float *att, const float *q, const float *kc, const float *vc, const int *pos, const int *seq,
                   int n, int nh, int nkv, int hd, int n_ctx, int window, float scale, float softcap, float *scores);
/* The same in double, plain loops (tests; TOL_ATTENTION_REF). */
void ops_attention_ref(float *att, const float *q, const float *kc, const float *vc, const int *pos, const int *seq,
                       int n, int nh, int nkv, int hd, int n_ctx, int window, float scale, float softcap);

/* ---------------------------------------------------------------- architectures (arch.c) */

/* Every weight tensor of a supported model, by role. */
typedef enum {
    W_TOK_EMBD = 0, W_OUT_NORM, W_OUTPUT,                                   /* global   */
    W_ATTN_NORM, W_Q, W_K, W_V, W_O, W_Q_BIAS, W_K_BIAS, W_V_BIAS, W_Q_NORM, /* layer    */
    W_K_NORM, W_POST_ATTN_NORM, W_FFN_NORM, W_GATE, W_UP, W_DOWN, W_POST_FFN_NORM,
    W_COUNT
} weight_role;

typedef struct {
    steer_arch arch;
    const char *name;          /* steer's name and GGUF general.architecture
                                  (Mistral GGUFs say "llama")                */
    const char *gguf_arch;     /* architecture written to GGUF               */
    const char *hf_class;      /* config.json architectures[0]               */
    const char *hf_model_type; /* config.json model_type                     */
    steer_act default_act;
    int norm_plus_one;         /* HF stores w, the norm scales by (1 + w);
                                  llama.cpp's GGUF stores 1 + w              */
    int embed_scale_sqrt_d;    /* embeddings × √d                            */
    int sandwich_norms;
    int qk_norm;
    int qkv_bias;
    int gguf_permute_qk;       /* llama.cpp permutes q/k rows (adjacent-pair
                                  RoPE); other families keep HF order (NEOX) */
    int tied_default;          /* tie_word_embeddings default                */
} arch_info;

const arch_info *arch_get(steer_arch a);
const arch_info *arch_by_gguf(const char *gguf_arch);
const arch_info *arch_by_hf(const char *hf_class, const char *model_type);
/* "LlamaForCausalLM, MistralForCausalLM, …" for error messages (static). */
const char *arch_supported_list(void);
int weight_is_layer(weight_role r);
int weight_is_norm(weight_role r);
/* 1 if the architecture has this tensor (W_OUTPUT: only when untied). */
int arch_has_weight(const arch_info *a, weight_role r);
/* The tensor's name in Hugging Face (gguf = 0) or llama.cpp GGUF (gguf = 1)
 * naming, layer substituted. */
void arch_tensor_name(const arch_info *a, int gguf, weight_role r, int layer, char *buf, size_t n);

/* ---------------------------------------------------------------- strbuf.c */

/* A growable NUL-terminated string (also fine for bytes: n counts them); a
 * zero-initialised sbuf is empty. oom is sticky: after a failed growth every
 * later call does nothing, so callers check it once at the end. p is owned by
 * the buffer (sb_free), or taken over by the caller. */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

void sb_put(sbuf *b, const void *s, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_putc(sbuf *b, char c);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(sbuf *b);

/* ---------------------------------------------------------------- data (data.c) */

/* "FILE:LINE: item ID" (or "item ID" for data built in memory) into buf, for
 * error messages about one dataset item; returns buf. */
const char *data_item_where(const steer_dataset *d, const steer_data_item *it, char *buf, size_t n);

#endif /* STEER_INTERNAL_H */

/*
 * steer.h — the public API of libsteer: activation steering of transformer
 * language models on CPU.
 *
 * Conventions (read once):
 *   - Every function that can fail returns an int status (STEER_OK = 0, or a
 *     negative STEER_E* code) and leaves a one-line message naming the file or
 *     argument and the problem in steer_last_error() (thread-local).
 *     The library never exits and never prints.
 *   - Handles are opaque. build/new functions hand ownership to the caller,
 *     who releases it with the matching *_free function.
 *   - Tensors are float32, row-major. Shapes are written [rows, cols].
 *   - Layers are 0-based. Sites are named as in SPEC §2 (see steer_site).
 */
#ifndef STEER_H
#define STEER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STEER_VERSION "0.1.0"

/* ---------------------------------------------------------------- status */

enum {
    STEER_OK = 0,
    STEER_EIO = -1,          /* file missing, unreadable, or write failed       */
    STEER_EFORMAT = -2,      /* corrupt/truncated/wrong-magic file contents      */
    STEER_EARG = -3,         /* bad argument: unknown site, layer out of range…  */
    STEER_ENOMEM = -4,       /* allocation failed                                */
    STEER_EUNSUPPORTED = -5, /* valid file, but a feature we do not implement    */
    STEER_ENAN = -6,         /* NaN/Inf in a user-supplied vector                */
    STEER_ECONTEXT = -7,     /* sequence longer than the context window          */
};

/* The message of the last failure on this thread. Never NULL; valid until the
 * next failing call on the same thread. */
const char *steer_last_error(void);

/* ---------------------------------------------------------------- dtypes */

typedef enum {
    STEER_DTYPE_F32 = 0,
    STEER_DTYPE_F16 = 1,
    STEER_DTYPE_BF16 = 2,
    STEER_DTYPE_F64 = 3,
    STEER_DTYPE_I32 = 4,
    STEER_DTYPE_I64 = 5,
    STEER_DTYPE_U8 = 6,
    STEER_DTYPE_I8 = 7,
    STEER_DTYPE_COUNT
} steer_dtype;

const char *steer_dtype_name(steer_dtype t); /* "F32", "BF16", … (static)       */
size_t steer_dtype_size(steer_dtype t);      /* bytes per element                */

/* ---------------------------------------------------------------- sites */

/* Hook sites inside decoder block l (SPEC §2). Widths: d_model for all but
 * mlp_gate, mlp_up and mlp_act, which are d_ff wide. */
typedef enum {
    STEER_SITE_RESID_PRE = 0, /* block input x                                  */
    STEER_SITE_ATTN_OUT,      /* W_o·Attn(RMSNorm_in(x))                         */
    STEER_SITE_RESID_MID,     /* resid_pre + attn_out                            */
    STEER_SITE_MLP_IN,        /* RMSNorm_post(resid_mid)                         */
    STEER_SITE_MLP_GATE,      /* a_g = W_g·mlp_in              [d_ff]            */
    STEER_SITE_MLP_UP,        /* a_u = W_u·mlp_in              [d_ff]            */
    STEER_SITE_MLP_ACT,       /* φ(a_g) ⊙ a_u                  [d_ff]            */
    STEER_SITE_MLP_OUT,       /* W_d·mlp_act                                     */
    STEER_SITE_RESID_POST,    /* resid_mid + mlp_out (block output)              */
    STEER_SITE_COUNT
} steer_site;

const char *steer_site_name(steer_site s); /* "resid_pre", … (static)            */
/* Parses a site name. Returns STEER_OK, or STEER_EARG for an unknown name. */
int steer_site_parse(const char *name, steer_site *out);

/* ---------------------------------------------------------------- model */

typedef enum {
    STEER_ARCH_LLAMA = 0, /* Llama 2/3 (incl. llama3 RoPE scaling)              */
    STEER_ARCH_MISTRAL,   /* = Llama blocks; optional sliding window            */
    STEER_ARCH_QWEN2,     /* Llama blocks + q/k/v biases                        */
    STEER_ARCH_GEMMA,     /* (1+w) norms, sqrt(d) embedding scale, GELU-tanh    */
    STEER_ARCH_GEMMA2,    /* + sandwich norms, soft-capping, alternating SWA    */
    STEER_ARCH_GEMMA3,    /* + q/k norms, local/global RoPE bases, SWA pattern  */
    STEER_ARCH_COUNT
} steer_arch;

typedef enum {
    STEER_ACT_SILU = 0,  /* x·σ(x)                                             */
    STEER_ACT_GELU_TANH, /* GELU, tanh approximation (gelu_pytorch_tanh)        */
    STEER_ACT_GELU,      /* exact GELU (erf)                                    */
} steer_act;

typedef struct {
    steer_arch arch;
    const char *arch_name; /* "llama", "mistral", "qwen2", "gemma", "gemma2", "gemma3" */
    const char *format;    /* "llama2c", "gguf", "hf"                           */
    int n_layer;
    int d_model;
    int n_head;
    int n_kv_head;
    int head_dim;
    int d_ff;
    int n_vocab;
    int n_ctx_train;  /* context length the model was trained with             */
    float rope_theta;
    float rms_eps;
    int tied_embeddings; /* 1 if the output head is the token embedding        */
    steer_dtype weight_dtype; /* dtype of the large matrices                   */
    int64_t n_params;
    steer_act act;        /* φ of the gated MLP                                */
    float embed_scale;    /* embeddings are multiplied by this (Gemma: √d)      */
    float attn_scale;     /* attention logits scale (1/√head_dim, or
                             query_pre_attn_scalar^-½ for Gemma 2/3)            */
    float attn_softcap;   /* 0 = none; else s ← c·tanh(s/c)                    */
    float final_softcap;  /* 0 = none; else logits ← c·tanh(logits/c)          */
    int sliding_window;   /* 0 = none; else keys with pos − k < window          */
    float rope_theta_local; /* RoPE base of sliding-window layers (Gemma 3)     */
    int sandwich_norms;   /* Gemma 2/3: post-attention and post-MLP norms      */
    int qk_norm;          /* Gemma 3: RMSNorm of q and k per head               */
    int qkv_bias;         /* Qwen2: biases on q, k, v                           */
} steer_model_config;

typedef struct steer_model steer_model;

typedef struct {
    const char *tokenizer_path; /* llama2.c checkpoints: tokenizer .bin; NULL =
                                   look beside the model for tokenizer.bin or
                                   tok<n_vocab>.bin                            */
} steer_model_params;

steer_model_params steer_model_default_params(void);

/* Loads a model: a llama2.c checkpoint (legacy .bin), a GGUF v3 file, or a
 * Hugging Face directory (config.json + model.safetensors or a sharded
 * index). Architectures: see steer_arch. F32/F16/BF16 tensors, memory-mapped.
 * On success *out is owned by the caller (steer_model_free). */
int steer_model_load(const char *path, const steer_model_params *params, steer_model **out);
void steer_model_free(steer_model *m);

/* Valid until steer_model_free. */
const steer_model_config *steer_model_get_config(const steer_model *m);

/* 1 if layer l uses sliding-window attention. */
int steer_model_layer_is_sliding(const steer_model *m, int layer);

/* Width of a site's activations (d_model or d_ff). */
int steer_model_site_width(const steer_model *m, steer_site s);

/* Final norm and head applied to rows of a residual stream:
 * logits[n, n_vocab] = head(RMSNorm_final(h[n, d_model])). Caller owns both. */
int steer_model_unembed(const steer_model *m, const float *h, int n, float *logits);

/* ---------------------------------------------------------------- tokenizer */

int steer_vocab_size(const steer_model *m);
int steer_token_bos(const steer_model *m);
int steer_token_eos(const steer_model *m);

/* Encodes UTF-8 text with the model's tokenizer (SentencePiece-style BPE with
 * byte fallback, or byte-level BPE). Writes at most
 * max_tokens ids to tokens and the count to *n_tokens. add_bos prepends BOS.
 * STEER_EARG if the buffer is too small (then *n_tokens is the needed size). */
int steer_tokenize(const steer_model *m, const char *text, int add_bos, int *tokens, int max_tokens,
                   int *n_tokens);

/* steer_tokenize into a buffer of the right size: *tokens (caller frees with
 * free()) and *n_tokens. Errors as steer_tokenize, or STEER_ENOMEM; on error
 * *tokens is NULL. */
int steer_tokenize_alloc(const steer_model *m, const char *text, int add_bos, int **tokens, int *n_tokens);

/* Flags for steer_tokenize_ex. */
#define STEER_TOK_ADD_BOS 1       /* prepend BOS (if the vocabulary has one)       */
#define STEER_TOK_PARSE_SPECIAL 2 /* recognise special/added tokens spelled in the
                                     text, e.g. "<|im_start|>" or "<start_of_turn>" */
int steer_tokenize_ex(const steer_model *m, const char *text, int flags, int *tokens, int max_tokens,
                      int *n_tokens);

/* Chat formatting (behind `--chat`): the family is recognised from the chat
 * template shipped with the model (tokenizer_config.json or GGUF
 * tokenizer.chat_template): "llama3", "llama2" ([INST], also Mistral),
 * "gemma", "chatml" (Qwen). NULL if none is recognised. Static string. */
const char *steer_chat_family(const steer_model *m);

typedef struct {
    const char *role;    /* "system", "user" or "assistant"                  */
    const char *content;
} steer_chat_msg;

/* Formats messages in the model's chat format; with add_assistant the text
 * ends with the assistant turn's opening so generation continues as the
 * assistant. Tokenize the result with STEER_TOK_PARSE_SPECIAL (and without
 * ADD_BOS when the text already starts with the BOS piece). *out is
 * malloc'd; caller frees. STEER_EUNSUPPORTED if no family is recognised. */
int steer_chat_format(const steer_model *m, const steer_chat_msg *msgs, int n_msgs, int add_assistant, char **out);

/* The bytes of one token as it appears after `prev` (llama2.c rules: the
 * leading space after BOS is dropped; <0xXX> pieces decode to that byte).
 * *len receives the byte count. Valid until steer_model_free (static for
 * byte pieces). Returns NULL for an id out of range. */
const char *steer_token_piece(const steer_model *m, int prev, int token, size_t *len);

/* ---------------------------------------------------------------- context */

typedef struct steer_ctx steer_ctx;

typedef struct {
    int n_ctx;     /* positions per sequence; 0 = the model's training context */
    int n_seq;     /* sequences held in the KV cache (default 1)                */
    int n_threads; /* 0 = OpenMP default                                        */
} steer_ctx_params;

steer_ctx_params steer_ctx_default_params(void);

/* A context holds the KV cache, scratch buffers, hooks and logits for one model
 * (which must outlive it). Caller frees with steer_ctx_free. */
int steer_ctx_new(steer_model *m, const steer_ctx_params *p, steer_ctx **out);
void steer_ctx_free(steer_ctx *c);
int steer_ctx_n_ctx(const steer_ctx *c);

/* Forgets cached positions of sequence seq (-1: all). Hooks stay. */
void steer_ctx_clear(steer_ctx *c, int seq);

/* A batch of tokens processed together as matrix-matrix products. Tokens of
 * one sequence must have consecutive positions and attend causally to every
 * earlier position of their sequence in the KV cache and in the batch. */
typedef struct {
    int n;                    /* number of tokens                             */
    const int *tokens;        /* [n] token ids                                 */
    const int *pos;           /* [n] absolute positions                        */
    const int *seq;           /* [n] sequence ids, NULL = all 0                */
    const int8_t *logits;     /* [n] nonzero = compute logits for this row;
                                 NULL = every row                              */
} steer_batch;

/* Runs the model on the batch, applying hooks. STEER_ECONTEXT if a position is
 * outside [0, n_ctx). */
int steer_forward(steer_ctx *c, const steer_batch *b);

/* Logits [n_vocab] of batch row i of the last forward, or NULL if that row was
 * not asked for. Valid until the next forward on c. */
const float *steer_ctx_logits(const steer_ctx *c, int i);

/* Convenience: runs tokens[0..n) of sequence seq at positions start.. as one
 * batch, logits for every row. */
int steer_eval(steer_ctx *c, const int *tokens, int n, int start, int seq);

/* ---------------------------------------------------------------- hooks */

/* What a hook is handed: the batch rows being processed. */
typedef struct {
    int n;            /* rows in h                                          */
    int width;        /* columns in h (site width)                          */
    const int *pos;   /* [n] absolute positions                             */
    const int *seq;   /* [n] sequence ids                                   */
} steer_hook_batch;

/* A user hook. wants() is asked once per (site, layer) when the hook is added
 * (and again by steer_ctx_refresh_hooks); apply() is then called at those
 * sites with h [n, width], which it may read or change in place. A non-zero
 * return aborts the forward pass with that status. Sites no hook wants cost
 * nothing. Hooks run in the order they were added. */
typedef struct {
    int (*wants)(void *ud, steer_site site, int layer);
    int (*apply)(void *ud, steer_site site, int layer, float *h, const steer_hook_batch *b);
    void *ud;
} steer_hook;

/* Adds a hook (copied; ud must outlive its use). Returns its id (>= 0) or a
 * negative status. */
int steer_ctx_add_hook(steer_ctx *c, const steer_hook *h);
void steer_ctx_refresh_hooks(steer_ctx *c);
/* Removes every hook, intervention and capture. */
void steer_ctx_clear_hooks(steer_ctx *c);

/* Position selectors for declarative interventions (SPEC §3). Positions are
 * absolute. "prompt" means pos < prompt length of the sequence
 * (steer_ctx_set_prompt_len). */
typedef enum {
    STEER_POS_ALL = 0,
    STEER_POS_PROMPT,    /* pos < prompt_len                                   */
    STEER_POS_GENERATED, /* pos >= prompt_len                                  */
    STEER_POS_LIST,      /* pos in list[0..n_list)                             */
    STEER_POS_LAST_K,    /* the last k positions of the prompt                  */
    STEER_POS_FROM,      /* pos >= k                                           */
} steer_pos_kind;

typedef struct {
    steer_pos_kind kind;
    int k;
    const int *list;
    int n_list;
} steer_positions;

void steer_ctx_set_prompt_len(steer_ctx *c, int seq, int prompt_len);

typedef enum {
    STEER_ADD = 0, /* h ← h + α·v                                          */
    STEER_PATCH,   /* h ← h + α·(src − h)   (α = 1: replace by src)          */
    STEER_ABLATE,  /* h ← h − (h·u)u, u = v/‖v‖                              */
} steer_intervention_kind;

typedef struct {
    steer_intervention_kind kind;
    steer_site site;
    int layer;
    float alpha;
    const float *data; /* ADD: v; PATCH: src; ABLATE: direction. Either one row
                          [width] for every position (n_rows = 0) or rows
                          indexed by absolute position [n_rows, width]; rows
                          past n_rows are left alone. Copied.                 */
    int n_rows;
    steer_positions positions;
    int seq; /* -1: every sequence                                          */
} steer_intervention;

/* Validates (site, layer, finite values, non-zero ablation direction) and adds
 * the intervention after existing hooks. Returns hook id or a status. */
int steer_ctx_add_intervention(steer_ctx *c, const steer_intervention *iv);

/* Records site/layer activations of sequence seq at every position processed
 * from now on. Returns hook id or a status. */
int steer_ctx_add_capture(steer_ctx *c, steer_site site, int layer, int seq);

/* The captured rows [*n_rows, width] (row = absolute position; rows never
 * processed are zero). Valid until the next forward or clear_hooks. NULL if
 * nothing was captured at (site, layer). */
const float *steer_ctx_captured(const steer_ctx *c, steer_site site, int layer, int *n_rows);

/* ---------------------------------------------------------------- sampling */

typedef struct {
    float temperature; /* 0 = greedy (argmax, first index wins ties)        */
    int top_k;         /* 0 = off                                           */
    float top_p;       /* 1 = off                                           */
    uint64_t seed;
} steer_sampler_params;

steer_sampler_params steer_sampler_default_params(void);

typedef struct steer_sampler steer_sampler;
int steer_sampler_new(const steer_sampler_params *p, steer_sampler **out);
void steer_sampler_free(steer_sampler *s);
int steer_sample(steer_sampler *s, const float *logits, int n_vocab);

/* Generates up to n_new tokens after prompt[0..n_prompt) in sequence 0,
 * calling on_token for each new token (return non-zero to stop). Stops early
 * at BOS or EOS. Sets the prompt length for position selectors. Writes the
 * number of generated tokens to *n_out (may be NULL). */
int steer_generate(steer_ctx *c, const int *prompt, int n_prompt, int n_new, steer_sampler *s,
                   int (*on_token)(void *ud, int token), void *ud, int *n_out);

/* ---------------------------------------------------------------- metrics */

/* out[n] = log_softmax(logits[n]) in double precision. */
void steer_log_softmax(const float *logits, int n, double *out);
/* KL(P‖Q) = Σ P·(log P − log Q), natural log, from logits, in double. */
double steer_kl_logits(const float *logits_p, const float *logits_q, int n);

/* ---------------------------------------------------------------- tensors files */

/* A read-only safetensors file, memory-mapped. */
typedef struct steer_tensors steer_tensors;

typedef struct {
    const char *name;
    steer_dtype dtype;
    int n_dims;
    int64_t shape[8];
    const void *data; /* into the mapping; valid until steer_tensors_close */
    size_t nbytes;
} steer_tensor_info;

int steer_tensors_open(const char *path, steer_tensors **out);
void steer_tensors_close(steer_tensors *t);
int steer_tensors_count(const steer_tensors *t);
const steer_tensor_info *steer_tensors_at(const steer_tensors *t, int i);
const steer_tensor_info *steer_tensors_find(const steer_tensors *t, const char *name);
/* __metadata__ value for key, or NULL. Valid until close. */
const char *steer_tensors_meta(const steer_tensors *t, const char *key);

/* A safetensors writer: add tensors (the data pointer must stay valid until
 * write), then write atomically (temporary file + rename). */
typedef struct steer_tensors_writer steer_tensors_writer;
int steer_tensors_writer_new(steer_tensors_writer **out);
int steer_tensors_writer_add(steer_tensors_writer *w, const char *name, steer_dtype dtype, int n_dims,
                             const int64_t *shape, const void *data);
int steer_tensors_writer_meta(steer_tensors_writer *w, const char *key, const char *value);
int steer_tensors_writer_write(steer_tensors_writer *w, const char *path);
void steer_tensors_writer_free(steer_tensors_writer *w);


/* ---------------------------------------------------------------- conversion */

/* Options of steer_convert. */
typedef struct {
    int dtype;          /* -1 (default): keep each matrix's dtype (llama2.c output: F32);
                           else STEER_DTYPE_F32, STEER_DTYPE_F16 or STEER_DTYPE_BF16 for
                           every matrix. Norm weights and biases are always written F32. */
    const char *format; /* "hf", "gguf", "llama2c", or NULL: from OUT (*.gguf: GGUF,
                           *.bin: llama2.c, anything else: a Hugging Face directory) */
    const char *tokenizer_path; /* llama2.c input: its tokenizer .bin (NULL: beside IN) */
} steer_convert_params;

steer_convert_params steer_convert_default_params(void);

/* Converts the model at `in` (any format steer_model_load reads) to `out`:
 *   - a Hugging Face directory: config.json, model.safetensors (HF tensor
 *     names and row order), tokenizer.json + tokenizer_config.json;
 *   - a GGUF v3 file with llama.cpp's keys and tensor names (q/k rows
 *     permuted for the llama family, Gemma norms stored as 1 + w, as
 *     llama.cpp's converter writes them) and the tokenizer;
 *   - a legacy llama2.c checkpoint (llama architecture, F32, head_dim =
 *     d_model / n_head, RoPE theta 10000, eps 1e-5, no RoPE scaling) with a
 *     tokenizer.bin beside it (an existing one must hold the same bytes).
 * Tensors are copied bit for bit unless a dtype is asked for. The output is
 * loaded back and its configuration checked against the input's before it is
 * moved into place (atomically: temporary name + rename); on any failure
 * nothing is left behind. A directory `out` must not exist, be empty, or hold
 * only files a conversion writes (they are replaced). */
int steer_convert(const char *in, const char *out, const steer_convert_params *p);

/* A random-weight model (tests, benchmarks, twin studies). */
typedef struct {
    steer_arch arch;
    int d_model, d_ff, n_layer, n_head, n_kv_head;
    int head_dim;           /* 0: d_model / n_head                                  */
    int n_vocab;            /* >= 259 (<unk>, <s>, </s>, 256 byte pieces)           */
    int n_ctx;              /* max_position_embeddings                              */
    int tied;               /* -1: the architecture's default; 0 or 1               */
    int sliding_window;     /* Gemma 2/3 (and Mistral): -1 = n_ctx / 4, 0 = none    */
    int sliding_window_pattern; /* Gemma 3: every n-th layer is global (0: 6)       */
    float rope_theta;       /* 0: 10000 (Qwen2, Gemma 3: 1e6)                       */
    float rope_theta_local; /* Gemma 3 sliding layers (0: 10000)                    */
    float rms_eps;          /* 0: 1e-5 (llama, mistral), else 1e-6                  */
    float query_pre_attn_scalar; /* Gemma 2/3 (0: head_dim)                         */
    float attn_softcap, final_softcap; /* Gemma 2 (-1: 50 and 30; 0: none)          */
    steer_dtype dtype;      /* matrices: F32, F16 or BF16                           */
    uint64_t seed;          /* weights are a deterministic function of the seed     */
    int act;                /* -1: the architecture's φ; else a steer_act (twins)   */
    const char *tokenizer;  /* NULL: synthetic vocabulary; else a llama2.c
                               tokenizer.bin of exactly n_vocab pieces, written
                               as tokenizer.json (borrowed)                        */
} steer_make_model_params;

/* Defaults for arch: d_model 64, d_ff 128, 2 layers, 4 heads, 2 KV heads,
 * vocab 512, n_ctx 256, seed 1, F32, everything else the architecture's. */
steer_make_model_params steer_make_model_default_params(steer_arch arch);

/* Writes a Hugging Face directory out_dir (same rules as steer_convert's HF
 * output) holding random weights: matrices ~ N(0, (0.5/√cols)²) (embeddings
 * and head N(0, 1/d_model)), biases N(0, 0.1²), norm weights 1 + N(0, 0.1²)
 * (Gemma family: w ~ N(0, 0.1²) in HF form), and a synthetic SentencePiece
 * vocabulary (<unk>, <s>, </s>, 256 byte pieces, then "▁", "a".."z" and their
 * concatenations). */
int steer_make_model(const steer_make_model_params *p, const char *out_dir);

/* ---------------------------------------------------------------- steering vectors */

/* Extraction math (docs/VECTORS.md). Activations are rows of row-major
 * float32 matrices pos [n_pos, d] and neg [n_neg, d]; results are [d].
 * Sums are accumulated in double. */

/* out = mean(pos rows) − mean(neg rows) (CAA). n_pos, n_neg >= 1. */
int steer_vec_mean_diff(const float *pos, int n_pos, const float *neg, int n_neg, int d, float *out);

typedef enum {
    STEER_PCA_DIFF = 0, /* uncentred PCA of the paired differences pos_i − neg_i
                           (n_pos == n_neg); sign: Σ_i (pos_i − neg_i)·v > 0    */
    STEER_PCA_CENTER,   /* PCA of pos and neg rows pooled and centred on their
                           pooled mean (any n_pos, n_neg); sign: the mean
                           projection of the positives exceeds the negatives'  */
} steer_pca_kind;

/* out = the top principal component (unit length, LAPACK dsyev on the smaller
 * of the d×d second-moment and the n×n Gram matrix), its sign fixed so that
 * positives project higher than negatives. *explained (may be NULL) receives
 * λ_max / Σλ. STEER_EARG when the rows have no variance. */
int steer_vec_pca(steer_pca_kind kind, const float *pos, int n_pos, const float *neg, int n_neg, int d, float *out,
                  double *explained);

double steer_vec_norm(const float *v, int d);                    /* ‖v‖₂ (double)  */
double steer_vec_cosine(const float *a, const float *b, int d);  /* 0 if one is 0  */

/* One vector of a set: added at (site, layer). */
typedef struct {
    steer_site site;
    int layer;    /* 0-based block                                               */
    int n_rows;   /* 0: one vector [width] for every position; else one row per
                     absolute position [n_rows, width]                           */
    int width;
    float *data;  /* owned by the set                                            */
} steer_vec;

/* A set of steering vectors, at most one per (site, layer), kept sorted by
 * site then layer, plus string metadata (format_version, model_hint, method,
 * site, command, …). */
typedef struct steer_vecset steer_vecset;

int steer_vecset_new(steer_vecset **out);
void steer_vecset_free(steer_vecset *vs);
int steer_vecset_count(const steer_vecset *vs);
steer_vec *steer_vecset_at(const steer_vecset *vs, int i);
steer_vec *steer_vecset_find(const steer_vecset *vs, steer_site site, int layer);
/* Sets (copies) the vector at (site, layer), replacing any that is there. */
int steer_vecset_set(steer_vecset *vs, steer_site site, int layer, int n_rows, int width, const float *data);
/* dst(site, layer) += alpha·data; a missing entry starts at zero; per-position
 * rows are zero-padded to the longer of the two. STEER_EARG on a width
 * mismatch or when one is per-position and the other is not. */
int steer_vecset_accumulate(steer_vecset *dst, steer_site site, int layer, int n_rows, int width, const float *data,
                            float alpha);
/* dst += alpha·src for every vector of src (metadata untouched). */
int steer_vecset_add(steer_vecset *dst, const steer_vecset *src, float alpha);
void steer_vecset_scale(steer_vecset *vs, float alpha);
/* Every vector (every row) scaled to unit L2 norm; STEER_EARG for a zero one. */
int steer_vecset_normalize(steer_vecset *vs);
/* Keeps the vectors whose site_mask[site] (NULL = any) and layer_mask[layer]
 * (NULL = any; layers >= n_layer_mask are dropped) are set. */
void steer_vecset_keep(steer_vecset *vs, const unsigned char *site_mask, const unsigned char *layer_mask,
                       int n_layer_mask);

/* Metadata (value NULL removes the key). Keys are listed in insertion order. */
int steer_vecset_set_meta(steer_vecset *vs, const char *key, const char *value);
const char *steer_vecset_meta(const steer_vecset *vs, const char *key);
int steer_vecset_meta_count(const steer_vecset *vs);
const char *steer_vecset_meta_key(const steer_vecset *vs, int i);

/* Reads a vector file: safetensors (tensors <site>.<layer>, [d] or [T, d];
 * F32, F16, BF16 or F64 read as F32; every value finite) or, recognised by
 * its GGUF magic, a llama.cpp / repeng control vector (as
 * steer_vecset_load_llamacpp with n_layer = d_model = 0). */
int steer_vecset_load(const char *path, steer_vecset **out);
/* Writes tensors <site>.<layer> (F32) and the metadata (format_version = 1
 * added if missing) as safetensors, atomically. */
int steer_vecset_save(const steer_vecset *vs, const char *path);

/* A llama.cpp control vector (GGUF, general.architecture = "controlvector"),
 * checked strictly: every tensor is direction.<N> (N written canonically,
 * 1 <= N, and N < n_layer when n_layer > 0), F32, one-dimensional, all of one
 * width (= d_model when d_model > 0). direction.N becomes resid_post.N. */
int steer_vecset_load_llamacpp(const char *path, int n_layer, int d_model, steer_vecset **out);
/* Writes the set as a llama.cpp control vector: resid_post.L → direction.L
 * (F32, bit for bit), controlvector.model_hint = model_hint (NULL: the set's
 * model_hint metadata, else ""), controlvector.layer_count = number of
 * tensors. Only one-row resid_post vectors of layers >= 1 can be expressed;
 * anything else is STEER_EARG. Atomic. */
int steer_vecset_save_llamacpp(const steer_vecset *vs, const char *path, const char *model_hint);

/* Checks every vector against the model: layer < n_layer and width = the
 * site's width ("<path>: tensor resid_post.3 is 128 wide but resid_post is 64
 * wide in this model"). path names the file in messages. */
int steer_vecset_check_model(const steer_vecset *vs, const steer_model *m, const char *path);
/* Adds one STEER_ADD intervention (α·v, all positions, every sequence) per
 * vector, in the set's order. */
int steer_vecset_apply(const steer_vecset *vs, steer_ctx *c, float alpha);

/* ---------------------------------------------------------------- datasets and templates */

/* Prompt/completion datasets for training and experiments (SPEC §6). A spec
 * string "FORMAT:FILE" picks the format; a FILE without a known prefix is
 * jsonl. Every file is JSON Lines (one object per line; unknown fields are
 * ignored; blank lines are skipped and line numbers count every physical
 * line):
 *   jsonl:FILE       "prompt" (string, required), "completion" (string,
 *                    optional: NULL when absent), "id" (string or number,
 *                    optional), "label" (integer, optional). With a template,
 *                    prompt and/or completion are rendered from the row's
 *                    own fields instead ({name} = field "name").
 *   winogrande:FILE  Winogrande v1.1 rows {qID, sentence (exactly one "_"),
 *                    option1, option2, answer "1"|"2" (or 1|2)}. qID is optional (id =
 *                    the line number); an absent or empty answer (the test split)
 *                    gives completion NULL and label -1. Prompt: the template
 *                    (placeholders {sentence} {option1} {option2}); choices[0]
 *                    " (A) {option1}.", choices[1] " (B) {option2}." (completion
 *                    template placeholders: also {letter} {option} {answer});
 *                    label 0 = A, 1 = B; completion = choices[label].
 *   listops:FILE     rows {"expr": "[MAX 2 9 ]", "answer": 0..9 (number or
 *                    one-digit string)}; prompt "Solve: {expr}\nAnswer:",
 *                    choices " 0" … " 9", label = the answer digit.
 * Errors are STEER_EFORMAT with one line naming file and line:
 * "dev.jsonl:17: missing field 'option2'", "…: malformed JSON at column 12",
 * "…: sentence has 2 blanks '_' (expected exactly one)", "…: answer must be
 * \"1\" or \"2\", got \"3\"", "…: answer must be a digit 0-9, got 12". A file
 * without items is an error. An unknown template placeholder is STEER_EARG
 * (winogrande, listops) or a missing field at the first row (jsonl).
 * Placeholders are {identifier}; other braces are literal text. */
#define STEER_WINOGRANDE_TEMPLATE \
    "{sentence}\nQuestion: Which option fills the blank?\n(A) {option1}\n(B) {option2}\nAnswer: The correct answer is"
#define STEER_WINOGRANDE_COMPLETION " ({letter}) {option}."
#define STEER_LISTOPS_TEMPLATE "Solve: {expr}\nAnswer:"
#define STEER_LISTOPS_COMPLETION " {answer}"

typedef enum {
    STEER_DATA_JSONL = 0,
    STEER_DATA_WINOGRANDE,
    STEER_DATA_LISTOPS,
} steer_data_format;

const char *steer_data_format_name(steer_data_format f); /* "jsonl", … (static) */
/* Splits a spec: "winogrande:dev.jsonl" → WINOGRANDE, "dev.jsonl"; anything
 * without a known prefix → JSONL, spec. *path points into spec. */
void steer_data_parse_spec(const char *spec, steer_data_format *fmt, const char **path);

/* One example. Strings are owned by the dataset. */
typedef struct {
    char *id;          /* qID / "id" field / the line number (never NULL)      */
    char *prompt;      /* rendered prompt (never NULL)                        */
    char *completion;  /* gold continuation, NULL when unknown                */
    int label;         /* gold index into choices (listops: the digit), or a
                          jsonl "label"; -1 when unknown                       */
    int n_choices;     /* winogrande 2, listops 10, jsonl 0                    */
    char **choices;    /* rendered continuation of every answer               */
    int line;          /* 1-based line in the file; 0 when built in memory    */
} steer_data_item;

typedef struct steer_dataset steer_dataset;

typedef struct {
    const char *prompt_template;     /* NULL: the format's default (jsonl: the
                                        "prompt" field)                      */
    const char *completion_template; /* NULL: the format's default (jsonl: the
                                        "completion" field)                  */
    int n_max;                       /* keep the first n_max items; 0 = all   */
} steer_data_params;

steer_data_params steer_data_default_params(void);

int steer_data_load(const char *spec, const steer_data_params *p, steer_dataset **out);
int steer_data_load_file(steer_data_format fmt, const char *path, const steer_data_params *p, steer_dataset **out);
/* An empty in-memory dataset (format jsonl); steer_data_add copies an item
 * (id NULL: its 1-based index). */
int steer_data_new(steer_dataset **out);
int steer_data_add(steer_dataset *d, const char *id, const char *prompt, const char *completion, int label);
void steer_data_free(steer_dataset *d);

int steer_data_count(const steer_dataset *d);
const steer_data_item *steer_data_at(const steer_dataset *d, int i); /* NULL out of range */
steer_data_format steer_data_get_format(const steer_dataset *d);
const char *steer_data_path(const steer_dataset *d); /* "" when built in memory */
/* STEER_EFORMAT "dev.jsonl:17: item … has no completion (answer)" for the
 * first item without one (training needs them all). */
int steer_data_check_completions(const steer_dataset *d);

/* Deterministic order and subsets. Randomness is splitmix64 with unbiased
 * bounded draws, the same on every platform. */
/* perm[n] = a permutation of 0..n-1 (Fisher–Yates) from seed. */
void steer_data_permutation(int n, uint64_t seed, int *perm);
int steer_data_shuffle(steer_dataset *d, uint64_t seed); /* items[i] ← items[perm[i]] */
void steer_data_truncate(steer_dataset *d, int n);      /* keep the first n       */
/* A new dataset of copies of items idx[0..n) (repeats allowed). */
int steer_data_subset(const steer_dataset *d, const int *idx, int n, steer_dataset **out);
/* The items perm[0..n_heldout) of the seed's permutation go to *heldout, the
 * rest to *train; both keep the dataset's order. */
int steer_data_split(const steer_dataset *d, int n_heldout, uint64_t seed, steer_dataset **train,
                     steer_dataset **heldout);
/* Writes prompt/completion JSONL ({"id", "prompt", "completion" when known,
 * "label" when >= 0}), atomically. */
int steer_data_write_jsonl(const steer_dataset *d, const char *path);

/* Few-shot contexts (E3). */
typedef struct {
    int k;                 /* demonstrations (default 5)                        */
    uint64_t seed;         /* picks them (default 0)                            */
    const char *separator; /* after every demonstration; NULL = "\n\n"          */
} steer_fewshot_params;

steer_fewshot_params steer_fewshot_default_params(void);

/* *context (malloc'd) = k demonstrations "prompt completion" from pool, each
 * followed by the separator, so the query's prompt is appended directly. The
 * demonstrations are the first k eligible items of the seed's permutation of
 * pool: items with a completion that are neither query itself (pointer) nor
 * have the same prompt text. query may be NULL (a context for any query). The
 * same (pool, seed, k) gives the same demonstrations for every query except
 * where one would be the query; pass seed + query index for a context per
 * query. chosen[k] (may be NULL) receives the pool indices in order.
 * STEER_EARG when fewer than k are eligible. k = 0 gives "". */
int steer_data_fewshot(const steer_dataset *pool, const steer_data_item *query, const steer_fewshot_params *p,
                       char **context, int *chosen);

/* ListOps (Nangia & Bowman 2018): expressions printed as
 * "[MAX 2 9 [MIN 4 7 ] 0 ]" over digits 0-9 with MAX, MIN, MED (median; an
 * even count takes the lower median, so values stay digits) and SM (sum
 * modulo 10). Generation: the depth t is uniform in 1..max_depth; the root is
 * an operator with 2..max_args arguments (uniform); one argument per level
 * continues down to depth t, every other argument above depth t is an operator
 * with probability p_nest (at most 512 such per expression) and otherwise a
 * digit; operators uniform. So every expression has depth exactly t. Sample i
 * depends only on (seed, i, max_depth, max_args, p_nest). */
typedef struct {
    int max_depth; /* 1..64 (default 3)                                          */
    int max_args;  /* 2..64 (default 5)                                          */
    float p_nest;  /* default 0.25                                               */
    uint64_t seed; /* default 0                                                  */
} steer_listops_params;

steer_listops_params steer_listops_default_params(void);
/* Sample `index` of the seed's stream: *expr malloc'd, *answer (may be NULL)
 * its value. */
int steer_listops_sample(const steer_listops_params *p, uint64_t index, char **expr, int *answer);
/* Evaluates an expression (whitespace between tokens is free; "[ MAX" is
 * accepted). *value, *depth (nesting of brackets; a bare digit is 0) and
 * *max_args (widest operator) may be NULL. STEER_EFORMAT "listops: unknown
 * operator 'FOO' at column 2" and the like. */
int steer_listops_eval(const char *expr, int *value, int *depth, int *max_args);
/* Writes samples 0..n-1 as {"expr": "...", "answer": d} lines, atomically. */
int steer_listops_write(const char *path, int n, const steer_listops_params *p);
/* Samples 0..n-1 as an in-memory listops dataset (ids 0..n-1; templates from
 * dp, which may be NULL). */
int steer_listops_dataset(int n, const steer_listops_params *p, const steer_data_params *dp, steer_dataset **out);

/* ---------------------------------------------------------------- training */

/* Training (SPEC §4 E4) on a prompt/completion dataset: cross-entropy on the
 * completion tokens only, micro-batches of padded sequences, AdamW with a
 * warm-up schedule, the method's constraints after every step, evaluation
 * and checkpoints (docs/TRAINING.md §4 "The training loop"). */
typedef enum { STEER_SCHED_CONSTANT = 0, STEER_SCHED_LINEAR, STEER_SCHED_COSINE } steer_schedule;

/* What steer_train reports after every update (steer_train_params.on_step),
 * once the method's constraints have run. */
typedef struct {
    int64_t step, total_steps;  /* updates done (1-based), updates planned     */
    double loss, lr, grad_norm; /* of this update                              */
    double joint_overlap;       /* joint: max over layers of max |W_down·Q|
                                   just before this update's projection (Q an
                                   orthonormal basis of col(B) of down_proj);
                                   0 for other methods                          */
    const void *state_;         /* internal; read tensors with
                                   steer_train_step_tensor                      */
} steer_train_step;

/* The current value of trainable tensor `name` (checkpoint names) during an
 * on_step call: F32 [shape[0]] (n_dims 1) or [shape[0], shape[1]]; NULL when
 * there is no such tensor. Valid until the callback returns. n_dims and
 * shape may be NULL. */
const float *steer_train_step_tensor(const steer_train_step *s, const char *name, int *n_dims, int64_t shape[2]);

typedef struct {
    const char *method;   /* full, lora, vector, adapter, adapter-linear, rank1,
                             loreft, joint (default adapter)                      */
    steer_site site;      /* steering site (default resid_post)                  */
    const unsigned char *layers; /* [n_layer] steering/LoRA layers; NULL = all   */
    int rank;             /* 0: the method's (8; rank1 1); LoRA and adapter rank */
    int act;              /* adapter σ: -1 the method's, 0 none, 1 silu, 2 gelu
                             (erf), 3 relu, 4 tanh                                */
    float alpha;          /* adapter α (default 1)                               */
    float lora_alpha;     /* default 8                                           */
    unsigned lora_targets;/* bits q 1, k 2, v 4, o 8, gate 16, up 32, down 64;
                             0 = all                                              */
    double lr;            /* 0: steer_train_default_lr(method)                   */
    int64_t steps;        /* optimizer updates; 0: from epochs                   */
    double epochs;        /* used when steps is 0                                */
    int batch, accum;     /* sequences per micro-batch (8), micro-batches per
                             update (1)                                           */
    double warmup;        /* warm-up fraction (0.03)                             */
    steer_schedule schedule; /* default linear (decay to 0)                      */
    double weight_decay, clip; /* 0, 0 (0 = no clipping)                         */
    uint64_t seed;        /* init and data order (default 1)                     */
    int eval_every;       /* evaluate every N updates (0: only at start and end) */
    int eval_max;         /* evaluate on the first N items (0: all)              */
    int eval_batch;       /* sequences per evaluation batch (16)                 */
    int save_every;       /* checkpoint every N updates (0: at every evaluation)
                             and always at the end                                */
    int64_t stop_after;   /* > 0: stop after this many updates (the schedule
                             still spans `steps`; for tests of --resume)           */
    const char *out_dir;  /* checkpoints, state, train.csv, loss.png/svg; NULL = none */
    int resume;           /* continue from out_dir/state.safetensors            */
    int progress;         /* 0 none, 1 a progress line on stderr (redrawn on a
                             TTY), 2 one line per update                           */
    const char *model_path, *tokenizer_path; /* full fine-tuning writes its
                             checkpoint by converting this model                  */
    const char *model_hint, *command; /* recorded in checkpoint metadata        */
    int params_out;       /* 1: return a copy of the trained parameters          */
    /* Called after every update (may be NULL); a non-zero return stops
     * training there, as stop_after does (checkpoint written, STEER_OK). */
    int (*on_step)(void *ud, const steer_train_step *s);
    void *on_step_ud;
} steer_train_params;

steer_train_params steer_train_default_params(void);
/* 9e-4 for steering methods (SPEC E4), 5e-4 LoRA, 1e-4 full. */
double steer_train_default_lr(const char *method);
const char *steer_train_act_name(int act);

/* Evaluation on a dataset with completions: token-mean completion loss and
 * greedy generation of K tokens (K = the longest of the gold completion and
 * the choices): exact = the gold completion's tokens were generated; format =
 * the generated text starts with one of the item's choices; acc = it is the
 * gold choice (datasets without choices: acc = exact). */
typedef struct {
    int n;
    double loss, acc, exact, format;
    long n_tokens;        /* completion tokens in the loss                      */
} steer_eval_result;

typedef struct {
    int pick;             /* choice the generation starts with, -1 none         */
    int exact;
    char *text;           /* generated text (malloc'd; the caller frees)        */
} steer_eval_item;

typedef struct {
    int n_max;            /* first N items (0: all)                             */
    int batch;            /* default 16                                         */
    int graph;            /* 1: generate through the training graph, re-running
                             the padded batch per token (the reference path,
                             slow); 0: the inference engine with a KV cache
                             (full fine-tuning checkpoints are models, so
                             always the engine here)                            */
} steer_eval_params;

typedef struct {
    int64_t steps, total_steps;
    double train_loss;    /* of the last update                                 */
    steer_eval_result before, after; /* evaluations at the start and the end    */
    size_t n_trainable, n_model;
    double *loss_curve;   /* caller's [loss_curve_cap] (may be NULL): loss of
                             update i at [i]                                       */
    int64_t loss_curve_cap;
    float *params;        /* with params_out: malloc'd copy [n_params]           */
    size_t n_params;
} steer_train_result;

/* Trains on `train`, evaluating on `eval` (may be NULL). Errors are one line
 * (a dataset line, a sequence longer than the context, a resume state that
 * does not match). Files in out_dir are replaced atomically. */
int steer_train(const steer_model *m, const steer_dataset *train, const steer_dataset *eval,
                const steer_train_params *p, steer_train_result *res);
/* The trainable tensors (*text: "name [shape] count" lines, malloc'd; may be
 * NULL), their total and the model's. */
int steer_train_describe(const steer_model *m, const steer_train_params *p, char **text, size_t *n_trainable,
                         size_t *n_model);
/* Evaluates the model, with a training checkpoint (adapter.safetensors of any
 * non-full method; NULL = the model alone) applied. items[n] (may be NULL)
 * receives per-item results. */
int steer_eval_dataset(const steer_model *m, const char *adapter, const steer_dataset *d,
                       const steer_eval_params *ep, steer_eval_result *res, steer_eval_item *items);

/* Merging a LoRA checkpoint into its base model (steer merge-lora). */
typedef struct {
    int dtype;          /* matrices: -1 (default) the base's matrix dtype (F32
                           for a llama2.c output), else STEER_DTYPE_F32, _F16
                           or _BF16; norms and biases are written F32          */
    const char *format; /* "hf", "gguf", "llama2c" or NULL: from OUT, as
                           steer_convert                                        */
    const char *tokenizer_path; /* llama2.c base: its tokenizer (NULL: beside) */
    const char *steer_out; /* joint checkpoints: where to write the steering
                           adapter (an "adapter" checkpoint for the merged
                           model); required for joint, an error otherwise      */
    const char *command;   /* recorded in the steering adapter's metadata       */
} steer_merge_params;

steer_merge_params steer_merge_default_params(void);

/* Folds the LoRA of a `steer train --method lora|joint` checkpoint into the
 * base model's weights, W += (lora_alpha/r)·B·A for every adapted projection
 * (sums in double, from the weights widened to F32), and writes the merged
 * model to `out` in any steer_convert format (HF directory, .gguf, llama2.c
 * .bin), atomically and loaded back before it is placed. A joint checkpoint's
 * adapter goes to p->steer_out. One-line errors: a checkpoint of another
 * model (sizes, tensor shapes), a missing or malformed file, a checkpoint
 * without LoRA (method other than lora/joint). The base is loaded once (and
 * its weights copied to F32: about twice the model in memory). */
int steer_merge_lora(const char *base, const char *adapter, const char *out, const steer_merge_params *p);

/* ---------------------------------------------------------------- oracle ΔKL sweep (SPEC E1) */
/* BEGIN sweep section (src/sweep.c; docs/SWEEP.md) */

/* For every item, with s = p ⊕ c (prompt p, continuation c of K tokens),
 * base model B and fine-tuned model F: the oracle δ_l[t] = act_F(site, l)[t]
 * − act_B(site, l)[t]; for each (site, l, α), B is run on s with
 * act(site, l)[t] += α·δ_l[t] at the chosen positions, at layer l only, and
 * ΔKL_k = KL(P_S,k ‖ P_F,k) − KL(P_B,k ‖ P_F,k) at the positions predicting
 * c_1 … c_K (double precision, natural log). The engine reuses B's own run
 * below the steered point and runs the α values as one batch; the naive
 * path (one full forward per (site, layer, α)) gives the same numbers. */

typedef enum {
    STEER_SWEEP_CONT_FT = 0, /* F's greedy continuation of the prompt (stops
                                early at BOS/EOS, so an item may have < K)  */
    STEER_SWEEP_CONT_GOLD,   /* the first K tokens of the gold completion   */
} steer_sweep_cont;

typedef enum {
    STEER_SWEEP_POS_ALL = 0, /* every position of s                           */
    STEER_SWEEP_POS_PROMPT,  /* the prompt's positions                         */
    STEER_SWEEP_POS_CONT,    /* the continuation's positions (c_1 … c_{K−1};
                                the position predicting c_1 is the prompt's
                                last, so token 1 is never moved)              */
} steer_sweep_pos;

const char *steer_sweep_cont_name(steer_sweep_cont c); /* "ft", "gold" (static)  */
const char *steer_sweep_pos_name(steer_sweep_pos p);   /* "all", "prompt", "continuation" */

#define STEER_SWEEP_MAX_LAYERS 512
#define STEER_SWEEP_MAX_ALPHAS 64
#define STEER_SWEEP_MAX_TOKENS 64

/* One finished item, handed to on_item. Every pointer is valid only during
 * the call. */
typedef struct {
    int item;                 /* index of the item in the dataset            */
    const char *id;           /* its id                                       */
    int n_prompt;             /* positions of the prompt (with BOS; gold: the
                                 tokens shared with prompt ⊕ completion)     */
    int n_tokens;             /* K' <= K continuation tokens scored          */
    const int *tokens;        /* [n_tokens] c_1 … c_K'                        */
    const double *kl_base;    /* [K] KL(P_B,k ‖ P_F,k); NAN for k >= K'       */
    const double *kl_steered; /* [n_sites, n_layers, n_alphas, K] (row-major)
                                 KL(P_S,k ‖ P_F,k); NAN for k >= K'           */
} steer_sweep_item;

typedef struct {
    int n_sites;                                /* default 4: mlp_in, attn_out, mlp_out, resid_post */
    steer_site sites[STEER_SITE_COUNT];
    int n_layers;                               /* 0 (default): every layer    */
    int layers[STEER_SWEEP_MAX_LAYERS];         /* ascending, distinct         */
    int n_alphas;                               /* default 5: 0, 0.1, 0.25, 0.5, 1 */
    float alphas[STEER_SWEEP_MAX_ALPHAS];
    int tokens;                                 /* K (default 5)               */
    steer_sweep_cont continuation;              /* default FT                  */
    steer_sweep_pos positions;                  /* default ALL                 */
    int delta_site;   /* -1 (default): each site's own oracle δ; else take
                         every δ at this steer_site (same width), e.g. steer
                         resid_mid with the attn_out δ                        */
    int shard_index, shard_count; /* items with index % count == index
                                     (default 0, 1)                           */
    const unsigned char *skip;    /* [dataset items] nonzero: already done, not
                                     run (resume); NULL = none. Borrowed.     */
    int n_threads;    /* items run in parallel on this many threads (each
                         with its own contexts); 0 = OpenMP default. The
                         numbers do not depend on it.                         */
    int naive;        /* 1: one full forward per (site, layer, α)             */
    /* Called once per finished item, serialised, in completion order. A
     * return > 0 stops the sweep (items in flight finish and are reported)
     * and steer_sweep_run returns it; < 0 is an error (its message kept). */
    int (*on_item)(void *ud, const steer_sweep_item *it);
    void *ud;
} steer_sweep_params;

steer_sweep_params steer_sweep_default_params(void);

/* Checks that B and F have the same architecture (arch, layers, widths,
 * heads, vocabulary) and the same tokenizer (every piece, BOS, EOS), and the
 * parameters against them; fills p->layers when n_layers is 0. STEER_EARG
 * with one line ("models differ: d_model 64 (base) vs 128 (fine-tuned)",
 * "sweep: alpha nan is not finite", "sweep: shard 4/4: need 0 <= index <
 * count"). Alphas of -0 become 0. */
int steer_sweep_check(const steer_model *base, const steer_model *ft, steer_sweep_params *p);

/* Runs the sweep over the dataset's items (those of the shard, minus
 * p->skip), calling p->on_item for each. Items whose prompt + K does not fit
 * the context, or (gold) have no completion, are errors naming the file and
 * line. The models are only read (contexts are the sweep's own). */
int steer_sweep_run(steer_model *base, steer_model *ft, const steer_dataset *d, const steer_sweep_params *p);

/* The mean oracle δ per (site, layer) over the items (of p's shard; p->skip
 * is ignored) and their steered positions (p->positions): tensor
 * <site>.<layer> [width] of a new vector set (caller frees), the δ taken at
 * p->delta_site when set. Runs only the unsteered passes (F's continuation,
 * F and B on s), items in order. STEER_EARG when no position is left. */
int steer_sweep_mean_delta(steer_model *base, steer_model *ft, const steer_dataset *d, const steer_sweep_params *p,
                           steer_vecset **out);

/* Results on disk (docs/SWEEP.md): a table of per-item results with the
 * settings that made them, written as DIR/items.csv, DIR/dkl.csv and
 * DIR/summary.json, and a resume journal DIR/progress.jsonl. */
typedef struct {
    const char *base_path, *ft_path; /* as given; base/ft columns are the
                                        basenames without extension        */
    const char *data;                /* dataset spec as given              */
    const char *command;             /* the command line (may be NULL)     */
    const char *arch;                /* architecture name                  */
    int n_layers, d_model;           /* of the models                      */
    int n_data;                      /* items in the dataset               */
} steer_sweep_info;

typedef struct steer_sweep_table steer_sweep_table;

/* A table for results of a sweep with params p (resolved by
 * steer_sweep_check: layers listed). Strings are copied. Caller frees. */
int steer_sweep_table_new(const steer_sweep_params *p, const steer_sweep_info *info, steer_sweep_table **out);
void steer_sweep_table_free(steer_sweep_table *t);
/* Copies a finished item in. STEER_EARG if it is out of range, outside the
 * table's shard or already there. */
int steer_sweep_table_add(steer_sweep_table *t, const steer_sweep_item *it);
int steer_sweep_table_count(const steer_sweep_table *t); /* items held        */
/* [n_data] 1 = the item is held (pass as steer_sweep_params.skip). Valid
 * until the table changes or is freed. */
const unsigned char *steer_sweep_table_done(const steer_sweep_table *t);
/* The settings the table was made with (valid until freed). */
const steer_sweep_params *steer_sweep_table_params(const steer_sweep_table *t);
/* Aggregate of cell (site index, layer index, alpha index, token k 0-based)
 * over the items held, in item order: mean and standard error (sample std
 * / √n, 0 when n = 1) of ΔKL, and n (items with a k-th token). */
void steer_sweep_table_cell(const steer_sweep_table *t, int si, int li, int ai, int k, double *mean, double *se,
                            int *n);
/* Writes DIR/items.csv, DIR/dkl.csv and DIR/summary.json (each atomically;
 * DIR is created if missing). wall_s goes into the summary. */
int steer_sweep_table_write(const steer_sweep_table *t, const char *dir, double wall_s);
/* Reads a finished sweep's DIR/summary.json and DIR/items.csv. Errors name
 * the file and line. */
int steer_sweep_table_read(const char *dir, steer_sweep_table **out);
/* Combines shard tables (settings equal but for the shard; shards i/n for
 * every i exactly once) into the table one unsharded run gives. command
 * (may be NULL) is recorded. */
int steer_sweep_table_merge(steer_sweep_table *const *parts, int n, const char *command, steer_sweep_table **out);

/* Attaches the journal DIR/progress.jsonl to the table: finished items
 * recorded there by an interrupted run with the same settings are read into
 * the table (*n_read of them; a torn last line is dropped from the file),
 * and steer_sweep_journal_append adds new ones. Without a journal nothing is
 * created until the first append (DIR included), so a run that fails before
 * any item finishes leaves nothing. A journal written with other settings is
 * STEER_EARG naming the file and the first setting that differs. */
int steer_sweep_journal_open(steer_sweep_table *t, const char *dir, int *n_read);
/* Adds the item to the table and appends it to the journal as one line
 * (numbers that read back exactly), flushed to disk (fsync) before
 * returning. */
int steer_sweep_journal_append(steer_sweep_table *t, const steer_sweep_item *it);

/* END sweep section */

/* ---------------------------------------------------------------- in-context learning as steering (SPEC E3) */
/* BEGIN icl section (src/icl.c; docs/ICL.md) */

/* A context C (tokens, BOS first when the model has one) and queries q. The
 * zero-shot run is [BOS] ⊕ q at positions 0..; the ICL run is C ⊕ q (q's
 * tokens follow C's, no second BOS). "Query rows" are the rows of the
 * zero-shot sequence; row j >= 1 (the query's own tokens) corresponds to
 * position |C| + j − 1 of the ICL run and row 0 (the shared BOS) to position
 * 0, where both runs are identical. Δ_A,l = attn_out(C ⊕ q, l) −
 * attn_out(q, l) at the query's own rows. A query with a completion is
 * teacher-forced: q = prompt ⊕ the completion's tokens (as steer train
 * tokenizes them). KL(P‖Q) = Σ P·log(P/Q) in double, natural log. */

typedef enum {
    STEER_ICL_SCORE_ANSWER = 0, /* the rows that predict the completion's tokens
                                   (queries need a completion)                 */
    STEER_ICL_SCORE_ALL,        /* every query row but the shared BOS          */
} steer_icl_score;

const char *steer_icl_score_name(steer_icl_score s); /* "answer", "all" (static) */

typedef struct steer_icl steer_icl;

/* A context of n_ctx tokens (copied; ctx[0] must be BOS when the model has
 * one, and there must be at least one token after it). Borrows m (which must
 * outlive e). n_threads 0 = OpenMP default. STEER_ECONTEXT "context is N
 * tokens but the model's context window holds W" when it leaves no room. */
int steer_icl_new(steer_model *m, const int *ctx, int n_ctx, int n_threads, steer_icl **out);
/* The same from text (tokenized with BOS). */
int steer_icl_new_text(steer_model *m, const char *context, int n_threads, steer_icl **out);
void steer_icl_free(steer_icl *e);

int steer_icl_context_len(const steer_icl *e); /* tokens of C, with its BOS           */
/* Memory of the context's own KV cache, 2·L·(|C| − BOS)·n_kv·head_dim·4 bytes,
 * and of one float vector per layer, L·d_model·4 bytes. */
size_t steer_icl_kv_bytes(const steer_icl *e);
size_t steer_icl_vec_bytes(const steer_icl *e);

/* Adds a query: prompt (required), completion (NULL: none; then score must
 * be ALL), choices[n_choices] and label (for accuracy; n_choices 0: none).
 * id names it in messages (NULL: its index). Runs the ICL and the zero-shot
 * runs once: keeps the ICL logits at the scored rows and attn_out at every
 * layer and query row, and adds the query to the Δ_A sums. STEER_ECONTEXT
 * "query <id>: context + query + answer is N tokens but the model's context
 * window holds W"; STEER_EARG for an empty query or completion. Strings are
 * copied. */
int steer_icl_add_query(steer_icl *e, const char *id, const char *prompt, const char *completion,
                        const char *const *choices, int n_choices, int label, steer_icl_score score);
/* Adds items first..first+n−1 of d (n < 0: to the end) as queries. */
int steer_icl_add_dataset(steer_icl *e, const steer_dataset *d, int first, int n, steer_icl_score score);
int steer_icl_n_queries(const steer_icl *e);
int steer_icl_n_scored(const steer_icl *e, int q); /* scored rows of query q  */
int steer_icl_label(const steer_icl *e, int q);    /* -1: none               */
const char *steer_icl_query_id(const steer_icl *e, int q);
/* The zero-shot sequence of query q ([BOS] ⊕ q, teacher-forced completion
 * included), [*n] tokens; valid until steer_icl_free. NULL out of range. */
const int *steer_icl_query_tokens(const steer_icl *e, int q, int *n);

/* E3(a). Runs query q alone with attn_out at the chosen layers (layers
 * [n_layer] nonzero = patched; NULL = every layer) replaced at every query
 * row by its value in the ICL run. *kl (may be NULL) = mean over the scored
 * rows of KL(patched ‖ ICL). *max_abs (may be NULL) = max |logit difference|
 * between the patched and the ICL run over every query row and the whole
 * vocabulary (the ICL run is recomputed for it); with every layer patched it
 * is 0 up to rounding (the only path from C to the query is attention). */
int steer_icl_patch(steer_icl *e, int q, const unsigned char *layers, double *kl, double *max_abs);

/* E3(c). Runs query q alone with alpha·vs added (STEER_ADD at every position,
 * as steer_vecset_apply; vs NULL = zero-shot) and writes the mean over the
 * scored rows of KL(steered ‖ ICL) to *kl and, when kl_rows is not NULL, each
 * row's value to kl_rows[steer_icl_n_scored(e, q)]. */
int steer_icl_kl(steer_icl *e, int q, const steer_vecset *vs, float alpha, double *kl, double *kl_rows);

typedef enum {
    STEER_ICL_RUN_ZERO = 0, /* q alone (with vs: steered)                      */
    STEER_ICL_RUN_CONTEXT,  /* C ⊕ q                                           */
} steer_icl_run;

/* Greedy answer to query q's prompt: K tokens (the longest of the completion
 * and the choices), with the context or alone (+ alpha·vs when vs is not
 * NULL). *pick = the first choice the decoded text starts with, -1 none;
 * *text (may be NULL) malloc'd. */
int steer_icl_answer(steer_icl *e, int q, steer_icl_run run, const steer_vecset *vs, float alpha, int *pick,
                     char **text);

/* E3(b). Δ_A,l (mean over every query's own rows, sums in double) as a new
 * vector set: attn_out.<l> [d_model] for every layer; metadata method
 * "icl-mean", site, model_hint (the architecture), n_queries, n_positions,
 * context_tokens. Caller frees. STEER_EARG without queries. */
int steer_icl_mean_delta(const steer_icl *e, steer_vecset **out);

/* E3(d). Learned compression: the attn_out vectors of vs (every layer; a
 * missing one starts at 0) are trained with the training engine (method
 * vector at attn_out, every layer and position, AdamW, linear schedule) to
 * minimise KL(steered ‖ ICL) over the scored rows of e's queries (mean over
 * the rows of a batch), and written back into vs. */
typedef struct {
    int steps;     /* optimizer updates (default 100)                          */
    int batch;     /* queries per update (default 8)                           */
    double lr;     /* peak learning rate (default 1e-2)                        */
    double warmup; /* warm-up share (default 0.03)                             */
    uint64_t seed; /* query order (default 1)                                  */
    int (*on_step)(void *ud, int step, int total, double loss); /* may be NULL;
                      non-zero stops training there                          */
    void *ud;
} steer_icl_learn_params;

steer_icl_learn_params steer_icl_learn_default_params(void);

typedef struct {
    int steps;                       /* updates done                           */
    double loss_before, loss_after;  /* the objective over every query of e
                                        (mean over all scored rows), before and
                                        after training                        */
} steer_icl_learn_result;

int steer_icl_learn(steer_icl *e, steer_vecset *vs, const steer_icl_learn_params *p, steer_icl_learn_result *res);

/* The whole experiment (steer icl): context = `shots` demonstrations from
 * pool (the order of steer_data_fewshot with seed; each tokenized on its own
 * so it starts like a query does); held-out queries = the first n_eval items
 * of queries that are not demonstrations (and fit the window after C: the
 * others are skipped and counted), training queries = the next n_train.
 * Runs (a) on every held-out query with per-layer patches, (b) on the
 * training queries, (c) and (d) evaluated on the held-out ones, and writes
 * into out_dir: icl.csv, icl_layers.csv, items_icl.csv, summary_icl.json,
 * mean_delta.safetensors, learned.safetensors (with learn.steps > 0),
 * kl_to_icl.png/svg, recovery_by_layer.png/svg (docs/ICL.md). */
typedef struct {
    int shots;             /* demonstrations (default 4)                         */
    uint64_t seed;         /* picks them (default 0)                             */
    int max_shot_tokens;   /* > 0: only demonstrations of at most this many
                              tokens (the first `shots` such of the seed's
                              permutation; 0 = any: steer_data_fewshot's)      */
    int n_eval, n_train;   /* default 64, 128                                    */
    steer_icl_score score; /* default ANSWER                                     */
    float alpha;           /* (c): α·Δ_A (default 1)                             */
    steer_icl_learn_params learn; /* (d); learn.steps 0 skips it                 */
    int n_threads;
    const char *model_path, *data_spec, *pool_spec, *command; /* recorded      */
    /* Progress (may be NULL): stage name, done, total. */
    void (*on_progress)(void *ud, const char *stage, int done, int total);
    void *ud;
} steer_icl_exp_params;

steer_icl_exp_params steer_icl_exp_default_params(void);

typedef struct {
    int context_tokens, n_eval, n_train;
    int n_skipped;                         /* queries for which C ⊕ q (+ answer)
                                              does not fit the window         */
    size_t kv_bytes, vec_bytes;
    double exact_max_abs;                  /* (a): max over held-out queries   */
    double kl_zero, kl_mean, kl_learned;   /* mean KL(· ‖ ICL), held-out       */
    double acc_zero, acc_icl, acc_mean, acc_learned; /* held-out, NaN: no choices */
    double learn_before, learn_after;      /* (d) training objective           */
} steer_icl_exp_result;

int steer_icl_experiment(steer_model *m, const steer_dataset *queries, const steer_dataset *pool,
                         const steer_icl_exp_params *p, const char *out_dir, steer_icl_exp_result *res);

/* END icl section */

/* ---------------------------------------------------------------- MLP modulation and attenuation (SPEC E2) */
/* BEGIN mlp analysis section (src/mlp_analysis.c; docs/ANALYSIS.md) */

/* The MLP branch of block `layer` as a function of the activation at a
 * pre-MLP site, in double precision (weights widened from the model's):
 *   site attn_out: x = resid_mid (a shift at attn_out is a shift of
 *                  resid_mid), h = RMSNorm_pre_mlp(x)
 *   site mlp_in:   x = mlp_in, h = x (the norm stage is the identity)
 *   MLP(x) = W_d·(φ(a_g) ⊙ a_u), a_g = W_g·h, a_u = W_u·h; Gemma 2/3: the
 *   post-ffn RMSNorm of that (the sandwich norm belongs to the branch).
 * A shift δ changes the branch by MLP(x + δ) − MLP(x); to first order by
 * gated + ungated (SPEC E2):
 *   Δ̂       = J_norm(x)·δ               (norm stage; mlp_in: Δ̂ = δ)
 *   gated   = W_d[g1 ⊙ (W_g·Δ̂)],  g1 = φ'(a_g) ⊙ a_u
 *   ungated = W_d[g2 ⊙ (W_u·Δ̂)],  g2 = φ(a_g)
 * (Gemma 2/3: each path times J_post, the post-ffn norm's Jacobian at
 * W_d·m, so gated + ungated is always the whole first-order change). */
typedef struct steer_mlp_branch steer_mlp_branch;

/* Copies layer `layer`'s MLP weights in double. STEER_EUNSUPPORTED
 * ("…: layer 3's MLP is not gated …") when the block has no gate
 * projection, STEER_EARG for a layer out of range. Caller frees. */
int steer_mlp_branch_new(const steer_model *m, int layer, steer_mlp_branch **out);
void steer_mlp_branch_free(steer_mlp_branch *b);

/* y[d_model] = MLP(x[d_model]) for site attn_out or mlp_in (else STEER_EARG). */
int steer_mlp_branch_forward(const steer_mlp_branch *b, steer_site site, const double *x, double *y);

/* The first-order change of the branch at x along delta, stage by stage.
 * Every pointer is the caller's and may be NULL (not written). */
typedef struct {
    double *dhat;            /* [d_model] Δ̂ = J_norm·δ                        */
    double *wg, *wu;         /* [d_ff] W_g·Δ̂ and W_u·Δ̂                         */
    double *g1, *g2;         /* [d_ff] φ'(a_g)⊙a_u and φ(a_g) at x             */
    double *dm;              /* [d_ff] g1⊙(W_g·Δ̂) + g2⊙(W_u·Δ̂): mlp_act's change */
    double *gated, *ungated; /* [d_model] the two paths                        */
} steer_mlp_jvp;
int steer_mlp_branch_jvp(const steer_mlp_branch *b, steer_site site, const double *x, const double *delta,
                         const steer_mlp_jvp *out);

/* Stages of the attenuation analysis, in the order the signal passes them
 * (norm: x → h; in: h → (a_g, a_u); gate: (a_g, a_u) → m; down: m → W_d·m;
 * post: W_d·m → the post-ffn norm's output). Two gains per stage:
 *   abs_gain = ‖Δout‖/‖Δin‖ (the first-order shift's norm after / before:
 *              δ, Δ̂, (W_g·Δ̂, W_u·Δ̂), Δm, W_d·Δm, gated + ungated);
 *   gain     = (‖Δout‖/‖out‖) / (‖Δin‖/‖in‖), the change of the shift's size
 *              relative to the unperturbed activation it rides on (in/out:
 *              x, h, (a_g, a_u), m, W_d·m, the branch output).
 * Below 1 the stage shrinks the signal. */
enum {
    STEER_MLP_STAGE_NORM = 0, /* pre-MLP RMSNorm (1 at mlp_in)                */
    STEER_MLP_STAGE_IN,       /* W_g, W_u                                     */
    STEER_MLP_STAGE_GATE,     /* φ(a_g) ⊙ a_u (the modulation g1, g2)         */
    STEER_MLP_STAGE_DOWN,     /* W_d                                          */
    STEER_MLP_STAGE_POST,     /* post-ffn RMSNorm (Gemma 2/3; else NaN)       */
    STEER_MLP_N_STAGES
};
const char *steer_mlp_stage_name(int stage); /* "norm", "in", "gate", "down", "post" */

#define STEER_MLP_N_ALPHAS 4 /* linearisation error at α = 1, 0.5, 0.25, 0.125 */
extern const double steer_mlp_alphas[STEER_MLP_N_ALPHAS];

/* One (model, site, layer) of the attenuation analysis: means over the
 * analysed positions (arithmetic for norms, errors and alignment, geometric
 * for the ratios and gains). */
typedef struct {
    char model[128];
    steer_site site;
    int layer;
    int n;                      /* positions                                   */
    double delta, dhat;         /* ‖δ‖, ‖Δ̂‖                                     */
    double wg, wu, dm;          /* ‖W_g·Δ̂‖, ‖W_u·Δ̂‖, ‖Δm‖                         */
    double gated, ungated;      /* ‖gated‖, ‖ungated‖                           */
    double first, actual;       /* ‖gated + ungated‖, ‖MLP(x + δ) − MLP(x)‖     */
    double norm_ratio;          /* ‖Δ̂‖/‖δ‖ (norm attenuation)                   */
    double mlp_gain;            /* ‖ΔMLP‖/‖Δ̂‖ (actual change, α = 1)            */
    double linerr[STEER_MLP_N_ALPHAS]; /* ‖Δ(α) − α·first‖ / ‖α·first‖          */
    double align;               /* share of ‖W_g·Δ̂‖² on units whose |g1| is
                                   above its median (0.5: no alignment)       */
    double abs_gain[STEER_MLP_N_STAGES]; /* see the stages above; NaN where */
    double gain[STEER_MLP_N_STAGES];     /* a stage does not exist          */
} steer_mlp_att;

/* The stage with the smallest gain (relative = 1) or abs_gain (relative = 0):
 * norm excluded at mlp_in (the identity), post where there is no post-ffn
 * norm; -1 if none is finite. */
int steer_mlp_att_weakest(const steer_mlp_att *a, int relative);
/* One line of plain language: "layer 2, attn_out, stories260K: its norm
 * shrinks most in the gate (×0.37 …); relative to the activation it rides on
 * it loses most in the pre-MLP norm (×0.86 …); …". */
void steer_mlp_att_describe(const steer_mlp_att *a, char *buf, size_t n);

/* Analysis over a dataset (steer analyze-mlp). Every item runs prompt ⊕
 * gold completion teacher-forced; the positions are those predicting
 * completion tokens. */
typedef struct {
    int token;      /* K >= 1: the position predicting completion token K
                       (index n_prompt − 1 + K − 1; items with fewer than K
                       completion tokens are skipped); 0: every position
                       predicting a completion token (default 1)            */
    const unsigned char *layers; /* [n_layer] 1 = analysed; NULL: every layer */
    const steer_vecset *vectors; /* δ per (site, layer), one row [d_model];
                                    NULL: histograms and statistics only   */
    const char *vectors_path;    /* names the vector file in messages       */
    int n_sites;                 /* attenuation sites: attn_out and/or
                                    mlp_in; 0: those the vectors hold       */
    steer_site sites[2];
    /* Called after every item (may be NULL): done of total. */
    void (*on_item)(void *ud, int done, int total);
    void *ud;
} steer_mlp_params;

steer_mlp_params steer_mlp_default_params(void);

/* Checks vectors for the model: width and layers (as
 * steer_vecset_check_model), a model_hint naming another architecture, one
 * row per vector, and a vector at every analysed layer of each site. */
int steer_mlp_check_vectors(const steer_model *m, const steer_mlp_params *p);

typedef struct steer_mlp_result steer_mlp_result;

/* Runs the model over the dataset (captures of resid_mid, mlp_in, mlp_gate
 * and mlp_up at the chosen positions), then per layer |g1| and |g2| and,
 * with vectors, the attenuation rows. Errors: a model whose MLP is not
 * gated, vectors that do not fit (steer_mlp_check_vectors), an item without
 * a completion or longer than the context, no positions at all. `name`
 * labels the model in the outputs (copied). Caller frees *out. */
int steer_mlp_run(steer_model *m, const char *name, const steer_dataset *d, const steer_mlp_params *p,
                  steer_mlp_result **out);
void steer_mlp_result_free(steer_mlp_result *r);

typedef struct {
    long n;                      /* values: positions × d_ff                   */
    double mean, median, p90, p99; /* quantiles interpolate linearly between
                                      order statistics                        */
    double share_below;          /* share of values < 1e-3                     */
} steer_mlp_stats;

int steer_mlp_result_positions(const steer_mlp_result *r); /* analysed positions */
int steer_mlp_result_items(const steer_mlp_result *r);     /* items used          */
int steer_mlp_result_skipped(const steer_mlp_result *r);   /* items too short     */
/* |g1| (quantity 1) or |g2| (quantity 2) at layer: [*n] values (position-
 * major) and their statistics. NULL / STEER_EARG for a layer not analysed.
 * Valid until the result is freed. */
const float *steer_mlp_result_values(const steer_mlp_result *r, int layer, int quantity, size_t *n);
int steer_mlp_result_stats(const steer_mlp_result *r, int layer, int quantity, steer_mlp_stats *out);
int steer_mlp_result_att_count(const steer_mlp_result *r);
const steer_mlp_att *steer_mlp_result_att(const steer_mlp_result *r, int i);

/* Histogram bins shared by every model: an underflow bin [0, 1e-6), then 10
 * log-spaced bins per decade from 1e-6 up to the power of ten at or above
 * the largest value of any model at any layer (per quantity). */
#define STEER_MLP_BIN_LO 1e-6
#define STEER_MLP_BINS_PER_DECADE 10

typedef struct {
    const char *data;        /* dataset spec as given                       */
    const char *command;     /* command line (may be NULL)                  */
    const char *const *model_paths; /* [n] as given (may be NULL)           */
    const char *vectors;     /* vector file (may be NULL)                   */
} steer_mlp_info;

/* Writes DIR/mlp_stats.csv, DIR/hist.csv, DIR/mlp_summary.json and
 * DIR/mlp_hist.png/.svg, and with attenuation rows DIR/attenuation.csv and
 * DIR/attenuation.png/.svg (docs/ANALYSIS.md), every file atomically; DIR is
 * created if missing. The results must cover the same layers. */
int steer_mlp_write(const steer_mlp_result *const *r, int n, const steer_mlp_info *info, const char *dir);

/* Reads DIR/attenuation.csv back: *rows malloc'd (caller frees), *n rows.
 * Errors name the file and line. */
int steer_mlp_read_attenuation(const char *path, steer_mlp_att **rows, int *n);

/* END mlp analysis section */

#ifdef __cplusplus
}
#endif
#endif /* STEER_H */

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

/* STEER_API marks the functions libsteer exports. The libraries are built
 * with -fvisibility=hidden and STEER_BUILDING; a shared library exports only
 * what its public header marks so (and the private steer_* ABI between the
 * three libraries, see src/base/base.h). */
#if defined(STEER_BUILDING) && defined(__GNUC__)
#define STEER_API __attribute__((visibility("default")))
#else
#define STEER_API
#endif

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
    STEER_ECANCELLED = -8,   /* stopped by steer_cancel (e.g. Ctrl-C in a binding) */
};

/* The message of the last failure on this thread. Never NULL; valid until the
 * next failing call on the same thread. */
STEER_API const char *steer_last_error(void);

/* Removes every temporary file and directory the library is writing at this
 * moment (FILE.tmp.<pid> beside an output, a conversion's OUT.tmp.<pid>
 * directory). Async-signal-safe: for a program's SIGINT/SIGTERM handler,
 * which then ends the program (the writers themselves are not told). The
 * steer CLI installs such a handler. */
STEER_API void steer_remove_temporaries(void);

/* Cancellation (a binding's Ctrl-C, a watchdog). steer_cancel(1) raises a
 * process-wide flag that the forward pass checks before every layer, so
 * steer_forward, steer_forward_resume, steer_generate and everything built on
 * them (captures, extraction, evaluation, sweeps, ICL, the MLP analysis)
 * return STEER_ECANCELLED ("cancelled") soon after, on every thread;
 * steer_cancel(0) lowers it again (nothing is cancelled while it is down).
 * A cancelled context stays valid: its KV cache holds partial rows, so clear
 * the sequence (steer_ctx_clear) before going on from it. Lock-free and
 * async-signal-safe: callable from any thread or a signal handler.
 * steer_cancelled() is the flag (1 or 0). */
STEER_API void steer_cancel(int on);
STEER_API int steer_cancelled(void);

/* ---------------------------------------------------------------- CPU kernel paths */
/* The matmul and attention kernels exist in several paths, one per
 * instruction set: "scalar" (portable C; the same bits as avx2), "avx2"
 * (AVX2/FMA/F16C), "avx512" (AVX-512 F/VL/BW/DQ; 16 lanes, so another
 * summation order) and "avx512bf16" (avx512 + VDPBF16PS for bf16 weights at
 * fast precision). The best one the CPU has is chosen at the first call;
 * the environment variable STEER_CPU=scalar|avx2|avx512|avx512bf16 chooses
 * another one the CPU has. Each path is batch-invariant by itself. */
STEER_API const char *steer_cpu_path(void);     /* the path in use (static string)              */
STEER_API const char *steer_cpu_features(void); /* e.g. "avx2 fma f16c" (static string)         */
/* Use path name from now on (process-wide). STEER_EUNSUPPORTED if the CPU
 * lacks it, STEER_EARG for an unknown name. Not while a forward pass runs. */
STEER_API int steer_cpu_set_path(const char *name);
/* The integer dot products quantized weights use at fast precision, which
 * follow the kernel path: "scalar", "avx2", "avxvnni" (the avx2 kernels
 * with VEX VPDPBUSD/VPDPWSSD, where the CPU has AVX-VNNI) or "avx512vnni"
 * (the same with the EVEX forms, on the avx512 paths where the CPU has
 * AVX512_VNNI). Static string. */
STEER_API const char *steer_cpu_quant_path(void);

/* How quantized weights (STEER_DTYPE_Q8_0 … Q6_K) are multiplied:
 *   STEER_PRECISION_FAST  (the default) as llama.cpp does it: each input row
 *                         quantized per block to 8 bits (Q8_0, Q8_1 or Q8_K)
 *                         and integer dot products within a block;
 *   STEER_PRECISION_EXACT the weights dequantized exactly (ggml's values) and
 *                         multiplied with the float32 activations, as an f32
 *                         copy of the dequantized model would be.
 * Both are batch-invariant. F32 and F16 weights are computed the same way
 * under both; BF16 weights too, except on the avx512bf16 path, where fast
 * rounds the activations to bf16 and uses VDPBF16PS pair dot products (as
 * llama.cpp does) and exact widens the weights to f32. Process-wide; STEER_PRECISION=exact|fast in the
 * environment sets the value at start. Not while a forward pass runs. */
typedef enum { STEER_PRECISION_FAST = 0, STEER_PRECISION_EXACT = 1 } steer_precision;
STEER_API void steer_set_precision(steer_precision p);
STEER_API steer_precision steer_get_precision(void);
STEER_API const char *steer_precision_name(steer_precision p); /* "fast", "exact"                  */
/* "fast" or "exact" into *out; STEER_EARG for another name. */
STEER_API int steer_precision_parse(const char *name, steer_precision *out);

/* ---------------------------------------------------------------- dtypes */

typedef enum {
    STEER_DTYPE_KEEP = -1, /* in options only: keep each tensor's own dtype     */
    STEER_DTYPE_F32 = 0,
    STEER_DTYPE_F16 = 1,
    STEER_DTYPE_BF16 = 2,
    STEER_DTYPE_F64 = 3,
    STEER_DTYPE_I32 = 4,
    STEER_DTYPE_I64 = 5,
    STEER_DTYPE_U8 = 6,
    STEER_DTYPE_I8 = 7,
    /* ggml's block-quantized weight types (GGUF files, llama.cpp's layouts
     * bit for bit): a row is a run of fixed-size blocks, each holding
     * block_elems elements in block_bytes bytes (steer_dtype_block), so a
     * row's length must be a multiple of block_elems. Elements per block /
     * bytes per block (bits per weight):                                    */
    STEER_DTYPE_Q8_0 = 8, /*  32 /  34 (8.5): f16 scale d, 32 × int8; x = q·d            */
    STEER_DTYPE_Q4_0,     /*  32 /  18 (4.5): d, 32 × 4 bits; x = (q − 8)·d              */
    STEER_DTYPE_Q4_1,     /*  32 /  20 (5.0): d, f16 min m, 32 × 4 bits; x = q·d + m     */
    STEER_DTYPE_Q5_0,     /*  32 /  22 (5.5): d, 32 × 5 bits; x = (q − 16)·d             */
    STEER_DTYPE_Q5_1,     /*  32 /  24 (6.0): d, m, 32 × 5 bits; x = q·d + m             */
    STEER_DTYPE_Q2_K,     /* 256 /  84 (2.625): 16 groups of 16, 4-bit scales and mins   */
    STEER_DTYPE_Q3_K,     /* 256 / 110 (3.4375): 16 groups of 16, 6-bit scales           */
    STEER_DTYPE_Q4_K,     /* 256 / 144 (4.5): 8 groups of 32, 6-bit scales and mins      */
    STEER_DTYPE_Q5_K,     /* 256 / 176 (5.5): 8 groups of 32, 6-bit scales and mins      */
    STEER_DTYPE_Q6_K,     /* 256 / 210 (6.5625): 16 groups of 16, 8-bit scales           */
    STEER_DTYPE_COUNT
} steer_dtype;

STEER_API const char *steer_dtype_name(steer_dtype t); /* "F32", "BF16", "Q4_K", … (static); "?" if invalid */
/* Bytes per element; 0 for the block types (Q8_0 … Q6_K: an element has no
 * whole byte size, use steer_dtype_block / steer_dtype_row_bytes) and for an
 * invalid dtype. */
STEER_API size_t steer_dtype_size(steer_dtype t);
/* Block geometry: *block_elems elements are stored in *block_bytes bytes (a
 * plain dtype: 1 and its element size; Q4_K: 256 and 144). Either pointer may
 * be NULL. STEER_OK, or STEER_EARG for an invalid dtype. */
STEER_API int steer_dtype_block(steer_dtype t, size_t *block_elems, size_t *block_bytes);
/* Bytes of n consecutive elements (a row) of dtype t; 0 if n is not a
 * multiple of the block size, or t is invalid. */
STEER_API size_t steer_dtype_row_bytes(steer_dtype t, size_t n);
/* 1 for the block-quantized types (Q8_0 … Q6_K), else 0. */
STEER_API int steer_dtype_is_quantized(steer_dtype t);
/* dst[n] = src[n] of dtype t widened to float32: exact for F32, F16 and
 * BF16; for a block type, ggml's dequantization bit for bit (src holds the
 * n / block_elems blocks; n must be a multiple of the block size, else
 * STEER_EARG).
 * STEER_EARG for another dtype. */
STEER_API int steer_dtype_to_f32(float *dst, const void *src, steer_dtype t, size_t n);
/* A weight dtype by name, as options give it, case-insensitive: "f32", "f16",
 * "bf16", or a block type "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k",
 * "q3_k", "q4_k", "q5_k", "q6_k" into *out. STEER_EARG for any other name
 * (*out unchanged). What a command accepts is its own business: most take
 * only f32, f16, bf16. */
STEER_API int steer_dtype_parse(const char *name, steer_dtype *out);

/* Scalar conversions between float32 and the 16-bit storage formats (the
 * ones the library uses for F16/BF16 weights). Narrowing rounds to nearest,
 * ties to even; NaN stays NaN (quiet), ±Inf stays ±Inf; F16 overflows to
 * ±Inf and underflows through subnormals to ±0. Widening is exact. */
STEER_API float steer_f16_to_f32(uint16_t h);
STEER_API uint16_t steer_f32_to_f16(float f);
STEER_API float steer_bf16_to_f32(uint16_t h);
STEER_API uint16_t steer_f32_to_bf16(float f);

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

STEER_API const char *steer_site_name(steer_site s); /* "resid_pre", … (static)            */
/* Parses a site name. Returns STEER_OK, or STEER_EARG for an unknown name. */
STEER_API int steer_site_parse(const char *name, steer_site *out);
/* A TransformerLens hook name: "blocks.3.hook_resid_post" → (resid_post, 3);
 * a name without "blocks.L." (a site name or a TL name such as
 * "hook_resid_post", "mlp.hook_post") → (site, -1). steer_site_parse accepts
 * the TL names whose meaning is a site's (docs/VECTORS.md §1): hook_resid_pre,
 * hook_attn_out, hook_resid_mid, mlp.hook_pre (mlp_gate), mlp.hook_pre_linear
 * (mlp_up), mlp.hook_post (mlp_act), hook_mlp_out, hook_resid_post. The layer
 * is not checked against a model. STEER_EARG naming the name. */
STEER_API int steer_hook_name_parse(const char *name, steer_site *site, int *layer);

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

/* Activation functions: φ of a gated MLP (the first three) and σ of trained
 * adapters (SILU, GELU, RELU, TANH, NONE). STEER_ACT_DEFAULT in options means
 * "the architecture's" (models) or "the method's" (training). */
typedef enum {
    STEER_ACT_DEFAULT = -1,
    STEER_ACT_SILU = 0,  /* x·σ(x)                                             */
    STEER_ACT_GELU_TANH, /* GELU, tanh approximation (gelu_pytorch_tanh)        */
    STEER_ACT_GELU,      /* exact GELU (erf)                                    */
    STEER_ACT_RELU,      /* max(0, x)             (adapters only)               */
    STEER_ACT_TANH,      /* tanh(x)               (adapters only)               */
    STEER_ACT_NONE,      /* identity              (adapters only)               */
    STEER_ACT_COUNT
} steer_act;

/* "silu", "gelu_tanh", "gelu", "relu", "tanh", "none" (static; "?" otherwise). */
STEER_API const char *steer_act_name(steer_act a);
/* Parses one of those names. STEER_EARG for another. */
STEER_API int steer_act_parse(const char *name, steer_act *out);

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

STEER_API steer_model_params steer_model_default_params(void);

/* Loads a model: a llama2.c checkpoint (legacy .bin), a GGUF v3 file, or a
 * Hugging Face directory (config.json + model.safetensors or a sharded
 * index). Architectures: see steer_arch. F32/F16/BF16 tensors, memory-mapped.
 * On success *out is owned by the caller (steer_model_free). */
STEER_API int steer_model_load(const char *path, const steer_model_params *params, steer_model **out);
STEER_API void steer_model_free(steer_model *m);

/* Valid until steer_model_free. */
STEER_API const steer_model_config *steer_model_get_config(const steer_model *m);

/* 1 if layer l uses sliding-window attention. */
STEER_API int steer_model_layer_is_sliding(const steer_model *m, int layer);

/* Width of a site's activations (d_model or d_ff). */
STEER_API int steer_model_site_width(const steer_model *m, steer_site s);

/* The architecture's name: "llama", "mistral", "qwen2", "gemma", "gemma2",
 * "gemma3" (static); NULL for a value outside the enum. */
STEER_API const char *steer_arch_name(steer_arch a);

/* The weight tensors of a model, by role: three global ones, then those of
 * each layer (Hugging Face names in comments). */
typedef enum {
    STEER_WEIGHT_TOK_EMBD = 0,   /* embed_tokens           [n_vocab, d_model]        */
    STEER_WEIGHT_OUT_NORM,       /* norm                   [d_model]                 */
    STEER_WEIGHT_OUTPUT,         /* lm_head                [n_vocab, d_model]
                                    (the embedding when tied)                        */
    STEER_WEIGHT_ATTN_NORM,      /* input_layernorm        [d_model]                 */
    STEER_WEIGHT_Q,              /* q_proj                 [n_head·head_dim, d_model] */
    STEER_WEIGHT_K,              /* k_proj                 [n_kv_head·head_dim, d_model] */
    STEER_WEIGHT_V,              /* v_proj                 [n_kv_head·head_dim, d_model] */
    STEER_WEIGHT_O,              /* o_proj                 [d_model, n_head·head_dim] */
    STEER_WEIGHT_Q_BIAS,         /* q_proj.bias            [n_head·head_dim]   Qwen2  */
    STEER_WEIGHT_K_BIAS,         /* k_proj.bias            [n_kv_head·head_dim] Qwen2 */
    STEER_WEIGHT_V_BIAS,         /* v_proj.bias            [n_kv_head·head_dim] Qwen2 */
    STEER_WEIGHT_Q_NORM,         /* q_norm                 [head_dim]        Gemma 3  */
    STEER_WEIGHT_K_NORM,         /* k_norm                 [head_dim]        Gemma 3  */
    STEER_WEIGHT_POST_ATTN_NORM, /* post_attention_layernorm [d_model]    Gemma 2/3  */
    STEER_WEIGHT_FFN_NORM,       /* post_attention_layernorm (Llama) or
                                    pre_feedforward_layernorm (Gemma 2/3) [d_model] */
    STEER_WEIGHT_GATE,           /* gate_proj  W_g         [d_ff, d_model]           */
    STEER_WEIGHT_UP,             /* up_proj    W_u         [d_ff, d_model]           */
    STEER_WEIGHT_DOWN,           /* down_proj  W_d         [d_model, d_ff]           */
    STEER_WEIGHT_POST_FFN_NORM,  /* post_feedforward_layernorm [d_model]  Gemma 2/3  */
    STEER_WEIGHT_COUNT
} steer_weight;

/* A read-only view of one weight tensor, row-major [rows, cols] (a vector:
 * rows = 1). Matrices keep the dtype they were loaded in (F32, F16 or BF16;
 * steer_dtype_to_f32 widens rows); norm weights and biases are F32, norm
 * weights as the effective multiplier the forward pass uses (Gemma's 1 + w
 * already added). data points into the model: valid until steer_model_free. */
typedef struct {
    const void *data; /* NULL: the model has no such tensor (rows = cols = 0) */
    steer_dtype dtype;
    int rows, cols;
} steer_weight_view;

/* The view of weight w of layer `layer` (ignored for the three global
 * weights). A tensor the architecture does not have (a bias of Llama, the
 * post norms outside Gemma 2/3) is STEER_OK with out->data NULL. STEER_EARG
 * for an unknown w or a layer outside 0..n_layer-1. */
STEER_API int steer_model_weight(const steer_model *m, steer_weight w, int layer, steer_weight_view *out);

/* Final norm and head applied to rows of a residual stream:
 * logits[n, n_vocab] = head(RMSNorm_final(h[n, d_model])). Caller owns both. */
STEER_API int steer_model_unembed(const steer_model *m, const float *h, int n, float *logits);

/* ---------------------------------------------------------------- tokenizer */

STEER_API int steer_vocab_size(const steer_model *m);
STEER_API int steer_token_bos(const steer_model *m);
STEER_API int steer_token_eos(const steer_model *m);
/* Pieces the tokenizer holds (ids 0..n-1 have a piece). May be fewer than
 * steer_vocab_size, the rows of the embedding and the head, which some models
 * pad. */
STEER_API int steer_tokenizer_size(const steer_model *m);

/* Encodes UTF-8 text with the model's tokenizer (SentencePiece-style BPE with
 * byte fallback, or byte-level BPE). Writes at most
 * max_tokens ids to tokens and the count to *n_tokens. add_bos prepends BOS.
 * STEER_EARG if the buffer is too small (then *n_tokens is the needed size). */
STEER_API int steer_tokenize(const steer_model *m, const char *text, int add_bos, int *tokens, int max_tokens,
                   int *n_tokens);

/* steer_tokenize into a buffer of the right size: *tokens (caller frees with
 * free()) and *n_tokens. Errors as steer_tokenize, or STEER_ENOMEM; on error
 * *tokens is NULL. */
STEER_API int steer_tokenize_alloc(const steer_model *m, const char *text, int add_bos, int **tokens, int *n_tokens);

/* Flags for steer_tokenize_ex. */
#define STEER_TOK_ADD_BOS 1       /* prepend BOS (if the vocabulary has one)       */
#define STEER_TOK_PARSE_SPECIAL 2 /* recognise special/added tokens spelled in the
                                     text, e.g. "<|im_start|>" or "<start_of_turn>" */
STEER_API int steer_tokenize_ex(const steer_model *m, const char *text, int flags, int *tokens, int max_tokens,
                      int *n_tokens);

/* Chat formatting (behind `--chat`): the family is recognised from the chat
 * template shipped with the model (tokenizer_config.json or GGUF
 * tokenizer.chat_template): "llama3", "llama2" ([INST], also Mistral),
 * "gemma", "chatml" (Qwen). NULL if none is recognised. Static string. */
STEER_API const char *steer_chat_family(const steer_model *m);

typedef struct {
    const char *role;    /* "system", "user" or "assistant"                  */
    const char *content;
} steer_chat_msg;

/* Formats messages in the model's chat format; with add_assistant the text
 * ends with the assistant turn's opening so generation continues as the
 * assistant. Tokenize the result with STEER_TOK_PARSE_SPECIAL (and without
 * ADD_BOS when the text already starts with the BOS piece). *out is
 * malloc'd; caller frees. STEER_EUNSUPPORTED if no family is recognised. */
STEER_API int steer_chat_format(const steer_model *m, const steer_chat_msg *msgs, int n_msgs, int add_assistant, char **out);

/* The bytes of one token as it appears after `prev` (llama2.c rules: the
 * leading space after BOS is dropped; <0xXX> pieces decode to that byte).
 * *len receives the byte count. Valid until steer_model_free (static for
 * byte pieces). Returns NULL for an id out of range. */
STEER_API const char *steer_token_piece(const steer_model *m, int prev, int token, size_t *len);

/* ---------------------------------------------------------------- context */

typedef struct steer_ctx steer_ctx;

typedef struct {
    int n_ctx;     /* positions per sequence; 0 = the model's training context */
    int n_seq;     /* sequences held in the KV cache (default 1)                */
    int n_threads; /* 0 = OpenMP default                                        */
} steer_ctx_params;

STEER_API steer_ctx_params steer_ctx_default_params(void);

/* A context holds the KV cache, scratch buffers, hooks and logits for one model
 * (which must outlive it). Caller frees with steer_ctx_free. */
STEER_API int steer_ctx_new(steer_model *m, const steer_ctx_params *p, steer_ctx **out);
STEER_API void steer_ctx_free(steer_ctx *c);
STEER_API int steer_ctx_n_ctx(const steer_ctx *c);

/* Forgets cached positions of sequence seq (-1: all). Hooks stay. */
STEER_API void steer_ctx_clear(steer_ctx *c, int seq);

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
STEER_API int steer_forward(steer_ctx *c, const steer_batch *b);

/* Logits [n_vocab] of batch row i of the last forward, or NULL if that row was
 * not asked for. Valid until the next forward on c. */
STEER_API const float *steer_ctx_logits(const steer_ctx *c, int i);

/* Convenience: runs tokens[0..n) of sequence seq at positions start.. as one
 * batch, logits for every row. */
STEER_API int steer_forward_tokens(steer_ctx *c, const int *tokens, int n, int start, int seq);

/* Copies the cached keys and values of sequence src at positions [p0, p1) to
 * the same positions of sequence dst, in every layer, so that dst can go on
 * from p1 as if it had been run on src's tokens (bit for bit: continuing dst
 * gives the logits continuing src gives). Prompt lengths are not copied
 * (steer_ctx_set_prompt_len). src == dst or p0 == p1 does nothing.
 * STEER_EARG if src or dst is outside 0..n_seq-1; STEER_ECONTEXT unless
 * 0 <= p0 <= p1 <= n_ctx. */
STEER_API int steer_ctx_seq_copy(steer_ctx *c, int src, int dst, int p0, int p1);

/* Runs batch b from inside layer `layer`, at the hook of site `entry`, from a
 * given state instead of the token embeddings: a pass resumed where an
 * earlier one (of the same tokens) recorded that state, so the layers below
 * and the part of `layer` before the site are not recomputed (the oracle
 * sweep's prefix reuse). The state, one row per batch row:
 *   entry                            x_in [b->n, d_model]   xb_in [b->n, d_model]
 *   STEER_SITE_RESID_PRE             resid_pre of layer     NULL (not read)
 *   STEER_SITE_ATTN_OUT              resid_pre of layer     attn_out of layer
 *   STEER_SITE_RESID_MID             resid_mid of layer     NULL (not read)
 *   STEER_SITE_MLP_IN                resid_mid of layer     mlp_in of layer
 *   STEER_SITE_MLP_OUT               resid_mid of layer     mlp_out of layer
 *   STEER_SITE_RESID_POST            resid_post of layer    NULL (not read)
 * i.e. what steer_forward holds when it reaches the hook at (entry, layer),
 * which captures at those (site, layer)s record. Other sites are STEER_EARG (start
 * the MLP's inner sites at STEER_SITE_MLP_IN). Both buffers are copied (the
 * caller keeps them). b->tokens is not read (may be NULL); positions,
 * sequences and logit rows are as for steer_forward. Hooks run from (entry,
 * layer) on, the hook at entry included, as in steer_forward. Layers below
 * `layer` are not run, so their K/V cache is left as it is: earlier positions
 * of every sequence must be cached already, in every layer (as for
 * steer_forward; steer_ctx_seq_copy copies them between sequences). With
 * prune_last non-zero, the last layer computes every row's K/V but the rest
 * of that layer only for the rows that want logits, so hooks there see only
 * those rows. Per row, bit for bit the numbers steer_forward gives from the
 * same state (the matmul is batch-invariant). Logits as after
 * steer_forward (steer_ctx_logits by batch row). Errors: STEER_EARG (layer
 * out of range, entry, a missing buffer, a bad batch), STEER_ECONTEXT,
 * STEER_ENOMEM, STEER_ENAN (non-finite logits), or a hook's status. */
STEER_API int steer_forward_resume(steer_ctx *c, const steer_batch *b, int layer, steer_site entry, const float *x_in,
                                   const float *xb_in, int prune_last);

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
STEER_API int steer_ctx_add_hook(steer_ctx *c, const steer_hook *h);
STEER_API void steer_ctx_refresh_hooks(steer_ctx *c);
/* Removes every hook, intervention and capture. */
STEER_API void steer_ctx_clear_hooks(steer_ctx *c);
/* Removes the one hook, intervention or capture with this id (as returned by
 * steer_ctx_add_hook / _add_intervention / _add_capture / _add_capture_into),
 * freeing what the context copied for it; the others keep their order and
 * ids. STEER_EARG if no hook has that id. A server removes one sequence's
 * interventions this way when the sequence ends. */
STEER_API int steer_ctx_remove_hook(steer_ctx *c, int id);

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

STEER_API void steer_ctx_set_prompt_len(steer_ctx *c, int seq, int prompt_len);

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
STEER_API int steer_ctx_add_intervention(steer_ctx *c, const steer_intervention *iv);

/* Records site/layer activations of sequence seq at every position processed
 * from now on. Returns hook id or a status. */
STEER_API int steer_ctx_add_capture(steer_ctx *c, steer_site site, int layer, int seq);

/* The captured rows [*n_rows, width] (row = absolute position; rows never
 * processed are zero). Valid until the next forward or clear_hooks. NULL if
 * nothing was captured at (site, layer). */
STEER_API const float *steer_ctx_captured(const steer_ctx *c, steer_site site, int layer, int *n_rows);

/* Records site/layer activations into the caller's buffer dst [dst_rows,
 * width] (width must be the site's width, steer_model_site_width): at every
 * forward from now on, each processed row of sequence seq (-1: of every
 * sequence) at absolute position p is copied to row r of dst, where
 * r = row_map[p] when row_map is given (positions p >= n_map, and entries
 * < 0, are not recorded), else r = p (n_map must then be 0); rows r outside
 * 0..dst_rows-1 are not recorded. Rows no processed position maps to are
 * left as they are. dst and row_map are borrowed, not copied: they must stay
 * valid while the capture is in place (until steer_ctx_clear_hooks or
 * steer_ctx_free), and the caller may change row_map's entries between
 * passes (e.g. one map per item). Bit for bit what a steer_hook copying the
 * same rows sees. Returns the hook id (>= 0), or STEER_EARG (site, layer,
 * sequence, width, a NULL dst with dst_rows > 0, or n_map < 0 or > 0 without
 * a map) or STEER_ENOMEM. */
STEER_API int steer_ctx_add_capture_into(steer_ctx *c, steer_site site, int layer, int seq, float *dst, int dst_rows,
                                         int width, const int *row_map, int n_map);

/* ---------------------------------------------------------------- sampling */

typedef struct {
    float temperature; /* 0 = greedy (argmax, first index wins ties)        */
    int top_k;         /* 0 = off                                           */
    float top_p;       /* 1 = off                                           */
    uint64_t seed;
} steer_sampler_params;

STEER_API steer_sampler_params steer_sampler_default_params(void);

typedef struct steer_sampler steer_sampler;
STEER_API int steer_sampler_new(const steer_sampler_params *p, steer_sampler **out);
STEER_API void steer_sampler_free(steer_sampler *s);
STEER_API int steer_sample(steer_sampler *s, const float *logits, int n_vocab);

/* Generates up to n_new tokens after prompt[0..n_prompt) in sequence 0,
 * calling on_token for each new token (return non-zero to stop). Stops early
 * at BOS or EOS. Sets the prompt length for position selectors. Writes the
 * number of generated tokens to *n_out (may be NULL). */
STEER_API int steer_generate(steer_ctx *c, const int *prompt, int n_prompt, int n_new, steer_sampler *s,
                   int (*on_token)(void *ud, int token), void *ud, int *n_out);

/* ---------------------------------------------------------------- metrics */

/* out[n] = log_softmax(logits[n]) in double precision. */
STEER_API void steer_log_softmax(const float *logits, int n, double *out);
/* KL(P‖Q) = Σ P·(log P − log Q), natural log, from logits, in double. */
STEER_API double steer_kl_logits(const float *logits_p, const float *logits_q, int n);

/* ---------------------------------------------------------------- tensors files */

/* A read-only safetensors file, memory-mapped. */
typedef struct steer_tensors steer_tensors;

typedef struct {
    const char *name;
    steer_dtype dtype;
    int n_dims;
    int64_t shape[8];
    const void *data; /* into the mapping; valid until steer_tensors_free */
    size_t nbytes;
} steer_tensor_info;

STEER_API int steer_tensors_open(const char *path, steer_tensors **out);
STEER_API void steer_tensors_free(steer_tensors *t);
STEER_API int steer_tensors_count(const steer_tensors *t);
STEER_API const steer_tensor_info *steer_tensors_at(const steer_tensors *t, int i);
STEER_API const steer_tensor_info *steer_tensors_find(const steer_tensors *t, const char *name);
/* __metadata__ value for key, or NULL. Valid until close. */
STEER_API const char *steer_tensors_meta(const steer_tensors *t, const char *key);

/* A safetensors writer: add tensors (the data pointer must stay valid until
 * write), then write atomically (temporary file + rename). */
typedef struct steer_tensors_writer steer_tensors_writer;
STEER_API int steer_tensors_writer_new(steer_tensors_writer **out);
STEER_API int steer_tensors_writer_add(steer_tensors_writer *w, const char *name, steer_dtype dtype, int n_dims,
                             const int64_t *shape, const void *data);
STEER_API int steer_tensors_writer_meta(steer_tensors_writer *w, const char *key, const char *value);
STEER_API int steer_tensors_writer_write(steer_tensors_writer *w, const char *path);
STEER_API void steer_tensors_writer_free(steer_tensors_writer *w);

/* ---------------------------------------------------------------- files: GGUF */

/* GGUF v2/v3 files (llama.cpp's format): a read-only, memory-mapped reader
 * and a v3 writer. Shapes are row-major like everywhere in this API: a
 * matrix is [rows, cols] (GGUF stores ggml's reversed order, ne[0] = cols). */

/* ggml tensor type numbers (as in ggml.h) that the reader and writer accept. */
enum {
    STEER_GGML_F32 = 0, STEER_GGML_F16 = 1, STEER_GGML_Q4_0 = 2, STEER_GGML_Q4_1 = 3, STEER_GGML_Q5_0 = 6,
    STEER_GGML_Q5_1 = 7, STEER_GGML_Q8_0 = 8, STEER_GGML_Q2_K = 10, STEER_GGML_Q3_K = 11, STEER_GGML_Q4_K = 12,
    STEER_GGML_Q5_K = 13, STEER_GGML_Q6_K = 14, STEER_GGML_BF16 = 30
};

typedef struct steer_gguf steer_gguf;

typedef struct {
    const char *name;      /* owned by the file; valid until steer_gguf_free          */
    int ggml_type;         /* STEER_GGML_*                                            */
    const char *type_name; /* "F32", "F16", "BF16", "Q8_0", "Q4_K", … (static)         */
    int n_dims;            /* 1 to 4                                                  */
    int64_t shape[4];      /* row-major: shape[n_dims - 1] is the fastest-varying     */
    const void *data;      /* into the mapping; valid until steer_gguf_free           */
    size_t nbytes;
    uint64_t offset;       /* byte offset of the data from the start of the file      */
} steer_gguf_tensor_info;

/* Opens and fully validates path (magic, version, every key and tensor record
 * inside the file, tensor data inside the file and aligned). On success *out
 * is owned by the caller (steer_gguf_free) and every pointer it hands out
 * lives until then. Errors name the file: STEER_EIO "x.gguf: cannot open …",
 * STEER_EFORMAT "x.gguf: truncated at tensor info 3". */
STEER_API int steer_gguf_open(const char *path, steer_gguf **out);
STEER_API void steer_gguf_free(steer_gguf *g); /* NULL is a no-op */
STEER_API int steer_gguf_n_tensors(const steer_gguf *g);
/* Fills *out with tensor i (file order). STEER_EARG if i is out of range. */
STEER_API int steer_gguf_tensor_at(const steer_gguf *g, int i, steer_gguf_tensor_info *out);
/* Fills *out with the tensor called name. STEER_EARG "x.gguf: no tensor NAME". */
STEER_API int steer_gguf_tensor_find(const steer_gguf *g, const char *name, steer_gguf_tensor_info *out);
/* Metadata keys in file order: n_keys, and key i (owned by the file; NULL out
 * of range). */
STEER_API int steer_gguf_n_keys(const steer_gguf *g);
STEER_API const char *steer_gguf_key(const steer_gguf *g, int i);
STEER_API int steer_gguf_has_key(const steer_gguf *g, const char *key); /* 1 or 0 */
/* Scalar metadata. STEER_EARG if the key is missing ("x.gguf: missing key
 * llama.block_count") or holds another kind of value; integers convert when
 * they fit. *out of get_str is owned by the file (NUL-terminated). */
STEER_API int steer_gguf_get_str(const steer_gguf *g, const char *key, const char **out);
STEER_API int steer_gguf_get_u32(const steer_gguf *g, const char *key, uint32_t *out);
STEER_API int steer_gguf_get_f32(const steer_gguf *g, const char *key, float *out);
STEER_API int steer_gguf_get_bool(const steer_gguf *g, const char *key, int *out);

/* A GGUF v3 writer (alignment 32): set keys (a key set twice keeps its first
 * position and its last value), add tensors, then write atomically (temporary
 * file + rename; nothing is left behind on failure). Keys, names and arrays
 * are copied; tensor data is borrowed and must stay valid until write. The
 * writer is owned by the caller (steer_gguf_writer_free) and may be written
 * more than once. */
typedef struct steer_gguf_writer steer_gguf_writer;
STEER_API int steer_gguf_writer_new(steer_gguf_writer **out);
STEER_API void steer_gguf_writer_free(steer_gguf_writer *w); /* NULL is a no-op; data stays the caller's */
STEER_API int steer_gguf_writer_set_u32(steer_gguf_writer *w, const char *key, uint32_t v);
STEER_API int steer_gguf_writer_set_f32(steer_gguf_writer *w, const char *key, float v);
STEER_API int steer_gguf_writer_set_bool(steer_gguf_writer *w, const char *key, int v);
STEER_API int steer_gguf_writer_set_str(steer_gguf_writer *w, const char *key, const char *v);
STEER_API int steer_gguf_writer_set_arr_str(steer_gguf_writer *w, const char *key, const char *const *v, int n);
STEER_API int steer_gguf_writer_set_arr_f32(steer_gguf_writer *w, const char *key, const float *v, int n);
STEER_API int steer_gguf_writer_set_arr_i32(steer_gguf_writer *w, const char *key, const int32_t *v, int n);
/* A tensor of ggml_type (STEER_GGML_*) and row-major shape[n_dims] (1 to 4
 * dims, each >= 0; for a block type the last dim a multiple of its block
 * size: 32 for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, 256 for Q2_K … Q6_K); data holds
 * its bytes (F32/F16/BF16: the elements, row-major; a block type: each row's
 * blocks, rows in row-major order). STEER_EARG for a duplicate name or a bad
 * shape, STEER_EUNSUPPORTED for another type. */
STEER_API int steer_gguf_writer_add_tensor(steer_gguf_writer *w, const char *name, int ggml_type, int n_dims,
                                           const int64_t *shape, const void *data);
STEER_API int steer_gguf_writer_write(steer_gguf_writer *w, const char *path);


/* ---------------------------------------------------------------- conversion */

/* Options of steer_convert. */
typedef struct {
    steer_dtype dtype;  /* STEER_DTYPE_KEEP (default): each matrix's own (a block type
                           that the output format cannot hold, i.e. anything but
                           GGUF: dequantized to F32; llama2.c output: F32); else
                           F32, F16, BF16 or a block type (Q8_0 … Q6_K, GGUF output
                           only) for every matrix ("pure", like llama-quantize
                           --pure; a matrix whose row length is not a multiple of
                           the block falls back as llama-quantize does: Q2_K/Q3_K
                           → Q4_0, Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, then F16
                           if the row is not a multiple of 32 either). Norm weights
                           and biases (every 1-D tensor) are always written F32. */
    const char *format; /* "hf", "gguf", "llama2c", or NULL: from OUT (*.gguf: GGUF,
                           *.bin: llama2.c, anything else: a Hugging Face directory) */
    const char *tokenizer_path; /* llama2.c input: its tokenizer .bin (NULL: beside IN) */
    int ftype;          /* 0 (default): none. Else a llama.cpp file type
                           (LLAMA_FTYPE_MOSTLY_*, see steer_ftype_parse) whose
                           per-tensor rules, llama-quantize's mix without an
                           importance matrix, choose each matrix's type (Q4_K_M:
                           attn_v and ffn_down Q6_K on some layers, output.weight
                           Q6_K, …); GGUF output only, dtype must be
                           STEER_DTYPE_KEEP. */
} steer_convert_params;

STEER_API steer_convert_params steer_convert_default_params(void);

/* llama.cpp file types (general.file_type, LLAMA_FTYPE_MOSTLY_*) that
 * steer_convert can write as a mix: "q4_0" 2, "q4_1" 3, "q8_0" 7, "q5_0" 8,
 * "q5_1" 9, "q2_k" 10, "q3_k_s" 11, "q3_k_m" 12, "q3_k_l" 13, "q4_k_s" 14,
 * "q4_k_m" 15, "q5_k_s" 16, "q5_k_m" 17, "q6_k" 18, and llama-quantize's
 * aliases "q3_k" (12), "q4_k" (15), "q5_k" (17); case-insensitive. STEER_EARG
 * for any other name (*ftype unchanged). */
STEER_API int steer_ftype_parse(const char *name, int *ftype);
/* llama.cpp's name of a file type number: "F32", "F16", "BF16", "Q4_0",
 * "Q4_K_M", "IQ2_XXS", … (static), or NULL for a number llama.cpp does not
 * define. */
STEER_API const char *steer_ftype_name(int ftype);

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
STEER_API int steer_convert(const char *in, const char *out, const steer_convert_params *p);

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
    steer_act act;          /* STEER_ACT_DEFAULT: the architecture's φ; else SILU,
                               GELU_TANH or GELU (twins)                           */
    const char *tokenizer;  /* NULL: synthetic vocabulary; else a llama2.c
                               tokenizer.bin of exactly n_vocab pieces, written
                               as tokenizer.json (borrowed)                        */
} steer_make_model_params;

/* Defaults for arch: d_model 64, d_ff 128, 2 layers, 4 heads, 2 KV heads,
 * vocab 512, n_ctx 256, seed 1, F32, everything else the architecture's. */
STEER_API steer_make_model_params steer_make_model_default_params(steer_arch arch);

/* Writes a Hugging Face directory out_dir (same rules as steer_convert's HF
 * output) holding random weights: matrices ~ N(0, (0.5/√cols)²) (embeddings
 * and head N(0, 1/d_model)), biases N(0, 0.1²), norm weights 1 + N(0, 0.1²)
 * (Gemma family: w ~ N(0, 0.1²) in HF form), and a synthetic SentencePiece
 * vocabulary (<unk>, <s>, </s>, 256 byte pieces, then "▁", "a".."z" and their
 * concatenations). */
STEER_API int steer_make_model(const steer_make_model_params *p, const char *out_dir);

/* ---------------------------------------------------------------- steering vectors */

/* Extraction math (docs/VECTORS.md). Activations are rows of row-major
 * float32 matrices pos [n_pos, d] and neg [n_neg, d]; results are [d].
 * Sums are accumulated in double. */

/* out = mean(pos rows) − mean(neg rows) (CAA). n_pos, n_neg >= 1. */
STEER_API int steer_vec_mean_diff(const float *pos, int n_pos, const float *neg, int n_neg, int d, float *out);

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
STEER_API int steer_vec_pca(steer_pca_kind kind, const float *pos, int n_pos, const float *neg, int n_neg, int d, float *out,
                  double *explained);

STEER_API double steer_vec_norm(const float *v, int d);                    /* ‖v‖₂ (double)  */
STEER_API double steer_vec_cosine(const float *a, const float *b, int d);  /* 0 if one is 0  */

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

STEER_API int steer_vecset_new(steer_vecset **out);
STEER_API void steer_vecset_free(steer_vecset *vs);
STEER_API int steer_vecset_count(const steer_vecset *vs);
STEER_API steer_vec *steer_vecset_at(const steer_vecset *vs, int i);
STEER_API steer_vec *steer_vecset_find(const steer_vecset *vs, steer_site site, int layer);
/* Sets (copies) the vector at (site, layer), replacing any that is there. */
STEER_API int steer_vecset_set(steer_vecset *vs, steer_site site, int layer, int n_rows, int width, const float *data);
/* dst(site, layer) += alpha·data; a missing entry starts at zero; per-position
 * rows are zero-padded to the longer of the two. STEER_EARG on a width
 * mismatch or when one is per-position and the other is not. */
STEER_API int steer_vecset_accumulate(steer_vecset *dst, steer_site site, int layer, int n_rows, int width, const float *data,
                            float alpha);
/* dst += alpha·src for every vector of src (metadata untouched). */
STEER_API int steer_vecset_add(steer_vecset *dst, const steer_vecset *src, float alpha);
STEER_API void steer_vecset_scale(steer_vecset *vs, float alpha);
/* Every vector (every row) scaled to unit L2 norm; STEER_EARG for a zero one. */
STEER_API int steer_vecset_normalize(steer_vecset *vs);
/* Keeps the vectors whose site_mask[site] (NULL = any) and layer_mask[layer]
 * (NULL = any; layers >= n_layer_mask are dropped) are set. */
STEER_API void steer_vecset_keep(steer_vecset *vs, const unsigned char *site_mask, const unsigned char *layer_mask,
                       int n_layer_mask);

/* Metadata (value NULL removes the key). Keys are listed in insertion order. */
STEER_API int steer_vecset_set_meta(steer_vecset *vs, const char *key, const char *value);
STEER_API const char *steer_vecset_meta(const steer_vecset *vs, const char *key);
STEER_API int steer_vecset_meta_count(const steer_vecset *vs);
STEER_API const char *steer_vecset_meta_key(const steer_vecset *vs, int i);

/* Reads a vector file: safetensors (tensors <site>.<layer>, [d] or [T, d];
 * F32, F16, BF16 or F64 read as F32; every value finite) or, recognised by
 * its GGUF magic, a llama.cpp / repeng control vector (as
 * steer_vecset_load_llamacpp with n_layer = d_model = 0). */
STEER_API int steer_vecset_load(const char *path, steer_vecset **out);
/* Writes tensors <site>.<layer> (F32) and the metadata (format_version = 1
 * added if missing) as safetensors, atomically. */
STEER_API int steer_vecset_save(const steer_vecset *vs, const char *path);

/* A llama.cpp control vector (GGUF, general.architecture = "controlvector"),
 * checked strictly: every tensor is direction.<N> (N written canonically,
 * 1 <= N, and N < n_layer when n_layer > 0), F32, one-dimensional, all of one
 * width (= d_model when d_model > 0). direction.N becomes resid_post.N. */
STEER_API int steer_vecset_load_llamacpp(const char *path, int n_layer, int d_model, steer_vecset **out);
/* Writes the set as a llama.cpp control vector: resid_post.L → direction.L
 * (F32, bit for bit), controlvector.model_hint = model_hint (NULL: the set's
 * model_hint metadata, else ""), controlvector.layer_count = number of
 * tensors. Only one-row resid_post vectors of layers >= 1 can be expressed;
 * anything else is STEER_EARG. Atomic. */
STEER_API int steer_vecset_save_llamacpp(const steer_vecset *vs, const char *path, const char *model_hint);

/* Checks every vector against the model: layer < n_layer and width = the
 * site's width ("<path>: tensor resid_post.3 is 128 wide but resid_post is 64
 * wide in this model"). path names the file in messages. */
STEER_API int steer_vecset_check_model(const steer_vecset *vs, const steer_model *m, const char *path);
/* Adds one STEER_ADD intervention (α·v, all positions, every sequence) per
 * vector, in the set's order. */
STEER_API int steer_vecset_apply(const steer_vecset *vs, steer_ctx *c, float alpha);

#ifdef __cplusplus
}
#endif
#endif /* STEER_H */

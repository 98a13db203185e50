/*
 * src/model/ — tier 3, the top of the core library (libsteer): loaders, the
 * kernels (ops.c), the forward pass, hooks, sampling, steering vectors, chat
 * formats and conversion. Builds on base, formats and tok; nothing here knows
 * about training or experiments. A new kernel goes in ops.c (double reference
 * beside it), a new site in forward.c's HOOK lines (docs/ARCHITECTURE.md).
 *
 * model.h — the loaded model (weights + hyper-parameters + tokenizer) and the
 * inference context (KV cache, scratch, hooks), shared by model.c, forward.c
 * and hooks.c.
 */
#ifndef STEER_MODEL_H
#define STEER_MODEL_H

#include "tok.h"
#include "ops.h"

/* How RoPE pairs dimensions inside a head. llama2.c checkpoints and llama.cpp
 * GGUF (whose converter permutes q/k rows) rotate adjacent pairs (2i, 2i+1);
 * Hugging Face checkpoints rotate (i, i + head_dim/2). */
typedef enum { ROPE_ADJACENT = 0, ROPE_HALF = 1 } rope_style;

/* Norm vectors hold the effective multiplier (HF Gemma's 1 + w already
 * added), so the forward pass has one RMSNorm. */
typedef struct {
    const float *attn_norm; /* [d]                                   */
    steer_mat wq;           /* [n_head*hd, d]                        */
    steer_mat wk;           /* [n_kv*hd, d]                          */
    steer_mat wv;           /* [n_kv*hd, d]                          */
    steer_mat wo;           /* [d, n_head*hd]                        */
    const float *bq, *bk, *bv;  /* [n_head*hd], [kv], [kv] or NULL    */
    const float *q_norm, *k_norm; /* [hd] or NULL (Gemma 3)         */
    const float *post_attn_norm;  /* [d] or NULL (Gemma 2/3)        */
    const float *ffn_norm;  /* [d]                                   */
    steer_mat w_gate;       /* [d_ff, d]                             */
    steer_mat w_up;         /* [d_ff, d]                             */
    steer_mat w_down;       /* [d, d_ff]                             */
    const float *post_ffn_norm;   /* [d] or NULL (Gemma 2/3)        */
    int sliding;            /* 1 = sliding-window attention layer   */
} model_layer;

struct steer_model {
    steer_model_config cfg;
    const arch_info *arch;
    rope_style rope;
    double *rope_freq;       /* [2, hd/2] inverse frequencies: global
                                layers, then sliding layers           */
    steer_mat tok_embd;      /* [V, d]                                */
    model_layer *layers;     /* [n_layer]                             */
    const float *out_norm;   /* [d]                                   */
    steer_mat output;        /* [V, d] (== tok_embd when tied)         */
    tokenizer *tok;          /* owned                                 */
    /* storage the pointers above point into */
    io_map map;              /* llama2.c checkpoint mapping           */
    gg_file *gguf;         /* GGUF file (owns its mapping)          */
    hf_dir *hf;              /* Hugging Face directory                */
    float *owned;            /* norms and biases as f32               */
    size_t n_owned, cap_owned;
};

/* ---------------------------------------------------------------- context */

typedef struct {
    int id;
    steer_hook h;
    void *owned; /* interventions/captures: their state, freed with the hook */
    void (*free_owned)(void *);
} hook_entry;

struct steer_ctx {
    steer_model *m;
    int n_ctx, n_seq, n_threads;

    float *k_cache;    /* [n_layer, n_seq, n_ctx, kv_dim]                   */
    float *v_cache;    /* [n_layer, n_seq, n_ctx, kv_dim]                   */
    float *rope_cos;   /* [2, n_ctx, head_dim/2] global, then sliding layers  */
    float *rope_sin;   /* [2, n_ctx, head_dim/2]                             */
    int *prompt_len;   /* [n_seq]                                            */

    /* scratch, grown to n_cap rows by fwd_reserve */
    int n_cap;
    float *x;          /* [n, d]      residual stream                        */
    float *xb;         /* [n, d]      normed input / sublayer output         */
    float *q;          /* [n, n_head*hd]                                     */
    float *k;          /* [n, kv_dim]                                        */
    float *v;          /* [n, kv_dim]                                        */
    float *att;        /* [n, n_head*hd] attention mix before W_o            */
    float *hg;         /* [n, d_ff]   gate                                   */
    float *hu;         /* [n, d_ff]   up, then act(gate)·up in place          */
    float *scores;     /* [n_threads_max, n_ctx] attention scores            */
    int *seq_tmp;      /* [n]         sequence ids when the batch has none   */
    float *logits;     /* [n_out, V]                                         */
    int *logit_row;    /* [n]         row in logits or -1                    */
    int n_scores;      /* rows in scores                                     */
    int *pos_c;        /* [n]         positions of rows kept by the pruned
                                      last layer of steer_forward_resume     */
    int *seq_c;        /* [n]         their sequence ids                     */

    /* hooks */
    hook_entry *hooks;
    int n_hooks, cap_hooks, next_hook_id;
    uint8_t *want;     /* [SITE_COUNT, n_layer] 1 = some hook wants it        */
};

/* hooks.c: runs every hook that wants (site, layer) on h [b->n, b->width]. */
int hook_run(steer_ctx *c, steer_site site, int layer, float *h, const steer_hook_batch *b);
/* hooks.c: frees every hook's owned state. */
void hook_free_all(steer_ctx *c);

#endif

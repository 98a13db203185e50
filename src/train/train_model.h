/*
 * train_model.h — the model-level training graph: a loaded steer_model turned
 * into a trainable model ("trm") with a forward pass over a batch [B, T] of
 * padded sequences, a loss (completion-only cross-entropy and/or KL to a
 * teacher), and reverse mode into the trainable parameters and into the
 * activations of one chosen site.
 *
 * Like the op layer (train_ops.h) the graph is written once over a type REAL
 * in train_model_impl.h; train_model.c instantiates it for float (the names
 * below, suffixed _f32) and tests/unit/test_train_grad.c instantiates the very same
 * code for double (_f64) to check whole-model gradients against finite
 * differences. docs/TRAINING.md §3 describes the design.
 *
 * The forward reproduces src/forward.c (steer_forward) for every architecture:
 * embedding scale, q/k/v biases, per-head q/k norms, RoPE (adjacent or
 * rotate-half pairs, the per-layer global/sliding table), GQA, attention
 * scale, attention and final soft-caps, sliding windows, the GLU activation,
 * sandwich norms. Trainable interventions sit where steer_forward calls its
 * hooks: the value at a site is replaced by the intervention's output before
 * anything downstream reads it.
 *
 * Trainable sets (SPEC §3, §4 E4), combinable:
 *   full      every model weight (f32 master copies of all tensors);
 *   LoRA      y = W·x + (alpha/rank)·B·(A·x) on chosen projections and layers;
 *   steering  at one site and a layer set: a vector h ← h + v, an adapter
 *             h ← h + α·W_up σ(W_down h), or LoReFT h ← h + Rᵀ(W·h + b − R·h);
 *   joint     LoRA + an adapter, with the adapter's W_down rows projected off
 *             the column space of LoRA's B on down_proj after every step
 *             (trm_project_joint_f32; SPEC E4).
 *
 * Ownership: trm_new_f32 borrows the steer_model (it must outlive the trm:
 * the RoPE frequencies and architecture tables are read from it) and copies
 * every weight it needs to REAL once, so the model's mapping is not read
 * afterwards. Everything else is owned by the trm and released by
 * trm_free_f32: the parameter block, the gradient block, the frozen weights
 * and all activations (one allocation each, plus small bookkeeping arrays).
 * Pointers returned by the accessors are views into those blocks, valid until
 * trm_free_f32 (activations and logits: until the next forward).
 */
#ifndef STEER_TRAIN_MODEL_H
#define STEER_TRAIN_MODEL_H

#include "model.h"
#include "steer_train.h"

#include <stddef.h>
#include <stdint.h>

/* Private ABI (the training graph, used by libsteer-exp): exported from the shared library under
 * steer_-prefixed names (src/base/base.h, "private ABI"). */
#define trm_spec_default steer_trm_spec_default
#define trm_spec_method steer_trm_spec_method
#define trm_new_f32 steer_trm_new_f32
#define trm_free_f32 steer_trm_free_f32
#define trm_init_params_f32 steer_trm_init_params_f32
#define trm_forward_f32 steer_trm_forward_f32
#define trm_backward_f32 steer_trm_backward_f32
#define trm_zero_grad_f32 steer_trm_zero_grad_f32
#define trm_get_loss_f32 steer_trm_get_loss_f32
#define trm_logits_f32 steer_trm_logits_f32
#define trm_site_act_f32 steer_trm_site_act_f32
#define trm_site_grad_f32 steer_trm_site_grad_f32
#define trm_params_f32 steer_trm_params_f32
#define trm_grads_f32 steer_trm_grads_f32
#define trm_numel_f32 steer_trm_numel_f32
#define trm_n_tensors_f32 steer_trm_n_tensors_f32
#define trm_tensor_f32 steer_trm_tensor_f32
#define trm_find_tensor_f32 steer_trm_find_tensor_f32
#define trm_model_numel_f32 steer_trm_model_numel_f32
#define trm_project_joint_f32 steer_trm_project_joint_f32
#define trm_orthonormalize_reft_f32 steer_trm_orthonormalize_reft_f32
#define trm_constrain_f32 steer_trm_constrain_f32
#define trm_joint_overlap_f32 steer_trm_joint_overlap_f32
#define trm_merge_lora_f32 steer_trm_merge_lora_f32


/* ---------------------------------------------------------------- specification */

/* Kind of trainable intervention at the steering site. */
typedef enum {
    TRM_STEER_NONE = 0,
    TRM_STEER_VECTOR,  /* h ← h + v                    params <site>.<l> [w]                    */
    TRM_STEER_ADAPTER, /* h ← h + α·W_up σ(W_down h)   <site>.<l>.down [r, w], .up [w, r]       */
    TRM_STEER_LOREFT,  /* h ← h + Rᵀ(W h + b − R h)    <site>.<l>.rotate [r, w] (R),
                          .source [r, w] (W), .source_bias [r] (b)                             */
} trm_steer_kind;

/* σ of the adapter (torch semantics: GELU is the exact erf form, nn.GELU()). */
typedef enum { TRM_ACT_NONE = 0, TRM_ACT_SILU, TRM_ACT_GELU, TRM_ACT_RELU, TRM_ACT_TANH } trm_act;

/* LoRA target projections (bit mask). */
enum {
    TRM_LORA_Q = 1 << 0, TRM_LORA_K = 1 << 1, TRM_LORA_V = 1 << 2, TRM_LORA_O = 1 << 3,
    TRM_LORA_GATE = 1 << 4, TRM_LORA_UP = 1 << 5, TRM_LORA_DOWN = 1 << 6,
    TRM_LORA_ALL = 0x7f,
};

typedef struct {
    int B, T;                   /* capacity: sequences per batch, positions per
                                   sequence (a forward may use fewer)           */
    int full;                   /* 1: every model weight is trainable          */
    /* LoRA (lora_rank 0 = none) */
    int lora_rank;
    float lora_alpha;           /* scale alpha / rank (PEFT; default 8)         */
    unsigned lora_targets;      /* TRM_LORA_* bits                              */
    const uint8_t *lora_layers; /* [n_layer] nonzero = LoRA here; NULL = all    */
    /* steering (one site, a layer set) */
    trm_steer_kind steer;
    steer_site steer_site;
    const uint8_t *steer_layers;/* [n_layer]; NULL = all                        */
    int steer_rank;             /* adapter / LoReFT rank r (<= site width)      */
    trm_act steer_act;          /* adapter σ                                    */
    float steer_alpha;          /* adapter α (default 1)                        */
    int joint;                  /* 1: LoRA on down_proj + an adapter at a
                                   d_model-wide site, projected by
                                   trm_constrain_f32 (SPEC E4 "joint")          */
    /* gradient at a site: dL/dh at (grad_site, every layer of grad_layers) */
    int grad_site;              /* -1 = none, else a steer_site                 */
    const uint8_t *grad_layers; /* [n_layer]; NULL = all                        */
    int kl_rows;                /* capacity of KL rows per batch (0 = no KL)    */
    uint64_t seed;              /* initialisation of the trainable params       */
} trm_spec;

/* Defaults: B = 1, T = 64, nothing trainable, lora_alpha 8, all LoRA targets,
 * steer_site resid_post, rank 8, σ = SiLU, α = 1, grad_site -1, kl_rows 0,
 * seed 1. The layer masks are copied by trm_new_f32. */
STEER_PRIVATE trm_spec trm_spec_default(void);

/* Applies a named method of SPEC E4 to s (keeps B, T, the masks, grad_site,
 * kl_rows and seed; an adapter's or vector's site stays s->steer_site):
 *   "full"            full fine-tuning
 *   "lora"            LoRA rank 8 (alpha 8) on q, k, v, o, gate, up, down
 *   "vector"          fixed vector
 *   "adapter"         adapter rank 8, SiLU      "adapter-linear"  rank 8, linear
 *   "rank1"           adapter rank 1, linear
 *   "loreft"          LoReFT rank 8
 *   "joint"           LoRA (as "lora") + adapter rank 8 SiLU at resid_post,
 *                     projected every step
 * STEER_EARG for an unknown name (the message lists them). */
STEER_PRIVATE int trm_spec_method(trm_spec *s, const char *method);

/* ---------------------------------------------------------------- parameters */

typedef enum {
    TRM_P_WEIGHT = 0, /* a model tensor (full fine-tuning), HF name        */
    TRM_P_LORA_A,     /* PEFT name …<proj>.lora_A.weight [r, in]           */
    TRM_P_LORA_B,     /* …<proj>.lora_B.weight [out, r]                    */
    TRM_P_VECTOR,     /* <site>.<l> [w]                                    */
    TRM_P_ADAPTER_DOWN, TRM_P_ADAPTER_UP,
    TRM_P_REFT_ROTATE, TRM_P_REFT_SOURCE, TRM_P_REFT_BIAS,
} trm_pkind;

/* One named tensor of the parameter block (and, at the same offset, of the
 * gradient block). */
typedef struct {
    char name[112];
    trm_pkind kind;
    int layer;            /* -1 for global tensors                               */
    int role;             /* weight_role of a model tensor or of the LoRA
                             projection; -1 otherwise                            */
    int n_dims;           /* 1 or 2                                              */
    int64_t shape[2];     /* row-major [rows, cols] ([n] for n_dims 1)           */
    size_t offset, numel; /* elements from the start of the block                */
    int norm_plus_one;    /* a Gemma-family norm: the value is the effective
                             multiplier 1 + w; subtract 1 to write an HF file    */
} trm_param;

/* ---------------------------------------------------------------- batches */

typedef struct {
    int B, T;                   /* this batch (<= the capacity)                  */
    const int *tokens;          /* [B, T] ids; rows t >= lengths[b] are padding
                                   (any value; read as token 0)                  */
    const int *lengths;         /* [B] valid tokens per sequence (0..T); NULL = T */
    const int *targets;         /* [B, T] the id row (b, t) must predict, -1 = not
                                   in the loss (prompt); padding rows are never
                                   in the loss; NULL = no cross-entropy term    */
    int n_kl;                   /* rows in the KL term (<= spec.kl_rows)         */
    const int *kl_rows;         /* [n_kl] row b·T + t of each KL position        */
    const float *teacher_logp;  /* [n_kl, V] the teacher's log-probabilities     */
    int kl_reverse;             /* 0: KL(teacher ‖ model); 1: KL(model ‖ teacher) */
    const uint8_t *steer_mask;  /* [B, T] 0 = no trainable steering at this row;
                                   NULL = every valid row                        */
} trm_batch;

/* The loss of the last forward: loss = ce + kl, ce = mean over the n_ce
 * counted target rows of −log p(target), kl = mean over the n_kl KL rows
 * (0 when a term has no rows). */
typedef struct {
    double loss, ce, kl;
    int n_ce, n_kl;
} trm_loss;

/* ---------------------------------------------------------------- float instance */

typedef struct trm_f32 trm_f32;

/* Builds the training model: validates the spec against the model, lays out
 * and initialises the parameters (SPEC §3: LoRA A Kaiming-uniform
 * U(±1/√in), B = 0; vector 0; adapter W_down Kaiming-uniform U(±1/√w)·1e-3,
 * W_up = 0; LoReFT R with orthonormal rows, W and b U(±1/√w) as nn.Linear;
 * full: the model's weights), copies the frozen weights to REAL and carves the
 * activations for spec.B × spec.T. *out is owned by the caller. */
STEER_PRIVATE int trm_new_f32(const steer_model *m, const trm_spec *spec, trm_f32 **out);
STEER_PRIVATE void trm_free_f32(trm_f32 *t);

/* (Re-)initialises every trainable tensor as trm_new_f32 does (model weights
 * are copied from the model again). */
STEER_PRIVATE void trm_init_params_f32(trm_f32 *t, uint64_t seed);

/* Forward over b (positions 0..T−1 of every sequence, causal attention, each
 * sequence padded at its end), the loss, and every activation kept for the
 * backward. STEER_EARG for a malformed batch (sizes over the capacity, token
 * or target ids outside the vocabulary, a KL row that is padding, …). */
STEER_PRIVATE int trm_forward_f32(trm_f32 *t, const trm_batch *b);

/* Reverse mode of the last forward's loss: ACCUMULATES dL/dθ into the
 * gradient block (call trm_zero_grad_f32 once per step; accumulating several
 * micro-batches sums their per-batch mean losses' gradients) and overwrites
 * the site gradients. STEER_EARG without a preceding forward. */
STEER_PRIVATE int trm_backward_f32(trm_f32 *t);
STEER_PRIVATE void trm_zero_grad_f32(trm_f32 *t);

STEER_PRIVATE trm_loss trm_get_loss_f32(const trm_f32 *t);
/* Logits [B·T, V] of the last forward (after the final soft-cap). */
STEER_PRIVATE const float *trm_logits_f32(const trm_f32 *t);
/* Activations [B·T, width] at (site, layer) of the last forward, as the rest
 * of the network reads them (after the trainable intervention there). */
STEER_PRIVATE const float *trm_site_act_f32(const trm_f32 *t, steer_site site, int layer);
/* dL/dh [B·T, width] at (spec.grad_site, layer) from the last backward, h as
 * in trm_site_act_f32 (after the intervention: the gradient of an additive
 * perturbation there); NULL when the layer was not asked for. Overwritten, not
 * accumulated, by each backward. */
STEER_PRIVATE const float *trm_site_grad_f32(const trm_f32 *t, int layer);

/* The parameter and gradient blocks: [trm_numel_f32] each, laid out as the
 * tensors listed by trm_tensor_f32 (model weights of full fine-tuning in the
 * model's order, then LoRA A/B per layer and projection, then the steering
 * tensors per layer). An optimizer updates params in place. */
STEER_PRIVATE float *trm_params_f32(trm_f32 *t);
STEER_PRIVATE float *trm_grads_f32(trm_f32 *t);
STEER_PRIVATE size_t trm_numel_f32(const trm_f32 *t);
STEER_PRIVATE int trm_n_tensors_f32(const trm_f32 *t);
STEER_PRIVATE const trm_param *trm_tensor_f32(const trm_f32 *t, int i); /* NULL out of range */
STEER_PRIVATE int trm_find_tensor_f32(const trm_f32 *t, const char *name); /* index or -1 */
/* Total elements of the model (every weight), for "share of trainable
 * parameters" tables. */
STEER_PRIVATE size_t trm_model_numel_f32(const trm_f32 *t);

/* Constraints, for the optimizer to call after each step:
 * trm_project_joint_f32 — for every layer with both a LoRA down_proj and an
 *   adapter (d_model wide), projects each row of the adapter's W_down off the
 *   column space of that layer's LoRA B (orthonormal basis by modified
 *   Gram–Schmidt; columns of B that are (numerically) dependent or zero add
 *   nothing, so at init, B = 0, nothing changes). Returns the number of layers
 *   projected.
 * trm_orthonormalize_reft_f32 — re-orthonormalises the rows of every LoReFT
 *   R (modified Gram–Schmidt, twice; a retraction onto the Stiefel manifold,
 *   where pyreft uses torch's orthogonal parametrisation). Returns the number
 *   of matrices.
 * trm_constrain_f32 — both, as the spec calls for (joint projection only when
 *   spec.joint). */
STEER_PRIVATE int trm_project_joint_f32(trm_f32 *t);
STEER_PRIVATE int trm_orthonormalize_reft_f32(trm_f32 *t);
STEER_PRIVATE void trm_constrain_f32(trm_f32 *t);
/* max |W_down·Q| over the rows and layers of the last trm_project_joint_f32
 * before it projected (Q its orthonormal basis of col(B)); 0 before any. */
STEER_PRIVATE double trm_joint_overlap_f32(const trm_f32 *t);

/* Folds every LoRA into its projection, W += (lora_alpha/r)·B·A (sums over r
 * in double), and zeroes B, so the forward computes the same function up to
 * rounding while the model weights (trainable ones under spec.full, else the
 * frozen copies) hold the merged values. Returns the number of projections
 * merged. */
STEER_PRIVATE int trm_merge_lora_f32(trm_f32 *t);

#endif /* STEER_TRAIN_MODEL_H */

/*
 * train_model_impl.h — the model-level training graph, written once over a
 * type REAL (see train_model.h for the API and docs/TRAINING.md §3 for the
 * design).
 *
 * Not a normal header: no include guard; include it after defining
 *   REAL          the element type (float or double),
 *   R_(name)      the instance's name for name (e.g. name##_f32),
 * with the op layer of the same REAL visible (train_ops.h for float, or
 * train_ops_impl.h included beforehand with the same REAL and R_), and
 * optionally
 *   TRM_API       storage class of the API functions (default: external),
 *   TRM_SABOTAGE  test only: deliberate bugs, chosen at run time by the
 *                 variable R_(trm_bug_), prove that the gradient checks fail
 *                 on a wrong backward (compiled out of the library).
 *
 * Layout (llm.c style): the trainable tensors are carved from one parameter
 * block and one gradient block with the same offsets; frozen model weights
 * from a third block; every activation the backward needs, the backward's
 * scratch and the RoPE tables from one activation block sized for the
 * capacity B × T. A forward with a smaller batch uses the first B·T rows of
 * each buffer as a contiguous [B, T, …] array.
 */
#ifndef REAL
#error "define REAL and R_(name) before including train_model_impl.h"
#endif
#ifndef TRM_API
#define TRM_API
#endif

#include "train_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TRM_SABOTAGE
/* 0 = correct; 1 embedding backward without the embedding scale; 2 LoRA
 * backward without alpha/rank; 3 LoReFT dR without the −R·h term; 4 adapter
 * backward without α; 5 attention backward without the sliding window. */
static int R_(trm_bug_) = 0;
#define TRM_BUG(k) (R_(trm_bug_) == (k))
#else
#define TRM_BUG(k) 0
#endif

/* Things that do not depend on REAL: once per translation unit. */
#ifndef TRM_IMPL_COMMON_
#define TRM_IMPL_COMMON_
/* The seven projections of a block, in LoRA-bit order (TRM_LORA_*). */
enum { TRM_PQ_ = 0, TRM_PK_, TRM_PV_, TRM_PO_, TRM_PGATE_, TRM_PUP_, TRM_PDOWN_, TRM_NPROJ_ };
static const weight_role trm_proj_role_[TRM_NPROJ_] = {W_Q, W_K, W_V, W_O, W_GATE, W_UP, W_DOWN};
enum { TRM_COUNT_ = 0, TRM_ASSIGN_ = 1, TRM_LOAD_ = 2 };
static inline uint64_t trm_splitmix_(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double trm_uniform_(uint64_t *s) /* [0, 1) */
{
    return (double)(trm_splitmix_(s) >> 11) * (1.0 / 9007199254740992.0);
}
static inline uint64_t trm_hash_(const char *str)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    while (*str) h = (h ^ (unsigned char)*str++) * 0x100000001b3ull;
    return h;
}
#endif

#define TRM_IS_F32_ (sizeof(REAL) == sizeof(float))

static inline REAL R_(trm_exp_)(REAL x) { return TRM_IS_F32_ ? (REAL)expf((float)x) : (REAL)exp((double)x); }
static inline REAL R_(trm_tanh_)(REAL x) { return TRM_IS_F32_ ? (REAL)tanhf((float)x) : (REAL)tanh((double)x); }
static inline REAL R_(trm_erf_)(REAL x) { return TRM_IS_F32_ ? (REAL)erff((float)x) : (REAL)erf((double)x); }

/* ---------------------------------------------------------------- the struct */

typedef struct R_(trm) R_(trm);

/* One block's weights (or, in the gradient view, their gradients; NULL =
 * frozen or absent). */
typedef struct {
    REAL *attn_norm, *wq, *wk, *wv, *wo, *bq, *bk, *bv, *q_norm, *k_norm, *post_attn_norm, *ffn_norm, *w_gate,
        *w_up, *w_down, *post_ffn_norm;
} R_(trm_lw);

/* LoRA of one projection: y += s·B·(A·x). */
typedef struct {
    REAL *A, *B;   /* [r, in], [out, r]; NULL = no LoRA here     */
    REAL *dA, *dB;
    REAL *h;       /* [N, r] A·x of the last forward              */
} R_(trm_lora);

/* The trainable intervention of one layer. */
typedef struct {
    int on, width;
    REAL *p0, *p1, *p2; /* vector v | adapter W_down, W_up | LoReFT R, W, b */
    REAL *g0, *g1, *g2; /* their gradients                                  */
    REAL *in;           /* [N, w] the site's value before the intervention   */
    REAL *z, *a;        /* adapter: z = W_down·h, a = σ(z) [N, r];
                           LoReFT: z = u = W·h + b − R·h [N, r]               */
} R_(trm_steer);

/* One block's activations. site[s] holds the value at site s as the rest of
 * the network reads it (after the intervention); site[RESID_PRE] aliases the
 * previous block's resid_post (or the embeddings) unless it is steered. */
typedef struct {
    REAL *site[STEER_SITE_COUNT];
    REAL *ln1, *ln1_rstd;           /* RMSNorm_in(resid_pre) [N, d], [N]           */
    REAL *q, *k, *v;                /* projections (+ bias, + LoRA) [N, qd|kvd]    */
    REAL *q_rstd, *k_rstd;          /* per-head q/k norm [N·nh], [N·nkv] (Gemma 3) */
    REAL *qr, *kr;                  /* after q/k norm and RoPE                     */
    REAL *att;                      /* [B, nh, T, T] probabilities                 */
    REAL *atty;                     /* [N, qd] attention mix before W_o            */
    REAL *o_proj, *pa_rstd;         /* W_o·atty and its post-attention norm rstd   */
    REAL *ln2_rstd;                 /* RMSNorm_post(resid_mid) rstd [N]            */
    REAL *down, *pf_rstd;           /* W_d·m and its post-FFN norm rstd            */
    REAL *site_grad;                /* [N, w] dL/dh at grad_site, or NULL          */
} R_(trm_la);

struct R_(trm) {
    const steer_model *m;
    trm_spec spec;
    uint8_t *lora_on, *steer_on, *grad_on; /* [L] each, one allocation          */
    int L, d, ff, V, nh, nkv, hd, qd, kvd, Bc, Tc, Nc, Kc, rmax, wmax, lmin, any_grad;
    REAL lora_scale, eps, embed_scale;

    trm_param *tensors;
    int n_tensors;
    REAL *params, *grads, *frozen; /* the three weight blocks                  */
    size_t n_params, n_frozen, model_numel;

    REAL *tok_embd, *out_norm, *output; /* output == tok_embd when tied          */
    REAL *d_tok_embd, *d_out_norm, *d_output;
    R_(trm_lw) *w, *dw;    /* [L]                                               */
    R_(trm_lora) *lora;    /* [L · 7]                                           */
    R_(trm_steer) *st;     /* [L]                                               */
    R_(trm_la) *la;        /* [L]                                               */

    REAL *acts;            /* the activation block                             */
    size_t n_acts;
    REAL *rope_cos, *rope_sin; /* [2, Tc, hd/2]: global, sliding layers         */
    REAL *emb, *lnf, *lnf_rstd, *logits, *losses, *dlosses;
    REAL *kl_lg, *kl_tl, *kl_dlg, *kl_losses, *kl_dl; /* [Kc, V] ×3, [Kc] ×2    */
    /* backward scratch */
    REAL *dres, *gd1, *gd2, *gf1, *gf2, *gf3, *datty, *dqr, *dq, *dq2, *dkr, *dk, *dk2, *dv, *dscores, *dlogits;
    REAL *sA, *rA, *rB;    /* [N, wmax], [N, rmax] ×2                          */
    int *ints;             /* tokens, targets, pos, rowmask [Nc] each, klrows [Kc] */
    int *tokens, *targets, *pos, *rowmask, *klrows;

    int B, T, N, n_kl, kl_reverse, has_fwd, has_ce;
    trm_loss loss;
    double joint_overlap; /* max |W_down·Q| before the last joint projection */
};

/* ---------------------------------------------------------------- small helpers */

static inline int R_(trm_width_)(const R_(trm) *t, steer_site s)
{
    return (s == STEER_SITE_MLP_GATE || s == STEER_SITE_MLP_UP || s == STEER_SITE_MLP_ACT) ? t->ff : t->d;
}

/* Count mode: *cnt += n, NULL; assign mode: a slice of blk at *cnt. */
static REAL *R_(trm_take_)(REAL *blk, size_t *cnt, size_t n, int assign)
{
    REAL *p = assign ? blk + *cnt : NULL;
    *cnt += n;
    return p;
}

static void R_(trm_zero_)(REAL *x, size_t n) { memset(x, 0, n * sizeof(REAL)); }

/* Where the computation of site s at layer l writes: the intervention's input
 * when (s, l) is steered, else the site buffer itself. */
static inline REAL *R_(trm_dst_)(R_(trm) *t, int l, steer_site s)
{
    const R_(trm_steer) *st = &t->st[l];
    return st->on && t->spec.steer_site == s ? st->in : t->la[l].site[s];
}

/* Projection p of layer l: weight, bias, their gradients, in/out widths. */
static void R_(trm_proj_)(const R_(trm) *t, int l, int p, REAL **W, REAL **dW, REAL **b, REAL **db, int *in, int *out)
{
    const R_(trm_lw) *w = &t->w[l], *g = &t->dw[l];
    *b = *db = NULL;
    switch (p) {
    case TRM_PQ_: *W = w->wq; *dW = g->wq; *b = w->bq; *db = g->bq; *in = t->d; *out = t->qd; break;
    case TRM_PK_: *W = w->wk; *dW = g->wk; *b = w->bk; *db = g->bk; *in = t->d; *out = t->kvd; break;
    case TRM_PV_: *W = w->wv; *dW = g->wv; *b = w->bv; *db = g->bv; *in = t->d; *out = t->kvd; break;
    case TRM_PO_: *W = w->wo; *dW = g->wo; *in = t->qd; *out = t->d; break;
    case TRM_PGATE_: *W = w->w_gate; *dW = g->w_gate; *in = t->d; *out = t->ff; break;
    case TRM_PUP_: *W = w->w_up; *dW = g->w_up; *in = t->d; *out = t->ff; break;
    default: *W = w->w_down; *dW = g->w_down; *in = t->ff; *out = t->d; break;
    }
}

/* ---------------------------------------------------------------- layout: model tensors */

/* Copies n values of a model tensor (any supported dtype) into dst. */
static int R_(trm_load_rows_)(REAL *dst, const void *src, steer_dtype dt, int64_t rows, int64_t cols)
{
    float *tmp = malloc((size_t)cols * sizeof(float));
    if (!tmp) return steer_err(STEER_ENOMEM, "training model: out of memory");
    const size_t rowb = steer_dtype_row_bytes(dt, (size_t)cols); /* quantized: dequantized, the base untouched */
    for (int64_t r = 0; r < rows; r++) {
        ops_to_f32(tmp, (const uint8_t *)src + (size_t)r * rowb, dt, (size_t)cols);
        for (int64_t c = 0; c < cols; c++) dst[r * cols + c] = (REAL)tmp[c];
    }
    free(tmp);
    return STEER_OK;
}

typedef struct {
    int mode;
    size_t np, nf;
    int nt;
    int rc;
} R_(trm_walk);

/* One model tensor: counted, placed (trainable under full fine-tuning, else
 * frozen) or loaded from the model. rows = 0 for a vector. */
static void R_(trm_mt_)(R_(trm) *t, R_(trm_walk) *wk, weight_role role, int layer, int64_t rows, int64_t cols,
                        REAL **dst, REAL **gdst, const steer_mat *mat, const float *vec)
{
    const size_t n = (size_t)((rows ? rows : 1) * cols);
    if (wk->mode == TRM_LOAD_) {
        if (wk->rc) return;
        if (mat) wk->rc = R_(trm_load_rows_)(*dst, mat->data, mat->dtype, rows, cols);
        else
            for (size_t i = 0; i < n; i++) (*dst)[i] = (REAL)vec[i];
        return;
    }
    const int assign = wk->mode == TRM_ASSIGN_;
    if (!assign) t->model_numel += n;
    if (t->spec.full) {
        if (assign) {
            trm_param *p = &t->tensors[wk->nt];
            memset(p, 0, sizeof *p);
            arch_tensor_name(t->m->arch, 0, role, layer < 0 ? 0 : layer, p->name, sizeof p->name);
            p->kind = TRM_P_WEIGHT;
            p->layer = layer;
            p->role = (int)role;
            p->n_dims = rows ? 2 : 1;
            p->shape[0] = rows ? rows : cols;
            p->shape[1] = rows ? cols : 0;
            p->offset = wk->np;
            p->numel = n;
            p->norm_plus_one = weight_is_norm(role) && t->m->arch->norm_plus_one;
        }
        wk->nt++;
        *dst = R_(trm_take_)(t->params, &wk->np, n, assign);
        *gdst = assign ? t->grads + (*dst - t->params) : NULL;
    } else {
        *dst = R_(trm_take_)(t->frozen, &wk->nf, n, assign);
        *gdst = NULL;
    }
}

/* Every model tensor in the model's order (= HF order: embeddings, blocks,
 * final norm, head). */
static void R_(trm_model_tensors_)(R_(trm) *t, R_(trm_walk) *wk)
{
    const steer_model *m = t->m;
    const int64_t d = t->d, V = t->V, qd = t->qd, kvd = t->kvd, ff = t->ff, hd = t->hd;
#define TRM_MT_(role, l, rows, cols, fld, mat, vec)                                                                \
    R_(trm_mt_)(t, wk, (role), (l), (rows), (cols), &t->w[l].fld, &t->dw[l].fld, (mat), (vec))
    R_(trm_mt_)(t, wk, W_TOK_EMBD, -1, V, d, &t->tok_embd, &t->d_tok_embd, &m->tok_embd, NULL);
    for (int l = 0; l < t->L; l++) {
        const model_layer *ly = &m->layers[l];
        TRM_MT_(W_ATTN_NORM, l, 0, d, attn_norm, NULL, ly->attn_norm);
        TRM_MT_(W_Q, l, qd, d, wq, &ly->wq, NULL);
        TRM_MT_(W_K, l, kvd, d, wk, &ly->wk, NULL);
        TRM_MT_(W_V, l, kvd, d, wv, &ly->wv, NULL);
        TRM_MT_(W_O, l, d, qd, wo, &ly->wo, NULL);
        if (ly->bq) {
            TRM_MT_(W_Q_BIAS, l, 0, qd, bq, NULL, ly->bq);
            TRM_MT_(W_K_BIAS, l, 0, kvd, bk, NULL, ly->bk);
            TRM_MT_(W_V_BIAS, l, 0, kvd, bv, NULL, ly->bv);
        }
        if (ly->q_norm) {
            TRM_MT_(W_Q_NORM, l, 0, hd, q_norm, NULL, ly->q_norm);
            TRM_MT_(W_K_NORM, l, 0, hd, k_norm, NULL, ly->k_norm);
        }
        if (ly->post_attn_norm) TRM_MT_(W_POST_ATTN_NORM, l, 0, d, post_attn_norm, NULL, ly->post_attn_norm);
        TRM_MT_(W_FFN_NORM, l, 0, d, ffn_norm, NULL, ly->ffn_norm);
        TRM_MT_(W_GATE, l, ff, d, w_gate, &ly->w_gate, NULL);
        TRM_MT_(W_UP, l, ff, d, w_up, &ly->w_up, NULL);
        TRM_MT_(W_DOWN, l, d, ff, w_down, &ly->w_down, NULL);
        if (ly->post_ffn_norm) TRM_MT_(W_POST_FFN_NORM, l, 0, d, post_ffn_norm, NULL, ly->post_ffn_norm);
    }
#undef TRM_MT_
    R_(trm_mt_)(t, wk, W_OUT_NORM, -1, 0, d, &t->out_norm, &t->d_out_norm, NULL, m->out_norm);
    if (!m->cfg.tied_embeddings) {
        R_(trm_mt_)(t, wk, W_OUTPUT, -1, V, d, &t->output, &t->d_output, &m->output, NULL);
    } else {
        t->output = t->tok_embd; /* tied: the head's gradient adds into the embedding's */
        t->d_output = t->d_tok_embd;
    }
}

/* ---------------------------------------------------------------- layout: adapters */

static void R_(trm_ptensor_)(R_(trm) *t, R_(trm_walk) *wk, trm_pkind kind, int layer, int role, const char *name,
                             int64_t rows, int64_t cols, REAL **dst, REAL **gdst)
{
    const size_t n = (size_t)((rows ? rows : 1) * cols);
    const int assign = wk->mode == TRM_ASSIGN_;
    if (assign) {
        trm_param *p = &t->tensors[wk->nt];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "%s", name);
        p->kind = kind;
        p->layer = layer;
        p->role = role;
        p->n_dims = rows ? 2 : 1;
        p->shape[0] = rows ? rows : cols;
        p->shape[1] = rows ? cols : 0;
        p->offset = wk->np;
        p->numel = n;
    }
    wk->nt++;
    *dst = R_(trm_take_)(t->params, &wk->np, n, assign);
    *gdst = assign ? t->grads + (*dst - t->params) : NULL;
}

static void R_(trm_adapter_tensors_)(R_(trm) *t, R_(trm_walk) *wk)
{
    char name[160], base[128];
    const int r = t->spec.lora_rank;
    for (int l = 0; l < t->L; l++) {
        for (int p = 0; p < TRM_NPROJ_; p++) {
            R_(trm_lora) *lo = &t->lora[l * TRM_NPROJ_ + p];
            if (!r || !t->lora_on[l] || !(t->spec.lora_targets & (1u << p))) continue;
            REAL *W, *dW, *b, *db;
            int in, out;
            R_(trm_proj_)(t, l, p, &W, &dW, &b, &db, &in, &out);
            arch_tensor_name(t->m->arch, 0, trm_proj_role_[p], l, base, sizeof base);
            size_t bl = strlen(base);
            if (bl > 7 && strcmp(base + bl - 7, ".weight") == 0) base[bl - 7] = 0;
            snprintf(name, sizeof name, "base_model.model.%s.lora_A.weight", base);
            R_(trm_ptensor_)(t, wk, TRM_P_LORA_A, l, (int)trm_proj_role_[p], name, r, in, &lo->A, &lo->dA);
            snprintf(name, sizeof name, "base_model.model.%s.lora_B.weight", base);
            R_(trm_ptensor_)(t, wk, TRM_P_LORA_B, l, (int)trm_proj_role_[p], name, out, r, &lo->B, &lo->dB);
        }
    }
    const steer_site s = t->spec.steer_site;
    const int rs = t->spec.steer_rank;
    for (int l = 0; l < t->L; l++) {
        R_(trm_steer) *st = &t->st[l];
        if (!st->on) continue;
        const int w = st->width;
        const char *sn = steer_site_name(s);
        switch (t->spec.steer) {
        case TRM_STEER_VECTOR:
            snprintf(name, sizeof name, "%s.%d", sn, l);
            R_(trm_ptensor_)(t, wk, TRM_P_VECTOR, l, -1, name, 0, w, &st->p0, &st->g0);
            break;
        case TRM_STEER_ADAPTER:
            snprintf(name, sizeof name, "%s.%d.down", sn, l);
            R_(trm_ptensor_)(t, wk, TRM_P_ADAPTER_DOWN, l, -1, name, rs, w, &st->p0, &st->g0);
            snprintf(name, sizeof name, "%s.%d.up", sn, l);
            R_(trm_ptensor_)(t, wk, TRM_P_ADAPTER_UP, l, -1, name, w, rs, &st->p1, &st->g1);
            break;
        case TRM_STEER_LOREFT:
            snprintf(name, sizeof name, "%s.%d.rotate", sn, l);
            R_(trm_ptensor_)(t, wk, TRM_P_REFT_ROTATE, l, -1, name, rs, w, &st->p0, &st->g0);
            snprintf(name, sizeof name, "%s.%d.source", sn, l);
            R_(trm_ptensor_)(t, wk, TRM_P_REFT_SOURCE, l, -1, name, rs, w, &st->p1, &st->g1);
            snprintf(name, sizeof name, "%s.%d.source_bias", sn, l);
            R_(trm_ptensor_)(t, wk, TRM_P_REFT_BIAS, l, -1, name, 0, rs, &st->p2, &st->g2);
            break;
        default: break;
        }
    }
}

/* ---------------------------------------------------------------- layout: activations */

static size_t R_(trm_acts_layout_)(R_(trm) *t, int assign)
{
    size_t c = 0;
    REAL *A = t->acts;
    const size_t N = (size_t)t->Nc, d = t->d, ff = t->ff, qd = t->qd, kvd = t->kvd, V = t->V, K = t->Kc;
    const size_t att = (size_t)t->Bc * t->nh * t->Tc * t->Tc, half = (size_t)t->hd / 2;
    const steer_model_config *cfg = &t->m->cfg;
#define TAKE_(n) R_(trm_take_)(A, &c, (n), assign)
    t->rope_cos = TAKE_(2 * (size_t)t->Tc * half);
    t->rope_sin = TAKE_(2 * (size_t)t->Tc * half);
    t->emb = TAKE_(N * d);
    for (int l = 0; l < t->L; l++) {
        R_(trm_la) *a = &t->la[l];
        R_(trm_steer) *st = &t->st[l];
        REAL *input = l == 0 ? t->emb : t->la[l - 1].site[STEER_SITE_RESID_POST];
        for (int s = 0; s < STEER_SITE_COUNT; s++) {
            const size_t w = (size_t)R_(trm_width_)(t, (steer_site)s);
            const int steered = st->on && t->spec.steer_site == (steer_site)s;
            if (s == STEER_SITE_RESID_PRE) {
                a->site[s] = steered ? TAKE_(N * w) : input;
                if (steered) st->in = input;
            } else {
                a->site[s] = TAKE_(N * w);
                if (steered) st->in = TAKE_(N * w);
            }
        }
        a->ln1 = TAKE_(N * d);
        a->ln1_rstd = TAKE_(N);
        a->q = TAKE_(N * qd);
        a->k = TAKE_(N * kvd);
        a->v = TAKE_(N * kvd);
        a->qr = TAKE_(N * qd);
        a->kr = TAKE_(N * kvd);
        a->q_rstd = cfg->qk_norm ? TAKE_(N * t->nh) : NULL;
        a->k_rstd = cfg->qk_norm ? TAKE_(N * t->nkv) : NULL;
        a->att = TAKE_(att);
        a->atty = TAKE_(N * qd);
        a->o_proj = cfg->sandwich_norms ? TAKE_(N * d) : NULL;
        a->pa_rstd = cfg->sandwich_norms ? TAKE_(N) : NULL;
        a->ln2_rstd = TAKE_(N);
        a->down = cfg->sandwich_norms ? TAKE_(N * d) : NULL;
        a->pf_rstd = cfg->sandwich_norms ? TAKE_(N) : NULL;
        for (int p = 0; p < TRM_NPROJ_; p++) {
            R_(trm_lora) *lo = &t->lora[l * TRM_NPROJ_ + p];
            lo->h = t->spec.lora_rank && t->lora_on[l] && (t->spec.lora_targets & (1u << p))
                        ? TAKE_(N * (size_t)t->spec.lora_rank)
                        : NULL;
        }
        st->z = st->a = NULL;
        if (st->on && t->spec.steer == TRM_STEER_ADAPTER) {
            st->z = TAKE_(N * (size_t)t->spec.steer_rank);
            st->a = TAKE_(N * (size_t)t->spec.steer_rank);
        } else if (st->on && t->spec.steer == TRM_STEER_LOREFT) {
            st->z = TAKE_(N * (size_t)t->spec.steer_rank);
        }
        a->site_grad = t->grad_on[l] ? TAKE_(N * (size_t)R_(trm_width_)(t, (steer_site)t->spec.grad_site)) : NULL;
    }
    t->lnf = TAKE_(N * d);
    t->lnf_rstd = TAKE_(N);
    t->logits = TAKE_(N * V);
    t->losses = TAKE_(N);
    t->dlosses = TAKE_(N);
    t->kl_lg = TAKE_(K * V);
    t->kl_tl = TAKE_(K * V);
    t->kl_dlg = TAKE_(K * V);
    t->kl_losses = TAKE_(K);
    t->kl_dl = TAKE_(K);
    t->dres = TAKE_(N * d);
    t->gd1 = TAKE_(N * d);
    t->gd2 = TAKE_(N * d);
    t->gf1 = TAKE_(N * ff);
    t->gf2 = TAKE_(N * ff);
    t->gf3 = TAKE_(N * ff);
    t->datty = TAKE_(N * qd);
    t->dqr = TAKE_(N * qd);
    t->dq = TAKE_(N * qd);
    t->dq2 = TAKE_(N * qd);
    t->dkr = TAKE_(N * kvd);
    t->dk = TAKE_(N * kvd);
    t->dk2 = TAKE_(N * kvd);
    t->dv = TAKE_(N * kvd);
    t->dscores = TAKE_(att);
    t->dlogits = TAKE_(N * V);
    t->sA = TAKE_(N * (size_t)t->wmax);
    t->rA = TAKE_(N * (size_t)t->rmax);
    t->rB = TAKE_(N * (size_t)t->rmax);
#undef TAKE_
    return c;
}

/* ---------------------------------------------------------------- initialisation */

/* Rows of X [r, w] made orthonormal by modified Gram–Schmidt, two passes
 * (sums in double). A row that vanishes is replaced by a unit vector. */
static void R_(trm_orthonormal_rows_)(REAL *X, int r, int w)
{
    for (int i = 0; i < r; i++) {
        REAL *xi = X + (size_t)i * w;
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < i; j++) {
                const REAL *xj = X + (size_t)j * w;
                double dot = 0;
                for (int c = 0; c < w; c++) dot += (double)xi[c] * xj[c];
                for (int c = 0; c < w; c++) xi[c] -= (REAL)dot * xj[c];
            }
        double nrm = 0;
        for (int c = 0; c < w; c++) nrm += (double)xi[c] * xi[c];
        nrm = sqrt(nrm);
        if (nrm < 1e-12) { /* degenerate: take the first axis not yet spanned */
            for (int e = 0; e < w && nrm < 0.5; e++) {
                for (int c = 0; c < w; c++) xi[c] = c == e ? 1 : 0;
                for (int j = 0; j < i; j++) {
                    const REAL *xj = X + (size_t)j * w;
                    const REAL dot = xj[e];
                    for (int c = 0; c < w; c++) xi[c] -= dot * xj[c];
                }
                nrm = 0;
                for (int c = 0; c < w; c++) nrm += (double)xi[c] * xi[c];
                nrm = sqrt(nrm);
            }
        }
        for (int c = 0; c < w; c++) xi[c] = (REAL)(xi[c] / nrm);
    }
}

static void R_(trm_init_tensor_)(R_(trm) *t, const trm_param *p, uint64_t seed)
{
    REAL *x = t->params + p->offset;
    uint64_t s = seed ^ trm_hash_(p->name);
    const int64_t cols = p->n_dims == 2 ? p->shape[1] : p->shape[0];
    double bound = 1.0 / sqrt((double)cols); /* Kaiming-uniform, a = √5 (nn.Linear, PEFT): U(±1/√fan_in) */
    switch (p->kind) {
    case TRM_P_LORA_B:
    case TRM_P_VECTOR:
    case TRM_P_ADAPTER_UP: R_(trm_zero_)(x, p->numel); break;
    case TRM_P_ADAPTER_DOWN: /* the paper's W_down: Kaiming-uniform × 1e-3 */
    case TRM_P_LORA_A:
    case TRM_P_REFT_SOURCE:
    case TRM_P_REFT_BIAS:
        if (p->kind == TRM_P_ADAPTER_DOWN) bound *= 1e-3;
        if (p->kind == TRM_P_REFT_BIAS) bound = 1.0 / sqrt((double)t->st[p->layer].width); /* nn.Linear bias */
        for (size_t i = 0; i < p->numel; i++) x[i] = (REAL)((2 * trm_uniform_(&s) - 1) * bound);
        break;
    case TRM_P_REFT_ROTATE: /* Gaussian rows, orthonormalised (torch orthogonal_) */
        for (size_t i = 0; i < p->numel; i++) {
            double u1 = trm_uniform_(&s), u2 = trm_uniform_(&s);
            x[i] = (REAL)(sqrt(-2.0 * log(1.0 - u1)) * cos(2 * M_PI * u2));
        }
        R_(trm_orthonormal_rows_)(x, (int)p->shape[0], (int)p->shape[1]);
        break;
    default: break; /* model weights: loaded */
    }
}

TRM_API void R_(trm_init_params)(R_(trm) *t, uint64_t seed)
{
    if (t->spec.full) {
        R_(trm_walk) wk = {.mode = TRM_LOAD_};
        R_(trm_model_tensors_)(t, &wk);
    }
    for (int i = 0; i < t->n_tensors; i++) R_(trm_init_tensor_)(t, &t->tensors[i], seed);
}

/* ---------------------------------------------------------------- build / free */

TRM_API void R_(trm_free)(R_(trm) *t)
{
    if (!t) return;
    free(t->tensors);
    free(t->params);
    free(t->grads);
    free(t->frozen);
    free(t->acts);
    free(t->ints);
    free(t->lora_on);
    free(t->w);
    free(t->dw);
    free(t->lora);
    free(t->st);
    free(t->la);
    free(t);
}

static int R_(trm_check_spec_)(const steer_model *m, const trm_spec *s)
{
    const steer_model_config *c = &m->cfg;
    if (s->B <= 0 || s->T <= 0 || s->B > 1 << 16 || s->T > 1 << 20)
        return steer_err(STEER_EARG, "training model: batch capacity %d x %d is not positive", s->B, s->T);
    if (s->kl_rows < 0 || s->kl_rows > s->B * s->T)
        return steer_err(STEER_EARG, "training model: kl_rows %d outside 0..%d", s->kl_rows, s->B * s->T);
    if (s->lora_rank < 0 || (s->lora_rank > 0 && !(s->lora_targets & TRM_LORA_ALL)))
        return steer_err(STEER_EARG, "training model: LoRA rank %d with no target projection", s->lora_rank);
    if (s->lora_rank > 0 && !(s->lora_alpha > 0))
        return steer_err(STEER_EARG, "training model: LoRA alpha must be > 0");
    if ((unsigned)s->steer > TRM_STEER_LOREFT) return steer_err(STEER_EARG, "training model: unknown steering kind");
    if (s->steer != TRM_STEER_NONE) {
        if ((unsigned)s->steer_site >= STEER_SITE_COUNT)
            return steer_err(STEER_EARG, "training model: unknown steering site %d", (int)s->steer_site);
        const int w = steer_model_site_width(m, s->steer_site);
        if (s->steer != TRM_STEER_VECTOR && (s->steer_rank <= 0 || s->steer_rank > w))
            return steer_err(STEER_EARG, "training model: rank %d outside 1..%d (the width of %s)", s->steer_rank, w,
                             steer_site_name(s->steer_site));
        if ((unsigned)s->steer_act > TRM_ACT_TANH) return steer_err(STEER_EARG, "training model: unknown adapter σ");
    }
    if (s->grad_site >= STEER_SITE_COUNT || s->grad_site < -1)
        return steer_err(STEER_EARG, "training model: unknown gradient site %d", s->grad_site);
    if (s->joint) {
        if (!(s->lora_rank > 0 && (s->lora_targets & TRM_LORA_DOWN)))
            return steer_err(STEER_EARG, "training model: joint needs LoRA on down_proj");
        if (s->steer != TRM_STEER_ADAPTER || steer_model_site_width(m, s->steer_site) != c->d_model)
            return steer_err(STEER_EARG, "training model: joint needs an adapter at a d_model-wide site");
    }
    steer_dtype qdt = steer_dtype_is_quantized(m->tok_embd.dtype) ? m->tok_embd.dtype
                      : steer_dtype_is_quantized(m->output.dtype) ? m->output.dtype
                                                                  : STEER_DTYPE_F32;
    for (int l = 0; l < c->n_layer; l++) {
        const steer_mat *ms[] = {&m->layers[l].wq, &m->layers[l].wk, &m->layers[l].wv, &m->layers[l].wo,
                                 &m->layers[l].w_gate, &m->layers[l].w_up, &m->layers[l].w_down};
        for (int k = 0; k < 7; k++)
            if (steer_dtype_is_quantized(ms[k]->dtype)) qdt = ms[k]->dtype;
    }
    if (s->full && qdt != STEER_DTYPE_F32)
        return steer_err(STEER_EUNSUPPORTED,
                         "training model: full fine-tuning needs float weights, and this model's are quantized (%s): "
                         "its updates would be lost to the quantization grid; convert it to f32/bf16 first "
                         "(steer convert --dtype f32), or train a vector, adapter, LoReFT or LoRA on the frozen "
                         "quantized base",
                         steer_dtype_name(qdt));
    if (c->head_dim % 2 || c->n_head % c->n_kv_head)
        return steer_err(STEER_EUNSUPPORTED, "training model: head layout %d/%d/%d", c->n_head, c->n_kv_head,
                         c->head_dim);
    return STEER_OK;
}

TRM_API int R_(trm_new)(const steer_model *m, const trm_spec *spec, R_(trm) **out)
{
    *out = NULL;
    int rc = R_(trm_check_spec_)(m, spec);
    if (rc) return rc;
    const steer_model_config *c = &m->cfg;
    R_(trm) *t = calloc(1, sizeof *t);
    if (!t) return steer_err(STEER_ENOMEM, "training model: out of memory");
    t->m = m;
    t->spec = *spec;
    t->L = c->n_layer, t->d = c->d_model, t->ff = c->d_ff, t->V = c->n_vocab, t->nh = c->n_head;
    t->nkv = c->n_kv_head, t->hd = c->head_dim, t->qd = t->nh * t->hd, t->kvd = t->nkv * t->hd;
    t->Bc = spec->B, t->Tc = spec->T, t->Nc = spec->B * spec->T, t->Kc = spec->kl_rows;
    t->lora_scale = spec->lora_rank > 0 ? (REAL)(spec->lora_alpha / spec->lora_rank) : 0;
    t->eps = (REAL)c->rms_eps;
    t->embed_scale = (REAL)c->embed_scale;
    int rm = spec->lora_rank > spec->steer_rank ? spec->lora_rank : spec->steer_rank;
    t->rmax = rm > 1 ? rm : 1;
    int wm = t->d > t->ff ? t->d : t->ff;
    wm = wm > t->qd ? wm : t->qd;
    t->wmax = wm;
    const int L = t->L;
    t->lora_on = calloc((size_t)3 * L, 1);
    t->w = calloc((size_t)L, sizeof *t->w);
    t->dw = calloc((size_t)L, sizeof *t->dw);
    t->lora = calloc((size_t)L * TRM_NPROJ_, sizeof *t->lora);
    t->st = calloc((size_t)L, sizeof *t->st);
    t->la = calloc((size_t)L, sizeof *t->la);
    if (!t->lora_on || !t->w || !t->dw || !t->lora || !t->st || !t->la) goto oom;
    t->steer_on = t->lora_on + L;
    t->grad_on = t->lora_on + 2 * L;
    t->lmin = L;
    for (int l = 0; l < L; l++) {
        t->lora_on[l] = spec->lora_rank > 0 && (!spec->lora_layers || spec->lora_layers[l]);
        t->steer_on[l] = spec->steer != TRM_STEER_NONE && (!spec->steer_layers || spec->steer_layers[l]);
        t->grad_on[l] = spec->grad_site >= 0 && (!spec->grad_layers || spec->grad_layers[l]);
        t->st[l].on = t->steer_on[l];
        t->st[l].width = spec->steer != TRM_STEER_NONE ? R_(trm_width_)(t, spec->steer_site) : 0;
        if ((t->lora_on[l] || t->steer_on[l] || t->grad_on[l]) && l < t->lmin) t->lmin = l;
    }
    if (spec->full) t->lmin = 0;
    t->any_grad = spec->full || t->lmin < L;

    /* parameters: count, allocate, place */
    R_(trm_walk) wk = {.mode = TRM_COUNT_};
    R_(trm_model_tensors_)(t, &wk);
    R_(trm_adapter_tensors_)(t, &wk);
    t->n_params = wk.np, t->n_frozen = wk.nf, t->n_tensors = wk.nt;
    t->tensors = calloc((size_t)(wk.nt > 0 ? wk.nt : 1), sizeof *t->tensors);
    t->params = calloc(wk.np > 0 ? wk.np : 1, sizeof(REAL));
    t->grads = calloc(wk.np > 0 ? wk.np : 1, sizeof(REAL));
    t->frozen = calloc(wk.nf > 0 ? wk.nf : 1, sizeof(REAL));
    if (!t->tensors || !t->params || !t->grads || !t->frozen) goto oom;
    wk = (R_(trm_walk)){.mode = TRM_ASSIGN_};
    R_(trm_model_tensors_)(t, &wk);
    R_(trm_adapter_tensors_)(t, &wk);
    wk = (R_(trm_walk)){.mode = TRM_LOAD_};
    R_(trm_model_tensors_)(t, &wk);
    if (wk.rc) {
        R_(trm_free)(t);
        return wk.rc;
    }

    /* activations */
    t->n_acts = R_(trm_acts_layout_)(t, 0);
    t->acts = calloc(t->n_acts, sizeof(REAL));
    t->ints = calloc((size_t)4 * t->Nc + (size_t)(t->Kc > 0 ? t->Kc : 1), sizeof(int));
    if (!t->acts || !t->ints) goto oom;
    R_(trm_acts_layout_)(t, 1);
    t->tokens = t->ints, t->targets = t->ints + t->Nc, t->pos = t->ints + 2 * t->Nc;
    t->rowmask = t->ints + 3 * t->Nc, t->klrows = t->ints + 4 * t->Nc;

    /* RoPE tables as steer_ctx_new builds them: angle in double, cos/sin rounded */
    const int half = t->hd / 2;
    for (int k = 0; k < 2; k++)
        for (int p = 0; p < t->Tc; p++)
            for (int i = 0; i < half; i++) {
                const double a = (double)p * m->rope_freq[k * half + i];
                const size_t at = ((size_t)k * t->Tc + p) * half + i;
                t->rope_cos[at] = (REAL)(float)cos(a);
                t->rope_sin[at] = (REAL)(float)sin(a);
            }
    for (int i = 0; i < t->n_tensors; i++) R_(trm_init_tensor_)(t, &t->tensors[i], spec->seed);
    *out = t;
    return STEER_OK;
oom:
    R_(trm_free)(t);
    return steer_err(STEER_ENOMEM, "training model: out of memory for a batch of %d x %d", spec->B, spec->T);
}

/* ---------------------------------------------------------------- pieces of the forward */

/* σ of the adapter, element-wise; dz = da·σ'(z) (overwrites dz). */
static void R_(trm_act_fwd_)(REAL *a, const REAL *z, size_t n, trm_act act)
{
    for (size_t i = 0; i < n; i++) {
        const REAL x = z[i];
        switch (act) {
        case TRM_ACT_SILU: a[i] = x / (1 + R_(trm_exp_)(-x)); break;
        case TRM_ACT_GELU: a[i] = (REAL)0.5 * x * (1 + R_(trm_erf_)(x * (REAL)0.7071067811865475)); break;
        case TRM_ACT_RELU: a[i] = x > 0 ? x : 0; break;
        case TRM_ACT_TANH: a[i] = R_(trm_tanh_)(x); break;
        default: a[i] = x; break;
        }
    }
}

static void R_(trm_act_bwd_)(REAL *dz, const REAL *da, const REAL *z, size_t n, trm_act act)
{
    for (size_t i = 0; i < n; i++) {
        const REAL x = z[i];
        REAL g;
        switch (act) {
        case TRM_ACT_SILU: {
            const REAL sg = 1 / (1 + R_(trm_exp_)(-x));
            g = sg * (1 + x * (1 - sg));
            break;
        }
        case TRM_ACT_GELU:
            g = (REAL)0.5 * (1 + R_(trm_erf_)(x * (REAL)0.7071067811865475)) +
                x * (REAL)0.3989422804014327 * R_(trm_exp_)((REAL)-0.5 * x * x);
            break;
        case TRM_ACT_RELU: g = x > 0 ? 1 : 0; break;
        case TRM_ACT_TANH: {
            const REAL th = R_(trm_tanh_)(x);
            g = 1 - th * th;
            break;
        }
        default: g = 1; break;
        }
        dz[i] = da[i] * g;
    }
}

/* out = x·Wᵀ + bias (+ s·(x·Aᵀ)·Bᵀ with LoRA) for projection p of layer l. */
static void R_(trm_proj_fwd_)(R_(trm) *t, int l, int p, REAL *out, const REAL *x)
{
    REAL *W, *dW, *b, *db;
    int in, od;
    R_(trm_proj_)(t, l, p, &W, &dW, &b, &db, &in, &od);
    R_(tr_matmul_forward)(out, x, W, b, t->N, in, od);
    const R_(trm_lora) *lo = &t->lora[l * TRM_NPROJ_ + p];
    if (lo->A) {
        const int r = t->spec.lora_rank;
        R_(tr_matmul_forward)(lo->h, x, lo->A, NULL, t->N, in, r);
        R_(tr_matmul_forward)(t->sA, lo->h, lo->B, NULL, t->N, r, od);
        const size_t n = (size_t)t->N * od;
        for (size_t i = 0; i < n; i++) out[i] += t->lora_scale * t->sA[i];
    }
}

/* dx += dout·W (+ LoRA), and the trainable weights' gradients. */
static void R_(trm_proj_bwd_)(R_(trm) *t, int l, int p, REAL *dx, const REAL *dout, const REAL *x)
{
    REAL *W, *dW, *b, *db;
    int in, od;
    R_(trm_proj_)(t, l, p, &W, &dW, &b, &db, &in, &od);
    R_(tr_matmul_backward)(dx, dW, db, dout, x, W, t->N, in, od);
    const R_(trm_lora) *lo = &t->lora[l * TRM_NPROJ_ + p];
    if (lo->A) {
        const int r = t->spec.lora_rank;
        const size_t n = (size_t)t->N * od;
        const REAL s = TRM_BUG(2) ? 1 : t->lora_scale;
        for (size_t i = 0; i < n; i++) t->sA[i] = s * dout[i];
        R_(trm_zero_)(t->rA, (size_t)t->N * r);
        R_(tr_matmul_backward)(t->rA, lo->dB, NULL, t->sA, lo->h, lo->B, t->N, r, od);
        R_(tr_matmul_backward)(dx, lo->dA, NULL, t->rA, x, lo->A, t->N, in, r);
    }
}

/* The trainable intervention at (s, l), if any: site[s] = f(in). Rows with
 * rowmask 0 (padding, or the batch's steer_mask) pass through unchanged. */
static void R_(trm_steer_fwd_)(R_(trm) *t, int l, steer_site s)
{
    R_(trm_steer) *st = &t->st[l];
    if (!st->on || t->spec.steer_site != s) return;
    const int N = t->N, w = st->width, r = t->spec.steer_rank;
    const REAL *in = st->in;
    REAL *out = t->la[l].site[s];
    switch (t->spec.steer) {
    case TRM_STEER_VECTOR:
        for (int n = 0; n < N; n++)
            for (int j = 0; j < w; j++)
                out[(size_t)n * w + j] = t->rowmask[n] ? in[(size_t)n * w + j] + st->p0[j] : in[(size_t)n * w + j];
        break;
    case TRM_STEER_ADAPTER: {
        const REAL alpha = (REAL)t->spec.steer_alpha;
        R_(tr_matmul_forward)(st->z, in, st->p0, NULL, N, w, r);
        R_(trm_act_fwd_)(st->a, st->z, (size_t)N * r, t->spec.steer_act);
        for (int n = 0; n < N; n++)
            if (!t->rowmask[n]) R_(trm_zero_)(st->a + (size_t)n * r, (size_t)r);
        R_(tr_matmul_forward)(out, st->a, st->p1, NULL, N, r, w);
        for (size_t i = 0; i < (size_t)N * w; i++) out[i] = in[i] + alpha * out[i];
        break;
    }
    case TRM_STEER_LOREFT: {
        /* u = W·h + b − R·h (zero on rows not steered); out = h + u·R */
        R_(tr_matmul_forward)(st->z, in, st->p1, st->p2, N, w, r);
        R_(tr_matmul_forward)(t->rA, in, st->p0, NULL, N, w, r);
        for (int n = 0; n < N; n++)
            for (int k = 0; k < r; k++) {
                const size_t i = (size_t)n * r + k;
                st->z[i] = t->rowmask[n] ? st->z[i] - t->rA[i] : 0;
            }
        memcpy(out, in, (size_t)N * w * sizeof(REAL));
        R_(tr_matmul_backward)(out, NULL, NULL, st->z, in, st->p0, N, w, r); /* out += u·R */
        break;
    }
    default: break;
    }
}

/* Backward through the site (s, l): g [N, w] holds dL/d site[s]; the site
 * gradient is recorded, then g becomes dL/d(the intervention's input) in place
 * and the intervention's parameters get their gradients. */
static void R_(trm_site_bwd_)(R_(trm) *t, int l, steer_site s, REAL *g)
{
    const int N = t->N;
    if (t->la[l].site_grad && t->spec.grad_site == (int)s)
        memcpy(t->la[l].site_grad, g, (size_t)N * R_(trm_width_)(t, s) * sizeof(REAL));
    R_(trm_steer) *st = &t->st[l];
    if (!st->on || t->spec.steer_site != s) return;
    const int w = st->width, r = t->spec.steer_rank;
    REAL *gs = t->sA; /* dL/d out on the steered rows, 0 elsewhere */
    for (int n = 0; n < N; n++) {
        if (t->rowmask[n]) memcpy(gs + (size_t)n * w, g + (size_t)n * w, (size_t)w * sizeof(REAL));
        else R_(trm_zero_)(gs + (size_t)n * w, (size_t)w);
    }
    switch (t->spec.steer) {
    case TRM_STEER_VECTOR: /* dv = Σ_n gs[n] (double, rows in order) */
        for (int j = 0; j < w; j++) {
            double acc = 0;
            for (int n = 0; n < N; n++) acc += (double)gs[(size_t)n * w + j];
            st->g0[j] += (REAL)acc;
        }
        break;
    case TRM_STEER_ADAPTER: {
        const REAL alpha = TRM_BUG(4) ? 1 : (REAL)t->spec.steer_alpha;
        for (size_t i = 0; i < (size_t)N * w; i++) gs[i] *= alpha;                 /* dy = α·dout       */
        R_(trm_zero_)(t->rA, (size_t)N * r);
        R_(tr_matmul_backward)(t->rA, st->g1, NULL, gs, st->a, st->p1, N, r, w);   /* da, dW_up         */
        R_(trm_act_bwd_)(t->rB, t->rA, st->z, (size_t)N * r, t->spec.steer_act);   /* dz                */
        R_(tr_matmul_backward)(g, st->g0, NULL, t->rB, st->in, st->p0, N, w, r);   /* dh += dz·W_down   */
        break;
    }
    case TRM_STEER_LOREFT: {
        /* out = h + Rᵀu, u = W·h + b − R·h:
         *   du = gs·Rᵀ; dR += uᵀ·gs − duᵀ·h; dW += duᵀ·h; db += Σ du; dh += du·(W − R) */
        R_(tr_matmul_forward)(t->rA, gs, st->p0, NULL, N, w, r);                  /* du                */
        R_(tr_matmul_backward)(NULL, st->g0, NULL, st->z, gs, st->p0, N, w, r);   /* dR += uᵀ·gs       */
        R_(tr_matmul_backward)(g, st->g1, st->g2, t->rA, st->in, st->p1, N, w, r);/* dW, db, dh += du·W */
        for (size_t i = 0; i < (size_t)N * r; i++) t->rB[i] = -t->rA[i];
        R_(tr_matmul_backward)(g, TRM_BUG(3) ? NULL : st->g0, NULL, t->rB, st->in, st->p0, N, w, r);
        break;
    }
    default: break;
    }
}

/* ---------------------------------------------------------------- forward */

TRM_API int R_(trm_forward)(R_(trm) *t, const trm_batch *b)
{
    t->has_fwd = 0;
    if (!b || !b->tokens) return steer_err(STEER_EARG, "training forward: no batch");
    if (b->B <= 0 || b->T <= 0 || b->B > t->Bc || b->T > t->Tc)
        return steer_err(STEER_EARG, "training forward: batch %d x %d outside the capacity %d x %d", b->B, b->T, t->Bc,
                         t->Tc);
    if (b->n_kl < 0 || b->n_kl > t->Kc)
        return steer_err(STEER_EARG, "training forward: %d KL rows, capacity %d (spec.kl_rows)", b->n_kl, t->Kc);
    if (b->n_kl > 0 && (!b->kl_rows || !b->teacher_logp))
        return steer_err(STEER_EARG, "training forward: KL rows without kl_rows or teacher_logp");
    const int B = b->B, T = b->T, N = B * T, V = t->V, d = t->d, ff = t->ff;
    for (int bi = 0; bi < B; bi++) {
        const int len = b->lengths ? b->lengths[bi] : T;
        if (len < 0 || len > T)
            return steer_err(STEER_EARG, "training forward: sequence %d has length %d outside 0..%d", bi, len, T);
        for (int ti = 0; ti < T; ti++) {
            const int n = bi * T + ti, valid = ti < len;
            if (valid && (b->tokens[n] < 0 || b->tokens[n] >= V))
                return steer_err(STEER_EARG, "training forward: token id %d at (%d, %d) outside 0..%d", b->tokens[n],
                                 bi, ti, V - 1);
            const int tg = valid && b->targets ? b->targets[n] : -1;
            if (tg < -1 || tg >= V)
                return steer_err(STEER_EARG, "training forward: target %d at (%d, %d) outside -1..%d", tg, bi, ti,
                                 V - 1);
            t->tokens[n] = valid ? b->tokens[n] : 0;
            t->targets[n] = tg;
            t->pos[n] = ti;
            t->rowmask[n] = valid && (!b->steer_mask || b->steer_mask[n]);
        }
    }
    for (int k = 0; k < b->n_kl; k++) {
        const int n = b->kl_rows[k];
        const int len = n >= 0 && n < N ? (b->lengths ? b->lengths[n / T] : T) : 0;
        if (n < 0 || n >= N || n % T >= len)
            return steer_err(STEER_EARG, "training forward: KL row %d is outside the batch or padding", n);
        t->klrows[k] = n;
    }
    t->B = B, t->T = T, t->N = N, t->n_kl = b->n_kl, t->kl_reverse = b->kl_reverse, t->has_ce = b->targets != NULL;
    const steer_model_config *cfg = &t->m->cfg;
    const int half = t->hd / 2;

    R_(tr_embedding_forward)(t->emb, t->tokens, t->tok_embd, N, d, t->embed_scale);
    for (int l = 0; l < t->L; l++) {
        R_(trm_la) *a = &t->la[l];
        const R_(trm_lw) *w = &t->w[l];
        const int sliding = t->m->layers[l].sliding;
        const REAL *cs = t->rope_cos + (size_t)sliding * t->Tc * half, *sn = t->rope_sin + (size_t)sliding * t->Tc * half;
        R_(trm_steer_fwd_)(t, l, STEER_SITE_RESID_PRE);
        const REAL *x = a->site[STEER_SITE_RESID_PRE];
        /* attention */
        R_(tr_rmsnorm_forward)(a->ln1, a->ln1_rstd, x, w->attn_norm, N, d, t->eps);
        R_(trm_proj_fwd_)(t, l, TRM_PQ_, a->q, a->ln1);
        R_(trm_proj_fwd_)(t, l, TRM_PK_, a->k, a->ln1);
        R_(trm_proj_fwd_)(t, l, TRM_PV_, a->v, a->ln1);
        if (w->q_norm) { /* Gemma 3: RMSNorm over each head, then RoPE in place */
            R_(tr_rmsnorm_forward)(a->qr, a->q_rstd, a->q, w->q_norm, N * t->nh, t->hd, t->eps);
            R_(tr_rmsnorm_forward)(a->kr, a->k_rstd, a->k, w->k_norm, N * t->nkv, t->hd, t->eps);
            R_(tr_rope_forward)(a->qr, a->qr, cs, sn, t->pos, N, t->nh, t->hd, t->m->rope);
            R_(tr_rope_forward)(a->kr, a->kr, cs, sn, t->pos, N, t->nkv, t->hd, t->m->rope);
        } else {
            R_(tr_rope_forward)(a->qr, a->q, cs, sn, t->pos, N, t->nh, t->hd, t->m->rope);
            R_(tr_rope_forward)(a->kr, a->k, cs, sn, t->pos, N, t->nkv, t->hd, t->m->rope);
        }
        R_(tr_attention_forward)(a->atty, a->att, a->qr, a->kr, a->v, B, T, t->nh, t->nkv, t->hd, (REAL)cfg->attn_scale,
                                 (REAL)cfg->attn_softcap, sliding ? cfg->sliding_window : 0);
        REAL *ao = R_(trm_dst_)(t, l, STEER_SITE_ATTN_OUT);
        if (w->post_attn_norm) { /* Gemma 2/3 */
            R_(trm_proj_fwd_)(t, l, TRM_PO_, a->o_proj, a->atty);
            R_(tr_rmsnorm_forward)(ao, a->pa_rstd, a->o_proj, w->post_attn_norm, N, d, t->eps);
        } else {
            R_(trm_proj_fwd_)(t, l, TRM_PO_, ao, a->atty);
        }
        R_(trm_steer_fwd_)(t, l, STEER_SITE_ATTN_OUT);
        R_(tr_residual_forward)(R_(trm_dst_)(t, l, STEER_SITE_RESID_MID), x, a->site[STEER_SITE_ATTN_OUT], (size_t)N * d);
        R_(trm_steer_fwd_)(t, l, STEER_SITE_RESID_MID);
        /* MLP */
        R_(tr_rmsnorm_forward)(R_(trm_dst_)(t, l, STEER_SITE_MLP_IN), a->ln2_rstd, a->site[STEER_SITE_RESID_MID],
                               w->ffn_norm, N, d, t->eps);
        R_(trm_steer_fwd_)(t, l, STEER_SITE_MLP_IN);
        R_(trm_proj_fwd_)(t, l, TRM_PGATE_, R_(trm_dst_)(t, l, STEER_SITE_MLP_GATE), a->site[STEER_SITE_MLP_IN]);
        R_(trm_steer_fwd_)(t, l, STEER_SITE_MLP_GATE);
        R_(trm_proj_fwd_)(t, l, TRM_PUP_, R_(trm_dst_)(t, l, STEER_SITE_MLP_UP), a->site[STEER_SITE_MLP_IN]);
        R_(trm_steer_fwd_)(t, l, STEER_SITE_MLP_UP);
        R_(tr_glu_forward)(R_(trm_dst_)(t, l, STEER_SITE_MLP_ACT), a->site[STEER_SITE_MLP_GATE],
                           a->site[STEER_SITE_MLP_UP], (size_t)N * ff, cfg->act);
        R_(trm_steer_fwd_)(t, l, STEER_SITE_MLP_ACT);
        REAL *mo = R_(trm_dst_)(t, l, STEER_SITE_MLP_OUT);
        if (w->post_ffn_norm) { /* Gemma 2/3 */
            R_(trm_proj_fwd_)(t, l, TRM_PDOWN_, a->down, a->site[STEER_SITE_MLP_ACT]);
            R_(tr_rmsnorm_forward)(mo, a->pf_rstd, a->down, w->post_ffn_norm, N, d, t->eps);
        } else {
            R_(trm_proj_fwd_)(t, l, TRM_PDOWN_, mo, a->site[STEER_SITE_MLP_ACT]);
        }
        R_(trm_steer_fwd_)(t, l, STEER_SITE_MLP_OUT);
        R_(tr_residual_forward)(R_(trm_dst_)(t, l, STEER_SITE_RESID_POST), a->site[STEER_SITE_RESID_MID],
                                a->site[STEER_SITE_MLP_OUT], (size_t)N * d);
        R_(trm_steer_fwd_)(t, l, STEER_SITE_RESID_POST);
    }

    /* head */
    const REAL *xL = t->la[t->L - 1].site[STEER_SITE_RESID_POST];
    R_(tr_rmsnorm_forward)(t->lnf, t->lnf_rstd, xL, t->out_norm, N, d, t->eps);
    R_(tr_matmul_forward)(t->logits, t->lnf, t->output, NULL, N, d, V);
    if (cfg->final_softcap > 0)
        R_(tr_softcap_forward)(t->logits, t->logits, (size_t)N * V, (REAL)cfg->final_softcap);

    /* losses */
    trm_loss L = {0};
    if (t->has_ce) {
        L.n_ce = R_(tr_crossentropy_forward)(t->losses, t->logits, t->targets, N, V);
        double s = 0;
        for (int n = 0; n < N; n++) s += (double)t->losses[n];
        L.ce = L.n_ce > 0 ? s / L.n_ce : 0;
    }
    if (t->n_kl > 0) {
        const int K = t->n_kl;
        for (int k = 0; k < K; k++) {
            memcpy(t->kl_lg + (size_t)k * V, t->logits + (size_t)t->klrows[k] * V, (size_t)V * sizeof(REAL));
            for (int v = 0; v < V; v++) t->kl_tl[(size_t)k * V + v] = (REAL)b->teacher_logp[(size_t)k * V + v];
        }
        L.n_kl = t->kl_reverse ? R_(tr_kl_reverse_forward)(t->kl_losses, t->kl_lg, t->kl_tl, NULL, K, V)
                               : R_(tr_kl_forward)(t->kl_losses, t->kl_lg, t->kl_tl, NULL, K, V);
        double s = 0;
        for (int k = 0; k < K; k++) s += (double)t->kl_losses[k];
        L.kl = s / K;
    }
    L.loss = L.ce + L.kl;
    t->loss = L;
    t->has_fwd = 1;
    return STEER_OK;
}

/* ---------------------------------------------------------------- backward */

TRM_API int R_(trm_backward)(R_(trm) *t)
{
    if (!t->has_fwd) return steer_err(STEER_EARG, "training backward: no forward to differentiate");
    const steer_model_config *cfg = &t->m->cfg;
    const int B = t->B, T = t->T, N = t->N, V = t->V, d = t->d, ff = t->ff, qd = t->qd, kvd = t->kvd;
    const int half = t->hd / 2;
    for (int l = 0; l < t->L; l++)
        if (t->la[l].site_grad)
            R_(trm_zero_)(t->la[l].site_grad, (size_t)N * R_(trm_width_)(t, (steer_site)t->spec.grad_site));
    if (!t->any_grad) return STEER_OK;

    /* dL/dlogits */
    R_(trm_zero_)(t->dlogits, (size_t)N * V);
    if (t->has_ce && t->loss.n_ce > 0) {
        for (int n = 0; n < N; n++) t->dlosses[n] = t->targets[n] >= 0 ? (REAL)(1.0 / t->loss.n_ce) : 0;
        R_(tr_crossentropy_softmax_backward)(t->dlogits, t->dlosses, t->logits, t->targets, N, V);
    }
    if (t->n_kl > 0) {
        const int K = t->n_kl;
        for (int k = 0; k < K; k++) t->kl_dl[k] = (REAL)(1.0 / K);
        R_(trm_zero_)(t->kl_dlg, (size_t)K * V);
        if (t->kl_reverse) R_(tr_kl_reverse_backward)(t->kl_dlg, t->kl_dl, t->kl_lg, t->kl_tl, NULL, K, V);
        else R_(tr_kl_backward)(t->kl_dlg, t->kl_dl, t->kl_lg, t->kl_tl, NULL, K, V);
        for (int k = 0; k < K; k++) {
            REAL *dst = t->dlogits + (size_t)t->klrows[k] * V;
            const REAL *src = t->kl_dlg + (size_t)k * V;
            for (int v = 0; v < V; v++) dst[v] += src[v];
        }
    }
    if (cfg->final_softcap > 0) { /* in place: dz *= 1 − (capped/cap)² */
        const REAL cap = (REAL)cfg->final_softcap;
        for (size_t i = 0; i < (size_t)N * V; i++) {
            const REAL th = t->logits[i] / cap;
            t->dlogits[i] *= 1 - th * th;
        }
    }
    /* head and final norm */
    R_(trm_zero_)(t->gd1, (size_t)N * d);
    R_(tr_matmul_backward)(t->gd1, t->d_output, NULL, t->dlogits, t->lnf, t->output, N, d, V);
    R_(trm_zero_)(t->dres, (size_t)N * d);
    R_(tr_rmsnorm_backward)(t->dres, t->d_out_norm, t->gd1, t->la[t->L - 1].site[STEER_SITE_RESID_POST], t->out_norm,
                            t->lnf_rstd, N, d);

    REAL *dres = t->dres; /* dL/d(resid_post of the layer below, as read) */
    for (int l = t->L - 1; l >= t->lmin; l--) {
        R_(trm_la) *a = &t->la[l];
        const R_(trm_lw) *w = &t->w[l];
        const R_(trm_lw) *gw = &t->dw[l];
        const int sliding = t->m->layers[l].sliding, rk = TRM_BUG(5) ? 0 : sliding;
        const REAL *cs = t->rope_cos + (size_t)rk * t->Tc * half, *sn = t->rope_sin + (size_t)rk * t->Tc * half;
        const size_t nd = (size_t)N * d, nf = (size_t)N * ff;

        /* resid_post = resid_mid + mlp_out */
        R_(trm_site_bwd_)(t, l, STEER_SITE_RESID_POST, dres);
        memcpy(t->gd1, dres, nd * sizeof(REAL)); /* dL/d mlp_out; dres now dL/d resid_mid (skip) */
        R_(trm_site_bwd_)(t, l, STEER_SITE_MLP_OUT, t->gd1);
        REAL *ddown = t->gd1;
        if (w->post_ffn_norm) {
            R_(trm_zero_)(t->gd2, nd);
            R_(tr_rmsnorm_backward)(t->gd2, gw->post_ffn_norm, t->gd1, a->down, w->post_ffn_norm, a->pf_rstd, N, d);
            ddown = t->gd2;
        }
        R_(trm_zero_)(t->gf3, nf);
        R_(trm_proj_bwd_)(t, l, TRM_PDOWN_, t->gf3, ddown, a->site[STEER_SITE_MLP_ACT]);
        R_(trm_site_bwd_)(t, l, STEER_SITE_MLP_ACT, t->gf3);
        R_(trm_zero_)(t->gf1, nf);
        R_(trm_zero_)(t->gf2, nf);
        R_(tr_glu_backward)(t->gf1, t->gf2, t->gf3, a->site[STEER_SITE_MLP_GATE], a->site[STEER_SITE_MLP_UP], nf,
                            cfg->act);
        R_(trm_site_bwd_)(t, l, STEER_SITE_MLP_UP, t->gf2);
        R_(trm_site_bwd_)(t, l, STEER_SITE_MLP_GATE, t->gf1);
        R_(trm_zero_)(t->gd1, nd);
        R_(trm_proj_bwd_)(t, l, TRM_PGATE_, t->gd1, t->gf1, a->site[STEER_SITE_MLP_IN]);
        R_(trm_proj_bwd_)(t, l, TRM_PUP_, t->gd1, t->gf2, a->site[STEER_SITE_MLP_IN]);
        R_(trm_site_bwd_)(t, l, STEER_SITE_MLP_IN, t->gd1);
        R_(tr_rmsnorm_backward)(dres, gw->ffn_norm, t->gd1, a->site[STEER_SITE_RESID_MID], w->ffn_norm, a->ln2_rstd, N, d);

        /* resid_mid = resid_pre + attn_out */
        R_(trm_site_bwd_)(t, l, STEER_SITE_RESID_MID, dres);
        memcpy(t->gd1, dres, nd * sizeof(REAL)); /* dL/d attn_out */
        R_(trm_site_bwd_)(t, l, STEER_SITE_ATTN_OUT, t->gd1);
        REAL *dop = t->gd1;
        if (w->post_attn_norm) {
            R_(trm_zero_)(t->gd2, nd);
            R_(tr_rmsnorm_backward)(t->gd2, gw->post_attn_norm, t->gd1, a->o_proj, w->post_attn_norm, a->pa_rstd, N, d);
            dop = t->gd2;
        }
        R_(trm_zero_)(t->datty, (size_t)N * qd);
        R_(trm_proj_bwd_)(t, l, TRM_PO_, t->datty, dop, a->atty);
        R_(trm_zero_)(t->dqr, (size_t)N * qd);
        R_(trm_zero_)(t->dkr, (size_t)N * kvd);
        R_(trm_zero_)(t->dv, (size_t)N * kvd);
        R_(tr_attention_backward)(t->dqr, t->dkr, t->dv, t->dscores, t->datty, a->qr, a->kr, a->v, a->att, B, T, t->nh,
                                  t->nkv, t->hd, (REAL)cfg->attn_scale, (REAL)cfg->attn_softcap,
                                  sliding ? cfg->sliding_window : 0);
        R_(trm_zero_)(t->dq, (size_t)N * qd);
        R_(trm_zero_)(t->dk, (size_t)N * kvd);
        R_(tr_rope_backward)(t->dq, t->dqr, cs, sn, t->pos, N, t->nh, t->hd, t->m->rope);
        R_(tr_rope_backward)(t->dk, t->dkr, cs, sn, t->pos, N, t->nkv, t->hd, t->m->rope);
        REAL *dq = t->dq, *dk = t->dk;
        if (w->q_norm) {
            R_(trm_zero_)(t->dq2, (size_t)N * qd);
            R_(trm_zero_)(t->dk2, (size_t)N * kvd);
            R_(tr_rmsnorm_backward)(t->dq2, gw->q_norm, t->dq, a->q, w->q_norm, a->q_rstd, N * t->nh, t->hd);
            R_(tr_rmsnorm_backward)(t->dk2, gw->k_norm, t->dk, a->k, w->k_norm, a->k_rstd, N * t->nkv, t->hd);
            dq = t->dq2, dk = t->dk2;
        }
        R_(trm_zero_)(t->gd2, nd);
        R_(trm_proj_bwd_)(t, l, TRM_PQ_, t->gd2, dq, a->ln1);
        R_(trm_proj_bwd_)(t, l, TRM_PK_, t->gd2, dk, a->ln1);
        R_(trm_proj_bwd_)(t, l, TRM_PV_, t->gd2, t->dv, a->ln1);
        R_(tr_rmsnorm_backward)(dres, gw->attn_norm, t->gd2, a->site[STEER_SITE_RESID_PRE], w->attn_norm, a->ln1_rstd, N,
                                d);
        R_(trm_site_bwd_)(t, l, STEER_SITE_RESID_PRE, dres);
    }
    if (t->spec.full) /* (lmin is 0) */
        R_(tr_embedding_backward)(t->d_tok_embd, dres, t->tokens, N, d, TRM_BUG(1) ? (REAL)1 : t->embed_scale);
    return STEER_OK;
}

TRM_API void R_(trm_zero_grad)(R_(trm) *t) { R_(trm_zero_)(t->grads, t->n_params); }

/* ---------------------------------------------------------------- accessors */

TRM_API trm_loss R_(trm_get_loss)(const R_(trm) *t) { return t->loss; }
TRM_API const REAL *R_(trm_logits)(const R_(trm) *t) { return t->logits; }
TRM_API const REAL *R_(trm_site_act)(const R_(trm) *t, steer_site s, int layer)
{
    if ((unsigned)s >= STEER_SITE_COUNT || layer < 0 || layer >= t->L) return NULL;
    return t->la[layer].site[s];
}
TRM_API const REAL *R_(trm_site_grad)(const R_(trm) *t, int layer)
{
    if (layer < 0 || layer >= t->L) return NULL;
    return t->la[layer].site_grad;
}
TRM_API REAL *R_(trm_params)(R_(trm) *t) { return t->params; }
TRM_API REAL *R_(trm_grads)(R_(trm) *t) { return t->grads; }
TRM_API size_t R_(trm_numel)(const R_(trm) *t) { return t->n_params; }
TRM_API size_t R_(trm_model_numel)(const R_(trm) *t) { return t->model_numel; }
TRM_API int R_(trm_n_tensors)(const R_(trm) *t) { return t->n_tensors; }
TRM_API const trm_param *R_(trm_tensor)(const R_(trm) *t, int i)
{
    return i >= 0 && i < t->n_tensors ? &t->tensors[i] : NULL;
}
TRM_API int R_(trm_find_tensor)(const R_(trm) *t, const char *name)
{
    for (int i = 0; name && i < t->n_tensors; i++)
        if (strcmp(t->tensors[i].name, name) == 0) return i;
    return -1;
}

/* ---------------------------------------------------------------- constraints */

TRM_API int R_(trm_orthonormalize_reft)(R_(trm) *t)
{
    int n = 0;
    if (t->spec.steer != TRM_STEER_LOREFT) return 0;
    for (int l = 0; l < t->L; l++)
        if (t->st[l].on) {
            R_(trm_orthonormal_rows_)(t->st[l].p0, t->spec.steer_rank, t->st[l].width);
            n++;
        }
    return n;
}

TRM_API int R_(trm_project_joint)(R_(trm) *t)
{
    if (t->spec.steer != TRM_STEER_ADAPTER || !t->spec.lora_rank) return 0;
    const int d = t->d, r = t->spec.lora_rank, ra = t->spec.steer_rank;
    double *Q = malloc((size_t)r * d * sizeof(double)); /* orthonormal basis of col(B), [k, d] */
    if (!Q) return 0;
    int n = 0;
    double overlap = 0;
    for (int l = 0; l < t->L; l++) {
        const R_(trm_lora) *lo = &t->lora[l * TRM_NPROJ_ + TRM_PDOWN_];
        R_(trm_steer) *st = &t->st[l];
        if (!lo->A || !st->on || st->width != d) continue;
        int k = 0;
        for (int j = 0; j < r; j++) { /* column j of B [d, r] */
            double *q = Q + (size_t)k * d, n0 = 0, n1 = 0;
            for (int i = 0; i < d; i++) {
                q[i] = (double)lo->B[(size_t)i * r + j];
                n0 += q[i] * q[i];
            }
            if (n0 == 0) continue;
            for (int pass = 0; pass < 2; pass++)
                for (int e = 0; e < k; e++) {
                    const double *qe = Q + (size_t)e * d;
                    double dot = 0;
                    for (int i = 0; i < d; i++) dot += qe[i] * q[i];
                    for (int i = 0; i < d; i++) q[i] -= dot * qe[i];
                }
            for (int i = 0; i < d; i++) n1 += q[i] * q[i];
            if (n1 <= 1e-10 * n0) continue; /* (numerically) dependent on earlier columns */
            n1 = sqrt(n1);
            for (int i = 0; i < d; i++) q[i] /= n1;
            k++;
        }
        for (int i = 0; i < ra; i++) { /* rows of W_down [ra, d] */
            REAL *row = st->p0 + (size_t)i * d;
            for (int pass = 0; pass < 2; pass++)
                for (int e = 0; e < k; e++) {
                    const double *qe = Q + (size_t)e * d;
                    double dot = 0;
                    for (int c = 0; c < d; c++) dot += qe[c] * row[c];
                    if (pass == 0 && fabs(dot) > overlap) overlap = fabs(dot); /* (W_down·Q)[i, e] before */
                    for (int c = 0; c < d; c++) row[c] = (REAL)(row[c] - dot * qe[c]);
                }
        }
        n++;
    }
    free(Q);
    t->joint_overlap = overlap;
    return n;
}

TRM_API double R_(trm_joint_overlap)(const R_(trm) *t) { return t->joint_overlap; }

TRM_API int R_(trm_merge_lora)(R_(trm) *t)
{
    const int r = t->spec.lora_rank;
    const double scale = r > 0 ? (double)t->spec.lora_alpha / r : 0;
    int n = 0;
    for (int l = 0; l < t->L; l++)
        for (int p = 0; p < TRM_NPROJ_; p++) {
            R_(trm_lora) *lo = &t->lora[l * TRM_NPROJ_ + p];
            if (!lo->A) continue;
            REAL *W, *dW, *b, *db;
            int in, out;
            R_(trm_proj_)(t, l, p, &W, &dW, &b, &db, &in, &out);
            for (int o = 0; o < out; o++) { /* W [out, in] += s·B [out, r] · A [r, in] */
                const REAL *Bo = lo->B + (size_t)o * r;
                REAL *Wo = W + (size_t)o * in;
                for (int i = 0; i < in; i++) {
                    double acc = 0;
                    for (int k = 0; k < r; k++) acc += (double)Bo[k] * lo->A[(size_t)k * in + i];
                    Wo[i] = (REAL)((double)Wo[i] + scale * acc);
                }
            }
            R_(trm_zero_)(lo->B, (size_t)out * r);
            n++;
        }
    return n;
}

TRM_API void R_(trm_constrain)(R_(trm) *t)
{
    if (t->spec.joint) R_(trm_project_joint)(t);
    R_(trm_orthonormalize_reft)(t);
}

#undef TRM_BUG
#undef TRM_IS_F32_

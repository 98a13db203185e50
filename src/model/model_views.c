/*
 * model_views.c — read-only views into a loaded model for the tiers above the
 * core (experiments, training) and for users: weights by role, the
 * tokenizer's size, architecture names, and dtype widening. Nothing here
 * computes; the forward pass reads the same fields directly.
 */
#include "model.h"
#include "quant.h"

#include <string.h>

/* steer_weight (public) and weight_role (formats.h) list the roles in one
 * order, so one casts to the other. */
_Static_assert((int)STEER_WEIGHT_TOK_EMBD == (int)W_TOK_EMBD && (int)STEER_WEIGHT_OUTPUT == (int)W_OUTPUT &&
                   (int)STEER_WEIGHT_ATTN_NORM == (int)W_ATTN_NORM && (int)STEER_WEIGHT_Q_NORM == (int)W_Q_NORM &&
                   (int)STEER_WEIGHT_FFN_NORM == (int)W_FFN_NORM && (int)STEER_WEIGHT_GATE == (int)W_GATE &&
                   (int)STEER_WEIGHT_POST_FFN_NORM == (int)W_POST_FFN_NORM &&
                   (int)STEER_WEIGHT_COUNT == (int)W_COUNT,
               "steer_weight and weight_role disagree");

int steer_dtype_to_f32(float *dst, const void *src, steer_dtype t, size_t n)
{
    if (!q_is_quantized(t) && t != STEER_DTYPE_F32 && t != STEER_DTYPE_F16 && t != STEER_DTYPE_BF16)
        return steer_err(STEER_EARG, "to f32: dtype %s is not F32, F16, BF16 or a block-quantized type",
                         steer_dtype_name(t));
    size_t be = 1;
    q_block(t, &be, NULL);
    if (n % be != 0)
        return steer_err(STEER_EARG, "to f32: %zu elements is not a multiple of the %s block size %zu", n,
                         steer_dtype_name(t), be);
    ops_to_f32(dst, src, t, n); /* dequantizes the block types */
    return STEER_OK;
}

const char *steer_arch_name(steer_arch a)
{
    if ((unsigned)a >= STEER_ARCH_COUNT) return NULL;
    const arch_info *ai = arch_get(a);
    return ai ? ai->name : NULL;
}

int steer_tokenizer_size(const steer_model *m) { return tok_n_vocab(m->tok); }

static void view_mat(const steer_mat *w, steer_weight_view *out)
{
    if (!w->data) return;
    out->data = w->data;
    out->dtype = w->dtype;
    out->rows = w->rows;
    out->cols = w->cols;
}

static void view_vec(const float *v, int n, steer_weight_view *out)
{
    if (!v) return;
    out->data = v;
    out->dtype = STEER_DTYPE_F32;
    out->rows = 1;
    out->cols = n;
}

int steer_model_weight(const steer_model *m, steer_weight w, int layer, steer_weight_view *out)
{
    memset(out, 0, sizeof *out);
    out->dtype = STEER_DTYPE_F32;
    const steer_model_config *c = &m->cfg;
    if ((unsigned)w >= STEER_WEIGHT_COUNT) return steer_err(STEER_EARG, "model weight: unknown weight %d", (int)w);
    const int d = c->d_model, hd = c->head_dim, qd = c->n_head * hd, kvd = c->n_kv_head * hd;
    switch (w) {
    case STEER_WEIGHT_TOK_EMBD: view_mat(&m->tok_embd, out); return STEER_OK;
    case STEER_WEIGHT_OUT_NORM: view_vec(m->out_norm, d, out); return STEER_OK;
    case STEER_WEIGHT_OUTPUT: view_mat(&m->output, out); return STEER_OK;
    default: break;
    }
    if (layer < 0 || layer >= c->n_layer)
        return steer_err(STEER_EARG, "model weight: layer %d out of range (model has %d layers)", layer, c->n_layer);
    const model_layer *L = &m->layers[layer];
    switch (w) {
    case STEER_WEIGHT_ATTN_NORM: view_vec(L->attn_norm, d, out); break;
    case STEER_WEIGHT_Q: view_mat(&L->wq, out); break;
    case STEER_WEIGHT_K: view_mat(&L->wk, out); break;
    case STEER_WEIGHT_V: view_mat(&L->wv, out); break;
    case STEER_WEIGHT_O: view_mat(&L->wo, out); break;
    case STEER_WEIGHT_Q_BIAS: view_vec(L->bq, qd, out); break;
    case STEER_WEIGHT_K_BIAS: view_vec(L->bk, kvd, out); break;
    case STEER_WEIGHT_V_BIAS: view_vec(L->bv, kvd, out); break;
    case STEER_WEIGHT_Q_NORM: view_vec(L->q_norm, hd, out); break;
    case STEER_WEIGHT_K_NORM: view_vec(L->k_norm, hd, out); break;
    case STEER_WEIGHT_POST_ATTN_NORM: view_vec(L->post_attn_norm, d, out); break;
    case STEER_WEIGHT_FFN_NORM: view_vec(L->ffn_norm, d, out); break;
    case STEER_WEIGHT_GATE: view_mat(&L->w_gate, out); break;
    case STEER_WEIGHT_UP: view_mat(&L->w_up, out); break;
    case STEER_WEIGHT_DOWN: view_mat(&L->w_down, out); break;
    case STEER_WEIGHT_POST_FFN_NORM: view_vec(L->post_ffn_norm, d, out); break;
    default: break;
    }
    return STEER_OK;
}

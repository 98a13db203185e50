/*
 * train_eval.c — fast greedy generation for the evaluation of a trained model
 * (steer_eval_dataset, the evaluations of steer_train): the inference engine
 * (steer_ctx: KV cache, one prompt pass, then one token per sequence per
 * step, every sequence of a batch in one forward) with the trainable set of a
 * training graph applied:
 *   vector, adapter, rank1, LoReFT  a user hook at the steering site computing
 *                                   the same map as the graph (docs/TRAINING.md:
 *                                   "an adapter or LoReFT equals a user hook");
 *   LoRA (and joint's LoRA)         merged in memory, W + (alpha/r)·B·A, into
 *                                   F32 copies of the adapted projections of a
 *                                   shallow copy of the model.
 * Full fine-tuning is not handled here (its weights live only in the graph):
 * the caller keeps the graph path for it.
 *
 * The graph path regenerates every token by re-running the whole padded batch
 * (no KV cache): K + 1 passes of the training forward per batch. This path is
 * one prompt pass plus K single-token steps. Numbers differ from the graph's
 * by summation order only (sgemm tiles vs the batch-invariant kernel, ~1e-7
 * relative); tests/unit/test_train_eval.c checks the greedy picks agree.
 */
#include "steer_train.h"
#include "steer.h"
#include "model.h"
#include "train_internal.h"
#include "train_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const float *p0, *p1, *p2; /* vector v [w]; adapter down [r,w], up [w,r];
                                  LoReFT R [r,w], W [r,w], b [r]            */
} eng_layer;

struct tr_engine {
    steer_model mc;        /* shallow copy of the model (LoRA merged)          */
    model_layer *layers;   /* [n_layer] owned copy of m->layers                */
    float **merged;        /* [n_merged] owned F32 projections                 */
    int n_merged;
    steer_ctx *ctx;
    /* steering hook */
    trm_steer_kind kind;
    steer_site site;
    int width, rank;
    trm_act act;
    float alpha;
    eng_layer *sl;         /* [n_layer]; p0 NULL = not steered                 */
    float *z, *u;          /* scratch [rank], [rank]                           */
    /* batch buffers */
    int cap;
    int *tok, *pos, *seq;
    int8_t *want;
};

static float eng_act(float x, trm_act a)
{
    switch (a) {
    case TRM_ACT_SILU: return x / (1.0f + expf(-x));
    case TRM_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.7071067811865475f));
    case TRM_ACT_RELU: return x > 0 ? x : 0;
    case TRM_ACT_TANH: return tanhf(x);
    default: return x;
    }
}

static int eng_wants(void *ud, steer_site site, int layer)
{
    const tr_engine *e = ud;
    return site == e->site && e->sl[layer].p0 != NULL;
}

/* h [b->n, w] ← the trained intervention of `layer`, row by row. */
static int eng_apply(void *ud, steer_site site, int layer, float *h, const steer_hook_batch *b)
{
    (void)site;
    tr_engine *e = ud;
    const eng_layer *sl = &e->sl[layer];
    const int w = e->width, r = e->rank;
    for (int n = 0; n < b->n; n++) {
        float *x = h + (size_t)n * w; /* [w] */
        switch (e->kind) {
        case TRM_STEER_VECTOR:
            for (int j = 0; j < w; j++)
                x[j] += sl->p0[j];
            break;
        case TRM_STEER_ADAPTER:
            for (int k = 0; k < r; k++) {
                const float *dk = sl->p0 + (size_t)k * w;
                float s = 0;
                for (int j = 0; j < w; j++)
                    s += dk[j] * x[j];
                e->z[k] = eng_act(s, e->act);
            }
            for (int j = 0; j < w; j++) {
                const float *uj = sl->p1 + (size_t)j * r;
                float s = 0;
                for (int k = 0; k < r; k++)
                    s += uj[k] * e->z[k];
                x[j] += e->alpha * s;
            }
            break;
        case TRM_STEER_LOREFT:
            /* u = W·h + b − R·h; h += Rᵀ·u */
            for (int k = 0; k < r; k++) {
                const float *wk = sl->p1 + (size_t)k * w, *rk = sl->p0 + (size_t)k * w;
                float s = 0, q = 0;
                for (int j = 0; j < w; j++) {
                    s += wk[j] * x[j];
                    q += rk[j] * x[j];
                }
                e->u[k] = s + sl->p2[k] - q;
            }
            for (int j = 0; j < w; j++) {
                float s = 0;
                for (int k = 0; k < r; k++)
                    s += e->u[k] * sl->p0[(size_t)k * w + j];
                x[j] += s;
            }
            break;
        default: break;
        }
    }
    return STEER_OK;
}

static steer_mat *eng_proj(model_layer *ml, int role)
{
    switch (role) {
    case W_Q: return &ml->wq;
    case W_K: return &ml->wk;
    case W_V: return &ml->wv;
    case W_O: return &ml->wo;
    case W_GATE: return &ml->w_gate;
    case W_UP: return &ml->w_up;
    case W_DOWN: return &ml->w_down;
    default: return NULL;
    }
}

void tr_engine_free(tr_engine *e)
{
    if (!e)
        return;
    steer_ctx_free(e->ctx);
    for (int i = 0; i < e->n_merged; i++)
        free(e->merged[i]);
    free(e->merged);
    free(e->layers);
    free(e->sl);
    free(e->z);
    free(e->u);
    free(e->tok);
    free(e->pos);
    free(e->seq);
    free(e->want);
    free(e);
}

int tr_engine_new(const steer_model *m, trm_f32 *t, const trm_spec *sp, int n_seq, int n_ctx, tr_engine **out)
{
    *out = NULL;
    if (sp->full)
        return steer_err(STEER_EUNSUPPORTED, "the inference-engine evaluation does not take full fine-tuning");
    const int L = m->cfg.n_layer;
    tr_engine *e = calloc(1, sizeof *e);
    if (!e)
        return steer_err(STEER_ENOMEM, "out of memory");
    e->mc = *m; /* shallow: the copy borrows everything but its layer table */
    e->layers = malloc((size_t)L * sizeof *e->layers);
    e->sl = calloc((size_t)L, sizeof *e->sl);
    int nt = trm_n_tensors_f32(t);
    e->merged = calloc((size_t)nt + 1, sizeof *e->merged);
    int rc = STEER_OK;
    if (!e->layers || !e->sl || !e->merged) {
        rc = steer_err(STEER_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(e->layers, m->layers, (size_t)L * sizeof *e->layers);
    e->mc.layers = e->layers;
    const float *P = trm_params_f32(t);
    const float scale = sp->lora_rank > 0 ? sp->lora_alpha / (float)sp->lora_rank : 0.0f;
    for (int i = 0; i < nt; i++) {
        const trm_param *tp = trm_tensor_f32(t, i);
        const float *v = P + tp->offset;
        int l = tp->layer;
        switch (tp->kind) {
        case TRM_P_VECTOR: e->sl[l].p0 = v; break;
        case TRM_P_ADAPTER_DOWN: e->sl[l].p0 = v; break;
        case TRM_P_ADAPTER_UP: e->sl[l].p1 = v; break;
        case TRM_P_REFT_ROTATE: e->sl[l].p0 = v; break;
        case TRM_P_REFT_SOURCE: e->sl[l].p1 = v; break;
        case TRM_P_REFT_BIAS: e->sl[l].p2 = v; break;
        case TRM_P_LORA_A: {
            /* B is the tensor of the same projection named …lora_B.weight */
            const trm_param *tb = NULL;
            for (int j = 0; j < nt && !tb; j++) {
                const trm_param *q = trm_tensor_f32(t, j);
                if (q->kind == TRM_P_LORA_B && q->layer == l && q->role == tp->role)
                    tb = q;
            }
            steer_mat *W = eng_proj(&e->layers[l], tp->role);
            if (!tb || !W) {
                rc = steer_err(STEER_EUNSUPPORTED, "LoRA tensor %s has no projection to merge into", tp->name);
                goto fail;
            }
            const int r = (int)tp->shape[0], in = (int)tp->shape[1], od = (int)tb->shape[0];
            if (W->rows != od || W->cols != in) {
                rc = steer_err(STEER_EARG, "LoRA tensor %s does not fit its projection [%d, %d]", tp->name, W->rows,
                               W->cols);
                goto fail;
            }
            float *Wm = malloc((size_t)od * in * sizeof *Wm); /* [od, in] */
            if (!Wm) {
                rc = steer_err(STEER_ENOMEM, "out of memory");
                goto fail;
            }
            e->merged[e->n_merged++] = Wm;
            ops_to_f32(Wm, W->data, W->dtype, (size_t)od * in);
            const float *A = v, *B = P + tb->offset; /* A [r, in], B [od, r] */
            for (int o = 0; o < od; o++)
                for (int c = 0; c < in; c++) {
                    double s = 0;
                    for (int k = 0; k < r; k++)
                        s += (double)B[(size_t)o * r + k] * A[(size_t)k * in + c];
                    Wm[(size_t)o * in + c] += scale * (float)s;
                }
            W->data = Wm;
            W->dtype = STEER_DTYPE_F32;
            break;
        }
        default: break;
        }
    }
    e->kind = sp->steer;
    e->site = sp->steer_site;
    e->rank = sp->steer_rank > 0 ? sp->steer_rank : 1;
    e->act = sp->steer_act;
    e->alpha = sp->steer_alpha;
    e->width = steer_model_site_width(m, e->site);
    e->z = malloc((size_t)e->rank * sizeof *e->z);
    e->u = malloc((size_t)e->rank * sizeof *e->u);
    if (!e->z || !e->u) {
        rc = steer_err(STEER_ENOMEM, "out of memory");
        goto fail;
    }
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_seq = n_seq;
    if ((rc = steer_ctx_new(&e->mc, &cp, &e->ctx)))
        goto fail;
    if (e->kind != TRM_STEER_NONE) {
        int any = 0;
        for (int l = 0; l < L; l++)
            any |= e->sl[l].p0 != NULL;
        if (any) {
            steer_hook h = {eng_wants, eng_apply, e};
            int id = steer_ctx_add_hook(e->ctx, &h);
            if (id < 0) {
                rc = id;
                goto fail;
            }
        }
    }
    *out = e;
    return STEER_OK;
fail:
    tr_engine_free(e);
    return rc;
}

steer_model *tr_engine_model(tr_engine *e) { return &e->mc; }

int tr_engine_install(tr_engine *e, steer_ctx *c)
{
    if (e->kind == TRM_STEER_NONE) return STEER_OK;
    int any = 0;
    for (int l = 0; l < e->mc.cfg.n_layer; l++) any |= e->sl[l].p0 != NULL;
    if (!any) return STEER_OK;
    steer_hook h = {eng_wants, eng_apply, e};
    int id = steer_ctx_add_hook(c, &h);
    return id < 0 ? id : STEER_OK;
}

static int eng_reserve(tr_engine *e, int n)
{
    if (n <= e->cap)
        return STEER_OK;
    int *a = realloc(e->tok, (size_t)n * sizeof *a);
    if (a)
        e->tok = a;
    int *b = realloc(e->pos, (size_t)n * sizeof *b);
    if (b)
        e->pos = b;
    int *c = realloc(e->seq, (size_t)n * sizeof *c);
    if (c)
        e->seq = c;
    int8_t *d = realloc(e->want, (size_t)n);
    if (d)
        e->want = d;
    if (!a || !b || !c || !d)
        return steer_err(STEER_ENOMEM, "out of memory");
    e->cap = n;
    return STEER_OK;
}

static int eng_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

int tr_engine_generate(tr_engine *e, int n, int T, int *tok, int *len, const int *k_gen)
{
    const int V = e->mc.cfg.n_vocab;
    steer_ctx_clear(e->ctx, -1);
    int total = 0, K = 0;
    for (int i = 0; i < n; i++) {
        total += len[i];
        if (k_gen[i] > K)
            K = k_gen[i];
    }
    int rc = eng_reserve(e, total > n ? total : n);
    if (rc)
        return rc;
    /* every prompt in one forward; logits at each prompt's last row */
    int *row = malloc((size_t)n * sizeof *row); /* [n] batch row of sequence i, -1 = done */
    if (!row)
        return steer_err(STEER_ENOMEM, "out of memory");
    int q = 0;
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < len[i]; p++, q++) {
            e->tok[q] = tok[(size_t)i * T + p];
            e->pos[q] = p;
            e->seq[q] = i;
            e->want[q] = p == len[i] - 1 && k_gen[i] > 0;
        }
        row[i] = k_gen[i] > 0 ? q - 1 : -1;
    }
    steer_batch b = {q, e->tok, e->pos, e->seq, e->want};
    for (int k = 0; k < K; k++) {
        if ((rc = steer_forward(e->ctx, &b)))
            break;
        q = 0;
        for (int i = 0; i < n; i++) {
            if (row[i] < 0)
                continue;
            const float *lg = steer_ctx_logits(e->ctx, row[i]);
            int t = eng_argmax(lg, V);
            tok[(size_t)i * T + len[i]] = t;
            len[i]++;
            if (k + 1 >= k_gen[i]) {
                row[i] = -1;
                continue;
            }
            e->tok[q] = t;
            e->pos[q] = len[i] - 1;
            e->seq[q] = i;
            e->want[q] = 1;
            row[i] = q++;
        }
        b.n = q;
        if (q == 0)
            break;
    }
    free(row);
    return rc;
}

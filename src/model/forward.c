/*
 * forward.c — the inference context and the forward pass of a Llama-family
 * decoder, batched over tokens (matrix-matrix products) and sequences, with a
 * hook call at every site of SPEC §2.
 */
#include "model.h"

#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* steer_cancel's flag: checked before every layer of a forward pass. */
static atomic_int fwd_cancel_flag;

void steer_cancel(int on) { atomic_store_explicit(&fwd_cancel_flag, on ? 1 : 0, memory_order_relaxed); }

int steer_cancelled(void) { return atomic_load_explicit(&fwd_cancel_flag, memory_order_relaxed); }

steer_ctx_params steer_ctx_default_params(void)
{
    steer_ctx_params p = {.n_ctx = 0, .n_seq = 1, .n_threads = 0};
    return p;
}

int steer_ctx_n_ctx(const steer_ctx *c) { return c->n_ctx; }

/* ---------------------------------------------------------------- build/free */

int steer_ctx_new(steer_model *m, const steer_ctx_params *p, steer_ctx **out)
{
    *out = NULL;
    steer_ctx_params dp = steer_ctx_default_params();
    if (!p) p = &dp;
    const steer_model_config *cfg = &m->cfg;
    if (p->n_ctx < 0 || p->n_seq < 0 || p->n_threads < 0)
        return steer_err(STEER_EARG, "context: negative n_ctx, n_seq or n_threads");
    steer_ctx *c = calloc(1, sizeof *c);
    if (!c) return steer_err(STEER_ENOMEM, "context: out of memory");
    c->m = m;
    c->n_ctx = p->n_ctx > 0 ? p->n_ctx : cfg->n_ctx_train;
    c->n_seq = p->n_seq > 0 ? p->n_seq : 1;
    c->n_threads = p->n_threads > 0 ? p->n_threads : omp_get_max_threads();
    const size_t kv_dim = (size_t)cfg->n_kv_head * cfg->head_dim;
    const size_t kv_n = (size_t)cfg->n_layer * c->n_seq * c->n_ctx * kv_dim;
    const int half = cfg->head_dim / 2;
    c->k_cache = calloc(kv_n, sizeof(float));
    c->v_cache = calloc(kv_n, sizeof(float));
    c->rope_cos = malloc((size_t)2 * c->n_ctx * half * sizeof(float));
    c->rope_sin = malloc((size_t)2 * c->n_ctx * half * sizeof(float));
    c->prompt_len = calloc((size_t)c->n_seq, sizeof(int));
    c->want = calloc((size_t)STEER_SITE_COUNT * cfg->n_layer, 1);
    if (!c->k_cache || !c->v_cache || !c->rope_cos || !c->rope_sin || !c->prompt_len || !c->want) {
        steer_ctx_free(c);
        return steer_err(STEER_ENOMEM, "context: out of memory for a KV cache of %d x %d positions", c->n_seq,
                         c->n_ctx);
    }
    /* RoPE tables [kind][pos][i], angle = pos · inv_freq[kind][i] in double;
     * kind 0 = global layers, 1 = sliding-window layers (own base in Gemma 3) */
    for (int k = 0; k < 2; k++)
        for (int pos = 0; pos < c->n_ctx; pos++)
            for (int i = 0; i < half; i++) {
                double a = (double)pos * m->rope_freq[k * half + i];
                size_t at = ((size_t)k * c->n_ctx + pos) * half + i;
                c->rope_cos[at] = (float)cos(a);
                c->rope_sin[at] = (float)sin(a);
            }
    *out = c;
    return STEER_OK;
}

static void free_scratch(steer_ctx *c)
{
    free(c->x); free(c->xb); free(c->q); free(c->k); free(c->v); free(c->att);
    free(c->hg); free(c->hu); free(c->scores); free(c->seq_tmp);
    free(c->logits); free(c->logit_row); free(c->pos_c); free(c->seq_c);
    c->x = c->xb = c->q = c->k = c->v = c->att = c->hg = c->hu = c->scores = c->logits = NULL;
    c->seq_tmp = c->logit_row = c->pos_c = c->seq_c = NULL;
    c->n_cap = 0;
}

void steer_ctx_free(steer_ctx *c)
{
    if (!c) return;
    hook_free_all(c);
    free(c->hooks);
    free_scratch(c);
    free(c->k_cache); free(c->v_cache); free(c->rope_cos); free(c->rope_sin);
    free(c->prompt_len); free(c->want);
    free(c);
}

void steer_ctx_clear(steer_ctx *c, int seq)
{
    for (int s = 0; s < c->n_seq; s++) {
        if (seq >= 0 && s != seq) continue;
        c->prompt_len[s] = 0;
    }
    /* Cached keys/values need no wiping: attention reads positions <= pos only,
     * and every position is rewritten before it is read again. */
}

void steer_ctx_set_prompt_len(steer_ctx *c, int seq, int prompt_len)
{
    for (int s = 0; s < c->n_seq; s++)
        if (seq < 0 || s == seq) c->prompt_len[s] = prompt_len;
}

/* Activation buffers start on a cache line (64 bytes): the matmul reads
 * 32-byte-aligned input rows in place instead of copying each tile (ops.c,
 * mm_panel), whenever the row length is a multiple of 8 floats. */
static void *fwd_alloc(size_t bytes)
{
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

/* Grows scratch to n rows with n_out logit rows. */
static int fwd_reserve(steer_ctx *c, int n, int n_out)
{
    const steer_model_config *cfg = &c->m->cfg;
    const size_t d = cfg->d_model, qd = (size_t)cfg->n_head * cfg->head_dim,
                 kvd = (size_t)cfg->n_kv_head * cfg->head_dim, ff = cfg->d_ff;
    if (n > c->n_cap) {
        free_scratch(c);
        size_t r = (size_t)n;
        c->x = fwd_alloc(r * d * sizeof(float));
        c->xb = fwd_alloc(r * d * sizeof(float));
        c->q = fwd_alloc(r * qd * sizeof(float));
        c->k = fwd_alloc(r * kvd * sizeof(float));
        c->v = fwd_alloc(r * kvd * sizeof(float));
        c->att = fwd_alloc(r * qd * sizeof(float));
        c->hg = fwd_alloc(r * ff * sizeof(float));
        c->hu = fwd_alloc(r * ff * sizeof(float));
        c->seq_tmp = calloc(r, sizeof(int));
        c->logit_row = malloc(r * sizeof(int));
        c->pos_c = malloc(r * sizeof(int));
        c->seq_c = malloc(r * sizeof(int));
        c->n_scores = omp_get_max_threads() > c->n_threads ? omp_get_max_threads() : c->n_threads;
        c->scores = malloc((size_t)c->n_scores * (cfg->n_head / cfg->n_kv_head) * c->n_ctx * sizeof(float));
        c->logits = fwd_alloc(r * cfg->n_vocab * sizeof(float));
        if (!c->x || !c->xb || !c->q || !c->k || !c->v || !c->att || !c->hg || !c->hu || !c->seq_tmp ||
            !c->logit_row || !c->pos_c || !c->seq_c || !c->scores || !c->logits) {
            free_scratch(c);
            return steer_err(STEER_ENOMEM, "forward: out of memory for a batch of %d tokens", n);
        }
        c->n_cap = n;
    }
    (void)n_out;
    return STEER_OK;
}

/* ---------------------------------------------------------------- pieces */

/* Rotates v [n_heads, hd] of one token at pos in place; kind 1 = the
 * sliding-window layers' table. */
static void rope_apply(const steer_ctx *c, float *v, int n_heads, int pos, int kind)
{
    const int hd = c->m->cfg.head_dim, half = hd / 2;
    const size_t at = ((size_t)kind * c->n_ctx + pos) * half;
    const float *cs = c->rope_cos + at, *sn = c->rope_sin + at;
    for (int h = 0; h < n_heads; h++) {
        float *x = v + (size_t)h * hd;
        if (c->m->rope == ROPE_ADJACENT) {
            for (int i = 0; i < half; i++) {
                float a = x[2 * i], b = x[2 * i + 1];
                x[2 * i] = a * cs[i] - b * sn[i];
                x[2 * i + 1] = a * sn[i] + b * cs[i];
            }
        } else {
            for (int i = 0; i < half; i++) {
                float a = x[i], b = x[i + half];
                x[i] = a * cs[i] - b * sn[i];
                x[i + half] = a * sn[i] + b * cs[i];
            }
        }
    }
}

/* ---------------------------------------------------------------- forward */

/* Checks batch b against the context, grows scratch, fills logit_row; *n_out
 * receives the logit rows, *seq_out the sequence ids (c->seq_tmp zeros when
 * the batch has none). */
static int fwd_prepare(steer_ctx *c, const steer_batch *b, int *n_out, const int **seq_out)
{
    const int n = b->n, V = c->m->cfg.n_vocab;
    if (n <= 0) return steer_err(STEER_EARG, "forward: empty batch");
    for (int i = 0; i < n; i++) {
        if (b->tokens && (b->tokens[i] < 0 || b->tokens[i] >= V))
            return steer_err(STEER_EARG, "forward: token id %d at batch row %d is outside the vocabulary (0..%d)",
                             b->tokens[i], i, V - 1);
        if (b->pos[i] < 0 || b->pos[i] >= c->n_ctx)
            return steer_err(STEER_ECONTEXT, "forward: position %d is outside the context (%d positions)", b->pos[i],
                             c->n_ctx);
        if (b->seq && (b->seq[i] < 0 || b->seq[i] >= c->n_seq))
            return steer_err(STEER_EARG, "forward: sequence id %d outside 0..%d", b->seq[i], c->n_seq - 1);
    }
    int rc = fwd_reserve(c, n, n);
    if (rc) return rc;
    int k = 0;
    for (int i = 0; i < n; i++) c->logit_row[i] = (!b->logits || b->logits[i]) ? k++ : -1;
    *n_out = k;
    const int *seq = b->seq;
    if (!seq) {
        memset(c->seq_tmp, 0, (size_t)n * sizeof(int));
        seq = c->seq_tmp;
    }
    *seq_out = seq;
    return STEER_OK;
}

/* Moves the rows i with logit_row[i] >= 0 to the front of x (and of xb when
 * xb_too), in order, with their positions and sequence ids (into c->pos_c,
 * c->seq_c; *pos, *seq are redirected there). Returns the new row count. */
static int fwd_compact(steer_ctx *c, int n, int xb_too, const int **pos, const int **seq)
{
    const int d = c->m->cfg.d_model;
    int r = 0;
    for (int i = 0; i < n; i++) {
        if (c->logit_row[i] < 0) continue;
        c->pos_c[r] = (*pos)[i]; /* r <= i: the source row is read before it is overwritten */
        c->seq_c[r] = (*seq)[i];
        if (r != i) {
            memcpy(c->x + (size_t)r * d, c->x + (size_t)i * d, (size_t)d * sizeof(float));
            if (xb_too) memcpy(c->xb + (size_t)r * d, c->xb + (size_t)i * d, (size_t)d * sizeof(float));
        }
        r++;
    }
    *pos = c->pos_c;
    *seq = c->seq_c;
    return r;
}

/* Runs the hooks of (site, layer l) on buf [n, w] when some hook wants them
 * (fwd_layers: c, L, l and hb in scope); a hook's error ends the pass. */
#define HOOK(site, buf, w)                                                                         \
    do {                                                                                           \
        if (c->want[(site) * L + l]) {                                                             \
            hb.width = (w);                                                                        \
            int hrc_ = hook_run(c, (site), l, (buf), &hb);                                         \
            if (hrc_) return hrc_;                                                                 \
        }                                                                                          \
    } while (0)

/* Runs the decoder layers l0..L-1 on the n rows in c->x (and c->xb), starting
 * inside layer l0 at the hook of site `entry` (RESID_PRE: the whole layer;
 * see steer_forward_resume in steer.h for what x and xb hold at each entry).
 * With prune, the last layer computes only the rows that want logits once the
 * K/V of every row is cached (fwd_compact); *n_rows receives the rows left in
 * c->x. */
static int fwd_layers(steer_ctx *c, int n, const int *pos, const int *seq, int l0, steer_site entry, int prune,
                      int *n_rows)
{
    const steer_model *m = c->m;
    const steer_model_config *cfg = &m->cfg;
    const int d = cfg->d_model, L = cfg->n_layer, hd = cfg->head_dim, nh = cfg->n_head, nkv = cfg->n_kv_head,
              ff = cfg->d_ff;
    const int qd = nh * hd, kvd = nkv * hd;
    steer_hook_batch hb = {.n = n, .width = d, .pos = pos, .seq = seq};
    const float att_scale = cfg->attn_scale, softcap = cfg->attn_softcap;
    float *x = c->x, *xb = c->xb;

    for (int l = l0; l < L; l++) {
        if (atomic_load_explicit(&fwd_cancel_flag, memory_order_relaxed))
            return steer_err(STEER_ECANCELLED, "cancelled");
        const model_layer *w = &m->layers[l];
        const int st = l == l0 ? (int)entry : (int)STEER_SITE_RESID_PRE;
        const int last = prune && l == L - 1;
        if (last && st > (int)STEER_SITE_RESID_PRE) { /* nothing to cache in this layer: prune now */
            n = fwd_compact(c, n, 1, &pos, &seq);
            hb.n = n; hb.pos = pos; hb.seq = seq;
        }
        if (st <= (int)STEER_SITE_RESID_PRE) {
            float *kc = c->k_cache + (size_t)l * c->n_seq * c->n_ctx * kvd; /* [n_seq, n_ctx, kvd] */
            float *vc = c->v_cache + (size_t)l * c->n_seq * c->n_ctx * kvd;
            HOOK(STEER_SITE_RESID_PRE, x, d);

            /* attention: q [n, qd], k/v [n, kvd] */
            ops_rmsnorm(xb, x, w->attn_norm, n, d, cfg->rms_eps);
            if (!last) {
                ops_matmul(c->q, xb, &w->wq, n);
                ops_matmul(c->k, xb, &w->wk, n);
                ops_matmul(c->v, xb, &w->wv, n);
                if (w->bq) { /* Qwen2 */
                    ops_add_bias(c->q, w->bq, n, qd);
                    ops_add_bias(c->k, w->bk, n, kvd);
                    ops_add_bias(c->v, w->bv, n, kvd);
                }
                if (w->q_norm) { /* Gemma 3: RMSNorm over each head */
                    ops_rmsnorm(c->q, c->q, w->q_norm, n * nh, hd, cfg->rms_eps);
                    ops_rmsnorm(c->k, c->k, w->k_norm, n * nkv, hd, cfg->rms_eps);
                }
            } else { /* pruned last layer: k/v of every row, q of the logit rows only */
                ops_matmul(c->k, xb, &w->wk, n);
                ops_matmul(c->v, xb, &w->wv, n);
                if (w->bk) {
                    ops_add_bias(c->k, w->bk, n, kvd);
                    ops_add_bias(c->v, w->bv, n, kvd);
                }
                if (w->k_norm) ops_rmsnorm(c->k, c->k, w->k_norm, n * nkv, hd, cfg->rms_eps);
            }
            const int window = w->sliding ? cfg->sliding_window : 0;
            for (int i = 0; i < n; i++) {
                if (!last) rope_apply(c, c->q + (size_t)i * qd, nh, pos[i], w->sliding);
                rope_apply(c, c->k + (size_t)i * kvd, nkv, pos[i], w->sliding);
                size_t off = ((size_t)seq[i] * c->n_ctx + pos[i]) * kvd;
                memcpy(kc + off, c->k + (size_t)i * kvd, (size_t)kvd * sizeof(float));
                memcpy(vc + off, c->v + (size_t)i * kvd, (size_t)kvd * sizeof(float));
            }
            if (last) {
                n = fwd_compact(c, n, 1, &pos, &seq);
                hb.n = n; hb.pos = pos; hb.seq = seq;
                if (n > 0) {
                    ops_matmul(c->q, xb, &w->wq, n);
                    if (w->bq) ops_add_bias(c->q, w->bq, n, qd);
                    if (w->q_norm) ops_rmsnorm(c->q, c->q, w->q_norm, n * nh, hd, cfg->rms_eps);
                }
                for (int i = 0; i < n; i++) rope_apply(c, c->q + (size_t)i * qd, nh, pos[i], w->sliding);
            }
            /* att [n, qd]: each (token, head) attends to positions 0..pos of its sequence */
            ops_attention(c->att, c->q, kc, vc, pos, seq, n, nh, nkv, hd, c->n_ctx, window, att_scale, softcap,
                          c->scores);
            if (n > 0) ops_matmul(xb, c->att, &w->wo, n); /* attn_out [n, d] */
            if (w->post_attn_norm) ops_rmsnorm(xb, xb, w->post_attn_norm, n, d, cfg->rms_eps); /* Gemma 2/3 */
        }
        if (st <= (int)STEER_SITE_ATTN_OUT) {
            HOOK(STEER_SITE_ATTN_OUT, xb, d);
            for (size_t j = 0; j < (size_t)n * d; j++) x[j] += xb[j];
        }
        if (st <= (int)STEER_SITE_RESID_MID) {
            HOOK(STEER_SITE_RESID_MID, x, d);
            ops_rmsnorm(xb, x, w->ffn_norm, n, d, cfg->rms_eps);
        }
        if (st <= (int)STEER_SITE_MLP_IN && n > 0) { /* MLP */
            HOOK(STEER_SITE_MLP_IN, xb, d);
            ops_matmul(c->hg, xb, &w->w_gate, n);
            HOOK(STEER_SITE_MLP_GATE, c->hg, ff);
            ops_matmul(c->hu, xb, &w->w_up, n);
            HOOK(STEER_SITE_MLP_UP, c->hu, ff);
            /* act(gate) * up in place of up, which no one reads after its
             * hook: one [n, ff] buffer less (peak RSS, issue 19) */
            ops_glu(c->hu, c->hg, c->hu, (size_t)n * ff, cfg->act);
            HOOK(STEER_SITE_MLP_ACT, c->hu, ff);
            ops_matmul(xb, c->hu, &w->w_down, n);
            if (w->post_ffn_norm) ops_rmsnorm(xb, xb, w->post_ffn_norm, n, d, cfg->rms_eps); /* Gemma 2/3 */
        }
        if (st <= (int)STEER_SITE_MLP_OUT) {
            HOOK(STEER_SITE_MLP_OUT, xb, d);
            for (size_t j = 0; j < (size_t)n * d; j++) x[j] += xb[j];
        }
        HOOK(STEER_SITE_RESID_POST, x, d);
    }
    *n_rows = n;
    return STEER_OK;
}

/* Head on the rows that want logits: gather into xb, norm, project. After a
 * pruned run the n rows in x are exactly those rows. */
static void fwd_head(steer_ctx *c, int n, int n_out, int compacted)
{
    const steer_model *m = c->m;
    const steer_model_config *cfg = &m->cfg;
    const int d = cfg->d_model;
    float *x = c->x, *xb = c->xb;
    if (compacted) {
        memcpy(xb, x, (size_t)n_out * d * sizeof(float));
    } else {
        int r = 0;
        for (int i = 0; i < n; i++)
            if (c->logit_row[i] >= 0) memcpy(xb + (size_t)r++ * d, x + (size_t)i * d, (size_t)d * sizeof(float));
    }
    if (n_out > 0) {
        ops_rmsnorm(xb, xb, m->out_norm, n_out, d, cfg->rms_eps);
        ops_matmul(c->logits, xb, &m->output, n_out);
        if (cfg->final_softcap > 0.0f) ops_softcap(c->logits, (size_t)n_out * cfg->n_vocab, cfg->final_softcap);
    }
}

/* Stops a run whose logits went non-finite (a broken model, an overflowing
 * intervention): one pass over the n_out × n_vocab logits just computed,
 * small next to the head's matmul. The message names the first bad batch
 * row's position and whether the residual entering the head was already
 * non-finite there. x_row_compacted: the residual rows are compacted to the
 * logit rows (a pruned steer_forward_resume). */
static int fwd_check_logits(const steer_ctx *c, const steer_batch *b, int x_row_compacted)
{
    const int V = c->m->cfg.n_vocab, d = c->m->cfg.d_model;
    for (int i = 0; i < b->n; i++) {
        const int r = c->logit_row[i];
        if (r < 0) continue;
        const float *lg = c->logits + (size_t)r * V;
        uint32_t bad = 0;
        for (int v = 0; v < V; v++) {
            uint32_t u;
            memcpy(&u, &lg[v], sizeof u);
            bad |= (u & 0x7f800000u) == 0x7f800000u; /* exponent all ones: Inf or NaN */
        }
        if (!bad) continue;
        int v = 0;
        while (v < V && isfinite(lg[v])) v++;
        const float *x = c->x + (size_t)(x_row_compacted ? r : i) * d;
        int x_ok = 1;
        for (int j = 0; j < d && x_ok; j++) x_ok = isfinite(x[j]);
        return steer_err(STEER_ENAN, "forward: non-finite logits at position %d of sequence %d (logit %d is %s; the "
                         "residual stream after the last layer is %s)", b->pos[i], b->seq ? b->seq[i] : 0, v,
                         isnan(lg[v]) ? "NaN" : lg[v] > 0 ? "+Inf" : "-Inf",
                         x_ok ? "finite, so the final norm or head overflowed" : "already non-finite");
    }
    return STEER_OK;
}

int steer_forward(steer_ctx *c, const steer_batch *b)
{
    const steer_model *m = c->m;
    const steer_model_config *cfg = &m->cfg;
    const int n = b->n, d = cfg->d_model;
    int n_out = 0, n_rows = 0;
    const int *seq = NULL;
    if (!b->tokens && n > 0) return steer_err(STEER_EARG, "forward: batch has no tokens");
    int rc = fwd_prepare(c, b, &n_out, &seq);
    if (rc) return rc;
    omp_set_num_threads(c->n_threads);
    float *x = c->x;

    /* token embeddings: x [n, d], scaled (Gemma: √d) */
    const size_t rowb = steer_dtype_row_bytes(m->tok_embd.dtype, (size_t)d); /* quantized: dequantized rows */
    for (int i = 0; i < n; i++)
        ops_to_f32(x + (size_t)i * d, (const uint8_t *)m->tok_embd.data + (size_t)b->tokens[i] * rowb,
                   m->tok_embd.dtype, (size_t)d);
    if (cfg->embed_scale != 1.0f)
        for (size_t j = 0; j < (size_t)n * d; j++) x[j] *= cfg->embed_scale;

    /* Prune the last layer to the rows whose logits are read (llama.cpp does
     * the same for a prompt): its K/V are still computed for every row, and
     * the rows that are kept see exactly the operations of a full pass (the
     * kernels are batch-invariant), so their logits are bitwise the same. Not
     * when a hook, intervention or capture wants a site of the last layer:
     * they see every row. */
    const int L = cfg->n_layer;
    int prune = n_out < n;
    for (int s = 0; s < STEER_SITE_COUNT && prune; s++) prune = !c->want[s * L + (L - 1)];
    if ((rc = fwd_layers(c, n, b->pos, seq, 0, STEER_SITE_RESID_PRE, prune, &n_rows))) return rc;
    fwd_head(c, prune ? n_rows : n, n_out, prune);
    return fwd_check_logits(c, b, prune);
}

int steer_forward_resume(steer_ctx *c, const steer_batch *b, int layer, steer_site entry, const float *x_in,
                         const float *xb_in, int prune_last)
{
    const steer_model_config *cfg = &c->m->cfg;
    if (layer < 0 || layer >= cfg->n_layer)
        return steer_err(STEER_EARG, "forward: layer %d out of range (model has %d layers)", layer, cfg->n_layer);
    const int need_xb = entry == STEER_SITE_ATTN_OUT || entry == STEER_SITE_MLP_IN || entry == STEER_SITE_MLP_OUT;
    if (!(need_xb || entry == STEER_SITE_RESID_PRE || entry == STEER_SITE_RESID_MID ||
          entry == STEER_SITE_RESID_POST))
        return steer_err(STEER_EARG, "forward: cannot start at site %s", steer_site_name(entry));
    if (!x_in || (need_xb && !xb_in))
        return steer_err(STEER_EARG, "forward: starting at %s needs the residual%s", steer_site_name(entry),
                         need_xb ? " and the site's activation" : "");
    int n_out = 0, n_rows = 0;
    const int *seq = NULL;
    int rc = fwd_prepare(c, b, &n_out, &seq);
    if (rc) return rc;
    omp_set_num_threads(c->n_threads);
    const size_t nd = (size_t)b->n * cfg->d_model;
    memcpy(c->x, x_in, nd * sizeof(float));
    if (need_xb) memcpy(c->xb, xb_in, nd * sizeof(float));
    if ((rc = fwd_layers(c, b->n, b->pos, seq, layer, entry, prune_last, &n_rows))) return rc;
    fwd_head(c, n_rows, n_out, prune_last);
    return fwd_check_logits(c, b, prune_last);
}

int steer_ctx_seq_copy(steer_ctx *c, int src, int dst, int p0, int p1)
{
    if (src < 0 || src >= c->n_seq)
        return steer_err(STEER_EARG, "seq copy: source sequence %d outside 0..%d", src, c->n_seq - 1);
    if (dst < 0 || dst >= c->n_seq)
        return steer_err(STEER_EARG, "seq copy: destination sequence %d outside 0..%d", dst, c->n_seq - 1);
    if (p0 < 0 || p1 < p0 || p1 > c->n_ctx)
        return steer_err(STEER_ECONTEXT, "seq copy: positions [%d, %d) are not a range of the context (%d positions)",
                         p0, p1, c->n_ctx);
    if (src == dst || p0 == p1) return STEER_OK;
    const steer_model_config *cfg = &c->m->cfg;
    const size_t kvd = (size_t)cfg->n_kv_head * cfg->head_dim, n = (size_t)(p1 - p0) * kvd;
    for (int l = 0; l < cfg->n_layer; l++) {
        const size_t at = (size_t)l * c->n_seq * c->n_ctx * kvd + (size_t)p0 * kvd; /* [n_seq, n_ctx, kvd] */
        const size_t s = at + (size_t)src * c->n_ctx * kvd, d = at + (size_t)dst * c->n_ctx * kvd;
        memcpy(c->k_cache + d, c->k_cache + s, n * sizeof(float));
        memcpy(c->v_cache + d, c->v_cache + s, n * sizeof(float));
    }
    return STEER_OK;
}

const float *steer_ctx_logits(const steer_ctx *c, int i)
{
    if (i < 0 || i >= c->n_cap || !c->logit_row || c->logit_row[i] < 0) return NULL;
    return c->logits + (size_t)c->logit_row[i] * c->m->cfg.n_vocab;
}

int steer_forward_tokens(steer_ctx *c, const int *tokens, int n, int start, int seq)
{
    if (n <= 0) return steer_err(STEER_EARG, "eval: no tokens");
    if (start < 0 || start + n > c->n_ctx)
        return steer_err(STEER_ECONTEXT, "%d tokens from position %d do not fit the context (%d positions)", n,
                         start, c->n_ctx);
    int *pos = malloc((size_t)n * sizeof(int)), *sq = malloc((size_t)n * sizeof(int));
    if (!pos || !sq) {
        free(pos); free(sq);
        return steer_err(STEER_ENOMEM, "eval: out of memory");
    }
    for (int i = 0; i < n; i++) { pos[i] = start + i; sq[i] = seq; }
    steer_batch b = {.n = n, .tokens = tokens, .pos = pos, .seq = sq, .logits = NULL};
    int rc = steer_forward(c, &b);
    free(pos); free(sq);
    return rc;
}

/* ---------------------------------------------------------------- generation */

int steer_generate(steer_ctx *c, const int *prompt, int n_prompt, int n_new, steer_sampler *s,
                   int (*on_token)(void *ud, int token), void *ud, int *n_out)
{
    if (n_out) *n_out = 0;
    if (n_prompt <= 0) return steer_err(STEER_EARG, "generate: empty prompt (it needs at least BOS)");
    if (n_prompt > c->n_ctx)
        return steer_err(STEER_ECONTEXT, "prompt has %d tokens but the context holds %d", n_prompt, c->n_ctx);
    steer_ctx_clear(c, 0);
    steer_ctx_set_prompt_len(c, 0, n_prompt);
    /* sample only over real tokens: embeddings may be padded past the tokenizer */
    const int V = tok_n_vocab(c->m->tok), bos = tok_bos(c->m->tok), eos = tok_eos(c->m->tok);
    /* prompt as one batch, logits for its last row only */
    int *pos = malloc((size_t)n_prompt * sizeof(int));
    int8_t *want = calloc((size_t)n_prompt, 1);
    if (!pos || !want) {
        free(pos); free(want);
        return steer_err(STEER_ENOMEM, "generate: out of memory");
    }
    for (int i = 0; i < n_prompt; i++) pos[i] = i;
    want[n_prompt - 1] = 1;
    steer_batch b = {.n = n_prompt, .tokens = prompt, .pos = pos, .seq = NULL, .logits = want};
    int rc = steer_forward(c, &b);
    free(pos); free(want);
    if (rc) return rc;
    const float *logits = steer_ctx_logits(c, n_prompt - 1);
    int p = n_prompt, made = 0;
    while (made < n_new) {
        int tok = steer_sample(s, logits, V);
        if (tok == bos || tok == eos) break;
        made++;
        if (on_token && on_token(ud, tok)) break;
        if (made == n_new || p >= c->n_ctx) break;
        steer_batch one = {.n = 1, .tokens = &tok, .pos = &p, .seq = NULL, .logits = NULL};
        if ((rc = steer_forward(c, &one))) return rc;
        logits = steer_ctx_logits(c, 0);
        p++;
    }
    if (n_out) *n_out = made;
    return STEER_OK;
}

/*
 * patch.c — activation patching between a clean and a corrupted prompt
 * (causal tracing; steer_exp.h patch section, docs/PATCHING.md), on the
 * public core API only: captures into our buffers (steer_ctx_add_capture_into)
 * and STEER_PATCH interventions with α = 1 (the rows are replaced by memcpy).
 *
 * A sweep over the positions of one (site, layer) runs up to `batch`
 * corrupted copies as separate sequences of one batch, copy s patched at its
 * own position through an intervention restricted to sequence s; the forward
 * pass is batch-invariant, so each copy's logits are bit for bit those of a
 * run alone.
 */
#include "steer_exp.h"
#include "steer.h"
#include "base.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct steer_patcher {
    steer_model *m;
    steer_ctx *c;
    int T, n_layer, n_vocab, batch;
    int *clean, *corrupt;
    float *clean_logits, *corrupt_logits; /* [n_vocab] last position       */
    float *acts[STEER_SITE_COUNT];        /* [n_layer][T][width] or NULL    */
    int *b_tok, *b_pos, *b_seq;           /* [batch * T]                    */
    int8_t *b_want;
};

const char *steer_patch_metric_name(steer_patch_metric_kind k)
{
    return k == STEER_PATCH_KL ? "kl" : k == STEER_PATCH_LOGIT_DIFF ? "logit_diff" : "?";
}

void steer_patcher_free(steer_patcher *p)
{
    if (!p) return;
    if (p->c) steer_ctx_free(p->c);
    free(p->clean);
    free(p->corrupt);
    free(p->clean_logits);
    free(p->corrupt_logits);
    for (int s = 0; s < STEER_SITE_COUNT; s++) free(p->acts[s]);
    free(p->b_tok);
    free(p->b_pos);
    free(p->b_seq);
    free(p->b_want);
    free(p);
}

/* Runs tokens as sequence 0 from position 0 (cache cleared) and copies the
 * last row's logits to out (may be NULL). */
static int run_one(steer_patcher *p, const int *toks, float *out)
{
    steer_ctx_clear(p->c, -1);
    steer_ctx_set_prompt_len(p->c, 0, p->T);
    for (int t = 0; t < p->T; t++) {
        p->b_tok[t] = toks[t];
        p->b_pos[t] = t;
        p->b_seq[t] = 0;
        p->b_want[t] = t == p->T - 1;
    }
    steer_batch b = {.n = p->T, .tokens = p->b_tok, .pos = p->b_pos, .seq = p->b_seq, .logits = p->b_want};
    int rc = steer_forward(p->c, &b);
    if (rc) return rc;
    if (out) {
        const float *l = steer_ctx_logits(p->c, p->T - 1);
        if (!l) return steer_err(STEER_EARG, "patch: no logits for the last position");
        memcpy(out, l, (size_t)p->n_vocab * sizeof *out);
    }
    return STEER_OK;
}

int steer_patcher_new(steer_model *m, const int *clean, int n_clean, const int *corrupt, int n_corrupt, int batch,
                      int n_threads, steer_patcher **out)
{
    /* Ownership: *out is the caller's (steer_patcher_free); clean and corrupt are copied. */
    if (!m || !clean || !corrupt || !out) return steer_err(STEER_EARG, "steer_patcher_new: NULL argument");
    *out = NULL;
    if (n_clean < 1 || n_corrupt < 1) return steer_err(STEER_EARG, "patch: empty prompt");
    if (n_clean != n_corrupt)
        return steer_err(STEER_EARG,
                         "clean prompt is %d tokens and the corrupted one %d: patching needs prompts of the same "
                         "token length",
                         n_clean, n_corrupt);
    if (batch < 0) return steer_err(STEER_EARG, "patch: batch %d < 0", batch);
    const int n_vocab = steer_vocab_size(m), T = n_clean;
    for (int t = 0; t < T; t++)
        if (clean[t] < 0 || clean[t] >= n_vocab || corrupt[t] < 0 || corrupt[t] >= n_vocab)
            return steer_err(STEER_EARG, "patch: token id at position %d out of range (vocabulary has %d tokens)", t,
                             n_vocab);
    if (batch == 0) batch = 16;
    if (batch > T) batch = T;
    steer_patcher *p = calloc(1, sizeof *p);
    if (!p) return steer_err(STEER_ENOMEM, "patch: out of memory");
    p->m = m;
    p->T = T;
    p->n_layer = steer_model_get_config(m)->n_layer;
    p->n_vocab = n_vocab;
    p->batch = batch;
    size_t nb = (size_t)batch * (size_t)T;
    p->clean = malloc((size_t)T * sizeof(int));
    p->corrupt = malloc((size_t)T * sizeof(int));
    p->clean_logits = malloc((size_t)n_vocab * sizeof(float));
    p->corrupt_logits = malloc((size_t)n_vocab * sizeof(float));
    p->b_tok = malloc(nb * sizeof(int));
    p->b_pos = malloc(nb * sizeof(int));
    p->b_seq = malloc(nb * sizeof(int));
    p->b_want = malloc(nb);
    if (!p->clean || !p->corrupt || !p->clean_logits || !p->corrupt_logits || !p->b_tok || !p->b_pos || !p->b_seq ||
        !p->b_want) {
        steer_patcher_free(p);
        return steer_err(STEER_ENOMEM, "patch: out of memory");
    }
    memcpy(p->clean, clean, (size_t)T * sizeof(int));
    memcpy(p->corrupt, corrupt, (size_t)T * sizeof(int));
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = T;
    cp.n_seq = batch;
    cp.n_threads = n_threads;
    int rc = steer_ctx_new(m, &cp, &p->c);
    if (!rc) rc = run_one(p, p->clean, p->clean_logits);
    if (!rc) rc = run_one(p, p->corrupt, p->corrupt_logits);
    if (rc) {
        steer_patcher_free(p);
        return rc;
    }
    *out = p;
    return STEER_OK;
}

int steer_patcher_n_tokens(const steer_patcher *p) { return p ? p->T : 0; }
const float *steer_patcher_clean_logits(const steer_patcher *p) { return p ? p->clean_logits : NULL; }
const float *steer_patcher_corrupt_logits(const steer_patcher *p) { return p ? p->corrupt_logits : NULL; }

double steer_patcher_metric(const steer_patcher *p, const steer_patch_metric *mt, const float *logits)
{
    if (!p || !mt || !logits) return NAN;
    switch (mt->kind) {
    case STEER_PATCH_LOGIT_DIFF:
        if (mt->answer < 0 || mt->answer >= p->n_vocab || mt->wrong < 0 || mt->wrong >= p->n_vocab) return NAN;
        return (double)logits[mt->answer] - (double)logits[mt->wrong];
    case STEER_PATCH_KL: return steer_kl_logits(p->clean_logits, logits, p->n_vocab);
    }
    return NAN;
}

/* The clean run's activations at every layer of site, captured once. */
static int ensure_site(steer_patcher *p, steer_site site)
{
    if (p->acts[site]) return STEER_OK;
    const int w = steer_model_site_width(p->m, site);
    float *a = calloc((size_t)p->n_layer * (size_t)p->T * (size_t)w, sizeof *a);
    if (!a) return steer_err(STEER_ENOMEM, "patch: out of memory");
    steer_ctx_clear_hooks(p->c);
    int rc = STEER_OK;
    for (int l = 0; l < p->n_layer && !rc; l++) {
        int id = steer_ctx_add_capture_into(p->c, site, l, 0, a + (size_t)l * p->T * w, p->T, w, NULL, 0);
        if (id < 0) rc = id;
    }
    if (!rc) rc = run_one(p, p->clean, NULL);
    steer_ctx_clear_hooks(p->c);
    if (rc) {
        free(a);
        return rc;
    }
    p->acts[site] = a;
    return STEER_OK;
}

static int check_site_layer(const steer_patcher *p, steer_site site, int layer)
{
    if ((unsigned)site >= STEER_SITE_COUNT) return steer_err(STEER_EARG, "patch: unknown site %d", (int)site);
    if (layer < 0 || layer >= p->n_layer)
        return steer_err(STEER_EARG, "patch: layer %d out of range (model has %d layers)", layer, p->n_layer);
    return STEER_OK;
}

/* Adds the patch of (site, layer) at positions pos[0..n) of sequence seq. */
static int add_patch(steer_patcher *p, steer_site site, int layer, const int *pos, int n, int seq)
{
    const int w = steer_model_site_width(p->m, site);
    steer_intervention iv;
    memset(&iv, 0, sizeof iv);
    iv.kind = STEER_PATCH;
    iv.site = site;
    iv.layer = layer;
    iv.alpha = 1.0f;
    iv.data = p->acts[site] + (size_t)layer * p->T * w;
    iv.n_rows = p->T;
    iv.positions.kind = STEER_POS_LIST;
    iv.positions.list = pos;
    iv.positions.n_list = n;
    iv.seq = seq;
    int id = steer_ctx_add_intervention(p->c, &iv);
    return id < 0 ? id : STEER_OK;
}

int steer_patcher_run(steer_patcher *p, steer_site site, int layer, const int *pos, int n_pos, float *out)
{
    if (!p || !out || n_pos < 0 || (n_pos > 0 && !pos)) return steer_err(STEER_EARG, "steer_patcher_run: bad argument");
    int rc = check_site_layer(p, site, layer);
    if (rc) return rc;
    for (int i = 0; i < n_pos; i++)
        if (pos[i] < 0 || pos[i] >= p->T)
            return steer_err(STEER_EARG, "patch: position %d out of range (the prompts are %d tokens)", pos[i], p->T);
    if ((rc = ensure_site(p, site)) != STEER_OK) return rc;
    steer_ctx_clear_hooks(p->c);
    if (n_pos > 0) rc = add_patch(p, site, layer, pos, n_pos, 0);
    if (!rc) rc = run_one(p, p->corrupt, out);
    steer_ctx_clear_hooks(p->c);
    return rc;
}

int steer_patcher_sweep(steer_patcher *p, steer_site site, int layer, const steer_patch_metric *mt, double *values)
{
    if (!p || !mt || !values) return steer_err(STEER_EARG, "steer_patcher_sweep: NULL argument");
    int rc = check_site_layer(p, site, layer);
    if (rc) return rc;
    if (mt->kind == STEER_PATCH_LOGIT_DIFF &&
        (mt->answer < 0 || mt->answer >= p->n_vocab || mt->wrong < 0 || mt->wrong >= p->n_vocab))
        return steer_err(STEER_EARG, "patch: answer token %d or wrong token %d out of range (vocabulary has %d)",
                         mt->answer, mt->wrong, p->n_vocab);
    if ((rc = ensure_site(p, site)) != STEER_OK) return rc;
    const int T = p->T;
    int *pos_of = malloc((size_t)p->batch * sizeof *pos_of);
    if (!pos_of) return steer_err(STEER_ENOMEM, "patch: out of memory");
    for (int t0 = 0; t0 < T && !rc; t0 += p->batch) {
        const int nb = T - t0 < p->batch ? T - t0 : p->batch;
        steer_ctx_clear_hooks(p->c);
        steer_ctx_clear(p->c, -1);
        for (int s = 0; s < nb && !rc; s++) {
            pos_of[s] = t0 + s;
            rc = add_patch(p, site, layer, &pos_of[s], 1, s);
            steer_ctx_set_prompt_len(p->c, s, T);
            for (int t = 0; t < T; t++) {
                size_t i = (size_t)s * T + t;
                p->b_tok[i] = p->corrupt[t];
                p->b_pos[i] = t;
                p->b_seq[i] = s;
                p->b_want[i] = t == T - 1;
            }
        }
        if (rc) break;
        steer_batch b = {.n = nb * T, .tokens = p->b_tok, .pos = p->b_pos, .seq = p->b_seq, .logits = p->b_want};
        if ((rc = steer_forward(p->c, &b)) != STEER_OK) break;
        for (int s = 0; s < nb; s++) {
            const float *l = steer_ctx_logits(p->c, s * T + T - 1);
            if (!l) {
                rc = steer_err(STEER_EARG, "patch: no logits for sequence %d", s);
                break;
            }
            values[t0 + s] = steer_patcher_metric(p, mt, l);
        }
    }
    steer_ctx_clear_hooks(p->c);
    free(pos_of);
    return rc;
}

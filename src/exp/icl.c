/*
 * icl.c — in-context learning as attn_out steering, and context compression
 * (SPEC §4 E3; docs/ICL.md).
 *
 * A context C and queries q. For every query the ICL run (C ⊕ q) and the
 * zero-shot run ([BOS] ⊕ q) are made once when the query is added: the ICL
 * run's logits at the scored rows and its attn_out at every layer and query
 * row are kept, and attn_out(C ⊕ q) − attn_out(q) at the query's own rows is
 * added to the Δ_A sums. Everything afterwards runs the query alone:
 *   (a) steer_icl_patch   attn_out replaced by the ICL run's (all layers or
 *                         chosen ones): KL to ICL, max |Δlogit|;
 *   (b) steer_icl_mean_delta  Δ_A,l, a vector set attn_out.<l>;
 *   (c) steer_icl_kl / steer_icl_answer  α·vectors added at every position;
 *   (d) steer_icl_learn   the vectors trained with the training engine
 *                         (train_model.h graph, train_optim.h AdamW) on
 *                         KL(steered ‖ ICL).
 * steer_icl_experiment strings them together and writes the result files.
 *
 * Row ↔ position map: zero-shot row j is at position j. Row j < n_prefix (the
 * BOS, shared) is ICL position j; row j >= n_prefix is ICL position
 * n_ctx + j − n_prefix.
 */
#include "steer_exp.h"
#include "steer.h"
#include "base.h"
#include "data.h"
#include "plot.h"
#include "train_model.h"
#include "train_optim.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---------------------------------------------------------------- state */

typedef struct {
    char *id;
    int *tok;           /* [n] the zero-shot sequence: BOS ⊕ q (⊕ completion) */
    int n;
    int *prompt;        /* [n_prompt] BOS ⊕ prompt as tokenized alone          */
    int n_prompt;
    int k_gen;          /* tokens generated for an answer                     */
    int r0, r1;         /* scored rows [r0, r1)                               */
    float *icl_logits;  /* [r1 − r0, V] ICL logits at the scored rows          */
    float *icl_attn;    /* [L, n, d] ICL attn_out at every query row           */
    char **choices;     /* [n_choices]                                        */
    int n_choices, label;
} icl_query;

struct steer_icl {
    steer_model *m;
    steer_ctx *c;
    int L, d, V, W;     /* layers, d_model, logit width, context window        */
    int n_prefix;       /* 1: sequences start with BOS (shared row)            */
    int *ctx;           /* [n_ctx]                                            */
    int n_ctx;
    icl_query *q;
    int n_q, cap_q;
    double *dsum;       /* [L, d] Σ (ICL − zero-shot) attn_out                 */
    long n_dpos;        /* rows in dsum                                        */
    int *tok, *pos;     /* scratch [cap]                                      */
    int8_t *want;
    int cap;
    float *lbuf;        /* scratch logits [cap_l, V]                           */
    int cap_l;
};

const char *steer_icl_score_name(steer_icl_score s) { return s == STEER_ICL_SCORE_ALL ? "all" : "answer"; }

/* ---------------------------------------------------------------- tokens */

/* 1 when the tokenizer prepends BOS. */
static int adds_bos(const steer_model *m)
{
    int a[8], b[8], na = 0, nb = 0;
    if (steer_tokenize(m, "a", 1, a, 8, &na) || steer_tokenize(m, "a", 0, b, 8, &nb)) return 0;
    return na == nb + 1 && a[0] == steer_token_bos(m);
}

static int reserve(steer_icl *e, int n)
{
    if (n <= e->cap) return STEER_OK;
    int *t = realloc(e->tok, (size_t)n * sizeof *t);
    if (t) e->tok = t;
    int *p = realloc(e->pos, (size_t)n * sizeof *p);
    if (p) e->pos = p;
    int8_t *w = realloc(e->want, (size_t)n);
    if (w) e->want = w;
    if (!t || !p || !w) return steer_err(STEER_ENOMEM, "icl: out of memory");
    e->cap = n;
    return STEER_OK;
}

static int reserve_logits(steer_icl *e, int rows)
{
    if (rows <= e->cap_l) return STEER_OK;
    float *l = realloc(e->lbuf, (size_t)rows * e->V * sizeof *l);
    if (!l) return steer_err(STEER_ENOMEM, "icl: out of memory");
    e->lbuf = l;
    e->cap_l = rows;
    return STEER_OK;
}

/* ---------------------------------------------------------------- new / free */

int steer_icl_new(steer_model *m, const int *ctx, int n_ctx, int n_threads, steer_icl **out)
{
    *out = NULL;
    if (!m || !ctx) return steer_err(STEER_EARG, "icl: NULL argument");
    const steer_model_config *cfg = steer_model_get_config(m);
    const int pre = adds_bos(m), bos = steer_token_bos(m);
    if (n_ctx < 1 + pre) return steer_err(STEER_EARG, "context is empty");
    if (pre && ctx[0] != bos) return steer_err(STEER_EARG, "context must start with BOS (token %d)", bos);
    for (int i = 0; i < n_ctx; i++)
        if (ctx[i] < 0 || ctx[i] >= cfg->n_vocab)
            return steer_err(STEER_EARG, "context token %d at index %d is outside the vocabulary (%d)", ctx[i], i,
                             cfg->n_vocab);
    const int W = cfg->n_ctx_train > 0 ? cfg->n_ctx_train : 2048;
    if (n_ctx >= W)
        return steer_err(STEER_ECONTEXT, "context is %d tokens but the model's context window holds %d", n_ctx, W);
    steer_icl *e = calloc(1, sizeof *e);
    if (!e) return steer_err(STEER_ENOMEM, "icl: out of memory");
    e->m = m;
    e->L = cfg->n_layer;
    e->d = cfg->d_model;
    e->V = cfg->n_vocab;
    e->W = W;
    e->n_prefix = pre;
    e->n_ctx = n_ctx;
    e->ctx = malloc((size_t)n_ctx * sizeof *e->ctx);
    e->dsum = calloc((size_t)e->L * e->d, sizeof *e->dsum);
    if (!e->ctx || !e->dsum) {
        steer_icl_free(e);
        return steer_err(STEER_ENOMEM, "icl: out of memory");
    }
    memcpy(e->ctx, ctx, (size_t)n_ctx * sizeof *ctx);
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = W;
    cp.n_threads = n_threads;
    int rc = steer_ctx_new(m, &cp, &e->c);
    if (rc) {
        steer_icl_free(e);
        return rc;
    }
    *out = e;
    return STEER_OK;
}

int steer_icl_new_text(steer_model *m, const char *context, int n_threads, steer_icl **out)
{
    *out = NULL;
    if (!m || !context) return steer_err(STEER_EARG, "icl: NULL argument");
    int *t = NULL, n = 0;
    int rc = steer_tokenize_alloc(m, context, 1, &t, &n);
    if (rc) return rc;
    rc = steer_icl_new(m, t, n, n_threads, out);
    free(t);
    return rc;
}

static void query_free(icl_query *q)
{
    free(q->id);
    free(q->tok);
    free(q->prompt);
    free(q->icl_logits);
    free(q->icl_attn);
    for (int i = 0; i < q->n_choices; i++) free(q->choices[i]);
    free(q->choices);
}

void steer_icl_free(steer_icl *e)
{
    if (!e) return;
    for (int i = 0; i < e->n_q; i++) query_free(&e->q[i]);
    free(e->q);
    free(e->ctx);
    free(e->dsum);
    free(e->tok);
    free(e->pos);
    free(e->want);
    free(e->lbuf);
    steer_ctx_free(e->c);
    free(e);
}

int steer_icl_context_len(const steer_icl *e) { return e->n_ctx; }

size_t steer_icl_kv_bytes(const steer_icl *e)
{
    const steer_model_config *cfg = steer_model_get_config(e->m);
    return (size_t)2 * e->L * (size_t)(e->n_ctx - e->n_prefix) * cfg->n_kv_head * cfg->head_dim * sizeof(float);
}

size_t steer_icl_vec_bytes(const steer_icl *e) { return (size_t)e->L * e->d * sizeof(float); }

int steer_icl_n_queries(const steer_icl *e) { return e->n_q; }
int steer_icl_n_scored(const steer_icl *e, int q) { return q >= 0 && q < e->n_q ? e->q[q].r1 - e->q[q].r0 : 0; }
int steer_icl_label(const steer_icl *e, int q) { return q >= 0 && q < e->n_q ? e->q[q].label : -1; }
const char *steer_icl_query_id(const steer_icl *e, int q) { return q >= 0 && q < e->n_q ? e->q[q].id : NULL; }

const int *steer_icl_query_tokens(const steer_icl *e, int q, int *n)
{
    if (n) *n = q >= 0 && q < e->n_q ? e->q[q].n : 0;
    return q >= 0 && q < e->n_q ? e->q[q].tok : NULL;
}

/* ---------------------------------------------------------------- runs */

/* Captures attn_out at every layer into dst [L, n, d] by query row: position
 * p < n_prefix is row p, p >= pos0 is row p − pos0 + n_prefix (pos0: the
 * position of row n_prefix; ICL: n_ctx, zero-shot: n_prefix). map [n_pos]
 * receives the row map and must outlive the run. */
static int add_capture(steer_icl *e, float *dst, int n, int pos0, int *map, int n_pos)
{
    const int pre = e->n_prefix;
    for (int p = 0; p < n_pos; p++) map[p] = p < pre ? p : p >= pos0 ? p - pos0 + pre : -1;
    for (int l = 0; l < e->L; l++) {
        int id = steer_ctx_add_capture_into(e->c, STEER_SITE_ATTN_OUT, l, 0, dst + (size_t)l * n * e->d, n, e->d, map,
                                            n_pos);
        if (id < 0) return id;
    }
    return STEER_OK;
}

/* Runs tokens [n] at positions 0.. from an empty cache, logits for rows
 * [lo, hi). Hooks as they are. */
static int run(steer_icl *e, const int *tok, int n, int lo, int hi)
{
    int rc = reserve(e, n);
    if (rc) return rc;
    for (int i = 0; i < n; i++) {
        e->pos[i] = i;
        e->want[i] = (int8_t)(i >= lo && i < hi);
    }
    steer_ctx_clear(e->c, -1);
    steer_ctx_set_prompt_len(e->c, 0, n);
    steer_batch b = {.n = n, .tokens = tok, .pos = e->pos, .seq = NULL, .logits = e->want};
    return steer_forward(e->c, &b);
}

/* The ICL sequence of query q (C ⊕ its rows from n_prefix) into e->tok via a
 * separate buffer: returns its length in *n. */
static int icl_tokens(steer_icl *e, const int *qt, int nq, int **out, int *n)
{
    const int pre = e->n_prefix, len = e->n_ctx + nq - pre;
    int *t = malloc((size_t)len * sizeof *t);
    if (!t) return steer_err(STEER_ENOMEM, "icl: out of memory");
    memcpy(t, e->ctx, (size_t)e->n_ctx * sizeof *t);
    memcpy(t + e->n_ctx, qt + pre, (size_t)(nq - pre) * sizeof *t);
    *out = t;
    *n = len;
    return STEER_OK;
}

static int icl_pos(const steer_icl *e, int row) { return row < e->n_prefix ? row : e->n_ctx + row - e->n_prefix; }

/* ---------------------------------------------------------------- queries */

/* A query's tokens, scored rows and choices, checked against the window;
 * no forward pass yet (query_run). *q is filled only on success. */
static int query_prepare(steer_icl *e, const char *id, const char *prompt, const char *completion,
                         const char *const *choices, int n_choices, int label, steer_icl_score score, icl_query *out)
{
    if (!e || !prompt) return steer_err(STEER_EARG, "icl: NULL query");
    char idbuf[32];
    if (!id) {
        snprintf(idbuf, sizeof idbuf, "%d", e->n_q + 1);
        id = idbuf;
    }
    if (n_choices < 0 || (n_choices > 0 && !choices)) return steer_err(STEER_EARG, "query %s: bad choices", id);
    if (score == STEER_ICL_SCORE_ANSWER && !completion)
        return steer_err(STEER_EARG, "query %s has no completion (score the answer needs one; use all positions)", id);
    icl_query q;
    memset(&q, 0, sizeof q);
    const int pre = e->n_prefix;
    int *full = NULL;
    int rc = steer_tokenize_alloc(e->m, prompt, 1, &q.prompt, &q.n_prompt);
    if (rc) goto fail;
    if (q.n_prompt <= pre) {
        rc = steer_err(STEER_EARG, "query %s: the prompt is empty", id);
        goto fail;
    }
    int n_common = q.n_prompt;
    if (completion) {
        int nf = 0;
        if ((rc = data_tokenize_pair(e->m, prompt, q.prompt, q.n_prompt, completion, &full, &nf, &n_common))) goto fail;
        if (n_common >= nf) {
            rc = steer_err(STEER_EARG, "query %s: the completion is empty", id);
            goto fail;
        }
        q.tok = full;
        q.n = nf;
        full = NULL;
        q.k_gen = nf - n_common;
    } else {
        q.tok = malloc((size_t)q.n_prompt * sizeof *q.tok);
        if (!q.tok) {
            rc = steer_err(STEER_ENOMEM, "icl: out of memory");
            goto fail;
        }
        memcpy(q.tok, q.prompt, (size_t)q.n_prompt * sizeof *q.tok);
        q.n = q.n_prompt;
    }
    for (int c = 0; c < n_choices; c++) {
        int *ct = NULL, nct = 0, ncom = 0;
        if ((rc = data_tokenize_pair(e->m, prompt, q.prompt, q.n_prompt, choices[c], &ct, &nct, &ncom))) goto fail;
        free(ct);
        if (nct - ncom > q.k_gen) q.k_gen = nct - ncom;
    }
    if (score == STEER_ICL_SCORE_ANSWER) {
        q.r0 = n_common - 1 > pre ? n_common - 1 : pre;
        q.r1 = q.n - 1;
        if (q.r0 >= q.r1) q.r0 = q.r1 - 1;
    } else {
        q.r0 = pre;
        q.r1 = q.n;
    }
    {
        int need = q.n > q.n_prompt + q.k_gen ? q.n : q.n_prompt + q.k_gen;
        int total = e->n_ctx + need - pre;
        if (total > e->W) {
            rc = steer_err(STEER_ECONTEXT,
                           "query %s: context + query + answer is %d tokens but the model's context window holds %d",
                           id, total, e->W);
            goto fail;
        }
    }
    q.id = strdup(id);
    q.n_choices = n_choices;
    q.label = label;
    q.choices = n_choices ? calloc((size_t)n_choices, sizeof *q.choices) : NULL;
    if (!q.id || (n_choices && !q.choices)) {
        rc = steer_err(STEER_ENOMEM, "icl: out of memory");
        goto fail;
    }
    for (int c = 0; c < n_choices; c++)
        if (!(q.choices[c] = strdup(choices[c]))) {
            rc = steer_err(STEER_ENOMEM, "icl: out of memory");
            goto fail;
        }
    *out = q;
    return STEER_OK;
fail:
    free(full);
    query_free(&q);
    return rc;
}

/* The ICL and the zero-shot run of a prepared query: keeps the ICL logits at
 * the scored rows and attn_out at every layer and query row (q->icl_logits,
 * q->icl_attn) and adds the query to the Δ_A sums. */
static int query_run(steer_icl *e, icl_query *q)
{
    const int pre = e->n_prefix, L = e->L, d = e->d, V = e->V;
    int *icl = NULL, n_icl = 0, *map = NULL, rc = STEER_OK;
    float *zs = NULL;
    free(q->icl_logits);
    free(q->icl_attn);
    q->icl_logits = malloc((size_t)(q->r1 - q->r0) * V * sizeof(float));
    q->icl_attn = calloc((size_t)L * q->n * d, sizeof(float));
    zs = calloc((size_t)L * q->n * d, sizeof(float));
    if (!q->icl_logits || !q->icl_attn || !zs) {
        rc = steer_err(STEER_ENOMEM, "icl: out of memory");
        goto fail;
    }
    /* ICL run: logits at the scored rows, attn_out at every query row. */
    if ((rc = icl_tokens(e, q->tok, q->n, &icl, &n_icl))) goto fail;
    if (!(map = malloc((size_t)(n_icl > q->n ? n_icl : q->n) * sizeof *map))) {
        rc = steer_err(STEER_ENOMEM, "icl: out of memory");
        goto fail;
    }
    steer_ctx_clear_hooks(e->c);
    if ((rc = add_capture(e, q->icl_attn, q->n, e->n_ctx, map, n_icl))) goto fail;
    rc = run(e, icl, n_icl, icl_pos(e, q->r0), icl_pos(e, q->r1 - 1) + 1);
    steer_ctx_clear_hooks(e->c);
    if (rc) goto fail;
    for (int r = q->r0; r < q->r1; r++)
        memcpy(q->icl_logits + (size_t)(r - q->r0) * V, steer_ctx_logits(e->c, icl_pos(e, r)), (size_t)V * sizeof(float));
    /* Zero-shot run: attn_out for Δ_A. */
    if ((rc = add_capture(e, zs, q->n, pre, map, q->n))) goto fail;
    rc = run(e, q->tok, q->n, 0, 0);
    steer_ctx_clear_hooks(e->c);
    if (rc) goto fail;
    for (int l = 0; l < L; l++)
        for (int j = pre; j < q->n; j++) {
            const float *a = q->icl_attn + ((size_t)l * q->n + j) * d, *z = zs + ((size_t)l * q->n + j) * d;
            double *s = e->dsum + (size_t)l * d;
            for (int i = 0; i < d; i++) s[i] += (double)a[i] - (double)z[i];
        }
    e->n_dpos += q->n - pre;
    free(zs);
    free(icl);
    free(map);
    return STEER_OK;
fail:
    steer_ctx_clear_hooks(e->c);
    free(icl);
    free(zs);
    free(map);
    free(q->icl_logits);
    free(q->icl_attn);
    q->icl_logits = NULL;
    q->icl_attn = NULL;
    return rc;
}

/* Appends a query (its ownership moves to e). */
static int query_append(steer_icl *e, icl_query *q)
{
    if (e->n_q == e->cap_q) {
        int nc = e->cap_q ? 2 * e->cap_q : 16;
        icl_query *nq = realloc(e->q, (size_t)nc * sizeof *nq);
        if (!nq) return steer_err(STEER_ENOMEM, "icl: out of memory");
        e->q = nq;
        e->cap_q = nc;
    }
    e->q[e->n_q++] = *q;
    memset(q, 0, sizeof *q);
    return STEER_OK;
}

int steer_icl_add_query(steer_icl *e, const char *id, const char *prompt, const char *completion,
                        const char *const *choices, int n_choices, int label, steer_icl_score score)
{
    icl_query q;
    memset(&q, 0, sizeof q);
    int rc = query_prepare(e, id, prompt, completion, choices, n_choices, label, score, &q);
    if (!rc) rc = query_run(e, &q);
    if (!rc) rc = query_append(e, &q);
    query_free(&q);
    return rc;
}

/* query_prepare of item i of d; errors name the file and line. */
static int prepare_item(steer_icl *e, const steer_dataset *d, int i, steer_icl_score score, icl_query *q)
{
    const steer_data_item *it = steer_data_at(d, i);
    int rc = query_prepare(e, it->id, it->prompt, it->completion, (const char *const *)it->choices, it->n_choices,
                           it->label, score, q);
    if (rc) {
        const char *path = steer_data_path(d);
        if (path && path[0] && it->line > 0) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", steer_last_error());
            return steer_err(rc, "%s:%d: %s", path, it->line, msg);
        }
    }
    return rc;
}

int steer_icl_add_dataset(steer_icl *e, const steer_dataset *d, int first, int n, steer_icl_score score)
{
    int cnt = steer_data_count(d);
    if (first < 0 || first > cnt) return steer_err(STEER_EARG, "icl: first item %d outside 0..%d", first, cnt);
    int last = n < 0 || first + n > cnt ? cnt : first + n;
    for (int i = first; i < last; i++) {
        icl_query q;
        memset(&q, 0, sizeof q);
        int rc = prepare_item(e, d, i, score, &q);
        if (!rc && (rc = query_run(e, &q))) {
            const steer_data_item *it = steer_data_at(d, i);
            const char *path = steer_data_path(d);
            if (path && path[0] && it->line > 0) {
                char msg[1024];
                snprintf(msg, sizeof msg, "%s", steer_last_error());
                rc = steer_err(rc, "%s:%d: %s", path, it->line, msg);
            }
        }
        if (!rc) rc = query_append(e, &q);
        query_free(&q);
        if (rc) return rc;
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- (a) patching */

int steer_icl_patch(steer_icl *e, int qi, const unsigned char *layers, double *kl, double *max_abs)
{
    if (!e || qi < 0 || qi >= e->n_q) return steer_err(STEER_EARG, "icl: query %d out of range", qi);
    icl_query *q = &e->q[qi];
    const int V = e->V, d = e->d, pre = e->n_prefix;
    steer_ctx_clear_hooks(e->c);
    int rc = STEER_OK;
    for (int l = 0; l < e->L && !rc; l++) {
        if (layers && !layers[l]) continue;
        steer_intervention iv;
        memset(&iv, 0, sizeof iv);
        iv.kind = STEER_PATCH;
        iv.site = STEER_SITE_ATTN_OUT;
        iv.layer = l;
        iv.alpha = 1.0f;
        iv.data = q->icl_attn + (size_t)l * q->n * d;
        iv.n_rows = q->n;
        iv.positions.kind = STEER_POS_ALL;
        iv.seq = -1;
        int id = steer_ctx_add_intervention(e->c, &iv);
        if (id < 0) rc = id;
    }
    int lo = max_abs ? pre : q->r0, hi = max_abs ? q->n : q->r1;
    if (!rc) rc = run(e, q->tok, q->n, lo, hi);
    steer_ctx_clear_hooks(e->c);
    if (rc) return rc;
    if (kl) {
        double s = 0;
        for (int r = q->r0; r < q->r1; r++)
            s += steer_kl_logits(steer_ctx_logits(e->c, r), q->icl_logits + (size_t)(r - q->r0) * V, V);
        *kl = s / (q->r1 - q->r0);
    }
    if (max_abs) {
        if ((rc = reserve_logits(e, hi - lo))) return rc;
        for (int r = lo; r < hi; r++) memcpy(e->lbuf + (size_t)(r - lo) * V, steer_ctx_logits(e->c, r), (size_t)V * sizeof(float));
        int *icl = NULL, n_icl = 0;
        if ((rc = icl_tokens(e, q->tok, q->n, &icl, &n_icl))) return rc;
        rc = run(e, icl, n_icl, icl_pos(e, lo), icl_pos(e, hi - 1) + 1);
        free(icl);
        if (rc) return rc;
        double mx = 0;
        for (int r = lo; r < hi; r++) {
            const float *a = e->lbuf + (size_t)(r - lo) * V, *b = steer_ctx_logits(e->c, icl_pos(e, r));
            for (int v = 0; v < V; v++) {
                double df = fabs((double)a[v] - (double)b[v]);
                if (!(df <= mx)) mx = df; /* NaN propagates */
            }
        }
        *max_abs = mx;
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- (c) steering */

static int add_vectors(steer_icl *e, const steer_vecset *vs, float alpha)
{
    steer_ctx_clear_hooks(e->c);
    if (!vs) return STEER_OK;
    int rc = steer_vecset_check_model(vs, e->m, "vectors");
    if (!rc) rc = steer_vecset_apply(vs, e->c, alpha);
    return rc;
}

int steer_icl_kl(steer_icl *e, int qi, const steer_vecset *vs, float alpha, double *kl, double *kl_rows)
{
    if (!e || qi < 0 || qi >= e->n_q) return steer_err(STEER_EARG, "icl: query %d out of range", qi);
    icl_query *q = &e->q[qi];
    int rc = add_vectors(e, vs, alpha);
    if (!rc) rc = run(e, q->tok, q->n, q->r0, q->r1);
    steer_ctx_clear_hooks(e->c);
    if (rc) return rc;
    double s = 0;
    for (int r = q->r0; r < q->r1; r++) {
        double k = steer_kl_logits(steer_ctx_logits(e->c, r), q->icl_logits + (size_t)(r - q->r0) * e->V, e->V);
        if (kl_rows) kl_rows[r - q->r0] = k;
        s += k;
    }
    if (kl) *kl = s / (q->r1 - q->r0);
    return STEER_OK;
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

int steer_icl_answer(steer_icl *e, int qi, steer_icl_run mode, const steer_vecset *vs, float alpha, int *pick,
                     char **text)
{
    if (pick) *pick = -1;
    if (text) *text = NULL;
    if (!e || qi < 0 || qi >= e->n_q) return steer_err(STEER_EARG, "icl: query %d out of range", qi);
    icl_query *q = &e->q[qi];
    int *seq = NULL, n = 0, rc = STEER_OK;
    if (mode == STEER_ICL_RUN_CONTEXT) rc = icl_tokens(e, q->prompt, q->n_prompt, &seq, &n);
    else {
        seq = malloc((size_t)q->n_prompt * sizeof *seq);
        if (!seq) rc = steer_err(STEER_ENOMEM, "icl: out of memory");
        else memcpy(seq, q->prompt, (size_t)q->n_prompt * sizeof *seq);
        n = q->n_prompt;
    }
    if (rc) return rc;
    if (!rc) rc = add_vectors(e, vs, alpha);
    if (!rc) rc = run(e, seq, n, n - 1, n);
    const int nv = steer_vocab_size(e->m);
    size_t cap = 64, len = 0;
    char *buf = malloc(cap);
    if (!rc && !buf) rc = steer_err(STEER_ENOMEM, "icl: out of memory");
    if (buf) buf[0] = 0;
    int prev = q->prompt[q->n_prompt - 1], p = n;
    const float *lg = rc ? NULL : steer_ctx_logits(e->c, n - 1);
    for (int k = 0; !rc && k < q->k_gen; k++) {
        int tok = argmax(lg, nv);
        size_t pl = 0;
        const char *pc = steer_token_piece(e->m, prev, tok, &pl);
        if (!pc) pl = 0;
        if (len + pl + 1 > cap) {
            cap = (len + pl + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                rc = steer_err(STEER_ENOMEM, "icl: out of memory");
                break;
            }
            buf = nb;
        }
        memcpy(buf + len, pc ? pc : "", pl);
        len += pl;
        buf[len] = 0;
        prev = tok;
        if (k + 1 == q->k_gen) break;
        if (p >= e->W) break;
        steer_batch one = {.n = 1, .tokens = &tok, .pos = &p, .seq = NULL, .logits = NULL};
        if ((rc = steer_forward(e->c, &one))) break;
        lg = steer_ctx_logits(e->c, 0);
        p++;
    }
    steer_ctx_clear_hooks(e->c);
    free(seq);
    if (rc) {
        free(buf);
        return rc;
    }
    for (int c = 0; c < q->n_choices && pick && *pick < 0; c++)
        if (strncmp(buf, q->choices[c], strlen(q->choices[c])) == 0) *pick = c;
    if (text) *text = buf;
    else free(buf);
    return STEER_OK;
}

/* ---------------------------------------------------------------- (b) Δ_A */

int steer_icl_mean_delta(const steer_icl *e, steer_vecset **out)
{
    *out = NULL;
    if (!e || e->n_q == 0 || e->n_dpos == 0) return steer_err(STEER_EARG, "icl: no queries to average Δ_A over");
    steer_vecset *vs = NULL;
    int rc = steer_vecset_new(&vs);
    if (rc) return rc;
    float *v = malloc((size_t)e->d * sizeof *v);
    if (!v) rc = steer_err(STEER_ENOMEM, "icl: out of memory");
    for (int l = 0; !rc && l < e->L; l++) {
        for (int i = 0; i < e->d; i++) v[i] = (float)(e->dsum[(size_t)l * e->d + i] / (double)e->n_dpos);
        rc = steer_vecset_set(vs, STEER_SITE_ATTN_OUT, l, 0, e->d, v);
    }
    free(v);
    char num[32];
    const steer_model_config *cfg = steer_model_get_config(e->m);
    if (!rc) rc = steer_vecset_set_meta(vs, "format_version", "1");
    if (!rc) rc = steer_vecset_set_meta(vs, "model_hint", cfg->arch_name);
    if (!rc) rc = steer_vecset_set_meta(vs, "method", "icl-mean");
    if (!rc) rc = steer_vecset_set_meta(vs, "site", "attn_out");
    snprintf(num, sizeof num, "%d", cfg->d_model);
    if (!rc) rc = steer_vecset_set_meta(vs, "d_model", num);
    snprintf(num, sizeof num, "%d", e->n_q);
    if (!rc) rc = steer_vecset_set_meta(vs, "n_queries", num);
    snprintf(num, sizeof num, "%ld", e->n_dpos);
    if (!rc) rc = steer_vecset_set_meta(vs, "n_positions", num);
    snprintf(num, sizeof num, "%d", e->n_ctx);
    if (!rc) rc = steer_vecset_set_meta(vs, "context_tokens", num);
    if (rc) {
        steer_vecset_free(vs);
        return rc;
    }
    *out = vs;
    return STEER_OK;
}

/* ---------------------------------------------------------------- (d) learning */

steer_icl_learn_params steer_icl_learn_default_params(void)
{
    steer_icl_learn_params p;
    memset(&p, 0, sizeof p);
    p.steps = 100;
    p.batch = 8;
    p.lr = 1e-2;
    p.warmup = 0.03;
    p.seed = 1;
    return p;
}

/* A batch of queries idx[0..B) for the graph: tokens, lengths, KL rows and
 * the teacher's log-probabilities (from the kept ICL logits, in double). */
typedef struct {
    int *tokens, *lengths, *kl_rows;
    float *teacher;
    double *lp;
} lbatch;

static void lbatch_fill(const steer_icl *e, lbatch *lb, const int *idx, int B, trm_batch *tb)
{
    const int V = e->V;
    int T = 1, nk = 0;
    for (int b = 0; b < B; b++)
        if (e->q[idx[b]].n > T) T = e->q[idx[b]].n;
    for (int b = 0; b < B; b++) {
        const icl_query *q = &e->q[idx[b]];
        for (int t = 0; t < T; t++) lb->tokens[(size_t)b * T + t] = t < q->n ? q->tok[t] : 0;
        lb->lengths[b] = q->n;
        for (int r = q->r0; r < q->r1; r++) {
            lb->kl_rows[nk] = b * T + r;
            steer_log_softmax(q->icl_logits + (size_t)(r - q->r0) * V, V, lb->lp);
            float *dst = lb->teacher + (size_t)nk * V;
            for (int v = 0; v < V; v++) dst[v] = (float)lb->lp[v];
            nk++;
        }
    }
    memset(tb, 0, sizeof *tb);
    tb->B = B;
    tb->T = T;
    tb->tokens = lb->tokens;
    tb->lengths = lb->lengths;
    tb->n_kl = nk;
    tb->kl_rows = lb->kl_rows;
    tb->teacher_logp = lb->teacher;
    tb->kl_reverse = 1;
}

/* The objective over every query: Σ_rows KL / rows. */
static int learn_objective(const steer_icl *e, trm_f32 *t, lbatch *lb, int Bc, int *idx, double *out)
{
    double s = 0;
    long n = 0;
    for (int i0 = 0; i0 < e->n_q; i0 += Bc) {
        int B = e->n_q - i0 < Bc ? e->n_q - i0 : Bc;
        for (int b = 0; b < B; b++) idx[b] = i0 + b;
        trm_batch tb;
        lbatch_fill(e, lb, idx, B, &tb);
        int rc = trm_forward_f32(t, &tb);
        if (rc) return rc;
        trm_loss L = trm_get_loss_f32(t);
        s += L.kl * L.n_kl;
        n += L.n_kl;
    }
    *out = n ? s / (double)n : NAN;
    return STEER_OK;
}

int steer_icl_learn(steer_icl *e, steer_vecset *vs, const steer_icl_learn_params *pp, steer_icl_learn_result *res)
{
    steer_icl_learn_params p = pp ? *pp : steer_icl_learn_default_params();
    if (res) memset(res, 0, sizeof *res);
    if (!e || !vs) return steer_err(STEER_EARG, "icl learn: NULL argument");
    if (e->n_q == 0) return steer_err(STEER_EARG, "icl learn: no training queries");
    if (p.steps < 0 || p.batch < 1) return steer_err(STEER_EARG, "icl learn: steps must be >= 0 and batch >= 1");
    int rc = steer_vecset_check_model(vs, e->m, "initial vectors");
    if (rc) return rc;
    for (int i = 0; i < steer_vecset_count(vs); i++) {
        const steer_vec *v = steer_vecset_at(vs, i);
        if (v->site != STEER_SITE_ATTN_OUT || v->n_rows != 0)
            return steer_err(STEER_EARG, "icl learn: initial vectors must be one attn_out vector per layer, found %s.%d%s",
                             steer_site_name(v->site), v->layer, v->n_rows ? " per position" : "");
    }
    const int Bc = p.batch < e->n_q ? p.batch : e->n_q, V = e->V;
    int Tc = 1, Rc = 0;
    for (int i = 0; i < e->n_q; i++) {
        if (e->q[i].n > Tc) Tc = e->q[i].n;
        if (e->q[i].r1 - e->q[i].r0 > Rc) Rc = e->q[i].r1 - e->q[i].r0;
    }
    trm_spec s = trm_spec_default();
    s.B = Bc;
    s.T = Tc;
    if ((rc = trm_spec_method(&s, "vector"))) return rc;
    s.steer_site = STEER_SITE_ATTN_OUT;
    s.kl_rows = Bc * Rc;
    trm_f32 *t = NULL;
    tr_adamw *opt = NULL;
    tr_group *groups = NULL;
    lbatch lb = {0};
    int *idx = NULL, *perm = NULL;
    float *vbuf = NULL;
    if ((rc = trm_new_f32(e->m, &s, &t))) return rc;
    lb.tokens = malloc((size_t)Bc * Tc * sizeof(int));
    lb.lengths = malloc((size_t)Bc * sizeof(int));
    lb.kl_rows = malloc((size_t)Bc * Rc * sizeof(int));
    lb.teacher = malloc((size_t)Bc * Rc * V * sizeof(float));
    lb.lp = malloc((size_t)V * sizeof(double));
    idx = malloc((size_t)Bc * sizeof *idx);
    perm = malloc((size_t)e->n_q * sizeof *perm);
    vbuf = malloc((size_t)e->d * sizeof *vbuf);
    int ng = trm_n_tensors_f32(t);
    groups = calloc((size_t)ng, sizeof *groups);
    if (!lb.tokens || !lb.lengths || !lb.kl_rows || !lb.teacher || !lb.lp || !idx || !perm || !vbuf || !groups) {
        rc = steer_err(STEER_ENOMEM, "icl learn: out of memory");
        goto done;
    }
    /* initial values */
    float *P = trm_params_f32(t);
    for (int l = 0; l < e->L; l++) {
        char name[64];
        snprintf(name, sizeof name, "attn_out.%d", l);
        int ti = trm_find_tensor_f32(t, name);
        if (ti < 0) {
            rc = steer_err(STEER_EARG, "icl learn: no trainable tensor %s", name);
            goto done;
        }
        const trm_param *tp = trm_tensor_f32(t, ti);
        const steer_vec *v = steer_vecset_find(vs, STEER_SITE_ATTN_OUT, l);
        for (size_t k = 0; k < tp->numel; k++) P[tp->offset + k] = v ? v->data[k] : 0.0f;
    }
    for (int i = 0; i < ng; i++) {
        const trm_param *tp = trm_tensor_f32(t, i);
        groups[i] = tr_group_make(tp->name, P + tp->offset, trm_grads_f32(t) + tp->offset, tp->numel);
    }
    tr_adamw_params ap = tr_adamw_default_params();
    if ((rc = tr_adamw_new(groups, ng, &ap, &opt))) goto done;
    tr_schedule sch = tr_schedule_default();
    sch.kind = TR_SCHED_LINEAR;
    sch.lr = p.lr;
    sch.total_steps = p.steps > 0 ? p.steps : 1;
    sch.warmup_frac = p.warmup;
    if ((rc = tr_schedule_check(&sch))) goto done;
    double before = NAN, after = NAN;
    if ((rc = learn_objective(e, t, &lb, Bc, idx, &before))) goto done;
    int perm_epoch = -1, done_steps = 0;
    for (int st = 0; st < p.steps; st++) {
        trm_zero_grad_f32(t);
        for (int b = 0; b < Bc; b++) {
            long g = (long)st * Bc + b;
            int ep = (int)(g / e->n_q);
            if (ep != perm_epoch) {
                steer_data_permutation(e->n_q, p.seed + (uint64_t)ep, perm);
                perm_epoch = ep;
            }
            idx[b] = perm[g % e->n_q];
        }
        trm_batch tb;
        lbatch_fill(e, &lb, idx, Bc, &tb);
        if ((rc = trm_forward_f32(t, &tb)) || (rc = trm_backward_f32(t))) goto done;
        double loss = trm_get_loss_f32(t).kl;
        if (!isfinite(loss)) {
            rc = steer_err(STEER_ENAN, "icl learn: the objective is not finite at step %d", st + 1);
            goto done;
        }
        if ((rc = tr_adamw_step(opt, tr_schedule_lr(&sch, tr_adamw_steps(opt)), NULL))) goto done;
        done_steps = st + 1;
        if (p.on_step && p.on_step(p.ud, st + 1, p.steps, loss)) break;
    }
    if ((rc = learn_objective(e, t, &lb, Bc, idx, &after))) goto done;
    for (int l = 0; l < e->L && !rc; l++) {
        char name[64];
        snprintf(name, sizeof name, "attn_out.%d", l);
        const trm_param *tp = trm_tensor_f32(t, trm_find_tensor_f32(t, name));
        for (int k = 0; k < e->d; k++) vbuf[k] = P[tp->offset + k];
        rc = steer_vecset_set(vs, STEER_SITE_ATTN_OUT, l, 0, e->d, vbuf);
    }
    if (!rc && res) {
        res->steps = done_steps;
        res->loss_before = before;
        res->loss_after = after;
    }
done:
    tr_adamw_free(opt);
    free(groups);
    trm_free_f32(t);
    free(lb.tokens);
    free(lb.lengths);
    free(lb.kl_rows);
    free(lb.teacher);
    free(lb.lp);
    free(idx);
    free(perm);
    free(vbuf);
    return rc;
}

/* ---------------------------------------------------------------- experiment */

steer_icl_exp_params steer_icl_exp_default_params(void)
{
    steer_icl_exp_params p;
    memset(&p, 0, sizeof p);
    p.shots = 4;
    p.n_eval = 64;
    p.n_train = 128;
    p.score = STEER_ICL_SCORE_ANSWER;
    p.alpha = 1.0f;
    p.learn = steer_icl_learn_default_params();
    return p;
}

/* A CSV field: quoted when it holds a comma, quote or newline. */
static void tb_csv(sbuf *b, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        sb_puts(b, s);
        return;
    }
    sb_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"') sb_putc(b, '"');
        sb_putc(b, *s);
    }
    sb_putc(b, '"');
}

static int tb_write(sbuf *b, const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = b->oom ? steer_err(STEER_ENOMEM, "%s: out of memory", path) : io_write_atomic(path, b->p ? b->p : "", b->n);
    free(b->p);
    memset(b, 0, sizeof *b);
    return rc;
}

/* mean and standard error (sample std / √n; 0 for n = 1) of x[0..n). */
static void mean_se(const double *x, int n, double *mean, double *se)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += x[i];
    double m = n ? s / n : NAN;
    for (int i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
    *mean = m;
    *se = n > 1 ? sqrt(ss / (n - 1)) / sqrt((double)n) : 0.0;
}

enum { M_ZERO = 0, M_ICL, M_PATCH, M_MEAN, M_LEARNED, M_COUNT };
static const char *const method_names[M_COUNT] = {"zero-shot", "icl", "patched-all", "mean-delta", "learned"};
static const char *const method_keys[M_COUNT] = {"zero_shot", "icl", "patched_all", "mean_delta", "learned"};

static int progress(const steer_icl_exp_params *p, const char *stage, int done, int total)
{
    if (p->on_progress) p->on_progress(p->ud, stage, done, total);
    return 0;
}

static int learn_progress(void *ud, int step, int total, double loss)
{
    (void)loss;
    const steer_icl_exp_params *p = ud;
    progress(p, "learn", step, total);
    return 0;
}

static int set_vec_meta(steer_vecset *vs, const steer_icl_exp_params *p, const char *method)
{
    int rc = steer_vecset_set_meta(vs, "method", method);
    if (!rc && p->command) rc = steer_vecset_set_meta(vs, "command", p->command);
    if (!rc && p->model_path) rc = steer_vecset_set_meta(vs, "model", p->model_path);
    if (!rc && p->data_spec) rc = steer_vecset_set_meta(vs, "data", p->data_spec);
    return rc;
}

static int write_figures(const char *dir, const steer_icl_exp_params *p, int L, int Kmax, double *const *tok_mean,
                         const int *have, const double *layer_kl, double kl_zero, const char *model_name)
{
    char title[512];
    int rc = STEER_OK;
    double *xs = malloc((size_t)(Kmax > L ? Kmax : L) * sizeof *xs);
    double *zl = malloc((size_t)L * sizeof *zl), *rec = malloc((size_t)L * sizeof *rec);
    double *zero1 = malloc((size_t)L * sizeof *zero1), *zro = calloc((size_t)L, sizeof *zro);
    if (!xs || !zl || !rec || !zero1 || !zro) {
        rc = steer_err(STEER_ENOMEM, "icl: out of memory drawing figures");
        goto end;
    }
    /* KL to ICL per method, by scored token. */
    {
        plot_series ser[M_COUNT];
        int ns = 0;
        for (int k = 0; k < Kmax; k++) xs[k] = k + 1;
        const int order[] = {M_ZERO, M_MEAN, M_LEARNED};
        for (int i = 0; i < 3; i++) {
            int mth = order[i];
            if (!have[mth]) continue;
            ser[ns] = (plot_series){.label = method_names[mth], .x = xs, .y = tok_mean[mth], .n = Kmax, .markers = 1,
                                    .color = i + 1};
            ns++;
        }
        plot_panel pan = {.title = p->score == STEER_ICL_SCORE_ANSWER ? "by answer token" : "by query row (from the first)",
                          .xlabel = p->score == STEER_ICL_SCORE_ANSWER ? "answer token" : "scored row",
                          .ylabel = "KL(method ‖ ICL) (nats)", .series = ser, .n_series = ns};
        snprintf(title, sizeof title, "KL to the %d-shot ICL run, held-out queries — %s", p->shots, model_name);
        plot_figure fig = {.title = title, .legend = PLOT_LEGEND_FIGURE, .x_int_ticks = 1, .width = 800, .height = 440};
        rc = plot_write_pair(dir, "kl_to_icl", &fig, &pan, 1);
    }
    /* Recovery per layer. */
    if (!rc) {
        for (int l = 0; l < L; l++) {
            xs[l] = l;
            zl[l] = layer_kl[l];
            zero1[l] = kl_zero;
            rec[l] = kl_zero > 0 ? 1.0 - layer_kl[l] / kl_zero : NAN;
        }
        plot_series s1[3] = {
            {.label = "one layer patched", .x = xs, .y = zl, .n = L, .markers = 1, .color = 1},
            {.label = "zero-shot", .x = xs, .y = zero1, .n = L, .color = 8, .dashed = 1},
            {.label = "every layer patched (= ICL)", .x = xs, .y = zro, .n = L, .color = 3, .dashed = 1},
        };
        plot_series s2[1] = {{.label = "one layer patched", .x = xs, .y = rec, .n = L, .markers = 1, .color = 1}};
        plot_panel pans[2] = {
            {.title = "KL(patched ‖ ICL)", .xlabel = "layer", .ylabel = "nats", .series = s1, .n_series = 3},
            {.title = "recovery 1 − KL/KL(zero-shot)", .xlabel = "layer", .ylabel = "share", .series = s2,
             .n_series = 1},
        };
        snprintf(title, sizeof title, "attn_out of one layer from the ICL run — %s", model_name);
        plot_figure fig = {.title = title, .legend = PLOT_LEGEND_FIGURE, .x_int_ticks = 1, .share_x = 1, .cols = 2};
        rc = plot_write_pair(dir, "recovery_by_layer", &fig, pans, 2);
    }
end:
    free(xs);
    free(zl);
    free(rec);
    free(zero1);
    free(zro);
    return rc;
}

static const char *base_name(const char *path, char *buf, size_t n)
{
    const char *s = strrchr(path, '/');
    s = s ? s + 1 : path;
    snprintf(buf, n, "%s", s);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
    if (!buf[0]) snprintf(buf, n, "%s", path);
    return buf;
}

/* The experiment in steps (steer_exp.h: steer_icl_job). A record of held-out
 * query i (R scored rows, L layers) holds, in this order: double exact
 * (max |Δlogit| with every layer patched), double kl[M_COUNT], double
 * layer_kl[L], double rows[3][R] (KL by scored row: zero-shot, mean Δ_A,
 * learned), int pick[M_COUNT]. */
struct steer_icl_job {
    steer_icl_exp_params p;
    steer_model *m;
    const steer_dataset *queries, *pool;
    int lead, L, d, pre;
    double t_start;
    int *chosen, *ctx, n_ctx, n_skipped;
    steer_icl *ev, *tr;             /* held-out (prepared; run per item), training (lead) */
    steer_vecset *vmean, *vlearn;
    steer_icl_learn_result lr;
    int do_learn, any_choices, Kmax;
    int *ev_item;                   /* [NE] held-out query → dataset item */
    int *tr_item;                   /* lead: training query → dataset item */
    int trained;                    /* lead: steer_icl_job_train done   */
    unsigned char **recs;           /* lead: [NE] the records put       */
    int n_put;
};

enum { R_ZERO = 0, R_MEAN, R_LEARNED, R_COUNT }; /* the methods whose KL rows a record holds */

static size_t rec_size(int L, int R)
{
    return (size_t)(1 + M_COUNT + L + R_COUNT * R) * sizeof(double) + (size_t)M_COUNT * sizeof(int);
}

void steer_icl_job_free(steer_icl_job *x)
{
    if (!x) return;
    if (x->recs)
        for (int i = 0; i < (x->ev ? x->ev->n_q : 0); i++) free(x->recs[i]);
    free(x->recs);
    free(x->ev_item);
    free(x->tr_item);
    steer_vecset_free(x->vmean);
    steer_vecset_free(x->vlearn);
    steer_icl_free(x->ev);
    steer_icl_free(x->tr);
    free(x->ctx);
    free(x->chosen);
    free(x);
}

int steer_icl_job_new(steer_model *m, const steer_dataset *queries, const steer_dataset *pool,
                      const steer_icl_exp_params *pp, int lead, steer_icl_job **out)
{
    *out = NULL;
    const double t_start = io_now_s();
    steer_icl_exp_params p = pp ? *pp : steer_icl_exp_default_params();
    if (!m || !queries) return steer_err(STEER_EARG, "icl: NULL argument");
    if (!pool) pool = queries;
    if (p.shots < 1) return steer_err(STEER_EARG, "icl: shots must be >= 1, got %d", p.shots);
    if (p.n_eval < 1) return steer_err(STEER_EARG, "icl: at least one held-out query is needed, got %d", p.n_eval);
    if (p.n_train < 1) return steer_err(STEER_EARG, "icl: at least one training query is needed, got %d", p.n_train);
    if (!isfinite(p.alpha)) return steer_err(STEER_EARG, "icl: alpha is not finite");
    const steer_model_config *cfg = steer_model_get_config(m);
    steer_icl_job *x = calloc(1, sizeof *x);
    if (!x) return steer_err(STEER_ENOMEM, "icl: out of memory");
    x->p = p;
    x->m = m;
    x->queries = queries;
    x->pool = pool;
    x->lead = lead;
    x->L = cfg->n_layer;
    x->d = cfg->d_model;
    x->pre = adds_bos(m);
    x->t_start = t_start;
    x->do_learn = p.learn.steps > 0;
    x->lr = (steer_icl_learn_result){0, NAN, NAN};
    const int pre = x->pre;
    int rc = STEER_OK, n_ctx = 0;

    /* Context: the first `shots` items of the seed's permutation of the pool
     * that have a completion (and, with max_shot_tokens, are that short),
     * each tokenized on its own — the order steer_data_fewshot uses. */
    int *chosen = x->chosen = malloc((size_t)p.shots * sizeof *chosen);
    int *perm = malloc((size_t)(steer_data_count(pool) ? steer_data_count(pool) : 1) * sizeof *perm);
    int cap = 64;
    int *ctx = x->ctx = malloc((size_t)cap * sizeof *ctx);
    if (!chosen || !perm || !ctx) {
        free(perm);
        rc = steer_err(STEER_ENOMEM, "icl: out of memory");
        goto fail;
    }
    steer_data_permutation(steer_data_count(pool), p.seed, perm);
    if (pre) ctx[n_ctx++] = steer_token_bos(m);
    int got = 0, too_long = 0;
    for (int j = 0; j < steer_data_count(pool) && got < p.shots; j++) {
        const steer_data_item *it = steer_data_at(pool, perm[j]);
        if (!it->completion) continue;
        size_t len = strlen(it->prompt) + strlen(it->completion) + 3;
        char *s = malloc(len);
        if (!s) {
            rc = steer_err(STEER_ENOMEM, "icl: out of memory");
            break;
        }
        snprintf(s, len, "%s%s\n\n", it->prompt, it->completion);
        int *t = NULL, n = 0;
        rc = steer_tokenize_alloc(m, s, 0, &t, &n);
        free(s);
        if (rc) break;
        if (p.max_shot_tokens > 0 && n > p.max_shot_tokens) {
            free(t);
            too_long++;
            continue;
        }
        if (n_ctx + n > cap) {
            while (n_ctx + n > cap) cap *= 2;
            int *nc = realloc(ctx, (size_t)cap * sizeof *nc);
            if (!nc) {
                free(t);
                rc = steer_err(STEER_ENOMEM, "icl: out of memory");
                break;
            }
            ctx = x->ctx = nc;
        }
        memcpy(ctx + n_ctx, t, (size_t)n * sizeof *t);
        n_ctx += n;
        free(t);
        chosen[got++] = perm[j];
    }
    free(perm);
    x->n_ctx = n_ctx;
    if (rc) goto fail;
    if (got < p.shots) {
        rc = steer_err(STEER_EARG, "%s: %d demonstrations asked for but the pool has only %d with an answer%s",
                       steer_data_path(pool), p.shots, got,
                       p.max_shot_tokens > 0 ? " and at most --max-shot-tokens tokens" : "");
        goto fail;
    }
    if ((rc = steer_icl_new(m, ctx, n_ctx, p.n_threads, &x->ev))) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", steer_last_error());
        rc = steer_err(rc, "%d demonstrations: %s (use fewer --shots or --max-shot-tokens)", p.shots, msg);
        goto fail;
    }
    if (lead && (rc = steer_icl_new(m, ctx, n_ctx, p.n_threads, &x->tr))) goto fail;

    /* Queries: held-out first, then training; demonstrations are skipped,
     * and so are queries that do not fit the window after C. The held-out
     * ones are only prepared here (steer_icl_job_run runs them); the lead
     * runs the training ones, the others only check them. */
    {
        const int nq = steer_data_count(queries);
        int got_e = 0, got_t = 0;
        for (int i = 0; i < nq && (got_e < p.n_eval || got_t < p.n_train); i++) {
            const steer_data_item *it = steer_data_at(queries, i);
            int is_demo = 0;
            for (int k = 0; k < p.shots && !is_demo; k++) {
                const steer_data_item *dm = steer_data_at(pool, chosen[k]);
                is_demo = dm == it || strcmp(dm->prompt, it->prompt) == 0;
            }
            if (is_demo) continue;
            const int to_eval = got_e < p.n_eval;
            steer_icl *dst = to_eval ? x->ev : x->tr;
            icl_query q;
            memset(&q, 0, sizeof q);
            if ((rc = prepare_item(dst ? dst : x->ev, queries, i, p.score, &q)) == STEER_ECONTEXT) {
                x->n_skipped++; /* C ⊕ q does not fit the window: not a query of this context */
                rc = STEER_OK;
                continue;
            }
            if (!rc && (to_eval || lead)) {
                int **where = to_eval ? &x->ev_item : &x->tr_item, k = to_eval ? got_e : got_t;
                int *ni = realloc(*where, (size_t)(k + 1) * sizeof *ni);
                if (!ni) rc = steer_err(STEER_ENOMEM, "icl: out of memory");
                else (*where = ni)[k] = i;
            }
            if (!rc && (to_eval || lead)) rc = query_append(dst, &q);
            query_free(&q);
            if (rc) goto fail;
            if (to_eval) got_e++;
            else got_t++;
        }
        if (got_e == 0) {
            rc = steer_err(STEER_EARG, "%s: no queries (besides the demonstrations)", steer_data_path(queries));
            goto fail;
        }
        if (got_t == 0) {
            rc = steer_err(STEER_EARG, "%s: no training queries left after the %d held-out ones (use a smaller --n)",
                           steer_data_path(queries), got_e);
            goto fail;
        }
    }
    const int NE = x->ev->n_q;
    for (int i = 0; i < NE; i++) {
        if (steer_icl_n_scored(x->ev, i) > x->Kmax) x->Kmax = steer_icl_n_scored(x->ev, i);
        x->any_choices |= x->ev->q[i].n_choices > 0;
    }
    if (!lead) {
        *out = x;
        return STEER_OK;
    }
    if (!(x->recs = calloc((size_t)NE, sizeof *x->recs))) {
        rc = steer_err(STEER_ENOMEM, "icl: out of memory");
        goto fail;
    }
    *out = x;
    return STEER_OK;
fail:
    steer_icl_job_free(x);
    return rc;
}

int steer_icl_job_train(steer_icl_job *x)
{
    if (!x || !x->lead || !x->tr) return steer_err(STEER_EARG, "icl job: only the lead trains");
    if (x->trained) return steer_err(STEER_EARG, "icl job: trained already");
    const steer_icl_exp_params p = x->p;
    int rc = STEER_OK;
    /* The training queries' ICL and zero-shot runs, in order (the Δ_A sums). */
    for (int k = 0; k < x->tr->n_q; k++) {
        if ((rc = query_run(x->tr, &x->tr->q[k]))) {
            const steer_data_item *it = steer_data_at(x->queries, x->tr_item[k]);
            const char *path = steer_data_path(x->queries);
            if (path && path[0] && it->line > 0) {
                char msg[1024];
                snprintf(msg, sizeof msg, "%s", steer_last_error());
                rc = steer_err(rc, "%s:%d: %s", path, it->line, msg);
            }
            return rc;
        }
        progress(&p, "queries", k + 1, x->tr->n_q);
    }
    /* (b) Δ_A from the training queries; (d) learned from it. */
    if ((rc = steer_icl_mean_delta(x->tr, &x->vmean))) return rc;
    if ((rc = set_vec_meta(x->vmean, &x->p, "icl-mean"))) return rc;
    if (x->do_learn) {
        if ((rc = steer_icl_mean_delta(x->tr, &x->vlearn))) return rc;
        steer_icl_learn_params lp = p.learn;
        lp.on_step = learn_progress;
        lp.ud = &x->p;
        if ((rc = steer_icl_learn(x->tr, x->vlearn, &lp, &x->lr))) return rc;
        if ((rc = set_vec_meta(x->vlearn, &x->p, "icl-learned"))) return rc;
        char num[64];
        snprintf(num, sizeof num, "%d", x->lr.steps);
        if (!rc) rc = steer_vecset_set_meta(x->vlearn, "learn.steps", num);
        snprintf(num, sizeof num, "%.17g", p.learn.lr);
        if (!rc) rc = steer_vecset_set_meta(x->vlearn, "learn.lr", num);
        snprintf(num, sizeof num, "%.9g", x->lr.loss_before);
        if (!rc) rc = steer_vecset_set_meta(x->vlearn, "learn.loss_before", num);
        snprintf(num, sizeof num, "%.9g", x->lr.loss_after);
        if (!rc) rc = steer_vecset_set_meta(x->vlearn, "learn.loss_after", num);
        if (rc) return rc;
    }
    x->trained = 1;
    return STEER_OK;
}

int steer_icl_job_items(const steer_icl_job *x) { return x && x->ev ? x->ev->n_q : 0; }

const char *steer_icl_job_item_id(const steer_icl_job *x, int i)
{
    return x && x->ev ? steer_icl_query_id(x->ev, i) : NULL;
}

size_t steer_icl_job_record_size(const steer_icl_job *x, int i)
{
    if (!x || !x->ev || i < 0 || i >= x->ev->n_q) return 0;
    return rec_size(x->L, steer_icl_n_scored(x->ev, i));
}

int steer_icl_job_vectors(const steer_icl_job *x, float *mean, float *learned)
{
    if (!x || !x->vmean) return steer_err(STEER_EARG, "icl job: no vectors yet");
    for (int l = 0; l < x->L; l++) {
        const steer_vec *v = steer_vecset_find(x->vmean, STEER_SITE_ATTN_OUT, l);
        const steer_vec *w = x->vlearn ? steer_vecset_find(x->vlearn, STEER_SITE_ATTN_OUT, l) : NULL;
        if (!v || v->width != x->d || (x->vlearn && (!w || w->width != x->d)))
            return steer_err(STEER_EARG, "icl job: no attn_out.%d vector", l);
        memcpy(mean + (size_t)l * x->d, v->data, (size_t)x->d * sizeof(float));
        if (learned && w) memcpy(learned + (size_t)l * x->d, w->data, (size_t)x->d * sizeof(float));
    }
    return STEER_OK;
}

int steer_icl_job_set_vectors(steer_icl_job *x, const float *mean, const float *learned)
{
    if (!x || !mean || (x->do_learn && !learned)) return steer_err(STEER_EARG, "icl job: missing vectors");
    if (x->lead) return steer_err(STEER_EARG, "icl job: the lead makes its own vectors");
    steer_vecset *vs[2] = {NULL, NULL};
    const float *src[2] = {mean, x->do_learn ? learned : NULL};
    int rc = STEER_OK;
    for (int k = 0; k < 2 && !rc; k++) {
        if (!src[k]) continue;
        rc = steer_vecset_new(&vs[k]);
        for (int l = 0; l < x->L && !rc; l++)
            rc = steer_vecset_set(vs[k], STEER_SITE_ATTN_OUT, l, 0, x->d, src[k] + (size_t)l * x->d);
    }
    if (rc) {
        steer_vecset_free(vs[0]);
        steer_vecset_free(vs[1]);
        return rc;
    }
    steer_vecset_free(x->vmean);
    steer_vecset_free(x->vlearn);
    x->vmean = vs[0];
    x->vlearn = vs[1];
    return STEER_OK;
}

int steer_icl_job_run(steer_icl_job *x, int i, void *rec, size_t n)
{
    if (!x || !x->ev || i < 0 || i >= x->ev->n_q) return steer_err(STEER_EARG, "icl: held-out query %d out of range", i);
    if (n != steer_icl_job_record_size(x, i))
        return steer_err(STEER_EARG, "icl: query %d: a record of %zu bytes, want %zu", i, n,
                         steer_icl_job_record_size(x, i));
    if (!x->vmean || (x->do_learn && !x->vlearn)) return steer_err(STEER_EARG, "icl job: no vectors yet");
    steer_icl *ev = x->ev;
    icl_query *q = &ev->q[i];
    const int L = x->L, R = steer_icl_n_scored(ev, i);
    double exact = NAN, kl[M_COUNT], *layer_kl = NULL, *rows = NULL;
    int pick[M_COUNT];
    for (int mth = 0; mth < M_COUNT; mth++) pick[mth] = -1, kl[mth] = NAN;
    int rc = query_run(ev, q);
    if (rc) {
        const steer_data_item *it = steer_data_at(x->queries, x->ev_item[i]);
        const char *path = steer_data_path(x->queries);
        if (it && path && path[0] && it->line > 0) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", steer_last_error());
            rc = steer_err(rc, "%s:%d: %s", path, it->line, msg);
        }
        return rc;
    }
    layer_kl = malloc((size_t)L * sizeof *layer_kl);
    rows = malloc((size_t)R_COUNT * (R > 0 ? R : 1) * sizeof *rows);
    if (!layer_kl || !rows) {
        rc = steer_err(STEER_ENOMEM, "icl: out of memory");
        goto end;
    }
    for (int k = 0; k < R_COUNT * R; k++) rows[k] = NAN;
    /* (a) every layer patched, then one layer at a time. */
    if ((rc = steer_icl_patch(ev, i, NULL, &kl[M_PATCH], &exact))) goto end;
    if (L > STEER_SWEEP_MAX_LAYERS) {
        rc = steer_err(STEER_EARG, "icl: more than %d layers", STEER_SWEEP_MAX_LAYERS);
        goto end;
    }
    for (int l = 0; l < L; l++) {
        unsigned char mask[STEER_SWEEP_MAX_LAYERS];
        memset(mask, 0, sizeof mask);
        mask[l] = 1;
        if ((rc = steer_icl_patch(ev, i, mask, &layer_kl[l], NULL))) goto end;
    }
    /* (c), (d): KL to ICL, zero-shot and steered. */
    kl[M_ICL] = 0.0;
    {
        const int mths[R_COUNT] = {M_ZERO, M_MEAN, M_LEARNED};
        const steer_vecset *vsm[R_COUNT] = {NULL, x->vmean, x->vlearn};
        for (int k = 0; k < R_COUNT; k++) {
            const int mth = mths[k];
            if (mth == M_LEARNED && !x->do_learn) continue;
            if ((rc = steer_icl_kl(ev, i, vsm[k], mth == M_ZERO ? 1.0f : x->p.alpha, &kl[mth], rows + (size_t)k * R)))
                goto end;
        }
    }
    if (x->any_choices) {
        if ((rc = steer_icl_answer(ev, i, STEER_ICL_RUN_ZERO, NULL, 1.0f, &pick[M_ZERO], NULL))) goto end;
        if ((rc = steer_icl_answer(ev, i, STEER_ICL_RUN_CONTEXT, NULL, 1.0f, &pick[M_ICL], NULL))) goto end;
        if ((rc = steer_icl_answer(ev, i, STEER_ICL_RUN_ZERO, x->vmean, x->p.alpha, &pick[M_MEAN], NULL))) goto end;
        if (x->do_learn &&
            (rc = steer_icl_answer(ev, i, STEER_ICL_RUN_ZERO, x->vlearn, x->p.alpha, &pick[M_LEARNED], NULL)))
            goto end;
    }
    {
        unsigned char *o = rec;
        memcpy(o, &exact, sizeof exact), o += sizeof exact;
        memcpy(o, kl, sizeof kl), o += sizeof kl;
        memcpy(o, layer_kl, (size_t)L * sizeof *layer_kl), o += (size_t)L * sizeof *layer_kl;
        memcpy(o, rows, (size_t)R_COUNT * R * sizeof *rows), o += (size_t)R_COUNT * R * sizeof *rows;
        memcpy(o, pick, sizeof pick);
    }
end:
    /* The query's ICL logits and attn_out are not needed any more. */
    free(q->icl_logits);
    free(q->icl_attn);
    q->icl_logits = NULL;
    q->icl_attn = NULL;
    free(layer_kl);
    free(rows);
    return rc;
}

int steer_icl_job_put(steer_icl_job *x, int i, const void *rec, size_t n)
{
    if (!x || !x->lead || !x->recs) return steer_err(STEER_EARG, "icl job: only the lead collects records");
    if (i < 0 || i >= x->ev->n_q) return steer_err(STEER_EARG, "icl: held-out query %d out of range", i);
    if (n != steer_icl_job_record_size(x, i))
        return steer_err(STEER_EFORMAT, "icl: query %d: a record of %zu bytes, want %zu", i, n,
                         steer_icl_job_record_size(x, i));
    if (x->recs[i]) return steer_err(STEER_EARG, "icl: query %d put twice", i);
    if (!(x->recs[i] = malloc(n))) return steer_err(STEER_ENOMEM, "icl: out of memory");
    memcpy(x->recs[i], rec, n);
    x->n_put++;
    progress(&x->p, "evaluate", x->n_put, x->ev->n_q);
    return STEER_OK;
}

int steer_icl_job_finish(steer_icl_job *x, const char *out_dir, steer_icl_exp_result *res)
{
    if (res) memset(res, 0, sizeof *res);
    if (!x || !x->lead || !x->recs || !x->trained || !out_dir)
        return steer_err(STEER_EARG, "icl job: only the lead finishes, after steer_icl_job_train");
    if (x->n_put != x->ev->n_q) return steer_err(STEER_EARG, "icl: %d of %d held-out queries put", x->n_put, x->ev->n_q);
    const steer_icl_exp_params p = x->p;
    const steer_dataset *pool = x->pool;
    const steer_model_config *cfg = steer_model_get_config(x->m);
    const int L = x->L, n_ctx = x->n_ctx, n_skipped = x->n_skipped, do_learn = x->do_learn, any_choices = x->any_choices,
              Kmax = x->Kmax;
    const int *chosen = x->chosen;
    steer_icl *ev = x->ev, *tr = x->tr;
    const steer_vecset *vmean = x->vmean, *vlearn = x->vlearn;
    const steer_icl_learn_result lr = x->lr;
    const double t_start = x->t_start;
    int rc = STEER_OK;
    double *kl[M_COUNT] = {0}, *tok_sum[M_COUNT] = {0}, *tok_mean[M_COUNT] = {0};
    int *tok_n = NULL, *pick[M_COUNT] = {0};
    double *layer_kl = NULL, *exact = NULL, *lk_mean = NULL, *lk_se = NULL;
    cJSON *js = NULL;
    const int NE = steer_icl_n_queries(ev);
    for (int mth = 0; mth < M_COUNT; mth++) {
        kl[mth] = malloc((size_t)NE * sizeof(double));
        tok_sum[mth] = calloc((size_t)Kmax + 1, sizeof(double));
        tok_mean[mth] = malloc(((size_t)Kmax + 1) * sizeof(double));
        pick[mth] = malloc((size_t)NE * sizeof(int));
        if (!kl[mth] || !tok_sum[mth] || !tok_mean[mth] || !pick[mth]) {
            rc = steer_err(STEER_ENOMEM, "icl: out of memory");
            goto done;
        }
    }
    tok_n = calloc((size_t)Kmax + 1, sizeof *tok_n);
    layer_kl = malloc((size_t)L * NE * sizeof *layer_kl);
    exact = malloc((size_t)NE * sizeof *exact);
    if (!tok_n || !layer_kl || !exact) {
        rc = steer_err(STEER_ENOMEM, "icl: out of memory");
        goto done;
    }
    /* The records, in query order (the sums run in the order one process
     * runs the queries). */
    for (int i = 0; i < NE; i++) {
        const int R = steer_icl_n_scored(ev, i);
        const unsigned char *o = x->recs[i];
        double k5[M_COUNT];
        int p5[M_COUNT];
        memcpy(&exact[i], o, sizeof(double)), o += sizeof(double);
        memcpy(k5, o, sizeof k5), o += sizeof k5;
        for (int l = 0; l < L; l++, o += sizeof(double)) memcpy(&layer_kl[(size_t)l * NE + i], o, sizeof(double));
        const unsigned char *rows = o;
        o += (size_t)R_COUNT * R * sizeof(double);
        memcpy(p5, o, sizeof p5);
        for (int mth = 0; mth < M_COUNT; mth++) {
            kl[mth][i] = k5[mth];
            pick[mth][i] = p5[mth];
        }
        const int mths[R_COUNT] = {M_ZERO, M_MEAN, M_LEARNED};
        for (int k = 0; k < R_COUNT; k++) {
            if (mths[k] == M_LEARNED && !do_learn) continue;
            for (int r = 0; r < R; r++) {
                double v;
                memcpy(&v, rows + ((size_t)k * R + r) * sizeof(double), sizeof v);
                tok_sum[mths[k]][r] += v;
            }
        }
        for (int r = 0; r < R; r++) tok_n[r]++;
    }
    for (int mth = 0; mth < M_COUNT; mth++)
        for (int k = 0; k < Kmax; k++) tok_mean[mth][k] = tok_n[k] ? tok_sum[mth][k] / tok_n[k] : NAN;

    /* Aggregates. */
    double km[M_COUNT], kse[M_COUNT], acc[M_COUNT], fmt[M_COUNT];
    int have[M_COUNT] = {1, 1, 1, 1, do_learn};
    double max_exact = 0;
    for (int i = 0; i < NE; i++)
        if (!(exact[i] <= max_exact)) max_exact = exact[i];
    for (int mth = 0; mth < M_COUNT; mth++) {
        km[mth] = kse[mth] = acc[mth] = fmt[mth] = NAN;
        if (!have[mth]) continue;
        mean_se(kl[mth], NE, &km[mth], &kse[mth]);
        if (any_choices && mth != M_PATCH) {
            int na = 0, nf = 0;
            for (int i = 0; i < NE; i++) {
                nf += pick[mth][i] >= 0;
                na += pick[mth][i] >= 0 && pick[mth][i] == ev->q[i].label;
            }
            acc[mth] = (double)na / NE;
            fmt[mth] = (double)nf / NE;
        }
    }
    lk_mean = malloc((size_t)L * sizeof *lk_mean);
    lk_se = malloc((size_t)L * sizeof *lk_se);
    if (!lk_mean || !lk_se) {
        rc = steer_err(STEER_ENOMEM, "icl: out of memory");
        goto done;
    }
    for (int l = 0; l < L; l++) mean_se(layer_kl + (size_t)l * NE, NE, &lk_mean[l], &lk_se[l]);

    /* Files. */
    if ((rc = io_mkdir_p(out_dir))) goto done;
    char model_name[256];
    base_name(p.model_path ? p.model_path : cfg->arch_name, model_name, sizeof model_name);
    {
        sbuf b = {0};
        sb_printf(&b, "method,kl_mean,kl_se,acc,format,n\n");
        for (int mth = 0; mth < M_COUNT; mth++) {
            if (!have[mth]) continue;
            sb_printf(&b, "%s,%.9g,%.9g,", method_names[mth], km[mth], kse[mth]);
            if (isfinite(acc[mth])) sb_printf(&b, "%.9g,%.9g,%d\n", acc[mth], fmt[mth], NE);
            else sb_printf(&b, ",,%d\n", NE);
        }
        if ((rc = tb_write(&b, out_dir, "icl.csv"))) goto done;
        sb_printf(&b, "layer,kl_patch_mean,kl_patch_se,recovery,delta_norm,learned_norm,n\n");
        for (int l = 0; l < L; l++) {
            const steer_vec *vm = steer_vecset_find(vmean, STEER_SITE_ATTN_OUT, l);
            const steer_vec *vl = vlearn ? steer_vecset_find(vlearn, STEER_SITE_ATTN_OUT, l) : NULL;
            sb_printf(&b, "%d,%.9g,%.9g,%.9g,%.9g,", l, lk_mean[l], lk_se[l],
                      km[M_ZERO] > 0 ? 1.0 - lk_mean[l] / km[M_ZERO] : NAN, vm ? steer_vec_norm(vm->data, vm->width) : NAN);
            if (vl) sb_printf(&b, "%.9g,%d\n", steer_vec_norm(vl->data, vl->width), NE);
            else sb_printf(&b, ",%d\n", NE);
        }
        if ((rc = tb_write(&b, out_dir, "icl_layers.csv"))) goto done;
        sb_printf(&b, "id,label,n_scored,exact_max_abs,kl_zero,kl_mean_delta,kl_learned,pick_zero,pick_icl,"
                      "pick_mean_delta,pick_learned\n");
        for (int i = 0; i < NE; i++) {
            tb_csv(&b, ev->q[i].id);
            sb_printf(&b, ",%d,%d,%.9g,%.9g,%.9g,", ev->q[i].label, steer_icl_n_scored(ev, i), exact[i], kl[M_ZERO][i],
                      kl[M_MEAN][i]);
            if (do_learn) sb_printf(&b, "%.9g", kl[M_LEARNED][i]);
            sb_printf(&b, ",%d,%d,%d,", pick[M_ZERO][i], pick[M_ICL][i], pick[M_MEAN][i]);
            if (do_learn) sb_printf(&b, "%d", pick[M_LEARNED][i]);
            sb_printf(&b, "\n");
        }
        if ((rc = tb_write(&b, out_dir, "items_icl.csv"))) goto done;
    }
    {
        char path[4200];
        snprintf(path, sizeof path, "%s/mean_delta.safetensors", out_dir);
        if ((rc = steer_vecset_save(vmean, path))) goto done;
        if (vlearn) {
            snprintf(path, sizeof path, "%s/learned.safetensors", out_dir);
            if ((rc = steer_vecset_save(vlearn, path))) goto done;
        }
    }
    if ((rc = write_figures(out_dir, &p, L, Kmax, tok_mean, have, lk_mean, km[M_ZERO], model_name))) goto done;

    /* summary_icl.json */
    js = cJSON_CreateObject();
    if (!js) {
        rc = steer_err(STEER_ENOMEM, "icl: out of memory");
        goto done;
    }
    {
        cJSON_AddStringToObject(js, "format", "steer-icl/1");
        cJSON_AddStringToObject(js, "model", model_name);
        if (p.model_path) cJSON_AddStringToObject(js, "model_path", p.model_path);
        cJSON_AddStringToObject(js, "arch", cfg->arch_name);
        cJSON_AddNumberToObject(js, "n_layers", L);
        cJSON_AddNumberToObject(js, "d_model", cfg->d_model);
        if (p.data_spec) cJSON_AddStringToObject(js, "data", p.data_spec);
        if (p.pool_spec) cJSON_AddStringToObject(js, "pool", p.pool_spec);
        cJSON_AddNumberToObject(js, "shots", p.shots);
        cJSON_AddNumberToObject(js, "seed", (double)p.seed);
        cJSON *demo = cJSON_AddArrayToObject(js, "demonstrations");
        for (int k = 0; demo && k < p.shots; k++)
            cJSON_AddItemToArray(demo, cJSON_CreateString(steer_data_at(pool, chosen[k])->id));
        cJSON_AddStringToObject(js, "score", steer_icl_score_name(p.score));
        cJSON_AddNumberToObject(js, "alpha", p.alpha);
        cJSON_AddNumberToObject(js, "n_eval", NE);
        cJSON_AddNumberToObject(js, "n_train", steer_icl_n_queries(tr));
        cJSON_AddNumberToObject(js, "max_shot_tokens", p.max_shot_tokens);
        cJSON_AddNumberToObject(js, "n_skipped_too_long", n_skipped);
        cJSON_AddNumberToObject(js, "context_tokens", n_ctx);
        cJSON_AddNumberToObject(js, "kv_bytes", (double)steer_icl_kv_bytes(ev));
        cJSON_AddNumberToObject(js, "vec_bytes", (double)steer_icl_vec_bytes(ev));
        cJSON_AddNumberToObject(js, "memory_ratio", (double)steer_icl_kv_bytes(ev) / (double)steer_icl_vec_bytes(ev));
        cJSON_AddNumberToObject(js, "exact_max_abs", max_exact);
        cJSON *ms = cJSON_AddObjectToObject(js, "methods");
        for (int mth = 0; ms && mth < M_COUNT; mth++) {
            if (!have[mth]) continue;
            cJSON *o = cJSON_AddObjectToObject(ms, method_keys[mth]);
            if (!o) continue;
            cJSON_AddNumberToObject(o, "kl_mean", km[mth]);
            cJSON_AddNumberToObject(o, "kl_se", kse[mth]);
            if (isfinite(acc[mth])) {
                cJSON_AddNumberToObject(o, "acc", acc[mth]);
                cJSON_AddNumberToObject(o, "format", fmt[mth]);
            } else {
                cJSON_AddNullToObject(o, "acc");
            }
            cJSON *tk = cJSON_AddArrayToObject(o, "kl_by_token");
            for (int k = 0; tk && k < Kmax; k++)
                cJSON_AddItemToArray(tk, isfinite(tok_mean[mth][k]) ? cJSON_CreateNumber(tok_mean[mth][k]) : cJSON_CreateNull());
        }
        cJSON *ly = cJSON_AddArrayToObject(js, "layers");
        for (int l = 0; ly && l < L; l++) {
            cJSON *o = cJSON_CreateObject();
            if (!o) break;
            cJSON_AddNumberToObject(o, "layer", l);
            cJSON_AddNumberToObject(o, "kl_patch_mean", lk_mean[l]);
            cJSON_AddNumberToObject(o, "kl_patch_se", lk_se[l]);
            double recv = km[M_ZERO] > 0 ? 1.0 - lk_mean[l] / km[M_ZERO] : NAN;
            if (isfinite(recv)) cJSON_AddNumberToObject(o, "recovery", recv);
            else cJSON_AddNullToObject(o, "recovery");
            const steer_vec *vm = steer_vecset_find(vmean, STEER_SITE_ATTN_OUT, l);
            cJSON_AddNumberToObject(o, "delta_norm", vm ? steer_vec_norm(vm->data, vm->width) : 0);
            cJSON_AddItemToArray(ly, o);
        }
        cJSON *lo = cJSON_AddObjectToObject(js, "learn");
        if (lo) {
            cJSON_AddNumberToObject(lo, "steps", do_learn ? lr.steps : 0);
            cJSON_AddNumberToObject(lo, "batch", p.learn.batch);
            cJSON_AddNumberToObject(lo, "lr", p.learn.lr);
            if (do_learn) {
                cJSON_AddNumberToObject(lo, "loss_before", lr.loss_before);
                cJSON_AddNumberToObject(lo, "loss_after", lr.loss_after);
            }
        }
        if (p.command) cJSON_AddStringToObject(js, "command", p.command);
        cJSON_AddNumberToObject(js, "wall_s", io_now_s() - t_start);
        char path[4200];
        snprintf(path, sizeof path, "%s/summary_icl.json", out_dir);
        rc = io_write_json(path, js);
        if (rc) goto done;
    }
    if (res) {
        res->context_tokens = n_ctx;
        res->n_eval = NE;
        res->n_train = steer_icl_n_queries(tr);
        res->n_skipped = n_skipped;
        res->kv_bytes = steer_icl_kv_bytes(ev);
        res->vec_bytes = steer_icl_vec_bytes(ev);
        res->exact_max_abs = max_exact;
        res->kl_zero = km[M_ZERO];
        res->kl_mean = km[M_MEAN];
        res->kl_learned = km[M_LEARNED];
        res->acc_zero = acc[M_ZERO];
        res->acc_icl = acc[M_ICL];
        res->acc_mean = acc[M_MEAN];
        res->acc_learned = acc[M_LEARNED];
        res->learn_before = lr.loss_before;
        res->learn_after = lr.loss_after;
    }
done:
    cJSON_Delete(js);
    for (int mth = 0; mth < M_COUNT; mth++) {
        free(kl[mth]);
        free(tok_sum[mth]);
        free(tok_mean[mth]);
        free(pick[mth]);
    }
    free(tok_n);
    free(layer_kl);
    free(exact);
    free(lk_mean);
    free(lk_se);
    return rc;
}

int steer_icl_experiment(steer_model *m, const steer_dataset *queries, const steer_dataset *pool,
                         const steer_icl_exp_params *pp, const char *out_dir, steer_icl_exp_result *res)
{
    /* One process: every held-out query in order, run and put. */
    if (res) memset(res, 0, sizeof *res);
    if (!m || !queries || !out_dir) return steer_err(STEER_EARG, "icl: NULL argument");
    steer_icl_job *x = NULL;
    int rc = steer_icl_job_new(m, queries, pool, pp, 1, &x);
    if (!rc) rc = steer_icl_job_train(x);
    void *rec = NULL;
    size_t cap = 0;
    for (int i = 0; !rc && i < steer_icl_job_items(x); i++) {
        const size_t n = steer_icl_job_record_size(x, i);
        if (n > cap) {
            void *nr = realloc(rec, n);
            if (!nr) {
                rc = steer_err(STEER_ENOMEM, "icl: out of memory");
                break;
            }
            rec = nr;
            cap = n;
        }
        if (!(rc = steer_icl_job_run(x, i, rec, n))) rc = steer_icl_job_put(x, i, rec, n);
    }
    free(rec);
    if (!rc) rc = steer_icl_job_finish(x, out_dir, res);
    steer_icl_job_free(x);
    return rc;
}

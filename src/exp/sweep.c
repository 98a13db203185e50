/*
 * src/exp/ — tier 5, libsteer-exp: the experiments (sweep.c E1,
 * mlp_analysis.c E2, icl.c E3, adapt.c the E4 summary) and the report
 * (report.c over the document model in report_doc.c). They use the core
 * through its public API (steer.h) and the training tier's private ABI.
 *
 * sweep.c — the oracle ΔKL sweep (SPEC §4 E1): the engine, its per-item
 * results as a table (items.csv, dkl.csv, summary.json), shards and merging,
 * and the resume journal (progress.jsonl). docs/SWEEP.md describes the files.
 *
 * Per item (one worker thread, its own contexts):
 *   1. F on s = p ⊕ c: the greedy continuation c (or the gold one), F's
 *      log-probabilities lpF[k] at the K' positions predicting c_1 … c_K', and
 *      F's activations at the δ site of every swept layer (a capture hook).
 *   2. B on s, once: lpB[k], KL_base[k], and B's activations at every point
 *      a steered run will start from (the "entry": see entry_of) — the
 *      residual stream and the site's own activation there.
 *   3. For each (site, layer): δ = act_F − act_B; the α values ≠ 0 run as one
 *      batch of sequences (sequence a carries α_a·δ, an ordinary STEER_ADD
 *      intervention), starting at the steered site of layer l from B's
 *      captured state (steer_forward_resume), so layers below l — and the part of layer
 *      l before the site — are never recomputed. The last layer computes only
 *      the K' rows whose logits are read (after caching every row's K/V).
 *      With --positions continuation, positions before the continuation are
 *      B's own in every layer: only the continuation rows run, over B's
 *      cached K/V of the prompt. α = 0 is B's own run (KL = KL_base).
 * ops_matmul is batch-invariant (a row's numbers do not depend on the other
 * rows), so this gives bit for bit what the naive path gives: one full
 * steer_forward from the embeddings per (site, layer, α).
 *
 * Threads: items are split over OpenMP threads; each context is used by one
 * thread, and every number is a per-item function, so results do not depend
 * on the thread count. Aggregates are summed in item order.
 */
#include "steer_exp.h"
#include "base.h"
#include "data.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* ---------------------------------------------------------------- params */

static const steer_site default_sites[] = {STEER_SITE_MLP_IN, STEER_SITE_ATTN_OUT, STEER_SITE_MLP_OUT,
                                           STEER_SITE_RESID_POST};
static const float default_alphas[] = {0.0f, 0.1f, 0.25f, 0.5f, 1.0f};

steer_sweep_params steer_sweep_default_params(void)
{
    steer_sweep_params p;
    memset(&p, 0, sizeof p);
    p.n_sites = 4;
    memcpy(p.sites, default_sites, sizeof default_sites);
    p.n_alphas = 5;
    memcpy(p.alphas, default_alphas, sizeof default_alphas);
    p.tokens = 5;
    p.continuation = STEER_SWEEP_CONT_FT;
    p.positions = STEER_POS_ALL;
    p.delta_site = -1;
    p.shard_index = 0;
    p.shard_count = 1;
    return p;
}

const char *steer_sweep_cont_name(steer_sweep_cont c) { return c == STEER_SWEEP_CONT_GOLD ? "gold" : "ft"; }

const char *steer_sweep_pos_name(steer_pos_kind p)
{
    return p == STEER_POS_PROMPT ? "prompt" : p == STEER_POS_GENERATED ? "continuation" : "all";
}

/* Shortest decimal that reads back to v (alphas print as 0.1, not
 * 0.100000001). */
static void fmt_float(char *buf, size_t n, float v)
{
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, n, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

/* Shortest of %.15g, %.16g, %.17g that reads back to v exactly; "" for NaN. */
static void fmt_double(char *buf, size_t n, double v)
{
    if (isnan(v)) {
        buf[0] = 0;
        return;
    }
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* The entry point of a steered run at `site` (a site steer_forward_resume
 * starts at):
 * the MLP's inner sites start at mlp_in and recompute gate/up/act. */
static steer_site entry_of(steer_site s)
{
    switch (s) {
    case STEER_SITE_MLP_GATE:
    case STEER_SITE_MLP_UP:
    case STEER_SITE_MLP_ACT: return STEER_SITE_MLP_IN;
    default: return s;
    }
}

/* The residual stream held at an entry (steer_forward_resume's x_in). */
static steer_site entry_x(steer_site e)
{
    switch (e) {
    case STEER_SITE_RESID_PRE:
    case STEER_SITE_ATTN_OUT: return STEER_SITE_RESID_PRE;
    case STEER_SITE_RESID_POST: return STEER_SITE_RESID_POST;
    default: return STEER_SITE_RESID_MID;
    }
}

static int entry_has_xb(steer_site e)
{
    return e == STEER_SITE_ATTN_OUT || e == STEER_SITE_MLP_IN || e == STEER_SITE_MLP_OUT;
}

static int delta_src(const steer_sweep_params *p, steer_site s)
{
    return p->delta_site >= 0 ? p->delta_site : (int)s;
}

int steer_sweep_check(const steer_model *base, const steer_model *ft, steer_sweep_params *p)
{
    const steer_model_config *a = steer_model_get_config(base), *b = steer_model_get_config(ft);
    if (a->arch != b->arch)
        return steer_err(STEER_EARG, "models differ: architecture %s (base) vs %s (fine-tuned)", a->arch_name,
                         b->arch_name);
#define SAME(field, name)                                                                                         \
    if (a->field != b->field)                                                                                   \
        return steer_err(STEER_EARG, "models differ: %s %d (base) vs %d (fine-tuned)", name, (int)a->field,      \
                         (int)b->field);
    SAME(n_layer, "layers")
    SAME(d_model, "d_model")
    SAME(n_head, "heads")
    SAME(n_kv_head, "kv_heads")
    SAME(head_dim, "head_dim")
    SAME(d_ff, "d_ff")
    SAME(n_vocab, "vocabulary size")
#undef SAME
    const int nta = steer_tokenizer_size(base), ntb = steer_tokenizer_size(ft);
    if (nta != ntb)
        return steer_err(STEER_EARG, "tokenizers differ: %d tokens (base) vs %d (fine-tuned)", nta, ntb);
    if (steer_token_bos(base) != steer_token_bos(ft) || steer_token_eos(base) != steer_token_eos(ft))
        return steer_err(STEER_EARG, "tokenizers differ: BOS/EOS %d/%d (base) vs %d/%d (fine-tuned)",
                         steer_token_bos(base), steer_token_eos(base), steer_token_bos(ft), steer_token_eos(ft));
    for (int i = 0; i < nta; i++) {
        size_t la = 0, lb = 0;
        const char *pa = steer_token_piece(base, -1, i, &la), *pb = steer_token_piece(ft, -1, i, &lb);
        if (la != lb || (la && memcmp(pa, pb, la) != 0))
            return steer_err(STEER_EARG, "tokenizers differ: token %d is '%.*s' (base) vs '%.*s' (fine-tuned)", i,
                             (int)(la > 40 ? 40 : la), pa ? pa : "", (int)(lb > 40 ? 40 : lb), pb ? pb : "");
    }
    const int L = a->n_layer;
    if (p->n_sites < 1 || p->n_sites > STEER_SITE_COUNT)
        return steer_err(STEER_EARG, "sweep: %d sites (1..%d)", p->n_sites, STEER_SITE_COUNT);
    for (int i = 0; i < p->n_sites; i++) {
        if ((unsigned)p->sites[i] >= STEER_SITE_COUNT)
            return steer_err(STEER_EARG, "sweep: unknown site %d", (int)p->sites[i]);
        for (int j = 0; j < i; j++)
            if (p->sites[j] == p->sites[i])
                return steer_err(STEER_EARG, "sweep: site %s given twice", steer_site_name(p->sites[i]));
    }
    if (p->delta_site >= STEER_SITE_COUNT || p->delta_site < -1)
        return steer_err(STEER_EARG, "sweep: unknown delta site %d", p->delta_site);
    if (p->delta_site >= 0)
        for (int i = 0; i < p->n_sites; i++)
            if (steer_model_site_width(base, p->sites[i]) != steer_model_site_width(base, (steer_site)p->delta_site))
                return steer_err(STEER_EARG, "sweep: delta site %s is %d wide but site %s is %d wide",
                                 steer_site_name((steer_site)p->delta_site),
                                 steer_model_site_width(base, (steer_site)p->delta_site),
                                 steer_site_name(p->sites[i]), steer_model_site_width(base, p->sites[i]));
    if (p->n_layers == 0) {
        if (L > STEER_SWEEP_MAX_LAYERS)
            return steer_err(STEER_EUNSUPPORTED, "sweep: the model has %d layers (at most %d)", L,
                             STEER_SWEEP_MAX_LAYERS);
        p->n_layers = L;
        for (int l = 0; l < L; l++) p->layers[l] = l;
    }
    if (p->n_layers < 0 || p->n_layers > STEER_SWEEP_MAX_LAYERS)
        return steer_err(STEER_EARG, "sweep: %d layers", p->n_layers);
    for (int i = 0; i < p->n_layers; i++) {
        if (p->layers[i] < 0 || p->layers[i] >= L)
            return steer_err(STEER_EARG, "sweep: layer %d out of range (model has %d layers)", p->layers[i], L);
        if (i > 0 && p->layers[i] <= p->layers[i - 1])
            return steer_err(STEER_EARG, "sweep: layers must be ascending and distinct (%d after %d)", p->layers[i],
                             p->layers[i - 1]);
    }
    if (p->n_alphas < 1 || p->n_alphas > STEER_SWEEP_MAX_ALPHAS)
        return steer_err(STEER_EARG, "sweep: %d alphas (1..%d)", p->n_alphas, STEER_SWEEP_MAX_ALPHAS);
    for (int i = 0; i < p->n_alphas; i++) {
        if (!isfinite(p->alphas[i])) return steer_err(STEER_EARG, "sweep: alpha %g is not finite", (double)p->alphas[i]);
        if (p->alphas[i] == 0.0f) p->alphas[i] = 0.0f; /* -0 → 0: one spelling in files */
        for (int j = 0; j < i; j++)
            if (p->alphas[j] == p->alphas[i])
                return steer_err(STEER_EARG, "sweep: alpha %g given twice", (double)p->alphas[i]);
    }
    if (p->tokens < 1 || p->tokens > STEER_SWEEP_MAX_TOKENS)
        return steer_err(STEER_EARG, "sweep: tokens must be 1..%d (got %d)", STEER_SWEEP_MAX_TOKENS, p->tokens);
    if ((unsigned)p->continuation > STEER_SWEEP_CONT_GOLD)
        return steer_err(STEER_EARG, "sweep: unknown continuation %d", (int)p->continuation);
    if (p->positions != STEER_POS_ALL && p->positions != STEER_POS_PROMPT && p->positions != STEER_POS_GENERATED)
        return steer_err(STEER_EARG, "sweep: unknown positions %d", (int)p->positions);
    if (p->shard_count < 1 || p->shard_index < 0 || p->shard_index >= p->shard_count)
        return steer_err(STEER_EARG, "sweep: shard %d/%d: need 0 <= index < count", p->shard_index, p->shard_count);
    if (p->n_threads < 0) return steer_err(STEER_EARG, "sweep: negative thread count");
    return STEER_OK;
}

/* ---------------------------------------------------------------- captures */

/* Captures of the rows of sequence 0 at the wanted (site, layer)s into
 * buf[site] [L, t_max, width] (row = position): one capture per (site,
 * layer), added by add_capture_hook. */
typedef struct {
    int L, t_max;
    unsigned char want[STEER_SITE_COUNT * STEER_SWEEP_MAX_LAYERS];
    float *buf[STEER_SITE_COUNT];
    int width[STEER_SITE_COUNT];
} cap_set;

static const float *cap_rows(const cap_set *cs, steer_site s, int layer)
{
    return cs->buf[s] + (size_t)layer * cs->t_max * cs->width[s];
}

static void cap_free(cap_set *cs)
{
    for (int s = 0; s < STEER_SITE_COUNT; s++) free(cs->buf[s]);
}

static int cap_alloc(cap_set *cs, const steer_model *m, int t_max)
{
    cs->L = steer_model_get_config(m)->n_layer;
    cs->t_max = t_max;
    for (int s = 0; s < STEER_SITE_COUNT; s++) {
        cs->width[s] = steer_model_site_width(m, (steer_site)s);
        int any = 0;
        for (int l = 0; l < cs->L; l++) any |= cs->want[s * cs->L + l];
        if (any && !(cs->buf[s] = calloc((size_t)cs->L * t_max * cs->width[s], sizeof(float))))
            return steer_err(STEER_ENOMEM, "sweep: out of memory for captures");
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- jobs */

typedef struct {
    int item;
    int *tok;     /* [n_prompt + K] s: the prompt, then c (gold: filled here) */
    int n_prompt; /* p_len                                                      */
    int n_gold;   /* gold: continuation tokens available (<= K); ft: 0        */
} job;

typedef struct {
    steer_model *base, *ft;
    const steer_dataset *d;
    steer_sweep_params p;
    int V, V_tok, bos, eos, t_max;
    int n_run;                    /* alphas != 0 (optimised path)            */
    int run_alpha[STEER_SWEEP_MAX_ALPHAS]; /* their indices                   */
    int n_cells;                  /* n_sites · n_layers · n_alphas            */
} sweep_ctx;

/* Tokenizes item i into j (B's tokenizer; F's must agree). */
static int job_build(const sweep_ctx *S, int i, job *j)
{
    const steer_data_item *it = steer_data_at(S->d, i);
    char wb[600];
    const int K = S->p.tokens;
    int *pt = NULL, np = 0, *ft = NULL, nf = 0, rc;
    j->item = i;
    if ((rc = steer_tokenize_alloc(S->base, it->prompt, 1, &pt, &np))) return rc;
    if ((rc = steer_tokenize_alloc(S->ft, it->prompt, 1, &ft, &nf))) {
        free(pt);
        return rc;
    }
    int same = np == nf && memcmp(pt, ft, (size_t)np * sizeof(int)) == 0;
    free(ft);
    if (!same) {
        free(pt);
        return steer_err(STEER_EARG, "%s: the two models tokenize the prompt differently (tokenizers differ)",
                         data_item_where(S->d, it, wb, sizeof wb));
    }
    if (S->p.continuation == STEER_SWEEP_CONT_GOLD) {
        if (!it->completion) {
            free(pt);
            return steer_err(STEER_EFORMAT, "%s has no completion (answer) for --continuation gold",
                             data_item_where(S->d, it, wb, sizeof wb));
        }
        int *full = NULL, nfull = 0, c = 0; /* the completion starts at token c */
        rc = data_tokenize_pair(S->base, it->prompt, pt, np, it->completion, &full, &nfull, &c);
        free(pt);
        if (rc) return rc;
        if (c >= nfull) {
            free(full);
            return steer_err(STEER_EFORMAT, "%s has an empty completion", data_item_where(S->d, it, wb, sizeof wb));
        }
        j->n_prompt = c;
        j->n_gold = nfull - c < K ? nfull - c : K;
        j->tok = realloc(full, (size_t)(c + K) * sizeof(int));
        if (!j->tok) {
            free(full);
            return steer_err(STEER_ENOMEM, "sweep: out of memory");
        }
    } else {
        j->n_prompt = np;
        j->n_gold = 0;
        j->tok = realloc(pt, (size_t)(np + K) * sizeof(int));
        if (!j->tok) {
            free(pt);
            return steer_err(STEER_ENOMEM, "sweep: out of memory");
        }
    }
    const int cb = steer_model_get_config(S->base)->n_ctx_train, cf = steer_model_get_config(S->ft)->n_ctx_train;
    const int n_ctx = cb < cf ? cb : cf;
    if (n_ctx > 0 && j->n_prompt + K > n_ctx) {
        free(j->tok);
        j->tok = NULL;
        return steer_err(STEER_ECONTEXT, "%s: prompt + %d tokens is %d tokens but the model's context holds %d",
                         data_item_where(S->d, it, wb, sizeof wb), K, j->n_prompt + K, n_ctx);
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- worker */

typedef struct {
    steer_ctx *cb, *cf;      /* B: one sequence per α run together; F: one    */
    cap_set *capB, *capF;
    float *x_in, *xb_in;     /* [n_run · t_max, d]                             */
    float *delta;            /* [t_max, w_max]                                 */
    int *pos, *seq;          /* [n_run · t_max]                                */
    int8_t *want;            /* [n_run · t_max]                                */
    double *lpB, *lpF;       /* [K, V] log-probabilities                       */
    double *lp;              /* [V]                                            */
    double *kl_base;         /* [K]                                            */
    double *kl;              /* [n_cells, K]                                   */
    int *cont;               /* [K]                                            */
} worker;

static void worker_free(worker *w)
{
    steer_ctx_free(w->cb);
    steer_ctx_free(w->cf);
    if (w->capB) cap_free(w->capB);
    if (w->capF) cap_free(w->capF);
    free(w->capB); free(w->capF);
    free(w->x_in); free(w->xb_in); free(w->delta); free(w->pos); free(w->seq); free(w->want);
    free(w->lpB); free(w->lpF); free(w->lp); free(w->kl_base); free(w->kl); free(w->cont);
    memset(w, 0, sizeof *w);
}

static int worker_init(worker *w, const sweep_ctx *S, int ctx_threads)
{
    memset(w, 0, sizeof *w);
    const steer_sweep_params *p = &S->p;
    const steer_model_config *cfg = steer_model_get_config(S->base);
    const int L = cfg->n_layer, d = cfg->d_model, K = p->tokens, V = S->V;
    const int nseq = p->naive || S->n_run < 1 ? 1 : S->n_run;
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = S->t_max;
    cp.n_threads = ctx_threads;
    cp.n_seq = nseq;
    int rc = steer_ctx_new(S->base, &cp, &w->cb);
    cp.n_seq = 1;
    if (!rc) rc = steer_ctx_new(S->ft, &cp, &w->cf);
    if (rc) return rc;
    w->capB = calloc(1, sizeof *w->capB);
    w->capF = calloc(1, sizeof *w->capF);
    if (!w->capB || !w->capF) return steer_err(STEER_ENOMEM, "sweep: out of memory");
    w->capB->L = w->capF->L = L;
    int w_max = d;
    for (int si = 0; si < p->n_sites; si++) {
        const steer_site s = p->sites[si], src = (steer_site)delta_src(p, s), e = entry_of(s);
        int ws = steer_model_site_width(S->base, s);
        if (ws > w_max) w_max = ws;
        for (int li = 0; li < p->n_layers; li++) {
            const int l = p->layers[li];
            w->capB->want[src * L + l] = 1;
            w->capF->want[src * L + l] = 1;
            if (!p->naive) {
                w->capB->want[entry_x(e) * L + l] = 1;
                if (entry_has_xb(e)) w->capB->want[e * L + l] = 1;
            }
        }
    }
    if ((rc = cap_alloc(w->capB, S->base, S->t_max)) || (rc = cap_alloc(w->capF, S->ft, S->t_max))) return rc;
    const size_t rows = (size_t)nseq * S->t_max;
    w->x_in = malloc(rows * d * sizeof(float));
    w->xb_in = malloc(rows * d * sizeof(float));
    w->delta = malloc((size_t)S->t_max * w_max * sizeof(float));
    w->pos = malloc(rows * sizeof(int));
    w->seq = malloc(rows * sizeof(int));
    w->want = malloc(rows);
    w->lpB = malloc((size_t)K * V * sizeof(double));
    w->lpF = malloc((size_t)K * V * sizeof(double));
    w->lp = malloc((size_t)V * sizeof(double));
    w->kl_base = malloc((size_t)K * sizeof(double));
    w->kl = malloc((size_t)S->n_cells * K * sizeof(double));
    w->cont = malloc((size_t)K * sizeof(int));
    if (!w->x_in || !w->xb_in || !w->delta || !w->pos || !w->seq || !w->want || !w->lpB || !w->lpF || !w->lp ||
        !w->kl_base || !w->kl || !w->cont)
        return steer_err(STEER_ENOMEM, "sweep: out of memory for item buffers");
    return STEER_OK;
}

static double kl_lp(const double *lp, const double *lq, int n)
{
    double kl = 0.0;
    for (int i = 0; i < n; i++) kl += exp(lp[i]) * (lp[i] - lq[i]);
    return kl;
}

/* Replaces c's hooks by the captures of cs. */
static int add_capture_hook(steer_ctx *c, cap_set *cs)
{
    steer_ctx_clear_hooks(c);
    for (int s = 0; s < STEER_SITE_COUNT; s++)
        for (int l = 0; l < cs->L; l++) {
            if (!cs->want[s * cs->L + l]) continue;
            int id = steer_ctx_add_capture_into(c, (steer_site)s, l, 0, cs->buf[s] + (size_t)l * cs->t_max * cs->width[s],
                                                cs->t_max, cs->width[s], NULL, 0);
            if (id < 0) return id;
        }
    return STEER_OK;
}

/* One sequence of T tokens at positions 0.. (sequence 0), logits at rows
 * [first, first + n_log). */
static int run_seq(steer_ctx *c, const int *tok, int T, int first, int n_log, worker *w)
{
    for (int t = 0; t < T; t++) {
        w->pos[t] = t;
        w->seq[t] = 0;
        w->want[t] = t >= first && t < first + n_log;
    }
    steer_batch b = {.n = T, .tokens = tok, .pos = w->pos, .seq = w->seq, .logits = w->want};
    return steer_forward(c, &b);
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Adds one STEER_ADD of α·δ [T, width] at (s, l) for sequence seq. */
static int add_delta(steer_ctx *c, const sweep_ctx *S, steer_site s, int l, float alpha, const float *delta, int T,
                     int seq)
{
    steer_intervention iv = {.kind = STEER_ADD, .site = s, .layer = l, .alpha = alpha, .data = delta, .n_rows = T,
                             .seq = seq};
    iv.positions.kind = S->p.positions;
    int id = steer_ctx_add_intervention(c, &iv);
    return id < 0 ? id : STEER_OK;
}

/* Steps 1 and 2 of an item: F's continuation, lpF and captures; B's run,
 * lpB, KL_base and captures. Fills out (n_tokens 0: nothing more to do). */
static int item_base(worker *w, const sweep_ctx *S, job *j, steer_sweep_item *out)
{
    const steer_sweep_params *p = &S->p;
    const int K = p->tokens, V = S->V, np = j->n_prompt;
    int rc, nk = 0;
    for (int k = 0; k < K; k++) w->kl_base[k] = NAN;
    for (size_t i = 0; i < (size_t)S->n_cells * K; i++) w->kl[i] = NAN;

    /* 1. F: continuation, lpF, captures */
    if ((rc = add_capture_hook(w->cf, w->capF))) return rc;
    steer_ctx_clear(w->cf, -1);
    if (p->continuation == STEER_SWEEP_CONT_FT) {
        if ((rc = run_seq(w->cf, j->tok, np, np - 1, 1, w))) return rc;
        const float *lg = steer_ctx_logits(w->cf, np - 1);
        while (nk < K) {
            int t = argmax(lg, S->V_tok);
            if (t == S->bos || t == S->eos) break;
            steer_log_softmax(lg, V, w->lpF + (size_t)nk * V);
            j->tok[np + nk] = w->cont[nk] = t;
            nk++;
            if (nk == K) break;
            int pos = np + nk - 1;
            steer_batch b = {.n = 1, .tokens = &t, .pos = &pos, .seq = NULL, .logits = NULL};
            if ((rc = steer_forward(w->cf, &b))) return rc;
            lg = steer_ctx_logits(w->cf, 0);
        }
    } else {
        nk = j->n_gold;
        for (int k = 0; k < nk; k++) w->cont[k] = j->tok[np + k];
        if ((rc = run_seq(w->cf, j->tok, np + nk - 1, np - 1, nk, w))) return rc;
        for (int k = 0; k < nk; k++) steer_log_softmax(steer_ctx_logits(w->cf, np - 1 + k), V, w->lpF + (size_t)k * V);
    }
    steer_ctx_clear_hooks(w->cf);
    const int T = np + nk - 1;
    out->item = j->item;
    out->id = steer_data_at(S->d, j->item)->id;
    out->n_prompt = np;
    out->n_tokens = nk;
    out->tokens = w->cont;
    out->kl_base = w->kl_base;
    out->kl_steered = w->kl;
    if (nk == 0) return STEER_OK;

    /* 2. B once: lpB, KL_base, captures */
    if ((rc = add_capture_hook(w->cb, w->capB))) return rc;
    steer_ctx_clear(w->cb, -1);
    if ((rc = run_seq(w->cb, j->tok, T, np - 1, nk, w))) return rc;
    for (int k = 0; k < nk; k++) {
        steer_log_softmax(steer_ctx_logits(w->cb, np - 1 + k), V, w->lpB + (size_t)k * V);
        w->kl_base[k] = kl_lp(w->lpB + (size_t)k * V, w->lpF + (size_t)k * V, V);
    }
    steer_ctx_clear_hooks(w->cb);
    return STEER_OK;
}

static int item_run(worker *w, const sweep_ctx *S, job *j, steer_sweep_item *out)
{
    const steer_sweep_params *p = &S->p;
    const int K = p->tokens, V = S->V, np = j->n_prompt, d = steer_model_get_config(S->base)->d_model,
              NA = p->n_alphas;
    int rc = item_base(w, S, j, out);
    if (rc || out->n_tokens == 0) return rc;
    const int nk = out->n_tokens, T = np + nk - 1;

    /* 3. steered runs. p0: first position steering can change (earlier rows
     * are B's own in every layer) */
    const int p0 = p->positions == STEER_POS_GENERATED ? np : 0, Tr = T - p0;
    const int nseq = p->naive ? 1 : S->n_run;
    if (!p->naive && p0 > 0 && Tr > 0) /* B's cached K/V of positions < p0, sequence 0 → every sequence */
        for (int a = 1; a < nseq; a++)
            if ((rc = steer_ctx_seq_copy(w->cb, 0, a, 0, p0))) return rc;
    for (int si = 0; si < p->n_sites; si++) {
        const steer_site s = p->sites[si], src = (steer_site)delta_src(p, s), e = entry_of(s);
        const int width = steer_model_site_width(S->base, s);
        for (int li = 0; li < p->n_layers; li++) {
            const int l = p->layers[li];
            double *kl = w->kl + ((size_t)si * p->n_layers + li) * NA * K; /* [NA, K] */
            const float *aF = cap_rows(w->capF, src, l), *aB = cap_rows(w->capB, src, l);
            for (size_t i = 0; i < (size_t)T * width; i++) w->delta[i] = aF[i] - aB[i];
            if (p->naive) {
                for (int a = 0; a < NA; a++) {
                    steer_ctx_clear_hooks(w->cb);
                    steer_ctx_clear(w->cb, -1);
                    steer_ctx_set_prompt_len(w->cb, -1, np);
                    if ((rc = add_delta(w->cb, S, s, l, p->alphas[a], w->delta, T, -1))) return rc;
                    if ((rc = run_seq(w->cb, j->tok, T, np - 1, nk, w))) return rc;
                    for (int k = 0; k < nk; k++) {
                        steer_log_softmax(steer_ctx_logits(w->cb, np - 1 + k), V, w->lp);
                        kl[(size_t)a * K + k] = kl_lp(w->lp, w->lpF + (size_t)k * V, V);
                    }
                }
                continue;
            }
            for (int a = 0; a < NA; a++) /* α = 0 and rows before p0: B's own numbers */
                for (int k = 0; k < nk; k++) kl[(size_t)a * K + k] = w->kl_base[k];
            if (S->n_run == 0 || Tr <= 0) continue;
            steer_ctx_clear_hooks(w->cb);
            steer_ctx_set_prompt_len(w->cb, -1, np);
            for (int r = 0; r < S->n_run; r++)
                if ((rc = add_delta(w->cb, S, s, l, p->alphas[S->run_alpha[r]], w->delta, T, r))) return rc;
            const float *xs = cap_rows(w->capB, entry_x(e), l);
            const float *xbs = entry_has_xb(e) ? cap_rows(w->capB, e, l) : NULL;
            for (int r = 0; r < S->n_run; r++) {
                const size_t at = (size_t)r * Tr;
                memcpy(w->x_in + at * d, xs + (size_t)p0 * d, (size_t)Tr * d * sizeof(float));
                if (xbs) memcpy(w->xb_in + at * d, xbs + (size_t)p0 * d, (size_t)Tr * d * sizeof(float));
                for (int t = 0; t < Tr; t++) {
                    w->pos[at + t] = p0 + t;
                    w->seq[at + t] = r;
                    w->want[at + t] = p0 + t >= np - 1;
                }
            }
            steer_batch b = {.n = S->n_run * Tr, .tokens = NULL, .pos = w->pos, .seq = w->seq, .logits = w->want};
            if ((rc = steer_forward_resume(w->cb, &b, l, e, w->x_in, xbs ? w->xb_in : NULL, 1))) return rc;
            for (int r = 0; r < S->n_run; r++)
                for (int k = 0; k < nk; k++) {
                    const int t = np - 1 + k;
                    if (t < p0) continue;
                    steer_log_softmax(steer_ctx_logits(w->cb, r * Tr + (t - p0)), V, w->lp);
                    kl[(size_t)S->run_alpha[r] * K + k] = kl_lp(w->lp, w->lpF + (size_t)k * V, V);
                }
        }
    }
    steer_ctx_clear_hooks(w->cb);
    return STEER_OK;
}

/* ---------------------------------------------------------------- run */

/* Checks and resolves the params into S, tokenizes the jobs (this shard's
 * items minus p->skip) into *jobs (caller frees with jobs_free). */
static int sweep_setup(sweep_ctx *S, steer_model *base, steer_model *ft, const steer_dataset *d,
                       const steer_sweep_params *pin, job **jobs_out, int *nj_out)
{
    *jobs_out = NULL;
    *nj_out = 0;
    if (!base || !ft || !d || !pin) return steer_err(STEER_EARG, "sweep: NULL argument");
    memset(S, 0, sizeof *S);
    S->base = base;
    S->ft = ft;
    S->d = d;
    S->p = *pin;
    int rc = steer_sweep_check(base, ft, &S->p);
    if (rc) return rc;
    const steer_sweep_params *p = &S->p;
    S->V = steer_vocab_size(base);
    S->V_tok = steer_tokenizer_size(base) < S->V ? steer_tokenizer_size(base) : S->V;
    S->bos = steer_token_bos(base);
    S->eos = steer_token_eos(base);
    S->n_cells = p->n_sites * p->n_layers * p->n_alphas;
    for (int a = 0; a < p->n_alphas; a++)
        if (p->alphas[a] != 0.0f) S->run_alpha[S->n_run++] = a;
    const int n_data = steer_data_count(d);
    job *jobs = calloc(n_data > 0 ? (size_t)n_data : 1, sizeof *jobs);
    if (!jobs) return steer_err(STEER_ENOMEM, "sweep: out of memory");
    int nj = 0;
    for (int i = 0; i < n_data && !rc; i++) {
        if (i % p->shard_count != p->shard_index || (p->skip && p->skip[i])) continue;
        if (!(rc = job_build(S, i, &jobs[nj]))) {
            if (jobs[nj].n_prompt + p->tokens > S->t_max) S->t_max = jobs[nj].n_prompt + p->tokens;
            nj++;
        }
    }
    *jobs_out = jobs;
    *nj_out = nj;
    return rc;
}

static void jobs_free(job *jobs, int nj)
{
    for (int i = 0; jobs && i < nj; i++) free(jobs[i].tok);
    free(jobs);
}

int steer_sweep_run(steer_model *base, steer_model *ft, const steer_dataset *d, const steer_sweep_params *pin)
{
    sweep_ctx S;
    job *jobs = NULL;
    int nj = 0;
    int rc = sweep_setup(&S, base, ft, d, pin, &jobs, &nj);
    const steer_sweep_params *p = &S.p;
    int threads = p->n_threads > 0 ? p->n_threads : omp_get_max_threads();
    if (threads < 1) threads = 1;
    const int nw = threads < nj ? threads : (nj > 0 ? nj : 1);
    const int ctx_threads = nw == 1 ? threads : 1;
    int err = 0, stop = 0;
    char msg[1024] = "";
    /* With an item source: dataset index -> job, and the jobs handed out. */
    const int n_data = d ? steer_data_count(d) : 0;
    int *job_of = NULL;
    unsigned char *taken = NULL;
    if (!rc && nj > 0 && p->next_item) {
        job_of = malloc((size_t)n_data * sizeof *job_of);
        taken = calloc((size_t)nj, 1);
        if (!job_of || !taken) rc = steer_err(STEER_ENOMEM, "sweep: out of memory");
        for (int i = 0; !rc && i < n_data; i++) job_of[i] = -2;
        for (int ji = 0; !rc && ji < nj; ji++) job_of[jobs[ji].item] = ji;
    }
    omp_lock_t next_lock;
    omp_init_lock(&next_lock);
    if (!rc && nj > 0) {
#pragma omp parallel num_threads(nw)
        {
            worker w;
            int wrc = worker_init(&w, &S, ctx_threads);
            if (wrc) {
#pragma omp critical
                if (!err) {
                    err = wrc;
                    snprintf(msg, sizeof msg, "%s", steer_last_error());
                }
            }
#pragma omp for schedule(dynamic, 1)
            for (int ji0 = 0; ji0 < (p->next_item ? nw : nj); ji0++) {
                /* one job, or (item source) jobs until it gives -1 */
                for (int once = 1; once || p->next_item; once = 0) {
                    int halt, ji = ji0;
#pragma omp atomic read
                    halt = stop;
                    if (wrc || halt) break;
                    if (p->next_item) {
                        /* Ask the item source under its own lock (not the
                         * unnamed critical), so a source that blocks does not
                         * hold up on_item. A lock rather than a named critical:
                         * a named one is a global symbol the shared library
                         * would export. */
                        int src_err = 0;
                        omp_set_lock(&next_lock);
                        {
                            int i = p->next_item(p->ud);
                            ji = i < 0 ? -1 : i < n_data ? job_of[i] : -2;
                            if (ji == -2 || (ji >= 0 && taken[ji])) {
                                src_err = 1;
                                ji = -1;
#pragma omp critical
                                if (!err) {
                                    err = steer_err(STEER_EARG, "sweep: next_item gave item %d: not an item of this run "
                                                                "(out of range, outside the shard, skipped or given twice)", i);
                                    snprintf(msg, sizeof msg, "%s", steer_last_error());
                                }
                            } else if (ji >= 0)
                                taken[ji] = 1;
                        }
                        omp_unset_lock(&next_lock);
                        if (src_err) {
#pragma omp atomic write
                            stop = 1;
                        }
                        if (ji < 0) break;
                    }
                    steer_sweep_item it;
                    int irc = item_run(&w, &S, &jobs[ji], &it);
#pragma omp critical
                    {
                        if (irc) {
                            if (!err) {
                                err = irc;
                                snprintf(msg, sizeof msg, "%s", steer_last_error());
                            }
                            stop = 1;
                        } else if (p->on_item) {
                            int crc = p->on_item(p->ud, &it);
                            if (crc < 0 && !err) {
                                err = crc;
                                snprintf(msg, sizeof msg, "%s", steer_last_error());
                            }
                            if (crc > 0 && !err) err = crc;
                            if (crc) stop = 1;
                        }
                    }
                }
            }
            worker_free(&w);
        }
        rc = err < 0 ? steer_err(err, "%s", msg) : err;
    }
    omp_destroy_lock(&next_lock);
    free(job_of);
    free(taken);
    jobs_free(jobs, nj);
    return rc;
}

int steer_sweep_mean_delta(steer_model *base, steer_model *ft, const steer_dataset *d, const steer_sweep_params *pin,
                           steer_vecset **out)
{
    *out = NULL;
    if (!pin) return steer_err(STEER_EARG, "sweep: NULL argument");
    steer_sweep_params q = *pin;
    q.skip = NULL;
    q.naive = 1; /* captures of the δ sites only */
    sweep_ctx S;
    job *jobs = NULL;
    int nj = 0, rc = sweep_setup(&S, base, ft, d, &q, &jobs, &nj);
    const steer_sweep_params *p = &S.p;
    const int L = rc ? 0 : p->n_layers;
    int w_max = 0;
    for (int si = 0; !rc && si < p->n_sites; si++)
        if (steer_model_site_width(base, p->sites[si]) > w_max) w_max = steer_model_site_width(base, p->sites[si]);
    double *sum = rc ? NULL : calloc((size_t)p->n_sites * L * w_max, sizeof(double));
    float *v = rc ? NULL : malloc((size_t)w_max * sizeof(float));
    if (!rc && (!sum || !v)) rc = steer_err(STEER_ENOMEM, "sweep: out of memory");
    long rows = 0;
    worker w;
    memset(&w, 0, sizeof w);
    if (!rc && nj > 0) rc = worker_init(&w, &S, p->n_threads > 0 ? p->n_threads : omp_get_max_threads());
    for (int ji = 0; !rc && ji < nj; ji++) { /* in item order: the sums do not depend on threads */
        steer_sweep_item it;
        if ((rc = item_base(&w, &S, &jobs[ji], &it)) || it.n_tokens == 0) continue;
        const int np = it.n_prompt, T = np + it.n_tokens - 1;
        const int t0 = p->positions == STEER_POS_GENERATED ? np : 0,
                  t1 = p->positions == STEER_POS_PROMPT ? np : T;
        for (int si = 0; si < p->n_sites; si++) {
            const steer_site src = (steer_site)delta_src(p, p->sites[si]);
            const int width = steer_model_site_width(base, p->sites[si]);
            for (int li = 0; li < L; li++) {
                const float *aF = cap_rows(w.capF, src, p->layers[li]), *aB = cap_rows(w.capB, src, p->layers[li]);
                double *acc = sum + ((size_t)si * L + li) * w_max;
                for (int t = t0; t < t1; t++)
                    for (int j = 0; j < width; j++) {
                        const size_t at = (size_t)t * width + j;
                        acc[j] += (double)(aF[at] - aB[at]); /* δ as the sweep adds it (float) */
                    }
            }
        }
        rows += t1 > t0 ? t1 - t0 : 0;
    }
    if (nj > 0) worker_free(&w);
    if (!rc && rows == 0) rc = steer_err(STEER_EARG, "sweep: no positions to average the oracle delta over");
    steer_vecset *vs = NULL;
    if (!rc) rc = steer_vecset_new(&vs);
    for (int si = 0; !rc && si < p->n_sites; si++) {
        const int width = steer_model_site_width(base, p->sites[si]);
        for (int li = 0; !rc && li < L; li++) {
            const double *acc = sum + ((size_t)si * L + li) * w_max;
            for (int j = 0; j < width; j++) v[j] = (float)(acc[j] / (double)rows);
            rc = steer_vecset_set(vs, p->sites[si], p->layers[li], 0, width, v);
        }
    }
    free(sum);
    free(v);
    jobs_free(jobs, nj);
    if (rc) {
        steer_vecset_free(vs);
        return rc;
    }
    *out = vs;
    return STEER_OK;
}

/* ---------------------------------------------------------------- table */

typedef struct {
    char *id;
    int n_tokens;
    double *kl_base; /* [K]                  */
    double *kl;      /* [n_cells, K]         */
} table_item;

struct steer_sweep_table {
    steer_sweep_params p;          /* resolved; skip/on_item cleared       */
    char *base_path, *ft_path, *data, *command, *arch;
    int n_layer_model, d_model, n_data, n_cells, count;
    double wall_s;                 /* of a table read back (else 0)         */
    table_item *items;             /* [n_data], id NULL = not held          */
    unsigned char *done;           /* [n_data]                              */
    int journal_fd;                /* -1 = none                             */
    char *journal_path;
};

static char *dupstr(const char *s) { return s ? strdup(s) : strdup(""); }

int steer_sweep_table_new(const steer_sweep_params *p, const steer_sweep_info *info, steer_sweep_table **out)
{
    *out = NULL;
    if (!p || !info) return steer_err(STEER_EARG, "sweep table: NULL argument");
    if (p->n_layers < 1 || p->n_sites < 1 || p->n_alphas < 1 || p->tokens < 1 || p->shard_count < 1 ||
        info->n_data < 0)
        return steer_err(STEER_EARG, "sweep table: settings not resolved (run steer_sweep_check first)");
    steer_sweep_table *t = calloc(1, sizeof *t);
    if (!t) return steer_err(STEER_ENOMEM, "sweep table: out of memory");
    t->p = *p;
    t->p.skip = NULL;
    t->p.on_item = NULL;
    t->p.next_item = NULL;
    t->p.ud = NULL;
    t->p.n_threads = 0;
    t->p.naive = 0;
    t->journal_fd = -1;
    t->base_path = dupstr(info->base_path);
    t->ft_path = dupstr(info->ft_path);
    t->data = dupstr(info->data);
    t->command = dupstr(info->command);
    t->arch = dupstr(info->arch);
    t->n_layer_model = info->n_layers;
    t->d_model = info->d_model;
    t->n_data = info->n_data;
    t->n_cells = p->n_sites * p->n_layers * p->n_alphas;
    t->items = calloc(info->n_data > 0 ? (size_t)info->n_data : 1, sizeof *t->items);
    t->done = calloc(info->n_data > 0 ? (size_t)info->n_data : 1, 1);
    if (!t->base_path || !t->ft_path || !t->data || !t->command || !t->arch || !t->items || !t->done) {
        steer_sweep_table_free(t);
        return steer_err(STEER_ENOMEM, "sweep table: out of memory");
    }
    *out = t;
    return STEER_OK;
}

void steer_sweep_table_free(steer_sweep_table *t)
{
    if (!t) return;
    if (t->journal_fd >= 0) close(t->journal_fd);
    free(t->journal_path);
    if (t->items)
        for (int i = 0; i < t->n_data; i++) {
            free(t->items[i].id);
            free(t->items[i].kl_base);
            free(t->items[i].kl);
        }
    free(t->items);
    free(t->done);
    free(t->base_path); free(t->ft_path); free(t->data); free(t->command); free(t->arch);
    free(t);
}

int steer_sweep_table_count(const steer_sweep_table *t) { return t->count; }
const unsigned char *steer_sweep_table_done(const steer_sweep_table *t) { return t->done; }
const steer_sweep_params *steer_sweep_table_params(const steer_sweep_table *t) { return &t->p; }

int steer_sweep_table_add(steer_sweep_table *t, const steer_sweep_item *it)
{
    const int K = t->p.tokens;
    if (it->item < 0 || it->item >= t->n_data)
        return steer_err(STEER_EARG, "sweep table: item %d out of range (%d items)", it->item, t->n_data);
    if (it->item % t->p.shard_count != t->p.shard_index)
        return steer_err(STEER_EARG, "sweep table: item %d is not in shard %d/%d", it->item, t->p.shard_index,
                         t->p.shard_count);
    if (t->done[it->item]) return steer_err(STEER_EARG, "sweep table: item %d given twice", it->item);
    if (it->n_tokens < 0 || it->n_tokens > K)
        return steer_err(STEER_EARG, "sweep table: item %d has %d tokens (K = %d)", it->item, it->n_tokens, K);
    table_item *ti = &t->items[it->item];
    ti->id = dupstr(it->id);
    ti->kl_base = malloc((size_t)K * sizeof(double));
    ti->kl = malloc((size_t)t->n_cells * K * sizeof(double));
    if (!ti->id || !ti->kl_base || !ti->kl) {
        free(ti->id); free(ti->kl_base); free(ti->kl);
        memset(ti, 0, sizeof *ti);
        return steer_err(STEER_ENOMEM, "sweep table: out of memory");
    }
    ti->n_tokens = it->n_tokens;
    for (int k = 0; k < K; k++) ti->kl_base[k] = k < it->n_tokens ? it->kl_base[k] : NAN;
    for (int c = 0; c < t->n_cells; c++)
        for (int k = 0; k < K; k++)
            ti->kl[(size_t)c * K + k] = k < it->n_tokens ? it->kl_steered[(size_t)c * K + k] : NAN;
    t->done[it->item] = 1;
    t->count++;
    return STEER_OK;
}

void steer_sweep_table_cell(const steer_sweep_table *t, int si, int li, int ai, int k, double *mean, double *se,
                            int *n)
{
    const int K = t->p.tokens;
    const size_t c = ((size_t)si * t->p.n_layers + li) * t->p.n_alphas + ai;
    double sum = 0.0;
    int cnt = 0;
    for (int i = 0; i < t->n_data; i++) {
        const table_item *ti = &t->items[i];
        if (!t->done[i] || k >= ti->n_tokens) continue;
        sum += ti->kl[c * K + k] - ti->kl_base[k];
        cnt++;
    }
    double m = cnt ? sum / cnt : NAN, ss = 0.0;
    for (int i = 0; i < t->n_data && cnt > 1; i++) {
        const table_item *ti = &t->items[i];
        if (!t->done[i] || k >= ti->n_tokens) continue;
        double x = ti->kl[c * K + k] - ti->kl_base[k] - m;
        ss += x * x;
    }
    if (mean) *mean = m;
    if (se) *se = cnt > 1 ? sqrt(ss / (cnt - 1)) / sqrt((double)cnt) : (cnt == 1 ? 0.0 : NAN);
    if (n) *n = cnt;
}

/* ---------------------------------------------------------------- files */

/* "models/stories260K/stories260K.bin" → "stories260K"; a directory "x/hf/" → "hf". */
static void model_name(const char *path, char *buf, size_t n)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/') start--;
    size_t end = len;
    for (size_t i = len; i > start + 1; i--)
        if (path[i - 1] == '.') {
            end = i - 1;
            break;
        }
    size_t m = end - start < n - 1 ? end - start : n - 1;
    memcpy(buf, path + start, m);
    buf[m] = 0;
}

/* Accessors for readers of a finished table (the report; steer_exp.h). */
void steer_sweep_model_name(const char *path, char *buf, size_t n) { model_name(path ? path : "", buf, n); }

void steer_sweep_table_info(const steer_sweep_table *t, steer_sweep_info *info, double *wall_s)
{
    if (info)
        *info = (steer_sweep_info){.base_path = t->base_path, .ft_path = t->ft_path, .data = t->data,
                                   .command = t->command, .arch = t->arch, .n_layers = t->n_layer_model,
                                   .d_model = t->d_model, .n_data = t->n_data};
    if (wall_s) *wall_s = t->wall_s;
}

void steer_sweep_table_kl_base(const steer_sweep_table *t, int k, double *mean, int *n)
{
    double sum = 0.0;
    int cnt = 0;
    for (int i = 0; i < t->n_data && k >= 0 && k < t->p.tokens; i++)
        if (t->done[i] && k < t->items[i].n_tokens) {
            sum += t->items[i].kl_base[k];
            cnt++;
        }
    if (mean) *mean = cnt ? sum / cnt : NAN;
    if (n) *n = cnt;
}

/* Writes s as a CSV field (quoted when it holds , " CR or LF). */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, name);
    return s;
}

/* A number that reads back exactly (cJSON's own printing keeps 15 digits
 * when they are merely close); NaN as null. */
static cJSON *json_exact(double v)
{
    if (!isfinite(v)) return cJSON_CreateNull();
    char b[40];
    fmt_double(b, sizeof b, v);
    return cJSON_CreateRaw(b);
}

static cJSON *json_float(float v)
{
    char b[32];
    fmt_float(b, sizeof b, v);
    return cJSON_CreateRaw(b);
}

/* The settings that must agree for results to belong together (journal
 * resume; merge compares them without "shard"). */
static cJSON *settings_json(const steer_sweep_table *t, int with_shard)
{
    const steer_sweep_params *p = &t->p;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "base_path", t->base_path);
    cJSON_AddStringToObject(o, "ft_path", t->ft_path);
    cJSON_AddStringToObject(o, "data", t->data);
    cJSON_AddNumberToObject(o, "n_data", t->n_data);
    cJSON_AddNumberToObject(o, "tokens", p->tokens);
    cJSON *a = cJSON_AddArrayToObject(o, "sites");
    for (int i = 0; i < p->n_sites; i++) cJSON_AddItemToArray(a, cJSON_CreateString(steer_site_name(p->sites[i])));
    a = cJSON_AddArrayToObject(o, "layers");
    for (int i = 0; i < p->n_layers; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(p->layers[i]));
    a = cJSON_AddArrayToObject(o, "alphas");
    for (int i = 0; i < p->n_alphas; i++) cJSON_AddItemToArray(a, json_float(p->alphas[i]));
    cJSON_AddStringToObject(o, "continuation", steer_sweep_cont_name(p->continuation));
    cJSON_AddStringToObject(o, "positions", steer_sweep_pos_name(p->positions));
    if (p->delta_site >= 0) cJSON_AddStringToObject(o, "delta_site", steer_site_name((steer_site)p->delta_site));
    else cJSON_AddNullToObject(o, "delta_site");
    if (with_shard) {
        if (p->shard_count > 1) {
            char b[32];
            snprintf(b, sizeof b, "%d/%d", p->shard_index, p->shard_count);
            cJSON_AddStringToObject(o, "shard", b);
        } else {
            cJSON_AddNullToObject(o, "shard");
        }
    }
    return o;
}

/* settings_json printed canonically (parsed and printed again, so numbers
 * read from a file print the same); malloc'd. */
static char *settings_sig(const cJSON *set)
{
    char *a = cJSON_PrintUnformatted(set);
    cJSON *o = a ? cJSON_Parse(a) : NULL;
    char *b = o ? cJSON_PrintUnformatted(o) : NULL;
    free(a);
    cJSON_Delete(o);
    return b;
}

/* The first key whose value differs between two settings objects ("" if
 * none), with both values printed. */
static void settings_diff(const cJSON *a, const cJSON *b, char *buf, size_t n)
{
    buf[0] = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a)
    {
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
        char *sx = cJSON_PrintUnformatted(x), *sy = y ? cJSON_PrintUnformatted(y) : NULL;
        int differ = !sy || strcmp(sx ? sx : "", sy) != 0;
        if (differ) snprintf(buf, n, "%s %.200s there, %.200s here", x->string, sx ? sx : "?", sy ? sy : "(missing)");
        free(sx);
        free(sy);
        if (differ) return;
    }
    cJSON_ArrayForEach(x, b) if (!cJSON_GetObjectItemCaseSensitive(a, x->string))
    {
        snprintf(buf, n, "%s missing there", x->string);
        return;
    }
}

static int write_items_csv(const steer_sweep_table *t, const char *path)
{
    char tmp[IO_TMP_PATH_MAX];
    FILE *f = io_tmp_open(path, tmp);
    if (!f) return STEER_EIO;
    const steer_sweep_params *p = &t->p;
    const int K = p->tokens;
    char alpha[STEER_SWEEP_MAX_ALPHAS][32];
    for (int a = 0; a < p->n_alphas; a++) fmt_float(alpha[a], sizeof alpha[a], p->alphas[a]);
    fputs("item,id,site,layer,alpha,token,kl_steered,kl_base,dkl\n", f);
    for (int i = 0; i < t->n_data; i++) {
        if (!t->done[i]) continue;
        const table_item *ti = &t->items[i];
        for (int si = 0; si < p->n_sites; si++)
            for (int li = 0; li < p->n_layers; li++)
                for (int a = 0; a < p->n_alphas; a++)
                    for (int k = 0; k < K; k++) {
                        const size_t c = ((size_t)si * p->n_layers + li) * p->n_alphas + a;
                        char ks[40], kb[40], dk[40];
                        double s = ti->kl[c * K + k], b = ti->kl_base[k];
                        fmt_double(ks, sizeof ks, s);
                        fmt_double(kb, sizeof kb, b);
                        fmt_double(dk, sizeof dk, s - b);
                        fprintf(f, "%d,", i);
                        csv_field(f, ti->id);
                        fprintf(f, ",%s,%d,%s,%d,%s,%s,%s\n", steer_site_name(p->sites[si]), p->layers[li], alpha[a],
                                k + 1, ks, kb, dk);
                    }
    }
    return io_tmp_commit(f, tmp, path, !ferror(f));
}

static int write_dkl_csv(const steer_sweep_table *t, const char *path)
{
    char tmp[IO_TMP_PATH_MAX];
    FILE *f = io_tmp_open(path, tmp);
    if (!f) return STEER_EIO;
    const steer_sweep_params *p = &t->p;
    char bn[256], fn[256];
    model_name(t->base_path, bn, sizeof bn);
    model_name(t->ft_path, fn, sizeof fn);
    fputs("base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n\n", f);
    for (int si = 0; si < p->n_sites; si++)
        for (int li = 0; li < p->n_layers; li++)
            for (int a = 0; a < p->n_alphas; a++)
                for (int k = 0; k < p->tokens; k++) {
                    double m, se;
                    int n;
                    steer_sweep_table_cell(t, si, li, a, k, &m, &se, &n);
                    if (n < 1) continue;
                    char al[32];
                    fmt_float(al, sizeof al, p->alphas[a]);
                    csv_field(f, bn);
                    fputc(',', f);
                    csv_field(f, fn);
                    fprintf(f, ",%s,%d,%s,%d,%.9g,%.9g,%d\n", steer_site_name(p->sites[si]), p->layers[li], al, k + 1,
                            m, se, n);
                }
    return io_tmp_commit(f, tmp, path, !ferror(f));
}

static int write_summary(const steer_sweep_table *t, const char *path, double wall_s)
{
    const steer_sweep_params *p = &t->p;
    char bn[256], fn[256];
    model_name(t->base_path, bn, sizeof bn);
    model_name(t->ft_path, fn, sizeof fn);
    cJSON *o = cJSON_CreateObject(), *set = settings_json(t, 1);
    if (!o || !set) {
        cJSON_Delete(o);
        cJSON_Delete(set);
        return steer_err(STEER_ENOMEM, "sweep: out of memory");
    }
    cJSON_AddStringToObject(o, "format", "steer-sweep/1");
    cJSON_AddStringToObject(o, "base", bn);
    cJSON_AddStringToObject(o, "ft", fn);
    cJSON_AddStringToObject(o, "base_path", t->base_path);
    cJSON_AddStringToObject(o, "ft_path", t->ft_path);
    cJSON_AddStringToObject(o, "arch", t->arch);
    cJSON_AddNumberToObject(o, "n_layers", t->n_layer_model);
    cJSON_AddNumberToObject(o, "d_model", t->d_model);
    cJSON_AddStringToObject(o, "data", t->data);
    cJSON_AddNumberToObject(o, "n_items", t->count);
    cJSON_AddNumberToObject(o, "n_data", t->n_data);
    static const char *const keys[] = {"tokens", "sites", "layers", "alphas", "continuation", "positions",
                                       "delta_site", "shard"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cJSON_AddItemToObject(o, keys[i], cJSON_DetachItemFromObjectCaseSensitive(set, keys[i]));
    cJSON_Delete(set);
    cJSON_AddStringToObject(o, "command", t->command);
    const int K = p->tokens;
    cJSON *kb = cJSON_AddArrayToObject(o, "kl_base_mean");
    for (int k = 0; k < K; k++) {
        double sum = 0.0;
        int n = 0;
        for (int i = 0; i < t->n_data; i++)
            if (t->done[i] && k < t->items[i].n_tokens) {
                sum += t->items[i].kl_base[k];
                n++;
            }
        cJSON_AddItemToArray(kb, n ? json_exact(sum / n) : cJSON_CreateNull());
    }
    cJSON *best = cJSON_AddObjectToObject(o, "best");
    for (int si = 0; si < p->n_sites; si++) {
        int bl = -1, ba = -1, bk = -1;
        double bm = 0.0;
        for (int li = 0; li < p->n_layers; li++)
            for (int a = 0; a < p->n_alphas; a++)
                for (int k = 0; k < K; k++) {
                    double m;
                    int n;
                    steer_sweep_table_cell(t, si, li, a, k, &m, NULL, &n);
                    if (n > 0 && (bl < 0 || m < bm)) {
                        bl = li; ba = a; bk = k; bm = m;
                    }
                }
        if (bl < 0) {
            cJSON_AddNullToObject(best, steer_site_name(p->sites[si]));
            continue;
        }
        cJSON *b = cJSON_AddObjectToObject(best, steer_site_name(p->sites[si]));
        cJSON_AddNumberToObject(b, "layer", p->layers[bl]);
        cJSON_AddItemToObject(b, "alpha", json_float(p->alphas[ba]));
        cJSON_AddNumberToObject(b, "token", bk + 1);
        cJSON_AddItemToObject(b, "dkl_mean", json_exact(bm));
    }
    cJSON_AddNumberToObject(o, "wall_s", wall_s);
    int rc = io_write_json(path, o);
    cJSON_Delete(o);
    return rc;
}

int steer_sweep_table_write(const steer_sweep_table *t, const char *dir, double wall_s)
{
    int rc = io_mkdir_p(dir);
    if (rc) return rc;
    if (wall_s < 0) wall_s = t->wall_s;
    char *pi = join(dir, "items.csv"), *pd = join(dir, "dkl.csv"), *ps = join(dir, "summary.json");
    if (!pi || !pd || !ps) rc = steer_err(STEER_ENOMEM, "sweep: out of memory");
    if (!rc) rc = write_items_csv(t, pi);
    if (!rc) rc = write_dkl_csv(t, pd);
    if (!rc) rc = write_summary(t, ps, wall_s);
    free(pi); free(pd); free(ps);
    return rc;
}

/* ---------------------------------------------------------------- reading back */

/* Settings from a summary.json / journal header object into p and info
 * (strings point into the cJSON tree). */
static int settings_from_json(const cJSON *o, const char *path, steer_sweep_params *p, steer_sweep_info *info)
{
    *p = steer_sweep_default_params();
    memset(info, 0, sizeof *info);
    const cJSON *x;
#define STR(key, dst)                                                                                           \
    if (!cJSON_IsString(x = cJSON_GetObjectItemCaseSensitive(o, key)))                                         \
        return steer_err(STEER_EFORMAT, "%s: missing or non-string field '%s'", path, key);                     \
    dst = x->valuestring;
#define NUM(key, dst)                                                                                           \
    if (!cJSON_IsNumber(x = cJSON_GetObjectItemCaseSensitive(o, key)))                                         \
        return steer_err(STEER_EFORMAT, "%s: missing or non-numeric field '%s'", path, key);                    \
    dst = x->valueint;
    STR("base_path", info->base_path)
    STR("ft_path", info->ft_path)
    STR("data", info->data)
    NUM("n_data", info->n_data)
    NUM("tokens", p->tokens)
    const char *cont, *pos;
    STR("continuation", cont)
    STR("positions", pos)
#undef STR
#undef NUM
    if (strcmp(cont, "ft") == 0) p->continuation = STEER_SWEEP_CONT_FT;
    else if (strcmp(cont, "gold") == 0) p->continuation = STEER_SWEEP_CONT_GOLD;
    else return steer_err(STEER_EFORMAT, "%s: unknown continuation '%s'", path, cont);
    if (strcmp(pos, "all") == 0) p->positions = STEER_POS_ALL;
    else if (strcmp(pos, "prompt") == 0) p->positions = STEER_POS_PROMPT;
    else if (strcmp(pos, "continuation") == 0) p->positions = STEER_POS_GENERATED;
    else return steer_err(STEER_EFORMAT, "%s: unknown positions '%s'", path, pos);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "sites");
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 || cJSON_GetArraySize(a) > STEER_SITE_COUNT)
        return steer_err(STEER_EFORMAT, "%s: bad 'sites'", path);
    p->n_sites = 0;
    cJSON_ArrayForEach(x, a)
    {
        steer_site s;
        if (!cJSON_IsString(x) || steer_site_parse(x->valuestring, &s) != STEER_OK)
            return steer_err(STEER_EFORMAT, "%s: bad site in 'sites'", path);
        p->sites[p->n_sites++] = s;
    }
    a = cJSON_GetObjectItemCaseSensitive(o, "layers");
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 || cJSON_GetArraySize(a) > STEER_SWEEP_MAX_LAYERS)
        return steer_err(STEER_EFORMAT, "%s: bad 'layers'", path);
    p->n_layers = 0;
    cJSON_ArrayForEach(x, a)
    {
        if (!cJSON_IsNumber(x)) return steer_err(STEER_EFORMAT, "%s: bad layer in 'layers'", path);
        p->layers[p->n_layers++] = x->valueint;
    }
    a = cJSON_GetObjectItemCaseSensitive(o, "alphas");
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 || cJSON_GetArraySize(a) > STEER_SWEEP_MAX_ALPHAS)
        return steer_err(STEER_EFORMAT, "%s: bad 'alphas'", path);
    p->n_alphas = 0;
    cJSON_ArrayForEach(x, a)
    {
        if (!cJSON_IsNumber(x)) return steer_err(STEER_EFORMAT, "%s: bad alpha in 'alphas'", path);
        p->alphas[p->n_alphas++] = (float)x->valuedouble;
    }
    x = cJSON_GetObjectItemCaseSensitive(o, "delta_site");
    p->delta_site = -1;
    if (cJSON_IsString(x)) {
        steer_site s;
        if (steer_site_parse(x->valuestring, &s) != STEER_OK)
            return steer_err(STEER_EFORMAT, "%s: bad 'delta_site'", path);
        p->delta_site = (int)s;
    }
    x = cJSON_GetObjectItemCaseSensitive(o, "shard");
    if (cJSON_IsString(x)) {
        if (sscanf(x->valuestring, "%d/%d", &p->shard_index, &p->shard_count) != 2 || p->shard_count < 1 ||
            p->shard_index < 0 || p->shard_index >= p->shard_count)
            return steer_err(STEER_EFORMAT, "%s: bad 'shard' '%s'", path, x->valuestring);
    }
    if (p->tokens < 1 || p->tokens > STEER_SWEEP_MAX_TOKENS || info->n_data < 0)
        return steer_err(STEER_EFORMAT, "%s: bad 'tokens' or 'n_data'", path);
    return STEER_OK;
}

static int parse_num(const char *s, double *v)
{
    if (!*s) {
        *v = NAN;
        return 0;
    }
    char *end;
    *v = strtod(s, &end);
    return *end ? -1 : 0;
}

int steer_sweep_table_read(const char *dir, steer_sweep_table **out)
{
    *out = NULL;
    char *ps = join(dir, "summary.json"), *pi = join(dir, "items.csv"), *text = NULL, *csv = NULL;
    cJSON *o = NULL;
    steer_sweep_table *t = NULL;
    int rc = ps && pi ? STEER_OK : steer_err(STEER_ENOMEM, "sweep: out of memory");
    if (!rc) rc = io_read_text(ps, &text, NULL);
    if (!rc && !(o = cJSON_Parse(text))) rc = steer_err(STEER_EFORMAT, "%s: not valid JSON", ps);
    const cJSON *fmt = o ? cJSON_GetObjectItemCaseSensitive(o, "format") : NULL;
    if (!rc && !(cJSON_IsString(fmt) && strcmp(fmt->valuestring, "steer-sweep/1") == 0))
        rc = steer_err(STEER_EFORMAT, "%s: not a steer sweep summary (format is not steer-sweep/1)", ps);
    steer_sweep_params p;
    steer_sweep_info info;
    if (!rc) rc = settings_from_json(o, ps, &p, &info);
    if (!rc) {
        const cJSON *x;
        info.command = cJSON_IsString(x = cJSON_GetObjectItemCaseSensitive(o, "command")) ? x->valuestring : "";
        info.arch = cJSON_IsString(x = cJSON_GetObjectItemCaseSensitive(o, "arch")) ? x->valuestring : "";
        info.n_layers = cJSON_IsNumber(x = cJSON_GetObjectItemCaseSensitive(o, "n_layers")) ? x->valueint : 0;
        info.d_model = cJSON_IsNumber(x = cJSON_GetObjectItemCaseSensitive(o, "d_model")) ? x->valueint : 0;
        rc = steer_sweep_table_new(&p, &info, &t);
        if (!rc && cJSON_IsNumber(x = cJSON_GetObjectItemCaseSensitive(o, "wall_s"))) t->wall_s = x->valuedouble;
    }
    if (!rc) rc = io_read_text(pi, &csv, NULL);
    if (!rc) {
        const int K = p.tokens, per_item = t->n_cells * K;
        char alpha[STEER_SWEEP_MAX_ALPHAS][32];
        for (int a = 0; a < p.n_alphas; a++) fmt_float(alpha[a], sizeof alpha[a], p.alphas[a]);
        char *line = csv, *next;
        int lineno = 0, r = 0; /* r = row within the current item's block */
        double *kl = malloc((size_t)per_item * sizeof(double)), *kb = malloc((size_t)K * sizeof(double));
        int cur = -1, ntok = 0;
        char *cur_id = NULL;
        if (!kl || !kb) rc = steer_err(STEER_ENOMEM, "sweep: out of memory");
        for (; !rc && line && *line; line = next) {
            next = strchr(line, '\n');
            if (next) *next++ = 0;
            lineno++;
            size_t len = strlen(line);
            if (len && line[len - 1] == '\r') line[len - 1] = 0;
            if (lineno == 1) {
                if (strcmp(line, "item,id,site,layer,alpha,token,kl_steered,kl_base,dkl") != 0)
                    rc = steer_err(STEER_EFORMAT, "%s:1: not the items.csv header", pi);
                continue;
            }
            char *f[10];
            if (csv_split(line, f, 10) != 9) {
                rc = steer_err(STEER_EFORMAT, "%s:%d: expected 9 fields", pi, lineno);
                break;
            }
            const int c = r / K, k = r % K, a = c % p.n_alphas, li = c / p.n_alphas % p.n_layers,
                      si = c / p.n_alphas / p.n_layers;
            char *end;
            long item = strtol(f[0], &end, 10);
            if (*end || item < 0 || item >= t->n_data || (r > 0 && item != cur)) {
                rc = steer_err(STEER_EFORMAT, "%s:%d: bad or unexpected item '%s'", pi, lineno, f[0]);
                break;
            }
            char lb[16], kbuf[16];
            snprintf(lb, sizeof lb, "%d", p.layers[li]);
            snprintf(kbuf, sizeof kbuf, "%d", k + 1);
            if (strcmp(f[2], steer_site_name(p.sites[si])) || strcmp(f[3], lb) || strcmp(f[4], alpha[a]) ||
                strcmp(f[5], kbuf)) {
                rc = steer_err(STEER_EFORMAT, "%s:%d: expected site %s layer %s alpha %s token %s here", pi, lineno,
                               steer_site_name(p.sites[si]), lb, alpha[a], kbuf);
                break;
            }
            double vs, vb;
            if (parse_num(f[6], &vs) || parse_num(f[7], &vb)) {
                rc = steer_err(STEER_EFORMAT, "%s:%d: bad number", pi, lineno);
                break;
            }
            if (r == 0) {
                cur = (int)item;
                free(cur_id);
                cur_id = strdup(f[1]);
                ntok = 0;
            }
            kl[r] = vs;
            if (c == 0) {
                kb[k] = vb;
                if (!isnan(vb)) {
                    if (ntok != k) {
                        rc = steer_err(STEER_EFORMAT, "%s:%d: token %d has values after an empty one", pi, lineno, k + 1);
                        break;
                    }
                    ntok = k + 1;
                }
            }
            if (++r == per_item) {
                steer_sweep_item it = {.item = cur, .id = cur_id, .n_tokens = ntok, .kl_base = kb, .kl_steered = kl};
                if ((rc = steer_sweep_table_add(t, &it))) {
                    rc = steer_err(rc, "%s:%d: %s", pi, lineno, steer_last_error());
                    break;
                }
                r = 0;
            }
        }
        if (!rc && r != 0) rc = steer_err(STEER_EFORMAT, "%s: truncated (item %d is incomplete)", pi, cur);
        free(kl);
        free(kb);
        free(cur_id);
    }
    free(text);
    free(csv);
    cJSON_Delete(o);
    free(ps);
    free(pi);
    if (rc) {
        steer_sweep_table_free(t);
        return rc;
    }
    *out = t;
    return STEER_OK;
}

int steer_sweep_table_merge(steer_sweep_table *const *parts, int n, const char *command, steer_sweep_table **out)
{
    *out = NULL;
    if (n < 1 || !parts) return steer_err(STEER_EARG, "merge: no sweeps to merge");
    const int count = parts[0]->p.shard_count;
    if (n != count)
        return steer_err(STEER_EARG, "merge: %d sweep(s) given but the first is shard %d/%d (every shard 0..%d of %d is needed)",
                         n, parts[0]->p.shard_index, count, count - 1, count);
    cJSON *ref = settings_json(parts[0], 0);
    char *rs = settings_sig(ref);
    unsigned char seen[4096] = {0};
    int rc = STEER_OK;
    if (count > (int)sizeof seen) rc = steer_err(STEER_EUNSUPPORTED, "merge: at most %d shards", (int)sizeof seen);
    for (int i = 0; i < n && !rc; i++) {
        cJSON *s = settings_json(parts[i], 0);
        char *ss = settings_sig(s);
        if (!rs || !ss || strcmp(rs, ss) != 0) {
            char diff[600];
            settings_diff(s, ref, diff, sizeof diff);
            rc = steer_err(STEER_EARG, "merge: sweep %d has other settings than the first (%s)", i + 1, diff);
        } else if (parts[i]->p.shard_count != count) {
            rc = steer_err(STEER_EARG, "merge: sweep %d is shard %d/%d but the first is of %d", i + 1,
                           parts[i]->p.shard_index, parts[i]->p.shard_count, count);
        } else if (seen[parts[i]->p.shard_index]++) {
            rc = steer_err(STEER_EARG, "merge: shard %d/%d given twice", parts[i]->p.shard_index, count);
        }
        free(ss);
        cJSON_Delete(s);
    }
    free(rs);
    cJSON_Delete(ref);
    if (rc) return rc;
    const steer_sweep_table *a = parts[0];
    steer_sweep_params p = a->p;
    p.shard_index = 0;
    p.shard_count = 1;
    steer_sweep_info info = {a->base_path, a->ft_path, a->data, command ? command : a->command, a->arch,
                             a->n_layer_model, a->d_model, a->n_data};
    steer_sweep_table *t;
    if ((rc = steer_sweep_table_new(&p, &info, &t))) return rc;
    for (int i = 0; i < n && !rc; i++) {
        t->wall_s += parts[i]->wall_s;
        for (int j = 0; j < a->n_data && !rc; j++) {
            const table_item *ti = &parts[i]->items[j];
            if (!parts[i]->done[j]) continue;
            steer_sweep_item it = {.item = j, .id = ti->id, .n_tokens = ti->n_tokens, .kl_base = ti->kl_base,
                                   .kl_steered = ti->kl};
            rc = steer_sweep_table_add(t, &it);
        }
    }
    if (rc) {
        steer_sweep_table_free(t);
        return rc;
    }
    *out = t;
    return STEER_OK;
}

/* ---------------------------------------------------------------- journal */

static int write_full(int fd, const char *s, size_t n, const char *path)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return steer_err(STEER_EIO, "%s: write failed: %s", path, strerror(errno));
        }
        s += w;
        n -= (size_t)w;
    }
    if (fsync(fd) != 0 && (errno == EIO || errno == ENOSPC))
        return steer_err(STEER_EIO, "%s: fsync failed: %s", path, strerror(errno));
    return STEER_OK;
}

/* One journal line: {"item","id","n_prompt","tokens","kl_base","kl"}. */
static char *journal_line(const steer_sweep_table *t, const steer_sweep_item *it)
{
    const int K = t->p.tokens;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "item", it->item);
    cJSON_AddStringToObject(o, "id", it->id ? it->id : "");
    cJSON_AddNumberToObject(o, "n_prompt", it->n_prompt);
    cJSON *a = cJSON_AddArrayToObject(o, "tokens");
    for (int k = 0; k < it->n_tokens; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(it->tokens ? it->tokens[k] : 0));
    a = cJSON_AddArrayToObject(o, "kl_base");
    for (int k = 0; k < it->n_tokens; k++) cJSON_AddItemToArray(a, json_exact(it->kl_base[k]));
    a = cJSON_AddArrayToObject(o, "kl");
    for (int c = 0; c < t->n_cells; c++)
        for (int k = 0; k < it->n_tokens; k++) cJSON_AddItemToArray(a, json_exact(it->kl_steered[(size_t)c * K + k]));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int journal_parse_line(steer_sweep_table *t, const char *line, const char *path, int lineno)
{
    const int K = t->p.tokens;
    cJSON *o = cJSON_Parse(line);
    int rc = STEER_OK;
    const cJSON *item = o ? cJSON_GetObjectItemCaseSensitive(o, "item") : NULL,
                *id = o ? cJSON_GetObjectItemCaseSensitive(o, "id") : NULL,
                *kb = o ? cJSON_GetObjectItemCaseSensitive(o, "kl_base") : NULL,
                *kl = o ? cJSON_GetObjectItemCaseSensitive(o, "kl") : NULL;
    int nt = cJSON_IsArray(kb) ? cJSON_GetArraySize(kb) : -1;
    if (!cJSON_IsNumber(item) || !cJSON_IsString(id) || nt < 0 || nt > K || !cJSON_IsArray(kl) ||
        cJSON_GetArraySize(kl) != t->n_cells * nt) {
        cJSON_Delete(o);
        return steer_err(STEER_EFORMAT, "%s:%d: malformed item line", path, lineno);
    }
    if (item->valueint >= 0 && item->valueint < t->n_data && t->done[item->valueint]) { /* already read */
        cJSON_Delete(o);
        return STEER_OK;
    }
    double *vb = malloc((size_t)K * sizeof(double)), *vs = malloc((size_t)t->n_cells * K * sizeof(double));
    if (!vb || !vs) rc = steer_err(STEER_ENOMEM, "sweep: out of memory");
    for (int k = 0; !rc && k < nt; k++) {
        const cJSON *x = cJSON_GetArrayItem(kb, k);
        vb[k] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    }
    int idx = 0;
    const cJSON *x;
    if (!rc) cJSON_ArrayForEach(x, kl)
        {
            vs[(size_t)(idx / nt) * K + idx % nt] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
            idx++;
        }
    if (!rc) {
        steer_sweep_item it = {.item = item->valueint, .id = id->valuestring, .n_tokens = nt, .kl_base = vb,
                               .kl_steered = vs};
        if ((rc = steer_sweep_table_add(t, &it))) rc = steer_err(rc, "%s:%d: %s", path, lineno, steer_last_error());
    }
    free(vb);
    free(vs);
    cJSON_Delete(o);
    return rc;
}

int steer_sweep_journal_open(steer_sweep_table *t, const char *dir, int *n_read)
{
    if (n_read) *n_read = 0;
    if (t->journal_path) return steer_err(STEER_EARG, "sweep: journal already open");
    char *path = join(dir, "progress.jsonl");
    if (!path) return steer_err(STEER_ENOMEM, "sweep: out of memory");
    int rc = STEER_OK, fd = open(path, O_RDWR);
    if (fd < 0 && errno != ENOENT) rc = steer_err(STEER_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fd < 0) { /* no journal yet: created with the first item (so a run that fails first leaves nothing) */
        if (rc) {
            free(path);
            return rc;
        }
        t->journal_path = path;
        return STEER_OK;
    }
    cJSON *set = settings_json(t, 1);
    char *sig = settings_sig(set), *text = NULL;
    const int before = t->count;
    size_t size = 0;
    rc = io_read_text(path, &text, &size);
    char *line = text, *next;
    int lineno = 0;
    for (; !rc && line && *line; line = next) {
        next = strchr(line, '\n');
        lineno++;
        if (!next) { /* a torn last line (killed mid-write): drop it */
            if (ftruncate(fd, (off_t)(line - text)) != 0)
                rc = steer_err(STEER_EIO, "%s: cannot truncate a torn last line: %s", path, strerror(errno));
            break;
        }
        *next++ = 0;
        if (lineno > 1) {
            rc = journal_parse_line(t, line, path, lineno);
            continue;
        }
        cJSON *h = cJSON_Parse(line);
        const cJSON *f = h ? cJSON_GetObjectItemCaseSensitive(h, "format") : NULL,
                    *hs = h ? cJSON_GetObjectItemCaseSensitive(h, "settings") : NULL;
        if (!cJSON_IsString(f) || strcmp(f->valuestring, "steer-sweep-progress/1") != 0 || !cJSON_IsObject(hs)) {
            rc = steer_err(STEER_EFORMAT, "%s:1: not a steer sweep progress file", path);
        } else {
            char *s2 = settings_sig(hs);
            if (!s2 || !sig || strcmp(s2, sig) != 0) {
                char diff[600];
                settings_diff(hs, set, diff, sizeof diff);
                rc = steer_err(STEER_EARG,
                               "%s: written by a sweep with other settings (%s); use another output directory or "
                               "delete the file",
                               path, diff);
            }
            free(s2);
        }
        cJSON_Delete(h);
    }
    if (!rc && lineno == 0) rc = steer_err(STEER_EFORMAT, "%s: empty (no header line)", path);
    if (!rc && lseek(fd, 0, SEEK_END) < 0) rc = steer_err(STEER_EIO, "%s: seek failed: %s", path, strerror(errno));
    free(text);
    free(sig);
    cJSON_Delete(set);
    if (rc) {
        close(fd);
        free(path);
        return rc;
    }
    t->journal_fd = fd;
    t->journal_path = path;
    if (n_read) *n_read = t->count - before;
    return STEER_OK;
}

/* Creates the journal (directory, file, header line) on the first append. */
static int journal_create(steer_sweep_table *t)
{
    const char *path = t->journal_path;
    char dir[IO_TMP_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    int rc = io_mkdir_p(dir);
    if (rc) return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) return steer_err(STEER_EIO, "%s: cannot create: %s", path, strerror(errno));
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "format", "steer-sweep-progress/1");
    cJSON_AddItemToObject(h, "settings", settings_json(t, 1));
    char *hs = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t n = hs ? strlen(hs) : 0;
    char *line = hs ? malloc(n + 2) : NULL;
    if (!line) rc = steer_err(STEER_ENOMEM, "sweep: out of memory");
    else {
        memcpy(line, hs, n);
        line[n] = '\n';
        line[n + 1] = 0;
        rc = write_full(fd, line, n + 1, path);
    }
    free(hs);
    free(line);
    if (!rc) { /* make the new directory entry durable too */
        int dfd = open(dir, O_RDONLY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    if (rc) {
        close(fd);
        unlink(path);
        return rc;
    }
    t->journal_fd = fd;
    return STEER_OK;
}

int steer_sweep_journal_append(steer_sweep_table *t, const steer_sweep_item *it)
{
    if (!t->journal_path) return steer_err(STEER_EARG, "sweep: no journal open");
    int rc = t->journal_fd < 0 ? journal_create(t) : STEER_OK;
    if (!rc) rc = steer_sweep_table_add(t, it);
    if (rc) return rc;
    char *s = journal_line(t, it);
    if (!s) return steer_err(STEER_ENOMEM, "sweep: out of memory");
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return steer_err(STEER_ENOMEM, "sweep: out of memory");
    }
    line[n] = '\n';
    line[n + 1] = 0;
    rc = write_full(t->journal_fd, line, n + 1, t->journal_path);
    free(line);
    return rc;
}

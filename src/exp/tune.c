/*
 * tune.c — `steer tune` (issue 22): a user's own steering vectors × sites ×
 * layers × scales on contrastive A/B data, with judge-free metrics per cell
 * (steer_exp.h, "steering tune"; docs/TUNE.md):
 *
 *   logit difference  LD = Σ log p(positive completion) − Σ log p(negative
 *                     completion), teacher-forced after the prompt, per item;
 *                     its mean and standard error, the share of items with
 *                     LD > 0 and the share that moved there from LD ≤ 0
 *                     without steering;
 *   side effect       KL(P_steered ‖ P_unsteered) of the next-token
 *                     distribution at every position of neutral texts;
 *   perplexity        exp(mean NLL) of a reference text under steering.
 *
 * One unsteered pass per item (and per text) is shared by every cell; a cell
 * adds α·v at (site, layer) through the core's public intervention API. Items
 * and texts run in parallel (one context per thread) and every sum is taken
 * in item order afterwards, so results do not depend on the thread count.
 */
#include "steer_exp.h"
#include "base.h"
#include "data.h"
#include "plot.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

steer_tune_params steer_tune_default_params(void)
{
    steer_tune_params p;
    memset(&p, 0, sizeof p);
    p.positions = STEER_POS_ALL;
    p.kl_budget = 0.1;
    return p;
}

/* ---------------------------------------------------------------- data */

void steer_tune_data_free(steer_tune_data *d)
{
    if (!d) return;
    for (int i = 0; i < d->n_pairs; i++) {
        free(d->pairs[i].prompt);
        free(d->pairs[i].positive);
        free(d->pairs[i].negative);
    }
    free(d->pairs);
    for (int i = 0; i < d->n_neutral; i++) free(d->neutral[i]);
    free(d->neutral);
    free(d->reference);
    free(d);
}

/* The first of the names that is a string field of o, or NULL. */
static const char *field(const cJSON *o, const char *const *names)
{
    for (; *names; names++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, *names);
        if (cJSON_IsString(v)) return v->valuestring;
    }
    return NULL;
}

static int load_pairs(const char *path, int n_max, steer_tune_data *d)
{
    static const char *const k_prompt[] = {"prompt", "question", NULL};
    static const char *const k_pos[] = {"positive", "answer_matching_behavior", NULL};
    static const char *const k_neg[] = {"negative", "answer_not_matching_behavior", NULL};
    char *text = NULL;
    int rc = io_read_text(path, &text, NULL);
    if (rc) return rc;
    char *cur = text, *ln;
    int line = 0, cap = 0;
    while (!rc && (ln = text_next_line(&cur, NULL))) {
        line++;
        if (!*ln || (n_max > 0 && d->n_pairs >= n_max)) continue;
        cJSON *o = cJSON_Parse(ln);
        if (!cJSON_IsObject(o)) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: not a JSON object", path, line);
            cJSON_Delete(o);
            break;
        }
        const char *p = field(o, k_prompt), *a = field(o, k_pos), *b = field(o, k_neg);
        if (!p || !a || !b) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: missing string field '%s' (want prompt/question, "
                                          "positive/answer_matching_behavior, negative/answer_not_matching_behavior)",
                           path, line, !p ? "prompt" : !a ? "positive" : "negative");
            cJSON_Delete(o);
            break;
        }
        if (!*a || !*b) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: empty %s completion", path, line, !*a ? "positive" : "negative");
            cJSON_Delete(o);
            break;
        }
        if (d->n_pairs == cap) {
            cap = cap ? 2 * cap : 64;
            steer_tune_pair *np = realloc(d->pairs, (size_t)cap * sizeof *np);
            if (!np) {
                cJSON_Delete(o);
                rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
                break;
            }
            d->pairs = np;
        }
        steer_tune_pair *q = &d->pairs[d->n_pairs++];
        q->prompt = strdup(p);
        q->positive = strdup(a);
        q->negative = strdup(b);
        q->line = line;
        cJSON_Delete(o);
        if (!q->prompt || !q->positive || !q->negative) rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    free(text);
    if (!rc && d->n_pairs == 0) rc = steer_err(STEER_EFORMAT, "%s: no items", path);
    return rc;
}

static int load_lines(const char *path, steer_tune_data *d)
{
    char *text = NULL;
    int rc = io_read_text(path, &text, NULL);
    if (rc) return rc;
    char *cur = text, *ln;
    int cap = 0;
    while (!rc && (ln = text_next_line(&cur, NULL))) {
        if (!*ln) continue;
        if (d->n_neutral == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(d->neutral, (size_t)cap * sizeof *nn);
            if (!nn) {
                rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
                break;
            }
            d->neutral = nn;
        }
        if (!(d->neutral[d->n_neutral++] = strdup(ln))) rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    free(text);
    if (!rc && d->n_neutral == 0) rc = steer_err(STEER_EFORMAT, "%s: no non-empty lines", path);
    return rc;
}

int steer_tune_data_load(const char *pairs_path, int n_max, const char *neutral_path, const char *reference_path,
                         steer_tune_data **out)
{
    /* Ownership: borrows the paths; *out is the caller's (steer_tune_data_free). */
    *out = NULL;
    if (!pairs_path) return steer_err(STEER_EARG, "tune: no A/B data file");
    steer_tune_data *d = calloc(1, sizeof *d);
    if (!d) return steer_err(STEER_ENOMEM, "tune: out of memory");
    int rc = load_pairs(pairs_path, n_max, d);
    if (!rc && neutral_path) rc = load_lines(neutral_path, d);
    if (!rc && reference_path) {
        rc = io_read_text(reference_path, &d->reference, NULL);
        if (!rc && !d->reference[strspn(d->reference, " \t\r\n")])
            rc = steer_err(STEER_EFORMAT, "%s: empty reference text", reference_path);
    }
    if (rc) {
        steer_tune_data_free(d);
        return rc;
    }
    *out = d;
    return STEER_OK;
}

/* ---------------------------------------------------------------- run */

typedef struct {
    int vector;
    const steer_vec *v;
    float scale;
} cell_def;

/* One tokenized sequence: an item's prompt ⊕ completion, or a text. */
typedef struct {
    int *tok;
    int n, n_prompt; /* completion = tok[n_prompt .. n)                     */
} seq;

/* Sum of log p(tok[t] | tok[<t]) for t in [t0, n) from logits rows [n, V]
 * (row t − 1 predicts tok[t]), in double. */
static double seq_logprob(const steer_ctx *c, const seq *s, int t0, int V, double *ls)
{
    double sum = 0;
    for (int t = t0 > 1 ? t0 : 1; t < s->n; t++) {
        steer_log_softmax(steer_ctx_logits(c, t - 1), V, ls);
        sum += ls[s->tok[t]];
    }
    return sum;
}

/* Runs s through c with cell k's intervention (none for scale 0 or k < 0). */
static int run_cell(steer_ctx *c, const seq *s, const cell_def *cd, steer_pos_kind pos)
{
    steer_ctx_clear(c, -1);
    steer_ctx_clear_hooks(c);
    if (cd && cd->scale != 0.0f) {
        steer_intervention iv = {.kind = STEER_ADD, .site = cd->v->site, .layer = cd->v->layer, .alpha = cd->scale,
                                 .data = cd->v->data, .n_rows = 0, .seq = -1};
        iv.positions.kind = pos;
        steer_ctx_set_prompt_len(c, 0, s->n_prompt);
        int id = steer_ctx_add_intervention(c, &iv);
        if (id < 0) return id;
    }
    return steer_forward_tokens(c, s->tok, s->n, 0, 0);
}

void steer_tune_result_free(steer_tune_result *r)
{
    if (!r) return;
    free(r->cells);
    free(r);
}

static void seq_free(seq *s, int n)
{
    if (!s) return;
    for (int i = 0; i < n; i++) free(s[i].tok);
    free(s);
}

int steer_tune_run(steer_model *m, const steer_tune_data *d, const steer_tune_params *p, steer_tune_result **out)
{
    /* Ownership: borrows m, d, p (and p's vector sets); *out is the caller's
     * (steer_tune_result_free). The model is only read. */
    *out = NULL;
    if (!m || !d || !p) return steer_err(STEER_EARG, "tune: no model, data or parameters");
    if (p->n_vectors < 1 || !p->vectors) return steer_err(STEER_EARG, "tune: no vector sets");
    if (p->n_scales < 1 || !p->scales) return steer_err(STEER_EARG, "tune: no scales");
    for (int i = 0; i < p->n_scales; i++)
        if (!isfinite(p->scales[i])) return steer_err(STEER_EARG, "tune: scale %d is not finite", i + 1);
    if (p->positions != STEER_POS_ALL && p->positions != STEER_POS_GENERATED)
        return steer_err(STEER_EARG, "tune: positions must be all or generated (the completion)");
    const steer_model_config *cfg = steer_model_get_config(m);
    const int V = steer_vocab_size(m);

    /* Cells: every vector's (site, layer) entries the selection keeps, × scales. */
    int n_cells = 0, cap = 0;
    cell_def *cells = NULL;
    int rc = STEER_OK;
    for (int vi = 0; vi < p->n_vectors && !rc; vi++) {
        const steer_vecset *vs = p->vectors[vi];
        const char *vname = p->vector_names ? p->vector_names[vi] : "vectors";
        if ((rc = steer_vecset_check_model(vs, m, vname))) break;
        int kept = 0;
        for (int k = 0; k < steer_vecset_count(vs) && !rc; k++) {
            const steer_vec *v = steer_vecset_at(vs, k);
            if (p->site_mask && !p->site_mask[v->site]) continue;
            if (p->layer_mask && !p->layer_mask[v->layer]) continue;
            if (v->n_rows != 0) {
                rc = steer_err(STEER_EARG, "%s: %s.%d holds one vector per position; tune takes one vector per (site, layer)",
                               vname, steer_site_name(v->site), v->layer);
                break;
            }
            kept++;
            for (int si = 0; si < p->n_scales; si++) {
                if (n_cells == cap) {
                    cap = cap ? 2 * cap : 64;
                    cell_def *nc = realloc(cells, (size_t)cap * sizeof *nc);
                    if (!nc) {
                        rc = steer_err(STEER_ENOMEM, "tune: out of memory");
                        break;
                    }
                    cells = nc;
                }
                cells[n_cells++] = (cell_def){vi, v, p->scales[si]};
            }
        }
        if (!rc && kept == 0)
            rc = steer_err(STEER_EARG, "%s: no vector at the selected sites and layers", vname);
    }
    if (rc) {
        free(cells);
        return rc;
    }

    /* Tokenize: items (prompt ⊕ positive, prompt ⊕ negative), texts. */
    const int N = d->n_pairs, NT = d->n_neutral;
    seq *pos = calloc((size_t)N, sizeof *pos), *neg = calloc((size_t)N, sizeof *neg);
    seq *txt = calloc((size_t)(NT > 0 ? NT : 1), sizeof *txt);
    seq ref = {0};
    int n_ref_chunks = 0;
    if (!pos || !neg || !txt) rc = steer_err(STEER_ENOMEM, "tune: out of memory");
    for (int i = 0; i < N && !rc; i++) {
        const steer_tune_pair *q = &d->pairs[i];
        int *pt = NULL, np = 0, common = 0;
        if ((rc = steer_tokenize_alloc(m, q->prompt, 1, &pt, &np))) break;
        for (int side = 0; side < 2 && !rc; side++) {
            seq *s = side ? &neg[i] : &pos[i];
            rc = data_tokenize_pair(m, q->prompt, pt, np, side ? q->negative : q->positive, &s->tok, &s->n, &common);
            if (rc) break;
            s->n_prompt = common;
            if (s->n > cfg->n_ctx_train)
                rc = steer_err(STEER_ECONTEXT, "item %d (line %d): %d tokens exceed the context (%d)", i + 1, q->line,
                               s->n, cfg->n_ctx_train);
            else if (common >= s->n || common < 1)
                rc = steer_err(STEER_EFORMAT, "item %d (line %d): the %s completion adds no token", i + 1, q->line,
                               side ? "negative" : "positive");
        }
        free(pt);
    }
    for (int t = 0; t < NT && !rc; t++) {
        if ((rc = steer_tokenize_alloc(m, d->neutral[t], 1, &txt[t].tok, &txt[t].n))) break;
        if (txt[t].n > cfg->n_ctx_train) txt[t].n = cfg->n_ctx_train; /* the first n_ctx tokens */
    }
    if (!rc && d->reference) {
        rc = steer_tokenize_alloc(m, d->reference, 1, &ref.tok, &ref.n);
        n_ref_chunks = (ref.n + cfg->n_ctx_train - 1) / cfg->n_ctx_train;
    }

    /* Per item: LD for the baseline (index 0) and every cell (1 + k). */
    const int NC = n_cells;
    double *ld = calloc((size_t)N * (NC + 1), sizeof *ld);
    double *kl = calloc((size_t)(NT > 0 ? NT : 1) * NC, sizeof *kl);
    double *nll = calloc((size_t)(n_ref_chunks + NT + 1) * (NC + 1), sizeof *nll);
    steer_tune_result *r = calloc(1, sizeof *r);
    if (!rc && (!ld || !kl || !nll || !r)) rc = steer_err(STEER_ENOMEM, "tune: out of memory");
    if (r) r->cells = calloc((size_t)(NC > 0 ? NC : 1), sizeof *r->cells);
    if (!rc && !r->cells) rc = steer_err(STEER_ENOMEM, "tune: out of memory");

    /* Jobs: items, then neutral texts, then reference chunks. */
    const int n_jobs = N + NT + n_ref_chunks;
    int threads = p->n_threads > 0 ? p->n_threads : omp_get_max_threads();
    if (threads < 1) threads = 1;
    const int nw = threads < n_jobs ? threads : n_jobs > 0 ? n_jobs : 1;
    int err = 0, done = 0;
    char msg[1024] = "";
    if (!rc) {
#pragma omp parallel num_threads(nw)
        {
            steer_ctx *c = NULL;
            steer_ctx_params cp = steer_ctx_default_params();
            cp.n_threads = nw == 1 ? threads : 1;
            float *base = malloc((size_t)cfg->n_ctx_train * V * sizeof *base);
            double *ls = malloc((size_t)V * sizeof *ls);
            int wrc = !base || !ls ? steer_err(STEER_ENOMEM, "tune: out of memory") : steer_ctx_new(m, &cp, &c);
            if (wrc) {
#pragma omp critical
                if (!err) {
                    err = wrc;
                    snprintf(msg, sizeof msg, "%s", steer_last_error());
                }
            }
#pragma omp for schedule(dynamic, 1)
            for (int j = 0; j < n_jobs; j++) {
                int halt;
#pragma omp atomic read
                halt = err;
                if (wrc || halt) continue;
                int jrc = STEER_OK;
                if (j < N) { /* an item: LD for the baseline and every cell */
                    for (int k = -1; k < NC && !jrc; k++) {
                        const cell_def *cd = k < 0 ? NULL : &cells[k];
                        double lp[2];
                        for (int side = 0; side < 2 && !jrc; side++) {
                            const seq *s = side ? &neg[j] : &pos[j];
                            if (!(jrc = run_cell(c, s, cd, p->positions))) lp[side] = seq_logprob(c, s, s->n_prompt, V, ls);
                        }
                        if (!jrc) ld[(size_t)j * (NC + 1) + (k + 1)] = lp[0] - lp[1];
                    }
                } else { /* a text: KL to the unsteered pass (neutral) and NLL */
                    const int is_ref = j >= N + NT, t = j - N, ch = j - N - NT;
                    seq s;
                    if (is_ref) {
                        s.tok = ref.tok + (size_t)ch * cfg->n_ctx_train;
                        s.n = ref.n - ch * cfg->n_ctx_train < cfg->n_ctx_train ? ref.n - ch * cfg->n_ctx_train : cfg->n_ctx_train;
                    } else
                        s = txt[t];
                    s.n_prompt = 0;
                    const size_t row = (size_t)(is_ref ? ch : n_ref_chunks + t);
                    if (!(jrc = run_cell(c, &s, NULL, STEER_POS_ALL))) {
                        for (int q = 0; q < s.n; q++) memcpy(base + (size_t)q * V, steer_ctx_logits(c, q), (size_t)V * sizeof *base);
                        nll[row * (NC + 1)] = -seq_logprob(c, &s, 1, V, ls);
                    }
                    for (int k = 0; k < NC && !jrc; k++) {
                        if (!(jrc = run_cell(c, &s, &cells[k], STEER_POS_ALL))) {
                            nll[row * (NC + 1) + k + 1] = -seq_logprob(c, &s, 1, V, ls);
                            if (!is_ref) {
                                double sum = 0;
                                for (int q = 0; q < s.n; q++) sum += steer_kl_logits(steer_ctx_logits(c, q), base + (size_t)q * V, V);
                                kl[(size_t)t * NC + k] = sum;
                            }
                        }
                    }
                }
                if (jrc) {
#pragma omp critical
                    if (!err) {
                        err = jrc;
                        snprintf(msg, sizeof msg, "%s", steer_last_error());
                    }
                }
                if (p->on_progress) {
#pragma omp critical
                    {
                        done++;
                        p->on_progress(p->ud, done, n_jobs);
                    }
                }
            }
            steer_ctx_free(c);
            free(base);
            free(ls);
        }
        if (err) rc = steer_err(err, "%s", msg);
    }

    /* Reduce in item / text order. */
    if (!rc) {
        r->n_cells = NC;
        r->n_items = N;
        r->n_neutral = NT;
        long kl_pos = 0, ref_tok = 0, neu_tok = 0;
        for (int t = 0; t < NT; t++) kl_pos += txt[t].n, neu_tok += txt[t].n - 1;
        for (int ch = 0; ch < n_ref_chunks; ch++) {
            int n = ref.n - ch * cfg->n_ctx_train < cfg->n_ctx_train ? ref.n - ch * cfg->n_ctx_train : cfg->n_ctx_train;
            ref_tok += n - 1;
        }
        /* perplexity: the reference text if given, else the neutral texts */
        const int ppl_rows0 = d->reference ? 0 : n_ref_chunks, ppl_rows = d->reference ? n_ref_chunks : NT;
        const long ppl_tok = d->reference ? ref_tok : neu_tok;
        r->ppl_on_reference = d->reference != NULL;
        for (int k = -1; k < NC; k++) {
            double s = 0, s2 = 0, npos = 0, moved = 0;
            for (int i = 0; i < N; i++) {
                double v = ld[(size_t)i * (NC + 1) + (k + 1)];
                s += v;
                npos += v > 0;
                moved += v > 0 && ld[(size_t)i * (NC + 1)] <= 0;
            }
            double mean = s / N;
            for (int i = 0; i < N; i++) {
                double e = ld[(size_t)i * (NC + 1) + (k + 1)] - mean;
                s2 += e * e;
            }
            double se = N > 1 ? sqrt(s2 / (N - 1) / N) : NAN;
            double nl = 0;
            for (int q = 0; q < ppl_rows; q++) nl += nll[(size_t)(ppl_rows0 + q) * (NC + 1) + (k + 1)];
            double ppl = ppl_tok > 0 ? exp(nl / (double)ppl_tok) : NAN;
            if (k < 0) {
                r->base_ld_mean = mean;
                r->base_ld_se = se;
                r->base_share_positive = npos / N;
                r->base_ppl = ppl;
                continue;
            }
            steer_tune_cell *o = &r->cells[k];
            o->vector = cells[k].vector;
            o->site = cells[k].v->site;
            o->layer = cells[k].v->layer;
            o->scale = cells[k].scale;
            o->n_items = N;
            o->ld_mean = mean;
            o->ld_se = se;
            o->share_positive = npos / N;
            o->share_moved = moved / N;
            double ks = 0;
            for (int t = 0; t < NT; t++) ks += kl[(size_t)t * NC + k];
            o->kl_mean = kl_pos > 0 ? ks / (double)kl_pos : NAN;
            o->kl_positions = kl_pos;
            o->ppl = ppl;
            o->ppl_tokens = ppl_tok;
        }
    }
    seq_free(pos, N);
    seq_free(neg, N);
    if (txt) seq_free(txt, NT);
    free(ref.tok);
    free(ld);
    free(kl);
    free(nll);
    free(cells);
    if (rc) {
        steer_tune_result_free(r);
        return rc;
    }
    *out = r;
    return STEER_OK;
}

int steer_tune_recommend(const steer_tune_result *r, double kl_budget)
{
    /* The best mean LD among cells whose KL is within the budget (cells
     * without a KL, when there were no neutral texts, all count); ties go to
     * the smaller |scale|, then the earlier cell. -1 if none. */
    int best = -1;
    for (int k = 0; k < r->n_cells; k++) {
        const steer_tune_cell *c = &r->cells[k];
        if (!isfinite(c->ld_mean)) continue;
        if (isfinite(c->kl_mean) && c->kl_mean > kl_budget) continue;
        if (best < 0 || c->ld_mean > r->cells[best].ld_mean ||
            (c->ld_mean == r->cells[best].ld_mean && fabsf(c->scale) < fabsf(r->cells[best].scale)))
            best = k;
    }
    return best;
}

/* ---------------------------------------------------------------- files */

static void csv_num(FILE *f, double v)
{
    if (isfinite(v)) fprintf(f, ",%.9g", v);
    else fputs(",", f);
}

/* Figures: metric vs scale, a panel per (vector, site), a line per layer. */
static int tune_figure(const char *dir, const steer_tune_result *r, const steer_tune_info *info, int metric)
{
    static const char *const stem[] = {"tune_logit_diff", "tune_kl", "tune_ppl"};
    static const char *const ylab[] = {"mean logit difference (pos − neg)", "KL(steered ‖ unsteered) per position",
                                       "perplexity"};
    const int NC = r->n_cells;
    /* panels: distinct (vector, site) in cell order; series: distinct layers per panel */
    int np = 0, *pv = calloc((size_t)NC + 1, sizeof *pv), *psite = calloc((size_t)NC + 1, sizeof *psite);
    plot_panel *pan = calloc((size_t)NC + 1, sizeof *pan);
    plot_series *ser = calloc((size_t)NC + 1, sizeof *ser);
    double *xs = calloc((size_t)NC + 1, sizeof *xs), *ys = calloc((size_t)NC + 1, sizeof *ys);
    double *es = calloc((size_t)NC + 1, sizeof *es);
    char(*ptitle)[160] = calloc((size_t)NC + 1, sizeof *ptitle);
    char(*slabel)[32] = calloc((size_t)NC + 1, sizeof *slabel);
    int rc = STEER_OK;
    if (!pv || !psite || !pan || !ser || !xs || !ys || !es || !ptitle || !slabel) {
        rc = steer_err(STEER_ENOMEM, "%s: out of memory drawing figures", dir);
        goto end;
    }
    int ns = 0, used = 0;
    for (int k = 0; k < NC; k++) {
        const steer_tune_cell *c = &r->cells[k];
        int pi = -1;
        for (int q = 0; q < np; q++)
            if (pv[q] == c->vector && psite[q] == (int)c->site) pi = q;
        if (pi >= 0) continue; /* panel built when first met */
        pi = np++;
        pv[pi] = c->vector;
        psite[pi] = (int)c->site;
        snprintf(ptitle[pi], sizeof ptitle[pi], "%s at %s", info && info->vector_names ? info->vector_names[c->vector] : "vectors",
                 steer_site_name(c->site));
        int first_series = ns;
        /* layers of this panel in cell order; points in scale order as given */
        for (int k2 = k; k2 < NC; k2++) {
            const steer_tune_cell *c2 = &r->cells[k2];
            if (c2->vector != c->vector || c2->site != c->site) continue;
            int si = -1;
            for (int q = first_series; q < ns; q++)
                if (atoi(slabel[q] + 6) == c2->layer) si = q;
            if (si < 0) {
                si = ns++;
                snprintf(slabel[si], sizeof slabel[si], "layer %d", c2->layer);
                ser[si] = (plot_series){.label = slabel[si], .x = xs + used, .y = ys + used, .n = 0, .markers = 1,
                                        .yerr = metric == 0 ? es + used : NULL, .color = 0};
                /* the points of this layer, in cell order */
                for (int k3 = k2; k3 < NC; k3++) {
                    const steer_tune_cell *c3 = &r->cells[k3];
                    if (c3->vector != c->vector || c3->site != c->site || c3->layer != c2->layer) continue;
                    xs[used] = c3->scale;
                    ys[used] = metric == 0 ? c3->ld_mean : metric == 1 ? c3->kl_mean : c3->ppl;
                    es[used] = c3->ld_se;
                    used++;
                    ser[si].n++;
                }
            }
        }
        pan[pi] = (plot_panel){.title = ptitle[pi], .xlabel = "scale α", .ylabel = ylab[metric],
                               .series = ser + first_series, .n_series = ns - first_series};
    }
    char title[256];
    snprintf(title, sizeof title, "steer tune: %s vs scale, a line per layer (%d items%s)",
             metric == 0 ? "logit difference" : metric == 1 ? "KL on neutral text" : "perplexity", r->n_items,
             metric == 0 ? "; bars ±1 s.e." : "");
    plot_figure fig = {.title = title, .legend = PLOT_LEGEND_FIGURE};
    rc = plot_write_pair(dir, stem[metric], &fig, pan, np);
end:
    free(pv);
    free(psite);
    free(pan);
    free(ser);
    free(xs);
    free(ys);
    free(es);
    free(ptitle);
    free(slabel);
    return rc;
}

int steer_tune_write(const steer_tune_result *r, const steer_tune_info *info, double kl_budget, const char *dir)
{
    /* Ownership: borrows everything; writes DIR/tune.csv, tune_summary.json and
     * the figures (each atomically). */
    if (!r || !dir || !*dir) return steer_err(STEER_EARG, "tune: no result or directory");
    int rc = io_mkdir_p(dir);
    if (rc) return rc;
    char path[IO_TMP_PATH_MAX], tmp[IO_TMP_PATH_MAX];
    snprintf(path, sizeof path, "%s/tune.csv", dir);
    FILE *f = io_tmp_open(path, tmp);
    if (!f) return STEER_EIO; /* io_tmp_open set the message */
    fputs("vector,site,layer,scale,n,logit_diff_mean,logit_diff_se,share_positive,share_moved,kl_mean,kl_positions,"
          "ppl,ppl_tokens\n", f);
    for (int k = 0; k < r->n_cells; k++) {
        const steer_tune_cell *c = &r->cells[k];
        fprintf(f, "%s,%s,%d,%.9g,%d", info && info->vector_names ? info->vector_names[c->vector] : "vectors",
                steer_site_name(c->site), c->layer, (double)c->scale, c->n_items);
        csv_num(f, c->ld_mean);
        csv_num(f, c->ld_se);
        csv_num(f, c->share_positive);
        csv_num(f, c->share_moved);
        csv_num(f, c->kl_mean);
        fprintf(f, ",%ld", c->kl_positions);
        csv_num(f, c->ppl);
        fprintf(f, ",%ld\n", c->ppl_tokens);
    }
    if ((rc = io_tmp_commit(f, tmp, path, 1))) return rc;

    cJSON *j = cJSON_CreateObject(), *b = cJSON_CreateObject(), *rec = NULL;
    if (!j || !b) {
        cJSON_Delete(j);
        cJSON_Delete(b);
        return steer_err(STEER_ENOMEM, "tune: out of memory");
    }
    cJSON_AddStringToObject(j, "format", "steer-tune/1");
    if (info) {
        if (info->model) cJSON_AddStringToObject(j, "model", info->model);
        if (info->data) cJSON_AddStringToObject(j, "data", info->data);
        if (info->neutral) cJSON_AddStringToObject(j, "neutral", info->neutral);
        if (info->reference) cJSON_AddStringToObject(j, "reference", info->reference);
        if (info->command) cJSON_AddStringToObject(j, "command", info->command);
        if (info->positions) cJSON_AddStringToObject(j, "positions", info->positions);
    }
    cJSON_AddNumberToObject(j, "n_items", r->n_items);
    cJSON_AddNumberToObject(j, "n_neutral", r->n_neutral);
    cJSON_AddStringToObject(j, "ppl_on", r->ppl_on_reference ? "reference" : r->n_neutral ? "neutral" : "none");
    cJSON_AddNumberToObject(j, "kl_budget", kl_budget);
    cJSON_AddNumberToObject(b, "logit_diff_mean", r->base_ld_mean);
    if (isfinite(r->base_ld_se)) cJSON_AddNumberToObject(b, "logit_diff_se", r->base_ld_se);
    cJSON_AddNumberToObject(b, "share_positive", r->base_share_positive);
    if (isfinite(r->base_ppl)) cJSON_AddNumberToObject(b, "ppl", r->base_ppl);
    cJSON_AddItemToObject(j, "unsteered", b);
    int best = steer_tune_recommend(r, kl_budget);
    if (best >= 0) {
        const steer_tune_cell *c = &r->cells[best];
        rec = cJSON_AddObjectToObject(j, "recommended");
        cJSON_AddStringToObject(rec, "vector", info && info->vector_names ? info->vector_names[c->vector] : "vectors");
        cJSON_AddStringToObject(rec, "site", steer_site_name(c->site));
        cJSON_AddNumberToObject(rec, "layer", c->layer);
        cJSON_AddNumberToObject(rec, "scale", c->scale);
        cJSON_AddNumberToObject(rec, "logit_diff_mean", c->ld_mean);
        cJSON_AddNumberToObject(rec, "share_positive", c->share_positive);
        if (isfinite(c->kl_mean)) cJSON_AddNumberToObject(rec, "kl_mean", c->kl_mean);
        if (isfinite(c->ppl)) cJSON_AddNumberToObject(rec, "ppl", c->ppl);
    }
    snprintf(path, sizeof path, "%s/tune_summary.json", dir);
    rc = io_write_json(path, j);
    cJSON_Delete(j);
    for (int m = 0; m < 3 && !rc; m++) {
        if (m == 1 && r->n_neutral == 0) continue;
        if (m == 2 && !isfinite(r->base_ppl)) continue;
        rc = tune_figure(dir, r, info, m);
    }
    return rc;
}

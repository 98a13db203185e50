/*
 * test_tune.c — steer tune (src/exp/tune.c) on stories260K against
 * independent computations and invariants:
 *   - one cell's logit difference, recomputed with a user hook that adds α·v
 *     and a log-softmax written here in double;
 *   - one cell's KL on the neutral texts and perplexity recomputed the same way;
 *   - scale 0 = the unsteered numbers exactly (KL exactly 0);
 *   - swapping positive and negative flips every logit difference;
 *   - 1 and 2 threads give bitwise the same cells;
 *   - the recommendation within a KL budget; bad input is refused.
 */
#include "test_util.h"
#include "tolerances.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static steer_model *M;

/* ---- the independent reference: a hook adds α·v; log-probs in double here */

typedef struct {
    steer_site site;
    int layer;
    float alpha;
    const float *v;
} add_hook;

static int hk_wants(void *ud, steer_site site, int layer)
{
    add_hook *h = ud;
    return site == h->site && layer == h->layer;
}

static int hk_apply(void *ud, steer_site site, int layer, float *x, const steer_hook_batch *b)
{
    (void)site, (void)layer;
    add_hook *h = ud;
    for (int i = 0; i < b->n; i++)
        for (int j = 0; j < b->width; j++) x[(size_t)i * b->width + j] += h->alpha * h->v[j];
    return 0;
}

static double log_softmax_at(const float *z, int n, int k)
{
    double mx = z[0];
    for (int i = 1; i < n; i++) mx = z[i] > mx ? z[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)z[i] - mx);
    return (double)z[k] - mx - log(s);
}

static double kl_ref(const float *p, const float *q, int n)
{
    double kl = 0;
    for (int i = 0; i < n; i++) {
        double lp = log_softmax_at(p, n, i), lq = log_softmax_at(q, n, i);
        kl += exp(lp) * (lp - lq);
    }
    return kl;
}

/* Runs text through c (hook h when h != NULL), returns the logits of every row
 * copied into a malloc'd [n, V] array. */
static float *run(steer_ctx *c, const int *tok, int n, add_hook *h)
{
    const int V = steer_vocab_size(M);
    steer_ctx_clear(c, -1);
    steer_ctx_clear_hooks(c);
    if (h) {
        steer_hook hk = {hk_wants, hk_apply, h};
        CHECK(steer_ctx_add_hook(c, &hk) >= 0, "add hook");
    }
    CHECK_OK(steer_forward_tokens(c, tok, n, 0, 0));
    float *z = malloc((size_t)n * V * sizeof *z);
    for (int t = 0; t < n; t++) memcpy(z + (size_t)t * V, steer_ctx_logits(c, t), (size_t)V * sizeof *z);
    return z;
}

/* Σ log p(completion) of prompt ⊕ completion under hook h (NULL: none). The
 * completion's tokens are those after the prompt's own tokenization. */
static double completion_logprob(steer_ctx *c, const char *prompt, const char *completion, add_hook *h)
{
    const int V = steer_vocab_size(M);
    int *pt = NULL, np = 0, *ft = NULL, nf = 0;
    char *joined = malloc(strlen(prompt) + strlen(completion) + 1);
    strcpy(joined, prompt);
    strcat(joined, completion);
    CHECK_OK(steer_tokenize_alloc(M, prompt, 1, &pt, &np));
    CHECK_OK(steer_tokenize_alloc(M, joined, 1, &ft, &nf));
    int common = 0;
    while (common < np && common < nf && pt[common] == ft[common]) common++;
    float *z = run(c, ft, nf, h);
    double s = 0;
    for (int t = common; t < nf; t++) s += log_softmax_at(z + (size_t)(t - 1) * V, V, ft[t]);
    free(z);
    free(pt);
    free(ft);
    free(joined);
    return s;
}

/* ---- data */

static const char *const P[][3] = {
    {"Lily played in the park and felt", " happy.", " sad."},
    {"Tom got a new toy and was", " very happy and smiled.", " very sad and cried."},
    {"Sue saw a big dog and was", " glad.", " upset."},
    {"Ben lost his ball and was", " happy.", " sad."},
};
static const char *const NEUTRAL[] = {"Once upon a time, there was a little girl named Lily.",
                                      "The sun was shining and the birds were singing."};

static steer_tune_data *make_data(int swap)
{
    steer_tune_data *d = calloc(1, sizeof *d);
    d->n_pairs = 4;
    d->pairs = calloc(4, sizeof *d->pairs);
    for (int i = 0; i < 4; i++) {
        d->pairs[i].prompt = strdup(P[i][0]);
        d->pairs[i].positive = strdup(P[i][swap ? 2 : 1]);
        d->pairs[i].negative = strdup(P[i][swap ? 1 : 2]);
        d->pairs[i].line = i + 1;
    }
    d->n_neutral = 2;
    d->neutral = calloc(2, sizeof *d->neutral);
    for (int i = 0; i < 2; i++) d->neutral[i] = strdup(NEUTRAL[i]);
    return d;
}

/* A deterministic vector at resid_post of layers 1 and 3 and mlp_out of 2. */
static steer_vecset *make_vectors(float **row)
{
    const int d = steer_model_get_config(M)->d_model;
    float *v = malloc((size_t)d * sizeof *v);
    for (int j = 0; j < d; j++) v[j] = (float)sin(0.7 * j + 0.3) * 0.8f;
    steer_vecset *vs = NULL;
    CHECK_OK(steer_vecset_new(&vs));
    CHECK_OK(steer_vecset_set(vs, STEER_SITE_RESID_POST, 1, 0, d, v));
    CHECK_OK(steer_vecset_set(vs, STEER_SITE_RESID_POST, 3, 0, d, v));
    CHECK_OK(steer_vecset_set(vs, STEER_SITE_MLP_OUT, 2, 0, d, v));
    *row = v;
    return vs;
}

static const float SCALES[] = {0.0f, 0.5f, 2.0f};

static steer_tune_result *run_tune(const steer_tune_data *d, const steer_vecset *vs, int threads)
{
    const steer_vecset *vv[1] = {vs};
    const char *names[1] = {"v"};
    steer_tune_params p = steer_tune_default_params();
    p.vectors = vv;
    p.vector_names = names;
    p.n_vectors = 1;
    p.scales = SCALES;
    p.n_scales = 3;
    p.n_threads = threads;
    steer_tune_result *r = NULL;
    CHECK_OK(steer_tune_run(M, d, &p, &r));
    return r;
}

int main(void)
{
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &M));
    const int V = steer_vocab_size(M);
    float *v = NULL;
    steer_vecset *vs = make_vectors(&v);
    steer_tune_data *d = make_data(0), *ds = make_data(1);
    steer_tune_result *r1 = run_tune(d, vs, 1), *r2 = run_tune(d, vs, 2), *rs = run_tune(ds, vs, 2);
    CHECK(r1->n_cells == 9, "cells: %d, want 3 vectors x 3 scales", r1->n_cells);

    /* threads: bitwise */
    CHECK(memcmp(r1->cells, r2->cells, (size_t)r1->n_cells * sizeof *r1->cells) == 0 &&
              r1->base_ld_mean == r2->base_ld_mean && r1->base_ppl == r2->base_ppl,
          "1 and 2 threads differ");

    /* scale 0 = unsteered; swap flips signs */
    int k_ref = -1;
    for (int k = 0; k < r1->n_cells; k++) {
        const steer_tune_cell *c = &r1->cells[k];
        if (c->scale == 0.0f)
            CHECK(c->ld_mean == r1->base_ld_mean && c->kl_mean == 0.0 && c->ppl == r1->base_ppl,
                  "scale 0 at %s.%d: ld %.17g vs %.17g, kl %g, ppl %.17g vs %.17g", steer_site_name(c->site), c->layer,
                  c->ld_mean, r1->base_ld_mean, c->kl_mean, c->ppl, r1->base_ppl);
        CHECK(rs->cells[k].ld_mean == -c->ld_mean, "swapped data: ld %.17g vs %.17g", rs->cells[k].ld_mean, c->ld_mean);
        if (c->site == STEER_SITE_RESID_POST && c->layer == 3 && c->scale == 2.0f) k_ref = k;
    }
    CHECK(rs->base_ld_mean == -r1->base_ld_mean, "swapped data: unsteered ld");
    CHECK(k_ref >= 0, "cell resid_post.3 x 2 missing");

    /* the independent reference for resid_post.3 at α = 2 */
    steer_ctx *c = NULL;
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_threads = 1;
    CHECK_OK(steer_ctx_new(M, &cp, &c));
    add_hook h = {STEER_SITE_RESID_POST, 3, 2.0f, v};
    double ld_sum = 0, ld0_sum = 0;
    int pos = 0, moved = 0;
    double ld[4];
    for (int i = 0; i < 4; i++) {
        ld[i] = completion_logprob(c, P[i][0], P[i][1], &h) - completion_logprob(c, P[i][0], P[i][2], &h);
        double ld0 = completion_logprob(c, P[i][0], P[i][1], NULL) - completion_logprob(c, P[i][0], P[i][2], NULL);
        ld_sum += ld[i];
        ld0_sum += ld0;
        pos += ld[i] > 0;
        moved += ld[i] > 0 && ld0 <= 0;
    }
    double mean = ld_sum / 4, ss = 0;
    for (int i = 0; i < 4; i++) ss += (ld[i] - mean) * (ld[i] - mean);
    const steer_tune_cell *cr = &r1->cells[k_ref];
    printf("resid_post.3 x 2: ld %.9f (reference %.9f), se %.6f (%.6f), share > 0 %.2f (%d/4), moved %.2f (%d/4)\n",
           cr->ld_mean, mean, cr->ld_se, sqrt(ss / 3 / 4), cr->share_positive, pos, cr->share_moved, moved);
    CHECK(fabs(cr->ld_mean - mean) <= TOL_TUNE_REF * (1 + fabs(mean)), "ld mean %.17g vs reference %.17g", cr->ld_mean, mean);
    CHECK(fabs(r1->base_ld_mean - ld0_sum / 4) <= TOL_TUNE_REF * (1 + fabs(ld0_sum / 4)), "unsteered ld");
    CHECK(fabs(cr->ld_se - sqrt(ss / 3 / 4)) <= TOL_TUNE_REF * (1 + sqrt(ss / 12)), "ld se");
    CHECK(cr->share_positive == pos / 4.0 && cr->share_moved == moved / 4.0, "shares");

    /* KL and perplexity over the neutral texts */
    double kl = 0, nll = 0;
    long npos = 0, ntok = 0;
    for (int t = 0; t < 2; t++) {
        int *tok = NULL, n = 0;
        CHECK_OK(steer_tokenize_alloc(M, NEUTRAL[t], 1, &tok, &n));
        float *z0 = run(c, tok, n, NULL), *z1 = run(c, tok, n, &h);
        for (int q = 0; q < n; q++) kl += kl_ref(z1 + (size_t)q * V, z0 + (size_t)q * V, V);
        for (int q = 1; q < n; q++) nll -= log_softmax_at(z1 + (size_t)(q - 1) * V, V, tok[q]);
        npos += n;
        ntok += n - 1;
        free(z0);
        free(z1);
        free(tok);
    }
    printf("resid_post.3 x 2: KL %.9f (reference %.9f over %ld positions), ppl %.6f (reference %.6f)\n", cr->kl_mean,
           kl / npos, npos, cr->ppl, exp(nll / ntok));
    CHECK(cr->kl_positions == npos && cr->ppl_tokens == ntok, "position counts");
    CHECK(fabs(cr->kl_mean - kl / npos) <= TOL_TUNE_REF * (1 + kl / npos), "KL %.17g vs %.17g", cr->kl_mean, kl / npos);
    CHECK(fabs(cr->ppl - exp(nll / ntok)) <= TOL_TUNE_REF * exp(nll / ntok), "ppl");
    CHECK(cr->kl_mean > 0.01, "α = 2 should move the distribution: KL %g", cr->kl_mean);

    /* recommendation */
    int b0 = steer_tune_recommend(r1, 0.0), binf = steer_tune_recommend(r1, 1e9), best = 0;
    for (int k = 1; k < r1->n_cells; k++) best = r1->cells[k].ld_mean > r1->cells[best].ld_mean ? k : best;
    CHECK(b0 >= 0 && r1->cells[b0].scale == 0.0f, "budget 0 must recommend a scale-0 cell, got %d", b0);
    CHECK(binf == best, "an unlimited budget recommends the best cell (%d), got %d", best, binf);

    /* files */
    char dir[] = "/tmp/test_tune_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    const char *names[1] = {"v"};
    steer_tune_info info = {.model = "stories260K", .command = "test", .vector_names = names};
    CHECK_OK(steer_tune_write(r1, &info, 0.5, dir));
    char path[512];
    snprintf(path, sizeof path, "%s/tune.csv", dir);
    char *csv = tu_read_file(path, NULL);
    int lines = 0;
    for (const char *q = csv; q && *q; q++) lines += *q == '\n';
    CHECK(lines == 1 + r1->n_cells, "tune.csv: %d lines", lines);
    free(csv);
    const char *files[] = {"tune.csv", "tune_summary.json", "tune_logit_diff.png", "tune_logit_diff.svg", "tune_kl.png",
                           "tune_kl.svg", "tune_ppl.png", "tune_ppl.svg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        CHECK(access(path, R_OK) == 0, "%s not written", files[i]);
        unlink(path);
    }
    rmdir(dir);

    /* bad input */
    steer_tune_data *bad = NULL;
    char f[] = "/tmp/test_tune_data_XXXXXX";
    int fd = mkstemp(f);
    const char *rows = "{\"prompt\": \"a\", \"positive\": \" b\", \"negative\": \" c\"}\n{\"prompt\": \"a\", \"positive\": \" b\"}\n";
    CHECK(write(fd, rows, strlen(rows)) == (ssize_t)strlen(rows), "write");
    close(fd);
    CHECK(steer_tune_data_load(f, 0, NULL, NULL, &bad) == STEER_EFORMAT && strstr(steer_last_error(), ":2: missing"),
          "missing field: %s", steer_last_error());
    printf("missing field: %s\n", steer_last_error());
    CHECK_OK(steer_tune_data_load(f, 1, NULL, NULL, &bad)); /* the first item alone is fine */
    CHECK(bad->n_pairs == 1, "n_max 1");
    steer_tune_data_free(bad);
    unlink(f);
    CHECK(steer_tune_data_load("/nonexistent/ab.jsonl", 0, NULL, NULL, &bad) == STEER_EIO, "missing file");
    const steer_vecset *vv[1] = {vs};
    steer_tune_params p = steer_tune_default_params();
    p.vectors = vv;
    p.n_vectors = 1;
    float nan_scale[1] = {NAN};
    p.scales = nan_scale;
    p.n_scales = 1;
    steer_tune_result *rr = NULL;
    CHECK(steer_tune_run(M, d, &p, &rr) == STEER_EARG, "NaN scale accepted");
    unsigned char none[STEER_SITE_COUNT] = {0};
    p.scales = SCALES;
    p.site_mask = none;
    CHECK(steer_tune_run(M, d, &p, &rr) == STEER_EARG && strstr(steer_last_error(), "no vector"),
          "empty selection: %s", steer_last_error());

    steer_ctx_free(c);
    steer_tune_result_free(r1);
    steer_tune_result_free(r2);
    steer_tune_result_free(rs);
    steer_tune_data_free(d);
    steer_tune_data_free(ds);
    steer_vecset_free(vs);
    free(v);
    steer_model_free(M);
    return tu_finish("test_tune");
}

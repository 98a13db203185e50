/* test_icl.c — in-context learning as attn_out steering (SPEC E3, src/icl.c):
 *   (a) exact equivalence: the query alone with attn_out patched at every
 *       layer from the ICL run has the ICL run's logits at every query
 *       position, on every bundled model and the tiny HF fixtures (llama,
 *       gemma, gemma2 with sliding windows, qwen2) — and a patch that leaves
 *       out one layer does not (so the check can fail);
 *   the library's numbers against independent computations with the public
 *   forward/capture API: Δ_A (b) and KL(zero-shot ‖ ICL) at the answer rows;
 *   (c) a compressed context written, reloaded and applied gives the same
 *       logits bit for bit; α = 0 is the zero-shot run;
 *   (d) learned compression lowers its training objective, and the training
 *       graph's objective matches the inference path's KL;
 *   bad input: a context longer than the window, a query that no longer fits,
 *   vectors of another model, an empty context, a missing completion. */
#define _GNU_SOURCE
#include "test_util.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define WG_MODEL STEER_MODELS_DIR "/stories260K-winogrande/stories260K-winogrande.bin"
#define DEV "winogrande:" STEER_TESTDATA_DIR "/winogrande/dev.jsonl"
#define TRAIN "winogrande:" STEER_TESTDATA_DIR "/winogrande/train_m.jsonl"

static char tmpdir[256];

static steer_model *load(const char *path)
{
    steer_model *m = NULL;
    CHECK_OK(steer_model_load(path, NULL, &m));
    return m;
}

/* One demonstration from train_m (seed 0) as the context text; caller frees. */
static char *one_shot(void)
{
    steer_dataset *pool = NULL;
    steer_data_params dp = steer_data_default_params();
    dp.n_max = 200;
    CHECK_OK(steer_data_load(TRAIN, &dp, &pool));
    steer_fewshot_params fp = steer_fewshot_default_params();
    fp.k = 1;
    char *ctx = NULL;
    CHECK_OK(steer_data_fewshot(pool, NULL, &fp, &ctx, NULL));
    steer_data_free(pool);
    return ctx;
}

/* ---------------------------------------------------------------- (a) */

static void test_exact(const char *name, const char *path, const char *context, const char *prompt,
                       const char *completion)
{
    steer_model *m = load(path);
    const int L = steer_model_get_config(m)->n_layer;
    steer_icl *e = NULL;
    CHECK_OK(steer_icl_new_text(m, context, 1, &e));
    CHECK_OK(steer_icl_add_query(e, "q", prompt, completion, NULL, 0, -1,
                                 completion ? STEER_ICL_SCORE_ANSWER : STEER_ICL_SCORE_ALL));
    double kl = -1, mx = -1, kl0 = -1;
    CHECK_OK(steer_icl_patch(e, 0, NULL, &kl, &mx));
    CHECK_OK(steer_icl_kl(e, 0, NULL, 1.0f, &kl0, NULL));
    char what[256];
    snprintf(what, sizeof what, "%s: every layer patched, max |logit - ICL| (%d layers, |C| %d)", name, L,
             steer_icl_context_len(e));
    printf("%-72s %.3e (tol %.0e); KL %.2e vs zero-shot %.3e\n", what, mx, TOL_ICL_EXACT, kl, kl0);
    CHECK(mx <= TOL_ICL_EXACT, "%s: %.3e", name, mx);
    CHECK(kl <= TOL_ICL_EXACT, "%s: KL(patched || ICL) %.3e", name, kl);
    CHECK(kl0 > 1e-6, "%s: the context must change the query's distributions (KL %.3e)", name, kl0);
    /* Leaving out one layer (the last) must show: the check can fail. */
    unsigned char *mask = malloc((size_t)L);
    memset(mask, 1, (size_t)L);
    mask[L - 1] = 0;
    double mx2 = 0;
    CHECK_OK(steer_icl_patch(e, 0, mask, NULL, &mx2));
    printf("%-72s %.3e (must exceed %.0e)\n", "  same with the last layer left out", mx2, 100 * TOL_ICL_EXACT);
    CHECK(mx2 > 100 * TOL_ICL_EXACT, "%s: leaving a layer out changed nothing (%.3e)", name, mx2);
    free(mask);
    steer_icl_free(e);
    steer_model_free(m);
}

/* ---------------------------------------------------------------- independent checks */

/* Δ_A and KL(zero-shot ‖ ICL) recomputed with captures and plain forwards. */
static void test_against_public_api(void)
{
    steer_model *m = load(WG_MODEL);
    const steer_model_config *cfg = steer_model_get_config(m);
    const int L = cfg->n_layer, d = cfg->d_model, V = cfg->n_vocab;
    char *ctx_text = one_shot();
    steer_dataset *dev = NULL;
    steer_data_params dp = steer_data_default_params();
    dp.n_max = 3;
    CHECK_OK(steer_data_load(DEV, &dp, &dev));
    steer_icl *e = NULL;
    CHECK_OK(steer_icl_new_text(m, ctx_text, 1, &e));
    CHECK_OK(steer_icl_add_dataset(e, dev, 0, 3, STEER_ICL_SCORE_ANSWER));
    CHECK(steer_icl_n_queries(e) == 3, "3 queries, got %d", steer_icl_n_queries(e));

    int *ctx = malloc(4096 * sizeof *ctx), nc = 0;
    CHECK_OK(steer_tokenize(m, ctx_text, 1, ctx, 4096, &nc));
    CHECK(nc == steer_icl_context_len(e), "context length %d vs %d", nc, steer_icl_context_len(e));
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_threads = 1;
    steer_ctx *c = NULL;
    CHECK_OK(steer_ctx_new(m, &cp, &c));
    double *sum = calloc((size_t)L * d, sizeof *sum);
    long cnt = 0;
    double max_kl_diff = 0;
    float *zl = NULL;
    for (int q = 0; q < 3; q++) {
        int n = 0;
        const int *qt = steer_icl_query_tokens(e, q, &n);
        CHECK(qt && qt[0] == steer_token_bos(m), "query starts with BOS");
        int *seq = malloc((size_t)(nc + n) * sizeof *seq);
        memcpy(seq, ctx, (size_t)nc * sizeof *seq);
        memcpy(seq + nc, qt + 1, (size_t)(n - 1) * sizeof *seq);
        const int ni = nc + n - 1;
        /* ICL run */
        steer_ctx_clear_hooks(c);
        for (int l = 0; l < L; l++) CHECK(steer_ctx_add_capture(c, STEER_SITE_ATTN_OUT, l, 0) >= 0, "capture");
        steer_ctx_clear(c, -1);
        CHECK_OK(steer_forward_tokens(c, seq, ni, 0, 0));
        float *icl_attn = malloc((size_t)L * ni * d * sizeof(float)), *icl_log = malloc((size_t)ni * V * sizeof(float));
        for (int l = 0; l < L; l++)
            memcpy(icl_attn + (size_t)l * ni * d, steer_ctx_captured(c, STEER_SITE_ATTN_OUT, l, NULL),
                   (size_t)ni * d * sizeof(float));
        for (int i = 0; i < ni; i++) memcpy(icl_log + (size_t)i * V, steer_ctx_logits(c, i), (size_t)V * sizeof(float));
        /* zero-shot run */
        steer_ctx_clear_hooks(c);
        for (int l = 0; l < L; l++) CHECK(steer_ctx_add_capture(c, STEER_SITE_ATTN_OUT, l, 0) >= 0, "capture");
        steer_ctx_clear(c, -1);
        CHECK_OK(steer_forward_tokens(c, qt, n, 0, 0));
        for (int l = 0; l < L; l++) {
            const float *z = steer_ctx_captured(c, STEER_SITE_ATTN_OUT, l, NULL);
            for (int j = 1; j < n; j++)
                for (int i = 0; i < d; i++)
                    sum[(size_t)l * d + i] += (double)icl_attn[((size_t)l * ni + nc + j - 1) * d + i] - z[(size_t)j * d + i];
        }
        cnt += n - 1;
        /* KL(zero-shot ‖ ICL) at the rows predicting the completion */
        const int R = steer_icl_n_scored(e, q);
        double ref = 0;
        for (int r = n - 1 - R; r < n - 1; r++)
            ref += steer_kl_logits(steer_ctx_logits(c, r), icl_log + (size_t)(nc + r - 1) * V, V);
        ref /= R;
        double got = 0;
        CHECK_OK(steer_icl_kl(e, q, NULL, 1.0f, &got, NULL));
        if (fabs(got - ref) > max_kl_diff) max_kl_diff = fabs(got - ref);
        CHECK(ref > 0, "query %d: KL(zero-shot || ICL) %.3e", q, ref);
        free(seq);
        free(icl_attn);
        free(icl_log);
    }
    printf("%-72s %.3e (tol %.0e)\n", "KL(zero-shot || ICL): library vs plain forwards", max_kl_diff, TOL_ICL_REPRO);
    CHECK(max_kl_diff <= TOL_ICL_REPRO, "KL differs by %.3e", max_kl_diff);
    steer_vecset *vs = NULL;
    CHECK_OK(steer_icl_mean_delta(e, &vs));
    CHECK(steer_vecset_count(vs) == L, "one vector per layer");
    CHECK(strcmp(steer_vecset_meta(vs, "method"), "icl-mean") == 0, "method metadata");
    float *ref = malloc((size_t)d * sizeof *ref);
    double md = 0, nrm = 0;
    for (int l = 0; l < L; l++) {
        const steer_vec *v = steer_vecset_find(vs, STEER_SITE_ATTN_OUT, l);
        CHECK(v && v->width == d && v->n_rows == 0, "attn_out.%d [d]", l);
        for (int i = 0; i < d; i++) ref[i] = (float)(sum[(size_t)l * d + i] / cnt);
        double x = tu_max_abs_diff(v->data, ref, (size_t)d);
        if (x > md) md = x;
        nrm += steer_vec_norm(ref, d);
    }
    printf("%-72s %.3e (tol %.0e; sum of norms %.3f)\n", "mean Δ_A: library vs captures", md, TOL_ICL_REPRO, nrm);
    CHECK(md <= TOL_ICL_REPRO, "Δ_A differs by %.3e", md);
    CHECK(nrm > 0.1, "Δ_A is not trivially zero");

    /* (c) α = 0 is the zero-shot run; the written file reloads to the same logits. */
    double k0 = 0, ka = 0, k1 = 0;
    CHECK_OK(steer_icl_kl(e, 0, NULL, 1.0f, &k0, NULL));
    CHECK_OK(steer_icl_kl(e, 0, vs, 0.0f, &ka, NULL));
    CHECK_OK(steer_icl_kl(e, 0, vs, 1.0f, &k1, NULL));
    CHECK(ka == k0, "alpha 0: %.17g vs zero-shot %.17g", ka, k0);
    CHECK(k1 != k0, "alpha 1 changes the KL (%.6g vs %.6g)", k1, k0);
    char path[512];
    snprintf(path, sizeof path, "%s/compressed.safetensors", tmpdir);
    CHECK_OK(steer_vecset_save(vs, path));
    steer_vecset *back = NULL;
    CHECK_OK(steer_vecset_load(path, &back));
    CHECK_OK(steer_vecset_check_model(back, m, path));
    int n = 0;
    const int *qt = steer_icl_query_tokens(e, 0, &n);
    float *la = malloc((size_t)n * V * sizeof *la), *lb = malloc((size_t)n * V * sizeof *lb);
    zl = malloc((size_t)n * V * sizeof *zl);
    for (int pass = 0; pass < 3; pass++) {
        steer_ctx_clear_hooks(c);
        steer_ctx_clear(c, -1);
        if (pass < 2) CHECK_OK(steer_vecset_apply(pass == 0 ? vs : back, c, 1.0f));
        CHECK_OK(steer_forward_tokens(c, qt, n, 0, 0));
        float *dst = pass == 0 ? la : pass == 1 ? lb : zl;
        for (int i = 0; i < n; i++) memcpy(dst + (size_t)i * V, steer_ctx_logits(c, i), (size_t)V * sizeof(float));
    }
    double rel = tu_max_abs_diff(la, lb, (size_t)n * V), moved = tu_max_abs_diff(la, zl, (size_t)n * V);
    printf("%-72s %.3e (tol %.0e); vs no vectors %.3e\n", "compressed file reloaded: logits, max |diff|", rel,
           TOL_ICL_RELOAD, moved);
    CHECK(rel <= TOL_ICL_RELOAD, "reloaded logits differ by %.3e", rel);
    CHECK(moved > 1e-3, "the vectors change the logits (%.3e)", moved);
    printf("%-72s %zu vs %zu bytes\n", "KV cache of the context vs L·d floats", steer_icl_kv_bytes(e),
           steer_icl_vec_bytes(e));
    const steer_model_config *k = cfg;
    CHECK(steer_icl_kv_bytes(e) == (size_t)2 * L * (nc - 1) * k->n_kv_head * k->head_dim * 4, "kv bytes");
    CHECK(steer_icl_vec_bytes(e) == (size_t)L * d * 4, "vec bytes");

    /* bad input: vectors of another model */
    steer_vecset *wide = NULL;
    CHECK_OK(steer_vecset_new(&wide));
    float *w = calloc(128, sizeof *w);
    CHECK_OK(steer_vecset_set(wide, STEER_SITE_ATTN_OUT, 0, 0, 128, w));
    int rc = steer_icl_kl(e, 0, wide, 1.0f, &k1, NULL);
    printf("vectors of another model -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "wide"), "vectors of another model are an error");
    steer_icl_learn_params lp = steer_icl_learn_default_params();
    rc = steer_icl_learn(e, wide, &lp, NULL);
    CHECK(rc == STEER_EARG, "learn from vectors of another model is an error");
    free(w);
    steer_vecset_free(wide);

    free(la);
    free(lb);
    free(zl);
    free(ref);
    free(sum);
    free(ctx);
    steer_vecset_free(vs);
    steer_vecset_free(back);
    steer_ctx_free(c);
    steer_icl_free(e);
    steer_data_free(dev);
    free(ctx_text);
    steer_model_free(m);
}

/* ---------------------------------------------------------------- (d) */

static void test_learn(void)
{
    steer_model *m = load(WG_MODEL);
    char *ctx_text = one_shot();
    steer_dataset *dev = NULL;
    steer_data_params dp = steer_data_default_params();
    dp.n_max = 8;
    CHECK_OK(steer_data_load(DEV, &dp, &dev));
    steer_icl *e = NULL;
    CHECK_OK(steer_icl_new_text(m, ctx_text, 1, &e));
    CHECK_OK(steer_icl_add_dataset(e, dev, 0, -1, STEER_ICL_SCORE_ANSWER));
    steer_vecset *vs = NULL;
    CHECK_OK(steer_icl_mean_delta(e, &vs));
    /* inference-path objective: Σ rows KL / rows with the mean Δ */
    double s = 0;
    long rows = 0;
    for (int q = 0; q < steer_icl_n_queries(e); q++) {
        int R = steer_icl_n_scored(e, q);
        double *kr = malloc((size_t)R * sizeof *kr), kq;
        CHECK_OK(steer_icl_kl(e, q, vs, 1.0f, &kq, kr));
        for (int r = 0; r < R; r++) s += kr[r];
        rows += R;
        free(kr);
    }
    double inf_obj = s / rows;
    steer_icl_learn_params lp = steer_icl_learn_default_params();
    lp.steps = 0;
    steer_icl_learn_result r0;
    CHECK_OK(steer_icl_learn(e, vs, &lp, &r0));
    double rd = fabs(r0.loss_before - inf_obj) / inf_obj;
    printf("%-72s %.6f vs %.6f, rel %.2e (tol %.0e)\n", "objective: training graph vs inference KL", r0.loss_before,
           inf_obj, rd, TOL_ICL_GRAPH);
    CHECK(rd <= TOL_ICL_GRAPH, "training graph objective differs by %.3e", rd);
    CHECK(r0.loss_after == r0.loss_before, "0 steps leave the objective (%.17g vs %.17g)", r0.loss_after, r0.loss_before);
    lp.steps = 20;
    lp.lr = 3e-2;
    lp.batch = 4;
    steer_icl_learn_result r1;
    CHECK_OK(steer_icl_learn(e, vs, &lp, &r1));
    printf("%-72s %.5f -> %.5f (%d updates)\n", "learned compression: training objective", r1.loss_before,
           r1.loss_after, r1.steps);
    CHECK(r1.steps == 20, "20 updates");
    CHECK(r1.loss_after < 0.9 * r1.loss_before, "objective %.5f -> %.5f: not lowered by 10%%", r1.loss_before,
          r1.loss_after);
    /* the trained vectors went back into vs: the inference path agrees */
    s = 0;
    for (int q = 0; q < steer_icl_n_queries(e); q++) {
        int R = steer_icl_n_scored(e, q);
        double *kr = malloc((size_t)R * sizeof *kr), kq;
        CHECK_OK(steer_icl_kl(e, q, vs, 1.0f, &kq, kr));
        for (int r = 0; r < R; r++) s += kr[r];
        free(kr);
    }
    rd = fabs(s / rows - r1.loss_after) / r1.loss_after;
    printf("%-72s %.6f vs %.6f, rel %.2e\n", "  after training: inference KL vs graph objective", s / rows, r1.loss_after,
           rd);
    CHECK(rd <= TOL_ICL_GRAPH, "trained vectors: inference %.6f vs graph %.6f", s / rows, r1.loss_after);
    steer_vecset_free(vs);
    steer_icl_free(e);
    steer_data_free(dev);
    free(ctx_text);
    steer_model_free(m);
}

/* ---------------------------------------------------------------- bad input */

static void test_bad_input(void)
{
    steer_model *m = load(WG_MODEL);
    char *big = malloc(8000);
    big[0] = 0;
    for (int i = 0; i < 200; i++) strcat(big, "the cat sat. ");
    steer_icl *e = NULL;
    int rc = steer_icl_new_text(m, big, 1, &e);
    printf("context longer than the window -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_ECONTEXT && strstr(steer_last_error(), "context window holds 512"), "long context");
    CHECK(e == NULL, "no object on failure");
    big[600] = 0; /* ~280 tokens: fits, but not with a query as long */
    CHECK_OK(steer_icl_new_text(m, big, 1, &e));
    rc = steer_icl_add_query(e, "long", big, " end", NULL, 0, -1, STEER_ICL_SCORE_ANSWER);
    printf("query that does not fit after the context -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_ECONTEXT && strstr(steer_last_error(), "query long"), "long query");
    rc = steer_icl_add_query(e, "nocomp", "Once upon a time", NULL, NULL, 0, -1, STEER_ICL_SCORE_ANSWER);
    printf("answer positions without a completion -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "completion"), "missing completion");
    steer_vecset *vs = NULL;
    rc = steer_icl_mean_delta(e, &vs);
    printf("no queries -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "no queries"), "empty query set");
    CHECK(steer_icl_n_queries(e) == 0, "failed queries are not kept");
    steer_icl_free(e);
    e = NULL;
    rc = steer_icl_new_text(m, "", 1, &e);
    printf("empty context -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "empty"), "empty context");
    free(big);
    steer_model_free(m);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_icl_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    char *shot = one_shot();
    steer_dataset *dev = NULL;
    steer_data_params dp = steer_data_default_params();
    dp.n_max = 1;
    CHECK_OK(steer_data_load(DEV, &dp, &dev));
    const steer_data_item *q = steer_data_at(dev, 0);
    test_exact("stories260K-winogrande", WG_MODEL, shot, q->prompt, q->completion);
    test_exact("stories260K", STEER_MODELS_DIR "/stories260K/stories260K.bin",
               "Lily had a red ball. She played with it in the park every day.", "One day, Lily",
               " lost her red ball.");
    static const char *const fixtures[] = {"llama", "gemma", "gemma2", "qwen2"};
    for (int i = 0; i < 4; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s/hf", STEER_TESTDATA_DIR, fixtures[i]);
        /* random weights: any text; the context is longer than gemma2's
           sliding window (8) so the windowed layers see only part of it */
        test_exact(fixtures[i], path, "abc def ghi jkl mno pqr stu vwx", "yz ab cd", NULL);
    }
    steer_data_free(dev);
    free(shot);
    test_against_public_api();
    test_learn();
    test_bad_input();
    char path[600];
    snprintf(path, sizeof path, "%s/compressed.safetensors", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return tu_finish("test_icl");
}

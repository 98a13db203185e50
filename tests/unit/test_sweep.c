/*
 * test_sweep.c — the oracle ΔKL sweep (SPEC §4 E1, src/sweep.c):
 *   - the optimised engine (prefix reuse, α batch, pruned last layer, B's
 *     cached prompt for --positions continuation) equals the naive path (one
 *     full forward per (site, layer, α)) on every cell, for every position
 *     mode and both continuations, on stories260K vs its Winogrande fine-tune
 *     and on random gemma2 / gemma3 / qwen2 pairs (sandwich norms, soft-caps,
 *     sliding windows, q/k norms, biases);
 *   - SPEC E1 invariants: α = 0 gives ΔKL = 0 exactly; F = B gives 0;
 *     steering attn_out equals steering resid_mid (same δ); resid_post at
 *     layer l with α = 1 makes the residual after l equal F's;
 *   - 1 vs 2 threads give identical numbers;
 *   - the mean oracle δ (--save-vectors) equals the mean of captured F − B;
 *   - files: sharded + merged = one run byte for byte; read back = written;
 *     an interrupted run resumed from the journal = one run; a torn journal
 *     line is dropped; a journal of other settings is refused;
 *   - bad input: models of different architectures or tokenizers, bad params.
 */
#include "test_util.h"

#include <sys/stat.h>
#include <unistd.h>

static steer_model *B, *F;
static char tmpdir[] = "/tmp/test_sweep_XXXXXX";

/* ---------------------------------------------------------------- collecting results */

#define MAX_ITEMS 8
typedef struct {
    int n_cells, K, count;
    int seen[MAX_ITEMS], n_tokens[MAX_ITEMS], n_prompt[MAX_ITEMS];
    double *kl_base; /* [MAX_ITEMS, K]          */
    double *kl;      /* [MAX_ITEMS, cells, K]   */
    int stop_after;  /* > 0: return 1 after this many */
} results;

static int collect(void *ud, const steer_sweep_item *it)
{
    results *r = ud;
    if (it->item >= MAX_ITEMS) return -1;
    r->seen[it->item]++;
    r->n_tokens[it->item] = it->n_tokens;
    r->n_prompt[it->item] = it->n_prompt;
    memcpy(r->kl_base + (size_t)it->item * r->K, it->kl_base, (size_t)r->K * sizeof(double));
    memcpy(r->kl + (size_t)it->item * r->n_cells * r->K, it->kl_steered, (size_t)r->n_cells * r->K * sizeof(double));
    r->count++;
    return r->stop_after > 0 && r->count >= r->stop_after ? 1 : 0;
}

static results *run(steer_model *b, steer_model *f, const steer_dataset *d, steer_sweep_params p)
{
    results *r = calloc(1, sizeof *r);
    CHECK_OK(steer_sweep_check(b, f, &p));
    r->K = p.tokens;
    r->n_cells = p.n_sites * p.n_layers * p.n_alphas;
    r->kl_base = malloc(sizeof(double) * MAX_ITEMS * r->K);
    r->kl = malloc(sizeof(double) * MAX_ITEMS * r->n_cells * r->K);
    p.on_item = collect;
    p.ud = r;
    CHECK_OK(steer_sweep_run(b, f, d, &p));
    return r;
}

static void results_free(results *r)
{
    free(r->kl_base);
    free(r->kl);
    free(r);
}

/* max |a − b| over every cell of every item's scored tokens; -1 if the
 * structure differs; NaN-safe (NaN vs number counts as infinite). */
static double max_diff(const results *a, const results *b, int n_items, int *bitwise)
{
    double m = 0;
    *bitwise = 1;
    for (int i = 0; i < n_items; i++) {
        if (a->seen[i] != 1 || b->seen[i] != 1 || a->n_tokens[i] != b->n_tokens[i]) return -1;
        for (int k = 0; k < a->n_tokens[i]; k++) {
            double x = a->kl_base[i * a->K + k], y = b->kl_base[i * b->K + k];
            if (memcmp(&x, &y, sizeof x)) *bitwise = 0;
            if (fabs(x - y) > m || x != x || y != y) m = (x != x || y != y) ? INFINITY : fabs(x - y);
        }
        for (int c = 0; c < a->n_cells; c++)
            for (int k = 0; k < a->n_tokens[i]; k++) {
                size_t at = ((size_t)i * a->n_cells + c) * a->K + k;
                double x = a->kl[at], y = b->kl[at], dd = fabs(x - y);
                if (memcmp(&x, &y, sizeof x)) *bitwise = 0;
                if (x != x || y != y) dd = INFINITY;
                if (dd > m) m = dd;
            }
    }
    return m;
}

/* Largest |ΔKL| over all cells (to show a comparison is not of zeros). */
static double max_abs_dkl(const results *r, int n_items)
{
    double m = 0;
    for (int i = 0; i < n_items; i++)
        for (int c = 0; c < r->n_cells; c++)
            for (int k = 0; k < r->n_tokens[i]; k++) {
                double v = fabs(r->kl[((size_t)i * r->n_cells + c) * r->K + k] - r->kl_base[i * r->K + k]);
                if (v > m) m = v;
            }
    return m;
}

/* ---------------------------------------------------------------- data */

static steer_dataset *short_data(void)
{
    static const char *prompts[][2] = {
        {"Once upon a time, there was a", " little girl named Lily."},
        {"The cat sat on the", " mat and"},
        {"Tom and Sue went to the park. Tom said", " hello."},
    };
    steer_dataset *d;
    CHECK_OK(steer_data_new(&d));
    for (int i = 0; i < 3; i++) CHECK_OK(steer_data_add(d, NULL, prompts[i][0], prompts[i][1], -1));
    return d;
}

static steer_sweep_params wide_params(void)
{
    steer_sweep_params p = steer_sweep_default_params();
    static const steer_site s[] = {STEER_SITE_MLP_IN,    STEER_SITE_ATTN_OUT, STEER_SITE_MLP_OUT,
                                   STEER_SITE_RESID_POST, STEER_SITE_RESID_PRE, STEER_SITE_RESID_MID,
                                   STEER_SITE_MLP_ACT};
    p.n_sites = 7;
    memcpy(p.sites, s, sizeof s);
    p.n_alphas = 3;
    p.alphas[0] = 0.0f; p.alphas[1] = 1.0f; p.alphas[2] = -0.5f;
    p.tokens = 4;
    p.n_threads = 2;
    return p;
}

/* ---------------------------------------------------------------- engine vs naive */

static void engine_vs_naive(steer_model *b, steer_model *f, const steer_dataset *d, steer_sweep_params p,
                            const char *what)
{
    results *o = run(b, f, d, p);
    p.naive = 1;
    results *n = run(b, f, d, p);
    const int ni = steer_data_count(d);
    int bitwise;
    double md = max_diff(o, n, ni, &bitwise);
    char label[160];
    snprintf(label, sizeof label, "engine vs naive: %s", what);
    printf("%-64s max|diff| = %.3e (tol %.0e), bitwise %d, max|dKL| %.3g\n", label, md, TOL_SWEEP_NAIVE, bitwise,
           max_abs_dkl(n, ni));
    CHECK(md >= 0 && md <= TOL_SWEEP_NAIVE, "%s: max diff %g", label, md);
    CHECK(max_abs_dkl(n, ni) > 1e-3, "%s: the steering moved nothing (a vacuous comparison)", label);
    /* α = 0 → ΔKL = 0 exactly, on both paths */
    int zero_ok = 1;
    for (int i = 0; i < ni; i++)
        for (int si = 0; si < p.n_sites; si++)
            for (int li = 0; li < p.n_layers; li++)
                for (int a = 0; a < p.n_alphas; a++) {
                    if (p.alphas[a] != 0.0f) continue;
                    for (int k = 0; k < n->n_tokens[i]; k++) {
                        size_t at = (((size_t)i * p.n_sites + si) * p.n_layers + li) * p.n_alphas + a;
                        at = at * p.tokens + k;
                        zero_ok &= n->kl[at] - n->kl_base[i * p.tokens + k] == 0.0;
                        zero_ok &= o->kl[at] - o->kl_base[i * p.tokens + k] == 0.0;
                    }
                }
    CHECK(zero_ok, "%s: alpha = 0 gave a non-zero dKL", label);
    /* --positions continuation: token 1 (predicted from the prompt's last position) never moves */
    if (p.positions == STEER_POS_GENERATED) {
        int t1 = 1;
        for (int i = 0; i < ni; i++)
            for (int c = 0; c < o->n_cells; c++)
                t1 &= o->kl[((size_t)i * o->n_cells + c) * p.tokens] == o->kl_base[i * p.tokens];
        CHECK(t1, "%s: token 1 moved under --positions continuation", label);
    }
    results_free(o);
    results_free(n);
}

static void test_engine_vs_naive_stories(void)
{
    steer_dataset *d = short_data();
    steer_sweep_params p = wide_params();
    p.n_layers = 0;
    engine_vs_naive(B, F, d, p, "stories, ft continuation, all positions");
    p.positions = STEER_POS_PROMPT;
    engine_vs_naive(B, F, d, p, "stories, ft continuation, prompt positions");
    p.positions = STEER_POS_GENERATED;
    engine_vs_naive(B, F, d, p, "stories, ft continuation, continuation positions");
    p.positions = STEER_POS_ALL;
    p.continuation = STEER_SWEEP_CONT_GOLD;
    p.tokens = 6; /* longer than " mat and" (3 tokens): that item scores fewer */
    engine_vs_naive(B, F, d, p, "stories, gold continuation, all positions");
    steer_data_free(d);

}

static void make_pair(steer_arch arch, const char *name, steer_model **b, steer_model **f)
{
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/%s-a", tmpdir, name);
    snprintf(pb, sizeof pb, "%s/%s-b", tmpdir, name);
    steer_make_model_params mp = steer_make_model_default_params(arch);
    mp.n_layer = 3;
    mp.n_ctx = 64;
    if (arch == STEER_ARCH_GEMMA2 || arch == STEER_ARCH_GEMMA3) mp.sliding_window = 6; /* shorter than the items */
    mp.seed = 11;
    CHECK_OK(steer_make_model(&mp, pa));
    mp.seed = 12;
    CHECK_OK(steer_make_model(&mp, pb));
    CHECK_OK(steer_model_load(pa, NULL, b));
    CHECK_OK(steer_model_load(pb, NULL, f));
}

static void test_engine_vs_naive_archs(void)
{
    static const struct {
        steer_arch arch;
        const char *name;
    } archs[] = {{STEER_ARCH_GEMMA2, "gemma2"}, {STEER_ARCH_GEMMA3, "gemma3"}, {STEER_ARCH_QWEN2, "qwen2"}};
    steer_dataset *d;
    CHECK_OK(steer_data_new(&d));
    CHECK_OK(steer_data_add(d, NULL, "abc def ghi jkl mno", " pq rs", -1));
    CHECK_OK(steer_data_add(d, NULL, "zz yy xx ww vv uu tt", " ss", -1));
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
        steer_model *b, *f;
        make_pair(archs[i].arch, archs[i].name, &b, &f);
        steer_sweep_params p = wide_params();
        p.sites[6] = STEER_SITE_MLP_GATE;
        p.tokens = 3;
        char what[64];
        snprintf(what, sizeof what, "random %s pair, all positions", archs[i].name);
        engine_vs_naive(b, f, d, p, what);
        p.positions = STEER_POS_GENERATED;
        snprintf(what, sizeof what, "random %s pair, continuation positions", archs[i].name);
        engine_vs_naive(b, f, d, p, what);
        steer_model_free(b);
        steer_model_free(f);
    }
    steer_data_free(d);
}

/* ---------------------------------------------------------------- invariants */

static void test_f_equals_b(void)
{
    steer_dataset *d = short_data();
    steer_sweep_params p = wide_params();
    results *r = run(B, B, d, p);
    double m = 0, mb = 0;
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < r->n_tokens[i]; k++) mb = fmax(mb, fabs(r->kl_base[i * r->K + k]));
    }
    m = max_abs_dkl(r, 3);
    printf("F = B: max |KL(P_B||P_F)| = %g, max |dKL| = %g (both must be exactly 0)\n", mb, m);
    CHECK(mb == 0.0 && m == 0.0, "F = B gave non-zero numbers");
    CHECK(r->n_tokens[0] == 4, "F = B: %d tokens scored", r->n_tokens[0]);
    results_free(r);
    steer_data_free(d);
}

static void test_attn_out_equals_resid_mid(void)
{
    steer_dataset *d = short_data();
    steer_sweep_params p = steer_sweep_default_params();
    p.n_sites = 2;
    p.sites[0] = STEER_SITE_ATTN_OUT;
    p.sites[1] = STEER_SITE_RESID_MID;
    p.delta_site = STEER_SITE_ATTN_OUT; /* the same δ at both sites */
    p.n_threads = 2;
    results *r = run(B, F, d, p);
    const int per_site = r->n_cells / 2 * r->K;
    double m = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < per_site; j++) {
            const double *kl = r->kl + (size_t)i * r->n_cells * r->K;
            if (j % r->K >= r->n_tokens[i]) continue;
            m = fmax(m, fabs(kl[j] - kl[per_site + j]));
        }
    printf("attn_out vs resid_mid with the attn_out delta: max |KL diff| = %.3e (tol %.0e), max |dKL| %.3g\n", m,
           TOL_SWEEP_SITE_EQUIV, max_abs_dkl(r, 3));
    CHECK(m <= TOL_SWEEP_SITE_EQUIV, "attn_out and resid_mid differ by %g", m);
    CHECK(max_abs_dkl(r, 3) > 0.1, "vacuous: nothing moved");
    /* and with each site's own δ they are different experiments */
    p.delta_site = -1;
    results *r2 = run(B, F, d, p);
    double m2 = 0;
    for (int j = 0; j < per_site; j++)
        if (j % r2->K < r2->n_tokens[0]) m2 = fmax(m2, fabs(r2->kl[j] - r2->kl[per_site + j]));
    printf("attn_out vs resid_mid with their own deltas differ by up to %.3g (expected: not equal)\n", m2);
    CHECK(m2 > 1e-3, "own deltas: attn_out and resid_mid unexpectedly equal");
    results_free(r);
    results_free(r2);
    steer_data_free(d);
}

/* Captures site.l of B and F on tokens; steers B at resid_post.l with α = 1
 * and the oracle δ, and compares its residual after l (resid_post.l seen by a
 * capture added after the intervention, and resid_pre.(l+1)) with F's. */
static void test_resid_post_alpha1(void)
{
    static const int ids[] = {1, 403, 407, 261, 378, 269, 261, 268, 414, 422, 382, 276};
    const int n = (int)(sizeof ids / sizeof ids[0]), L = steer_model_get_config(B)->n_layer, d = 64;
    steer_ctx *cb, *cf;
    CHECK_OK(steer_ctx_new(B, NULL, &cb));
    CHECK_OK(steer_ctx_new(F, NULL, &cf));
    float *xb = malloc(sizeof(float) * n * d), *xf = malloc(sizeof(float) * n * d), *delta = malloc(sizeof(float) * n * d);
    double worst = 0, worst_rel = 0, moved = 0;
    for (int l = 0; l < L; l++) {
        steer_ctx_clear_hooks(cb);
        steer_ctx_clear_hooks(cf);
        CHECK(steer_ctx_add_capture(cb, STEER_SITE_RESID_POST, l, 0) >= 0, "capture");
        CHECK(steer_ctx_add_capture(cf, STEER_SITE_RESID_POST, l, 0) >= 0, "capture");
        CHECK_OK(steer_forward_tokens(cb, ids, n, 0, 0));
        CHECK_OK(steer_forward_tokens(cf, ids, n, 0, 0));
        memcpy(xb, steer_ctx_captured(cb, STEER_SITE_RESID_POST, l, NULL), sizeof(float) * n * d);
        memcpy(xf, steer_ctx_captured(cf, STEER_SITE_RESID_POST, l, NULL), sizeof(float) * n * d);
        for (int j = 0; j < n * d; j++) delta[j] = xf[j] - xb[j];
        steer_ctx_clear_hooks(cb);
        steer_intervention iv = {.kind = STEER_ADD, .site = STEER_SITE_RESID_POST, .layer = l, .alpha = 1.0f,
                                 .data = delta, .n_rows = n, .positions = {.kind = STEER_POS_ALL}, .seq = -1};
        CHECK(steer_ctx_add_intervention(cb, &iv) >= 0, "intervention: %s", steer_last_error());
        CHECK(steer_ctx_add_capture(cb, STEER_SITE_RESID_POST, l, 0) >= 0, "capture");
        if (l + 1 < L) CHECK(steer_ctx_add_capture(cb, STEER_SITE_RESID_PRE, l + 1, 0) >= 0, "capture");
        CHECK_OK(steer_forward_tokens(cb, ids, n, 0, 0));
        const float *got = steer_ctx_captured(cb, STEER_SITE_RESID_POST, l, NULL);
        const float *next = l + 1 < L ? steer_ctx_captured(cb, STEER_SITE_RESID_PRE, l + 1, NULL) : got;
        for (int j = 0; j < n * d; j++) {
            double e = fmax(fabs((double)got[j] - xf[j]), fabs((double)next[j] - xf[j]));
            double scale = fmax(fabs((double)xf[j]), fabs((double)xb[j]));
            worst = fmax(worst, e);
            worst_rel = fmax(worst_rel, e / fmax(scale, 1e-30));
            moved = fmax(moved, fabs((double)delta[j]));
        }
    }
    printf("resid_post alpha = 1: max |residual after l - F's| = %.3e, relative %.3e (tol %.1e), max |delta| %.3g\n",
           worst, worst_rel, TOL_SWEEP_RESID_F, moved);
    CHECK(worst_rel <= TOL_SWEEP_RESID_F, "steered residual differs from F's by %g (relative)", worst_rel);
    CHECK(moved > 0.1, "vacuous: B and F agree");
    free(xb); free(xf); free(delta);
    steer_ctx_free(cb);
    steer_ctx_free(cf);
}

static void test_threads(void)
{
    steer_dataset *d = short_data();
    steer_sweep_params p = wide_params();
    p.n_threads = 1;
    results *a = run(B, F, d, p);
    p.n_threads = 2;
    results *b = run(B, F, d, p);
    int bitwise;
    double md = max_diff(a, b, 3, &bitwise);
    printf("1 vs 2 threads: max |diff| = %g, bitwise %d\n", md, bitwise);
    CHECK(md == 0.0 && bitwise, "thread count changed the numbers");
    results_free(a);
    results_free(b);
    steer_data_free(d);
}

/* ---------------------------------------------------------------- item source (next_item, --mpi) */

typedef struct {
    const int *order;
    int n, at, calls;
    results *r;
} source;

static int next_from(void *ud)
{
    source *s = ud;
    s->calls++;
    return s->at < s->n ? s->order[s->at++] : -1;
}

static int collect_src(void *ud, const steer_sweep_item *it) { return collect(((source *)ud)->r, it); }

/* Runs p with an item source handing out order[0..n); returns the results
 * (NULL on an error, its status in *rc). */
static results *run_source(const steer_dataset *d, steer_sweep_params p, const int *order, int n, int *rc)
{
    results *r = calloc(1, sizeof *r);
    CHECK_OK(steer_sweep_check(B, F, &p));
    r->K = p.tokens;
    r->n_cells = p.n_sites * p.n_layers * p.n_alphas;
    r->kl_base = malloc(sizeof(double) * MAX_ITEMS * r->K);
    r->kl = malloc(sizeof(double) * MAX_ITEMS * r->n_cells * r->K);
    source s = {order, n, 0, 0, r};
    p.on_item = collect_src;
    p.next_item = next_from;
    p.ud = &s;
    *rc = steer_sweep_run(B, F, d, &p);
    CHECK(*rc != STEER_OK || s.calls >= n + 1, "the source was asked %d times for %d items", s.calls, n);
    return r;
}

static void test_item_source(void)
{
    steer_dataset *d = short_data();
    steer_sweep_params p = wide_params();
    p.n_threads = 2;
    results *a = run(B, F, d, p);
    /* items in another order, on 1 and 2 threads: the same numbers */
    static const int order[] = {2, 0, 1};
    for (int th = 1; th <= 2; th++) {
        p.n_threads = th;
        int rc, bitwise;
        results *b = run_source(d, p, order, 3, &rc);
        CHECK_OK(rc);
        double md = max_diff(a, b, 3, &bitwise);
        printf("item source (2, 0, 1), %d thread(s): max |diff| = %g, bitwise %d\n", th, md, bitwise);
        CHECK(md == 0.0 && bitwise, "an item source changed the numbers");
        results_free(b);
    }
    /* a subset: only what the source gives is run */
    int rc;
    static const int one[] = {1};
    results *c = run_source(d, p, one, 1, &rc);
    CHECK_OK(rc);
    CHECK(c->count == 1 && c->seen[1] == 1, "source of item 1: %d items ran", c->count);
    results_free(c);
    /* an item given twice, one out of range, one in skip: STEER_EARG */
    static const int twice[] = {0, 0}, out[] = {7};
    results *e = run_source(d, p, twice, 2, &rc);
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "next_item gave item 0"), "twice: %d %s", rc,
          steer_last_error());
    results_free(e);
    e = run_source(d, p, out, 1, &rc);
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "next_item gave item 7"), "out of range: %d %s", rc,
          steer_last_error());
    results_free(e);
    unsigned char skip[3] = {0, 1, 0};
    p.skip = skip;
    e = run_source(d, p, one, 1, &rc);
    CHECK(rc == STEER_EARG && e->count == 0, "skipped item: %d, %d ran", rc, e->count);
    results_free(e);
    results_free(a);
    steer_data_free(d);
}

/* ---------------------------------------------------------------- mean oracle δ (--save-vectors) */

static void test_mean_delta(void)
{
    const char *prompt = "Once upon a time, there was a", *completion = " little girl named Lily.";
    steer_dataset *d;
    CHECK_OK(steer_data_new(&d));
    CHECK_OK(steer_data_add(d, NULL, prompt, completion, -1));
    steer_sweep_params p = steer_sweep_default_params();
    p.continuation = STEER_SWEEP_CONT_GOLD;
    p.tokens = 4;
    p.n_sites = 2;
    p.sites[0] = STEER_SITE_RESID_POST;
    p.sites[1] = STEER_SITE_MLP_IN;
    p.n_layers = 2;
    p.layers[0] = 1;
    p.layers[1] = 3;
    steer_vecset *vs;
    CHECK_OK(steer_sweep_mean_delta(B, F, d, &p, &vs));
    CHECK(steer_vecset_count(vs) == 4, "%d vectors", steer_vecset_count(vs));
    /* reference: s = the prompt's tokens shared with prompt ⊕ completion, then K
     * completion tokens, minus the last (it is never an input) */
    int pt[256], full[256], np, nf;
    char both[256];
    snprintf(both, sizeof both, "%s%s", prompt, completion);
    CHECK_OK(steer_tokenize(B, prompt, 1, pt, 256, &np));
    CHECK_OK(steer_tokenize(B, both, 1, full, 256, &nf));
    int c = 0;
    while (c < np && c < nf && full[c] == pt[c]) c++;
    const int T = c + (nf - c < 4 ? nf - c : 4) - 1, w = 64;
    double worst = 0, norm = 0;
    for (int si = 0; si < 2; si++)
        for (int li = 0; li < 2; li++) {
            steer_ctx *cb, *cf;
            CHECK_OK(steer_ctx_new(B, NULL, &cb));
            CHECK_OK(steer_ctx_new(F, NULL, &cf));
            CHECK(steer_ctx_add_capture(cb, p.sites[si], p.layers[li], 0) >= 0, "capture");
            CHECK(steer_ctx_add_capture(cf, p.sites[si], p.layers[li], 0) >= 0, "capture");
            CHECK_OK(steer_forward_tokens(cb, full, T, 0, 0));
            CHECK_OK(steer_forward_tokens(cf, full, T, 0, 0));
            const float *ab = steer_ctx_captured(cb, p.sites[si], p.layers[li], NULL),
                        *af = steer_ctx_captured(cf, p.sites[si], p.layers[li], NULL);
            const steer_vec *v = steer_vecset_find(vs, p.sites[si], p.layers[li]);
            CHECK(v && v->width == w && v->n_rows == 0, "vector %d.%d missing", si, li);
            for (int j = 0; v && j < w; j++) {
                double acc = 0;
                for (int t = 0; t < T; t++) acc += (double)(af[t * w + j] - ab[t * w + j]);
                worst = fmax(worst, fabs((double)(float)(acc / T) - v->data[j]));
                norm = fmax(norm, fabs(v->data[j]));
            }
            steer_ctx_free(cb);
            steer_ctx_free(cf);
        }
    printf("mean oracle delta vs captures (%d positions): max |diff| = %g (tol %.0e), max |v| %.3g\n", T, worst,
           TOL_HOOK_EXACT, norm);
    CHECK(worst <= TOL_HOOK_EXACT && norm > 0.01, "mean delta differs by %g", worst);
    steer_vecset_free(vs);
    steer_data_free(d);
}

/* ---------------------------------------------------------------- files */

static int files_equal(const char *a, const char *b)
{
    size_t na, nb;
    char *x = tu_read_file(a, &na), *y = tu_read_file(b, &nb);
    int eq = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return eq;
}

static void check_same_outputs(const char *da, const char *db, const char *what)
{
    static const char *files[] = {"items.csv", "dkl.csv"};
    for (int i = 0; i < 2; i++) {
        char pa[600], pb[600];
        snprintf(pa, sizeof pa, "%s/%s", da, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", db, files[i]);
        int eq = files_equal(pa, pb);
        printf("%s: %s byte-equal = %d\n", what, files[i], eq);
        CHECK(eq, "%s: %s differs", what, files[i]);
    }
}

typedef struct {
    steer_sweep_table *t;
    int n, stop_after, use_journal;
} table_sink;

static int to_table(void *ud, const steer_sweep_item *it)
{
    table_sink *s = ud;
    int rc = s->use_journal ? steer_sweep_journal_append(s->t, it) : steer_sweep_table_add(s->t, it);
    if (rc) return rc;
    s->n++;
    return s->stop_after > 0 && s->n >= s->stop_after ? 1 : 0;
}

static steer_sweep_info INFO;

/* Runs the sweep into a new table (optionally with a journal in dir), writes
 * dir unless stopped. Returns the run's status. */
static int table_run(const steer_dataset *d, steer_sweep_params p, const char *dir, int journal, int stop_after,
                     int *n_read)
{
    CHECK_OK(steer_sweep_check(B, F, &p));
    steer_sweep_table *t;
    CHECK_OK(steer_sweep_table_new(&p, &INFO, &t));
    if (journal) {
        int rc = steer_sweep_journal_open(t, dir, n_read);
        if (rc) {
            steer_sweep_table_free(t);
            return rc;
        }
    }
    table_sink s = {t, 0, stop_after, journal};
    p.skip = steer_sweep_table_done(t);
    p.on_item = to_table;
    p.ud = &s;
    int rc = steer_sweep_run(B, F, d, &p);
    if (rc == 0) CHECK_OK(steer_sweep_table_write(t, dir, 1.0));
    steer_sweep_table_free(t);
    return rc;
}

static void test_files(void)
{
    steer_data_params dp = steer_data_default_params();
    dp.n_max = 5;
    steer_dataset *d;
    CHECK_OK(steer_data_load("winogrande:" STEER_TESTDATA_DIR "/winogrande/dev.jsonl", &dp, &d));
    INFO = (steer_sweep_info){"models/stories260K/stories260K.bin",
                              "models/stories260K-winogrande/stories260K-winogrande.bin",
                              "winogrande:dev.jsonl", "test", "llama", 5, 64, steer_data_count(d)};
    steer_sweep_params p = steer_sweep_default_params();
    p.n_layers = 2;
    p.layers[0] = 1;
    p.layers[1] = 4;
    p.tokens = 3;
    p.n_threads = 2;
    char one[512], s0[512], s1[512], merged[512], back[512], res[512];
    snprintf(one, sizeof one, "%s/one", tmpdir);
    snprintf(s0, sizeof s0, "%s/s0", tmpdir);
    snprintf(s1, sizeof s1, "%s/s1", tmpdir);
    snprintf(merged, sizeof merged, "%s/merged", tmpdir);
    snprintf(back, sizeof back, "%s/back", tmpdir);
    snprintf(res, sizeof res, "%s/resumed", tmpdir);
    CHECK_OK(table_run(d, p, one, 0, 0, NULL));

    /* header and a row count */
    char path[600];
    snprintf(path, sizeof path, "%s/dkl.csv", one);
    char *csv = tu_read_file(path, NULL);
    CHECK(strncmp(csv, "base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n\nstories260K,stories260K-winogrande,mlp_in,1,0,1,0,0,5\n",
                  103) == 0,
          "dkl.csv starts: %.110s", csv);
    int rows = 0;
    for (char *c = csv; *c; c++) rows += *c == '\n';
    printf("dkl.csv rows: %d (expected 1 + 4 sites x 2 layers x 5 alphas x 3 tokens = 121)\n", rows);
    CHECK(rows == 121, "dkl.csv has %d lines", rows);
    free(csv);

    /* shards 0/2 and 1/2, merged = one run */
    steer_sweep_params q = p;
    q.shard_index = 0;
    q.shard_count = 2;
    CHECK_OK(table_run(d, q, s0, 0, 0, NULL));
    q.shard_index = 1;
    CHECK_OK(table_run(d, q, s1, 0, 0, NULL));
    steer_sweep_table *parts[2], *m, *rb;
    CHECK_OK(steer_sweep_table_read(s0, &parts[0]));
    CHECK_OK(steer_sweep_table_read(s1, &parts[1]));
    CHECK(steer_sweep_table_count(parts[0]) == 3 && steer_sweep_table_count(parts[1]) == 2, "shard sizes %d %d",
          steer_sweep_table_count(parts[0]), steer_sweep_table_count(parts[1]));
    CHECK(steer_sweep_table_merge(parts, 1, NULL, &m) == STEER_EARG, "merging one of two shards must fail");
    printf("merge of 1 of 2 shards refused: %s\n", steer_last_error());
    steer_sweep_table *twice[2] = {parts[0], parts[0]};
    CHECK(steer_sweep_table_merge(twice, 2, NULL, &m) == STEER_EARG, "merging a shard twice must fail");
    printf("merge of a shard twice refused: %s\n", steer_last_error());
    CHECK_OK(steer_sweep_table_merge(parts, 2, NULL, &m));
    CHECK_OK(steer_sweep_table_write(m, merged, -1));
    check_same_outputs(one, merged, "shards 0/2 + 1/2 merged vs one run");
    steer_sweep_table_free(parts[0]);
    steer_sweep_table_free(parts[1]);
    steer_sweep_table_free(m);

    /* read back and written again = the same files */
    CHECK_OK(steer_sweep_table_read(one, &rb));
    CHECK_OK(steer_sweep_table_write(rb, back, -1));
    check_same_outputs(one, back, "read back and rewritten vs one run");
    steer_sweep_table_free(rb);

    /* interrupted after 2 items, a torn line appended, resumed */
    int n_read = -1;
    CHECK(table_run(d, p, res, 1, 2, &n_read) == 1, "stop after 2 items");
    snprintf(path, sizeof path, "%s/progress.jsonl", res);
    FILE *f = fopen(path, "a");
    fputs("{\"item\": 4, \"id\": \"torn", f);
    fclose(f);
    CHECK_OK(table_run(d, p, res, 1, 0, &n_read));
    printf("resume: %d items read back from the journal (>= 2 expected; a torn line dropped)\n", n_read);
    CHECK(n_read >= 2 && n_read < 5, "read back %d items", n_read);
    check_same_outputs(one, res, "interrupted + resumed vs one run");

    /* a journal of other settings is refused, naming the setting */
    steer_sweep_params other = p;
    other.tokens = 2;
    int rc = table_run(d, other, res, 1, 0, NULL);
    printf("journal of other settings: rc %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "tokens") && strstr(steer_last_error(), "progress.jsonl"),
          "settings mismatch not reported");
    steer_data_free(d);
}

/* ---------------------------------------------------------------- bad input */

static void test_bad_input(void)
{
    steer_sweep_params p = steer_sweep_default_params();
    steer_model *other;
    CHECK_OK(steer_model_load(STEER_TESTDATA_DIR "/llama/hf", NULL, &other));
    int rc = steer_sweep_check(B, other, &p);
    printf("different architecture: rc %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "models differ"), "architecture mismatch not caught");
    steer_model_free(other);

    /* same shapes as stories260K, another vocabulary */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/othertok", tmpdir);
    steer_make_model_params mp = steer_make_model_default_params(STEER_ARCH_LLAMA);
    mp.d_model = 64; mp.d_ff = 172; mp.n_layer = 5; mp.n_head = 8; mp.n_kv_head = 4; mp.n_vocab = 512;
    mp.n_ctx = 512; mp.tied = 1;
    CHECK_OK(steer_make_model(&mp, dir));
    CHECK_OK(steer_model_load(dir, NULL, &other));
    p = steer_sweep_default_params();
    rc = steer_sweep_check(B, other, &p);
    printf("different tokenizer: rc %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "tokenizers differ"), "tokenizer mismatch not caught");
    steer_model_free(other);

    p = steer_sweep_default_params();
    p.alphas[1] = NAN;
    rc = steer_sweep_check(B, F, &p);
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "not finite"), "NaN alpha: %s", steer_last_error());
    p = steer_sweep_default_params();
    p.sites[0] = (steer_site)42;
    CHECK(steer_sweep_check(B, F, &p) == STEER_EARG, "unknown site accepted");
    p = steer_sweep_default_params();
    p.shard_index = 2;
    p.shard_count = 2;
    CHECK(steer_sweep_check(B, F, &p) == STEER_EARG, "shard 2/2 accepted");
    p = steer_sweep_default_params();
    p.sites[0] = STEER_SITE_MLP_GATE;
    p.delta_site = STEER_SITE_ATTN_OUT;
    rc = steer_sweep_check(B, F, &p);
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "wide"), "delta site of another width: %s",
          steer_last_error());

    /* gold continuation without answers */
    steer_dataset *d;
    CHECK_OK(steer_data_new(&d));
    CHECK_OK(steer_data_add(d, "q1", "Hello", NULL, -1));
    p = steer_sweep_default_params();
    p.continuation = STEER_SWEEP_CONT_GOLD;
    rc = steer_sweep_run(B, F, d, &p);
    printf("gold without a completion: rc %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EFORMAT && strstr(steer_last_error(), "q1"), "missing completion not caught");
    steer_data_free(d);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "FAIL: mkdtemp\n");
        return 1;
    }
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &B));
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K-winogrande/stories260K-winogrande.bin", NULL, &F));
    test_engine_vs_naive_stories();
    test_engine_vs_naive_archs();
    test_f_equals_b();
    test_attn_out_equals_resid_mid();
    test_resid_post_alpha1();
    test_threads();
    test_item_source();
    test_mean_delta();
    test_files();
    test_bad_input();
    steer_model_free(B);
    steer_model_free(F);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return tu_finish("test_sweep");
}

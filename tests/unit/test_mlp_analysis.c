/*
 * test_mlp_analysis.c — SPEC §4 E2 (src/mlp_analysis.c): the MLP branch in
 * double against the float engine, its first-order decomposition against
 * Jacobians built from the training ops' backward passes (double instance,
 * one reverse pass per output coordinate), the linearisation error's
 * first-order decay, g1 against a formula written here, the shared
 * histogram bins and counts, the attenuation rows against the single-
 * position API and their CSV round trip, the report section, and bad input
 * (an MLP without a gate, vectors of another model).
 *
 * Models: stories260K (llama, SiLU), random gemma (GELU-tanh) and gemma2
 * (GELU-tanh + sandwich norms: the post-ffn norm is part of the branch).
 */
#include "model.h"
#include "plot.h"
#include "test_util.h"

#include <unistd.h>

#define REAL double
#define R_(name) name##_f64
#define TRAIN_OPS_API static inline
#include "train_ops_impl.h"

static char tmpdir[256];

/* ---------------------------------------------------------------- a reference branch from the training ops */

typedef struct {
    int d, f, post;
    steer_act act;
    double eps;
    double *wg, *wu, *wd, *norm, *pnorm; /* [f,d] [f,d] [d,f] [d] [d] */
} ref_branch;

static double *widen_mat(const steer_mat *W)
{
    double *o = malloc((size_t)W->rows * W->cols * sizeof *o);
    float *row = malloc((size_t)W->cols * sizeof *row);
    const size_t esz = steer_dtype_size(W->dtype);
    for (int r = 0; r < W->rows; r++) {
        ops_to_f32(row, (const uint8_t *)W->data + (size_t)r * W->cols * esz, W->dtype, (size_t)W->cols);
        for (int c = 0; c < W->cols; c++) o[(size_t)r * W->cols + c] = row[c];
    }
    free(row);
    return o;
}

static ref_branch ref_new(const steer_model *m, int l)
{
    ref_branch r;
    const model_layer *L = &m->layers[l];
    r.d = m->cfg.d_model;
    r.f = m->cfg.d_ff;
    r.act = m->cfg.act;
    r.eps = m->cfg.rms_eps;
    r.wg = widen_mat(&L->w_gate);
    r.wu = widen_mat(&L->w_up);
    r.wd = widen_mat(&L->w_down);
    r.norm = malloc((size_t)r.d * sizeof *r.norm);
    r.pnorm = malloc((size_t)r.d * sizeof *r.pnorm);
    r.post = L->post_ffn_norm != NULL;
    for (int i = 0; i < r.d; i++) {
        r.norm[i] = L->ffn_norm[i];
        r.pnorm[i] = r.post ? L->post_ffn_norm[i] : 1;
    }
    return r;
}

static void ref_free(ref_branch *r)
{
    free(r->wg);
    free(r->wu);
    free(r->wd);
    free(r->norm);
    free(r->pnorm);
}

/* Jacobian J [d, d] of the branch at x (norm: site attn_out), built row by
 * row from reverse passes: row i = Jᵀ e_i. paths: 0 both, 1 gated only (du
 * not propagated), 2 un-gated only (dg not propagated), 3 the norm stage
 * alone (J_norm). */
static void ref_jacobian(const ref_branch *r, int norm, const double *x, int paths, double *J)
{
    const int d = r->d, f = r->f;
    double *h = calloc(d, 8), rs, *ag = calloc(f, 8), *au = calloc(f, 8), *m = calloc(f, 8), *y0 = calloc(d, 8),
           *y = calloc(d, 8), rp;
    double *dy = calloc(d, 8), *dy0 = calloc(d, 8), *dm = calloc(f, 8), *dag = calloc(f, 8), *dau = calloc(f, 8),
           *dh = calloc(d, 8), *dx = calloc(d, 8);
    if (norm) tr_rmsnorm_forward_f64(h, &rs, x, r->norm, 1, d, r->eps);
    else memcpy(h, x, (size_t)d * 8);
    tr_matmul_forward_f64(ag, h, r->wg, NULL, 1, d, f);
    tr_matmul_forward_f64(au, h, r->wu, NULL, 1, d, f);
    tr_glu_forward_f64(m, ag, au, (size_t)f, r->act);
    tr_matmul_forward_f64(y0, m, r->wd, NULL, 1, f, d);
    if (r->post) tr_rmsnorm_forward_f64(y, &rp, y0, r->pnorm, 1, d, r->eps);
    for (int i = 0; i < d; i++) {
        memset(dy, 0, (size_t)d * 8);
        dy[i] = 1;
        memset(dx, 0, (size_t)d * 8);
        memset(dh, 0, (size_t)d * 8);
        if (paths == 3) {
            memcpy(dh, dy, (size_t)d * 8);
        } else {
            memset(dy0, 0, (size_t)d * 8);
            memset(dm, 0, (size_t)f * 8);
            memset(dag, 0, (size_t)f * 8);
            memset(dau, 0, (size_t)f * 8);
            if (r->post) tr_rmsnorm_backward_f64(dy0, NULL, dy, y0, r->pnorm, &rp, 1, d);
            else memcpy(dy0, dy, (size_t)d * 8);
            tr_matmul_backward_f64(dm, NULL, NULL, dy0, m, r->wd, 1, f, d);
            tr_glu_backward_f64(paths == 2 ? NULL : dag, paths == 1 ? NULL : dau, dm, ag, au, (size_t)f, r->act);
            tr_matmul_backward_f64(dh, NULL, NULL, dag, h, r->wg, 1, d, f);
            tr_matmul_backward_f64(dh, NULL, NULL, dau, h, r->wu, 1, d, f);
        }
        if (norm) tr_rmsnorm_backward_f64(dx, NULL, dh, x, r->norm, &rs, 1, d);
        else memcpy(dx, dh, (size_t)d * 8);
        memcpy(J + (size_t)i * d, dx, (size_t)d * 8);
    }
    free(h); free(ag); free(au); free(m); free(y0); free(y);
    free(dy); free(dy0); free(dm); free(dag); free(dau); free(dh); free(dx);
}

static double norm_v(const double *a, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * a[i];
    return sqrt(s);
}

/* max_i |J·δ − v|_i / ‖J·δ‖ */
static double jv_err(const double *J, const double *delta, const double *v, int d)
{
    double *jd = calloc(d, 8), mx = 0;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) jd[i] += J[(size_t)i * d + j] * delta[j];
    for (int i = 0; i < d; i++) mx = fmax(mx, fabs(jd[i] - v[i]));
    double r = mx / norm_v(jd, d);
    free(jd);
    return r;
}

/* splitmix64 → uniform (−1, 1) */
static uint64_t rng_s = 12345;
static double urand(void)
{
    uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0 * 2 - 1;
}

/* ---------------------------------------------------------------- the branch against the engine and the backward passes */

static void check_branch(steer_model *m, const char *name)
{
    const int d = m->cfg.d_model, L = m->cfg.n_layer;
    steer_ctx *c;
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = 64;
    CHECK_OK(steer_ctx_new(m, &cp, &c));
    for (int l = 0; l < L; l++) {
        CHECK_OK(steer_ctx_add_capture(c, STEER_SITE_RESID_MID, l, 0) < 0 ? -1 : 0);
        CHECK_OK(steer_ctx_add_capture(c, STEER_SITE_MLP_IN, l, 0) < 0 ? -1 : 0);
        CHECK_OK(steer_ctx_add_capture(c, STEER_SITE_MLP_OUT, l, 0) < 0 ? -1 : 0);
    }
    int tok[64], nt = 0;
    CHECK_OK(steer_tokenize(m, "Once upon a time there was a cat", 1, tok, 64, &nt));
    CHECK_OK(steer_forward_tokens(c, tok, nt, 0, 0));
    const int t = nt - 1;
    double *x = malloc(d * 8), *xin = malloc(d * 8), *y = malloc(d * 8), *J = malloc((size_t)d * d * 8);
    double *delta = malloc(d * 8), *dhat = malloc(d * 8), *gated = malloc(d * 8), *ungated = malloc(d * 8);
    double *first = malloc(d * 8), *y1 = malloc(d * 8), *xs = malloc(d * 8);
    double worst_eng = 0, worst_jvp = 0, worst_lin = 0;
    for (int l = 0; l < L; l++) {
        int nr;
        const float *mid = steer_ctx_captured(c, STEER_SITE_RESID_MID, l, &nr) + (size_t)t * d;
        const float *min = steer_ctx_captured(c, STEER_SITE_MLP_IN, l, &nr) + (size_t)t * d;
        const float *mout = steer_ctx_captured(c, STEER_SITE_MLP_OUT, l, &nr) + (size_t)t * d;
        for (int i = 0; i < d; i++) {
            x[i] = mid[i];
            xin[i] = min[i];
        }
        steer_mlp_branch *b;
        CHECK_OK(steer_mlp_branch_new(m, l, &b));
        ref_branch rb = ref_new(m, l);
        for (int s = 0; s < 2; s++) {
            const steer_site site = s ? STEER_SITE_MLP_IN : STEER_SITE_ATTN_OUT;
            const double *xx = s ? xin : x;
            /* 1. the double branch is the engine's MLP sublayer (mlp_out) */
            CHECK_OK(steer_mlp_branch_forward(b, site, xx, y));
            double mx = 0, ref = 0;
            for (int i = 0; i < d; i++) {
                mx = fmax(mx, fabs(y[i] - mout[i]));
                ref = fmax(ref, fabs(mout[i]));
            }
            worst_eng = fmax(worst_eng, mx / ref);
            /* 2. first order = Jacobian·δ from reverse passes, path by path */
            for (int i = 0; i < d; i++) delta[i] = urand();
            steer_mlp_jvp out = {.dhat = dhat, .gated = gated, .ungated = ungated};
            CHECK_OK(steer_mlp_branch_jvp(b, site, xx, delta, &out));
            for (int i = 0; i < d; i++) first[i] = gated[i] + ungated[i];
            for (int paths = 0; paths < 4; paths++) {
                ref_jacobian(&rb, !s, xx, paths, J);
                const double *v = paths == 0 ? first : paths == 1 ? gated : paths == 2 ? ungated : dhat;
                double e = jv_err(J, delta, v, d);
                worst_jvp = fmax(worst_jvp, e);
                if (e > TOL_MLP_JVP)
                    printf("  %s layer %d %s paths %d: rel err %.3e\n", name, l, steer_site_name(site), paths, e);
            }
            /* ⟨u, J·δ⟩ = ⟨Jᵀu, δ⟩ for random u (Jᵀu from the reverse passes' rows) */
            ref_jacobian(&rb, !s, xx, 0, J);
            for (int k = 0; k < 3; k++) {
                double lhs = 0, rhs = 0;
                double *u = malloc(d * 8), *jtu = calloc(d, 8);
                for (int i = 0; i < d; i++) u[i] = urand();
                for (int i = 0; i < d; i++)
                    for (int j = 0; j < d; j++) jtu[j] += u[i] * J[(size_t)i * d + j];
                for (int i = 0; i < d; i++) {
                    lhs += u[i] * first[i];
                    rhs += jtu[i] * delta[i];
                }
                double e = fabs(lhs - rhs) / (norm_v(u, d) * norm_v(first, d));
                worst_jvp = fmax(worst_jvp, e);
                free(u);
                free(jtu);
            }
            /* 3. linearisation: the relative error of α·first halves with α */
            double scale = norm_v(xx, d) / norm_v(delta, d);
            for (int i = 0; i < d; i++) delta[i] *= scale; /* ‖δ‖ = ‖x‖ */
            CHECK_OK(steer_mlp_branch_jvp(b, site, xx, delta, &out));
            for (int i = 0; i < d; i++) first[i] = gated[i] + ungated[i];
            double prev = NAN;
            for (int k = 4; k <= 10; k++) {
                const double a = ldexp(1.0, -k);
                for (int i = 0; i < d; i++) xs[i] = xx[i] + a * delta[i];
                CHECK_OK(steer_mlp_branch_forward(b, site, xs, y1));
                double e = 0;
                for (int i = 0; i < d; i++) {
                    double r = y1[i] - y[i] - a * first[i];
                    e += r * r;
                }
                e = sqrt(e) / (a * norm_v(first, d));
                if (k > 4) {
                    double ratio = prev / e;
                    worst_lin = fmax(worst_lin, fabs(ratio / 2 - 1));
                    if (fabs(ratio / 2 - 1) > TOL_MLP_LIN_HALVING)
                        printf("  %s layer %d %s: e(2^-%d) = %.3e, e(2^-%d) = %.3e, ratio %.3f\n", name, l,
                               steer_site_name(site), k - 1, prev, k, e, ratio);
                }
                prev = e;
            }
        }
        ref_free(&rb);
        steer_mlp_branch_free(b);
    }
    printf("%-14s branch vs engine mlp_out: max rel %.3e (tol %.0e)\n", name, worst_eng, TOL_MLP_BRANCH_ENGINE);
    printf("%-14s first order vs reverse-pass Jacobians (norm, gated, un-gated, sum; <u,Jd> = <J'u,d>): max rel "
           "%.3e (tol %.0e)\n", name, worst_jvp, TOL_MLP_JVP);
    printf("%-14s linearisation error e(a)/e(a/2) for a = 2^-4 .. 2^-10: max |ratio/2 - 1| = %.4f (tol %.2f)\n", name,
           worst_lin, TOL_MLP_LIN_HALVING);
    CHECK(worst_eng <= TOL_MLP_BRANCH_ENGINE, "%s: branch differs from the engine by %.3e", name, worst_eng);
    CHECK(worst_jvp <= TOL_MLP_JVP, "%s: first order differs from the Jacobian by %.3e", name, worst_jvp);
    CHECK(worst_lin <= TOL_MLP_LIN_HALVING, "%s: linearisation error does not halve with alpha (%.4f)", name, worst_lin);
    free(x); free(xin); free(y); free(J); free(delta); free(dhat); free(gated); free(ungated); free(first); free(y1);
    free(xs);
    steer_ctx_free(c);
}

static steer_model *random_model(steer_arch arch, const char *name)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    steer_make_model_params mp = steer_make_model_default_params(arch);
    mp.n_layer = 2;
    mp.n_ctx = 64;
    mp.seed = 5;
    CHECK_OK(steer_make_model(&mp, dir));
    steer_model *m;
    CHECK_OK(steer_model_load(dir, NULL, &m));
    return m;
}

/* ---------------------------------------------------------------- the run over data, files, report */

static steer_vecset *random_vectors(int d, int n_layer, double scale)
{
    steer_vecset *vs;
    CHECK_OK(steer_vecset_new(&vs));
    float *v = malloc(d * sizeof *v);
    for (int s = 0; s < 2; s++)
        for (int l = 0; l < n_layer; l++) {
            for (int i = 0; i < d; i++) v[i] = (float)(scale * urand());
            CHECK_OK(steer_vecset_set(vs, s ? STEER_SITE_MLP_IN : STEER_SITE_ATTN_OUT, l, 0, d, v));
        }
    free(v);
    CHECK_OK(steer_vecset_set_meta(vs, "model_hint", "llama"));
    return vs;
}

static double silu_prime(double x)
{
    double s = 1 / (1 + exp(-x));
    return s + x * s * (1 - s);
}

static void test_run(steer_model *B, steer_model *F)
{
    const int d = B->cfg.d_model, f = B->cfg.d_ff, L = B->cfg.n_layer;
    steer_dataset *data;
    steer_data_params dp = steer_data_default_params();
    dp.n_max = 4;
    CHECK_OK(steer_data_load("winogrande:" STEER_TESTDATA_DIR "/winogrande/dev.jsonl", &dp, &data));
    steer_vecset *vs = random_vectors(d, L, 0.5);
    steer_mlp_params p = steer_mlp_default_params();
    p.token = 2;
    p.vectors = vs;
    p.vectors_path = "random.safetensors";
    steer_mlp_result *rb, *rf;
    CHECK_OK(steer_mlp_run(B, "base", data, &p, &rb));
    CHECK_OK(steer_mlp_run(F, "ft", data, &p, &rf));
    const int N = steer_mlp_result_positions(rb);
    printf("run: %d items, %d skipped, %d positions; %d attenuation rows\n", steer_mlp_result_items(rb),
           steer_mlp_result_skipped(rb), N, steer_mlp_result_att_count(rb));
    CHECK(N == 4 && steer_mlp_result_items(rb) == 4, "positions %d", N);
    CHECK(steer_mlp_result_att_count(rb) == 2 * L, "attenuation rows %d", steer_mlp_result_att_count(rb));

    /* g1 of item 0 against the formula, from the engine's own captures */
    const steer_data_item *it = steer_data_at(data, 0);
    int pt[512], np, ft[512], nf;
    CHECK_OK(steer_tokenize(B, it->prompt, 1, pt, 512, &np));
    char *s = malloc(strlen(it->prompt) + strlen(it->completion) + 1);
    strcpy(s, it->prompt);
    strcat(s, it->completion);
    CHECK_OK(steer_tokenize(B, s, 1, ft, 512, &nf));
    free(s);
    int c0 = 0;
    while (c0 < np && ft[c0] == pt[c0]) c0++;
    const int pos = c0 - 1 + 2 - 1; /* predicts completion token 2 */
    steer_ctx *c;
    CHECK_OK(steer_ctx_new(B, NULL, &c));
    const int l = 2;
    CHECK_OK(steer_ctx_add_capture(c, STEER_SITE_MLP_GATE, l, 0) < 0 ? -1 : 0);
    CHECK_OK(steer_ctx_add_capture(c, STEER_SITE_MLP_UP, l, 0) < 0 ? -1 : 0);
    CHECK_OK(steer_ctx_add_capture(c, STEER_SITE_RESID_MID, l, 0) < 0 ? -1 : 0);
    CHECK_OK(steer_forward_tokens(c, ft, nf, 0, 0));
    int nr;
    const float *ag = steer_ctx_captured(c, STEER_SITE_MLP_GATE, l, &nr) + (size_t)pos * f;
    const float *au = steer_ctx_captured(c, STEER_SITE_MLP_UP, l, &nr) + (size_t)pos * f;
    size_t nv;
    const float *v1 = steer_mlp_result_values(rb, l, 1, &nv), *v2 = steer_mlp_result_values(rb, l, 2, NULL);
    CHECK(nv == (size_t)N * f, "values %zu", nv);
    double e1 = 0, e2 = 0;
    for (int j = 0; j < f; j++) {
        double g1 = fabs(silu_prime(ag[j]) * au[j]), g2 = fabs(ag[j] / (1 + exp(-(double)ag[j])));
        e1 = fmax(e1, fabs(v1[j] - g1) / fmax(g1, 1e-30));
        e2 = fmax(e2, fabs(v2[j] - g2) / fmax(g2, 1e-30));
    }
    printf("|g1|, |g2| of item 0, layer %d vs SiLU' and SiLU written here: max rel %.3e, %.3e (tol %.0e)\n", l, e1, e2,
           TOL_MLP_G_DIRECT);
    CHECK(e1 <= TOL_MLP_G_DIRECT && e2 <= TOL_MLP_G_DIRECT, "g1/g2 differ from the formula");

    /* statistics against the values */
    steer_mlp_stats st;
    CHECK_OK(steer_mlp_result_stats(rb, l, 1, &st));
    float *sorted = malloc(nv * sizeof *sorted);
    memcpy(sorted, v1, nv * sizeof *sorted);
    long below = 0;
    double sum = 0;
    for (size_t i = 0; i < nv; i++) {
        below += sorted[i] < 1e-3f;
        sum += sorted[i];
    }
    for (size_t i = 1; i < nv; i++) /* insertion sort: small n */
        for (size_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            float t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    double med = nv % 2 ? sorted[nv / 2] : 0.5 * ((double)sorted[nv / 2 - 1] + sorted[nv / 2]);
    printf("stats layer %d |g1|: n %ld (expect %zu), median %.6g (direct %.6g), mean %.6g (direct %.6g), share < 1e-3 "
           "%.6g (direct %.6g)\n", l, st.n, nv, st.median, med, st.mean, sum / nv, st.share_below, (double)below / nv);
    CHECK(st.n == (long)nv && st.median == med && fabs(st.mean - sum / nv) <= 1e-12 * st.mean &&
              st.share_below == (double)below / nv, "statistics differ");
    free(sorted);

    /* the attenuation row of a single position against the single-position API */
    {
        steer_dataset *one;
        dp.n_max = 1;
        CHECK_OK(steer_data_load("winogrande:" STEER_TESTDATA_DIR "/winogrande/dev.jsonl", &dp, &one));
        steer_mlp_result *r1;
        CHECK_OK(steer_mlp_run(B, "base", one, &p, &r1));
        const steer_mlp_att *a = NULL;
        for (int k = 0; k < steer_mlp_result_att_count(r1); k++)
            if (steer_mlp_result_att(r1, k)->layer == l && steer_mlp_result_att(r1, k)->site == STEER_SITE_ATTN_OUT)
                a = steer_mlp_result_att(r1, k);
        CHECK(a && a->n == 1, "no single-position row");
        int nrm;
        const float *mid = steer_ctx_captured(c, STEER_SITE_RESID_MID, l, &nrm) + (size_t)pos * d;
        double *x = malloc(d * 8), *del = malloc(d * 8), *dh = malloc(d * 8), *g = malloc(d * 8), *u = malloc(d * 8);
        double *y0 = malloc(d * 8), *y1 = malloc(d * 8), *xs = malloc(d * 8);
        const float *vv = steer_vecset_find(vs, STEER_SITE_ATTN_OUT, l)->data;
        for (int i = 0; i < d; i++) {
            x[i] = mid[i];
            del[i] = vv[i];
            xs[i] = x[i] + del[i];
        }
        steer_mlp_branch *b;
        CHECK_OK(steer_mlp_branch_new(B, l, &b));
        const int f2 = B->cfg.d_ff;
        double *wg = malloc(f2 * 8), *wu = malloc(f2 * 8), *dm = malloc(f2 * 8);
        steer_mlp_jvp out = {.dhat = dh, .gated = g, .ungated = u, .wg = wg, .wu = wu, .dm = dm};
        CHECK_OK(steer_mlp_branch_jvp(b, STEER_SITE_ATTN_OUT, x, del, &out));
        const double n_in = sqrt(pow(norm_v(wg, f2), 2) + pow(norm_v(wu, f2), 2));
        const double abs_gate = norm_v(dm, f2) / n_in, abs_in = n_in / norm_v(dh, d);
        free(wg);
        free(wu);
        free(dm);
        CHECK_OK(steer_mlp_branch_forward(b, STEER_SITE_ATTN_OUT, x, y0));
        CHECK_OK(steer_mlp_branch_forward(b, STEER_SITE_ATTN_OUT, xs, y1));
        double act = 0, fst = 0;
        for (int i = 0; i < d; i++) {
            act += (y1[i] - y0[i]) * (y1[i] - y0[i]);
            fst += (g[i] + u[i]) * (g[i] + u[i]);
        }
        act = sqrt(act);
        fst = sqrt(fst);
        double e = fmax(fmax(fabs(a->dhat - norm_v(dh, d)) / a->dhat, fabs(a->gated - norm_v(g, d)) / a->gated),
                        fmax(fabs(a->first - fst) / fst, fabs(a->actual - act) / act));
        e = fmax(e, fabs(a->norm_ratio - norm_v(dh, d) / norm_v(del, d)) / a->norm_ratio);
        e = fmax(e, fabs(a->abs_gain[STEER_MLP_STAGE_GATE] - abs_gate) / abs_gate);
        e = fmax(e, fabs(a->abs_gain[STEER_MLP_STAGE_IN] - abs_in) / abs_in);
        printf("single-position row vs the branch API (‖Δ̂‖, ‖gated‖, ‖first‖, ‖actual‖, ratio, gains): max rel %.3e (tol "
               "%.0e)\n", e, TOL_MLP_ROW_VS_API);
        CHECK(e <= TOL_MLP_ROW_VS_API, "row differs from the branch API");
        free(x); free(del); free(dh); free(g); free(u); free(y0); free(y1); free(xs);
        steer_mlp_branch_free(b);
        steer_mlp_result_free(r1);
        steer_data_free(one);
    }
    steer_ctx_free(c);

    /* files: counts sum to the number of values; both models share the bins */
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/out", tmpdir);
    const steer_mlp_result *rs[2] = {rb, rf};
    steer_mlp_info info = {"winogrande:dev", "test", NULL, "random.safetensors"};
    CHECK_OK(steer_mlp_write(rs, 2, &info, dir));
    snprintf(path, sizeof path, "%s/hist.csv", dir);
    char *text = tu_read_file(path, NULL);
    /* sums[model][q][layer], and the bin edges of each (model, q, layer) */
    long sums[2][2][8] = {{{0}}};
    int nbins[2][2][8] = {{{0}}};
    static double edges[2][2][8][512][2];
    int bad = 0, rows = 0;
    char *save = NULL;
    for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        if (rows++ == 0) {
            CHECK(strcmp(ln, "model,quantity,layer,bin_lo,bin_hi,count") == 0, "hist.csv header: %s", ln);
            continue;
        }
        char mod[32], q[8];
        int layer;
        double lo, hi;
        long cnt;
        if (sscanf(ln, "%31[^,],%7[^,],%d,%lf,%lf,%ld", mod, q, &layer, &lo, &hi, &cnt) != 6 || layer < 0 ||
            layer >= 8) {
            bad++;
            continue;
        }
        int mi = strcmp(mod, "ft") == 0, qi = strcmp(q, "g2") == 0;
        sums[mi][qi][layer] += cnt;
        int k = nbins[mi][qi][layer]++;
        if (k < 512) {
            edges[mi][qi][layer][k][0] = lo;
            edges[mi][qi][layer][k][1] = hi;
        }
    }
    free(text);
    CHECK(bad == 0, "%d malformed hist.csv rows", bad);
    int sum_ok = 1, bins_ok = 1;
    for (int mi = 0; mi < 2; mi++)
        for (int qi = 0; qi < 2; qi++)
            for (int ll = 0; ll < L; ll++) sum_ok &= sums[mi][qi][ll] == (long)N * f;
    for (int qi = 0; qi < 2; qi++)
        for (int ll = 0; ll < L; ll++) {
            bins_ok &= nbins[0][qi][ll] == nbins[1][qi][ll] && nbins[0][qi][ll] > 1 && nbins[0][qi][ll] <= 512;
            for (int k = 0; bins_ok && k < nbins[0][qi][ll]; k++)
                bins_ok &= edges[0][qi][ll][k][0] == edges[1][qi][ll][k][0] &&
                           edges[0][qi][ll][k][1] == edges[1][qi][ll][k][1];
        }
    printf("hist.csv: %d rows; counts sum to positions × d_ff = %d for every (model, term, layer): %s; the two "
           "models' bins are identical: %s (%d bins of |g1| incl. underflow)\n", rows - 1, N * f, sum_ok ? "yes" : "NO",
           bins_ok ? "yes" : "NO", nbins[0][0][0]);
    CHECK(sum_ok, "histogram counts do not sum to the number of values");
    CHECK(bins_ok, "bins differ between the models");

    /* attenuation.csv reads back */
    steer_mlp_att *back;
    int nback;
    snprintf(path, sizeof path, "%s/attenuation.csv", dir);
    CHECK_OK(steer_mlp_read_attenuation(path, &back, &nback));
    CHECK(nback == 4 * L, "attenuation rows read %d", nback);
    double rt = 0;
    for (int k = 0; k < nback && k < 2 * L; k++) {
        const steer_mlp_att *a = steer_mlp_result_att(rb, k);
        rt = fmax(rt, fabs(back[k].actual - a->actual) / a->actual);
        rt = fmax(rt, fabs(back[k].gain[STEER_MLP_STAGE_GATE] - a->gain[STEER_MLP_STAGE_GATE]) /
                          a->gain[STEER_MLP_STAGE_GATE]);
        rt = fmax(rt, fabs(back[k].abs_gain[STEER_MLP_STAGE_DOWN] - a->abs_gain[STEER_MLP_STAGE_DOWN]) /
                          a->abs_gain[STEER_MLP_STAGE_DOWN]);
        CHECK(back[k].layer == a->layer && back[k].site == a->site && strcmp(back[k].model, "base") == 0,
              "row %d differs", k);
    }
    printf("attenuation.csv round trip: max rel %.3e (tol %.0e)\n", rt, TOL_MLP_CSV);
    CHECK(rt <= TOL_MLP_CSV, "attenuation.csv does not read back");
    free(back);

    /* the report: a section with a line per (model, site, layer) */
    char html[600], md[600];
    snprintf(html, sizeof html, "%s/report.html", tmpdir);
    snprintf(md, sizeof md, "%s/report.md", tmpdir);
    const char *dirs[1] = {dir};
    steer_report_params rp = {html, md, "test"};
    CHECK_OK(steer_report_write(dirs, 1, &rp));
    text = tu_read_file(md, NULL);
    int lines = 0;
    for (char *q = text; (q = strstr(q, "\n- layer ")); q++) lines++;
    printf("report: %d 'layer …' lines in the Markdown (expect %d); first: ", lines, 4 * L);
    char *first = strstr(text, "\n- layer ");
    if (first) {
        char *e = strchr(first + 1, '\n');
        printf("%.*s\n", e ? (int)(e - first - 1) : 80, first + 1);
    } else
        printf("none\n");
    CHECK(lines == 4 * L, "report has %d lines", lines);
    CHECK(strstr(text, "MLP modulation and attenuation") != NULL, "no section title");
    free(text);

    steer_mlp_result_free(rb);
    steer_mlp_result_free(rf);
    steer_vecset_free(vs);
    steer_data_free(data);
}

/* ---------------------------------------------------------------- bad input */

static void test_bad_input(steer_model *B, steer_model *gemma)
{
    const int d = B->cfg.d_model, L = B->cfg.n_layer;
    steer_dataset *data;
    steer_data_params dp = steer_data_default_params();
    dp.n_max = 2;
    CHECK_OK(steer_data_load("winogrande:" STEER_TESTDATA_DIR "/winogrande/dev.jsonl", &dp, &data));
    steer_mlp_params p = steer_mlp_default_params();
    steer_mlp_result *r = NULL;
    steer_mlp_branch *b = NULL;

    /* an MLP without a gate projection: no loader makes one today, so the
     * model is altered in memory */
    const void *keep = B->layers[1].w_gate.data;
    B->layers[1].w_gate.data = NULL;
    int rc = steer_mlp_branch_new(B, 1, &b);
    printf("ungated MLP (branch): rc %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EUNSUPPORTED && strstr(steer_last_error(), "not gated") && !b, "ungated MLP not refused");
    rc = steer_mlp_run(B, "base", data, &p, &r);
    printf("ungated MLP (run): rc %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EUNSUPPORTED && strstr(steer_last_error(), "layer 1") && !r, "ungated MLP not refused");
    B->layers[1].w_gate.data = keep;

    /* vectors of another width */
    steer_vecset *vs;
    CHECK_OK(steer_vecset_new(&vs));
    float v[128] = {0};
    v[0] = 1;
    for (int l = 0; l < L; l++) CHECK_OK(steer_vecset_set(vs, STEER_SITE_ATTN_OUT, l, 0, 32, v));
    p.vectors = vs;
    p.vectors_path = "w32.safetensors";
    rc = steer_mlp_run(B, "base", data, &p, &r);
    printf("vectors 32 wide: rc %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "w32.safetensors") && strstr(steer_last_error(), "32"),
          "width mismatch not refused");
    steer_vecset_free(vs);

    /* vectors made for another architecture (right width) */
    CHECK_OK(steer_vecset_new(&vs));
    for (int l = 0; l < L; l++) CHECK_OK(steer_vecset_set(vs, STEER_SITE_ATTN_OUT, l, 0, d, v));
    CHECK_OK(steer_vecset_set_meta(vs, "model_hint", "gemma2"));
    p.vectors = vs;
    p.vectors_path = "g2.safetensors";
    rc = steer_mlp_run(B, "base", data, &p, &r);
    printf("vectors for gemma2: rc %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "gemma2") && strstr(steer_last_error(), "llama"),
          "model hint mismatch not refused");
    /* the same vectors (5 layers) on the 2-layer gemma2 model */
    rc = steer_mlp_check_vectors(gemma, &p);
    printf("vectors on a gemma model: rc %d: %s\n", rc, steer_last_error());
    CHECK(rc != STEER_OK, "vectors for another model accepted");
    /* a layer without a vector */
    CHECK_OK(steer_vecset_set_meta(vs, "model_hint", "llama"));
    steer_vecset_keep(vs, NULL, (const unsigned char[]){1, 1, 0, 1, 1}, 5);
    rc = steer_mlp_run(B, "base", data, &p, &r);
    printf("no vector at layer 2: rc %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "attn_out.2"), "missing vector not refused");
    /* mlp_out is not a pre-MLP site */
    p.n_sites = 1;
    p.sites[0] = STEER_SITE_MLP_OUT;
    rc = steer_mlp_run(B, "base", data, &p, &r);
    printf("site mlp_out: rc %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "mlp_out"), "mlp_out accepted");
    steer_vecset_free(vs);
    p = steer_mlp_default_params();

    /* no item has completion token 500 */
    p.token = 500;
    rc = steer_mlp_run(B, "base", data, &p, &r);
    printf("token 500: rc %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "skipped"), "no positions not refused");
    p.token = 1;

    /* an item without a completion */
    steer_dataset *nc;
    CHECK_OK(steer_data_new(&nc));
    CHECK_OK(steer_data_add(nc, "q1", "Once upon a time", NULL, -1));
    rc = steer_mlp_run(B, "base", nc, &p, &r);
    printf("no completion: rc %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EFORMAT && strstr(steer_last_error(), "no completion"), "missing completion not refused");
    steer_data_free(nc);
    CHECK(r == NULL, "a result after a failure");
    steer_data_free(data);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_mlp_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "FAIL: mkdtemp\n");
        return 1;
    }
    steer_model *B, *F;
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &B));
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K-winogrande/stories260K-winogrande.bin", NULL, &F));
    steer_model *g1 = random_model(STEER_ARCH_GEMMA, "gemma"), *g2 = random_model(STEER_ARCH_GEMMA2, "gemma2");
    check_branch(B, "stories260K");
    check_branch(g1, "gemma (gelu)");
    check_branch(g2, "gemma2 (post)");
    test_run(B, F);
    test_bad_input(B, g2);
    steer_model_free(g1);
    steer_model_free(g2);
    steer_model_free(B);
    steer_model_free(F);
    plot_release_caches();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return tu_finish("test_mlp_analysis");
}

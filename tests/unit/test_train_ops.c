/*
 * test_train_ops.c — the training op layer (src/train_ops_impl.h).
 *
 * 1. Gradient checks: the ops' code instantiated here in double precision
 *    (REAL = double, names _f64); for every op, on odd shapes, the loss
 *    L = Σ r ⊙ out (r random) is differentiated by the op's backward and by
 *    central finite differences (L(x + h) − L(x − h)) / 2h for EVERY element of
 *    EVERY input and weight. Error = max_i |g_i − fd_i| / max_i |fd_i|
 *    (normwise relative: immune to near-zero components). Gradient buffers are
 *    pre-filled with random values that are subtracted afterwards, so a
 *    backward that overwrites instead of accumulating fails.
 *    Each check must also be able to fail: the same comparison with the
 *    analytic gradient scaled by 1.01 must exceed the tolerance, and three
 *    deliberately wrong backwards (RoPE rotating the wrong way, attention
 *    ignoring its soft-cap, GLU's derivative of the other GELU) must fail.
 * 2. The float instance (the engine's, sgemm matmuls) against the double one,
 *    forward and backward; against the inference ops (ops_rmsnorm, ops_glu,
 *    ops_softcap, ops_matmul); the double forward against naive references
 *    written independently here (attention, RoPE, cross-entropy, KL).
 * 3. Determinism: the float ops give bitwise the same results on 1 and 4
 *    threads.
 */
#include "train_ops.h"
#include "test_util.h"

#include <omp.h>
#include <stdint.h>

/* The double instance of the very same op code. */
#define REAL double
#define R_(name) name##_f64
#define TRAIN_OPS_API static
#include "train_ops_impl.h"
#undef REAL
#undef R_

/* Tolerances and finite-difference steps: tests/unit/tolerances.h (training ops). */

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x5eed1234abcdULL;
static double urand(void) /* uniform in [-1, 1) */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* Every buffer of the test, freed at the end (ASan's leak check). */
static void *allocs[4096];
static int n_allocs = 0;
static void *talloc(size_t bytes)
{
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p || n_allocs == (int)(sizeof allocs / sizeof allocs[0])) { fprintf(stderr, "FAIL: out of memory\n"); exit(1); }
    allocs[n_allocs++] = p;
    return p;
}
static double *dz(size_t n) { return talloc(n * sizeof(double)); }
static double *drand(size_t n, double lo, double hi)
{
    double *x = dz(n);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (urand() + 1.0) / 2.0;
    return x;
}
static float *fz(size_t n) { return talloc(n * sizeof(float)); }
static float *tof(const double *x, size_t n)
{
    float *y = fz(n);
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}
static double dsum_prod(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
/* max|a − b| / max|b| (b the reference). */
static double nrel(const double *a, const double *b, size_t n)
{
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d != d) return INFINITY;
        m = d > m ? d : m;
        s = fabs(b[i]) > s ? fabs(b[i]) : s;
    }
    return s > 0 ? m / s : m;
}
static double nrel_f(const float *a, const double *b, size_t n)
{
    double *ad = dz(n);
    for (size_t i = 0; i < n; i++) ad[i] = a[i];
    return nrel(ad, b, n);
}
static double nrel_ff(const float *a, const float *b, size_t n)
{
    double *bd = dz(n);
    for (size_t i = 0; i < n; i++) bd[i] = b[i];
    return nrel_f(a, bd, n);
}
#define CMP(what, err, tol)                                                                \
    do {                                                                                   \
        double e_ = (err);                                                                 \
        printf("  %-58s rel err %.2e (tol %.0e)\n", (what), e_, (double)(tol));            \
        CHECK(e_ <= (tol), "%s: %.3e > %.1e", (what), e_, (double)(tol));                  \
    } while (0)

/* ---------------------------------------------------------------- gradient check */

typedef double (*fwd_fn)(void *ctx); /* forward in double; returns L = Σ r ⊙ out */
typedef void (*bwd_fn)(void *ctx);   /* backward with dout = r, accumulating into the params' g */

typedef struct {
    const char *name;
    double *x; /* [n] the input perturbed                         */
    double *g; /* [n] its analytic gradient (filled by gradcheck) */
    size_t n;
} gparam;

static struct { char op[48]; double err; double tol; } summary[64];
static int n_summary = 0;

/* Runs bwd on gradient buffers pre-filled with offsets (then subtracted), and
 * central differences for every element of every param. expect_fail = 0:
 * every param must be within tol, and the gradient scaled by 1.01 must not be.
 * expect_fail = 1 (a deliberately wrong backward): some param must exceed tol.
 * Returns the largest error. */
static double gradcheck(const char *op, fwd_fn f, bwd_fn b, void *ctx, gparam *ps, int np, double h, double tol,
                        int expect_fail)
{
    double **off = talloc((size_t)np * sizeof(double *));
    for (int p = 0; p < np; p++) {
        off[p] = drand(ps[p].n, -3, 3);
        memcpy(ps[p].g, off[p], ps[p].n * sizeof(double));
    }
    f(ctx); /* forwards that save activations for their backward */
    b(ctx);
    for (int p = 0; p < np; p++)
        for (size_t i = 0; i < ps[p].n; i++) ps[p].g[i] -= off[p][i];
    double worst = 0;
    for (int p = 0; p < np; p++) {
        double *fd = dz(ps[p].n), *bad = dz(ps[p].n);
        for (size_t i = 0; i < ps[p].n; i++) {
            const double x0 = ps[p].x[i];
            ps[p].x[i] = x0 + h;
            const double lp = f(ctx);
            ps[p].x[i] = x0 - h;
            const double lm = f(ctx);
            ps[p].x[i] = x0;
            fd[i] = (lp - lm) / (2 * h);
            bad[i] = 1.01 * ps[p].g[i];
        }
        const double err = nrel(ps[p].g, fd, ps[p].n), err_bad = nrel(bad, fd, ps[p].n);
        worst = err > worst ? err : worst;
        if (!expect_fail) {
            printf("  gradcheck %-30s d%-6s n=%4zu  rel err %.2e (tol %.0e, h %.0e); x1.01: %.1e\n", op, ps[p].name,
                   ps[p].n, err, tol, h, err_bad);
            CHECK(err <= tol, "%s d%s: %.3e > %.1e", op, ps[p].name, err, tol);
            CHECK(err_bad > tol, "%s d%s: a 1%% error (%.3e) passes tol %.1e", op, ps[p].name, err_bad, tol);
        }
    }
    f(ctx); /* leave the saved activations of the unperturbed inputs */
    if (expect_fail) {
        printf("  wrong backward %-36s rel err %.2e must exceed tol %.0e\n", op, worst, tol);
        CHECK(worst > tol, "deliberately wrong backward %s passes the check (%.3e <= %.1e)", op, worst, tol);
    } else if (n_summary < 64) {
        snprintf(summary[n_summary].op, sizeof summary[n_summary].op, "%s", op);
        summary[n_summary].err = worst;
        summary[n_summary++].tol = tol;
    }
    return worst;
}

/* ---------------------------------------------------------------- embedding */

typedef struct {
    int N, C, V;
    double scale;
    const int *tok;
    double *wte, *out, *r, *dwte;
} emb_case;
static double emb_fwd(void *p)
{
    emb_case *c = p;
    tr_embedding_forward_f64(c->out, c->tok, c->wte, c->N, c->C, c->scale);
    return dsum_prod(c->r, c->out, (size_t)c->N * c->C);
}
static void emb_bwd(void *p)
{
    emb_case *c = p;
    tr_embedding_backward_f64(c->dwte, c->r, c->tok, c->N, c->C, c->scale);
}

static void test_embedding(void)
{
    printf("embedding (V 11, C 7, N 9, repeated tokens, scale sqrt(7))\n");
    static const int tok[9] = {3, 0, 10, 3, 5, 3, 7, 0, 2};
    emb_case c = {.N = 9, .C = 7, .V = 11, .scale = sqrt(7.0), .tok = tok};
    const size_t nw = (size_t)c.V * c.C, no = (size_t)c.N * c.C;
    c.wte = drand(nw, -1, 1), c.out = dz(no), c.r = drand(no, -1, 1), c.dwte = dz(nw);
    gparam ps[] = {{"wte", c.wte, c.dwte, nw}};
    gradcheck("embedding", emb_fwd, emb_bwd, &c, ps, 1, H_LINEAR, TOL_GRAD_LINEAR, 0);
    /* float instance */
    float *out = fz(no), *dw = fz(nw);
    tr_embedding_forward_f32(out, tok, tof(c.wte, nw), c.N, c.C, (float)c.scale);
    tr_embedding_backward_f32(dw, tof(c.r, no), tok, c.N, c.C, (float)c.scale);
    CMP("embedding f32 vs f64 forward", nrel_f(out, c.out, no), TOL_F32_VS_F64);
    CMP("embedding f32 vs f64 dwte", nrel_f(dw, c.dwte, nw), TOL_F32_VS_F64);
    CHECK(c.out[(size_t)2 * c.C + 4] == c.scale * c.wte[(size_t)10 * c.C + 4], "embedding row gather");
}

/* ---------------------------------------------------------------- matmul */

typedef struct {
    int N, C, OC;
    double *inp, *W, *b, *out, *r, *dinp, *dW, *db;
} mm_case;
static double mm_fwd(void *p)
{
    mm_case *c = p;
    tr_matmul_forward_f64(c->out, c->inp, c->W, c->b, c->N, c->C, c->OC);
    return dsum_prod(c->r, c->out, (size_t)c->N * c->OC);
}
static void mm_bwd(void *p)
{
    mm_case *c = p;
    tr_matmul_backward_f64(c->dinp, c->dW, c->db, c->r, c->inp, c->W, c->N, c->C, c->OC);
}

static void test_matmul(void)
{
    printf("matmul (N 5, C 13, OC 7, bias)\n");
    mm_case c = {.N = 5, .C = 13, .OC = 7};
    const size_t ni = (size_t)c.N * c.C, nw = (size_t)c.OC * c.C, no = (size_t)c.N * c.OC;
    c.inp = drand(ni, -1, 1), c.W = drand(nw, -1, 1), c.b = drand(c.OC, -1, 1), c.out = dz(no);
    c.r = drand(no, -1, 1), c.dinp = dz(ni), c.dW = dz(nw), c.db = dz(c.OC);
    gparam ps[] = {{"inp", c.inp, c.dinp, ni}, {"W", c.W, c.dW, nw}, {"bias", c.b, c.db, (size_t)c.OC}};
    gradcheck("matmul", mm_fwd, mm_bwd, &c, ps, 3, H_LINEAR, TOL_GRAD_LINEAR, 0);

    /* float (sgemm) vs double, forward and backward */
    float *fi = tof(c.inp, ni), *fw = tof(c.W, nw), *fb = tof(c.b, (size_t)c.OC), *fo = fz(no);
    float *fdi = fz(ni), *fdw = fz(nw), *fdb = fz(c.OC);
    tr_matmul_forward_f32(fo, fi, fw, fb, c.N, c.C, c.OC);
    tr_matmul_backward_f32(fdi, fdw, fdb, tof(c.r, no), fi, fw, c.N, c.C, c.OC);
    CMP("matmul f32 vs f64 forward", nrel_f(fo, c.out, no), TOL_F32_VS_F64);
    CMP("matmul f32 vs f64 dinp", nrel_f(fdi, c.dinp, ni), TOL_F32_VS_F64);
    CMP("matmul f32 vs f64 dW", nrel_f(fdw, c.dW, nw), TOL_F32_VS_F64);
    CMP("matmul f32 vs f64 dbias", nrel_f(fdb, c.db, c.OC), TOL_F32_VS_F64);
    /* no bias, NULL gradients skipped; vs the inference matmul kernel */
    float *fo2 = fz(no), *fo3 = fz(no);
    tr_matmul_forward_f32(fo2, fi, fw, NULL, c.N, c.C, c.OC);
    steer_mat M = {.data = fw, .dtype = STEER_DTYPE_F32, .rows = c.OC, .cols = c.C};
    ops_matmul(fo3, fi, &M, c.N);
    CMP("matmul f32 (no bias) vs ops_matmul", nrel_ff(fo2, fo3, no), TOL_F32_VS_INFERENCE);
    float *fdi2 = fz(ni);
    tr_matmul_backward_f32(fdi2, NULL, NULL, tof(c.r, no), fi, fw, c.N, c.C, c.OC);
    CHECK(memcmp(fdi2, fdi, ni * sizeof(float)) == 0, "matmul dinp with dW = dbias = NULL differs");

    /* a shape of several sgemm tiles (64 x 256) with ragged edges, f32 vs f64 */
    {
        const int N = 130, C = 37, OC = 270;
        const size_t ni2 = (size_t)N * C, nw2 = (size_t)OC * C, no2 = (size_t)N * OC;
        double *x = drand(ni2, -1, 1), *W = drand(nw2, -1, 1), *b = drand(OC, -1, 1), *g = drand(no2, -1, 1);
        double *o = dz(no2), *dx = dz(ni2), *dW = dz(nw2), *db = dz(OC);
        tr_matmul_forward_f64(o, x, W, b, N, C, OC);
        tr_matmul_backward_f64(dx, dW, db, g, x, W, N, C, OC);
        float *fx = tof(x, ni2), *fW = tof(W, nw2), *fo4 = fz(no2), *fdx = fz(ni2), *fdW4 = fz(nw2), *fdb4 = fz(OC);
        tr_matmul_forward_f32(fo4, fx, fW, tof(b, OC), N, C, OC);
        tr_matmul_backward_f32(fdx, fdW4, fdb4, tof(g, no2), fx, fW, N, C, OC);
        CMP("matmul 130x37x270 (tiled sgemm) f32 vs f64 forward", nrel_f(fo4, o, no2), TOL_F32_VS_F64);
        CMP("matmul 130x37x270 (tiled sgemm) f32 vs f64 dinp", nrel_f(fdx, dx, ni2), TOL_F32_VS_F64);
        CMP("matmul 130x37x270 (tiled sgemm) f32 vs f64 dW", nrel_f(fdW4, dW, nw2), TOL_F32_VS_F64);
        CMP("matmul 130x37x270 (tiled sgemm) f32 vs f64 dbias", nrel_f(fdb4, db, OC), TOL_F32_VS_F64);
    }
}

/* ---------------------------------------------------------------- RMSNorm */

typedef struct {
    int N, C;
    double eps;
    double *inp, *w, *out, *rstd, *r, *dinp, *dw;
} rms_case;
static double rms_fwd(void *p)
{
    rms_case *c = p;
    tr_rmsnorm_forward_f64(c->out, c->rstd, c->inp, c->w, c->N, c->C, c->eps);
    return dsum_prod(c->r, c->out, (size_t)c->N * c->C);
}
static void rms_bwd(void *p)
{
    rms_case *c = p;
    tr_rmsnorm_backward_f64(c->dinp, c->dw, c->r, c->inp, c->w, c->rstd, c->N, c->C);
}

static void test_rmsnorm_case(const char *op, int N, int C, double eps)
{
    rms_case c = {.N = N, .C = C, .eps = eps};
    const size_t n = (size_t)N * C;
    c.inp = drand(n, -2, 2), c.w = drand(C, 0.5, 1.5), c.out = dz(n), c.rstd = dz(N), c.r = drand(n, -1, 1);
    c.dinp = dz(n), c.dw = dz(C);
    c.inp[3] *= 1e-3; /* a row with a tiny element and one of small norm: eps matters */
    for (int j = 0; j < C; j++) c.inp[(size_t)(N - 1) * C + j] *= 1e-2;
    gparam ps[] = {{"inp", c.inp, c.dinp, n}, {"weight", c.w, c.dw, (size_t)C}};
    gradcheck(op, rms_fwd, rms_bwd, &c, ps, 2, H_RMSNORM, TOL_GRAD_SMOOTH, 0);

    float *fi = tof(c.inp, n), *fw = tof(c.w, C), *fo = fz(n), *fr = fz(N), *fdi = fz(n), *fdw = fz(C), *fo2 = fz(n);
    tr_rmsnorm_forward_f32(fo, fr, fi, fw, N, C, (float)eps);
    tr_rmsnorm_backward_f32(fdi, fdw, tof(c.r, n), fi, fw, fr, N, C);
    char what[96];
    snprintf(what, sizeof what, "%s f32 vs f64 forward", op);
    CMP(what, nrel_f(fo, c.out, n), TOL_F32_VS_F64);
    snprintf(what, sizeof what, "%s f32 vs f64 dinp", op);
    CMP(what, nrel_f(fdi, c.dinp, n), TOL_F32_VS_F64);
    snprintf(what, sizeof what, "%s f32 vs f64 dweight", op);
    CMP(what, nrel_f(fdw, c.dw, C), TOL_F32_VS_F64);
    float *fdi2 = fz(n), *fdw2 = fz(C); /* NULL gradients are skipped, the others unchanged */
    tr_rmsnorm_backward_f32(fdi2, NULL, tof(c.r, n), fi, fw, fr, N, C);
    tr_rmsnorm_backward_f32(NULL, fdw2, tof(c.r, n), fi, fw, fr, N, C);
    CHECK(memcmp(fdi2, fdi, n * sizeof(float)) == 0 && memcmp(fdw2, fdw, C * sizeof(float)) == 0,
          "%s: backward with a NULL gradient changes the other", op);
    ops_rmsnorm(fo2, fi, fw, N, C, (float)eps);
    snprintf(what, sizeof what, "%s f32 vs ops_rmsnorm", op);
    CMP(what, nrel_ff(fo, fo2, n), TOL_F32_VS_INFERENCE);
}

static void test_rmsnorm(void)
{
    printf("rmsnorm (N 5, C 13) and per-head q/k norm (N 5 x H 3 rows, head_dim 6)\n");
    test_rmsnorm_case("rmsnorm", 5, 13, 1e-5);
    test_rmsnorm_case("rmsnorm per-head", 5 * 3, 6, 1e-6);
}

/* ---------------------------------------------------------------- RoPE */

typedef struct {
    int N, H, hd;
    rope_style style;
    const int *pos;
    double *cs, *sn, *sn_bwd, *inp, *out, *r, *dinp;
} rope_case;
static double rope_fwd(void *p)
{
    rope_case *c = p;
    tr_rope_forward_f64(c->out, c->inp, c->cs, c->sn, c->pos, c->N, c->H, c->hd, c->style);
    return dsum_prod(c->r, c->out, (size_t)c->N * c->H * c->hd);
}
static void rope_bwd(void *p)
{
    rope_case *c = p;
    tr_rope_backward_f64(c->dinp, c->r, c->cs, c->sn_bwd, c->pos, c->N, c->H, c->hd, c->style);
}

static void test_rope(void)
{
    printf("rope (N 5, H 3, head_dim 6, positions 0 2 3 7 4, both pairings)\n");
    static const int pos[5] = {0, 2, 3, 7, 4};
    const int N = 5, H = 3, hd = 6, half = 3, P = 8;
    const size_t n = (size_t)N * H * hd;
    double *cs = dz((size_t)P * half), *sn = dz((size_t)P * half), *nsn = dz((size_t)P * half);
    double inv_freq[3];
    for (int i = 0; i < half; i++) inv_freq[i] = pow(10.0, -2.0 * i / hd); /* base 10: large angles */
    for (int p = 0; p < P; p++)
        for (int i = 0; i < half; i++) {
            cs[p * half + i] = cos(p * inv_freq[i]);
            sn[p * half + i] = sin(p * inv_freq[i]);
            nsn[p * half + i] = -sn[p * half + i];
        }
    for (int st = 0; st < 2; st++) {
        const rope_style style = st ? ROPE_HALF : ROPE_ADJACENT;
        const char *name = st ? "rope rotate-half" : "rope adjacent";
        rope_case c = {.N = N, .H = H, .hd = hd, .style = style, .pos = pos, .cs = cs, .sn = sn, .sn_bwd = sn};
        c.inp = drand(n, -1, 1), c.out = dz(n), c.r = drand(n, -1, 1), c.dinp = dz(n);
        gparam ps[] = {{"inp", c.inp, c.dinp, n}};
        gradcheck(name, rope_fwd, rope_bwd, &c, ps, 1, H_LINEAR, TOL_GRAD_LINEAR, 0);
        /* naive reference: pair (a, b) as a + ib times e^{i·pos·inv_freq} */
        double *ref = dz(n);
        for (int t = 0; t < N; t++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < half; i++) {
                    const size_t base = ((size_t)t * H + h) * hd;
                    const size_t j0 = base + (st ? (size_t)i : 2 * (size_t)i), j1 = base + (st ? (size_t)(i + half) : 2 * (size_t)i + 1);
                    const double th = pos[t] * inv_freq[i], a = c.inp[j0], b = c.inp[j1];
                    ref[j0] = a * cos(th) - b * sin(th);
                    ref[j1] = b * cos(th) + a * sin(th);
                }
        char what[96];
        snprintf(what, sizeof what, "%s f64 vs complex-multiply reference", name);
        CMP(what, nrel(c.out, ref, n), TOL_F64_REFERENCE);
        /* float; and in place (out == inp) */
        float *fi = tof(c.inp, n), *fo = fz(n), *fd = fz(n), *fcs = tof(cs, (size_t)P * half), *fsn = tof(sn, (size_t)P * half);
        tr_rope_forward_f32(fo, fi, fcs, fsn, pos, N, H, hd, style);
        tr_rope_backward_f32(fd, tof(c.r, n), fcs, fsn, pos, N, H, hd, style);
        snprintf(what, sizeof what, "%s f32 vs f64 forward", name);
        CMP(what, nrel_f(fo, c.out, n), TOL_F32_VS_F64);
        snprintf(what, sizeof what, "%s f32 vs f64 dinp", name);
        CMP(what, nrel_f(fd, c.dinp, n), TOL_F32_VS_F64);
        tr_rope_forward_f32(fi, fi, fcs, fsn, pos, N, H, hd, style);
        CHECK(memcmp(fi, fo, n * sizeof(float)) == 0, "%s in place differs", name);
        /* deliberately wrong: the backward rotating by +θ (the forward's way) */
        c.sn_bwd = nsn;
        char wrong[96];
        snprintf(wrong, sizeof wrong, "%s backward by +theta", name);
        gradcheck(wrong, rope_fwd, rope_bwd, &c, ps, 1, H_LINEAR, TOL_GRAD_LINEAR, 1);
    }
}

/* ---------------------------------------------------------------- attention */

typedef struct {
    int B, T, H, KV, hd, window;
    double scale, softcap, softcap_bwd;
    double *q, *k, *v, *out, *att, *r, *dq, *dk, *dv, *dsc;
} att_case;
static double att_fwd(void *p)
{
    att_case *c = p;
    tr_attention_forward_f64(c->out, c->att, c->q, c->k, c->v, c->B, c->T, c->H, c->KV, c->hd, c->scale, c->softcap,
                             c->window);
    return dsum_prod(c->r, c->out, (size_t)c->B * c->T * c->H * c->hd);
}
static void att_bwd(void *p)
{
    att_case *c = p;
    tr_attention_backward_f64(c->dq, c->dk, c->dv, c->dsc, c->r, c->q, c->k, c->v, c->att, c->B, c->T, c->H, c->KV,
                              c->hd, c->scale, c->softcap_bwd, c->window);
}

/* Naive attention in double: explicit mask test, softmax without shifting. */
static void att_reference(double *out, const att_case *c)
{
    const int B = c->B, T = c->T, H = c->H, KV = c->KV, hd = c->hd;
    double *p = dz((size_t)T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const int kh = h * KV / H; /* = h / (H/KV) */
                double Z = 0;
                for (int s = 0; s < T; s++) {
                    const int visible = s <= t && (c->window <= 0 || t - s < c->window);
                    double x = 0;
                    for (int j = 0; j < hd; j++)
                        x += c->q[(((size_t)b * T + t) * H + h) * hd + j] * c->k[(((size_t)b * T + s) * KV + kh) * hd + j];
                    x *= c->scale;
                    if (c->softcap > 0) x = c->softcap * tanh(x / c->softcap);
                    p[s] = visible ? exp(x) : 0.0;
                    Z += p[s];
                }
                for (int j = 0; j < hd; j++) {
                    double o = 0;
                    for (int s = 0; s < T; s++) o += p[s] / Z * c->v[(((size_t)b * T + s) * KV + kh) * hd + j];
                    out[(((size_t)b * T + t) * H + h) * hd + j] = o;
                }
            }
}

static void test_attention_case(const char *op, int B, int T, int H, int KV, int hd, int window, double softcap)
{
    att_case c = {.B = B, .T = T, .H = H, .KV = KV, .hd = hd, .window = window, .scale = 1.0 / sqrt((double)hd),
                  .softcap = softcap, .softcap_bwd = softcap};
    const size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd, na = (size_t)B * H * T * T;
    /* entries up to 2: scores up to ~4, so a cap of 2 bends them strongly */
    c.q = drand(nq, -2, 2), c.k = drand(nk, -2, 2), c.v = drand(nk, -1, 1), c.out = dz(nq), c.att = dz(na);
    c.r = drand(nq, -1, 1), c.dq = dz(nq), c.dk = dz(nk), c.dv = dz(nk), c.dsc = dz(na);
    gparam ps[] = {{"q", c.q, c.dq, nq}, {"k", c.k, c.dk, nk}, {"v", c.v, c.dv, nk}};
    gradcheck(op, att_fwd, att_bwd, &c, ps, 3, H_SMOOTH, TOL_GRAD_SMOOTH, 0);

    char what[128];
    double *ref = dz(nq);
    att_reference(ref, &c); /* gradcheck left c's outputs and gradients unperturbed */
    snprintf(what, sizeof what, "%s f64 vs naive reference", op);
    CMP(what, nrel(c.out, ref, nq), TOL_F64_REFERENCE);
    /* masked probabilities are exactly 0, rows sum to 1 */
    double worst_sum = 0;
    int mask_ok = 1;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const double *a = c.att + (((size_t)b * H + h) * T + t) * T;
                double s = 0;
                for (int u = 0; u < T; u++) {
                    const int visible = u <= t && (window <= 0 || t - u < window);
                    if (!visible && a[u] != 0.0) mask_ok = 0;
                    if (visible && !(a[u] > 0.0)) mask_ok = 0;
                    s += a[u];
                }
                worst_sum = fabs(s - 1) > worst_sum ? fabs(s - 1) : worst_sum;
            }
    CHECK(mask_ok, "%s: probabilities do not follow the causal/window mask", op);
    CHECK(worst_sum < 1e-14, "%s: probability rows sum to 1 ± %.2e", op, worst_sum);

    float *fq = tof(c.q, nq), *fk = tof(c.k, nk), *fv = tof(c.v, nk), *fo = fz(nq), *fa = fz(na);
    float *fdq = fz(nq), *fdk = fz(nk), *fdv = fz(nk), *fds = fz(na);
    tr_attention_forward_f32(fo, fa, fq, fk, fv, B, T, H, KV, hd, (float)c.scale, (float)softcap, window);
    tr_attention_backward_f32(fdq, fdk, fdv, fds, tof(c.r, nq), fq, fk, fv, fa, B, T, H, KV, hd, (float)c.scale,
                              (float)softcap, window);
    snprintf(what, sizeof what, "%s f32 vs f64 forward", op);
    CMP(what, nrel_f(fo, c.out, nq), TOL_F32_VS_F64);
    snprintf(what, sizeof what, "%s f32 vs f64 probabilities", op);
    CMP(what, nrel_f(fa, c.att, na), TOL_F32_VS_F64);
    snprintf(what, sizeof what, "%s f32 vs f64 dq", op);
    CMP(what, nrel_f(fdq, c.dq, nq), TOL_F32_VS_F64);
    snprintf(what, sizeof what, "%s f32 vs f64 dk", op);
    CMP(what, nrel_f(fdk, c.dk, nk), TOL_F32_VS_F64);
    snprintf(what, sizeof what, "%s f32 vs f64 dv", op);
    CMP(what, nrel_f(fdv, c.dv, nk), TOL_F32_VS_F64);

    if (softcap > 0) { /* deliberately wrong: the backward ignores the soft-cap */
        c.softcap_bwd = 0;
        snprintf(what, sizeof what, "%s backward without cap", op);
        gradcheck(what, att_fwd, att_bwd, &c, ps, 3, H_SMOOTH, TOL_GRAD_SMOOTH, 1);
    }
}

static void test_attention(void)
{
    printf("attention (B 2, T 5, head_dim 6; and head_dim 10)\n");
    test_attention_case("attention GQA H3/KV1 win3 cap2", 2, 5, 3, 1, 6, 3, 2.0);
    test_attention_case("attention MHA H3/KV3", 2, 5, 3, 3, 6, 0, 0.0);
    test_attention_case("attention GQA H4/KV2 win2 T7", 1, 7, 4, 2, 6, 2, 0.0);
    /* head_dim 10: the 8-wide blocks of the dot/axpy helpers plus a tail */
    test_attention_case("attention GQA H2/KV1 hd10 cap5", 2, 4, 2, 1, 10, 0, 5.0);
}

/* ---------------------------------------------------------------- GLU */

typedef struct {
    size_t n;
    steer_act act, act_bwd;
    double *g, *u, *out, *r, *dg, *du;
} glu_case;
static double glu_fwd(void *p)
{
    glu_case *c = p;
    tr_glu_forward_f64(c->out, c->g, c->u, c->n, c->act);
    return dsum_prod(c->r, c->out, c->n);
}
static void glu_bwd(void *p)
{
    glu_case *c = p;
    tr_glu_backward_f64(c->dg, c->du, c->r, c->g, c->u, c->n, c->act_bwd);
}

static void test_glu(void)
{
    printf("glu (n 37, gate in [-4, 4])\n");
    static const char *names[3] = {"glu silu", "glu gelu-tanh", "glu gelu-erf"};
    const size_t n = 37;
    for (int a = 0; a < 3; a++) {
        glu_case c = {.n = n, .act = (steer_act)a, .act_bwd = (steer_act)a};
        c.g = drand(n, -4, 4), c.u = drand(n, -2, 2), c.out = dz(n), c.r = drand(n, -1, 1), c.dg = dz(n), c.du = dz(n);
        gparam ps[] = {{"g", c.g, c.dg, n}, {"u", c.u, c.du, n}};
        gradcheck(names[a], glu_fwd, glu_bwd, &c, ps, 2, H_SMOOTH, TOL_GRAD_SMOOTH, 0);
        float *fg = tof(c.g, n), *fu = tof(c.u, n), *fo = fz(n), *fo2 = fz(n), *fdg = fz(n), *fdu = fz(n);
        tr_glu_forward_f32(fo, fg, fu, n, c.act);
        tr_glu_backward_f32(fdg, fdu, tof(c.r, n), fg, fu, n, c.act);
        char what[96];
        snprintf(what, sizeof what, "%s f32 vs f64 forward", names[a]);
        CMP(what, nrel_f(fo, c.out, n), TOL_F32_VS_F64);
        snprintf(what, sizeof what, "%s f32 vs f64 dg", names[a]);
        CMP(what, nrel_f(fdg, c.dg, n), TOL_F32_VS_F64);
        snprintf(what, sizeof what, "%s f32 vs f64 du", names[a]);
        CMP(what, nrel_f(fdu, c.du, n), TOL_F32_VS_F64);
        ops_glu(fo2, fg, fu, n, c.act);
        snprintf(what, sizeof what, "%s f32 vs ops_glu", names[a]);
        CMP(what, nrel_ff(fo, fo2, n), TOL_F32_VS_INFERENCE);
        if (a == STEER_ACT_GELU) { /* deliberately wrong: the tanh approximation's derivative */
            c.act_bwd = STEER_ACT_GELU_TANH;
            gradcheck("glu gelu-erf with gelu-tanh backward", glu_fwd, glu_bwd, &c, ps, 2, H_SMOOTH, TOL_GRAD_SMOOTH,
                      1);
        }
    }
}

/* ---------------------------------------------------------------- soft-cap, residual */

typedef struct {
    size_t n;
    double cap;
    double *inp, *out, *r, *dinp;
} cap_case;
static double cap_fwd(void *p)
{
    cap_case *c = p;
    tr_softcap_forward_f64(c->out, c->inp, c->n, c->cap);
    return dsum_prod(c->r, c->out, c->n);
}
static void cap_bwd(void *p)
{
    cap_case *c = p;
    tr_softcap_backward_f64(c->dinp, c->r, c->out, c->n, c->cap);
}

typedef struct {
    size_t n;
    double *a, *b, *out, *r, *da, *db;
} res_case;
static double res_fwd(void *p)
{
    res_case *c = p;
    tr_residual_forward_f64(c->out, c->a, c->b, c->n);
    return dsum_prod(c->r, c->out, c->n);
}
static void res_bwd(void *p)
{
    res_case *c = p;
    tr_residual_backward_f64(c->da, c->db, c->r, c->n);
}

static void test_softcap_residual(void)
{
    printf("softcap (n 37, cap 2, inputs in [-6, 6]) and residual (n 13)\n");
    const size_t n = 37;
    cap_case c = {.n = n, .cap = 2.0};
    c.inp = drand(n, -6, 6), c.out = dz(n), c.r = drand(n, -1, 1), c.dinp = dz(n);
    gparam ps[] = {{"inp", c.inp, c.dinp, n}};
    gradcheck("softcap", cap_fwd, cap_bwd, &c, ps, 1, H_SMOOTH, TOL_GRAD_SMOOTH, 0);
    float *fi = tof(c.inp, n), *fo = fz(n), *fd = fz(n), *fo2 = tof(c.inp, n);
    tr_softcap_forward_f32(fo, fi, n, 2.0f);
    tr_softcap_backward_f32(fd, tof(c.r, n), fo, n, 2.0f);
    CMP("softcap f32 vs f64 forward", nrel_f(fo, c.out, n), TOL_F32_VS_F64);
    CMP("softcap f32 vs f64 dinp", nrel_f(fd, c.dinp, n), TOL_F32_VS_F64);
    ops_softcap(fo2, n, 2.0f);
    CMP("softcap f32 vs ops_softcap", nrel_ff(fo, fo2, n), TOL_F32_VS_INFERENCE);
    tr_softcap_forward_f32(fi, fi, n, 2.0f);
    CHECK(memcmp(fi, fo, n * sizeof(float)) == 0, "softcap in place differs");

    const size_t m = 13;
    res_case rc = {.n = m};
    rc.a = drand(m, -1, 1), rc.b = drand(m, -1, 1), rc.out = dz(m), rc.r = drand(m, -1, 1), rc.da = dz(m), rc.db = dz(m);
    gparam rp[] = {{"a", rc.a, rc.da, m}, {"b", rc.b, rc.db, m}};
    gradcheck("residual", res_fwd, res_bwd, &rc, rp, 2, H_LINEAR, TOL_GRAD_LINEAR, 0);
    float *fa = tof(rc.a, m), *fb = tof(rc.b, m), *fr = fz(m);
    tr_residual_forward_f32(fr, fa, fb, m);
    tr_residual_forward_f32(fa, fa, fb, m);
    CHECK(memcmp(fa, fr, m * sizeof(float)) == 0, "residual in place differs");
}

/* ---------------------------------------------------------------- losses */

typedef struct {
    int N, V, kind; /* 0 cross-entropy, 1 KL(teacher‖student), 2 KL(student‖teacher) */
    const int *targets, *mask;
    double *logits, *tlogp, *losses, *r, *dlogits;
    int counted;
} loss_case;
static double loss_fwd(void *p)
{
    loss_case *c = p;
    if (c->kind == 0) c->counted = tr_crossentropy_forward_f64(c->losses, c->logits, c->targets, c->N, c->V);
    else if (c->kind == 1) c->counted = tr_kl_forward_f64(c->losses, c->logits, c->tlogp, c->mask, c->N, c->V);
    else c->counted = tr_kl_reverse_forward_f64(c->losses, c->logits, c->tlogp, c->mask, c->N, c->V);
    return dsum_prod(c->r, c->losses, (size_t)c->N);
}
static void loss_bwd(void *p)
{
    loss_case *c = p;
    if (c->kind == 0) tr_crossentropy_softmax_backward_f64(c->dlogits, c->r, c->logits, c->targets, c->N, c->V);
    else if (c->kind == 1) tr_kl_backward_f64(c->dlogits, c->r, c->logits, c->tlogp, c->mask, c->N, c->V);
    else tr_kl_reverse_backward_f64(c->dlogits, c->r, c->logits, c->tlogp, c->mask, c->N, c->V);
}

/* log-softmax of rows of z [N, V] in double, the naive way */
static double *log_softmax_rows(const double *z, int N, int V)
{
    double *out = dz((size_t)N * V);
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int v = 0; v < V; v++) s += exp(z[(size_t)n * V + v]);
        for (int v = 0; v < V; v++) out[(size_t)n * V + v] = z[(size_t)n * V + v] - log(s);
    }
    return out;
}

static void test_losses(void)
{
    printf("losses (N 6, V 13; targets 3 -1 0 12 -1 7; KL mask 1 0 1 1 1 0)\n");
    enum { N = 6, V = 13 };
    static const int targets[N] = {3, -1, 0, 12, -1, 7}, mask[N] = {1, 0, 1, 1, 1, 0};
    static const char *names[3] = {"cross-entropy", "kl(teacher||student)", "kl(student||teacher)"};
    const size_t nl = (size_t)N * V;
    for (int kind = 0; kind < 3; kind++) {
        loss_case c = {.N = N, .V = V, .kind = kind, .targets = targets, .mask = mask};
        c.logits = drand(nl, -3, 3), c.losses = dz(N), c.r = drand(N, -1, 1), c.dlogits = dz(nl);
        double *tz = drand(nl, -3, 3);
        if (kind == 1) tz[2 * V + 5] = -INFINITY; /* a token the teacher rules out (p = 0) */
        c.tlogp = log_softmax_rows(tz, N, V);
        gparam ps[] = {{"logits", c.logits, c.dlogits, nl}};
        gradcheck(names[kind], loss_fwd, loss_bwd, &c, ps, 1, H_SMOOTH, TOL_GRAD_SMOOTH, 0);
        CHECK(c.counted == 4, "%s counts %d rows, want 4", names[kind], c.counted);

        /* naive reference values; ignored rows: loss 0 and no gradient */
        double *ref = dz(N), *lq = log_softmax_rows(c.logits, N, V);
        int ignored_ok = 1;
        for (int n = 0; n < N; n++) {
            const int in = kind == 0 ? targets[n] >= 0 : mask[n] != 0;
            if (!in) {
                for (int v = 0; v < V; v++) ignored_ok &= c.dlogits[(size_t)n * V + v] == 0.0;
                ignored_ok &= c.losses[n] == 0.0;
                continue;
            }
            double s = 0;
            for (int v = 0; v < V; v++) {
                const double lt = c.tlogp[(size_t)n * V + v], ls = lq[(size_t)n * V + v];
                if (kind == 1 && lt > -INFINITY) s += exp(lt) * (lt - ls);
                if (kind == 2) s += exp(ls) * (ls - lt);
            }
            ref[n] = kind == 0 ? -lq[(size_t)n * V + targets[n]] : s;
        }
        CHECK(ignored_ok, "%s: an ignored row has a loss or a gradient", names[kind]);
        char what[96];
        snprintf(what, sizeof what, "%s f64 vs naive reference", names[kind]);
        CMP(what, nrel(c.losses, ref, N), TOL_F64_REFERENCE);

        float *fz_ = tof(c.logits, nl), *ft = tof(c.tlogp, nl), *fl = fz(N), *fd = fz(nl), *fr = tof(c.r, N);
        if (kind == 0) {
            tr_crossentropy_forward_f32(fl, fz_, targets, N, V);
            tr_crossentropy_softmax_backward_f32(fd, fr, fz_, targets, N, V);
        } else if (kind == 1) {
            tr_kl_forward_f32(fl, fz_, ft, mask, N, V);
            tr_kl_backward_f32(fd, fr, fz_, ft, mask, N, V);
        } else {
            tr_kl_reverse_forward_f32(fl, fz_, ft, mask, N, V);
            tr_kl_reverse_backward_f32(fd, fr, fz_, ft, mask, N, V);
        }
        snprintf(what, sizeof what, "%s f32 vs f64 losses", names[kind]);
        CMP(what, nrel_f(fl, c.losses, N), TOL_F32_VS_F64);
        snprintf(what, sizeof what, "%s f32 vs f64 dlogits", names[kind]);
        CMP(what, nrel_f(fd, c.dlogits, nl), TOL_F32_VS_F64);
    }
    /* KL of a distribution with itself is 0, and so is its gradient */
    double *z = drand(nl, -3, 3), *l = dz(N), *d = dz(nl), *one = dz(N);
    for (int n = 0; n < N; n++) one[n] = 1;
    double *lp = log_softmax_rows(z, N, V);
    tr_kl_forward_f64(l, z, lp, NULL, N, V);
    tr_kl_backward_f64(d, one, z, lp, NULL, N, V);
    double ml = 0, md = 0;
    for (int n = 0; n < N; n++) ml = fabs(l[n]) > ml ? fabs(l[n]) : ml;
    for (size_t i = 0; i < nl; i++) md = fabs(d[i]) > md ? fabs(d[i]) : md;
    CHECK(ml < 1e-14 && md < 1e-14, "KL(p||p) = %.2e, gradient %.2e", ml, md);
}

/* ---------------------------------------------------------------- determinism */

/* Runs fn with 1 and with 4 threads; the float outputs must be bitwise equal. */
typedef struct {
    float *out[8];
    size_t n[8];
    int n_out;
} det_outs;

static void det_attention(det_outs *o)
{
    const int B = 2, T = 40, H = 4, KV = 2, hd = 16;
    const size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd, na = (size_t)B * H * T * T;
    uint64_t saved = rng_state;
    float *q = tof(drand(nq, -2, 2), nq), *k = tof(drand(nk, -2, 2), nk), *v = tof(drand(nk, -1, 1), nk);
    float *g = tof(drand(nq, -1, 1), nq);
    rng_state = saved;
    float *out = fz(nq), *att = fz(na), *dq = fz(nq), *dk = fz(nk), *dv = fz(nk), *ds = fz(na);
    tr_attention_forward_f32(out, att, q, k, v, B, T, H, KV, hd, 0.25f, 3.0f, 17);
    tr_attention_backward_f32(dq, dk, dv, ds, g, q, k, v, att, B, T, H, KV, hd, 0.25f, 3.0f, 17);
    *o = (det_outs){{out, att, dq, dk, dv}, {nq, na, nq, nk, nk}, 5};
}

static void det_matmul_norm_loss(det_outs *o)
{
    const int N = 256, C = 257, OC = 192, V = 1000;
    uint64_t saved = rng_state;
    float *x = tof(drand((size_t)N * C, -1, 1), (size_t)N * C), *W = tof(drand((size_t)OC * C, -1, 1), (size_t)OC * C);
    float *b = tof(drand(OC, -1, 1), OC), *g = tof(drand((size_t)N * OC, -1, 1), (size_t)N * OC);
    float *w = tof(drand(C, 0.5, 1.5), C), *gn = tof(drand((size_t)N * C, -1, 1), (size_t)N * C);
    float *z = tof(drand((size_t)64 * V, -4, 4), (size_t)64 * V), *dl = tof(drand(64, -1, 1), 64);
    rng_state = saved;
    int *tg = talloc(64 * sizeof(int));
    for (int i = 0; i < 64; i++) tg[i] = i % 5 == 0 ? -1 : (i * 37) % V;
    float *out = fz((size_t)N * OC), *dx = fz((size_t)N * C), *dW = fz((size_t)OC * C), *db = fz(OC);
    float *no = fz((size_t)N * C), *rs = fz(N), *dnx = fz((size_t)N * C), *dw = fz(C), *dz_ = fz((size_t)64 * V);
    tr_matmul_forward_f32(out, x, W, b, N, C, OC);
    tr_matmul_backward_f32(dx, dW, db, g, x, W, N, C, OC);
    tr_rmsnorm_forward_f32(no, rs, x, w, N, C, 1e-5f);
    tr_rmsnorm_backward_f32(dnx, dw, gn, x, w, rs, N, C);
    tr_crossentropy_softmax_backward_f32(dz_, dl, z, tg, 64, V);
    *o = (det_outs){{out, dx, dW, db, no, dnx, dw, dz_},
                    {(size_t)N * OC, (size_t)N * C, (size_t)OC * C, OC, (size_t)N * C, (size_t)N * C, C, (size_t)64 * V},
                    8};
}

static void test_determinism(void)
{
    printf("determinism: float ops on 1 vs 4 threads\n");
    void (*fns[2])(det_outs *) = {det_attention, det_matmul_norm_loss};
    static const char *names[2] = {"attention fwd/bwd (B2 T40 H4 KV2 hd16 win17 cap3)",
                                   "matmul/rmsnorm/cross-entropy (N256 C257 OC192 V1000)"};
    const int saved = omp_get_max_threads();
    for (int f = 0; f < 2; f++) {
        det_outs a, b;
        omp_set_num_threads(1);
        fns[f](&a);
        omp_set_num_threads(4);
        fns[f](&b);
        int same = 1;
        for (int i = 0; i < a.n_out; i++) {
            const int eq = memcmp(a.out[i], b.out[i], a.n[i] * sizeof(float)) == 0;
            if (!eq) printf("  output %d differs: rel %.2e\n", i, nrel_ff(b.out[i], a.out[i], a.n[i]));
            same &= eq;
        }
        printf("  %-60s %s\n", names[f], same ? "bitwise equal" : "DIFFERENT");
        CHECK(same, "%s: results depend on the thread count", names[f]);
    }
    omp_set_num_threads(saved);
}

int main(void)
{
    test_embedding();
    test_matmul();
    test_rmsnorm();
    test_rope();
    test_attention();
    test_glu();
    test_softcap_residual();
    test_losses();
    test_determinism();
    printf("\nmax relative error of the gradient checks (double, central differences):\n");
    for (int i = 0; i < n_summary; i++)
        printf("  %-36s %.2e  (tol %.0e)\n", summary[i].op, summary[i].err, summary[i].tol);
    for (int i = 0; i < n_allocs; i++) free(allocs[i]);
    return tu_finish("test_train_ops");
}

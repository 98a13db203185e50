/*
 * test_optim.c — the optimizer layer (src/train_optim.c) and the CSV training
 * log (src/train_log.c):
 *   1. AdamW against hand-computed values: two steps, with and without weight
 *      decay (bias correction in both), per-group lr multiplier and decay flag.
 *   2. Global-norm clipping: the norm in double, the exact scale factor, no-ops.
 *   3. Schedules: values at the key steps (warm-up middle and end, halfway,
 *      end, past the end) for constant, linear and cosine.
 *   4. Gradient accumulation: 4 micro-batches of 1 vs 1 batch of 4 (bitwise:
 *      1/4 is exact), and 3 vs 3 (within float rounding).
 *   5. AdamW minimises an ill-conditioned convex quadratic.
 *   6. Save → load → continue is bit-identical to the uninterrupted run.
 *   7. 1 vs 4 OpenMP threads: bitwise equal.
 *   8. State-file errors; the CSV log (resume truncation, partial line,
 *      header mismatch); the progress line.
 */
#include "train_optim.h"
#include "test_util.h"

#include <omp.h>
#include <stdint.h>
#include <unistd.h>

/* Tolerances (each with its reason):
 * - hand-computed AdamW values are float32 results of double arithmetic,
 *   printed with 9 significant digits: they must agree to 1 ulp, TOL_ULP1
 *   relative (2^-23 = 1.19e-7, with margin for the printed rounding).
 * - clipped gradient norm: each of n elements is rounded once after scaling,
 *   relative error <= 2^-24 per element, so the norm is within ~1e-7
 *   relative: TOL_CLIP = 1e-6.
 * - accumulation with k = 3 (1/3 is not exact in float): grads differ by at
 *   most a few ulp, TOL_ACCUM_GRAD = 4 ulp relative to max|g|; after 30 AdamW
 *   steps (updates of at most lr = 0.01 each, normalised by √v, so a relative
 *   gradient error of 1e-6 moves an update by ~1e-6·lr), params within
 *   TOL_ACCUM_PARAM = 1e-6.
 * - convergence: AdamW with lr → 0 (cosine) on a quadratic with curvatures
 *   0.1…10 for 3000 steps gets every coordinate within 1e-3 of the minimum
 *   (measured ~1e-6): TOL_CONVERGE = 1e-3. */
#define TOL_ULP1 2.5e-7
#define TOL_CLIP 1e-6
#define TOL_ACCUM_GRAD (4 * 1.2e-7)
#define TOL_ACCUM_PARAM 1e-6
#define TOL_CONVERGE 1e-3

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double urand(uint64_t *s) { return (double)(splitmix(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0; }

static char tmpdir[256];

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fmax(fabs(b), 1e-30); }

/* ---------------------------------------------------------------- 1. AdamW by hand */

/* Two steps on p0 = [1, -2, 0.5, 3], lr 0.01, β = (0.9, 0.999), ε = 1e-8.
 * g1 = [0.1, -0.3, 0, 2], g2 = [0.2, 0.1, -0.5, 2].
 * Step 1: m̂ = g1, v̂ = g1², so p1 = p0 − lr·g1/(|g1| + ε) ≈ p0 − 0.01·sign(g1)
 *   (element 2: g = 0 → no change; wd: p0·(1 − lr·wd) first).
 * Step 2: m2 = 0.09·g1 + 0.1·g2, v2 = 0.000999·g1² + 0.001·g2²,
 *   bias corrections 1 − 0.9² = 0.19 and 1 − 0.999² = 0.001999:
 *   element 0: m̂ = 0.029/0.19 = 0.152632, v̂ = 4.999e-5/0.001999 = 0.0250075,
 *     p2 = 0.99 − 0.01·0.152632/0.158138 = 0.980348;
 *   element 2: m̂ = −0.05/0.19, v̂ = 2.5e-4/0.001999, p2 = 0.5 + 0.0074413;
 *   element 3: constant g → m̂ = 2, v̂ = 4, exactly 0.01 per step.
 * With wd = 0.1 each step first multiplies p by 1 − 0.01·0.1 = 0.999. */
static void test_adamw_hand(void)
{
    static const float g1[4] = {0.1f, -0.3f, 0.0f, 2.0f}, g2[4] = {0.2f, 0.1f, -0.5f, 2.0f};
    static const double want[2][2][4] = {
        /* wd = 0 */ {{0.99000001, -1.99000001, 0.5, 2.99000001}, {0.98034817, -1.9859978, 0.507441342, 2.98000002}},
        /* wd = 0.1 */
        {{0.989000022, -1.98800004, 0.499500006, 2.98699999}, {0.978359222, -1.98200989, 0.506441891, 2.97401309}},
    };
    for (int w = 0; w < 2; w++) {
        float p[4] = {1.0f, -2.0f, 0.5f, 3.0f}, g[4];
        tr_group grp = tr_group_make("w", p, g, 4);
        tr_adamw_params ap = tr_adamw_default_params();
        ap.weight_decay = w ? 0.1 : 0.0;
        tr_adamw *o = NULL;
        CHECK_OK(tr_adamw_new(&grp, 1, &ap, &o));
        for (int t = 0; t < 2; t++) {
            memcpy(g, t ? g2 : g1, sizeof g);
            double gn = 0;
            CHECK_OK(tr_adamw_step(o, 0.01, &gn));
            for (int i = 0; i < 4; i++)
                CHECK(close_rel(p[i], want[w][t][i], TOL_ULP1), "wd %g step %d p[%d] = %.9g, want %.9g",
                      ap.weight_decay, t + 1, i, p[i], want[w][t][i]);
        }
        CHECK(tr_adamw_steps(o) == 2, "steps %lld", (long long)tr_adamw_steps(o));
        /* m and v after step 2 (float): m = 0.09·g1 + 0.1·g2, v as above. */
        const float *m = tr_adamw_m(o, 0), *v = tr_adamw_v(o, 0);
        CHECK(close_rel(m[0], 0.029, TOL_ULP1) && close_rel(v[0], 4.999e-5, TOL_ULP1), "m0 %.9g v0 %.9g", m[0], v[0]);
        CHECK(close_rel(m[3], 0.38, TOL_ULP1) && close_rel(v[3], 0.007996, TOL_ULP1), "m3 %.9g v3 %.9g", m[3], v[3]);
        tr_adamw_free(o);
        printf("AdamW two steps by hand, wd = %.1f: p = [%.9g %.9g %.9g %.9g]\n", w ? 0.1 : 0.0, p[0], p[1], p[2], p[3]);
    }

    /* Per-group lr multiplier and decay flag: group b (lr_mult 0.5, no decay)
     * moves by 0.005·sign(g) in step 1 and is not decayed. */
    float pa[1] = {1.0f}, ga[1] = {1.0f}, pb[1] = {1.0f}, gb[1] = {-1.0f};
    tr_group gr[2] = {tr_group_make("a", pa, ga, 1), tr_group_make("b", pb, gb, 1)};
    gr[1].lr_mult = 0.5;
    gr[1].decay = 0;
    tr_adamw_params ap = tr_adamw_default_params();
    ap.weight_decay = 0.1;
    tr_adamw *o = NULL;
    CHECK_OK(tr_adamw_new(gr, 2, &ap, &o));
    CHECK_OK(tr_adamw_step(o, 0.01, NULL));
    /* a: 1·0.999 − 0.01·1/(1 + 1e-8); b: 1 + 0.005·1/(1 + 1e-8). */
    CHECK(close_rel(pa[0], 0.999 - 0.01 / (1 + 1e-8), TOL_ULP1), "pa %.9g", pa[0]);
    CHECK(close_rel(pb[0], 1 + 0.005 / (1 + 1e-8), TOL_ULP1), "pb %.9g", pb[0]);
    tr_adamw_free(o);

    /* Bad arguments. */
    float p[2], g[2];
    tr_group bad = tr_group_make("x", p, g, 2);
    bad.lr_mult = 0;
    CHECK(tr_adamw_new(&bad, 1, NULL, &o) == STEER_EARG && o == NULL, "lr_mult 0 accepted");
    tr_group dup[2] = {tr_group_make("x", p, g, 1), tr_group_make("x", p + 1, g + 1, 1)};
    CHECK(tr_adamw_new(dup, 2, NULL, &o) == STEER_EARG, "duplicate names accepted");
    ap = tr_adamw_default_params();
    ap.beta2 = 1.0;
    CHECK(tr_adamw_new(dup, 1, &ap, &o) == STEER_EARG, "beta2 = 1 accepted");
    /* A NaN gradient: STEER_ENAN, nothing changes. */
    CHECK_OK(tr_adamw_new(dup, 1, NULL, &o));
    p[0] = 1.5f;
    g[0] = NAN;
    double gn = 0;
    CHECK(tr_adamw_step(o, 0.01, &gn) == STEER_ENAN && p[0] == 1.5f && tr_adamw_steps(o) == 0 && isnan(gn),
          "NaN gradient: p %g steps %lld", p[0], (long long)tr_adamw_steps(o));
    tr_adamw_free(o);
}

/* ---------------------------------------------------------------- 2. clipping */

static void test_clip(void)
{
    /* The norm is accumulated in double: float squares of 3e20 would
     * overflow, the double sum gives 5e20. */
    float big[2] = {3e20f, 4e20f}, pb[2] = {0, 0};
    tr_group gbig = tr_group_make("big", pb, big, 2);
    double nb = tr_grad_norm(&gbig, 1);
    CHECK(close_rel(nb, 5e20, 1e-7), "norm of (3e20, 4e20) = %.17g", nb);

    /* Several groups, sizes across block boundaries. */
    size_t n[3] = {TR_BLOCK * 2 + 17, 5, TR_BLOCK - 1};
    float *g[3], *p[3], *orig[3];
    tr_group grp[3];
    uint64_t s = 42;
    long double ref = 0;
    for (int k = 0; k < 3; k++) {
        g[k] = malloc(n[k] * sizeof(float));
        p[k] = calloc(n[k], sizeof(float));
        orig[k] = malloc(n[k] * sizeof(float));
        for (size_t i = 0; i < n[k]; i++) {
            g[k][i] = orig[k][i] = (float)urand(&s);
            ref += (long double)g[k][i] * g[k][i];
        }
        grp[k] = tr_group_make(k == 0 ? "a" : k == 1 ? "b" : "c", p[k], g[k], n[k]);
    }
    double norm_ref = (double)sqrtl(ref);
    double norm = tr_grad_norm(grp, 3);
    printf("%-60s %.17g vs %.17g\n", "global norm (double) vs long double reference", norm, norm_ref);
    CHECK(close_rel(norm, norm_ref, 1e-13), "norm %.17g ref %.17g", norm, norm_ref);

    /* max_norm >= norm and max_norm = 0: untouched, bit for bit. */
    double got = 0;
    CHECK_OK(tr_grad_clip(grp, 3, norm * 1.5, &got));
    CHECK_OK(tr_grad_clip(grp, 3, 0.0, &got));
    int same = 1;
    for (int k = 0; k < 3; k++) same &= memcmp(g[k], orig[k], n[k] * sizeof(float)) == 0;
    CHECK(same && got == norm, "clip above the norm changed the gradients");

    /* Clip to a quarter: every element is exactly g·(float)(max/norm). */
    double maxn = norm / 4;
    CHECK_OK(tr_grad_clip(grp, 3, maxn, &got));
    CHECK(got == norm, "reported norm %.17g, want the pre-clip %.17g", got, norm);
    float c = (float)(maxn / norm);
    int exact = 1;
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < n[k]; i++) exact &= g[k][i] == orig[k][i] * c;
    CHECK(exact, "clipped gradients are not exactly g·c");
    double after = tr_grad_norm(grp, 3);
    printf("%-60s %.9g (max %.9g, rel err %.2e, tol %.0e)\n", "norm after clipping", after, maxn,
           fabs(after - maxn) / maxn, TOL_CLIP);
    CHECK(close_rel(after, maxn, TOL_CLIP), "norm after clip %.17g, want %.17g", after, maxn);

    /* A NaN: STEER_ENAN, untouched. */
    g[1][2] = NAN;
    memcpy(orig[0], g[0], n[0] * sizeof(float));
    CHECK(tr_grad_clip(grp, 3, 1.0, &got) == STEER_ENAN && isnan(got), "NaN gradient not reported");
    CHECK(memcmp(orig[0], g[0], n[0] * sizeof(float)) == 0, "NaN gradient: grads changed");

    /* Zero and scale helpers. */
    tr_grad_zero(grp, 3);
    CHECK(tr_grad_norm(grp, 3) == 0, "tr_grad_zero left non-zeros");
    for (int k = 0; k < 3; k++) {
        free(g[k]);
        free(p[k]);
        free(orig[k]);
    }
}

/* ---------------------------------------------------------------- 3. schedules */

static void test_schedules(void)
{
    tr_schedule s = tr_schedule_default();
    s.total_steps = 1000;
    CHECK_OK(tr_schedule_check(&s));
    CHECK(tr_schedule_warmup(&s) == 30, "3%% of 1000 = %lld", (long long)tr_schedule_warmup(&s));
    double lr = 9e-4;
    struct {
        tr_sched_kind kind;
        double r;
        int64_t t;
        double want;
    } cases[] = {
        /* Linear: W = 30, T = 1000, decay over 970 steps. */
        {TR_SCHED_LINEAR, 0, 0, lr / 30},             /* update 0: lr/W, not 0         */
        {TR_SCHED_LINEAR, 0, 14, lr / 2},             /* warm-up halfway               */
        {TR_SCHED_LINEAR, 0, 29, lr},                 /* last warm-up step: the peak   */
        {TR_SCHED_LINEAR, 0, 30, lr},                 /* warm-up end: peak             */
        {TR_SCHED_LINEAR, 0, 515, lr / 2},            /* halfway through the decay     */
        {TR_SCHED_LINEAR, 0, 999, lr / 970},          /* last update                   */
        {TR_SCHED_LINEAR, 0, 1000, 0},                /* end                           */
        {TR_SCHED_LINEAR, 0, 5000, 0},                /* past the end                  */
        {TR_SCHED_LINEAR, 0.1, 515, lr * 0.55},       /* final_ratio 0.1: 0.1 + 0.9/2  */
        {TR_SCHED_LINEAR, 0.1, 1000, lr * 0.1},
        /* Cosine. */
        {TR_SCHED_COSINE, 0, 14, lr / 2},
        {TR_SCHED_COSINE, 0, 30, lr},
        {TR_SCHED_COSINE, 0, 515, lr / 2},                                /* cos(π/2) = 0 */
        {TR_SCHED_COSINE, 0, 272, lr * 0.5 * (1 + cos(M_PI * 242.0 / 970.0))}, /* p = 242/970 */
        {TR_SCHED_COSINE, 0, 1000, 0},
        {TR_SCHED_COSINE, 0.1, 1000, lr * 0.1},
        /* Constant. */
        {TR_SCHED_CONSTANT, 0, 9, lr / 3},
        {TR_SCHED_CONSTANT, 0, 30, lr},
        {TR_SCHED_CONSTANT, 0, 999, lr},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s.kind = cases[i].kind;
        s.final_ratio = cases[i].r;
        double got = tr_schedule_lr(&s, cases[i].t);
        CHECK(fabs(got - cases[i].want) <= 1e-15, "schedule kind %d r %g t %lld: %.17g, want %.17g", (int)s.kind,
              cases[i].r, (long long)cases[i].t, got, cases[i].want);
    }
    s.kind = TR_SCHED_LINEAR;
    s.final_ratio = 0;
    /* Pure function: the same value whatever was asked before. */
    double a = tr_schedule_lr(&s, 700);
    for (int t = 0; t < 1000; t += 37) (void)tr_schedule_lr(&s, t);
    CHECK(tr_schedule_lr(&s, 700) == a, "schedule is not a pure function");
    /* Monotone warm-up and decay. */
    int mono = 1;
    for (int t = 1; t <= 1000; t++) {
        double prev = tr_schedule_lr(&s, t - 1), cur = tr_schedule_lr(&s, t);
        /* the peak is reached at update W − 1 = 29 and held at 30 (p = 0) */
        mono &= t < 30 ? cur > prev : t == 30 ? cur == prev : cur < prev || (cur == 0 && prev == 0) || t == 1000;
    }
    CHECK(mono, "linear schedule not monotone in warm-up / decay");
    /* Warm-up as a fraction: ceil, with 0.03·100 = 3 (not 4 from rounding). */
    s.total_steps = 100;
    CHECK(tr_schedule_warmup(&s) == 3, "3%% of 100 = %lld", (long long)tr_schedule_warmup(&s));
    s.warmup_frac = 0.031;
    CHECK(tr_schedule_warmup(&s) == 4, "3.1%% of 100 = %lld", (long long)tr_schedule_warmup(&s));
    s.warmup_steps = 10;
    CHECK(tr_schedule_warmup(&s) == 10 && tr_schedule_lr(&s, 4) == s.lr / 2, "explicit warmup_steps");
    s.warmup_steps = 0;
    CHECK(tr_schedule_lr(&s, 0) == s.lr, "no warm-up: update 0 at the peak");
    s.warmup_steps = 200;
    CHECK(tr_schedule_check(&s) == STEER_EARG, "warmup > total accepted");
    s.warmup_steps = -1;
    s.total_steps = 0;
    CHECK(tr_schedule_check(&s) == STEER_EARG, "total_steps 0 accepted");
    printf("schedules: %zu key values checked\n", sizeof cases / sizeof cases[0]);
}

/* ---------------------------------------------------------------- 4. accumulation */

#define QD 37 /* toy dimension */
#define QB 12 /* examples */

/* Example i of the toy problem: loss_i(p) = ½ Σ_j a_ij (p_j − b_ij)². */
static float qa[QB][QD], qb[QB][QD];

static void toy_init(void)
{
    uint64_t s = 7;
    for (int i = 0; i < QB; i++)
        for (int j = 0; j < QD; j++) {
            qa[i][j] = (float)(1.0 + urand(&s) * 0.9);
            qb[i][j] = (float)urand(&s);
        }
}

/* grad += w·∇loss_i(p) (the op layer's backwards accumulate like this). */
static void toy_backward(float *grad, const float *p, int i, float w)
{
    for (int j = 0; j < QD; j++) grad[j] += w * (qa[i][j] * (p[j] - qb[i][j]));
}

/* Trains `steps` updates on batches of k examples, either as one batch
 * (backward of the batch mean: weights 1/k) or as k micro-batches of one
 * (weight 1 each, then tr_grad_scale(1/k)). Records the first gradient. */
static void toy_train(int k, int micro, int steps, float *p, float *first_grad)
{
    float g[QD];
    for (int j = 0; j < QD; j++) p[j] = 0.0f;
    tr_group grp = tr_group_make("p", p, g, QD);
    tr_adamw *o = NULL;
    CHECK_OK(tr_adamw_new(&grp, 1, NULL, &o));
    for (int t = 0; t < steps; t++) {
        tr_grad_zero(&grp, 1);
        for (int e = 0; e < k; e++) toy_backward(g, p, (t * k + e) % QB, micro ? 1.0f : 1.0f / (float)k);
        if (micro) tr_grad_scale(&grp, 1, 1.0f / (float)k);
        if (t == 0) memcpy(first_grad, g, sizeof g);
        CHECK_OK(tr_adamw_step(o, 0.01, NULL));
    }
    tr_adamw_free(o);
}

static void test_accumulation(void)
{
    toy_init();
    float p1[QD], p4[QD], g1[QD], g4[QD];
    toy_train(4, 0, 30, p1, g1);
    toy_train(4, 1, 30, p4, g4);
    CHECK(memcmp(g1, g4, sizeof g1) == 0, "4 micro-batches of 1 vs 1 batch of 4: gradients differ");
    CHECK(memcmp(p1, p4, sizeof p1) == 0, "4 micro-batches of 1 vs 1 batch of 4: params differ after 30 steps");
    printf("%-60s bitwise equal (1/4 is exact)\n", "accumulation 4 x 1 vs 1 x 4, 30 steps");

    toy_train(3, 0, 30, p1, g1);
    toy_train(3, 1, 30, p4, g4);
    double gmax = 0;
    for (int j = 0; j < QD; j++) gmax = fmax(gmax, fabs(g1[j]));
    CHECK_CLOSE("accumulation 3 x 1 vs 1 x 3: first gradient", g1, g4, QD, TOL_ACCUM_GRAD * gmax);
    CHECK_CLOSE("accumulation 3 x 1 vs 1 x 3: params after 30 steps", p1, p4, QD, TOL_ACCUM_PARAM);
}

/* ---------------------------------------------------------------- 5. convergence */

static void test_converge(void)
{
    enum { D = 50, STEPS = 3000 };
    float p[D], g[D], a[D], c[D];
    uint64_t s = 99;
    for (int j = 0; j < D; j++) {
        a[j] = (float)pow(10.0, urand(&s)); /* curvatures 0.1 … 10 */
        c[j] = (float)(3 * urand(&s));
        p[j] = 0;
    }
    tr_group grp = tr_group_make("p", p, g, D);
    tr_adamw *o = NULL;
    CHECK_OK(tr_adamw_new(&grp, 1, NULL, &o));
    tr_schedule sc = tr_schedule_default();
    sc.kind = TR_SCHED_COSINE;
    sc.lr = 0.05;
    sc.total_steps = STEPS;
    double loss0 = 0, loss = 0;
    for (int t = 0; t < STEPS; t++) {
        loss = 0;
        for (int j = 0; j < D; j++) {
            g[j] = a[j] * (p[j] - c[j]);
            loss += 0.5 * a[j] * (p[j] - c[j]) * (p[j] - c[j]);
        }
        if (t == 0) loss0 = loss;
        CHECK_OK(tr_adamw_step(o, tr_schedule_lr(&sc, tr_adamw_steps(o)), NULL));
    }
    double err = 0;
    for (int j = 0; j < D; j++) err = fmax(err, fabs(p[j] - c[j]));
    printf("%-60s loss %.3e -> %.3e, max|p - p*| = %.2e (tol %.0e)\n", "AdamW + cosine on a convex quadratic", loss0,
           loss, err, TOL_CONVERGE);
    CHECK(err <= TOL_CONVERGE, "did not converge: max|p - p*| = %.3e", err);
    tr_adamw_free(o);
}

/* ---------------------------------------------------------------- 6./7. resume and threads */

/* A deterministic training problem with two groups (one without decay, one
 * with lr_mult 0.5), weight decay, clipping and a linear schedule. The
 * gradient at update t depends on the params and on t (noise from a hash of
 * t), so any difference in restored state would show. */
typedef struct {
    size_t n[2];
    float *p[2], *g[2];
    tr_group grp[2];
    tr_adamw *o;
    tr_schedule sc;
    double norms[64];
} run_state;

static void run_init(run_state *r, size_t n0, size_t n1)
{
    memset(r, 0, sizeof *r);
    r->n[0] = n0;
    r->n[1] = n1;
    uint64_t s = 5;
    for (int k = 0; k < 2; k++) {
        r->p[k] = malloc(r->n[k] * sizeof(float));
        r->g[k] = calloc(r->n[k], sizeof(float));
        for (size_t i = 0; i < r->n[k]; i++) r->p[k][i] = (float)urand(&s);
    }
    r->grp[0] = tr_group_make("layer.0.vec", r->p[0], r->g[0], n0);
    r->grp[1] = tr_group_make("layer.1.norm", r->p[1], r->g[1], n1);
    r->grp[1].decay = 0;
    r->grp[1].lr_mult = 0.5;
    tr_adamw_params ap = tr_adamw_default_params();
    ap.weight_decay = 0.01;
    ap.clip_norm = 2.0;
    CHECK_OK(tr_adamw_new(r->grp, 2, &ap, &r->o));
    r->sc = tr_schedule_default();
    r->sc.total_steps = 40;
    r->sc.warmup_steps = 4;
}

static void run_free(run_state *r)
{
    tr_adamw_free(r->o);
    for (int k = 0; k < 2; k++) {
        free(r->p[k]);
        free(r->g[k]);
    }
}

static void run_steps(run_state *r, int64_t until)
{
    while (tr_adamw_steps(r->o) < until) {
        int64_t t = tr_adamw_steps(r->o);
        uint64_t s = 1000 + (uint64_t)t;
        for (int k = 0; k < 2; k++)
            for (size_t i = 0; i < r->n[k]; i++)
                r->g[k][i] = 0.3f * (r->p[k][i] - 0.25f) + (float)(0.05 * urand(&s));
        double gn = 0;
        CHECK_OK(tr_adamw_step(r->o, tr_schedule_lr(&r->sc, t), &gn));
        r->norms[t] = gn;
    }
}

static int run_same(const run_state *a, const run_state *b)
{
    int same = tr_adamw_steps(a->o) == tr_adamw_steps(b->o);
    for (int k = 0; k < 2; k++) {
        size_t bytes = a->n[k] * sizeof(float);
        same &= memcmp(a->p[k], b->p[k], bytes) == 0;
        same &= memcmp(tr_adamw_m(a->o, k), tr_adamw_m(b->o, k), bytes) == 0;
        same &= memcmp(tr_adamw_v(a->o, k), tr_adamw_v(b->o, k), bytes) == 0;
    }
    return same;
}

static void test_resume(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/state.safetensors", tmpdir);
    run_state a, b;
    run_init(&a, 1000, 33);
    run_steps(&a, 40); /* uninterrupted */

    run_init(&b, 1000, 33);
    run_steps(&b, 17);
    CHECK_OK(tr_adamw_save(b.o, path, 1));
    run_free(&b);
    /* A fresh process: new arrays with other contents, a new optimizer. */
    run_init(&b, 1000, 33);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < b.n[k]; i++) b.p[k][i] = 123.0f;
    CHECK_OK(tr_adamw_load(b.o, path, 1));
    CHECK(tr_adamw_steps(b.o) == 17, "restored step %lld", (long long)tr_adamw_steps(b.o));
    run_steps(&b, 40);
    CHECK(run_same(&a, &b), "save at 17 -> load -> continue to 40 differs from the uninterrupted run");
    CHECK(memcmp(a.norms + 17, b.norms + 17, 23 * sizeof(double)) == 0, "gradient norms after resume differ");
    printf("%-60s bit-identical (params, m, v, norms)\n", "save at 17 -> load -> continue to 40");

    /* Metadata is there. */
    steer_tensors *t = NULL;
    CHECK_OK(steer_tensors_open(path, &t));
    const char *st = steer_tensors_meta(t, "optimizer.step"), *b1 = steer_tensors_meta(t, "optimizer.beta1");
    CHECK(st && strcmp(st, "17") == 0 && b1 && strtod(b1, NULL) == 0.9, "metadata step %s beta1 %s", st ? st : "-",
          b1 ? b1 : "-");
    CHECK(steer_tensors_find(t, "adam.m.layer.1.norm") && steer_tensors_find(t, "param.layer.0.vec"),
          "state tensors missing");
    steer_tensors_free(t);

    /* Errors leave the optimizer unchanged: a group the file lacks, a wrong
     * shape, other betas, a missing file. */
    float xp[33], xg[33];
    tr_group other[2] = {b.grp[0], tr_group_make("layer.2.norm", xp, xg, 33)};
    tr_adamw *o2 = NULL;
    CHECK_OK(tr_adamw_new(other, 2, NULL, &o2));
    int rc = tr_adamw_load(o2, path, 0);
    CHECK(rc == STEER_EFORMAT && strstr(steer_last_error(), "adam.m.layer.2.norm") && tr_adamw_steps(o2) == 0,
          "missing group: rc %d, %s", rc, steer_last_error());
    tr_adamw_free(o2);
    tr_group shorter[1] = {b.grp[0]};
    shorter[0].n = 999;
    CHECK_OK(tr_adamw_new(shorter, 1, NULL, &o2));
    rc = tr_adamw_load(o2, path, 0);
    CHECK(rc == STEER_EFORMAT && strstr(steer_last_error(), "expected F32 [999]"), "wrong shape: rc %d, %s", rc,
          steer_last_error());
    tr_adamw_free(o2);
    tr_adamw_params ap = tr_adamw_default_params();
    ap.beta2 = 0.95;
    CHECK_OK(tr_adamw_new(b.grp, 2, &ap, &o2));
    float keep = b.p[0][0];
    rc = tr_adamw_load(o2, path, 1);
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "beta2") && b.p[0][0] == keep, "other beta2: rc %d, %s", rc,
          steer_last_error());
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none.safetensors", tmpdir);
    CHECK(tr_adamw_load(o2, missing, 0) == STEER_EIO, "missing state file");
    tr_adamw_free(o2);
    run_free(&a);
    run_free(&b);
    remove(path);
}

static void test_threads(void)
{
    /* Groups over several blocks (and a ragged tail) so the parallel loops
     * engage; 1 vs 4 threads must give the same bits. */
    run_state a, b;
    omp_set_num_threads(1);
    run_init(&a, 5 * TR_BLOCK + 123, TR_BLOCK * 2 + 7);
    run_steps(&a, 12);
    omp_set_num_threads(4);
    run_init(&b, 5 * TR_BLOCK + 123, TR_BLOCK * 2 + 7);
    run_steps(&b, 12);
    CHECK(run_same(&a, &b), "1 vs 4 threads: params/m/v differ");
    CHECK(memcmp(a.norms, b.norms, 12 * sizeof(double)) == 0, "1 vs 4 threads: gradient norms differ");
    printf("%-60s bitwise equal\n", "1 vs 4 threads, 12 steps, 2 groups of 7 blocks");
    run_free(&a);
    run_free(&b);
}

/* ---------------------------------------------------------------- 8. CSV log, progress */

static void test_log(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/train.csv", tmpdir);
    const char *ev[2] = {"eval_loss", "acc"};
    tr_log *l = NULL;
    CHECK_OK(tr_log_open(path, ev, 2, -1, &l));
    for (int s = 1; s <= 10; s++) {
        double e[2] = {2.0 / s, 0.1 * s};
        CHECK_OK(tr_log_row(l, s, 1e-3 * s, 3.0 / s, 0.5, s % 5 == 0 ? e : NULL, 1000.0 + s));
    }
    CHECK_OK(tr_log_close(l));
    char *txt = tu_read_file(path, NULL);
    const char *head = "step,lr,loss,grad_norm,eval_loss,acc,tokens_per_s\n1,0.001,3,0.5,,,1001\n";
    CHECK(strncmp(txt, head, strlen(head)) == 0, "log starts:\n%.120s", txt);
    CHECK(strstr(txt, "\n5,0.005,0.6,0.5,0.4,0.5,1005\n") != NULL, "eval row missing:\n%s", txt);
    free(txt);

    /* A crash mid-row: a partial line at the end. Resume from the checkpoint
     * at step 6: rows 7..10 and the partial line go. */
    FILE *f = fopen(path, "ab");
    fputs("11,0.011,0.27", f);
    fclose(f);
    CHECK_OK(tr_log_open(path, ev, 2, 6, &l));
    CHECK_OK(tr_log_row(l, 7, 7e-3, 0.4, 0.25, NULL, NAN));
    CHECK_OK(tr_log_close(l));
    txt = tu_read_file(path, NULL);
    int lines = 0;
    for (char *p = txt; *p; p++) lines += *p == '\n';
    CHECK(lines == 8 && strstr(txt, "\n6,0.006,0.5,0.5,,,1006\n7,0.007,0.4,0.25,,,\n") &&
              txt[strlen(txt) - 1] == '\n' && !strstr(txt, "\n8,") && !strstr(txt, "\n11,"),
          "after resume at 6 (%d lines):\n%s", lines, txt);
    free(txt);

    /* Another run's log (other eval columns): refused, file untouched. */
    size_t before = 0, after = 0;
    free(tu_read_file(path, &before));
    const char *ev2[1] = {"acc"};
    int rc = tr_log_open(path, ev2, 1, 3, &l);
    CHECK(rc == STEER_EFORMAT && l == NULL, "header mismatch: rc %d", rc);
    free(tu_read_file(path, &after));
    CHECK(before == after, "header mismatch changed the file");
    const char *bad[1] = {"a,b"};
    CHECK(tr_log_open(path, bad, 1, -1, &l) == STEER_EARG, "comma in a column name accepted");

    /* Resume with no file: a new log. */
    char path2[600];
    snprintf(path2, sizeof path2, "%s/new.csv", tmpdir);
    CHECK_OK(tr_log_open(path2, NULL, 0, 100, &l));
    CHECK_OK(tr_log_row(l, 101, 1e-4, 1.5, 0.1, NULL, 10));
    CHECK_OK(tr_log_close(l));
    txt = tu_read_file(path2, NULL);
    CHECK(strcmp(txt, "step,lr,loss,grad_norm,tokens_per_s\n101,0.0001,1.5,0.1,10\n") == 0, "new log:\n%s", txt);
    free(txt);
    /* No temporary files left beside the logs. */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", tmpdir);
    FILE *ls = popen(cmd, "r");
    int ntmp = -1;
    if (ls) {
        if (fscanf(ls, "%d", &ntmp) != 1) ntmp = -1;
        pclose(ls);
    }
    CHECK(ntmp == 0, "%d temporary files left in %s", ntmp, tmpdir);
    remove(path);
    remove(path2);
    printf("CSV log: rows, resume truncation, partial line, header check: done\n");

    /* Progress line. */
    char buf[256];
    tr_progress_format(buf, sizeof buf, 120, 1000, 1.23456, 9e-4, 1523.4, 65);
    CHECK(strcmp(buf, "step 120/1000 (12.0%)  loss 1.2346  lr 9.00e-04  1523 tok/s  0:01:05 < 0:07:57") == 0,
          "progress: %s", buf);
    tr_progress_format(buf, sizeof buf, 5, 0, NAN, NAN, NAN, NAN);
    CHECK(strcmp(buf, "step 5") == 0, "progress: %s", buf);
    int n = tr_progress_format(buf, 8, 1, 2, 1e300, 1, 1, 1);
    CHECK(n > 8 && strlen(buf) == 7, "progress truncation: n %d, %s", n, buf);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_optim.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "FAIL: mkdtemp %s\n", tmpdir);
        return 1;
    }
    test_adamw_hand();
    test_clip();
    test_schedules();
    test_accumulation();
    test_converge();
    test_resume();
    test_threads();
    test_log();
    rmdir(tmpdir);
    return tu_finish("test_optim");
}

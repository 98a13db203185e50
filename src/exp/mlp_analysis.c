/*
 * mlp_analysis.c — SPEC §4 E2: the GLU modulation terms of the MLP and the
 * attenuation of a pre-MLP shift on its way through the MLP branch
 * (steer.h "mlp analysis section"; docs/ANALYSIS.md).
 *
 * Modulation: per layer, over chosen positions, g1 = φ'(a_g)⊙a_u (gated
 * path) and g2 = φ(a_g) (un-gated path), from the float engine's own a_g and
 * a_u (capture hooks at mlp_gate and mlp_up). φ and φ' are the training
 * ops' (tr_glu_backward with dout = 1 gives dg = φ'(a_g)⊙a_u and du = φ(a_g)),
 * so the derivative is written once.
 *
 * Attenuation: the MLP branch is recomputed in double from the captured
 * input x (resid_mid for a shift at attn_out, mlp_in for one at mlp_in):
 *
 *   h = RMSNorm_pre(x) (mlp_in: h = x)      Δ̂ = J_norm(x)·δ
 *   a_g = W_g·h, a_u = W_u·h                 W_g·Δ̂, W_u·Δ̂
 *   m = φ(a_g)⊙a_u                           Δm = g1⊙(W_g·Δ̂) + g2⊙(W_u·Δ̂)
 *   y0 = W_d·m                               W_d·Δm  (= W_d·[g1⊙…] + W_d·[g2⊙…])
 *   y = RMSNorm_post(y0) (Gemma 2/3)         J_post(y0)·W_d·Δm
 *
 * (forward-mode, one matrix product per stage; the tests check it against
 * Jacobian rows built from the training ops' backward passes). The actual
 * change MLP(x + αδ) − MLP(x) is the same forward run twice.
 *
 * Matmuls: OpenBLAS dgemm on fixed 64 x 256 output tiles shared by OpenMP
 * threads (dgemm called inside a parallel region runs single-threaded), or
 * a plain loop for small products; the choice depends only on the shape, so
 * every number is the same for any thread count. Sums are in row order.
 */
#include "steer_exp.h"
#include "base.h"
#include "data.h"
#include "plot.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The training ops in double: RMSNorm and GLU forward/backward (φ, φ').
 * train_ops_impl.h needs the train tier's train_ops.h (rope_style, …). */
#include "train_ops.h"
#define REAL double
#define R_(name) name##_f64
#define TRAIN_OPS_API static inline
#include "train_ops_impl.h"

#define MLP_CHUNK 256        /* rows per block of the attenuation analysis */

const double steer_mlp_alphas[STEER_MLP_N_ALPHAS] = {1.0, 0.5, 0.25, 0.125};

static const char *const stage_names[STEER_MLP_N_STAGES] = {"norm", "in", "gate", "down", "post"};
static const char *const stage_words[STEER_MLP_N_STAGES] = {
    "the pre-MLP norm", "W_g/W_u", "the gate (the φ modulation g1, g2)", "W_d", "the post-ffn norm"};

const char *steer_mlp_stage_name(int stage)
{
    return stage >= 0 && stage < STEER_MLP_N_STAGES ? stage_names[stage] : "?";
}

/* ---------------------------------------------------------------- small helpers */

static double *dalloc(size_t n) { return malloc((n ? n : 1) * sizeof(double)); }

static double dot_d(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static double norm_d(const double *a, int n) { return sqrt(dot_d(a, a, n)); }

/* out[N, OC] = in[N, C]·W[OC, C]ᵀ in fixed tiles (see the file comment). */
enum { MM_MB = 64, MM_NB = 256 };
static void mm(double *out, const double *in, const double *W, int N, int C, int OC)
{
    if ((size_t)N * C * OC <= 32768) { /* small (one position): a plain loop, no thread start-up */
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                const double *x = in + (size_t)n * C, *w = W + (size_t)o * C;
                double s = 0;
                for (int c = 0; c < C; c++) s += x[c] * w[c];
                out[(size_t)n * OC + o] = s;
            }
        return;
    }
    const int mt = (N + MM_MB - 1) / MM_MB, nt = (OC + MM_NB - 1) / MM_NB;
#pragma omp parallel for schedule(dynamic, 1)
    for (int t = 0; t < mt * nt; t++) {
        const int i0 = t / nt * MM_MB, j0 = t % nt * MM_NB;
        const int mb = N - i0 < MM_MB ? N - i0 : MM_MB, nb = OC - j0 < MM_NB ? OC - j0 : MM_NB;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, mb, nb, C, 1.0, in + (size_t)i0 * C, C,
                    W + (size_t)j0 * C, C, 0.0, out + (size_t)i0 * OC + j0, OC);
    }
}

/* out[d] = J·dx of RMSNorm at x (rstd r, weight w): w⊙(r·dx − r³/d·(x·dx)·x). */
static void rmsnorm_jvp(double *out, const double *x, const double *w, double r, const double *dx, int d)
{
    const double k = dot_d(x, dx, d) * r * r * r / d;
    for (int i = 0; i < d; i++) out[i] = w[i] * (r * dx[i] - k * x[i]);
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t o = a;
    if (a && dir[a - 1] != '/') p[o++] = '/';
    memcpy(p + o, name, b + 1);
    return p;
}

/* ---------------------------------------------------------------- the branch */

struct steer_mlp_branch {
    int d, f, layer;
    steer_act act;
    double eps;
    double *wg, *wu; /* [f, d]                                */
    double *wd;      /* [d, f]                                */
    double *norm;    /* [d] pre-MLP norm (effective multiplier) */
    double *post;    /* [d] post-ffn norm, or NULL            */
};

/* The MLP weights of layer l (steer_model_weight views). */
typedef struct {
    steer_weight_view gate, up, down, norm, post;
} mlp_weights;

static int mlp_weights_get(const steer_model *m, int l, mlp_weights *w)
{
    int rc;
    if ((rc = steer_model_weight(m, STEER_WEIGHT_GATE, l, &w->gate)) ||
        (rc = steer_model_weight(m, STEER_WEIGHT_UP, l, &w->up)) ||
        (rc = steer_model_weight(m, STEER_WEIGHT_DOWN, l, &w->down)) ||
        (rc = steer_model_weight(m, STEER_WEIGHT_FFN_NORM, l, &w->norm)) ||
        (rc = steer_model_weight(m, STEER_WEIGHT_POST_FFN_NORM, l, &w->post)))
        return rc;
    return STEER_OK;
}

/* STEER_EUNSUPPORTED unless layer l has a gated MLP (W_g and W_u [d_ff, d]). */
static int check_gated(const steer_model *m, int l)
{
    const steer_model_config *cfg = steer_model_get_config(m);
    const int d = cfg->d_model, f = cfg->d_ff;
    mlp_weights w;
    int rc = mlp_weights_get(m, l, &w);
    if (rc) return rc;
    if (!w.gate.data || w.gate.rows != f || w.gate.cols != d || !w.up.data || w.up.rows != f || w.up.cols != d ||
        !w.down.data || w.down.rows != d || w.down.cols != f || !w.norm.data)
        return steer_err(STEER_EUNSUPPORTED,
                         "%s model: layer %d's MLP is not gated (no %s [%d, %d]); the MLP analysis needs "
                         "φ(W_g·h)⊙(W_u·h)",
                         cfg->arch_name, l, !w.gate.data || w.gate.rows != f ? "gate projection W_g"
                                                                             : "up/down projections",
                         f, d);
    return STEER_OK;
}

static int widen(const steer_weight_view *W, double *out)
{
    float *row = malloc((size_t)W->cols * sizeof *row);
    if (!row) return steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
    const size_t rowb = steer_dtype_row_bytes(W->dtype, (size_t)W->cols);
    int rc = STEER_OK;
    for (int r = 0; r < W->rows && !rc; r++) {
        rc = steer_dtype_to_f32(row, (const uint8_t *)W->data + (size_t)r * rowb, W->dtype, (size_t)W->cols);
        for (int c = 0; c < W->cols && !rc; c++) out[(size_t)r * W->cols + c] = row[c];
    }
    free(row);
    return rc;
}

int steer_mlp_branch_new(const steer_model *m, int layer, steer_mlp_branch **out)
{
    /* Ownership: borrows m (read once); *out is the caller's. */
    *out = NULL;
    if (!m) return steer_err(STEER_EARG, "mlp branch: no model");
    const steer_model_config *cfg = steer_model_get_config(m);
    if (layer < 0 || layer >= cfg->n_layer)
        return steer_err(STEER_EARG, "mlp branch: layer %d out of range (model has %d layers)", layer, cfg->n_layer);
    int rc = check_gated(m, layer);
    if (rc) return rc;
    mlp_weights L;
    if ((rc = mlp_weights_get(m, layer, &L))) return rc;
    const int d = cfg->d_model, f = cfg->d_ff;
    steer_mlp_branch *b = calloc(1, sizeof *b);
    if (!b) return steer_err(STEER_ENOMEM, "mlp branch: out of memory");
    b->d = d;
    b->f = f;
    b->layer = layer;
    b->act = cfg->act;
    b->eps = cfg->rms_eps;
    b->wg = dalloc((size_t)f * d);
    b->wu = dalloc((size_t)f * d);
    b->wd = dalloc((size_t)d * f);
    b->norm = dalloc((size_t)d);
    const float *norm = L.norm.data, *post = L.post.data; /* F32 [d] */
    if (post) b->post = dalloc((size_t)d);
    if (!b->wg || !b->wu || !b->wd || !b->norm || (post && !b->post)) {
        steer_mlp_branch_free(b);
        return steer_err(STEER_ENOMEM, "mlp branch: out of memory (layer %d in double)", layer);
    }
    if ((rc = widen(&L.gate, b->wg)) || (rc = widen(&L.up, b->wu)) || (rc = widen(&L.down, b->wd))) {
        steer_mlp_branch_free(b);
        return rc;
    }
    for (int i = 0; i < d; i++) b->norm[i] = norm[i];
    if (b->post)
        for (int i = 0; i < d; i++) b->post[i] = post[i];
    *out = b;
    return STEER_OK;
}

void steer_mlp_branch_free(steer_mlp_branch *b)
{
    if (!b) return;
    free(b->wg);
    free(b->wu);
    free(b->wd);
    free(b->norm);
    free(b->post);
    free(b);
}

/* Work space for up to cap rows. Ownership: every array is owned. */
typedef struct {
    int cap, d, f;
    /* the forward at x (and, reused, at x + αδ: the *1 arrays) */
    double *x, *h, *rs, *ag, *au, *m, *y0, *rp, *y;
    double *x1, *h1, *rs1, *ag1, *au1, *m1, *y01, *rp1, *y1;
    /* the first-order change */
    double *ones, *g1, *g2;      /* [cap, f]                              */
    double *dhat;                /* [cap, d]                              */
    double *dg, *du, *dmg, *dmu; /* [cap, f]                              */
    double *pg, *pu, *pd;        /* [cap, d] paths (after J_post), W_d·Δm  */
    double *tmp;                 /* [f] scratch                           */
} work;

static void work_free(work *w)
{
    double **a[] = {&w->x,  &w->h,   &w->rs,  &w->ag,  &w->au,  &w->m,   &w->y0,  &w->rp,   &w->y,
                    &w->x1, &w->h1,  &w->rs1, &w->ag1, &w->au1, &w->m1,  &w->y01, &w->rp1,  &w->y1,
                    &w->ones, &w->g1, &w->g2, &w->dhat, &w->dg, &w->du, &w->dmg, &w->dmu, &w->pg,
                    &w->pu, &w->pd, &w->tmp};
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
        free(*a[i]);
        *a[i] = NULL;
    }
}

static int work_init(work *w, int cap, int d, int f)
{
    memset(w, 0, sizeof *w);
    w->cap = cap;
    w->d = d;
    w->f = f;
    const size_t D = (size_t)cap * d, F = (size_t)cap * f, R = (size_t)cap;
    struct {
        double **p;
        size_t n;
    } a[] = {{&w->x, D},   {&w->h, D},    {&w->rs, R},   {&w->ag, F},   {&w->au, F},  {&w->m, F},
             {&w->y0, D},  {&w->rp, R},   {&w->y, D},    {&w->x1, D},   {&w->h1, D},  {&w->rs1, R},
             {&w->ag1, F}, {&w->au1, F},  {&w->m1, F},   {&w->y01, D},  {&w->rp1, R}, {&w->y1, D},
             {&w->ones, F}, {&w->g1, F},  {&w->g2, F},   {&w->dhat, D}, {&w->dg, F},  {&w->du, F},
             {&w->dmg, F}, {&w->dmu, F},  {&w->pg, D},   {&w->pu, D},   {&w->pd, D},  {&w->tmp, (size_t)f}};
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
        if (!(*a[i].p = dalloc(a[i].n))) {
            work_free(w);
            return steer_err(STEER_ENOMEM, "mlp analysis: out of memory (%d rows of %d + %d)", cap, d, f);
        }
    for (size_t i = 0; i < F; i++) w->ones[i] = 1.0;
    return STEER_OK;
}

/* The branch at x[N, d] into h, rs, ag, au, m, y0, rp, y (norm = 0: h = x). */
static void branch_rows(const steer_mlp_branch *b, int norm, int N, const double *x, double *h, double *rs, double *ag,
                        double *au, double *m, double *y0, double *rp, double *y)
{
    const int d = b->d, f = b->f;
    if (norm) tr_rmsnorm_forward_f64(h, rs, x, b->norm, N, d, b->eps);
    else memcpy(h, x, (size_t)N * d * sizeof *h);
    mm(ag, h, b->wg, N, d, f);
    mm(au, h, b->wu, N, d, f);
    tr_glu_forward_f64(m, ag, au, (size_t)N * f, b->act);
    mm(y0, m, b->wd, N, f, d);
    if (b->post) tr_rmsnorm_forward_f64(y, rp, y0, b->post, N, d, b->eps);
    else memcpy(y, y0, (size_t)N * d * sizeof *y);
}

/* Forward at w->x and the first-order change along delta [d] for N rows. */
static void jvp_rows(const steer_mlp_branch *b, int norm, work *w, int N, const double *delta)
{
    const int d = b->d, f = b->f;
    const size_t F = (size_t)N * f;
    branch_rows(b, norm, N, w->x, w->h, w->rs, w->ag, w->au, w->m, w->y0, w->rp, w->y);
    /* g1 = φ'(a_g)⊙a_u, g2 = φ(a_g): the GLU backward with dout = 1 */
    memset(w->g1, 0, F * sizeof(double));
    memset(w->g2, 0, F * sizeof(double));
    tr_glu_backward_f64(w->g1, w->g2, w->ones, w->ag, w->au, F, b->act);
    for (int n = 0; n < N; n++) {
        double *dh = w->dhat + (size_t)n * d;
        if (norm) rmsnorm_jvp(dh, w->x + (size_t)n * d, b->norm, w->rs[n], delta, d);
        else memcpy(dh, delta, (size_t)d * sizeof *dh);
    }
    mm(w->dg, w->dhat, b->wg, N, d, f);
    mm(w->du, w->dhat, b->wu, N, d, f);
    for (size_t i = 0; i < F; i++) {
        w->dmg[i] = w->g1[i] * w->dg[i];
        w->dmu[i] = w->g2[i] * w->du[i];
    }
    mm(w->pg, w->dmg, b->wd, N, f, d);
    mm(w->pu, w->dmu, b->wd, N, f, d);
    for (size_t i = 0; i < (size_t)N * d; i++) w->pd[i] = w->pg[i] + w->pu[i];
    if (b->post)
        for (int n = 0; n < N; n++) {
            const size_t o = (size_t)n * d;
            rmsnorm_jvp(w->y1 + o, w->y0 + o, b->post, w->rp[n], w->pg + o, d);
            memcpy(w->pg + o, w->y1 + o, (size_t)d * sizeof(double));
            rmsnorm_jvp(w->y1 + o, w->y0 + o, b->post, w->rp[n], w->pu + o, d);
            memcpy(w->pu + o, w->y1 + o, (size_t)d * sizeof(double));
        }
}

/* Forward at x + alpha·delta into the *1 arrays (y1 = the branch output). */
static void shifted_rows(const steer_mlp_branch *b, int norm, work *w, int N, const double *delta, double alpha)
{
    const int d = b->d;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < d; i++) w->x1[(size_t)n * d + i] = w->x[(size_t)n * d + i] + alpha * delta[i];
    branch_rows(b, norm, N, w->x1, w->h1, w->rs1, w->ag1, w->au1, w->m1, w->y01, w->rp1, w->y1);
}

static int site_norm(steer_site site, int *norm)
{
    if (site == STEER_SITE_ATTN_OUT) *norm = 1;
    else if (site == STEER_SITE_MLP_IN) *norm = 0;
    else return steer_err(STEER_EARG, "mlp analysis: site %s is not a pre-MLP site (attn_out or mlp_in)",
                          steer_site_name(site));
    return STEER_OK;
}

int steer_mlp_branch_forward(const steer_mlp_branch *b, steer_site site, const double *x, double *y)
{
    int norm = 0, rc = site_norm(site, &norm);
    if (rc) return rc;
    work w;
    if ((rc = work_init(&w, 1, b->d, b->f))) return rc;
    memcpy(w.x, x, (size_t)b->d * sizeof(double));
    branch_rows(b, norm, 1, w.x, w.h, w.rs, w.ag, w.au, w.m, w.y0, w.rp, w.y);
    memcpy(y, w.y, (size_t)b->d * sizeof(double));
    work_free(&w);
    return STEER_OK;
}

int steer_mlp_branch_jvp(const steer_mlp_branch *b, steer_site site, const double *x, const double *delta,
                         const steer_mlp_jvp *out)
{
    int norm = 0, rc = site_norm(site, &norm);
    if (rc) return rc;
    work w;
    if ((rc = work_init(&w, 1, b->d, b->f))) return rc;
    const size_t D = (size_t)b->d * sizeof(double), F = (size_t)b->f * sizeof(double);
    memcpy(w.x, x, D);
    jvp_rows(b, norm, &w, 1, delta);
    if (out->dhat) memcpy(out->dhat, w.dhat, D);
    if (out->wg) memcpy(out->wg, w.dg, F);
    if (out->wu) memcpy(out->wu, w.du, F);
    if (out->g1) memcpy(out->g1, w.g1, F);
    if (out->g2) memcpy(out->g2, w.g2, F);
    if (out->dm)
        for (int i = 0; i < b->f; i++) out->dm[i] = w.dmg[i] + w.dmu[i];
    if (out->gated) memcpy(out->gated, w.pg, D);
    if (out->ungated) memcpy(out->ungated, w.pu, D);
    work_free(&w);
    return STEER_OK;
}

/* ---------------------------------------------------------------- attenuation of one (site, layer) */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[n] (sorted in place). */
static double median_d(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Running sums of one (site, layer). */
typedef struct {
    int n;
    double delta, dhat, wg, wu, dm, gated, ungated, first, actual, linerr[STEER_MLP_N_ALPHAS], align;
    int n_align, n_lin[STEER_MLP_N_ALPHAS];
    double lg_norm, lg_mlp, lg_gain[STEER_MLP_N_STAGES], lg_abs[STEER_MLP_N_STAGES]; /* sums of logs */
    int n_norm, n_mlp, n_gain[STEER_MLP_N_STAGES], n_abs[STEER_MLP_N_STAGES];
} att_acc;

static void log_add(double v, double *s, int *n)
{
    if (isfinite(v) && v > 0) {
        *s += log(v);
        (*n)++;
    }
}

/* Attenuation of rows x[N, d] (float captures) along delta [d]. */
static int att_rows(const steer_mlp_branch *b, int norm, const float *xs, int N, const float *delta_f, att_acc *A)
{
    const int d = b->d, f = b->f;
    work w;
    int rc = work_init(&w, N < MLP_CHUNK ? N : MLP_CHUNK, d, f);
    if (rc) return rc;
    double *delta = dalloc((size_t)d), *fbuf = dalloc((size_t)d);
    double *act = dalloc((size_t)d * w.cap * STEER_MLP_N_ALPHAS); /* [α, row, d] actual changes */
    if (!delta || !fbuf || !act) {
        free(delta);
        free(fbuf);
        free(act);
        work_free(&w);
        return steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
    }
    for (int i = 0; i < d; i++) delta[i] = delta_f[i];
    const double nd = norm_d(delta, d);
    for (int r0 = 0; r0 < N; r0 += w.cap) {
        const int nr = N - r0 < w.cap ? N - r0 : w.cap;
        for (size_t i = 0; i < (size_t)nr * d; i++) w.x[i] = xs[(size_t)r0 * d + i];
        jvp_rows(b, norm, &w, nr, delta);
        /* actual changes at every α (y1 is scratch inside jvp_rows: run after) */
        for (int a = 0; a < STEER_MLP_N_ALPHAS; a++) {
            shifted_rows(b, norm, &w, nr, delta, steer_mlp_alphas[a]);
            for (int n = 0; n < nr; n++)
                for (int i = 0; i < d; i++)
                    act[((size_t)a * w.cap + n) * d + i] = w.y1[(size_t)n * d + i] - w.y[(size_t)n * d + i];
        }
        for (int n = 0; n < nr; n++) {
            const size_t od = (size_t)n * d, of = (size_t)n * f;
            for (int i = 0; i < d; i++) fbuf[i] = w.pg[od + i] + w.pu[od + i];
            const double n_x = norm_d(w.x + od, d), n_h = norm_d(w.h + od, d);
            const double n_dhat = norm_d(w.dhat + od, d);
            const double n_wg = norm_d(w.dg + of, f), n_wu = norm_d(w.du + of, f);
            const double n_agu = sqrt(dot_d(w.ag + of, w.ag + of, f) + dot_d(w.au + of, w.au + of, f));
            double s_dm = 0;
            for (int j = 0; j < f; j++) {
                const double v = w.dmg[of + j] + w.dmu[of + j];
                s_dm += v * v;
            }
            const double n_dm = sqrt(s_dm), n_m = norm_d(w.m + of, f);
            const double n_pd = norm_d(w.pd + od, d), n_y0 = norm_d(w.y0 + od, d), n_y = norm_d(w.y + od, d);
            const double n_first = norm_d(fbuf, d);
            const double n_act = norm_d(act + od, d); /* α = 1 is index 0 */
            A->n++;
            A->delta += nd;
            A->dhat += n_dhat;
            A->wg += n_wg;
            A->wu += n_wu;
            A->dm += n_dm;
            A->gated += norm_d(w.pg + od, d);
            A->ungated += norm_d(w.pu + od, d);
            A->first += n_first;
            A->actual += n_act;
            log_add(n_dhat / nd, &A->lg_norm, &A->n_norm);
            log_add(n_act / n_dhat, &A->lg_mlp, &A->n_mlp);
            for (int a = 0; a < STEER_MLP_N_ALPHAS; a++) {
                const double al = steer_mlp_alphas[a];
                const double *da = act + ((size_t)a * w.cap + n) * d;
                double e = 0;
                for (int i = 0; i < d; i++) {
                    const double r = da[i] - al * fbuf[i];
                    e += r * r;
                }
                const double le = sqrt(e) / (al * n_first);
                if (isfinite(le)) {
                    A->linerr[a] += le;
                    A->n_lin[a]++;
                }
            }
            /* alignment: share of ‖W_g·Δ̂‖² on units whose |g1| is above its median */
            for (int j = 0; j < f; j++) w.tmp[j] = fabs(w.g1[of + j]);
            const double med = median_d(w.tmp, f);
            double s_all = 0, s_hi = 0;
            for (int j = 0; j < f; j++) {
                const double v = w.dg[of + j] * w.dg[of + j];
                s_all += v;
                if (fabs(w.g1[of + j]) > med) s_hi += v;
            }
            if (s_all > 0) {
                A->align += s_hi / s_all;
                A->n_align++;
            }
            /* relative size of the shift at every stage boundary */
            const double s0 = nd / n_x, s1 = n_dhat / n_h, s2 = sqrt(n_wg * n_wg + n_wu * n_wu) / n_agu,
                         s3 = n_dm / n_m, s4 = n_pd / n_y0, s5 = n_first / n_y;
            log_add(s1 / s0, &A->lg_gain[STEER_MLP_STAGE_NORM], &A->n_gain[STEER_MLP_STAGE_NORM]);
            log_add(s2 / s1, &A->lg_gain[STEER_MLP_STAGE_IN], &A->n_gain[STEER_MLP_STAGE_IN]);
            log_add(s3 / s2, &A->lg_gain[STEER_MLP_STAGE_GATE], &A->n_gain[STEER_MLP_STAGE_GATE]);
            log_add(s4 / s3, &A->lg_gain[STEER_MLP_STAGE_DOWN], &A->n_gain[STEER_MLP_STAGE_DOWN]);
            if (b->post) log_add(s5 / s4, &A->lg_gain[STEER_MLP_STAGE_POST], &A->n_gain[STEER_MLP_STAGE_POST]);
            /* and of the shift's norm itself */
            const double n_in = sqrt(n_wg * n_wg + n_wu * n_wu);
            log_add(n_dhat / nd, &A->lg_abs[STEER_MLP_STAGE_NORM], &A->n_abs[STEER_MLP_STAGE_NORM]);
            log_add(n_in / n_dhat, &A->lg_abs[STEER_MLP_STAGE_IN], &A->n_abs[STEER_MLP_STAGE_IN]);
            log_add(n_dm / n_in, &A->lg_abs[STEER_MLP_STAGE_GATE], &A->n_abs[STEER_MLP_STAGE_GATE]);
            log_add(n_pd / n_dm, &A->lg_abs[STEER_MLP_STAGE_DOWN], &A->n_abs[STEER_MLP_STAGE_DOWN]);
            if (b->post) log_add(n_first / n_pd, &A->lg_abs[STEER_MLP_STAGE_POST], &A->n_abs[STEER_MLP_STAGE_POST]);
        }
    }
    free(delta);
    free(fbuf);
    free(act);
    work_free(&w);
    return rc;
}

static double gmean(double s, int n) { return n > 0 ? exp(s / n) : NAN; }

static void att_finish(const att_acc *A, steer_mlp_att *o)
{
    const double n = A->n > 0 ? A->n : NAN;
    o->n = A->n;
    o->delta = A->delta / n;
    o->dhat = A->dhat / n;
    o->wg = A->wg / n;
    o->wu = A->wu / n;
    o->dm = A->dm / n;
    o->gated = A->gated / n;
    o->ungated = A->ungated / n;
    o->first = A->first / n;
    o->actual = A->actual / n;
    o->norm_ratio = gmean(A->lg_norm, A->n_norm);
    o->mlp_gain = gmean(A->lg_mlp, A->n_mlp);
    for (int a = 0; a < STEER_MLP_N_ALPHAS; a++) o->linerr[a] = A->n_lin[a] ? A->linerr[a] / A->n_lin[a] : NAN;
    o->align = A->n_align ? A->align / A->n_align : NAN;
    for (int s = 0; s < STEER_MLP_N_STAGES; s++) {
        o->gain[s] = gmean(A->lg_gain[s], A->n_gain[s]);
        o->abs_gain[s] = gmean(A->lg_abs[s], A->n_abs[s]);
    }
}

int steer_mlp_att_weakest(const steer_mlp_att *a, int relative)
{
    const double *g = relative ? a->gain : a->abs_gain;
    int best = -1;
    for (int s = 0; s < STEER_MLP_N_STAGES; s++) {
        if (s == STEER_MLP_STAGE_NORM && a->site == STEER_SITE_MLP_IN) continue;
        if (!isfinite(g[s])) continue;
        if (best < 0 || g[s] < g[best]) best = s;
    }
    return best;
}

void steer_mlp_att_describe(const steer_mlp_att *a, char *buf, size_t n)
{
    if (!buf || n == 0) return;
    size_t o = 0;
    buf[0] = 0;
#define PUT_(...)                                                                                                    \
    do {                                                                                                             \
        if (o < n) {                                                                                                 \
            int k_ = snprintf(buf + o, n - o, __VA_ARGS__);                                                          \
            if (k_ > 0) o += (size_t)k_;                                                                             \
        }                                                                                                            \
    } while (0)
    PUT_("layer %d, %s, %s: ", a->layer, steer_site_name(a->site), a->model);
    const int wa = steer_mlp_att_weakest(a, 0), wr = steer_mlp_att_weakest(a, 1);
    if (wa < 0 || wr < 0) {
        PUT_("no finite stage gains (n = %d)", a->n);
        return;
    }
    for (int rel = 0; rel < 2; rel++) {
        const double *g = rel ? a->gain : a->abs_gain;
        const int w = rel ? wr : wa;
        if (!rel) PUT_(g[w] < 1 ? "its norm shrinks most in %s (×%.2f;" : "no stage shrinks its norm (least growth "
                                                                          "in %s, ×%.2f;",
                       stage_words[w], g[w]);
        else PUT_(g[w] < 1 ? "; relative to the activation it rides on it loses most in %s (×%.2f;"
                           : "; relative to the activation it rides on no stage shrinks it (least growth in %s, ×%.2f;",
                  stage_words[w], g[w]);
        for (int s = 0, first = 1; s < STEER_MLP_N_STAGES; s++) {
            if (s == STEER_MLP_STAGE_NORM && a->site == STEER_SITE_MLP_IN) continue;
            if (!isfinite(g[s])) continue;
            PUT_("%s %s ×%.2f", first ? "" : ",", stage_names[s], g[s]);
            first = 0;
        }
        PUT_(")");
    }
    PUT_("; ‖ΔMLP‖/‖Δ̂‖ = %.3g, alignment %.2f, linearisation error %.0f%% at α = 1, %.1f%% at α = %g",
         a->mlp_gain, a->align, 100 * a->linerr[0], 100 * a->linerr[STEER_MLP_N_ALPHAS - 1],
         steer_mlp_alphas[STEER_MLP_N_ALPHAS - 1]);
#undef PUT_
}

/* ---------------------------------------------------------------- the run over a dataset */

struct steer_mlp_result {
    char name[128];
    char arch[32];
    steer_act act;
    int n_layer, d, f, token;
    int n_sel;
    int *layers;              /* [n_sel] ascending                           */
    int n_items, n_skipped, n_pos;
    float **absg;             /* [n_sel·2] each [n_pos·f]: |g1|, |g2|       */
    steer_mlp_stats *stats;   /* [n_sel·2]                                  */
    steer_mlp_att *att;       /* [n_att]                                    */
    int n_att;
};

steer_mlp_params steer_mlp_default_params(void)
{
    steer_mlp_params p;
    memset(&p, 0, sizeof p);
    p.token = 1;
    return p;
}

void steer_mlp_result_free(steer_mlp_result *r)
{
    if (!r) return;
    if (r->absg)
        for (int i = 0; i < 2 * r->n_sel; i++) free(r->absg[i]);
    free(r->absg);
    free(r->stats);
    free(r->att);
    free(r->layers);
    free(r);
}

int steer_mlp_result_positions(const steer_mlp_result *r) { return r->n_pos; }
int steer_mlp_result_items(const steer_mlp_result *r) { return r->n_items; }
int steer_mlp_result_skipped(const steer_mlp_result *r) { return r->n_skipped; }
int steer_mlp_result_att_count(const steer_mlp_result *r) { return r->n_att; }
const steer_mlp_att *steer_mlp_result_att(const steer_mlp_result *r, int i)
{
    return i >= 0 && i < r->n_att ? &r->att[i] : NULL;
}

static int sel_index(const steer_mlp_result *r, int layer)
{
    for (int i = 0; i < r->n_sel; i++)
        if (r->layers[i] == layer) return i;
    return -1;
}

const float *steer_mlp_result_values(const steer_mlp_result *r, int layer, int quantity, size_t *n)
{
    int i = sel_index(r, layer);
    if (i < 0 || (quantity != 1 && quantity != 2)) return NULL;
    if (n) *n = (size_t)r->n_pos * r->f;
    return r->absg[2 * i + quantity - 1];
}

int steer_mlp_result_stats(const steer_mlp_result *r, int layer, int quantity, steer_mlp_stats *out)
{
    int i = sel_index(r, layer);
    if (i < 0 || (quantity != 1 && quantity != 2))
        return steer_err(STEER_EARG, "mlp result: no layer %d / quantity %d", layer, quantity);
    *out = r->stats[2 * i + quantity - 1];
    return STEER_OK;
}

/* The attenuation sites: p->sites, or those the vectors hold. */
static int resolve_sites(const steer_mlp_params *p, steer_site *sites, int *n_sites)
{
    const char *path = p->vectors_path ? p->vectors_path : "vectors";
    *n_sites = 0;
    if (!p->vectors) return STEER_OK;
    if (p->n_sites < 0 || p->n_sites > 2) return steer_err(STEER_EARG, "mlp analysis: %d sites (1 or 2)", p->n_sites);
    if (p->n_sites > 0) {
        for (int i = 0; i < p->n_sites; i++) {
            if (p->sites[i] != STEER_SITE_ATTN_OUT && p->sites[i] != STEER_SITE_MLP_IN)
                return steer_err(STEER_EARG, "attenuation sites are attn_out and mlp_in, not %s",
                                 steer_site_name(p->sites[i]));
            if (i == 1 && p->sites[1] == p->sites[0]) break;
            sites[(*n_sites)++] = p->sites[i];
        }
        return STEER_OK;
    }
    const steer_site cand[2] = {STEER_SITE_ATTN_OUT, STEER_SITE_MLP_IN};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < steer_vecset_count(p->vectors); i++)
            if (steer_vecset_at(p->vectors, i)->site == cand[s]) {
                sites[(*n_sites)++] = cand[s];
                break;
            }
    if (*n_sites == 0) return steer_err(STEER_EARG, "%s: no attn_out or mlp_in vectors", path);
    return STEER_OK;
}

int steer_mlp_check_vectors(const steer_model *m, const steer_mlp_params *p)
{
    if (!p->vectors) return STEER_OK;
    const char *path = p->vectors_path ? p->vectors_path : "vectors";
    const steer_vecset *vs = p->vectors;
    const steer_model_config *cfg = steer_model_get_config(m);
    const char *hint = steer_vecset_meta(vs, "model_hint");
    if (hint && *hint && strcmp(hint, cfg->arch_name) != 0)
        for (int a = 0; a < STEER_ARCH_COUNT; a++)
            if (strcmp(hint, steer_arch_name((steer_arch)a)) == 0)
                return steer_err(STEER_EARG, "%s: vectors made for a %s model (model_hint) but this model is %s", path,
                                 hint, cfg->arch_name);
    const char *dm = steer_vecset_meta(vs, "d_model");
    if (dm && *dm) {
        char *end;
        long v = strtol(dm, &end, 10);
        if (!*end && v != cfg->d_model)
            return steer_err(STEER_EARG, "%s: vectors made for d_model %ld but this model has d_model %d", path, v,
                             cfg->d_model);
    }
    int rc = steer_vecset_check_model(vs, m, path);
    if (rc) return rc;
    steer_site sites[2];
    int n_sites;
    if ((rc = resolve_sites(p, sites, &n_sites))) return rc;
    for (int s = 0; s < n_sites; s++)
        for (int l = 0; l < cfg->n_layer; l++) {
            if (p->layers && !p->layers[l]) continue;
            const steer_vec *v = steer_vecset_find(vs, sites[s], l);
            if (!v)
                return steer_err(STEER_EARG, "%s: no vector %s.%d (analyse only layers that have one: --layers)", path,
                                 steer_site_name(sites[s]), l);
            if (v->n_rows != 0)
                return steer_err(STEER_EARG, "%s: %s.%d holds %d per-position rows; the analysis needs one vector per "
                                 "layer [%d]", path, steer_site_name(sites[s]), l, v->n_rows, v->width);
        }
    return STEER_OK;
}

/* One item: the tokens of prompt ⊕ completion and the positions analysed. */
typedef struct {
    int *tok;
    int T;        /* tokens                                          */
    int p0, np;   /* positions p0 … p0 + np − 1 (np = 0: skipped)    */
    int row0;     /* first destination row                           */
} item_job;

static int build_job(const steer_model *m, const steer_dataset *d, int i, int token, item_job *j)
{
    const steer_data_item *it = steer_data_at(d, i);
    char wb[600];
    memset(j, 0, sizeof *j);
    if (!it->completion)
        return steer_err(STEER_EFORMAT, "%s has no completion (answer); the analysis runs prompt + gold completion",
                         data_item_where(d, it, wb, sizeof wb));
    int *pt = NULL, np = 0, *full = NULL, nfull = 0, rc;
    if ((rc = steer_tokenize_alloc(m, it->prompt, 1, &pt, &np))) return rc;
    int c = 0; /* the completion starts at token c */
    rc = data_tokenize_pair(m, it->prompt, pt, np, it->completion, &full, &nfull, &c);
    free(pt);
    if (rc) return rc;
    if (c >= nfull || c < 1) {
        free(full);
        return steer_err(STEER_EFORMAT, "%s has an empty completion", data_item_where(d, it, wb, sizeof wb));
    }
    const int n_ctx = steer_model_get_config(m)->n_ctx_train;
    if (n_ctx > 0 && nfull > n_ctx) {
        free(full);
        return steer_err(STEER_ECONTEXT, "%s: prompt + completion is %d tokens but the model's context holds %d",
                         data_item_where(d, it, wb, sizeof wb), nfull, n_ctx);
    }
    const int n_cont = nfull - c;
    j->tok = full;
    j->T = nfull;
    if (token <= 0) {
        j->p0 = c - 1;
        j->np = n_cont;
    } else if (token <= n_cont) {
        j->p0 = c - 1 + token - 1;
        j->np = 1;
    }
    return STEER_OK;
}

static void quantile_stats(float *v, long n, steer_mlp_stats *s)
{
    s->n = n;
    double sum = 0;
    long below = 0;
    for (long i = 0; i < n; i++) {
        sum += v[i];
        below += v[i] < 1e-3f;
    }
    s->mean = n ? sum / n : NAN;
    s->share_below = n ? (double)below / n : NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    const double ps[3] = {0.5, 0.9, 0.99};
    double q[3];
    for (int k = 0; k < 3; k++) {
        if (n == 0) {
            q[k] = NAN;
            continue;
        }
        const double hh = (n - 1) * ps[k];
        const long lo = (long)floor(hh);
        const long hi = lo + 1 < n ? lo + 1 : lo;
        q[k] = v[lo] + (hh - lo) * ((double)v[hi] - v[lo]);
    }
    s->median = q[0];
    s->p90 = q[1];
    s->p99 = q[2];
}

/* The run in steps (steer_exp.h: steer_mlp_job). A job holds the items'
 * tokens and positions, a context whose captures write the chosen positions
 * of one item into a scratch record, and (collect) the result buffers the
 * records are put into. A record is, for k = resid_mid, mlp_in, mlp_gate,
 * mlp_up (the first two only when an attenuation site needs them) and every
 * chosen layer, the item's np rows of that capture as floats. */
struct steer_mlp_job {
    steer_model *m;
    const steer_dataset *d;
    steer_mlp_params p;
    steer_mlp_result *r;
    int n_items, T_max, np_max, collect;
    int n_sel;                /* chosen layers (bufs, scratch: 4·n_sel)     */
    item_job *jobs;
    steer_site sites[2];
    int n_sites;
    int need[4];              /* captures kept: resid_mid, mlp_in, gate, up */
    int width[4];
    float **bufs;             /* collect: [4·n_sel] each [n_pos, width] (NULL: not kept) */
    float **scratch;          /* [4·n_sel] each [np_max, width]             */
    int *row_of, *pos;        /* [T_max]                                    */
    int8_t *want_logits;      /* [T_max]                                    */
    steer_ctx *c;
    int n_put;
    unsigned char *put_done;  /* [n_items]                                  */
};

void steer_mlp_job_free(steer_mlp_job *j)
{
    if (!j) return;
    steer_ctx_free(j->c);
    for (int i = 0; i < 4 * j->n_sel; i++) {
        if (j->bufs) free(j->bufs[i]);
        if (j->scratch) free(j->scratch[i]);
    }
    free(j->bufs);
    free(j->scratch);
    free(j->row_of);
    free(j->pos);
    free(j->want_logits);
    free(j->put_done);
    if (j->jobs)
        for (int i = 0; i < j->n_items; i++) free(j->jobs[i].tok);
    free(j->jobs);
    steer_mlp_result_free(j->r);
    free(j);
}

int steer_mlp_job_new(steer_model *m, const char *name, const steer_dataset *d, const steer_mlp_params *p, int collect,
                      steer_mlp_job **out)
{
    /* Ownership: borrows m, d and p (p->vectors and p->layers must outlive
     * the job); *out is the caller's. */
    *out = NULL;
    if (!m || !d || !p) return steer_err(STEER_EARG, "mlp analysis: missing model, data or parameters");
    if (p->token < 0) return steer_err(STEER_EARG, "mlp analysis: token must be >= 1 (or 0: all), got %d", p->token);
    const steer_model_config *cfg = steer_model_get_config(m);
    const int L = cfg->n_layer, dm = cfg->d_model, f = cfg->d_ff;
    int rc = STEER_OK;
    for (int l = 0; l < L; l++)
        if ((!p->layers || p->layers[l]) && (rc = check_gated(m, l))) return rc;
    if ((rc = steer_mlp_check_vectors(m, p))) return rc;
    steer_mlp_job *j = calloc(1, sizeof *j);
    if (!j) return steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
    j->m = m;
    j->d = d;
    j->p = *p;
    j->collect = collect;
    if ((rc = resolve_sites(p, j->sites, &j->n_sites))) goto fail;
    for (int s = 0; s < j->n_sites; s++) {
        j->need[0] |= j->sites[s] == STEER_SITE_ATTN_OUT;
        j->need[1] |= j->sites[s] == STEER_SITE_MLP_IN;
    }
    j->need[2] = j->need[3] = 1;
    j->width[0] = j->width[1] = dm;
    j->width[2] = j->width[3] = f;

    steer_mlp_result *r = j->r = calloc(1, sizeof *r);
    j->n_items = steer_data_count(d);
    j->jobs = calloc((size_t)(j->n_items > 0 ? j->n_items : 1), sizeof *j->jobs);
    j->put_done = calloc((size_t)(j->n_items > 0 ? j->n_items : 1), 1);
    if (!r || !j->jobs || !j->put_done) {
        rc = steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
        goto fail;
    }
    snprintf(r->name, sizeof r->name, "%s", name ? name : cfg->arch_name);
    for (char *q = r->name; *q; q++)
        if (*q == ',' || *q == '"' || *q == '\n' || *q == '\r') *q = '_';
    snprintf(r->arch, sizeof r->arch, "%s", cfg->arch_name);
    r->act = cfg->act;
    r->n_layer = L;
    r->d = dm;
    r->f = f;
    r->token = p->token;
    r->layers = malloc((size_t)L * sizeof *r->layers);
    if (!r->layers) {
        rc = steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
        goto fail;
    }
    for (int l = 0; l < L; l++)
        if (!p->layers || p->layers[l]) r->layers[r->n_sel++] = l;
    if (r->n_sel == 0) {
        rc = steer_err(STEER_EARG, "mlp analysis: no layers chosen");
        goto fail;
    }

    /* Tokenize every item; positions and rows. */
    for (int i = 0; i < j->n_items; i++) {
        if ((rc = build_job(m, d, i, p->token, &j->jobs[i]))) goto fail;
        if (j->jobs[i].np == 0) {
            r->n_skipped++;
            continue;
        }
        j->jobs[i].row0 = r->n_pos;
        r->n_pos += j->jobs[i].np;
        r->n_items++;
        if (j->jobs[i].T > j->T_max) j->T_max = j->jobs[i].T;
        if (j->jobs[i].np > j->np_max) j->np_max = j->jobs[i].np;
    }
    if (r->n_pos == 0) {
        rc = steer_err(STEER_EARG, "%s: no item has a completion token %d (every item was skipped)",
                       steer_data_path(d)[0] ? steer_data_path(d) : "dataset", p->token);
        goto fail;
    }

    /* Buffers: the result's (collect) and one item's scratch. */
    const int S = j->n_sel = r->n_sel, N = r->n_pos, T_max = j->T_max;
    j->bufs = calloc((size_t)4 * S, sizeof *j->bufs);
    j->scratch = calloc((size_t)4 * S, sizeof *j->scratch);
    j->row_of = malloc((size_t)T_max * sizeof *j->row_of);
    j->pos = malloc((size_t)T_max * sizeof *j->pos);
    j->want_logits = calloc((size_t)T_max, 1);
    if (!j->bufs || !j->scratch || !j->row_of || !j->pos || !j->want_logits) {
        rc = steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
        goto fail;
    }
    for (int k = 0; k < 4 && !rc; k++)
        for (int li = 0; li < S && !rc; li++) {
            if (!j->need[k]) continue;
            if (collect && !(j->bufs[k * S + li] = malloc((size_t)N * j->width[k] * sizeof(float)))) rc = STEER_ENOMEM;
            if (!(j->scratch[k * S + li] = calloc((size_t)j->np_max * j->width[k], sizeof(float)))) rc = STEER_ENOMEM;
        }
    if (rc) {
        rc = steer_err(STEER_ENOMEM, "mlp analysis: out of memory (%d positions × %d layers)", N, S);
        goto fail;
    }
    /* Captures of the chosen positions of the current item: position t goes
     * to scratch row row_of[t] (-1: not captured), refilled per item. */
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = T_max;
    if ((rc = steer_ctx_new(m, &cp, &j->c))) goto fail;
    for (int t = 0; t < T_max; t++) {
        j->row_of[t] = -1;
        j->pos[t] = t;
    }
    static const steer_site cs[4] = {STEER_SITE_RESID_MID, STEER_SITE_MLP_IN, STEER_SITE_MLP_GATE, STEER_SITE_MLP_UP};
    for (int k = 0; k < 4 && !rc; k++)
        for (int li = 0; li < S && !rc; li++) {
            if (!j->need[k]) continue;
            const int id = steer_ctx_add_capture_into(j->c, cs[k], r->layers[li], 0, j->scratch[k * S + li], j->np_max,
                                                      j->width[k], j->row_of, T_max);
            if (id < 0) rc = id;
        }
    if (rc) goto fail;
    *out = j;
    return STEER_OK;
fail:
    steer_mlp_job_free(j);
    return rc;
}

int steer_mlp_job_items(const steer_mlp_job *j) { return j ? j->n_items : 0; }

size_t steer_mlp_job_record_size(const steer_mlp_job *j, int item)
{
    if (!j || !j->r || item < 0 || item >= j->n_items) return 0;
    size_t w = 0;
    for (int k = 0; k < 4; k++) w += j->need[k] ? (size_t)j->width[k] : 0;
    return (size_t)j->jobs[item].np * j->r->n_sel * w * sizeof(float);
}

int steer_mlp_job_run(steer_mlp_job *j, int item, void *rec, size_t n)
{
    if (!j || !j->r || !j->c || item < 0 || item >= j->n_items) return steer_err(STEER_EARG, "mlp analysis: item %d out of range", item);
    const item_job *jb = &j->jobs[item];
    if (n != steer_mlp_job_record_size(j, item))
        return steer_err(STEER_EARG, "mlp analysis: item %d: a record of %zu bytes, want %zu", item, n,
                         steer_mlp_job_record_size(j, item));
    if (jb->np == 0) return STEER_OK;
    for (int t = 0; t < j->T_max; t++) j->row_of[t] = t >= jb->p0 && t < jb->p0 + jb->np ? t - jb->p0 : -1;
    steer_ctx_clear(j->c, -1);
    steer_batch b = {jb->T, jb->tok, j->pos, NULL, j->want_logits};
    int rc = steer_forward(j->c, &b);
    if (rc) return rc;
    const int S = j->r->n_sel;
    unsigned char *q = rec;
    for (int k = 0; k < 4; k++)
        for (int li = 0; li < S; li++) {
            if (!j->need[k]) continue;
            const size_t bytes = (size_t)jb->np * j->width[k] * sizeof(float);
            memcpy(q, j->scratch[k * S + li], bytes);
            q += bytes;
        }
    return STEER_OK;
}

int steer_mlp_job_put(steer_mlp_job *j, int item, const void *rec, size_t n)
{
    if (!j || !j->r || item < 0 || item >= j->n_items) return steer_err(STEER_EARG, "mlp analysis: item %d out of range", item);
    if (!j->collect) return steer_err(STEER_EARG, "mlp analysis: this job does not collect records");
    if (n != steer_mlp_job_record_size(j, item))
        return steer_err(STEER_EFORMAT, "mlp analysis: item %d: a record of %zu bytes, want %zu", item, n,
                         steer_mlp_job_record_size(j, item));
    const item_job *jb = &j->jobs[item];
    if (jb->np == 0) return STEER_OK;
    if (j->put_done[item]) return steer_err(STEER_EARG, "mlp analysis: item %d put twice", item);
    const int S = j->r->n_sel;
    const unsigned char *q = rec;
    for (int k = 0; k < 4; k++)
        for (int li = 0; li < S; li++) {
            if (!j->need[k]) continue;
            const size_t bytes = (size_t)jb->np * j->width[k] * sizeof(float);
            memcpy(j->bufs[k * S + li] + (size_t)jb->row0 * j->width[k], q, bytes);
            q += bytes;
        }
    j->put_done[item] = 1;
    j->n_put++;
    if (j->p.on_item) j->p.on_item(j->p.ud, j->n_put, j->r->n_items);
    return STEER_OK;
}

int steer_mlp_job_finish(steer_mlp_job *j, steer_mlp_result **out)
{
    *out = NULL;
    if (!j || !j->r || !j->collect) return steer_err(STEER_EARG, "mlp analysis: this job does not collect records");
    if (j->n_put != j->r->n_items)
        return steer_err(STEER_EARG, "mlp analysis: %d of %d items put", j->n_put, j->r->n_items);
    steer_ctx_free(j->c);
    j->c = NULL;
    steer_mlp_result *r = j->r;
    const steer_model_config *cfg = steer_model_get_config(j->m);
    const int S = r->n_sel, N = r->n_pos, f = r->f;
    float **bufs = j->bufs;
    int rc = STEER_OK;

    /* |g1|, |g2| per layer and their statistics. */
    r->absg = calloc((size_t)2 * S, sizeof *r->absg);
    r->stats = calloc((size_t)2 * S, sizeof *r->stats);
    if (!r->absg || !r->stats) return steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
    {
        const size_t NF = (size_t)N * f;
        double *ag = dalloc(NF), *au = dalloc(NF), *g1 = dalloc(NF), *g2 = dalloc(NF), *ones = dalloc(NF);
        float *sorted = malloc((NF ? NF : 1) * sizeof *sorted);
        if (!ag || !au || !g1 || !g2 || !ones || !sorted) rc = steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
        for (size_t i = 0; !rc && i < NF; i++) ones[i] = 1.0;
        for (int li = 0; li < S && !rc; li++) {
            const float *fa = bufs[2 * S + li], *fu = bufs[3 * S + li];
            for (size_t i = 0; i < NF; i++) {
                ag[i] = fa[i];
                au[i] = fu[i];
                g1[i] = g2[i] = 0;
            }
            tr_glu_backward_f64(g1, g2, ones, ag, au, NF, cfg->act);
            float *v1 = malloc((NF ? NF : 1) * sizeof *v1), *v2 = malloc((NF ? NF : 1) * sizeof *v2);
            r->absg[2 * li] = v1;
            r->absg[2 * li + 1] = v2;
            if (!v1 || !v2) {
                rc = steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
                break;
            }
            for (size_t i = 0; i < NF; i++) {
                v1[i] = (float)fabs(g1[i]);
                v2[i] = (float)fabs(g2[i]);
                if (!isfinite(v1[i]) || !isfinite(v2[i])) {
                    rc = steer_err(STEER_ENAN, "mlp analysis: layer %d: non-finite g1/g2 (activations overflow)",
                                   r->layers[li]);
                    break;
                }
            }
            for (int q = 0; q < 2 && !rc; q++) {
                memcpy(sorted, r->absg[2 * li + q], NF * sizeof *sorted);
                quantile_stats(sorted, (long)NF, &r->stats[2 * li + q]);
            }
        }
        free(ag);
        free(au);
        free(g1);
        free(g2);
        free(ones);
        free(sorted);
        if (rc) return rc;
    }

    /* Attenuation per (site, layer). */
    if (j->n_sites) {
        r->att = calloc((size_t)j->n_sites * S, sizeof *r->att);
        if (!r->att) return steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
        for (int s = 0; s < j->n_sites && !rc; s++)
            for (int li = 0; li < S && !rc; li++) {
                const int l = r->layers[li];
                steer_mlp_branch *br = NULL;
                if ((rc = steer_mlp_branch_new(j->m, l, &br))) break;
                const steer_vec *v = steer_vecset_find(j->p.vectors, j->sites[s], l);
                att_acc A;
                memset(&A, 0, sizeof A);
                const int norm = j->sites[s] == STEER_SITE_ATTN_OUT;
                rc = att_rows(br, norm, norm ? bufs[li] : bufs[S + li], N, v->data, &A);
                steer_mlp_branch_free(br);
                if (rc) break;
                steer_mlp_att *o = &r->att[r->n_att++];
                att_finish(&A, o);
                snprintf(o->model, sizeof o->model, "%s", r->name);
                o->site = j->sites[s];
                o->layer = l;
            }
        if (rc) return rc;
    }
    *out = r;
    j->r = NULL; /* the caller's now: nothing more to run or put */
    return STEER_OK;
}

int steer_mlp_run(steer_model *m, const char *name, const steer_dataset *d, const steer_mlp_params *p,
                  steer_mlp_result **out)
{
    /* Ownership: borrows m, d and p; *out is the caller's. One process: every
     * item's record is made and put in dataset order. */
    *out = NULL;
    steer_mlp_job *j = NULL;
    int rc = steer_mlp_job_new(m, name, d, p, 1, &j);
    void *rec = NULL;
    size_t cap = 0;
    for (int i = 0; !rc && i < j->n_items; i++) {
        const size_t n = steer_mlp_job_record_size(j, i);
        if (n == 0) continue;
        if (n > cap) {
            void *nr = realloc(rec, n);
            if (!nr) {
                rc = steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
                break;
            }
            rec = nr;
            cap = n;
        }
        if (!(rc = steer_mlp_job_run(j, i, rec, n))) rc = steer_mlp_job_put(j, i, rec, n);
    }
    free(rec);
    if (!rc) rc = steer_mlp_job_finish(j, out);
    steer_mlp_job_free(j);
    return rc;
}

/* ---------------------------------------------------------------- outputs */

static const char stats_header[] = "model,layer,quantity,n,mean,median,p90,p99,share_below_1e-3";
static const char hist_header[] = "model,quantity,layer,bin_lo,bin_hi,count";
static const char att_header[] =
    "model,site,layer,n,delta_norm,dhat_norm,wg_dhat_norm,wu_dhat_norm,dm_norm,gated_norm,ungated_norm,"
    "first_norm,actual_norm,norm_ratio,mlp_gain,linerr_1,linerr_0.5,linerr_0.25,linerr_0.125,align,"
    "abs_norm,abs_in,abs_gate,abs_down,abs_post,gain_norm,gain_in,gain_gate,gain_down,gain_post,weakest_abs,weakest";

/* Shared log-spaced bins of one quantity: edge k = 10^(−6 + k/10), k = 0 … nb. */
typedef struct {
    int nb;     /* log bins (the underflow bin is extra)  */
    double hi;  /* 10^(−6 + nb/10)                        */
} bins;

static double bin_edge(int k) { return pow(10.0, log10(STEER_MLP_BIN_LO) + (double)k / STEER_MLP_BINS_PER_DECADE); }

static bins make_bins(const steer_mlp_result *const *r, int n, int q)
{
    double mx = 0;
    for (int i = 0; i < n; i++)
        for (int li = 0; li < r[i]->n_sel; li++) {
            const float *v = r[i]->absg[2 * li + q];
            for (size_t k = 0; k < (size_t)r[i]->n_pos * r[i]->f; k++) mx = v[k] > mx ? v[k] : mx;
        }
    int dec_hi = mx > STEER_MLP_BIN_LO ? (int)ceil(log10(mx) - 1e-12) : (int)log10(STEER_MLP_BIN_LO) + 1;
    if (pow(10.0, dec_hi) < mx) dec_hi++; /* the top edge is never below the largest value */
    int decades = dec_hi - (int)round(log10(STEER_MLP_BIN_LO));
    if (decades < 1) decades = 1;
    bins b = {decades * STEER_MLP_BINS_PER_DECADE, 0};
    b.hi = bin_edge(b.nb);
    return b;
}

/* counts[0] = underflow, counts[1 + k] = bin k. */
static void bin_counts(const float *v, size_t n, const bins *b, long *counts)
{
    memset(counts, 0, (size_t)(b->nb + 1) * sizeof *counts);
    const double l0 = log10(STEER_MLP_BIN_LO);
    for (size_t i = 0; i < n; i++) {
        const double x = v[i];
        if (!(x >= STEER_MLP_BIN_LO)) {
            counts[0]++;
            continue;
        }
        int k = (int)floor((log10(x) - l0) * STEER_MLP_BINS_PER_DECADE);
        if (k < 0) k = 0;
        if (k > b->nb - 1) k = b->nb - 1;
        while (k > 0 && x < bin_edge(k)) k--;
        while (k < b->nb - 1 && x >= bin_edge(k + 1)) k++;
        counts[1 + k]++;
    }
}

static const char *qname(int q) { return q == 0 ? "g1" : "g2"; }

static int write_stats_csv(const steer_mlp_result *const *r, int n, const char *path)
{
    char tmp[IO_TMP_PATH_MAX];
    FILE *f = io_tmp_open(path, tmp);
    if (!f) return STEER_EIO;
    fprintf(f, "%s\n", stats_header);
    for (int i = 0; i < n; i++)
        for (int li = 0; li < r[i]->n_sel; li++)
            for (int q = 0; q < 2; q++) {
                const steer_mlp_stats *s = &r[i]->stats[2 * li + q];
                fprintf(f, "%s,%d,%s,%ld,%.9g,%.9g,%.9g,%.9g,%.9g\n", r[i]->name, r[i]->layers[li], qname(q), s->n,
                        s->mean, s->median, s->p90, s->p99, s->share_below);
            }
    return io_tmp_commit(f, tmp, path, !ferror(f));
}

static int write_hist_csv(const steer_mlp_result *const *r, int n, const bins *bq, long *const *counts,
                          const char *path)
{
    char tmp[IO_TMP_PATH_MAX];
    FILE *f = io_tmp_open(path, tmp);
    if (!f) return STEER_EIO;
    fprintf(f, "%s\n", hist_header);
    const int S = r[0]->n_sel;
    for (int i = 0; i < n; i++)
        for (int q = 0; q < 2; q++)
            for (int li = 0; li < S; li++) {
                const long *c = counts[(size_t)(i * 2 + q) * S + li];
                fprintf(f, "%s,%s,%d,0,%.9g,%ld\n", r[i]->name, qname(q), r[i]->layers[li], STEER_MLP_BIN_LO, c[0]);
                for (int k = 0; k < bq[q].nb; k++)
                    fprintf(f, "%s,%s,%d,%.9g,%.9g,%ld\n", r[i]->name, qname(q), r[i]->layers[li], bin_edge(k),
                            bin_edge(k + 1), c[1 + k]);
            }
    return io_tmp_commit(f, tmp, path, !ferror(f));
}

static int write_att_csv(const steer_mlp_result *const *r, int n, const char *path)
{
    char tmp[IO_TMP_PATH_MAX];
    FILE *f = io_tmp_open(path, tmp);
    if (!f) return STEER_EIO;
    fprintf(f, "%s\n", att_header);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < r[i]->n_att; k++) {
            const steer_mlp_att *a = &r[i]->att[k];
            fprintf(f, "%s,%s,%d,%d", a->model, steer_site_name(a->site), a->layer, a->n);
            const double v[] = {a->delta,  a->dhat,    a->wg,        a->wu,        a->dm,        a->gated,
                                a->ungated, a->first,  a->actual,    a->norm_ratio, a->mlp_gain, a->linerr[0],
                                a->linerr[1], a->linerr[2], a->linerr[3], a->align, a->abs_gain[0],
                                a->abs_gain[1], a->abs_gain[2], a->abs_gain[3], a->abs_gain[4], a->gain[0],
                                a->gain[1], a->gain[2], a->gain[3], a->gain[4]};
            for (size_t j = 0; j < sizeof v / sizeof v[0]; j++) fprintf(f, ",%.9g", v[j]);
            const int wa = steer_mlp_att_weakest(a, 0), wr = steer_mlp_att_weakest(a, 1);
            fprintf(f, ",%s,%s\n", wa >= 0 ? stage_names[wa] : "none", wr >= 0 ? stage_names[wr] : "none");
        }
    return io_tmp_commit(f, tmp, path, !ferror(f));
}

static const char *act_name(steer_act a)
{
    return a == STEER_ACT_SILU ? "silu" : a == STEER_ACT_GELU_TANH ? "gelu_tanh" : "gelu";
}

static int write_summary(const steer_mlp_result *const *r, int n, const steer_mlp_info *info, const bins *bq,
                         const char *path)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
    cJSON_AddStringToObject(j, "format", "steer-mlp/1");
    if (info && info->command) cJSON_AddStringToObject(j, "command", info->command);
    if (info && info->data) cJSON_AddStringToObject(j, "data", info->data);
    if (r[0]->token > 0) cJSON_AddNumberToObject(j, "token", r[0]->token);
    else cJSON_AddStringToObject(j, "token", "all");
    cJSON *ms = cJSON_AddArrayToObject(j, "models");
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", r[i]->name);
        if (info && info->model_paths && info->model_paths[i]) cJSON_AddStringToObject(o, "path", info->model_paths[i]);
        cJSON_AddStringToObject(o, "arch", r[i]->arch);
        cJSON_AddStringToObject(o, "act", act_name(r[i]->act));
        cJSON_AddNumberToObject(o, "d_model", r[i]->d);
        cJSON_AddNumberToObject(o, "d_ff", r[i]->f);
        cJSON_AddNumberToObject(o, "n_items", r[i]->n_items);
        cJSON_AddNumberToObject(o, "n_skipped", r[i]->n_skipped);
        cJSON_AddNumberToObject(o, "n_positions", r[i]->n_pos);
        cJSON_AddItemToArray(ms, o);
    }
    cJSON *ls = cJSON_AddArrayToObject(j, "layers");
    for (int li = 0; li < r[0]->n_sel; li++) cJSON_AddItemToArray(ls, cJSON_CreateNumber(r[0]->layers[li]));
    cJSON *b = cJSON_AddObjectToObject(j, "bins");
    cJSON_AddNumberToObject(b, "lo", STEER_MLP_BIN_LO);
    cJSON_AddNumberToObject(b, "per_decade", STEER_MLP_BINS_PER_DECADE);
    cJSON_AddNumberToObject(b, "g1_hi", bq[0].hi);
    cJSON_AddNumberToObject(b, "g2_hi", bq[1].hi);
    if (info && info->vectors) cJSON_AddStringToObject(j, "vectors", info->vectors);
    cJSON *ss = cJSON_AddArrayToObject(j, "sites");
    for (int k = 0; k < r[0]->n_att; k++) {
        const char *sn = steer_site_name(r[0]->att[k].site);
        int dup = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, ss) dup |= strcmp(e->valuestring, sn) == 0;
        if (!dup) cJSON_AddItemToArray(ss, cJSON_CreateString(sn));
    }
    int rc = io_write_json(path, j);
    cJSON_Delete(j);
    return rc;
}

/* mlp_hist.png/.svg: rows g1, g2; a column per layer; a step line per model
 * (share of the values per bin; the underflow bin is not drawn). */
static int hist_figure(const steer_mlp_result *const *r, int n, const bins *bq, long *const *counts, const char *dir)
{
    /* at most 8 columns (4..8 with the fewest empty panels): each term gets R
     * rows of layers, empty panels pad the last */
    const int S = r[0]->n_sel;
    int cols = S;
    if (S > 8) {
        cols = 8;
        for (int c = 8, best = 1 << 30; c >= 4; c--) {
            const int pad = (S + c - 1) / c * c - S;
            if (pad < best) {
                best = pad;
                cols = c;
            }
        }
    }
    const int R = (S + cols - 1) / cols, per = R * cols, n_panels = 2 * per;
    const int nbmax = bq[0].nb > bq[1].nb ? bq[0].nb : bq[1].nb;
    const size_t npt = (size_t)2 * nbmax + 2;
    plot_panel *panels = calloc((size_t)n_panels, sizeof *panels);
    plot_series *series = calloc((size_t)n_panels * n, sizeof *series);
    double *xs = malloc((size_t)n_panels * n * npt * sizeof *xs), *ys = malloc((size_t)n_panels * n * npt * sizeof *ys);
    char(*titles)[96] = calloc((size_t)n_panels, sizeof *titles);
    int rc = STEER_OK;
    if (!panels || !series || !xs || !ys || !titles) {
        rc = steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
        goto end;
    }
    for (int q = 0; q < 2; q++)
        for (int li = 0; li < S; li++) {
            const int k = q * per + li;
            snprintf(titles[k], sizeof titles[k], "%s, layer %d", q == 0 ? "|g1| = |φ'(a_g)⊙a_u|" : "|g2| = |φ(a_g)|",
                     r[0]->layers[li]);
            panels[k].title = titles[k];
            panels[k].xlabel = q == 0 ? "|g1|" : "|g2|";
            panels[k].ylabel = li % cols == 0 ? "share of values" : NULL;
            panels[k].series = series + (size_t)k * n;
            panels[k].n_series = n;
            for (int i = 0; i < n; i++) {
                plot_series *se = &series[(size_t)k * n + i];
                double *x = xs + ((size_t)k * n + i) * npt, *y = ys + ((size_t)k * n + i) * npt;
                const long *c = counts[(size_t)(i * 2 + q) * S + li];
                const double tot = (double)r[i]->n_pos * r[i]->f;
                int m = 0;
                x[m] = bin_edge(0);
                y[m++] = 0;
                for (int b = 0; b < bq[q].nb; b++) {
                    const double v = tot > 0 ? c[1 + b] / tot : 0;
                    x[m] = bin_edge(b);
                    y[m++] = v;
                    x[m] = bin_edge(b + 1);
                    y[m++] = v;
                }
                x[m] = bin_edge(bq[q].nb);
                y[m++] = 0;
                se->label = r[i]->name;
                se->x = x;
                se->y = y;
                se->n = m;
                se->color = i + 1;
                se->dashed = i % 2 == 1;
            }
        }
    plot_figure fig;
    memset(&fig, 0, sizeof fig);
    char title[256];
    if (r[0]->token > 0)
        snprintf(title, sizeof title, "GLU modulation at the position predicting completion token %d", r[0]->token);
    else
        snprintf(title, sizeof title, "GLU modulation at every position predicting a completion token");
    fig.title = title;
    fig.cols = cols;
    fig.width = cols * 330 > 660 ? cols * 330 : 660;
    fig.height = 2 * R * 300 + 60;
    fig.legend = PLOT_LEGEND_FIGURE;
    fig.log_x = 1;
    fig.x_min = STEER_MLP_BIN_LO;
    fig.x_max = bq[0].hi > bq[1].hi ? bq[0].hi : bq[1].hi;
    fig.y_min = NAN;
    fig.y_max = NAN;
    if (!rc) rc = plot_write_pair(dir, "mlp_hist", &fig, panels, n_panels);
end:
    free(panels);
    free(series);
    free(xs);
    free(ys);
    free(titles);
    return rc;
}

/* attenuation.png/.svg: a column per (model, site); row 1 the stage gains
 * of the shift's norm, row 2 those relative to the activation; x = layer,
 * y = gain (log), a dashed line at 1. */
static int att_figure(const steer_mlp_result *const *r, int n, const char *dir)
{
    const int S = r[0]->n_sel;
    steer_site sites[2];
    int n_sites = 0;
    for (int k = 0; k < r[0]->n_att; k++) {
        int dup = 0;
        for (int s = 0; s < n_sites; s++) dup |= sites[s] == r[0]->att[k].site;
        if (!dup && n_sites < 2) sites[n_sites++] = r[0]->att[k].site;
    }
    const int n_cols = n * n_sites, n_panels = 2 * n_cols;
    if (n_cols == 0) return STEER_OK;
    const int ns = STEER_MLP_N_STAGES + 1;
    plot_panel *panels = calloc((size_t)n_panels, sizeof *panels);
    plot_series *series = calloc((size_t)n_panels * ns, sizeof *series);
    double *xs = malloc((size_t)S * sizeof *xs), *ys = malloc((size_t)n_panels * ns * S * sizeof *ys);
    char(*titles)[192] = calloc((size_t)n_panels, sizeof *titles);
    int rc = STEER_OK;
    if (!panels || !series || !xs || !ys || !titles) {
        rc = steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
        goto end;
    }
    for (int li = 0; li < S; li++) xs[li] = r[0]->layers[li];
    static const char *const labels[STEER_MLP_N_STAGES] = {"norm (pre-MLP RMSNorm)", "in (W_g, W_u)",
                                                          "gate (φ: g1, g2)", "down (W_d)", "post (post-ffn norm)"};
    for (int row = 0; row < 2; row++)
        for (int i = 0; i < n; i++)
            for (int s = 0; s < n_sites; s++) {
                const int col = i * n_sites + s, k = row * n_cols + col;
                snprintf(titles[k], sizeof titles[k], "%s, shift at %s", r[i]->name, steer_site_name(sites[s]));
                panels[k].title = titles[k];
                panels[k].xlabel = "layer";
                panels[k].ylabel = col == 0 ? (row ? "relative to the activation" : "norm gain ‖Δout‖/‖Δin‖") : NULL;
                panels[k].series = series + (size_t)k * ns;
                int m = 0;
                for (int st = 0; st <= STEER_MLP_N_STAGES; st++) {
                    double *y = ys + ((size_t)k * ns + st) * S;
                    int any = 0;
                    for (int li = 0; li < S; li++) {
                        y[li] = NAN;
                        if (st == STEER_MLP_N_STAGES) {
                            y[li] = 1.0;
                            continue;
                        }
                        for (int a = 0; a < r[i]->n_att; a++)
                            if (r[i]->att[a].site == sites[s] && r[i]->att[a].layer == r[i]->layers[li])
                                y[li] = row ? r[i]->att[a].gain[st] : r[i]->att[a].abs_gain[st];
                        if (st == STEER_MLP_STAGE_NORM && sites[s] == STEER_SITE_MLP_IN) y[li] = NAN; /* identity */
                        any |= isfinite(y[li]);
                    }
                    if (st < STEER_MLP_N_STAGES && !any) continue;
                    plot_series *se = &series[(size_t)k * ns + m++];
                    se->label = st < STEER_MLP_N_STAGES ? labels[st] : "1 (no change)";
                    se->x = xs;
                    se->y = y;
                    se->n = S;
                    se->color = st < STEER_MLP_N_STAGES ? st + 1 : 8;
                    se->markers = st < STEER_MLP_N_STAGES;
                    se->dashed = st == STEER_MLP_N_STAGES;
                }
                panels[k].n_series = m;
            }
    plot_figure fig;
    memset(&fig, 0, sizeof fig);
    fig.title = "Attenuation of a pre-MLP shift per stage, first order (top: its norm; bottom: relative to the "
                "activation; < 1 shrinks)";
    fig.cols = n_cols;
    fig.log_y = 1;
    fig.share_y = 1;
    fig.legend = PLOT_LEGEND_FIGURE;
    fig.x_int_ticks = 1;
    fig.y_min = NAN;
    fig.y_max = NAN;
    fig.x_min = NAN;
    fig.x_max = NAN;
    fig.width = n_cols * 460;
    fig.height = 2 * 340 + 90;
    if (!rc) rc = plot_write_pair(dir, "attenuation", &fig, panels, n_panels);
end:
    free(panels);
    free(series);
    free(xs);
    free(ys);
    free(titles);
    return rc;
}

int steer_mlp_write(const steer_mlp_result *const *r, int n, const steer_mlp_info *info, const char *dir)
{
    /* Ownership: borrows everything; writes files into dir. */
    if (!r || n < 1 || !dir || !*dir) return steer_err(STEER_EARG, "mlp analysis: nothing to write");
    for (int i = 1; i < n; i++) {
        int same = r[i]->n_sel == r[0]->n_sel && r[i]->token == r[0]->token;
        for (int li = 0; same && li < r[0]->n_sel; li++) same = r[i]->layers[li] == r[0]->layers[li];
        if (!same) return steer_err(STEER_EARG, "mlp analysis: %s and %s cover different layers or tokens", r[0]->name,
                                    r[i]->name);
        for (int k = 0; k < i; k++)
            if (strcmp(r[k]->name, r[i]->name) == 0)
                return steer_err(STEER_EARG, "mlp analysis: two models named '%s'", r[i]->name);
    }
    const int S = r[0]->n_sel;
    bins bq[2] = {make_bins(r, n, 0), make_bins(r, n, 1)};
    long **counts = calloc((size_t)n * 2 * S, sizeof *counts);
    int rc = counts ? STEER_OK : steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
    for (int i = 0; i < n && !rc; i++)
        for (int q = 0; q < 2 && !rc; q++)
            for (int li = 0; li < S && !rc; li++) {
                long *c = malloc((size_t)(bq[q].nb + 1) * sizeof *c);
                counts[(size_t)(i * 2 + q) * S + li] = c;
                if (!c) {
                    rc = steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
                    break;
                }
                bin_counts(r[i]->absg[2 * li + q], (size_t)r[i]->n_pos * r[i]->f, &bq[q], c);
            }
    int any_att = 0;
    for (int i = 0; i < n; i++) any_att |= r[i]->n_att > 0;
    char *ps = join(dir, "mlp_stats.csv"), *ph = join(dir, "hist.csv"), *pa = join(dir, "attenuation.csv"),
         *pj = join(dir, "mlp_summary.json");
    if (!rc && (!ps || !ph || !pa || !pj)) rc = steer_err(STEER_ENOMEM, "mlp analysis: out of memory");
    if (!rc) rc = io_mkdir_p(dir);
    /* Figures first: the marker file (mlp_stats.csv) comes last, so a
     * directory with it is complete. */
    if (!rc) rc = hist_figure(r, n, bq, counts, dir);
    if (!rc && any_att) rc = att_figure(r, n, dir);
    if (!rc) rc = write_hist_csv(r, n, bq, counts, ph);
    if (!rc && any_att) rc = write_att_csv(r, n, pa);
    if (!rc) rc = write_summary(r, n, info, bq, pj);
    if (!rc) rc = write_stats_csv(r, n, ps);
    if (counts)
        for (size_t i = 0; i < (size_t)n * 2 * S; i++) free(counts[i]);
    free(counts);
    free(ps);
    free(ph);
    free(pa);
    free(pj);
    return rc;
}

/* ---------------------------------------------------------------- reading attenuation.csv */

int steer_mlp_read_attenuation(const char *path, steer_mlp_att **rows, int *n)
{
    /* Ownership: *rows is the caller's (free). */
    *rows = NULL;
    *n = 0;
    io_map mp;
    int rc = io_map_open(path, &mp);
    if (rc) return rc;
    char *text = malloc(mp.size + 1);
    if (!text) {
        io_map_close(&mp);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    if (mp.size) memcpy(text, mp.data, mp.size);
    text[mp.size] = 0;
    io_map_close(&mp);
    steer_mlp_att *out = NULL;
    int cnt = 0, cap = 0, line = 0;
    char *cur = text, *ln;
    size_t len;
    while (!rc && (ln = text_next_line(&cur, &len))) {
        line++;
        if (line == 1) {
            if (strcmp(ln, att_header) != 0)
                rc = steer_err(STEER_EFORMAT, "%s:1: not an attenuation table (header differs)", path);
            continue;
        }
        if (!len) continue;
        char *f[32];
        int nf = 0;
        for (char *p = ln; nf < 32;) {
            f[nf++] = p;
            char *c = strchr(p, ',');
            if (!c) break;
            *c = 0;
            p = c + 1;
        }
        if (nf != 32) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: %d fields (expected 32)", path, line, nf);
            break;
        }
        if (cnt == cap) {
            cap = cap ? 2 * cap : 16;
            steer_mlp_att *g = realloc(out, (size_t)cap * sizeof *g);
            if (!g) {
                rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
                break;
            }
            out = g;
        }
        steer_mlp_att *a = &out[cnt];
        memset(a, 0, sizeof *a);
        snprintf(a->model, sizeof a->model, "%s", f[0]);
        if (steer_site_parse(f[1], &a->site) != STEER_OK ||
            (a->site != STEER_SITE_ATTN_OUT && a->site != STEER_SITE_MLP_IN)) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: site '%s' is not attn_out or mlp_in", path, line, f[1]);
            break;
        }
        char *end;
        long lv = strtol(f[2], &end, 10), nv;
        if (*end || lv < 0 || lv > 100000) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: bad layer '%s'", path, line, f[2]);
            break;
        }
        nv = strtol(f[3], &end, 10);
        if (*end || nv < 0 || nv > 2000000000L) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: bad count '%s'", path, line, f[3]);
            break;
        }
        a->layer = (int)lv;
        a->n = (int)nv;
        double *dst[] = {&a->delta,     &a->dhat,      &a->wg,        &a->wu,        &a->dm,      &a->gated,
                         &a->ungated,   &a->first,     &a->actual,    &a->norm_ratio, &a->mlp_gain, &a->linerr[0],
                         &a->linerr[1], &a->linerr[2], &a->linerr[3], &a->align,     &a->abs_gain[0],
                         &a->abs_gain[1], &a->abs_gain[2], &a->abs_gain[3], &a->abs_gain[4], &a->gain[0],
                         &a->gain[1],   &a->gain[2],   &a->gain[3],   &a->gain[4]};
        for (size_t j = 0; j < sizeof dst / sizeof dst[0] && !rc; j++) {
            const char *s = f[4 + j];
            *dst[j] = strtod(s, &end);
            if (!*s || *end) rc = steer_err(STEER_EFORMAT, "%s:%d: field %zu is not a number: '%s'", path, line, 5 + j, s);
        }
        if (!rc) cnt++;
    }
    free(text);
    if (!rc && line < 1) rc = steer_err(STEER_EFORMAT, "%s: empty file", path);
    if (rc) {
        free(out);
        return rc;
    }
    *rows = out;
    *n = cnt;
    return STEER_OK;
}

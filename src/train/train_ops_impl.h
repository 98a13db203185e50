/*
 * train_ops_impl.h — the training ops, written once over a type REAL.
 *
 * Not a normal header: no include guard; include it after defining
 *   REAL            the element type (float or double),
 *   R_(name)        the instance's name for name (e.g. name##_f32),
 * and optionally
 *   TRAIN_OPS_API   storage class of the ops (default: external linkage;
 *                   the double test instance uses static),
 *   TRAIN_OPS_SGEMM use cblas_sgemm in matmul (REAL must be float; the
 *                   includer includes <cblas.h>).
 * Conventions and per-op documentation: train_ops.h (the float prototypes)
 * and docs/TRAINING.md. Shapes below as [dims]; every backward accumulates.
 *
 * Sums: long reductions (RMSNorm's sum of squares, logsumexp over the
 * vocabulary, dweight/dbias over rows) accumulate in double in both
 * instances; dot products over head_dim and the attention softmax over T use
 * REAL, as the inference pass does. Every reduction runs in one fixed order
 * in one thread, so results do not depend on the thread count (the float
 * matmuls too: see tr_sgemm_tiled_).
 */
#ifndef REAL
#error "define REAL and R_(name) before including train_ops_impl.h"
#endif
#ifndef TRAIN_OPS_API
#define TRAIN_OPS_API
#endif

#include <math.h>
#include <stddef.h>
#include <string.h>

/* Work below which a loop stays on one thread. */
#ifndef TRAIN_OPS_PAR_MIN
#define TRAIN_OPS_PAR_MIN 32768
#endif

/* ---------------------------------------------------------------- math in REAL */

#define R_IS_F32 (sizeof(REAL) == sizeof(float))

static inline REAL R_(tr_exp_)(REAL x) { return R_IS_F32 ? (REAL)expf((float)x) : (REAL)exp((double)x); }
static inline REAL R_(tr_tanh_)(REAL x) { return R_IS_F32 ? (REAL)tanhf((float)x) : (REAL)tanh((double)x); }
static inline REAL R_(tr_erf_)(REAL x) { return R_IS_F32 ? (REAL)erff((float)x) : (REAL)erf((double)x); }

/* First key position query t may see (sliding window; window <= 0: none). */
static inline int R_(tr_first_key_)(int t, int window) { return window > 0 && t - window + 1 > 0 ? t - window + 1 : 0; }

/* logsumexp of z [V], max-shifted, the sum in double. */
static double R_(tr_lse_)(const REAL *z, int V)
{
    REAL mx = z[0];
    for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
    double s = 0.0;
    for (int v = 0; v < V; v++) s += (double)R_(tr_exp_)(z[v] - mx);
    return (double)mx + log(s);
}

/* ---------------------------------------------------------------- embedding */

TRAIN_OPS_API void R_(tr_embedding_forward)(REAL *out /* [N, C] */, const int *tokens /* [N] */,
                                            const REAL *wte /* [V, C] */, int N, int C, REAL scale)
{
    for (int n = 0; n < N; n++) {
        const REAL *w = wte + (size_t)tokens[n] * C;
        REAL *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = w[c] * scale;
    }
}

TRAIN_OPS_API void R_(tr_embedding_backward)(REAL *dwte /* [V, C] */, const REAL *dout /* [N, C] */,
                                             const int *tokens /* [N] */, int N, int C, REAL scale)
{
    /* serial in n: repeated tokens add in row order (O(N·C), no hot spot) */
    for (int n = 0; n < N; n++) {
        REAL *dw = dwte + (size_t)tokens[n] * C;
        const REAL *d = dout + (size_t)n * C;
        for (int c = 0; c < C; c++) dw[c] += scale * d[c];
    }
}

/* ---------------------------------------------------------------- matmul */

#ifdef TRAIN_OPS_SGEMM
/* C[M, Nc] = op(A)[M, K]·op(B)[K, Nc] + beta·C through sgemm, cut into fixed
 * TR_MB x TR_NB tiles that OpenMP threads share. OpenBLAS sgemm alone gives
 * results that depend on its thread count (measured: 7e-7 relative between 1
 * and 4 threads for 256x192x257); called inside an OpenMP parallel region it
 * runs single-threaded (OpenMP build), so with a tiling that depends only on
 * the shape every element is computed by the same call whatever the thread
 * count. The region is always entered (no `if`): an inactive region would let
 * sgemm thread itself again. */
enum { TR_MB = 64, TR_NB = 256 };
static void R_(tr_sgemm_tiled_)(int transA, int transB, int M, int Nc, int K, const float *A, int lda,
                                const float *B, int ldb, float beta, float *C, int ldc)
{
    const int mt = (M + TR_MB - 1) / TR_MB, nt = (Nc + TR_NB - 1) / TR_NB;
#pragma omp parallel for schedule(dynamic, 1)
    for (int t = 0; t < mt * nt; t++) {
        const int i0 = t / nt * TR_MB, j0 = t % nt * TR_NB;
        const int mb = M - i0 < TR_MB ? M - i0 : TR_MB, nb = Nc - j0 < TR_NB ? Nc - j0 : TR_NB;
        const float *At = transA ? A + i0 : A + (size_t)i0 * lda; /* rows i0.. of op(A)    */
        const float *Bt = transB ? B + (size_t)j0 * ldb : B + j0; /* columns j0.. of op(B) */
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, mb, nb, K,
                    1.0f, At, lda, Bt, ldb, beta, C + (size_t)i0 * ldc + j0, ldc);
    }
}
#endif

TRAIN_OPS_API void R_(tr_matmul_forward)(REAL *out /* [N, OC] */, const REAL *inp /* [N, C] */,
                                         const REAL *W /* [OC, C] */, const REAL *bias /* [OC] or NULL */, int N,
                                         int C, int OC)
{
#ifdef TRAIN_OPS_SGEMM
    _Static_assert(sizeof(REAL) == sizeof(float), "TRAIN_OPS_SGEMM needs REAL = float");
    if (bias)
        for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC, bias, (size_t)OC * sizeof(REAL));
    R_(tr_sgemm_tiled_)(0, 1, N, OC, C, inp, C, W, C, bias ? 1.0f : 0.0f, out, OC);
#else
#pragma omp parallel for schedule(static) if ((size_t)N * C * OC > TRAIN_OPS_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const REAL *x = inp + (size_t)n * C;
        for (int o = 0; o < OC; o++) {
            const REAL *w = W + (size_t)o * C;
            REAL s = bias ? bias[o] : (REAL)0;
            for (int c = 0; c < C; c++) s += x[c] * w[c];
            out[(size_t)n * OC + o] = s;
        }
    }
#endif
}

TRAIN_OPS_API void R_(tr_matmul_backward)(REAL *dinp /* [N, C] or NULL */, REAL *dW /* [OC, C] or NULL */,
                                          REAL *dbias /* [OC] or NULL */, const REAL *dout /* [N, OC] */,
                                          const REAL *inp /* [N, C] */, const REAL *W /* [OC, C] */, int N, int C,
                                          int OC)
{
#ifdef TRAIN_OPS_SGEMM
    if (dinp) /* dinp[N, C] += dout[N, OC] · W[OC, C] */
        R_(tr_sgemm_tiled_)(0, 0, N, C, OC, dout, OC, W, C, 1.0f, dinp, C);
    if (dW) /* dW[OC, C] += doutᵀ[OC, N] · inp[N, C] */
        R_(tr_sgemm_tiled_)(1, 0, OC, C, N, dout, OC, inp, C, 1.0f, dW, C);
#else
    if (dinp) {
#pragma omp parallel for schedule(static) if ((size_t)N * C * OC > TRAIN_OPS_PAR_MIN)
        for (int n = 0; n < N; n++) {
            REAL *dx = dinp + (size_t)n * C;
            const REAL *g = dout + (size_t)n * OC;
            for (int o = 0; o < OC; o++) {
                const REAL *w = W + (size_t)o * C;
                for (int c = 0; c < C; c++) dx[c] += g[o] * w[c];
            }
        }
    }
    if (dW) {
#pragma omp parallel for schedule(static) if ((size_t)N * C * OC > TRAIN_OPS_PAR_MIN)
        for (int o = 0; o < OC; o++) {
            REAL *dw = dW + (size_t)o * C;
            for (int n = 0; n < N; n++) {
                const REAL g = dout[(size_t)n * OC + o];
                const REAL *x = inp + (size_t)n * C;
                for (int c = 0; c < C; c++) dw[c] += g * x[c];
            }
        }
    }
#endif
    if (dbias) {
#pragma omp parallel for schedule(static) if ((size_t)N * OC > TRAIN_OPS_PAR_MIN)
        for (int o = 0; o < OC; o++) {
            double s = 0.0;
            for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * OC + o];
            dbias[o] += (REAL)s;
        }
    }
}

/* ---------------------------------------------------------------- RMSNorm */

TRAIN_OPS_API void R_(tr_rmsnorm_forward)(REAL *out /* [N, C] */, REAL *rstd /* [N] */, const REAL *inp /* [N, C] */,
                                          const REAL *weight /* [C] */, int N, int C, REAL eps)
{
#pragma omp parallel for schedule(static) if ((size_t)N * C > TRAIN_OPS_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const REAL *x = inp + (size_t)n * C;
        REAL *o = out + (size_t)n * C;
        double ss = 0.0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        const REAL r = (REAL)(1.0 / sqrt(ss / C + (double)eps));
        rstd[n] = r;
        for (int c = 0; c < C; c++) o[c] = x[c] * r * weight[c];
    }
}

TRAIN_OPS_API void R_(tr_rmsnorm_backward)(REAL *dinp /* [N, C] or NULL */, REAL *dweight /* [C] or NULL */,
                                           const REAL *dout /* [N, C] */, const REAL *inp /* [N, C] */,
                                           const REAL *weight /* [C] */, const REAL *rstd /* [N] */, int N, int C)
{
    if (dinp) {
#pragma omp parallel for schedule(static) if ((size_t)N * C > TRAIN_OPS_PAR_MIN)
        for (int n = 0; n < N; n++) {
            const REAL *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
            REAL *dx = dinp + (size_t)n * C;
            const REAL r = rstd[n];
            double dot = 0.0; /* Σ_j g_j·w_j·x_j */
            for (int c = 0; c < C; c++) dot += (double)(g[c] * weight[c]) * x[c];
            const REAL k = (REAL)(dot * (double)r * r * r / C);
            for (int c = 0; c < C; c++) dx[c] += r * weight[c] * g[c] - k * x[c];
        }
    }
    if (dweight) {
        /* blocks of columns; each column sums its rows in order n = 0..N-1 */
        enum { CB = 32 };
        const int nb = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static) if ((size_t)N * C > TRAIN_OPS_PAR_MIN)
        for (int bi = 0; bi < nb; bi++) {
            const int c0 = bi * CB, c1 = c0 + CB < C ? c0 + CB : C;
            double acc[CB];
            for (int c = c0; c < c1; c++) acc[c - c0] = 0.0;
            for (int n = 0; n < N; n++) {
                const REAL *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
                const REAL r = rstd[n];
                for (int c = c0; c < c1; c++) acc[c - c0] += (double)(g[c] * x[c] * r);
            }
            for (int c = c0; c < c1; c++) dweight[c] += (REAL)acc[c - c0];
        }
    }
}

/* ---------------------------------------------------------------- RoPE */

/* The two elements of rotation pair i inside a head: (2i, 2i+1) or (i, i + hd/2). */
static inline int R_(tr_rope_j0_)(int i, rope_style style) { return style == ROPE_ADJACENT ? 2 * i : i; }
static inline int R_(tr_rope_j1_)(int i, int half, rope_style style) { return style == ROPE_ADJACENT ? 2 * i + 1 : i + half; }

TRAIN_OPS_API void R_(tr_rope_forward)(REAL *out /* [N, H, hd] */, const REAL *inp /* [N, H, hd] */,
                                       const REAL *cos_tab /* [P, hd/2] */, const REAL *sin_tab /* [P, hd/2] */,
                                       const int *pos /* [N] */, int N, int H, int hd, rope_style style)
{
    const int half = hd / 2;
#pragma omp parallel for schedule(static) if ((size_t)N * H * hd > TRAIN_OPS_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const REAL *cs = cos_tab + (size_t)pos[n] * half, *sn = sin_tab + (size_t)pos[n] * half;
        for (int h = 0; h < H; h++) {
            const REAL *x = inp + ((size_t)n * H + h) * hd;
            REAL *y = out + ((size_t)n * H + h) * hd;
            for (int i = 0; i < half; i++) {
                const int j0 = R_(tr_rope_j0_)(i, style), j1 = R_(tr_rope_j1_)(i, half, style);
                const REAL a = x[j0], b = x[j1];
                y[j0] = a * cs[i] - b * sn[i];
                y[j1] = a * sn[i] + b * cs[i];
            }
        }
    }
}

TRAIN_OPS_API void R_(tr_rope_backward)(REAL *dinp /* [N, H, hd] */, const REAL *dout /* [N, H, hd] */,
                                        const REAL *cos_tab /* [P, hd/2] */, const REAL *sin_tab /* [P, hd/2] */,
                                        const int *pos /* [N] */, int N, int H, int hd, rope_style style)
{
    const int half = hd / 2;
#pragma omp parallel for schedule(static) if ((size_t)N * H * hd > TRAIN_OPS_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const REAL *cs = cos_tab + (size_t)pos[n] * half, *sn = sin_tab + (size_t)pos[n] * half;
        for (int h = 0; h < H; h++) {
            const REAL *g = dout + ((size_t)n * H + h) * hd;
            REAL *dx = dinp + ((size_t)n * H + h) * hd;
            for (int i = 0; i < half; i++) {
                const int j0 = R_(tr_rope_j0_)(i, style), j1 = R_(tr_rope_j1_)(i, half, style);
                const REAL g0 = g[j0], g1 = g[j1];
                dx[j0] += g0 * cs[i] + g1 * sn[i];
                dx[j1] += g1 * cs[i] - g0 * sn[i];
            }
        }
    }
}

/* ---------------------------------------------------------------- attention */

/* y += a·x over n (element-wise, so any order gives the same result); in
 * blocks of 8 that the compiler vectorises at -O2. y and x must not overlap. */
static inline void R_(tr_axpy_)(REAL *restrict y, REAL a, const REAL *restrict x, int n)
{
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) y[j + l] += a * x[j + l];
    for (; j < n; j++) y[j] += a * x[j];
}

/* a·b over n in a fixed order: 8 interleaved partial sums (so the compiler
 * can keep them in one vector register without reassociating), summed as a
 * fixed tree, then the tail in order. */
static inline REAL R_(tr_dot_)(const REAL *a, const REAL *b, int n)
{
    REAL acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[j + l] * b[j + l];
    REAL s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (; j < n; j++) s += a[j] * b[j];
    return s;
}

/* The scaled, capped score of query row qt against key row ks. */
static inline REAL R_(tr_score_)(const REAL *qt, const REAL *ks, int hd, REAL scale, REAL softcap)
{
    REAL s = R_(tr_dot_)(qt, ks, hd) * scale;
    if (softcap > 0) s = softcap * R_(tr_tanh_)(s / softcap);
    return s;
}

TRAIN_OPS_API void R_(tr_attention_forward)(REAL *out /* [B, T, H, hd] */, REAL *att /* [B, H, T, T] */,
                                            const REAL *q /* [B, T, H, hd] */, const REAL *k /* [B, T, KV, hd] */,
                                            const REAL *v /* [B, T, KV, hd] */, int B, int T, int H, int KV, int hd,
                                            REAL scale, REAL softcap, int window)
{
    const int group = H / KV;
    const size_t qst = (size_t)H * hd, kst = (size_t)KV * hd; /* token strides */
    const long rows = (long)B * H * T;                           /* r = (b·H + h)·T + t */
#pragma omp parallel for schedule(dynamic, 8) if (rows * T * hd > TRAIN_OPS_PAR_MIN)
    for (long r = 0; r < rows; r++) {
        const int t = (int)(r % T), h = (int)(r / T % H), b = (int)(r / ((long)T * H));
        const int t0 = R_(tr_first_key_)(t, window);
        const REAL *qt = q + ((size_t)b * T + t) * qst + (size_t)h * hd;
        const REAL *kb = k + (size_t)b * T * kst + (size_t)(h / group) * hd;
        const REAL *vb = v + (size_t)b * T * kst + (size_t)(h / group) * hd;
        REAL *a = att + (size_t)r * T;
        REAL mx = -(REAL)INFINITY;
        for (int s = t0; s <= t; s++) {
            a[s] = R_(tr_score_)(qt, kb + (size_t)s * kst, hd, scale, softcap);
            mx = a[s] > mx ? a[s] : mx;
        }
        REAL sum = 0;
        for (int s = t0; s <= t; s++) {
            a[s] = R_(tr_exp_)(a[s] - mx);
            sum += a[s];
        }
        const REAL inv = 1 / sum;
        for (int s = 0; s < t0; s++) a[s] = 0;
        for (int s = t0; s <= t; s++) a[s] *= inv;
        for (int s = t + 1; s < T; s++) a[s] = 0;
        REAL *o = out + ((size_t)b * T + t) * qst + (size_t)h * hd;
        for (int j = 0; j < hd; j++) o[j] = 0;
        for (int s = t0; s <= t; s++) R_(tr_axpy_)(o, a[s], vb + (size_t)s * kst, hd);
    }
}

TRAIN_OPS_API void R_(tr_attention_backward)(REAL *dq /* [B, T, H, hd] */, REAL *dk /* [B, T, KV, hd] */,
                                             REAL *dv /* [B, T, KV, hd] */, REAL *dscores /* [B, H, T, T] scratch */,
                                             const REAL *dout /* [B, T, H, hd] */, const REAL *q /* [B, T, H, hd] */,
                                             const REAL *k /* [B, T, KV, hd] */, const REAL *v /* [B, T, KV, hd] */,
                                             const REAL *att /* [B, H, T, T] */, int B, int T, int H, int KV, int hd,
                                             REAL scale, REAL softcap, int window)
{
    const int group = H / KV;
    const size_t qst = (size_t)H * hd, kst = (size_t)KV * hd;
    const long rows = (long)B * H * T;
    /* pass 1, per query row (b, h, t): dscores[b, h, t, :] = ∂L/∂(q_t·k_s); dq_t */
#pragma omp parallel for schedule(dynamic, 8) if (rows * T * hd > TRAIN_OPS_PAR_MIN)
    for (long r = 0; r < rows; r++) {
        const int t = (int)(r % T), h = (int)(r / T % H), b = (int)(r / ((long)T * H));
        const int t0 = R_(tr_first_key_)(t, window);
        const size_t qoff = ((size_t)b * T + t) * qst + (size_t)h * hd;
        const REAL *qt = q + qoff, *gt = dout + qoff;
        const REAL *kb = k + (size_t)b * T * kst + (size_t)(h / group) * hd;
        const REAL *vb = v + (size_t)b * T * kst + (size_t)(h / group) * hd;
        const REAL *a = att + (size_t)r * T;
        REAL *ds = dscores + (size_t)r * T;
        for (int s = 0; s < t0; s++) ds[s] = 0;
        for (int s = t + 1; s < T; s++) ds[s] = 0;
        REAL pdp = 0; /* Σ_s p_s·dp_s */
        for (int s = t0; s <= t; s++) {
            const REAL *vs = vb + (size_t)s * kst;
            const REAL dp = R_(tr_dot_)(gt, vs, hd); /* ∂L/∂p_s = dout_t·v_s */
            ds[s] = dp;
            pdp += a[s] * dp;
        }
        REAL *dqt = dq + qoff;
        for (int s = t0; s <= t; s++) {
            const REAL *ks = kb + (size_t)s * kst;
            REAL g = a[s] * (ds[s] - pdp); /* softmax backward: ∂L/∂x_ts */
            if (softcap > 0) {
                const REAL th = R_(tr_tanh_)(R_(tr_dot_)(qt, ks, hd) * scale / softcap);
                g *= 1 - th * th;
            }
            g *= scale;
            ds[s] = g;
            R_(tr_axpy_)(dqt, g, ks, hd);
        }
    }
    /* pass 2, per key row (b, kv head, s): dk_s, dv_s over the group's heads and
     * the queries that see s, in order */
    const long krows = (long)B * KV * T;
#pragma omp parallel for schedule(dynamic, 8) if (rows * T * hd > TRAIN_OPS_PAR_MIN)
    for (long r = 0; r < krows; r++) {
        const int s = (int)(r % T), kh = (int)(r / T % KV), b = (int)(r / ((long)T * KV));
        const int t1 = window > 0 && s + window - 1 < T - 1 ? s + window - 1 : T - 1;
        REAL *dks = dk + ((size_t)b * T + s) * kst + (size_t)kh * hd;
        REAL *dvs = dv + ((size_t)b * T + s) * kst + (size_t)kh * hd;
        for (int h = kh * group; h < (kh + 1) * group; h++) {
            const size_t arow = ((size_t)b * H + h) * T;
            for (int t = s; t <= t1; t++) {
                const REAL g = dscores[(arow + t) * T + s], p = att[(arow + t) * T + s];
                const size_t qoff = ((size_t)b * T + t) * qst + (size_t)h * hd;
                R_(tr_axpy_)(dks, g, q + qoff, hd);
                R_(tr_axpy_)(dvs, p, dout + qoff, hd);
            }
        }
    }
}

/* ---------------------------------------------------------------- GLU */

#define TR_GELU_K ((REAL)0.7978845608028654)   /* √(2/π)  */
#define TR_GELU_C ((REAL)0.044715)
#define TR_SQRT1_2 ((REAL)0.7071067811865475)  /* 1/√2    */
#define TR_INV_SQRT_2PI ((REAL)0.3989422804014327) /* 1/√(2π) */

TRAIN_OPS_API void R_(tr_glu_forward)(REAL *out /* [n] */, const REAL *g /* [n] */, const REAL *u /* [n] */, size_t n,
                                      steer_act act)
{
#pragma omp parallel for schedule(static) if (n > TRAIN_OPS_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        const REAL x = g[i];
        REAL phi;
        switch (act) {
        case STEER_ACT_SILU: phi = x / (1 + R_(tr_exp_)(-x)); break;
        case STEER_ACT_GELU_TANH:
            phi = (REAL)0.5 * x * (1 + R_(tr_tanh_)(TR_GELU_K * (x + TR_GELU_C * x * x * x)));
            break;
        default: phi = (REAL)0.5 * x * (1 + R_(tr_erf_)(x * TR_SQRT1_2)); break;
        }
        out[i] = phi * u[i];
    }
}

TRAIN_OPS_API void R_(tr_glu_backward)(REAL *dg /* [n] or NULL */, REAL *du /* [n] or NULL */,
                                       const REAL *dout /* [n] */, const REAL *g /* [n] */, const REAL *u /* [n] */,
                                       size_t n, steer_act act)
{
#pragma omp parallel for schedule(static) if (n > TRAIN_OPS_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        const REAL x = g[i];
        REAL phi, dphi;
        switch (act) {
        case STEER_ACT_SILU: {
            const REAL sig = 1 / (1 + R_(tr_exp_)(-x));
            phi = x * sig;
            dphi = sig * (1 + x * (1 - sig));
            break;
        }
        case STEER_ACT_GELU_TANH: {
            const REAL th = R_(tr_tanh_)(TR_GELU_K * (x + TR_GELU_C * x * x * x));
            phi = (REAL)0.5 * x * (1 + th);
            dphi = (REAL)0.5 * (1 + th) + (REAL)0.5 * x * (1 - th * th) * TR_GELU_K * (1 + 3 * TR_GELU_C * x * x);
            break;
        }
        default: {
            const REAL cdf = (REAL)0.5 * (1 + R_(tr_erf_)(x * TR_SQRT1_2));
            phi = x * cdf;
            dphi = cdf + x * TR_INV_SQRT_2PI * R_(tr_exp_)((REAL)-0.5 * x * x);
            break;
        }
        }
        if (dg) dg[i] += dout[i] * u[i] * dphi;
        if (du) du[i] += dout[i] * phi;
    }
}

/* ---------------------------------------------------------------- soft-cap, residual */

TRAIN_OPS_API void R_(tr_softcap_forward)(REAL *out /* [n] */, const REAL *inp /* [n] */, size_t n, REAL cap)
{
#pragma omp parallel for schedule(static) if (n > TRAIN_OPS_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = cap * R_(tr_tanh_)(inp[i] / cap);
}

TRAIN_OPS_API void R_(tr_softcap_backward)(REAL *dinp /* [n] */, const REAL *dout /* [n] */, const REAL *out /* [n] */,
                                           size_t n, REAL cap)
{
#pragma omp parallel for schedule(static) if (n > TRAIN_OPS_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        const REAL th = out[i] / cap;
        dinp[i] += dout[i] * (1 - th * th);
    }
}

TRAIN_OPS_API void R_(tr_residual_forward)(REAL *out /* [n] */, const REAL *a /* [n] */, const REAL *b /* [n] */,
                                           size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

TRAIN_OPS_API void R_(tr_residual_backward)(REAL *da /* [n] or NULL */, REAL *db /* [n] or NULL */,
                                            const REAL *dout /* [n] */, size_t n)
{
    if (da)
        for (size_t i = 0; i < n; i++) da[i] += dout[i];
    if (db)
        for (size_t i = 0; i < n; i++) db[i] += dout[i];
}

/* ---------------------------------------------------------------- losses */

TRAIN_OPS_API int R_(tr_crossentropy_forward)(REAL *losses /* [N] */, const REAL *logits /* [N, V] */,
                                              const int *targets /* [N], -1 = ignored */, int N, int V)
{
#pragma omp parallel for schedule(static) if ((size_t)N * V > TRAIN_OPS_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const REAL *z = logits + (size_t)n * V;
        losses[n] = targets[n] < 0 ? (REAL)0 : (REAL)(R_(tr_lse_)(z, V) - (double)z[targets[n]]);
    }
    int counted = 0;
    for (int n = 0; n < N; n++) counted += targets[n] >= 0;
    return counted;
}

TRAIN_OPS_API void R_(tr_crossentropy_softmax_backward)(REAL *dlogits /* [N, V] */, const REAL *dlosses /* [N] */,
                                                        const REAL *logits /* [N, V] */,
                                                        const int *targets /* [N], -1 = ignored */, int N, int V)
{
#pragma omp parallel for schedule(static) if ((size_t)N * V > TRAIN_OPS_PAR_MIN)
    for (int n = 0; n < N; n++) {
        if (targets[n] < 0) continue;
        const REAL *z = logits + (size_t)n * V;
        REAL *dz = dlogits + (size_t)n * V;
        const double lse = R_(tr_lse_)(z, V);
        const REAL dl = dlosses[n];
        for (int v = 0; v < V; v++) {
            const REAL p = R_(tr_exp_)((REAL)((double)z[v] - lse));
            dz[v] += dl * (p - (v == targets[n] ? (REAL)1 : (REAL)0));
        }
    }
}

static inline int R_(tr_counted_)(const int *mask, int n) { return !mask || mask[n] != 0; }

TRAIN_OPS_API int R_(tr_kl_forward)(REAL *losses /* [N] */, const REAL *logits /* [N, V] */,
                                    const REAL *teacher_logp /* [N, V] */, const int *mask /* [N] or NULL */, int N,
                                    int V)
{
#pragma omp parallel for schedule(static) if ((size_t)N * V > TRAIN_OPS_PAR_MIN)
    for (int n = 0; n < N; n++) {
        if (!R_(tr_counted_)(mask, n)) {
            losses[n] = 0;
            continue;
        }
        const REAL *z = logits + (size_t)n * V, *lt = teacher_logp + (size_t)n * V;
        const double lse = R_(tr_lse_)(z, V);
        double kl = 0.0;
        for (int v = 0; v < V; v++) {
            const REAL p = R_(tr_exp_)(lt[v]);
            if (p > 0) kl += (double)p * ((double)lt[v] - ((double)z[v] - lse));
        }
        losses[n] = (REAL)kl;
    }
    int counted = 0;
    for (int n = 0; n < N; n++) counted += R_(tr_counted_)(mask, n);
    return counted;
}

TRAIN_OPS_API void R_(tr_kl_backward)(REAL *dlogits /* [N, V] */, const REAL *dlosses /* [N] */,
                                      const REAL *logits /* [N, V] */, const REAL *teacher_logp /* [N, V] */,
                                      const int *mask /* [N] or NULL */, int N, int V)
{
#pragma omp parallel for schedule(static) if ((size_t)N * V > TRAIN_OPS_PAR_MIN)
    for (int n = 0; n < N; n++) {
        if (!R_(tr_counted_)(mask, n)) continue;
        const REAL *z = logits + (size_t)n * V, *lt = teacher_logp + (size_t)n * V;
        REAL *dz = dlogits + (size_t)n * V;
        const double lse = R_(tr_lse_)(z, V);
        double S = 0.0; /* Σ p */
        for (int v = 0; v < V; v++) S += (double)R_(tr_exp_)(lt[v]);
        const REAL dl = dlosses[n], Sr = (REAL)S;
        for (int v = 0; v < V; v++) {
            const REAL qv = R_(tr_exp_)((REAL)((double)z[v] - lse));
            dz[v] += dl * (qv * Sr - R_(tr_exp_)(lt[v]));
        }
    }
}

/* KL(q ‖ p) of one row in double, q = softmax(z), given lse(z). */
static double R_(tr_kl_rev_row_)(const REAL *z, const REAL *lt, int V, double lse)
{
    double kl = 0.0;
    for (int v = 0; v < V; v++) {
        const double lq = (double)z[v] - lse;
        const REAL qv = R_(tr_exp_)((REAL)lq);
        if (qv > 0) kl += (double)qv * (lq - (double)lt[v]);
    }
    return kl;
}

TRAIN_OPS_API int R_(tr_kl_reverse_forward)(REAL *losses /* [N] */, const REAL *logits /* [N, V] */,
                                            const REAL *teacher_logp /* [N, V] */, const int *mask /* [N] or NULL */,
                                            int N, int V)
{
#pragma omp parallel for schedule(static) if ((size_t)N * V > TRAIN_OPS_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const REAL *z = logits + (size_t)n * V, *lt = teacher_logp + (size_t)n * V;
        losses[n] = R_(tr_counted_)(mask, n) ? (REAL)R_(tr_kl_rev_row_)(z, lt, V, R_(tr_lse_)(z, V)) : (REAL)0;
    }
    int counted = 0;
    for (int n = 0; n < N; n++) counted += R_(tr_counted_)(mask, n);
    return counted;
}

TRAIN_OPS_API void R_(tr_kl_reverse_backward)(REAL *dlogits /* [N, V] */, const REAL *dlosses /* [N] */,
                                              const REAL *logits /* [N, V] */, const REAL *teacher_logp /* [N, V] */,
                                              const int *mask /* [N] or NULL */, int N, int V)
{
#pragma omp parallel for schedule(static) if ((size_t)N * V > TRAIN_OPS_PAR_MIN)
    for (int n = 0; n < N; n++) {
        if (!R_(tr_counted_)(mask, n)) continue;
        const REAL *z = logits + (size_t)n * V, *lt = teacher_logp + (size_t)n * V;
        REAL *dz = dlogits + (size_t)n * V;
        const double lse = R_(tr_lse_)(z, V);
        const double kl = R_(tr_kl_rev_row_)(z, lt, V, lse);
        const REAL dl = dlosses[n];
        for (int v = 0; v < V; v++) {
            const double lq = (double)z[v] - lse;
            const REAL qv = R_(tr_exp_)((REAL)lq);
            if (qv > 0) dz[v] += dl * qv * (REAL)(lq - (double)lt[v] - kl);
        }
    }
}

#undef R_IS_F32
#undef TR_GELU_K
#undef TR_GELU_C
#undef TR_SQRT1_2
#undef TR_INV_SQRT_2PI

/*
 * test_qdot.c — the quantized-activation matmul (src/model/qdot.h) of every
 * implementation (scalar, avx2, avxvnni, avx512vnni; one the CPU lacks is printed as
 * SKIPPED with its name; and the VNNI code on any AVX2 CPU with SIMDe's
 * VPDPBUSD and VPDPWSSD, qdot_emu_vnni.c), for every block type, odd row counts, K = 256·k and for the
 * legacy types also 32·k that is not a multiple of 256, on weights made by
 * q_quantize_row and on raw random blocks (every bit pattern of the level,
 * scale and min fields):
 *   1. the activation quantizers: known answers that tell ggml's roundings
 *      apart (Q8_0/Q8_1 roundf ties away from zero, Q8_K ties to even; the
 *      sign of Q8_K's scale from the first element of largest |x|), and
 *      every implementation's bytes equal to the scalar one's;
 *   2. every element against a double reference of (dequantized weights) ·
 *      (dequantized activations) — what the integer path computes in real
 *      arithmetic — within TOL_QDOT_EXACT_ULPS float roundings per block
 *      (tolerances.h); a factor-2 block scale or swapped nibbles fail it;
 *   3. against (dequantized weights) · (f32 activations): the activation
 *      quantization error, within its bound TOL_QDOT_ACT_*;
 *   4. every SIMD implementation equal to scalar, bitwise;
 *   5. batch invariance, bitwise: a batch of 70 rows against the same rows in
 *      chunks of every size 1..9; 1 thread against 2 threads;
 *   6. dispatch: qdot_cur() follows the kernel path in use, and each path
 *      name chooses the best implementation its instruction sets allow
 *      (avx2: avxvnni, else avx2; avx512 and avx512bf16: avx512vnni, else
 *      avxvnni, else avx2 — never scalar).
 */
#include "model.h"
#include "kern.h"
#include "qdot.h"
#include "quant.h"
#include "test_util.h"

#include <omp.h>
#include <stdint.h>

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnext(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static float frand(void) { return (float)((rnext() >> 40) * (1.0 / 8388608.0)) - 1.0f; } /* [-1, 1) */

static const steer_dtype TYPES[] = {STEER_DTYPE_Q8_0, STEER_DTYPE_Q4_0, STEER_DTYPE_Q4_1, STEER_DTYPE_Q5_0,
                                    STEER_DTYPE_Q5_1, STEER_DTYPE_Q2_K, STEER_DTYPE_Q3_K, STEER_DTYPE_Q4_K,
                                    STEER_DTYPE_Q5_K, STEER_DTYPE_Q6_K};
#define N_TYPES ((int)(sizeof TYPES / sizeof TYPES[0]))

static int is_k(steer_dtype t) { return t >= STEER_DTYPE_Q2_K; }

/* Offsets of a block's f16 scale fields (d, and dmin / m where present), and
 * of its level bytes [lv0, lv1). */
typedef struct {
    int f16[2], nf16, lv0, lv1;
} blk_layout;
static blk_layout layout(steer_dtype t)
{
    switch (t) {
    case STEER_DTYPE_Q8_0: return (blk_layout){{0, 0}, 1, 2, 34};
    case STEER_DTYPE_Q4_0: return (blk_layout){{0, 0}, 1, 2, 18};
    case STEER_DTYPE_Q4_1: return (blk_layout){{0, 2}, 2, 4, 20};
    case STEER_DTYPE_Q5_0: return (blk_layout){{0, 0}, 1, 2, 22};
    case STEER_DTYPE_Q5_1: return (blk_layout){{0, 2}, 2, 4, 24};
    case STEER_DTYPE_Q2_K: return (blk_layout){{80, 82}, 2, 16, 80};
    case STEER_DTYPE_Q3_K: return (blk_layout){{108, 0}, 1, 0, 96};
    case STEER_DTYPE_Q4_K: return (blk_layout){{0, 2}, 2, 16, 144};
    case STEER_DTYPE_Q5_K: return (blk_layout){{0, 2}, 2, 16, 176};
    default: return (blk_layout){{208, 0}, 1, 0, 192}; /* Q6_K */
    }
}

static size_t blk_elems(steer_dtype t) { return is_k(t) ? 256 : 32; }
static size_t blk_bytes(steer_dtype t)
{
    size_t b;
    q_block(t, NULL, &b);
    return b;
}

/* A random f32 row: blocks of varied scale, some near-constant or one-signed
 * groups, an all-zero block now and then, an outlier. */
static void rand_row(float *x, int K, int zero_blocks)
{
    for (int b = 0; b < K / 32; b++) {
        const float s = ldexpf(1.0f, (int)(rnext() % 7) - 3);
        const int kind = (int)(rnext() % 8);
        for (int j = 0; j < 32; j++) {
            float v = frand() * s;
            if (kind == 1) v = fabsf(v) + 0.5f * s; /* one-signed group */
            if (kind == 2) v = -fabsf(v);
            if (kind == 3 && zero_blocks) v = 0.0f;
            x[32 * b + j] = v;
        }
        if (kind == 4) x[32 * b + (int)(rnext() % 32)] = 8 * s; /* outlier */
    }
}

/* A random f16 in ±[2^-12, 2^-4): a valid, modest scale. */
static void put_f16(uint8_t *p)
{
    float f = ldexpf(1.0f + 0.5f * frand(), -4 - (int)(rnext() % 8));
    if (rnext() & 1) f = -f;
    uint16_t h = q_f32_to_f16(f);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

typedef struct {
    steer_mat W;
    uint8_t *q;  /* quantized rows                                  */
    float *wf;   /* dequantized                                     */
    float *wa;   /* |ŵ| + |ŵ with zeroed levels|: the size of the terms of each weight */
} qmat;

static qmat make_qmat(steer_dtype t, int rows, int K, int raw)
{
    qmat m;
    const size_t rb = q_row_bytes(t, (size_t)K);
    m.q = malloc(rb * rows);
    m.wf = malloc(sizeof(float) * rows * K);
    m.wa = malloc(sizeof(float) * rows * K);
    float *x = malloc(sizeof(float) * K), *z = malloc(sizeof(float) * K);
    uint8_t *zq = malloc(rb);
    const blk_layout L = layout(t);
    for (int r = 0; r < rows; r++) {
        uint8_t *qr = m.q + r * rb;
        if (raw) { /* every bit pattern, valid f16 scales */
            for (size_t i = 0; i < rb; i++) qr[i] = (uint8_t)rnext();
            for (size_t b = 0; b < rb / blk_bytes(t); b++)
                for (int f = 0; f < L.nf16; f++) put_f16(qr + b * blk_bytes(t) + L.f16[f]);
        } else {
            rand_row(x, K, 1);
            CHECK_OK(q_quantize_row(t, x, qr, (size_t)K));
        }
        q_dequant_row(t, qr, m.wf + (size_t)r * K, (size_t)K);
        memcpy(zq, qr, rb);
        for (size_t b = 0; b < rb / blk_bytes(t); b++)
            memset(zq + b * blk_bytes(t) + L.lv0, 0, (size_t)(L.lv1 - L.lv0));
        q_dequant_row(t, zq, z, (size_t)K);
        for (int k = 0; k < K; k++) m.wa[(size_t)r * K + k] = fabsf(m.wf[(size_t)r * K + k]) + fabsf(z[k]);
    }
    free(x);
    free(z);
    free(zq);
    m.W = (steer_mat){m.q, t, rows, K};
    return m;
}

static void free_qmat(qmat *m)
{
    free(m->q);
    free(m->wf);
    free(m->wa);
}

/* ---------------------------------------------------------------- 1. quantizers */

static void test_quantizer_answers(void)
{
    /* Q8_0: amax 127 → d = 1; ±2.5 round away from zero to ±3, ±0.5 to ±1. */
    float x[256];
    for (int j = 0; j < 32; j++) x[j] = 0.0f;
    x[0] = 127.0f;
    x[1] = 2.5f;
    x[2] = -2.5f;
    x[3] = 0.5f;
    x[4] = -0.5f;
    x[5] = 1.49f;
    int n;
    const qdot_impl *const *all = qdot_all(&n);
    for (int i = 0; i < n; i++) {
        if (!qdot_supported(all[i])) continue;
        uint8_t row[128] __attribute__((aligned(64)));
        all[i]->quant[QDOT_ACT_Q8_0](x, row, 32);
        const int8_t *qs = (const int8_t *)row;
        const float d = *(const float *)(row + 32);
        CHECK(qs[0] == 127 && qs[1] == 3 && qs[2] == -3 && qs[3] == 1 && qs[4] == -1 && qs[5] == 1 && d == 1.0f,
              "%s Q8_0 rounding: %d %d %d %d %d %d d=%g", all[i]->name, qs[0], qs[1], qs[2], qs[3], qs[4], qs[5],
              (double)d);
        all[i]->quant[QDOT_ACT_Q8_1](x, row, 32);
        const float s = *(const float *)(row + 36);
        CHECK(s == 127.0f + 3 - 3 + 1 - 1 + 1, "%s Q8_1 s = %g, want 128", all[i]->name, (double)s);
    }
    /* Q8_K: max = +127 (the first of largest |x|, before −127) → iscale = −1,
     * d = −1; 2.5 → −2 and 3.5 → −4 (ties to even), −0.5 → 0. */
    for (int j = 0; j < 256; j++) x[j] = 0.0f;
    x[0] = 127.0f;
    x[1] = -127.0f;
    x[2] = 2.5f;
    x[3] = 3.5f;
    x[4] = -0.5f;
    for (int i = 0; i < n; i++) {
        if (!qdot_supported(all[i])) continue;
        qdot_q8k y __attribute__((aligned(64)));
        all[i]->quant[QDOT_ACT_Q8_K](x, &y, 256);
        CHECK(y.qs[0] == -127 && y.qs[1] == 127 && y.qs[2] == -2 && y.qs[3] == -4 && y.qs[4] == 0 && y.d == -1.0f,
              "%s Q8_K rounding: %d %d %d %d %d d=%g", all[i]->name, y.qs[0], y.qs[1], y.qs[2], y.qs[3], y.qs[4],
              (double)y.d);
        CHECK(y.bsums[0] == -127 + 127 - 2 - 4 && y.s32[0] == y.bsums[0] + y.bsums[1], "%s Q8_K bsums %d s32 %d",
              all[i]->name, y.bsums[0], y.s32[0]);
    }
    printf("quantizer known answers (roundf ties away for Q8_0/Q8_1, ties to even for Q8_K): checked\n");
}

/* Every implementation's quantized rows byte-equal to the scalar one's. */
static void test_quantizer_equal(void)
{
    int n;
    const qdot_impl *const *all = qdot_all(&n);
    const int K = 2304;
    float *x = malloc(sizeof(float) * K);
    for (int at = 0; at < 3; at++) {
        const size_t xrb = qdot_act_row_bytes((qdot_act)at, K);
        uint8_t *a = aligned_alloc(64, xrb), *b = aligned_alloc(64, xrb);
        for (int i = 1; i < n; i++) {
            if (!qdot_supported(all[i])) continue;
            int same = 1;
            for (int rep = 0; rep < 20; rep++) {
                rand_row(x, K, 1);
                if (rep == 0) memset(x, 0, sizeof(float) * K); /* all zero: d = 0 */
                memset(a, 0, xrb);
                memset(b, 0, xrb);
                qdot_scalar.quant[at](x, a, K);
                all[i]->quant[at](x, b, K);
                same &= memcmp(a, b, xrb) == 0;
            }
            printf("quantizer %-6s = scalar, bitwise, activation type %d: %s\n", all[i]->name, at, same ? "yes" : "NO");
            CHECK(same, "%s quantizer differs from scalar (activation type %d)", all[i]->name, at);
        }
        free(a);
        free(b);
    }
    free(x);
}

/* ---------------------------------------------------------------- 2-4. accuracy */

/* The activation rows of in[n, K] quantized by the scalar quantizer,
 * dequantized (xf), and the per-element activation error bound (xe). */
typedef struct {
    uint8_t *xq;
    float *xf, *xe;
    size_t xrb;
} qact;

static qact make_qact(steer_dtype t, const float *in, int n, int K)
{
    qact a;
    const qdot_act at = qdot_act_type(t);
    a.xrb = qdot_act_row_bytes(at, K);
    a.xq = aligned_alloc(64, a.xrb * n);
    a.xf = malloc(sizeof(float) * n * K);
    a.xe = malloc(sizeof(float) * n * K);
    const int be = at == QDOT_ACT_Q8_K ? 256 : 32;
    const double rel = at == QDOT_ACT_Q8_K ? TOL_QDOT_ACT_Q8_K : TOL_QDOT_ACT_Q8_0;
    for (int i = 0; i < n; i++) {
        qdot_scalar.quant[at](in + (size_t)i * K, a.xq + i * a.xrb, K);
        qdot_act_dequant(at, a.xq + i * a.xrb, a.xf + (size_t)i * K, K);
        for (int b = 0; b < K / be; b++) {
            float amax = 0;
            for (int j = 0; j < be; j++) amax = fmaxf(amax, fabsf(in[(size_t)i * K + b * be + j]));
            for (int j = 0; j < be; j++) a.xe[(size_t)i * K + b * be + j] = (float)(rel * amax);
        }
    }
    return a;
}

static void free_qact(qact *a)
{
    free(a->xq);
    free(a->xf);
    free(a->xe);
}

/* Q4_1 / Q5_1: the product uses s = f16(d·Σq) where Σ x̂ = d16·Σq; the
 * difference Σ_b m_b·(s_b − d16_b·Σq_b), in double. */
static double q81_correction(const qmat *m, int r, const qact *a, int i, int K)
{
    if (qdot_act_type(m->W.dtype) != QDOT_ACT_Q8_1) return 0.0;
    const uint8_t *wr = m->q + (size_t)r * q_row_bytes(m->W.dtype, (size_t)K);
    const int8_t *qs = (const int8_t *)(a->xq + i * a->xrb);
    const float *d = (const float *)(a->xq + i * a->xrb + K), *s = d + K / 32;
    double c = 0;
    for (int b = 0; b < K / 32; b++) {
        const uint8_t *blk = wr + (size_t)b * blk_bytes(m->W.dtype);
        const double mw = q_f16_to_f32((uint16_t)(blk[2] | (blk[3] << 8)));
        int sq = 0;
        for (int j = 0; j < 32; j++) sq += qs[32 * b + j];
        c += mw * ((double)s[b] - (double)d[b] * sq);
    }
    return c;
}

/* max over elements of |out − ref| / tol for ref = ŵ·x̂ (+ the Q8_1
 * correction) and tol = TOL_QDOT_EXACT_ULPS·(blocks + 8)·2^-24·Σ wa·|x̂|
 * (+ the same on the correction's terms); and the same ratio for
 * ref2 = ŵ·x (f32 activations), tol2 = Σ |ŵ|·xe + tol. */
static void errors(const qmat *m, const qact *a, const float *in, const float *out, int n, double *r1, double *r2)
{
    const int rows = m->W.rows, K = m->W.cols;
    const double nblk = (double)K / (double)blk_elems(m->W.dtype) + 8.0;
    *r1 = *r2 = 0;
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++) {
            const float *w = m->wf + (size_t)r * K, *wa = m->wa + (size_t)r * K;
            const float *xf = a->xf + (size_t)i * K, *x = in + (size_t)i * K, *xe = a->xe + (size_t)i * K;
            double ref = 0, ref2 = 0, mag = 0, e2 = 0;
            for (int k = 0; k < K; k++) {
                ref += (double)w[k] * xf[k];
                ref2 += (double)w[k] * x[k];
                mag += (double)wa[k] * fabs(xf[k]);
                e2 += fabs((double)w[k]) * xe[k];
            }
            const double corr = q81_correction(m, r, a, i, K);
            ref += corr;
            const double tol = TOL_QDOT_EXACT_ULPS * nblk * 0x1p-24 * (mag + fabs(corr)) + 1e-30;
            const double got = out[(size_t)i * rows + r];
            const double q1 = fabs(got - ref) / tol, q2 = fabs(got - ref2) / (e2 + fabs(corr) + tol);
            if (!(q1 <= *r1)) *r1 = q1; /* NaN propagates as a failure */
            if (!(q2 <= *r2)) *r2 = q2;
        }
}

static const char *tname(steer_dtype t) { return steer_dtype_name(t); }

/* The scale check and the nibble check must fail: a test that cannot fail
 * is no test. On the scalar implementation (the others equal it bitwise). */
static void test_sharp(steer_dtype t)
{
    const int rows = 5, K = is_k(t) ? 512 : 96, n = 3;
    qmat m = make_qmat(t, rows, K, 0);
    float *in = malloc(sizeof(float) * n * K), *out = malloc(sizeof(float) * n * rows);
    for (int i = 0; i < n; i++) rand_row(in + (size_t)i * K, K, 0);
    qact a = make_qact(t, in, n, K);
    double r1, r2;
    const blk_layout L = layout(t);
    const size_t rb = q_row_bytes(t, (size_t)K);
    /* (a) block 0 of every row with its scale d doubled (f16 exponent + 1) */
    uint8_t *save = malloc(rb * rows);
    memcpy(save, m.q, rb * rows);
    for (int r = 0; r < rows; r++) {
        uint8_t *p = m.q + r * rb + L.f16[0];
        uint16_t h = (uint16_t)(p[0] | (p[1] << 8));
        h = (uint16_t)(h + 0x0400);
        p[0] = (uint8_t)h;
        p[1] = (uint8_t)(h >> 8);
    }
    qdot_matmul_with(&qdot_scalar, out, in, &m.W, n);
    errors(&m, &a, in, out, n, &r1, &r2);
    printf("  %-5s with block 0's scale doubled: error/tol %.3g (must be > 1)\n", tname(t), r1);
    CHECK(r1 > 1.0, "%s: a doubled block scale passes the check (%.3g)", tname(t), r1);
    memcpy(m.q, save, rb * rows);
    /* (b) nibbles swapped in block 0's level bytes (4-bit types; Q6_K's low bits) */
    if (t != STEER_DTYPE_Q8_0 && t != STEER_DTYPE_Q2_K && t != STEER_DTYPE_Q3_K) {
        const int lv0 = t == STEER_DTYPE_Q5_0 ? 6 : t == STEER_DTYPE_Q5_1 ? 8 : t == STEER_DTYPE_Q5_K ? 48 : L.lv0;
        const int lv1 = t == STEER_DTYPE_Q6_K ? 128 : L.lv1;
        for (int r = 0; r < rows; r++)
            for (int j = lv0; j < lv1; j++) {
                uint8_t *p = m.q + r * rb + j;
                *p = (uint8_t)((*p >> 4) | (*p << 4));
            }
        qdot_matmul_with(&qdot_scalar, out, in, &m.W, n);
        errors(&m, &a, in, out, n, &r1, &r2);
        printf("  %-5s with block 0's nibbles swapped: error/tol %.3g (must be > 1)\n", tname(t), r1);
        CHECK(r1 > 1.0, "%s: swapped nibbles pass the check (%.3g)", tname(t), r1);
    }
    free(save);
    free_qact(&a);
    free(in);
    free(out);
    free_qmat(&m);
}

static void test_accuracy(const qdot_impl *q)
{
    /* 4160 = 130 blocks of 32: a long legacy row (more than 128 blocks) */
    static const int ks_k[] = {256, 768, 2304}, ks_l[] = {32, 96, 288, 512, 2336, 4160};
    static const int rows_l[] = {1, 7, 13}, ns[] = {1, 3, 6};
    for (int ti = 0; ti < N_TYPES; ti++) {
        const steer_dtype t = TYPES[ti];
        const int *ks = is_k(t) ? ks_k : ks_l, nk = is_k(t) ? 3 : 6;
        double w1 = 0, w2 = 0;
        int same = 1, cases = 0;
        for (int raw = 0; raw < 2; raw++)
            for (int ki = 0; ki < nk; ki++)
                for (int ri = 0; ri < 3; ri++) {
                    const int K = ks[ki], rows = rows_l[ri], n = ns[(ki + ri) % 3];
                    qmat m = make_qmat(t, rows, K, raw);
                    float *in = malloc(sizeof(float) * n * K), *out = malloc(sizeof(float) * n * rows),
                          *ref = malloc(sizeof(float) * n * rows);
                    for (int i = 0; i < n; i++) rand_row(in + (size_t)i * K, K, i == 1);
                    if (n > 2) memset(in + (size_t)2 * K, 0, sizeof(float) * K); /* an all-zero row */
                    qact a = make_qact(t, in, n, K);
                    qdot_matmul_with(q, out, in, &m.W, n);
                    double r1, r2;
                    errors(&m, &a, in, out, n, &r1, &r2);
                    if (!(r1 <= w1)) w1 = r1;
                    if (!(r2 <= w2)) w2 = r2;
                    if (q != &qdot_scalar) {
                        qdot_matmul_with(&qdot_scalar, ref, in, &m.W, n);
                        same &= memcmp(out, ref, sizeof(float) * n * rows) == 0;
                    }
                    cases++;
                    free_qact(&a);
                    free(in);
                    free(out);
                    free(ref);
                    free_qmat(&m);
                }
        printf("%-6s %-5s %2d shapes: vs ŵ·x̂ error/tol %.3g, vs ŵ·x (f32 activations) error/bound %.3g%s\n", q->name,
               tname(t), cases, w1, w2, q == &qdot_scalar ? "" : same ? ", = scalar bitwise" : ", DIFFERS from scalar");
        CHECK(w1 <= 1.0, "%s %s: error against the dequantized product %.3g x tol", q->name, tname(t), w1);
        CHECK(w2 <= 1.0, "%s %s: error against f32 activations %.3g x bound", q->name, tname(t), w2);
        CHECK(same, "%s %s: differs from scalar", q->name, tname(t));
    }
}

/* ---------------------------------------------------------------- 5. invariance */

static void test_invariance(const qdot_impl *q)
{
    for (int ti = 0; ti < N_TYPES; ti++) {
        const steer_dtype t = TYPES[ti];
        const int K = is_k(t) ? 512 : 288, rows = 13, n = 70;
        qmat m = make_qmat(t, rows, K, 0);
        float *in = malloc(sizeof(float) * n * K), *full = malloc(sizeof(float) * n * rows),
              *part = malloc(sizeof(float) * n * rows);
        for (int i = 0; i < n; i++) rand_row(in + (size_t)i * K, K, 0);
        qdot_matmul_with(q, full, in, &m.W, n);
        int same = 1;
        for (int c = 1; c <= 9; c++) {
            for (int i0 = 0; i0 < n; i0 += c) {
                const int nc = n - i0 < c ? n - i0 : c;
                qdot_matmul_with(q, part + (size_t)i0 * rows, in + (size_t)i0 * K, &m.W, nc);
            }
            same &= memcmp(full, part, sizeof(float) * n * rows) == 0;
        }
        CHECK(same, "%s %s: batch of 70 differs from chunks", q->name, tname(t));
        /* threads: a product large enough to run in parallel */
        const int K2 = is_k(t) ? 2048 : 2080, rows2 = 67, n2 = 9;
        qmat m2 = make_qmat(t, rows2, K2, 0);
        float *in2 = malloc(sizeof(float) * n2 * K2), *o1 = malloc(sizeof(float) * n2 * rows2),
              *o2 = malloc(sizeof(float) * n2 * rows2);
        for (int i = 0; i < n2; i++) rand_row(in2 + (size_t)i * K2, K2, 0);
        omp_set_num_threads(1);
        qdot_matmul_with(q, o1, in2, &m2.W, n2);
        omp_set_num_threads(2);
        qdot_matmul_with(q, o2, in2, &m2.W, n2);
        const int tsame = memcmp(o1, o2, sizeof(float) * n2 * rows2) == 0;
        CHECK(tsame, "%s %s: 1 thread differs from 2", q->name, tname(t));
        printf("%-6s %-5s batch 70 = chunks 1..9 bitwise: %s; 1 = 2 threads bitwise: %s\n", q->name, tname(t),
               same ? "yes" : "NO", tsame ? "yes" : "NO");
        free(in);
        free(full);
        free(part);
        free(in2);
        free(o1);
        free(o2);
        free_qmat(&m);
        free_qmat(&m2);
    }
}

/* ---------------------------------------------------------------- 6. dispatch */

static void test_dispatch(void)
{
    const ops_kernels *keep = ops_kern();
    int n;
    const ops_kernels *const *paths = ops_kern_all(&n);
    /* what each kernel path should take on this CPU: the best the path's
     * instruction sets allow (a wide path never falls back to scalar) */
    const char *narrow = qdot_supported(&qdot_avxvnni) ? "avxvnni" : qdot_supported(&qdot_avx2) ? "avx2" : "scalar";
    const char *wide = qdot_supported(&qdot_avx512vnni) ? "avx512vnni" : narrow;
    for (int i = 0; i < n; i++) {
        const char *p = paths[i]->name;
        const char *want = !strcmp(p, "scalar") ? "scalar" : !strcmp(p, "avx2") ? narrow : wide;
        const qdot_impl *q = qdot_for_path(p); /* also for a path this CPU lacks */
        printf("kernel path %-10s -> qdot %s\n", p, q->name);
        CHECK(!strcmp(q->name, want), "path %s chooses qdot %s, want %s", p, q->name, want);
        if (!ops_kern_supported(paths[i])) continue;
        ops_kern_set(paths[i]);
        CHECK(qdot_cur() == q, "path %s in use: qdot_cur() %s, want %s", p, qdot_cur()->name, q->name);
    }
    ops_kern_set(keep);
    /* qdot_matmul = qdot_matmul_with(qdot_cur()) */
    qmat m = make_qmat(STEER_DTYPE_Q4_K, 9, 512, 0);
    float in[2 * 512], a[18], b[18];
    rand_row(in, 1024, 0);
    qdot_matmul(a, in, &m.W, 2);
    qdot_matmul_with(qdot_cur(), b, in, &m.W, 2);
    CHECK(!memcmp(a, b, sizeof a), "qdot_matmul differs from qdot_matmul_with(qdot_cur())");
    /* not a matrix the path takes: NaN */
    steer_mat bad = {m.q, STEER_DTYPE_Q4_K, 9, 500};
    CHECK(!qdot_can(&bad), "K = 500 accepted for Q4_K");
    qdot_matmul(a, in, &bad, 1);
    CHECK(isnan(a[0]) && isnan(a[8]), "a matrix qdot cannot take gives %g", (double)a[0]);
    free_qmat(&m);
}

int main(void)
{
    test_quantizer_answers();
    test_quantizer_equal();
    printf("sharpness (scalar):\n");
    for (int ti = 0; ti < N_TYPES; ti++) test_sharp(TYPES[ti]);
    int n;
    const qdot_impl *const *all = qdot_all(&n);
    for (int i = 0; i < n; i++) {
        if (!qdot_supported(all[i])) {
            printf("SKIPPED qdot %s: this CPU lacks some of: %s\n", all[i]->name, all[i]->needs);
            continue;
        }
        test_accuracy(all[i]);
        test_invariance(all[i]);
    }
#ifdef STEER_HAVE_SIMDE
    /* the VNNI kernels' code with SIMDe's VPDPBUSD and VPDPWSSD (qdot_emu_vnni.c):
     * bitwise = scalar (test_accuracy) on any AVX2 CPU */
    extern const qdot_impl qdot_emu_vnni;
    if (qdot_supported(&qdot_emu_vnni)) {
        test_accuracy(&qdot_emu_vnni);
        test_invariance(&qdot_emu_vnni);
    } else {
        printf("SKIPPED qdot %s: this CPU lacks some of: %s\n", qdot_emu_vnni.name, qdot_emu_vnni.needs);
    }
#else
    printf("SKIPPED qdot emulated-avx512vnni: built without SIMDe (libsimde-dev)\n");
#endif
    test_dispatch();
    if (tu_failures) {
        fprintf(stderr, "%d check(s) failed\n", tu_failures);
        return 1;
    }
    printf("test_qdot: all checks passed\n");
    return 0;
}

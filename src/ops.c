/*
 * ops.c — numeric kernels: dtype conversion, the one matmul interface, RMSNorm,
 * SiLU-GLU, softmax. Scalar reference code that GCC vectorises at -O2
 * -march=native, plus OpenBLAS sgemm for f32 matrices.
 */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------- conversion */

float ops_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ops_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into exp: correct */
    return (uint16_t)h;
}

float ops_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ops_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

void ops_to_f32(float *dst, const void *src, steer_dtype dtype, size_t n)
{
    if (dtype == STEER_DTYPE_F32) {
        memcpy(dst, src, n * sizeof(float));
    } else if (dtype == STEER_DTYPE_BF16) {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)s[i] << 16;
            memcpy(&dst[i], &bits, 4);
        }
    } else if (dtype == STEER_DTYPE_F16) {
        const uint16_t *s = src;
#if defined(__F16C__)
        for (size_t i = 0; i < n; i++) dst[i] = _cvtsh_ss(s[i]);
#else
        for (size_t i = 0; i < n; i++) dst[i] = ops_f16_to_f32(s[i]);
#endif
    }
}

/* ---------------------------------------------------------------- matmul */

/*
 * The matmul kernel is batch-invariant: every output element is one dot
 * product computed in a fixed order (8 lanes accumulated along k with FMA, the
 * lanes summed in a fixed tree, the tail added in order), whatever n is and
 * however rows are blocked or split across threads. So a prompt processed as
 * one batch gives bitwise the logits of token-by-token decoding, and a
 * sequence gives the same logits alone or batched with others. (OpenBLAS
 * sgemm re-associates differently for different n: 1-2e-5 on stories260K
 * logits.) bench/bench_matmul compares this kernel against OpenBLAS sgemm.
 */

#if defined(__AVX2__) && defined(__FMA__)
static inline float hsum8(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);                 /* lanes (0+4, 1+5, 2+6, 3+7) */
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));        /* (0+2, 1+3)                 */
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55)); /* 0+1                        */
    return _mm_cvtss_f32(s);
}
static inline __m256 load8_w(const void *w, steer_dtype dt, size_t k)
{
    if (dt == STEER_DTYPE_F32) return _mm256_loadu_ps((const float *)w + k);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + k));
    if (dt == STEER_DTYPE_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}
#else
/* Portable fallback: the same fixed order in scalar code. */
typedef struct { float v[8]; } vec8;
static inline float hsum8(vec8 a)
{
    float s0 = a.v[0] + a.v[4], s1 = a.v[1] + a.v[5], s2 = a.v[2] + a.v[6], s3 = a.v[3] + a.v[7];
    return (s0 + s2) + (s1 + s3);
}
#endif

static inline float w_at(const void *w, steer_dtype dt, size_t k)
{
    if (dt == STEER_DTYPE_F32) return ((const float *)w)[k];
    uint16_t h = ((const uint16_t *)w)[k];
    return dt == STEER_DTYPE_BF16 ? ops_bf16_to_f32(h) : ops_f16_to_f32(h);
}

/* out[i*ldo + r] for i in [0, ni), r in [0, nr): x rows [ni, K], w rows [nr, K]
 * (dtype dt, row stride K elements). ni <= 2, nr <= 4. */
static void mm_tile(float *out, size_t ldo, const float *x, int ni, const uint8_t *w, steer_dtype dt, size_t esz,
                    int nr, int K)
{
    const int K8 = K & ~7;
#if defined(__AVX2__) && defined(__FMA__)
    __m256 acc[2][4];
    for (int i = 0; i < 2; i++)
        for (int r = 0; r < 4; r++) acc[i][r] = _mm256_setzero_ps();
    for (int k = 0; k < K8; k += 8) {
        __m256 xv[2];
        for (int i = 0; i < ni; i++) xv[i] = _mm256_loadu_ps(x + (size_t)i * K + k);
        for (int r = 0; r < nr; r++) {
            __m256 wv = load8_w(w + (size_t)r * K * esz, dt, (size_t)k);
            for (int i = 0; i < ni; i++) acc[i][r] = _mm256_fmadd_ps(xv[i], wv, acc[i][r]);
        }
    }
#else
    vec8 acc[2][4];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < K8; k += 8)
        for (int r = 0; r < nr; r++)
            for (int i = 0; i < ni; i++)
                for (int j = 0; j < 8; j++)
                    acc[i][r].v[j] = fmaf(x[(size_t)i * K + k + j], w_at(w + (size_t)r * K * esz, dt, (size_t)k + j),
                                          acc[i][r].v[j]);
#endif
    for (int i = 0; i < ni; i++)
        for (int r = 0; r < nr; r++) {
            float s = hsum8(acc[i][r]);
            const uint8_t *wr = w + (size_t)r * K * esz;
            for (int k = K8; k < K; k++) s = fmaf(x[(size_t)i * K + k], w_at(wr, dt, (size_t)k), s);
            out[(size_t)i * ldo + r] = s;
        }
}

/* Inputs are processed in blocks of MM_IBLOCK rows so that a block stays in
 * cache while a thread sweeps its share of weight rows. */
#define MM_IBLOCK 32

void ops_matmul(float *out, const float *in, const steer_mat *W, int n)
{
    const int rows = W->rows, K = W->cols;
    const size_t esz = steer_dtype_size(W->dtype);
    const uint8_t *wd = W->data;
    const int n_rb = (rows + 3) / 4;
    /* Every thread walks the same input blocks; within one, the weight rows
     * are split across threads. The block of inputs stays in cache while the
     * weights stream past it once per block. */
#pragma omp parallel if ((size_t)rows * K * (size_t)n > 32768)
    for (int ib = 0; ib < n; ib += MM_IBLOCK) {
        const int ie = n - ib < MM_IBLOCK ? n : ib + MM_IBLOCK;
#pragma omp for schedule(static) nowait
        for (int rb = 0; rb < n_rb; rb++) {
            const int r0 = rb * 4, nr = rows - r0 < 4 ? rows - r0 : 4;
            for (int i0 = ib; i0 < ie; i0 += 2) {
                const int ni = ie - i0 < 2 ? ie - i0 : 2;
                mm_tile(out + (size_t)i0 * rows + r0, (size_t)rows, in + (size_t)i0 * K, ni,
                        wd + (size_t)r0 * K * esz, W->dtype, esz, nr, K);
            }
        }
    }
}

/* OpenBLAS sgemm for f32 weights (not batch-invariant); used by the
 * benchmark as the baseline and available to callers who want it. */
void ops_matmul_blas(float *out, const float *in, const steer_mat *W, int n)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, W->rows, W->cols, 1.0f, in, W->cols, W->data, W->cols,
                0.0f, out, W->rows);
}

/* ---------------------------------------------------------------- elementwise */

void ops_rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps)
{
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *oi = out + (size_t)i * d;
        double ss = 0.0;
        for (int j = 0; j < d; j++) ss += (double)xi[j] * xi[j];
        float scale = (float)(1.0 / sqrt(ss / d + (double)eps));
        for (int j = 0; j < d; j++) oi[j] = xi[j] * scale * w[j];
    }
}

void ops_glu(float *out, const float *g, const float *u, size_t n, steer_act act)
{
    switch (act) {
    case STEER_ACT_SILU:
        for (size_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
        break;
    case STEER_ACT_GELU_TANH: {
        const float k = 0.7978845608028654f; /* √(2/π) */
        for (size_t i = 0; i < n; i++) {
            float x = g[i];
            out[i] = 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x))) * u[i];
        }
        break;
    }
    case STEER_ACT_GELU:
        for (size_t i = 0; i < n; i++) out[i] = 0.5f * g[i] * (1.0f + erff(g[i] * 0.7071067811865475f)) * u[i];
        break;
    }
}

void ops_add_bias(float *x, const float *b, int n, int w)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < w; j++) x[(size_t)i * w + j] += b[j];
}

void ops_softcap(float *x, size_t n, float c)
{
    for (size_t i = 0; i < n; i++) x[i] = c * tanhf(x[i] / c);
}

void ops_softmax(float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

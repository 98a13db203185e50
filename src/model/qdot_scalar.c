/*
 * qdot_scalar.c — the scalar implementation of the quantized-activation dot
 * products (qdot.h): ggml's reference activation quantizers, and for every
 * block type the dot product of a weight row with a quantized activation row
 * by the lane contract of qdot.h, in plain C (8 lanes in arrays, fmaf). The
 * reference the SIMD implementations are tested against, bit for bit, and
 * the one the types without a SIMD kernel use.
 */
#include "qdot.h"
#include "quant.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static inline float f16_at(const uint8_t *p) { return q_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }
static inline float f16_round(float f) { return q_f16_to_f32(q_f32_to_f16(f)); }
static inline uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ggml's nearest_int: round to nearest, ties to even, |f| < 2^22. */
static inline int nearest_int(float f)
{
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007FFFFF) - 0x00400000;
}

/* acc_j = fma(D, L_j, acc_j) */
static inline void lanes_fma(float *acc, float D, const int32_t *L)
{
    for (int j = 0; j < 8; j++) acc[j] = fmaf(D, (float)L[j], acc[j]);
}

/* kern.h's fixed tree: (0+4, 1+5, 2+6, 3+7), (0+2, 1+3), 0+1. */
static inline float lanes_sum(const float *a)
{
    float s0 = a[0] + a[4], s1 = a[1] + a[5], s2 = a[2] + a[6], s3 = a[3] + a[7];
    float t0 = s0 + s2, t1 = s1 + s3;
    return t0 + t1;
}

/* ---------------------------------------------------------------- activation quantizers */

/* ggml's quantize_row_q8_0_ref / q8_1_ref: d = amax/127, q = roundf(x·(1/d)). */
static void quant_q8_legacy(const float *x, void *dst, int K, int with_s)
{
    const int nb = K / 32;
    int8_t *qs = dst;
    float *d = (float *)(qs + K), *s = d + nb;
    for (int b = 0; b < nb; b++) {
        const float *xb = x + 32 * b;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            float a = fabsf(xb[j]);
            amax = amax > a ? amax : a;
        }
        const float db = amax / 127;
        const float id = db != 0.0f ? 1.0f / db : 0.0f;
        d[b] = f16_round(db);
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            const float v = xb[j] * id;
            qs[32 * b + j] = (int8_t)roundf(v);
            sum += qs[32 * b + j];
        }
        if (with_s) s[b] = f16_round((float)sum * db);
    }
}

static void quant_q8_0(const float *x, void *dst, int K) { quant_q8_legacy(x, dst, K, 0); }
static void quant_q8_1(const float *x, void *dst, int K) { quant_q8_legacy(x, dst, K, 1); }

/* Group sums of a Q8_K block (bsums of 16, s32 of 32). */
static void q8k_sums(qdot_q8k *y)
{
    for (int g = 0; g < 16; g++) {
        int sum = 0;
        for (int l = 0; l < 16; l++) sum += y->qs[16 * g + l];
        y->bsums[g] = (int16_t)sum;
    }
    for (int j = 0; j < 8; j++) y->s32[j] = y->bsums[2 * j] + y->bsums[2 * j + 1];
}

/* ggml's quantize_row_q8_K_ref. */
static void quant_q8_k(const float *x, void *dst, int K)
{
    qdot_q8k *y = dst;
    for (int b = 0; b < K / 256; b++, x += 256, y++) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < 256; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        memset(y, 0, sizeof *y);
        if (amax == 0.0f) continue; /* d = 0, levels 0 */
        const float iscale = -127.f / max;
        for (int j = 0; j < 256; j++) {
            int v = nearest_int(iscale * x[j]);
            y->qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        q8k_sums(y);
        y->d = 1 / iscale;
    }
}

/* ---------------------------------------------------------------- legacy types (blocks of 32) */

/* Levels w[32] (natural element order) and scale d (and min m) of one block. */
static float dec_q8_0(const uint8_t *b, int *w, float *m)
{
    (void)m;
    for (int j = 0; j < 32; j++) w[j] = (int8_t)b[2 + j];
    return f16_at(b);
}
static float dec_q4_0(const uint8_t *b, int *w, float *m)
{
    (void)m;
    for (int j = 0; j < 16; j++) {
        w[j] = (b[2 + j] & 15) - 8;
        w[j + 16] = (b[2 + j] >> 4) - 8;
    }
    return f16_at(b);
}
static float dec_q4_1(const uint8_t *b, int *w, float *m)
{
    for (int j = 0; j < 16; j++) {
        w[j] = b[4 + j] & 15;
        w[j + 16] = b[4 + j] >> 4;
    }
    *m = f16_at(b + 2);
    return f16_at(b);
}
static float dec_q5_0(const uint8_t *b, int *w, float *m)
{
    (void)m;
    const uint32_t qh = le32(b + 2);
    for (int j = 0; j < 16; j++) {
        w[j] = ((b[6 + j] & 15) | (int)(((qh >> j) & 1u) << 4)) - 16;
        w[j + 16] = ((b[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4)) - 16;
    }
    return f16_at(b);
}
static float dec_q5_1(const uint8_t *b, int *w, float *m)
{
    const uint32_t qh = le32(b + 4);
    for (int j = 0; j < 16; j++) {
        w[j] = (b[8 + j] & 15) | (int)(((qh >> j) & 1u) << 4);
        w[j + 16] = (b[8 + j] >> 4) | (int)(((qh >> (j + 16)) & 1u) << 4);
    }
    *m = f16_at(b + 2);
    return f16_at(b);
}

typedef float (*dec_legacy_fn)(const uint8_t *b, int *w, float *m);

static inline float dot_legacy(dec_legacy_fn dec, size_t bbytes, int with_min, int K, const uint8_t *w,
                               const uint8_t *x)
{
    const int nb = K / 32;
    const int8_t *qs = (const int8_t *)x;
    const float *dx = (const float *)(x + K), *sx = dx + nb;
    float acc[8] = {0}, accs = 0.0f;
    for (int b = 0; b < nb; b++) {
        int lv[32];
        float m = 0.0f;
        const float dw = dec(w + (size_t)b * bbytes, lv, &m);
        int32_t L[8];
        for (int j = 0; j < 8; j++) {
            int s = 0;
            for (int t = 0; t < 4; t++) s += lv[4 * j + t] * qs[32 * b + 4 * j + t];
            L[j] = s;
        }
        lanes_fma(acc, dw * dx[b], L);
        if (with_min) accs = fmaf(m, sx[b], accs);
    }
    return lanes_sum(acc) + accs;
}

/* ---------------------------------------------------------------- K types (super-blocks of 256) */

/* L_j = Σ_v scale[g(v, j)] · Σ_{t<4} lv[32v+4j+t]·y[…], g(v, j) = v (groups of
 * 32) or 2v + (j >= 4) (groups of 16). */
static void lanes_k(const int *lv, const int *scale, int groups16, const int8_t *y, int32_t *L)
{
    for (int j = 0; j < 8; j++) {
        int32_t s = 0;
        for (int v = 0; v < 8; v++) {
            int p = 0;
            for (int t = 0; t < 4; t++) p += lv[32 * v + 4 * j + t] * y[32 * v + 4 * j + t];
            s += scale[groups16 ? 2 * v + (j >= 4) : v] * p;
        }
        L[j] = s;
    }
}

/* Q4_K/Q5_K scales and mins (ggml's get_scale_min_k4). */
static void k4_scales(const uint8_t *s, int *sc, int *mn)
{
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            sc[j] = s[j] & 63;
            mn[j] = s[j + 4] & 63;
        } else {
            sc[j] = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
            mn[j] = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
        }
    }
}

static float dot_q4_k(int K, const uint8_t *w, const uint8_t *x)
{
    const qdot_q8k *y = (const qdot_q8k *)x;
    float acc[8] = {0}, accm[8] = {0};
    for (int b = 0; b < K / 256; b++, w += 144, y++) {
        int sc[8], mn[8], lv[256];
        k4_scales(w + 4, sc, mn);
        const uint8_t *qs = w + 16;
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                lv[64 * c + l] = qs[32 * c + l] & 15;
                lv[64 * c + 32 + l] = qs[32 * c + l] >> 4;
            }
        int32_t L[8], M[8];
        lanes_k(lv, sc, 0, y->qs, L);
        for (int j = 0; j < 8; j++) M[j] = mn[j] * y->s32[j];
        lanes_fma(acc, f16_at(w) * y->d, L);
        lanes_fma(accm, -(f16_at(w + 2) * y->d), M);
    }
    for (int j = 0; j < 8; j++) acc[j] += accm[j];
    return lanes_sum(acc);
}

static float dot_q5_k(int K, const uint8_t *w, const uint8_t *x)
{
    const qdot_q8k *y = (const qdot_q8k *)x;
    float acc[8] = {0}, accm[8] = {0};
    for (int b = 0; b < K / 256; b++, w += 176, y++) {
        int sc[8], mn[8], lv[256];
        k4_scales(w + 4, sc, mn);
        const uint8_t *qh = w + 16, *qs = w + 48;
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                lv[64 * c + l] = (qs[32 * c + l] & 15) | (((qh[l] >> (2 * c)) & 1) << 4);
                lv[64 * c + 32 + l] = (qs[32 * c + l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4);
            }
        int32_t L[8], M[8];
        lanes_k(lv, sc, 0, y->qs, L);
        for (int j = 0; j < 8; j++) M[j] = mn[j] * y->s32[j];
        lanes_fma(acc, f16_at(w) * y->d, L);
        lanes_fma(accm, -(f16_at(w + 2) * y->d), M);
    }
    for (int j = 0; j < 8; j++) acc[j] += accm[j];
    return lanes_sum(acc);
}

static float dot_q6_k(int K, const uint8_t *w, const uint8_t *x)
{
    const qdot_q8k *y = (const qdot_q8k *)x;
    float acc[8] = {0};
    for (int b = 0; b < K / 256; b++, w += 210, y++) {
        const uint8_t *ql = w, *qh = w + 128;
        const int8_t *sc8 = (const int8_t *)(w + 192);
        int sc[16], lv[256];
        for (int g = 0; g < 16; g++) sc[g] = sc8[g];
        for (int h = 0; h < 2; h++)
            for (int p = 0; p < 4; p++)
                for (int l = 0; l < 32; l++) {
                    int lo = ql[64 * h + l + 32 * (p & 1)];
                    lo = p < 2 ? lo & 15 : lo >> 4;
                    lv[128 * h + 32 * p + l] = lo | (((qh[32 * h + l] >> (2 * p)) & 3) << 4);
                }
        int32_t L[8];
        lanes_k(lv, sc, 1, y->qs, L);
        for (int j = 0; j < 8; j++) L[j] -= 32 * (sc[2 * j] * y->bsums[2 * j] + sc[2 * j + 1] * y->bsums[2 * j + 1]);
        lanes_fma(acc, f16_at(w + 208) * y->d, L);
    }
    return lanes_sum(acc);
}

static float dot_q3_k(int K, const uint8_t *w, const uint8_t *x)
{
    const qdot_q8k *y = (const qdot_q8k *)x;
    float acc[8] = {0};
    for (int b = 0; b < K / 256; b++, w += 110, y++) {
        const uint8_t *hm = w, *qs = w + 32, *s = w + 96;
        int sc[16], lv[256];
        for (int g = 0; g < 16; g++) {
            int lo = g < 8 ? (s[g] & 0x0F) : (s[g - 8] >> 4);
            int hi = (s[8 + g % 4] >> (2 * (g / 4))) & 3;
            sc[g] = (lo | (hi << 4)) - 32;
        }
        for (int h = 0; h < 2; h++)
            for (int p = 0; p < 4; p++)
                for (int l = 0; l < 32; l++)
                    lv[128 * h + 32 * p + l] =
                        ((qs[32 * h + l] >> (2 * p)) & 3) - ((hm[l] >> (4 * h + p)) & 1 ? 0 : 4);
        int32_t L[8];
        lanes_k(lv, sc, 1, y->qs, L);
        lanes_fma(acc, f16_at(w + 108) * y->d, L);
    }
    return lanes_sum(acc);
}

static float dot_q2_k(int K, const uint8_t *w, const uint8_t *x)
{
    const qdot_q8k *y = (const qdot_q8k *)x;
    float acc[8] = {0}, accm[8] = {0};
    for (int b = 0; b < K / 256; b++, w += 84, y++) {
        const uint8_t *s = w, *qs = w + 16;
        int sc[16], lv[256];
        for (int g = 0; g < 16; g++) sc[g] = s[g] & 15;
        for (int h = 0; h < 2; h++)
            for (int p = 0; p < 4; p++)
                for (int l = 0; l < 32; l++) lv[128 * h + 32 * p + l] = (qs[32 * h + l] >> (2 * p)) & 3;
        int32_t L[8], M[8];
        lanes_k(lv, sc, 1, y->qs, L);
        for (int j = 0; j < 8; j++) M[j] = (s[2 * j] >> 4) * y->bsums[2 * j] + (s[2 * j + 1] >> 4) * y->bsums[2 * j + 1];
        lanes_fma(acc, f16_at(w + 80) * y->d, L);
        lanes_fma(accm, -(f16_at(w + 82) * y->d), M);
    }
    for (int j = 0; j < 8; j++) acc[j] += accm[j];
    return lanes_sum(acc);
}

/* ---------------------------------------------------------------- tiles */

static float dot_q8_0(int K, const uint8_t *w, const uint8_t *x) { return dot_legacy(dec_q8_0, 34, 0, K, w, x); }
static float dot_q4_0(int K, const uint8_t *w, const uint8_t *x) { return dot_legacy(dec_q4_0, 18, 0, K, w, x); }
static float dot_q4_1(int K, const uint8_t *w, const uint8_t *x) { return dot_legacy(dec_q4_1, 20, 1, K, w, x); }
static float dot_q5_0(int K, const uint8_t *w, const uint8_t *x) { return dot_legacy(dec_q5_0, 22, 0, K, w, x); }
static float dot_q5_1(int K, const uint8_t *w, const uint8_t *x) { return dot_legacy(dec_q5_1, 24, 1, K, w, x); }

#define QDOT_SCALAR_TILE(T)                                                                                    \
    void qdot_scalar_tile_##T(int K, const void *w, size_t ldw, int nrows, const void *x, size_t ldx, int nr,   \
                              float *out, size_t ldo)                                                          \
    {                                                                                                          \
        for (int i = 0; i < nr; i++)                                                                           \
            for (int r = 0; r < nrows; r++)                                                                    \
                out[(size_t)i * ldo + r] =                                                                     \
                    dot_##T(K, (const uint8_t *)w + (size_t)r * ldw, (const uint8_t *)x + (size_t)i * ldx); \
    }
QDOT_SCALAR_TILE(q8_0)
QDOT_SCALAR_TILE(q4_0)
QDOT_SCALAR_TILE(q4_1)
QDOT_SCALAR_TILE(q5_0)
QDOT_SCALAR_TILE(q5_1)
QDOT_SCALAR_TILE(q2_k)
QDOT_SCALAR_TILE(q3_k)
QDOT_SCALAR_TILE(q4_k)
QDOT_SCALAR_TILE(q5_k)
QDOT_SCALAR_TILE(q6_k)

const qdot_impl qdot_scalar = {
    .name = "scalar",
    .needs = "",
    .quant = {quant_q8_0, quant_q8_1, quant_q8_k},
    .tile =
        {
            [STEER_DTYPE_Q8_0] = qdot_scalar_tile_q8_0,
            [STEER_DTYPE_Q4_0] = qdot_scalar_tile_q4_0,
            [STEER_DTYPE_Q4_1] = qdot_scalar_tile_q4_1,
            [STEER_DTYPE_Q5_0] = qdot_scalar_tile_q5_0,
            [STEER_DTYPE_Q5_1] = qdot_scalar_tile_q5_1,
            [STEER_DTYPE_Q2_K] = qdot_scalar_tile_q2_k,
            [STEER_DTYPE_Q3_K] = qdot_scalar_tile_q3_k,
            [STEER_DTYPE_Q4_K] = qdot_scalar_tile_q4_k,
            [STEER_DTYPE_Q5_K] = qdot_scalar_tile_q5_k,
            [STEER_DTYPE_Q6_K] = qdot_scalar_tile_q6_k,
        },
    .nr = {[STEER_DTYPE_Q8_0] = 1, [STEER_DTYPE_Q4_0] = 1, [STEER_DTYPE_Q4_1] = 1, [STEER_DTYPE_Q5_0] = 1,
           [STEER_DTYPE_Q5_1] = 1, [STEER_DTYPE_Q2_K] = 1, [STEER_DTYPE_Q3_K] = 1, [STEER_DTYPE_Q4_K] = 1,
           [STEER_DTYPE_Q5_K] = 1, [STEER_DTYPE_Q6_K] = 1},
};

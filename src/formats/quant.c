/* quant.c — ggml's block-quantized types: geometry, dequantization (bit-exact
 * with ggml's to_float), reference quantizers, ggml type numbers (quant.h).
 *
 * Written from ggml's documented layouts and reference algorithms (llama.cpp
 * ggml/src/ggml-common.h, ggml-quants.c; gguf-py quants.py). Exactness rules:
 *   - every float expression is evaluated in ggml's order: a product like
 *     d·s·q is (d·s)·q, integers are converted to float where ggml converts
 *     them, x·d + m is a rounded product then a rounded sum (never a fused
 *     multiply-add: CMakeLists.txt compiles this file with -ffp-contract=off,
 *     and the pragma below says the same to compilers that honour it);
 *   - f16 scales are converted exactly as ggml does (IEEE, ties to even);
 *   - rounding to an integer is ggml's: nearest_int (ties to even, the
 *     1.5·2^23 trick), roundf (ties away from zero, Q8_0), truncation of
 *     x + 8.5 / x + 0.5 (Q4_0/Q4_1/Q5_0/Q5_1).
 * Blocks are read and written byte by byte (little-endian), so nothing here
 * depends on alignment or host struct layout. */
#include "quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define QK Q_BLOCK_LEGACY
#define QKK Q_BLOCK_K
#define GROUP_MAX_EPS 1e-15f /* ggml: a group whose max |x| is below this is all zero */

/* ---------------------------------------------------------------- type table */

typedef struct {
    uint32_t ggml;  /* ggml type number, UINT32_MAX: none          */
    uint16_t elems; /* elements per block                          */
    uint16_t bytes; /* bytes per block                             */
} q_type;

static const q_type q_types[STEER_DTYPE_COUNT] = {
    [STEER_DTYPE_F32] = {0, 1, 4},
    [STEER_DTYPE_F16] = {1, 1, 2},
    [STEER_DTYPE_BF16] = {30, 1, 2},
    [STEER_DTYPE_F64] = {UINT32_MAX, 1, 8},
    [STEER_DTYPE_I32] = {UINT32_MAX, 1, 4},
    [STEER_DTYPE_I64] = {UINT32_MAX, 1, 8},
    [STEER_DTYPE_U8] = {UINT32_MAX, 1, 1},
    [STEER_DTYPE_I8] = {UINT32_MAX, 1, 1},
    [STEER_DTYPE_Q8_0] = {8, QK, 2 + QK},               /* 34  */
    [STEER_DTYPE_Q4_0] = {2, QK, 2 + QK / 2},           /* 18  */
    [STEER_DTYPE_Q4_1] = {3, QK, 4 + QK / 2},           /* 20  */
    [STEER_DTYPE_Q5_0] = {6, QK, 2 + 4 + QK / 2},       /* 22  */
    [STEER_DTYPE_Q5_1] = {7, QK, 4 + 4 + QK / 2},       /* 24  */
    [STEER_DTYPE_Q2_K] = {10, QKK, 16 + 64 + 4},        /* 84  */
    [STEER_DTYPE_Q3_K] = {11, QKK, 32 + 64 + 12 + 2},   /* 110 */
    [STEER_DTYPE_Q4_K] = {12, QKK, 4 + 12 + 128},       /* 144 */
    [STEER_DTYPE_Q5_K] = {13, QKK, 4 + 12 + 32 + 128},  /* 176 */
    [STEER_DTYPE_Q6_K] = {14, QKK, 128 + 64 + 16 + 2},  /* 210 */
};

static int q_valid(steer_dtype t) { return (int)t >= 0 && t < STEER_DTYPE_COUNT; }

int q_block(steer_dtype t, size_t *block_elems, size_t *block_bytes)
{
    if (!q_valid(t)) return -1;
    if (block_elems) *block_elems = q_types[t].elems;
    if (block_bytes) *block_bytes = q_types[t].bytes;
    return 0;
}

int q_is_quantized(steer_dtype t) { return t >= STEER_DTYPE_Q8_0 && t < STEER_DTYPE_COUNT; }

size_t q_row_bytes(steer_dtype t, size_t n)
{
    if (!q_valid(t) || n % q_types[t].elems != 0) return 0;
    size_t nb = n / q_types[t].elems;
    if (nb > SIZE_MAX / q_types[t].bytes) return 0;
    return nb * q_types[t].bytes;
}

int q_from_ggml_type(uint32_t ggml_type, steer_dtype *out)
{
    for (int t = 0; t < STEER_DTYPE_COUNT; t++) {
        if (q_types[t].ggml == ggml_type && ggml_type != UINT32_MAX) {
            *out = (steer_dtype)t;
            return 0;
        }
    }
    return -1;
}

uint32_t q_to_ggml_type(steer_dtype t) { return q_valid(t) ? q_types[t].ggml : UINT32_MAX; }

/* Public (steer.h). */
int steer_dtype_block(steer_dtype t, size_t *block_elems, size_t *block_bytes)
{
    if (q_block(t, block_elems, block_bytes) != 0) return steer_err(STEER_EARG, "invalid dtype %d", (int)t);
    return STEER_OK;
}

size_t steer_dtype_row_bytes(steer_dtype t, size_t n) { return q_row_bytes(t, n); }

int steer_dtype_is_quantized(steer_dtype t) { return q_is_quantized(t); }

/* ---------------------------------------------------------------- scalars */

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

float q_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0) {
        /* ±0 or a subnormal m·2^-24 (exact in float). */
        float f = (float)m * 0x1p-24f;
        return sign ? -f : f;
    }
    if (e == 31) return bits_f32(sign | 0x7F800000u | (m << 13)); /* Inf, NaN (payload kept) */
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t q_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f), sign = (x >> 16) & 0x8000u, ax = x & 0x7FFFFFFFu;
    uint32_t e = ax >> 23, m = ax & 0x7FFFFFu;
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u); /* NaN → quiet NaN (as ggml)           */
    if (e > 142) return (uint16_t)(sign | 0x7C00u);          /* >= 2^16 (and Inf): ±Inf              */
    if (e >= 113) {                                           /* a normal half: keep 10 bits, round  */
        uint32_t h = ((e - 112) << 10) | (m >> 13), rem = m & 0x1FFFu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* may carry into the exponent / Inf */
        return (uint16_t)(sign | h);
    }
    if (e < 102) return (uint16_t)sign; /* below 2^-25: rounds to ±0 (2^-25 itself is a tie → even 0) */
    /* A half subnormal: units of 2^-24; the value is (m | 2^23)·2^(e − 150). */
    uint32_t mm = m | 0x800000u, shift = 126 - e; /* 14 … 24 */
    uint32_t h = mm >> shift, rem = mm & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) h++; /* 0x400 = the smallest normal, correctly */
    return (uint16_t)(sign | h);
}

static float rd_f16(const uint8_t *p) { return q_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

static void wr_f16(uint8_t *p, float f)
{
    uint16_t h = q_f32_to_f16(f);
    p[0] = (uint8_t)(h & 0xFF);
    p[1] = (uint8_t)(h >> 8);
}

/* ggml's nearest_int: round to nearest, ties to even, for |f| < 2^22 (adding
 * 1.5·2^23 leaves the integer in the low mantissa bits). ggml asserts the
 * range; here NaN gives 0 and larger magnitudes ±(2^22 − 1), which only
 * degenerate blocks reach (a subnormal or overflowing scale). */
static int nearest_int(float f)
{
    if (!(fabsf(f) <= 4194303.f)) f = f != f ? 0.f : f > 0 ? 4194303.f : -4194303.f;
    float v = f + 12582912.f;
    return (int)(f32_bits(v) & 0x007FFFFFu) - 0x00400000;
}

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* ---------------------------------------------------------------- dequantization, legacy types */

/* Q8_0: f16 d | int8 q[32]; x_j = q_j·d. */
static void dq_q8_0(const uint8_t *b, float *y)
{
    const float d = rd_f16(b);
    for (int j = 0; j < QK; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}

/* Q4_0: f16 d | qs[16]; x_j = (lo nibble of qs[j] − 8)·d, x_{j+16} = (hi − 8)·d. */
static void dq_q4_0(const uint8_t *b, float *y)
{
    const float d = rd_f16(b);
    const uint8_t *qs = b + 2;
    for (int j = 0; j < QK / 2; j++) {
        y[j] = (float)((qs[j] & 0x0F) - 8) * d;
        y[j + QK / 2] = (float)((qs[j] >> 4) - 8) * d;
    }
}

/* Q4_1: f16 d, f16 m | qs[16]; x = q·d + m (rounded product, then sum). */
static void dq_q4_1(const uint8_t *b, float *y)
{
    const float d = rd_f16(b), m = rd_f16(b + 2);
    const uint8_t *qs = b + 4;
    for (int j = 0; j < QK / 2; j++) {
        float p0 = (float)(qs[j] & 0x0F) * d, p1 = (float)(qs[j] >> 4) * d;
        y[j] = p0 + m;
        y[j + QK / 2] = p1 + m;
    }
}

static uint32_t rd_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Q5_0: f16 d | qh (u32 LE) | qs[16]; element j's 5th bit is bit j of qh
 * (j + 16's is bit j + 16); x = (q − 16)·d. */
static void dq_q5_0(const uint8_t *b, float *y)
{
    const float d = rd_f16(b);
    const uint32_t qh = rd_le32(b + 2);
    const uint8_t *qs = b + 6;
    for (int j = 0; j < QK / 2; j++) {
        int h0 = (int)((qh >> j) & 1u) << 4, h1 = (int)((qh >> (j + 16)) & 1u) << 4;
        y[j] = (float)(((qs[j] & 0x0F) | h0) - 16) * d;
        y[j + QK / 2] = (float)(((qs[j] >> 4) | h1) - 16) * d;
    }
}

/* Q5_1: f16 d, f16 m | qh | qs[16]; x = q·d + m. */
static void dq_q5_1(const uint8_t *b, float *y)
{
    const float d = rd_f16(b), m = rd_f16(b + 2);
    const uint32_t qh = rd_le32(b + 4);
    const uint8_t *qs = b + 8;
    for (int j = 0; j < QK / 2; j++) {
        int h0 = (int)((qh >> j) & 1u) << 4, h1 = (int)((qh >> (j + 16)) & 1u) << 4;
        float p0 = (float)((qs[j] & 0x0F) | h0) * d, p1 = (float)((qs[j] >> 4) | h1) * d;
        y[j] = p0 + m;
        y[j + QK / 2] = p1 + m;
    }
}

/* ---------------------------------------------------------------- dequantization, K types
 *
 * The 2-bit planes of Q2_K and Q3_K: the block is two halves of 128; in half
 * h, byte qs[32h + l] holds elements 128h + 32p + l (p = 0..3, bits 2p..2p+1)
 * for l < 32. Group g = 8h + 2p + (l >= 16) has 16 elements, in order. */

/* Q2_K: scales[16] | qs[64] | f16 d | f16 dmin; group g: scale (scales[g] & 15)·d,
 * min (scales[g] >> 4)·dmin; x = scale·q − min. */
static void dq_q2_k(const uint8_t *b, float *y)
{
    const uint8_t *sc = b, *qs = b + 16;
    const float d = rd_f16(b + 80), dmin = rd_f16(b + 82);
    for (int h = 0; h < 2; h++) {
        const uint8_t *q = qs + 32 * h;
        for (int p = 0; p < 4; p++) {
            for (int k = 0; k < 2; k++) { /* the two groups of 16 of this plane */
                const uint8_t s = sc[8 * h + 2 * p + k];
                const float dl = d * (float)(s & 0x0F), ml = dmin * (float)(s >> 4);
                for (int l = 0; l < 16; l++) {
                    float v = dl * (float)((q[16 * k + l] >> (2 * p)) & 3);
                    *y++ = v - ml;
                }
            }
        }
    }
}

/* The 16 6-bit scales of Q3_K from its 12 bytes: low 4 bits of scale j in
 * byte j (j < 8, low nibble) or byte j − 8 (high nibble); the top 2 bits in
 * byte 8 + j % 4 at bit 2·(j / 4). Returned minus 32 (signed). */
static int q3k_scale(const uint8_t *s, int j)
{
    int lo = j < 8 ? (s[j] & 0x0F) : (s[j - 8] >> 4);
    int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

/* Q3_K: hmask[32] | qs[64] | scales[12] | f16 d. q = the 2-bit value of the
 * plane layout above, minus 4 when its high bit is clear; the high bit of
 * element 128h + 32p + l (l < 32) is bit 4h + p of hmask[l]. x = (d·s)·q. */
static void dq_q3_k(const uint8_t *b, float *y)
{
    const uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    const float d = rd_f16(b + 108);
    for (int h = 0; h < 2; h++) {
        const uint8_t *q = qs + 32 * h;
        for (int p = 0; p < 4; p++) {
            const uint8_t bit = (uint8_t)(1u << (4 * h + p));
            for (int k = 0; k < 2; k++) {
                const float dl = d * (float)q3k_scale(sc, 8 * h + 2 * p + k);
                for (int l = 16 * k; l < 16 * k + 16; l++) {
                    int v = ((q[l] >> (2 * p)) & 3) - ((hm[l] & bit) ? 0 : 4);
                    *y++ = dl * (float)v;
                }
            }
        }
    }
}

/* The 8 6-bit scales and mins of Q4_K/Q5_K from 12 bytes (ggml's
 * get_scale_min_k4): j < 4: scale = s[j] & 63, min = s[j + 4] & 63; else
 * scale = (s[j + 4] & 15) | (s[j − 4] >> 6) << 4, min = (s[j + 4] >> 4) | (s[j] >> 6) << 4. */
static void k4_scale_min(const uint8_t *s, int j, int *sc, int *mn)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Q4_K: f16 d | f16 dmin | scales[12] | qs[128]. Chunk c of 64 elements
 * (c = 0..3) uses qs[32c .. 32c + 32): low nibbles are elements 64c + l
 * (group 2c), high nibbles 64c + 32 + l (group 2c + 1); x = (d·sc)·q − dmin·m. */
static void dq_q4_k(const uint8_t *b, float *y)
{
    const float d = rd_f16(b), dmin = rd_f16(b + 2);
    const uint8_t *s = b + 4, *qs = b + 16;
    for (int c = 0; c < 4; c++) {
        const uint8_t *q = qs + 32 * c;
        for (int k = 0; k < 2; k++) {
            int sc, mn;
            k4_scale_min(s, 2 * c + k, &sc, &mn);
            const float dl = d * (float)sc, ml = dmin * (float)mn;
            for (int l = 0; l < 32; l++) {
                float v = dl * (float)(k ? q[l] >> 4 : q[l] & 0x0F);
                *y++ = v - ml;
            }
        }
    }
}

/* Q5_K: f16 d | f16 dmin | scales[12] | qh[32] | qs[128]. As Q4_K, plus a 5th
 * bit: bit 2c (low nibbles) or 2c + 1 (high nibbles) of qh[l] adds 16. */
static void dq_q5_k(const uint8_t *b, float *y)
{
    const float d = rd_f16(b), dmin = rd_f16(b + 2);
    const uint8_t *s = b + 4, *qh = b + 16, *qs = b + 48;
    for (int c = 0; c < 4; c++) {
        const uint8_t *q = qs + 32 * c;
        for (int k = 0; k < 2; k++) {
            int sc, mn;
            k4_scale_min(s, 2 * c + k, &sc, &mn);
            const float dl = d * (float)sc, ml = dmin * (float)mn;
            const uint8_t bit = (uint8_t)(1u << (2 * c + k));
            for (int l = 0; l < 32; l++) {
                int v = (k ? q[l] >> 4 : q[l] & 0x0F) + ((qh[l] & bit) ? 16 : 0);
                float p = dl * (float)v;
                *y++ = p - ml;
            }
        }
    }
}

/* Q6_K: ql[128] | qh[64] | int8 scales[16] | f16 d. Half h (128 elements)
 * uses ql[64h ..], qh[32h ..], scales[8h ..]; for l < 32, element
 * 128h + 32p + l (p = 0..3) has low 4 bits from ql[64h + l + 32·(p & 1)]
 * (low nibble for p < 2, high for p >= 2) and high 2 bits from qh[32h + l]
 * bits 2p..2p+1; q − 32; scale scales[8h + 2p + l / 16]; x = (d·s)·q. */
static void dq_q6_k(const uint8_t *b, float *y)
{
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    const float d = rd_f16(b + 208);
    for (int h = 0; h < 2; h++) {
        for (int p = 0; p < 4; p++) {
            for (int l = 0; l < 32; l++) {
                int lo = ql[64 * h + l + 32 * (p & 1)];
                lo = p < 2 ? lo & 0x0F : lo >> 4;
                int q = (lo | (((qh[32 * h + l] >> (2 * p)) & 3) << 4)) - 32;
                float ds = d * (float)sc[8 * h + 2 * p + l / 16];
                y[128 * h + 32 * p + l] = ds * (float)q;
            }
        }
    }
}

void q_dequant_row(steer_dtype t, const void *src, float *dst, size_t n)
{
    const uint8_t *s = src;
    switch (t) {
    case STEER_DTYPE_F32: memcpy(dst, src, n * sizeof(float)); return;
    case STEER_DTYPE_F16:
        for (size_t i = 0; i < n; i++) dst[i] = rd_f16(s + 2 * i);
        return;
    case STEER_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = bits_f32((uint32_t)(s[2 * i] | (s[2 * i + 1] << 8)) << 16);
        return;
    default: break;
    }
    void (*fn)(const uint8_t *, float *) = NULL;
    switch (t) {
    case STEER_DTYPE_Q8_0: fn = dq_q8_0; break;
    case STEER_DTYPE_Q4_0: fn = dq_q4_0; break;
    case STEER_DTYPE_Q4_1: fn = dq_q4_1; break;
    case STEER_DTYPE_Q5_0: fn = dq_q5_0; break;
    case STEER_DTYPE_Q5_1: fn = dq_q5_1; break;
    case STEER_DTYPE_Q2_K: fn = dq_q2_k; break;
    case STEER_DTYPE_Q3_K: fn = dq_q3_k; break;
    case STEER_DTYPE_Q4_K: fn = dq_q4_k; break;
    case STEER_DTYPE_Q5_K: fn = dq_q5_k; break;
    case STEER_DTYPE_Q6_K: fn = dq_q6_k; break;
    default:
        for (size_t i = 0; i < n; i++) dst[i] = NAN;
        return;
    }
    const size_t be = q_types[t].elems, bb = q_types[t].bytes, nb = n / be;
    for (size_t i = 0; i < nb; i++) fn(s + i * bb, dst + i * be);
}

/* ---------------------------------------------------------------- reference quantizers, legacy types
 * (ggml's quantize_row_q*_ref: byte-identical output) */

/* The element of largest |x| (the first one on ties) and its |x|. */
static float signed_absmax(const float *x, int n, float *amax_out)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    if (amax_out) *amax_out = amax;
    return max;
}

static void minmax(const float *x, int n, float *mn, float *mx)
{
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

/* C's float → int truncation of v where it lies in [lo, hi + 1), as ggml's
 * casts do; else lo (below, NaN) or hi (above, +Inf). Out of range happens
 * only for degenerate blocks (a subnormal scale whose reciprocal overflows:
 * all |x| < ~1e-36), where ggml's own cast is undefined behaviour. */
static int trunc_clamp(float v, int lo, int hi)
{
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi + 1.0f) return hi;
    return (int)v;
}

/* d = amax / 127, q = roundf(x / d) (ties away from zero). */
static void qz_q8_0(const float *x, uint8_t *b)
{
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr_f16(b, d);
    for (int j = 0; j < QK; j++) {
        float v = x[j] * id; /* within ±127 (+ rounding) unless 1/d overflowed */
        v = v != v ? 0.0f : v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
        b[2 + j] = (uint8_t)(int8_t)roundf(v);
    }
}

/* d = max / −8 (max: the signed element of largest |x|, so it maps to q = 0),
 * q = min(15, trunc(x/d + 8.5)). */
static void qz_q4_0(const float *x, uint8_t *b)
{
    const float max = signed_absmax(x, QK, NULL);
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr_f16(b, d);
    for (int j = 0; j < QK / 2; j++) {
        float x0 = x[j] * id, x1 = x[j + QK / 2] * id;
        int q0 = trunc_clamp(x0 + 8.5f, 0, 15), q1 = trunc_clamp(x1 + 8.5f, 0, 15);
        b[2 + j] = (uint8_t)(q0 | (q1 << 4));
    }
}

/* d = (max − min) / 15, m = min, q = min(15, trunc((x − min)/d + 0.5)). */
static void qz_q4_1(const float *x, uint8_t *b)
{
    float mn, mx;
    minmax(x, QK, &mn, &mx);
    const float d = (mx - mn) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr_f16(b, d);
    wr_f16(b + 2, mn);
    for (int j = 0; j < QK / 2; j++) {
        float x0 = (x[j] - mn) * id, x1 = (x[j + QK / 2] - mn) * id;
        int q0 = trunc_clamp(x0 + 0.5f, 0, 15), q1 = trunc_clamp(x1 + 0.5f, 0, 15);
        b[4 + j] = (uint8_t)(q0 | (q1 << 4));
    }
}

static void wr_qh(uint8_t *p, uint32_t qh)
{
    for (int k = 0; k < 4; k++) p[k] = (uint8_t)(qh >> (8 * k));
}

/* d = max / −16, q = min(31, trunc(x/d + 16.5)). */
static void qz_q5_0(const float *x, uint8_t *b)
{
    const float max = signed_absmax(x, QK, NULL);
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr_f16(b, d);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        float x0 = x[j] * id, x1 = x[j + QK / 2] * id;
        int q0 = trunc_clamp(x0 + 16.5f, 0, 31), q1 = trunc_clamp(x1 + 16.5f, 0, 31);
        b[6 + j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
        qh |= (uint32_t)((q0 >> 4) & 1) << j;
        qh |= (uint32_t)((q1 >> 4) & 1) << (j + QK / 2);
    }
    wr_qh(b + 2, qh);
}

/* d = (max − min) / 31, m = min, q = trunc((x − min)/d + 0.5) (ggml clamps
 * nothing here: the value cannot reach 32). */
static void qz_q5_1(const float *x, uint8_t *b)
{
    float mn, mx;
    minmax(x, QK, &mn, &mx);
    const float d = (mx - mn) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    wr_f16(b, d);
    wr_f16(b + 2, mn);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        float x0 = (x[j] - mn) * id, x1 = (x[j + QK / 2] - mn) * id;
        int q0 = trunc_clamp(x0 + 0.5f, 0, 31), q1 = trunc_clamp(x1 + 0.5f, 0, 31);
        b[8 + j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
        qh |= (uint32_t)((q0 >> 4) & 1) << j;
        qh |= (uint32_t)((q1 >> 4) & 1) << (j + QK / 2);
    }
    wr_qh(b + 4, qh);
}

/* ---------------------------------------------------------------- reference quantizers, K types
 * (ggml's quantize_row_q*_K_ref, i.e. llama-quantize without an importance
 * matrix; the same search, the same float order) */

/* Scale and min of one group for the types with a min (Q2_K, Q4_K, Q5_K;
 * ggml's make_qkx2_quants): start from the range [min(x, 0), max(x)] split
 * into nmax steps, then try nstep + 1 step counts (rmin + rdelta·is + nmax)
 * and, for each, the weighted least-squares scale and min for its levels,
 * keeping the one of least weighted error (|diff| if use_mad, else diff²).
 * L[n] gets the levels 0..nmax; *the_min = −min (>= 0); returns the scale. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float wx = w[i] * x[i];
        sum_w += w[i];
        sum_x += wx;
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float sl = scale * (float)L[i];
        float slm = sl + min;
        float diff = slm - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        float wd = w[i] * diff;
        best_error += wd;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        float r = rdelta * (float)is;
        float rr = rmin + r;
        iscale = (rr + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = imax(0, imin(nmax, l));
            Laux[i] = (uint8_t)l;
            float wl = w[i] * (float)l;
            float wll = wl * (float)l, wlx = wl * x[i];
            sum_l += wl;
            sum_l2 += wll;
            sum_xl += wlx;
        }
        float a = sum_w * sum_l2, bq = sum_l * sum_l;
        float D = a - bq;
        if (D > 0) {
            float t1 = sum_w * sum_xl, t2 = sum_x * sum_l;
            float this_scale = (t1 - t2) / D;
            float t3 = sum_l2 * sum_x, t4 = sum_l * sum_xl;
            float this_min = (t3 - t4) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float sl = this_scale * (float)Laux[i];
                float slm = sl + this_min;
                float diff = slm - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                float wd = w[i] * diff;
                cur_error += wd;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Signed scale of one group for Q6_K (ggml's make_qx_quants with
 * rmse_type 1 and no importance: weights x²): levels −nmax..nmax−1 from the
 * signed max (mapped to −nmax), then 18 nearby step counts −(nmax + 0.1·is),
 * keeping the one whose weighted least-squares fit is best. L[n] gets
 * levels + nmax (0..2·nmax − 1); returns the scale. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L)
{
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        float wx = w * x[i], wl = w * (float)l;
        float wxl = wx * (float)l, wll = wl * (float)l;
        sumlx += wxl;
        suml2 += wll;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        float r = 0.1f * (float)is;
        float num = (float)nmax + r;
        iscale = -num / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = imax(-nmax, imin(nmax - 1, l));
            float w = x[i] * x[i];
            float wx = w * x[i], wl = w * (float)l;
            float wxl = wx * (float)l, wll = wl * (float)l;
            sumlx += wxl;
            suml2 += wll;
        }
        float lhs = sumlx * sumlx, rhs = best * suml2;
        if (suml2 > 0 && lhs > rhs) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Signed scale of one group for Q3_K (ggml's make_q3_quants with do_rmse):
 * levels from the signed max, then up to 5 passes that move single elements
 * to the level that most improves the weighted (x²) fit. L[n] gets
 * levels + nmax; returns the scale. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L)
{
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        float wx = w * x[i], wl = w * (float)l;
        float wxl = wx * (float)l, wll = wl * (float)l;
        sumlx += wxl;
        suml2 += wll;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float wx = w * x[i];
            float wxl = wx * (float)L[i];
            float slx = sumlx - wxl;
            if (slx > 0) {
                float wl = w * (float)L[i];
                float wll = wl * (float)L[i];
                float sl2 = suml2 - wll;
                float xs = x[i] * sl2;
                int new_l = nearest_int(xs / slx);
                new_l = imax(-nmax, imin(nmax - 1, new_l));
                if (new_l != L[i]) {
                    float wxn = wx * (float)new_l;
                    float wn = w * (float)new_l;
                    float wnn = wn * (float)new_l;
                    slx += wxn;
                    sl2 += wnn;
                    float a = slx * slx, a2 = a * suml2;
                    float c = sumlx * sumlx, c2 = c * sl2;
                    if (sl2 > 0 && a2 > c2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* The 2-bit plane packing of Q2_K/Q3_K (see the decoder): L[256] levels 0..3. */
static void pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < QKK; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

static void qz_q2_k(const float *x, uint8_t *b)
{
    uint8_t L[QKK], Laux[16];
    float w[16], mins[QKK / 16], scales[QKK / 16];
    uint8_t *sc = b, *qs = b + 16;
    const float q4scale = 15.f;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QKK / 16; j++) {
        for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
        scales[j] = make_qkx2_quants(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, 1);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
        float iscale = q4scale / max_scale;
        for (int j = 0; j < QKK / 16; j++) sc[j] = (uint8_t)nearest_int(iscale * scales[j]);
        wr_f16(b + 80, max_scale / q4scale);
    } else {
        for (int j = 0; j < QKK / 16; j++) sc[j] = 0;
        wr_f16(b + 80, 0.f);
    }
    if (max_min > 0) {
        float iscale = q4scale / max_min;
        for (int j = 0; j < QKK / 16; j++) sc[j] = (uint8_t)(sc[j] | ((unsigned)nearest_int(iscale * mins[j]) << 4));
        wr_f16(b + 82, max_min / q4scale);
    } else {
        wr_f16(b + 82, 0.f);
    }
    const float d_all = rd_f16(b + 80), m_all = rd_f16(b + 82);
    for (int j = 0; j < QKK / 16; j++) {
        const float d = d_all * (float)(sc[j] & 0x0F);
        if (d == 0.0f) continue;
        const float dm = m_all * (float)(sc[j] >> 4);
        for (int i = 0; i < 16; i++) {
            float v = x[16 * j + i] + dm;
            int l = nearest_int(v / d);
            L[16 * j + i] = (uint8_t)imax(0, imin(3, l));
        }
    }
    pack_2bit(L, qs);
}

static void qz_q3_k(const float *x, uint8_t *b)
{
    int8_t L[QKK];
    float scales[QKK / 16];
    uint8_t *hm = b, *qs = b + 32, *sc = b + 96;
    float max_scale = 0, amax = 0;
    for (int j = 0; j < QKK / 16; j++) {
        scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
        float a = fabsf(scales[j]);
        if (a > amax) {
            amax = a;
            max_scale = scales[j];
        }
    }
    memset(sc, 0, 12);
    if (max_scale != 0.0f) {
        float iscale = -32.f / max_scale;
        for (int j = 0; j < QKK / 16; j++) {
            int l = (int8_t)nearest_int(iscale * scales[j]); /* ggml stores it in an int8_t first */
            l = imax(-32, imin(31, l)) + 32;
            if (j < 8)
                sc[j] = (uint8_t)(l & 0x0F);
            else
                sc[j - 8] = (uint8_t)(sc[j - 8] | ((l & 0x0F) << 4));
            l >>= 4;
            sc[8 + j % 4] = (uint8_t)(sc[8 + j % 4] | (l << (2 * (j / 4))));
        }
        wr_f16(b + 108, 1 / iscale);
    } else {
        wr_f16(b + 108, 0.f);
    }
    const float d_all = rd_f16(b + 108);
    for (int j = 0; j < QKK / 16; j++) {
        const float d = d_all * (float)q3k_scale(sc, j);
        if (d == 0.0f) continue;
        for (int i = 0; i < 16; i++) {
            int l = nearest_int(x[16 * j + i] / d);
            L[16 * j + i] = (int8_t)(imax(-4, imin(3, l)) + 4);
        }
    }
    /* High bits: element j's in bit j / 32 of hmask[j % 32]. */
    memset(hm, 0, 32);
    uint8_t Lu[QKK];
    for (int j = 0; j < QKK; j++) {
        int l = L[j];
        if (l > 3) {
            hm[j % 32] = (uint8_t)(hm[j % 32] | (1u << (j / 32)));
            l -= 4;
        }
        Lu[j] = (uint8_t)l;
    }
    pack_2bit(Lu, qs);
}

/* Q4_K/Q5_K: the 8 group scales and mins quantized to 6 bits against their
 * maxima and packed (the inverse of k4_scale_min); d and dmin written. */
static void pack_k4_scales(const float *scales, const float *mins, float max_scale, float max_min, uint8_t *b)
{
    uint8_t *s = b + 4;
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QKK / 32; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        if (ls > 63) ls = 63;
        if (lm > 63) lm = 63;
        if (j < 4) {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (uint8_t)((ls & 0x0F) | ((lm & 0x0F) << 4));
            s[j - 4] = (uint8_t)(s[j - 4] | ((ls >> 4) << 6));
            s[j] = (uint8_t)(s[j] | ((lm >> 4) << 6));
        }
    }
    wr_f16(b, max_scale / 63.f);
    wr_f16(b + 2, max_min / 63.f);
}

/* Q4_K (nmax 15) and Q5_K (nmax 31): group scales and mins, then the levels
 * re-quantized with the stored 6-bit scales. L[256] gets levels 0..nmax. */
static void qz_k4_levels(const float *x, uint8_t *b, int nmax, float rmin, float rdelta, int nstep, uint8_t *L)
{
    uint8_t Laux[32];
    float w[32], mins[QKK / 32], scales[QKK / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QKK / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) {
            float sq = x[32 * j + l] * x[32 * j + l];
            sum_x2 += sq;
        }
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    pack_k4_scales(scales, mins, max_scale, max_min, b);
    const float d_all = rd_f16(b), m_all = rd_f16(b + 2);
    for (int j = 0; j < QKK / 32; j++) {
        int sc, mn;
        k4_scale_min(b + 4, j, &sc, &mn);
        const float d = d_all * (float)sc;
        if (d == 0.0f) continue;
        const float dm = m_all * (float)mn;
        for (int i = 0; i < 32; i++) {
            float v = x[32 * j + i] + dm;
            int l = nearest_int(v / d);
            L[32 * j + i] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

static void qz_q4_k(const float *x, uint8_t *b)
{
    uint8_t L[QKK];
    qz_k4_levels(x, b, 15, -1.f, 0.1f, 20, L);
    uint8_t *q = b + 16;
    for (int j = 0; j < QKK; j += 64, q += 32)
        for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
}

static void qz_q5_k(const float *x, uint8_t *b)
{
    uint8_t L[QKK];
    qz_k4_levels(x, b, 31, -0.5f, 0.1f, 15, L);
    uint8_t *qh = b + 16, *ql = b + 48;
    memset(qh, 0, 32);
    for (int c = 0; c < 4; c++, ql += 32) {
        const uint8_t m1 = (uint8_t)(1u << (2 * c)), m2 = (uint8_t)(2u << (2 * c));
        for (int j = 0; j < 32; j++) {
            int l1 = L[64 * c + j], l2 = L[64 * c + j + 32];
            if (l1 > 15) {
                l1 -= 16;
                qh[j] |= m1;
            }
            if (l2 > 15) {
                l2 -= 16;
                qh[j] |= m2;
            }
            ql[j] = (uint8_t)(l1 | (l2 << 4));
        }
    }
}

static void qz_q6_k(const float *x, uint8_t *b)
{
    int8_t L[QKK];
    float scales[QKK / 16];
    uint8_t *ql = b, *qh = b + 128;
    int8_t *sc = (int8_t *)(b + 192);
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QKK / 16; ib++) {
        scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
        float a = fabsf(scales[ib]);
        if (a > max_abs_scale) {
            max_abs_scale = a;
            max_scale = scales[ib];
        }
    }
    if (max_abs_scale < GROUP_MAX_EPS) {
        memset(b, 0, 210); /* d = +0 */
        return;
    }
    const float iscale = -128.f / max_scale;
    wr_f16(b + 208, 1 / iscale);
    for (int ib = 0; ib < QKK / 16; ib++) sc[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
    const float d_all = rd_f16(b + 208);
    for (int j = 0; j < QKK / 16; j++) {
        const float d = d_all * (float)sc[j];
        if (d == 0.0f) continue;
        for (int i = 0; i < 16; i++) {
            int l = nearest_int(x[16 * j + i] / d);
            L[16 * j + i] = (int8_t)(imax(-32, imin(31, l)) + 32);
        }
    }
    for (int h = 0; h < 2; h++) {
        const int8_t *Lh = L + 128 * h;
        for (int l = 0; l < 32; l++) {
            ql[64 * h + l] = (uint8_t)((Lh[l] & 0x0F) | ((Lh[l + 64] & 0x0F) << 4));
            ql[64 * h + l + 32] = (uint8_t)((Lh[l + 32] & 0x0F) | ((Lh[l + 96] & 0x0F) << 4));
            qh[32 * h + l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                       ((Lh[l + 96] >> 4) << 6));
        }
    }
}

int q_quantize_row(steer_dtype t, const float *src, void *dst, size_t n)
{
    void (*fn)(const float *, uint8_t *) = NULL;
    switch (t) {
    case STEER_DTYPE_Q8_0: fn = qz_q8_0; break;
    case STEER_DTYPE_Q4_0: fn = qz_q4_0; break;
    case STEER_DTYPE_Q4_1: fn = qz_q4_1; break;
    case STEER_DTYPE_Q5_0: fn = qz_q5_0; break;
    case STEER_DTYPE_Q5_1: fn = qz_q5_1; break;
    case STEER_DTYPE_Q2_K: fn = qz_q2_k; break;
    case STEER_DTYPE_Q3_K: fn = qz_q3_k; break;
    case STEER_DTYPE_Q4_K: fn = qz_q4_k; break;
    case STEER_DTYPE_Q5_K: fn = qz_q5_k; break;
    case STEER_DTYPE_Q6_K: fn = qz_q6_k; break;
    default: return steer_err(STEER_EARG, "quantize: dtype %s is not a block-quantized type", steer_dtype_name(t));
    }
    const size_t be = q_types[t].elems, bb = q_types[t].bytes;
    if (n % be != 0)
        return steer_err(STEER_EARG, "quantize: %zu elements is not a multiple of the %s block size %zu", n,
                         steer_dtype_name(t), be);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(src[i]))
            return steer_err(STEER_EARG, "quantize to %s: element %zu is %s", steer_dtype_name(t), i,
                             isnan(src[i]) ? "NaN" : "infinite");
    uint8_t *d = dst;
    for (size_t i = 0; i < n / be; i++) fn(src + i * be, d + i * bb);
    return STEER_OK;
}

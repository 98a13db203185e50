/*
 * ops.c — numeric kernels: dtype conversion, the one matmul interface, RMSNorm,
 * SiLU-GLU, softmax. Scalar reference code that GCC vectorises at -O2
 * -march=native, plus OpenBLAS sgemm for f32 matrices.
 */
#include "ops.h"

#include <cblas.h>
#include <limits.h>
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

/* The public forms (steer.h, "dtypes"): the same conversions. */
float steer_f16_to_f32(uint16_t h) { return ops_f16_to_f32(h); }
uint16_t steer_f32_to_f16(float f) { return ops_f32_to_f16(f); }
float steer_bf16_to_f32(uint16_t h) { return ops_bf16_to_f32(h); }
uint16_t steer_f32_to_bf16(float f) { return ops_f32_to_bf16(f); }

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
 * The matmul kernel is batch-invariant: every output element out[i, r] =
 * dot(in[i, :], W[r, :]) is one dot product computed in a fixed order that
 * depends only on K = W.cols:
 *
 *   1. 8 lane accumulators: lane j sums x[k]·w[k] over k ≡ j (mod 8),
 *      k < K8 = K & ~7, with FMA, in increasing k;
 *   2. the lanes summed in a fixed tree (hsum8);
 *   3. the tail k = K8 .. K-1 added with fmaf, in order.
 *
 * Nothing else: not n (rows in the batch), not which rows are batched
 * together, not the thread split, not the tile an element falls in. So a
 * prompt processed as one batch gives bitwise the logits of token-by-token
 * decoding, and a sequence gives the same logits alone or batched with
 * others. (OpenBLAS sgemm re-associates differently for different n: 1-2e-5
 * on stories260K logits.) bench/bench_matmul compares this kernel against
 * OpenBLAS sgemm.
 *
 * How it is made fast without changing that order (issue 9):
 *   - a register-tiled micro-kernel computes MI x MR = up to 4 input rows x 3
 *     weight rows of dot products together (12 ymm accumulators + 3 weight
 *     vectors + 1 input vector = the 16 AVX2 registers): each loaded weight
 *     vector is used for 4 inputs and each input vector for 3 weight rows.
 *     MI, MR and the weight dtype are compile-time constants in every
 *     instantiation, so the accumulators stay in registers. Edge tiles
 *     (n or rows not a multiple of 4 or 3) are smaller instantiations of the
 *     same code: the per-element operations are identical.
 *   - K is processed in blocks of MM_KC columns; between blocks the 8 lane
 *     accumulators of each element are stored to a scratch buffer and loaded
 *     back (exact), so blocking does not change the arithmetic either.
 *   - for n >= MM_PACK_F32 (f32) or MM_PACK_BF16 (bf16) a thread copies or
 *     converts each [MM_RB, MM_KC] block of weights to f32 once into a
 *     per-thread buffer ("packing": exact) and runs up to MM_NB input rows
 *     against it; otherwise (generation, small batches, f16) the
 *     micro-kernel reads the mapped weights directly and converts f16
 *     (vcvtph2ps) or bf16 (shift) on the fly.
 *   - threads split the weight rows in panels of MM_RB rows.
 */

#if defined(__AVX2__) && defined(__FMA__)
typedef __m256 vec8;
static inline vec8 v8_zero(void) { return _mm256_setzero_ps(); }
static inline vec8 v8_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void v8_store(float *p, vec8 v) { _mm256_storeu_ps(p, v); }
static inline vec8 v8_fma(vec8 a, vec8 b, vec8 c) { return _mm256_fmadd_ps(a, b, c); }
static inline vec8 v8_set1(float f) { return _mm256_set1_ps(f); }
/* Makes v opaque to the compiler: it stays in a register instead of being
 * folded back into each FMA as a memory operand (GCC 12 otherwise re-loads
 * each weight vector once per input row, 16 loads per 12 FMAs). */
#define V8_IN_REG(v) __asm__("" : "+x"(v))
static inline float hsum8(vec8 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);                 /* lanes (0+4, 1+5, 2+6, 3+7) */
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));        /* (0+2, 1+3)                 */
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55)); /* 0+1                        */
    return _mm_cvtss_f32(s);
}
/* 8 weights at w + k (element index) of dtype dt, widened to f32. */
static inline vec8 load8_w(const void *w, steer_dtype dt, size_t k)
{
    if (dt == STEER_DTYPE_F32) return _mm256_loadu_ps((const float *)w + k);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + k));
    if (dt == STEER_DTYPE_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}
#else
/* Portable fallback: the same fixed order in scalar code. */
typedef struct { float v[8]; } vec8;
static inline vec8 v8_zero(void) { vec8 r; memset(&r, 0, sizeof r); return r; }
static inline vec8 v8_load(const float *p) { vec8 r; memcpy(r.v, p, sizeof r.v); return r; }
static inline void v8_store(float *p, vec8 v) { memcpy(p, v.v, sizeof v.v); }
static inline vec8 v8_set1(float f)
{
    vec8 r;
    for (int j = 0; j < 8; j++) r.v[j] = f;
    return r;
}
static inline vec8 v8_fma(vec8 a, vec8 b, vec8 c)
{
    for (int j = 0; j < 8; j++) c.v[j] = fmaf(a.v[j], b.v[j], c.v[j]);
    return c;
}
#define V8_IN_REG(v) ((void)0)
static inline float hsum8(vec8 a)
{
    float s0 = a.v[0] + a.v[4], s1 = a.v[1] + a.v[5], s2 = a.v[2] + a.v[6], s3 = a.v[3] + a.v[7];
    return (s0 + s2) + (s1 + s3);
}
static inline float w_at(const void *w, steer_dtype dt, size_t k);
static inline vec8 load8_w(const void *w, steer_dtype dt, size_t k)
{
    vec8 r;
    for (int j = 0; j < 8; j++) r.v[j] = w_at(w, dt, k + (size_t)j);
    return r;
}
#endif

static inline float w_at(const void *w, steer_dtype dt, size_t k)
{
    if (dt == STEER_DTYPE_F32) return ((const float *)w)[k];
    uint16_t h = ((const uint16_t *)w)[k];
    return dt == STEER_DTYPE_BF16 ? ops_bf16_to_f32(h) : ops_f16_to_f32(h);
}

#define MM_MI 4        /* input rows per micro-tile                          */
#define MM_MR 3        /* weight rows per micro-tile                         */
#ifndef MM_RB
#define MM_RB 36       /* weight rows per panel (a multiple of MM_MR)        */
#endif
#ifndef MM_KC
#define MM_KC 512      /* columns per K block (a multiple of 8)              */
#endif
#ifndef MM_NB
#define MM_NB 128      /* input rows per block (accumulators [MM_NB, MM_RB, 8]) */
#endif
/* Weight blocks are converted to f32 in a per-thread buffer ("packed") when n
 * is at least this (per dtype); below it the micro-kernel reads the mapped
 * weights directly. Measured (docs/PERFORMANCE.md): f32 packing pays from
 * n ~ 16; bf16 packing is even with the direct path from n ~ 64; f16
 * direct (vcvtph2ps from memory) beat packing at every n up to 256. */
#ifndef MM_PACK_F32
#define MM_PACK_F32 16
#endif
#ifndef MM_PACK_BF16
#define MM_PACK_BF16 64
#endif
#ifndef MM_PACK_F16
#define MM_PACK_F16 INT_MAX
#endif
/* Below this many multiply-adds (n·rows·cols) the product runs on the
 * calling thread: an OpenMP region costs more than it saves (measured:
 * docs/PERFORMANCE.md). */
#define MM_PARALLEL_MACS (1L << 20)

/*
 * Micro-kernel: for i < MI, r < MR, lanes of element (i, r) += x[i, 0..kl) ·
 * w[r, 0..kl) (8 lanes, k ascending). x: rows at stride ldx floats; w: rows at
 * stride ldw elements of dtype DT; acc: [MI][lda] vec8 slots, slot (i, r) at
 * acc + (i·lda + r)·8 floats; first: start from zero instead of acc. kl is a
 * multiple of 8. MI, MR and DT are constants at every call site (always
 * inlined into the instantiations below), so the loops unroll and the 12
 * accumulators live in registers.
 */
static inline __attribute__((always_inline)) void mm_micro(const int MI, const int MR, const steer_dtype DT,
                                                           const float *x, size_t ldx, const void *w, size_t ldw,
                                                           int kl, float *acc, size_t lda, int first)
{
    const size_t esz = DT == STEER_DTYPE_F32 ? 4 : 2;
    const uint8_t *wb = w;
    vec8 a[MM_MI][MM_MR];
#pragma GCC unroll 4
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 3
        for (int r = 0; r < MR; r++) a[i][r] = first ? v8_zero() : v8_load(acc + (i * lda + (size_t)r) * 8);
    for (int k = 0; k < kl; k += 8) {
        vec8 wv[MM_MR];
#pragma GCC unroll 3
        for (int r = 0; r < MR; r++) {
            wv[r] = load8_w(wb + (size_t)r * ldw * esz, DT, (size_t)k);
            V8_IN_REG(wv[r]);
        }
#pragma GCC unroll 4
        for (int i = 0; i < MI; i++) {
            vec8 xv = v8_load(x + (size_t)i * ldx + k);
            V8_IN_REG(xv);
#pragma GCC unroll 3
            for (int r = 0; r < MR; r++) a[i][r] = v8_fma(xv, wv[r], a[i][r]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 3
        for (int r = 0; r < MR; r++) v8_store(acc + (i * lda + (size_t)r) * 8, a[i][r]);
}

typedef void (*mm_micro_fn)(const float *x, size_t ldx, const void *w, size_t ldw, int kl, float *acc, size_t lda,
                            int first);

/* One input row against MM_GV weight rows read where they are: the direct
 * path's one-row tiles (generation, n = 1). With a single input no weight
 * vector is reused, so the tile is wide instead of tall: 12 independent
 * accumulators hide the FMA latency that the 1 x 3 tile's 3 chains expose.
 * Per element the same operations in the same order as mm_micro (bitwise
 * equal; test_ops). acc: slot r at acc + r·8. */
#define MM_GV 12
static inline __attribute__((always_inline)) void mm_gemv(const steer_dtype DT, const float *x, const void *w,
                                                          size_t ldw, int kl, float *acc, int first)
{
    const size_t esz = DT == STEER_DTYPE_F32 ? 4 : 2;
    const uint8_t *wb = w;
    vec8 a[MM_GV];
#pragma GCC unroll 12
    for (int r = 0; r < MM_GV; r++) a[r] = first ? v8_zero() : v8_load(acc + (size_t)r * 8);
    for (int k = 0; k < kl; k += 8) {
        vec8 xv = v8_load(x + k);
        V8_IN_REG(xv);
#pragma GCC unroll 12
        for (int r = 0; r < MM_GV; r++) a[r] = v8_fma(xv, load8_w(wb + (size_t)r * ldw * esz, DT, (size_t)k), a[r]);
    }
#pragma GCC unroll 12
    for (int r = 0; r < MM_GV; r++) v8_store(acc + (size_t)r * 8, a[r]);
}

typedef void (*mm_gemv_fn)(const float *x, const void *w, size_t ldw, int kl, float *acc, int first);
#define MM_GV_DEF(DT, NAME)                                                                                 \
    static void mm_gemv_##NAME(const float *x, const void *w, size_t ldw, int kl, float *acc, int first) \
    {                                                                                                       \
        mm_gemv(DT, x, w, ldw, kl, acc, first);                                                             \
    }
MM_GV_DEF(STEER_DTYPE_F32, f32)
MM_GV_DEF(STEER_DTYPE_BF16, bf16)
MM_GV_DEF(STEER_DTYPE_F16, f16)
static const mm_gemv_fn mm_gemv_table[3] = {mm_gemv_f32, mm_gemv_bf16, mm_gemv_f16};

#define MM_DEF(MI, MR, DT, NAME)                                                                                  \
    static void mm_##NAME##_##MI##x##MR(const float *x, size_t ldx, const void *w, size_t ldw, int kl, float *acc, \
                                         size_t lda, int first)                                                   \
    {                                                                                                             \
        mm_micro(MI, MR, DT, x, ldx, w, ldw, kl, acc, lda, first);                                                \
    }
#define MM_DEF_MR(MI, DT, NAME) MM_DEF(MI, 1, DT, NAME) MM_DEF(MI, 2, DT, NAME) MM_DEF(MI, 3, DT, NAME)
#define MM_DEF_ALL(DT, NAME) MM_DEF_MR(1, DT, NAME) MM_DEF_MR(2, DT, NAME) MM_DEF_MR(3, DT, NAME) MM_DEF_MR(4, DT, NAME)
MM_DEF_ALL(STEER_DTYPE_F32, f32)
MM_DEF_ALL(STEER_DTYPE_BF16, bf16)
MM_DEF_ALL(STEER_DTYPE_F16, f16)
#define MM_ROW(MI, NAME) {mm_##NAME##_##MI##x1, mm_##NAME##_##MI##x2, mm_##NAME##_##MI##x3}
#define MM_TABLE(NAME) {MM_ROW(1, NAME), MM_ROW(2, NAME), MM_ROW(3, NAME), MM_ROW(4, NAME)}
/* [dtype: f32, bf16, f16][MI-1][MR-1] */
static const mm_micro_fn mm_micro_table[3][MM_MI][MM_MR] = {MM_TABLE(f32), MM_TABLE(bf16), MM_TABLE(f16)};

static int mm_dtype_index(steer_dtype dt) { return dt == STEER_DTYPE_BF16 ? 1 : dt == STEER_DTYPE_F16 ? 2 : 0; }

/* dst[nr, kl] (f32, row stride MM_KC) = W rows [nr] from column k0, kl
 * columns (a multiple of 8), widened from dtype dt. Exact. */
static void mm_pack(float *dst, const uint8_t *w, steer_dtype dt, size_t ldw, int nr, int k0, int kl)
{
    const size_t esz = steer_dtype_size(dt);
    for (int r = 0; r < nr; r++) {
        const uint8_t *wr = w + (size_t)r * ldw * esz;
        float *d = dst + (size_t)r * MM_KC;
        if (dt == STEER_DTYPE_F32) {
            memcpy(d, (const float *)wr + k0, (size_t)kl * sizeof(float));
        } else {
            for (int k = 0; k < kl; k += 8) v8_store(d + k, load8_w(wr, dt, (size_t)(k0 + k)));
        }
    }
}

/* out[i·ldo + r] for the ni x nr block whose accumulators are at acc (slot
 * (i, r) at (i·lda + r)·8): the fixed lane tree, then the tail columns
 * K8..K-1 in order. x rows at stride K; w rows (dtype dt) at stride K. */
static void mm_finish(float *out, size_t ldo, const float *x, const uint8_t *w, steer_dtype dt, int ni, int nr,
                      int K, const float *acc, size_t lda)
{
    const int K8 = K & ~7;
    const size_t esz = steer_dtype_size(dt);
    for (int i = 0; i < ni; i++)
        for (int r = 0; r < nr; r++) {
            float s = hsum8(v8_load(acc + ((size_t)i * lda + (size_t)r) * 8));
            const uint8_t *wr = w + (size_t)r * K * esz;
            const float *xi = x + (size_t)i * K;
            for (int k = K8; k < K; k++) s = fmaf(xi[k], w_at(wr, dt, (size_t)k), s);
            out[(size_t)i * ldo + r] = s;
        }
}

/* One panel of weight rows [r0, r0 + nr), nr <= MM_RB, against all n inputs,
 * in input blocks of nbmax rows (<= MM_NB). pack: convert weight blocks to f32
 * in wpack [MM_RB, MM_KC] first (and copy misaligned input tiles to xpack
 * [MM_MI, MM_KC]); otherwise read the weights where they are. acc: [nbmax,
 * MM_RB, 8]. Scratch is 32-byte aligned. Either way, the same arithmetic. */
static void mm_panel(float *out, const float *in, const steer_mat *W, int n, int r0, int nr, int pack, int nbmax,
                     float *wpack, float *xpack, float *acc)
{
    const int rows = W->rows, K = W->cols, K8 = K & ~7;
    const steer_dtype dt = W->dtype;
    const size_t esz = steer_dtype_size(dt);
    const uint8_t *wp = (const uint8_t *)W->data + (size_t)r0 * K * esz;
    /* inputs whose rows are not 32-byte aligned are copied tile by tile */
    const int pack_x = pack && (((uintptr_t)in | ((size_t)K * sizeof(float))) & 31) != 0;
    const mm_micro_fn(*tab)[MM_MR] = mm_micro_table[pack ? 0 : mm_dtype_index(dt)];
    for (int ib = 0; ib < n; ib += nbmax) {
        const int nb = n - ib < nbmax ? n - ib : nbmax;
        for (int kc = 0; kc < K8; kc += MM_KC) {
            const int kl = K8 - kc < MM_KC ? K8 - kc : MM_KC;
            if (pack) mm_pack(wpack, wp, dt, (size_t)K, nr, kc, kl);
            for (int i0 = 0; i0 < nb; i0 += MM_MI) {
                const int mi = nb - i0 < MM_MI ? nb - i0 : MM_MI;
                const float *x = in + (size_t)(ib + i0) * K + kc;
                size_t ldx = (size_t)K;
                if (pack_x) { /* an aligned copy of the input tile: no loads split across cache lines */
                    for (int i = 0; i < mi; i++) memcpy(xpack + (size_t)i * MM_KC, x + (size_t)i * K, (size_t)kl * 4);
                    x = xpack;
                    ldx = MM_KC;
                }
                for (int rr = 0; rr < nr; rr += MM_MR) {
                    const int mr = nr - rr < MM_MR ? nr - rr : MM_MR;
                    float *a = acc + ((size_t)i0 * MM_RB + (size_t)rr) * 8;
                    if (!pack && mi == 1 && nr - rr >= MM_GV) { /* one input row: the wide tile */
                        mm_gemv_table[mm_dtype_index(dt)](x, wp + ((size_t)rr * K + (size_t)kc) * esz, (size_t)K, kl,
                                                          a, kc == 0);
                        rr += MM_GV - MM_MR;
                        continue;
                    }
                    if (pack)
                        tab[mi - 1][mr - 1](x, ldx, wpack + (size_t)rr * MM_KC, MM_KC, kl, a, MM_RB, kc == 0);
                    else
                        tab[mi - 1][mr - 1](x, ldx, wp + ((size_t)rr * K + (size_t)kc) * esz, (size_t)K, kl, a,
                                            MM_RB, kc == 0);
                }
            }
        }
        if (K8 == 0) memset(acc, 0, (size_t)nb * MM_RB * 8 * sizeof(float));
        mm_finish(out + (size_t)ib * rows + r0, (size_t)rows, in + (size_t)ib * K, wp, dt, nb, nr, K, acc, MM_RB);
    }
}

int ops_matmul_use_v1 = 0;

void ops_matmul(float *out, const float *in, const steer_mat *W, int n)
{
    if (ops_matmul_use_v1) {
        ops_matmul_v1(out, in, W, n);
        return;
    }
    const int rows = W->rows;
    const int n_panels = (rows + MM_RB - 1) / MM_RB;
    const long macs = (long)n * rows * W->cols;
#pragma omp parallel if (macs >= MM_PARALLEL_MACS && n_panels > 1)
    {
        /* Direct path: accumulators for MM_MI inputs on the stack (4.5 KiB).
         * Packed path: per-thread heap scratch (wpack 72 KiB, xpack 8 KiB,
         * acc 144 KiB); if that allocation fails, the direct path, which gives
         * the same numbers. */
        float acc_small[MM_MI * MM_RB * 8] __attribute__((aligned(32)));
        float *scratch = NULL;
        if (n > MM_MI)
            scratch = aligned_alloc(64, sizeof(float) * ((size_t)MM_RB * MM_KC + MM_MI * MM_KC + MM_NB * MM_RB * 8));
        const int pack = n >= (W->dtype == STEER_DTYPE_F32 ? MM_PACK_F32 : W->dtype == STEER_DTYPE_BF16 ? MM_PACK_BF16 : MM_PACK_F16);
#pragma omp for schedule(static)
        for (int p = 0; p < n_panels; p++) {
            const int r0 = p * MM_RB, nr = rows - r0 < MM_RB ? rows - r0 : MM_RB;
            if (scratch) {
                float *wpack = scratch, *xpack = wpack + (size_t)MM_RB * MM_KC, *acc = xpack + MM_MI * MM_KC;
                mm_panel(out, in, W, n, r0, nr, pack, MM_NB, wpack, xpack, acc);
            }
            else
                mm_panel(out, in, W, n, r0, nr, 0, MM_MI, NULL, NULL, acc_small);
        }
        free(scratch);
    }
}

/* Scalar reference: plain loops, the sum in double in natural order. Not
 * bitwise equal to ops_matmul (different order); tests compare within
 * TOL_MATMUL_REF. */
void ops_matmul_ref(float *out, const float *in, const steer_mat *W, int n)
{
    const int rows = W->rows, K = W->cols;
    const size_t esz = steer_dtype_size(W->dtype);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++) {
            const uint8_t *wr = (const uint8_t *)W->data + (size_t)r * K * esz;
            double s = 0.0;
            for (int k = 0; k < K; k++) s += (double)in[(size_t)i * K + k] * (double)w_at(wr, W->dtype, (size_t)k);
            out[(size_t)i * rows + r] = (float)s;
        }
}

/* ---- The previous kernel (before issue 9), kept for bench/ comparisons
 * only: same lane order, tiles of 2 inputs x 4 weight rows with runtime
 * bounds (accumulators on the stack). */
/* out[i*ldo + r] for i in [0, ni), r in [0, nr): x rows [ni, K], w rows [nr, K]
 * (dtype dt, row stride K elements). ni <= 2, nr <= 4. */
static void mm_tile_v1(float *out, size_t ldo, const float *x, int ni, const uint8_t *w, steer_dtype dt, size_t esz,
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
#define MM_IBLOCK_V1 32

void ops_matmul_v1(float *out, const float *in, const steer_mat *W, int n)
{
    const int rows = W->rows, K = W->cols;
    const size_t esz = steer_dtype_size(W->dtype);
    const uint8_t *wd = W->data;
    const int n_rb = (rows + 3) / 4;
    /* Every thread walks the same input blocks; within one, the weight rows
     * are split across threads. The block of inputs stays in cache while the
     * weights stream past it once per block. */
#pragma omp parallel if ((size_t)rows * K * (size_t)n > 32768)
    for (int ib = 0; ib < n; ib += MM_IBLOCK_V1) {
        const int ie = n - ib < MM_IBLOCK_V1 ? n : ib + MM_IBLOCK_V1;
#pragma omp for schedule(static) nowait
        for (int rb = 0; rb < n_rb; rb++) {
            const int r0 = rb * 4, nr = rows - r0 < 4 ? rows - r0 : 4;
            for (int i0 = ib; i0 < ie; i0 += 2) {
                const int ni = ie - i0 < 2 ? ie - i0 : 2;
                mm_tile_v1(out + (size_t)i0 * rows + r0, (size_t)rows, in + (size_t)i0 * K, ni,
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
    case STEER_ACT_RELU:
        for (size_t i = 0; i < n; i++) out[i] = (g[i] > 0.0f ? g[i] : 0.0f) * u[i];
        break;
    case STEER_ACT_TANH:
        for (size_t i = 0; i < n; i++) out[i] = tanhf(g[i]) * u[i];
        break;
    case STEER_ACT_NONE:
        for (size_t i = 0; i < n; i++) out[i] = g[i] * u[i];
        break;
    case STEER_ACT_DEFAULT: /* options only: a model's act is always resolved */
    case STEER_ACT_COUNT:
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

/* Attention (see ops.h). Per (row i, KV head g), the nh / nkv query
 * heads that share g are done together so each cached key and value row is
 * loaded once for all of them: scores by 8-lane dot products, softmax per
 * head, then the weighted sum of values with the output row in registers
 * (64-float chunks). */
void ops_attention(float *att, const float *q, const float *kc, const float *vc, const int *pos, const int *seq,
                   int n, int nh, int nkv, int hd, int n_ctx, int window, float scale, float softcap, float *scores)
{
    const int group = nh / nkv, qd = nh * hd, kvd = nkv * hd, hd8 = hd & ~7;
    long work = 0; /* multiply-adds, for the threading decision */
    for (int i = 0; i < n; i++) work += (long)(pos[i] + 1) * qd * 2;
#pragma omp parallel for schedule(dynamic, 1) if (work >= (1L << 16) && n * nkv > 1)
    for (int ig = 0; ig < n * nkv; ig++) {
        const int i = ig / nkv, g = ig % nkv, p = pos[i];
        const int t0 = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0, len = p + 1 - t0;
        float *sc = scores + (size_t)omp_get_thread_num() * group * n_ctx; /* [group, n_ctx] */
        const float *ks = kc + (size_t)seq[i] * n_ctx * kvd + (size_t)g * hd; /* row t at ks + t·kvd */
        const float *vs = vc + (size_t)seq[i] * n_ctx * kvd + (size_t)g * hd;
        const float *qg = q + (size_t)i * qd + (size_t)g * group * hd; /* [group, hd] */
        float *og = att + (size_t)i * qd + (size_t)g * group * hd;     /* [group, hd] */
        for (int t = t0; t <= p; t++) {
            const float *kt = ks + (size_t)t * kvd;
            for (int h = 0; h < group; h++) {
                const float *qh = qg + (size_t)h * hd;
                vec8 a = v8_zero();
                for (int j = 0; j < hd8; j += 8) a = v8_fma(v8_load(qh + j), v8_load(kt + j), a);
                float s = hsum8(a);
                for (int j = hd8; j < hd; j++) s = fmaf(qh[j], kt[j], s);
                s *= scale;
                if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
                sc[(size_t)h * n_ctx + (t - t0)] = s;
            }
        }
        for (int h = 0; h < group; h++) {
            const float *w = sc + (size_t)h * n_ctx;
            float *o = og + (size_t)h * hd;
            ops_softmax(sc + (size_t)h * n_ctx, len);
            for (int j0 = 0; j0 < hd8; j0 += 64) { /* up to 8 accumulators of 8 floats */
                const int nc = hd8 - j0 < 64 ? (hd8 - j0) / 8 : 8;
                vec8 acc[8];
                for (int c = 0; c < 8; c++) acc[c] = v8_zero();
                for (int t = 0; t < len; t++) {
                    const float *vt = vs + (size_t)(t0 + t) * kvd + j0;
                    const vec8 wt = v8_set1(w[t]);
                    if (nc == 8) {
#pragma GCC unroll 8
                        for (int c = 0; c < 8; c++) acc[c] = v8_fma(wt, v8_load(vt + 8 * c), acc[c]);
                    } else {
                        for (int c = 0; c < nc; c++) acc[c] = v8_fma(wt, v8_load(vt + 8 * c), acc[c]);
                    }
                }
                for (int c = 0; c < nc; c++) v8_store(o + j0 + 8 * c, acc[c]);
            }
            for (int j = hd8; j < hd; j++) {
                float s = 0.0f;
                for (int t = 0; t < len; t++) s = fmaf(w[t], vs[(size_t)(t0 + t) * kvd + j], s);
                o[j] = s;
            }
        }
    }
}

void ops_attention_ref(float *att, const float *q, const float *kc, const float *vc, const int *pos, const int *seq,
                       int n, int nh, int nkv, int hd, int n_ctx, int window, float scale, float softcap)
{
    const int group = nh / nkv, qd = nh * hd, kvd = nkv * hd;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < nh; h++) {
            const int p = pos[i], t0 = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
            const float *qh = q + (size_t)i * qd + (size_t)h * hd;
            const size_t base = (size_t)seq[i] * n_ctx * kvd + (size_t)(h / group) * hd;
            double mx = -INFINITY, sum = 0.0;
            double *s = malloc((size_t)(p + 1) * sizeof(double));
            if (!s) return;
            for (int t = t0; t <= p; t++) {
                double d = 0.0;
                for (int j = 0; j < hd; j++) d += (double)qh[j] * (double)kc[base + (size_t)t * kvd + j];
                d *= scale;
                if (softcap > 0.0f) d = softcap * tanh(d / softcap);
                s[t] = d;
                mx = d > mx ? d : mx;
            }
            for (int t = t0; t <= p; t++) sum += (s[t] = exp(s[t] - mx));
            for (int j = 0; j < hd; j++) {
                double o = 0.0;
                for (int t = t0; t <= p; t++) o += s[t] / sum * (double)vc[base + (size_t)t * kvd + j];
                att[(size_t)i * qd + (size_t)h * hd + j] = (float)o;
            }
            free(s);
        }
}

/*
 * kern_avx2.c — the avx2 kernel path: AVX2 + FMA + F16C, 8 lanes of 256
 * bits (kern.h). Compiled with -mavx2 -mfma -mf16c (CMakeLists.txt); called
 * only when the CPU has them.
 */
#include "kern.h"
#include "formats.h"

#include <immintrin.h>
#include <math.h>

#define KERN_TABLE ops_kern_avx2
#define KERN_NAME "avx2"
#define KERN_NEEDS "avx2 fma f16c"
#define VW 8
typedef __m256 vf;
static inline vf vf_zero(void) { return _mm256_setzero_ps(); }
static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_set1(float f) { return _mm256_set1_ps(f); }
/* Makes v opaque to the compiler: it stays in a register instead of being
 * folded back into each FMA as a memory operand (GCC 12 otherwise re-loads
 * each weight vector once per input row, 16 loads per 12 FMAs). */
#define VF_IN_REG(v) __asm__("" : "+x"(v))
/* lanes (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then 0+1 */
static inline float vf_hsum(vf v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
    return _mm_cvtss_f32(s);
}
/* vf_hsum of a[0..7] by the same tree, 8 sums at once: (j + j+4) of two
 * vectors per add, then (0+2, 1+3) of four, then 0+1 of eight. */
#define VF_HSUM8 1
static inline void vf_hsum8(const vf *a, float *o)
{
    __m256 u[4];
    for (int c = 0; c < 4; c++) /* [a[2c] lanes j+(j+4) | a[2c+1] lanes j+(j+4)] */
        u[c] = _mm256_add_ps(_mm256_permute2f128_ps(a[2 * c], a[2 * c + 1], 0x20),
                             _mm256_permute2f128_ps(a[2 * c], a[2 * c + 1], 0x31));
    /* [a0: 0+2, 1+3, a2: 0+2, 1+3 | a1: .., a3: ..] and the same for a4..a7 */
    const __m256 v0 = _mm256_add_ps(_mm256_shuffle_ps(u[0], u[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm256_shuffle_ps(u[0], u[1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m256 v1 = _mm256_add_ps(_mm256_shuffle_ps(u[2], u[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                    _mm256_shuffle_ps(u[2], u[3], _MM_SHUFFLE(3, 2, 3, 2)));
    /* [a0, a2, a4, a6 | a1, a3, a5, a7] */
    const __m256 w = _mm256_add_ps(_mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1)));
    _mm256_storeu_ps(o, _mm256_permutevar8x32_ps(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}
static inline vf vf_load_w(const void *w, steer_dtype dt, size_t k)
{
    if (dt == STEER_DTYPE_F32) return _mm256_loadu_ps((const float *)w + k);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + k));
    if (dt == STEER_DTYPE_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}
#define KERN_DEQUANT(dt, src, dst, n) q_dequant_row(dt, src, dst, n)
/* Of 16 bf16 at w (one load): the 8 even columns as f32 (the 32-bit words
 * shifted left by 16) or the 8 odd ones (the words with the low half
 * cleared). Exact; no shuffle. */
static inline vf vf_bf16_even(const uint16_t *w)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)w), 16));
}
static inline vf vf_bf16_odd(const uint16_t *w)
{
    return _mm256_castsi256_ps(
        _mm256_and_si256(_mm256_loadu_si256((const __m256i *)w), _mm256_set1_epi32((int)0xFFFF0000u)));
}

/* glibc's libmvec (libc6): expf and tanhf of 8 lanes with AVX2, within
 * 1 ulp of expf and tanhf (glibc's stated bounds for its vector variants). */
__m256 _ZGVdN8v_expf(__m256 x);
__m256 _ZGVdN8v_tanhf(__m256 x);

/* φ(g)·u of 8 lanes: SiLU g / (1 + exp(−g)) · u, or GELU-tanh
 * 0.5·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))·u, with ops_glu_plain's
 * operations in its order, the exp or tanh from libmvec. */
static inline __m256 glu8(__m256 g, __m256 u, steer_act act)
{
    if (act == STEER_ACT_SILU) {
        const __m256 e = _ZGVdN8v_expf(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)));
        return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
    }
    const __m256 c3 = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), g), g), g);
    const __m256 z = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), _mm256_add_ps(g, c3));
    const __m256 h = _mm256_mul_ps(_mm256_set1_ps(0.5f), g);
    return _mm256_mul_ps(_mm256_mul_ps(h, _mm256_add_ps(_mm256_set1_ps(1.0f), _ZGVdN8v_tanhf(z))), u);
}

/* ops_glu with 8 exps or tanhs at once for SiLU and GELU-tanh (a tail of
 * n mod 8 through a padded vector, so every element takes the same path);
 * the other activations as ops_glu_plain. Elementwise: batch-invariant. */
#define KERN_GLU kern_glu_avx2
static void kern_glu_avx2(float *out, const float *g, const float *u, size_t n, steer_act act)
{
    if (act != STEER_ACT_SILU && act != STEER_ACT_GELU_TANH) {
        ops_glu_plain(out, g, u, n, act);
        return;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, glu8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i), act));
    if (i < n) {
        float tg[8] = {0}, tu[8] = {0};
        for (size_t j = 0; i + j < n; j++) tg[j] = g[i + j], tu[j] = u[i + j];
        _mm256_storeu_ps(tg, glu8(_mm256_loadu_ps(tg), _mm256_loadu_ps(tu), act));
        for (size_t j = 0; i + j < n; j++) out[i + j] = tg[j];
    }
}

/* The attention softmax (ops_softmax's steps) with 8 exps at once: max,
 * x - max, exp (a tail of n mod 8 padded with -inf, whose exp is 0), the
 * sum in 8 lanes then vf_hsum, times 1/sum. Depends on n and x only. */
#define KERN_SOFTMAX kern_softmax_avx2
static void kern_softmax_avx2(float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    const __m256 m = _mm256_set1_ps(mx);
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (i < n) {
        float t[8];
        for (int j = 0; j < 8; j++) t[j] = i + j < n ? x[i + j] : -INFINITY;
        const __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(t), m));
        _mm256_storeu_ps(t, e);
        acc = _mm256_add_ps(acc, e);
        for (int j = 0; i + j < n; j++) x[i + j] = t[j];
    }
    const __m256 inv = _mm256_set1_ps(1.0f / vf_hsum(acc));
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= _mm256_cvtss_f32(inv);
}

#include "kern_body.h"

/*
 * kern_avx512_layer.h — the 512-bit vector layer of kern_body.h (16 lanes),
 * shared by kern_avx512.c and kern_avx512bf16.c; compiled only in those
 * files (AVX-512 flags).
 */
#include <immintrin.h>
/* (tests/unit/kern_simde512.h includes this layer over SIMDe's portable
 * AVX-512, whose vectors are not register types: it defines VF_IN_REG and
 * KERN_BH first.) */

#define VW 16
typedef __m512 vf;
static inline vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_set1(float f) { return _mm512_set1_ps(f); }
#ifndef VF_IN_REG
#define VF_IN_REG(v) __asm__("" : "+v"(v))
#endif
/* lanes (j, j+8) added, then the avx2 tree on the 8 sums */
static inline float vf_hsum(vf v)
{
    __m256 lo = _mm512_castps512_ps256(v);
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
    return _mm_cvtss_f32(s);
}
static inline vf vf_load_w(const void *w, steer_dtype dt, size_t k)
{
    if (dt == STEER_DTYPE_F32) return _mm512_loadu_ps((const float *)w + k);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + k));
    if (dt == STEER_DTYPE_BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}
#define KERN_DEQUANT(dt, src, dst, n) q_dequant_row(dt, src, dst, n)
/* Of 32 bf16 at w (one load): the 16 even columns as f32 or the 16 odd ones
 * (kern_avx2.c's vf_bf16_even, vf_bf16_odd). */
static inline vf vf_bf16_even(const uint16_t *w) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(w), 16)); }
static inline vf vf_bf16_odd(const uint16_t *w)
{
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_loadu_si512(w), _mm512_set1_epi32((int)0xFFFF0000u)));
}


/*
 * kern_avx2.c — the avx2 kernel path: AVX2 + FMA + F16C, 8 lanes of 256
 * bits (kern.h). Compiled with -mavx2 -mfma -mf16c (CMakeLists.txt); called
 * only when the CPU has them.
 */
#include "kern.h"
#include "formats.h"

#include <immintrin.h>

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
static inline vf vf_load_w(const void *w, steer_dtype dt, size_t k)
{
    if (dt == STEER_DTYPE_F32) return _mm256_loadu_ps((const float *)w + k);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + k));
    if (dt == STEER_DTYPE_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}
#define KERN_DEQUANT(dt, src, dst, n) q_dequant_row(dt, src, dst, n)

#include "kern_body.h"

/*
 * kern_simde512.h — compiles an AVX-512 kernel path's own source
 * (src/model/kern_avx512.c, kern_avx512bf16.c: its vector layer and
 * kern_body.h) over SIMDe's portable AVX-512 (Debian's libsimde-dev), so
 * test_ops runs that code on a CPU without AVX-512 and checks it against
 * the 16-lane emulation (kern_emu16*.c) bitwise. SIMDe computes each
 * intrinsic from narrower instructions, FMA fused; its VDPBF16PS adds in
 * another order than the SDM's (test_ops says how).
 * Included by kern_simde512.c and kern_simde512bf16.c only.
 *
 * SIMDe 0.7.4 (Debian 12) lacks two of the intrinsics the layer uses; they
 * are formed here from their 256-bit halves (the same per-element
 * conversions). Its vectors are unions, not register types, so the layer's
 * register pin is empty and bf16 vectors are reinterpreted by copy.
 */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#include <string.h>

static inline simde__m512 kern_simde_cvtph_ps(simde__m256i h)
{
    return simde_mm512_insertf32x8(simde_mm512_castps256_ps512(simde_mm256_cvtph_ps(simde_mm256_castsi256_si128(h))),
                                   simde_mm256_cvtph_ps(simde_mm256_extracti128_si256(h, 1)), 1);
}
static inline simde__m512i kern_simde_cvtepu16_epi32(simde__m256i h)
{
    return simde_mm512_inserti32x8(simde_mm512_castsi256_si512(simde_mm256_cvtepu16_epi32(simde_mm256_castsi256_si128(h))),
                                   simde_mm256_cvtepu16_epi32(simde_mm256_extracti128_si256(h, 1)), 1);
}
static inline simde__m512bh kern_simde_bh(simde__m512i v)
{
    simde__m512bh r;
    memcpy(&r, &v, sizeof r);
    return r;
}
#undef _mm512_cvtph_ps
#undef _mm512_cvtepu16_epi32
#define _mm512_cvtph_ps(h) kern_simde_cvtph_ps(h)
#define _mm512_cvtepu16_epi32(h) kern_simde_cvtepu16_epi32(h)
#define VF_IN_REG(v) ((void)0)
#define KERN_BH(v) kern_simde_bh(v)

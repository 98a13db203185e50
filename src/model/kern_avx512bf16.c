/*
 * kern_avx512bf16.c — the avx512bf16 kernel path: the avx512 path, plus bf16
 * weights at fast precision multiplied with activations rounded to bf16 by
 * VDPBF16PS pair dot products (kern_body.h, KERN_DOT2), as llama.cpp does
 * on these CPUs. At exact precision it computes what the avx512 path does.
 * Compiled with the AVX-512 flags and -mavx512bf16 (CMakeLists.txt); called
 * only when the CPU and OS have them. Its logic is also run on every CPU
 * through tests/unit/kern_emu16.c's emulated layer (test_ops).
 */
#include "kern.h"
#include "formats.h"

#ifndef KERN_TABLE /* (tests/unit/kern_simde512*.c: this source over SIMDe, under its own name) */
#define KERN_TABLE ops_kern_avx512bf16
#define KERN_NAME "avx512bf16"
#define KERN_NEEDS "avx512f avx512vl avx512bw avx512dq avx512bf16 fma f16c"
#endif
#include "kern_avx512_layer.h"
/* acc[j] += x[2j+1]·w[2j+1] + x[2j]·w[2j] for the 32 bf16 at x and w */
#define KERN_DOT2
#ifndef KERN_BH
#define KERN_BH(v) ((__m512bh)(v)) /* 32 bf16 from a 512-bit integer vector */
#endif
static inline vf vf_dot2(vf acc, const uint16_t *x, const uint16_t *w)
{
    return _mm512_dpbf16_ps(acc, KERN_BH(_mm512_loadu_si512(x)), KERN_BH(_mm512_loadu_si512(w)));
}

#include "kern_body.h"

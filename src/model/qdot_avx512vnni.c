/*
 * qdot_avx512vnni.c — the avx512vnni implementation of the
 * quantized-activation dot products (qdot.h): the avx2 kernels
 * (qdot_avx2_body.h) with the legacy types' block sums taken by one
 * 256-bit VPDPBUSD (AVX512_VNNI + AVX512VL), as llama.cpp does on these
 * CPUs, and the K types' group-scale products added by VPDPWSSD. Compiled
 * with those flags (CMakeLists.txt); chosen for the avx512 and avx512bf16
 * kernel paths where the CPU has them (qdot_for_path). The same bits as
 * avx2 and scalar; test_qdot also runs this code on any AVX2 CPU with
 * SIMDe's portable VPDPBUSD and VPDPWSSD (tests/unit/qdot_emu_vnni.c).
 */
#include <immintrin.h>

#define QDOT_TABLE qdot_avx512vnni
#define QDOT_NAME "avx512vnni"
#define QDOT_NEEDS "avx2 fma f16c avx512f avx512vl avx512vnni"
#define QDOT_DPBUSD(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#define QDOT_DPWSSD(acc, a, b) _mm256_dpwssd_epi32((acc), (a), (b))

#include "qdot_avx2_body.h"

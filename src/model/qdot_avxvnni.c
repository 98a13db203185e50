/*
 * qdot_avxvnni.c — the avxvnni implementation of the quantized-activation
 * dot products (qdot.h): the avx2 kernels (qdot_avx2_body.h) with the
 * VEX-encoded VNNI instructions of CPUs that have AVX-VNNI without
 * AVX-512 (Intel's Alder Lake and later client cores): the legacy types'
 * block sums by VPDPBUSD, the K types' group-scale products added by
 * VPDPWSSD, as qdot_avx512vnni.c does with the EVEX forms. Compiled with
 * -mavxvnni (CMakeLists.txt); chosen for the avx2 kernel path where the CPU
 * has it (qdot_for_path). The same bits as avx2 and scalar; test_qdot runs
 * this code's logic on any AVX2 CPU through SIMDe (qdot_emu_vnni.c).
 */
#include <immintrin.h>

#define QDOT_TABLE qdot_avxvnni
#define QDOT_NAME "avxvnni"
#define QDOT_NEEDS "avx2 fma f16c avxvnni"
#define QDOT_DPBUSD(u, s) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), (u), (s))
#define QDOT_DPWSSD(acc, a, b) _mm256_dpwssd_avx_epi32((acc), (a), (b))

#include "qdot_avx2_body.h"

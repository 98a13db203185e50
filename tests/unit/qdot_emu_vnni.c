/*
 * qdot_emu_vnni.c — the avx512vnni implementation's code
 * (src/model/qdot_avx2_body.h with QDOT_DPBUSD and QDOT_DPWSSD) on any AVX2
 * CPU: VPDPBUSD and VPDPWSSD come from SIMDe (Debian's libsimde-dev), whose portable version computes
 * each int32 lane as the instruction's definition says, independently of
 * the avx2 path's vpmaddubsw/vpmaddwd. So test_qdot checks everywhere that
 * the VNNI path's kernels give the scalar path's bits, and on a VNNI CPU
 * also runs the real one. Linked into test_qdot only.
 */
#include <simde/x86/avx512/dpbusd.h>
#include <simde/x86/avx512/dpwssd.h>

#define QDOT_TABLE qdot_emu_vnni
#define QDOT_NAME "emulated-avx512vnni"
#define QDOT_NEEDS "avx2 fma f16c"
/* one out-of-line call: SIMDe's portable VPDPBUSD inlined into every
 * unrolled tile made this file take 32 s to compile */
__attribute__((noinline)) static simde__m256i emu_dpbusd(simde__m256i u, simde__m256i s)
{
    return simde_mm256_dpbusd_epi32(simde_mm256_setzero_si256(), u, s);
}
#define QDOT_DPBUSD(u, s) emu_dpbusd((u), (s))
__attribute__((noinline)) static simde__m256i emu_dpwssd(simde__m256i acc, simde__m256i a, simde__m256i b)
{
    return simde_mm256_dpwssd_epi32(acc, a, b);
}
#define QDOT_DPWSSD(acc, a, b) emu_dpwssd((acc), (a), (b))

#include "qdot_avx2_body.h"

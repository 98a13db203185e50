/*
 * qdot_avx2.c — the avx2 implementation of the quantized-activation dot
 * products (qdot.h): AVX2 + FMA + F16C, compiled with -mavx2 -mfma -mf16c
 * (CMakeLists.txt) and called only when the CPU has them. The kernels are
 * qdot_avx2_body.h.
 */
#define QDOT_TABLE qdot_avx2
#define QDOT_NAME "avx2"
#define QDOT_NEEDS "avx2 fma f16c"

#include "qdot_avx2_body.h"

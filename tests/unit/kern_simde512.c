/* The avx512 path's own source over SIMDe's portable AVX-512
 * (kern_simde512.h), as ops_kern_simde512: runs on any AVX2 CPU. */
#include "kern_simde512.h"
#define KERN_TABLE ops_kern_simde512
#define KERN_NAME "avx512-on-simde"
#define KERN_NEEDS "avx2 fma f16c"
#include "kern_avx512.c"

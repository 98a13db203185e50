/* The avx512bf16 path's own source over SIMDe's portable AVX-512
 * (kern_simde512.h), as ops_kern_simde512bf16: runs on any AVX2 CPU. */
#include "kern_simde512.h"
#define KERN_TABLE ops_kern_simde512bf16
#define KERN_NAME "avx512bf16-on-simde"
#define KERN_NEEDS "avx2 fma f16c"
#include "kern_avx512bf16.c"

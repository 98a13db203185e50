/*
 * kern_scalar.c — the scalar kernel path (kern.h): the kernels of
 * kern_body.h over 8 lanes in plain C loops with fmaf. The same operations
 * in the same order as the avx2 path, so the same bits; the path every
 * other one is tested against (with the double references), and the one a
 * CPU without AVX2 would run.
 */
#include "kern.h"
#include "formats.h"

#define KERN_TABLE ops_kern_scalar
#define KERN_NAME "scalar"
#define KERN_NEEDS ""
#define KERN_LANES 8
#include "kern_lanes.h"

#include "kern_body.h"

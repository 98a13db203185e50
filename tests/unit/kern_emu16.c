/*
 * kern_emu16.c — the kernels of src/model/kern_body.h over 16 lanes in plain
 * C (kern_lanes.h): the avx512 path's summation order, run on any CPU, so
 * test_ops checks the 16-lane logic of the body (tiling, tails, the lane
 * tree) everywhere, and on an AVX-512 CPU that the real path gives these
 * bits. Linked into test_ops only.
 */
#include "kern.h"
#include "formats.h"

#define KERN_TABLE ops_kern_emu16
#define KERN_NAME "emulated-16-lanes"
#define KERN_NEEDS ""
#define KERN_LANES 16
#include "kern_lanes.h"

#include "kern_body.h"

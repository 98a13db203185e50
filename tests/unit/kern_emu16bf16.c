/*
 * kern_emu16bf16.c — the avx512bf16 path's kernels (kern_body.h with
 * KERN_DOT2) over 16 lanes in plain C with the pair dot product emulated
 * (kern_lanes.h): run on any CPU by test_ops, so the bf16 pair-dot logic
 * (tiles, tails, the order) is tested here too. Linked into test_ops only.
 */
#include "kern.h"
#include "formats.h"

#define KERN_TABLE ops_kern_emu16bf16
#define KERN_NAME "emulated-16-lanes-bf16-dot"
#define KERN_NEEDS ""
#define KERN_LANES 16
#define KERN_DOT2
#include "kern_lanes.h"

#include "kern_body.h"

/*
 * kern_avx512.c — the avx512 kernel path: AVX-512 F/VL/BW/DQ (+ F16C, FMA),
 * 16 lanes of 512 bits (kern.h). Compiled with those flags (CMakeLists.txt);
 * called only when the CPU and OS have them. The body is kern_body.h, the
 * same code as avx2 at VW 16; its logic at 16 lanes is also run on every
 * CPU through the emulated layer of tests/unit/kern_emu16.c (test_ops).
 */
#include "kern.h"
#include "formats.h"

#ifndef KERN_TABLE /* (tests/unit/kern_simde512*.c: this source over SIMDe, under its own name) */
#define KERN_TABLE ops_kern_avx512
#define KERN_NAME "avx512"
#define KERN_NEEDS "avx512f avx512vl avx512bw avx512dq fma f16c"
#endif
#include "kern_avx512_layer.h"

#include "kern_body.h"

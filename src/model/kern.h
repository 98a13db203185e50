/*
 * kern.h — the kernel paths and run-time dispatch (issue 18).
 *
 * One binary carries every kernel path; the best one the CPU has is chosen
 * once, at first use (cpuid + xgetbv through GCC's __builtin_cpu_supports):
 *
 *   scalar      portable C, 8 lanes in plain loops: the same summation order
 *               as avx2, so the same bits (the reference the SIMD paths are
 *               tested against, with the double references in ops.c)
 *   avx2        AVX2 + FMA + F16C, 256-bit (kern_avx2.c)
 *   avx512      AVX-512 F/VL/BW/DQ, 512-bit: 16 lanes, so another summation
 *               order than avx2 (kern_avx512.c)
 *   avx512bf16  avx512 + AVX512_BF16: bf16 weights at fast precision by
 *               VDPBF16PS on activations rounded to bf16 (kern_avx512bf16.c)
 *
 * Each path is one translation unit that defines a small vector layer and
 * includes kern_body.h, the kernels written once against that layer; the
 * file is compiled with its instruction set's flags (CMakeLists.txt) and
 * is only called when the CPU has them. Every path is batch-invariant by
 * itself: the order of a dot product depends only on K and the path.
 *
 * STEER_CPU=scalar|avx2|avx512 (environment) or steer_cpu_set_path() forces a
 * path (tests, comparisons); a path the CPU lacks is refused.
 * Not installed.
 */
#ifndef STEER_KERN_H
#define STEER_KERN_H

#include "ops.h"
#include "quant.h"

typedef struct {
    const char *name; /* "scalar", "avx2", "avx512", "avx512bf16"                  */
    int lanes;        /* f32 lanes per vector: the summation order's period   */
    int dot2;         /* 1: bf16 weights at fast precision use bf16 pair dot products (KERN_DOT2) */
    /* instruction-set features the path needs, as __builtin_cpu_supports
     * names, space-separated ("" = none) */
    const char *needs;
    void (*matmul)(float *out, const float *in, const steer_mat *W, int n);
    void (*attention)(float *att, const float *q, const float *kc, const float *vc, const int *pos,
                      const int *seq, int n, int nh, int nkv, int hd, int n_ctx, int window, float scale,
                      float softcap, float *scores);
    /* out = φ(g)·u elementwise (ops_glu) */
    void (*glu)(float *out, const float *g, const float *u, size_t n, steer_act act);
} ops_kernels;

/* One weight of dtype dt (F32, BF16, F16) at element k, widened to f32. */
static inline float w_at(const void *w, steer_dtype dt, size_t k)
{
    if (dt == STEER_DTYPE_F32) return ((const float *)w)[k];
    uint16_t h = ((const uint16_t *)w)[k];
    return dt == STEER_DTYPE_BF16 ? ops_bf16_to_f32(h) : q_f16_to_f32(h);
}

/* Work sharing of a matmul's weight rows (kern_body.h, qdot.c): threads take
 * chunks of rows from a shared counter, so that a thread the OS or the
 * hypervisor delays takes fewer chunks and all finish together (a fixed
 * share made the others wait at the barrier). Which thread computes a row
 * never changes its arithmetic. kern_chunk_rows: about rows / (per · nt)
 * rows, a multiple of unit, at most cap (cap itself for one thread, which
 * has nothing to balance); kern_chunk_next: the next chunk's index from
 * *counter (shared by the team, 0 before the region). */
static inline int kern_chunk_rows(int rows, int nt, int per, int unit, int cap)
{
    if (nt <= 1) return cap > 0 ? cap : 1;
    int chunk = (rows + per * nt - 1) / (per * nt);
    chunk = (chunk + unit - 1) / unit * unit;
    if (chunk > cap) chunk = cap;
    return chunk > 0 ? chunk : 1;
}
static inline int kern_chunk_next(int *counter)
{
    int c;
#pragma omp atomic capture
    c = (*counter)++;
    return c;
}

extern const ops_kernels ops_kern_scalar, ops_kern_avx2, ops_kern_avx512, ops_kern_avx512bf16;

/* Every path compiled in, best last; *n = count. */
const ops_kernels *const *ops_kern_all(int *n);
/* 1 if this CPU (and OS) can run path k. */
int ops_kern_supported(const ops_kernels *k);
/* The path in use (chosen at first call: STEER_CPU, else the best supported). */
const ops_kernels *ops_kern(void);
/* Use path k from now on (tests, benchmarks). Returns 0, or -1 if the CPU lacks it. */
int ops_kern_set(const ops_kernels *k);

#endif /* STEER_KERN_H */

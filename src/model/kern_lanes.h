/*
 * kern_lanes.h — a vector layer for kern_body.h in plain C: KERN_LANES
 * floats in a struct, per-lane fmaf. Used by the scalar path (8 lanes) and
 * by tests/unit/kern_emu16.c (16 lanes: the avx512 path's order, run on any
 * CPU). The lane tree of vf_hsum is the one the SIMD paths use: halves added
 * lane by lane until one lane is left, the last step as (0+2, 1+3), 0+1.
 */
#include <math.h>
#include <string.h>

#define VW KERN_LANES
typedef struct { float v[KERN_LANES]; } vf;
static inline vf vf_zero(void) { vf r; memset(&r, 0, sizeof r); return r; }
static inline vf vf_load(const float *p) { vf r; memcpy(r.v, p, sizeof r.v); return r; }
static inline void vf_store(float *p, vf v) { memcpy(p, v.v, sizeof v.v); }
static inline vf vf_set1(float f)
{
    vf r;
    for (int j = 0; j < VW; j++) r.v[j] = f;
    return r;
}
static inline vf vf_fma(vf a, vf b, vf c)
{
    for (int j = 0; j < VW; j++) c.v[j] = fmaf(a.v[j], b.v[j], c.v[j]);
    return c;
}
#define VF_IN_REG(v) ((void)0)
static inline float vf_hsum(vf a)
{
    float s[KERN_LANES];
    memcpy(s, a.v, sizeof s);
    for (int w = VW / 2; w >= 4; w /= 2)
        for (int j = 0; j < w; j++) s[j] += s[j + w];
    /* the last 4 lanes as the SIMD trees: (0+2, 1+3), then 0+1 */
    float s0 = s[0] + s[2], s1 = s[1] + s[3];
    return s0 + s1;
}
static inline vf vf_load_w(const void *w, steer_dtype dt, size_t k)
{
    vf r;
    for (int j = 0; j < VW; j++) r.v[j] = w_at(w, dt, k + (size_t)j);
    return r;
}
#define KERN_DEQUANT(dt, src, dst, n) q_dequant_row(dt, src, dst, n)
/* Of 2·VW bf16 at w: lane j = w[2j] (even) or w[2j+1] (odd), exact. */
static inline vf vf_bf16_even(const uint16_t *w)
{
    vf r;
    for (int j = 0; j < VW; j++) r.v[j] = ops_bf16_to_f32(w[2 * j]);
    return r;
}
static inline vf vf_bf16_odd(const uint16_t *w)
{
    vf r;
    for (int j = 0; j < VW; j++) r.v[j] = ops_bf16_to_f32(w[2 * j + 1]);
    return r;
}
#ifdef KERN_DOT2
/* VDPBF16PS per lane: the odd pair's product added, then the even pair's,
 * each sum rounded (the products of two bf16 are exact in float, so a fused
 * or separate multiply gives the same). Denormals are not flushed as the
 * instruction does; the tests' values have none. */
static inline vf vf_dot2(vf acc, const uint16_t *x, const uint16_t *w)
{
    for (int j = 0; j < VW; j++) {
        acc.v[j] += ops_bf16_to_f32(x[2 * j + 1]) * ops_bf16_to_f32(w[2 * j + 1]);
        acc.v[j] += ops_bf16_to_f32(x[2 * j]) * ops_bf16_to_f32(w[2 * j]);
    }
    return acc;
}
#endif

/*
 * qdot.h — the fast path for block-quantized weights (issue 19), as
 * llama.cpp computes it: each input row is quantized once per call to 8-bit
 * blocks ("activation quantization", ggml's Q8_0 / Q8_1 / Q8_K), and every
 * output element is a sum over blocks of integer dot products scaled by the
 * two block scales. Not installed.
 *
 * Activation types (ggml's vec_dot_type of each weight type):
 *   Q8_0  for Q8_0, Q4_0, Q5_0 weights   blocks of 32, f16 scale
 *   Q8_1  for Q4_1, Q5_1                 Q8_0 plus s = f16(d·Σq)
 *   Q8_K  for Q2_K, Q3_K, Q4_K, Q5_K, Q6_K   blocks of 256, f32 scale, group sums
 * quantized exactly as ggml's references (quantize_row_q8_0_ref,
 * quantize_row_q8_1_ref, quantize_row_q8_K_ref): Q8_0/Q8_1 d = amax/127,
 * q = roundf(x·(1/d)) (ties away from zero), d and s stored as f16; Q8_K
 * iscale = −127/max (max = the element of largest |x|, first one on ties),
 * q = min(127, nearest_int(iscale·x)) (ties to even), d = 1/iscale (f32).
 * The scales are kept in this file's layout (below) as f32 values, f16 ones
 * already widened: the same numbers ggml multiplies.
 *
 * The dot product of one weight row with one quantized activation row (the
 * "lane contract"; every implementation computes exactly this, so the
 * scalar and avx2 ones give the same bits): per block (32) or super-block
 * (256) b, eight exact int32 lanes L_j (j = 0..7) and, for the types with
 * mins, eight M_j; then in block order, per lane, in f32 with fused
 * multiply-add:
 *     acc_j  = fma(D_b, (float)L_j, acc_j)         D_b  = dw_b · dx_b
 *     accm_j = fma(Dm_b, (float)M_j, accm_j)       Dm_b = −(dmin_b · dx_b)   (Q2_K, Q4_K, Q5_K)
 *     accs   = fmaf(m_b, s_b, accs)                 (Q4_1, Q5_1: weight min × activation s)
 * and the result is the lanes acc_j (+ accm_j, one add per lane, for the
 * types with mins: two chains, so the FMA latency is paid once per block)
 * summed in kern.h's fixed tree ((0+4, 1+5, 2+6, 3+7), (0+2, 1+3), 0+1),
 * plus accs. The lanes (w = weight level, y =
 * activation level, elements numbered within the block):
 *   legacy (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1; w signed: q − 8 / q − 16 / q):
 *       L_j = Σ_{t<4} w[4j+t]·y[4j+t]
 *   Q4_K, Q5_K (8 groups of 32, 6-bit scale sc_g and min mn_g; w = q ≥ 0):
 *       L_j = Σ_{c<4} Σ_{h<2} sc_{2c+h} · Σ_{t<4} w[64c+32h+4j+t]·y[…]
 *       M_j = mn_j · S_j          S_j = Σ y over group j (32 elements)
 *   Q2_K, Q3_K, Q6_K (16 groups of 16; vectors v = 0..7 of 32 elements, v's
 *   first 16 are group 2v, the next 16 group 2v + 1; g(v, j) = 2v + (j >= 4)):
 *       Q6_K: L_j = Σ_v sc_{g(v,j)} · Σ_{t<4} q[32v+4j+t]·y[…]  −  32·(sc_{2j}·B_{2j} + sc_{2j+1}·B_{2j+1})
 *             (q = 0..63 unsigned; B_g = Σ y over group g of 16)
 *       Q3_K: L_j = Σ_v s_{g(v,j)} · Σ_{t<4} w[32v+4j+t]·y[…]   (w = −4..3, s = scale − 32)
 *       Q2_K: L_j = Σ_v sc_{g(v,j)} · Σ_{t<4} q[32v+4j+t]·y[…]   (sc = low nibble, q = 0..3)
 *             M_j = mn_{2j}·B_{2j} + mn_{2j+1}·B_{2j+1}          (mn = high nibble)
 * No lane overflows int32, and every lane is computed exactly however it
 * is grouped ((float)L rounds to nearest where |L| > 2^24, possible for
 * Q6_K, the same in every implementation), so only the float steps fix the bits — and those depend only
 * on K, the weight row and the activation row: qdot_matmul is
 * batch-invariant (not on n, the tile, or the thread split).
 *
 * In real arithmetic the result is Σ_k ŵ_k·x̂_k over the dequantized weights
 * (q_dequant_row) and the dequantized activations (qdot_act_dequant), plus,
 * for Q4_1/Q5_1, Σ_b m_b·(s_b − dx_b·Σq) (s is rounded to f16 separately);
 * it differs from the f32 product by the activation quantization error
 * (about |w|·amax/254 per element).
 */
#ifndef STEER_QDOT_H
#define STEER_QDOT_H

#include "ops.h"

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- activation rows
 * One quantized activation row of K elements, 64-byte aligned, in one of
 * three layouts (qdot_act_type):
 *   Q8_0: int8 qs[K] | float d[K/32]                        (d already f16-rounded)
 *   Q8_1: int8 qs[K] | float d[K/32] | float s[K/32]        (d, s f16-rounded)
 *   Q8_K: K/256 blocks of qdot_q8k (352 bytes each)
 * qdot_act_row_bytes(at, K) bytes each (a multiple of 64). */
typedef enum { QDOT_ACT_Q8_0, QDOT_ACT_Q8_1, QDOT_ACT_Q8_K, QDOT_ACT_NONE } qdot_act;

typedef struct {
    int8_t qs[256];    /* levels, −127..127                                     */
    int16_t bsums[16]; /* Σ qs over each group of 16 (ggml's bsums)             */
    int32_t s32[8];    /* Σ qs over each group of 32 (bsums[2j] + bsums[2j+1])   */
    float d;           /* scale: x ≈ d·q                                        */
    uint8_t pad[28];
} qdot_q8k;

/* The activation type of weight type wt; QDOT_ACT_NONE if wt is not a block type. */
qdot_act qdot_act_type(steer_dtype wt);
/* Bytes of one quantized activation row of K elements (K a multiple of the
 * activation block: 32, or 256 for Q8_K). */
size_t qdot_act_row_bytes(qdot_act at, int K);
/* x[K] = the dequantized activation row (q·d), for tests. */
void qdot_act_dequant(qdot_act at, const void *row, float *x, int K);

/* ---------------------------------------------------------------- implementations */

/* Quantizes one row x[K] into dst (qdot_act_row_bytes(at, K) bytes, 64-byte aligned). */
typedef void (*qdot_quant_fn)(const float *x, void *dst, int K);
/* The tile: out[i·ldo + r] = dot(weight row r, activation row i) for
 * r < nrows (any count: the kernel walks them in its own row tiles), i < nr
 * (1 <= nr <= QDOT_NR); weight rows at stride ldw bytes, activation rows at
 * stride ldx bytes. Each element is computed by the lane contract above
 * whatever nrows and nr are. */
typedef void (*qdot_tile_fn)(int K, const void *w, size_t ldw, int nrows, const void *x, size_t ldx, int nr,
                             float *out, size_t ldo);
#define QDOT_MR 4 /* weight rows per register tile, at most (kernels)          */
#define QDOT_NR 8 /* activation rows per tile, at most                         */

typedef struct {
    const char *name;  /* "scalar", "avx2", "avxvnni", "avx512vnni"               */
    const char *needs; /* CPU features, as ops_kernels.needs                      */
    qdot_quant_fn quant[3];                 /* by qdot_act                       */
    qdot_tile_fn tile[STEER_DTYPE_COUNT];   /* by weight dtype (block types)      */
    /* Activation rows per tile the matmul uses for n >= 2 (<= QDOT_NR). */
    int nr[STEER_DTYPE_COUNT];
} qdot_impl;

extern const qdot_impl qdot_scalar, qdot_avx2, qdot_avxvnni, qdot_avx512vnni;

/* The scalar tiles by name (the SIMD tables use them for the types they have
 * no kernel of their own for). */
#define QDOT_SCALAR_DECL(T) \
    void qdot_scalar_tile_##T(int K, const void *w, size_t ldw, int nrows, const void *x, size_t ldx, int nr, \
                              float *out, size_t ldo);
QDOT_SCALAR_DECL(q8_0) QDOT_SCALAR_DECL(q4_0) QDOT_SCALAR_DECL(q4_1) QDOT_SCALAR_DECL(q5_0)
QDOT_SCALAR_DECL(q5_1) QDOT_SCALAR_DECL(q2_k) QDOT_SCALAR_DECL(q3_k) QDOT_SCALAR_DECL(q4_k)
QDOT_SCALAR_DECL(q5_k) QDOT_SCALAR_DECL(q6_k)

/* Every implementation compiled in, best last; *n = count. */
const qdot_impl *const *qdot_all(int *n);
/* 1 if this CPU can run q. */
int qdot_supported(const qdot_impl *q);
/* The implementation for kernel path `path` (an ops_kernels name), the
 * best of those its instruction sets allow that the CPU has: scalar for
 * "scalar" (and names it does not know); for "avx2" avxvnni, else avx2;
 * for "avx512" and "avx512bf16" avx512vnni, else avxvnni, else avx2 (else
 * scalar). */
const qdot_impl *qdot_for_path(const char *path);
/* qdot_for_path(the kernel path in use, ops_kern()). */
const qdot_impl *qdot_cur(void);

/* 1 if qdot_matmul can take W: a block type whose row length is a multiple
 * of the activation block (always, for a valid quantized matrix). */
int qdot_can(const steer_mat *W);

/* out[n, W.rows] = in[n, W.cols] · Wᵀ for block-quantized W through the
 * quantized activations (above), with qdot_cur(). Batch-invariant: every
 * out[i, r] depends only on in[i, :] and W row r. Parallel over the weight
 * rows with OpenMP (as kern_matmul) when the product is large enough. */
void qdot_matmul(float *out, const float *in, const steer_mat *W, int n);
/* The same with implementation q (tests, benchmarks). */
void qdot_matmul_with(const qdot_impl *q, float *out, const float *in, const steer_mat *W, int n);

/* The dot product of one weight row (wt, K elements) with one quantized
 * activation row, by implementation q (tests). */
float qdot_vec_dot(const qdot_impl *q, steer_dtype wt, int K, const void *w, const void *x);

#endif /* STEER_QDOT_H */

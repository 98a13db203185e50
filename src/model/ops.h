/*
 * ops.h — the kernels of the model tier: dtype conversion, the batch-invariant
 * matmul, attention over the KV cache, norms and activations, with double
 * references for tests. Not installed.
 */
#ifndef STEER_OPS_H
#define STEER_OPS_H

#include "base.h"
#include "quant.h"

/* Private ABI (used by libsteer-train and libsteer-exp): exported from the shared library under
 * steer_-prefixed names (src/base/base.h, "private ABI"). */
#define ops_to_f32 steer_ops_to_f32


/* ---------------------------------------------------------------- ops (ops.c) */

/* A weight matrix W [rows, cols], row-major, y = W·x. */
typedef struct {
    const void *data;
    steer_dtype dtype; /* F32, F16, BF16 or a quantized type (STEER_DTYPE_Q*) */
    int rows, cols;
} steer_mat;

/* Scalar conversions; steer_f16_to_f32 & co. (steer.h) are their public
 * forms. IEEE half: q_f16_to_f32 / q_f32_to_f16 (quant.h). */
float ops_bf16_to_f32(uint16_t h);
uint16_t ops_f32_to_bf16(float f); /* round to nearest even                   */
/* dst[n] = src[n] converted from dtype to f32 (F32, F16, BF16, or a
 * quantized type: dequantized as ggml does; n a multiple of its block). */
STEER_PRIVATE void ops_to_f32(float *dst, const void *src, steer_dtype dtype, size_t n);

/* out[n, W.rows] = in[n, W.cols] · Wᵀ. The one matmul interface: the
 * batch-invariant kernel of the path in use (kern.h) for f32, f16, bf16 and
 * quantized weights. */
void ops_matmul(float *out, const float *in, const steer_mat *W, int n);
/* The same product through OpenBLAS sgemm (f32 weights only; not
 * batch-invariant). Baseline for bench/. */
void ops_matmul_blas(float *out, const float *in, const steer_mat *W, int n);
/* STEER_PRECISION_FAST or _EXACT (steer_set_precision; steer.h). */
int ops_precision(void);
/* Scalar reference for tests: plain loops, each dot product summed in double
 * (not bitwise equal to ops_matmul; compare within TOL_MATMUL_REF). */
void ops_matmul_ref(float *out, const float *in, const steer_mat *W, int n);
/* out[n, d] = x / sqrt(mean(x²) + eps) * w. out may alias x. */
void ops_rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps);
/* out[n] = φ(g[n]) * u[n] for φ = act, by the kernel path in use (kern.h;
 * out may alias g or u). ops_glu_plain: the same in plain C with libm, the
 * paths' fallback. */
void ops_glu(float *out, const float *g, const float *u, size_t n, steer_act act);
void ops_glu_plain(float *out, const float *g, const float *u, size_t n, steer_act act);
/* x[i, :] += b for each of n rows of width w. */
void ops_add_bias(float *x, const float *b, int n, int w);
/* x ← c·tanh(x/c). */
void ops_softcap(float *x, size_t n, float c);
void ops_softmax(float *x, int n);
/* Causal attention over a KV cache (grouped-query). For each batch row i
 * and query head h: att[i, h] = softmax_t(s_t) · V over the cached
 * positions t0..pos[i] of sequence seq[i], s_t = scale · q[i, h] · k_t (then
 * softcap · tanh(s_t / softcap) when softcap > 0), t0 = pos[i] − window + 1
 * when window > 0 (else 0). Query head h reads KV head h / (nh / nkv).
 * att, q: [n, nh·hd]; kc, vc: [n_seq, n_ctx, nkv·hd] (positions 0..pos[i]
 * of seq[i] written); scores: scratch [n_scores, nh / nkv, n_ctx], one slice
 * per OpenMP thread (n_scores >= the threads of the enclosing region).
 * Each (row, KV head) is computed by one thread with the same code whatever
 * n is, so results do not depend on the batch or the thread count. */
void ops_attention(float *att, const float *q, const float *kc, const float *vc, const int *pos, const int *seq,
                   int n, int nh, int nkv, int hd, int n_ctx, int window, float scale, float softcap, float *scores);
/* The same in double, plain loops (tests; TOL_ATTENTION_REF). */
void ops_attention_ref(float *att, const float *q, const float *kc, const float *vc, const int *pos, const int *seq,
                       int n, int nh, int nkv, int hd, int n_ctx, int window, float scale, float softcap);

#endif /* STEER_OPS_H */

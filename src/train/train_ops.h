/*
 * train_ops.h — the training engine's op layer: every op of the forward pass
 * as a forward/backward pair (llm.c style), float32 instances (train_ops.c).
 *
 * Each op is written once, over a type REAL, in train_ops_impl.h; train_ops.c
 * instantiates it for float (names suffixed _f32, declared here) and
 * tests/unit/test_train_ops.c instantiates the very same code for double (_f64) to
 * check every backward against central finite differences. docs/TRAINING.md
 * describes the conventions and the gradient checks.
 *
 * Conventions
 *  - Argument order: outputs first, then inputs, then sizes and options.
 *    For a backward: the gradients it produces (d<input>), then dout, then the
 *    forward's inputs and saved activations, then sizes and options.
 *  - All arrays are row-major; N = rows = B·T. Shapes are given beside every
 *    pointer as [dims].
 *  - Every backward ACCUMULATES (+=) into its gradient buffers, so gradients of
 *    residual branches and shared (tied) weights add up: zero them once per
 *    step. A gradient pointer may be NULL where noted: that gradient is then
 *    not computed (frozen weights, inputs that need no gradient).
 *  - Activations the backward needs (RMSNorm's rstd, attention probabilities)
 *    are explicit outputs of the forward; the caller owns and keeps them.
 *  - Aliasing: a forward's output may alias its input only where stated; a
 *    gradient buffer never aliases dout or any input.
 *  - Deterministic: no atomics on floats; every sum runs in a fixed order, so
 *    results are bitwise the same for any OpenMP thread count.
 */
#ifndef STEER_TRAIN_OPS_H
#define STEER_TRAIN_OPS_H

#include "model.h"
#include "steer_train.h" /* rope_style, steer_act */

#include <stddef.h>

/* ---------------------------------------------------------------- embedding */

/* out[n, :] = scale · wte[tokens[n], :] (scale = √C for Gemma, else 1).
 * tokens must lie in [0, V); the op does not check. */
void tr_embedding_forward_f32(float *out /* [N, C] */, const int *tokens /* [N] */,
                              const float *wte /* [V, C] */, int N, int C, float scale);
/* dwte[tokens[n], :] += scale · dout[n, :], rows in order n = 0..N-1 (a token
 * seen twice gets both rows; tied head: the head's matmul_backward dW adds to
 * the same dwte). */
void tr_embedding_backward_f32(float *dwte /* [V, C] */, const float *dout /* [N, C] */,
                               const int *tokens /* [N] */, int N, int C, float scale);

/* ---------------------------------------------------------------- matmul */

/* out[n, o] = Σ_c inp[n, c]·W[o, c] + bias[o]  (y = W·x, W as stored by HF).
 * bias may be NULL. OpenBLAS sgemm on fixed 64 x 256 output tiles shared by
 * the OpenMP threads (sgemm itself is not thread-count invariant); not
 * bitwise equal to ops_matmul (another summation order, ~1e-7 relative). */
void tr_matmul_forward_f32(float *out /* [N, OC] */, const float *inp /* [N, C] */,
                           const float *W /* [OC, C] */, const float *bias /* [OC] or NULL */, int N, int C,
                           int OC);
/* dinp += dout·W, dW += doutᵀ·inp, dbias += Σ_n dout[n, :]. Any of dinp, dW,
 * dbias may be NULL (not computed). */
void tr_matmul_backward_f32(float *dinp /* [N, C] or NULL */, float *dW /* [OC, C] or NULL */,
                            float *dbias /* [OC] or NULL */, const float *dout /* [N, OC] */,
                            const float *inp /* [N, C] */, const float *W /* [OC, C] */, int N, int C, int OC);

/* ---------------------------------------------------------------- RMSNorm */

/* rstd[n] = 1/√(mean_c inp[n, c]² + eps) (sum of squares in double);
 * out[n, c] = inp[n, c]·rstd[n]·weight[c]  — the same arithmetic as
 * ops_rmsnorm. weight is the effective multiplier: HF Gemma's norm scales by
 * (1 + w), the model stores 1 + w, and since ∂(1 + w)/∂w = 1, dweight is the
 * gradient for w too. out must not alias inp (the backward needs inp).
 * Per-head q/k norm (Gemma 3): the same op over N·H rows of C = head_dim. */
void tr_rmsnorm_forward_f32(float *out /* [N, C] */, float *rstd /* [N] */, const float *inp /* [N, C] */,
                            const float *weight /* [C] */, int N, int C, float eps);
/* dinp[n, i] += rstd·w_i·g_i − rstd³/C · x_i · Σ_j g_j·w_j·x_j,
 * dweight[i] += Σ_n g_i·x_i·rstd[n]  (g = dout, x = inp). */
void tr_rmsnorm_backward_f32(float *dinp /* [N, C] or NULL */, float *dweight /* [C] or NULL */,
                             const float *dout /* [N, C] */, const float *inp /* [N, C] */,
                             const float *weight /* [C] */, const float *rstd /* [N] */, int N, int C);

/* ---------------------------------------------------------------- RoPE */

/* Rotates each head's pairs by +θ: (a, b) → (a·cos − b·sin, a·sin + b·cos),
 * cos/sin = tab[pos[n], i]. Pairs are (2i, 2i+1) for ROPE_ADJACENT and
 * (i, i + hd/2) for ROPE_HALF (model.h). Tables [P, hd/2] hold cos/sin of
 * pos·inv_freq[i] for P > every pos (as steer_ctx's rope_cos/rope_sin).
 * out may alias inp. */
void tr_rope_forward_f32(float *out /* [N, H, hd] */, const float *inp /* [N, H, hd] */,
                         const float *cos_tab /* [P, hd/2] */, const float *sin_tab /* [P, hd/2] */,
                         const int *pos /* [N] */, int N, int H, int hd, rope_style style);
/* dinp += rotation of dout by −θ (the transpose; RoPE is linear, so no
 * saved activation is needed). */
void tr_rope_backward_f32(float *dinp /* [N, H, hd] */, const float *dout /* [N, H, hd] */,
                          const float *cos_tab /* [P, hd/2] */, const float *sin_tab /* [P, hd/2] */,
                          const int *pos /* [N] */, int N, int H, int hd, rope_style style);

/* ---------------------------------------------------------------- attention */

/* Causal multi-head attention over B sequences of T positions each (padding at
 * the end of a sequence is harmless: causal masking keeps it out of every
 * earlier row). Query head h reads key/value head h / (H/KV) (GQA; H % KV == 0).
 * Query t sees key s iff 0 ≤ t − s < window (window ≤ 0: no window).
 *   x_ts = scale·q_t·k_s;  if softcap > 0: x_ts = softcap·tanh(x_ts/softcap)
 *   att[b, h, t, :] = softmax_s(x_t·)  (0 outside the mask)
 *   out[b, t, h, :] = Σ_s att[b, h, t, s]·v[b, s, h/(H/KV), :]
 * att is saved for the backward. */
void tr_attention_forward_f32(float *out /* [B, T, H, hd] */, float *att /* [B, H, T, T] */,
                              const float *q /* [B, T, H, hd] */, const float *k /* [B, T, KV, hd] */,
                              const float *v /* [B, T, KV, hd] */, int B, int T, int H, int KV, int hd,
                              float scale, float softcap, int window);
/* dq, dk, dv += gradients. dscores is scratch (overwritten, not accumulated):
 * it receives ∂L/∂(q_t·k_s). With softcap > 0 the backward recomputes
 * tanh(scale·q·k/softcap) from q and k instead of saving it (scale, softcap
 * and window must be the forward's). Two passes, each row owned by one thread:
 * per (b, h, t) for dscores and dq, per (b, kv head, s) for dk and dv. */
void tr_attention_backward_f32(float *dq /* [B, T, H, hd] */, float *dk /* [B, T, KV, hd] */,
                               float *dv /* [B, T, KV, hd] */, float *dscores /* [B, H, T, T] scratch */,
                               const float *dout /* [B, T, H, hd] */, const float *q /* [B, T, H, hd] */,
                               const float *k /* [B, T, KV, hd] */, const float *v /* [B, T, KV, hd] */,
                               const float *att /* [B, H, T, T] */, int B, int T, int H, int KV, int hd,
                               float scale, float softcap, int window);

/* ---------------------------------------------------------------- GLU */

/* out = φ(g)⊙u, φ = SiLU, GELU-tanh or exact GELU (as ops_glu). */
void tr_glu_forward_f32(float *out /* [n] */, const float *g /* [n] */, const float *u /* [n] */, size_t n,
                        steer_act act);
/* dg += dout⊙u⊙φ'(g), du += dout⊙φ(g). Either may be NULL. */
void tr_glu_backward_f32(float *dg /* [n] or NULL */, float *du /* [n] or NULL */, const float *dout /* [n] */,
                         const float *g /* [n] */, const float *u /* [n] */, size_t n, steer_act act);

/* ---------------------------------------------------------------- soft-cap */

/* out = cap·tanh(inp/cap) (final logits of Gemma 2). out may alias inp. */
void tr_softcap_forward_f32(float *out /* [n] */, const float *inp /* [n] */, size_t n, float cap);
/* dinp += dout⊙(1 − (out/cap)²), from the forward's OUTPUT (so the forward
 * may run in place). */
void tr_softcap_backward_f32(float *dinp /* [n] */, const float *dout /* [n] */, const float *out /* [n] */,
                             size_t n, float cap);

/* ---------------------------------------------------------------- residual */

/* out = a + b. out may alias a or b. */
void tr_residual_forward_f32(float *out /* [n] */, const float *a /* [n] */, const float *b /* [n] */, size_t n);
/* da += dout, db += dout. Either may be NULL. */
void tr_residual_backward_f32(float *da /* [n] or NULL */, float *db /* [n] or NULL */,
                              const float *dout /* [n] */, size_t n);

/* ---------------------------------------------------------------- losses */

/* losses[n] = logsumexp(logits[n, :]) − logits[n, targets[n]] (natural log;
 * max-shifted, sums in double), and 0 where targets[n] < 0 (not in the loss).
 * Targets must be < V. Returns the number of counted rows. */
int tr_crossentropy_forward_f32(float *losses /* [N] */, const float *logits /* [N, V] */,
                                const int *targets /* [N], -1 = ignored */, int N, int V);
/* Fused softmax + cross-entropy backward:
 *   dlogits[n, v] += dlosses[n]·(softmax(logits[n])_v − [v == targets[n]])
 * for counted rows (ignored rows get nothing). dlosses[n] = ∂L/∂losses[n] is
 * the caller's choice: for the mean over counted rows L = Σ losses / n_counted,
 * pass dlosses[n] = 1/n_counted (times dL from above). The softmax is
 * recomputed from the logits (no [N, V] probability buffer is saved). */
void tr_crossentropy_softmax_backward_f32(float *dlogits /* [N, V] */, const float *dlosses /* [N] */,
                                          const float *logits /* [N, V] */,
                                          const int *targets /* [N], -1 = ignored */, int N, int V);

/* Forward KL, for distillation: losses[n] = KL(P_teacher ‖ P_student) =
 * Σ_v p_v·(teacher_logp[n, v] − log_softmax(logits[n])_v), p = exp(teacher_logp)
 * (terms with p = 0, e.g. teacher_logp = −inf, count 0). Rows with
 * mask[n] == 0 are not in the loss (loss 0); mask NULL = every row.
 * Returns the number of counted rows. */
int tr_kl_forward_f32(float *losses /* [N] */, const float *logits /* [N, V] student */,
                      const float *teacher_logp /* [N, V] */, const int *mask /* [N] or NULL */, int N, int V);
/* dlogits[n, v] += dlosses[n]·(q_v·S − p_v), q = softmax(logits[n]),
 * S = Σ_v p_v (1 for a normalised teacher; kept so the gradient is exact for
 * a truncated one). */
void tr_kl_backward_f32(float *dlogits /* [N, V] */, const float *dlosses /* [N] */,
                        const float *logits /* [N, V] */, const float *teacher_logp /* [N, V] */,
                        const int *mask /* [N] or NULL */, int N, int V);

/* Reverse KL, the direction of SPEC E1/E3(d): losses[n] = KL(P_student ‖
 * P_teacher) = Σ_v q_v·(log q_v − teacher_logp[n, v]). Infinite where the
 * teacher gives 0 to a token the student does not. Mask as tr_kl_forward. */
int tr_kl_reverse_forward_f32(float *losses /* [N] */, const float *logits /* [N, V] student */,
                              const float *teacher_logp /* [N, V] */, const int *mask /* [N] or NULL */, int N,
                              int V);
/* dlogits[n, v] += dlosses[n]·q_v·(log q_v − teacher_logp[n, v] − losses[n]). */
void tr_kl_reverse_backward_f32(float *dlogits /* [N, V] */, const float *dlosses /* [N] */,
                                const float *logits /* [N, V] */, const float *teacher_logp /* [N, V] */,
                                const int *mask /* [N] or NULL */, int N, int V);

#endif /* STEER_TRAIN_OPS_H */

/* tolerances.h — every numeric tolerance the tests use, with its reason. */
#ifndef STEER_TOLERANCES_H
#define STEER_TOLERANCES_H

/* Logits vs golden llama2.c / llama.cpp outputs (float32 both sides; the
 * references differ from each other by 1.1e-5..1.6e-5 on stories260K and from
 * an f64 reference by 2.4e-6 on the llama fixture). The issue asks for 1e-4. */
#define TOL_LOGITS_GOLDEN 1e-4

/* Same model from two file formats (.bin vs .gguf hold bit-identical f32
 * weights): only summation order could differ, and it does not. */
#define TOL_LOGITS_FORMATS 1e-6

/* The same model from a Hugging Face directory and from llama.cpp's GGUF
 * conversion of it: f32 weights are identical, but Gemma norms are stored as
 * w (HF, 1 + w added at load in f32) or as 1 + w rounded to f32 (GGUF), and
 * llama-family q/k rows are permuted (different RoPE pairing, same math):
 * float32 rounding only. */
#define TOL_LOGITS_FORMATS_CONVERTED 1e-5

/* Batched vs token-by-token evaluation, a sequence alone vs inside a
 * multi-sequence batch, and 1 vs 2 threads: the bound. The matmul
 * kernel is batch-invariant (ops.c), so we observe 0; an sgemm-based path
 * re-associates and measured 1.2e-5..2.1e-5 on stories260K, which fails it. */
#define TOL_BATCH_VS_SEQ 1e-5

/* Adding v at attn_out vs at resid_mid: (x + (a + v)) vs ((x + a) + v) differ
 * by one float32 rounding (~1e-7 relative) per element, carried through the
 * later layers into logits of magnitude ~20 (measured up to 6.7e-6). */
#define TOL_SITE_EQUIV 1e-4

/* Hook invariants that are exact in real arithmetic but pass through a
 * different float path (e.g. resid_post → final norm → head vs the forward's
 * own head: identical ops, so tight). */
#define TOL_HOOK_EXACT 1e-6

/* Projection onto an ablated unit direction after ablation: one float32 dot
 * product of length d of values of order |h| ~ 10. */
#define TOL_ABLATE 1e-4


/* Reduced-precision conversion (test_convert) — BF16 keeps 8 significant bits (7 stored + the implicit
 * one), so round-to-nearest leaves a relative error of at most u = 2^-8 per
 * weight (2^-9 on average), uniformly distributed: an RMS of at most u/√3. Each rounded matrix perturbs its output
 * by about that relative amount (independent errors over a dot product scale
 * like the product itself), and the perturbations of the n_mat matrices on the
 * path to the logits add up like a random walk, so the logits move by about
 * u/√3 · √n_mat · max|logit| (n_mat = 7 per layer + head). We allow 4 such
 * sigmas (the maximum over 30 × 512 logits is ~4σ of a normal sample); the
 * measured values are printed. F16 (11 significant bits) uses u = 2^-11. */
#define TOL_BF16_SIGMAS 4.0

/* ---------------------------------------------------------------- training ops
 * (test_train_ops; the reasons are why each value is what it is)
 *
 * Central differences in double: error ≈ h²·|f'''|/6 (truncation) +
 * ε·|L|/h (rounding of L, ε = 1.1e-16, |L| ~ 1..10).
 * - Linear ops (embedding, matmul per operand, RoPE, residual): L is linear
 *   in each operand, so there is no truncation term at all; h = 1e-2 and only
 *   rounding remains (measured ≤ 5e-14); tolerance 1e-11.
 * - Smooth element-wise ops (GLU, soft-cap): h = 1e-5, both terms ~1e-11..1e-10
 *   (measured ≤ 1e-10); tolerance 1e-8.
 * - Row ops with several saturating non-linearities (attention with softmax
 *   and tanh cap, cross-entropy, KL): h = 1e-5, measured ≤ 7e-10;
 *   tolerance 1e-8.
 * - RMSNorm: the test includes a row of norm ~0.01 (where eps matters), whose
 *   third derivative grows like rstd³ ~ 1e6, so h = 1e-6 (truncation 100x
 *   smaller than at 1e-5, where it measured 4e-8; rounding ε·|L|/h ~ 1e-9
 *   against gradients ~100); measured ≤ 4.1e-10; tolerance 1e-8.
 * A 1% error in any gradient gives 1e-2, six orders above every tolerance, and
 * the wrong backwards measure ~1e-3 … 1.5, so the checks are sharp.
 */
#define TOL_GRAD_LINEAR 1e-11
#define TOL_GRAD_SMOOTH 1e-8
#define H_LINEAR 1e-2
#define H_SMOOTH 1e-5
#define H_RMSNORM 1e-6

/* Float instance vs double instance, normwise relative: each value is a sum
 * of K ≤ 270 float products (matmul 130x37x270) or a chain of a few float
 * operations, so its error is ~√K·ε_f … K·ε_f (ε_f = 6e-8) of the largest
 * term: measured ≤ 6e-7 (tiled matmul dinp, K = 270), ≤ 3e-7 for every other
 * op; the bound leaves a factor ~8. */
#define TOL_F32_VS_F64 5e-6
/* Float training forward vs the inference kernels: the same arithmetic in
 * the same order for RMSNorm, GLU and soft-cap (measured 0: bitwise); sgemm vs
 * the FMA dot-product kernel for matmul sum in different orders: a few ulps of
 * a 13-term sum of O(1) values. Normwise relative. */
#define TOL_F32_VS_INFERENCE 1e-6
/* Double forward vs naive double references written differently: rounding
 * of short double sums only. Normwise relative. */
#define TOL_F64_REFERENCE 1e-13

/* ---------------------------------------------------------------- training graph (test_train_grad)
 * (to move to tests/tolerances.h)
 *
 * TOL_MODEL_GRAD — double, central differences with h = H_MODEL = 1e-5:
 *   truncation h²·|L'''|/6 and rounding ε·|L|/h ≈ 1.1e-16·6/1e-5 ≈ 7e-11
 *   against gradients of 1e-3…1. Measured ≤ 4.1e-7 (KL on gemma, the most
 *   curved case); the step is near the optimum: h = 1e-4 gives 3e-6
 *   (truncation), 3e-5 gives 2.7e-7, 1e-6 gives 5.9e-6 (rounding). ReLU
 *   adapters have a kink: a pre-activation within h of 0 at a sample would
 *   show as an O(1) error (never seen with these seeds). Tolerance 1e-5: a 1%
 *   error measures 1e-2 and the deliberate bugs 1e-1…2, three or more orders
 *   above.
 * TOL_MODEL_F32_GRAD — the float instance against the double one on the same
 *   (float-rounded) parameters: every value is a chain of float sums over
 *   ≤ 300 terms through 2 blocks (each op ≤ 6e-7 relative, test_train_ops),
 *   compounded through the softmax, normalisation and attention backwards.
 *   Normwise per tensor with the floor 1e-2 of the largest gradient: measured
 *   ≤ 3.9e-6; tolerance 5e-5.
 * TOL_MODEL_F32_LOGITS — the same for logits and loss: measured ≤ 7e-7
 *   (normwise relative); tolerance 1e-5.
 * TOL_TRAIN_VS_INFERENCE — float training forward (sgemm, 8-way dot products)
 *   against steer_forward (its FMA dot-product kernel): the same operations
 *   in other summation orders, ~1e-7 relative per op, through ≤ 5 blocks:
 *   normwise relative over all logits, measured ≤ 7e-7; tolerance 1e-5.
 * TOL_SITE_GRAD — two analytic gradients in double that differ only in the
 *   order of a sum over rows (measured 0): 1e-12.
 * TOL_ORTHO — float Gram–Schmidt (sums in double): |R·Rᵀ − I| and the cosine
 *   of W_down rows with B's columns after the projection, measured ≤ 4e-8,
 *   ~float ε: 1e-5.
 */
#define H_MODEL 1e-5
#define TOL_MODEL_GRAD 1e-5
#define TOL_MODEL_F32_GRAD 5e-5
#define TOL_MODEL_F32_LOGITS 1e-5
#define TOL_TRAIN_VS_INFERENCE 1e-5
#define TOL_SITE_GRAD 1e-12
#define TOL_ORTHO 1e-5

#endif

/*
 * kern_body.h — the matmul and attention kernels, written once against a
 * small vector layer and included by each kernel path's translation unit
 * (kern_scalar.c, kern_avx2.c, kern_avx512.c; kern.h). Not a header for
 * anyone else.
 *
 * The including file defines, before including this one:
 *   KERN_TABLE, KERN_NAME, KERN_NEEDS  the ops_kernels object to define, its name and features
 *   VW                 f32 lanes per vector (8 or 16)
 *   vf                 the vector type; vf_zero(), vf_load(p), vf_store(p, v),
 *                      vf_fma(a, b, c) = a·b + c per lane, vf_set1(f),
 *                      VF_IN_REG(v), vf_hsum(v) (the fixed lane tree),
 *                      optionally KERN_SOFTMAX(x, n) (the attention
 *                      softmax; default ops_softmax), KERN_GLU (ops_glu's
 *                      signature; default ops_glu_plain), VF_HSUM8 and vf_hsum8(a, o): o[c] =
 *                      vf_hsum(a[c]) for c < 8, the same bits (a default
 *                      below calls vf_hsum 8 times),
 *                      vf_load_w(w, dt, k): VW weights of dtype dt (F32, BF16,
 *                      F16) at element k, widened to f32 exactly
 *
 * The matmul is batch-invariant: every output element out[i, r] =
 * dot(in[i, :], W[r, :]) is one dot product computed in a fixed order that
 * depends only on K = W.cols and VW:
 *
 *   1. VW lane accumulators: lane j sums x[k]·w[k] over k ≡ j (mod VW),
 *      k < KV = K & ~(VW-1), with FMA, in increasing k;
 *   2. the lanes summed in a fixed tree (vf_hsum);
 *   3. the tail k = KV .. K-1 added with fmaf, in order.
 *
 * bf16 weights sum by pairs of columns instead (mm_pairs, mm_pack): step 1
 * runs over KV = K & ~(2·VW-1) in blocks of 2·VW columns, lane j adding
 * x[k]·w[k] then x[k+1]·w[k+1] at k = 2·VW·m + 2j; steps 2 and 3 as above
 * (the tail is up to 2·VW-1 columns).
 *
 * Nothing else: not n (rows in the batch), not which rows are batched
 * together, not the thread split, not the tile an element falls in. So a
 * prompt processed as one batch gives bitwise the logits of token-by-token
 * decoding, and a sequence gives the same logits alone or batched with
 * others. The scalar path (VW 8, plain loops with fmaf) gives the avx2
 * path's bits; avx512 (VW 16) sums in another order.
 *
 * How it is made fast without changing that order (issue 9):
 *   - a register-tiled micro-kernel computes MI x MR = up to 4 input rows x 3
 *     weight rows of dot products together (12 accumulators + 3 weight
 *     vectors + 1 input vector = the 16 AVX2 registers): each loaded weight
 *     vector is used for 4 inputs and each input vector for 3 weight rows.
 *     MI, MR and the weight dtype are compile-time constants in every
 *     instantiation, so the accumulators stay in registers. Edge tiles
 *     (n or rows not a multiple of 4 or 3) are smaller instantiations of the
 *     same code: the per-element operations are identical.
 *   - K is processed in blocks of MM_KC columns; between blocks the VW lane
 *     accumulators of each element are stored to a scratch buffer and loaded
 *     back (exact), so blocking does not change the arithmetic either. One
 *     input row read in place (generation) is not blocked: each weight row
 *     then streams from start to end.
 *   - for n >= MM_PACK_F32 (f32) or MM_PACK_BF16 (bf16) a thread copies or
 *     converts each [MM_RB, MM_KC] block of weights to f32 once into a
 *     per-thread buffer ("packing": exact; bf16 in the pairs' layout) and
 *     runs up to MM_NB input rows against it; otherwise (generation, small
 *     batches, f16) the micro-kernel reads the mapped weights directly and
 *     converts f16 (vcvtph2ps) on the fly, or bf16 by pairs of columns (two
 *     vectors from one load, no shuffle: mm_pairs).
 *   - threads take chunks of <= MM_RB weight rows from a shared counter.
 */

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MM_MI 4        /* input rows per micro-tile                          */
#define MM_MR 3        /* weight rows per micro-tile                         */
#ifndef MM_RB
#define MM_RB 36       /* weight rows per panel (a multiple of MM_MR)        */
#endif
#ifndef MM_KC
#define MM_KC 512      /* columns per K block (a multiple of VW)             */
#endif
#ifndef MM_NB
#define MM_NB 128      /* input rows per block (accumulators [MM_NB, MM_RB, VW]) */
#endif
/* Weight blocks are converted to f32 in a per-thread buffer ("packed") when n
 * is at least this (per dtype); below it the micro-kernel reads the mapped
 * weights directly. Measured on AVX2 (docs/PERFORMANCE.md): f32 packing pays
 * from n ~ 16; bf16 packing (in the pairs' layout) is even with the direct
 * path from n ~ 64; f16 direct (vcvtph2ps from memory) beat packing at every
 * n up to 256. */
#ifndef MM_PACK_F32
#define MM_PACK_F32 16
#endif
#ifndef MM_PACK_BF16
#define MM_PACK_BF16 64
#endif
#ifndef MM_PACK_F16
#define MM_PACK_F16 INT_MAX
#endif
/* Below this many multiply-adds (n·rows·cols) the product runs on the
 * calling thread: an OpenMP region costs more than it saves (measured:
 * docs/PERFORMANCE.md). */
#define MM_PARALLEL_MACS (1L << 20)

/* The attention softmax: a path may bring its own (KERN_SOFTMAX, e.g. vector
 * exp); otherwise ops_softmax. */
#ifndef KERN_SOFTMAX
#define KERN_SOFTMAX ops_softmax
#endif

#ifndef VF_HSUM8
static inline void vf_hsum8(const vf *a, float *o)
{
    for (int c = 0; c < 8; c++) o[c] = vf_hsum(a[c]);
}
#endif

/*
 * Micro-kernel: for i < MI, r < MR, lanes of element (i, r) += x[i, 0..kl) ·
 * w[r, 0..kl) (VW lanes, k ascending). x: rows at stride ldx floats; w: rows
 * at stride ldw elements of dtype DT; acc: [MI][lda] vector slots, slot
 * (i, r) at acc + (i·lda + r)·VW floats; first: start from zero instead of
 * acc. kl is a multiple of VW. MI, MR and DT are constants at every call
 * site (always inlined into the instantiations below), so the loops unroll
 * and the 12 accumulators live in registers.
 */
static inline __attribute__((always_inline)) void mm_micro(const int MI, const int MR, const steer_dtype DT,
                                                           const float *x, size_t ldx, const void *w, size_t ldw,
                                                           int kl, float *acc, size_t lda, int first)
{
    const size_t esz = DT == STEER_DTYPE_F32 ? 4 : 2;
    const uint8_t *wb = w;
    vf a[MM_MI][MM_MR];
#pragma GCC unroll 4
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 3
        for (int r = 0; r < MR; r++) a[i][r] = first ? vf_zero() : vf_load(acc + (i * lda + (size_t)r) * VW);
    for (int k = 0; k < kl; k += VW) {
        vf wv[MM_MR];
#pragma GCC unroll 3
        for (int r = 0; r < MR; r++) {
            wv[r] = vf_load_w(wb + (size_t)r * ldw * esz, DT, (size_t)k);
            VF_IN_REG(wv[r]);
        }
#pragma GCC unroll 4
        for (int i = 0; i < MI; i++) {
            vf xv = vf_load(x + (size_t)i * ldx + k);
            VF_IN_REG(xv);
#pragma GCC unroll 3
            for (int r = 0; r < MR; r++) a[i][r] = vf_fma(xv, wv[r], a[i][r]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 3
        for (int r = 0; r < MR; r++) vf_store(acc + (i * lda + (size_t)r) * VW, a[i][r]);
}

typedef void (*mm_micro_fn)(const float *x, size_t ldx, const void *w, size_t ldw, int kl, float *acc, size_t lda,
                            int first);

/* One input row against MM_GV weight rows read where they are: the direct
 * path's one-row tiles (generation, n = 1). With a single input no weight
 * vector is reused, so the tile is wide instead of tall: 12 independent
 * accumulators hide the FMA latency that the 1 x 3 tile's 3 chains expose.
 * Per element the same operations in the same order as mm_micro (bitwise
 * equal; test_ops). acc: slot r at acc + r·VW. */
#define MM_GV 12
static inline __attribute__((always_inline)) void mm_gemv(const steer_dtype DT, const float *x, const void *w,
                                                          size_t ldw, int kl, float *acc, int first)
{
    const size_t esz = DT == STEER_DTYPE_F32 ? 4 : 2;
    const uint8_t *wb = w;
    vf a[MM_GV];
#pragma GCC unroll 12
    for (int r = 0; r < MM_GV; r++) a[r] = first ? vf_zero() : vf_load(acc + (size_t)r * VW);
    for (int k = 0; k < kl; k += VW) {
        vf xv = vf_load(x + k);
        VF_IN_REG(xv);
#pragma GCC unroll 12
        for (int r = 0; r < MM_GV; r++) a[r] = vf_fma(xv, vf_load_w(wb + (size_t)r * ldw * esz, DT, (size_t)k), a[r]);
    }
#pragma GCC unroll 12
    for (int r = 0; r < MM_GV; r++) vf_store(acc + (size_t)r * VW, a[r]);
}

typedef void (*mm_gemv_fn)(const float *x, const void *w, size_t ldw, int kl, float *acc, int first);
#define MM_GV_DEF(DT, NAME)                                                                                 \
    static void mm_gemv_##NAME(const float *x, const void *w, size_t ldw, int kl, float *acc, int first) \
    {                                                                                                       \
        mm_gemv(DT, x, w, ldw, kl, acc, first);                                                             \
    }
MM_GV_DEF(STEER_DTYPE_F32, f32)
MM_GV_DEF(STEER_DTYPE_F16, f16)

/*
 * bf16 weights by pairs of columns (the direct path's bf16 kernels). One
 * load of 2·VW bf16 gives two exact f32 vectors without a shuffle
 * (vf_bf16_even: the 32-bit words shifted left by 16; vf_bf16_odd: the
 * words with the low half cleared), so the inputs are
 * split once per call into the same layout (kern_bf16_split: per block of
 * 2·VW columns below KV, the VW even columns then the VW odd ones; the tail
 * as it is). Lane j of element (i, r) then adds x[k]·w[k] and x[k+1]·w[k+1]
 * at k = 2·VW·m + 2j, m ascending; kl is a multiple of 2·VW. MI x MR as
 * mm_micro, 1 x MM_GV as mm_gemv; acc and first as there.
 */
static inline __attribute__((always_inline)) void mm_pairs(const int MI, const int MR, const float *x, size_t ldx,
                                                           const void *w, size_t ldw, int kl, float *acc, size_t lda,
                                                           int first)
{
    const uint16_t *wb = w;
    vf a[MM_MI][MM_GV];
#pragma GCC unroll 4
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) a[i][r] = first ? vf_zero() : vf_load(acc + (i * lda + (size_t)r) * VW);
    for (int k = 0; k < kl; k += 2 * VW) {
        if (MI == 1) { /* one input row (MR up to MM_GV): each weight row's two vectors in turn */
            const vf xe = vf_load(x + k), xo = vf_load(x + k + VW);
#pragma GCC unroll 12
            for (int r = 0; r < MR; r++) {
                a[0][r] = vf_fma(xe, vf_bf16_even(wb + (size_t)r * ldw + k), a[0][r]);
                a[0][r] = vf_fma(xo, vf_bf16_odd(wb + (size_t)r * ldw + k), a[0][r]);
            }
            continue;
        }
        /* the even columns of the MR rows against every input, then the odd
         * ones: MR weight vectors, one input vector and the MI·MR
         * accumulators in registers, as mm_micro */
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) { /* h = 0: even columns, 1: odd */
            vf wv[MM_MR];
#pragma GCC unroll 3
            for (int r = 0; r < MR; r++) {
                wv[r] = h ? vf_bf16_odd(wb + (size_t)r * ldw + k) : vf_bf16_even(wb + (size_t)r * ldw + k);
                VF_IN_REG(wv[r]);
            }
#pragma GCC unroll 4
            for (int i = 0; i < MI; i++) {
                vf xv = vf_load(x + (size_t)i * ldx + k + (size_t)h * VW);
                VF_IN_REG(xv);
#pragma GCC unroll 3
                for (int r = 0; r < MR; r++) a[i][r] = vf_fma(xv, wv[r], a[i][r]);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) vf_store(acc + (i * lda + (size_t)r) * VW, a[i][r]);
}
/* MI x 3 tiles with MI >= 2 on 8 lanes run as rows 0-1, then row 2: on
 * AVX2 a 4 x 3 tile's 12 accumulators, its weight vectors and the widening's
 * temporary would not fit 16 registers (AVX-512 has 32). Split here, not
 * inside mm_pairs: an always-inline function may not call itself (GCC
 * refuses it at -O0). */
#define MM_PAIRS_DEF(MI, MR)                                                                                     \
    static void mm_pairs_##MI##x##MR(const float *x, size_t ldx, const void *w, size_t ldw, int kl, float *acc, \
                                     size_t lda, int first)                                                      \
    {                                                                                                            \
        if (VW == 8 && (MI) >= 2 && (MR) == 3) {                                                                 \
            mm_pairs(MI, 2, x, ldx, w, ldw, kl, acc, lda, first);                                                \
            mm_pairs(MI, 1, x, ldx, (const uint16_t *)w + 2 * ldw, ldw, kl, acc + 2 * VW, lda, first);          \
        } else {                                                                                                 \
            mm_pairs(MI, MR, x, ldx, w, ldw, kl, acc, lda, first);                                               \
        }                                                                                                        \
    }
MM_PAIRS_DEF(1, 1) MM_PAIRS_DEF(1, 2) MM_PAIRS_DEF(1, 3) MM_PAIRS_DEF(2, 1) MM_PAIRS_DEF(2, 2) MM_PAIRS_DEF(2, 3)
MM_PAIRS_DEF(3, 1) MM_PAIRS_DEF(3, 2) MM_PAIRS_DEF(3, 3) MM_PAIRS_DEF(4, 1) MM_PAIRS_DEF(4, 2) MM_PAIRS_DEF(4, 3)
static void mm_gemv_bf16(const float *x, const void *w, size_t ldw, int kl, float *acc, int first)
{
    mm_pairs(1, MM_GV, x, 0, w, ldw, kl, acc, 1, first);
}
static const mm_gemv_fn mm_gemv_table[3] = {mm_gemv_f32, mm_gemv_bf16, mm_gemv_f16};

/* The end of the lane columns: K & ~(2·VW-1) for bf16 (pairs), else K & ~(VW-1). */
static inline int kern_lane_end(steer_dtype dt, int K)
{
    return dt == STEER_DTYPE_BF16 ? K & ~(2 * VW - 1) : K & ~(VW - 1);
}

/* xs[n, K] = in in the pairs' layout (mm_pairs). */
static void kern_bf16_split(float *xs, const float *in, int n, int K)
{
    const int KV = kern_lane_end(STEER_DTYPE_BF16, K);
    for (int i = 0; i < n; i++) {
        const float *x = in + (size_t)i * K;
        float *o = xs + (size_t)i * K;
        for (int k = 0; k < KV; k += 2 * VW)
            for (int j = 0; j < VW; j++) {
                o[k + j] = x[k + 2 * j];
                o[k + VW + j] = x[k + 2 * j + 1];
            }
        for (int k = KV; k < K; k++) o[k] = x[k];
    }
}

#define MM_DEF(MI, MR, DT, NAME)                                                                                  \
    static void mm_##NAME##_##MI##x##MR(const float *x, size_t ldx, const void *w, size_t ldw, int kl, float *acc, \
                                         size_t lda, int first)                                                   \
    {                                                                                                             \
        mm_micro(MI, MR, DT, x, ldx, w, ldw, kl, acc, lda, first);                                                \
    }
#define MM_DEF_MR(MI, DT, NAME) MM_DEF(MI, 1, DT, NAME) MM_DEF(MI, 2, DT, NAME) MM_DEF(MI, 3, DT, NAME)
#define MM_DEF_ALL(DT, NAME) MM_DEF_MR(1, DT, NAME) MM_DEF_MR(2, DT, NAME) MM_DEF_MR(3, DT, NAME) MM_DEF_MR(4, DT, NAME)
MM_DEF_ALL(STEER_DTYPE_F32, f32)
MM_DEF_ALL(STEER_DTYPE_F16, f16)
#define MM_ROW(MI, NAME) {mm_##NAME##_##MI##x1, mm_##NAME##_##MI##x2, mm_##NAME##_##MI##x3}
#define MM_TABLE(NAME) {MM_ROW(1, NAME), MM_ROW(2, NAME), MM_ROW(3, NAME), MM_ROW(4, NAME)}
/* [dtype: f32, bf16 (pairs), f16][MI-1][MR-1] */
static const mm_micro_fn mm_micro_table[3][MM_MI][MM_MR] = {MM_TABLE(f32), MM_TABLE(pairs), MM_TABLE(f16)};

static int mm_dtype_index(steer_dtype dt) { return dt == STEER_DTYPE_BF16 ? 1 : dt == STEER_DTYPE_F16 ? 2 : 0; }

/* dst[nr, kl] (f32, row stride MM_KC) = W rows [nr] (row stride rowb bytes)
 * from column k0, kl columns (a multiple of VW; of 2·VW for bf16), widened
 * or dequantized from dtype dt. Exact. bf16 in the pairs' layout (per 2·VW
 * columns the even ones, then the odd ones), which with inputs in that
 * layout makes the f32 micro-kernel sum by pairs as mm_pairs does. */
static void mm_pack(float *dst, const uint8_t *w, steer_dtype dt, size_t rowb, int nr, int k0, int kl)
{
    for (int r = 0; r < nr; r++) {
        const uint8_t *wr = w + (size_t)r * rowb;
        float *d = dst + (size_t)r * MM_KC;
        if (dt == STEER_DTYPE_F32) {
            memcpy(d, (const float *)wr + k0, (size_t)kl * sizeof(float));
        } else if (dt == STEER_DTYPE_BF16) { /* in the pairs' layout: the f32 kernel then sums by pairs */
            const uint16_t *w16 = (const uint16_t *)wr + k0;
            for (int k = 0; k < kl; k += 2 * VW) {
                vf_store(d + k, vf_bf16_even(w16 + k));
                vf_store(d + k + VW, vf_bf16_odd(w16 + k));
            }
        } else if (dt == STEER_DTYPE_F16) {
            for (int k = 0; k < kl; k += VW) vf_store(d + k, vf_load_w(wr, dt, (size_t)(k0 + k)));
        } else { /* quantized: whole blocks (k0 and kl are multiples of the block) */
            KERN_DEQUANT(dt, wr + q_row_bytes(dt, (size_t)k0), d, (size_t)kl);
        }
    }
}

/* out[i·ldo + r] for the ni x nr block whose accumulators are at acc (slot
 * (i, r) at (i·lda + r)·VW): the fixed lane tree, then the tail columns
 * KV..K-1 in order (KV = kern_lane_end; bf16: x in the pairs' layout, whose
 * tail is in place). x rows at stride K; w rows (dtype dt, not quantized:
 * quantized rows have no tail) at stride rowb bytes. */
static void mm_finish(float *out, size_t ldo, const float *x, const uint8_t *w, steer_dtype dt, size_t rowb, int ni,
                      int nr, int K, const float *acc, size_t lda)
{
    const int KV = kern_lane_end(dt, K);
    for (int i = 0; i < ni; i++)
        for (int r = 0; r < nr; r++) {
            float s = vf_hsum(vf_load(acc + ((size_t)i * lda + (size_t)r) * VW));
            const uint8_t *wr = w + (size_t)r * rowb;
            const float *xi = x + (size_t)i * K;
            for (int k = KV; k < K; k++) s = fmaf(xi[k], w_at(wr, dt, (size_t)k), s);
            out[(size_t)i * ldo + r] = s;
        }
}

/* One panel of weight rows [r0, r0 + nr), nr <= MM_RB, against all n inputs,
 * in input blocks of nbmax rows (<= MM_NB). pack: convert weight blocks to f32
 * in wpack [MM_RB, MM_KC] first (and copy misaligned input tiles to xpack
 * [MM_MI, MM_KC]); otherwise read the weights where they are. acc: [nbmax,
 * MM_RB, VW]. Scratch is 64-byte aligned. Either way, the same arithmetic.
 * Quantized weights are always packed (dequantized). */
static void mm_panel(float *out, const float *in, const steer_mat *W, int n, int r0, int nr, int pack, int nbmax,
                     float *wpack, float *xpack, float *acc)
{
    const int rows = W->rows, K = W->cols, KV = kern_lane_end(W->dtype, K);
    const steer_dtype dt = W->dtype;
    const size_t esz = steer_dtype_size(dt) ? steer_dtype_size(dt) : 1; /* quantized: not used */
    const size_t rowb = q_row_bytes(dt, (size_t)K);
    const uint8_t *wp = (const uint8_t *)W->data + (size_t)r0 * rowb;
    /* inputs whose rows are not vector-aligned are copied tile by tile */
    const int pack_x = pack && (((uintptr_t)in | ((size_t)K * sizeof(float))) & (VW * 4 - 1)) != 0;
    const mm_micro_fn(*tab)[MM_MR] = mm_micro_table[pack ? 0 : mm_dtype_index(dt)];
    for (int ib = 0; ib < n; ib += nbmax) {
        const int nb = n - ib < nbmax ? n - ib : nbmax;
        /* one input row read in place: no K blocks (nothing to reuse across
         * them), so each weight row streams through once from start to end */
        const int kcs = (n == 1 && !pack) ? KV : MM_KC;
        for (int kc = 0; kc < KV; kc += kcs) {
            const int kl = KV - kc < kcs ? KV - kc : kcs;
            if (pack) mm_pack(wpack, wp, dt, rowb, nr, kc, kl);
            for (int i0 = 0; i0 < nb; i0 += MM_MI) {
                const int mi = nb - i0 < MM_MI ? nb - i0 : MM_MI;
                const float *x = in + (size_t)(ib + i0) * K + kc;
                size_t ldx = (size_t)K;
                if (pack_x) { /* an aligned copy of the input tile: no loads split across cache lines */
                    for (int i = 0; i < mi; i++) memcpy(xpack + (size_t)i * MM_KC, x + (size_t)i * K, (size_t)kl * 4);
                    x = xpack;
                    ldx = MM_KC;
                }
                for (int rr = 0; rr < nr; rr += MM_MR) {
                    const int mr = nr - rr < MM_MR ? nr - rr : MM_MR;
                    float *a = acc + ((size_t)i0 * MM_RB + (size_t)rr) * VW;
                    if (mi == 1 && nr - rr >= MM_GV) { /* one input row: the wide tile */
                        if (pack)
                            mm_gemv_table[0](x, wpack + (size_t)rr * MM_KC, MM_KC, kl, a, kc == 0);
                        else
                            mm_gemv_table[mm_dtype_index(dt)](x, wp + ((size_t)rr * K + (size_t)kc) * esz, (size_t)K,
                                                              kl, a, kc == 0);
                        rr += MM_GV - MM_MR;
                        continue;
                    }
                    if (pack)
                        tab[mi - 1][mr - 1](x, ldx, wpack + (size_t)rr * MM_KC, MM_KC, kl, a, MM_RB, kc == 0);
                    else
                        tab[mi - 1][mr - 1](x, ldx, wp + ((size_t)rr * K + (size_t)kc) * esz, (size_t)K, kl, a,
                                            MM_RB, kc == 0);
                }
            }
        }
        if (KV == 0) memset(acc, 0, (size_t)nb * MM_RB * VW * sizeof(float));
        mm_finish(out + (size_t)ib * rows + r0, (size_t)rows, in + (size_t)ib * K, wp, dt, rowb, nb, nr, K, acc,
                  MM_RB);
    }
}

#ifdef KERN_DOT2
static void d2_matmul(float *out, const float *in, const steer_mat *W, int n);
#endif

static void kern_matmul(float *out, const float *in, const steer_mat *W, int n)
{
#ifdef KERN_DOT2
    if (W->dtype == STEER_DTYPE_BF16 && ops_precision() == STEER_PRECISION_FAST) {
        d2_matmul(out, in, W, n);
        return;
    }
#endif
    const int rows = W->rows;
    const int n_panels = (rows + MM_RB - 1) / MM_RB;
    const long macs = (long)n * rows * W->cols;
    const steer_dtype dt = W->dtype;
    const int quant = q_is_quantized(dt);
    int next_chunk = 0; /* the next chunk of rows to compute */
    const int pack = quant || n >= (dt == STEER_DTYPE_F32    ? MM_PACK_F32
                                    : dt == STEER_DTYPE_BF16 ? MM_PACK_BF16
                                                             : MM_PACK_F16);
    /* bf16: the inputs in the pairs' layout, once per call */
    float *xs = NULL;
    if (dt == STEER_DTYPE_BF16) {
        xs = malloc((size_t)n * W->cols * sizeof(float) + 1); /* + 1: never malloc(0) */
        if (!xs) { /* no memory for them: NaN, never a wrong number */
            for (size_t e = 0; e < (size_t)n * rows; e++) out[e] = NAN;
            return;
        }
        kern_bf16_split(xs, in, n, W->cols);
        in = xs;
    }
#pragma omp parallel if (macs >= MM_PARALLEL_MACS && n_panels > 1)
    {
        /* Direct path: accumulators for MM_MI inputs on the stack (4.5 or 9
         * KiB). Packed path: per-thread heap scratch (wpack 72 KiB, xpack 8
         * KiB, acc 144 or 288 KiB); if that allocation fails, the direct
         * path, which gives the same numbers (quantized weights: no direct
         * path, the panel is skipped and the output set to NaN). */
        float acc_small[MM_MI * MM_RB * VW] __attribute__((aligned(64)));
        float *scratch = NULL;
        if (pack || n > MM_MI)
            scratch = aligned_alloc(64, sizeof(float) * ((size_t)MM_RB * MM_KC + MM_MI * MM_KC + MM_NB * MM_RB * VW));
        /* Chunks of rows from a shared counter (kern.h): a panel (<= MM_RB
         * rows, a multiple of MM_GV) or smaller, >= 16 chunks a thread. */
        const int chunk = kern_chunk_rows(rows, omp_get_num_threads(), 16, MM_GV, MM_RB);
        const int n_chunks = (rows + chunk - 1) / chunk;
        for (;;) {
            const int ci = kern_chunk_next(&next_chunk);
            if (ci >= n_chunks) break;
            const int r0 = ci * chunk, nr = rows - r0 < chunk ? rows - r0 : chunk; /* <= MM_RB */
            if (scratch) {
                float *wpack = scratch, *xpack = wpack + (size_t)MM_RB * MM_KC, *acc = xpack + MM_MI * MM_KC;
                mm_panel(out, in, W, n, r0, nr, pack, MM_NB, wpack, xpack, acc);
            } else if (!quant) {
                mm_panel(out, in, W, n, r0, nr, 0, MM_MI, NULL, NULL, acc_small);
            } else {
                for (int i = 0; i < n; i++)
                    for (int r = 0; r < nr; r++) out[(size_t)i * rows + r0 + r] = NAN;
            }
        }
        free(scratch);
    }
    free(xs);
}

/* Attention values when hd is one vector: o[h] = sum over t < len of
 * w[h, t] · v[t] for the G heads of a KV head (w at stride sn, v rows at
 * stride sk), each head's FMA chain in t order as in kern_attention's
 * general loop, the G chains side by side in registers (G a constant). */
static inline __attribute__((always_inline)) void attn_values_1v(const int G, float *o, const float *w, size_t sn,
                                                                  const float *v, size_t sk, int len)
{
    vf acc[8];
    for (int h = 0; h < G; h++) acc[h] = vf_zero();
    for (int t = 0; t < len; t++) {
        const vf vt = vf_load(v + (size_t)t * sk);
#pragma GCC unroll 8
        for (int h = 0; h < G; h++) acc[h] = vf_fma(vf_set1(w[(size_t)h * sn + t]), vt, acc[h]);
    }
    for (int h = 0; h < G; h++) vf_store(o + (size_t)h * VW, acc[h]);
}

/* Attention (see ops.h). Per (row i, KV head g), the nh / nkv query
 * heads that share g are done together so each cached key and value row is
 * loaded once for all of them: scores by VW-lane dot products, softmax per
 * head, then the weighted sum of values with the output row in registers
 * (8 vectors per chunk). Per score and per output element the operations
 * are those of one dot product (VW lanes, vf_hsum, the fmaf tail) and of one
 * FMA chain over t: scores of 8 keys share one vf_hsum8, and heads of one
 * vector (hd = VW) run their chains side by side (attn_values_1v), which
 * changes no bit (each chain keeps its own order). */
static void kern_attention(float *att, const float *q, const float *kc, const float *vc, const int *pos, const int *seq,
                           int n, int nh, int nkv, int hd, int n_ctx, int window, float scale, float softcap,
                           float *scores)
{
    const int group = nh / nkv, qd = nh * hd, kvd = nkv * hd, hdv = hd & ~(VW - 1);
    long work = 0; /* multiply-adds, for the threading decision */
    for (int i = 0; i < n; i++) work += (long)(pos[i] + 1) * qd * 2;
#pragma omp parallel for schedule(dynamic, 1) if (work >= (1L << 16) && n * nkv > 1)
    for (int ig = 0; ig < n * nkv; ig++) {
        const int i = ig / nkv, g = ig % nkv, p = pos[i];
        const int t0 = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0, len = p + 1 - t0;
        float *sc = scores + (size_t)omp_get_thread_num() * group * n_ctx; /* [group, n_ctx] */
        const float *ks = kc + (size_t)seq[i] * n_ctx * kvd + (size_t)g * hd; /* row t at ks + t·kvd */
        const float *vs = vc + (size_t)seq[i] * n_ctx * kvd + (size_t)g * hd;
        const float *qg = q + (size_t)i * qd + (size_t)g * group * hd; /* [group, hd] */
        float *og = att + (size_t)i * qd + (size_t)g * group * hd;     /* [group, hd] */
        int t = t0;
        if (hdv > 0) /* 8 keys at a time: one vf_hsum8 per head */
            for (; t + 8 <= p + 1; t += 8) {
                const float *kt = ks + (size_t)t * kvd;
                for (int h = 0; h < group; h++) {
                    const float *qh = qg + (size_t)h * hd;
                    vf a[8];
                    for (int c = 0; c < 8; c++) a[c] = vf_zero();
                    for (int j = 0; j < hdv; j += VW) {
                        const vf qv = vf_load(qh + j);
#pragma GCC unroll 8
                        for (int c = 0; c < 8; c++) a[c] = vf_fma(qv, vf_load(kt + (size_t)c * kvd + j), a[c]);
                    }
                    float *s8 = sc + (size_t)h * n_ctx + (t - t0);
                    vf_hsum8(a, s8);
                    if (hd == hdv && !(softcap > 0.0f)) {
                        for (int c = 0; c < 8; c++) s8[c] *= scale;
                        continue;
                    }
                    for (int c = 0; c < 8; c++) {
                        float s = s8[c];
                        for (int j = hdv; j < hd; j++) s = fmaf(qh[j], kt[(size_t)c * kvd + j], s);
                        s *= scale;
                        if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
                        s8[c] = s;
                    }
                }
            }
        for (; t <= p; t++) {
            const float *kt = ks + (size_t)t * kvd;
            for (int h = 0; h < group; h++) {
                const float *qh = qg + (size_t)h * hd;
                vf a = vf_zero();
                for (int j = 0; j < hdv; j += VW) a = vf_fma(vf_load(qh + j), vf_load(kt + j), a);
                float s = vf_hsum(a);
                for (int j = hdv; j < hd; j++) s = fmaf(qh[j], kt[j], s);
                s *= scale;
                if (softcap > 0.0f) s = softcap * tanhf(s / softcap);
                sc[(size_t)h * n_ctx + (t - t0)] = s;
            }
        }
        for (int h = 0; h < group; h++) KERN_SOFTMAX(sc + (size_t)h * n_ctx, len);
        /* hd of one vector and 2 to 8 heads per KV head (stories260K: hd 8
         * on AVX2, 2 heads): the heads' FMA chains side by side */
        if (hd == VW && (group == 2 || group == 4 || group == 8)) {
            const size_t sk = (size_t)kvd, sn = (size_t)n_ctx, tv = (size_t)t0 * kvd;
            if (group == 2) attn_values_1v(2, og, sc, sn, vs + tv, sk, len);
            else if (group == 4) attn_values_1v(4, og, sc, sn, vs + tv, sk, len);
            else attn_values_1v(8, og, sc, sn, vs + tv, sk, len);
            continue;
        }
        for (int h = 0; h < group; h++) {
            const float *w = sc + (size_t)h * n_ctx;
            float *o = og + (size_t)h * hd;
            for (int j0 = 0; j0 < hdv; j0 += 8 * VW) { /* up to 8 accumulators of VW floats */
                const int nc = hdv - j0 < 8 * VW ? (hdv - j0) / VW : 8;
                vf acc[8];
                for (int c = 0; c < 8; c++) acc[c] = vf_zero();
                for (int t = 0; t < len; t++) {
                    const float *vt = vs + (size_t)(t0 + t) * kvd + j0;
                    const vf wt = vf_set1(w[t]);
                    if (nc == 8) {
#pragma GCC unroll 8
                        for (int c = 0; c < 8; c++) acc[c] = vf_fma(wt, vf_load(vt + VW * c), acc[c]);
                    } else {
                        for (int c = 0; c < nc; c++) acc[c] = vf_fma(wt, vf_load(vt + VW * c), acc[c]);
                    }
                }
                for (int c = 0; c < nc; c++) vf_store(o + j0 + VW * c, acc[c]);
            }
            for (int j = hdv; j < hd; j++) {
                float s = 0.0f;
                for (int t = 0; t < len; t++) s = fmaf(w[t], vs[(size_t)(t0 + t) * kvd + j], s);
                o[j] = s;
            }
        }
    }
}

#ifdef KERN_DOT2
/*
 * bf16 weights × activations rounded to bf16, by pair dot products (fast
 * precision on CPUs with AVX512_BF16, as llama.cpp computes bf16 models):
 * vf_dot2(acc, x, w) adds, per lane j < VW, x[2j+1]·w[2j+1] and then
 * x[2j]·w[2j] to acc[j] (VDPBF16PS; the products of two bf16 are exact in
 * float). The fixed order of one output element: lane j sums the pairs at
 * k = 2·VW·m + 2j over m ascending (k < K2 = K & ~(2·VW − 1)), the lanes
 * summed by vf_hsum, then the tail k = K2 .. K−1 added with fmaf of the
 * rounded x and w, in order. Per element nothing depends on n, the tile or
 * the thread split: batch-invariant like the f32 order. The weights are read
 * where they are (no packing); the inputs are rounded to bf16 once per call.
 */
#define D2_STEP (2 * VW)

/* acc lanes of the MI x MR tile over k in [0, K2). x rows at stride ldx
 * (bf16), w rows at stride ldw (bf16). */
static inline __attribute__((always_inline)) void d2_micro(const int MI, const int MR, const uint16_t *x, size_t ldx,
                                                           const uint16_t *w, size_t ldw, int K2, vf *acc)
{
    vf a[4][12];
#pragma GCC unroll 4
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) a[i][r] = vf_zero();
    for (int k = 0; k < K2; k += D2_STEP)
#pragma GCC unroll 4
        for (int i = 0; i < MI; i++)
#pragma GCC unroll 12
            for (int r = 0; r < MR; r++) a[i][r] = vf_dot2(a[i][r], x + (size_t)i * ldx + k, w + (size_t)r * ldw + k);
#pragma GCC unroll 4
    for (int i = 0; i < MI; i++)
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) acc[i * MR + r] = a[i][r];
}

typedef void (*d2_fn)(const uint16_t *x, size_t ldx, const uint16_t *w, size_t ldw, int K2, vf *acc);
#define D2_DEF(MI, MR)                                                                                   \
    static void d2_##MI##x##MR(const uint16_t *x, size_t ldx, const uint16_t *w, size_t ldw, int K2, vf *acc) \
    {                                                                                                    \
        d2_micro(MI, MR, x, ldx, w, ldw, K2, acc);                                                       \
    }
D2_DEF(1, 1) D2_DEF(1, 2) D2_DEF(1, 3) D2_DEF(2, 1) D2_DEF(2, 2) D2_DEF(2, 3) D2_DEF(3, 1) D2_DEF(3, 2) D2_DEF(3, 3)
D2_DEF(4, 1) D2_DEF(4, 2) D2_DEF(4, 3) D2_DEF(1, 12)
static const d2_fn d2_table[4][3] = {{d2_1x1, d2_1x2, d2_1x3}, {d2_2x1, d2_2x2, d2_2x3}, {d2_3x1, d2_3x2, d2_3x3},
                                     {d2_4x1, d2_4x2, d2_4x3}};

static void d2_finish(float *o, const uint16_t *xr, const uint16_t *wr, int K2, int K, vf acc)
{
    float s = vf_hsum(acc);
    for (int k = K2; k < K; k++) s = fmaf(ops_bf16_to_f32(xr[k]), ops_bf16_to_f32(wr[k]), s);
    *o = s;
}

static void d2_matmul(float *out, const float *in, const steer_mat *W, int n)
{
    const int rows = W->rows, K = W->cols, K2 = K & ~(D2_STEP - 1);
    const uint16_t *wd = W->data;
    uint16_t *xb = malloc((size_t)n * K * sizeof(uint16_t) + 1);
    if (!xb) { /* no memory for the rounded inputs: NaN, never a wrong number */
        for (size_t i = 0; i < (size_t)n * rows; i++) out[i] = NAN;
        return;
    }
    for (size_t i = 0; i < (size_t)n * K; i++) xb[i] = ops_f32_to_bf16(in[i]);
    const long macs = (long)n * rows * K;
    int next_chunk = 0;
#pragma omp parallel if (macs >= MM_PARALLEL_MACS && rows > MM_RB)
    {
        /* chunks of rows from a shared counter, as kern_matmul; a chunk
         * (<= MM_RB rows) stays in cache across the input tiles */
        const int chunk = kern_chunk_rows(rows, omp_get_num_threads(), 16, 12, MM_RB);
        const int n_chunks = (rows + chunk - 1) / chunk;
        vf acc[12];
        for (;;) {
            const int ci = kern_chunk_next(&next_chunk);
            if (ci >= n_chunks) break;
            const int r0 = ci * chunk, nr = rows - r0 < chunk ? rows - r0 : chunk;
            for (int i0 = 0; i0 < n; i0 += MM_MI) {
                const int mi = n - i0 < MM_MI ? n - i0 : MM_MI;
                const uint16_t *x = xb + (size_t)i0 * K;
                for (int rr = 0; rr < nr; rr += MM_MR) {
                    const uint16_t *w = wd + (size_t)(r0 + rr) * K;
                    if (mi == 1 && nr - rr >= 12) { /* one input row: the wide tile */
                        d2_1x12(x, (size_t)K, w, (size_t)K, K2, acc);
                        for (int r = 0; r < 12; r++)
                            d2_finish(out + (size_t)i0 * rows + r0 + rr + r, x, w + (size_t)r * K, K2, K, acc[r]);
                        rr += 12 - MM_MR;
                        continue;
                    }
                    const int mr = nr - rr < MM_MR ? nr - rr : MM_MR;
                    d2_table[mi - 1][mr - 1](x, (size_t)K, w, (size_t)K, K2, acc);
                    for (int i = 0; i < mi; i++)
                        for (int r = 0; r < mr; r++)
                            d2_finish(out + (size_t)(i0 + i) * rows + r0 + rr + r, x + (size_t)i * K,
                                      w + (size_t)r * K, K2, K, acc[i * mr + r]);
                }
            }
        }
    }
    free(xb);
}
#endif /* KERN_DOT2 */

#ifndef KERN_GLU
#define KERN_GLU ops_glu_plain
#endif
#ifdef KERN_DOT2
const ops_kernels KERN_TABLE = {KERN_NAME, VW, 1, KERN_NEEDS, kern_matmul, kern_attention, KERN_GLU};
#else
const ops_kernels KERN_TABLE = {KERN_NAME, VW, 0, KERN_NEEDS, kern_matmul, kern_attention, KERN_GLU};
#endif

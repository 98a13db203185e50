/*
 * test_ops.c — the batch-invariant matmul and attention kernels of every
 * kernel path (kern.h: scalar, avx2, avx512, and the 16-lane emulation of
 * the avx512 path's order, kern_emu16.c, which runs on any CPU) against the
 * double references and against themselves. A path the CPU lacks is printed
 * as SKIPPED with its name.
 *
 * Per path:
 * For f32, bf16 and f16 weights and odd shapes (rows 1..50 across panel
 * edges, cols 1..600 across K blocks and with 1..7 tail columns, n 1..70
 * across micro-tile and input-block edges):
 *   1. every element against ops_matmul_ref (double sums) within the float
 *      error bound of the kernel's summation order, TOL_MATMUL_REF(K) (bf16:
 *      by pairs of columns, TOL_MATMUL_REF_PAIRS_L);
 *   2. batch invariance, bitwise: the full batch of 70 rows against the same
 *      rows computed in chunks of every size 1..9 (so each row lands at every
 *      position inside a micro-tile, and on both the direct n < 4 path and
 *      the packed path);
 *   3. paths with the same order give the same bits: scalar = avx2, and
 *      emulated 16 lanes = avx512 (the matmul; the attention differs in its
 *      softmax's exp: glibc's expf on scalar, libmvec's 8-lane expf on avx2);
 *   4. 1 thread vs 2 threads, bitwise, on shapes large enough to run in
 *      parallel.
 * And the attention kernel (ops_attention) on odd head sizes, grouped-query
 * ratios (1, 2, 3, 4, 8: each head's values alone, or 2, 4 and 8 heads side
 * by side when hd is one vector), sliding windows, soft-capping and two
 * sequences:
 *   5. every element against ops_attention_ref (double) within
 *      TOL_ATTENTION_REF; a 1e-3 change of one cached value is detected;
 *      the batch against row-by-row calls and 1 against 2 threads, bitwise.
 * And the GLU activations (ops_glu):
 *   6. SiLU, GELU-tanh and ReLU against the formula in double within
 *      TOL_GLU_REF; in place gives the same bits.
 */
#include "model.h"
#include "kern.h"
#include "data.h"
#include "test_util.h"

#include <omp.h>
#include <stdint.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

typedef struct {
    steer_mat W;
    void *wdata;
    float *wf; /* the weights widened to f32 (for the |x||w| bound) */
} tmat;

static tmat make_mat(steer_dtype dt, int rows, int cols)
{
    tmat m;
    const size_t nw = (size_t)rows * cols;
    m.wf = malloc(nw * sizeof(float));
    m.wdata = malloc(nw * steer_dtype_size(dt));
    for (size_t i = 0; i < nw; i++) {
        /* mixed magnitudes so that lanes carry different exponents */
        float v = frand() * ((i % 5) == 0 ? 4.0f : 0.25f);
        if (dt == STEER_DTYPE_F32) {
            ((float *)m.wdata)[i] = v;
        } else if (dt == STEER_DTYPE_BF16) {
            ((uint16_t *)m.wdata)[i] = ops_f32_to_bf16(v);
        } else {
            ((uint16_t *)m.wdata)[i] = q_f32_to_f16(v);
        }
    }
    ops_to_f32(m.wf, m.wdata, dt, nw);
    m.W = (steer_mat){m.wdata, dt, rows, cols};
    return m;
}

static void free_mat(tmat *m)
{
    free(m->wdata);
    free(m->wf);
}

static const char *dt_name(steer_dtype dt)
{
    return dt == STEER_DTYPE_F32 ? "f32" : dt == STEER_DTYPE_BF16 ? "bf16" : "f16";
}

extern const ops_kernels ops_kern_emu16;     /* kern_emu16.c */
extern const ops_kernels ops_kern_emu16bf16; /* kern_emu16bf16.c */

/* bf16 weights at fast precision on a path with pair dot products
 * (kern_body.h, KERN_DOT2): against the double reference of the f32 inputs
 * within TOL_MATMUL_DOT2 (the inputs are rounded to bf16), batch and thread
 * invariance bitwise; against *emu (the same order in C) informational
 * only: the emulation does not flush denormals as the instruction does. */
static void test_dot2(const ops_kernels *k, const ops_kernels *emu)
{
    static const int rows_l[] = {1, 5, 13, 40};
    static const int cols_l[] = {1, 31, 32, 33, 100, 640, 1030};
    static const int ns[] = {1, 3, 4, 5, 9, 70};
    const int NMAX = 70;
    long n_cmp = 0, n_bad = 0, n_batch_bad = 0, n_emu_diff = 0;
    double worst = 0.0;
    steer_set_precision(STEER_PRECISION_FAST);
    printf("-- path %s: bf16 weights x bf16-rounded inputs (fast precision)\n", k->name);
    for (size_t ri = 0; ri < sizeof rows_l / sizeof rows_l[0]; ri++)
        for (size_t ci = 0; ci < sizeof cols_l / sizeof cols_l[0]; ci++) {
            const int rows = rows_l[ri], K = cols_l[ci];
            tmat m = make_mat(STEER_DTYPE_BF16, rows, K);
            float *in = malloc((size_t)NMAX * K * sizeof(float));
            float *full = malloc((size_t)NMAX * rows * sizeof(float)), *out = malloc((size_t)NMAX * rows * sizeof(float));
            float *ref = malloc((size_t)NMAX * rows * sizeof(float));
            for (size_t i = 0; i < (size_t)NMAX * K; i++) in[i] = frand();
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                const int n = ns[ni];
                k->matmul(out, in, &m.W, n);
                ops_matmul_ref(ref, in, &m.W, n);
                for (int i = 0; i < n; i++)
                    for (int r = 0; r < rows; r++) {
                        double abs_dot = 0.0;
                        for (int kk = 0; kk < K; kk++) abs_dot += fabs((double)in[(size_t)i * K + kk] * m.wf[(size_t)r * K + kk]);
                        const double bound = TOL_MATMUL_DOT2(K) * abs_dot;
                        const double diff = fabs((double)out[(size_t)i * rows + r] - ref[(size_t)i * rows + r]);
                        n_cmp++;
                        if (!(diff <= bound)) n_bad++;
                        else if (bound > 0 && diff / bound > worst) worst = diff / bound;
                    }
            }
            k->matmul(full, in, &m.W, NMAX);
            for (int b = 1; b <= 9; b += 4) {
                for (int i0 = 0; i0 < NMAX; i0 += b) {
                    const int nb = NMAX - i0 < b ? NMAX - i0 : b;
                    omp_set_num_threads(1 + (i0 / b) % 2);
                    k->matmul(out + (size_t)i0 * rows, in + (size_t)i0 * K, &m.W, nb);
                }
                omp_set_num_threads(2);
                n_batch_bad += memcmp(out, full, (size_t)NMAX * rows * sizeof(float)) != 0;
            }
            if (emu) {
                emu->matmul(out, in, &m.W, NMAX);
                n_emu_diff += memcmp(out, full, (size_t)NMAX * rows * sizeof(float)) != 0;
            }
            free(in); free(full); free(out); free(ref);
            free_mat(&m);
        }
    printf("%-60s %ld elements, %ld outside, worst |diff|/bound = %.3f\n", "bf16 pair dots vs double reference (bound)",
           n_cmp, n_bad, worst);
    CHECK(n_bad == 0, "%s: %ld elements outside TOL_MATMUL_DOT2", k->name, n_bad);
    printf("%-60s %ld of 84 differ\n", "bf16 pair dots: batch of 70 vs chunks, 1 and 2 threads (bitwise)", n_batch_bad);
    CHECK(n_batch_bad == 0, "%s: bf16 pair dots depend on the batch or threads in %ld cases", k->name, n_batch_bad);
    if (emu) {
        char label[96];
        snprintf(label, sizeof label, "bf16 pair dots: %s vs %s", k->name, emu->name);
        printf("%-60s %ld of 28 shapes differ (informational)\n", label, n_emu_diff);
    }
    steer_set_precision(STEER_PRECISION_EXACT);
}

/* TOL_ATTENTION_REF_L for batch row i, query head h of an attention call with L lanes */
static double att_tol(const float *q, const float *kc, const int *pos, const int *seq, int i, int h, int nh, int nkv,
                      int hd, int n_ctx, int window, float scale, int L)
{
    const int qd = nh * hd, kvd = nkv * hd, p = pos[i], t0 = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
    double smax = 0.0;
    for (int t = t0; t <= p; t++) {
        double a = 0.0;
        for (int j = 0; j < hd; j++)
            a += fabs((double)q[(size_t)i * qd + (size_t)h * hd + j] *
                      kc[((size_t)seq[i] * n_ctx + t) * kvd + (size_t)(h / (nh / nkv)) * hd + j]);
        smax = fmax(smax, a * scale);
    }
    return TOL_ATTENTION_REF_L(hd, p + 1 - t0, smax, L);
}

/* Runs tests 1, 2, 4, 5 on path k; for test 3, *same (if not NULL) is the
 * path whose bits k must equal. */
static void test_path(const ops_kernels *k, const ops_kernels *same)
{
    const int L = k->lanes;
    char label[96];
    printf("-- path %s (%d lanes)\n", k->name, L);
    static const steer_dtype dts[] = {STEER_DTYPE_F32, STEER_DTYPE_BF16, STEER_DTYPE_F16};
    static const int rows_l[] = {1, 3, 17, 33, 50};
    static const int cols_l[] = {1, 7, 8, 63, 65, 130, 600};
    static const int ns[] = {1, 2, 3, 4, 5, 7, 9, 17, 70};
    const int NMAX = 70;
    double worst_ratio = 0.0; /* max over elements of |out - ref| / bound */
    long n_cmp = 0, n_ref_bad = 0, n_batch_bad = 0, n_same_bad = 0;

    for (int d = 0; d < 3; d++)
        for (size_t ri = 0; ri < sizeof rows_l / sizeof rows_l[0]; ri++)
            for (size_t ci = 0; ci < sizeof cols_l / sizeof cols_l[0]; ci++) {
                const int rows = rows_l[ri], K = cols_l[ci];
                tmat m = make_mat(dts[d], rows, K);
                float *in = malloc((size_t)NMAX * K * sizeof(float));
                for (size_t i = 0; i < (size_t)NMAX * K; i++) in[i] = frand();
                float *full = malloc((size_t)NMAX * rows * sizeof(float));
                float *out = malloc((size_t)NMAX * rows * sizeof(float));
                float *ref = malloc((size_t)NMAX * rows * sizeof(float));

                /* 1. against the reference, for each n */
                for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                    const int n = ns[ni];
                    k->matmul(out, in, &m.W, n);
                    ops_matmul_ref(ref, in, &m.W, n);
                    for (int i = 0; i < n; i++)
                        for (int r = 0; r < rows; r++) {
                            double abs_dot = 0.0;
                            for (int k = 0; k < K; k++)
                                abs_dot += fabs((double)in[(size_t)i * K + k] * m.wf[(size_t)r * K + k]);
                            const double bound = (dts[d] == STEER_DTYPE_BF16 ? TOL_MATMUL_REF_PAIRS_L(K, L)
                                                                             : TOL_MATMUL_REF_L(K, L)) *
                                                 abs_dot;
                            const double diff = fabs((double)out[(size_t)i * rows + r] - ref[(size_t)i * rows + r]);
                            n_cmp++;
                            if (!(diff <= bound)) {
                                if (n_ref_bad++ < 5)
                                    fprintf(stderr, "  %s rows %d cols %d n %d: out[%d,%d] = %.9g, ref %.9g\n",
                                            dt_name(dts[d]), rows, K, n, i, r, out[(size_t)i * rows + r],
                                            ref[(size_t)i * rows + r]);
                            } else if (bound > 0 && diff / bound > worst_ratio) {
                                worst_ratio = diff / bound;
                            }
                        }
                }

                /* 2. full batch vs chunks of 1..9 rows, bitwise */
                k->matmul(full, in, &m.W, NMAX);
                for (int b = 1; b <= 9; b++) {
                    memset(out, 0xff, (size_t)NMAX * rows * sizeof(float));
                    for (int i0 = 0; i0 < NMAX; i0 += b) {
                        const int nb = NMAX - i0 < b ? NMAX - i0 : b;
                        k->matmul(out + (size_t)i0 * rows, in + (size_t)i0 * K, &m.W, nb);
                    }
                    if (memcmp(out, full, (size_t)NMAX * rows * sizeof(float)) != 0) {
                        if (n_batch_bad++ < 5)
                            fprintf(stderr, "  %s rows %d cols %d: chunks of %d differ from the batch of %d\n",
                                    dt_name(dts[d]), rows, K, b, NMAX);
                    }
                }

                /* 3. same bits as the path with the same order */
                if (same) {
                    same->matmul(out, in, &m.W, NMAX);
                    if (memcmp(out, full, (size_t)NMAX * rows * sizeof(float)) != 0) {
                        if (n_same_bad++ < 5)
                            fprintf(stderr, "  %s rows %d cols %d: differs from path %s\n", dt_name(dts[d]), rows,
                                    K, same->name);
                    }
                }
                free(in); free(full); free(out); free(ref);
                free_mat(&m);
            }
    printf("%-60s %ld elements, %ld outside, worst |diff|/bound = %.3f\n", "matmul vs double reference (bound)",
           n_cmp, n_ref_bad, worst_ratio);
    CHECK(n_ref_bad == 0, "%ld elements outside TOL_MATMUL_REF", n_ref_bad);
    printf("%-60s %ld of 105 shapes differ\n", "batch of 70 vs chunks of 1..9 (bitwise)", n_batch_bad);
    CHECK(n_batch_bad == 0, "batch invariance broken in %ld shapes", n_batch_bad);
    if (same) {
        snprintf(label, sizeof label, "%s vs %s, the same order (bitwise)", k->name, same->name);
        printf("%-60s %ld of 105 shapes differ\n", label, n_same_bad);
        CHECK(n_same_bad == 0, "path %s differs from %s in %ld shapes", k->name, same->name, n_same_bad);
    }

    /* The reference itself must be able to catch an error: one flipped
     * weight makes the kernel disagree (checks the bound is not vacuous). */
    {
        tmat m = make_mat(STEER_DTYPE_F32, 5, 130);
        float in[3 * 130], out[3 * 5], ref[3 * 5];
        for (int i = 0; i < 3 * 130; i++) in[i] = frand();
        k->matmul(out, in, &m.W, 3);
        ((float *)m.wdata)[2 * 130 + 77] += 1e-3f;
        ops_matmul_ref(ref, in, &m.W, 3);
        double abs_dot = 0.0, diff = fabs((double)out[5 + 2] - ref[5 + 2]);
        for (int k = 0; k < 130; k++) abs_dot += fabs((double)in[130 + k] * m.wf[2 * 130 + k]);
        printf("%-60s |diff| = %.3e, bound %.3e\n", "perturbed weight (1e-3) is detected", diff,
               TOL_MATMUL_REF_L(130, L) * abs_dot);
        CHECK(diff > TOL_MATMUL_REF_L(130, L) * abs_dot, "a 1e-3 weight change went undetected");
        free_mat(&m);
    }

    /* 4. threads: shapes above the parallel threshold, 1 vs 2 threads */
    {
        /* {67, 520, 300}: more input rows than one input block (MM_NB), so the packed panel is reused across blocks */
        static const int shp[][3] = {{203, 1030, 17}, {97, 2051, 9}, {1000, 300, 5}, {301, 4096, 1}, {67, 520, 300}};
        int bad = 0;
        for (int d = 0; d < 3; d++)
            for (int s = 0; s < 5; s++) {
                const int rows = shp[s][0], K = shp[s][1], n = shp[s][2];
                tmat m = make_mat(dts[d], rows, K);
                float *in = malloc((size_t)n * K * sizeof(float));
                float *o1 = malloc((size_t)n * rows * sizeof(float)), *o2 = malloc((size_t)n * rows * sizeof(float));
                float *o3 = malloc((size_t)n * rows * sizeof(float));
                for (size_t i = 0; i < (size_t)n * K; i++) in[i] = frand();
                omp_set_num_threads(1);
                k->matmul(o1, in, &m.W, n);
                omp_set_num_threads(2);
                k->matmul(o2, in, &m.W, n);
                /* and row by row */
                for (int i = 0; i < n; i++) k->matmul(o3 + (size_t)i * rows, in + (size_t)i * K, &m.W, 1);
                if (memcmp(o1, o2, (size_t)n * rows * sizeof(float)) || memcmp(o1, o3, (size_t)n * rows * sizeof(float)))
                    bad++;
                free(in); free(o1); free(o2); free(o3);
                free_mat(&m);
            }
        printf("%-60s %d of 15 differ\n", "1 thread vs 2 threads vs row by row (bitwise)", bad);
        CHECK(bad == 0, "thread split changed results in %d shapes", bad);
    }
    /* 5. attention */
    {
        static const int cfgs[][6] = {/* hd, nh, nkv, window, softcap, n_ctx */
                                      {64, 8, 2, 0, 0, 40}, {8, 4, 4, 0, 0, 23}, {12, 6, 3, 5, 0, 31},
                                      {72, 4, 1, 0, 30, 37}, {130, 2, 2, 7, 50, 29}, {3, 3, 1, 0, 0, 9},
                                      /* hd of one vector (8 or 16 lanes), 2, 4 and 8 heads per KV head: the
                                       * heads' value chains side by side (stories260K: hd 8, 8 heads, 4 KV) */
                                      {8, 8, 4, 0, 0, 27}, {8, 8, 2, 0, 0, 19}, {8, 16, 2, 4, 0, 17},
                                      {16, 8, 2, 3, 0, 21}};
        enum { N_CFG = sizeof cfgs / sizeof cfgs[0] };
        long n_el = 0, n_out = 0, n_bitwise_bad = 0;
        double worst = 0.0;
        int perturb_caught = 1;
        for (int ci = 0; ci < N_CFG; ci++) {
            const int hd = cfgs[ci][0], nh = cfgs[ci][1], nkv = cfgs[ci][2], window = cfgs[ci][3],
                      n_ctx = cfgs[ci][5];
            const float softcap = (float)cfgs[ci][4], scale = 1.0f / sqrtf((float)hd);
            const int qd = nh * hd, kvd = nkv * hd, n_seq = 2, n = 2 * n_ctx - 3;
            float *kc = malloc((size_t)n_seq * n_ctx * kvd * sizeof(float));
            float *vc = malloc((size_t)n_seq * n_ctx * kvd * sizeof(float));
            float *q = malloc((size_t)n * qd * sizeof(float));
            float *o1 = malloc((size_t)n * qd * sizeof(float)), *o2 = malloc((size_t)n * qd * sizeof(float));
            float *o3 = malloc((size_t)n * qd * sizeof(float)), *ref = malloc((size_t)n * qd * sizeof(float));
            float *sc = malloc((size_t)4 * (nh / nkv) * n_ctx * sizeof(float));
            int *pos = malloc((size_t)n * sizeof(int)), *seq = malloc((size_t)n * sizeof(int));
            for (size_t i = 0; i < (size_t)n_seq * n_ctx * kvd; i++) kc[i] = 2.0f * frand(), vc[i] = frand();
            for (size_t i = 0; i < (size_t)n * qd; i++) q[i] = 2.0f * frand();
            for (int i = 0; i < n; i++) { /* sequence 0: 0..n_ctx-1; sequence 1: a shuffled 0..n_ctx-4 */
                seq[i] = i < n_ctx ? 0 : 1;
                pos[i] = i < n_ctx ? i : (int)(((unsigned)(i - n_ctx) * 7u) % (unsigned)(n_ctx - 3));
            }
            omp_set_num_threads(2);
            k->attention(o1, q, kc, vc, pos, seq, n, nh, nkv, hd, n_ctx, window, scale, softcap, sc);
            omp_set_num_threads(1);
            k->attention(o2, q, kc, vc, pos, seq, n, nh, nkv, hd, n_ctx, window, scale, softcap, sc);
            for (int i = 0; i < n; i++)
                k->attention(o3 + (size_t)i * qd, q + (size_t)i * qd, kc, vc, pos + i, seq + i, 1, nh, nkv, hd, n_ctx,
                              window, scale, softcap, sc);
            omp_set_num_threads(2);
            n_bitwise_bad += memcmp(o1, o2, (size_t)n * qd * sizeof(float)) != 0;
            n_bitwise_bad += memcmp(o1, o3, (size_t)n * qd * sizeof(float)) != 0;
            ops_attention_ref(ref, q, kc, vc, pos, seq, n, nh, nkv, hd, n_ctx, window, scale, softcap);
            for (int i = 0; i < n; i++)
                for (int h = 0; h < nh; h++) {
                    const double tol = att_tol(q, kc, pos, seq, i, h, nh, nkv, hd, n_ctx, window, scale, L);
                    for (int j = 0; j < hd; j++) {
                        const size_t e = (size_t)i * qd + (size_t)h * hd + j;
                        const double r = fabs((double)o1[e] - ref[e]) / tol;
                        worst = fmax(worst, r);
                        n_out += r > 1.0;
                        n_el++;
                    }
                }
            /* a 1e-3 change of one cached value (sequence 0, position 4, KV head 0) moves row 5's output
             * (attending to positions <= 5) beyond the bound */
            vc[(size_t)4 * kvd] += 1e-3f;
            k->attention(o2, q, kc, vc, pos, seq, n, nh, nkv, hd, n_ctx, window, scale, softcap, sc);
            vc[(size_t)4 * kvd] -= 1e-3f;
            double moved = 0.0;
            for (int h = 0; h < nh / nkv; h++) {
                const double tol = att_tol(q, kc, pos, seq, 5, h, nh, nkv, hd, n_ctx, window, scale, L);
                moved = fmax(moved, fabs((double)o2[(size_t)5 * qd + (size_t)h * hd] - o1[(size_t)5 * qd + (size_t)h * hd]) / tol);
            }
            if (!(moved > 1.0)) perturb_caught = 0;
            free(kc); free(vc); free(q); free(o1); free(o2); free(o3); free(ref); free(sc); free(pos); free(seq);
        }
        printf("%-60s %ld elements, %ld outside, worst |diff|/bound = %.3f\n", "attention vs double reference (bound)",
               n_el, n_out, worst);
        CHECK(n_out == 0, "%ld attention outputs outside the error bound", n_out);
        printf("%-60s %ld of %d differ\n", "attention: 2 threads vs 1 vs row by row (bitwise)", n_bitwise_bad,
               2 * (int)N_CFG);
        CHECK(n_bitwise_bad == 0, "attention depends on the batch or thread count in %ld cases", n_bitwise_bad);

        printf("%-60s %s\n", "attention: perturbed cached value (1e-3) is detected", perturb_caught ? "yes" : "no");
        CHECK(perturb_caught, "a 1e-3 change of a cached value went undetected");
    }
    /* 6. the GLU activations (SiLU, GELU-tanh, ReLU) of n = 1003 (a tail of 3
     * after vectors of 8 or 16), g in [-12, 12] and u in [-1, 1], against
     * the formula in double; in place (out = g) gives the same bits */
    {
        enum { NG = 1003 };
        static const steer_act acts[] = {STEER_ACT_SILU, STEER_ACT_GELU_TANH, STEER_ACT_RELU};
        float *g = malloc(NG * sizeof(float)), *u = malloc(NG * sizeof(float)), *o = malloc(NG * sizeof(float));
        double worst = 0.0;
        long n_bad = 0, n_alias_bad = 0;
        for (int i = 0; i < NG; i++) g[i] = 12.0f * frand(), u[i] = frand();
        for (int a = 0; a < 3; a++) {
            k->glu(o, g, u, NG, acts[a]);
            for (int i = 0; i < NG; i++) {
                const double x = g[i];
                const double phi = acts[a] == STEER_ACT_SILU        ? x / (1.0 + exp(-x))
                                   : acts[a] == STEER_ACT_GELU_TANH ? 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
                                                                    : (x > 0 ? x : 0.0);
                const double ref = phi * u[i], bound = TOL_GLU_REF * 0x1p-24 * (fabs(ref) + fabs(x * u[i]));
                const double r = fabs(o[i] - ref) / bound;
                worst = fmax(worst, r);
                n_bad += !(r <= 1.0);
            }
            float *gi = malloc(NG * sizeof(float));
            memcpy(gi, g, NG * sizeof(float));
            k->glu(gi, gi, u, NG, acts[a]);
            n_alias_bad += memcmp(gi, o, NG * sizeof(float)) != 0;
            free(gi);
        }
        printf("%-60s %d elements, %ld outside, worst |diff|/bound = %.3f\n", "glu (silu, gelu-tanh, relu) vs double",
               3 * NG, n_bad, worst);
        CHECK(n_bad == 0, "%ld glu outputs outside TOL_GLU_REF", n_bad);
        CHECK(n_alias_bad == 0, "glu in place differs in %ld activations", n_alias_bad);
        free(g); free(u); free(o);
    }
}

int main(void)
{
    int n;
    const ops_kernels *const *all = ops_kern_all(&n);
    printf("CPU features: %s; path in use: %s\n", steer_cpu_features(), steer_cpu_path());
    steer_set_precision(STEER_PRECISION_EXACT); /* the f32 order for every dtype; fast: test_dot2 */
    for (int i = 0; i < n; i++) {
        if (!ops_kern_supported(all[i])) {
            printf("SKIPPED path %s: this CPU lacks some of: %s\n", all[i]->name, all[i]->needs);
            continue;
        }
        test_path(all[i], all[i] == &ops_kern_avx2 ? &ops_kern_scalar : all[i] == &ops_kern_avx512bf16 ? &ops_kern_avx512 : NULL);
        if (all[i]->dot2) test_dot2(all[i], &ops_kern_emu16bf16);
    }
    /* The avx512 path's order (16 lanes) on any CPU; on an AVX-512 CPU its bits must equal the real path's. */
    test_path(&ops_kern_emu16, ops_kern_supported(&ops_kern_avx512) ? &ops_kern_avx512 : NULL);
    test_dot2(&ops_kern_emu16bf16, NULL);
#ifdef STEER_HAVE_SIMDE
    /* The avx512 and avx512bf16 paths' own sources (vector layers included)
     * over SIMDe's portable AVX-512, on any AVX2 CPU: bitwise the 16-lane
     * emulation's matmul; the pair dots within their bound and invariant
     * (against the emulation informational: SIMDe 0.7.4's portable
     * VDPBF16PS adds a lane's two products together, then the sum to the
     * accumulator; the SDM adds them one at a time, odd first, as the
     * emulation does — measured on 160,000 lanes, 9% differ by rounding). */
    extern const ops_kernels ops_kern_simde512, ops_kern_simde512bf16;
    if (ops_kern_supported(&ops_kern_simde512)) {
        test_path(&ops_kern_simde512, &ops_kern_emu16);
        test_dot2(&ops_kern_simde512bf16, &ops_kern_emu16bf16);
    } else {
        printf("SKIPPED path %s: this CPU lacks some of: %s\n", ops_kern_simde512.name, ops_kern_simde512.needs);
    }
#else
    printf("SKIPPED paths avx512-on-simde, avx512bf16-on-simde: built without SIMDe (libsimde-dev)\n");
#endif
    return tu_finish("test_ops");
}

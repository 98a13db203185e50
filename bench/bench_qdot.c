/*
 * bench_qdot.c — the quantized-activation matmul (qdot_matmul, src/model/qdot.h:
 * activations quantized per block, integer dot products, as llama.cpp) against
 * the exact path (the kernel path's matmul: weights dequantized to f32 blocks,
 * f32 FMA) for the bench model's shapes (d 2048, ffn 8192, 8 KV heads of 64,
 * vocab 32000) with Q8_0, Q4_K and Q6_K weights, at n = 1 (generation) and
 * n = 128 (a prompt):
 *
 *   out[n, rows] = in[n, cols] · Wᵀ
 *   n = 1:   GB/s = weight bytes (rows · row bytes) / time — generation is
 *            memory-bound, so this against the read bandwidth is the figure
 *            (shapes that fit in the L3 cache can exceed it);
 *   n = 128: GFLOP/s = 2·n·rows·cols / time.
 *
 * Then "token" rows: every matrix of the bench model's forward pass for one
 * token (2 layers of q, k, v, o, gate, up, down and the head), each its own
 * allocation, in order, at n = 1 — Q8_0, and Q4_K_M as llama-quantize mixes
 * it for this model (Q6_K for the head and layer 1's attn_v and ffn_down,
 * Q4_K elsewhere): 187 M weights, more than the L3 cache, so GB/s against the
 * read bandwidth is the bandwidth-bound ratio (of_bw) of generation.
 *
 * Weights are random blocks (random level bytes, random valid f16 scales):
 * the speed of both paths does not depend on the values, and the reference
 * quantizers would take seconds for the head. err = max|qdot − exact| /
 * max|exact| (the activation quantization error, ~1e-3..1e-2).
 *
 * Timing as bench_matmul: per variant a warm-up call, then batches of >= 1 ms
 * for >= --min-time seconds (>= 3 batches), the best batch's mean per call;
 * --rounds rounds with the variants' order rotated, the best round counts.
 * Threads: OMP_NUM_THREADS. "other" = CPU time of other processes during the
 * row (bench_util.h): on a shared machine, read the figures with it.
 *
 * Usage: bench_qdot [--min-time SECONDS (0.3)] [--rounds R (3)] [--no-exact]
 */
#include "model.h"
#include "kern.h"
#include "qdot.h"
#include "quant.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rnext(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float frand(void) { return (float)((rnext() >> 40) * (1.0 / 8388608.0)) - 1.0f; }

typedef bench_mm_fn mm_fn;

static double min_time = 0.3;
static int rounds = 3;

#define time_case(fn, out, in, W, n) bench_time_mm(fn, out, in, W, n, min_time)

static void exact_matmul(float *out, const float *in, const steer_mat *W, int n) { ops_kern()->matmul(out, in, W, n); }

/* Random blocks with valid f16 scales of size ~ 1/sqrt(cols)/range. */
static void *rand_weights(steer_dtype t, int rows, int cols)
{
    const size_t rb = q_row_bytes(t, (size_t)cols);
    size_t be, bb;
    q_block(t, &be, &bb);
    uint8_t *w = aligned_alloc(64, (rb * rows + 63) & ~(size_t)63);
    if (!w) return NULL;
    for (size_t i = 0; i < rb * rows; i += 8) {
        uint64_t r = rnext();
        memcpy(w + i, &r, rb * rows - i < 8 ? rb * rows - i : 8);
    }
    int off[2] = {0, 2}, nf = 1;
    switch (t) {
    case STEER_DTYPE_Q8_0: off[0] = 0; break;
    case STEER_DTYPE_Q4_K: nf = 2; break;
    case STEER_DTYPE_Q6_K: off[0] = 208; break;
    default: break;
    }
    const float s = 1.0f / sqrtf((float)cols) / (t == STEER_DTYPE_Q8_0 ? 64.f : t == STEER_DTYPE_Q6_K ? 512.f : 128.f);
    for (size_t b = 0; b < rb * rows / bb; b++)
        for (int f = 0; f < nf; f++) {
            uint16_t h = q_f32_to_f16(s * (0.5f + 0.5f * fabsf(frand())));
            memcpy(w + b * bb + off[f], &h, 2);
        }
    return w;
}


/* ---------------------------------------------------------------- a token: every matrix once at n = 1 */

typedef struct {
    steer_mat W[15];
    int nw;
    double bytes;
} model_mats;

static model_mats make_model(int q4km)
{
    model_mats m = {.nw = 0, .bytes = 0};
    static const int shp[7][2] = {{2048, 2048}, {512, 2048}, {512, 2048}, {2048, 2048},
                                  {8192, 2048}, {8192, 2048}, {2048, 8192}};
    for (int l = 0; l < 2; l++)
        for (int j = 0; j < 7; j++) {
            steer_dtype t = !q4km ? STEER_DTYPE_Q8_0 : (l == 1 && (j == 2 || j == 6)) ? STEER_DTYPE_Q6_K : STEER_DTYPE_Q4_K;
            m.W[m.nw] = (steer_mat){rand_weights(t, shp[j][0], shp[j][1]), t, shp[j][0], shp[j][1]};
            m.bytes += (double)q_row_bytes(t, (size_t)shp[j][1]) * shp[j][0];
            m.nw++;
        }
    const steer_dtype th = q4km ? STEER_DTYPE_Q6_K : STEER_DTYPE_Q8_0;
    m.W[m.nw++] = (steer_mat){rand_weights(th, 32000, 2048), th, 32000, 2048};
    m.bytes += (double)q_row_bytes(th, 2048) * 32000;
    return m;
}

static model_mats *tok_model;
static mm_fn tok_fn;
static float *tok_x;
/* One token: the matrices in order, inputs of the right width (values do not matter). */
static void token_pass(float *out, const float *in, const steer_mat *W, int n)
{
    (void)W;
    for (int i = 0; i < tok_model->nw; i++) tok_fn(i % 2 ? tok_x : out, in, &tok_model->W[i], n);
}

int main(int argc, char **argv)
{
    int do_exact = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--min-time") && i + 1 < argc) {
            min_time = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1) rounds = 1;
        } else if (!strcmp(argv[i], "--no-exact")) {
            do_exact = 0;
        } else {
            fprintf(stderr, "usage: %s [--min-time SECONDS (0.3)] [--rounds R (3)] [--no-exact]\n", argv[0]);
            return 2;
        }
    }
    static const int shapes[][2] = {{2048, 2048}, {512, 2048}, {8192, 2048}, {2048, 8192}, {32000, 2048}};
    static const steer_dtype types[] = {STEER_DTYPE_Q8_0, STEER_DTYPE_Q4_K, STEER_DTYPE_Q6_K};
    static const int ns[] = {1, 128};
    const char *omp_env = getenv("OMP_NUM_THREADS");
    printf("bench_qdot: out[n, rows] = in[n, cols] * W^T, W quantized [rows, cols]\n");
    printf("threads: %d (OMP_NUM_THREADS=%s); kernel path %s; qdot %s\n", omp_get_max_threads(),
           omp_env ? omp_env : "unset", steer_cpu_path(), qdot_cur()->name);
    const double bw = bench_read_bandwidth();
    printf("memory read bandwidth (sum of 512 MiB, all threads, best of 5): %.1f GB/s\n", bw);
    printf("n = 1: GB/s of weight bytes (of_bw = / read bandwidth; shapes < 32 MiB may sit in L3); "
           "n = 128: GFLOP/s = 2*n*rows*cols/time\n");
    printf("err = max|qdot - exact| / max|exact|; other = CPU time of other processes during the row, %% of all CPUs\n\n");
    printf("%-5s %5s %5s %4s | %10s %10s %7s | %10s %10s | %7s | %8s | %5s\n", "type", "rows", "cols", "n", "qdot",
           "exact", "q/exact", "qdot ms", "exact ms", "of_bw", "err", "other");

    const cpu_sample all0 = cpu_sample_now();
    const int nmax = 128;
    for (int ti = 0; ti < 3; ti++)
        for (int s = 0; s < 5; s++) {
            const steer_dtype t = types[ti];
            const int rows = shapes[s][0], cols = shapes[s][1];
            const steer_mat W = {rand_weights(t, rows, cols), t, rows, cols};
            float *in = malloc(sizeof(float) * nmax * cols), *out = malloc(sizeof(float) * nmax * rows),
                  *ref = malloc(sizeof(float) * nmax * rows);
            if (!W.data || !in || !out || !ref) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            for (size_t i = 0; i < (size_t)nmax * cols; i++) in[i] = frand();
            const double wbytes = (double)q_row_bytes(t, (size_t)cols) * rows;
            for (int k = 0; k < 2; k++) {
                const int n = ns[k];
                const cpu_sample c0 = cpu_sample_now();
                qdot_matmul(out, in, &W, n);
                exact_matmul(ref, in, &W, n);
                const double err = bench_rel_err(out, ref, (size_t)n * rows);
                double best[2] = {1e30, 1e30};
                for (int r = 0; r < rounds; r++)
                    for (int j = 0; j < 1 + do_exact; j++) {
                        const int v = (j + r) % (1 + do_exact);
                        const double tm = time_case(v ? exact_matmul : qdot_matmul, out, in, &W, n);
                        if (tm < best[v]) best[v] = tm;
                    }
                const double other = cpu_foreign(c0, cpu_sample_now());
                const double qv = n == 1 ? wbytes / best[0] * 1e-9 : 2.0 * n * rows * cols / best[0] * 1e-9;
                const double ev = n == 1 ? wbytes / best[1] * 1e-9 : 2.0 * n * rows * cols / best[1] * 1e-9;
                char ofbw[16] = "";
                if (n == 1) snprintf(ofbw, sizeof ofbw, "%.2f", qv / bw);
                printf("%-5s %5d %5d %4d | %6.1f %-3s %6.1f %-3s %7.2f | %10.3f %10.3f | %7s | %8.1e | %5.0f\n",
                       steer_dtype_name(t), rows, cols, n, qv, n == 1 ? "GB/s" : "GF", do_exact ? ev : 0.0,
                       n == 1 ? "GB/s" : "GF", do_exact ? best[1] / best[0] : 0.0, best[0] * 1e3,
                       do_exact ? best[1] * 1e3 : 0.0, ofbw, err, 100.0 * other);
                fflush(stdout);
            }
            free((void *)W.data);
            free(in);
            free(out);
            free(ref);
        }

    printf("\ntoken: every matrix of the bench model once at n = 1 (2 layers + head), in order\n");
    printf("%-7s %8s | %10s %10s | %8s %8s | %6s %6s | %5s\n", "model", "MB/tok", "qdot ms", "exact ms", "qdot GB/s",
           "ex GB/s", "of_bw", "tok/s", "other");
    float *x = malloc(sizeof(float) * 8192), *o = malloc(sizeof(float) * 32000);
    tok_x = malloc(sizeof(float) * 32000);
    for (int i = 0; i < 8192; i++) x[i] = frand();
    for (int q4km = 0; q4km < 2; q4km++) {
        model_mats m = make_model(q4km);
        tok_model = &m;
        const cpu_sample c0 = cpu_sample_now();
        double best[2] = {1e30, 1e30};
        for (int r = 0; r < rounds; r++)
            for (int j = 0; j < 1 + do_exact; j++) {
                const int v = (j + r) % (1 + do_exact);
                tok_fn = v ? exact_matmul : qdot_matmul;
                const double tm = time_case(token_pass, o, x, NULL, 1);
                if (tm < best[v]) best[v] = tm;
            }
        const double other = cpu_foreign(c0, cpu_sample_now());
        printf("%-7s %8.1f | %10.3f %10.3f | %8.1f %8.1f | %6.2f %6.1f | %5.0f\n", q4km ? "Q4_K_M" : "Q8_0",
               m.bytes * 1e-6, best[0] * 1e3, do_exact ? best[1] * 1e3 : 0.0, m.bytes / best[0] * 1e-9,
               do_exact ? m.bytes / best[1] * 1e-9 : 0.0, m.bytes / best[0] * 1e-9 / bw, 1.0 / best[0],
               100.0 * other);
        for (int i = 0; i < m.nw; i++) free((void *)m.W[i].data);
    }
    free(x);
    free(o);
    free(tok_x);
    printf("\nother processes used %.0f%% of the CPUs during the whole run\n",
           100.0 * cpu_foreign(all0, cpu_sample_now()));
    return 0;
}

/*
 * qdot.c — the quantized-activation matmul (qdot.h): activation row
 * layouts, the driver that quantizes the inputs and splits the weight rows
 * between threads, and the choice of implementation (qdot_scalar.c,
 * qdot_avx2.c, qdot_avxvnni.c, qdot_avx512vnni.c).
 */
#include "qdot.h"
#include "kern.h"
#include "quant.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- activation rows */

qdot_act qdot_act_type(steer_dtype wt)
{
    switch (wt) {
    case STEER_DTYPE_Q8_0:
    case STEER_DTYPE_Q4_0:
    case STEER_DTYPE_Q5_0: return QDOT_ACT_Q8_0;
    case STEER_DTYPE_Q4_1:
    case STEER_DTYPE_Q5_1: return QDOT_ACT_Q8_1;
    case STEER_DTYPE_Q2_K:
    case STEER_DTYPE_Q3_K:
    case STEER_DTYPE_Q4_K:
    case STEER_DTYPE_Q5_K:
    case STEER_DTYPE_Q6_K: return QDOT_ACT_Q8_K;
    default: return QDOT_ACT_NONE;
    }
}

size_t qdot_act_row_bytes(qdot_act at, int K)
{
    size_t b;
    switch (at) {
    case QDOT_ACT_Q8_0: b = (size_t)K + 4 * (size_t)(K / 32); break;
    case QDOT_ACT_Q8_1: b = (size_t)K + 8 * (size_t)(K / 32); break;
    case QDOT_ACT_Q8_K: b = sizeof(qdot_q8k) * (size_t)(K / 256); break;
    default: return 0;
    }
    return (b + 63) & ~(size_t)63;
}

void qdot_act_dequant(qdot_act at, const void *row, float *x, int K)
{
    if (at == QDOT_ACT_Q8_K) {
        const qdot_q8k *y = row;
        for (int b = 0; b < K / 256; b++)
            for (int j = 0; j < 256; j++) x[256 * b + j] = (float)y[b].qs[j] * y[b].d;
        return;
    }
    const int8_t *qs = row;
    const float *d = (const float *)(qs + K);
    for (int k = 0; k < K; k++) x[k] = (float)qs[k] * d[k / 32];
}

/* ---------------------------------------------------------------- implementations */

static const qdot_impl *const impls[] = {&qdot_scalar, &qdot_avx2, &qdot_avxvnni, &qdot_avx512vnni};
#define N_IMPLS ((int)(sizeof impls / sizeof impls[0]))

const qdot_impl *const *qdot_all(int *n)
{
    *n = N_IMPLS;
    return impls;
}

int qdot_supported(const qdot_impl *q)
{
    /* the same features test as the kernel paths (a path with these needs) */
    ops_kernels probe = {0};
    probe.name = q->name;
    probe.needs = q->needs;
    return ops_kern_supported(&probe);
}

const qdot_impl *qdot_for_path(const char *path)
{
    const int wide = !strcmp(path, "avx512") || !strcmp(path, "avx512bf16");
    if (!wide && strcmp(path, "avx2")) return &qdot_scalar;
    if (wide && qdot_supported(&qdot_avx512vnni)) return &qdot_avx512vnni;
    if (qdot_supported(&qdot_avxvnni)) return &qdot_avxvnni;
    return qdot_supported(&qdot_avx2) ? &qdot_avx2 : &qdot_scalar;
}

const qdot_impl *qdot_cur(void) { return qdot_for_path(ops_kern()->name); }

const char *steer_cpu_quant_path(void) { return qdot_cur()->name; }

int qdot_can(const steer_mat *W)
{
    const qdot_act at = qdot_act_type(W->dtype);
    if (at == QDOT_ACT_NONE || W->cols <= 0) return 0;
    return W->cols % (at == QDOT_ACT_Q8_K ? 256 : 32) == 0;
}

float qdot_vec_dot(const qdot_impl *q, steer_dtype wt, int K, const void *w, const void *x)
{
    float r;
    q->tile[wt](K, w, 0, 1, x, 0, 1, &r, 1);
    return r;
}

/* ---------------------------------------------------------------- the matmul */

/* Below this many multiply-adds (n·rows·cols) the product runs on the calling
 * thread (as kern_body.h's MM_PARALLEL_MACS). */
#define QD_PARALLEL_MACS (1L << 20)
/* Chunks of rows are multiples of this many. */
#define QD_UNIT QDOT_MR
/* Input rows from which they are quantized in parallel. */
#define QD_QUANT_PAR 8
/* Weight rows per block for n >= 2: the block's bytes (<= QD_BLOCK_BYTES)
 * stay in the L2 cache while every input tile runs against them, so each
 * weight row is read from memory once per call. */
#define QD_BLOCK_BYTES (192 * 1024)

void qdot_matmul_with(const qdot_impl *q, float *out, const float *in, const steer_mat *W, int n)
{
    const int rows = W->rows, K = W->cols;
    const steer_dtype dt = W->dtype;
    if (n <= 0 || rows <= 0) return;
    const qdot_act at = qdot_act_type(dt);
    const size_t xrb = qdot_act_row_bytes(at, K), wrb = q_row_bytes(dt, (size_t)K);
    uint8_t *xq = (at != QDOT_ACT_NONE && qdot_can(W)) ? aligned_alloc(64, (size_t)n * xrb) : NULL;
    if (!xq) { /* not a quantized matrix this path takes, or no memory: NaN, never garbage */
        for (size_t e = 0; e < (size_t)n * rows; e++) out[e] = NAN;
        return;
    }
    const qdot_tile_fn tile = q->tile[dt];
    const qdot_quant_fn quant = q->quant[at];
    const int nr_t = n == 1 ? 1 : q->nr[dt];
    int rb = (int)(QD_BLOCK_BYTES / wrb) / QD_UNIT * QD_UNIT;
    if (rb < QD_UNIT) rb = QD_UNIT;
    const long macs = (long)n * rows * K;
    /* Few input rows are quantized before the threads start: one barrier
     * less (a thread that the OS has descheduled delays every barrier). */
    const int quant_par = n >= QD_QUANT_PAR;
    int next_chunk = 0; /* the next chunk of rows to compute */
    if (!quant_par)
        for (int i = 0; i < n; i++) quant(in + (size_t)i * K, xq + (size_t)i * xrb, K);
#pragma omp parallel if (macs >= QD_PARALLEL_MACS && rows > QD_UNIT)
    {
        if (quant_par) {
#pragma omp for schedule(static)
            for (int i = 0; i < n; i++) quant(in + (size_t)i * K, xq + (size_t)i * xrb, K);
            /* (the loop's barrier: every row quantized before any is used) */
        }
        /* Chunks of rows from a shared counter (kern.h): >= 16 chunks a
         * thread for n = 1 (each one tile call reading its rows once), >= 4
         * for n >= 2, and there at most the L2-sized block. */
        const int chunk = kern_chunk_rows(rows, omp_get_num_threads(), n == 1 ? 16 : 4, QD_UNIT, n == 1 ? rows : rb);
        const int n_chunks = (rows + chunk - 1) / chunk;
        for (;;) {
            const int ci = kern_chunk_next(&next_chunk);
            if (ci >= n_chunks) break;
            const int r0 = ci * chunk, nrb = rows - r0 < chunk ? rows - r0 : chunk;
            const uint8_t *wb = (const uint8_t *)W->data + (size_t)r0 * wrb;
            for (int i0 = 0; i0 < n; i0 += nr_t) {
                const int ni = n - i0 < nr_t ? n - i0 : nr_t;
                tile(K, wb, wrb, nrb, xq + (size_t)i0 * xrb, xrb, ni, out + (size_t)i0 * rows + r0, (size_t)rows);
            }
        }
    }
    free(xq);
}

void qdot_matmul(float *out, const float *in, const steer_mat *W, int n) { qdot_matmul_with(qdot_cur(), out, in, W, n); }

/* bench_util.h — timing and contention helpers shared by the benchmarks. */
#ifndef STEER_BENCH_UTIL_H
#define STEER_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <math.h>
#include <omp.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time used by other processes (and stolen by the hypervisor) while a
 * measurement ran, as a fraction of all online CPUs: a benchmark on a shared
 * machine is only as good as this number is small. From /proc/stat (all CPUs)
 * minus /proc/self/stat (this process); -1 where /proc is unavailable. */
typedef struct {
    double wall;
    long long busy, self;
} cpu_sample;

static cpu_sample cpu_sample_now(void)
{
    cpu_sample s = {now_s(), -1, -1};
    long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        /* cpu user nice system idle iowait irq softirq steal */
        if (fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]) == 8)
            s.busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        fclose(f);
    }
    f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        buf[len] = 0;
        fclose(f);
        const char *p = strrchr(buf, ')'); /* fields after "(comm)": state is field 3, utime 14, stime 15 */
        long long ut, st;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut, &st) == 2)
            s.self = ut + st;
    }
    return s;
}

static double cpu_foreign(cpu_sample a, cpu_sample b)
{
    const double hz = (double)sysconf(_SC_CLK_TCK), ncpu = (double)sysconf(_SC_NPROCESSORS_ONLN);
    if (a.busy < 0 || a.self < 0 || b.busy < 0 || b.self < 0 || b.wall <= a.wall) return -1.0;
    double f = (double)((b.busy - a.busy) - (b.self - a.self)) / hz / ((b.wall - a.wall) * ncpu);
    return f < 0 ? 0.0 : f;
}

/* The FMA-peak loop, once for each vector width: every OpenMP thread runs 10
 * independent chains of FMAs on registers (enough to cover the FMA latency
 * on current x86 cores), best of 5 passes of 2e8 FMA instructions per
 * thread. V: the vector type, P: the intrinsics' prefix (_mm256, _mm512),
 * LANES: floats per vector, R: the register constraint. */
#define BENCH_FMA_PEAK_BODY(V, P, LANES, R)                                                                      \
    const long iters = 20000000; /* × 10 FMAs per thread */                                                   \
    double best = 1e30;                                                                                       \
    volatile float sink = 0.0f;                                                                               \
    for (int pass = 0; pass < 5; pass++) {                                                                    \
        float total = 0.0f;                                                                                   \
        const double t0 = now_s();                                                                            \
        _Pragma("omp parallel reduction(+ : total)")                                                          \
        {                                                                                                     \
            /* ten named accumulators: an array would live in memory (a store and reload per FMA) */          \
            const V m = P##_set1_ps(0.999999f), c = P##_set1_ps(1e-7f);                                       \
            const float t0f = (float)omp_get_thread_num();                                                    \
            V a0 = P##_set1_ps(t0f), a1 = P##_set1_ps(t0f + 1), a2 = P##_set1_ps(t0f + 2),                    \
              a3 = P##_set1_ps(t0f + 3), a4 = P##_set1_ps(t0f + 4), a5 = P##_set1_ps(t0f + 5),                \
              a6 = P##_set1_ps(t0f + 6), a7 = P##_set1_ps(t0f + 7), a8 = P##_set1_ps(t0f + 8),                \
              a9 = P##_set1_ps(t0f + 9);                                                                      \
            for (long i = 0; i < iters; i++) {                                                                \
                a0 = P##_fmadd_ps(a0, m, c);                                                                  \
                a1 = P##_fmadd_ps(a1, m, c);                                                                  \
                a2 = P##_fmadd_ps(a2, m, c);                                                                  \
                a3 = P##_fmadd_ps(a3, m, c);                                                                  \
                a4 = P##_fmadd_ps(a4, m, c);                                                                  \
                a5 = P##_fmadd_ps(a5, m, c);                                                                  \
                a6 = P##_fmadd_ps(a6, m, c);                                                                  \
                a7 = P##_fmadd_ps(a7, m, c);                                                                  \
                a8 = P##_fmadd_ps(a8, m, c);                                                                  \
                a9 = P##_fmadd_ps(a9, m, c);                                                                  \
                __asm__("" : R(a0), R(a1), R(a2), R(a3), R(a4), R(a5), R(a6), R(a7), R(a8), R(a9));           \
            }                                                                                                 \
            V s = P##_add_ps(P##_add_ps(P##_add_ps(a0, a1), P##_add_ps(a2, a3)),                              \
                             P##_add_ps(P##_add_ps(a4, a5), P##_add_ps(a6, a7)));                             \
            s = P##_add_ps(s, P##_add_ps(a8, a9));                                                            \
            float lane[LANES];                                                                                \
            P##_storeu_ps(lane, s);                                                                           \
            for (int j = 0; j < LANES; j++) total += lane[j];                                                 \
        }                                                                                                     \
        const double t = now_s() - t0;                                                                        \
        sink = sink + total;                                                                                  \
        if (t < best) best = t;                                                                               \
    }                                                                                                         \
    (void)sink;                                                                                               \
    return (double)omp_get_max_threads() * iters * 10.0 * (2.0 * LANES) / best * 1e-9;

/* 512-bit (32 FLOP per instruction), compiled for AVX-512 and run only where
 * the CPU has it (the widest vector the kernels use; kern.h). */
__attribute__((target("avx512f"))) static inline double bench_fma_peak512(void)
{
    BENCH_FMA_PEAK_BODY(__m512, _mm512, 16, "+v")
}

/* Peak FMA throughput of this machine in GFLOP/s with every OpenMP thread,
 * at the widest vector width the CPU has (512-bit where it has AVX-512F,
 * else 256-bit: 16 FLOP per instruction). 0 when the build has no AVX2/FMA.
 * The ceiling that achieved GFLOP/s are compared against. */
static inline double bench_fma_peak(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return bench_fma_peak512();
#if defined(__AVX2__) && defined(__FMA__)
    BENCH_FMA_PEAK_BODY(__m256, _mm256, 8, "+x")
#else
    return 0.0;
#endif
}

/* Read bandwidth of main memory: GB/s of summing a 512 MiB f32 array with
 * every thread, the best of 5 passes each of two patterns: each thread
 * reading its part as one stream, and as 8 streams side by side (its part
 * cut in 8, read together, as a GEMV reads several weight rows at once).
 * On the 2-vCPU AMD EPYC VM of docs/PERFORMANCE.md one stream read 27-28
 * GB/s and 2-12 streams 32.6-37.1 (2026-12-07): a single stream
 * understates what the memory gives, so the better of the two is the
 * bound. The ceiling for generation, which reads every weight once per
 * token. bench_read_pass: one pass, GB/s of the floats it read. */
static inline double bench_read_pass(const float *a, size_t nf, int streams)
{
    float total = 0.0f;
    size_t bytes = 0; /* read, every thread's every stream */
    const double t0 = now_s();
#pragma omp parallel reduction(+ : total, bytes)
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        const size_t part = nf / (size_t)nt, lo = (size_t)t * part;
        const size_t seg = (part / (size_t)streams) & ~(size_t)31; /* each stream's floats */
        bytes += (size_t)streams * seg * sizeof(float);
#if defined(__AVX2__)
        __m256 acc[8];
        for (int s = 0; s < 8; s++) acc[s] = _mm256_setzero_ps();
        for (size_t i = 0; i < seg; i += 32)
            for (int s = 0; s < streams; s++) {
                const float *p = a + lo + (size_t)s * seg + i;
                acc[s] = _mm256_add_ps(acc[s], _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)),
                                                             _mm256_add_ps(_mm256_loadu_ps(p + 16), _mm256_loadu_ps(p + 24))));
            }
        __m256 z = _mm256_setzero_ps();
        for (int s = 0; s < streams; s++) z = _mm256_add_ps(z, acc[s]);
        float lane[8];
        _mm256_storeu_ps(lane, z);
        for (int j = 0; j < 8; j++) total += lane[j];
#else
        for (int s = 0; s < streams; s++)
            for (size_t i = 0; i < seg; i++) total += a[lo + (size_t)s * seg + i];
#endif
    }
    const double dt = now_s() - t0;
    static volatile float sink;
    sink = total;
    (void)sink;
    return (double)bytes / dt * 1e-9;
}

static inline double bench_read_bandwidth(void)
{
    const size_t nf = (size_t)128 << 20; /* 512 MiB of floats */
    float *a = malloc(nf * sizeof(float));
    if (!a) return 0.0;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < nf; i++) a[i] = (float)(i & 7);
    double best = 0.0;
    for (int pass = 0; pass < 5; pass++) /* the two patterns alternate: a slow spell hits both */
        for (int streams = 1; streams <= 8; streams += 7) {
            const double gbs = bench_read_pass(a, nf, streams);
            if (gbs > best) best = gbs;
        }
    free(a);
    return best;
}

/* max|a − ref| / max|ref| over m floats (a NaN difference is kept): the
 * error figure printed beside timings. */
static inline double bench_rel_err(const float *a, const float *ref, size_t m)
{
    double md = 0.0, mr = 0.0;
    for (size_t k = 0; k < m; k++) {
        double d = fabs((double)a[k] - (double)ref[k]), r = fabs((double)ref[k]);
        if (d > md || isnan(d)) md = d;
        if (r > mr) mr = r;
    }
    return mr > 0 ? md / mr : md;
}

#ifdef STEER_OPS_H
/* Seconds per call of fn(out, in, W, n) (bench_matmul, bench_qdot): the best
 * batch mean. Calls are grouped in batches of at least ~1 ms (one call if a
 * call is longer), and batches are repeated until min_time has passed and at
 * least 3 were run. The best batch, not the mean of all, is reported,
 * because this machine may be shared: a batch that lost its core to another
 * process is slower, never faster. */
typedef void (*bench_mm_fn)(float *out, const float *in, const steer_mat *W, int n);
static inline double bench_time_mm(bench_mm_fn fn, float *out, const float *in, const steer_mat *W, int n,
                                   double min_time)
{
    double t0 = now_s();
    fn(out, in, W, n); /* warm-up: caches, page faults, thread pool */
    double t1 = now_s() - t0;
    long batch = 1;
    while (t1 * (double)batch < 1e-3 && batch < (1L << 24)) batch *= 2;
    double best = 1e30, total = 0.0;
    int n_batches = 0;
    while (total < min_time || n_batches < 3) {
        t0 = now_s();
        for (long i = 0; i < batch; i++) fn(out, in, W, n);
        double t = now_s() - t0;
        total += t;
        n_batches++;
        if (t / (double)batch < best) best = t / (double)batch;
    }
    return best;
}
#endif

#endif

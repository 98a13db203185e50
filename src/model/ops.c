/*
 * ops.c — numeric kernels: dtype conversion, the one matmul and attention
 * interface (dispatched to the kernel path in use: kern.h, kern_*.c), their
 * double references, RMSNorm, GLU, softmax, and OpenBLAS sgemm for f32
 * matrices (a benchmark baseline).
 */
#include "ops.h"
#include "kern.h"
#include "quant.h"
#include "qdot.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------- conversion */

/* IEEE half <-> float: quant.c's q_f16_to_f32 / q_f32_to_f16 (formats tier), one
 * implementation for the whole library. */

float ops_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t ops_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* The public forms (steer.h, "dtypes"): the same conversions. */
float steer_f16_to_f32(uint16_t h) { return q_f16_to_f32(h); }
uint16_t steer_f32_to_f16(float f) { return q_f32_to_f16(f); }
float steer_bf16_to_f32(uint16_t h) { return ops_bf16_to_f32(h); }
uint16_t steer_f32_to_bf16(float f) { return ops_f32_to_bf16(f); }

void ops_to_f32(float *dst, const void *src, steer_dtype dtype, size_t n)
{
    if (q_is_quantized(dtype)) { /* whole blocks: n a multiple of the block size */
        q_dequant_row(dtype, src, dst, n);
        return;
    }
    if (dtype == STEER_DTYPE_F32) {
        memcpy(dst, src, n * sizeof(float));
    } else if (dtype == STEER_DTYPE_BF16) {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)s[i] << 16;
            memcpy(&dst[i], &bits, 4);
        }
    } else if (dtype == STEER_DTYPE_F16) {
        const uint16_t *s = src;
#if defined(__F16C__)
        for (size_t i = 0; i < n; i++) dst[i] = _cvtsh_ss(s[i]);
#else
        for (size_t i = 0; i < n; i++) dst[i] = q_f16_to_f32(s[i]);
#endif
    }
}

/* ---------------------------------------------------------------- matmul, attention: dispatch */

/* The kernel paths (kern.h): each in its own file, compiled for its
 * instruction set; the one in use is chosen once. */
static const ops_kernels *const kern_paths[] = {&ops_kern_scalar, &ops_kern_avx2, &ops_kern_avx512,
                                                &ops_kern_avx512bf16};
#define N_PATHS ((int)(sizeof kern_paths / sizeof kern_paths[0]))

const ops_kernels *const *ops_kern_all(int *n)
{
    *n = N_PATHS;
    return kern_paths;
}

/* The CPU's features, read once: cpuid for what the CPU has, xgetbv for what
 * the OS saves on a context switch (AVX needs the YMM state, AVX-512 the
 * opmask and ZMM states too). */
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
enum { F_AVX2 = 1, F_FMA = 2, F_F16C = 4, F_AVX512F = 8, F_AVX512VL = 16, F_AVX512BW = 32, F_AVX512DQ = 64,
       F_AVX512BF16 = 128, F_AVX512VNNI = 256, F_AVXVNNI = 512 };
static unsigned cpu_features(void)
{
    static unsigned feat = 0, done = 0;
    if (__atomic_load_n(&done, __ATOMIC_ACQUIRE)) return feat;
    unsigned a, b, c, d, f = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27))) { /* OSXSAVE: xgetbv is there */
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        const int ymm = (lo & 0x6) == 0x6, zmm = (lo & 0xe6) == 0xe6;
        if (ymm && (c & (1u << 12))) f |= F_FMA;
        if (ymm && (c & (1u << 29))) f |= F_F16C;
        if (ymm && __get_cpuid_max(0, NULL) >= 7) {
            __cpuid_count(7, 0, a, b, c, d);
            if (b & (1u << 5)) f |= F_AVX2;
            if (zmm) {
                if (b & (1u << 16)) f |= F_AVX512F;
                if (b & (1u << 17)) f |= F_AVX512DQ;
                if (b & (1u << 30)) f |= F_AVX512BW;
                if (b & (1u << 31)) f |= F_AVX512VL;
                if (c & (1u << 11)) f |= F_AVX512VNNI;
            }
            __cpuid_count(7, 1, a, b, c, d);
            if (a & (1u << 4)) f |= F_AVXVNNI;
            if (zmm && (a & (1u << 5))) f |= F_AVX512BF16;
        }
    }
    feat = f;
    __atomic_store_n(&done, 1u, __ATOMIC_RELEASE);
    return f;
}
#else
static unsigned cpu_features(void) { return 0; }
#endif

static const struct {
    const char *name;
    unsigned bit;
} cpu_names[] = {
#if defined(__x86_64__) || defined(__i386__)
    {"avx2", F_AVX2},         {"fma", F_FMA},           {"f16c", F_F16C},
    {"avx512f", F_AVX512F},   {"avx512vl", F_AVX512VL}, {"avx512bw", F_AVX512BW},
    {"avx512dq", F_AVX512DQ}, {"avx512bf16", F_AVX512BF16}, {"avx512vnni", F_AVX512VNNI},
    {"avxvnni", F_AVXVNNI},
#else
    {"none", 0},
#endif
};

static int cpu_has(const char *f)
{
    for (size_t i = 0; i < sizeof cpu_names / sizeof cpu_names[0]; i++)
        if (!strcmp(f, cpu_names[i].name)) return (cpu_features() & cpu_names[i].bit) != 0;
    return 0;
}

int ops_kern_supported(const ops_kernels *k)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", k->needs);
    for (char *save = NULL, *f = strtok_r(buf, " ", &save); f; f = strtok_r(NULL, " ", &save))
        if (!cpu_has(f)) return 0;
    return 1;
}

static const ops_kernels *kern_cur;

const ops_kernels *ops_kern(void)
{
    const ops_kernels *k = __atomic_load_n(&kern_cur, __ATOMIC_ACQUIRE);
    if (k) return k;
    const char *want = getenv("STEER_CPU");
    for (int i = 0; i < N_PATHS; i++) /* the best supported, or STEER_CPU's if supported */
        if (ops_kern_supported(kern_paths[i])) {
            if (!want || !*want) k = kern_paths[i];
            else if (!strcmp(want, kern_paths[i]->name)) { k = kern_paths[i]; break; }
        }
    if (!k) k = &ops_kern_scalar; /* STEER_CPU names a path this CPU lacks or none: steer_cpu_path() says */
    __atomic_store_n(&kern_cur, k, __ATOMIC_RELEASE);
    return k;
}

int ops_kern_set(const ops_kernels *k)
{
    if (!ops_kern_supported(k)) return -1;
    __atomic_store_n(&kern_cur, k, __ATOMIC_RELEASE);
    return 0;
}

void ops_matmul(float *out, const float *in, const steer_mat *W, int n)
{
    /* quantized weights at fast precision: 8-bit activations and integer dots (qdot.h) */
    if (q_is_quantized(W->dtype) && ops_precision() == STEER_PRECISION_FAST && qdot_can(W)) {
        qdot_matmul(out, in, W, n);
        return;
    }
    ops_kern()->matmul(out, in, W, n);
}

void ops_attention(float *att, const float *q, const float *kc, const float *vc, const int *pos, const int *seq,
                   int n, int nh, int nkv, int hd, int n_ctx, int window, float scale, float softcap, float *scores)
{
    ops_kern()->attention(att, q, kc, vc, pos, seq, n, nh, nkv, hd, n_ctx, window, scale, softcap, scores);
}

/* ---- precision for quantized weights (steer.h) */

static int prec_cur = -1; /* -1: not read from the environment yet */

int ops_precision(void)
{
    int p = __atomic_load_n(&prec_cur, __ATOMIC_ACQUIRE);
    if (p >= 0) return p;
    const char *e = getenv("STEER_PRECISION");
    p = e && !strcmp(e, "exact") ? STEER_PRECISION_EXACT : STEER_PRECISION_FAST;
    __atomic_store_n(&prec_cur, p, __ATOMIC_RELEASE);
    return p;
}

void steer_set_precision(steer_precision p)
{
    __atomic_store_n(&prec_cur, p == STEER_PRECISION_EXACT ? STEER_PRECISION_EXACT : STEER_PRECISION_FAST,
                     __ATOMIC_RELEASE);
}

steer_precision steer_get_precision(void) { return (steer_precision)ops_precision(); }

const char *steer_precision_name(steer_precision p) { return p == STEER_PRECISION_EXACT ? "exact" : "fast"; }

int steer_precision_parse(const char *name, steer_precision *out)
{
    if (name && !strcmp(name, "fast")) *out = STEER_PRECISION_FAST;
    else if (name && !strcmp(name, "exact")) *out = STEER_PRECISION_EXACT;
    else return steer_err(STEER_EARG, "precision '%s': expected fast or exact", name ? name : "");
    return STEER_OK;
}

/* ---- public (steer.h, "CPU") */

const char *steer_cpu_path(void) { return ops_kern()->name; }

int steer_cpu_set_path(const char *name)
{
    int n;
    const ops_kernels *const *all = ops_kern_all(&n);
    for (int i = 0; i < n; i++)
        if (!strcmp(name, all[i]->name)) {
            if (ops_kern_set(all[i]) != 0)
                return steer_err(STEER_EUNSUPPORTED, "kernel path %s: this CPU lacks %s", name, all[i]->needs);
            return STEER_OK;
        }
    return steer_err(STEER_EARG, "kernel path %s: unknown (scalar, avx2, avx512 or avx512bf16)", name);
}

const char *steer_cpu_features(void)
{
    static char buf[160];
    if (!buf[0]) {
        char tmp[160] = "";
        for (size_t i = 0; i < sizeof cpu_names / sizeof cpu_names[0]; i++)
            if (cpu_has(cpu_names[i].name)) {
                strcat(tmp, tmp[0] ? " " : "");
                strcat(tmp, cpu_names[i].name);
            }
        if (!tmp[0]) strcpy(tmp, "none");
        memcpy(buf, tmp, sizeof buf); /* the same bytes from every thread */
    }
    return buf;
}

/* Scalar reference: plain loops, the sum in double in natural order. Not
 * bitwise equal to ops_matmul (different order); tests compare within
 * TOL_MATMUL_REF. */
void ops_matmul_ref(float *out, const float *in, const steer_mat *W, int n)
{
    const int rows = W->rows, K = W->cols;
    const size_t esz = steer_dtype_size(W->dtype);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < rows; r++) {
            const uint8_t *wr = (const uint8_t *)W->data + (size_t)r * K * esz;
            double s = 0.0;
            for (int k = 0; k < K; k++) s += (double)in[(size_t)i * K + k] * (double)w_at(wr, W->dtype, (size_t)k);
            out[(size_t)i * rows + r] = (float)s;
        }
}

/* OpenBLAS sgemm for f32 weights (not batch-invariant); used by the
 * benchmark as the baseline and available to callers who want it. */
void ops_matmul_blas(float *out, const float *in, const steer_mat *W, int n)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, W->rows, W->cols, 1.0f, in, W->cols, W->data, W->cols,
                0.0f, out, W->rows);
}

/* ---------------------------------------------------------------- elementwise */

void ops_rmsnorm(float *out, const float *x, const float *w, int n, int d, float eps)
{
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *oi = out + (size_t)i * d;
        double ss = 0.0;
        for (int j = 0; j < d; j++) ss += (double)xi[j] * xi[j];
        float scale = (float)(1.0 / sqrt(ss / d + (double)eps));
        for (int j = 0; j < d; j++) oi[j] = xi[j] * scale * w[j];
    }
}

void ops_glu(float *out, const float *g, const float *u, size_t n, steer_act act) { ops_kern()->glu(out, g, u, n, act); }

void ops_glu_plain(float *out, const float *g, const float *u, size_t n, steer_act act)
{
    switch (act) {
    case STEER_ACT_SILU:
        for (size_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
        break;
    case STEER_ACT_GELU_TANH: {
        const float k = 0.7978845608028654f; /* √(2/π) */
        for (size_t i = 0; i < n; i++) {
            float x = g[i];
            out[i] = 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x))) * u[i];
        }
        break;
    }
    case STEER_ACT_GELU:
        for (size_t i = 0; i < n; i++) out[i] = 0.5f * g[i] * (1.0f + erff(g[i] * 0.7071067811865475f)) * u[i];
        break;
    case STEER_ACT_RELU:
        for (size_t i = 0; i < n; i++) out[i] = (g[i] > 0.0f ? g[i] : 0.0f) * u[i];
        break;
    case STEER_ACT_TANH:
        for (size_t i = 0; i < n; i++) out[i] = tanhf(g[i]) * u[i];
        break;
    case STEER_ACT_NONE:
        for (size_t i = 0; i < n; i++) out[i] = g[i] * u[i];
        break;
    case STEER_ACT_DEFAULT: /* options only: a model's act is always resolved */
    case STEER_ACT_COUNT:
        break;
    }
}

void ops_add_bias(float *x, const float *b, int n, int w)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < w; j++) x[(size_t)i * w + j] += b[j];
}

void ops_softcap(float *x, size_t n, float c)
{
    for (size_t i = 0; i < n; i++) x[i] = c * tanhf(x[i] / c);
}

void ops_softmax(float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void ops_attention_ref(float *att, const float *q, const float *kc, const float *vc, const int *pos, const int *seq,
                       int n, int nh, int nkv, int hd, int n_ctx, int window, float scale, float softcap)
{
    const int group = nh / nkv, qd = nh * hd, kvd = nkv * hd;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < nh; h++) {
            const int p = pos[i], t0 = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
            const float *qh = q + (size_t)i * qd + (size_t)h * hd;
            const size_t base = (size_t)seq[i] * n_ctx * kvd + (size_t)(h / group) * hd;
            double mx = -INFINITY, sum = 0.0;
            double *s = malloc((size_t)(p + 1) * sizeof(double));
            if (!s) return;
            for (int t = t0; t <= p; t++) {
                double d = 0.0;
                for (int j = 0; j < hd; j++) d += (double)qh[j] * (double)kc[base + (size_t)t * kvd + j];
                d *= scale;
                if (softcap > 0.0f) d = softcap * tanh(d / softcap);
                s[t] = d;
                mx = d > mx ? d : mx;
            }
            for (int t = t0; t <= p; t++) sum += (s[t] = exp(s[t] - mx));
            for (int j = 0; j < hd; j++) {
                double o = 0.0;
                for (int t = t0; t <= p; t++) o += s[t] / sum * (double)vc[base + (size_t)t * kvd + j];
                att[(size_t)i * qd + (size_t)h * hd + j] = (float)o;
            }
            free(s);
        }
}

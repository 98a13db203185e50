/*
 * test_quant_model.c — quantized GGUF models end to end (issue 19): the
 * llama-quant fixture's ten llama-quantize files (Q8_0, Q4_0, Q4_1, Q5_0,
 * Q5_1, Q4_K_M, Q5_K_M, Q6_K, Q3_K_M, Q2_K) and the qwen2-quant Q4_K_M file
 * (q/k/v biases), tests/data/{llama,qwen2}-quant (README there).
 *
 * For every file, on every kernel path this CPU has (a path it lacks is
 * printed as SKIPPED) and both precisions (fast: int8 activations as
 * llama.cpp; exact: dequantized weights × f32):
 *   1. logits of the 24 fixture ids against llama.cpp's for the same file
 *      (llama-logits, F32 KV cache): max |diff| <= TOL_QUANT_LLAMACPP_MAX,
 *      rms <= TOL_QUANT_LLAMACPP_RMS;
 *   2. the prompt as one batch = token by token, bitwise (batch invariance);
 * and once per file:
 *   3. exact precision against a double-precision forward of the same
 *      dequantized weights (the training graph's double instance, which
 *      reads the weights through ggml's dequantization) within
 *      TOL_QUANT_EXACT_VS_DOUBLE;
 *   4. full fine-tuning is refused with a message naming "quantized".
 * (Training on the frozen quantized base, and the base file's bytes staying
 * the same, are checked through the CLI in tests/cli/cli_quant.sh.)
 */
#include "model.h"
#include "kern.h"
#include "test_util.h"

/* The double instance of the training graph (as in test_train_grad.c). */
#define REAL double
#define R_(name) name##_f64
#define TRAIN_OPS_API static __attribute__((unused))
#define TRM_API static __attribute__((unused))
#include "train_ops_impl.h"
#include "train_model_impl.h"
#undef REAL
#undef R_

#include <stdint.h>

static const int IDS[24] = {1,   274, 287, 394, 261, 370, 400, 428, 426, 291, 400, 428,
                            286, 393, 269, 352, 303, 267, 270, 288, 272, 412, 356, 443};
#define NT 24

static float *read_f32(const char *path, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *b = malloc(n * sizeof(float));
    size_t got = b ? fread(b, sizeof(float), n, f) : 0;
    fclose(f);
    if (got != n) {
        free(b);
        return NULL;
    }
    return b;
}

/* logits [NT, V] of the ids, one batch (batch = 1) or token by token (0). */
static void run_logits(steer_model *m, int batch, float *out)
{
    const int V = m->cfg.n_vocab;
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = 32;
    steer_ctx *c = NULL;
    CHECK_OK(steer_ctx_new(m, &cp, &c));
    if (batch) {
        CHECK_OK(steer_forward_tokens(c, IDS, NT, 0, 0));
        for (int i = 0; i < NT; i++) memcpy(out + (size_t)i * V, steer_ctx_logits(c, i), (size_t)V * sizeof(float));
    } else {
        for (int i = 0; i < NT; i++) {
            CHECK_OK(steer_forward_tokens(c, IDS + i, 1, i, 0));
            memcpy(out + (size_t)i * V, steer_ctx_logits(c, 0), (size_t)V * sizeof(float));
        }
    }
    steer_ctx_free(c);
}

static void diff_stats(const float *a, const float *b, size_t n, double *mx, double *rms)
{
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = isnan(d) ? INFINITY : d; /* a NaN counts as infinite */
        s += d * d;
    }
    *mx = m;
    *rms = sqrt(s / (double)n);
}

static void test_file(const char *dir, const char *stem, const char *type)
{
    char path[512], lpath[512];
    snprintf(path, sizeof path, "%s/%s.%s.gguf", dir, stem, type);
    snprintf(lpath, sizeof lpath, "%s/logits.llamacpp.%s.f32.bin", dir, type);
    steer_model *m = NULL;
    CHECK_OK(steer_model_load(path, NULL, &m));
    const int V = m->cfg.n_vocab;
    const size_t n = (size_t)NT * V;
    float *gold = read_f32(lpath, n);
    CHECK(gold != NULL, "cannot read %s", lpath);
    if (!gold) return;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)), *ex = malloc(n * sizeof(float));

    int np;
    const ops_kernels *const *paths = ops_kern_all(&np);
    const ops_kernels *in_use = ops_kern();
    for (int pi = 0; pi < np; pi++) {
        if (ops_kern_set(paths[pi]) != 0) {
            if (!strcmp(type, "Q8_0")) printf("SKIPPED path %s: this CPU lacks some of: %s\n", paths[pi]->name, paths[pi]->needs);
            continue;
        }
        for (int prec = 0; prec < 2; prec++) {
            steer_set_precision(prec ? STEER_PRECISION_EXACT : STEER_PRECISION_FAST);
            run_logits(m, 1, a);
            run_logits(m, 0, b);
            double mx, rms;
            diff_stats(a, gold, n, &mx, &rms);
            char what[160];
            snprintf(what, sizeof what, "%s %s %s/%s vs llama.cpp", stem + 12, type, paths[pi]->name, prec ? "exact" : "fast");
            printf("%-52s max %.4f (<= %.2f) rms %.4f (<= %.2f)\n", what, mx, TOL_QUANT_LLAMACPP_MAX, rms,
                   TOL_QUANT_LLAMACPP_RMS);
            CHECK(mx <= TOL_QUANT_LLAMACPP_MAX && rms <= TOL_QUANT_LLAMACPP_RMS, "%s: max %g rms %g", what, mx, rms);
            CHECK(memcmp(a, b, n * sizeof(float)) == 0, "%s: one batch differs from token by token", what);
            if (prec && paths[pi] == &ops_kern_scalar) memcpy(ex, a, n * sizeof(float));
        }
    }
    ops_kern_set(in_use); /* back to the path and the default precision */
    steer_set_precision(STEER_PRECISION_FAST);

    /* 3. exact precision vs the double forward of the dequantized weights */
    {
        trm_spec s = trm_spec_default();
        s.B = 1, s.T = NT;
        trm_f64 *t = NULL;
        CHECK_OK(trm_new_f64(m, &s, &t));
        int toks[NT], len = NT;
        memcpy(toks, IDS, sizeof toks);
        trm_batch bt = {.B = 1, .T = NT, .tokens = toks, .lengths = &len};
        CHECK_OK(trm_forward_f64(t, &bt));
        const double *ref = trm_logits_f64(t);
        double mx = 0;
        for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(ex[i] - ref[i]));
        char what[160];
        snprintf(what, sizeof what, "%s %s exact vs double reference", stem + 12, type);
        printf("%-52s max %.2e (<= %.0e)\n", what, mx, TOL_QUANT_EXACT_VS_DOUBLE);
        CHECK(mx <= TOL_QUANT_EXACT_VS_DOUBLE, "%s: %g", what, mx);
        trm_free_f64(t);
    }
    /* 4. full fine-tuning refused; the frozen base is never written */
    {
        trm_spec s = trm_spec_default();
        s.B = 1, s.T = NT;
        s.full = 1;
        trm_f64 *t = NULL;
        const int rc = trm_new_f64(m, &s, &t);
        CHECK(rc == STEER_EUNSUPPORTED && strstr(steer_last_error(), "quantized"),
              "full fine-tuning of %s: rc %d (%s)", type, rc, steer_last_error());
        if (rc == STEER_OK) trm_free_f64(t);
    }
    steer_model_free(m);
    free(gold); free(a); free(b); free(ex);
}

int main(void)
{
    static const char *types[] = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K_M", "Q5_K_M", "Q6_K", "Q3_K_M", "Q2_K"};
    printf("CPU features: %s; path in use: %s\n", steer_cpu_features(), steer_cpu_path());
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        test_file(STEER_TESTDATA_DIR "/llama-quant", "tiny-random-llama-quant", types[i]);
    test_file(STEER_TESTDATA_DIR "/qwen2-quant", "tiny-random-qwen2-quant", "Q4_K_M");
    return tu_finish("test_quant_model");
}

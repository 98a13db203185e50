/* test_quant.c — ggml's block-quantized types (src/formats/quant.c, the GGUF
 * reader and writer on them, the public dtype API):
 *   - dequantization of every tensor of every llama.cpp-quantized fixture file
 *     (tests/data/llama-quant, qwen2-quant) against dequant_checksums.json,
 *     ggml's own to_float: first values and max |x| bit for bit, the double
 *     sums exactly (same order);
 *   - the reference quantizers on the fixtures' F32 model (regenerated with
 *     steer make-model + convert, checked by hash): Q8_0/Q4_0/Q4_1/Q5_0/Q5_1
 *     byte-identical to llama-quantize's tensors; the K types within
 *     TOL_QUANT_K_RMS_RATIO of llama-quantize's RMS error and, as it stands,
 *     byte-identical too;
 *   - hand-made blocks (element order, nibble and bit planes), re-quantization,
 *     zeros, bad input, exact-size buffers, f16 conversions;
 *   - GGUF files: every type written and read back, an unsupported type, a bad
 *     row length, truncation. */
#include "test_util.h"

#include "formats.h"
#include "quant.h"

#include <immintrin.h>
#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>

#define LQ_DIR STEER_TESTDATA_DIR "/llama-quant"
#define QQ_DIR STEER_TESTDATA_DIR "/qwen2-quant"
#define LQ_FILE(ty) LQ_DIR "/tiny-random-llama-quant." ty ".gguf"
/* FNV-1a 64 of the fixture's tiny-random-llama-quant.F32.gguf (7360288 bytes,
 * sha256 3cb0de92…9b41; llama-quant/README.md): the regenerated file must be it. */
#define F32_FNV1A 0x4598b3e9cc16bc4aull
#define F32_SIZE 7360288

static char g_tmp[512];

static const steer_dtype QTYPES[] = {STEER_DTYPE_Q8_0, STEER_DTYPE_Q4_0, STEER_DTYPE_Q4_1, STEER_DTYPE_Q5_0,
                                     STEER_DTYPE_Q5_1, STEER_DTYPE_Q2_K, STEER_DTYPE_Q3_K, STEER_DTYPE_Q4_K,
                                     STEER_DTYPE_Q5_K, STEER_DTYPE_Q6_K};
#define N_QTYPES ((int)(sizeof QTYPES / sizeof QTYPES[0]))

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static steer_dtype tensor_dtype(const gg_tensor *t)
{
    steer_dtype dt = STEER_DTYPE_COUNT;
    if (q_from_ggml_type((uint32_t)t->type, &dt) != 0) return STEER_DTYPE_COUNT;
    return dt;
}

static size_t tensor_elems(const gg_tensor *t)
{
    size_t n = 1;
    for (int d = 0; d < t->n_dims; d++) n *= (size_t)t->ne[d];
    return n;
}

/* All elements of t (F32/F16/BF16/block type) as float, row by row; malloc'd. */
static float *dequant_tensor(const gg_tensor *t)
{
    steer_dtype dt = tensor_dtype(t);
    size_t n = tensor_elems(t), ne0 = (size_t)t->ne[0], rb = q_row_bytes(dt, ne0);
    float *x = malloc(n * sizeof *x + 1);
    if (!x || rb == 0) {
        fprintf(stderr, "FAIL: dequant_tensor %s\n", t->name);
        exit(1);
    }
    for (size_t r = 0; r < n / ne0; r++) q_dequant_row(dt, (const uint8_t *)t->data + r * rb, x + r * ne0, ne0);
    return x;
}

static double rms_diff(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    return sqrt(s / (double)n);
}

/* ---------------------------------------------------------------- public dtype API */

static void test_dtype_api(void)
{
    static const struct {
        steer_dtype t;
        const char *name, *lower;
        size_t be, bb;
    } want[] = {
        {STEER_DTYPE_Q8_0, "Q8_0", "q8_0", 32, 34},   {STEER_DTYPE_Q4_0, "Q4_0", "q4_0", 32, 18},
        {STEER_DTYPE_Q4_1, "Q4_1", "q4_1", 32, 20},   {STEER_DTYPE_Q5_0, "Q5_0", "q5_0", 32, 22},
        {STEER_DTYPE_Q5_1, "Q5_1", "q5_1", 32, 24},   {STEER_DTYPE_Q2_K, "Q2_K", "q2_k", 256, 84},
        {STEER_DTYPE_Q3_K, "Q3_K", "q3_k", 256, 110}, {STEER_DTYPE_Q4_K, "Q4_K", "q4_k", 256, 144},
        {STEER_DTYPE_Q5_K, "Q5_K", "q5_k", 256, 176}, {STEER_DTYPE_Q6_K, "Q6_K", "q6_k", 256, 210},
    };
    static const uint32_t ggml[] = {8, 2, 3, 6, 7, 10, 11, 12, 13, 14};
    CHECK(STEER_DTYPE_Q8_0 == 8 && STEER_DTYPE_Q6_K == 17 && STEER_DTYPE_COUNT == 18, "enum values");
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        steer_dtype t = want[i].t, p = STEER_DTYPE_F32, p2 = STEER_DTYPE_F32;
        size_t be = 0, bb = 0;
        CHECK(strcmp(steer_dtype_name(t), want[i].name) == 0, "name %s", steer_dtype_name(t));
        CHECK(steer_dtype_parse(want[i].lower, &p) == STEER_OK && p == t, "parse %s", want[i].lower);
        CHECK(steer_dtype_parse(want[i].name, &p2) == STEER_OK && p2 == t, "parse %s", want[i].name);
        CHECK(steer_dtype_size(t) == 0, "size of %s", want[i].name);
        CHECK(steer_dtype_block(t, &be, &bb) == STEER_OK && be == want[i].be && bb == want[i].bb,
              "%s block %zu/%zu", want[i].name, be, bb);
        CHECK(steer_dtype_row_bytes(t, want[i].be * 3) == want[i].bb * 3, "%s row bytes", want[i].name);
        CHECK(steer_dtype_row_bytes(t, want[i].be + 1) == 0, "%s row bytes of a partial block", want[i].name);
        CHECK(steer_dtype_row_bytes(t, 0) == 0, "%s row bytes of 0", want[i].name);
        CHECK(steer_dtype_is_quantized(t) == 1, "%s is quantized", want[i].name);
        CHECK(q_to_ggml_type(t) == ggml[i], "%s ggml type %u", want[i].name, q_to_ggml_type(t));
        steer_dtype back = STEER_DTYPE_F32;
        CHECK(q_from_ggml_type(ggml[i], &back) == 0 && back == t, "ggml type %u", ggml[i]);
    }
    steer_dtype p = STEER_DTYPE_F32;
    CHECK(steer_dtype_parse("Q4_k", &p) == STEER_OK && p == STEER_DTYPE_Q4_K, "mixed case");
    CHECK(steer_dtype_parse("bF16", &p) == STEER_OK && p == STEER_DTYPE_BF16, "mixed case bf16");
    CHECK(steer_dtype_parse("q4_k_m", &p) == STEER_EARG && p == STEER_DTYPE_BF16, "a preset is not a dtype");
    CHECK(steer_dtype_parse("f64", &p) == STEER_EARG, "f64 is not a weight dtype");
    printf("parse error: %s\n", steer_last_error());
    size_t be = 0, bb = 0;
    CHECK(steer_dtype_block(STEER_DTYPE_BF16, &be, &bb) == STEER_OK && be == 1 && bb == 2, "bf16 block");
    CHECK(steer_dtype_block(STEER_DTYPE_COUNT, &be, &bb) == STEER_EARG, "invalid dtype block");
    CHECK(steer_dtype_row_bytes(STEER_DTYPE_F32, 7) == 28 && steer_dtype_row_bytes(STEER_DTYPE_KEEP, 7) == 0,
          "plain row bytes");
    CHECK(!steer_dtype_is_quantized(STEER_DTYPE_F32) && !steer_dtype_is_quantized(STEER_DTYPE_I8) &&
              !steer_dtype_is_quantized(STEER_DTYPE_COUNT) && !steer_dtype_is_quantized(STEER_DTYPE_KEEP),
          "plain types are not quantized");
    steer_dtype none;
    CHECK(q_from_ggml_type(16, &none) != 0 && q_from_ggml_type(UINT32_MAX, &none) != 0, "IQ2_XXS is not read");
    CHECK(q_to_ggml_type(STEER_DTYPE_F64) == UINT32_MAX && q_to_ggml_type(STEER_DTYPE_BF16) == 30, "ggml of plain");

    /* steer_dtype_to_f32 on a block type: a whole block, and a partial one. */
    uint8_t blk[34] = {0x00, 0x3C}; /* d = 1.0 */
    for (int j = 0; j < 32; j++) blk[2 + j] = (uint8_t)(int8_t)(j - 16);
    float y[32];
    CHECK_OK(steer_dtype_to_f32(y, blk, STEER_DTYPE_Q8_0, 32));
    CHECK(y[0] == -16 && y[31] == 15, "q8_0 via steer_dtype_to_f32: %g %g", y[0], y[31]);
    int rc = steer_dtype_to_f32(y, blk, STEER_DTYPE_Q8_0, 31);
    printf("to_f32 of 31 Q8_0 elements: %d %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "Q8_0"), "partial block: %d", rc);
    CHECK(steer_dtype_to_f32(y, blk, STEER_DTYPE_I32, 4) == STEER_EARG, "I32");
    /* A safetensors file cannot hold a block type. */
    steer_tensors_writer *w = NULL;
    CHECK_OK(steer_tensors_writer_new(&w));
    int64_t shape[1] = {32};
    rc = steer_tensors_writer_add(w, "x", STEER_DTYPE_Q8_0, 1, shape, blk);
    printf("safetensors writer, Q8_0: %d %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG, "safetensors accepted Q8_0");
    steer_tensors_writer_free(w);
}

/* ---------------------------------------------------------------- f16 */

/* The CPU's own conversions (F16C; the build targets x86-64-v3): an
 * independent reference for q_f16_to_f32 / q_f32_to_f16, which are also
 * steer_f16_to_f32 / steer_f32_to_f16. */
static float hw_f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
static uint16_t hw_f32_to_f16(float f) { return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }

static void test_f16(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float a = q_f16_to_f32((uint16_t)h), b = hw_f16_to_f32((uint16_t)h);
        bad += isnan(a) ? !isnan(b) : f2u(a) != f2u(b);
    }
    /* Narrowing: a stride through all float bit patterns plus the neighbours
     * of every half and of every midpoint between two halves (ties). */
    int n = 0;
    for (uint64_t u = 0; u < 0x100000000ull; u += 997, n++) {
        float f = u2f((uint32_t)u);
        if (isnan(f)) continue;
        bad += q_f32_to_f16(f) != hw_f32_to_f16(f);
    }
    for (uint32_t h = 0; h < 0x7C00u; h++) {
        for (uint32_t s = 0; s < 2; s++) {
            uint32_t mid = f2u(q_f16_to_f32((uint16_t)h)) + (1u << 12); /* normal halves: the tie above */
            for (int k = -2; k <= 2; k++, n++) {
                float f = u2f((mid + (uint32_t)k) | (s << 31));
                bad += q_f32_to_f16(f) != hw_f32_to_f16(f);
                float g = u2f((f2u(q_f16_to_f32((uint16_t)h)) + (uint32_t)k) | (s << 31));
                if (!isnan(g)) /* -0 minus 1 or 2 wraps to a NaN; NaNs: the canonical 0x7E00 below, as ggml */
                    bad += q_f32_to_f16(g) != hw_f32_to_f16(g);
            }
        }
    }
    printf("f16: widening of all 65536 halves and narrowing of %d floats agree with F16C (vcvtph2ps, vcvtps2ph): %d mismatches\n",
           n, bad);
    CHECK(bad == 0, "%d mismatches", bad);
    CHECK(q_f32_to_f16(65520.f) == 0x7C00 && q_f32_to_f16(65519.f) == 0x7BFF, "overflow rounding");
    CHECK(q_f32_to_f16(0x1p-25f) == 0 && q_f32_to_f16(0x1.000002p-25f) == 1 && q_f32_to_f16(-0.0f) == 0x8000,
          "underflow rounding");
    CHECK(q_f32_to_f16(NAN) == 0x7E00, "NaN");
}

/* ---------------------------------------------------------------- hand-made blocks */

/* The layouts, independently of the fixtures: every element gets a distinct
 * level, so a swapped nibble, plane or bit shows. */
static void test_layouts(void)
{
    float y[256];
    /* Q4_0: d = 1; qs[j] = j | (15 − j) << 4 → x_j = j − 8, x_{j+16} = 7 − j. */
    uint8_t q40[18] = {0x00, 0x3C};
    for (int j = 0; j < 16; j++) q40[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    q_dequant_row(STEER_DTYPE_Q4_0, q40, y, 32);
    int bad = 0;
    for (int j = 0; j < 16; j++) bad += y[j] != (float)(j - 8) || y[j + 16] != (float)(7 - j);
    CHECK(bad == 0, "Q4_0 element order (%d wrong)", bad);
    /* Q4_1: d = 0.5, m = −1: x = q/2 − 1. */
    uint8_t q41[20] = {0x00, 0x38, 0x00, 0xBC};
    for (int j = 0; j < 16; j++) q41[4 + j] = (uint8_t)(j | ((15 - j) << 4));
    q_dequant_row(STEER_DTYPE_Q4_1, q41, y, 32);
    bad = 0;
    for (int j = 0; j < 16; j++) bad += y[j] != 0.5f * (float)j - 1 || y[j + 16] != 0.5f * (float)(15 - j) - 1;
    CHECK(bad == 0, "Q4_1 (%d wrong)", bad);
    /* Q5_0: d = 1; qh bit j set for even j → x_j = (q | 16 if even) − 16. */
    uint8_t q50[22] = {0x00, 0x3C, 0x55, 0x55, 0x55, 0x55};
    for (int j = 0; j < 16; j++) q50[6 + j] = (uint8_t)(j | ((15 - j) << 4));
    q_dequant_row(STEER_DTYPE_Q5_0, q50, y, 32);
    bad = 0;
    for (int j = 0; j < 16; j++) {
        int lo = j | (j % 2 == 0 ? 16 : 0), hi = (15 - j) | (j % 2 == 0 ? 16 : 0); /* bit j + 16: same parity */
        bad += y[j] != (float)(lo - 16) || y[j + 16] != (float)(hi - 16);
    }
    CHECK(bad == 0, "Q5_0 5th bits (%d wrong)", bad);
    /* Q5_1: d = 1, m = 0; qh = 0xFFFF0000 (only the second half has bit 4). */
    uint8_t q51[24] = {0x00, 0x3C, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF};
    for (int j = 0; j < 16; j++) q51[8 + j] = (uint8_t)(j | (j << 4));
    q_dequant_row(STEER_DTYPE_Q5_1, q51, y, 32);
    bad = 0;
    for (int j = 0; j < 16; j++) bad += y[j] != (float)j || y[j + 16] != (float)(j + 16);
    CHECK(bad == 0, "Q5_1 (%d wrong)", bad);

    /* Q6_K: d = 1, scales s_g = g + 1; every element's 6-bit level q set so
     * that element e = 128h + 32p + l has q = (e * 7) % 64. */
    uint8_t q6[210] = {0};
    int want_q[256];
    for (int e = 0; e < 256; e++) want_q[e] = (e * 7) % 64;
    for (int h = 0; h < 2; h++)
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++) {
                int q = want_q[128 * h + 32 * p + l];
                uint8_t *lo = &q6[64 * h + l + 32 * (p & 1)];
                *lo = (uint8_t)(*lo | ((q & 15) << (p < 2 ? 0 : 4)));
                q6[128 + 32 * h + l] = (uint8_t)(q6[128 + 32 * h + l] | ((q >> 4) << (2 * p)));
            }
    for (int g = 0; g < 16; g++) q6[192 + g] = (uint8_t)(g + 1);
    q6[208] = 0x00, q6[209] = 0x3C;
    q_dequant_row(STEER_DTYPE_Q6_K, q6, y, 256);
    bad = 0;
    for (int e = 0; e < 256; e++) bad += y[e] != (float)((e / 16 + 1) * (want_q[e] - 32));
    CHECK(bad == 0, "Q6_K planes (%d wrong)", bad);

    /* Q4_K: d = 1, dmin = 1; group g: scale g + 1, min g (6-bit packing of
     * scales[12]); element e's nibble = e % 16. */
    uint8_t q4k[144] = {0x00, 0x3C, 0x00, 0x3C};
    uint8_t *s = q4k + 4;
    for (int g = 0; g < 8; g++) {
        int sc = g + 1 + (g >= 4 ? 40 : 0), mn = g + (g >= 4 ? 50 : 0); /* > 15 for the upper groups */
        if (g < 4) {
            s[g] = (uint8_t)sc;
            s[g + 4] = (uint8_t)mn;
        } else {
            s[g + 4] = (uint8_t)((sc & 15) | ((mn & 15) << 4));
            s[g - 4] = (uint8_t)(s[g - 4] | ((sc >> 4) << 6));
            s[g] = (uint8_t)(s[g] | ((mn >> 4) << 6));
        }
    }
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) q4k[16 + 32 * c + l] = (uint8_t)((l % 16) | (((l + 3) % 16) << 4));
    q_dequant_row(STEER_DTYPE_Q4_K, q4k, y, 256);
    bad = 0;
    for (int e = 0; e < 256; e++) {
        int g = e / 32, l = e % 32, q = g % 2 == 0 ? l % 16 : (l + 3) % 16;
        int sc = g + 1 + (g >= 4 ? 40 : 0), mn = g + (g >= 4 ? 50 : 0);
        bad += y[e] != (float)(sc * q - mn);
    }
    CHECK(bad == 0, "Q4_K scales/mins and nibbles (%d wrong)", bad);

    /* Q3_K: d = 1; 6-bit scales s_j = j − 16 (stored + 32); element e's
     * 3-bit level (e % 8) − 4: 2 low bits in the planes, bit 2 in hmask. */
    uint8_t q3[110] = {0};
    for (int j = 0; j < 16; j++) {
        int l = j - 16 + 32;
        if (j < 8)
            q3[96 + j] = (uint8_t)(l & 15);
        else
            q3[96 + j - 8] = (uint8_t)(q3[96 + j - 8] | ((l & 15) << 4));
        q3[96 + 8 + j % 4] = (uint8_t)(q3[96 + 8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
    }
    for (int e = 0; e < 256; e++) {
        int lvl = e % 8, h = e / 128, p = (e % 128) / 32, l = e % 32;
        q3[32 + 32 * h + l] = (uint8_t)(q3[32 + 32 * h + l] | ((lvl & 3) << (2 * p)));
        if (lvl & 4) q3[l] = (uint8_t)(q3[l] | (1u << (e / 32)));
    }
    q3[108] = 0x00, q3[109] = 0x3C;
    q_dequant_row(STEER_DTYPE_Q3_K, q3, y, 256);
    bad = 0;
    for (int e = 0; e < 256; e++) bad += y[e] != (float)((e / 16 - 16) * (e % 8 - 4));
    CHECK(bad == 0, "Q3_K planes, hmask and scales (%d wrong)", bad);
    printf("hand-made Q4_0, Q4_1, Q5_0, Q5_1, Q3_K, Q4_K, Q6_K blocks decode as specified\n");
}

/* ---------------------------------------------------------------- dequant_checksums.json */

/* Files of the fixtures not copied into tests/data (size budget). */
static int not_copied(const char *file) { return strcmp(file, "tiny-random-qwen2-quant.Q8_0.gguf") == 0; }

static const char *lower_type(const gg_tensor *t, char *buf)
{
    const char *n = steer_dtype_name(tensor_dtype(t));
    size_t i = 0;
    for (; n[i] && i < 15; i++) buf[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] - 'A' + 'a' : n[i]);
    buf[i] = 0;
    return buf;
}

static int check_one(const char *file, const gg_tensor *t, const cJSON *e)
{
    char tb[16];
    const cJSON *first = cJSON_GetObjectItem(e, "first8"), *ne = cJSON_GetObjectItem(e, "ne");
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(e, "type"));
    size_t n = tensor_elems(t);
    if (!type || strcasecmp(type, lower_type(t, tb)) != 0 || (size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "n")) != n ||
        cJSON_GetArraySize(ne) < 1 || (uint64_t)cJSON_GetArrayItem(ne, 0)->valuedouble != t->ne[0]) {
        fprintf(stderr, "FAIL %s %s: type %s (json %s) or shape differ\n", file, t->name, tb, type ? type : "?");
        return 1;
    }
    float *x = dequant_tensor(t);
    double sum = 0, sumsq = 0, wsum = 0;
    float maxabs = 0;
    for (size_t i = 0; i < n; i++) {
        double v = (double)x[i];
        sum += v;
        sumsq += v * v;
        wsum += v * (double)((i % 251) + 1);
        if (fabsf(x[i]) > maxabs || isnan(x[i])) maxabs = isnan(x[i]) ? NAN : fabsf(x[i]);
    }
    /* first8: the exact float values; compared as numbers because the JSON
     * writes ggml's −0 (e.g. Q4_0 level 8 with a negative scale) as 0. */
    int bad = 0;
    for (int i = 0; i < 8 && i < (int)n; i++) bad += x[i] != (float)cJSON_GetArrayItem(first, i)->valuedouble;
    double js = cJSON_GetObjectItem(e, "sum")->valuedouble, jq = cJSON_GetObjectItem(e, "sumsq")->valuedouble,
           jw = cJSON_GetObjectItem(e, "wsum")->valuedouble;
    float jm = (float)cJSON_GetObjectItem(e, "maxabs")->valuedouble;
    if (bad || f2u(maxabs) != f2u(jm) || sum != js || sumsq != jq || wsum != jw) {
        fprintf(stderr,
                "FAIL %s %s (%s): first8 %d wrong; maxabs %.9g vs %.9g; sum %.17g vs %.17g; sumsq %.17g vs %.17g; "
                "wsum %.17g vs %.17g\n",
                file, t->name, tb, bad, maxabs, jm, sum, js, sumsq, jq, wsum, jw);
        free(x);
        return 1;
    }
    free(x);
    return 0;
}

/* Every tensor of every file listed in dir/dequant_checksums.json. Returns
 * the number of quantized tensors checked; counts per type in per_type. */
static int test_checksums(const char *dir, int *per_type)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/dequant_checksums.json", dir);
    char *text = tu_read_file(path, NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    CHECK(j != NULL, "%s: bad JSON", path);
    if (!j) return 0;
    int n_q = 0, n_files = 0;
    const cJSON *file;
    cJSON_ArrayForEach(file, cJSON_GetObjectItem(j, "files"))
    {
        snprintf(path, sizeof path, "%s/%s", dir, file->string);
        if (access(path, R_OK) != 0 && not_copied(file->string)) {
            printf("  %s: not in tests/data (size budget), skipped\n", file->string);
            continue;
        }
        gg_file *g = NULL;
        int rc = gg_open(path, &g);
        CHECK(rc == STEER_OK, "%s: %s", path, steer_last_error());
        if (rc != STEER_OK) continue;
        n_files++;
        int n_t = 0, failed = 0, n_json = cJSON_GetArraySize(file);
        const cJSON *e;
        cJSON_ArrayForEach(e, file)
        {
            const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(e, "name"));
            const gg_tensor *t = name ? gg_find_tensor(g, name) : NULL;
            CHECK(t != NULL, "%s: no tensor %s", file->string, name ? name : "?");
            if (!t) continue;
            n_t++;
            steer_dtype dt = tensor_dtype(t);
            int bad = check_one(file->string, t, e);
            failed += bad;
            tu_failures += bad;
            if (q_is_quantized(dt)) {
                n_q++;
                per_type[dt]++;
            }
        }
        printf("  %-40s %2d tensors (file %2d, json %2d): %d differ from ggml's dequantization\n", file->string, n_t,
               gg_n_tensors(g), n_json, failed);
        CHECK(n_t == gg_n_tensors(g) && n_t == n_json, "%s: %d of %d tensors checked", file->string, n_t,
              gg_n_tensors(g));
        gg_close(g);
    }
    CHECK(n_files > 0, "%s: no files", dir);
    cJSON_Delete(j);
    return n_q;
}

static void test_dequant_fixtures(void)
{
    int per_type[STEER_DTYPE_COUNT] = {0};
    int n = test_checksums(LQ_DIR, per_type);
    n += test_checksums(QQ_DIR, per_type);
    printf("dequantization vs ggml: %d quantized tensors, per type:", n);
    for (int i = 0; i < N_QTYPES; i++) {
        printf(" %s %d", steer_dtype_name(QTYPES[i]), per_type[QTYPES[i]]);
        CHECK(per_type[QTYPES[i]] > 0, "no %s tensor checked", steer_dtype_name(QTYPES[i]));
    }
    printf("\n");
}

/* ---------------------------------------------------------------- quantizers vs llama-quantize */


/* The fixture's F32 GGUF, regenerated as its README says (steer make-model
 * + steer convert at the fixture's commit; the generator is deterministic). */
static int make_f32(char *out, size_t cap)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/tiny-random-llama-quant", g_tmp); /* the name goes into general.name */
    snprintf(out, cap, "%s/tiny-random-llama-quant.F32.gguf", g_tmp);
    steer_make_model_params p = steer_make_model_default_params(STEER_ARCH_LLAMA);
    p.d_model = 256, p.d_ff = 768, p.n_layer = 2, p.n_head = 4, p.n_kv_head = 2, p.n_vocab = 512, p.n_ctx = 256;
    p.seed = 20250220;
    p.tokenizer = STEER_MODELS_DIR "/stories260K/tok512.bin";
    CHECK_OK(steer_make_model(&p, dir));
    steer_convert_params cp = steer_convert_default_params();
    CHECK_OK(steer_convert(dir, out, &cp));
    io_remove_dir(dir);
    size_t size = 0;
    uint64_t h = tu_fnv1a_file(out, &size);
    printf("regenerated %s: %zu bytes, FNV-1a %016llx (want %d, %016llx)\n", out, size, (unsigned long long)h,
           F32_SIZE, (unsigned long long)F32_FNV1A);
    CHECK(size == F32_SIZE && h == F32_FNV1A,
          "steer make-model/convert no longer reproduce the llama-quant F32 file: copy it from "
          "shared/data/golden/fixtures/llama-quant instead");
    return size == F32_SIZE && h == F32_FNV1A;
}

/* Quantizes the F32 tensor like t (row by row); malloc'd t->nbytes bytes. */
static uint8_t *quantize_like(const gg_tensor *f32, const gg_tensor *t)
{
    steer_dtype dt = tensor_dtype(t);
    size_t ne0 = (size_t)t->ne[0], rb = q_row_bytes(dt, ne0), rows = tensor_elems(t) / ne0;
    uint8_t *q = malloc(t->nbytes + 1);
    if (!q || f32->type != GGML_TYPE_F32 || tensor_elems(f32) != tensor_elems(t) || f32->ne[0] != t->ne[0]) {
        fprintf(stderr, "FAIL: quantize_like %s\n", t->name);
        exit(1);
    }
    for (size_t r = 0; r < rows; r++)
        CHECK_OK(q_quantize_row(dt, (const float *)f32->data + r * ne0, q + r * rb, ne0));
    return q;
}

static void test_quantize_legacy(const gg_file *f32)
{
    static const char *const files[] = {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"};
    for (int i = 0; i < 5; i++) {
        char path[512];
        snprintf(path, sizeof path, LQ_DIR "/tiny-random-llama-quant.%s.gguf", files[i]);
        steer_dtype want;
        CHECK_OK(steer_dtype_parse(files[i], &want));
        gg_file *g = NULL;
        CHECK_OK(gg_open(path, &g));
        int n = 0, same = 0;
        size_t bytes_diff = 0, bytes = 0;
        for (int k = 0; k < gg_n_tensors(g); k++) {
            const gg_tensor *t = gg_tensor_at(g, k);
            if (tensor_dtype(t) != want) continue; /* F32 norms, the Q6_K output.weight */
            const gg_tensor *src = gg_find_tensor(f32, t->name);
            CHECK(src != NULL, "no F32 %s", t->name);
            if (!src) continue;
            uint8_t *q = quantize_like(src, t);
            size_t d = 0;
            for (size_t b = 0; b < t->nbytes; b++) d += q[b] != ((const uint8_t *)t->data)[b];
            n++;
            same += d == 0;
            bytes_diff += d;
            bytes += t->nbytes;
            free(q);
        }
        printf("  %s: %d of %d tensors byte-identical to llama-quantize's (%zu of %zu bytes differ)\n", files[i],
               same, n, bytes_diff, bytes);
        CHECK(n >= 15 && same == n, "%s: %d of %d tensors identical", files[i], same, n);
        gg_close(g);
    }
}

/* K types: the RMS error of our quantizer against llama-quantize's on every
 * K-type tensor of every fixture file. */
static void test_quantize_k(const gg_file *f32)
{
    static const char *const files[] = {"Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q4_0"};
    double worst[STEER_DTYPE_COUNT] = {0};
    int n[STEER_DTYPE_COUNT] = {0}, same[STEER_DTYPE_COUNT] = {0};
    double ours_sum[STEER_DTYPE_COUNT] = {0}, ref_sum[STEER_DTYPE_COUNT] = {0};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, LQ_DIR "/tiny-random-llama-quant.%s.gguf", files[i]);
        gg_file *g = NULL;
        CHECK_OK(gg_open(path, &g));
        for (int k = 0; k < gg_n_tensors(g); k++) {
            const gg_tensor *t = gg_tensor_at(g, k);
            steer_dtype dt = tensor_dtype(t);
            if (dt < STEER_DTYPE_Q2_K || !q_is_quantized(dt)) continue;
            const gg_tensor *src = gg_find_tensor(f32, t->name);
            if (!src) continue;
            size_t ne = tensor_elems(t);
            uint8_t *q = quantize_like(src, t);
            gg_tensor mine = *t;
            mine.data = q;
            float *yo = dequant_tensor(&mine), *yr = dequant_tensor(t);
            double eo = rms_diff(yo, src->data, ne), er = rms_diff(yr, src->data, ne);
            double ratio = eo / er;
            same[dt] += memcmp(q, t->data, t->nbytes) == 0;
            n[dt]++;
            ours_sum[dt] += eo;
            ref_sum[dt] += er;
            if (ratio > worst[dt]) worst[dt] = ratio;
            CHECK(ratio <= TOL_QUANT_K_RMS_RATIO, "%s %s (%s): rms error %.4e vs llama-quantize's %.4e (ratio %.4f)",
                  files[i], t->name, steer_dtype_name(dt), eo, er, ratio);
            free(q), free(yo), free(yr);
        }
        gg_close(g);
    }
    for (steer_dtype dt = STEER_DTYPE_Q2_K; dt <= STEER_DTYPE_Q6_K; dt++) {
        printf("  %s: %2d tensors, mean rms error %.4e (llama-quantize %.4e), worst ratio %.4f (tol %.2f), "
               "%d byte-identical\n",
               steer_dtype_name(dt), n[dt], ours_sum[dt] / n[dt], ref_sum[dt] / n[dt], worst[dt],
               TOL_QUANT_K_RMS_RATIO, same[dt]);
        CHECK(n[dt] > 0, "no %s tensor", steer_dtype_name(dt));
        /* More than the issue asks (close in error): quant.c follows ggml's
         * reference search float operation for float, so today every tensor
         * comes out byte-identical. If the search is changed on purpose, drop
         * this check and keep the RMS bound above. */
        CHECK(same[dt] == n[dt], "%s: %d of %d tensors byte-identical to llama-quantize's", steer_dtype_name(dt),
              same[dt], n[dt]);
    }
}

/* Re-quantizing dequantized values. Q8_0, Q4_0, Q5_0 (symmetric, the
 * extreme element defines the scale exactly): the same bytes, by construction
 * (the f16 scale times the extreme level divided by it is the scale again).
 * The others: the second round trip may pick another grid but must not move
 * the values by more than the first quantization step did. */
static void test_requantize(const gg_file *f32)
{
    const gg_tensor *src = gg_find_tensor(f32, "blk.0.ffn_gate.weight");
    CHECK(src != NULL, "no F32 tensor");
    if (!src) return;
    size_t n = tensor_elems(src);
    for (int i = 0; i < N_QTYPES; i++) {
        steer_dtype dt = QTYPES[i];
        size_t rb = q_row_bytes(dt, n);
        uint8_t *b1 = malloc(rb), *b2 = malloc(rb);
        float *y1 = malloc(n * sizeof *y1), *y2 = malloc(n * sizeof *y2);
        CHECK_OK(q_quantize_row(dt, src->data, b1, n));
        q_dequant_row(dt, b1, y1, n);
        CHECK_OK(q_quantize_row(dt, y1, b2, n));
        q_dequant_row(dt, b2, y2, n);
        size_t be, bb, nb, same = 0;
        q_block(dt, &be, &bb);
        nb = n / be;
        for (size_t k = 0; k < nb; k++) same += memcmp(b1 + k * bb, b2 + k * bb, bb) == 0;
        double e1 = rms_diff(y1, src->data, n), e2 = rms_diff(y2, y1, n);
        printf("  %s: re-quantized %zu of %zu blocks identical; rms of the second round trip %.3e (first %.3e)\n",
               steer_dtype_name(dt), same, nb, e2, e1);
        if (dt == STEER_DTYPE_Q8_0 || dt == STEER_DTYPE_Q4_0 || dt == STEER_DTYPE_Q5_0)
            CHECK(same == nb, "%s: re-quantization changed %zu blocks", steer_dtype_name(dt), nb - same);
        else
            CHECK(e2 <= e1, "%s: second round trip %.3e > first %.3e", steer_dtype_name(dt), e2, e1);
        free(b1), free(b2), free(y1), free(y2);
    }
}

/* ---------------------------------------------------------------- edge cases */

static void test_edges(void)
{
    enum { N = 512 };
    float x[N], y[N + 8];
    for (int i = 0; i < N; i++) x[i] = 0;
    for (int i = 0; i < N_QTYPES; i++) {
        steer_dtype dt = QTYPES[i];
        size_t rb = q_row_bytes(dt, N);
        uint8_t *b = malloc(rb); /* exact size: ASan sees any read or write past it */
        CHECK_OK(q_quantize_row(dt, x, b, N));
        q_dequant_row(dt, b, y, N);
        int nz = 0;
        for (int k = 0; k < N; k++) nz += y[k] != 0;
        CHECK(nz == 0, "%s: zeros come back as %d non-zeros", steer_dtype_name(dt), nz);
        /* a partial block: only whole blocks are read and written */
        size_t be;
        q_block(dt, &be, NULL);
        for (int k = 0; k < N + 8; k++) y[k] = 42;
        q_dequant_row(dt, b, y, be + be / 2);
        CHECK(y[be] == 42 && y[be - 1] != 42, "%s: partial block written", steer_dtype_name(dt));
        /* errors */
        x[7] = NAN;
        int rc = q_quantize_row(dt, x, b, N);
        CHECK(rc == STEER_EARG && strstr(steer_last_error(), "element 7 is NaN"), "%s NaN: %d %s",
              steer_dtype_name(dt), rc, steer_last_error());
        x[7] = -INFINITY;
        rc = q_quantize_row(dt, x, b, N);
        CHECK(rc == STEER_EARG && strstr(steer_last_error(), "infinite"), "%s -Inf: %d", steer_dtype_name(dt), rc);
        x[7] = 0;
        rc = q_quantize_row(dt, x, b, be + 1);
        CHECK(rc == STEER_EARG && strstr(steer_last_error(), "multiple"), "%s partial: %d", steer_dtype_name(dt), rc);
        free(b);
    }
    printf("last quantize error: %s\n", steer_last_error());
    uint8_t b[4] = {0};
    CHECK(q_quantize_row(STEER_DTYPE_F16, x, b, 2) == STEER_EARG, "F16 is not a block type");
    /* Unsupported dtypes give NaN, not garbage. */
    q_dequant_row(STEER_DTYPE_I32, b, y, 1);
    CHECK(isnan(y[0]), "I32 dequant");
    /* F16 and BF16 rows through the same entry point. */
    uint8_t h[4] = {0x00, 0x3C, 0x80, 0x3F}; /* f16 1.0; bf16 1.0 at bytes 2..3 */
    q_dequant_row(STEER_DTYPE_F16, h, y, 1);
    q_dequant_row(STEER_DTYPE_BF16, h + 2, y + 1, 1);
    CHECK(y[0] == 1.0f && y[1] == 1.0f, "f16/bf16: %g %g", y[0], y[1]);
    /* Tiny blocks stay finite and tiny: 1e-30, and 1e-38 and 1e-44 (the
     * scale is subnormal and its reciprocal overflows; ggml's casts are
     * undefined there, quant.c clamps). */
    for (int s = 0; s < 3; s++) {
        const float scale = s == 0 ? 1e-30f : s == 1 ? 1e-38f : 1e-44f;
        for (int i = 0; i < N; i++) x[i] = (i % 2 ? 1 : -1) * scale * (float)(i % 37);
        for (int i = 0; i < N_QTYPES; i++) {
            uint8_t *q = malloc(q_row_bytes(QTYPES[i], N));
            CHECK_OK(q_quantize_row(QTYPES[i], x, q, N));
            q_dequant_row(QTYPES[i], q, y, N);
            int bad = 0;
            for (int k = 0; k < N; k++) bad += !isfinite(y[k]) || fabsf(y[k]) > 1e-20f;
            CHECK(bad == 0, "%s: tiny values (%g): %d bad", steer_dtype_name(QTYPES[i]), (double)scale, bad);
            free(q);
        }
    }
}

/* ---------------------------------------------------------------- GGUF files */

static size_t find_bytes(const uint8_t *d, size_t n, const char *s)
{
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(d + i, s, k) == 0) return i;
    return SIZE_MAX;
}

static void write_bytes(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(d, 1, n, f) == n, "write %s", path);
    if (f) fclose(f);
}

static void test_gguf_files(void)
{
    char path[600], bad[600];
    snprintf(path, sizeof path, "%s/all_types.gguf", g_tmp);
    snprintf(bad, sizeof bad, "%s/bad.gguf", g_tmp);
    gg_writer *w = NULL;
    CHECK_OK(gg_writer_new(&w));
    CHECK_OK(gg_writer_set_str(w, "general.architecture", "llama"));
    uint8_t *data[N_QTYPES];
    float src[512 * 3];
    for (int i = 0; i < 512 * 3; i++) src[i] = sinf(0.37f * (float)i) * (1.0f + (float)(i % 11));
    for (int i = 0; i < N_QTYPES; i++) {
        size_t be;
        q_block(QTYPES[i], &be, NULL);
        uint64_t ne[2] = {2 * be, 3};
        data[i] = malloc(q_row_bytes(QTYPES[i], 6 * be));
        CHECK_OK(q_quantize_row(QTYPES[i], src, data[i], 6 * be));
        char name[64];
        snprintf(name, sizeof name, "t.%s", steer_dtype_name(QTYPES[i]));
        CHECK_OK(gg_writer_add_tensor(w, name, (int)q_to_ggml_type(QTYPES[i]), 2, ne, data[i]));
    }
    uint64_t ne_bad[2] = {100, 1};
    int rc = gg_writer_add_tensor(w, "bad", GGML_TYPE_Q4_K, 2, ne_bad, data[0]);
    printf("writer, Q4_K with 100 columns: %d %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "multiple"), "bad ne0: %d", rc);
    uint64_t ne_iq[1] = {256};
    rc = gg_writer_add_tensor(w, "iq", 16, 1, ne_iq, data[0]);
    CHECK(rc == STEER_EUNSUPPORTED && strstr(steer_last_error(), "IQ2_XXS"), "writer IQ2_XXS: %d", rc);
    CHECK_OK(gg_writer_write(w, path));
    gg_writer_free(w);

    gg_file *g = NULL;
    CHECK_OK(gg_open(path, &g));
    for (int i = 0; i < N_QTYPES; i++) {
        char name[64];
        snprintf(name, sizeof name, "t.%s", steer_dtype_name(QTYPES[i]));
        const gg_tensor *t = gg_find_tensor(g, name);
        size_t be;
        q_block(QTYPES[i], &be, NULL);
        size_t nb = q_row_bytes(QTYPES[i], 6 * be);
        CHECK(t && tensor_dtype(t) == QTYPES[i] && t->nbytes == nb && memcmp(t->data, data[i], nb) == 0,
              "%s read back", name);
    }
    gg_close(g);
    /* The public reader names the types. */
    steer_gguf *pg = NULL;
    CHECK_OK(steer_gguf_open(path, &pg));
    steer_gguf_tensor_info ti;
    CHECK_OK(steer_gguf_tensor_find(pg, "t.Q5_K", &ti));
    CHECK(strcmp(ti.type_name, "Q5_K") == 0 && ti.ggml_type == STEER_GGML_Q5_K && ti.nbytes == 3 * 2 * 176 &&
              ti.shape[0] == 3 && ti.shape[1] == 512,
          "public info %s %zu", ti.type_name, ti.nbytes);
    steer_gguf_free(pg);
    /* The public writer takes the block types too. */
    steer_gguf_writer *pw = NULL;
    CHECK_OK(steer_gguf_writer_new(&pw));
    int64_t shape[2] = {3, 64};
    CHECK_OK(steer_gguf_writer_add_tensor(pw, "q", STEER_GGML_Q4_1, 2, shape, data[2]));
    shape[1] = 48;
    CHECK(steer_gguf_writer_add_tensor(pw, "r", STEER_GGML_Q4_1, 2, shape, data[2]) == STEER_EARG, "48 columns");
    steer_gguf_writer_free(pw);

    size_t n = 0;
    uint8_t *file = tu_read_file(path, &n);
    /* An unsupported type: t.Q8_0's type field (after name, n_dims, ne[2]) set to 16 (IQ2_XXS). */
    size_t at = find_bytes(file, n, "t.Q8_0");
    CHECK(at != SIZE_MAX, "tensor name in the file");
    if (at == SIZE_MAX) return;
    size_t type_at = at + 6 + 4 + 16;
    CHECK(file[type_at] == 8 && file[type_at + 1] == 0, "type field");
    file[type_at] = 16;
    write_bytes(bad, file, n);
    rc = gg_open(bad, &g);
    printf("IQ2_XXS tensor: %d %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EUNSUPPORTED && strstr(steer_last_error(), bad) && strstr(steer_last_error(), "t.Q8_0") &&
              strstr(steer_last_error(), "IQ2_XXS") && !strchr(steer_last_error(), '\n'),
          "rc %d: %s", rc, steer_last_error());
    file[type_at] = 8;
    /* A row length that is not a whole number of blocks. */
    uint8_t ne0_save = file[at + 6 + 4];
    file[at + 6 + 4] = 33; /* ne[0] = 33 for Q8_0 */
    write_bytes(bad, file, n);
    rc = gg_open(bad, &g);
    printf("Q8_0 tensor with 33 columns: %d %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EFORMAT && strstr(steer_last_error(), "multiple of the Q8_0 block"), "rc %d", rc);
    file[at + 6 + 4] = ne0_save;
    /* Data past the end: more rows than the file holds (the last tensor, t.Q6_K). */
    size_t at6 = find_bytes(file, n, "t.Q6_K");
    file[at6 + 6 + 4 + 8] = 200; /* ne[1] = 200 */
    write_bytes(bad, file, n);
    rc = gg_open(bad, &g);
    printf("Q6_K tensor with 200 rows: %d %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EFORMAT && strstr(steer_last_error(), "t.Q6_K"), "rc %d: %s", rc, steer_last_error());
    file[at6 + 6 + 4 + 8] = 3;
    /* Truncated inside the last tensor's data (the file ends with < 32 bytes of padding). */
    write_bytes(bad, file, n - 40);
    rc = gg_open(bad, &g);
    printf("truncated by 40 bytes: %d %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EFORMAT, "rc %d", rc);
    write_bytes(bad, file, n);
    CHECK_OK(gg_open(bad, &g)); /* restored: opens again */
    gg_close(g);
    free(file);
    remove(bad);
    remove(path);
    for (int i = 0; i < N_QTYPES; i++) free(data[i]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *base = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/steer_test_quant.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_tmp)) {
        fprintf(stderr, "FAIL: mkdtemp %s\n", g_tmp);
        return 1;
    }
    test_dtype_api();
    test_f16();
    test_layouts();
    test_dequant_fixtures();
    test_edges();
    test_gguf_files();
    char f32_path[700];
    if (make_f32(f32_path, sizeof f32_path)) {
        gg_file *f32 = NULL;
        CHECK_OK(gg_open(f32_path, &f32));
        test_quantize_legacy(f32);
        test_quantize_k(f32);
        test_requantize(f32);
        gg_close(f32);
    }
    remove(f32_path);
    rmdir(g_tmp);
    return tu_finish("test_quant");
}

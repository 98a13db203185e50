/*
 * test_convert.c — steer_convert and steer_make_model:
 *   - every fixture's hf/ → GGUF equals llama.cpp's own GGUF of it tensor for
 *     tensor, bit for bit (this checks the q/k permutation and the Gemma
 *     1 + w against llama.cpp's converter), with equal logits;
 *   - HF → GGUF → HF gives bit-identical tensors (Gemma norms: within half an
 *     ulp of 1 + w, the maximum difference reported) and equal logits;
 *   - BF16 and F16 GGUF conversions match the F32 logits within a tolerance
 *     derived from the formats' rounding;
 *   - stories260K .bin → GGUF → .bin reproduces the checkpoint (weights byte
 *     for byte; the unused freq_cis tables within 1 ulp), .bin → .bin is
 *     byte-identical, and .bin → HF → .bin equals .bin → GGUF → .bin;
 *   - steer_make_model for llama, gemma, gemma2, gemma3, qwen2 (and mistral)
 *     round-trips HF → GGUF → HF (and llama through llama2.c) with equal
 *     logits and identical tensors, deterministic in the seed;
 *   - bad requests fail with a clear message and leave nothing behind.
 */
#include "test_util.h"

#include "model.h"
#include "data.h" /* gg_open … to compare files tensor by tensor */

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>


/* Gemma norms through GGUF and back: (1 + w) − 1 in float32 is exact
 * (Sterbenz), so w comes back as w plus the rounding error of 1 + w: at most
 * half an ulp of 1 + w. */

static char TMP[256];
static int IDS[64], N_IDS;
#define V 512

typedef struct {
    const char *name, *gguf;
    int plus_one, n_layer;
} fixture;

static const fixture FIX[] = {
    {"llama", "tiny-random-llama.f32.gguf", 0, 4},
    {"gemma", "tiny-random-gemma.f32.gguf", 1, 2},
    {"gemma2", "tiny-random-gemma2.f32.gguf", 1, 26},
    {"qwen2", "tiny-random-qwen2.f32.gguf", 0, 2},
};

/* ---------------------------------------------------------------- helpers */

static void read_ids(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/llama/token_ids.json", STEER_TESTDATA_DIR);
    char *txt = tu_read_file(path, NULL);
    cJSON *j = cJSON_Parse(txt);
    N_IDS = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "token_ids")) IDS[N_IDS++] = it->valueint;
    cJSON_Delete(j);
    free(txt);
}

/* Logits [N_IDS, V] of the model at path (caller frees), or NULL. */
static float *logits_of(const char *path)
{
    steer_model *m;
    if (steer_model_load(path, NULL, &m) != STEER_OK) {
        fprintf(stderr, "FAIL: cannot load %s: %s\n", path, steer_last_error());
        tu_failures++;
        return NULL;
    }
    steer_ctx *c;
    CHECK_OK(steer_ctx_new(m, NULL, &c));
    CHECK_OK(steer_forward_tokens(c, IDS, N_IDS, 0, 0));
    float *out = malloc((size_t)N_IDS * V * sizeof(float));
    for (int i = 0; i < N_IDS; i++) memcpy(out + (size_t)i * V, steer_ctx_logits(c, i), V * sizeof(float));
    steer_ctx_free(c);
    steer_model_free(m);
    return out;
}

static double max_abs(const float *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i]));
    return m;
}

/* Removes dir and everything below it (test scratch only). */
static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        unlink(dir);
        return;
    }
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_rf(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Number of entries in dir whose name contains needle (NULL: all). */
static int count_entries(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && (!needle || strstr(e->d_name, needle))) n++;
    closedir(d);
    return n;
}

static int same_file(const char *a, const char *b)
{
    size_t na, nb;
    char *x = tu_read_file(a, &na), *y = tu_read_file(b, &nb);
    int same = na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

static int convert(const char *in, const char *out, int dtype, const char *format)
{
    steer_convert_params p = steer_convert_default_params();
    p.dtype = dtype;
    p.format = format;
    int rc = steer_convert(in, out, &p);
    if (rc) printf("convert %s -> %s: %d: %s\n", in, out, rc, steer_last_error());
    return rc;
}

/* Compares every tensor of GGUF a with GGUF b (names, types, shapes, bytes);
 * with subset = 1, b may hold more tensors. Returns the number of
 * differences (printed). */
static int cmp_gguf(const char *a, const char *b, const char *what, int subset)
{
    gg_file *fa, *fb;
    CHECK_OK(gg_open(a, &fa));
    CHECK_OK(gg_open(b, &fb));
    int bad = 0, n = gg_n_tensors(fa);
    size_t bytes = 0;
    if (subset) {
        for (int i = 0; i < gg_n_tensors(fb); i++)
            if (!gg_find_tensor(fa, gg_tensor_at(fb, i)->name))
                printf("%s: %s is only in the second file\n", what, gg_tensor_at(fb, i)->name);
    } else if (n != gg_n_tensors(fb)) {
        printf("%s: %d vs %d tensors\n", what, n, gg_n_tensors(fb));
        bad++;
    }
    for (int i = 0; i < n; i++) {
        const gg_tensor *x = gg_tensor_at(fa, i), *y = gg_find_tensor(fb, x->name);
        int same = y && x->type == y->type && x->n_dims == y->n_dims && x->nbytes == y->nbytes &&
                   memcmp(x->ne, y->ne, sizeof x->ne) == 0 && memcmp(x->data, y->data, x->nbytes) == 0;
        if (!same) {
            printf("%s: tensor %s differs%s\n", what, x->name, y ? "" : " (missing)");
            bad++;
        }
        bytes += x->nbytes;
    }
    printf("%-60s %d tensors, %zu bytes: %s\n", what, n, bytes, bad ? "DIFFERENT" : "bit-identical");
    gg_close(fa);
    gg_close(fb);
    return bad;
}

static int is_norm_name(const char *n)
{
    size_t k = strlen(n);
    return k > 11 && strcmp(n + k - 11, "norm.weight") == 0;
}

/* Compares the tensors of two HF directories. Norm vectors of (1 + w)
 * families may differ by at most half an ulp of 1 + w; *max_norm_diff gets
 * the largest such difference. Returns the number of other differences. */
static int cmp_hf(const char *a, const char *b, int plus_one, double *max_norm_diff, const char *what)
{
    char pa[1024], pb[1024];
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b);
    steer_tensors *ta, *tb;
    CHECK_OK(steer_tensors_open(pa, &ta));
    CHECK_OK(steer_tensors_open(pb, &tb));
    int bad = 0, n = steer_tensors_count(ta), n_norm_diff = 0;
    double md = 0;
    if (n != steer_tensors_count(tb)) {
        printf("%s: %d vs %d tensors\n", what, n, steer_tensors_count(tb));
        bad++;
    }
    for (int i = 0; i < n; i++) {
        const steer_tensor_info *x = steer_tensors_at(ta, i), *y = steer_tensors_find(tb, x->name);
        int meta = y && x->dtype == y->dtype && x->n_dims == y->n_dims && x->nbytes == y->nbytes &&
                   memcmp(x->shape, y->shape, sizeof(int64_t) * (size_t)x->n_dims) == 0;
        if (meta && memcmp(x->data, y->data, x->nbytes) == 0) continue;
        if (meta && plus_one && is_norm_name(x->name) && x->dtype == STEER_DTYPE_F32) {
            const float *u = x->data, *v = y->data;
            int ok = 1;
            for (size_t k = 0; k < x->nbytes / 4; k++) {
                double d = fabs((double)u[k] - (double)v[k]);
                float one_w = fabsf(1.0f + u[k]);
                double half_ulp = 0.5 * ((double)nextafterf(one_w, INFINITY) - (double)one_w);
                if (d > half_ulp) ok = 0;
                md = fmax(md, d);
            }
            n_norm_diff++;
            if (ok) continue;
        }
        printf("%s: tensor %s differs\n", what, x->name);
        bad++;
    }
    printf("%-60s %d tensors: %s (norm vectors not bit-identical: %d, max |diff| %.3e)\n", what, n,
           bad ? "DIFFERENT" : "identical", n_norm_diff, md);
    if (max_norm_diff) *max_norm_diff = md;
    steer_tensors_free(ta);
    steer_tensors_free(tb);
    return bad;
}

/* ---------------------------------------------------------------- fixtures */

static void test_fixture(const fixture *f)
{
    char hf[1024], ref[1024], gg[1024], back[1024], bf[1024], h16[1024], what[256];
    snprintf(hf, sizeof hf, "%s/%s/hf", STEER_TESTDATA_DIR, f->name);
    snprintf(ref, sizeof ref, "%s/%s/%s", STEER_TESTDATA_DIR, f->name, f->gguf);
    snprintf(gg, sizeof gg, "%s/%s.gguf", TMP, f->name);
    snprintf(back, sizeof back, "%s/%s_back", TMP, f->name);
    snprintf(bf, sizeof bf, "%s/%s.bf16.gguf", TMP, f->name);
    snprintf(h16, sizeof h16, "%s/%s.f16.gguf", TMP, f->name);

    CHECK(convert(hf, gg, -1, NULL) == STEER_OK, "%s: hf -> gguf", f->name);
    snprintf(what, sizeof what, "%s: hf -> gguf vs llama.cpp's convert_hf_to_gguf", f->name);
    CHECK(cmp_gguf(gg, ref, what, 0) == 0, "%s", what);
    float *l_ref = logits_of(ref), *l_gg = logits_of(gg), *l_hf = logits_of(hf);
    if (!l_ref || !l_gg || !l_hf) return;
    snprintf(what, sizeof what, "%s: logits of our .gguf vs llama.cpp's .gguf", f->name);
    CHECK_CLOSE(what, l_gg, l_ref, (size_t)N_IDS * V, 0.0);

    CHECK(convert(gg, back, -1, NULL) == STEER_OK, "%s: gguf -> hf", f->name);
    double md = 0;
    snprintf(what, sizeof what, "%s: hf -> gguf -> hf vs hf", f->name);
    CHECK(cmp_hf(hf, back, f->plus_one, &md, what) == 0, "%s", what);
    if (!f->plus_one) CHECK(md == 0, "%s: norms changed", f->name);
    float *l_back = logits_of(back);
    snprintf(what, sizeof what, "%s: logits hf -> gguf -> hf vs hf", f->name);
    if (l_back) CHECK_CLOSE(what, l_back, l_hf, (size_t)N_IDS * V, 0.0);

    /* the other direction against llama.cpp: its GGUF -> HF gives back hf/ */
    char back2[1100];
    snprintf(back2, sizeof back2, "%s/%s_from_llamacpp", TMP, f->name);
    CHECK(convert(ref, back2, -1, NULL) == STEER_OK, "%s: llama.cpp gguf -> hf", f->name);
    snprintf(what, sizeof what, "%s: llama.cpp's gguf -> hf vs hf", f->name);
    if (exists(back2)) CHECK(cmp_hf(hf, back2, f->plus_one, NULL, what) == 0, "%s", what);

    /* reduced precision */
    const int n_mat = 7 * f->n_layer + 1;
    const double lmax = max_abs(l_gg, (size_t)N_IDS * V);
    static const struct {
        int dtype;
        const char *name;
        double unit;
    } red[2] = {{STEER_DTYPE_BF16, "bf16", 1.0 / 256}, {STEER_DTYPE_F16, "f16", 1.0 / 2048}};
    for (int k = 0; k < 2; k++) {
        const char *out = k == 0 ? bf : h16;
        CHECK(convert(hf, out, red[k].dtype, NULL) == STEER_OK, "%s: hf -> gguf %s", f->name, red[k].name);
        float *l = logits_of(out);
        if (!l) continue;
        double tol = TOL_BF16_SIGMAS * red[k].unit / sqrt(3.0) * sqrt((double)n_mat) * lmax;
        snprintf(what, sizeof what, "%s: logits gguf %s vs f32 (max|logit| %.2f)", f->name, red[k].name, lmax);
        CHECK_CLOSE(what, l, l_gg, (size_t)N_IDS * V, tol);
        int agree = 0;
        for (int i = 0; i < N_IDS; i++) {
            int a = 0, b = 0;
            for (int j = 1; j < V; j++) {
                if (l[i * V + j] > l[i * V + a]) a = j;
                if (l_gg[i * V + j] > l_gg[i * V + b]) b = j;
            }
            agree += a == b;
        }
        printf("%-60s argmax agrees at %d/%d positions\n", what, agree, N_IDS);
        free(l);
    }
    free(l_ref);
    free(l_gg);
    free(l_hf);
    free(l_back);
}

/* ---------------------------------------------------------------- stories260K (llama2.c) */

static void test_stories(void)
{
    char src[1024], gg[1024], d1[1024], b1[1100], d2[1024], b2[1100], d3[1024], b3[1100], hf[1024], what[256];
    snprintf(src, sizeof src, "%s/stories260K/stories260K.bin", STEER_MODELS_DIR);
    if (!exists(src)) {
        printf("SKIP stories260K: %s missing\n", src);
        return;
    }
    snprintf(gg, sizeof gg, "%s/stories.gguf", TMP);
    snprintf(hf, sizeof hf, "%s/stories_hf", TMP);
    snprintf(d1, sizeof d1, "%s/l2c_via_gguf", TMP);
    snprintf(d2, sizeof d2, "%s/l2c_direct", TMP);
    snprintf(d3, sizeof d3, "%s/l2c_via_hf", TMP);
    mkdir(d1, 0755);
    mkdir(d2, 0755);
    mkdir(d3, 0755);
    snprintf(b1, sizeof b1, "%s/stories260K.bin", d1);
    snprintf(b2, sizeof b2, "%s/stories260K.bin", d2);
    snprintf(b3, sizeof b3, "%s/stories260K.bin", d3);
    CHECK(convert(src, gg, -1, NULL) == STEER_OK, "stories .bin -> gguf");
    CHECK(convert(gg, b1, -1, NULL) == STEER_OK, "stories gguf -> .bin");
    CHECK(convert(src, b2, -1, NULL) == STEER_OK, "stories .bin -> .bin");
    CHECK(convert(src, hf, -1, NULL) == STEER_OK, "stories .bin -> hf");
    CHECK(convert(hf, b3, -1, NULL) == STEER_OK, "stories hf -> .bin");
    if (!exists(b1) || !exists(b2) || !exists(b3) || !exists(hf)) return;

    size_t n0, n1;
    uint8_t *o = tu_read_file(src, &n0), *r = tu_read_file(b1, &n1);
    CHECK(n0 == n1, "stories .bin -> gguf -> .bin: size %zu vs %zu", n1, n0);
    if (n0 == n1) {
        int32_t h[7];
        memcpy(h, o, sizeof h);
        const size_t hs = (size_t)(h[0] / h[3]), tab = (size_t)h[6] * hs; /* freq_cis floats */
        const size_t wcls = h[5] < 0 ? (size_t)(-h[5]) * (size_t)h[0] : 0;
        const size_t tab_off = n0 - 4 * (tab + wcls);
        size_t n_diff = 0;
        int max_ulp = 0;
        for (size_t i = 0; i < tab; i++) {
            int32_t a, b;
            memcpy(&a, o + tab_off + 4 * i, 4);
            memcpy(&b, r + tab_off + 4 * i, 4);
            if (a != b) n_diff++;
            max_ulp = abs(a - b) > max_ulp ? abs(a - b) : max_ulp;
        }
        int weights_same = memcmp(o, r, tab_off) == 0 && memcmp(o + n0 - 4 * wcls, r + n0 - 4 * wcls, 4 * wcls) == 0;
        printf("%-60s header + weights (%zu bytes) %s; freq_cis: %zu of %zu floats differ, max %d ulp\n",
               "stories .bin -> gguf -> .bin vs original", tab_off - 28 + 4 * wcls, weights_same ? "identical" : "DIFFER",
               n_diff, tab, max_ulp);
        CHECK(weights_same, "stories: weights changed through GGUF");
        CHECK(max_ulp <= 1, "stories: freq_cis tables differ by %d ulp", max_ulp);
    }
    free(o);
    free(r);
    CHECK(same_file(src, b2), "stories .bin -> .bin is not byte-identical");
    printf("%-60s %s\n", "stories .bin -> .bin vs original", same_file(src, b2) ? "byte-identical" : "DIFFERENT");
    CHECK(same_file(b1, b3), "stories .bin -> hf -> .bin differs from .bin -> gguf -> .bin");
    printf("%-60s %s\n", "stories .bin -> hf -> .bin vs .bin -> gguf -> .bin", same_file(b1, b3) ? "byte-identical" : "DIFFERENT");
    char tok[1100], tok0[1024];
    snprintf(tok, sizeof tok, "%s/tokenizer.bin", d1);
    snprintf(tok0, sizeof tok0, "%s/stories260K/tok512.bin", STEER_MODELS_DIR);
    printf("%-60s %s\n", "written tokenizer.bin vs tok512.bin", same_file(tok, tok0) ? "byte-identical" : "different bytes");
    char ref[1024];
    snprintf(ref, sizeof ref, "%s/stories260K/stories260K.gguf", STEER_MODELS_DIR);
    if (exists(ref)) {
        /* llama.cpp's convert-llama2c-to-ggml also stores the shared
         * classifier as output.weight; every tensor we write must be in it */
        snprintf(what, sizeof what, "stories .bin -> gguf vs llama.cpp's convert-llama2c-to-ggml");
        CHECK(cmp_gguf(gg, ref, what, 1) == 0, "%s", what);
    }
    float *a = logits_of(src), *b = logits_of(gg), *c = logits_of(hf), *d = logits_of(b1);
    if (a && b && c && d) {
        CHECK_CLOSE("stories logits: .gguf vs .bin", b, a, (size_t)N_IDS * V, 0.0);
        CHECK_CLOSE("stories logits: .bin -> gguf -> .bin vs .bin", d, a, (size_t)N_IDS * V, 0.0);
        /* HF pairs RoPE dimensions (i, i + hd/2), llama2.c (2i, 2i+1): the
         * same products summed in another order, on logits of magnitude ~20
         * (TOL_LOGITS_FORMATS_CONVERTED is calibrated on |logits| < 5) */
        CHECK_CLOSE("stories logits: hf vs .bin (RoPE pairing differs)", c, a, (size_t)N_IDS * V,
                    TOL_LOGITS_GOLDEN);
    }
    free(a);
    free(b);
    free(c);
    free(d);
}

/* ---------------------------------------------------------------- make-model */

static void test_make_model(steer_arch arch, const char *name, steer_dtype dt)
{
    char hf[1024], gg[1024], back[1024], what[256];
    const char *dn = dt == STEER_DTYPE_BF16 ? "_bf16" : "";
    snprintf(hf, sizeof hf, "%s/mm_%s%s", TMP, name, dn);
    snprintf(gg, sizeof gg, "%s/mm_%s%s.gguf", TMP, name, dn);
    snprintf(back, sizeof back, "%s/mm_%s%s_back", TMP, name, dn);
    steer_make_model_params p = steer_make_model_default_params(arch);
    p.seed = 7;
    p.dtype = dt;
    p.n_ctx = 64; /* sliding window 16: active over the 30 test tokens */
    int rc = steer_make_model(&p, hf);
    CHECK(rc == STEER_OK, "make-model %s: %s", name, steer_last_error());
    if (rc) return;
    CHECK(convert(hf, gg, -1, NULL) == STEER_OK, "make-model %s -> gguf", name);
    CHECK(convert(gg, back, -1, NULL) == STEER_OK, "make-model %s -> gguf -> hf", name);
    if (!exists(back)) return;
    const arch_info *a = arch_get(arch);
    snprintf(what, sizeof what, "make-model %s%s -> gguf -> hf vs hf", name, dn);
    CHECK(cmp_hf(hf, back, a->norm_plus_one, NULL, what) == 0, "%s", what);
    float *lh = logits_of(hf), *lg = logits_of(gg), *lb = logits_of(back);
    if (lh && lg && lb) {
        snprintf(what, sizeof what, "make-model %s%s logits: gguf vs hf", name, dn);
        CHECK_CLOSE(what, lg, lh, (size_t)N_IDS * V, TOL_LOGITS_FORMATS_CONVERTED);
        snprintf(what, sizeof what, "make-model %s%s logits: hf -> gguf -> hf vs hf", name, dn);
        CHECK_CLOSE(what, lb, lh, (size_t)N_IDS * V, 0.0);
        double s = 0, s2 = 0;
        for (size_t i = 0; i < (size_t)N_IDS * V; i++) {
            s += lh[i];
            s2 += (double)lh[i] * lh[i];
        }
        double sd = sqrt(s2 / (N_IDS * V) - (s / (N_IDS * V)) * (s / (N_IDS * V)));
        printf("%-60s logit std %.3f, max|logit| %.3f\n", what, sd, max_abs(lh, (size_t)N_IDS * V));
        CHECK(sd > 0.1, "make-model %s: logits are nearly constant (std %.3g)", name, sd);
    }
    if (arch == STEER_ARCH_LLAMA || arch == STEER_ARCH_MISTRAL) {
        char dir[1024], bin[1100], back2[1024];
        snprintf(dir, sizeof dir, "%s/mm_%s%s_l2c", TMP, name, dn);
        mkdir(dir, 0755);
        snprintf(bin, sizeof bin, "%s/model.bin", dir);
        snprintf(back2, sizeof back2, "%s/mm_%s%s_back2", TMP, name, dn);
        int want = dt == STEER_DTYPE_F32 ? -1 : STEER_DTYPE_F32;
        CHECK(convert(gg, bin, want, NULL) == STEER_OK, "make-model %s -> gguf -> llama2.c", name);
        CHECK(convert(bin, back2, dt, NULL) == STEER_OK, "make-model %s -> llama2.c -> hf", name);
        snprintf(what, sizeof what, "make-model %s%s -> gguf -> llama2.c -> hf vs hf", name, dn);
        if (exists(back2)) CHECK(cmp_hf(hf, back2, 0, NULL, what) == 0, "%s", what);
        float *ll = logits_of(bin);
        snprintf(what, sizeof what, "make-model %s%s logits: llama2.c vs gguf", name, dn);
        if (ll && lg) CHECK_CLOSE(what, ll, lg, (size_t)N_IDS * V, dt == STEER_DTYPE_F32 ? 0.0 : TOL_LOGITS_FORMATS);
        free(ll);
    }
    free(lh);
    free(lg);
    free(lb);
}

static void test_make_model_seed(void)
{
    char a[1024], b[1024], c[1024], fa[1100], fb[1100], fc[1100];
    snprintf(a, sizeof a, "%s/seed_a", TMP);
    snprintf(b, sizeof b, "%s/seed_b", TMP);
    snprintf(c, sizeof c, "%s/seed_c", TMP);
    steer_make_model_params p = steer_make_model_default_params(STEER_ARCH_GEMMA3);
    p.seed = 11;
    CHECK_OK(steer_make_model(&p, a));
    CHECK_OK(steer_make_model(&p, b));
    p.seed = 12;
    CHECK_OK(steer_make_model(&p, c));
    snprintf(fa, sizeof fa, "%s/model.safetensors", a);
    snprintf(fb, sizeof fb, "%s/model.safetensors", b);
    snprintf(fc, sizeof fc, "%s/model.safetensors", c);
    CHECK(same_file(fa, fb), "make-model: the same seed gave different weights");
    CHECK(!same_file(fa, fc), "make-model: seeds 11 and 12 gave the same weights");
    printf("%-60s same seed identical: %s, other seed differs: %s\n", "make-model determinism",
           same_file(fa, fb) ? "yes" : "NO", same_file(fa, fc) ? "NO" : "yes");
    /* an existing output of a conversion is replaced */
    CHECK_OK(steer_make_model(&p, a));
    CHECK(same_file(fa, fc), "make-model over an earlier output did not replace it");
}

/* ---------------------------------------------------------------- RoPE scaling, in place */

static void copy_file(const char *from, const char *to)
{
    size_t n;
    void *d = tu_read_file(from, &n);
    FILE *f = fopen(to, "wb");
    fwrite(d, 1, n, f);
    fclose(f);
    free(d);
}

/* A copy of the llama fixture's hf/ in TMP/name with rope_scaling = rs. */
static void llama_with_scaling(const char *name, const char *rs, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", TMP, name);
    mkdir(out, 0755);
    char from[1100], to[1100];
    const char *files[] = {"tokenizer.model", "tokenizer_config.json", "model.safetensors"};
    for (int i = 0; i < 3; i++) {
        snprintf(from, sizeof from, "%s/llama/hf/%s", STEER_TESTDATA_DIR, files[i]);
        snprintf(to, sizeof to, "%s/%s", out, files[i]);
        copy_file(from, to);
    }
    snprintf(from, sizeof from, "%s/llama/hf/config.json", STEER_TESTDATA_DIR);
    char *txt = tu_read_file(from, NULL);
    cJSON *cfg = cJSON_Parse(txt);
    free(txt);
    cJSON_ReplaceItemInObject(cfg, "rope_scaling", cJSON_Parse(rs));
    char *j = cJSON_Print(cfg);
    snprintf(to, sizeof to, "%s/config.json", out);
    FILE *f = fopen(to, "w");
    fputs(j, f);
    fclose(f);
    free(j);
    cJSON_Delete(cfg);
}

static void test_rope_scaling_and_in_place(void)
{
    char lin[1100], l3[1100], gg[1100], back[1100];
    /* linear: GGUF rope.scaling.{type,factor} and back */
    llama_with_scaling("llama_linear", "{\"rope_type\": \"linear\", \"factor\": 4.0}", lin, sizeof lin);
    snprintf(gg, sizeof gg, "%s/llama_linear.gguf", TMP);
    snprintf(back, sizeof back, "%s/llama_linear_back", TMP);
    CHECK(convert(lin, gg, -1, NULL) == STEER_OK, "linear RoPE scaling -> gguf");
    CHECK(convert(gg, back, -1, NULL) == STEER_OK, "linear RoPE scaling -> gguf -> hf");
    float *a = logits_of(lin), *b = logits_of(gg), *c = exists(back) ? logits_of(back) : NULL, *u = NULL;
    if (a && b && c) {
        CHECK_CLOSE("linear RoPE scaling: logits gguf vs hf", b, a, (size_t)N_IDS * V, TOL_LOGITS_FORMATS_CONVERTED);
        CHECK_CLOSE("linear RoPE scaling: logits hf -> gguf -> hf vs hf", c, a, (size_t)N_IDS * V, 0.0);
        char ref[1100];
        snprintf(ref, sizeof ref, "%s/llama/hf", STEER_TESTDATA_DIR);
        u = logits_of(ref);
        CHECK(u && tu_max_abs_diff(u, a, (size_t)N_IDS * V) > 1e-3, "linear RoPE scaling changed nothing");
    }
    free(a); free(b); free(c); free(u);
    /* llama3: GGUF rope_freqs.weight (as llama.cpp writes it); not expressible back in HF */
    llama_with_scaling("llama_l3",
                       "{\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                       "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64}",
                       l3, sizeof l3);
    snprintf(gg, sizeof gg, "%s/llama_l3.gguf", TMP);
    snprintf(back, sizeof back, "%s/llama_l3_back", TMP);
    CHECK(convert(l3, gg, -1, NULL) == STEER_OK, "llama3 RoPE scaling -> gguf");
    a = logits_of(l3);
    b = logits_of(gg);
    if (a && b) CHECK_CLOSE("llama3 RoPE scaling: logits gguf vs hf", b, a, (size_t)N_IDS * V, TOL_LOGITS_FORMATS_CONVERTED);
    free(a); free(b);
    int rc = convert(gg, back, -1, NULL);
    printf("bad input: %-40s -> %d: %s\n", "rope_freqs.weight -> hf", rc, steer_last_error());
    CHECK(rc == STEER_EUNSUPPORTED && strstr(steer_last_error(), "rope_freqs"), "rope factors -> hf must fail");
    CHECK(!exists(back), "output left behind");
    snprintf(back, sizeof back, "%s/llama_l3.bin", TMP);
    rc = convert(l3, back, -1, NULL);
    CHECK(rc == STEER_EUNSUPPORTED && strstr(steer_last_error(), "RoPE scaling"), "RoPE scaling -> llama2.c must fail");

    /* in place: a GGUF converted to bf16 over itself, then back to f32 */
    snprintf(gg, sizeof gg, "%s/inplace.gguf", TMP);
    char src[1100];
    snprintf(src, sizeof src, "%s/qwen2/%s", STEER_TESTDATA_DIR, FIX[3].gguf);
    copy_file(src, gg);
    CHECK(convert(gg, gg, STEER_DTYPE_BF16, NULL) == STEER_OK, "in-place gguf -> bf16");
    CHECK(convert(gg, gg, STEER_DTYPE_F32, NULL) == STEER_OK, "in-place bf16 gguf -> f32");
    gg_file *f;
    CHECK_OK(gg_open(gg, &f));
    const gg_tensor *t = gg_find_tensor(f, "blk.0.attn_q.weight");
    CHECK(t && t->type == GGML_TYPE_F32, "in-place conversion: attn_q is not F32 again");
    gg_close(f);
    CHECK(count_entries(TMP, ".conv.") == 0, "in-place conversion left temporary files");
    /* an HF directory converted onto itself (only files a conversion writes) */
    CHECK(convert(lin, lin, STEER_DTYPE_BF16, NULL) == STEER_OK, "in-place hf -> bf16");
    steer_model *m;
    CHECK_OK(steer_model_load(lin, NULL, &m));
    CHECK(steer_model_get_config(m)->weight_dtype == STEER_DTYPE_BF16, "in-place hf: not bf16");
    steer_model_free(m);
    printf("%-60s ok\n", "in-place conversions (gguf f32 -> bf16 -> f32, hf f32 -> bf16)");
}

/* ---------------------------------------------------------------- bad input */

static void expect_error(int rc, int code, const char *needle, const char *what)
{
    printf("bad input: %-40s -> %d: %s\n", what, rc, steer_last_error());
    CHECK(rc == code, "%s: expected status %d, got %d", what, code, rc);
    CHECK(strstr(steer_last_error(), needle) != NULL, "%s: message lacks '%s'", what, needle);
}

static void test_bad_input(void)
{
    char hf[1024], out[1100], g[1100], gd[1024], tmpdir[1024];
    snprintf(hf, sizeof hf, "%s/llama/hf", STEER_TESTDATA_DIR);
    snprintf(tmpdir, sizeof tmpdir, "%s/bad", TMP);
    mkdir(tmpdir, 0755);
    const int before = count_entries(tmpdir, NULL);

    steer_convert_params p = steer_convert_default_params();
    p.format = "onnx";
    snprintf(out, sizeof out, "%s/x", tmpdir);
    expect_error(steer_convert(hf, out, &p), STEER_EARG, "unknown format 'onnx'", "--format onnx");
    CHECK(!exists(out), "output left behind");

    /* a Gemma model as llama2.c: refused, naming the reason; nothing written */
    snprintf(gd, sizeof gd, "%s/gemma/hf", STEER_TESTDATA_DIR);
    snprintf(g, sizeof g, "%s/gemma.bin", tmpdir);
    expect_error(convert(gd, g, -1, NULL), STEER_EUNSUPPORTED, "llama2.c checkpoints hold only the llama architecture",
                 "gemma -> llama2.c");
    CHECK(strstr(steer_last_error(), "gemma") != NULL, "message does not name the architecture");
    /* llama with an untypical head_dim/eps: the llama fixture has eps 1e-5, theta 1e4, head_dim = d/heads: fine;
     * qwen2 (theta 1e6) is refused for its architecture */
    snprintf(g, sizeof g, "%s/qwen2.bin", tmpdir);
    snprintf(gd, sizeof gd, "%s/qwen2/hf", STEER_TESTDATA_DIR);
    expect_error(convert(gd, g, -1, NULL), STEER_EUNSUPPORTED, "qwen2", "qwen2 -> llama2.c");
    snprintf(g, sizeof g, "%s/llama16.bin", tmpdir);
    expect_error(convert(hf, g, STEER_DTYPE_F16, NULL), STEER_EUNSUPPORTED, "F32 only", "llama -> llama2.c f16");

    /* outputs in a missing directory */
    snprintf(out, sizeof out, "%s/missing/sub/x.gguf", tmpdir);
    expect_error(convert(hf, out, -1, NULL), STEER_EIO, "missing/sub/x.gguf", "output in a missing directory (gguf)");
    snprintf(out, sizeof out, "%s/missing/sub/dir", tmpdir);
    expect_error(convert(hf, out, -1, NULL), STEER_EIO, "missing/sub/dir", "output in a missing directory (hf)");
    snprintf(out, sizeof out, "%s/missing/x.bin", tmpdir);
    expect_error(convert(hf, out, -1, NULL), STEER_EIO, "missing/x.bin", "output in a missing directory (llama2c)");

    /* a directory holding other files is not replaced */
    snprintf(out, sizeof out, "%s/keep", tmpdir);
    mkdir(out, 0755);
    char note[1200];
    snprintf(note, sizeof note, "%s/notes.txt", out);
    FILE *f = fopen(note, "w");
    fputs("mine\n", f);
    fclose(f);
    expect_error(convert(hf, out, -1, NULL), STEER_EIO, "holds other files", "output directory with other files");
    CHECK(count_entries(out, NULL) == 1, "the existing directory was changed");
    unlink(note);
    rmdir(out);

    /* a missing input */
    snprintf(out, sizeof out, "%s/y.gguf", tmpdir);
    snprintf(g, sizeof g, "%s/no-such-model", tmpdir);
    int rc = convert(g, out, -1, NULL);
    printf("bad input: %-40s -> %d: %s\n", "missing input", rc, steer_last_error());
    CHECK(rc != STEER_OK && strstr(steer_last_error(), "no-such-model"), "missing input");

    /* make-model arguments */
    steer_make_model_params mp = steer_make_model_default_params(STEER_ARCH_LLAMA);
    mp.n_head = 5;
    snprintf(out, sizeof out, "%s/mm_bad", tmpdir);
    expect_error(steer_make_model(&mp, out), STEER_EARG, "not a multiple", "make-model d 64, 5 heads");
    mp = steer_make_model_default_params(STEER_ARCH_QWEN2);
    mp.sliding_window = 8;
    expect_error(steer_make_model(&mp, out), STEER_EARG, "sliding", "make-model qwen2 with a window");

    CHECK(count_entries(tmpdir, NULL) == before, "failed conversions left %d entries behind",
          count_entries(tmpdir, NULL) - before);
    CHECK(count_entries(TMP, ".tmp.") == 0 && count_entries(TMP, ".conv.") == 0, "temporary files left behind");
}

int main(void)
{
    snprintf(TMP, sizeof TMP, "/tmp/steer_test_convert_XXXXXX");
    if (!mkdtemp(TMP)) {
        perror("mkdtemp");
        return 1;
    }
    read_ids();
    for (size_t i = 0; i < sizeof FIX / sizeof FIX[0]; i++) test_fixture(&FIX[i]);
    test_stories();
    static const struct {
        steer_arch arch;
        const char *name;
    } mm[] = {{STEER_ARCH_LLAMA, "llama"},   {STEER_ARCH_GEMMA, "gemma"}, {STEER_ARCH_GEMMA2, "gemma2"},
              {STEER_ARCH_GEMMA3, "gemma3"}, {STEER_ARCH_QWEN2, "qwen2"}, {STEER_ARCH_MISTRAL, "mistral"}};
    for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) test_make_model(mm[i].arch, mm[i].name, STEER_DTYPE_F32);
    test_make_model(STEER_ARCH_GEMMA3, "gemma3", STEER_DTYPE_BF16);
    test_make_model(STEER_ARCH_LLAMA, "llama", STEER_DTYPE_BF16);
    test_make_model_seed();
    test_rope_scaling_and_in_place();
    test_bad_input();
    if (!tu_failures) rm_rf(TMP);
    else printf("outputs kept in %s\n", TMP);
    return tu_finish("test_convert");
}

/* test_vectors.c — steering vectors (src/vectors.c, docs/VECTORS.md):
 *   1. mean-diff and PCA recover a planted direction in synthetic activations
 *      (cosine >= 0.99); PCA's sign points from negatives to positives;
 *   2. llama.cpp export → import is bit-exact; the exported GGUF passes an
 *      independent strict reader (layout, offsets, alignment, names); an
 *      imported control vector adds direction.L at resid_post of block L;
 *   3. vector arithmetic (scale, add, sub, slice, normalize, accumulate);
 *   4. bad inputs give one-line errors naming the file and the problem;
 *   5. `steer extract` end to end against in-process captures (mean-diff,
 *      pca-diff, --token answer/all, oracle-mean with a perturbed model).
 * Every check prints what it compared. */
#include "model.h"
#include "data.h"
#include "test_util.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODEL STEER_MODELS_DIR "/stories260K/stories260K.bin"

static char tmpdir[256];

static const char *tmp(const char *name)
{
    static char buf[8][512];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* ---------------------------------------------------------------- random numbers */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}
static double nrand(void) { return sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand()); }

static void unit_random(float *u, int d)
{
    for (int j = 0; j < d; j++) u[j] = (float)nrand();
    double n = steer_vec_norm(u, d);
    for (int j = 0; j < d; j++) u[j] = (float)(u[j] / n);
}

static double dot(const float *a, const float *b, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)a[j] * b[j];
    return s;
}

/* Paired synthetic activations: pos_i = c_i + shift·u + noise, neg_i = c_i −
 * shift·u + noise, where the shared content c_i has a few strong directions
 * (variance big_var) besides isotropic variance content_var. */
static void make_pairs(int n, int d, const float *u, double shift, double noise, double big_var, double content_var,
                       float *pos, float *neg)
{
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < d; j++) {
            double c = nrand() * sqrt(j < 4 ? big_var : content_var);
            pos[(size_t)i * d + j] = (float)(c + shift * u[j] + noise * nrand());
            neg[(size_t)i * d + j] = (float)(c - shift * u[j] + noise * nrand());
        }
    }
}

/* Top eigenvector of XᵀX by plain power iteration in double (independent of
 * LAPACK), for X = pos − neg. */
static void power_top(const float *pos, const float *neg, int n, int d, float *out)
{
    double *v = malloc((size_t)d * sizeof *v), *w = malloc((size_t)d * sizeof *w);
    for (int j = 0; j < d; j++) v[j] = 1.0 + 0.01 * j;
    for (int it = 0; it < 2000; it++) {
        memset(w, 0, (size_t)d * sizeof *w);
        for (int i = 0; i < n; i++) {
            double p = 0;
            for (int j = 0; j < d; j++) p += ((double)pos[(size_t)i * d + j] - neg[(size_t)i * d + j]) * v[j];
            for (int j = 0; j < d; j++) w[j] += p * ((double)pos[(size_t)i * d + j] - neg[(size_t)i * d + j]);
        }
        double nn = 0;
        for (int j = 0; j < d; j++) nn += w[j] * w[j];
        nn = sqrt(nn);
        for (int j = 0; j < d; j++) v[j] = w[j] / nn;
    }
    for (int j = 0; j < d; j++) out[j] = (float)v[j];
    free(v);
    free(w);
}

/* ---------------------------------------------------------------- 1. extraction math */

static void test_mean_diff(void)
{
    /* Exact small case: mean([1,2],[3,4]) − mean([0,0],[1,1],[2,-1]) = [2,3] − [1,0]. */
    const float p[] = {1, 2, 3, 4}, q[] = {0, 0, 1, 1, 2, -1};
    float out[2];
    CHECK_OK(steer_vec_mean_diff(p, 2, q, 3, 2, out));
    printf("mean-diff small case: [%g, %g] (expected [1, 3])\n", out[0], out[1]);
    CHECK(out[0] == 1.0f && out[1] == 3.0f, "mean-diff small case [%g, %g]", out[0], out[1]);

    const int d = 64, n = 400;
    float *u = malloc(d * sizeof *u), *pos = malloc((size_t)n * d * sizeof *pos), *neg = malloc((size_t)n * d * sizeof *neg);
    float *v = malloc(d * sizeof *v);
    unit_random(u, d);
    make_pairs(n, d, u, 1.5, 0.5, 9.0, 1.0, pos, neg);
    CHECK_OK(steer_vec_mean_diff(pos, n, neg, n, d, v));
    double cs = steer_vec_cosine(v, u, d);
    printf("mean-diff planted direction (d=%d, n=%d pairs, shift ±1.5, noise 0.5): cosine %.5f, norm %.4f "
           "(expected ~3)\n", d, n, cs, steer_vec_norm(v, d));
    CHECK(cs >= 0.99, "mean-diff cosine %.5f < 0.99", cs);
    CHECK(fabs(steer_vec_norm(v, d) - 3.0) < 0.3, "mean-diff norm %.4f not ~3", steer_vec_norm(v, d));
    free(u);
    free(pos);
    free(neg);
    free(v);
}

static void test_pca_diff(void)
{
    const int d = 64, n = 400;
    float *u = malloc(d * sizeof *u), *pos = malloc((size_t)n * d * sizeof *pos), *neg = malloc((size_t)n * d * sizeof *neg);
    float *v = malloc(d * sizeof *v), *v2 = malloc(d * sizeof *v2), *pw = malloc(d * sizeof *pw);
    unit_random(u, d);
    make_pairs(n, d, u, 1.5, 0.5, 9.0, 1.0, pos, neg);
    double ex = 0;
    CHECK_OK(steer_vec_pca(STEER_PCA_DIFF, pos, n, neg, n, d, v, &ex));
    double cs = steer_vec_cosine(v, u, d);
    printf("pca-diff planted direction (d=%d, n=%d, d x d path): cosine %.5f, norm %.6f, explained %.3f\n", d, n, cs,
           steer_vec_norm(v, d), ex);
    CHECK(cs >= 0.99, "pca-diff cosine %.5f < 0.99 (or wrong sign)", cs);
    CHECK(fabs(steer_vec_norm(v, d) - 1.0) < 1e-5, "pca-diff not unit length");
    /* Sign: the positives project higher than their negatives on average. */
    double s = 0;
    for (int i = 0; i < n; i++) s += dot(pos + (size_t)i * d, v, d) - dot(neg + (size_t)i * d, v, d);
    printf("pca-diff sign: mean (pos_i - neg_i).v = %.4f (must be > 0)\n", s / n);
    CHECK(s > 0, "pca-diff sign: positives project lower");
    /* Swapping the classes flips the vector. */
    CHECK_OK(steer_vec_pca(STEER_PCA_DIFF, neg, n, pos, n, d, v2, NULL));
    double flip = steer_vec_cosine(v, v2, d);
    printf("pca-diff with positives and negatives swapped: cosine to the original %.6f (expected -1)\n", flip);
    CHECK(flip < -0.99999, "swap did not flip the sign (cosine %.6f)", flip);
    /* LAPACK against plain power iteration. */
    power_top(pos, neg, n, d, pw);
    double agree = fabs(steer_vec_cosine(v, pw, d));
    printf("pca-diff (dsyev) vs power iteration: |cosine| %.8f\n", agree);
    CHECK(agree > 0.999999, "dsyev and power iteration disagree: %.8f", agree);
    free(u);
    free(pos);
    free(neg);
    free(v);
    free(v2);
    free(pw);

    /* n < d: the Gram-matrix path. */
    const int d2 = 512, n2 = 100;
    u = malloc(d2 * sizeof *u);
    pos = malloc((size_t)n2 * d2 * sizeof *pos);
    neg = malloc((size_t)n2 * d2 * sizeof *neg);
    v = malloc(d2 * sizeof *v);
    pw = malloc(d2 * sizeof *pw);
    unit_random(u, d2);
    make_pairs(n2, d2, u, 1.5, 0.1, 9.0, 1.0, pos, neg);
    CHECK_OK(steer_vec_pca(STEER_PCA_DIFF, pos, n2, neg, n2, d2, v, &ex));
    cs = steer_vec_cosine(v, u, d2);
    power_top(pos, neg, n2, d2, pw);
    agree = fabs(steer_vec_cosine(v, pw, d2));
    printf("pca-diff planted direction (d=%d, n=%d, Gram path): cosine %.5f, explained %.3f, vs power iteration "
           "|cosine| %.8f\n", d2, n2, cs, ex, agree);
    CHECK(cs >= 0.99, "pca-diff (Gram) cosine %.5f < 0.99", cs);
    CHECK(agree > 0.999999, "Gram path and power iteration disagree: %.8f", agree);
    free(u);
    free(pos);
    free(neg);
    free(v);
    free(pw);
}

static void test_pca_center(void)
{
    /* Unpaired, unequal classes: pooled covariance = content + class split. */
    const int d = 64, np = 300, nn = 200;
    float *u = malloc(d * sizeof *u), *pos = malloc((size_t)np * d * sizeof *pos), *neg = malloc((size_t)nn * d * sizeof *neg);
    float *v = malloc(d * sizeof *v), *v2 = malloc(d * sizeof *v2);
    unit_random(u, d);
    for (int i = 0; i < np; i++)
        for (int j = 0; j < d; j++) pos[(size_t)i * d + j] = (float)(0.7 + 2.0 * u[j] + 0.5 * nrand());
    for (int i = 0; i < nn; i++)
        for (int j = 0; j < d; j++) neg[(size_t)i * d + j] = (float)(0.7 - 2.0 * u[j] + 0.5 * nrand());
    double ex = 0;
    CHECK_OK(steer_vec_pca(STEER_PCA_CENTER, pos, np, neg, nn, d, v, &ex));
    double cs = steer_vec_cosine(v, u, d);
    double mp = 0, mn = 0;
    for (int i = 0; i < np; i++) mp += dot(pos + (size_t)i * d, v, d) / np;
    for (int i = 0; i < nn; i++) mn += dot(neg + (size_t)i * d, v, d) / nn;
    printf("pca-center planted direction (d=%d, %d pos, %d neg, offset 0.7): cosine %.5f, explained %.3f, "
           "mean projection pos %.3f > neg %.3f\n", d, np, nn, cs, ex, mp, mn);
    CHECK(cs >= 0.99, "pca-center cosine %.5f < 0.99", cs);
    CHECK(mp > mn, "pca-center sign: positives project lower");
    CHECK_OK(steer_vec_pca(STEER_PCA_CENTER, neg, nn, pos, np, d, v2, NULL));
    double flip = steer_vec_cosine(v, v2, d);
    printf("pca-center with classes swapped: cosine to the original %.6f (expected -1)\n", flip);
    CHECK(flip < -0.99999, "pca-center swap did not flip (cosine %.6f)", flip);

    /* Errors: unpaired pca-diff, no variance. */
    int rc = steer_vec_pca(STEER_PCA_DIFF, pos, 3, neg, 2, d, v, NULL);
    printf("pca-diff with 3 vs 2 rows -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG, "unpaired pca-diff accepted");
    rc = steer_vec_pca(STEER_PCA_DIFF, pos, 2, pos, 2, d, v, NULL);
    printf("pca-diff of identical pos/neg -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "no variance"), "zero differences accepted");
    free(u);
    free(pos);
    free(neg);
    free(v);
    free(v2);
}

/* ---------------------------------------------------------------- 3. arithmetic */

static void fill(float *v, int n, float base, float step)
{
    for (int i = 0; i < n; i++) v[i] = base + step * (float)i;
}

static void test_arithmetic(void)
{
    steer_vecset *a, *b;
    CHECK_OK(steer_vecset_new(&a));
    CHECK_OK(steer_vecset_new(&b));
    float x[8], y[8];
    fill(x, 8, 1, 1);       /* 1..8 */
    fill(y, 8, 0.5f, -1);   /* 0.5, -0.5, ... */
    CHECK_OK(steer_vecset_set(a, STEER_SITE_RESID_POST, 3, 0, 8, x));
    CHECK_OK(steer_vecset_set(a, STEER_SITE_RESID_POST, 1, 0, 8, y));
    CHECK_OK(steer_vecset_set(a, STEER_SITE_ATTN_OUT, 2, 0, 8, x));
    CHECK_OK(steer_vecset_set(b, STEER_SITE_RESID_POST, 3, 0, 8, y));
    CHECK_OK(steer_vecset_set(b, STEER_SITE_MLP_OUT, 0, 0, 8, y));
    /* Sorted by site then layer. */
    const steer_vec *e0 = steer_vecset_at(a, 0), *e1 = steer_vecset_at(a, 1), *e2 = steer_vecset_at(a, 2);
    printf("order: %s.%d %s.%d %s.%d\n", steer_site_name(e0->site), e0->layer, steer_site_name(e1->site), e1->layer,
           steer_site_name(e2->site), e2->layer);
    CHECK(e0->site == STEER_SITE_ATTN_OUT && e1->layer == 1 && e2->layer == 3, "set is not sorted");

    steer_vecset_scale(a, -2.0f);
    const steer_vec *r3 = steer_vecset_find(a, STEER_SITE_RESID_POST, 3);
    printf("scale -2: resid_post.3[0] = %g, [7] = %g (expected -2, -16)\n", r3->data[0], r3->data[7]);
    CHECK(r3->data[0] == -2.0f && r3->data[7] == -16.0f, "scale");

    CHECK_OK(steer_vecset_add(a, b, 0.5f)); /* a += 0.5 b */
    r3 = steer_vecset_find(a, STEER_SITE_RESID_POST, 3);
    const steer_vec *mo = steer_vecset_find(a, STEER_SITE_MLP_OUT, 0);
    printf("add 0.5*b: resid_post.3[1] = %g (expected -4 + 0.5*-0.5 = -4.25), new mlp_out.0[0] = %g (0.25), "
           "count %d (4)\n", r3->data[1], mo ? mo->data[0] : NAN, steer_vecset_count(a));
    CHECK(r3->data[1] == -4.25f && mo && mo->data[0] == 0.25f && steer_vecset_count(a) == 4, "add");
    CHECK_OK(steer_vecset_add(a, b, -0.5f)); /* sub: back to the scaled values (exact in binary) */
    r3 = steer_vecset_find(a, STEER_SITE_RESID_POST, 3);
    mo = steer_vecset_find(a, STEER_SITE_MLP_OUT, 0);
    printf("sub 0.5*b: resid_post.3[1] = %g (-4), mlp_out.0 norm %g (0)\n", r3->data[1], steer_vec_norm(mo->data, 8));
    CHECK(r3->data[1] == -4.0f && steer_vec_norm(mo->data, 8) == 0.0, "sub");

    unsigned char sites[STEER_SITE_COUNT] = {0}, layers[4] = {0, 1, 0, 1};
    sites[STEER_SITE_RESID_POST] = 1;
    steer_vecset_keep(a, sites, layers, 4);
    printf("slice resid_post layers 1,3: %d vectors (2): %s.%d, %s.%d\n", steer_vecset_count(a),
           steer_site_name(steer_vecset_at(a, 0)->site), steer_vecset_at(a, 0)->layer,
           steer_site_name(steer_vecset_at(a, 1)->site), steer_vecset_at(a, 1)->layer);
    CHECK(steer_vecset_count(a) == 2 && steer_vecset_at(a, 0)->layer == 1 && steer_vecset_at(a, 1)->layer == 3, "slice");

    CHECK_OK(steer_vecset_normalize(a));
    double n1 = steer_vec_norm(steer_vecset_at(a, 0)->data, 8), n3 = steer_vec_norm(steer_vecset_at(a, 1)->data, 8);
    printf("normalize: norms %.7f %.7f\n", n1, n3);
    CHECK(fabs(n1 - 1) < 1e-6 && fabs(n3 - 1) < 1e-6, "normalize");

    /* Per-position accumulation pads with zero rows; mixing shapes is refused. */
    float rows[3 * 8];
    fill(rows, 24, 1, 0);
    steer_vecset *p;
    CHECK_OK(steer_vecset_new(&p));
    CHECK_OK(steer_vecset_accumulate(p, STEER_SITE_RESID_PRE, 2, 1, 8, rows, 1.0f));
    CHECK_OK(steer_vecset_accumulate(p, STEER_SITE_RESID_PRE, 2, 3, 8, rows, 2.0f));
    const steer_vec *pp = steer_vecset_find(p, STEER_SITE_RESID_PRE, 2);
    printf("accumulate [1,8] + 2*[3,8]: rows %d, row0 %g, row2 %g (3, 3, 2)\n", pp->n_rows, pp->data[0], pp->data[16]);
    CHECK(pp->n_rows == 3 && pp->data[0] == 3.0f && pp->data[16] == 2.0f, "per-position accumulate");
    int rc = steer_vecset_accumulate(p, STEER_SITE_RESID_PRE, 2, 0, 8, rows, 1.0f);
    printf("single + per-position -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG, "mixed shapes accepted");
    rc = steer_vecset_accumulate(p, STEER_SITE_RESID_PRE, 2, 3, 4, rows, 1.0f);
    printf("width 4 into width 8 -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "4 wide"), "width mismatch accepted");

    /* Save / load keeps vectors bit for bit and the metadata in order. */
    CHECK_OK(steer_vecset_set_meta(p, "method", "mean-diff"));
    CHECK_OK(steer_vecset_set_meta(p, "site", "resid_pre"));
    CHECK_OK(steer_vecset_set(p, STEER_SITE_MLP_ACT, 0, 0, 8, x));
    CHECK_OK(steer_vecset_save(p, tmp("p.safetensors")));
    steer_vecset *q;
    CHECK_OK(steer_vecset_load(tmp("p.safetensors"), &q));
    int same = steer_vecset_count(q) == steer_vecset_count(p);
    for (int i = 0; same && i < steer_vecset_count(p); i++) {
        const steer_vec *s = steer_vecset_at(p, i), *t = steer_vecset_at(q, i);
        same = s->site == t->site && s->layer == t->layer && s->n_rows == t->n_rows && s->width == t->width &&
               memcmp(s->data, t->data, (size_t)(s->n_rows ? s->n_rows : 1) * s->width * 4) == 0;
    }
    printf("safetensors save/load: %d vectors identical: %s; meta method=%s site=%s format_version=%s\n",
           steer_vecset_count(q), same ? "yes" : "no", steer_vecset_meta(q, "method"), steer_vecset_meta(q, "site"),
           steer_vecset_meta(q, "format_version"));
    CHECK(same, "save/load changed the vectors");
    CHECK(steer_vecset_meta(q, "format_version") && strcmp(steer_vecset_meta(q, "format_version"), "1") == 0 &&
              strcmp(steer_vecset_meta(q, "method"), "mean-diff") == 0,
          "metadata lost");
    steer_vecset_free(q);
    steer_vecset_free(p);
    steer_vecset_free(a);
    steer_vecset_free(b);
}

/* ---------------------------------------------------------------- 2. llama.cpp control vectors */

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* An independent, strict reader of a control-vector GGUF: checks the whole
 * layout byte by byte. Returns the number of problems (printed). */
static int strict_check_controlvector(const char *path, int n_embd, int n_layer, const char *hint, int n_expected,
                                      const steer_vecset *expect)
{
    size_t size;
    uint8_t *b = tu_read_file(path, &size);
    int bad = 0;
    size_t at = 0;
#define NEED(n)                                                                         \
    do {                                                                                \
        if (at + (n) > size) {                                                          \
            printf("strict: truncated at byte %zu\n", at);                              \
            free(b);                                                                    \
            return bad + 1;                                                             \
        }                                                                               \
    } while (0)
#define BAD(...)                                                                        \
    do {                                                                                \
        printf("strict: " __VA_ARGS__);                                                 \
        printf("\n");                                                                   \
        bad++;                                                                          \
    } while (0)
    NEED(24);
    if (memcmp(b, "GGUF", 4) != 0) BAD("bad magic");
    uint32_t version = rd32(b + 4);
    uint64_t n_t = rd64(b + 8), n_kv = rd64(b + 16);
    at = 24;
    if (version != 3) BAD("version %u, expected 3", version);
    if (n_t != (uint64_t)n_expected) BAD("%llu tensors, expected %d", (unsigned long long)n_t, n_expected);
    int seen_arch = 0, seen_hint = 0, seen_count = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        NEED(8);
        uint64_t kl = rd64(b + at);
        at += 8;
        NEED(kl + 4);
        char key[256] = {0};
        memcpy(key, b + at, kl < 255 ? kl : 255);
        at += kl;
        uint32_t type = rd32(b + at);
        at += 4;
        if (type == GGUF_TYPE_STRING) {
            NEED(8);
            uint64_t vl = rd64(b + at);
            at += 8;
            NEED(vl);
            char val[256] = {0};
            memcpy(val, b + at, vl < 255 ? vl : 255);
            at += vl;
            if (strcmp(key, "general.architecture") == 0) {
                seen_arch++;
                if (strcmp(val, "controlvector") != 0) BAD("general.architecture = %s", val);
            } else if (strcmp(key, "controlvector.model_hint") == 0) {
                seen_hint++;
                if (strcmp(val, hint) != 0) BAD("model_hint = %s, expected %s", val, hint);
            } else {
                BAD("unexpected key %s", key);
            }
        } else if (type == GGUF_TYPE_UINT32) {
            NEED(4);
            uint32_t v = rd32(b + at);
            at += 4;
            if (strcmp(key, "controlvector.layer_count") == 0) {
                seen_count++;
                if (v != (uint32_t)n_expected) BAD("layer_count = %u, expected %d", v, n_expected);
            } else {
                BAD("unexpected key %s", key);
            }
        } else {
            BAD("key %s has type %u", key, type);
            free(b);
            return bad;
        }
    }
    if (seen_arch != 1 || seen_hint != 1 || seen_count != 1)
        BAD("keys: architecture x%d, model_hint x%d, layer_count x%d (each must appear once)", seen_arch, seen_hint,
            seen_count);
    uint64_t expect_off = 0;
    uint64_t offs[64], lens[64];
    int layers[64];
    for (uint64_t i = 0; i < n_t && i < 64; i++) {
        NEED(8);
        uint64_t nl = rd64(b + at);
        at += 8;
        NEED(nl + 4);
        char name[256] = {0};
        memcpy(name, b + at, nl < 255 ? nl : 255);
        at += nl;
        uint32_t nd = rd32(b + at);
        at += 4;
        NEED(8 * nd + 12);
        uint64_t ne0 = rd64(b + at);
        at += 8 * nd;
        uint32_t type = rd32(b + at);
        uint64_t off = rd64(b + at + 4);
        at += 12;
        int L = -1;
        char tail;
        if (sscanf(name, "direction.%d%c", &L, &tail) != 1 || L < 1 || L >= n_layer) BAD("tensor name %s", name);
        if (nd != 1 || ne0 != (uint64_t)n_embd) BAD("%s: %u dims, ne0 %llu", name, nd, (unsigned long long)ne0);
        if (type != 0) BAD("%s: type %u, expected 0 (F32)", name, type);
        if (off != expect_off) BAD("%s: offset %llu, expected %llu", name, (unsigned long long)off,
                                   (unsigned long long)expect_off);
        if (off % 32 != 0) BAD("%s: offset %llu not 32-aligned", name, (unsigned long long)off);
        offs[i] = off;
        lens[i] = ne0 * 4;
        layers[i] = L;
        expect_off += (ne0 * 4 + 31) / 32 * 32;
    }
    size_t data_start = (at + 31) / 32 * 32;
    for (size_t k = at; k < data_start && k < size; k++)
        if (b[k] != 0) BAD("non-zero padding byte at %zu", k);
    if (data_start + expect_off != size)
        BAD("file is %zu bytes, expected data start %zu + %llu", size, data_start, (unsigned long long)expect_off);
    for (uint64_t i = 0; i < n_t && i < 64 && data_start + offs[i] + lens[i] <= size; i++) {
        const steer_vec *e = expect ? steer_vecset_find(expect, STEER_SITE_RESID_POST, layers[i]) : NULL;
        if (expect && (!e || memcmp(b + data_start + offs[i], e->data, lens[i]) != 0))
            BAD("direction.%d data differ from resid_post.%d", layers[i], layers[i]);
    }
    printf("strict GGUF check of %s: %zu bytes, v%u, %llu kv, %llu tensors, data at %zu: %d problem(s)\n", path, size,
           version, (unsigned long long)n_kv, (unsigned long long)n_t, data_start, bad);
    free(b);
    return bad;
#undef NEED
#undef BAD
}

/* A hook that records h at resid_post of every layer (the order of hooks
 * decides whether it sees the value before or after the interventions). */
typedef struct {
    float *rows[16];
    int n_layer, width;
} tap;
static int tap_wants(void *ud, steer_site s, int l)
{
    const tap *t = ud;
    return s == STEER_SITE_RESID_POST && l < t->n_layer;
}
static int tap_apply(void *ud, steer_site s, int l, float *h, const steer_hook_batch *b)
{
    (void)s;
    tap *t = ud;
    for (int i = 0; i < b->n; i++) memcpy(t->rows[l] + (size_t)b->pos[i] * t->width, h + (size_t)i * b->width, (size_t)b->width * 4);
    return 0;
}

static void test_llamacpp(void)
{
    steer_model *m;
    steer_model_params mp = steer_model_default_params();
    CHECK_OK(steer_model_load(MODEL, &mp, &m));
    const steer_model_config *cfg = steer_model_get_config(m);
    const int d = cfg->d_model, L = cfg->n_layer;

    steer_vecset *vs;
    CHECK_OK(steer_vecset_new(&vs));
    float *v = malloc((size_t)d * sizeof *v);
    for (int l = 1; l < L; l++) {
        for (int j = 0; j < d; j++) v[j] = (float)(0.3 * nrand() * l);
        CHECK_OK(steer_vecset_set(vs, STEER_SITE_RESID_POST, l, 0, d, v));
    }
    CHECK_OK(steer_vecset_set_meta(vs, "model_hint", "llama"));
    CHECK_OK(steer_vecset_save_llamacpp(vs, tmp("cv.gguf"), NULL));
    CHECK(strict_check_controlvector(tmp("cv.gguf"), d, L, "llama", L - 1, vs) == 0, "exported GGUF fails the "
                                                                                     "strict check");
    /* gg_open's validation too. */
    gg_file *gf;
    CHECK_OK(gg_open(tmp("cv.gguf"), &gf));
    gg_close(gf);

    steer_vecset *back;
    CHECK_OK(steer_vecset_load_llamacpp(tmp("cv.gguf"), L, d, &back));
    int same = steer_vecset_count(back) == L - 1;
    for (int l = 1; same && l < L; l++) {
        const steer_vec *a = steer_vecset_find(vs, STEER_SITE_RESID_POST, l), *b = steer_vecset_find(back, STEER_SITE_RESID_POST, l);
        same = b && b->width == d && b->n_rows == 0 && memcmp(a->data, b->data, (size_t)d * 4) == 0;
    }
    printf("export -> import: %d vectors, bit for bit identical: %s, model_hint %s\n", steer_vecset_count(back),
           same ? "yes" : "no", steer_vecset_meta(back, "model_hint"));
    CHECK(same, "export/import changed the vectors");
    /* Through a safetensors file and back out again: the same GGUF bytes. */
    CHECK_OK(steer_vecset_save(back, tmp("cv.safetensors")));
    steer_vecset *st;
    CHECK_OK(steer_vecset_load(tmp("cv.safetensors"), &st));
    CHECK_OK(steer_vecset_save_llamacpp(st, tmp("cv2.gguf"), NULL));
    size_t s1, s2;
    char *b1 = tu_read_file(tmp("cv.gguf"), &s1), *b2 = tu_read_file(tmp("cv2.gguf"), &s2);
    printf("gguf -> safetensors -> gguf: %zu vs %zu bytes, identical: %s\n", s1, s2,
           s1 == s2 && memcmp(b1, b2, s1) == 0 ? "yes" : "no");
    CHECK(s1 == s2 && memcmp(b1, b2, s1) == 0, "re-export differs");
    free(b1);
    free(b2);
    steer_vecset_free(st);

    /* Applying the imported control vector adds direction.L to resid_post.L. */
    steer_ctx *c;
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = 32;
    CHECK_OK(steer_ctx_new(m, &cp, &c));
    tap before = {.n_layer = L, .width = d}, after = {.n_layer = L, .width = d};
    for (int l = 0; l < L; l++) {
        before.rows[l] = calloc(32 * (size_t)d, 4);
        after.rows[l] = calloc(32 * (size_t)d, 4);
    }
    steer_hook hb = {tap_wants, tap_apply, &before}, ha = {tap_wants, tap_apply, &after};
    CHECK(steer_ctx_add_hook(c, &hb) >= 0, "hook");
    CHECK_OK(steer_vecset_check_model(back, m, tmp("cv.gguf")));
    CHECK_OK(steer_vecset_apply(back, c, 1.0f));
    CHECK(steer_ctx_add_hook(c, &ha) >= 0, "hook");
    for (int l = 0; l < L; l++) CHECK(steer_ctx_add_capture(c, STEER_SITE_RESID_POST, l, 0) >= 0, "capture");
    const int toks[] = {1, 403, 407, 261, 378}, T = 5;
    CHECK_OK(steer_forward_tokens(c, toks, T, 0, 0));
    for (int l = 0; l < L; l++) {
        const steer_vec *e = steer_vecset_find(back, STEER_SITE_RESID_POST, l);
        int n_rows = 0;
        const float *cap = steer_ctx_captured(c, STEER_SITE_RESID_POST, l, &n_rows);
        double md = 0, mc = 0;
        for (int t = 0; t < T; t++)
            for (int j = 0; j < d; j++) {
                double want = e ? e->data[j] : 0.0;
                double got = (double)after.rows[l][(size_t)t * d + j] - before.rows[l][(size_t)t * d + j];
                double scale = fabs(before.rows[l][(size_t)t * d + j]) + fabs(want) + 1e-30;
                md = fmax(md, fabs(got - want) / scale);
                mc = fmax(mc, fabs((double)cap[(size_t)t * d + j] - after.rows[l][(size_t)t * d + j]));
            }
        printf("resid_post.%d: (after - before) vs %s: max rel diff %.2e (float rounding only); capture vs after: "
               "max|diff| %.1e\n", l, e ? "direction.L" : "zero (layer 0 has no direction)", md, mc);
        CHECK(md <= 1.2e-7, "layer %d: difference is not direction.%d (%.2e)", l, l, md);
        CHECK(mc == 0.0 && n_rows >= T, "layer %d: capture disagrees with the tap", l);
    }
    /* Without steering, layer 0 is identical and the steered run differs later. */
    for (int l = 0; l < L; l++) {
        free(before.rows[l]);
        free(after.rows[l]);
    }
    steer_ctx_free(c);

    /* Export refusals. */
    float z[64] = {0};
    CHECK_OK(steer_vecset_set(vs, STEER_SITE_RESID_POST, 0, 0, d, z));
    int rc = steer_vecset_save_llamacpp(vs, tmp("bad.gguf"), NULL);
    printf("export with resid_post.0 -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "resid_post.0"), "layer 0 exported");
    CHECK(access(tmp("bad.gguf"), F_OK) != 0, "a refused export left a file");
    steer_vecset_free(vs);
    CHECK_OK(steer_vecset_new(&vs));
    CHECK_OK(steer_vecset_set(vs, STEER_SITE_ATTN_OUT, 2, 0, d, z));
    rc = steer_vecset_save_llamacpp(vs, tmp("bad.gguf"), NULL);
    printf("export of attn_out.2 -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "attn_out.2"), "attn_out exported");

    steer_vecset_free(vs);
    steer_vecset_free(back);
    free(v);
    steer_model_free(m);
}

/* ---------------------------------------------------------------- 4. bad inputs */

/* Writes a control-vector GGUF with one tensor (name, type, dims, length). */
static void write_cv(const char *path, const char *arch, const char *name, int type, int n_dims, uint64_t ne0,
                     const char *name2, uint64_t ne0_2)
{
    static float data[2][256];
    gg_writer *w;
    CHECK_OK(gg_writer_new(&w));
    if (arch) CHECK_OK(gg_writer_set_str(w, "general.architecture", arch));
    CHECK_OK(gg_writer_set_str(w, "controlvector.model_hint", "llama"));
    CHECK_OK(gg_writer_set_u32(w, "controlvector.layer_count", 1));
    uint64_t ne[2] = {ne0, 2};
    if (name) CHECK_OK(gg_writer_add_tensor(w, name, type, n_dims, ne, data[0]));
    uint64_t ne2[1] = {ne0_2};
    if (name2) CHECK_OK(gg_writer_add_tensor(w, name2, 0, 1, ne2, data[1]));
    CHECK_OK(gg_writer_write(w, path));
    gg_writer_free(w);
}

static void put_str(FILE *f, const char *s)
{
    uint64_t n = strlen(s);
    fwrite(&n, 8, 1, f);
    fwrite(s, 1, n, f);
}

/* A GGUF built byte by byte (our writer refuses duplicates): two keys or two
 * tensors with the same name. */
static void write_raw_dup(const char *path, int dup_key)
{
    FILE *f = fopen(path, "wb");
    uint32_t u32;
    uint64_t u64;
    fwrite("GGUF", 1, 4, f);
    u32 = 3;
    fwrite(&u32, 4, 1, f);
    u64 = dup_key ? 1 : 2;
    fwrite(&u64, 8, 1, f);
    u64 = dup_key ? 3 : 2;
    fwrite(&u64, 8, 1, f);
    put_str(f, "general.architecture");
    u32 = GGUF_TYPE_STRING;
    fwrite(&u32, 4, 1, f);
    put_str(f, "controlvector");
    put_str(f, "controlvector.model_hint");
    fwrite(&u32, 4, 1, f);
    put_str(f, "llama");
    if (dup_key) {
        put_str(f, "controlvector.model_hint");
        fwrite(&u32, 4, 1, f);
        put_str(f, "mistral");
    }
    long pos;
    for (int t = 0; t < (dup_key ? 1 : 2); t++) {
        put_str(f, "direction.1");
        u32 = 1;
        fwrite(&u32, 4, 1, f);
        u64 = 64;
        fwrite(&u64, 8, 1, f);
        u32 = 0;
        fwrite(&u32, 4, 1, f);
        u64 = (uint64_t)t * 256;
        fwrite(&u64, 8, 1, f);
    }
    pos = ftell(f);
    static const char zeros[512];
    fwrite(zeros, 1, (size_t)((32 - pos % 32) % 32), f);
    fwrite(zeros, 1, dup_key ? 256 : 512, f);
    fclose(f);
}

static void expect_load_error(const char *what, const char *path, int n_layer, int d, const char *needle)
{
    steer_vecset *vs = NULL;
    int rc = steer_vecset_load_llamacpp(path, n_layer, d, &vs);
    const char *msg = steer_last_error();
    int ok = rc != STEER_OK && !vs && strstr(msg, path) && strstr(msg, needle) && !strchr(msg, '\n');
    printf("%-44s -> %d: %s\n", what, rc, msg);
    CHECK(ok, "%s: expected an error naming the file and '%s'", what, needle);
    steer_vecset_free(vs);
}

static void test_bad_inputs(void)
{
    write_cv(tmp("foo.gguf"), "controlvector", "foo", 0, 1, 64, NULL, 0);
    expect_load_error("tensor not named direction.N", tmp("foo.gguf"), 5, 64, "'foo' is not named direction.<N>");
    write_cv(tmp("zero.gguf"), "controlvector", "direction.0", 0, 1, 64, NULL, 0);
    expect_load_error("direction.0", tmp("zero.gguf"), 5, 64, "direction.0: layer 0");
    write_cv(tmp("lead.gguf"), "controlvector", "direction.01", 0, 1, 64, NULL, 0);
    expect_load_error("direction.01 (not canonical)", tmp("lead.gguf"), 5, 64, "direction.01");
    write_cv(tmp("neg.gguf"), "controlvector", "direction.-1", 0, 1, 64, NULL, 0);
    expect_load_error("direction.-1", tmp("neg.gguf"), 5, 64, "direction.-1");
    write_cv(tmp("high.gguf"), "controlvector", "direction.5", 0, 1, 64, NULL, 0);
    expect_load_error("direction.5 in a 5-layer model", tmp("high.gguf"), 5, 64, "layer 5 out of range");
    write_cv(tmp("f16.gguf"), "controlvector", "direction.1", 1, 1, 64, NULL, 0);
    expect_load_error("F16 direction", tmp("f16.gguf"), 5, 64, "F32");
    write_cv(tmp("2d.gguf"), "controlvector", "direction.1", 0, 2, 64, NULL, 0);
    expect_load_error("2-D direction", tmp("2d.gguf"), 5, 64, "2 dimensions");
    write_cv(tmp("wide.gguf"), "controlvector", "direction.1", 0, 1, 128, NULL, 0);
    expect_load_error("n_embd 128 for a 64-wide model", tmp("wide.gguf"), 5, 64, "128 values but the model's n_embd");
    write_cv(tmp("mixed.gguf"), "controlvector", "direction.1", 0, 1, 64, "direction.2", 32);
    expect_load_error("two widths in one file", tmp("mixed.gguf"), 0, 0, "direction.2 has 32 values but direction.1");
    write_cv(tmp("arch.gguf"), "llama", "direction.1", 0, 1, 64, NULL, 0);
    expect_load_error("general.architecture = llama", tmp("arch.gguf"), 5, 64, "not a control vector");
    write_cv(tmp("noarch.gguf"), NULL, "direction.1", 0, 1, 64, NULL, 0);
    expect_load_error("no general.architecture", tmp("noarch.gguf"), 5, 64, "no general.architecture");
    write_cv(tmp("empty.gguf"), "controlvector", NULL, 0, 1, 64, NULL, 0);
    expect_load_error("no tensors", tmp("empty.gguf"), 5, 64, "no direction tensors");
    write_raw_dup(tmp("dupkey.gguf"), 1);
    expect_load_error("duplicate key", tmp("dupkey.gguf"), 5, 64, "duplicate key controlvector.model_hint");
    write_raw_dup(tmp("duptensor.gguf"), 0);
    expect_load_error("duplicate tensor", tmp("duptensor.gguf"), 5, 64, "duplicate tensor direction.1");
    /* The raw builder itself is sound: without the duplicate it loads. */
    {
        steer_vecset *vs = NULL;
        write_cv(tmp("good.gguf"), "controlvector", "direction.1", 0, 1, 64, "direction.4", 64);
        int rc = steer_vecset_load_llamacpp(tmp("good.gguf"), 5, 64, &vs);
        printf("%-44s -> %d (%d vectors)\n", "valid direction.1 + direction.4", rc, steer_vecset_count(vs));
        CHECK(rc == STEER_OK && steer_vecset_count(vs) == 2, "valid control vector rejected: %s", steer_last_error());
        steer_vecset_free(vs);
    }

    /* A vector file for a different d_model: one-line error naming the file,
     * the tensor and both widths. */
    steer_model *m;
    steer_model_params mp = steer_model_default_params();
    CHECK_OK(steer_model_load(MODEL, &mp, &m));
    steer_vecset *vs;
    CHECK_OK(steer_vecset_new(&vs));
    float v[128] = {0};
    v[0] = 1;
    CHECK_OK(steer_vecset_set(vs, STEER_SITE_RESID_POST, 2, 0, 128, v));
    CHECK_OK(steer_vecset_save(vs, tmp("d128.safetensors")));
    steer_vecset_free(vs);
    CHECK_OK(steer_vecset_load(tmp("d128.safetensors"), &vs));
    int rc = steer_vecset_check_model(vs, m, tmp("d128.safetensors"));
    const char *msg = steer_last_error();
    printf("%-44s -> %d: %s\n", "vector file with d = 128 for d_model 64", rc, msg);
    CHECK(rc == STEER_EARG && strstr(msg, "d128.safetensors") && strstr(msg, "resid_post.2") && strstr(msg, "128") &&
              strstr(msg, "64"),
          "d_model mismatch message");
    steer_vecset_free(vs);
    /* The same file through the GGUF path with the model's sizes. */
    write_cv(tmp("d128.gguf"), "controlvector", "direction.2", 0, 1, 128, NULL, 0);
    expect_load_error("control vector n_embd 128 for d_model 64", tmp("d128.gguf"), 5, 64, "128 values");
    steer_model_free(m);

    /* Safetensors: a tensor that is not <site>.<layer>, a duplicate tensor
     * name, a duplicate metadata key, NaN. */
    struct {
        const char *what, *name, *header, *needle;
    } st[] = {
        {"tensor not <site>.<layer>", "odd.safetensors",
         "{\"resid_post.x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "not a steering vector"},
        {"unknown site", "site.safetensors",
         "{\"resid.3\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "not a steering vector"},
        {"duplicate tensor name", "duptensor.safetensors",
         "{\"resid_post.1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"resid_post.1\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         "duplicate tensor resid_post.1"},
        {"duplicate metadata key", "dupmeta.safetensors",
         "{\"__metadata__\":{\"method\":\"a\",\"method\":\"b\"},"
         "\"resid_post.1\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         "duplicate metadata key method"},
        {"NaN value", "nan.safetensors", "{\"resid_post.1\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         "non-finite"},
        {"I32 dtype", "i32.safetensors", "{\"resid_post.1\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         "dtype I32"},
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        const char *path = tmp(st[i].name);
        FILE *f = fopen(path, "wb");
        uint64_t hl = strlen(st[i].header);
        fwrite(&hl, 8, 1, f);
        fwrite(st[i].header, 1, hl, f);
        float data[2] = {1.0f, strcmp(st[i].what, "NaN value") == 0 ? NAN : 2.0f};
        fwrite(data, 4, 2, f);
        fclose(f);
        steer_vecset *x = NULL;
        rc = steer_vecset_load(path, &x);
        msg = steer_last_error();
        printf("%-44s -> %d: %s\n", st[i].what, rc, msg);
        CHECK(rc != STEER_OK && !x && strstr(msg, path) && strstr(msg, st[i].needle), "%s: expected '%s'", st[i].what,
              st[i].needle);
        steer_vecset_free(x);
    }
}

/* ---------------------------------------------------------------- 5. steer extract end to end */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

static int run(const char *cmd)
{
    char full[4096];
    snprintf(full, sizeof full, "%s 2>%s/stderr.txt", cmd, tmpdir);
    int rc = system(full);
    if (rc != 0) {
        char *err = tu_read_file(tmp("stderr.txt"), NULL);
        printf("command failed (%d): %s\n  %s", rc, cmd, err);
        free(err);
    }
    return rc;
}

/* Activation rows of `text` (+ completion) at resid_post of every layer, via
 * captures: out[l] = row at position `pick` (-1: last, -2: mean over all
 * but BOS, else that index). */
static int capture_rows(steer_model *m, const char *text, int pick, float *out, int *n_tok)
{
    const steer_model_config *cfg = steer_model_get_config(m);
    int toks[256], n = 0;
    CHECK_OK(steer_tokenize(m, text, 1, toks, 256, &n));
    steer_ctx *c;
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = 256;
    CHECK_OK(steer_ctx_new(m, &cp, &c));
    for (int l = 0; l < cfg->n_layer; l++) CHECK(steer_ctx_add_capture(c, STEER_SITE_RESID_POST, l, 0) >= 0, "cap");
    CHECK_OK(steer_forward_tokens(c, toks, n, 0, 0));
    const int d = cfg->d_model;
    for (int l = 0; l < cfg->n_layer; l++) {
        int rows;
        const float *h = steer_ctx_captured(c, STEER_SITE_RESID_POST, l, &rows);
        if (pick == -2) {
            for (int j = 0; j < d; j++) {
                double acc = 0;
                for (int t = 1; t < n; t++) acc += h[(size_t)t * d + j];
                out[(size_t)l * d + j] = (float)(acc / (n - 1));
            }
        } else {
            int t = pick == -1 ? n - 1 : pick;
            memcpy(out + (size_t)l * d, h + (size_t)t * d, (size_t)d * 4);
        }
    }
    steer_ctx_free(c);
    if (n_tok) *n_tok = n;
    return 0;
}

static void test_extract_cli(void)
{
    steer_model *m;
    steer_model_params mp = steer_model_default_params();
    CHECK_OK(steer_model_load(MODEL, &mp, &m));
    const int d = 64, L = 5;
    const char *P[] = {"Once upon a time there was a happy girl", "The sun was bright and she laughed",
                       "Tom smiled at his friend"};
    const char *N[] = {"Once upon a time there was a sad girl", "The rain fell and she cried",
                       "Tom frowned at his friend"};
    write_text(tmp("pos.txt"), "Once upon a time there was a happy girl\nThe sun was bright and she laughed\n\n"
                               "Tom smiled at his friend\n");
    write_text(tmp("neg.txt"), "Once upon a time there was a sad girl\r\nThe rain fell and she cried\n"
                               "Tom frowned at his friend");
    float *pr = malloc(3 * (size_t)L * d * 4), *nr = malloc(3 * (size_t)L * d * 4);
    for (int i = 0; i < 3; i++) {
        capture_rows(m, P[i], -1, pr + (size_t)i * L * d, NULL);
        capture_rows(m, N[i], -1, nr + (size_t)i * L * d, NULL);
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s extract -m %s --pos %s --neg %s -o %s", STEER_BIN, MODEL, tmp("pos.txt"),
             tmp("neg.txt"), tmp("md.safetensors"));
    CHECK(run(cmd) == 0, "extract mean-diff");
    snprintf(cmd, sizeof cmd, "%s extract --method pca-diff -m %s --pos %s --neg %s --layers 1-4 -o %s", STEER_BIN,
             MODEL, tmp("pos.txt"), tmp("neg.txt"), tmp("pca.safetensors"));
    CHECK(run(cmd) == 0, "extract pca-diff");
    steer_vecset *md = NULL, *pca = NULL;
    CHECK_OK(steer_vecset_load(tmp("md.safetensors"), &md));
    CHECK_OK(steer_vecset_load(tmp("pca.safetensors"), &pca));
    float want[64], prow[3 * 64], nrow[3 * 64];
    double worst_md = 0, worst_pca = 0;
    for (int l = 0; l < L; l++) {
        for (int i = 0; i < 3; i++) {
            memcpy(prow + i * d, pr + ((size_t)i * L + l) * d, (size_t)d * 4);
            memcpy(nrow + i * d, nr + ((size_t)i * L + l) * d, (size_t)d * 4);
        }
        CHECK_OK(steer_vec_mean_diff(prow, 3, nrow, 3, d, want));
        const steer_vec *e = steer_vecset_find(md, STEER_SITE_RESID_POST, l);
        worst_md = fmax(worst_md, e ? tu_max_abs_diff(e->data, want, d) : INFINITY);
        if (l == 0) continue;
        CHECK_OK(steer_vec_pca(STEER_PCA_DIFF, prow, 3, nrow, 3, d, want, NULL));
        e = steer_vecset_find(pca, STEER_SITE_RESID_POST, l);
        worst_pca = fmax(worst_pca, e ? tu_max_abs_diff(e->data, want, d) : INFINITY);
    }
    printf("extract mean-diff (--token last) vs in-process captures: %d vectors, max|diff| %.3e\n",
           steer_vecset_count(md), worst_md);
    printf("extract pca-diff --layers 1-4 vs in-process: %d vectors, max|diff| %.3e\n", steer_vecset_count(pca),
           worst_pca);
    CHECK(steer_vecset_count(md) == L && worst_md == 0.0, "CLI mean-diff differs");
    CHECK(steer_vecset_count(pca) == 4 && worst_pca == 0.0, "CLI pca-diff differs");
    const char *meth = steer_vecset_meta(md, "method"), *site = steer_vecset_meta(md, "site"),
               *cmdm = steer_vecset_meta(md, "command"), *hint = steer_vecset_meta(md, "model_hint");
    printf("metadata: method=%s site=%s model_hint=%s format_version=%s command=%.40s...\n", meth, site, hint,
           steer_vecset_meta(md, "format_version"), cmdm ? cmdm : "(none)");
    CHECK(meth && strcmp(meth, "mean-diff") == 0 && site && strcmp(site, "resid_post") == 0 && hint &&
              strcmp(hint, "llama") == 0 && cmdm && strncmp(cmdm, "steer extract", 13) == 0,
          "extract metadata");
    steer_vecset_free(md);
    steer_vecset_free(pca);

    /* --token answer and all from JSONL with completions; --data with a shared
     * prompt (CAA form). Answer = first token of prompt+completion past the
     * prompt's tokens. */
    write_text(tmp("pairs.jsonl"), "{\"prompt\": \"Lily was\", \"positive\": \" happy\", \"negative\": \" sad\"}\n"
                                   "{\"prompt\": \"The dog felt\", \"positive\": \" glad\", \"negative\": \" bad\"}\n");
    snprintf(cmd, sizeof cmd, "%s extract -m %s --data %s --token answer --layers 2 -o %s", STEER_BIN, MODEL,
             tmp("pairs.jsonl"), tmp("ans.safetensors"));
    CHECK(run(cmd) == 0, "extract --token answer");
    snprintf(cmd, sizeof cmd, "%s extract -m %s --data %s --token all --layers 2 --normalize -o %s", STEER_BIN, MODEL,
             tmp("pairs.jsonl"), tmp("all.safetensors"));
    CHECK(run(cmd) == 0, "extract --token all");
    const char *full_p[] = {"Lily was happy", "The dog felt glad"}, *full_n[] = {"Lily was sad", "The dog felt bad"};
    const char *prompts[] = {"Lily was", "The dog felt"};
    float *tmpr = malloc((size_t)L * d * 4);
    float ap[2 * 64], an[2 * 64], lp[2 * 64], ln[2 * 64];
    for (int i = 0; i < 2; i++) {
        int np = 0, nf = 0;
        int toks[64];
        CHECK_OK(steer_tokenize(m, prompts[i], 1, toks, 64, &np));
        capture_rows(m, full_p[i], np, tmpr, &nf);
        memcpy(ap + i * d, tmpr + 2 * d, (size_t)d * 4);
        capture_rows(m, full_p[i], -2, tmpr, NULL);
        memcpy(lp + i * d, tmpr + 2 * d, (size_t)d * 4);
        capture_rows(m, full_n[i], np, tmpr, NULL);
        memcpy(an + i * d, tmpr + 2 * d, (size_t)d * 4);
        capture_rows(m, full_n[i], -2, tmpr, NULL);
        memcpy(ln + i * d, tmpr + 2 * d, (size_t)d * 4);
        printf("  '%s': prompt %d tokens, with completion %d: answer token at %d\n", full_p[i], np, nf, np);
    }
    steer_vecset *ans = NULL, *all = NULL;
    CHECK_OK(steer_vecset_load(tmp("ans.safetensors"), &ans));
    CHECK_OK(steer_vecset_load(tmp("all.safetensors"), &all));
    CHECK_OK(steer_vec_mean_diff(ap, 2, an, 2, d, want));
    const steer_vec *e = steer_vecset_find(ans, STEER_SITE_RESID_POST, 2);
    double dd = e ? tu_max_abs_diff(e->data, want, d) : INFINITY;
    printf("extract --data (shared prompt) --token answer: resid_post.2 vs in-process: max|diff| %.3e\n", dd);
    CHECK(steer_vecset_count(ans) == 1 && dd == 0.0, "--token answer differs");
    CHECK_OK(steer_vec_mean_diff(lp, 2, ln, 2, d, want));
    double nn = steer_vec_norm(want, d);
    for (int j = 0; j < d; j++) want[j] = (float)(want[j] / nn);
    e = steer_vecset_find(all, STEER_SITE_RESID_POST, 2);
    dd = e ? tu_max_abs_diff(e->data, want, d) : INFINITY;
    printf("extract --token all --normalize: resid_post.2 vs in-process: max|diff| %.3e, norm %.7f\n", dd,
           e ? steer_vec_norm(e->data, d) : 0.0);
    CHECK(dd <= 1e-6, "--token all differs");
    steer_vecset_free(ans);
    steer_vecset_free(all);
    free(tmpr);

    /* oracle-mean: F = a perturbed copy of a random model; F = B gives zero. */
    steer_make_model_params bp = steer_make_model_default_params(STEER_ARCH_LLAMA);
    bp.seed = 7;
    CHECK_OK(steer_make_model(&bp, tmp("B")));
    bp.seed = 8;
    CHECK_OK(steer_make_model(&bp, tmp("F")));
    write_text(tmp("prompts.txt"), "abc abd\nhello there\nzz top\n");
    snprintf(cmd, sizeof cmd, "%s extract --method oracle-mean -m %s --ft %s --pos %s --site resid_post,mlp_out -o %s",
             STEER_BIN, tmp("B"), tmp("F"), tmp("prompts.txt"), tmp("oracle.safetensors"));
    CHECK(run(cmd) == 0, "extract oracle-mean");
    snprintf(cmd, sizeof cmd, "%s extract --method oracle-mean -m %s --ft %s --pos %s -o %s", STEER_BIN, tmp("B"),
             tmp("B"), tmp("prompts.txt"), tmp("oracle0.safetensors"));
    CHECK(run(cmd) == 0, "extract oracle-mean F = B");
    steer_model *mb, *mf;
    CHECK_OK(steer_model_load(tmp("B"), &mp, &mb));
    CHECK_OK(steer_model_load(tmp("F"), &mp, &mf));
    const int db = steer_model_get_config(mb)->d_model, Lb = steer_model_get_config(mb)->n_layer;
    const char *pr3[] = {"abc abd", "hello there", "zz top"};
    float *fb = malloc(3 * (size_t)Lb * db * 4), *ff = malloc(3 * (size_t)Lb * db * 4);
    for (int i = 0; i < 3; i++) {
        capture_rows(mb, pr3[i], -1, fb + (size_t)i * Lb * db, NULL);
        capture_rows(mf, pr3[i], -1, ff + (size_t)i * Lb * db, NULL);
    }
    steer_vecset *orc = NULL, *orc0 = NULL;
    CHECK_OK(steer_vecset_load(tmp("oracle.safetensors"), &orc));
    CHECK_OK(steer_vecset_load(tmp("oracle0.safetensors"), &orc0));
    double worst = 0, maxzero = 0, norm_sum = 0;
    float *wb = malloc((size_t)db * 4), *fr = malloc(3 * (size_t)db * 4), *br = malloc(3 * (size_t)db * 4);
    for (int l = 0; l < Lb; l++) {
        for (int i = 0; i < 3; i++) {
            memcpy(fr + (size_t)i * db, ff + ((size_t)i * Lb + l) * db, (size_t)db * 4);
            memcpy(br + (size_t)i * db, fb + ((size_t)i * Lb + l) * db, (size_t)db * 4);
        }
        CHECK_OK(steer_vec_mean_diff(fr, 3, br, 3, db, wb));
        e = steer_vecset_find(orc, STEER_SITE_RESID_POST, l);
        worst = fmax(worst, e ? tu_max_abs_diff(e->data, wb, db) : INFINITY);
        norm_sum += e ? steer_vec_norm(e->data, db) : 0;
        e = steer_vecset_find(orc0, STEER_SITE_RESID_POST, l);
        maxzero = fmax(maxzero, e ? steer_vec_norm(e->data, db) : INFINITY);
    }
    printf("oracle-mean (B seed 7, F seed 8, %d layers, d %d): %d vectors (resid_post + mlp_out), resid_post vs "
           "in-process F - B: max|diff| %.3e (sum of norms %.3f); F = B: max norm %.1e\n", Lb, db,
           steer_vecset_count(orc), worst, norm_sum, maxzero);
    CHECK(steer_vecset_count(orc) == 2 * Lb && worst == 0.0 && norm_sum > 0, "oracle-mean differs");
    CHECK(maxzero == 0.0, "oracle-mean with F = B is not zero");
    steer_vecset_free(orc);
    steer_vecset_free(orc0);
    free(wb);
    free(fr);
    free(br);
    free(fb);
    free(ff);
    steer_model_free(mb);
    steer_model_free(mf);
    free(pr);
    free(nr);
    steer_model_free(m);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_vectors.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_mean_diff();
    test_pca_diff();
    test_pca_center();
    test_arithmetic();
    test_llamacpp();
    test_bad_inputs();
    test_extract_cli();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return tu_finish("test_vectors");
}

/*
 * test_hooks.c — hook invariants (SPEC §2, §3) on stories260K: zero add is a
 * no-op, attn_out ≡ resid_mid for adds, self-patch is a no-op, last resid_post
 * through the head is the logits, ablation removes the direction, position
 * selectors respect causality, composition order, and bad interventions.
 */
#include "test_util.h"

static steer_model *M;
static const int IDS[] = {1, 403, 407, 261, 378, 269, 261, 268, 414, 422, 382, 276};
#define N_IDS ((int)(sizeof IDS / sizeof IDS[0]))
#define V 512

/* Runs IDS in ctx c (hooks already set); copies logits [N_IDS, V]. */
static void run(steer_ctx *c, float *logits)
{
    CHECK_OK(steer_forward_tokens(c, IDS, N_IDS, 0, 0));
    for (int i = 0; i < N_IDS; i++) memcpy(logits + (size_t)i * V, steer_ctx_logits(c, i), V * sizeof(float));
}

static steer_ctx *new_ctx(void)
{
    steer_ctx *c;
    CHECK_OK(steer_ctx_new(M, NULL, &c));
    steer_ctx_set_prompt_len(c, 0, N_IDS);
    return c;
}

static steer_intervention iv_add(steer_site s, int l, const float *v, float alpha)
{
    steer_intervention iv = {.kind = STEER_ADD, .site = s, .layer = l, .alpha = alpha, .data = v, .n_rows = 0,
                             .positions = {.kind = STEER_POS_ALL}, .seq = -1};
    return iv;
}

static float base[N_IDS * V], got[N_IDS * V], got2[N_IDS * V];

static int bitwise_equal(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static void test_zero_add(void)
{
    steer_ctx *c = new_ctx();
    static float zero[1024];
    const steer_model_config *cfg = steer_model_get_config(M);
    for (int s = 0; s < STEER_SITE_COUNT; s++)
        for (int l = 0; l < cfg->n_layer; l++) {
            steer_intervention iv = iv_add((steer_site)s, l, zero, 1.0f);
            CHECK(steer_ctx_add_intervention(c, &iv) >= 0, "add zero %d.%d: %s", s, l, steer_last_error());
        }
    run(c, got);
    int eq = bitwise_equal(got, base, N_IDS * V);
    printf("zero vector added at all %d sites x %d layers: logits bitwise equal = %d\n", STEER_SITE_COUNT,
           cfg->n_layer, eq);
    CHECK(eq, "adding zero changed the logits");
    steer_ctx_free(c);
}

static void test_attn_out_equals_resid_mid(void)
{
    float v[64];
    for (int j = 0; j < 64; j++) v[j] = 0.3f * sinf(0.7f * j + 1.0f);
    for (int l = 0; l < 5; l += 2) {
        steer_ctx *a = new_ctx(), *b = new_ctx();
        steer_intervention ia = iv_add(STEER_SITE_ATTN_OUT, l, v, 2.0f);
        steer_intervention ib = iv_add(STEER_SITE_RESID_MID, l, v, 2.0f);
        CHECK(steer_ctx_add_intervention(a, &ia) >= 0, "%s", steer_last_error());
        CHECK(steer_ctx_add_intervention(b, &ib) >= 0, "%s", steer_last_error());
        run(a, got);
        run(b, got2);
        char what[128];
        snprintf(what, sizeof what, "add at attn_out.%d vs resid_mid.%d", l, l);
        CHECK_CLOSE(what, got, got2, N_IDS * V, TOL_SITE_EQUIV);
        double moved = tu_max_abs_diff(got, base, N_IDS * V);
        printf("  (the vector moved the logits by up to %.3f)\n", moved);
        CHECK(moved > 1e-2, "the steering vector had no effect (%.3e)", moved);
        steer_ctx_free(a);
        steer_ctx_free(b);
    }
}

static void test_self_patch(void)
{
    const steer_model_config *cfg = steer_model_get_config(M);
    steer_ctx *c = new_ctx();
    for (int s = 0; s < STEER_SITE_COUNT; s++)
        for (int l = 0; l < cfg->n_layer; l++) CHECK(steer_ctx_add_capture(c, (steer_site)s, l, 0) >= 0, "capture");
    run(c, got);
    CHECK(bitwise_equal(got, base, N_IDS * V), "capturing changed the logits");
    steer_ctx *p = new_ctx();
    for (int s = 0; s < STEER_SITE_COUNT; s++)
        for (int l = 0; l < cfg->n_layer; l++) {
            int rows;
            const float *cap = steer_ctx_captured(c, (steer_site)s, l, &rows);
            CHECK(cap && rows == N_IDS, "captured rows %d", rows);
            steer_intervention iv = {.kind = STEER_PATCH, .site = (steer_site)s, .layer = l, .alpha = 1.0f,
                                     .data = cap, .n_rows = rows, .positions = {.kind = STEER_POS_ALL}, .seq = -1};
            CHECK(steer_ctx_add_intervention(p, &iv) >= 0, "%s", steer_last_error());
        }
    run(p, got2);
    int eq = bitwise_equal(got2, base, N_IDS * V);
    printf("every site patched with its own capture: logits bitwise equal = %d\n", eq);
    CHECK(eq, "self-patch changed the logits");

    /* resid_post of the last layer through the final norm and head = logits */
    int rows;
    const float *h = steer_ctx_captured(c, STEER_SITE_RESID_POST, cfg->n_layer - 1, &rows);
    CHECK_OK(steer_model_unembed(M, h, rows, got2));
    CHECK_CLOSE("unembed(resid_post of last layer) vs logits", got2, base, N_IDS * V, TOL_HOOK_EXACT);

    /* resid_post(l) == resid_pre(l+1), and resid_mid = resid_pre + attn_out */
    const float *post1 = steer_ctx_captured(c, STEER_SITE_RESID_POST, 1, NULL);
    const float *pre2 = steer_ctx_captured(c, STEER_SITE_RESID_PRE, 2, NULL);
    CHECK(bitwise_equal(post1, pre2, N_IDS * 64), "resid_post.1 != resid_pre.2");
    steer_ctx_free(c);
    steer_ctx_free(p);
}

static void test_ablate_and_order(void)
{
    float u[64], v[64];
    double nn = 0;
    for (int j = 0; j < 64; j++) { u[j] = cosf(0.3f * j); nn += u[j] * u[j]; }
    for (int j = 0; j < 64; j++) { u[j] /= (float)sqrt(nn); v[j] = u[j] * 5.0f + 0.1f * sinf((float)j); }

    /* ablate at resid_mid.2, then capture there: projection ~ 0 */
    steer_ctx *c = new_ctx();
    steer_intervention ab = {.kind = STEER_ABLATE, .site = STEER_SITE_RESID_MID, .layer = 2, .alpha = 1.0f,
                             .data = u, .positions = {.kind = STEER_POS_ALL}, .seq = -1};
    CHECK(steer_ctx_add_intervention(c, &ab) >= 0, "%s", steer_last_error());
    CHECK(steer_ctx_add_capture(c, STEER_SITE_RESID_MID, 2, 0) >= 0, "capture");
    run(c, got);
    const float *h = steer_ctx_captured(c, STEER_SITE_RESID_MID, 2, NULL);
    double worst = 0;
    for (int i = 0; i < N_IDS; i++) {
        double d = 0;
        for (int j = 0; j < 64; j++) d += (double)h[i * 64 + j] * u[j];
        if (fabs(d) > worst) worst = fabs(d);
    }
    printf("max |h·u| after ablation: %.3e (tol %.1e)\n", worst, TOL_ABLATE);
    CHECK(worst <= TOL_ABLATE, "ablated direction still present: %.3e", worst);
    steer_ctx_free(c);

    /* order: add then ablate leaves no u-component; ablate then add leaves α v·u */
    steer_ctx *a = new_ctx(), *b = new_ctx();
    steer_intervention add = iv_add(STEER_SITE_RESID_MID, 2, v, 1.0f);
    CHECK(steer_ctx_add_intervention(a, &add) >= 0 && steer_ctx_add_intervention(a, &ab) >= 0, "order a");
    CHECK(steer_ctx_add_intervention(b, &ab) >= 0 && steer_ctx_add_intervention(b, &add) >= 0, "order b");
    CHECK(steer_ctx_add_capture(a, STEER_SITE_RESID_MID, 2, 0) >= 0 && steer_ctx_add_capture(b, STEER_SITE_RESID_MID, 2, 0) >= 0,
          "captures");
    run(a, got);
    run(b, got2);
    const float *ha = steer_ctx_captured(a, STEER_SITE_RESID_MID, 2, NULL);
    const float *hb = steer_ctx_captured(b, STEER_SITE_RESID_MID, 2, NULL);
    double vu = 0, pa = 0, pb = 0;
    for (int j = 0; j < 64; j++) { vu += (double)v[j] * u[j]; pa += (double)ha[j] * u[j]; pb += (double)hb[j] * u[j]; }
    printf("composition order: add→ablate projection %.2e, ablate→add projection %.4f (v·u = %.4f)\n", pa, pb, vu);
    CHECK(fabs(pa) <= TOL_ABLATE, "add then ablate: %.3e", pa);
    CHECK(fabs(pb - vu) <= 1e-3 * fabs(vu), "ablate then add: %.4f vs %.4f", pb, vu);
    steer_ctx_free(a);
    steer_ctx_free(b);
}

static void test_positions(void)
{
    float v[64];
    for (int j = 0; j < 64; j++) v[j] = 1.0f;
    /* only position 5: rows < 5 bitwise unchanged (causal), row 5 changed */
    int at[1] = {5};
    steer_ctx *c = new_ctx();
    steer_intervention iv = iv_add(STEER_SITE_RESID_POST, 1, v, 3.0f);
    iv.positions.kind = STEER_POS_LIST;
    iv.positions.list = at;
    iv.positions.n_list = 1;
    CHECK(steer_ctx_add_intervention(c, &iv) >= 0, "%s", steer_last_error());
    run(c, got);
    CHECK(bitwise_equal(got, base, 5 * V), "positions before 5 changed");
    double d5 = tu_max_abs_diff(got + 5 * V, base + 5 * V, V);
    printf("position-list {5}: rows 0-4 unchanged, row 5 moved by %.3f\n", d5);
    CHECK(d5 > 1e-2, "position 5 not steered");
    steer_ctx_free(c);

    /* FROM 5 equals LIST {5..N-1}; per-position rows equal a list */
    int from[N_IDS];
    for (int i = 5; i < N_IDS; i++) from[i - 5] = i;
    steer_ctx *a = new_ctx(), *b = new_ctx(), *p = new_ctx();
    steer_intervention fa = iv_add(STEER_SITE_MLP_IN, 0, v, 0.5f);
    fa.positions.kind = STEER_POS_FROM;
    fa.positions.k = 5;
    steer_intervention fb = iv_add(STEER_SITE_MLP_IN, 0, v, 0.5f);
    fb.positions.kind = STEER_POS_LIST;
    fb.positions.list = from;
    fb.positions.n_list = N_IDS - 5;
    static float rows[N_IDS * 64];
    for (int i = 5; i < N_IDS; i++) memcpy(rows + i * 64, v, sizeof v);
    steer_intervention fp = iv_add(STEER_SITE_MLP_IN, 0, rows, 0.5f);
    fp.n_rows = N_IDS;
    CHECK(steer_ctx_add_intervention(a, &fa) >= 0 && steer_ctx_add_intervention(b, &fb) >= 0 &&
              steer_ctx_add_intervention(p, &fp) >= 0,
          "%s", steer_last_error());
    run(a, got);
    run(b, got2);
    CHECK(bitwise_equal(got, got2, N_IDS * V), "FROM 5 != LIST 5..");
    run(p, got2);
    CHECK(bitwise_equal(got, got2, N_IDS * V), "per-position rows != FROM 5");
    printf("FROM 5 == LIST {5..%d} == per-position rows: checked bitwise\n", N_IDS - 1);
    steer_ctx_free(a); steer_ctx_free(b); steer_ctx_free(p);
}

/* A user callback: counts calls and scales mlp_act of layer 3. */
typedef struct { int calls; int wants_asked; } cb_state;
static int cb_wants(void *ud, steer_site s, int l)
{
    ((cb_state *)ud)->wants_asked++;
    return s == STEER_SITE_MLP_ACT && l == 3;
}
static int cb_apply(void *ud, steer_site s, int l, float *h, const steer_hook_batch *b)
{
    (void)s; (void)l;
    ((cb_state *)ud)->calls++;
    for (int i = 0; i < b->n * b->width; i++) h[i] *= 0.0f;
    return 0;
}

static void test_callback_and_errors(void)
{
    steer_ctx *c = new_ctx();
    cb_state st = {0};
    steer_hook hk = {.wants = cb_wants, .apply = cb_apply, .ud = &st};
    CHECK(steer_ctx_add_hook(c, &hk) >= 0, "add hook");
    run(c, got);
    printf("callback: asked %d (site, layer) pairs, applied %d time(s)\n", st.wants_asked, st.calls);
    CHECK(st.calls == 1, "callback applied %d times for one batch", st.calls);
    CHECK(!bitwise_equal(got, base, N_IDS * V), "zeroing mlp_act.3 had no effect");

    float v[64] = {0};
    steer_intervention iv = iv_add(STEER_SITE_RESID_POST, 5, v, 1.0f);
    int rc = steer_ctx_add_intervention(c, &iv);
    printf("layer 5: %s\n", steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "layer 5"), "layer out of range: %d", rc);
    iv.layer = 0;
    iv.site = (steer_site)42;
    CHECK(steer_ctx_add_intervention(c, &iv) == STEER_EARG, "unknown site");
    iv.site = STEER_SITE_RESID_POST;
    v[7] = NAN;
    rc = steer_ctx_add_intervention(c, &iv);
    printf("NaN: %s\n", steer_last_error());
    CHECK(rc == STEER_ENAN && strstr(steer_last_error(), "index 7"), "NaN vector: %d", rc);
    v[7] = 0;
    iv.kind = STEER_ABLATE;
    CHECK(steer_ctx_add_intervention(c, &iv) == STEER_EARG, "zero ablation direction");
    steer_site s;
    CHECK(steer_site_parse("mlp_in", &s) == STEER_OK && s == STEER_SITE_MLP_IN, "parse mlp_in");
    CHECK(steer_site_parse("mlp_inn", &s) == STEER_EARG, "parse unknown");
    steer_ctx_free(c);
}


/* steer_ctx_add_capture_into == steer_ctx_add_capture (and a hand-written
 * hook), bitwise: row = position, a row map, a sequence filter, rows past the
 * buffer, and bad arguments. */
typedef struct { steer_site site; int layer, seq, width; float *dst; } hand_cap;
static int hand_wants(void *ud, steer_site s, int l)
{
    const hand_cap *h = ud;
    return s == h->site && l == h->layer;
}
static int hand_apply(void *ud, steer_site s, int l, float *x, const steer_hook_batch *b)
{
    (void)s; (void)l;
    const hand_cap *h = ud;
    for (int i = 0; i < b->n; i++)
        if (b->seq[i] == h->seq) memcpy(h->dst + (size_t)b->pos[i] * h->width, x + (size_t)i * b->width, h->width * 4);
    return 0;
}

static void test_capture_into(void)
{
    const steer_model_config *cfg = steer_model_get_config(M);
    const int f = cfg->d_ff, d = cfg->d_model;
    float *into = malloc((size_t)N_IDS * f * 4), *hand = calloc((size_t)N_IDS * f, 4);
    float *mapped = malloc((size_t)N_IDS * f * 4), *short_buf = malloc((size_t)5 * f * 4);
    int map[N_IDS + 4];
    const int n_mapped = (N_IDS + 2) / 3;
    for (int p = 0; p < N_IDS + 4; p++) map[p] = p % 3 == 0 ? n_mapped - 1 - p / 3 : -1; /* every third, reversed */
    for (size_t i = 0; i < (size_t)N_IDS * f; i++) into[i] = mapped[i] = -7.0f;
    for (size_t i = 0; i < (size_t)5 * f; i++) short_buf[i] = -7.0f;
    steer_ctx *c = new_ctx();
    hand_cap hc = {STEER_SITE_MLP_GATE, 2, 0, f, hand};
    steer_hook hk = {.wants = hand_wants, .apply = hand_apply, .ud = &hc};
    CHECK(steer_ctx_add_capture(c, STEER_SITE_MLP_GATE, 2, 0) >= 0, "%s", steer_last_error());
    CHECK(steer_ctx_add_hook(c, &hk) >= 0, "%s", steer_last_error());
    CHECK(steer_ctx_add_capture_into(c, STEER_SITE_MLP_GATE, 2, 0, into, N_IDS, f, NULL, 0) >= 0, "%s",
          steer_last_error());
    CHECK(steer_ctx_add_capture_into(c, STEER_SITE_MLP_GATE, 2, -1, mapped, n_mapped, f, map, N_IDS + 4) >= 0, "%s",
          steer_last_error());
    CHECK(steer_ctx_add_capture_into(c, STEER_SITE_MLP_GATE, 2, 0, short_buf, 4, f, NULL, 0) >= 0, "%s",
          steer_last_error());
    run(c, got);
    CHECK(bitwise_equal(got, base, N_IDS * V), "captures changed the logits");
    int rows = 0;
    const float *cap = steer_ctx_captured(c, STEER_SITE_MLP_GATE, 2, &rows);
    CHECK(cap && rows == N_IDS, "steer_ctx_captured: %d rows", rows);
    int eq = cap && bitwise_equal(into, cap, (size_t)N_IDS * f) && bitwise_equal(into, hand, (size_t)N_IDS * f);
    printf("capture into a buffer == steer_ctx_add_capture == a hand-written hook (mlp_gate.2, %d rows): %d\n",
           N_IDS, eq);
    CHECK(eq, "capture into differs from the captured rows");
    int ok = 1;
    for (int p = 0; p < N_IDS; p++)
        if (map[p] >= 0) ok &= bitwise_equal(mapped + (size_t)map[p] * f, into + (size_t)p * f, f);
    for (size_t i = (size_t)n_mapped * f; i < (size_t)N_IDS * f; i++) ok &= mapped[i] == -7.0f;
    printf("row map (every third position, reversed, into %d rows): rows equal, the rest untouched: %d\n", n_mapped,
           ok);
    CHECK(ok, "row-mapped capture");
    ok = bitwise_equal(short_buf, into, (size_t)4 * f);
    for (int j = 0; j < f; j++) ok &= short_buf[(size_t)4 * f + j] == -7.0f;
    printf("a 4-row buffer gets positions 0..3 and nothing past it: %d\n", ok);
    CHECK(ok, "short buffer");
    steer_ctx_free(c);

    /* two sequences in one batch: seq 1 only, and a map read at each pass */
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_seq = 2;
    CHECK_OK(steer_ctx_new(M, &cp, &c));
    float *s1 = malloc((size_t)N_IDS * d * 4), *s0 = malloc((size_t)N_IDS * d * 4);
    int ident[N_IDS];
    for (int p = 0; p < N_IDS; p++) ident[p] = p;
    CHECK(steer_ctx_add_capture_into(c, STEER_SITE_RESID_POST, 4, 1, s1, N_IDS, d, ident, N_IDS) >= 0, "%s",
          steer_last_error());
    CHECK(steer_ctx_add_capture(c, STEER_SITE_RESID_POST, 4, 1) >= 0, "%s", steer_last_error());
    int tok[2 * N_IDS], pos[2 * N_IDS], seq[2 * N_IDS];
    for (int i = 0; i < N_IDS; i++) {
        tok[2 * i] = IDS[i]; pos[2 * i] = i; seq[2 * i] = 0;
        tok[2 * i + 1] = IDS[N_IDS - 1 - i]; pos[2 * i + 1] = i; seq[2 * i + 1] = 1;
    }
    steer_batch b = {.n = 2 * N_IDS, .tokens = tok, .pos = pos, .seq = seq, .logits = NULL};
    CHECK_OK(steer_forward(c, &b));
    cap = steer_ctx_captured(c, STEER_SITE_RESID_POST, 4, &rows);
    eq = cap && rows == N_IDS && bitwise_equal(s1, cap, (size_t)N_IDS * d);
    printf("sequence 1 of a 2-sequence batch (resid_post.4): capture into == steer_ctx_add_capture: %d\n", eq);
    CHECK(eq, "sequence filter");
    memcpy(s0, s1, (size_t)N_IDS * d * 4);
    for (int p = 0; p < N_IDS; p++) ident[p] = -1; /* the map is borrowed: a changed map applies at the next pass */
    ident[0] = 1;
    steer_ctx_clear(c, -1);
    CHECK_OK(steer_forward(c, &b));
    eq = bitwise_equal(s1, s0, d) && bitwise_equal(s1 + d, s0, d) && bitwise_equal(s1 + 2 * d, s0 + 2 * d, (size_t)(N_IDS - 2) * d);
    printf("a map changed between passes: only row 1 rewritten (with position 0): %d\n", eq);
    CHECK(eq, "changed map");

    int rc = steer_ctx_add_capture_into(c, STEER_SITE_MLP_GATE, 0, 0, s0, N_IDS, d, NULL, 0);
    printf("width %d at mlp_gate: %s\n", d, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "wide"), "width mismatch: %d", rc);
    CHECK(steer_ctx_add_capture_into(c, STEER_SITE_RESID_POST, 0, 2, s0, N_IDS, d, NULL, 0) == STEER_EARG, "seq 2");
    CHECK(steer_ctx_add_capture_into(c, STEER_SITE_RESID_POST, 5, 0, s0, N_IDS, d, NULL, 0) == STEER_EARG, "layer 5");
    CHECK(steer_ctx_add_capture_into(c, STEER_SITE_RESID_POST, 0, 0, NULL, N_IDS, d, NULL, 0) == STEER_EARG, "no dst");
    CHECK(steer_ctx_add_capture_into(c, STEER_SITE_RESID_POST, 0, 0, s0, N_IDS, d, NULL, 3) == STEER_EARG,
          "n_map without a map");
    steer_ctx_free(c);
    free(into); free(hand); free(mapped); free(short_buf); free(s0); free(s1);
}

int main(void)
{
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &M));
    steer_ctx *c = new_ctx();
    run(c, base);
    steer_ctx_free(c);
    test_zero_add();
    test_attn_out_equals_resid_mid();
    test_self_patch();
    test_ablate_and_order();
    test_positions();
    test_callback_and_errors();
    test_capture_into();
    steer_model_free(M);
    return tu_finish("test_hooks");
}

/*
 * test_seq_steer.c — what `steer serve` relies on (tools/serve/): interventions
 * restricted to one sequence inside a multi-sequence batch give, bit for bit,
 * the logits that sequence gets alone with the same steering; removing one
 * sequence's interventions by id (steer_ctx_remove_hook) restores the
 * unsteered logits and leaves the others in place; steer_ctx_clear(seq) lets a
 * slot be reused for a new prompt.
 */
#include "test_util.h"

static steer_model *M;
static const int A[] = {1, 403, 407, 261, 378, 269, 261, 268};
static const int B[] = {1, 414, 422, 382, 276};
#define NA ((int)(sizeof A / sizeof A[0]))
#define NB ((int)(sizeof B / sizeof B[0]))
#define V 512
#define D 64

static float va[D], vb[D];

static steer_intervention add_iv(steer_site s, int l, const float *v, float alpha, int seq)
{
    steer_intervention iv = {.kind = STEER_ADD, .site = s, .layer = l, .alpha = alpha, .data = v, .n_rows = 0,
                             .positions = {.kind = STEER_POS_ALL}, .seq = seq};
    return iv;
}

/* Greedy continuation of prompt p (n tokens) in sequence 0 of a fresh
 * context with one intervention (v NULL: none): last-row logits of the
 * prompt pass and of each of `steps` decode steps into out [(steps+1), V]. */
static void alone(const int *p, int n, const float *v, steer_site s, int l, float alpha, int steps, float *out)
{
    steer_ctx *c;
    CHECK_OK(steer_ctx_new(M, NULL, &c));
    if (v) {
        steer_intervention iv = add_iv(s, l, v, alpha, 0);
        CHECK(steer_ctx_add_intervention(c, &iv) >= 0, "add: %s", steer_last_error());
    }
    CHECK_OK(steer_forward_tokens(c, p, n, 0, 0));
    memcpy(out, steer_ctx_logits(c, n - 1), V * sizeof(float));
    int pos = n;
    for (int k = 0; k < steps; k++) {
        int tok = 0;
        const float *lg = out + (size_t)k * V;
        for (int j = 1; j < V; j++) if (lg[j] > lg[tok]) tok = j;
        CHECK_OK(steer_forward_tokens(c, &tok, 1, pos++, 0));
        memcpy(out + (size_t)(k + 1) * V, steer_ctx_logits(c, 0), V * sizeof(float));
    }
    steer_ctx_free(c);
}

static int argmax(const float *lg)
{
    int t = 0;
    for (int j = 1; j < V; j++) if (lg[j] > lg[t]) t = j;
    return t;
}

#define STEPS 4

/* Sequences 1 (A, steered at resid_post.2) and 3 (B, steered at mlp_in.1)
 * of a 4-sequence context: B's prompt joins while A decodes (one batch holds
 * A's decode row and B's prompt rows), then both decode in one batch. */
static void test_batched_equals_alone(void)
{
    static float ea[(STEPS + 2) * V], eb[(STEPS + 1) * V], ga[V], gb[V];
    alone(A, NA, va, STEER_SITE_RESID_POST, 2, 3.0f, STEPS + 1, ea);
    alone(B, NB, vb, STEER_SITE_MLP_IN, 1, -2.0f, STEPS, eb);
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_seq = 4;
    steer_ctx *c;
    CHECK_OK(steer_ctx_new(M, &cp, &c));
    steer_intervention ia = add_iv(STEER_SITE_RESID_POST, 2, va, 3.0f, 1);
    steer_intervention ib = add_iv(STEER_SITE_MLP_IN, 1, vb, -2.0f, 3);
    int id_a = steer_ctx_add_intervention(c, &ia), id_b = steer_ctx_add_intervention(c, &ib);
    CHECK(id_a >= 0 && id_b >= 0, "ids %d %d", id_a, id_b);
    /* A's prompt alone */
    CHECK_OK(steer_forward_tokens(c, A, NA, 0, 1));
    memcpy(ga, steer_ctx_logits(c, NA - 1), sizeof ga);
    CHECK(memcmp(ga, ea, sizeof ga) == 0, "A prompt logits differ");
    /* A's first decode row + B's prompt in one batch */
    int tok[1 + NB], pos[1 + NB], seq[1 + NB];
    int8_t want[1 + NB];
    tok[0] = argmax(ea); pos[0] = NA; seq[0] = 1; want[0] = 1;
    for (int i = 0; i < NB; i++) { tok[1 + i] = B[i]; pos[1 + i] = i; seq[1 + i] = 3; want[1 + i] = i == NB - 1; }
    steer_batch b = {.n = 1 + NB, .tokens = tok, .pos = pos, .seq = seq, .logits = want};
    CHECK_OK(steer_forward(c, &b));
    CHECK(memcmp(steer_ctx_logits(c, 0), ea + V, V * sizeof(float)) == 0, "A step 1 differs batched with B's prompt");
    CHECK(memcmp(steer_ctx_logits(c, NB), eb, V * sizeof(float)) == 0, "B prompt differs batched with A");
    memcpy(ga, steer_ctx_logits(c, 0), sizeof ga);
    memcpy(gb, steer_ctx_logits(c, NB), sizeof gb);
    int pa = NA + 1, pb = NB, same = 1;
    for (int k = 0; k < STEPS; k++) {
        int t2[2] = {argmax(ga), argmax(gb)}, p2[2] = {pa++, pb++}, s2[2] = {1, 3};
        steer_batch b2 = {.n = 2, .tokens = t2, .pos = p2, .seq = s2, .logits = NULL};
        CHECK_OK(steer_forward(c, &b2));
        memcpy(ga, steer_ctx_logits(c, 0), sizeof ga);
        memcpy(gb, steer_ctx_logits(c, 1), sizeof gb);
        same &= memcmp(ga, ea + (size_t)(k + 2) * V, sizeof ga) == 0;
        same &= memcmp(gb, eb + (size_t)(k + 1) * V, sizeof gb) == 0;
    }
    CHECK(same, "decode steps differ batched vs alone");
    printf("two differently steered sequences in one batch == each alone, bitwise (%d steps): %s\n", STEPS,
           same ? "yes" : "no");

    /* remove A's intervention: B's stays; a new prompt in slot 1 after
     * steer_ctx_clear is the unsteered one, B still steered */
    CHECK_OK(steer_ctx_remove_hook(c, id_a));
    CHECK(steer_ctx_remove_hook(c, id_a) == STEER_EARG, "removing twice is not an error");
    steer_ctx_clear(c, 1);
    static float ua[(STEPS + 1) * V];
    alone(A, NA, NULL, 0, 0, 0, 0, ua);
    int t3[1 + NA], p3[1 + NA], s3[1 + NA];
    int8_t w3[1 + NA];
    t3[0] = argmax(gb); p3[0] = pb; s3[0] = 3; w3[0] = 1;
    for (int i = 0; i < NA; i++) { t3[1 + i] = A[i]; p3[1 + i] = i; s3[1 + i] = 1; w3[1 + i] = i == NA - 1; }
    steer_batch b3 = {.n = 1 + NA, .tokens = t3, .pos = p3, .seq = s3, .logits = w3};
    CHECK_OK(steer_forward(c, &b3));
    CHECK(memcmp(steer_ctx_logits(c, NA), ua, V * sizeof(float)) == 0, "slot reused after clear+remove: not unsteered");
    static float eb2[(STEPS + 2) * V];
    alone(B, NB, vb, STEER_SITE_MLP_IN, 1, -2.0f, STEPS + 1, eb2);
    CHECK(memcmp(steer_ctx_logits(c, 0), eb2 + (size_t)(STEPS + 1) * V, V * sizeof(float)) == 0,
          "B changed when A's intervention was removed");
    CHECK_OK(steer_ctx_remove_hook(c, id_b));
    steer_ctx_free(c);
}

/* a capture and a user hook can be removed too; ids of the others stay */
static int hook_calls;
static int wants_all(void *ud, steer_site s, int l) { (void)ud; return s == STEER_SITE_RESID_POST && l == 0; }
static int count_apply(void *ud, steer_site s, int l, float *h, const steer_hook_batch *b)
{
    (void)ud; (void)s; (void)l; (void)h; (void)b;
    hook_calls++;
    return 0;
}

static void test_remove_kinds(void)
{
    steer_ctx *c;
    CHECK_OK(steer_ctx_new(M, NULL, &c));
    steer_hook h = {wants_all, count_apply, NULL};
    int h1 = steer_ctx_add_hook(c, &h), cap = steer_ctx_add_capture(c, STEER_SITE_RESID_POST, 1, 0);
    int h2 = steer_ctx_add_hook(c, &h);
    CHECK(h1 >= 0 && cap >= 0 && h2 >= 0, "adds");
    CHECK_OK(steer_ctx_remove_hook(c, cap));
    CHECK_OK(steer_ctx_remove_hook(c, h1));
    hook_calls = 0;
    CHECK_OK(steer_forward_tokens(c, A, NA, 0, 0));
    CHECK(hook_calls == 1, "one hook left, called %d times", hook_calls);
    CHECK(steer_ctx_captured(c, STEER_SITE_RESID_POST, 1, NULL) == NULL, "capture still there");
    CHECK(steer_ctx_remove_hook(c, 12345) == STEER_EARG, "unknown id accepted");
    CHECK_OK(steer_ctx_remove_hook(c, h2));
    hook_calls = 0;
    CHECK_OK(steer_forward_tokens(c, A, NA, 0, 0));
    CHECK(hook_calls == 0, "removed hook still called");
    steer_ctx_free(c);
}

int main(void)
{
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &M));
    CHECK(steer_model_get_config(M)->d_model == D, "d_model");
    for (int j = 0; j < D; j++) { va[j] = (float)sin(0.3 * j); vb[j] = (float)cos(0.7 * j); }
    test_batched_equals_alone();
    test_remove_kinds();
    steer_model_free(M);
    return tu_finish("test_seq_steer");
}

/*
 * test_cancel.c — steer_cancel (the flag a binding's Ctrl-C raises): a pass
 * started while it is up stops with STEER_ECANCELLED before the first layer;
 * a hook that raises it mid-pass stops the pass before the next layer (no
 * later hook runs); steer_generate stops too; with the flag down again the
 * same context gives bit for bit the logits of a fresh one.
 */
#include "test_util.h"

static steer_model *M;
static const int IDS[] = {1, 403, 407, 261, 378, 269, 261, 268};
#define N_IDS ((int)(sizeof IDS / sizeof IDS[0]))
#define V 512

static int last_layer_seen;

static int wants_all(void *ud, steer_site s, int l)
{
    (void)ud; (void)l;
    return s == STEER_SITE_RESID_POST;
}

/* Records the layer; raises the flag after layer *(int *)ud. */
static int apply_cancel(void *ud, steer_site s, int l, float *h, const steer_hook_batch *b)
{
    (void)s; (void)h; (void)b;
    last_layer_seen = l;
    if (l == *(int *)ud) steer_cancel(1);
    return 0;
}

static int count_tokens(void *ud, int tok)
{
    (void)tok;
    (*(int *)ud)++;
    return 0;
}

int main(void)
{
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &M));
    const int L = steer_model_get_config(M)->n_layer;
    static float ref[N_IDS * V], got[N_IDS * V];

    steer_ctx *c0, *c;
    CHECK_OK(steer_ctx_new(M, NULL, &c0));
    CHECK_OK(steer_forward_tokens(c0, IDS, N_IDS, 0, 0));
    for (int i = 0; i < N_IDS; i++) memcpy(ref + (size_t)i * V, steer_ctx_logits(c0, i), V * sizeof(float));

    /* flag up before the pass */
    CHECK_OK(steer_ctx_new(M, NULL, &c));
    CHECK(steer_cancelled() == 0, "flag starts down");
    steer_cancel(1);
    CHECK(steer_cancelled() == 1, "steer_cancel(1) raises the flag");
    int rc = steer_forward_tokens(c, IDS, N_IDS, 0, 0);
    CHECK(rc == STEER_ECANCELLED, "forward with the flag up returned %d", rc);
    CHECK(strcmp(steer_last_error(), "cancelled") == 0, "message '%s'", steer_last_error());
    steer_sampler *s;
    CHECK_OK(steer_sampler_new(NULL, &s));
    int made = 0, n_out = -1;
    rc = steer_generate(c, IDS, N_IDS, 8, s, count_tokens, &made, &n_out);
    CHECK(rc == STEER_ECANCELLED && made == 0, "generate with the flag up: rc %d, %d tokens", rc, made);
    steer_cancel(0);
    CHECK(steer_cancelled() == 0, "steer_cancel(0) lowers it");

    /* a hook raises it after layer 1: layers 2.. never run */
    int stop_at = 1;
    steer_hook h = {.wants = wants_all, .apply = apply_cancel, .ud = &stop_at};
    CHECK(steer_ctx_add_hook(c, &h) >= 0, "add hook: %s", steer_last_error());
    last_layer_seen = -1;
    rc = steer_forward_tokens(c, IDS, N_IDS, 0, 0);
    CHECK(rc == STEER_ECANCELLED, "forward cancelled by a hook returned %d", rc);
    CHECK(last_layer_seen == stop_at, "last hook call at layer %d (expected %d of %d)", last_layer_seen, stop_at, L);
    /* and generation: cancelled during the prompt */
    steer_cancel(0);
    made = 0;
    rc = steer_generate(c, IDS, N_IDS, 8, s, count_tokens, &made, &n_out);
    CHECK(rc == STEER_ECANCELLED && made == 0, "generate cancelled by a hook: rc %d, %d tokens", rc, made);
    steer_cancel(0);

    /* flag down: the cancelled context, cleared, gives the fresh context's logits */
    steer_ctx_clear_hooks(c);
    steer_ctx_clear(c, -1);
    CHECK_OK(steer_forward_tokens(c, IDS, N_IDS, 0, 0));
    for (int i = 0; i < N_IDS; i++) memcpy(got + (size_t)i * V, steer_ctx_logits(c, i), V * sizeof(float));
    CHECK(memcmp(got, ref, sizeof ref) == 0, "logits after cancellation differ from a fresh context's");
    made = 0;
    CHECK_OK(steer_generate(c, IDS, N_IDS, 8, s, count_tokens, &made, &n_out));
    CHECK(made == 8 && n_out == 8, "generate after cancellation made %d tokens", made);

    steer_sampler_free(s);
    steer_ctx_free(c);
    steer_ctx_free(c0);
    steer_model_free(M);
    return tu_finish("test_cancel");
}

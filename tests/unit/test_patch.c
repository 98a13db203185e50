/*
 * test_patch.c — activation patching (steer_patcher_*, src/exp/patch.c) on
 * stories260K: the invariants that hold bit for bit —
 *   - every position at resid_pre of layer 0 patched: the clean logits;
 *   - every position (and the last one alone) at resid_post of the last
 *     layer patched: the clean logits;
 *   - nothing patched: the corrupted logits; positions whose clean and
 *     corrupted tokens agree at resid_pre of layer 0: the corrupted metric;
 *     positions before the last at resid_post of the last layer likewise;
 *   - a sweep's values equal single runs (batch invariance);
 * and the errors (different lengths, token ids, positions).
 */
#include "test_util.h"

#define V 512
/* "The cat sat on the" → " ground", "The dog sat on the" → " swing": positions 2, 3 differ. */
static const int CLEAN[] = {1, 291, 280, 294, 262, 294, 353, 265};
static const int CORR[] = {1, 291, 400, 428, 262, 294, 353, 265};
#define T ((int)(sizeof CLEAN / sizeof CLEAN[0]))

static int argmax(const float *lg)
{
    int t = 0;
    for (int j = 1; j < V; j++) if (lg[j] > lg[t]) t = j;
    return t;
}

int main(void)
{
    steer_model *m;
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &m));
    const int L = steer_model_get_config(m)->n_layer;
    steer_patcher *p;
    CHECK_OK(steer_patcher_new(m, CLEAN, T, CORR, T, 3, 0, &p)); /* batch 3: sweeps span 3 forward passes */
    CHECK(steer_patcher_n_tokens(p) == T, "n_tokens %d", steer_patcher_n_tokens(p));
    const float *cl = steer_patcher_clean_logits(p), *co = steer_patcher_corrupt_logits(p);
    steer_patch_metric mt = {.kind = STEER_PATCH_LOGIT_DIFF, .answer = argmax(cl), .wrong = argmax(co)};
    double m_clean = steer_patcher_metric(p, &mt, cl), m_corr = steer_patcher_metric(p, &mt, co);
    printf("answer %d wrong %d: clean %.6f corrupted %.6f\n", mt.answer, mt.wrong, m_clean, m_corr);
    CHECK(mt.answer != mt.wrong && m_clean > 0 && m_corr < 0, "the prompts must disagree (clean %g, corrupted %g)",
          m_clean, m_corr);

    int all[T];
    for (int t = 0; t < T; t++) all[t] = t;
    float out[V];
    CHECK_OK(steer_patcher_run(p, STEER_SITE_RESID_PRE, 0, all, T, out));
    CHECK(memcmp(out, cl, sizeof out) == 0, "resid_pre.0 at every position: not the clean logits (max diff %g)",
          tu_max_abs_diff(out, cl, V));
    CHECK_OK(steer_patcher_run(p, STEER_SITE_RESID_POST, L - 1, all, T, out));
    CHECK(memcmp(out, cl, sizeof out) == 0, "resid_post.%d at every position: not the clean logits", L - 1);
    const int last = T - 1;
    CHECK_OK(steer_patcher_run(p, STEER_SITE_RESID_POST, L - 1, &last, 1, out));
    CHECK(memcmp(out, cl, sizeof out) == 0, "resid_post.%d at the last position: not the clean logits", L - 1);
    CHECK_OK(steer_patcher_run(p, STEER_SITE_ATTN_OUT, 2, NULL, 0, out));
    CHECK(memcmp(out, co, sizeof out) == 0, "nothing patched: not the corrupted logits");
    steer_patch_metric kl = {.kind = STEER_PATCH_KL};
    CHECK_OK(steer_patcher_run(p, STEER_SITE_RESID_PRE, 0, all, T, out));
    CHECK(steer_patcher_metric(p, &kl, out) == 0.0, "KL of the clean logits from themselves %g",
          steer_patcher_metric(p, &kl, out));
    CHECK(steer_patcher_metric(p, &kl, co) > 0.0, "KL(clean || corrupted) %g", steer_patcher_metric(p, &kl, co));

    /* Sweeps: single runs, bit for bit, and the invariants per position. */
    double v[T];
    const steer_site sites[] = {STEER_SITE_RESID_PRE, STEER_SITE_MLP_ACT, STEER_SITE_RESID_POST};
    for (int si = 0; si < 3; si++) {
        for (int l = 0; l < L; l += L - 1) {
            CHECK_OK(steer_patcher_sweep(p, sites[si], l, &mt, v));
            for (int t = 0; t < T; t++) {
                CHECK_OK(steer_patcher_run(p, sites[si], l, &t, 1, out));
                double one = steer_patcher_metric(p, &mt, out);
                CHECK(v[t] == one, "%s.%d position %d: sweep %.9g, alone %.9g", steer_site_name(sites[si]), l, t,
                      v[t], one);
            }
        }
    }
    CHECK_OK(steer_patcher_sweep(p, STEER_SITE_RESID_PRE, 0, &mt, v));
    for (int t = 0; t < T; t++)
        if (CLEAN[t] == CORR[t]) CHECK(v[t] == m_corr, "resid_pre.0 at equal token %d: %.9g != %.9g", t, v[t], m_corr);
    printf("resid_pre.0 at the differing position 2: %.6f (clean %.6f, corrupted %.6f)\n", v[2], m_clean, m_corr);
    CHECK(v[2] != m_corr, "patching the differing token changes nothing");
    CHECK_OK(steer_patcher_sweep(p, STEER_SITE_RESID_POST, L - 1, &mt, v));
    for (int t = 0; t < T; t++)
        CHECK(v[t] == (t == T - 1 ? m_clean : m_corr), "resid_post.%d position %d: %.9g", L - 1, t, v[t]);

    /* Errors. */
    CHECK(steer_patcher_run(p, STEER_SITE_RESID_PRE, L, all, 1, out) == STEER_EARG, "layer out of range accepted");
    const int bad = T;
    CHECK(steer_patcher_run(p, STEER_SITE_RESID_PRE, 0, &bad, 1, out) == STEER_EARG, "position out of range accepted");
    CHECK(strstr(steer_last_error(), "position 8 out of range") != NULL, "message: %s", steer_last_error());
    steer_patch_metric badm = {.kind = STEER_PATCH_LOGIT_DIFF, .answer = V, .wrong = 0};
    CHECK(steer_patcher_sweep(p, STEER_SITE_RESID_PRE, 0, &badm, v) == STEER_EARG, "answer out of range accepted");
    steer_patcher_free(p);

    steer_patcher *q = NULL;
    CHECK(steer_patcher_new(m, CLEAN, T, CORR, T - 1, 0, 0, &q) == STEER_EARG && !q, "different lengths accepted");
    CHECK(strstr(steer_last_error(), "clean prompt is 8 tokens and the corrupted one 7") != NULL, "message: %s",
          steer_last_error());
    const int oov[T] = {1, 291, 280, 294, 9999, 294, 353, 265};
    CHECK(steer_patcher_new(m, CLEAN, T, oov, T, 0, 0, &q) == STEER_EARG && !q, "token id out of range accepted");
    printf("error: %s\n", steer_last_error());
    steer_model_free(m);
    return tu_finish("test_patch");
}

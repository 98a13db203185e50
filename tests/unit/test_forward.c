/*
 * test_forward.c — logits against golden outputs of llama2.c and llama.cpp,
 * .bin vs .gguf, batched vs token-by-token, 1 vs 2 threads, several sequences
 * in one batch.
 */
#include "test_util.h"

#include <cjson/cJSON.h>

static const char *CASES[] = {"once_upon_a_time", "lily_and_tom", "the_cat"};

/* Reads all_token_ids of a golden case; returns count. */
static int read_case_ids(const char *name, int *ids, int max)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/stories260K/%s.json", STEER_TESTDATA_DIR, name);
    char *txt = tu_read_file(path, NULL);
    cJSON *j = cJSON_Parse(txt);
    cJSON *arr = cJSON_GetObjectItem(j, "all_token_ids");
    int n = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, arr) if (n < max) ids[n++] = it->valueint;
    cJSON_Delete(j);
    free(txt);
    return n;
}

/* Evaluates ids as one batch in a fresh context; logits [n, V] into out. */
static void logits_batch(steer_model *m, const int *ids, int n, int threads, float *out)
{
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_threads = threads;
    steer_ctx *c;
    CHECK_OK(steer_ctx_new(m, &cp, &c));
    CHECK_OK(steer_forward_tokens(c, ids, n, 0, 0));
    int V = steer_vocab_size(m);
    for (int i = 0; i < n; i++) memcpy(out + (size_t)i * V, steer_ctx_logits(c, i), V * sizeof(float));
    steer_ctx_free(c);
}

/* Token by token through the KV cache. */
static void logits_seq(steer_model *m, const int *ids, int n, float *out)
{
    steer_ctx *c;
    CHECK_OK(steer_ctx_new(m, NULL, &c));
    int V = steer_vocab_size(m);
    for (int i = 0; i < n; i++) {
        CHECK_OK(steer_forward_tokens(c, ids + i, 1, i, 0));
        memcpy(out + (size_t)i * V, steer_ctx_logits(c, 0), V * sizeof(float));
    }
    steer_ctx_free(c);
}

static void test_stories(void)
{
    steer_model *mb, *mg;
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &mb));
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.gguf", NULL, &mg));
    const int V = 512;
    for (int ci = 0; ci < 3; ci++) {
        int ids[128];
        int n = read_case_ids(CASES[ci], ids, 128);
        CHECK(n > 4, "case %s has %d ids", CASES[ci], n);
        float *lb = malloc((size_t)n * V * 4), *lg = malloc((size_t)n * V * 4), *ls = malloc((size_t)n * V * 4),
              *l1 = malloc((size_t)n * V * 4);
        logits_batch(mb, ids, n, 2, lb);
        logits_batch(mg, ids, n, 2, lg);
        logits_seq(mb, ids, n, ls);
        logits_batch(mb, ids, n, 1, l1);
        char path[1024], what[256];
        size_t sz;
        snprintf(path, sizeof path, "%s/stories260K/%s.logits.f32.bin", STEER_TESTDATA_DIR, CASES[ci]);
        float *ref = tu_read_file(path, &sz);
        CHECK(sz == (size_t)n * V * 4, "%s: size %zu", path, sz);
        snprintf(what, sizeof what, "%s .bin vs llama2.c", CASES[ci]);
        CHECK_CLOSE(what, lb, ref, (size_t)n * V, TOL_LOGITS_GOLDEN);
        snprintf(what, sizeof what, "%s .gguf vs llama2.c", CASES[ci]);
        CHECK_CLOSE(what, lg, ref, (size_t)n * V, TOL_LOGITS_GOLDEN);
        free(ref);
        snprintf(path, sizeof path, "%s/stories260K/%s.logits.llamacpp.f32.bin", STEER_TESTDATA_DIR, CASES[ci]);
        ref = tu_read_file(path, &sz);
        snprintf(what, sizeof what, "%s .bin vs llama.cpp", CASES[ci]);
        CHECK_CLOSE(what, lb, ref, (size_t)n * V, TOL_LOGITS_GOLDEN);
        snprintf(what, sizeof what, "%s .gguf vs llama.cpp", CASES[ci]);
        CHECK_CLOSE(what, lg, ref, (size_t)n * V, TOL_LOGITS_GOLDEN);
        free(ref);
        snprintf(what, sizeof what, "%s .bin vs .gguf", CASES[ci]);
        CHECK_CLOSE(what, lb, lg, (size_t)n * V, TOL_LOGITS_FORMATS);
        snprintf(what, sizeof what, "%s batched vs token-by-token", CASES[ci]);
        CHECK_CLOSE(what, lb, ls, (size_t)n * V, TOL_BATCH_VS_SEQ);
        snprintf(what, sizeof what, "%s 2 threads vs 1 thread", CASES[ci]);
        CHECK_CLOSE(what, lb, l1, (size_t)n * V, TOL_BATCH_VS_SEQ);
        free(lb); free(lg); free(ls); free(l1);
    }

    /* three sequences of different lengths in one batch == each alone */
    int ids[3][128], n[3], total = 0;
    for (int ci = 0; ci < 3; ci++) total += n[ci] = read_case_ids(CASES[ci], ids[ci], 128);
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_seq = 3;
    steer_ctx *c;
    CHECK_OK(steer_ctx_new(mb, &cp, &c));
    int *tok = malloc(total * sizeof(int)), *pos = malloc(total * sizeof(int)), *seq = malloc(total * sizeof(int));
    int r = 0;
    for (int i = 0; i < 128; i++) /* interleave rows of the three sequences */
        for (int s = 0; s < 3; s++)
            if (i < n[s]) { tok[r] = ids[s][i]; pos[r] = i; seq[r] = s; r++; }
    steer_batch b = {.n = total, .tokens = tok, .pos = pos, .seq = seq, .logits = NULL};
    CHECK_OK(steer_forward(c, &b));
    for (int s = 0; s < 3; s++) {
        float *alone = malloc((size_t)n[s] * V * 4), *mixed = malloc((size_t)n[s] * V * 4);
        logits_batch(mb, ids[s], n[s], 2, alone);
        int k = 0;
        for (int i = 0; i < total; i++)
            if (seq[i] == s) memcpy(mixed + (size_t)k++ * V, steer_ctx_logits(c, i), V * 4);
        char what[128];
        snprintf(what, sizeof what, "sequence %d in a 3-sequence batch vs alone", s);
        CHECK_CLOSE(what, mixed, alone, (size_t)n[s] * V, TOL_BATCH_VS_SEQ);
        free(alone); free(mixed);
    }
    free(tok); free(pos); free(seq);
    steer_ctx_free(c);

    /* config of stories260K */
    const steer_model_config *cfg = steer_model_get_config(mb);
    CHECK(cfg->n_layer == 5 && cfg->d_model == 64 && cfg->d_ff == 172 && cfg->n_head == 8 && cfg->n_kv_head == 4 &&
              cfg->n_vocab == 512 && cfg->tied_embeddings,
          "stories260K config");
    printf("stories260K parameters: %lld\n", (long long)cfg->n_params);
    /* 264,128 floats in the file = 260,032 parameters + 4,096 RoPE table entries */
    CHECK(cfg->n_params == 260032, "n_params %lld, expected 260032", (long long)cfg->n_params);
    steer_model_free(mb);
    steer_model_free(mg);
}

static void test_llama_fixture(void)
{
    steer_model *m;
    CHECK_OK(steer_model_load(STEER_TESTDATA_DIR "/llama/tiny-random-llama.f32.gguf", NULL, &m));
    const steer_model_config *cfg = steer_model_get_config(m);
    CHECK(cfg->d_model == 128 && cfg->n_layer == 4 && cfg->n_head == 4 && cfg->n_kv_head == 2 && !cfg->tied_embeddings,
          "fixture config");
    int ids[30] = {1, 385, 328, 432, 317, 284, 316, 261, 301, 415, 414, 428, 428, 309, 415,
                   426, 13, 437, 260, 336, 313, 415, 417, 436, 410, 484, 479, 378, 419, 443};
    const int V = 512, n = 30;
    float *got = malloc(n * V * 4), *seq = malloc(n * V * 4);
    logits_batch(m, ids, n, 2, got);
    logits_seq(m, ids, n, seq);
    size_t sz;
    float *ref = tu_read_file(STEER_TESTDATA_DIR "/llama/logits.llamacpp.f32.bin", &sz);
    CHECK(sz == (size_t)n * V * 4, "fixture logits size %zu", sz);
    CHECK_CLOSE("llama fixture GGUF vs llama.cpp", got, ref, (size_t)n * V, TOL_LOGITS_GOLDEN);
    free(ref);
    ref = tu_read_file(STEER_TESTDATA_DIR "/llama/logits.numpy_f64_ref.f32.bin", &sz);
    CHECK_CLOSE("llama fixture GGUF vs numpy f64 reference", got, ref, (size_t)n * V, TOL_LOGITS_GOLDEN);
    CHECK_CLOSE("llama fixture batched vs token-by-token", got, seq, (size_t)n * V, TOL_BATCH_VS_SEQ);
    free(ref); free(got); free(seq);
    steer_model_free(m);
}

/* F16 GGUF (random weights, 32000-token vocab): loads, runs, finite logits,
 * and batched == sequential. */
static void test_f16_gguf(void)
{
    steer_model *m;
    CHECK_OK(steer_model_load(STEER_TESTDATA_DIR "/llama-2-tiny-random.gguf", NULL, &m));
    const steer_model_config *cfg = steer_model_get_config(m);
    CHECK(cfg->weight_dtype == STEER_DTYPE_F16, "weight dtype %d", cfg->weight_dtype);
    int ids[8], n;
    CHECK_OK(steer_tokenize(m, "Hello world, steer!", 1, ids, 8, &n));
    const int V = cfg->n_vocab;
    float *a = malloc((size_t)n * V * 4), *b = malloc((size_t)n * V * 4);
    logits_batch(m, ids, n, 2, a);
    logits_seq(m, ids, n, b);
    int finite = 1;
    for (size_t i = 0; i < (size_t)n * V; i++) finite &= isfinite(a[i]);
    CHECK(finite, "F16 logits finite");
    CHECK_CLOSE("F16 GGUF batched vs token-by-token", a, b, (size_t)n * V, TOL_BATCH_VS_SEQ);
    free(a); free(b);
    steer_model_free(m);
}


/* ---------------------------------------------------------------- KV copy and resumed passes */

static const int RIDS[] = {1, 403, 407, 261, 378, 269, 261, 268, 414, 422, 382, 276};
#define N_RIDS ((int)(sizeof RIDS / sizeof RIDS[0]))

/* Runs tokens[0..n) of sequence seq at positions start.. in c and copies the
 * logits [n, V] into out. */
static void run_rows(steer_ctx *c, const int *tokens, int n, int start, int seq, int V, float *out)
{
    CHECK_OK(steer_forward_tokens(c, tokens, n, start, seq));
    for (int i = 0; i < n; i++) memcpy(out + (size_t)i * V, steer_ctx_logits(c, i), (size_t)V * sizeof(float));
}

/* A prompt pass that wants only the last row's logits prunes the last layer
 * to that row (steer_forward): the logits are bitwise those of the full pass,
 * the K/V cache is complete (continuing the sequence gives the same logits),
 * and a capture at a site of the last layer (which disables the pruning) still
 * sees every row. */
static void test_prune_last(void)
{
    steer_model *m;
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &m));
    const int V = steer_vocab_size(m), L = steer_model_get_config(m)->n_layer, n = N_RIDS - 1;
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = 32;
    steer_ctx *full, *last;
    CHECK_OK(steer_ctx_new(m, &cp, &full));
    CHECK_OK(steer_ctx_new(m, &cp, &last));
    int pos[N_RIDS];
    int8_t only_last[N_RIDS] = {0};
    for (int i = 0; i < N_RIDS; i++) pos[i] = i;
    only_last[n - 1] = 1;
    steer_batch bf = {.n = n, .tokens = RIDS, .pos = pos}, bl = {.n = n, .tokens = RIDS, .pos = pos, .logits = only_last};
    CHECK_OK(steer_forward(full, &bf));
    CHECK_OK(steer_forward(last, &bl));
    CHECK(steer_ctx_logits(last, n - 1) != NULL && steer_ctx_logits(last, 0) == NULL, "logit rows of the pruned pass");
    const int same = memcmp(steer_ctx_logits(full, n - 1), steer_ctx_logits(last, n - 1), (size_t)V * 4) == 0;
    printf("pruned last layer: last row's logits == the full pass's, bitwise: %d\n", same);
    CHECK(same, "the pruned pass changed the last row's logits");
    /* the cache is complete: one more token on both contexts */
    steer_batch bn = {.n = 1, .tokens = RIDS + n, .pos = pos + n};
    CHECK_OK(steer_forward(full, &bn));
    float *a = malloc((size_t)V * 4);
    memcpy(a, steer_ctx_logits(full, 0), (size_t)V * 4);
    CHECK_OK(steer_forward(last, &bn));
    CHECK(memcmp(a, steer_ctx_logits(last, 0), (size_t)V * 4) == 0, "continuing after a pruned pass differs");
    /* a capture in the last layer sees every row */
    steer_ctx_clear(last, -1);
    CHECK(steer_ctx_add_capture(last, STEER_SITE_MLP_OUT, L - 1, 0) >= 0, "capture");
    CHECK_OK(steer_forward(last, &bl));
    int rows = 0;
    CHECK(steer_ctx_captured(last, STEER_SITE_MLP_OUT, L - 1, &rows) != NULL && rows == n,
          "capture at mlp_out of the last layer saw %d of %d rows", rows, n);
    free(a);
    steer_ctx_free(full);
    steer_ctx_free(last);
    steer_model_free(m);
}

/* steer_ctx_seq_copy: continuing the copy gives bitwise the logits of
 * continuing the original; a shorter copy does not. */
static void test_seq_copy(void)
{
    steer_model *m;
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &m));
    const int V = steer_vocab_size(m), k = 7, rest = N_RIDS - k;
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = 32;
    cp.n_seq = 3;
    steer_ctx *c;
    CHECK_OK(steer_ctx_new(m, &cp, &c));
    float *l0 = malloc((size_t)N_RIDS * V * 4), *l1 = malloc((size_t)N_RIDS * V * 4), *l2 = malloc((size_t)N_RIDS * V * 4);
    int other[N_RIDS];
    for (int i = 0; i < N_RIDS; i++) other[i] = RIDS[N_RIDS - 1 - i];
    run_rows(c, other, k, 0, 1, V, l1); /* sequences 1 and 2 hold other tokens */
    run_rows(c, other, k, 0, 2, V, l2);
    run_rows(c, RIDS, k, 0, 0, V, l0);  /* the prefix in sequence 0 */
    CHECK_OK(steer_ctx_seq_copy(c, 0, 1, 0, k));
    CHECK_OK(steer_ctx_seq_copy(c, 0, 2, 0, k - 1)); /* one position short */
    run_rows(c, RIDS + k, rest, k, 0, V, l0);
    run_rows(c, RIDS + k, rest, k, 1, V, l1);
    run_rows(c, RIDS + k, rest, k, 2, V, l2);
    const int same = memcmp(l0, l1, (size_t)rest * V * 4) == 0;
    printf("seq copy of positions [0, %d): continuing the copy == continuing the original, bitwise: %d\n", k, same);
    CHECK(same, "continuing a copied sequence differs from continuing the original");
    const double moved = tu_max_abs_diff(l0, l2, (size_t)rest * V);
    printf("seq copy of [0, %d) only: logits differ by up to %.3e\n", k - 1, moved);
    CHECK(moved > 1e-3, "a copy one position short gave the same logits (%.3e)", moved);
    int rc = steer_ctx_seq_copy(c, 0, 3, 0, k);
    printf("dst 3 of 3 sequences: %s\n", steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "sequence"), "dst out of range: %d", rc);
    CHECK(steer_ctx_seq_copy(c, -1, 0, 0, k) == STEER_EARG, "src -1");
    rc = steer_ctx_seq_copy(c, 0, 1, 0, 33);
    printf("positions [0, 33) of 32: %s\n", steer_last_error());
    CHECK(rc == STEER_ECONTEXT, "p1 past n_ctx: %d", rc);
    CHECK(steer_ctx_seq_copy(c, 0, 1, 5, 4) == STEER_ECONTEXT, "p0 > p1");
    CHECK(steer_ctx_seq_copy(c, 0, 1, -1, 4) == STEER_ECONTEXT, "p0 < 0");
    CHECK(steer_ctx_seq_copy(c, 0, 1, 4, 4) == STEER_OK && steer_ctx_seq_copy(c, 1, 1, 0, 32) == STEER_OK,
          "empty range and src == dst are no-ops");
    free(l0); free(l1); free(l2);
    steer_ctx_free(c);
    steer_model_free(m);
}

/* steer_forward_resume from captured state == a full steer_forward, bitwise,
 * at every entry site and layer, with and without a hook at the entry and
 * with a pruned last layer. */
static void test_resume(void)
{
    steer_model *m;
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &m));
    const steer_model_config *cfg = steer_model_get_config(m);
    const int V = cfg->n_vocab, d = cfg->d_model, L = cfg->n_layer, n = N_RIDS;
    static const steer_site entries[] = {STEER_SITE_RESID_PRE, STEER_SITE_ATTN_OUT, STEER_SITE_RESID_MID,
                                         STEER_SITE_MLP_IN,    STEER_SITE_MLP_OUT,  STEER_SITE_RESID_POST};
    float *full = malloc((size_t)n * V * 4);
    float *x = malloc((size_t)n * d * 4), *xb = malloc((size_t)n * d * 4), v[64];
    for (int j = 0; j < d; j++) v[j] = 0.5f * cosf(0.3f * j);
    int pos[N_RIDS];
    int8_t want[N_RIDS];
    for (int i = 0; i < n; i++) pos[i] = i;
    int checked = 0, all_same = 1, pruned_same = 1;
    for (int steer = 0; steer < 2; steer++)
        for (unsigned ei = 0; ei < sizeof entries / sizeof entries[0]; ei++)
            for (int l = 0; l < L; l++) {
                const steer_site e = entries[ei];
                const steer_site xs = e == STEER_SITE_RESID_PRE || e == STEER_SITE_ATTN_OUT ? STEER_SITE_RESID_PRE
                                      : e == STEER_SITE_RESID_POST                           ? STEER_SITE_RESID_POST
                                                                                              : STEER_SITE_RESID_MID;
                const int has_xb = e == STEER_SITE_ATTN_OUT || e == STEER_SITE_MLP_IN || e == STEER_SITE_MLP_OUT;
                steer_intervention iv = {.kind = STEER_ADD, .site = e, .layer = l, .alpha = 1.0f, .data = v,
                                         .positions = {.kind = STEER_POS_FROM, .k = 3}, .seq = -1};
                /* the full pass, capturing the state at (entry, l) */
                steer_ctx *c;
                CHECK_OK(steer_ctx_new(m, NULL, &c));
                CHECK(steer_ctx_add_capture_into(c, xs, l, 0, x, n, d, NULL, 0) >= 0, "%s", steer_last_error());
                if (has_xb) CHECK(steer_ctx_add_capture_into(c, e, l, 0, xb, n, d, NULL, 0) >= 0, "%s", steer_last_error());
                if (steer) CHECK(steer_ctx_add_intervention(c, &iv) >= 0, "%s", steer_last_error());
                run_rows(c, RIDS, n, 0, 0, V, full);
                steer_ctx_free(c);
                /* resumed in a fresh context: nothing below layer l is cached */
                CHECK_OK(steer_ctx_new(m, NULL, &c));
                if (steer) CHECK(steer_ctx_add_intervention(c, &iv) >= 0, "%s", steer_last_error());
                steer_batch b = {.n = n, .tokens = NULL, .pos = pos, .seq = NULL, .logits = NULL};
                CHECK_OK(steer_forward_resume(c, &b, l, e, x, has_xb ? xb : NULL, 0));
                for (int i = 0; i < n; i++)
                    if (memcmp(steer_ctx_logits(c, i), full + (size_t)i * V, (size_t)V * 4) != 0) all_same = 0;
                /* pruned: logits of the last three rows only */
                for (int i = 0; i < n; i++) want[i] = i >= n - 3;
                b.logits = want;
                CHECK_OK(steer_forward_resume(c, &b, l, e, x, has_xb ? xb : NULL, 1));
                for (int i = 0; i < n; i++) {
                    const float *lg = steer_ctx_logits(c, i);
                    if (want[i] ? !lg || memcmp(lg, full + (size_t)i * V, (size_t)V * 4) != 0 : lg != NULL)
                        pruned_same = 0;
                }
                steer_ctx_free(c);
                checked++;
            }
    printf("resume at %d (entry, layer, hook) cases == full pass, bitwise: %d; pruned last layer: %d\n", checked,
           all_same, pruned_same);
    CHECK(all_same, "a resumed pass differs from the full pass");
    CHECK(pruned_same, "a resumed pass with a pruned last layer differs from the full pass");

    steer_ctx *c;
    CHECK_OK(steer_ctx_new(m, NULL, &c));
    steer_batch b = {.n = n, .tokens = NULL, .pos = pos, .seq = NULL, .logits = NULL};
    int rc = steer_forward_resume(c, &b, 0, STEER_SITE_MLP_GATE, x, xb, 0);
    printf("entry mlp_gate: %s\n", steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "mlp_gate"), "entry mlp_gate: %d", rc);
    rc = steer_forward_resume(c, &b, 1, STEER_SITE_ATTN_OUT, x, NULL, 0);
    printf("attn_out without xb: %s\n", steer_last_error());
    CHECK(rc == STEER_EARG, "attn_out without xb: %d", rc);
    CHECK(steer_forward_resume(c, &b, L, STEER_SITE_RESID_PRE, x, NULL, 0) == STEER_EARG, "layer L");
    CHECK(steer_forward_resume(c, &b, 0, STEER_SITE_RESID_PRE, NULL, NULL, 0) == STEER_EARG, "no x");
    steer_ctx_free(c);
    free(full); free(x); free(xb);
    steer_model_free(m);
}

/* The read-only views: weights by role, tokenizer size, architecture names. */
static void test_views(void)
{
    steer_model *m;
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &m));
    const steer_model_config *cfg = steer_model_get_config(m);
    steer_weight_view w;
    CHECK_OK(steer_model_weight(m, STEER_WEIGHT_GATE, 2, &w));
    CHECK(w.data && w.dtype == STEER_DTYPE_F32 && w.rows == cfg->d_ff && w.cols == cfg->d_model, "gate.2 view");
    CHECK_OK(steer_model_weight(m, STEER_WEIGHT_DOWN, 4, &w));
    CHECK(w.data && w.rows == cfg->d_model && w.cols == cfg->d_ff, "down.4 view");
    CHECK_OK(steer_model_weight(m, STEER_WEIGHT_FFN_NORM, 0, &w));
    CHECK(w.data && w.dtype == STEER_DTYPE_F32 && w.rows == 1 && w.cols == cfg->d_model, "ffn_norm.0 view");
    CHECK_OK(steer_model_weight(m, STEER_WEIGHT_Q_BIAS, 0, &w));
    CHECK(!w.data && w.rows == 0 && w.cols == 0, "llama has no q bias");
    steer_weight_view e, o;
    CHECK_OK(steer_model_weight(m, STEER_WEIGHT_TOK_EMBD, -1, &e));
    CHECK_OK(steer_model_weight(m, STEER_WEIGHT_OUTPUT, -1, &o));
    CHECK(e.data && e.data == o.data && e.rows == cfg->n_vocab, "tied head == embedding");
    int rc = steer_model_weight(m, STEER_WEIGHT_UP, cfg->n_layer, &w);
    printf("up.%d: %s\n", cfg->n_layer, steer_last_error());
    CHECK(rc == STEER_EARG, "layer out of range: %d", rc);
    CHECK(steer_model_weight(m, STEER_WEIGHT_COUNT, 0, &w) == STEER_EARG, "unknown weight");
    CHECK(steer_tokenizer_size(m) == 512, "tokenizer size %d", steer_tokenizer_size(m));
    CHECK(steer_arch_name(STEER_ARCH_GEMMA2) && strcmp(steer_arch_name(STEER_ARCH_GEMMA2), "gemma2") == 0 &&
              steer_arch_name(STEER_ARCH_COUNT) == NULL && strcmp(steer_arch_name(cfg->arch), cfg->arch_name) == 0,
          "arch names");
    const uint16_t h[3] = {0x3c00, 0xc000, 0x3555}; /* F16 1, -2, 0.333… */
    const uint16_t bf[2] = {0x3f80, 0xc040};         /* BF16 1, -3 */
    float f[3];
    CHECK_OK(steer_dtype_to_f32(f, h, STEER_DTYPE_F16, 3));
    CHECK(f[0] == 1.0f && f[1] == -2.0f && f[2] == 0.333251953125f, "f16 widening %g %g %.12g", f[0], f[1], f[2]);
    CHECK_OK(steer_dtype_to_f32(f, bf, STEER_DTYPE_BF16, 2));
    CHECK(f[0] == 1.0f && f[1] == -3.0f, "bf16 widening %g %g", f[0], f[1]);
    CHECK(steer_dtype_to_f32(f, bf, STEER_DTYPE_I32, 1) == STEER_EARG, "I32 is not widened");
    steer_model_free(m);
}

int main(void)
{
    test_stories();
    test_llama_fixture();
    test_f16_gguf();
    test_prune_last();
    test_seq_copy();
    test_resume();
    test_views();
    return tu_finish("test_forward");
}

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

int main(void)
{
    test_stories();
    test_llama_fixture();
    test_f16_gguf();
    return tu_finish("test_forward");
}

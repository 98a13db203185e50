/*
 * test_capture_batch.c — `steer capture --prompts FILE` (tools/capture_batch.c)
 * on stories260K with 300 prompts of different lengths, run 7 at a time:
 * every row of every (site, layer) tensor equals, bit for bit, a
 * single-prompt capture made through the library; rows past a prompt's length
 * are zero; lengths and tokens (padded with -1) are the tokenizer's;
 * --positions last is the last row and mean the mean in double of rows
 * 0..len-1 rounded to float; --data FORMAT:FILE takes a dataset's prompts.
 */
#include "test_util.h"

#include <unistd.h>

#define N 300
static const char *MODEL = STEER_MODELS_DIR "/stories260K/stories260K.bin";
static char dir[] = "/tmp/test_capture_batch.XXXXXX";
static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static const char *A[] = {"Once upon a time", "The cat", "Lily and Tom", "A little dog", "The big red ball",
                          "One day, a girl named Sue"};
static const char *B[] = {"", " sat on the mat", " went to the park to play", " was very happy",
                          " saw a bird in the tree and smiled"};
static const char *C[] = {"", ".", " and then they all went home to eat cake"};

static const steer_site SITES[] = {STEER_SITE_RESID_POST, STEER_SITE_ATTN_OUT};
static const int LAYERS[] = {0, 4};

static const steer_tensor_info *need(steer_tensors *t, const char *name, int n_dims)
{
    const steer_tensor_info *ti = steer_tensors_find(t, name);
    if (!ti || ti->n_dims != n_dims) {
        fprintf(stderr, "FAIL: tensor %s missing or not %d-D\n", name, n_dims);
        exit(1);
    }
    return ti;
}

int main(void)
{
    if (!mkdtemp(dir)) return 1;
    char *prompts[N];
    FILE *f = fopen(tmp("prompts.txt"), "w");
    for (int i = 0; i < N; i++) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s%s%s", A[i % 6], B[(i / 6) % 5], C[(i / 30) % 3]);
        prompts[i] = strdup(buf);
        fprintf(f, "%s\n%s", buf, i == 10 ? "\n" : ""); /* one empty line, skipped */
    }
    fclose(f);
    char cmd[2048];
    const char *pos[] = {"all", "last", "mean"};
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "%s.safetensors", pos[k]);
        snprintf(cmd, sizeof cmd, "%s capture -m %s --prompts %s --sites resid_post,attn_out --layers 0,-1 --batch 7 "
                 "--positions %s -q -o %s", STEER_BIN, MODEL, tmp("prompts.txt"), pos[k], tmp(name));
        CHECK(system(cmd) == 0, "%s", cmd);
    }
    steer_tensors *ta, *tl, *tm;
    CHECK_OK(steer_tensors_open(tmp("all.safetensors"), &ta));
    CHECK_OK(steer_tensors_open(tmp("last.safetensors"), &tl));
    CHECK_OK(steer_tensors_open(tmp("mean.safetensors"), &tm));
    const steer_tensor_info *len_t = need(ta, "lengths", 1), *tok_t = need(ta, "tokens", 2);
    CHECK(len_t->shape[0] == N, "lengths has %lld rows", (long long)len_t->shape[0]);
    const int T_max = (int)tok_t->shape[1];
    const int32_t *lens = len_t->data, *toks = tok_t->data;
    printf("%d prompts, T_max %d\n", N, T_max);

    steer_model *m;
    CHECK_OK(steer_model_load(MODEL, NULL, &m));
    steer_ctx *c;
    CHECK_OK(steer_ctx_new(m, NULL, &c));
    int bad_rows = 0, bad_pad = 0, bad_last = 0, bad_mean = 0, bad_tok = 0, t_max_seen = 0;
    for (int i = 0; i < N; i++) {
        int *tk, n;
        CHECK_OK(steer_tokenize_alloc(m, prompts[i], 1, &tk, &n));
        if (n > t_max_seen) t_max_seen = n;
        if (lens[i] != n) bad_tok++;
        for (int t = 0; t < T_max; t++)
            if (toks[(size_t)i * T_max + t] != (t < n ? tk[t] : -1)) bad_tok++;
        steer_ctx_clear_hooks(c);
        steer_ctx_clear(c, -1);
        for (int s = 0; s < 2; s++)
            for (int l = 0; l < 2; l++) CHECK(steer_ctx_add_capture(c, SITES[s], LAYERS[l], 0) >= 0, "capture");
        CHECK_OK(steer_forward_tokens(c, tk, n, 0, 0));
        for (int s = 0; s < 2; s++)
            for (int l = 0; l < 2; l++) {
                char name[48];
                snprintf(name, sizeof name, "%s.%d", steer_site_name(SITES[s]), LAYERS[l]);
                const int w = steer_model_site_width(m, SITES[s]);
                int rows;
                const float *h = steer_ctx_captured(c, SITES[s], LAYERS[l], &rows);
                const float *all = (const float *)need(ta, name, 3)->data + (size_t)i * T_max * w;
                const float *last = (const float *)need(tl, name, 2)->data + (size_t)i * w;
                const float *mean = (const float *)need(tm, name, 2)->data + (size_t)i * w;
                if (memcmp(all, h, (size_t)n * w * sizeof(float)) != 0) bad_rows++;
                for (size_t j = (size_t)n * w; j < (size_t)T_max * w; j++)
                    if (all[j] != 0.0f) {
                        bad_pad++;
                        break;
                    }
                if (memcmp(last, h + (size_t)(n - 1) * w, (size_t)w * sizeof(float)) != 0) bad_last++;
                for (int j = 0; j < w; j++) {
                    double acc = 0;
                    for (int t = 0; t < n; t++) acc += h[(size_t)t * w + j];
                    if (mean[j] != (float)(acc / n)) {
                        bad_mean++;
                        break;
                    }
                }
            }
        free(tk);
    }
    CHECK(T_max == t_max_seen, "T_max %d, longest prompt %d", T_max, t_max_seen);
    CHECK(bad_tok == 0, "%d token/length mismatches", bad_tok);
    CHECK(bad_rows == 0, "%d of %d (prompt, site, layer) blocks differ from single captures", bad_rows, 4 * N);
    CHECK(bad_pad == 0, "%d padded blocks are not zero", bad_pad);
    CHECK(bad_last == 0, "%d last rows differ", bad_last);
    CHECK(bad_mean == 0, "%d means differ", bad_mean);
    printf("all/last/mean: %d (prompt, site, layer) blocks equal to single-prompt captures\n", 4 * N);

    /* --data jsonl: the prompts of a dataset. */
    f = fopen(tmp("d.jsonl"), "w");
    for (int i = 0; i < 5; i++) fprintf(f, "{\"prompt\": \"%s\", \"completion\": \" x\"}\n", prompts[i]);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s capture -m %s --data jsonl:%s --layers -1 --positions last -q -o %s", STEER_BIN,
             MODEL, tmp("d.jsonl"), tmp("d.safetensors"));
    CHECK(system(cmd) == 0, "%s", cmd);
    steer_tensors *td;
    CHECK_OK(steer_tensors_open(tmp("d.safetensors"), &td));
    const steer_tensor_info *dl = need(td, "resid_post.4", 2);
    CHECK(dl->shape[0] == 5 && dl->shape[1] == 64, "--data: [%lld, %lld]", (long long)dl->shape[0],
          (long long)dl->shape[1]);
    CHECK(memcmp(dl->data, need(tl, "resid_post.4", 2)->data, 5 * 64 * sizeof(float)) == 0,
          "--data rows differ from --prompts rows");
    steer_tensors_free(td);

    steer_tensors_free(ta);
    steer_tensors_free(tl);
    steer_tensors_free(tm);
    steer_ctx_free(c);
    steer_model_free(m);
    for (int i = 0; i < N; i++) free(prompts[i]);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return 1;
    return tu_finish("test_capture_batch");
}

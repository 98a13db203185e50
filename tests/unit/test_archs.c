/*
 * test_archs.c — every fixture architecture (llama, gemma, gemma2, qwen2)
 * from its Hugging Face directory and from llama.cpp's GGUF of it: logits at
 * every position against llama.cpp (exact-GELU build for the Gemmas) and a
 * float64 reference; a sharded copy; and bad HF directories (missing field,
 * unknown architecture, wrong shape, missing shard).
 */
#include "test_util.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *name, *gguf, *golden;
    steer_arch arch;
    int n_layer, d, n_head, n_kv, head_dim, d_ff, tied;
} fixture;

static const fixture FIX[] = {
    {"llama", "tiny-random-llama.f32.gguf", "logits.llamacpp.f32.bin", STEER_ARCH_LLAMA, 4, 128, 4, 2, 32, 256, 0},
    {"gemma", "tiny-random-gemma.f32.gguf", "logits.llamacpp_exactgelu.f32.bin", STEER_ARCH_GEMMA, 2, 64, 4, 2, 32,
     256, 1},
    {"gemma2", "tiny-random-gemma2.f32.gguf", "logits.llamacpp_exactgelu.f32.bin", STEER_ARCH_GEMMA2, 26, 64, 4, 2,
     16, 128, 1},
    {"qwen2", "tiny-random-qwen2.f32.gguf", "logits.llamacpp.f32.bin", STEER_ARCH_QWEN2, 2, 128, 4, 2, 32, 256, 1},
};

static int IDS[64], N_IDS;
#define V 512

static void read_ids(const char *fx)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/token_ids.json", STEER_TESTDATA_DIR, fx);
    char *txt = tu_read_file(path, NULL);
    cJSON *j = cJSON_Parse(txt);
    N_IDS = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "token_ids")) IDS[N_IDS++] = it->valueint;
    cJSON_Delete(j);
    free(txt);
}

/* Loads path and returns logits [N_IDS, V] (caller frees), or NULL with the
 * error left in steer_last_error(). */
static float *logits_of(const char *path, steer_model **keep)
{
    steer_model *m;
    if (steer_model_load(path, NULL, &m) != STEER_OK) return NULL;
    steer_ctx *c;
    CHECK_OK(steer_ctx_new(m, NULL, &c));
    CHECK_OK(steer_forward_tokens(c, IDS, N_IDS, 0, 0));
    float *out = malloc((size_t)N_IDS * V * sizeof(float));
    for (int i = 0; i < N_IDS; i++) memcpy(out + (size_t)i * V, steer_ctx_logits(c, i), V * sizeof(float));
    steer_ctx_free(c);
    if (keep) *keep = m;
    else steer_model_free(m);
    return out;
}

static void test_fixture(const fixture *f)
{
    char hf[1024], gg[1024], ref[1024], f64[1024], what[256];
    read_ids(f->name);
    snprintf(hf, sizeof hf, "%s/%s/hf", STEER_TESTDATA_DIR, f->name);
    snprintf(gg, sizeof gg, "%s/%s/%s", STEER_TESTDATA_DIR, f->name, f->gguf);
    snprintf(ref, sizeof ref, "%s/%s/%s", STEER_TESTDATA_DIR, f->name, f->golden);
    snprintf(f64, sizeof f64, "%s/%s/logits.numpy_f64_ref.f32.bin", STEER_TESTDATA_DIR, f->name);
    steer_model *m;
    float *a = logits_of(hf, &m), *b = logits_of(gg, NULL);
    CHECK(a && b, "%s: load failed: %s", f->name, steer_last_error());
    if (!a || !b) return;
    const steer_model_config *c = steer_model_get_config(m);
    CHECK(c->arch == f->arch && c->n_layer == f->n_layer && c->d_model == f->d && c->n_head == f->n_head &&
              c->n_kv_head == f->n_kv && c->head_dim == f->head_dim && c->d_ff == f->d_ff &&
              c->tied_embeddings == f->tied,
          "%s config: arch %d layers %d d %d heads %d/%d hd %d ff %d tied %d", f->name, c->arch, c->n_layer,
          c->d_model, c->n_head, c->n_kv_head, c->head_dim, c->d_ff, c->tied_embeddings);
    size_t sz;
    float *g = tu_read_file(ref, &sz), *r = tu_read_file(f64, NULL);
    CHECK(sz == (size_t)N_IDS * V * 4, "%s golden size", f->name);
    snprintf(what, sizeof what, "%s hf/ vs llama.cpp (%s)", f->name, f->golden);
    CHECK_CLOSE(what, a, g, (size_t)N_IDS * V, TOL_LOGITS_GOLDEN);
    snprintf(what, sizeof what, "%s .gguf vs llama.cpp (%s)", f->name, f->golden);
    CHECK_CLOSE(what, b, g, (size_t)N_IDS * V, TOL_LOGITS_GOLDEN);
    snprintf(what, sizeof what, "%s hf/ vs float64 reference", f->name);
    CHECK_CLOSE(what, a, r, (size_t)N_IDS * V, TOL_LOGITS_GOLDEN);
    snprintf(what, sizeof what, "%s hf/ vs .gguf", f->name);
    CHECK_CLOSE(what, a, b, (size_t)N_IDS * V, TOL_LOGITS_FORMATS_CONVERTED);
    free(a); free(b); free(g); free(r);
    steer_model_free(m);
}

/* Hook invariants on every family (sandwich norms and soft-capping
 * included): zero add at every site is bitwise a no-op; patching every site
 * with its own capture is bitwise a no-op; the last resid_post through the
 * final norm, head and soft-cap reproduces the logits. */
static void test_hooks_on(const char *path, const char *name)
{
    steer_model *m;
    float *base = logits_of(path, &m);
    CHECK(base != NULL, "%s: %s", name, steer_last_error());
    if (!base) return;
    const steer_model_config *cfg = steer_model_get_config(m);
    steer_ctx *c, *p;
    CHECK_OK(steer_ctx_new(m, NULL, &c));
    CHECK_OK(steer_ctx_new(m, NULL, &p));
    static float zero[4096];
    for (int st = 0; st < STEER_SITE_COUNT; st++)
        for (int l = 0; l < cfg->n_layer; l++) {
            CHECK(steer_ctx_add_capture(c, (steer_site)st, l, 0) >= 0, "capture");
            steer_intervention iv = {.kind = STEER_ADD, .site = (steer_site)st, .layer = l, .alpha = 1.0f,
                                     .data = zero, .positions = {.kind = STEER_POS_ALL}, .seq = -1};
            CHECK(steer_ctx_add_intervention(c, &iv) >= 0, "%s", steer_last_error());
        }
    CHECK_OK(steer_forward_tokens(c, IDS, N_IDS, 0, 0));
    int same = 1;
    for (int i = 0; i < N_IDS; i++) same &= memcmp(steer_ctx_logits(c, i), base + (size_t)i * V, V * 4) == 0;
    CHECK(same, "%s: zero add or capture changed the logits", name);
    for (int st = 0; st < STEER_SITE_COUNT; st++)
        for (int l = 0; l < cfg->n_layer; l++) {
            int rows;
            const float *cap = steer_ctx_captured(c, (steer_site)st, l, &rows);
            steer_intervention iv = {.kind = STEER_PATCH, .site = (steer_site)st, .layer = l, .alpha = 1.0f,
                                     .data = cap, .n_rows = rows, .positions = {.kind = STEER_POS_ALL}, .seq = -1};
            CHECK(steer_ctx_add_intervention(p, &iv) >= 0, "%s", steer_last_error());
        }
    CHECK_OK(steer_forward_tokens(p, IDS, N_IDS, 0, 0));
    for (int i = 0; i < N_IDS; i++) same &= memcmp(steer_ctx_logits(p, i), base + (size_t)i * V, V * 4) == 0;
    CHECK(same, "%s: self-patch changed the logits", name);
    float *un = malloc((size_t)N_IDS * V * 4);
    CHECK_OK(steer_model_unembed(m, steer_ctx_captured(c, STEER_SITE_RESID_POST, cfg->n_layer - 1, NULL), N_IDS, un));
    char what[128];
    snprintf(what, sizeof what, "%s: unembed(last resid_post) vs logits", name);
    CHECK_CLOSE(what, un, base, (size_t)N_IDS * V, TOL_HOOK_EXACT);
    printf("%s: zero add and self-patch at all %d sites x %d layers leave logits bitwise equal: %s\n", name,
           STEER_SITE_COUNT, cfg->n_layer, same ? "yes" : "NO");
    free(un); free(base);
    steer_ctx_free(c); steer_ctx_free(p);
    steer_model_free(m);
}

/* ---------------------------------------------------------------- bad HF dirs */

static char TMP[256];

static void copy_file(const char *from, const char *to)
{
    size_t n;
    void *d = tu_read_file(from, &n);
    FILE *f = fopen(to, "wb");
    fwrite(d, 1, n, f);
    fclose(f);
    free(d);
}

/* A copy of the llama fixture's hf/ in TMP/name with config edited by fn. */
static void make_dir(const char *name, void (*edit)(cJSON *cfg), int copy_weights, char *out)
{
    snprintf(out, 512, "%s/%s", TMP, name);
    mkdir(out, 0755);
    char from[1024], to[1024];
    const char *files[] = {"tokenizer.model", "tokenizer_config.json", "model.safetensors"};
    for (int i = 0; i < (copy_weights ? 3 : 2); i++) {
        snprintf(from, sizeof from, "%s/llama/hf/%s", STEER_TESTDATA_DIR, files[i]);
        snprintf(to, sizeof to, "%s/%s", out, files[i]);
        copy_file(from, to);
    }
    snprintf(from, sizeof from, "%s/llama/hf/config.json", STEER_TESTDATA_DIR);
    char *txt = tu_read_file(from, NULL);
    cJSON *cfg = cJSON_Parse(txt);
    free(txt);
    if (edit) edit(cfg);
    char *s = cJSON_Print(cfg);
    snprintf(to, sizeof to, "%s/config.json", out);
    FILE *f = fopen(to, "w");
    fputs(s, f);
    fclose(f);
    free(s);
    cJSON_Delete(cfg);
}

static void drop_hidden(cJSON *c) { cJSON_DeleteItemFromObject(c, "hidden_size"); }
static void unknown_arch(cJSON *c)
{
    cJSON_ReplaceItemInObject(c, "architectures", cJSON_CreateStringArray((const char *[]){"GPTNeoXForCausalLM"}, 1));
    cJSON_ReplaceItemInObject(c, "model_type", cJSON_CreateString("gpt_neox"));
}

static void expect_fail(const char *dir, int code, const char *needle)
{
    steer_model *m = NULL;
    int rc = steer_model_load(dir, NULL, &m);
    printf("bad input %-28s -> %d: %s\n", strrchr(dir, '/') + 1, rc, steer_last_error());
    CHECK(rc == code, "%s: expected status %d, got %d", dir, code, rc);
    CHECK(strstr(steer_last_error(), needle) != NULL, "%s: message lacks '%s'", dir, needle);
    CHECK(m == NULL, "model returned on failure");
    steer_model_free(m);
}

/* Splits the llama fixture into two shards with an index; checks logits equal
 * the single file; then removes a shard. */
static void test_shards_and_shapes(void)
{
    char dir[512], path[1024];
    read_ids("llama");
    make_dir("sharded", NULL, 0, dir);
    snprintf(path, sizeof path, "%s/llama/hf/model.safetensors", STEER_TESTDATA_DIR);
    steer_tensors *t;
    CHECK_OK(steer_tensors_open(path, &t));
    steer_tensors_writer *w[2];
    CHECK_OK(steer_tensors_writer_new(&w[0]));
    CHECK_OK(steer_tensors_writer_new(&w[1]));
    cJSON *idx = cJSON_CreateObject(), *map = cJSON_AddObjectToObject(idx, "weight_map");
    const char *shard[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    for (int i = 0; i < steer_tensors_count(t); i++) {
        const steer_tensor_info *ti = steer_tensors_at(t, i);
        int k = strstr(ti->name, "layers.0.") || strstr(ti->name, "layers.1.") || strstr(ti->name, "embed") ? 0 : 1;
        CHECK_OK(steer_tensors_writer_add(w[k], ti->name, ti->dtype, ti->n_dims, ti->shape, ti->data));
        cJSON_AddStringToObject(map, ti->name, shard[k]);
    }
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, shard[k]);
        CHECK_OK(steer_tensors_writer_write(w[k], path));
        steer_tensors_writer_free(w[k]);
    }
    char *js = cJSON_Print(idx);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *f = fopen(path, "w");
    fputs(js, f);
    fclose(f);
    free(js);
    cJSON_Delete(idx);

    char one[1024];
    snprintf(one, sizeof one, "%s/llama/hf", STEER_TESTDATA_DIR);
    float *a = logits_of(one, NULL), *b = logits_of(dir, NULL);
    CHECK(a && b, "sharded load: %s", steer_last_error());
    if (a && b) CHECK(memcmp(a, b, (size_t)N_IDS * V * 4) == 0, "sharded logits differ from the single file");
    printf("sharded (2 files + index) vs single model.safetensors: logits bitwise equal\n");
    free(a); free(b);
    snprintf(path, sizeof path, "%s/%s", dir, shard[1]);
    unlink(path);
    expect_fail(dir, STEER_EIO, shard[1]);

    /* a tensor with the wrong shape: q_proj of layer 1 written as [64, 128] */
    make_dir("wrong_shape", NULL, 0, dir);
    steer_tensors_writer *ws;
    CHECK_OK(steer_tensors_writer_new(&ws));
    for (int i = 0; i < steer_tensors_count(t); i++) {
        const steer_tensor_info *ti = steer_tensors_at(t, i);
        int64_t shape[2] = {ti->shape[0], ti->shape[1]};
        if (strcmp(ti->name, "model.layers.1.self_attn.q_proj.weight") == 0) { shape[0] = 64; shape[1] = 256; }
        CHECK_OK(steer_tensors_writer_add(ws, ti->name, ti->dtype, ti->n_dims, shape, ti->data));
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK_OK(steer_tensors_writer_write(ws, path));
    steer_tensors_writer_free(ws);
    expect_fail(dir, STEER_EFORMAT, "model.layers.1.self_attn.q_proj.weight");
    steer_tensors_free(t);

    make_dir("missing_field", drop_hidden, 1, dir);
    expect_fail(dir, STEER_EFORMAT, "hidden_size");
    make_dir("unknown_arch", unknown_arch, 1, dir);
    expect_fail(dir, STEER_EUNSUPPORTED, "Gemma2ForCausalLM"); /* lists the supported ones */
    make_dir("no_weights", NULL, 0, dir);
    expect_fail(dir, STEER_EIO, "model.safetensors");
}

int main(void)
{
    snprintf(TMP, sizeof TMP, "/tmp/steer_test_archs_%d", (int)getpid());
    mkdir(TMP, 0755);
    for (size_t i = 0; i < sizeof FIX / sizeof FIX[0]; i++) {
        test_fixture(&FIX[i]);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/%s", STEER_TESTDATA_DIR, FIX[i].name, FIX[i].gguf);
        test_hooks_on(path, FIX[i].name);
    }
    test_shards_and_shapes();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", TMP);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", TMP);
    return tu_finish("test_archs");
}

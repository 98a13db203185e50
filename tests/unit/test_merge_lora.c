/*
 * test_merge_lora.c — steer_merge_lora (src/train_merge.c) on stories260K.
 *
 * 1. A LoRA trained for a few updates (lr 1e-2, so that B is far from 0) is
 *    merged into the base and written as a Hugging Face directory, GGUF and a
 *    llama2.c checkpoint (q/k rows cross between the adjacent and the half
 *    RoPE order on the way); each merged model, loaded and run by the
 *    inference forward (steer_eval), must give the logits of base + LoRA as
 *    the training graph computes them. Sharpness: base alone differs from
 *    base + LoRA by orders of magnitude more than the tolerance, and so does a
 *    merge with the wrong scale (alpha/r dropped).
 * 2. The same in the graph: trm_merge_lora_f32 leaves the forward unchanged.
 * 3. F16 output: the matrices are F16 and the logits agree to F16 rounding.
 * 4. Joint: merged model + the saved steering adapter = base + joint.
 * 4b. Random Hugging Face bases: gemma2 (half RoPE order, norms stored as w,
 *    sandwich norms, soft-caps) and a BF16 qwen2 (biases): merged to HF and
 *    GGUF in F32 vs base + LoRA; the default output keeps the BF16.
 * 5. Errors, one line each, nothing written: missing adapter, an adapter of
 *    another model, a tensor of the wrong shape, a checkpoint without LoRA,
 *    joint without a file for its adapter, a missing output directory.
 */
#include "test_util.h"
#include "train_internal.h"
#include "train_model.h"

#include <dirent.h>
#include <omp.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define NB 2
#define NT 24

static steer_model *m;
static steer_dataset *dtrain;
static char TMP[256];
static int tokens[NB * NT], lengths[NB] = {NT, 17};

static int exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Entries of TMP/dir other than the expected ones (leftovers of a failure). */
static int n_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d) closedir(d);
    return n;
}

/* max |a − b| / max |b| over n values. */
static double nrel(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        num = fmax(num, e != e ? INFINITY : e);
        den = fmax(den, fabs((double)b[i]));
    }
    return num / den;
}

/* Trains `method` for a few updates into TMP/<name>; returns the adapter path. */
static void train(const char *method, const char *name, char *adapter, size_t n)
{
    steer_train_params p = steer_train_default_params();
    p.method = method;
    p.steps = 4;
    p.batch = 4;
    p.lr = 1e-2;
    p.warmup = 0;
    p.seed = 5;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/%.100s", TMP, name);
    p.out_dir = dir;
    steer_train_result r;
    CHECK_OK(steer_train(m, dtrain, NULL, &p, &r));
    snprintf(adapter, n, "%s/adapter.safetensors", dir);
}

/* The training graph of checkpoint `adapter` (NULL: the plain model) on
 * model mm, with the checkpoint loaded. */
static trm_f32 *graph(const steer_model *mm, const char *adapter)
{
    steer_train_params p = steer_train_default_params();
    p.method = "vector";
    uint8_t *mask = NULL;
    steer_tensors *st = NULL;
    if (adapter) {
        CHECK_OK(steer_tensors_open(adapter, &st));
        CHECK_OK(tr_params_from_checkpoint(st, adapter, mm, &p, &mask));
    }
    tr_spec_buf sb = {0};
    CHECK_OK(tr_build_spec(mm, &p, NB, NT, &sb));
    if (!adapter) sb.spec.steer = TRM_STEER_NONE;
    trm_f32 *t = NULL;
    CHECK_OK(trm_new_f32(mm, &sb.spec, &t));
    if (st) CHECK_OK(tr_load_checkpoint(t, st, adapter));
    free(sb.layers);
    free(mask);
    steer_tensors_free(st);
    return t;
}

/* Test tokens: BOS then fixed pseudo-random ids in [3, V). */
static void fill_tokens(int V)
{
    uint64_t s = 12345;
    for (int i = 0; i < NB * NT; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        tokens[i] = i % NT == 0 ? 1 : 3 + (int)((s >> 33) % (uint64_t)(V - 3));
    }
}

/* Logits [NB·NT, V] of the graph on the test batch (padding rows zeroed). */
static void graph_logits_v(trm_f32 *t, int V, float *out)
{
    trm_batch b = {.B = NB, .T = NT, .tokens = tokens, .lengths = lengths};
    CHECK_OK(trm_forward_f32(t, &b));
    memcpy(out, trm_logits_f32(t), (size_t)NB * NT * V * sizeof(float));
    for (int s = 0; s < NB; s++)
        memset(out + ((size_t)s * NT + lengths[s]) * V, 0, (size_t)(NT - lengths[s]) * V * sizeof(float));
}

static void graph_logits(trm_f32 *t, float *out) { graph_logits_v(t, m->cfg.n_vocab, out); }

/* The same logits from the inference forward of the model at path. */
static void inference_logits(const char *path, float *out, steer_dtype *wq_dtype)
{
    steer_model *mm = NULL;
    CHECK_OK(steer_model_load(path, NULL, &mm));
    if (wq_dtype) *wq_dtype = mm->layers[0].wq.dtype;
    steer_ctx *c = NULL;
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = NT;
    CHECK_OK(steer_ctx_new(mm, &cp, &c));
    const int V = mm->cfg.n_vocab;
    memset(out, 0, (size_t)NB * NT * V * sizeof(float));
    for (int s = 0; s < NB; s++) {
        steer_ctx_clear(c, 0);
        CHECK_OK(steer_forward_tokens(c, tokens + s * NT, lengths[s], 0, 0));
        for (int i = 0; i < lengths[s]; i++)
            memcpy(out + ((size_t)s * NT + i) * V, steer_ctx_logits(c, i), (size_t)V * sizeof(float));
    }
    steer_ctx_free(c);
    steer_model_free(mm);
}

static void test_lora(void)
{
    printf("\n== LoRA merged into stories260K: merged model vs base + LoRA ==\n");
    char adapter[512];
    train("lora", "lora", adapter, sizeof adapter);
    const size_t NV = (size_t)NB * NT * m->cfg.n_vocab;
    float *want = malloc(NV * sizeof(float)), *got = malloc(NV * sizeof(float)), *base = malloc(NV * sizeof(float));

    trm_f32 *t = graph(m, adapter);
    double bmax = 0;
    for (int i = 0; i < trm_n_tensors_f32(t); i++) {
        const trm_param *tp = trm_tensor_f32(t, i);
        if (tp->kind != TRM_P_LORA_B) continue;
        for (size_t k = 0; k < tp->numel; k++) bmax = fmax(bmax, fabs(trm_params_f32(t)[tp->offset + k]));
    }
    printf("trained LoRA: max |B| = %.3g\n", bmax);
    CHECK(bmax > 1e-3, "B is (near) zero after training: %.3g", bmax);
    graph_logits(t, want);
    /* the graph itself: merge, then the same forward with B = 0 */
    const int nm = trm_merge_lora_f32(t);
    graph_logits(t, got);
    const double e_graph = nrel(got, want, NV);
    printf("trm_merge_lora_f32: %d projections; logits after vs before: %.3e (tol %.0e)\n", nm, e_graph,
           TOL_MERGE_GRAPH);
    CHECK(nm == 7 * m->cfg.n_layer, "merged %d projections", nm);
    CHECK(e_graph <= TOL_MERGE_GRAPH, "graph merge changes the logits by %.3e", e_graph);
    trm_free_f32(t);

    inference_logits(STEER_MODELS_DIR "/stories260K/stories260K.bin", base, NULL);
    const double e_base = nrel(base, want, NV);
    printf("base alone vs base + LoRA: %.3e (must exceed the tolerance by far)\n", e_base);
    CHECK(e_base > 100 * TOL_MERGE_LOGITS, "LoRA changes the logits by only %.3e", e_base);

    static const struct { const char *name, *format; } outs[] = {
        {"merged_hf", NULL}, {"merged.gguf", NULL}, {"l2c/merged.bin", NULL}};
    char path[600];
    snprintf(path, sizeof path, "%s/l2c", TMP);
    mkdir(path, 0755);
    for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) {
        snprintf(path, sizeof path, "%s/%s", TMP, outs[k].name);
        steer_merge_params mp = steer_merge_default_params();
        CHECK_OK(steer_merge_lora(STEER_MODELS_DIR "/stories260K/stories260K.bin", adapter, path, &mp));
        steer_dtype dt;
        inference_logits(path, got, &dt);
        const double e = nrel(got, want, NV);
        printf("%-16s %s: merged (steer_forward) vs base + LoRA (graph): %.3e (tol %.0e)\n", outs[k].name,
               steer_dtype_name(dt), e, TOL_MERGE_LOGITS);
        CHECK(dt == STEER_DTYPE_F32, "%s: matrices are %s", outs[k].name, steer_dtype_name(dt));
        CHECK(e <= TOL_MERGE_LOGITS, "%s: merged logits differ by %.3e", outs[k].name, e);
    }

    /* F16 output */
    snprintf(path, sizeof path, "%s/merged-f16.gguf", TMP);
    steer_merge_params mp = steer_merge_default_params();
    mp.dtype = STEER_DTYPE_F16;
    CHECK_OK(steer_merge_lora(STEER_MODELS_DIR "/stories260K/stories260K.bin", adapter, path, &mp));
    steer_dtype dt;
    inference_logits(path, got, &dt);
    const double e16 = nrel(got, want, NV);
    printf("merged.gguf F16 vs base + LoRA: %.3e (tol %.0e)\n", e16, TOL_MERGE_LOGITS_F16);
    CHECK(dt == STEER_DTYPE_F16, "f16 output holds %s", steer_dtype_name(dt));
    CHECK(e16 <= TOL_MERGE_LOGITS_F16, "F16 merged logits differ by %.3e", e16);

    /* sharpness: merging without the alpha/r scale (here 8/8 = 1, so scale
     * the checkpoint's B by 2 instead: the merge of a wrong LoRA) */
    {
        steer_tensors *st = NULL;
        CHECK_OK(steer_tensors_open(adapter, &st));
        steer_tensors_writer *w = NULL;
        CHECK_OK(steer_tensors_writer_new(&w));
        float *bufs[64] = {0};
        int nb = 0;
        for (int i = 0; i < steer_tensors_count(st); i++) {
            const steer_tensor_info *ti = steer_tensors_at(st, i);
            const float *src = ti->data;
            if (strstr(ti->name, "lora_B") && nb < 64) {
                size_t n = (size_t)(ti->shape[0] * ti->shape[1]);
                bufs[nb] = malloc(n * sizeof(float));
                for (size_t j = 0; j < n; j++) bufs[nb][j] = 2 * src[j];
                src = bufs[nb++];
            }
            CHECK_OK(steer_tensors_writer_add(w, ti->name, ti->dtype, ti->n_dims, ti->shape, src));
        }
        static const char *keys[] = {"format_version", "method", "site", "layers", "rank", "lora_rank", "lora_alpha",
                                     "lora_targets", "act", "alpha", "model.arch", "model.n_layer", "model.d_model",
                                     "model.n_vocab"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (steer_tensors_meta(st, keys[k])) CHECK_OK(steer_tensors_writer_meta(w, keys[k], steer_tensors_meta(st, keys[k])));
        char bad[600];
        snprintf(bad, sizeof bad, "%s/lora_x2.safetensors", TMP);
        CHECK_OK(steer_tensors_writer_write(w, bad));
        steer_tensors_writer_free(w);
        for (int i = 0; i < nb; i++) free(bufs[i]);
        steer_tensors_free(st);
        snprintf(path, sizeof path, "%s/merged_x2.gguf", TMP);
        CHECK_OK(steer_merge_lora(STEER_MODELS_DIR "/stories260K/stories260K.bin", bad, path, &mp));
        inference_logits(path, got, NULL);
        const double ex = nrel(got, want, NV);
        printf("a merge of 2·B vs base + LoRA: %.3e (must fail the tolerance)\n", ex);
        CHECK(ex > 100 * TOL_MERGE_LOGITS, "a wrong merge passes: %.3e", ex);
    }
    free(want);
    free(got);
    free(base);
}

static void test_joint(void)
{
    printf("\n== joint: merged model + steering adapter vs base + joint ==\n");
    char adapter[512], out[600], sout[600];
    train("joint", "joint", adapter, sizeof adapter);
    const size_t NV = (size_t)NB * NT * m->cfg.n_vocab;
    float *want = malloc(NV * sizeof(float)), *got = malloc(NV * sizeof(float));
    trm_f32 *t = graph(m, adapter);
    graph_logits(t, want);
    trm_free_f32(t);
    snprintf(out, sizeof out, "%s/joint_merged.gguf", TMP);
    snprintf(sout, sizeof sout, "%s/joint_steer.safetensors", TMP);
    steer_merge_params mp = steer_merge_default_params();
    CHECK(steer_merge_lora(STEER_MODELS_DIR "/stories260K/stories260K.bin", adapter, out, &mp) == STEER_EARG &&
              strstr(steer_last_error(), "steering adapter") && !exists(out),
          "joint without steer_out: %s", steer_last_error());
    printf("joint without a file for the adapter: %s\n", steer_last_error());
    mp.steer_out = sout;
    CHECK_OK(steer_merge_lora(STEER_MODELS_DIR "/stories260K/stories260K.bin", adapter, out, &mp));
    steer_model *mm = NULL;
    CHECK_OK(steer_model_load(out, NULL, &mm));
    t = graph(mm, sout);
    graph_logits(t, got);
    const double e = nrel(got, want, NV);
    printf("merged + adapter (graph) vs base + joint (graph): %.3e (tol %.0e)\n", e, TOL_MERGE_LOGITS);
    CHECK(e <= TOL_MERGE_LOGITS, "joint merge: %.3e", e);
    /* without the adapter the merged model is not the joint model */
    trm_free_f32(t);
    t = graph(mm, NULL);
    graph_logits(t, got);
    const double e0 = nrel(got, want, NV);
    printf("merged alone vs base + joint: %.3e (the adapter matters)\n", e0);
    CHECK(e0 > 100 * TOL_MERGE_LOGITS, "adapter has no effect: %.3e", e0);
    trm_free_f32(t);
    steer_model_free(mm);
    free(want);
    free(got);
}

/* Hugging Face bases of other architectures: half RoPE order, Gemma norms
 * stored as w, sandwich norms and soft-caps (gemma2), q/k/v biases and a
 * BF16 base (qwen2). A LoRA with random B (so every projection moves) is
 * written as a checkpoint, merged to HF and GGUF in F32 and compared with the
 * graph; the BF16 base's default output keeps BF16. */
static void test_arch(steer_arch arch, const char *name, steer_dtype dt)
{
    printf("\n== %s (%s base): merged vs base + LoRA ==\n", name, steer_dtype_name(dt));
    char dir[400], adapter[500], out[500];
    snprintf(dir, sizeof dir, "%s/%s_base", TMP, name);
    steer_make_model_params mp = steer_make_model_default_params(arch);
    mp.d_model = 32, mp.d_ff = 64, mp.n_head = 4, mp.n_kv_head = 2, mp.n_layer = 2, mp.n_vocab = 300, mp.n_ctx = 64;
    mp.dtype = dt, mp.seed = 21;
    CHECK_OK(steer_make_model(&mp, dir));
    steer_model *mm = NULL;
    CHECK_OK(steer_model_load(dir, NULL, &mm));
    const int V = mm->cfg.n_vocab;
    fill_tokens(V);
    steer_train_params p = steer_train_default_params();
    p.method = "lora";
    p.lora_alpha = 16; /* scale 2 */
    tr_spec_buf sb = {0};
    CHECK_OK(tr_build_spec(mm, &p, NB, NT, &sb));
    trm_f32 *t = NULL;
    CHECK_OK(trm_new_f32(mm, &sb.spec, &t));
    uint64_t r = 99;
    for (int i = 0; i < trm_n_tensors_f32(t); i++) {
        const trm_param *tp = trm_tensor_f32(t, i);
        if (tp->kind != TRM_P_LORA_B) continue;
        for (size_t k = 0; k < tp->numel; k++) {
            r = r * 6364136223846793005ULL + 1442695040888963407ULL;
            trm_params_f32(t)[tp->offset + k] = (float)(((double)(r >> 11) / 9007199254740992.0 * 2 - 1) * 0.05);
        }
    }
    snprintf(adapter, sizeof adapter, "%s/%s_lora.safetensors", TMP, name);
    CHECK_OK(tr_save_adapter(t, mm, &p, &sb.spec, adapter, -1));
    const size_t NV = (size_t)NB * NT * V;
    float *want = malloc(NV * sizeof(float)), *got = malloc(NV * sizeof(float));
    graph_logits_v(t, V, want);
    trm_free_f32(t);
    free(sb.layers);
    inference_logits(dir, got, NULL);
    const double e_base = nrel(got, want, NV);
    printf("base alone vs base + LoRA: %.3e\n", e_base);
    CHECK(e_base > 100 * TOL_MERGE_LOGITS, "%s: LoRA changes the logits by only %.3e", name, e_base);
    static const char *outs[] = {"hf", "m.gguf"};
    for (int k = 0; k < 2; k++) {
        snprintf(out, sizeof out, "%s/%s_merged_%s", TMP, name, outs[k]);
        steer_merge_params mpp = steer_merge_default_params();
        mpp.dtype = STEER_DTYPE_F32;
        CHECK_OK(steer_merge_lora(dir, adapter, out, &mpp));
        steer_dtype odt;
        inference_logits(out, got, &odt);
        const double e = nrel(got, want, NV);
        printf("%-8s %s: merged (steer_forward) vs base + LoRA (graph): %.3e (tol %.0e)\n", outs[k],
               steer_dtype_name(odt), e, TOL_MERGE_LOGITS);
        CHECK(e <= TOL_MERGE_LOGITS, "%s %s: merged logits differ by %.3e", name, outs[k], e);
    }
    snprintf(out, sizeof out, "%s/%s_merged_default", TMP, name);
    steer_merge_params mpp = steer_merge_default_params();
    CHECK_OK(steer_merge_lora(dir, adapter, out, &mpp));
    steer_dtype odt;
    inference_logits(out, got, &odt);
    printf("default dtype: %s (base %s)\n", steer_dtype_name(odt), steer_dtype_name(dt));
    CHECK(odt == dt, "%s: default output dtype %s, base %s", name, steer_dtype_name(odt), steer_dtype_name(dt));
    free(want);
    free(got);
    steer_model_free(mm);
}

static void expect_err(const char *what, int rc, int want_rc, const char *needle, const char *out)
{
    const char *msg = steer_last_error();
    printf("%-34s -> %d: %s\n", what, rc, msg);
    CHECK(rc == want_rc, "%s: status %d, expected %d", what, rc, want_rc);
    CHECK(strstr(msg, needle) != NULL, "%s: message '%s' does not name '%s'", what, msg, needle);
    CHECK(strchr(msg, '\n') == NULL, "%s: message has several lines", what);
    CHECK(!out || !exists(out), "%s: left %s behind", what, out);
}

static void test_errors(void)
{
    printf("\n== errors ==\n");
    const char *base = STEER_MODELS_DIR "/stories260K/stories260K.bin";
    char lora[600], adp[600], out[600], bad[600], dir[400];
    snprintf(lora, sizeof lora, "%s/lora/adapter.safetensors", TMP);
    snprintf(dir, sizeof dir, "%s/errs", TMP);
    mkdir(dir, 0755);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    steer_merge_params mp = steer_merge_default_params();
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none/adapter.safetensors", TMP);
    expect_err("missing adapter", steer_merge_lora(base, missing, out, &mp), STEER_EIO, missing, out);
    expect_err("adapter of another model",
               steer_merge_lora(STEER_TESTDATA_DIR "/llama/hf", lora, out, &mp), STEER_EARG, "this model has", out);
    /* a tensor of the wrong shape (metadata of the right model) */
    {
        steer_tensors *st = NULL;
        CHECK_OK(steer_tensors_open(lora, &st));
        steer_tensors_writer *w = NULL;
        CHECK_OK(steer_tensors_writer_new(&w));
        for (int i = 0; i < steer_tensors_count(st); i++) {
            const steer_tensor_info *ti = steer_tensors_at(st, i);
            int64_t shape[2] = {ti->shape[0], ti->shape[1]};
            if (strcmp(ti->name, "base_model.model.model.layers.2.mlp.up_proj.lora_A.weight") == 0)
                shape[0] = 4, shape[1] = 2 * ti->shape[1]; /* same bytes, another shape */
            CHECK_OK(steer_tensors_writer_add(w, ti->name, ti->dtype, ti->n_dims, shape, ti->data));
        }
        static const char *keys[] = {"method", "layers", "rank", "lora_rank", "lora_alpha", "lora_targets",
                                     "model.n_layer", "model.d_model", "model.n_vocab"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            CHECK_OK(steer_tensors_writer_meta(w, keys[k], steer_tensors_meta(st, keys[k])));
        snprintf(bad, sizeof bad, "%s/badshape.safetensors", dir);
        CHECK_OK(steer_tensors_writer_write(w, bad));
        steer_tensors_writer_free(w);
        steer_tensors_free(st);
        expect_err("a tensor of the wrong shape", steer_merge_lora(base, bad, out, &mp), STEER_EARG,
                   "layers.2.mlp.up_proj.lora_A.weight has the wrong shape", out);
        unlink(bad);
    }
    /* a checkpoint without LoRA */
    {
        steer_train_params p = steer_train_default_params();
        p.method = "adapter";
        p.steps = 1;
        p.batch = 2;
        char d[400];
        snprintf(d, sizeof d, "%s/adapter", TMP);
        p.out_dir = d;
        steer_train_result r;
        CHECK_OK(steer_train(m, dtrain, NULL, &p, &r));
        snprintf(adp, sizeof adp, "%s/adapter.safetensors", d);
        expect_err("checkpoint without LoRA", steer_merge_lora(base, adp, out, &mp), STEER_EARG,
                   "not a LoRA checkpoint (method 'adapter')", out);
    }
    expect_err("lora with steer_out", (mp.steer_out = "x.safetensors", steer_merge_lora(base, lora, out, &mp)),
               STEER_EARG, "holds no steering adapter", out);
    mp.steer_out = NULL;
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/nodir/out.gguf", TMP);
    expect_err("missing output directory", steer_merge_lora(base, lora, nodir, &mp), STEER_EIO, "does not exist", NULL);
    expect_err("not a safetensors file", steer_merge_lora(base, base, out, &mp), STEER_EFORMAT, base, out);
    CHECK(n_entries(dir) == 0, "the failures left %d files in %s", n_entries(dir), dir);
}

int main(void)
{
    omp_set_num_threads(1); /* see test_train_grad: spinning threads on a shared machine */
    snprintf(TMP, sizeof TMP, "/tmp/steer_test_merge_%d", (int)getpid());
    mkdir(TMP, 0755);
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &m));
    steer_data_params dp = steer_data_default_params();
    dp.n_max = 16;
    CHECK_OK(steer_data_load("winogrande:" STEER_TESTDATA_DIR "/winogrande/dev.jsonl", &dp, &dtrain));
    fill_tokens(m->cfg.n_vocab);
    test_lora();
    test_joint();
    test_arch(STEER_ARCH_GEMMA2, "gemma2", STEER_DTYPE_F32);
    test_arch(STEER_ARCH_QWEN2, "qwen2", STEER_DTYPE_BF16);
    test_errors();
    steer_data_free(dtrain);
    steer_model_free(m);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", TMP);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", TMP);
    return tu_finish("test_merge_lora");
}

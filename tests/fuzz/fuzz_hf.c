/*
 * fuzz_hf.c — Hugging Face model directories (steer_model_load on a
 * directory): config.json (architecture, sizes, head_dim, rope_scaling,
 * activations, Gemma fields, layer_types) and the sharded
 * model.safetensors.index.json (weight_map, shard names), over fixed valid
 * weights and tokenizer: a 1-layer llama (d 16, ff 32, 2 heads, 1 KV head,
 * vocab 259) made with steer_make_model at start-up, and the same tensors
 * split into model-00001-of-00002.safetensors (everything but layer 0's MLP)
 * and model-00002-of-00002.safetensors (layer 0's MLP).
 * Input: config.json; or config.json, a NUL byte, then the index (the
 * directory then has only the two shards). Then tokenizer, chat formatting
 * and a 2-token forward pass.
 * Seeds: tests/fuzz/corpus/hf. See fuzz_util.h.
 */
#include "fuzz_util.h"

static char fuzz_hf_single[600], fuzz_hf_sharded[600];

/* Writes the tensors of src whose name does / does not contain "layers.0.mlp"
 * to dst. */
static void fuzz_hf_write_shard(const steer_tensors *src, int mlp, const char *dst)
{
    steer_tensors_writer *w = NULL;
    if (steer_tensors_writer_new(&w) != STEER_OK) fuzz_fail("steer_tensors_writer_new", steer_last_error());
    for (int i = 0; i < steer_tensors_count(src); i++) {
        const steer_tensor_info *ti = steer_tensors_at(src, i);
        if ((strstr(ti->name, "layers.0.mlp") != NULL) != mlp) continue;
        if (steer_tensors_writer_add(w, ti->name, ti->dtype, ti->n_dims, ti->shape, ti->data) != STEER_OK)
            fuzz_fail("steer_tensors_writer_add", steer_last_error());
    }
    if (steer_tensors_writer_write(w, dst) != STEER_OK) fuzz_fail("steer_tensors_writer_write", steer_last_error());
    steer_tensors_writer_free(w);
}

static void fuzz_hf_fixture(void)
{
    if (fuzz_hf_single[0]) return;
    char src[600], a[700], b[700];
    fuzz_path(src, sizeof src, "hf_fixture");
    steer_make_model_params p = steer_make_model_default_params(STEER_ARCH_LLAMA);
    p.d_model = 16;
    p.d_ff = 32;
    p.n_layer = 1;
    p.n_head = 2;
    p.n_kv_head = 1;
    p.n_vocab = 259;
    p.n_ctx = 16;
    p.seed = 7;
    if (steer_make_model(&p, src) != STEER_OK) fuzz_fail("steer_make_model", steer_last_error());
    fuzz_path(fuzz_hf_single, sizeof fuzz_hf_single, "hf");
    fuzz_path(fuzz_hf_sharded, sizeof fuzz_hf_sharded, "hf_sharded");
    fuzz_mkdir(fuzz_hf_single);
    fuzz_mkdir(fuzz_hf_sharded);
    const char *files[] = {"model.safetensors", "tokenizer.json", "tokenizer_config.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "%s/%s", src, files[i]);
        snprintf(b, sizeof b, "%s/%s", fuzz_hf_single, files[i]);
        fuzz_copy(a, b);
        if (i == 0) continue;
        snprintf(b, sizeof b, "%s/%s", fuzz_hf_sharded, files[i]);
        fuzz_copy(a, b);
    }
    snprintf(a, sizeof a, "%s/model.safetensors", src);
    steer_tensors *t = NULL;
    if (steer_tensors_open(a, &t) != STEER_OK) fuzz_fail("steer_tensors_open", steer_last_error());
    snprintf(b, sizeof b, "%s/model-00001-of-00002.safetensors", fuzz_hf_sharded);
    fuzz_hf_write_shard(t, 0, b);
    snprintf(b, sizeof b, "%s/model-00002-of-00002.safetensors", fuzz_hf_sharded);
    fuzz_hf_write_shard(t, 1, b);
    steer_tensors_free(t);
}

static int fuzz_hf_one(const uint8_t *data, size_t size)
{
    fuzz_hf_fixture();
    const uint8_t *nul = memchr(data, 0, size);
    size_t n1 = nul ? (size_t)(nul - data) : size;
    const char *dir = nul ? fuzz_hf_sharded : fuzz_hf_single;
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", dir);
    fuzz_write(path, data, n1);
    if (nul) {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        fuzz_write(path, nul + 1, size - n1 - 1);
    }
    steer_model *m = NULL;
    int rc = steer_model_load(dir, NULL, &m);
    fuzz_check_error(rc, dir);
    if (rc == STEER_OK) {
        fuzz_exercise_model(m);
        steer_model_free(m);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_hf_one)

/*
 * fuzz_gguf.c — the GGUF reader (gg_open, every typed getter on the keys
 * steer reads, every tensor's data range) and, when the file opens, the model
 * loader on it (steer_model_load: hyper-parameters, tensor binding, the GGUF
 * vocabulary), then tokenizer, chat formatting and a 2-token forward pass.
 * Every tensor of a type quant.h decodes (F32, F16, BF16 and the block
 * types Q8_0 … Q6_K) is dequantized row by row over exactly the bytes the
 * reader gives it (in the fuzz build the file is an exact-size heap buffer,
 * so a row past the data is an ASan report).
 * Seeds: tests/fuzz/corpus/gguf (tiny random models of every GGUF
 * architecture, cut-down real vocabularies, a llama with Q8_0/Q4_0 matrices,
 * one tensor of every block type). See fuzz_util.h.
 */
#include "fuzz_util.h"
#include "quant.h"

/* Keys steer (and llama.cpp) read; each is tried with every getter, so
 * wrong-kind values exercise the error paths. */
static const char *const fuzz_gguf_keys[] = {
    "general.architecture", "general.alignment", "general.name",
    "llama.block_count", "llama.embedding_length", "llama.feed_forward_length", "llama.attention.head_count",
    "llama.attention.head_count_kv", "llama.context_length", "llama.rope.freq_base",
    "llama.attention.layer_norm_rms_epsilon", "llama.rope.dimension_count", "llama.rope.scaling.type",
    "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
    "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token",
    "tokenizer.ggml.add_space_prefix", "tokenizer.chat_template", "controlvector.layer_count",
    "controlvector.model_hint",
};

/* Dequantizes every row of t: the reader's byte count must be whole rows of
 * ne[0] elements (q_row_bytes), and the decoder reads only those bytes. */
static unsigned fuzz_gguf_dequant(const gg_tensor *t)
{
    steer_dtype dt;
    if (q_from_ggml_type((uint32_t)t->type, &dt) != 0) fuzz_fail("the reader accepted a type quant.h lacks", t->name);
    if (t->nbytes == 0) return 0;
    size_t ne0 = (size_t)t->ne[0], rb = q_row_bytes(dt, ne0);
    if (rb == 0 || t->nbytes % rb != 0) fuzz_fail("tensor bytes are not whole rows", t->name);
    float *row = malloc(ne0 * sizeof *row);
    if (!row) return 0;
    unsigned sum = 0;
    for (size_t r = 0; r < t->nbytes / rb; r++) {
        q_dequant_row(dt, (const uint8_t *)t->data + r * rb, row, ne0);
        sum += (unsigned)(row[ne0 - 1] == row[ne0 - 1]);
    }
    free(row);
    return sum;
}

static unsigned fuzz_gguf_getters(const gg_file *f)
{
    unsigned sum = 0;
    const char *path = gg_path(f);
    for (size_t i = 0; i < sizeof fuzz_gguf_keys / sizeof fuzz_gguf_keys[0]; i++) {
        const char *key = fuzz_gguf_keys[i];
        uint32_t u;
        float x;
        int b;
        const char *s;
        uint64_t n;
        const char *const *strs;
        const uint32_t *lens;
        float *fa;
        int32_t *ia;
        int has = gg_has_key(f, key), rc;
        if ((rc = gg_get_u32(f, key, &u)) == STEER_OK) sum += u;
        fuzz_check_error(rc, path);
        if ((rc = gg_get_f32(f, key, &x)) == STEER_OK) sum += (unsigned)(x == x);
        fuzz_check_error(rc, path);
        if ((rc = gg_get_bool(f, key, &b)) == STEER_OK) sum += (unsigned)b;
        fuzz_check_error(rc, path);
        if ((rc = gg_get_str(f, key, &s)) == STEER_OK) sum += fuzz_touch(s, strlen(s) + 1);
        fuzz_check_error(rc, path);
        if ((rc = gg_get_arr_str(f, key, &n, &strs, &lens)) == STEER_OK)
            for (uint64_t k = 0; k < n; k++) sum += fuzz_touch(strs[k], (size_t)lens[k] + 1);
        fuzz_check_error(rc, path);
        if ((rc = gg_get_arr_f32(f, key, &n, &fa)) == STEER_OK) {
            sum += fuzz_touch(fa, (size_t)n * sizeof *fa);
            free(fa);
        }
        fuzz_check_error(rc, path);
        if ((rc = gg_get_arr_i32(f, key, &n, &ia)) == STEER_OK) {
            sum += fuzz_touch(ia, (size_t)n * sizeof *ia);
            free(ia);
        }
        fuzz_check_error(rc, path);
        if (!has && rc == STEER_OK) fuzz_fail("a getter found a key gg_has_key denies", key);
    }
    for (int i = 0; i < gg_n_tensors(f); i++) {
        const gg_tensor *t = gg_tensor_at(f, i);
        if (!t || !t->name) fuzz_fail("missing tensor record", NULL);
        if (gg_find_tensor(f, t->name) != t) fuzz_fail("gg_find_tensor disagrees with gg_tensor_at", t->name);
        if (t->nbytes && !t->data) fuzz_fail("tensor without data", t->name);
        sum += fuzz_touch(t->data, t->nbytes);
        sum += fuzz_gguf_dequant(t);
    }
    return sum;
}

static int fuzz_gguf_one(const uint8_t *data, size_t size)
{
    char path[600];
    fuzz_path(path, sizeof path, "in.gguf");
    fuzz_write(path, data, size);
    gg_file *f = NULL;
    int rc = gg_open(path, &f);
    fuzz_check_error(rc, path);
    if (rc != STEER_OK) return 0;
    fuzz_gguf_getters(f);
    gg_close(f);

    steer_model *m = NULL;
    rc = steer_model_load(path, NULL, &m);
    fuzz_check_error(rc, path);
    if (rc == STEER_OK) {
        fuzz_exercise_model(m);
        steer_model_free(m);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_gguf_one)

/* test_io.c — GGUF and safetensors readers/writers, mmap and atomic writes.
 *
 * Real files: stories260K.gguf (F32, known hyper-parameters, token embedding
 * bit-identical to the llama2.c checkpoint) and llama-2-tiny-random.gguf (F16
 * matrices). Round trips through both writers, bit-exact. Corrupt inputs:
 * every one must fail with the right status and a one-line message that
 * starts with the file's path — never crash (run under ASan/UBSan). */
#include "model.h"
#include "data.h"
#include "test_util.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define STORIES_GGUF STEER_MODELS_DIR "/stories260K/stories260K.gguf"
#define STORIES_BIN STEER_MODELS_DIR "/stories260K/stories260K.bin"
#define TINY_GGUF STEER_TESTDATA_DIR "/llama-2-tiny-random.gguf"

static char g_tmp[512]; /* private temporary directory, removed at the end */

static void tmp_file(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_tmp, name); }

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "FAIL: cannot write %s\n", path);
        exit(1);
    }
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Entries of dir whose name contains ".tmp." (leftover temporary files). */
static int count_tmp_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* Removes g_tmp and what is in it (one level of subdirectories). */
static void remove_tmp_dir(void)
{
    DIR *d = opendir(g_tmp);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", g_tmp, e->d_name);
        if (remove(p) != 0) rmdir(p);
    }
    closedir(d);
    rmdir(g_tmp);
}

/* Checks a failure: status, one-line message starting with `path` (when
 * given) and containing `substr` (when given). Prints the message. */
static void check_fail(const char *what, int rc, int want, const char *path, const char *substr)
{
    const char *msg = steer_last_error();
    printf("  %-44s rc=%d (want %d) \"%s\"\n", what, rc, want, msg);
    CHECK(rc == want, "%s: rc %d, want %d (%s)", what, rc, want, msg);
    if (path) CHECK(strncmp(msg, path, strlen(path)) == 0, "%s: message does not start with %s", what, path);
    if (substr) CHECK(strstr(msg, substr) != NULL, "%s: message lacks \"%s\"", what, substr);
    CHECK(strchr(msg, '\n') == NULL, "%s: message is not one line", what);
}

static int gguf_open_fails(const char *path, int want, const char *substr, const char *what)
{
    gg_file *f = (gg_file *)&f; /* must be reset to NULL on failure */
    int rc = gg_open(path, &f);
    check_fail(what, rc, want, path, substr);
    CHECK(f == NULL, "%s: *out not NULL after failure", what);
    if (rc == STEER_OK) gg_close(f);
    return rc;
}

static int st_open_fails(const char *path, int want, const char *substr, const char *what)
{
    steer_tensors *t = (steer_tensors *)&t;
    int rc = steer_tensors_open(path, &t);
    check_fail(what, rc, want, path, substr);
    CHECK(t == NULL, "%s: *out not NULL after failure", what);
    if (rc == STEER_OK) steer_tensors_free(t);
    return rc;
}

/* ---------------------------------------------------------------- real GGUF files */

static void test_stories_gguf(void)
{
    printf("stories260K.gguf:\n");
    gg_file *f;
    CHECK_OK(gg_open(STORIES_GGUF, &f));
    CHECK(strcmp(gg_path(f), STORIES_GGUF) == 0, "gg_path %s", gg_path(f));

    struct {
        const char *key;
        uint32_t want;
    } u32s[] = {
        {"llama.block_count", 5},          {"llama.embedding_length", 64},        {"llama.attention.head_count", 8},
        {"llama.attention.head_count_kv", 4}, {"llama.feed_forward_length", 172}, {"llama.context_length", 2048},
        {"tokenizer.ggml.bos_token_id", 1}, {"tokenizer.ggml.seperator_token_id", 4294967295u},
    };
    for (size_t i = 0; i < sizeof u32s / sizeof u32s[0]; i++) {
        uint32_t v = 0;
        CHECK_OK(gg_get_u32(f, u32s[i].key, &v));
        printf("  %-44s = %u (want %u)\n", u32s[i].key, v, u32s[i].want);
        CHECK(v == u32s[i].want, "%s = %u, want %u", u32s[i].key, v, u32s[i].want);
    }
    float eps = 0;
    CHECK_OK(gg_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &eps));
    printf("  %-44s = %g (want 1e-5)\n", "llama.attention.layer_norm_rms_epsilon", eps);
    CHECK(eps == 1e-5f, "rms eps %g", eps);
    const char *arch = NULL;
    CHECK_OK(gg_get_str(f, "general.architecture", &arch));
    printf("  %-44s = \"%s\"\n", "general.architecture", arch);
    CHECK(strcmp(arch, "llama") == 0, "architecture %s", arch);

    uint64_t n = 0;
    const char *const *toks = NULL;
    const uint32_t *lens = NULL;
    CHECK_OK(gg_get_arr_str(f, "tokenizer.ggml.tokens", &n, &toks, &lens));
    printf("  tokenizer.ggml.tokens: %llu entries, [0] \"%s\" [1] \"%s\" [2] \"%s\"\n", (unsigned long long)n, toks[0],
           toks[1], toks[2]);
    CHECK(n == 512, "n tokens %llu", (unsigned long long)n);
    CHECK(strcmp(toks[0], "<unk>") == 0 && strcmp(toks[1], "<s>") == 0 && strcmp(toks[2], "</s>") == 0,
          "special tokens");
    CHECK(lens[1] == 3 && lens[0] == 5, "lens %u %u", lens[0], lens[1]);

    float *scores = NULL;
    CHECK_OK(gg_get_arr_f32(f, "tokenizer.ggml.scores", &n, &scores));
    CHECK(n == 512, "n scores %llu", (unsigned long long)n);
    int32_t *tt = NULL;
    CHECK_OK(gg_get_arr_i32(f, "tokenizer.ggml.token_type", &n, &tt));
    printf("  token_type: %llu entries, [0] %d [1] %d (want 2, 3)\n", (unsigned long long)n, tt[0], tt[1]);
    CHECK(n == 512 && tt[0] == TOK_UNKNOWN && tt[1] == TOK_CONTROL, "token types");
    free(scores);
    free(tt);

    printf("  n_tensors = %d (want 48)\n", gg_n_tensors(f));
    CHECK(gg_n_tensors(f) == 48, "n_tensors %d", gg_n_tensors(f));
    const gg_tensor *te = gg_find_tensor(f, "token_embd.weight");
    CHECK(te != NULL, "token_embd.weight missing");
    if (te) {
        printf("  token_embd.weight: type %d n_dims %d ne [%llu, %llu] nbytes %zu\n", te->type, te->n_dims,
               (unsigned long long)te->ne[0], (unsigned long long)te->ne[1], te->nbytes);
        CHECK(te->type == GGML_TYPE_F32 && te->n_dims == 2 && te->ne[0] == 64 && te->ne[1] == 512 &&
                  te->ne[2] == 1 && te->ne[3] == 1 && te->nbytes == 64 * 512 * 4,
              "token_embd.weight shape/type");
        CHECK((uintptr_t)te->data % 32 == 0, "token_embd data not 32-aligned");
        /* The llama2.c checkpoint stores the same f32 table after its 7-int header. */
        size_t bsize;
        uint8_t *bin = tu_read_file(STORIES_BIN, &bsize);
        int same = bsize >= 28 + te->nbytes && memcmp(bin + 28, te->data, te->nbytes) == 0;
        printf("  token_embd.weight bytes == stories260K.bin embedding table: %s\n", same ? "yes" : "NO");
        CHECK(same, "token_embd.weight differs from the .bin checkpoint");
        free(bin);
    }
    const gg_tensor *on = gg_find_tensor(f, "output_norm.weight");
    CHECK(on && on->n_dims == 1 && on->ne[0] == 64 && on->nbytes == 256, "output_norm.weight");
    const gg_tensor *fd = gg_find_tensor(f, "blk.4.ffn_down.weight");
    CHECK(fd && fd->ne[0] == 172 && fd->ne[1] == 64, "blk.4.ffn_down.weight ne");
    CHECK(gg_tensor_at(f, 0) == te, "tensor 0 is token_embd.weight");
    CHECK(gg_tensor_at(f, -1) == NULL && gg_tensor_at(f, 48) == NULL, "tensor_at out of range");
    CHECK(gg_find_tensor(f, "no.such.tensor") == NULL, "find missing tensor");
    CHECK(gg_has_key(f, "llama.block_count") && !gg_has_key(f, "llama.no_such_key"), "has_key");

    uint32_t v;
    const char *s;
    check_fail("get_u32 of a missing key", gg_get_u32(f, "llama.no_such_key", &v), STEER_EARG, STORIES_GGUF,
               "missing key llama.no_such_key");
    check_fail("get_u32 of a string key", gg_get_u32(f, "general.architecture", &v), STEER_EARG, STORIES_GGUF,
               "general.architecture");
    check_fail("get_str of a u32 key", gg_get_str(f, "llama.block_count", &s), STEER_EARG, STORIES_GGUF, "u32");
    check_fail("get_arr_i32 of a string array", gg_get_arr_i32(f, "tokenizer.ggml.tokens", &n, &tt), STEER_EARG,
               STORIES_GGUF, "tokenizer.ggml.tokens");
    check_fail("get_arr_i32 of a float array", gg_get_arr_i32(f, "tokenizer.ggml.scores", &n, &tt), STEER_EARG,
               STORIES_GGUF, NULL);
    gg_close(f);
}

/* 1 if the IEEE half h is finite. */
static int f16_finite(uint16_t h) { return ((h >> 10) & 0x1f) != 0x1f; }

static void test_tiny_random_gguf(void)
{
    printf("llama-2-tiny-random.gguf:\n");
    gg_file *f;
    CHECK_OK(gg_open(TINY_GGUF, &f));
    uint32_t ft = 0;
    CHECK_OK(gg_get_u32(f, "general.file_type", &ft));
    CHECK(ft == 1, "general.file_type %u (want 1 = mostly F16)", ft);
    struct {
        const char *name;
        int type;
        uint64_t ne0, ne1;
        size_t nbytes;
    } want[] = {
        {"blk.0.attn_q.weight", GGML_TYPE_F16, 8, 8, 128},
        {"blk.0.ffn_down.weight", GGML_TYPE_F16, 32, 8, 512},
        {"token_embd.weight", GGML_TYPE_F16, 8, 32000, 512000},
        {"output.weight", GGML_TYPE_F16, 8, 32000, 512000},
        {"blk.0.attn_norm.weight", GGML_TYPE_F32, 8, 1, 32},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const gg_tensor *t = gg_find_tensor(f, want[i].name);
        CHECK(t != NULL, "%s missing", want[i].name);
        if (!t) continue;
        printf("  %-24s type %d (want %d) ne [%llu, %llu] (want [%llu, %llu]) nbytes %zu (want %zu)\n", want[i].name,
               t->type, want[i].type, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
               (unsigned long long)want[i].ne0, (unsigned long long)want[i].ne1, t->nbytes, want[i].nbytes);
        CHECK(t->type == want[i].type && t->ne[0] == want[i].ne0 && t->ne[1] == want[i].ne1 &&
                  t->nbytes == want[i].nbytes,
              "%s type/shape/size", want[i].name);
        CHECK((uintptr_t)t->data % 32 == 0, "%s data not aligned", want[i].name);
        if (t->type == GGML_TYPE_F16) {
            size_t bad = 0;
            for (size_t k = 0; k < t->nbytes / 2; k++) {
                uint16_t h;
                memcpy(&h, (const uint8_t *)t->data + 2 * k, 2);
                bad += !f16_finite(h);
            }
            CHECK(bad == 0, "%s has %zu non-finite halves", want[i].name, bad);
        }
    }
    uint64_t n = 0;
    CHECK_OK(gg_get_arr_str(f, "tokenizer.ggml.tokens", &n, NULL, NULL));
    printf("  tokenizer.ggml.tokens: %llu entries (want 32000)\n", (unsigned long long)n);
    CHECK(n == 32000, "n tokens");
    gg_close(f);
}

/* ---------------------------------------------------------------- safetensors round trip */

static void test_safetensors_roundtrip(void)
{
    printf("safetensors round trip:\n");
    char path[1024];
    tmp_file(path, sizeof path, "rt.safetensors");

    /* [2, 3] F32 incl. a NaN with payload, -0, a denormal; [4] BF16; [3, 1, 2]
     * I32 extremes; F64 scalar; [3] U8 (odd size, last). */
    uint32_t f32_bits[6] = {0x3f800000u, 0xc0200000u, 0x7fc00123u, 0x80000000u, 0x00000001u, 0x7f7fffffu};
    uint16_t bf16[4] = {0x3f80, 0xc000, 0x7f80, 0x0001};
    int32_t i32[6] = {INT32_MIN, -1, 0, 1, 42, INT32_MAX};
    double f64 = 3.141592653589793;
    uint8_t u8[3] = {0, 128, 255};
    const int64_t s_f32[2] = {2, 3}, s_bf16[1] = {4}, s_i32[3] = {3, 1, 2}, s_u8[1] = {3};
    const char *note = "quote \" backslash \\ newline \n tab \t ctrl \x01 unicode \xc3\xa9 \xe2\x9c\x93";

    steer_tensors_writer *w;
    CHECK_OK(steer_tensors_writer_new(&w));
    CHECK_OK(steer_tensors_writer_add(w, "layer.0.f32", STEER_DTYPE_F32, 2, s_f32, f32_bits));
    CHECK_OK(steer_tensors_writer_add(w, "bf16", STEER_DTYPE_BF16, 1, s_bf16, bf16));
    CHECK_OK(steer_tensors_writer_add(w, "ints", STEER_DTYPE_I32, 3, s_i32, i32));
    CHECK_OK(steer_tensors_writer_add(w, "scalar", STEER_DTYPE_F64, 0, NULL, &f64));
    CHECK_OK(steer_tensors_writer_add(w, "bytes", STEER_DTYPE_U8, 1, s_u8, u8));
    CHECK_OK(steer_tensors_writer_meta(w, "format", "pt"));
    CHECK_OK(steer_tensors_writer_meta(w, "note", "replaced below"));
    CHECK_OK(steer_tensors_writer_meta(w, "note", note));

    check_fail("writer: duplicate tensor name", steer_tensors_writer_add(w, "ints", STEER_DTYPE_I32, 3, s_i32, i32),
               STEER_EARG, NULL, "duplicate");
    check_fail("writer: tensor named __metadata__",
               steer_tensors_writer_add(w, "__metadata__", STEER_DTYPE_U8, 1, s_u8, u8), STEER_EARG, NULL, NULL);
    check_fail("writer: invalid dtype", steer_tensors_writer_add(w, "x", (steer_dtype)99, 1, s_u8, u8), STEER_EARG,
               NULL, NULL);
    const int64_t neg[1] = {-1};
    check_fail("writer: negative dimension", steer_tensors_writer_add(w, "x", STEER_DTYPE_U8, 1, neg, u8),
               STEER_EARG, NULL, NULL);
    check_fail("writer: name not UTF-8", steer_tensors_writer_add(w, "bad\xff", STEER_DTYPE_U8, 1, s_u8, u8),
               STEER_EARG, NULL, NULL);

    CHECK_OK(steer_tensors_writer_write(w, path));
    steer_tensors_writer_free(w);

    /* File layout: u64 header length, multiple of 8, compact JSON + spaces. */
    size_t fsize;
    uint8_t *raw = tu_read_file(path, &fsize);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | raw[i];
    size_t data_bytes = 24 + 8 + 24 + 8 + 3;
    printf("  file %zu bytes, header %llu bytes (multiple of 8: %s), data %zu bytes\n", fsize,
           (unsigned long long)hlen, hlen % 8 == 0 ? "yes" : "NO", data_bytes);
    CHECK(hlen % 8 == 0, "header length %llu not a multiple of 8", (unsigned long long)hlen);
    CHECK(fsize == 8 + hlen + data_bytes, "file size %zu", fsize);
    if (fsize == 8 + hlen + data_bytes) {
        const char *h = (const char *)raw + 8;
        size_t jlen = hlen;
        while (jlen > 0 && h[jlen - 1] == ' ') jlen--;
        printf("  header: %.*s\n", (int)jlen, h);
        CHECK(h[0] == '{' && h[jlen - 1] == '}', "header is not one JSON object");
        CHECK(memchr(h, '\n', jlen) == NULL && !strstr(h, "\": ") && !strstr(h, ", \""), "header not compact");
        CHECK(hlen - jlen < 8, "more than 7 bytes of padding");
        const char *first = strstr(h, "\"layer.0.f32\""), *last = strstr(h, "\"bytes\"");
        CHECK(first && last && first < last, "tensors not in the order added");
    }
    free(raw);

    steer_tensors *t;
    CHECK_OK(steer_tensors_open(path, &t));
    printf("  reopened: %d tensors (want 5)\n", steer_tensors_count(t));
    CHECK(steer_tensors_count(t) == 5, "count");
    struct {
        const char *name;
        steer_dtype dtype;
        int n_dims;
        const int64_t *shape;
        const void *data;
        size_t nbytes;
    } want[] = {
        {"layer.0.f32", STEER_DTYPE_F32, 2, s_f32, f32_bits, sizeof f32_bits},
        {"bf16", STEER_DTYPE_BF16, 1, s_bf16, bf16, sizeof bf16},
        {"ints", STEER_DTYPE_I32, 3, s_i32, i32, sizeof i32},
        {"scalar", STEER_DTYPE_F64, 0, NULL, &f64, sizeof f64},
        {"bytes", STEER_DTYPE_U8, 1, s_u8, u8, sizeof u8},
    };
    for (int i = 0; i < 5 && i < steer_tensors_count(t); i++) {
        const steer_tensor_info *ti = steer_tensors_at(t, i);
        int shape_ok = ti->n_dims == want[i].n_dims;
        for (int d = 0; shape_ok && d < ti->n_dims; d++) shape_ok = ti->shape[d] == want[i].shape[d];
        int bytes_ok = ti->nbytes == want[i].nbytes && memcmp(ti->data, want[i].data, ti->nbytes) == 0;
        printf("  [%d] %-12s %-4s n_dims %d shape %s nbytes %zu bit-exact %s\n", i, ti->name,
               steer_dtype_name(ti->dtype), ti->n_dims, shape_ok ? "ok" : "WRONG", ti->nbytes,
               bytes_ok ? "yes" : "NO");
        CHECK(strcmp(ti->name, want[i].name) == 0, "tensor %d name %s, want %s", i, ti->name, want[i].name);
        CHECK(ti->dtype == want[i].dtype, "%s dtype %d", ti->name, ti->dtype);
        CHECK(shape_ok, "%s shape", ti->name);
        CHECK(bytes_ok, "%s data not bit-exact", ti->name);
        CHECK(steer_tensors_find(t, want[i].name) == ti, "find %s", want[i].name);
    }
    const char *fmt = steer_tensors_meta(t, "format"), *nt = steer_tensors_meta(t, "note");
    printf("  meta format = \"%s\", note round-trips: %s\n", fmt ? fmt : "(null)",
           nt && strcmp(nt, note) == 0 ? "yes" : "NO");
    CHECK(fmt && strcmp(fmt, "pt") == 0, "meta format");
    CHECK(nt && strcmp(nt, note) == 0, "meta note with escapes");
    CHECK(steer_tensors_meta(t, "missing") == NULL, "missing meta");
    CHECK(steer_tensors_find(t, "missing") == NULL && steer_tensors_at(t, 5) == NULL, "missing tensor");
    steer_tensors_free(t);

    /* Overwrite the same path with an empty file (no tensors, no metadata). */
    CHECK_OK(steer_tensors_writer_new(&w));
    CHECK_OK(steer_tensors_writer_write(w, path));
    steer_tensors_writer_free(w);
    CHECK_OK(steer_tensors_open(path, &t));
    printf("  overwritten with an empty writer: %d tensors (want 0)\n", steer_tensors_count(t));
    CHECK(steer_tensors_count(t) == 0, "empty file count");
    steer_tensors_free(t);

    CHECK(strcmp(steer_dtype_name(STEER_DTYPE_BF16), "BF16") == 0 && steer_dtype_size(STEER_DTYPE_BF16) == 2 &&
              steer_dtype_size(STEER_DTYPE_F64) == 8 && steer_dtype_size(STEER_DTYPE_I8) == 1 &&
              steer_dtype_size(STEER_DTYPE_COUNT) == 0,
          "dtype names/sizes");
    CHECK(count_tmp_leftovers(g_tmp) == 0, "temporary files left in %s", g_tmp);
}

/* ---------------------------------------------------------------- GGUF round trip */

static void test_gguf_roundtrip(void)
{
    printf("GGUF round trip:\n");
    char path[1024];
    tmp_file(path, sizeof path, "rt.gguf");

    float t_f32[15];
    for (int i = 0; i < 15; i++) t_f32[i] = (float)i * 0.25f - 1.0f;
    uint16_t t_f16[7] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x3555, 0x7e00};
    uint16_t t_bf16[16];
    for (int i = 0; i < 16; i++) t_bf16[i] = (uint16_t)(0x3f80 + i * 7);
    uint8_t t_q8[4 * 34]; /* [2 rows, 64 cols] = 4 blocks of (f16 scale + 32 int8) */
    for (int i = 0; i < (int)sizeof t_q8; i++) t_q8[i] = (uint8_t)(i * 37 + 11);
    const uint64_t ne_f32[2] = {5, 3}, ne_f16[1] = {7}, ne_bf16[3] = {4, 2, 2}, ne_q8[2] = {64, 2};
    const char *strs[4] = {"<unk>", "", "a b", "\xc3\xa9"};
    const float arr_f[3] = {0.5f, -1e30f, 1e-30f};
    const int32_t arr_i[4] = {INT32_MIN, 0, 7, INT32_MAX};

    gg_writer *w;
    CHECK_OK(gg_writer_new(&w));
    CHECK_OK(gg_writer_set_u32(w, "test.u32", 1));
    CHECK_OK(gg_writer_set_u32(w, "test.u32", 123456789)); /* replaces */
    CHECK_OK(gg_writer_set_f32(w, "test.f32", -1.5e-3f));
    CHECK_OK(gg_writer_set_bool(w, "test.bool", 1));
    CHECK_OK(gg_writer_set_str(w, "general.name", "round trip \xe2\x9c\x93"));
    CHECK_OK(gg_writer_set_arr_str(w, "test.strs", strs, 4));
    CHECK_OK(gg_writer_set_arr_f32(w, "test.floats", arr_f, 3));
    CHECK_OK(gg_writer_set_arr_i32(w, "test.ints", arr_i, 4));
    CHECK_OK(gg_writer_set_arr_i32(w, "test.empty", NULL, 0));
    CHECK_OK(gg_writer_add_tensor(w, "t.f32", GGML_TYPE_F32, 2, ne_f32, t_f32));
    CHECK_OK(gg_writer_add_tensor(w, "t.f16", GGML_TYPE_F16, 1, ne_f16, t_f16));
    CHECK_OK(gg_writer_add_tensor(w, "t.bf16", GGML_TYPE_BF16, 3, ne_bf16, t_bf16));
    CHECK_OK(gg_writer_add_tensor(w, "t.q8", GGML_TYPE_Q8_0, 2, ne_q8, t_q8));

    const uint64_t ne_bad[1] = {33};
    check_fail("writer: unsupported type IQ2_XXS", gg_writer_add_tensor(w, "x", 16, 1, ne_f16, t_f16),
               STEER_EUNSUPPORTED, NULL, "IQ2_XXS");
    check_fail("writer: Q8_0 with ne[0] = 33", gg_writer_add_tensor(w, "x", GGML_TYPE_Q8_0, 1, ne_bad, t_q8),
               STEER_EARG, NULL, NULL);
    check_fail("writer: duplicate tensor", gg_writer_add_tensor(w, "t.f16", GGML_TYPE_F16, 1, ne_f16, t_f16),
               STEER_EARG, NULL, "duplicate");
    check_fail("writer: 5 dimensions", gg_writer_add_tensor(w, "x", GGML_TYPE_F32, 5, ne_bf16, t_f32), STEER_EARG,
               NULL, NULL);
    CHECK_OK(gg_writer_write(w, path));
    gg_writer_free(w);

    size_t fsize;
    free(tu_read_file(path, &fsize));
    printf("  file %zu bytes (multiple of 32: %s)\n", fsize, fsize % 32 == 0 ? "yes" : "NO");
    CHECK(fsize % 32 == 0, "file size %zu", fsize);

    gg_file *f;
    CHECK_OK(gg_open(path, &f));
    uint32_t u = 0;
    float fl = 0;
    int b = 0;
    const char *s = NULL;
    CHECK_OK(gg_get_u32(f, "test.u32", &u));
    CHECK_OK(gg_get_f32(f, "test.f32", &fl));
    CHECK_OK(gg_get_bool(f, "test.bool", &b));
    CHECK_OK(gg_get_str(f, "general.name", &s));
    printf("  u32 %u, f32 %g, bool %d, str \"%s\"\n", u, fl, b, s);
    CHECK(u == 123456789 && fl == -1.5e-3f && b == 1 && strcmp(s, "round trip \xe2\x9c\x93") == 0, "scalars");
    uint64_t n = 0;
    const char *const *rs = NULL;
    const uint32_t *lens = NULL;
    CHECK_OK(gg_get_arr_str(f, "test.strs", &n, &rs, &lens));
    int strs_ok = n == 4;
    for (uint64_t i = 0; strs_ok && i < n; i++) strs_ok = strcmp(rs[i], strs[i]) == 0 && lens[i] == strlen(strs[i]);
    printf("  string array: %llu entries, equal: %s\n", (unsigned long long)n, strs_ok ? "yes" : "NO");
    CHECK(strs_ok, "string array");
    float *rf = NULL;
    CHECK_OK(gg_get_arr_f32(f, "test.floats", &n, &rf));
    CHECK(n == 3 && memcmp(rf, arr_f, sizeof arr_f) == 0, "float array");
    free(rf);
    int32_t *ri = NULL;
    CHECK_OK(gg_get_arr_i32(f, "test.ints", &n, &ri));
    CHECK(n == 4 && memcmp(ri, arr_i, sizeof arr_i) == 0, "int array");
    free(ri);
    CHECK_OK(gg_get_arr_i32(f, "test.empty", &n, &ri));
    CHECK(n == 0, "empty array n %llu", (unsigned long long)n);
    free(ri);
    check_fail("get_u32 of a f32 key", gg_get_u32(f, "test.f32", &u), STEER_EARG, path, "test.f32");

    struct {
        const char *name;
        int type, n_dims;
        const uint64_t *ne;
        const void *data;
        size_t nbytes;
    } want[] = {
        {"t.f32", GGML_TYPE_F32, 2, ne_f32, t_f32, sizeof t_f32},
        {"t.f16", GGML_TYPE_F16, 1, ne_f16, t_f16, sizeof t_f16},
        {"t.bf16", GGML_TYPE_BF16, 3, ne_bf16, t_bf16, sizeof t_bf16},
        {"t.q8", GGML_TYPE_Q8_0, 2, ne_q8, t_q8, sizeof t_q8},
    };
    CHECK(gg_n_tensors(f) == 4, "n_tensors %d", gg_n_tensors(f));
    for (int i = 0; i < 4 && i < gg_n_tensors(f); i++) {
        const gg_tensor *t = gg_tensor_at(f, i);
        int ne_ok = t->n_dims == want[i].n_dims;
        for (int d = 0; ne_ok && d < t->n_dims; d++) ne_ok = t->ne[d] == want[i].ne[d];
        int bytes_ok = t->nbytes == want[i].nbytes && memcmp(t->data, want[i].data, t->nbytes) == 0;
        printf("  [%d] %-7s type %2d n_dims %d ne %s nbytes %3zu (want %3zu) aligned %s bit-exact %s\n", i, t->name,
               t->type, t->n_dims, ne_ok ? "ok" : "WRONG", t->nbytes, want[i].nbytes,
               (uintptr_t)t->data % 32 == 0 ? "yes" : "NO", bytes_ok ? "yes" : "NO");
        CHECK(strcmp(t->name, want[i].name) == 0 && t->type == want[i].type, "tensor %d name/type", i);
        CHECK(ne_ok && bytes_ok && (uintptr_t)t->data % 32 == 0, "tensor %s", want[i].name);
    }
    gg_close(f);

    /* Copy stories260K (all tensors, some keys) and compare every tensor. */
    char copy[1024];
    tmp_file(copy, sizeof copy, "stories_copy.gguf");
    gg_file *src;
    CHECK_OK(gg_open(STORIES_GGUF, &src));
    CHECK_OK(gg_writer_new(&w));
    const char *const *toks;
    CHECK_OK(gg_get_arr_str(src, "tokenizer.ggml.tokens", &n, &toks, NULL));
    CHECK_OK(gg_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (int)n));
    CHECK_OK(gg_get_u32(src, "llama.block_count", &u));
    CHECK_OK(gg_writer_set_u32(w, "llama.block_count", u));
    for (int i = 0; i < gg_n_tensors(src); i++) {
        const gg_tensor *t = gg_tensor_at(src, i);
        CHECK_OK(gg_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data));
    }
    CHECK_OK(gg_writer_write(w, copy));
    gg_writer_free(w);
    CHECK_OK(gg_open(copy, &f));
    int same = gg_n_tensors(f) == gg_n_tensors(src);
    for (int i = 0; same && i < gg_n_tensors(f); i++) {
        const gg_tensor *a = gg_tensor_at(src, i), *c = gg_tensor_at(f, i);
        same = strcmp(a->name, c->name) == 0 && a->type == c->type && a->n_dims == c->n_dims &&
               memcmp(a->ne, c->ne, sizeof a->ne) == 0 && a->nbytes == c->nbytes &&
               memcmp(a->data, c->data, a->nbytes) == 0;
    }
    CHECK_OK(gg_get_arr_str(f, "tokenizer.ggml.tokens", &n, &rs, NULL));
    printf("  stories260K copy: %d tensors identical: %s; %llu tokens, [1] = \"%s\"\n", gg_n_tensors(f),
           same ? "yes" : "NO", (unsigned long long)n, rs[1]);
    CHECK(same, "stories260K copy differs");
    CHECK(n == 512 && strcmp(rs[1], "<s>") == 0, "copied tokens");
    gg_close(f);
    gg_close(src);
    CHECK(count_tmp_leftovers(g_tmp) == 0, "temporary files left in %s", g_tmp);
}

/* ---------------------------------------------------------------- corrupt GGUF */

/* A byte builder for hand-made files. Ownership: p owned by the builder. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} bb;

static void bb_bytes(bb *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) exit(1);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void bb_u32(bb *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    bb_bytes(b, x, 4);
}
static void bb_u64(bb *b, uint64_t v)
{
    bb_u32(b, (uint32_t)v);
    bb_u32(b, (uint32_t)(v >> 32));
}
static void bb_str(bb *b, const char *s)
{
    bb_u64(b, strlen(s));
    bb_bytes(b, s, strlen(s));
}
static void bb_pad(bb *b, size_t align)
{
    while (b->n % align) bb_bytes(b, "", 1);
}

/* The knobs of a hand-made GGUF with one u32 key (or general.alignment) and
 * one F32 tensor "w" of ne [8, 2] (64 bytes). */
typedef struct {
    uint32_t version;
    uint64_t n_tensors, n_kv;
    uint64_t key_len;     /* 0: the real length */
    uint32_t value_type;  /* GGUF_TYPE_UINT32 normally */
    uint32_t align;       /* 0: no general.alignment key */
    int dup_key;          /* write the key twice */
    uint32_t n_dims;
    uint64_t ne1;
    uint32_t ttype;
    uint64_t offset;
    int str_array_n;      /* > 0: add a string array key claiming this many... */
    uint64_t str_array_claim;
} gg_spec;

static gg_spec gg_default(void)
{
    gg_spec s = {3, 1, 1, 0, GGUF_TYPE_UINT32, 0, 0, 2, 2, GGML_TYPE_F32, 0, 0, 0};
    return s;
}

static void gg_build(const char *path, gg_spec s)
{
    bb b = {0};
    bb_bytes(&b, "GGUF", 4);
    bb_u32(&b, s.version);
    bb_u64(&b, s.n_tensors);
    uint64_t n_kv = s.n_kv + (s.align ? 1 : 0) + (s.dup_key ? 1 : 0) + (s.str_array_n ? 1 : 0);
    bb_u64(&b, n_kv);
    for (int k = 0; k < 1 + s.dup_key; k++) {
        bb_u64(&b, s.key_len ? s.key_len : strlen("test.key"));
        bb_bytes(&b, "test.key", strlen("test.key"));
        bb_u32(&b, s.value_type);
        bb_u32(&b, 7);
    }
    if (s.align) {
        bb_str(&b, "general.alignment");
        bb_u32(&b, GGUF_TYPE_UINT32);
        bb_u32(&b, s.align);
    }
    if (s.str_array_n) {
        bb_str(&b, "test.strs");
        bb_u32(&b, GGUF_TYPE_ARRAY);
        bb_u32(&b, GGUF_TYPE_STRING);
        bb_u64(&b, s.str_array_claim);
        for (int i = 0; i < s.str_array_n; i++) bb_str(&b, "tok");
    }
    uint64_t ne[4] = {8, s.ne1, 1, 1};
    bb_str(&b, "w");
    bb_u32(&b, s.n_dims);
    for (uint32_t d = 0; d < s.n_dims; d++) bb_u64(&b, ne[d < 4 ? d : 3]);
    bb_u32(&b, s.ttype);
    bb_u64(&b, s.offset);
    bb_pad(&b, s.align ? s.align : 32);
    for (int i = 0; i < 16; i++) {
        float v = (float)i;
        bb_bytes(&b, &v, 4);
    }
    write_file(path, b.p, b.n);
    free(b.p);
}

static void test_bad_gguf(void)
{
    printf("corrupt GGUF files:\n");
    char path[1024];
    tmp_file(path, sizeof path, "bad.gguf");

    /* Positive controls: the hand-made file is valid as built. */
    gg_file *f;
    gg_build(path, gg_default());
    CHECK_OK(gg_open(path, &f));
    const gg_tensor *t = gg_find_tensor(f, "w");
    CHECK(t && t->nbytes == 64 && ((const float *)t->data)[15] == 15.0f, "hand-made tensor");
    gg_close(f);
    gg_spec s = gg_default();
    s.align = 64;
    gg_build(path, s);
    CHECK_OK(gg_open(path, &f));
    t = gg_find_tensor(f, "w");
    printf("  control files open; alignment 64: data aligned %s\n",
           t && (uintptr_t)t->data % 64 == 0 && ((const float *)t->data)[1] == 1.0f ? "yes" : "NO");
    CHECK(t && (uintptr_t)t->data % 64 == 0 && ((const float *)t->data)[1] == 1.0f, "alignment 64 control");
    gg_close(f);
    s = gg_default();
    s.str_array_n = 3;
    s.str_array_claim = 3;
    gg_build(path, s);
    CHECK_OK(gg_open(path, &f));
    gg_close(f);

    char missing[1024];
    tmp_file(missing, sizeof missing, "no_such_file.gguf");
    gguf_open_fails(missing, STEER_EIO, "no_such_file.gguf", "missing file");
    gguf_open_fails(g_tmp, STEER_EIO, NULL, "a directory");
    write_file(path, "", 0);
    gguf_open_fails(path, STEER_EFORMAT, "empty", "empty file");
    write_file(path, "GGML and then some more bytes here......", 40);
    gguf_open_fails(path, STEER_EFORMAT, "bad magic", "wrong magic");
    write_file(path, "GG", 2);
    gguf_open_fails(path, STEER_EFORMAT, "bad magic", "2-byte file");

    struct {
        const char *what;
        int want;
        const char *substr;
        gg_spec s;
    } cases[24];
    int nc = 0;
#define CASE(WHAT, WANT, SUB, FIELD, VAL)                                                                              \
    do {                                                                                                               \
        cases[nc].what = WHAT;                                                                                         \
        cases[nc].want = WANT;                                                                                         \
        cases[nc].substr = SUB;                                                                                        \
        cases[nc].s = gg_default();                                                                                    \
        cases[nc].s.FIELD = VAL;                                                                                       \
        nc++;                                                                                                          \
    } while (0)
    CASE("version 1", STEER_EUNSUPPORTED, "version 1", version, 1);
    CASE("big-endian version", STEER_EUNSUPPORTED, "big-endian", version, 0x03000000u);
    CASE("version 7", STEER_EFORMAT, "version 7", version, 7);
    CASE("n_kv = 2^30 (reads infos as key/values)", STEER_EFORMAT, "truncated in key/value", n_kv, 1u << 30);
    CASE("n_kv = 2^60", STEER_EFORMAT, "key/value count 1152921504606846976 is too large", n_kv, 1ull << 60);
    CASE("n_tensors = 2^20 (reads data as infos)", STEER_EFORMAT, NULL, n_tensors, 1u << 20);
    CASE("n_tensors = 2^64-1", STEER_EFORMAT, "too large", n_tensors, UINT64_MAX);
    CASE("key length 2^62", STEER_EFORMAT, "truncated in key/value 0", key_len, 1ull << 62);
    CASE("invalid value type 99", STEER_EFORMAT, "invalid value type", value_type, 99);
    CASE("duplicate key", STEER_EFORMAT, "duplicate key test.key", dup_key, 1);
    CASE("general.alignment 3", STEER_EFORMAT, "power of two", align, 3);
    CASE("tensor type IQ2_XXS", STEER_EUNSUPPORTED, "tensor w has unsupported ggml type 16 (IQ2_XXS)", ttype, 16);
    CASE("tensor offset past the end", STEER_EFORMAT, "tensor w data runs past end of file", offset, 4096);
    CASE("tensor offset 2^63", STEER_EFORMAT, "runs past end of file", offset, 1ull << 63);
    CASE("tensor offset not aligned", STEER_EFORMAT, "alignment", offset, 4);
    CASE("tensor ne[1] = 2^62", STEER_EFORMAT, "tensor w", ne1, 1ull << 62);
    CASE("tensor with 5 dimensions", STEER_EFORMAT, "5 dimensions", n_dims, 5);
    CASE("string array claiming 2^40 entries", STEER_EFORMAT, "truncated in key/value 1 (test.strs)", str_array_n, 3);
#undef CASE
    cases[nc - 1].s.str_array_claim = 1ull << 40;
    for (int i = 0; i < nc; i++) {
        gg_build(path, cases[i].s);
        gguf_open_fails(path, cases[i].want, cases[i].substr, cases[i].what);
    }

    /* stories260K.gguf cut short at every 1/16th and at chosen points: inside
     * the header, the key/values, the last tensor info, the alignment padding
     * and the last tensor's data. */
    size_t size;
    uint8_t *full = tu_read_file(STORIES_GGUF, &size);
    size_t cuts[32];
    const char *cut_sub[32];
    int ncut = 0;
    for (int k = 1; k < 16; k++) {
        cuts[ncut] = size * (size_t)k / 16;
        cut_sub[ncut++] = NULL;
    }
    size_t extra[] = {3, 10, 23, 30, 60, 5000, 14150, 14160, size - 1};
    const char *extra_sub[] = {"bad magic", "truncated header", "truncated header", "truncated in key/value 0",
                               "truncated in key/value 0 (tokenizer.ggml.tokens)",
                               "truncated in key/value 0 (tokenizer.ggml.tokens)",
                               "truncated in tensor info 47 (blk.4.ffn_norm.weight)", "data section",
                               "tensor blk.4.ffn_norm.weight data runs past end of file"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        cuts[ncut] = extra[i];
        cut_sub[ncut++] = extra_sub[i];
    }
    tmp_file(path, sizeof path, "truncated.gguf");
    for (int i = 0; i < ncut; i++) {
        write_file(path, full, cuts[i]);
        char what[64];
        snprintf(what, sizeof what, "cut at %zu of %zu bytes", cuts[i], size);
        gguf_open_fails(path, STEER_EFORMAT, cut_sub[i], what);
    }
    free(full);
}

/* ---------------------------------------------------------------- corrupt safetensors */

/* Writes u64 hlen (or the real length when hlen == 0) + header + data. */
static void st_build(const char *path, const char *header, uint64_t hlen, const void *data, size_t n)
{
    bb b = {0};
    bb_u64(&b, hlen ? hlen : strlen(header));
    bb_bytes(&b, header, strlen(header));
    if (n) bb_bytes(&b, data, n);
    write_file(path, b.p, b.n);
    free(b.p);
}

static void test_bad_safetensors(void)
{
    printf("corrupt safetensors files:\n");
    char path[1024];
    tmp_file(path, sizeof path, "bad.safetensors");
    const float data[4] = {1, 2, 3, 4};

    /* Positive control: a hand-made file with padding that opens. */
    st_build(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}   ", 0, data, 8);
    steer_tensors *t;
    CHECK_OK(steer_tensors_open(path, &t));
    const steer_tensor_info *a = steer_tensors_find(t, "a");
    CHECK(a && a->nbytes == 8 && memcmp(a->data, data, 8) == 0, "hand-made safetensors");
    steer_tensors_free(t);

    char missing[1024];
    tmp_file(missing, sizeof missing, "no_such_file.safetensors");
    st_open_fails(missing, STEER_EIO, "no_such_file.safetensors", "missing file");
    write_file(path, "", 0);
    st_open_fails(path, STEER_EFORMAT, "empty", "empty file");
    write_file(path, "\x10\0\0", 3);
    st_open_fails(path, STEER_EFORMAT, NULL, "3-byte file");

    struct {
        const char *what, *header;
        uint64_t hlen;
        size_t n_data;
        int want;
        const char *substr;
    } cases[] = {
        {"header length > file", "{}", 1000, 0, STEER_EFORMAT, "larger than the file"},
        {"header length 2^63", "{}", 1ull << 63, 0, STEER_EFORMAT, "larger than the file"},
        {"invalid JSON", "{\"a\":{\"dtype\":\"F32\",", 0, 8, STEER_EFORMAT, "not valid JSON"},
        {"JSON array header", "[1, 2]", 0, 0, STEER_EFORMAT, "not a JSON object"},
        {"trailing bytes after JSON", "{}  x", 0, 0, STEER_EFORMAT, "trailing"},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, STEER_EFORMAT,
         "tensor a has unknown dtype F99"},
        {"unsupported dtype BOOL", "{\"a\":{\"dtype\":\"BOOL\",\"shape\":[8],\"data_offsets\":[0,8]}}", 0, 8,
         STEER_EUNSUPPORTED, "BOOL"},
        {"shape/offset mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0, 16,
         STEER_EFORMAT, "12 bytes but data_offsets span 8"},
        {"offsets past the data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, 8,
         STEER_EFORMAT, "runs past end of file"},
        {"reversed offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 0, 8, STEER_EFORMAT,
         "reversed"},
        {"negative dimension", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 0, 8,
         STEER_EFORMAT, "shape[0]"},
        {"fractional offset", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0.5,1.5]}}", 0, 8,
         STEER_EFORMAT, "data_offsets"},
        {"missing dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, STEER_EFORMAT, "missing dtype"},
        {"overlapping tensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         0, 16, STEER_EFORMAT, "overlap"},
        {"duplicate tensor",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
         0, 16, STEER_EFORMAT, "duplicate tensor a"},
        {"non-string metadata", "{\"__metadata__\":{\"k\":1}}", 0, 0, STEER_EFORMAT, "not a string"},
        {"9 dimensions", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 0, 8,
         STEER_EUNSUPPORTED, "9 dimensions"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_build(path, cases[i].header, cases[i].hlen, data, cases[i].n_data);
        st_open_fails(path, cases[i].want, cases[i].substr, cases[i].what);
    }

    /* A real written file cut short at several points. */
    char good[1024];
    tmp_file(good, sizeof good, "good.safetensors");
    steer_tensors_writer *w;
    const int64_t shape[2] = {2, 2};
    CHECK_OK(steer_tensors_writer_new(&w));
    CHECK_OK(steer_tensors_writer_meta(w, "k", "v"));
    CHECK_OK(steer_tensors_writer_add(w, "m", STEER_DTYPE_F32, 2, shape, data));
    CHECK_OK(steer_tensors_writer_write(w, good));
    steer_tensors_writer_free(w);
    size_t size;
    uint8_t *full = tu_read_file(good, &size);
    size_t cuts[] = {1, 7, 8, 20, size - 17, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_file(path, full, cuts[i]);
        char what[64];
        snprintf(what, sizeof what, "cut at %zu of %zu bytes", cuts[i], size);
        st_open_fails(path, STEER_EFORMAT, NULL, what);
    }
    free(full);
}

/* ---------------------------------------------------------------- random corruption */

static uint32_t lcg_next(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*state >> 33);
}

/* Overwrites 1..4 random bytes of buf[0..span) (span <= n) with random values,
 * writes buf to path, and restores it. */
static void write_mutated(const char *path, uint8_t *buf, size_t n, size_t span, uint64_t *rng)
{
    size_t at[4];
    uint8_t old[4];
    int k = 1 + (int)(lcg_next(rng) % 4);
    for (int i = 0; i < k; i++) {
        at[i] = lcg_next(rng) % span;
        old[i] = buf[at[i]];
        buf[at[i]] = (uint8_t)lcg_next(rng);
    }
    write_file(path, buf, n);
    for (int i = k - 1; i >= 0; i--) buf[at[i]] = old[i];
}

/* Random byte changes in headers must give OK or a clean error — never a
 * crash, a sanitizer report or an allocation the file cannot justify. When
 * a corrupt file still opens, every tensor must lie inside the file. */
static void test_random_corruption(void)
{
    printf("random corruption:\n");
    uint64_t rng = 12345;
    char path[1024];
    tmp_file(path, sizeof path, "mutated.bin");
    int counts[3] = {0, 0, 0}; /* ok, EFORMAT, EUNSUPPORTED */

    /* GGUF: the hand-made file (all of it) and stories260K (header region). */
    char src[1024];
    tmp_file(src, sizeof src, "mut_src.gguf");
    gg_spec s = gg_default();
    s.str_array_n = 3;
    s.str_array_claim = 3;
    gg_build(src, s);
    size_t n_small, n_big;
    uint8_t *small = tu_read_file(src, &n_small);
    uint8_t *big = tu_read_file(STORIES_GGUF, &n_big);
    for (int it = 0; it < 1200; it++) {
        int use_big = it % 48 == 0; /* 25 of 1200: the big file costs 1.2 MB of writes each */
        if (use_big) write_mutated(path, big, n_big, 14176, &rng);
        else write_mutated(path, small, n_small, n_small, &rng);
        gg_file *f = NULL;
        int rc = gg_open(path, &f);
        int known = rc == STEER_OK || rc == STEER_EFORMAT || rc == STEER_EUNSUPPORTED;
        CHECK(known, "mutation %d: rc %d (%s)", it, rc, steer_last_error());
        CHECK(rc == STEER_OK || strncmp(steer_last_error(), path, strlen(path)) == 0, "mutation %d: message %s", it,
              steer_last_error());
        counts[rc == STEER_OK ? 0 : rc == STEER_EFORMAT ? 1 : 2]++;
        if (rc == STEER_OK) {
            size_t fsize = use_big ? n_big : n_small;
            for (int i = 0; i < gg_n_tensors(f); i++) {
                const gg_tensor *t = gg_tensor_at(f, i);
                CHECK(t->nbytes <= fsize, "mutation %d: tensor %s nbytes %zu > file", it, t->name, t->nbytes);
                /* Touch the first and last byte: ASan/segfault if outside. */
                if (t->nbytes) {
                    volatile uint8_t x = ((const uint8_t *)t->data)[0];
                    x = ((const uint8_t *)t->data)[t->nbytes - 1];
                    (void)x;
                }
            }
            gg_close(f);
        }
    }
    printf("  GGUF: 1200 mutated files: %d opened, %d EFORMAT, %d EUNSUPPORTED\n", counts[0], counts[1], counts[2]);
    free(small);
    free(big);

    /* safetensors: a written file with metadata and three tensors. */
    counts[0] = counts[1] = counts[2] = 0;
    tmp_file(src, sizeof src, "mut_src.safetensors");
    const float v[12] = {0};
    const int64_t sh_a[2] = {2, 3}, sh_b[1] = {4}, sh_c[1] = {2};
    steer_tensors_writer *w;
    CHECK_OK(steer_tensors_writer_new(&w));
    CHECK_OK(steer_tensors_writer_meta(w, "key", "value"));
    CHECK_OK(steer_tensors_writer_add(w, "a", STEER_DTYPE_F32, 2, sh_a, v));
    CHECK_OK(steer_tensors_writer_add(w, "b", STEER_DTYPE_BF16, 1, sh_b, v));
    CHECK_OK(steer_tensors_writer_add(w, "c", STEER_DTYPE_I64, 1, sh_c, v));
    CHECK_OK(steer_tensors_writer_write(w, src));
    steer_tensors_writer_free(w);
    uint8_t *st = tu_read_file(src, &n_small);
    for (int it = 0; it < 1200; it++) {
        write_mutated(path, st, n_small, n_small - 48, &rng);
        steer_tensors *t = NULL;
        int rc = steer_tensors_open(path, &t);
        int known = rc == STEER_OK || rc == STEER_EFORMAT || rc == STEER_EUNSUPPORTED;
        CHECK(known, "mutation %d: rc %d (%s)", it, rc, steer_last_error());
        counts[rc == STEER_OK ? 0 : rc == STEER_EFORMAT ? 1 : 2]++;
        if (rc == STEER_OK) {
            for (int i = 0; i < steer_tensors_count(t); i++) {
                const steer_tensor_info *ti = steer_tensors_at(t, i);
                CHECK(ti->nbytes <= n_small, "mutation %d: tensor nbytes %zu", it, ti->nbytes);
                if (ti->nbytes) {
                    volatile uint8_t x = ((const uint8_t *)ti->data)[ti->nbytes - 1];
                    (void)x;
                }
            }
            steer_tensors_free(t);
        }
    }
    printf("  safetensors: 1200 mutated files: %d opened, %d EFORMAT, %d EUNSUPPORTED\n", counts[0], counts[1],
           counts[2]);
    free(st);
}

/* ---------------------------------------------------------------- mmap and atomic writes */

static void test_atomic_writes(void)
{
    printf("mmap and atomic writes:\n");
    char path[1024], bad[1024], dir_target[1024];
    tmp_file(path, sizeof path, "atomic.bin");
    tmp_file(bad, sizeof bad, "no_such_dir/out.bin");
    tmp_file(dir_target, sizeof dir_target, "a_directory");

    CHECK_OK(io_write_atomic(path, "first version", 13));
    CHECK_OK(io_write_atomic(path, "second", 6));
    io_map m;
    CHECK_OK(io_map_open(path, &m));
    printf("  overwrite: %zu bytes \"%.*s\" (want 6 \"second\")\n", m.size, (int)m.size, (const char *)m.data);
    CHECK(m.size == 6 && memcmp(m.data, "second", 6) == 0, "atomic overwrite");
    io_map_close(&m);
    io_map_close(&m); /* harmless twice */

    char empty[1024];
    tmp_file(empty, sizeof empty, "empty.bin");
    CHECK_OK(io_write_atomic(empty, NULL, 0));
    CHECK_OK(io_map_open(empty, &m));
    CHECK(m.data == NULL && m.size == 0, "empty file maps to NULL, 0");
    io_map_close(&m);

    char no_dir[1024];
    tmp_file(no_dir, sizeof no_dir, "no_such_dir");
    check_fail("io_write_atomic into a missing directory", io_write_atomic(bad, "x", 1), STEER_EIO, bad,
               "No such file");
    CHECK(!file_exists(bad) && !file_exists(no_dir), "something was created for %s", bad);

    gg_writer *gw;
    CHECK_OK(gg_writer_new(&gw));
    CHECK_OK(gg_writer_set_u32(gw, "k", 1));
    check_fail("gg_writer_write into a missing directory", gg_writer_write(gw, bad), STEER_EIO, bad, NULL);
    gg_writer_free(gw);
    steer_tensors_writer *sw;
    CHECK_OK(steer_tensors_writer_new(&sw));
    check_fail("safetensors write into a missing directory", steer_tensors_writer_write(sw, bad), STEER_EIO, bad,
               NULL);
    steer_tensors_writer_free(sw);
    CHECK(!file_exists(bad), "%s exists after failed writes", bad);

    /* The temporary file is written, but the rename over a directory fails:
     * the temporary must be removed. */
    CHECK(mkdir(dir_target, 0755) == 0, "mkdir %s", dir_target);
    check_fail("io_write_atomic over a directory", io_write_atomic(dir_target, "x", 1), STEER_EIO, dir_target,
               "rename");
    struct stat st;
    CHECK(stat(dir_target, &st) == 0 && S_ISDIR(st.st_mode), "directory target was replaced");

    /* io_tmp_commit(ok = 0) discards the new bytes and keeps the old file. */
    char tmp[4096];
    FILE *fp = io_tmp_open(path, tmp);
    CHECK(fp != NULL, "io_tmp_open: %s", steer_last_error());
    if (fp) {
        fputs("partial", fp);
        int rc = io_tmp_commit(fp, tmp, path, 0);
        CHECK(rc != STEER_OK && !file_exists(tmp), "discarded commit rc %d, tmp exists %d", rc, file_exists(tmp));
        size_t n;
        char *now = tu_read_file(path, &n);
        printf("  discarded write: %s still holds \"%s\" (want \"second\")\n", path, now);
        CHECK(n == 6 && memcmp(now, "second", 6) == 0, "old content lost");
        free(now);
    }
    check_fail("io_map_open of a directory", io_map_open(dir_target, &m), STEER_EIO, dir_target, "directory");
    int left = count_tmp_leftovers(g_tmp);
    printf("  temporary files left in %s: %d (want 0)\n", g_tmp, left);
    CHECK(left == 0, "%d temporary files left", left);
}

/* A run killed while writing FILE leaves FILE.tmp.<pid>; the next atomic write
 * of FILE removes it when that pid is gone, and keeps a live writer's file. */
static void test_stale_tmp_sweep(void)
{
    char path[600], dead_tmp[700], live_tmp[700], other_tmp[700];
    snprintf(path, sizeof path, "%s/swept.bin", g_tmp);
    pid_t child = fork();
    if (child == 0) _exit(0);
    CHECK(child > 0, "fork failed");
    waitpid(child, NULL, 0); /* child's pid is now free (not alive) */
    snprintf(dead_tmp, sizeof dead_tmp, "%s.tmp.%ld", path, (long)child);
    snprintf(live_tmp, sizeof live_tmp, "%s.tmp.%ld", path, (long)getppid());
    snprintf(other_tmp, sizeof other_tmp, "%s/swept.binx.tmp.%ld", g_tmp, (long)child);
    const char *names[3] = {dead_tmp, live_tmp, other_tmp};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(names[i], "wb");
        CHECK(f != NULL, "cannot create %s", names[i]);
        if (f) fclose(f);
    }
    CHECK_OK(io_write_atomic(path, "data", 4));
    CHECK(access(dead_tmp, F_OK) != 0, "%s (dead writer) was not removed", dead_tmp);
    CHECK(access(live_tmp, F_OK) == 0, "%s (live pid) was removed", live_tmp);
    CHECK(access(other_tmp, F_OK) == 0, "%s (another target) was removed", other_tmp);
    remove(live_tmp);
    remove(other_tmp);
    remove(path);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep stdout and FAIL lines in order */
    const char *base = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/steer_test_io.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_tmp)) {
        fprintf(stderr, "FAIL: mkdtemp %s\n", g_tmp);
        return 1;
    }
    test_stories_gguf();
    test_tiny_random_gguf();
    test_safetensors_roundtrip();
    test_gguf_roundtrip();
    test_bad_gguf();
    test_bad_safetensors();
    test_random_corruption();
    test_atomic_writes();
    test_stale_tmp_sweep();
    remove_tmp_dir();
    return tu_finish("test_io");
}

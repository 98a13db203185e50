/* test_gguf.c — the public GGUF API (steer_gguf_*: reader, writer) and the
 * public dtype conversions (steer_f32_to_bf16 & co.), checked against known
 * bit patterns, a GGUF fixture, and the internal writer the library uses
 * (byte-identical files). */
#include "test_util.h"

#include "formats.h" /* the internal writer, for the byte-identity check */

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define LLAMA_GGUF STEER_TESTDATA_DIR "/llama/tiny-random-llama.f32.gguf"

static char g_tmp[512]; /* private temporary directory, removed at the end */

static void tmp_file(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_tmp, name); }

static uint32_t f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---------------------------------------------------------------- dtype conversions */

static void test_bf16(void)
{
    static const struct {
        uint32_t f32;
        uint16_t bf16;
        const char *what;
    } cases[] = {
        {0x3F800000u, 0x3F80, "1.0"},
        {0xC0200000u, 0xC020, "-2.5"},
        {0x00000000u, 0x0000, "+0"},
        {0x80000000u, 0x8000, "-0"},
        {0x3F808000u, 0x3F80, "1 + 2^-8: tie, even below kept"},
        {0x3F818000u, 0x3F82, "1 + 3*2^-8: tie, rounds up to even"},
        {0x3F808001u, 0x3F81, "just above the tie rounds up"},
        {0x3F807FFFu, 0x3F80, "just below the tie rounds down"},
        {0x7F7FFFFFu, 0x7F80, "FLT_MAX rounds to +Inf"},
        {0x7F800000u, 0x7F80, "+Inf"},
        {0xFF800000u, 0xFF80, "-Inf"},
        {0x7FC00000u, 0x7FC0, "quiet NaN"},
        {0x7F800001u, 0x7FC0, "NaN with only low payload stays NaN (quieted), not Inf"},
        {0xFF800001u, 0xFFC0, "negative NaN keeps its sign"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = steer_f32_to_bf16(u2f(cases[i].f32));
        printf("f32 0x%08X -> bf16 0x%04X (want 0x%04X) %s\n", cases[i].f32, got, cases[i].bf16, cases[i].what);
        CHECK(got == cases[i].bf16, "%s: 0x%04X", cases[i].what, got);
    }
    CHECK(steer_bf16_to_f32(0x3F80) == 1.0f, "bf16 0x3F80 -> %g", steer_bf16_to_f32(0x3F80));
    CHECK(steer_bf16_to_f32(0xC020) == -2.5f, "bf16 0xC020 -> %g", steer_bf16_to_f32(0xC020));
    CHECK(isinf(steer_bf16_to_f32(0xFF80)) && steer_bf16_to_f32(0xFF80) < 0, "bf16 -Inf");
    CHECK(isnan(steer_bf16_to_f32(0x7FC1)), "bf16 NaN");
    /* Every non-NaN bf16 survives bf16 -> f32 -> bf16 bit for bit. */
    int bad = 0, n = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float f = steer_bf16_to_f32((uint16_t)h);
        if (isnan(f)) {
            bad += !isnan(steer_bf16_to_f32(steer_f32_to_bf16(f)));
            continue;
        }
        n++;
        bad += steer_f32_to_bf16(f) != h || f2u(f) != h << 16;
    }
    printf("bf16 -> f32 -> bf16: %d of %d non-NaN values exact, %d mismatches (incl. NaN)\n", n - bad, n, bad);
    CHECK(bad == 0 && n == 65536 - 2 * 127, "%d mismatches over %d values", bad, n);
}

static void test_f16(void)
{
    static const struct {
        float f;
        uint16_t f16;
        const char *what;
    } cases[] = {
        {1.0f, 0x3C00, "1.0"},
        {-2.0f, 0xC000, "-2.0"},
        {0.1f, 0x2E66, "0.1 (rounded)"},
        {65504.0f, 0x7BFF, "largest finite"},
        {65519.0f, 0x7BFF, "below the tie to Inf"},
        {65520.0f, 0x7C00, "tie between 65504 and 2^16: even = Inf"},
        {1e6f, 0x7C00, "overflow -> +Inf"},
        {-1e6f, 0xFC00, "overflow -> -Inf"},
        {0x1p-24f, 0x0001, "smallest subnormal"},
        {0x1p-25f, 0x0000, "half the smallest subnormal: tie to even 0"},
        {0x3p-25f, 0x0002, "1.5 x smallest subnormal: tie to even 2"},
        {0x1p-14f, 0x0400, "smallest normal"},
        {1.0f + 0x1p-11f, 0x3C00, "1 + 2^-11: tie, even below kept"},
        {1.0f + 0x3p-11f, 0x3C02, "1 + 3*2^-11: tie, rounds up to even"},
        {INFINITY, 0x7C00, "+Inf"},
        {-INFINITY, 0xFC00, "-Inf"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = steer_f32_to_f16(cases[i].f);
        printf("f32 %-14.9g -> f16 0x%04X (want 0x%04X) %s\n", (double)cases[i].f, got, cases[i].f16,
               cases[i].what);
        CHECK(got == cases[i].f16, "%s: 0x%04X", cases[i].what, got);
    }
    uint16_t qn = steer_f32_to_f16(NAN);
    CHECK((qn & 0x7C00) == 0x7C00 && (qn & 0x3FF) != 0, "NaN -> f16 0x%04X is not a NaN", qn);
    CHECK(isnan(steer_f16_to_f32(0x7E00)), "f16 0x7E00 is NaN");
    CHECK(steer_f16_to_f32(0x0001) == 0x1p-24f, "f16 0x0001 -> %g", steer_f16_to_f32(0x0001));
    CHECK(steer_f16_to_f32(0x7BFF) == 65504.0f, "f16 0x7BFF -> %g", steer_f16_to_f32(0x7BFF));
    /* Every non-NaN f16 survives f16 -> f32 -> f16 bit for bit. */
    int bad = 0, n = 0;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float f = steer_f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        n++;
        bad += steer_f32_to_f16(f) != h;
    }
    printf("f16 -> f32 -> f16: %d of %d non-NaN values exact\n", n - bad, n);
    CHECK(bad == 0 && n == 65536 - 2 * 1023, "%d mismatches over %d values", bad, n);
}

/* ---------------------------------------------------------------- reader */

static void test_reader(void)
{
    steer_gguf *g = NULL;
    CHECK_OK(steer_gguf_open(LLAMA_GGUF, &g));
    int n = steer_gguf_n_tensors(g);
    printf("%s: %d tensors, %d keys\n", LLAMA_GGUF, n, steer_gguf_n_keys(g));
    CHECK(n == 39, "n_tensors %d, want 39", n);

    steer_gguf_tensor_info ti;
    CHECK_OK(steer_gguf_tensor_at(g, 0, &ti));
    printf("tensor 0: %s %s [%lld, %lld] %zu bytes at %llu\n", ti.name, ti.type_name, (long long)ti.shape[0],
           (long long)ti.shape[1], ti.nbytes, (unsigned long long)ti.offset);
    CHECK(strcmp(ti.name, "output.weight") == 0, "tensor 0 is %s", ti.name);
    CHECK(ti.ggml_type == STEER_GGML_F32 && strcmp(ti.type_name, "F32") == 0, "type %d %s", ti.ggml_type,
          ti.type_name);
    CHECK(ti.n_dims == 2 && ti.shape[0] == 512 && ti.shape[1] == 128, "shape %d [%lld, %lld]", ti.n_dims,
          (long long)ti.shape[0], (long long)ti.shape[1]);
    CHECK(ti.nbytes == 512u * 128u * 4u, "nbytes %zu", ti.nbytes);
    CHECK(ti.offset % 32 == 0, "offset %llu not aligned", (unsigned long long)ti.offset);

    /* offset: the tensor's bytes in the file are its data. */
    size_t size = 0;
    unsigned char *file = tu_read_file(LLAMA_GGUF, &size);
    CHECK(ti.offset + ti.nbytes <= size && memcmp(file + ti.offset, ti.data, ti.nbytes) == 0,
          "file bytes at offset %llu differ from data", (unsigned long long)ti.offset);

    steer_gguf_tensor_info tk;
    CHECK_OK(steer_gguf_tensor_find(g, "blk.0.attn_k.weight", &tk));
    CHECK(tk.n_dims == 2 && tk.shape[0] == 64 && tk.shape[1] == 128, "attn_k [%lld, %lld]", (long long)tk.shape[0],
          (long long)tk.shape[1]);
    CHECK(memcmp(file + tk.offset, tk.data, tk.nbytes) == 0, "attn_k bytes at offset");
    steer_gguf_tensor_info tn;
    CHECK_OK(steer_gguf_tensor_find(g, "blk.0.attn_norm.weight", &tn));
    CHECK(tn.n_dims == 1 && tn.shape[0] == 128 && tn.nbytes == 512, "attn_norm %d [%lld] %zu", tn.n_dims,
          (long long)tn.shape[0], tn.nbytes);
    free(file);

    int rc = steer_gguf_tensor_find(g, "no.such.tensor", &tk);
    printf("missing tensor: %d %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "no.such.tensor") &&
              strstr(steer_last_error(), LLAMA_GGUF),
          "rc %d: %s", rc, steer_last_error());
    rc = steer_gguf_tensor_at(g, n, &tk);
    CHECK(rc == STEER_EARG, "tensor_at(n) rc %d", rc);
    CHECK(steer_gguf_tensor_at(g, -1, &tk) == STEER_EARG, "tensor_at(-1)");

    const char *arch = NULL;
    CHECK_OK(steer_gguf_get_str(g, "general.architecture", &arch));
    CHECK(strcmp(arch, "llama") == 0, "general.architecture = %s", arch);
    uint32_t blocks = 0;
    CHECK_OK(steer_gguf_get_u32(g, "llama.block_count", &blocks));
    uint32_t d = 0;
    CHECK_OK(steer_gguf_get_u32(g, "llama.embedding_length", &d));
    float eps = 0;
    CHECK_OK(steer_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps));
    printf("block_count %u, embedding_length %u, rms eps %g\n", blocks, d, (double)eps);
    /* 39 tensors = 2 (output, token_embd) + 9 per block + output_norm. */
    CHECK(blocks == 4 && d == 128, "block_count %u embedding_length %u", blocks, d);
    CHECK(eps > 0 && eps < 1e-3f, "eps %g", (double)eps);
    rc = steer_gguf_get_u32(g, "general.architecture", &blocks);
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "general.architecture"), "u32 of a string: %d %s", rc,
          steer_last_error());
    rc = steer_gguf_get_str(g, "no.such.key", &arch);
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "missing key no.such.key"), "missing key: %d %s", rc,
          steer_last_error());

    /* Keys: every listed key is found; general.architecture is among them. */
    int nk = steer_gguf_n_keys(g), found_arch = 0, all_found = 1;
    for (int i = 0; i < nk; i++) {
        const char *k = steer_gguf_key(g, i);
        all_found &= k && steer_gguf_has_key(g, k);
        found_arch |= k && strcmp(k, "general.architecture") == 0;
    }
    CHECK(nk > 5 && all_found && found_arch, "%d keys, all found %d, general.architecture %d", nk, all_found,
          found_arch);
    CHECK(steer_gguf_key(g, nk) == NULL && steer_gguf_key(g, -1) == NULL, "key out of range is NULL");
    CHECK(!steer_gguf_has_key(g, "no.such.key"), "has_key of a missing key");
    steer_gguf_free(g);
    steer_gguf_free(NULL);
}

static void test_reader_errors(void)
{
    char missing[600];
    tmp_file(missing, sizeof missing, "no_such_file.gguf");
    steer_gguf *g = (steer_gguf *)&g; /* must be reset to NULL */
    int rc = steer_gguf_open(missing, &g);
    printf("missing file: %d %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EIO && g == NULL, "rc %d", rc);
    CHECK(strncmp(steer_last_error(), missing, strlen(missing)) == 0, "message does not start with the path: %s",
          steer_last_error());

    /* A truncated copy (header, keys and half the tensor infos) is a format error naming the file. */
    size_t size = 0;
    unsigned char *file = tu_read_file(LLAMA_GGUF, &size);
    char trunc[600];
    tmp_file(trunc, sizeof trunc, "truncated.gguf");
    const size_t cuts[] = {3, 20, 1000, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        FILE *f = fopen(trunc, "wb");
        CHECK(f && fwrite(file, 1, cuts[i], f) == cuts[i] && fclose(f) == 0, "write %s", trunc);
        g = NULL;
        rc = steer_gguf_open(trunc, &g);
        printf("truncated to %zu bytes: %d %s\n", cuts[i], rc, steer_last_error());
        CHECK(rc == STEER_EFORMAT && g == NULL, "cut %zu: rc %d", cuts[i], rc);
        CHECK(strncmp(steer_last_error(), trunc, strlen(trunc)) == 0, "cut %zu: message %s", cuts[i],
              steer_last_error());
        steer_gguf_free(g);
    }
    free(file);
    remove(trunc);
    CHECK(steer_gguf_open(NULL, &g) == STEER_EARG, "NULL path");
    CHECK(steer_gguf_open(LLAMA_GGUF, NULL) == STEER_EARG, "NULL out");
}

/* ---------------------------------------------------------------- writer */

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void test_writer(void)
{
    /* W [3, 5] row-major in F32, F16, BF16; a 1-d norm; a Q8_0 block row. */
    float w32[15];
    uint16_t w16[15], wb16[15];
    for (int i = 0; i < 15; i++) {
        w32[i] = (float)(i - 7) * 0.25f;
        w16[i] = steer_f32_to_f16(w32[i]);
        wb16[i] = steer_f32_to_bf16(w32[i]);
    }
    float norm[4] = {1, 2, 3, 4};
    uint8_t q8[2 * 34];
    for (int i = 0; i < (int)sizeof q8; i++) q8[i] = (uint8_t)(i * 7);
    const char *toks[3] = {"<unk>", "a", "\xe2\x96\x81" "b"};
    const float scores[3] = {0, -1, -2.5f};
    const int32_t types[3] = {2, 1, 1};

    char pub[600], internal[600];
    tmp_file(pub, sizeof pub, "public.gguf");
    tmp_file(internal, sizeof internal, "internal.gguf");

    steer_gguf_writer *w = NULL;
    CHECK_OK(steer_gguf_writer_new(&w));
    CHECK_OK(steer_gguf_writer_set_str(w, "general.architecture", "llama"));
    CHECK_OK(steer_gguf_writer_set_u32(w, "llama.block_count", 7));
    CHECK_OK(steer_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f));
    CHECK_OK(steer_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1));
    CHECK_OK(steer_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3));
    CHECK_OK(steer_gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, 3));
    CHECK_OK(steer_gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, 3));
    CHECK_OK(steer_gguf_writer_set_u32(w, "llama.block_count", 3)); /* set twice: last value, first position */
    const int64_t mat[2] = {3, 5}, vec[1] = {4}, qshape[2] = {2, 32};
    CHECK_OK(steer_gguf_writer_add_tensor(w, "w.f32", STEER_GGML_F32, 2, mat, w32));
    CHECK_OK(steer_gguf_writer_add_tensor(w, "w.f16", STEER_GGML_F16, 2, mat, w16));
    CHECK_OK(steer_gguf_writer_add_tensor(w, "w.bf16", STEER_GGML_BF16, 2, mat, wb16));
    CHECK_OK(steer_gguf_writer_add_tensor(w, "norm", STEER_GGML_F32, 1, vec, norm));
    CHECK_OK(steer_gguf_writer_add_tensor(w, "q", STEER_GGML_Q8_0, 2, qshape, q8));

    /* Errors: nothing is added. */
    const int64_t neg[2] = {-1, 5}, odd[2] = {1, 31}, five[5] = {1, 1, 1, 1, 1};
    int rc = steer_gguf_writer_add_tensor(w, "w.f32", STEER_GGML_F32, 2, mat, w32);
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "duplicate tensor w.f32"), "duplicate: %d %s", rc,
          steer_last_error());
    rc = steer_gguf_writer_add_tensor(w, "neg", STEER_GGML_F32, 2, neg, w32);
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "neg"), "negative dim: %d %s", rc, steer_last_error());
    rc = steer_gguf_writer_add_tensor(w, "five", STEER_GGML_F32, 5, five, w32);
    CHECK(rc == STEER_EARG, "5 dims: %d %s", rc, steer_last_error());
    rc = steer_gguf_writer_add_tensor(w, "iq2", 16 /* IQ2_XXS */, 2, mat, w32);
    CHECK(rc == STEER_EUNSUPPORTED && strstr(steer_last_error(), "IQ2_XXS"), "IQ2_XXS: %d %s", rc,
          steer_last_error());
    rc = steer_gguf_writer_add_tensor(w, "qodd", STEER_GGML_Q8_0, 2, odd, q8);
    CHECK(rc == STEER_EARG, "Q8_0 row of 31: %d %s", rc, steer_last_error());
    printf("writer errors: %s\n", steer_last_error());

    CHECK_OK(steer_gguf_writer_write(w, pub));

    /* The internal writer with the same calls (ggml order ne) writes the same bytes. */
    gg_writer *gw = NULL;
    CHECK_OK(gg_writer_new(&gw));
    CHECK_OK(gg_writer_set_str(gw, "general.architecture", "llama"));
    CHECK_OK(gg_writer_set_u32(gw, "llama.block_count", 3));
    CHECK_OK(gg_writer_set_f32(gw, "llama.rope.freq_base", 10000.0f));
    CHECK_OK(gg_writer_set_bool(gw, "tokenizer.ggml.add_bos_token", 1));
    CHECK_OK(gg_writer_set_arr_str(gw, "tokenizer.ggml.tokens", toks, 3));
    CHECK_OK(gg_writer_set_arr_f32(gw, "tokenizer.ggml.scores", scores, 3));
    CHECK_OK(gg_writer_set_arr_i32(gw, "tokenizer.ggml.token_type", types, 3));
    const uint64_t ne_mat[2] = {5, 3}, ne_vec[1] = {4}, ne_q[2] = {32, 2};
    CHECK_OK(gg_writer_add_tensor(gw, "w.f32", GGML_TYPE_F32, 2, ne_mat, w32));
    CHECK_OK(gg_writer_add_tensor(gw, "w.f16", GGML_TYPE_F16, 2, ne_mat, w16));
    CHECK_OK(gg_writer_add_tensor(gw, "w.bf16", GGML_TYPE_BF16, 2, ne_mat, wb16));
    CHECK_OK(gg_writer_add_tensor(gw, "norm", GGML_TYPE_F32, 1, ne_vec, norm));
    CHECK_OK(gg_writer_add_tensor(gw, "q", GGML_TYPE_Q8_0, 2, ne_q, q8));
    CHECK_OK(gg_writer_write(gw, internal));
    gg_writer_free(gw);
    size_t na = 0, nb = 0;
    unsigned char *a = tu_read_file(pub, &na), *b = tu_read_file(internal, &nb);
    printf("public writer %zu bytes, internal writer %zu bytes\n", na, nb);
    CHECK(na == nb && memcmp(a, b, na) == 0, "public and internal writers differ (%zu vs %zu bytes)", na, nb);
    free(a);
    free(b);
    remove(internal);

    /* Read it back through the public reader. */
    steer_gguf *g = NULL;
    CHECK_OK(steer_gguf_open(pub, &g));
    CHECK(steer_gguf_n_tensors(g) == 5, "n_tensors %d", steer_gguf_n_tensors(g));
    CHECK(steer_gguf_n_keys(g) == 7, "n_keys %d", steer_gguf_n_keys(g));
    CHECK(steer_gguf_key(g, 1) && strcmp(steer_gguf_key(g, 1), "llama.block_count") == 0, "key 1 is %s",
          steer_gguf_key(g, 1) ? steer_gguf_key(g, 1) : "NULL");
    uint32_t u = 0;
    float f = 0;
    int bo = 0;
    const char *s = NULL;
    CHECK_OK(steer_gguf_get_u32(g, "llama.block_count", &u));
    CHECK_OK(steer_gguf_get_f32(g, "llama.rope.freq_base", &f));
    CHECK_OK(steer_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &bo));
    CHECK_OK(steer_gguf_get_str(g, "general.architecture", &s));
    CHECK(u == 3 && f == 10000.0f && bo == 1 && strcmp(s, "llama") == 0, "u32 %u f32 %g bool %d str %s", u,
          (double)f, bo, s);
    static const struct {
        const char *name;
        int type;
        const char *type_name;
        int n_dims;
        int64_t r, c;
        size_t nbytes;
        const void *data;
    } want[] = {
        {"w.f32", STEER_GGML_F32, "F32", 2, 3, 5, 60, NULL}, {"w.f16", STEER_GGML_F16, "F16", 2, 3, 5, 30, NULL},
        {"w.bf16", STEER_GGML_BF16, "BF16", 2, 3, 5, 30, NULL}, {"norm", STEER_GGML_F32, "F32", 1, 4, 0, 16, NULL},
        {"q", STEER_GGML_Q8_0, "Q8_0", 2, 2, 32, 68, NULL},
    };
    const void *src[5] = {w32, w16, wb16, norm, q8};
    uint64_t prev_end = 0;
    for (int i = 0; i < 5; i++) {
        steer_gguf_tensor_info ti;
        CHECK_OK(steer_gguf_tensor_at(g, i, &ti));
        printf("  %-7s %-5s n_dims %d [%lld, %lld] %zu bytes at %llu\n", ti.name, ti.type_name, ti.n_dims,
               (long long)ti.shape[0], (long long)ti.shape[1], ti.nbytes, (unsigned long long)ti.offset);
        CHECK(strcmp(ti.name, want[i].name) == 0 && ti.ggml_type == want[i].type &&
                  strcmp(ti.type_name, want[i].type_name) == 0 && ti.n_dims == want[i].n_dims,
              "tensor %d: %s %s %d", i, ti.name, ti.type_name, ti.n_dims);
        CHECK(ti.shape[0] == want[i].r && (ti.n_dims == 1 || ti.shape[1] == want[i].c), "tensor %d shape", i);
        CHECK(ti.nbytes == want[i].nbytes && memcmp(ti.data, src[i], ti.nbytes) == 0, "tensor %d data", i);
        CHECK(ti.offset % 32 == 0 && ti.offset >= prev_end, "tensor %d offset %llu", i,
              (unsigned long long)ti.offset);
        prev_end = ti.offset + ti.nbytes;
    }
    steer_gguf_tensor_info tf;
    CHECK_OK(steer_gguf_tensor_find(g, "w.bf16", &tf));
    CHECK(steer_bf16_to_f32(((const uint16_t *)tf.data)[14]) == 1.75f, "w.bf16[2][4] = %g",
          (double)steer_bf16_to_f32(((const uint16_t *)tf.data)[14]));
    steer_gguf_free(g);

    /* A write into a missing directory fails naming the path and leaves nothing. */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/no_such_dir/x.gguf", g_tmp);
    rc = steer_gguf_writer_write(w, bad);
    printf("write to a missing directory: %d %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EIO && strstr(steer_last_error(), "no_such_dir"), "rc %d: %s", rc, steer_last_error());
    steer_gguf_writer_free(w);
    steer_gguf_writer_free(NULL);
    CHECK(count_entries(g_tmp) == 1, "%d entries in %s (want public.gguf only)", count_entries(g_tmp), g_tmp);
    remove(pub);
    CHECK(steer_gguf_writer_new(NULL) == STEER_EARG, "writer_new(NULL)");
    CHECK(steer_gguf_writer_set_u32(NULL, "k", 1) == STEER_EARG, "set on a NULL writer");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *base = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/steer_test_gguf.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_tmp)) {
        fprintf(stderr, "FAIL: mkdtemp %s\n", g_tmp);
        return 1;
    }
    test_bf16();
    test_f16();
    test_reader();
    test_reader_errors();
    test_writer();
    rmdir(g_tmp);
    return tu_finish("test_gguf");
}

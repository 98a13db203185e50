/* cmd_make_random.c — `steer make-random`: a random-weight GGUF v3 "llama"
 * model with llama.cpp's tensor names and keys and a synthetic SentencePiece
 * vocabulary, so that it loads and generates (for tests and benchmarks). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- random numbers */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* Approximately normal values with standard deviation std: the sum of four
 * 16-bit uniforms (Irwin–Hall), centred and scaled. */
static void fill_row(float *row, int n, uint64_t state, float std)
{
    /* variance of one 16-bit uniform: (65536² − 1) / 12 */
    const float scale = std / 37837.23f;
    for (int i = 0; i < n; i++) {
        uint64_t r = splitmix64(&state);
        uint32_t s = (uint32_t)(r & 0xffff) + (uint32_t)((r >> 16) & 0xffff) + (uint32_t)((r >> 32) & 0xffff) +
                     (uint32_t)(r >> 48);
        row[i] = ((float)s - 131070.0f) * scale;
    }
}

/* ---------------------------------------------------------------- tensors */

typedef struct {
    char name[64];
    int ggml_type;
    int n_dims;
    int64_t shape[2]; /* row-major */
    void *data;
} rnd_tensor;

typedef struct {
    rnd_tensor *t;
    int n, cap;
    steer_dtype dtype;
    uint64_t seed;
} rnd_model;

static int ggml_type_of(steer_dtype dt)
{
    return dt == STEER_DTYPE_F16 ? STEER_GGML_F16 : dt == STEER_DTYPE_BF16 ? STEER_GGML_BF16 : STEER_GGML_F32;
}

/* A norm weight: [n] F32 of ones. */
static int add_norm(rnd_model *rm, const char *name, int n)
{
    rnd_tensor *t = &rm->t[rm->n];
    float *w = malloc((size_t)n * sizeof *w);
    if (!w)
        return cli_error("out of memory");
    for (int i = 0; i < n; i++)
        w[i] = 1.0f;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ggml_type = STEER_GGML_F32;
    t->n_dims = 1;
    t->shape[0] = n;
    t->data = w;
    rm->n++;
    return 0;
}

/* A matrix W [rows, cols] row-major (GGUF stores ne = [cols, rows]) in the model's
 * dtype; row r is drawn from its own stream so threads do not matter. */
static int add_matrix(rnd_model *rm, const char *name, int rows, int cols)
{
    rnd_tensor *t = &rm->t[rm->n];
    size_t esz = steer_dtype_size(rm->dtype);
    void *data = malloc((size_t)rows * (size_t)cols * esz);
    if (!data)
        return cli_error("out of memory (%s [%d, %d])", name, rows, cols);
    uint64_t tseed = rm->seed ^ hash_name(name);
    int failed = 0;
#pragma omp parallel
    {
        float *row = malloc((size_t)cols * sizeof *row);
        if (!row) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int r = 0; r < rows; r++) {
            if (!row)
                continue;
            uint64_t st = tseed + (uint64_t)r * 0xD1B54A32D192ED03ull;
            fill_row(row, cols, splitmix64(&st), 0.02f);
            size_t off = (size_t)r * (size_t)cols;
            if (rm->dtype == STEER_DTYPE_F32) {
                memcpy((float *)data + off, row, (size_t)cols * sizeof *row);
            } else {
                uint16_t *dst = (uint16_t *)data + off;
                for (int c = 0; c < cols; c++)
                    dst[c] = rm->dtype == STEER_DTYPE_F16 ? steer_f32_to_f16(row[c]) : steer_f32_to_bf16(row[c]);
            }
        }
        free(row);
    }
    if (failed) {
        free(data);
        return cli_error("out of memory");
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ggml_type = ggml_type_of(rm->dtype);
    t->n_dims = 2;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->data = data;
    rm->n++;
    return 0;
}

/* ---------------------------------------------------------------- vocabulary */

/* Token types as GGUF's tokenizer.ggml.token_type stores them (llama.cpp's
 * llama_token_type). */
enum { TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_BYTE = 6 };

/* "<unk>", "<s>", "</s>", the 256 byte pieces, then distinct fillers: every
 * string over {▁, a..z} in order of length (▁ = U+2581, SentencePiece's
 * space), so that every prefix of a filler is a token too. */
typedef struct {
    const char **tokens;
    float *scores;
    int32_t *types;
    char *pool;
} rnd_vocab;

static void vocab_free(rnd_vocab *v)
{
    free(v->tokens);
    free(v->scores);
    free(v->types);
    free(v->pool);
}

static int make_vocab(int n_vocab, rnd_vocab *v)
{
    static const char *const alphabet[27] = {"\xe2\x96\x81", "a", "b", "c", "d", "e", "f", "g", "h",
                                             "i", "j", "k", "l", "m", "n", "o", "p", "q",
                                             "r", "s", "t", "u", "v", "w", "x", "y", "z"};
    memset(v, 0, sizeof *v);
    v->tokens = calloc((size_t)n_vocab, sizeof *v->tokens);
    v->scores = calloc((size_t)n_vocab, sizeof *v->scores);
    v->types = calloc((size_t)n_vocab, sizeof *v->types);
    v->pool = malloc((size_t)n_vocab * 32);
    if (!v->tokens || !v->scores || !v->types || !v->pool) {
        vocab_free(v);
        return cli_error("out of memory");
    }
    char *p = v->pool;
    for (int i = 0; i < n_vocab; i++) {
        v->tokens[i] = p;
        if (i == 0) {
            p += sprintf(p, "<unk>") + 1;
            v->types[i] = TOKEN_UNKNOWN;
        } else if (i <= 2) {
            p += sprintf(p, i == 1 ? "<s>" : "</s>") + 1;
            v->types[i] = TOKEN_CONTROL;
        } else if (i < 3 + 256) {
            p += sprintf(p, "<0x%02X>", i - 3) + 1;
            v->types[i] = TOKEN_BYTE;
        } else {
            /* filler k: its length and digits in base 27 */
            int k = i - 259, len = 1, span = 27;
            while (k >= span) {
                k -= span;
                len++;
                span *= 27;
            }
            int digits[8];
            for (int d = len - 1; d >= 0; d--) {
                digits[d] = k % 27;
                k /= 27;
            }
            for (int d = 0; d < len; d++)
                p += sprintf(p, "%s", alphabet[digits[d]]);
            *p++ = '\0';
            v->types[i] = TOKEN_NORMAL;
            v->scores[i] = -(float)(i - 259);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- the command */

int cmd_make_random(int argc, char **argv)
{
    const char *out = NULL, *dtype_arg = "f32";
    int d = 2048, ff = 8192, heads = 32, kv_heads = 8, layers = 2, vocab = 32000, ctx = 2048, tied = 0;
    uint64_t seed = 1;
    const cli_opt opts[] = {
        {"-o", "--out", OPT_STR, &out, "FILE", "output .gguf (required)"},
        CLI_ALIAS("--output", OPT_STR, &out),
        {NULL, "--d", OPT_INT, &d, "N", "d_model (default 2048)"},
        {NULL, "--ff", OPT_INT, &ff, "N", "d_ff (default 8192)"},
        {NULL, "--heads", OPT_INT, &heads, "N", "attention heads (default 32)"},
        {NULL, "--kv-heads", OPT_INT, &kv_heads, "N", "key/value heads (default 8)"},
        {NULL, "--layers", OPT_INT, &layers, "N", "blocks (default 2)"},
        {NULL, "--vocab", OPT_INT, &vocab, "N", "vocabulary size, >= 259 (default 32000)"},
        {NULL, "--ctx", OPT_INT, &ctx, "N", "context_length (default 2048)"},
        {NULL, "--dtype", OPT_STR, &dtype_arg, "f32|f16|bf16", "dtype of the matrices (default f32)"},
        {NULL, "--tied", OPT_FLAG, &tied, NULL, "no output.weight: the head is the token embedding"},
        {NULL, "--seed", OPT_U64, &seed, "S", "weights seed (default 1)"},
    };
    const cli_spec spec = {
        .usage = "steer make-random -o FILE [--d N --ff N --heads N --kv-heads N --layers N --vocab N --ctx N "
                 "--dtype f32|f16|bf16 --seed S]",
        .description = "Writes a GGUF v3 llama model with random weights (deterministic from --seed,\n"
                       "roughly normal with std 0.02; norms = 1, kept F32) and a synthetic\n"
                       "SentencePiece vocabulary (<unk>, <s>, </s>, 256 byte pieces, fillers).",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer make-random -o random-d2048.gguf --d 2048 --ff 8192 --heads 32 --kv-heads 8 --layers 2\n"
                   "  steer make-random -o tiny.gguf --d 64 --ff 172 --heads 8 --kv-heads 4 --layers 2 --vocab 512",
        .min_pos = 0,
        .max_pos = 0,
        .pos = NULL,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!out)
        return cli_usage("missing -o FILE");
    steer_dtype dtype;
    if (steer_dtype_parse(dtype_arg, &dtype) != STEER_OK || steer_dtype_is_quantized(dtype))
        return cli_usage("--dtype must be f32, f16 or bf16, got '%s'", dtype_arg);
    if (d <= 0 || ff <= 0 || heads <= 0 || kv_heads <= 0 || layers <= 0 || ctx <= 0)
        return cli_usage("sizes must be positive");
    if (d % heads || heads % kv_heads || (d / heads) % 2)
        return cli_usage("need d %% heads == 0, heads %% kv-heads == 0 and an even head_dim (d %d, heads %d, "
                         "kv-heads %d)", d, heads, kv_heads);
    if (vocab < 259)
        return cli_usage("--vocab must be >= 259 (3 special + 256 byte tokens), got %d", vocab);
    int head_dim = d / heads, d_kv = kv_heads * head_dim;

    rnd_model rm = {NULL, 0, 0, dtype, seed};
    rnd_vocab voc;
    memset(&voc, 0, sizeof voc);
    rm.cap = 3 + 9 * layers;
    rm.t = calloc((size_t)rm.cap, sizeof *rm.t);
    if (!rm.t)
        return cli_error("out of memory");
    char name[64];
    rc = add_matrix(&rm, "token_embd.weight", vocab, d);
    for (int l = 0; !rc && l < layers; l++) {
        static const struct {
            const char *suffix;
            int kind; /* 0 norm d, 1 [d,d], 2 [d_kv,d], 3 [ff,d], 4 [d,ff] */
        } blk[] = {{"attn_norm", 0}, {"attn_q", 1},   {"attn_k", 2},   {"attn_v", 2},    {"attn_output", 1},
                   {"ffn_norm", 0},  {"ffn_gate", 3}, {"ffn_up", 3},   {"ffn_down", 4}};
        for (size_t i = 0; !rc && i < sizeof blk / sizeof blk[0]; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, blk[i].suffix);
            switch (blk[i].kind) {
            case 0: rc = add_norm(&rm, name, d); break;
            case 1: rc = add_matrix(&rm, name, d, d); break;
            case 2: rc = add_matrix(&rm, name, d_kv, d); break;
            case 3: rc = add_matrix(&rm, name, ff, d); break;
            default: rc = add_matrix(&rm, name, d, ff); break;
            }
        }
    }
    if (!rc)
        rc = add_norm(&rm, "output_norm.weight", d);
    if (!rc && !tied)
        rc = add_matrix(&rm, "output.weight", vocab, d);
    if (!rc)
        rc = make_vocab(vocab, &voc);

    steer_gguf_writer *w = NULL;
    if (!rc && steer_gguf_writer_new(&w) != STEER_OK)
        rc = cli_lib_error();
    if (!rc) {
        uint32_t file_type = dtype == STEER_DTYPE_F16 ? 1 : dtype == STEER_DTYPE_BF16 ? 32 : 0;
        int bad = steer_gguf_writer_set_str(w, "general.architecture", "llama") ||
                  steer_gguf_writer_set_str(w, "general.name", "steer-random") ||
                  steer_gguf_writer_set_u32(w, "general.file_type", file_type) ||
                  steer_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)layers) ||
                  steer_gguf_writer_set_u32(w, "llama.context_length", (uint32_t)ctx) ||
                  steer_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)d) ||
                  steer_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)ff) ||
                  steer_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)heads) ||
                  steer_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)kv_heads) ||
                  steer_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f) ||
                  steer_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f) ||
                  steer_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)head_dim) ||
                  steer_gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)vocab) ||
                  steer_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama") ||
                  steer_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", voc.tokens, vocab) ||
                  steer_gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", voc.scores, vocab) ||
                  steer_gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", voc.types, vocab) ||
                  steer_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1) ||
                  steer_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2) ||
                  steer_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0) ||
                  steer_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1) ||
                  steer_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0);
        for (int i = 0; !bad && i < rm.n; i++)
            bad = steer_gguf_writer_add_tensor(w, rm.t[i].name, rm.t[i].ggml_type, rm.t[i].n_dims,
                                               rm.t[i].shape, rm.t[i].data) != STEER_OK;
        if (bad || steer_gguf_writer_write(w, out) != STEER_OK)
            rc = cli_lib_error();
    }
    if (w)
        steer_gguf_writer_free(w);
    vocab_free(&voc);
    for (int i = 0; i < rm.n; i++)
        free(rm.t[i].data);
    free(rm.t);
    return rc;
}

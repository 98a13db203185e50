/*
 * model.c — loading models (llama2.c checkpoints, GGUF "llama"), the site
 * table, the tokenizer wrappers and the head.
 */
#include "model.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------- sites */

static const char *const site_names[STEER_SITE_COUNT] = {
    "resid_pre", "attn_out", "resid_mid", "mlp_in", "mlp_gate", "mlp_up", "mlp_act", "mlp_out", "resid_post",
};

const char *steer_site_name(steer_site s)
{
    return (unsigned)s < STEER_SITE_COUNT ? site_names[s] : "unknown";
}

int steer_site_parse(const char *name, steer_site *out)
{
    for (int i = 0; i < STEER_SITE_COUNT; i++) {
        if (name && strcmp(name, site_names[i]) == 0) {
            *out = (steer_site)i;
            return STEER_OK;
        }
    }
    return steer_err(STEER_EARG,
                     "unknown site '%s' (sites: resid_pre, attn_out, resid_mid, mlp_in, mlp_gate, mlp_up, "
                     "mlp_act, mlp_out, resid_post)",
                     name ? name : "(null)");
}

int steer_model_site_width(const steer_model *m, steer_site s)
{
    if (s == STEER_SITE_MLP_GATE || s == STEER_SITE_MLP_UP || s == STEER_SITE_MLP_ACT) return m->cfg.d_ff;
    return m->cfg.d_model;
}

/* ---------------------------------------------------------------- params */

steer_model_params steer_model_default_params(void)
{
    steer_model_params p = {0};
    return p;
}

const steer_model_config *steer_model_get_config(const steer_model *m) { return &m->cfg; }

static int64_t count_params(const steer_model *m)
{
    const steer_model_config *c = &m->cfg;
    int64_t d = c->d_model, hd = c->head_dim;
    int64_t per_layer = 2 * d + d * c->n_head * hd * 2 + 2 * d * c->n_kv_head * hd + 3 * d * c->d_ff;
    int64_t n = (int64_t)c->n_vocab * d + c->n_layer * per_layer + d;
    if (!c->tied_embeddings) n += (int64_t)c->n_vocab * d;
    return n;
}

/* Checks the hyper-parameters every loader must satisfy. */
static int check_config(const char *path, const steer_model_config *c)
{
    if (c->n_layer <= 0 || c->d_model <= 0 || c->n_head <= 0 || c->n_kv_head <= 0 || c->d_ff <= 0 ||
        c->n_vocab <= 0 || c->head_dim <= 0 || c->n_ctx_train <= 0)
        return steer_err(STEER_EFORMAT, "%s: invalid hyper-parameters (non-positive size)", path);
    if (c->n_layer > 4096 || c->d_model > 1 << 16 || c->d_ff > 1 << 20 || c->n_vocab > 1 << 22 ||
        c->n_head > 1024 || c->n_ctx_train > 1 << 24)
        return steer_err(STEER_EFORMAT, "%s: invalid hyper-parameters (implausibly large)", path);
    if (c->n_head % c->n_kv_head != 0)
        return steer_err(STEER_EFORMAT, "%s: %d heads is not a multiple of %d KV heads", path, c->n_head,
                         c->n_kv_head);
    if (c->head_dim % 2 != 0) return steer_err(STEER_EFORMAT, "%s: head_dim %d is odd", path, c->head_dim);
    return STEER_OK;
}

/* ---------------------------------------------------------------- llama2.c */

/* Legacy llama2.c checkpoint: 7 int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size (negative = separate classifier), seq_len), then f32
 * weights in the order of run.c's memory_map_weights. */
static int load_llama2c(steer_model *m, const char *path, const steer_model_params *p)
{
    int rc = io_map_open(path, &m->map);
    if (rc) return rc;
    const uint8_t *base = m->map.data;
    size_t size = m->map.size;
    if (size < 7 * sizeof(int32_t))
        return steer_err(STEER_EFORMAT, "%s: truncated (%zu bytes, header needs 28)", path, size);
    if (memcmp(base, "ak42", 4) == 0)
        return steer_err(STEER_EUNSUPPORTED, "%s: llama2.c version-2 export ('ak42'); use the legacy format or GGUF",
                         path);
    int32_t h[7];
    memcpy(h, base, sizeof h);
    steer_model_config *c = &m->cfg;
    c->arch = STEER_ARCH_LLAMA;
    c->arch_name = "llama";
    c->format = "llama2c";
    c->d_model = h[0];
    c->d_ff = h[1];
    c->n_layer = h[2];
    c->n_head = h[3];
    c->n_kv_head = h[4];
    c->tied_embeddings = h[5] > 0;
    c->n_vocab = h[5] > 0 ? h[5] : (h[5] == INT_MIN ? 0 : -h[5]);
    c->n_ctx_train = h[6];
    c->head_dim = c->n_head > 0 ? c->d_model / c->n_head : 0;
    c->rope_theta = 10000.0f;
    c->rms_eps = 1e-5f;
    c->weight_dtype = STEER_DTYPE_F32;
    if (check_config(path, c) || c->d_model % c->n_head != 0)
        return steer_err(STEER_EFORMAT, "%s: not a llama2.c checkpoint (bad header: dim %d, hidden %d, layers %d, "
                         "heads %d, kv heads %d, vocab %d, seq_len %d)",
                         path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    const int64_t d = c->d_model, L = c->n_layer, kv = (int64_t)c->n_kv_head * c->head_dim, ff = c->d_ff,
                  V = c->n_vocab, hs = c->head_dim;
    int64_t n_floats = V * d + L * d + L * d * d + 2 * L * kv * d + L * d * d + L * d + 3 * L * ff * d + d +
                       c->n_ctx_train * hs; /* freq_cis real + imag, each seq_len*hs/2 */
    if (!c->tied_embeddings) n_floats += V * d;
    size_t need = 28 + (size_t)n_floats * 4;
    if (size != need)
        return steer_err(STEER_EFORMAT, "%s: %s (%zu bytes, the header implies %zu)", path,
                         size < need ? "truncated" : "trailing bytes after the weights", size, need);

    const float *w = (const float *)(base + 28);
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->layers) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
#define MAT(rows_, cols_) ((steer_mat){.data = w, .dtype = STEER_DTYPE_F32, .rows = (int)(rows_), .cols = (int)(cols_)})
    m->tok_embd = MAT(V, d);
    w += V * d;
    for (int l = 0; l < L; l++) m->layers[l].attn_norm = w + l * d;
    w += L * d;
    for (int l = 0; l < L; l++) { m->layers[l].wq = MAT(d, d); w += d * d; }
    for (int l = 0; l < L; l++) { m->layers[l].wk = MAT(kv, d); w += kv * d; }
    for (int l = 0; l < L; l++) { m->layers[l].wv = MAT(kv, d); w += kv * d; }
    for (int l = 0; l < L; l++) { m->layers[l].wo = MAT(d, d); w += d * d; }
    for (int l = 0; l < L; l++) m->layers[l].ffn_norm = w + l * d;
    w += L * d;
    for (int l = 0; l < L; l++) { m->layers[l].w_gate = MAT(ff, d); w += ff * d; }
    for (int l = 0; l < L; l++) { m->layers[l].w_down = MAT(d, ff); w += d * ff; }
    for (int l = 0; l < L; l++) { m->layers[l].w_up = MAT(ff, d); w += ff * d; }
    m->out_norm = w;
    w += d;
    w += c->n_ctx_train * hs; /* freq_cis_real, freq_cis_imag: unused */
    m->output = c->tied_embeddings ? m->tok_embd : MAT(V, d);
#undef MAT
    m->rope = ROPE_ADJACENT;

    /* tokenizer: explicit, or tokenizer.bin / tok<V>.bin beside the model */
    if (p && p->tokenizer_path) return tok_load_llama2c(p->tokenizer_path, c->n_vocab, &m->tok);
    char dir[4096], cand[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0; else dir[0] = 0;
    const char *names[2] = {"tokenizer.bin", NULL};
    char tokv[32];
    snprintf(tokv, sizeof tokv, "tok%d.bin", c->n_vocab);
    names[1] = tokv;
    for (int i = 0; i < 2; i++) {
        struct stat st;
        snprintf(cand, sizeof cand, "%s%s", dir, names[i]);
        if (stat(cand, &st) == 0) return tok_load_llama2c(cand, c->n_vocab, &m->tok);
    }
    return steer_err(STEER_EIO, "%s: no tokenizer found (looked for tokenizer.bin and %s beside it; pass one with -z)",
                     path, tokv);
}

/* ---------------------------------------------------------------- GGUF */

static int ggml_to_dtype(int t, steer_dtype *out)
{
    switch (t) {
    case GGML_TYPE_F32: *out = STEER_DTYPE_F32; return 1;
    case GGML_TYPE_F16: *out = STEER_DTYPE_F16; return 1;
    case GGML_TYPE_BF16: *out = STEER_DTYPE_BF16; return 1;
    default: return 0;
    }
}

/* Finds tensor name with ggml dims [cols, rows] (rows == 0: a vector [cols]). */
static int gguf_tensor_checked(const gguf_file *f, const char *name, int64_t rows, int64_t cols,
                               const gguf_tensor **out)
{
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return steer_err(STEER_EFORMAT, "%s: missing tensor %s", gguf_path(f), name);
    int ok = rows ? (t->n_dims == 2 && (int64_t)t->ne[0] == cols && (int64_t)t->ne[1] == rows)
                  : (t->n_dims == 1 && (int64_t)t->ne[0] == cols);
    if (!ok)
        return steer_err(STEER_EFORMAT, "%s: tensor %s has %d dims [%llu, %llu], expected [%lld, %lld]",
                         gguf_path(f), name, t->n_dims, (unsigned long long)t->ne[0],
                         (unsigned long long)(t->n_dims > 1 ? t->ne[1] : 1), (long long)cols,
                         (long long)(rows ? rows : 1));
    steer_dtype dt;
    if (!ggml_to_dtype(t->type, &dt))
        return steer_err(STEER_EUNSUPPORTED, "%s: tensor %s has ggml type %d (supported: F32, F16, BF16)",
                         gguf_path(f), name, t->type);
    *out = t;
    return STEER_OK;
}

static int gguf_mat(const gguf_file *f, const char *name, int64_t rows, int64_t cols, steer_mat *out)
{
    const gguf_tensor *t;
    int rc = gguf_tensor_checked(f, name, rows, cols, &t);
    if (rc) return rc;
    ggml_to_dtype(t->type, &out->dtype);
    out->data = t->data;
    out->rows = (int)rows;
    out->cols = (int)cols;
    return STEER_OK;
}

/* Norm vectors are used as f32; others are converted into m->owned at slot. */
static int gguf_vec(steer_model *m, const char *name, int64_t n, float *slot, const float **out)
{
    const gguf_tensor *t;
    int rc = gguf_tensor_checked(m->gguf, name, 0, n, &t);
    if (rc) return rc;
    steer_dtype dt = STEER_DTYPE_F32;
    ggml_to_dtype(t->type, &dt);
    if (dt == STEER_DTYPE_F32) {
        *out = t->data;
    } else {
        ops_to_f32(slot, t->data, dt, (size_t)n);
        *out = slot;
    }
    return STEER_OK;
}

static int gguf_u32_or(const gguf_file *f, const char *key, uint32_t dflt, uint32_t *out)
{
    if (!gguf_has_key(f, key)) { *out = dflt; return STEER_OK; }
    return gguf_get_u32(f, key, out);
}

static int load_gguf(steer_model *m, const char *path)
{
    int rc = gguf_open(path, &m->gguf);
    if (rc) return rc;
    gguf_file *f = m->gguf;
    const char *arch;
    if ((rc = gguf_get_str(f, "general.architecture", &arch))) return rc;
    if (strcmp(arch, "llama") != 0)
        return steer_err(STEER_EUNSUPPORTED, "%s: architecture '%s' is not supported yet (supported: llama)", path,
                         arch);
    steer_model_config *c = &m->cfg;
    c->arch = STEER_ARCH_LLAMA;
    c->arch_name = "llama";
    c->format = "gguf";
    uint32_t u;
    float fv;
#define U32(key, field) do { if ((rc = gguf_get_u32(f, key, &u))) return rc; c->field = (int)u; } while (0)
    U32("llama.block_count", n_layer);
    U32("llama.embedding_length", d_model);
    U32("llama.feed_forward_length", d_ff);
    U32("llama.attention.head_count", n_head);
    U32("llama.context_length", n_ctx_train);
#undef U32
    if ((rc = gguf_u32_or(f, "llama.attention.head_count_kv", (uint32_t)c->n_head, &u))) return rc;
    c->n_kv_head = (int)u;
    if ((rc = gguf_u32_or(f, "llama.attention.key_length", c->n_head ? (uint32_t)(c->d_model / c->n_head) : 0, &u)))
        return rc;
    c->head_dim = (int)u;
    c->rope_theta = 10000.0f;
    if (gguf_has_key(f, "llama.rope.freq_base")) {
        if ((rc = gguf_get_f32(f, "llama.rope.freq_base", &fv))) return rc;
        c->rope_theta = fv;
    }
    c->rms_eps = 1e-5f;
    if (gguf_has_key(f, "llama.attention.layer_norm_rms_epsilon")) {
        if ((rc = gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &fv))) return rc;
        c->rms_eps = fv;
    }
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb || emb->n_dims != 2) return steer_err(STEER_EFORMAT, "%s: missing or malformed token_embd.weight", path);
    c->n_vocab = (int)emb->ne[1];
    if ((rc = check_config(path, c))) return rc;
    if ((rc = gguf_u32_or(f, "llama.rope.dimension_count", (uint32_t)c->head_dim, &u))) return rc;
    if ((int)u != c->head_dim)
        return steer_err(STEER_EUNSUPPORTED, "%s: partial RoPE (rope.dimension_count %u, head_dim %d)", path, u,
                         c->head_dim);
    if (gguf_has_key(f, "llama.rope.scaling.type")) {
        const char *st;
        if (gguf_get_str(f, "llama.rope.scaling.type", &st) == STEER_OK && strcmp(st, "none") != 0)
            return steer_err(STEER_EUNSUPPORTED, "%s: RoPE scaling '%s' is not supported yet", path, st);
    }

    const int64_t d = c->d_model, L = c->n_layer, hd = c->head_dim, qd = (int64_t)c->n_head * hd,
                  kv = (int64_t)c->n_kv_head * hd, ff = c->d_ff, V = c->n_vocab;
    m->owned = malloc((size_t)(2 * L + 1) * d * sizeof(float));
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->owned || !m->layers) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    if ((rc = gguf_mat(f, "token_embd.weight", V, d, &m->tok_embd))) return rc;
    char name[128];
    for (int l = 0; l < L; l++) {
        model_layer *ly = &m->layers[l];
#define NAME(suffix) (snprintf(name, sizeof name, "blk.%d." suffix, l), name)
        if ((rc = gguf_vec(m, NAME("attn_norm.weight"), d, m->owned + (2 * l) * d, &ly->attn_norm))) return rc;
        if ((rc = gguf_vec(m, NAME("ffn_norm.weight"), d, m->owned + (2 * l + 1) * d, &ly->ffn_norm))) return rc;
        if ((rc = gguf_mat(f, NAME("attn_q.weight"), qd, d, &ly->wq))) return rc;
        if ((rc = gguf_mat(f, NAME("attn_k.weight"), kv, d, &ly->wk))) return rc;
        if ((rc = gguf_mat(f, NAME("attn_v.weight"), kv, d, &ly->wv))) return rc;
        if ((rc = gguf_mat(f, NAME("attn_output.weight"), d, qd, &ly->wo))) return rc;
        if ((rc = gguf_mat(f, NAME("ffn_gate.weight"), ff, d, &ly->w_gate))) return rc;
        if ((rc = gguf_mat(f, NAME("ffn_up.weight"), ff, d, &ly->w_up))) return rc;
        if ((rc = gguf_mat(f, NAME("ffn_down.weight"), d, ff, &ly->w_down))) return rc;
#undef NAME
    }
    if ((rc = gguf_vec(m, "output_norm.weight", d, m->owned + 2 * L * d, &m->out_norm))) return rc;
    if (gguf_find_tensor(f, "output.weight")) {
        if ((rc = gguf_mat(f, "output.weight", V, d, &m->output))) return rc;
        c->tied_embeddings = 0;
    } else {
        m->output = m->tok_embd;
        c->tied_embeddings = 1;
    }
    c->weight_dtype = m->layers[0].wq.dtype;
    m->rope = ROPE_ADJACENT; /* convert_hf_to_gguf permutes q/k rows for this */
    return tok_load_gguf(f, &m->tok);
}

/* ---------------------------------------------------------------- load/free */

int steer_model_load(const char *path, const steer_model_params *params, steer_model **out)
{
    *out = NULL;
    if (!path) return steer_err(STEER_EARG, "no model path given");
    steer_model *m = calloc(1, sizeof *m);
    if (!m) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    io_map probe;
    int rc = io_map_open(path, &probe);
    if (rc) { free(m); return rc; }
    int is_gguf = probe.size >= 4 && memcmp(probe.data, "GGUF", 4) == 0;
    io_map_close(&probe);
    size_t plen = strlen(path);
    if (!is_gguf && plen >= 5 && strcmp(path + plen - 5, ".gguf") == 0) {
        free(m);
        return steer_err(STEER_EFORMAT, "%s: not a GGUF file (bad magic)", path);
    }
    rc = is_gguf ? load_gguf(m, path) : load_llama2c(m, path, params);
    if (rc == STEER_OK && tok_n_vocab(m->tok) != m->cfg.n_vocab)
        rc = steer_err(STEER_EFORMAT, "%s: tokenizer has %d tokens but the model's vocabulary is %d", path,
                       tok_n_vocab(m->tok), m->cfg.n_vocab);
    if (rc) {
        steer_model_free(m);
        return rc;
    }
    m->cfg.n_params = count_params(m);
    *out = m;
    return STEER_OK;
}

void steer_model_free(steer_model *m)
{
    if (!m) return;
    tok_free(m->tok);
    free(m->layers);
    free(m->owned);
    gguf_close(m->gguf);
    io_map_close(&m->map);
    free(m);
}

/* ---------------------------------------------------------------- head */

int steer_model_unembed(const steer_model *m, const float *h, int n, float *logits)
{
    const int d = m->cfg.d_model;
    float *tmp = malloc((size_t)n * d * sizeof(float));
    if (!tmp) return steer_err(STEER_ENOMEM, "unembed: out of memory");
    ops_rmsnorm(tmp, h, m->out_norm, n, d, m->cfg.rms_eps);
    ops_matmul(logits, tmp, &m->output, n);
    free(tmp);
    return STEER_OK;
}

/* ---------------------------------------------------------------- tokenizer */

int steer_vocab_size(const steer_model *m) { return m->cfg.n_vocab; }
int steer_token_bos(const steer_model *m) { return tok_bos(m->tok); }
int steer_token_eos(const steer_model *m) { return tok_eos(m->tok); }

int steer_tokenize(const steer_model *m, const char *text, int add_bos, int *tokens, int max_tokens, int *n_tokens)
{
    return tok_encode(m->tok, text, add_bos, tokens, max_tokens, n_tokens);
}

int steer_tokenize_ex(const steer_model *m, const char *text, int flags, int *tokens, int max_tokens,
                      int *n_tokens)
{
    return tok_encode_ex(m->tok, text, flags, tokens, max_tokens, n_tokens);
}

const char *steer_token_piece(const steer_model *m, int prev, int token, size_t *len)
{
    return tok_piece(m->tok, prev, token, len);
}

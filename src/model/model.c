/*
 * model.c — loading models (llama2.c checkpoints, GGUF "llama"), the site
 * table, the tokenizer wrappers and the head.
 */
#include "model.h"
#include "quant.h"

#include <float.h>
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

static const char *const act_names[STEER_ACT_COUNT] = {"silu", "gelu_tanh", "gelu", "relu", "tanh", "none"};

const char *steer_act_name(steer_act a) { return (unsigned)a < STEER_ACT_COUNT ? act_names[a] : "?"; }

int steer_act_parse(const char *name, steer_act *out)
{
    for (int i = 0; i < STEER_ACT_COUNT; i++)
        if (name && strcmp(name, act_names[i]) == 0) {
            *out = (steer_act)i;
            return STEER_OK;
        }
    return steer_err(STEER_EARG, "unknown activation '%s' (silu, gelu_tanh, gelu, relu, tanh, none)",
                     name ? name : "(null)");
}

/* TransformerLens hook names (inside blocks.L.) whose meaning is the site's
 * (docs/VECTORS.md §1): TL's gated MLP computes hook_pre = W_gate·x,
 * hook_pre_linear = W_in·x, hook_post = act(pre)·pre_linear. */
static const struct {
    const char *tl;
    steer_site site;
} tl_names[] = {
    {"hook_resid_pre", STEER_SITE_RESID_PRE},   {"hook_attn_out", STEER_SITE_ATTN_OUT},
    {"hook_resid_mid", STEER_SITE_RESID_MID},   {"mlp.hook_pre", STEER_SITE_MLP_GATE},
    {"mlp.hook_pre_linear", STEER_SITE_MLP_UP}, {"mlp.hook_post", STEER_SITE_MLP_ACT},
    {"hook_mlp_out", STEER_SITE_MLP_OUT},       {"hook_resid_post", STEER_SITE_RESID_POST},
};

int steer_site_parse(const char *name, steer_site *out)
{
    for (int i = 0; i < STEER_SITE_COUNT; i++) {
        if (name && strcmp(name, site_names[i]) == 0) {
            *out = (steer_site)i;
            return STEER_OK;
        }
    }
    for (size_t i = 0; name && i < sizeof tl_names / sizeof tl_names[0]; i++) {
        if (strcmp(name, tl_names[i].tl) == 0) {
            *out = tl_names[i].site;
            return STEER_OK;
        }
    }
    return steer_err(STEER_EARG,
                     "unknown site '%s' (sites: resid_pre, attn_out, resid_mid, mlp_in, mlp_gate, mlp_up, "
                     "mlp_act, mlp_out, resid_post)",
                     name ? name : "(null)");
}

int steer_hook_name_parse(const char *name, steer_site *site, int *layer)
{
    if (!name || !site || !layer) return steer_err(STEER_EARG, "steer_hook_name_parse: NULL argument");
    *layer = -1;
    if (strncmp(name, "blocks.", 7) == 0) {
        const char *p = name + 7;
        long v = 0;
        int nd = 0;
        while (*p >= '0' && *p <= '9' && nd < 9) v = v * 10 + (*p++ - '0'), nd++;
        if (nd == 0 || *p != '.')
            return steer_err(STEER_EARG, "hook name '%s': expected blocks.<layer>.<hook>", name);
        steer_site s;
        if (steer_site_parse(p + 1, &s) != STEER_OK) return steer_err(STEER_EARG, "hook name '%s': unknown hook '%s'", name, p + 1);
        *site = s;
        *layer = (int)v;
        return STEER_OK;
    }
    return steer_site_parse(name, site);
}

int steer_model_layer_is_sliding(const steer_model *m, int layer)
{
    return layer >= 0 && layer < m->cfg.n_layer && m->layers[layer].sliding;
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
    int64_t qd = (int64_t)c->n_head * hd, kv = (int64_t)c->n_kv_head * hd;
    int64_t per_layer = 2 * d + d * qd * 2 + 2 * d * kv + 3 * d * c->d_ff;
    if (c->sandwich_norms) per_layer += 2 * d;
    if (c->qk_norm) per_layer += 2 * hd;
    if (c->qkv_bias) per_layer += qd + 2 * kv;
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

/* RoPE frequency scaling read from a config. */
typedef struct {
    float linear_factor;    /* 1 = none                                      */
    int llama3;             /* llama3 scaling                               */
    float l3_factor, l3_low, l3_high;
    int l3_orig_ctx;
    const float *freq_factors; /* [hd/2] divide inv_freq by these, or NULL   */
} rope_scaling;
static void config_defaults(steer_model *m);
static int setup_rope(steer_model *m, const rope_scaling *sc);

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
    m->arch = arch_get(STEER_ARCH_LLAMA);
    config_defaults(m);
    c->act = STEER_ACT_SILU;
    c->attn_scale = 1.0f / sqrtf((float)c->head_dim);
    c->rope_theta_local = c->rope_theta;
    rope_scaling sc = {.linear_factor = 1.0f};
    if ((rc = setup_rope(m, &sc))) return rc;

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

/* ---------------------------------------------------------------- tensor sources */

/* GGUF and HF directories behind one lookup. */
typedef struct {
    const char *path;
    hf_dir *hf;     /* one of the two */
    gg_file *gguf;
} tsrc;

typedef struct {
    const void *data;
    steer_dtype dtype;
    int n_dims;
    int64_t rows, cols; /* row-major; a vector has rows = 0 */
} tview;

/* F32, F16, BF16 and the block-quantized types (quant.h). */
static int ggml_to_dtype(int t, steer_dtype *out) { return q_from_ggml_type((uint32_t)t, out) == 0; }

/* 1 found, 0 missing, < 0 error (unsupported dtype or rank). */
static int src_find(const tsrc *s, const char *name, tview *out)
{
    if (s->gguf) {
        const gg_tensor *t = gg_find_tensor(s->gguf, name);
        if (!t) return 0;
        if (!ggml_to_dtype(t->type, &out->dtype))
            return steer_err(STEER_EUNSUPPORTED, "%s: tensor %s has ggml type %d (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K … Q6_K)", s->path,
                             name, t->type);
        if (t->n_dims > 2) return steer_err(STEER_EFORMAT, "%s: tensor %s has %d dims", s->path, name, t->n_dims);
        out->data = t->data;
        out->n_dims = t->n_dims;
        out->cols = (int64_t)t->ne[0];
        out->rows = t->n_dims == 2 ? (int64_t)t->ne[1] : 0;
        return 1;
    }
    const steer_tensor_info *t = hf_find(s->hf, name);
    if (!t) return 0;
    if (t->dtype != STEER_DTYPE_F32 && t->dtype != STEER_DTYPE_F16 && t->dtype != STEER_DTYPE_BF16)
        return steer_err(STEER_EUNSUPPORTED, "%s: tensor %s has dtype %s (supported: F32, F16, BF16)", s->path, name,
                         steer_dtype_name(t->dtype));
    if (t->n_dims < 1 || t->n_dims > 2) return steer_err(STEER_EFORMAT, "%s: tensor %s has %d dims", s->path, name, t->n_dims);
    out->data = t->data;
    out->dtype = t->dtype;
    out->n_dims = t->n_dims;
    out->rows = t->n_dims == 2 ? t->shape[0] : 0;
    out->cols = t->n_dims == 2 ? t->shape[1] : t->shape[0];
    return 1;
}

/* A matrix [rows, cols] by role. */
static int bind_mat(steer_model *m, const tsrc *s, weight_role r, int layer, int64_t rows, int64_t cols, steer_mat *out)
{
    char name[160];
    arch_tensor_name(m->arch, s->gguf != NULL, r, layer, name, sizeof name);
    tview v;
    int rc = src_find(s, name, &v);
    if (rc < 0) return rc;
    if (rc == 0) return steer_err(STEER_EFORMAT, "%s: missing tensor %s", s->path, name);
    if (v.n_dims != 2 || v.rows != rows || v.cols != cols)
        return steer_err(STEER_EFORMAT, "%s: tensor %s has shape [%lld, %lld], expected [%lld, %lld] (row-major)", s->path,
                         name, (long long)(v.n_dims == 2 ? v.rows : 1), (long long)v.cols, (long long)rows,
                         (long long)cols);
    *out = (steer_mat){.data = v.data, .dtype = v.dtype, .rows = (int)rows, .cols = (int)cols};
    return STEER_OK;
}

/* Carves n floats from the model's owned buffer (sized at load). */
static float *owned_alloc(steer_model *m, size_t n)
{
    if (m->n_owned + n > m->cap_owned) return NULL;
    float *p = m->owned + m->n_owned;
    m->n_owned += n;
    return p;
}

/* A vector [n] by role, converted to f32 in owned memory; HF norms of
 * (1 + w) families get the 1 added here. */
static int bind_vec(steer_model *m, const tsrc *s, weight_role r, int layer, int64_t n, const float **out)
{
    char name[160];
    arch_tensor_name(m->arch, s->gguf != NULL, r, layer, name, sizeof name);
    tview v;
    int rc = src_find(s, name, &v);
    if (rc < 0) return rc;
    if (rc == 0) return steer_err(STEER_EFORMAT, "%s: missing tensor %s", s->path, name);
    if (v.n_dims != 1 || v.cols != n)
        return steer_err(STEER_EFORMAT, "%s: tensor %s has shape [%lld%s], expected [%lld]", s->path, name,
                         (long long)(v.n_dims == 2 ? v.rows : v.cols), v.n_dims == 2 ? ", …" : "", (long long)n);
    float *dst = owned_alloc(m, (size_t)n);
    if (!dst) return steer_err(STEER_ENOMEM, "%s: internal: owned buffer too small", s->path);
    ops_to_f32(dst, v.data, v.dtype, (size_t)n);
    if (s->hf && m->arch->norm_plus_one && weight_is_norm(r))
        for (int64_t i = 0; i < n; i++) dst[i] = 1.0f + dst[i];
    *out = dst;
    return STEER_OK;
}

/* Binds every weight once the config is known. */
static int bind_weights(steer_model *m, const tsrc *s)
{
    steer_model_config *c = &m->cfg;
    const arch_info *a = m->arch;
    const int64_t d = c->d_model, L = c->n_layer, hd = c->head_dim, qd = (int64_t)c->n_head * hd,
                  kv = (int64_t)c->n_kv_head * hd, ff = c->d_ff, V = c->n_vocab;
    m->cap_owned = (size_t)(L * (4 * d + 2 * hd + qd + 2 * kv) + d);
    m->owned = malloc(m->cap_owned * sizeof(float));
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->owned || !m->layers) return steer_err(STEER_ENOMEM, "%s: out of memory", s->path);
    int rc;
    if ((rc = bind_mat(m, s, W_TOK_EMBD, 0, V, d, &m->tok_embd))) return rc;
    for (int l = 0; l < L; l++) {
        model_layer *ly = &m->layers[l];
        if ((rc = bind_vec(m, s, W_ATTN_NORM, l, d, &ly->attn_norm))) return rc;
        if ((rc = bind_mat(m, s, W_Q, l, qd, d, &ly->wq))) return rc;
        if ((rc = bind_mat(m, s, W_K, l, kv, d, &ly->wk))) return rc;
        if ((rc = bind_mat(m, s, W_V, l, kv, d, &ly->wv))) return rc;
        if ((rc = bind_mat(m, s, W_O, l, d, qd, &ly->wo))) return rc;
        if (a->qkv_bias) {
            if ((rc = bind_vec(m, s, W_Q_BIAS, l, qd, &ly->bq))) return rc;
            if ((rc = bind_vec(m, s, W_K_BIAS, l, kv, &ly->bk))) return rc;
            if ((rc = bind_vec(m, s, W_V_BIAS, l, kv, &ly->bv))) return rc;
        }
        if (a->qk_norm) {
            if ((rc = bind_vec(m, s, W_Q_NORM, l, hd, &ly->q_norm))) return rc;
            if ((rc = bind_vec(m, s, W_K_NORM, l, hd, &ly->k_norm))) return rc;
        }
        if (a->sandwich_norms) {
            if ((rc = bind_vec(m, s, W_POST_ATTN_NORM, l, d, &ly->post_attn_norm))) return rc;
            if ((rc = bind_vec(m, s, W_POST_FFN_NORM, l, d, &ly->post_ffn_norm))) return rc;
        }
        if ((rc = bind_vec(m, s, W_FFN_NORM, l, d, &ly->ffn_norm))) return rc;
        if ((rc = bind_mat(m, s, W_GATE, l, ff, d, &ly->w_gate))) return rc;
        if ((rc = bind_mat(m, s, W_UP, l, ff, d, &ly->w_up))) return rc;
        if ((rc = bind_mat(m, s, W_DOWN, l, d, ff, &ly->w_down))) return rc;
    }
    if ((rc = bind_vec(m, s, W_OUT_NORM, 0, d, &m->out_norm))) return rc;
    char name[160];
    arch_tensor_name(a, s->gguf != NULL, W_OUTPUT, 0, name, sizeof name);
    tview v;
    if ((rc = src_find(s, name, &v)) < 0) return rc;
    if (rc == 1 && !c->tied_embeddings) {
        if ((rc = bind_mat(m, s, W_OUTPUT, 0, V, d, &m->output))) return rc;
    } else {
        if (rc == 0 && s->hf && !c->tied_embeddings)
            return steer_err(STEER_EFORMAT, "%s: missing tensor %s (tie_word_embeddings is false)", s->path, name);
        m->output = m->tok_embd;
        c->tied_embeddings = 1;
    }
    c->weight_dtype = m->layers[0].wq.dtype;
    return STEER_OK;
}

/* Inverse RoPE frequencies for global and sliding layers: theta^(-2i/hd),
 * then the scaling (linear factor, llama3 smooth scaling, or per-frequency
 * factors from GGUF rope_freqs.weight). */


static int setup_rope(steer_model *m, const rope_scaling *sc)
{
    const int hd = m->cfg.head_dim, half = hd / 2;
    m->rope_freq = malloc((size_t)2 * half * sizeof(double));
    if (!m->rope_freq) return steer_err(STEER_ENOMEM, "out of memory");
    for (int k = 0; k < 2; k++) {
        double theta = k == 0 ? m->cfg.rope_theta : m->cfg.rope_theta_local;
        for (int i = 0; i < half; i++) {
            double inv = pow(theta, -2.0 * i / hd);
            if (k == 0) {
                if (sc->freq_factors) inv /= sc->freq_factors[i];
                if (sc->llama3) {
                    double low_wl = sc->l3_orig_ctx / sc->l3_low, high_wl = sc->l3_orig_ctx / sc->l3_high;
                    double wl = 2 * M_PI / inv;
                    if (wl > low_wl) {
                        inv /= sc->l3_factor;
                    } else if (wl >= high_wl) {
                        double smooth = (sc->l3_orig_ctx / wl - sc->l3_low) / (sc->l3_high - sc->l3_low);
                        inv = (1 - smooth) * inv / sc->l3_factor + smooth * inv;
                    }
                }
                inv /= sc->linear_factor;
            }
            m->rope_freq[k * half + i] = inv;
        }
    }
    return STEER_OK;
}

/* Per-layer sliding flags. pattern > 0: layer l slides unless (l+1) % pattern
 * == 0 (Gemma 3); pattern == -2: even layers slide (Gemma 2); pattern == -1:
 * every layer (Mistral with a window). */
static void set_sliding(steer_model *m, int pattern)
{
    for (int l = 0; l < m->cfg.n_layer; l++) {
        int sl = 0;
        if (m->cfg.sliding_window > 0) {
            if (pattern > 0) sl = (l + 1) % pattern != 0;
            else if (pattern == -2) sl = l % 2 == 0;
            else if (pattern == -1) sl = 1;
        }
        m->layers[l].sliding = sl;
    }
}

/* Defaults every loader shares once arch and sizes are known. */
static void config_defaults(steer_model *m)
{
    steer_model_config *c = &m->cfg;
    c->arch = m->arch->arch;
    c->arch_name = m->arch->name;
    c->embed_scale = m->arch->embed_scale_sqrt_d ? sqrtf((float)c->d_model) : 1.0f;
    c->sandwich_norms = m->arch->sandwich_norms;
    c->qk_norm = m->arch->qk_norm;
    c->qkv_bias = m->arch->qkv_bias;
}

/* ---------------------------------------------------------------- GGUF */

static int gguf_u32_or(const gg_file *f, const char *key, uint32_t dflt, uint32_t *out)
{
    if (!gg_has_key(f, key)) { *out = dflt; return STEER_OK; }
    return gg_get_u32(f, key, out);
}

static int gguf_f32_or(const gg_file *f, const char *key, float dflt, float *out)
{
    if (!gg_has_key(f, key)) { *out = dflt; return STEER_OK; }
    return gg_get_f32(f, key, out);
}

static int load_gguf(steer_model *m, const char *path)
{
    int rc = gg_open(path, &m->gguf);
    if (rc) return rc;
    gg_file *f = m->gguf;
    const char *arch;
    if ((rc = gg_get_str(f, "general.architecture", &arch))) return rc;
    m->arch = arch_by_gguf(arch);
    if (!m->arch || m->arch->arch == STEER_ARCH_MISTRAL)
        return steer_err(STEER_EUNSUPPORTED, "%s: architecture '%s' is not supported (supported: llama, qwen2, gemma, "
                         "gemma2, gemma3)", path, arch);
    steer_model_config *c = &m->cfg;
    c->format = "gguf";
    char key[128];
    uint32_t u;
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
#define U32(suffix, field) do { if ((rc = gg_get_u32(f, KEY(suffix), &u))) return rc; c->field = (int)u; } while (0)
    U32("block_count", n_layer);
    U32("embedding_length", d_model);
    U32("feed_forward_length", d_ff);
    U32("attention.head_count", n_head);
    U32("context_length", n_ctx_train);
#undef U32
    if ((rc = gguf_u32_or(f, KEY("attention.head_count_kv"), (uint32_t)c->n_head, &u))) return rc;
    c->n_kv_head = (int)u;
    if ((rc = gguf_u32_or(f, KEY("attention.key_length"), c->n_head ? (uint32_t)(c->d_model / c->n_head) : 0, &u)))
        return rc;
    c->head_dim = (int)u;
    if ((rc = gguf_f32_or(f, KEY("rope.freq_base"), 10000.0f, &c->rope_theta))) return rc;
    if ((rc = gguf_f32_or(f, KEY("attention.layer_norm_rms_epsilon"), 1e-5f, &c->rms_eps))) return rc;
    const gg_tensor *emb = gg_find_tensor(f, "token_embd.weight");
    if (!emb || emb->n_dims != 2) return steer_err(STEER_EFORMAT, "%s: missing or malformed token_embd.weight", path);
    c->n_vocab = (int)emb->ne[1];
    if ((rc = check_config(path, c))) return rc;
    if ((rc = gguf_u32_or(f, KEY("rope.dimension_count"), (uint32_t)c->head_dim, &u))) return rc;
    if ((int)u != c->head_dim)
        return steer_err(STEER_EUNSUPPORTED, "%s: partial RoPE (rope.dimension_count %u, head_dim %d)", path, u,
                         c->head_dim);
    rope_scaling sc = {.linear_factor = 1.0f};
    if (gg_has_key(f, KEY("rope.scaling.type"))) {
        const char *st;
        if ((rc = gg_get_str(f, key, &st))) return rc;
        if (strcmp(st, "linear") == 0) {
            if ((rc = gguf_f32_or(f, KEY("rope.scaling.factor"), 1.0f, &sc.linear_factor))) return rc;
        } else if (strcmp(st, "none") != 0) {
            return steer_err(STEER_EUNSUPPORTED, "%s: RoPE scaling '%s' is not supported", path, st);
        }
    }
    config_defaults(m);
    c->act = m->arch->default_act;
    c->attn_scale = 1.0f / sqrtf((float)c->head_dim);
    if ((rc = gguf_f32_or(f, KEY("attn_logit_softcapping"), 0.0f, &c->attn_softcap))) return rc;
    if ((rc = gguf_f32_or(f, KEY("final_logit_softcapping"), 0.0f, &c->final_softcap))) return rc;
    if ((rc = gguf_u32_or(f, KEY("attention.sliding_window"), 0, &u))) return rc;
    c->sliding_window = m->arch->arch == STEER_ARCH_GEMMA2 || m->arch->arch == STEER_ARCH_GEMMA3 ? (int)u : 0;
    c->rope_theta_local = m->arch->arch == STEER_ARCH_GEMMA3 ? 10000.0f : c->rope_theta; /* as llama.cpp */
    /* llama.cpp's attention scale for the 27B Gemma 2/3 is (d/n_head)^-½ */
    if ((m->arch->arch == STEER_ARCH_GEMMA2 && c->n_layer == 46) || (m->arch->arch == STEER_ARCH_GEMMA3 && c->n_layer == 62))
        c->attn_scale = 1.0f / sqrtf((float)c->d_model / c->n_head);
    if ((rc = gguf_f32_or(f, KEY("attention.scale"), c->attn_scale, &c->attn_scale))) return rc;
#undef KEY
    const gg_tensor *ff = gg_find_tensor(f, "rope_freqs.weight");
    float *factors = NULL;
    if (ff) {
        if (ff->type != GGML_TYPE_F32 || ff->n_dims != 1 || (int)ff->ne[0] != c->head_dim / 2)
            return steer_err(STEER_EFORMAT, "%s: rope_freqs.weight must be F32 [%d]", path, c->head_dim / 2);
        sc.freq_factors = factors = malloc((size_t)c->head_dim / 2 * sizeof(float));
        if (!factors) return steer_err(STEER_ENOMEM, "out of memory");
        memcpy(factors, ff->data, (size_t)c->head_dim / 2 * sizeof(float));
    }
    c->tied_embeddings = gg_find_tensor(f, "output.weight") == NULL;
    tsrc s = {.path = path, .gguf = f};
    rc = bind_weights(m, &s);
    if (!rc) rc = setup_rope(m, &sc);
    free(factors);
    if (rc) return rc;
    set_sliding(m, m->arch->arch == STEER_ARCH_GEMMA2 ? -2 : 6);
    m->rope = m->arch->gguf_permute_qk ? ROPE_ADJACENT : ROPE_HALF;
    return tok_load_gguf(f, &m->tok);
}

/* ---------------------------------------------------------------- Hugging Face */

static int load_hf(steer_model *m, const char *path)
{
    int rc = hf_open(path, &m->hf);
    if (rc) return rc;
    hf_dir *h = m->hf;
    const char *root = hf_path(h);
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(hf_config(h), "architectures");
    const char *cls = NULL, *type = NULL;
    if (cJSON_IsArray(archs) && cJSON_IsString(cJSON_GetArrayItem(archs, 0)))
        cls = cJSON_GetArrayItem(archs, 0)->valuestring;
    if ((rc = hf_cfg_str(h, "model_type", 0, &type))) return rc;
    m->arch = arch_by_hf(cls, type);
    if (!m->arch)
        return steer_err(STEER_EUNSUPPORTED, "%s/config.json: unsupported architecture '%s' (supported: %s)", root,
                         cls ? cls : type ? type : "(none)", arch_supported_list());
    steer_model_config *c = &m->cfg;
    c->format = "hf";
    if ((rc = hf_cfg_int(h, "hidden_size", 1, &c->d_model))) return rc;
    if ((rc = hf_cfg_int(h, "intermediate_size", 1, &c->d_ff))) return rc;
    if ((rc = hf_cfg_int(h, "num_hidden_layers", 1, &c->n_layer))) return rc;
    if ((rc = hf_cfg_int(h, "num_attention_heads", 1, &c->n_head))) return rc;
    if ((rc = hf_cfg_int(h, "vocab_size", 1, &c->n_vocab))) return rc;
    c->n_kv_head = c->n_head;
    if ((rc = hf_cfg_int(h, "num_key_value_heads", 0, &c->n_kv_head))) return rc;
    c->head_dim = c->n_head > 0 ? c->d_model / c->n_head : 0;
    if ((rc = hf_cfg_int(h, "head_dim", 0, &c->head_dim))) return rc;
    c->n_ctx_train = 2048;
    if ((rc = hf_cfg_int(h, "max_position_embeddings", 0, &c->n_ctx_train))) return rc;
    c->rms_eps = 1e-6f;
    if ((rc = hf_cfg_float(h, "rms_norm_eps", 0, &c->rms_eps))) return rc;
    c->rope_theta = 10000.0f;
    if ((rc = hf_cfg_float(h, "rope_theta", 0, &c->rope_theta))) return rc;
    c->tied_embeddings = m->arch->tied_default;
    if ((rc = hf_cfg_bool(h, "tie_word_embeddings", 0, &c->tied_embeddings))) return rc;
    if ((rc = check_config(root, c))) return rc;
    config_defaults(m);

    /* activation: Gemma reads hidden_activation (HF falls back to the tanh
     * approximation when it is absent), the others hidden_act */
    const char *act = NULL;
    int is_gemma = m->arch->norm_plus_one;
    if (is_gemma) {
        if ((rc = hf_cfg_str(h, "hidden_activation", 0, &act))) return rc;
    } else if ((rc = hf_cfg_str(h, "hidden_act", 0, &act))) {
        return rc;
    }
    c->act = m->arch->default_act;
    if (act) {
        if (strcmp(act, "silu") == 0 || strcmp(act, "swish") == 0) c->act = STEER_ACT_SILU;
        else if (strcmp(act, "gelu_pytorch_tanh") == 0 || strcmp(act, "gelu_new") == 0) c->act = STEER_ACT_GELU_TANH;
        else if (strcmp(act, "gelu") == 0) c->act = STEER_ACT_GELU;
        else return steer_err(STEER_EUNSUPPORTED, "%s/config.json: hidden activation '%s' is not supported (silu, "
                              "gelu_pytorch_tanh, gelu)", root, act);
    }
    c->attn_scale = 1.0f / sqrtf((float)c->head_dim);
    if (m->arch->sandwich_norms) {
        float qs = (float)c->head_dim;
        if ((rc = hf_cfg_float(h, "query_pre_attn_scalar", 0, &qs))) return rc;
        if (!(qs > 0)) return steer_err(STEER_EFORMAT, "%s/config.json: query_pre_attn_scalar must be > 0", root);
        c->attn_scale = 1.0f / sqrtf(qs);
        if ((rc = hf_cfg_float(h, "attn_logit_softcapping", 0, &c->attn_softcap))) return rc;
        if ((rc = hf_cfg_float(h, "final_logit_softcapping", 0, &c->final_softcap))) return rc;
    }
    int pattern = 0;
    if (m->arch->arch == STEER_ARCH_GEMMA2 || m->arch->arch == STEER_ARCH_GEMMA3 ||
        m->arch->arch == STEER_ARCH_MISTRAL) {
        if ((rc = hf_cfg_int(h, "sliding_window", 0, &c->sliding_window))) return rc;
        pattern = m->arch->arch == STEER_ARCH_GEMMA2 ? -2 : m->arch->arch == STEER_ARCH_GEMMA3 ? 6 : -1;
        if (m->arch->arch == STEER_ARCH_GEMMA3 && (rc = hf_cfg_int(h, "sliding_window_pattern", 0, &pattern))) return rc;
    }
    c->rope_theta_local = c->rope_theta;
    if (m->arch->arch == STEER_ARCH_GEMMA3) {
        c->rope_theta_local = 10000.0f;
        if ((rc = hf_cfg_float(h, "rope_local_base_freq", 0, &c->rope_theta_local))) return rc;
    }
    rope_scaling sc = {.linear_factor = 1.0f};
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(hf_config(h), "rope_scaling");
    if (cJSON_IsObject(rs)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(rs, "type");
        const char *ty = cJSON_IsString(t) ? t->valuestring : "";
        const cJSON *fct = cJSON_GetObjectItemCaseSensitive(rs, "factor");
        double factor = cJSON_IsNumber(fct) ? fct->valuedouble : 1.0;
        /* (float) of a double beyond FLT_MAX is undefined; 0 would divide the frequencies by 0 */
        if ((strcmp(ty, "linear") == 0 || strcmp(ty, "llama3") == 0) && !(factor > 0 && factor <= FLT_MAX))
            return steer_err(STEER_EFORMAT, "%s/config.json: rope_scaling factor %g must be positive and finite", root,
                             factor);
        if (strcmp(ty, "linear") == 0) {
            sc.linear_factor = (float)factor;
        } else if (strcmp(ty, "llama3") == 0) {
            const cJSON *lo = cJSON_GetObjectItemCaseSensitive(rs, "low_freq_factor");
            const cJSON *hi = cJSON_GetObjectItemCaseSensitive(rs, "high_freq_factor");
            const cJSON *oc = cJSON_GetObjectItemCaseSensitive(rs, "original_max_position_embeddings");
            if (!cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) || !cJSON_IsNumber(oc) || !cJSON_IsNumber(fct))
                return steer_err(STEER_EFORMAT, "%s/config.json: rope_scaling llama3 needs factor, low_freq_factor, "
                                 "high_freq_factor and original_max_position_embeddings", root);
            if (!(lo->valuedouble > 0 && lo->valuedouble < hi->valuedouble && hi->valuedouble <= FLT_MAX) ||
                oc->valueint <= 0)
                return steer_err(STEER_EFORMAT, "%s/config.json: rope_scaling llama3 needs 0 < low_freq_factor < "
                                 "high_freq_factor and original_max_position_embeddings > 0", root);
            sc.llama3 = 1;
            sc.l3_factor = (float)factor;
            sc.l3_low = (float)lo->valuedouble;
            sc.l3_high = (float)hi->valuedouble;
            sc.l3_orig_ctx = oc->valueint;
        } else if (strcmp(ty, "default") != 0) {
            return steer_err(STEER_EUNSUPPORTED, "%s/config.json: rope_scaling type '%s' is not supported (linear, "
                             "llama3)", root, ty);
        }
    }
    tsrc s = {.path = root, .hf = h};
    if ((rc = bind_weights(m, &s))) return rc;
    if ((rc = setup_rope(m, &sc))) return rc;
    set_sliding(m, pattern);
    /* Gemma 3 configs may list layer_types explicitly */
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(hf_config(h), "layer_types");
    if (cJSON_IsArray(lt) && cJSON_GetArraySize(lt) == c->n_layer && c->sliding_window > 0)
        for (int l = 0; l < c->n_layer; l++) {
            const cJSON *e = cJSON_GetArrayItem(lt, l);
            m->layers[l].sliding = cJSON_IsString(e) && strcmp(e->valuestring, "sliding_attention") == 0;
        }
    m->rope = ROPE_HALF;
    return tok_load_hf(root, &m->tok);
}

/* ---------------------------------------------------------------- load/free */

int steer_model_load(const char *path, const steer_model_params *params, steer_model **out)
{
    *out = NULL;
    if (!path) return steer_err(STEER_EARG, "no model path given");
    steer_model *m = calloc(1, sizeof *m);
    if (!m) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    struct stat st;
    int rc;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = load_hf(m, path);
        goto loaded;
    }
    io_map probe;
    rc = io_map_open(path, &probe);
    if (rc) { free(m); return rc; }
    int is_gguf = probe.size >= 4 && memcmp(probe.data, "GGUF", 4) == 0;
    io_map_close(&probe);
    size_t plen = strlen(path);
    if (!is_gguf && plen >= 5 && strcmp(path + plen - 5, ".gguf") == 0) {
        free(m);
        return steer_err(STEER_EFORMAT, "%s: not a GGUF file (bad magic)", path);
    }
    rc = is_gguf ? load_gguf(m, path) : load_llama2c(m, path, params);
loaded:
    /* Real checkpoints pad the embedding past the tokenizer (Phi-3: 32,011 vs
     * 32,064; Qwen2.5: 151,665 vs 151,936); more tokens than rows is an error. */
    if (rc == STEER_OK && tok_n_vocab(m->tok) > m->cfg.n_vocab)
        rc = steer_err(STEER_EFORMAT, "%s: tokenizer has %d tokens but the model's embedding has only %d rows", path,
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
    free(m->rope_freq);
    gg_close(m->gguf);
    hf_close(m->hf);
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
    if (m->cfg.final_softcap > 0.0f) ops_softcap(logits, (size_t)n * m->cfg.n_vocab, m->cfg.final_softcap);
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

int steer_tokenize_alloc(const steer_model *m, const char *text, int add_bos, int **tokens, int *n_tokens)
{
    *tokens = NULL;
    int cap = (int)strlen(text) + 8; /* enough unless a piece is shorter than a byte */
    for (;;) {
        int *buf = malloc((size_t)cap * sizeof *buf);
        if (!buf) return steer_err(STEER_ENOMEM, "tokenize: out of memory");
        int rc = steer_tokenize(m, text, add_bos, buf, cap, n_tokens);
        if (rc == STEER_OK) {
            *tokens = buf;
            return STEER_OK;
        }
        free(buf);
        if (rc != STEER_EARG || *n_tokens <= cap) return rc;
        cap = *n_tokens;
    }
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

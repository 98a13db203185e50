/*
 * convert.c — model format conversion (Hugging Face directory, GGUF,
 * llama2.c checkpoint) and random-weight models (steer_make_model).
 *
 * A conversion loads IN with steer_model_load (so the configuration is parsed
 * and checked once, by the loader), collects every weight tensor by role as
 * IN stores it (cv_set), and hands the set to one writer per format. Formats
 * differ in two conventions, which the writers translate on the way out:
 *   - q/k row order inside each head: Hugging Face rotates the pairs
 *     (i, i + hd/2) ("half"); llama.cpp's converter permutes the q/k rows of
 *     the llama family so that pairs are adjacent (2i, 2i+1), which is also
 *     llama2.c's order. Within each head, adjacent row 2i+s = half row
 *     s·hd/2 + i.
 *   - Gemma-family norm weights: Hugging Face stores w (the norm scales by
 *     1 + w), llama.cpp's GGUF stores 1 + w, computed in float32.
 * Every other tensor is copied bit for bit (or converted to the requested
 * dtype; norms and biases are always F32).
 *
 * Quantizing (GGUF output only): a block type for every matrix, or one of
 * llama-quantize's mixes (a llama.cpp file type: Q4_K_M, …) whose
 * per-tensor rules, taken from llama.cpp's llama_tensor_get_type, choose
 * each matrix's type (cv_mix_type). Rows are quantized with ggml's reference
 * quantizers (quant.c), so a matrix gets the bytes llama-quantize (without an
 * importance matrix) writes for it. A quantized input tensor is dequantized
 * exactly first, unless it already has the target type (then copied, as
 * llama-quantize does).
 *
 * Every output is written under a temporary name, loaded back with
 * steer_model_load and its configuration compared with the input's (sizes,
 * hyper-parameters, sliding layers, RoPE frequencies, special tokens), and
 * only then renamed into place; on any failure nothing is left behind.
 */
#include "model.h"
#include "quant.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest output path accepted; temporary names add a suffix of < 64 bytes
 * and buffers hold 4200+. */
#define CV_PATH_MAX 4000

/* ---------------------------------------------------------------- the tensor set */

typedef struct {
    const void *data;   /* NULL: absent                                        */
    steer_dtype dtype;
    int64_t rows, cols; /* row-major; rows = 0 for a vector [cols]             */
} cv_tensor;

/* A model as a set of tensors by role plus what the writers need to know.
 * Ownership: t, sliding and every pointer in owned[] belong to the set
 * (cv_free); tensor data, tok, hf_rope_scaling, rope_freq_ref and l2c_freq
 * are borrowed from the input model (which outlives the set) unless they are
 * listed in owned[]. */
typedef struct {
    const arch_info *arch;
    steer_model_config cfg;      /* sizes and hyper-parameters as loaded        */
    uint8_t *sliding;            /* [n_layer] 1 = sliding-window layer          */
    cv_tensor *t;                /* [(n_layer + 1) * W_COUNT]; globals last     */
    rope_style order;            /* q/k row order of the data                   */
    int norm_eff;                /* norm_plus_one archs: data holds 1 + w       */
    float rope_linear;           /* linear RoPE scaling factor, 1 = none        */
    const float *rope_factors;   /* [hd/2] per-frequency divisors, or NULL      */
    const cJSON *hf_rope_scaling; /* HF input: its rope_scaling object         */
    const double *rope_freq_ref; /* [2, hd/2] inverse frequencies to reproduce  */
    const float *l2c_freq;       /* llama2.c input: freq_cis [2, n_ctx, hd/2]   */
    const tokenizer *tok;
    char name[256];              /* general.name                                */
    int in_ftype;                /* GGUF input: its general.file_type, else -1  */
    void **owned;
    int n_owned, cap_owned;
} cv_set;

static cv_tensor *cv_at(const cv_set *s, weight_role r, int layer)
{
    int row = weight_is_layer(r) ? layer : s->cfg.n_layer;
    return &s->t[(size_t)row * W_COUNT + r];
}

/* malloc'd memory owned by the set (freed by cv_free or cv_release). */
static void *cv_alloc(cv_set *s, size_t bytes)
{
    if (s->n_owned == s->cap_owned) {
        int cap = s->cap_owned ? s->cap_owned * 2 : 64;
        void **p = realloc(s->owned, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        s->owned = p;
        s->cap_owned = cap;
    }
    void *b = malloc(bytes ? bytes : 1);
    if (b) s->owned[s->n_owned++] = b;
    return b;
}

/* Frees the owned buffers allocated after the first `mark` of them. */
static void cv_release(cv_set *s, int mark)
{
    while (s->n_owned > mark) free(s->owned[--s->n_owned]);
}

static void cv_free(cv_set *s)
{
    cv_release(s, 0);
    free(s->owned);
    free(s->t);
    free(s->sliding);
    memset(s, 0, sizeof *s);
}

static int cv_init(cv_set *s, const arch_info *a, const steer_model_config *c)
{
    memset(s, 0, sizeof *s);
    s->arch = a;
    s->cfg = *c;
    s->rope_linear = 1.0f;
    s->in_ftype = -1;
    s->t = calloc((size_t)(c->n_layer + 1) * W_COUNT, sizeof *s->t);
    s->sliding = calloc((size_t)c->n_layer, 1);
    if (!s->t || !s->sliding) return steer_err(STEER_ENOMEM, "convert: out of memory");
    return STEER_OK;
}

static int any_sliding(const cv_set *s)
{
    for (int l = 0; l < s->cfg.n_layer; l++)
        if (s->sliding[l]) return 1;
    return 0;
}

static const char *act_name(steer_act a)
{
    return a == STEER_ACT_SILU ? "silu" : a == STEER_ACT_GELU_TANH ? "gelu_pytorch_tanh" : "gelu";
}

/* Number of rows (heads × head_dim) a q/k tensor is permuted over. */
static int role_heads(const cv_set *s, weight_role r)
{
    return r == W_Q || r == W_Q_BIAS ? s->cfg.n_head : s->cfg.n_kv_head;
}

static int role_permutes(weight_role r) { return r == W_Q || r == W_K || r == W_Q_BIAS || r == W_K_BIAS; }

/* ---------------------------------------------------------------- reading the input */

/* F32, F16, BF16 and the block types (quant.h). */
static int dtype_of_ggml(int t, steer_dtype *out) { return t >= 0 && q_from_ggml_type((uint32_t)t, out) == 0; }

/* A tensor of an HF or GGUF input by name (the loader has checked shapes). */
static int read_named(const steer_model *m, const char *name, cv_tensor *out)
{
    if (m->gguf) {
        const gg_tensor *t = gg_find_tensor(m->gguf, name);
        if (!t) return steer_err(STEER_EFORMAT, "%s: missing tensor %s", gg_path(m->gguf), name);
        if (!dtype_of_ggml(t->type, &out->dtype))
            return steer_err(STEER_EUNSUPPORTED, "%s: tensor %s has unsupported ggml type %d", gg_path(m->gguf), name,
                             t->type);
        if (t->n_dims > 2)
            return steer_err(STEER_EUNSUPPORTED, "%s: tensor %s has %d dims", gg_path(m->gguf), name, t->n_dims);
        out->data = t->data;
        out->cols = (int64_t)t->ne[0];
        out->rows = t->n_dims == 2 ? (int64_t)t->ne[1] : 0;
        return STEER_OK;
    }
    const steer_tensor_info *t = hf_find(m->hf, name);
    if (!t) return steer_err(STEER_EFORMAT, "%s: missing tensor %s", hf_path(m->hf), name);
    if (t->n_dims < 1 || t->n_dims > 2)
        return steer_err(STEER_EFORMAT, "%s: tensor %s has %d dims", hf_path(m->hf), name, t->n_dims);
    out->data = t->data;
    out->dtype = t->dtype;
    out->rows = t->n_dims == 2 ? t->shape[0] : 0;
    out->cols = t->n_dims == 2 ? t->shape[1] : t->shape[0];
    return STEER_OK;
}

/* A tensor of a llama2.c input: its matrices and norm vectors point at the
 * raw float32 data of the mapping. */
static void read_view(const steer_model *m, weight_role r, int l, cv_tensor *out)
{
    const steer_model_config *c = &m->cfg;
    const steer_mat *mat = NULL;
    const float *vec = NULL;
    const model_layer *ly = weight_is_layer(r) ? &m->layers[l] : NULL;
    switch (r) {
    case W_TOK_EMBD: mat = &m->tok_embd; break;
    case W_OUTPUT: mat = &m->output; break;
    case W_OUT_NORM: vec = m->out_norm; break;
    case W_ATTN_NORM: vec = ly->attn_norm; break;
    case W_FFN_NORM: vec = ly->ffn_norm; break;
    case W_Q: mat = &ly->wq; break;
    case W_K: mat = &ly->wk; break;
    case W_V: mat = &ly->wv; break;
    case W_O: mat = &ly->wo; break;
    case W_GATE: mat = &ly->w_gate; break;
    case W_UP: mat = &ly->w_up; break;
    case W_DOWN: mat = &ly->w_down; break;
    default: break; /* llama2.c holds the llama architecture only */
    }
    if (mat) *out = (cv_tensor){mat->data, mat->dtype, mat->rows, mat->cols};
    else if (vec) *out = (cv_tensor){vec, STEER_DTYPE_F32, 0, c->d_model};
}

/* The input's RoPE scaling: a linear factor, or per-frequency divisors. */
static int read_rope_scaling(cv_set *s, const steer_model *m)
{
    const steer_model_config *c = &m->cfg;
    const int half = c->head_dim / 2;
    if (m->gguf) {
        const char *ga = NULL;
        char key[160];
        if (gg_get_str(m->gguf, "general.architecture", &ga)) return STEER_EFORMAT;
        snprintf(key, sizeof key, "%s.rope.scaling.type", ga);
        if (gg_has_key(m->gguf, key)) {
            const char *ty = NULL;
            if (gg_get_str(m->gguf, key, &ty)) return STEER_EFORMAT;
            if (strcmp(ty, "linear") == 0) {
                snprintf(key, sizeof key, "%s.rope.scaling.factor", ga);
                if (gg_has_key(m->gguf, key) && gg_get_f32(m->gguf, key, &s->rope_linear)) return STEER_EFORMAT;
            }
        }
        const gg_tensor *ff = gg_find_tensor(m->gguf, "rope_freqs.weight");
        if (ff) s->rope_factors = ff->data; /* the loader checked F32 [hd/2] */
        return STEER_OK;
    }
    if (!m->hf) return STEER_OK; /* llama2.c: none */
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(hf_config(m->hf), "rope_scaling");
    if (!cJSON_IsObject(rs)) return STEER_OK;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!cJSON_IsString(ty)) ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
    const char *t = cJSON_IsString(ty) ? ty->valuestring : "";
    if (strcmp(t, "default") == 0) return STEER_OK;
    s->hf_rope_scaling = rs;
    if (strcmp(t, "linear") == 0) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(rs, "factor");
        s->rope_linear = cJSON_IsNumber(f) ? (float)f->valuedouble : 1.0f;
        return STEER_OK;
    }
    /* llama3-style smooth scaling: the divisors the loader applied, for GGUF
     * (rope_freqs.weight, as llama.cpp's converter stores them) */
    float *fac = cv_alloc(s, (size_t)half * sizeof *fac);
    if (!fac) return steer_err(STEER_ENOMEM, "convert: out of memory");
    for (int i = 0; i < half; i++)
        fac[i] = (float)(pow(c->rope_theta, -2.0 * i / c->head_dim) / m->rope_freq[i]);
    s->rope_factors = fac;
    return STEER_OK;
}

/* Collects the loaded model's tensors, as stored in its file. */
static int cv_from_model(cv_set *s, const steer_model *m, const char *in)
{
    int rc = cv_init(s, m->arch, &m->cfg);
    if (rc) return rc;
    const steer_model_config *c = &m->cfg;
    for (int l = 0; l < c->n_layer; l++) s->sliding[l] = (uint8_t)m->layers[l].sliding;
    s->order = m->rope;
    s->norm_eff = m->hf == NULL;
    s->tok = m->tok;
    s->rope_freq_ref = m->rope_freq;
    if (!m->hf && !m->gguf) s->l2c_freq = m->out_norm + c->d_model; /* the tables follow rms_final */
    if ((rc = read_rope_scaling(s, m))) return rc;

    const char *base = strrchr(in, '/');
    base = base && base[1] ? base + 1 : in;
    snprintf(s->name, sizeof s->name, "%s", base);
    char *dot = strrchr(s->name, '.');
    if (dot && dot != s->name && !m->hf) *dot = 0;
    const char *gname = NULL;
    if (m->gguf && gg_has_key(m->gguf, "general.name") && gg_get_str(m->gguf, "general.name", &gname) == STEER_OK)
        snprintf(s->name, sizeof s->name, "%s", gname);
    uint32_t ft = 0;
    if (m->gguf && gg_has_key(m->gguf, "general.file_type") && gg_get_u32(m->gguf, "general.file_type", &ft) == STEER_OK &&
        ft < 1024)
        s->in_ftype = (int)ft;

    for (int l = -1; l < c->n_layer; l++) {
        for (int r = 0; r < W_COUNT; r++) {
            if ((l < 0) == weight_is_layer((weight_role)r)) continue;
            if (!arch_has_weight(m->arch, (weight_role)r) || (r == W_OUTPUT && c->tied_embeddings)) continue;
            cv_tensor *t = cv_at(s, (weight_role)r, l < 0 ? 0 : l);
            if (m->hf || m->gguf) {
                char name[160];
                arch_tensor_name(m->arch, m->gguf != NULL, (weight_role)r, l < 0 ? 0 : l, name, sizeof name);
                if ((rc = read_named(m, name, t))) return rc;
            } else {
                read_view(m, (weight_role)r, l < 0 ? 0 : l, t);
            }
        }
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- transforms */

/* Source row of output row `ro` of a q/k tensor permuted between the half
 * (HF) and adjacent (GGUF llama, llama2.c) RoPE orders. */
static int64_t perm_src_row(int64_t ro, int hd, int to_adjacent)
{
    int64_t h = ro / hd, j = ro % hd, half = hd / 2;
    int64_t src = to_adjacent ? (j % 2) * half + j / 2 /* j = 2i + s  <- s·half + i */
                              : 2 * (j % half) + j / half; /* j = s·half + i <- 2i + s */
    return h * hd + src;
}

/* dst[0..n) = n elements of type t widened to float32 (exact; block types as
 * ggml dequantizes them). */
static void to_f32(float *dst, const void *src, steer_dtype t, size_t n)
{
    if (q_is_quantized(t)) q_dequant_row(t, src, dst, n);
    else ops_to_f32(dst, src, t, n);
}

/* The tensor of role r in an output's conventions: matrices in dtype
 * `want` (-1: as stored; the caller resolves block types a format cannot
 * hold), vectors F32, q/k rows in `order`, Gemma-family norms as 1 + w
 * (eff = 1) or w (eff = 0). A row changes type through float32: widened
 * exactly (dequantized), then narrowed (rounded, or quantized with ggml's
 * reference quantizer); a row that keeps its type is copied. *out aliases
 * the input when nothing changes, else points at a buffer owned by the set. */
static int cv_emit(cv_set *s, weight_role r, int layer, int want, rope_style order, int eff, cv_tensor *out)
{
    cv_tensor vin = *cv_at(s, r, layer);
    const cv_tensor *in = &vin;
    *out = *in;
    if (!in->data) return STEER_OK;
    const int is_vec = in->rows == 0;
    if (is_vec && in->dtype != STEER_DTYPE_F32 && q_is_quantized(in->dtype)) {
        /* a block-typed vector (llama.cpp never writes one): widen it first */
        float *v = cv_alloc(s, (size_t)in->cols * sizeof *v);
        if (!v) return steer_err(STEER_ENOMEM, "convert: out of memory");
        q_dequant_row(in->dtype, in->data, v, (size_t)in->cols);
        vin.data = v;
        vin.dtype = STEER_DTYPE_F32;
    }
    const steer_dtype dt = is_vec ? STEER_DTYPE_F32 : want < 0 ? in->dtype : (steer_dtype)want;
    const int hd = s->cfg.head_dim;
    const int perm = role_permutes(r) && order != s->order;
    const float shift = weight_is_norm(r) && s->arch->norm_plus_one && eff != s->norm_eff ? (eff ? 1.0f : -1.0f) : 0.0f;
    out->dtype = dt;
    if (dt == in->dtype && !perm && shift == 0.0f) return STEER_OK;

    const int64_t nrows = is_vec ? in->cols : in->rows, ncols = is_vec ? 1 : in->cols;
    if (perm && nrows != (int64_t)role_heads(s, r) * hd)
        return steer_err(STEER_EFORMAT, "convert: q/k tensor has %lld rows, expected %d heads x %d", (long long)nrows,
                         role_heads(s, r), hd);
    const size_t srb = q_row_bytes(in->dtype, (size_t)ncols), drb = q_row_bytes(dt, (size_t)ncols);
    if (!srb || !drb) {
        const steer_dtype t = srb ? dt : in->dtype;
        size_t be = 0;
        q_block(t, &be, NULL);
        char name[160];
        arch_tensor_name(s->arch, 1, r, layer, name, sizeof name);
        return steer_err(STEER_EARG, "convert: %s: a row of %lld elements is not a whole number of %s blocks (%zu)",
                         name, (long long)ncols, steer_dtype_name(t), be);
    }
    uint8_t *buf = cv_alloc(s, (size_t)nrows * drb);
    if (!buf) return steer_err(STEER_ENOMEM, "convert: out of memory");
    const int via_f32 = dt != in->dtype && dt != STEER_DTYPE_F32;
    int64_t bad_row = -1;
#pragma omp parallel if (nrows * ncols >= (1 << 16) && via_f32)
    {
        float *tmp = via_f32 ? malloc((size_t)ncols * sizeof *tmp) : NULL;
#pragma omp for schedule(static)
        for (int64_t ro = 0; ro < nrows; ro++) {
            if (via_f32 && !tmp) {
#pragma omp critical
                if (bad_row < 0 || ro < bad_row) bad_row = ro;
                continue;
            }
            int64_t ri = perm ? perm_src_row(ro, hd, order == ROPE_ADJACENT) : ro;
            const uint8_t *src = (const uint8_t *)in->data + (size_t)ri * srb;
            uint8_t *dst = buf + (size_t)ro * drb;
            if (dt == in->dtype) {
                memcpy(dst, src, drb);
            } else if (dt == STEER_DTYPE_F32) {
                to_f32((float *)dst, src, in->dtype, (size_t)ncols);
            } else {
                to_f32(tmp, src, in->dtype, (size_t)ncols);
                if (dt == STEER_DTYPE_F16 || dt == STEER_DTYPE_BF16) {
                    uint16_t *d16 = (uint16_t *)dst;
                    for (int64_t k = 0; k < ncols; k++)
                        d16[k] = dt == STEER_DTYPE_F16 ? q_f32_to_f16(tmp[k]) : ops_f32_to_bf16(tmp[k]);
                } else {
                    int bad = 0;
                    for (int64_t k = 0; k < ncols; k++) bad |= !isfinite(tmp[k]);
                    if (bad || q_quantize_row(dt, tmp, dst, (size_t)ncols) != STEER_OK) {
#pragma omp critical
                        if (bad_row < 0 || ro < bad_row) bad_row = ro;
                    }
                }
            }
        }
        free(tmp);
    }
    if (bad_row >= 0) {
        /* again on this thread, for the message (steer_err is per thread) */
        float *tmp = malloc((size_t)ncols * sizeof *tmp);
        if (!tmp) return steer_err(STEER_ENOMEM, "convert: out of memory");
        int64_t ri = perm ? perm_src_row(bad_row, hd, order == ROPE_ADJACENT) : bad_row;
        to_f32(tmp, (const uint8_t *)in->data + (size_t)ri * srb, in->dtype, (size_t)ncols);
        char name[160];
        arch_tensor_name(s->arch, 1, r, layer, name, sizeof name);
        int64_t k = 0;
        while (k < ncols && isfinite(tmp[k])) k++;
        int rc;
        if (k < ncols)
            rc = steer_err(STEER_EARG, "convert: %s row %lld element %lld is %s: cannot quantize it to %s", name,
                           (long long)bad_row, (long long)k, isnan(tmp[k]) ? "NaN" : "infinite", steer_dtype_name(dt));
        else if ((rc = q_quantize_row(dt, tmp, buf + (size_t)bad_row * drb, (size_t)ncols)) != STEER_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", steer_last_error());
            rc = steer_err(rc, "convert: %s: %s", name, msg);
        } else {
            rc = steer_err(STEER_ENOMEM, "convert: out of memory");
        }
        free(tmp);
        return rc;
    }
    if (shift != 0.0f) {
        float *v = (float *)buf;
        for (int64_t i = 0; i < nrows; i++) v[i] = v[i] + shift; /* float32, as llama.cpp's converter */
    }
    out->data = buf;
    return STEER_OK;
}

/* The dtype the matrices get (for general.file_type and torch_dtype). */
static steer_dtype main_dtype(const cv_set *s, int want)
{
    return want >= 0 ? (steer_dtype)want : cv_at(s, W_Q, 0)->dtype;
}

/* want for a format that holds F32, F16 and BF16 only: a block-typed
 * tensor kept "as stored" is dequantized to F32. */
static int float_want(const cv_tensor *t, int want)
{
    return want < 0 && q_is_quantized(t->dtype) ? STEER_DTYPE_F32 : want;
}

/* ---------------------------------------------------------------- quantization mixes */

/* llama.cpp's file types (llama.h, enum llama_ftype; general.file_type). */
enum {
    FT_ALL_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9, FT_Q2_K = 10,
    FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15, FT_Q5_K_S = 16, FT_Q5_K_M = 17,
    FT_Q6_K = 18, FT_BF16 = 32,
};

static const struct {
    int ftype;
    const char *name;
} FTYPE_NAMES[] = {
    {0, "F32"},      {1, "F16"},      {2, "Q4_0"},     {3, "Q4_1"},     {4, "Q4_1_SOME_F16"}, {7, "Q8_0"},
    {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},    {11, "Q3_K_S"},  {12, "Q3_K_M"},       {13, "Q3_K_L"},
    {14, "Q4_K_S"},  {15, "Q4_K_M"},  {16, "Q5_K_S"},  {17, "Q5_K_M"},  {18, "Q6_K"},         {19, "IQ2_XXS"},
    {20, "IQ2_XS"},  {21, "Q2_K_S"},  {22, "IQ3_XS"},  {23, "IQ3_XXS"}, {24, "IQ1_S"},        {25, "IQ4_NL"},
    {26, "IQ3_S"},   {27, "IQ3_M"},   {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"},       {31, "IQ1_M"},
    {32, "BF16"},    {33, "Q4_0_4_4"}, {34, "Q4_0_4_8"}, {35, "Q4_0_8_8"}, {36, "TQ1_0"},     {37, "TQ2_0"},
    {38, "MXFP4_MOE"},
};

const char *steer_ftype_name(int ftype)
{
    for (size_t i = 0; i < sizeof FTYPE_NAMES / sizeof FTYPE_NAMES[0]; i++)
        if (FTYPE_NAMES[i].ftype == ftype) return FTYPE_NAMES[i].name;
    return NULL;
}

/* The default type of a mix steer writes (llama_ftype_get_default_type), or
 * -1 for another file type. */
static int mix_base(int ftype)
{
    switch (ftype) {
    case FT_Q4_0: return STEER_DTYPE_Q4_0;
    case FT_Q4_1: return STEER_DTYPE_Q4_1;
    case FT_Q8_0: return STEER_DTYPE_Q8_0;
    case FT_Q5_0: return STEER_DTYPE_Q5_0;
    case FT_Q5_1: return STEER_DTYPE_Q5_1;
    case FT_Q2_K: return STEER_DTYPE_Q2_K;
    case FT_Q3_K_S: case FT_Q3_K_M: case FT_Q3_K_L: return STEER_DTYPE_Q3_K;
    case FT_Q4_K_S: case FT_Q4_K_M: return STEER_DTYPE_Q4_K;
    case FT_Q5_K_S: case FT_Q5_K_M: return STEER_DTYPE_Q5_K;
    case FT_Q6_K: return STEER_DTYPE_Q6_K;
    default: return -1;
    }
}

int steer_ftype_parse(const char *name, int *ftype)
{
    static const struct {
        const char *name;
        int ftype;
    } mixes[] = {
        {"q4_0", FT_Q4_0},     {"q4_1", FT_Q4_1},     {"q8_0", FT_Q8_0},     {"q5_0", FT_Q5_0},
        {"q5_1", FT_Q5_1},     {"q2_k", FT_Q2_K},     {"q3_k_s", FT_Q3_K_S}, {"q3_k_m", FT_Q3_K_M},
        {"q3_k_l", FT_Q3_K_L}, {"q4_k_s", FT_Q4_K_S}, {"q4_k_m", FT_Q4_K_M}, {"q5_k_s", FT_Q5_K_S},
        {"q5_k_m", FT_Q5_K_M}, {"q6_k", FT_Q6_K},
        /* llama-quantize's aliases */
        {"q3_k", FT_Q3_K_M},   {"q4_k", FT_Q4_K_M},   {"q5_k", FT_Q5_K_M},
    };
    if (!name) return steer_err(STEER_EARG, "file type: no name");
    for (size_t i = 0; i < sizeof mixes / sizeof mixes[0]; i++)
        if (strcasecmp(name, mixes[i].name) == 0) {
            if (ftype) *ftype = mixes[i].ftype;
            return STEER_OK;
        }
    return steer_err(STEER_EARG, "unknown quantization mix '%s' (q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k_s, q3_k_m, "
                     "q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m, q6_k)", name);
}

/* general.file_type of a file whose matrices are all t (llama-quantize
 * --pure writes the requested file type; Q3_K, Q4_K and Q5_K, which have
 * no file type of their own, as its aliases: Q3_K_M, Q4_K_M, Q5_K_M). */
static int ftype_of_dtype(steer_dtype t)
{
    switch (t) {
    case STEER_DTYPE_F16: return FT_F16;
    case STEER_DTYPE_BF16: return FT_BF16;
    case STEER_DTYPE_Q4_0: return FT_Q4_0;
    case STEER_DTYPE_Q4_1: return FT_Q4_1;
    case STEER_DTYPE_Q8_0: return FT_Q8_0;
    case STEER_DTYPE_Q5_0: return FT_Q5_0;
    case STEER_DTYPE_Q5_1: return FT_Q5_1;
    case STEER_DTYPE_Q2_K: return FT_Q2_K;
    case STEER_DTYPE_Q3_K: return FT_Q3_K_M;
    case STEER_DTYPE_Q4_K: return FT_Q4_K_M;
    case STEER_DTYPE_Q5_K: return FT_Q5_K_M;
    case STEER_DTYPE_Q6_K: return FT_Q6_K;
    default: return FT_ALL_F32;
    }
}

/* A matrix whose row length (cols) is not a multiple of t's block gets
 * another type, as llama-quantize's tensor_type_fallback picks it: Q2_K and
 * Q3_K → Q4_0, Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, and F16 when the row
 * is not a multiple of 32 either (llama-quantize refuses that for the
 * 32-element types; steer writes F16 then too). */
static steer_dtype q_fallback(steer_dtype t, int64_t cols)
{
    size_t be = 1;
    q_block(t, &be, NULL);
    if (cols % (int64_t)be == 0) return t;
    switch (t) {
    case STEER_DTYPE_Q2_K: case STEER_DTYPE_Q3_K: t = STEER_DTYPE_Q4_0; break;
    case STEER_DTYPE_Q4_K: t = STEER_DTYPE_Q5_0; break;
    case STEER_DTYPE_Q5_K: t = STEER_DTYPE_Q5_1; break;
    case STEER_DTYPE_Q6_K: t = STEER_DTYPE_Q8_0; break;
    default: return STEER_DTYPE_F16;
    }
    return cols % Q_BLOCK_LEGACY == 0 ? t : STEER_DTYPE_F16;
}

/* llama.cpp's "use more bits" layers: the first and last eighth, and every
 * third layer in between. */
static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* llama.cpp's LLM_TYPE_70B (80 layers: llama with grouped-query attention,
 * qwen2), for which attn_v gets more bits. */
static int is_70b(const cv_set *s)
{
    const steer_model_config *c = &s->cfg;
    if (c->n_layer != 80) return 0;
    if (s->arch->arch == STEER_ARCH_QWEN2) return 1;
    return (s->arch->arch == STEER_ARCH_LLAMA || s->arch->arch == STEER_ARCH_MISTRAL) && c->n_head != c->n_kv_head;
}

/* The type llama-quantize (llama_tensor_get_type, without an importance
 * matrix and without overrides) gives matrix r of `layer` (cols per row) in
 * file type ftype. The per-layer counters llama.cpp keeps (i_attention_wv,
 * i_ffn_down) equal the layer index here: it visits tensors ordered by layer
 * number and these models have one attn_v and one ffn_down per layer. Only
 * the rules of the mixes steer writes are here (no IQ types, MoE or Falcon
 * rules). */
static steer_dtype cv_mix_type(const cv_set *s, weight_role r, int layer, int64_t cols, int ftype)
{
    const steer_dtype base = (steer_dtype)mix_base(ftype);
    steer_dtype t = base;
    const int n = s->cfg.n_layer, i = layer;
    const int tied = s->cfg.tied_embeddings;
    if (r == W_OUTPUT || (tied && r == W_TOK_EMBD)) {
        size_t be = 1;
        q_block(base, &be, NULL);
        if (cols % (int64_t)be != 0) t = STEER_DTYPE_Q8_0;
        else if (base != STEER_DTYPE_Q8_0) t = STEER_DTYPE_Q6_K;
    } else if (r == W_V) {
        const int n_gqa = s->cfg.n_kv_head > 0 ? s->cfg.n_head / s->cfg.n_kv_head : 1;
        if (ftype == FT_Q2_K) t = n_gqa >= 4 ? STEER_DTYPE_Q4_K : STEER_DTYPE_Q3_K;
        else if (ftype == FT_Q3_K_M) t = i < 2 ? STEER_DTYPE_Q5_K : STEER_DTYPE_Q4_K;
        else if (ftype == FT_Q3_K_L) t = STEER_DTYPE_Q5_K;
        else if ((ftype == FT_Q4_K_M || ftype == FT_Q5_K_M) && use_more_bits(i, n)) t = STEER_DTYPE_Q6_K;
        else if (ftype == FT_Q4_K_S && i < 4) t = STEER_DTYPE_Q5_K;
        if (is_70b(s) && (t == STEER_DTYPE_Q3_K || t == STEER_DTYPE_Q4_K)) t = STEER_DTYPE_Q5_K;
    } else if (r == W_DOWN) {
        if (ftype == FT_Q2_K) t = STEER_DTYPE_Q3_K;
        else if (ftype == FT_Q3_K_M) t = i < n / 16 ? STEER_DTYPE_Q5_K : STEER_DTYPE_Q4_K;
        else if (ftype == FT_Q3_K_L) t = STEER_DTYPE_Q5_K;
        else if (ftype == FT_Q4_K_M) { if (use_more_bits(i, n)) t = STEER_DTYPE_Q6_K; }
        else if (ftype == FT_Q5_K_M && use_more_bits(i, n)) t = STEER_DTYPE_Q6_K;
        else if (ftype == FT_Q4_K_S && i < n / 8) t = STEER_DTYPE_Q5_K;
    } else if (r == W_O) {
        if (ftype == FT_Q2_K) t = STEER_DTYPE_Q3_K;
        else if (ftype == FT_Q3_K_M) t = STEER_DTYPE_Q4_K;
        else if (ftype == FT_Q3_K_L) t = STEER_DTYPE_Q5_K;
    }
    return q_fallback(t, cols);
}

/* The type a GGUF output stores matrix r of `layer` in: the mix's (ftype >
 * 0), the input's (want < 0), else want (with the fallback for short rows). */
static steer_dtype gguf_matrix_type(const cv_set *s, weight_role r, int layer, int want, int ftype)
{
    const cv_tensor *t = cv_at(s, r, layer);
    if (ftype > 0) return cv_mix_type(s, r, layer, t->cols, ftype);
    if (want < 0) return t->dtype;
    return q_fallback((steer_dtype)want, t->cols);
}

/* general.file_type of a GGUF output. */
static int gguf_file_type(const cv_set *s, int want, int ftype)
{
    if (ftype > 0) return ftype;
    if (want < 0 && s->in_ftype >= 0) return s->in_ftype; /* tensors kept as they were */
    return ftype_of_dtype(main_dtype(s, want));
}

/* ---------------------------------------------------------------- sliding layouts */

/* The sliding flags a loader derives: pattern > 0 every pattern-th layer is
 * global (Gemma 3), -2 even layers slide (Gemma 2), -1 all, 0 none. */
static int sliding_matches(const cv_set *s, int pattern)
{
    for (int l = 0; l < s->cfg.n_layer; l++) {
        int sl = 0;
        if (s->cfg.sliding_window > 0) {
            if (pattern > 0) sl = (l + 1) % pattern != 0;
            else if (pattern == -2) sl = l % 2 == 0;
            else if (pattern == -1) sl = 1;
        }
        if (sl != s->sliding[l]) return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- GGUF */

/* The attention scale llama.cpp (and our GGUF loader) assume without an
 * attention.scale key. */
static float gguf_default_attn_scale(const steer_model_config *c)
{
    if ((c->arch == STEER_ARCH_GEMMA2 && c->n_layer == 46) || (c->arch == STEER_ARCH_GEMMA3 && c->n_layer == 62))
        return 1.0f / sqrtf((float)c->d_model / c->n_head);
    return 1.0f / sqrtf((float)c->head_dim);
}

static int gguf_check(const cv_set *s, const char *out)
{
    const steer_model_config *c = &s->cfg;
    const arch_info *a = s->arch;
    if (c->act != a->default_act)
        return steer_err(STEER_EUNSUPPORTED, "%s: GGUF %s models always use the %s activation; this model uses %s",
                         out, a->gguf_arch, act_name(a->default_act), act_name(c->act));
    int pattern = a->arch == STEER_ARCH_GEMMA2 ? -2 : a->arch == STEER_ARCH_GEMMA3 ? 6 : 0;
    if (!sliding_matches(s, pattern) && !(pattern == 0 && !any_sliding(s)))
        return steer_err(STEER_EUNSUPPORTED, "%s: this %s model's sliding-window layers cannot be expressed in GGUF "
                         "(llama.cpp: gemma2 even layers, gemma3 all but every 6th, other architectures none)",
                         out, a->name);
    if (a->arch == STEER_ARCH_GEMMA3 && any_sliding(s) && c->rope_theta_local != 10000.0f)
        return steer_err(STEER_EUNSUPPORTED, "%s: GGUF gemma3 fixes the sliding layers' RoPE base at 10000; this model "
                         "uses %g", out, (double)c->rope_theta_local);
    return STEER_OK;
}

/* Writes s as a GGUF v3 file at path (atomically): matrices as
 * gguf_matrix_type says. */
static int write_gguf(cv_set *s, const char *path, const char *out, int want, int ftype)
{
    int rc = gguf_check(s, out);
    if (rc) return rc;
    const steer_model_config *c = &s->cfg;
    const arch_info *a = s->arch;
    gg_writer *w = NULL;
    if ((rc = gg_writer_new(&w))) return rc;
    const int mark = s->n_owned;
    char key[160];
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", a->gguf_arch, suffix), key)
#define TRY(expr) do { if (!rc) rc = (expr); } while (0)
    TRY(gg_writer_set_str(w, "general.architecture", a->gguf_arch));
    TRY(gg_writer_set_str(w, "general.name", s->name));
    TRY(gg_writer_set_u32(w, "general.file_type", (uint32_t)gguf_file_type(s, want, ftype)));
    TRY(gg_writer_set_u32(w, "general.quantization_version", 2));
    TRY(gg_writer_set_u32(w, KEY("context_length"), (uint32_t)c->n_ctx_train));
    TRY(gg_writer_set_u32(w, KEY("embedding_length"), (uint32_t)c->d_model));
    TRY(gg_writer_set_u32(w, KEY("block_count"), (uint32_t)c->n_layer));
    TRY(gg_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->d_ff));
    TRY(gg_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head));
    TRY(gg_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head));
    TRY(gg_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim));
    TRY(gg_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim));
    TRY(gg_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->rms_eps));
    TRY(gg_writer_set_f32(w, KEY("rope.freq_base"), c->rope_theta));
    TRY(gg_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim));
    TRY(gg_writer_set_u32(w, KEY("vocab_size"), (uint32_t)c->n_vocab));
    if (c->attn_softcap > 0) TRY(gg_writer_set_f32(w, KEY("attn_logit_softcapping"), c->attn_softcap));
    if (c->final_softcap > 0) TRY(gg_writer_set_f32(w, KEY("final_logit_softcapping"), c->final_softcap));
    if (c->sliding_window > 0 && any_sliding(s))
        TRY(gg_writer_set_u32(w, KEY("attention.sliding_window"), (uint32_t)c->sliding_window));
    if (c->attn_scale != gguf_default_attn_scale(c)) TRY(gg_writer_set_f32(w, KEY("attention.scale"), c->attn_scale));
    if (s->rope_linear != 1.0f) {
        TRY(gg_writer_set_str(w, KEY("rope.scaling.type"), "linear"));
        TRY(gg_writer_set_f32(w, KEY("rope.scaling.factor"), s->rope_linear));
    }
#undef KEY
    TRY(tok_write_gguf(s->tok, w));
    rope_style order = a->gguf_permute_qk ? ROPE_ADJACENT : ROPE_HALF;
    for (int l = -1; !rc && l < c->n_layer; l++) {
        for (int r = 0; !rc && r < W_COUNT; r++) {
            if ((l < 0) == weight_is_layer((weight_role)r)) continue;
            const int layer = l < 0 ? 0 : l;
            const cv_tensor *src = cv_at(s, (weight_role)r, layer);
            if (!src->data) continue;
            const int dt = src->rows ? (int)gguf_matrix_type(s, (weight_role)r, layer, want, ftype) : -1;
            cv_tensor t;
            TRY(cv_emit(s, (weight_role)r, layer, dt, order, 1, &t));
            if (rc || !t.data) continue;
            char name[160];
            arch_tensor_name(a, 1, (weight_role)r, layer, name, sizeof name);
            uint64_t ne[2] = {(uint64_t)t.cols, (uint64_t)t.rows};
            TRY(gg_writer_add_tensor(w, name, (int)q_to_ggml_type(t.dtype), t.rows ? 2 : 1, ne, t.data));
        }
    }
    if (s->rope_factors) {
        uint64_t ne[1] = {(uint64_t)c->head_dim / 2};
        TRY(gg_writer_add_tensor(w, "rope_freqs.weight", GGML_TYPE_F32, 1, ne, s->rope_factors));
    }
#undef TRY
    if (!rc) rc = gg_writer_write(w, path);
    gg_writer_free(w);
    cv_release(s, mark);
    return rc;
}

/* ---------------------------------------------------------------- Hugging Face */

/* A JSON number holding the shortest decimal that reads back as f. */
static cJSON *json_f32(float f)
{
    char buf[64];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return cJSON_CreateNumber(strtod(buf, NULL));
}

static const char *torch_dtype_name(steer_dtype t)
{
    return t == STEER_DTYPE_F16 ? "float16" : t == STEER_DTYPE_BF16 ? "bfloat16" : "float32";
}

static int hf_check(const cv_set *s, const char *out)
{
    const steer_model_config *c = &s->cfg;
    const arch_info *a = s->arch;
    if (!a->sandwich_norms && c->attn_scale != 1.0f / sqrtf((float)c->head_dim))
        return steer_err(STEER_EUNSUPPORTED, "%s: Hugging Face %s has no attention-scale setting (this model uses "
                         "%g, not 1/sqrt(head_dim))", out, a->hf_class, (double)c->attn_scale);
    if (!a->sandwich_norms && (c->attn_softcap > 0 || c->final_softcap > 0))
        return steer_err(STEER_EUNSUPPORTED, "%s: Hugging Face %s has no logit soft-capping", out, a->hf_class);
    int ok;
    switch (a->arch) {
    case STEER_ARCH_GEMMA2: ok = sliding_matches(s, -2); break;
    case STEER_ARCH_GEMMA3: ok = 1; break; /* layer_types lists any layout */
    case STEER_ARCH_MISTRAL: ok = sliding_matches(s, -1) || !any_sliding(s); break;
    default: ok = !any_sliding(s); break;
    }
    if (!ok)
        return steer_err(STEER_EUNSUPPORTED, "%s: this model's sliding-window layers cannot be expressed in a Hugging "
                         "Face %s config", out, a->hf_class);
    if (s->rope_factors && !s->hf_rope_scaling)
        return steer_err(STEER_EUNSUPPORTED, "%s: per-frequency RoPE factors (GGUF rope_freqs.weight) have no Hugging "
                         "Face rope_scaling equivalent", out);
    return STEER_OK;
}

/* config.json for s (caller frees with cJSON_Delete), or NULL (ENOMEM). */
static cJSON *hf_config_json(const cv_set *s, steer_dtype mdt)
{
    const steer_model_config *c = &s->cfg;
    const arch_info *a = s->arch;
    cJSON *j = cJSON_CreateObject();
    cJSON *archs = cJSON_AddArrayToObject(j, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString(a->hf_class));
    cJSON_AddStringToObject(j, "model_type", a->hf_model_type);
    cJSON_AddNumberToObject(j, "hidden_size", c->d_model);
    cJSON_AddNumberToObject(j, "intermediate_size", c->d_ff);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layer);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->n_head);
    cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_kv_head);
    cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(j, "vocab_size", c->n_vocab);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->n_ctx_train);
    cJSON_AddItemToObject(j, "rms_norm_eps", json_f32(c->rms_eps));
    cJSON_AddItemToObject(j, "rope_theta", json_f32(c->rope_theta));
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tied_embeddings);
    cJSON_AddStringToObject(j, "hidden_act", act_name(c->act));
    if (a->norm_plus_one) cJSON_AddStringToObject(j, "hidden_activation", act_name(c->act));
    cJSON_AddStringToObject(j, "torch_dtype", torch_dtype_name(mdt));
    if (tok_bos(s->tok) >= 0) cJSON_AddNumberToObject(j, "bos_token_id", tok_bos(s->tok));
    if (tok_eos(s->tok) >= 0) cJSON_AddNumberToObject(j, "eos_token_id", tok_eos(s->tok));
    if (s->hf_rope_scaling) {
        cJSON_AddItemToObject(j, "rope_scaling", cJSON_Duplicate(s->hf_rope_scaling, 1));
    } else if (s->rope_linear != 1.0f) {
        cJSON *rs = cJSON_AddObjectToObject(j, "rope_scaling");
        cJSON_AddStringToObject(rs, "rope_type", "linear");
        cJSON_AddItemToObject(rs, "factor", json_f32(s->rope_linear));
    } else {
        cJSON_AddNullToObject(j, "rope_scaling");
    }
    if (a->arch == STEER_ARCH_LLAMA || a->arch == STEER_ARCH_MISTRAL) cJSON_AddBoolToObject(j, "attention_bias", 0);
    if (a->arch == STEER_ARCH_QWEN2) cJSON_AddBoolToObject(j, "use_sliding_window", 0);
    if (a->sandwich_norms) {
        /* attn_scale = query_pre_attn_scalar^-½; configs hold an integer */
        double qs = 1.0 / ((double)c->attn_scale * c->attn_scale);
        double qr = floor(qs + 0.5);
        if (fabs(qs - qr) <= 1e-3 * qs && 1.0f / sqrtf((float)qr) == c->attn_scale) qs = qr;
        cJSON_AddNumberToObject(j, "query_pre_attn_scalar", qs);
        if (c->attn_softcap > 0) cJSON_AddItemToObject(j, "attn_logit_softcapping", json_f32(c->attn_softcap));
        else cJSON_AddNullToObject(j, "attn_logit_softcapping");
        if (c->final_softcap > 0) cJSON_AddItemToObject(j, "final_logit_softcapping", json_f32(c->final_softcap));
        else cJSON_AddNullToObject(j, "final_logit_softcapping");
    }
    if (a->arch == STEER_ARCH_GEMMA2 || a->arch == STEER_ARCH_GEMMA3 || a->arch == STEER_ARCH_MISTRAL) {
        if (c->sliding_window > 0 && any_sliding(s)) cJSON_AddNumberToObject(j, "sliding_window", c->sliding_window);
        else cJSON_AddNullToObject(j, "sliding_window");
    }
    if (a->arch == STEER_ARCH_GEMMA2) cJSON_AddStringToObject(j, "cache_implementation", "hybrid");
    if (a->arch == STEER_ARCH_GEMMA3) {
        cJSON_AddItemToObject(j, "rope_local_base_freq", json_f32(c->rope_theta_local));
        /* the pattern older configs give (6 in Gemma 3 releases) if it fits;
         * layer_types below is authoritative */
        int pat = sliding_matches(s, 6) ? 6 : 0;
        for (int p = 1; !pat && p <= c->n_layer + 1; p++)
            if (sliding_matches(s, p)) pat = p;
        if (pat) cJSON_AddNumberToObject(j, "sliding_window_pattern", pat);
        if (c->sliding_window > 0 && any_sliding(s)) {
            cJSON *lt = cJSON_AddArrayToObject(j, "layer_types");
            for (int l = 0; l < c->n_layer; l++)
                cJSON_AddItemToArray(lt, cJSON_CreateString(s->sliding[l] ? "sliding_attention" : "full_attention"));
        }
    }
    return j;
}

/* Writes s into the existing directory dir: model.safetensors,
 * config.json, tokenizer files. */
static int write_hf(cv_set *s, const char *dir, const char *out, int want)
{
    int rc = hf_check(s, out);
    if (rc) return rc;
    const steer_model_config *c = &s->cfg;
    const arch_info *a = s->arch;
    char path[4300];
    const int mark = s->n_owned;
    steer_tensors_writer *w = NULL;
    if ((rc = steer_tensors_writer_new(&w))) return rc;
    rc = steer_tensors_writer_meta(w, "format", "pt");
    for (int l = -1; !rc && l < c->n_layer; l++) {
        for (int r = 0; !rc && r < W_COUNT; r++) {
            if ((l < 0) == weight_is_layer((weight_role)r)) continue;
            cv_tensor t;
            rc = cv_emit(s, (weight_role)r, l < 0 ? 0 : l, float_want(cv_at(s, (weight_role)r, l < 0 ? 0 : l), want),
                         ROPE_HALF, 0, &t);
            if (rc || !t.data) continue;
            char name[160];
            arch_tensor_name(a, 0, (weight_role)r, l < 0 ? 0 : l, name, sizeof name);
            int64_t shape[2] = {t.rows ? t.rows : t.cols, t.cols};
            rc = steer_tensors_writer_add(w, name, t.dtype, t.rows ? 2 : 1, shape, t.data);
        }
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!rc) rc = steer_tensors_writer_write(w, path);
    steer_tensors_writer_free(w);
    cv_release(s, mark);
    if (rc) return rc;

    cJSON *j = hf_config_json(s, main_dtype(s, float_want(cv_at(s, W_Q, 0), want)));
    char *txt = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (!txt) return steer_err(STEER_ENOMEM, "%s: out of memory writing config.json", out);
    size_t n = strlen(txt);
    char *full = malloc(n + 2);
    if (!full) {
        cJSON_free(txt);
        return steer_err(STEER_ENOMEM, "%s: out of memory writing config.json", out);
    }
    memcpy(full, txt, n);
    full[n] = '\n';
    cJSON_free(txt);
    snprintf(path, sizeof path, "%s/config.json", dir);
    rc = io_write_atomic(path, full, n + 1);
    free(full);
    if (rc) return rc;
    return tok_write_hf(s->tok, dir);
}

/* ---------------------------------------------------------------- llama2.c */

static int l2c_check(const cv_set *s, const char *out, int want)
{
    const steer_model_config *c = &s->cfg;
    const arch_info *a = s->arch;
    if (a->arch != STEER_ARCH_LLAMA && a->arch != STEER_ARCH_MISTRAL)
        return steer_err(STEER_EUNSUPPORTED, "%s: llama2.c checkpoints hold only the llama architecture, this model is "
                         "%s", out, a->name);
    if (want >= 0 && want != STEER_DTYPE_F32)
        return steer_err(STEER_EUNSUPPORTED, "%s: llama2.c checkpoints are F32 only (asked for %s)", out,
                         steer_dtype_name((steer_dtype)want));
    const char *why = NULL;
    char buf[160];
    if (c->head_dim * c->n_head != c->d_model) {
        snprintf(buf, sizeof buf, "head_dim %d x %d heads != d_model %d", c->head_dim, c->n_head, c->d_model);
        why = buf;
    } else if (c->rope_theta != 10000.0f) {
        snprintf(buf, sizeof buf, "RoPE theta %g, llama2.c fixes 10000", (double)c->rope_theta);
        why = buf;
    } else if (c->rms_eps != 1e-5f) {
        snprintf(buf, sizeof buf, "RMSNorm eps %g, llama2.c fixes 1e-5", (double)c->rms_eps);
        why = buf;
    } else if (s->rope_linear != 1.0f || s->rope_factors) {
        why = "RoPE scaling";
    } else if (any_sliding(s)) {
        why = "sliding-window attention";
    } else if (c->act != STEER_ACT_SILU) {
        why = "activation other than SiLU";
    } else if (c->attn_scale != 1.0f / sqrtf((float)c->head_dim) || c->attn_softcap > 0 || c->final_softcap > 0) {
        why = "attention scale or soft-capping";
    }
    if (why) return steer_err(STEER_EUNSUPPORTED, "%s: cannot be a llama2.c checkpoint: %s", out, why);
    return STEER_OK;
}

/* Writes the legacy llama2.c checkpoint at path (atomically). */
static int write_llama2c(cv_set *s, const char *path, const char *out, int want)
{
    int rc = l2c_check(s, out, want);
    if (rc) return rc;
    const steer_model_config *c = &s->cfg;
    const int L = c->n_layer, hd = c->head_dim, half = hd / 2;
    char tmp[4200];
    FILE *f = io_tmp_open(path, tmp);
    if (!f) return STEER_EIO;
    int32_t h[7] = {c->d_model, c->d_ff, L, c->n_head, c->n_kv_head, c->tied_embeddings ? c->n_vocab : -c->n_vocab,
                    c->n_ctx_train};
    int ok = fwrite(h, sizeof h, 1, f) == 1;
    /* run.c's memory_map_weights order: each role for every layer in turn */
    static const weight_role order[] = {W_TOK_EMBD, W_ATTN_NORM, W_Q,   W_K,    W_V,        W_O,
                                        W_FFN_NORM, W_GATE,      W_DOWN, W_UP, W_OUT_NORM};
    for (size_t k = 0; ok && !rc && k < sizeof order / sizeof order[0]; k++) {
        weight_role r = order[k];
        for (int l = 0; ok && !rc && l < (weight_is_layer(r) ? L : 1); l++) {
            const int mark = s->n_owned;
            cv_tensor t;
            rc = cv_emit(s, r, l, STEER_DTYPE_F32, ROPE_ADJACENT, 1, &t);
            if (!rc) {
                size_t n = (size_t)(t.rows ? t.rows : 1) * (size_t)t.cols;
                ok = fwrite(t.data, sizeof(float), n, f) == n;
            }
            cv_release(s, mark);
        }
    }
    /* freq_cis_real, freq_cis_imag [n_ctx, hd/2]: unused by run.c; copied
     * from a llama2.c input, else cos/sin of pos·10000^(-2i/hd) as
     * llama2.c's model.py computes them in float32 */
    if (ok && !rc) {
        size_t n = (size_t)c->n_ctx_train * half;
        float *tab = s->l2c_freq ? NULL : malloc(2 * n * sizeof *tab);
        if (!s->l2c_freq && !tab) {
            rc = steer_err(STEER_ENOMEM, "%s: out of memory", out);
        } else if (tab) {
            for (int p = 0; p < c->n_ctx_train; p++)
                for (int i = 0; i < half; i++) {
                    float fr = 1.0f / powf(10000.0f, (float)(2 * i) / (float)hd);
                    float ang = (float)p * fr;
                    tab[(size_t)p * half + i] = (float)cos((double)ang);
                    tab[n + (size_t)p * half + i] = (float)sin((double)ang);
                }
        }
        if (!rc) ok = fwrite(tab ? tab : s->l2c_freq, sizeof(float), 2 * n, f) == 2 * n;
        free(tab);
    }
    if (ok && !rc && !c->tied_embeddings) {
        const int mark = s->n_owned;
        cv_tensor t;
        rc = cv_emit(s, W_OUTPUT, 0, STEER_DTYPE_F32, ROPE_ADJACENT, 1, &t);
        if (!rc) ok = fwrite(t.data, sizeof(float), (size_t)t.rows * t.cols, f) == (size_t)t.rows * t.cols;
        cv_release(s, mark);
    }
    if (!ok && !rc) rc = steer_err(STEER_EIO, "%s: write failed: %s", out, strerror(errno));
    int crc = io_tmp_commit(f, tmp, path, rc == STEER_OK);
    return rc ? rc : crc;
}

/* ---------------------------------------------------------------- checking an output */

static int close_f(float a, float b)
{
    return a == b || fabsf(a - b) <= 1e-6f * fmaxf(fabsf(a), fabsf(b));
}

/* Loads the written model and compares what the loader sees with s. */
static int cv_verify(const cv_set *s, const char *path, const char *tok_path, const char *out, const char *fmt)
{
    steer_model_params mp = steer_model_default_params();
    mp.tokenizer_path = tok_path;
    steer_model *m = NULL;
    int rc = steer_model_load(path, &mp, &m);
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", steer_last_error());
        return steer_err(rc, "%s: the written %s model does not load back: %s", out, fmt, msg);
    }
    const steer_model_config *a = &s->cfg, *b = &m->cfg;
    char what[96] = "";
    double va = 0, vb = 0;
#define INT_FIELD(f) else if (a->f != b->f) { snprintf(what, sizeof what, "%s", #f); va = a->f; vb = b->f; }
#define FLT_FIELD(f) else if (!close_f(a->f, b->f)) { snprintf(what, sizeof what, "%s", #f); va = a->f; vb = b->f; }
    int arch_ok = a->arch == b->arch || (a->arch == STEER_ARCH_MISTRAL && b->arch == STEER_ARCH_LLAMA);
    if (!arch_ok) { snprintf(what, sizeof what, "architecture"); va = a->arch; vb = b->arch; }
    INT_FIELD(n_layer) INT_FIELD(d_model) INT_FIELD(n_head) INT_FIELD(n_kv_head) INT_FIELD(head_dim)
    INT_FIELD(d_ff) INT_FIELD(n_vocab) INT_FIELD(n_ctx_train) INT_FIELD(tied_embeddings) INT_FIELD(act)
    FLT_FIELD(rope_theta) FLT_FIELD(rms_eps) FLT_FIELD(embed_scale) FLT_FIELD(attn_scale)
    FLT_FIELD(attn_softcap) FLT_FIELD(final_softcap)
    else if (tok_bos(s->tok) != tok_bos(m->tok) || tok_eos(s->tok) != tok_eos(m->tok)) {
        snprintf(what, sizeof what, "BOS/EOS token ids");
        va = tok_bos(s->tok);
        vb = tok_bos(m->tok);
    }
#undef INT_FIELD
#undef FLT_FIELD
    int slides = any_sliding(s);
    for (int l = 0; !what[0] && l < a->n_layer; l++)
        if (s->sliding[l] != (uint8_t)m->layers[l].sliding) {
            snprintf(what, sizeof what, "sliding-window flag of layer %d", l);
            va = s->sliding[l];
            vb = m->layers[l].sliding;
        }
    if (!what[0] && slides && a->sliding_window != b->sliding_window) {
        snprintf(what, sizeof what, "sliding_window");
        va = a->sliding_window;
        vb = b->sliding_window;
    }
    if (!what[0] && s->rope_freq_ref) {
        const int half = a->head_dim / 2;
        for (int k = 0; k < (slides ? 2 : 1) && !what[0]; k++)
            for (int i = 0; i < half && !what[0]; i++)
                if (!close_f(s->rope_freq_ref[k * half + i], m->rope_freq[k * half + i])) {
                    snprintf(what, sizeof what, "RoPE inverse frequency %d of %s layers", i, k ? "sliding" : "global");
                    va = s->rope_freq_ref[k * half + i];
                    vb = m->rope_freq[k * half + i];
                }
    }
    steer_model_free(m);
    if (what[0])
        return steer_err(STEER_EUNSUPPORTED, "%s: the %s output would not reproduce the model: its %s is %g instead of %g",
                         out, fmt, what, vb, va);
    return STEER_OK;
}

/* ---------------------------------------------------------------- placing outputs */

static int path_exists(const char *p, struct stat *st)
{
    struct stat tmp;
    return stat(p, st ? st : &tmp) == 0;
}

/* Files a Hugging Face output directory may hold and still be replaced. */
static int replaceable_file(const char *name)
{
    static const char *const ok[] = {"config.json", "generation_config.json", "model.safetensors",
                                     "tokenizer.json", "tokenizer_config.json", "tokenizer.model",
                                     "special_tokens_map.json"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(name, ok[i]) == 0) return 1;
    return 0;
}

/* May a directory output go to out? It must not exist, be an empty
 * directory, or hold only files a conversion writes. */
static int parent_ok(const char *out);

static int dir_target_ok(const char *out)
{
    struct stat st;
    if (!path_exists(out, &st)) return parent_ok(out);
    if (!S_ISDIR(st.st_mode))
        return steer_err(STEER_EIO, "%s: exists and is not a directory (a Hugging Face output is a directory; name a "
                         ".gguf or .bin file for the other formats)", out);
    DIR *d = opendir(out);
    if (!d) return steer_err(STEER_EIO, "%s: cannot read directory: %s", out, strerror(errno));
    struct dirent *e;
    int rc = STEER_OK;
    char p[4600];
    while (rc == STEER_OK && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", out, e->d_name);
        struct stat fs;
        if (!replaceable_file(e->d_name) || lstat(p, &fs) != 0 || !S_ISREG(fs.st_mode))
            rc = steer_err(STEER_EIO, "%s: directory exists and holds other files (%s); remove it or choose another "
                           "output", out, e->d_name);
    }
    closedir(d);
    return rc;
}

/* Moves the finished directory tmp to out (replacing an allowed old one). */
static int dir_place(const char *tmp, const char *out)
{
    char old[4200];
    int had = path_exists(out, NULL);
    if (had) {
        snprintf(old, sizeof old, "%s.old.%ld", out, (long)getpid());
        if (rename(out, old) != 0) return steer_err(STEER_EIO, "%s: cannot move the old directory aside: %s", out, strerror(errno));
    }
    if (rename(tmp, out) != 0) {
        int e = errno;
        if (had) rename(old, out);
        return steer_err(STEER_EIO, "%s: cannot rename %s into place: %s", out, tmp, strerror(e));
    }
    if (had) io_remove_dir(old);
    return STEER_OK;
}

/* A directory for files written before out is placed: out.tmp.<pid>. */
static int dir_make_tmp(const char *out, char *tmp, size_t n)
{
    io_sweep_stale(out, ".tmp."); /* directories of interrupted runs */
    int k = snprintf(tmp, n, "%s.tmp.%ld", out, (long)getpid());
    if (k < 0 || (size_t)k >= n) return steer_err(STEER_EIO, "%s: path too long", out);
    if (mkdir(tmp, 0777) != 0)
        return steer_err(STEER_EIO, "%s: cannot create the output directory (%s): %s", out, tmp, strerror(errno));
    io_tmp_register(tmp, 1);
    return STEER_OK;
}

static int out_hf(cv_set *s, const char *out, int want)
{
    char tmp[4200];
    int rc = dir_target_ok(out);
    if (!rc) rc = dir_make_tmp(out, tmp, sizeof tmp);
    if (rc) return rc;
    rc = write_hf(s, tmp, out, want);
    if (!rc) rc = cv_verify(s, tmp, NULL, out, "Hugging Face");
    if (!rc) rc = dir_place(tmp, out);
    if (rc) io_remove_dir(tmp);
    io_tmp_unregister(tmp);
    return rc;
}

/* The directory an output goes into must exist. */
static int parent_ok(const char *out)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", out);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = 0; /* "out/" names the directory out */
    char *slash = strrchr(dir, '/');
    if (!slash) return STEER_OK; /* the working directory */
    if (slash == dir) slash[1] = 0;
    else *slash = 0;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return steer_err(STEER_EIO, "%s: cannot write the output: directory %s does not exist", out, dir);
    return STEER_OK;
}

static int file_target_ok(const char *out)
{
    struct stat st;
    if (path_exists(out, &st) && S_ISDIR(st.st_mode)) return steer_err(STEER_EIO, "%s: is a directory", out);
    return parent_ok(out);
}

static int out_gguf(cv_set *s, const char *out, int want, int ftype)
{
    char tmp[4200];
    int rc = file_target_ok(out);
    if (rc) return rc;
    io_sweep_stale(out, ".conv."); /* files of interrupted runs */
    snprintf(tmp, sizeof tmp, "%s.conv.%ld", out, (long)getpid());
    io_tmp_register(tmp, 0);
    rc = write_gguf(s, tmp, out, want, ftype);
    if (!rc) rc = cv_verify(s, tmp, NULL, out, "GGUF");
    if (!rc && rename(tmp, out) != 0) rc = steer_err(STEER_EIO, "%s: cannot rename %s into place: %s", out, tmp, strerror(errno));
    if (rc) unlink(tmp);
    io_tmp_unregister(tmp);
    return rc;
}

/* 1 if files a and b hold the same bytes. */
static int same_bytes(const char *a, const char *b)
{
    io_map x, y;
    if (io_map_open(a, &x)) return 0;
    if (io_map_open(b, &y)) {
        io_map_close(&x);
        return 0;
    }
    int same = x.size == y.size && (x.size == 0 || memcmp(x.data, y.data, x.size) == 0);
    io_map_close(&x);
    io_map_close(&y);
    return same;
}

/* OUT plus tokenizer.bin beside it (an existing tokenizer.bin must hold the
 * same bytes; it is then left alone). */
static int out_llama2c(cv_set *s, const char *out, int want)
{
    char tmp[4200], tok_tmp[4300], tok_path[4200], dir[4096];
    int rc = file_target_ok(out);
    if (rc) return rc;
    if ((rc = l2c_check(s, out, want))) return rc;
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else dir[0] = 0;
    snprintf(tok_path, sizeof tok_path, "%stokenizer.bin", dir);
    snprintf(tok_tmp, sizeof tok_tmp, "%s.conv.%ld", tok_path, (long)getpid());
    io_sweep_stale(out, ".conv.");
    io_sweep_stale(tok_path, ".conv.");
    snprintf(tmp, sizeof tmp, "%s.conv.%ld", out, (long)getpid());
    io_tmp_register(tmp, 0);
    io_tmp_register(tok_tmp, 0);
    rc = write_llama2c(s, tmp, out, want);
    if (!rc) {
        rc = tok_write_llama2c(s->tok, tok_tmp);
        if (rc) unlink(tok_tmp);
    }
    if (!rc) rc = cv_verify(s, tmp, tok_tmp, out, "llama2.c");
    int keep_old_tok = 0;
    if (!rc && path_exists(tok_path, NULL)) {
        keep_old_tok = same_bytes(tok_path, tok_tmp);
        if (!keep_old_tok)
            rc = steer_err(STEER_EIO, "%s: %s exists and holds another tokenizer; write the checkpoint to another "
                           "directory", out, tok_path);
    }
    if (!rc && !keep_old_tok && rename(tok_tmp, tok_path) != 0)
        rc = steer_err(STEER_EIO, "%s: cannot rename %s into place: %s", out, tok_tmp, strerror(errno));
    if (!rc && rename(tmp, out) != 0) {
        rc = steer_err(STEER_EIO, "%s: cannot rename %s into place: %s", out, tmp, strerror(errno));
        if (!keep_old_tok) unlink(tok_path);
    }
    unlink(tok_tmp);
    if (rc) unlink(tmp);
    io_tmp_unregister(tmp);
    io_tmp_unregister(tok_tmp);
    return rc;
}

/* ---------------------------------------------------------------- steer_convert */

steer_convert_params steer_convert_default_params(void)
{
    steer_convert_params p = {.dtype = STEER_DTYPE_KEEP, .format = NULL, .tokenizer_path = NULL, .ftype = 0};
    return p;
}

/* out without trailing slashes ("dir/" names the directory dir), in buf
 * [CV_PATH_MAX + 1] when it had any. */
static const char *strip_slashes(const char *out, char *buf)
{
    size_t n = strlen(out);
    if (n < 2 || out[n - 1] != '/') return out;
    memcpy(buf, out, n + 1);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
    return buf;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int steer_convert(const char *in, const char *out, const steer_convert_params *p)
{
    /* Ownership: borrows everything; the model loaded from in lives only for
     * the call; creates out (and tokenizer.bin beside a llama2.c output). */
    steer_convert_params dp = steer_convert_default_params();
    if (!p) p = &dp;
    if (!in || !*in) return steer_err(STEER_EARG, "convert: no input path");
    if (!out || !*out) return steer_err(STEER_EARG, "convert: no output path");
    if (strlen(out) > CV_PATH_MAX) return steer_err(STEER_EARG, "%.64s...: output path too long", out);
    const int want_q = p->dtype >= 0 && p->dtype < STEER_DTYPE_COUNT && steer_dtype_is_quantized(p->dtype);
    if (p->dtype != STEER_DTYPE_KEEP && p->dtype != STEER_DTYPE_F32 && p->dtype != STEER_DTYPE_F16 &&
        p->dtype != STEER_DTYPE_BF16 && !want_q)
        return steer_err(STEER_EARG, "convert: dtype must be F32, F16, BF16 or a block type Q8_0 ... Q6_K (or -1 to "
                         "keep), got %d", p->dtype);
    if (p->ftype != 0 && mix_base(p->ftype) < 0)
        return steer_err(STEER_EARG, "convert: file type %d (%s) is not a quantization mix steer writes (Q4_0, Q4_1, "
                         "Q5_0, Q5_1, Q8_0, Q2_K, Q3_K_S/M/L, Q4_K_S/M, Q5_K_S/M, Q6_K)", p->ftype,
                         steer_ftype_name(p->ftype) ? steer_ftype_name(p->ftype) : "unknown");
    if (p->ftype != 0 && p->dtype != STEER_DTYPE_KEEP)
        return steer_err(STEER_EARG, "convert: a quantization mix (%s) chooses every matrix's type: give no dtype with it",
                         steer_ftype_name(p->ftype));
    char outb[CV_PATH_MAX + 1];
    out = strip_slashes(out, outb);
    const char *fmt = p->format;
    if (!fmt) fmt = ends_with(out, ".gguf") ? "gguf" : ends_with(out, ".bin") ? "llama2c" : "hf";
    int kind = strcmp(fmt, "hf") == 0 ? 0 : strcmp(fmt, "gguf") == 0 ? 1 : strcmp(fmt, "llama2c") == 0 ? 2 : -1;
    if (kind < 0) return steer_err(STEER_EARG, "convert: unknown format '%s' (hf, gguf, llama2c)", fmt);
    if (kind != 1 && (want_q || p->ftype))
        return steer_err(STEER_EUNSUPPORTED, "%s: block-quantized weights (%s) need a GGUF output (.gguf); %s hold F32, "
                         "F16 and BF16 only", out, want_q ? steer_dtype_name(p->dtype) : steer_ftype_name(p->ftype),
                         kind == 0 ? "Hugging Face safetensors" : "llama2.c checkpoints");
    if (kind == 2 && p->dtype != STEER_DTYPE_KEEP && p->dtype != STEER_DTYPE_F32)
        return steer_err(STEER_EUNSUPPORTED, "%s: llama2.c checkpoints are F32 only (asked for %s)", out,
                         steer_dtype_name((steer_dtype)p->dtype));
    int rc = kind == 0 ? dir_target_ok(out) : file_target_ok(out);
    if (rc) return rc;

    steer_model_params mp = steer_model_default_params();
    mp.tokenizer_path = p->tokenizer_path;
    steer_model *m = NULL;
    if ((rc = steer_model_load(in, &mp, &m))) return rc;
    cv_set s;
    rc = cv_from_model(&s, m, in);
    if (!rc) {
        if (kind == 0) rc = out_hf(&s, out, p->dtype);
        else if (kind == 1) rc = out_gguf(&s, out, p->dtype, p->ftype);
        else rc = out_llama2c(&s, out, p->dtype);
    }
    cv_free(&s);
    steer_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- random models */

steer_make_model_params steer_make_model_default_params(steer_arch arch)
{
    steer_make_model_params p = {
        .arch = arch, .d_model = 64, .d_ff = 128, .n_layer = 2, .n_head = 4, .n_kv_head = 2, .head_dim = 0,
        .n_vocab = 512, .n_ctx = 256, .tied = -1, .sliding_window = -1, .sliding_window_pattern = 0,
        .rope_theta = 0, .rope_theta_local = 0, .rms_eps = 0, .query_pre_attn_scalar = 0,
        .attn_softcap = -1, .final_softcap = -1, .dtype = STEER_DTYPE_F32, .seed = 1,
        .act = STEER_ACT_DEFAULT, .tokenizer = NULL,
    };
    return p;
}

static uint64_t mm_next(uint64_t *state)
{
    /* splitmix64 */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t mm_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    while (*s) h = (h ^ (unsigned char)*s++) * 0x100000001b3ull;
    return h;
}

/* One tensor of random values mean + std·z, z ≈ N(0, 1) (Irwin–Hall: the sum
 * of four 16-bit uniforms, standardised; integer arithmetic, so the values
 * depend on the seed and the tensor's name only). Rows have their own
 * streams. */
static int mm_tensor(cv_set *s, weight_role r, int layer, int64_t rows, int64_t cols, steer_dtype dt, double mean,
                     double std, uint64_t seed)
{
    char name[160];
    arch_tensor_name(s->arch, 0, r, layer, name, sizeof name);
    const int64_t nrows = rows ? rows : 1;
    const size_t esz = steer_dtype_size(dt);
    uint8_t *buf = cv_alloc(s, (size_t)(nrows * cols) * esz);
    if (!buf) return steer_err(STEER_ENOMEM, "make-model: out of memory (%s)", name);
    const uint64_t tseed = seed ^ mm_hash(name);
    const double sd1 = 37837.226568; /* sqrt(4 (65536² − 1) / 12) */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < nrows; i++) {
        uint64_t st = tseed + (uint64_t)i * 0xD1B54A32D192ED03ull;
        st = mm_next(&st);
        for (int64_t k = 0; k < cols; k++) {
            uint64_t v = mm_next(&st);
            uint32_t sum = (uint32_t)(v & 0xffff) + (uint32_t)((v >> 16) & 0xffff) + (uint32_t)((v >> 32) & 0xffff) +
                           (uint32_t)(v >> 48);
            float x = (float)(mean + std * (((double)sum - 131070.0) / sd1));
            size_t at = (size_t)(i * cols + k);
            if (dt == STEER_DTYPE_F32) ((float *)buf)[at] = x;
            else ((uint16_t *)buf)[at] = dt == STEER_DTYPE_F16 ? q_f32_to_f16(x) : ops_f32_to_bf16(x);
        }
    }
    *cv_at(s, r, layer) = (cv_tensor){buf, dt, rows, cols};
    return STEER_OK;
}

/* The synthetic vocabulary: <unk>, <s>, </s>, <0x00>..<0xFF>, then every
 * string over {▁, a..z} in order of length (so every prefix of a piece is a
 * piece and BPE can build it), scored by rank. */
static int mm_vocab(int n, tokenizer **out)
{
    const char **pieces = calloc((size_t)n, sizeof *pieces);
    float *scores = calloc((size_t)n, sizeof *scores);
    int *types = calloc((size_t)n, sizeof *types);
    char *pool = malloc((size_t)n * 40);
    int rc = STEER_OK;
    if (!pieces || !scores || !types || !pool) {
        rc = steer_err(STEER_ENOMEM, "make-model: out of memory");
        goto done;
    }
    char *p = pool;
    for (int i = 0; i < n; i++) {
        pieces[i] = p;
        if (i < 3) {
            p += sprintf(p, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>") + 1;
            types[i] = i == 0 ? TOK_UNKNOWN : TOK_CONTROL;
        } else if (i < 259) {
            p += sprintf(p, "<0x%02X>", i - 3) + 1;
            types[i] = TOK_BYTE;
        } else {
            /* the rank-th string: its length, then its digits in base 27 */
            int64_t rank = i - 259, count = 27;
            int len = 1;
            while (rank >= count) {
                rank -= count;
                count *= 27;
                len++;
            }
            int digit[8];
            for (int d = len - 1; d >= 0; d--) {
                digit[d] = (int)(rank % 27);
                rank /= 27;
            }
            for (int d = 0; d < len; d++) {
                if (digit[d] == 0) p += sprintf(p, "\xe2\x96\x81");
                else *p++ = (char)('a' + digit[d] - 1);
            }
            *p++ = 0;
            types[i] = TOK_NORMAL;
            scores[i] = -(float)(i - 259);
        }
    }
    rc = tok_build_spm(n, pieces, scores, types, 1, 2, 0, 1, out);
done:
    free(pieces);
    free(scores);
    free(types);
    free(pool);
    return rc;
}

int steer_make_model(const steer_make_model_params *p, const char *out_dir)
{
    /* Ownership: borrows p; creates out_dir. */
    if (!p) return steer_err(STEER_EARG, "make-model: no parameters");
    if (!out_dir || !*out_dir) return steer_err(STEER_EARG, "make-model: no output directory");
    if (strlen(out_dir) > CV_PATH_MAX) return steer_err(STEER_EARG, "%.64s...: output path too long", out_dir);
    char outb[CV_PATH_MAX + 1];
    out_dir = strip_slashes(out_dir, outb);
    const arch_info *a = arch_get(p->arch);
    if (!a) return steer_err(STEER_EARG, "make-model: unknown architecture %d", (int)p->arch);
    steer_model_config c = {0};
    c.arch = a->arch;
    c.arch_name = a->name;
    c.format = "hf";
    c.d_model = p->d_model;
    c.d_ff = p->d_ff;
    c.n_layer = p->n_layer;
    c.n_head = p->n_head;
    c.n_kv_head = p->n_kv_head;
    c.n_vocab = p->n_vocab;
    c.n_ctx_train = p->n_ctx;
    if (c.d_model <= 0 || c.d_ff <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.n_kv_head <= 0 || c.n_ctx_train <= 0 ||
        p->head_dim < 0)
        return steer_err(STEER_EARG, "make-model: sizes must be positive");
    if (c.n_layer > 4096 || c.d_model > 1 << 16 || c.d_ff > 1 << 20 || c.n_vocab > 1 << 22 || c.n_head > 1024 ||
        c.n_ctx_train > 1 << 24)
        return steer_err(STEER_EARG, "make-model: sizes are implausibly large");
    if (p->head_dim == 0 && c.d_model % c.n_head != 0)
        return steer_err(STEER_EARG, "make-model: d_model %d is not a multiple of %d heads (or give head_dim)",
                         c.d_model, c.n_head);
    c.head_dim = p->head_dim ? p->head_dim : c.d_model / c.n_head;
    if (c.n_head % c.n_kv_head != 0)
        return steer_err(STEER_EARG, "make-model: %d heads is not a multiple of %d KV heads", c.n_head, c.n_kv_head);
    if (c.head_dim % 2 != 0) return steer_err(STEER_EARG, "make-model: head_dim %d is odd", c.head_dim);
    if (c.n_vocab < 259)
        return steer_err(STEER_EARG, "make-model: vocabulary %d < 259 (<unk>, <s>, </s> and 256 byte pieces)", c.n_vocab);
    if (p->dtype != STEER_DTYPE_F32 && p->dtype != STEER_DTYPE_F16 && p->dtype != STEER_DTYPE_BF16)
        return steer_err(STEER_EARG, "make-model: dtype must be F32, F16 or BF16");
    const int gemma2 = a->arch == STEER_ARCH_GEMMA2, gemma3 = a->arch == STEER_ARCH_GEMMA3;
    const int has_window = gemma2 || gemma3 || a->arch == STEER_ARCH_MISTRAL;
    if (!has_window && p->sliding_window > 0)
        return steer_err(STEER_EARG, "make-model: %s has no sliding-window attention (gemma2, gemma3, mistral do)", a->name);
    if (!gemma2 && (p->attn_softcap > 0 || p->final_softcap > 0))
        return steer_err(STEER_EARG, "make-model: soft-capping is a gemma2 setting");
    c.tied_embeddings = p->tied < 0 ? a->tied_default : p->tied != 0;
    c.rope_theta = p->rope_theta > 0 ? p->rope_theta
                   : (a->arch == STEER_ARCH_QWEN2 || gemma3) ? 1e6f : 10000.0f;
    c.rms_eps = p->rms_eps > 0 ? p->rms_eps
                : (a->arch == STEER_ARCH_LLAMA || a->arch == STEER_ARCH_MISTRAL) ? 1e-5f : 1e-6f;
    if (p->act != STEER_ACT_DEFAULT && p->act != STEER_ACT_SILU && p->act != STEER_ACT_GELU_TANH && p->act != STEER_ACT_GELU)
        return steer_err(STEER_EARG, "make-model: unknown activation %d", p->act);
    c.act = p->act == STEER_ACT_DEFAULT ? a->default_act : p->act;
    c.embed_scale = a->embed_scale_sqrt_d ? sqrtf((float)c.d_model) : 1.0f;
    float qs = p->query_pre_attn_scalar > 0 ? p->query_pre_attn_scalar : (float)c.head_dim;
    c.attn_scale = 1.0f / sqrtf(a->sandwich_norms ? qs : (float)c.head_dim);
    c.attn_softcap = gemma2 ? (p->attn_softcap < 0 ? 50.0f : p->attn_softcap) : 0.0f;
    c.final_softcap = gemma2 ? (p->final_softcap < 0 ? 30.0f : p->final_softcap) : 0.0f;
    c.sliding_window = !has_window ? 0
                       : p->sliding_window >= 0 ? p->sliding_window
                       : a->arch == STEER_ARCH_MISTRAL ? 0
                                                        : (c.n_ctx_train / 4 > 0 ? c.n_ctx_train / 4 : 1);
    c.rope_theta_local = gemma3 ? (p->rope_theta_local > 0 ? p->rope_theta_local : 10000.0f) : c.rope_theta;
    c.sandwich_norms = a->sandwich_norms;
    c.qk_norm = a->qk_norm;
    c.qkv_bias = a->qkv_bias;
    c.weight_dtype = p->dtype;

    cv_set s;
    int rc = cv_init(&s, a, &c);
    tokenizer *tok = NULL;
    if (rc) goto done;
    const int pattern = gemma2 ? -2 : gemma3 ? (p->sliding_window_pattern > 0 ? p->sliding_window_pattern : 6) : -1;
    for (int l = 0; l < c.n_layer; l++) {
        int sl = 0;
        if (c.sliding_window > 0) sl = pattern > 0 ? (l + 1) % pattern != 0 : pattern == -2 ? l % 2 == 0 : 1;
        s.sliding[l] = (uint8_t)sl;
    }
    s.order = ROPE_HALF;
    s.norm_eff = 0;
    snprintf(s.name, sizeof s.name, "steer-random-%s", a->name);

    const int64_t d = c.d_model, hd = c.head_dim, qd = (int64_t)c.n_head * hd, kv = (int64_t)c.n_kv_head * hd,
                  ff = c.d_ff, V = c.n_vocab;
    const double norm_mean = a->norm_plus_one ? 0.0 : 1.0, emb_sd = 1.0 / sqrt((double)d);
    const uint64_t seed = p->seed;
    const steer_dtype dt = p->dtype;
    rc = mm_tensor(&s, W_TOK_EMBD, 0, V, d, dt, 0, emb_sd, seed);
    if (!rc) rc = mm_tensor(&s, W_OUT_NORM, 0, 0, d, STEER_DTYPE_F32, norm_mean, 0.1, seed);
    if (!rc && !c.tied_embeddings) rc = mm_tensor(&s, W_OUTPUT, 0, V, d, dt, 0, emb_sd, seed);
    for (int l = 0; !rc && l < c.n_layer; l++) {
        struct {
            weight_role r;
            int64_t rows, cols;
        } spec[] = {
            {W_ATTN_NORM, 0, d}, {W_Q, qd, d},         {W_K, kv, d},        {W_V, kv, d},
            {W_O, d, qd},        {W_Q_BIAS, 0, qd},    {W_K_BIAS, 0, kv},   {W_V_BIAS, 0, kv},
            {W_Q_NORM, 0, hd},   {W_K_NORM, 0, hd},    {W_POST_ATTN_NORM, 0, d}, {W_FFN_NORM, 0, d},
            {W_GATE, ff, d},     {W_UP, ff, d},        {W_DOWN, d, ff},     {W_POST_FFN_NORM, 0, d},
        };
        for (size_t k = 0; !rc && k < sizeof spec / sizeof spec[0]; k++) {
            weight_role r = spec[k].r;
            if (!arch_has_weight(a, r)) continue;
            if (weight_is_norm(r)) rc = mm_tensor(&s, r, l, 0, spec[k].cols, STEER_DTYPE_F32, norm_mean, 0.1, seed);
            else if (spec[k].rows == 0) rc = mm_tensor(&s, r, l, 0, spec[k].cols, STEER_DTYPE_F32, 0, 0.1, seed);
            else rc = mm_tensor(&s, r, l, spec[k].rows, spec[k].cols, dt, 0, 0.5 / sqrt((double)spec[k].cols), seed);
        }
    }
    if (!rc) rc = p->tokenizer ? tok_load_llama2c(p->tokenizer, c.n_vocab, &tok) : mm_vocab(c.n_vocab, &tok);
    if (!rc && p->tokenizer && tok_n_vocab(tok) != c.n_vocab)
        rc = steer_err(STEER_EARG, "%s: tokenizer has %d pieces, the model's vocabulary is %d", p->tokenizer,
                       tok_n_vocab(tok), c.n_vocab);
    if (!rc) {
        s.tok = tok;
        rc = out_hf(&s, out_dir, -1);
    }
done:
    tok_free(tok);
    cv_free(&s);
    return rc;
}

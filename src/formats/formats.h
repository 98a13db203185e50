/*
 * formats.h — the formats tier (src/formats/): GGUF reader/writer, Hugging Face
 * directories, safetensors, and the architecture table that names every
 * tensor once. Builds on base.h only. Not installed.
 */
#ifndef STEER_FORMATS_H
#define STEER_FORMATS_H

#include "base.h"

/* ---------------------------------------------------------------- GGUF (gguf.c) */

/* The internal reader/writer is named gg_* (gguflib and ggml own gguf_open,
 * gguf_close, gguf_find_tensor, …, which a static link next to them would
 * clash with). The public API over it is steer_gguf_* (include/steer.h,
 * "files: GGUF"), implemented at the end of gguf.c. */

/* ggml tensor types we read (values as in ggml.h; = STEER_GGML_* in steer.h;
 * the block types' layouts and codecs: quant.h). */
enum {
    GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1, GGML_TYPE_Q4_0 = 2, GGML_TYPE_Q4_1 = 3, GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7, GGML_TYPE_Q8_0 = 8, GGML_TYPE_Q2_K = 10, GGML_TYPE_Q3_K = 11, GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13, GGML_TYPE_Q6_K = 14, GGML_TYPE_BF16 = 30,
};

/* GGUF metadata value types (as in the GGUF spec). */
enum {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
};

typedef struct {
    char *name;        /* owned by the file                                   */
    int type;          /* GGML_TYPE_*                                         */
    int n_dims;
    uint64_t ne[4];    /* ggml order: ne[0] fastest-varying (= columns)       */
    const void *data;  /* into the mapping                                    */
    size_t nbytes;
} gg_tensor;

typedef struct gg_file gg_file;

/* Opens and fully validates a GGUF v2/v3 file (magic, version, every key and
 * tensor record inside the file, tensor data inside the file and aligned).
 * Errors name the file: "x.gguf: truncated at tensor info 3". */
int gg_open(const char *path, gg_file **out);
void gg_close(gg_file *f);
const char *gg_path(const gg_file *f);

/* Scalars, converting between integer types. STEER_EARG if the key is missing
 * ("<file>: missing key llama.block_count") or of another kind. */
int gg_get_u32(const gg_file *f, const char *key, uint32_t *out);
int gg_get_f32(const gg_file *f, const char *key, float *out);
int gg_get_bool(const gg_file *f, const char *key, int *out);
/* NUL-terminated copy owned by the file. */
int gg_get_str(const gg_file *f, const char *key, const char **out);
int gg_has_key(const gg_file *f, const char *key);
/* Array of strings: NUL-terminated copies (lens[i] = byte length, strings may
 * hold NUL bytes in principle) owned by the file. */
int gg_get_arr_str(const gg_file *f, const char *key, uint64_t *n, const char *const **strs,
                   const uint32_t **lens);
/* Array of numbers converted to float / int32 (malloc'd, caller frees). */
int gg_get_arr_f32(const gg_file *f, const char *key, uint64_t *n, float **out);
int gg_get_arr_i32(const gg_file *f, const char *key, uint64_t *n, int32_t **out);

int gg_n_tensors(const gg_file *f);
const gg_tensor *gg_tensor_at(const gg_file *f, int i);
const gg_tensor *gg_find_tensor(const gg_file *f, const char *name);

/* A GGUF v3 writer (alignment 32). Data pointers must stay valid until write. */
typedef struct gg_writer gg_writer;
int gg_writer_new(gg_writer **out);
void gg_writer_free(gg_writer *w);
int gg_writer_set_u32(gg_writer *w, const char *key, uint32_t v);
int gg_writer_set_f32(gg_writer *w, const char *key, float v);
int gg_writer_set_bool(gg_writer *w, const char *key, int v);
int gg_writer_set_str(gg_writer *w, const char *key, const char *v);
int gg_writer_set_arr_str(gg_writer *w, const char *key, const char *const *v, int n);
int gg_writer_set_arr_f32(gg_writer *w, const char *key, const float *v, int n);
int gg_writer_set_arr_i32(gg_writer *w, const char *key, const int32_t *v, int n);
/* ne in ggml order (ne[0] fastest). */
int gg_writer_add_tensor(gg_writer *w, const char *name, int ggml_type, int n_dims, const uint64_t *ne,
                         const void *data);
int gg_writer_write(gg_writer *w, const char *path); /* atomic */

/* ---------------------------------------------------------------- HF directories (io_hf.c) */

#include <cjson/cJSON.h>

/* Private ABI (used by libsteer-train and libsteer-exp): exported from the shared library under
 * steer_-prefixed names (src/base/base.h, "private ABI"). */
#define arch_get steer_arch_get
#define arch_tensor_name steer_arch_tensor_name
#define weight_is_norm steer_weight_is_norm


/* A Hugging Face model directory: config.json plus model.safetensors or a
 * sharded model.safetensors.index.json, every shard memory-mapped. */
typedef struct hf_dir hf_dir;

/* Opens dir. Errors name the file: "<dir>/config.json: not valid JSON",
 * "<dir>/model-00002-of-00002.safetensors: cannot open …" (missing shard),
 * "<dir>: no model.safetensors or model.safetensors.index.json". */
int hf_open(const char *dir, hf_dir **out);
void hf_close(hf_dir *h);
const char *hf_path(const hf_dir *h);
/* The parsed config.json; valid until hf_close. */
const cJSON *hf_config(const hf_dir *h);
/* Config getters. With required = 1 a missing key is STEER_EFORMAT
 * "<dir>/config.json: missing field 'hidden_size'"; with required = 0 *out
 * keeps its value. A present key of the wrong JSON type is always an error.
 * A JSON null counts as missing. */
int hf_cfg_int(const hf_dir *h, const char *key, int required, int *out);
int hf_cfg_float(const hf_dir *h, const char *key, int required, float *out);
int hf_cfg_bool(const hf_dir *h, const char *key, int required, int *out);
int hf_cfg_str(const hf_dir *h, const char *key, int required, const char **out);
/* Tensors across all shards. */
int hf_n_tensors(const hf_dir *h);
const steer_tensor_info *hf_tensor_at(const hf_dir *h, int i);
const steer_tensor_info *hf_find(const hf_dir *h, const char *name);

/* ---------------------------------------------------------------- architectures (arch.c) */

/* Every weight tensor of a supported model, by role. */
typedef enum {
    W_TOK_EMBD = 0, W_OUT_NORM, W_OUTPUT,                                   /* global   */
    W_ATTN_NORM, W_Q, W_K, W_V, W_O, W_Q_BIAS, W_K_BIAS, W_V_BIAS, W_Q_NORM, /* layer    */
    W_K_NORM, W_POST_ATTN_NORM, W_FFN_NORM, W_GATE, W_UP, W_DOWN, W_POST_FFN_NORM,
    W_COUNT
} weight_role;

typedef struct {
    steer_arch arch;
    const char *name;          /* steer's name and GGUF general.architecture
                                  (Mistral GGUFs say "llama")                */
    const char *gguf_arch;     /* architecture written to GGUF               */
    const char *hf_class;      /* config.json architectures[0]               */
    const char *hf_model_type; /* config.json model_type                     */
    steer_act default_act;
    int norm_plus_one;         /* HF stores w, the norm scales by (1 + w);
                                  llama.cpp's GGUF stores 1 + w              */
    int embed_scale_sqrt_d;    /* embeddings × √d                            */
    int sandwich_norms;
    int qk_norm;
    int qkv_bias;
    int gguf_permute_qk;       /* llama.cpp permutes q/k rows (adjacent-pair
                                  RoPE); other families keep HF order (NEOX) */
    int tied_default;          /* tie_word_embeddings default                */
} arch_info;

STEER_PRIVATE const arch_info *arch_get(steer_arch a);
const arch_info *arch_by_gguf(const char *gguf_arch);
const arch_info *arch_by_hf(const char *hf_class, const char *model_type);
/* "LlamaForCausalLM, MistralForCausalLM, …" for error messages (static). */
const char *arch_supported_list(void);
int weight_is_layer(weight_role r);
STEER_PRIVATE int weight_is_norm(weight_role r);
/* 1 if the architecture has this tensor (W_OUTPUT: only when untied). */
int arch_has_weight(const arch_info *a, weight_role r);
/* The tensor's name in Hugging Face (gguf = 0) or llama.cpp GGUF (gguf = 1)
 * naming, layer substituted. */
STEER_PRIVATE void arch_tensor_name(const arch_info *a, int gguf, weight_role r, int layer, char *buf, size_t n);

#endif /* STEER_FORMATS_H */

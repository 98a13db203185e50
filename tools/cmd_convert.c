/* cmd_convert.c — `steer convert IN OUT`: converts a model between a Hugging
 * Face directory, GGUF (F32/F16/BF16 and ggml's block-quantized types, one
 * type or a llama-quantize mix) and a llama2.c checkpoint (steer_convert does
 * the work). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#define TYPE_NAMES "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k"
#define MIX_NAMES "q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, q5_k_s, q5_k_m"

/* 1 if path is a GGUF file (by its magic). */
static int is_gguf(const char *path)
{
    char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    return n == 4 && memcmp(magic, "GGUF", 4) == 0;
}

/* Tensor types of a GGUF file, counted: "F32 5, Q4_K 13, Q6_K 3
 * (general.file_type 15 Q4_K_M)" into buf, or with quant_only only the
 * block types ("Q4_K 13, Q6_K 3"); *n_quant = the number of block-quantized
 * tensors. 0, or -1 if the file does not open (the error is left for
 * steer_convert to report). */
static int gguf_types(const char *path, int quant_only, char *buf, size_t cap, int *n_quant)
{
    steer_gguf *g = NULL;
    if (steer_gguf_open(path, &g) != STEER_OK)
        return -1;
    int count[64] = {0};
    const char *names[64] = {0};
    int order[64], n_order = 0;
    *n_quant = 0;
    for (int i = 0; i < steer_gguf_n_tensors(g); i++) {
        steer_gguf_tensor_info ti;
        if (steer_gguf_tensor_at(g, i, &ti) != STEER_OK)
            continue;
        const int is_float =
            ti.ggml_type == STEER_GGML_F32 || ti.ggml_type == STEER_GGML_F16 || ti.ggml_type == STEER_GGML_BF16;
        if (!is_float)
            (*n_quant)++;
        else if (quant_only)
            continue;
        int t = ti.ggml_type >= 0 && ti.ggml_type < 64 ? ti.ggml_type : 63;
        if (!count[t]++) {
            names[t] = ti.type_name;
            order[n_order++] = t;
        }
    }
    /* ggml type order (F32, F16, Q4_0, …), as llama-quantize prints them */
    for (int a = 0; a < n_order; a++)
        for (int b = a + 1; b < n_order; b++)
            if (order[b] < order[a]) {
                int x = order[a];
                order[a] = order[b];
                order[b] = x;
            }
    size_t at = 0;
    buf[0] = 0;
    for (int k = 0; k < n_order && at < cap; k++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%s %d", k ? ", " : "", names[order[k]], count[order[k]]);
    uint32_t ft = 0;
    if (!quant_only && steer_gguf_has_key(g, "general.file_type") && steer_gguf_get_u32(g, "general.file_type", &ft) == STEER_OK &&
        at < cap) {
        const char *fn = steer_ftype_name((int)ft);
        snprintf(buf + at, cap - at, " (general.file_type %u%s%s)", ft, fn ? " " : "", fn ? fn : "");
    }
    steer_gguf_free(g);
    return 0;
}

int cmd_convert(int argc, char **argv)
{
    const char *dtype_arg = NULL, *format = NULL, *tokenizer = NULL;
    int mix = 0;
    const char *pos[2] = {NULL, NULL};
    const cli_opt opts[] = {
        {NULL, "--dtype", OPT_STR, &dtype_arg, "TYPE",
         "dtype of the matrices (default: keep): f32|f16|bf16, a block type q8_0|q4_0|q4_1|q5_0|q5_1|q2_k|q3_k|"
         "q4_k|q5_k|q6_k (every matrix, GGUF only), or a llama-quantize mix q3_k_s|q3_k_m|q3_k_l|q4_k_s|q4_k_m|"
         "q5_k_s|q5_k_m; norms and biases stay f32"},
        {NULL, "--mix", OPT_FLAG, &mix, NULL,
         "with a block type: llama-quantize's file type of that name instead (e.g. q4_0: output.weight Q6_K; "
         "q2_k: attn_v, attn_output, ffn_down Q3_K; q4_k = q4_k_m)"},
        {NULL, "--format", OPT_STR, &format, "hf|gguf|llama2c",
         "output format (default: from OUT: .gguf, .bin, else a directory)"},
        {"-z", "--tokenizer", OPT_STR, &tokenizer, "FILE", "tokenizer.bin of a llama2.c input"},
    };
    const cli_spec spec = {
        .usage = "steer convert IN OUT [--dtype TYPE [--mix]] [--format hf|gguf|llama2c] [-z TOKENIZER]",
        .description =
            "Converts a model between formats, and quantizes it. IN is anything steer loads\n"
            "(a Hugging Face directory, a GGUF file, quantized or not, a llama2.c checkpoint).\n"
            "OUT is written as\n"
            "  hf       a directory: config.json, model.safetensors, tokenizer.json,\n"
            "           tokenizer_config.json (Hugging Face names and q/k row order)\n"
            "  gguf     a GGUF v3 file with llama.cpp's keys, tensor names and conventions\n"
            "           (llama-family q/k rows permuted, Gemma norms stored as 1 + w)\n"
            "  llama2c  a legacy llama2.c checkpoint (llama architecture, f32, RoPE theta\n"
            "           10000, eps 1e-5) and tokenizer.bin beside it\n"
            "Tensors are copied bit for bit unless --dtype asks for another dtype; a\n"
            "quantized input is dequantized exactly for HF and llama2.c outputs.\n"
            "\n"
            "Quantizing (GGUF output): --dtype q4_0 puts every matrix (token_embd, output\n"
            "and the layers' matrices) in Q4_0 with ggml's reference quantizer, the bytes\n"
            "llama-quantize --pure writes (without an importance matrix); 1-D tensors\n"
            "(norms, biases) stay F32. A mix, --dtype q4_k_m (or q4_0 --mix, …), follows\n"
            "llama-quantize's per-tensor rules for that file type: output.weight (or a tied\n"
            "token_embd) Q6_K unless the type is Q8_0; Q4_K_M/Q5_K_M: attn_v and ffn_down\n"
            "Q6_K on the first and last eighth of the layers and every third between;\n"
            "Q4_K_S: attn_v of layers 0-3 and ffn_down of the first eighth Q5_K; Q3_K_M:\n"
            "attn_v Q5_K on layers 0-1 else Q4_K, attn_output Q4_K, ffn_down Q4_K (Q5_K\n"
            "on the first 16th); Q3_K_L: those three Q5_K; Q2_K: attn_v Q3_K (Q4_K with\n"
            "4+ query heads per KV head), attn_output and ffn_down Q3_K; 80-layer llama\n"
            "(GQA) and qwen2: attn_v Q3_K/Q4_K → Q5_K. A row length that is not a\n"
            "multiple of the block falls back as in llama-quantize (Q2_K/Q3_K → Q4_0,\n"
            "Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0), then to F16. general.file_type is\n"
            "llama.cpp's (Q4_K_M 15, …; a pure q3_k/q4_k/q5_k counts as the _M type).\n"
            "Quantized input tensors are dequantized and quantized again (a warning says\n"
            "so) unless they already have the target type, which are copied. Differences\n"
            "from llama-quantize: no importance matrix, no IQ/TQ types, no Q2_K_S; rows of\n"
            "the 32-element types that are not a multiple of 32 become F16 (llama-quantize\n"
            "stops). The output is loaded back and checked against IN before it is moved\n"
            "into place; on failure nothing is left behind.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer convert tests/data/llama/hf llama.gguf\n"
                   "  steer convert llama.gguf llama-bf16.gguf --dtype bf16\n"
                   "  steer convert llama.gguf llama-Q4_K_M.gguf --dtype q4_k_m\n"
                   "  steer convert llama.gguf llama-Q8_0.gguf --dtype q8_0\n"
                   "  steer convert models/stories260K/stories260K.bin stories-hf",
        .min_pos = 2,
        .max_pos = 2,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    steer_convert_params p = steer_convert_default_params();
    if (dtype_arg) {
        steer_dtype dt;
        int ft = 0;
        if (steer_dtype_parse(dtype_arg, &dt) == STEER_OK) {
            if (!mix)
                p.dtype = dt;
            else if (!steer_dtype_is_quantized(dt) || steer_ftype_parse(dtype_arg, &ft) != STEER_OK)
                return cli_usage("--mix needs a block type (q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, "
                                 "q6_k), got '%s'", dtype_arg);
            else
                p.ftype = ft;
        } else if (steer_ftype_parse(dtype_arg, &ft) == STEER_OK) {
            p.ftype = ft; /* q4_k_m, …: a mix in any case */
        } else {
            return cli_usage("--dtype must be one of " TYPE_NAMES ", or a mix " MIX_NAMES "; got '%s'", dtype_arg);
        }
    } else if (mix) {
        return cli_usage("--mix needs --dtype with a block type");
    }
    if (format && strcmp(format, "hf") != 0 && strcmp(format, "gguf") != 0 && strcmp(format, "llama2c") != 0)
        return cli_usage("--format must be hf, gguf or llama2c, got '%s'", format);
    p.format = format;
    p.tokenizer_path = tokenizer;
    const int quantizing = p.ftype != 0 || (p.dtype != STEER_DTYPE_KEEP && steer_dtype_is_quantized(p.dtype));
    char types[512];
    int n_quant = 0;
    if (quantizing && is_gguf(pos[0]) && gguf_types(pos[0], 1, types, sizeof types, &n_quant) == 0 && n_quant > 0)
        fprintf(stderr, "steer convert: warning: %s holds %d block-quantized tensors (%s); those not already of "
                        "their target type are dequantized and quantized again, adding a second rounding error\n",
                pos[0], n_quant, types);
    double t0 = cli_now();
    if (steer_convert(pos[0], pos[1], &p) != STEER_OK)
        return cli_lib_error();
    printf("wrote %s (%.2f s)\n", pos[1], cli_now() - t0);
    if (is_gguf(pos[1]) && gguf_types(pos[1], 0, types, sizeof types, &n_quant) == 0)
        printf("tensor types: %s\n", types);
    /* llama2.c checkpoints keep their tokenizer in a second file: say so (the
     * library refuses to replace one that holds another tokenizer). */
    size_t len = strlen(pos[1]);
    if ((format && strcmp(format, "llama2c") == 0) || (!format && len > 4 && strcmp(pos[1] + len - 4, ".bin") == 0)) {
        const char *slash = strrchr(pos[1], '/');
        fprintf(stderr, "steer convert: the llama2.c tokenizer is %.*stokenizer.bin (written beside it, or kept "
                        "when it already held the same bytes)\n", slash ? (int)(slash - pos[1] + 1) : 0, pos[1]);
    }
    return 0;
}

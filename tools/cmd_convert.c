/* cmd_convert.c — `steer convert IN OUT`: converts a model between a Hugging
 * Face directory, GGUF (F32/F16/BF16) and a llama2.c checkpoint
 * (steer_convert does the work). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_convert(int argc, char **argv)
{
    const char *dtype_arg = NULL, *format = NULL, *tokenizer = NULL;
    const char *pos[2] = {NULL, NULL};
    const cli_opt opts[] = {
        {NULL, "--dtype", OPT_STR, &dtype_arg, "f32|f16|bf16",
         "dtype of the matrices (default: keep; norms and biases stay f32)"},
        {NULL, "--format", OPT_STR, &format, "hf|gguf|llama2c",
         "output format (default: from OUT: .gguf, .bin, else a directory)"},
        {"-z", "--tokenizer", OPT_STR, &tokenizer, "FILE", "tokenizer.bin of a llama2.c input"},
    };
    const cli_spec spec = {
        .usage = "steer convert IN OUT [--dtype f32|f16|bf16] [--format hf|gguf|llama2c] [-z TOKENIZER]",
        .description =
            "Converts a model between formats. IN is anything steer loads (a Hugging Face\n"
            "directory, a GGUF file, a llama2.c checkpoint). OUT is written as\n"
            "  hf       a directory: config.json, model.safetensors, tokenizer.json,\n"
            "           tokenizer_config.json (Hugging Face names and q/k row order)\n"
            "  gguf     a GGUF v3 file with llama.cpp's keys, tensor names and conventions\n"
            "           (llama-family q/k rows permuted, Gemma norms stored as 1 + w)\n"
            "  llama2c  a legacy llama2.c checkpoint (llama architecture, f32, RoPE theta\n"
            "           10000, eps 1e-5) and tokenizer.bin beside it\n"
            "Tensors are copied bit for bit unless --dtype asks for another dtype. The\n"
            "output is loaded back and checked against IN before it is moved into place;\n"
            "on failure nothing is left behind.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer convert tests/data/llama/hf llama.gguf\n"
                   "  steer convert llama.gguf llama-bf16.gguf --dtype bf16\n"
                   "  steer convert models/stories260K/stories260K.bin stories-hf",
        .min_pos = 2,
        .max_pos = 2,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    steer_convert_params p = steer_convert_default_params();
    if (dtype_arg && steer_dtype_parse(dtype_arg, &p.dtype) != STEER_OK)
        return cli_usage("--dtype must be f32, f16 or bf16, got '%s'", dtype_arg);
    if (format && strcmp(format, "hf") != 0 && strcmp(format, "gguf") != 0 && strcmp(format, "llama2c") != 0)
        return cli_usage("--format must be hf, gguf or llama2c, got '%s'", format);
    p.format = format;
    p.tokenizer_path = tokenizer;
    double t0 = cli_now();
    if (steer_convert(pos[0], pos[1], &p) != STEER_OK)
        return cli_lib_error();
    printf("wrote %s (%.2f s)\n", pos[1], cli_now() - t0);
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

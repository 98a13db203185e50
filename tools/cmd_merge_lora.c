/* cmd_merge_lora.c — `steer merge-lora`: folds the LoRA of a `steer train
 * --method lora|joint` checkpoint into the base model's weights and writes
 * the merged model (steer_merge_lora does the work). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_merge_lora(int argc, char **argv)
{
    const char *model = NULL, *tokp = NULL, *adapter = NULL, *out = NULL, *dtype_arg = NULL, *format = NULL,
               *steer_out = NULL;
    int quiet = 0;
    const cli_opt opts[] = {
        {"-m", "--model", OPT_STR, &model, "BASE", "the base model the adapter was trained on (required)"},
        {"-z", "--tokenizer", OPT_STR, &tokp, "FILE", "tokenizer of a llama2.c base"},
        {NULL, "--adapter", OPT_STR, &adapter, "FILE", "adapter.safetensors of a lora or joint run (required)"},
        {"-o", "--out", OPT_STR, &out, "OUT", "merged model: a directory (HF), *.gguf or *.bin (required)"},
        {NULL, "--dtype", OPT_STR, &dtype_arg, "f32|f16|bf16", "dtype of the matrices (default: the base's)"},
        {NULL, "--format", OPT_STR, &format, "hf|gguf|llama2c", "output format (default: from OUT)"},
        {NULL, "--steer-out", OPT_STR, &steer_out, "FILE",
         "joint: write the steering adapter here (required for joint)"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "print nothing on success"},
    };
    const cli_spec spec = {
        .usage = "steer merge-lora -m BASE --adapter RUN/adapter.safetensors -o OUT [--dtype f32|f16|bf16]",
        .description =
            "Folds a LoRA adapter into the base weights, W += (lora_alpha/r)·B·A for every adapted\n"
            "projection (PEFT names, as steer train --method lora writes them), and writes the merged\n"
            "model as a Hugging Face directory, a GGUF file or a llama2.c checkpoint (as steer\n"
            "convert; loaded back before it is moved into place). A joint checkpoint also holds a\n"
            "post-block adapter: --steer-out FILE saves it as an adapter checkpoint that\n"
            "steer eval --adapter applies to the merged model.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer train -m models/stories260K/stories260K.bin --data winogrande:dev.jsonl \\\n"
                   "      --method lora --steps 100 --out run\n"
                   "  steer merge-lora -m models/stories260K/stories260K.bin --adapter run/adapter.safetensors \\\n"
                   "      -o merged.gguf",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!model)
        return cli_usage("missing -m BASE");
    if (!adapter)
        return cli_usage("missing --adapter FILE");
    if (!out)
        return cli_usage("missing -o OUT");
    steer_merge_params p = steer_merge_default_params();
    if (dtype_arg && steer_dtype_parse(dtype_arg, &p.dtype) != STEER_OK)
        return cli_usage("--dtype must be f32, f16 or bf16, got '%s'", dtype_arg);
    if (format && strcmp(format, "hf") != 0 && strcmp(format, "gguf") != 0 && strcmp(format, "llama2c") != 0)
        return cli_usage("--format must be hf, gguf or llama2c, got '%s'", format);
    p.format = format;
    p.tokenizer_path = tokp;
    p.steer_out = steer_out;
    p.command = cli_cmdline;
    double t0 = cli_now();
    if (steer_merge_lora(model, adapter, out, &p) != STEER_OK)
        return cli_lib_error();
    if (!quiet) {
        printf("wrote %s (%.2f s)\n", out, cli_now() - t0);
        if (steer_out)
            printf("wrote %s (the steering adapter; apply it with steer eval -m %s --adapter %s)\n", steer_out, out,
                   steer_out);
    }
    return 0;
}

/* cmd_make_model.c — `steer make-model`: a random-weight model of any
 * supported architecture as a Hugging Face directory (steer_make_model does
 * the work); convert it with `steer convert` for the other formats. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_make_model(int argc, char **argv)
{
    const char *out = NULL, *arch_arg = NULL, *dtype_arg = "f32";
    int d = 64, ff = 128, layers = 2, heads = 4, kv_heads = 2, head_dim = 0, vocab = 512, ctx = 256, tied = -1;
    int window = -1;
    const char *act_arg = NULL, *tok_arg = NULL;
    float attn_cap = -1, final_cap = -1;
    uint64_t seed = 1;
    const cli_opt opts[] = {
        {NULL, "--arch", OPT_STR, &arch_arg, "A", "llama, mistral, qwen2, gemma, gemma2 or gemma3 (required)"},
        {"-o", "--out", OPT_STR, &out, "DIR", "output directory (required)"},
        CLI_ALIAS("--output", OPT_STR, &out),
        {NULL, "--d", OPT_INT, &d, "N", "d_model (default 64)"},
        {NULL, "--ff", OPT_INT, &ff, "N", "d_ff (default 128)"},
        {NULL, "--layers", OPT_INT, &layers, "N", "blocks (default 2)"},
        {NULL, "--heads", OPT_INT, &heads, "N", "attention heads (default 4)"},
        {NULL, "--kv-heads", OPT_INT, &kv_heads, "N", "key/value heads (default 2)"},
        {NULL, "--head-dim", OPT_INT, &head_dim, "N", "head dimension (default d / heads)"},
        {NULL, "--vocab", OPT_INT, &vocab, "N", "vocabulary size, >= 259 (default 512)"},
        {NULL, "--ctx", OPT_INT, &ctx, "N", "max_position_embeddings (default 256)"},
        {NULL, "--tied", OPT_INT, &tied, "0|1", "head tied to the embedding (default: the architecture's)"},
        {NULL, "--window", OPT_INT, &window, "N", "sliding window of gemma2/gemma3/mistral (default ctx/4; 0 none)"},
        {NULL, "--dtype", OPT_STR, &dtype_arg, "f32|f16|bf16", "dtype of the matrices (default f32)"},
        {NULL, "--act", OPT_STR, &act_arg, "A", "MLP activation silu|gelu_tanh|gelu (default: the architecture's)"},
        {NULL, "--attn-softcap", OPT_FLOAT, &attn_cap, "X", "gemma2 attention-logit soft-cap (default 50; 0 none)"},
        {NULL, "--final-softcap", OPT_FLOAT, &final_cap, "X", "gemma2 final-logit soft-cap (default 30; 0 none)"},
        {"-z", "--tokenizer", OPT_STR, &tok_arg, "FILE",
         "llama2.c tokenizer.bin to use as the vocabulary (its size must equal --vocab)"},
        {NULL, "--seed", OPT_U64, &seed, "S", "weights seed (default 1)"},
    };
    const cli_spec spec = {
        .usage = "steer make-model --arch A [--d N --ff N --layers N --heads N --kv-heads N --head-dim N --vocab N "
                 "--ctx N --tied 0|1 --window N --act A --attn-softcap X --final-softcap X --tokenizer FILE --dtype f32|f16|bf16] "
                 "--seed S -o DIR",
        .description =
            "Writes a Hugging Face directory (config.json, model.safetensors, tokenizer.json,\n"
            "tokenizer_config.json) holding a random-weight model of the architecture:\n"
            "weights are a deterministic function of --seed (matrices ~ N(0, (0.5/sqrt(cols))^2),\n"
            "embeddings N(0, 1/d), norm weights 1 + N(0, 0.01) in effect), with the\n"
            "architecture's own features (qwen2 biases, gemma2 soft-caps and sliding window,\n"
            "gemma3 q/k norms and local RoPE base) and a synthetic SentencePiece vocabulary\n"
            "(<unk>, <s>, </s>, 256 byte pieces, then fillers). Use `steer convert` to make\n"
            "GGUF or llama2.c copies.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer make-model --arch gemma2 --d 64 --ff 128 --layers 2 --heads 4 --kv-heads 2 --seed 7 -o g2\n"
                   "  steer convert g2 g2.gguf\n"
                   "  steer make-model --arch gemma2 --act silu --window 0 --attn-softcap 0 --final-softcap 0 \\\n"
                   "      --tokenizer models/stories260K/tok512.bin --vocab 512 --seed 1 -o gemma2-silu",
        .min_pos = 0,
        .max_pos = 0,
        .pos = NULL,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!arch_arg)
        return cli_usage("missing --arch A");
    if (!out)
        return cli_usage("missing -o DIR");
    static const struct {
        const char *name;
        steer_arch arch;
    } archs[] = {{"llama", STEER_ARCH_LLAMA}, {"mistral", STEER_ARCH_MISTRAL}, {"qwen2", STEER_ARCH_QWEN2},
                 {"gemma", STEER_ARCH_GEMMA}, {"gemma2", STEER_ARCH_GEMMA2}, {"gemma3", STEER_ARCH_GEMMA3}};
    int ai = -1;
    for (int i = 0; i < (int)(sizeof archs / sizeof archs[0]); i++)
        if (strcmp(arch_arg, archs[i].name) == 0)
            ai = i;
    if (ai < 0)
        return cli_usage("unknown --arch '%s' (llama, mistral, qwen2, gemma, gemma2, gemma3)", arch_arg);
    steer_make_model_params p = steer_make_model_default_params(archs[ai].arch);
    if (steer_dtype_parse(dtype_arg, &p.dtype) != STEER_OK)
        return cli_usage("--dtype must be f32, f16 or bf16, got '%s'", dtype_arg);
    if (tied != -1 && tied != 0 && tied != 1)
        return cli_usage("--tied must be 0 or 1, got %d", tied);
    if (d <= 0 || ff <= 0 || layers <= 0 || heads <= 0 || kv_heads <= 0 || head_dim < 0 || ctx <= 0)
        return cli_usage("sizes must be positive");
    if (heads % kv_heads)
        return cli_usage("--heads %d is not a multiple of --kv-heads %d", heads, kv_heads);
    if (head_dim == 0 && d % heads)
        return cli_usage("--d %d is not a multiple of --heads %d (or give --head-dim)", d, heads);
    if ((head_dim ? head_dim : d / heads) % 2)
        return cli_usage("head_dim %d is odd", head_dim ? head_dim : d / heads);
    if (vocab < 259)
        return cli_usage("--vocab must be >= 259 (3 special + 256 byte tokens), got %d", vocab);
    p.d_model = d;
    p.d_ff = ff;
    p.n_layer = layers;
    p.n_head = heads;
    p.n_kv_head = kv_heads;
    p.head_dim = head_dim;
    p.n_vocab = vocab;
    p.n_ctx = ctx;
    p.tied = tied;
    p.sliding_window = window;
    p.seed = seed;
    p.tokenizer = tok_arg;
    if (act_arg) {
        if (strcmp(act_arg, "silu") == 0)
            p.act = STEER_ACT_SILU;
        else if (strcmp(act_arg, "gelu_tanh") == 0 || strcmp(act_arg, "gelu_pytorch_tanh") == 0)
            p.act = STEER_ACT_GELU_TANH;
        else if (strcmp(act_arg, "gelu") == 0)
            p.act = STEER_ACT_GELU;
        else
            return cli_usage("--act must be silu, gelu_tanh or gelu, got '%s'", act_arg);
    }
    if ((attn_cap != -1 || final_cap != -1) && p.arch != STEER_ARCH_GEMMA2)
        return cli_usage("--attn-softcap and --final-softcap apply to gemma2 only");
    if ((attn_cap != -1 && attn_cap < 0) || (final_cap != -1 && final_cap < 0))
        return cli_usage("soft-caps must be >= 0");
    p.attn_softcap = attn_cap;
    p.final_softcap = final_cap;
    if (window > 0 && p.arch != STEER_ARCH_GEMMA2 && p.arch != STEER_ARCH_GEMMA3 && p.arch != STEER_ARCH_MISTRAL)
        return cli_usage("--window applies to gemma2, gemma3 and mistral only");
    if (steer_make_model(&p, out) != STEER_OK)
        return cli_lib_error();
    printf("wrote %s (%s, seed %llu)\n", out, archs[ai].name, (unsigned long long)seed);
    return 0;
}

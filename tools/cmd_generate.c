/* cmd_generate.c — `steer generate`: text generation printed like llama2.c's
 * run.c, with optional steering vectors (--steer), llama.cpp control vectors
 * (--control-vector, --control-vector-layer-range) and direction ablations
 * (--ablate), composed in the order documented in docs/VECTORS.md. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const steer_model *m;
    int prev, bos, eos;
} printer;

/* Writes a token's piece as run.c's safe_printf does: a piece that is one
 * byte which is neither printable nor whitespace is skipped, and the piece
 * ends at its first NUL. */
static void print_piece(const steer_model *m, int prev, int token)
{
    size_t len = 0;
    const char *piece = steer_token_piece(m, prev, token, &len);
    if (!piece)
        return;
    len = strnlen(piece, len);
    if (len == 0)
        return;
    if (len == 1) {
        unsigned char b = (unsigned char)piece[0];
        if (!(isprint(b) || isspace(b)))
            return;
    }
    fwrite(piece, 1, len, stdout);
}

static int on_token(void *ud, int token)
{
    printer *p = ud;
    if (token == p->bos || token == p->eos)
        return 1;
    print_piece(p->m, p->prev, token);
    fflush(stdout);
    p->prev = token;
    return 0;
}

static int generate_main(int argc, char **argv);

/* llama.cpp spells the range as two arguments (--control-vector-layer-range A B);
 * the option parser takes one value, so the two are joined as "A B". Returns
 * a new argv (malloc'd, with *joined holding the one allocated string). */
static char **merge_range_args(int argc, char **argv, int *new_argc, char **joined)
{
    char **out = malloc(((size_t)argc + 1) * sizeof *out);
    if (!out)
        return NULL;
    int n = 0;
    *joined = NULL;
    for (int i = 0; i < argc; i++) {
        out[n++] = argv[i];
        if (strcmp(argv[i], "--") == 0) {
            while (++i < argc)
                out[n++] = argv[i];
            break;
        }
        if (strcmp(argv[i], "--control-vector-layer-range") == 0 && i + 2 < argc && !*joined) {
            size_t len = strlen(argv[i + 1]) + strlen(argv[i + 2]) + 2;
            *joined = malloc(len);
            if (!*joined) {
                free(out);
                return NULL;
            }
            snprintf(*joined, len, "%s %s", argv[i + 1], argv[i + 2]);
            out[n++] = *joined;
            i += 2;
        }
    }
    out[n] = NULL;
    *new_argc = n;
    return out;
}

int cmd_generate(int argc, char **argv)
{
    int n_args = 0;
    char *joined = NULL;
    char **args = merge_range_args(argc, argv, &n_args, &joined);
    if (!args)
        return cli_error("out of memory");
    int rc = generate_main(n_args, args);
    free(args);
    free(joined);
    return rc;
}

static int generate_main(int argc, char **argv)
{
    const char *model = NULL, *tokenizer = NULL, *prompt = NULL, *ids = NULL;
    int n_new = 128, top_k = 0, n_threads = 0, n_ctx = 0, quiet = 0, chat = 0;
    float temp = 0.0f, top_p = 1.0f;
    uint64_t seed = steer_sampler_default_params().seed;
    cli_strlist steers = {{0}, 0}, cvs = {{0}, 0}, ablates = {{0}, 0};
    const char *cv_range = NULL, *adapter = NULL;
    const cli_opt opts[] = {
        {"-m", "--model", OPT_STR, &model, "MODEL", "model: GGUF, Hugging Face directory or llama2.c .bin (required)"},
        {"-z", "--tokenizer", OPT_STR, &tokenizer, "FILE", "tokenizer.bin for llama2.c checkpoints"},
        {"-p", "--prompt", OPT_STR, &prompt, "TEXT", "prompt (default empty: start from BOS)"},
        {NULL, "--ids", OPT_STR, &ids, "\"1 403 ...\"", "prompt as token ids instead of text"},
        {NULL, "--chat", OPT_FLAG, &chat, NULL, "wrap the prompt as a user turn in the model's chat format"},
        {"-n", "--n", OPT_INT, &n_new, "N", "new tokens to generate (default 128)"},
        CLI_ALIAS("--n-new", OPT_INT, &n_new),
        {"-t", "--temp", OPT_FLOAT, &temp, "T", "temperature, 0 = greedy (default 0)"},
        {NULL, "--top-k", OPT_INT, &top_k, "K", "sample among the K most likely tokens (0 = off)"},
        {NULL, "--top-p", OPT_FLOAT, &top_p, "P", "nucleus sampling threshold (1 = off)"},
        {"-s", "--seed", OPT_U64, &seed, "S", "sampler seed"},
        {NULL, "--threads", OPT_INT, &n_threads, "N", "threads (0 = OpenMP default)"},
        {NULL, "--ctx", OPT_INT, &n_ctx, "N", "context positions (0 = the model's training context)"},
        {NULL, "--steer", OPT_LIST, &steers, "FILE[:SITE[:LAYERS[:ALPHA]]][@POS]",
         "add vectors <site>.<layer> from a vector file (repeatable)"},
        {NULL, "--control-vector", OPT_LIST, &cvs, "FILE[:SCALE][@POS]",
         "add a llama.cpp/repeng control vector: direction.L after block L (repeatable)"},
        {NULL, "--control-vector-layer-range", OPT_STR, &cv_range, "A B",
         "apply control vectors only to layers A..B (inclusive, as llama.cpp)"},
        {NULL, "--ablate", OPT_LIST, &ablates, "FILE[:SITE[:LAYERS]][@POS]",
         "project out each vector's direction, h -= (h.u)u (repeatable)"},
        {NULL, "--adapter", OPT_STR, &adapter, "FILE",
         "apply a steer train checkpoint (adapter.safetensors: vector, adapter, LoReFT, LoRA, joint)"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "no tokens-per-second line on stderr"},
    };
    const cli_spec spec = {
        .usage = "steer generate -m MODEL [-p PROMPT] [-n N] [--temp T] [--steer FILE[:SITE[:LAYERS[:ALPHA]]]]...\n"
                 "       [--control-vector FILE[:SCALE]]... [--control-vector-layer-range A B] [--ablate FILE[:SITE[:LAYERS]]]...",
        .description =
            "Tokenizes PROMPT with BOS, prints the prompt and then each new token as it is\n"
            "produced (as llama2.c run.c does), and a final newline. Stops early at BOS/EOS.\n"
            "--steer adds each tensor <site>.<layer> ([d] or per position [T, d]) of a\n"
            "vector file (safetensors, or a llama.cpp control vector read as resid_post),\n"
            "times ALPHA (default 1), at that site and layer; SITE and LAYERS\n"
            "(all | 3 | 0,2,5-7) select which tensors are used. --control-vector reads a\n"
            "llama.cpp or repeng GGUF with llama.cpp's meaning: direction.L (L >= 1) times\n"
            "SCALE (default 1) is added to the output of block L (resid_post.L).\n"
            "Composition at each (site, layer): first every --ablate direction, in order;\n"
            "then one addition of the sum of all --steer and --control-vector vectors.\n"
            "Each of them may end in a position selector: FILE...@prompt, @generated, @last,\n"
            "@last:K, @A:B (A <= position < B), @A: or @A,B,C. LAYERS may count from the end\n"
            "(-1 = the last layer); SITE may be a TransformerLens name (hook_resid_post, or\n"
            "blocks.3.hook_resid_post, which names the layer too). --adapter applies a\n"
            "steer train checkpoint (before the options above). See docs/VECTORS.md.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer generate -m models/stories260K/stories260K.bin -p \"Once upon a time\" -n 64\n"
                   "  steer generate -m model.gguf -p \"I think\" --steer happy.safetensors:resid_post:3-5:4.0\n"
                   "  steer generate -m model.gguf -p \"I think\" --control-vector happy.gguf:0.8 \\\n"
                   "      --control-vector-layer-range 10 20\n"
                   "  steer generate -m model.gguf -p \"I think\" --steer happy.safetensors:resid_post:-4:4@generated\n"
                   "  steer generate -m models/stories260K/stories260K.bin --adapter run/adapter.safetensors -p \"Once\"",
        .min_pos = 0,
        .max_pos = 0,
        .pos = NULL,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!model)
        return cli_usage("missing -m MODEL");
    if (n_new < 0)
        return cli_usage("-n must be >= 0, got %d", n_new);
    if (temp < 0 || top_k < 0 || top_p <= 0 || top_p > 1)
        return cli_usage("need --temp >= 0, --top-k >= 0 and 0 < --top-p <= 1");
    if (prompt && ids)
        return cli_usage("give either --prompt or --ids, not both");
    if (!prompt && !ids)
        prompt = "";

    steer_model *m = NULL, *run_m = NULL;
    steer_adapter *ad = NULL;
    steer_ctx *c = NULL;
    steer_sampler *smp = NULL;
    int *toks = NULL, n_tok = 0;
    rc = cli_load_model(model, tokenizer, &m);
    run_m = m;
    if (!rc && adapter) { /* LoRA: a copy of the model with the LoRA merged; steering: a hook */
        if (steer_adapter_load(m, adapter, &ad) != STEER_OK)
            rc = cli_lib_error_at("--adapter");
        else
            run_m = steer_adapter_model(ad);
    }
    if (!rc)
        rc = cli_prompt_tokens(run_m, prompt, ids, chat, &toks, &n_tok);
    if (!rc)
        rc = cli_new_ctx(run_m, n_ctx, n_threads, &c);
    if (!rc)
        rc = cli_check_context(n_tok, steer_ctx_n_ctx(c));
    if (!rc && ad && steer_adapter_install(ad, c) != STEER_OK)
        rc = cli_lib_error_at("--adapter");
    if (!rc)
        rc = cli_add_steering(c, run_m, &steers, &cvs, cv_range, &ablates);
    if (!rc) {
        steer_sampler_params sp = steer_sampler_default_params();
        sp.temperature = temp;
        sp.top_k = top_k;
        sp.top_p = top_p;
        sp.seed = seed;
        if (steer_sampler_new(&sp, &smp) != STEER_OK)
            rc = cli_lib_error();
    }
    if (!rc) {
        /* The prompt after BOS; --ids without BOS print their first token too
         * (as after any non-BOS token: a leading space is kept). */
        if (toks[0] != steer_token_bos(m))
            print_piece(m, toks[0], toks[0]);
        for (int i = 1; i < n_tok; i++)
            print_piece(m, toks[i - 1], toks[i]);
        fflush(stdout);
        printer pr = {m, toks[n_tok - 1], steer_token_bos(m), steer_token_eos(m)};
        int n_out = 0;
        double t0 = cli_now();
        if (steer_generate(c, toks, n_tok, n_new, smp, on_token, &pr, &n_out) != STEER_OK) {
            fputc('\n', stdout);
            fflush(stdout);
            rc = cli_lib_error();
        } else {
            double dt = cli_now() - t0;
            fputc('\n', stdout);
            fflush(stdout);
            /* Said even with --quiet: the output is shorter than asked for. */
            if (n_out < n_new && n_tok + n_out >= steer_ctx_n_ctx(c))
                fprintf(stderr, "steer generate: stopped after %d of %d new tokens: the context holds %d positions "
                                "(see --ctx)\n", n_out, n_new, steer_ctx_n_ctx(c));
            if (!quiet && isatty(STDERR_FILENO))
                fprintf(stderr, "%d prompt + %d new tokens in %.2f s: %.1f tok/s\n", n_tok, n_out, dt,
                        dt > 0 ? (double)(n_tok + n_out) / dt : 0.0);
        }
    }
    if (smp)
        steer_sampler_free(smp);
    if (c)
        steer_ctx_free(c);
    free(toks);
    steer_adapter_free(ad);
    if (m)
        steer_model_free(m);
    return rc;
}

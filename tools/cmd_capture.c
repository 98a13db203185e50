/* cmd_capture.c — `steer capture` (activations at sites/layers) and
 * `steer logits` (logits of every position): one forward pass over a prompt,
 * results written to a safetensors file. */
#include "cli.h"
#include "capture_batch.h"
#include "mpi/mpi_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What both commands share: a model, a context and the prompt's tokens. */
typedef struct {
    const char *model, *tokenizer, *prompt, *ids, *out;
    int n_ctx, n_threads;
    cli_strlist steers, cvs, ablates; /* --steer, --control-vector, --ablate */
    int chat;                         /* --chat                                 */
    const char *adapter;              /* --adapter: a steer train checkpoint    */
    steer_model *m;                   /* the model run (with a LoRA merged)     */
    steer_model *base;                /* the model loaded                       */
    steer_adapter *ad;
    steer_ctx *c;
    int *toks, n_tok;
} run_state;

/* The options both commands take; fills o[0..N_RUN_OPTS). */
#define N_RUN_OPTS 13
static void run_opts(run_state *st, cli_opt *o)
{
    o[0] = (cli_opt){"-m", "--model", OPT_STR, &st->model, "MODEL", "model: GGUF, Hugging Face directory or llama2.c .bin (required)"};
    o[1] = (cli_opt){"-z", "--tokenizer", OPT_STR, &st->tokenizer, "FILE", "tokenizer.bin for llama2.c checkpoints"};
    o[2] = (cli_opt){"-p", "--prompt", OPT_STR, &st->prompt, "TEXT", "prompt text (tokenized with BOS)"};
    o[3] = (cli_opt){NULL, "--ids", OPT_STR, &st->ids, "\"1 403 ...\"", "prompt as token ids (used as given)"};
    o[4] = (cli_opt){"-o", "--out", OPT_STR, &st->out, "FILE", "output .safetensors (required)"};
    o[5] = (cli_opt){NULL, "--ctx", OPT_INT, &st->n_ctx, "N", "context positions (0 = the model's training context)"};
    o[6] = (cli_opt){NULL, "--threads", OPT_INT, &st->n_threads, "N", "threads (0 = OpenMP default)"};
    o[7] = (cli_opt){NULL, "--steer", OPT_LIST, &st->steers, "FILE[:SITE[:LAYERS[:ALPHA]]][@POS]",
                     "add steering vectors during the pass (repeatable, as in generate)"};
    o[8] = (cli_opt){NULL, "--control-vector", OPT_LIST, &st->cvs, "FILE[:SCALE][@POS]",
                     "add a llama.cpp/repeng control vector (repeatable, as in generate)"};
    o[9] = (cli_opt){NULL, "--ablate", OPT_LIST, &st->ablates, "FILE[:SITE[:LAYERS]][@POS]",
                     "project directions out (repeatable, as in generate)"};
    o[10] = (cli_opt){NULL, "--chat", OPT_FLAG, &st->chat, NULL, "wrap the prompt as a user turn in the model's chat format"};
    o[11] = (cli_opt){NULL, "--adapter", OPT_STR, &st->adapter, "FILE",
                      "apply a steer train checkpoint (adapter.safetensors), as in generate"};
    o[12] = (cli_opt)CLI_ALIAS("--output", OPT_STR, &st->out);
}

static int check_common(const run_state *st)
{
    if (!st->model)
        return cli_usage("missing -m MODEL");
    if (!st->out)
        return cli_usage("missing -o FILE");
    if ((st->prompt == NULL) == (st->ids == NULL))
        return cli_usage("give exactly one of --prompt and --ids");
    return 0;
}

/* Loads the model, tokenizes, makes the context and adds steering. */
static int setup(run_state *st)
{
    int rc = cli_load_model(st->model, st->tokenizer, &st->base);
    st->m = st->base;
    if (!rc && st->adapter) {
        if (steer_adapter_load(st->base, st->adapter, &st->ad) != STEER_OK)
            rc = cli_lib_error_at("--adapter");
        else
            st->m = steer_adapter_model(st->ad);
    }
    if (!rc)
        rc = cli_prompt_tokens(st->m, st->prompt, st->ids, st->chat, &st->toks, &st->n_tok);
    if (!rc)
        rc = cli_new_ctx(st->m, st->n_ctx, st->n_threads, &st->c);
    if (!rc)
        rc = cli_check_context(st->n_tok, steer_ctx_n_ctx(st->c));
    if (!rc) /* the whole input is the prompt for @prompt / @last / @generated */
        steer_ctx_set_prompt_len(st->c, 0, st->n_tok);
    if (!rc && st->ad && steer_adapter_install(st->ad, st->c) != STEER_OK)
        rc = cli_lib_error_at("--adapter");
    if (!rc)
        rc = cli_add_steering(st->c, st->m, &st->steers, &st->cvs, NULL, &st->ablates);
    return rc;
}

static void teardown(run_state *st)
{
    if (st->c)
        steer_ctx_free(st->c);
    free(st->toks);
    steer_adapter_free(st->ad);
    if (st->base)
        steer_model_free(st->base);
}

/* "1 403 407" (malloc'd). */
static char *ids_string(const int *toks, int n)
{
    char *s = malloc((size_t)n * 12 + 1), *p = s;
    if (!s)
        return NULL;
    *p = '\0';
    for (int i = 0; i < n; i++)
        p += sprintf(p, i ? " %d" : "%d", toks[i]);
    return s;
}

/* Metadata both commands record. */
static int add_common_meta(steer_tensors_writer *w, const run_state *st, const char *ids)
{
    if (steer_tensors_writer_meta(w, "format_version", "1") || steer_tensors_writer_meta(w, "method", cli_cmd) ||
        steer_tensors_writer_meta(w, "model", st->model) ||
        steer_tensors_writer_meta(w, "tokens", ids ? ids : "") ||
        (st->prompt && steer_tensors_writer_meta(w, "prompt", st->prompt)) ||
        steer_tensors_writer_meta(w, "command", cli_cmdline))
        return cli_lib_error();
    for (int i = 0; i < st->steers.n; i++) {
        char key[32];
        snprintf(key, sizeof key, "steer.%d", i);
        if (steer_tensors_writer_meta(w, key, st->steers.items[i]))
            return cli_lib_error();
    }
    return 0;
}

static int write_file(steer_tensors_writer *w, const char *path)
{
    if (steer_tensors_writer_write(w, path) != STEER_OK)
        return cli_lib_error();
    return 0;
}

int cmd_capture(int argc, char **argv)
{
    run_state st;
    memset(&st, 0, sizeof st);
    const char *sites_arg = "resid_post", *layers_arg = "all";
    const char *prompts_file = NULL, *data_spec = NULL, *positions = "all"; /* batch capture (capture_batch.c) */
    int batch = 0, quiet = 0, mpi = 0;
    float mpi_timeout = 60.0f;
    cli_opt opts[N_RUN_OPTS + 9];
    run_opts(&st, opts);
    opts[N_RUN_OPTS] = (cli_opt){NULL, "--sites", OPT_STR, &sites_arg, "LIST",
                                 "sites, comma-separated, or all (default resid_post)"};
    opts[N_RUN_OPTS + 1] =
        (cli_opt){NULL, "--layers", OPT_STR, &layers_arg, "LIST", "layers: all | 3 | 0,2,5-7 | -1 (default all)"};
    opts[N_RUN_OPTS + 2] = (cli_opt){NULL, "--prompts", OPT_STR, &prompts_file, "FILE",
                                     "batch: one prompt per line (empty lines skipped) into one file"};
    opts[N_RUN_OPTS + 3] = (cli_opt){NULL, "--data", OPT_STR, &data_spec, "SPEC", "batch: the prompts of a dataset FORMAT:FILE"};
    opts[N_RUN_OPTS + 4] = (cli_opt){NULL, "--positions", OPT_STR, &positions, "all|last|mean",
                                     "batch: every position [N, T_max, w], the last [N, w] or the mean [N, w] (default all)"};
    opts[N_RUN_OPTS + 5] = (cli_opt){NULL, "--batch", OPT_INT, &batch, "N", "batch: prompts per forward pass (0 = 32)"};
    opts[N_RUN_OPTS + 6] = (cli_opt){"-q", "--quiet", OPT_FLAG, &quiet, NULL, "no progress on stderr"};
    {
        const cli_opt mo[2] = {CLI_MPI_OPTS(&mpi, &mpi_timeout, "batches of prompts")};
        opts[N_RUN_OPTS + 7] = mo[0];
        opts[N_RUN_OPTS + 8] = mo[1];
    }
    const cli_spec spec = {
        .usage = "steer capture -m MODEL (-p PROMPT | --ids \"1 403 ...\" | --prompts FILE | --data SPEC)\n"
                 "       [--sites LIST] [--layers LIST] [--positions all|last|mean] -o FILE",
        .description = "Runs the prompt once and writes the activations at every chosen (site, layer)\n"
                       "as F32 tensors <site>.<layer> of shape [T, width] (T = prompt tokens with BOS).\n"
                       "Sites: resid_pre, attn_out, resid_mid, mlp_in, mlp_gate, mlp_up, mlp_act,\n"
                       "mlp_out, resid_post. A capture can be used as a --steer vector file.\n"
                       "With --prompts FILE (one prompt per line) or --data FORMAT:FILE, every prompt is\n"
                       "run (--batch at a time) into ONE file: <site>.<layer> [N, T_max, width] (rows past\n"
                       "a prompt's length are zero), or [N, width] with --positions last (the last token)\n"
                       "or mean (over positions 0..len-1, BOS included), plus lengths [N] I32 and tokens\n"
                       "[N, T_max] I32 (padded with -1). Rows are bit for bit the single-prompt captures.\n"
                       "With --mpi (under mpirun/srun) the batches are shared over the ranks and rank 0\n"
                       "writes the same file (docs/SCALING.md).",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer capture -m models/stories260K/stories260K.bin -p \"Once upon a time\" \\\n"
                   "      --sites resid_post,attn_out --layers all -o acts.safetensors\n"
                   "  steer capture -m models/stories260K/stories260K.bin --prompts prompts.txt \\\n"
                   "      --layers -1 --positions last -o acts.safetensors\n"
                   "  mpirun -np 4 steer capture ... --data winogrande:dev.jsonl --threads 1 --mpi -o acts.safetensors",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (prompts_file || data_spec) {
        if (prompts_file && data_spec)
            return cli_usage("give one of --prompts and --data");
        if (st.prompt || st.ids)
            return cli_usage("--prompts/--data take no --prompt or --ids");
        if (!st.model)
            return cli_usage("missing -m MODEL");
        if (!st.out)
            return cli_usage("missing -o FILE");
        steer_site bsites[STEER_SITE_COUNT];
        int n_bsites = 0;
        char berr[512];
        if (cli_parse_sites(sites_arg, bsites, &n_bsites, berr, sizeof berr))
            return cli_error("--sites: %s", berr);
        capture_batch_args ba = {.model = st.model, .tokenizer = st.tokenizer, .out = st.out,
                                 .prompts_file = prompts_file, .data_spec = data_spec, .layers_arg = layers_arg,
                                 .positions = positions, .sites = bsites, .n_sites = n_bsites, .chat = st.chat,
                                 .n_ctx = st.n_ctx, .n_threads = st.n_threads, .batch = batch, .quiet = quiet,
                                 .steers = &st.steers, .cvs = &st.cvs, .ablates = &st.ablates,
                                 .adapter = st.adapter, .mpi = mpi, .mpi_timeout = mpi_timeout};
        return capture_batch(&ba);
    }
    if (strcmp(positions, "all") != 0 || batch)
        return cli_usage("--positions and --batch go with --prompts or --data");
    if (mpi) return cli_usage("--mpi goes with --prompts or --data");
    if ((rc = check_common(&st)) != 0)
        return rc;
    steer_site sites[STEER_SITE_COUNT];
    int n_sites = 0;
    char err[512];
    if (cli_parse_sites(sites_arg, sites, &n_sites, err, sizeof err))
        return cli_error("--sites: %s", err);

    unsigned char *mask = NULL;
    char *ids = NULL;
    char(*names)[48] = NULL;
    steer_tensors_writer *w = NULL;
    rc = setup(&st);
    if (!rc) {
        int n_layer = steer_model_get_config(st.m)->n_layer;
        mask = malloc((size_t)n_layer);
        names = calloc((size_t)n_sites * (size_t)n_layer, sizeof *names);
        if (!mask || !names)
            rc = cli_error("out of memory");
        else if (cli_parse_layers(layers_arg, n_layer, mask, err, sizeof err))
            rc = cli_error("--layers: %s", err);
        for (int s = 0; !rc && s < n_sites; s++)
            for (int l = 0; !rc && l < n_layer; l++)
                if (mask[l] && steer_ctx_add_capture(st.c, sites[s], l, 0) < 0)
                    rc = cli_lib_error();
        if (!rc && steer_forward_tokens(st.c, st.toks, st.n_tok, 0, 0) != STEER_OK)
            rc = cli_lib_error();
        if (!rc && steer_tensors_writer_new(&w) != STEER_OK)
            rc = cli_lib_error();
        for (int s = 0; !rc && s < n_sites; s++) {
            for (int l = 0; !rc && l < n_layer; l++) {
                if (!mask[l])
                    continue;
                int n_rows = 0;
                const float *h = steer_ctx_captured(st.c, sites[s], l, &n_rows);
                if (!h || n_rows < st.n_tok) {
                    rc = cli_error("nothing captured at %s layer %d", steer_site_name(sites[s]), l);
                    break;
                }
                char *name = names[s * n_layer + l];
                snprintf(name, sizeof names[0], "%s.%d", steer_site_name(sites[s]), l);
                int64_t shape[2] = {st.n_tok, steer_model_site_width(st.m, sites[s])};
                if (steer_tensors_writer_add(w, name, STEER_DTYPE_F32, 2, shape, h) != STEER_OK)
                    rc = cli_lib_error();
            }
        }
        if (!rc) {
            char site_list[256] = "";
            for (int s = 0; s < n_sites; s++)
                snprintf(site_list + strlen(site_list), sizeof site_list - strlen(site_list), "%s%s", s ? "," : "",
                         steer_site_name(sites[s]));
            ids = ids_string(st.toks, st.n_tok);
            rc = add_common_meta(w, &st, ids);
            if (!rc && (steer_tensors_writer_meta(w, "sites", site_list) ||
                        steer_tensors_writer_meta(w, "layers", layers_arg)))
                rc = cli_lib_error();
        }
        if (!rc)
            rc = write_file(w, st.out);
    }
    if (w)
        steer_tensors_writer_free(w);
    free(names);
    free(ids);
    free(mask);
    teardown(&st);
    return rc;
}

int cmd_logits(int argc, char **argv)
{
    run_state st;
    memset(&st, 0, sizeof st);
    cli_opt opts[N_RUN_OPTS];
    run_opts(&st, opts);
    const cli_spec spec = {
        .usage = "steer logits -m MODEL (--ids \"1 403 ...\" | --prompt TEXT) -o FILE",
        .description = "Runs the tokens once and writes tensor logits [T, n_vocab] F32 (row p predicts\n"
                       "token p+1) and tensor tokens [T] I32.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer logits -m models/stories260K/stories260K.bin --ids \"1 403 407 261 378\" -o logits.safetensors",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if ((rc = check_common(&st)) != 0)
        return rc;

    float *logits = NULL;
    char *ids = NULL;
    steer_tensors_writer *w = NULL;
    rc = setup(&st);
    if (!rc && steer_forward_tokens(st.c, st.toks, st.n_tok, 0, 0) != STEER_OK)
        rc = cli_lib_error();
    int n_vocab = rc ? 0 : steer_vocab_size(st.m);
    if (!rc && !(logits = malloc((size_t)st.n_tok * (size_t)n_vocab * sizeof *logits)))
        rc = cli_error("out of memory");
    for (int i = 0; !rc && i < st.n_tok; i++) {
        const float *row = steer_ctx_logits(st.c, i);
        if (!row)
            rc = cli_error("no logits for position %d", i);
        else
            memcpy(logits + (size_t)i * (size_t)n_vocab, row, (size_t)n_vocab * sizeof *row);
    }
    if (!rc && steer_tensors_writer_new(&w) != STEER_OK)
        rc = cli_lib_error();
    if (!rc) {
        int64_t lshape[2] = {st.n_tok, n_vocab}, tshape[1] = {st.n_tok};
        if (steer_tensors_writer_add(w, "logits", STEER_DTYPE_F32, 2, lshape, logits) ||
            steer_tensors_writer_add(w, "tokens", STEER_DTYPE_I32, 1, tshape, st.toks))
            rc = cli_lib_error();
    }
    if (!rc) {
        ids = ids_string(st.toks, st.n_tok);
        rc = add_common_meta(w, &st, ids);
    }
    if (!rc)
        rc = write_file(w, st.out);
    if (w)
        steer_tensors_writer_free(w);
    free(ids);
    free(logits);
    teardown(&st);
    return rc;
}

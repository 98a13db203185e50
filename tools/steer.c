/* tools/ — the `steer` CLI, tier 6: one file per command (cmd_<name>.c with
 * its option table and --help), shared option parsing in cli_common.c, the
 * study commands in tools/study/. Public headers (steer*.h) only.
 *
 * steer.c — the `steer` command-line tool: dispatches to one function per
 * command (see the table below). */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_extract(int argc, char **argv); /* cmd_extract.c */
int cmd_vec(int argc, char **argv);     /* cmd_vec.c */
int cmd_sweep(int argc, char **argv);   /* cmd_sweep.c */
int cmd_merge(int argc, char **argv);   /* cmd_merge.c */
int cmd_report(int argc, char **argv);  /* cmd_report.c */
int cmd_analyze_mlp(int argc, char **argv); /* cmd_analyze_mlp.c */
int cmd_icl(int argc, char **argv);      /* cmd_icl.c */
int cmd_study(int argc, char **argv);    /* cmd_study.c */
int cmd_compress(int argc, char **argv); /* cmd_compress.c */
int cmd_serve(int argc, char **argv);    /* cmd_serve.c */
int cmd_patch(int argc, char **argv);    /* cmd_patch.c */
int cmd_tune(int argc, char **argv);     /* cmd_tune.c */
int cmd_bench(int argc, char **argv);    /* cmd_bench.c */


static const cli_command commands[] = {
    {"info", cmd_info, "print a model's architecture, sizes and sites"},
    {"generate", cmd_generate, "generate text, optionally with steering vectors"},
    {"capture", cmd_capture, "record activations at sites/layers for a prompt"},
    {"logits", cmd_logits, "write the logits of every position of a prompt"},
    {"tensors", cmd_tensors, "list the tensors and metadata of a safetensors file"},
    {"make-random", cmd_make_random, "write a random-weight llama GGUF model"},
    {"convert", cmd_convert, "convert a model between HF directory, GGUF and llama2.c"},
    {"make-model", cmd_make_model, "write a random-weight model (any architecture) as an HF directory"},
    {"extract", cmd_extract, "extract steering vectors (mean-diff, PCA, oracle-mean) from prompts"},
    {"vec", cmd_vec, "inspect, combine and export vector files (info, norms, scale, add, export, ...)"},
    {"train", cmd_train, "train full/LoRA/vector/adapter/LoReFT/joint on prompt/completion data"},
    {"eval", cmd_eval, "greedy accuracy and completion loss of a model (+ a trained adapter) on data"},
    {"merge-lora", cmd_merge_lora, "fold a LoRA checkpoint into its base model's weights (HF, GGUF, llama2.c)"},
    {"sweep", cmd_sweep, "oracle delta-KL sweep of base vs fine-tuned over sites, layers, alphas (SPEC E1)"},
    {"merge", cmd_merge, "join the output directories of a sharded sweep"},
    {"report", cmd_report, "HTML + Markdown report (figures inline) over sweep result directories"},
    {"analyze-mlp", cmd_analyze_mlp, "MLP modulation histograms and attenuation of pre-MLP vectors (SPEC E2)"},
    {"data", cmd_data, "datasets and templates: generate ListOps, show, stats, export (Winogrande, JSONL)"},
    {"icl", cmd_icl, "in-context learning as attn_out steering: exact patching, mean delta, compression (SPEC E3)"},
    {"compress", cmd_compress, "turn a context (prompt, few-shot examples, document) into attn_out vectors"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server with per-request steering and continuous batching"},
    {"study", cmd_study, "multi-run studies: adapt (E4 table), twins (E5 twin models)"},
    {"tune", cmd_tune, "tune your own vectors: sites x layers x scales on A/B data, KL budget, recommendation"},
    {"patch", cmd_patch, "activation patching clean -> corrupted over sites x layers x positions (heat maps)"},
    {"bench", cmd_bench, "prompt and generation speed with llama-bench's flags and JSON/CSV fields (pp, tg)"},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void print_overview(FILE *f)
{
    fprintf(f, "steer %s — activation steering of transformer language models on CPU\n\n", STEER_VERSION);
    fprintf(f, "usage: steer COMMAND [options]     (steer COMMAND --help for details)\n\ncommands:\n");
    for (int i = 0; i < n_commands; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexample:\n  steer generate -m models/stories260K/stories260K.bin -p \"Once upon a time\" -n 64\n");
}


int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    /* SIGINT/SIGTERM/SIGHUP: remove the temporaries being written, then die
     * of the same signal. Commands that handle a signal themselves (serve:
     * SIGTERM, train: SIGINT) install their own handler. */
    sa.sa_handler = cli_die_of_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (argc < 2) {
        print_overview(stdout);
        return 0;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        print_overview(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0) {
        printf("steer %s\nkernel path: %s (CPU features: %s); quantized weights: %s precision (%s dot products)\n",
               STEER_VERSION, steer_cpu_path(), steer_cpu_features(), steer_precision_name(steer_get_precision()),
               steer_cpu_quant_path());
        return 0;
    }
    for (int i = 0; i < n_commands; i++) {
        if (strcmp(commands[i].name, name) != 0)
            continue;
        char *line = cli_join_args(argc - 1, argv + 1);
        cli_cmd = commands[i].name;
        cli_cmdline = line ? line : "";
        int rc = commands[i].fn(argc - 1, argv + 1);
        free(line);
        return rc;
    }
    fprintf(stderr, "steer: unknown command '%s' (run 'steer' for the list)\n", name);
    return 2;
}

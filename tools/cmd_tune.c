/* cmd_tune.c — `steer tune`: your own steering vectors × sites × layers ×
 * scales on contrastive A/B data with judge-free metrics (logit difference,
 * KL on neutral text, perplexity) and a recommended setting within a KL
 * budget (the library's steer_tune_run / steer_tune_write; docs/TUNE.md). */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int progress; /* 0 none, 1 redrawn line (TTY), 2 a line per job */
    double t0;
} tune_progress;

static void on_progress(void *ud, int done, int total)
{
    tune_progress *p = ud;
    if (!p->progress) return;
    fprintf(stderr, "%stune: %d/%d items and texts, %.1f s%s", p->progress == 1 ? "\r" : "", done, total,
            cli_now() - p->t0, p->progress == 1 ? "   " : "\n");
    fflush(stderr);
}

#define TUNE_MAX_SCALES 64

int cmd_tune(int argc, char **argv)
{
    cli_strlist vecs = {0};
    const char *model = NULL, *tokp = NULL, *data = NULL, *neutral = NULL, *reference = NULL, *sites_arg = NULL,
               *layers_arg = NULL, *scales_arg = "0,1,2,4,8", *pos_arg = "all", *out = NULL;
    int n_max = 0, threads = 0, progress = 0, quiet = 0;
    float kl_budget = 0.1f;
    const cli_opt opts[] = {
        {"-m", "--model", OPT_STR, &model, "MODEL", "model (required)"},
        {"-z", "--tokenizer", OPT_STR, &tokp, "FILE", "tokenizer .bin for llama2.c checkpoints (default: beside it)"},
        {"-v", "--vectors", OPT_LIST, &vecs, "FILE", "steering vectors (safetensors or llama.cpp GGUF; repeat for more)"},
        {NULL, "--data", OPT_STR, &data, "FILE", "A/B items, JSONL: prompt, positive, negative (required)"},
        {"-n", "--n", OPT_INT, &n_max, "N", "first N items (0: all)"},
        {NULL, "--neutral", OPT_STR, &neutral, "FILE", "neutral texts, one per line: KL side-effect budget"},
        {NULL, "--reference", OPT_STR, &reference, "FILE", "reference text for perplexity (default: the neutral texts)"},
        {NULL, "--sites", OPT_STR, &sites_arg, "S", "sites to tune (default: every site the vectors have)"},
        {NULL, "--layers", OPT_STR, &layers_arg, "L", "all | 3 | 0,2,5-7 | -1 (default: every layer the vectors have)"},
        {NULL, "--scales", OPT_STR, &scales_arg, "A", "comma-separated scales alpha (default 0,1,2,4,8)"},
        {NULL, "--positions", OPT_STR, &pos_arg, "P", "where A/B items are steered: all (default) or completion"},
        {NULL, "--kl-budget", OPT_FLOAT, &kl_budget, "X", "largest KL (nats/position) a recommended cell may cost (0.1)"},
        {NULL, "--threads", OPT_INT, &threads, "N", "compute threads (0: all)"},
        {"-o", "--out", OPT_STR, &out, "DIR", "output directory (required)"},
        {NULL, "--progress", OPT_FLAG, &progress, NULL, "a progress line per item even when stderr is not a TTY"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "no progress and no summary"},
    };
    const cli_spec spec = {
        .usage = "steer tune -m MODEL -v VECTORS [-v ...] --data AB.jsonl [--neutral FILE] [--reference FILE]\n"
                 "       [--sites S] [--layers L] [--scales A] [--kl-budget X] -o DIR",
        .description =
            "Tunes your own steering vectors: every (vector, site, layer) the files hold (or\n"
            "--sites/--layers keep) times every scale alpha, adding alpha*v at that one site and\n"
            "layer. Judge-free metrics per cell:\n"
            "  logit difference  sum log p(positive) - sum log p(negative) over the completion\n"
            "                    tokens after the prompt: mean, s.e., share of items > 0, share\n"
            "                    that moved there from <= 0 without steering;\n"
            "  KL                KL(steered || unsteered) next-token distribution per position\n"
            "                    of the --neutral texts (the side-effect budget);\n"
            "  perplexity        of the --reference text (else of the neutral texts).\n"
            "The A/B file is JSON Lines {\"prompt\", \"positive\", \"negative\"} or CAA's\n"
            "{\"question\", \"answer_matching_behavior\", \"answer_not_matching_behavior\"}.\n"
            "Writes DIR/tune.csv, tune_summary.json (with the recommended cell: the largest mean\n"
            "logit difference whose KL is within --kl-budget) and tune_*.png/svg; `steer report\n"
            "DIR` adds a section. See docs/TUNE.md.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer extract -m models/stories260K/stories260K.bin --pos happy.txt --neg sad.txt \\\n"
                   "      --sites resid_post -o happy.safetensors\n"
                   "  steer tune -m models/stories260K/stories260K.bin -v happy.safetensors --data ab.jsonl \\\n"
                   "      --neutral neutral.txt --scales 0,2,4,8 --layers 1-4 -o out/tune",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0) return rc;
    if (!model) return cli_usage("missing -m MODEL");
    if (vecs.n < 1) return cli_usage("missing -v VECTORS");
    if (!data) return cli_usage("missing --data FILE");
    if (!out) return cli_usage("missing --out DIR");
    if (n_max < 0) return cli_usage("--n must be >= 0, got %d", n_max);
    if (threads < 0) return cli_usage("--threads must be >= 0, got %d", threads);
    if (!(kl_budget >= 0)) return cli_usage("--kl-budget must be >= 0, got %g", (double)kl_budget);
    steer_tune_params p = steer_tune_default_params();
    if (strcmp(pos_arg, "all") == 0) p.positions = STEER_POS_ALL;
    else if (strcmp(pos_arg, "completion") == 0 || strcmp(pos_arg, "generated") == 0) p.positions = STEER_POS_GENERATED;
    else return cli_usage("--positions must be all or completion, got '%s'", pos_arg);
    char err[512];
    float scales[TUNE_MAX_SCALES];
    int ns = 0;
    if (cli_parse_floats("--scales", scales_arg, scales, TUNE_MAX_SCALES, &ns, err, sizeof err)) return cli_usage("%s", err);
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < i; k++)
            if (scales[k] == scales[i]) return cli_usage("--scales: %g given twice", (double)scales[i]);
    unsigned char site_mask[STEER_SITE_COUNT] = {0};
    if (sites_arg) {
        steer_site sites[STEER_SITE_COUNT];
        int nsites = 0;
        if (cli_parse_sites(sites_arg, sites, &nsites, err, sizeof err)) return cli_usage("--sites: %s", err);
        for (int i = 0; i < nsites; i++) site_mask[sites[i]] = 1;
    }

    steer_model *m = NULL;
    steer_vecset *vs[CLI_LIST_MAX] = {0};
    char labels[CLI_LIST_MAX][128];
    const char *names[CLI_LIST_MAX];
    unsigned char *layer_mask = NULL;
    steer_tune_data *d = NULL;
    steer_tune_result *r = NULL;
    if ((rc = cli_load_model(model, tokp, &m))) goto end;
    const steer_model_config *cfg = steer_model_get_config(m);
    if (layers_arg) {
        if (!(layer_mask = calloc((size_t)cfg->n_layer, 1))) {
            rc = cli_error("out of memory");
            goto end;
        }
        if (cli_parse_layers(layers_arg, cfg->n_layer, layer_mask, err, sizeof err)) {
            rc = cli_usage("--layers: %s", err);
            goto end;
        }
    }
    for (int i = 0; i < vecs.n; i++) {
        const char *path = vecs.items[i];
        size_t len = strlen(path);
        int gguf = len > 5 && strcmp(path + len - 5, ".gguf") == 0;
        int lrc = gguf ? steer_vecset_load_llamacpp(path, cfg->n_layer, cfg->d_model, &vs[i])
                       : steer_vecset_load(path, &vs[i]);
        if (lrc != STEER_OK) {
            rc = cli_lib_error();
            goto end;
        }
        cli_file_label(path, labels[i], sizeof labels[i]);
        cli_unique_label(labels, i); /* two files of one name: name#2 */
        names[i] = labels[i];
    }
    if (steer_tune_data_load(data, n_max, neutral, reference, &d) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    tune_progress pr = {quiet ? 0 : progress ? 2 : isatty(2) ? 1 : 0, cli_now()};
    p.vectors = (const steer_vecset *const *)vs;
    p.vector_names = names;
    p.n_vectors = vecs.n;
    p.site_mask = sites_arg ? site_mask : NULL;
    p.layer_mask = layer_mask;
    p.scales = scales;
    p.n_scales = ns;
    p.kl_budget = kl_budget;
    p.n_threads = threads;
    p.on_progress = on_progress;
    p.ud = &pr;
    int lrc = steer_tune_run(m, d, &p, &r);
    if (pr.progress == 1) fputc('\n', stderr);
    if (lrc != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    steer_tune_info info = {model, data, neutral, reference, cli_cmdline, p.positions == STEER_POS_ALL ? "all" : "completion",
                            names};
    if (steer_tune_write(r, &info, kl_budget, out) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    if (!quiet) {
        printf("wrote %s/tune.csv, tune_summary.json, tune_*.png/svg (%d cells, %d items, %d neutral texts)\n", out,
               r->n_cells, r->n_items, r->n_neutral);
        printf("unsteered: logit difference %.4f (share > 0: %.3f)\n", r->base_ld_mean, r->base_share_positive);
        int best = steer_tune_recommend(r, kl_budget);
        if (best < 0)
            printf("no cell has KL within the budget %g: try smaller scales or a larger --kl-budget\n", (double)kl_budget);
        else {
            const steer_tune_cell *c = &r->cells[best];
            printf("recommended: %s at %s layer %d, scale %g: logit difference %.4f (se %.4f, share > 0: %.3f)",
                   names[c->vector], steer_site_name(c->site), c->layer, (double)c->scale, c->ld_mean, c->ld_se,
                   c->share_positive);
            if (isfinite(c->kl_mean)) printf(", KL %.4f", c->kl_mean);
            if (isfinite(c->ppl)) printf(", perplexity %.3f (unsteered %.3f)", c->ppl, r->base_ppl);
            printf("\n");
            if (r->n_neutral == 0) printf("(no --neutral texts: the KL budget was not checked)\n");
        }
    }
    rc = 0;
end:
    steer_tune_result_free(r);
    steer_tune_data_free(d);
    for (int i = 0; i < vecs.n; i++) steer_vecset_free(vs[i]);
    free(layer_mask);
    steer_model_free(m);
    return rc;
}

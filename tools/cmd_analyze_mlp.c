/* cmd_analyze_mlp.c — `steer analyze-mlp`: the MLP modulation histograms and
 * the attenuation of pre-MLP steering vectors (SPEC §4 E2; the library's
 * steer_mlp_run / steer_mlp_write, src/mlp_analysis.c). docs/ANALYSIS.md
 * describes the files. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AM_MAX_MODELS 8

typedef struct {
    int progress; /* 0 none, 1 redrawn line (TTY), 2 a line per item */
    int model, n_models;
    double t0;
} am_progress;

static void on_item(void *ud, int done, int total)
{
    am_progress *p = ud;
    if (!p->progress) return;
    fprintf(stderr, "%sanalyze-mlp: model %d/%d, %d/%d items, %.1f s%s", p->progress == 1 ? "\r" : "", p->model + 1,
            p->n_models, done, total, cli_now() - p->t0, p->progress == 1 ? "   " : "\n");
    fflush(stderr);
}

int cmd_analyze_mlp(int argc, char **argv)
{
    cli_strlist models = {0};
    const char *tokp = NULL, *data = NULL, *token_arg = "1", *layers = "all", *vec_path = NULL, *site_arg = NULL,
               *out = NULL;
    int n_max = 0, progress = 0, quiet = 0;
    const cli_opt opts[] = {
        {"-m", "--model", OPT_LIST, &models, "MODEL", "model (repeat for a second one to overlay; required)"},
        {"-z", "--tokenizer", OPT_STR, &tokp, "FILE", "tokenizer .bin for llama2.c checkpoints (default: beside each)"},
        {NULL, "--data", OPT_STR, &data, "SPEC", "dataset FORMAT:FILE with gold completions (required)"},
        {"-n", "--n", OPT_INT, &n_max, "N", "first N items (0: all)"},
        {NULL, "--token", OPT_STR, &token_arg, "K|all",
         "position predicting completion token K (1-based; default 1), or all"},
        {NULL, "--layers", OPT_STR, &layers, "L", "all | 3 | 0,2,5-7 (default all)"},
        {NULL, "--vectors", OPT_STR, &vec_path, "FILE", "steering vectors <site>.<layer> [d]: attenuation analysis"},
        {NULL, "--sites", OPT_STR, &site_arg, "LIST", "attn_out, mlp_in or both (default: those in --vectors)"},
        CLI_ALIAS("--site", OPT_STR, &site_arg),
        {"-o", "--out", OPT_STR, &out, "DIR", "output directory (required)"},
        {NULL, "--progress", OPT_FLAG, &progress, NULL, "a progress line per item even when stderr is not a TTY"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "no progress and no summary"},
    };
    const cli_spec spec = {
        .usage = "steer analyze-mlp -m MODEL [-m MODEL2] --data SPEC [--n N] [--token K|all] [--layers L]\n"
                 "       [--vectors FILE [--sites attn_out|mlp_in]] --out DIR",
        .description =
            "The MLP modulation terms and the attenuation of pre-MLP steering (SPEC E2).\n"
            "Every item runs prompt + gold completion teacher-forced. --token K takes the\n"
            "position that predicts completion token K (index n_prompt - 1 + K - 1; items with\n"
            "fewer completion tokens are skipped); --token all every position predicting a\n"
            "completion token. Per layer, over those positions and the d_ff units:\n"
            "  g1 = phi'(a_g)*a_u (gated path) and g2 = phi(a_g) (un-gated path), from the\n"
            "  model's own a_g, a_u; histograms of |g1|, |g2| on log bins shared by all models\n"
            "  (hist.csv, mlp_hist.png/svg) and mean, median, p90, p99, share below 1e-3\n"
            "  (mlp_stats.csv).\n"
            "With --vectors (one vector per layer at attn_out and/or mlp_in, e.g. from\n"
            "`steer extract --method oracle-mean`), per model and layer: the MLP branch's actual\n"
            "change MLP(x + delta) - MLP(x) (input norm, and Gemma 2/3's post-ffn norm,\n"
            "included; x = resid_mid for attn_out, mlp_in for mlp_in) against its first-order\n"
            "prediction split into the norm stage, the gated and the un-gated path; the ratios\n"
            "|dhat|/|delta| and |dMLP|/|dhat|, the linearisation error at alpha 1, 0.5, 0.25,\n"
            "0.125, the alignment of W_g*dhat with the active units and each stage's gain\n"
            "(attenuation.csv, attenuation.png/svg), and a line per layer naming the stage where\n"
            "the signal loses most. Computed in double. `steer report DIR` adds a section.\n"
            "See docs/ANALYSIS.md.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer extract --method oracle-mean -m models/stories260K/stories260K.bin \\\n"
                   "      --ft models/stories260K-winogrande/stories260K-winogrande.bin \\\n"
                   "      --pos wg.jsonl --token all --sites attn_out,mlp_in -o oracle.safetensors\n"
                   "  steer analyze-mlp -m models/stories260K/stories260K.bin \\\n"
                   "      -m models/stories260K-winogrande/stories260K-winogrande.bin \\\n"
                   "      --data winogrande:tests/data/winogrande/dev.jsonl --n 64 --token 2 \\\n"
                   "      --vectors oracle.safetensors --out out/mlp",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0) return rc;
    if (models.n < 1) return cli_usage("missing -m MODEL");
    if (models.n > AM_MAX_MODELS) return cli_usage("at most %d models, got %d", AM_MAX_MODELS, models.n);
    if (!data) return cli_usage("missing --data SPEC");
    if (!out) return cli_usage("missing --out DIR");
    if (n_max < 0) return cli_usage("--n must be >= 0, got %d", n_max);
    steer_mlp_params p = steer_mlp_default_params();
    if (strcmp(token_arg, "all") == 0) p.token = 0;
    else {
        char *end;
        long k = strtol(token_arg, &end, 10);
        if (!*token_arg || *end || k < 1 || k > 1000000)
            return cli_usage("--token must be a completion token number >= 1 or 'all', got '%s'", token_arg);
        p.token = (int)k;
    }
    char err[512];
    if (site_arg) {
        if (!vec_path) return cli_usage("--sites needs --vectors FILE");
        steer_site sites[STEER_SITE_COUNT];
        int ns = 0;
        if (cli_parse_sites(site_arg, sites, &ns, err, sizeof err)) return cli_usage("--sites: %s", err);
        if (ns > 2) return cli_usage("--sites: attn_out and/or mlp_in, got %d sites", ns);
        for (int i = 0; i < ns; i++) {
            if (sites[i] != STEER_SITE_ATTN_OUT && sites[i] != STEER_SITE_MLP_IN)
                return cli_usage("--sites: the attenuation analysis takes attn_out or mlp_in, not %s",
                                 steer_site_name(sites[i]));
            p.sites[i] = sites[i];
        }
        p.n_sites = ns;
    }

    steer_model *ms[AM_MAX_MODELS] = {0};
    steer_mlp_result *res[AM_MAX_MODELS] = {0};
    char names[AM_MAX_MODELS][128];
    steer_dataset *d = NULL;
    steer_vecset *vs = NULL;
    unsigned char *mask = NULL;
    int nm = models.n;
    for (int i = 0; i < nm; i++) {
        if ((rc = cli_load_model(models.items[i], tokp, &ms[i]))) goto end;
        cli_file_label(models.items[i], names[i], sizeof names[i]);
        cli_unique_label(names, i); /* two files of one name: name#2 */
    }
    const steer_model_config *cfg = steer_model_get_config(ms[0]);
    mask = calloc((size_t)cfg->n_layer, 1);
    if (!mask) {
        rc = cli_error("out of memory");
        goto end;
    }
    if (cli_parse_layers(layers, cfg->n_layer, mask, err, sizeof err)) {
        rc = cli_usage("--layers: %s", err);
        goto end;
    }
    for (int i = 1; i < nm; i++) {
        const steer_model_config *c2 = steer_model_get_config(ms[i]);
        for (int l = 0; l < cfg->n_layer; l++)
            if (mask[l] && l >= c2->n_layer) {
                rc = cli_error("%s: layer %d out of range (model has %d layers)", models.items[i], l, c2->n_layer);
                goto end;
            }
    }
    if (vec_path && steer_vecset_load(vec_path, &vs) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    p.vectors = vs;
    p.vectors_path = vec_path;
    /* Every check before any long run: layers, vectors against every model. */
    unsigned char *mask_i = NULL;
    for (int i = 0; i < nm && !rc; i++) {
        const steer_model_config *ci = steer_model_get_config(ms[i]);
        mask_i = calloc((size_t)ci->n_layer, 1);
        if (!mask_i) {
            rc = cli_error("out of memory");
            break;
        }
        for (int l = 0; l < cfg->n_layer && l < ci->n_layer; l++) mask_i[l] = mask[l];
        p.layers = mask_i;
        if (steer_mlp_check_vectors(ms[i], &p) != STEER_OK) rc = cli_error("-m %s: %s", models.items[i], steer_last_error());
        free(mask_i);
        mask_i = NULL;
    }
    if (rc) goto end;
    steer_data_params dp = steer_data_default_params();
    dp.n_max = n_max;
    if (steer_data_load(data, &dp, &d) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    am_progress pr = {quiet ? 0 : progress ? 2 : isatty(2) ? 1 : 0, 0, nm, cli_now()};
    p.on_item = on_item;
    p.ud = &pr;
    for (int i = 0; i < nm; i++) {
        const steer_model_config *ci = steer_model_get_config(ms[i]);
        mask_i = calloc((size_t)ci->n_layer, 1);
        if (!mask_i) {
            rc = cli_error("out of memory");
            goto end;
        }
        for (int l = 0; l < cfg->n_layer && l < ci->n_layer; l++) mask_i[l] = mask[l];
        p.layers = mask_i;
        pr.model = i;
        int lrc = steer_mlp_run(ms[i], names[i], d, &p, &res[i]);
        free(mask_i);
        if (pr.progress == 1) fputc('\n', stderr);
        if (lrc != STEER_OK) {
            rc = cli_error("-m %s: %s", models.items[i], steer_last_error());
            goto end;
        }
    }
    const char *paths[AM_MAX_MODELS];
    for (int i = 0; i < nm; i++) paths[i] = models.items[i];
    steer_mlp_info info = {data, cli_cmdline, paths, vec_path};
    if (steer_mlp_write((const steer_mlp_result *const *)res, nm, &info, out) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    if (!quiet) {
        printf("wrote %s/mlp_stats.csv, hist.csv, mlp_summary.json, mlp_hist.png/svg%s\n", out,
               vs ? ", attenuation.csv, attenuation.png/svg" : "");
        for (int i = 0; i < nm; i++) {
            printf("%s: %d items (%d skipped), %d positions\n", names[i], steer_mlp_result_items(res[i]),
                   steer_mlp_result_skipped(res[i]), steer_mlp_result_positions(res[i]));
            for (int l = 0; l < cfg->n_layer; l++) {
                if (!mask[l]) continue;
                steer_mlp_stats s1, s2;
                if (steer_mlp_result_stats(res[i], l, 1, &s1) || steer_mlp_result_stats(res[i], l, 2, &s2)) continue;
                printf("  layer %d: |g1| median %.3g, share < 1e-3 %.3f; |g2| median %.3g, share < 1e-3 %.3f\n", l,
                       s1.median, s1.share_below, s2.median, s2.share_below);
            }
        }
        for (int i = 0; i < nm; i++)
            for (int k = 0; k < steer_mlp_result_att_count(res[i]); k++) {
                char line[1024];
                steer_mlp_att_describe(steer_mlp_result_att(res[i], k), line, sizeof line);
                printf("%s\n", line);
            }
    }
    rc = 0;
end:
    for (int i = 0; i < nm; i++) {
        steer_mlp_result_free(res[i]);
        steer_model_free(ms[i]);
    }
    steer_vecset_free(vs);
    steer_data_free(d);
    free(mask);
    return rc;
}

/* cmd_sweep.c — `steer sweep`: the oracle ΔKL sweep of SPEC §4 E1 (the
 * engine is the library's steer_sweep_run, src/sweep.c). Finished items go
 * to DIR/progress.jsonl as they finish, so an interrupted sweep resumes;
 * at the end DIR gets items.csv, dkl.csv, summary.json and the figures.
 * docs/SWEEP.md describes the files. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "0,0.1,0.25" → alphas; one-line usage message into err on failure. */
static int parse_alphas(const char *s, float *out, int *n, char *err, size_t en)
{
    *n = 0;
    const char *p = s;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        char buf[64];
        if (len == 0 || len >= sizeof buf) {
            snprintf(err, en, "--alphas: empty or overlong value in '%s'", s);
            return -1;
        }
        memcpy(buf, p, len);
        buf[len] = 0;
        char *end;
        errno = 0;
        double v = strtod(buf, &end);
        if (*end || errno || !isfinite(v) || !isfinite((float)v)) {
            snprintf(err, en, "--alphas: '%s' is not a number", buf);
            return -1;
        }
        if (*n >= STEER_SWEEP_MAX_ALPHAS) {
            snprintf(err, en, "--alphas: more than %d values", STEER_SWEEP_MAX_ALPHAS);
            return -1;
        }
        out[(*n)++] = (float)v;
        if (!c) return 0;
        p = c + 1;
    }
}

/* "i/n" with 0 <= i < n. */
static int parse_shard(const char *s, int *i, int *n)
{
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || *end != '/') return -1;
    const char *q = end + 1;
    long b = strtol(q, &end, 10);
    if (end == q || *end || b < 1 || b > 4096 || a < 0 || a >= b) return -1;
    *i = (int)a;
    *n = (int)b;
    return 0;
}

typedef struct {
    steer_sweep_table *t;
    int progress;   /* 0 none, 1 redrawn line (TTY), 2 a line per item */
    int total;      /* items of this shard                              */
    int done0;      /* done before this run                             */
    int done;       /* done in this run                                 */
    int stop_after; /* > 0: stop after this many items in this run      */
    double t0;
} sweep_state;

static int on_item(void *ud, const steer_sweep_item *it)
{
    sweep_state *s = ud;
    if (steer_sweep_journal_append(s->t, it) != STEER_OK) return -1;
    s->done++;
    if (s->progress) {
        double el = cli_now() - s->t0, left = el / s->done * (s->total - s->done0 - s->done);
        fprintf(stderr, "%ssweep: %d/%d items, %.1f s, ~%.0f s left%s", s->progress == 1 ? "\r" : "",
                s->done0 + s->done, s->total, el, left, s->progress == 1 ? "   " : "\n");
        fflush(stderr);
    }
    return s->stop_after > 0 && s->done >= s->stop_after ? 1 : 0;
}

/* Prints the best cell per site (stdout). */
void sweep_print_best(const steer_sweep_table *t, const char *dir)
{
    const steer_sweep_params *p = steer_sweep_table_params(t);
    printf("wrote %s/dkl.csv, items.csv, summary.json (%d items)\n", dir, steer_sweep_table_count(t));
    for (int si = 0; si < p->n_sites; si++) {
        double best = 0;
        int bl = -1, ba = 0, bk = 0, bn = 0;
        for (int li = 0; li < p->n_layers; li++)
            for (int a = 0; a < p->n_alphas; a++)
                for (int k = 0; k < p->tokens; k++) {
                    double m;
                    int n;
                    steer_sweep_table_cell(t, si, li, a, k, &m, NULL, &n);
                    if (n > 0 && (bl < 0 || m < best)) {
                        best = m; bl = li; ba = a; bk = k; bn = n;
                    }
                }
        if (bl >= 0)
            printf("  %-10s most negative dkl_mean %.6g at layer %d, alpha %g, token %d (n %d)\n",
                   steer_site_name(p->sites[si]), best, p->layers[bl], (double)p->alphas[ba], bk + 1, bn);
    }
}

/* --save-vectors: the mean oracle δ per (site, layer) as a SPEC §5 vector
 * file (tensors <site>.<layer>). */
static int save_mean_delta(steer_model *mb, steer_model *mf, const steer_dataset *d, const steer_sweep_params *p,
                           const char *path, const char *base, const char *ft, const char *data)
{
    steer_sweep_params q = *p;
    q.on_item = NULL;
    q.skip = NULL;
    steer_vecset *vs = NULL;
    if (steer_sweep_mean_delta(mb, mf, d, &q, &vs) != STEER_OK) return cli_lib_error_at("--save-vectors");
    char sites[256] = "";
    for (int i = 0; i < p->n_sites; i++)
        snprintf(sites + strlen(sites), sizeof sites - strlen(sites), "%s%s", i ? "," : "", steer_site_name(p->sites[i]));
    const char *kv[][2] = {
        {"format_version", "1"},
        {"model_hint", steer_model_get_config(mb)->arch_name},
        {"model", base},
        {"ft", ft},
        {"method", "oracle-mean-sweep"},
        {"site", sites},
        {"positions", steer_sweep_pos_name(p->positions)},
        {"continuation", steer_sweep_cont_name(p->continuation)},
        {"data", data},
        {"command", cli_cmdline},
    };
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof kv / sizeof kv[0]; i++)
        if (steer_vecset_set_meta(vs, kv[i][0], kv[i][1]) != STEER_OK) rc = cli_lib_error();
    if (!rc && steer_vecset_save(vs, path) != STEER_OK) rc = cli_lib_error();
    steer_vecset_free(vs);
    return rc;
}

int cmd_sweep(int argc, char **argv)
{
    const char *base = NULL, *ftp = NULL, *tokp = NULL, *data = NULL, *sites = NULL, *layers = "all",
               *alphas = NULL, *cont = "ft", *positions = "all", *out = NULL, *shard = NULL, *delta = NULL,
               *save_vectors = NULL;
    int n_max = 0, tokens = 5, threads = 0, naive = 0, stop_after = 0, progress = 0, quiet = 0;
    const cli_opt opts[] = {
        {NULL, "--base", OPT_STR, &base, "MODEL", "base model B (required)"},
        {NULL, "--ft", OPT_STR, &ftp, "MODEL", "fine-tuned model F, same architecture and tokenizer (required)"},
        {NULL, "--tokenizer", OPT_STR, &tokp, "FILE", "tokenizer .bin for llama2.c checkpoints (default: beside each)"},
        {NULL, "--data", OPT_STR, &data, "SPEC", "dataset FORMAT:FILE, e.g. winogrande:dev.jsonl (required)"},
        {NULL, "--n", OPT_INT, &n_max, "N", "first N items (0: all)"},
        {NULL, "--sites", OPT_STR, &sites, "LIST", "sites, in output order (default mlp_in,attn_out,mlp_out,resid_post)"},
        {NULL, "--layers", OPT_STR, &layers, "L", "all | 3 | 0,2,5-7 (default all)"},
        {NULL, "--alphas", OPT_STR, &alphas, "LIST", "alpha grid (default 0,0.1,0.25,0.5,1)"},
        {NULL, "--tokens", OPT_INT, &tokens, "K", "continuation tokens scored (default 5)"},
        {NULL, "--continuation", OPT_STR, &cont, "ft|gold", "F's greedy continuation (default) or the gold answer"},
        {NULL, "--positions", OPT_STR, &positions, "P", "steered positions: all (default), prompt, continuation"},
        {NULL, "--delta-site", OPT_STR, &delta, "SITE", "take every oracle delta at SITE (default: the steered site)"},
        {"-o", "--out", OPT_STR, &out, "DIR", "output directory (required)"},
        {NULL, "--shard", OPT_STR, &shard, "I/N", "run items with index % N == I (0 <= I < N); join with steer merge"},
        {NULL, "--threads", OPT_INT, &threads, "T", "items in parallel (default: OMP_NUM_THREADS)"},
        {NULL, "--naive", OPT_FLAG, &naive, NULL, "one full forward per (site, layer, alpha): the check path"},
        {NULL, "--save-vectors", OPT_STR, &save_vectors, "FILE",
         "also write the mean oracle delta per (site, layer) as a vector file"},
        {NULL, "--stop-after-items", OPT_INT, &stop_after, "K", "stop after K items (resume by running again)"},
        {NULL, "--progress", OPT_FLAG, &progress, NULL, "a progress line per item even when stderr is not a TTY"},
        {NULL, "--quiet", OPT_FLAG, &quiet, NULL, "no progress and no summary"},
    };
    const cli_spec spec = {
        .usage = "steer sweep --base B --ft F --data SPEC --out DIR [options]",
        .description =
            "The oracle delta-KL sweep (SPEC E1). For each item: c = F's greedy continuation of\n"
            "the prompt (or the gold answer), K tokens; the oracle delta = act_F - act_B at each\n"
            "site and layer on prompt + c; B is run with alpha*delta added at that one (site,\n"
            "layer), and dKL_k = KL(P_steered || P_F) - KL(P_B || P_F) at the positions predicting\n"
            "c_1..c_K. Writes DIR/dkl.csv (mean, standard error, n per site, layer, alpha, token),\n"
            "DIR/items.csv (per item), DIR/summary.json and figures dkl_<site>.png/svg. Finished\n"
            "items are kept in DIR/progress.jsonl: an interrupted sweep run again with the same\n"
            "settings resumes. Layers below the steered one are computed once per item, the\n"
            "alphas run as one batch and items run in parallel (--naive: the plain path, same\n"
            "numbers). See docs/SWEEP.md.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer sweep --base models/stories260K/stories260K.bin \\\n"
                   "      --ft models/stories260K-winogrande/stories260K-winogrande.bin \\\n"
                   "      --data winogrande:tests/data/winogrande/dev.jsonl --n 32 --out out/sweep\n"
                   "  steer sweep ... --shard 0/2 --out out/s0 && steer sweep ... --shard 1/2 --out out/s1\n"
                   "  steer merge out/s0 out/s1 -o out/sweep",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0) return rc;
    if (!base) return cli_usage("missing --base MODEL");
    if (!ftp) return cli_usage("missing --ft MODEL");
    if (!data) return cli_usage("missing --data SPEC");
    if (!out) return cli_usage("missing --out DIR");
    if (n_max < 0) return cli_usage("--n must be >= 0, got %d", n_max);
    if (tokens < 1 || tokens > STEER_SWEEP_MAX_TOKENS)
        return cli_usage("--tokens must be 1..%d, got %d", STEER_SWEEP_MAX_TOKENS, tokens);
    if (threads < 0) return cli_usage("--threads must be >= 0, got %d", threads);
    if (stop_after < 0) return cli_usage("--stop-after-items must be >= 0, got %d", stop_after);

    steer_sweep_params p = steer_sweep_default_params();
    char err[512];
    p.tokens = tokens;
    p.n_threads = threads;
    p.naive = naive;
    if (sites && cli_parse_sites(sites, p.sites, &p.n_sites, err, sizeof err)) return cli_usage("%s", err);
    if (alphas && parse_alphas(alphas, p.alphas, &p.n_alphas, err, sizeof err)) return cli_usage("%s", err);
    if (strcmp(cont, "ft") == 0) p.continuation = STEER_SWEEP_CONT_FT;
    else if (strcmp(cont, "gold") == 0) p.continuation = STEER_SWEEP_CONT_GOLD;
    else return cli_usage("--continuation must be ft or gold, got '%s'", cont);
    if (strcmp(positions, "all") == 0) p.positions = STEER_POS_ALL;
    else if (strcmp(positions, "prompt") == 0) p.positions = STEER_POS_PROMPT;
    else if (strcmp(positions, "continuation") == 0) p.positions = STEER_POS_GENERATED;
    else return cli_usage("--positions must be all, prompt or continuation, got '%s'", positions);
    if (delta) {
        steer_site s;
        if (steer_site_parse(delta, &s) != STEER_OK) {
            cli_unknown_site_msg(delta, err, sizeof err);
            return cli_usage("--delta-site: %s", err);
        }
        p.delta_site = (int)s;
    }
    if (shard && parse_shard(shard, &p.shard_index, &p.shard_count))
        return cli_usage("--shard expects I/N with 0 <= I < N, got '%s'", shard);

    steer_model *mb = NULL, *mf = NULL;
    steer_dataset *d = NULL;
    steer_sweep_table *t = NULL;
    if ((rc = cli_load_model(base, tokp, &mb)) || (rc = cli_load_model(ftp, tokp, &mf))) goto end;
    const steer_model_config *cfg = steer_model_get_config(mb);
    unsigned char mask[STEER_SWEEP_MAX_LAYERS];
    if (cfg->n_layer > STEER_SWEEP_MAX_LAYERS) {
        rc = cli_error("%s: %d layers (at most %d)", base, cfg->n_layer, STEER_SWEEP_MAX_LAYERS);
        goto end;
    }
    if (cli_parse_layers(layers, cfg->n_layer, mask, err, sizeof err)) {
        rc = cli_usage("--layers: %s", err);
        goto end;
    }
    p.n_layers = 0;
    for (int l = 0; l < cfg->n_layer; l++)
        if (mask[l]) p.layers[p.n_layers++] = l;
    if (steer_sweep_check(mb, mf, &p) != STEER_OK) {
        rc = cli_error("--base %s, --ft %s: %s", base, ftp, steer_last_error());
        goto end;
    }
    steer_data_params dp = steer_data_default_params();
    dp.n_max = n_max;
    if (steer_data_load(data, &dp, &d) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    steer_sweep_info info = {base, ftp, data, cli_cmdline, cfg->arch_name, cfg->n_layer, cfg->d_model,
                             steer_data_count(d)};
    int n_read = 0;
    if (steer_sweep_table_new(&p, &info, &t) != STEER_OK || steer_sweep_journal_open(t, out, &n_read) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    sweep_state st = {.t = t, .progress = quiet ? 0 : progress ? 2 : isatty(2) ? 1 : 0, .done0 = n_read,
                      .stop_after = stop_after, .t0 = cli_now()};
    for (int i = 0; i < info.n_data; i++) st.total += i % p.shard_count == p.shard_index;
    if (n_read && !quiet)
        fprintf(stderr, "steer sweep: resuming: %d of %d items read back from %s/progress.jsonl\n", n_read, st.total,
                out);
    p.skip = steer_sweep_table_done(t);
    p.on_item = on_item;
    p.ud = &st;
    int src = steer_sweep_run(mb, mf, d, &p);
    if (st.progress == 1 && st.done) fputc('\n', stderr);
    if (src < 0) {
        rc = cli_lib_error();
        goto end;
    }
    if (src > 0) {
        if (!quiet)
            fprintf(stderr,
                    "steer sweep: stopped after %d item(s) (%d of %d done); run the same command again to resume\n",
                    st.done, st.done0 + st.done, st.total);
        rc = 0;
        goto end;
    }
    if (steer_sweep_table_write(t, out, cli_now() - st.t0) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    if (steer_sweep_figures(out) != STEER_OK) {
        rc = cli_lib_error_at("figures");
        goto end;
    }
    if (save_vectors && (rc = save_mean_delta(mb, mf, d, &p, save_vectors, base, ftp, data)))
        goto end;
    if (!quiet) sweep_print_best(t, out);
    if (save_vectors && !quiet) printf("wrote %s (mean oracle delta per site and layer)\n", save_vectors);
    rc = 0;
end:
    steer_sweep_table_free(t);
    steer_data_free(d);
    steer_model_free(mf);
    steer_model_free(mb);
    return rc;
}

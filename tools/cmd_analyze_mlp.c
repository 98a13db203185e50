/* cmd_analyze_mlp.c — `steer analyze-mlp`: the MLP modulation histograms and
 * the attenuation of pre-MLP steering vectors (SPEC §4 E2; the library's
 * steer_mlp_run / steer_mlp_write, src/mlp_analysis.c). docs/ANALYSIS.md
 * describes the files. */
#include "cli.h"
#include "mpi/mpi_cli.h"

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

#ifdef STEER_HAVE_MPI
/* ---------------------------------------------------------------- --mpi (docs/SCALING.md)
 * One item source for every model: item k = model k / n_items, dataset item
 * k % n_items, in the order one process runs them (model by model). A
 * record is the item's captured rows (steer_mlp_job_run); rank 0 puts it
 * into that model's job, which keeps every row in its place, so the
 * statistics are computed over the same rows in the same order as one
 * process computes them. */
typedef struct {
    steer_mlp_job **jobs;
    int nm, n_items;
    void *buf;
    size_t cap;
} am_mpi;

static int am_compute(void *ud, mpi_pool *pool)
{
    am_mpi *m = ud;
    for (;;) {
        const int k = mpi_pool_next(pool);
        if (k < 0) return 0;
        steer_mlp_job *j = m->jobs[k / m->n_items];
        const int i = k % m->n_items;
        const size_t n = steer_mlp_job_record_size(j, i);
        if (n > m->cap) {
            void *b = realloc(m->buf, n);
            if (!b) cli_mpi_die("analyze-mlp", "out of memory");
            m->buf = b;
            m->cap = n;
        }
        int rc = steer_mlp_job_run(j, i, m->buf, n);
        if (rc) return rc;
        if ((rc = mpi_pool_put(pool, k, m->buf, n)) < 0) return rc;
    }
}

/* "3" (dataset item 3), or with several models "3 of -m 2" (the second). */
static void am_name_item(void *ud, int k, char *buf, size_t n)
{
    const am_mpi *m = ud;
    if (m->nm > 1) snprintf(buf, n, "%d of -m %d", k % m->n_items, k / m->n_items + 1);
    else snprintf(buf, n, "%d", k);
}

static int am_consume(void *ud, int k, const void *rec, size_t n, char *msg, size_t msg_size)
{
    (void)msg, (void)msg_size; /* put's message is steer_last_error() */
    am_mpi *m = ud;
    return steer_mlp_job_put(m->jobs[k / m->n_items], k % m->n_items, rec, n);
}

/* Every rank: the items of every job over the ranks; rank 0 then finishes
 * the jobs into res. Returns 0 or an exit status (printed). */
static int am_run_mpi(steer_mlp_job **jobs, int nm, steer_mlp_result **res, const char *const *paths, int rank,
                      double timeout, int verbose)
{
    am_mpi m = {.jobs = jobs, .nm = nm, .n_items = steer_mlp_job_items(jobs[0])};
    const int n_data = nm * m.n_items;
    int *todo = NULL, n_todo = 0, rc = 0;
    if (rank == 0) {
        if (!(todo = malloc((n_data > 0 ? (size_t)n_data : 1) * sizeof *todo))) cli_mpi_die("analyze-mlp", "out of memory");
        for (int k = 0; k < n_data; k++)
            if (steer_mlp_job_record_size(jobs[k / m.n_items], k % m.n_items) > 0) todo[n_todo++] = k;
    }
    mpi_pool_params pp = {.what = "analyze-mlp", .n_data = n_data, .todo = todo, .n_todo = n_todo,
                          .timeout_s = timeout, .consume = am_consume, .consume_ud = &m, .compute = am_compute,
                          .compute_ud = &m};
    mpi_share_report rep = {.name_item = am_name_item, .ud = &m, .verbose = verbose};
    rc = cli_mpi_share(&pp, &rep);
    free(todo);
    free(m.buf);
    if (rc == 0 && rank == 0)
        for (int i = 0; i < nm && !rc; i++)
            if (steer_mlp_job_finish(jobs[i], &res[i]) != STEER_OK) rc = cli_error("-m %s: %s", paths[i], steer_last_error());
    return rc;
}
#endif

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
    int n_max = 0, progress = 0, quiet = 0, mpi = 0;
    float mpi_timeout = 60.0f;
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
        CLI_MPI_OPTS(&mpi, &mpi_timeout, "items"),
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
            "With --mpi (under mpirun/srun) the items' forward passes are shared over the ranks\n"
            "and rank 0 writes the same files as one process (docs/SCALING.md).\n"
            "See docs/ANALYSIS.md.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer extract --method oracle-mean -m models/stories260K/stories260K.bin \\\n"
                   "      --ft models/stories260K-winogrande/stories260K-winogrande.bin \\\n"
                   "      --pos wg.jsonl --token all --sites attn_out,mlp_in -o oracle.safetensors\n"
                   "  steer analyze-mlp -m models/stories260K/stories260K.bin \\\n"
                   "      -m models/stories260K-winogrande/stories260K-winogrande.bin \\\n"
                   "      --data winogrande:tests/data/winogrande/dev.jsonl --n 64 --token 2 \\\n"
                   "      --vectors oracle.safetensors --out out/mlp\n"
                   "  mpirun -np 4 steer analyze-mlp ... --mpi --out out/mlp",
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

    int rank, n_ranks;
    if ((rc = cli_mpi_start(mpi, mpi_timeout, &rank, &n_ranks)) >= 0) return rc;
    if (rank != 0) quiet = 1; /* rank 0 speaks for the run */

    steer_model *ms[AM_MAX_MODELS] = {0};
    steer_mlp_result *res[AM_MAX_MODELS] = {0};
    steer_mlp_job *jobs[AM_MAX_MODELS] = {0}; /* --mpi */
    unsigned char *masks[AM_MAX_MODELS] = {0}; /* the chosen layers of each model */
    char names[AM_MAX_MODELS][128];
    const char *paths[AM_MAX_MODELS];
    steer_dataset *d = NULL;
    steer_vecset *vs = NULL;
    unsigned char *mask = NULL;
    int nm = models.n;
    for (int i = 0; i < nm; i++) paths[i] = models.items[i];
    am_progress pr[AM_MAX_MODELS];
    for (int i = 0; i < nm; i++)
        pr[i] = (am_progress){quiet ? 0 : progress ? 2 : isatty(2) ? 1 : 0, i, nm, 0};
    const steer_model_config *cfg = NULL;
    for (int i = 0; i < nm; i++) {
        if ((rc = cli_load_model(models.items[i], tokp, &ms[i]))) goto setup_done;
        cli_file_label(models.items[i], names[i], sizeof names[i]);
        cli_unique_label(names, i); /* two files of one name: name#2 */
    }
    cfg = steer_model_get_config(ms[0]);
    mask = calloc((size_t)cfg->n_layer, 1);
    if (!mask) {
        rc = cli_error("out of memory");
        goto setup_done;
    }
    if (cli_parse_layers(layers, cfg->n_layer, mask, err, sizeof err)) {
        rc = cli_usage("--layers: %s", err);
        goto setup_done;
    }
    for (int i = 1; i < nm; i++) {
        const steer_model_config *c2 = steer_model_get_config(ms[i]);
        for (int l = 0; l < cfg->n_layer; l++)
            if (mask[l] && l >= c2->n_layer) {
                rc = cli_error("%s: layer %d out of range (model has %d layers)", models.items[i], l, c2->n_layer);
                goto setup_done;
            }
    }
    if (vec_path && steer_vecset_load(vec_path, &vs) != STEER_OK) {
        rc = cli_lib_error();
        goto setup_done;
    }
    p.vectors = vs;
    p.vectors_path = vec_path;
    /* Every check before any long run: layers, vectors against every model. */
    for (int i = 0; i < nm && !rc; i++) {
        const steer_model_config *ci = steer_model_get_config(ms[i]);
        if (!(masks[i] = calloc((size_t)ci->n_layer, 1))) {
            rc = cli_error("out of memory");
            break;
        }
        for (int l = 0; l < cfg->n_layer && l < ci->n_layer; l++) masks[i][l] = mask[l];
        p.layers = masks[i];
        if (steer_mlp_check_vectors(ms[i], &p) != STEER_OK) rc = cli_error("-m %s: %s", models.items[i], steer_last_error());
    }
    if (rc) goto setup_done;
    steer_data_params dp = steer_data_default_params();
    dp.n_max = n_max;
    if (steer_data_load(data, &dp, &d) != STEER_OK) {
        rc = cli_lib_error();
        goto setup_done;
    }
    p.on_item = on_item;
    /* --mpi: every rank makes the jobs (tokens, contexts); rank 0 collects. */
    for (int i = 0; mpi && i < nm && !rc; i++) {
        p.layers = masks[i];
        p.ud = &pr[i];
        if (steer_mlp_job_new(ms[i], names[i], d, &p, rank == 0, &jobs[i]) != STEER_OK)
            rc = cli_error("-m %s: %s", models.items[i], steer_last_error());
    }
setup_done:
#ifdef STEER_HAVE_MPI
    if (mpi && !cli_mpi_all_ok(rc == 0)) { /* the failing rank printed why */
        if (!rc) rc = 1;
        goto end;
    }
#endif
    if (rc) goto end;
    const double t0 = cli_now();
    for (int i = 0; i < nm; i++) pr[i].t0 = t0;
    if (mpi) {
#ifdef STEER_HAVE_MPI
        if (!quiet && n_ranks > 1)
            fprintf(stderr, "steer analyze-mlp: %d ranks share %d model(s) x %d item(s)\n", n_ranks, nm,
                    steer_data_count(d));
        rc = am_run_mpi(jobs, nm, res, paths, rank, mpi_timeout, !quiet || progress);
        if (pr[0].progress == 1) fputc('\n', stderr);
        if (rc || rank != 0) goto end;
#endif
    } else {
        for (int i = 0; i < nm; i++) {
            p.layers = masks[i];
            p.ud = &pr[i];
            int lrc = steer_mlp_run(ms[i], names[i], d, &p, &res[i]);
            if (pr[i].progress == 1) fputc('\n', stderr);
            if (lrc != STEER_OK) {
                rc = cli_error("-m %s: %s", models.items[i], steer_last_error());
                goto end;
            }
        }
    }
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
        steer_mlp_job_free(jobs[i]);
        steer_mlp_result_free(res[i]);
        steer_model_free(ms[i]);
        free(masks[i]);
    }
    steer_vecset_free(vs);
    steer_data_free(d);
    free(mask);
#ifdef STEER_HAVE_MPI
    if (mpi) cli_mpi_finalize();
#endif
    return rc;
}

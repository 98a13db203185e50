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

#include "mpi/mpi_cli.h"

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

#ifdef STEER_HAVE_MPI
/* ---------------------------------------------------------------- --mpi (docs/SCALING.md)
 * Every rank loads the models and data and runs steer_sweep_run with an
 * item source (mpi_pool_next); each finished item travels to rank 0 as a
 * record: ints n_prompt, n_tokens, id length, tokens[n_tokens], then the
 * doubles kl_base[K] and kl_steered[cells·K] as they are (bit for bit; the
 * ranks are assumed to share one byte order), then the id. Rank 0 turns the
 * record back into a steer_sweep_item and calls on_item, so its journal and
 * tables are those of a one-process run. */
typedef struct {
    steer_model *mb, *mf;
    const steer_dataset *d;
    steer_sweep_params p; /* resolved */
    int n_cells;
    mpi_pool *pool;
    sweep_state *st; /* rank 0 */
    const char *out;
    unsigned char *buf;
    size_t cap;
} mpi_sweep;

static int mpi_next(void *ud) { return mpi_pool_next(((mpi_sweep *)ud)->pool); }

static int mpi_put(void *ud, const steer_sweep_item *it)
{
    mpi_sweep *m = ud;
    const int K = m->p.tokens, idl = (int)strlen(it->id ? it->id : "");
    const int head[3] = {it->n_prompt, it->n_tokens, idl};
    size_t n = sizeof head + (size_t)it->n_tokens * sizeof(int) + (size_t)K * (1 + m->n_cells) * sizeof(double) + idl;
    if (n > m->cap) { /* on_item calls are serialised: one buffer */
        unsigned char *b = realloc(m->buf, n);
        if (!b) cli_mpi_die("sweep", "out of memory");
        m->buf = b;
        m->cap = n;
    }
    unsigned char *q = m->buf;
    memcpy(q, head, sizeof head), q += sizeof head;
    memcpy(q, it->tokens, (size_t)it->n_tokens * sizeof(int)), q += (size_t)it->n_tokens * sizeof(int);
    memcpy(q, it->kl_base, (size_t)K * sizeof(double)), q += (size_t)K * sizeof(double);
    memcpy(q, it->kl_steered, (size_t)K * m->n_cells * sizeof(double)), q += (size_t)K * m->n_cells * sizeof(double);
    memcpy(q, it->id ? it->id : "", (size_t)idl);
    int rc = mpi_pool_put(m->pool, it->item, m->buf, n);
    return rc < 0 ? rc : 0;
}

static int mpi_compute(void *ud, mpi_pool *pool)
{
    mpi_sweep *m = ud;
    m->pool = pool;
    steer_sweep_params q = m->p;
    q.next_item = mpi_next;
    q.on_item = mpi_put;
    q.ud = m;
    return steer_sweep_run(m->mb, m->mf, m->d, &q);
}

static int mpi_consume(void *ud, int item, const void *rec, size_t n, char *msg, size_t msg_size)
{
    mpi_sweep *m = ud;
    const int K = m->p.tokens;
    int head[3];
    const unsigned char *q = rec;
    if (n < sizeof head) {
        snprintf(msg, msg_size, "--mpi: item %d: a record of %zu bytes", item, n);
        return STEER_EFORMAT;
    }
    memcpy(head, q, sizeof head), q += sizeof head;
    if (head[1] < 0 || head[1] > K || head[2] < 0 ||
        n != sizeof head + (size_t)head[1] * sizeof(int) + (size_t)K * (1 + m->n_cells) * sizeof(double) + head[2]) {
        snprintf(msg, msg_size, "--mpi: item %d: a record of %zu bytes does not fit the settings", item, n);
        return STEER_EFORMAT;
    }
    int *tok = malloc(((size_t)head[1] + 1) * sizeof *tok);
    double *kl = malloc((size_t)K * (1 + m->n_cells) * sizeof *kl);
    char *id = malloc((size_t)head[2] + 1);
    int rc = 0;
    if (!tok || !kl || !id) cli_mpi_die("sweep", "out of memory");
    {
        memcpy(tok, q, (size_t)head[1] * sizeof(int)), q += (size_t)head[1] * sizeof(int);
        memcpy(kl, q, (size_t)K * (1 + m->n_cells) * sizeof(double)), q += (size_t)K * (1 + m->n_cells) * sizeof(double);
        memcpy(id, q, (size_t)head[2]);
        id[head[2]] = 0;
        steer_sweep_item it = {.item = item, .id = id, .n_prompt = head[0], .n_tokens = head[1], .tokens = tok,
                               .kl_base = kl, .kl_steered = kl + K};
        rc = on_item(m->st, &it);
    }
    free(tok);
    free(kl);
    free(id);
    return rc;
}

/* The "missing" line's end: the journal holds the rest. */
static void sweep_after_missing(void *ud, const mpi_pool_result *res, char *buf, size_t n)
{
    const mpi_sweep *m = ud;
    (void)res;
    snprintf(buf, n, "the other %d item(s) are in %s/progress.jsonl: run the same command again to compute only the "
             "missing ones", m->st->done0 + m->st->done, m->out);
}

/* Runs the sweep over every rank. Rank 0: 0 = every item is in the table,
 * 3 = stopped by --stop-after-items, else the exit status (message printed).
 * Other ranks: 0 or 1. */
static int sweep_mpi(steer_model *mb, steer_model *mf, const steer_dataset *d, const steer_sweep_params *p,
                     sweep_state *st, int rank, double timeout, const char *out, int verbose)
{
    mpi_sweep m = {.mb = mb, .mf = mf, .d = d, .p = *p, .n_cells = p->n_sites * p->n_layers * p->n_alphas, .st = st,
                   .out = out};
    const int n_data = steer_data_count(d);
    int *todo = NULL, n_todo = 0;
    if (rank == 0) {
        todo = malloc((n_data > 0 ? (size_t)n_data : 1) * sizeof *todo);
        if (!todo) cli_mpi_die("sweep", "out of memory");
        for (int i = 0; i < n_data; i++)
            if (i % p->shard_count == p->shard_index && !(p->skip && p->skip[i])) todo[n_todo++] = i;
        m.p.skip = p->skip; /* rank 0's jobs: the items still to do */
    } else
        m.p.skip = NULL;    /* any item of the shard may come */
    mpi_pool_params pp = {.what = "sweep", .n_data = n_data, .todo = todo, .n_todo = n_todo, .timeout_s = timeout,
                          .consume = mpi_consume, .consume_ud = &m, .compute = mpi_compute, .compute_ud = &m};
    mpi_share_report rep = {.after_missing = sweep_after_missing, .ud = &m, .verbose = verbose};
    int rc = cli_mpi_share(&pp, &rep);
    free(todo);
    free(m.buf);
    return rc;
}
#endif

int cmd_sweep(int argc, char **argv)
{
    const char *base = NULL, *ftp = NULL, *tokp = NULL, *data = NULL, *sites = NULL, *layers = "all",
               *alphas = NULL, *cont = "ft", *positions = "all", *out = NULL, *shard = NULL, *delta = NULL,
               *save_vectors = NULL;
    int n_max = 0, tokens = 5, threads = 0, naive = 0, stop_after = 0, progress = 0, quiet = 0, mpi = 0;
    float mpi_timeout = 60.0f;
    const cli_opt opts[] = {
        {NULL, "--base", OPT_STR, &base, "MODEL", "base model B (required)"},
        {NULL, "--ft", OPT_STR, &ftp, "MODEL", "fine-tuned model F, same architecture and tokenizer (required)"},
        {"-z", "--tokenizer", OPT_STR, &tokp, "FILE", "tokenizer .bin for llama2.c checkpoints (default: beside each)"},
        {NULL, "--data", OPT_STR, &data, "SPEC", "dataset FORMAT:FILE, e.g. winogrande:dev.jsonl (required)"},
        {"-n", "--n", OPT_INT, &n_max, "N", "first N items (0: all)"},
        {NULL, "--sites", OPT_STR, &sites, "LIST", "sites, in output order (default mlp_in,attn_out,mlp_out,resid_post)"},
        {NULL, "--layers", OPT_STR, &layers, "L", "all | 3 | 0,2,5-7 (default all)"},
        {NULL, "--alphas", OPT_STR, &alphas, "LIST", "alpha grid (default 0,0.1,0.25,0.5,1)"},
        {NULL, "--tokens", OPT_INT, &tokens, "K", "continuation tokens scored (default 5)"},
        {NULL, "--continuation", OPT_STR, &cont, "ft|gold", "F's greedy continuation (default) or the gold answer"},
        {NULL, "--positions", OPT_STR, &positions, "P", "steered positions: all (default), prompt, continuation"},
        {NULL, "--delta-site", OPT_STR, &delta, "SITE", "take every oracle delta at SITE (default: the steered site)"},
        {"-o", "--out", OPT_STR, &out, "DIR", "output directory (required)"},
        {NULL, "--shard", OPT_STR, &shard, "I/N", "run items with index % N == I (0 <= I < N); join with steer merge"},
        {NULL, "--threads", OPT_INT, &threads, "T", "compute threads, spent on items in parallel (default: OMP_NUM_THREADS)"},
        {NULL, "--naive", OPT_FLAG, &naive, NULL, "one full forward per (site, layer, alpha): the check path"},
        {NULL, "--save-vectors", OPT_STR, &save_vectors, "FILE",
         "also write the mean oracle delta per (site, layer) as a vector file"},
        {NULL, "--stop-after-items", OPT_INT, &stop_after, "K", "stop after K items (resume by running again)"},
        {NULL, "--progress", OPT_FLAG, &progress, NULL, "a progress line per item even when stderr is not a TTY"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "no progress and no summary"},
        CLI_MPI_OPTS(&mpi, &mpi_timeout, "items"),
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
                   "  steer merge out/s0 out/s1 -o out/sweep\n"
                   "  mpirun -np 4 steer sweep ... --threads 1 --mpi --out out/sweep",
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
    if (alphas && cli_parse_floats("--alphas", alphas, p.alphas, STEER_SWEEP_MAX_ALPHAS, &p.n_alphas, err, sizeof err)) return cli_usage("%s", err);
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

    int rank, n_ranks;
    if ((rc = cli_mpi_start(mpi, mpi_timeout, &rank, &n_ranks)) >= 0) return rc;
    if (rank != 0) quiet = 1; /* rank 0 speaks for the run */

    steer_model *mb = NULL, *mf = NULL;
    steer_dataset *d = NULL;
    steer_sweep_table *t = NULL;
    if ((rc = cli_load_model(base, tokp, &mb)) || (rc = cli_load_model(ftp, tokp, &mf))) goto setup_done;
    const steer_model_config *cfg = steer_model_get_config(mb);
    unsigned char mask[STEER_SWEEP_MAX_LAYERS];
    if (cfg->n_layer > STEER_SWEEP_MAX_LAYERS) {
        rc = cli_error("%s: %d layers (at most %d)", base, cfg->n_layer, STEER_SWEEP_MAX_LAYERS);
        goto setup_done;
    }
    if (cli_parse_layers(layers, cfg->n_layer, mask, err, sizeof err)) {
        rc = cli_usage("--layers: %s", err);
        goto setup_done;
    }
    p.n_layers = 0;
    for (int l = 0; l < cfg->n_layer; l++)
        if (mask[l]) p.layers[p.n_layers++] = l;
    if (steer_sweep_check(mb, mf, &p) != STEER_OK) {
        rc = cli_error("--base %s, --ft %s: %s", base, ftp, steer_last_error());
        goto setup_done;
    }
    steer_data_params dp = steer_data_default_params();
    dp.n_max = n_max;
    if (steer_data_load(data, &dp, &d) != STEER_OK) {
        rc = cli_lib_error();
        goto setup_done;
    }
    steer_sweep_info info = {base, ftp, data, cli_cmdline, cfg->arch_name, cfg->n_layer, cfg->d_model,
                             steer_data_count(d)};
    int n_read = 0;
    /* With --mpi only rank 0 keeps the table and the journal. */
    if (rank == 0 &&
        (steer_sweep_table_new(&p, &info, &t) != STEER_OK || steer_sweep_journal_open(t, out, &n_read) != STEER_OK)) {
        rc = cli_lib_error();
        goto setup_done;
    }
setup_done:
#ifdef STEER_HAVE_MPI
    if (mpi && !cli_mpi_all_ok(rc == 0)) { /* the failing rank printed why */
        if (!rc) rc = 1;
        goto end;
    }
#endif
    if (rc) goto end;
    sweep_state st = {.t = t, .progress = quiet ? 0 : progress ? 2 : isatty(2) ? 1 : 0, .done0 = n_read,
                      .stop_after = stop_after, .t0 = cli_now()};
    for (int i = 0; i < info.n_data; i++) st.total += i % p.shard_count == p.shard_index;
    if (n_read && !quiet)
        fprintf(stderr, "steer sweep: resuming: %d of %d items read back from %s/progress.jsonl\n", n_read, st.total,
                out);
    p.skip = t ? steer_sweep_table_done(t) : NULL;
    int src;
    if (mpi) {
#ifdef STEER_HAVE_MPI
        if (!quiet && n_ranks > 1)
            fprintf(stderr, "steer sweep: %d ranks share %d item(s)\n", n_ranks, st.total - n_read);
        src = sweep_mpi(mb, mf, d, &p, &st, rank, mpi_timeout, out, !quiet || progress);
        if (st.progress == 1 && st.done) fputc('\n', stderr);
        if (rank != 0 || (src != 0 && src != 3)) {
            rc = src;
            goto end;
        }
        src = src == 3 ? 1 : 0;
#else
        src = 0;
#endif
    } else {
        p.on_item = on_item;
        p.ud = &st;
        src = steer_sweep_run(mb, mf, d, &p);
        if (st.progress == 1 && st.done) fputc('\n', stderr);
        if (src < 0) {
            rc = cli_lib_error();
            goto end;
        }
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
#ifdef STEER_HAVE_MPI
    if (mpi) cli_mpi_finalize();
#endif
    return rc;
}

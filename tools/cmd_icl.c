/* cmd_icl.c — `steer icl`: in-context learning as pre-MLP (attn_out)
 * steering, SPEC §4 E3 (a)–(d). The experiment is the library's
 * steer_icl_experiment (src/icl.c); this file parses options and prints the
 * summary. docs/ICL.md describes the numbers and files. */
#include "cli.h"
#include "mpi/mpi_cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    int mode; /* 0 none, 1 redrawn line (TTY), 2 a line per update */
    const char *last;
} prog_state;

static void on_progress(void *ud, const char *stage, int done, int total)
{
    prog_state *s = ud;
    if (!s->mode) return;
    if (s->mode == 1) {
        if (s->last && strcmp(s->last, stage) != 0) fputc('\n', stderr);
        fprintf(stderr, "\ricl: %-9s %d/%d   ", stage, done, total);
    } else if (done == total || done % 16 == 0) {
        fprintf(stderr, "icl: %s %d/%d\n", stage, done, total);
    }
    s->last = stage;
    fflush(stderr);
}

static void num(char *buf, size_t n, double v)
{
    if (isfinite(v)) snprintf(buf, n, "%.4g", v);
    else snprintf(buf, n, "-");
}

#ifdef STEER_HAVE_MPI
/* ---------------------------------------------------------------- --mpi (docs/SCALING.md)
 * Rank 0 (the job's lead) runs the training queries, (b) and (d) alone —
 * one sequential computation — on its compute thread while the pool holds
 * the other ranks' requests (heartbeats go on, so a rank lost meanwhile is
 * detected); it then publishes the vectors, which reach every rank before
 * its first held-out query. Each query is a record of its numbers
 * (steer_icl_job_run) that rank 0 puts into its job, which sums them in
 * query order as one process does. */
typedef struct {
    steer_icl_job *job;
    int rank, learned;
    size_t nv;          /* floats per vector set: n_layer·d_model */
    int have_vectors;
    void *buf;
    size_t cap;
} icl_mpi;

static int icl_compute(void *ud, mpi_pool *pool)
{
    icl_mpi *m = ud;
    const size_t vbytes = (m->learned ? 2 : 1) * m->nv * sizeof(float);
    if (m->rank == 0) {
        int rc = steer_icl_job_train(m->job);
        if (rc) return rc;
        float *v = malloc(vbytes);
        if (!v) cli_mpi_die("icl", "out of memory");
        if (!(rc = steer_icl_job_vectors(m->job, v, m->learned ? v + m->nv : NULL))) rc = mpi_pool_publish(pool, v, vbytes);
        free(v);
        if (rc) return rc;
        m->have_vectors = 1;
    }
    for (;;) {
        const int i = mpi_pool_next(pool);
        if (i < 0) return 0;
        if (!m->have_vectors) { /* rank > 0: the vectors came before the first query */
            size_t n = 0;
            const float *v = mpi_pool_blob(pool, &n);
            if (!v || n != vbytes)
                return mpi_pool_error(pool, "--mpi: %zu bytes of vectors from rank 0, want %zu", n, vbytes);
            int rc = steer_icl_job_set_vectors(m->job, v, m->learned ? v + m->nv : NULL);
            if (rc) return rc;
            m->have_vectors = 1;
        }
        const size_t n = steer_icl_job_record_size(m->job, i);
        if (n > m->cap) {
            void *b = realloc(m->buf, n);
            if (!b) cli_mpi_die("icl", "out of memory");
            m->buf = b;
            m->cap = n;
        }
        int rc = steer_icl_job_run(m->job, i, m->buf, n);
        if (rc) return rc;
        if ((rc = mpi_pool_put(pool, i, m->buf, n)) < 0) return rc;
    }
}

static int icl_consume(void *ud, int i, const void *rec, size_t n, char *msg, size_t msg_size)
{
    (void)msg, (void)msg_size; /* put's message is steer_last_error() */
    return steer_icl_job_put(((icl_mpi *)ud)->job, i, rec, n);
}

static void icl_name_item(void *ud, int i, char *buf, size_t n)
{
    const char *id = steer_icl_job_item_id(((icl_mpi *)ud)->job, i);
    snprintf(buf, n, "%s", id ? id : "?");
}

/* Every rank: rank 0 trains and publishes the vectors, then the held-out
 * queries go over the ranks. Returns 0 or an exit status (printed). */
static int icl_run_mpi(steer_icl_job *job, const steer_model *model, int learned, int rank, double timeout, int verbose)
{
    const steer_model_config *cfg = steer_model_get_config(model);
    icl_mpi im = {.job = job, .rank = rank, .learned = learned, .nv = (size_t)cfg->n_layer * cfg->d_model};
    const int n = steer_icl_job_items(job);
    int *todo = NULL;
    if (rank == 0) {
        if (!(todo = malloc((n > 0 ? (size_t)n : 1) * sizeof *todo))) cli_mpi_die("icl", "out of memory");
        for (int i = 0; i < n; i++) todo[i] = i;
    }
    mpi_pool_params pp = {.what = "icl", .n_data = n, .todo = todo, .n_todo = rank == 0 ? n : 0, .timeout_s = timeout,
                          .consume = icl_consume, .consume_ud = &im, .compute = icl_compute, .compute_ud = &im,
                          .publish = 1};
    mpi_share_report rep = {.name_item = icl_name_item, .ud = &im, .verbose = verbose};
    const int rc = cli_mpi_share(&pp, &rep);
    free(todo);
    free(im.buf);
    return rc;
}
#endif

int cmd_icl(int argc, char **argv)
{
    const char *model = NULL, *tokp = NULL, *data = NULL, *pool = NULL, *out = NULL, *score = "answer";
    int shots = 4, max_shot = 0, n_eval = 64, n_train = 128, steps = 100, batch = 8, threads = 0, progress = 0, quiet = 0,
        mpi = 0;
    float alpha = 1.0f, lr = 1e-2f, mpi_timeout = 60.0f;
    uint64_t seed = 0;
    const cli_opt opts[] = {
        {"-m", "--model", OPT_STR, &model, "MODEL", "model (required)"},
        {"-z", "--tokenizer", OPT_STR, &tokp, "FILE", "tokenizer of a llama2.c model"},
        {NULL, "--data", OPT_STR, &data, "SPEC", "queries, FORMAT:FILE, e.g. winogrande:dev.jsonl (required)"},
        {NULL, "--pool", OPT_STR, &pool, "SPEC", "where the demonstrations come from (default: --data)"},
        {NULL, "--shots", OPT_INT, &shots, "K", "demonstrations in the context C (default 4)"},
        {NULL, "--seed", OPT_U64, &seed, "S", "picks the demonstrations (default 0)"},
        {NULL, "--max-shot-tokens", OPT_INT, &max_shot, "T", "only demonstrations of at most T tokens (default: any)"},
        {"-n", "--n", OPT_INT, &n_eval, "N", "held-out queries: the first N that are not demonstrations (default 64)"},
        {NULL, "--n-train", OPT_INT, &n_train, "M", "training queries for (b) and (d): the next M (default 128)"},
        {NULL, "--score", OPT_STR, &score, "P", "positions KL is measured and fit on: answer (default) or all"},
        {NULL, "--alpha", OPT_FLOAT, &alpha, "A", "(c) adds A times the vectors (default 1)"},
        {NULL, "--steps", OPT_INT, &steps, "S", "(d) optimizer updates (default 100; 0 skips (d))"},
        {NULL, "--batch", OPT_INT, &batch, "B", "(d) queries per update (default 8)"},
        {NULL, "--lr", OPT_FLOAT, &lr, "LR", "(d) peak learning rate (default 1e-2)"},
        {NULL, "--threads", OPT_INT, &threads, "T", "threads (default: OMP_NUM_THREADS)"},
        {"-o", "--out", OPT_STR, &out, "DIR", "output directory (required)"},
        {NULL, "--progress", OPT_FLAG, &progress, NULL, "progress lines even when stderr is not a TTY"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "no progress and no summary"},
        CLI_MPI_OPTS(&mpi, &mpi_timeout, "held-out queries"),
    };
    const cli_spec spec = {
        .usage = "steer icl -m MODEL --data SPEC [--pool SPEC] --shots K [--n N] [--n-train M] --out DIR",
        .description =
            "In-context learning as pre-MLP steering (SPEC E3). C = K demonstrations (with\n"
            "answers) from --pool; every query q runs with C (ICL) and alone (zero-shot).\n"
            "  (a) q alone with attn_out at every layer replaced by the ICL run's: the logits\n"
            "      must equal the ICL run's (max |delta| reported); and one layer at a time\n"
            "      (KL to ICL and recovery per layer);\n"
            "  (b) Delta_A,l = mean of attn_out(C+q) - attn_out(q) over the training queries'\n"
            "      positions, saved as DIR/mean_delta.safetensors (attn_out.<l>);\n"
            "  (c) q alone + alpha*Delta_A at attn_out: KL(steered || ICL) vs KL(zero-shot || ICL)\n"
            "      and greedy accuracy zero-shot / ICL / steered; memory of C's KV cache vs L*d;\n"
            "  (d) the vectors trained from (b) on KL(steered || ICL) over the training queries\n"
            "      (DIR/learned.safetensors), evaluated on the held-out ones.\n"
            "KL is measured at the positions predicting the gold answer's tokens (--score answer)\n"
            "or at every query position (--score all). Writes DIR/icl.csv, icl_layers.csv,\n"
            "items_icl.csv, summary_icl.json, kl_to_icl.png/svg, recovery_by_layer.png/svg.\n"
            "With --mpi (under mpirun/srun) rank 0 runs (b) and (d), then the held-out queries'\n"
            "passes are shared over the ranks; the files are one process's (docs/SCALING.md).\n"
            "See docs/ICL.md.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer icl -m models/stories260K-winogrande/stories260K-winogrande.bin \\\n"
                   "      --data winogrande:tests/data/winogrande/dev.jsonl \\\n"
                   "      --pool winogrande:tests/data/winogrande/train_m.jsonl --shots 4 --n 64 --out out/icl\n"
                   "  mpirun -np 4 steer icl ... --threads 1 --mpi --out out/icl",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0) return rc;
    if (!model) return cli_usage("missing -m MODEL");
    if (!data) return cli_usage("missing --data SPEC");
    if (!out) return cli_usage("missing --out DIR");
    if (shots < 1) return cli_usage("--shots must be >= 1, got %d", shots);
    if (max_shot < 0) return cli_usage("--max-shot-tokens must be >= 0, got %d", max_shot);
    if (n_eval < 1 || n_train < 1) return cli_usage("--n and --n-train must be >= 1");
    if (steps < 0 || batch < 1) return cli_usage("--steps must be >= 0 and --batch >= 1");
    if (!(lr > 0)) return cli_usage("--lr must be > 0");
    if (threads < 0) return cli_usage("--threads must be >= 0, got %d", threads);
    steer_icl_exp_params p = steer_icl_exp_default_params();
    if (strcmp(score, "answer") == 0) p.score = STEER_ICL_SCORE_ANSWER;
    else if (strcmp(score, "all") == 0) p.score = STEER_ICL_SCORE_ALL;
    else return cli_usage("--score must be answer or all, got '%s'", score);
    p.shots = shots;
    p.max_shot_tokens = max_shot;
    p.seed = seed;
    p.n_eval = n_eval;
    p.n_train = n_train;
    p.alpha = alpha;
    p.learn.steps = steps;
    p.learn.batch = batch;
    p.learn.lr = lr;
    p.n_threads = threads;
    p.model_path = model;
    p.data_spec = data;
    p.pool_spec = pool ? pool : data;
    p.command = cli_cmdline;
    int rank, n_ranks;
    if ((rc = cli_mpi_start(mpi, mpi_timeout, &rank, &n_ranks)) >= 0) return rc;
    if (rank != 0) quiet = 1; /* rank 0 speaks for the run */
    prog_state ps = {quiet ? 0 : progress ? 2 : isatty(2) ? 1 : 0, NULL};
    p.on_progress = on_progress;
    p.ud = &ps;

    steer_model *m = NULL;
    steer_dataset *dq = NULL, *dpool = NULL;
    steer_icl_job *job = NULL; /* --mpi */
    steer_icl_exp_result r;
    if ((rc = cli_load_model(model, tokp, &m))) goto setup_done;
    steer_data_params dp = steer_data_default_params();
    if (steer_data_load(data, &dp, &dq) != STEER_OK || (pool && steer_data_load(pool, &dp, &dpool) != STEER_OK)) {
        rc = cli_lib_error();
        goto setup_done;
    }
    /* --mpi: every rank picks the context and queries (rank 0 trains in the pool). */
    if (mpi && steer_icl_job_new(m, dq, dpool ? dpool : dq, &p, rank == 0, &job) != STEER_OK) rc = cli_lib_error();
setup_done:
#ifdef STEER_HAVE_MPI
    if (mpi && !cli_mpi_all_ok(rc == 0)) { /* the failing rank printed why */
        if (!rc) rc = 1;
        goto end;
    }
#endif
    if (rc) goto end;
    if (mpi) {
#ifdef STEER_HAVE_MPI
        if (!quiet && n_ranks > 1)
            fprintf(stderr, "steer icl: %d ranks share %d held-out queries (rank 0 trains first)\n", n_ranks,
                    steer_icl_job_items(job));
        rc = icl_run_mpi(job, m, steps > 0, rank, mpi_timeout, !quiet || progress);
        if (ps.mode == 1 && ps.last) fputc('\n', stderr);
        if (rc || rank != 0) goto end;
        if (steer_icl_job_finish(job, out, &r) != STEER_OK) {
            rc = cli_lib_error();
            goto end;
        }
#endif
    } else {
        int lrc = steer_icl_experiment(m, dq, dpool ? dpool : dq, &p, out, &r);
        if (ps.mode == 1 && ps.last) fputc('\n', stderr);
        if (lrc != STEER_OK) {
            rc = cli_lib_error();
            goto end;
        }
    }
    if (!quiet) {
        char a[32], b[32], c[32], d[32];
        printf("wrote %s/icl.csv, icl_layers.csv, items_icl.csv, summary_icl.json, figures\n", out);
        printf("context: %d demonstrations, %d tokens; KV cache %zu bytes vs %zu bytes of vectors (ratio %.1f)\n",
               shots, r.context_tokens, r.kv_bytes, r.vec_bytes, (double)r.kv_bytes / (double)r.vec_bytes);
        if (r.n_skipped)
            printf("skipped %d queries that do not fit the context window after the context\n", r.n_skipped);
        printf("(a) every layer patched: max |logit - ICL logit| = %.3g over %d held-out queries\n", r.exact_max_abs,
               r.n_eval);
        num(a, sizeof a, r.kl_zero), num(b, sizeof b, r.kl_mean), num(c, sizeof c, r.kl_learned);
        printf("KL(. || ICL), %s positions: zero-shot %s, mean Delta_A %s, learned %s\n", score, a, b, c);
        num(a, sizeof a, r.acc_zero), num(b, sizeof b, r.acc_icl), num(c, sizeof c, r.acc_mean),
            num(d, sizeof d, r.acc_learned);
        printf("accuracy: zero-shot %s, ICL %s, mean Delta_A %s, learned %s\n", a, b, c, d);
        if (steps > 0) {
            num(a, sizeof a, r.learn_before), num(b, sizeof b, r.learn_after);
            printf("(d) training objective over %d queries: %s -> %s\n", r.n_train, a, b);
        }
    }
    rc = 0;
end:
    steer_icl_job_free(job);
    steer_data_free(dq);
    steer_data_free(dpool);
    steer_model_free(m);
#ifdef STEER_HAVE_MPI
    if (mpi) cli_mpi_finalize();
#endif
    return rc;
}

/*
 * cmd_study_adapt.c — `steer study adapt` (SPEC §4 E4, the paper's table at
 * small scale): trains every method with steer_train, evaluates greedy
 * exact-answer accuracy with steer_eval_dataset on a validation and a test
 * split, and writes DIR/table.csv, table.md, timing.csv, summary.json and
 * acc_vs_params.png/.svg (docs/STUDY.md).
 *
 * Runs live in DIR/runs/<method>-<site>[-lr<lr>]/ (steer train's files plus
 * result.json, written last): a run with a result.json is not retrained, so
 * an interrupted study restarts where it stopped. table.csv holds no timing
 * (timing.csv does), so the same seed and thread count reproduce it byte for
 * byte.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---------------------------------------------------------------- methods */

typedef struct {
    const char *name;   /* study name                                        */
    const char *method; /* steer_train method                                */
    steer_act act;      /* STEER_ACT_DEFAULT: the method's                   */
    int family;         /* 0 steering (per site), 1 LoRA, 2 full, 3 joint    */
} study_method;

static const study_method methods_all[] = {
    {"full", "full", STEER_ACT_DEFAULT, 2},
    {"lora", "lora", STEER_ACT_DEFAULT, 1},
    {"adapter-linear", "adapter-linear", STEER_ACT_DEFAULT, 0},
    {"adapter-silu", "adapter", STEER_ACT_SILU, 0},
    {"vector", "vector", STEER_ACT_DEFAULT, 0},
    {"rank1", "rank1", STEER_ACT_DEFAULT, 0},
    {"loreft", "loreft", STEER_ACT_DEFAULT, 0},
    {"joint", "joint", STEER_ACT_DEFAULT, 3},
};
#define N_METHODS (int)(sizeof methods_all / sizeof methods_all[0])

/* Learning rates: defaults (measured, docs/STUDY.md) and --lr-sweep grids. */
static const double lr_default[4] = {5e-3, 1.5e-3, 1e-3, 1.5e-3};
static const double grid_steer[] = {5e-4, 1e-3, 2e-3, 5e-3};
static const double grid_lora[] = {2e-4, 5e-4, 1.5e-3};
static const double grid_full[] = {5e-5, 2e-4, 1e-3};

static int lr_grid(int family, const double **g)
{
    switch (family) {
    case 0: *g = grid_steer; return 4;
    case 2: *g = grid_full; return 3;
    default: *g = grid_lora; return 3;
    }
}

/* ---------------------------------------------------------------- runs */

typedef struct {
    const study_method *sm;
    steer_site site;      /* steering site; joint: resid_post                  */
    int has_site;         /* 0: full, LoRA (no site)                           */
    double lr;
    int rank;
    size_t trainable, n_model;
    double val_acc, val_loss, test_acc, test_loss, test_format, train_s, eval_s;
    int done;
} run_row;

static int mkdir_one(const char *d)
{
    if (mkdir(d, 0777) != 0 && errno != EEXIST)
        return cli_error("%s: cannot create directory: %s", d, strerror(errno));
    return 0;
}

/* A file written to memory first, then atomically (steer_write_file_atomic),
 * so an interrupted study never leaves a half-written file. */
typedef struct {
    char *p;
    size_t n;
} membuf;

/* NULL (the error printed) when the memory stream cannot be opened. */
static FILE *mem_open(membuf *m)
{
    m->p = NULL;
    m->n = 0;
    FILE *f = open_memstream(&m->p, &m->n);
    if (!f)
        cli_error("out of memory");
    return f;
}

/* Closes f and writes its text to path; 0, or 1 with the error printed. */
static int mem_commit(FILE *f, membuf *m, const char *path)
{
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    int rc = bad ? cli_error("%s: out of memory", path) : steer_write_file_atomic(path, m->p, m->n) ? cli_lib_error() : 0;
    free(m->p);
    return rc;
}

static void run_dir(const char *out, const run_row *r, int sweep, char *buf, size_t n)
{
    if (sweep)
        snprintf(buf, n, "%s/runs/%s-%s-lr%g", out, r->sm->name, r->has_site ? steer_site_name(r->site) : "model",
                 r->lr);
    else
        snprintf(buf, n, "%s/runs/%s-%s", out, r->sm->name, r->has_site ? steer_site_name(r->site) : "model");
}

/* result.json: what a finished run measured (read back on a rerun). */
static int write_result(const char *dir, const run_row *r)
{
    char path[4200];
    membuf tmp;
    snprintf(path, sizeof path, "%s/result.json", dir);
    FILE *f = mem_open(&tmp);
    if (!f)
        return 1;
    fprintf(f,
            "{\"method\": \"%s\", \"site\": \"%s\", \"lr\": %.17g, \"rank\": %d, \"trainable\": %zu, \"n_model\": %zu,\n"
            " \"val_acc\": %.17g, \"val_loss\": %.17g, \"test_acc\": %.17g, \"test_loss\": %.17g, \"test_format\": %.17g,\n"
            " \"train_s\": %.3f, \"eval_s\": %.3f}\n",
            r->sm->name, r->has_site ? steer_site_name(r->site) : "", r->lr, r->rank, r->trainable, r->n_model,
            r->val_acc, r->val_loss, r->test_acc, r->test_loss, r->test_format, r->train_s, r->eval_s);
    if (mem_commit(f, &tmp, path))
        return 1;
    return 0;
}

static double jnum(const cJSON *o, const char *k, int *ok)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) {
        *ok = 0;
        return NAN;
    }
    return v->valuedouble;
}

/* 1 = read a finished run; 0 = none there; -1 = a broken file (retrain). */
static int read_result(const char *dir, run_row *r)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/result.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *o = cJSON_Parse(buf);
    if (!o)
        return -1;
    int ok = 1;
    double lr = jnum(o, "lr", &ok);
    r->rank = (int)jnum(o, "rank", &ok);
    r->trainable = (size_t)jnum(o, "trainable", &ok);
    r->n_model = (size_t)jnum(o, "n_model", &ok);
    r->val_acc = jnum(o, "val_acc", &ok);
    r->val_loss = jnum(o, "val_loss", &ok);
    r->test_acc = jnum(o, "test_acc", &ok);
    r->test_loss = jnum(o, "test_loss", &ok);
    r->test_format = jnum(o, "test_format", &ok);
    r->train_s = jnum(o, "train_s", &ok);
    r->eval_s = jnum(o, "eval_s", &ok);
    cJSON_Delete(o);
    if (!ok || lr != r->lr)
        return -1;
    r->done = 1;
    return 1;
}

typedef struct {
    const char *model_path, *tok_path, *out, *cmdline;
    const steer_dataset *train, *val, *test;
    int steps, batch, progress, quiet, eval_batch;
    uint64_t seed;
} study_ctx;

/* Trains and evaluates one run (or reads its result.json). */
static int do_run(const study_ctx *sc, const steer_model *m, run_row *r, int sweep)
{
    char dir[4096];
    run_dir(sc->out, r, sweep, dir, sizeof dir);
    int have = read_result(dir, r);
    if (have == 1) {
        if (!sc->quiet && sc->progress)
            fprintf(stderr, "study adapt: %s done before (%s)\n", dir, "result.json");
        return 0;
    }
    steer_train_params p = steer_train_default_params();
    p.method = r->sm->method;
    p.act = r->sm->act;
    if (r->has_site || r->sm->family == 3)
        p.site = r->site;
    p.lr = r->lr;
    p.steps = sc->steps;
    p.batch = sc->batch;
    p.seed = sc->seed;
    p.out_dir = dir;
    p.model_path = sc->model_path;
    p.tokenizer_path = sc->tok_path;
    p.command = sc->cmdline;
    p.progress = sc->quiet ? 0 : sc->progress ? 2 : 0;
    if (!sc->quiet && sc->progress)
        fprintf(stderr, "study adapt: training %s (%s, lr %g, %d steps)\n", dir, r->sm->method, r->lr, sc->steps);
    steer_train_result res;
    double t0 = cli_now();
    if (steer_train(m, sc->train, NULL, &p, &res) != STEER_OK)
        return cli_lib_error_at(dir);
    r->train_s = cli_now() - t0;
    r->trainable = res.n_trainable;
    r->n_model = res.n_model;
    r->rank = strcmp(r->sm->method, "vector") == 0 || r->sm->family == 2 ? 0
              : strcmp(r->sm->method, "rank1") == 0                        ? 1
                                                                           : 8;
    /* evaluate: full fine-tuning is a model directory; the rest a checkpoint */
    t0 = cli_now();
    steer_model *mf = NULL;
    char ck[4200];
    const steer_model *me = m;
    const char *adapter = NULL;
    if (r->sm->family == 2) {
        snprintf(ck, sizeof ck, "%s/model", dir);
        if (steer_model_load(ck, NULL, &mf) != STEER_OK)
            return cli_lib_error();
        me = mf;
    } else {
        snprintf(ck, sizeof ck, "%s/adapter.safetensors", dir);
        adapter = ck;
    }
    steer_eval_params ep = {0, sc->eval_batch, 0, 0};
    steer_eval_result ev, et;
    int rc = steer_eval_dataset(me, adapter, sc->val, &ep, &ev, NULL);
    if (!rc)
        rc = steer_eval_dataset(me, adapter, sc->test, &ep, &et, NULL);
    steer_model_free(mf);
    if (rc)
        return cli_lib_error_at(dir);
    r->eval_s = cli_now() - t0;
    r->val_acc = ev.acc;
    r->val_loss = ev.loss;
    r->test_acc = et.acc;
    r->test_loss = et.loss;
    r->test_format = et.format;
    r->done = 1;
    return write_result(dir, r);
}

/* ---------------------------------------------------------------- outputs */

static const char *row_site(const run_row *r) { return r->has_site ? steer_site_name(r->site) : "-"; }

static int write_tables(const char *out, const run_row *rows, int n, const run_row *base, int has_format)
{
    char path[4200];
    membuf tmp;
    snprintf(path, sizeof path, "%s/table.csv", out);
    FILE *f = mem_open(&tmp);
    if (!f)
        return 1;
    fprintf(f, "method,site,rank,lr,trainable,share,val_acc,test_acc,test_loss%s\n", has_format ? ",format" : "");
    fprintf(f, "untrained,-,0,0,0,0,%.6f,%.6f,%.6f", base->val_acc, base->test_acc, base->test_loss);
    if (has_format)
        fprintf(f, ",%.6f", base->test_format);
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        const run_row *r = &rows[i];
        fprintf(f, "%s,%s,%d,%g,%zu,%.9g,%.6f,%.6f,%.6f", r->sm->name, row_site(r), r->rank, r->lr, r->trainable,
                (double)r->trainable / (double)r->n_model, r->val_acc, r->test_acc, r->test_loss);
        if (has_format)
            fprintf(f, ",%.6f", r->test_format);
        fputc('\n', f);
    }
    if (mem_commit(f, &tmp, path))
        return 1;

    snprintf(path, sizeof path, "%s/timing.csv", out);
    if (!(f = mem_open(&tmp)))
        return 1;
    fprintf(f, "method,site,lr,train_s,eval_s\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%s,%s,%g,%.3f,%.3f\n", rows[i].sm->name, row_site(&rows[i]), rows[i].lr, rows[i].train_s,
                rows[i].eval_s);
    if (mem_commit(f, &tmp, path))
        return 1;

    snprintf(path, sizeof path, "%s/table.md", out);
    if (!(f = mem_open(&tmp)))
        return 1;
    fprintf(f, "| method | site | rank | lr | trainable | share | val acc | test acc | test loss |%s train s |\n",
            has_format ? " format |" : "");
    fprintf(f, "|---|---|---|---|---|---|---|---|---|%s---|\n", has_format ? "---|" : "");
    fprintf(f, "| untrained | - | - | - | 0 | 0 | %.3f | %.3f | %.3f |", base->val_acc, base->test_acc, base->test_loss);
    if (has_format)
        fprintf(f, " %.3f |", base->test_format);
    fprintf(f, " - |\n");
    for (int i = 0; i < n; i++) {
        const run_row *r = &rows[i];
        fprintf(f, "| %s | %s | %d | %g | %zu | %.4f%% | %.3f | %.3f | %.3f |", r->sm->name, row_site(r), r->rank, r->lr,
                r->trainable, 100.0 * (double)r->trainable / (double)r->n_model, r->val_acc, r->test_acc, r->test_loss);
        if (has_format)
            fprintf(f, " %.3f |", r->test_format);
        fprintf(f, " %.0f |\n", r->train_s);
    }
    if (mem_commit(f, &tmp, path))
        return 1;
    return 0;
}

/* summary.json: written by the library (steer_adapt_summary_write), which
 * also reads it back for steer report's adapt section. */
static int write_summary(const char *out, const char *task, const char *model, const study_ctx *sc, int n_train,
                         const run_row *rows, int n, const run_row *base, int sweep)
{
    steer_adapt_row *ar = calloc((size_t)n + 1, sizeof *ar);
    if (!ar)
        return cli_error("out of memory");
    for (int i = 0; i < n; i++) {
        const run_row *r = &rows[i];
        ar[i] = (steer_adapt_row){.method = r->sm->name, .site = r->has_site ? steer_site_name(r->site) : "",
                                  .rank = r->rank, .lr = r->lr, .trainable = r->trainable, .n_model = r->n_model,
                                  .val_acc = r->val_acc, .test_acc = r->test_acc, .test_loss = r->test_loss,
                                  .test_format = r->test_format};
    }
    steer_adapt_summary s = {.task = task, .model = model, .seed = sc->seed, .steps = sc->steps, .batch = sc->batch,
                             .n_train = n_train, .n_val = steer_data_count(sc->val),
                             .n_test = steer_data_count(sc->test), .lr_sweep = sweep, .rows = ar, .n_rows = n};
    s.untrained = (steer_adapt_row){.method = "untrained", .site = "", .val_acc = base->val_acc,
                                    .test_acc = base->test_acc, .test_loss = base->test_loss,
                                    .test_format = base->test_format};
    int rc = steer_adapt_summary_write(out, &s) != STEER_OK ? cli_lib_error() : 0;
    free(ar);
    return rc;
}

static int write_figure(const char *out, const char *task, const run_row *rows, int n, const run_row *base)
{
    steer_plot_series *ser = calloc((size_t)n + 1, sizeof *ser);
    double *xs = calloc((size_t)n + 2, sizeof *xs), *ys = calloc((size_t)n + 2, sizeof *ys);
    char (*lab)[96] = calloc((size_t)n, sizeof *lab);
    if (!ser || !xs || !ys || !lab) {
        free(ser), free(xs), free(ys), free(lab);
        return cli_error("out of memory");
    }
    double xmin = INFINITY, xmax = 0;
    for (int i = 0; i < n; i++) {
        xs[i] = (double)rows[i].trainable;
        ys[i] = rows[i].test_acc;
        if (xs[i] < xmin)
            xmin = xs[i];
        if (xs[i] > xmax)
            xmax = xs[i];
        snprintf(lab[i], sizeof lab[i], "%s%s%s", rows[i].sm->name, rows[i].has_site ? " @ " : "", row_site(&rows[i]));
        if (!rows[i].has_site)
            snprintf(lab[i], sizeof lab[i], "%s", rows[i].sm->name);
        ser[i] = (steer_plot_series){lab[i], &xs[i], &ys[i], 1, 0, 1, 0};
    }
    double bx[2] = {xmin / 2, xmax * 2}, by[2] = {base->test_acc, base->test_acc};
    ser[n] = (steer_plot_series){"untrained model", bx, by, 2, 0, 0, 1};
    char title[256];
    snprintf(title, sizeof title, "%s: test accuracy vs trainable parameters", task);
    steer_plot_panel pn = {NULL, "trainable parameters (log scale)", "greedy exact-answer accuracy", ser, n + 1};
    steer_plot_figure fig = {0};
    fig.title = title;
    fig.log_x = 1;
    fig.legend = STEER_PLOT_LEGEND_FIGURE;
    fig.width = 720;
    fig.height = 520;
    char path[4200];
    int rc = 0;
    snprintf(path, sizeof path, "%s/acc_vs_params.png", out);
    if (steer_plot_write(path, &fig, &pn, 1) != STEER_OK)
        rc = cli_lib_error();
    snprintf(path, sizeof path, "%s/acc_vs_params.svg", out);
    if (!rc && steer_plot_write(path, &fig, &pn, 1) != STEER_OK)
        rc = cli_lib_error();
    free(ser), free(xs), free(ys), free(lab);
    return rc;
}

/* ---------------------------------------------------------------- data */

static int split_heldout(const steer_dataset *d, int n_val, int n_test, uint64_t seed, steer_dataset **val,
                         steer_dataset **test, steer_dataset **rest)
{
    /* the seed's permutation: the first n_val items are validation, the next
       n_test test, the rest (if asked for) training */
    int n = steer_data_count(d);
    int *perm = malloc((size_t)n * sizeof *perm);
    if (!perm)
        return cli_error("out of memory");
    steer_data_permutation(n, seed, perm);
    int rc = steer_data_subset(d, perm, n_val, val);
    if (!rc)
        rc = steer_data_subset(d, perm + n_val, n_test, test);
    if (!rc && rest)
        rc = steer_data_subset(d, perm + n_val + n_test, n - n_val - n_test, rest);
    free(perm);
    return rc ? cli_lib_error() : 0;
}

/* ---------------------------------------------------------------- command */

int study_adapt(int argc, char **argv)
{
    const char *model = NULL, *tokp = NULL, *task = NULL, *methods = "full,lora,adapter-linear,adapter-silu,vector,rank1,loreft,joint",
               *sites = "resid_post", *out = NULL, *train_spec = NULL, *dev_spec = NULL;
    int steps = 300, batch = 8, eval_n = 256, val_n = 128, n_train = 0, sweep = 0, threads = 0, quiet = 0,
        progress = 0, eval_batch = 16, depth = 3;
    uint64_t seed = 1;
    const cli_opt opts[] = {
        {"-m", "--model", OPT_STR, &model, "MODEL", "model (required)"},
        {"-z", "--tokenizer", OPT_STR, &tokp, "FILE", "tokenizer of a llama2.c model"},
        {NULL, "--task", OPT_STR, &task, "T", "winogrande | listops | jsonl:FILE (required)"},
        {NULL, "--methods", OPT_STR, &methods, "LIST",
         "full,lora,adapter-linear,adapter-silu,vector,rank1,loreft,joint (default all)"},
        {NULL, "--sites", OPT_STR, &sites, "LIST",
         "sites of the steering methods: resid_post,mlp_in,attn_out,mlp_out (default resid_post)"},
        {NULL, "--lr-sweep", OPT_FLAG, &sweep, NULL, "train each method on its learning-rate grid, keep the best val acc"},
        {NULL, "--steps", OPT_INT, &steps, "N", "optimizer updates per run (default 300)"},
        {NULL, "--batch", OPT_INT, &batch, "B", "sequences per update (default 8)"},
        {NULL, "--n-train", OPT_INT, &n_train, "N", "training items (0: all; listops: default 4000 generated)"},
        {NULL, "--val-n", OPT_INT, &val_n, "N", "validation items, for --lr-sweep (default 128)"},
        {NULL, "--eval-n", OPT_INT, &eval_n, "N", "test items (default 256)"},
        {NULL, "--train-data", OPT_STR, &train_spec, "SPEC",
         "winogrande training data (default winogrande:tests/data/winogrande/train_m.jsonl)"},
        {NULL, "--dev-data", OPT_STR, &dev_spec, "SPEC",
         "winogrande held-out data (default winogrande:tests/data/winogrande/dev.jsonl)"},
        {NULL, "--depth", OPT_INT, &depth, "D", "listops: maximum nesting depth (default 3)"},
        {NULL, "--seed", OPT_U64, &seed, "S", "initialisation, data order and splits (default 1)"},
        {NULL, "--threads", OPT_INT, &threads, "T", "OpenMP threads (default: OMP_NUM_THREADS)"},
        {NULL, "--progress", OPT_FLAG, &progress, NULL, "a line per run and per update on stderr"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "nothing on stderr but errors"},
        {"-o", "--out", OPT_STR, &out, "DIR", "output directory (required)"},
    };
    const cli_spec spec = {
        .usage = "steer study adapt -m MODEL --task winogrande|listops|jsonl:FILE --out DIR [options]",
        .description =
            "SPEC E4: trains every method (full fine-tuning, LoRA rank 8 on all projections, rank-8\n"
            "adapters linear and SiLU, a fixed vector, rank 1, LoReFT, joint) on the task, evaluates\n"
            "greedy exact-answer accuracy on a validation and a test split, and writes DIR/table.csv,\n"
            "table.md, timing.csv, summary.json and acc_vs_params.png/.svg. Steering methods run at\n"
            "every --sites site. Runs are kept in DIR/runs/; a finished run is not retrained.\n"
            "Learning rates: steering 5e-3, LoRA and joint 1.5e-3, full 1e-3; --lr-sweep instead tries\n"
            "steering 5e-4,1e-3,2e-3,5e-3; LoRA/joint 2e-4,5e-4,1.5e-3; full 5e-5,2e-4,1e-3.\n"
            "Splits (by --seed): winogrande: dev → val-n validation + eval-n test items; listops:\n"
            "generated train, validation, test; jsonl: val-n + eval-n items held out of FILE.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer study adapt -m models/stories260K/stories260K.bin --task listops \\\n"
                   "      --methods full,lora,adapter-silu,vector --steps 300 --out study-listops",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!model)
        return cli_usage("missing -m MODEL");
    if (!task)
        return cli_usage("missing --task winogrande|listops|jsonl:FILE");
    if (!out)
        return cli_usage("missing --out DIR");
    if (steps < 1 || batch < 1 || eval_n < 1 || val_n < 1 || n_train < 0 || threads < 0 || depth < 1 || depth > 64)
        return cli_usage("--steps, --batch, --eval-n, --val-n must be >= 1, --n-train, --threads >= 0, --depth 1..64");
    int is_wg = strcmp(task, "winogrande") == 0, is_lo = strcmp(task, "listops") == 0,
        is_js = strncmp(task, "jsonl:", 6) == 0 && task[6];
    if (!is_wg && !is_lo && !is_js)
        return cli_usage("unknown --task '%s' (winogrande, listops, jsonl:FILE)", task);
    if ((train_spec || dev_spec) && !is_wg)
        return cli_usage("--train-data and --dev-data are for --task winogrande");

    /* methods and sites */
    const study_method *ms[N_METHODS];
    int n_ms = 0;
    {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", methods);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
            const study_method *f = NULL;
            for (int i = 0; i < N_METHODS; i++)
                if (strcmp(t, methods_all[i].name) == 0)
                    f = &methods_all[i];
            if (!f)
                return cli_usage("unknown method '%s' (full, lora, adapter-linear, adapter-silu, vector, rank1, "
                                 "loreft, joint)",
                                 t);
            int dup = 0;
            for (int i = 0; i < n_ms; i++)
                dup |= ms[i] == f;
            if (!dup)
                ms[n_ms++] = f;
        }
        if (!n_ms)
            return cli_usage("--methods is empty");
    }
    steer_site st[8];
    int n_st = 0;
    {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", sites);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
            steer_site s;
            if (steer_site_parse(t, &s) != STEER_OK)
                return cli_usage("unknown site '%s' in --sites (resid_post, mlp_in, attn_out, mlp_out)", t);
            if (s != STEER_SITE_RESID_POST && s != STEER_SITE_MLP_IN && s != STEER_SITE_ATTN_OUT &&
                s != STEER_SITE_MLP_OUT)
                return cli_usage("site '%s' in --sites is not one of the study's (resid_post, mlp_in, attn_out, mlp_out)",
                                 t);
            if (n_st < 8)
                st[n_st++] = s;
        }
        if (!n_st)
            return cli_usage("--sites is empty");
    }
#ifdef _OPENMP
    if (threads > 0)
        omp_set_num_threads(threads);
#endif
    if (!quiet && isatty(2))
        progress = 1;

    steer_model *m = NULL;
    steer_dataset *train = NULL, *val = NULL, *test = NULL, *dev = NULL, *all = NULL;
    run_row *rows = NULL;
    if ((rc = cli_load_model(model, tokp, &m)))
        return rc;
    /* data */
    steer_data_params dp = steer_data_default_params();
    if (is_wg) {
        const char *ts = train_spec ? train_spec : "winogrande:tests/data/winogrande/train_m.jsonl";
        const char *ds = dev_spec ? dev_spec : "winogrande:tests/data/winogrande/dev.jsonl";
        dp.n_max = n_train;
        if (steer_data_load(ts, &dp, &train) || steer_data_check_completions(train)) {
            rc = cli_lib_error();
            goto end;
        }
        dp.n_max = 0;
        if (steer_data_load(ds, &dp, &dev) || steer_data_check_completions(dev)) {
            rc = cli_lib_error();
            goto end;
        }
        if (val_n + eval_n > steer_data_count(dev)) {
            rc = cli_error("%s: %d items, fewer than --val-n %d + --eval-n %d", ds, steer_data_count(dev), val_n, eval_n);
            goto end;
        }
        if ((rc = split_heldout(dev, val_n, eval_n, seed, &val, &test, NULL)))
            goto end;
    } else if (is_lo) {
        steer_listops_params lp = steer_listops_default_params();
        lp.seed = seed;
        lp.max_depth = depth;
        int nt = n_train > 0 ? n_train : 4000;
        if (steer_listops_dataset(nt + val_n + eval_n, &lp, NULL, &all)) {
            rc = cli_lib_error();
            goto end;
        }
        int *idx = malloc((size_t)(nt + val_n + eval_n) * sizeof *idx);
        if (!idx) {
            rc = cli_error("out of memory");
            goto end;
        }
        for (int i = 0; i < nt + val_n + eval_n; i++)
            idx[i] = i;
        if (steer_data_subset(all, idx, nt, &train) || steer_data_subset(all, idx + nt, val_n, &val) ||
            steer_data_subset(all, idx + nt + val_n, eval_n, &test))
            rc = cli_lib_error();
        free(idx);
        if (rc)
            goto end;
    } else {
        if (steer_data_load(task, &dp, &all) || steer_data_check_completions(all)) {
            rc = cli_lib_error();
            goto end;
        }
        if (val_n + eval_n >= steer_data_count(all)) {
            rc = cli_error("%s: %d items, not more than --val-n %d + --eval-n %d", task + 6, steer_data_count(all),
                           val_n, eval_n);
            goto end;
        }
        if ((rc = split_heldout(all, val_n, eval_n, seed, &val, &test, &train)))
            goto end;
        if (n_train > 0 && n_train < steer_data_count(train))
            steer_data_truncate(train, n_train);
    }
    /* output directories */
    char rd[4200];
    snprintf(rd, sizeof rd, "%s/runs", out);
    if ((rc = mkdir_one(out)) || (rc = mkdir_one(rd)))
        goto end;

    study_ctx sc = {model, tokp, out, cli_cmdline, train, val, test, steps, batch, progress, quiet, eval_batch, seed};
    /* the untrained model */
    run_row base = {0};
    {
        static const study_method none = {"untrained", "none", -1, -1};
        base.sm = &none;
        steer_eval_params ep = {0, eval_batch, 0, 0};
        steer_eval_result ev, et;
        if (steer_eval_dataset(m, NULL, val, &ep, &ev, NULL) || steer_eval_dataset(m, NULL, test, &ep, &et, NULL)) {
            rc = cli_lib_error();
            goto end;
        }
        base.val_acc = ev.acc;
        base.test_acc = et.acc;
        base.test_loss = et.loss;
        base.test_format = et.format;
    }
    /* rows: method × site (steering methods), one per method otherwise */
    int n_rows = 0;
    rows = calloc((size_t)n_ms * n_st, sizeof *rows);
    if (!rows) {
        rc = cli_error("out of memory");
        goto end;
    }
    for (int i = 0; i < n_ms; i++) {
        int per_site = ms[i]->family == 0;
        for (int s = 0; s < (per_site ? n_st : 1); s++) {
            run_row *r = &rows[n_rows++];
            r->sm = ms[i];
            r->has_site = per_site || ms[i]->family == 3;
            r->site = per_site ? st[s] : STEER_SITE_RESID_POST;
        }
    }
    for (int i = 0; i < n_rows; i++) {
        run_row *r = &rows[i];
        if (!sweep) {
            r->lr = lr_default[r->sm->family];
            if ((rc = do_run(&sc, m, r, 0)))
                goto end;
            continue;
        }
        const double *g;
        int ng = lr_grid(r->sm->family, &g);
        run_row best = {0};
        for (int k = 0; k < ng; k++) {
            run_row c = *r;
            c.lr = g[k];
            if ((rc = do_run(&sc, m, &c, 1)))
                goto end;
            /* best validation accuracy; ties: lower validation loss */
            if (!best.done || c.val_acc > best.val_acc || (c.val_acc == best.val_acc && c.val_loss < best.val_loss))
                best = c;
        }
        *r = best;
    }
    if ((rc = write_tables(out, rows, n_rows, &base, is_wg)) ||
        (rc = write_summary(out, is_js ? task : task, model, &sc, steer_data_count(train), rows, n_rows, &base, sweep)) ||
        (rc = write_figure(out, is_js ? "jsonl" : task, rows, n_rows, &base)))
        goto end;
    if (!quiet) {
        char p[4200];
        snprintf(p, sizeof p, "%s/table.md", out);
        FILE *f = fopen(p, "r");
        if (f) {
            int ch;
            while ((ch = fgetc(f)) != EOF)
                putchar(ch);
            fclose(f);
        }
    }
end:
    free(rows);
    steer_data_free(train);
    steer_data_free(val);
    steer_data_free(test);
    steer_data_free(dev);
    steer_data_free(all);
    steer_model_free(m);
    return rc;
}

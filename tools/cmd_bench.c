/* cmd_bench.c — `steer bench`: prompt-processing and generation speed with
 * llama.cpp's llama-bench flags, meaning and output fields, so the two can be
 * run on the same GGUF file and compared (scripts/bench_vs_llamacpp.sh).
 *
 * Tests, as llama-bench (c392e509) runs them:
 *   ppN  one batch of N tokens from an empty cache (BOS, then random ids),
 *        logits for the last token only (steer_forward's batch.logits marks
 *        that row, so the pass prunes the last layer to it, as llama.cpp does);
 *   tgN  N decode steps of one token each from an empty cache (BOS, then
 *        random ids), logits for every step.
 * Each test: one warm-up run (not counted), then R timed runs; the cache is
 * cleared before each run, outside the timing. Per run: ns and tokens/s; avg
 * and stddev (n - 1) over the runs, as llama-bench computes them (t/s = the
 * mean of the per-run t/s). */
#include "cli.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "steer_build_commit.h" /* STEER_BUILD_COMMIT: generated at build time (cmake/build_commit.cmake) */

#define BENCH_MAX_VALUES 16

/* The CPU kernel path in use ("avx512", "avx2", "scalar"; STEER_CPU picks
 * another), or NULL when the library does not say (then "CPU" alone). */
static const char *bench_kernel_path(void)
{
    return steer_cpu_path(); /* KERNEL PATH: the one place bench asks the library for it */
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* "128,512" into out[] (each >= min); on failure a usage error naming opt. */
static int parse_int_list(const char *opt, const char *s, int min, int *out, int *n)
{
    *n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0'))
            return cli_usage("%s expects a comma-separated list of integers, got '%s'", opt, s);
        if (v < min || v > 1000000)
            return cli_usage("%s: %ld is out of range (%d to 1000000)", opt, v, min);
        if (*n == BENCH_MAX_VALUES)
            return cli_usage("%s: more than %d values", opt, BENCH_MAX_VALUES);
        out[(*n)++] = (int)v;
        if (*end == '\0') return -1;
        p = end + 1;
    }
}

typedef enum { FMT_MD, FMT_JSON, FMT_CSV } bench_fmt;

/* What every result row of one model shares. */
typedef struct {
    const char *path;
    char type[96];    /* "llama 260K F32" (llama-bench: "llama ?B F16") */
    uint64_t size;    /* bytes of the weight tensors                    */
    int64_t n_params;
    char cpu[128];    /* /proc/cpuinfo model name                       */
    const char *backend_path;
} bench_model;

typedef struct {
    int n_prompt, n_gen, n_threads, reps;
    uint64_t *ns;     /* [reps]                                         */
    double *ts;       /* [reps]                                         */
    double avg_ns, stddev_ns, avg_ts, stddev_ts;
    char time[32];    /* ISO 8601 UTC, when the test started            */
} bench_result;

/* Bytes of the weights through the public views (a tied head counted once). */
static uint64_t model_bytes(const steer_model *m)
{
    const steer_model_config *c = steer_model_get_config(m);
    uint64_t total = 0;
    const void *embd = NULL;
    for (int w = 0; w < STEER_WEIGHT_COUNT; w++) {
        const int global = w <= STEER_WEIGHT_OUTPUT;
        for (int l = 0; l < (global ? 1 : c->n_layer); l++) {
            steer_weight_view v;
            if (steer_model_weight(m, (steer_weight)w, l, &v) != STEER_OK || !v.data) continue;
            if (w == STEER_WEIGHT_TOK_EMBD) embd = v.data;
            if (w == STEER_WEIGHT_OUTPUT && v.data == embd) continue;
            total += (uint64_t)v.rows * (uint64_t)steer_dtype_row_bytes(v.dtype, (size_t)v.cols); /* quantized: whole blocks */
        }
    }
    return total;
}

static void read_cpu_name(char *out, size_t n)
{
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        size_t len = strcspn(v, "\n");
        while (len > 0 && v[len - 1] == ' ') len--;
        snprintf(out, n, "%.*s", (int)len, v);
        break;
    }
    fclose(f);
}

/* "260K", "1.1B": a parameter count as model names say it. */
static void params_label(int64_t n, char *out, size_t size)
{
    const double v = (double)n;
    if (v >= 1e9) snprintf(out, size, "%.3gB", v / 1e9);
    else if (v >= 1e6) snprintf(out, size, "%.3gM", v / 1e6);
    else snprintf(out, size, "%.3gK", v / 1e3);
}

static double mean(const double *x, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++) s += x[i];
    return s / n;
}

/* Sample standard deviation (n - 1), 0 for one value (llama-bench's stdev). */
static double stdev(const double *x, int n)
{
    if (n <= 1) return 0.0;
    const double mu = mean(x, n);
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (x[i] - mu) * (x[i] - mu);
    return sqrt(s / (n - 1));
}

/* ---------------------------------------------------------------- output */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void csv_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const char *p = s; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static void test_name(const bench_result *r, char *out, size_t n)
{
    if (r->n_prompt > 0) snprintf(out, n, "pp%d", r->n_prompt);
    else snprintf(out, n, "tg%d", r->n_gen);
}

static const char *backends_field(const bench_model *bm, char *buf, size_t n)
{
    if (bm->backend_path) snprintf(buf, n, "CPU (%s)", bm->backend_path);
    else snprintf(buf, n, "CPU");
    return buf;
}

/* The columns of llama-bench's CSV that mean something here, in its order,
 * then steer's own (test, cpu_path). */
static const char *const csv_fields =
    "build_commit,build_number,cpu_info,gpu_info,backends,model_filename,model_type,model_size,model_n_params,"
    "n_batch,n_ubatch,n_threads,type_k,type_v,n_gpu_layers,use_mmap,embeddings,n_prompt,n_gen,test_time,avg_ns,"
    "stddev_ns,avg_ts,stddev_ts,test,cpu_path";

static void print_header(FILE *f, bench_fmt fmt)
{
    if (fmt == FMT_JSON) fputs("[\n", f);
    else if (fmt == FMT_CSV) fprintf(f, "%s\n", csv_fields);
    else {
        fprintf(f, "| %-30s | %10s | %10s | %-20s | %7s | %13s | %20s |\n", "model", "size", "params", "backend",
                "threads", "test", "t/s");
        fprintf(f, "| ------------------------------ | ---------: | ---------: | -------------------- | ------: | "
                   "------------: | -------------------: |\n");
    }
    fflush(f);
}

static void print_result(FILE *f, bench_fmt fmt, const bench_model *bm, const bench_result *r, int first)
{
    char test[32], be[160];
    test_name(r, test, sizeof test);
    backends_field(bm, be, sizeof be);
    const int n_batch = r->n_prompt > 0 ? r->n_prompt : 1; /* one batch per test */
    if (fmt == FMT_JSON) {
        fputs(first ? "  {\n" : ",\n  {\n", f);
        fputs("    \"build_commit\": ", f), json_str(f, STEER_BUILD_COMMIT), fputs(",\n", f);
        fputs("    \"build_number\": 0,\n", f);
        fputs("    \"cpu_info\": ", f), json_str(f, bm->cpu), fputs(",\n", f);
        fputs("    \"gpu_info\": \"\",\n", f);
        fputs("    \"backends\": \"CPU\",\n", f);
        fputs("    \"model_filename\": ", f), json_str(f, bm->path), fputs(",\n", f);
        fputs("    \"model_type\": ", f), json_str(f, bm->type), fputs(",\n", f);
        fprintf(f, "    \"model_size\": %llu,\n", (unsigned long long)bm->size);
        fprintf(f, "    \"model_n_params\": %lld,\n", (long long)bm->n_params);
        fprintf(f, "    \"n_batch\": %d,\n    \"n_ubatch\": %d,\n", n_batch, n_batch);
        fprintf(f, "    \"n_threads\": %d,\n", r->n_threads);
        fputs("    \"type_k\": \"f32\",\n    \"type_v\": \"f32\",\n    \"n_gpu_layers\": 0,\n", f);
        fputs("    \"use_mmap\": true,\n    \"embeddings\": false,\n", f);
        fprintf(f, "    \"n_prompt\": %d,\n    \"n_gen\": %d,\n", r->n_prompt, r->n_gen);
        fputs("    \"test_time\": ", f), json_str(f, r->time), fputs(",\n", f);
        fprintf(f, "    \"avg_ns\": %llu,\n    \"stddev_ns\": %llu,\n", (unsigned long long)llround(r->avg_ns),
                (unsigned long long)llround(r->stddev_ns));
        fprintf(f, "    \"avg_ts\": %.6f,\n    \"stddev_ts\": %.6f,\n", r->avg_ts, r->stddev_ts);
        fputs("    \"samples_ns\": [ ", f);
        for (int i = 0; i < r->reps; i++) fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)r->ns[i]);
        fputs(" ],\n    \"samples_ts\": [ ", f);
        for (int i = 0; i < r->reps; i++) fprintf(f, "%s%.6g", i ? ", " : "", r->ts[i]);
        fputs(" ],\n", f);
        fputs("    \"test\": ", f), json_str(f, test), fputs(",\n", f);
        fputs("    \"cpu_path\": ", f), json_str(f, bm->backend_path ? bm->backend_path : "CPU"), fputs("\n  }", f);
    } else if (fmt == FMT_CSV) {
        csv_str(f, STEER_BUILD_COMMIT), fputs(",\"0\",", f);
        csv_str(f, bm->cpu), fputs(",\"\",\"CPU\",", f);
        csv_str(f, bm->path), fputc(',', f);
        csv_str(f, bm->type);
        fprintf(f, ",\"%llu\",\"%lld\",\"%d\",\"%d\",\"%d\",\"f32\",\"f32\",\"0\",\"1\",\"0\",\"%d\",\"%d\",",
                (unsigned long long)bm->size, (long long)bm->n_params, n_batch, n_batch, r->n_threads, r->n_prompt,
                r->n_gen);
        csv_str(f, r->time);
        fprintf(f, ",\"%llu\",\"%llu\",\"%.6f\",\"%.6f\",\"%s\",", (unsigned long long)llround(r->avg_ns),
                (unsigned long long)llround(r->stddev_ns), r->avg_ts, r->stddev_ts, test);
        csv_str(f, bm->backend_path ? bm->backend_path : "CPU");
        fputc('\n', f);
    } else {
        char size[32], params[32], ts[48];
        if (bm->size < 1024ull * 1024 * 1024) snprintf(size, sizeof size, "%.2f MiB", (double)bm->size / 1048576.0);
        else snprintf(size, sizeof size, "%.2f GiB", (double)bm->size / 1073741824.0);
        if (bm->n_params >= 1000000000) snprintf(params, sizeof params, "%.2f B", (double)bm->n_params / 1e9);
        else snprintf(params, sizeof params, "%.2f M", (double)bm->n_params / 1e6);
        snprintf(ts, sizeof ts, "%.2f ± %.2f", r->avg_ts, r->stddev_ts);
        /* "±" is two bytes and one column: pad by hand */
        fprintf(f, "| %-30.30s | %10s | %10s | %-20s | %7d | %13s | %21s |\n", bm->type, size, params, be,
                r->n_threads, test, ts);
    }
    fflush(f);
}

static void print_footer(FILE *f, bench_fmt fmt)
{
    if (fmt == FMT_JSON) fputs("\n]\n", f);
    else if (fmt == FMT_MD) fprintf(f, "\nbuild: %s (steer %s)\n", STEER_BUILD_COMMIT, STEER_VERSION);
    fflush(f);
}

/* ---------------------------------------------------------------- running */

/* llama-bench's token stream: BOS, then pseudo-random ids (fixed seed). */
typedef struct {
    uint32_t state;
} bench_rng;

static int rng_token(bench_rng *r, int n_vocab)
{
    r->state = r->state * 1664525u + 1013904223u;
    return (int)((r->state >> 8) % (uint32_t)n_vocab);
}

/* One run of a test on an empty cache; *ns receives its time. */
static int run_test(steer_ctx *c, const steer_model *m, int n_prompt, int n_gen, int *toks, int *pos, int8_t *lg,
                    bench_rng *rng, uint64_t *ns)
{
    const int n_vocab = steer_model_get_config(m)->n_vocab, bos = steer_token_bos(m);
    steer_ctx_clear(c, -1);
    int rc = STEER_OK;
    if (n_prompt > 0) {
        for (int i = 0; i < n_prompt; i++) {
            toks[i] = i == 0 && bos >= 0 ? bos : rng_token(rng, n_vocab);
            pos[i] = i;
            lg[i] = i == n_prompt - 1;
        }
        const steer_batch b = {.n = n_prompt, .tokens = toks, .pos = pos, .seq = NULL, .logits = lg};
        const uint64_t t0 = now_ns();
        rc = steer_forward(c, &b);
        *ns = now_ns() - t0;
        return rc;
    }
    int tok = bos >= 0 ? bos : rng_token(rng, n_vocab);
    const uint64_t t0 = now_ns();
    for (int i = 0; i < n_gen && rc == STEER_OK; i++) {
        const steer_batch b = {.n = 1, .tokens = &tok, .pos = &i, .seq = NULL, .logits = NULL};
        rc = steer_forward(c, &b);
        tok = rng_token(rng, n_vocab);
    }
    *ns = now_ns() - t0;
    return rc;
}

static void iso_time(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int cmd_bench(int argc, char **argv)
{
    cli_strlist models = {{0}, 0};
    const char *p_spec = "512", *n_spec = "128", *t_spec = NULL, *format = "md";
    int reps = 5, quiet = 0;
    const cli_opt opts[] = {
        {"-m", "--model", OPT_LIST, &models, "MODEL", "model file (GGUF, HF directory or llama2.c .bin; repeatable)"},
        {"-p", "--n-prompt", OPT_STR, &p_spec, "N[,N...]", "prompt tokens of the pp tests, 0 = none (default 512)"},
        {"-n", "--n", OPT_STR, &n_spec, "N[,N...]", "generated tokens of the tg tests, 0 = none (default 128)"},
        CLI_ALIAS("--n-gen", OPT_STR, &n_spec),
        {"-r", "--repetitions", OPT_INT, &reps, "R", "timed runs of each test, after one warm-up (default 5)"},
        {"-t", "--threads", OPT_STR, &t_spec, "T[,T...]", "threads (default: the OpenMP default)"},
        {"-o", "--format", OPT_STR, &format, "md|json|csv", "output format (default md); -o is llama-bench's -o"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "no progress on stderr"},
    };
    const cli_spec spec = {
        .usage = "steer bench -m MODEL [-p N[,N...]] [-n N[,N...]] [-r R] [-t T[,T...]] [-o md|json|csv] [-q]",
        .description =
            "Prompt-processing (ppN) and generation (tgN) speed with llama.cpp's llama-bench\n"
            "flags and meaning, for side-by-side runs on the same GGUF file\n"
            "(scripts/bench_vs_llamacpp.sh, docs/PERFORMANCE.md):\n"
            "  ppN  one batch of N tokens from an empty cache, logits for the last token only;\n"
            "  tgN  N single-token decode steps from an empty cache.\n"
            "Tokens: BOS, then random ids (fixed seed). Each test runs once to warm up, then\n"
            "R timed runs; t/s is the mean of the runs' tokens/s ± their standard deviation.\n"
            "-o json and -o csv write llama-bench's field names (model_filename, model_type,\n"
            "model_size, model_n_params, n_threads, n_prompt, n_gen, avg_ns, stddev_ns,\n"
            "avg_ts, stddev_ts, samples_ns, samples_ts, ...) plus test (\"pp512\") and\n"
            "cpu_path (the kernel path). Here -o is the output format, as in llama-bench,\n"
            "not an output file as in the other commands. Order of the tests: models, then\n"
            "thread counts, then the pp tests, then the tg tests. Progress on stderr when it\n"
            "is a terminal. Not supported from llama-bench: -pg, -b/-ub (the prompt is one\n"
            "batch), -ngl, -fa, KV cache types (steer's cache is F32).",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer bench -m model.gguf -p 128 -n 32 -r 5 -t 2\n"
                   "  steer bench -m model.gguf -p 128,512 -n 0 -t 1,2 -o json > bench.json",
        .min_pos = 0,
        .max_pos = 0,
        .pos = NULL,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;

    bench_fmt fmt;
    if (!strcmp(format, "md")) fmt = FMT_MD;
    else if (!strcmp(format, "json")) fmt = FMT_JSON;
    else if (!strcmp(format, "csv")) fmt = FMT_CSV;
    else return cli_usage("--format must be md, json or csv, got '%s'", format);
    if (models.n == 0) return cli_usage("-m MODEL is required");
    int pp[BENCH_MAX_VALUES], tg[BENCH_MAX_VALUES], th[BENCH_MAX_VALUES], n_pp, n_tg, n_th = 1;
    if ((rc = parse_int_list("--n-prompt", p_spec, 0, pp, &n_pp)) >= 0) return rc;
    if ((rc = parse_int_list("--n", n_spec, 0, tg, &n_tg)) >= 0) return rc;
    if (t_spec) {
        if ((rc = parse_int_list("--threads", t_spec, 1, th, &n_th)) >= 0) return rc;
    } else th[0] = omp_get_max_threads();
    if (reps < 1 || reps > 100000) return cli_usage("--repetitions must be 1 to 100000, got %d", reps);
    int n_tests = 0, max_pos = 1;
    for (int i = 0; i < n_pp; i++) n_tests += pp[i] > 0, max_pos = pp[i] > max_pos ? pp[i] : max_pos;
    for (int i = 0; i < n_tg; i++) n_tests += tg[i] > 0, max_pos = tg[i] > max_pos ? tg[i] : max_pos;
    if (n_tests == 0) return cli_usage("nothing to run: every --n-prompt and --n value is 0");

    const int progress = !quiet && isatty(STDERR_FILENO);
    bench_model bm;
    memset(&bm, 0, sizeof bm);
    read_cpu_name(bm.cpu, sizeof bm.cpu);
    bm.backend_path = bench_kernel_path();

    steer_model *ms[CLI_LIST_MAX] = {NULL};
    int first = 1;
    bench_result r;
    memset(&r, 0, sizeof r);
    r.reps = reps;
    r.ns = malloc((size_t)reps * sizeof *r.ns);
    r.ts = malloc((size_t)reps * sizeof *r.ts);
    double *ns_d = malloc((size_t)reps * sizeof *ns_d);
    int *toks = malloc((size_t)max_pos * sizeof *toks), *pos = malloc((size_t)max_pos * sizeof *pos);
    int8_t *lg = malloc((size_t)max_pos);
    if (!r.ns || !r.ts || !ns_d || !toks || !pos || !lg) {
        rc = cli_error("out of memory");
        goto done;
    }

    /* Load every model first, so a bad path fails before any output. */
    for (int k = 0; k < models.n; k++)
        if ((rc = cli_load_model(models.items[k], NULL, &ms[k]))) goto free_models;

    print_header(stdout, fmt);
    for (int k = 0; k < models.n && !rc; k++) {
        const steer_model_config *cfg = steer_model_get_config(ms[k]);
        char plabel[32];
        params_label(cfg->n_params, plabel, sizeof plabel);
        bm.path = models.items[k];
        snprintf(bm.type, sizeof bm.type, "%s %s %s", cfg->arch_name ? cfg->arch_name : "?", plabel,
                 steer_dtype_name(cfg->weight_dtype));
        bm.size = model_bytes(ms[k]);
        bm.n_params = cfg->n_params;
        for (int j = 0; j < n_th && !rc; j++) {
            steer_ctx_params cp = steer_ctx_default_params();
            cp.n_ctx = max_pos;
            cp.n_threads = th[j];
            steer_ctx *c = NULL;
            if (steer_ctx_new(ms[k], &cp, &c) != STEER_OK) {
                rc = cli_lib_error_at(models.items[k]);
                break;
            }
            for (int t = 0; t < n_pp + n_tg && !rc; t++) {
                const int is_pp = t < n_pp, n = is_pp ? pp[t] : tg[t - n_pp];
                if (n == 0) continue;
                r.n_prompt = is_pp ? n : 0;
                r.n_gen = is_pp ? 0 : n;
                r.n_threads = th[j];
                iso_time(r.time, sizeof r.time);
                bench_rng rng = {1u};
                for (int i = -1; i < reps; i++) { /* i = -1: the warm-up run */
                    if (progress && i < 0)
                        fprintf(stderr, "\r\033[Ksteer bench: %s %s%d t=%d warm-up", bm.path, is_pp ? "pp" : "tg", n, th[j]);
                    else if (progress)
                        fprintf(stderr, "\r\033[Ksteer bench: %s %s%d t=%d run %d/%d", bm.path, is_pp ? "pp" : "tg", n,
                                th[j], i + 1, reps);
                    uint64_t ns = 0;
                    if (run_test(c, ms[k], r.n_prompt, r.n_gen, toks, pos, lg, &rng, &ns) != STEER_OK) {
                        if (progress) fputc('\n', stderr);
                        rc = cli_lib_error_at(models.items[k]);
                        break;
                    }
                    if (i < 0) continue;
                    if (ns == 0) ns = 1;
                    r.ns[i] = ns;
                    ns_d[i] = (double)ns;
                    r.ts[i] = 1e9 * n / (double)ns;
                }
                if (progress) fputs("\r\033[K", stderr);
                if (rc) break;
                r.avg_ns = mean(ns_d, reps);
                r.stddev_ns = stdev(ns_d, reps);
                r.avg_ts = mean(r.ts, reps);
                r.stddev_ts = stdev(r.ts, reps);
                print_result(stdout, fmt, &bm, &r, first);
                first = 0;
            }
            steer_ctx_free(c);
        }
    }
    if (!rc) print_footer(stdout, fmt);
free_models:
    for (int k = 0; k < models.n; k++) steer_model_free(ms[k]);
done:
    free(r.ns);
    free(r.ts);
    free(ns_d);
    free(toks);
    free(pos);
    free(lg);
    return rc;
}

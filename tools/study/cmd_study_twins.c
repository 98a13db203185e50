/*
 * cmd_study_twins.c — `steer study twins` (SPEC §4 E5, docs/TWINS.md): four
 * small models that differ in exactly one factor — the MLP activation φ
 * (SiLU or GELU-tanh) and the block style (Llama: plain RMSNorm, no embedding
 * scale, untied head; Gemma: gemma2 blocks with sandwich norms, norm (1 + w),
 * embedding × √d, tied head, soft-capping and sliding window switched off) —
 * trained from scratch on the same corpus with the same recipe, fine-tuned on
 * Winogrande the same way, then swept (E1) and analysed (E2).
 *
 * Stages (each writes a file last; a stage whose file exists is skipped, so
 * an interrupted study resumes):
 *   DIR/corpus/{train,heldout}.jsonl  stories sampled from the teacher
 *                                     (stories260K, temperature 1, seed per
 *                                     story), prompt "" + story as completion
 *   DIR/<twin>/init/                  steer make-model (same seed and sizes)
 *   DIR/<twin>/pretrain/model/        steer train --method full on the corpus
 *   DIR/<twin>/pretrain_eval.json     held-out corpus loss
 *   DIR/<twin>/ft/model/              steer train --method full on Winogrande
 *   DIR/<twin>/ft_eval.json           dev loss, format and accuracy
 *   DIR/<twin>/sweep/                 steer sweep (+ oracle.safetensors)
 *   DIR/<twin>/mlp/                   steer analyze-mlp with the oracle vectors
 *   DIR/twins.csv, DIR/twins.md       the comparison tables (always rewritten)
 *   DIR/report.html, report.md        steer report over the sweeps and analyses
 * The twins run as child processes, --jobs at a time, each with --threads
 * OpenMP threads; the sub-steps call the same functions as the CLI commands.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

int cmd_sweep(int argc, char **argv);       /* cmd_sweep.c       */
int cmd_analyze_mlp(int argc, char **argv); /* cmd_analyze_mlp.c */
int cmd_report(int argc, char **argv);      /* cmd_report.c      */

/* ---------------------------------------------------------------- twins */

typedef struct {
    const char *name;  /* directory name                               */
    const char *arch;  /* make-model --arch                            */
    const char *act;   /* make-model --act                             */
    const char *block; /* for tables                                   */
} twin_def;

static const twin_def twins[4] = {
    {"llama-silu", "llama", "silu", "llama"},
    {"llama-gelu", "llama", "gelu_tanh", "llama"},
    {"gemma-gelu", "gemma2", "gelu_tanh", "gemma"},
    {"gemma-silu", "gemma2", "silu", "gemma"},
};
#define N_TWINS 4

typedef struct {
    const char *out, *teacher, *tokenizer, *wg_train, *wg_dev;
    int n_stories, story_len, n_heldout;
    int d, ff, layers, heads, kv_heads, ctx;
    int steps_pre, batch_pre, steps_ft, batch_ft, n_items, token;
    float lr_pre, lr_ft;
    uint64_t seed;
    int threads, jobs, progress, quiet;
} study_cfg;

#define PATH_MAX_T 1024

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return cli_error("%s: cannot create directory: %s", path, strerror(errno));
    return 0;
}

static void say(const study_cfg *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const study_cfg *c, const char *fmt, ...)
{
    if (c->quiet || !(c->progress || isatty(2)))
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Runs a CLI command function in-process on a NULL-terminated argument list
 * (argv[0] first); messages name it "study twins <what>". */
static int run_cmd(int (*fn)(int, char **), const char *what, ...)
{
    char *argv[96];
    int argc = 0;
    va_list ap;
    va_start(ap, what);
    for (const char *s = va_arg(ap, const char *); s && argc < 95; s = va_arg(ap, const char *))
        argv[argc++] = (char *)s;
    va_end(ap);
    argv[argc] = NULL;
    const char *saved = cli_cmd;
    char name[64];
    snprintf(name, sizeof name, "study twins %s", what);
    cli_cmd = name;
    int rc = fn(argc, argv);
    cli_cmd = saved;
    return rc;
}

/* ---------------------------------------------------------------- corpus */

typedef struct {
    char *buf;
    size_t n, cap;
} corpus_buf;

static int cb_add(corpus_buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->buf, cap);
        if (!p)
            return -1;
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->n, s, n);
    b->n += n;
    b->buf[b->n] = 0;
    return 0;
}

typedef struct {
    const steer_model *m;
    corpus_buf *text;
    int prev, fail;
} gen_state;

static int on_token(void *ud, int token)
{
    gen_state *g = ud;
    size_t len = 0;
    const char *p = steer_token_piece(g->m, g->prev, token, &len);
    if (p && len && cb_add(g->text, p, len))
        g->fail = 1;
    g->prev = token;
    return g->fail;
}

/* DIR/corpus/train.jsonl and heldout.jsonl: n_stories stories sampled from the
 * teacher at temperature 1 (story i with sampler seed seed·1000003 + i), each
 * at most story_len tokens; a story whose re-tokenized length does not fit
 * ctx is dropped. The last n_heldout kept stories are held out. */
static int stage_corpus(const study_cfg *c)
{
    char dir[800], ptrain[PATH_MAX_T], pheld[PATH_MAX_T];
    snprintf(dir, sizeof dir, "%s/corpus", c->out);
    snprintf(ptrain, sizeof ptrain, "%s/train.jsonl", dir);
    snprintf(pheld, sizeof pheld, "%s/heldout.jsonl", dir);
    if (file_exists(pheld) && file_exists(ptrain))
        return 0;
    if (make_dir(dir))
        return 1;
    say(c, "study twins: corpus: %d stories from %s", c->n_stories, c->teacher);
    steer_model *m = NULL;
    steer_ctx *ctx = NULL;
    if (cli_load_model(c->teacher, c->tokenizer, &m))
        return 1;
    int rc = 1, n_kept = 0, n_dropped = 0;
    corpus_buf text = {0}, rows = {0};
    char **lines = calloc((size_t)c->n_stories, sizeof *lines);
    int *toks = malloc(sizeof(int) * (size_t)(c->ctx * 8 + 16));
    if (!lines || !toks) {
        cli_error("out of memory");
        goto done;
    }
    if (cli_new_ctx(m, c->story_len + 1, 1, &ctx))
        goto done;
    for (int i = 0; i < c->n_stories; i++) {
        steer_sampler_params sp = steer_sampler_default_params();
        sp.temperature = 1.0f;
        sp.seed = c->seed * 1000003ull + (uint64_t)i;
        steer_sampler *s = NULL;
        if (steer_sampler_new(&sp, &s)) {
            cli_lib_error();
            goto done;
        }
        steer_ctx_clear(ctx, 0);
        int bos = steer_token_bos(m);
        text.n = 0;
        if (cb_add(&text, "", 0)) {
            steer_sampler_free(s);
            cli_error("out of memory");
            goto done;
        }
        gen_state g = {m, &text, bos, 0};
        int e = steer_generate(ctx, &bos, 1, c->story_len, s, on_token, &g, NULL);
        steer_sampler_free(s);
        if (e || g.fail) {
            cli_error("%s: generating story %d: %s", c->teacher, i, g.fail ? "out of memory" : steer_last_error());
            goto done;
        }
        /* trim trailing whitespace */
        while (text.n && (text.buf[text.n - 1] == ' ' || text.buf[text.n - 1] == '\n'))
            text.buf[--text.n] = 0;
        int nt = 0;
        if (text.n == 0 || steer_tokenize(m, text.buf, 1, toks, c->ctx * 8 + 16, &nt) || nt + 1 > c->ctx) {
            n_dropped++;
            continue;
        }
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "prompt", "") || !cJSON_AddStringToObject(o, "completion", text.buf)) {
            cJSON_Delete(o);
            cli_error("out of memory");
            goto done;
        }
        lines[n_kept++] = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!lines[n_kept - 1]) {
            cli_error("out of memory");
            goto done;
        }
        if (c->progress && (i + 1) % 500 == 0)
            say(c, "study twins: corpus: %d/%d stories", i + 1, c->n_stories);
    }
    if (n_kept <= c->n_heldout) {
        cli_error("%s: only %d stories fit the context of %d", c->teacher, n_kept, c->ctx);
        goto done;
    }
    for (int part = 0; part < 2; part++) {
        rows.n = 0;
        int a = part == 0 ? 0 : n_kept - c->n_heldout, b = part == 0 ? n_kept - c->n_heldout : n_kept;
        for (int i = a; i < b; i++)
            if (cb_add(&rows, lines[i], strlen(lines[i])) || cb_add(&rows, "\n", 1)) {
                cli_error("out of memory");
                goto done;
            }
        const char *path = part == 0 ? ptrain : pheld;
        if (steer_write_file_atomic(path, rows.buf, rows.n)) {
            cli_lib_error();
            goto done;
        }
    }
    say(c, "study twins: corpus: %d training and %d held-out stories (%d dropped: too long)", n_kept - c->n_heldout,
        c->n_heldout, n_dropped);
    rc = 0;
done:
    if (lines)
        for (int i = 0; i < n_kept; i++)
            free(lines[i]);
    free(lines);
    free(toks);
    free(text.buf);
    free(rows.buf);
    steer_ctx_free(ctx);
    steer_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- evaluation */

/* Evaluates model on data (first n items, 0 all) and writes out_json
 * {"n", "loss", "n_tokens", "acc", "format"} atomically. */
static int eval_to_json(const char *model, const char *data, int n, const char *out_json)
{
    steer_model *m = NULL;
    steer_dataset *d = NULL;
    if (cli_load_model(model, NULL, &m))
        return 1;
    steer_data_params dp = steer_data_default_params();
    if (steer_data_load(data, &dp, &d)) {
        steer_model_free(m);
        return cli_lib_error();
    }
    steer_eval_params ep = {.n_max = n, .batch = 16, .graph = 0};
    steer_eval_result r = {0};
    int rc = steer_eval_dataset(m, NULL, d, &ep, &r, NULL);
    steer_data_free(d);
    steer_model_free(m);
    if (rc)
        return cli_lib_error_at(model);
    char buf[512];
    int len = snprintf(buf, sizeof buf,
                       "{\"model\": \"%s\", \"data\": \"%s\", \"n\": %d, \"loss\": %.6f, \"n_tokens\": %ld, "
                       "\"acc\": %.6f, \"format\": %.6f}\n",
                       model, data, r.n, r.loss, r.n_tokens, r.acc, r.format);
    if (len <= 0 || len >= (int)sizeof buf || steer_write_file_atomic(out_json, buf, (size_t)len))
        return cli_error("%s: cannot write", out_json);
    return 0;
}

static int read_json_num(const char *path, const char *key, double *v)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    cJSON *it = j ? cJSON_GetObjectItemCaseSensitive(j, key) : NULL;
    int rc = cJSON_IsNumber(it) ? (*v = it->valuedouble, 0) : -1;
    cJSON_Delete(j);
    return rc;
}

/* ---------------------------------------------------------------- one twin */

static int twin_pipeline(const study_cfg *c, const twin_def *t)
{
    char dir[800], init[PATH_MAX_T], pre[PATH_MAX_T], pre_model[PATH_MAX_T], ft[PATH_MAX_T],
        ft_model[PATH_MAX_T], f[PATH_MAX_T + 64], sweep[PATH_MAX_T], vec[PATH_MAX_T], mlp[PATH_MAX_T],
        corpus[PATH_MAX_T], held[PATH_MAX_T], wg_train[PATH_MAX_T], wg_dev[PATH_MAX_T];
    char s_d[16], s_ff[16], s_l[16], s_h[16], s_kv[16], s_ctx[16], s_seed[32], s_sp[16], s_bp[16], s_lrp[32], s_sf[16],
        s_bf[16], s_lrf[32], s_n[16], s_thr[16], s_tok[16];
    snprintf(dir, sizeof dir, "%s/%s", c->out, t->name);
    snprintf(init, sizeof init, "%s/init", dir);
    snprintf(pre, sizeof pre, "%s/pretrain", dir);
    snprintf(pre_model, sizeof pre_model, "%s/pretrain/model", dir);
    snprintf(ft, sizeof ft, "%s/ft", dir);
    snprintf(ft_model, sizeof ft_model, "%s/ft/model", dir);
    snprintf(sweep, sizeof sweep, "%s/sweep", dir);
    snprintf(vec, sizeof vec, "%s/oracle.safetensors", dir);
    snprintf(mlp, sizeof mlp, "%s/mlp", dir);
    snprintf(corpus, sizeof corpus, "jsonl:%s/corpus/train.jsonl", c->out);
    snprintf(held, sizeof held, "jsonl:%s/corpus/heldout.jsonl", c->out);
    snprintf(wg_train, sizeof wg_train, "winogrande:%s", c->wg_train);
    snprintf(wg_dev, sizeof wg_dev, "winogrande:%s", c->wg_dev);
    snprintf(s_d, sizeof s_d, "%d", c->d);
    snprintf(s_ff, sizeof s_ff, "%d", c->ff);
    snprintf(s_l, sizeof s_l, "%d", c->layers);
    snprintf(s_h, sizeof s_h, "%d", c->heads);
    snprintf(s_kv, sizeof s_kv, "%d", c->kv_heads);
    snprintf(s_ctx, sizeof s_ctx, "%d", c->ctx);
    snprintf(s_seed, sizeof s_seed, "%llu", (unsigned long long)c->seed);
    snprintf(s_sp, sizeof s_sp, "%d", c->steps_pre);
    snprintf(s_bp, sizeof s_bp, "%d", c->batch_pre);
    snprintf(s_lrp, sizeof s_lrp, "%g", (double)c->lr_pre);
    snprintf(s_sf, sizeof s_sf, "%d", c->steps_ft);
    snprintf(s_bf, sizeof s_bf, "%d", c->batch_ft);
    snprintf(s_lrf, sizeof s_lrf, "%g", (double)c->lr_ft);
    snprintf(s_n, sizeof s_n, "%d", c->n_items);
    snprintf(s_thr, sizeof s_thr, "%d", c->threads);
    snprintf(s_tok, sizeof s_tok, "%d", c->token);
    if (make_dir(dir))
        return 1;
    const int gemma = strcmp(t->arch, "llama") != 0;

    snprintf(f, sizeof f, "%s/config.json", init);
    if (!file_exists(f)) {
        say(c, "study twins: %s: make-model", t->name);
        int rc = gemma ? run_cmd(cmd_make_model, "make-model", "make-model", "--arch", t->arch, "--act", t->act,
                                 "--window", "0", "--attn-softcap", "0", "--final-softcap", "0", "--tokenizer",
                                 c->tokenizer, "--vocab", "512", "--d", s_d, "--ff", s_ff, "--layers", s_l, "--heads",
                                 s_h, "--kv-heads", s_kv, "--ctx", s_ctx, "--seed", s_seed, "-o", init, NULL)
                       : run_cmd(cmd_make_model, "make-model", "make-model", "--arch", t->arch, "--act", t->act,
                                 "--tokenizer", c->tokenizer, "--vocab", "512", "--d", s_d, "--ff", s_ff, "--layers",
                                 s_l, "--heads", s_h, "--kv-heads", s_kv, "--ctx", s_ctx, "--seed", s_seed, "-o", init,
                                 NULL);
        if (rc)
            return rc;
    }
    snprintf(f, sizeof f, "%s/config.json", pre_model);
    if (!file_exists(f)) {
        say(c, "study twins: %s: pretrain (%d updates of %d)", t->name, c->steps_pre, c->batch_pre);
        int rc = run_cmd(cmd_train, "train", "train", "-m", init, "--data", corpus, "--method", "full", "--lr", s_lrp,
                         "--steps", s_sp, "--batch", s_bp, "--schedule", "cosine", "--warmup", "0.05", "--seed", s_seed,
                         "--out", pre, "--quiet", NULL);
        if (rc)
            return rc;
    }
    snprintf(f, sizeof f, "%s/pretrain_eval.json", dir);
    if (!file_exists(f)) {
        say(c, "study twins: %s: held-out loss", t->name);
        if (eval_to_json(pre_model, held, 0, f))
            return 1;
    }
    snprintf(f, sizeof f, "%s/config.json", ft_model);
    if (!file_exists(f)) {
        say(c, "study twins: %s: fine-tune on Winogrande (%d updates of %d)", t->name, c->steps_ft, c->batch_ft);
        int rc = run_cmd(cmd_train, "train", "train", "-m", pre_model, "--data", wg_train, "--method", "full", "--lr",
                         s_lrf, "--steps", s_sf, "--batch", s_bf, "--schedule", "cosine", "--seed", s_seed, "--out", ft,
                         "--quiet", NULL);
        if (rc)
            return rc;
    }
    snprintf(f, sizeof f, "%s/ft_eval.json", dir);
    if (!file_exists(f)) {
        say(c, "study twins: %s: Winogrande dev evaluation", t->name);
        if (eval_to_json(ft_model, wg_dev, c->n_items, f))
            return 1;
    }
    snprintf(f, sizeof f, "%s/summary.json", sweep);
    if (!file_exists(f) || !file_exists(vec)) {
        say(c, "study twins: %s: oracle sweep (%d items)", t->name, c->n_items);
        int rc = run_cmd(cmd_sweep, "sweep", "sweep", "--base", pre_model, "--ft", ft_model, "--data", wg_dev, "--n",
                         s_n, "--threads", s_thr, "--save-vectors", vec, "--out", sweep, "--quiet", NULL);
        if (rc)
            return rc;
    }
    snprintf(f, sizeof f, "%s/mlp_stats.csv", mlp);
    if (!file_exists(f)) {
        say(c, "study twins: %s: MLP analysis", t->name);
        int rc = run_cmd(cmd_analyze_mlp, "analyze-mlp", "analyze-mlp", "-m", pre_model, "-m", ft_model, "--data",
                         wg_dev, "--n", s_n, "--token", s_tok, "--vectors", vec, "--site", "attn_out,mlp_in", "--out", mlp,
                         "--quiet", NULL);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- summary */

typedef struct {
    double mean, se;
    int layer, token, n;
} best_cell;

static const char *sum_sites[4] = {"attn_out", "mlp_in", "mlp_out", "resid_post"};

/* Index of a site name in sum_sites, or -1. */
static int site_index(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, sum_sites[i]) == 0)
            return i;
    return -1;
}

/* Splits a CSV line in place at its commas (and drops the newline) into at
 * most max fields; returns how many. */
static int split_csv(char *line, char **fld, int max)
{
    int nf = 0;
    for (char *p = line, *q; nf < max; p = q + 1) {
        fld[nf++] = p;
        q = strpbrk(p, ",\n");
        if (!q)
            break;
        const int end = *q == '\n';
        *q = 0;
        if (end)
            break;
    }
    return nf;
}

/* From a sweep's dkl.csv: per site (sum_sites) and layer, the most negative
 * ΔKL at alpha = 1 over the tokens: best[site][layer]. */
static int read_dkl(const char *path, int n_layers, best_cell (*best)[64], double (*tokmean)[64])
{
    int tok_n[4][64] = {{0}};
    for (int s = 0; s < 4; s++)
        for (int l = 0; l < 64; l++)
            tokmean[s][l] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return cli_error("%s: cannot open: %s", path, strerror(errno));
    char line[1024];
    for (int s = 0; s < 4; s++)
        for (int l = 0; l < 64; l++)
            best[s][l] = (best_cell){NAN, NAN, l, 0, 0};
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return cli_error("%s: empty", path);
    }
    while (fgets(line, sizeof line, f)) {
        /* base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n */
        char *fld[10];
        const int nf = split_csv(line, fld, 10);
        if (nf < 9)
            continue;
        const int s = site_index(fld[2]);
        int l = atoi(fld[3]);
        if (s < 0 || l < 0 || l >= n_layers || l >= 64 || fabs(atof(fld[4]) - 1.0) > 1e-9)
            continue;
        double m = atof(fld[6]), se = atof(fld[7]);
        tokmean[s][l] += m;
        tok_n[s][l]++;
        if (isnan(best[s][l].mean) || m < best[s][l].mean)
            best[s][l] = (best_cell){m, se, l, atoi(fld[5]), atoi(fld[8])};
    }
    fclose(f);
    for (int s = 0; s < 4; s++)
        for (int l = 0; l < 64; l++)
            tokmean[s][l] = tok_n[s][l] ? tokmean[s][l] / tok_n[s][l] : NAN;
    return 0;
}

/* From attenuation.csv: for the base model (first model in the file), per
 * site (attn_out 0, mlp_in 1) and layer: norm_ratio, mlp_gain, weakest. */
typedef struct {
    double norm_ratio, mlp_gain, delta_norm;
    char weakest[48];
    int have;
} att_row;

static int read_att(const char *path, att_row (*att)[64])
{
    memset(att, 0, sizeof(att_row) * 2 * 64);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[4096], first_model[256] = "";
    int col_norm = -1, col_gain = -1, col_weak = -1, col_dn = -1;
    if (fgets(line, sizeof line, f)) {
        int i = 0;
        for (char *tok = strtok(line, ",\n"); tok; tok = strtok(NULL, ",\n"), i++) {
            if (strcmp(tok, "norm_ratio") == 0)
                col_norm = i;
            else if (strcmp(tok, "mlp_gain") == 0)
                col_gain = i;
            else if (strcmp(tok, "weakest") == 0)
                col_weak = i;
            else if (strcmp(tok, "delta_norm") == 0)
                col_dn = i;
        }
    }
    while (fgets(line, sizeof line, f)) {
        char *fld[64];
        const int nf = split_csv(line, fld, 64);
        if (nf < 4 || col_norm < 0 || col_gain < 0 || col_norm >= nf || col_gain >= nf)
            continue;
        if (!first_model[0])
            snprintf(first_model, sizeof first_model, "%s", fld[0]);
        if (strcmp(fld[0], first_model) != 0)
            continue;
        int s = strcmp(fld[1], "attn_out") == 0 ? 0 : strcmp(fld[1], "mlp_in") == 0 ? 1 : -1;
        int l = atoi(fld[2]);
        if (s < 0 || l < 0 || l >= 64)
            continue;
        att_row *r = &att[s][l];
        r->norm_ratio = atof(fld[col_norm]);
        r->mlp_gain = atof(fld[col_gain]);
        r->delta_norm = col_dn >= 0 && col_dn < nf ? atof(fld[col_dn]) : NAN;
        snprintf(r->weakest, sizeof r->weakest, "%s", col_weak >= 0 && col_weak < nf ? fld[col_weak] : "?");
        r->have = 1;
    }
    fclose(f);
    return 0;
}

/* Per item, from a sweep's items.csv at alpha = 1: the mean ΔKL over the
 * tokens and over layers 1..L-1 ("deep", the blog's "after layer 0") or
 * layer 0 alone, per site: deep[site][item], l0[site][item] (NaN when the
 * item has no row). Items are indexed as in the dataset. */
#define MAX_ITEMS 4096
typedef struct {
    double *deep[4], *l0[4];
    double *klb; /* [item] KL(P_B || P_F) averaged over the tokens          */
    int n_items;
} item_scores;

static void item_scores_free(item_scores *sc)
{
    for (int s = 0; s < 4; s++) {
        free(sc->deep[s]);
        free(sc->l0[s]);
    }
    free(sc->klb);
}

static int read_items(const char *path, int n_items, item_scores *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->n_items = n_items;
    int *cnt_deep[4] = {0}, *cnt_l0[4] = {0}, rc = 0;
    int *cnt_klb = calloc((size_t)n_items, sizeof(int));
    sc->klb = calloc((size_t)n_items, sizeof(double));
    if (!cnt_klb || !sc->klb)
        rc = cli_error("out of memory");
    for (int s = 0; s < 4; s++) {
        sc->deep[s] = calloc((size_t)n_items, sizeof(double));
        sc->l0[s] = calloc((size_t)n_items, sizeof(double));
        cnt_deep[s] = calloc((size_t)n_items, sizeof(int));
        cnt_l0[s] = calloc((size_t)n_items, sizeof(int));
        if (!sc->deep[s] || !sc->l0[s] || !cnt_deep[s] || !cnt_l0[s])
            rc = cli_error("out of memory");
    }
    FILE *f = rc ? NULL : fopen(path, "r");
    if (!rc && !f)
        rc = cli_error("%s: cannot open: %s", path, strerror(errno));
    char line[1024];
    if (f && !fgets(line, sizeof line, f))
        rc = cli_error("%s: empty", path);
    while (!rc && fgets(line, sizeof line, f)) {
        /* item,id,site,layer,alpha,token,kl_steered,kl_base,dkl */
        char *fld[10];
        const int nf = split_csv(line, fld, 10);
        if (nf < 9)
            continue;
        const int it = atoi(fld[0]), l = atoi(fld[3]), s = site_index(fld[2]);
        if (s < 0 || it < 0 || it >= n_items || fabs(atof(fld[4]) - 1.0) > 1e-9)
            continue;
        double v = atof(fld[8]);
        if (l == 0 && s == 0) {
            sc->klb[it] += atof(fld[7]);
            cnt_klb[it]++;
        }
        if (l == 0) {
            sc->l0[s][it] += v;
            cnt_l0[s][it]++;
        } else {
            sc->deep[s][it] += v;
            cnt_deep[s][it]++;
        }
    }
    if (f)
        fclose(f);
    for (int s = 0; s < 4; s++)
        for (int i = 0; !rc && i < n_items; i++) {
            sc->deep[s][i] = cnt_deep[s][i] ? sc->deep[s][i] / cnt_deep[s][i] : NAN;
            sc->l0[s][i] = cnt_l0[s][i] ? sc->l0[s][i] / cnt_l0[s][i] : NAN;
            if (s == 0)
                sc->klb[i] = cnt_klb[i] ? sc->klb[i] / cnt_klb[i] : NAN;
        }
    free(cnt_klb);
    for (int s = 0; s < 4; s++) {
        free(cnt_deep[s]);
        free(cnt_l0[s]);
    }
    if (rc)
        item_scores_free(sc);
    return rc;
}

/* mean and standard error of a[i] - (b ? b[i] : 0) over items where both are
 * finite. */
static void paired(const double *a, const double *b, int n, double *mean, double *se, int *cnt)
{
    double s1 = 0, s2 = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        double v = a[i] - (b ? b[i] : 0);
        if (!isfinite(v))
            continue;
        s1 += v;
        s2 += v * v;
        k++;
    }
    *cnt = k;
    *mean = k ? s1 / k : NAN;
    *se = k > 1 ? sqrt(fmax(0, (s2 - s1 * s1 / k) / (k - 1)) / k) : 0;
}

/* Appends printf-style text to the corpus_buf b (the summaries below; they
 * declare `line` and a `done` label). */
#define ADD(b, ...)                                                                                                    \
    do {                                                                                                               \
        int n_ = snprintf(line, sizeof line, __VA_ARGS__);                                                             \
        if (n_ < 0 || cb_add(&(b), line, (size_t)(n_ < (int)sizeof line ? n_ : (int)sizeof line - 1))) {             \
            cli_error("out of memory");                                                                                \
            goto done;                                                                                                 \
        }                                                                                                              \
    } while (0)

/* Machine names of the four factor contrasts and six columns of
 * contrasts.csv (the order of the contrast table in twins.md). */
static const char *con_id[4] = {"act_in_llama", "act_in_gemma", "block_with_silu", "block_with_gelu"};
static const char *con_what[4] = {"φ within llama (gelu − silu)", "φ within gemma (gelu − silu)",
                                  "block with silu (gemma − llama)", "block with gelu (gemma − llama)"};
static const char *con_col[6] = {"attn_out_L0", "attn_out_deep", "mlp_in_L0", "mlp_in_deep", "mlp_out_deep",
                                 "resid_post_deep"};

static int write_summary(const study_cfg *c)
{
    corpus_buf csv = {0}, md = {0}, ccsv = {0};
    char line[1024], p[PATH_MAX_T];
    double loss[N_TWINS] = {0}, lo = INFINITY, hi = -INFINITY;
    static best_cell best[N_TWINS][4][64];
    static att_row att[N_TWINS][2][64];
    static double tokmean[N_TWINS][4][64];
    int rc = 1;
    ADD(csv, "twin,block,act,heldout_loss,ft_dev_loss,ft_format,ft_acc,site,layer,alpha,token,dkl_mean,dkl_se,n,"
             "norm_ratio,mlp_gain,weakest\n");
    ADD(md, "# Twin models (SPEC E5)\n\n"
            "d_model %d, d_ff %d, %d layers, %d heads / %d KV heads, ctx %d, vocab 512 (tok512); seed %llu.\n"
            "Pretraining: %d stories from %s, %d updates of %d, lr %g cosine. Fine-tuning: %s, %d updates of %d, "
            "lr %g cosine.\nSweep and MLP analysis: first %d items of %s (analysis at completion token %d).\n\n",
        c->d, c->ff, c->layers, c->heads, c->kv_heads, c->ctx, (unsigned long long)c->seed, c->n_stories, c->teacher,
        c->steps_pre, c->batch_pre, (double)c->lr_pre, c->wg_train, c->steps_ft, c->batch_ft, (double)c->lr_ft,
        c->n_items, c->wg_dev, c->token);
    ADD(md, "| twin | block | φ | held-out loss | ft dev loss | ft format | ft acc |\n|---|---|---|---:|---:|---:|---:|\n");
    for (int i = 0; i < N_TWINS; i++) {
        double fl = NAN, ff = NAN, fa = NAN;
        snprintf(p, sizeof p, "%s/%s/pretrain_eval.json", c->out, twins[i].name);
        if (read_json_num(p, "loss", &loss[i])) {
            cli_error("%s: missing or unreadable", p);
            goto done;
        }
        snprintf(p, sizeof p, "%s/%s/ft_eval.json", c->out, twins[i].name);
        read_json_num(p, "loss", &fl);
        read_json_num(p, "format", &ff);
        read_json_num(p, "acc", &fa);
        lo = loss[i] < lo ? loss[i] : lo;
        hi = loss[i] > hi ? loss[i] : hi;
        ADD(md, "| %s | %s | %s | %.4f | %.4f | %.3f | %.3f |\n", twins[i].name, twins[i].block, twins[i].act, loss[i],
            fl, ff, fa);
        snprintf(p, sizeof p, "%s/%s/sweep/dkl.csv", c->out, twins[i].name);
        if (read_dkl(p, c->layers, best[i], tokmean[i]))
            goto done;
        snprintf(p, sizeof p, "%s/%s/mlp/attenuation.csv", c->out, twins[i].name);
        read_att(p, att[i]);
        for (int s = 0; s < 4; s++)
            for (int l = 0; l < c->layers && l < 64; l++) {
                const best_cell *b = &best[i][s][l];
                const att_row *a = s < 2 ? &att[i][s][l] : NULL;
                ADD(csv, "%s,%s,%s,%.6f,%.6f,%.4f,%.4f,%s,%d,1,%d,%.6g,%.6g,%d,", twins[i].name, twins[i].block,
                    twins[i].act, loss[i], fl, ff, fa, sum_sites[s], l, b->token, b->mean, b->se, b->n);
                if (a && a->have)
                    ADD(csv, "%.6g,%.6g,%s\n", a->norm_ratio, a->mlp_gain, a->weakest);
                else
                    ADD(csv, ",,\n");
            }
    }
    ADD(md, "\nHeld-out loss spread: max/min − 1 = %.1f%% (%s the 10%% needed before comparing).\n\n",
        100.0 * (hi / lo - 1), hi / lo - 1 <= 0.10 ? "within" : "NOT within");
    for (int s = 0; s < 4; s++) {
        ADD(md, "## ΔKL at %s, α = 1 (most negative over tokens; mean ± s.e., token)\n\n| twin |", sum_sites[s]);
        for (int l = 0; l < c->layers && l < 64; l++)
            ADD(md, " L%d |", l);
        ADD(md, " best |\n|---|");
        for (int l = 0; l <= c->layers && l <= 64; l++)
            ADD(md, "---:|");
        ADD(md, "\n");
        for (int i = 0; i < N_TWINS; i++) {
            ADD(md, "| %s |", twins[i].name);
            int bl = 0;
            for (int l = 0; l < c->layers && l < 64; l++) {
                const best_cell *b = &best[i][s][l];
                ADD(md, " %.3f ± %.3f (t%d) |", b->mean, b->se, b->token);
                if (best[i][s][l].mean < best[i][s][bl].mean)
                    bl = l;
            }
            ADD(md, " %.3f ± %.3f (L%d t%d) |\n", best[i][s][bl].mean, best[i][s][bl].se, bl, best[i][s][bl].token);
        }
        ADD(md, "\n");
    }
    for (int s = 0; s < 2; s++) {
        ADD(md, "## Attenuation of the oracle vector at %s (base twin): ‖Δ̂‖/‖δ‖ · ‖ΔMLP‖/‖Δ̂‖, stage losing most\n\n"
                "| twin |", sum_sites[s]);
        for (int l = 0; l < c->layers && l < 64; l++)
            ADD(md, " L%d |", l);
        ADD(md, "\n|---|");
        for (int l = 0; l < c->layers && l < 64; l++)
            ADD(md, "---|");
        ADD(md, "\n");
        for (int i = 0; i < N_TWINS; i++) {
            ADD(md, "| %s |", twins[i].name);
            for (int l = 0; l < c->layers && l < 64; l++) {
                const att_row *a = &att[i][s][l];
                if (a->have)
                    ADD(md, " %.2f · %.2f, %s |", a->norm_ratio, a->mlp_gain, a->weakest);
                else
                    ADD(md, " – |");
            }
            ADD(md, "\n");
        }
        ADD(md, "\n");
    }
    {
        item_scores sc[N_TWINS];
        int n_loaded = 0;
        for (int i = 0; i < N_TWINS; i++, n_loaded++) {
            snprintf(p, sizeof p, "%s/%s/sweep/items.csv", c->out, twins[i].name);
            if (read_items(p, c->n_items, &sc[i]))
                break;
        }
        if (n_loaded < N_TWINS) {
            for (int i = 0; i < n_loaded; i++)
                item_scores_free(&sc[i]);
            goto done;
        }
        ADD(md, "## Per-item ΔKL at α = 1, mean over the 5 tokens (mean ± s.e. over items)\n\n"
                "\"layers ≥ 1\" averages layers 1..%d (the blog: Gemma moves pre-MLP only at layer 0).\n\n"
                "KL(B‖F) is the unsteered distance, the most a ΔKL can remove.\n\n"
                "| twin | KL(B‖F) | attn_out L0 | attn_out L≥1 | mlp_in L0 | mlp_in L≥1 | mlp_out L≥1 | resid_post L≥1 |\n"
                "|---|---:|---:|---:|---:|---:|---:|---:|\n",
            c->layers - 1);
        for (int i = 0; i < N_TWINS; i++) {
            double m, se;
            int k;
            ADD(md, "| %s |", twins[i].name);
            paired(sc[i].klb, NULL, c->n_items, &m, &se, &k);
            ADD(md, " %.4f ± %.4f |", m, se);
            const double *cols[6] = {sc[i].l0[0], sc[i].deep[0], sc[i].l0[1], sc[i].deep[1], sc[i].deep[2], sc[i].deep[3]};
            for (int j = 0; j < 6; j++) {
                paired(cols[j], NULL, c->n_items, &m, &se, &k);
                ADD(md, " %.4f ± %.4f |", m, se);
            }
            ADD(md, "\n");
        }
        /* factor contrasts, paired by item: activation (GELU − SiLU) within a
         * block, block (Gemma − Llama) within an activation */
        static const struct {
            const char *what;
            int a, b;
        } con[4] = {{"φ: llama-gelu − llama-silu", 1, 0},
                    {"φ: gemma-gelu − gemma-silu", 2, 3},
                    {"block: gemma-silu − llama-silu", 3, 0},
                    {"block: gemma-gelu − llama-gelu", 2, 1}};
        ADD(ccsv, "contrast,column,mean,se,n\n");
        ADD(md, "\n## Factor contrasts (paired by item; positive = less steerable; |mean| > 2 s.e. marked *)\n\n"
                "| contrast | attn_out L0 | attn_out L≥1 | mlp_in L0 | mlp_in L≥1 | mlp_out L≥1 | resid_post L≥1 |\n"
                "|---|---:|---:|---:|---:|---:|---:|\n");
        for (int q = 0; q < 4; q++) {
            ADD(md, "| %s |", con[q].what);
            const item_scores *A = &sc[con[q].a], *B = &sc[con[q].b];
            const double *ca[6] = {A->l0[0], A->deep[0], A->l0[1], A->deep[1], A->deep[2], A->deep[3]};
            const double *cb[6] = {B->l0[0], B->deep[0], B->l0[1], B->deep[1], B->deep[2], B->deep[3]};
            for (int j = 0; j < 6; j++) {
                double m, se;
                int k;
                paired(ca[j], cb[j], c->n_items, &m, &se, &k);
                ADD(md, " %+.4f ± %.4f%s |", m, se, fabs(m) > 2 * se ? "*" : "");
                ADD(ccsv, "%s,%s,%.6g,%.6g,%d\n", con_id[q], con_col[j], m, se, k);
            }
            ADD(md, "\n");
        }
        ADD(md, "\n");
        for (int i = 0; i < N_TWINS; i++)
            item_scores_free(&sc[i]);
    }
    {
        /* figures: ΔKL (α = 1, mean over tokens) per layer, a line per twin,
         * a panel per site; total pre-MLP gain ‖ΔMLP‖/‖δ‖ per layer */
        static double xs[64], gain[N_TWINS][2][64];
        steer_plot_series ser[4][N_TWINS], gser[2][N_TWINS];
        steer_plot_panel pan[4], gpan[2];
        for (int l = 0; l < 64; l++)
            xs[l] = l;
        for (int s = 0; s < 4; s++) {
            for (int i = 0; i < N_TWINS; i++)
                ser[s][i] = (steer_plot_series){twins[i].name, xs, tokmean[i][s], c->layers, 0, 1, i >= 2};
            pan[s] = (steer_plot_panel){sum_sites[s], "layer", "ΔKL (α = 1, mean over tokens)", ser[s], N_TWINS};
        }
        for (int s = 0; s < 2; s++) {
            for (int i = 0; i < N_TWINS; i++) {
                for (int l = 0; l < c->layers; l++)
                    gain[i][s][l] = att[i][s][l].have ? att[i][s][l].norm_ratio * att[i][s][l].mlp_gain : NAN;
                gser[s][i] = (steer_plot_series){twins[i].name, xs, gain[i][s], c->layers, 0, 1, i >= 2};
            }
            gpan[s] = (steer_plot_panel){sum_sites[s], "layer", "‖ΔMLP‖ / ‖δ‖ (base twin)", gser[s], N_TWINS};
        }
        steer_plot_figure fig = {.title = "Twin models: oracle ΔKL per site", .cols = 2, .share_y = 1,
                           .legend = STEER_PLOT_LEGEND_FIGURE, .x_int_ticks = 1};
        steer_plot_figure gfig = {.title = "Twin models: MLP response to the oracle pre-MLP vector", .cols = 2,
                            .log_y = 1, .legend = STEER_PLOT_LEGEND_FIGURE, .x_int_ticks = 1};
        static const char *ext[2] = {"png", "svg"};
        for (int e = 0; e < 2; e++) {
            snprintf(p, sizeof p, "%s/twins_dkl.%s", c->out, ext[e]);
            if (steer_plot_write(p, &fig, pan, 4)) {
                cli_lib_error();
                goto done;
            }
            snprintf(p, sizeof p, "%s/twins_attenuation.%s", c->out, ext[e]);
            if (steer_plot_write(p, &gfig, gpan, 2)) {
                cli_lib_error();
                goto done;
            }
        }
    }
    snprintf(p, sizeof p, "%s/twins.csv", c->out);
    if (steer_write_file_atomic(p, csv.buf, csv.n)) {
        cli_lib_error();
        goto done;
    }
    snprintf(p, sizeof p, "%s/contrasts.csv", c->out);
    if (steer_write_file_atomic(p, ccsv.buf, ccsv.n)) {
        cli_lib_error();
        goto done;
    }
    snprintf(p, sizeof p, "%s/twins.md", c->out);
    if (steer_write_file_atomic(p, md.buf, md.n)) {
        cli_lib_error();
        goto done;
    }
    if (!c->quiet)
        fwrite(md.buf, 1, md.n, stdout);
    rc = 0;
done:
    free(csv.buf);
    free(md.buf);
    free(ccsv.buf);
    return rc;
}

/* ---------------------------------------------------------------- driver */

/* Runs fn(c, arg) in a child process with c->threads OpenMP threads; returns
 * the pid (or -1). */
static pid_t spawn(const study_cfg *c, int (*fn)(const study_cfg *, const twin_def *), const twin_def *t)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (c->quiet && !freopen("/dev/null", "w", stdout)) /* make-model's "wrote" line */
            _exit(1);
#ifdef _OPENMP
        omp_set_num_threads(c->threads);
#endif
        int rc = fn(c, t);
        fflush(stdout);
        fflush(stderr);
        _exit(rc ? 1 : 0);
    }
    return pid;
}

static int corpus_child(const study_cfg *c, const twin_def *t)
{
    (void)t;
    return stage_corpus(c);
}

/* ---------------------------------------------------------------- seeds */

/* Reads DIR/contrasts.csv into m[4][6], se[4][6]. */
static int read_contrasts(const char *dir, double m[4][6], double se[4][6])
{
    char p[PATH_MAX_T + 32], line[512];
    snprintf(p, sizeof p, "%s/contrasts.csv", dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return cli_error("%s: %s", p, strerror(errno));
    int got = 0;
    for (int q = 0; q < 4; q++)
        for (int j = 0; j < 6; j++)
            m[q][j] = se[q][j] = NAN;
    while (fgets(line, sizeof line, f)) {
        char id[64], col[64];
        double a, b;
        if (sscanf(line, "%63[^,],%63[^,],%lf,%lf", id, col, &a, &b) != 4)
            continue; /* the header */
        for (int q = 0; q < 4; q++)
            for (int j = 0; j < 6; j++)
                if (!strcmp(id, con_id[q]) && !strcmp(col, con_col[j])) {
                    m[q][j] = a;
                    se[q][j] = b;
                    got++;
                }
    }
    fclose(f);
    if (got != 24)
        return cli_error("%s: expected 24 contrast rows, found %d", p, got);
    return 0;
}

/* Reads heldout_loss, ft_format and ft_acc of each twin from DIR/twins.csv
 * (the first row of each twin). */
static int read_twin_evals(const char *dir, double ev[N_TWINS][3])
{
    char p[PATH_MAX_T + 32], line[1024];
    snprintf(p, sizeof p, "%s/twins.csv", dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return cli_error("%s: %s", p, strerror(errno));
    int seen[N_TWINS] = {0};
    while (fgets(line, sizeof line, f)) {
        char name[64], block[32], act[32];
        double hl, fl, ff, fa;
        if (sscanf(line, "%63[^,],%31[^,],%31[^,],%lf,%lf,%lf,%lf", name, block, act, &hl, &fl, &ff, &fa) != 7)
            continue;
        for (int i = 0; i < N_TWINS; i++)
            if (!seen[i] && !strcmp(name, twins[i].name)) {
                ev[i][0] = hl, ev[i][1] = ff, ev[i][2] = fa;
                seen[i] = 1;
            }
    }
    fclose(f);
    for (int i = 0; i < N_TWINS; i++)
        if (!seen[i])
            return cli_error("%s: no row for twin %s", p, twins[i].name);
    return 0;
}

/* DIR/twins_seeds.md and .csv: evaluations and factor contrasts of every seed
 * side by side. A contrast cell is "consistent" when it has the same sign and
 * |mean| > 2 s.e. in every seed. */
static int write_seeds(const study_cfg *c, const uint64_t *sv, int n_seeds)
{
    corpus_buf md = {0}, csv = {0};
    char line[1024], dir[PATH_MAX_T], p[PATH_MAX_T + 32];
    double (*m)[4][6] = calloc((size_t)n_seeds, sizeof *m), (*se)[4][6] = calloc((size_t)n_seeds, sizeof *se);
    double (*ev)[N_TWINS][3] = calloc((size_t)n_seeds, sizeof *ev);
    int rc = 1;
    if (!m || !se || !ev) {
        cli_error("out of memory");
        goto done;
    }
    for (int k = 0; k < n_seeds; k++) {
        snprintf(dir, sizeof dir, "%s/seed-%llu", c->out, (unsigned long long)sv[k]);
        if (read_contrasts(dir, m[k], se[k]) || read_twin_evals(dir, ev[k]))
            goto done;
    }
    ADD(md, "# Twin models (SPEC E5) over %d seeds\n\nEach seed is a whole study (corpus, initial weights, data "
            "order): %s/seed-S/twins.md.\n\n## Held-out loss / fine-tune format / fine-tune accuracy\n\n| twin |",
        n_seeds, c->out);
    for (int k = 0; k < n_seeds; k++)
        ADD(md, " seed %llu |", (unsigned long long)sv[k]);
    ADD(md, "\n|---|");
    for (int k = 0; k < n_seeds; k++)
        ADD(md, "---:|");
    ADD(md, "\n");
    for (int i = 0; i < N_TWINS; i++) {
        ADD(md, "| %s |", twins[i].name);
        for (int k = 0; k < n_seeds; k++)
            ADD(md, " %.3f / %.3f / %.3f |", ev[k][i][0], ev[k][i][1], ev[k][i][2]);
        ADD(md, "\n");
    }
    ADD(md, "| held-out spread |");
    for (int k = 0; k < n_seeds; k++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < N_TWINS; i++) {
            lo = fmin(lo, ev[k][i][0]);
            hi = fmax(hi, ev[k][i][0]);
        }
        ADD(md, " %.1f%% |", 100.0 * (hi / lo - 1));
    }
    ADD(md, "\n\n## Factor contrasts per seed (ΔKL at α = 1, mean over the 5 tokens, paired by item; positive = "
            "less steerable)\n\n\"consistent\": the same sign and |mean| > 2 s.e. in every seed.\n\n"
            "| contrast | column |");
    for (int k = 0; k < n_seeds; k++)
        ADD(md, " seed %llu |", (unsigned long long)sv[k]);
    ADD(md, " mean over seeds | consistent |\n|---|---|");
    for (int k = 0; k < n_seeds; k++)
        ADD(md, "---:|");
    ADD(md, "---:|---|\n");
    ADD(csv, "contrast,column,seed,mean,se\n");
    for (int q = 0; q < 4; q++)
        for (int j = 0; j < 6; j++) {
            ADD(md, "| %s | %s |", con_what[q], con_col[j]);
            int pos = 0, neg = 0;
            double sum = 0;
            for (int k = 0; k < n_seeds; k++) {
                const double a = m[k][q][j], b = se[k][q][j];
                ADD(md, " %+.3f ± %.3f |", a, b);
                ADD(csv, "%s,%s,%llu,%.6g,%.6g\n", con_id[q], con_col[j], (unsigned long long)sv[k], a, b);
                pos += a > 2 * b;
                neg += a < -2 * b;
                sum += a;
            }
            ADD(md, " %+.3f | %s |\n", sum / n_seeds, pos == n_seeds ? "yes (+)" : neg == n_seeds ? "yes (−)" : "no");
        }
    snprintf(p, sizeof p, "%s/twins_seeds.csv", c->out);
    if (steer_write_file_atomic(p, csv.buf, csv.n)) {
        cli_lib_error();
        goto done;
    }
    snprintf(p, sizeof p, "%s/twins_seeds.md", c->out);
    if (steer_write_file_atomic(p, md.buf, md.n)) {
        cli_lib_error();
        goto done;
    }
    if (!c->quiet) {
        fwrite(md.buf, 1, md.n, stdout);
        printf("wrote %s/twins_seeds.md and %s/twins_seeds.csv\n", c->out, c->out);
    }
    rc = 0;
done:
#undef ADD
    free(md.buf);
    free(csv.buf);
    free(m);
    free(se);
    free(ev);
    return rc;
}

/* One study (one seed) in c->out: corpus, the four twins' pipelines
 * (c->jobs at a time), the summary tables and the report. */
static int run_study(const study_cfg *c)
{
    int rc;
    if (make_dir(c->out))
        return 1;

    pid_t pid = spawn(c, corpus_child, NULL);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return pid < 0 ? cli_error("fork: %s", strerror(errno)) : 1;

    pid_t pids[N_TWINS];
    int failed = 0, next = 0, running = 0;
    for (int i = 0; i < N_TWINS; i++)
        pids[i] = 0;
    while (next < N_TWINS || running > 0) {
        while (!failed && next < N_TWINS && running < c->jobs) {
            pids[next] = spawn(c, twin_pipeline, &twins[next]);
            if (pids[next] < 0) {
                cli_error("fork: %s", strerror(errno));
                failed = 1;
                break;
            }
            next++;
            running++;
        }
        if (running == 0)
            break;
        pid_t w = waitpid(-1, &st, 0);
        if (w < 0)
            break;
        for (int i = 0; i < N_TWINS; i++)
            if (pids[i] == w) {
                running--;
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                    cli_error("twin %s failed (finished stages in %s/%s are kept; rerun to resume)", twins[i].name,
                              c->out, twins[i].name);
                    failed = 1;
                } else {
                    say(c, "study twins: %s: done", twins[i].name);
                }
            }
        if (failed && running == 0)
            break;
    }
    if (failed)
        return 1;

    if (write_summary(c))
        return 1;
    char rep[PATH_MAX_T], d[2 * N_TWINS][PATH_MAX_T];
    snprintf(rep, sizeof rep, "%s/report.html", c->out);
    for (int i = 0; i < N_TWINS; i++) {
        snprintf(d[2 * i], sizeof d[0], "%s/%s/sweep", c->out, twins[i].name);
        snprintf(d[2 * i + 1], sizeof d[0], "%s/%s/mlp", c->out, twins[i].name);
    }
    rc = run_cmd(cmd_report, "report", "report", d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], "-o", rep, "-q",
                 NULL);
    if (rc)
        return rc;
    if (!c->quiet)
        printf("wrote %s/twins.md, %s/twins.csv and %s\n", c->out, c->out, rep);
    return 0;
}

int study_twins(int argc, char **argv)
{
    study_cfg c = {
        .out = NULL, .teacher = "models/stories260K/stories260K.bin", .tokenizer = "models/stories260K/tok512.bin",
        .wg_train = "tests/data/winogrande/train_m.jsonl", .wg_dev = "tests/data/winogrande/dev.jsonl",
        .n_stories = 3000, .story_len = 200, .n_heldout = 128,
        .d = 64, .ff = 172, .layers = 5, .heads = 8, .kv_heads = 4, .ctx = 256,
        .steps_pre = 200, .batch_pre = 16, .steps_ft = 300, .batch_ft = 16, .n_items = 128, .token = 2,
        .lr_pre = 4e-3f, .lr_ft = 2e-3f, .seed = 1, .threads = 1, .jobs = 2,
    };
    const char *seeds = NULL;
    const cli_opt opts[] = {
        {"-o", "--out", OPT_STR, &c.out, "DIR", "study directory (required; finished stages in it are kept)"},
        {NULL, "--teacher", OPT_STR, &c.teacher, "MODEL", "model that writes the corpus (default models/stories260K/stories260K.bin)"},
        {"-z", "--tokenizer", OPT_STR, &c.tokenizer, "FILE", "llama2.c tokenizer of the teacher and the twins (default models/stories260K/tok512.bin)"},
        {NULL, "--stories", OPT_INT, &c.n_stories, "N", "corpus stories (default 3000)"},
        {NULL, "--story-len", OPT_INT, &c.story_len, "T", "tokens per story at most (default 200)"},
        {NULL, "--heldout", OPT_INT, &c.n_heldout, "N", "held-out stories (default 128)"},
        {NULL, "--d", OPT_INT, &c.d, "N", "d_model (default 64)"},
        {NULL, "--ff", OPT_INT, &c.ff, "N", "d_ff (default 172)"},
        {NULL, "--layers", OPT_INT, &c.layers, "N", "blocks (default 5)"},
        {NULL, "--heads", OPT_INT, &c.heads, "N", "attention heads (default 8)"},
        {NULL, "--kv-heads", OPT_INT, &c.kv_heads, "N", "key/value heads (default 4)"},
        {NULL, "--ctx", OPT_INT, &c.ctx, "N", "context (default 256)"},
        {NULL, "--steps-pretrain", OPT_INT, &c.steps_pre, "N", "pretraining updates (default 200)"},
        {NULL, "--batch-pretrain", OPT_INT, &c.batch_pre, "B", "stories per pretraining update (default 16)"},
        {NULL, "--lr-pretrain", OPT_FLOAT, &c.lr_pre, "LR", "pretraining peak learning rate (default 4e-3)"},
        {NULL, "--wg-train", OPT_STR, &c.wg_train, "FILE", "Winogrande training JSONL (default tests/data/winogrande/train_m.jsonl)"},
        {NULL, "--wg-dev", OPT_STR, &c.wg_dev, "FILE", "Winogrande dev JSONL (default tests/data/winogrande/dev.jsonl)"},
        {NULL, "--steps-ft", OPT_INT, &c.steps_ft, "N", "fine-tuning updates (default 300)"},
        {NULL, "--batch-ft", OPT_INT, &c.batch_ft, "B", "fine-tuning batch (default 16)"},
        {NULL, "--lr-ft", OPT_FLOAT, &c.lr_ft, "LR", "fine-tuning peak learning rate (default 2e-3)"},
        {NULL, "--n-items", OPT_INT, &c.n_items, "N", "dev items for evaluation, sweep and analysis (default 128)"},
        {NULL, "--token", OPT_INT, &c.token, "K", "analysis position: the one predicting completion token K (default 2)"},
        {NULL, "--seed", OPT_U64, &c.seed, "S", "corpus, weights and data order seed (default 1)"},
        {NULL, "--seeds", OPT_STR, &seeds, "LIST", "several seeds (e.g. 1,2): a study per seed in DIR/seed-S, then DIR/twins_seeds.md/.csv"},
        {NULL, "--threads", OPT_INT, &c.threads, "T", "OpenMP threads per twin (default 1)"},
        {NULL, "--jobs", OPT_INT, &c.jobs, "J", "twins run at the same time (default 2)"},
        {NULL, "--progress", OPT_FLAG, &c.progress, NULL, "print stage lines even when stderr is not a TTY"},
        {"-q", "--quiet", OPT_FLAG, &c.quiet, NULL, "print nothing on success"},
    };
    const cli_spec spec = {
        .usage = "steer study twins --out DIR [--steps-pretrain N --steps-ft N --n-items N --seed S --threads T --jobs J]",
        .description =
            "Twin models (SPEC E5): four small models that differ only in the MLP activation\n"
            "(SiLU, GELU-tanh) and the block style (llama; gemma2 blocks = norm 1 + w, embedding\n"
            "x sqrt(d), tied head, sandwich norms, soft-caps and sliding window off). A corpus of\n"
            "stories is sampled from the teacher (stories260K); each twin is made with\n"
            "make-model (same sizes, seed, tok512 vocabulary), pretrained on it with\n"
            "steer train --method full, fine-tuned on Winogrande the same way, then swept\n"
            "(steer sweep, four sites, oracle vectors saved) and analysed (steer analyze-mlp\n"
            "at attn_out and mlp_in). Writes DIR/twins.md and twins.csv (held-out losses, dKL\n"
            "per site and layer, attenuation) and DIR/report.html/.md over the eight result\n"
            "directories. A stage whose output exists is skipped: rerun to resume.\n"
            "With --seeds S1,S2,... the whole study runs once per seed (DIR/seed-S) and\n"
            "DIR/twins_seeds.md/.csv put the factor contrasts of every seed side by side,\n"
            "marking those with the same sign and |mean| > 2 s.e. in every seed.\n"
            "Run from the repository root (the defaults are paths in it). See docs/TWINS.md.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer study twins --out runs/twins --jobs 2 --progress\n"
                   "  steer study twins --out runs/twins2 --seeds 1,2 --steps-ft 2500 \\\n"
                   "      --wg-train tests/data/winogrande/train_l.jsonl --jobs 2\n"
                   "  steer study twins --out tiny --d 32 --ff 64 --layers 2 --heads 4 --kv-heads 2 --stories 64 \\\n"
                   "      --heldout 8 --steps-pretrain 20 --steps-ft 10 --n-items 4",
        .min_pos = 0,
        .max_pos = 0,
        .pos = NULL,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!c.out)
        return cli_usage("missing --out DIR");
    if (c.n_stories <= 0 || c.story_len <= 0 || c.n_heldout <= 0 || c.steps_pre <= 0 || c.batch_pre <= 0 ||
        c.steps_ft <= 0 || c.batch_ft <= 0 || c.n_items <= 0 || c.threads <= 0 || c.jobs <= 0 || c.token <= 0)
        return cli_usage("counts, steps, batches, --threads and --jobs must be positive");
    if (c.n_heldout >= c.n_stories)
        return cli_usage("--heldout %d must be smaller than --stories %d", c.n_heldout, c.n_stories);
    if (c.layers <= 0 || c.layers > 64)
        return cli_usage("--layers must be 1..64, got %d", c.layers);
    if (c.story_len + 1 > c.ctx)
        return cli_usage("--story-len %d does not fit --ctx %d", c.story_len, c.ctx);
    if (!(c.lr_pre > 0) || !(c.lr_ft > 0))
        return cli_usage("learning rates must be positive");
    if (strlen(c.out) > 700)
        return cli_usage("--out path too long");
    const char *inputs[4] = {c.teacher, c.tokenizer, c.wg_train, c.wg_dev};
    for (int i = 0; i < 4; i++)
        if (!file_exists(inputs[i]))
            return cli_error("%s: not found (run from the repository root or give its path)", inputs[i]);
    if (!seeds)
        return run_study(&c);

    /* --seeds: one study per seed in DIR/seed-S, then the across-seed table */
    uint64_t sv[16];
    int n_seeds = 0;
    for (const char *q = seeds; *q;) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(q, &end, 10);
        if (end == q || errno || v == 0 || (*end && *end != ','))
            return cli_usage("--seeds: expected positive integers separated by commas, got '%s'", seeds);
        if (n_seeds == 16)
            return cli_usage("--seeds: at most 16 seeds");
        for (int i = 0; i < n_seeds; i++)
            if (sv[i] == v)
                return cli_usage("--seeds: seed %llu given twice", v);
        sv[n_seeds++] = v;
        q = *end ? end + 1 : end;
    }
    if (n_seeds < 2)
        return cli_usage("--seeds needs at least two seeds (use --seed for one)");
    if (make_dir(c.out))
        return 1;
    const char *base = c.out;
    char dir[PATH_MAX_T];
    for (int i = 0; i < n_seeds; i++) {
        snprintf(dir, sizeof dir, "%s/seed-%llu", base, (unsigned long long)sv[i]);
        study_cfg cs = c;
        cs.out = dir;
        cs.seed = sv[i];
        say(&c, "study twins: seed %llu -> %s", (unsigned long long)sv[i], dir);
        if ((rc = run_study(&cs)))
            return rc;
    }
    return write_seeds(&c, sv, n_seeds);
}

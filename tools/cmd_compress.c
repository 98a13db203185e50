/* cmd_compress.c — `steer compress`: a context (system prompt, few-shot
 * examples, a document) turned into one attn_out vector per layer (SPEC E3
 * (b), optionally trained as in (d)), so that `steer generate --steer FILE`
 * runs as if the context were there. The work is the library's steer_icl_*
 * (src/icl.c); docs/ICL.md. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads a whole text file (malloc'd, NUL-terminated). Prints errors. */
static int read_text(const char *path, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error("%s: cannot open", path);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 2048 > cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) return cli_error("%s: out of memory", path);
    if (bad) {
        free(buf);
        return cli_error("%s: read error", path);
    }
    buf[n] = 0;
    if (strlen(buf) != n) {
        free(buf);
        return cli_error("%s: holds a NUL byte (not a text file)", path);
    }
    *out = buf;
    return 0;
}

/* The context's paragraphs (split at blank lines) as queries. */
static int add_paragraphs(steer_icl *e, char *text, int n_max, int *n_added)
{
    *n_added = 0;
    char *p = text;
    while (*p && (n_max <= 0 || *n_added < n_max)) {
        while (*p == '\n' || *p == '\r') p++;
        if (!*p) break;
        char *end = strstr(p, "\n\n");
        char save = 0;
        if (end) {
            save = *end;
            *end = 0;
        }
        int blank = strspn(p, " \t\r\n") == strlen(p);
        int rc = blank ? STEER_OK : steer_icl_add_query(e, NULL, p, NULL, NULL, 0, -1, STEER_ICL_SCORE_ALL);
        if (end) *end = save;
        if (rc) return rc;
        if (!blank) (*n_added)++;
        if (!end) break;
        p = end + 2;
    }
    return STEER_OK;
}

static int on_step(void *ud, int step, int total, double loss)
{
    int mode = *(int *)ud;
    if (mode == 1) fprintf(stderr, "\rcompress: learn %d/%d  KL %.5f   ", step, total, loss);
    else if (mode == 2 && (step % 10 == 0 || step == total)) fprintf(stderr, "compress: learn %d/%d  KL %.5f\n", step, total, loss);
    return 0;
}

/* Logits of the last row of tok [n] with alpha·vs added, into out [V]. */
static int steered_logits(steer_model *m, const steer_vecset *vs, float alpha, const int *tok, int n, float *out)
{
    steer_ctx *c = NULL;
    int rc = cli_new_ctx(m, 0, 0, &c);
    if (rc) return rc;
    if (steer_vecset_apply(vs, c, alpha) != STEER_OK || steer_forward_tokens(c, tok, n, 0, 0) != STEER_OK) {
        steer_ctx_free(c);
        return cli_lib_error();
    }
    memcpy(out, steer_ctx_logits(c, n - 1), (size_t)steer_model_get_config(m)->n_vocab * sizeof(float));
    steer_ctx_free(c);
    return 0;
}

int cmd_compress(int argc, char **argv)
{
    const char *model = NULL, *tokp = NULL, *ctx_path = NULL, *queries = NULL, *out = NULL, *init = NULL,
               *score = NULL;
    int n_max = 0, learn = 0, steps = 100, batch = 8, quiet = 0, progress = 0, threads = 0;
    float lr = 1e-2f, alpha = 1.0f;
    const cli_opt opts[] = {
        {"-m", "--model", OPT_STR, &model, "MODEL", "model (required)"},
        {"-z", "--tokenizer", OPT_STR, &tokp, "FILE", "tokenizer of a llama2.c model"},
        {NULL, "--context", OPT_STR, &ctx_path, "FILE", "the context as a text file (required)"},
        {NULL, "--queries", OPT_STR, &queries, "SPEC",
         "queries the context should serve, FORMAT:FILE (default: the context's paragraphs)"},
        {"-n", "--n", OPT_INT, &n_max, "N", "use the first N queries (0: all)"},
        {NULL, "--score", OPT_STR, &score, "P",
         "answer (the completion's positions) or all (default: answer when every query has a completion)"},
        {NULL, "--init", OPT_STR, &init, "FILE", "start from these attn_out vectors instead of the mean delta"},
        {NULL, "--learn", OPT_FLAG, &learn, NULL, "train the vectors on KL(steered || with context)"},
        {NULL, "--steps", OPT_INT, &steps, "N", "--learn: optimizer updates (default 100)"},
        {NULL, "--batch", OPT_INT, &batch, "B", "--learn: queries per update (default 8)"},
        {NULL, "--lr", OPT_FLOAT, &lr, "LR", "--learn: peak learning rate (default 1e-2)"},
        {NULL, "--alpha", OPT_FLOAT, &alpha, "A", "scale used for the KL printed (default 1)"},
        {NULL, "--threads", OPT_INT, &threads, "T", "threads (default: OMP_NUM_THREADS)"},
        {"-o", "--out", OPT_STR, &out, "FILE", "vector file to write (.safetensors; required)"},
        {NULL, "--progress", OPT_FLAG, &progress, NULL, "progress lines even when stderr is not a TTY"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "print nothing on success"},
    };
    const cli_spec spec = {
        .usage = "steer compress -m MODEL --context FILE [--queries SPEC] [--learn --steps N] -o VECTORS.safetensors",
        .description =
            "Compresses a context C into one attn_out vector per layer: Delta_A,l = the mean over\n"
            "the queries' positions of attn_out(C + q, l) - attn_out(q, l) (SPEC E3 (b)); with\n"
            "--learn the vectors are then trained so that q alone + vectors matches q after C\n"
            "(KL(steered || with context), E3 (d)). Without --queries the context's own\n"
            "paragraphs (split at blank lines) are the queries. The file is a SPEC 5 vector file\n"
            "(attn_out.<l> [d_model]): 'steer generate --steer FILE' adds it at every position.\n"
            "Prints the memory of C's KV cache next to the vectors', KL(zero-shot || with\n"
            "context) and KL(compressed || with context) over the queries, and checks that the\n"
            "written file reloads to the same logits.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer compress -m models/stories260K-winogrande/stories260K-winogrande.bin \\\n"
                   "      --context shots.txt --queries winogrande:tests/data/winogrande/dev.jsonl --n 64 \\\n"
                   "      --learn --steps 100 -o shots.safetensors\n"
                   "  steer generate -m models/stories260K-winogrande/stories260K-winogrande.bin \\\n"
                   "      --steer shots.safetensors -p \"...\"",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0) return rc;
    if (!model) return cli_usage("missing -m MODEL");
    if (!ctx_path) return cli_usage("missing --context FILE");
    if (!out) return cli_usage("missing -o FILE");
    if (n_max < 0) return cli_usage("--n must be >= 0, got %d", n_max);
    if (steps < 0 || batch < 1) return cli_usage("--steps must be >= 0 and --batch >= 1");
    if (!(lr > 0)) return cli_usage("--lr must be > 0");
    if (threads < 0) return cli_usage("--threads must be >= 0, got %d", threads);
    if (score && strcmp(score, "answer") != 0 && strcmp(score, "all") != 0)
        return cli_usage("--score must be answer or all, got '%s'", score);
    const int pmode = quiet ? 0 : progress ? 2 : isatty(2) ? 1 : 0;

    steer_model *m = NULL;
    steer_icl *e = NULL;
    steer_dataset *dq = NULL;
    steer_vecset *vs = NULL, *back = NULL;
    char *text = NULL;
    float *la = NULL, *lb = NULL;
    if ((rc = read_text(ctx_path, &text))) return rc;
    if (strspn(text, " \t\r\n") == strlen(text)) {
        rc = cli_error("%s: the context is empty", ctx_path);
        goto end;
    }
    if ((rc = cli_load_model(model, tokp, &m))) goto end;
    if (steer_icl_new_text(m, text, threads, &e) != STEER_OK) {
        rc = cli_lib_error_at(ctx_path);
        goto end;
    }
    int n_q = 0;
    if (queries) {
        steer_data_params dp = steer_data_default_params();
        dp.n_max = n_max;
        if (steer_data_load(queries, &dp, &dq) != STEER_OK) {
            rc = cli_lib_error();
            goto end;
        }
        int all_done = 1;
        for (int i = 0; i < steer_data_count(dq); i++) all_done &= steer_data_at(dq, i)->completion != NULL;
        steer_icl_score sc = score ? (strcmp(score, "all") == 0 ? STEER_ICL_SCORE_ALL : STEER_ICL_SCORE_ANSWER)
                                   : (all_done ? STEER_ICL_SCORE_ANSWER : STEER_ICL_SCORE_ALL);
        if (steer_icl_add_dataset(e, dq, 0, -1, sc) != STEER_OK) {
            rc = cli_lib_error();
            goto end;
        }
    } else {
        if (score && strcmp(score, "answer") == 0) {
            rc = cli_usage("--score answer needs --queries with completions");
            goto end;
        }
        if (add_paragraphs(e, text, n_max, &n_q) != STEER_OK) {
            rc = cli_lib_error_at(ctx_path);
            goto end;
        }
    }
    n_q = steer_icl_n_queries(e);
    if (n_q == 0) {
        rc = cli_error("%s: no queries", queries ? queries : ctx_path);
        goto end;
    }
    if (init) {
        if (steer_vecset_load(init, &vs) != STEER_OK || steer_vecset_check_model(vs, m, init) != STEER_OK) {
            rc = cli_lib_error();
            goto end;
        }
        for (int i = 0; i < steer_vecset_count(vs); i++) {
            const steer_vec *v = steer_vecset_at(vs, i);
            if (v->site != STEER_SITE_ATTN_OUT || v->n_rows) {
                rc = cli_error("%s: tensor %s.%d: --init takes one attn_out vector per layer", init,
                               steer_site_name(v->site), v->layer);
                goto end;
            }
        }
    } else if (steer_icl_mean_delta(e, &vs) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    double kl0 = 0, kl1 = 0;
    for (int i = 0; i < n_q; i++) {
        double a, b;
        if (steer_icl_kl(e, i, NULL, 1.0f, &a, NULL) != STEER_OK || steer_icl_kl(e, i, vs, alpha, &b, NULL) != STEER_OK) {
            rc = cli_lib_error();
            goto end;
        }
        kl0 += a / n_q;
        kl1 += b / n_q;
    }
    steer_icl_learn_result lres = {0, NAN, NAN};
    double kl2 = NAN;
    if (learn) {
        steer_icl_learn_params lp = steer_icl_learn_default_params();
        lp.steps = steps;
        lp.batch = batch;
        lp.lr = lr;
        int mode = pmode;
        lp.on_step = on_step;
        lp.ud = &mode;
        int lrc = steer_icl_learn(e, vs, &lp, &lres);
        if (pmode == 1 && steps > 0) fputc('\n', stderr);
        if (lrc != STEER_OK) {
            rc = cli_lib_error();
            goto end;
        }
        kl2 = 0;
        for (int i = 0; i < n_q; i++) {
            double b;
            if (steer_icl_kl(e, i, vs, alpha, &b, NULL) != STEER_OK) {
                rc = cli_lib_error();
                goto end;
            }
            kl2 += b / n_q;
        }
    }
    /* metadata */
    {
        const steer_model_config *cfg = steer_model_get_config(m);
        char num[64];
        const char *kv[][2] = {
            {"format_version", "1"},      {"model_hint", cfg->arch_name}, {"model", model},
            {"method", learn ? "icl-learned" : init ? "icl-init" : "icl-mean"},
            {"site", "attn_out"},         {"context", ctx_path},          {"queries", queries ? queries : "(context paragraphs)"},
            {"command", cli_cmdline},
        };
        for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
            if (steer_vecset_set_meta(vs, kv[i][0], kv[i][1]) != STEER_OK) {
                rc = cli_lib_error();
                goto end;
            }
        struct { const char *k; double v; } nv[] = {
            {"context_tokens", steer_icl_context_len(e)}, {"n_queries", n_q},
            {"kv_bytes", (double)steer_icl_kv_bytes(e)},  {"vec_bytes", (double)steer_icl_vec_bytes(e)},
            {"d_model", cfg->d_model},
        };
        for (size_t i = 0; i < sizeof nv / sizeof nv[0]; i++) {
            snprintf(num, sizeof num, "%.17g", nv[i].v);
            if (steer_vecset_set_meta(vs, nv[i].k, num) != STEER_OK) {
                rc = cli_lib_error();
                goto end;
            }
        }
        if (learn) {
            snprintf(num, sizeof num, "%.9g", lres.loss_before);
            steer_vecset_set_meta(vs, "learn.loss_before", num);
            snprintf(num, sizeof num, "%.9g", lres.loss_after);
            steer_vecset_set_meta(vs, "learn.loss_after", num);
            snprintf(num, sizeof num, "%d", lres.steps);
            steer_vecset_set_meta(vs, "learn.steps", num);
        }
    }
    if (steer_vecset_save(vs, out) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    /* The file reloads to the same logits (the first query's sequence). */
    double maxd = 0;
    {
        const int V = steer_model_get_config(m)->n_vocab;
        int n = 0;
        const int *tok = steer_icl_query_tokens(e, 0, &n);
        la = malloc((size_t)V * sizeof *la);
        lb = malloc((size_t)V * sizeof *lb);
        if (!tok || !la || !lb) {
            rc = cli_error("out of memory");
            goto end;
        }
        if (steer_vecset_load(out, &back) != STEER_OK || steer_vecset_check_model(back, m, out) != STEER_OK) {
            rc = cli_lib_error();
            goto end;
        }
        if ((rc = steered_logits(m, vs, 1.0f, tok, n, la)) || (rc = steered_logits(m, back, 1.0f, tok, n, lb)))
            goto end;
        for (int v = 0; v < V; v++) {
            double df = fabs((double)la[v] - (double)lb[v]);
            if (!(df <= maxd)) maxd = df;
        }
        if (maxd != 0) {
            rc = cli_error("%s: reloaded vectors give other logits (max |difference| %.3g)", out, maxd);
            goto end;
        }
    }
    if (!quiet) {
        size_t kv = steer_icl_kv_bytes(e), vb = steer_icl_vec_bytes(e);
        printf("wrote %s (%d attn_out vectors)\n", out, steer_vecset_count(vs));
        printf("context: %d tokens; its KV cache %zu bytes; vectors %zu bytes; ratio %.1f\n", steer_icl_context_len(e),
               kv, vb, (double)kv / (double)vb);
        printf("queries: %d; KL(zero-shot || with context) %.5f; KL(%s || with context) %.5f\n", n_q, kl0,
               init ? "--init vectors" : "mean delta", kl1);
        if (learn)
            printf("learned: %d updates, objective %.5f -> %.5f; KL(learned || with context) %.5f\n", lres.steps,
                   lres.loss_before, lres.loss_after, kl2);
        printf("reload check: max |logit difference| = %g\n", maxd);
    }
    rc = 0;
end:
    free(la);
    free(lb);
    free(text);
    steer_vecset_free(vs);
    steer_vecset_free(back);
    steer_data_free(dq);
    steer_icl_free(e);
    steer_model_free(m);
    return rc;
}

/* cmd_patch.c — `steer patch`: activation patching (causal tracing) between a
 * clean and a corrupted prompt over sites × layers × positions, on the
 * library's steer_patcher (src/exp/patch.c). Writes DIR/patch.csv and one
 * heat map per site (DIR/patch_<site>.png/.svg, layers × positions).
 * docs/PATCHING.md describes the files. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One answer token from --answer TEXT or --answer-id N (exactly one). */
static int answer_token(const steer_model *m, const char *opt, const char *text, int id, int *out)
{
    char idopt[32];
    snprintf(idopt, sizeof idopt, "%s-id", opt);
    if (text && id >= 0) return cli_usage("give one of %s and %s", opt, idopt);
    if (id >= 0) {
        if (id >= steer_vocab_size(m))
            return cli_error("%s %d out of range (vocabulary has %d tokens)", idopt, id, steer_vocab_size(m));
        *out = id;
        return 0;
    }
    int *toks = NULL, n = 0;
    if (steer_tokenize_alloc(m, text, 0, &toks, &n) != STEER_OK) return cli_lib_error_at(opt);
    if (n != 1) {
        char ids[128] = "";
        for (int i = 0; i < n && strlen(ids) < sizeof ids - 16; i++)
            snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d", i ? " " : "", toks[i]);
        free(toks);
        return cli_error("%s '%s' is %d tokens (%s); give text of one token or %s", opt, text, n, ids, idopt);
    }
    *out = toks[0];
    free(toks);
    return 0;
}

/* A token as a short printable label into buf ("_" for a leading space). */
static void token_label(const steer_model *m, int prev, int tok, char *buf, size_t cap)
{
    if (tok == steer_token_bos(m)) {
        snprintf(buf, cap, "BOS");
        return;
    }
    size_t len = 0;
    const char *s = steer_token_piece(m, prev, tok, &len);
    size_t j = 0;
    for (size_t i = 0; s && i < len && j + 1 < cap && j < 16; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[j++] = ch == ' ' ? '_' : (ch < 32 || ch == ',' || ch == '"') ? '?' : (char)ch;
    }
    buf[j] = '\0';
    if (j == 0) snprintf(buf, cap, "#%d", tok);
}

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static int sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return -1;
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return 0;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *q = realloc(b->p, cap);
        if (!q) return -1;
        b->p = q;
        b->cap = cap;
    }
}

int cmd_patch(int argc, char **argv)
{
    const char *model = NULL, *tokenizer = NULL, *clean = NULL, *clean_ids = NULL, *corr = NULL, *corr_ids = NULL;
    const char *answer = NULL, *wrong = NULL, *metric_arg = NULL, *sites_arg = "resid_pre,attn_out,mlp_out";
    const char *layers_arg = "all", *out = NULL;
    int answer_id = -1, wrong_id = -1, n_threads = 0, batch = 0, quiet = 0;
    const cli_opt opts[] = {
        {"-m", "--model", OPT_STR, &model, "MODEL", "model: GGUF, Hugging Face directory or llama2.c .bin (required)"},
        {"-z", "--tokenizer", OPT_STR, &tokenizer, "FILE", "tokenizer.bin for llama2.c checkpoints"},
        {NULL, "--clean", OPT_STR, &clean, "TEXT", "the clean prompt (tokenized with BOS)"},
        {NULL, "--clean-ids", OPT_STR, &clean_ids, "\"1 403 ...\"", "the clean prompt as token ids"},
        {NULL, "--corrupted", OPT_STR, &corr, "TEXT", "the corrupted prompt, of the same token length"},
        {NULL, "--corrupted-ids", OPT_STR, &corr_ids, "\"1 403 ...\"", "the corrupted prompt as token ids"},
        {NULL, "--answer", OPT_STR, &answer, "TEXT", "the clean run's answer: text of one token (no BOS)"},
        {NULL, "--answer-id", OPT_INT, &answer_id, "N", "the answer as a token id"},
        {NULL, "--wrong", OPT_STR, &wrong, "TEXT", "the corrupted run's answer: text of one token"},
        {NULL, "--wrong-id", OPT_INT, &wrong_id, "N", "the wrong answer as a token id"},
        {NULL, "--metric", OPT_STR, &metric_arg, "NAME",
         "logit_diff (logit[answer] - logit[wrong]; the default with --answer) or kl (KL(clean || run))"},
        {NULL, "--sites", OPT_STR, &sites_arg, "LIST", "sites, comma-separated, or all (default resid_pre,attn_out,mlp_out)"},
        {NULL, "--layers", OPT_STR, &layers_arg, "LIST", "layers: all | 3 | 0,2,5-7 | -1 (default all)"},
        {"-o", "--out", OPT_STR, &out, "DIR", "output directory (created; required)"},
        {NULL, "--threads", OPT_INT, &n_threads, "N", "compute threads (0 = OpenMP default)"},
        {NULL, "--batch", OPT_INT, &batch, "N", "positions patched per forward pass, one sequence each (0 = 16)"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "no progress on stderr and no summary on stdout"},
    };
    const cli_spec spec = {
        .usage = "steer patch -m MODEL --clean TEXT --corrupted TEXT (--answer A --wrong B | --metric kl) -o DIR",
        .description =
            "Activation patching (causal tracing): runs the clean and the corrupted prompt, then\n"
            "for every chosen site, layer and position t runs the corrupted prompt with the clean\n"
            "run's activation at (site, layer, t) written in, and scores the last position's\n"
            "logits: logit_diff = logit[answer] - logit[wrong], or kl = KL(P_clean || P_run).\n"
            "The prompts must have the same number of tokens (an error otherwise: positions\n"
            "are not aligned). Writes DIR/patch.csv (site, layer, position, token, metric,\n"
            "recovered = (metric - corrupted) / (clean - corrupted)) and a heat map per site,\n"
            "DIR/patch_<site>.png and .svg (positions x layers). Prints the clean and corrupted\n"
            "metric and each site's strongest cell. See docs/PATCHING.md.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer patch -m models/stories260K/stories260K.bin --clean \"The cat sat on the\" \\\n"
                   "      --corrupted \"The dog sat on the\" --answer ground --wrong swing -o patch/",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0) return rc;
    if (!model) return cli_usage("missing -m MODEL");
    if (!out) return cli_usage("missing -o DIR");
    if ((clean == NULL) == (clean_ids == NULL)) return cli_usage("give exactly one of --clean and --clean-ids");
    if ((corr == NULL) == (corr_ids == NULL)) return cli_usage("give exactly one of --corrupted and --corrupted-ids");
    steer_patch_metric mt = {.kind = STEER_PATCH_LOGIT_DIFF, .answer = -1, .wrong = -1};
    if (metric_arg && strcmp(metric_arg, "kl") == 0) mt.kind = STEER_PATCH_KL;
    else if (metric_arg && strcmp(metric_arg, "logit_diff") != 0)
        return cli_usage("--metric must be logit_diff or kl, got '%s'", metric_arg);
    const int have_answer = answer || answer_id >= 0 || wrong || wrong_id >= 0;
    if (mt.kind == STEER_PATCH_LOGIT_DIFF && !((answer || answer_id >= 0) && (wrong || wrong_id >= 0)))
        return cli_usage("the logit_diff metric needs --answer (or --answer-id) and --wrong (or --wrong-id)");
    if (mt.kind == STEER_PATCH_KL && have_answer) return cli_usage("--metric kl takes no --answer or --wrong");
    if (batch < 0) return cli_usage("--batch must be >= 0, got %d", batch);
    steer_site sites[STEER_SITE_COUNT];
    int n_sites = 0;
    char err[512];
    if (cli_parse_sites(sites_arg, sites, &n_sites, err, sizeof err)) return cli_error("--sites: %s", err);

    steer_model *m = NULL;
    steer_patcher *p = NULL;
    int *ct = NULL, *xt = NULL, n_ct = 0, n_xt = 0;
    unsigned char *mask = NULL;
    double *vals = NULL;
    sbuf csv = {0};
    char **ticks = NULL;
    char(*tickbuf)[64] = NULL;
    if ((rc = cli_load_model(model, tokenizer, &m)) != 0) goto done;
    if ((rc = cli_prompt_tokens(m, clean, clean_ids, 0, &ct, &n_ct)) != 0) goto done;
    if ((rc = cli_prompt_tokens(m, corr, corr_ids, 0, &xt, &n_xt)) != 0) goto done;
    if (n_ct != n_xt) {
        rc = cli_error("the clean prompt is %d tokens and the corrupted one %d: patching needs prompts of the same "
                       "token length (use --clean-ids/--corrupted-ids to align them)",
                       n_ct, n_xt);
        goto done;
    }
    if (mt.kind == STEER_PATCH_LOGIT_DIFF) {
        if ((rc = answer_token(m, "--answer", answer, answer_id, &mt.answer)) != 0) goto done;
        if ((rc = answer_token(m, "--wrong", wrong, wrong_id, &mt.wrong)) != 0) goto done;
        if (mt.answer == mt.wrong) {
            rc = cli_error("--answer and --wrong are the same token (%d)", mt.answer);
            goto done;
        }
    }
    const int L = steer_model_get_config(m)->n_layer, T = n_ct;
    if (!(mask = malloc((size_t)L))) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (cli_parse_layers(layers_arg, L, mask, err, sizeof err)) {
        rc = cli_error("--layers: %s", err);
        goto done;
    }
    int n_sel = 0, sel[4096];
    for (int l = 0; l < L && n_sel < 4096; l++)
        if (mask[l]) sel[n_sel++] = l;
    if (steer_patcher_new(m, ct, T, xt, T, batch, n_threads, &p) != STEER_OK) {
        rc = cli_lib_error();
        goto done;
    }
    const double m_clean = steer_patcher_metric(p, &mt, steer_patcher_clean_logits(p));
    const double m_corr = steer_patcher_metric(p, &mt, steer_patcher_corrupt_logits(p));
    /* vals[s][t][li]: the heat map's rows are positions, its columns the chosen layers. */
    vals = malloc((size_t)n_sites * (size_t)T * (size_t)n_sel * sizeof *vals);
    double *row = malloc((size_t)T * sizeof *row);
    if (!vals || !row) {
        free(row);
        rc = cli_error("out of memory");
        goto done;
    }
    const int progress = quiet ? 0 : isatty(2) ? 1 : 2;
    const double t0 = cli_now();
    for (int s = 0; s < n_sites && !rc; s++) {
        for (int li = 0; li < n_sel && !rc; li++) {
            if (steer_patcher_sweep(p, sites[s], sel[li], &mt, row) != STEER_OK) {
                rc = cli_lib_error();
                break;
            }
            for (int t = 0; t < T; t++) vals[((size_t)s * T + t) * n_sel + li] = row[t];
            int done = s * n_sel + li + 1, total = n_sites * n_sel;
            if (progress == 1 || (progress == 2 && (done == total || done % 16 == 0)))
                fprintf(stderr, "%spatch: %d/%d (site, layer) cells of %d positions, %.1f s%s", progress == 1 ? "\r" : "",
                        done, total, T, cli_now() - t0, progress == 1 ? (done == total ? "\n" : "   ") : "\n");
        }
    }
    free(row);
    if (rc) goto done;

    /* patch.csv */
    const double span = m_clean - m_corr;
    if (sb_printf(&csv, "site,layer,position,clean_token,corrupted_token,metric,recovered\n")) rc = cli_error("out of memory");
    for (int s = 0; s < n_sites && !rc; s++)
        for (int li = 0; li < n_sel && !rc; li++)
            for (int t = 0; t < T && !rc; t++) {
                double v = vals[((size_t)s * T + t) * n_sel + li];
                if (sb_printf(&csv, "%s,%d,%d,%d,%d,%.9g,%.9g\n", steer_site_name(sites[s]), sel[li], t, ct[t], xt[t], v,
                              span != 0 ? (v - m_corr) / span : NAN))
                    rc = cli_error("out of memory");
            }
    if (rc) goto done;
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        rc = cli_error("%s: cannot create directory: %s", out, strerror(errno));
        goto done;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/patch.csv", out);
    if (steer_write_file_atomic(path, csv.p, csv.n) != STEER_OK) {
        rc = cli_lib_error();
        goto done;
    }

    /* Heat maps: one row per position ("2 cat/dog" where the prompts differ), a column per layer. */
    ticks = calloc((size_t)T + (size_t)n_sel, sizeof *ticks);
    tickbuf = calloc((size_t)T + (size_t)n_sel, sizeof *tickbuf);
    if (!ticks || !tickbuf) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (int t = 0; t < T; t++) {
        char a[24], b[24];
        token_label(m, t ? ct[t - 1] : -1, ct[t], a, sizeof a);
        token_label(m, t ? xt[t - 1] : -1, xt[t], b, sizeof b);
        if (ct[t] == xt[t]) snprintf(tickbuf[t], sizeof tickbuf[t], "%d %s", t, a);
        else snprintf(tickbuf[t], sizeof tickbuf[t], "%d %s/%s", t, a, b);
        ticks[t] = tickbuf[t];
    }
    for (int li = 0; li < n_sel; li++) {
        snprintf(tickbuf[T + li], sizeof tickbuf[0], "%d", sel[li]);
        ticks[T + li] = tickbuf[T + li];
    }
    for (int s = 0; s < n_sites && !rc; s++) {
        char title[256];
        snprintf(title, sizeof title, "patching %s: clean -> corrupted (clean %.3g, corrupted %.3g)",
                 steer_site_name(sites[s]), m_clean, m_corr);
        steer_heatmap h = {.title = title, .xlabel = "layer", .ylabel = "position (clean/corrupted token)",
                           .zlabel = mt.kind == STEER_PATCH_KL ? "KL(clean || patched) (nats)"
                                                               : "logit[answer] - logit[wrong]",
                           .nx = n_sel, .ny = T, .z = vals + (size_t)s * T * n_sel,
                           .xticks = (const char *const *)(ticks + T), .yticks = (const char *const *)ticks,
                           .cmap = mt.kind == STEER_PATCH_KL ? STEER_CMAP_SEQUENTIAL : STEER_CMAP_DIVERGING,
                           .values = T * n_sel <= 400, .value_fmt = "%.2f"};
        for (int e = 0; e < 2 && !rc; e++) {
            snprintf(path, sizeof path, "%s/patch_%s.%s", out, steer_site_name(sites[s]), e ? "svg" : "png");
            if (steer_heatmap_write(path, &h) != STEER_OK) rc = cli_lib_error();
        }
    }
    if (rc || quiet) goto done;
    printf("metric %s: clean %.9g, corrupted %.9g\n", steer_patch_metric_name(mt.kind), m_clean, m_corr);
    for (int s = 0; s < n_sites; s++) {
        int bt = 0, bl = 0;
        double best = NAN;
        for (int li = 0; li < n_sel; li++)
            for (int t = 0; t < T; t++) {
                double v = vals[((size_t)s * T + t) * n_sel + li];
                /* the strongest restoration: highest logit difference, lowest KL */
                double score = mt.kind == STEER_PATCH_KL ? -v : v;
                if (isnan(best) || score > best) {
                    best = score;
                    bt = t;
                    bl = sel[li];
                }
            }
        double v = mt.kind == STEER_PATCH_KL ? -best : best;
        printf("%s: strongest at layer %d, position %d (%s): %.9g, recovered %.3f\n", steer_site_name(sites[s]), bl,
               bt, tickbuf[bt], v, span != 0 ? (v - m_corr) / span : NAN);
    }
    printf("wrote %s/patch.csv and %d heat map(s) patch_<site>.png/.svg\n", out, n_sites);
done:
    free(csv.p);
    free(ticks);
    free(tickbuf);
    free(vals);
    free(mask);
    free(ct);
    free(xt);
    steer_patcher_free(p);
    if (m) steer_model_free(m);
    return rc;
}

/*
 * report.c — sweep figures and the HTML/Markdown report (steer_exp.h, report
 * section: steer_sweep_figures, steer_report_write).
 *
 * Reading: a sweep directory is read with the table API
 * (steer_sweep_table_read: summary.json and items.csv) into a dense view
 * [site][layer][alpha][token] (sites and layers in the sweep's order, alphas
 * ascending, tokens 1 … K; cells no item reaches are NaN), with each mean
 * and standard error as dkl.csv holds it (9 significant digits), so the
 * report and the figures show dkl.csv's numbers. A study adapt directory is
 * read with steer_adapt_summary_read; MLP analysis and ICL directories from
 * their own files.
 *
 * Writing: figures go through plot.c. The report is one document
 * (report_doc.h) that one section function per kind of directory content
 * (the report_kinds table at the end) builds; it is rendered to HTML and to
 * Markdown and both files are written through temporary files and renamed,
 * so bad input leaves nothing behind.
 */
#include "steer_exp.h"
#include "plot.h"
#include "report_doc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define RP_NAME_MAX 64 /* longest site name + 1 */

/* ---------------------------------------------------------------- small helpers */

/* out = dir "/" name (no doubled slash). STEER_EARG if it does not fit. */
static int join_path(char *out, size_t n, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    int k = dl && dir[dl - 1] == '/' ? snprintf(out, n, "%s%s", dir, name) : snprintf(out, n, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= n) return steer_err(STEER_EARG, "%s: path too long", dir);
    return STEER_OK;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Number for tables: 4 decimals, or 3 significant digits in e-notation for
 * tiny values; "–" for NaN. */
static void fmt_num(char *buf, size_t n, double v)
{
    if (!isfinite(v)) snprintf(buf, n, isnan(v) ? "–" : "%g", v);
    else if (v == 0 || fabs(v) >= 1e-3) snprintf(buf, n, "%.4f", v);
    else snprintf(buf, n, "%.2e", v);
}

/* Decimals that give a table whose largest magnitude is zmax about four
 * significant digits (4 for zmax >= 1, at most 8). */
static int table_decimals(double zmax)
{
    if (!(zmax > 0) || !isfinite(zmax) || zmax >= 1) return 4;
    int d = 3 - (int)floor(log10(zmax));
    return d > 8 ? 8 : d;
}

static void fmt_fixed(char *buf, size_t n, double v, int dec)
{
    if (!isfinite(v)) {
        snprintf(buf, n, isnan(v) ? "–" : "%g", v);
        return;
    }
    snprintf(buf, n, "%.*f", dec, v);
    if (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1)) memmove(buf, buf + 1, strlen(buf)); /* "-0.0000" */
}

/* "0.25" for an α (shortest round-trip-ish form). */
static void fmt_alpha(char *buf, size_t n, double a) { snprintf(buf, n, "%g", a); }

static int parse_int(const char *s, long lo, long hi, int *out)
{
    if (!*s) return 0;
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (*e || errno || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

/* allow_nan: "nan" accepted. */
static int parse_num(const char *s, int allow_nan, double *out)
{
    if (!*s) return 0;
    char *e;
    double v = strtod(s, &e);
    if (*e) return 0;
    if (isnan(v) ? !allow_nan : !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* A JSON field as text: strings as they are, numbers %g, arrays of those
 * joined with ", ", null as "—"; NULL when absent or another kind. */
static const char *json_text(const cJSON *v, char *buf, size_t n)
{
    if (!v) return NULL;
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsNull(v)) return "—";
    if (cJSON_IsNumber(v)) {
        snprintf(buf, n, "%g", v->valuedouble);
        return buf;
    }
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? "true" : "false";
    if (cJSON_IsArray(v)) {
        size_t o = 0;
        buf[0] = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, v)
        {
            char one[64];
            if (cJSON_IsString(e)) snprintf(one, sizeof one, "%s", e->valuestring);
            else if (cJSON_IsNumber(e)) snprintf(one, sizeof one, "%g", e->valuedouble);
            else continue;
            int k = snprintf(buf + o, n - o, "%s%s", o ? ", " : "", one);
            if (k < 0 || (size_t)k >= n - o) {
                if (n > 4) snprintf(buf + n - 4, 4, "…");
                break;
            }
            o += (size_t)k;
        }
        return buf;
    }
    return NULL;
}

static double json_num(const cJSON *o, const char *key)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* ---------------------------------------------------------------- a sweep, read through the table API */

/* A finished sweep as the report shows it. Ownership: tab and the arrays
 * are owned; the strings point into tab. */
typedef struct {
    steer_sweep_table *tab;
    const steer_sweep_params *p;
    steer_sweep_info info;
    double wall_s;
    char base[256], ft[256]; /* model names (dkl.csv's base, ft columns)  */
    int n_sites, n_layers, n_alphas, K; /* K: the last token any item has  */
    int n_items;
    const char *sites[STEER_SITE_COUNT];
    const int *layers;  /* [n_layers] the sweep's (ascending)               */
    double *alphas;     /* [n_alphas] ascending, as dkl.csv writes them     */
    double *mean, *se;  /* [n_sites][n_layers][n_alphas][K]; NaN: no item  */
    int *n;             /* same shape; -1: no item                          */
} sweep_view;

static size_t sv_idx(const sweep_view *t, int s, int l, int a, int k)
{
    return (((size_t)s * (size_t)t->n_layers + (size_t)l) * (size_t)t->n_alphas + (size_t)a) * (size_t)t->K +
           (size_t)k;
}

static void sweep_view_free(sweep_view *t)
{
    steer_sweep_table_free(t->tab);
    free(t->alphas);
    free(t->mean);
    free(t->se);
    free(t->n);
    memset(t, 0, sizeof *t);
}

/* v as dkl.csv writes it ("%.9g") and reads back. */
static double as_written(double v)
{
    char b[40];
    snprintf(b, sizeof b, "%.9g", v);
    return strtod(b, NULL);
}

/* An α as the sweep's files write it (the shortest decimal that reads back
 * to the float) and read back as a double. */
static double alpha_as_written(float a)
{
    char b[32] = "0";
    for (int p = 1; p <= 9; p++) {
        snprintf(b, sizeof b, "%.*g", p, (double)a);
        if (strtof(b, NULL) == a) break;
    }
    return strtod(b, NULL);
}

static int sweep_view_load(const char *dir, sweep_view *t)
{
    memset(t, 0, sizeof *t);
    int rc = steer_sweep_table_read(dir, &t->tab);
    if (rc) return rc;
    const steer_sweep_params *p = t->p = steer_sweep_table_params(t->tab);
    steer_sweep_table_info(t->tab, &t->info, &t->wall_s);
    steer_sweep_model_name(t->info.base_path, t->base, sizeof t->base);
    steer_sweep_model_name(t->info.ft_path, t->ft, sizeof t->ft);
    t->n_sites = p->n_sites;
    t->n_layers = p->n_layers;
    t->n_alphas = p->n_alphas;
    t->n_items = steer_sweep_table_count(t->tab);
    t->layers = p->layers;
    for (int s = 0; s < p->n_sites; s++) t->sites[s] = steer_site_name(p->sites[s]);

    /* α ascending (the sweep keeps the order it was given). */
    int order[STEER_SWEEP_MAX_ALPHAS];
    t->alphas = malloc((size_t)p->n_alphas * sizeof *t->alphas);
    if (!t->alphas) {
        sweep_view_free(t);
        return steer_err(STEER_ENOMEM, "%s: out of memory", dir);
    }
    for (int a = 0; a < p->n_alphas; a++) {
        int j = a;
        double v = alpha_as_written(p->alphas[a]);
        while (j > 0 && t->alphas[j - 1] > v) {
            t->alphas[j] = t->alphas[j - 1];
            order[j] = order[j - 1];
            j--;
        }
        t->alphas[j] = v;
        order[j] = a;
    }
    /* K: the last token with any item (an item may have fewer than the
     * sweep's K tokens). */
    for (int k = p->tokens - 1; k >= 0 && !t->K; k--)
        for (int c = 0; c < p->n_sites * p->n_layers * p->n_alphas && !t->K; c++) {
            int n;
            steer_sweep_table_cell(t->tab, c / (p->n_layers * p->n_alphas), c / p->n_alphas % p->n_layers,
                                   c % p->n_alphas, k, NULL, NULL, &n);
            if (n > 0) t->K = k + 1;
        }
    if (t->K == 0) {
        sweep_view_free(t);
        return steer_err(STEER_EFORMAT, "%s/items.csv: no items with results", dir);
    }
    size_t cells = (size_t)t->n_sites * (size_t)t->n_layers * (size_t)t->n_alphas * (size_t)t->K;
    t->mean = malloc(cells * sizeof *t->mean);
    t->se = malloc(cells * sizeof *t->se);
    t->n = malloc(cells * sizeof *t->n);
    if (!t->mean || !t->se || !t->n) {
        sweep_view_free(t);
        return steer_err(STEER_ENOMEM, "%s: out of memory", dir);
    }
    for (int s = 0; s < t->n_sites; s++)
        for (int l = 0; l < t->n_layers; l++)
            for (int a = 0; a < t->n_alphas; a++)
                for (int k = 0; k < t->K; k++) {
                    double m, se;
                    int n;
                    steer_sweep_table_cell(t->tab, s, l, order[a], k, &m, &se, &n);
                    size_t j = sv_idx(t, s, l, a, k);
                    t->mean[j] = n > 0 ? as_written(m) : NAN;
                    t->se[j] = n > 0 ? as_written(se) : NAN;
                    t->n[j] = n > 0 ? n : -1;
                }
    return STEER_OK;
}

/* "base → ft (N items)" */
static void models_text(const sweep_view *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s → %s (%d item%s)", t->base, t->ft, t->n_items, t->n_items == 1 ? "" : "s");
}

/* The most negative ΔKL of site s (over layers, alphas, tokens); -1 if none. */
/* Means over fewer than SMALL_N items are marked with a dagger and a note
 * under their table says so (issue 22: accuracies at n = 8 read like results). */
#define SMALL_N 30
#define SMALL_N_MARK " †"
static void small_n_note(doc *d, int any_small)
{
    if (any_small)
        doc_paraf(d, "†: fewer than %d items — a mean of so few items is a rough estimate (see its standard error).",
                  SMALL_N);
}

static long best_cell(const sweep_view *t, int s)
{
    long best = -1;
    for (int l = 0; l < t->n_layers; l++)
        for (int a = 0; a < t->n_alphas; a++)
            for (int k = 0; k < t->K; k++) {
                size_t j = sv_idx(t, s, l, a, k);
                if (isfinite(t->mean[j]) && (best < 0 || t->mean[j] < t->mean[best])) best = (long)j;
            }
    return best;
}

/* ---------------------------------------------------------------- figures */

static int site_figures(const char *dir, const sweep_view *t, int s)
{
    const int L = t->n_layers, A = t->n_alphas, K = t->K;
    char path[PATH_MAX], name[RP_NAME_MAX + 32], models[600], title[1024];
    models_text(t, models, sizeof models);
    double *xs = malloc((size_t)L * sizeof *xs), *ys = malloc((size_t)K * A * L * sizeof *ys);
    double *zero = calloc((size_t)L, sizeof *zero), *z = malloc((size_t)K * L * sizeof *z);
    double *es = malloc((size_t)K * A * L * sizeof *es); /* standard errors: error bars */
    plot_series *ser = calloc((size_t)K * (A + 1), sizeof *ser);
    plot_panel *pan = calloc((size_t)K, sizeof *pan);
    char(*alabel)[32] = calloc((size_t)A, sizeof *alabel);
    char(*ptitle)[32] = calloc((size_t)K, sizeof *ptitle);
    char(*xt)[16] = calloc((size_t)L, sizeof *xt);
    char(*yt)[16] = calloc((size_t)K, sizeof *yt);
    const char **xtp = calloc((size_t)L, sizeof *xtp), **ytp = calloc((size_t)K, sizeof *ytp);
    int rc = STEER_OK;
    if (!xs || !ys || !es || !zero || !z || !ser || !pan || !alabel || !ptitle || !xt || !yt || !xtp || !ytp) {
        rc = steer_err(STEER_ENOMEM, "%s: out of memory drawing figures", dir);
        goto end;
    }
    for (int l = 0; l < L; l++) xs[l] = t->layers[l];
    for (int a = 0; a < A; a++) {
        char v[24];
        fmt_alpha(v, sizeof v, t->alphas[a]);
        snprintf(alabel[a], sizeof alabel[a], "α = %s", v);
    }

    /* ΔKL vs layer: a panel per token, a line per α, a dashed zero line. */
    for (int k = 0; k < K; k++) {
        for (int a = 0; a < A; a++) {
            double *y = ys + ((size_t)k * A + a) * L, *e = es + ((size_t)k * A + a) * L;
            for (int l = 0; l < L; l++) {
                y[l] = t->mean[sv_idx(t, s, l, a, k)];
                e[l] = t->se[sv_idx(t, s, l, a, k)];
            }
            ser[k * (A + 1) + a] =
                (plot_series){.label = alabel[a], .x = xs, .y = y, .n = L, .markers = 1, .yerr = e};
        }
        ser[k * (A + 1) + A] = (plot_series){.x = xs, .y = zero, .n = L, .color = 8, .dashed = 1};
        snprintf(ptitle[k], sizeof ptitle[k], "token %d", k + 1);
        pan[k] = (plot_panel){.title = ptitle[k], .xlabel = "layer", .ylabel = "ΔKL (nats)", .series = ser + k * (A + 1),
                              .n_series = A + 1};
    }
    snprintf(title, sizeof title, "ΔKL vs layer at %s — %s", t->sites[s], models);
    int cols = K <= 5 ? K : K <= 10 ? (K + 1) / 2 : 0;
    plot_figure fig = {.title = title, .share_y = 1, .share_x = 1, .legend = PLOT_LEGEND_FIGURE, .cols = cols,
                       .x_int_ticks = 1};
    if (cols > 0) fig.width = cols * 340 < 640 ? 640 : cols * 340;
    snprintf(name, sizeof name, "dkl_%s", t->sites[s]);
    if (!rc) rc = plot_write_pair(dir, name, &fig, pan, K);

    /* Heat map at the largest α: rows = tokens (1 at the top), columns = layers. */
    double zmax = 0;
    for (int k = 0; k < K; k++)
        for (int l = 0; l < L; l++) {
            double v = t->mean[sv_idx(t, s, l, A - 1, k)];
            z[(size_t)k * L + l] = v;
            if (isfinite(v)) zmax = fmax(zmax, fabs(v));
        }
    for (int l = 0; l < L; l++) {
        snprintf(xt[l], sizeof xt[l], "%d", t->layers[l]);
        xtp[l] = xt[l];
    }
    for (int k = 0; k < K; k++) {
        snprintf(yt[k], sizeof yt[k], "%d", k + 1);
        ytp[k] = yt[k];
    }
    char av[24];
    fmt_alpha(av, sizeof av, t->alphas[A - 1]);
    snprintf(title, sizeof title, "ΔKL at α = %s, %s — %s", av, t->sites[s], models);
    plot_heatmap h = {.title = title, .xlabel = "layer", .ylabel = "token", .zlabel = "ΔKL (nats)", .nx = L, .ny = K,
                      .z = z, .xticks = xtp, .yticks = ytp, .cmap = PLOT_CMAP_DIVERGING, .values = 1,
                      .value_fmt = zmax >= 10 ? "%.1f" : zmax >= 1 ? "%.2f" : zmax >= 0.01 ? "%.3f" : "%.1e"};
    for (int e = 0; e < 2 && !rc; e++) {
        snprintf(name, sizeof name, "heatmap_%s.%s", t->sites[s], e ? "svg" : "png");
        if (!(rc = join_path(path, sizeof path, dir, name))) rc = plot_heatmap_write(path, &h);
    }
end:
    free(xs);
    free(ys);
    free(zero);
    free(es);
    free(z);
    free(ser);
    free(pan);
    free(alabel);
    free(ptitle);
    free(xt);
    free(yt);
    free(xtp);
    free(ytp);
    return rc;
}

static int view_figures(const char *dir, const sweep_view *t)
{
    int rc = STEER_OK;
    for (int s = 0; s < t->n_sites && !rc; s++) rc = site_figures(dir, t, s);
    return rc;
}

int steer_sweep_figures(const char *dir)
{
    /* Ownership: borrows dir; writes the figure files into it. */
    if (!dir || !*dir) return steer_err(STEER_EARG, "steer_sweep_figures: empty directory name");
    sweep_view t;
    int rc = sweep_view_load(dir, &t);
    if (rc) return rc;
    rc = view_figures(dir, &t);
    sweep_view_free(&t);
    return rc;
}

/* ---------------------------------------------------------------- sweep section */

/* The HTML background of a table cell of value v on a diverging scale ±zmax
 * (-1: none, for a missing value). */
static int cell_bg(double v, double zmax)
{
    if (!isfinite(v)) return -1;
    double rgb[3];
    plot_cmap_color(PLOT_CMAP_DIVERGING, v, -zmax, zmax, rgb);
    return (int)lround(rgb[0] * 255) << 16 | (int)lround(rgb[1] * 255) << 8 | (int)lround(rgb[2] * 255);
}

/* "a, b, c" of the n items that fmt writes (stops before buf is full). */
static void sweep_settings(doc *d, const sweep_view *t)
{
    char buf[4096];
    const steer_sweep_params *p = t->p;
    snprintf(buf, sizeof buf, "%s (%s)", t->base, t->info.base_path);
    doc_setting(d, "base model B", buf);
    snprintf(buf, sizeof buf, "%s (%s)", t->ft, t->info.ft_path);
    doc_setting(d, "fine-tuned model F", buf);
    doc_setting(d, "architecture", *t->info.arch ? t->info.arch : NULL);
    snprintf(buf, sizeof buf, "%d", t->info.n_layers);
    doc_setting(d, "layers in the model", buf);
    snprintf(buf, sizeof buf, "%d", t->info.d_model);
    doc_setting(d, "d_model", buf);
    doc_setting(d, "data", t->info.data);
    snprintf(buf, sizeof buf, "%d", t->n_items);
    doc_setting(d, "items", buf);
    doc_setting(d, "continuation", steer_sweep_cont_name(p->continuation));
    doc_setting(d, "steered positions", steer_sweep_pos_name(p->positions));
    doc_setting(d, "δ taken at site (null: each site's own)",
                p->delta_site >= 0 ? steer_site_name((steer_site)p->delta_site) : "—");
    if (p->shard_count > 1) snprintf(buf, sizeof buf, "%d/%d", p->shard_index, p->shard_count);
    doc_setting(d, "shard", p->shard_count > 1 ? buf : "—");
    snprintf(buf, sizeof buf, "%g", t->wall_s);
    doc_setting(d, "wall time (s)", buf);
    size_t o = 0;
    buf[0] = 0;
    for (int s = 0; s < t->n_sites && o < sizeof buf - RP_NAME_MAX - 4; s++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", s ? ", " : "", t->sites[s]);
    doc_setting(d, "sites", buf);
    o = 0;
    buf[0] = 0;
    for (int l = 0; l < t->n_layers && o < sizeof buf - 32; l++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%d", l ? ", " : "", t->layers[l]);
    doc_setting(d, "layers swept", buf);
    o = 0;
    buf[0] = 0;
    for (int a = 0; a < t->n_alphas && o < sizeof buf - 32; a++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%g", a ? ", " : "", t->alphas[a]);
    doc_setting(d, "α grid", buf);
    snprintf(buf, sizeof buf, "%d", t->K);
    doc_setting(d, "generated tokens K", buf);
    o = 0;
    buf[0] = 0;
    for (int k = 0; k < p->tokens && o <= sizeof buf - 64; k++) {
        char v[32];
        double m;
        steer_sweep_table_kl_base(t->tab, k, &m, NULL);
        fmt_num(v, sizeof v, m);
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%stoken %d: %s", k ? ", " : "", k + 1, v);
    }
    doc_setting(d, "KL(B ‖ F) mean per token (nats)", buf);
}

static int section_sweep(doc *d, const char *dir)
{
    sweep_view t;
    int rc = sweep_view_load(dir, &t);
    if (rc) return rc;
    char path[PATH_MAX], buf[4096], name[RP_NAME_MAX + 32], models[600], id[RP_NAME_MAX + 32];
    const int L = t.n_layers, A = t.n_alphas, K = t.K;

    /* Figures the directory lacks are drawn first. */
    int missing = 0;
    for (int s = 0; s < t.n_sites && !rc; s++) {
        snprintf(name, sizeof name, "dkl_%s.png", t.sites[s]);
        if (!(rc = join_path(path, sizeof path, dir, name))) missing |= !file_exists(path);
        snprintf(name, sizeof name, "heatmap_%s.png", t.sites[s]);
        if (!rc && !(rc = join_path(path, sizeof path, dir, name))) missing |= !file_exists(path);
    }
    if (!rc && missing) rc = view_figures(dir, &t);
    if (rc) goto end;

    models_text(&t, models, sizeof models);
    snprintf(buf, sizeof buf, "ΔKL sweep: %s", models);
    doc_section_begin(d, buf, dir);

    doc_heading(d, 3, "Settings", NULL);
    static const char *const kv[] = {"setting", "value"};
    doc_table(d, "settings", 2, "ll", kv, 1);
    sweep_settings(d, &t);
    doc_para(d, "Sweep command:");
    doc_code(d, t.info.command);

    /* Best cell per site. */
    doc_heading(d, 3, "Best cell per site", NULL);
    doc_para(d, "The most negative mean ΔKL over layers, α and tokens (negative = the steered base model is closer "
                "to F).");
    static const char *const best_head[] = {"site", "layer", "α", "token", "ΔKL mean", "se", "n"};
    doc_table(d, NULL, 7, "lrrrrrr", best_head, 0);
    int small = 0;
    for (int s = 0; s < t.n_sites; s++) {
        long j = best_cell(&t, s);
        doc_row(d);
        doc_cell(d, 0, t.sites[s]);
        if (j < 0) {
            doc_cell_opt o = {.bg = -1, .colspan = 6, .md_span = "–"};
            doc_cell_ex(d, &o, "no finite values");
            continue;
        }
        int k = (int)(j % K), a = (int)(j / K % A), l = (int)(j / K / A % L);
        char m[32], se[32], av[24];
        fmt_num(m, sizeof m, t.mean[j]);
        fmt_num(se, sizeof se, t.se[j]);
        fmt_alpha(av, sizeof av, t.alphas[a]);
        doc_cellf(d, 0, "%d", t.layers[l]);
        doc_cell(d, 0, av);
        doc_cellf(d, 0, "%d", k + 1);
        doc_cellf(d, 0, "%s%s", m, t.n[j] < SMALL_N ? SMALL_N_MARK : "");
        doc_cell(d, 0, se);
        doc_cellf(d, 0, "%d", t.n[j]);
        small |= t.n[j] < SMALL_N;
    }
    small_n_note(d, small);

    /* Per site: figures and the table at the largest α. */
    char av[24];
    fmt_alpha(av, sizeof av, t.alphas[A - 1]);
    for (int s = 0; s < t.n_sites && !rc; s++) {
        const char *site = t.sites[s];
        snprintf(id, sizeof id, "s%d-%s", doc_section_index(d), site);
        doc_heading(d, 3, site, id);
        snprintf(name, sizeof name, "dkl_%s.png", site);
        snprintf(buf, sizeof buf, "ΔKL vs layer at %s, a panel per generated token, a line per α (bars: ±1 s.e.)",
                 site);
        if ((rc = doc_figure(d, dir, name, buf))) break;
        snprintf(name, sizeof name, "heatmap_%s.png", site);
        snprintf(buf, sizeof buf, "ΔKL at α = %s by layer and token at %s (blue: closer to F)", av, site);
        if ((rc = doc_figure(d, dir, name, buf))) break;

        long best = best_cell(&t, s);
        double zmax = 0;
        for (int l = 0; l < L; l++)
            for (int k = 0; k < K; k++) {
                double v = t.mean[sv_idx(&t, s, l, A - 1, k)];
                if (isfinite(v)) zmax = fmax(zmax, fabs(v));
            }
        int dec = table_decimals(zmax);
        doc_paraf(d, "Mean ΔKL (nats) at α = %s by layer (rows) and generated token (columns); bold: the site's best "
                     "cell if it is at this α.", av);
        char(*head)[24] = calloc((size_t)K + 1, sizeof *head);
        const char **hp = calloc((size_t)K + 1, sizeof *hp);
        char *align = malloc((size_t)K + 2);
        if (!head || !hp || !align) {
            free(head);
            free(hp);
            free(align);
            rc = steer_err(STEER_ENOMEM, "report: out of memory");
            break;
        }
        snprintf(head[0], sizeof head[0], "layer");
        for (int k = 0; k < K; k++) snprintf(head[k + 1], sizeof head[k + 1], "token %d", k + 1);
        for (int k = 0; k <= K; k++) {
            hp[k] = head[k];
            align[k] = 'r';
        }
        align[K + 1] = 0;
        doc_table(d, "grid", K + 1, align, hp, 0);
        free(head);
        free(hp);
        free(align);
        int small_cells = 0;
        for (int l = 0; l < L; l++) {
            doc_row(d);
            doc_cellf(d, DOC_TH, "%d", t.layers[l]);
            for (int k = 0; k < K; k++) {
                size_t j = sv_idx(&t, s, l, A - 1, k);
                char m[40], se[32], title[80];
                fmt_fixed(m, sizeof m, t.mean[j], dec);
                if (isfinite(t.mean[j]) && t.n[j] < SMALL_N) {
                    strcat(m, SMALL_N_MARK);
                    small_cells = 1;
                }
                fmt_num(se, sizeof se, t.se[j]);
                snprintf(title, sizeof title, "se %s, n %d", se, t.n[j] < 0 ? 0 : t.n[j]);
                doc_cell_opt o = {.flags = (long)j == best ? DOC_BOLD : 0, .bg = cell_bg(t.mean[j], zmax),
                                  .title = title};
                doc_cell_ex(d, &o, m);
            }
        }
        small_n_note(d, small_cells);
    }
    if (!rc) doc_section_end(d);
end:
    sweep_view_free(&t);
    return rc;
}

/* ---------------------------------------------------------------- MLP analysis section (SPEC E2) */
/* BEGIN mlp analysis section (steer analyze-mlp; src/exp/mlp_analysis.c, docs/ANALYSIS.md) */

/* mlp_stats.csv as a table (checked line by line). */
static int mlp_stats_table(doc *d, const char *path)
{
    static const char header[] = "model,layer,quantity,n,mean,median,p90,p99,share_below_1e-3";
    char *text = NULL;
    int rc = io_read_text(path, &text, NULL);
    if (rc) return rc;
    static const char *const head[] = {"model", "layer", "term", "n", "mean", "median", "p90", "p99", "share < 1e-3"};
    doc_table(d, NULL, 9, "lrlrrrrrr", head, 0);
    int line = 0, rows = 0;
    char *cur = text, *ln;
    size_t len;
    while (!rc && (ln = text_next_line(&cur, &len))) {
        line++;
        if (line == 1) {
            if (strcmp(ln, header) != 0) rc = steer_err(STEER_EFORMAT, "%s:1: header is not '%s'", path, header);
            continue;
        }
        if (!len) continue;
        char *f[10];
        int nf = csv_split(ln, f, 10), layer = 0, n = 0;
        double v[5];
        if (nf != 9 || !parse_int(f[1], 0, 1000000, &layer) || (strcmp(f[2], "g1") && strcmp(f[2], "g2")) ||
            !parse_int(f[3], 0, INT_MAX, &n)) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: malformed row", path, line);
            break;
        }
        for (int k = 0; k < 5 && !rc; k++)
            if (!parse_num(f[4 + k], 1, &v[k])) rc = steer_err(STEER_EFORMAT, "%s:%d: field %d is not a number", path, line, 5 + k);
        if (rc) break;
        doc_row(d);
        doc_cell(d, 0, f[0]);
        doc_cellf(d, 0, "%d", layer);
        doc_cell(d, 0, strcmp(f[2], "g1") == 0 ? "|g1| = |φ'(a_g)⊙a_u|" : "|g2| = |φ(a_g)|");
        doc_cellf(d, 0, "%d", n);
        for (int k = 0; k < 5; k++) {
            char c[32];
            fmt_num(c, sizeof c, v[k]);
            doc_cell(d, 0, c);
        }
        rows++;
    }
    free(text);
    if (!rc && rows == 0) rc = steer_err(STEER_EFORMAT, "%s: no rows", path);
    return rc;
}

static int section_mlp(doc *d, const char *dir)
{
    char path[PATH_MAX], buf[2048];
    int rc;
    cJSON *sum = NULL;
    steer_mlp_att *att = NULL;
    int n_att = 0;
    /* Everything is read before anything is added. */
    if ((rc = join_path(path, sizeof path, dir, "attenuation.csv"))) return rc;
    if (file_exists(path) && (rc = steer_mlp_read_attenuation(path, &att, &n_att))) return rc;
    if (!(rc = join_path(path, sizeof path, dir, "mlp_summary.json")) && file_exists(path)) {
        char *text = NULL;
        if (!(rc = io_read_text(path, &text, NULL))) {
            sum = cJSON_Parse(text);
            free(text);
            if (!cJSON_IsObject(sum)) rc = steer_err(STEER_EFORMAT, "%s: not a JSON object", path);
        }
    }
    if (rc) goto end;

    /* Models, from the summary (else none in the title). */
    char models[512] = "", title[600];
    const cJSON *ms = sum ? cJSON_GetObjectItemCaseSensitive(sum, "models") : NULL, *e;
    size_t o = 0;
    cJSON_ArrayForEach(e, ms)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (cJSON_IsString(nm) && o < sizeof models - 140)
            o += (size_t)snprintf(models + o, sizeof models - o, "%s%s", o ? " vs " : "", nm->valuestring);
    }
    snprintf(title, sizeof title, "MLP modulation and attenuation (E2)%s%s", *models ? ": " : "", models);
    doc_section_begin(d, title, dir);

    doc_heading(d, 3, "Settings", NULL);
    static const char *const kv[] = {"setting", "value"};
    doc_table(d, "settings", 2, "ll", kv, 1);
    cJSON_ArrayForEach(e, ms)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *pth = cJSON_GetObjectItemCaseSensitive(e, "path");
        const cJSON *ar = cJSON_GetObjectItemCaseSensitive(e, "arch"), *ac = cJSON_GetObjectItemCaseSensitive(e, "act");
        const cJSON *ni = cJSON_GetObjectItemCaseSensitive(e, "n_items"), *np = cJSON_GetObjectItemCaseSensitive(e, "n_positions");
        const cJSON *sk = cJSON_GetObjectItemCaseSensitive(e, "n_skipped");
        if (!cJSON_IsString(nm)) continue;
        snprintf(buf, sizeof buf, "%s%s(%s, φ = %s); %d items (%d skipped), %d positions",
                 cJSON_IsString(pth) ? pth->valuestring : "", cJSON_IsString(pth) ? " " : "",
                 cJSON_IsString(ar) ? ar->valuestring : "?", cJSON_IsString(ac) ? ac->valuestring : "?",
                 cJSON_IsNumber(ni) ? ni->valueint : 0, cJSON_IsNumber(sk) ? sk->valueint : 0,
                 cJSON_IsNumber(np) ? np->valueint : 0);
        char key[160];
        snprintf(key, sizeof key, "model %s", nm->valuestring);
        doc_setting(d, key, buf);
    }
    if (sum) {
        static const char *const keys[][2] = {{"data", "data"}, {"token", "position (completion token; all: every one)"},
                                              {"layers", "layers"}, {"vectors", "steering vectors"},
                                              {"sites", "shift sites"}};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            doc_setting(d, keys[i][1], json_text(cJSON_GetObjectItemCaseSensitive(sum, keys[i][0]), buf, sizeof buf));
    }
    const cJSON *cmd = sum ? cJSON_GetObjectItemCaseSensitive(sum, "command") : NULL;
    if (cJSON_IsString(cmd)) {
        doc_para(d, "Command:");
        doc_code(d, cmd->valuestring);
    }

    /* Modulation terms. */
    doc_heading(d, 3, "GLU modulation terms", NULL);
    doc_para(d, "g1 = φ'(a_g)⊙a_u scales the gated path of a shift, g2 = φ(a_g) the un-gated one; values near 0 "
                "switch a unit's path off.");
    if ((rc = join_path(path, sizeof path, dir, "mlp_hist.png"))) goto end;
    if (file_exists(path) &&
        (rc = doc_figure(d, dir, "mlp_hist.png", "Histograms of |g1| and |g2| per layer on shared log bins, a line per model")))
        goto end;
    if ((rc = join_path(path, sizeof path, dir, "mlp_stats.csv")) || (rc = mlp_stats_table(d, path))) goto end;

    /* Attenuation. */
    if (n_att > 0) {
        doc_heading(d, 3, "Attenuation of the steering vectors", NULL);
        doc_para(d, "Stages: the pre-MLP norm, W_g/W_u, the gate (φ), W_d (and the post-ffn norm of Gemma 2/3). Per "
                    "stage two gains of the first-order shift (geometric means over positions; bold: below 1): of its "
                    "norm, ‖Δout‖/‖Δin‖, and relative to the activation it rides on, (‖Δout‖/‖out‖)/(‖Δin‖/‖in‖). The "
                    "norm stage is the identity at mlp_in. Stage by stage numbers: attenuation.csv and the lines "
                    "below.");
        if ((rc = join_path(path, sizeof path, dir, "attenuation.png"))) goto end;
        if (file_exists(path) &&
            (rc = doc_figure(d, dir, "attenuation.png",
                             "Stage gains per layer (top: of the shift's norm; bottom: relative to the activation), a "
                             "column per model and shift site")))
            goto end;
        static const char *const head[] = {"model", "site", "layer", "‖δ‖", "‖Δ̂‖/‖δ‖", "‖ΔMLP‖/‖Δ̂‖",
                                           "lin. error α=1", "α=0.125", "alignment", "norm shrinks most in",
                                           "loses most relative to the activation in"};
        doc_table(d, NULL, 11, "llrrrrrrrll", head, 0);
        for (int i = 0; i < n_att; i++) {
            const steer_mlp_att *a = &att[i];
            const double v[] = {a->delta, a->norm_ratio, a->mlp_gain, a->linerr[0], a->linerr[STEER_MLP_N_ALPHAS - 1],
                                a->align};
            doc_row(d);
            doc_cell(d, 0, a->model);
            doc_cell(d, 0, steer_site_name(a->site));
            doc_cellf(d, 0, "%d", a->layer);
            for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
                char c[32];
                fmt_num(c, sizeof c, v[k]);
                doc_cell(d, 0, c);
            }
            for (int rel = 0; rel < 2; rel++) {
                const int w = steer_mlp_att_weakest(a, rel);
                const double g = w < 0 ? NAN : rel ? a->gain[w] : a->abs_gain[w];
                char c[64];
                if (w < 0) snprintf(c, sizeof c, "–");
                else snprintf(c, sizeof c, "%s ×%.2f", steer_mlp_stage_name(w), g);
                doc_cell(d, DOC_LEFT | (g < 1 ? DOC_BOLD : 0), c);
            }
        }
        doc_heading(d, 3, "Where the pre-MLP signal loses most", NULL);
        for (int i = 0; i < n_att; i++) {
            steer_mlp_att_describe(&att[i], buf, sizeof buf);
            doc_item(d, buf);
        }
    }
    doc_section_end(d);
end:
    cJSON_Delete(sum);
    free(att);
    return rc;
}

/* END mlp analysis section */

/* ---------------------------------------------------------------- icl section (steer icl, SPEC E3) */

/* A steer icl directory: summary_icl.json (required; the numbers) and the
 * figures kl_to_icl.png and recovery_by_layer.png (docs/ICL.md). */
static int section_icl(doc *d, const char *dir)
{
    char path[PATH_MAX], buf[4096];
    int rc = join_path(path, sizeof path, dir, "summary_icl.json");
    if (rc) return rc;
    if (!file_exists(path)) return steer_err(STEER_EIO, "%s: missing (icl.csv without its summary)", path);
    io_map m;
    if ((rc = io_map_open(path, &m))) return rc;
    cJSON *js = cJSON_ParseWithLength((const char *)m.data, m.size);
    io_map_close(&m);
    const cJSON *fmt = js ? cJSON_GetObjectItemCaseSensitive(js, "format") : NULL;
    const cJSON *ms = js ? cJSON_GetObjectItemCaseSensitive(js, "methods") : NULL;
    if (!js || !cJSON_IsObject(js) || !cJSON_IsString(fmt) || strncmp(fmt->valuestring, "steer-icl/", 10) != 0 ||
        !cJSON_IsObject(ms)) {
        cJSON_Delete(js);
        return steer_err(STEER_EFORMAT, "%s: not an icl summary (format steer-icl/1 with \"methods\")", path);
    }
    for (int i = 0; i < 2 && !rc; i++) {
        static const char *const figs[2] = {"kl_to_icl.png", "recovery_by_layer.png"};
        if (!(rc = join_path(path, sizeof path, dir, figs[i])) && !file_exists(path))
            rc = steer_err(STEER_EIO, "%s: missing (run steer icl again)", path);
    }
    if (rc) {
        cJSON_Delete(js);
        return rc;
    }
    const char *model = json_text(cJSON_GetObjectItemCaseSensitive(js, "model"), buf, sizeof buf);
    char title[600];
    snprintf(title, sizeof title, "In-context learning as pre-MLP steering (E3): %s, %g shots", model ? model : "?",
             json_num(js, "shots"));
    doc_section_begin(d, title, dir);

    doc_heading(d, 3, "Settings", NULL);
    static const char *const kv[] = {"setting", "value"};
    doc_table(d, "settings", 2, "ll", kv, 1);
    static const char *const keys[][2] = {
        {"model_path", "model"}, {"arch", "architecture"}, {"data", "queries"}, {"pool", "demonstrations from"},
        {"shots", "shots"}, {"max_shot_tokens", "max tokens per shot (0: any)"}, {"demonstrations", "demonstration ids"},
        {"context_tokens", "context tokens |C|"}, {"score", "KL positions"}, {"alpha", "α"},
        {"n_eval", "held-out queries"}, {"n_train", "training queries"}, {"n_skipped_too_long", "queries skipped (too long)"},
        {"kv_bytes", "KV cache of C (bytes)"}, {"vec_bytes", "vectors L·d (bytes)"}, {"memory_ratio", "memory ratio"},
        {"exact_max_abs", "(a) max |Δlogit|, every layer patched"}, {"wall_s", "wall time (s)"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        doc_setting(d, keys[i][1], json_text(cJSON_GetObjectItemCaseSensitive(js, keys[i][0]), buf, sizeof buf));
    const cJSON *lo = cJSON_GetObjectItemCaseSensitive(js, "learn");
    if (cJSON_IsObject(lo)) {
        snprintf(buf, sizeof buf, "%g updates, batch %g, lr %g; objective %.4f → %.4f", json_num(lo, "steps"),
                 json_num(lo, "batch"), json_num(lo, "lr"), json_num(lo, "loss_before"), json_num(lo, "loss_after"));
        doc_setting(d, "(d) learned compression", buf);
    }
    const char *cmd = json_text(cJSON_GetObjectItemCaseSensitive(js, "command"), buf, sizeof buf);
    if (cmd) doc_code(d, cmd);

    /* Methods table. */
    doc_heading(d, 3, "KL to the ICL run and accuracy (held-out queries)", NULL);
    static const char *const mhead[] = {"method", "KL(· ‖ ICL) mean", "se", "accuracy", "format"};
    doc_table(d, NULL, 5, "lrrrr", mhead, 0);
    static const char *const mk[][2] = {{"zero_shot", "zero-shot (q alone)"}, {"icl", "ICL (C ⊕ q)"},
                                        {"patched_all", "(a) attn_out patched at every layer"},
                                        {"mean_delta", "(c) q + α·mean Δ_A"}, {"learned", "(d) q + learned vectors"}};
    const double n_eval = json_num(js, "n_eval");
    const int small = isfinite(n_eval) && n_eval < SMALL_N;
    for (size_t i = 0; i < sizeof mk / sizeof mk[0]; i++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(ms, mk[i][0]);
        if (!cJSON_IsObject(o)) continue;
        static const char *const f[] = {"kl_mean", "kl_se", "acc", "format"};
        doc_row(d);
        doc_cell(d, DOC_LEFT, mk[i][1]);
        for (int k = 0; k < 4; k++) {
            char c[32];
            fmt_num(c, sizeof c, json_num(o, f[k]));
            doc_cellf(d, 0, "%s%s", c, small && k != 1 ? SMALL_N_MARK : "");
        }
    }
    small_n_note(d, small);
    if ((rc = doc_figure(d, dir, "kl_to_icl.png", "KL(method ‖ ICL) by scored position, held-out queries"))) goto end;

    /* Layers. */
    doc_heading(d, 3, "One layer's attn_out from the ICL run", NULL);
    static const char *const lhead[] = {"layer", "KL(patched ‖ ICL)", "recovery", "‖Δ_A‖"};
    doc_table(d, NULL, 4, "rrrr", lhead, 0);
    const cJSON *ly = cJSON_GetObjectItemCaseSensitive(js, "layers"), *o;
    cJSON_ArrayForEach(o, ly)
    {
        static const char *const f[] = {"kl_patch_mean", "recovery", "delta_norm"};
        doc_row(d);
        doc_cellf(d, 0, "%g", json_num(o, "layer"));
        for (int k = 0; k < 3; k++) {
            char c[32];
            fmt_num(c, sizeof c, json_num(o, f[k]));
            doc_cell(d, 0, c);
        }
    }
    if ((rc = doc_figure(d, dir, "recovery_by_layer.png", "KL to ICL and recovery with one layer's attn_out patched")))
        goto end;
    doc_section_end(d);
end:
    cJSON_Delete(js);
    return rc;
}

/* ---------------------------------------------------------------- adapt study (SPEC E4) */

/* steer study adapt: DIR/summary.json (steer_adapt_summary_read) → the table
 * of methods and the accuracy-vs-parameters figure. */
static int section_adapt(doc *d, const char *dir)
{
    char path[PATH_MAX], buf[1024];
    int rc = join_path(path, sizeof path, dir, "summary.json");
    if (rc) return rc;
    if (!file_exists(path)) return steer_err(STEER_EIO, "%s: missing (acc_vs_params.png without its summary)", path);
    steer_adapt_summary *s = NULL;
    if ((rc = steer_adapt_summary_read(dir, &s))) return rc;
    snprintf(buf, sizeof buf, "Learned steering against weight updates (E4): %s", s->task);
    doc_section_begin(d, buf, dir);
    static const char *const kv[] = {"setting", "value"};
    doc_table(d, "settings", 2, "ll", kv, 1);
    doc_setting(d, "model", s->model);
    doc_setting(d, "task", s->task);
    snprintf(buf, sizeof buf, "%g", (double)s->seed);
    doc_setting(d, "seed", buf);
    const struct {
        const char *key;
        int v;
    } ints[] = {{"updates per run", s->steps}, {"batch", s->batch}, {"training items", s->n_train},
                {"validation items", s->n_val}, {"test items", s->n_test}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        snprintf(buf, sizeof buf, "%d", ints[i].v);
        doc_setting(d, ints[i].key, buf);
    }
    doc_setting(d, "learning-rate sweep", s->lr_sweep ? "true" : "false");

    static const char *const head[] = {"method", "site", "rank", "lr", "trainable", "share",
                                       "val acc", "test acc", "test loss", "format"};
    doc_table(d, NULL, 10, "llrrrrrrrr", head, 0);
    for (int i = -1; i < s->n_rows; i++) {
        const steer_adapt_row *r = i < 0 ? &s->untrained : &s->rows[i];
        doc_row(d);
        doc_cell(d, DOC_LEFT, r->method[0] ? r->method : "?");
        if (i < 0) {
            static const char *const fixed[] = {"-", "-", "-", "0", "0"};
            for (int k = 0; k < 5; k++) doc_cell(d, 0, fixed[k]);
        } else {
            doc_cell(d, 0, r->site[0] ? r->site : "-");
            doc_cellf(d, 0, "%g", (double)r->rank);
            doc_cellf(d, 0, "%g", r->lr);
            doc_cellf(d, 0, "%.0f", (double)r->trainable);
            doc_cellf(d, 0, "%.4f%%", 100 * r->share);
        }
        const double v[] = {r->val_acc, r->test_acc, r->test_loss, r->test_format};
        for (int k = 0; k < 4; k++) {
            char c[32];
            fmt_num(c, sizeof c, v[k]);
            doc_cell(d, 0, c);
        }
    }
    free(s);
    if ((rc = doc_figure(d, dir, "acc_vs_params.png", "test accuracy against trainable parameters (log scale)")))
        return rc;
    doc_section_end(d);
    return STEER_OK;
}

/* ---------------------------------------------------------------- kinds of results */

/* A kind of results a directory can hold: found by its marker file, added by
 * its section function (which builds its part of the document and returns a
 * status; it may read anything in dir). A directory holding several kinds
 * gets a section for each, in table order. A new kind is one more row. */
/* ---------------------------------------------------------------- steering tune section (issue 22) */

/* One row of tune.csv as the report needs it. */
typedef struct {
    char vector[128], site[32];
    int layer, n;
    double scale, ld, se, share, kl, ppl;
} tune_row;

static double csv_double(const char *f) { return *f ? strtod(f, NULL) : NAN; }

static int section_tune(doc *d, const char *dir)
{
    char path[PATH_MAX], buf[4096];
    int rc = join_path(path, sizeof path, dir, "tune_summary.json");
    if (rc) return rc;
    char *text = NULL;
    if ((rc = io_read_text(path, &text, NULL))) return rc;
    cJSON *js = cJSON_Parse(text);
    free(text);
    const cJSON *fmt = js ? cJSON_GetObjectItemCaseSensitive(js, "format") : NULL;
    if (!cJSON_IsObject(js) || !cJSON_IsString(fmt) || strncmp(fmt->valuestring, "steer-tune/", 11) != 0) {
        cJSON_Delete(js);
        return steer_err(STEER_EFORMAT, "%s: not a tune summary (format steer-tune/1)", path);
    }
    /* tune.csv: every cell */
    tune_row *rows = NULL;
    int n = 0, cap = 0, line = 0;
    if (!(rc = join_path(path, sizeof path, dir, "tune.csv"))) rc = io_read_text(path, &text, NULL);
    char *cur = rc ? NULL : text, *ln;
    while (!rc && (ln = text_next_line(&cur, NULL))) {
        if (++line == 1 || !*ln) continue;
        char *f[16];
        if (csv_split(ln, f, 16) != 13) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: not 13 fields", path, line);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            tune_row *nr = realloc(rows, (size_t)cap * sizeof *nr);
            if (!nr) {
                rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
                break;
            }
            rows = nr;
        }
        tune_row *r = &rows[n++];
        snprintf(r->vector, sizeof r->vector, "%s", f[0]);
        snprintf(r->site, sizeof r->site, "%s", f[1]);
        r->layer = atoi(f[2]);
        r->scale = csv_double(f[3]);
        r->n = atoi(f[4]);
        r->ld = csv_double(f[5]);
        r->se = csv_double(f[6]);
        r->share = csv_double(f[7]);
        r->kl = csv_double(f[9]);
        r->ppl = csv_double(f[11]);
    }
    if (!rc) free(text);
    if (rc) goto end;

    const double budget = json_num(js, "kl_budget");
    const char *model = json_text(cJSON_GetObjectItemCaseSensitive(js, "model"), buf, sizeof buf);
    char title[700];
    snprintf(title, sizeof title, "Steering tune: %s", model ? model : "?");
    doc_section_begin(d, title, dir);
    doc_heading(d, 3, "Settings", NULL);
    static const char *const kv[] = {"setting", "value"};
    doc_table(d, "settings", 2, "ll", kv, 1);
    static const char *const keys[][2] = {{"model", "model"},       {"data", "A/B items"},
                                          {"n_items", "items"},     {"neutral", "neutral texts (KL)"},
                                          {"n_neutral", "neutral texts"}, {"ppl_on", "perplexity on"},
                                          {"positions", "A/B positions steered"}, {"kl_budget", "KL budget (nats/position)"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        doc_setting(d, keys[i][1], json_text(cJSON_GetObjectItemCaseSensitive(js, keys[i][0]), buf, sizeof buf));
    const char *cmd = json_text(cJSON_GetObjectItemCaseSensitive(js, "command"), buf, sizeof buf);
    if (cmd) doc_code(d, cmd);

    const cJSON *un = cJSON_GetObjectItemCaseSensitive(js, "unsteered"), *rec = cJSON_GetObjectItemCaseSensitive(js, "recommended");
    doc_paraf(d, "Unsteered: mean logit difference (positive − negative) %.4f, share of items preferring the positive "
                 "completion %.3f%s.", json_num(un, "logit_diff_mean"), json_num(un, "share_positive"),
              n > 0 && rows[0].n < SMALL_N ? SMALL_N_MARK : "");
    if (cJSON_IsObject(rec)) {
        char v[256];
        snprintf(v, sizeof v, "%s", json_text(cJSON_GetObjectItemCaseSensitive(rec, "vector"), buf, sizeof buf));
        doc_paraf(d, "Recommended (the largest mean logit difference with KL within %g): %s at %s, layer %g, scale "
                     "%g — logit difference %.4f, share > 0 %.3f, KL %.4f.", budget, v,
                  json_text(cJSON_GetObjectItemCaseSensitive(rec, "site"), buf, sizeof buf), json_num(rec, "layer"),
                  json_num(rec, "scale"), json_num(rec, "logit_diff_mean"), json_num(rec, "share_positive"),
                  json_num(rec, "kl_mean"));
    } else
        doc_paraf(d, "No cell has a KL within the budget %g: smaller scales or a larger budget.", budget);

    /* Per (vector, site, layer): the best scale within the budget. */
    doc_heading(d, 3, "Best scale per layer within the KL budget", NULL);
    static const char *const head[] = {"vector", "site", "layer", "scale", "logit diff", "se", "share > 0", "KL", "ppl"};
    doc_table(d, NULL, 9, "llrrrrrrr", head, 0);
    int small = 0;
    for (int i = 0; i < n; i++) {
        int first = 1, best = -1;
        for (int k = 0; k < i; k++)
            if (!strcmp(rows[k].vector, rows[i].vector) && !strcmp(rows[k].site, rows[i].site) && rows[k].layer == rows[i].layer)
                first = 0;
        if (!first) continue;
        for (int k = i; k < n; k++) {
            const tune_row *r = &rows[k];
            if (strcmp(r->vector, rows[i].vector) || strcmp(r->site, rows[i].site) || r->layer != rows[i].layer) continue;
            if (isfinite(r->kl) && isfinite(budget) && r->kl > budget) continue;
            if (best < 0 || r->ld > rows[best].ld) best = k;
        }
        doc_row(d);
        doc_cell(d, DOC_LEFT, rows[i].vector);
        doc_cell(d, DOC_LEFT, rows[i].site);
        doc_cellf(d, 0, "%d", rows[i].layer);
        if (best < 0) {
            doc_cell_opt o = {.bg = -1, .colspan = 6, .md_span = "–"};
            doc_cell_ex(d, &o, "none within the budget");
            continue;
        }
        const tune_row *r = &rows[best];
        char c[64];
        doc_cellf(d, 0, "%g", r->scale);
        fmt_num(c, sizeof c, r->ld);
        doc_cellf(d, 0, "%s%s", c, r->n < SMALL_N ? SMALL_N_MARK : "");
        small |= r->n < SMALL_N;
        fmt_num(c, sizeof c, r->se);
        doc_cell(d, 0, c);
        doc_cellf(d, 0, "%.3f", r->share);
        fmt_num(c, sizeof c, r->kl);
        doc_cell(d, 0, c);
        fmt_num(c, sizeof c, r->ppl);
        doc_cell(d, 0, c);
    }
    small_n_note(d, small);
    static const char *const figs[][2] = {{"tune_logit_diff.png", "mean logit difference vs scale, a line per layer"},
                                          {"tune_kl.png", "KL(steered ‖ unsteered) on the neutral texts vs scale"},
                                          {"tune_ppl.png", "perplexity vs scale"}};
    for (size_t i = 0; i < 3 && !rc; i++) {
        if ((rc = join_path(path, sizeof path, dir, figs[i][0]))) break;
        if (file_exists(path)) rc = doc_figure(d, dir, figs[i][0], figs[i][1]);
    }
    if (!rc) doc_section_end(d);
end:
    free(rows);
    cJSON_Delete(js);
    return rc;
}

typedef struct {
    const char *marker; /* file whose presence identifies the kind */
    int (*section)(doc *d, const char *dir);
} report_kind;

static const report_kind report_kinds[] = {
    {"dkl.csv", section_sweep},
    {"mlp_stats.csv", section_mlp},       /* steer analyze-mlp (SPEC E2) */
    {"icl.csv", section_icl},             /* steer icl (SPEC E3) */
    {"acc_vs_params.png", section_adapt}, /* steer study adapt (SPEC E4) */
    {"tune_summary.json", section_tune},  /* steer tune (issue 22) */
};
static const int n_report_kinds = (int)(sizeof report_kinds / sizeof report_kinds[0]);

static int dir_kinds(const char *dir, int *found)
{
    struct stat st;
    if (stat(dir, &st) != 0) return steer_err(STEER_EIO, "%s: no such directory", dir);
    if (!S_ISDIR(st.st_mode)) return steer_err(STEER_EIO, "%s: not a directory", dir);
    int any = 0;
    for (int i = 0; i < n_report_kinds; i++) {
        char path[PATH_MAX];
        int rc = join_path(path, sizeof path, dir, report_kinds[i].marker);
        if (rc) return rc;
        found[i] = file_exists(path);
        any |= found[i];
    }
    if (!any) {
        char list[512];
        size_t o = 0;
        list[0] = 0;
        for (int i = 0; i < n_report_kinds && o < sizeof list - 64; i++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", report_kinds[i].marker);
        return steer_err(STEER_EFORMAT, "%s: no results found (none of %s)", dir, list);
    }
    return STEER_OK;
}

static int write_pair(const char *html_path, const sbuf *html, const char *md_path, const sbuf *md)
{
    char th[IO_TMP_PATH_MAX], tm[IO_TMP_PATH_MAX];
    FILE *fh = io_tmp_open(html_path, th);
    if (!fh) return STEER_EIO;
    FILE *fm = io_tmp_open(md_path, tm);
    if (!fm) {
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", steer_last_error());
        io_tmp_commit(fh, th, html_path, 0);
        return steer_err(STEER_EIO, "%s", keep);
    }
    int okh = fwrite(html->p, 1, html->n, fh) == html->n, okm = fwrite(md->p, 1, md->n, fm) == md->n;
    if (!okh || !okm) {
        steer_err(STEER_EIO, "%s: write failed: %s", okh ? md_path : html_path, strerror(errno));
        io_tmp_commit(fh, th, html_path, 0);
        io_tmp_commit(fm, tm, md_path, 0);
        return STEER_EIO;
    }
    int rc = io_tmp_commit(fm, tm, md_path, 1);
    if (rc) {
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", steer_last_error());
        io_tmp_commit(fh, th, html_path, 0);
        return steer_err(STEER_EIO, "%s", keep);
    }
    return io_tmp_commit(fh, th, html_path, 1);
}

int steer_report_write(const char *const *dirs, int n_dirs, const steer_report_params *p)
{
    /* Ownership: borrows everything; creates or replaces p->html_path and
     * p->md_path (and figures missing from sweep directories). */
    if (!dirs || n_dirs < 1 || !p || !p->html_path || !*p->html_path || !p->md_path || !*p->md_path)
        return steer_err(STEER_EARG, "steer_report_write: no directories or no output paths");
    int *found = calloc((size_t)n_dirs * (size_t)n_report_kinds, sizeof *found);
    doc *d = doc_new("steer report");
    sbuf html = {0}, md = {0};
    char md_dir[PATH_MAX];
    int rc = STEER_OK;
    if (!found || !d) {
        rc = steer_err(STEER_ENOMEM, "report: out of memory");
        goto end;
    }
    for (int i = 0; i < n_dirs && !rc; i++) rc = dir_kinds(dirs[i], found + (size_t)i * n_report_kinds);
    if (rc) goto end;

    /* The Markdown's directory, for relative image links. */
    {
        char dirpart[PATH_MAX];
        snprintf(dirpart, sizeof dirpart, "%s", p->md_path);
        char *sl = strrchr(dirpart, '/');
        if (!sl) snprintf(dirpart, sizeof dirpart, ".");
        else if (sl == dirpart) dirpart[1] = 0;
        else *sl = 0;
        if (!realpath(dirpart, md_dir)) {
            rc = steer_err(STEER_EIO, "%s: no such directory for %s", dirpart, p->md_path);
            goto end;
        }
    }

    if (p->command && *p->command) {
        doc_para(d, "Report made by:");
        doc_code(d, p->command);
    }
    for (int i = 0; i < n_dirs && !rc; i++)
        for (int k = 0; k < n_report_kinds && !rc; k++)
            if (found[(size_t)i * n_report_kinds + k]) rc = report_kinds[k].section(d, dirs[i]);
    if (rc || (rc = doc_ok(d)) || (rc = doc_render_html(d, &html)) || (rc = doc_render_md(d, md_dir, &md))) goto end;
    rc = write_pair(p->html_path, &html, p->md_path, &md);
end:
    sb_free(&html);
    sb_free(&md);
    doc_free(d);
    free(found);
    return rc;
}

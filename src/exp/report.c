/*
 * report.c — sweep figures and the HTML/Markdown report (report.h).
 *
 * Reading: dkl.csv is parsed into a dense table [site][layer][alpha][token]
 * (sites in order of first appearance, layers and alphas ascending, tokens
 * 1 … K; cells without a row are NaN). summary.json is optional and only
 * supplies titles and settings.
 *
 * Writing: figures go through plot.c. The report is assembled in memory (two
 * text buffers) by one section function per kind of directory content (the
 * report_kinds table at the end), then both files are written through
 * temporary files and renamed, so bad input leaves nothing behind.
 */
#include "steer_exp.h"
#include "report.h"
#include "plot.h"

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

#ifndef IO_TMP_PATH_MAX
#define IO_TMP_PATH_MAX 4096 /* the tmp_path size io_tmp_open needs (io_mmap.c) */
#endif

#define RP_NAME_MAX 64   /* longest site name + 1                          */
#define RP_LINE_MAX 8192 /* longest dkl.csv line                           */
#define RP_MAX_SITES 64

static const char dkl_header[] = "base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n";

/* ---------------------------------------------------------------- text buffer */

/* HTML text: & < > " escaped. */
static void sb_html(sbuf *b, const char *s)
{
    for (; s && *s; s++) switch (*s) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        default: sb_put(b, s, 1);
        }
}

/* Markdown table cell / inline text: | and ` and newlines made harmless. */
static void sb_md(sbuf *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|') sb_puts(b, "\\|");
        else if (*s == '\n' || *s == '\r') sb_puts(b, " ");
        else sb_put(b, s, 1);
    }
}

static void sb_base64(sbuf *b, const unsigned char *d, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4];
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
        out[0] = tab[v >> 18];
        out[1] = tab[(v >> 12) & 63];
        out[2] = tab[(v >> 6) & 63];
        out[3] = tab[v & 63];
        sb_put(b, out, 4);
    }
    if (i < n) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0);
        out[0] = tab[v >> 18];
        out[1] = tab[(v >> 12) & 63];
        out[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[3] = '=';
        sb_put(b, out, 4);
    }
}

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

/* ---------------------------------------------------------------- dkl.csv */

/* A sweep directory's results. Ownership: every pointer is owned. */
typedef struct {
    char *base, *ft; /* model names (first row)                            */
    int n_sites, n_layers, n_alphas, K;
    char (*sites)[RP_NAME_MAX]; /* [n_sites], order of first appearance    */
    int *layers;                /* [n_layers] ascending                    */
    double *alphas;             /* [n_alphas] ascending                    */
    double *mean, *se;          /* [n_sites][n_layers][n_alphas][K]; NaN: no row */
    int *n;                     /* same shape; -1: no row                  */
    int n_max;                  /* largest n of any row                    */
    cJSON *summary;             /* summary.json, or NULL when absent       */
} sweep_table;

static size_t st_idx(const sweep_table *t, int s, int l, int a, int k)
{
    return (((size_t)s * (size_t)t->n_layers + (size_t)l) * (size_t)t->n_alphas + (size_t)a) * (size_t)t->K +
           (size_t)k;
}

static void sweep_table_free(sweep_table *t)
{
    free(t->base);
    free(t->ft);
    free(t->sites);
    free(t->layers);
    free(t->alphas);
    free(t->mean);
    free(t->se);
    free(t->n);
    cJSON_Delete(t->summary);
    memset(t, 0, sizeof *t);
}

typedef struct {
    int site, layer, token, n, line;
    double alpha, mean, se;
} dkl_row;

/* Splits line (modified in place) into fields at commas; a field may be
 * "quoted" with "" for a quote. Returns the field count, or -1 for a bad
 * quote. */
static int csv_split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return max + 1;
        if (*p == '"') {
            char *w = ++p;
            f[n++] = w;
            for (;;) {
                if (!*p) return -1;
                if (*p == '"') {
                    if (p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
            *w = 0;
            if (*p == 0) return n;
            if (*p != ',') return -1;
            p++;
        } else {
            f[n++] = p;
            char *c = strchr(p, ',');
            if (!c) return n;
            *c = 0;
            p = c + 1;
        }
    }
}

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

/* allow_nan: "nan" accepted (a standard error of one item). */
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

static int valid_site(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= RP_NAME_MAX) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int find_int(const int *v, int n, int x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x) return i;
    return -1;
}

static int find_double(const double *v, int n, double x)
{
    for (int i = 0; i < n; i++)
        if (v[i] == x) return i;
    return -1;
}

/* Parses the rows of path's mapped text into rows (grown), sites and the
 * models. */
static int dkl_parse_rows(const char *path, const char *text, size_t size, sweep_table *t, dkl_row **rows_out,
                          int *n_rows_out)
{
    char *line = malloc(RP_LINE_MAX + 1);
    dkl_row *rows = NULL;
    int n_rows = 0, cap = 0, rc = STEER_OK, lineno = 0;
    if (!line) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    t->sites = calloc(RP_MAX_SITES, sizeof *t->sites);
    if (!t->sites) {
        free(line);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    size_t pos = 0;
    while (pos < size && !rc) {
        const char *nl = memchr(text + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (text + pos)) : size - pos;
        lineno++;
        if (len > RP_LINE_MAX) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: line longer than %d bytes", path, lineno, RP_LINE_MAX);
            break;
        }
        memcpy(line, text + pos, len);
        pos += len + (nl ? 1 : 0);
        if (len && line[len - 1] == '\r') len--;
        line[len] = 0;
        if (memchr(line, 0, len)) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: NUL byte in the line", path, lineno);
            break;
        }
        if (lineno == 1) {
            if (strcmp(line, dkl_header) != 0)
                rc = steer_err(STEER_EFORMAT, "%s:1: header is not \"%s\"", path, dkl_header);
            continue;
        }
        if (len == 0) {
            if (pos >= size) break; /* final newline */
            rc = steer_err(STEER_EFORMAT, "%s:%d: empty line", path, lineno);
            break;
        }
        char *f[9];
        int nf = csv_split(line, f, 9);
        if (nf != 9) {
            rc = nf < 0 ? steer_err(STEER_EFORMAT, "%s:%d: unterminated or misplaced quote", path, lineno)
                        : steer_err(STEER_EFORMAT, "%s:%d: expected 9 fields (%s), found %s%d", path, lineno,
                                    dkl_header, nf > 9 ? "more than " : "", nf > 9 ? 9 : nf);
            break;
        }
        dkl_row r = {.line = lineno};
        if (!valid_site(f[2])) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: bad site name \"%.64s\"", path, lineno, f[2]);
            break;
        }
        if (!parse_int(f[3], 0, 1000000, &r.layer)) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: layer \"%.64s\" is not an integer >= 0", path, lineno, f[3]);
            break;
        }
        if (!parse_num(f[4], 0, &r.alpha)) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: alpha \"%.64s\" is not a finite number", path, lineno, f[4]);
            break;
        }
        if (!parse_int(f[5], 1, 100000, &r.token)) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: token \"%.64s\" is not an integer >= 1", path, lineno, f[5]);
            break;
        }
        if (!parse_num(f[6], 1, &r.mean) || !parse_num(f[7], 1, &r.se)) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: dkl_mean \"%.64s\" or dkl_se \"%.64s\" is not a number", path, lineno,
                           f[6], f[7]);
            break;
        }
        if (!parse_int(f[8], 0, INT_MAX, &r.n)) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: n \"%.64s\" is not an integer >= 0", path, lineno, f[8]);
            break;
        }
        if (!t->base) {
            t->base = strdup(f[0]);
            t->ft = strdup(f[1]);
            if (!t->base || !t->ft) {
                rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
                break;
            }
        } else if (strcmp(t->base, f[0]) != 0 || strcmp(t->ft, f[1]) != 0) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: models \"%.64s\", \"%.64s\" differ from line 2's (one pair per file)",
                           path, lineno, f[0], f[1]);
            break;
        }
        int s = 0;
        while (s < t->n_sites && strcmp(t->sites[s], f[2]) != 0) s++;
        if (s == t->n_sites) {
            if (t->n_sites == RP_MAX_SITES) {
                rc = steer_err(STEER_EFORMAT, "%s:%d: more than %d sites", path, lineno, RP_MAX_SITES);
                break;
            }
            snprintf(t->sites[t->n_sites++], RP_NAME_MAX, "%s", f[2]);
        }
        r.site = s;
        if (n_rows == cap) {
            int nc = cap ? cap * 2 : 256;
            dkl_row *nr = realloc(rows, (size_t)nc * sizeof *rows);
            if (!nr) {
                rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
                break;
            }
            rows = nr;
            cap = nc;
        }
        rows[n_rows++] = r;
    }
    free(line);
    if (!rc && lineno == 0) rc = steer_err(STEER_EFORMAT, "%s: empty file (no header)", path);
    if (!rc && n_rows == 0) rc = steer_err(STEER_EFORMAT, "%s: no data rows", path);
    if (rc) {
        free(rows);
        return rc;
    }
    *rows_out = rows;
    *n_rows_out = n_rows;
    return STEER_OK;
}

/* Reads dir/dkl.csv (required) and dir/summary.json (optional) into t. */
static int sweep_table_load(const char *dir, sweep_table *t)
{
    memset(t, 0, sizeof *t);
    char path[PATH_MAX];
    int rc = join_path(path, sizeof path, dir, "dkl.csv");
    if (rc) return rc;
    io_map m;
    if ((rc = io_map_open(path, &m))) return rc;
    dkl_row *rows = NULL;
    int n_rows = 0;
    rc = dkl_parse_rows(path, (const char *)m.data, m.size, t, &rows, &n_rows);
    io_map_close(&m);
    if (rc) {
        sweep_table_free(t);
        return rc;
    }

    /* Distinct layers and alphas (sorted), K = the largest token. */
    t->layers = malloc((size_t)n_rows * sizeof *t->layers);
    t->alphas = malloc((size_t)n_rows * sizeof *t->alphas);
    if (!t->layers || !t->alphas) {
        rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < n_rows; i++) {
        if (find_int(t->layers, t->n_layers, rows[i].layer) < 0) t->layers[t->n_layers++] = rows[i].layer;
        if (find_double(t->alphas, t->n_alphas, rows[i].alpha) < 0) t->alphas[t->n_alphas++] = rows[i].alpha;
        if (rows[i].token > t->K) t->K = rows[i].token;
        if (rows[i].n > t->n_max) t->n_max = rows[i].n;
    }
    qsort(t->layers, (size_t)t->n_layers, sizeof *t->layers, cmp_int);
    qsort(t->alphas, (size_t)t->n_alphas, sizeof *t->alphas, cmp_double);
    size_t cells = (size_t)t->n_sites * (size_t)t->n_layers * (size_t)t->n_alphas * (size_t)t->K;
    if (cells > ((size_t)1 << 26)) {
        rc = steer_err(STEER_EFORMAT, "%s: %d sites x %d layers x %d alphas x %d tokens is too many cells", path,
                       t->n_sites, t->n_layers, t->n_alphas, t->K);
        goto fail;
    }
    t->mean = malloc(cells * sizeof *t->mean);
    t->se = malloc(cells * sizeof *t->se);
    t->n = malloc(cells * sizeof *t->n);
    if (!t->mean || !t->se || !t->n) {
        rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < cells; i++) {
        t->mean[i] = t->se[i] = NAN;
        t->n[i] = -1;
    }
    for (int i = 0; i < n_rows; i++) {
        const dkl_row *r = &rows[i];
        size_t j = st_idx(t, r->site, find_int(t->layers, t->n_layers, r->layer),
                          find_double(t->alphas, t->n_alphas, r->alpha), r->token - 1);
        if (t->n[j] >= 0) {
            char a[32];
            fmt_alpha(a, sizeof a, r->alpha);
            rc = steer_err(STEER_EFORMAT, "%s:%d: duplicate row for site %s, layer %d, alpha %s, token %d", path,
                           r->line, t->sites[r->site], r->layer, a, r->token);
            goto fail;
        }
        t->mean[j] = r->mean;
        t->se[j] = r->se;
        t->n[j] = r->n;
    }
    free(rows);
    rows = NULL;

    /* summary.json: optional. */
    if ((rc = join_path(path, sizeof path, dir, "summary.json"))) goto fail;
    if (file_exists(path)) {
        if ((rc = io_map_open(path, &m))) goto fail;
        t->summary = cJSON_ParseWithLength((const char *)m.data, m.size);
        io_map_close(&m);
        if (!t->summary || !cJSON_IsObject(t->summary)) {
            rc = steer_err(STEER_EFORMAT, "%s: not a JSON object", path);
            goto fail;
        }
        const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(t->summary, "format");
        if (cJSON_IsString(fmt) && strncmp(fmt->valuestring, "steer-sweep/", 12) != 0) {
            rc = steer_err(STEER_EFORMAT, "%s: format \"%.64s\" is not a sweep summary (steer-sweep/1)", path,
                           fmt->valuestring);
            goto fail;
        }
    }
    return STEER_OK;
fail:
    free(rows);
    sweep_table_free(t);
    return rc;
}

/* ---------------------------------------------------------------- summary fields */

static const cJSON *sum_get(const sweep_table *t, const char *key)
{
    return t->summary ? cJSON_GetObjectItemCaseSensitive(t->summary, key) : NULL;
}

static const char *sum_str(const sweep_table *t, const char *key)
{
    const cJSON *v = sum_get(t, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Items in the sweep: summary's n_items, else the largest n in dkl.csv. */
static int sweep_items(const sweep_table *t)
{
    const cJSON *v = sum_get(t, "n_items");
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9) return (int)v->valuedouble;
    return t->n_max;
}

/* "base → ft (N items)" */
static void models_text(const sweep_table *t, char *buf, size_t n)
{
    int items = sweep_items(t);
    snprintf(buf, n, "%s → %s (%d item%s)", t->base, t->ft, items, items == 1 ? "" : "s");
}

/* The most negative ΔKL of site s (over layers, alphas, tokens); -1 if none. */
static long best_cell(const sweep_table *t, int s)
{
    long best = -1;
    for (int l = 0; l < t->n_layers; l++)
        for (int a = 0; a < t->n_alphas; a++)
            for (int k = 0; k < t->K; k++) {
                size_t j = st_idx(t, s, l, a, k);
                if (isfinite(t->mean[j]) && (best < 0 || t->mean[j] < t->mean[best])) best = (long)j;
            }
    return best;
}

/* ---------------------------------------------------------------- figures */

static int site_figures(const char *dir, const sweep_table *t, int s)
{
    const int L = t->n_layers, A = t->n_alphas, K = t->K;
    char path[PATH_MAX], name[RP_NAME_MAX + 32], models[512], title[1024];
    models_text(t, models, sizeof models);
    double *xs = malloc((size_t)L * sizeof *xs), *ys = malloc((size_t)K * A * L * sizeof *ys);
    double *zero = calloc((size_t)L, sizeof *zero), *z = malloc((size_t)K * L * sizeof *z);
    plot_series *ser = calloc((size_t)K * (A + 1), sizeof *ser);
    plot_panel *pan = calloc((size_t)K, sizeof *pan);
    char(*alabel)[32] = calloc((size_t)A, sizeof *alabel);
    char(*ptitle)[32] = calloc((size_t)K, sizeof *ptitle);
    char(*xt)[16] = calloc((size_t)L, sizeof *xt);
    char(*yt)[16] = calloc((size_t)K, sizeof *yt);
    const char **xtp = calloc((size_t)L, sizeof *xtp), **ytp = calloc((size_t)K, sizeof *ytp);
    int rc = STEER_OK;
    if (!xs || !ys || !zero || !z || !ser || !pan || !alabel || !ptitle || !xt || !yt || !xtp || !ytp) {
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
            double *y = ys + ((size_t)k * A + a) * L;
            for (int l = 0; l < L; l++) y[l] = t->mean[st_idx(t, s, l, a, k)];
            ser[k * (A + 1) + a] = (plot_series){.label = alabel[a], .x = xs, .y = y, .n = L, .markers = 1};
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
            double v = t->mean[st_idx(t, s, l, A - 1, k)];
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

int report_sweep_figures(const char *dir)
{
    /* Ownership: borrows dir; writes the figure files into it. */
    if (!dir || !*dir) return steer_err(STEER_EARG, "report_sweep_figures: empty directory name");
    sweep_table t;
    int rc = sweep_table_load(dir, &t);
    for (int s = 0; s < t.n_sites && !rc; s++) rc = site_figures(dir, &t, s);
    sweep_table_free(&t);
    return rc;
}

/* ---------------------------------------------------------------- report document */

/* The report being assembled. Ownership: html and md own their text. */
typedef struct {
    sbuf html, md;
    char md_dir[PATH_MAX]; /* canonical directory of the Markdown file */
    int n_sections;        /* sections so far (for unique HTML ids)    */
} report_doc;

/* out = to (canonical absolute) relative to from_dir (canonical absolute). */
static void rel_path(const char *from_dir, const char *to, char *out, size_t n)
{
    size_t common = 0, i = 0;
    for (; from_dir[i] && to[i] && from_dir[i] == to[i]; i++)
        if (to[i] == '/') common = i + 1;
    if (!from_dir[i] && (to[i] == '/' || !to[i])) common = i + (to[i] == '/');
    if (strcmp(from_dir, "/") == 0) common = 1;
    size_t o = 0;
    out[0] = 0;
    /* One "../" per component of from_dir after the common prefix. */
    for (const char *p = from_dir + common; *p;) {
        if (o + 4 < n) {
            memcpy(out + o, "../", 3);
            o += 3;
        }
        const char *sl = strchr(p, '/');
        if (!sl) break;
        p = sl + 1;
    }
    out[o] = 0;
    snprintf(out + o, n - o, "%s", to + common);
}

/* Embeds dir/file as an <img> and links it from the Markdown. */
static int doc_figure(report_doc *d, const char *dir, const char *file, const char *alt)
{
    char path[PATH_MAX], real[PATH_MAX], rel[PATH_MAX];
    int rc = join_path(path, sizeof path, dir, file);
    if (rc) return rc;
    io_map m;
    if ((rc = io_map_open(path, &m))) return rc;
    sb_puts(&d->html, "<figure><img alt=\"");
    sb_html(&d->html, alt);
    sb_puts(&d->html, "\" src=\"data:image/png;base64,");
    sb_base64(&d->html, m.data, m.size);
    sb_puts(&d->html, "\"><figcaption>");
    sb_html(&d->html, alt);
    sb_puts(&d->html, " (<code>");
    sb_html(&d->html, file);
    sb_puts(&d->html, "</code>)</figcaption></figure>\n");
    io_map_close(&m);
    if (!realpath(path, real)) return steer_err(STEER_EIO, "%s: %s", path, strerror(errno));
    rel_path(d->md_dir, real, rel, sizeof rel);
    sb_puts(&d->md, "![");
    sb_md(&d->md, alt);
    sb_puts(&d->md, "](");
    sb_puts(&d->md, rel);
    sb_puts(&d->md, ")\n\n");
    return STEER_OK;
}

/* One settings row in both documents (value may be NULL: row skipped). */
static void doc_setting(report_doc *d, const char *key, const char *value)
{
    if (!value) return;
    sb_puts(&d->html, "<tr><th>");
    sb_html(&d->html, key);
    sb_puts(&d->html, "</th><td>");
    sb_html(&d->html, value);
    sb_puts(&d->html, "</td></tr>\n");
    sb_puts(&d->md, "| ");
    sb_md(&d->md, key);
    sb_puts(&d->md, " | ");
    sb_md(&d->md, value);
    sb_puts(&d->md, " |\n");
}

/* A summary field as text: strings as they are, numbers %g, arrays of those
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

/* ---------------------------------------------------------------- sweep section */

static void table_cell_style(sbuf *b, double v, double zmax)
{
    if (!isfinite(v)) return;
    double rgb[3];
    plot_cmap_color(PLOT_CMAP_DIVERGING, v, -zmax, zmax, rgb);
    sb_printf(b, " style=\"background:#%02x%02x%02x\"", (int)lround(rgb[0] * 255), (int)lround(rgb[1] * 255),
              (int)lround(rgb[2] * 255));
}

static int section_sweep(report_doc *d, const char *dir)
{
    sweep_table t;
    int rc = sweep_table_load(dir, &t);
    if (rc) return rc;
    char path[PATH_MAX], buf[4096], name[RP_NAME_MAX + 32], models[512];
    const int L = t.n_layers, A = t.n_alphas, K = t.K;

    /* Figures the directory lacks are drawn first. */
    int missing = 0;
    for (int s = 0; s < t.n_sites && !rc; s++) {
        snprintf(name, sizeof name, "dkl_%s.png", t.sites[s]);
        if (!(rc = join_path(path, sizeof path, dir, name))) missing |= !file_exists(path);
        snprintf(name, sizeof name, "heatmap_%s.png", t.sites[s]);
        if (!rc && !(rc = join_path(path, sizeof path, dir, name))) missing |= !file_exists(path);
    }
    if (!rc && missing) rc = report_sweep_figures(dir);
    if (rc) goto end;

    models_text(&t, models, sizeof models);
    sb_puts(&d->html, "<section>\n<h2>ΔKL sweep: ");
    sb_html(&d->html, models);
    sb_puts(&d->html, "</h2>\n<p class=\"dir\">results in <code>");
    sb_html(&d->html, dir);
    sb_puts(&d->html, "</code></p>\n");
    sb_puts(&d->md, "## ΔKL sweep: ");
    sb_md(&d->md, models);
    sb_puts(&d->md, "\n\nResults in `");
    sb_md(&d->md, dir);
    sb_puts(&d->md, "`.\n\n");

    /* Settings. */
    sb_puts(&d->html, "<h3>Settings</h3>\n<table class=\"settings\">\n");
    sb_puts(&d->md, "### Settings\n\n| setting | value |\n|---|---|\n");
    const char *cmd = sum_str(&t, "command");
    {
        char tmp[64];
        const char *bp = sum_str(&t, "base_path"), *fp = sum_str(&t, "ft_path");
        snprintf(buf, sizeof buf, "%s%s%s%s", t.base, bp ? " (" : "", bp ? bp : "", bp ? ")" : "");
        doc_setting(d, "base model B", buf);
        snprintf(buf, sizeof buf, "%s%s%s%s", t.ft, fp ? " (" : "", fp ? fp : "", fp ? ")" : "");
        doc_setting(d, "fine-tuned model F", buf);
        static const char *const keys[][2] = {
            {"arch", "architecture"}, {"n_layers", "layers in the model"}, {"d_model", "d_model"},
            {"data", "data"},         {"n_items", "items"},               {"continuation", "continuation"},
            {"positions", "steered positions"}, {"delta_site", "δ taken at site (null: each site's own)"},
            {"shard", "shard"},       {"wall_s", "wall time (s)"},
        };
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const char *v = json_text(sum_get(&t, keys[i][0]), buf, sizeof buf);
            if (!v && strcmp(keys[i][0], "n_items") == 0) {
                snprintf(tmp, sizeof tmp, "%d (largest n in dkl.csv)", t.n_max);
                v = tmp;
            }
            doc_setting(d, keys[i][1], v);
        }
        size_t o = 0;
        buf[0] = 0;
        for (int s = 0; s < t.n_sites && o < sizeof buf - RP_NAME_MAX - 4; s++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", s ? ", " : "", t.sites[s]);
        doc_setting(d, "sites", buf);
        o = 0;
        buf[0] = 0;
        for (int l = 0; l < L && o < sizeof buf - 32; l++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%d", l ? ", " : "", t.layers[l]);
        doc_setting(d, "layers swept", buf);
        o = 0;
        buf[0] = 0;
        for (int a = 0; a < A && o < sizeof buf - 32; a++)
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%g", a ? ", " : "", t.alphas[a]);
        doc_setting(d, "α grid", buf);
        snprintf(buf, sizeof buf, "%d", K);
        doc_setting(d, "generated tokens K", buf);
        const cJSON *kb = sum_get(&t, "kl_base_mean");
        if (cJSON_IsArray(kb)) {
            o = 0;
            buf[0] = 0;
            int k = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, kb)
            {
                if (o > sizeof buf - 64) break;
                char v[32];
                fmt_num(v, sizeof v, cJSON_IsNumber(e) ? e->valuedouble : NAN);
                o += (size_t)snprintf(buf + o, sizeof buf - o, "%stoken %d: %s", k ? ", " : "", k + 1, v);
                k++;
            }
            doc_setting(d, "KL(B ‖ F) mean per token (nats)", buf);
        }
    }
    sb_puts(&d->html, "</table>\n");
    sb_puts(&d->md, "\n");
    if (cmd) {
        sb_puts(&d->html, "<p>Sweep command:</p>\n<pre>");
        sb_html(&d->html, cmd);
        sb_puts(&d->html, "</pre>\n");
        sb_puts(&d->md, "Sweep command:\n\n```\n");
        sb_puts(&d->md, cmd);
        sb_puts(&d->md, "\n```\n\n");
    }

    /* Best cell per site. */
    sb_puts(&d->html, "<h3>Best cell per site</h3>\n<p>The most negative mean ΔKL over layers, α and tokens "
                      "(negative = the steered base model is closer to F).</p>\n<table>\n"
                      "<tr><th>site</th><th>layer</th><th>α</th><th>token</th><th>ΔKL mean</th><th>se</th>"
                      "<th>n</th></tr>\n");
    sb_puts(&d->md, "### Best cell per site\n\nThe most negative mean ΔKL over layers, α and tokens (negative = "
                    "the steered base model is closer to F).\n\n| site | layer | α | token | ΔKL mean | se | n |\n"
                    "|---|---:|---:|---:|---:|---:|---:|\n");
    for (int s = 0; s < t.n_sites; s++) {
        long j = best_cell(&t, s);
        if (j < 0) {
            sb_printf(&d->html, "<tr><td>%s</td><td colspan=\"6\">no finite values</td></tr>\n", t.sites[s]);
            sb_printf(&d->md, "| %s | – | – | – | – | – | – |\n", t.sites[s]);
            continue;
        }
        int k = (int)(j % K), a = (int)(j / K % A), l = (int)(j / K / A % L);
        char m[32], se[32], av[24];
        fmt_num(m, sizeof m, t.mean[j]);
        fmt_num(se, sizeof se, t.se[j]);
        fmt_alpha(av, sizeof av, t.alphas[a]);
        sb_printf(&d->html, "<tr><td>%s</td><td>%d</td><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%d</td></tr>\n",
                  t.sites[s], t.layers[l], av, k + 1, m, se, t.n[j]);
        sb_printf(&d->md, "| %s | %d | %s | %d | %s | %s | %d |\n", t.sites[s], t.layers[l], av, k + 1, m, se, t.n[j]);
    }
    sb_puts(&d->html, "</table>\n");
    sb_puts(&d->md, "\n");

    /* Per site: figures and the table at the largest α. */
    char av[24];
    fmt_alpha(av, sizeof av, t.alphas[A - 1]);
    for (int s = 0; s < t.n_sites && !rc; s++) {
        const char *site = t.sites[s];
        sb_printf(&d->html, "<h3 id=\"s%d-%s\">%s</h3>\n", d->n_sections, site, site);
        sb_printf(&d->md, "### %s\n\n", site);
        snprintf(name, sizeof name, "dkl_%s.png", site);
        snprintf(buf, sizeof buf, "ΔKL vs layer at %s, a panel per generated token, a line per α", site);
        if ((rc = doc_figure(d, dir, name, buf))) break;
        snprintf(name, sizeof name, "heatmap_%s.png", site);
        snprintf(buf, sizeof buf, "ΔKL at α = %s by layer and token at %s (blue: closer to F)", av, site);
        if ((rc = doc_figure(d, dir, name, buf))) break;

        long best = best_cell(&t, s);
        double zmax = 0;
        for (int l = 0; l < L; l++)
            for (int k = 0; k < K; k++) {
                double v = t.mean[st_idx(&t, s, l, A - 1, k)];
                if (isfinite(v)) zmax = fmax(zmax, fabs(v));
            }
        int dec = table_decimals(zmax);
        sb_printf(&d->html, "<p>Mean ΔKL (nats) at α = %s by layer (rows) and generated token (columns); bold: "
                            "the site's best cell if it is at this α.</p>\n<table class=\"grid\">\n<tr><th>layer</th>",
                  av);
        sb_printf(&d->md, "Mean ΔKL (nats) at α = %s by layer (rows) and generated token (columns); bold: the "
                          "site's best cell if it is at this α.\n\n| layer |",
                  av);
        for (int k = 0; k < K; k++) {
            sb_printf(&d->html, "<th>token %d</th>", k + 1);
            sb_printf(&d->md, " token %d |", k + 1);
        }
        sb_puts(&d->html, "</tr>\n");
        sb_puts(&d->md, "\n|---:|");
        for (int k = 0; k < K; k++) sb_puts(&d->md, "---:|");
        sb_puts(&d->md, "\n");
        for (int l = 0; l < L; l++) {
            sb_printf(&d->html, "<tr><th>%d</th>", t.layers[l]);
            sb_printf(&d->md, "| %d |", t.layers[l]);
            for (int k = 0; k < K; k++) {
                size_t j = st_idx(&t, s, l, A - 1, k);
                char m[32], se[32];
                fmt_fixed(m, sizeof m, t.mean[j], dec);
                fmt_num(se, sizeof se, t.se[j]);
                int b = (long)j == best;
                sb_puts(&d->html, "<td");
                table_cell_style(&d->html, t.mean[j], zmax);
                sb_printf(&d->html, " title=\"se %s, n %d\">%s%s%s</td>", se, t.n[j] < 0 ? 0 : t.n[j], b ? "<b>" : "",
                          m, b ? "</b>" : "");
                sb_printf(&d->md, " %s%s%s |", b ? "**" : "", m, b ? "**" : "");
            }
            sb_puts(&d->html, "</tr>\n");
            sb_puts(&d->md, "\n");
        }
        sb_puts(&d->html, "</table>\n");
        sb_puts(&d->md, "\n");
    }
    sb_puts(&d->html, "</section>\n");
    d->n_sections++;
end:
    sweep_table_free(&t);
    return rc;
}

/* ---------------------------------------------------------------- MLP analysis section (SPEC E2) */
/* BEGIN mlp analysis section (steer analyze-mlp; src/mlp_analysis.c, docs/ANALYSIS.md) */

/* mlp_stats.csv as a table in both documents (checked line by line). */
static int mlp_stats_table(report_doc *d, const char *path)
{
    static const char header[] = "model,layer,quantity,n,mean,median,p90,p99,share_below_1e-3";
    char *text = NULL;
    int rc = io_read_text(path, &text, NULL);
    if (rc) return rc;
    sb_puts(&d->html, "<table>\n<tr><th>model</th><th>layer</th><th>term</th><th>n</th><th>mean</th><th>median</th>"
                      "<th>p90</th><th>p99</th><th>share &lt; 1e-3</th></tr>\n");
    sb_puts(&d->md, "| model | layer | term | n | mean | median | p90 | p99 | share < 1e-3 |\n"
                    "|---|---:|---|---:|---:|---:|---:|---:|---:|\n");
    int line = 0, rows = 0;
    char *save = NULL;
    for (char *ln = text; ln && !rc; ln = save) {
        char *nl = strchr(ln, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl) *nl = 0;
        line++;
        size_t len = strlen(ln);
        if (len && ln[len - 1] == '\r') ln[--len] = 0;
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
        const char *term = strcmp(f[2], "g1") == 0 ? "|g1| = |φ'(a_g)⊙a_u|" : "|g2| = |φ(a_g)|";
        char c[5][32];
        for (int k = 0; k < 5; k++) fmt_num(c[k], sizeof c[k], v[k]);
        sb_puts(&d->html, "<tr><td>");
        sb_html(&d->html, f[0]);
        sb_printf(&d->html, "</td><td>%d</td><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                            "<td>%s</td></tr>\n", layer, term, n, c[0], c[1], c[2], c[3], c[4]);
        sb_puts(&d->md, "| ");
        sb_md(&d->md, f[0]);
        sb_printf(&d->md, " | %d | ", layer);
        sb_md(&d->md, term);
        sb_printf(&d->md, " | %d | %s | %s | %s | %s | %s |\n", n, c[0], c[1], c[2], c[3], c[4]);
        rows++;
    }
    free(text);
    if (!rc && rows == 0) rc = steer_err(STEER_EFORMAT, "%s: no rows", path);
    sb_puts(&d->html, "</table>\n");
    sb_puts(&d->md, "\n");
    return rc;
}

static int section_mlp(report_doc *d, const char *dir)
{
    char path[PATH_MAX], buf[2048];
    int rc;
    cJSON *sum = NULL;
    steer_mlp_att *att = NULL;
    int n_att = 0;
    /* Everything is read before anything is appended. */
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

    /* Models, from the summary (else from the statistics). */
    char models[512] = "";
    const cJSON *ms = sum ? cJSON_GetObjectItemCaseSensitive(sum, "models") : NULL, *e;
    size_t o = 0;
    cJSON_ArrayForEach(e, ms)
    {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (cJSON_IsString(nm) && o < sizeof models - 140)
            o += (size_t)snprintf(models + o, sizeof models - o, "%s%s", o ? " vs " : "", nm->valuestring);
    }
    sb_puts(&d->html, "<section>\n<h2>MLP modulation and attenuation (E2)");
    sb_puts(&d->md, "## MLP modulation and attenuation (E2)");
    if (*models) {
        sb_puts(&d->html, ": ");
        sb_html(&d->html, models);
        sb_puts(&d->md, ": ");
        sb_md(&d->md, models);
    }
    sb_puts(&d->html, "</h2>\n<p class=\"dir\">results in <code>");
    sb_html(&d->html, dir);
    sb_puts(&d->html, "</code></p>\n");
    sb_puts(&d->md, "\n\nResults in `");
    sb_md(&d->md, dir);
    sb_puts(&d->md, "`.\n\n");

    sb_puts(&d->html, "<h3>Settings</h3>\n<table class=\"settings\">\n");
    sb_puts(&d->md, "### Settings\n\n| setting | value |\n|---|---|\n");
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
    sb_puts(&d->html, "</table>\n");
    sb_puts(&d->md, "\n");
    const cJSON *cmd = sum ? cJSON_GetObjectItemCaseSensitive(sum, "command") : NULL;
    if (cJSON_IsString(cmd)) {
        sb_puts(&d->html, "<p>Command:</p>\n<pre>");
        sb_html(&d->html, cmd->valuestring);
        sb_puts(&d->html, "</pre>\n");
        sb_puts(&d->md, "Command:\n\n```\n");
        sb_puts(&d->md, cmd->valuestring);
        sb_puts(&d->md, "\n```\n\n");
    }

    /* Modulation terms. */
    sb_puts(&d->html, "<h3>GLU modulation terms</h3>\n<p>g1 = φ'(a_g)⊙a_u scales the gated path of a shift, "
                      "g2 = φ(a_g) the un-gated one; values near 0 switch a unit's path off.</p>\n");
    sb_puts(&d->md, "### GLU modulation terms\n\ng1 = φ'(a_g)⊙a_u scales the gated path of a shift, g2 = φ(a_g) the "
                    "un-gated one; values near 0 switch a unit's path off.\n\n");
    if ((rc = join_path(path, sizeof path, dir, "mlp_hist.png"))) goto end;
    if (file_exists(path) &&
        (rc = doc_figure(d, dir, "mlp_hist.png", "Histograms of |g1| and |g2| per layer on shared log bins, a line per model")))
        goto end;
    if ((rc = join_path(path, sizeof path, dir, "mlp_stats.csv")) || (rc = mlp_stats_table(d, path))) goto end;

    /* Attenuation. */
    if (n_att > 0) {
        static const char expl[] =
            "Stages: the pre-MLP norm, W_g/W_u, the gate (φ), W_d (and the post-ffn norm of Gemma 2/3). Per stage "
            "two gains of the first-order shift (geometric means over positions; bold: below 1): of its norm, "
            "‖Δout‖/‖Δin‖, and relative to the activation it rides on, (‖Δout‖/‖out‖)/(‖Δin‖/‖in‖). The norm stage "
            "is the identity at mlp_in. Stage by stage numbers: attenuation.csv and the lines below.";
        sb_puts(&d->html, "<h3>Attenuation of the steering vectors</h3>\n<p>");
        sb_html(&d->html, expl);
        sb_puts(&d->html, "</p>\n");
        sb_puts(&d->md, "### Attenuation of the steering vectors\n\n");
        sb_md(&d->md, expl);
        sb_puts(&d->md, "\n\n");
        if ((rc = join_path(path, sizeof path, dir, "attenuation.png"))) goto end;
        if (file_exists(path) &&
            (rc = doc_figure(d, dir, "attenuation.png",
                             "Stage gains per layer (top: of the shift's norm; bottom: relative to the activation), a "
                             "column per model and shift site")))
            goto end;
        sb_puts(&d->html, "<table>\n<tr><th>model</th><th>site</th><th>layer</th><th>‖δ‖</th><th>‖Δ̂‖/‖δ‖</th>"
                          "<th>‖ΔMLP‖/‖Δ̂‖</th><th>lin. error α=1</th><th>α=0.125</th><th>alignment</th>"
                          "<th>norm shrinks most in</th><th>loses most relative to the activation in</th></tr>\n");
        sb_puts(&d->md, "| model | site | layer | ‖δ‖ | ‖Δ̂‖/‖δ‖ | ‖ΔMLP‖/‖Δ̂‖ | lin. error α=1 | α=0.125 | alignment | "
                        "norm shrinks most in | loses most relative to the activation in |\n"
                        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
        for (int i = 0; i < n_att; i++) {
            const steer_mlp_att *a = &att[i];
            const double v[] = {a->delta, a->norm_ratio, a->mlp_gain, a->linerr[0], a->linerr[STEER_MLP_N_ALPHAS - 1],
                                a->align};
            sb_puts(&d->html, "<tr><td>");
            sb_html(&d->html, a->model);
            sb_printf(&d->html, "</td><td>%s</td><td>%d</td>", steer_site_name(a->site), a->layer);
            sb_puts(&d->md, "| ");
            sb_md(&d->md, a->model);
            sb_printf(&d->md, " | %s | %d |", steer_site_name(a->site), a->layer);
            for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
                char c[32];
                fmt_num(c, sizeof c, v[k]);
                sb_printf(&d->html, "<td>%s</td>", c);
                sb_printf(&d->md, " %s |", c);
            }
            for (int rel = 0; rel < 2; rel++) {
                const int w = steer_mlp_att_weakest(a, rel);
                const double g = w < 0 ? NAN : rel ? a->gain[w] : a->abs_gain[w];
                char c[64];
                if (w < 0) snprintf(c, sizeof c, "–");
                else snprintf(c, sizeof c, "%s ×%.2f", steer_mlp_stage_name(w), g);
                sb_printf(&d->html, "<td style=\"text-align:left\">%s%s%s</td>", g < 1 ? "<b>" : "", c, g < 1 ? "</b>" : "");
                sb_printf(&d->md, " %s%s%s |", g < 1 ? "**" : "", c, g < 1 ? "**" : "");
            }
            sb_puts(&d->html, "</tr>\n");
            sb_puts(&d->md, "\n");
        }
        sb_puts(&d->html, "</table>\n<h3>Where the pre-MLP signal loses most</h3>\n<ul>\n");
        sb_puts(&d->md, "\n### Where the pre-MLP signal loses most\n\n");
        for (int i = 0; i < n_att; i++) {
            steer_mlp_att_describe(&att[i], buf, sizeof buf);
            sb_puts(&d->html, "<li>");
            sb_html(&d->html, buf);
            sb_puts(&d->html, "</li>\n");
            sb_puts(&d->md, "- ");
            sb_md(&d->md, buf);
            sb_puts(&d->md, "\n");
        }
        sb_puts(&d->html, "</ul>\n");
        sb_puts(&d->md, "\n");
    }
    sb_puts(&d->html, "</section>\n");
    d->n_sections++;
end:
    cJSON_Delete(sum);
    free(att);
    return rc;
}

/* END mlp analysis section */

/* ---------------------------------------------------------------- icl section (steer icl, SPEC E3) */

/* A steer icl directory: summary_icl.json (required; the numbers) and the
 * figures kl_to_icl.png and recovery_by_layer.png (docs/ICL.md). */
static double icl_num(const cJSON *o, const char *key)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int section_icl(report_doc *d, const char *dir)
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
    char title[512];
    snprintf(title, sizeof title, "%s, %g shots", model ? model : "?", icl_num(js, "shots"));
    sb_puts(&d->html, "<section>\n<h2>In-context learning as pre-MLP steering (E3): ");
    sb_html(&d->html, title);
    sb_puts(&d->html, "</h2>\n<p class=\"dir\">results in <code>");
    sb_html(&d->html, dir);
    sb_puts(&d->html, "</code></p>\n");
    sb_puts(&d->md, "## In-context learning as pre-MLP steering (E3): ");
    sb_md(&d->md, title);
    sb_puts(&d->md, "\n\nResults in `");
    sb_md(&d->md, dir);
    sb_puts(&d->md, "`.\n\n");

    sb_puts(&d->html, "<h3>Settings</h3>\n<table class=\"settings\">\n");
    sb_puts(&d->md, "### Settings\n\n| setting | value |\n|---|---|\n");
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
        snprintf(buf, sizeof buf, "%g updates, batch %g, lr %g; objective %.4f → %.4f", icl_num(lo, "steps"),
                 icl_num(lo, "batch"), icl_num(lo, "lr"), icl_num(lo, "loss_before"), icl_num(lo, "loss_after"));
        doc_setting(d, "(d) learned compression", buf);
    }
    sb_puts(&d->html, "</table>\n");
    sb_puts(&d->md, "\n");
    const char *cmd = json_text(cJSON_GetObjectItemCaseSensitive(js, "command"), buf, sizeof buf);
    if (cmd) {
        sb_puts(&d->html, "<pre>");
        sb_html(&d->html, cmd);
        sb_puts(&d->html, "</pre>\n");
        sb_puts(&d->md, "```\n");
        sb_puts(&d->md, cmd);
        sb_puts(&d->md, "\n```\n\n");
    }

    /* Methods table. */
    sb_puts(&d->html, "<h3>KL to the ICL run and accuracy (held-out queries)</h3>\n<table>\n<tr><th>method</th>"
                      "<th>KL(· ‖ ICL) mean</th><th>se</th><th>accuracy</th><th>format</th></tr>\n");
    sb_puts(&d->md, "### KL to the ICL run and accuracy (held-out queries)\n\n| method | KL(· ‖ ICL) mean | se | "
                    "accuracy | format |\n|---|---:|---:|---:|---:|\n");
    static const char *const mk[][2] = {{"zero_shot", "zero-shot (q alone)"}, {"icl", "ICL (C ⊕ q)"},
                                        {"patched_all", "(a) attn_out patched at every layer"},
                                        {"mean_delta", "(c) q + α·mean Δ_A"}, {"learned", "(d) q + learned vectors"}};
    for (size_t i = 0; i < sizeof mk / sizeof mk[0]; i++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(ms, mk[i][0]);
        if (!cJSON_IsObject(o)) continue;
        char a[32], b[32], c[32], e[32];
        fmt_num(a, sizeof a, icl_num(o, "kl_mean"));
        fmt_num(b, sizeof b, icl_num(o, "kl_se"));
        fmt_num(c, sizeof c, icl_num(o, "acc"));
        fmt_num(e, sizeof e, icl_num(o, "format"));
        sb_printf(&d->html, "<tr><td style=\"text-align:left\">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
                  mk[i][1], a, b, c, e);
        sb_printf(&d->md, "| %s | %s | %s | %s | %s |\n", mk[i][1], a, b, c, e);
    }
    sb_puts(&d->html, "</table>\n");
    sb_puts(&d->md, "\n");
    if ((rc = doc_figure(d, dir, "kl_to_icl.png", "KL(method ‖ ICL) by scored position, held-out queries"))) goto end;

    /* Layers. */
    sb_puts(&d->html, "<h3>One layer's attn_out from the ICL run</h3>\n<table>\n<tr><th>layer</th><th>KL(patched ‖ "
                      "ICL)</th><th>recovery</th><th>‖Δ_A‖</th></tr>\n");
    sb_puts(&d->md, "### One layer's attn_out from the ICL run\n\n| layer | KL(patched ‖ ICL) | recovery | ‖Δ_A‖ |\n"
                    "|---:|---:|---:|---:|\n");
    const cJSON *ly = cJSON_GetObjectItemCaseSensitive(js, "layers"), *o;
    cJSON_ArrayForEach(o, ly)
    {
        char a[32], b[32], c[32];
        fmt_num(a, sizeof a, icl_num(o, "kl_patch_mean"));
        fmt_num(b, sizeof b, icl_num(o, "recovery"));
        fmt_num(c, sizeof c, icl_num(o, "delta_norm"));
        sb_printf(&d->html, "<tr><td>%g</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", icl_num(o, "layer"), a, b, c);
        sb_printf(&d->md, "| %g | %s | %s | %s |\n", icl_num(o, "layer"), a, b, c);
    }
    sb_puts(&d->html, "</table>\n");
    sb_puts(&d->md, "\n");
    if ((rc = doc_figure(d, dir, "recovery_by_layer.png", "KL to ICL and recovery with one layer's attn_out patched")))
        goto end;
    sb_puts(&d->html, "</section>\n");
    d->n_sections++;
end:
    cJSON_Delete(js);
    return rc;
}

/* ---------------------------------------------------------------- adapt study (SPEC E4) */

/* steer study adapt (tools/cmd_study_adapt.c): summary.json ("study":
 * "adapt") → the table of methods and the accuracy-vs-parameters figure. */
static int section_adapt(report_doc *d, const char *dir)
{
    char path[PATH_MAX], buf[1024];
    int rc = join_path(path, sizeof path, dir, "summary.json");
    if (rc) return rc;
    if (!file_exists(path)) return steer_err(STEER_EIO, "%s: missing (acc_vs_params.png without its summary)", path);
    io_map m;
    if ((rc = io_map_open(path, &m))) return rc;
    cJSON *js = cJSON_ParseWithLength((const char *)m.data, m.size);
    io_map_close(&m);
    const cJSON *st = js ? cJSON_GetObjectItemCaseSensitive(js, "study") : NULL;
    const cJSON *rows = js ? cJSON_GetObjectItemCaseSensitive(js, "rows") : NULL;
    const cJSON *base = js ? cJSON_GetObjectItemCaseSensitive(js, "untrained") : NULL;
    if (!js || !cJSON_IsString(st) || strcmp(st->valuestring, "adapt") != 0 || !cJSON_IsArray(rows) ||
        !cJSON_IsObject(base)) {
        cJSON_Delete(js);
        return steer_err(STEER_EFORMAT, "%s: not a study adapt summary (\"study\": \"adapt\" with \"rows\")", path);
    }
    char title[512];
    const char *task = json_text(cJSON_GetObjectItemCaseSensitive(js, "task"), buf, sizeof buf);
    snprintf(title, sizeof title, "%s", task ? task : "?");
    sb_puts(&d->html, "<section>\n<h2>Learned steering against weight updates (E4): ");
    sb_html(&d->html, title);
    sb_puts(&d->html, "</h2>\n<p class=\"dir\">results in <code>");
    sb_html(&d->html, dir);
    sb_puts(&d->html, "</code></p>\n<table class=\"settings\">\n");
    sb_puts(&d->md, "## Learned steering against weight updates (E4): ");
    sb_md(&d->md, title);
    sb_puts(&d->md, "\n\nResults in `");
    sb_md(&d->md, dir);
    sb_puts(&d->md, "`.\n\n| setting | value |\n|---|---|\n");
    static const char *const keys[][2] = {{"model", "model"}, {"task", "task"}, {"seed", "seed"},
                                          {"steps", "updates per run"}, {"batch", "batch"},
                                          {"n_train", "training items"}, {"n_val", "validation items"},
                                          {"n_test", "test items"}, {"lr_sweep", "learning-rate sweep"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        doc_setting(d, keys[i][1], json_text(cJSON_GetObjectItemCaseSensitive(js, keys[i][0]), buf, sizeof buf));
    sb_puts(&d->html, "</table>\n<table>\n<tr><th>method</th><th>site</th><th>rank</th><th>lr</th><th>trainable</th>"
                      "<th>share</th><th>val acc</th><th>test acc</th><th>test loss</th><th>format</th></tr>\n");
    sb_puts(&d->md, "\n| method | site | rank | lr | trainable | share | val acc | test acc | test loss | format |\n"
                    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    const cJSON *o;
    char va[32], ta[32], tl[32], fm[32];
    fmt_num(va, sizeof va, icl_num(base, "val_acc"));
    fmt_num(ta, sizeof ta, icl_num(base, "test_acc"));
    fmt_num(tl, sizeof tl, icl_num(base, "test_loss"));
    fmt_num(fm, sizeof fm, icl_num(base, "test_format"));
    sb_printf(&d->html, "<tr><td style=\"text-align:left\">untrained</td><td>-</td><td>-</td><td>-</td><td>0</td>"
                        "<td>0</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", va, ta, tl, fm);
    sb_printf(&d->md, "| untrained | - | - | - | 0 | 0 | %s | %s | %s | %s |\n", va, ta, tl, fm);
    cJSON_ArrayForEach(o, rows)
    {
        char meth[64], site[64];
        const char *mt = json_text(cJSON_GetObjectItemCaseSensitive(o, "method"), meth, sizeof meth);
        const char *si = json_text(cJSON_GetObjectItemCaseSensitive(o, "site"), site, sizeof site);
        fmt_num(va, sizeof va, icl_num(o, "val_acc"));
        fmt_num(ta, sizeof ta, icl_num(o, "test_acc"));
        fmt_num(tl, sizeof tl, icl_num(o, "test_loss"));
        fmt_num(fm, sizeof fm, icl_num(o, "test_format"));
        sb_puts(&d->html, "<tr><td style=\"text-align:left\">");
        sb_html(&d->html, mt ? mt : "?");
        sb_puts(&d->html, "</td><td>");
        sb_html(&d->html, si && si[0] ? si : "-");
        sb_printf(&d->html, "</td><td>%g</td><td>%g</td><td>%.0f</td><td>%.4f%%</td><td>%s</td><td>%s</td><td>%s</td>"
                            "<td>%s</td></tr>\n", icl_num(o, "rank"), icl_num(o, "lr"), icl_num(o, "trainable"),
                  100 * icl_num(o, "share"), va, ta, tl, fm);
        sb_puts(&d->md, "| ");
        sb_md(&d->md, mt ? mt : "?");
        sb_puts(&d->md, " | ");
        sb_md(&d->md, si && si[0] ? si : "-");
        sb_printf(&d->md, " | %g | %g | %.0f | %.4f%% | %s | %s | %s | %s |\n", icl_num(o, "rank"), icl_num(o, "lr"),
                  icl_num(o, "trainable"), 100 * icl_num(o, "share"), va, ta, tl, fm);
    }
    sb_puts(&d->html, "</table>\n");
    sb_puts(&d->md, "\n");
    if ((rc = doc_figure(d, dir, "acc_vs_params.png", "test accuracy against trainable parameters (log scale)"))) goto end;
    sb_puts(&d->html, "</section>\n");
    d->n_sections++;
end:
    cJSON_Delete(js);
    return rc;
}

/* ---------------------------------------------------------------- kinds of results */

/* A kind of results a directory can hold: found by its marker file, written
 * by its section function (which appends to both documents and returns a
 * status; it may read anything in dir). A directory holding several kinds
 * gets a section for each, in table order. A new kind (e.g. E2's MLP
 * statistics, marker mlp_stats.csv) is one more row. */
typedef struct {
    const char *marker; /* file whose presence identifies the kind */
    int (*section)(report_doc *d, const char *dir);
} report_kind;

static const report_kind report_kinds[] = {
    {"dkl.csv", section_sweep},
    {"mlp_stats.csv", section_mlp}, /* steer analyze-mlp (SPEC E2) */
    {"icl.csv", section_icl},       /* steer icl (SPEC E3) */
    {"acc_vs_params.png", section_adapt}, /* steer study adapt (SPEC E4) */
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

static const char html_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>steer report</title>\n<style>\n"
    "body{font-family:sans-serif;max-width:1600px;margin:1em auto;padding:0 1em;color:#222}\n"
    "table{border-collapse:collapse;margin:0.5em 0 1em}\n"
    "th,td{border:1px solid #ccc;padding:2px 8px;text-align:right}\n"
    "table.settings th,table.settings td{text-align:left}\n"
    "figure{margin:1em 0}img{max-width:100%;height:auto}figcaption{color:#555;font-size:90%}\n"
    "pre{background:#f4f4f4;padding:0.5em;white-space:pre-wrap}\n"
    "section{border-top:2px solid #888;margin-top:2em}\n"
    "</style>\n</head>\n<body>\n<h1>steer report</h1>\n";

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

int report_write(const char *const *dirs, int n_dirs, const report_params *p)
{
    /* Ownership: borrows everything; creates or replaces p->html_path and
     * p->md_path (and figures missing from sweep directories). */
    if (!dirs || n_dirs < 1 || !p || !p->html_path || !*p->html_path || !p->md_path || !*p->md_path)
        return steer_err(STEER_EARG, "report_write: no directories or no output paths");
    int *found = calloc((size_t)n_dirs * (size_t)n_report_kinds, sizeof *found);
    report_doc *d = calloc(1, sizeof *d);
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
        if (!realpath(dirpart, d->md_dir)) {
            rc = steer_err(STEER_EIO, "%s: no such directory for %s", dirpart, p->md_path);
            goto end;
        }
    }

    sb_puts(&d->html, html_head);
    sb_puts(&d->md, "# steer report\n\n");
    if (p->command && *p->command) {
        sb_puts(&d->html, "<p>Report made by:</p>\n<pre>");
        sb_html(&d->html, p->command);
        sb_puts(&d->html, "</pre>\n");
        sb_puts(&d->md, "Report made by:\n\n```\n");
        sb_puts(&d->md, p->command);
        sb_puts(&d->md, "\n```\n\n");
    }
    for (int i = 0; i < n_dirs && !rc; i++)
        for (int k = 0; k < n_report_kinds && !rc; k++)
            if (found[(size_t)i * n_report_kinds + k]) rc = report_kinds[k].section(d, dirs[i]);
    if (rc) goto end;
    sb_printf(&d->html, "<p style=\"color:#777\">steer %s</p>\n</body>\n</html>\n", STEER_VERSION);
    if (d->html.oom || d->md.oom) {
        rc = steer_err(STEER_ENOMEM, "report: out of memory");
        goto end;
    }
    rc = write_pair(p->html_path, &d->html, p->md_path, &d->md);
end:
    if (d) {
        free(d->html.p);
        free(d->md.p);
    }
    free(d);
    free(found);
    return rc;
}

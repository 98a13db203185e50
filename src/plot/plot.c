/*
 * plot.c — line plots with cairo to PNG and SVG (plot.h).
 *
 * Layout: an optional header (figure title, figure legend) above a grid of
 * equal cells, one panel per cell. Every panel gets the same margins (the
 * widest y tick labels of any panel set the left margin), so the plot areas
 * of a row and of a column line up. Ranges come from the data (5% padding on
 * y, 2% on x; in log10 space on a log axis) unless fixed; ticks are "nice"
 * numbers 1, 2, 5 × 10^k (decades on a log axis spanning two or more).
 *
 * The figure is rendered in memory (cairo image surface → PNG stream, or SVG
 * stream) and written with io_write_atomic.
 */
#include "plot.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PLOT_MAX_TICKS 40
#define PLOT_TEXT_MAX 512
#define PLOT_DEFAULT_CELL_W 480
#define PLOT_DEFAULT_CELL_H 340

/* Font sizes (points). */
#define FS_TITLE 16.0
#define FS_PANEL 13.0
#define FS_LABEL 12.0
#define FS_TICK 10.5
#define FS_LEGEND 11.0

/* A ten-colour qualitative palette (RGB). */
static const double palette[10][3] = {
    {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
    {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
    {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812},
};

/* ---------------------------------------------------------------- memory stream */

/* A growable byte buffer; oom is sticky. Ownership: p is owned by the buffer. */
typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} membuf;

static cairo_status_t membuf_write(void *closure, const unsigned char *data, unsigned int len)
{
    membuf *b = closure;
    if (b->oom) return CAIRO_STATUS_NO_MEMORY;
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->n + len) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return CAIRO_STATUS_NO_MEMORY;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
    return CAIRO_STATUS_SUCCESS;
}

static void membuf_put(membuf *b, const char *s, size_t n) { membuf_write(b, (const unsigned char *)s, (unsigned)n); }
static void membuf_puts(membuf *b, const char *s) { membuf_put(b, s, strlen(s)); }

/* ---------------------------------------------------------------- text */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static int utf8_seq(const unsigned char *p)
{
    unsigned c = p[0];
    int n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
    if (n < 0) return 0;
    unsigned cp = n == 0 ? c : n == 1 ? (c & 0x1f) : n == 2 ? (c & 0x0f) : (c & 0x07);
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const unsigned min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n + 1;
}

/* out = s as valid UTF-8 without control characters (invalid bytes → '?',
 * controls → ' '), truncated to fit cap bytes at a character boundary. */
static void sanitize(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        int len = utf8_seq(p);
        if (len == 0) {
            if (o + 2 > cap) break;
            out[o++] = '?';
            p++;
            continue;
        }
        if (o + (size_t)len + 1 > cap) break;
        if (len == 1 && (*p < 0x20 || *p == 0x7f)) out[o++] = ' ';
        else {
            memcpy(out + o, p, (size_t)len);
            o += (size_t)len;
        }
        p += len;
    }
    out[o] = 0;
}

static void set_font(cairo_t *cr, double size, int bold)
{
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

static double text_width(cairo_t *cr, const char *s)
{
    char buf[PLOT_TEXT_MAX];
    sanitize(s, buf, sizeof buf);
    cairo_text_extents_t e;
    cairo_text_extents(cr, buf, &e);
    return e.x_advance;
}

/* Draws s with its anchor at (x, y): ax = 0 left, 0.5 centre, 1 right; ay = 0
 * top, 0.5 middle, 1 bottom of the font's box. angle in radians (rotation
 * about the anchor). */
static void text_at(cairo_t *cr, const char *s, double x, double y, double ax, double ay, double angle)
{
    char buf[PLOT_TEXT_MAX];
    sanitize(s, buf, sizeof buf);
    if (!buf[0]) return;
    cairo_text_extents_t e;
    cairo_font_extents_t fe;
    cairo_text_extents(cr, buf, &e);
    cairo_font_extents(cr, &fe);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    if (angle != 0) cairo_rotate(cr, angle);
    cairo_move_to(cr, -ax * e.x_advance, fe.ascent - ay * (fe.ascent + fe.descent));
    cairo_show_text(cr, buf);
    cairo_restore(cr);
}

/* ---------------------------------------------------------------- axes */

typedef struct {
    double lo, hi; /* shown range (lo < hi; both > 0 on a log axis)        */
    int log;
    int n;
    double v[PLOT_MAX_TICKS];
    char lab[PLOT_MAX_TICKS][32];
} axis;

static int point_ok(double v, int log) { return isfinite(v) && (!log || v > 0); }

/* Extends [*lo, *hi] by the panel's valid data: y values (want_y) or the x
 * values of points whose y is valid (on a log x axis: points with x > 0). */
static void panel_range(const plot_panel *p, int want_y, int log_y, int log_x, double *lo, double *hi, int *any)
{
    for (int s = 0; s < p->n_series; s++) {
        const plot_series *se = &p->series[s];
        for (int i = 0; i < se->n; i++) {
            double y = se->y[i];
            if (!point_ok(y, log_y)) continue;
            double x = se->x ? se->x[i] : (double)i;
            if (!point_ok(x, log_x)) continue;
            double v = want_y ? y : x;
            if (!*any || v < *lo) *lo = v;
            if (!*any || v > *hi) *hi = v;
            *any = 1;
            double e = se->yerr ? se->yerr[i] : 0.0;
            if (want_y && isfinite(e) && e > 0) {
                if (point_ok(y - e, log_y) && y - e < *lo) *lo = y - e;
                if (point_ok(y + e, log_y) && y + e > *hi) *hi = y + e;
            }
        }
    }
}

/* Turns a data range into a shown range (padding pad of the span on both
 * sides; degenerate and empty ranges widened). */
static void finish_range(double *lo, double *hi, int any, int log, double pad)
{
    if (!any) {
        *lo = log ? 1 : 0;
        *hi = log ? 10 : 1;
        return;
    }
    if (log) {
        double a = log10(*lo), b = log10(*hi);
        if (b - a < 1e-12) {
            a -= 0.5;
            b += 0.5;
        }
        double d = (b - a) * pad;
        *lo = pow(10, a - d);
        *hi = pow(10, b + d);
    } else {
        if (*hi - *lo <= 1e-12 * fmax(fabs(*lo), fabs(*hi))) {
            double d = *lo != 0 ? fabs(*lo) * 0.1 : 1.0;
            *lo -= d;
            *hi += d;
        }
        double d = (*hi - *lo) * pad;
        *lo -= d;
        *hi += d;
    }
}

static double nice_step(double span, int target)
{
    double raw = span / (target > 0 ? target : 1);
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    return nf * mag;
}

/* "%g"-like label without "-0" and with as many decimals as the step needs. */
static void fmt_linear(char *buf, size_t n, double v, double step, double maxabs)
{
    if (fabs(v) < step * 1e-9) {
        snprintf(buf, n, "0");
        return;
    }
    if (maxabs >= 1e6 || step < 1e-4) {
        snprintf(buf, n, "%.3g", v);
        return;
    }
    int dec = step >= 1 ? 0 : (int)(-floor(log10(step) + 1e-9));
    if (dec > 10) dec = 10;
    snprintf(buf, n, "%.*f", dec, v);
}

static void ticks_linear(axis *a, int target)
{
    double step = nice_step(a->hi - a->lo, target);
    double k0 = ceil(a->lo / step - 1e-9), k1 = floor(a->hi / step + 1e-9);
    double maxabs = fmax(fabs(a->lo), fabs(a->hi));
    a->n = 0;
    for (double k = k0; k <= k1 && a->n < PLOT_MAX_TICKS; k++) {
        double v = k * step;
        if (a->log && v <= 0) continue;
        a->v[a->n] = v;
        fmt_linear(a->lab[a->n], sizeof a->lab[0], v, step, maxabs);
        a->n++;
    }
}

static void fmt_log(char *buf, size_t n, double v)
{
    int k = (int)floor(log10(v) + 1e-9);
    double m = v / pow(10, k);
    if (k >= -4 && k <= 5) snprintf(buf, n, "%g", v);
    else if (fabs(m - 1) < 1e-9) snprintf(buf, n, "1e%d", k);
    else snprintf(buf, n, "%.0fe%d", m, k);
}

static void ticks_log(axis *a, int target)
{
    double la = log10(a->lo), lb = log10(a->hi);
    int k0 = (int)ceil(la - 1e-9), k1 = (int)floor(lb + 1e-9);
    a->n = 0;
    if (k1 - k0 + 1 >= 2) {
        int ndec = k1 - k0 + 1;
        int stride = (ndec + target - 1) / (target > 0 ? target : 1);
        if (stride < 1) stride = 1;
        for (int k = k0; k <= k1 && a->n < PLOT_MAX_TICKS; k++) {
            if (((k % stride) + stride) % stride) continue;
            a->v[a->n] = pow(10, k);
            fmt_log(a->lab[a->n], sizeof a->lab[0], a->v[a->n]);
            a->n++;
        }
        return;
    }
    static const double mant[3] = {1, 2, 5};
    for (int k = (int)floor(la) - 1; k <= (int)ceil(lb) && a->n < PLOT_MAX_TICKS; k++)
        for (int j = 0; j < 3 && a->n < PLOT_MAX_TICKS; j++) {
            double v = mant[j] * pow(10, k);
            if (v < a->lo * (1 - 1e-9) || v > a->hi * (1 + 1e-9)) continue;
            a->v[a->n] = v;
            fmt_log(a->lab[a->n], sizeof a->lab[0], v);
            a->n++;
        }
    if (a->n < 2) ticks_linear(a, target);
}

static void make_ticks(axis *a, int target)
{
    if (a->log) ticks_log(a, target);
    else ticks_linear(a, target);
}

/* Fraction of the axis at value v (0 at lo, 1 at hi). */
static double axis_frac(const axis *a, double v)
{
    if (a->log) return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    return (v - a->lo) / (a->hi - a->lo);
}

/* ---------------------------------------------------------------- layout */

typedef struct {
    const char *label;
    int color; /* resolved palette index */
    int dashed, markers;
} legend_entry;

static int series_color(const plot_series *s, int index)
{
    int c = s->color > 0 ? s->color - 1 : index;
    return c % 10;
}

static void set_color(cairo_t *cr, int c) { cairo_set_source_rgb(cr, palette[c][0], palette[c][1], palette[c][2]); }

/* Legend sample line (and marker) at (x, y) of length len. */
static void legend_sample(cairo_t *cr, const legend_entry *e, double x, double y, double len)
{
    cairo_save(cr);
    set_color(cr, e->color);
    cairo_set_line_width(cr, 2.0);
    if (e->dashed) {
        double d[2] = {5, 3};
        cairo_set_dash(cr, d, 2, 0);
    }
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x + len, y);
    cairo_stroke(cr);
    if (e->markers) {
        cairo_arc(cr, x + len / 2, y, 2.8, 0, 2 * M_PI);
        cairo_fill(cr);
    }
    cairo_restore(cr);
}

#define LEG_SAMPLE 24.0
#define LEG_GAP 6.0
#define LEG_SPACING 18.0
#define LEG_ROW 18.0

/* Rows the figure legend needs in width avail (entries flow left to right). */
static int figure_legend_rows(cairo_t *cr, const legend_entry *e, int n, double avail)
{
    if (n == 0) return 0;
    set_font(cr, FS_LEGEND, 0);
    int rows = 1;
    double x = 0;
    for (int i = 0; i < n; i++) {
        double w = LEG_SAMPLE + LEG_GAP + text_width(cr, e[i].label);
        if (x > 0 && x + w > avail) {
            rows++;
            x = 0;
        }
        x += w + LEG_SPACING;
    }
    return rows;
}

static void draw_figure_legend(cairo_t *cr, const legend_entry *e, int n, double W, double y0)
{
    set_font(cr, FS_LEGEND, 0);
    double avail = W - 40;
    int i = 0;
    double y = y0;
    while (i < n) {
        /* Entries of this row, then centre them. */
        int j = i;
        double x = 0;
        while (j < n) {
            double w = LEG_SAMPLE + LEG_GAP + text_width(cr, e[j].label);
            if (j > i && x + w > avail) break;
            x += w + LEG_SPACING;
            j++;
        }
        double rowx = (W - (x - LEG_SPACING)) / 2;
        for (int k = i; k < j; k++) {
            legend_sample(cr, &e[k], rowx, y + LEG_ROW / 2, LEG_SAMPLE);
            cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
            text_at(cr, e[k].label, rowx + LEG_SAMPLE + LEG_GAP, y + LEG_ROW / 2, 0, 0.5, 0);
            rowx += LEG_SAMPLE + LEG_GAP + text_width(cr, e[k].label) + LEG_SPACING;
        }
        y += LEG_ROW;
        i = j;
    }
}

/* Points of the panel's series (and midpoints of their segments) inside the
 * rectangle (bx, by, bw, bh) of the plot area. */
static int points_in_box(const plot_panel *p, const axis *ax, const axis *ay, double px, double py, double pw,
                         double ph, double bx, double by, double bw, double bh)
{
    int hits = 0;
    for (int s = 0; s < p->n_series; s++) {
        const plot_series *se = &p->series[s];
        double X0 = 0, Y0 = 0;
        int prev = 0;
        for (int i = 0; i < se->n; i++) {
            double x = se->x ? se->x[i] : (double)i, y = se->y[i];
            if (!point_ok(x, ax->log) || !point_ok(y, ay->log)) {
                prev = 0;
                continue;
            }
            double X = px + axis_frac(ax, x) * pw, Y = py + (1 - axis_frac(ay, y)) * ph;
            hits += X >= bx && X <= bx + bw && Y >= by && Y <= by + bh;
            if (prev) {
                for (int q = 1; q < 4; q++) {
                    double Xm = X0 + (X - X0) * q / 4, Ym = Y0 + (Y - Y0) * q / 4;
                    hits += Xm >= bx && Xm <= bx + bw && Ym >= by && Ym <= by + bh;
                }
            }
            X0 = X;
            Y0 = Y;
            prev = 1;
        }
    }
    return hits;
}

/* A legend box inside the plot area, in the corner (upper right, upper left,
 * lower right, lower left: the first with the fewest data points under it). */
static void draw_panel_legend(cairo_t *cr, const plot_panel *p, const axis *ax, const axis *ay, double px, double py,
                              double pw, double ph)
{
    int n = 0;
    double maxw = 0;
    set_font(cr, FS_LEGEND, 0);
    for (int s = 0; s < p->n_series; s++) {
        const char *l = p->series[s].label;
        if (!l || !*l) continue;
        n++;
        double w = text_width(cr, l);
        if (w > maxw) maxw = w;
    }
    if (n == 0) return;
    double bw = 8 + LEG_SAMPLE + LEG_GAP + maxw + 8, bh = 6 + n * 16.0 + 4;
    double cand[4][2] = {{px + pw - bw - 8, py + 8}, {px + 8, py + 8}, {px + pw - bw - 8, py + ph - bh - 8},
                         {px + 8, py + ph - bh - 8}};
    int best = 0, best_hits = -1;
    for (int c = 0; c < 4; c++) {
        int h = points_in_box(p, ax, ay, px, py, pw, ph, cand[c][0], cand[c][1], bw, bh);
        if (best_hits < 0 || h < best_hits) {
            best = c;
            best_hits = h;
        }
    }
    double bx = cand[best][0], by = cand[best][1];
    cairo_save(cr);
    cairo_rectangle(cr, bx, by, bw, bh);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    double y = by + 6 + 8;
    for (int s = 0; s < p->n_series; s++) {
        const plot_series *se = &p->series[s];
        if (!se->label || !*se->label) continue;
        legend_entry e = {se->label, series_color(se, s), se->dashed, se->markers};
        legend_sample(cr, &e, bx + 8, y, LEG_SAMPLE);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text_at(cr, se->label, bx + 8 + LEG_SAMPLE + LEG_GAP, y, 0, 0.5, 0);
        y += 16;
    }
    cairo_restore(cr);
}

/* ---------------------------------------------------------------- drawing */

typedef struct {
    double W, H;          /* figure size (user units)          */
    int cols, rows;
    double header;        /* height above the grid              */
    int legend_rows;      /* rows of the figure legend          */
    double top, left, bottom, right; /* panel margins           */
    legend_entry *fleg;   /* owned [n_fleg]: figure legend     */
    int n_fleg;
    axis *ax, *ay;        /* owned [n_panels]                   */
} layout;

static void draw_series(cairo_t *cr, const plot_series *se, int index, const axis *ax, const axis *ay, double px,
                        double py, double pw, double ph)
{
    cairo_save(cr);
    set_color(cr, series_color(se, index));
    cairo_set_line_width(cr, 1.8);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    if (se->dashed) {
        double d[2] = {6, 4};
        cairo_set_dash(cr, d, 2, 0);
    }
    int pen = 0;
    for (int i = 0; i < se->n; i++) {
        double x = se->x ? se->x[i] : (double)i, y = se->y[i];
        if (!isfinite(x) || !point_ok(y, ay->log) || !point_ok(x, ax->log)) {
            pen = 0;
            continue;
        }
        double X = px + axis_frac(ax, x) * pw, Y = py + (1 - axis_frac(ay, y)) * ph;
        if (pen) cairo_line_to(cr, X, Y);
        else cairo_move_to(cr, X, Y);
        pen = 1;
    }
    cairo_stroke(cr);
    if (se->yerr) {
        /* Error bars: a thin vertical line with short caps, solid. */
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_set_line_width(cr, 1.0);
        for (int i = 0; i < se->n; i++) {
            double x = se->x ? se->x[i] : (double)i, y = se->y[i], e = se->yerr[i];
            if (!isfinite(e) || e <= 0 || !point_ok(x, ax->log) || !point_ok(y, ay->log)) continue;
            double lo = y - e, hi = y + e;
            if (ay->log && lo <= 0) lo = y; /* the lower half does not exist on a log axis */
            double X = px + axis_frac(ax, x) * pw;
            double Y0 = py + (1 - axis_frac(ay, lo)) * ph, Y1 = py + (1 - axis_frac(ay, hi)) * ph;
            cairo_move_to(cr, X, Y0);
            cairo_line_to(cr, X, Y1);
            cairo_move_to(cr, X - 2.5, Y0);
            cairo_line_to(cr, X + 2.5, Y0);
            cairo_move_to(cr, X - 2.5, Y1);
            cairo_line_to(cr, X + 2.5, Y1);
        }
        cairo_stroke(cr);
        cairo_set_line_width(cr, 1.8);
    }
    if (se->markers) {
        cairo_set_dash(cr, NULL, 0, 0);
        for (int i = 0; i < se->n; i++) {
            double x = se->x ? se->x[i] : (double)i, y = se->y[i];
            if (!point_ok(x, ax->log) || !point_ok(y, ay->log)) continue;
            double X = px + axis_frac(ax, x) * pw, Y = py + (1 - axis_frac(ay, y)) * ph;
            cairo_new_sub_path(cr);
            cairo_arc(cr, X, Y, 2.8, 0, 2 * M_PI);
        }
        cairo_fill(cr);
    }
    cairo_restore(cr);
}

static double crisp(double v) { return floor(v) + 0.5; }

static void draw_panel(cairo_t *cr, const plot_figure *fig, const layout *L, const plot_panel *p, int k)
{
    int col = k % L->cols, row = k / L->cols;
    double cw = L->W / L->cols, ch = (L->H - L->header) / L->rows;
    double cx = col * cw, cy = L->header + row * ch;
    double px = cx + L->left, py = cy + L->top;
    double pw = cw - L->left - L->right, ph = ch - L->top - L->bottom;
    const axis *ax = &L->ax[k], *ay = &L->ay[k];
    int show_y = !(fig->share_y && col > 0);

    /* Grid. */
    cairo_set_line_width(cr, 1);
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    for (int i = 0; i < ay->n; i++) {
        double Y = crisp(py + (1 - axis_frac(ay, ay->v[i])) * ph);
        cairo_move_to(cr, px, Y);
        cairo_line_to(cr, px + pw, Y);
    }
    for (int i = 0; i < ax->n; i++) {
        double X = crisp(px + axis_frac(ax, ax->v[i]) * pw);
        cairo_move_to(cr, X, py);
        cairo_line_to(cr, X, py + ph);
    }
    cairo_stroke(cr);

    /* Series, clipped to the plot area. */
    cairo_save(cr);
    cairo_rectangle(cr, px, py, pw, ph);
    cairo_clip(cr);
    for (int s = 0; s < p->n_series; s++) draw_series(cr, &p->series[s], s, ax, ay, px, py, pw, ph);
    cairo_restore(cr);

    /* Frame and ticks. */
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, crisp(px), crisp(py), floor(pw), floor(ph));
    cairo_stroke(cr);
    set_font(cr, FS_TICK, 0);
    for (int i = 0; i < ay->n; i++) {
        double Y = crisp(py + (1 - axis_frac(ay, ay->v[i])) * ph);
        cairo_move_to(cr, crisp(px), Y);
        cairo_line_to(cr, crisp(px) - 4, Y);
        cairo_stroke(cr);
        if (show_y) text_at(cr, ay->lab[i], px - 7, Y, 1, 0.5, 0);
    }
    for (int i = 0; i < ax->n; i++) {
        double X = crisp(px + axis_frac(ax, ax->v[i]) * pw);
        cairo_move_to(cr, X, crisp(py + ph));
        cairo_line_to(cr, X, crisp(py + ph) + 4);
        cairo_stroke(cr);
        text_at(cr, ax->lab[i], X, py + ph + 6, 0.5, 0, 0);
    }

    /* Labels and title. */
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    set_font(cr, FS_LABEL, 0);
    if (p->xlabel && *p->xlabel) text_at(cr, p->xlabel, px + pw / 2, cy + ch - 6, 0.5, 1, 0);
    if (show_y && p->ylabel && *p->ylabel) text_at(cr, p->ylabel, cx + 6, py + ph / 2, 0.5, 0, -M_PI / 2);
    if (p->title && *p->title) {
        set_font(cr, FS_PANEL, 1);
        text_at(cr, p->title, px + pw / 2, py - 6, 0.5, 1, 0);
    }
    if (fig->legend == PLOT_LEGEND_PANEL) draw_panel_legend(cr, p, ax, ay, px, py, pw, ph);
}

static void draw_figure(cairo_t *cr, const plot_figure *fig, const layout *L, const plot_panel *panels, int n)
{
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    double y = 8;
    if (fig->title && *fig->title) {
        cairo_set_source_rgb(cr, 0.05, 0.05, 0.05);
        set_font(cr, FS_TITLE, 1);
        text_at(cr, fig->title, L->W / 2, y, 0.5, 0, 0);
        y += 26;
    }
    if (L->legend_rows > 0) draw_figure_legend(cr, L->fleg, L->n_fleg, L->W, y);
    for (int k = 0; k < n; k++) draw_panel(cr, fig, L, &panels[k], k);
}

/* ---------------------------------------------------------------- layout computation */

static int any_text(const plot_panel *panels, int n, int which)
{
    for (int k = 0; k < n; k++) {
        const char *s = which == 0 ? panels[k].title : which == 1 ? panels[k].xlabel : panels[k].ylabel;
        if (s && *s) return 1;
    }
    return 0;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Ranges and ticks of every panel; margins. mcr measures text. */
static int compute_layout(cairo_t *mcr, const plot_figure *fig, const plot_panel *panels, int n, layout *L)
{
    /* Figure legend entries: distinct labels in order of first appearance. */
    if (fig->legend == PLOT_LEGEND_FIGURE) {
        int total = 0;
        for (int k = 0; k < n; k++) total += panels[k].n_series;
        L->fleg = calloc((size_t)(total > 0 ? total : 1), sizeof *L->fleg);
        if (!L->fleg) return steer_err(STEER_ENOMEM, "plot: out of memory");
        for (int k = 0; k < n; k++)
            for (int s = 0; s < panels[k].n_series; s++) {
                const plot_series *se = &panels[k].series[s];
                if (!se->label || !*se->label) continue;
                int dup = 0;
                for (int j = 0; j < L->n_fleg && !dup; j++) dup = strcmp(L->fleg[j].label, se->label) == 0;
                if (dup) continue;
                legend_entry e = {se->label, series_color(se, s), se->dashed, se->markers};
                L->fleg[L->n_fleg++] = e;
            }
    }
    L->cols = fig->cols > 0 ? (fig->cols < n ? fig->cols : n) : (n <= 3 ? n : (int)ceil(sqrt((double)n)));
    L->rows = (n + L->cols - 1) / L->cols;
    L->W = fig->width > 0 ? fig->width : (double)L->cols * PLOT_DEFAULT_CELL_W;
    L->legend_rows = figure_legend_rows(mcr, L->fleg, L->n_fleg, L->W - 40);
    int has_title = fig->title && *fig->title;
    L->header = (has_title || L->legend_rows) ? 8 + (has_title ? 26 : 0) + L->legend_rows * LEG_ROW + 4 : 0;
    L->H = fig->height > 0 ? fig->height : (double)L->rows * PLOT_DEFAULT_CELL_H + L->header;

    L->top = any_text(panels, n, 0) ? 28 : 12;
    L->bottom = 8 + 14 + (any_text(panels, n, 1) ? 20 : 0) + 6;
    L->right = 18;
    double cw = L->W / L->cols, ch = (L->H - L->header) / L->rows;
    double ph = ch - L->top - L->bottom;
    if (ph < 24) return steer_err(STEER_EARG, "plot: figure height %g too small for %d row(s) of panels", L->H, L->rows);

    L->ax = calloc((size_t)n, sizeof *L->ax);
    L->ay = calloc((size_t)n, sizeof *L->ay);
    if (!L->ax || !L->ay) return steer_err(STEER_ENOMEM, "plot: out of memory");

    /* Data ranges (shared ones over every panel). */
    double sxlo = 0, sxhi = 0, sylo = 0, syhi = 0;
    int sxany = 0, syany = 0;
    for (int k = 0; k < n; k++) {
        panel_range(&panels[k], 0, fig->log_y, fig->log_x, &sxlo, &sxhi, &sxany);
        panel_range(&panels[k], 1, fig->log_y, fig->log_x, &sylo, &syhi, &syany);
    }
    int fixed_y = isfinite(fig->y_min) && isfinite(fig->y_max) && fig->y_min < fig->y_max;
    int fixed_x = isfinite(fig->x_min) && isfinite(fig->x_max) && fig->x_min < fig->x_max;
    if (fixed_y && fig->log_y && fig->y_min <= 0)
        return steer_err(STEER_EARG, "plot: y_min %g must be > 0 on a log axis", fig->y_min);
    if (fixed_x && fig->log_x && fig->x_min <= 0)
        return steer_err(STEER_EARG, "plot: x_min %g must be > 0 on a log axis", fig->x_min);
    for (int k = 0; k < n; k++) {
        axis *ax = &L->ax[k], *ay = &L->ay[k];
        ay->log = fig->log_y;
        ax->log = fig->log_x;
        if (fixed_y) {
            ay->lo = fig->y_min;
            ay->hi = fig->y_max;
        } else {
            int any = 0;
            double lo = 0, hi = 0;
            if (fig->share_y) {
                lo = sylo;
                hi = syhi;
                any = syany;
            } else panel_range(&panels[k], 1, fig->log_y, fig->log_x, &lo, &hi, &any);
            finish_range(&lo, &hi, any, ay->log, 0.05);
            ay->lo = lo;
            ay->hi = hi;
        }
        if (fixed_x) {
            ax->lo = fig->x_min;
            ax->hi = fig->x_max;
        } else {
            int any = 0;
            double lo = 0, hi = 0;
            if (fig->share_x) {
                lo = sxlo;
                hi = sxhi;
                any = sxany;
            } else panel_range(&panels[k], 0, fig->log_y, fig->log_x, &lo, &hi, &any);
            finish_range(&lo, &hi, any, ax->log, 0.02);
            ax->lo = lo;
            ax->hi = hi;
        }
        make_ticks(ay, clampi((int)(ph / 50), 2, 10));
    }

    /* Left margin from the widest y tick label of any panel. */
    set_font(mcr, FS_TICK, 0);
    double maxw = 0;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < L->ay[k].n; i++) {
            double w = text_width(mcr, L->ay[k].lab[i]);
            if (w > maxw) maxw = w;
        }
    L->left = 8 + (any_text(panels, n, 2) ? 20 : 0) + maxw + 10;
    double pw = cw - L->left - L->right;
    if (pw < 24) return steer_err(STEER_EARG, "plot: figure width %g too small for %d column(s) of panels", L->W, L->cols);

    /* x ticks, fewer while their labels would overlap. */
    for (int k = 0; k < n; k++) {
        axis *ax = &L->ax[k];
        for (int target = clampi((int)(pw / 80), 2, 10);; target = target * 2 / 3) {
            make_ticks(ax, target);
            if (fig->x_int_ticks && !ax->log && ax->n >= 2 && ax->v[1] - ax->v[0] < 1 - 1e-9) {
                /* Whole numbers only: a step of at least 1. */
                axis w = *ax;
                w.n = 0;
                for (double v = ceil(ax->lo - 1e-9); v <= ax->hi + 1e-9 && w.n < PLOT_MAX_TICKS; v++) {
                    w.v[w.n] = v == 0 ? 0 : v; /* no "-0" */
                    snprintf(w.lab[w.n], sizeof w.lab[0], "%.0f", w.v[w.n]);
                    w.n++;
                }
                *ax = w;
            }
            double wmax = 0;
            for (int i = 0; i < ax->n; i++) {
                double w = text_width(mcr, ax->lab[i]);
                if (w > wmax) wmax = w;
            }
            if (target <= 2 || ax->n * (wmax + 10) <= pw) break;
        }
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- SVG text */

static void xml_escaped(membuf *b, const char *s)
{
    char buf[PLOT_TEXT_MAX];
    sanitize(s, buf, sizeof buf);
    for (const char *p = buf; *p; p++) {
        switch (*p) {
        case '&': membuf_puts(b, "&amp;"); break;
        case '<': membuf_puts(b, "&lt;"); break;
        case '>': membuf_puts(b, "&gt;"); break;
        case '"': membuf_puts(b, "&quot;"); break;
        default: membuf_put(b, p, 1);
        }
    }
}

/* out = svg with <title> and <desc> inserted after the opening <svg …> tag. */
static int svg_add_text(const membuf *svg, const plot_figure *fig, const plot_panel *panels, int n, membuf *out)
{
    const char *s = (const char *)svg->p;
    size_t len = svg->n;
    size_t at = 0;
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(s + i, "<svg", 4) == 0) {
            for (size_t j = i; j < len; j++)
                if (s[j] == '>') {
                    at = j + 1;
                    break;
                }
            break;
        }
    if (at == 0) return steer_err(STEER_EFORMAT, "plot: cairo produced SVG without an <svg> element");
    membuf_put(out, s, at);
    membuf_puts(out, "\n<title>");
    const char *title = fig->title && *fig->title ? fig->title
                        : panels[0].title && *panels[0].title ? panels[0].title
                                                              : "plot";
    xml_escaped(out, title);
    membuf_puts(out, "</title>\n<desc>");
    for (int k = 0; k < n; k++) {
        const plot_panel *p = &panels[k];
        if (k) membuf_puts(out, "; ");
        membuf_puts(out, "panel: ");
        xml_escaped(out, p->title && *p->title ? p->title : "(untitled)");
        if (p->xlabel && *p->xlabel) {
            membuf_puts(out, ", x: ");
            xml_escaped(out, p->xlabel);
        }
        if (p->ylabel && *p->ylabel) {
            membuf_puts(out, ", y: ");
            xml_escaped(out, p->ylabel);
        }
        int first = 1;
        for (int j = 0; j < p->n_series; j++) {
            const char *l = p->series[j].label;
            if (!l || !*l) continue;
            membuf_puts(out, first ? ", series: " : " | ");
            xml_escaped(out, l);
            first = 0;
        }
    }
    membuf_puts(out, "</desc>");
    membuf_put(out, s + at, len - at);
    if (out->oom) return steer_err(STEER_ENOMEM, "plot: out of memory");
    return STEER_OK;
}

/* ---------------------------------------------------------------- entry point */

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static int cairo_fail(cairo_status_t st, const char *path)
{
    return steer_err(st == CAIRO_STATUS_NO_MEMORY ? STEER_ENOMEM : STEER_EIO, "%s: cairo: %s", path,
                     cairo_status_to_string(st));
}

int plot_write(const char *path, const plot_figure *fig_in, const plot_panel *panels, int n_panels)
{
    /* Ownership: borrows everything; creates or replaces path. */
    if (!path || !*path) return steer_err(STEER_EARG, "plot_write: empty path");
    int png = ends_with_ci(path, ".png"), svg = ends_with_ci(path, ".svg");
    if (!png && !svg) return steer_err(STEER_EARG, "%s: plot_write: unknown format (name must end in .png or .svg)", path);
    if (!panels || n_panels < 1) return steer_err(STEER_EARG, "%s: plot_write: no panels", path);
    plot_figure fig;
    if (fig_in) fig = *fig_in;
    else memset(&fig, 0, sizeof fig);
    if (fig.width < 0 || fig.width > 16384 || fig.height < 0 || fig.height > 16384 ||
        (fig.width > 0 && fig.width < 64) || (fig.height > 0 && fig.height < 64))
        return steer_err(STEER_EARG, "%s: plot_write: size %dx%d out of range (64 to 16384, or 0)", path, fig.width,
                         fig.height);
    double scale = fig.scale == 0 ? 1.0 : fig.scale;
    if (!(scale >= 0.1 && scale <= 10) || fig.cols < 0)
        return steer_err(STEER_EARG, "%s: plot_write: scale %g (0.1 to 10) or cols %d out of range", path, fig.scale,
                         fig.cols);
    if ((int)fig.legend < PLOT_LEGEND_PANEL || fig.legend > PLOT_LEGEND_FIGURE)
        return steer_err(STEER_EARG, "%s: plot_write: unknown legend mode %d", path, (int)fig.legend);
    for (int k = 0; k < n_panels; k++) {
        if (panels[k].n_series < 0 || (panels[k].n_series > 0 && !panels[k].series))
            return steer_err(STEER_EARG, "%s: plot_write: panel %d has no series array", path, k);
        for (int s = 0; s < panels[k].n_series; s++) {
            const plot_series *se = &panels[k].series[s];
            if (se->n < 0 || (se->n > 0 && !se->y) || se->color < 0)
                return steer_err(STEER_EARG, "%s: plot_write: panel %d series %d: n %d, y %s, color %d", path, k, s,
                                 se->n, se->y ? "set" : "NULL", se->color);
        }
    }

    layout L;
    memset(&L, 0, sizeof L);
    membuf mb = {0}, out = {0};
    cairo_surface_t *msurf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *mcr = cairo_create(msurf);
    int rc = cairo_status(mcr) ? cairo_fail(cairo_status(mcr), path) : compute_layout(mcr, &fig, panels, n_panels, &L);
    cairo_destroy(mcr);
    cairo_surface_destroy(msurf);

    cairo_surface_t *surf = NULL;
    if (!rc) {
        if (png) {
            int pw = (int)lround(L.W * scale), ph = (int)lround(L.H * scale);
            if (pw > 32767 || ph > 32767) rc = steer_err(STEER_EARG, "%s: PNG of %dx%d pixels is too large", path, pw, ph);
            else surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, pw, ph);
        } else surf = cairo_svg_surface_create_for_stream(membuf_write, &mb, L.W, L.H);
    }
    if (!rc) {
        cairo_t *cr = cairo_create(surf);
        if (png) cairo_scale(cr, scale, scale);
        if (!cairo_status(cr)) draw_figure(cr, &fig, &L, panels, n_panels);
        cairo_status_t st = cairo_status(cr);
        cairo_destroy(cr);
        if (st) rc = cairo_fail(st, path);
    }
    if (!rc) {
        cairo_status_t st;
        if (png) {
            cairo_surface_flush(surf);
            st = cairo_surface_write_to_png_stream(surf, membuf_write, &mb);
        } else {
            cairo_surface_finish(surf);
            st = cairo_surface_status(surf);
        }
        if (st || mb.oom) rc = mb.oom ? steer_err(STEER_ENOMEM, "%s: plot: out of memory", path) : cairo_fail(st, path);
    }
    if (surf) cairo_surface_destroy(surf);
    if (!rc && svg) rc = svg_add_text(&mb, &fig, panels, n_panels, &out);
    if (!rc) rc = svg ? io_write_atomic(path, out.p, out.n) : io_write_atomic(path, mb.p, mb.n);
    free(mb.p);
    free(out.p);
    free(L.fleg);
    free(L.ax);
    free(L.ay);
    return rc;
}

void plot_release_caches(void)
{
    cairo_debug_reset_static_data();
#ifndef RTLD_DEFAULT
#define RTLD_DEFAULT ((void *)0)
#endif
    /* fontconfig is cairo's dependency, not ours: look FcFini up instead of
     * linking it. The object→function pointer cast goes through a union
     * (ISO C has no direct conversion). */
    union {
        void *obj;
        void (*fn)(void);
    } u;
    u.obj = dlsym(RTLD_DEFAULT, "FcFini");
    if (u.obj) u.fn();
}

/* ================================================================ heat maps */

/* Anchors of the colour maps (piecewise linear in RGB between them). */
static const double cmap_div[5][3] = {
    {0.090, 0.275, 0.560}, {0.470, 0.690, 0.860}, {0.970, 0.970, 0.970}, {0.930, 0.560, 0.450}, {0.650, 0.080, 0.130},
};
static const double cmap_seq[3][3] = {{0.970, 0.980, 1.000}, {0.470, 0.690, 0.860}, {0.080, 0.250, 0.550}};

/* t in [0, 1] along n anchors. */
static void cmap_lookup(const double (*anch)[3], int n, double t, double rgb[3])
{
    if (!(t >= 0)) t = 0;
    if (t > 1) t = 1;
    double u = t * (n - 1);
    int i = (int)floor(u);
    if (i >= n - 1) i = n - 2;
    double f = u - i;
    for (int c = 0; c < 3; c++) rgb[c] = anch[i][c] + f * (anch[i + 1][c] - anch[i][c]);
}

/* The shown colour range of a map: diverging maps are symmetric about 0. */
static void cmap_range(plot_cmap cmap, double *lo, double *hi)
{
    if (cmap == PLOT_CMAP_DIVERGING) {
        double m = fmax(fabs(*lo), fabs(*hi));
        if (!(m > 0) || !isfinite(m)) m = 1;
        *lo = -m;
        *hi = m;
    } else if (!(*hi > *lo)) {
        double d = *lo != 0 && isfinite(*lo) ? fabs(*lo) * 0.1 : 1.0;
        if (!isfinite(*lo)) *lo = 0;
        *hi = *lo + d;
        *lo -= d;
    }
}

void plot_cmap_color(plot_cmap cmap, double v, double lo, double hi, double rgb[3])
{
    cmap_range(cmap, &lo, &hi);
    double t = (v - lo) / (hi - lo);
    if (cmap == PLOT_CMAP_DIVERGING) cmap_lookup(cmap_div, 5, t, rgb);
    else cmap_lookup(cmap_seq, 3, t, rgb);
}

typedef struct {
    const plot_heatmap *h;
    double W, H;
    double gx, gy, gw, gh; /* grid rectangle                         */
    double lo, hi;         /* colour range                           */
    axis bar;              /* colour-bar ticks                       */
    int xstride, ystride;  /* tick label thinning                    */
    double bar_x;          /* left edge of the colour bar            */
    double bar_lab_w;      /* widest colour-bar tick label           */
    double ytick_w;        /* widest row label                       */
    double value_fs;       /* font size of cell values; 0: none      */
} hm_layout;

#define HM_BAR_W 16.0

static void hm_tick(const plot_heatmap *h, int axis_x, int i, char *buf, size_t n)
{
    const char *const *t = axis_x ? h->xticks : h->yticks;
    if (t && t[i]) snprintf(buf, n, "%s", t[i]);
    else snprintf(buf, n, "%d", i);
}

static void hm_value_text(const plot_heatmap *h, double v, char *buf, size_t n)
{
    const char *fmt = h->value_fmt && *h->value_fmt ? h->value_fmt : "%.2f";
    snprintf(buf, n, fmt, v);
    if (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1)) memmove(buf, buf + 1, strlen(buf)); /* "-0.00" */
}

static void hm_draw(cairo_t *cr, const hm_layout *L)
{
    const plot_heatmap *h = L->h;
    double cw = L->gw / h->nx, ch = L->gh / h->ny;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    if (h->title && *h->title) {
        cairo_set_source_rgb(cr, 0.05, 0.05, 0.05);
        set_font(cr, FS_TITLE, 1);
        text_at(cr, h->title, L->W / 2, 8, 0.5, 0, 0);
    }
    /* Cells (edges snapped to whole units so neighbours meet without seams). */
    for (int r = 0; r < h->ny; r++)
        for (int c = 0; c < h->nx; c++) {
            double v = h->z[(size_t)r * (size_t)h->nx + (size_t)c];
            double x0 = round(L->gx + c * cw), x1 = round(L->gx + (c + 1) * cw);
            double y0 = round(L->gy + r * ch), y1 = round(L->gy + (r + 1) * ch);
            double rgb[3] = {0.82, 0.82, 0.82};
            if (isfinite(v)) plot_cmap_color(h->cmap, v, L->lo, L->hi, rgb);
            cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
            cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
            cairo_fill(cr);
            if (L->value_fs > 0 && isfinite(v)) {
                char buf[64];
                hm_value_text(h, v, buf, sizeof buf);
                set_font(cr, L->value_fs, 0);
                double lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
                if (lum < 0.5) cairo_set_source_rgb(cr, 1, 1, 1);
                else cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
                text_at(cr, buf, (x0 + x1) / 2, (y0 + y1) / 2, 0.5, 0.5, 0);
            }
        }
    /* Frame and ticks. */
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, crisp(L->gx) - 1, crisp(L->gy) - 1, round(L->gw) + 1, round(L->gh) + 1);
    cairo_stroke(cr);
    set_font(cr, FS_TICK, 0);
    char buf[PLOT_TEXT_MAX];
    for (int c = 0; c < h->nx; c += L->xstride) {
        double X = crisp(L->gx + (c + 0.5) * cw), Y = L->gy + L->gh;
        cairo_move_to(cr, X, Y);
        cairo_line_to(cr, X, Y + 4);
        cairo_stroke(cr);
        hm_tick(h, 1, c, buf, sizeof buf);
        text_at(cr, buf, X, Y + 6, 0.5, 0, 0);
    }
    for (int r = 0; r < h->ny; r += L->ystride) {
        double Y = crisp(L->gy + (r + 0.5) * ch);
        cairo_move_to(cr, L->gx - 1, Y);
        cairo_line_to(cr, L->gx - 5, Y);
        cairo_stroke(cr);
        hm_tick(h, 0, r, buf, sizeof buf);
        text_at(cr, buf, L->gx - 8, Y, 1, 0.5, 0);
    }
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    set_font(cr, FS_LABEL, 0);
    if (h->xlabel && *h->xlabel) text_at(cr, h->xlabel, L->gx + L->gw / 2, L->gy + L->gh + 26, 0.5, 0, 0);
    if (h->ylabel && *h->ylabel)
        text_at(cr, h->ylabel, L->gx - 8 - L->ytick_w - 10 - 16, L->gy + L->gh / 2, 0.5, 0, -M_PI / 2);

    /* Colour bar: a gradient through the map's anchors, top = hi. */
    cairo_pattern_t *g = cairo_pattern_create_linear(0, L->gy + L->gh, 0, L->gy);
    int na = h->cmap == PLOT_CMAP_DIVERGING ? 5 : 3;
    for (int i = 0; i < na; i++) {
        const double *a = h->cmap == PLOT_CMAP_DIVERGING ? cmap_div[i] : cmap_seq[i];
        cairo_pattern_add_color_stop_rgb(g, (double)i / (na - 1), a[0], a[1], a[2]);
    }
    cairo_rectangle(cr, L->bar_x, L->gy, HM_BAR_W, L->gh);
    cairo_set_source(cr, g);
    cairo_fill(cr);
    cairo_pattern_destroy(g);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, crisp(L->bar_x), crisp(L->gy), floor(HM_BAR_W), floor(L->gh));
    cairo_stroke(cr);
    set_font(cr, FS_TICK, 0);
    for (int i = 0; i < L->bar.n; i++) {
        double Y = crisp(L->gy + (1 - axis_frac(&L->bar, L->bar.v[i])) * L->gh);
        cairo_move_to(cr, L->bar_x + HM_BAR_W, Y);
        cairo_line_to(cr, L->bar_x + HM_BAR_W + 4, Y);
        cairo_stroke(cr);
        text_at(cr, L->bar.lab[i], L->bar_x + HM_BAR_W + 6, Y, 0, 0.5, 0);
    }
    if (h->zlabel && *h->zlabel) {
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        set_font(cr, FS_LABEL, 0);
        text_at(cr, h->zlabel, L->bar_x + HM_BAR_W + 6 + L->bar_lab_w + 8, L->gy + L->gh / 2, 0.5, 0, -M_PI / 2);
    }
}

/* out = svg with <title>title</title><desc>desc</desc> after the <svg …> tag. */
static int svg_insert_text(const membuf *svg, const char *title, const char *desc, membuf *out)
{
    const char *s = (const char *)svg->p;
    size_t len = svg->n, at = 0;
    for (size_t i = 0; i + 4 <= len && !at; i++)
        if (memcmp(s + i, "<svg", 4) == 0)
            for (size_t j = i; j < len; j++)
                if (s[j] == '>') {
                    at = j + 1;
                    break;
                }
    if (at == 0) return steer_err(STEER_EFORMAT, "plot: cairo produced SVG without an <svg> element");
    membuf_put(out, s, at);
    membuf_puts(out, "\n<title>");
    xml_escaped(out, title);
    membuf_puts(out, "</title>\n<desc>");
    xml_escaped(out, desc);
    membuf_puts(out, "</desc>");
    membuf_put(out, s + at, len - at);
    if (out->oom) return steer_err(STEER_ENOMEM, "plot: out of memory");
    return STEER_OK;
}

static int hm_layout_compute(cairo_t *mcr, const plot_heatmap *h, hm_layout *L)
{
    memset(L, 0, sizeof *L);
    L->h = h;
    /* Colour range. */
    double lo = 0, hi = 0;
    int any = 0;
    if (isfinite(h->z_min) && isfinite(h->z_max) && h->z_min < h->z_max) {
        lo = h->z_min;
        hi = h->z_max;
        any = 1;
    } else
        for (size_t i = 0; i < (size_t)h->nx * (size_t)h->ny; i++) {
            double v = h->z[i];
            if (!isfinite(v)) continue;
            if (!any || v < lo) lo = v;
            if (!any || v > hi) hi = v;
            any = 1;
        }
    if (!any) lo = hi = 0;
    cmap_range(h->cmap, &lo, &hi);
    L->lo = lo;
    L->hi = hi;

    /* Text sizes. */
    char buf[PLOT_TEXT_MAX];
    set_font(mcr, FS_TICK, 0);
    double xtw = 0, ytw = 0;
    for (int c = 0; c < h->nx; c++) {
        hm_tick(h, 1, c, buf, sizeof buf);
        xtw = fmax(xtw, text_width(mcr, buf));
    }
    for (int r = 0; r < h->ny; r++) {
        hm_tick(h, 0, r, buf, sizeof buf);
        ytw = fmax(ytw, text_width(mcr, buf));
    }
    L->ytick_w = ytw;
    double title_w = 0;
    if (h->title && *h->title) {
        set_font(mcr, FS_TITLE, 1);
        title_w = text_width(mcr, h->title);
    }
    double header = h->title && *h->title ? 8 + 26 + 6 : 12;
    double left = 10 + (h->ylabel && *h->ylabel ? 22 : 0) + ytw + 10;
    double bottom = 6 + 16 + (h->xlabel && *h->xlabel ? 22 : 0) + 8;

    /* Grid size, then the colour-bar ticks (their count depends on it). */
    double gh = h->height > 0 ? 0 : fmin(fmax(300.0 / h->ny, 16), 48) * h->ny;
    if (h->height > 0) gh = h->height - header - bottom;
    if (gh < h->ny || gh < 24)
        return steer_err(STEER_EARG, "plot: heat map height %d too small for %d row(s)", h->height, h->ny);
    L->bar.lo = lo;
    L->bar.hi = hi;
    ticks_linear(&L->bar, clampi((int)(gh / 40), 2, 8));
    set_font(mcr, FS_TICK, 0);
    for (int i = 0; i < L->bar.n; i++) L->bar_lab_w = fmax(L->bar_lab_w, text_width(mcr, L->bar.lab[i]));
    double right = 16 + HM_BAR_W + 6 + L->bar_lab_w + (h->zlabel && *h->zlabel ? 8 + 18 : 0) + 10;
    double gw = h->width > 0 ? h->width - left - right : fmin(fmax(640.0 / h->nx, 16), 64) * h->nx;
    if (gw < h->nx || gw < 24)
        return steer_err(STEER_EARG, "plot: heat map width %d too small for %d column(s)", h->width, h->nx);
    double need = left + gw + right;
    L->W = h->width > 0 ? h->width : ceil(fmax(need, title_w + 40));
    L->H = h->height > 0 ? h->height : ceil(header + gh + bottom);
    L->gx = round(left + (L->W - need) / 2);
    L->gy = header;
    L->gw = gw;
    L->gh = gh;
    L->bar_x = round(L->gx + gw + 16);

    /* Tick label thinning. */
    double cw = gw / h->nx, ch = gh / h->ny;

    /* Cell values: one font size (down to 7) at which the widest fits. */
    if (h->values) {
        double wmax = 0;
        set_font(mcr, 10, 0);
        for (size_t i = 0; i < (size_t)h->nx * (size_t)h->ny; i++)
            if (isfinite(h->z[i])) {
                hm_value_text(h, h->z[i], buf, sizeof buf);
                wmax = fmax(wmax, text_width(mcr, buf));
            }
        double fs = fmin(FS_TICK, ch * 0.45);
        if (wmax > 0) fs = fmin(fs, 10 * (floor(cw) - 4) / wmax);
        L->value_fs = fs >= 7 ? fs : 0;
    }
    L->xstride = 1;
    while (L->xstride < h->nx && cw * L->xstride < xtw + 6) L->xstride++;
    L->ystride = 1;
    while (L->ystride < h->ny && ch * L->ystride < FS_TICK + 3) L->ystride++;
    return STEER_OK;
}

int plot_heatmap_write(const char *path, const plot_heatmap *h)
{
    /* Ownership: borrows everything; creates or replaces path. */
    if (!path || !*path) return steer_err(STEER_EARG, "plot_heatmap_write: empty path");
    int png = ends_with_ci(path, ".png"), svg = ends_with_ci(path, ".svg");
    if (!png && !svg)
        return steer_err(STEER_EARG, "%s: plot_heatmap_write: unknown format (name must end in .png or .svg)", path);
    if (!h || h->nx < 1 || h->ny < 1 || h->nx > 4096 || h->ny > 4096 || !h->z)
        return steer_err(STEER_EARG, "%s: plot_heatmap_write: %d x %d cells (1 to 4096 each) or no values", path,
                         h ? h->nx : 0, h ? h->ny : 0);
    if ((int)h->cmap < PLOT_CMAP_DIVERGING || h->cmap > PLOT_CMAP_SEQUENTIAL)
        return steer_err(STEER_EARG, "%s: plot_heatmap_write: unknown colour map %d", path, (int)h->cmap);
    if (h->width < 0 || h->width > 16384 || h->height < 0 || h->height > 16384 || (h->width > 0 && h->width < 64) ||
        (h->height > 0 && h->height < 64))
        return steer_err(STEER_EARG, "%s: plot_heatmap_write: size %dx%d out of range (64 to 16384, or 0)", path,
                         h->width, h->height);
    double scale = h->scale == 0 ? 1.0 : h->scale;
    if (!(scale >= 0.1 && scale <= 10))
        return steer_err(STEER_EARG, "%s: plot_heatmap_write: scale %g out of range (0.1 to 10)", path, h->scale);

    hm_layout L;
    membuf mb = {0}, out = {0};
    cairo_surface_t *msurf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *mcr = cairo_create(msurf);
    int rc = cairo_status(mcr) ? cairo_fail(cairo_status(mcr), path) : hm_layout_compute(mcr, h, &L);
    cairo_destroy(mcr);
    cairo_surface_destroy(msurf);

    cairo_surface_t *surf = NULL;
    if (!rc) {
        if (png) {
            int pw = (int)lround(L.W * scale), ph = (int)lround(L.H * scale);
            if (pw > 32767 || ph > 32767)
                rc = steer_err(STEER_EARG, "%s: PNG of %dx%d pixels is too large", path, pw, ph);
            else surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, pw, ph);
        } else surf = cairo_svg_surface_create_for_stream(membuf_write, &mb, L.W, L.H);
    }
    if (!rc) {
        cairo_t *cr = cairo_create(surf);
        if (png) cairo_scale(cr, scale, scale);
        if (!cairo_status(cr)) hm_draw(cr, &L);
        cairo_status_t st = cairo_status(cr);
        cairo_destroy(cr);
        if (st) rc = cairo_fail(st, path);
    }
    if (!rc) {
        cairo_status_t st;
        if (png) {
            cairo_surface_flush(surf);
            st = cairo_surface_write_to_png_stream(surf, membuf_write, &mb);
        } else {
            cairo_surface_finish(surf);
            st = cairo_surface_status(surf);
        }
        if (st || mb.oom) rc = mb.oom ? steer_err(STEER_ENOMEM, "%s: plot: out of memory", path) : cairo_fail(st, path);
    }
    if (surf) cairo_surface_destroy(surf);
    if (!rc && svg) {
        char desc[PLOT_TEXT_MAX];
        snprintf(desc, sizeof desc, "heat map: %d rows x %d columns; x: %s; y: %s; colour: %s", h->ny, h->nx,
                 h->xlabel ? h->xlabel : "", h->ylabel ? h->ylabel : "", h->zlabel ? h->zlabel : "");
        rc = svg_insert_text(&mb, h->title && *h->title ? h->title : "heat map", desc, &out);
    }
    if (!rc) rc = svg ? io_write_atomic(path, out.p, out.n) : io_write_atomic(path, mb.p, mb.n);
    free(mb.p);
    free(out.p);
    return rc;
}

int plot_write_pair(const char *dir, const char *stem, const plot_figure *fig, const plot_panel *panels,
                    int n_panels)
{
    static const char *const ext[2] = {"png", "svg"};
    char path[4200];
    for (int e = 0; e < 2; e++) {
        int n = snprintf(path, sizeof path, "%s/%s.%s", dir, stem, ext[e]);
        if (n < 0 || n >= (int)sizeof path) return steer_err(STEER_EARG, "%s/%s: path too long", dir, stem);
        int rc = plot_write(path, fig, panels, n_panels);
        if (rc) return rc;
    }
    return STEER_OK;
}

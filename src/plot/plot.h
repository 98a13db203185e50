/*
 * src/plot/ — line plots and heat maps with cairo, used by the training tier
 * (loss curves) and the experiments; the only code that links cairo.
 *
 * plot.h — small line plots with cairo (plot.c): arrays in, a PNG or SVG
 * file out. One figure is a grid of panels; a panel holds several series
 * (lines, optionally with markers), axes with "nice" ticks and labels, a
 * title and a legend. Options: log-scaled y, y (and x) ranges shared across
 * panels, one legend for the whole figure. Training loss curves
 * (tr_log_plot) and the experiments' figures ("K panels, x = layer,
 * y = ΔKL, a line per α") are both made with it.
 *
 * Files are written atomically: rendered in memory, then written to a
 * temporary file beside the target and renamed; on failure nothing is left.
 * Text is drawn with cairo's toy font API ("sans-serif"); in SVG output cairo
 * draws glyphs as paths, so the figure title, panel titles, axis labels and
 * legend labels are also written as <title> and <desc> text for search and
 * accessibility.
 */
#ifndef STEER_PLOT_H
#define STEER_PLOT_H

#include "base.h"

/* One line. Arrays are borrowed for the duration of plot_write. */
typedef struct {
    const char *label; /* legend text; NULL or "": not in the legend          */
    const double *x;   /* [n]; NULL: 0, 1, …, n − 1                            */
    const double *y;   /* [n]; non-finite values (and values <= 0 on a log
                          axis) are gaps: the line breaks there               */
    int n;
    int color;   /* 0: automatic (the series' index in its panel, so the k-th
                    series has the same colour in every panel); k >= 1:
                    palette colour k − 1 (modulo the palette)               */
    int markers; /* 1: a dot at every point                                 */
    int dashed;  /* 1: dashed line                                          */
    const double *yerr; /* [n] or NULL: a vertical bar y ± yerr[i] at every
                           point whose yerr is finite and > 0 (e.g. standard
                           errors); the y range includes the bars            */
} plot_series;

typedef struct {
    const char *title;  /* may be NULL                                        */
    const char *xlabel; /* may be NULL                                        */
    const char *ylabel; /* may be NULL                                        */
    const plot_series *series;
    int n_series;
} plot_panel;

typedef enum {
    PLOT_LEGEND_PANEL = 0, /* a legend inside each panel that has labels      */
    PLOT_LEGEND_NONE,
    PLOT_LEGEND_FIGURE,    /* one legend under the figure title: every distinct
                              label, in order of first appearance            */
} plot_legend;

/* Figure options; a zero-initialised struct is valid (all defaults). */
typedef struct {
    const char *title; /* figure title above the panels; NULL: none           */
    int width, height; /* whole figure in PNG pixels / SVG points; 0: 480 per
                          column × 340 per row (plus the title and legend)    */
    double scale;      /* PNG only: pixels per unit (0: 1); the PNG is
                          round(width·scale) × round(height·scale)           */
    int cols;          /* panels per row; 0: n for n <= 3, else ⌈√n⌉         */
    int log_y;         /* 1: logarithmic y axes                               */
    int share_y;       /* 1: one y range for every panel (tick labels on the
                          first column only)                                 */
    int share_x;       /* 1: one x range for every panel                      */
    plot_legend legend;
    double y_min, y_max; /* y_min < y_max (both finite): fixed y range         */
    double x_min, x_max; /* x_min < x_max (both finite): fixed x range         */
    int x_int_ticks;     /* 1: x ticks only at whole numbers (e.g. layers)     */
    int log_x;           /* 1: logarithmic x axes (x values <= 0 are gaps);
                            added for the MLP histograms (mlp_analysis.c)     */
} plot_figure;

/* Renders panels[0..n_panels) and writes path: PNG for a name ending in
 * ".png", SVG for ".svg" (case-insensitive), STEER_EARG otherwise (and for
 * bad arguments: n_panels < 1, a series with n > 0 and no y, sizes out of
 * range). STEER_EIO when the file cannot be written (nothing is left). */
int plot_write(const char *path, const plot_figure *fig, const plot_panel *panels, int n_panels);

/* Writes DIR/STEM.png and DIR/STEM.svg (plot_write each; stops at the first
 * error, which names the file). */
int plot_write_pair(const char *dir, const char *stem, const plot_figure *fig, const plot_panel *panels,
                    int n_panels);

/* Releases cairo's and fontconfig's process-wide font caches (cairo's
 * cairo_debug_reset_static_data and fontconfig's FcFini, the latter looked up
 * at run time). Only for leak-checked builds: call once at exit, after every
 * plot_write has returned and while no other thread uses cairo. A later
 * plot_write still works (the caches are rebuilt). */
void plot_release_caches(void);

/* ---------------------------------------------------------------- heat maps */

typedef enum {
    PLOT_CMAP_DIVERGING = 0, /* blue (negative) – white (0) – red (positive),
                                range symmetric about 0                        */
    PLOT_CMAP_SEQUENTIAL,    /* white (low) – dark blue (high)                 */
} plot_cmap;

/* A grid of cells coloured by value, with a colour bar (ticks and a label) on
 * the right. A zero-initialised struct plus nx, ny and z is valid. */
typedef struct {
    const char *title;  /* figure title; NULL: none                           */
    const char *xlabel; /* under the columns; may be NULL                     */
    const char *ylabel; /* left of the rows; may be NULL                      */
    const char *zlabel; /* beside the colour bar; may be NULL                 */
    int nx, ny;         /* columns, rows: 1 … 4096 each                       */
    const double *z;    /* [ny][nx] row-major, row 0 drawn at the top; a
                           non-finite value is a grey cell without a value   */
    const char *const *xticks; /* [nx] column labels; NULL: 0 … nx − 1 (labels
                                  thinned when they would overlap)          */
    const char *const *yticks; /* [ny] row labels; NULL: 0 … ny − 1          */
    plot_cmap cmap;
    double z_min, z_max; /* z_min < z_max (both finite): fixed colour range
                            (diverging: ±max(|z_min|, |z_max|)); else from the
                            finite values                                    */
    int values;          /* 1: each cell's value printed in it where it fits  */
    const char *value_fmt; /* printf format of one double for values; NULL:
                              "%.2f"                                         */
    int width, height;   /* whole figure; 0: from the cell counts            */
    double scale;        /* PNG only: pixels per unit (0: 1)                  */
} plot_heatmap;

/* The colour of value v on a colour map with range [lo, hi] (clamped), as RGB
 * in [0, 1]. Diverging maps centre white at 0 and use ±max(|lo|, |hi|). */
void plot_cmap_color(plot_cmap cmap, double v, double lo, double hi, double rgb[3]);

/* Renders the heat map and writes path (PNG or SVG by the name, as
 * plot_write; the SVG carries the title, the axis labels and the colour bar's
 * label as <title>/<desc> text). STEER_EARG for bad arguments, STEER_EIO when
 * the file cannot be written (nothing is left). */
int plot_heatmap_write(const char *path, const plot_heatmap *h);

#endif /* STEER_PLOT_H */

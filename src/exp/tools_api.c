/*
 * tools_api.c — the small public helpers of libsteer-exp for programs that
 * draw their own figures and write their own files (steer_exp.h, report
 * section): line plots through plot.c, atomic file writes through base.
 */
#include "steer_exp.h"
#include "base.h"
#include "plot.h"

#include <stdlib.h>

int steer_plot_write(const char *path, const steer_plot_figure *fig, const steer_plot_panel *panels, int n_panels)
{
    /* Ownership: borrows everything; creates or replaces path. */
    if (!path || !fig || !panels || n_panels < 1)
        return steer_err(STEER_EARG, "steer_plot_write: no path, figure or panels");
    size_t n_ser = 0;
    for (int i = 0; i < n_panels; i++) {
        if (panels[i].n_series < 0 || (panels[i].n_series > 0 && !panels[i].series))
            return steer_err(STEER_EARG, "%s: panel %d has no series array", path, i);
        n_ser += (size_t)panels[i].n_series;
    }
    plot_panel *pan = calloc((size_t)n_panels, sizeof *pan);
    plot_series *ser = calloc(n_ser ? n_ser : 1, sizeof *ser);
    if (!pan || !ser) {
        free(pan);
        free(ser);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    size_t j = 0;
    for (int i = 0; i < n_panels; i++) {
        const steer_plot_panel *p = &panels[i];
        pan[i] = (plot_panel){.title = p->title, .xlabel = p->xlabel, .ylabel = p->ylabel, .series = ser + j,
                              .n_series = p->n_series};
        for (int k = 0; k < p->n_series; k++, j++) {
            const steer_plot_series *s = &p->series[k];
            ser[j] = (plot_series){.label = s->label, .x = s->x, .y = s->y, .n = s->n, .color = s->color,
                                   .markers = s->markers, .dashed = s->dashed};
        }
    }
    plot_figure f = {.title = fig->title, .width = fig->width, .height = fig->height, .scale = fig->scale,
                     .cols = fig->cols, .log_y = fig->log_y, .share_y = fig->share_y, .share_x = fig->share_x,
                     .legend = fig->legend == STEER_PLOT_LEGEND_FIGURE ? PLOT_LEGEND_FIGURE
                               : fig->legend == STEER_PLOT_LEGEND_NONE ? PLOT_LEGEND_NONE
                                                                       : PLOT_LEGEND_PANEL,
                     .y_min = fig->y_min, .y_max = fig->y_max, .x_min = fig->x_min, .x_max = fig->x_max,
                     .x_int_ticks = fig->x_int_ticks, .log_x = fig->log_x};
    int rc = plot_write(path, &f, pan, n_panels);
    free(pan);
    free(ser);
    return rc;
}

int steer_write_file_atomic(const char *path, const void *data, size_t size)
{
    /* Ownership: borrows path and data; creates or replaces path. */
    if (!path || !*path || (size && !data)) return steer_err(STEER_EARG, "steer_write_file_atomic: no path or data");
    return io_write_atomic(path, data, size);
}

int steer_heatmap_write(const char *path, const steer_heatmap *h)
{
    /* Ownership: borrows everything; creates or replaces path. */
    if (!path || !h) return steer_err(STEER_EARG, "steer_heatmap_write: no path or heat map");
    plot_heatmap p = {.title = h->title, .xlabel = h->xlabel, .ylabel = h->ylabel, .zlabel = h->zlabel,
                      .nx = h->nx, .ny = h->ny, .z = h->z, .xticks = h->xticks, .yticks = h->yticks,
                      .cmap = h->cmap == STEER_CMAP_SEQUENTIAL ? PLOT_CMAP_SEQUENTIAL : PLOT_CMAP_DIVERGING,
                      .z_min = h->z_min, .z_max = h->z_max, .values = h->values, .value_fmt = h->value_fmt,
                      .width = h->width, .height = h->height, .scale = h->scale};
    return plot_heatmap_write(path, &p);
}

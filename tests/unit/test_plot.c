/*
 * test_plot.c — cairo line plots (src/plot.c) and the training log's
 * loss-curve figure (tr_log_plot in src/train_log.c).
 *
 * Writes PNG and SVG figures of known data to a temporary directory and
 * checks: the files exist; the PNG has the PNG signature and the requested
 * pixel size (IHDR), and its pixels show the series (read back with cairo);
 * the SVG starts with "<?xml" or "<svg" and carries the (escaped) title text;
 * multi-panel figures (shared and log y, figure legend, gaps) render; a
 * write into a missing directory fails with STEER_EIO and leaves nothing;
 * bad arguments are STEER_EARG without files; no temporary files remain.
 */
#include "plot.h"
#include "train_optim.h"
#include "test_util.h"

#include <cairo.h>
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Entries of tmpdir (excluding . and ..). */
static int dir_count(void)
{
    DIR *d = opendir(tmpdir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the PNG signature and IHDR size. */
static void check_png(const char *path, int w, int h)
{
    size_t n = 0;
    unsigned char *d = tu_read_file(path, &n);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    CHECK(n > 33 && memcmp(d, sig, 8) == 0, "%s: no PNG signature", path);
    CHECK(n > 33 && memcmp(d + 12, "IHDR", 4) == 0, "%s: first chunk is not IHDR", path);
    if (n > 33) {
        uint32_t pw = be32(d + 16), ph = be32(d + 20);
        printf("%-60s %u x %u (want %d x %d), %zu bytes\n", path + strlen(tmpdir) + 1, pw, ph, w, h, n);
        CHECK((int)pw == w && (int)ph == h, "%s: %ux%u, want %dx%d", path, pw, ph, w, h);
    }
    free(d);
}

/* Pixels of the PNG close to an RGB colour (±tol per channel) and pixels
 * that are not white. */
static void png_pixels(const char *path, double r, double g, double b, int tol, int *n_color, int *n_nonwhite)
{
    *n_color = *n_nonwhite = 0;
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        CHECK(0, "%s: cairo cannot read it back", path);
        cairo_surface_destroy(s);
        return;
    }
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    int stride = cairo_image_surface_get_stride(s);
    const unsigned char *px = cairo_image_surface_get_data(s);
    int R = (int)lround(r * 255), G = (int)lround(g * 255), B = (int)lround(b * 255);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint32_t v;
            memcpy(&v, px + (size_t)y * (size_t)stride + (size_t)x * 4, 4);
            int pr = (v >> 16) & 255, pg = (v >> 8) & 255, pb = v & 255;
            if (pr != 255 || pg != 255 || pb != 255) (*n_nonwhite)++;
            if (abs(pr - R) <= tol && abs(pg - G) <= tol && abs(pb - B) <= tol) (*n_color)++;
        }
    cairo_surface_destroy(s);
}

static void test_single(void)
{
    /* Known data: a rising line (palette colour 0, blue) and a falling one. */
    double x[50], y1[50], y2[50];
    for (int i = 0; i < 50; i++) {
        x[i] = i;
        y1[i] = 0.1 * i;
        y2[i] = 5 - 0.1 * i;
    }
    plot_series s[2] = {{.label = "rising", .x = x, .y = y1, .n = 50},
                        {.label = "falling", .x = x, .y = y2, .n = 50, .dashed = 1, .markers = 1}};
    plot_panel p = {.title = "two lines", .xlabel = "step", .ylabel = "value", .series = s, .n_series = 2};
    plot_figure fig = {.title = "Known data & <escapes>", .width = 640, .height = 400};
    char png[512], png2[512], svg[512];
    path_in(png, sizeof png, "single.png");
    path_in(png2, sizeof png2, "single_x2.png");
    path_in(svg, sizeof svg, "single.svg");
    CHECK_OK(plot_write(png, &fig, &p, 1));
    check_png(png, 640, 400);
    int nc = 0, nw = 0;
    png_pixels(png, 0.122, 0.467, 0.706, 3, &nc, &nw);
    printf("%-60s %d blue pixels, %d non-white\n", "single.png: series drawn", nc, nw);
    CHECK(nc > 300 && nw > 3000, "single.png looks empty: %d blue, %d non-white pixels", nc, nw);

    fig.scale = 2;
    CHECK_OK(plot_write(png2, &fig, &p, 1));
    check_png(png2, 1280, 800);
    fig.scale = 0;

    CHECK_OK(plot_write(svg, &fig, &p, 1));
    size_t n = 0;
    char *d = tu_read_file(svg, &n);
    CHECK(strncmp(d, "<?xml", 5) == 0 || strncmp(d, "<svg", 4) == 0, "SVG starts with %.20s", d);
    CHECK(strstr(d, "<title>Known data &amp; &lt;escapes&gt;</title>") != NULL, "SVG lacks the escaped title");
    CHECK(strstr(d, "rising") && strstr(d, "falling") && strstr(d, "two lines"), "SVG lacks labels in <desc>");
    CHECK(strstr(d, "</svg>") != NULL, "SVG not closed");
    printf("%-60s %zu bytes, title and labels present\n", "single.svg", n);
    free(d);

    /* Rewriting replaces the file atomically. */
    CHECK_OK(plot_write(png, &fig, &p, 1));
    check_png(png, 640, 400);
    remove(png);
    remove(png2);
    remove(svg);
}

static void test_grid(void)
{
    /* "K panels, x = layer, y = ΔKL, a line per α": 5 panels, 3 α each, one
     * shared log-scaled y axis, one figure legend; a gap (NaN) and a
     * non-positive value (skipped on the log axis); an empty panel. */
    enum { K = 5, L = 12, A = 3 };
    static double xs[L], ys[K][A][L];
    static const char *alpha_names[A] = {"alpha = 1", "alpha = 4", "alpha = 16"};
    plot_series ser[K][A];
    plot_panel pan[K + 1];
    static char titles[K][32];
    for (int l = 0; l < L; l++) xs[l] = l;
    for (int k = 0; k < K; k++) {
        for (int a = 0; a < A; a++) {
            for (int l = 0; l < L; l++) ys[k][a][l] = 1e-3 * pow(4.0, a) * (1 + l) * (k + 1);
            ser[k][a] = (plot_series){.label = alpha_names[a], .x = xs, .y = ys[k][a], .n = L, .markers = 1};
        }
        snprintf(titles[k], sizeof titles[k], "task %d", k);
        pan[k] = (plot_panel){
            .title = titles[k], .xlabel = "layer", .ylabel = "ΔKL (nats)", .series = ser[k], .n_series = A};
    }
    ys[1][0][5] = NAN;
    ys[2][1][3] = -1;
    pan[K] = (plot_panel){.title = "empty"};
    plot_figure fig = {.title = "ΔKL by layer", .log_y = 1, .share_y = 1, .share_x = 1, .legend = PLOT_LEGEND_FIGURE};
    char png[512], svg[512];
    path_in(png, sizeof png, "grid.png");
    path_in(svg, sizeof svg, "grid.svg");
    CHECK_OK(plot_write(png, &fig, pan, K + 1));
    /* Default size: ⌈√6⌉ = 3 columns × 2 rows of 480 × 340, plus a header of
     * 8 + 26 (title) + 18 (one legend row) + 4 = 56. */
    check_png(png, 3 * 480, 2 * 340 + 56);
    int nc = 0, nw = 0;
    png_pixels(png, 1.0, 0.498, 0.055, 3, &nc, &nw); /* palette colour 1 (orange) */
    CHECK(nc > 200, "grid.png: second series barely drawn (%d orange pixels)", nc);
    CHECK_OK(plot_write(svg, &fig, pan, K + 1));
    char *d = tu_read_file(svg, NULL);
    CHECK(strstr(d, "<title>ΔKL by layer</title>") && strstr(d, "alpha = 16") && strstr(d, "task 4"),
          "grid.svg lacks its text");
    free(d);

    /* Linear y, per-panel legends, fixed y range, 2 columns. */
    fig.log_y = 0;
    fig.share_y = 0;
    fig.legend = PLOT_LEGEND_PANEL;
    fig.cols = 2;
    fig.y_min = -0.5;
    fig.y_max = 2;
    CHECK_OK(plot_write(png, &fig, pan, K));
    check_png(png, 2 * 480, 3 * 340 + 8 + 26 + 4);
    remove(png);
    remove(svg);
}

static void test_errors(void)
{
    double y[3] = {1, 2, 3};
    plot_series s = {.label = "a", .y = y, .n = 3};
    plot_panel p = {.title = "t", .series = &s, .n_series = 1};
    char path[512];
    int before = dir_count();

    /* A missing directory: STEER_EIO, nothing created. */
    path_in(path, sizeof path, "no_such_dir/fig.png");
    int rc = plot_write(path, NULL, &p, 1);
    printf("%-60s rc %d: %s\n", "write into a missing directory", rc, steer_last_error());
    CHECK(rc == STEER_EIO, "missing directory: rc %d", rc);
    char dir[512];
    path_in(dir, sizeof dir, "no_such_dir");
    CHECK(!file_exists(dir) && !file_exists(path), "missing directory: something was created");
    path_in(path, sizeof path, "no_such_dir/fig.svg");
    CHECK(plot_write(path, NULL, &p, 1) == STEER_EIO, "missing directory (SVG)");

    /* Bad arguments. */
    path_in(path, sizeof path, "fig.pdf");
    CHECK(plot_write(path, NULL, &p, 1) == STEER_EARG, "unknown extension accepted");
    path_in(path, sizeof path, "fig.png");
    CHECK(plot_write(path, NULL, &p, 0) == STEER_EARG, "zero panels accepted");
    plot_series bad = {.label = "b", .y = NULL, .n = 3};
    plot_panel pb = {.series = &bad, .n_series = 1};
    CHECK(plot_write(path, NULL, &pb, 1) == STEER_EARG, "series without y accepted");
    plot_figure tiny = {.width = 64, .height = 64};
    CHECK(plot_write(path, &tiny, &p, 1) == STEER_EARG, "64x64 figure accepted: %s", steer_last_error());
    plot_figure neg = {.width = -5};
    CHECK(plot_write(path, &neg, &p, 1) == STEER_EARG, "negative width accepted");
    CHECK(dir_count() == before, "failed writes left %d files", dir_count() - before);

    /* Invalid UTF-8 and control characters in labels are drawn, not fatal. */
    plot_series odd = {.label = "bad \xff\xfe utf8\n", .y = y, .n = 3};
    plot_panel po = {.title = "t\x01", .series = &odd, .n_series = 1};
    path_in(path, sizeof path, "odd.svg");
    CHECK_OK(plot_write(path, NULL, &po, 1));
    remove(path);
}

static void test_log_plot(void)
{
    char csv[512], png[512], svg[512];
    path_in(csv, sizeof csv, "train.csv");
    path_in(png, sizeof png, "loss.png");
    path_in(svg, sizeof svg, "loss.svg");
    const char *ev[2] = {"eval_loss", "eval_acc"};
    tr_log *l = NULL;
    CHECK_OK(tr_log_open(csv, ev, 2, -1, &l));
    tr_schedule sc = tr_schedule_default();
    sc.total_steps = 200;
    for (int s = 1; s <= 200; s++) {
        double e[2] = {2.5 * exp(-s / 80.0) + 0.3, 1 - exp(-s / 50.0)};
        CHECK_OK(tr_log_row(l, s, tr_schedule_lr(&sc, s - 1), 2.5 * exp(-s / 60.0) + 0.2, 1.0, s % 20 == 0 ? e : NULL,
                            5000));
    }
    CHECK_OK(tr_log_close(l));
    CHECK_OK(tr_log_plot(csv, png, "toy run"));
    check_png(png, 3 * 480, 340 + 8 + 26 + 4);
    CHECK_OK(tr_log_plot(csv, svg, "toy run"));
    char *d = tu_read_file(svg, NULL);
    CHECK(strstr(d, "<title>toy run</title>") && strstr(d, "eval_loss") && strstr(d, "learning rate"),
          "loss.svg lacks its text");
    free(d);
    /* Not a training log. */
    FILE *f = fopen(csv, "wb");
    fputs("a,b\n1,2\n", f);
    fclose(f);
    CHECK(tr_log_plot(csv, png, NULL) == STEER_EFORMAT, "plotting a non-log accepted");
    f = fopen(csv, "wb");
    fputs("step,lr,loss\n1,2\n", f);
    fclose(f);
    CHECK(tr_log_plot(csv, png, NULL) == STEER_EFORMAT, "short row accepted: %s", steer_last_error());
    remove(csv);
    remove(png);
    remove(svg);
}

/* Error bars: a flat line at 0 with ±1 bars, fixed y range [-2, 2] on a
 * 400-pixel plot. The bars add blue pixels away from the line (a bar spans
 * ~a quarter of the plot height); NaN or zero errors draw nothing. */
static void test_error_bars(void)
{
    double x[5] = {0, 1, 2, 3, 4}, y[5] = {0, 0, 0, 0, 0}, e[5] = {1, 1, 1, 1, 1};
    double none[5] = {NAN, 0, -1, NAN, 0};
    plot_series s = {.x = x, .y = y, .n = 5};
    plot_panel p = {.series = &s, .n_series = 1};
    plot_figure fig = {.width = 400, .height = 400, .y_min = -2, .y_max = 2};
    char png[512];
    path_in(png, sizeof png, "bars.png");
    int plain = 0, bars = 0, nobars = 0, nc = 0; /* non-white pixels (the bars are thin and antialiased) */
    CHECK_OK(plot_write(png, &fig, &p, 1));
    png_pixels(png, 0.122, 0.467, 0.706, 3, &nc, &plain);
    s.yerr = e;
    CHECK_OK(plot_write(png, &fig, &p, 1));
    png_pixels(png, 0.122, 0.467, 0.706, 3, &nc, &bars);
    s.yerr = none;
    CHECK_OK(plot_write(png, &fig, &p, 1));
    png_pixels(png, 0.122, 0.467, 0.706, 3, &nc, &nobars);
    unlink(png);
    printf("%-60s %d / %d / %d non-white pixels (line, +bars, +NaN/0 bars)\n", "bars.png: error bars", plain, bars,
           nobars);
    /* 5 bars × ~150 px tall (±1 of a 4-unit range in ~300 px of plot) */
    CHECK(bars >= plain + 5 * 100, "error bars barely drawn: %d non-white pixels with bars, %d without", bars, plain);
    CHECK(nobars == plain, "NaN/zero/negative errors drew something: %d vs %d", nobars, plain);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_plot.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "FAIL: mkdtemp %s\n", tmpdir);
        return 1;
    }
    test_single();
    test_grid();
    test_errors();
    test_log_plot();
    test_error_bars();
    int left = dir_count();
    CHECK(left == 0, "%d files left in %s (temporary files?)", left, tmpdir);
    rmdir(tmpdir);
    /* Release cairo's and fontconfig's caches so the leak checker sees only
     * our own allocations. */
    plot_release_caches();
    return tu_finish("test_plot");
}

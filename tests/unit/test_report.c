/*
 * test_report.c — sweep figures (steer_sweep_figures), heat maps
 * (plot_heatmap_write), the HTML/Markdown report (steer_report_write) and the
 * study adapt summary (steer_adapt_summary_write/read).
 *
 * Fixture: a sweep directory written with the table API (12 items, 2 sites ×
 * 3 layers × 3 α × K = 2 tokens, mean ΔKL = α·c[site][layer][token] with
 * known c, standard error 0.1·α): items.csv, dkl.csv, summary.json.
 * Checks: every figure exists, PNGs have the expected pixel size, the heat
 * map's extreme cells have the map's end colours (dark blue for the most
 * negative, dark red for the most positive) in the right place (token 1 row
 * above token 2), SVGs carry their titles; the report embeds the PNG bytes
 * exactly (base64 decoded back), has the tables' numbers and the best cells,
 * links the figures relatively from the Markdown; bad input (malformed
 * items.csv line, missing or truncated summary.json, no items, missing or
 * empty directory) fails with an error naming the file (and line) and writes
 * nothing.
 */
#include "plot.h"
#include "steer_exp.h"
#include "test_util.h"

#include <cairo.h>
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

/* c[site][layer][token]: ΔKL at α = 1 (ΔKL = α·c). */
static const double cval[2][3][2] = {
    {{-1.0, -0.5}, {-1.5, -3.0}, {0.5, 1.0}},  /* mlp_in: min -3 at layer 1, token 2  */
    {{-0.2, -0.1}, {0.3, 0.4}, {2.0, -1.0}},   /* resid_post: max +2 at layer 2, token 1 */
};
static const char *const sites[2] = {"mlp_in", "resid_post"};
static const double alphas[3] = {0, 0.5, 1};

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "FAIL: cannot write %s\n", path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

/* The sweep through the table API: item i has ΔKL = α·(c + e_i), e_i = ±x
 * alternating (x = 0.1·√11, so the standard error over 12 items is 0.1·α),
 * KL(B ‖ F) = 0.5 and 0.75 at tokens 1 and 2. */
static void make_fixture(const char *dir)
{
    steer_sweep_params p = steer_sweep_default_params();
    p.n_sites = 2;
    p.sites[0] = STEER_SITE_MLP_IN;
    p.sites[1] = STEER_SITE_RESID_POST;
    p.n_layers = 3;
    for (int l = 0; l < 3; l++) p.layers[l] = l;
    p.n_alphas = 3;
    for (int a = 0; a < 3; a++) p.alphas[a] = (float)alphas[a];
    p.tokens = 2;
    steer_sweep_info info = {.base_path = "models/base260.bin", .ft_path = "models/ft260.bin",
                             .data = "winogrande:dev.jsonl", .command = "steer sweep --fixture <x>", .arch = "llama",
                             .n_layers = 3, .d_model = 64, .n_data = 12};
    steer_sweep_table *t = NULL;
    CHECK_OK(steer_sweep_table_new(&p, &info, &t));
    const double x = 0.1 * sqrt(11.0), kb[2] = {0.5, 0.75};
    for (int i = 0; i < 12; i++) {
        double kl[2 * 3 * 3 * 2];
        for (int s = 0; s < 2; s++)
            for (int l = 0; l < 3; l++)
                for (int a = 0; a < 3; a++)
                    for (int k = 0; k < 2; k++)
                        kl[((s * 3 + l) * 3 + a) * 2 + k] = kb[k] + alphas[a] * (cval[s][l][k] + (i % 2 ? -x : x));
        char id[16];
        snprintf(id, sizeof id, "item%d", i);
        steer_sweep_item it = {.item = i, .id = id, .n_tokens = 2, .kl_base = kb, .kl_steered = kl};
        CHECK_OK(steer_sweep_table_add(t, &it));
    }
    CHECK_OK(steer_sweep_table_write(t, dir, 1.5));
    steer_sweep_table_free(t);
}

/* Copies file name from dir src to dir dst. */
static void copy_file(const char *src, const char *dst, const char *name)
{
    char p[1024];
    size_t n = 0;
    snprintf(p, sizeof p, "%s/%s", src, name);
    unsigned char *d = tu_read_file(p, &n);
    snprintf(p, sizeof p, "%s/%s", dst, name);
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite(d, 1, n, f) == n, "cannot copy %s", p);
    if (f) fclose(f);
    free(d);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Width and height from the PNG's IHDR; -1 if not a PNG. */
static void png_size(const char *path, int *w, int *h)
{
    size_t n = 0;
    unsigned char *d = tu_read_file(path, &n);
    *w = *h = -1;
    if (n > 33 && memcmp(d + 1, "PNG", 3) == 0 && memcmp(d + 12, "IHDR", 4) == 0) {
        *w = (int)be32(d + 16);
        *h = (int)be32(d + 20);
    }
    free(d);
}

/* Pixels within ±tol of colour rgb (0..1): count and centroid. */
static int color_blob(const char *path, const double rgb[3], int tol, double *cx, double *cy)
{
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    int cnt = 0;
    double sx = 0, sy = 0;
    if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
        int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
        int stride = cairo_image_surface_get_stride(s);
        const unsigned char *px = cairo_image_surface_get_data(s);
        int R = (int)lround(rgb[0] * 255), G = (int)lround(rgb[1] * 255), B = (int)lround(rgb[2] * 255);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint32_t v;
                memcpy(&v, px + (size_t)y * (size_t)stride + (size_t)x * 4, 4);
                int pr = (v >> 16) & 255, pg = (v >> 8) & 255, pb = v & 255;
                if (abs(pr - R) <= tol && abs(pg - G) <= tol && abs(pb - B) <= tol) {
                    cnt++;
                    sx += x;
                    sy += y;
                }
            }
    } else CHECK(0, "%s: cairo cannot read it back", path);
    cairo_surface_destroy(s);
    *cx = cnt ? sx / cnt : -1;
    *cy = cnt ? sy / cnt : -1;
    return cnt;
}

static int has_text(const char *path, const char *needle)
{
    char *d = tu_read_file(path, NULL);
    int r = strstr(d, needle) != NULL;
    free(d);
    return r;
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void test_figures(const char *dir)
{
    CHECK_OK(steer_sweep_figures(dir));
    char p[1024];
    static const char *const kinds[4] = {"dkl_%s.png", "dkl_%s.svg", "heatmap_%s.png", "heatmap_%s.svg"};
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 4; k++) {
            char name[64];
            snprintf(name, sizeof name, kinds[k], sites[s]);
            snprintf(p, sizeof p, "%s/%s", dir, name);
            CHECK(exists(p), "missing %s", name);
        }

    /* ΔKL figure: K = 2 panels in one row, 340 wide each (at least 640), one
     * row of 340 + header 8 + 26 (title) + 18 (legend row) + 4. */
    int w, h;
    snprintf(p, sizeof p, "%s/dkl_mlp_in.png", dir);
    png_size(p, &w, &h);
    printf("%-50s %d x %d (want 680 x 396)\n", "dkl_mlp_in.png", w, h);
    CHECK(w == 680 && h == 396, "dkl_mlp_in.png is %dx%d", w, h);
    /* The α = 1 line (palette colour 2, green) is drawn. */
    double green[3] = {0.173, 0.627, 0.173}, cx, cy;
    int ng = color_blob(p, green, 3, &cx, &cy);
    printf("%-50s %d pixels of the α = 1 line\n", "dkl_mlp_in.png", ng);
    CHECK(ng > 100, "α = 1 line barely drawn (%d pixels)", ng);

    /* Heat map: 2 rows of 48 under a 40 header, 52 below: 188 high; 3 columns
     * of 64 plus margins (at least 192 + 100 wide, or the title's width). */
    snprintf(p, sizeof p, "%s/heatmap_mlp_in.png", dir);
    png_size(p, &w, &h);
    printf("%-50s %d x %d (want h 188, w >= 292)\n", "heatmap_mlp_in.png", w, h);
    CHECK(h == 188 && w >= 292 && w < 2000, "heatmap_mlp_in.png is %dx%d", w, h);

    /* Most negative cell (-3 at layer 1, token 2) = the map's dark-blue end;
     * -1.5 (= -zmax/2, layer 1, token 1) = the light-blue anchor; the blue
     * end is blue (b > r), the cells a 64 × 48 block minus the value text,
     * -3 directly below -1.5 (token 1 is the top row). */
    const double dark_blue[3] = {0.090, 0.275, 0.560}, light_blue[3] = {0.470, 0.690, 0.860};
    const double dark_red[3] = {0.650, 0.080, 0.130};
    CHECK(dark_blue[2] > dark_blue[0] + 0.3 && dark_red[0] > dark_red[2] + 0.3, "anchor hues");
    double rgb[3];
    plot_cmap_color(PLOT_CMAP_DIVERGING, -3, -3, 3, rgb);
    CHECK(fabs(rgb[0] - dark_blue[0]) < 1e-12 && fabs(rgb[2] - dark_blue[2]) < 1e-12, "cmap(-max) is dark blue");
    plot_cmap_color(PLOT_CMAP_DIVERGING, 0, -3, 3, rgb);
    CHECK(rgb[0] > 0.95 && rgb[1] > 0.95 && rgb[2] > 0.95, "cmap(0) is white (%g %g %g)", rgb[0], rgb[1], rgb[2]);
    double bx, by, lx, ly;
    int nb = color_blob(p, dark_blue, TOL_REPORT_RGB, &bx, &by);
    int nl = color_blob(p, light_blue, TOL_REPORT_RGB, &lx, &ly);
    printf("%-50s dark blue %d px at (%.1f, %.1f), light blue %d px at (%.1f, %.1f)\n", "heatmap_mlp_in.png", nb, bx,
           by, nl, lx, ly);
    CHECK(nb > 1500 && nb < 3300, "cell -3: %d dark-blue pixels (64 x 48 cell)", nb);
    CHECK(nl > 1500 && nl < 3300, "cell -1.5: %d light-blue pixels", nl);
    CHECK(fabs(bx - lx) <= TOL_REPORT_CENTROID_PX && by > ly + 30 && by < ly + 66,
          "cell -3 not below cell -1.5: (%g,%g) vs (%g,%g)", bx, by, lx, ly);

    /* Most positive cell of resid_post (+2 at layer 2, token 1): dark red,
     * directly above -1 (= -zmax/2: the light-blue anchor) at token 2. */
    snprintf(p, sizeof p, "%s/heatmap_resid_post.png", dir);
    double rx, ry;
    int nr = color_blob(p, dark_red, TOL_REPORT_RGB, &rx, &ry);
    nl = color_blob(p, light_blue, TOL_REPORT_RGB, &lx, &ly);
    printf("%-50s dark red %d px at (%.1f, %.1f), light blue %d px at (%.1f, %.1f)\n", "heatmap_resid_post.png", nr,
           rx, ry, nl, lx, ly);
    CHECK(nr > 1500 && nr < 3300, "cell +2: %d dark-red pixels", nr);
    CHECK(nl > 1500 && nl < 3300, "cell -1: %d light-blue pixels", nl);
    CHECK(fabs(rx - lx) <= TOL_REPORT_CENTROID_PX && ry < ly - 30 && ry > ly - 66,
          "cell +2 not above cell -1: (%g,%g) vs (%g,%g)", rx, ry, lx, ly);

    /* SVG titles (and panel / legend / axis text in <desc>). */
    snprintf(p, sizeof p, "%s/dkl_mlp_in.svg", dir);
    CHECK(has_text(p, "<title>ΔKL vs layer at mlp_in — base260 → ft260 (12 items)</title>"), "dkl svg title");
    CHECK(has_text(p, "token 2") && has_text(p, "α = 0.5") && has_text(p, "ΔKL (nats)") && has_text(p, "layer"),
          "dkl svg panel/legend text");
    snprintf(p, sizeof p, "%s/heatmap_resid_post.svg", dir);
    CHECK(has_text(p, "<title>ΔKL at α = 1, resid_post — base260 → ft260 (12 items)</title>"), "heatmap svg title");
    printf("%-50s titles present\n", "svg files");
}

/* Decodes standard base64 (stops at the first other character). */
static unsigned char *b64_decode(const char *s, size_t *n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = 0;
    while (s[len] && (strchr(tab, s[len]) || s[len] == '=')) len++;
    unsigned char *out = malloc(len / 4 * 3 + 3);
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len && s[i] != '='; i++) {
        acc = acc << 6 | (unsigned)(strchr(tab, s[i]) - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *n = o;
    return out;
}

static void test_report(const char *dir, const char *dir2)
{
    char html[1024], md[1024], p[1024];
    snprintf(html, sizeof html, "%s/report.html", dir);
    snprintf(md, sizeof md, "%s/report.md", dir);
    const char *dirs[2] = {dir, dir2};
    steer_report_params rp = {html, md, "steer report a b"};
    CHECK_OK(steer_report_write(dirs, 2, &rp));
    char *h = tu_read_file(html, NULL);
    /* The first figure is dkl_mlp_in.png, embedded byte for byte. */
    const char *u = strstr(h, "data:image/png;base64,");
    CHECK(u != NULL, "no data URI");
    if (u) {
        size_t n = 0, m = 0;
        unsigned char *dec = b64_decode(u + strlen("data:image/png;base64,"), &n);
        snprintf(p, sizeof p, "%s/dkl_mlp_in.png", dir);
        unsigned char *png = tu_read_file(p, &m);
        printf("%-50s %zu bytes decoded, file %zu bytes\n", "report.html first image", n, m);
        CHECK(n == m && memcmp(dec, png, m) == 0, "embedded image differs from dkl_mlp_in.png");
        free(dec);
        free(png);
    }
    int n_img = 0;
    for (const char *q = h; (q = strstr(q, "data:image/png;base64,")); q++) n_img++;
    printf("%-50s %d images\n", "report.html", n_img);
    CHECK(n_img == 8, "%d images, want 2 dirs × 2 sites × 2", n_img);
    /* n = 12 < 30: every mean carries the small-n dagger and a note says why. */
    CHECK(strstr(h, "<b>-3.0000 †</b>") && strstr(h, "<b>-1.0000 †</b>"), "best cells not bold in the tables");
    CHECK(strstr(h, "<td>mlp_in</td><td>1</td><td>1</td><td>2</td><td>-3.0000 †</td><td>0.1000</td><td>12</td>"),
          "best cell row of mlp_in");
    CHECK(strstr(h, ">2.0000 †<") && strstr(h, ">-1.5000 †<"), "table numbers");
    CHECK(strstr(h, "†: fewer than 30 items"), "small-n note");
    /* The best cell (-3, the most saturated blue) gets white text. */
    CHECK(strstr(h, ";color:#fff\" title=\"se 0.1000, n 12\"><b>-3.0000 †</b>") != NULL, "dark cell, white text");
    CHECK(strstr(h, "winogrande:dev.jsonl") && strstr(h, "steer sweep --fixture &lt;x&gt;"), "settings / command");
    CHECK(strstr(h, "token 1: 0.5000, token 2: 0.7500"), "KL(B||F) per token");
    CHECK(strstr(h, "steer report a b"), "report command line");
    CHECK(strstr(h, "<tr><th>items</th><td>12</td></tr>") && strstr(h, "<tr><th>wall time (s)</th><td>1.5</td></tr>"),
          "items and wall time from the table");
    CHECK(strstr(h, "<tr><th>base model B</th><td>base260 (models/base260.bin)</td></tr>"), "base model row");
    free(h);
    char *m = tu_read_file(md, NULL);
    CHECK(strstr(m, "![ΔKL vs layer at mlp_in, a panel per generated token, a line per α (bars: ±1 s.e.)](dkl_mlp_in.png)") !=
              NULL,
          "md links the figure next to it");
    CHECK(strstr(m, "(../sweep2/heatmap_resid_post.png)") != NULL, "md links the second dir's figure relatively");
    CHECK(strstr(m, "| 1 | -1.5000 † | **-3.0000 †** |") != NULL, "md table row of layer 1");
    printf("%-50s links and tables present\n", "report.md");
    free(m);
    remove(html);
    remove(md);
}

/* Expects rc != OK, the message containing needle, and no report files. */
static void expect_error(int rc, const char *needle, const char *html, const char *what)
{
    printf("%-50s rc %d: %s\n", what, rc, steer_last_error());
    CHECK(rc != STEER_OK, "%s: accepted", what);
    CHECK(strstr(steer_last_error(), needle) != NULL, "%s: message lacks '%s'", what, needle);
    if (html) CHECK(!exists(html), "%s: %s was written", what, html);
}

static void test_errors(const char *good)
{
    char bad[512], p[1024], html[1024], md[1024];
    snprintf(bad, sizeof bad, "%s/bad", tmpdir);
    mkdir(bad, 0755);
    snprintf(html, sizeof html, "%s/out.html", tmpdir);
    snprintf(md, sizeof md, "%s/out.md", tmpdir);
    steer_report_params rp = {html, md, NULL};
    const char *dirs[2] = {good, bad};

    /* Empty directory. */
    expect_error(steer_report_write(dirs, 2, &rp), "bad: no results found (none of dkl.csv", html, "empty dir");
    expect_error(steer_sweep_figures(bad), "bad/summary.json", NULL, "figures without summary.json");
    /* Missing directory. */
    const char *missing[1] = {"/nonexistent/steer_dir"};
    expect_error(steer_report_write(missing, 1, &rp), "/nonexistent/steer_dir: no such directory", html, "missing dir");

    /* dkl.csv alone (the results are read from summary.json and items.csv). */
    copy_file(good, bad, "dkl.csv");
    expect_error(steer_report_write(dirs, 2, &rp), "bad/summary.json", html, "dkl.csv without summary.json");
    copy_file(good, bad, "summary.json");
    expect_error(steer_report_write(dirs, 2, &rp), "bad/items.csv", html, "no items.csv");
    snprintf(p, sizeof p, "%s/items.csv", bad);
    write_text(p, "item,id,site,layer,alpha,token,kl_steered,kl_base,dkl\n0,a,mlp_in,0,0,1,1,0.5,0.5\n"
                  "0,a,mlp_in,0,0,2,1,0.5\n");
    expect_error(steer_report_write(dirs, 2, &rp), "bad/items.csv:3: expected 9 fields", html, "short line");
    write_text(p, "item,id,site,layer,alpha,token,kl_steered,kl_base,dkl\n0,a,mlp_in,1,0,1,1,0.5,0.5\n");
    expect_error(steer_sweep_figures(bad), "bad/items.csv:2: expected site mlp_in layer 0", NULL, "row out of order");
    write_text(p, "item,id,site,layer,alpha,token\n");
    expect_error(steer_sweep_figures(bad), "bad/items.csv:1: not the items.csv header", NULL, "bad header");
    write_text(p, "item,id,site,layer,alpha,token,kl_steered,kl_base,dkl\n");
    expect_error(steer_report_write(dirs, 2, &rp), "bad/items.csv: no items with results", html, "header only");
    snprintf(p, sizeof p, "%s/summary.json", bad);
    write_text(p, "{\"format\": ");
    expect_error(steer_report_write(dirs, 2, &rp), "bad/summary.json: not valid JSON", html, "truncated summary.json");
    CHECK(!exists(md), "markdown written on error");

    /* The figure writer's own errors: a missing directory, bad arguments. */
    double z[2] = {1, -1};
    plot_heatmap hm = {.nx = 2, .ny = 1, .z = z};
    snprintf(p, sizeof p, "%s/nodir/h.png", tmpdir);
    CHECK(plot_heatmap_write(p, &hm) == STEER_EIO, "heat map into a missing directory");
    snprintf(p, sizeof p, "%s/h.pdf", tmpdir);
    CHECK(plot_heatmap_write(p, &hm) == STEER_EARG, "heat map .pdf");
    hm.nx = 0;
    snprintf(p, sizeof p, "%s/h.png", tmpdir);
    CHECK(plot_heatmap_write(p, &hm) == STEER_EARG && !exists(p), "heat map with 0 columns");
}

/* steer_adapt_summary_write → the file's exact text, read back, and the
 * report's adapt section (with a figure drawn by steer_plot_write). */
static void test_adapt(void)
{
    char dir[512], p[1024];
    snprintf(dir, sizeof dir, "%s/adapt", tmpdir);
    mkdir(dir, 0755);
    const steer_adapt_row rows[2] = {
        {.method = "lora", .site = "", .rank = 8, .lr = 0.0015, .trainable = 1000, .n_model = 300000,
         .val_acc = 0.5, .test_acc = 0.25, .test_loss = 1.5, .test_format = 1},
        {.method = "vector", .site = "resid_post", .rank = 0, .lr = 0.005, .trainable = 64, .n_model = 300000,
         .val_acc = 0.125, .test_acc = 0.0001234, .test_loss = 2, .test_format = 0.75},
    };
    steer_adapt_summary s = {.task = "winogrande", .model = "m.bin", .seed = 7, .steps = 30, .batch = 4,
                             .n_train = 100, .n_val = 10, .n_test = 20, .lr_sweep = 1, .rows = rows, .n_rows = 2};
    s.untrained = (steer_adapt_row){.val_acc = 0.1, .test_acc = 0.2, .test_loss = 3, .test_format = 0.5};
    CHECK_OK(steer_adapt_summary_write(dir, &s));
    snprintf(p, sizeof p, "%s/summary.json", dir);
    char *text = tu_read_file(p, NULL);
    const char *want =
        "{\"study\": \"adapt\", \"task\": \"winogrande\", \"model\": \"m.bin\", \"seed\": 7, \"steps\": 30, \"batch\": 4,\n"
        " \"n_train\": 100, \"n_val\": 10, \"n_test\": 20, \"lr_sweep\": true,\n"
        " \"untrained\": {\"val_acc\": 0.100000, \"test_acc\": 0.200000, \"test_loss\": 3.000000, \"test_format\": 0.500000},\n"
        " \"rows\": [\n"
        "  {\"method\": \"lora\", \"site\": \"\", \"rank\": 8, \"lr\": 0.0015, \"trainable\": 1000, \"n_model\": 300000, "
        "\"share\": 0.00333333, \"val_acc\": 0.500000, \"test_acc\": 0.250000, \"test_loss\": 1.500000, \"test_format\": 1.000000},\n"
        "  {\"method\": \"vector\", \"site\": \"resid_post\", \"rank\": 0, \"lr\": 0.005, \"trainable\": 64, \"n_model\": 300000, "
        "\"share\": 0.000213333, \"val_acc\": 0.125000, \"test_acc\": 0.000123, \"test_loss\": 2.000000, \"test_format\": 0.750000}\n"
        " ]}\n";
    CHECK(strcmp(text, want) == 0, "summary.json text:\n%s", text);
    free(text);
    steer_adapt_summary *r = NULL;
    CHECK_OK(steer_adapt_summary_read(dir, &r));
    if (r) {
        printf("%-50s %d rows, task %s, seed %llu\n", "adapt summary read back", r->n_rows, r->task,
               (unsigned long long)r->seed);
        CHECK(r->n_rows == 2 && strcmp(r->task, "winogrande") == 0 && strcmp(r->model, "m.bin") == 0 && r->seed == 7 &&
                  r->steps == 30 && r->batch == 4 && r->n_train == 100 && r->n_val == 10 && r->n_test == 20 &&
                  r->lr_sweep == 1,
              "settings read back");
        CHECK(strcmp(r->rows[1].method, "vector") == 0 && strcmp(r->rows[1].site, "resid_post") == 0 &&
                  r->rows[1].trainable == 64 && r->rows[1].test_acc == 0.000123 && r->rows[1].share == 0.000213333 &&
                  r->rows[0].lr == 0.0015 && r->rows[0].rank == 8 && r->untrained.test_loss == 3,
              "rows read back (as written: %%.6f, %%.6g)");
        free(r);
    }
    /* The report needs the figure: a line plot through the public API. */
    double xs[2] = {1000, 64}, ys[2] = {0.25, 0.0001234};
    steer_plot_series ser = {.label = "methods", .x = xs, .y = ys, .n = 2, .markers = 1};
    steer_plot_panel pan = {.xlabel = "trainable", .ylabel = "acc", .series = &ser, .n_series = 1};
    steer_plot_figure fig = {.title = "adapt", .log_x = 1, .legend = STEER_PLOT_LEGEND_FIGURE};
    snprintf(p, sizeof p, "%s/acc_vs_params.png", dir);
    CHECK_OK(steer_plot_write(p, &fig, &pan, 1));
    char html[1024], md[1024];
    snprintf(html, sizeof html, "%s/report.html", dir);
    snprintf(md, sizeof md, "%s/report.md", dir);
    const char *dirs[1] = {dir};
    steer_report_params rp = {html, md, NULL};
    CHECK_OK(steer_report_write(dirs, 1, &rp));
    char *h = tu_read_file(html, NULL), *m = tu_read_file(md, NULL);
    CHECK(strstr(h, "<h2>Learned steering against weight updates (E4): winogrande</h2>") != NULL, "adapt heading");
    CHECK(strstr(h, "<tr><td style=\"text-align:left;\">vector</td><td>resid_post</td><td>0</td><td>0.005</td>"
                    "<td>64</td><td>0.0213%</td><td>0.1250</td><td>1.23e-04</td><td>2.0000</td><td>0.7500</td></tr>") != NULL,
          "adapt row in the HTML");
    CHECK(strstr(m, "| untrained | - | - | - | 0 | 0 | 0.1000 | 0.2000 | 3.0000 | 0.5000 |\n") != NULL &&
              strstr(m, "| learning-rate sweep | true |\n") != NULL && strstr(m, "](acc_vs_params.png)") != NULL,
          "adapt section in the Markdown");
    printf("%-50s table and figure present\n", "adapt report");
    free(h);
    free(m);
    snprintf(p, sizeof p, "%s/nodir", dir);
    CHECK(steer_adapt_summary_read(p, &r) == STEER_EIO && r == NULL, "missing summary is STEER_EIO");
    snprintf(p, sizeof p, "%s/summary.json", dir);
    write_text(p, "{\"study\": \"twins\", \"rows\": []}");
    CHECK(steer_adapt_summary_read(dir, &r) == STEER_EFORMAT && strstr(steer_last_error(), "not a study adapt summary"),
          "another study's summary");
}

/* Removes the files of dir (one level) and dir. */
static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            remove(p);
        }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_report.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "FAIL: mkdtemp %s\n", tmpdir);
        return 1;
    }
    char dir[512], dir2[512];
    snprintf(dir, sizeof dir, "%s/sweep", tmpdir);
    snprintf(dir2, sizeof dir2, "%s/sweep2", tmpdir);
    make_fixture(dir);
    make_fixture(dir2);
    test_figures(dir);
    test_report(dir, dir2);
    test_errors(dir);
    test_adapt();
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad", tmpdir);
    rm_dir(dir);
    rm_dir(dir2);
    rm_dir(bad);
    snprintf(bad, sizeof bad, "%s/adapt", tmpdir);
    rm_dir(bad);
    rmdir(tmpdir);
    plot_release_caches();
    return tu_finish("test_report");
}

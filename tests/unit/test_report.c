/*
 * test_report.c — sweep figures (report_sweep_figures), heat maps
 * (plot_heatmap_write) and the HTML/Markdown report (report_write).
 *
 * Fixture: a sweep directory with dkl.csv (2 sites × 3 layers × 3 α × K = 2
 * tokens, ΔKL = α·c[site][layer][token] with known c) and summary.json.
 * Checks: every figure exists, PNGs have the expected pixel size, the heat
 * map's extreme cells have the map's end colours (dark blue for the most
 * negative, dark red for the most positive) in the right place (token 1 row
 * above token 2), SVGs carry their titles; the report embeds the PNG bytes
 * exactly (base64 decoded back), has the tables' numbers and the best cells,
 * links the figures relatively from the Markdown; bad input (malformed line,
 * duplicate row, bad header, missing or empty directory) fails with an error
 * naming the file (and line) and writes nothing.
 */
#include "plot.h"
#include "report.h"
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

static void make_fixture(const char *dir, int with_summary)
{
    mkdir(dir, 0755);
    char path[512];
    snprintf(path, sizeof path, "%s/dkl.csv", dir);
    FILE *f = fopen(path, "wb");
    fprintf(f, "base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n\n");
    for (int s = 0; s < 2; s++)
        for (int l = 0; l < 3; l++)
            for (int a = 0; a < 3; a++)
                for (int k = 0; k < 2; k++)
                    fprintf(f, "base260,ft260,%s,%d,%g,%d,%.17g,%.17g,12\n", sites[s], l, alphas[a], k + 1,
                            alphas[a] * cval[s][l][k], 0.1 * alphas[a]);
    fclose(f);
    if (with_summary) {
        snprintf(path, sizeof path, "%s/summary.json", dir);
        write_text(path, "{\"format\":\"steer-sweep/1\",\"base\":\"base260\",\"ft\":\"ft260\",\"base_path\":\"b.bin\","
                         "\"ft_path\":\"f.bin\",\"arch\":\"llama\",\"n_layers\":3,\"d_model\":64,"
                         "\"data\":\"winogrande:dev.jsonl\",\"n_items\":12,\"tokens\":2,"
                         "\"sites\":[\"mlp_in\",\"resid_post\"],\"layers\":[0,1,2],\"alphas\":[0,0.5,1],"
                         "\"continuation\":\"ft\",\"positions\":\"all\",\"shard\":null,"
                         "\"command\":\"steer sweep --fixture <x>\",\"kl_base_mean\":[0.5,0.75],"
                         "\"best\":{},\"wall_s\":1.5}");
    }
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
    CHECK_OK(report_sweep_figures(dir));
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
    report_params rp = {html, md, "steer report a b"};
    CHECK_OK(report_write(dirs, 2, &rp));
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
    CHECK(strstr(h, "<b>-3.0000</b>") && strstr(h, "<b>-1.0000</b>"), "best cells not bold in the tables");
    CHECK(strstr(h, "<td>mlp_in</td><td>1</td><td>1</td><td>2</td><td>-3.0000</td><td>0.1000</td><td>12</td>"),
          "best cell row of mlp_in");
    CHECK(strstr(h, ">2.0000<") && strstr(h, ">-1.5000<"), "table numbers");
    CHECK(strstr(h, "winogrande:dev.jsonl") && strstr(h, "steer sweep --fixture &lt;x&gt;"), "settings / command");
    CHECK(strstr(h, "token 1: 0.5000, token 2: 0.7500"), "KL(B||F) per token");
    CHECK(strstr(h, "steer report a b"), "report command line");
    CHECK(strstr(h, "12 (largest n in dkl.csv)"), "second dir (no summary) items from n");
    free(h);
    char *m = tu_read_file(md, NULL);
    CHECK(strstr(m, "![ΔKL vs layer at mlp_in, a panel per generated token, a line per α](dkl_mlp_in.png)") != NULL,
          "md links the figure next to it");
    CHECK(strstr(m, "(../sweep2/heatmap_resid_post.png)") != NULL, "md links the second dir's figure relatively");
    CHECK(strstr(m, "| 1 | -1.5000 | **-3.0000** |") != NULL, "md table row of layer 1");
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
    report_params rp = {html, md, NULL};
    const char *dirs[2] = {good, bad};

    /* Empty directory. */
    expect_error(report_write(dirs, 2, &rp), "bad: no results found (none of dkl.csv", html, "empty dir");
    expect_error(report_sweep_figures(bad), "bad/dkl.csv", NULL, "figures without dkl.csv");
    /* Missing directory. */
    const char *missing[1] = {"/nonexistent/steer_dir"};
    expect_error(report_write(missing, 1, &rp), "/nonexistent/steer_dir: no such directory", html, "missing dir");

    snprintf(p, sizeof p, "%s/dkl.csv", bad);
    write_text(p, "base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n\nb,f,mlp_in,0,1,1,-0.5,0.1,3\n"
                  "b,f,mlp_in,1,1,1,-0.5,0.1\n");
    expect_error(report_write(dirs, 2, &rp), "bad/dkl.csv:3: expected 9 fields", html, "short line");
    write_text(p, "base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n\nb,f,mlp_in,0,1,1,-0.5,0.1,3\n"
                  "b,f,mlp_in,x,1,1,-0.5,0.1,3\n");
    expect_error(report_sweep_figures(bad), "bad/dkl.csv:3: layer \"x\"", NULL, "non-integer layer");
    write_text(p, "base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n\nb,f,mlp_in,0,1,1,-0.5,0.1,3\n"
                  "b,f,mlp_in,0,1,1,-0.7,0.1,3\n");
    expect_error(report_sweep_figures(bad), "bad/dkl.csv:3: duplicate row", NULL, "duplicate row");
    write_text(p, "base,ft,site,layer,alpha,token\n");
    expect_error(report_sweep_figures(bad), "bad/dkl.csv:1: header", NULL, "bad header");
    write_text(p, "base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n\n");
    expect_error(report_sweep_figures(bad), "no data rows", NULL, "header only");
    write_text(p, "base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n\nb,f,mlp_in,0,inf,1,-0.5,0.1,3\n");
    expect_error(report_sweep_figures(bad), "bad/dkl.csv:2: alpha", NULL, "infinite alpha");
    write_text(p, "base,ft,site,layer,alpha,token,dkl_mean,dkl_se,n\n\"b,x\",f,mlp_in,0,1,1,-0.5,nan,1\n");
    CHECK_OK(report_sweep_figures(bad)); /* quoted name with a comma, se nan (one item) */
    snprintf(p, sizeof p, "%s/summary.json", bad);
    write_text(p, "{\"format\": ");
    expect_error(report_write(dirs, 2, &rp), "bad/summary.json: not a JSON object", html, "truncated summary.json");
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
    make_fixture(dir, 1);
    make_fixture(dir2, 0);
    test_figures(dir);
    test_report(dir, dir2);
    test_errors(dir);
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad", tmpdir);
    rm_dir(dir);
    rm_dir(dir2);
    rm_dir(bad);
    rmdir(tmpdir);
    plot_release_caches();
    return tu_finish("test_report");
}

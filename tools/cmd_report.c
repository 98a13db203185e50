/* cmd_report.c — `steer report`: one self-contained HTML page (figures inline)
 * and a Markdown summary over one or more result directories (src/exp/report.c,
 * docs/REPORT.md). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define REPORT_MAX_DIRS 64

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

int cmd_report(int argc, char **argv)
{
    const char *out = NULL;
    int redraw = 0, quiet = 0;
    const char *pos[REPORT_MAX_DIRS];
    const cli_opt opts[] = {
        {"-o", "--out", OPT_STR, &out, "OUT",
         "the HTML file (the Markdown goes beside it as .md), or an existing directory for report.html + "
         "report.md (default: inside the first DIR)"},
        {NULL, "--redraw", OPT_FLAG, &redraw, NULL, "draw every sweep directory's figures again first"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "print nothing on success"},
    };
    const cli_spec spec = {
        .usage = "steer report DIR... [-o OUT]",
        .description =
            "Writes one self-contained HTML page (figures inline as base64 PNG) and a Markdown summary\n"
            "(linking the PNG files) over result directories, a section per DIR: for a sweep (dkl.csv,\n"
            "summary.json) its settings, the best cell per site, and per site the ΔKL-vs-layer figure,\n"
            "the heat map at the largest α and a layer × token table. Figures a DIR lacks are drawn\n"
            "first (dkl_<site>.png/.svg, heatmap_<site>.png/.svg). For an MLP analysis (mlp_stats.csv,\n"
            "steer analyze-mlp) its histograms, statistics and a line per layer naming the stage where a\n"
            "pre-MLP shift loses most; for an ICL run (icl.csv, steer icl) its tables and figures.\n"
            "Nothing is written on bad input.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer report runs/sweep-260K                       # runs/sweep-260K/report.html + .md\n"
                   "  steer report runs/pairA runs/pairB -o cmp.html     # cmp.html + cmp.md, a section each",
        .min_pos = 1,
        .max_pos = REPORT_MAX_DIRS,
        .pos = pos,
    };
    int n_dirs = 0;
    int rc = cli_parse(&spec, argc, argv, &n_dirs);
    if (rc >= 0)
        return rc;

    /* Output paths: OUT.html → OUT.md beside it; a directory → report.html/.md in it. */
    char html[4096], md[4096];
    const char *base = out ? out : pos[0];
    struct stat st;
    if (out && (ends_with_ci(out, ".html") || ends_with_ci(out, ".htm"))) {
        size_t stem = strlen(out) - (ends_with_ci(out, ".html") ? 5 : 4);
        if (snprintf(html, sizeof html, "%s", out) >= (int)sizeof html ||
            snprintf(md, sizeof md, "%.*s.md", (int)stem, out) >= (int)sizeof md)
            return cli_usage("-o %s: path too long", out);
    } else {
        if (stat(base, &st) != 0 || !S_ISDIR(st.st_mode)) {
            if (out)
                return cli_usage("-o %s: not an existing directory or a .html file name", out);
            /* The first DIR does not exist: report_write names it. */
        }
        size_t n = strlen(base);
        const char *sep = n && base[n - 1] == '/' ? "" : "/";
        if (snprintf(html, sizeof html, "%s%sreport.html", base, sep) >= (int)sizeof html ||
            snprintf(md, sizeof md, "%s%sreport.md", base, sep) >= (int)sizeof md)
            return cli_usage("%s: path too long", base);
    }

    if (redraw)
        for (int i = 0; i < n_dirs; i++) {
            char p[4096];
            snprintf(p, sizeof p, "%s/dkl.csv", pos[i]);
            if (stat(p, &st) == 0 && steer_sweep_figures(pos[i]) != STEER_OK)
                return cli_lib_error();
        }
    steer_report_params rp = {html, md, cli_cmdline};
    if (steer_report_write(pos, n_dirs, &rp) != STEER_OK)
        return cli_lib_error();
    if (!quiet)
        printf("wrote %s and %s\n", html, md);
    return 0;
}

/*
 * report.h — figures and reports from experiment results (report.c).
 *
 * report_sweep_figures reads a sweep output directory (dkl.csv, and
 * summary.json when present; docs/REPORT.md) and writes, for each site s:
 *   dkl_<s>.png, dkl_<s>.svg          one panel per generated token, x = layer,
 *                                     y = ΔKL, one line per α, shared y axis
 *   heatmap_<s>.png, heatmap_<s>.svg  ΔKL at the largest α, layer × token,
 *                                     diverging colours centred at 0
 *
 * report_write gathers result directories into one self-contained HTML page
 * (figures inline as base64 PNG) and a Markdown summary. Each kind of
 * directory content is one section function in a table in report.c (the
 * sweep's dkl.csv; steer analyze-mlp's mlp_stats.csv, with attenuation.csv
 * when present: statistics, figures and a line per layer naming the stage
 * where the pre-MLP signal loses most); a directory with no known results is
 * an error.
 *
 * All files are written atomically; errors name the file (and line).
 */
#ifndef STEER_REPORT_H
#define STEER_REPORT_H

#include "model.h"
#include "steer_exp.h"

/* Writes the sweep figures into dir (see above). Returns STEER_OK, or a
 * status code with steer_last_error() naming the file: STEER_EIO (dkl.csv
 * missing/unreadable, a figure cannot be written), STEER_EFORMAT (malformed
 * dkl.csv or summary.json: "DIR/dkl.csv:7: …"). Figures already written stay
 * (each one is complete). */
int report_sweep_figures(const char *dir);

typedef struct {
    const char *html_path; /* the HTML page to write (required)               */
    const char *md_path;   /* the Markdown summary to write (required); image
                              links in it are relative to its directory      */
    const char *command;   /* the command line that made the report, shown in
                              both; NULL: none                               */
} report_params;

/* Writes one report over dirs[0..n_dirs): a section per kind of results found
 * in each directory, in order. Figures a sweep directory lacks are drawn
 * first (report_sweep_figures). Everything is read and checked before
 * anything is written: on failure neither output file is created or changed.
 * Errors: "DIR: no such directory", "DIR: no results found (none of dkl.csv, …)", and
 * those of the sections' readers. Borrows everything. */
int report_write(const char *const *dirs, int n_dirs, const report_params *p);

#endif /* STEER_REPORT_H */

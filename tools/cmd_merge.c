/* cmd_merge.c — `steer merge`: joins the output directories of a sharded
 * `steer sweep` (--shard I/N for every I) into the files one unsharded run
 * writes: items.csv and dkl.csv cell for cell, summary.json, figures. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

void sweep_print_best(const steer_sweep_table *t, const char *dir); /* cmd_sweep.c */

int cmd_merge(int argc, char **argv)
{
    const char *out = NULL;
    int quiet = 0, n_pos = 0;
    const char *dirs[CLI_LIST_MAX];
    const cli_opt opts[] = {
        {"-o", "--out", OPT_STR, &out, "DIR", "output directory (required)"},
        {"-q", "--quiet", OPT_FLAG, &quiet, NULL, "no summary"},
    };
    const cli_spec spec = {
        .usage = "steer merge DIR... -o DIR",
        .description =
            "Merges the output directories of `steer sweep --shard I/N` runs (every shard\n"
            "0..N-1 exactly once, all with the same settings) into one: items.csv and dkl.csv\n"
            "are those an unsharded run gives, cell for cell; summary.json records this command\n"
            "and the shards' summed wall time; figures are redrawn. See docs/SWEEP.md.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer merge out/s0 out/s1 -o out/sweep",
        .min_pos = 1,
        .max_pos = CLI_LIST_MAX,
        .pos = dirs,
    };
    int rc = cli_parse(&spec, argc, argv, &n_pos);
    if (rc >= 0) return rc;
    if (!out) return cli_usage("missing -o DIR");
    steer_sweep_table *parts[CLI_LIST_MAX] = {0}, *t = NULL;
    for (int i = 0; i < n_pos; i++)
        if (steer_sweep_table_read(dirs[i], &parts[i]) != STEER_OK) {
            rc = cli_lib_error();
            goto end;
        }
    if (steer_sweep_table_merge(parts, n_pos, cli_cmdline, &t) != STEER_OK ||
        steer_sweep_table_write(t, out, -1) != STEER_OK) {
        rc = cli_lib_error();
        goto end;
    }
    if (steer_sweep_figures(out) != STEER_OK) {
        rc = cli_lib_error_at("figures");
        goto end;
    }
    if (!quiet) sweep_print_best(t, out);
    rc = 0;
end:
    for (int i = 0; i < n_pos; i++) steer_sweep_table_free(parts[i]);
    steer_sweep_table_free(t);
    return rc;
}

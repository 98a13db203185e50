/* cmd_study.c — `steer study SUBCOMMAND`: the studies that chain several
 * commands into one table or report (SPEC E4 `adapt`: learned steering against
 * weight updates; SPEC E5 `twins`: twin models that differ in one factor). */
#include "cli.h"

#include <stdio.h>

int study_adapt(int argc, char **argv); /* cmd_study_adapt.c */
int study_twins(int argc, char **argv); /* cmd_study_twins.c */

static const cli_sub subs[] = {
    {"adapt", "study adapt", study_adapt,
     "train every method (full, LoRA, adapters, vector, LoReFT, joint) and tabulate accuracy vs parameters (E4)"},
    {"twins", "study twins", study_twins,
     "train twin models differing only in activation or block style, then sweep and analyse them (E5)"},
};

static void study_overview(FILE *f)
{
    fprintf(f, "usage: steer study SUBCOMMAND [options]     (steer study SUBCOMMAND --help for details)\n\n"
               "Studies of SPEC §4 that run several trainings and experiments and write one table or report.\n\n"
               "subcommands:\n");
    cli_list_subs(f, subs, sizeof subs / sizeof subs[0]);
    fprintf(f, "\nexample:\n  steer study adapt -m models/stories260K/stories260K.bin --task listops --out study-listops\n");
}

int cmd_study(int argc, char **argv)
{
    return cli_dispatch(subs, sizeof subs / sizeof subs[0], study_overview, argc, argv);
}

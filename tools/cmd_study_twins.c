/* cmd_study_twins.c — `steer study twins` (placeholder until implemented). */
#include "cli.h"

#include <stdio.h>

int study_twins(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "steer study twins: not implemented yet\n");
    return 1;
}

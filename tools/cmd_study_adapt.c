/* cmd_study_adapt.c — `steer study adapt` (placeholder until implemented). */
#include "cli.h"

#include <stdio.h>

int study_adapt(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "steer study adapt: not implemented yet\n");
    return 1;
}

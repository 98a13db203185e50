/*
 * mpi_cli.h — `--mpi` and `--mpi-timeout` for the commands that share their
 * items over MPI ranks (sweep, analyze-mlp, icl, capture --prompts/--data;
 * docs/SCALING.md). Included in every build: without MPI the options exist
 * and --mpi says it is not in this build, so a command line means the same
 * everywhere.
 */
#ifndef STEER_MPI_CLI_H
#define STEER_MPI_CLI_H

#include "../cli.h"

#ifdef STEER_HAVE_MPI
#include "mpi_pool.h"
#define CLI_MPI_HELP(items)                                                                                            \
    "under mpirun/srun: rank 0 hands " items " out and writes the output; every rank computes (docs/SCALING.md)"
#else
#define CLI_MPI_HELP(items) "share " items " over MPI ranks (not in this build: configure with Open MPI)"
#endif

/* The two option table rows; items names what is handed out ("items",
 * "held-out queries", "batches of prompts"). */
#define CLI_MPI_OPTS(mpi_flag, timeout_s, items)                                                                       \
    {NULL, "--mpi", OPT_FLAG, (mpi_flag), NULL, CLI_MPI_HELP(items)},                                                  \
    {NULL, "--mpi-timeout", OPT_FLOAT, (timeout_s), "S",                                                               \
     "--mpi: a rank silent for S seconds is lost; its " items " are reported missing (default 60)"}

/* After option parsing: checks --mpi-timeout and, with --mpi, starts MPI
 * (rank and size; without --mpi: 0 and 1). Returns -1 to go on, or an exit
 * status (message printed: a bad --mpi-timeout, MPI failing to start, or a
 * build without MPI). */
static inline int cli_mpi_start(int mpi, float timeout_s, int *rank, int *n_ranks)
{
    *rank = 0;
    *n_ranks = 1;
    if (!(timeout_s > 0)) return cli_usage("--mpi-timeout must be > 0, got %g", (double)timeout_s);
    if (!mpi) return -1;
#ifdef STEER_HAVE_MPI
    return cli_mpi_init(rank, n_ranks, timeout_s) ? 1 : -1;
#else
    return cli_error("--mpi: this steer was built without MPI (install libopenmpi-dev and build with "
                     "-DSTEER_MPI=ON; scripts/setup.sh does)");
#endif
}

#endif

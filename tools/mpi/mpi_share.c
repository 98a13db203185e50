/* mpi_share.c — one command's items over the ranks: the pool, then rank 0's
 * report (mpi_pool.h: cli_mpi_share; docs/SCALING.md). The commands bring
 * the item source and the merge step; the scheduling, the lost-rank rules
 * and the messages are the same for every command. */
#include "mpi_pool.h"

#include "../cli.h"

#include <mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_mpi_share(const mpi_pool_params *pp, const mpi_share_report *rep)
{
    int rank = 0, n_ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    mpi_pool_result res;
    const int err = mpi_pool_run(pp, &res);
    int rc = 0;
    if (rank != 0) rc = err ? 1 : 0;
    else if (err) {
        rc = cli_error("%s", res.msg);
    } else if (res.n_missing > 0) {
        char list[1024] = "", after[1024] = "";
        for (int i = 0; i < res.n_missing && strlen(list) < sizeof list - 64; i++) {
            char name[64];
            if (rep->name_item) rep->name_item(rep->ud, res.missing[i], name, sizeof name);
            else snprintf(name, sizeof name, "%d", res.missing[i]);
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", name);
        }
        if (strlen(list) >= sizeof list - 64) strcat(list, ", ...");
        if (rep->after_missing) rep->after_missing(rep->ud, &res, after, sizeof after);
        else
            snprintf(after, sizeof after, "nothing was written: run the same command again (it computes every item "
                                          "again: this command keeps no journal)");
        rc = cli_error("%d item(s) missing, handed to %d lost rank(s): %s; %s", res.n_missing, res.n_lost, list, after);
    } else if (res.stopped)
        rc = 3;
    else if (res.n_setup_out > 0)
        /* Decided: the result is whole (every item came back, from the
         * ranks that took part), so the status is 0, as for a rank lost
         * while it held no item; the line says who was missing. */
        fprintf(stderr, "steer %s: no item missing: rank(s) %s took no part since the set-up; the other ranks computed "
                "every item\n", pp->what, res.setup_out);
    if (rank == 0 && rep->verbose) {
        char by[1024] = "";
        for (int r = 0; r < n_ranks && strlen(by) < sizeof by - 32; r++)
            snprintf(by + strlen(by), sizeof by - strlen(by), " %d:%d", r, res.by_rank ? res.by_rank[r] : 0);
        fprintf(stderr, "steer %s: items computed per rank:%s\n", pp->what, by);
    }
    free(res.missing);
    free(res.by_rank);
    return rc;
}

/*
 * mpi_pool.h — dynamic work sharing over MPI for the `steer` CLI (`--mpi`;
 * docs/SCALING.md). Compiled only when CMake finds MPI (cmake/mpi.cmake
 * defines STEER_HAVE_MPI); the libraries never see MPI.
 *
 * Every rank runs the same command. Rank 0 coordinates and computes too:
 * its main thread serves requests while a compute thread works. On every
 * rank the main thread is the only one that calls MPI (MPI_THREAD_FUNNELED):
 * the command's compute function runs on a second thread, asks
 * mpi_pool_next() for items and hands each finished item's record (bytes)
 * to mpi_pool_put(). Rank 0 hands items out one at a time on request, in
 * the order of its to-do list, and passes every record — its own and the
 * other ranks' — to one consume callback, serialised, so one process writes
 * the journal and the tables exactly as a one-process run does.
 *
 * A rank that sends nothing (not even its heartbeat, once a second) for
 * timeout_s seconds is lost: rank 0 hands it nothing more, the others
 * finish, and the items it held are reported missing.
 */
#ifndef STEER_MPI_POOL_H
#define STEER_MPI_POOL_H

#include <stddef.h>

typedef struct mpi_pool mpi_pool;

/* MPI_Init_thread (MPI_THREAD_FUNNELED) and the rank and size of
 * MPI_COMM_WORLD. Prints one line and returns 1 on failure. */
int cli_mpi_init(int *rank, int *size);
void cli_mpi_finalize(void);
/* 1 when ok is nonzero on every rank (a collective: every rank calls it). */
int cli_mpi_all_ok(int ok);
/* Prints "steer <what>: <msg>" and ends every rank (MPI_Abort): for out of
 * memory, where nothing sensible is left to do. */
void cli_mpi_die(const char *what, const char *msg) __attribute__((noreturn));

typedef struct {
    const char *what;   /* "sweep": prefix of messages ("steer sweep: ...")   */
    int n_data;         /* items are 0 <= item < n_data                        */
    const int *todo;    /* rank 0: the items to hand out, in this order        */
    int n_todo;
    double timeout_s;   /* a rank silent this long is lost (> 0)               */
    /* Rank 0, serialised: a finished item's record, from any rank. 0 goes
     * on, > 0 stops handing out items (those in flight still come in), < 0
     * is an error: its message in msg, or if msg is left empty,
     * steer_last_error(). */
    int (*consume)(void *ud, int item, const void *rec, size_t n, char *msg, size_t msg_size);
    void *consume_ud;
    /* Every rank, on the compute thread: the work. Returns 0, or a status
     * (< 0: its message in steer_last_error()). */
    int (*compute)(void *ud, mpi_pool *pool);
    void *compute_ud;
} mpi_pool_params;

typedef struct {
    int err;            /* 0, or the first error (a rank's or rank 0's)       */
    char msg[1024];     /* its message, "rank 2: ..." for another rank's      */
    int stopped;        /* consume asked to stop                               */
    int n_consumed;     /* records consumed (rank 0)                           */
    int n_lost;         /* ranks lost                                           */
    int n_missing;      /* items handed to lost or failed ranks, not returned  */
    int *missing;       /* [n_missing] ascending; caller frees                 */
    int *by_rank;       /* [ranks] records consumed from each rank; caller frees */
} mpi_pool_result;

/* Runs the pool on every rank until the work is done; a collective over
 * MPI_COMM_WORLD. Rank 0 fills res (others: err only). Returns res->err. */
int mpi_pool_run(const mpi_pool_params *pp, mpi_pool_result *res);

/* Compute threads (calls serialised by the caller): the next item to compute,
 * or -1 when there is no more work. May block waiting for rank 0. */
int mpi_pool_next(mpi_pool *p);
/* Compute threads: a finished item's record (copied). Returns 0 or < 0 (rank
 * 0: consume's error, whose message mpi_pool_run reports). */
int mpi_pool_put(mpi_pool *p, int item, const void *rec, size_t n);

#endif

/*
 * mpi_pool.h — dynamic work sharing over MPI for the `steer` CLI (`--mpi`;
 * docs/SCALING.md). Compiled only when CMake finds MPI (cmake/mpi.cmake
 * defines STEER_HAVE_MPI); the libraries never see MPI.
 *
 * Every rank runs the same command. Rank 0 coordinates and computes too:
 * its main thread serves requests while a compute thread works. On every
 * rank the main thread is the only one that calls MPI in the pool (before
 * it, during the set-up, a heartbeat thread does while the main thread
 * makes no MPI call: MPI_THREAD_SERIALIZED):
 * the command's compute function runs on a second thread, asks
 * mpi_pool_next() for items and hands each finished item's record (bytes)
 * to mpi_pool_put(). Rank 0 hands items out one at a time on request, in
 * the order of its to-do list, and passes every record — its own and the
 * other ranks' — to one consume callback, serialised, so one process writes
 * the output (the sweep's journal and tables, analyze-mlp's and icl's
 * files, capture's tensor file) exactly as a one-process run does. One
 * scheduler for every --mpi command: each brings an item source (todo) and
 * a merge step (consume); mpi_share.c runs the pool and reports.
 *
 * A rank that sends nothing (not even its heartbeat, once a second) for
 * timeout_s seconds is lost: rank 0 hands it nothing more, the others
 * finish, and the items it held are reported missing.
 */
#ifndef STEER_MPI_POOL_H
#define STEER_MPI_POOL_H

#include <stddef.h>

typedef struct mpi_pool mpi_pool;

/* MPI_Init_thread (MPI_THREAD_SERIALIZED) and the rank and size of
 * MPI_COMM_WORLD; timeout_s is --mpi-timeout, for the set-up too. A rank > 0
 * then sends its heartbeat every second from a thread of its own while the
 * command sets up (loads models and data), until cli_mpi_all_ok: a slow
 * load is not taken for a lost rank, a dead one is. Prints one line and
 * returns 1 on failure. */
int cli_mpi_init(int *rank, int *size, double timeout_s);
void cli_mpi_finalize(void);
/* The end of every rank's set-up (every rank calls it once, ok = its set-up
 * succeeded). Not a collective: it survives ranks that die or fail during
 * set-up. Rank 0 waits until every other rank has said ok or failed, or
 * has been silent for the timeout (lost), printing a line for each that
 * failed or was lost, and returns ok; the pool then runs without them.
 * Another rank returns 1 when it and rank 0 are ok; 0 when rank 0 failed
 * (rank 0 printed why) or when it failed itself (it printed why) — then it
 * returns only once the others have finished (it waits, sending heartbeats,
 * so a failed rank ends with the job, with MPI_Finalize when nobody was
 * lost). Ranks waiting here sleep (1 ms steps) instead of spinning a core. */
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
    /* 1: rank 0 hands out nothing until its compute thread has called
     * mpi_pool_publish (a first, sequential part of the work, e.g. training,
     * whose result every rank needs: the blob), or has stopped. Meanwhile
     * the ranks wait inside the pool: heartbeats go on, so a rank lost
     * then is detected like any other. */
    int publish;
} mpi_pool_params;

typedef struct {
    int err;            /* 0, or the first error (a rank's or rank 0's)       */
    char msg[1024];     /* its message, "rank 2: ..." for another rank's      */
    int stopped;        /* consume asked to stop                               */
    int n_consumed;     /* records consumed (rank 0)                           */
    int n_lost;         /* ranks lost                                           */
    int n_setup_out;    /* ranks that failed or were lost during set-up: no part in the run */
    char setup_out[256];/* them, "1 (failed), 2 (lost)"                          */
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
/* Rank 0's compute thread (params.publish), once: n bytes (copied) that
 * reach every other rank before its first item; from now on items are
 * handed out. Returns 0, or < 0 for a second call (its message set as by
 * mpi_pool_error). */
int mpi_pool_publish(mpi_pool *p, const void *blob, size_t n);
/* The published blob: on a rank > 0 once mpi_pool_next has returned an
 * item (NULL before, or when nothing was published). Valid during the run. */
const void *mpi_pool_blob(mpi_pool *p, size_t *n);
/* Compute thread: an error of the command's own (not the library's), as
 * the compute function's message; returns STEER_EARG to return from it. */
int mpi_pool_error(mpi_pool *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Compute threads: a finished item's record (copied). Returns 0 or < 0 (rank
 * 0: consume's error, whose message mpi_pool_run reports). */
int mpi_pool_put(mpi_pool *p, int item, const void *rec, size_t n);

/* ---------------------------------------------------------------- one command's share (mpi_share.c)
 * What every --mpi command does with the pool: run it (a collective), then
 * on rank 0 report. Each command brings one item source (pp->todo, in the
 * order a one-process run takes the items) and one merge step
 * (pp->consume, called in completion order; the command keeps what is
 * needed to write its files in item order afterwards). */
typedef struct {
    /* Names item i in the "missing" line ("3", "prompts 33-64"); NULL: i. */
    void (*name_item)(void *ud, int item, char *buf, size_t n);
    void *ud;
    /* What follows the missing items' list: where the finished ones are and
     * how to get the rest. NULL: nothing was written, and a rerun computes
     * every item again (a command without a journal). */
    void (*after_missing)(void *ud, const mpi_pool_result *res, char *buf, size_t n);
    int verbose; /* rank 0 prints "items computed per rank: 0:a 1:b ..." */
} mpi_share_report;

/* Runs the pool on every rank (that passed cli_mpi_all_ok). Rank 0 returns
 * 0 (every item handed out came back; with ranks out since the set-up it
 * says "no item missing: rank(s) ... computed nothing"), 3 (consume asked
 * to stop), or an exit status after one line on stderr: an error (its own
 * or another rank's), or "N item(s) missing, handed to K lost rank(s):
 * LIST; AFTER". Other ranks return 0, or 1 after an error. */
int cli_mpi_share(const mpi_pool_params *pp, const mpi_share_report *rep);

#endif

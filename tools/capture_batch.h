/* capture_batch.h — `steer capture` over many prompts (capture_batch.c),
 * called by cmd_capture.c when --prompts or --data is given. */
#ifndef STEER_CAPTURE_BATCH_H
#define STEER_CAPTURE_BATCH_H

#include "cli.h"

typedef struct {
    const char *model, *tokenizer, *out;
    const char *prompts_file, *data_spec; /* exactly one                     */
    const char *layers_arg, *positions;   /* positions: all | last | mean     */
    const steer_site *sites;
    int n_sites;
    int chat, n_ctx, n_threads, batch, quiet;
    const cli_strlist *steers, *cvs, *ablates;
    const char *adapter;                  /* --adapter or NULL                */
    int mpi;                              /* --mpi: batches over MPI ranks    */
    float mpi_timeout;                    /* --mpi-timeout                    */
} capture_batch_args;

/* Runs the batch capture and writes a->out; returns an exit status (errors
 * printed). */
int capture_batch(const capture_batch_args *a);

#endif

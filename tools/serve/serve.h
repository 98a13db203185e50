/*
 * serve.h — `steer serve` (docs/SERVER.md): an OpenAI-compatible HTTP server
 * (libmicrohttpd, http.c) whose requests (request.c: JSON bodies, steering,
 * responses) are decoded together by one scheduler thread (sched.c):
 * continuous batching, one batch row per active sequence, each sequence with
 * its own interventions (steer_intervention.seq). Public headers only.
 */
#ifndef STEER_SERVE_H
#define STEER_SERVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "steer.h"

/* ---------------------------------------------------------------- vectors of --vectors DIR */

typedef struct {
    char name[128];   /* file stem: [A-Za-z0-9_.-]+                             */
    char file[160];   /* file name inside DIR                                   */
    int is_cv;        /* a llama.cpp control vector (.gguf)                      */
    steer_vecset *vs; /* checked against the model at start                    */
} srv_vector;

/* ---------------------------------------------------------------- one request */

enum { JOB_COMPLETION = 0, JOB_CHAT = 1 };
#define SRV_MAX_CAPTURE 8
#define SRV_N_POSKIND 3 /* all, prompt, generated */

typedef struct srv_job {
    /* input, written before the job is queued, then read-only */
    int kind, stream;
    int *prompt, n_prompt;
    int max_tokens;
    steer_sampler_params sp;
    steer_vecset *sum[SRV_N_POSKIND], *sum_pos[SRV_N_POSKIND]; /* NULL: none */
    int n_cap;
    steer_site cap_site[SRV_MAX_CAPTURE];
    int cap_layer[SRV_MAX_CAPTURE], cap_width[SRV_MAX_CAPTURE];
    float *cap_buf[SRV_MAX_CAPTURE]; /* [n_prompt, width], filled during the prompt pass */
    char id[48];
    double t_queued;

    /* output and state, under srv.mu */
    int *out, n_out, cap_out;
    int done;                 /* the scheduler has let go of the job     */
    int cancelled;            /* the client went away                     */
    const char *finish;       /* "stop", "length"                        */
    int status;               /* 0 ok, else an HTTP status (500)          */
    char err[256];
    pthread_cond_t cv;
    struct srv_job *next;     /* queue link                               */

    /* scheduler-only state */
    int slot, pos, phase, last_tok;
    int hooks[512], n_hooks; /* interventions, then captures */
    steer_sampler *smp;
} srv_job;

/* ---------------------------------------------------------------- the server */

#define SRV_N_CODES 10
typedef struct {
    steer_model *m;
    steer_ctx *c;
    const char *model_name;
    int n_ctx, parallel, max_queue, vocab;
    srv_vector *vecs;
    int n_vecs;
    const char *api_key;
    size_t max_body;

    pthread_mutex_t mu;
    pthread_cond_t sched_cv, idle_cv;
    srv_job *queue_head, *queue_tail;
    int n_queued, n_active, n_live; /* live: queued, active, or being answered */
    int stop, draining;
    uint64_t next_id;

    /* metrics (under mu) */
    int codes[SRV_N_CODES];
    uint64_t code_count[SRV_N_CODES];
    uint64_t prompt_tokens, gen_tokens, steps, batch_rows;
    double fwd_wall, fwd_cpu; /* seconds in steer_forward: wall, and CPU of the scheduler thread */
    uint64_t lat_bucket[12], lat_count;
    double lat_sum;
} srv_state;

/* sched.c */
int srv_sched_start(srv_state *s, pthread_t *th);
void srv_sched_stop(srv_state *s, pthread_t th);
/* Queues a job (status 503 and a message if the server drains or the queue
 * is full). */
int srv_enqueue(srv_state *s, srv_job *j, char *err, size_t n);
/* Marks a job cancelled and waits until the scheduler lets go of it. */
void srv_cancel_wait(srv_state *s, srv_job *j);

/* request.c */
/* Parses a request body into a job; on a bad request returns the HTTP status
 * (400) with a one-line message in err. */
int srv_parse_job(srv_state *s, int kind, const char *body, size_t len, srv_job **out, char *err, size_t n);
void srv_job_free(srv_job *j);
/* Text of tokens out[from..to) (the piece rules of `steer generate`, bytes
 * >= 0x80 kept); appended raw to buf (no UTF-8 repair). */
void srv_tokens_text(const srv_state *s, const srv_job *j, int from, int to, char **buf, size_t *len, size_t *cap);
/* The longest prefix of buf[0..len) that is complete UTF-8 (final: all of it,
 * invalid bytes as U+FFFD) written NUL-terminated to out (malloc'd); returns
 * the bytes consumed. */
size_t srv_utf8_take(const char *buf, size_t len, int final, char **out);
/* The full (non-streaming) response body, malloc'd. */
char *srv_response_json(srv_state *s, srv_job *j);
/* One streaming chunk "data: {...}\n\n" (text may be NULL; finish NULL
 * while going on; first: the chat chunk that carries the role). */
char *srv_chunk_json(srv_state *s, srv_job *j, const char *text, const char *finish, int first);
char *srv_error_json(const char *msg, int status);
char *srv_models_json(srv_state *s);
char *srv_vectors_json(srv_state *s);
/* Loads every *.gguf (control vector) and *.safetensors of dir. */
int srv_load_vectors(srv_state *s, const char *dir, char *err, size_t n);
void srv_free_vectors(srv_state *s);

/* http.c */
typedef struct {
    const char *host;
    int port;
    int timeout_s;
    int max_conn;
} srv_http_opts;
/* Runs until SIGTERM/SIGINT (blocked by the caller in every thread): then
 * stops accepting, finishes in-flight requests and returns 0. */
int srv_http_run(srv_state *s, const srv_http_opts *o);
void srv_count_status(srv_state *s, int status); /* under mu */

#endif

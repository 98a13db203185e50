/*
 * sched.c — the scheduler of `steer serve`: one thread owns the context.
 * Between forward passes it admits queued requests into free sequence slots
 * (0..parallel-1), installs each one's interventions restricted to its slot
 * (steer_intervention.seq), and drops finished or cancelled ones (their
 * interventions removed by id, the slot cleared). Each step is one
 * steer_forward over every active sequence: a new sequence's whole prompt
 * (logits for its last row), and one row for each decoding sequence. The
 * matmul and attention are batch-invariant (docs/ARCHITECTURE.md), so a
 * greedy request decodes the same bytes alone or beside other requests.
 */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PH_PREFILL = 0, PH_DECODE = 1 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int srv_enqueue(srv_state *s, srv_job *j, char *err, size_t n)
{
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->draining || s->stop) {
        snprintf(err, n, "the server is shutting down");
        rc = 503;
    } else if (s->n_queued >= s->max_queue) {
        snprintf(err, n, "too many queued requests (%d); retry later", s->n_queued);
        rc = 503;
    } else {
        j->t_queued = now_s();
        j->next = NULL;
        if (s->queue_tail) s->queue_tail->next = j; else s->queue_head = j;
        s->queue_tail = j;
        s->n_queued++;
        s->n_live++;
        pthread_cond_signal(&s->sched_cv);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* under mu: remove j from the queue if it is there */
static int unqueue(srv_state *s, srv_job *j)
{
    srv_job **pp = &s->queue_head, *prev = NULL;
    while (*pp && *pp != j) { prev = *pp; pp = &(*pp)->next; }
    if (!*pp) return 0;
    *pp = j->next;
    if (s->queue_tail == j) s->queue_tail = prev;
    s->n_queued--;
    return 1;
}

void srv_cancel_wait(srv_state *s, srv_job *j)
{
    pthread_mutex_lock(&s->mu);
    if (!j->done) {
        j->cancelled = 1;
        if (unqueue(s, j)) {
            j->done = 1;
            j->status = 499;
        } else {
            pthread_cond_signal(&s->sched_cv);
            while (!j->done) pthread_cond_wait(&j->cv, &s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- slots */

static int add_set(srv_state *s, srv_job *j, const steer_vecset *vs, steer_pos_kind pk)
{
    for (int k = 0; vs && k < steer_vecset_count(vs); k++) {
        const steer_vec *e = steer_vecset_at(vs, k);
        const int max = (int)(sizeof j->hooks / sizeof j->hooks[0]) - SRV_MAX_CAPTURE;
        if (j->n_hooks >= max) {
            snprintf(j->err, sizeof j->err, "too many steered (site, layer) pairs in one request (at most %d)", max);
            return STEER_EARG;
        }
        steer_intervention iv;
        memset(&iv, 0, sizeof iv);
        iv.kind = STEER_ADD;
        iv.site = e->site;
        iv.layer = e->layer;
        iv.alpha = 1.0f; /* as steer_vecset_apply(sum, c, 1.0f) in `steer generate` */
        iv.data = e->data;
        iv.n_rows = e->n_rows;
        iv.positions.kind = pk;
        iv.seq = j->slot;
        int id = steer_ctx_add_intervention(s->c, &iv);
        if (id < 0) return id;
        j->hooks[j->n_hooks++] = id;
    }
    return STEER_OK;
}

/* Interventions and captures of j in slot j->slot; the order of `steer
 * generate`: the sum of one-row vectors, then the per-position sum, for
 * positions all, prompt, generated. */
static int install(srv_state *s, srv_job *j)
{
    static const steer_pos_kind pk[SRV_N_POSKIND] = {STEER_POS_ALL, STEER_POS_PROMPT, STEER_POS_GENERATED};
    steer_ctx_clear(s->c, j->slot);
    steer_ctx_set_prompt_len(s->c, j->slot, j->n_prompt);
    int rc = STEER_OK;
    for (int p = 0; p < SRV_N_POSKIND && !rc; p++) {
        rc = add_set(s, j, j->sum[p], pk[p]);
        if (!rc) rc = add_set(s, j, j->sum_pos[p], pk[p]);
    }
    for (int i = 0; i < j->n_cap && !rc; i++) {
        int id = steer_ctx_add_capture_into(s->c, j->cap_site[i], j->cap_layer[i], j->slot, j->cap_buf[i], j->n_prompt,
                                            j->cap_width[i], NULL, 0);
        if (id < 0) rc = id;
        else j->hooks[j->n_hooks++] = id;
    }
    if (!rc) {
        steer_sampler_params sp = j->sp;
        rc = steer_sampler_new(&sp, &j->smp);
    }
    return rc;
}

static void uninstall(srv_state *s, srv_job *j)
{
    for (int i = 0; i < j->n_hooks; i++) steer_ctx_remove_hook(s->c, j->hooks[i]);
    j->n_hooks = 0;
    steer_ctx_clear(s->c, j->slot);
    if (j->smp) steer_sampler_free(j->smp);
    j->smp = NULL;
}

/* under mu */
static void finish_job(srv_state *s, srv_job *j, double t)
{
    j->done = 1;
    static const double edges[11] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
    double lat = t - j->t_queued;
    int b = 0;
    while (b < 11 && lat > edges[b]) b++;
    s->lat_bucket[b]++;
    s->lat_count++;
    s->lat_sum += lat;
    pthread_cond_broadcast(&j->cv);
}

static void *sched_main(void *arg)
{
    srv_state *s = arg;
    const int P = s->parallel;
    srv_job **slot = calloc((size_t)P, sizeof *slot);
    int cap_rows = 0;
    int *tok = NULL, *pos = NULL, *seq = NULL, *row_of = NULL;
    int8_t *want = NULL;
    row_of = calloc((size_t)P, sizeof *row_of);
    const int bos = steer_token_bos(s->m), eos = steer_token_eos(s->m);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        /* drop cancelled sequences */
        for (int k = 0; k < P; k++) {
            srv_job *j = slot[k];
            if (j && j->cancelled) {
                pthread_mutex_unlock(&s->mu);
                uninstall(s, j);
                pthread_mutex_lock(&s->mu);
                slot[k] = NULL;
                s->n_active--;
                j->status = 499;
                finish_job(s, j, now_s());
            }
        }
        /* admit queued requests into free slots */
        srv_job *admitted[64];
        int n_adm = 0;
        for (int k = 0; k < P && s->queue_head && n_adm < 64; k++) {
            if (slot[k]) continue;
            srv_job *j = s->queue_head;
            s->queue_head = j->next;
            if (!s->queue_head) s->queue_tail = NULL;
            s->n_queued--;
            j->slot = k;
            j->phase = PH_PREFILL;
            slot[k] = j;
            s->n_active++;
            admitted[n_adm++] = j;
        }
        if (s->n_active == 0) {
            if (s->stop) break;
            pthread_cond_broadcast(&s->idle_cv);
            pthread_cond_wait(&s->sched_cv, &s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);

        for (int a = 0; a < n_adm; a++) {
            srv_job *j = admitted[a];
            if (install(s, j) != STEER_OK) {
                if (!j->err[0]) snprintf(j->err, sizeof j->err, "%s", steer_last_error());
                uninstall(s, j);
                pthread_mutex_lock(&s->mu);
                slot[j->slot] = NULL;
                s->n_active--;
                j->status = 500;
                finish_job(s, j, now_s());
                pthread_mutex_unlock(&s->mu);
            }
        }
        /* one batch: prompts of new sequences, one row per decoding one */
        int n = 0;
        for (int k = 0; k < P; k++)
            if (slot[k]) n += slot[k]->phase == PH_PREFILL ? slot[k]->n_prompt : 1;
        if (n > cap_rows) {
            cap_rows = n * 2;
            tok = realloc(tok, (size_t)cap_rows * sizeof *tok);
            pos = realloc(pos, (size_t)cap_rows * sizeof *pos);
            seq = realloc(seq, (size_t)cap_rows * sizeof *seq);
            want = realloc(want, (size_t)cap_rows);
            if (!tok || !pos || !seq || !want) { fprintf(stderr, "steer serve: out of memory\n"); abort(); }
        }
        int r = 0;
        for (int k = 0; k < P; k++) {
            srv_job *j = slot[k];
            if (!j) continue;
            if (j->phase == PH_PREFILL) {
                for (int i = 0; i < j->n_prompt; i++) {
                    tok[r] = j->prompt[i]; pos[r] = i; seq[r] = k; want[r] = i == j->n_prompt - 1;
                    r++;
                }
                j->pos = j->n_prompt;
            } else {
                tok[r] = j->last_tok; pos[r] = j->pos++; seq[r] = k; want[r] = 1;
                r++;
            }
            row_of[k] = r - 1;
        }
        int frc = STEER_OK;
        struct timespec c0, c1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
        double w0 = now_s();
        if (n > 0) {
            steer_batch b = {.n = n, .tokens = tok, .pos = pos, .seq = seq, .logits = want};
            frc = steer_forward(s->c, &b);
        }
        double w1 = now_s();
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
        char ferr[256] = "";
        if (frc) snprintf(ferr, sizeof ferr, "%s", steer_last_error());
        /* sample each active sequence's next token */
        int new_tok[256];
        for (int k = 0; k < P && k < 256; k++) {
            srv_job *j = slot[k];
            new_tok[k] = -1;
            if (!j || frc) continue;
            if (j->phase == PH_PREFILL) {
                /* the prompt's activations are recorded: drop the captures */
                for (int i = j->n_hooks - j->n_cap; i < j->n_hooks; i++) steer_ctx_remove_hook(s->c, j->hooks[i]);
                j->n_hooks -= j->n_cap;
                j->phase = PH_DECODE;
            }
            new_tok[k] = steer_sample(j->smp, steer_ctx_logits(s->c, row_of[k]), s->vocab);
        }
        pthread_mutex_lock(&s->mu);
        s->steps++;
        s->batch_rows += (uint64_t)n;
        s->fwd_wall += w1 - w0;
        s->fwd_cpu += (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
        double t = now_s();
        for (int k = 0; k < P; k++) {
            srv_job *j = slot[k];
            if (!j) continue;
            int end = 0;
            if (frc) {
                j->status = 500;
                snprintf(j->err, sizeof j->err, "forward pass failed: %.200s", ferr);
                end = 1;
            } else {
                int tk = new_tok[k];
                if (tk == bos || tk == eos) {
                    j->finish = "stop";
                    end = 1;
                } else {
                    if (j->n_out == j->cap_out) {
                        int nc = j->cap_out ? 2 * j->cap_out : 64;
                        int *no = realloc(j->out, (size_t)nc * sizeof *no);
                        if (!no) { fprintf(stderr, "steer serve: out of memory\n"); abort(); }
                        j->out = no;
                        j->cap_out = nc;
                    }
                    j->out[j->n_out++] = tk;
                    j->last_tok = tk;
                    s->gen_tokens++;
                    if (j->n_out >= j->max_tokens || j->pos >= s->n_ctx) {
                        j->finish = "length";
                        end = 1;
                    }
                    pthread_cond_broadcast(&j->cv);
                }
            }
            if (end || j->cancelled) {
                pthread_mutex_unlock(&s->mu);
                uninstall(s, j);
                pthread_mutex_lock(&s->mu);
                slot[k] = NULL;
                s->n_active--;
                if (j->cancelled && !end) j->status = 499;
                finish_job(s, j, t);
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(slot); free(tok); free(pos); free(seq); free(want); free(row_of);
    return NULL;
}

int srv_sched_start(srv_state *s, pthread_t *th)
{
    if (s->parallel > 256) s->parallel = 256;
    return pthread_create(th, NULL, sched_main, s);
}

void srv_sched_stop(srv_state *s, pthread_t th)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->sched_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(th, NULL);
}

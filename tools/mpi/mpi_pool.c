/* mpi_pool.c — dynamic work sharing over MPI (mpi_pool.h, docs/SCALING.md).
 *
 * Messages (MPI_COMM_WORLD, rank r > 0 to rank 0 unless noted):
 *   REQ   r wants an item                 ITEM  0 → r: the item, or -1 = no more
 *   RES   [int item][record] a finished item
 *   HB    heartbeat (every second a rank has sent nothing else)
 *   BYE   r's compute is finished and every RES is sent (the last message)
 *   ERR   like BYE, after an error: its message
 *   FIN   0 → r, the answer to BYE/ERR once every rank is done: int 1 = a
 *         rank was lost (then no rank calls MPI_Finalize, which would wait
 *         for the lost one), 0 = none
 *   BLOB  0 → r, rank 0's published bytes, before r's first ITEM (params
 *         .publish: requests wait until rank 0 publishes or stops)
 * MPI keeps the order of messages between two ranks, so rank 0 has every
 * RES of a rank before its BYE. Only the main thread of each rank calls MPI;
 * it waits on a condition variable in 1 ms steps between polls, so a rank
 * waiting for work does not spin a core.
 *
 * Test hook: STEER_MPI_TEST_KILL=R:K makes rank R (> 0) kill itself with
 * SIGKILL when its (K+1)-th item arrives, so that item is lost in flight
 * (tests/cli/cli_mpi.sh); R:wait right after it sent its first request, so
 * it dies holding no item (with params.publish: while rank 0 still works
 * alone; tests/cli/cli_mpi_commands.sh). STEER_MPI_TEST_PUBLISH_DELAY=S
 * makes rank 0 sleep S seconds before it publishes (a long first part). */
#include "mpi_pool.h"

#include "steer.h"

#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TAG_REQ = 1, TAG_ITEM, TAG_RES, TAG_HB, TAG_BYE, TAG_ERR, TAG_FIN, TAG_BLOB };

/* Set when a rank was lost: MPI_Finalize would wait for it (Open MPI 4.1
 * does), so cli_mpi_finalize leaves it out. */
static int g_skip_finalize;
enum { W_ACTIVE = 0, W_BYE, W_LOST, W_FAILED };

typedef struct out_rec {
    struct out_rec *next;
    size_t n;
    unsigned char *buf; /* [int item][record] */
} out_rec;

struct mpi_pool {
    const mpi_pool_params *pp;
    int rank, size;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int local_done;     /* the compute thread returned                         */
    int local_rc;
    char local_msg[1024];
    char own_msg[1024]; /* mpi_pool_error's message                           */
    /* rank 0 */
    int next_todo;
    int stopping;       /* hand out nothing more                               */
    int first_open;     /* ranks > 0 not yet served their first request        */
    unsigned char *asked; /* [size] rank's first request served                */
    int *owner;         /* [n_data] rank the item was handed to, -1 none      */
    unsigned char *done;/* [n_data]                                            */
    int *wstate;        /* [size] W_*                                          */
    unsigned char *late;/* [size] a lost rank that said BYE/ERR after all      */
    double *heard;      /* [size] last message, monotonic seconds             */
    unsigned char *held;/* [size] a request waiting for the blob (publish)    */
    int *item_buf;      /* [size] the ITEM last sent to each rank ...          */
    MPI_Request *req_item, *req_blob; /* [size] ... and its send, the blob's */
    unsigned char *blob_sent; /* [size]                                       */
    int published;      /* rank 0: mpi_pool_publish called; rank > 0: blob in */
    int keep_bufs;      /* rank 0: sends to a lost rank may still read item_buf, blob */
    unsigned char *blob;
    size_t blob_n;
    mpi_pool_result *res;
    /* rank > 0 */
    int want, req_sent, have_reply, reply, no_more;
    out_rec *out_head, *out_tail;
    int items_got, kill_after; /* test hook: -1 none, -2 at the first request */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Waits on p->cv (p->mu held) for at most ms milliseconds. */
static void wait_ms(mpi_pool *p, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
    }
    pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

int cli_mpi_init(int *rank, int *size)
{
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "steer: --mpi: MPI_Init_thread failed\n");
        return 1;
    }
    if (!inited && provided < MPI_THREAD_FUNNELED) {
        fprintf(stderr, "steer: --mpi: the MPI library gives no MPI_THREAD_FUNNELED support\n");
        MPI_Finalize();
        return 1;
    }
    /* Errors are status codes, not aborts: a lost peer must not take rank 0
     * down with it. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    return 0;
}

void cli_mpi_finalize(void)
{
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin && !g_skip_finalize) MPI_Finalize();
}

/* Completes a nonblocking collective, sleeping 1 ms between tests. */
static int wait_sleeping(MPI_Request *q)
{
    for (;;) {
        int done = 0;
        if (MPI_Test(q, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return 1;
        if (done) return 0;
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
}

int cli_mpi_all_ok(int ok)
{
    int mine = ok ? 1 : 0, all = 0;
    MPI_Request q;
    if (MPI_Iallreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &q) != MPI_SUCCESS || wait_sleeping(&q))
        return 0;
    return all == 1;
}

void cli_mpi_die(const char *what, const char *msg)
{
    fprintf(stderr, "steer %s: %s\n", what, msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    abort();
}

/* ---------------------------------------------------------------- compute thread side */

int mpi_pool_next(mpi_pool *p)
{
    int item = -1;
    pthread_mutex_lock(&p->mu);
    if (p->rank == 0) {
        /* Fair start: every other rank's first request is answered before
         * rank 0 takes its own first item, so with at least as many items
         * as ranks every rank computes one. */
        while (p->first_open > 0 && !p->stopping) pthread_cond_wait(&p->cv, &p->mu);
        if (!p->stopping && p->next_todo < p->pp->n_todo) {
            item = p->pp->todo[p->next_todo++];
            p->owner[item] = 0;
        }
    } else if (!p->no_more) {
        p->want = 1;
        pthread_cond_broadcast(&p->cv);
        while (!p->have_reply) pthread_cond_wait(&p->cv, &p->mu);
        item = p->reply;
        p->have_reply = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return item;
}

int mpi_pool_publish(mpi_pool *p, const void *blob, size_t n)
{
    const char *delay = getenv("STEER_MPI_TEST_PUBLISH_DELAY"); /* test hook: seconds */
    if (delay && atof(delay) > 0) {
        struct timespec ts = {(time_t)atof(delay), (long)((atof(delay) - (time_t)atof(delay)) * 1e9)};
        nanosleep(&ts, NULL);
    }
    unsigned char *b = malloc(n ? n : 1);
    if (!b) cli_mpi_die(p->pp->what, "--mpi: out of memory for the bytes to publish");
    memcpy(b, blob, n);
    pthread_mutex_lock(&p->mu);
    const int again = p->published; /* once: sends of the first may be in flight */
    if (!again) {
        p->blob = b;
        p->blob_n = n;
        p->published = 1;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (again) {
        free(b);
        return mpi_pool_error(p, "--mpi: published twice");
    }
    return 0;
}

const void *mpi_pool_blob(mpi_pool *p, size_t *n)
{
    pthread_mutex_lock(&p->mu);
    const void *b = p->published ? p->blob : NULL;
    if (n) *n = b ? p->blob_n : 0;
    pthread_mutex_unlock(&p->mu);
    return b;
}

/* Rank 0, p->mu held: consume one record. */
static void consume_locked(mpi_pool *p, int item, const void *rec, size_t n)
{
    if (item < 0 || item >= p->pp->n_data || p->done[item]) return; /* a late duplicate */
    char msg[1024] = "";
    int rc = p->pp->consume(p->pp->consume_ud, item, rec, n, msg, sizeof msg);
    if (rc < 0) {
        if (!p->res->err) {
            p->res->err = rc;
            snprintf(p->res->msg, sizeof p->res->msg, "%s", msg[0] ? msg : steer_last_error());
        }
        p->stopping = 1;
        return;
    }
    p->done[item] = 1;
    p->res->n_consumed++;
    if (p->owner[item] >= 0) p->res->by_rank[p->owner[item]]++;
    if (rc > 0) {
        p->res->stopped = 1;
        p->stopping = 1;
    }
}

int mpi_pool_put(mpi_pool *p, int item, const void *rec, size_t n)
{
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (p->rank == 0) {
        consume_locked(p, item, rec, n);
        rc = p->res->err < 0 ? p->res->err : 0;
    } else {
        out_rec *o = malloc(sizeof *o);
        unsigned char *b = malloc(sizeof(int) + n);
        if (!o || !b) cli_mpi_die(p->pp->what, "out of memory");
        {
            memcpy(b, &item, sizeof item);
            memcpy(b + sizeof item, rec, n);
            o->buf = b;
            o->n = sizeof(int) + n;
            o->next = NULL;
            if (p->out_tail) p->out_tail->next = o;
            else p->out_head = o;
            p->out_tail = o;
            pthread_cond_broadcast(&p->cv);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int mpi_pool_error(mpi_pool *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&p->mu);
    vsnprintf(p->own_msg, sizeof p->own_msg, fmt, ap);
    pthread_mutex_unlock(&p->mu);
    va_end(ap);
    return STEER_EARG;
}

static void *compute_main(void *arg)
{
    mpi_pool *p = arg;
    int rc = p->pp->compute(p->pp->compute_ud, p);
    pthread_mutex_lock(&p->mu);
    p->local_rc = rc;
    if (rc)
        snprintf(p->local_msg, sizeof p->local_msg, "%s",
                 p->own_msg[0] ? p->own_msg : rc < 0 ? steer_last_error() : "stopped");
    p->local_done = 1;
    if (p->rank == 0 && rc) p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---------------------------------------------------------------- rank 0 */

/* p->mu held: rank r has had its first request answered (or is gone). */
static void served_first(mpi_pool *p, int r)
{
    if (p->asked[r]) return;
    p->asked[r] = 1;
    p->first_open--;
    pthread_cond_broadcast(&p->cv);
}

/* p->mu not held: answers rank src's request: the blob first if src has
 * not had it, then the next item (-1: none). The sends do not wait: src may
 * have died since it asked (a request held while rank 0 works alone), and
 * a blob may be large. The previous ITEM's send to src is complete or about
 * to be: src asked again only after receiving it. */
static void answer_req(mpi_pool *p, int src)
{
    pthread_mutex_lock(&p->mu);
    int item = -1;
    const int lost = p->wstate[src] == W_LOST;
    if (!lost && !p->stopping && p->next_todo < p->pp->n_todo) {
        item = p->pp->todo[p->next_todo++];
        p->owner[item] = src;
    }
    const int send_blob = p->published && !p->blob_sent[src] && item >= 0;
    if (send_blob) p->blob_sent[src] = 1;
    served_first(p, src);
    pthread_mutex_unlock(&p->mu);
    /* the blob does not change once published: read without the lock */
    if (send_blob) MPI_Isend(p->blob, (int)p->blob_n, MPI_BYTE, src, TAG_BLOB, MPI_COMM_WORLD, &p->req_blob[src]);
    MPI_Wait(&p->req_item[src], MPI_STATUS_IGNORE);
    p->item_buf[src] = item;
    MPI_Isend(&p->item_buf[src], 1, MPI_INT, src, TAG_ITEM, MPI_COMM_WORLD, &p->req_item[src]);
}

static void serve_rank0(mpi_pool *p)
{
    const double timeout = p->pp->timeout_s;
    mpi_pool_result *res = p->res;
    double t = now_s();
    for (int r = 1; r < p->size; r++) p->heard[r] = t;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS) flag = 0;
        if (flag) {
            int src = st.MPI_SOURCE, tag = st.MPI_TAG, count = 0;
            MPI_Get_count(&st, MPI_BYTE, &count);
            unsigned char *buf = malloc(count > 0 ? (size_t)count + 1 : 1);
            if (!buf) cli_mpi_die(p->pp->what, "out of memory for a message");
            MPI_Recv(buf, count, MPI_BYTE, src, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            pthread_mutex_lock(&p->mu);
            p->heard[src] = now_s();
            const int lost = p->wstate[src] == W_LOST;
            if (tag == TAG_REQ) {
                if (p->pp->publish && !p->published && !p->stopping && !lost)
                    p->held[src] = 1; /* answered once published (or stopped) */
                else {
                    pthread_mutex_unlock(&p->mu);
                    answer_req(p, src);
                    pthread_mutex_lock(&p->mu);
                }
            } else if (tag == TAG_RES && count >= (int)sizeof(int)) {
                int item;
                memcpy(&item, buf, sizeof item);
                consume_locked(p, item, buf + sizeof item, (size_t)count - sizeof item);
            } else if (tag == TAG_BYE) {
                if (!lost) p->wstate[src] = W_BYE;
                else p->late[src] = 1; /* slow, not dead: it waits for FIN */
                served_first(p, src);
            } else if (tag == TAG_ERR) {
                buf[count > 0 ? count : 0] = 0;
                if (!res->err) {
                    res->err = STEER_EARG;
                    snprintf(res->msg, sizeof res->msg, "rank %d: %s", src, (char *)buf);
                }
                if (lost) p->late[src] = 1;
                p->wstate[src] = W_FAILED;
                p->stopping = 1;
                served_first(p, src);
            }
            pthread_mutex_unlock(&p->mu);
            free(buf);
            continue;
        }
        pthread_mutex_lock(&p->mu);
        /* Held requests, once published: only to a rank heard from in the
         * last 2 s (it sends a heartbeat every second while it waits), so
         * an item does not go to a rank that died while rank 0 worked
         * alone and is not yet taken for lost; stopping: every one. */
        if (p->published || p->stopping)
            for (int r = 1; r < p->size; r++)
                if (p->held[r] && (p->stopping || now_s() - p->heard[r] <= 2.0)) {
                    p->held[r] = 0;
                    pthread_mutex_unlock(&p->mu);
                    answer_req(p, r);
                    pthread_mutex_lock(&p->mu);
                }
        t = now_s();
        int open = 0;
        for (int r = 1; r < p->size; r++) {
            if (p->wstate[r] != W_ACTIVE) continue;
            if (t - p->heard[r] > timeout) {
                p->wstate[r] = W_LOST;
                res->n_lost++;
                served_first(p, r);
                int held = 0;
                for (int i = 0; i < p->pp->n_data; i++) held += p->owner[i] == r && !p->done[i];
                fprintf(stderr, "steer %s: rank %d sent nothing for %.0f s: lost, with %d item(s) in flight\n",
                        p->pp->what, r, timeout, held);
                continue;
            }
            open++;
        }
        if (p->local_done && !open) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        wait_ms(p, 1);
        pthread_mutex_unlock(&p->mu);
    }
    /* Every rank still here waits for FIN; it has received every ITEM and
     * blob sent to it, so those sends complete. */
    int lost_any = res->n_lost > 0;
    for (int r = 1; r < p->size; r++)
        if (p->wstate[r] == W_BYE || p->wstate[r] == W_FAILED || p->late[r]) {
            MPI_Wait(&p->req_item[r], MPI_STATUS_IGNORE);
            MPI_Wait(&p->req_blob[r], MPI_STATUS_IGNORE);
            MPI_Send(&lost_any, 1, MPI_INT, r, TAG_FIN, MPI_COMM_WORLD);
        } else {
            /* a lost rank: its sends may never complete; their buffers
             * (item_buf, blob) are then left allocated (p->keep_bufs) */
            if (p->req_item[r] != MPI_REQUEST_NULL) MPI_Request_free(&p->req_item[r]), p->keep_bufs = 1;
            if (p->req_blob[r] != MPI_REQUEST_NULL) MPI_Request_free(&p->req_blob[r]), p->keep_bufs = 1;
        }
    /* A rank taken for lost may only be slow: "no more items" and FIN
     * reach it if it is still there (sent without waiting, as it may be
     * dead; the buffers are static because nobody waits for the sends). */
    static const int no_item = -1, fin_lost = 1;
    for (int r = 1; r < p->size; r++)
        if (p->wstate[r] == W_LOST && !p->late[r]) {
            MPI_Request q;
            if (MPI_Isend(&no_item, 1, MPI_INT, r, TAG_ITEM, MPI_COMM_WORLD, &q) == MPI_SUCCESS) MPI_Request_free(&q);
            if (MPI_Isend(&fin_lost, 1, MPI_INT, r, TAG_FIN, MPI_COMM_WORLD, &q) == MPI_SUCCESS) MPI_Request_free(&q);
        }
    if (lost_any) g_skip_finalize = 1;
    /* Items handed out and never returned: to lost or failed ranks (or
     * cut short by an error). */
    int nm = 0;
    for (int i = 0; i < p->pp->n_data; i++) nm += p->owner[i] >= 0 && !p->done[i];
    res->missing = malloc((nm > 0 ? (size_t)nm : 1) * sizeof(int));
    if (res->missing)
        for (int i = 0; i < p->pp->n_data; i++)
            if (p->owner[i] >= 0 && !p->done[i]) res->missing[res->n_missing++] = i;
    if (!res->err && p->local_rc) {
        res->err = p->local_rc;
        snprintf(res->msg, sizeof res->msg, "%s", p->local_msg);
    }
}

/* ---------------------------------------------------------------- ranks > 0 */

static void serve_worker(mpi_pool *p)
{
    double last_send = now_s();
    for (;;) {
        int flag = 0;
        MPI_Status st;
        /* ITEM or BLOB, in the order sent (FIN is left for the end) */
        if (MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st) != MPI_SUCCESS) flag = 0;
        if (flag && st.MPI_TAG == TAG_BLOB) {
            int count = 0;
            MPI_Get_count(&st, MPI_BYTE, &count);
            unsigned char *b = malloc(count > 0 ? (size_t)count : 1);
            if (!b) cli_mpi_die(p->pp->what, "out of memory for the published bytes");
            MPI_Recv(b, count, MPI_BYTE, 0, TAG_BLOB, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            pthread_mutex_lock(&p->mu);
            free(p->blob);
            p->blob = b;
            p->blob_n = (size_t)count;
            p->published = 1;
            pthread_mutex_unlock(&p->mu);
            continue;
        }
        if (flag && st.MPI_TAG == TAG_ITEM) {
            int item = -1;
            MPI_Recv(&item, 1, MPI_INT, 0, TAG_ITEM, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if (item >= 0 && p->kill_after >= 0 && p->items_got++ >= p->kill_after) raise(SIGKILL);
            pthread_mutex_lock(&p->mu);
            p->reply = item;
            p->have_reply = 1;
            p->want = 0;
            p->req_sent = 0;
            if (item < 0) p->no_more = 1;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
            continue;
        }
        pthread_mutex_lock(&p->mu);
        out_rec *out = p->out_head;
        p->out_head = p->out_tail = NULL;
        const int req = p->want && !p->req_sent;
        if (req) p->req_sent = 1;
        const int finished = p->local_done;
        pthread_mutex_unlock(&p->mu);
        int sent = out || req;
        while (out) {
            out_rec *nx = out->next;
            MPI_Send(out->buf, (int)out->n, MPI_BYTE, 0, TAG_RES, MPI_COMM_WORLD);
            free(out->buf);
            free(out);
            out = nx;
        }
        if (req) MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_REQ, MPI_COMM_WORLD);
        if (req && p->kill_after == -2) raise(SIGKILL);
        if (finished) { /* every record was queued before local_done: all sent */
            if (p->local_rc)
                MPI_Send(p->local_msg, (int)strlen(p->local_msg), MPI_BYTE, 0, TAG_ERR, MPI_COMM_WORLD);
            else
                MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_BYE, MPI_COMM_WORLD);
            /* Wait (sleeping) for rank 0's FIN: it says whether MPI_Finalize
             * is safe. */
            int lost_any = 0;
            for (;;) {
                int f = 0;
                if (MPI_Iprobe(0, TAG_FIN, MPI_COMM_WORLD, &f, &st) != MPI_SUCCESS) break;
                if (f) {
                    MPI_Recv(&lost_any, 1, MPI_INT, 0, TAG_FIN, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                    break;
                }
                pthread_mutex_lock(&p->mu);
                wait_ms(p, 2);
                pthread_mutex_unlock(&p->mu);
            }
            if (lost_any) g_skip_finalize = 1;
            break;
        }
        double t = now_s();
        if (sent) last_send = t;
        else if (t - last_send >= 1.0) {
            MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_HB, MPI_COMM_WORLD);
            last_send = t;
        }
        pthread_mutex_lock(&p->mu);
        if (!p->out_head && !(p->want && !p->req_sent) && !p->local_done) wait_ms(p, 1);
        pthread_mutex_unlock(&p->mu);
    }
}

/* ---------------------------------------------------------------- run */

int mpi_pool_run(const mpi_pool_params *pp, mpi_pool_result *res)
{
    memset(res, 0, sizeof *res);
    mpi_pool p;
    memset(&p, 0, sizeof p);
    p.pp = pp;
    p.res = res;
    p.kill_after = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &p.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &p.size);
    const char *kill = getenv("STEER_MPI_TEST_KILL");
    int kr, kk;
    if (kill && sscanf(kill, "%d:%d", &kr, &kk) == 2 && kr == p.rank && kr > 0 && kk >= 0) p.kill_after = kk;
    char kw[8];
    if (kill && sscanf(kill, "%d:%7s", &kr, kw) == 2 && kr == p.rank && kr > 0 && strcmp(kw, "wait") == 0)
        p.kill_after = -2;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    int ok = 1;
    if (p.rank == 0) {
        p.owner = malloc((pp->n_data > 0 ? (size_t)pp->n_data : 1) * sizeof *p.owner);
        p.done = calloc(pp->n_data > 0 ? (size_t)pp->n_data : 1, 1);
        p.wstate = calloc((size_t)p.size, sizeof *p.wstate);
        p.heard = calloc((size_t)p.size, sizeof *p.heard);
        res->by_rank = calloc((size_t)p.size, sizeof *res->by_rank);
        p.asked = calloc((size_t)p.size, 1);
        p.late = calloc((size_t)p.size, 1);
        p.held = calloc((size_t)p.size, 1);
        p.blob_sent = calloc((size_t)p.size, 1);
        p.item_buf = calloc((size_t)p.size, sizeof *p.item_buf);
        p.req_item = malloc((size_t)p.size * sizeof *p.req_item);
        p.req_blob = malloc((size_t)p.size * sizeof *p.req_blob);
        if (p.req_item && p.req_blob)
            for (int r = 0; r < p.size; r++) p.req_item[r] = p.req_blob[r] = MPI_REQUEST_NULL;
        p.first_open = p.size - 1;
        if (!p.owner || !p.done || !p.wstate || !p.heard || !res->by_rank || !p.asked || !p.late || !p.held ||
            !p.blob_sent || !p.item_buf || !p.req_item || !p.req_blob)
            cli_mpi_die(pp->what, "out of memory");
        for (int i = 0; i < pp->n_data; i++) p.owner[i] = -1;
    }
    pthread_t th;
    if (ok && pthread_create(&th, NULL, compute_main, &p) != 0) ok = 0;
    if (!ok) {
        /* Nothing can be computed here; the others still need a reply. */
        p.local_done = 1;
        p.local_rc = STEER_ENOMEM;
        snprintf(p.local_msg, sizeof p.local_msg, "out of memory or no thread for the compute");
        if (p.rank == 0) p.stopping = 1;
    }
    if (p.rank == 0) serve_rank0(&p);
    else serve_worker(&p);
    if (ok) pthread_join(th, NULL);
    if (p.rank != 0 && !res->err && p.local_rc) {
        res->err = p.local_rc;
        snprintf(res->msg, sizeof res->msg, "%s", p.local_msg);
    }
    free(p.owner);
    free(p.done);
    free(p.wstate);
    free(p.heard);
    free(p.asked);
    free(p.late);
    free(p.held);
    free(p.blob_sent);
    free(p.req_item);
    free(p.req_blob);
    if (!p.keep_bufs) { /* else a send to a lost rank may still read them */
        free(p.item_buf);
        free(p.blob);
    }
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    return res->err;
}

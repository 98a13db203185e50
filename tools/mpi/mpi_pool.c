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
 *   READY r's set-up is over: int 1 = ok, 0 = failed (cli_mpi_all_ok)
 *   GO    0 → r, the answer to READY once every rank is ready, failed or
 *         lost (see "set-up" below)
 * HB starts with MPI (a thread sends it while the main thread loads), so a
 * rank that dies during the set-up is lost like any other; one that fails
 * its set-up takes no part and waits for FIN.
 * MPI keeps the order of messages between two ranks, so rank 0 has every
 * RES of a rank before its BYE. Only the main thread of each rank calls MPI
 * (but for the set-up's heartbeat thread, while the main thread makes no
 * MPI call: MPI_THREAD_SERIALIZED); it waits on a condition variable in
 * 1 ms steps between polls, so a rank waiting for work does not spin a core.
 *
 * Test hook: STEER_MPI_TEST_KILL=R:K makes rank R (> 0) kill itself with
 * SIGKILL when its (K+1)-th item arrives, so that item is lost in flight
 * (tests/cli/cli_mpi.sh); R:wait right after it sent its first request, so
 * it dies holding no item (with params.publish: while rank 0 still works
 * alone; tests/cli/cli_mpi_commands.sh); R:load as its set-up starts (from
 * its heartbeat thread, while the main thread loads; tests/cli/cli_mpi.sh).
 * STEER_MPI_TEST_PUBLISH_DELAY=S makes rank 0 sleep S seconds before it
 * publishes (a long first part). */
#include "mpi_pool.h"

#include "steer.h"
#include "../cli.h"

#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TAG_REQ = 1, TAG_ITEM, TAG_RES, TAG_HB, TAG_BYE, TAG_ERR, TAG_FIN, TAG_BLOB, TAG_READY, TAG_GO };

/* Set when a rank was lost: MPI_Finalize would wait for it (Open MPI 4.1
 * does), so cli_mpi_finalize leaves it out. */
static int g_skip_finalize;
/* W_IDLE: failed during its set-up; waits, sending heartbeats, for FIN. */
enum { W_ACTIVE = 0, W_BYE, W_LOST, W_FAILED, W_IDLE };

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
    int setup_lost;     /* rank 0: a rank was lost during the set-up           */
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

/* ---------------------------------------------------------------- set-up
 * From MPI_Init to the end of the command's set-up (models, data): ranks
 * > 0 send HB from a thread (the main thread loads and makes no MPI call:
 * MPI_THREAD_SERIALIZED); cli_mpi_all_ok stops it, and each rank > 0 sends
 * READY (int 1 = set up, 0 = failed) to rank 0, which answers GO to every
 * rank once all are ready, failed or lost:
 *   GO_RUN        compute (the pool follows)
 *   GO_STOP       rank 0 failed: stop
 *   GO_STOP_LOST  rank 0 failed and a rank was lost: stop without
 *                 MPI_Finalize (it would wait for the lost one)
 *   GO_LATE       the READY came after rank 0 took the rank for lost: stop
 *                 (without MPI_Finalize)
 * A rank that failed is answered only at the end, by the pool's FIN (or by
 * GO_STOP*), and waits until then, sending heartbeats: it ends with the job. */
enum { GO_LATE = -2, GO_STOP_LOST = -1, GO_STOP = 0, GO_RUN = 1 };
enum { SU_PENDING = 0, SU_READY, SU_FAILED, SU_LOST };
static double g_timeout = 60;
static int g_rank, g_size;
static pthread_t g_hb;
static int g_hb_on, g_hb_stop, g_kill_load;
static pthread_mutex_t g_hb_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_hb_cv = PTHREAD_COND_INITIALIZER;
static unsigned char *g_setup; /* rank 0, after cli_mpi_all_ok: [size] SU_* */

static const char *cmd_name(void) { return cli_cmd ? cli_cmd : "steer"; }

static void *hb_main(void *arg)
{
    (void)arg;
    if (g_kill_load) raise(SIGKILL); /* test hook: dies while the main thread loads */
    pthread_mutex_lock(&g_hb_mu);
    while (!g_hb_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&g_hb_cv, &g_hb_mu, &ts);
        if (g_hb_stop) break;
        pthread_mutex_unlock(&g_hb_mu);
        MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_HB, MPI_COMM_WORLD);
        pthread_mutex_lock(&g_hb_mu);
    }
    pthread_mutex_unlock(&g_hb_mu);
    return NULL;
}

static void hb_stop(void)
{
    if (!g_hb_on) return;
    pthread_mutex_lock(&g_hb_mu);
    g_hb_stop = 1;
    pthread_cond_broadcast(&g_hb_cv);
    pthread_mutex_unlock(&g_hb_mu);
    pthread_join(g_hb, NULL);
    g_hb_on = 0;
}

int cli_mpi_init(int *rank, int *size, double timeout_s)
{
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "steer: --mpi: MPI_Init_thread failed\n");
        return 1;
    }
    if (!inited && provided < MPI_THREAD_SERIALIZED) {
        fprintf(stderr, "steer: --mpi: the MPI library gives no MPI_THREAD_SERIALIZED support\n");
        MPI_Finalize();
        return 1;
    }
    /* Errors are status codes, not aborts: a lost peer must not take rank 0
     * down with it. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    g_rank = *rank;
    g_size = *size;
    g_timeout = timeout_s > 0 ? timeout_s : 60;
    /* test hook STEER_MPI_TEST_KILL=R:load: rank R dies while it loads */
    const char *kill = getenv("STEER_MPI_TEST_KILL");
    int kr;
    char kw[8];
    g_kill_load = kill && sscanf(kill, "%d:%7s", &kr, kw) == 2 && kr == g_rank && kr > 0 && strcmp(kw, "load") == 0;
    if (g_rank > 0) {
        g_hb_stop = 0;
        if (pthread_create(&g_hb, NULL, hb_main, NULL) == 0) g_hb_on = 1;
        /* else no heartbeats while loading: a load longer than the
         * timeout is then taken for a lost rank */
    }
    return 0;
}

void cli_mpi_finalize(void)
{
    hb_stop(); /* a command that returned before cli_mpi_all_ok */
    free(g_setup);
    g_setup = NULL;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin && !g_skip_finalize) MPI_Finalize();
}

static void sleep_1ms(void)
{
    struct timespec ts = {0, 1000000L};
    nanosleep(&ts, NULL);
}

/* Rank > 0: READY, then GO (or, having failed, GO or the pool's FIN). */
static int worker_ready(int ok)
{
    int mine = ok ? 1 : 0;
    if (MPI_Send(&mine, 1, MPI_INT, 0, TAG_READY, MPI_COMM_WORLD) != MPI_SUCCESS) return 0;
    double last = now_s();
    for (;;) {
        int f = 0;
        MPI_Status st;
        if (MPI_Iprobe(0, TAG_GO, MPI_COMM_WORLD, &f, &st) != MPI_SUCCESS) return 0;
        if (f) {
            int go = GO_STOP;
            MPI_Recv(&go, 1, MPI_INT, 0, TAG_GO, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            if (go < 0) g_skip_finalize = 1;
            if (go == GO_LATE)
                fprintf(stderr,
                        "steer %s: rank %d: rank 0 took this rank for lost during the set-up (silent for %.0f s): it "
                        "computes nothing\n",
                        cmd_name(), g_rank, g_timeout);
            return ok && go == GO_RUN;
        }
        if (!ok) { /* failed: wait for the end of the others' run */
            if (MPI_Iprobe(0, TAG_FIN, MPI_COMM_WORLD, &f, &st) != MPI_SUCCESS) return 0;
            if (f) {
                int lost_any = 0;
                MPI_Recv(&lost_any, 1, MPI_INT, 0, TAG_FIN, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                if (lost_any) g_skip_finalize = 1;
                return 0;
            }
        }
        const double t = now_s();
        if (t - last >= 1.0) {
            MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_HB, MPI_COMM_WORLD);
            last = t;
        }
        sleep_1ms();
    }
}

/* Rank 0: every other rank ready, failed or lost; then GO. */
static int rank0_ready(int ok)
{
    unsigned char *su = calloc((size_t)g_size, 1);
    double *heard = calloc((size_t)g_size, sizeof *heard);
    if (!su || !heard) cli_mpi_die(cmd_name(), "out of memory");
    const double t0 = now_s();
    for (int r = 1; r < g_size; r++) heard[r] = t0;
    int pending = g_size - 1, lost = 0;
    while (pending > 0) {
        int f = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_READY, MPI_COMM_WORLD, &f, &st) == MPI_SUCCESS && f) {
            int v = 0;
            const int r = st.MPI_SOURCE;
            MPI_Recv(&v, 1, MPI_INT, r, TAG_READY, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            heard[r] = now_s();
            if (su[r] == SU_PENDING) {
                su[r] = v ? SU_READY : SU_FAILED;
                pending--;
                if (!v && ok)
                    fprintf(stderr,
                            "steer %s: rank %d failed during its set-up (its own message says why): it computes "
                            "nothing; the other ranks share the items\n",
                            cmd_name(), r);
            }
            continue;
        }
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_HB, MPI_COMM_WORLD, &f, &st) == MPI_SUCCESS && f) {
            MPI_Recv(NULL, 0, MPI_BYTE, st.MPI_SOURCE, TAG_HB, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            heard[st.MPI_SOURCE] = now_s();
            continue;
        }
        const double t = now_s();
        for (int r = 1; r < g_size; r++)
            if (su[r] == SU_PENDING && t - heard[r] > g_timeout) {
                su[r] = SU_LOST;
                pending--;
                lost++;
                fprintf(stderr, "steer %s: rank %d sent nothing for %.0f s during its set-up: lost, it computes nothing%s\n",
                        cmd_name(), r, g_timeout, ok ? "; the other ranks share the items" : "");
            }
        sleep_1ms();
    }
    free(heard);
    for (int r = 1; r < g_size; r++)
        if (su[r] == SU_READY || (su[r] == SU_FAILED && !ok)) {
            const int go = ok ? GO_RUN : lost ? GO_STOP_LOST : GO_STOP;
            MPI_Send(&go, 1, MPI_INT, r, TAG_GO, MPI_COMM_WORLD);
        }
    if (!ok) {
        if (lost) g_skip_finalize = 1;
        free(su);
        return 0;
    }
    free(g_setup);
    g_setup = su; /* for the pool: who takes part */
    return 1;
}

int cli_mpi_all_ok(int ok)
{
    hb_stop();
    if (g_size <= 1) return ok != 0;
    return g_rank > 0 ? worker_ready(ok) : rank0_ready(ok);
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
            } else if (tag == TAG_READY && lost) {
                /* taken for lost during the set-up, and only slow: stop it
                 * (sent without waiting: the static buffer outlives us) */
                static const int go_late = GO_LATE;
                MPI_Request q;
                if (MPI_Isend(&go_late, 1, MPI_INT, src, TAG_GO, MPI_COMM_WORLD, &q) == MPI_SUCCESS)
                    MPI_Request_free(&q);
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
            if (p->wstate[r] != W_ACTIVE && p->wstate[r] != W_IDLE) continue;
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
            open += p->wstate[r] == W_ACTIVE;
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
    int lost_any = res->n_lost > 0 || p->setup_lost;
    for (int r = 1; r < p->size; r++)
        if (p->wstate[r] == W_BYE || p->wstate[r] == W_FAILED || p->wstate[r] == W_IDLE || p->late[r]) {
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
        /* ranks out since the set-up (cli_mpi_all_ok): no part in the run */
        for (int r = 1; r < p.size && g_setup && g_size == p.size; r++) {
            if (g_setup[r] != SU_FAILED && g_setup[r] != SU_LOST) continue;
            p.wstate[r] = g_setup[r] == SU_FAILED ? W_IDLE : W_LOST;
            p.setup_lost |= g_setup[r] == SU_LOST;
            p.asked[r] = 1;
            p.first_open--;
            const size_t k = strlen(res->setup_out);
            snprintf(res->setup_out + k, sizeof res->setup_out - k, "%s%d (%s)", res->n_setup_out ? ", " : "", r,
                     g_setup[r] == SU_FAILED ? "failed" : "lost");
            res->n_setup_out++;
        }
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

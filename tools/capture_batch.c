/* capture_batch.c — `steer capture --prompts FILE | --data FORMAT:FILE`: many
 * prompts, run `--batch` at a time as separate sequences of one forward pass,
 * into ONE safetensors file: a tensor <site>.<layer> per chosen (site, layer)
 * of shape [N, T_max, width] (--positions all; rows past a prompt's length
 * are zero), or [N, width] (--positions last: the prompt's last position;
 * mean: the mean over its positions 0..len-1, BOS included, summed in double
 * in position order), plus "lengths" [N] I32 and "tokens" [N, T_max] I32
 * (padded with -1). The rows are bit for bit those of a single-prompt
 * capture of the same prompt (the forward pass is batch-invariant).
 * One hook, added after the steering options, copies the rows of every
 * sequence of a batch to the batch's buffer; each batch then becomes a
 * record (its rows, site by site and layer by layer) that is put into the
 * file's tensors at its prompts' places. With --mpi (docs/SCALING.md) the
 * batches are the items the ranks share and rank 0 puts every record, so
 * the file is byte for byte the one-process file (but for "command"). */
#include "cli.h"
#include "capture_batch.h"
#include "mpi/mpi_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { POS_ALL = 0, POS_LAST, POS_MEAN };

typedef struct {
    const steer_model *m;
    const capture_batch_args *a;
    int n_layer, T_max, mode, n_sel, rows;
    int want[STEER_SITE_COUNT];        /* 1: a chosen site                   */
    unsigned char *mask;               /* [n_layer]                          */
    int *lidx;                         /* [n_layer] chosen layer → 0..n_sel-1 */
    float *buf[STEER_SITE_COUNT];      /* collect: per site [n_sel][N][rows][w] */
    float *bb[STEER_SITE_COUNT];       /* one batch: per site [n_sel][B][rows][w] */
    double *acc[STEER_SITE_COUNT];     /* mean: [n_sel][B][w]                */
    int width[STEER_SITE_COUNT];
    int N, base;                       /* prompts; first prompt of this batch */
    int **toks;                        /* [N] each [len]                     */
    const int *len;                    /* [N]                                */
    int batch;                         /* B                                  */
    steer_ctx *c;
    int *b_tok, *b_pos, *b_seq;        /* [B·T_max]                          */
    int8_t *b_want;
    int progress, n_put;               /* collect: prompts put               */
    double t0, last_print;
} bstate;

static int b_wants(void *ud, steer_site site, int layer)
{
    const bstate *s = ud;
    return s->want[site] && s->mask[layer];
}

static int b_apply(void *ud, steer_site site, int layer, float *h, const steer_hook_batch *b)
{
    bstate *s = ud;
    const int w = s->width[site];
    layer = s->lidx[layer];
    for (int i = 0; i < b->n; i++) {
        const int seq = b->seq[i], p = b->pos[i];
        const float *x = h + (size_t)i * w;
        if (s->mode == POS_ALL) {
            float *dst = s->bb[site] + (((size_t)layer * s->batch + seq) * s->T_max + p) * w;
            memcpy(dst, x, (size_t)w * sizeof *x);
        } else if (s->mode == POS_LAST) {
            if (p == s->len[s->base + seq] - 1)
                memcpy(s->bb[site] + ((size_t)layer * s->batch + seq) * w, x, (size_t)w * sizeof *x);
        } else {
            double *acc = s->acc[site] + ((size_t)layer * s->batch + seq) * w;
            for (int j = 0; j < w; j++) acc[j] += x[j];
        }
    }
    return STEER_OK;
}

/* Batch k: prompts k·B … k·B + nb − 1. */
static int batch_count(const bstate *st, int k) { return st->N - k * st->batch < st->batch ? st->N - k * st->batch : st->batch; }

/* The record of batch k: per chosen site, per chosen layer, nb·rows·w floats. */
static size_t record_size(const bstate *st, int k)
{
    size_t w = 0;
    for (int s = 0; s < st->a->n_sites; s++) w += (size_t)st->width[st->a->sites[s]];
    return (size_t)batch_count(st, k) * st->rows * st->n_sel * w * sizeof(float);
}

/* Runs batch k (one forward pass of its prompts as sequences) into rec. */
static int run_batch(bstate *st, int k, float *rec)
{
    const capture_batch_args *a = st->a;
    const int i0 = k * st->batch, nb = batch_count(st, k), B = st->batch;
    int n = 0;
    steer_ctx_clear(st->c, -1);
    for (int s = 0; s < nb; s++) {
        steer_ctx_set_prompt_len(st->c, s, st->len[i0 + s]);
        for (int t = 0; t < st->len[i0 + s]; t++, n++) {
            st->b_tok[n] = st->toks[i0 + s][t];
            st->b_pos[n] = t;
            st->b_seq[n] = s;
        }
    }
    st->base = i0;
    for (int s = 0; s < a->n_sites; s++) {
        const steer_site site = a->sites[s];
        if (st->mode == POS_ALL) /* rows past a prompt's length stay zero */
            memset(st->bb[site], 0, (size_t)st->n_sel * B * st->T_max * st->width[site] * sizeof(float));
        if (st->mode == POS_MEAN) memset(st->acc[site], 0, (size_t)st->n_sel * B * st->width[site] * sizeof(double));
    }
    /* one logit row is enough for the pass (no logits are used) */
    st->b_want[0] = 1;
    steer_batch bt = {.n = n, .tokens = st->b_tok, .pos = st->b_pos, .seq = st->b_seq, .logits = st->b_want};
    if (steer_forward(st->c, &bt) != STEER_OK) return -1;
    if (st->mode == POS_MEAN)
        for (int si = 0; si < a->n_sites; si++) {
            const steer_site site = a->sites[si];
            const int wd = st->width[site];
            for (int l = 0; l < st->n_sel; l++)
                for (int s = 0; s < nb; s++) {
                    const double *acc = st->acc[site] + ((size_t)l * B + s) * wd;
                    float *dst = st->bb[site] + ((size_t)l * B + s) * wd;
                    for (int j = 0; j < wd; j++) dst[j] = (float)(acc[j] / st->len[i0 + s]);
                }
        }
    for (int si = 0; si < a->n_sites; si++) {
        const steer_site site = a->sites[si];
        const size_t piece = (size_t)nb * st->rows * st->width[site];
        for (int l = 0; l < st->n_sel; l++, rec += piece)
            memcpy(rec, st->bb[site] + (size_t)l * B * st->rows * st->width[site], piece * sizeof(float));
    }
    return 0;
}

/* Copies batch k's record to its prompts' rows of the file's tensors. */
static void put_batch(bstate *st, int k, const float *rec)
{
    const capture_batch_args *a = st->a;
    const int i0 = k * st->batch, nb = batch_count(st, k);
    for (int si = 0; si < a->n_sites; si++) {
        const steer_site site = a->sites[si];
        const size_t piece = (size_t)nb * st->rows * st->width[site];
        for (int l = 0; l < st->n_sel; l++, rec += piece)
            memcpy(st->buf[site] + ((size_t)l * st->N + i0) * st->rows * st->width[site], rec, piece * sizeof(float));
    }
    st->n_put += nb;
    const double now = cli_now();
    const int progress = st->progress, done_n = st->n_put, N = st->N;
    if (progress && (done_n == N || now - st->last_print >= (progress == 1 ? 0.2 : 5.0))) {
        st->last_print = now;
        double el = now - st->t0;
        fprintf(stderr, "%scapture: %d/%d prompts, %.1f s, ~%.0f s left%s", progress == 1 ? "\r" : "", done_n, N, el,
                el / done_n * (N - done_n), progress == 1 ? (done_n == N ? "\n" : "   ") : "\n");
        fflush(stderr);
    }
}

#ifdef STEER_HAVE_MPI
/* ---------------------------------------------------------------- --mpi: batches over the ranks */
typedef struct {
    bstate *st;
    float *rec;
} cb_mpi;

static int cb_compute(void *ud, mpi_pool *pool)
{
    cb_mpi *m = ud;
    for (;;) {
        const int k = mpi_pool_next(pool);
        if (k < 0) return 0;
        if (run_batch(m->st, k, m->rec)) return -1;
        const int rc = mpi_pool_put(pool, k, m->rec, record_size(m->st, k));
        if (rc < 0) return rc;
    }
}

static int cb_consume(void *ud, int k, const void *rec, size_t n, char *msg, size_t msg_size)
{
    cb_mpi *m = ud;
    if (n != record_size(m->st, k)) {
        snprintf(msg, msg_size, "--mpi: batch %d: a record of %zu bytes, want %zu", k, n, record_size(m->st, k));
        return STEER_EFORMAT;
    }
    put_batch(m->st, k, rec);
    return 0;
}

static void cb_name_item(void *ud, int k, char *buf, size_t n)
{
    const bstate *st = ((cb_mpi *)ud)->st;
    const int i0 = k * st->batch, nb = batch_count(st, k);
    if (nb == 1) snprintf(buf, n, "prompt %d", i0 + 1);
    else snprintf(buf, n, "prompts %d-%d", i0 + 1, i0 + nb);
}
#endif

/* The prompts: non-empty lines of a file, or a dataset's prompts. */
static int read_prompts(const capture_batch_args *a, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    if (a->data_spec) {
        steer_data_params dp = steer_data_default_params();
        steer_dataset *d = NULL;
        if (steer_data_load(a->data_spec, &dp, &d) != STEER_OK) return cli_lib_error();
        int k = steer_data_count(d);
        char **v = calloc((size_t)k, sizeof *v);
        int rc = v ? 0 : cli_error("out of memory");
        for (int i = 0; i < k && !rc; i++)
            if (!(v[i] = strdup(steer_data_at(d, i)->prompt))) rc = cli_error("out of memory");
        steer_data_free(d);
        if (rc) {
            for (int i = 0; v && i < k; i++) free(v[i]);
            free(v);
            return rc;
        }
        *out = v;
        *n = k;
        return 0;
    }
    FILE *f = fopen(a->prompts_file, "rb");
    if (!f) return cli_error("%s: cannot open", a->prompts_file);
    char **v = NULL, *line = NULL;
    size_t lcap = 0;
    int k = 0, cap = 0, rc = 0;
    ssize_t got;
    while ((got = getline(&line, &lcap, f)) >= 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
        if (got == 0) continue;
        if (k == cap) {
            cap = cap ? cap * 2 : 256;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                rc = cli_error("out of memory");
                break;
            }
            v = nv;
        }
        if (!(v[k] = strdup(line))) {
            rc = cli_error("out of memory");
            break;
        }
        k++;
    }
    free(line);
    fclose(f);
    if (!rc && k == 0) rc = cli_error("%s: no prompts (one prompt per line; empty lines are skipped)", a->prompts_file);
    if (rc) {
        for (int i = 0; i < k; i++) free(v[i]);
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

int capture_batch(const capture_batch_args *a)
{
    int mode;
    if (!strcmp(a->positions, "all")) mode = POS_ALL;
    else if (!strcmp(a->positions, "last")) mode = POS_LAST;
    else if (!strcmp(a->positions, "mean")) mode = POS_MEAN;
    else return cli_usage("--positions must be all, last or mean, got '%s'", a->positions);
    if (a->batch < 0) return cli_usage("--batch must be >= 0, got %d", a->batch);
    if (a->n_ctx < 0) return cli_usage("--ctx must be >= 0, got %d", a->n_ctx);
    int rank, n_ranks, rc;
    if ((rc = cli_mpi_start(a->mpi, a->mpi_timeout, &rank, &n_ranks)) >= 0) return rc;
    const int quiet = a->quiet || rank != 0; /* rank 0 speaks for the run */
    const int collect = rank == 0;           /* rank 0 puts every batch and writes the file */

    steer_model *m = NULL, *base = NULL;
    steer_adapter *ad = NULL;
    char **prompts = NULL;
    int N = 0, **toks = NULL, *len = NULL, *tok_all = NULL;
    unsigned char *mask = NULL;
    steer_tensors_writer *w = NULL;
    char(*names)[48] = NULL;
    float *rec = NULL;
    bstate st;
    memset(&st, 0, sizeof st);
    st.a = a;
    int n_layer = 0, T_max = 0, B = 0, n_batches = 0;
    long total_tok = 0;
    char err[512];

    if ((rc = read_prompts(a, &prompts, &N)) != 0) goto setup_done;
    if ((rc = cli_load_model(a->model, a->tokenizer, &base)) != 0) goto setup_done;
    m = base;
    if (a->adapter) { /* LoRA: the model with the LoRA merged; steering methods: a hook (added below) */
        if (steer_adapter_load(base, a->adapter, &ad) != STEER_OK) {
            rc = cli_lib_error_at("--adapter");
            goto setup_done;
        }
        m = steer_adapter_model(ad);
    }
    n_layer = steer_model_get_config(m)->n_layer;
    if (!(toks = calloc((size_t)N, sizeof *toks)) || !(len = calloc((size_t)N, sizeof *len)) ||
        !(mask = malloc((size_t)n_layer))) {
        rc = cli_error("out of memory");
        goto setup_done;
    }
    if (cli_parse_layers(a->layers_arg, n_layer, mask, err, sizeof err)) {
        rc = cli_error("--layers: %s", err);
        goto setup_done;
    }
    for (int i = 0; i < N; i++) {
        if ((rc = cli_prompt_tokens(m, prompts[i], NULL, a->chat, &toks[i], &len[i])) != 0) goto setup_done;
        if (len[i] > T_max) T_max = len[i];
        total_tok += len[i];
    }
    B = a->batch ? a->batch : 32;
    if (B > N) B = N;
    n_batches = B > 0 ? (N + B - 1) / B : 0;
    /* --ctx 0: the model's training context, but no more positions per
     * sequence than the longest prompt (the KV cache holds B of them) */
    const int n_train = steer_model_get_config(m)->n_ctx_train;
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = a->n_ctx ? a->n_ctx : (n_train > 0 && T_max > n_train ? n_train : T_max);
    cp.n_seq = B;
    cp.n_threads = a->n_threads;
    if (steer_ctx_new(m, &cp, &st.c) != STEER_OK) {
        rc = cli_lib_error();
        goto setup_done;
    }
    for (int i = 0; i < N; i++)
        if (len[i] > steer_ctx_n_ctx(st.c)) {
            rc = cli_error("prompt %d is %d tokens but the context holds %d positions (see --ctx)", i + 1, len[i],
                           steer_ctx_n_ctx(st.c));
            goto setup_done;
        }
    if (ad && steer_adapter_install(ad, st.c) != STEER_OK) {
        rc = cli_lib_error_at("--adapter");
        goto setup_done;
    }
    if ((rc = cli_add_steering(st.c, m, a->steers, a->cvs, NULL, a->ablates)) != 0) goto setup_done;

    /* Buffers: one batch's per site [n_sel][B][rows][w]; the file's (rank 0)
     * per site [n_sel][N][rows][w]; chosen layers only. */
    const int rows = mode == POS_ALL ? T_max : 1;
    if (!(st.lidx = malloc((size_t)n_layer * sizeof *st.lidx))) {
        rc = cli_error("out of memory");
        goto setup_done;
    }
    for (int l = 0; l < n_layer; l++) st.lidx[l] = mask[l] ? st.n_sel++ : -1;
    const int n_sel = st.n_sel;
    st.m = m;
    st.n_layer = n_layer;
    st.T_max = T_max;
    st.mode = mode;
    st.rows = rows;
    st.mask = mask;
    st.N = N;
    st.toks = toks;
    st.len = len;
    st.batch = B;
    size_t bytes = 0;
    for (int s = 0; s < a->n_sites; s++) {
        steer_site site = a->sites[s];
        st.want[site] = 1;
        st.width[site] = steer_model_site_width(m, site);
        bytes += (size_t)n_sel * N * rows * st.width[site] * sizeof(float);
    }
    if (!quiet && bytes > ((size_t)1 << 30))
        fprintf(stderr, "capture: holding %.1f GiB of activations in memory (--positions last or mean hold less)\n",
                (double)bytes / (1 << 30));
    for (int s = 0; s < a->n_sites; s++) {
        steer_site site = a->sites[s];
        if (collect) st.buf[site] = calloc((size_t)n_sel * N * rows * st.width[site], sizeof(float));
        st.bb[site] = calloc((size_t)n_sel * B * rows * st.width[site], sizeof(float));
        if (mode == POS_MEAN) st.acc[site] = calloc((size_t)n_sel * B * st.width[site], sizeof(double));
        if ((collect && !st.buf[site]) || !st.bb[site] || (mode == POS_MEAN && !st.acc[site])) {
            rc = cli_error("out of memory (%d prompts x %d positions x %d layers of %s)", N, rows, n_sel,
                           steer_site_name(site));
            goto setup_done;
        }
    }
    steer_hook hk = {.wants = b_wants, .apply = b_apply, .ud = &st};
    if (steer_ctx_add_hook(st.c, &hk) < 0) {
        rc = cli_lib_error();
        goto setup_done;
    }
    size_t cap_tok = (size_t)B * T_max;
    st.b_tok = malloc(cap_tok * sizeof *st.b_tok);
    st.b_pos = malloc(cap_tok * sizeof *st.b_pos);
    st.b_seq = malloc(cap_tok * sizeof *st.b_seq);
    st.b_want = calloc(cap_tok, 1);
    rec = malloc(record_size(&st, 0) > 0 ? record_size(&st, 0) : 1); /* batch 0 is the largest */
    if (!st.b_tok || !st.b_pos || !st.b_seq || !st.b_want || !rec) {
        rc = cli_error("out of memory");
        goto setup_done;
    }
setup_done:
#ifdef STEER_HAVE_MPI
    if (a->mpi && !cli_mpi_all_ok(rc == 0)) { /* the failing rank printed why */
        if (!rc) rc = 1;
        goto done;
    }
#endif
    if (rc) goto done;
    st.progress = quiet ? 0 : isatty(2) ? 1 : 2;
    st.t0 = st.last_print = cli_now();
    if (a->mpi) {
#ifdef STEER_HAVE_MPI
        if (!quiet && n_ranks > 1)
            fprintf(stderr, "steer capture: %d ranks share %d batch(es) of at most %d prompts\n", n_ranks, n_batches, B);
        cb_mpi cm = {.st = &st, .rec = rec};
        int *todo = NULL;
        if (rank == 0) {
            if (!(todo = malloc((size_t)n_batches * sizeof *todo))) cli_mpi_die("capture", "out of memory");
            for (int k = 0; k < n_batches; k++) todo[k] = k;
        }
        mpi_pool_params pp = {.what = "capture", .n_data = n_batches, .todo = todo, .n_todo = rank == 0 ? n_batches : 0,
                              .timeout_s = a->mpi_timeout, .consume = cb_consume, .consume_ud = &cm,
                              .compute = cb_compute, .compute_ud = &cm};
        mpi_share_report rep = {.name_item = cb_name_item, .ud = &cm, .verbose = !quiet};
        rc = cli_mpi_share(&pp, &rep);
        free(todo);
        if (rc || rank != 0) goto done;
#endif
    } else
        for (int k = 0; k < n_batches; k++) {
            if (run_batch(&st, k, rec)) {
                rc = cli_lib_error();
                goto done;
            }
            put_batch(&st, k, rec);
        }

    /* The file: tensors of the chosen layers, lengths, tokens, metadata. */
    if (!(tok_all = malloc((size_t)N * T_max * sizeof *tok_all)) ||
        !(names = calloc((size_t)a->n_sites * n_layer, sizeof *names))) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < N; i++)
        for (int t = 0; t < T_max; t++) tok_all[(size_t)i * T_max + t] = t < len[i] ? toks[i][t] : -1;
    if (steer_tensors_writer_new(&w) != STEER_OK) {
        rc = cli_lib_error();
        goto done;
    }
    for (int s = 0; s < a->n_sites && !rc; s++) {
        steer_site site = a->sites[s];
        for (int l = 0; l < n_layer && !rc; l++) {
            if (!mask[l]) continue;
            char *name = names[s * n_layer + l];
            snprintf(name, sizeof names[0], "%s.%d", steer_site_name(site), l);
            int64_t shape[3] = {N, T_max, st.width[site]};
            int64_t shape2[2] = {N, st.width[site]};
            const float *data = st.buf[site] + (size_t)st.lidx[l] * N * st.rows * st.width[site];
            if (mode == POS_ALL ? steer_tensors_writer_add(w, name, STEER_DTYPE_F32, 3, shape, data)
                                : steer_tensors_writer_add(w, name, STEER_DTYPE_F32, 2, shape2, data))
                rc = cli_lib_error();
        }
    }
    int64_t lshape[1] = {N}, tshape[2] = {N, T_max};
    if (!rc && (steer_tensors_writer_add(w, "lengths", STEER_DTYPE_I32, 1, lshape, len) ||
                steer_tensors_writer_add(w, "tokens", STEER_DTYPE_I32, 2, tshape, tok_all)))
        rc = cli_lib_error();
    if (!rc) {
        char site_list[256] = "", nbuf[32];
        for (int s = 0; s < a->n_sites; s++)
            snprintf(site_list + strlen(site_list), sizeof site_list - strlen(site_list), "%s%s", s ? "," : "",
                     steer_site_name(a->sites[s]));
        snprintf(nbuf, sizeof nbuf, "%d", N);
        if (steer_tensors_writer_meta(w, "format_version", "1") || steer_tensors_writer_meta(w, "method", "capture") ||
            steer_tensors_writer_meta(w, "model", a->model) || steer_tensors_writer_meta(w, "sites", site_list) ||
            steer_tensors_writer_meta(w, "layers", a->layers_arg) ||
            steer_tensors_writer_meta(w, "positions", a->positions) || steer_tensors_writer_meta(w, "n_prompts", nbuf) ||
            steer_tensors_writer_meta(w, "prompts", a->data_spec ? a->data_spec : a->prompts_file) ||
            steer_tensors_writer_meta(w, "command", cli_cmdline))
            rc = cli_lib_error();
        for (int i = 0; !rc && i < a->steers->n; i++) {
            char key[32];
            snprintf(key, sizeof key, "steer.%d", i);
            if (steer_tensors_writer_meta(w, key, a->steers->items[i])) rc = cli_lib_error();
        }
    }
    if (!rc && steer_tensors_writer_write(w, a->out) != STEER_OK) rc = cli_lib_error();
    if (!rc && !quiet)
        fprintf(stderr, "capture: %d prompts (%ld tokens, longest %d) in %.2f s -> %s\n", N, total_tok, T_max,
                cli_now() - st.t0, a->out);
done:
    if (w) steer_tensors_writer_free(w);
    free(names);
    free(tok_all);
    free(rec);
    free(st.b_tok);
    free(st.b_pos);
    free(st.b_seq);
    free(st.b_want);
    for (int s = 0; s < STEER_SITE_COUNT; s++) {
        free(st.buf[s]);
        free(st.bb[s]);
        free(st.acc[s]);
    }
    if (st.c) steer_ctx_free(st.c);
    steer_adapter_free(ad);
    if (base) steer_model_free(base);
    for (int i = 0; toks && i < N; i++) free(toks[i]);
    free(toks);
    free(len);
    free(mask);
    free(st.lidx);
    for (int i = 0; prompts && i < N; i++) free(prompts[i]);
    free(prompts);
#ifdef STEER_HAVE_MPI
    if (a->mpi) cli_mpi_finalize();
#endif
    return rc;
}

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
 * sequence to its item's place. */
#include "cli.h"
#include "capture_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { POS_ALL = 0, POS_LAST, POS_MEAN };

typedef struct {
    const steer_model *m;
    int n_layer, T_max, mode;
    int want[STEER_SITE_COUNT];        /* 1: a chosen site                   */
    unsigned char *mask;               /* [n_layer]                          */
    int *lidx;                         /* [n_layer] chosen layer → 0..n_sel-1 */
    float *buf[STEER_SITE_COUNT];      /* per site: [n_sel][N][T_max or 1][w] */
    double *acc[STEER_SITE_COUNT];     /* mean: [n_sel][batch][w]            */
    int width[STEER_SITE_COUNT];
    int N, base;                       /* items; first item of this batch    */
    const int *len;                    /* [N]                                */
    int batch;
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
        const int item = s->base + b->seq[i], p = b->pos[i];
        const float *x = h + (size_t)i * w;
        if (s->mode == POS_ALL) {
            float *dst = s->buf[site] + (((size_t)layer * s->N + item) * s->T_max + p) * w;
            memcpy(dst, x, (size_t)w * sizeof *x);
        } else if (s->mode == POS_LAST) {
            if (p == s->len[item] - 1)
                memcpy(s->buf[site] + ((size_t)layer * s->N + item) * w, x, (size_t)w * sizeof *x);
        } else {
            double *acc = s->acc[site] + ((size_t)layer * s->batch + b->seq[i]) * w;
            for (int j = 0; j < w; j++) acc[j] += x[j];
        }
    }
    return STEER_OK;
}

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

    steer_model *m = NULL, *base = NULL;
    steer_adapter *ad = NULL;
    steer_ctx *c = NULL;
    char **prompts = NULL;
    int N = 0, rc, **toks = NULL, *len = NULL, *tok_all = NULL;
    unsigned char *mask = NULL;
    steer_tensors_writer *w = NULL;
    char(*names)[48] = NULL;
    bstate st;
    memset(&st, 0, sizeof st);
    int *b_tok = NULL, *b_pos = NULL, *b_seq = NULL;
    int8_t *b_want = NULL;

    if ((rc = read_prompts(a, &prompts, &N)) != 0) return rc;
    if ((rc = cli_load_model(a->model, a->tokenizer, &base)) != 0) goto done;
    m = base;
    if (a->adapter) { /* LoRA: the model with the LoRA merged; steering methods: a hook (added below) */
        if (steer_adapter_load(base, a->adapter, &ad) != STEER_OK) {
            rc = cli_lib_error_at("--adapter");
            goto done;
        }
        m = steer_adapter_model(ad);
    }
    const int n_layer = steer_model_get_config(m)->n_layer;
    if (!(toks = calloc((size_t)N, sizeof *toks)) || !(len = calloc((size_t)N, sizeof *len)) ||
        !(mask = malloc((size_t)n_layer))) {
        rc = cli_error("out of memory");
        goto done;
    }
    char err[512];
    if (cli_parse_layers(a->layers_arg, n_layer, mask, err, sizeof err)) {
        rc = cli_error("--layers: %s", err);
        goto done;
    }
    int T_max = 0;
    long total_tok = 0;
    for (int i = 0; i < N; i++) {
        if ((rc = cli_prompt_tokens(m, prompts[i], NULL, a->chat, &toks[i], &len[i])) != 0) goto done;
        if (len[i] > T_max) T_max = len[i];
        total_tok += len[i];
    }
    int B = a->batch ? a->batch : 32;
    if (B > N) B = N;
    /* --ctx 0: the model's training context, but no more positions per
     * sequence than the longest prompt (the KV cache holds B of them) */
    const int n_train = steer_model_get_config(m)->n_ctx_train;
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = a->n_ctx ? a->n_ctx : (n_train > 0 && T_max > n_train ? n_train : T_max);
    cp.n_seq = B;
    cp.n_threads = a->n_threads;
    if (a->n_ctx < 0) {
        rc = cli_usage("--ctx must be >= 0, got %d", a->n_ctx);
        goto done;
    }
    if (steer_ctx_new(m, &cp, &c) != STEER_OK) {
        rc = cli_lib_error();
        goto done;
    }
    for (int i = 0; i < N; i++)
        if (len[i] > steer_ctx_n_ctx(c)) {
            rc = cli_error("prompt %d is %d tokens but the context holds %d positions (see --ctx)", i + 1, len[i],
                           steer_ctx_n_ctx(c));
            goto done;
        }
    if (ad && steer_adapter_install(ad, c) != STEER_OK) {
        rc = cli_lib_error_at("--adapter");
        goto done;
    }
    if ((rc = cli_add_steering(c, m, a->steers, a->cvs, NULL, a->ablates)) != 0) goto done;

    /* Buffers: per site [n_sel][N][rows][w], chosen layers only. */
    const int rows = mode == POS_ALL ? T_max : 1;
    int n_sel = 0;
    if (!(st.lidx = malloc((size_t)n_layer * sizeof *st.lidx))) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (int l = 0; l < n_layer; l++) st.lidx[l] = mask[l] ? n_sel++ : -1;
    st.m = m;
    st.n_layer = n_layer;
    st.T_max = T_max;
    st.mode = mode;
    st.mask = mask;
    st.N = N;
    st.len = len;
    st.batch = B;
    size_t bytes = 0;
    for (int s = 0; s < a->n_sites; s++) {
        steer_site site = a->sites[s];
        st.want[site] = 1;
        st.width[site] = steer_model_site_width(m, site);
        bytes += (size_t)n_sel * N * rows * st.width[site] * sizeof(float);
    }
    if (!a->quiet && bytes > ((size_t)1 << 30))
        fprintf(stderr, "capture: holding %.1f GiB of activations in memory (--positions last or mean hold less)\n",
                (double)bytes / (1 << 30));
    for (int s = 0; s < a->n_sites; s++) {
        steer_site site = a->sites[s];
        st.buf[site] = calloc((size_t)n_sel * N * rows * st.width[site], sizeof(float));
        if (mode == POS_MEAN) st.acc[site] = calloc((size_t)n_sel * B * st.width[site], sizeof(double));
        if (!st.buf[site] || (mode == POS_MEAN && !st.acc[site])) {
            rc = cli_error("out of memory (%d prompts x %d positions x %d layers of %s)", N, rows, n_sel,
                           steer_site_name(site));
            goto done;
        }
    }
    steer_hook hk = {.wants = b_wants, .apply = b_apply, .ud = &st};
    if (steer_ctx_add_hook(c, &hk) < 0) {
        rc = cli_lib_error();
        goto done;
    }
    size_t cap_tok = (size_t)B * T_max;
    b_tok = malloc(cap_tok * sizeof *b_tok);
    b_pos = malloc(cap_tok * sizeof *b_pos);
    b_seq = malloc(cap_tok * sizeof *b_seq);
    b_want = calloc(cap_tok, 1);
    if (!b_tok || !b_pos || !b_seq || !b_want) {
        rc = cli_error("out of memory");
        goto done;
    }
    const int progress = a->quiet ? 0 : isatty(2) ? 1 : 2;
    const double t0 = cli_now();
    double last_print = t0;
    for (int i0 = 0; i0 < N; i0 += B) {
        const int nb = N - i0 < B ? N - i0 : B;
        int n = 0;
        steer_ctx_clear(c, -1);
        for (int s = 0; s < nb; s++) {
            steer_ctx_set_prompt_len(c, s, len[i0 + s]);
            for (int t = 0; t < len[i0 + s]; t++, n++) {
                b_tok[n] = toks[i0 + s][t];
                b_pos[n] = t;
                b_seq[n] = s;
            }
        }
        st.base = i0;
        if (mode == POS_MEAN)
            for (int s = 0; s < a->n_sites; s++)
                memset(st.acc[a->sites[s]], 0, (size_t)n_sel * B * st.width[a->sites[s]] * sizeof(double));
        /* one logit row is enough for the pass (no logits are used) */
        b_want[0] = 1;
        steer_batch bt = {.n = n, .tokens = b_tok, .pos = b_pos, .seq = b_seq, .logits = b_want};
        if (steer_forward(c, &bt) != STEER_OK) {
            rc = cli_lib_error();
            goto done;
        }
        if (mode == POS_MEAN)
            for (int si = 0; si < a->n_sites; si++) {
                steer_site site = a->sites[si];
                const int wd = st.width[site];
                for (int l = 0; l < n_sel; l++) {
                    for (int s = 0; s < nb; s++) {
                        const double *acc = st.acc[site] + ((size_t)l * B + s) * wd;
                        float *dst = st.buf[site] + ((size_t)l * N + i0 + s) * wd;
                        for (int j = 0; j < wd; j++) dst[j] = (float)(acc[j] / len[i0 + s]);
                    }
                }
            }
        const double now = cli_now();
        const int done_n = i0 + nb;
        if (progress && (done_n == N || now - last_print >= (progress == 1 ? 0.2 : 5.0))) {
            last_print = now;
            double el = now - t0;
            fprintf(stderr, "%scapture: %d/%d prompts, %.1f s, ~%.0f s left%s", progress == 1 ? "\r" : "", done_n, N,
                    el, el / done_n * (N - done_n), progress == 1 ? (done_n == N ? "\n" : "   ") : "\n");
            fflush(stderr);
        }
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
            const float *data = st.buf[site] + (size_t)st.lidx[l] * N * rows * st.width[site];
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
    if (!rc && !a->quiet)
        fprintf(stderr, "capture: %d prompts (%ld tokens, longest %d) in %.2f s -> %s\n", N, total_tok, T_max,
                cli_now() - t0, a->out);
done:
    if (w) steer_tensors_writer_free(w);
    free(names);
    free(tok_all);
    free(b_tok);
    free(b_pos);
    free(b_seq);
    free(b_want);
    for (int s = 0; s < STEER_SITE_COUNT; s++) {
        free(st.buf[s]);
        free(st.acc[s]);
    }
    if (c) steer_ctx_free(c);
    steer_adapter_free(ad);
    if (base) steer_model_free(base);
    for (int i = 0; toks && i < N; i++) free(toks[i]);
    free(toks);
    free(len);
    free(mask);
    free(st.lidx);
    for (int i = 0; i < N; i++) free(prompts[i]);
    free(prompts);
    return rc;
}

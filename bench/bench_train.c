/*
 * bench_train.c — speed of a training step against the inference forward.
 *
 *   bench_train [--model PATH] [--random-only] [--batch B] [--seq T] [--runs R]
 *               [--methods full,lora,adapter] [--vocab V] [--layers L] [--cpu-time]
 *
 * Models: PATH (default models/stories260K/stories260K.bin) and a random
 * llama made with steer_make_model into a temporary directory: d_model 512,
 * d_ff 1376, 8 heads (8 KV heads, head_dim 64), 4 layers, vocab 32000
 * (--vocab, --layers), untied head, F32, n_ctx 256.
 *
 * A batch is B sequences of T tokens (default 4 × 64 = 256 tokens), BOS then
 * fixed pseudo-random ids, every position a completion-only target, so every
 * row is in the loss.
 *
 * train   one optimizer update of the training graph (src/train_model.h):
 *         zero the gradients, forward with the loss, backward, AdamW
 *         (tr_adamw_step), the method's constraints — for the methods full
 *         (every weight), lora (rank 8 on q, k, v, o, gate, up, down, every
 *         layer) and adapter (rank 8 SiLU at resid_post, every layer).
 * fwd     the training graph's forward alone (same batch, same method: the
 *         part of the update that inference also does, in training's layout
 *         and kernels).
 * infer   steer_forward on one context holding B sequences, all B·T tokens
 *         as one batch with logits for every row (what the training forward
 *         also computes), the cache cleared before each run (untimed).
 * adamw   the AdamW step and constraints inside `train` (median ms): the
 *         part of an update that grows with the trainable parameters alone.
 * tokens/s = B·T / time; ratio = train / infer.
 *
 * --cpu-time: every time is this process's CPU time instead of wall time
 * (for a shared machine, with OMP_NUM_THREADS=1).
 *
 * Each figure: one warm-up run, then the best and the median of R (default
 * 5) runs. `other` is the CPU time other processes used during the row, as a
 * share of all CPUs (bench_util.h): rows with more than a few percent are
 * not comparable.
 */
#include "steer_exp.h"
#include "model.h"
#include "train_model.h"
#include "train_optim.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"

/* The clock of every measurement: wall time, or with --cpu-time this
 * process's CPU time (all threads), which on a shared machine does not count
 * the time other processes hold the CPU — meaningful with one thread. */
static int use_cpu_time = 0;

static double clock_s(void)
{
    if (!use_cpu_time) return now_s();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *what, int rc)
{
    fprintf(stderr, "bench_train: %s failed (%d): %s\n", what, rc, steer_last_error());
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double best, median; /* seconds */
} timing;

static timing summarize(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    timing r = {t[0], n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2])};
    return r;
}

typedef struct {
    int B, T, runs;
    int *tokens, *targets, *pos, *seq; /* [B·T] */
} bench_cfg;

/* steer_forward of all B·T tokens as one batch (logits for every row). */
static timing bench_infer(steer_model *m, const bench_cfg *c)
{
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = c->T;
    cp.n_seq = c->B;
    steer_ctx *ctx = NULL;
    int rc = steer_ctx_new(m, &cp, &ctx);
    if (rc) die("steer_ctx_new", rc);
    steer_batch b = {.n = c->B * c->T, .tokens = c->tokens, .pos = c->pos, .seq = c->seq, .logits = NULL};
    double t[64];
    for (int r = -1; r < c->runs; r++) {
        steer_ctx_clear(ctx, -1);
        double t0 = clock_s();
        if ((rc = steer_forward(ctx, &b))) die("steer_forward", rc);
        if (r >= 0) t[r] = clock_s() - t0;
    }
    steer_ctx_free(ctx);
    return summarize(t, c->runs);
}

/* One training update and the forward alone, for a method. */
static void bench_method(steer_model *m, const bench_cfg *c, const char *method, timing *train, timing *fwd,
                         timing *adam, size_t *n_trainable, double *loss0, double *loss1)
{
    trm_spec s = trm_spec_default();
    s.B = c->B, s.T = c->T;
    int rc = trm_spec_method(&s, method);
    if (rc) die("trm_spec_method", rc);
    trm_f32 *t = NULL;
    if ((rc = trm_new_f32(m, &s, &t))) die("trm_new_f32", rc);
    const int ng = trm_n_tensors_f32(t);
    tr_group *groups = calloc((size_t)ng, sizeof *groups);
    for (int i = 0; i < ng; i++) {
        const trm_param *tp = trm_tensor_f32(t, i);
        groups[i] = tr_group_make(tp->name, trm_params_f32(t) + tp->offset, trm_grads_f32(t) + tp->offset, tp->numel);
    }
    tr_adamw_params ap = tr_adamw_default_params();
    tr_adamw *opt = NULL;
    if ((rc = tr_adamw_new(groups, ng, &ap, &opt))) die("tr_adamw_new", rc);
    trm_batch b = {.B = c->B, .T = c->T, .tokens = c->tokens, .lengths = NULL, .targets = c->targets};
    const double lr = strcmp(method, "full") == 0 ? 1e-4 : 1e-3;
    double tt[64], tf[64], ta[64];
    for (int r = -1; r < c->runs; r++) {
        double t0 = clock_s();
        trm_zero_grad_f32(t);
        if ((rc = trm_forward_f32(t, &b))) die("trm_forward_f32", rc);
        if (r == -1) *loss0 = trm_get_loss_f32(t).loss;
        if ((rc = trm_backward_f32(t))) die("trm_backward_f32", rc);
        double gn, t1 = clock_s();
        if ((rc = tr_adamw_step(opt, lr, &gn))) die("tr_adamw_step", rc);
        trm_constrain_f32(t);
        if (r >= 0) tt[r] = clock_s() - t0, ta[r] = clock_s() - t1;
    }
    for (int r = -1; r < c->runs; r++) {
        double t0 = clock_s();
        if ((rc = trm_forward_f32(t, &b))) die("trm_forward_f32", rc);
        if (r >= 0) tf[r] = clock_s() - t0;
    }
    *loss1 = trm_get_loss_f32(t).loss;
    *train = summarize(tt, c->runs);
    *fwd = summarize(tf, c->runs);
    *adam = summarize(ta, c->runs);
    *n_trainable = trm_numel_f32(t);
    tr_adamw_free(opt);
    free(groups);
    trm_free_f32(t);
}

static void bench_model(const char *label, steer_model *m, const bench_cfg *c, const char *const *methods, int n_methods)
{
    const steer_model_config *cfg = steer_model_get_config(m);
    const double ntok = (double)c->B * c->T;
    printf("\n== %s: d_model %d, d_ff %d, %d layers, %d/%d heads, vocab %d; batch %d x %d = %.0f tokens\n", label,
           cfg->d_model, cfg->d_ff, cfg->n_layer, cfg->n_head, cfg->n_kv_head, cfg->n_vocab, c->B, c->T, ntok);
    cpu_sample a = cpu_sample_now();
    timing inf = bench_infer(m, c);
    cpu_sample z = cpu_sample_now();
    printf("%-8s %10s %12s %10s %10s %10s %12s %9s %8s %7s  %s\n", "method", "trainable", "train tok/s", "(median)",
           "adamw ms", "fwd tok/s", "infer tok/s", "train/inf", "fwd/inf", "other",
           "loss before -> after the timed updates");
    printf("%-8s %10s %12s %10s %10s %10s %12.0f %9s %8s %6.1f%%  (infer median %.0f tok/s)\n", "(infer)", "-", "-",
           "-", "-", "-", ntok / inf.best, "-", "-", 100 * cpu_foreign(a, z), ntok / inf.median);
    fflush(stdout);
    for (int k = 0; k < n_methods; k++) {
        timing tr, fw, ad;
        size_t nt;
        double l0 = 0, l1 = 0;
        a = cpu_sample_now();
        bench_method(m, c, methods[k], &tr, &fw, &ad, &nt, &l0, &l1);
        z = cpu_sample_now();
        printf("%-8s %10zu %12.0f %10.0f %10.2f %10.0f %12.0f %9.3f %8.3f %6.1f%%  %.4f -> %.4f\n", methods[k], nt,
               ntok / tr.best, ntok / tr.median, 1e3 * ad.median, ntok / fw.best, ntok / inf.best, inf.best / tr.best,
               inf.best / fw.best, 100 * cpu_foreign(a, z), l0, l1);
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    const char *model = "models/stories260K/stories260K.bin", *methods_arg = "full,lora,adapter";
    int B = 4, T = 64, runs = 5, vocab = 32000, layers = 4, random_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--model") == 0 && v) model = v, i++;
        else if (strcmp(a, "--batch") == 0 && v) B = atoi(v), i++;
        else if (strcmp(a, "--seq") == 0 && v) T = atoi(v), i++;
        else if (strcmp(a, "--runs") == 0 && v) runs = atoi(v), i++;
        else if (strcmp(a, "--vocab") == 0 && v) vocab = atoi(v), i++;
        else if (strcmp(a, "--layers") == 0 && v) layers = atoi(v), i++;
        else if (strcmp(a, "--methods") == 0 && v) methods_arg = v, i++;
        else if (strcmp(a, "--random-only") == 0) random_only = 1;
        else if (strcmp(a, "--cpu-time") == 0) use_cpu_time = 1;
        else {
            fprintf(stderr,
                    "usage: bench_train [--model PATH] [--random-only] [--batch B] [--seq T] [--runs R]\n"
                    "                   [--methods full,lora,adapter] [--vocab V] [--layers L] [--cpu-time]\n"
                    "example: OMP_NUM_THREADS=2 bench_train --model models/stories260K/stories260K.bin\n");
            return 2;
        }
    }
    if (B < 1 || T < 2 || runs < 1 || runs > 64 || vocab < 259 || layers < 1) {
        fprintf(stderr, "bench_train: --batch >= 1, --seq >= 2, --runs 1..64, --vocab >= 259, --layers >= 1\n");
        return 2;
    }
    const char *methods[8];
    int n_methods = 0;
    char mbuf[256];
    snprintf(mbuf, sizeof mbuf, "%s", methods_arg);
    for (char *tok = strtok(mbuf, ","); tok && n_methods < 8; tok = strtok(NULL, ",")) methods[n_methods++] = tok;

    bench_cfg c = {.B = B, .T = T, .runs = runs};
    const size_t N = (size_t)B * T;
    c.tokens = malloc(N * sizeof(int));
    c.targets = malloc(N * sizeof(int));
    c.pos = malloc(N * sizeof(int));
    c.seq = malloc(N * sizeof(int));
    printf("threads: %d (OMP_NUM_THREADS=%s, OMP_WAIT_POLICY=%s); clock: %s\n", omp_get_max_threads(),
           getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "unset",
           getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "unset",
           use_cpu_time ? "process CPU time (tokens per CPU-second)" : "wall");
    if (use_cpu_time && omp_get_max_threads() > 1)
        printf("note: --cpu-time sums the CPU time of all %d threads (spinning included)\n", omp_get_max_threads());

    for (int which = random_only ? 1 : 0; which < 2; which++) {
        steer_model *m = NULL;
        char dir[256] = "", label[512];
        int rc;
        if (which == 0) {
            if ((rc = steer_model_load(model, NULL, &m))) die("steer_model_load", rc);
            snprintf(label, sizeof label, "%s", model);
        } else {
            steer_make_model_params mp = steer_make_model_default_params(STEER_ARCH_LLAMA);
            mp.d_model = 512, mp.d_ff = 1376, mp.n_layer = layers, mp.n_head = 8, mp.n_kv_head = 8;
            mp.n_vocab = vocab, mp.n_ctx = 256, mp.tied = 0, mp.seed = 7;
            snprintf(dir, sizeof dir, "/tmp/bench_train_model_%d", (int)getpid());
            if ((rc = steer_make_model(&mp, dir))) die("steer_make_model", rc);
            if ((rc = steer_model_load(dir, NULL, &m))) die("steer_model_load", rc);
            snprintf(label, sizeof label, "random llama (steer_make_model)");
        }
        const int V = steer_model_get_config(m)->n_vocab;
        if (T > steer_model_get_config(m)->n_ctx_train && steer_model_get_config(m)->n_ctx_train > 0) {
            fprintf(stderr, "bench_train: --seq %d exceeds the model's context %d\n", T,
                    steer_model_get_config(m)->n_ctx_train);
            return 2;
        }
        uint64_t st = 0x5eed;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                st = st * 6364136223846793005ULL + 1442695040888963407ULL;
                const size_t n = (size_t)b * T + t;
                c.tokens[n] = t == 0 ? 1 : 3 + (int)((st >> 33) % (uint64_t)(V - 3));
                c.pos[n] = t;
                c.seq[n] = b;
            }
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                const size_t n = (size_t)b * T + t;
                c.targets[n] = t + 1 < T ? c.tokens[n + 1] : -1;
            }
        bench_model(label, m, &c, methods, n_methods);
        steer_model_free(m);
        if (dir[0]) {
            char cmd[400];
            snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
            if (system(cmd) != 0) fprintf(stderr, "bench_train: could not remove %s\n", dir);
        }
    }
    free(c.tokens);
    free(c.targets);
    free(c.pos);
    free(c.seq);
    return 0;
}

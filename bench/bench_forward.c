/*
 * bench_forward.c — end-to-end speed of the forward pass.
 *
 *   bench_forward MODEL [--prompt N] [--gen N] [--threads T] [--runs R] [--kernel PATH]
 *
 * --kernel scalar|avx2|avx512 runs the matmul and attention kernels of that
 * path (kern.h; default: the best the CPU has), for comparisons in one session.
 *
 * pp  (prompt processing): one steer_eval batch of N tokens from an empty
 *     cache (logits for every row, as steer_eval computes them).
 * tg  (generation): after the prompt, G steps of steer_forward with one token
 *     each (the greedy argmax of the previous logits), timed together.
 * hook cost: pp and tg again with a capture (steer_ctx_add_capture) at
 *     resid_post of every layer. The design claims that sites no hook wants
 *     cost nothing and a hooked site costs the hook (here a copy of the rows).
 *     hook_ratio = the median over rounds of time(capture) / time(unhooked),
 *     the two runs of each ratio taken back to back in the same round: on a
 *     shared VM the same run varied by 20% and more from one round to the
 *     next, which a ratio of two best-of-R figures inherits, while runs close
 *     in time vary together. All variants run on one context (hooks added
 *     before and cleared after each run, not timed), rotating their order,
 *     because two contexts' scratch buffers lie at different addresses and
 *     that alone moved the small model's pp by ~5% in our tests. As a check
 *     independent of timing noise, a user hook doing the same work as a
 *     capture (copy each row to its position in an [n_ctx, d_model] buffer)
 *     times itself: hook_share = time inside the hook / time of the forward.
 *
 * pp_last: the same prompt with logits for its last row only (what
 *     llama.cpp's llama-bench measures as pp). steer_forward then prunes
 *     the last layer's q, attention, o and MLP to that row and runs the
 *     head once; its GFLOP/s and of_peak count that work only.
 * machine: the FMA peak and the read bandwidth of this machine are measured
 *     first (bench_util.h, every thread); pp and pp_last report their share
 *     of the peak (of_peak), tg its weight traffic (bytes of every layer
 *     matrix and the head per token × tok/s, GB/s) and its share of the
 *     bandwidth bound (of_bw = tok/s ÷ (bandwidth ÷ bytes per token)).
 *     tg_paired: R more tg runs, each right after its own bandwidth
 *     measurement, and the min / median / max of their of_bw: a slow spell
 *     of a shared VM (tens of seconds) then falls on a run and its bound
 *     alike, where the single measurement at the start can be minutes away
 *     from the best tg run (measured in this process, after the memory
 *     figure). of_bw_best: the fastest of those tg runs over the bound at
 *     the fastest of their bandwidth measurements (a slow spell only ever
 *     slows either down, so each best is the machine at its fastest).
 * memory: peak resident set (getrusage) minus the resident set before the
 *     model is loaded (code and libraries), against the bound weights + KV
 *     cache + 10% (weights = the model's tensors, mapped from the file).
 *
 * Each metric: one warm-up run per variant, then the best of R (default 3)
 * runs (hook_ratio: the median, see above).
 * Tokens: BOS followed by fixed pseudo-random ids in [3, n_vocab) (timing does
 * not depend on the ids).
 *
 * FLOPs counted per token: 2·(matmul weights of all layers: wq, wk, wv, wo,
 * w_gate, w_up, w_down) + 2·(n_vocab·d_model) for the head when the token's
 * logits are computed + per layer 4·n_head·head_dim·ctx_len for attention
 * (q·k and the weighted sum of v), ctx_len = the positions it attends (pos+1).
 * Not counted: norms, RoPE, softmax, SiLU, residual adds, embedding lookup.
 */
#include "steer_exp.h"
#include "model.h"

#include <omp.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#include <sys/stat.h>

/* Bytes of the weights one generated token reads: every layer matrix and the
 * head, as stored (quantized rows by their block bytes). */
static double token_weight_bytes(const steer_model *m)
{
    static const steer_weight mats[] = {STEER_WEIGHT_Q, STEER_WEIGHT_K, STEER_WEIGHT_V, STEER_WEIGHT_O,
                                        STEER_WEIGHT_GATE, STEER_WEIGHT_UP, STEER_WEIGHT_DOWN};
    double b = 0.0;
    steer_weight_view v;
    for (int l = 0; l < steer_model_get_config(m)->n_layer; l++)
        for (size_t k = 0; k < sizeof mats / sizeof mats[0]; k++)
            if (steer_model_weight(m, mats[k], l, &v) == STEER_OK && v.data)
                b += (double)v.rows * (double)steer_dtype_row_bytes(v.dtype, (size_t)v.cols);
    if (steer_model_weight(m, STEER_WEIGHT_OUTPUT, 0, &v) == STEER_OK && v.data)
        b += (double)v.rows * (double)steer_dtype_row_bytes(v.dtype, (size_t)v.cols);
    return b;
}

static int die(const char *what, int rc)
{
    fprintf(stderr, "bench_forward: %s failed (%d): %s\n", what, rc, steer_last_error());
    return 1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of x[0..n) (sorts x). */
static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* A user hook at resid_post of every layer that copies rows as a capture does
 * and adds the time it spends to `spent`. */
typedef struct {
    float *rows; /* [n_ctx, width] */
    double spent;
} copy_hook;

static int copy_wants(void *ud, steer_site site, int layer)
{
    (void)ud; (void)layer;
    return site == STEER_SITE_RESID_POST;
}

static int copy_apply(void *ud, steer_site site, int layer, float *h, const steer_hook_batch *b)
{
    (void)site; (void)layer;
    copy_hook *ch = ud;
    double t0 = now_s();
    for (int i = 0; i < b->n; i++)
        memcpy(ch->rows + (size_t)b->pos[i] * b->width, h + (size_t)i * b->width, (size_t)b->width * sizeof(float));
    ch->spent += now_s() - t0;
    return 0;
}

enum { V_PLAIN, V_CAPTURE, V_COPY, N_VARIANTS };

/* Puts the hooks of variant v on c (clearing any others). */
static int set_variant(steer_ctx *c, int v, int n_layer, copy_hook *ud)
{
    steer_ctx_clear_hooks(c);
    if (v == V_CAPTURE) {
        for (int l = 0; l < n_layer; l++) {
            int id = steer_ctx_add_capture(c, STEER_SITE_RESID_POST, l, 0);
            if (id < 0) return id;
        }
    } else if (v == V_COPY) {
        steer_hook h = {.wants = copy_wants, .apply = copy_apply, .ud = ud};
        int id = steer_ctx_add_hook(c, &h);
        if (id < 0) return id;
    }
    return STEER_OK;
}

/* The prompt from an empty cache with logits for its last row only; *secs
 * receives its time. */
static int run_pp_last(steer_ctx *c, const int *toks, int n_prompt, int *pos, int8_t *lg, double *secs)
{
    steer_ctx_clear(c, -1);
    for (int i = 0; i < n_prompt; i++) pos[i] = i, lg[i] = i == n_prompt - 1;
    steer_batch b = {.n = n_prompt, .tokens = toks, .pos = pos, .seq = NULL, .logits = lg};
    const double t0 = now_s();
    const int rc = steer_forward(c, &b);
    *secs = now_s() - t0;
    return rc;
}

typedef struct {
    double pp, tg;           /* seconds                                  */
    double hook_pp, hook_tg; /* seconds inside the copy hook (V_COPY)     */
} run_times;

/* Runs the prompt (timed) then gen decode steps (timed together); gen = 0
 * skips decoding. ud (may be NULL) collects the copy hook's time. */
static int run_once(steer_ctx *c, const int *toks, int n_prompt, int gen, int n_vocab, copy_hook *ud, run_times *t)
{
    memset(t, 0, sizeof *t);
    steer_ctx_clear(c, -1);
    if (ud) ud->spent = 0.0;
    double t0 = now_s();
    int rc = steer_forward_tokens(c, toks, n_prompt, 0, 0);
    t->pp = now_s() - t0;
    if (rc) return rc;
    if (ud) t->hook_pp = ud->spent;
    if (gen <= 0) return STEER_OK;
    int tok = argmax(steer_ctx_logits(c, n_prompt - 1), n_vocab);
    if (ud) ud->spent = 0.0;
    t0 = now_s();
    for (int g = 0; g < gen; g++) {
        int pos = n_prompt + g;
        steer_batch b = {.n = 1, .tokens = &tok, .pos = &pos, .seq = NULL, .logits = NULL};
        if ((rc = steer_forward(c, &b))) return rc;
        tok = argmax(steer_ctx_logits(c, 0), n_vocab);
    }
    t->tg = now_s() - t0;
    if (ud) t->hook_tg = ud->spent;
    return STEER_OK;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s MODEL [--prompt N (128)] [--gen N (32)] [--threads T (OpenMP default)] [--runs R (3)] "
            "[--kernel scalar|avx2|avx512 (best)]\n",
            argv0);
}

/* machine[0] = FMA peak (GFLOP/s), machine[1] = read bandwidth (GB/s),
 * measured in a child process so that the bandwidth test's 512 MiB buffer
 * does not count in this process's peak resident memory. Call before any
 * OpenMP region (the child inherits no thread pool). */
static void measure_machine(double machine[2])
{
    int fd[2];
    machine[0] = machine[1] = 0.0;
    if (pipe(fd)) return;
    const pid_t pid = fork();
    if (pid == 0) {
        double v[2] = {bench_fma_peak(), bench_read_bandwidth()};
        ssize_t w = write(fd[1], v, sizeof v);
        _exit(w == (ssize_t)sizeof v ? 0 : 1);
    }
    close(fd[1]);
    if (pid > 0) {
        if (read(fd[0], machine, 2 * sizeof(double)) != (ssize_t)(2 * sizeof(double))) machine[0] = machine[1] = 0.0;
        waitpid(pid, NULL, 0);
    }
    close(fd[0]);
}

/* Resident memory of this process now, bytes (/proc/self/statm); 0 if unknown. */
static double current_rss(void)
{
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%*s %ld", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (double)pages * (double)sysconf(_SC_PAGESIZE);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int n_prompt = 128, gen = 32, threads = 0, runs = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--prompt") && i + 1 < argc) n_prompt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gen") && i + 1 < argc) gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kernel") && i + 1 < argc) {
            if (steer_cpu_set_path(argv[++i]) != STEER_OK) {
                fprintf(stderr, "bench_forward: %s\n", steer_last_error());
                return 2;
            }
        }
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (!path || n_prompt < 1 || gen < 0 || threads < 0 || runs < 1) {
        usage(argv[0]);
        return 2;
    }

    double machine[2];
    if (threads > 0) omp_set_num_threads(threads);
    measure_machine(machine);
    const double rss0 = current_rss();

    steer_model *m = NULL;
    steer_model_params mp = steer_model_default_params();
    double t0 = now_s();
    int rc = steer_model_load(path, &mp, &m);
    if (rc) return die("steer_model_load", rc);
    const double t_load = now_s() - t0;
    const steer_model_config *cfg = steer_model_get_config(m);
    const char *dt = steer_dtype_name(cfg->weight_dtype);
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

    const int n_ctx = n_prompt + gen;
    if (n_ctx > cfg->n_ctx_train)
        fprintf(stderr, "bench_forward: note: %d positions exceed the training context %d\n", n_ctx,
                cfg->n_ctx_train);

    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = threads;
    steer_ctx *c = NULL;
    if ((rc = steer_ctx_new(m, &cp, &c))) return die("steer_ctx_new", rc);
    copy_hook ud = {calloc((size_t)n_ctx * cfg->d_model, sizeof(float)), 0.0};
    if (!ud.rows) return die("calloc", STEER_ENOMEM);

    int *toks = malloc((size_t)n_prompt * sizeof(int));
    if (!toks) return die("malloc", STEER_ENOMEM);
    uint32_t r = 12345u;
    toks[0] = steer_token_bos(m);
    for (int i = 1; i < n_prompt; i++) {
        r = r * 1664525u + 1013904223u;
        toks[i] = cfg->n_vocab > 3 ? 3 + (int)((r >> 8) % (uint32_t)(cfg->n_vocab - 3)) : 0;
    }

    /* FLOP model */
    const double d = cfg->d_model, qd = (double)cfg->n_head * cfg->head_dim,
                 kvd = (double)cfg->n_kv_head * cfg->head_dim, ff = cfg->d_ff;
    const double layer_w = qd * d + 2.0 * kvd * d + d * qd + 3.0 * ff * d;
    const double mat_w = cfg->n_layer * layer_w, head_w = (double)cfg->n_vocab * d;
    const double att_layer = 4.0 * cfg->n_head * cfg->head_dim, att_coef = att_layer * cfg->n_layer; /* × ctx_len */
    /* pp: N tokens, each with logits, token i attends i+1 positions */
    const double pp_flop = n_prompt * 2.0 * (mat_w + head_w) + att_coef * (double)n_prompt * (n_prompt + 1) / 2.0;
    /* tg: tokens at positions N..N+G-1, each attends pos+1 */
    double tg_att = 0.0;
    for (int g = 0; g < gen; g++) tg_att += n_prompt + g + 1;
    const double tg_flop = gen * 2.0 * (mat_w + head_w) + att_coef * tg_att;
    /* pp_last: the work steer_forward does for logits of the last row only
     * (pruned, forward.c): every layer but the last in full; in the last, k
     * and v of every row, but q, attention, o and the MLP of the last row
     * only; the head once. (Counting the full pass here, as before
     * 2026-12-07, put of_peak above 1.) */
    const double last_row_w = layer_w - 2.0 * kvd * d; /* the last layer's weights but k and v */
    const double ppl_flop = n_prompt * 2.0 * (mat_w - last_row_w) + 2.0 * last_row_w + 2.0 * head_w +
                            att_layer * ((cfg->n_layer - 1) * (double)n_prompt * (n_prompt + 1) / 2.0 + n_prompt);
    /* bytes read per generated token: every layer matrix and the head, once */
    const double tok_bytes = token_weight_bytes(m);

    printf("model: %s\n", path);
    printf("config: arch=%s format=%s n_layer=%d d_model=%d n_head=%d n_kv_head=%d head_dim=%d d_ff=%d n_vocab=%d "
           "n_ctx_train=%d rope_theta=%g rms_eps=%g tied=%d dtype=%s n_params=%lld\n",
           cfg->arch_name, cfg->format, cfg->n_layer, cfg->d_model, cfg->n_head, cfg->n_kv_head, cfg->head_dim,
           cfg->d_ff, cfg->n_vocab, cfg->n_ctx_train, (double)cfg->rope_theta, (double)cfg->rms_eps,
           cfg->tied_embeddings, dt, (long long)cfg->n_params);
    printf("load: %.3f s (mmap)\n", t_load);
    printf("threads: %d (--threads %d; omp_get_max_threads %d)\n", threads > 0 ? threads : omp_get_max_threads(),
           threads, omp_get_max_threads());
    printf("kernel path: %s (CPU features: %s)\n", steer_cpu_path(), steer_cpu_features());
    const double peak = machine[0], bw = machine[1];
    printf("machine: FMA peak %.1f GFLOP/s, read bandwidth %.1f GB/s (%d threads, measured in a child process; "
           "bench_util.h)\n", peak, bw, omp_get_max_threads());
    printf("flops: per token 2*(layer matmul weights %.4g + head %.4g) + attention 4*n_head*head_dim*ctx_len per "
           "layer; pp %d tokens = %.4g GFLOP, pp_last (the last layer's q, attention, o and MLP and the head for "
           "the last row only) = %.4g GFLOP, tg %d tokens = %.4g GFLOP; norms/rope/softmax/silu not counted\n",
           mat_w, head_w, n_prompt, pp_flop * 1e-9, ppl_flop * 1e-9, gen, tg_flop * 1e-9);
    printf("timing: 1 warm-up + best of %d (unhooked, capture and copy-hook runs rotated on one context; "
           "hook_ratio: median over the rounds); "
           "pp = one steer_eval of %d tokens (logits for all rows); tg = %d steer_forward calls of 1 token after "
           "the prompt\n",
           runs, n_prompt, gen);
    fflush(stdout);

    /* best[v]: fastest pp and tg of variant v; the copy hook's shares come
     * from its fastest run of each */
    run_times best[N_VARIANTS], t;
    for (int v = 0; v < N_VARIANTS; v++) best[v].pp = best[v].tg = 1e30;
    double *ratio_pp = malloc((size_t)runs * sizeof(double)), *ratio_tg = malloc((size_t)runs * sizeof(double));
    double round_pp[N_VARIANTS], round_tg[N_VARIANTS];
    if (!ratio_pp || !ratio_tg) return die("malloc", STEER_ENOMEM);
    double share_pp = 0.0, share_tg = 0.0;
    int n_cap = -1;
    const cpu_sample c0 = cpu_sample_now();
    for (int k = -1; k < runs; k++) { /* k = -1: warm-up */
        for (int j = 0; j < N_VARIANTS; j++) {
            const int v = (j + (k < 0 ? 0 : k)) % N_VARIANTS; /* rotate the order */
            if ((rc = set_variant(c, v, cfg->n_layer, &ud))) return die("adding hooks", rc);
            if ((rc = run_once(c, toks, n_prompt, gen, cfg->n_vocab, v == V_COPY ? &ud : NULL, &t)))
                return die("forward", rc);
            if (v == V_CAPTURE) steer_ctx_captured(c, STEER_SITE_RESID_POST, cfg->n_layer - 1, &n_cap);
            if (k < 0) continue;
            round_pp[v] = t.pp;
            round_tg[v] = t.tg;
            if (t.pp < best[v].pp) {
                best[v].pp = t.pp;
                if (v == V_COPY) share_pp = t.hook_pp / t.pp;
            }
            if (t.tg < best[v].tg) {
                best[v].tg = t.tg;
                if (v == V_COPY) share_tg = t.hook_tg / t.tg;
            }
        }
        if (k >= 0) {
            ratio_pp[k] = round_pp[V_CAPTURE] / round_pp[V_PLAIN];
            ratio_tg[k] = gen > 0 ? round_tg[V_CAPTURE] / round_tg[V_PLAIN] : 1.0;
        }
    }
    steer_ctx_clear_hooks(c);
    /* pp_last: warm-up + best of R, no hooks */
    double ppl = 1e30;
    {
        int *pos = malloc((size_t)n_prompt * sizeof(int));
        int8_t *lg = malloc((size_t)n_prompt);
        if (!pos || !lg) return die("malloc", STEER_ENOMEM);
        for (int k = -1; k < runs; k++) {
            double secs;
            if ((rc = run_pp_last(c, toks, n_prompt, pos, lg, &secs))) return die("forward (pp_last)", rc);
            if (k >= 0 && secs < ppl) ppl = secs;
        }
        free(pos);
        free(lg);
    }
    const double other = cpu_foreign(c0, cpu_sample_now());
    if (n_cap != (gen > 0 ? n_ctx : n_prompt))
        fprintf(stderr, "bench_forward: warning: the capture holds %d rows, expected %d\n", n_cap,
                gen > 0 ? n_ctx : n_prompt);
    const double pp = best[V_PLAIN].pp, tg = best[V_PLAIN].tg, pph = best[V_CAPTURE].pp, tgh = best[V_CAPTURE].tg;
    const double hr_pp = median(ratio_pp, runs), hr_tg = median(ratio_tg, runs);
    free(ratio_pp);
    free(ratio_tg);

    printf("result model=%s dtype=%s metric=pp%d tok/s=%.2f ms=%.2f GFLOP/s=%.2f of_peak=%.3f\n", name, dt,
           n_prompt, n_prompt / pp, pp * 1e3, pp_flop / pp * 1e-9, peak > 0 ? pp_flop / pp * 1e-9 / peak : 0.0);
    printf("result model=%s dtype=%s metric=pp%d_last tok/s=%.2f ms=%.2f GFLOP/s=%.2f of_peak=%.3f (logits for the "
           "last row only, as llama-bench)\n",
           name, dt, n_prompt, n_prompt / ppl, ppl * 1e3, ppl_flop / ppl * 1e-9,
           peak > 0 ? ppl_flop / ppl * 1e-9 / peak : 0.0);
    if (gen > 0)
        printf("result model=%s dtype=%s metric=tg%d tok/s=%.2f ms/tok=%.3f GFLOP/s=%.2f GB/s=%.2f of_bw=%.3f "
               "(bound %.2f tok/s = %.1f GB/s / %.1f MB per token)\n",
               name, dt, gen, gen / tg, tg * 1e3 / gen, tg_flop / tg * 1e-9, tok_bytes * gen / tg * 1e-9,
               bw > 0 ? (gen / tg) / (bw * 1e9 / tok_bytes) : 0.0, bw * 1e9 / tok_bytes, bw, tok_bytes * 1e-6);
    printf("result model=%s dtype=%s metric=pp%d_capture tok/s=%.2f ms=%.2f hook_ratio=%.3f hook_share=%.2e "
           "(capture at resid_post of %d layers; ratio = median of time captured / unhooked, back-to-back pairs; "
           "share = time inside a copy hook / its forward time)\n",
           name, dt, n_prompt, n_prompt / pph, pph * 1e3, hr_pp, share_pp, cfg->n_layer);
    if (gen > 0)
        printf("result model=%s dtype=%s metric=tg%d_capture tok/s=%.2f ms/tok=%.3f hook_ratio=%.3f hook_share=%.2e\n",
               name, dt, gen, gen / tgh, tgh * 1e3 / gen, hr_tg, share_tg);

    printf("contention: other processes used %.0f%% of the CPUs during these runs\n", 100.0 * other);
    {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        const double rss = (double)ru.ru_maxrss * 1024.0;
        struct stat st; /* the weights: the file's size (as mapped; quantized types included) */
        const double w_bytes = stat(path, &st) == 0 && S_ISREG(st.st_mode)
                                   ? (double)st.st_size
                                   : (double)cfg->n_params * (double)steer_dtype_size(cfg->weight_dtype);
        const double kv_bytes = 2.0 * cfg->n_layer * (double)n_ctx * kvd * sizeof(float);
        const double bound = 1.1 * (w_bytes + kv_bytes);
        printf("result model=%s dtype=%s metric=peak_rss MiB=%.1f before_load_MiB=%.1f added_MiB=%.1f bound_MiB=%.1f "
               "(weights %.1f + KV cache %.1f, +10%%; added = peak - the process before loading the model: code, "
               "libraries) %s\n",
               name, dt, rss / 1048576.0, rss0 / 1048576.0, (rss - rss0) / 1048576.0, bound / 1048576.0,
               w_bytes / 1048576.0, kv_bytes / 1048576.0, rss - rss0 <= bound ? "within" : "OVER");
    }
    if (gen > 0) { /* tg_paired: each run right after its own bandwidth measurement */
        double *obw = malloc((size_t)runs * sizeof(double));
        if (!obw) return die("malloc", STEER_ENOMEM);
        double bw_best = 0.0, tg_best = 0.0; /* GB/s, tok/s: the fastest of each over the R pairs */
        for (int k = 0; k < runs; k++) {
            const double bwk = bench_read_bandwidth(); /* in this process: after peak_rss, and a fork
                                                        * after OpenMP regions is not safe */
            if ((rc = run_once(c, toks, n_prompt, gen, cfg->n_vocab, NULL, &t))) return die("forward", rc);
            obw[k] = bwk > 0 ? (gen / t.tg) / (bwk * 1e9 / tok_bytes) : 0.0;
            bw_best = bwk > bw_best ? bwk : bw_best;
            tg_best = gen / t.tg > tg_best ? gen / t.tg : tg_best;
        }
        double lo = obw[0], hi = obw[0];
        for (int k = 1; k < runs; k++) lo = obw[k] < lo ? obw[k] : lo, hi = obw[k] > hi ? obw[k] : hi;
        printf("result model=%s dtype=%s metric=tg%d_paired of_bw_median=%.3f of_bw_min=%.3f of_bw_max=%.3f "
               "of_bw_best=%.3f (%d tg runs, each right after its own bandwidth measurement; best: the fastest tg "
               "run, %.1f tok/s, over the bound at the fastest bandwidth, %.1f GB/s)\n",
               name, dt, gen, median(obw, runs), lo, hi, bw_best > 0 ? tg_best / (bw_best * 1e9 / tok_bytes) : 0.0,
               runs, tg_best, bw_best);
        free(obw);
    }

    free(toks);
    free(ud.rows);
    steer_ctx_free(c);
    steer_model_free(m);
    return 0;
}

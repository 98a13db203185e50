/*
 * bench_forward.c — end-to-end speed of the forward pass.
 *
 *   bench_forward MODEL [--prompt N] [--gen N] [--threads T] [--runs R]
 *
 * pp  (prompt processing): one steer_eval batch of N tokens from an empty
 *     cache (logits for every row, as steer_eval computes them).
 * tg  (generation): after the prompt, G steps of steer_forward with one token
 *     each (the greedy argmax of the previous logits), timed together.
 * hook cost: pp and tg again on a context with a capture hook at resid_post of
 *     every layer (steer_ctx_add_capture), reported as time(hooked) /
 *     time(unhooked). Runs of the two contexts are interleaved.
 *
 * Each metric: one warm-up run, then the best of R (default 3) runs.
 * Tokens: BOS followed by fixed pseudo-random ids in [3, n_vocab) (timing does
 * not depend on the ids).
 *
 * FLOPs counted per token: 2·(matmul weights of all layers: wq, wk, wv, wo,
 * w_gate, w_up, w_down) + 2·(n_vocab·d_model) for the head when the token's
 * logits are computed + per layer 4·n_head·head_dim·ctx_len for attention
 * (q·k and the weighted sum of v), ctx_len = the positions it attends (pos+1).
 * Not counted: norms, RoPE, softmax, SiLU, residual adds, embedding lookup.
 */
#include "steer.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *what, int rc)
{
    fprintf(stderr, "bench_forward: %s failed (%d): %s\n", what, rc, steer_last_error());
    return 1;
}

static int argmax(const float *x, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Runs the prompt (timed into *t_pp) then gen decode steps (timed into *t_tg).
 * gen = 0 skips decoding. */
static int run_once(steer_ctx *c, const int *toks, int n_prompt, int gen, int n_vocab, double *t_pp, double *t_tg)
{
    steer_ctx_clear(c, -1);
    double t0 = now_s();
    int rc = steer_eval(c, toks, n_prompt, 0, 0);
    *t_pp = now_s() - t0;
    if (rc) return rc;
    *t_tg = 0.0;
    if (gen <= 0) return STEER_OK;
    int tok = argmax(steer_ctx_logits(c, n_prompt - 1), n_vocab);
    t0 = now_s();
    for (int g = 0; g < gen; g++) {
        int pos = n_prompt + g;
        steer_batch b = {.n = 1, .tokens = &tok, .pos = &pos, .seq = NULL, .logits = NULL};
        if ((rc = steer_forward(c, &b))) return rc;
        tok = argmax(steer_ctx_logits(c, 0), n_vocab);
    }
    *t_tg = now_s() - t0;
    return STEER_OK;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s MODEL [--prompt N (128)] [--gen N (32)] [--threads T (OpenMP default)] [--runs R (3)]\n",
            argv0);
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
    steer_ctx *c = NULL, *ch = NULL;
    if ((rc = steer_ctx_new(m, &cp, &c))) return die("steer_ctx_new", rc);
    if ((rc = steer_ctx_new(m, &cp, &ch))) return die("steer_ctx_new", rc);
    for (int l = 0; l < cfg->n_layer; l++) {
        int id = steer_ctx_add_capture(ch, STEER_SITE_RESID_POST, l, 0);
        if (id < 0) return die("steer_ctx_add_capture", id);
    }

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
    const double att_coef = 4.0 * cfg->n_head * cfg->head_dim * cfg->n_layer; /* × ctx_len */
    /* pp: N tokens, each with logits, token i attends i+1 positions */
    const double pp_flop = n_prompt * 2.0 * (mat_w + head_w) + att_coef * (double)n_prompt * (n_prompt + 1) / 2.0;
    /* tg: tokens at positions N..N+G-1, each attends pos+1 */
    double tg_att = 0.0;
    for (int g = 0; g < gen; g++) tg_att += n_prompt + g + 1;
    const double tg_flop = gen * 2.0 * (mat_w + head_w) + att_coef * tg_att;

    printf("model: %s\n", path);
    printf("config: arch=%s format=%s n_layer=%d d_model=%d n_head=%d n_kv_head=%d head_dim=%d d_ff=%d n_vocab=%d "
           "n_ctx_train=%d rope_theta=%g rms_eps=%g tied=%d dtype=%s n_params=%lld\n",
           cfg->arch_name, cfg->format, cfg->n_layer, cfg->d_model, cfg->n_head, cfg->n_kv_head, cfg->head_dim,
           cfg->d_ff, cfg->n_vocab, cfg->n_ctx_train, (double)cfg->rope_theta, (double)cfg->rms_eps,
           cfg->tied_embeddings, dt, (long long)cfg->n_params);
    printf("load: %.3f s (mmap)\n", t_load);
    printf("threads: %d (--threads %d; omp_get_max_threads %d)\n", threads > 0 ? threads : omp_get_max_threads(),
           threads, omp_get_max_threads());
    printf("flops: per token 2*(layer matmul weights %.4g + head %.4g) + attention 4*n_head*head_dim*ctx_len per "
           "layer; pp %d tokens = %.4g GFLOP, tg %d tokens = %.4g GFLOP; norms/rope/softmax/silu not counted\n",
           mat_w, head_w, n_prompt, pp_flop * 1e-9, gen, tg_flop * 1e-9);
    printf("timing: 1 warm-up + best of %d; pp = one steer_eval of %d tokens (logits for all rows); tg = %d "
           "steer_forward calls of 1 token after the prompt\n",
           runs, n_prompt, gen);
    fflush(stdout);

    double pp = 1e30, tg = 1e30, pph = 1e30, tgh = 1e30, a, b;
    if ((rc = run_once(c, toks, n_prompt, gen, cfg->n_vocab, &a, &b))) return die("forward (warm-up)", rc);
    if ((rc = run_once(ch, toks, n_prompt, gen, cfg->n_vocab, &a, &b))) return die("forward (warm-up, hooked)", rc);
    for (int k = 0; k < runs; k++) {
        if ((rc = run_once(c, toks, n_prompt, gen, cfg->n_vocab, &a, &b))) return die("forward", rc);
        if (a < pp) pp = a;
        if (b < tg) tg = b;
        if ((rc = run_once(ch, toks, n_prompt, gen, cfg->n_vocab, &a, &b))) return die("forward (hooked)", rc);
        if (a < pph) pph = a;
        if (b < tgh) tgh = b;
    }
    int n_cap = 0;
    if (!steer_ctx_captured(ch, STEER_SITE_RESID_POST, cfg->n_layer - 1, &n_cap) || n_cap != n_ctx)
        fprintf(stderr, "bench_forward: warning: capture holds %d rows, expected %d\n", n_cap, n_ctx);

    printf("result model=%s dtype=%s metric=pp%d tok/s=%.2f ms=%.2f GFLOP/s=%.2f\n", name, dt, n_prompt,
           n_prompt / pp, pp * 1e3, pp_flop / pp * 1e-9);
    if (gen > 0)
        printf("result model=%s dtype=%s metric=tg%d tok/s=%.2f ms/tok=%.3f GFLOP/s=%.2f\n", name, dt, gen, gen / tg,
               tg * 1e3 / gen, tg_flop / tg * 1e-9);
    printf("result model=%s dtype=%s metric=pp%d_hooked tok/s=%.2f ms=%.2f hook_ratio=%.3f (capture at resid_post "
           "of %d layers; ratio = time hooked / unhooked)\n",
           name, dt, n_prompt, n_prompt / pph, pph * 1e3, pph / pp, cfg->n_layer);
    if (gen > 0)
        printf("result model=%s dtype=%s metric=tg%d_hooked tok/s=%.2f ms/tok=%.3f hook_ratio=%.3f\n", name, dt, gen,
               gen / tgh, tgh * 1e3 / gen, tgh / tg);

    free(toks);
    steer_ctx_free(ch);
    steer_ctx_free(c);
    steer_model_free(m);
    return 0;
}

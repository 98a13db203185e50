/*
 * bench_sweep.c — wall time of the oracle ΔKL sweep (SPEC E1), the optimised
 * engine against the naive path, in the same run.
 *
 *   bench_sweep [--base B] [--ft F] [--data SPEC] [--n N] [--threads T] [--runs R]
 *
 * Defaults: the demo config — stories260K vs stories260K-winogrande, the
 * first N = 16 Winogrande dev items, the 4 default sites (mlp_in, attn_out,
 * mlp_out, resid_post), all layers, α ∈ {0, 0.1, 0.25, 0.5, 1}, K = 5,
 * F's greedy continuation, all positions. Paths are relative to the
 * repository root (run from there, as scripts/bench.sh does).
 *
 * Each round runs steer_sweep_run twice on the same loaded models and
 * dataset — the engine (prefix reuse, α batch, pruned last layer, items in
 * parallel) and --naive (one full forward per (site, layer, α), items in
 * parallel the same way) — alternating which goes first. Reported: best-of-R
 * wall time of each, the ratio of the bests and the median of the per-round
 * ratios (the two runs of a round are back to back, so they share the
 * machine's load), items/s, the share of CPU used by other processes during
 * each round (bench_util.h), and the largest |difference| between the two
 * engines' KL values (expected 0: they are bitwise equal). Model loading and
 * dataset parsing are not timed; tokenization is (it is part of the run).
 */
#include "steer_exp.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

typedef struct {
    int K, n_cells, n_items;
    double *kl; /* [n_items, n_cells + 1, K]: kl_base then kl_steered */
} sink;

static int keep(void *ud, const steer_sweep_item *it)
{
    sink *s = ud;
    double *o = s->kl + (size_t)it->item * (s->n_cells + 1) * s->K;
    for (int k = 0; k < s->K; k++) o[k] = it->kl_base[k];
    memcpy(o + s->K, it->kl_steered, (size_t)s->n_cells * s->K * sizeof(double));
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--base B] [--ft F] [--data SPEC] [--n N] [--threads T] [--runs R]\n", argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *base = "models/stories260K/stories260K.bin",
               *ft = "models/stories260K-winogrande/stories260K-winogrande.bin",
               *data = "winogrande:tests/data/winogrande/dev.jsonl";
    int n = 16, threads = 0, runs = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--base") && i + 1 < argc) base = argv[++i];
        else if (!strcmp(argv[i], "--ft") && i + 1 < argc) ft = argv[++i];
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else usage(argv[0]);
    }
    if (n < 1 || runs < 1 || threads < 0) usage(argv[0]);
    steer_model *mb = NULL, *mf = NULL;
    steer_dataset *d = NULL;
    steer_data_params dp = steer_data_default_params();
    dp.n_max = n;
    if (steer_model_load(base, NULL, &mb) || steer_model_load(ft, NULL, &mf) || steer_data_load(data, &dp, &d)) {
        fprintf(stderr, "bench_sweep: %s\n", steer_last_error());
        return 1;
    }
    steer_sweep_params p = steer_sweep_default_params();
    p.n_threads = threads;
    if (steer_sweep_check(mb, mf, &p)) {
        fprintf(stderr, "bench_sweep: %s\n", steer_last_error());
        return 1;
    }
    const int n_items = steer_data_count(d), n_cells = p.n_sites * p.n_layers * p.n_alphas;
    sink s[2];
    for (int e = 0; e < 2; e++) {
        s[e] = (sink){p.tokens, n_cells, n_items, calloc((size_t)n_items * (n_cells + 1) * p.tokens, sizeof(double))};
        if (!s[e].kl) return 1;
    }
    printf("sweep: %s vs %s, %d items of %s\n", base, ft, n_items, data);
    printf("       %d sites x %d layers x %d alphas x K = %d tokens; threads %d; best of %d rounds\n", p.n_sites,
           p.n_layers, p.n_alphas, p.tokens, threads ? threads : omp_get_max_threads(), runs);
    double best[2] = {INFINITY, INFINITY}, *ratio = malloc(sizeof(double) * runs), other[2] = {0, 0};
    static const char *const names[2] = {"engine", "naive"};
    for (int r = 0; r < runs; r++) {
        double t[2];
        for (int j = 0; j < 2; j++) {
            const int e = (r + j) % 2; /* alternate which runs first */
            steer_sweep_params q = p;
            q.naive = e;
            q.on_item = keep;
            q.ud = &s[e];
            cpu_sample a = cpu_sample_now();
            double t0 = now_s();
            int rc = steer_sweep_run(mb, mf, d, &q);
            t[e] = now_s() - t0;
            double f = cpu_foreign(a, cpu_sample_now());
            if (f > other[e]) other[e] = f;
            if (rc) {
                fprintf(stderr, "bench_sweep: %s: %s\n", names[e], steer_last_error());
                return 1;
            }
            if (t[e] < best[e]) best[e] = t[e];
        }
        ratio[r] = t[1] / t[0];
        printf("round %d: engine %.3f s, naive %.3f s, ratio %.2f\n", r + 1, t[0], t[1], ratio[r]);
    }
    double md = 0;
    int bitwise = 1;
    for (size_t i = 0; i < (size_t)n_items * (n_cells + 1) * p.tokens; i++) {
        double x = s[0].kl[i], y = s[1].kl[i];
        if (isnan(x) && isnan(y)) continue;
        if (memcmp(&x, &y, sizeof x)) bitwise = 0;
        double dd = fabs(x - y);
        if (!(dd <= md)) md = dd;
    }
    qsort(ratio, (size_t)runs, sizeof *ratio, cmp_double);
    const double med = runs % 2 ? ratio[runs / 2] : 0.5 * (ratio[runs / 2 - 1] + ratio[runs / 2]);
    printf("engine  %8.3f s  (%.2f items/s)  other CPU <= %.0f%%\n", best[0], n_items / best[0], 100 * other[0]);
    printf("naive   %8.3f s  (%.2f items/s)  other CPU <= %.0f%%\n", best[1], n_items / best[1], 100 * other[1]);
    printf("speedup %.2fx (best/best), %.2fx (median of per-round ratios); target >= 3x\n", best[1] / best[0], med);
    {
        const double cells = (double)n_items * n_cells; /* item x site x layer x alpha */
        printf("per (item x site x layer x alpha): engine %.3f ms, naive %.3f ms (wall time / %.0f cells)\n",
               best[0] / cells * 1e3, best[1] / cells * 1e3, cells);
    }
    printf("max |engine - naive| over all KL values: %g (bitwise equal: %s)\n", md, bitwise ? "yes" : "no");
    free(ratio);
    free(s[0].kl);
    free(s[1].kl);
    steer_data_free(d);
    steer_model_free(mb);
    steer_model_free(mf);
    return 0;
}

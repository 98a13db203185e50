/*
 * sample.c — token sampling (greedy, temperature, top-k, top-p) with a seeded
 * generator, and the double-precision log-softmax / KL helpers.
 */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float p;
    int id;
} prob_idx;

struct steer_sampler {
    steer_sampler_params p;
    uint64_t state;   /* xorshift64* state                              */
    int cap;
    float *prob;      /* [cap] probabilities                            */
    prob_idx *cand;   /* [cap] candidates sorted by probability         */
};

steer_sampler_params steer_sampler_default_params(void)
{
    steer_sampler_params p = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .seed = 1};
    return p;
}

int steer_sampler_new(const steer_sampler_params *p, steer_sampler **out)
{
    *out = NULL;
    steer_sampler_params dp = steer_sampler_default_params();
    if (!p) p = &dp;
    if (!(p->temperature >= 0.0f) || !isfinite(p->temperature))
        return steer_err(STEER_EARG, "sampler: temperature must be >= 0 (got %g)", (double)p->temperature);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return steer_err(STEER_EARG, "sampler: top-p must be in (0, 1] (got %g)", (double)p->top_p);
    if (p->top_k < 0) return steer_err(STEER_EARG, "sampler: top-k must be >= 0 (got %d)", p->top_k);
    steer_sampler *s = calloc(1, sizeof *s);
    if (!s) return steer_err(STEER_ENOMEM, "sampler: out of memory");
    s->p = *p;
    s->state = p->seed ? p->seed : 0x9E3779B97F4A7C15ull;
    *out = s;
    return STEER_OK;
}

void steer_sampler_free(steer_sampler *s)
{
    if (!s) return;
    free(s->prob);
    free(s->cand);
    free(s);
}

static float rand_f32(steer_sampler *s) /* uniform in [0, 1) */
{
    s->state ^= s->state >> 12;
    s->state ^= s->state << 25;
    s->state ^= s->state >> 27;
    return (float)((s->state * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

/* Descending probability, then ascending id (a total order: deterministic). */
static int cmp_desc(const void *a, const void *b)
{
    const prob_idx *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

int steer_sample(steer_sampler *s, const float *logits, int n)
{
    if (s->p.temperature == 0.0f) { /* argmax, first index wins ties */
        int best = 0;
        for (int i = 1; i < n; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    if (n > s->cap) {
        float *p = realloc(s->prob, (size_t)n * sizeof(float));
        prob_idx *ix = realloc(s->cand, (size_t)n * sizeof(prob_idx));
        if (p) s->prob = p;
        if (ix) s->cand = ix;
        if (!p || !ix) return 0;
        s->cap = n;
    }
    float *prob = s->prob;
    float mx = logits[0];
    for (int i = 1; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        prob[i] = expf((logits[i] - mx) / s->p.temperature);
        sum += prob[i];
    }
    for (int i = 0; i < n; i++) prob[i] = (float)(prob[i] / sum);
    int m = n;
    prob_idx *cd = s->cand;
    for (int i = 0; i < n; i++) cd[i] = (prob_idx){prob[i], i};
    if (s->p.top_k > 0 || s->p.top_p < 1.0f) {
        qsort(cd, (size_t)n, sizeof *cd, cmp_desc);
        if (s->p.top_k > 0 && s->p.top_k < m) m = s->p.top_k;
        if (s->p.top_p < 1.0f) {
            double cum = 0.0;
            for (int i = 0; i < m; i++) {
                cum += cd[i].p;
                if (cum >= s->p.top_p) { m = i + 1; break; }
            }
        }
    }
    double mass = 0.0;
    for (int i = 0; i < m; i++) mass += cd[i].p;
    double r = rand_f32(s) * mass, cdf = 0.0;
    for (int i = 0; i < m; i++) {
        cdf += cd[i].p;
        if (r < cdf) return cd[i].id;
    }
    return cd[m - 1].id;
}

/* ---------------------------------------------------------------- metrics */

void steer_log_softmax(const float *logits, int n, double *out)
{
    double mx = logits[0];
    for (int i = 1; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    for (int i = 0; i < n; i++) out[i] = (double)logits[i] - lse;
}

double steer_kl_logits(const float *logits_p, const float *logits_q, int n)
{
    double *lp = malloc((size_t)n * sizeof(double)), *lq = malloc((size_t)n * sizeof(double));
    if (!lp || !lq) { free(lp); free(lq); return NAN; }
    steer_log_softmax(logits_p, n, lp);
    steer_log_softmax(logits_q, n, lq);
    double kl = 0.0;
    for (int i = 0; i < n; i++) kl += exp(lp[i]) * (lp[i] - lq[i]);
    free(lp); free(lq);
    return kl;
}

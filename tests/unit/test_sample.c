/*
 * test_sample.c — log-softmax and KL in double against closed forms, and the
 * sampler's contracts (greedy = argmax with first-index ties, top-k 1 = greedy,
 * seeded runs repeat, temperature sampling follows the distribution).
 */
#include "test_util.h"

static void test_log_softmax_kl(void)
{
    const float a[3] = {1.0f, 2.0f, 3.0f};
    double ls[3];
    steer_log_softmax(a, 3, ls);
    double z = log(exp(1.0) + exp(2.0) + exp(3.0));
    double err = 0;
    for (int i = 0; i < 3; i++) err = fmax(err, fabs(ls[i] - ((double)a[i] - z)));
    printf("log_softmax vs closed form: max err %.3e\n", err);
    CHECK(err < 1e-12, "log_softmax error %.3e", err);

    /* huge logits must not overflow */
    const float big[2] = {1000.0f, 0.0f};
    steer_log_softmax(big, 2, ls);
    CHECK(isfinite(ls[0]) && isfinite(ls[1]) && fabs(ls[1] + 1000.0) < 1e-9, "log_softmax overflow: %g %g", ls[0], ls[1]);

    /* KL between two Bernoullis: p = softmax(0, x) */
    const float p[2] = {0.0f, 1.0f}, q[2] = {0.0f, -1.0f};
    double p1 = 1.0 / (1.0 + exp(-1.0)), q1 = 1.0 / (1.0 + exp(1.0));
    double want = (1 - p1) * log((1 - p1) / (1 - q1)) + p1 * log(p1 / q1);
    double got = steer_kl_logits(p, q, 2);
    printf("KL(Bernoulli): got %.12f want %.12f\n", got, want);
    CHECK(fabs(got - want) < 1e-9, "KL %.12f vs %.12f", got, want);
    CHECK(steer_kl_logits(p, p, 2) == 0.0, "KL(P||P) != 0");
    /* KL is invariant to adding a constant to the logits */
    const float p_shift[2] = {5.0f, 6.0f};
    CHECK(fabs(steer_kl_logits(p_shift, q, 2) - want) < 1e-9, "KL not shift-invariant");
}

static void test_sampler(void)
{
    const float l[5] = {0.5f, 2.0f, 2.0f, -1.0f, 1.0f};
    steer_sampler *s;
    CHECK_OK(steer_sampler_new(NULL, &s));
    CHECK(steer_sample(s, l, 5) == 1, "greedy should pick the first of tied maxima");
    steer_sampler_free(s);

    steer_sampler_params sp = steer_sampler_default_params();
    sp.temperature = 1.0f;
    sp.top_k = 1;
    CHECK_OK(steer_sampler_new(&sp, &s));
    int all1 = 1;
    for (int i = 0; i < 100; i++) all1 &= steer_sample(s, l, 5) == 1;
    CHECK(all1, "top-k 1 must be greedy");
    steer_sampler_free(s);

    /* temperature 1 frequencies follow softmax within 4 standard errors */
    sp.top_k = 0;
    sp.seed = 7;
    CHECK_OK(steer_sampler_new(&sp, &s));
    const int N = 200000;
    int counts[5] = {0};
    for (int i = 0; i < N; i++) counts[steer_sample(s, l, 5)]++;
    double ls[5];
    steer_log_softmax(l, 5, ls);
    double worst = 0;
    for (int i = 0; i < 5; i++) {
        double pi = exp(ls[i]), se = sqrt(pi * (1 - pi) / N);
        double zsc = fabs(counts[i] / (double)N - pi) / se;
        if (zsc > worst) worst = zsc;
    }
    printf("temperature-1 sampling, %d draws: worst |z| = %.2f (limit 4)\n", N, worst);
    CHECK(worst < 4.0, "sampling frequencies off: |z| = %.2f", worst);
    steer_sampler_free(s);

    /* top-p 0.5: only the two tied maxima (each ~0.35) can appear */
    sp.top_p = 0.5f;
    CHECK_OK(steer_sampler_new(&sp, &s));
    int only = 1;
    for (int i = 0; i < 1000; i++) { int t = steer_sample(s, l, 5); only &= (t == 1 || t == 2); }
    CHECK(only, "top-p 0.5 let a low-probability token through");
    steer_sampler_free(s);

    /* same seed, same sequence */
    sp.top_p = 1.0f;
    steer_sampler *a, *b;
    CHECK_OK(steer_sampler_new(&sp, &a));
    CHECK_OK(steer_sampler_new(&sp, &b));
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= steer_sample(a, l, 5) == steer_sample(b, l, 5);
    CHECK(same, "same seed gave different samples");
    steer_sampler_free(a);
    steer_sampler_free(b);

    sp.top_p = 1.5f;
    CHECK(steer_sampler_new(&sp, &s) == STEER_EARG, "top-p 1.5 accepted");
}

int main(void)
{
    test_log_softmax_kl();
    test_sampler();
    return tu_finish("test_sample");
}

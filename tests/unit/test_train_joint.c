/*
 * test_train_joint.c — SPEC E4's joint constraint after EVERY update of
 * steer_train --method joint (stories260K, 7 updates of 2 sequences): through the on_step
 * callback, after each update, the rows of every block's adapter W_down must
 * be orthogonal to the column space of that block's LoRA B on down_proj.
 *
 * Measure (independent of the library's Gram–Schmidt): for each row w of
 * W_down, the norm of its projection onto col(B), ‖P_B w‖ with
 * ‖P_B w‖² = (Bᵀw)ᵀ (BᵀB)⁻¹ (Bᵀw), solved by a Cholesky factorisation in
 * double. ‖P_B w‖ = ‖Qᵀw‖ for any orthonormal basis Q of col(B), so it bounds
 * every entry of W_down·Q. The maximum over rows and blocks must be
 * ≤ TOL_JOINT_STEP after every update with B ≠ 0.
 *
 * Non-trivial: (a) before the projection of the same update (as the library
 * measured it, steer_train_step.joint_overlap) the overlap is orders of
 * magnitude larger; (b) the previous update's projected W_down against the
 * new B — what skipping one projection would leave — violates the bound too.
 */
#include "test_util.h"

#include <omp.h>
#include <stdint.h>

#define MAXL 16
#define MAXR 16
#define MAXD 256

typedef struct {
    int L, d, r;
    int n_checked;        /* updates with B != 0 */
    double worst_after;   /* max over checked updates */
    double min_before;    /* min over checked updates of the library's pre-projection overlap */
    double min_stale;     /* min over updates >= 2 of the stale-W_down overlap */
    double min_rel_norm;  /* smallest max row norm of W_down seen (for the relative scale) */
    float prev_down[MAXL][MAXR * MAXD];
    int have_prev;
} ctx;

/* max over rows of ‖P_B w‖ for W_down [ra, d] and B [d, rb]; -1 when B = 0
 * (no constraint) or BᵀB is singular. */
static double proj_overlap(const float *W, int ra, const float *B, int d, int rb)
{
    double G[MAXR][MAXR], Lc[MAXR][MAXR];
    double bmax = 0;
    for (int i = 0; i < d * rb; i++) bmax = fmax(bmax, fabs(B[i]));
    if (bmax == 0) return -1;
    for (int a = 0; a < rb; a++)
        for (int b = 0; b < rb; b++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += (double)B[k * rb + a] * B[k * rb + b];
            G[a][b] = s;
        }
    for (int j = 0; j < rb; j++) { /* Cholesky G = L Lᵀ */
        double s = G[j][j];
        for (int k = 0; k < j; k++) s -= Lc[j][k] * Lc[j][k];
        if (s <= 1e-14 * G[j][j]) return -1;
        Lc[j][j] = sqrt(s);
        for (int i = j + 1; i < rb; i++) {
            double t = G[i][j];
            for (int k = 0; k < j; k++) t -= Lc[i][k] * Lc[j][k];
            Lc[i][j] = t / Lc[j][j];
        }
    }
    double worst = 0;
    for (int i = 0; i < ra; i++) {
        double c[MAXR], y[MAXR];
        for (int a = 0; a < rb; a++) {
            double s = 0;
            for (int k = 0; k < d; k++) s += (double)B[k * rb + a] * W[i * d + k];
            c[a] = s;
        }
        double n2 = 0; /* ‖L⁻¹ Bᵀw‖² = (Bᵀw)ᵀ G⁻¹ (Bᵀw) */
        for (int a = 0; a < rb; a++) {
            double s = c[a];
            for (int k = 0; k < a; k++) s -= Lc[a][k] * y[k];
            y[a] = s / Lc[a][a];
            n2 += y[a] * y[a];
        }
        worst = fmax(worst, sqrt(n2));
    }
    return worst;
}

static int on_step(void *ud, const steer_train_step *s)
{
    ctx *c = ud;
    double after = -1, stale = -1, wnorm = 0;
    for (int l = 0; l < c->L; l++) {
        char nd[64], nb[128];
        snprintf(nd, sizeof nd, "resid_post.%d.down", l);
        snprintf(nb, sizeof nb, "base_model.model.model.layers.%d.mlp.down_proj.lora_B.weight", l);
        int dd = 0, db = 0;
        int64_t sd[2], sb[2];
        const float *W = steer_train_step_tensor(s, nd, &dd, sd), *B = steer_train_step_tensor(s, nb, &db, sb);
        CHECK(W && B && dd == 2 && db == 2 && sd[1] == c->d && sb[0] == c->d && sd[0] == c->r && sb[1] == c->r,
              "step %lld: tensors %s, %s", (long long)s->step, nd, nb);
        if (!W || !B) return 1;
        after = fmax(after, proj_overlap(W, c->r, B, c->d, c->r));
        if (c->have_prev) stale = fmax(stale, proj_overlap(c->prev_down[l], c->r, B, c->d, c->r));
        for (int i = 0; i < c->r; i++) {
            double n2 = 0;
            for (int k = 0; k < c->d; k++) n2 += (double)W[i * c->d + k] * W[i * c->d + k];
            wnorm = fmax(wnorm, sqrt(n2));
        }
        memcpy(c->prev_down[l], W, (size_t)c->r * c->d * sizeof(float));
    }
    if (after < 0)
        printf("update %lld: lr %.2e loss %.4f  B = 0: nothing to project\n", (long long)s->step, s->lr, s->loss);
    else
        printf("update %lld: lr %.2e loss %.4f  max|W_down row| %.3e  overlap before the projection %.3e "
               "(library), after %.3e; stale (last update's W_down vs this B) %.3e\n",
               (long long)s->step, s->lr, s->loss, wnorm, s->joint_overlap, after, stale);
    if (after >= 0) { /* B != 0: the constraint is in force */
        c->n_checked++;
        c->worst_after = fmax(c->worst_after, after);
        c->min_before = fmin(c->min_before, s->joint_overlap);
        c->min_rel_norm = fmin(c->min_rel_norm, wnorm);
        CHECK(after <= TOL_JOINT_STEP, "update %lld: ‖P_B W_down‖ = %.3e after the projection", (long long)s->step,
              after);
        if (stale >= 0) c->min_stale = fmin(c->min_stale, stale);
    }
    c->have_prev = 1;
    return 0;
}

static int stop_at_3(void *ud, const steer_train_step *s)
{
    (void)ud;
    return s->step == 3;
}

int main(void)
{
    omp_set_num_threads(1);
    steer_model *m = NULL;
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.bin", NULL, &m));
    steer_data_params dp = steer_data_default_params();
    dp.n_max = 24;
    steer_dataset *d = NULL;
    CHECK_OK(steer_data_load("winogrande:" STEER_TESTDATA_DIR "/winogrande/dev.jsonl", &dp, &d));
    const steer_model_config *cfg = steer_model_get_config(m);
    static ctx c; /* (large: the previous W_down of every block) */
    c.L = cfg->n_layer, c.d = cfg->d_model, c.r = 8;
    c.min_before = c.min_stale = c.min_rel_norm = INFINITY;
    CHECK(c.L <= MAXL && c.d <= MAXD, "model too large for the test buffers");
    steer_train_params p = steer_train_default_params();
    p.method = "joint";
    p.steps = 7;
    p.batch = 2;
    p.lr = 1e-2;
    p.seed = 11;
    p.on_step = on_step;
    p.on_step_ud = &c;
    steer_train_result r;
    CHECK_OK(steer_train(m, d, NULL, &p, &r));
    printf("joint: %d of %lld updates with B != 0; after the projection max ‖P_B w‖ = %.3e (tol %.0e); "
           "before it (library) >= %.3e; stale >= %.3e; W_down rows up to >= %.3e\n",
           c.n_checked, (long long)r.steps, c.worst_after, TOL_JOINT_STEP, c.min_before, c.min_stale, c.min_rel_norm);
    CHECK(r.steps == 7, "ran %lld updates", (long long)r.steps);
    CHECK(c.n_checked >= 5, "only %d updates had B != 0", c.n_checked);
    /* both would violate the bound: the projection does the work, every update */
    CHECK(c.min_before > 10 * TOL_JOINT_STEP, "before the projection the overlap is already small: %.3e", c.min_before);
    CHECK(c.min_stale > 5 * TOL_JOINT_STEP, "the last update's W_down is already orthogonal to the new B: %.3e",
          c.min_stale);
    /* a non-zero return stops training after that update */
    p.on_step = stop_at_3;
    p.on_step_ud = NULL;
    CHECK_OK(steer_train(m, d, NULL, &p, &r));
    printf("a callback returning 1 at update 3 stopped the run at %lld of %lld\n", (long long)r.steps,
           (long long)r.total_steps);
    CHECK(r.steps == 3 && r.total_steps == 7, "callback stop: %lld of %lld", (long long)r.steps,
          (long long)r.total_steps);
    steer_data_free(d);
    steer_model_free(m);
    return tu_finish("test_train_joint");
}

/*
 * train_optim.c — AdamW, gradient norm/clipping/accumulation, learning-rate
 * schedules and optimizer state files (train_optim.h).
 *
 * Every loop over parameters runs over fixed blocks of TR_BLOCK elements
 * (block b covers [b·TR_BLOCK, (b+1)·TR_BLOCK) of its group), each block in one
 * thread; reductions keep one double partial per block and add them in block
 * order. The results are therefore the same bits for any thread count.
 */
#include "steer_train.h"
#include "train_optim.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Blocks handled per parallel region of a reduction (partials on the stack). */
#define TR_REDUCE_CHUNK 64

static size_t n_blocks(size_t n) { return (n + TR_BLOCK - 1) / TR_BLOCK; }

/* ---------------------------------------------------------------- parameter groups */

tr_group tr_group_make(const char *name, float *param, float *grad, size_t n)
{
    tr_group g;
    g.name = name;
    g.param = param;
    g.grad = grad;
    g.n = n;
    g.lr_mult = 1.0;
    g.decay = 1;
    return g;
}

/* *acc += Σ x² over x[0..n), block partials added in order. */
static void sumsq_acc(const float *x, size_t n, double *acc)
{
    size_t nb = n_blocks(n);
    double part[TR_REDUCE_CHUNK];
    for (size_t b0 = 0; b0 < nb; b0 += TR_REDUCE_CHUNK) {
        long cnt = (long)(nb - b0 < TR_REDUCE_CHUNK ? nb - b0 : TR_REDUCE_CHUNK);
#pragma omp parallel for schedule(static) if (cnt > 1)
        for (long j = 0; j < cnt; j++) {
            size_t lo = (b0 + (size_t)j) * TR_BLOCK;
            size_t hi = lo + TR_BLOCK < n ? lo + TR_BLOCK : n;
            double s = 0.0;
            for (size_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
            part[j] = s;
        }
        for (long j = 0; j < cnt; j++) *acc += part[j];
    }
}

double tr_grad_norm(const tr_group *g, int n_groups)
{
    double s = 0.0;
    for (int k = 0; k < n_groups; k++) sumsq_acc(g[k].grad, g[k].n, &s);
    return sqrt(s);
}

void tr_grad_zero(const tr_group *g, int n_groups)
{
    for (int k = 0; k < n_groups; k++) memset(g[k].grad, 0, g[k].n * sizeof(float));
}

/* x[0..n) *= s, blockwise. */
static void scale_blocks(float *x, size_t n, float s)
{
    long nb = (long)n_blocks(n);
#pragma omp parallel for schedule(static) if (nb > 1)
    for (long b = 0; b < nb; b++) {
        size_t lo = (size_t)b * TR_BLOCK;
        size_t hi = lo + TR_BLOCK < n ? lo + TR_BLOCK : n;
        for (size_t i = lo; i < hi; i++) x[i] *= s;
    }
}

void tr_grad_scale(const tr_group *g, int n_groups, float s)
{
    for (int k = 0; k < n_groups; k++) scale_blocks(g[k].grad, g[k].n, s);
}

int tr_grad_clip(const tr_group *g, int n_groups, double max_norm, double *norm)
{
    if (n_groups < 0 || (n_groups > 0 && !g)) return steer_err(STEER_EARG, "tr_grad_clip: no groups");
    if (!(max_norm >= 0) || isinf(max_norm))
        return steer_err(STEER_EARG, "tr_grad_clip: max_norm %g must be finite and >= 0", max_norm);
    double nrm = tr_grad_norm(g, n_groups);
    if (norm) *norm = nrm;
    if (!isfinite(nrm)) return steer_err(STEER_ENAN, "gradient norm is %g (NaN/Inf in the gradients)", nrm);
    if (max_norm > 0 && nrm > max_norm) tr_grad_scale(g, n_groups, (float)(max_norm / nrm));
    return STEER_OK;
}

/* ---------------------------------------------------------------- schedules */

tr_schedule tr_schedule_default(void)
{
    tr_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = TR_SCHED_LINEAR;
    s.lr = 9e-4;
    s.total_steps = 0;
    s.warmup_steps = -1;
    s.warmup_frac = 0.03;
    s.final_ratio = 0.0;
    return s;
}

int tr_schedule_check(const tr_schedule *s)
{
    if (!s) return steer_err(STEER_EARG, "schedule: NULL");
    if ((int)s->kind < TR_SCHED_CONSTANT || s->kind > TR_SCHED_COSINE)
        return steer_err(STEER_EARG, "schedule: unknown kind %d", (int)s->kind);
    if (!(s->lr > 0) || isinf(s->lr)) return steer_err(STEER_EARG, "schedule: lr %g must be finite and > 0", s->lr);
    if (s->total_steps <= 0)
        return steer_err(STEER_EARG, "schedule: total_steps %lld must be > 0", (long long)s->total_steps);
    if (s->warmup_steps < 0 && !(s->warmup_frac >= 0 && s->warmup_frac <= 1))
        return steer_err(STEER_EARG, "schedule: warmup_frac %g must lie in [0, 1]", s->warmup_frac);
    if (s->warmup_steps > s->total_steps)
        return steer_err(STEER_EARG, "schedule: warmup_steps %lld exceeds total_steps %lld",
                         (long long)s->warmup_steps, (long long)s->total_steps);
    if (!(s->final_ratio >= 0 && s->final_ratio <= 1))
        return steer_err(STEER_EARG, "schedule: final_ratio %g must lie in [0, 1]", s->final_ratio);
    return STEER_OK;
}

int64_t tr_schedule_warmup(const tr_schedule *s)
{
    int64_t T = s->total_steps > 0 ? s->total_steps : 0;
    int64_t W;
    if (s->warmup_steps >= 0) W = s->warmup_steps;
    else {
        double f = s->warmup_frac > 0 ? s->warmup_frac : 0.0;
        W = (int64_t)ceil(f * (double)T - 1e-9);
    }
    if (W < 0) W = 0;
    if (W > T) W = T;
    return W;
}

double tr_schedule_lr(const tr_schedule *s, int64_t t)
{
    if (t < 0) return 0.0;
    int64_t T = s->total_steps;
    int64_t W = tr_schedule_warmup(s);
    if (t < W) return s->lr * (double)(t + 1) / (double)W;
    if (s->kind == TR_SCHED_CONSTANT) return s->lr;
    int64_t span = T - W > 1 ? T - W : 1;
    double p = (double)(t - W) / (double)span;
    double f;
    if (s->kind == TR_SCHED_LINEAR) f = 1.0 - p;
    else f = p >= 1.0 ? 0.0 : 0.5 * (1.0 + cos(M_PI * p));
    if (f < 0) f = 0;
    double r = s->final_ratio;
    return s->lr * (r + (1.0 - r) * f);
}

/* ---------------------------------------------------------------- AdamW */

struct tr_adamw {
    tr_group *g;  /* owned copy [n]; g[k].name points into names[k]     */
    char **names; /* owned [n], each owned                               */
    float **m;    /* owned [n], each owned [g[k].n]                      */
    float **v;    /* owned [n], each owned [g[k].n]                      */
    int n;
    tr_adamw_params p;
    int64_t t; /* updates done                                           */
};

tr_adamw_params tr_adamw_default_params(void)
{
    tr_adamw_params p;
    p.beta1 = 0.9;
    p.beta2 = 0.999;
    p.eps = 1e-8;
    p.weight_decay = 0.0;
    p.clip_norm = 0.0;
    return p;
}

static int check_params(const tr_adamw_params *p)
{
    if (!(p->beta1 >= 0 && p->beta1 < 1)) return steer_err(STEER_EARG, "AdamW: beta1 %g must lie in [0, 1)", p->beta1);
    if (!(p->beta2 >= 0 && p->beta2 < 1)) return steer_err(STEER_EARG, "AdamW: beta2 %g must lie in [0, 1)", p->beta2);
    if (!(p->eps > 0) || isinf(p->eps)) return steer_err(STEER_EARG, "AdamW: eps %g must be finite and > 0", p->eps);
    if (!(p->weight_decay >= 0) || isinf(p->weight_decay))
        return steer_err(STEER_EARG, "AdamW: weight_decay %g must be finite and >= 0", p->weight_decay);
    if (!(p->clip_norm >= 0) || isinf(p->clip_norm))
        return steer_err(STEER_EARG, "AdamW: clip_norm %g must be finite and >= 0", p->clip_norm);
    return STEER_OK;
}

void tr_adamw_free(tr_adamw *o)
{
    /* Ownership: frees o and everything it owns; the groups' arrays stay the
     * caller's. */
    if (!o) return;
    for (int k = 0; k < o->n; k++) {
        if (o->names) free(o->names[k]);
        if (o->m) free(o->m[k]);
        if (o->v) free(o->v[k]);
    }
    free(o->names);
    free(o->m);
    free(o->v);
    free(o->g);
    free(o);
}

int tr_adamw_new(const tr_group *groups, int n_groups, const tr_adamw_params *p, tr_adamw **out)
{
    /* Ownership: copies groups[] and the names; borrows param/grad arrays;
     * *out is owned by the caller. */
    if (!out) return steer_err(STEER_EARG, "tr_adamw_new: out is NULL");
    *out = NULL;
    if (!groups || n_groups <= 0) return steer_err(STEER_EARG, "tr_adamw_new: no parameter groups");
    tr_adamw_params prm = p ? *p : tr_adamw_default_params();
    int rc = check_params(&prm);
    if (rc) return rc;
    for (int k = 0; k < n_groups; k++) {
        const tr_group *g = &groups[k];
        if (!g->name || !*g->name) return steer_err(STEER_EARG, "tr_adamw_new: group %d has no name", k);
        if (!g->param || !g->grad || g->n == 0)
            return steer_err(STEER_EARG, "tr_adamw_new: group %s: NULL param/grad or n = 0", g->name);
        if (g->param == g->grad) return steer_err(STEER_EARG, "tr_adamw_new: group %s: grad aliases param", g->name);
        if (g->n > SIZE_MAX / 2 / sizeof(float))
            return steer_err(STEER_EARG, "tr_adamw_new: group %s is too large", g->name);
        if (!(g->lr_mult > 0) || isinf(g->lr_mult))
            return steer_err(STEER_EARG,
                             "tr_adamw_new: group %s: lr_mult %g must be finite and > 0 (tr_group_make sets 1)",
                             g->name, g->lr_mult);
        for (int j = 0; j < k; j++)
            if (strcmp(groups[j].name, g->name) == 0)
                return steer_err(STEER_EARG, "tr_adamw_new: duplicate group name %s", g->name);
    }
    tr_adamw *o = calloc(1, sizeof *o);
    if (!o) return steer_err(STEER_ENOMEM, "tr_adamw_new: out of memory");
    o->n = n_groups;
    o->p = prm;
    o->g = calloc((size_t)n_groups, sizeof *o->g);
    o->names = calloc((size_t)n_groups, sizeof *o->names);
    o->m = calloc((size_t)n_groups, sizeof *o->m);
    o->v = calloc((size_t)n_groups, sizeof *o->v);
    if (!o->g || !o->names || !o->m || !o->v) {
        tr_adamw_free(o);
        return steer_err(STEER_ENOMEM, "tr_adamw_new: out of memory");
    }
    for (int k = 0; k < n_groups; k++) {
        o->g[k] = groups[k];
        o->names[k] = strdup(groups[k].name);
        o->m[k] = calloc(groups[k].n, sizeof(float));
        o->v[k] = calloc(groups[k].n, sizeof(float));
        if (!o->names[k] || !o->m[k] || !o->v[k]) {
            tr_adamw_free(o);
            return steer_err(STEER_ENOMEM, "tr_adamw_new: out of memory (group %s, %zu elements)", groups[k].name,
                             groups[k].n);
        }
        o->g[k].name = o->names[k];
    }
    *out = o;
    return STEER_OK;
}

int64_t tr_adamw_steps(const tr_adamw *o) { return o ? o->t : 0; }
int tr_adamw_n_groups(const tr_adamw *o) { return o ? o->n : 0; }
const tr_group *tr_adamw_group(const tr_adamw *o, int i) { return o && i >= 0 && i < o->n ? &o->g[i] : NULL; }
const float *tr_adamw_m(const tr_adamw *o, int i) { return o && i >= 0 && i < o->n ? o->m[i] : NULL; }
const float *tr_adamw_v(const tr_adamw *o, int i) { return o && i >= 0 && i < o->n ? o->v[i] : NULL; }

/* The update of one group (see tr_adamw_step), blockwise. */
static void adamw_group(const tr_group *g, float *m, float *v, double b1, double b2, double eps, double step_size,
                        double bc2_sqrt, double decay_f)
{
    long nb = (long)n_blocks(g->n);
    float *param = g->param;
    const float *grad = g->grad;
    size_t n = g->n;
#pragma omp parallel for schedule(static) if (nb > 1)
    for (long b = 0; b < nb; b++) {
        size_t lo = (size_t)b * TR_BLOCK;
        size_t hi = lo + TR_BLOCK < n ? lo + TR_BLOCK : n;
        for (size_t i = lo; i < hi; i++) {
            double gi = grad[i];
            double mi = b1 * (double)m[i] + (1.0 - b1) * gi;
            double vi = b2 * (double)v[i] + (1.0 - b2) * (gi * gi);
            double pi = (double)param[i] * decay_f;
            pi -= step_size * mi / (sqrt(vi) / bc2_sqrt + eps);
            m[i] = (float)mi;
            v[i] = (float)vi;
            param[i] = (float)pi;
        }
    }
}

int tr_adamw_step(tr_adamw *o, double lr, double *grad_norm)
{
    if (!o) return steer_err(STEER_EARG, "tr_adamw_step: NULL optimizer");
    if (!(lr >= 0) || isinf(lr)) return steer_err(STEER_EARG, "tr_adamw_step: lr %g must be finite and >= 0", lr);
    int rc = tr_grad_clip(o->g, o->n, o->p.clip_norm, grad_norm);
    if (rc) return rc;
    int64_t t = o->t + 1;
    double b1 = o->p.beta1, b2 = o->p.beta2;
    double bc1 = 1.0 - pow(b1, (double)t);
    double bc2_sqrt = sqrt(1.0 - pow(b2, (double)t));
    for (int k = 0; k < o->n; k++) {
        const tr_group *g = &o->g[k];
        double lr_g = lr * g->lr_mult;
        double decay_f = g->decay ? 1.0 - lr_g * o->p.weight_decay : 1.0;
        adamw_group(g, o->m[k], o->v[k], b1, b2, o->p.eps, lr_g / bc1, bc2_sqrt, decay_f);
    }
    o->t = t;
    return STEER_OK;
}

/* ---------------------------------------------------------------- state files */

static int meta_double(steer_tensors_writer *w, const char *key, double v)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", v);
    return steer_tensors_writer_meta(w, key, buf);
}

int tr_adamw_write(const tr_adamw *o, steer_tensors_writer *w, int with_params)
{
    /* Ownership: the writer borrows m, v (and the params) until its write. */
    if (!o || !w) return steer_err(STEER_EARG, "tr_adamw_write: NULL optimizer or writer");
    int rc;
    char buf[64];
    if ((rc = steer_tensors_writer_meta(w, "optimizer", "adamw"))) return rc;
    snprintf(buf, sizeof buf, "%lld", (long long)o->t);
    if ((rc = steer_tensors_writer_meta(w, "optimizer.step", buf))) return rc;
    snprintf(buf, sizeof buf, "%d", o->n);
    if ((rc = steer_tensors_writer_meta(w, "optimizer.groups", buf))) return rc;
    if ((rc = meta_double(w, "optimizer.beta1", o->p.beta1))) return rc;
    if ((rc = meta_double(w, "optimizer.beta2", o->p.beta2))) return rc;
    if ((rc = meta_double(w, "optimizer.eps", o->p.eps))) return rc;
    if ((rc = meta_double(w, "optimizer.weight_decay", o->p.weight_decay))) return rc;
    if ((rc = meta_double(w, "optimizer.clip_norm", o->p.clip_norm))) return rc;
    for (int k = 0; k < o->n; k++) {
        const tr_group *g = &o->g[k];
        int64_t shape[1] = {(int64_t)g->n};
        size_t len = strlen(g->name) + 16;
        char *name = malloc(len);
        if (!name) return steer_err(STEER_ENOMEM, "tr_adamw_write: out of memory");
        snprintf(name, len, "adam.m.%s", g->name);
        rc = steer_tensors_writer_add(w, name, STEER_DTYPE_F32, 1, shape, o->m[k]);
        if (!rc) {
            snprintf(name, len, "adam.v.%s", g->name);
            rc = steer_tensors_writer_add(w, name, STEER_DTYPE_F32, 1, shape, o->v[k]);
        }
        if (!rc && with_params) {
            snprintf(name, len, "param.%s", g->name);
            rc = steer_tensors_writer_add(w, name, STEER_DTYPE_F32, 1, shape, g->param);
        }
        free(name);
        if (rc) return rc;
    }
    return STEER_OK;
}

/* The F32 [n] tensor "<prefix><name>" of t, or NULL with the error set. */
static const steer_tensor_info *find_state(const steer_tensors *t, const char *path, const char *prefix,
                                           const tr_group *g, int *rc)
{
    size_t len = strlen(prefix) + strlen(g->name) + 1;
    char *name = malloc(len);
    if (!name) {
        *rc = steer_err(STEER_ENOMEM, "tr_adamw_read: out of memory");
        return NULL;
    }
    snprintf(name, len, "%s%s", prefix, g->name);
    const steer_tensor_info *ti = steer_tensors_find(t, name);
    if (!ti) *rc = steer_err(STEER_EFORMAT, "%s: missing tensor %s", path, name);
    else if (ti->dtype != STEER_DTYPE_F32 || ti->n_dims != 1 || ti->shape[0] != (int64_t)g->n ||
             ti->nbytes != g->n * sizeof(float)) {
        *rc = steer_err(STEER_EFORMAT, "%s: tensor %s is %s with %d dims (shape[0] %lld), expected F32 [%zu]", path,
                        name, steer_dtype_name(ti->dtype), ti->n_dims, ti->n_dims > 0 ? (long long)ti->shape[0] : 0LL,
                        g->n);
        ti = NULL;
    }
    free(name);
    return ti;
}

static int read_meta_double(const steer_tensors *t, const char *path, const char *key, double *out)
{
    const char *s = steer_tensors_meta(t, key);
    if (!s) return steer_err(STEER_EFORMAT, "%s: missing metadata %s", path, key);
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE)
        return steer_err(STEER_EFORMAT, "%s: metadata %s = \"%s\" is not a number", path, key, s);
    *out = v;
    return STEER_OK;
}

int tr_adamw_read(tr_adamw *o, const steer_tensors *t, const char *path, int with_params)
{
    /* Ownership: copies from t into the optimizer (and the params). */
    if (!o || !t) return steer_err(STEER_EARG, "tr_adamw_read: NULL optimizer or file");
    if (!path) path = "optimizer state";
    const char *kind = steer_tensors_meta(t, "optimizer");
    if (!kind || strcmp(kind, "adamw") != 0)
        return steer_err(STEER_EFORMAT, "%s: not an AdamW state (metadata optimizer = %s)", path, kind ? kind : "missing");
    const char *st = steer_tensors_meta(t, "optimizer.step");
    if (!st) return steer_err(STEER_EFORMAT, "%s: missing metadata optimizer.step", path);
    char *end = NULL;
    errno = 0;
    long long step = strtoll(st, &end, 10);
    if (end == st || *end || errno == ERANGE || step < 0)
        return steer_err(STEER_EFORMAT, "%s: metadata optimizer.step = \"%s\" is not a step count", path, st);
    static const char *const keys[3] = {"optimizer.beta1", "optimizer.beta2", "optimizer.eps"};
    const double mine[3] = {o->p.beta1, o->p.beta2, o->p.eps};
    for (int i = 0; i < 3; i++) {
        double v = 0.0;
        int rc = read_meta_double(t, path, keys[i], &v);
        if (rc) return rc;
        if (v != mine[i])
            return steer_err(STEER_EARG, "%s: %s is %.17g but the optimizer has %.17g", path, keys[i], v, mine[i]);
    }
    /* Check every tensor before copying any. */
    int rc = STEER_OK;
    for (int k = 0; k < o->n; k++) {
        if (!find_state(t, path, "adam.m.", &o->g[k], &rc)) return rc;
        if (!find_state(t, path, "adam.v.", &o->g[k], &rc)) return rc;
        if (with_params && !find_state(t, path, "param.", &o->g[k], &rc)) return rc;
    }
    for (int k = 0; k < o->n; k++) {
        const tr_group *g = &o->g[k];
        memcpy(o->m[k], find_state(t, path, "adam.m.", g, &rc)->data, g->n * sizeof(float));
        memcpy(o->v[k], find_state(t, path, "adam.v.", g, &rc)->data, g->n * sizeof(float));
        if (with_params) memcpy(g->param, find_state(t, path, "param.", g, &rc)->data, g->n * sizeof(float));
    }
    o->t = (int64_t)step;
    return STEER_OK;
}

int tr_adamw_save(const tr_adamw *o, const char *path, int with_params)
{
    if (!o || !path) return steer_err(STEER_EARG, "tr_adamw_save: NULL optimizer or path");
    steer_tensors_writer *w = NULL;
    int rc = steer_tensors_writer_new(&w);
    if (!rc) rc = tr_adamw_write(o, w, with_params);
    if (!rc) rc = steer_tensors_writer_write(w, path);
    steer_tensors_writer_free(w);
    return rc;
}

int tr_adamw_load(tr_adamw *o, const char *path, int with_params)
{
    if (!o || !path) return steer_err(STEER_EARG, "tr_adamw_load: NULL optimizer or path");
    steer_tensors *t = NULL;
    int rc = steer_tensors_open(path, &t);
    if (rc) return rc;
    rc = tr_adamw_read(o, t, path, with_params);
    steer_tensors_free(t);
    return rc;
}

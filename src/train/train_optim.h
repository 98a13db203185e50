/*
 * train_optim.h — optimisation for the training engine, independent of the
 * model graph: parameters and gradients are plain named float arrays
 * (parameter groups). Implemented in train_optim.c (AdamW, gradient norm,
 * clipping and accumulation, learning-rate schedules, optimizer state files)
 * and train_log.c (the CSV training log, its loss-curve figure, the progress
 * line).
 *
 * Determinism: every loop over parameters runs on fixed blocks of
 * TR_BLOCK elements (the partition does not depend on the thread count), every
 * element is updated by the same arithmetic, and every reduction adds its
 * per-block partial sums in block order. So results are bitwise the same for
 * any OpenMP thread count, and a run resumed from a state file continues
 * bit for bit as the uninterrupted run would.
 *
 * All functions return STEER_OK or a negative STEER_E* status with a one-line
 * message in steer_last_error(); nothing here prints except tr_progress_print,
 * which the caller invokes explicitly.
 */
#ifndef STEER_TRAIN_OPTIM_H
#define STEER_TRAIN_OPTIM_H

#include "base.h"
#include "steer_train.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Private ABI (the optimizer, used by libsteer-exp): exported from the shared library under
 * steer_-prefixed names (src/base/base.h, "private ABI"). */
#define tr_group_make steer_tr_group_make
#define tr_grad_norm steer_tr_grad_norm
#define tr_grad_zero steer_tr_grad_zero
#define tr_grad_scale steer_tr_grad_scale
#define tr_grad_clip steer_tr_grad_clip
#define tr_schedule_default steer_tr_schedule_default
#define tr_schedule_check steer_tr_schedule_check
#define tr_schedule_warmup steer_tr_schedule_warmup
#define tr_schedule_lr steer_tr_schedule_lr
#define tr_adamw_default_params steer_tr_adamw_default_params
#define tr_adamw_new steer_tr_adamw_new
#define tr_adamw_free steer_tr_adamw_free
#define tr_adamw_step steer_tr_adamw_step
#define tr_adamw_steps steer_tr_adamw_steps
#define tr_adamw_n_groups steer_tr_adamw_n_groups
#define tr_adamw_group steer_tr_adamw_group
#define tr_adamw_m steer_tr_adamw_m
#define tr_adamw_v steer_tr_adamw_v
#define tr_adamw_write steer_tr_adamw_write
#define tr_adamw_read steer_tr_adamw_read
#define tr_adamw_save steer_tr_adamw_save
#define tr_adamw_load steer_tr_adamw_load


/* Elements per block of the parallel loops (fixed: see Determinism). */
#define TR_BLOCK 16384

/* ---------------------------------------------------------------- parameter groups */

/* A view of one trainable array (typically one named tensor of the model).
 * The optimizer borrows the pointers; they must stay valid while it is used. */
typedef struct {
    const char *name; /* unique among the groups; names tensors in state files
                         ("adam.m.<name>"); copied by tr_adamw_new            */
    float *param;     /* [n], updated in place                                */
    float *grad;      /* [n], read (and scaled by clipping)                   */
    size_t n;         /* > 0                                                  */
    double lr_mult;   /* the group's lr = lr · lr_mult; > 0 (leave frozen
                         arrays out of the optimizer instead of using 0)      */
    int decay;        /* 1: decoupled weight decay applies to this group     */
} tr_group;

/* A group with lr_mult 1 and weight decay on. */
STEER_PRIVATE tr_group tr_group_make(const char *name, float *param, float *grad, size_t n);

/* √(Σ over groups and elements of grad²), accumulated in double in a fixed
 * order (groups in order, blocks in order). NaN/Inf propagate. */
STEER_PRIVATE double tr_grad_norm(const tr_group *g, int n_groups);
/* grad ← 0. */
STEER_PRIVATE void tr_grad_zero(const tr_group *g, int n_groups);
/* grad ← s·grad (float product). For gradient accumulation over k
 * micro-batches whose losses are per-micro-batch means, accumulate the k
 * backwards (the op layer's backwards add) and scale by 1/k; for a token mean
 * over the whole accumulated batch of padded sequences instead pass
 * dlosses = 1/N_total (completion tokens of all k micro-batches) to every
 * micro-batch's loss backward and do not scale. */
STEER_PRIVATE void tr_grad_scale(const tr_group *g, int n_groups, float s);
/* Global-norm clipping: *norm (may be NULL) receives tr_grad_norm; if
 * max_norm > 0 and norm > max_norm, every grad is multiplied by the float
 * c = (float)(max_norm / norm). A non-finite norm is STEER_ENAN and leaves the
 * grads unchanged. */
STEER_PRIVATE int tr_grad_clip(const tr_group *g, int n_groups, double max_norm, double *norm);

/* ---------------------------------------------------------------- schedules */

typedef enum {
    TR_SCHED_CONSTANT = 0, /* warm-up, then lr                                 */
    TR_SCHED_LINEAR,       /* warm-up, then linear decay to final_ratio·lr     */
    TR_SCHED_COSINE,       /* warm-up, then half a cosine down to final_ratio·lr */
} tr_sched_kind;

/* The learning rate of update t (t = 0, 1, …: the number of updates done
 * before it; tr_adamw_steps), as transformers' get_{constant,linear,cosine}_
 * schedule_with_warmup compute it, with W warm-up and T total steps, except
 * that warm-up counts the update being made:
 *   t < W:  lr·(t + 1)/W  (update 0 already moves the weights; the Hugging
 *           Face Trainer's lr·t/W spends update 0 at lr 0 — issue 22)
 *   else    lr·(r + (1 − r)·f),  r = final_ratio, p = (t − W)/max(1, T − W),
 *           f = 1 (constant), max(0, 1 − p) (linear),
 *           max(0, ½(1 + cos(π·p))) (cosine); t ≥ T gives r·lr for both decays.
 * W = warmup_steps when >= 0, else ceil(warmup_frac·T) (as the Trainer's
 * warmup_ratio; the product is taken to 1e-9 so 0.03·100 gives 3, not 4). */
typedef struct {
    tr_sched_kind kind;
    double lr;            /* peak learning rate (> 0)                         */
    int64_t total_steps;  /* T, optimizer updates of the whole run (> 0)      */
    int64_t warmup_steps; /* W; < 0: from warmup_frac                         */
    double warmup_frac;   /* in [0, 1]                                        */
    double final_ratio;   /* in [0, 1]                                        */
} tr_schedule;

/* SPEC E4's recipe: linear, lr 9e-4, 3% warm-up, decay to 0. total_steps must
 * still be set. */
STEER_PRIVATE tr_schedule tr_schedule_default(void);
/* STEER_EARG for an invalid schedule (message names the field). */
STEER_PRIVATE int tr_schedule_check(const tr_schedule *s);
/* W (clamped to [0, T]). */
STEER_PRIVATE int64_t tr_schedule_warmup(const tr_schedule *s);
/* The learning rate of update t (see above); a pure function of (s, t).
 * t < 0 gives 0. */
STEER_PRIVATE double tr_schedule_lr(const tr_schedule *s, int64_t t);

/* ---------------------------------------------------------------- AdamW */

/* Hyperparameters; doubles so 0.9 means 0.9 (not 0.9f). */
typedef struct {
    double beta1, beta2, eps; /* 0.9, 0.999, 1e-8                              */
    double weight_decay;      /* 0 (SPEC E4); decoupled: p ← p·(1 − lr·wd)     */
    double clip_norm;         /* > 0: tr_grad_clip to this before the update;
                                 0: no clipping                                */
} tr_adamw_params;

STEER_PRIVATE tr_adamw_params tr_adamw_default_params(void);

typedef struct tr_adamw tr_adamw;

/* An optimizer over groups[0..n_groups) (the array is copied, names too;
 * param/grad arrays are borrowed). m and v start at zero, step count 0.
 * On success *out is owned by the caller (tr_adamw_free). */
STEER_PRIVATE int tr_adamw_new(const tr_group *groups, int n_groups, const tr_adamw_params *p, tr_adamw **out);
STEER_PRIVATE void tr_adamw_free(tr_adamw *o);

/* One update with learning rate lr (e.g. tr_schedule_lr(s, tr_adamw_steps(o))),
 * as torch.optim.AdamW computes it, per element in double:
 *   t ← t + 1;  lr_g = lr·lr_mult;  p ← p·(1 − lr_g·wd)  (groups with decay)
 *   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
 *   p ← p − (lr_g/(1 − β1^t))·m / (√v/√(1 − β2^t) + ε)
 * m, v and p are stored as float. With clip_norm > 0 the grads are clipped
 * first (tr_grad_clip). *grad_norm (may be NULL) receives the global gradient
 * norm before clipping. A non-finite gradient norm is STEER_ENAN and changes
 * nothing (no update, step count unchanged). */
STEER_PRIVATE int tr_adamw_step(tr_adamw *o, double lr, double *grad_norm);

STEER_PRIVATE int64_t tr_adamw_steps(const tr_adamw *o); /* updates done                     */
STEER_PRIVATE int tr_adamw_n_groups(const tr_adamw *o);
STEER_PRIVATE const tr_group *tr_adamw_group(const tr_adamw *o, int i); /* NULL out of range */
STEER_PRIVATE const float *tr_adamw_m(const tr_adamw *o, int i);        /* [n] of group i    */
STEER_PRIVATE const float *tr_adamw_v(const tr_adamw *o, int i);

/* ---------------------------------------------------------------- state files */

/* State layout (safetensors): tensors "adam.m.<name>", "adam.v.<name>" (F32,
 * [n]) per group and, with with_params, "param.<name>" (F32, [n]); metadata
 * "optimizer" = "adamw", "optimizer.step" (decimal), "optimizer.beta1",
 * "optimizer.beta2", "optimizer.eps", "optimizer.weight_decay",
 * "optimizer.clip_norm" (%.17g), "optimizer.groups" (count). Floats are stored
 * bit for bit. */

/* Adds the state to w (tensors borrow the optimizer's and the groups' arrays:
 * write before the next update). The caller may add its own tensors and
 * metadata (model weights, data position, seed, …) to the same file. */
STEER_PRIVATE int tr_adamw_write(const tr_adamw *o, steer_tensors_writer *w, int with_params);
/* Restores the state from an open file (path names it in messages): every
 * group must be there with its shape (extra tensors are ignored). Checks
 * everything before changing anything: on failure the optimizer (and the
 * params) are unchanged. β1, β2 and ε must equal the optimizer's (they give
 * m and v their meaning; STEER_EARG otherwise); weight decay and clipping may
 * change on resume. */
STEER_PRIVATE int tr_adamw_read(tr_adamw *o, const steer_tensors *t, const char *path, int with_params);
/* Convenience: tr_adamw_write to a new file at path (atomic), and
 * steer_tensors_open + tr_adamw_read. */
STEER_PRIVATE int tr_adamw_save(const tr_adamw *o, const char *path, int with_params);
STEER_PRIVATE int tr_adamw_load(tr_adamw *o, const char *path, int with_params);

/* ---------------------------------------------------------------- CSV log (train_log.c) */

/* A training log: CSV with the header
 *   step,lr,loss,grad_norm,<eval names…>,tokens_per_s
 * and one row per tr_log_row. step is the number of updates done (the
 * optimizer's step count after the update the row describes). Numbers are
 * written with %.9g (steps as integers); NaN is written as an empty cell
 * (e.g. eval columns of steps without an evaluation, the loss of a row that
 * only reports an evaluation). Every row is flushed, so after a crash the file
 * holds every completed row (and at most one partial line, which a resume
 * drops). */
typedef struct tr_log tr_log;

/* Opens the log at path. eval_names (n_eval >= 0; names of [A-Za-z0-9_.-]) are
 * the evaluation columns.
 *   resume_step < 0: a new log; an existing file is replaced (atomically).
 *   resume_step >= 0: continue the log of the run whose checkpoint was taken
 *     at that step: the header must be the same (else STEER_EFORMAT), rows
 *     with step > resume_step and a partial last line are dropped (the file
 *     is rewritten atomically), and new rows are appended. A missing file
 *     starts a new log.
 * On success *out is owned by the caller (tr_log_close). */
int tr_log_open(const char *path, const char *const *eval_names, int n_eval, int64_t resume_step, tr_log **out);
/* Appends a row and flushes it. eval: [n_eval] or NULL (no evaluation). */
int tr_log_row(tr_log *l, int64_t step, double lr, double loss, double grad_norm, const double *eval,
               double tokens_per_s);
/* Closes the log (fsync) and frees l; returns the status of the final flush. */
int tr_log_close(tr_log *l);

/* Writes the loss curve of a CSV log (tr_log's format) as a figure (plot.h;
 * PNG or SVG by out_path's extension): panel "loss" with the training loss
 * and every eval column whose name contains "loss"; panel "eval" with the
 * other eval columns (if any); panel "learning rate". title may be NULL. */
int tr_log_plot(const char *csv_path, const char *out_path, const char *title);

/* ---------------------------------------------------------------- progress line */

/* Formats "step 120/1000 (12.0%)  loss 1.2345  lr 9.00e-04  1523 tok/s
 * 0:01:05 < 0:08:01" into buf (NaN values and total <= 0 leave their parts out).
 * Returns the length snprintf would write. */
int tr_progress_format(char *buf, size_t size, int64_t step, int64_t total, double loss, double lr,
                       double tokens_per_s, double elapsed_s);
/* Prints that line to f: with tty, "\r<line>\033[K" without a newline (the
 * line is redrawn in place; finish with tr_progress_end), else "<line>\n".
 * Whether to call it at all (e.g. only when isatty(fileno(stderr)) or when
 * asked for) is the caller's decision. */
void tr_progress_print(FILE *f, int tty, int64_t step, int64_t total, double loss, double lr, double tokens_per_s,
                       double elapsed_s);
/* Ends an in-place progress line (a newline when tty). */
void tr_progress_end(FILE *f, int tty);

#endif /* STEER_TRAIN_OPTIM_H */

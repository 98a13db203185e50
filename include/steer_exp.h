/*
 * steer_exp.h — the experiment tier of libsteer (libsteer-exp): the oracle ΔKL
 * sweep (SPEC E1), MLP modulation and attenuation (E2), in-context learning
 * as steering and compression (E3), and reports.
 * Conventions as in steer.h (status codes, steer_last_error, ownership in
 * every prototype).
 */
#ifndef STEER_EXP_H
#define STEER_EXP_H

#include "steer_train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- oracle ΔKL sweep (SPEC E1) */
/* BEGIN sweep section (src/sweep.c; docs/SWEEP.md) */

/* For every item, with s = p ⊕ c (prompt p, continuation c of K tokens),
 * base model B and fine-tuned model F: the oracle δ_l[t] = act_F(site, l)[t]
 * − act_B(site, l)[t]; for each (site, l, α), B is run on s with
 * act(site, l)[t] += α·δ_l[t] at the chosen positions, at layer l only, and
 * ΔKL_k = KL(P_S,k ‖ P_F,k) − KL(P_B,k ‖ P_F,k) at the positions predicting
 * c_1 … c_K (double precision, natural log). The engine reuses B's own run
 * below the steered point and runs the α values as one batch; the naive
 * path (one full forward per (site, layer, α)) gives the same numbers. */

typedef enum {
    STEER_SWEEP_CONT_FT = 0, /* F's greedy continuation of the prompt (stops
                                early at BOS/EOS, so an item may have < K)  */
    STEER_SWEEP_CONT_GOLD,   /* the first K tokens of the gold completion   */
} steer_sweep_cont;

/* Which positions of s a sweep steers (steer_sweep_params.positions): one of
 * STEER_POS_ALL (every position of s), STEER_POS_PROMPT (the prompt's) and
 * STEER_POS_GENERATED (the continuation's, c_1 … c_{K−1}: the position
 * predicting c_1 is the prompt's last, so token 1 is never moved). Files name
 * them "all", "prompt", "continuation" (steer_sweep_pos_name). */

STEER_API const char *steer_sweep_cont_name(steer_sweep_cont c); /* "ft", "gold" (static)  */
STEER_API const char *steer_sweep_pos_name(steer_pos_kind p);   /* "all", "prompt", "continuation" */

#define STEER_SWEEP_MAX_LAYERS 512
#define STEER_SWEEP_MAX_ALPHAS 64
#define STEER_SWEEP_MAX_TOKENS 64

/* One finished item, handed to on_item. Every pointer is valid only during
 * the call. */
typedef struct {
    int item;                 /* index of the item in the dataset            */
    const char *id;           /* its id                                       */
    int n_prompt;             /* positions of the prompt (with BOS; gold: the
                                 tokens shared with prompt ⊕ completion)     */
    int n_tokens;             /* K' <= K continuation tokens scored          */
    const int *tokens;        /* [n_tokens] c_1 … c_K'                        */
    const double *kl_base;    /* [K] KL(P_B,k ‖ P_F,k); NAN for k >= K'       */
    const double *kl_steered; /* [n_sites, n_layers, n_alphas, K] (row-major)
                                 KL(P_S,k ‖ P_F,k); NAN for k >= K'           */
} steer_sweep_item;

typedef struct {
    int n_sites;                                /* default 4: mlp_in, attn_out, mlp_out, resid_post */
    steer_site sites[STEER_SITE_COUNT];
    int n_layers;                               /* 0 (default): every layer    */
    int layers[STEER_SWEEP_MAX_LAYERS];         /* ascending, distinct         */
    int n_alphas;                               /* default 5: 0, 0.1, 0.25, 0.5, 1 */
    float alphas[STEER_SWEEP_MAX_ALPHAS];
    int tokens;                                 /* K (default 5)               */
    steer_sweep_cont continuation;              /* default FT                  */
    steer_pos_kind positions;                  /* default ALL                 */
    int delta_site;   /* -1 (default): each site's own oracle δ; else take
                         every δ at this steer_site (same width), e.g. steer
                         resid_mid with the attn_out δ                        */
    int shard_index, shard_count; /* items with index % count == index
                                     (default 0, 1)                           */
    const unsigned char *skip;    /* [dataset items] nonzero: already done, not
                                     run (resume); NULL = none. Borrowed.     */
    int n_threads;    /* items run in parallel on this many threads (each
                         with its own contexts); 0 = OpenMP default. The
                         numbers do not depend on it.                         */
    int naive;        /* 1: one full forward per (site, layer, α)             */
    /* Called once per finished item, serialised, in completion order. A
     * return > 0 stops the sweep (items in flight finish and are reported)
     * and steer_sweep_run returns it; < 0 is an error (its message kept). */
    int (*on_item)(void *ud, const steer_sweep_item *it);
    void *ud;
    /* Optional item source for dynamic work sharing (e.g. over MPI: `steer
     * sweep --mpi`). NULL (default): every item of the shard minus skip, in
     * any order. Set: each worker thread asks it for its next item, in turn
     * (calls are serialised, never concurrent with each other), and runs the
     * dataset index it returns — one of the shard's items not in skip, each
     * at most once (STEER_EARG otherwise) — until it returns -1. It may block
     * (waiting for a coordinator); on_item calls go on meanwhile. */
    int (*next_item)(void *ud);
} steer_sweep_params;

STEER_API steer_sweep_params steer_sweep_default_params(void);

/* Checks that B and F have the same architecture (arch, layers, widths,
 * heads, vocabulary) and the same tokenizer (every piece, BOS, EOS), and the
 * parameters against them; fills p->layers when n_layers is 0. STEER_EARG
 * with one line ("models differ: d_model 64 (base) vs 128 (fine-tuned)",
 * "sweep: alpha nan is not finite", "sweep: shard 4/4: need 0 <= index <
 * count"). Alphas of -0 become 0. */
STEER_API int steer_sweep_check(const steer_model *base, const steer_model *ft, steer_sweep_params *p);

/* Runs the sweep over the dataset's items (those of the shard, minus
 * p->skip), calling p->on_item for each. Items whose prompt + K does not fit
 * the context, or (gold) have no completion, are errors naming the file and
 * line. The models are only read (contexts are the sweep's own). */
STEER_API int steer_sweep_run(steer_model *base, steer_model *ft, const steer_dataset *d, const steer_sweep_params *p);

/* The mean oracle δ per (site, layer) over the items (of p's shard; p->skip
 * is ignored) and their steered positions (p->positions): tensor
 * <site>.<layer> [width] of a new vector set (caller frees), the δ taken at
 * p->delta_site when set. Runs only the unsteered passes (F's continuation,
 * F and B on s), items in order. STEER_EARG when no position is left. */
STEER_API int steer_sweep_mean_delta(steer_model *base, steer_model *ft, const steer_dataset *d, const steer_sweep_params *p,
                           steer_vecset **out);

/* Results on disk (docs/SWEEP.md): a table of per-item results with the
 * settings that made them, written as DIR/items.csv, DIR/dkl.csv and
 * DIR/summary.json, and a resume journal DIR/progress.jsonl. */
typedef struct {
    const char *base_path, *ft_path; /* as given; base/ft columns are the
                                        basenames without extension        */
    const char *data;                /* dataset spec as given              */
    const char *command;             /* the command line (may be NULL)     */
    const char *arch;                /* architecture name                  */
    int n_layers, d_model;           /* of the models                      */
    int n_data;                      /* items in the dataset               */
} steer_sweep_info;

typedef struct steer_sweep_table steer_sweep_table;

/* A table for results of a sweep with params p (resolved by
 * steer_sweep_check: layers listed). Strings are copied. Caller frees. */
STEER_API int steer_sweep_table_new(const steer_sweep_params *p, const steer_sweep_info *info, steer_sweep_table **out);
STEER_API void steer_sweep_table_free(steer_sweep_table *t);
/* Copies a finished item in. STEER_EARG if it is out of range, outside the
 * table's shard or already there. */
STEER_API int steer_sweep_table_add(steer_sweep_table *t, const steer_sweep_item *it);
STEER_API int steer_sweep_table_count(const steer_sweep_table *t); /* items held        */
/* [n_data] 1 = the item is held (pass as steer_sweep_params.skip). Valid
 * until the table changes or is freed. */
STEER_API const unsigned char *steer_sweep_table_done(const steer_sweep_table *t);
/* The settings the table was made with (valid until freed). */
STEER_API const steer_sweep_params *steer_sweep_table_params(const steer_sweep_table *t);
/* Aggregate of cell (site index, layer index, alpha index, token k 0-based)
 * over the items held, in item order: mean and standard error (sample std
 * / √n, 0 when n = 1) of ΔKL, and n (items with a k-th token). */
STEER_API void steer_sweep_table_cell(const steer_sweep_table *t, int si, int li, int ai, int k, double *mean, double *se,
                            int *n);
/* Writes DIR/items.csv, DIR/dkl.csv and DIR/summary.json (each atomically;
 * DIR is created if missing). wall_s goes into the summary. */
STEER_API int steer_sweep_table_write(const steer_sweep_table *t, const char *dir, double wall_s);
/* Reads a finished sweep's DIR/summary.json and DIR/items.csv. Errors name
 * the file and line. */
STEER_API int steer_sweep_table_read(const char *dir, steer_sweep_table **out);
/* Combines shard tables (settings equal but for the shard; shards i/n for
 * every i exactly once) into the table one unsharded run gives. command
 * (may be NULL) is recorded. */
STEER_API int steer_sweep_table_merge(steer_sweep_table *const *parts, int n, const char *command, steer_sweep_table **out);

/* Attaches the journal DIR/progress.jsonl to the table: finished items
 * recorded there by an interrupted run with the same settings are read into
 * the table (*n_read of them; a torn last line is dropped from the file),
 * and steer_sweep_journal_append adds new ones. Without a journal nothing is
 * created until the first append (DIR included), so a run that fails before
 * any item finishes leaves nothing. A journal written with other settings is
 * STEER_EARG naming the file and the first setting that differs. */
STEER_API int steer_sweep_journal_open(steer_sweep_table *t, const char *dir, int *n_read);
/* Adds the item to the table and appends it to the journal as one line
 * (numbers that read back exactly), flushed to disk (fsync) before
 * returning. */
STEER_API int steer_sweep_journal_append(steer_sweep_table *t, const steer_sweep_item *it);

/* END sweep section */

/* ---------------------------------------------------------------- in-context learning as steering (SPEC E3) */
/* BEGIN icl section (src/icl.c; docs/ICL.md) */

/* A context C (tokens, BOS first when the model has one) and queries q. The
 * zero-shot run is [BOS] ⊕ q at positions 0..; the ICL run is C ⊕ q (q's
 * tokens follow C's, no second BOS). "Query rows" are the rows of the
 * zero-shot sequence; row j >= 1 (the query's own tokens) corresponds to
 * position |C| + j − 1 of the ICL run and row 0 (the shared BOS) to position
 * 0, where both runs are identical. Δ_A,l = attn_out(C ⊕ q, l) −
 * attn_out(q, l) at the query's own rows. A query with a completion is
 * teacher-forced: q = prompt ⊕ the completion's tokens (as steer train
 * tokenizes them). KL(P‖Q) = Σ P·log(P/Q) in double, natural log. */

typedef enum {
    STEER_ICL_SCORE_ANSWER = 0, /* the rows that predict the completion's tokens
                                   (queries need a completion)                 */
    STEER_ICL_SCORE_ALL,        /* every query row but the shared BOS          */
} steer_icl_score;

STEER_API const char *steer_icl_score_name(steer_icl_score s); /* "answer", "all" (static) */

typedef struct steer_icl steer_icl;

/* A context of n_ctx tokens (copied; ctx[0] must be BOS when the model has
 * one, and there must be at least one token after it). Borrows m (which must
 * outlive e). n_threads 0 = OpenMP default. STEER_ECONTEXT "context is N
 * tokens but the model's context window holds W" when it leaves no room. */
STEER_API int steer_icl_new(steer_model *m, const int *ctx, int n_ctx, int n_threads, steer_icl **out);
/* The same from text (tokenized with BOS). */
STEER_API int steer_icl_new_text(steer_model *m, const char *context, int n_threads, steer_icl **out);
STEER_API void steer_icl_free(steer_icl *e);

STEER_API int steer_icl_context_len(const steer_icl *e); /* tokens of C, with its BOS           */
/* Memory of the context's own KV cache, 2·L·(|C| − BOS)·n_kv·head_dim·4 bytes,
 * and of one float vector per layer, L·d_model·4 bytes. */
STEER_API size_t steer_icl_kv_bytes(const steer_icl *e);
STEER_API size_t steer_icl_vec_bytes(const steer_icl *e);

/* Adds a query: prompt (required), completion (NULL: none; then score must
 * be ALL), choices[n_choices] and label (for accuracy; n_choices 0: none).
 * id names it in messages (NULL: its index). Runs the ICL and the zero-shot
 * runs once: keeps the ICL logits at the scored rows and attn_out at every
 * layer and query row, and adds the query to the Δ_A sums. STEER_ECONTEXT
 * "query <id>: context + query + answer is N tokens but the model's context
 * window holds W"; STEER_EARG for an empty query or completion. Strings are
 * copied. */
STEER_API int steer_icl_add_query(steer_icl *e, const char *id, const char *prompt, const char *completion,
                        const char *const *choices, int n_choices, int label, steer_icl_score score);
/* Adds items first..first+n−1 of d (n < 0: to the end) as queries. */
STEER_API int steer_icl_add_dataset(steer_icl *e, const steer_dataset *d, int first, int n, steer_icl_score score);
STEER_API int steer_icl_n_queries(const steer_icl *e);
STEER_API int steer_icl_n_scored(const steer_icl *e, int q); /* scored rows of query q  */
STEER_API int steer_icl_label(const steer_icl *e, int q);    /* -1: none               */
STEER_API const char *steer_icl_query_id(const steer_icl *e, int q);
/* The zero-shot sequence of query q ([BOS] ⊕ q, teacher-forced completion
 * included), [*n] tokens; valid until steer_icl_free. NULL out of range. */
STEER_API const int *steer_icl_query_tokens(const steer_icl *e, int q, int *n);

/* E3(a). Runs query q alone with attn_out at the chosen layers (layers
 * [n_layer] nonzero = patched; NULL = every layer) replaced at every query
 * row by its value in the ICL run. *kl (may be NULL) = mean over the scored
 * rows of KL(patched ‖ ICL). *max_abs (may be NULL) = max |logit difference|
 * between the patched and the ICL run over every query row and the whole
 * vocabulary (the ICL run is recomputed for it); with every layer patched it
 * is 0 up to rounding (the only path from C to the query is attention). */
STEER_API int steer_icl_patch(steer_icl *e, int q, const unsigned char *layers, double *kl, double *max_abs);

/* E3(c). Runs query q alone with alpha·vs added (STEER_ADD at every position,
 * as steer_vecset_apply; vs NULL = zero-shot) and writes the mean over the
 * scored rows of KL(steered ‖ ICL) to *kl and, when kl_rows is not NULL, each
 * row's value to kl_rows[steer_icl_n_scored(e, q)]. */
STEER_API int steer_icl_kl(steer_icl *e, int q, const steer_vecset *vs, float alpha, double *kl, double *kl_rows);

typedef enum {
    STEER_ICL_RUN_ZERO = 0, /* q alone (with vs: steered)                      */
    STEER_ICL_RUN_CONTEXT,  /* C ⊕ q                                           */
} steer_icl_run;

/* Greedy answer to query q's prompt: K tokens (the longest of the completion
 * and the choices), with the context or alone (+ alpha·vs when vs is not
 * NULL). *pick = the first choice the decoded text starts with, -1 none;
 * *text (may be NULL) malloc'd. */
STEER_API int steer_icl_answer(steer_icl *e, int q, steer_icl_run run, const steer_vecset *vs, float alpha, int *pick,
                     char **text);

/* E3(b). Δ_A,l (mean over every query's own rows, sums in double) as a new
 * vector set: attn_out.<l> [d_model] for every layer; metadata method
 * "icl-mean", site, model_hint (the architecture), n_queries, n_positions,
 * context_tokens. Caller frees. STEER_EARG without queries. */
STEER_API int steer_icl_mean_delta(const steer_icl *e, steer_vecset **out);

/* E3(d). Learned compression: the attn_out vectors of vs (every layer; a
 * missing one starts at 0) are trained with the training engine (method
 * vector at attn_out, every layer and position, AdamW, linear schedule) to
 * minimise KL(steered ‖ ICL) over the scored rows of e's queries (mean over
 * the rows of a batch), and written back into vs. */
typedef struct {
    int steps;     /* optimizer updates (default 100)                          */
    int batch;     /* queries per update (default 8)                           */
    double lr;     /* peak learning rate (default 1e-2)                        */
    double warmup; /* warm-up share (default 0.03)                             */
    uint64_t seed; /* query order (default 1)                                  */
    int (*on_step)(void *ud, int step, int total, double loss); /* may be NULL;
                      non-zero stops training there                          */
    void *ud;
} steer_icl_learn_params;

STEER_API steer_icl_learn_params steer_icl_learn_default_params(void);

typedef struct {
    int steps;                       /* updates done                           */
    double loss_before, loss_after;  /* the objective over every query of e
                                        (mean over all scored rows), before and
                                        after training                        */
} steer_icl_learn_result;

STEER_API int steer_icl_learn(steer_icl *e, steer_vecset *vs, const steer_icl_learn_params *p, steer_icl_learn_result *res);

/* The whole experiment (steer icl): context = `shots` demonstrations from
 * pool (the order of steer_data_fewshot with seed; each tokenized on its own
 * so it starts like a query does); held-out queries = the first n_eval items
 * of queries that are not demonstrations (and fit the window after C: the
 * others are skipped and counted), training queries = the next n_train.
 * Runs (a) on every held-out query with per-layer patches, (b) on the
 * training queries, (c) and (d) evaluated on the held-out ones, and writes
 * into out_dir: icl.csv, icl_layers.csv, items_icl.csv, summary_icl.json,
 * mean_delta.safetensors, learned.safetensors (with learn.steps > 0),
 * kl_to_icl.png/svg, recovery_by_layer.png/svg (docs/ICL.md). */
typedef struct {
    int shots;             /* demonstrations (default 4)                         */
    uint64_t seed;         /* picks them (default 0)                             */
    int max_shot_tokens;   /* > 0: only demonstrations of at most this many
                              tokens (the first `shots` such of the seed's
                              permutation; 0 = any: steer_data_fewshot's)      */
    int n_eval, n_train;   /* default 64, 128                                    */
    steer_icl_score score; /* default ANSWER                                     */
    float alpha;           /* (c): α·Δ_A (default 1)                             */
    steer_icl_learn_params learn; /* (d); learn.steps 0 skips it                 */
    int n_threads;
    const char *model_path, *data_spec, *pool_spec, *command; /* recorded      */
    /* Progress (may be NULL): stage name, done, total. */
    void (*on_progress)(void *ud, const char *stage, int done, int total);
    void *ud;
} steer_icl_exp_params;

STEER_API steer_icl_exp_params steer_icl_exp_default_params(void);

typedef struct {
    int context_tokens, n_eval, n_train;
    int n_skipped;                         /* queries for which C ⊕ q (+ answer)
                                              does not fit the window         */
    size_t kv_bytes, vec_bytes;
    double exact_max_abs;                  /* (a): max over held-out queries   */
    double kl_zero, kl_mean, kl_learned;   /* mean KL(· ‖ ICL), held-out       */
    double acc_zero, acc_icl, acc_mean, acc_learned; /* held-out, NaN: no choices */
    double learn_before, learn_after;      /* (d) training objective           */
} steer_icl_exp_result;

STEER_API int steer_icl_experiment(steer_model *m, const steer_dataset *queries, const steer_dataset *pool,
                         const steer_icl_exp_params *p, const char *out_dir, steer_icl_exp_result *res);

/* steer_icl_experiment in steps, for sharing the held-out queries' passes
 * over processes (steer icl --mpi). steer_icl_experiment is: a job with
 * lead = 1, steer_icl_job_train, then for every held-out query i
 * steer_icl_job_run into a record and steer_icl_job_put, then
 * steer_icl_job_finish. A job picks the context and the queries
 * (tokenizing only); the lead's steer_icl_job_train runs the training
 * queries, (b) and (d). Other processes (lead = 0) take the lead's vectors
 * (steer_icl_job_vectors → steer_icl_job_set_vectors) and only run held-out
 * queries: the ICL and zero-shot runs, (a) every layer and each layer
 * patched, (c)/(d) KL and the greedy answers. A record holds the query's
 * numbers bit for bit; the lead sums them in query order, so the files do
 * not depend on which process ran a query or in which order records were
 * put (records are exchanged only between processes of one build on one
 * byte order). The job borrows m, the datasets and the strings of p.
 * steer_icl_job_run and steer_icl_job_put may run on two threads at once
 * (never two runs or two puts); p->on_progress is called by train
 * ("queries", "learn") and by put ("evaluate"). */
typedef struct steer_icl_job steer_icl_job;
STEER_API int steer_icl_job_new(steer_model *m, const steer_dataset *queries, const steer_dataset *pool,
                                const steer_icl_exp_params *p, int lead, steer_icl_job **out);
STEER_API void steer_icl_job_free(steer_icl_job *x);
STEER_API int steer_icl_job_items(const steer_icl_job *x);                  /* held-out queries */
STEER_API const char *steer_icl_job_item_id(const steer_icl_job *x, int i); /* query i's id     */
/* The lead, once: the training queries' runs, Δ_A (b) and the learned
 * vectors (d). */
STEER_API int steer_icl_job_train(steer_icl_job *x);
STEER_API size_t steer_icl_job_record_size(const steer_icl_job *x, int i);
/* The lead's vectors (after train): Δ_A and (learn.steps > 0) the learned ones, each
 * [n_layer·d_model] floats, layer-major; learned may be NULL. */
STEER_API int steer_icl_job_vectors(const steer_icl_job *x, float *mean, float *learned);
/* A job with lead = 0: the lead's vectors, before steer_icl_job_run. */
STEER_API int steer_icl_job_set_vectors(steer_icl_job *x, const float *mean, const float *learned);
/* Runs held-out query i into rec [n = its record size]. */
STEER_API int steer_icl_job_run(steer_icl_job *x, int i, void *rec, size_t n);
/* The lead: copies a record in. STEER_EFORMAT for a wrong size, STEER_EARG
 * for a query put twice. */
STEER_API int steer_icl_job_put(steer_icl_job *x, int i, const void *rec, size_t n);
/* The lead, once every held-out query is put: aggregates and writes out_dir
 * as steer_icl_experiment. */
STEER_API int steer_icl_job_finish(steer_icl_job *x, const char *out_dir, steer_icl_exp_result *res);

/* END icl section */

/* ---------------------------------------------------------------- MLP modulation and attenuation (SPEC E2) */
/* BEGIN mlp analysis section (src/mlp_analysis.c; docs/ANALYSIS.md) */

/* The MLP branch of block `layer` as a function of the activation at a
 * pre-MLP site, in double precision (weights widened from the model's):
 *   site attn_out: x = resid_mid (a shift at attn_out is a shift of
 *                  resid_mid), h = RMSNorm_pre_mlp(x)
 *   site mlp_in:   x = mlp_in, h = x (the norm stage is the identity)
 *   MLP(x) = W_d·(φ(a_g) ⊙ a_u), a_g = W_g·h, a_u = W_u·h; Gemma 2/3: the
 *   post-ffn RMSNorm of that (the sandwich norm belongs to the branch).
 * A shift δ changes the branch by MLP(x + δ) − MLP(x); to first order by
 * gated + ungated (SPEC E2):
 *   Δ̂       = J_norm(x)·δ               (norm stage; mlp_in: Δ̂ = δ)
 *   gated   = W_d[g1 ⊙ (W_g·Δ̂)],  g1 = φ'(a_g) ⊙ a_u
 *   ungated = W_d[g2 ⊙ (W_u·Δ̂)],  g2 = φ(a_g)
 * (Gemma 2/3: each path times J_post, the post-ffn norm's Jacobian at
 * W_d·m, so gated + ungated is always the whole first-order change). */
typedef struct steer_mlp_branch steer_mlp_branch;

/* Copies layer `layer`'s MLP weights in double. STEER_EUNSUPPORTED
 * ("…: layer 3's MLP is not gated …") when the block has no gate
 * projection, STEER_EARG for a layer out of range. Caller frees. */
STEER_API int steer_mlp_branch_new(const steer_model *m, int layer, steer_mlp_branch **out);
STEER_API void steer_mlp_branch_free(steer_mlp_branch *b);

/* y[d_model] = MLP(x[d_model]) for site attn_out or mlp_in (else STEER_EARG). */
STEER_API int steer_mlp_branch_forward(const steer_mlp_branch *b, steer_site site, const double *x, double *y);

/* The first-order change of the branch at x along delta, stage by stage.
 * Every pointer is the caller's and may be NULL (not written). */
typedef struct {
    double *dhat;            /* [d_model] Δ̂ = J_norm·δ                        */
    double *wg, *wu;         /* [d_ff] W_g·Δ̂ and W_u·Δ̂                         */
    double *g1, *g2;         /* [d_ff] φ'(a_g)⊙a_u and φ(a_g) at x             */
    double *dm;              /* [d_ff] g1⊙(W_g·Δ̂) + g2⊙(W_u·Δ̂): mlp_act's change */
    double *gated, *ungated; /* [d_model] the two paths                        */
} steer_mlp_jvp;
STEER_API int steer_mlp_branch_jvp(const steer_mlp_branch *b, steer_site site, const double *x, const double *delta,
                         const steer_mlp_jvp *out);

/* Stages of the attenuation analysis, in the order the signal passes them
 * (norm: x → h; in: h → (a_g, a_u); gate: (a_g, a_u) → m; down: m → W_d·m;
 * post: W_d·m → the post-ffn norm's output). Two gains per stage:
 *   abs_gain = ‖Δout‖/‖Δin‖ (the first-order shift's norm after / before:
 *              δ, Δ̂, (W_g·Δ̂, W_u·Δ̂), Δm, W_d·Δm, gated + ungated);
 *   gain     = (‖Δout‖/‖out‖) / (‖Δin‖/‖in‖), the change of the shift's size
 *              relative to the unperturbed activation it rides on (in/out:
 *              x, h, (a_g, a_u), m, W_d·m, the branch output).
 * Below 1 the stage shrinks the signal. */
enum {
    STEER_MLP_STAGE_NORM = 0, /* pre-MLP RMSNorm (1 at mlp_in)                */
    STEER_MLP_STAGE_IN,       /* W_g, W_u                                     */
    STEER_MLP_STAGE_GATE,     /* φ(a_g) ⊙ a_u (the modulation g1, g2)         */
    STEER_MLP_STAGE_DOWN,     /* W_d                                          */
    STEER_MLP_STAGE_POST,     /* post-ffn RMSNorm (Gemma 2/3; else NaN)       */
    STEER_MLP_N_STAGES
};
STEER_API const char *steer_mlp_stage_name(int stage); /* "norm", "in", "gate", "down", "post" */

#define STEER_MLP_N_ALPHAS 4 /* linearisation error at α = 1, 0.5, 0.25, 0.125 */
extern const double steer_mlp_alphas[STEER_MLP_N_ALPHAS];

/* One (model, site, layer) of the attenuation analysis: means over the
 * analysed positions (arithmetic for norms, errors and alignment, geometric
 * for the ratios and gains). */
typedef struct {
    char model[128];
    steer_site site;
    int layer;
    int n;                      /* positions                                   */
    double delta, dhat;         /* ‖δ‖, ‖Δ̂‖                                     */
    double wg, wu, dm;          /* ‖W_g·Δ̂‖, ‖W_u·Δ̂‖, ‖Δm‖                         */
    double gated, ungated;      /* ‖gated‖, ‖ungated‖                           */
    double first, actual;       /* ‖gated + ungated‖, ‖MLP(x + δ) − MLP(x)‖     */
    double norm_ratio;          /* ‖Δ̂‖/‖δ‖ (norm attenuation)                   */
    double mlp_gain;            /* ‖ΔMLP‖/‖Δ̂‖ (actual change, α = 1)            */
    double linerr[STEER_MLP_N_ALPHAS]; /* ‖Δ(α) − α·first‖ / ‖α·first‖          */
    double align;               /* share of ‖W_g·Δ̂‖² on units whose |g1| is
                                   above its median (0.5: no alignment)       */
    double abs_gain[STEER_MLP_N_STAGES]; /* see the stages above; NaN where */
    double gain[STEER_MLP_N_STAGES];     /* a stage does not exist          */
} steer_mlp_att;

/* The stage with the smallest gain (relative = 1) or abs_gain (relative = 0):
 * norm excluded at mlp_in (the identity), post where there is no post-ffn
 * norm; -1 if none is finite. */
STEER_API int steer_mlp_att_weakest(const steer_mlp_att *a, int relative);
/* One line of plain language: "layer 2, attn_out, stories260K: its norm
 * shrinks most in the gate (×0.37 …); relative to the activation it rides on
 * it loses most in the pre-MLP norm (×0.86 …); …". */
STEER_API void steer_mlp_att_describe(const steer_mlp_att *a, char *buf, size_t n);

/* Analysis over a dataset (steer analyze-mlp). Every item runs prompt ⊕
 * gold completion teacher-forced; the positions are those predicting
 * completion tokens. */
typedef struct {
    int token;      /* K >= 1: the position predicting completion token K
                       (index n_prompt − 1 + K − 1; items with fewer than K
                       completion tokens are skipped); 0: every position
                       predicting a completion token (default 1)            */
    const unsigned char *layers; /* [n_layer] 1 = analysed; NULL: every layer */
    const steer_vecset *vectors; /* δ per (site, layer), one row [d_model];
                                    NULL: histograms and statistics only   */
    const char *vectors_path;    /* names the vector file in messages       */
    int n_sites;                 /* attenuation sites: attn_out and/or
                                    mlp_in; 0: those the vectors hold       */
    steer_site sites[2];
    /* Called after every item (may be NULL): done of total. */
    void (*on_item)(void *ud, int done, int total);
    void *ud;
} steer_mlp_params;

STEER_API steer_mlp_params steer_mlp_default_params(void);

/* Checks vectors for the model: width and layers (as
 * steer_vecset_check_model), a model_hint naming another architecture, one
 * row per vector, and a vector at every analysed layer of each site. */
STEER_API int steer_mlp_check_vectors(const steer_model *m, const steer_mlp_params *p);

typedef struct steer_mlp_result steer_mlp_result;

/* Runs the model over the dataset (captures of resid_mid, mlp_in, mlp_gate
 * and mlp_up at the chosen positions), then per layer |g1| and |g2| and,
 * with vectors, the attenuation rows. Errors: a model whose MLP is not
 * gated, vectors that do not fit (steer_mlp_check_vectors), an item without
 * a completion or longer than the context, no positions at all. `name`
 * labels the model in the outputs (copied). Caller frees *out. */
STEER_API int steer_mlp_run(steer_model *m, const char *name, const steer_dataset *d, const steer_mlp_params *p,
                  steer_mlp_result **out);
STEER_API void steer_mlp_result_free(steer_mlp_result *r);

/* steer_mlp_run in steps, for sharing the items' forward passes over
 * processes (steer analyze-mlp --mpi). steer_mlp_run is: a job, then for
 * every item with a record (size > 0) steer_mlp_job_run into a record and
 * steer_mlp_job_put, then steer_mlp_job_finish. A record holds the item's
 * captured rows as floats, bit for bit, so the result does not depend on
 * which process ran an item or in which order items were put; records are
 * exchanged only between processes of one build on one byte order.
 * collect = 1: the job keeps the result's buffers (the process that puts and
 * finishes); 0: it only runs items. The job borrows m, d, p and what p points
 * to (they must outlive it); every check steer_mlp_run makes before its first
 * forward pass is made here. steer_mlp_job_run and steer_mlp_job_put may run
 * on two threads at once (never two runs or two puts). p->on_item is called
 * by put. */
typedef struct steer_mlp_job steer_mlp_job;
STEER_API int steer_mlp_job_new(steer_model *m, const char *name, const steer_dataset *d, const steer_mlp_params *p,
                                int collect, steer_mlp_job **out);
STEER_API void steer_mlp_job_free(steer_mlp_job *j);
STEER_API int steer_mlp_job_items(const steer_mlp_job *j); /* the dataset's items */
/* Bytes of item's record; 0: the item is skipped (too short), nothing to run. */
STEER_API size_t steer_mlp_job_record_size(const steer_mlp_job *j, int item);
/* Runs the item's forward pass into rec [n = its record size]. */
STEER_API int steer_mlp_job_run(steer_mlp_job *j, int item, void *rec, size_t n);
/* Copies a record in (collect). STEER_EFORMAT for a wrong size, STEER_EARG
 * for an item put twice. */
STEER_API int steer_mlp_job_put(steer_mlp_job *j, int item, const void *rec, size_t n);
/* Once every item with a record is put: the statistics and attenuation rows,
 * as steer_mlp_run. *out is the caller's; the job can only be freed after. */
STEER_API int steer_mlp_job_finish(steer_mlp_job *j, steer_mlp_result **out);

typedef struct {
    long n;                      /* values: positions × d_ff                   */
    double mean, median, p90, p99; /* quantiles interpolate linearly between
                                      order statistics                        */
    double share_below;          /* share of values < 1e-3                     */
} steer_mlp_stats;

STEER_API int steer_mlp_result_positions(const steer_mlp_result *r); /* analysed positions */
STEER_API int steer_mlp_result_items(const steer_mlp_result *r);     /* items used          */
STEER_API int steer_mlp_result_skipped(const steer_mlp_result *r);   /* items too short     */
/* |g1| (quantity 1) or |g2| (quantity 2) at layer: [*n] values (position-
 * major) and their statistics. NULL / STEER_EARG for a layer not analysed.
 * Valid until the result is freed. */
STEER_API const float *steer_mlp_result_values(const steer_mlp_result *r, int layer, int quantity, size_t *n);
STEER_API int steer_mlp_result_stats(const steer_mlp_result *r, int layer, int quantity, steer_mlp_stats *out);
STEER_API int steer_mlp_result_att_count(const steer_mlp_result *r);
STEER_API const steer_mlp_att *steer_mlp_result_att(const steer_mlp_result *r, int i);

/* Histogram bins shared by every model: an underflow bin [0, 1e-6), then 10
 * log-spaced bins per decade from 1e-6 up to the power of ten at or above
 * the largest value of any model at any layer (per quantity). */
#define STEER_MLP_BIN_LO 1e-6
#define STEER_MLP_BINS_PER_DECADE 10

typedef struct {
    const char *data;        /* dataset spec as given                       */
    const char *command;     /* command line (may be NULL)                  */
    const char *const *model_paths; /* [n] as given (may be NULL)           */
    const char *vectors;     /* vector file (may be NULL)                   */
} steer_mlp_info;

/* Writes DIR/mlp_stats.csv, DIR/hist.csv, DIR/mlp_summary.json and
 * DIR/mlp_hist.png/.svg, and with attenuation rows DIR/attenuation.csv and
 * DIR/attenuation.png/.svg (docs/ANALYSIS.md), every file atomically; DIR is
 * created if missing. The results must cover the same layers. */
STEER_API int steer_mlp_write(const steer_mlp_result *const *r, int n, const steer_mlp_info *info, const char *dir);

/* Reads DIR/attenuation.csv back: *rows malloc'd (caller frees), *n rows.
 * Errors name the file and line. */
STEER_API int steer_mlp_read_attenuation(const char *path, steer_mlp_att **rows, int *n);

/* END mlp analysis section */

/* ---------------------------------------------------------------- reports, figures, study results */
/* BEGIN report section (src/exp/report.c, report_doc.c, adapt.c, tools_api.c; docs/REPORT.md) */

/* What a sweep table holds besides the cells (steer_sweep_table_read gives
 * it back from summary.json): the information it was made with (strings
 * valid until the table is freed) and the wall time of the run it was read
 * from (0 for a table that was not read back). Either pointer may be NULL. */
STEER_API void steer_sweep_table_info(const steer_sweep_table *t, steer_sweep_info *info, double *wall_s);
/* Mean KL(P_B,k ‖ P_F,k) at token k (0-based) over the items held with a
 * k-th token, and their number (mean NaN when n = 0; summary.json's
 * kl_base_mean). Either pointer may be NULL. */
STEER_API void steer_sweep_table_kl_base(const steer_sweep_table *t, int k, double *mean, int *n);
/* A model's name in dkl.csv and summary.json: the file name of path without
 * directory and extension ("models/x/stories260K.bin" → "stories260K"; a
 * directory "x/hf/" → "hf"), into buf[n]. */
STEER_API void steer_sweep_model_name(const char *path, char *buf, size_t n);

/* Draws a finished sweep's figures from DIR/summary.json and DIR/items.csv
 * (steer_sweep_table_read; the values as dkl.csv holds them, 9 significant
 * digits) into DIR, for each site s:
 *   dkl_<s>.png, dkl_<s>.svg          one panel per generated token, x = layer,
 *                                     y = ΔKL, one line per α, shared y axis
 *   heatmap_<s>.png, heatmap_<s>.svg  ΔKL at the largest α, layer × token,
 *                                     diverging colours centred at 0
 * Errors are the reader's (naming the file and line) or STEER_EIO for a
 * figure that cannot be written. Figures already written stay (each one is
 * complete). Borrows dir. */
STEER_API int steer_sweep_figures(const char *dir);

typedef struct {
    const char *html_path; /* the HTML page to write (required)               */
    const char *md_path;   /* the Markdown summary to write (required); image
                              links in it are relative to its directory      */
    const char *command;   /* the command line that made the report, shown in
                              both; NULL: none                               */
} steer_report_params;

/* Writes one report over dirs[0..n_dirs): one self-contained HTML page
 * (figures inline as base64 PNG) and a Markdown summary (linking the PNG
 * files), a section per kind of results found in each directory, in order:
 * a sweep (dkl.csv; read with steer_sweep_table_read), an MLP analysis
 * (mlp_stats.csv, with attenuation.csv and mlp_summary.json when present),
 * an ICL run (icl.csv with summary_icl.json), a study adapt run
 * (acc_vs_params.png with summary.json, steer_adapt_summary_read). Figures
 * a sweep directory lacks are drawn first (steer_sweep_figures). Everything
 * is read and checked before anything is written: on failure neither output
 * file is created or changed. Errors: "DIR: no such directory", "DIR: no
 * results found (none of dkl.csv, …)", and those of the readers. Borrows
 * everything. */
STEER_API int steer_report_write(const char *const *dirs, int n_dirs, const steer_report_params *p);

/* ---- steer study adapt's results (SPEC E4; tools/study/cmd_study_adapt.c runs the study)
 *
 * DIR/summary.json {"study": "adapt", …}: the settings, the untrained model's
 * scores and a row per trained method. The library writes and reads it; the
 * report's adapt section is made from it. Numbers are written as the study
 * has always written them (accuracies and losses "%.6f", share "%.6g", lr
 * "%g"), so a summary read back holds those rounded values. */
typedef struct {
    const char *method;  /* study method name ("lora", "vector", …)           */
    const char *site;    /* steering site name; "" for none (full, LoRA)      */
    int rank;
    double lr;
    size_t trainable, n_model; /* parameters trained / of the model           */
    double share;        /* trainable / n_model (written "%.6g")              */
    double val_acc, test_acc, test_loss, test_format;
} steer_adapt_row;

typedef struct {
    const char *task, *model;  /* as given                                    */
    uint64_t seed;
    int steps, batch, n_train, n_val, n_test;
    int lr_sweep;              /* 1: each method trained on its lr grid       */
    steer_adapt_row untrained; /* method, site, rank, lr, sizes not written   */
    const steer_adapt_row *rows;
    int n_rows;
} steer_adapt_summary;

/* Writes DIR/summary.json atomically (DIR must exist). share is written as
 * trainable / n_model (the field is not read). Borrows s. */
STEER_API int steer_adapt_summary_write(const char *dir, const steer_adapt_summary *s);
/* Reads DIR/summary.json back: *out and everything it points to is one
 * allocation the caller frees with free(). STEER_EIO when missing,
 * STEER_EFORMAT "DIR/summary.json: not a study adapt summary (…)". Numbers
 * the file lacks are NaN (0 for the integers). */
STEER_API int steer_adapt_summary_read(const char *dir, steer_adapt_summary **out);

/* ---- line plots (the library's figures are drawn with the same code)
 *
 * A figure is a grid of panels; a panel holds series (lines, optionally with
 * markers), axes with "nice" ticks and labels, a title and a legend. */
typedef struct {
    const char *label; /* legend text; NULL or "": not in the legend          */
    const double *x;   /* [n]; NULL: 0, 1, …, n − 1                            */
    const double *y;   /* [n]; non-finite values (and values <= 0 on a log
                          axis) are gaps: the line breaks there               */
    int n;
    int color;   /* 0: automatic (the series' index in its panel); k >= 1:
                    palette colour k − 1 (modulo the palette)               */
    int markers; /* 1: a dot at every point                                 */
    int dashed;  /* 1: dashed line                                          */
} steer_plot_series;

typedef struct {
    const char *title;  /* may be NULL                                        */
    const char *xlabel; /* may be NULL                                        */
    const char *ylabel; /* may be NULL                                        */
    const steer_plot_series *series;
    int n_series;
} steer_plot_panel;

typedef enum {
    STEER_PLOT_LEGEND_PANEL = 0, /* a legend inside each panel that has labels */
    STEER_PLOT_LEGEND_NONE,
    STEER_PLOT_LEGEND_FIGURE,    /* one legend under the figure title: every
                                    distinct label, in order of first appearance */
} steer_plot_legend;

/* Figure options; a zero-initialised struct is valid (all defaults). */
typedef struct {
    const char *title; /* figure title above the panels; NULL: none           */
    int width, height; /* whole figure in PNG pixels / SVG points; 0: 480 per
                          column × 340 per row (plus the title and legend)    */
    double scale;      /* PNG only: pixels per unit (0: 1)                    */
    int cols;          /* panels per row; 0: n for n <= 3, else ⌈√n⌉         */
    int log_y;         /* 1: logarithmic y axes                               */
    int share_y;       /* 1: one y range for every panel                      */
    int share_x;       /* 1: one x range for every panel                      */
    steer_plot_legend legend;
    double y_min, y_max; /* y_min < y_max (both finite): fixed y range         */
    double x_min, x_max; /* x_min < x_max (both finite): fixed x range         */
    int x_int_ticks;     /* 1: x ticks only at whole numbers (e.g. layers)     */
    int log_x;           /* 1: logarithmic x axes (x values <= 0 are gaps)     */
} steer_plot_figure;

/* Renders panels[0..n_panels) and writes path atomically: PNG for a name
 * ending in ".png", SVG for ".svg" (case-insensitive), STEER_EARG otherwise
 * (and for bad arguments: n_panels < 1, a series with n > 0 and no y, sizes
 * out of range). STEER_EIO when the file cannot be written (nothing is
 * left). Borrows everything. */
STEER_API int steer_plot_write(const char *path, const steer_plot_figure *fig, const steer_plot_panel *panels,
                               int n_panels);

/* ---- heat maps (the sweep's and steer patch's figures are drawn with it)
 *
 * A grid of cells coloured by value with a colour bar. A zero-initialised
 * struct plus nx, ny and z is valid. */
typedef enum {
    STEER_CMAP_DIVERGING = 0, /* blue (negative) – white (0) – red (positive),
                                 range symmetric about 0                      */
    STEER_CMAP_SEQUENTIAL,    /* white (low) – dark blue (high)               */
} steer_cmap;

typedef struct {
    const char *title, *xlabel, *ylabel, *zlabel; /* each may be NULL         */
    int nx, ny;                /* columns, rows: 1 … 4096 each                 */
    const double *z;           /* [ny][nx] row-major, row 0 at the top; a
                                  non-finite value is a grey cell            */
    const char *const *xticks; /* [nx] column labels; NULL: 0 … nx − 1        */
    const char *const *yticks; /* [ny] row labels; NULL: 0 … ny − 1           */
    steer_cmap cmap;
    double z_min, z_max;       /* z_min < z_max (finite): fixed colour range;
                                  else from the finite values               */
    int values;                /* 1: each cell's value printed where it fits  */
    const char *value_fmt;     /* printf format of one double; NULL: "%.2f"   */
    int width, height;         /* whole figure; 0: from the cell counts       */
    double scale;              /* PNG only: pixels per unit (0: 1)            */
} steer_heatmap;

/* Renders the heat map and writes path atomically (PNG or SVG by the name,
 * as steer_plot_write). STEER_EARG for bad arguments, STEER_EIO when the file
 * cannot be written (nothing is left). Borrows everything. */
STEER_API int steer_heatmap_write(const char *path, const steer_heatmap *h);

/* ---- files */

/* Writes size bytes to path atomically (a temporary file beside it, then
 * rename): on failure path is unchanged. STEER_EIO naming the file. */
STEER_API int steer_write_file_atomic(const char *path, const void *data, size_t size);

/* END report section */

/* ---------------------------------------------------------------- activation patching */
/* BEGIN patch section (src/exp/patch.c; tools/cmd_patch.c; docs/PATCHING.md)
 *
 * Activation patching (causal tracing): a clean and a corrupted prompt of
 * the same token length T. The clean run's activations at a (site, layer)
 * are written into the corrupted run at chosen positions (STEER_PATCH,
 * α = 1: the rows are replaced bit for bit) and the corrupted run's
 * last-position logits are scored. Prompts of different lengths are an
 * error (there is no alignment of positions). */
typedef struct steer_patcher steer_patcher;

typedef enum {
    STEER_PATCH_LOGIT_DIFF = 0, /* logit[answer] − logit[wrong] at the last position */
    STEER_PATCH_KL,             /* KL(P_clean ‖ P_run) at the last position (nats)  */
} steer_patch_metric_kind;

typedef struct {
    steer_patch_metric_kind kind;
    int answer, wrong; /* token ids (STEER_PATCH_LOGIT_DIFF)                   */
} steer_patch_metric;

STEER_API const char *steer_patch_metric_name(steer_patch_metric_kind k); /* "logit_diff", "kl" */

/* Runs the clean and the corrupted prompt once (a context of T positions and
 * up to `batch` sequences, 0: 16; n_threads 0: OpenMP default). Errors:
 * STEER_EARG "clean prompt is 7 tokens and the corrupted one 8: patching
 * needs prompts of the same token length", an empty prompt, a token id out
 * of the vocabulary, or the forward pass's. The model must outlive *out.
 * Borrows clean and corrupt (copied). */
STEER_API int steer_patcher_new(steer_model *m, const int *clean, int n_clean, const int *corrupt, int n_corrupt,
                                int batch, int n_threads, steer_patcher **out);
STEER_API void steer_patcher_free(steer_patcher *p); /* NULL is a no-op */
STEER_API int steer_patcher_n_tokens(const steer_patcher *p);
/* Last-position logits [n_vocab] of the clean and of the corrupted run. */
STEER_API const float *steer_patcher_clean_logits(const steer_patcher *p);
STEER_API const float *steer_patcher_corrupt_logits(const steer_patcher *p);
/* The metric of last-position logits [n_vocab] (KL from the clean run's).
 * NaN for a bad metric (token ids out of range). */
STEER_API double steer_patcher_metric(const steer_patcher *p, const steer_patch_metric *mt, const float *logits);
/* Runs the corrupted prompt with the clean activations at (site, layer)
 * written in at the positions pos[0..n_pos) together (n_pos = 0: nothing is
 * patched, the corrupted run) and copies its last-position logits to
 * out[n_vocab]. The clean run's activations at a site are captured (every
 * layer) the first time the site is asked for. STEER_EARG for a site, layer
 * or position out of range. */
STEER_API int steer_patcher_run(steer_patcher *p, steer_site site, int layer, const int *pos, int n_pos, float *out);
/* values[t] = the metric with position t alone patched at (site, layer),
 * for every t in 0..T-1: up to `batch` positions per forward pass, one
 * sequence each (bit for bit steer_patcher_run with that one position: the
 * forward pass is batch-invariant). */
STEER_API int steer_patcher_sweep(steer_patcher *p, steer_site site, int layer, const steer_patch_metric *mt,
                                  double *values);

/* END patch section */

/* ---------------------------------------------------------------- steering tune (issue 22) */
/* BEGIN tune section (steer tune; src/exp/tune.c, docs/TUNE.md) */

/* A user's own steering vectors × sites × layers × scales on contrastive A/B
 * data, with judge-free metrics per cell (α·v added at one (site, layer)):
 *   logit difference LD = Σ log p(positive) − Σ log p(negative) over the
 *     completion tokens, teacher-forced after the prompt; mean, standard
 *     error, share of items with LD > 0, share moved there from LD ≤ 0;
 *   KL(P_steered ‖ P_unsteered) of the next-token distribution averaged over
 *     every position of the neutral texts (the side-effect budget);
 *   perplexity of the reference text (else of the neutral texts).
 * Neutral and reference texts are steered at every position; the A/B
 * sequences at p->positions (all, or the completion: STEER_POS_GENERATED). */

typedef struct {
    char *prompt, *positive, *negative; /* owned by the data                   */
    int line;                           /* 1-based line in the file            */
} steer_tune_pair;

typedef struct {
    steer_tune_pair *pairs;
    int n_pairs;
    char **neutral; /* non-empty lines of the neutral file (may be NULL)       */
    int n_neutral;
    char *reference; /* the reference text (may be NULL)                       */
} steer_tune_data;

/* Loads A/B items from JSON Lines — {"prompt", "positive", "negative"}, or
 * CAA's {"question", "answer_matching_behavior", "answer_not_matching_behavior"}
 * (first n_max items; 0: all) — and optionally neutral texts (one per line)
 * and a reference text. Errors name file and line. *out: the caller's
 * (steer_tune_data_free). */
STEER_API int steer_tune_data_load(const char *pairs_path, int n_max, const char *neutral_path,
                                   const char *reference_path, steer_tune_data **out);
STEER_API void steer_tune_data_free(steer_tune_data *d);

typedef struct {
    const steer_vecset *const *vectors; /* [n_vectors] (borrowed)              */
    const char *const *vector_names;    /* [n_vectors] labels for messages     */
    int n_vectors;
    const unsigned char *site_mask;  /* [STEER_SITE_COUNT] or NULL: every site a
                                        vector has                             */
    const unsigned char *layer_mask; /* [n_layer] or NULL: every layer          */
    const float *scales;             /* [n_scales] α values (0 allowed)         */
    int n_scales;
    steer_pos_kind positions; /* A/B items: STEER_POS_ALL (default) or
                                 STEER_POS_GENERATED (completion only)          */
    double kl_budget;         /* for steer_tune_recommend (default 0.1 nats)   */
    int n_threads;            /* items in parallel (0: OpenMP default)         */
    void (*on_progress)(void *ud, int done, int total); /* serialised; may be NULL */
    void *ud;
} steer_tune_params;

STEER_API steer_tune_params steer_tune_default_params(void);

typedef struct {
    int vector;       /* index into steer_tune_params.vectors                  */
    steer_site site;
    int layer;
    float scale;
    int n_items;
    double ld_mean, ld_se;            /* logit difference (nats)               */
    double share_positive, share_moved;
    double kl_mean;                   /* NaN without neutral texts             */
    long kl_positions;
    double ppl;                       /* NaN without texts                     */
    long ppl_tokens;
} steer_tune_cell;

typedef struct {
    steer_tune_cell *cells; /* [n_cells]: vectors × their (site, layer) × scales */
    int n_cells;
    int n_items, n_neutral, ppl_on_reference;
    double base_ld_mean, base_ld_se, base_share_positive, base_ppl; /* unsteered */
} steer_tune_result;

/* Runs every cell. Vectors must fit the model (steer_vecset_check_model) and
 * hold one row per (site, layer). *out: the caller's (steer_tune_result_free). */
STEER_API int steer_tune_run(steer_model *m, const steer_tune_data *d, const steer_tune_params *p,
                             steer_tune_result **out);
STEER_API void steer_tune_result_free(steer_tune_result *r);

/* The recommended cell: the largest mean logit difference among cells whose
 * KL is within kl_budget (all cells when there were no neutral texts); ties
 * to the smaller |scale|. -1 if no cell qualifies. */
STEER_API int steer_tune_recommend(const steer_tune_result *r, double kl_budget);

typedef struct {
    const char *model, *data, *neutral, *reference, *command, *positions; /* recorded */
    const char *const *vector_names; /* labels in tune.csv                    */
} steer_tune_info;

/* Writes DIR/tune.csv (a row per cell), DIR/tune_summary.json (settings, the
 * unsteered numbers, the recommended cell) and the figures tune_logit_diff,
 * tune_kl, tune_ppl (.png/.svg: metric vs scale, a panel per (vector, site),
 * a line per layer), each atomically. */
STEER_API int steer_tune_write(const steer_tune_result *r, const steer_tune_info *info, double kl_budget,
                               const char *dir);

/* END tune section */

#ifdef __cplusplus
}
#endif
#endif /* STEER_EXP_H */

/*
 * steer_train.h — the training tier of libsteer (libsteer-train): datasets and
 * templates (SPEC §6), training (full, LoRA, vectors, adapters, LoReFT,
 * joint), evaluation on a dataset and merging LoRA into a model.
 * Conventions as in steer.h (status codes, steer_last_error, ownership in
 * every prototype).
 */
#ifndef STEER_TRAIN_H
#define STEER_TRAIN_H

#include "steer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- datasets and templates */

/* Prompt/completion datasets for training and experiments (SPEC §6). A spec
 * string "FORMAT:FILE" picks the format; a FILE without a known prefix is
 * jsonl. Every file is JSON Lines (one object per line; unknown fields are
 * ignored; blank lines are skipped and line numbers count every physical
 * line):
 *   jsonl:FILE       "prompt" (string, required), "completion" (string,
 *                    optional: NULL when absent), "id" (string or number,
 *                    optional), "label" (integer, optional). With a template,
 *                    prompt and/or completion are rendered from the row's
 *                    own fields instead ({name} = field "name").
 *   winogrande:FILE  Winogrande v1.1 rows {qID, sentence (exactly one "_"),
 *                    option1, option2, answer "1"|"2" (or 1|2)}. qID is optional (id =
 *                    the line number); an absent or empty answer (the test split)
 *                    gives completion NULL and label -1. Prompt: the template
 *                    (placeholders {sentence} {option1} {option2}); choices[0]
 *                    " (A) {option1}.", choices[1] " (B) {option2}." (completion
 *                    template placeholders: also {letter} {option} {answer});
 *                    label 0 = A, 1 = B; completion = choices[label].
 *   listops:FILE     rows {"expr": "[MAX 2 9 ]", "answer": 0..9 (number or
 *                    one-digit string)}; prompt "Solve: {expr}\nAnswer:",
 *                    choices " 0" … " 9", label = the answer digit.
 * Errors are STEER_EFORMAT with one line naming file and line:
 * "dev.jsonl:17: missing field 'option2'", "…: malformed JSON at column 12",
 * "…: sentence has 2 blanks '_' (expected exactly one)", "…: answer must be
 * \"1\" or \"2\", got \"3\"", "…: answer must be a digit 0-9, got 12". A file
 * without items is an error. An unknown template placeholder is STEER_EARG
 * (winogrande, listops) or a missing field at the first row (jsonl).
 * Placeholders are {identifier}; other braces are literal text. */
#define STEER_WINOGRANDE_TEMPLATE \
    "{sentence}\nQuestion: Which option fills the blank?\n(A) {option1}\n(B) {option2}\nAnswer: The correct answer is"
#define STEER_WINOGRANDE_COMPLETION " ({letter}) {option}."
#define STEER_LISTOPS_TEMPLATE "Solve: {expr}\nAnswer:"
#define STEER_LISTOPS_COMPLETION " {answer}"

typedef enum {
    STEER_DATA_JSONL = 0,
    STEER_DATA_WINOGRANDE,
    STEER_DATA_LISTOPS,
} steer_data_format;

STEER_API const char *steer_data_format_name(steer_data_format f); /* "jsonl", … (static) */
/* Splits a spec: "winogrande:dev.jsonl" → WINOGRANDE, "dev.jsonl"; anything
 * without a known prefix → JSONL, spec. *path points into spec. */
STEER_API void steer_data_parse_spec(const char *spec, steer_data_format *fmt, const char **path);

/* One example. Strings are owned by the dataset. */
typedef struct {
    char *id;          /* qID / "id" field / the line number (never NULL)      */
    char *prompt;      /* rendered prompt (never NULL)                        */
    char *completion;  /* gold continuation, NULL when unknown                */
    int label;         /* gold index into choices (listops: the digit), or a
                          jsonl "label"; -1 when unknown                       */
    int n_choices;     /* winogrande 2, listops 10, jsonl 0                    */
    char **choices;    /* rendered continuation of every answer               */
    int line;          /* 1-based line in the file; 0 when built in memory    */
} steer_data_item;

typedef struct steer_dataset steer_dataset;

typedef struct {
    const char *prompt_template;     /* NULL: the format's default (jsonl: the
                                        "prompt" field)                      */
    const char *completion_template; /* NULL: the format's default (jsonl: the
                                        "completion" field)                  */
    int n_max;                       /* keep the first n_max items; 0 = all   */
} steer_data_params;

STEER_API steer_data_params steer_data_default_params(void);

STEER_API int steer_data_load(const char *spec, const steer_data_params *p, steer_dataset **out);
STEER_API int steer_data_load_file(steer_data_format fmt, const char *path, const steer_data_params *p, steer_dataset **out);
/* An empty in-memory dataset (format jsonl); steer_data_add copies an item
 * (id NULL: its 1-based index). */
STEER_API int steer_data_new(steer_dataset **out);
STEER_API int steer_data_add(steer_dataset *d, const char *id, const char *prompt, const char *completion, int label);
STEER_API void steer_data_free(steer_dataset *d);

STEER_API int steer_data_count(const steer_dataset *d);
STEER_API const steer_data_item *steer_data_at(const steer_dataset *d, int i); /* NULL out of range */
STEER_API steer_data_format steer_data_get_format(const steer_dataset *d);
STEER_API const char *steer_data_path(const steer_dataset *d); /* "" when built in memory */
/* STEER_EFORMAT "dev.jsonl:17: item … has no completion (answer)" for the
 * first item without one (training needs them all). */
STEER_API int steer_data_check_completions(const steer_dataset *d);

/* Deterministic order and subsets. Randomness is splitmix64 with unbiased
 * bounded draws, the same on every platform. */
/* perm[n] = a permutation of 0..n-1 (Fisher–Yates) from seed. */
STEER_API void steer_data_permutation(int n, uint64_t seed, int *perm);
STEER_API int steer_data_shuffle(steer_dataset *d, uint64_t seed); /* items[i] ← items[perm[i]] */
STEER_API void steer_data_truncate(steer_dataset *d, int n);      /* keep the first n       */
/* A new dataset of copies of items idx[0..n) (repeats allowed). */
STEER_API int steer_data_subset(const steer_dataset *d, const int *idx, int n, steer_dataset **out);
/* The items perm[0..n_heldout) of the seed's permutation go to *heldout, the
 * rest to *train; both keep the dataset's order. */
STEER_API int steer_data_split(const steer_dataset *d, int n_heldout, uint64_t seed, steer_dataset **train,
                     steer_dataset **heldout);
/* Writes prompt/completion JSONL ({"id", "prompt", "completion" when known,
 * "label" when >= 0}), atomically. */
STEER_API int steer_data_write_jsonl(const steer_dataset *d, const char *path);

/* Few-shot contexts (E3). */
typedef struct {
    int k;                 /* demonstrations (default 5)                        */
    uint64_t seed;         /* picks them (default 0)                            */
    const char *separator; /* after every demonstration; NULL = "\n\n"          */
} steer_fewshot_params;

STEER_API steer_fewshot_params steer_fewshot_default_params(void);

/* *context (malloc'd) = k demonstrations "prompt completion" from pool, each
 * followed by the separator, so the query's prompt is appended directly. The
 * demonstrations are the first k eligible items of the seed's permutation of
 * pool: items with a completion that are neither query itself (pointer) nor
 * have the same prompt text. query may be NULL (a context for any query). The
 * same (pool, seed, k) gives the same demonstrations for every query except
 * where one would be the query; pass seed + query index for a context per
 * query. chosen[k] (may be NULL) receives the pool indices in order.
 * STEER_EARG when fewer than k are eligible. k = 0 gives "". */
STEER_API int steer_data_fewshot(const steer_dataset *pool, const steer_data_item *query, const steer_fewshot_params *p,
                       char **context, int *chosen);

/* ListOps (Nangia & Bowman 2018): expressions printed as
 * "[MAX 2 9 [MIN 4 7 ] 0 ]" over digits 0-9 with MAX, MIN, MED (median; an
 * even count takes the lower median, so values stay digits) and SM (sum
 * modulo 10). Generation: the depth t is uniform in 1..max_depth; the root is
 * an operator with 2..max_args arguments (uniform); one argument per level
 * continues down to depth t, every other argument above depth t is an operator
 * with probability p_nest (at most 512 such per expression) and otherwise a
 * digit; operators uniform. So every expression has depth exactly t. Sample i
 * depends only on (seed, i, max_depth, max_args, p_nest). */
typedef struct {
    int max_depth; /* 1..64 (default 3)                                          */
    int max_args;  /* 2..64 (default 5)                                          */
    float p_nest;  /* default 0.25                                               */
    uint64_t seed; /* default 0                                                  */
} steer_listops_params;

STEER_API steer_listops_params steer_listops_default_params(void);
/* Sample `index` of the seed's stream: *expr malloc'd, *answer (may be NULL)
 * its value. */
STEER_API int steer_listops_sample(const steer_listops_params *p, uint64_t index, char **expr, int *answer);
/* Evaluates an expression (whitespace between tokens is free; "[ MAX" is
 * accepted). *value, *depth (nesting of brackets; a bare digit is 0) and
 * *max_args (widest operator) may be NULL. STEER_EFORMAT "listops: unknown
 * operator 'FOO' at column 2" and the like. */
STEER_API int steer_listops_eval(const char *expr, int *value, int *depth, int *max_args);
/* Writes samples 0..n-1 as {"expr": "...", "answer": d} lines, atomically. */
STEER_API int steer_listops_write(const char *path, int n, const steer_listops_params *p);
/* Samples 0..n-1 as an in-memory listops dataset (ids 0..n-1; templates from
 * dp, which may be NULL). */
STEER_API int steer_listops_dataset(int n, const steer_listops_params *p, const steer_data_params *dp, steer_dataset **out);

/* ---------------------------------------------------------------- training */

/* Training (SPEC §4 E4) on a prompt/completion dataset: cross-entropy on the
 * completion tokens only, micro-batches of padded sequences, AdamW with a
 * warm-up schedule, the method's constraints after every step, evaluation
 * and checkpoints (docs/TRAINING.md §4 "The training loop"). */
typedef enum { STEER_SCHED_CONSTANT = 0, STEER_SCHED_LINEAR, STEER_SCHED_COSINE } steer_schedule;

/* What steer_train reports after every update (steer_train_params.on_step),
 * once the method's constraints have run. */
typedef struct {
    int64_t step, total_steps;  /* updates done (1-based), updates planned     */
    double loss, lr, grad_norm; /* of this update                              */
    double joint_overlap;       /* joint: max over layers of max |W_down·Q|
                                   just before this update's projection (Q an
                                   orthonormal basis of col(B) of down_proj);
                                   0 for other methods                          */
    const void *state_;         /* internal; read tensors with
                                   steer_train_step_tensor                      */
} steer_train_step;

/* The current value of trainable tensor `name` (checkpoint names) during an
 * on_step call: F32 [shape[0]] (n_dims 1) or [shape[0], shape[1]]; NULL when
 * there is no such tensor. Valid until the callback returns. n_dims and
 * shape may be NULL. */
STEER_API const float *steer_train_step_tensor(const steer_train_step *s, const char *name, int *n_dims, int64_t shape[2]);

typedef struct {
    const char *method;   /* full, lora, vector, adapter, adapter-linear, rank1,
                             loreft, joint (default adapter)                      */
    steer_site site;      /* steering site (default resid_post)                  */
    const unsigned char *layers; /* [n_layer] steering/LoRA layers; NULL = all   */
    int rank;             /* 0: the method's (8; rank1 1); LoRA and adapter rank */
    steer_act act;        /* adapter σ: STEER_ACT_DEFAULT (the method's), NONE,
                             SILU, GELU (erf), RELU or TANH                       */
    float alpha;          /* adapter α (default 1)                               */
    float lora_alpha;     /* default 8                                           */
    unsigned lora_targets;/* bits q 1, k 2, v 4, o 8, gate 16, up 32, down 64;
                             0 = all                                              */
    double lr;            /* 0: steer_train_default_lr(method)                   */
    int64_t steps;        /* optimizer updates; 0: from epochs                   */
    double epochs;        /* used when steps is 0                                */
    int batch, accum;     /* sequences per micro-batch (8), micro-batches per
                             update (1)                                           */
    double warmup;        /* warm-up fraction (0.03)                             */
    steer_schedule schedule; /* default linear (decay to 0)                      */
    double weight_decay, clip; /* 0, 0 (0 = no clipping)                         */
    uint64_t seed;        /* init and data order (default 1)                     */
    int eval_every;       /* evaluate every N updates (0: only at start and end) */
    int eval_max;         /* evaluate on the first N items (0: all)              */
    int eval_batch;       /* sequences per evaluation batch (16)                 */
    int save_every;       /* checkpoint every N updates (0: at every evaluation)
                             and always at the end                                */
    int64_t stop_after;   /* > 0: stop after this many updates (the schedule
                             still spans `steps`; for tests of --resume)           */
    const char *out_dir;  /* checkpoints, state, train.csv, loss.png/svg; NULL = none */
    int resume;           /* continue from out_dir/state.safetensors            */
    int progress;         /* 0 none, 1 a progress line on stderr (redrawn on a
                             TTY), 2 one line per update                           */
    const char *model_path, *tokenizer_path; /* full fine-tuning writes its
                             checkpoint by converting this model                  */
    const char *model_hint, *command; /* recorded in checkpoint metadata        */
    int params_out;       /* 1: return a copy of the trained parameters          */
    /* Called after every update (may be NULL); a non-zero return stops
     * training there, as stop_after does (checkpoint written, STEER_OK). */
    int (*on_step)(void *ud, const steer_train_step *s);
    void *on_step_ud;
    int n_threads;        /* compute threads (0: OpenMP default)                 */
} steer_train_params;

STEER_API steer_train_params steer_train_default_params(void);
/* 9e-4 for steering methods (SPEC E4), 5e-4 LoRA, 1e-4 full. */
STEER_API double steer_train_default_lr(const char *method);

/* Evaluation on a dataset with completions: token-mean completion loss and
 * greedy generation of K tokens (K = the longest of the gold completion and
 * the choices): exact = the gold completion's tokens were generated; format =
 * the generated text starts with one of the item's choices; acc = it is the
 * gold choice (datasets without choices: acc = exact). */
typedef struct {
    int n;
    double loss, acc, exact, format;
    long n_tokens;        /* completion tokens in the loss                      */
} steer_eval_result;

typedef struct {
    int pick;             /* choice the generation starts with, -1 none         */
    int exact;
    char *text;           /* generated text (malloc'd; the caller frees)        */
} steer_eval_item;

typedef struct {
    int n_max;            /* first N items (0: all)                             */
    int batch;            /* default 16                                         */
    int graph;            /* 1: generate through the training graph, re-running
                             the padded batch per token (the reference path,
                             slow); 0: the inference engine with a KV cache
                             (full fine-tuning checkpoints are models, so
                             always the engine here)                            */
    int n_threads;        /* compute threads (0: OpenMP default)                 */
} steer_eval_params;

typedef struct {
    int64_t steps, total_steps;
    double train_loss;    /* of the last update                                 */
    steer_eval_result before, after; /* evaluations at the start and the end    */
    size_t n_trainable, n_model;
    double *loss_curve;   /* caller's [loss_curve_cap] (may be NULL): loss of
                             update i at [i]                                       */
    int64_t loss_curve_cap;
    float *params;        /* with params_out: malloc'd copy [n_params]           */
    size_t n_params;
} steer_train_result;

/* Trains on `train`, evaluating on `eval` (may be NULL). Errors are one line
 * (a dataset line, a sequence longer than the context, a resume state that
 * does not match). Files in out_dir are replaced atomically. */
STEER_API int steer_train(const steer_model *m, const steer_dataset *train, const steer_dataset *eval,
                const steer_train_params *p, steer_train_result *res);
/* The trainable tensors (*text: "name [shape] count" lines, malloc'd; may be
 * NULL), their total and the model's. */
STEER_API int steer_train_describe(const steer_model *m, const steer_train_params *p, char **text, size_t *n_trainable,
                         size_t *n_model);
/* Evaluates the model, with a training checkpoint (adapter.safetensors of any
 * non-full method; NULL = the model alone) applied. items[n] (may be NULL)
 * receives per-item results. */
STEER_API int steer_eval_dataset(const steer_model *m, const char *adapter, const steer_dataset *d,
                       const steer_eval_params *ep, steer_eval_result *res, steer_eval_item *items);

/* A training checkpoint applied to inference (steer generate/logits/capture
 * --adapter): the adapter.safetensors of any non-full `steer train` method.
 * Steering methods (vector, adapter, adapter-linear, rank1, LoReFT, and the
 * adapter of joint) become one hook computing the trained map; LoRA (and
 * joint's LoRA) is merged in memory, W + (lora_alpha/r)·B·A, into F32 copies
 * of the adapted projections of a shallow copy of the model (the same
 * engine steer eval uses). Errors name the file and say what it is when it
 * is not a checkpoint ("x.safetensors: is a steering vector file (method
 * 'mean-diff'), not a training checkpoint: pass it with --steer; …"), or a
 * checkpoint of another model. m must outlive *out. */
typedef struct steer_adapter steer_adapter;
STEER_API int steer_adapter_load(const steer_model *m, const char *path, steer_adapter **out);
STEER_API void steer_adapter_free(steer_adapter *a); /* NULL is a no-op */
/* The checkpoint's training method ("lora", "vector", …); valid until free. */
STEER_API const char *steer_adapter_method(const steer_adapter *a);
/* The model to make contexts from: m itself, or (LoRA, joint) the copy with
 * the LoRA merged. Borrowed; valid until steer_adapter_free. */
STEER_API steer_model *steer_adapter_model(steer_adapter *a);
/* Adds the checkpoint's steering hook to c (a context of
 * steer_adapter_model(a)), after the hooks c has; nothing for LoRA alone.
 * The hook reads a's parameters: a must outlive the hook's use. */
STEER_API int steer_adapter_install(steer_adapter *a, steer_ctx *c);

/* Merging a LoRA checkpoint into its base model (steer merge-lora). */
typedef struct {
    steer_dtype dtype;  /* matrices: STEER_DTYPE_KEEP (default) the base's (F32
                           for a llama2.c output), else STEER_DTYPE_F32, _F16
                           or _BF16; norms and biases are written F32          */
    const char *format; /* "hf", "gguf", "llama2c" or NULL: from OUT, as
                           steer_convert                                        */
    const char *tokenizer_path; /* llama2.c base: its tokenizer (NULL: beside) */
    const char *steer_out; /* joint checkpoints: where to write the steering
                           adapter (an "adapter" checkpoint for the merged
                           model); required for joint, an error otherwise      */
    const char *command;   /* recorded in the steering adapter's metadata       */
} steer_merge_params;

STEER_API steer_merge_params steer_merge_default_params(void);

/* Folds the LoRA of a `steer train --method lora|joint` checkpoint into the
 * base model's weights, W += (lora_alpha/r)·B·A for every adapted projection
 * (sums in double, from the weights widened to F32), and writes the merged
 * model to `out` in any steer_convert format (HF directory, .gguf, llama2.c
 * .bin), atomically and loaded back before it is placed. A joint checkpoint's
 * adapter goes to p->steer_out. One-line errors: a checkpoint of another
 * model (sizes, tensor shapes), a missing or malformed file, a checkpoint
 * without LoRA (method other than lora/joint). The base is loaded once (and
 * its weights copied to F32: about twice the model in memory). */
STEER_API int steer_merge_lora(const char *base, const char *adapter, const char *out, const steer_merge_params *p);

#ifdef __cplusplus
}
#endif
#endif /* STEER_TRAIN_H */

/*
 * src/train/ — tier 4, libsteer-train: datasets and templates (data.c), the
 * training graph written once over REAL (train_ops*, train_model*), the
 * optimizer (train_optim.c), the loop and evaluation (train.c, train_eval.c),
 * logs (train_log.c) and LoRA merging (train_merge.c). Uses the core through
 * model.h and the plots in src/plot/; never the experiments.
 *
 * train.c — the training loop (SPEC §4 E4) and the evaluation of a trained
 * model on a prompt/completion dataset, as library functions over the
 * model-level graph (train_model.h) and the optimiser (train_optim.h).
 *
 * Data: every item is tokenized once as prompt (with BOS) and prompt ⊕
 * completion; the completion tokens are those after the longest common prefix
 * of the two tokenizations (SentencePiece's dummy prefix makes tokenizing the
 * completion alone differ). A micro-batch is B padded sequences; the loss is
 * the mean cross-entropy over the completion tokens of the micro-batch; with
 * accumulation the k micro-batch gradients are averaged.
 *
 * Order: optimiser update s (0-based) reads micro-batches s·k … s·k + k − 1
 * of one endless stream; stream position g is item perm_e[g mod n] with
 * e = g / n the epoch and perm_e the permutation of steer_data_permutation
 * with seed (seed + e). So the data of update s is a pure function of
 * (dataset, seed, B, k, s), and a resumed run sees exactly the batches the
 * uninterrupted run would.
 *
 * Evaluation (steer_eval_run): held-out completion loss (token mean over
 * every item's completion) and greedy generation with the trained parameters
 * applied (the same graph, forward only, re-run over the whole sequence for
 * each new token). K = the longest of the gold completion and the choices
 * (in tokens). Metrics per item:
 *   exact   the first n_gold generated tokens equal the gold completion's;
 *   choice  the decoded generation starts with the text of choice c (the
 *           first such c; -1 if none) — "format" = choice >= 0;
 *   acc     choice == label for datasets with choices, else exact.
 */
#include "steer_train.h"
#include "steer.h"
#include "model.h"
#include "data.h"
#include "train_internal.h"
#include "train_model.h"
#include "train_optim.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

/* ---------------------------------------------------------------- params */

steer_train_params steer_train_default_params(void)
{
    steer_train_params p;
    memset(&p, 0, sizeof p);
    p.method = "adapter";
    p.site = STEER_SITE_RESID_POST;
    p.act = STEER_ACT_DEFAULT;
    p.alpha = 1.0f;
    p.lora_alpha = 8.0f;
    p.schedule = STEER_SCHED_LINEAR;
    p.warmup = 0.03;
    p.batch = 8;
    p.accum = 1;
    p.seed = 1;
    p.eval_batch = 16;
    p.progress = 0;
    return p;
}

double steer_train_default_lr(const char *method)
{
    if (method && strcmp(method, "full") == 0)
        return 1e-4;
    if (method && strcmp(method, "lora") == 0)
        return 5e-4;
    return 9e-4;
}

/* Adapter activations: the training graph's numbering (trm_act) and the names
 * checkpoints record. */
static const char *act_names[] = {"none", "silu", "gelu", "relu", "tanh"};

static const char *trm_act_name(trm_act a) { return (unsigned)a <= TRM_ACT_TANH ? act_names[a] : "?"; }

/* steer_act (public) -> trm_act; -1 for an activation adapters do not have. */
static int trm_act_of(steer_act a)
{
    switch (a) {
    case STEER_ACT_NONE: return TRM_ACT_NONE;
    case STEER_ACT_SILU: return TRM_ACT_SILU;
    case STEER_ACT_GELU: return TRM_ACT_GELU;
    case STEER_ACT_RELU: return TRM_ACT_RELU;
    case STEER_ACT_TANH: return TRM_ACT_TANH;
    default: return -1;
    }
}

/* ---------------------------------------------------------------- spec */

typedef tr_spec_buf spec_buf;

int tr_build_spec(const steer_model *m, const steer_train_params *p, int B, int T, tr_spec_buf *sb)
{
    const int L = m->cfg.n_layer;
    sb->spec = trm_spec_default();
    sb->layers = calloc((size_t)L, 1);
    if (!sb->layers)
        return steer_err(STEER_ENOMEM, "out of memory");
    trm_spec *s = &sb->spec;
    s->B = B;
    s->T = T;
    s->seed = p->seed;
    int rc = trm_spec_method(s, p->method);
    if (rc)
        return rc;
    const int is_lora = s->lora_rank > 0, is_steer = s->steer != TRM_STEER_NONE;
    if (is_steer && !s->joint)
        s->steer_site = p->site;
    if (s->joint && p->site != STEER_SITE_RESID_POST)
        s->steer_site = p->site;
    if (p->rank > 0) {
        if (is_steer)
            s->steer_rank = p->rank;
        if (is_lora)
            s->lora_rank = p->rank;
    } else if (p->rank < 0) {
        return steer_err(STEER_EARG, "rank must be >= 1, got %d", p->rank);
    }
    if (p->act != STEER_ACT_DEFAULT) {
        int ta = trm_act_of(p->act);
        if (ta < 0)
            return steer_err(STEER_EARG, "adapter activation %s is not supported (none, silu, gelu, relu, tanh)",
                             steer_act_name(p->act));
        s->steer_act = (trm_act)ta;
    }
    if (p->alpha != 0.0f)
        s->steer_alpha = p->alpha;
    if (p->lora_alpha > 0.0f)
        s->lora_alpha = p->lora_alpha;
    if (p->lora_targets)
        s->lora_targets = p->lora_targets & TRM_LORA_ALL;
    for (int l = 0; l < L; l++)
        sb->layers[l] = p->layers ? (p->layers[l] != 0) : 1;
    int any = 0;
    for (int l = 0; l < L; l++)
        any |= sb->layers[l];
    if (!any)
        return steer_err(STEER_EARG, "no layer chosen");
    s->steer_layers = sb->layers;
    s->lora_layers = sb->layers;
    if (is_steer) {
        int w = steer_model_site_width(m, s->steer_site);
        if (s->steer != TRM_STEER_VECTOR && s->steer_rank > w)
            return steer_err(STEER_EARG, "rank %d is larger than the width %d of %s", s->steer_rank, w,
                             steer_site_name(s->steer_site));
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- tokenized data */

typedef struct {
    int *tok;       /* prompt ⊕ completion (or the prompt when there is none) */
    int n_prompt;   /* tokens of the prompt as tokenized alone (with BOS)     */
    int n_common;   /* completion starts here in tok                          */
    int n;          /* total tokens in tok                                    */
    int *prompt;    /* the prompt alone [n_prompt]                            */
    int k_gen;      /* tokens to generate: max(gold, choices)                 */
} tok_item;

typedef struct {
    int n;
    tok_item *it;
    int max_len;     /* longest prompt ⊕ completion                         */
    int max_gen_len; /* longest prompt + k_gen                               */
} tok_set;

static void tok_set_free(tok_set *s)
{
    if (!s->it)
        return;
    for (int i = 0; i < s->n; i++) {
        free(s->it[i].tok);
        free(s->it[i].prompt);
    }
    free(s->it);
    s->it = NULL;
}

static const char *item_where(const steer_dataset *d, const steer_data_item *it, char *buf, size_t n)
{
    const char *path = steer_data_path(d);
    if (it->line > 0 && path && path[0])
        snprintf(buf, n, "%s:%d", path, it->line);
    else
        snprintf(buf, n, "item %s", it->id);
    return buf;
}

/* need_completion: training/eval needs a completion for every item. */
static int tok_set_build(const steer_model *m, const steer_dataset *d, int n_max, tok_set *s)
{
    memset(s, 0, sizeof *s);
    int n = steer_data_count(d);
    if (n_max > 0 && n_max < n)
        n = n_max;
    if (n < 1)
        return steer_err(STEER_EARG, "dataset is empty");
    s->it = calloc((size_t)n, sizeof *s->it);
    if (!s->it)
        return steer_err(STEER_ENOMEM, "out of memory");
    s->n = n;
    const int n_ctx = m->cfg.n_ctx_train > 0 ? m->cfg.n_ctx_train : 1 << 30;
    for (int i = 0; i < n; i++) {
        const steer_data_item *di = steer_data_at(d, i);
        tok_item *ti = &s->it[i];
        char where[512];
        if (!di->completion)
            return steer_err(STEER_EFORMAT, "%s: item %s has no completion (answer)", item_where(d, di, where, sizeof where),
                             di->id);
        int rc = steer_tokenize_alloc(m, di->prompt, 1, &ti->prompt, &ti->n_prompt);
        if (rc)
            return rc;
        rc = data_tokenize_pair(m, di->prompt, ti->prompt, ti->n_prompt, di->completion, &ti->tok, &ti->n, &ti->n_common);
        if (rc)
            return rc;
        if (ti->n_common >= ti->n)
            return steer_err(STEER_EFORMAT, "%s: item %s has an empty completion", item_where(d, di, where, sizeof where),
                             di->id);
        int k = ti->n - ti->n_common;
        for (int c = 0; c < di->n_choices; c++) {
            int *ct = NULL, nct = 0, ncom = 0;
            rc = data_tokenize_pair(m, di->prompt, ti->prompt, ti->n_prompt, di->choices[c], &ct, &nct, &ncom);
            if (rc)
                return rc;
            if (nct - ncom > k)
                k = nct - ncom;
            free(ct);
        }
        ti->k_gen = k;
        if (ti->n > n_ctx || ti->n_prompt + k > n_ctx)
            return steer_err(STEER_ECONTEXT,
                             "%s: item %s: prompt + completion is %d tokens but the model's context holds %d",
                             item_where(d, di, where, sizeof where), di->id,
                             ti->n > ti->n_prompt + k ? ti->n : ti->n_prompt + k, n_ctx);
        if (ti->n > s->max_len)
            s->max_len = ti->n;
        if (ti->n_prompt + k > s->max_gen_len)
            s->max_gen_len = ti->n_prompt + k;
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- batches */

typedef struct {
    int B, T;
    int *tokens, *lengths, *targets; /* [Bc·Tc], [Bc], [Bc·Tc] */
} batch_buf;

static int batch_alloc(batch_buf *b, int Bc, int Tc)
{
    b->tokens = calloc((size_t)Bc * Tc, sizeof(int));
    b->targets = calloc((size_t)Bc * Tc, sizeof(int));
    b->lengths = calloc((size_t)Bc, sizeof(int));
    if (!b->tokens || !b->targets || !b->lengths)
        return steer_err(STEER_ENOMEM, "out of memory");
    return STEER_OK;
}

static void batch_free(batch_buf *b)
{
    free(b->tokens);
    free(b->targets);
    free(b->lengths);
}

/* Fills a batch with the items idx[0..n) of s (completion-only targets). */
static void batch_fill(batch_buf *b, const tok_set *s, const int *idx, int n, trm_batch *tb)
{
    int T = 1;
    for (int i = 0; i < n; i++)
        if (s->it[idx[i]].n > T)
            T = s->it[idx[i]].n;
    b->B = n;
    b->T = T;
    for (int i = 0; i < n; i++) {
        const tok_item *ti = &s->it[idx[i]];
        int *tk = b->tokens + (size_t)i * T, *tg = b->targets + (size_t)i * T;
        for (int t = 0; t < T; t++) {
            tk[t] = t < ti->n ? ti->tok[t] : 0;
            /* row t predicts token t + 1 */
            tg[t] = (t + 1 < ti->n && t + 1 >= ti->n_common) ? ti->tok[t + 1] : -1;
        }
        b->lengths[i] = ti->n;
    }
    memset(tb, 0, sizeof *tb);
    tb->B = n;
    tb->T = T;
    tb->tokens = b->tokens;
    tb->lengths = b->lengths;
    tb->targets = b->targets;
}

/* ---------------------------------------------------------------- evaluation */

static int argmax_row(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

typedef struct {
    int *pick;   /* [n] chosen choice or -1 (may be NULL) */
    int *exact;  /* [n] */
    char **text; /* [n] generated text (may be NULL) */
} eval_detail;

/* Evaluates t on s (dataset d for the choices). Greedy generation runs
 * through the inference engine (train_eval.c) when sp is given and is not
 * full fine-tuning, else through the graph t (the reference path). */
static int eval_run(trm_f32 *t, const steer_model *m, const steer_dataset *d, const tok_set *s, int Bc,
                    const trm_spec *sp, steer_eval_result *res, eval_detail *det)
{
    memset(res, 0, sizeof *res);
    tr_engine *eng = NULL;
    int *kg = NULL; /* [Bc] tokens to generate per sequence */
    if (sp && !sp->full) {
        int Tmax = s->max_len > s->max_gen_len ? s->max_len : s->max_gen_len;
        int erc = tr_engine_new(m, t, sp, Bc, Tmax, &eng);
        if (!erc && !(kg = malloc((size_t)Bc * sizeof *kg)))
            erc = steer_err(STEER_ENOMEM, "out of memory");
        if (erc) {
            tr_engine_free(eng);
            return erc;
        }
    }
    const int V = m->cfg.n_vocab;
    int Tc = s->max_len > s->max_gen_len ? s->max_len : s->max_gen_len;
    batch_buf bb = {0};
    int *idx = malloc((size_t)Bc * sizeof *idx);
    int rc = batch_alloc(&bb, Bc, Tc);
    if (!rc && !idx)
        rc = steer_err(STEER_ENOMEM, "out of memory");
    double ce_sum = 0.0;
    long n_ce = 0;
    int n_exact = 0, n_acc = 0, n_format = 0;
    char *text = NULL;
    size_t text_cap = 0;
    for (int i0 = 0; !rc && i0 < s->n; i0 += Bc) {
        int n = s->n - i0 < Bc ? s->n - i0 : Bc;
        for (int i = 0; i < n; i++)
            idx[i] = i0 + i;
        /* loss */
        trm_batch tb;
        batch_fill(&bb, s, idx, n, &tb);
        if ((rc = trm_forward_f32(t, &tb)))
            break;
        trm_loss L = trm_get_loss_f32(t);
        ce_sum += L.ce * L.n_ce;
        n_ce += L.n_ce;
        /* greedy generation */
        int Tg = 1, K = 0;
        for (int i = 0; i < n; i++) {
            const tok_item *ti = &s->it[i0 + i];
            if (ti->n_prompt + ti->k_gen > Tg)
                Tg = ti->n_prompt + ti->k_gen;
            if (ti->k_gen > K)
                K = ti->k_gen;
        }
        for (int i = 0; i < n; i++) {
            const tok_item *ti = &s->it[i0 + i];
            int *tk = bb.tokens + (size_t)i * Tg;
            for (int q = 0; q < Tg; q++)
                tk[q] = q < ti->n_prompt ? ti->prompt[q] : 0;
            bb.lengths[i] = ti->n_prompt;
        }
        memset(&tb, 0, sizeof tb);
        tb.B = n;
        tb.T = Tg;
        tb.tokens = bb.tokens;
        tb.lengths = bb.lengths;
        if (eng) {
            for (int i = 0; i < n; i++)
                kg[i] = s->it[i0 + i].k_gen;
            rc = tr_engine_generate(eng, n, Tg, bb.tokens, bb.lengths, kg);
            K = 0; /* done: skip the graph loop */
        }
        for (int k = 0; k < K && !rc; k++) {
            if ((rc = trm_forward_f32(t, &tb)))
                break;
            const float *lg = trm_logits_f32(t);
            for (int i = 0; i < n; i++) {
                const tok_item *ti = &s->it[i0 + i];
                if (k >= ti->k_gen)
                    continue;
                int len = bb.lengths[i];
                int tok = argmax_row(lg + ((size_t)i * Tg + (size_t)(len - 1)) * V, V);
                bb.tokens[(size_t)i * Tg + len] = tok;
                bb.lengths[i] = len + 1;
            }
        }
        if (rc)
            break;
        for (int i = 0; i < n; i++) {
            const tok_item *ti = &s->it[i0 + i];
            const steer_data_item *di = steer_data_at(d, i0 + i);
            const int *gen = bb.tokens + (size_t)i * Tg + ti->n_prompt;
            int ng = bb.lengths[i] - ti->n_prompt;
            /* exact: generated tokens vs the gold completion's tokens (the
               gold prefix shared with the prompt's tokenization is the same
               as the prompt by construction when n_common == n_prompt) */
            int gold_n = ti->n - ti->n_common, ex = ti->n_common == ti->n_prompt && ng >= gold_n;
            for (int q = 0; ex && q < gold_n; q++)
                ex = gen[q] == ti->tok[ti->n_common + q];
            /* decode */
            size_t len = 0;
            int prev = ti->prompt[ti->n_prompt - 1];
            for (int q = 0; q < ng; q++) {
                size_t pl = 0;
                const char *pc = steer_token_piece(m, prev, gen[q], &pl);
                if (!pc)
                    pl = 0;
                if (len + pl + 1 > text_cap) {
                    size_t nc = (len + pl + 1) * 2 + 64;
                    char *nt = realloc(text, nc);
                    if (!nt) {
                        rc = steer_err(STEER_ENOMEM, "out of memory");
                        break;
                    }
                    text = nt;
                    text_cap = nc;
                }
                memcpy(text + len, pc ? pc : "", pl);
                len += pl;
                prev = gen[q];
            }
            if (rc)
                break;
            if (!text) {
                text = malloc(64);
                if (!text) {
                    rc = steer_err(STEER_ENOMEM, "out of memory");
                    break;
                }
                text_cap = 64;
            }
            text[len] = 0;
            int pick = -1;
            for (int c = 0; c < di->n_choices && pick < 0; c++)
                if (strncmp(text, di->choices[c], strlen(di->choices[c])) == 0)
                    pick = c;
            if (!ex && di->n_choices == 0 && strncmp(text, di->completion, strlen(di->completion)) == 0)
                ex = 1; /* the same text by other tokens */
            n_exact += ex;
            n_format += pick >= 0;
            n_acc += di->n_choices > 0 ? (pick >= 0 && pick == di->label) : ex;
            if (det) {
                if (det->pick)
                    det->pick[i0 + i] = pick;
                if (det->exact)
                    det->exact[i0 + i] = ex;
                if (det->text) {
                    det->text[i0 + i] = strdup(text);
                    if (!det->text[i0 + i])
                        rc = steer_err(STEER_ENOMEM, "out of memory");
                }
            }
        }
    }
    free(text);
    free(idx);
    free(kg);
    tr_engine_free(eng);
    batch_free(&bb);
    if (rc)
        return rc;
    res->n = s->n;
    res->loss = n_ce > 0 ? ce_sum / (double)n_ce : NAN;
    res->exact = (double)n_exact / s->n;
    res->acc = (double)n_acc / s->n;
    res->format = (double)n_format / s->n;
    res->n_tokens = n_ce;
    return STEER_OK;
}

/* ---------------------------------------------------------------- files */

void tr_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void layers_str(const uint8_t *mask, int L, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = 0;
    for (int l = 0; l < L && o + 8 < n; l++)
        if (mask[l])
            o += (size_t)snprintf(buf + o, n - o, "%s%d", o ? "," : "", l);
}

static int meta_int(steer_tensors_writer *w, const char *k, long long v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    return steer_tensors_writer_meta(w, k, b);
}

static int meta_dbl(steer_tensors_writer *w, const char *k, double v)
{
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    return steer_tensors_writer_meta(w, k, b);
}

/* Metadata describing the trainable set (enough to rebuild the spec). */
static int write_spec_meta(steer_tensors_writer *w, const steer_model *m, const steer_train_params *p,
                           const trm_spec *s)
{
    char lay[4096];
    layers_str(s->steer_layers, m->cfg.n_layer, lay, sizeof lay);
    int rc = 0;
    rc |= steer_tensors_writer_meta(w, "format_version", "1");
    rc |= steer_tensors_writer_meta(w, "method", p->method);
    rc |= steer_tensors_writer_meta(w, "site", steer_site_name(s->steer_site));
    rc |= steer_tensors_writer_meta(w, "layers", lay);
    rc |= meta_int(w, "rank", s->steer != TRM_STEER_NONE ? s->steer_rank : s->lora_rank);
    rc |= meta_int(w, "lora_rank", s->lora_rank);
    rc |= meta_dbl(w, "lora_alpha", s->lora_alpha);
    rc |= meta_int(w, "lora_targets", (long long)s->lora_targets);
    rc |= steer_tensors_writer_meta(w, "act", trm_act_name(s->steer_act));
    rc |= meta_dbl(w, "alpha", s->steer_alpha);
    rc |= steer_tensors_writer_meta(w, "model.arch", m->cfg.arch_name);
    rc |= meta_int(w, "model.n_layer", m->cfg.n_layer);
    rc |= meta_int(w, "model.d_model", m->cfg.d_model);
    rc |= meta_int(w, "model.n_vocab", m->cfg.n_vocab);
    if (p->model_hint)
        rc |= steer_tensors_writer_meta(w, "model_hint", p->model_hint);
    if (p->command)
        rc |= steer_tensors_writer_meta(w, "command", p->command);
    return rc ? steer_err(STEER_ENOMEM, "out of memory") : STEER_OK;
}

int tr_save_adapter(trm_f32 *t, const steer_model *m, const steer_train_params *p, const trm_spec *s,
                    const char *path, int64_t step)
{
    steer_tensors_writer *w = NULL;
    int rc = steer_tensors_writer_new(&w);
    if (rc)
        return rc;
    float *P = trm_params_f32(t);
    for (int i = 0; !rc && i < trm_n_tensors_f32(t); i++) {
        const trm_param *tp = trm_tensor_f32(t, i);
        const int lora = tp->kind == TRM_P_LORA_A || tp->kind == TRM_P_LORA_B;
        if (tp->kind == TRM_P_WEIGHT || (lora && !s->lora_rank) || (!lora && s->steer == TRM_STEER_NONE))
            continue; /* only the tensors of s */
        rc = steer_tensors_writer_add(w, tp->name, STEER_DTYPE_F32, tp->n_dims, tp->shape, P + tp->offset);
    }
    if (!rc)
        rc = write_spec_meta(w, m, p, s);
    if (!rc && step >= 0)
        rc = meta_int(w, "train.step", step);
    if (!rc)
        rc = steer_tensors_writer_write(w, path);
    steer_tensors_writer_free(w);
    return rc;
}

/* Full fine-tuning: an HF directory at dir (converted from the base model,
 * then model.safetensors replaced by the trained weights). */
int tr_write_hf(trm_f32 *t, const steer_model *m, const char *model_path, const char *tokenizer_path,
                const char *command, const char *dir)
{
    if (!model_path)
        return steer_err(STEER_EARG, "full fine-tuning needs the model's path to write a checkpoint");
    char tmp[4200], st[4300];
    if (strlen(dir) > 4000)
        return steer_err(STEER_EARG, "output path too long");
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    tr_remove_dir(tmp);
    steer_convert_params cp = steer_convert_default_params();
    cp.format = "hf";
    cp.dtype = STEER_DTYPE_F32;
    cp.tokenizer_path = tokenizer_path;
    int rc = steer_convert(model_path, tmp, &cp);
    if (rc)
        return rc;
    steer_tensors_writer *w = NULL;
    if ((rc = steer_tensors_writer_new(&w)))
        return rc;
    const float *P = trm_params_f32(t);
    int nt = trm_n_tensors_f32(t);
    float **bufs = calloc((size_t)nt, sizeof *bufs);
    if (!bufs)
        rc = steer_err(STEER_ENOMEM, "out of memory");
    const int hd = m->cfg.head_dim;
    for (int i = 0; !rc && i < nt; i++) {
        const trm_param *tp = trm_tensor_f32(t, i);
        if (tp->kind != TRM_P_WEIGHT)
            continue;
        const float *src = P + tp->offset;
        int perm = m->rope == ROPE_ADJACENT &&
                   (tp->role == W_Q || tp->role == W_K || tp->role == W_Q_BIAS || tp->role == W_K_BIAS);
        if (perm || tp->norm_plus_one) {
            bufs[i] = malloc(tp->numel * sizeof(float));
            if (!bufs[i]) {
                rc = steer_err(STEER_ENOMEM, "out of memory");
                break;
            }
            int64_t rows = tp->shape[0], cols = tp->n_dims == 2 ? tp->shape[1] : 1;
            for (int64_t r = 0; r < rows; r++) {
                int64_t sr = r;
                if (perm) {
                    int64_t h = r / hd, j = r % hd, half = hd / 2;
                    sr = h * hd + 2 * (j % half) + j / half;
                }
                for (int64_t c = 0; c < cols; c++)
                    bufs[i][r * cols + c] = src[sr * cols + c] - (tp->norm_plus_one ? 1.0f : 0.0f);
            }
            src = bufs[i];
        }
        rc = steer_tensors_writer_add(w, tp->name, STEER_DTYPE_F32, tp->n_dims, tp->shape, src);
    }
    if (!rc && command)
        rc = steer_tensors_writer_meta(w, "command", command);
    if (!rc)
        rc = steer_tensors_writer_meta(w, "format", "pt");
    snprintf(st, sizeof st, "%s/model.safetensors", tmp);
    if (!rc)
        rc = steer_tensors_writer_write(w, st);
    steer_tensors_writer_free(w);
    for (int i = 0; bufs && i < nt; i++)
        free(bufs[i]);
    free(bufs);
    if (!rc) {
        steer_model *chk = NULL;
        rc = steer_model_load(tmp, NULL, &chk);
        steer_model_free(chk);
    }
    if (rc) {
        tr_remove_dir(tmp);
        return rc;
    }
    tr_remove_dir(dir);
    if (rename(tmp, dir) != 0) {
        tr_remove_dir(tmp);
        return steer_err(STEER_EIO, "%s: cannot rename to %s: %s", tmp, dir, strerror(errno));
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- describe */

int steer_train_describe(const steer_model *m, const steer_train_params *p, char **text, size_t *n_trainable,
                         size_t *n_model)
{
    spec_buf sb = {0};
    int rc = tr_build_spec(m, p, 1, 2, &sb);
    trm_f32 *t = NULL;
    if (!rc)
        rc = trm_new_f32(m, &sb.spec, &t);
    free(sb.layers);
    if (rc)
        return rc;
    size_t cap = 4096, len = 0;
    char *buf = text ? malloc(cap) : NULL;
    if (text && !buf) {
        trm_free_f32(t);
        return steer_err(STEER_ENOMEM, "out of memory");
    }
    if (buf)
        buf[0] = 0;
    for (int i = 0; buf && i < trm_n_tensors_f32(t); i++) {
        const trm_param *tp = trm_tensor_f32(t, i);
        char line[256];
        int k = tp->n_dims == 2 ? snprintf(line, sizeof line, "%-64s [%lld, %lld] %zu\n", tp->name,
                                           (long long)tp->shape[0], (long long)tp->shape[1], tp->numel)
                                : snprintf(line, sizeof line, "%-64s [%lld] %zu\n", tp->name, (long long)tp->shape[0],
                                           tp->numel);
        if (len + (size_t)k + 1 > cap) {
            cap = (len + (size_t)k + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                trm_free_f32(t);
                return steer_err(STEER_ENOMEM, "out of memory");
            }
            buf = nb;
        }
        memcpy(buf + len, line, (size_t)k + 1);
        len += (size_t)k;
    }
    if (text)
        *text = buf;
    if (n_trainable)
        *n_trainable = trm_numel_f32(t);
    if (n_model)
        *n_model = trm_model_numel_f32(t);
    trm_free_f32(t);
    return STEER_OK;
}

/* ---------------------------------------------------------------- training */

static const char *eval_cols[] = {"eval_loss", "eval_acc", "eval_exact", "eval_format"};

static int save_state(const tr_adamw *o, const steer_model *m, const steer_train_params *p, const trm_spec *s,
                      const char *path, int64_t total)
{
    steer_tensors_writer *w = NULL;
    int rc = steer_tensors_writer_new(&w);
    if (rc)
        return rc;
    rc = tr_adamw_write(o, w, 1);
    if (!rc)
        rc = write_spec_meta(w, m, p, s);
    if (!rc)
        rc = meta_int(w, "train.batch", p->batch);
    if (!rc)
        rc = meta_int(w, "train.accum", p->accum);
    if (!rc)
        rc = meta_int(w, "train.seed", (long long)p->seed);
    if (!rc)
        rc = meta_int(w, "train.total_steps", total);
    if (!rc)
        rc = steer_tensors_writer_write(w, path);
    steer_tensors_writer_free(w);
    return rc;
}

static int check_meta_int(const steer_tensors *st, const char *path, const char *key, long long want)
{
    const char *v = steer_tensors_meta(st, key);
    if (!v || strtoll(v, NULL, 10) != want)
        return steer_err(STEER_EARG, "%s: cannot resume: %s was %s, now %lld", path, key, v ? v : "(missing)", want);
    return STEER_OK;
}

static int train_run(const steer_model *m, const steer_dataset *train, const steer_dataset *eval,
                     const steer_train_params *p, steer_train_result *res);

int steer_train(const steer_model *m, const steer_dataset *train, const steer_dataset *eval,
                const steer_train_params *p, steer_train_result *res)
{
    /* p->n_threads > 0: the run's OpenMP regions use that many threads (the
     * caller's setting is restored afterwards). */
    const int prev = omp_get_max_threads();
    if (p && p->n_threads > 0) omp_set_num_threads(p->n_threads);
    int rc = train_run(m, train, eval, p, res);
    omp_set_num_threads(prev);
    return rc;
}

static int train_run(const steer_model *m, const steer_dataset *train, const steer_dataset *eval,
                     const steer_train_params *p, steer_train_result *res)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (p->batch < 1 || p->accum < 1)
        return steer_err(STEER_EARG, "batch and accum must be >= 1");
    if (p->steps <= 0 && !(p->epochs > 0))
        return steer_err(STEER_EARG, "give the number of steps or epochs");
    if (!p->out_dir && p->resume)
        return steer_err(STEER_EARG, "--resume needs an output directory");
    int rc;
    tok_set tr = {0}, ev = {0};
    spec_buf sb = {0};
    trm_f32 *t = NULL;
    tr_adamw *opt = NULL;
    tr_group *groups = NULL;
    tr_log *log = NULL;
    batch_buf bb = {0};
    int *perm = NULL, *idx = NULL;
    char path[4096], path2[4096];
    int perm_epoch = -1;

    if ((rc = tok_set_build(m, train, 0, &tr)))
        goto done;
    if (eval && (rc = tok_set_build(m, eval, p->eval_max, &ev)))
        goto done;
    int Tc = tr.max_len;
    if (ev.n) {
        if (ev.max_len > Tc)
            Tc = ev.max_len;
        if (ev.max_gen_len > Tc)
            Tc = ev.max_gen_len;
    }
    int Bev = p->eval_batch > 0 ? p->eval_batch : 16;
    int Bc = p->batch > Bev || !ev.n ? p->batch : Bev;
    if ((rc = tr_build_spec(m, p, Bc, Tc, &sb)))
        goto done;
    if ((rc = trm_new_f32(m, &sb.spec, &t)))
        goto done;
    const int64_t per_step = (int64_t)p->batch * p->accum;
    int64_t total = p->steps > 0 ? p->steps : (int64_t)ceil(p->epochs * tr.n / (double)per_step - 1e-9);
    if (total < 1)
        total = 1;
    tr_schedule sch = tr_schedule_default();
    sch.kind = p->schedule == STEER_SCHED_CONSTANT ? TR_SCHED_CONSTANT
               : p->schedule == STEER_SCHED_COSINE ? TR_SCHED_COSINE
                                                    : TR_SCHED_LINEAR;
    sch.lr = p->lr > 0 ? p->lr : steer_train_default_lr(p->method);
    sch.total_steps = total;
    sch.warmup_frac = p->warmup;
    if ((rc = tr_schedule_check(&sch)))
        goto done;
    int ng = trm_n_tensors_f32(t);
    groups = calloc((size_t)ng, sizeof *groups);
    if (!groups) {
        rc = steer_err(STEER_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < ng; i++) {
        const trm_param *tp = trm_tensor_f32(t, i);
        groups[i] = tr_group_make(tp->name, trm_params_f32(t) + tp->offset, trm_grads_f32(t) + tp->offset, tp->numel);
    }
    tr_adamw_params ap = tr_adamw_default_params();
    ap.weight_decay = p->weight_decay;
    ap.clip_norm = p->clip;
    if ((rc = tr_adamw_new(groups, ng, &ap, &opt)))
        goto done;
    int64_t step0 = 0;
    if (p->out_dir) {
        if ((rc = io_mkdir_p(p->out_dir)))
            goto done;
        snprintf(path, sizeof path, "%s/state.safetensors", p->out_dir);
        if (p->resume && access(path, F_OK) == 0) {
            steer_tensors *st = NULL;
            if ((rc = steer_tensors_open(path, &st)))
                goto done;
            rc = check_meta_int(st, path, "train.batch", p->batch);
            if (!rc)
                rc = check_meta_int(st, path, "train.accum", p->accum);
            if (!rc)
                rc = check_meta_int(st, path, "train.seed", (long long)p->seed);
            const char *mm = steer_tensors_meta(st, "method");
            if (!rc && (!mm || strcmp(mm, p->method) != 0))
                rc = steer_err(STEER_EARG, "%s: cannot resume: method was %s, now %s", path, mm ? mm : "(missing)",
                               p->method);
            if (!rc)
                rc = tr_adamw_read(opt, st, path, 1);
            steer_tensors_free(st);
            if (rc)
                goto done;
            step0 = tr_adamw_steps(opt);
        } else if (p->resume) {
            rc = steer_err(STEER_EIO, "%s: nothing to resume from (no state file)", path);
            goto done;
        }
        snprintf(path, sizeof path, "%s/train.csv", p->out_dir);
        if ((rc = tr_log_open(path, ev.n ? eval_cols : NULL, ev.n ? 4 : 0, p->resume ? step0 : -1, &log)))
            goto done;
    }
    if ((rc = batch_alloc(&bb, Bc, Tc)))
        goto done;
    perm = malloc((size_t)tr.n * sizeof *perm);
    idx = malloc((size_t)(p->batch > Bc ? p->batch : Bc) * sizeof *idx);
    if (!perm || !idx) {
        rc = steer_err(STEER_ENOMEM, "out of memory");
        goto done;
    }
    if (res) {
        res->n_trainable = trm_numel_f32(t);
        res->n_model = trm_model_numel_f32(t);
        res->total_steps = total;
    }
    steer_eval_result er;
    if (ev.n) {
        if ((rc = eval_run(t, m, eval, &ev, Bev, &sb.spec, &er, NULL)))
            goto done;
        if (res)
            res->before = er, res->after = er;
        if (log && step0 == 0) {
            double e[4] = {er.loss, er.acc, er.exact, er.format};
            if ((rc = tr_log_row(log, 0, NAN, NAN, NAN, e, NAN)))
                goto done;
        }
    }
    const int tty = p->progress == 2 ? 0 : isatty(2);
    const double t_start = io_now_s();
    double tok_count = 0;
    for (int64_t s = step0; s < total; s++) {
        double t0 = io_now_s();
        trm_zero_grad_f32(t);
        double loss_sum = 0;
        long ntok = 0;
        for (int a = 0; a < p->accum; a++) {
            int64_t g0 = (s * p->accum + a) * (int64_t)p->batch;
            for (int b = 0; b < p->batch; b++) {
                int64_t g = g0 + b;
                int e = (int)(g / tr.n);
                if (e != perm_epoch) {
                    steer_data_permutation(tr.n, p->seed + (uint64_t)e, perm);
                    perm_epoch = e;
                }
                idx[b] = perm[g % tr.n];
            }
            trm_batch tb;
            batch_fill(&bb, &tr, idx, p->batch, &tb);
            if ((rc = trm_forward_f32(t, &tb)) || (rc = trm_backward_f32(t)))
                goto done;
            trm_loss L = trm_get_loss_f32(t);
            loss_sum += L.ce;
            for (int b = 0; b < p->batch; b++)
                ntok += bb.lengths[b];
        }
        if (p->accum > 1)
            tr_grad_scale(groups, ng, 1.0f / (float)p->accum);
        double lr = tr_schedule_lr(&sch, tr_adamw_steps(opt)), gnorm = 0;
        if ((rc = tr_adamw_step(opt, lr, &gnorm))) {
            if (rc == STEER_ENAN) /* name the update that met it */
                rc = steer_err(STEER_ENAN, "step %lld: %s (loss %g)", (long long)tr_adamw_steps(opt) + 1,
                               steer_last_error(), loss_sum / p->accum);
            goto done;
        }
        trm_constrain_f32(t);
        double loss = loss_sum / p->accum;
        int64_t done_steps = tr_adamw_steps(opt);
        double dt = io_now_s() - t0;
        tok_count += (double)ntok;
        if (res) {
            res->steps = done_steps;
            res->train_loss = loss;
            if (res->loss_curve && done_steps - 1 < res->loss_curve_cap)
                res->loss_curve[done_steps - 1] = loss;
        }
        if (!isfinite(loss)) {
            rc = steer_err(STEER_ENAN, "training loss is not finite at step %lld", (long long)done_steps);
            goto done;
        }
        int do_eval = ev.n && ((p->eval_every > 0 && done_steps % p->eval_every == 0) || done_steps == total);
        double e[4] = {NAN, NAN, NAN, NAN};
        if (do_eval) {
            if ((rc = eval_run(t, m, eval, &ev, Bev, &sb.spec, &er, NULL)))
                goto done;
            e[0] = er.loss, e[1] = er.acc, e[2] = er.exact, e[3] = er.format;
            if (res)
                res->after = er;
        }
        if (log && (rc = tr_log_row(log, done_steps, lr, loss, gnorm, ev.n ? e : NULL, dt > 0 ? ntok / dt : NAN)))
            goto done;
        if (p->progress) {
            double el = io_now_s() - t_start;
            tr_progress_print(stderr, tty, done_steps, total, loss, lr, el > 0 ? tok_count / el : NAN, el);
        }
        int stop = p->stop_after > 0 && done_steps >= p->stop_after;
        if (p->on_step) {
            steer_train_step ts = {done_steps, total, loss, lr, gnorm, sb.spec.joint ? trm_joint_overlap_f32(t) : 0.0, t};
            if (p->on_step(p->on_step_ud, &ts) != 0)
                stop = 1;
        }
        int do_save = p->out_dir && (done_steps == total || stop || (p->save_every > 0 && done_steps % p->save_every == 0) ||
                                     (p->save_every == 0 && do_eval));
        if (do_save) {
            if (sb.spec.full) {
                snprintf(path, sizeof path, "%s/model", p->out_dir);
                rc = tr_write_hf(t, m, p->model_path, p->tokenizer_path, p->command, path);
            } else {
                snprintf(path, sizeof path, "%s/adapter.safetensors", p->out_dir);
                rc = tr_save_adapter(t, m, p, &sb.spec, path, done_steps);
            }
            snprintf(path2, sizeof path2, "%s/state.safetensors", p->out_dir);
            if (!rc)
                rc = save_state(opt, m, p, &sb.spec, path2, total);
            if (rc)
                goto done;
        }
        if (stop)
            break;
    }
    if (p->progress)
        tr_progress_end(stderr, tty);
    if (log) {
        rc = tr_log_close(log);
        log = NULL;
        if (rc)
            goto done;
        snprintf(path, sizeof path, "%s/train.csv", p->out_dir);
        snprintf(path2, sizeof path2, "%s/loss.png", p->out_dir);
        if ((rc = tr_log_plot(path, path2, p->method)))
            goto done;
        snprintf(path2, sizeof path2, "%s/loss.svg", p->out_dir);
        if ((rc = tr_log_plot(path, path2, p->method)))
            goto done;
    }
    if (res && p->params_out) {
        size_t n = trm_numel_f32(t);
        float *cp = malloc(n * sizeof *cp);
        if (!cp) {
            rc = steer_err(STEER_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(cp, trm_params_f32(t), n * sizeof *cp);
        res->params = cp;
        res->n_params = n;
    }
done:
    if (log)
        tr_log_close(log);
    free(perm);
    free(idx);
    batch_free(&bb);
    tr_adamw_free(opt);
    free(groups);
    trm_free_f32(t);
    free(sb.layers);
    tok_set_free(&tr);
    tok_set_free(&ev);
    return rc;
}

/* ---------------------------------------------------------------- on_step */

const float *steer_train_step_tensor(const steer_train_step *s, const char *name, int *n_dims, int64_t shape[2])
{
    if (!s || !s->state_ || !name)
        return NULL;
    trm_f32 *t = (trm_f32 *)(uintptr_t)s->state_; /* const only towards the caller */
    int i = trm_find_tensor_f32(t, name);
    if (i < 0)
        return NULL;
    const trm_param *tp = trm_tensor_f32(t, i);
    if (n_dims)
        *n_dims = tp->n_dims;
    if (shape)
        shape[0] = tp->shape[0], shape[1] = tp->shape[1];
    return trm_params_f32(t) + tp->offset;
}

/* ---------------------------------------------------------------- checkpoints */

/* A checkpoint's "act" (one of act_names) as a steer_act; DEFAULT if unknown. */
static steer_act parse_act(const char *s)
{
    steer_act a;
    return steer_act_parse(s, &a) == STEER_OK ? a : STEER_ACT_DEFAULT;
}

int tr_params_from_checkpoint(const steer_tensors *st, const char *path, const steer_model *m,
                              steer_train_params *p, uint8_t **mask)
{
    *mask = NULL;
    *p = steer_train_default_params();
    const char *meth = steer_tensors_meta(st, "method");
    if (!meth)
        return steer_err(STEER_EFORMAT, "%s: not a steer training checkpoint (no 'method' metadata)", path);
    static const char *const train_methods[] = {"full", "lora", "vector", "adapter", "adapter-linear", "rank1",
                                                "loreft", "joint"};
    int known = 0;
    for (size_t i = 0; i < sizeof train_methods / sizeof train_methods[0]; i++) known |= strcmp(meth, train_methods[i]) == 0;
    if (!known) {
        if (strcmp(meth, "capture") == 0 || strcmp(meth, "logits") == 0)
            return steer_err(STEER_EFORMAT,
                             "%s: is an output of steer %s (activations), not a training checkpoint: expected the "
                             "adapter.safetensors that steer train writes",
                             path, meth);
        return steer_err(STEER_EFORMAT,
                         "%s: is a steering vector file (method '%s'), not a training checkpoint: pass it with --steer; "
                         "--adapter expects the adapter.safetensors that steer train writes",
                         path, meth);
    }
    const char *v;
    long long ml;
    if ((v = steer_tensors_meta(st, "model.n_layer")) && (ml = strtoll(v, NULL, 10)) != m->cfg.n_layer)
        return steer_err(STEER_EARG, "%s: trained for a model with %lld layers; this model has %d", path, ml,
                         m->cfg.n_layer);
    if ((v = steer_tensors_meta(st, "model.d_model")) && (ml = strtoll(v, NULL, 10)) != m->cfg.d_model)
        return steer_err(STEER_EARG, "%s: trained for a model with d_model %lld; this model has %d", path, ml,
                         m->cfg.d_model);
    if ((v = steer_tensors_meta(st, "model.n_vocab")) && (ml = strtoll(v, NULL, 10)) != m->cfg.n_vocab)
        return steer_err(STEER_EARG, "%s: trained for a model with a vocabulary of %lld; this model has %d", path, ml,
                         m->cfg.n_vocab);
    if (strcmp(meth, "full") == 0)
        return steer_err(STEER_EARG, "%s: a full fine-tuning checkpoint is a model: pass it with -m", path);
    p->method = meth;
    if ((v = steer_tensors_meta(st, "site")) && steer_site_parse(v, &p->site) != STEER_OK)
        return steer_err(STEER_EFORMAT, "%s: unknown site '%s'", path, v);
    const char *rk = steer_tensors_meta(st, "rank"), *lr = steer_tensors_meta(st, "lora_rank");
    p->rank = rk ? atoi(rk) : 0;
    if (lr && atoi(lr) > 0 && strcmp(meth, "joint") != 0)
        p->rank = atoi(lr);
    if (strcmp(meth, "joint") == 0 && lr && rk && atoi(lr) != atoi(rk))
        return steer_err(STEER_EUNSUPPORTED, "%s: joint with different LoRA and adapter ranks", path);
    if ((v = steer_tensors_meta(st, "act")))
        p->act = parse_act(v);
    if ((v = steer_tensors_meta(st, "alpha")))
        p->alpha = (float)strtod(v, NULL);
    if ((v = steer_tensors_meta(st, "lora_alpha")))
        p->lora_alpha = (float)strtod(v, NULL);
    if ((v = steer_tensors_meta(st, "lora_targets")))
        p->lora_targets = (unsigned)strtoul(v, NULL, 10);
    *mask = calloc((size_t)m->cfg.n_layer, 1);
    if (!*mask)
        return steer_err(STEER_ENOMEM, "out of memory");
    if ((v = steer_tensors_meta(st, "layers"))) {
        const char *q = v;
        while (*q) {
            char *e;
            long l = strtol(q, &e, 10);
            if (e == q || l < 0 || l >= m->cfg.n_layer)
                return steer_err(STEER_EARG, "%s: layer list '%s' does not fit this model (%d layers)", path, v,
                                 m->cfg.n_layer);
            (*mask)[l] = 1;
            q = *e == ',' ? e + 1 : e;
            if (*e && *e != ',')
                break;
        }
        p->layers = *mask;
    }
    return STEER_OK;
}

int tr_load_checkpoint(trm_f32 *t, const steer_tensors *st, const char *path)
{
    float *P = trm_params_f32(t);
    int n = 0;
    for (int i = 0; i < trm_n_tensors_f32(t); i++) {
        const trm_param *tp = trm_tensor_f32(t, i);
        if (tp->kind == TRM_P_WEIGHT)
            continue;
        n++;
        const steer_tensor_info *ti = steer_tensors_find(st, tp->name);
        if (!ti)
            return steer_err(STEER_EFORMAT, "%s: missing tensor %s", path, tp->name);
        int ok = ti->dtype == STEER_DTYPE_F32 && ti->n_dims == tp->n_dims && ti->shape[0] == tp->shape[0] &&
                 (tp->n_dims == 1 || ti->shape[1] == tp->shape[1]);
        if (!ok) {
            if (tp->n_dims == 2)
                return steer_err(STEER_EARG, "%s: tensor %s has the wrong shape or type (this model needs F32 [%lld, %lld])",
                                 path, tp->name, (long long)tp->shape[0], (long long)tp->shape[1]);
            return steer_err(STEER_EARG, "%s: tensor %s has the wrong shape or type (this model needs F32 [%lld])", path,
                             tp->name, (long long)tp->shape[0]);
        }
        memcpy(P + tp->offset, ti->data, tp->numel * sizeof(float));
        for (size_t k = 0; k < tp->numel; k++)
            if (!isfinite(P[tp->offset + k]))
                return steer_err(STEER_ENAN, "%s: tensor %s holds NaN or Inf", path, tp->name);
    }
    if (steer_tensors_count(st) != n)
        return steer_err(STEER_EFORMAT, "%s: holds %d tensors; the method expects %d", path, steer_tensors_count(st), n);
    return STEER_OK;
}

/* ---------------------------------------------------------------- evaluation API */

static int eval_dataset_run(const steer_model *m, const char *adapter, const steer_dataset *d, const steer_eval_params *ep,
                    steer_eval_result *res, steer_eval_item *items);

int steer_eval_dataset(const steer_model *m, const char *adapter, const steer_dataset *d,
                       const steer_eval_params *ep, steer_eval_result *res, steer_eval_item *items)
{
    const int prev = omp_get_max_threads();
    if (ep && ep->n_threads > 0) omp_set_num_threads(ep->n_threads);
    int rc = eval_dataset_run(m, adapter, d, ep, res, items);
    omp_set_num_threads(prev);
    return rc;
}

static int eval_dataset_run(const steer_model *m, const char *adapter, const steer_dataset *d, const steer_eval_params *ep,
                    steer_eval_result *res, steer_eval_item *items)
{
    memset(res, 0, sizeof *res);
    tok_set ev = {0};
    spec_buf sb = {0};
    trm_f32 *t = NULL;
    steer_tensors *st = NULL;
    uint8_t *mask = NULL;
    eval_detail det = {0};
    int rc = tok_set_build(m, d, ep ? ep->n_max : 0, &ev);
    if (rc)
        goto done;
    int Bev = ep && ep->batch > 0 ? ep->batch : 16;
    int Tc = ev.max_len > ev.max_gen_len ? ev.max_len : ev.max_gen_len;
    steer_train_params p = steer_train_default_params();
    p.method = "vector";
    int any = 0;
    if (adapter) {
        if ((rc = steer_tensors_open(adapter, &st)))
            goto done;
        if ((rc = tr_params_from_checkpoint(st, adapter, m, &p, &mask)))
            goto done;
        any = 1;
    }
    if ((rc = tr_build_spec(m, &p, Bev, Tc, &sb)))
        goto done;
    if (!any)
        sb.spec.steer = TRM_STEER_NONE; /* plain model */
    if ((rc = trm_new_f32(m, &sb.spec, &t)))
        goto done;
    if (st && (rc = tr_load_checkpoint(t, st, adapter)))
        goto done;
    if (items) {
        det.pick = calloc((size_t)ev.n, sizeof(int));
        det.exact = calloc((size_t)ev.n, sizeof(int));
        det.text = calloc((size_t)ev.n, sizeof(char *));
        if (!det.pick || !det.exact || !det.text) {
            rc = steer_err(STEER_ENOMEM, "out of memory");
            goto done;
        }
    }
    rc = eval_run(t, m, d, &ev, Bev, ep && ep->graph ? NULL : &sb.spec, res, items ? &det : NULL);
    if (!rc && items) {
        for (int i = 0; i < ev.n; i++) {
            items[i].pick = det.pick[i];
            items[i].exact = det.exact[i];
            items[i].text = det.text[i];
            det.text[i] = NULL;
        }
    }
done:
    if (det.text)
        for (int i = 0; i < ev.n; i++)
            free(det.text[i]);
    free(det.text);
    free(det.pick);
    free(det.exact);
    trm_free_f32(t);
    free(sb.layers);
    free(mask);
    steer_tensors_free(st);
    tok_set_free(&ev);
    return rc;
}

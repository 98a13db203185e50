/* cmd_extract.c — `steer extract`: steering vectors from contrastive prompts
 * (mean difference, PCA of paired differences, PCA of centred activations)
 * or from a base/fine-tuned model pair (oracle mean). The math is the
 * library's (steer_vec_mean_diff, steer_vec_pca); this file reads the
 * datasets, runs the model(s) and picks the token positions. Formats and
 * conventions: docs/VECTORS.md. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- datasets */

typedef struct {
    char *prompt;
    char *completion; /* NULL if none */
    const char *file; /* for messages */
    int line;
} sample;

typedef struct {
    sample *s;
    int n, cap;
} sample_list;

static void samples_free(sample_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->s[i].prompt);
        free(l->s[i].completion);
    }
    free(l->s);
    memset(l, 0, sizeof *l);
}

static int samples_push(sample_list *l, const char *prompt, const char *completion, const char *file, int line)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        sample *p = realloc(l->s, (size_t)cap * sizeof *p);
        if (!p)
            return cli_error("out of memory");
        l->s = p;
        l->cap = cap;
    }
    sample *s = &l->s[l->n];
    s->prompt = strdup(prompt);
    s->completion = completion ? strdup(completion) : NULL;
    s->file = file;
    s->line = line;
    if (!s->prompt || (completion && !s->completion)) {
        free(s->prompt);
        free(s->completion);
        return cli_error("out of memory");
    }
    l->n++;
    return 0;
}

static char *read_text_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (n + 1 >= cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf) {
        cli_error("out of memory");
        return NULL;
    }
    if (err) {
        free(buf);
        cli_error("%s: read error", path);
        return NULL;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        free(buf);
        cli_error("%s: holds a NUL byte (not a text file)", path);
        return NULL;
    }
    return buf;
}

/* Splits buf in place into lines; calls fn for each non-blank line. */
typedef int (*line_fn)(void *ud, char *line, int lineno);
static int for_each_line(char *buf, line_fn fn, void *ud)
{
    int lineno = 0;
    char *p = buf;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        size_t len = strlen(p);
        if (len && p[len - 1] == '\r')
            p[--len] = '\0';
        const char *q = p;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q) {
            int rc = fn(ud, p, lineno);
            if (rc)
                return rc;
        }
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

typedef struct {
    sample_list *out;
    const char *file;
    int jsonl;
} prompt_reader;

static int read_prompt_line(void *ud, char *line, int lineno)
{
    prompt_reader *r = ud;
    if (!r->jsonl)
        return samples_push(r->out, line, NULL, r->file, lineno);
    cJSON *o = cJSON_Parse(line);
    int rc = 0;
    if (!cJSON_IsObject(o)) {
        rc = cli_error("%s:%d: not a JSON object (JSONL prompt files hold {\"prompt\": ..., \"completion\": ...})",
                       r->file, lineno);
    } else {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "prompt");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "completion");
        if (!cJSON_IsString(p))
            rc = cli_error("%s:%d: missing string field \"prompt\"", r->file, lineno);
        else if (c && !cJSON_IsString(c) && !cJSON_IsNull(c))
            rc = cli_error("%s:%d: field \"completion\" is not a string", r->file, lineno);
        else
            rc = samples_push(r->out, p->valuestring, cJSON_IsString(c) ? c->valuestring : NULL, r->file, lineno);
    }
    cJSON_Delete(o);
    return rc;
}

/* A prompt file: one prompt per line, or JSONL (first non-blank character
 * '{') with "prompt" and optional "completion". */
static int read_prompts(const char *path, sample_list *out)
{
    char *buf = read_text_file(path);
    if (!buf)
        return 1;
    const char *q = buf;
    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
        q++;
    prompt_reader r = {out, path, *q == '{'};
    int rc = for_each_line(buf, read_prompt_line, &r);
    free(buf);
    if (!rc && out->n == 0)
        rc = cli_error("%s: holds no prompts", path);
    return rc;
}

typedef struct {
    sample_list *pos, *neg;
    const char *file;
} pair_reader;

/* One side of a --data row: a string (the prompt, or with a shared "prompt"
 * field the completion) or an object {"prompt", "completion"}. */
static int read_side(pair_reader *r, const cJSON *row, const char *key, sample_list *out, int lineno)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    const cJSON *shared = cJSON_GetObjectItemCaseSensitive(row, "prompt");
    if (shared && !cJSON_IsString(shared))
        return cli_error("%s:%d: field \"prompt\" is not a string", r->file, lineno);
    if (cJSON_IsString(v))
        return shared ? samples_push(out, shared->valuestring, v->valuestring, r->file, lineno)
                      : samples_push(out, v->valuestring, NULL, r->file, lineno);
    if (cJSON_IsObject(v)) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(v, "prompt");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "completion");
        if (!cJSON_IsString(p))
            return cli_error("%s:%d: \"%s\" has no string field \"prompt\"", r->file, lineno, key);
        if (c && !cJSON_IsString(c) && !cJSON_IsNull(c))
            return cli_error("%s:%d: \"%s\".completion is not a string", r->file, lineno, key);
        return samples_push(out, p->valuestring, cJSON_IsString(c) ? c->valuestring : NULL, r->file, lineno);
    }
    return cli_error("%s:%d: missing field \"%s\" (a string or {\"prompt\", \"completion\"})", r->file, lineno, key);
}

static int read_pair_line(void *ud, char *line, int lineno)
{
    pair_reader *r = ud;
    cJSON *o = cJSON_Parse(line);
    int rc;
    if (!cJSON_IsObject(o))
        rc = cli_error("%s:%d: not a JSON object (--data rows are {\"positive\": ..., \"negative\": ...})", r->file,
                       lineno);
    else if ((rc = read_side(r, o, "positive", r->pos, lineno)) == 0)
        rc = read_side(r, o, "negative", r->neg, lineno);
    cJSON_Delete(o);
    return rc;
}

static int read_pairs(const char *path, sample_list *pos, sample_list *neg)
{
    char *buf = read_text_file(path);
    if (!buf)
        return 1;
    pair_reader r = {pos, neg, path};
    int rc = for_each_line(buf, read_pair_line, &r);
    free(buf);
    if (!rc && pos->n == 0)
        rc = cli_error("%s: holds no pairs", path);
    return rc;
}

/* ---------------------------------------------------------------- tokens and positions */

typedef enum { TOK_LAST = 0, TOK_ANSWER, TOK_ALL } token_mode;

static int tokenize(const steer_model *m, const char *text, int flags, int **out, int *n)
{
    int cap = (int)strlen(text) + 8;
    for (;;) {
        int *toks = malloc((size_t)cap * sizeof *toks);
        if (!toks)
            return cli_error("out of memory");
        int count = 0;
        int rc = steer_tokenize_ex(m, text, flags, toks, cap, &count);
        if (rc == STEER_OK) {
            *out = toks;
            *n = count;
            return 0;
        }
        free(toks);
        if (rc == STEER_EARG && count > cap) {
            cap = count;
            continue;
        }
        return cli_lib_error();
    }
}

/* The tokens to run for one sample and the positions to read:
 * [*first, *last] (inclusive); "all" averages over them. */
typedef struct {
    int *toks;
    int n, first, last;
} plan_seq;

static int sample_tokens(const steer_model *m, const char *model_path, const sample *s, int chat, token_mode mode,
                         plan_seq *ps)
{
    memset(ps, 0, sizeof *ps);
    char *prompt_text = NULL;
    int flags = STEER_TOK_ADD_BOS;
    if (chat) {
        steer_chat_msg msg = {"user", s->prompt};
        if (steer_chat_format(m, &msg, 1, 1, &prompt_text) != STEER_OK)
            return cli_error("--chat: %s: %s", model_path, steer_last_error());
        /* The formatted text spells BOS itself where the family has one. */
        flags = STEER_TOK_PARSE_SPECIAL;
    } else {
        prompt_text = strdup(s->prompt);
        if (!prompt_text)
            return cli_error("out of memory");
    }
    int *ptoks = NULL, n_p = 0, rc = tokenize(m, prompt_text, flags, &ptoks, &n_p);
    if (!rc && n_p == 0)
        rc = cli_error("%s:%d: the prompt is empty (no tokens)", s->file, s->line);
    if (!rc && (mode == TOK_LAST || !s->completion)) {
        if (mode == TOK_ANSWER) {
            rc = cli_error("%s:%d: --token answer needs a completion (JSONL \"completion\" field)", s->file, s->line);
        } else {
            ps->toks = ptoks;
            ptoks = NULL;
            ps->n = n_p;
            ps->last = n_p - 1;
            ps->first = mode == TOK_LAST ? n_p - 1 : (ps->toks[0] == steer_token_bos(m) ? 1 : 0);
        }
    } else if (!rc) {
        size_t lp = strlen(prompt_text), lc = strlen(s->completion);
        char *full = malloc(lp + lc + 1);
        if (!full) {
            rc = cli_error("out of memory");
        } else {
            memcpy(full, prompt_text, lp);
            memcpy(full + lp, s->completion, lc + 1);
            rc = tokenize(m, full, flags, &ps->toks, &ps->n);
            free(full);
        }
        /* The answer token: the first one where prompt ⊕ completion departs
         * from the prompt's own tokens (a merge across the boundary moves it
         * back onto the shared token). */
        int a = 0;
        while (!rc && a < n_p && a < ps->n && ptoks[a] == ps->toks[a])
            a++;
        if (!rc && a >= ps->n)
            rc = cli_error("%s:%d: the completion adds no token", s->file, s->line);
        if (!rc && mode == TOK_ANSWER) {
            ps->n = a + 1; /* causal: nothing after the answer token matters */
            ps->first = ps->last = a;
        } else if (!rc) {
            ps->first = ps->toks[0] == steer_token_bos(m) ? 1 : 0;
            ps->last = ps->n - 1;
        }
    }
    if (!rc && ps->first > ps->last)
        rc = cli_error("%s:%d: no token to average over besides BOS", s->file, s->line);
    free(ptoks);
    free(prompt_text);
    if (rc) {
        free(ps->toks);
        ps->toks = NULL;
    }
    return rc;
}

/* ---------------------------------------------------------------- activations */

typedef struct {
    steer_site site;
    int layer, width;
} point;

/* Runs one sample and writes, for every point k, its row (or the mean over
 * positions) into rows[k] + idx * width. */
static int run_sample(steer_ctx *c, const plan_seq *ps, const point *pts, int n_pts, float **rows, int idx,
                      const sample *s)
{
    if (ps->n > steer_ctx_n_ctx(c))
        return cli_error("%s:%d: %d tokens but the context holds %d positions (see --ctx)", s->file, s->line, ps->n,
                         steer_ctx_n_ctx(c));
    steer_ctx_clear(c, -1);
    if (steer_forward_tokens(c, ps->toks, ps->n, 0, 0) != STEER_OK)
        return cli_lib_error();
    for (int k = 0; k < n_pts; k++) {
        int n_rows = 0;
        const float *h = steer_ctx_captured(c, pts[k].site, pts[k].layer, &n_rows);
        if (!h || n_rows < ps->n)
            return cli_error("nothing captured at %s.%d", steer_site_name(pts[k].site), pts[k].layer);
        const int w = pts[k].width;
        float *dst = rows[k] + (size_t)idx * w;
        if (ps->first == ps->last) {
            memcpy(dst, h + (size_t)ps->last * w, (size_t)w * sizeof *dst);
            continue;
        }
        for (int j = 0; j < w; j++) {
            double acc = 0.0;
            for (int t = ps->first; t <= ps->last; t++)
                acc += h[(size_t)t * w + j];
            dst[j] = (float)(acc / (ps->last - ps->first + 1));
        }
    }
    return 0;
}

static int add_captures(steer_ctx *c, const point *pts, int n_pts)
{
    for (int k = 0; k < n_pts; k++)
        if (steer_ctx_add_capture(c, pts[k].site, pts[k].layer, 0) < 0)
            return cli_lib_error();
    return 0;
}

/* ---------------------------------------------------------------- command */

typedef enum { M_MEAN_DIFF = 0, M_PCA_DIFF, M_PCA_CENTER, M_ORACLE } method_id;
static const char *const method_names[] = {"mean-diff", "pca-diff", "pca-center", "oracle-mean"};

static int same_shape(const steer_model *b, const steer_model *f, const char *bp, const char *fp, const point *pts,
                      int n_pts)
{
    const steer_model_config *cb = steer_model_get_config(b), *cf = steer_model_get_config(f);
    if (cb->d_model != cf->d_model || cb->n_layer != cf->n_layer)
        return cli_error("--ft %s: not the same shape as %s (d_model %d vs %d, %d vs %d layers)", fp, bp, cf->d_model,
                         cb->d_model, cf->n_layer, cb->n_layer);
    for (int k = 0; k < n_pts; k++)
        if (steer_model_site_width(f, pts[k].site) != pts[k].width)
            return cli_error("--ft %s: site %s is %d wide but %d in %s", fp, steer_site_name(pts[k].site),
                             steer_model_site_width(f, pts[k].site), pts[k].width, bp);
    if (steer_vocab_size(b) != steer_vocab_size(f))
        return cli_error("--ft %s: vocabulary of %d tokens but %s has %d (the models must share a tokenizer)", fp,
                         steer_vocab_size(f), bp, steer_vocab_size(b));
    return 0;
}

int cmd_extract(int argc, char **argv)
{
    const char *method_arg = "mean-diff", *model = NULL, *tokenizer = NULL, *ft = NULL, *pos_file = NULL,
               *neg_file = NULL, *data_file = NULL, *site_arg = "resid_post", *layers_arg = "all", *token_arg = "last",
               *out = NULL;
    int normalize = 0, chat = 0, n_ctx = 0, n_threads = 0;
    const cli_opt opts[] = {
        {NULL, "--method", OPT_STR, &method_arg, "METHOD", "mean-diff | pca-diff | pca-center | oracle-mean"},
        {"-m", "--model", OPT_STR, &model, "MODEL", "model (the base model B for oracle-mean) (required)"},
        {"-z", "--tokenizer", OPT_STR, &tokenizer, "FILE", "tokenizer.bin for llama2.c checkpoints"},
        {NULL, "--ft", OPT_STR, &ft, "MODEL", "fine-tuned model F (oracle-mean: vector = mean of F - B)"},
        {NULL, "--pos", OPT_STR, &pos_file, "FILE", "positive prompts: text (one per line) or JSONL"},
        {NULL, "--neg", OPT_STR, &neg_file, "FILE", "negative prompts (same formats)"},
        {NULL, "--data", OPT_STR, &data_file, "FILE", "JSONL pairs {\"positive\": ..., \"negative\": ...}"},
        {NULL, "--sites", OPT_STR, &site_arg, "LIST", "site(s), comma-separated or all (default resid_post)"},
        CLI_ALIAS("--site", OPT_STR, &site_arg),
        {NULL, "--layers", OPT_STR, &layers_arg, "LIST", "layers: all | 3 | 0,2,5-7 (default all)"},
        {NULL, "--token", OPT_STR, &token_arg, "WHICH", "last | answer | all (default last)"},
        {NULL, "--normalize", OPT_FLAG, &normalize, NULL, "scale every vector to unit length"},
        {NULL, "--chat", OPT_FLAG, &chat, NULL, "wrap each prompt as a user turn in the model's chat format"},
        {NULL, "--ctx", OPT_INT, &n_ctx, "N", "context positions (0 = the model's training context)"},
        {NULL, "--threads", OPT_INT, &n_threads, "N", "threads (0 = OpenMP default)"},
        {"-o", "--out", OPT_STR, &out, "FILE", "output vector file .safetensors (required)"},
        CLI_ALIAS("--output", OPT_STR, &out),
    };
    const cli_spec spec = {
        .usage = "steer extract [--method METHOD] -m MODEL (--pos FILE --neg FILE | --data FILE) [--sites LIST]\n"
                 "       [--layers LIST] [--token last|answer|all] [--normalize] [--chat] -o VECTORS.safetensors\n"
                 "       steer extract --method oracle-mean -m BASE --ft FINETUNED --pos FILE ... -o VECTORS.safetensors",
        .description =
            "Runs every prompt, reads the activations at SITE and LAYERS and writes one\n"
            "vector <site>.<layer> [d] per site and layer:\n"
            "  mean-diff    mean(positives) - mean(negatives) (CAA)\n"
            "  pca-diff     top principal component of the paired differences pos_i - neg_i\n"
            "               (uncentred; pairs by line order), unit length\n"
            "  pca-center   top principal component of all activations centred on their\n"
            "               mean, unit length\n"
            "  oracle-mean  mean of F - B over the --pos prompts (B = -m, F = --ft)\n"
            "PCA signs are fixed so positives project higher than negatives.\n"
            "--token last reads the last prompt token, answer the first completion token\n"
            "(JSONL \"completion\"; CAA's answer letter), all the mean over every position\n"
            "but BOS. Prompt files: one prompt per line, or JSONL {\"prompt\", \"completion\"}.\n"
            "--data rows: {\"positive\": P, \"negative\": N} (strings or {\"prompt\", \"completion\"}),\n"
            "or {\"prompt\": Q, \"positive\": A, \"negative\": B} with A, B completions of Q.\n"
            "See docs/VECTORS.md.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer extract -m models/stories260K/stories260K.bin --pos happy.txt --neg sad.txt \\\n"
                   "      --sites resid_post --layers 2-4 -o happy.safetensors\n"
                   "  steer extract --method pca-diff -m model.gguf --data pairs.jsonl --token answer --chat \\\n"
                   "      --layers 10-20 -o pca.safetensors",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;

    int method = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(method_arg, method_names[i]) == 0)
            method = i;
    if (method < 0)
        return cli_usage("unknown --method '%s' (mean-diff, pca-diff, pca-center, oracle-mean)", method_arg);
    token_mode mode;
    if (strcmp(token_arg, "last") == 0)
        mode = TOK_LAST;
    else if (strcmp(token_arg, "answer") == 0)
        mode = TOK_ANSWER;
    else if (strcmp(token_arg, "all") == 0)
        mode = TOK_ALL;
    else
        return cli_usage("unknown --token '%s' (last, answer, all)", token_arg);
    if (!model)
        return cli_usage("missing -m MODEL");
    if (!out)
        return cli_usage("missing -o FILE");
    if (method == M_ORACLE) {
        if (!ft)
            return cli_usage("oracle-mean needs --ft FINETUNED");
        if (!pos_file || neg_file || data_file)
            return cli_usage("oracle-mean reads its prompts from --pos FILE only");
    } else {
        if (ft)
            return cli_usage("--ft is only for --method oracle-mean");
        if (data_file && (pos_file || neg_file))
            return cli_usage("give either --data or --pos and --neg, not both");
        if (!data_file && (!pos_file || !neg_file))
            return cli_usage("give --pos FILE and --neg FILE, or --data FILE");
    }
    steer_site sites[STEER_SITE_COUNT];
    int n_sites = 0;
    char err[512];
    if (cli_parse_sites(site_arg, sites, &n_sites, err, sizeof err))
        return cli_error("--site: %s", err);

    sample_list pos = {0}, neg = {0};
    steer_model *m = NULL, *mf = NULL;
    steer_ctx *c = NULL, *cf = NULL;
    point *pts = NULL;
    float **prow = NULL, **nrow = NULL, *vec = NULL;
    steer_vecset *vs = NULL;
    plan_seq ps = {0};
    int n_pts = 0;

    if (data_file)
        rc = read_pairs(data_file, &pos, &neg);
    else {
        rc = read_prompts(pos_file, &pos);
        if (!rc && neg_file)
            rc = read_prompts(neg_file, &neg);
    }
    if (!rc && method == M_PCA_DIFF && pos.n != neg.n)
        rc = cli_error("pca-diff pairs positives with negatives by order, but %s has %d and %s has %d", pos_file,
                       pos.n, neg_file, neg.n);
    if (!rc)
        rc = cli_load_model(model, tokenizer, &m);
    if (!rc && method == M_ORACLE)
        rc = cli_load_model(ft, tokenizer, &mf);
    if (!rc)
        rc = cli_new_ctx(m, n_ctx, n_threads, &c);
    if (!rc && mf)
        rc = cli_new_ctx(mf, n_ctx, n_threads, &cf);
    if (!rc) {
        const steer_model_config *cfg = steer_model_get_config(m);
        unsigned char *mask = malloc((size_t)cfg->n_layer);
        pts = malloc((size_t)n_sites * (size_t)cfg->n_layer * sizeof *pts);
        if (!mask || !pts)
            rc = cli_error("out of memory");
        else if (cli_parse_layers(layers_arg, cfg->n_layer, mask, err, sizeof err))
            rc = cli_error("--layers: %s", err);
        for (int s = 0; !rc && s < n_sites; s++)
            for (int l = 0; l < cfg->n_layer; l++)
                if (mask[l])
                    pts[n_pts++] = (point){sites[s], l, steer_model_site_width(m, sites[s])};
        free(mask);
    }
    if (!rc && mf)
        rc = same_shape(m, mf, model, ft, pts, n_pts);
    if (!rc)
        rc = add_captures(c, pts, n_pts);
    if (!rc && cf)
        rc = add_captures(cf, pts, n_pts);

    /* prow[k] [n_pos, w], nrow[k] [n_neg, w]; oracle: prow = F, nrow = B on the
     * same prompts. */
    int n_a = pos.n, n_b = method == M_ORACLE ? pos.n : neg.n;
    if (!rc) {
        prow = calloc((size_t)n_pts, sizeof *prow);
        nrow = calloc((size_t)n_pts, sizeof *nrow);
        if (!prow || !nrow)
            rc = cli_error("out of memory");
        for (int k = 0; !rc && k < n_pts; k++) {
            prow[k] = malloc((size_t)n_a * pts[k].width * sizeof(float));
            nrow[k] = malloc((size_t)n_b * pts[k].width * sizeof(float));
            if (!prow[k] || !nrow[k])
                rc = cli_error("out of memory (%d x %d activations)", n_a + n_b, pts[k].width);
        }
    }
    for (int i = 0; !rc && i < pos.n; i++) {
        if ((rc = sample_tokens(m, model, &pos.s[i], chat, mode, &ps)) != 0)
            break;
        if (method == M_ORACLE) {
            rc = run_sample(cf, &ps, pts, n_pts, prow, i, &pos.s[i]);
            if (!rc)
                rc = run_sample(c, &ps, pts, n_pts, nrow, i, &pos.s[i]);
        } else {
            rc = run_sample(c, &ps, pts, n_pts, prow, i, &pos.s[i]);
        }
        free(ps.toks);
        ps.toks = NULL;
    }
    for (int i = 0; !rc && method != M_ORACLE && i < neg.n; i++) {
        if ((rc = sample_tokens(m, model, &neg.s[i], chat, mode, &ps)) != 0)
            break;
        rc = run_sample(c, &ps, pts, n_pts, nrow, i, &neg.s[i]);
        free(ps.toks);
        ps.toks = NULL;
    }

    if (!rc && steer_vecset_new(&vs) != STEER_OK)
        rc = cli_lib_error();
    for (int k = 0; !rc && k < n_pts; k++) {
        const int w = pts[k].width;
        free(vec);
        if (!(vec = malloc((size_t)w * sizeof *vec))) {
            rc = cli_error("out of memory");
            break;
        }
        double explained = 0.0;
        int lrc;
        if (method == M_MEAN_DIFF || method == M_ORACLE)
            lrc = steer_vec_mean_diff(prow[k], n_a, nrow[k], n_b, w, vec);
        else
            lrc = steer_vec_pca(method == M_PCA_DIFF ? STEER_PCA_DIFF : STEER_PCA_CENTER, prow[k], n_a, nrow[k], n_b,
                                w, vec, &explained);
        if (lrc != STEER_OK) {
            rc = cli_error("%s.%d: %s", steer_site_name(pts[k].site), pts[k].layer, steer_last_error());
            break;
        }
        if (normalize) {
            double nn = steer_vec_norm(vec, w);
            if (!(nn > 0)) {
                rc = cli_error("%s.%d: --normalize: the vector is zero", steer_site_name(pts[k].site), pts[k].layer);
                break;
            }
            for (int j = 0; j < w; j++)
                vec[j] = (float)(vec[j] / nn);
        }
        if (steer_vecset_set(vs, pts[k].site, pts[k].layer, 0, w, vec) != STEER_OK) {
            rc = cli_lib_error();
            break;
        }
        if (method == M_PCA_DIFF || method == M_PCA_CENTER) {
            char key[64], val[32];
            snprintf(key, sizeof key, "explained.%s.%d", steer_site_name(pts[k].site), pts[k].layer);
            snprintf(val, sizeof val, "%.6f", explained);
            if (steer_vecset_set_meta(vs, key, val) != STEER_OK)
                rc = cli_lib_error();
        }
    }
    if (!rc) {
        const steer_model_config *cfg = steer_model_get_config(m);
        char site_list[256] = "", num[32];
        for (int s = 0; s < n_sites; s++)
            snprintf(site_list + strlen(site_list), sizeof site_list - strlen(site_list), "%s%s", s ? "," : "",
                     steer_site_name(sites[s]));
        const char *kv[][2] = {
            {"format_version", "1"},
            {"model_hint", cfg->arch_name},
            {"model", model},
            {"method", method_names[method]},
            {"site", site_list},
            {"layers", layers_arg},
            {"token", token_arg},
            {"normalize", normalize ? "1" : "0"},
            {"chat", chat ? "1" : "0"},
            {"command", cli_cmdline},
        };
        for (size_t i = 0; !rc && i < sizeof kv / sizeof kv[0]; i++)
            if (steer_vecset_set_meta(vs, kv[i][0], kv[i][1]) != STEER_OK)
                rc = cli_lib_error();
        snprintf(num, sizeof num, "%d", cfg->d_model);
        if (!rc && steer_vecset_set_meta(vs, "d_model", num) != STEER_OK)
            rc = cli_lib_error();
        snprintf(num, sizeof num, "%d", n_a);
        if (!rc && steer_vecset_set_meta(vs, method == M_ORACLE ? "n_prompts" : "n_pos", num) != STEER_OK)
            rc = cli_lib_error();
        snprintf(num, sizeof num, "%d", n_b);
        if (!rc && method != M_ORACLE && steer_vecset_set_meta(vs, "n_neg", num) != STEER_OK)
            rc = cli_lib_error();
        const char *files[][2] = {{"ft", ft}, {"pos", pos_file}, {"neg", neg_file}, {"data", data_file}};
        for (size_t i = 0; !rc && i < sizeof files / sizeof files[0]; i++)
            if (files[i][1] && steer_vecset_set_meta(vs, files[i][0], files[i][1]) != STEER_OK)
                rc = cli_lib_error();
    }
    if (!rc && steer_vecset_save(vs, out) != STEER_OK)
        rc = cli_lib_error();

    free(ps.toks);
    free(vec);
    for (int k = 0; k < n_pts; k++) {
        if (prow)
            free(prow[k]);
        if (nrow)
            free(nrow[k]);
    }
    free(prow);
    free(nrow);
    free(pts);
    steer_vecset_free(vs);
    if (c)
        steer_ctx_free(c);
    if (cf)
        steer_ctx_free(cf);
    if (m)
        steer_model_free(m);
    if (mf)
        steer_model_free(mf);
    samples_free(&pos);
    samples_free(&neg);
    return rc;
}

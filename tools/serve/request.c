/*
 * request.c — the JSON side of `steer serve` (docs/SERVER.md): the vectors of
 * --vectors DIR, request bodies (completions, chat, sampling, steering,
 * captures) checked field by field into a job, and the OpenAI-shaped
 * responses, streaming chunks and errors. Steering is summed as `steer
 * generate` sums --steer and --control-vector (cli_steer.c), so a request
 * with "control_vectors": [{"name": "cv", "scale": 2}] decodes exactly what
 * `steer generate --control-vector DIR/cv.gguf:2` prints.
 */
#include "serve.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- vectors */

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= 128) return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '.')) return 0;
    return 1;
}

static int cmp_vec(const void *a, const void *b)
{
    return strcmp(((const srv_vector *)a)->name, ((const srv_vector *)b)->name);
}

int srv_load_vectors(srv_state *s, const char *dir, char *err, size_t n)
{
    DIR *d = opendir(dir);
    if (!d) { snprintf(err, n, "--vectors %s: cannot open the directory", dir); return -1; }
    const steer_model_config *cfg = steer_model_get_config(s->m);
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d)) != NULL) {
        const char *f = de->d_name;
        size_t len = strlen(f);
        int is_cv = len > 5 && strcmp(f + len - 5, ".gguf") == 0;
        int is_st = len > 12 && strcmp(f + len - 12, ".safetensors") == 0;
        if (!is_cv && !is_st) continue;
        size_t stem = len - (is_cv ? 5 : 12);
        if (!name_ok(f, stem) || len >= sizeof s->vecs[0].file) {
            snprintf(err, n, "--vectors %s: file name '%s' is not [A-Za-z0-9_.-]+ (under 128 bytes)", dir, f);
            rc = -1;
            break;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, f);
        steer_vecset *vs = NULL;
        int lrc = is_cv ? steer_vecset_load_llamacpp(path, cfg->n_layer, cfg->d_model, &vs) : steer_vecset_load(path, &vs);
        if (!lrc) lrc = steer_vecset_check_model(vs, s->m, path);
        if (lrc) {
            snprintf(err, n, "--vectors: %s", steer_last_error());
            steer_vecset_free(vs);
            rc = -1;
            break;
        }
        srv_vector *nv = realloc(s->vecs, (size_t)(s->n_vecs + 1) * sizeof *nv);
        if (!nv) { steer_vecset_free(vs); snprintf(err, n, "out of memory"); rc = -1; break; }
        s->vecs = nv;
        srv_vector *v = &s->vecs[s->n_vecs++];
        memset(v, 0, sizeof *v);
        memcpy(v->name, f, stem);
        memcpy(v->file, f, len + 1); /* len < sizeof v->file, checked above */
        v->is_cv = is_cv;
        v->vs = vs;
    }
    closedir(d);
    if (rc) return rc;
    qsort(s->vecs, (size_t)s->n_vecs, sizeof *s->vecs, cmp_vec);
    for (int i = 1; i < s->n_vecs; i++)
        if (strcmp(s->vecs[i].name, s->vecs[i - 1].name) == 0) {
            snprintf(err, n, "--vectors %s: two files named '%s' (%s, %s)", dir, s->vecs[i].name, s->vecs[i - 1].file,
                     s->vecs[i].file);
            return -1;
        }
    return 0;
}

void srv_free_vectors(srv_state *s)
{
    for (int i = 0; i < s->n_vecs; i++) steer_vecset_free(s->vecs[i].vs);
    free(s->vecs);
    s->vecs = NULL;
    s->n_vecs = 0;
}

static const srv_vector *find_vec(const srv_state *s, const char *name)
{
    for (int i = 0; i < s->n_vecs; i++)
        if (strcmp(s->vecs[i].name, name) == 0) return &s->vecs[i];
    return NULL;
}

/* ---------------------------------------------------------------- jobs */

void srv_job_free(srv_job *j)
{
    if (!j) return;
    free(j->prompt);
    free(j->out);
    for (int p = 0; p < SRV_N_POSKIND; p++) { steer_vecset_free(j->sum[p]); steer_vecset_free(j->sum_pos[p]); }
    for (int i = 0; i < j->n_cap; i++) free(j->cap_buf[i]);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static int bad(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return 400;
}

static int tokenize(const steer_model *m, const char *text, int flags, int **out, int *n_out)
{
    int cap = (int)strlen(text) + 8;
    for (;;) {
        int *t = malloc((size_t)cap * sizeof *t), cnt = 0;
        if (!t) return STEER_ENOMEM;
        int rc = steer_tokenize_ex(m, text, flags, t, cap, &cnt);
        if (rc == STEER_OK) { *out = t; *n_out = cnt; return 0; }
        free(t);
        if (rc == STEER_EARG && cnt > cap) { cap = cnt; continue; }
        return rc;
    }
}

/* a number field: absent → *out unchanged; else must be a finite number in [lo, hi] */
static int get_num(const cJSON *o, const char *key, double lo, double hi, double *out, const char *ctx, char *err,
                   size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return bad(err, n, "%s%s must be a number", ctx, key);
    if (!isfinite(v->valuedouble)) return bad(err, n, "%s%s is not finite", ctx, key);
    if (v->valuedouble < lo || v->valuedouble > hi) return bad(err, n, "%s%s must be in [%g, %g], got %g", ctx, key, lo, hi, v->valuedouble);
    *out = v->valuedouble;
    return 0;
}

static int get_int(const cJSON *o, const char *key, long lo, long hi, long *out, const char *ctx, char *err, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || !isfinite(v->valuedouble))
        return bad(err, n, "%s%s must be an integer", ctx, key);
    if (v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return bad(err, n, "%s%s must be in [%ld, %ld], got %.0f", ctx, key, lo, hi, v->valuedouble);
    *out = (long)v->valuedouble;
    return 0;
}

static int pos_index(const char *s)
{
    if (strcmp(s, "all") == 0) return 0;
    if (strcmp(s, "prompt") == 0) return 1;
    if (strcmp(s, "generated") == 0) return 2;
    return -1;
}

static int ensure(steer_vecset **vs)
{
    if (*vs) return 0;
    return steer_vecset_new(vs);
}

/* "steering": [...] entries, in order, into the job's sums */
static int parse_steering(srv_state *s, srv_job *j, const cJSON *arr, char *err, size_t n)
{
    const steer_model_config *cfg = steer_model_get_config(s->m);
    if (!cJSON_IsArray(arr)) return bad(err, n, "steering must be an array of objects");
    int idx = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        char ctx[48];
        snprintf(ctx, sizeof ctx, "steering[%d].", idx);
        if (!cJSON_IsObject(e)) return bad(err, n, "steering[%d] must be an object", idx);
        const cJSON *vname = cJSON_GetObjectItemCaseSensitive(e, "vector");
        const cJSON *vals = cJSON_GetObjectItemCaseSensitive(e, "values");
        const cJSON *site = cJSON_GetObjectItemCaseSensitive(e, "site");
        const cJSON *layers = cJSON_GetObjectItemCaseSensitive(e, "layers");
        const cJSON *layer = cJSON_GetObjectItemCaseSensitive(e, "layer");
        const cJSON *posj = cJSON_GetObjectItemCaseSensitive(e, "positions");
        double scale = 1.0;
        int rc = get_num(e, "scale", -1e6, 1e6, &scale, ctx, err, n);
        if (rc) return rc;
        if ((vname != NULL) == (vals != NULL)) return bad(err, n, "%s needs exactly one of \"vector\" and \"values\"", ctx);
        steer_site st = STEER_SITE_RESID_POST;
        if (site && !cJSON_IsString(site)) return bad(err, n, "%ssite must be a string", ctx);
        if (site && steer_site_parse(site->valuestring, &st) != STEER_OK)
            return bad(err, n, "%ssite: unknown site '%.40s'", ctx, site->valuestring);
        int pk = 0;
        if (posj) {
            if (!cJSON_IsString(posj) || (pk = pos_index(posj->valuestring)) < 0)
                return bad(err, n, "%spositions must be \"all\", \"prompt\" or \"generated\"", ctx);
        }
        /* layers: [..] or layer: N; absent = every layer (named vectors only) */
        unsigned char *mask = calloc((size_t)cfg->n_layer, 1);
        if (!mask) return bad(err, n, "out of memory");
        int any_layer = !layers && !layer;
        if (layers && layer) { free(mask); return bad(err, n, "%s give \"layer\" or \"layers\", not both", ctx); }
        if (layer) {
            long l = -1;
            if ((rc = get_int(e, "layer", 0, cfg->n_layer - 1, &l, ctx, err, n)) != 0) { free(mask); return rc; }
            mask[l] = 1;
        }
        if (layers) {
            if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) == 0) {
                free(mask);
                return bad(err, n, "%slayers must be a non-empty array of integers", ctx);
            }
            const cJSON *x;
            cJSON_ArrayForEach(x, layers) {
                if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble) || x->valuedouble < 0 ||
                    x->valuedouble >= cfg->n_layer) {
                    free(mask);
                    return bad(err, n, "%slayers: each must be an integer layer in 0..%d", ctx, cfg->n_layer - 1);
                }
                mask[(int)x->valuedouble] = 1;
            }
        }
        steer_vecset **dst1 = &j->sum[pk], **dstp = &j->sum_pos[pk];
        if (vals) {
            if (!site) { free(mask); return bad(err, n, "%ssite is required with \"values\"", ctx); }
            if (any_layer) { free(mask); return bad(err, n, "%slayer (or layers) is required with \"values\"", ctx); }
            if (!cJSON_IsArray(vals)) { free(mask); return bad(err, n, "%svalues must be an array of numbers", ctx); }
            int w = steer_model_site_width(s->m, st), cnt = cJSON_GetArraySize(vals);
            if (cnt != w) {
                free(mask);
                return bad(err, n, "%svalues has %d numbers but %s is %d wide in this model", ctx, cnt,
                           steer_site_name(st), w);
            }
            float *v = malloc((size_t)w * sizeof *v);
            if (!v) { free(mask); return bad(err, n, "out of memory"); }
            int k = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, vals) {
                if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || !isfinite((float)x->valuedouble)) {
                    free(v); free(mask);
                    return bad(err, n, "%svalues[%d] is not a finite number", ctx, k);
                }
                v[k++] = (float)x->valuedouble;
            }
            rc = ensure(dst1);
            for (int l = 0; l < cfg->n_layer && !rc; l++)
                if (mask[l]) rc = steer_vecset_accumulate(*dst1, st, l, 0, w, v, (float)scale);
            free(v);
            free(mask);
            if (rc) return bad(err, n, "%s%s", ctx, steer_last_error());
        } else {
            if (!cJSON_IsString(vname)) { free(mask); return bad(err, n, "%svector must be a name (string)", ctx); }
            const srv_vector *sv = find_vec(s, vname->valuestring);
            if (!sv) { free(mask); return bad(err, n, "%svector: unknown vector '%.60s' (GET /v1/steering/vectors lists them)", ctx, vname->valuestring); }
            int used = 0;
            rc = 0;
            for (int k = 0; k < steer_vecset_count(sv->vs) && !rc; k++) {
                const steer_vec *v = steer_vecset_at(sv->vs, k);
                if (site && v->site != st) continue;
                if (!any_layer && !mask[v->layer]) continue;
                steer_vecset **dst = v->n_rows ? dstp : dst1;
                rc = ensure(dst);
                if (!rc) rc = steer_vecset_accumulate(*dst, v->site, v->layer, v->n_rows, v->width, v->data, (float)scale);
                used++;
            }
            free(mask);
            if (rc) return bad(err, n, "%s%s", ctx, steer_last_error());
            if (!used)
                return bad(err, n, "%svector '%s' has no tensor at the chosen site and layers", ctx, sv->name);
        }
        idx++;
    }
    return 0;
}

static int parse_cvs(srv_state *s, srv_job *j, const cJSON *arr, char *err, size_t n)
{
    if (!cJSON_IsArray(arr)) return bad(err, n, "control_vectors must be an array of objects");
    int idx = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        char ctx[48];
        snprintf(ctx, sizeof ctx, "control_vectors[%d].", idx++);
        if (!cJSON_IsObject(e)) return bad(err, n, "%.*s must be an object", (int)strlen(ctx) - 1, ctx);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        if (!cJSON_IsString(name)) return bad(err, n, "%sname must be a string", ctx);
        double scale = 1.0;
        int rc = get_num(e, "scale", -1e6, 1e6, &scale, ctx, err, n);
        if (rc) return rc;
        const srv_vector *sv = find_vec(s, name->valuestring);
        if (!sv || !sv->is_cv)
            return bad(err, n, "%sname: unknown control vector '%.60s' (GET /v1/steering/vectors lists them)", ctx,
                       name->valuestring);
        if ((rc = ensure(&j->sum[0])) != 0) return bad(err, n, "out of memory");
        for (int k = 0; k < steer_vecset_count(sv->vs); k++) {
            const steer_vec *v = steer_vecset_at(sv->vs, k);
            if (steer_vecset_accumulate(j->sum[0], v->site, v->layer, 0, v->width, v->data, (float)scale) != STEER_OK)
                return bad(err, n, "%s%s", ctx, steer_last_error());
        }
    }
    return 0;
}

static int parse_capture(srv_state *s, srv_job *j, const cJSON *arr, char *err, size_t n)
{
    const steer_model_config *cfg = steer_model_get_config(s->m);
    if (!cJSON_IsArray(arr)) return bad(err, n, "capture must be an array of objects");
    if (cJSON_GetArraySize(arr) > SRV_MAX_CAPTURE) return bad(err, n, "capture: at most %d entries", SRV_MAX_CAPTURE);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        char ctx[48];
        snprintf(ctx, sizeof ctx, "capture[%d].", j->n_cap);
        if (!cJSON_IsObject(e)) return bad(err, n, "capture[%d] must be an object", j->n_cap);
        const cJSON *site = cJSON_GetObjectItemCaseSensitive(e, "site");
        steer_site st;
        if (!cJSON_IsString(site)) return bad(err, n, "%ssite must be a string", ctx);
        if (steer_site_parse(site->valuestring, &st) != STEER_OK)
            return bad(err, n, "%ssite: unknown site '%.40s'", ctx, site->valuestring);
        long l = -1;
        int rc = get_int(e, "layer", 0, cfg->n_layer - 1, &l, ctx, err, n);
        if (rc) return rc;
        if (l < 0) return bad(err, n, "%slayer is required", ctx);
        int k = j->n_cap;
        j->cap_site[k] = st;
        j->cap_layer[k] = (int)l;
        j->cap_width[k] = steer_model_site_width(s->m, st);
        j->cap_buf[k] = calloc((size_t)j->n_prompt * j->cap_width[k], sizeof(float));
        if (!j->cap_buf[k]) return bad(err, n, "out of memory");
        j->n_cap++;
    }
    return 0;
}

/* the prompt: text tokenized with BOS, as `steer generate -p` */
static int parse_prompt(srv_state *s, srv_job *j, const cJSON *root, char *err, size_t n)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    const char *text = "";
    if (p && cJSON_IsArray(p)) {
        if (cJSON_GetArraySize(p) != 1 || !cJSON_IsString(cJSON_GetArrayItem(p, 0)))
            return bad(err, n, "prompt must be a string (or an array of one string)");
        text = cJSON_GetArrayItem(p, 0)->valuestring;
    } else if (p && !cJSON_IsNull(p)) {
        if (!cJSON_IsString(p)) return bad(err, n, "prompt must be a string");
        text = p->valuestring;
    }
    int rc = tokenize(s->m, text, STEER_TOK_ADD_BOS, &j->prompt, &j->n_prompt);
    if (rc != STEER_OK) return bad(err, n, "prompt: %s", rc == STEER_ENOMEM ? "out of memory" : steer_last_error());
    return 0;
}

/* messages in the model's chat format; without one (docs/SERVER.md): the
 * contents joined by newlines, tokenized with BOS like a completion prompt */
static int parse_messages(srv_state *s, srv_job *j, const cJSON *root, char *err, size_t n)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) return bad(err, n, "messages must be a non-empty array");
    int nm = cJSON_GetArraySize(msgs), k = 0;
    steer_chat_msg *cm = calloc((size_t)nm, sizeof *cm);
    if (!cm) return bad(err, n, "out of memory");
    size_t total = 1;
    const cJSON *e;
    cJSON_ArrayForEach(e, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(e, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsObject(e) || !cJSON_IsString(role) || !cJSON_IsString(content)) {
            free(cm);
            return bad(err, n, "messages[%d] must be an object with string role and content", k);
        }
        if (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") &&
            strcmp(role->valuestring, "assistant")) {
            free(cm);
            return bad(err, n, "messages[%d].role must be \"system\", \"user\" or \"assistant\"", k);
        }
        cm[k].role = role->valuestring;
        cm[k].content = content->valuestring;
        total += strlen(content->valuestring) + 1;
        k++;
    }
    char *text = NULL;
    int flags = STEER_TOK_PARSE_SPECIAL, rc = STEER_OK;
    if (steer_chat_family(s->m)) {
        rc = steer_chat_format(s->m, cm, nm, 1, &text);
    } else {
        text = malloc(total);
        if (!text) rc = STEER_ENOMEM;
        else {
            text[0] = '\0';
            for (int i = 0; i < nm; i++) {
                if (i) strcat(text, "\n");
                strcat(text, cm[i].content);
            }
        }
        flags = STEER_TOK_ADD_BOS;
    }
    free(cm);
    if (rc != STEER_OK) { free(text); return bad(err, n, "messages: %s", steer_last_error()); }
    rc = tokenize(s->m, text, flags, &j->prompt, &j->n_prompt);
    free(text);
    if (rc != STEER_OK) return bad(err, n, "messages: %s", steer_last_error());
    return 0;
}

int srv_parse_job(srv_state *s, int kind, const char *body, size_t len, srv_job **out, char *err, size_t n)
{
    *out = NULL;
    const char *endp = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &endp, 0);
    if (!root) {
        size_t at = endp && endp >= body ? (size_t)(endp - body) : 0;
        return bad(err, n, "request body is not valid JSON (error near byte %zu)", at);
    }
    if (!cJSON_IsObject(root)) { cJSON_Delete(root); return bad(err, n, "request body must be a JSON object"); }
    srv_job *j = calloc(1, sizeof *j);
    if (!j) { cJSON_Delete(root); return bad(err, n, "out of memory"); }
    pthread_cond_init(&j->cv, NULL);
    j->kind = kind;
    j->sp = steer_sampler_default_params();
    j->sp.temperature = 1.0f; /* OpenAI's default */
    int rc = 0;
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "stream")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsBool(v)) rc = bad(err, n, "stream must be true or false");
        else j->stream = cJSON_IsTrue(v);
    }
    if (!rc && (v = cJSON_GetObjectItemCaseSensitive(root, "model")) && !cJSON_IsNull(v) && !cJSON_IsString(v))
        rc = bad(err, n, "model must be a string");
    if (!rc && (v = cJSON_GetObjectItemCaseSensitive(root, "stop")) && !cJSON_IsNull(v))
        rc = bad(err, n, "stop is not supported (generation stops at EOS or max_tokens)");
    long nchoice = 1;
    if (!rc) rc = get_int(root, "n", 1, 1, &nchoice, "", err, n);
    if (!rc) rc = kind == JOB_CHAT ? parse_messages(s, j, root, err, n) : parse_prompt(s, j, root, err, n);
    long maxt = kind == JOB_CHAT ? (long)s->n_ctx - j->n_prompt : 16;
    const char *maxkey = cJSON_GetObjectItemCaseSensitive(root, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (!rc) rc = get_int(root, maxkey, 1, 1L << 30, &maxt, "", err, n);
    if (!rc && (long)j->n_prompt + maxt > s->n_ctx)
        rc = bad(err, n, "prompt (%d tokens) + %s (%ld) exceeds the context (%d positions)", j->n_prompt, maxkey, maxt,
                 s->n_ctx);
    if (!rc && maxt < 1) rc = bad(err, n, "the prompt (%d tokens) fills the context (%d positions)", j->n_prompt, s->n_ctx);
    j->max_tokens = (int)maxt;
    double temp = j->sp.temperature, top_p = 1.0;
    long top_k = 0, seed = -1;
    if (!rc) rc = get_num(root, "temperature", 0, 100, &temp, "", err, n);
    if (!rc) rc = get_num(root, "top_p", 1e-9, 1, &top_p, "", err, n);
    if (!rc) rc = get_int(root, "top_k", 0, 1L << 30, &top_k, "", err, n);
    if (!rc) rc = get_int(root, "seed", 0, (1L << 53), &seed, "", err, n);
    j->sp.temperature = (float)temp;
    j->sp.top_p = (float)top_p;
    j->sp.top_k = (int)top_k;
    if (seed >= 0) j->sp.seed = (uint64_t)seed;
    if (!rc && (v = cJSON_GetObjectItemCaseSensitive(root, "steering")) && !cJSON_IsNull(v))
        rc = parse_steering(s, j, v, err, n);
    if (!rc && (v = cJSON_GetObjectItemCaseSensitive(root, "control_vectors")) && !cJSON_IsNull(v))
        rc = parse_cvs(s, j, v, err, n);
    if (!rc && (v = cJSON_GetObjectItemCaseSensitive(root, "capture")) && !cJSON_IsNull(v))
        rc = parse_capture(s, j, v, err, n);
    cJSON_Delete(root);
    if (rc) { srv_job_free(j); return rc; }
    *out = j;
    return 0;
}

/* ---------------------------------------------------------------- text */

void srv_tokens_text(const srv_state *s, const srv_job *j, int from, int to, char **buf, size_t *len, size_t *cap)
{
    for (int i = from; i < to; i++) {
        int prev = i ? j->out[i - 1] : j->prompt[j->n_prompt - 1];
        size_t pl = 0;
        const char *piece = steer_token_piece(s->m, prev, j->out[i], &pl);
        if (!piece) continue;
        pl = strnlen(piece, pl);
        if (pl == 0) continue;
        if (pl == 1) { /* run.c's safe_printf, but bytes >= 0x80 are kept for UTF-8 */
            unsigned char b = (unsigned char)piece[0];
            if (b < 0x80 && !(isprint(b) || isspace(b))) continue;
        }
        if (*len + pl + 1 > *cap) {
            size_t nc = (*cap ? *cap * 2 : 256) + pl;
            char *nb = realloc(*buf, nc);
            if (!nb) return;
            *buf = nb;
            *cap = nc;
        }
        memcpy(*buf + *len, piece, pl);
        *len += pl;
        (*buf)[*len] = '\0';
    }
}

/* length of the UTF-8 sequence at p (n bytes available): >0 valid, 0 incomplete, -1 invalid */
static int utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    int need;
    if (c < 0x80) return 1;
    else if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) need = 3;
    else if (c >= 0xF0 && c <= 0xF4) need = 4;
    else return -1;
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= n) return 0;
        if ((p[i] & 0xC0) != 0x80) return -1;
    }
    if (need == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))) return -1;
    if (need == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))) return -1;
    return need;
}

size_t srv_utf8_take(const char *buf, size_t len, int final, char **out)
{
    char *o = malloc(len * 3 + 1);
    size_t i = 0, k = 0;
    if (!o) { *out = NULL; return 0; }
    const unsigned char *p = (const unsigned char *)buf;
    while (i < len) {
        int q = utf8_seq(p + i, len - i);
        if (q == 0 && !final) break;
        if (q <= 0) { memcpy(o + k, "\xEF\xBF\xBD", 3); k += 3; i++; continue; }
        memcpy(o + k, p + i, (size_t)q);
        k += (size_t)q;
        i += (size_t)q;
    }
    o[k] = '\0';
    *out = o;
    return i;
}

/* ---------------------------------------------------------------- responses */

static char *print_free(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *srv_error_json(const char *msg, int status)
{
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", msg);
    const char *type = status == 401 ? "authentication_error" : status >= 500 ? "server_error" : "invalid_request_error";
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNullToObject(e, "param");
    cJSON_AddNumberToObject(e, "code", status);
    return print_free(o);
}

static void b64(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t k = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[k++] = t[v >> 18 & 63];
        out[k++] = t[v >> 12 & 63];
        out[k++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[k++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[k] = '\0';
}

static void add_capture(srv_job *j, cJSON *o)
{
    if (!j->n_cap) return;
    cJSON *arr = cJSON_AddArrayToObject(o, "capture");
    for (int i = 0; i < j->n_cap; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "site", steer_site_name(j->cap_site[i]));
        cJSON_AddNumberToObject(c, "layer", j->cap_layer[i]);
        cJSON *shape = cJSON_AddArrayToObject(c, "shape");
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(j->n_prompt));
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(j->cap_width[i]));
        cJSON_AddStringToObject(c, "dtype", "f32");
        size_t bytes = (size_t)j->n_prompt * j->cap_width[i] * sizeof(float);
        char *enc = malloc(bytes / 3 * 4 + 8);
        if (enc) {
            b64((const unsigned char *)j->cap_buf[i], bytes, enc); /* little-endian hosts (x86-64, arm64) */
            cJSON_AddStringToObject(c, "data", enc);
            free(enc);
        }
        cJSON_AddItemToArray(arr, c);
    }
}

static cJSON *base_obj(srv_state *s, srv_job *j, const char *object)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)time(NULL));
    cJSON_AddStringToObject(o, "model", s->model_name);
    return o;
}

static void add_usage(srv_job *j, cJSON *o)
{
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", j->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", j->n_out);
    cJSON_AddNumberToObject(u, "total_tokens", j->n_prompt + j->n_out);
}

char *srv_response_json(srv_state *s, srv_job *j)
{
    char *raw = NULL, *txt = NULL;
    size_t len = 0, cap = 0;
    srv_tokens_text(s, j, 0, j->n_out, &raw, &len, &cap);
    srv_utf8_take(raw ? raw : "", len, 1, &txt);
    free(raw);
    cJSON *o = base_obj(s, j, j->kind == JOB_CHAT ? "chat.completion" : "text_completion");
    cJSON *ch = cJSON_AddArrayToObject(o, "choices"), *c0 = cJSON_CreateObject();
    cJSON_AddNumberToObject(c0, "index", 0);
    if (j->kind == JOB_CHAT) {
        cJSON *m = cJSON_AddObjectToObject(c0, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", txt ? txt : "");
    } else {
        cJSON_AddStringToObject(c0, "text", txt ? txt : "");
        cJSON_AddNullToObject(c0, "logprobs");
    }
    cJSON_AddStringToObject(c0, "finish_reason", j->finish ? j->finish : "stop");
    cJSON_AddItemToArray(ch, c0);
    add_usage(j, o);
    add_capture(j, o);
    free(txt);
    return print_free(o);
}

char *srv_chunk_json(srv_state *s, srv_job *j, const char *text, const char *finish, int first)
{
    cJSON *o = base_obj(s, j, j->kind == JOB_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON *ch = cJSON_AddArrayToObject(o, "choices"), *c0 = cJSON_CreateObject();
    cJSON_AddNumberToObject(c0, "index", 0);
    if (j->kind == JOB_CHAT) {
        cJSON *d = cJSON_AddObjectToObject(c0, "delta");
        if (first) cJSON_AddStringToObject(d, "role", "assistant");
        if (text) cJSON_AddStringToObject(d, "content", text);
    } else {
        cJSON_AddStringToObject(c0, "text", text ? text : "");
        cJSON_AddNullToObject(c0, "logprobs");
    }
    if (finish) cJSON_AddStringToObject(c0, "finish_reason", finish);
    else cJSON_AddNullToObject(c0, "finish_reason");
    cJSON_AddItemToArray(ch, c0);
    if (finish) { add_usage(j, o); add_capture(j, o); }
    char *js = print_free(o);
    if (!js) return NULL;
    size_t n = strlen(js) + 16;
    char *out = malloc(n);
    if (out) snprintf(out, n, "data: %s\n\n", js);
    free(js);
    return out;
}

char *srv_models_json(srv_state *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *d = cJSON_AddArrayToObject(o, "data"), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->model_name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "steer");
    cJSON_AddNumberToObject(m, "context_length", s->n_ctx);
    cJSON_AddItemToArray(d, m);
    return print_free(o);
}

char *srv_vectors_json(srv_state *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *d = cJSON_AddArrayToObject(o, "data");
    for (int i = 0; i < s->n_vecs; i++) {
        const srv_vector *v = &s->vecs[i];
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", v->name);
        cJSON_AddStringToObject(e, "file", v->file);
        cJSON_AddStringToObject(e, "kind", v->is_cv ? "control_vector" : "vectors");
        cJSON *arr = cJSON_AddArrayToObject(e, "vectors");
        for (int k = 0; k < steer_vecset_count(v->vs); k++) {
            const steer_vec *x = steer_vecset_at(v->vs, k);
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "site", steer_site_name(x->site));
            cJSON_AddNumberToObject(t, "layer", x->layer);
            cJSON_AddNumberToObject(t, "width", x->width);
            cJSON_AddNumberToObject(t, "rows", x->n_rows);
            int rows = x->n_rows ? x->n_rows : 1;
            cJSON_AddNumberToObject(t, "norm", steer_vec_norm(x->data, rows * x->width));
            cJSON_AddItemToArray(arr, t);
        }
        cJSON_AddItemToArray(d, e);
    }
    return print_free(o);
}

/* data.c — datasets and templates (SPEC §6): prompt/completion JSONL,
 * Winogrande and ListOps files rendered through templates; deterministic
 * shuffles, splits and few-shot contexts; the ListOps generator and
 * evaluator.
 *
 * Decisions (also in steer.h):
 *   - Blank lines are skipped; line numbers count every physical line, so an
 *     error names the line an editor shows ("dev.jsonl:17: missing field
 *     'option2'").
 *   - Randomness is splitmix64 (seeded, platform independent) with unbiased
 *     bounded draws (rejection sampling), so a seed gives the same shuffle,
 *     split, few-shot context and ListOps expression everywhere.
 *   - ListOps MED of an even count is the lower median (the smaller of the two
 *     middle values), so every value stays a digit. Implementations that use
 *     int(np.median(...)) may differ by rounding on even counts.
 *   - ListOps sample i depends only on (seed, i, max_depth, max_args, p_nest):
 *     generating n = 10 gives the first 10 lines of n = 1000. */
#include "steer_train.h"
#include "model.h"
#include "data.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- strings */

/* Hands the string to the caller ("" when nothing was added); NULL on OOM. */
static char *sb_take(sbuf *b)
{
    if (!b->oom && !b->p) sb_put(b, "", 0);
    if (b->oom) {
        free(b->p);
        b->p = NULL;
    }
    char *s = b->p;
    memset(b, 0, sizeof *b);
    return s;
}

static char *xstrdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* ---------------------------------------------------------------- random */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n >= 1, without modulo bias. */
static uint64_t rng_below(uint64_t *state, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* draws >= limit are rejected */
    for (;;) {
        uint64_t r = splitmix64(state);
        if (r < limit) return r % n;
    }
}

/* Uniform in [0, 1) with 53 bits. */
static double rng_unit(uint64_t *state) { return (double)(splitmix64(state) >> 11) * 0x1.0p-53; }

void steer_data_permutation(int n, uint64_t seed, int *perm)
{
    if (n <= 0 || !perm) return;
    uint64_t st = seed;
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) { /* Fisher–Yates */
        int j = (int)rng_below(&st, (uint64_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* ---------------------------------------------------------------- dataset */

struct steer_dataset {
    steer_data_format format;
    char *path; /* "" for datasets built in memory */
    steer_data_item *items;
    int n, cap;
};

static const char *const format_names[] = {"jsonl", "winogrande", "listops"};

const char *steer_data_format_name(steer_data_format f)
{
    return (unsigned)f < sizeof format_names / sizeof format_names[0] ? format_names[f] : "?";
}

void steer_data_parse_spec(const char *spec, steer_data_format *fmt, const char **path)
{
    *fmt = STEER_DATA_JSONL;
    *path = spec;
    if (!spec) return;
    for (int f = 0; f < (int)(sizeof format_names / sizeof format_names[0]); f++) {
        size_t n = strlen(format_names[f]);
        if (strncmp(spec, format_names[f], n) == 0 && spec[n] == ':') {
            *fmt = (steer_data_format)f;
            *path = spec + n + 1;
            return;
        }
    }
}

steer_data_params steer_data_default_params(void)
{
    steer_data_params p;
    memset(&p, 0, sizeof p);
    return p;
}

static void item_clear(steer_data_item *it)
{
    free(it->id);
    free(it->prompt);
    free(it->completion);
    for (int c = 0; c < it->n_choices; c++) free(it->choices[c]);
    free(it->choices);
    memset(it, 0, sizeof *it);
}

static int dataset_new(steer_data_format fmt, const char *path, steer_dataset **out)
{
    steer_dataset *d = calloc(1, sizeof *d);
    char *p = xstrdup(path ? path : "");
    if (!d || !p) {
        free(d);
        free(p);
        return steer_err(STEER_ENOMEM, "dataset: out of memory");
    }
    d->format = fmt;
    d->path = p;
    *out = d;
    return STEER_OK;
}

int steer_data_new(steer_dataset **out)
{
    if (!out) return steer_err(STEER_EARG, "steer_data_new: out is NULL");
    *out = NULL;
    return dataset_new(STEER_DATA_JSONL, "", out);
}

void steer_data_free(steer_dataset *d)
{
    if (!d) return;
    for (int i = 0; i < d->n; i++) item_clear(&d->items[i]);
    free(d->items);
    free(d->path);
    free(d);
}

int steer_data_count(const steer_dataset *d) { return d ? d->n : 0; }

const steer_data_item *steer_data_at(const steer_dataset *d, int i)
{
    return d && i >= 0 && i < d->n ? &d->items[i] : NULL;
}

steer_data_format steer_data_get_format(const steer_dataset *d) { return d ? d->format : STEER_DATA_JSONL; }

const char *steer_data_path(const steer_dataset *d) { return d ? d->path : ""; }

const char *data_item_where(const steer_dataset *d, const steer_data_item *it, char *buf, size_t n)
{
    const char *path = steer_data_path(d);
    if (it->line > 0 && path && path[0]) snprintf(buf, n, "%s:%d: item %s", path, it->line, it->id);
    else snprintf(buf, n, "item %s", it->id);
    return buf;
}

int data_tokenize_pair(const steer_model *m, const char *prompt, const int *pt, int np, const char *completion,
                       int **full, int *n_full, int *n_common)
{
    *full = NULL;
    *n_full = *n_common = 0;
    size_t lp = strlen(prompt), lc = strlen(completion);
    char *s = malloc(lp + lc + 1);
    if (!s) return steer_err(STEER_ENOMEM, "out of memory");
    memcpy(s, prompt, lp);
    memcpy(s + lp, completion, lc + 1);
    int rc = steer_tokenize_alloc(m, s, 1, full, n_full);
    free(s);
    if (rc) return rc;
    int c = 0;
    while (c < np && c < *n_full && (*full)[c] == pt[c]) c++;
    *n_common = c;
    return STEER_OK;
}

/* Takes ownership of *it (cleared on return either way). */
static int push_item(steer_dataset *d, steer_data_item *it)
{
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 64;
        steer_data_item *p = realloc(d->items, (size_t)cap * sizeof *p);
        if (!p) {
            item_clear(it);
            return steer_err(STEER_ENOMEM, "dataset: out of memory");
        }
        d->items = p;
        d->cap = cap;
    }
    d->items[d->n++] = *it;
    memset(it, 0, sizeof *it);
    return STEER_OK;
}

static int item_copy(const steer_data_item *src, steer_data_item *dst)
{
    memset(dst, 0, sizeof *dst);
    dst->label = src->label;
    dst->line = src->line;
    dst->id = xstrdup(src->id ? src->id : "");
    dst->prompt = xstrdup(src->prompt ? src->prompt : "");
    dst->completion = src->completion ? xstrdup(src->completion) : NULL;
    int bad = !dst->id || !dst->prompt || (src->completion && !dst->completion);
    if (!bad && src->n_choices > 0) {
        dst->choices = calloc((size_t)src->n_choices, sizeof *dst->choices);
        bad = !dst->choices;
        for (int c = 0; !bad && c < src->n_choices; c++) {
            dst->choices[c] = xstrdup(src->choices[c]);
            bad = !dst->choices[c];
            dst->n_choices = c + 1;
        }
    }
    if (bad) {
        item_clear(dst);
        return steer_err(STEER_ENOMEM, "dataset: out of memory");
    }
    return STEER_OK;
}

int steer_data_add(steer_dataset *d, const char *id, const char *prompt, const char *completion, int label)
{
    if (!d || !prompt) return steer_err(STEER_EARG, "steer_data_add: dataset and prompt must not be NULL");
    char num[32];
    if (!id) {
        snprintf(num, sizeof num, "%d", d->n + 1);
        id = num;
    }
    steer_data_item src = {.id = (char *)id, .prompt = (char *)prompt, .completion = (char *)completion,
                           .label = label < 0 ? -1 : label};
    steer_data_item it;
    int rc = item_copy(&src, &it);
    if (rc) return rc;
    return push_item(d, &it);
}

int steer_data_check_completions(const steer_dataset *d)
{
    if (!d) return steer_err(STEER_EARG, "steer_data_check_completions: dataset is NULL");
    for (int i = 0; i < d->n; i++) {
        if (d->items[i].completion) continue;
        if (d->path[0] && d->items[i].line > 0)
            return steer_err(STEER_EFORMAT, "%s:%d: item %s has no completion (answer)", d->path, d->items[i].line,
                             d->items[i].id);
        return steer_err(STEER_EFORMAT, "dataset item %d (%s) has no completion", i, d->items[i].id);
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- order, subsets */

int steer_data_shuffle(steer_dataset *d, uint64_t seed)
{
    if (!d) return steer_err(STEER_EARG, "steer_data_shuffle: dataset is NULL");
    if (d->n < 2) return STEER_OK;
    int *perm = malloc((size_t)d->n * sizeof *perm);
    steer_data_item *tmp = malloc((size_t)d->n * sizeof *tmp);
    if (!perm || !tmp) {
        free(perm);
        free(tmp);
        return steer_err(STEER_ENOMEM, "shuffle: out of memory");
    }
    steer_data_permutation(d->n, seed, perm);
    for (int i = 0; i < d->n; i++) tmp[i] = d->items[perm[i]];
    memcpy(d->items, tmp, (size_t)d->n * sizeof *tmp);
    free(tmp);
    free(perm);
    return STEER_OK;
}

void steer_data_truncate(steer_dataset *d, int n)
{
    if (!d || n < 0) return;
    while (d->n > n) item_clear(&d->items[--d->n]);
}

int steer_data_subset(const steer_dataset *d, const int *idx, int n, steer_dataset **out)
{
    if (!out) return steer_err(STEER_EARG, "steer_data_subset: out is NULL");
    *out = NULL;
    if (!d || n < 0 || (n > 0 && !idx)) return steer_err(STEER_EARG, "steer_data_subset: bad arguments");
    for (int i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= d->n)
            return steer_err(STEER_EARG, "subset: index %d out of range (dataset has %d items)", idx[i], d->n);
    steer_dataset *s;
    int rc = dataset_new(d->format, d->path, &s);
    if (rc) return rc;
    for (int i = 0; i < n; i++) {
        steer_data_item it;
        if ((rc = item_copy(&d->items[idx[i]], &it)) != STEER_OK || (rc = push_item(s, &it)) != STEER_OK) {
            steer_data_free(s);
            return rc;
        }
    }
    *out = s;
    return STEER_OK;
}

int steer_data_split(const steer_dataset *d, int n_heldout, uint64_t seed, steer_dataset **train,
                     steer_dataset **heldout)
{
    if (!train || !heldout) return steer_err(STEER_EARG, "steer_data_split: outputs must not be NULL");
    *train = *heldout = NULL;
    if (!d) return steer_err(STEER_EARG, "steer_data_split: dataset is NULL");
    if (n_heldout < 0 || n_heldout > d->n)
        return steer_err(STEER_EARG, "split: %d held-out items asked for but the dataset has %d", n_heldout, d->n);
    int n = d->n;
    int *perm = malloc((size_t)(n ? n : 1) * sizeof *perm);
    unsigned char *held = calloc((size_t)(n ? n : 1), 1);
    int *a = malloc((size_t)(n ? n : 1) * sizeof *a), *b = malloc((size_t)(n ? n : 1) * sizeof *b);
    int rc = STEER_OK;
    if (!perm || !held || !a || !b) {
        rc = steer_err(STEER_ENOMEM, "split: out of memory");
        goto done;
    }
    steer_data_permutation(n, seed, perm);
    for (int i = 0; i < n_heldout; i++) held[perm[i]] = 1;
    int na = 0, nb = 0;
    for (int i = 0; i < n; i++) { /* each part keeps the dataset's order */
        if (held[i])
            b[nb++] = i;
        else
            a[na++] = i;
    }
    if ((rc = steer_data_subset(d, a, na, train)) != STEER_OK) goto done;
    if ((rc = steer_data_subset(d, b, nb, heldout)) != STEER_OK) {
        steer_data_free(*train);
        *train = NULL;
    }
done:
    free(perm);
    free(held);
    free(a);
    free(b);
    return rc;
}

/* ---------------------------------------------------------------- templates */

/* Looks up a placeholder {name}: its text, or NULL if this row has none
 * (scratch[scratch_size] may hold the text of a number). */
typedef const char *(*lookup_fn)(void *ud, const char *name, char *scratch, size_t scratch_size);

static int is_ident(int c) { return isalnum(c) || c == '_'; }

/* Finds the next placeholder at or after p: returns its '{' and sets name
 * bounds, or NULL. A placeholder is '{' identifier '}'; other braces are
 * literal text. */
static const char *next_placeholder(const char *p, const char **name, size_t *len)
{
    for (; (p = strchr(p, '{')) != NULL; p++) {
        const char *q = p + 1;
        while (is_ident((unsigned char)*q)) q++;
        if (q > p + 1 && *q == '}') {
            *name = p + 1;
            *len = (size_t)(q - p - 1);
            return p;
        }
    }
    return NULL;
}

/* Renders tmpl. On an unknown name, returns STEER_EFORMAT with the name in
 * bad_name (the caller writes the message). */
static int render(const char *tmpl, lookup_fn look, void *ud, char **out, char *bad_name, size_t bad_size)
{
    sbuf b = {0};
    const char *p = tmpl, *name;
    size_t len;
    const char *ph;
    while ((ph = next_placeholder(p, &name, &len)) != NULL) {
        sb_put(&b, p, (size_t)(ph - p));
        char key[128], scratch[64];
        if (len >= sizeof key) len = sizeof key - 1;
        memcpy(key, name, len);
        key[len] = '\0';
        const char *v = look(ud, key, scratch, sizeof scratch);
        if (!v) {
            free(sb_take(&b));
            snprintf(bad_name, bad_size, "%s", key);
            return STEER_EFORMAT;
        }
        sb_puts(&b, v);
        p = name + len + 1;
    }
    sb_puts(&b, p);
    *out = sb_take(&b);
    return *out ? STEER_OK : steer_err(STEER_ENOMEM, "template: out of memory");
}

/* Checks that every placeholder of tmpl is in names[] (NULL-terminated). */
static int check_template(const char *what, const char *tmpl, const char *const *names, const char *fmt_name)
{
    const char *p = tmpl, *name;
    size_t len;
    const char *ph;
    while ((ph = next_placeholder(p, &name, &len)) != NULL) {
        int ok = 0;
        for (int i = 0; names[i]; i++) ok |= strlen(names[i]) == len && strncmp(names[i], name, len) == 0;
        if (!ok) {
            char list[256];
            int off = 0;
            list[0] = '\0';
            for (int i = 0; names[i] && off >= 0 && (size_t)off < sizeof list; i++)
                off += snprintf(list + off, sizeof list - (size_t)off, "%s{%s}", i ? ", " : "", names[i]);
            return steer_err(STEER_EARG, "%s: unknown placeholder '{%.*s}' (%s templates know %s)", what, (int)len,
                             name, fmt_name, list);
        }
        p = name + len + 1;
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- row parsing */

typedef struct {
    const char *path;
    int line;
} where;

/* A string field; *out NULL when absent (or JSON null). */
static int get_str(const where *w, const cJSON *row, const char *key, int required, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        if (required) return steer_err(STEER_EFORMAT, "%s:%d: missing field '%s'", w->path, w->line, key);
        return STEER_OK;
    }
    if (!cJSON_IsString(v) || !v->valuestring)
        return steer_err(STEER_EFORMAT, "%s:%d: field '%s' is not a string", w->path, w->line, key);
    *out = v->valuestring;
    return STEER_OK;
}

/* Text of a string or number field for templates and ids. */
static const char *field_text(const cJSON *v, char *scratch, size_t n)
{
    if (!v) return NULL;
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsNumber(v)) {
        double x = v->valuedouble;
        if (x == floor(x) && fabs(x) < 1e15)
            snprintf(scratch, n, "%lld", (long long)x);
        else
            snprintf(scratch, n, "%.17g", x);
        return scratch;
    }
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v) ? "true" : "false";
    return NULL;
}

/* jsonl rows: placeholders are the row's fields. */
typedef struct {
    const cJSON *row;
} jsonl_ud;

static const char *jsonl_lookup(void *ud, const char *name, char *scratch, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(((jsonl_ud *)ud)->row, name);
    return field_text(v, scratch, n);
}

/* Winogrande: sentence, option1, option2; completions also letter, option,
 * answer. */
typedef struct {
    const char *sentence, *option1, *option2, *answer, *letter, *option;
} wino_ud;

static const char *wino_lookup(void *ud, const char *name, char *scratch, size_t n)
{
    (void)scratch;
    (void)n;
    const wino_ud *w = ud;
    if (strcmp(name, "sentence") == 0) return w->sentence;
    if (strcmp(name, "option1") == 0) return w->option1;
    if (strcmp(name, "option2") == 0) return w->option2;
    if (strcmp(name, "answer") == 0) return w->answer ? w->answer : "";
    if (strcmp(name, "letter") == 0) return w->letter;
    if (strcmp(name, "option") == 0) return w->option;
    return NULL;
}

typedef struct {
    const char *expr, *answer;
} listops_ud;

static const char *listops_lookup(void *ud, const char *name, char *scratch, size_t n)
{
    (void)scratch;
    (void)n;
    const listops_ud *l = ud;
    if (strcmp(name, "expr") == 0) return l->expr;
    if (strcmp(name, "answer") == 0) return l->answer;
    return NULL;
}

static const char *const wino_prompt_names[] = {"sentence", "option1", "option2", NULL};
static const char *const wino_completion_names[] = {"sentence", "option1", "option2", "letter", "option", "answer",
                                                     NULL};
static const char *const listops_prompt_names[] = {"expr", NULL};
static const char *const listops_completion_names[] = {"expr", "answer", NULL};

typedef struct {
    steer_data_format fmt;
    const char *prompt_tmpl;     /* NULL: jsonl "prompt" field */
    const char *completion_tmpl; /* NULL: jsonl "completion" field */
} load_cfg;

static int render_at(const where *w, const char *tmpl, lookup_fn look, void *ud, char **out)
{
    char bad[128];
    int rc = render(tmpl, look, ud, out, bad, sizeof bad);
    if (rc == STEER_EFORMAT)
        return steer_err(STEER_EFORMAT, "%s:%d: missing field '%s' (used by the template)", w->path, w->line, bad);
    return rc;
}

static int oom_item(steer_data_item *it)
{
    item_clear(it);
    return steer_err(STEER_ENOMEM, "dataset: out of memory");
}

/* Rows without an id are named by their line number. */
static void default_id(const where *w, char *buf, size_t n) { snprintf(buf, n, "%d", w->line); }

static int parse_jsonl_row(const load_cfg *cfg, const where *w, const cJSON *row, steer_data_item *it)
{
    int rc;
    char scratch[64], idbuf[64];
    jsonl_ud ud = {row};
    if (cfg->prompt_tmpl) {
        if ((rc = render_at(w, cfg->prompt_tmpl, jsonl_lookup, &ud, &it->prompt)) != STEER_OK) return rc;
    } else {
        const char *p;
        if ((rc = get_str(w, row, "prompt", 1, &p)) != STEER_OK) return rc;
        if (!(it->prompt = xstrdup(p))) return oom_item(it);
    }
    if (cfg->completion_tmpl) {
        if ((rc = render_at(w, cfg->completion_tmpl, jsonl_lookup, &ud, &it->completion)) != STEER_OK) {
            item_clear(it);
            return rc;
        }
    } else {
        const char *c;
        if ((rc = get_str(w, row, "completion", 0, &c)) != STEER_OK) {
            item_clear(it);
            return rc;
        }
        if (c && !(it->completion = xstrdup(c))) return oom_item(it);
    }
    it->label = -1;
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(row, "label");
    if (lab && !cJSON_IsNull(lab)) {
        if (!cJSON_IsNumber(lab) || lab->valuedouble != floor(lab->valuedouble) || lab->valuedouble < 0 ||
            lab->valuedouble > 1e9) {
            item_clear(it);
            return steer_err(STEER_EFORMAT, "%s:%d: field 'label' is not a non-negative integer", w->path, w->line);
        }
        it->label = (int)lab->valuedouble;
    }
    const char *id = field_text(cJSON_GetObjectItemCaseSensitive(row, "id"), scratch, sizeof scratch);
    if (!id) {
        default_id(w, idbuf, sizeof idbuf);
        id = idbuf;
    }
    if (!(it->id = xstrdup(id))) return oom_item(it);
    return STEER_OK;
}

static int parse_wino_row(const load_cfg *cfg, const where *w, const cJSON *row, steer_data_item *it)
{
    int rc;
    wino_ud ud = {0};
    const char *qid;
    if ((rc = get_str(w, row, "sentence", 1, &ud.sentence)) != STEER_OK ||
        (rc = get_str(w, row, "option1", 1, &ud.option1)) != STEER_OK ||
        (rc = get_str(w, row, "option2", 1, &ud.option2)) != STEER_OK ||
        (rc = get_str(w, row, "qID", 0, &qid)) != STEER_OK)
        return rc;
    int blanks = 0;
    for (const char *p = ud.sentence; *p; p++) blanks += *p == '_';
    if (blanks != 1)
        return steer_err(STEER_EFORMAT, "%s:%d: sentence has %d blanks '_' (expected exactly one)", w->path, w->line,
                         blanks);
    /* answer: "1" | "2" (or the numbers 1, 2); absent, null or "": unlabeled
     * (the test split). */
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(row, "answer");
    int label = -1;
    if (a && !cJSON_IsNull(a)) {
        if (cJSON_IsString(a) && a->valuestring && strcmp(a->valuestring, "1") == 0)
            label = 0;
        else if (cJSON_IsString(a) && a->valuestring && strcmp(a->valuestring, "2") == 0)
            label = 1;
        else if (cJSON_IsNumber(a) && (a->valuedouble == 1.0 || a->valuedouble == 2.0))
            label = (int)a->valuedouble - 1;
        else if (!(cJSON_IsString(a) && a->valuestring && a->valuestring[0] == '\0')) {
            char *txt = cJSON_PrintUnformatted(a);
            rc = steer_err(STEER_EFORMAT, "%s:%d: answer must be \"1\" or \"2\", got %.40s", w->path, w->line,
                           txt ? txt : "?");
            cJSON_free(txt);
            return rc;
        }
    }
    it->label = label;
    ud.answer = label == 0 ? "1" : label == 1 ? "2" : "";
    const char *ptmpl = cfg->prompt_tmpl ? cfg->prompt_tmpl : STEER_WINOGRANDE_TEMPLATE;
    const char *ctmpl = cfg->completion_tmpl ? cfg->completion_tmpl : STEER_WINOGRANDE_COMPLETION;
    if ((rc = render_at(w, ptmpl, wino_lookup, &ud, &it->prompt)) != STEER_OK) return rc;
    if (!(it->choices = calloc(2, sizeof *it->choices))) return oom_item(it);
    for (int c = 0; c < 2; c++) {
        ud.letter = c == 0 ? "A" : "B";
        ud.option = c == 0 ? ud.option1 : ud.option2;
        if ((rc = render_at(w, ctmpl, wino_lookup, &ud, &it->choices[c])) != STEER_OK) {
            item_clear(it);
            return rc;
        }
        it->n_choices = c + 1;
    }
    if (label >= 0 && !(it->completion = xstrdup(it->choices[label]))) return oom_item(it);
    char idbuf[64];
    if (!qid) default_id(w, idbuf, sizeof idbuf);
    if (!(it->id = xstrdup(qid ? qid : idbuf))) return oom_item(it);
    return STEER_OK;
}

static int parse_listops_row(const load_cfg *cfg, const where *w, const cJSON *row, steer_data_item *it)
{
    int rc;
    listops_ud ud = {0};
    if ((rc = get_str(w, row, "expr", 1, &ud.expr)) != STEER_OK) return rc;
    if (ud.expr[0] == '\0') return steer_err(STEER_EFORMAT, "%s:%d: field 'expr' is empty", w->path, w->line);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(row, "answer");
    if (!a || cJSON_IsNull(a)) return steer_err(STEER_EFORMAT, "%s:%d: missing field 'answer'", w->path, w->line);
    int label = -1;
    if (cJSON_IsNumber(a) && a->valuedouble >= 0 && a->valuedouble <= 9 && a->valuedouble == floor(a->valuedouble))
        label = (int)a->valuedouble;
    else if (cJSON_IsString(a) && a->valuestring && a->valuestring[0] >= '0' && a->valuestring[0] <= '9' &&
             a->valuestring[1] == '\0')
        label = a->valuestring[0] - '0';
    if (label < 0) {
        char *txt = cJSON_PrintUnformatted(a);
        rc = steer_err(STEER_EFORMAT, "%s:%d: answer must be a digit 0-9, got %.40s", w->path, w->line,
                       txt ? txt : "?");
        cJSON_free(txt);
        return rc;
    }
    it->label = label;
    const char *ptmpl = cfg->prompt_tmpl ? cfg->prompt_tmpl : STEER_LISTOPS_TEMPLATE;
    const char *ctmpl = cfg->completion_tmpl ? cfg->completion_tmpl : STEER_LISTOPS_COMPLETION;
    if ((rc = render_at(w, ptmpl, listops_lookup, &ud, &it->prompt)) != STEER_OK) return rc;
    if (!(it->choices = calloc(10, sizeof *it->choices))) return oom_item(it);
    for (int c = 0; c < 10; c++) {
        char digit[2] = {(char)('0' + c), '\0'};
        ud.answer = digit;
        if ((rc = render_at(w, ctmpl, listops_lookup, &ud, &it->choices[c])) != STEER_OK) {
            item_clear(it);
            return rc;
        }
        it->n_choices = c + 1;
    }
    if (!(it->completion = xstrdup(it->choices[label]))) return oom_item(it);
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(row, "id");
    char scratch[64], idbuf[64];
    const char *id = field_text(idv, scratch, sizeof scratch);
    if (!id) {
        default_id(w, idbuf, sizeof idbuf);
        id = idbuf;
    }
    if (!(it->id = xstrdup(id))) return oom_item(it);
    return STEER_OK;
}

static int check_templates(const load_cfg *cfg)
{
    int rc = STEER_OK;
    if (cfg->fmt == STEER_DATA_WINOGRANDE) {
        if (cfg->prompt_tmpl) rc = check_template("prompt template", cfg->prompt_tmpl, wino_prompt_names, "winogrande");
        if (!rc && cfg->completion_tmpl)
            rc = check_template("completion template", cfg->completion_tmpl, wino_completion_names, "winogrande");
    } else if (cfg->fmt == STEER_DATA_LISTOPS) {
        if (cfg->prompt_tmpl) rc = check_template("prompt template", cfg->prompt_tmpl, listops_prompt_names, "listops");
        if (!rc && cfg->completion_tmpl)
            rc = check_template("completion template", cfg->completion_tmpl, listops_completion_names, "listops");
    }
    return rc;
}

/* ---------------------------------------------------------------- loading */

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

static int parse_buffer(steer_dataset *d, const load_cfg *cfg, const char *data, size_t size, int n_max)
{
    const char *path = d->path;
    char *line = NULL;
    size_t line_cap = 0;
    int rc = STEER_OK, lineno = 0;
    size_t pos = 0;
    if (size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) pos = 3; /* UTF-8 byte order mark */
    while (pos < size && (n_max <= 0 || d->n < n_max)) {
        const char *start = data + pos;
        const char *nl = memchr(start, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - start) : size - pos;
        pos += len + (nl ? 1 : 0);
        lineno++;
        if (is_blank(start, len)) continue;
        if (memchr(start, '\0', len)) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: NUL byte in line (not a text file?)", path, lineno);
            break;
        }
        if (len + 1 > line_cap) {
            size_t cap = line_cap ? line_cap : 256;
            while (cap < len + 1) cap *= 2;
            char *p = realloc(line, cap);
            if (!p) {
                rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
                break;
            }
            line = p;
            line_cap = cap;
        }
        memcpy(line, start, len);
        line[len] = '\0';
        const char *end = NULL;
        cJSON *row = cJSON_ParseWithLengthOpts(line, len + 1, &end, 0);
        if (!row) {
            long col = end && end >= line && end <= line + len ? (long)(end - line) + 1 : 1;
            rc = steer_err(STEER_EFORMAT, "%s:%d: malformed JSON at column %ld", path, lineno, col);
            break;
        }
        while (end && *end && isspace((unsigned char)*end)) end++;
        if (end && *end) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: unexpected text after the JSON value at column %ld", path, lineno,
                           (long)(end - line) + 1);
            cJSON_Delete(row);
            break;
        }
        if (!cJSON_IsObject(row)) {
            rc = steer_err(STEER_EFORMAT, "%s:%d: expected a JSON object", path, lineno);
            cJSON_Delete(row);
            break;
        }
        where w = {path, lineno};
        steer_data_item it;
        memset(&it, 0, sizeof it);
        if (cfg->fmt == STEER_DATA_WINOGRANDE)
            rc = parse_wino_row(cfg, &w, row, &it);
        else if (cfg->fmt == STEER_DATA_LISTOPS)
            rc = parse_listops_row(cfg, &w, row, &it);
        else
            rc = parse_jsonl_row(cfg, &w, row, &it);
        if (rc == STEER_EFORMAT && cfg->fmt == STEER_DATA_JSONL && !cfg->prompt_tmpl &&
            !cJSON_GetObjectItemCaseSensitive(row, "prompt")) {
            /* A likely mix-up of formats: say which prefix fits. */
            const char *hint = cJSON_GetObjectItemCaseSensitive(row, "sentence") &&
                                       cJSON_GetObjectItemCaseSensitive(row, "option1")
                                   ? "winogrande"
                               : cJSON_GetObjectItemCaseSensitive(row, "expr") ? "listops"
                                                                                : NULL;
            if (hint)
                rc = steer_err(STEER_EFORMAT, "%s:%d: missing field 'prompt' (a %s file? use %s:%s)", path, lineno,
                               hint, hint, path);
        }
        cJSON_Delete(row);
        if (rc != STEER_OK) {
            item_clear(&it);
            break;
        }
        it.line = lineno;
        if ((rc = push_item(d, &it)) != STEER_OK) break;
    }
    free(line);
    if (rc == STEER_OK && d->n == 0) rc = steer_err(STEER_EFORMAT, "%s: no items (empty file)", path);
    return rc;
}

int steer_data_load_file(steer_data_format fmt, const char *path, const steer_data_params *p, steer_dataset **out)
{
    if (!out) return steer_err(STEER_EARG, "steer_data_load_file: out is NULL");
    *out = NULL;
    if (!path || !*path) return steer_err(STEER_EARG, "dataset: empty file name");
    if ((unsigned)fmt > STEER_DATA_LISTOPS) return steer_err(STEER_EARG, "dataset: unknown format %d", (int)fmt);
    steer_data_params dp = p ? *p : steer_data_default_params();
    if (dp.n_max < 0) return steer_err(STEER_EARG, "dataset: n_max must be >= 0, got %d", dp.n_max);
    load_cfg cfg = {fmt, dp.prompt_template, dp.completion_template};
    int rc = check_templates(&cfg);
    if (rc) return rc;
    io_map m;
    if ((rc = io_map_open(path, &m)) != STEER_OK) return rc;
    steer_dataset *d;
    if ((rc = dataset_new(fmt, path, &d)) != STEER_OK) {
        io_map_close(&m);
        return rc;
    }
    rc = parse_buffer(d, &cfg, (const char *)m.data, m.size, dp.n_max);
    io_map_close(&m);
    if (rc != STEER_OK) {
        steer_data_free(d);
        return rc;
    }
    *out = d;
    return STEER_OK;
}

int steer_data_load(const char *spec, const steer_data_params *p, steer_dataset **out)
{
    if (!out) return steer_err(STEER_EARG, "steer_data_load: out is NULL");
    *out = NULL;
    if (!spec || !*spec) return steer_err(STEER_EARG, "dataset: empty spec (expected FORMAT:FILE or FILE)");
    steer_data_format fmt;
    const char *path;
    steer_data_parse_spec(spec, &fmt, &path);
    return steer_data_load_file(fmt, path, p, out);
}

/* ---------------------------------------------------------------- writing */

/* Writes s as a JSON string (cJSON escapes; UTF-8 passes through).
 * Returns 0, or -1 when out of memory. */
static int json_str(FILE *f, const char *s)
{
    cJSON *v = cJSON_CreateString(s);
    char *t = v ? cJSON_PrintUnformatted(v) : NULL;
    if (t) fputs(t, f);
    cJSON_free(t);
    cJSON_Delete(v);
    return t ? 0 : -1;
}

int steer_data_write_jsonl(const steer_dataset *d, const char *path)
{
    if (!d || !path || !*path) return steer_err(STEER_EARG, "steer_data_write_jsonl: bad arguments");
    char tmp[4096];
    FILE *f = io_tmp_open(path, tmp);
    if (!f) return STEER_EIO;
    int oom = 0;
    for (int i = 0; i < d->n && !oom && !ferror(f); i++) {
        const steer_data_item *it = &d->items[i];
        fputs("{\"id\": ", f);
        oom |= json_str(f, it->id ? it->id : "");
        fputs(", \"prompt\": ", f);
        oom |= json_str(f, it->prompt);
        if (it->completion) {
            fputs(", \"completion\": ", f);
            oom |= json_str(f, it->completion);
        }
        if (it->label >= 0) fprintf(f, ", \"label\": %d", it->label);
        fputs("}\n", f);
    }
    int ok = !oom && !ferror(f);
    if (oom)
        steer_err(STEER_ENOMEM, "%s: out of memory", path);
    else if (!ok)
        steer_err(STEER_EIO, "%s: write failed", path);
    int rc = io_tmp_commit(f, tmp, path, ok);
    return oom ? STEER_ENOMEM : rc;
}

/* ---------------------------------------------------------------- few-shot */

steer_fewshot_params steer_fewshot_default_params(void)
{
    steer_fewshot_params p;
    memset(&p, 0, sizeof p);
    p.k = 5;
    p.seed = 0;
    p.separator = NULL;
    return p;
}

int steer_data_fewshot(const steer_dataset *pool, const steer_data_item *query, const steer_fewshot_params *p,
                       char **context, int *chosen)
{
    if (!context) return steer_err(STEER_EARG, "steer_data_fewshot: context is NULL");
    *context = NULL;
    if (!pool) return steer_err(STEER_EARG, "steer_data_fewshot: pool is NULL");
    steer_fewshot_params fp = p ? *p : steer_fewshot_default_params();
    if (fp.k < 0) return steer_err(STEER_EARG, "few-shot: k must be >= 0, got %d", fp.k);
    const char *sep = fp.separator ? fp.separator : "\n\n";
    int n = pool->n;
    int *perm = malloc((size_t)(n ? n : 1) * sizeof *perm);
    if (!perm) return steer_err(STEER_ENOMEM, "few-shot: out of memory");
    steer_data_permutation(n, fp.seed, perm);
    sbuf b = {0};
    int got = 0, eligible = 0;
    for (int j = 0; j < n; j++) {
        const steer_data_item *it = &pool->items[perm[j]];
        if (!it->completion) continue;
        if (query && (it == query || strcmp(it->prompt, query->prompt) == 0)) continue;
        eligible++;
        if (got == fp.k) continue;
        sb_puts(&b, it->prompt);
        sb_puts(&b, it->completion);
        sb_puts(&b, sep);
        if (chosen) chosen[got] = perm[j];
        got++;
    }
    free(perm);
    if (got < fp.k) {
        free(sb_take(&b));
        return steer_err(STEER_EARG,
                         "few-shot: %d demonstrations asked for but the pool has only %d (items with an answer, "
                         "other than the query)",
                         fp.k, eligible);
    }
    *context = sb_take(&b);
    return *context ? STEER_OK : steer_err(STEER_ENOMEM, "few-shot: out of memory");
}

/* ---------------------------------------------------------------- ListOps */

static const char *const listops_ops[] = {"MAX", "MIN", "MED", "SM"};
enum { LO_MAX = 0, LO_MIN, LO_MED, LO_SM, LO_NOPS };

#define LISTOPS_MAX_DEPTH 64
#define LISTOPS_MAX_ARGS 64
#define LISTOPS_OP_BUDGET 512 /* operators beyond the depth spine, per expression */

steer_listops_params steer_listops_default_params(void)
{
    steer_listops_params p;
    memset(&p, 0, sizeof p);
    p.max_depth = 3;
    p.max_args = 5;
    p.p_nest = 0.25f;
    p.seed = 0;
    return p;
}

static int listops_check_params(const steer_listops_params *p)
{
    if (!p) return steer_err(STEER_EARG, "listops: params are NULL");
    if (p->max_depth < 1 || p->max_depth > LISTOPS_MAX_DEPTH)
        return steer_err(STEER_EARG, "listops: max_depth must be in 1..%d, got %d", LISTOPS_MAX_DEPTH, p->max_depth);
    if (p->max_args < 2 || p->max_args > LISTOPS_MAX_ARGS)
        return steer_err(STEER_EARG, "listops: max_args must be in 2..%d, got %d", LISTOPS_MAX_ARGS, p->max_args);
    if (!(p->p_nest >= 0.0f && p->p_nest <= 1.0f))
        return steer_err(STEER_EARG, "listops: p_nest must be in [0, 1], got %g", (double)p->p_nest);
    return STEER_OK;
}

/* Combines digit counts hist[10] (n values) by op. */
static int listops_apply(int op, const int *hist, int n)
{
    int v = 0;
    switch (op) {
    case LO_MAX:
        for (v = 9; v > 0 && !hist[v]; v--) {}
        return v;
    case LO_MIN:
        for (v = 0; v < 9 && !hist[v]; v++) {}
        return v;
    case LO_MED: { /* lower median: the value at sorted index (n - 1) / 2 */
        int want = (n - 1) / 2, seen = 0;
        for (v = 0; v < 9; v++) {
            seen += hist[v];
            if (seen > want) break;
        }
        return v;
    }
    default: {
        long s = 0;
        for (int d = 0; d < 10; d++) s += (long)d * hist[d];
        return (int)(s % 10);
    }
    }
}

typedef struct {
    uint64_t rng;
    const steer_listops_params *p;
    int target;   /* depth of this expression                                */
    int n_ops;    /* operators outside the spine                             */
    sbuf out;
} lo_gen;

/* Writes one operator node at `level` (1 = root); spine nodes continue to the
 * target depth. Returns its value. */
static int lo_node(lo_gen *g, int level, int spine)
{
    int op = (int)rng_below(&g->rng, LO_NOPS);
    int nargs = 2 + (int)rng_below(&g->rng, (uint64_t)g->p->max_args - 1);
    int spine_arg = spine && level < g->target ? (int)rng_below(&g->rng, (uint64_t)nargs) : -1;
    int hist[10] = {0};
    sb_putc(&g->out, '[');
    sb_puts(&g->out, listops_ops[op]);
    for (int a = 0; a < nargs; a++) {
        sb_putc(&g->out, ' ');
        int v;
        if (a == spine_arg) {
            v = lo_node(g, level + 1, 1);
        } else {
            /* Draw the coin every time so the stream does not depend on the budget. */
            int nest = rng_unit(&g->rng) < (double)g->p->p_nest;
            if (nest && level < g->target && g->n_ops < LISTOPS_OP_BUDGET) {
                g->n_ops++;
                v = lo_node(g, level + 1, 0);
            } else {
                v = (int)rng_below(&g->rng, 10);
                sb_putc(&g->out, (char)('0' + v));
            }
        }
        hist[v]++;
    }
    sb_puts(&g->out, " ]");
    return listops_apply(op, hist, nargs);
}

int steer_listops_sample(const steer_listops_params *p, uint64_t index, char **expr, int *answer)
{
    if (!expr) return steer_err(STEER_EARG, "steer_listops_sample: expr is NULL");
    *expr = NULL;
    int rc = listops_check_params(p);
    if (rc) return rc;
    lo_gen g;
    memset(&g, 0, sizeof g);
    g.p = p;
    /* Each sample has its own stream: state = mix(seed) ⊕ mix(index). */
    uint64_t s1 = p->seed, s2 = index ^ 0x5DEECE66Dull;
    g.rng = splitmix64(&s1) ^ (splitmix64(&s2) * 0xD1342543DE82EF95ull);
    g.target = 1 + (int)rng_below(&g.rng, (uint64_t)p->max_depth);
    int v = lo_node(&g, 1, 1);
    char *s = sb_take(&g.out);
    if (!s) return steer_err(STEER_ENOMEM, "listops: out of memory");
    *expr = s;
    if (answer) *answer = v;
    return STEER_OK;
}

/* Evaluator: an explicit stack of open operators (no recursion, so deep input
 * cannot overflow the C stack). Tokens: "[OP" (or "[" then OP), a digit, "]". */
typedef struct {
    int op;
    int n;
    int hist[10];
} lo_frame;

int steer_listops_eval(const char *expr, int *value, int *depth, int *max_args)
{
    if (!expr) return steer_err(STEER_EARG, "listops: expression is NULL");
    lo_frame *st = NULL;
    int n_st = 0, cap = 0, have_result = 0, result = 0, max_depth = 0, widest = 0, rc = STEER_OK;
    const char *p = expr;
    for (;;) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (!*p) break;
        long col = (long)(p - expr) + 1;
        if (have_result) {
            rc = steer_err(STEER_EFORMAT, "listops: unexpected text after the expression at column %ld", col);
            goto done;
        }
        if (*p == '[') {
            p++;
            while (*p && isspace((unsigned char)*p)) p++;
            const char *q = p;
            while (isalpha((unsigned char)*q)) q++;
            int op = -1;
            for (int i = 0; i < LO_NOPS; i++)
                if (strlen(listops_ops[i]) == (size_t)(q - p) && strncmp(listops_ops[i], p, (size_t)(q - p)) == 0)
                    op = i;
            if (op < 0) {
                if (q == p)
                    rc = steer_err(STEER_EFORMAT, "listops: expected an operator (MAX, MIN, MED, SM) after '[' at "
                                                  "column %ld", col);
                else
                    rc = steer_err(STEER_EFORMAT, "listops: unknown operator '%.*s' at column %ld (MAX, MIN, MED, SM)",
                                   (int)(q - p > 16 ? 16 : q - p), p, (long)(p - expr) + 1);
                goto done;
            }
            if (n_st == cap) {
                int nc = cap ? cap * 2 : 16;
                lo_frame *ns = realloc(st, (size_t)nc * sizeof *ns);
                if (!ns) {
                    rc = steer_err(STEER_ENOMEM, "listops: out of memory");
                    goto done;
                }
                st = ns;
                cap = nc;
            }
            memset(&st[n_st], 0, sizeof st[n_st]);
            st[n_st++].op = op;
            if (n_st > max_depth) max_depth = n_st;
            p = q;
            continue;
        }
        int v;
        if (*p == ']') {
            if (n_st == 0) {
                rc = steer_err(STEER_EFORMAT, "listops: ']' without '[' at column %ld", col);
                goto done;
            }
            lo_frame *f = &st[n_st - 1];
            if (f->n == 0) {
                rc = steer_err(STEER_EFORMAT, "listops: operator %s without arguments at column %ld",
                               listops_ops[f->op], col);
                goto done;
            }
            if (f->n > widest) widest = f->n;
            v = listops_apply(f->op, f->hist, f->n);
            n_st--;
            p++;
        } else if (*p >= '0' && *p <= '9') {
            v = *p - '0';
            p++;
            if (*p && !isspace((unsigned char)*p) && *p != ']' && *p != '[') {
                rc = steer_err(STEER_EFORMAT, "listops: bad token at column %ld (arguments are single digits 0-9)",
                               col);
                goto done;
            }
        } else {
            rc = steer_err(STEER_EFORMAT, "listops: unexpected character '%c' at column %ld", *p, col);
            goto done;
        }
        if (n_st > 0) {
            st[n_st - 1].hist[v]++;
            st[n_st - 1].n++;
        } else {
            have_result = 1;
            result = v;
        }
    }
    if (n_st > 0) {
        rc = steer_err(STEER_EFORMAT, "listops: %d unclosed '['", n_st);
        goto done;
    }
    if (!have_result) {
        rc = steer_err(STEER_EFORMAT, "listops: empty expression");
        goto done;
    }
    if (value) *value = result;
    if (depth) *depth = max_depth;
    if (max_args) *max_args = widest;
done:
    free(st);
    return rc;
}

int steer_listops_write(const char *path, int n, const steer_listops_params *p)
{
    if (!path || !*path) return steer_err(STEER_EARG, "listops: empty output path");
    if (n < 1) return steer_err(STEER_EARG, "listops: n must be >= 1, got %d", n);
    int rc = listops_check_params(p);
    if (rc) return rc;
    char tmp[4096];
    FILE *f = io_tmp_open(path, tmp);
    if (!f) return STEER_EIO;
    rc = STEER_OK;
    for (int i = 0; i < n && rc == STEER_OK && !ferror(f); i++) {
        char *e;
        int v;
        if ((rc = steer_listops_sample(p, (uint64_t)i, &e, &v)) != STEER_OK) break;
        /* The expression holds only [A-Z0-9 ], so it needs no JSON escaping. */
        fprintf(f, "{\"expr\": \"%s\", \"answer\": %d}\n", e, v);
        free(e);
    }
    int ok = rc == STEER_OK && !ferror(f);
    if (rc == STEER_OK && !ok) steer_err(STEER_EIO, "%s: write failed", path);
    int crc = io_tmp_commit(f, tmp, path, ok);
    return rc != STEER_OK ? rc : crc;
}

int steer_listops_dataset(int n, const steer_listops_params *p, const steer_data_params *dp, steer_dataset **out)
{
    if (!out) return steer_err(STEER_EARG, "steer_listops_dataset: out is NULL");
    *out = NULL;
    if (n < 1) return steer_err(STEER_EARG, "listops: n must be >= 1, got %d", n);
    int rc = listops_check_params(p);
    if (rc) return rc;
    load_cfg cfg = {STEER_DATA_LISTOPS, dp ? dp->prompt_template : NULL, dp ? dp->completion_template : NULL};
    if ((rc = check_templates(&cfg)) != STEER_OK) return rc;
    steer_dataset *d;
    if ((rc = dataset_new(STEER_DATA_LISTOPS, "", &d)) != STEER_OK) return rc;
    for (int i = 0; i < n && rc == STEER_OK; i++) {
        char *e;
        int v;
        if ((rc = steer_listops_sample(p, (uint64_t)i, &e, &v)) != STEER_OK) break;
        cJSON *row = cJSON_CreateObject();
        if (!row || !cJSON_AddStringToObject(row, "expr", e) || !cJSON_AddNumberToObject(row, "answer", v) ||
            !cJSON_AddNumberToObject(row, "id", i)) {
            rc = steer_err(STEER_ENOMEM, "listops: out of memory");
        } else {
            where w = {"listops", i + 1};
            steer_data_item it;
            memset(&it, 0, sizeof it);
            if ((rc = parse_listops_row(&cfg, &w, row, &it)) == STEER_OK) rc = push_item(d, &it);
        }
        cJSON_Delete(row);
        free(e);
    }
    if (rc != STEER_OK) {
        steer_data_free(d);
        return rc;
    }
    *out = d;
    return STEER_OK;
}

/*
 * cli_steer.c — the steering options shared by generate, capture and logits:
 * --steer FILE[:SITE[:LAYERS[:ALPHA]]], --control-vector FILE[:SCALE],
 * --control-vector-layer-range A B and --ablate FILE[:SITE[:LAYERS]], composed
 * in one documented order (cli_add_steering). Each may end in a position
 * selector @SEL (@prompt, @generated, @last, @last:K, @A:B, @A:, @A,B,C;
 * docs/VECTORS.md); SITE may be a TransformerLens hook name
 * (hook_resid_post, or blocks.3.hook_resid_post, which also names the layer).
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- steering composition */

/* FILE[:F1[:F2[:F3]]] split into at most max_fields fields after the file; a
 * path that exists as given (even with ':' in it) is a plain file. buf holds
 * the pieces. Returns 0, or 2 after a usage error. */
static int split_fields(const char *opt, const char *arg, char *buf, size_t cap, const char **file,
                        const char **fields, int max_fields, const char *form, const char **sel)
{
    for (int i = 0; i < max_fields; i++)
        fields[i] = NULL;
    *sel = NULL;
    if (strlen(arg) >= cap)
        return cli_usage("%s argument too long", opt);
    strcpy(buf, arg);
    *file = buf;
    FILE *f = fopen(arg, "rb");
    if (f) {
        fclose(f);
        return 0;
    }
    /* a position selector: after the last '@' (not inside a directory name) */
    char *at = strrchr(buf, '@');
    if (at && at > buf && !strchr(at, '/')) {
        *at = '\0';
        *sel = at + 1;
    }
    char *p = buf;
    for (int i = 0; i < max_fields; i++) {
        char *colon = strchr(p, ':');
        if (!colon)
            break;
        *colon = '\0';
        p = colon + 1;
        fields[i] = p;
    }
    if (strchr(p, ':'))
        return cli_usage("%s '%s': expected %s", opt, arg, form);
    if (**file == '\0')
        return cli_usage("%s '%s': missing file name", opt, arg);
    return 0;
}

static int parse_float_arg(const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (*s == '\0' || *end != '\0' || errno || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* A position selector (the text after '@'), parsed into p; list is
 * malloc'd for ranges and lists (the caller frees it). Returns 0 or 2 after
 * a usage error. */
typedef struct {
    steer_positions pos;
    int *list;
} pos_sel;

static int read_pos(const char **s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(*s, &end, 10);
    if (end == *s || errno || v < 0 || v > 10000000 || **s == '-' || **s == '+') return -1;
    *s = end;
    *out = (int)v;
    return 0;
}

static int parse_sel(const char *opt, const char *arg, const char *sel, pos_sel *out)
{
    memset(out, 0, sizeof *out);
    out->pos.kind = STEER_POS_ALL;
    if (!sel || strcmp(sel, "all") == 0) return 0;
    if (strcmp(sel, "prompt") == 0) {
        out->pos.kind = STEER_POS_PROMPT;
        return 0;
    }
    if (strcmp(sel, "generated") == 0) {
        out->pos.kind = STEER_POS_GENERATED;
        return 0;
    }
    const char *s = sel;
    int a, b;
    if (strncmp(sel, "last", 4) == 0) {
        out->pos.kind = STEER_POS_LAST_K;
        out->pos.k = 1;
        s = sel + 4;
        if (*s == '\0') return 0;
        if (*s == ':' && (s++, read_pos(&s, &a) == 0) && *s == '\0' && a >= 1) {
            out->pos.k = a;
            return 0;
        }
        goto bad;
    }
    if (read_pos(&s, &a)) goto bad;
    if (*s == ':') { /* A:B (B excluded) or A: */
        s++;
        if (*s == '\0') {
            out->pos.kind = STEER_POS_FROM;
            out->pos.k = a;
            return 0;
        }
        if (read_pos(&s, &b) || *s != '\0') goto bad;
        if (b <= a) return cli_usage("%s '%s': position range @%s is empty (A:B selects A <= position < B)", opt, arg, sel);
        if (!(out->list = malloc((size_t)(b - a) * sizeof *out->list))) return cli_error("out of memory");
        for (int i = a; i < b; i++) out->list[i - a] = i;
        out->pos.kind = STEER_POS_LIST;
        out->pos.list = out->list;
        out->pos.n_list = b - a;
        return 0;
    }
    /* A or A,B,C */
    int n = 1;
    for (const char *q = sel; *q; q++) n += *q == ',';
    if (!(out->list = malloc((size_t)n * sizeof *out->list))) return cli_error("out of memory");
    out->list[0] = a;
    int k = 1;
    while (*s == ',') {
        s++;
        if (read_pos(&s, &out->list[k])) goto bad;
        k++;
    }
    if (*s != '\0') goto bad;
    out->pos.kind = STEER_POS_LIST;
    out->pos.list = out->list;
    out->pos.n_list = k;
    return 0;
bad:
    free(out->list);
    out->list = NULL;
    return cli_usage("%s '%s': bad position selector '@%s' (expected @prompt, @generated, @last, @last:K, @A:B, @A: "
                     "or @A,B,C)", opt, arg, sel);
}

/* Two selectors select the same positions (steering with them is summed). */
static int same_sel(const pos_sel *x, const pos_sel *y)
{
    if (x->pos.kind != y->pos.kind || x->pos.k != y->pos.k || x->pos.n_list != y->pos.n_list) return 0;
    for (int i = 0; i < x->pos.n_list; i++)
        if (x->pos.list[i] != y->pos.list[i]) return 0;
    return 1;
}

/* Loads FILE of a --steer / --ablate spec, keeps the vectors at SITE (any if
 * NULL) and LAYERS, and checks them against the model. */
static int load_selected(const steer_model *m, const char *opt, const char *file, const char *site_arg,
                         const char *layers_arg, steer_vecset **out)
{
    const steer_model_config *cfg = steer_model_get_config(m);
    char err[512];
    unsigned char site_mask[STEER_SITE_COUNT];
    int have_site = site_arg && *site_arg, hook_layer = -1;
    steer_site want = STEER_SITE_RESID_POST;
    if (have_site && steer_hook_name_parse(site_arg, &want, &hook_layer) != STEER_OK) {
        cli_unknown_site_msg(site_arg, err, sizeof err);
        return cli_error("%s %s: %s", opt, file, err);
    }
    for (int s = 0; s < STEER_SITE_COUNT; s++)
        site_mask[s] = !have_site || s == (int)want;
    const char *layers = layers_arg && *layers_arg ? layers_arg : "all";
    char hl[16];
    if (hook_layer >= 0) { /* blocks.L.hook_…: the layer comes with the name */
        if (layers_arg && *layers_arg)
            return cli_usage("%s %s: '%s' names layer %d; give no LAYERS field with it", opt, file, site_arg,
                             hook_layer);
        snprintf(hl, sizeof hl, "%d", hook_layer);
        layers = hl;
    }
    unsigned char *mask = malloc((size_t)cfg->n_layer);
    if (!mask)
        return cli_error("out of memory");
    if (cli_parse_layers(layers, cfg->n_layer, mask, err, sizeof err)) {
        free(mask);
        return cli_error("%s %s: %s", opt, file, err);
    }
    steer_vecset *vs = NULL;
    int rc = 0;
    if (steer_vecset_load(file, &vs) != STEER_OK) {
        rc = cli_lib_error();
    } else {
        /* Every vector at the chosen site must fit the model (a file made for
         * another model is an error even where LAYERS would drop it). */
        steer_vecset_keep(vs, site_mask, NULL, 0);
        if (steer_vecset_check_model(vs, m, file) != STEER_OK)
            rc = cli_lib_error();
        else
            steer_vecset_keep(vs, NULL, mask, cfg->n_layer);
        if (!rc && steer_vecset_count(vs) == 0)
            rc = cli_error("%s: no tensor matches site %s, layers %s", file, have_site ? site_arg : "(any)", layers);
    }
    free(mask);
    if (rc) {
        steer_vecset_free(vs);
        return rc;
    }
    *out = vs;
    return 0;
}

/* llama.cpp's --control-vector-layer-range: "A B" (merged by merge_range_args),
 * inclusive; A <= 0 means 1 and B <= 0 means the last layer, as in llama.cpp. */
static int parse_layer_range(const char *arg, int n_layer, int *lo, int *hi)
{
    long a, b;
    char *end;
    errno = 0;
    a = strtol(arg, &end, 10);
    if (end == arg || *end != ' ' || errno)
        return cli_usage("--control-vector-layer-range expects two layer numbers A B, got '%s'", arg);
    const char *q = end + 1;
    b = strtol(q, &end, 10);
    if (end == q || *end != '\0' || errno || a > INT_MAX || b > INT_MAX || a < INT_MIN || b < INT_MIN)
        return cli_usage("--control-vector-layer-range expects two layer numbers A B, got '%s'", arg);
    *lo = a <= 0 ? 1 : (int)a;
    *hi = b <= 0 ? n_layer - 1 : (int)b;
    if (*hi > n_layer - 1)
        *hi = n_layer - 1;
    if (*lo > *hi)
        return cli_error("--control-vector-layer-range %s selects no layer (control vectors act on layers 1 to %d)",
                         arg, n_layer - 1);
    return 0;
}

/* The --steer and --control-vector sums of one position selector. */
#define MAX_GROUPS 16
typedef struct {
    pos_sel sel;
    steer_vecset *sum, *sum_pos; /* one-row and per-position ([T, d]) vectors */
} steer_group;

/* The group of selector *sel (moved into a new group when there is none; then
 * sel->list belongs to the group). */
static int group_of(steer_group *g, int *n_g, pos_sel *sel, const char *opt, const char *arg, steer_group **out)
{
    for (int i = 0; i < *n_g; i++)
        if (same_sel(&g[i].sel, sel)) {
            free(sel->list);
            sel->list = NULL;
            *out = &g[i];
            return 0;
        }
    if (*n_g >= MAX_GROUPS) {
        free(sel->list);
        return cli_usage("%s '%s': more than %d different position selectors", opt, arg, MAX_GROUPS);
    }
    steer_group *ng = &g[*n_g];
    memset(ng, 0, sizeof *ng);
    if (steer_vecset_new(&ng->sum) != STEER_OK || steer_vecset_new(&ng->sum_pos) != STEER_OK) {
        steer_vecset_free(ng->sum);
        free(sel->list);
        return cli_lib_error();
    }
    ng->sel = *sel;
    sel->list = NULL;
    (*n_g)++;
    *out = ng;
    return 0;
}

/* One STEER_ADD (α = 1) per vector of vs at the selector's positions. */
static int apply_sel(const steer_vecset *vs, steer_ctx *c, const steer_positions *pos)
{
    for (int k = 0; k < steer_vecset_count(vs); k++) {
        const steer_vec *e = steer_vecset_at(vs, k);
        steer_intervention iv;
        memset(&iv, 0, sizeof iv);
        iv.kind = STEER_ADD;
        iv.site = e->site;
        iv.layer = e->layer;
        iv.alpha = 1.0f;
        iv.data = e->data;
        iv.n_rows = e->n_rows;
        iv.positions = *pos;
        iv.seq = -1;
        if (steer_ctx_add_intervention(c, &iv) < 0)
            return cli_lib_error();
    }
    return 0;
}

/* Adds, in this order, at every (site, layer):
 *   1. one STEER_ABLATE per --ablate vector, in command-line order, at its
 *      @positions;
 *   2. per position selector (in order of first appearance; no @ = all
 *      positions), one STEER_ADD of Σ αᵢ·vᵢ over the --steer files
 *      (α from FILE:…:ALPHA) and then the --control-vector files
 *      (α = SCALE) with that selector, summed in float in command-line
 *      order (control vectors only inside the layer range);
 *   3. per selector, one STEER_ADD of the summed per-position ([T, d])
 *      --steer vectors. */
int cli_add_steering(steer_ctx *c, const steer_model *m, const cli_strlist *steers, const cli_strlist *cvs,
                     const char *range, const cli_strlist *ablates)
{
    const steer_model_config *cfg = steer_model_get_config(m);
    char buf[4096];
    const char *file, *f[3], *sel_s;
    int rc = 0, lo = 1, hi = cfg->n_layer - 1;
    if (range && (rc = parse_layer_range(range, cfg->n_layer, &lo, &hi)) != 0)
        return rc;
    if (range && cvs->n == 0)
        return cli_usage("--control-vector-layer-range needs --control-vector");

    for (int i = 0; i < ablates->n && !rc; i++) {
        if ((rc = split_fields("--ablate", ablates->items[i], buf, sizeof buf, &file, f, 2,
                               "FILE[:SITE[:LAYERS]][@POSITIONS]", &sel_s)) != 0)
            return rc;
        pos_sel sel;
        if ((rc = parse_sel("--ablate", ablates->items[i], sel_s, &sel)) != 0)
            return rc;
        steer_vecset *vs = NULL;
        if ((rc = load_selected(m, "--ablate", file, f[0], f[1], &vs)) != 0) {
            free(sel.list);
            return rc;
        }
        for (int k = 0; k < steer_vecset_count(vs) && !rc; k++) {
            const steer_vec *e = steer_vecset_at(vs, k);
            steer_intervention iv;
            memset(&iv, 0, sizeof iv);
            iv.kind = STEER_ABLATE;
            iv.site = e->site;
            iv.layer = e->layer;
            iv.alpha = 1.0f;
            iv.data = e->data;
            iv.n_rows = e->n_rows;
            iv.positions = sel.pos;
            iv.seq = -1;
            if (steer_ctx_add_intervention(c, &iv) < 0)
                rc = cli_lib_error_at(file);
        }
        free(sel.list);
        steer_vecset_free(vs);
    }
    if (rc)
        return rc;

    steer_group groups[MAX_GROUPS];
    int n_groups = 0;
    for (int i = 0; i < steers->n && !rc; i++) {
        if ((rc = split_fields("--steer", steers->items[i], buf, sizeof buf, &file, f, 3,
                               "FILE[:SITE[:LAYERS[:ALPHA]]][@POSITIONS]", &sel_s)) != 0)
            break;
        float alpha = 1.0f;
        if (f[2] && *f[2] && parse_float_arg(f[2], &alpha)) {
            rc = cli_usage("--steer %s: bad alpha '%s'", file, f[2]);
            break;
        }
        pos_sel sel;
        steer_group *g = NULL;
        if ((rc = parse_sel("--steer", steers->items[i], sel_s, &sel)) != 0 ||
            (rc = group_of(groups, &n_groups, &sel, "--steer", steers->items[i], &g)) != 0)
            break;
        steer_vecset *vs = NULL;
        if ((rc = load_selected(m, "--steer", file, f[0], f[1], &vs)) != 0)
            break;
        for (int k = 0; k < steer_vecset_count(vs) && !rc; k++) {
            const steer_vec *e = steer_vecset_at(vs, k);
            if (steer_vecset_accumulate(e->n_rows ? g->sum_pos : g->sum, e->site, e->layer, e->n_rows, e->width,
                                        e->data, alpha) != STEER_OK)
                rc = cli_lib_error_at(file);
        }
        steer_vecset_free(vs);
    }
    for (int i = 0; i < cvs->n && !rc; i++) {
        if ((rc = split_fields("--control-vector", cvs->items[i], buf, sizeof buf, &file, f, 1,
                               "FILE[:SCALE][@POSITIONS]", &sel_s)) != 0)
            break;
        float scale = 1.0f;
        if (f[0] && *f[0] && parse_float_arg(f[0], &scale)) {
            rc = cli_usage("--control-vector %s: bad scale '%s'", file, f[0]);
            break;
        }
        pos_sel sel;
        steer_group *g = NULL;
        if ((rc = parse_sel("--control-vector", cvs->items[i], sel_s, &sel)) != 0 ||
            (rc = group_of(groups, &n_groups, &sel, "--control-vector", cvs->items[i], &g)) != 0)
            break;
        steer_vecset *vs = NULL;
        if (steer_vecset_load_llamacpp(file, cfg->n_layer, cfg->d_model, &vs) != STEER_OK) {
            rc = cli_lib_error();
            break;
        }
        for (int k = 0; k < steer_vecset_count(vs) && !rc; k++) {
            const steer_vec *e = steer_vecset_at(vs, k);
            if (e->layer < lo || e->layer > hi)
                continue;
            if (steer_vecset_accumulate(g->sum, e->site, e->layer, 0, e->width, e->data, scale) != STEER_OK)
                rc = cli_lib_error_at(file);
        }
        steer_vecset_free(vs);
    }
    for (int i = 0; i < n_groups && !rc; i++)
        rc = apply_sel(groups[i].sum, c, &groups[i].sel.pos);
    for (int i = 0; i < n_groups && !rc; i++)
        rc = apply_sel(groups[i].sum_pos, c, &groups[i].sel.pos);
    for (int i = 0; i < n_groups; i++) {
        steer_vecset_free(groups[i].sum);
        steer_vecset_free(groups[i].sum_pos);
        free(groups[i].sel.list);
    }
    return rc;
}

/*
 * cli_steer.c — the steering options shared by generate, capture and logits:
 * --steer FILE[:SITE[:LAYERS[:ALPHA]]], --control-vector FILE[:SCALE],
 * --control-vector-layer-range A B and --ablate FILE[:SITE[:LAYERS]], composed
 * in one documented order (cli_add_steering).
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
                        const char **fields, int max_fields, const char *form)
{
    for (int i = 0; i < max_fields; i++)
        fields[i] = NULL;
    if (strlen(arg) >= cap)
        return cli_usage("%s argument too long", opt);
    strcpy(buf, arg);
    *file = buf;
    FILE *f = fopen(arg, "rb");
    if (f) {
        fclose(f);
        return 0;
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

/* Loads FILE of a --steer / --ablate spec, keeps the vectors at SITE (any if
 * NULL) and LAYERS, and checks them against the model. */
static int load_selected(const steer_model *m, const char *opt, const char *file, const char *site_arg,
                         const char *layers_arg, steer_vecset **out)
{
    const steer_model_config *cfg = steer_model_get_config(m);
    char err[512];
    unsigned char site_mask[STEER_SITE_COUNT];
    int have_site = site_arg && *site_arg;
    steer_site want = STEER_SITE_RESID_POST;
    if (have_site && steer_site_parse(site_arg, &want) != STEER_OK) {
        cli_unknown_site_msg(site_arg, err, sizeof err);
        return cli_error("%s %s: %s", opt, file, err);
    }
    for (int s = 0; s < STEER_SITE_COUNT; s++)
        site_mask[s] = !have_site || s == (int)want;
    const char *layers = layers_arg && *layers_arg ? layers_arg : "all";
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

/* Adds, in this order, at every (site, layer):
 *   1. one STEER_ABLATE per --ablate vector, in command-line order;
 *   2. one STEER_ADD of Σ αᵢ·vᵢ over the --steer files (α from FILE:…:ALPHA)
 *      and then the --control-vector files (α = SCALE), summed in float in
 *      command-line order (control vectors only inside the layer range);
 *   3. one STEER_ADD of the summed per-position ([T, d]) --steer vectors. */
int cli_add_steering(steer_ctx *c, const steer_model *m, const cli_strlist *steers, const cli_strlist *cvs,
                     const char *range, const cli_strlist *ablates)
{
    const steer_model_config *cfg = steer_model_get_config(m);
    char buf[4096];
    const char *file, *f[3];
    int rc = 0, lo = 1, hi = cfg->n_layer - 1;
    if (range && (rc = parse_layer_range(range, cfg->n_layer, &lo, &hi)) != 0)
        return rc;
    if (range && cvs->n == 0)
        return cli_usage("--control-vector-layer-range needs --control-vector");

    for (int i = 0; i < ablates->n && !rc; i++) {
        if ((rc = split_fields("--ablate", ablates->items[i], buf, sizeof buf, &file, f, 2,
                               "FILE[:SITE[:LAYERS]]")) != 0)
            return rc;
        steer_vecset *vs = NULL;
        if ((rc = load_selected(m, "--ablate", file, f[0], f[1], &vs)) != 0)
            return rc;
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
            iv.positions.kind = STEER_POS_ALL;
            iv.seq = -1;
            if (steer_ctx_add_intervention(c, &iv) < 0)
                rc = cli_lib_error_at(file);
        }
        steer_vecset_free(vs);
    }
    if (rc)
        return rc;

    steer_vecset *sum = NULL, *sum_pos = NULL;
    if (steer_vecset_new(&sum) != STEER_OK || steer_vecset_new(&sum_pos) != STEER_OK) {
        steer_vecset_free(sum);
        return cli_lib_error();
    }
    for (int i = 0; i < steers->n && !rc; i++) {
        if ((rc = split_fields("--steer", steers->items[i], buf, sizeof buf, &file, f, 3,
                               "FILE[:SITE[:LAYERS[:ALPHA]]]")) != 0)
            break;
        float alpha = 1.0f;
        if (f[2] && *f[2] && parse_float_arg(f[2], &alpha)) {
            rc = cli_usage("--steer %s: bad alpha '%s'", file, f[2]);
            break;
        }
        steer_vecset *vs = NULL;
        if ((rc = load_selected(m, "--steer", file, f[0], f[1], &vs)) != 0)
            break;
        for (int k = 0; k < steer_vecset_count(vs) && !rc; k++) {
            const steer_vec *e = steer_vecset_at(vs, k);
            if (steer_vecset_accumulate(e->n_rows ? sum_pos : sum, e->site, e->layer, e->n_rows, e->width, e->data,
                                        alpha) != STEER_OK)
                rc = cli_lib_error_at(file);
        }
        steer_vecset_free(vs);
    }
    for (int i = 0; i < cvs->n && !rc; i++) {
        if ((rc = split_fields("--control-vector", cvs->items[i], buf, sizeof buf, &file, f, 1, "FILE[:SCALE]")) != 0)
            break;
        float scale = 1.0f;
        if (f[0] && *f[0] && parse_float_arg(f[0], &scale)) {
            rc = cli_usage("--control-vector %s: bad scale '%s'", file, f[0]);
            break;
        }
        steer_vecset *vs = NULL;
        if (steer_vecset_load_llamacpp(file, cfg->n_layer, cfg->d_model, &vs) != STEER_OK) {
            rc = cli_lib_error();
            break;
        }
        for (int k = 0; k < steer_vecset_count(vs) && !rc; k++) {
            const steer_vec *e = steer_vecset_at(vs, k);
            if (e->layer < lo || e->layer > hi)
                continue;
            if (steer_vecset_accumulate(sum, e->site, e->layer, 0, e->width, e->data, scale) != STEER_OK)
                rc = cli_lib_error_at(file);
        }
        steer_vecset_free(vs);
    }
    if (!rc && (steer_vecset_apply(sum, c, 1.0f) != STEER_OK || steer_vecset_apply(sum_pos, c, 1.0f) != STEER_OK))
        rc = cli_lib_error();
    steer_vecset_free(sum);
    steer_vecset_free(sum_pos);
    return rc;
}


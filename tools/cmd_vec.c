/* cmd_vec.c — `steer vec SUBCOMMAND`: inspect, combine and convert vector
 * files (info, norms, scale, add, sub, normalize, slice, export, import).
 * Inputs may be steer vector files (safetensors) or llama.cpp / repeng
 * control vectors (GGUF, read as resid_post); outputs are written atomically.
 * Conventions: docs/VECTORS.md. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VEC_MAX_LAYERS 100000 /* layer lists without a model are parsed against this */

static int load(const char *path, steer_vecset **out)
{
    if (steer_vecset_load(path, out) != STEER_OK)
        return cli_lib_error();
    return 0;
}

/* Records the command and the inputs in the output's metadata, then writes. */
static int save(steer_vecset *vs, const char *path, const char *inputs)
{
    if (steer_vecset_set_meta(vs, "command", cli_cmdline) != STEER_OK ||
        (inputs && steer_vecset_set_meta(vs, "inputs", inputs) != STEER_OK) ||
        steer_vecset_save(vs, path) != STEER_OK)
        return cli_lib_error();
    return 0;
}

static void vec_name(const steer_vec *e, char *buf, size_t n)
{
    snprintf(buf, n, "%s.%d", steer_site_name(e->site), e->layer);
}

static void shape_str(const steer_vec *e, char *buf, size_t n)
{
    if (e->n_rows)
        snprintf(buf, n, "[%d, %d]", e->n_rows, e->width);
    else
        snprintf(buf, n, "[%d]", e->width);
}

static size_t vec_len(const steer_vec *e) { return (size_t)(e->n_rows ? e->n_rows : 1) * (size_t)e->width; }

static int is_gguf(const char *path)
{
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    int yes = f && fread(magic, 1, 4, f) == 4 && memcmp(magic, "GGUF", 4) == 0;
    if (f)
        fclose(f);
    return yes;
}

/* ---------------------------------------------------------------- info, norms */

static int vec_info(int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const cli_spec spec = {
        .usage = "steer vec info FILE",
        .description = "Prints a vector file's format, metadata and vectors (name, shape, L2 norm).\n"
                       "FILE is a steer vector file (.safetensors) or a llama.cpp control vector (.gguf).",
        .example = "  steer vec info happy.safetensors",
        .min_pos = 1,
        .max_pos = 1,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    steer_vecset *vs = NULL;
    if ((rc = load(pos[0], &vs)) != 0)
        return rc;
    printf("file: %s\n", pos[0]);
    printf("format: %s\n", is_gguf(pos[0]) ? "llama.cpp control vector (GGUF)" : "steer vector file (safetensors)");
    printf("vectors: %d\n", steer_vecset_count(vs));
    if (steer_vecset_meta_count(vs) > 0) {
        printf("metadata:\n");
        for (int i = 0; i < steer_vecset_meta_count(vs); i++) {
            const char *k = steer_vecset_meta_key(vs, i);
            printf("  %s = %s\n", k, steer_vecset_meta(vs, k));
        }
    }
    printf("%-20s %-14s %s\n", "tensor", "shape", "norm");
    for (int i = 0; i < steer_vecset_count(vs); i++) {
        const steer_vec *e = steer_vecset_at(vs, i);
        char name[48], shape[48];
        vec_name(e, name, sizeof name);
        shape_str(e, shape, sizeof shape);
        printf("%-20s %-14s %.6g\n", name, shape, steer_vec_norm(e->data, (int)vec_len(e)));
    }
    steer_vecset_free(vs);
    return 0;
}

static int vec_norms(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    int n_pos = 0;
    const cli_spec spec = {
        .usage = "steer vec norms FILE [OTHER]",
        .description = "Prints the L2 norm of every vector, one line per tensor in site/layer order:\n"
                       "  <site>.<layer> <norm>\n"
                       "With OTHER, compares the two files tensor by tensor:\n"
                       "  <site>.<layer> <norm in FILE> <norm in OTHER> <cosine>\n"
                       "('-' where a tensor is missing from one file or shapes differ). Per-position\n"
                       "tensors [T, d] are compared as flat vectors.",
        .example = "  steer vec norms happy.safetensors\n"
                   "  steer vec norms mean-diff.safetensors pca-diff.safetensors",
        .min_pos = 1,
        .max_pos = 2,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, &n_pos);
    if (rc >= 0)
        return rc;
    steer_vecset *a = NULL, *b = NULL;
    if ((rc = load(pos[0], &a)) != 0)
        return rc;
    if (n_pos == 2 && (rc = load(pos[1], &b)) != 0) {
        steer_vecset_free(a);
        return rc;
    }
    if (!b) {
        printf("%-20s %s\n", "tensor", "norm");
        for (int i = 0; i < steer_vecset_count(a); i++) {
            const steer_vec *e = steer_vecset_at(a, i);
            char name[48];
            vec_name(e, name, sizeof name);
            printf("%-20s %.6f\n", name, steer_vec_norm(e->data, (int)vec_len(e)));
        }
    } else {
        /* The union of both files' tensors, in site/layer order. */
        steer_vecset *keys = NULL;
        if (steer_vecset_new(&keys) != STEER_OK) {
            rc = cli_lib_error();
        } else {
            float zero = 0.0f;
            for (int f = 0; f < 2; f++) {
                const steer_vecset *s = f ? b : a;
                for (int i = 0; i < steer_vecset_count(s); i++) {
                    const steer_vec *e = steer_vecset_at(s, i);
                    if (!steer_vecset_find(keys, e->site, e->layer))
                        steer_vecset_set(keys, e->site, e->layer, 0, 1, &zero);
                }
            }
            printf("%-20s %-12s %-12s %s\n", "tensor", "norm_a", "norm_b", "cosine");
            for (int i = 0; i < steer_vecset_count(keys); i++) {
                const steer_vec *k = steer_vecset_at(keys, i);
                const steer_vec *x = steer_vecset_find(a, k->site, k->layer), *y = steer_vecset_find(b, k->site, k->layer);
                char name[48], na[32] = "-", nb[32] = "-", cs[32] = "-";
                vec_name(k, name, sizeof name);
                if (x)
                    snprintf(na, sizeof na, "%.6f", steer_vec_norm(x->data, (int)vec_len(x)));
                if (y)
                    snprintf(nb, sizeof nb, "%.6f", steer_vec_norm(y->data, (int)vec_len(y)));
                if (x && y && x->width == y->width && x->n_rows == y->n_rows)
                    snprintf(cs, sizeof cs, "%.6f", steer_vec_cosine(x->data, y->data, (int)vec_len(x)));
                printf("%-20s %-12s %-12s %s\n", name, na, nb, cs);
            }
        }
        steer_vecset_free(keys);
    }
    steer_vecset_free(a);
    steer_vecset_free(b);
    return rc;
}

/* ---------------------------------------------------------------- arithmetic */

/* A number that cli_parse would take for an option ("-0.5"). */
static int looks_negative_number(const char *s)
{
    if (s[0] != '-' || !(s[1] == '.' || (s[1] >= '0' && s[1] <= '9')))
        return 0;
    char *end;
    strtod(s, &end);
    return *end == '\0';
}

static int parse_number(const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (*s == '\0' || *end != '\0' || errno || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int vec_scale(int argc, char **argv)
{
    /* A negative factor is taken as the positional ALPHA, not an option. */
    char **args = malloc(((size_t)argc + 1) * sizeof *args);
    if (!args)
        return cli_error("out of memory");
    const char *neg_alpha = NULL;
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && !neg_alpha && looks_negative_number(argv[i]))
            neg_alpha = argv[i];
        else
            args[n++] = argv[i];
    }
    args[n] = NULL;
    const char *pos[2] = {NULL, NULL}, *out = NULL;
    int n_pos = 0;
    const cli_opt opts[] = {{"-o", "--out", OPT_STR, &out, "FILE", "output vector file (required)"},
        CLI_ALIAS("--output", OPT_STR, &out)};
    const cli_spec spec = {
        .usage = "steer vec scale FILE ALPHA -o OUT",
        .description = "Writes ALPHA times every vector of FILE (negative ALPHA flips the direction).",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer vec scale happy.safetensors 4 -o happy4.safetensors\n"
                   "  steer vec scale happy.safetensors -1 -o sad.safetensors",
        .min_pos = neg_alpha ? 1 : 2,
        .max_pos = neg_alpha ? 1 : 2,
        .pos = pos,
    };
    int rc = cli_parse(&spec, n, args, &n_pos);
    free(args);
    if (rc >= 0)
        return rc;
    const char *alpha_s = neg_alpha ? neg_alpha : pos[1];
    float alpha;
    if (parse_number(alpha_s, &alpha))
        return cli_usage("ALPHA must be a number, got '%s'", alpha_s);
    if (!out)
        return cli_usage("missing -o OUT");
    steer_vecset *vs = NULL;
    if ((rc = load(pos[0], &vs)) != 0)
        return rc;
    steer_vecset_scale(vs, alpha);
    rc = save(vs, out, pos[0]);
    steer_vecset_free(vs);
    return rc;
}

/* add (sign +1) and sub (sign -1): A + sign·ALPHA·B over the union of tensors. */
static int vec_add_sub(int argc, char **argv, int sign)
{
    const char *pos[2] = {NULL, NULL}, *out = NULL;
    float alpha = 1.0f;
    const cli_opt opts[] = {
        {"-o", "--out", OPT_STR, &out, "FILE", "output vector file (required)"},
        CLI_ALIAS("--output", OPT_STR, &out),
        {NULL, "--alpha", OPT_FLOAT, &alpha, "X", "weight of B (default 1)"},
    };
    const cli_spec spec = {
        .usage = sign > 0 ? "steer vec add A B [--alpha X] -o OUT" : "steer vec sub A B [--alpha X] -o OUT",
        .description = sign > 0 ? "Writes A + X*B tensor by tensor; a tensor in only one file counts the other as "
                                  "zero.\nWidths must match. The metadata is A's."
                                : "Writes A - X*B tensor by tensor; a tensor in only one file counts the other as "
                                  "zero.\nWidths must match. The metadata is A's.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = sign > 0 ? "  steer vec add happy.safetensors calm.safetensors --alpha 0.5 -o both.safetensors"
                            : "  steer vec sub happy.safetensors sad.safetensors -o contrast.safetensors",
        .min_pos = 2,
        .max_pos = 2,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!out)
        return cli_usage("missing -o OUT");
    steer_vecset *a = NULL, *b = NULL;
    if ((rc = load(pos[0], &a)) != 0)
        return rc;
    if ((rc = load(pos[1], &b)) == 0) {
        if (steer_vecset_add(a, b, (float)sign * alpha) != STEER_OK) {
            rc = cli_error("%s %s %s: %s", pos[0], sign > 0 ? "+" : "-", pos[1], steer_last_error());
        } else {
            char inputs[8192];
            snprintf(inputs, sizeof inputs, "%s,%s", pos[0], pos[1]);
            rc = save(a, out, inputs);
        }
    }
    steer_vecset_free(a);
    steer_vecset_free(b);
    return rc;
}

static int vec_normalize(int argc, char **argv)
{
    const char *pos[1] = {NULL}, *out = NULL;
    const cli_opt opts[] = {{"-o", "--out", OPT_STR, &out, "FILE", "output vector file (required)"},
        CLI_ALIAS("--output", OPT_STR, &out)};
    const cli_spec spec = {
        .usage = "steer vec normalize FILE -o OUT",
        .description = "Writes every vector (every row of a per-position tensor) scaled to unit L2 norm.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer vec normalize happy.safetensors -o happy-unit.safetensors",
        .min_pos = 1,
        .max_pos = 1,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!out)
        return cli_usage("missing -o OUT");
    steer_vecset *vs = NULL;
    if ((rc = load(pos[0], &vs)) != 0)
        return rc;
    if (steer_vecset_normalize(vs) != STEER_OK)
        rc = cli_lib_error_at(pos[0]);
    else
        rc = save(vs, out, pos[0]);
    steer_vecset_free(vs);
    return rc;
}

/* Keeps --site / --layers of vs (either may be NULL). Errors if nothing is
 * left. */
static int select_vectors(steer_vecset *vs, const char *path, const char *site_arg, const char *layers_arg)
{
    char err[512];
    unsigned char site_mask[STEER_SITE_COUNT], *layer_mask = NULL;
    if (site_arg) {
        steer_site sites[STEER_SITE_COUNT];
        int n_sites = 0;
        if (cli_parse_sites(site_arg, sites, &n_sites, err, sizeof err))
            return cli_error("--site: %s", err);
        memset(site_mask, 0, sizeof site_mask);
        for (int i = 0; i < n_sites; i++)
            site_mask[sites[i]] = 1;
    }
    if (layers_arg) {
        /* without a model, negative layers count from the last layer the file holds */
        int n_file = 0, neg = layers_arg[0] == '-' || strstr(layers_arg, ",-") || strstr(layers_arg, "--");
        for (int i = 0; i < steer_vecset_count(vs); i++)
            if (steer_vecset_at(vs, i)->layer + 1 > n_file)
                n_file = steer_vecset_at(vs, i)->layer + 1;
        layer_mask = calloc(VEC_MAX_LAYERS, 1);
        if (!layer_mask)
            return cli_error("out of memory");
        if (cli_parse_layers(layers_arg, neg ? n_file : VEC_MAX_LAYERS, layer_mask, err, sizeof err)) {
            free(layer_mask);
            return cli_error("--layers: %s%s", err, neg ? " (the file's layers: negative layers count from its last)" : "");
        }
    }
    steer_vecset_keep(vs, site_arg ? site_mask : NULL, layer_mask, VEC_MAX_LAYERS);
    free(layer_mask);
    if (steer_vecset_count(vs) == 0)
        return cli_error("%s: no vector matches site %s, layers %s", path, site_arg ? site_arg : "(any)",
                         layers_arg ? layers_arg : "(any)");
    return 0;
}

static int vec_slice(int argc, char **argv)
{
    const char *pos[1] = {NULL}, *out = NULL, *site = NULL, *layers = NULL;
    const cli_opt opts[] = {
        {NULL, "--sites", OPT_STR, &site, "LIST", "keep these sites (comma-separated)"},
        CLI_ALIAS("--site", OPT_STR, &site),
        {NULL, "--layers", OPT_STR, &layers, "LIST", "keep these layers: 3 | 0,2,5-7 | -1 (the file's last)"},
        {"-o", "--out", OPT_STR, &out, "FILE", "output vector file (required)"},
        CLI_ALIAS("--output", OPT_STR, &out),
    };
    const cli_spec spec = {
        .usage = "steer vec slice FILE [--sites LIST] [--layers LIST] -o OUT",
        .description = "Writes the vectors of FILE at the chosen sites and layers (metadata kept).",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer vec slice all.safetensors --sites resid_post --layers 1-4 -o mid.safetensors",
        .min_pos = 1,
        .max_pos = 1,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!out)
        return cli_usage("missing -o OUT");
    if (!site && !layers)
        return cli_usage("give --sites and/or --layers");
    steer_vecset *vs = NULL;
    if ((rc = load(pos[0], &vs)) != 0)
        return rc;
    rc = select_vectors(vs, pos[0], site, layers);
    if (!rc)
        rc = save(vs, out, pos[0]);
    steer_vecset_free(vs);
    return rc;
}

/* ---------------------------------------------------------------- llama.cpp */

static int vec_export(int argc, char **argv)
{
    const char *pos[1] = {NULL}, *out = NULL, *hint = NULL, *layers = NULL, *model = NULL;
    int llamacpp = 0;
    const cli_opt opts[] = {
        {NULL, "--llamacpp", OPT_FLAG, &llamacpp, NULL, "write a llama.cpp control vector (GGUF) (required)"},
        {NULL, "--layers", OPT_STR, &layers, "LIST", "export only these layers (e.g. 1-15)"},
        {"-m", "--model", OPT_STR, &model, "MODEL", "check the vectors against MODEL; its architecture is the hint"},
        {NULL, "--model-hint", OPT_STR, &hint, "NAME", "controlvector.model_hint (default: the file's model_hint)"},
        {"-o", "--out", OPT_STR, &out, "FILE", "output .gguf (required)"},
        CLI_ALIAS("--output", OPT_STR, &out),
    };
    const cli_spec spec = {
        .usage = "steer vec export --llamacpp FILE [--layers LIST] [-m MODEL] [--model-hint NAME] -o OUT.gguf",
        .description =
            "Writes the resid_post vectors of FILE as a llama.cpp control vector: resid_post.L\n"
            "becomes direction.L (F32, bit for bit), which llama.cpp adds to the output of\n"
            "block L; general.architecture = controlvector, controlvector.model_hint,\n"
            "controlvector.layer_count = number of directions. Layer 0 cannot be expressed\n"
            "(llama.cpp rejects direction.0): leave it out with --layers. Load it with\n"
            "  llama-cli ... --control-vector OUT.gguf   or   steer generate --control-vector OUT.gguf",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer vec export --llamacpp happy.safetensors --layers 1-4 -o happy.gguf",
        .min_pos = 1,
        .max_pos = 1,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!llamacpp)
        return cli_usage("say which format to export: --llamacpp");
    if (!out)
        return cli_usage("missing -o OUT");
    steer_vecset *vs = NULL;
    steer_model *m = NULL;
    if ((rc = load(pos[0], &vs)) != 0)
        return rc;
    if (layers)
        rc = select_vectors(vs, pos[0], NULL, layers);
    if (!rc && model) {
        rc = cli_load_model(model, NULL, &m);
        if (!rc && steer_vecset_check_model(vs, m, pos[0]) != STEER_OK)
            rc = cli_lib_error();
        if (!rc && !hint)
            hint = steer_model_get_config(m)->arch_name;
    }
    if (!rc && steer_vecset_save_llamacpp(vs, out, hint) != STEER_OK)
        rc = cli_lib_error();
    if (m)
        steer_model_free(m);
    steer_vecset_free(vs);
    return rc;
}

static int vec_import(int argc, char **argv)
{
    const char *pos[1] = {NULL}, *out = NULL, *model = NULL;
    const cli_opt opts[] = {
        {"-m", "--model", OPT_STR, &model, "MODEL", "also check layers and n_embd against MODEL"},
        {"-o", "--out", OPT_STR, &out, "FILE", "output vector file .safetensors (required)"},
        CLI_ALIAS("--output", OPT_STR, &out),
    };
    const cli_spec spec = {
        .usage = "steer vec import FILE.gguf [-m MODEL] -o OUT.safetensors",
        .description = "Reads a llama.cpp or repeng control vector strictly (tensors direction.N, N >= 1,\n"
                       "F32, 1-D, one width) and writes it as a steer vector file: direction.N becomes\n"
                       "resid_post.N, bit for bit (llama.cpp adds direction.N to the output of block N).",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer vec import happy.gguf -m model.gguf -o happy.safetensors",
        .min_pos = 1,
        .max_pos = 1,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!out)
        return cli_usage("missing -o OUT");
    steer_model *m = NULL;
    steer_vecset *vs = NULL;
    int n_layer = 0, d_model = 0;
    if (model) {
        if ((rc = cli_load_model(model, NULL, &m)) != 0)
            return rc;
        n_layer = steer_model_get_config(m)->n_layer;
        d_model = steer_model_get_config(m)->d_model;
    }
    if (steer_vecset_load_llamacpp(pos[0], n_layer, d_model, &vs) != STEER_OK)
        rc = cli_lib_error();
    else
        rc = save(vs, out, pos[0]);
    steer_vecset_free(vs);
    if (m)
        steer_model_free(m);
    return rc;
}

/* ---------------------------------------------------------------- dispatch */

static int vec_add(int argc, char **argv) { return vec_add_sub(argc, argv, 1); }
static int vec_sub_cmd(int argc, char **argv) { return vec_add_sub(argc, argv, -1); }

static const cli_sub subs[] = {
    {"info", "vec info", vec_info, "format, metadata, tensors and norms of a vector file"},
    {"norms", "vec norms", vec_norms, "L2 norm per tensor; with two files, norms and cosines side by side"},
    {"scale", "vec scale", vec_scale, "multiply every vector by a factor"},
    {"add", "vec add", vec_add, "A + B (tensor by tensor)"},
    {"sub", "vec sub", vec_sub_cmd, "A - B (tensor by tensor)"},
    {"normalize", "vec normalize", vec_normalize, "scale every vector to unit length"},
    {"slice", "vec slice", vec_slice, "keep some sites and layers"},
    {"export", "vec export", vec_export, "write a llama.cpp control vector (--llamacpp)"},
    {"import", "vec import", vec_import, "read a llama.cpp/repeng control vector into a vector file"},
};

static void vec_overview(FILE *f)
{
    fprintf(f, "usage: steer vec SUBCOMMAND [options]     (steer vec SUBCOMMAND --help for details)\n\n"
               "Inspects and combines steering vector files (safetensors <site>.<layer> [d]) and\n"
               "llama.cpp control vectors (GGUF direction.L, read as resid_post.L).\n\nsubcommands:\n");
    cli_list_subs(f, subs, sizeof subs / sizeof subs[0]);
    fprintf(f, "\nexample:\n  steer vec norms happy.safetensors\n"
               "  steer vec export --llamacpp happy.safetensors --layers 1-4 -o happy.gguf\n");
}

int cmd_vec(int argc, char **argv)
{
    return cli_dispatch(subs, sizeof subs / sizeof subs[0], vec_overview, argc, argv);
}

/* cli_common.c — option parsing, errors and helpers shared by the commands. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *cli_cmd = "";
const char *cli_cmdline = "";

/* ---------------------------------------------------------------- errors */

static void print_prefix(void)
{
    if (cli_cmd && *cli_cmd)
        fprintf(stderr, "steer %s: ", cli_cmd);
    else
        fputs("steer: ", stderr);
}

/* Prints msg on one line: embedded newlines become spaces. */
static void print_one_line(const char *msg)
{
    for (const char *p = msg; *p; p++)
        fputc(*p == '\n' || *p == '\r' ? ' ' : *p, stderr);
}

int cli_error(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    print_prefix();
    print_one_line(buf);
    fputc('\n', stderr);
    return 1;
}

int cli_lib_error(void) { return cli_error("%s", steer_last_error()); }

int cli_lib_error_at(const char *prefix) { return cli_error("%s: %s", prefix, steer_last_error()); }

int cli_usage(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    print_prefix();
    print_one_line(buf);
    if (cli_cmd && *cli_cmd)
        fprintf(stderr, " (see 'steer %s --help')\n", cli_cmd);
    else
        fputs(" (see 'steer --help')\n", stderr);
    return 2;
}

/* ---------------------------------------------------------------- numbers */

/* 0 on success; -1 not an integer; -2 an integer out of int's range. */
static int parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0') return -1;
    if (errno == ERANGE || v < INT_MIN || v > INT_MAX) return -2;
    if (errno) return -1;
    *out = (int)v;
    return 0;
}

static int parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (*s == '\0' || *end != '\0' || errno || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* ---------------------------------------------------------------- options */

/* The options every command takes: process-wide settings of the library,
 * applied by cli_parse once the command line is read. */
static const char *common_precision, *common_cpu;
static const cli_opt common_opts[] = {
    {NULL, "--precision", OPT_STR, &common_precision, "fast|exact",
     "quantized weights: int8 activations as llama.cpp (fast, default) or exact dequantized f32"},
    {NULL, "--cpu", OPT_STR, &common_cpu, "PATH",
     "kernel path: scalar, avx2, avx512, avx512bf16 (default: the best this CPU has)"},
};
#define N_COMMON ((int)(sizeof common_opts / sizeof common_opts[0]))

static void print_opts(const cli_opt *opts, int n)
{
    for (int i = 0; i < n; i++) {
        const cli_opt *o = &opts[i];
        if (!o->help) continue; /* an alias kept for old command lines (CLI_ALIAS) */
        char left[96];
        snprintf(left, sizeof left, "%s%s%s%s%s", o->short_name ? o->short_name : "", o->short_name ? ", " : "",
                 o->long_name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        if (strlen(left) > 30)
            printf("  %s\n  %-30s %s\n", left, "", o->help);
        else
            printf("  %-30s %s\n", left, o->help);
    }
}

void cli_print_help(const cli_spec *spec)
{
    printf("usage: %s\n", spec->usage);
    if (spec->description)
        printf("\n%s\n", spec->description);
    if (spec->n_opts > 0) {
        printf("\noptions:\n");
        print_opts(spec->opts, spec->n_opts);
        printf("  %-30s %s\n", "-h, --help", "show this help");
    }
    printf("\ncommon options (every command):\n");
    print_opts(common_opts, N_COMMON);
    if (spec->example)
        printf("\nexample:\n%s\n", spec->example);
}

static const cli_opt *find_in(const cli_opt *opts, int n, const char *name, size_t len)
{
    for (int i = 0; i < n; i++) {
        const cli_opt *o = &opts[i];
        if (o->short_name && strlen(o->short_name) == len && strncmp(o->short_name, name, len) == 0)
            return o;
        if (strlen(o->long_name) == len && strncmp(o->long_name, name, len) == 0)
            return o;
    }
    return NULL;
}

/* The command's own option, else a common one. */
static const cli_opt *find_opt(const cli_spec *spec, const char *name, size_t len)
{
    const cli_opt *o = find_in(spec->opts, spec->n_opts, name, len);
    return o ? o : find_in(common_opts, N_COMMON, name, len);
}

/* Applies --precision and --cpu if given. -1, or a usage error's status. */
static int apply_common(void)
{
    if (common_precision) {
        steer_precision p;
        if (steer_precision_parse(common_precision, &p) != STEER_OK)
            return cli_usage("--precision: '%s' is not fast or exact", common_precision);
        steer_set_precision(p);
    }
    if (common_cpu && steer_cpu_set_path(common_cpu) != STEER_OK) return cli_usage("--cpu: %s", steer_last_error());
    return -1;
}

static int set_opt(const cli_opt *o, const char *v)
{
    switch (o->kind) {
    case OPT_FLAG:
        *(int *)o->dest = 1;
        return -1;
    case OPT_STR:
        *(const char **)o->dest = v;
        return -1;
    case OPT_INT: {
        int e = parse_int(v, (int *)o->dest);
        if (e == -2) return cli_usage("%s: %s is out of range (at most %d)", o->long_name, v, INT_MAX);
        if (e) return cli_usage("%s expects an integer, got '%s'", o->long_name, v);
        return -1;
    }
    case OPT_FLOAT:
        if (parse_float(v, (float *)o->dest))
            return cli_usage("%s expects a number, got '%s'", o->long_name, v);
        return -1;
    case OPT_U64:
        if (parse_u64(v, (uint64_t *)o->dest))
            return cli_usage("%s expects a non-negative integer, got '%s'", o->long_name, v);
        return -1;
    case OPT_LIST: {
        cli_strlist *l = (cli_strlist *)o->dest;
        if (l->n >= CLI_LIST_MAX)
            return cli_usage("%s given more than %d times", o->long_name, CLI_LIST_MAX);
        l->items[l->n++] = v;
        return -1;
    }
    }
    return -1;
}

/* Edit distance (insertions, deletions, substitutions) between a[0..n) and
 * b, capped: strings longer than 63 bytes count as far apart. */
static int edit_distance(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b);
    if (n > 63 || m > 63) return 99;
    int row[64];
    for (size_t j = 0; j <= m; j++) row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[m];
}

/* The option name nearest to a[0..len) (edit distance at most 2, or the
 * only option it is a prefix of), or NULL. */
static const char *nearest_opt(const cli_spec *spec, const char *a, size_t len)
{
    const char *best = NULL, *prefix_of = NULL;
    size_t body = len - (len > 1 && a[1] == '-' ? 2 : 1); /* letters after the dashes */
    int bd = body <= 3 ? 2 : 3, n_prefix = 0; /* short names: one edit at most */
    for (int i = 0; i < spec->n_opts; i++) {
        const char *names[2] = {spec->opts[i].long_name, spec->opts[i].short_name};
        for (int k = 0; k < 2; k++) {
            if (!names[k] || (k == 0) != (len > 1 && a[1] == '-')) continue; /* --long vs --long, -s vs -s */
            int d = edit_distance(a, len, names[k]);
            if (d < bd) bd = d, best = names[k];
            if (k == 0 && len > 2 && strncmp(names[k], a, len) == 0) n_prefix++, prefix_of = names[k];
        }
    }
    if (!best && n_prefix == 1) best = prefix_of;
    return best;
}

int cli_parse(const cli_spec *spec, int argc, char **argv, int *n_pos)
{
    int np = 0, only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            cli_print_help(spec);
            return 0;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            const cli_opt *o = find_opt(spec, a, len);
            if (!o) {
                const char *near = nearest_opt(spec, a, len);
                if (near) return cli_usage("unknown option '%.*s' (did you mean %s?)", (int)len, a, near);
                return cli_usage("unknown option '%.*s'", (int)len, a);
            }
            const char *v = NULL;
            if (o->kind == OPT_FLAG) {
                if (eq)
                    return cli_usage("option %s takes no value", o->long_name);
            } else if (eq) {
                v = eq + 1;
            } else {
                if (i + 1 >= argc)
                    return cli_usage("option %s needs a value (%s)", o->long_name, o->metavar ? o->metavar : "");
                v = argv[++i];
            }
            int rc = set_opt(o, v);
            if (rc >= 0)
                return rc;
            continue;
        }
        if (np >= spec->max_pos)
            return cli_usage("unexpected argument '%s'", a);
        spec->pos[np++] = a;
    }
    if (np < spec->min_pos)
        return cli_usage("missing argument (usage: %s)", spec->usage);
    if (n_pos)
        *n_pos = np;
    return apply_common();
}

/* ---------------------------------------------------------------- lists */

/* Reads a decimal number of at most 9 digits at *p. */
static int read_uint(const char **p, int *out)
{
    const char *s = *p;
    int v = 0, nd = 0;
    while (*s >= '0' && *s <= '9') {
        if (++nd > 9)
            return -1;
        v = v * 10 + (*s - '0');
        s++;
    }
    if (nd == 0)
        return -1;
    *p = s;
    *out = v;
    return 0;
}

/* A layer number at *p: digits, or '-' and digits counting from the end
 * (-1 = the last layer). */
static int read_layer(const char **p, int *out)
{
    int neg = **p == '-';
    const char *q = *p + neg;
    int v;
    if (read_uint(&q, &v)) return -1;
    if (neg && v == 0) return -1;
    *p = q;
    *out = neg ? -v : v;
    return 0;
}

int cli_parse_layers(const char *spec, int n_layer, unsigned char *mask, char *err, size_t err_size)
{
    memset(mask, 0, (size_t)n_layer);
    if (strcmp(spec, "all") == 0) {
        memset(mask, 1, (size_t)n_layer);
        return 0;
    }
    const char *p = spec;
    for (;;) {
        int a, b;
        const char *item = p;
        if (read_layer(&p, &a))
            goto bad;
        b = a;
        if (*p == '-') {
            p++;
            if (read_layer(&p, &b))
                goto bad;
        }
        if (*p != ',' && *p != '\0')
            goto bad;
        int ra = a < 0 ? n_layer + a : a, rb = b < 0 ? n_layer + b : b;
        if (ra < 0 || ra >= n_layer || rb < 0 || rb >= n_layer) {
            int v = ra < 0 || ra >= n_layer ? a : b;
            snprintf(err, err_size, "layer %d out of range (model has %d layers)", v, n_layer);
            return -1;
        }
        if (rb < ra) {
            snprintf(err, err_size, "layer range '%.*s' runs backwards (%d to %d)", (int)(p - item), item, ra, rb);
            return -1;
        }
        for (int l = ra; l <= rb; l++)
            mask[l] = 1;
        if (*p == '\0')
            return 0;
        p++;
    }
bad:
    snprintf(err, err_size, "bad layer list '%s' (expected all, 3, -1 (the last), 0,2,5-7 or 2--1)", spec);
    return -1;
}

void cli_unknown_site_msg(const char *name, char *err, size_t err_size)
{
    int off = snprintf(err, err_size, "unknown site '%s' (TransformerLens names such as hook_resid_post are also "
                                      "accepted; sites:", name);
    for (int s = 0; s < STEER_SITE_COUNT && off > 0 && (size_t)off < err_size; s++)
        off += snprintf(err + off, err_size - (size_t)off, "%s %s", s ? "," : "", steer_site_name((steer_site)s));
    if (off > 0 && (size_t)off < err_size)
        snprintf(err + off, err_size - (size_t)off, ")");
}

int cli_parse_sites(const char *spec, steer_site *sites, int *n_sites, char *err, size_t err_size)
{
    int n = 0;
    if (strcmp(spec, "all") == 0) {
        for (int s = 0; s < STEER_SITE_COUNT; s++)
            sites[n++] = (steer_site)s;
        *n_sites = n;
        return 0;
    }
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[64];
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, p, len);
        name[len] = '\0';
        steer_site s;
        int hl = -1;
        if (steer_site_parse(name, &s) != STEER_OK) {
            if (steer_hook_name_parse(name, &s, &hl) == STEER_OK && hl >= 0)
                snprintf(err, err_size, "'%s' names a layer: give --sites %s --layers %d", name,
                         strchr(name + 7, '.') + 1, hl);
            else
                cli_unknown_site_msg(name, err, err_size);
            return -1;
        }
        int dup = 0;
        for (int i = 0; i < n; i++)
            dup |= sites[i] == s;
        if (!dup)
            sites[n++] = s;
        if (!comma)
            break;
        p = comma + 1;
    }
    *n_sites = n;
    return 0;
}

/* ---------------------------------------------------------------- model, prompts */

int cli_load_model(const char *path, const char *tokenizer_path, steer_model **out)
{
    steer_model_params mp = steer_model_default_params();
    mp.tokenizer_path = tokenizer_path;
    if (steer_model_load(path, &mp, out) != STEER_OK)
        return cli_lib_error();
    return 0;
}

int cli_new_ctx(steer_model *m, int n_ctx, int n_threads, steer_ctx **out)
{
    if (n_ctx < 0)
        return cli_usage("--ctx must be >= 0, got %d", n_ctx);
    const int trained = steer_model_get_config(m)->n_ctx_train;
    if (n_ctx > trained)
        fprintf(stderr, "steer %s: warning: --ctx %d is beyond the %d positions the model was trained with; "
                        "positions past %d are extrapolated\n", cli_cmd ? cli_cmd : "", n_ctx, trained, trained);
    if (n_threads < 0)
        return cli_usage("--threads must be >= 0, got %d", n_threads);
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    if (steer_ctx_new(m, &cp, out) != STEER_OK)
        return cli_lib_error();
    return 0;
}

static int parse_ids(const steer_model *m, const char *ids, int **out, int *n)
{
    size_t cap = strlen(ids) / 2 + 1;
    int *toks = malloc(cap * sizeof *toks);
    if (!toks)
        return cli_error("out of memory");
    int count = 0, n_vocab = steer_vocab_size(m);
    const char *p = ids;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n')
            p++;
        if (*p == '\0')
            break;
        int v;
        const char *start = p;
        if (read_uint(&p, &v) || (*p && *p != ' ' && *p != ',' && *p != '\t' && *p != '\n')) {
            free(toks);
            return cli_usage("--ids: bad token id near '%.16s'", start);
        }
        if (v >= n_vocab) {
            free(toks);
            return cli_error("--ids: token id %d out of range (vocabulary has %d tokens)", v, n_vocab);
        }
        toks[count++] = v;
    }
    if (count == 0) {
        free(toks);
        return cli_usage("--ids holds no token ids");
    }
    *out = toks;
    *n = count;
    return 0;
}

int cli_prompt_tokens(const steer_model *m, const char *text, const char *ids, int chat, int **out, int *n)
{
    if ((text == NULL) == (ids == NULL))
        return cli_usage("give exactly one of --prompt and --ids");
    if (ids) {
        if (chat)
            return cli_usage("--chat needs --prompt text, not --ids");
        return parse_ids(m, ids, out, n);
    }
    char *formatted = NULL;
    int flags = STEER_TOK_ADD_BOS;
    if (chat) { /* the prompt as one user turn; the formatted text spells BOS itself */
        steer_chat_msg msg = {"user", text};
        if (steer_chat_format(m, &msg, 1, 1, &formatted) != STEER_OK)
            return cli_lib_error_at("--chat");
        text = formatted;
        flags = STEER_TOK_PARSE_SPECIAL;
    }
    int cap = (int)strlen(text) + 8, rc;
    for (;;) {
        int *toks = malloc((size_t)cap * sizeof *toks);
        if (!toks) {
            rc = cli_error("out of memory");
            break;
        }
        int count = 0;
        int lrc = steer_tokenize_ex(m, text, flags, toks, cap, &count);
        if (lrc == STEER_OK) {
            *out = toks;
            *n = count;
            rc = 0;
            break;
        }
        free(toks);
        if (lrc == STEER_EARG && count > cap) {
            cap = count;
            continue;
        }
        rc = cli_lib_error_at("prompt");
        break;
    }
    free(formatted);
    return rc;
}

int cli_check_context(int n, int n_ctx)
{
    if (n > n_ctx)
        return cli_error("prompt is %d tokens but the context holds %d positions (see --ctx)", n, n_ctx);
    return 0;
}

/* ---------------------------------------------------------------- subcommands */

void cli_list_subs(FILE *f, const cli_sub *subs, size_t n)
{
    for (size_t i = 0; i < n; i++) fprintf(f, "  %-10s %s\n", subs[i].name, subs[i].summary);
}

int cli_dispatch(const cli_sub *subs, size_t n, void (*overview)(FILE *f), int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        overview(stdout);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], subs[i].name) == 0) {
            cli_cmd = subs[i].cmd;
            return subs[i].fn(argc - 1, argv + 1);
        }
    }
    char names[512] = "";
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", subs[i].name);
    }
    return cli_usage("unknown subcommand '%s' (%s)", argv[1], names);
}

/* ---------------------------------------------------------------- misc */

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int needs_quotes(const char *s)
{
    if (*s == '\0')
        return 1;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("-_./=:,+@%", *s)))
            return 1;
    return 0;
}

char *cli_join_args(int argc, char **argv)
{
    size_t len = sizeof "steer";
    for (int i = 0; i < argc; i++)
        len += 4 * strlen(argv[i]) + 3;
    char *out = malloc(len), *p = out;
    if (!out)
        return NULL;
    p += sprintf(p, "steer");
    for (int i = 0; i < argc; i++) {
        *p++ = ' ';
        if (!needs_quotes(argv[i])) {
            p += sprintf(p, "%s", argv[i]);
            continue;
        }
        *p++ = '\'';
        for (const char *s = argv[i]; *s; s++) {
            if (*s == '\'')
                p += sprintf(p, "'\\''");
            else
                *p++ = *s;
        }
        *p++ = '\'';
    }
    *p = '\0';
    return out;
}

int cli_parse_floats(const char *opt, const char *s, float *out, int max, int *n, char *err, size_t err_size)
{
    *n = 0;
    const char *p = s;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        char buf[64];
        if (len == 0 || len >= sizeof buf) {
            snprintf(err, err_size, "%s: empty or overlong value in '%s'", opt, s);
            return -1;
        }
        memcpy(buf, p, len);
        buf[len] = 0;
        char *end;
        errno = 0;
        double v = strtod(buf, &end);
        if (*end || errno || !isfinite(v) || !isfinite((float)v)) {
            snprintf(err, err_size, "%s: '%s' is not a number", opt, buf);
            return -1;
        }
        if (*n >= max) {
            snprintf(err, err_size, "%s: more than %d values", opt, max);
            return -1;
        }
        out[(*n)++] = (float)v;
        if (!c) return 0;
        p = c + 1;
    }
}

void cli_file_label(const char *path, char *out, size_t n)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/') buf[--len] = 0;
    const char *b = strrchr(buf, '/');
    b = b ? b + 1 : buf;
    size_t bl = strlen(b) < n - 1 ? strlen(b) : n - 1;
    memcpy(out, b, bl);
    out[bl] = 0;
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

void cli_unique_label(char (*labels)[128], int i)
{
    char base[128];
    memcpy(base, labels[i], sizeof base);
    for (int dup = 1;;) {
        int clash = 0;
        for (int k = 0; k < i; k++) clash |= strcmp(labels[k], labels[i]) == 0;
        if (!clash) return;
        snprintf(labels[i], 128, "%.100s#%d", base, ++dup);
    }
}

void cli_die_of_signal(int sig)
{
    steer_remove_temporaries();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* cmd_data.c — `steer data SUBCOMMAND`: datasets and templates (SPEC §6).
 *   listops  generate a ListOps JSONL file (seeded)
 *   show     print rendered prompts and completions (check a template)
 *   stats    counts, gold-answer distribution, lengths
 *   export   write rendered prompt/completion JSONL
 * The loading, templates, few-shot contexts and the generator are the
 * library's (steer_data_*, steer_listops_*); this file parses options and
 * prints. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC_HELP                                                                                  \
    "SPEC is FORMAT:FILE with FORMAT one of\n"                                                     \
    "  winogrande  rows {qID, sentence (one \"_\"), option1, option2, answer \"1\"|\"2\"}\n"       \
    "  listops     rows {\"expr\": \"[MAX 2 9 ]\", \"answer\": 9}\n"                               \
    "  jsonl       rows {\"prompt\": ..., \"completion\": ...} (a FILE without a prefix)\n"        \
    "Templates use {name} placeholders; \\n, \\t and \\\\ in option values are escapes.\n"           \
    "Winogrande prompt (default):\n"                                                               \
    "  {sentence}\\nQuestion: Which option fills the blank?\\n(A) {option1}\\n(B) {option2}\\n"       \
    "Answer: The correct answer is\n"                                                              \
    "  completion \" ({letter}) {option}.\" (also {sentence} {option1} {option2} {answer})\n"     \
    "ListOps prompt \"Solve: {expr}\\nAnswer:\", completion \" {answer}\". For jsonl, a template\n" \
    "renders the row's own fields ({question} = field \"question\")."

/* A copy of s with \n, \t, \r and \\ replaced by the characters they name
 * (NULL for NULL or when out of memory). */
static char *unescape(const char *s)
{
    if (!s)
        return NULL;
    char *out = malloc(strlen(s) + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && (p[1] == 'n' || p[1] == 't' || p[1] == 'r' || p[1] == '\\')) {
            p++;
            *o++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : '\\';
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/* Template options shared by show, stats and export. */
typedef struct {
    const char *prompt, *completion; /* as given                             */
    char *prompt_u, *completion_u;   /* unescaped (owned)                    */
} tmpl_opts;

static int tmpl_params(tmpl_opts *t, steer_data_params *dp)
{
    t->prompt_u = unescape(t->prompt);
    t->completion_u = unescape(t->completion);
    if ((t->prompt && !t->prompt_u) || (t->completion && !t->completion_u))
        return cli_error("out of memory");
    dp->prompt_template = t->prompt_u;
    dp->completion_template = t->completion_u;
    return 0;
}

static void tmpl_free(tmpl_opts *t)
{
    free(t->prompt_u);
    free(t->completion_u);
}

static int load(const char *spec, const steer_data_params *dp, steer_dataset **out)
{
    if (steer_data_load(spec, dp, out) != STEER_OK)
        return cli_lib_error();
    return 0;
}

/* "B", "7", "1" or "-" for an item's gold answer. */
static void gold_str(const steer_dataset *d, const steer_data_item *it, char *buf, size_t n)
{
    if (it->label < 0)
        snprintf(buf, n, "-");
    else if (steer_data_get_format(d) == STEER_DATA_WINOGRANDE)
        snprintf(buf, n, "%c", 'A' + it->label);
    else
        snprintf(buf, n, "%d", it->label);
}

/* ---------------------------------------------------------------- listops */

static int data_listops(int argc, char **argv)
{
    int n = 1000;
    steer_listops_params lp = steer_listops_default_params();
    const char *out = NULL;
    const cli_opt opts[] = {
        {"-o", "--out", OPT_STR, &out, "FILE", "output JSONL (required)"},
        CLI_ALIAS("--output", OPT_STR, &out),
        {"-n", "--n", OPT_INT, &n, "N", "number of expressions (default 1000)"},
        {NULL, "--seed", OPT_U64, &lp.seed, "S", "seed (default 0); sample i depends only on the seed and i"},
        {NULL, "--max-depth", OPT_INT, &lp.max_depth, "D", "deepest nesting, 1..64 (default 3)"},
        {NULL, "--max-args", OPT_INT, &lp.max_args, "A", "arguments per operator: 2..A, A <= 64 (default 5)"},
        {NULL, "--p-nest", OPT_FLOAT, &lp.p_nest, "P", "chance that an argument is itself an operator (default 0.25)"},
    };
    const cli_spec spec = {
        .usage = "steer data listops [--n N] [--seed S] [--max-depth D] [--max-args A] -o FILE",
        .description =
            "Generates ListOps expressions (Nangia & Bowman 2018) and writes them as JSONL,\n"
            "one {\"expr\": \"[MAX 2 9 [MIN 4 7 ] 0 ]\", \"answer\": 9} per line, atomically.\n"
            "Operators: MAX, MIN, MED (median; an even count takes the lower median), SM (sum\n"
            "modulo 10), over digits 0-9. Each expression's depth is uniform in 1..D (exactly\n"
            "that deep); each operator takes 2..A arguments. The same options give the same\n"
            "file; --n 10 gives the first 10 lines of --n 1000. Read it back as listops:FILE.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer data listops --n 2000 --seed 1 --max-depth 4 --max-args 5 -o listops-train.jsonl\n"
                   "  steer data show listops:listops-train.jsonl --n 2",
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!out)
        return cli_usage("missing -o FILE");
    if (n < 1)
        return cli_usage("--n must be >= 1, got %d", n);
    if (lp.max_depth < 1 || lp.max_depth > 64)
        return cli_usage("--max-depth must be in 1..64, got %d", lp.max_depth);
    if (lp.max_args < 2 || lp.max_args > 64)
        return cli_usage("--max-args must be in 2..64, got %d", lp.max_args);
    if (!(lp.p_nest >= 0.0f && lp.p_nest <= 1.0f))
        return cli_usage("--p-nest must be in [0, 1], got %g", (double)lp.p_nest);
    if (steer_listops_write(out, n, &lp) != STEER_OK)
        return cli_lib_error();
    printf("wrote %s (%d expressions, max depth %d, max args %d, seed %llu)\n", out, n, lp.max_depth, lp.max_args,
           (unsigned long long)lp.seed);
    return 0;
}

/* ---------------------------------------------------------------- show */

static int data_show(int argc, char **argv)
{
    const char *pos[1] = {NULL};
    int n = 3, start = 0, shuffle = 0, k = 0, show_choices = 0;
    uint64_t seed = 0;
    const char *sep = NULL;
    tmpl_opts t = {0};
    const cli_opt opts[] = {
        {"-n", "--n", OPT_INT, &n, "K", "items to print (default 3)"},
        {NULL, "--start", OPT_INT, &start, "I", "skip the first I items (default 0)"},
        {NULL, "--shuffle", OPT_FLAG, &shuffle, NULL, "shuffle the items by --seed first"},
        {NULL, "--seed", OPT_U64, &seed, "S", "seed for --shuffle and --fewshot (default 0)"},
        {NULL, "--fewshot", OPT_INT, &k, "K", "print K demonstrations (with answers) before each prompt"},
        {NULL, "--separator", OPT_STR, &sep, "TEXT", "after each demonstration (default \\n\\n)"},
        {NULL, "--choices", OPT_FLAG, &show_choices, NULL, "also print every answer's continuation"},
        {NULL, "--template", OPT_STR, &t.prompt, "TEXT", "prompt template (default: the format's)"},
        {NULL, "--completion-template", OPT_STR, &t.completion, "TEXT", "completion template"},
    };
    const cli_spec spec = {
        .usage = "steer data show SPEC [--n K] [--fewshot K] [--template TEXT]",
        .description =
            "Prints items as the library renders them, to check a template:\n"
            "  === item I (id ID, line L, gold G)\n"
            "  --- prompt            the prompt text, as is\n"
            "  --- completion        the gold continuation, as is: it follows the prompt's\n"
            "                        last character directly (mind its leading space)\n"
            "With --fewshot K a '--- context' block (the demonstrations, chosen by --seed\n"
            "from the same file, never the item itself) comes first; the model would read\n"
            "context + prompt.\n\n" SPEC_HELP,
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer data show winogrande:tests/data/winogrande/dev.jsonl --n 1\n"
                   "  steer data show winogrande:dev.jsonl --fewshot 3 --seed 7 --n 1\n"
                   "  steer data show winogrande:dev.jsonl --template '{sentence}\\nAnswer:'",
        .min_pos = 1,
        .max_pos = 1,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (n < 1)
        return cli_usage("--n must be >= 1, got %d", n);
    if (start < 0)
        return cli_usage("--start must be >= 0, got %d", start);
    if (k < 0)
        return cli_usage("--fewshot must be >= 0, got %d", k);
    steer_data_params dp = steer_data_default_params();
    if ((rc = tmpl_params(&t, &dp)) != 0) {
        tmpl_free(&t);
        return rc;
    }
    if (!shuffle && k == 0)
        dp.n_max = start + n; /* read only what is shown */
    char *sep_u = unescape(sep);
    steer_dataset *d = NULL;
    int *order = NULL;
    int *chosen = k > 0 ? malloc((size_t)k * sizeof *chosen) : NULL;
    if ((sep && !sep_u) || (k > 0 && !chosen)) {
        rc = cli_error("out of memory");
        goto done;
    }
    if ((rc = load(pos[0], &dp, &d)) != 0)
        goto done;
    /* The few-shot pool keeps the file's order; only the shown items are shuffled. */
    int total = steer_data_count(d);
    order = malloc((size_t)total * sizeof *order);
    if (!order) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (shuffle)
        steer_data_permutation(total, seed, order);
    else
        for (int i = 0; i < total; i++)
            order[i] = i;
    if (start >= total) {
        rc = cli_error("--start %d is past the last item (%s has %d)", start, pos[0], total);
        goto done;
    }
    steer_fewshot_params fp = steer_fewshot_default_params();
    fp.k = k;
    fp.seed = seed;
    fp.separator = sep_u;
    for (int j = start; j < total && j < start + n; j++) {
        const steer_data_item *it = steer_data_at(d, order[j]);
        char gold[16];
        gold_str(d, it, gold, sizeof gold);
        if (it->line > 0)
            printf("=== item %d (id %s, line %d, gold %s)\n", order[j] + 1, it->id, it->line, gold);
        else
            printf("=== item %d (id %s, gold %s)\n", order[j] + 1, it->id, gold);
        if (k > 0) {
            char *ctx = NULL;
            if (steer_data_fewshot(d, it, &fp, &ctx, chosen) != STEER_OK) {
                rc = cli_lib_error();
                goto done;
            }
            printf("--- context (%d demonstrations: items", k);
            for (int i = 0; i < k; i++)
                printf("%s %d", i ? "," : "", chosen[i] + 1);
            printf(")\n%s", ctx);
            if (ctx[0] && ctx[strlen(ctx) - 1] != '\n')
                printf("\n");
            free(ctx);
        }
        printf("--- prompt\n%s\n", it->prompt);
        printf("--- completion\n%s\n", it->completion ? it->completion : "(none: no gold answer)");
        if (show_choices)
            for (int c = 0; c < it->n_choices; c++)
                printf("--- choice %d%s\n%s\n", c, c == it->label ? " (gold)" : "", it->choices[c]);
    }
    rc = 0;
done:
    free(order);
    free(chosen);
    free(sep_u);
    steer_data_free(d);
    tmpl_free(&t);
    return rc;
}

/* ---------------------------------------------------------------- stats */

typedef struct {
    double sum;
    long min, max, n;
} lenstat;

static void ls_add(lenstat *s, long v)
{
    if (s->n == 0 || v < s->min)
        s->min = v;
    if (s->n == 0 || v > s->max)
        s->max = v;
    s->sum += (double)v;
    s->n++;
}

static void ls_print(const char *what, const lenstat *s)
{
    if (s->n)
        printf("%-19s min %ld  mean %.1f  max %ld\n", what, s->min, s->sum / (double)s->n, s->max);
}

/* Token count of text (0 on failure, which cannot happen with a large enough buffer). */
static int count_tokens(const steer_model *m, const char *text, int add_bos)
{
    int cap = (int)strlen(text) + 16, n = 0;
    int *buf = malloc((size_t)cap * sizeof *buf);
    if (!buf)
        return -1;
    int rc = steer_tokenize(m, text, add_bos, buf, cap, &n);
    if (rc == STEER_EARG && n > cap) {
        int *b2 = realloc(buf, (size_t)n * sizeof *b2);
        if (!b2) {
            free(buf);
            return -1;
        }
        buf = b2;
        cap = n;
        rc = steer_tokenize(m, text, add_bos, buf, cap, &n);
    }
    free(buf);
    return rc == STEER_OK ? n : -1;
}

static int data_stats(int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *model_path = NULL;
    tmpl_opts t = {0};
    const cli_opt opts[] = {
        {"-m", "--model", OPT_STR, &model_path, "MODEL", "also count tokens with this model's tokenizer"},
        {NULL, "--template", OPT_STR, &t.prompt, "TEXT", "prompt template (default: the format's)"},
        {NULL, "--completion-template", OPT_STR, &t.completion, "TEXT", "completion template"},
    };
    const cli_spec spec = {
        .usage = "steer data stats SPEC [-m MODEL]",
        .description = "Reads the whole file (so every line is checked) and prints the number of items,\n"
                       "how many have a gold answer, the gold answers' distribution, prompt and\n"
                       "completion lengths in characters (and in tokens with -m, prompt with BOS),\n"
                       "and for ListOps the depth and width of the expressions and whether each\n"
                       "answer agrees with the evaluator (MED of an even count: lower median).\n\n" SPEC_HELP,
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer data stats winogrande:tests/data/winogrande/dev.jsonl\n"
                   "  steer data stats listops:listops-train.jsonl -m models/stories260K/stories260K.bin",
        .min_pos = 1,
        .max_pos = 1,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    steer_data_params dp = steer_data_default_params();
    steer_dataset *d = NULL;
    steer_model *m = NULL;
    if ((rc = tmpl_params(&t, &dp)) != 0 || (rc = load(pos[0], &dp, &d)) != 0)
        goto done;
    if (model_path && (rc = cli_load_model(model_path, NULL, &m)) != 0)
        goto done;
    steer_data_format fmt = steer_data_get_format(d);
    int n = steer_data_count(d), with = 0, max_label = -1;
    long label_count[16] = {0}, label_other = 0;
    long depth_count[65] = {0}, width_max = 0, agree = 0, evaluated = 0;
    lenstat pc = {0}, cc = {0}, pt = {0}, ct = {0};
    for (int i = 0; i < n; i++) {
        const steer_data_item *it = steer_data_at(d, i);
        ls_add(&pc, (long)strlen(it->prompt));
        if (it->completion) {
            with++;
            ls_add(&cc, (long)strlen(it->completion));
        }
        if (it->label >= 0 && it->label < 16) {
            label_count[it->label]++;
            if (it->label > max_label)
                max_label = it->label;
        } else if (it->label >= 16) {
            label_other++;
        }
        if (m) {
            int a = count_tokens(m, it->prompt, 1);
            int b = it->completion ? count_tokens(m, it->completion, 0) : 0;
            if (a < 0 || b < 0) {
                rc = cli_error("%s: item %s: tokenization failed: %s", pos[0], it->id, steer_last_error());
                goto done;
            }
            ls_add(&pt, a);
            if (it->completion)
                ls_add(&ct, b);
        }
        if (fmt == STEER_DATA_LISTOPS) { /* the expression: first '[' to last ']' of the prompt */
            const char *a = strchr(it->prompt, '['), *b = strrchr(it->prompt, ']');
            int v, depth, width;
            if (a && b && b > a) {
                char *e = strndup(a, (size_t)(b - a + 1));
                if (e && steer_listops_eval(e, &v, &depth, &width) == STEER_OK) {
                    evaluated++;
                    agree += v == it->label;
                    depth_count[depth > 64 ? 64 : depth]++;
                    if (width > width_max)
                        width_max = width;
                }
                free(e);
            }
        }
    }
    printf("file: %s\n", steer_data_path(d));
    printf("format: %s\n", steer_data_format_name(fmt));
    printf("items: %d\n", n);
    printf("with completion: %d (%.1f%%)\n", with, 100.0 * with / n);
    if (fmt == STEER_DATA_LISTOPS)
        max_label = 9; /* every digit, also those that never occur */
    if (max_label >= 0 || label_other) {
        long labeled = label_other;
        for (int l = 0; l <= max_label; l++)
            labeled += label_count[l];
        printf("gold:");
        for (int l = 0; l <= max_label; l++) {
            char name[16];
            if (fmt == STEER_DATA_WINOGRANDE)
                snprintf(name, sizeof name, "%c", 'A' + l);
            else
                snprintf(name, sizeof name, "%d", l);
            printf("%s %s: %ld (%.1f%%)", l ? "," : "", name, label_count[l], 100.0 * label_count[l] / labeled);
        }
        if (label_other)
            printf(", >=16 %ld", label_other);
        printf("\n");
    }
    ls_print("prompt chars:", &pc);
    ls_print("completion chars:", &cc);
    ls_print("prompt tokens:", &pt);
    ls_print("completion tokens:", &ct);
    if (fmt == STEER_DATA_LISTOPS) {
        printf("depth:");
        for (int k = 0, first = 1; k <= 64; k++)
            if (depth_count[k]) {
                printf("%s %d: %ld", first ? "" : ",", k, depth_count[k]);
                first = 0;
            }
        printf("\nmax args: %ld\n", width_max);
        printf("evaluator agrees: %ld of %d%s\n", agree, n,
               evaluated < n ? " (some expressions could not be parsed)" : "");
    }
    rc = 0;
done:
    steer_data_free(d);
    if (m)
        steer_model_free(m);
    tmpl_free(&t);
    return rc;
}

/* ---------------------------------------------------------------- export */

static int data_export(int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const char *out = NULL;
    int n = 0, shuffle = 0;
    uint64_t seed = 0;
    tmpl_opts t = {0};
    const cli_opt opts[] = {
        {"-o", "--out", OPT_STR, &out, "FILE", "output JSONL (required)"},
        CLI_ALIAS("--output", OPT_STR, &out),
        {"-n", "--n", OPT_INT, &n, "N", "write only N items (default all)"},
        {NULL, "--shuffle", OPT_FLAG, &shuffle, NULL, "shuffle by --seed first"},
        {NULL, "--seed", OPT_U64, &seed, "S", "seed for --shuffle (default 0)"},
        {NULL, "--template", OPT_STR, &t.prompt, "TEXT", "prompt template (default: the format's)"},
        {NULL, "--completion-template", OPT_STR, &t.completion, "TEXT", "completion template"},
    };
    const cli_spec spec = {
        .usage = "steer data export SPEC [--n N] [--shuffle --seed S] -o FILE",
        .description = "Writes the rendered items as prompt/completion JSONL, atomically, one\n"
                       "{\"id\", \"prompt\", \"completion\", \"label\"} per line (completion and label\n"
                       "only where known), for other tools or as jsonl:FILE.\n\n" SPEC_HELP,
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer data export winogrande:dev.jsonl --n 100 --shuffle --seed 1 -o wg100.jsonl",
        .min_pos = 1,
        .max_pos = 1,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    if (!out)
        return cli_usage("missing -o FILE");
    if (n < 0)
        return cli_usage("--n must be >= 0, got %d", n);
    steer_data_params dp = steer_data_default_params();
    steer_dataset *d = NULL;
    if ((rc = tmpl_params(&t, &dp)) != 0)
        goto done;
    if (!shuffle)
        dp.n_max = n;
    if ((rc = load(pos[0], &dp, &d)) != 0)
        goto done;
    if (shuffle && steer_data_shuffle(d, seed) != STEER_OK) {
        rc = cli_lib_error();
        goto done;
    }
    if (n > 0)
        steer_data_truncate(d, n);
    if (steer_data_write_jsonl(d, out) != STEER_OK) {
        rc = cli_lib_error();
        goto done;
    }
    printf("wrote %s (%d items)\n", out, steer_data_count(d));
    rc = 0;
done:
    steer_data_free(d);
    tmpl_free(&t);
    return rc;
}

/* ---------------------------------------------------------------- dispatch */

static const cli_sub subs[] = {
    {"listops", "data listops", data_listops, "generate ListOps expressions as JSONL (seeded)"},
    {"show", "data show", data_show, "print rendered prompts and completions (check a template)"},
    {"stats", "data stats", data_stats, "count items, gold answers and lengths"},
    {"export", "data export", data_export, "write rendered prompt/completion JSONL"},
};

static void data_overview(FILE *f)
{
    fprintf(f, "usage: steer data SUBCOMMAND [options]     (steer data SUBCOMMAND --help for details)\n\n"
               "Datasets and templates (SPEC §6): Winogrande, ListOps and prompt/completion JSONL,\n"
               "named FORMAT:FILE (winogrande:, listops:, jsonl: or a plain FILE).\n\nsubcommands:\n");
    cli_list_subs(f, subs, sizeof subs / sizeof subs[0]);
    fprintf(f, "\nexample:\n  steer data listops --n 1000 --seed 1 --max-depth 3 --max-args 5 -o listops.jsonl\n"
               "  steer data show winogrande:tests/data/winogrande/dev.jsonl --n 1\n");
}

int cmd_data(int argc, char **argv)
{
    return cli_dispatch(subs, sizeof subs / sizeof subs[0], data_overview, argc, argv);
}

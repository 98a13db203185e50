/* test_data.c — datasets and templates (src/data.c): Winogrande dev through
 * the SPEC §6 template, specs and options, shuffles and splits, few-shot
 * contexts, the ListOps evaluator and generator, JSONL round trips, and bad
 * inputs (each names its file and line). */
#include "test_util.h"
#include "data.h"

#include <stdint.h>
#include <unistd.h>

static char tmpdir[256];

/* Writes text to tmpdir/name and returns the path (static buffer rotation). */
static const char *write_tmp(const char *name, const char *text)
{
    static char bufs[8][512];
    static int k = 0;
    char *path = bufs[k++ % 8];
    snprintf(path, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "FAIL: cannot write %s\n", path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

/* ---------------------------------------------------------------- Winogrande dev */

static void test_winogrande_dev(void)
{
    const char *spec = "winogrande:" STEER_TESTDATA_DIR "/winogrande/dev.jsonl";
    steer_dataset *d = NULL;
    CHECK_OK(steer_data_load(spec, NULL, &d));
    CHECK(steer_data_count(d) == 1267, "count %d", steer_data_count(d));
    CHECK(steer_data_get_format(d) == STEER_DATA_WINOGRANDE, "format %d", steer_data_get_format(d));
    const steer_data_item *it = steer_data_at(d, 0);
    const char *want_prompt = "Sarah was a much better surgeon than Maria so _ always got the easier cases.\n"
                              "Question: Which option fills the blank?\n"
                              "(A) Sarah\n"
                              "(B) Maria\n"
                              "Answer: The correct answer is";
    CHECK(strcmp(it->prompt, want_prompt) == 0, "row 1 prompt:\n%s", it->prompt);
    CHECK(it->completion && strcmp(it->completion, " (B) Maria.") == 0, "row 1 completion '%s'",
          it->completion ? it->completion : "(null)");
    CHECK(it->label == 1, "row 1 label %d", it->label);
    CHECK(strcmp(it->id, "3FCO4VKOZ4BJQ6IFC0VAIBK4KTWE7U-2") == 0, "row 1 id %s", it->id);
    CHECK(it->line == 1, "row 1 line %d", it->line);
    CHECK(it->n_choices == 2 && strcmp(it->choices[0], " (A) Sarah.") == 0 && strcmp(it->choices[1], " (B) Maria.") == 0,
          "row 1 choices");
    /* The default template is SPEC §6's, and the macro spells it. */
    CHECK(strcmp(STEER_WINOGRANDE_TEMPLATE, "{sentence}\nQuestion: Which option fills the blank?\n(A) {option1}\n"
                                            "(B) {option2}\nAnswer: The correct answer is") == 0,
          "template macro");
    int n_a = 0, n_b = 0, n_other = 0, bad_completion = 0;
    for (int i = 0; i < steer_data_count(d); i++) {
        const steer_data_item *x = steer_data_at(d, i);
        n_a += x->label == 0;
        n_b += x->label == 1;
        n_other += x->label != 0 && x->label != 1;
        bad_completion += !x->completion || strcmp(x->completion, x->choices[x->label == 1]) != 0 ||
                          strncmp(x->completion, x->label == 0 ? " (A) " : " (B) ", 5) != 0;
        if (x->line != i + 1) {
            CHECK(x->line == i + 1, "item %d line %d", i, x->line);
            break;
        }
    }
    printf("winogrande dev: %d items, gold A %d, B %d\n", steer_data_count(d), n_a, n_b);
    CHECK(n_a == 628 && n_b == 639 && n_other == 0, "gold letters A %d B %d other %d", n_a, n_b, n_other);
    CHECK(bad_completion == 0, "%d completions do not match their gold choice", bad_completion);
    CHECK_OK(steer_data_check_completions(d));
    steer_data_free(d);

    /* --n: the first N rows. */
    steer_data_params p = steer_data_default_params();
    p.n_max = 10;
    CHECK_OK(steer_data_load(spec, &p, &d));
    CHECK(steer_data_count(d) == 10, "n_max 10 gives %d", steer_data_count(d));
    CHECK(strcmp(steer_data_at(d, 0)->prompt, want_prompt) == 0, "n_max keeps row 1");
    steer_data_free(d);

    /* A custom template, with the completion template's extra placeholders. */
    p = steer_data_default_params();
    p.n_max = 1;
    p.prompt_template = "{sentence} [{option1}|{option2}] {unclosed";
    p.completion_template = " {letter}={option} ({answer})";
    CHECK_OK(steer_data_load(spec, &p, &d));
    it = steer_data_at(d, 0);
    CHECK(strcmp(it->prompt, "Sarah was a much better surgeon than Maria so _ always got the easier cases. "
                             "[Sarah|Maria] {unclosed") == 0,
          "custom prompt: %s", it->prompt);
    CHECK(strcmp(it->completion, " B=Maria (2)") == 0, "custom completion: %s", it->completion);
    steer_data_free(d);

    p.prompt_template = "{sentence} {option3}";
    p.completion_template = NULL;
    int rc = steer_data_load(spec, &p, &d);
    printf("unknown placeholder -> %d: %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EARG && strstr(steer_last_error(), "{option3}"), "unknown placeholder: %d %s", rc,
          steer_last_error());
    CHECK(d == NULL, "no dataset on failure");
}

/* ---------------------------------------------------------------- specs */

static void test_specs(void)
{
    steer_data_format f;
    const char *path;
    steer_data_parse_spec("winogrande:a/b.jsonl", &f, &path);
    CHECK(f == STEER_DATA_WINOGRANDE && strcmp(path, "a/b.jsonl") == 0, "winogrande spec");
    steer_data_parse_spec("listops:x.jsonl", &f, &path);
    CHECK(f == STEER_DATA_LISTOPS && strcmp(path, "x.jsonl") == 0, "listops spec");
    steer_data_parse_spec("jsonl:c:d.jsonl", &f, &path);
    CHECK(f == STEER_DATA_JSONL && strcmp(path, "c:d.jsonl") == 0, "jsonl spec");
    steer_data_parse_spec("plain.jsonl", &f, &path);
    CHECK(f == STEER_DATA_JSONL && strcmp(path, "plain.jsonl") == 0, "plain spec");
    steer_data_parse_spec("other:file", &f, &path);
    CHECK(f == STEER_DATA_JSONL && strcmp(path, "other:file") == 0, "unknown prefix is part of the path");
    CHECK(strcmp(steer_data_format_name(STEER_DATA_LISTOPS), "listops") == 0, "format name");
}

/* ---------------------------------------------------------------- shuffles, splits */

static void test_shuffle_split(void)
{
    steer_dataset *d = NULL;
    CHECK_OK(steer_data_new(&d));
    for (int i = 0; i < 50; i++) {
        char prompt[32], completion[32];
        snprintf(prompt, sizeof prompt, "p%d", i);
        snprintf(completion, sizeof completion, " c%d", i);
        CHECK_OK(steer_data_add(d, NULL, prompt, completion, i % 3));
    }
    CHECK(strcmp(steer_data_at(d, 4)->id, "5") == 0, "default id is the 1-based index: %s", steer_data_at(d, 4)->id);

    int a[50], b[50], c[50], seen[50] = {0};
    steer_data_permutation(50, 7, a);
    steer_data_permutation(50, 7, b);
    steer_data_permutation(50, 8, c);
    int same = 1, differ = 0;
    for (int i = 0; i < 50; i++) {
        same &= a[i] == b[i];
        differ |= a[i] != c[i];
        if (a[i] >= 0 && a[i] < 50) seen[a[i]]++;
    }
    int valid = 1;
    for (int i = 0; i < 50; i++) valid &= seen[i] == 1;
    CHECK(same, "same seed, same permutation");
    CHECK(differ, "another seed, another permutation");
    CHECK(valid, "a permutation");

    steer_dataset *d2 = NULL;
    CHECK_OK(steer_data_subset(d, a, 50, &d2)); /* reference: items in permutation order */
    CHECK_OK(steer_data_shuffle(d, 7));
    int match = 1;
    for (int i = 0; i < 50; i++) match &= strcmp(steer_data_at(d, i)->prompt, steer_data_at(d2, i)->prompt) == 0;
    CHECK(match, "shuffle = items in the seed's permutation");
    steer_data_free(d2);

    /* Split: disjoint, covering, order kept, deterministic. */
    steer_dataset *tr = NULL, *ho = NULL, *tr2 = NULL, *ho2 = NULL;
    CHECK_OK(steer_data_split(d, 12, 3, &tr, &ho));
    CHECK_OK(steer_data_split(d, 12, 3, &tr2, &ho2));
    CHECK(steer_data_count(tr) == 38 && steer_data_count(ho) == 12, "split sizes %d %d", steer_data_count(tr),
          steer_data_count(ho));
    int cover[50] = {0}, det = 1, ordered = 1;
    const steer_dataset *parts[2] = {tr, ho};
    for (int k = 0; k < 2; k++) {
        int prev = -1;
        for (int i = 0; i < steer_data_count(parts[k]); i++) {
            const steer_data_item *it = steer_data_at(parts[k], i);
            int pos = -1;
            for (int j = 0; j < 50; j++)
                if (strcmp(steer_data_at(d, j)->prompt, it->prompt) == 0) pos = j;
            if (pos >= 0) cover[pos]++;
            ordered &= pos > prev;
            prev = pos;
        }
    }
    for (int i = 0; i < steer_data_count(ho); i++)
        det &= strcmp(steer_data_at(ho, i)->prompt, steer_data_at(ho2, i)->prompt) == 0;
    int covered = 1;
    for (int i = 0; i < 50; i++) covered &= cover[i] == 1;
    CHECK(covered, "train and held-out partition the dataset");
    CHECK(ordered, "both parts keep the dataset's order");
    CHECK(det, "same seed, same held-out items");
    CHECK(steer_data_at(ho, 0)->label >= 0 && steer_data_at(ho, 0)->completion, "copies keep labels, completions");
    steer_data_free(tr);
    steer_data_free(ho);
    steer_data_free(tr2);
    steer_data_free(ho2);
    CHECK(steer_data_split(d, 51, 0, &tr, &ho) == STEER_EARG && !tr && !ho, "too many held out");
    steer_data_truncate(d, 5);
    CHECK(steer_data_count(d) == 5, "truncate");
    steer_data_free(d);
}

/* ---------------------------------------------------------------- few-shot */

static void test_fewshot(void)
{
    steer_dataset *d = NULL;
    steer_data_params p = steer_data_default_params();
    p.n_max = 40;
    CHECK_OK(steer_data_load("winogrande:" STEER_TESTDATA_DIR "/winogrande/dev.jsonl", &p, &d));
    steer_fewshot_params fp = steer_fewshot_default_params();
    fp.k = 3;
    fp.seed = 11;
    int excluded = 1, deterministic = 1, structured = 1, distinct = 1;
    for (int q = 0; q < steer_data_count(d); q++) {
        const steer_data_item *query = steer_data_at(d, q);
        char *c1 = NULL, *c2 = NULL;
        int ch1[3], ch2[3];
        CHECK_OK(steer_data_fewshot(d, query, &fp, &c1, ch1));
        CHECK_OK(steer_data_fewshot(d, query, &fp, &c2, ch2));
        deterministic &= strcmp(c1, c2) == 0 && memcmp(ch1, ch2, sizeof ch1) == 0;
        /* The context: prompt + completion + "\n\n" of each chosen item, in order. */
        char want[8192] = "";
        for (int i = 0; i < 3; i++) {
            excluded &= ch1[i] != q && strcmp(steer_data_at(d, ch1[i])->prompt, query->prompt) != 0;
            for (int j = 0; j < i; j++) distinct &= ch1[i] != ch1[j];
            strcat(want, steer_data_at(d, ch1[i])->prompt);
            strcat(want, steer_data_at(d, ch1[i])->completion);
            strcat(want, "\n\n");
        }
        structured &= strcmp(want, c1) == 0;
        free(c1);
        free(c2);
    }
    CHECK(excluded, "the query is never a demonstration");
    CHECK(deterministic, "same seed, same context");
    CHECK(structured, "context = demonstrations with answers, each followed by the separator");
    CHECK(distinct, "demonstrations are distinct");

    /* A fixed context: with query NULL every item may be picked; the query
     * among the first 3 is replaced by the 4th. */
    int fixed[3], with_q[3];
    char *ctx = NULL;
    CHECK_OK(steer_data_fewshot(d, NULL, &fp, &ctx, fixed));
    free(ctx);
    CHECK_OK(steer_data_fewshot(d, steer_data_at(d, fixed[1]), &fp, &ctx, with_q));
    free(ctx);
    CHECK(with_q[0] == fixed[0] && with_q[1] == fixed[2] && with_q[2] != fixed[1], "exclusion replaces only the query");
    /* A query from another dataset with the same prompt is excluded too. */
    steer_dataset *copy = NULL;
    CHECK_OK(steer_data_subset(d, &fixed[0], 1, &copy));
    CHECK_OK(steer_data_fewshot(d, steer_data_at(copy, 0), &fp, &ctx, with_q));
    free(ctx);
    CHECK(with_q[0] != fixed[0], "exclusion by prompt text");
    steer_data_free(copy);
    /* Separator, k = 0, too many. */
    fp.separator = "\n###\n";
    fp.k = 1;
    CHECK_OK(steer_data_fewshot(d, NULL, &fp, &ctx, NULL));
    size_t n = strlen(ctx);
    CHECK(n > 5 && strcmp(ctx + n - 5, "\n###\n") == 0, "custom separator");
    free(ctx);
    fp.k = 0;
    CHECK_OK(steer_data_fewshot(d, NULL, &fp, &ctx, NULL));
    CHECK(ctx && ctx[0] == '\0', "k = 0 gives an empty context");
    free(ctx);
    fp.k = 40;
    int rc = steer_data_fewshot(d, steer_data_at(d, 0), &fp, &ctx, NULL);
    CHECK(rc == STEER_EARG && ctx == NULL, "40 demonstrations from 39 eligible: %d", rc);
    printf("few-shot too many -> %s\n", steer_last_error());
    steer_data_free(d);
}

/* ---------------------------------------------------------------- ListOps */

/* Smallest and largest argument count of any operator (independent scan). */
static void arity_range(const char *e, int *lo, int *hi)
{
    int count[256], n = 0;
    *lo = 1 << 30;
    *hi = 0;
    for (const char *p = e; *p; p++) {
        if (*p == '[') {
            if (n > 0) count[n - 1]++;
            count[n++] = 0;
            while (p[1] >= 'A' && p[1] <= 'Z') p++;
        } else if (*p >= '0' && *p <= '9') {
            if (n > 0) count[n - 1]++;
        } else if (*p == ']' && n > 0) {
            n--;
            if (count[n] < *lo) *lo = count[n];
            if (count[n] > *hi) *hi = count[n];
        }
    }
}

static void test_listops_eval(void)
{
    struct {
        const char *e;
        int v, depth, width;
    } cases[] = {
        {"[MAX 2 9 [MIN 4 7 ] 0 ]", 9, 2, 4},
        {"[SM 5 6 7 ]", 8, 1, 3},
        {"[MED 3 1 2 ]", 2, 1, 3},
        {"[MED 3 8 ]", 3, 1, 2},         /* even count: lower median */
        {"[MED 4 1 3 2 ]", 2, 1, 4},     /* sorted 1 2 3 4 → 2 */
        {"[MIN 9 [MAX 1 [SM 9 9 ] ] 5 ]", 5, 3, 3},
        {"[SM [SM 9 9 ] [SM 9 9 ] ]", 6, 2, 2},
        {"7", 7, 0, 0},
        {"  [ MAX\t1 2]\n", 2, 1, 2},    /* free whitespace */
        {"[MED 5 ]", 5, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int v = -1, depth = -1, width = -1;
        int rc = steer_listops_eval(cases[i].e, &v, &depth, &width);
        CHECK(rc == STEER_OK && v == cases[i].v && depth == cases[i].depth && width == cases[i].width,
              "eval '%s': rc %d value %d depth %d width %d (want %d %d %d): %s", cases[i].e, rc, v, depth, width,
              cases[i].v, cases[i].depth, cases[i].width, rc ? steer_last_error() : "");
    }
    struct {
        const char *e, *needle;
    } bad[] = {
        {"[FOO 1 2 ]", "unknown operator 'FOO'"},
        {"[MAX 1 2", "unclosed"},
        {"[MAX 12 3 ]", "single digits"},
        {"", "empty"},
        {"[MAX 1 ] 2", "after the expression"},
        {"[MAX ]", "without arguments"},
        {"]", "without '['"},
        {"[ 1 2 ]", "expected an operator"},
        {"[MAX 1 x ]", "unexpected character 'x'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int v;
        int rc = steer_listops_eval(bad[i].e, &v, NULL, NULL);
        CHECK(rc == STEER_EFORMAT && strstr(steer_last_error(), bad[i].needle), "bad '%s': rc %d: %s", bad[i].e, rc,
              steer_last_error());
    }
    /* Deep nesting does not recurse. */
    size_t depth = 100000;
    char *deep = malloc(depth * 7 + 8), *p = deep;
    for (size_t i = 0; i < depth; i++) p += sprintf(p, "[SM 1 ");
    for (size_t i = 0; i < depth; i++) p += sprintf(p, "]");
    *p = '\0';
    int v = -1, dd = 0;
    CHECK(steer_listops_eval(deep, &v, &dd, NULL) == STEER_OK && v == (int)(depth % 10) && dd == (int)depth,
          "deep expression: value %d depth %d", v, dd);
    free(deep);
}

static void test_listops_generator(void)
{
    steer_listops_params p = steer_listops_default_params();
    p.max_depth = 4;
    p.max_args = 4;
    p.seed = 42;
    int n = 1000, depth_seen[8] = {0}, ops_seen[4] = {0}, answer_seen[10] = {0};
    int within = 1, agrees = 1, deterministic = 1;
    for (int i = 0; i < n; i++) {
        char *e = NULL, *e2 = NULL;
        int v = -1, v2 = -1, ev = -1, depth = -1, width = -1, lo, hi;
        CHECK_OK(steer_listops_sample(&p, (uint64_t)i, &e, &v));
        CHECK_OK(steer_listops_sample(&p, (uint64_t)i, &e2, &v2));
        deterministic &= strcmp(e, e2) == 0 && v == v2;
        int rc = steer_listops_eval(e, &ev, &depth, &width);
        arity_range(e, &lo, &hi);
        if (rc != STEER_OK || ev != v) {
            if (agrees) fprintf(stderr, "sample %d: '%s' gives %d, evaluator %d (%s)\n", i, e, v, ev,
                                rc ? steer_last_error() : "ok");
            agrees = 0;
        }
        if (depth < 1 || depth > p.max_depth || lo < 2 || hi > p.max_args || width != hi) {
            if (within) fprintf(stderr, "sample %d: '%s' depth %d arity %d..%d\n", i, e, depth, lo, hi);
            within = 0;
        }
        if (depth >= 0 && depth < 8) depth_seen[depth]++;
        if (v >= 0 && v <= 9) answer_seen[v]++;
        ops_seen[0] += strstr(e, "[MAX") != NULL;
        ops_seen[1] += strstr(e, "[MIN") != NULL;
        ops_seen[2] += strstr(e, "[MED") != NULL;
        ops_seen[3] += strstr(e, "[SM") != NULL;
        if (i == 0) printf("listops sample 0: %s -> %d\n", e, v);
        free(e);
        free(e2);
    }
    CHECK(deterministic, "same (seed, index), same expression");
    CHECK(agrees, "every answer equals the evaluator on the printed expression");
    CHECK(within, "depth in 1..%d and 2..%d arguments per operator", p.max_depth, p.max_args);
    printf("depths 1..4: %d %d %d %d; answers 0..9:", depth_seen[1], depth_seen[2], depth_seen[3], depth_seen[4]);
    for (int d = 0; d < 10; d++) printf(" %d", answer_seen[d]);
    printf("\n");
    for (int d = 1; d <= 4; d++) CHECK(depth_seen[d] > 150, "depth %d occurs %d times", d, depth_seen[d]);
    for (int o = 0; o < 4; o++) CHECK(ops_seen[o] > 100, "operator %d occurs in %d expressions", o, ops_seen[o]);
    for (int d = 0; d < 10; d++) CHECK(answer_seen[d] > 0, "answer %d occurs", d);

    /* Another seed, another stream; a flat generator with max depth 1. */
    steer_listops_params q = p;
    q.seed = 43;
    char *a = NULL, *b = NULL;
    int differ = 0;
    for (int i = 0; i < 5; i++) {
        CHECK_OK(steer_listops_sample(&p, (uint64_t)i, &a, NULL));
        CHECK_OK(steer_listops_sample(&q, (uint64_t)i, &b, NULL));
        differ |= strcmp(a, b) != 0;
        free(a);
        free(b);
    }
    CHECK(differ, "seeds 42 and 43 differ");
    q.max_depth = 1;
    q.max_args = 2;
    CHECK_OK(steer_listops_sample(&q, 0, &a, NULL));
    int depth, width;
    CHECK(steer_listops_eval(a, NULL, &depth, &width) == STEER_OK && depth == 1 && width == 2, "flat 2-ary: %s", a);
    free(a);
    /* Large arity and depth stay bounded (budget on nested operators). */
    q.max_depth = 12;
    q.max_args = 30;
    q.p_nest = 1.0f;
    size_t longest = 0;
    for (int i = 0; i < 20; i++) {
        CHECK_OK(steer_listops_sample(&q, (uint64_t)i, &a, NULL));
        if (strlen(a) > longest) longest = strlen(a);
        free(a);
    }
    printf("p_nest 1, depth 12, 30 args: longest expression %zu chars\n", longest);
    CHECK(longest < 200000, "expressions stay bounded: %zu", longest);
    /* Bad parameters. */
    q = steer_listops_default_params();
    q.max_depth = 0;
    CHECK(steer_listops_sample(&q, 0, &a, NULL) == STEER_EARG && a == NULL, "max_depth 0");
    q = steer_listops_default_params();
    q.max_args = 1;
    CHECK(steer_listops_sample(&q, 0, &a, NULL) == STEER_EARG, "max_args 1");
}

static void test_listops_files(void)
{
    steer_listops_params p = steer_listops_default_params();
    p.seed = 5;
    char path1[512], path2[512], path3[512];
    snprintf(path1, sizeof path1, "%s/lo1.jsonl", tmpdir);
    snprintf(path2, sizeof path2, "%s/lo2.jsonl", tmpdir);
    snprintf(path3, sizeof path3, "%s/lo3.jsonl", tmpdir);
    CHECK_OK(steer_listops_write(path1, 200, &p));
    CHECK_OK(steer_listops_write(path2, 200, &p));
    CHECK_OK(steer_listops_write(path3, 20, &p));
    size_t n1, n2, n3;
    char *t1 = tu_read_file(path1, &n1), *t2 = tu_read_file(path2, &n2), *t3 = tu_read_file(path3, &n3);
    CHECK(n1 == n2 && memcmp(t1, t2, n1) == 0, "same seed, identical file");
    CHECK(n3 < n1 && memcmp(t1, t3, n3) == 0, "n = 20 is the first 20 lines of n = 200");
    int lines = 0;
    for (size_t i = 0; i < n1; i++) lines += t1[i] == '\n';
    CHECK(lines == 200, "200 lines, got %d", lines);
    free(t1);
    free(t2);
    free(t3);

    char spec[600];
    snprintf(spec, sizeof spec, "listops:%s", path1);
    steer_dataset *d = NULL, *mem = NULL;
    CHECK_OK(steer_data_load(spec, NULL, &d));
    CHECK_OK(steer_listops_dataset(200, &p, NULL, &mem));
    CHECK(steer_data_count(d) == 200 && steer_data_count(mem) == 200, "counts");
    int same = 1, shaped = 1;
    for (int i = 0; i < 200; i++) {
        const steer_data_item *a = steer_data_at(d, i), *b = steer_data_at(mem, i);
        same &= strcmp(a->prompt, b->prompt) == 0 && strcmp(a->completion, b->completion) == 0 && a->label == b->label;
        size_t len = strlen(a->prompt);
        shaped &= len > 18 && strncmp(a->prompt, "Solve: [", 8) == 0 && strcmp(a->prompt + len - 10, " ]\nAnswer:") == 0;
        shaped &= a->completion[0] == ' ' && a->completion[1] == '0' + a->label && a->completion[2] == '\0';
        shaped &= a->n_choices == 10 && strcmp(a->choices[a->label], a->completion) == 0;
    }
    CHECK(same, "file and in-memory datasets agree");
    CHECK(shaped, "prompt 'Solve: {expr}\\nAnswer:', completion ' {digit}'");
    printf("listops item 1: %s|%s\n", steer_data_at(d, 0)->prompt, steer_data_at(d, 0)->completion);
    steer_data_free(d);
    steer_data_free(mem);
    CHECK(steer_listops_write(path1, 0, &p) == STEER_EARG, "n = 0");
}

/* ---------------------------------------------------------------- JSONL */

static void test_jsonl(void)
{
    const char *path = write_tmp("pc.jsonl", "{\"prompt\": \"Hello\", \"completion\": \" world\", \"extra\": [1, 2]}\r\n"
                                             "\n"
                                             "   \t\n"
                                             "{\"id\": 17, \"prompt\": \"No answer\", \"label\": 2}\n"
                                             "{\"prompt\": \"ü \\\"quoted\\\"\\n\", \"completion\": null}");
    steer_dataset *d = NULL;
    CHECK_OK(steer_data_load(path, NULL, &d)); /* a plain FILE is jsonl */
    CHECK(steer_data_count(d) == 3, "3 items, blank lines skipped: %d", steer_data_count(d));
    const steer_data_item *a = steer_data_at(d, 0), *b = steer_data_at(d, 1), *c = steer_data_at(d, 2);
    CHECK(strcmp(a->prompt, "Hello") == 0 && strcmp(a->completion, " world") == 0 && a->label == -1 && a->line == 1 &&
              strcmp(a->id, "1") == 0,
          "row 1 (CRLF)");
    CHECK(strcmp(b->prompt, "No answer") == 0 && !b->completion && b->label == 2 && b->line == 4 &&
              strcmp(b->id, "17") == 0,
          "row 4: line %d id %s", b->line, b->id);
    CHECK(strcmp(c->prompt, "ü \"quoted\"\n") == 0 && !c->completion && c->line == 5, "row 5");
    int rc = steer_data_check_completions(d);
    CHECK(rc == STEER_EFORMAT && strstr(steer_last_error(), "pc.jsonl:4:"), "check_completions names line 4: %s",
          steer_last_error());

    /* Round trip through steer_data_write_jsonl. */
    char out[512];
    snprintf(out, sizeof out, "%s/roundtrip.jsonl", tmpdir);
    CHECK_OK(steer_data_write_jsonl(d, out));
    steer_dataset *r = NULL;
    CHECK_OK(steer_data_load(out, NULL, &r));
    int same = steer_data_count(r) == 3;
    for (int i = 0; same && i < 3; i++) {
        const steer_data_item *x = steer_data_at(d, i), *y = steer_data_at(r, i);
        same &= strcmp(x->prompt, y->prompt) == 0 && strcmp(x->id, y->id) == 0 && x->label == y->label &&
                (x->completion ? y->completion && strcmp(x->completion, y->completion) == 0 : !y->completion);
    }
    CHECK(same, "write_jsonl round trip");
    steer_data_free(r);
    steer_data_free(d);

    /* Templates over a row's own fields. */
    path = write_tmp("qa.jsonl", "{\"question\": \"2+2\", \"answer\": 4}\n{\"question\": \"3+3\", \"answer\": 6.5}\n");
    steer_data_params p = steer_data_default_params();
    p.prompt_template = "Q: {question}\nA:";
    p.completion_template = " {answer}";
    CHECK_OK(steer_data_load(path, &p, &d));
    CHECK(strcmp(steer_data_at(d, 0)->prompt, "Q: 2+2\nA:") == 0 && strcmp(steer_data_at(d, 0)->completion, " 4") == 0 &&
              strcmp(steer_data_at(d, 1)->completion, " 6.5") == 0,
          "jsonl templates: '%s' '%s'", steer_data_at(d, 0)->prompt, steer_data_at(d, 0)->completion);
    steer_data_free(d);
    p.prompt_template = "Q: {question} {context}";
    rc = steer_data_load(path, &p, &d);
    CHECK(rc == STEER_EFORMAT && strstr(steer_last_error(), "qa.jsonl:1: missing field 'context'"), "%s",
          steer_last_error());
}

/* ---------------------------------------------------------------- bad input */

static void test_bad_input(void)
{
    const char *good = "{\"qID\": \"a\", \"sentence\": \"x _ y\", \"option1\": \"P\", \"option2\": \"Q\", \"answer\": \"1\"}\n";
    struct {
        const char *fmt, *text, *needle;
        int code;
    } cases[] = {
        {"winogrande", "%s\n\n{\"qID\": \"b\", \"sentence\": \"x _\", \"option1\": \"P\" \"option2\": \"Q\"}\n",
         ":4: malformed JSON at column 48", STEER_EFORMAT}, /* good row, 2 blank lines, bad row */
        {"winogrande", "%s{\"qID\": \"b\", \"sentence\": \"x _\", \"option1\": \"P\", \"answer\": \"2\"}\n",
         ":2: missing field 'option2'", STEER_EFORMAT},
        {"winogrande", "%s%s{\"sentence\": \"no blank\", \"option1\": \"P\", \"option2\": \"Q\", \"answer\": \"2\"}\n",
         ":3: sentence has 0 blanks", STEER_EFORMAT},
        {"winogrande", "%s{\"sentence\": \"_ and _\", \"option1\": \"P\", \"option2\": \"Q\", \"answer\": \"2\"}\n",
         ":2: sentence has 2 blanks", STEER_EFORMAT},
        {"winogrande", "\n%s{\"sentence\": \"a _\", \"option1\": \"P\", \"option2\": \"Q\", \"answer\": \"3\"}\n",
         ":3: answer must be \"1\" or \"2\", got \"3\"", STEER_EFORMAT},
        {"winogrande", "%s{\"sentence\": 5, \"option1\": \"P\", \"option2\": \"Q\", \"answer\": \"1\"}\n",
         ":2: field 'sentence' is not a string", STEER_EFORMAT},
        {"winogrande", "%s[1, 2]\n", ":2: expected a JSON object", STEER_EFORMAT},
        {"winogrande", "%s{\"sentence\": \"a _\", \"option1\": \"P\", \"option2\": \"Q\"} trailing\n",
         ":2: unexpected text after the JSON value", STEER_EFORMAT},
        {"listops", "{\"expr\": \"[MAX 1 2 ]\", \"answer\": 2}\n{\"expr\": \"[SM 5 7 ]\", \"answer\": 12}\n",
         ":2: answer must be a digit 0-9, got 12", STEER_EFORMAT},
        {"listops", "{\"expr\": \"[MAX 1 2 ]\", \"answer\": \"x\"}\n", ":1: answer must be a digit 0-9, got \"x\"",
         STEER_EFORMAT},
        {"listops", "\n\n\n\n{\"answer\": 3}\n", ":5: missing field 'expr'", STEER_EFORMAT},
        {"listops", "{\"expr\": \"[MAX 1 2 ]\", \"answer\": 2.5}\n", ":1: answer must be a digit", STEER_EFORMAT},
        {"listops", "{\"expr\": \"[MAX 1 2 ]\"}\n", ":1: missing field 'answer'", STEER_EFORMAT},
        {"jsonl", "{\"completion\": \"x\"}\n", ":1: missing field 'prompt'", STEER_EFORMAT},
        {"jsonl", "%s", ":1: missing field 'prompt' (a winogrande file? use winogrande:", STEER_EFORMAT},
        {"jsonl", "{\"prompt\": \"a\", \"label\": \"x\"}\n", ":1: field 'label' is not a non-negative integer",
         STEER_EFORMAT},
        {"jsonl", "\n  \n", ": no items", STEER_EFORMAT},
        {"jsonl", "", ": no items", STEER_EFORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[2048], name[64], spec[600];
        /* "%s" in a case stands for one good row. */
        size_t o = 0;
        for (const char *c = cases[i].text; *c && o + 200 < sizeof text; c++) {
            if (c[0] == '%' && c[1] == 's') {
                o += (size_t)snprintf(text + o, sizeof text - o, "%s", good);
                c++;
            } else {
                text[o++] = *c;
            }
        }
        text[o] = '\0';
        snprintf(name, sizeof name, "bad%zu.jsonl", i);
        const char *path = write_tmp(name, text);
        snprintf(spec, sizeof spec, "%s:%s", cases[i].fmt, path);
        steer_dataset *d = (steer_dataset *)1;
        int rc = steer_data_load(spec, NULL, &d);
        char want[256];
        snprintf(want, sizeof want, "%s%s", name, cases[i].needle);
        CHECK(rc == cases[i].code && d == NULL && strstr(steer_last_error(), want),
              "case %zu: rc %d, message '%s', expected '%s'", i, rc, steer_last_error(), want);
        printf("bad input %zu -> %s\n", i, steer_last_error());
        CHECK(strchr(steer_last_error(), '\n') == NULL, "one line");
    }
    /* Winogrande test split: no answer → no completion. */
    const char *path = write_tmp("test.jsonl", "{\"qID\": \"t1\", \"sentence\": \"a _ b\", \"option1\": \"P\", "
                                               "\"option2\": \"Q\"}\n{\"qID\": \"t2\", \"sentence\": \"a _ b\", "
                                               "\"option1\": \"P\", \"option2\": \"Q\", \"answer\": \"\"}\n");
    char spec[600];
    snprintf(spec, sizeof spec, "winogrande:%s", path);
    steer_dataset *d = NULL;
    CHECK_OK(steer_data_load(spec, NULL, &d));
    CHECK(steer_data_count(d) == 2 && !steer_data_at(d, 0)->completion && steer_data_at(d, 0)->label == -1 &&
              !steer_data_at(d, 1)->completion && steer_data_at(d, 0)->n_choices == 2,
          "test split: unlabeled");
    CHECK(steer_data_check_completions(d) == STEER_EFORMAT && strstr(steer_last_error(), "test.jsonl:1:"),
          "check_completions: %s", steer_last_error());
    steer_data_free(d);
    /* Missing file. */
    steer_dataset *m = NULL;
    int rc = steer_data_load("winogrande:/nonexistent/dev.jsonl", NULL, &m);
    CHECK(rc == STEER_EIO && m == NULL && strstr(steer_last_error(), "/nonexistent/dev.jsonl"), "missing file: %d %s", rc,
          steer_last_error());
}

/* ---------------------------------------------------------------- prompt ⊕ completion */

/* data_tokenize_pair: the tokens of the joined text, and where they stop
 * agreeing with the prompt's own tokens (stories260K's tokenizer). */
static void test_tokenize_pair(void)
{
    steer_model *m = NULL;
    CHECK_OK(steer_model_load(STEER_MODELS_DIR "/stories260K/stories260K.gguf", NULL, &m));
    static const struct {
        const char *prompt, *completion;
    } cases[] = {{"Once upon a", " time there was"}, {"Once upon a ti", "me"}, {"Lily", ""}};
    for (int c = 0; c < 3; c++) {
        const char *pr = cases[c].prompt, *co = cases[c].completion;
        int *pt = NULL, np = 0, *full = NULL, nf = 0, ncom = -1, *ref = NULL, nr = 0;
        CHECK_OK(steer_tokenize_alloc(m, pr, 1, &pt, &np));
        CHECK_OK(data_tokenize_pair(m, pr, pt, np, co, &full, &nf, &ncom));
        char joined[128];
        snprintf(joined, sizeof joined, "%s%s", pr, co);
        CHECK_OK(steer_tokenize_alloc(m, joined, 1, &ref, &nr));
        int same = nf == nr && memcmp(full, ref, (size_t)nr * sizeof(int)) == 0, agree = 0;
        while (agree < np && agree < nf && full[agree] == pt[agree]) agree++;
        printf("tokenize_pair '%s' + '%s': prompt %d tokens, joined %d, common %d\n", pr, co, np, nf, ncom);
        CHECK(same, "'%s': the joined text's tokens", joined);
        CHECK(ncom == agree && full[0] == steer_token_bos(m), "'%s': common prefix %d, expected %d", joined, ncom,
              agree);
        /* Measured: "Once upon a" is BOS + 3 tokens and the completion adds 3; "ti" + "me" merge, so
         * the joined text shares only BOS + 3 tokens with the prompt's 6; "" adds nothing. */
        static const int want[3][3] = {{4, 7, 4}, {6, 5, 4}, {2, 2, 2}};
        CHECK(np == want[c][0] && nf == want[c][1] && ncom == want[c][2], "'%s': %d %d %d, expected %d %d %d", joined,
              np, nf, ncom, want[c][0], want[c][1], want[c][2]);
        free(pt);
        free(full);
        free(ref);
    }
    steer_model_free(m);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_data.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "FAIL: mkdtemp\n");
        return 1;
    }
    test_winogrande_dev();
    test_specs();
    test_shuffle_split();
    test_fewshot();
    test_listops_eval();
    test_listops_generator();
    test_listops_files();
    test_jsonl();
    test_bad_input();
    test_tokenize_pair();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return tu_finish("test_data");
}

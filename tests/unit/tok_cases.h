/* tok_cases.h — llama.cpp's tokenizer test files (.inp strings separated by
 * "\n__ggml_vocab_test__\n", .out lines of " id id …") and printing helpers,
 * shared by the tokenizer tests. */
#ifndef STEER_TOK_CASES_H
#define STEER_TOK_CASES_H

#include "test_util.h"

/* Test strings of a .inp file: split on the separator, the empty tail dropped. */
static inline char **read_inputs(const char *path, int *n)
{
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *buf = tu_read_file(path, NULL);
    int cap = 64, cnt = 0;
    char **v = malloc((size_t)cap * sizeof *v);
    char *p = buf;
    for (;;) {
        char *q = strstr(p, sep);
        if (!q) break;
        if (cnt == cap) v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
        size_t len = (size_t)(q - p);
        v[cnt] = malloc(len + 1);
        memcpy(v[cnt], p, len);
        v[cnt][len] = 0;
        cnt++;
        p = q + strlen(sep);
    }
    CHECK(*p == 0, "%s: text after the last separator", path);
    free(buf);
    *n = cnt;
    return v;
}

typedef struct {
    int n;
    int *ids;
} id_line;

/* Lines of a .out file: " id id id" per line. */
static inline id_line *read_outputs(const char *path, int *n)
{
    char *buf = tu_read_file(path, NULL);
    int cap = 64, cnt = 0;
    id_line *v = malloc((size_t)cap * sizeof *v);
    char *p = buf;
    while (*p) {
        char *e = strchr(p, '\n');
        if (!e) e = p + strlen(p);
        if (cnt == cap) v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
        id_line *l = &v[cnt++];
        l->n = 0;
        l->ids = malloc(((size_t)(e - p) / 2 + 1) * sizeof *l->ids);
        char *s = p;
        while (s < e) {
            char *end;
            long x = strtol(s, &end, 10);
            if (end == s) break;
            l->ids[l->n++] = (int)x;
            s = end;
        }
        p = *e ? e + 1 : e;
    }
    free(buf);
    *n = cnt;
    return v;
}

static inline void free_outputs(id_line *v, int n)
{
    for (int i = 0; i < n; i++) free(v[i].ids);
    free(v);
}

static inline void free_inputs(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static inline void print_escaped(FILE *f, const char *s)
{
    fputc('"', f);
    for (int k = 0; s[k] && k < 120; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\x%02x", c);
        else fputc(c, f);
    }
    if (strlen(s) > 120) fputs("...", f);
    fputc('"', f);
}

static inline void print_ids(FILE *f, const int *ids, int n)
{
    for (int i = 0; i < n; i++) fprintf(f, " %d", ids[i]);
    fputc('\n', f);
}

#endif

/* test_util.h — tiny assertion helpers for CTest executables: every check
 * prints what it compared, and a failed check makes the test exit non-zero. */
#ifndef STEER_TEST_UTIL_H
#define STEER_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steer_exp.h"
#include "tolerances.h"

static int tu_failures = 0;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fprintf(stderr, "\n");                                                        \
            tu_failures++;                                                                \
        }                                                                                 \
    } while (0)

#define CHECK_OK(expr)                                                                    \
    do {                                                                                  \
        int rc_ = (expr);                                                                 \
        if (rc_ != STEER_OK) {                                                            \
            fprintf(stderr, "FAIL %s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #expr, \
                    rc_, steer_last_error());                                             \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

/* Max |a - b| over n floats (NaN counts as infinite). */
static inline double tu_max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}

/* Checks max |a-b| <= tol and prints the measured difference either way. */
#define CHECK_CLOSE(what, a, b, n, tol)                                                   \
    do {                                                                                  \
        double md_ = tu_max_abs_diff((a), (b), (n));                                      \
        printf("%-60s max|diff| = %.3e (tol %.1e)\n", (what), md_, (double)(tol));        \
        CHECK(md_ <= (tol), "%s: max|diff| %.3e > %.1e", (what), md_, (double)(tol));     \
    } while (0)

/* Reads a whole file; caller frees. Exits the test on failure. */
static inline void *tu_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "FAIL: cannot open %s\n", path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) { fprintf(stderr, "FAIL: read %s\n", path); exit(1); }
    buf[n] = 0;
    fclose(f);
    if (size) *size = (size_t)n;
    return buf;
}

/* FNV-1a hash of a whole file (a fixture's identity); *size = its bytes. */
static inline uint64_t tu_fnv1a_file(const char *path, size_t *size)
{
    size_t n = 0;
    uint8_t *d = tu_read_file(path, &n);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ d[i]) * 0x100000001b3ull;
    free(d);
    *size = n;
    return h;
}

static inline int tu_finish(const char *name)
{
    if (tu_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, tu_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif

/* test_base.c — the base tier's shared helpers (src/base): io_mkdir_p
 * (nested, existing, a file in the way, bad names), csv_split (plain, empty
 * and quoted fields, too many fields, bad quotes), io_now_s; and
 * steer_dtype_parse (include/steer.h). mmap and atomic writes: test_io.c. */
#include "base.h"
#include "test_util.h"

#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[256];

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_mkdir_p(void)
{
    char p[512], q[512], f[512];
    snprintf(p, sizeof p, "%s/a/b/c", g_tmp);
    CHECK_OK(io_mkdir_p(p));
    CHECK(is_dir(p), "%s: not created", p);
    CHECK_OK(io_mkdir_p(p)); /* exists: fine */
    snprintf(q, sizeof q, "%s/a/b/d/", g_tmp); /* trailing slash */
    CHECK_OK(io_mkdir_p(q));
    q[strlen(q) - 1] = 0;
    CHECK(is_dir(q), "%s: not created", q);

    /* A file in the way, as the last component and as a parent. */
    snprintf(f, sizeof f, "%s/a/file", g_tmp);
    FILE *fp = fopen(f, "w");
    CHECK(fp != NULL, "cannot create %s", f);
    if (fp) fclose(fp);
    int rc = io_mkdir_p(f);
    printf("file in the way: %d %s\n", rc, steer_last_error());
    CHECK(rc == STEER_EIO && strstr(steer_last_error(), f) && strstr(steer_last_error(), "not a directory"),
          "file in the way: %d %s", rc, steer_last_error());
    char below[600];
    snprintf(below, sizeof below, "%s/x/y", f);
    rc = io_mkdir_p(below);
    printf("file as a parent: %d %s\n", rc, steer_last_error());
    char fx[600];
    snprintf(fx, sizeof fx, "%s/x: cannot create directory", f);
    CHECK(rc == STEER_EIO && strstr(steer_last_error(), fx), "file as a parent: %d %s", rc, steer_last_error());

    CHECK(io_mkdir_p("") == STEER_EARG, "empty name: %s", steer_last_error());
    char *lng = malloc(IO_TMP_PATH_MAX + 10);
    memset(lng, 'a', IO_TMP_PATH_MAX + 9);
    lng[IO_TMP_PATH_MAX + 9] = 0;
    CHECK(io_mkdir_p(lng) == STEER_EARG && strncmp(steer_last_error(), "aaaa", 4) == 0, "long name: %.80s",
          steer_last_error()); /* "NAME: path too long" (the message is cut short) */
    free(lng);

    unlink(f);
    rmdir(q);
    rmdir(p);
    snprintf(p, sizeof p, "%s/a/b", g_tmp);
    rmdir(p);
    snprintf(p, sizeof p, "%s/a", g_tmp);
    rmdir(p);
    CHECK(!is_dir(p), "%s: left behind", p);
}

static void test_csv_split(void)
{
    char *f[4];
    char l1[] = "1,ab,,x";
    CHECK(csv_split(l1, f, 4) == 4 && !strcmp(f[0], "1") && !strcmp(f[1], "ab") && !strcmp(f[2], "") &&
              !strcmp(f[3], "x"),
          "plain fields");
    char l2[] = "\"a,b\",\"say \"\"hi\"\"\",\"\"";
    CHECK(csv_split(l2, f, 4) == 3 && !strcmp(f[0], "a,b") && !strcmp(f[1], "say \"hi\"") && !strcmp(f[2], ""),
          "quoted fields: '%s' '%s' '%s'", f[0], f[1], f[2]);
    char l3[] = "";
    CHECK(csv_split(l3, f, 4) == 1 && !strcmp(f[0], ""), "empty line is one empty field");
    char l4[] = "a,";
    CHECK(csv_split(l4, f, 4) == 2 && !strcmp(f[0], "a") && !strcmp(f[1], ""), "trailing comma");
    char l5[] = "a,b,c,d,e";
    CHECK(csv_split(l5, f, 4) == 5, "more than max fields -> max + 1");
    char l6[] = "\"abc";
    CHECK(csv_split(l6, f, 4) == -1, "unterminated quote");
    char l7[] = "\"ab\"c,d";
    CHECK(csv_split(l7, f, 4) == -1, "text after a closing quote");
}

/* text_next_line: LF and CRLF lines, an empty line, a last line without a
 * newline, and NULL after the end. */
static void test_next_line(void)
{
    char text[] = "a,b\r\n\nlast";
    const char *want[] = {"a,b", "", "last"};
    const size_t wlen[] = {3, 0, 4};
    char *cur = text, *ln;
    size_t len = 99;
    int n = 0;
    while ((ln = text_next_line(&cur, &len))) {
        CHECK(n < 3, "text_next_line: more than 3 lines");
        if (n >= 3) break;
        CHECK(strcmp(ln, want[n]) == 0 && len == wlen[n], "line %d: '%s' (%zu), want '%s' (%zu)", n, ln, len, want[n],
              wlen[n]);
        n++;
    }
    CHECK(n == 3 && cur == NULL, "text_next_line: %d lines, cursor %p", n, (void *)cur);
    char empty[] = "";
    cur = empty;
    CHECK(text_next_line(&cur, NULL) == empty && cur == NULL, "empty text is one empty line");
}

static void test_now(void)
{
    double a = io_now_s();
    usleep(20000);
    double b = io_now_s();
    printf("io_now_s: %.6f -> %.6f (%.4f s for a 20 ms sleep)\n", a, b, b - a);
    /* usleep sleeps at least 20 ms; no upper bound (tests never depend on timing). */
    CHECK(b - a >= 0.019, "monotonic seconds: %.6f", b - a);
}

static void test_dtype_parse(void)
{
    static const struct {
        const char *s;
        steer_dtype t;
    } ok[] = {{"f32", STEER_DTYPE_F32},   {"F32", STEER_DTYPE_F32},   {"f16", STEER_DTYPE_F16},
              {"F16", STEER_DTYPE_F16},   {"bf16", STEER_DTYPE_BF16}, {"BF16", STEER_DTYPE_BF16},
              {"Bf16", STEER_DTYPE_BF16}, {"q8_0", STEER_DTYPE_Q8_0}, {"Q4_K", STEER_DTYPE_Q4_K},
              {"q6_k", STEER_DTYPE_Q6_K}}; /* case-insensitive; the block types: test_quant.c */
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        steer_dtype t = STEER_DTYPE_KEEP;
        CHECK(steer_dtype_parse(ok[i].s, &t) == STEER_OK && t == ok[i].t, "%s -> %d", ok[i].s, (int)t);
    }
    static const char *bad[] = {"f64", "fp16", "", "I8", "q8", "q4_k_m"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        steer_dtype t = STEER_DTYPE_KEEP;
        int rc = steer_dtype_parse(bad[i], &t);
        CHECK(rc == STEER_EARG && t == STEER_DTYPE_KEEP && strstr(steer_last_error(), "unknown dtype"),
              "'%s': %d %s", bad[i], rc, steer_last_error());
    }
    printf("steer_dtype_parse(\"%s\"): %s\n", bad[sizeof bad / sizeof bad[0] - 1], steer_last_error());
}

int main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test_base.XXXXXX");
    if (!mkdtemp(g_tmp)) {
        fprintf(stderr, "FAIL: mkdtemp\n");
        return 1;
    }
    test_mkdir_p();
    test_csv_split();
    test_next_line();
    test_now();
    test_dtype_parse();
    if (rmdir(g_tmp) != 0) fprintf(stderr, "warning: could not remove %s\n", g_tmp);
    return tu_finish("test_base");
}

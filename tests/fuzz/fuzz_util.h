/*
 * fuzz_util.h — helpers shared by the parser harnesses tests/fuzz/fuzz_*.c.
 *
 * Each harness defines `static int fuzz_<name>_one(const uint8_t *data,
 * size_t size)` and ends with FUZZ_ENTRY(fuzz_<name>_one), which becomes:
 *   - LLVMFuzzerTestOneInput (clang -fsanitize=fuzzer: CMake STEER_FUZZ,
 *     scripts/fuzz.sh);
 *   - that plus a main() replaying the files and directories named on the
 *     command line when FUZZ_STANDALONE is defined (any compiler:
 *     gcc -DFUZZ_STANDALONE tests/fuzz/fuzz_gguf.c ... -lsteer);
 *   - nothing when FUZZ_NO_ENTRY is defined: tests/unit/test_fuzz_regress.c
 *     includes every harness into one CTest program that replays
 *     tests/fuzz/corpus/<name>/ and tests/fuzz/regress/<name>/.
 *
 * Parsers take paths, so the input is written to a file in a per-process
 * scratch directory first. In the fuzz build io_map_open reads files into an
 * exact-size heap buffer (STEER_FUZZ_READ_MAPS), so AddressSanitizer sees a
 * read past the end of the file's bytes.
 *
 * Besides "no crash, no leak, no undefined behaviour", every harness checks
 * the library's error contract on each failure (fuzz_check_error): a STEER_E*
 * code and a non-empty one-line message that names the file. A violation
 * aborts, so the fuzzer reports it like a crash.
 */
#ifndef STEER_FUZZ_UTIL_H
#define STEER_FUZZ_UTIL_H

#include "model.h"
#include "steer_train.h"
#include "data.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Prints why and aborts (the fuzzer saves the input as a crash). */
static inline void fuzz_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz invariant violated: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* Removes dir and everything under it (the scratch tree only holds regular
 * files and directories). */
static inline void fuzz_rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char p[4096];
            struct stat st;
            if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) continue;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) fuzz_rm_tree(p);
            else remove(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static char fuzz_scratch[512];

static inline void fuzz_cleanup(void)
{
    if (fuzz_scratch[0]) fuzz_rm_tree(fuzz_scratch);
}

/* The per-process scratch directory ($TMPDIR or /tmp), created on first use
 * and removed at exit. */
static inline const char *fuzz_dir(void)
{
    if (!fuzz_scratch[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_scratch, sizeof fuzz_scratch, "%s/steer-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(fuzz_scratch)) {
            fuzz_scratch[0] = 0;
            fuzz_fail("cannot create a scratch directory", NULL);
        }
        atexit(fuzz_cleanup);
    }
    return fuzz_scratch;
}

/* buf = <scratch>/name. */
static inline const char *fuzz_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", fuzz_dir(), name);
    return buf;
}

static inline void fuzz_mkdir(const char *path)
{
    if (mkdir(path, 0755) != 0) {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) fuzz_fail("cannot create directory", path);
    }
}

/* Writes data[size] to path (replacing it). */
static inline void fuzz_write(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) fuzz_fail("cannot write", path);
}

/* Copies the file src to dst. */
static inline void fuzz_copy(const char *src, const char *dst)
{
    io_map m;
    if (io_map_open(src, &m) != STEER_OK) fuzz_fail("cannot read", src);
    fuzz_write(dst, m.data, m.size);
    io_map_close(&m);
}

/* The error contract after a call that returned rc: STEER_OK, or a STEER_E*
 * code with a non-empty single-line message containing needle (the path the
 * caller passed, so the message names the file). */
static inline void fuzz_check_error(int rc, const char *needle)
{
    if (rc == STEER_OK) return;
    static int verbose = -1; /* FUZZ_VERBOSE=1: print every failure's message */
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "rc %d: %s\n", rc, steer_last_error());
    if (rc < STEER_ECONTEXT || rc > STEER_EIO) fuzz_fail("status is not a STEER_E* code", steer_last_error());
    const char *msg = steer_last_error();
    if (!msg || !*msg) fuzz_fail("failure without a message", NULL);
    if (strchr(msg, '\n') || strchr(msg, '\r')) fuzz_fail("message is not one line", msg);
    if (needle && !strstr(msg, needle)) fuzz_fail("message does not name the file", msg);
}

/* Reads every byte of p[n] (so AddressSanitizer checks the range) and returns
 * a checksum the caller can use, so the reads are not optimised away. */
static inline unsigned fuzz_touch(const void *p, size_t n)
{
    const volatile uint8_t *b = (const volatile uint8_t *)p;
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) s = s * 31u + b[i];
    return s;
}

/* A NUL-terminated copy of data[size] (caller frees). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) fuzz_fail("out of memory", NULL);
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* Sample texts the tokenizer harnesses encode: ASCII, whitespace runs,
 * special-token spellings, multi-byte UTF-8 and invalid UTF-8. */
static const char *const fuzz_texts[] = {
    "Once upon a time, there was a cat.",
    "",
    "  \t\n  leading and trailing  \n",
    "<s>hello</s><unk><|im_start|>user\n<|endoftext|>",
    "caf\xc3\xa9 \xe6\xbc\xa2\xe5\xad\x97 \xf0\x9f\x99\x82 \xe2\x96\x81x",
    "bad utf-8: \xff\xfe \xc3 \xe2\x82 \xed\xa0\x80 end",
    "1234567890 !!!??? 'll 've 're",
};
#define FUZZ_N_TEXTS ((int)(sizeof fuzz_texts / sizeof fuzz_texts[0]))

/* Encodes every sample text with and without BOS / special-token parsing
 * and decodes each token back: ids in [0, n_vocab), counts consistent. */
static inline unsigned fuzz_exercise_tokenizer(const tokenizer *t)
{
    enum { CAP = 1024 };
    static int ids[CAP];
    unsigned sum = 0;
    int nv = tok_n_vocab(t);
    if (nv <= 0) fuzz_fail("tokenizer without tokens", NULL);
    for (int i = 0; i < FUZZ_N_TEXTS; i++) {
        for (int flags = 0; flags < 4; flags++) {
            int n = -1;
            int rc = tok_encode_ex(t, fuzz_texts[i], flags, ids, CAP, &n);
            fuzz_check_error(rc, NULL);
            if (rc != STEER_OK) continue;
            if (n < 0 || n > CAP) fuzz_fail("token count out of range", fuzz_texts[i]);
            int prev = -1;
            for (int k = 0; k < n; k++) {
                if (ids[k] < 0 || ids[k] >= nv) fuzz_fail("token id out of range", fuzz_texts[i]);
                size_t len = 0;
                const char *piece = tok_piece(t, prev, ids[k], &len);
                if (!piece) fuzz_fail("no piece for a token the encoder produced", fuzz_texts[i]);
                sum += fuzz_touch(piece, len);
                prev = ids[k];
            }
        }
    }
    for (int id = 0; id < nv && id < 4096; id++) {
        size_t len = 0;
        const char *piece = tok_piece(t, -1, id, &len);
        if (piece) sum += fuzz_touch(piece, len);
    }
    const char *tmpl = tok_chat_template(t);
    if (tmpl) sum += fuzz_touch(tmpl, strlen(tmpl));
    sum += (unsigned)tok_bos(t) + (unsigned)tok_eos(t) + (unsigned)tok_add_bos(t);
    return sum;
}

/* After a model loaded: its tokenizer, chat formatting and a two-token
 * forward pass in a 4-position context. */
static inline unsigned fuzz_exercise_model(steer_model *m)
{
    const steer_model_config *c = steer_model_get_config(m);
    if (c->n_layer <= 0 || c->d_model <= 0 || c->n_vocab <= 0) fuzz_fail("loaded model with empty sizes", NULL);
    unsigned sum = 0;
    static int ids[256];
    int n = 0;
    int rc = steer_tokenize_ex(m, fuzz_texts[0], STEER_TOK_ADD_BOS, ids, 256, &n);
    fuzz_check_error(rc, NULL);
    steer_chat_msg msgs[3] = {{"system", "Be brief."}, {"user", "Hi <s> there"}, {"assistant", "Hello."}};
    char *chat = NULL;
    rc = steer_chat_format(m, msgs, 3, 1, &chat);
    fuzz_check_error(rc, NULL);
    if (rc == STEER_OK) {
        if (!chat) fuzz_fail("chat format succeeded without text", NULL);
        sum += fuzz_touch(chat, strlen(chat));
        free(chat);
    }
    steer_ctx_params cp = steer_ctx_default_params();
    cp.n_ctx = 4;
    cp.n_threads = 1;
    steer_ctx *ctx = NULL;
    rc = steer_ctx_new(m, &cp, &ctx);
    fuzz_check_error(rc, NULL);
    if (rc == STEER_OK) {
        int toks[2] = {0, c->n_vocab - 1};
        rc = steer_forward_tokens(ctx, toks, 2, 0, 0);
        fuzz_check_error(rc, NULL);
        if (rc == STEER_OK) {
            const float *lg = steer_ctx_logits(ctx, 1);
            if (!lg) fuzz_fail("no logits after eval", NULL);
            sum += fuzz_touch(lg, (size_t)c->n_vocab * sizeof *lg);
        }
        steer_ctx_free(ctx);
    }
    return sum;
}

/* ---------------------------------------------------------------- entry points */

#ifdef FUZZ_NO_ENTRY
#define FUZZ_ENTRY(fn)
#elif defined(FUZZ_STANDALONE)
/* Replays each FILE, or every file of each DIR, through fn. */
#define FUZZ_ENTRY(fn)                                                                                     \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fn(data, size); }               \
    static void fuzz_replay_file(const char *p)                                                            \
    {                                                                                                      \
        io_map m;                                                                                          \
        if (io_map_open(p, &m) != STEER_OK) fuzz_fail("cannot read", p);                                   \
        uint8_t *copy = malloc(m.size ? m.size : 1);                                                       \
        if (m.size) memcpy(copy, m.data, m.size);                                                          \
        io_map_close(&m);                                                                                  \
        fn(copy, m.size);                                                                                  \
        free(copy);                                                                                        \
    }                                                                                                      \
    int main(int argc, char **argv)                                                                        \
    {                                                                                                      \
        int n = 0;                                                                                         \
        for (int i = 1; i < argc; i++) {                                                                   \
            struct stat st;                                                                                \
            DIR *d = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? opendir(argv[i]) : NULL;             \
            if (!d) { fuzz_replay_file(argv[i]); n++; continue; }                                          \
            struct dirent *e;                                                                              \
            while ((e = readdir(d))) {                                                                     \
                char p[4096];                                                                              \
                snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);                                        \
                if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) { fuzz_replay_file(p); n++; }                \
            }                                                                                              \
            closedir(d);                                                                                   \
        }                                                                                                  \
        printf("%d inputs replayed\n", n);                                                                 \
        return 0;                                                                                          \
    }
#else
#define FUZZ_ENTRY(fn)                                                                                     \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);                                          \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fn(data, size); }
#endif

#endif /* STEER_FUZZ_UTIL_H */

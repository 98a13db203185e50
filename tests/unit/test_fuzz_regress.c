/*
 * test_fuzz_regress.c — replays the fuzz corpus through the parser harnesses
 * in every build (Release and the ASan/UBSan build of scripts/test.sh), so
 * inputs that once crashed stay fixed without clang or libFuzzer:
 * every file of tests/fuzz/corpus/NAME (seeds) and tests/fuzz/regress/NAME (inputs
 * the fuzzer found, one per fixed bug). Each harness aborts when the library
 * breaks its contract on an input (a crash, a message that is not one line or
 * does not name the file, a save/load round trip that changes data), see
 * tests/fuzz/fuzz_util.h.
 * Then the fixed bugs once more with their exact messages (docs/ROBUSTNESS.md).
 */
#define FUZZ_NO_ENTRY
#include "fuzz/fuzz_gguf.c"
#include "fuzz/fuzz_hf.c"
#include "fuzz/fuzz_jsonl.c"
#include "fuzz/fuzz_llama2c.c"
#include "fuzz/fuzz_safetensors.c"
#include "fuzz/fuzz_spm.c"
#include "fuzz/fuzz_tokbin.c"
#include "fuzz/fuzz_tokjson.c"
#include "fuzz/fuzz_vectors.c"

#include "test_util.h"

#define FUZZ_ROOT STEER_TESTDATA_DIR "/../fuzz"

typedef struct {
    const char *name;
    int (*one)(const uint8_t *, size_t);
} harness;

static const harness harnesses[] = {
    {"gguf", fuzz_gguf_one},       {"hf", fuzz_hf_one},   {"jsonl", fuzz_jsonl_one},
    {"llama2c", fuzz_llama2c_one}, {"safetensors", fuzz_safetensors_one},
    {"spm", fuzz_spm_one},         {"tokbin", fuzz_tokbin_one}, {"tokjson", fuzz_tokjson_one},
    {"vectors", fuzz_vectors_one},
};

/* Runs every regular file of dir through h; returns how many (0 if no dir). */
static int replay_dir(const harness *h, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        size_t size;
        uint8_t *data = tu_read_file(p, &size);
        h->one(data, size);
        free(data);
        n++;
    }
    closedir(d);
    return n;
}

/* rc and message of a failing call: code, and the message contains want. */
static void check_message(const char *what, int rc, int want_rc, const char *want)
{
    const char *msg = steer_last_error();
    printf("%-44s rc %d: %s\n", what, rc, rc ? msg : "(ok)");
    CHECK(rc == want_rc, "%s: rc %d, expected %d", what, rc, want_rc);
    CHECK(rc == STEER_OK || strstr(msg, want), "%s: message lacks '%s'", what, want);
    CHECK(rc == STEER_OK || !strchr(msg, '\n'), "%s: message has a newline", what);
}

int main(void)
{
    for (size_t i = 0; i < sizeof harnesses / sizeof harnesses[0]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/corpus/%s", FUZZ_ROOT, harnesses[i].name);
        int nc = replay_dir(&harnesses[i], dir);
        snprintf(dir, sizeof dir, "%s/regress/%s", FUZZ_ROOT, harnesses[i].name);
        int nr = replay_dir(&harnesses[i], dir);
        printf("fuzz_%-12s %4d corpus + %2d regression inputs replayed\n", harnesses[i].name, nc, nr);
        CHECK(nc > 0, "no corpus for fuzz_%s", harnesses[i].name);
    }

    /* Bug 1 (fuzz_gguf): a key name holding a newline made a two-line
     * message; steer_err now writes control characters as \n, \xHH. */
    char path[600];
    fuzz_path(path, sizeof path, "newline_key.gguf");
    {
        /* GGUF v3, 0 tensors, 1 key "a\nb" of type u32 (4) truncated */
        static const uint8_t g[] = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                                    3, 0, 0, 0, 0, 0, 0, 0, 'a', '\n', 'b', 4, 0, 0, 0, 7};
        fuzz_write(path, g, sizeof g);
        steer_model *m = NULL;
        check_message("GGUF key name with a newline", steer_model_load(path, NULL, &m), STEER_EFORMAT,
                      "truncated in key/value 0 (a\\nb)");
    }

    /* Bug 2 (fuzz_hf): a weight_map entry that is not a string was reported
     * after the index JSON was freed (heap use-after-free under ASan). */
    fuzz_hf_fixture();
    {
        char p[700];
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", fuzz_hf_sharded);
        const char *idx = "{\"weight_map\": {\"model.norm.weight\": 3}}";
        fuzz_write(p, idx, strlen(idx));
        snprintf(p, sizeof p, "%s/config.json", fuzz_hf_single);
        char q[700];
        snprintf(q, sizeof q, "%s/config.json", fuzz_hf_sharded);
        size_t n;
        char *cfg = tu_read_file(FUZZ_ROOT "/corpus/hf/llama_fixture.json", &n);
        fuzz_write(q, cfg, n);
        free(cfg);
        steer_model *m = NULL;
        check_message("index entry that is not a file name", steer_model_load(fuzz_hf_sharded, NULL, &m),
                      STEER_EFORMAT, "weight_map entry 'model.norm.weight' is not a file name");
    }

    /* Bug 3 (fuzz_vectors): a safetensors header with bytes that are not
     * UTF-8 loaded, and the set could not be saved back (with a message
     * naming no file); the reader now rejects it. */
    {
        size_t n;
        uint8_t *data = tu_read_file(FUZZ_ROOT "/regress/vectors/metadata_not_utf8", &n);
        fuzz_path(path, sizeof path, "not_utf8.safetensors");
        fuzz_write(path, data, n);
        free(data);
        steer_vecset *vs = NULL;
        check_message("vector file header not UTF-8", steer_vecset_load(path, &vs), STEER_EFORMAT,
                      "not_utf8.safetensors: header is not valid UTF-8");
        steer_tensors *t = NULL;
        check_message("safetensors header not UTF-8", steer_tensors_open(path, &t), STEER_EFORMAT,
                      "header is not valid UTF-8");
    }
    /* Bug 4 (fuzz_hf): "vocab_size": 2.6e18 was converted to int, and a huge
     * rope_scaling factor to float (undefined behaviour, UBSan). */
    {
        size_t n;
        char *cfg = tu_read_file(FUZZ_ROOT "/corpus/hf/llama_fixture.json", &n);
        char p[700], *buf = malloc(n + 200);
        snprintf(p, sizeof p, "%s/config.json", fuzz_hf_single);
        const char *at = strstr(cfg, "\"vocab_size\"");
        CHECK(at != NULL, "fixture config has vocab_size");
        int k = snprintf(buf, n + 200, "%.*s\"vocab_size\": 2592222222222222222, \"vocab_size_was\"%s",
                         (int)(at - cfg), cfg, at + strlen("\"vocab_size\""));
        fuzz_write(p, buf, (size_t)k);
        steer_model *m = NULL;
        check_message("config.json vocab_size beyond int", steer_model_load(fuzz_hf_single, NULL, &m), STEER_EFORMAT,
                      "config.json: field 'vocab_size' = 2.59222e+18 is out of range");
        const char *end = strrchr(cfg, '}');
        k = snprintf(buf, n + 200, "%.*s, \"rope_scaling\": {\"type\": \"linear\", \"factor\": 1e300}}", (int)(end - cfg),
                     cfg);
        char *rs = strstr(buf, "\"rope_scaling\":\tnull,");
        if (rs) memcpy(rs, "\"rope_scalinX\"", 14); /* the fixture's own null entry, renamed */
        fuzz_write(p, buf, (size_t)k);
        check_message("rope_scaling factor 1e300", steer_model_load(fuzz_hf_single, NULL, &m), STEER_EFORMAT,
                      "rope_scaling factor 1e+300 must be positive and finite");
        free(buf);
        free(cfg);
    }
    return tu_finish("test_fuzz_regress");
}

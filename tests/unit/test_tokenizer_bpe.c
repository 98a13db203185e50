/* test_tokenizer_bpe.c — byte-level BPE (GPT-2 GGUF and tokenizer.json),
 * SentencePiece-style vocabularies from Hugging Face files (Phi-3
 * tokenizer.json, tok512 tokenizer.model), special-token parsing, the
 * writers (GGUF, tokenizer.json, llama2.c tokenizer.bin) read back to the
 * same ids, and unsupported/corrupt tokenizer files. Golden ids are
 * llama.cpp's test vectors (Hugging Face tokenizers output). */
#include "model.h"
#include "data.h"
#include "test_util.h"
#include "tok_cases.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOK512_BIN STEER_MODELS_DIR "/stories260K/tok512.bin"
#define TOK512_MODEL STEER_MODELS_DIR "/stories260K/tok512.model"
#define TOKDIR STEER_TESTDATA_DIR "/tokenizers"
#define GPT2_GGUF TOKDIR "/ggml-vocab-gpt-2.gguf"
#define PHI3_GGUF TOKDIR "/ggml-vocab-phi-3.gguf"
#define SPM_GGUF TOKDIR "/ggml-vocab-llama-spm.gguf"
#define HF_GPT2 TOKDIR "/hf/gpt2"
#define HF_PHI3 TOKDIR "/hf/phi-3-mini-4k-instruct"

/* Defined in tokenizer.c, not yet declared in internal.h. */
int tok_add_bos(const tokenizer *t);

static char tmpdir[64];

/* ---------------------------------------------------------------- helpers */




/* Encodes every .inp string (flags) and compares with the .out lines. Returns
 * the number of matching cases. */
static int compare_cases(const char *what, const tokenizer *t, const char *inp, const char *outp, int flags)
{
    int ni, no;
    char **in = read_inputs(inp, &ni);
    id_line *out = read_outputs(outp, &no);
    CHECK(ni == no && ni == 46, "%s: %d inputs vs %d output lines", what, ni, no);
    int nmatch = 0, n = ni < no ? ni : no, cap = 4096;
    long ntok = 0;
    int *ids = malloc((size_t)cap * sizeof *ids);
    for (int i = 0; i < n; i++) {
        int nt = 0;
        int rc = tok_encode_ex(t, in[i], flags, ids, cap, &nt);
        CHECK(rc == STEER_OK, "%s case %d: encode failed: %s", what, i, steer_last_error());
        int same = rc == STEER_OK && nt == out[i].n && memcmp(ids, out[i].ids, (size_t)nt * sizeof *ids) == 0;
        nmatch += same;
        ntok += nt;
        if (!same) {
            fprintf(stderr, "MISMATCH %s case %d: input ", what, i);
            print_escaped(stderr, in[i]);
            fprintf(stderr, "\n  expected:");
            print_ids(stderr, out[i].ids, out[i].n);
            fprintf(stderr, "  got:     ");
            print_ids(stderr, ids, nt);
        }
    }
    printf("%-60s %d/%d cases match (%ld ids)\n", what, nmatch, n, ntok);
    CHECK(nmatch == 46, "%s: %d/46 cases match", what, nmatch);
    free(ids);
    free_inputs(in, ni);
    free_outputs(out, no);
    return nmatch;
}

/* Texts for comparing two tokenizers: the 46 test strings, every Winogrande
 * dev sentence, and random byte strings. */
typedef struct {
    char **s;
    int n;
} text_set;

static text_set load_texts(void)
{
    text_set ts = {0};
    int ni;
    char **in = read_inputs(TOKDIR "/tok512.inp", &ni);
    int cap = ni + 1267 + 500;
    ts.s = malloc((size_t)cap * sizeof *ts.s);
    for (int i = 0; i < ni; i++) ts.s[ts.n++] = in[i];
    free(in);
    char *buf = tu_read_file(STEER_TESTDATA_DIR "/winogrande/dev.jsonl", NULL);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "sentence");
        if (cJSON_IsString(s) && ts.n < cap) ts.s[ts.n++] = strdup(s->valuestring);
        cJSON_Delete(j);
    }
    free(buf);
    static const unsigned char alphabet[] = {' ', ' ', ' ', 'a', 'e', 't', 'h', 'T', '.', '\n', '\t', '0', '<',
                                             's', '>', '\'', '1', 0x80, 0x96, 0x81, 0xBF, 0xC3, 0xA9, 0xE2, 0xE4,
                                             0xB8, 0xF0, 0x9F, 0xFF, 0xC0};
    uint64_t r = 777;
    while (ts.n < cap) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int len = (int)((r >> 33) % 80);
        char *s = malloc((size_t)len + 1);
        for (int k = 0; k < len; k++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            s[k] = (char)alphabet[(r >> 33) % sizeof alphabet];
        }
        s[len] = 0;
        ts.s[ts.n++] = s;
    }
    return ts;
}

static void free_texts(text_set *ts)
{
    for (int i = 0; i < ts->n; i++) free(ts->s[i]);
    free(ts->s);
}

/* Both tokenizers give the same ids (flags) on every text. */
static void compare_tokenizers(const char *what, const tokenizer *a, const tokenizer *b, const text_set *ts, int flags)
{
    int cap = 8192, same = 0, nbad = 0;
    long ntok = 0;
    int *ia = malloc((size_t)cap * sizeof *ia), *ib = malloc((size_t)cap * sizeof *ib);
    for (int i = 0; i < ts->n; i++) {
        int na = 0, nb = 0;
        int ra = tok_encode_ex(a, ts->s[i], flags, ia, cap, &na);
        int rb = tok_encode_ex(b, ts->s[i], flags, ib, cap, &nb);
        int ok = ra == STEER_OK && rb == STEER_OK && na == nb && memcmp(ia, ib, (size_t)na * sizeof *ia) == 0;
        same += ok;
        ntok += na;
        if (!ok && nbad++ < 3) {
            fprintf(stderr, "DIFFER %s text %d (rc %d/%d): ", what, i, ra, rb);
            print_escaped(stderr, ts->s[i]);
            fprintf(stderr, "\n  a:");
            print_ids(stderr, ia, na);
            fprintf(stderr, "  b:");
            print_ids(stderr, ib, nb);
        }
    }
    printf("%-60s %d/%d texts give the same ids (%ld ids)\n", what, same, ts->n, ntok);
    CHECK(same == ts->n, "%s: %d of %d texts differ", what, ts->n - same, ts->n);
    free(ia);
    free(ib);
}

/* Encodes (flags), decodes piece by piece, compares with the text. */
static int round_trip(const tokenizer *t, const char *text, int flags)
{
    int cap = 8192, nt = 0;
    int *ids = malloc((size_t)cap * sizeof *ids);
    char *dec = malloc(65536);
    int ok = tok_encode_ex(t, text, flags, ids, cap, &nt) == STEER_OK;
    size_t dl = 0;
    int start = (flags & STEER_TOK_ADD_BOS) && tok_bos(t) >= 0;
    if (start && (nt < 1 || ids[0] != tok_bos(t))) ok = 0;
    for (int i = start; i < nt && ok; i++) {
        size_t len;
        const char *p = tok_piece(t, i > 0 ? ids[i - 1] : -1, ids[i], &len);
        if (!p || dl + len >= 65536) { ok = 0; break; }
        memcpy(dec + dl, p, len);
        dl += len;
    }
    ok = ok && dl == strlen(text) && memcmp(dec, text, dl) == 0;
    free(ids);
    free(dec);
    return ok;
}

static void test_round_trips(const char *what, const tokenizer *t, const text_set *ts, int flags)
{
    int ok = 0, nbad = 0;
    for (int i = 0; i < ts->n; i++) {
        int good = round_trip(t, ts->s[i], flags);
        ok += good;
        if (!good && nbad++ < 3) {
            fprintf(stderr, "ROUND TRIP %s text %d: ", what, i);
            print_escaped(stderr, ts->s[i]);
            fputc('\n', stderr);
        }
    }
    printf("%-60s %d/%d texts round-trip\n", what, ok, ts->n);
    CHECK(ok == ts->n, "%s: %d of %d texts do not round-trip", what, ts->n - ok, ts->n);
}

static void expect_ids(const char *what, const tokenizer *t, const char *text, int flags, const int *want, int nwant)
{
    int ids[256], nt = 0;
    int rc = tok_encode_ex(t, text, flags, ids, 256, &nt);
    int same = rc == STEER_OK && nt == nwant && (nt == 0 || memcmp(ids, want, (size_t)nt * sizeof *ids) == 0);
    printf("%-60s", what);
    print_ids(stdout, ids, nt);
    if (!same) {
        fprintf(stderr, "  rc %d %s\n  expected:", rc, rc ? steer_last_error() : "");
        print_ids(stderr, want, nwant);
    }
    CHECK(same, "%s", what);
}

static tokenizer *load_gguf_tok(const char *path)
{
    gg_file *f = NULL;
    tokenizer *t = NULL;
    CHECK_OK(gg_open(path, &f));
    int rc = tok_load_gguf(f, &t);
    gg_close(f);
    CHECK(rc == STEER_OK, "tok_load_gguf %s: %s", path, steer_last_error());
    if (rc) exit(1);
    return t;
}

static tokenizer *load_hf_tok(const char *dir)
{
    tokenizer *t = NULL;
    int rc = tok_load_hf(dir, &t);
    CHECK(rc == STEER_OK, "tok_load_hf %s: %s", dir, steer_last_error());
    if (rc) exit(1);
    return t;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "FAIL: cannot write %s\n", path); exit(1); }
    fputs(text, f);
    fclose(f);
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    char *b = tu_read_file(from, &n);
    FILE *f = fopen(to, "wb");
    if (!f || fwrite(b, 1, n, f) != n) { fprintf(stderr, "FAIL: cannot write %s\n", to); exit(1); }
    fclose(f);
    free(b);
}

static void rm_dir(const char *dir)
{
    static const char *const names[] = {"tokenizer.json", "tokenizer_config.json", "tokenizer.model"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* ---------------------------------------------------------------- byte-level */

static void test_gpt2(const text_set *ts)
{
    tokenizer *g = load_gguf_tok(GPT2_GGUF);
    printf("%-60s n_vocab %d bos %d eos %d\n", "ggml-vocab-gpt-2.gguf", tok_n_vocab(g), tok_bos(g), tok_eos(g));
    CHECK(tok_n_vocab(g) == 50257 && tok_bos(g) == 50256 && tok_eos(g) == 50256, "gpt-2 gguf ids");
    compare_cases("gpt-2 GGUF vs ggml-vocab-gpt-2.gguf.out", g, GPT2_GGUF ".inp", GPT2_GGUF ".out", 0);

    tokenizer *h = load_hf_tok(HF_GPT2);
    printf("%-60s n_vocab %d bos %d eos %d\n", "hf/gpt2 tokenizer.json", tok_n_vocab(h), tok_bos(h), tok_eos(h));
    CHECK(tok_n_vocab(h) == 50257 && tok_bos(h) == 50256 && tok_eos(h) == 50256, "gpt-2 json ids");
    compare_cases("gpt-2 tokenizer.json vs ggml-vocab-gpt-2.gguf.out", h, GPT2_GGUF ".inp", GPT2_GGUF ".out", 0);
    compare_tokenizers("gpt-2 tokenizer.json vs GGUF", g, h, ts, 0);
    test_round_trips("gpt-2 GGUF round trips (46 + winogrande + random bytes)", g, ts, 0);
    test_round_trips("gpt-2 GGUF round trips with BOS", g, ts, STEER_TOK_ADD_BOS);

    /* Known ids. */
    static const int hello[] = {15496, 995};
    expect_ids("gpt-2 \"Hello world\"", g, "Hello world", 0, hello, 2);
    static const int eot[] = {15496, 50256, 6894};
    expect_ids("gpt-2 \"Hello<|endoftext|>world\" parse_special", g, "Hello<|endoftext|>world",
               STEER_TOK_PARSE_SPECIAL, eot, 3);
    static const int eot_text[] = {15496, 27, 91, 437, 1659, 5239, 91, 29, 6894};
    expect_ids("gpt-2 \"Hello<|endoftext|>world\" as text", g, "Hello<|endoftext|>world", 0, eot_text, 9);
    expect_ids("gpt-2 \"Hello<|endoftext|>world\" as text (json)", h, "Hello<|endoftext|>world", 0, eot_text, 9);
    static const int bos_hello[] = {50256, 15496, 995};
    expect_ids("gpt-2 \"Hello world\" + BOS", g, "Hello world", STEER_TOK_ADD_BOS, bos_hello, 3);
    printf("%-60s add_bos %d (json) %d (gguf)\n", "gpt-2 configured add_bos_token", tok_add_bos(h), tok_add_bos(g));
    CHECK(tok_add_bos(h) == 0 && tok_add_bos(g) == 0, "gpt-2 add_bos_token");

    /* Pieces map the byte alphabet back to bytes. */
    size_t len;
    const char *p = tok_piece(g, -1, 262, &len); /* "Ġthe" */
    CHECK(p && len == 4 && memcmp(p, " the", 4) == 0, "piece 262 = \" the\"");
    p = tok_piece(g, 50256, 198, &len); /* "Ċ" after BOS: no space dropping */
    CHECK(p && len == 1 && p[0] == '\n', "piece 198 = \"\\n\"");
    p = tok_piece(g, 50256, 220, &len);
    CHECK(p && len == 1 && p[0] == ' ', "piece 220 = \" \" after BOS");
    p = tok_piece(g, -1, 50256, &len);
    CHECK(p && len == 13 && memcmp(p, "<|endoftext|>", 13) == 0, "piece 50256");
    int idt = tok_piece_id(g, "\xc4\xa0the"), ide = tok_piece_id(g, "<|endoftext|>"), idx = tok_piece_id(g, "xyzzy!");
    printf("%-60s Ġthe %d <|endoftext|> %d xyzzy! %d\n", "gpt-2 tok_piece_id", idt, ide, idx);
    CHECK(idt == 262 && ide == 50256 && idx == -1, "tok_piece_id");
    CHECK(tok_chat_template(g) == NULL, "gpt-2 has no chat template");

    /* Writers: GGUF and tokenizer.json read back to the same ids. */
    char path[256], dir[256];
    snprintf(path, sizeof path, "%s/gpt2.gguf", tmpdir);
    gg_writer *w = NULL;
    CHECK_OK(gg_writer_new(&w));
    CHECK_OK(gg_writer_set_str(w, "general.architecture", "gpt2"));
    CHECK_OK(tok_write_gguf(h, w));
    CHECK_OK(gg_writer_write(w, path));
    gg_writer_free(w);
    tokenizer *g2 = load_gguf_tok(path);
    compare_tokenizers("gpt-2 json -> tok_write_gguf -> load vs GGUF", g, g2, ts, STEER_TOK_PARSE_SPECIAL);
    tok_free(g2);
    unlink(path);
    snprintf(dir, sizeof dir, "%s/gpt2-hf", tmpdir);
    CHECK_OK(tok_write_hf(g, dir));
    tokenizer *h2 = load_hf_tok(dir);
    printf("%-60s n_vocab %d bos %d eos %d\n", "gpt-2 GGUF -> tok_write_hf -> load", tok_n_vocab(h2), tok_bos(h2),
           tok_eos(h2));
    CHECK(tok_n_vocab(h2) == 50257 && tok_bos(h2) == 50256 && tok_eos(h2) == 50256, "written json ids");
    compare_tokenizers("gpt-2 GGUF -> tok_write_hf -> load vs GGUF", g, h2, ts, STEER_TOK_PARSE_SPECIAL);
    tok_free(h2);
    rm_dir(dir);
    int rc = tok_write_llama2c(g, path);
    printf("%-60s rc %d: %s\n", "tok_write_llama2c of a byte-level vocab", rc, steer_last_error());
    CHECK(rc == STEER_EUNSUPPORTED, "llama2c writer must refuse byte-level vocabularies");
    tok_free(g);
    tok_free(h);
}

/* A byte-level tokenizer.json with the Llama 3 / Qwen2 split regexes and
 * ignore_merges, built on the GPT-2 vocabulary (no merges): checks the
 * pre-tokenizer splits word by word. */
static void test_regex_variants(void)
{
    static const struct {
        const char *name, *regex;
        const char *text;
        const char *const want[12];
    } cases[] = {
        {"gpt-2", "'s|'t|'re|'ve|'m|'ll|'d| ?\\\\p{L}+| ?\\\\p{N}+| ?[^\\\\s\\\\p{L}\\\\p{N}]+|\\\\s+(?!\\\\S)|\\\\s+",
         "Hello  world's 12345!\n\n x",
         {"Hello", " ", " world", "'s", " 12345", "!", "\n\n", " x", NULL}},
        {"llama3",
         "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|"
         "\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+",
         "Hello world'S 12345!\n\n x",
         {"Hello", " world", "'S", " ", "123", "45", "!\n\n", " x", NULL}},
        {"qwen2",
         "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|"
         "\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+",
         "Hi 123 ,x",
         {"Hi", " ", "1", "2", "3", " ,", "x", NULL}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        /* vocabulary: the 256 byte pieces plus each expected word, no merges,
         * ignore_merges: every pre-tokenized word comes out as one id. */
        char dir[256], path[300];
        snprintf(dir, sizeof dir, "%s/re-%s", tmpdir, cases[c].name);
        mkdir(dir, 0777);
        size_t cap = 1 << 16, n = 0;
        char *j = malloc(cap);
        n += (size_t)snprintf(j + n, cap - n,
                              "{\"added_tokens\":[],\"normalizer\":{\"type\":\"NFC\"},\"pre_tokenizer\":{\"type\":"
                              "\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"%s\"},"
                              "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_"
                              "space\":false,\"trim_offsets\":true,\"use_regex\":false}]},\"model\":{\"type\":\"BPE\","
                              "\"ignore_merges\":true,\"merges\":[],\"vocab\":{",
                              cases[c].regex);
        for (int b = 0; b < 256; b++) {
            char u[8];
            uint32_t cp = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE ? (uint32_t)b
                          : b <= 0x20 ? 0x100u + (uint32_t)b : b <= 0xA0 ? 0x121u + (uint32_t)(b - 0x7F) : 0x143u;
            int l = cp < 0x80 ? (u[0] = (char)cp, 1) : (u[0] = (char)(0xC0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3F)), 2);
            u[l] = 0;
            if (cp == '"' || cp == '\\') n += (size_t)snprintf(j + n, cap - n, "\"\\%s\":%d,", u, b);
            else n += (size_t)snprintf(j + n, cap - n, "\"%s\":%d,", u, b);
        }
        int nw = 0;
        for (; cases[c].want[nw]; nw++) {
            n += (size_t)snprintf(j + n, cap - n, "\"");
            for (const unsigned char *s = (const unsigned char *)cases[c].want[nw]; *s; s++) {
                /* the word in the byte alphabet: ' ' -> Ġ (U+0120), '\n' -> Ċ (U+010A) */
                if (*s == ' ') n += (size_t)snprintf(j + n, cap - n, "\xc4\xa0");
                else if (*s == '\n') n += (size_t)snprintf(j + n, cap - n, "\xc4\x8a");
                else n += (size_t)snprintf(j + n, cap - n, "%c", *s);
            }
            n += (size_t)snprintf(j + n, cap - n, "\":%d%s", 256 + nw, cases[c].want[nw + 1] ? "," : "");
        }
        n += (size_t)snprintf(j + n, cap - n, "}}}");
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        write_text(path, j);
        free(j);
        tokenizer *t = load_hf_tok(dir);
        int want[12];
        for (int k = 0; k < nw; k++) want[k] = 256 + k;
        char label[128];
        snprintf(label, sizeof label, "%s split regex (PCRE2) word ids", cases[c].name);
        expect_ids(label, t, cases[c].text, 0, want, nw);
        tok_free(t);
        rm_dir(dir);
    }
}

/* ---------------------------------------------------------------- SentencePiece-style */

/* A tokenizer.json with Hugging Face's Metaspace pre-tokenizer (prepend_scheme
 * "first", split): "▁" only before text at the start that does not begin with
 * a space, and no merge across a "▁". */
static void test_metaspace(void)
{
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/metaspace", tmpdir);
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    for (int split = 1; split >= 0; split--) {
        char j[4096];
        snprintf(j, sizeof j,
                 "{\"added_tokens\": [{\"id\": 20, \"content\": \"<s>\", \"special\": true}],"
                 "\"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"▁\", "
                 "\"prepend_scheme\": \"first\", \"split\": %s}, \"model\": {\"type\": \"BPE\", "
                 "\"byte_fallback\": false, \"unk_token\": null, \"vocab\": {\"▁\": 0, \"H\": 1, \"e\": 2, "
                 "\"y\": 3, \"f\": 4, \"r\": 5, \"i\": 6, \"n\": 7, \"d\": 8, \"!\": 9, \"▁H\": 10, "
                 "\"▁He\": 11, \"▁Hey\": 12, \"▁f\": 13, \"▁fr\": 14, \"▁fri\": 15, \"▁frie\": 16, "
                 "\"▁frien\": 17, \"▁friend\": 18, \"▁▁\": 19, \"<s>\": 20}, \"merges\": [\"▁ ▁\", "
                 "\"▁ H\", \"▁H e\", \"▁He y\", \"▁ f\", \"▁f r\", \"▁fr i\", \"▁fri e\", \"▁frie n\", "
                 "\"▁frien d\"]}}",
                 split ? "true" : "false");
        write_text(path, j);
        tokenizer *t = load_hf_tok(dir);
        if (split) {
            static const int w1[] = {12, 0, 18, 9};
            expect_ids("Metaspace(first, split) \"Hey  friend!\"", t, "Hey  friend!", 0, w1, 4);
            static const int w2[] = {12};
            expect_ids("Metaspace(first, split) \" Hey\": no second ▁", t, " Hey", 0, w2, 1);
            static const int w3[] = {20, 1, 2, 3, 20, 1, 2, 3};
            expect_ids("Metaspace(first) \"<s>Hey<s>Hey\": ▁ only at offset 0", t, "<s>Hey<s>Hey",
                       STEER_TOK_PARSE_SPECIAL, w3, 8);
            static const int w4[] = {12, 20, 1, 2, 3};
            expect_ids("Metaspace(first) \"Hey<s>Hey\"", t, "Hey<s>Hey", STEER_TOK_PARSE_SPECIAL, w4, 5);
            char d2[256];
            snprintf(d2, sizeof d2, "%s/metaspace-out", tmpdir);
            CHECK_OK(tok_write_hf(t, d2));
            tokenizer *t2 = load_hf_tok(d2);
            expect_ids("  ... tok_write_hf -> load: \"Hey  friend!\"", t2, "Hey  friend!", 0, w1, 4);
            expect_ids("  ... tok_write_hf -> load: \"<s>Hey<s>Hey\"", t2, "<s>Hey<s>Hey", STEER_TOK_PARSE_SPECIAL, w3, 8);
            tok_free(t2);
            rm_dir(d2);
        } else {
            static const int w1[] = {12, 19, 4, 5, 6, 2, 7, 8, 9};
            expect_ids("Metaspace(first, no split) \"Hey  friend!\": ▁▁ merged", t, "Hey  friend!", 0, w1, 9);
        }
        tok_free(t);
    }
    rm_dir(dir);
}

static void test_phi3(const text_set *ts)
{
    tokenizer *g = load_gguf_tok(PHI3_GGUF);
    compare_cases("phi-3 GGUF vs ggml-vocab-phi-3.gguf.out", g, PHI3_GGUF ".inp", PHI3_GGUF ".out", 0);
    tokenizer *h = load_hf_tok(HF_PHI3);
    printf("%-60s n_vocab %d bos %d eos %d add_bos %d\n", "hf/phi-3 tokenizer.json", tok_n_vocab(h), tok_bos(h),
           tok_eos(h), tok_add_bos(h));
    CHECK(tok_n_vocab(h) == 32011 && tok_bos(h) == 1 && tok_eos(h) == 32000 && tok_add_bos(h) == 0, "phi-3 json ids");
    compare_cases("phi-3 tokenizer.json vs ggml-vocab-phi-3.gguf.out", h, PHI3_GGUF ".inp", PHI3_GGUF ".out", 0);
    compare_tokenizers("phi-3 tokenizer.json vs GGUF", g, h, ts, 0);
    test_round_trips("phi-3 tokenizer.json round trips with BOS", h, ts, STEER_TOK_ADD_BOS);
    const char *tmpl = tok_chat_template(h);
    CHECK(tmpl && strncmp(tmpl, "{% for message in messages %}", 29) == 0, "phi-3 chat_template");

    /* Special tokens: control tokens only with PARSE_SPECIAL; rstrip eats the
     * newline after <|user|> and <|end|>; every text fragment gets "▁". */
    static const int chat[] = {32010, 15043, 32007, 32001};
    expect_ids("phi-3 json \"<|user|>\\nHello<|end|>\\n<|assistant|>\" parsed", h,
               "<|user|>\nHello<|end|>\n<|assistant|>", STEER_TOK_PARSE_SPECIAL, chat, 4);
    int ids[64], nt = 0;
    CHECK_OK(tok_encode_ex(h, "<|user|>\nHello<|end|>\n<|assistant|>", 0, ids, 64, &nt));
    int found = 0;
    for (int i = 0; i < nt; i++) found |= ids[i] >= 32000;
    printf("%-60s %d ids, none >= 32000: %s\n", "phi-3 json same text, parse_special off", nt, found ? "no" : "yes");
    CHECK(!found && nt > 10, "control tokens must be plain text without PARSE_SPECIAL");
    /* "</s>" is a non-special added token in Phi-3's tokenizer.json: always
     * split out (and its rstrip drops the following space). */
    static const int eos_user[] = {263, 2, 289};
    expect_ids("phi-3 json \"a</s> b\" (user-defined </s> always parsed)", h, "a</s> b", 0, eos_user, 3);
    static const int bos_once[] = {1, 9038, 2501, 263, 931};
    expect_ids("phi-3 json \"Once upon a time\" + BOS", h, "Once upon a time", STEER_TOK_ADD_BOS, bos_once, 5);

    /* Ranked SentencePiece-style vocab through the writers. */
    char path[256], dir[256];
    snprintf(path, sizeof path, "%s/phi3.gguf", tmpdir);
    gg_writer *w = NULL;
    CHECK_OK(gg_writer_new(&w));
    CHECK_OK(gg_writer_set_str(w, "general.architecture", "llama"));
    CHECK_OK(tok_write_gguf(h, w));
    CHECK_OK(gg_writer_write(w, path));
    gg_writer_free(w);
    tokenizer *g2 = load_gguf_tok(path);
    compare_tokenizers("phi-3 json -> tok_write_gguf -> load vs json", h, g2, ts, 0);
    tok_free(g2);
    unlink(path);
    snprintf(dir, sizeof dir, "%s/phi3-hf", tmpdir);
    CHECK_OK(tok_write_hf(h, dir));
    tokenizer *h2 = load_hf_tok(dir);
    compare_tokenizers("phi-3 json -> tok_write_hf -> load vs json", h, h2, ts, STEER_TOK_PARSE_SPECIAL);
    CHECK(tok_chat_template(h2) && strcmp(tok_chat_template(h2), tmpl) == 0, "chat template written back");
    tok_free(h2);
    rm_dir(dir);
    tok_free(g);
    tok_free(h);
}

static void test_tok512_hf(const text_set *ts)
{
    tokenizer *bin = NULL;
    CHECK_OK(tok_load_llama2c(TOK512_BIN, 512, &bin));
    /* tokenizer.model + tokenizer_config.json as in the test fixtures' hf/ dirs */
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/tok512-hf", tmpdir);
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/tokenizer.model", dir);
    copy_file(TOK512_MODEL, path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    write_text(path, "{\"tokenizer_class\": \"LlamaTokenizer\", \"add_bos_token\": true, \"add_eos_token\": false, "
                     "\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\"}, \"unk_token\": \"<unk>\", "
                     "\"pad_token\": null, \"legacy\": true}");
    tokenizer *m = load_hf_tok(dir);
    printf("%-60s n_vocab %d bos %d eos %d add_bos %d\n", "tok512 tokenizer.model", tok_n_vocab(m), tok_bos(m),
           tok_eos(m), tok_add_bos(m));
    CHECK(tok_n_vocab(m) == 512 && tok_bos(m) == 1 && tok_eos(m) == 2 && tok_add_bos(m) == 1, "tok512 model ids");
    /* llama.cpp keeps every space although tokenizer.model's normalizer says
     * remove_extra_whitespaces: so must we (tok512.llamacpp.out). */
    compare_cases("tok512 tokenizer.model vs tok512.llamacpp.out", m, TOKDIR "/tok512.inp",
                  TOKDIR "/tok512.llamacpp.out", 0);
    compare_tokenizers("tok512 tokenizer.model vs tok512.bin (with BOS)", bin, m, ts, STEER_TOK_ADD_BOS);
    /* The fixtures' hf/ directories (copied into tests/data). */
    static const char *const fx[] = {"gemma", "gemma2", "llama", "qwen2"};
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
        char fdir[256];
        snprintf(fdir, sizeof fdir, "%s/%s/hf", STEER_TESTDATA_DIR, fx[i]);
        tokenizer *f = load_hf_tok(fdir);
        char label[128];
        snprintf(label, sizeof label, "fixtures/%s/hf tokenizer.model vs tok512.llamacpp.out", fx[i]);
        compare_cases(label, f, TOKDIR "/tok512.inp", TOKDIR "/tok512.llamacpp.out", 0);
        tok_free(f);
    }

    /* Special tokens in a SentencePiece vocabulary. */
    static const int parsed[] = {1, 403, 407, 2};
    expect_ids("tok512 \"<s>Once upon</s>\" parse_special", m, "<s>Once upon</s>", STEER_TOK_PARSE_SPECIAL, parsed, 4);
    int ids[64], nt = 0;
    CHECK_OK(tok_encode_ex(bin, "<s>Once upon</s>", 0, ids, 64, &nt));
    int ctl = 0;
    for (int i = 0; i < nt; i++) ctl |= ids[i] == 1 || ids[i] == 2;
    printf("%-60s %d ids, BOS/EOS among them: %s\n", "tok512 \"<s>Once upon</s>\" as text", nt, ctl ? "yes" : "no");
    CHECK(!ctl && nt > 6, "<s> must be text without PARSE_SPECIAL");
    static const int parsed_bin[] = {1, 1, 403, 407, 2};
    expect_ids("tok512.bin \"<s>Once upon</s>\" BOS + parse_special", bin, "<s>Once upon</s>",
               STEER_TOK_PARSE_SPECIAL | STEER_TOK_ADD_BOS, parsed_bin, 5);

    /* Writers: tokenizer.json, GGUF and tokenizer.bin give the same ids. */
    char hdir[256];
    snprintf(hdir, sizeof hdir, "%s/tok512-json", tmpdir);
    CHECK_OK(tok_write_hf(bin, hdir));
    tokenizer *j = load_hf_tok(hdir);
    CHECK(tok_bos(j) == 1 && tok_eos(j) == 2 && tok_add_bos(j) == 1, "tok512 json ids");
    compare_cases("tok512.bin -> tok_write_hf -> load vs llamacpp.out", j, TOKDIR "/tok512.inp",
                  TOKDIR "/tok512.llamacpp.out", 0);
    compare_tokenizers("tok512.bin -> tok_write_hf -> load vs tok512.bin", bin, j, ts, STEER_TOK_ADD_BOS);
    compare_tokenizers("  ... with parse_special", bin, j, ts, STEER_TOK_ADD_BOS | STEER_TOK_PARSE_SPECIAL);
    tok_free(j);
    rm_dir(hdir);
    snprintf(path, sizeof path, "%s/tok512.gguf", tmpdir);
    gg_writer *w = NULL;
    CHECK_OK(gg_writer_new(&w));
    CHECK_OK(gg_writer_set_str(w, "general.architecture", "llama"));
    CHECK_OK(tok_write_gguf(m, w));
    CHECK_OK(gg_writer_write(w, path));
    gg_writer_free(w);
    tokenizer *g = load_gguf_tok(path);
    compare_tokenizers("tok512 model -> tok_write_gguf -> load vs tok512.bin", bin, g, ts, STEER_TOK_ADD_BOS);
    tok_free(g);
    unlink(path);
    snprintf(path, sizeof path, "%s/tok512.bin", tmpdir);
    CHECK_OK(tok_write_llama2c(m, path));
    size_t n1, n2;
    char *b1 = tu_read_file(TOK512_BIN, &n1), *b2 = tu_read_file(path, &n2);
    int same = n1 == n2 && memcmp(b1, b2, n1) == 0;
    printf("%-60s %zu bytes, %s tok512.bin\n", "tok512 model -> tok_write_llama2c", n2,
           same ? "byte-identical to" : "DIFFERENT from");
    CHECK(same, "tok_write_llama2c output differs from tok512.bin");
    free(b1);
    free(b2);
    tokenizer *l2 = NULL;
    CHECK_OK(tok_load_llama2c(path, 512, &l2));
    compare_tokenizers("tok512 model -> tok_write_llama2c -> load vs tok512.bin", bin, l2, ts,
                       STEER_TOK_ADD_BOS | STEER_TOK_PARSE_SPECIAL);
    tok_free(l2);
    unlink(path);
    rm_dir(dir);
    tok_free(m);
    tok_free(bin);
}

/* tok_build_spm, longest-match special tokens, flags. */
static void test_build_spm(void)
{
    /* 0 <unk> 1 <s> 2 </s> 3 <t> 4 <t><u> (control) 5 [u] (user) 6 <0x21> 7 ▁ 8 a 9 b 10 ab 11 ▁a 12 ▁ab */
    static const char *const pieces[] = {"<unk>", "<s>", "</s>", "<t>", "<t><u>", "[u]", "<0x21>",
                                         "\xe2\x96\x81", "a", "b", "ab", "\xe2\x96\x81" "a", "\xe2\x96\x81" "ab"};
    static const float scores[] = {0, 0, 0, 0, 0, 0, 0, -1, -2, -3, -4, -5, -6};
    static const int types[] = {2, 3, 3, 3, 3, 4, 6, 1, 1, 1, 1, 1, 1};
    tokenizer *t = NULL;
    CHECK_OK(tok_build_spm(13, pieces, scores, types, 1, 2, 0, 1, &t));
    CHECK(tok_n_vocab(t) == 13 && tok_bos(t) == 1 && tok_eos(t) == 2, "built ids");
    static const int w1[] = {1, 12, 6};
    expect_ids("built vocab \"ab!\" + BOS", t, "ab!", STEER_TOK_ADD_BOS, w1, 3);
    static const int w2[] = {12, 4, 3, 12};
    expect_ids("built vocab \"ab<t><u><t>ab\" longest special match", t, "ab<t><u><t>ab", STEER_TOK_PARSE_SPECIAL, w2,
               4);
    static const int w3[] = {11, 5, 12};
    expect_ids("built vocab \"a[u]ab\": user-defined always split", t, "a[u]ab", 0, w3, 3);
    int ids[8], nt;
    int rc = tok_encode_ex(t, "a", 4, ids, 8, &nt);
    CHECK(rc == STEER_EARG, "unknown flag rejected: rc %d", rc);
    CHECK(tok_piece_id(t, "<t><u>") == 4 && tok_piece_id(t, "\xe2\x96\x81" "ab") == 12 && tok_piece_id(t, "zz") == -1,
          "tok_piece_id on built vocab");
    tok_free(t);
    static const int bad_types[] = {2, 3, 3, 3, 3, 4, 6, 1, 1, 1, 1, 6, 1};
    rc = tok_build_spm(13, pieces, scores, bad_types, 1, 2, 0, 1, &t);
    printf("%-60s rc %d: %s\n", "tok_build_spm with a bad byte piece", rc, steer_last_error());
    CHECK(rc == STEER_EARG && t == NULL, "bad byte piece accepted");
    rc = tok_build_spm(13, pieces, scores, types, 13, 2, 0, 1, &t);
    CHECK(rc == STEER_EARG && t == NULL, "bos out of range accepted");
}

/* ---------------------------------------------------------------- bad files */

static void expect_hf_error(const char *what, const char *dir, const char *json, const char *cfg, int want_rc,
                            const char *want_file, const char *want_sub)
{
    char path[512];
    mkdir(dir, 0777);
    if (json) {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        write_text(path, json);
    }
    if (cfg) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        write_text(path, cfg);
    }
    tokenizer *t = (tokenizer *)1;
    int rc = tok_load_hf(dir, &t);
    const char *msg = steer_last_error();
    printf("%-60s rc %d: %s\n", what, rc, msg);
    CHECK(rc == want_rc && t == NULL && strstr(msg, want_file) && (!want_sub || strstr(msg, want_sub)),
          "%s: rc %d (want %d) \"%s\"", what, rc, want_rc, msg);
    if (rc == STEER_OK) tok_free(t);
    rm_dir(dir);
}

static void test_bad_hf(void)
{
    char dir[256], file[300];
    snprintf(dir, sizeof dir, "%s/bad", tmpdir);
    snprintf(file, sizeof file, "%s/tokenizer.json", dir);
    expect_hf_error("tokenizer.json of type WordPiece", dir,
                    "{\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0}}}", NULL,
                    STEER_EUNSUPPORTED, file, "WordPiece");
    expect_hf_error("tokenizer.json of type Unigram", dir,
                    "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0]]}}", NULL, STEER_EUNSUPPORTED, file,
                    "Unigram");
    expect_hf_error("tokenizer.json that is not JSON", dir, "{\"model\": ", NULL, STEER_EFORMAT, file, "JSON");
    expect_hf_error("tokenizer.json BPE with a BertPreTokenizer", dir,
                    "{\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, \"model\": {\"type\": \"BPE\", "
                    "\"vocab\": {\"a\": 0}, \"merges\": []}}",
                    NULL, STEER_EUNSUPPORTED, file, "BertPreTokenizer");
    expect_hf_error("tokenizer.json merge of unknown pieces", dir,
                    "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                    "\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}",
                    NULL, STEER_EFORMAT, file, "merge 0");
    expect_hf_error("tokenizer.json with an id gap", dir,
                    "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                    "\"vocab\": {\"a\": 0, \"b\": 2}, \"merges\": []}}",
                    NULL, STEER_EFORMAT, file, "id 1");
    expect_hf_error("tokenizer.json regex PCRE2 rejects", dir,
                    "{\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
                    "\"pattern\": {\"Regex\": \"(a\"}, \"behavior\": \"Isolated\", \"invert\": false}, "
                    "{\"type\": \"ByteLevel\", \"use_regex\": false}]}, \"model\": {\"type\": \"BPE\", "
                    "\"vocab\": {\"a\": 0}, \"merges\": []}}",
                    NULL, STEER_EUNSUPPORTED, file, "PCRE2");
    char cfg[300];
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    expect_hf_error("tokenizer_config.json bos_token not in vocab", dir,
                    "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                    "\"vocab\": {\"a\": 0}, \"merges\": []}}",
                    "{\"bos_token\": \"<s>\"}", STEER_EFORMAT, cfg, "bos_token");
    expect_hf_error("directory without tokenizer files", dir, NULL, NULL, STEER_EIO, dir, "no tokenizer.json");

    /* tokenizer.model: every truncation fails cleanly; a unigram model is refused. */
    size_t size;
    unsigned char *img = tu_read_file(TOK512_MODEL, &size);
    mkdir(dir, 0777);
    char mpath[300];
    snprintf(mpath, sizeof mpath, "%s/tokenizer.model", dir);
    int nbad = 0, nok = 0;
    for (size_t cut = 0; cut < size; cut += 7) {
        FILE *f = fopen(mpath, "wb");
        fwrite(img, 1, cut, f);
        fclose(f);
        tokenizer *t = NULL;
        int rc = tok_load_hf(dir, &t);
        if (rc == STEER_OK) {
            nok++; /* a cut between whole pieces is a valid (smaller) model */
            int ids[64], nt;
            tok_encode_ex(t, "Once upon a time", 1, ids, 64, &nt);
            tok_free(t);
        } else if (!strstr(steer_last_error(), mpath) || t != NULL) {
            if (nbad++ < 3) fprintf(stderr, "  cut %zu: rc %d %s\n", cut, rc, steer_last_error());
        }
    }
    printf("%-60s %zu cuts, %d loaded, %d bad errors\n", "truncated tokenizer.model", (size + 6) / 7, nok, nbad);
    CHECK(nbad == 0, "%d truncated tokenizer.model copies not rejected properly", nbad);
    /* model_type is trainer_spec field 3: rewrite BPE (2) as UNIGRAM (1). */
    unsigned char *m2 = malloc(size);
    memcpy(m2, img, size);
    int patched = 0;
    for (size_t i = 0; i + 1 < size && !patched; i++) {
        /* trainer_spec = field 2 (tag 0x12) ... its field 3 varint tag is 0x18 */
        if (img[i] == 0x18 && img[i + 1] == 0x02 && i > 0 && i + 1 < size) {
            /* only inside trainer_spec: after "data/tok512" (field 2 of TrainerSpec) */
            if (i >= 11 && memcmp(img + i - 11, "data/tok512", 11) == 0) {
                m2[i + 1] = 0x01;
                patched = 1;
            }
        }
    }
    CHECK(patched, "could not find trainer_spec.model_type in tok512.model");
    FILE *f = fopen(mpath, "wb");
    fwrite(m2, 1, size, f);
    fclose(f);
    tokenizer *t = NULL;
    int rc = tok_load_hf(dir, &t);
    printf("%-60s rc %d: %s\n", "tokenizer.model of model type unigram", rc, steer_last_error());
    CHECK(rc == STEER_EUNSUPPORTED && t == NULL && strstr(steer_last_error(), "unigram"), "unigram accepted");
    free(m2);
    free(img);
    rm_dir(dir);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_tokenizer_bpe_XXXXXX");
    if (!mkdtemp(tmpdir)) { fprintf(stderr, "FAIL: mkdtemp\n"); return 1; }
    text_set ts = load_texts();
    printf("%-60s %d texts (46 test strings, winogrande dev, random bytes)\n", "comparison texts", ts.n);

    test_gpt2(&ts);
    test_regex_variants();
    test_metaspace();
    test_phi3(&ts);
    test_tok512_hf(&ts);
    test_build_spm();
    test_bad_hf();

    free_texts(&ts);
    rmdir(tmpdir);
    return tu_finish("test_tokenizer_bpe");
}

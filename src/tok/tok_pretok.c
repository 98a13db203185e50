/* tok_pretok.c — byte-level alphabet, UTF-8 helpers and the pre-tokenizer
 * split regexes run through PCRE2 (tok_ module).
 *
 * The byte-level alphabet (GPT-2): the 188 bytes that are printable Latin-1
 * characters ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other
 * 68 bytes (0x00-0x20, 0x7F-0xA0, 0xAD), in increasing order, become U+0100,
 * U+0101, ... U+0143. So ' ' is U+0120 "Ġ" and '\n' is U+010A "Ċ".
 *
 * Regexes are compiled with PCRE2_UTF | PCRE2_UCP (\s, \p{L}, \p{N} are
 * Unicode-aware, as in the Rust/Oniguruma engines of Hugging Face tokenizers
 * and in llama.cpp) and PCRE2_MATCH_INVALID_UTF (invalid UTF-8 never matches
 * and ends up in the text between matches, where byte-level BPE still
 * encodes it byte by byte), and JIT-compiled when PCRE2 has a JIT.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tok_impl.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- alphabet */

/* Code point that stands for byte b in byte-level pieces. Owner: tok_pretok.c. */
uint32_t tok_byte_to_cp(unsigned b)
{
    b &= 0xFF;
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    if (b <= 0x20) return 0x100 + b;               /* 33 bytes: U+0100..U+0120 */
    if (b <= 0xA0) return 0x100 + 33 + (b - 0x7F); /* 34 bytes: U+0121..U+0142 */
    return 0x100 + 33 + 34;                        /* 0xAD:     U+0143         */
}

/* Byte that code point cp stands for, or -1. Owner: tok_pretok.c. */
int tok_cp_to_byte(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp >= 0x100 && cp <= 0x120) return (int)(cp - 0x100);
    if (cp >= 0x121 && cp <= 0x142) return (int)(cp - 0x121 + 0x7F);
    if (cp == 0x143) return 0xAD;
    return -1;
}

/* UTF-8 encoder (cp < 0x110000). Owner: tok_pretok.c. */
int tok_utf8_put(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Strict UTF-8 decoder of one code point (rejects overlong forms, surrogates,
 * > U+10FFFF). Owner: tok_pretok.c. */
int tok_utf8_get(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < (size_t)len) return 0;
    for (int k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* ---------------------------------------------------------------- known regexes */

/* GPT-2 (also Hugging Face ByteLevel with use_regex = true). */
static const char TOK_RE_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/* Llama 3: case-insensitive contractions, one leading non-letter glued to a
 * word, digits in groups of up to three, newlines kept with punctuation. */
static const char TOK_RE_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* Qwen2: as Llama 3 but every digit on its own. */
static const char TOK_RE_QWEN2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The regex of a known pre-tokenizer, or NULL. Owner: tok_pretok.c (static). */
const char *tok_pre_regex(int pre)
{
    switch (pre) {
    case TOK_PRE_GPT2: return TOK_RE_GPT2;
    case TOK_PRE_LLAMA3: return TOK_RE_LLAMA3;
    case TOK_PRE_QWEN2: return TOK_RE_QWEN2;
    default: return NULL;
    }
}

/* GGUF tokenizer.ggml.pre → TOK_PRE_* (names as llama.cpp's converter writes
 * them), -1 if not supported. Owner: tok_pretok.c. */
int tok_pre_from_gguf_name(const char *name)
{
    static const struct { const char *name; int pre; } names[] = {
        {"default", TOK_PRE_GPT2},    {"gpt-2", TOK_PRE_GPT2},       {"gpt2", TOK_PRE_GPT2},
        {"llama-bpe", TOK_PRE_LLAMA3}, {"llama3", TOK_PRE_LLAMA3},    {"llama-v3", TOK_PRE_LLAMA3},
        {"smaug-bpe", TOK_PRE_LLAMA3}, {"qwen2", TOK_PRE_QWEN2},      {"deepseek-r1-qwen", TOK_PRE_QWEN2},
    };
    if (!name) return TOK_PRE_GPT2;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) return names[i].pre;
    return -1;
}

/* The GGUF name written for a known regex. Owner: tok_pretok.c (static). */
const char *tok_pre_gguf_name(int pre)
{
    switch (pre) {
    case TOK_PRE_GPT2: return "gpt-2";
    case TOK_PRE_LLAMA3: return "llama-bpe";
    case TOK_PRE_QWEN2: return "qwen2";
    default: return NULL;
    }
}

/* Which known regex re is (exact text), else TOK_PRE_CUSTOM. Owner: tok_pretok.c. */
int tok_pre_from_regex(const char *re)
{
    for (int p = TOK_PRE_GPT2; p <= TOK_PRE_QWEN2; p++)
        if (strcmp(re, tok_pre_regex(p)) == 0) return p;
    return TOK_PRE_CUSTOM;
}

/* ---------------------------------------------------------------- PCRE2 */

/* Compiles re and appends it to t's split regexes. Owner: tok_pretok.c; the
 * code and the copy of re belong to t (tok_regex_free). */
int tok_regex_add(tokenizer *t, const char *re, const char *path)
{
    if (t->n_regex >= TOK_MAX_REGEX)
        return steer_err(STEER_EUNSUPPORTED, "%s: more than %d pre-tokenizer split regexes", path, TOK_MAX_REGEX);
    int errcode = 0;
    PCRE2_SIZE erroff = 0;
    uint32_t opts = PCRE2_UTF | PCRE2_UCP;
#ifdef PCRE2_MATCH_INVALID_UTF
    opts |= PCRE2_MATCH_INVALID_UTF;
#endif
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, opts, &errcode, &erroff, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        return steer_err(STEER_EUNSUPPORTED, "%s: pre-tokenizer regex does not compile with PCRE2 at offset %zu: %s",
                         path, (size_t)erroff, (const char *)msg);
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* interpreter if no JIT */
    char *copy = strdup(re);
    if (!copy) {
        pcre2_code_free(code);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    t->regex_src[t->n_regex] = copy;
    t->regex_code[t->n_regex] = code;
    t->n_regex++;
    return STEER_OK;
}

/* Frees t's regexes. Owner: tok_pretok.c. */
void tok_regex_free(tokenizer *t)
{
    for (int i = 0; i < t->n_regex; i++) {
        pcre2_code_free((pcre2_code *)t->regex_code[i]);
        free(t->regex_src[i]);
        t->regex_code[i] = NULL;
        t->regex_src[i] = NULL;
    }
    t->n_regex = 0;
}

typedef struct {
    uint32_t *v; /* pairs (offset, length) */
    int n, cap;
} tok_spans;

/* Appends the span (off, len) unless empty. Owner: tok_pretok.c. */
static int tok_spans_push(tok_spans *s, uint32_t off, uint32_t len)
{
    if (len == 0) return 0;
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 64;
        uint32_t *nv = realloc(s->v, (size_t)nc * 2 * sizeof *nv);
        if (!nv) return -1;
        s->v = nv;
        s->cap = nc;
    }
    s->v[2 * s->n] = off;
    s->v[2 * s->n + 1] = len;
    s->n++;
    return 0;
}

/* Runs one regex over text[off..off+len) and appends matches and the gaps
 * between them to out. Owner: tok_pretok.c. */
static int tok_regex_split_one(const pcre2_code *code, pcre2_match_data *md, const char *text, uint32_t off,
                               uint32_t len, tok_spans *out)
{
    PCRE2_SPTR subj = (PCRE2_SPTR)(text + off);
    PCRE2_SIZE pos = 0, last = 0;
    uint32_t opts = 0;
    while (pos < len) {
        int rc = pcre2_match(code, subj, len, pos, opts, md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !(opts & PCRE2_NO_JIT)) {
            opts |= PCRE2_NO_JIT; /* retry with the interpreter */
            continue;
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return steer_err(STEER_EUNSUPPORTED, "tok_encode: pre-tokenizer regex failed: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        PCRE2_SIZE ms = ov[0], me = ov[1];
        if (me <= ms) { /* empty match: step over one character, keep it in the gap */
            if (ms >= len) break;
            uint32_t cp;
            int l = tok_utf8_get(subj + ms, len - ms, &cp);
            pos = ms + (l > 0 ? (PCRE2_SIZE)l : 1);
            continue;
        }
        if (tok_spans_push(out, off + (uint32_t)last, (uint32_t)(ms - last)) ||
            tok_spans_push(out, off + (uint32_t)ms, (uint32_t)(me - ms)))
            return steer_err(STEER_ENOMEM, "tok_encode: out of memory");
        last = pos = me;
    }
    if (tok_spans_push(out, off + (uint32_t)last, (uint32_t)(len - last)))
        return steer_err(STEER_ENOMEM, "tok_encode: out of memory");
    return STEER_OK;
}

/* Splits text with every regex in turn. Owner: tok_pretok.c; caller frees *spans. */
int tok_regex_split(const tokenizer *t, const char *text, size_t n, uint32_t **spans, int *n_spans)
{
    *spans = NULL;
    *n_spans = 0;
    tok_spans cur = {0}, next = {0};
    if (tok_spans_push(&cur, 0, (uint32_t)n)) return steer_err(STEER_ENOMEM, "tok_encode: out of memory");
    for (int r = 0; r < t->n_regex; r++) {
        const pcre2_code *code = (const pcre2_code *)t->regex_code[r];
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
        if (!md) {
            free(cur.v);
            return steer_err(STEER_ENOMEM, "tok_encode: out of memory");
        }
        next.n = 0;
        int rc = STEER_OK;
        for (int i = 0; i < cur.n && rc == STEER_OK; i++)
            rc = tok_regex_split_one(code, md, text, cur.v[2 * i], cur.v[2 * i + 1], &next);
        pcre2_match_data_free(md);
        if (rc) {
            free(cur.v);
            free(next.v);
            return rc;
        }
        tok_spans tmp = cur;
        cur = next;
        next = tmp;
    }
    free(next.v);
    *spans = cur.v;
    *n_spans = cur.n;
    return STEER_OK;
}

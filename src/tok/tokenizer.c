/* tokenizer.c — the tok_ module's core: vocabulary representation, the
 * llama2.c and GGUF formats, encoding and decoding.
 *
 * One in-memory representation serves every format (tok_impl.h):
 *   - "internal" piece text, as GGUF and tokenizer.json store it: spaces
 *     written as U+2581 "▁" in SentencePiece-style vocabularies, bytes written
 *     as the GPT-2 alphabet's code points in byte-level ones ("Ġthe");
 *     used for lookups and merges;
 *   - "decoded" piece text: the bytes the token stands for in output text.
 * llama2.c tokenizer.bin files store ' ', so they are converted on load.
 *
 * Encoding (tok_encode_ex):
 *   0. special/added tokens are cut out of the text first (longest match at
 *      each position): user-defined (non-special) added tokens always, as
 *      llama.cpp and Hugging Face do; control tokens ("<s>", "<|im_start|>")
 *      only with STEER_TOK_PARSE_SPECIAL. Every stretch of text between them
 *      is a fragment, tokenized on its own.
 *   SentencePiece-style fragments (as llama.cpp's SPM tokenizer):
 *   1. prepend a space (the dummy prefix) if add_space_prefix, replace every
 *      ' ' by "▁";
 *   2. split into UTF-8 code points (symbols = byte spans of that text);
 *   3a. without ranked merges (llama2.c, GGUF, tokenizer.model): repeatedly
 *      merge the adjacent pair whose concatenation is a vocab piece with the
 *      highest score, leftmost pair on ties;
 *   3b. with ranked merges (tokenizer.json): repeatedly apply the listed merge
 *      of lowest rank, leftmost on ties (Hugging Face BPE);
 *   4. emit each final symbol's id, or <0xXX> byte tokens for a code point that
 *      is not a piece (one <unk> if the vocabulary lacks one of those bytes).
 *   Byte-level fragments (GPT-2, Llama 3, Qwen2): split by the pre-tokenizer
 *   regexes (tok_pretok.c), each word's bytes mapped to the byte alphabet, then
 *   3b on the single-byte pieces.
 * Piece lookup is an open-addressing hash table over the internal text.
 * Control, unknown and byte pieces are not in the merge table.
 */
#include "tok_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Every byte value once, so byte pieces can point into static storage. */
#define TOK_R4(b) (b), (b) + 1, (b) + 2, (b) + 3
#define TOK_R16(b) TOK_R4(b), TOK_R4((b) + 4), TOK_R4((b) + 8), TOK_R4((b) + 12)
#define TOK_R64(b) TOK_R16(b), TOK_R16((b) + 16), TOK_R16((b) + 32), TOK_R16((b) + 48)
static const unsigned char tok_bytes[256] = {TOK_R64(0), TOK_R64(64), TOK_R64(128), TOK_R64(192)};

static const char TOK_SPACE_MARK[3] = {(char)0xE2, (char)0x96, (char)0x81}; /* U+2581 */

/* ---------------------------------------------------------------- helpers */

/* FNV-1a over a byte span. Owner: tokenizer.c (hash tables). */
static uint64_t tok_hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Id of the mergeable piece with internal text s[0..n), or -1. Owner: tokenizer.c. */
static int tok_lookup(const tokenizer *t, const char *s, size_t n)
{
    uint32_t i = (uint32_t)tok_hash_bytes(s, n) & t->hash_mask;
    for (;;) {
        int32_t id = t->hash[i];
        if (id < 0) return -1;
        if (t->ilen[id] == n && memcmp(t->ibuf + t->ioff[id], s, n) == 0) return id;
        i = (i + 1) & t->hash_mask;
    }
}

/* Id of any piece (control ones included) with internal text s[0..n), the
 * lowest id if several, or -1. Owner: tokenizer.c. */
int tok_find_any(const tokenizer *t, const char *s, size_t n)
{
    if (!t->ahash) return -1;
    uint32_t i = (uint32_t)tok_hash_bytes(s, n) & t->hash_mask;
    for (;;) {
        int32_t id = t->ahash[i];
        if (id < 0) return -1;
        if (t->ilen[id] == n && memcmp(t->ibuf + t->ioff[id], s, n) == 0) return id;
        i = (i + 1) & t->hash_mask;
    }
}

/* 0..255 if s[0..n) is exactly "<0xXX>" (hex digits, either case), else -1.
 * Owner: tokenizer.c. */
static int tok_parse_byte_piece(const char *s, size_t n)
{
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = s[k];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

/* ASCII whitespace (lstrip/rstrip of added tokens). Owner: tokenizer.c. */
static int tok_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Allocates the per-token arrays of a tokenizer of n tokens (zeroed struct,
 * SentencePiece-style defaults). Owner: tokenizer.c (loaders); caller frees
 * with tok_free. */
tokenizer *tok_alloc(int n)
{
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n_vocab = n;
    t->kind = TOK_KIND_SPM;
    t->bos = t->eos = t->unk = -1;
    t->add_space_prefix = 1;
    t->add_bos = 1;
    t->byte_fallback = 1;
    t->ioff = malloc((size_t)n * sizeof *t->ioff);
    t->ilen = malloc((size_t)n * sizeof *t->ilen);
    t->doff = malloc((size_t)n * sizeof *t->doff);
    t->dlen = malloc((size_t)n * sizeof *t->dlen);
    t->score = malloc((size_t)n * sizeof *t->score);
    t->type = malloc((size_t)n * sizeof *t->type);
    t->flags = calloc((size_t)n, sizeof *t->flags);
    t->byte_val = malloc((size_t)n * sizeof *t->byte_val);
    if (!t->ioff || !t->ilen || !t->doff || !t->dlen || !t->score || !t->type || !t->flags || !t->byte_val) {
        tok_free(t);
        return NULL;
    }
    for (int i = 0; i < n; i++) t->byte_val[i] = -1;
    return t;
}

/* Allocates the piece buffers for pieces of total internal length total
 * (decoded text is never longer). Owner: tokenizer.c. */
int tok_alloc_text(tokenizer *t, size_t total)
{
    t->ibuf = malloc(total + (size_t)t->n_vocab + 1);
    t->dbuf = malloc(total + (size_t)t->n_vocab + 1);
    return t->ibuf && t->dbuf ? STEER_OK : STEER_ENOMEM;
}

/* Stores piece i (type[i] already set): internal text and its decoded form.
 * Owner: tokenizer.c. */
void tok_set_piece(tokenizer *t, int i, const char *s, size_t n, size_t *ip, size_t *dp)
{
    t->ioff[i] = (uint32_t)*ip;
    t->ilen[i] = (uint32_t)n;
    memcpy(t->ibuf + *ip, s, n);
    *ip += n;
    t->ibuf[(*ip)++] = 0;
    char *d = t->dbuf + *dp;
    size_t dl = 0;
    int ty = t->type[i];
    if (t->kind == TOK_KIND_SPM) {
        for (size_t k = 0; k < n;) {
            if (n - k >= 3 && memcmp(s + k, TOK_SPACE_MARK, 3) == 0) {
                d[dl++] = ' ';
                k += 3;
            } else {
                d[dl++] = s[k++];
            }
        }
    } else {
        /* Byte-level: normal pieces are spelled in the byte alphabet; added
         * tokens (and anything that does not decode) stand for themselves. */
        int raw = ty == TOK_CONTROL || ty == TOK_USER || ty == TOK_UNKNOWN;
        for (size_t k = 0; k < n && !raw;) {
            uint32_t cp;
            int l = tok_utf8_get((const unsigned char *)s + k, n - k, &cp);
            int b = l > 0 ? tok_cp_to_byte(cp) : -1;
            if (b < 0) {
                raw = 1;
                break;
            }
            d[dl++] = (char)b;
            k += (size_t)l;
        }
        if (raw) {
            memcpy(d, s, n);
            dl = n;
        }
    }
    t->doff[i] = (uint32_t)*dp;
    t->dlen[i] = (uint32_t)dl;
    *dp += dl;
    t->dbuf[(*dp)++] = 0;
}

/* Orders special tokens by first byte, then longest first, then id.
 * Owner: tokenizer.c (qsort callback). */
static int tok_special_cmp(const void *pa, const void *pb)
{
    const tok_special *a = pa, *b = pb;
    if (a->c0 != b->c0) return a->c0 < b->c0 ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Builds the special-token table: control, unknown and user-defined pieces,
 * spelled as in input text. Owner: tokenizer.c. */
static int tok_build_specials(tokenizer *t)
{
    size_t total = 0;
    int n = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        int ty = t->type[id];
        if ((ty == TOK_CONTROL || ty == TOK_USER || ty == TOK_UNKNOWN) && t->ilen[id] > 0) {
            n++;
            total += t->ilen[id] + 1;
        }
    }
    for (int c = 0; c <= 256; c++) t->special_start[c] = 0;
    t->n_special = n;
    if (n == 0) return STEER_OK;
    t->special = malloc((size_t)n * sizeof *t->special);
    t->spbuf = malloc(total);
    if (!t->special || !t->spbuf) return STEER_ENOMEM;
    size_t p = 0;
    int k = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        int ty = t->type[id];
        if (!((ty == TOK_CONTROL || ty == TOK_USER || ty == TOK_UNKNOWN) && t->ilen[id] > 0)) continue;
        const char *s = t->ibuf + t->ioff[id];
        size_t len = t->ilen[id];
        size_t start = p;
        if (t->kind == TOK_KIND_SPM) { /* "▁" is typed as ' ' */
            for (size_t j = 0; j < len;) {
                if (len - j >= 3 && memcmp(s + j, TOK_SPACE_MARK, 3) == 0) {
                    t->spbuf[p++] = ' ';
                    j += 3;
                } else {
                    t->spbuf[p++] = s[j++];
                }
            }
        } else { /* byte-level added tokens stand for themselves */
            memcpy(t->spbuf + p, t->dbuf + t->doff[id], t->dlen[id]);
            p += t->dlen[id];
        }
        t->special[k].id = id;
        t->special[k].off = (uint32_t)start;
        t->special[k].len = (uint32_t)(p - start);
        t->special[k].c0 = (unsigned char)t->spbuf[start];
        t->spbuf[p++] = 0;
        if (t->special[k].len > 0) k++;
    }
    t->n_special = n = k;
    qsort(t->special, (size_t)n, sizeof *t->special, tok_special_cmp);
    int j = 0;
    for (int c = 0; c < 256; c++) {
        t->special_start[c] = j;
        while (j < n && t->special[j].c0 == (uint32_t)c) j++;
    }
    t->special_start[256] = n;
    return STEER_OK;
}

/* Builds the lookup hash tables, the byte → token table and the special-token
 * table once pieces, types and byte_val are set. Returns STEER_OK or
 * STEER_ENOMEM. Owner: tokenizer.c. */
int tok_finish(tokenizer *t, const char *path)
{
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_vocab * 2u) cap <<= 1;
    t->hash = malloc((size_t)cap * sizeof *t->hash);
    t->ahash = malloc((size_t)cap * sizeof *t->ahash);
    if (!t->hash || !t->ahash) return steer_err(STEER_ENOMEM, "%s: out of memory for the vocabulary index", path);
    memset(t->hash, 0xff, (size_t)cap * sizeof *t->hash);
    memset(t->ahash, 0xff, (size_t)cap * sizeof *t->ahash);
    t->hash_mask = cap - 1;
    for (int id = 0; id < t->n_vocab; id++) {
        const char *s = t->ibuf + t->ioff[id];
        uint32_t n = t->ilen[id];
        if (n == 0) continue; /* never looked up */
        uint32_t h = (uint32_t)tok_hash_bytes(s, n) & t->hash_mask;
        for (uint32_t i = h;; i = (i + 1) & t->hash_mask) { /* every piece: the lowest id wins */
            int32_t old = t->ahash[i];
            if (old < 0) { t->ahash[i] = id; break; }
            if (t->ilen[old] == n && memcmp(t->ibuf + t->ioff[old], s, n) == 0) break;
        }
        int ty = t->type[id];
        if (ty == TOK_CONTROL || ty == TOK_UNKNOWN || ty == TOK_BYTE) continue;
        for (uint32_t i = h;; i = (i + 1) & t->hash_mask) {
            int32_t old = t->hash[i];
            if (old < 0) { t->hash[i] = id; break; }
            if (t->ilen[old] == n && memcmp(t->ibuf + t->ioff[old], s, n) == 0) {
                t->hash[i] = id; /* duplicate piece: the later id wins (as llama.cpp) */
                break;
            }
        }
    }
    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;
    if (t->kind == TOK_KIND_SPM) {
        for (int id = t->n_vocab - 1; id >= 0; id--) /* lowest id wins */
            if (t->byte_val[id] >= 0) t->byte_tok[t->byte_val[id]] = id;
    } else {
        for (int b = 0; b < 256; b++) { /* the single-byte piece of each byte */
            char u[4];
            int l = tok_utf8_put(tok_byte_to_cp((unsigned)b), u);
            t->byte_tok[b] = tok_lookup(t, u, (size_t)l);
        }
    }
    if (tok_build_specials(t)) return steer_err(STEER_ENOMEM, "%s: out of memory for the special tokens", path);
    return STEER_OK;
}

/* Hash slot search for the merge (l, r). Owner: tokenizer.c. */
static uint32_t tok_merge_slot(const tokenizer *t, int32_t l, int32_t r)
{
    uint64_t k = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    uint32_t i = (uint32_t)k & t->mhash_mask;
    for (;;) {
        int32_t m = t->mhash[i];
        if (m < 0 || (t->merge_l[m] == l && t->merge_r[m] == r)) return i;
        i = (i + 1) & t->mhash_mask;
    }
}

/* Rank of merge (l, r), or -1. Owner: tokenizer.c. */
static int32_t tok_merge_rank(const tokenizer *t, int32_t l, int32_t r)
{
    return t->mhash[tok_merge_slot(t, l, r)];
}

/* Stores ranked merges (after tok_finish). Owner: tokenizer.c; strings are
 * borrowed for the call only. */
int tok_set_merges(tokenizer *t, int n, const char *const *left, const uint32_t *llen, const char *const *right,
                   const uint32_t *rlen, const char *path)
{
    if (n < 0 || n > TOK_MAX_VOCAB * 4) return steer_err(STEER_EFORMAT, "%s: bad number of merges %d", path, n);
    uint32_t cap = 16;
    while (cap < (uint32_t)n * 2u) cap <<= 1;
    t->merge_l = malloc(((size_t)n + 1) * sizeof *t->merge_l);
    t->merge_r = malloc(((size_t)n + 1) * sizeof *t->merge_r);
    t->merge_res = malloc(((size_t)n + 1) * sizeof *t->merge_res);
    t->mhash = malloc((size_t)cap * sizeof *t->mhash);
    if (!t->merge_l || !t->merge_r || !t->merge_res || !t->mhash)
        return steer_err(STEER_ENOMEM, "%s: out of memory for %d merges", path, n);
    memset(t->mhash, 0xff, (size_t)cap * sizeof *t->mhash);
    t->mhash_mask = cap - 1;
    t->n_merges = 0;
    char *cat = NULL;
    size_t catcap = 0;
    for (int i = 0; i < n; i++) {
        int32_t l = tok_find_any(t, left[i], llen[i]);
        int32_t r = tok_find_any(t, right[i], rlen[i]);
        size_t cl = (size_t)llen[i] + rlen[i];
        if (cl > catcap) {
            char *nc = realloc(cat, cl + 64);
            if (!nc) { free(cat); return steer_err(STEER_ENOMEM, "%s: out of memory", path); }
            cat = nc;
            catcap = cl + 64;
        }
        memcpy(cat, left[i], llen[i]);
        memcpy(cat + llen[i], right[i], rlen[i]);
        int32_t res = tok_find_any(t, cat, cl);
        if (l < 0 || r < 0 || res < 0) {
            int rc = steer_err(STEER_EFORMAT, "%s: merge %d (\"%.*s\" \"%.*s\"): %s is not in the vocabulary", path, i,
                               (int)(llen[i] > 64 ? 64 : llen[i]), left[i], (int)(rlen[i] > 64 ? 64 : rlen[i]),
                               right[i], l < 0 ? "the left piece" : r < 0 ? "the right piece" : "their concatenation");
            free(cat);
            return rc;
        }
        uint32_t slot = tok_merge_slot(t, l, r);
        if (t->mhash[slot] >= 0) continue; /* duplicate: the first (lower rank) wins */
        int m = t->n_merges++;
        t->merge_l[m] = l;
        t->merge_r[m] = r;
        t->merge_res[m] = res;
        t->mhash[slot] = m;
    }
    free(cat);
    return STEER_OK;
}

/* ---------------------------------------------------------------- loaders */

/* Reads a whole file with stdio. Caller frees *buf. Owner: tokenizer.c. */
int tok_read_file(const char *path, unsigned char **buf, size_t *size)
{
    *buf = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return steer_err(STEER_EIO, "%s: cannot open tokenizer: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    if (!b) { fclose(f); return steer_err(STEER_ENOMEM, "%s: out of memory", path); }
    for (;;) {
        if (n == cap) {
            if (cap > SIZE_MAX / 2) { free(b); fclose(f); return steer_err(STEER_ENOMEM, "%s: too large", path); }
            unsigned char *nb = realloc(b, cap * 2);
            if (!nb) { free(b); fclose(f); return steer_err(STEER_ENOMEM, "%s: out of memory", path); }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(b); return steer_err(STEER_EIO, "%s: read error", path); }
    *buf = b;
    *size = n;
    return STEER_OK;
}

/* Little-endian int32 / float32 readers. Owner: tokenizer.c. */
static int32_t tok_rd_i32(const unsigned char *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t r;
    memcpy(&r, &v, sizeof r);
    return r;
}

static float tok_rd_f32(const unsigned char *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float r;
    memcpy(&r, &v, sizeof r);
    return r;
}

/* Loads a llama2.c tokenizer.bin. Owner: tokenizer.c; caller owns *out (tok_free). */
int tok_load_llama2c(const char *path, int n_vocab, tokenizer **out)
{
    if (!out) return steer_err(STEER_EARG, "tok_load_llama2c: out is NULL");
    *out = NULL;
    if (!path) return steer_err(STEER_EARG, "tok_load_llama2c: path is NULL");
    if (n_vocab < 3 || n_vocab > TOK_MAX_VOCAB)
        return steer_err(STEER_EARG, "%s: bad vocabulary size %d (need 3..%d: <unk>, <s>, </s> first)", path,
                         n_vocab, TOK_MAX_VOCAB);
    unsigned char *buf;
    size_t size;
    int rc = tok_read_file(path, &buf, &size);
    if (rc) return rc;
    if (size < 4) {
        free(buf);
        return steer_err(STEER_EFORMAT, "%s: truncated header (%zu bytes)", path, size);
    }
    int32_t max_len = tok_rd_i32(buf);
    if (max_len < 0) {
        free(buf);
        return steer_err(STEER_EFORMAT, "%s: negative max_token_length %d", path, (int)max_len);
    }
    /* Pass 1: validate and size the piece buffers. */
    size_t pos = 4, isize = 0, dsize = 0;
    for (int i = 0; i < n_vocab; i++) {
        if (size - pos < 8) {
            free(buf);
            return steer_err(STEER_EFORMAT, "%s: truncated at token %d (of %d)", path, i, n_vocab);
        }
        int32_t len = tok_rd_i32(buf + pos + 4);
        pos += 8;
        if (len < 0) {
            free(buf);
            return steer_err(STEER_EFORMAT, "%s: negative length %d at token %d", path, (int)len, i);
        }
        if ((size_t)len > size - pos) {
            free(buf);
            return steer_err(STEER_EFORMAT, "%s: truncated at token %d (length %d, %zu bytes left)", path, i,
                             (int)len, size - pos);
        }
        size_t spaces = 0;
        for (int32_t k = 0; k < len; k++) spaces += buf[pos + (size_t)k] == ' ';
        isize += (size_t)len + 2 * spaces + 1;
        dsize += (size_t)len + 1;
        pos += (size_t)len;
    }
    if (isize > UINT32_MAX || dsize > UINT32_MAX) {
        free(buf);
        return steer_err(STEER_EFORMAT, "%s: vocabulary text too large", path);
    }
    tokenizer *t = tok_alloc(n_vocab);
    if (t) {
        t->ibuf = malloc(isize);
        t->dbuf = malloc(dsize);
    }
    if (!t || !t->ibuf || !t->dbuf) {
        free(buf);
        tok_free(t);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    t->unk = 0;
    t->bos = 1;
    t->eos = 2;
    t->add_space_prefix = 1; /* run.c always adds the dummy prefix to non-empty text */
    /* Pass 2: copy pieces. */
    pos = 4;
    size_t ip = 0, dp = 0;
    for (int i = 0; i < n_vocab; i++) {
        float sc = tok_rd_f32(buf + pos);
        size_t len = (size_t)tok_rd_i32(buf + pos + 4);
        pos += 8;
        const char *s = (const char *)buf + pos;
        t->score[i] = sc;
        t->doff[i] = (uint32_t)dp;
        t->dlen[i] = (uint32_t)len;
        memcpy(t->dbuf + dp, s, len);
        dp += len;
        t->dbuf[dp++] = 0;
        int bv = tok_parse_byte_piece(s, len);
        t->byte_val[i] = (int16_t)bv;
        if (i == t->unk) t->type[i] = TOK_UNKNOWN;
        else if (i == t->bos || i == t->eos) t->type[i] = TOK_CONTROL;
        else if (bv >= 0) t->type[i] = TOK_BYTE;
        else t->type[i] = TOK_NORMAL;
        /* llama2.c spells BOS/EOS "\n<s>\n" and "\n</s>\n" (its export script's
         * convention, kept as the decoded text); the internal text is "<s>". */
        const char *is = s;
        size_t il = len;
        if (t->type[i] == TOK_CONTROL && il > 2 && is[0] == '\n' && is[il - 1] == '\n') {
            is++;
            il -= 2;
        }
        t->ioff[i] = (uint32_t)ip;
        for (size_t k = 0; k < il; k++) {
            if (is[k] == ' ') {
                memcpy(t->ibuf + ip, TOK_SPACE_MARK, 3);
                ip += 3;
            } else {
                t->ibuf[ip++] = is[k];
            }
        }
        t->ilen[i] = (uint32_t)(ip - t->ioff[i]);
        t->ibuf[ip++] = 0;
        pos += len;
    }
    free(buf);
    rc = tok_finish(t, path);
    if (rc) { tok_free(t); return rc; }
    *out = t;
    return STEER_OK;
}

/* Reads an optional GGUF bool key into *v. Owner: tokenizer.c. */
static int tok_gguf_bool(const gg_file *f, const char *path, const char *key, int *v)
{
    if (!gg_has_key(f, key)) return STEER_OK;
    int b = 0;
    if (gg_get_bool(f, key, &b)) return steer_err(STEER_EFORMAT, "%s: %s is not a bool", path, key);
    *v = b != 0;
    return STEER_OK;
}

/* Reads GGUF tokenizer.ggml.merges ("left right" strings) into t. Owner:
 * tokenizer.c. */
static int tok_gguf_merges(tokenizer *t, const gg_file *f, const char *path)
{
    uint64_t n = 0;
    const char *const *strs = NULL;
    const uint32_t *lens = NULL;
    if (gg_get_arr_str(f, "tokenizer.ggml.merges", &n, &strs, &lens))
        return steer_err(STEER_EFORMAT, "%s: tokenizer.ggml.merges is not an array of strings", path);
    if (n > (uint64_t)TOK_MAX_VOCAB * 4)
        return steer_err(STEER_EFORMAT, "%s: %llu merges", path, (unsigned long long)n);
    const char **l = malloc(((size_t)n + 1) * sizeof *l), **r = malloc(((size_t)n + 1) * sizeof *r);
    uint32_t *ll = malloc(((size_t)n + 1) * sizeof *ll), *rl = malloc(((size_t)n + 1) * sizeof *rl);
    int rc = STEER_OK;
    if (!l || !r || !ll || !rl) rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
    for (uint64_t i = 0; i < n && rc == STEER_OK; i++) {
        /* "a b": the separating space is the first one after the first byte
         * whose two sides are pieces (pieces rarely hold spaces). */
        const char *s = strs[i];
        uint32_t len = lens[i], sp = 0;
        for (uint32_t k = 1; k + 1 < len; k++) {
            if (s[k] != ' ') continue;
            if (!sp) sp = k;
            if (tok_find_any(t, s, k) >= 0 && tok_find_any(t, s + k + 1, len - k - 1) >= 0) {
                sp = k;
                break;
            }
        }
        if (!sp) {
            rc = steer_err(STEER_EFORMAT, "%s: merge %llu \"%.*s\" is not two pieces separated by a space", path,
                           (unsigned long long)i, (int)(len > 64 ? 64 : len), s);
            break;
        }
        l[i] = s;
        ll[i] = sp;
        r[i] = s + sp + 1;
        rl[i] = len - sp - 1;
    }
    if (rc == STEER_OK) rc = tok_set_merges(t, (int)n, l, ll, r, rl, path);
    free(l);
    free(r);
    free(ll);
    free(rl);
    return rc;
}

/* Loads the tokenizer embedded in a GGUF file: tokenizer.ggml.model "llama"
 * (SentencePiece-style) or "gpt2" (byte-level BPE). Owner: tokenizer.c;
 * caller owns *out (tok_free). The gg_file may be closed afterwards
 * (everything is copied). */
int tok_load_gguf(const gg_file *f, tokenizer **out)
{
    if (!out) return steer_err(STEER_EARG, "tok_load_gguf: out is NULL");
    *out = NULL;
    if (!f) return steer_err(STEER_EARG, "tok_load_gguf: file is NULL");
    const char *path = gg_path(f);
    if (!path) path = "(gguf)";
    const char *model = NULL;
    if (!gg_has_key(f, "tokenizer.ggml.model"))
        return steer_err(STEER_EUNSUPPORTED, "%s: no embedded tokenizer (key tokenizer.ggml.model missing)", path);
    int rc = gg_get_str(f, "tokenizer.ggml.model", &model);
    if (rc) return steer_err(STEER_EFORMAT, "%s: tokenizer.ggml.model is not a string", path);
    int kind;
    if (strcmp(model, "llama") == 0) kind = TOK_KIND_SPM;
    else if (strcmp(model, "gpt2") == 0) kind = TOK_KIND_BYTE;
    else
        return steer_err(STEER_EUNSUPPORTED, "%s: tokenizer model \"%s\" is not supported (only \"llama\" and \"gpt2\")",
                         path, model);
    int pre = TOK_PRE_NONE;
    const char *pre_name = NULL;
    if (gg_has_key(f, "tokenizer.ggml.pre")) {
        if (gg_get_str(f, "tokenizer.ggml.pre", &pre_name))
            return steer_err(STEER_EFORMAT, "%s: tokenizer.ggml.pre is not a string", path);
    }
    if (kind == TOK_KIND_BYTE) {
        pre = tok_pre_from_gguf_name(pre_name);
        if (pre < 0)
            return steer_err(STEER_EUNSUPPORTED, "%s: pre-tokenizer \"%s\" (tokenizer.ggml.pre) is not supported "
                             "(gpt-2, default, llama-bpe, qwen2)", path, pre_name);
        if (!gg_has_key(f, "tokenizer.ggml.merges"))
            return steer_err(STEER_EFORMAT, "%s: missing key tokenizer.ggml.merges (needed by a gpt2 tokenizer)", path);
    }

    uint64_t n = 0;
    const char *const *strs = NULL;
    const uint32_t *lens = NULL;
    if (!gg_has_key(f, "tokenizer.ggml.tokens"))
        return steer_err(STEER_EFORMAT, "%s: missing key tokenizer.ggml.tokens", path);
    rc = gg_get_arr_str(f, "tokenizer.ggml.tokens", &n, &strs, &lens);
    if (rc) return steer_err(STEER_EFORMAT, "%s: tokenizer.ggml.tokens is not an array of strings", path);
    if (n < 1 || n > TOK_MAX_VOCAB)
        return steer_err(STEER_EFORMAT, "%s: bad vocabulary size %llu", path, (unsigned long long)n);
    int nv = (int)n;

    float *scores = NULL;
    int32_t *types = NULL;
    if (gg_has_key(f, "tokenizer.ggml.scores")) {
        uint64_t ns = 0;
        rc = gg_get_arr_f32(f, "tokenizer.ggml.scores", &ns, &scores);
        if (rc) return steer_err(rc == STEER_ENOMEM ? rc : STEER_EFORMAT, "%s: tokenizer.ggml.scores: %s", path,
                                 rc == STEER_ENOMEM ? "out of memory" : "not an array of numbers");
        if (ns != n) {
            free(scores);
            return steer_err(STEER_EFORMAT, "%s: %llu scores for %d tokens", path, (unsigned long long)ns, nv);
        }
    }
    if (gg_has_key(f, "tokenizer.ggml.token_type")) {
        uint64_t nt = 0;
        rc = gg_get_arr_i32(f, "tokenizer.ggml.token_type", &nt, &types);
        if (rc) {
            free(scores);
            return steer_err(rc == STEER_ENOMEM ? rc : STEER_EFORMAT, "%s: tokenizer.ggml.token_type: %s", path,
                             rc == STEER_ENOMEM ? "out of memory" : "not an array of integers");
        }
        if (nt != n) {
            free(scores);
            free(types);
            return steer_err(STEER_EFORMAT, "%s: %llu token types for %d tokens", path, (unsigned long long)nt, nv);
        }
    }

    /* Special ids: SPM defaults as llama.cpp (unk 0, bos 1, eos 2); none for
     * byte-level vocabularies. */
    static const char *const id_keys[3] = {"tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id",
                                           "tokenizer.ggml.eos_token_id"};
    int ids[3] = {0, 1, 2};
    if (kind == TOK_KIND_BYTE) ids[0] = ids[1] = ids[2] = -1;
    for (int k = 0; k < 3; k++) {
        if (!gg_has_key(f, id_keys[k])) {
            if (ids[k] >= nv) ids[k] = -1;
            continue;
        }
        uint32_t v;
        rc = gg_get_u32(f, id_keys[k], &v);
        if (rc || v >= (uint32_t)nv) {
            free(scores);
            free(types);
            if (rc) return steer_err(STEER_EFORMAT, "%s: %s is not an integer", path, id_keys[k]);
            return steer_err(STEER_EFORMAT, "%s: %s = %u is outside the vocabulary (%d tokens)", path, id_keys[k],
                             v, nv);
        }
        ids[k] = (int)v;
    }
    int add_space = kind == TOK_KIND_SPM, add_bos = kind == TOK_KIND_SPM, add_eos = 0;
    if ((rc = tok_gguf_bool(f, path, "tokenizer.ggml.add_space_prefix", &add_space)) ||
        (rc = tok_gguf_bool(f, path, "tokenizer.ggml.add_bos_token", &add_bos)) ||
        (rc = tok_gguf_bool(f, path, "tokenizer.ggml.add_eos_token", &add_eos))) {
        free(scores);
        free(types);
        return rc;
    }
    const char *tmpl = NULL;
    if (gg_has_key(f, "tokenizer.chat_template") && gg_get_str(f, "tokenizer.chat_template", &tmpl)) {
        free(scores);
        free(types);
        return steer_err(STEER_EFORMAT, "%s: tokenizer.chat_template is not a string", path);
    }

    /* Size the piece buffers. */
    size_t isize = 0;
    for (int i = 0; i < nv; i++) {
        if (!strs[i]) {
            free(scores);
            free(types);
            return steer_err(STEER_EFORMAT, "%s: token %d has no text", path, i);
        }
        isize += (size_t)lens[i] + 1;
    }
    if (isize > UINT32_MAX / 2) {
        free(scores);
        free(types);
        return steer_err(STEER_EFORMAT, "%s: vocabulary text too large", path);
    }
    tokenizer *t = tok_alloc(nv);
    if (t) {
        t->kind = kind;
        if (tok_alloc_text(t, isize)) { tok_free(t); t = NULL; }
    }
    if (t && tmpl && !(t->chat_template = strdup(tmpl))) { tok_free(t); t = NULL; }
    if (t && pre_name && !(t->pre_name = strdup(pre_name))) { tok_free(t); t = NULL; }
    if (!t) {
        free(scores);
        free(types);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    t->unk = ids[0];
    t->bos = ids[1];
    t->eos = ids[2];
    t->add_space_prefix = kind == TOK_KIND_SPM ? add_space : 0;
    t->add_bos = add_bos;
    t->add_eos = add_eos;
    t->pre = pre;
    /* llama.cpp emits a whole word that is a piece for Llama 3's pre-tokenizer
     * (as the Hugging Face tokenizer.json's ignore_merges). */
    t->ignore_merges = pre == TOK_PRE_LLAMA3;
    size_t ip = 0, dp = 0;
    for (int i = 0; i < nv; i++) {
        const char *s = strs[i];
        size_t len = lens[i];
        int ty = types ? types[i] : TOK_NORMAL;
        if (ty < TOK_NORMAL || ty > TOK_BYTE) ty = TOK_NORMAL; /* 0 = undefined in GGUF */
        /* Byte pieces (SentencePiece-style): typed BYTE; when the file gives no
         * types, by their text. */
        int bv = kind == TOK_KIND_SPM ? tok_parse_byte_piece(s, len) : -1;
        if (bv >= 0 && types && ty != TOK_BYTE) bv = -1;
        if (bv >= 0) ty = TOK_BYTE;
        if (kind == TOK_KIND_BYTE && ty == TOK_BYTE) ty = TOK_NORMAL;
        t->type[i] = (uint8_t)ty;
        t->byte_val[i] = (int16_t)bv;
        t->score[i] = scores ? scores[i] : 0.0f;
        tok_set_piece(t, i, s, len, &ip, &dp);
    }
    if (!types) {
        if (t->unk >= 0) t->type[t->unk] = TOK_UNKNOWN;
        if (t->bos >= 0) t->type[t->bos] = TOK_CONTROL;
        if (t->eos >= 0) t->type[t->eos] = TOK_CONTROL;
    }
    free(scores);
    free(types);
    rc = tok_finish(t, path);
    if (rc == STEER_OK && kind == TOK_KIND_BYTE) rc = tok_regex_add(t, tok_pre_regex(pre), path);
    /* Ranked merges: required for gpt2; for llama (an extension this library
     * writes when the vocabulary came from a tokenizer.json) they replace the
     * score-based merging. */
    if (rc == STEER_OK && gg_has_key(f, "tokenizer.ggml.merges")) rc = tok_gguf_merges(t, f, path);
    if (rc) { tok_free(t); return rc; }
    *out = t;
    return STEER_OK;
}

/* Builds a SentencePiece-style vocabulary from arrays. Owner: tokenizer.c;
 * everything is copied; caller owns *out (tok_free). */
int tok_build_spm(int n, const char *const *pieces, const float *scores, const int *types, int bos, int eos,
                  int unk, int add_space_prefix, tokenizer **out)
{
    if (!out) return steer_err(STEER_EARG, "tok_build_spm: out is NULL");
    *out = NULL;
    if (n < 1 || n > TOK_MAX_VOCAB || !pieces)
        return steer_err(STEER_EARG, "tok_build_spm: bad vocabulary (%d pieces)", n);
    if (bos < -1 || bos >= n || eos < -1 || eos >= n || unk < -1 || unk >= n)
        return steer_err(STEER_EARG, "tok_build_spm: special id out of range (bos %d, eos %d, unk %d, %d pieces)", bos,
                         eos, unk, n);
    size_t isize = 0;
    for (int i = 0; i < n; i++) {
        if (!pieces[i]) return steer_err(STEER_EARG, "tok_build_spm: piece %d is NULL", i);
        int ty = types ? types[i] : TOK_NORMAL;
        if (ty < TOK_NORMAL || ty > TOK_BYTE) return steer_err(STEER_EARG, "tok_build_spm: piece %d has type %d", i, ty);
        size_t len = strlen(pieces[i]);
        if (ty == TOK_BYTE && tok_parse_byte_piece(pieces[i], len) < 0)
            return steer_err(STEER_EARG, "tok_build_spm: byte piece %d is \"%s\", not <0xXX>", i, pieces[i]);
        isize += len + 1;
        if (isize > UINT32_MAX / 2) return steer_err(STEER_EARG, "tok_build_spm: vocabulary text too large");
    }
    tokenizer *t = tok_alloc(n);
    if (!t || tok_alloc_text(t, isize)) {
        tok_free(t);
        return steer_err(STEER_ENOMEM, "tok_build_spm: out of memory");
    }
    t->bos = bos;
    t->eos = eos;
    t->unk = unk;
    t->add_space_prefix = add_space_prefix != 0;
    size_t ip = 0, dp = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(pieces[i]);
        int ty = types ? types[i] : TOK_NORMAL;
        t->type[i] = (uint8_t)ty;
        t->score[i] = scores ? scores[i] : 0.0f;
        t->byte_val[i] = (int16_t)(ty == TOK_BYTE ? tok_parse_byte_piece(pieces[i], len) : -1);
        tok_set_piece(t, i, pieces[i], len, &ip, &dp);
    }
    int rc = tok_finish(t, "tok_build_spm");
    if (rc) { tok_free(t); return rc; }
    *out = t;
    return STEER_OK;
}

/* Frees a tokenizer (NULL is fine). Owner: tokenizer.c. */
void tok_free(tokenizer *t)
{
    if (!t) return;
    tok_regex_free(t);
    free(t->pre_name);
    free(t->chat_template);
    free(t->ibuf);
    free(t->dbuf);
    free(t->ioff);
    free(t->ilen);
    free(t->doff);
    free(t->dlen);
    free(t->score);
    free(t->type);
    free(t->flags);
    free(t->byte_val);
    free(t->hash);
    free(t->ahash);
    free(t->merge_l);
    free(t->merge_r);
    free(t->merge_res);
    free(t->mhash);
    free(t->special);
    free(t->spbuf);
    free(t);
}

/* Accessors (NULL-safe). Owner: tokenizer.c. */
int tok_n_vocab(const tokenizer *t) { return t ? t->n_vocab : 0; }
int tok_bos(const tokenizer *t) { return t ? t->bos : -1; }
int tok_eos(const tokenizer *t) { return t ? t->eos : -1; }
const char *tok_chat_template(const tokenizer *t) { return t ? t->chat_template : NULL; }

/* Whether the vocabulary's configuration adds BOS / EOS (tokenizer_config.json
 * add_bos_token / add_eos_token, GGUF tokenizer.ggml.add_bos_token / ...).
 * Not declared in tok.h yet. Owner: tokenizer.c. */
int tok_add_bos(const tokenizer *t) { return t ? t->add_bos : 0; }
int tok_add_eos(const tokenizer *t) { return t ? t->add_eos : 0; }

/* Id of the piece spelled exactly piece (internal text), or -1. Owner: tokenizer.c. */
int tok_piece_id(const tokenizer *t, const char *piece)
{
    if (!t || !piece) return -1;
    return tok_find_any(t, piece, strlen(piece));
}

/* ---------------------------------------------------------------- encode */

/* A growable id list. Owner: tokenizer.c (encoder). */
typedef struct {
    int *v;
    int n, cap;
} tok_vec;

/* Appends id, growing the list. Owner: tokenizer.c. */
static int tok_vec_push(tok_vec *o, int id)
{
    if (o->n == o->cap) {
        int nc = o->cap ? o->cap * 2 : 256;
        int *nv = realloc(o->v, (size_t)nc * sizeof *nv);
        if (!nv) return steer_err(STEER_ENOMEM, "tok_encode: out of memory");
        o->v = nv;
        o->cap = nc;
    }
    o->v[o->n++] = id;
    return STEER_OK;
}

typedef struct {
    int prev, next; /* neighbour symbol indices, -1 at the ends          */
    uint32_t start; /* byte offset in the escaped text                   */
    uint32_t n;     /* byte length; 0 once merged into its left neighbour */
} tok_sym;

typedef struct {
    int left, right; /* symbol indices                                   */
    float score;
    uint32_t size; /* byte length of the merged piece                    */
} tok_pair;

/* Heap order: higher score first, then the leftmost pair. Owner: tokenizer.c. */
static int tok_pair_before(const tok_pair *a, const tok_pair *b)
{
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

/* Binary max-heap push / pop. Owner: tokenizer.c. */
static void tok_heap_push(tok_pair *h, int *n, tok_pair p)
{
    int i = (*n)++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!tok_pair_before(&p, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = p;
}

static tok_pair tok_heap_pop(tok_pair *h, int *n)
{
    tok_pair top = h[0];
    tok_pair last = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && tok_pair_before(&h[c + 1], &h[c])) c++;
        if (!tok_pair_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

/* Pushes the pair (l, r) if their concatenation is a piece. Owner: tokenizer.c. */
static void tok_try_pair(const tokenizer *t, const char *text, const tok_sym *sym, int l, int r, tok_pair *heap,
                         int *nheap)
{
    if (l < 0 || r < 0) return;
    uint32_t size = sym[l].n + sym[r].n;
    int id = tok_lookup(t, text + sym[l].start, size);
    if (id < 0) return;
    tok_pair p = {l, r, t->score[id], size};
    tok_heap_push(heap, nheap, p);
}

/* Byte length of the code point starting at s[0] (n > 0 bytes left): the
 * length its lead byte announces, as llama.cpp splits text, but cut short at
 * the first byte that is not a continuation byte (10xxxxxx), so invalid UTF-8
 * never swallows a following character or "▁" and still round-trips through
 * byte fallback. Valid UTF-8 splits exactly as in llama.cpp. Owner: tokenizer.c. */
static uint32_t tok_utf8_len(const unsigned char *s, size_t n)
{
    uint32_t want = s[0] < 0xC0 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
    uint32_t k = 1;
    while (k < want && k < n && (s[k] & 0xC0) == 0x80) k++;
    return k;
}

/* Emits the byte tokens of the code point s[0..n), or one <unk>. Owner:
 * tokenizer.c. */
static int tok_emit_fallback(const tokenizer *t, const char *s, uint32_t n, tok_vec *out)
{
    int have_all = t->byte_fallback || t->kind == TOK_KIND_BYTE;
    for (uint32_t k = 0; k < n && have_all; k++)
        if (t->byte_tok[(unsigned char)s[k]] < 0) have_all = 0;
    if (!have_all) {
        if (t->unk < 0)
            return steer_err(STEER_EUNSUPPORTED, "tok_encode: text byte 0x%02X has no byte token and the "
                             "vocabulary has no <unk>", (unsigned char)s[0]);
        return tok_vec_push(out, t->unk);
    }
    for (uint32_t k = 0; k < n; k++) {
        int rc = tok_vec_push(out, t->byte_tok[(unsigned char)s[k]]);
        if (rc) return rc;
    }
    return STEER_OK;
}

/* Score-based SentencePiece merging of the escaped text buf[0..bl) (steps 2,
 * 3a, 4). Owner: tokenizer.c. */
static int tok_spm_scored(const tokenizer *t, const char *buf, size_t bl, tok_vec *out)
{
    if (bl == 0) return STEER_OK;
    tok_sym *sym = malloc((bl + 1) * sizeof *sym);
    tok_pair *heap = malloc((3 * bl + 1) * sizeof *heap);
    if (!sym || !heap) {
        free(sym);
        free(heap);
        return steer_err(STEER_ENOMEM, "tok_encode: out of memory");
    }
    int ns = 0;
    for (size_t off = 0; off < bl;) {
        uint32_t n = tok_utf8_len((const unsigned char *)buf + off, bl - off);
        sym[ns].start = (uint32_t)off;
        sym[ns].n = n;
        sym[ns].prev = ns - 1;
        sym[ns].next = off + n < bl ? ns + 1 : -1;
        ns++;
        off += n;
    }
    int nheap = 0;
    for (int i = 1; i < ns; i++) tok_try_pair(t, buf, sym, i - 1, i, heap, &nheap);
    while (nheap > 0) {
        tok_pair p = tok_heap_pop(heap, &nheap);
        tok_sym *l = &sym[p.left], *r = &sym[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = p.left;
        tok_try_pair(t, buf, sym, l->prev, p.left, heap, &nheap);
        tok_try_pair(t, buf, sym, p.left, l->next, heap, &nheap);
    }
    int rc = STEER_OK;
    for (int i = 0; i >= 0 && rc == STEER_OK; i = sym[i].next) {
        int id = tok_lookup(t, buf + sym[i].start, sym[i].n);
        rc = id >= 0 ? tok_vec_push(out, id) : tok_emit_fallback(t, buf + sym[i].start, sym[i].n, out);
    }
    free(sym);
    free(heap);
    return rc;
}

/* Scratch of the ranked merger, reused across words. Owner: tokenizer.c. */
typedef struct {
    int32_t rank;
    int left;
    int32_t lid, rid;
} tok_rpair;

typedef struct {
    int32_t *id;
    int *prev, *next;
    tok_rpair *heap;
    int cap;
    char *buf; /* escaped / mapped text */
    size_t bcap;
} tok_scratch;

/* Frees the scratch buffers (not s itself). Owner: tokenizer.c. */
static void tok_scratch_free(tok_scratch *s)
{
    free(s->id);
    free(s->prev);
    free(s->next);
    free(s->heap);
    free(s->buf);
}

/* Room for n symbols (and 3n heap entries). Owner: tokenizer.c. */
static int tok_scratch_syms(tok_scratch *s, int n)
{
    if (n <= s->cap) return STEER_OK;
    int nc = n < 64 ? 64 : n;
    int32_t *id = realloc(s->id, (size_t)nc * sizeof *id);
    if (id) s->id = id;
    int *pv = realloc(s->prev, (size_t)nc * sizeof *pv);
    if (pv) s->prev = pv;
    int *nx = realloc(s->next, (size_t)nc * sizeof *nx);
    if (nx) s->next = nx;
    tok_rpair *h = realloc(s->heap, (size_t)nc * 3 * sizeof *h);
    if (h) s->heap = h;
    if (!id || !pv || !nx || !h) return steer_err(STEER_ENOMEM, "tok_encode: out of memory");
    s->cap = nc;
    return STEER_OK;
}

/* Room for n bytes of text. Owner: tokenizer.c. */
static int tok_scratch_buf(tok_scratch *s, size_t n)
{
    if (n <= s->bcap) return STEER_OK;
    size_t nc = n < 256 ? 256 : n * 2;
    char *b = realloc(s->buf, nc);
    if (!b) return steer_err(STEER_ENOMEM, "tok_encode: out of memory");
    s->buf = b;
    s->bcap = nc;
    return STEER_OK;
}

/* Min-heap order of candidate merges: lower rank, then leftmost. Owner: tokenizer.c. */
static int tok_rpair_before(const tok_rpair *a, const tok_rpair *b)
{
    if (a->rank != b->rank) return a->rank < b->rank;
    return a->left < b->left;
}

/* Binary min-heap push / pop of candidate merges. Owner: tokenizer.c. */
static void tok_rheap_push(tok_rpair *h, int *n, tok_rpair p)
{
    int i = (*n)++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!tok_rpair_before(&p, &h[parent])) break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = p;
}

static tok_rpair tok_rheap_pop(tok_rpair *h, int *n)
{
    tok_rpair top = h[0];
    tok_rpair last = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && tok_rpair_before(&h[c + 1], &h[c])) c++;
        if (!tok_rpair_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

/* Pushes the merge of symbols l and its right neighbour if it is listed.
 * Owner: tokenizer.c. */
static void tok_try_rpair(const tokenizer *t, tok_scratch *s, int l, int *nheap)
{
    if (l < 0) return;
    int r = s->next[l];
    if (r < 0) return;
    int32_t rank = tok_merge_rank(t, s->id[l], s->id[r]);
    if (rank < 0) return;
    tok_rpair p = {rank, l, s->id[l], s->id[r]};
    tok_rheap_push(s->heap, nheap, p);
}

/* Ranked BPE over the symbol ids s->id[0..n) (step 3b), appending the result.
 * Owner: tokenizer.c. */
static int tok_bpe_ranked(const tokenizer *t, tok_scratch *s, int n, tok_vec *out)
{
    for (int i = 0; i < n; i++) {
        s->prev[i] = i - 1;
        s->next[i] = i + 1 < n ? i + 1 : -1;
    }
    int nheap = 0;
    if (t->n_merges > 0)
        for (int i = 0; i + 1 < n; i++) tok_try_rpair(t, s, i, &nheap);
    while (nheap > 0) {
        tok_rpair p = tok_rheap_pop(s->heap, &nheap);
        int l = p.left, r = s->next[l];
        if (s->id[l] != p.lid || r < 0 || s->id[r] != p.rid) continue; /* stale */
        s->id[l] = t->merge_res[p.rank];
        s->id[r] = -1;
        s->next[l] = s->next[r];
        if (s->next[r] >= 0) s->prev[s->next[r]] = l;
        tok_try_rpair(t, s, s->prev[l], &nheap);
        tok_try_rpair(t, s, l, &nheap);
    }
    for (int i = n > 0 ? 0 : -1; i >= 0; i = s->next[i]) {
        int rc = tok_vec_push(out, s->id[i]);
        if (rc) return rc;
    }
    return STEER_OK;
}

/* One SentencePiece-style word (escaped text w[0..n)) with ranked merges:
 * code points looked up whole, else byte fallback or <unk>. Owner: tokenizer.c. */
static int tok_spm_ranked_word(const tokenizer *t, const char *w, size_t n, tok_scratch *s, tok_vec *out)
{
    if (n == 0) return STEER_OK;
    if (t->ignore_merges) {
        int id = tok_lookup(t, w, n);
        if (id >= 0) return tok_vec_push(out, id);
    }
    int rc = tok_scratch_syms(s, (int)n + 1);
    if (rc) return rc;
    int ns = 0;
    for (size_t off = 0; off < n;) {
        uint32_t l = tok_utf8_len((const unsigned char *)w + off, n - off);
        int id = tok_lookup(t, w + off, l);
        if (id >= 0) {
            s->id[ns++] = id;
        } else {
            int have_all = t->byte_fallback;
            for (uint32_t k = 0; k < l && have_all; k++)
                if (t->byte_tok[(unsigned char)w[off + k]] < 0) have_all = 0;
            if (have_all) {
                for (uint32_t k = 0; k < l; k++) s->id[ns++] = t->byte_tok[(unsigned char)w[off + k]];
            } else if (t->unk >= 0) {
                s->id[ns++] = t->unk;
            } else {
                return steer_err(STEER_EUNSUPPORTED, "tok_encode: text byte 0x%02X has no piece or byte token and "
                                 "the vocabulary has no <unk>", (unsigned char)w[off]);
            }
        }
        off += l;
    }
    return tok_bpe_ranked(t, s, ns, out);
}

/* One byte-level word text[0..n): mapped to the byte alphabet, then ranked
 * merges. Owner: tokenizer.c. */
static int tok_byte_word(const tokenizer *t, const char *w, size_t n, tok_scratch *s, tok_vec *out)
{
    if (n == 0) return STEER_OK;
    int rc;
    if (t->ignore_merges) {
        if ((rc = tok_scratch_buf(s, 2 * n + 4))) return rc;
        size_t ml = 0;
        for (size_t k = 0; k < n; k++) ml += (size_t)tok_utf8_put(tok_byte_to_cp((unsigned char)w[k]), s->buf + ml);
        int id = tok_lookup(t, s->buf, ml);
        if (id >= 0) return tok_vec_push(out, id);
    }
    if ((rc = tok_scratch_syms(s, (int)n + 1))) return rc;
    int ns = 0;
    for (size_t k = 0; k < n; k++) {
        int id = t->byte_tok[(unsigned char)w[k]];
        if (id < 0) id = t->unk;
        if (id < 0)
            return steer_err(STEER_EUNSUPPORTED, "tok_encode: byte 0x%02X has no piece and the vocabulary has no "
                             "<unk>", (unsigned char)w[k]);
        s->id[ns++] = id;
    }
    return tok_bpe_ranked(t, s, ns, out);
}

/* Tokenizes one fragment text[off..off+n) (no special tokens inside).
 * Owner: tokenizer.c. */
static int tok_encode_fragment(const tokenizer *t, const char *text, size_t off, size_t n, tok_scratch *s,
                               tok_vec *out)
{
    if (n == 0) return STEER_OK;
    const char *p = text + off;
    int rc;
    if (t->kind == TOK_KIND_BYTE) {
        const char *src = p;
        size_t sn = n;
        char *tmp = NULL;
        if (t->bl_prefix_space && p[0] != ' ') { /* HF ByteLevel add_prefix_space */
            tmp = malloc(n + 1);
            if (!tmp) return steer_err(STEER_ENOMEM, "tok_encode: out of memory");
            tmp[0] = ' ';
            memcpy(tmp + 1, p, n);
            src = tmp;
            sn = n + 1;
        }
        uint32_t *spans = NULL;
        int nsp = 0;
        if (t->n_regex > 0) {
            rc = tok_regex_split(t, src, sn, &spans, &nsp);
        } else {
            spans = malloc(2 * sizeof *spans);
            rc = spans ? STEER_OK : steer_err(STEER_ENOMEM, "tok_encode: out of memory");
            if (spans) {
                spans[0] = 0;
                spans[1] = (uint32_t)sn;
                nsp = 1;
            }
        }
        for (int i = 0; i < nsp && rc == STEER_OK; i++) rc = tok_byte_word(t, src + spans[2 * i], spans[2 * i + 1], s, out);
        free(spans);
        free(tmp);
        return rc;
    }

    /* SentencePiece-style: dummy prefix, ' ' → ▁. */
    int prefix = t->add_space_prefix;
    if (prefix && t->prefix_first_only && off != 0) prefix = 0;
    if (prefix && t->prefix_if_no_space && p[0] == ' ') prefix = 0;
    if ((rc = tok_scratch_buf(s, 3 * n + 4))) return rc;
    char *buf = s->buf;
    size_t bl = 0;
    if (prefix) {
        memcpy(buf, TOK_SPACE_MARK, 3);
        bl = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ') {
            memcpy(buf + bl, TOK_SPACE_MARK, 3);
            bl += 3;
        } else {
            buf[bl++] = p[i];
        }
    }
    if (t->n_merges == 0) return tok_spm_scored(t, buf, bl, out);
    if (!t->meta_split) return tok_spm_ranked_word(t, buf, bl, s, out);
    /* HF Metaspace split: a new word starts at every "▁". The word text lives
     * in s->buf, which the merger does not touch (it uses the id arrays). */
    size_t ws = 0;
    rc = STEER_OK;
    for (size_t i = 1; i < bl && rc == STEER_OK; i++) {
        if (bl - i >= 3 && memcmp(buf + i, TOK_SPACE_MARK, 3) == 0) {
            rc = tok_spm_ranked_word(t, buf + ws, i - ws, s, out);
            ws = i;
        }
    }
    if (rc == STEER_OK) rc = tok_spm_ranked_word(t, buf + ws, bl - ws, s, out);
    return rc;
}

/* The special token matched at s[0..n), or -1; *mlen its length. User-defined
 * tokens always, control/unknown ones only when parse_special. Owner: tokenizer.c. */
static int tok_match_special(const tokenizer *t, const char *s, size_t n, int parse_special, uint32_t *mlen)
{
    unsigned c = (unsigned char)s[0];
    for (int k = t->special_start[c]; k < t->special_start[c + 1]; k++) {
        const tok_special *sp = &t->special[k];
        if (sp->len > n) continue;
        if (!parse_special && t->type[sp->id] != TOK_USER) continue;
        if (memcmp(t->spbuf + sp->off, s, sp->len) == 0) {
            *mlen = sp->len;
            return sp->id;
        }
    }
    return -1;
}

/* Encodes text with flags STEER_TOK_ADD_BOS / STEER_TOK_PARSE_SPECIAL.
 * Owner: tokenizer.c. See steer_tokenize_ex for the contract. */
int tok_encode_ex(const tokenizer *t, const char *text, int flags, int *tokens, int max_tokens, int *n_tokens)
{
    if (!t || !text || !n_tokens) return steer_err(STEER_EARG, "tok_encode: NULL argument");
    *n_tokens = 0;
    if (max_tokens < 0 || (max_tokens > 0 && !tokens))
        return steer_err(STEER_EARG, "tok_encode: bad output buffer (max_tokens %d)", max_tokens);
    if (flags & ~(STEER_TOK_ADD_BOS | STEER_TOK_PARSE_SPECIAL))
        return steer_err(STEER_EARG, "tok_encode: unknown flags 0x%x", (unsigned)flags);
    size_t tl = strlen(text);
    if (tl > (UINT32_MAX - 8) / 3 / 2 || tl > (size_t)INT_MAX / 8)
        return steer_err(STEER_EARG, "tok_encode: text too long (%zu bytes)", tl);

    tok_vec out = {0};
    tok_scratch s = {0};
    int rc = STEER_OK;
    if ((flags & STEER_TOK_ADD_BOS) && t->bos >= 0) rc = tok_vec_push(&out, t->bos);
    int parse = (flags & STEER_TOK_PARSE_SPECIAL) != 0;
    int scan = 0;
    for (int k = 0; k < t->n_special && !scan; k++) scan = parse || t->type[t->special[k].id] == TOK_USER;
    size_t frag = 0, pos = 0;
    while (scan && rc == STEER_OK && pos < tl) {
        uint32_t ml = 0;
        int id = tok_match_special(t, text + pos, tl - pos, parse, &ml);
        if (id < 0) {
            pos++;
            continue;
        }
        size_t fend = pos;
        if (t->flags[id] & TOK_F_LSTRIP)
            while (fend > frag && tok_is_space(text[fend - 1])) fend--;
        rc = tok_encode_fragment(t, text, frag, fend - frag, &s, &out);
        if (rc == STEER_OK) rc = tok_vec_push(&out, id);
        pos += ml;
        if (t->flags[id] & TOK_F_RSTRIP)
            while (pos < tl && tok_is_space(text[pos])) pos++;
        frag = pos;
    }
    if (rc == STEER_OK) rc = tok_encode_fragment(t, text, frag, tl - frag, &s, &out);
    tok_scratch_free(&s);
    if (rc == STEER_OK) {
        *n_tokens = out.n;
        if (out.n > max_tokens)
            rc = steer_err(STEER_EARG, "tok_encode: %d tokens do not fit in a buffer of %d", out.n, max_tokens);
        else if (out.n > 0)
            memcpy(tokens, out.v, (size_t)out.n * sizeof *out.v);
    }
    free(out.v);
    return rc;
}

/* Encodes text (special tokens are plain text). Owner: tokenizer.c. See
 * steer_tokenize for the contract. */
int tok_encode(const tokenizer *t, const char *text, int add_bos, int *tokens, int max_tokens, int *n_tokens)
{
    if (!t || !text || !n_tokens) return steer_err(STEER_EARG, "tok_encode: NULL argument");
    *n_tokens = 0;
    if (add_bos && t->bos < 0) return steer_err(STEER_EARG, "tok_encode: the vocabulary has no BOS token");
    return tok_encode_ex(t, text, add_bos ? STEER_TOK_ADD_BOS : 0, tokens, max_tokens, n_tokens);
}

/* ---------------------------------------------------------------- decode */

/* Bytes of token as it appears after prev. Owner: tokenizer.c; the result
 * points into the tokenizer (or static storage for byte pieces). */
const char *tok_piece(const tokenizer *t, int prev, int token, size_t *len)
{
    if (len) *len = 0;
    if (!t || token < 0 || token >= t->n_vocab) return NULL;
    if (t->byte_val[token] >= 0) {
        if (len) *len = 1;
        return (const char *)&tok_bytes[t->byte_val[token]];
    }
    const char *s = t->dbuf + t->doff[token];
    size_t n = t->dlen[token];
    /* SentencePiece-style: the dummy-prefix space after BOS is dropped. */
    if (t->kind == TOK_KIND_SPM && prev == t->bos && prev >= 0 && n > 0 && s[0] == ' ') {
        s++;
        n--;
    }
    if (len) *len = n;
    return s;
}

/* ---------------------------------------------------------------- writers */

/* Writes the vocabulary as GGUF tokenizer.ggml.* keys. Owner: tokenizer.c;
 * every value is copied by the writer. */
int tok_write_gguf(const tokenizer *t, gg_writer *w)
{
    if (!t || !w) return steer_err(STEER_EARG, "tok_write_gguf: NULL argument");
    const char *pre = NULL;
    if (t->kind == TOK_KIND_BYTE) {
        if (t->n_regex == 1 && t->pre_name && tok_pre_from_gguf_name(t->pre_name) == t->pre) pre = t->pre_name;
        else if (t->n_regex == 1) pre = tok_pre_gguf_name(t->pre);
        if (!pre)
            return steer_err(STEER_EUNSUPPORTED, "tok_write_gguf: this byte-level pre-tokenizer (%d regexes) has no "
                             "GGUF name (only the GPT-2, Llama 3 and Qwen2 ones)", t->n_regex);
    }
    int n = t->n_vocab, rc = STEER_OK;
    const char **toks = malloc((size_t)n * sizeof *toks);
    int32_t *types = malloc((size_t)n * sizeof *types);
    char **merges = NULL;
    if (!toks || !types) rc = steer_err(STEER_ENOMEM, "tok_write_gguf: out of memory");
    for (int i = 0; i < n && rc == STEER_OK; i++) {
        toks[i] = t->ibuf + t->ioff[i];
        types[i] = t->type[i];
    }
    if (rc == STEER_OK && t->n_merges > 0) {
        merges = calloc((size_t)t->n_merges, sizeof *merges);
        if (!merges) rc = steer_err(STEER_ENOMEM, "tok_write_gguf: out of memory");
        for (int m = 0; m < t->n_merges && rc == STEER_OK; m++) {
            int l = t->merge_l[m], r = t->merge_r[m];
            merges[m] = malloc((size_t)t->ilen[l] + t->ilen[r] + 2);
            if (!merges[m]) { rc = steer_err(STEER_ENOMEM, "tok_write_gguf: out of memory"); break; }
            memcpy(merges[m], t->ibuf + t->ioff[l], t->ilen[l]);
            merges[m][t->ilen[l]] = ' ';
            memcpy(merges[m] + t->ilen[l] + 1, t->ibuf + t->ioff[r], t->ilen[r]);
            merges[m][t->ilen[l] + 1 + t->ilen[r]] = 0;
        }
    }
    if (rc == STEER_OK) {
        rc = gg_writer_set_str(w, "tokenizer.ggml.model", t->kind == TOK_KIND_SPM ? "llama" : "gpt2");
        if (!rc && pre) rc = gg_writer_set_str(w, "tokenizer.ggml.pre", pre);
        if (!rc && t->kind == TOK_KIND_SPM && !t->pre_name) rc = gg_writer_set_str(w, "tokenizer.ggml.pre", "default");
        if (!rc && t->kind == TOK_KIND_SPM && t->pre_name) rc = gg_writer_set_str(w, "tokenizer.ggml.pre", t->pre_name);
        if (!rc) rc = gg_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, n);
        if (!rc && t->kind == TOK_KIND_SPM) rc = gg_writer_set_arr_f32(w, "tokenizer.ggml.scores", t->score, n);
        if (!rc) rc = gg_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, n);
        if (!rc && merges)
            rc = gg_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, t->n_merges);
        if (!rc && t->bos >= 0) rc = gg_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos);
        if (!rc && t->eos >= 0) rc = gg_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos);
        if (!rc && t->unk >= 0) rc = gg_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk);
        if (!rc) rc = gg_writer_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos);
        if (!rc) rc = gg_writer_set_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos);
        if (!rc && t->kind == TOK_KIND_SPM)
            rc = gg_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix);
        if (!rc && t->chat_template) rc = gg_writer_set_str(w, "tokenizer.chat_template", t->chat_template);
    }
    if (merges)
        for (int m = 0; m < t->n_merges; m++) free(merges[m]);
    free(merges);
    free(toks);
    free(types);
    return rc;
}

/* Appends n bytes to a growable buffer. Owner: tokenizer.c (writers). */
static int tok_buf_add(char **b, size_t *len, size_t *cap, const void *p, size_t n)
{
    if (*len + n > *cap) {
        size_t nc = (*cap ? *cap : 4096);
        while (nc < *len + n) nc *= 2;
        char *nb = realloc(*b, nc);
        if (!nb) return -1;
        *b = nb;
        *cap = nc;
    }
    memcpy(*b + *len, p, n);
    *len += n;
    return 0;
}

/* Writes a llama2.c tokenizer.bin (SentencePiece-style vocabularies with
 * <unk>, <s>, </s> at ids 0, 1, 2, as run.c assumes). Owner: tokenizer.c. */
int tok_write_llama2c(const tokenizer *t, const char *path)
{
    if (!t || !path) return steer_err(STEER_EARG, "tok_write_llama2c: NULL argument");
    if (t->kind != TOK_KIND_SPM)
        return steer_err(STEER_EUNSUPPORTED, "%s: a byte-level vocabulary cannot be written as llama2.c tokenizer.bin",
                         path);
    if (t->n_vocab < 3 || t->unk != 0 || t->bos != 1 || t->eos != 2)
        return steer_err(STEER_EUNSUPPORTED, "%s: llama2.c tokenizer.bin needs <unk>, <s>, </s> at ids 0, 1, 2 "
                         "(this vocabulary has unk %d, bos %d, eos %d)", path, t->unk, t->bos, t->eos);
    char *b = NULL;
    size_t len = 0, cap = 0;
    int32_t max_len = 0;
    int bad = tok_buf_add(&b, &len, &cap, &max_len, 4); /* patched below */
    char *piece = NULL;
    size_t pcap = 0;
    for (int i = 0; i < t->n_vocab && !bad; i++) {
        const char *s = t->ibuf + t->ioff[i];
        size_t n = t->ilen[i];
        if (pcap < n + 3) {
            char *np = realloc(piece, n + 3);
            if (!np) { bad = 1; break; }
            piece = np;
            pcap = n + 3;
        }
        size_t pl = 0;
        int nl = i == t->bos || i == t->eos; /* "\n<s>\n", "\n</s>\n" */
        if (nl) piece[pl++] = '\n';
        for (size_t k = 0; k < n;) {
            if (n - k >= 3 && memcmp(s + k, TOK_SPACE_MARK, 3) == 0) {
                piece[pl++] = ' ';
                k += 3;
            } else {
                piece[pl++] = s[k++];
            }
        }
        if (nl) piece[pl++] = '\n';
        if (pl > INT32_MAX) { bad = 1; break; }
        int32_t l32 = (int32_t)pl;
        if (l32 > max_len) max_len = l32;
        float sc = t->score[i];
        bad = tok_buf_add(&b, &len, &cap, &sc, 4) || tok_buf_add(&b, &len, &cap, &l32, 4) ||
              tok_buf_add(&b, &len, &cap, piece, pl);
    }
    free(piece);
    if (bad) {
        free(b);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    memcpy(b, &max_len, 4);
    int rc = io_write_atomic(path, b, len);
    free(b);
    return rc;
}

/* tokenizer.c — SentencePiece-style BPE with byte fallback (tok_ module).
 *
 * One in-memory representation serves both file formats:
 *   - "internal" piece text: spaces written as U+2581 "▁" (as GGUF stores them),
 *     used for lookups and merges;
 *   - "decoded" piece text: what the token stands for in output text (▁ → ' ').
 * llama2.c tokenizer.bin files store ' ', so they are converted on load.
 *
 * Encoding (tok_encode), as llama.cpp's SPM tokenizer does it:
 *   1. prepend a space (the dummy prefix) to non-empty text if add_space_prefix,
 *      replace every ' ' by "▁";
 *   2. split into UTF-8 code points (symbols = byte spans of that text);
 *   3. repeatedly merge the adjacent pair whose concatenation is a vocab piece
 *      with the highest score, leftmost pair on ties (a binary heap of
 *      candidate pairs; stale entries are skipped when popped);
 *   4. emit each final symbol's id, or <0xXX> byte tokens for a code point that
 *      is not a piece (one <unk> if the vocabulary lacks one of those bytes).
 * Piece lookup is an open-addressing hash table over the internal text.
 * Control, unknown and byte pieces are not in the table: text such as "<s>" or
 * "<0x41>" is ordinary text (parse_special = false).
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define TOK_MAX_VOCAB (1 << 24) /* sanity bound on vocabulary size            */

struct tokenizer {
    int n_vocab;
    int bos, eos, unk;          /* -1 if absent                                */
    int add_space_prefix;
    char *ibuf;                 /* internal pieces, NUL-separated              */
    char *dbuf;                 /* decoded pieces, NUL-separated               */
    uint32_t *ioff, *ilen;      /* [n_vocab] internal piece spans in ibuf      */
    uint32_t *doff, *dlen;      /* [n_vocab] decoded piece spans in dbuf       */
    float *score;               /* [n_vocab]                                   */
    uint8_t *type;              /* [n_vocab] TOK_*                             */
    int16_t *byte_val;          /* [n_vocab] 0..255 for <0xXX> tokens, else -1 */
    int byte_tok[256];          /* byte → <0xXX> token id, -1 if missing       */
    uint32_t hash_mask;         /* capacity - 1 (power of two)                 */
    int32_t *hash;              /* token ids, -1 = empty slot                  */
};

/* Every byte value once, so byte pieces can point into static storage. */
#define TOK_R4(b) (b), (b) + 1, (b) + 2, (b) + 3
#define TOK_R16(b) TOK_R4(b), TOK_R4((b) + 4), TOK_R4((b) + 8), TOK_R4((b) + 12)
#define TOK_R64(b) TOK_R16(b), TOK_R16((b) + 16), TOK_R16((b) + 32), TOK_R16((b) + 48)
static const unsigned char tok_bytes[256] = {TOK_R64(0), TOK_R64(64), TOK_R64(128), TOK_R64(192)};

static const char TOK_SPACE_MARK[3] = {(char)0xE2, (char)0x96, (char)0x81}; /* U+2581 */

/* ---------------------------------------------------------------- helpers */

/* FNV-1a over a byte span. Owner: tokenizer.c (hash table). */
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

/* Allocates the per-token arrays of a tokenizer of n tokens (zeroed struct).
 * Owner: tokenizer.c (loaders). */
static tokenizer *tok_alloc(int n)
{
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n_vocab = n;
    t->bos = t->eos = t->unk = -1;
    t->add_space_prefix = 1;
    t->ioff = malloc((size_t)n * sizeof *t->ioff);
    t->ilen = malloc((size_t)n * sizeof *t->ilen);
    t->doff = malloc((size_t)n * sizeof *t->doff);
    t->dlen = malloc((size_t)n * sizeof *t->dlen);
    t->score = malloc((size_t)n * sizeof *t->score);
    t->type = malloc((size_t)n * sizeof *t->type);
    t->byte_val = malloc((size_t)n * sizeof *t->byte_val);
    if (!t->ioff || !t->ilen || !t->doff || !t->dlen || !t->score || !t->type || !t->byte_val) {
        tok_free(t);
        return NULL;
    }
    return t;
}

/* Builds the lookup hash table and the byte → token table once pieces, types
 * and byte_val are set. Returns STEER_OK or STEER_ENOMEM. Owner: tokenizer.c. */
static int tok_finish(tokenizer *t, const char *path)
{
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_vocab * 2u) cap <<= 1;
    t->hash = malloc((size_t)cap * sizeof *t->hash);
    if (!t->hash) return steer_err(STEER_ENOMEM, "%s: out of memory for the vocabulary index", path);
    memset(t->hash, 0xff, (size_t)cap * sizeof *t->hash);
    t->hash_mask = cap - 1;
    for (int id = 0; id < t->n_vocab; id++) {
        int ty = t->type[id];
        if (ty == TOK_CONTROL || ty == TOK_UNKNOWN || ty == TOK_BYTE) continue;
        const char *s = t->ibuf + t->ioff[id];
        uint32_t n = t->ilen[id];
        if (n == 0) continue; /* never looked up */
        uint32_t i = (uint32_t)tok_hash_bytes(s, n) & t->hash_mask;
        for (;;) {
            int32_t old = t->hash[i];
            if (old < 0) { t->hash[i] = id; break; }
            if (t->ilen[old] == n && memcmp(t->ibuf + t->ioff[old], s, n) == 0) {
                t->hash[i] = id; /* duplicate piece: the later id wins (as llama.cpp) */
                break;
            }
            i = (i + 1) & t->hash_mask;
        }
    }
    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;
    for (int id = t->n_vocab - 1; id >= 0; id--) /* lowest id wins */
        if (t->byte_val[id] >= 0) t->byte_tok[t->byte_val[id]] = id;
    return STEER_OK;
}

/* ---------------------------------------------------------------- loaders */

/* Reads a whole file with stdio. Caller frees *buf. Owner: tokenizer.c. */
static int tok_read_file(const char *path, unsigned char **buf, size_t *size)
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
        t->ioff[i] = (uint32_t)ip;
        for (size_t k = 0; k < len; k++) {
            if (s[k] == ' ') {
                memcpy(t->ibuf + ip, TOK_SPACE_MARK, 3);
                ip += 3;
            } else {
                t->ibuf[ip++] = s[k];
            }
        }
        t->ilen[i] = (uint32_t)(ip - t->ioff[i]);
        t->ibuf[ip++] = 0;
        int bv = tok_parse_byte_piece(s, len);
        t->byte_val[i] = (int16_t)bv;
        if (i == t->unk) t->type[i] = TOK_UNKNOWN;
        else if (i == t->bos || i == t->eos) t->type[i] = TOK_CONTROL;
        else if (bv >= 0) t->type[i] = TOK_BYTE;
        else t->type[i] = TOK_NORMAL;
        pos += len;
    }
    free(buf);
    rc = tok_finish(t, path);
    if (rc) { tok_free(t); return rc; }
    *out = t;
    return STEER_OK;
}

/* Loads the tokenizer embedded in a GGUF file. Owner: tokenizer.c; caller owns
 * *out (tok_free). The gguf_file may be closed afterwards (everything is copied). */
int tok_load_gguf(const gguf_file *f, tokenizer **out)
{
    if (!out) return steer_err(STEER_EARG, "tok_load_gguf: out is NULL");
    *out = NULL;
    if (!f) return steer_err(STEER_EARG, "tok_load_gguf: file is NULL");
    const char *path = gguf_path(f);
    if (!path) path = "(gguf)";
    const char *model = NULL;
    if (!gguf_has_key(f, "tokenizer.ggml.model"))
        return steer_err(STEER_EUNSUPPORTED, "%s: no embedded tokenizer (key tokenizer.ggml.model missing)", path);
    int rc = gguf_get_str(f, "tokenizer.ggml.model", &model);
    if (rc) return steer_err(STEER_EFORMAT, "%s: tokenizer.ggml.model is not a string", path);
    if (strcmp(model, "llama") != 0)
        return steer_err(STEER_EUNSUPPORTED, "%s: tokenizer model \"%s\" is not supported (only \"llama\")", path,
                         model);

    uint64_t n = 0;
    const char *const *strs = NULL;
    const uint32_t *lens = NULL;
    if (!gguf_has_key(f, "tokenizer.ggml.tokens"))
        return steer_err(STEER_EFORMAT, "%s: missing key tokenizer.ggml.tokens", path);
    rc = gguf_get_arr_str(f, "tokenizer.ggml.tokens", &n, &strs, &lens);
    if (rc) return steer_err(STEER_EFORMAT, "%s: tokenizer.ggml.tokens is not an array of strings", path);
    if (n < 1 || n > TOK_MAX_VOCAB)
        return steer_err(STEER_EFORMAT, "%s: bad vocabulary size %llu", path, (unsigned long long)n);
    int nv = (int)n;

    float *scores = NULL;
    int32_t *types = NULL;
    if (gguf_has_key(f, "tokenizer.ggml.scores")) {
        uint64_t ns = 0;
        rc = gguf_get_arr_f32(f, "tokenizer.ggml.scores", &ns, &scores);
        if (rc) return steer_err(rc == STEER_ENOMEM ? rc : STEER_EFORMAT, "%s: tokenizer.ggml.scores: %s", path,
                                 rc == STEER_ENOMEM ? "out of memory" : "not an array of numbers");
        if (ns != n) {
            free(scores);
            return steer_err(STEER_EFORMAT, "%s: %llu scores for %d tokens", path, (unsigned long long)ns, nv);
        }
    }
    if (gguf_has_key(f, "tokenizer.ggml.token_type")) {
        uint64_t nt = 0;
        rc = gguf_get_arr_i32(f, "tokenizer.ggml.token_type", &nt, &types);
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

    /* Special ids: SPM defaults as llama.cpp (unk 0, bos 1, eos 2). */
    static const char *const id_keys[3] = {"tokenizer.ggml.unknown_token_id", "tokenizer.ggml.bos_token_id",
                                           "tokenizer.ggml.eos_token_id"};
    int ids[3] = {0, 1, 2};
    for (int k = 0; k < 3; k++) {
        if (!gguf_has_key(f, id_keys[k])) {
            if (ids[k] >= nv) ids[k] = -1;
            continue;
        }
        uint32_t v;
        rc = gguf_get_u32(f, id_keys[k], &v);
        if (rc || v >= (uint32_t)nv) {
            free(scores);
            free(types);
            if (rc) return steer_err(STEER_EFORMAT, "%s: %s is not an integer", path, id_keys[k]);
            return steer_err(STEER_EFORMAT, "%s: %s = %u is outside the vocabulary (%d tokens)", path, id_keys[k],
                             v, nv);
        }
        ids[k] = (int)v;
    }
    int add_space = 1;
    if (gguf_has_key(f, "tokenizer.ggml.add_space_prefix")) {
        rc = gguf_get_bool(f, "tokenizer.ggml.add_space_prefix", &add_space);
        if (rc) {
            free(scores);
            free(types);
            return steer_err(STEER_EFORMAT, "%s: tokenizer.ggml.add_space_prefix is not a bool", path);
        }
        add_space = add_space != 0;
    }

    /* Size the piece buffers. */
    size_t isize = 0, dsize = 0;
    for (int i = 0; i < nv; i++) {
        if (!strs[i]) {
            free(scores);
            free(types);
            return steer_err(STEER_EFORMAT, "%s: token %d has no text", path, i);
        }
        isize += (size_t)lens[i] + 1;
        dsize += (size_t)lens[i] + 1;
    }
    if (isize > UINT32_MAX) {
        free(scores);
        free(types);
        return steer_err(STEER_EFORMAT, "%s: vocabulary text too large", path);
    }
    tokenizer *t = tok_alloc(nv);
    if (t) {
        t->ibuf = malloc(isize);
        t->dbuf = malloc(dsize);
    }
    if (!t || !t->ibuf || !t->dbuf) {
        free(scores);
        free(types);
        tok_free(t);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    t->unk = ids[0];
    t->bos = ids[1];
    t->eos = ids[2];
    t->add_space_prefix = add_space;
    size_t ip = 0, dp = 0;
    for (int i = 0; i < nv; i++) {
        const char *s = strs[i];
        size_t len = lens[i];
        int ty = types ? types[i] : TOK_NORMAL;
        if (ty < TOK_NORMAL || ty > TOK_BYTE) ty = TOK_NORMAL; /* 0 = undefined in GGUF */
        t->type[i] = (uint8_t)ty;
        t->score[i] = scores ? scores[i] : 0.0f;
        t->ioff[i] = (uint32_t)ip;
        t->ilen[i] = (uint32_t)len;
        memcpy(t->ibuf + ip, s, len);
        ip += len;
        t->ibuf[ip++] = 0;
        t->doff[i] = (uint32_t)dp;
        for (size_t k = 0; k < len;) {
            if (len - k >= 3 && memcmp(s + k, TOK_SPACE_MARK, 3) == 0) {
                t->dbuf[dp++] = ' ';
                k += 3;
            } else {
                t->dbuf[dp++] = s[k++];
            }
        }
        t->dlen[i] = (uint32_t)(dp - t->doff[i]);
        t->dbuf[dp++] = 0;
        /* Byte pieces: typed BYTE; when the file gives no types, by their text. */
        int bv = tok_parse_byte_piece(s, len);
        if (bv >= 0 && types && ty != TOK_BYTE) bv = -1;
        if (bv >= 0) t->type[i] = TOK_BYTE;
        t->byte_val[i] = (int16_t)bv;
    }
    if (!types) {
        if (t->unk >= 0) t->type[t->unk] = TOK_UNKNOWN;
        if (t->bos >= 0) t->type[t->bos] = TOK_CONTROL;
        if (t->eos >= 0) t->type[t->eos] = TOK_CONTROL;
    }
    free(scores);
    free(types);
    rc = tok_finish(t, path);
    if (rc) { tok_free(t); return rc; }
    *out = t;
    return STEER_OK;
}

/* Frees a tokenizer (NULL is fine). Owner: tokenizer.c. */
void tok_free(tokenizer *t)
{
    if (!t) return;
    free(t->ibuf);
    free(t->dbuf);
    free(t->ioff);
    free(t->ilen);
    free(t->doff);
    free(t->dlen);
    free(t->score);
    free(t->type);
    free(t->byte_val);
    free(t->hash);
    free(t);
}

/* Accessors. Owner: tokenizer.c. */
int tok_n_vocab(const tokenizer *t) { return t ? t->n_vocab : 0; }
int tok_bos(const tokenizer *t) { return t ? t->bos : -1; }
int tok_eos(const tokenizer *t) { return t ? t->eos : -1; }

/* ---------------------------------------------------------------- encode */

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

/* Encodes text. Owner: tokenizer.c. See steer_tokenize for the contract. */
int tok_encode(const tokenizer *t, const char *text, int add_bos, int *tokens, int max_tokens, int *n_tokens)
{
    if (!t || !text || !n_tokens) return steer_err(STEER_EARG, "tok_encode: NULL argument");
    *n_tokens = 0;
    if (max_tokens < 0 || (max_tokens > 0 && !tokens))
        return steer_err(STEER_EARG, "tok_encode: bad output buffer (max_tokens %d)", max_tokens);
    if (add_bos && t->bos < 0) return steer_err(STEER_EARG, "tok_encode: the vocabulary has no BOS token");
    size_t tl = strlen(text);
    if (tl > (UINT32_MAX - 8) / 3 / 2 || tl > (size_t)INT_MAX / 8)
        return steer_err(STEER_EARG, "tok_encode: text too long (%zu bytes)", tl);

    /* 1. Escape: dummy prefix, ' ' → ▁. */
    char *buf = malloc(3 * tl + 4);
    if (!buf) return steer_err(STEER_ENOMEM, "tok_encode: out of memory");
    size_t bl = 0;
    if (tl > 0 && t->add_space_prefix) {
        memcpy(buf, TOK_SPACE_MARK, 3);
        bl = 3;
    }
    for (size_t i = 0; i < tl; i++) {
        if (text[i] == ' ') {
            memcpy(buf + bl, TOK_SPACE_MARK, 3);
            bl += 3;
        } else {
            buf[bl++] = text[i];
        }
    }

    /* 2. Code points. At most bl symbols; each yields at most 4 byte tokens but
     *    never more tokens than bytes. */
    tok_sym *sym = malloc((bl + 1) * sizeof *sym);
    tok_pair *heap = malloc((3 * bl + 1) * sizeof *heap);
    int *ids = malloc((bl + 2) * sizeof *ids);
    if (!sym || !heap || !ids) {
        free(buf); free(sym); free(heap); free(ids);
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

    /* 3. Merges. */
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

    /* 4. Output. */
    int nt = 0, rc = STEER_OK;
    if (add_bos) ids[nt++] = t->bos;
    for (int i = ns > 0 ? 0 : -1; i >= 0; i = sym[i].next) {
        int id = tok_lookup(t, buf + sym[i].start, sym[i].n);
        if (id >= 0) {
            ids[nt++] = id;
            continue;
        }
        /* Not a piece: one <0xXX> token per byte, or one <unk> for the whole
         * code point if some byte has no byte token. */
        int have_all = 1;
        for (uint32_t k = 0; k < sym[i].n; k++) {
            int bt = t->byte_tok[(unsigned char)buf[sym[i].start + k]];
            if (bt < 0) have_all = 0;
        }
        if (!have_all) {
            if (t->unk < 0) {
                rc = steer_err(STEER_EUNSUPPORTED, "tok_encode: text byte 0x%02X has no byte token and the "
                               "vocabulary has no <unk>", (unsigned char)buf[sym[i].start]);
                goto done;
            }
            ids[nt++] = t->unk;
            continue;
        }
        for (uint32_t k = 0; k < sym[i].n; k++) ids[nt++] = t->byte_tok[(unsigned char)buf[sym[i].start + k]];
    }
    *n_tokens = nt;
    if (nt > max_tokens) {
        rc = steer_err(STEER_EARG, "tok_encode: %d tokens do not fit in a buffer of %d", nt, max_tokens);
        goto done;
    }
    if (nt > 0) memcpy(tokens, ids, (size_t)nt * sizeof *ids);
done:
    free(buf);
    free(sym);
    free(heap);
    free(ids);
    return rc;
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
    if (prev == t->bos && prev >= 0 && n > 0 && s[0] == ' ') {
        s++;
        n--;
    }
    if (len) *len = n;
    return s;
}

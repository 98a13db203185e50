/*
 * tok_impl.h — the tokenizer's private representation, shared by the tok_
 * files only (tokenizer.c: core, GGUF and llama2.c formats, encoding and
 * decoding; tok_hf.c: Hugging Face tokenizer.json / tokenizer.model /
 * tokenizer_config.json; tok_pretok.c: byte-level alphabet and PCRE2
 * pre-tokenizer regexes). Everything else uses tok.h.
 */
#ifndef STEER_TOK_IMPL_H
#define STEER_TOK_IMPL_H

#include "tok.h"

#include <stddef.h>
#include <stdint.h>

#define TOK_MAX_VOCAB (1 << 24) /* sanity bound on vocabulary size            */
#define TOK_MAX_REGEX 4         /* pre-tokenizer split regexes, applied in turn */

/* Vocabulary styles. */
enum {
    TOK_KIND_SPM = 0,  /* SentencePiece-style: "▁" for space, <0xXX> byte fallback */
    TOK_KIND_BYTE = 1, /* byte-level BPE (GPT-2): bytes mapped to printable code
                          points, regex pre-tokenizer, ranked merges            */
};

/* Per-token flags (added tokens of tokenizer.json). */
enum { TOK_F_LSTRIP = 1, TOK_F_RSTRIP = 2 };

/* Names of the known pre-tokenizer regexes (GGUF tokenizer.ggml.pre). */
enum { TOK_PRE_NONE = 0, TOK_PRE_GPT2, TOK_PRE_LLAMA3, TOK_PRE_QWEN2, TOK_PRE_CUSTOM };

typedef struct {
    int32_t id;
    uint32_t off, len; /* the text matched in the input, in spbuf   */
    uint32_t c0;       /* its first byte (sort key)                  */
} tok_special;

struct tokenizer {
    int n_vocab;
    int kind;                   /* TOK_KIND_*                                   */
    int bos, eos, unk;          /* -1 if absent                                 */
    int add_bos, add_eos;       /* the vocabulary's configuration (stored and
                                   written back; STEER_TOK_ADD_BOS decides)     */

    /* SentencePiece-style text rules */
    int add_space_prefix;       /* dummy "▁" before a text fragment             */
    int prefix_first_only;      /* ... only before the fragment at offset 0
                                   (HF Metaspace prepend_scheme "first")        */
    int prefix_if_no_space;     /* ... only if it does not start with a space
                                   (HF Metaspace; llama.cpp/Prepend always add) */
    int meta_split;             /* split words before each "▁" (HF Metaspace)   */
    int byte_fallback;          /* rank-based SPM: unknown chars → <0xXX>       */

    /* byte-level rules */
    int bl_prefix_space;        /* HF ByteLevel add_prefix_space                */
    int ignore_merges;          /* a word that is a piece is emitted whole      */
    int pre;                    /* TOK_PRE_*                                    */
    char *pre_name;             /* GGUF tokenizer.ggml.pre as read, or NULL     */
    int n_regex;
    char *regex_src[TOK_MAX_REGEX];
    void *regex_code[TOK_MAX_REGEX]; /* pcre2_code_8 *                         */

    char *chat_template;        /* or NULL                                      */

    /* pieces */
    char *ibuf;                 /* internal pieces, NUL-separated               */
    char *dbuf;                 /* decoded pieces, NUL-separated                */
    uint32_t *ioff, *ilen;      /* [n_vocab] internal piece spans in ibuf       */
    uint32_t *doff, *dlen;      /* [n_vocab] decoded piece spans in dbuf        */
    float *score;               /* [n_vocab]                                    */
    uint8_t *type;              /* [n_vocab] TOK_*                              */
    uint8_t *flags;             /* [n_vocab] TOK_F_*                            */
    int16_t *byte_val;          /* [n_vocab] 0..255 for <0xXX> tokens, else -1  */
    int byte_tok[256];          /* byte → <0xXX> token id, -1 if missing        */
    uint32_t hash_mask;         /* capacity - 1 (power of two)                  */
    int32_t *hash;              /* mergeable pieces → id, -1 = empty slot       */
    int32_t *ahash;             /* every piece → id (tok_piece_id)              */

    /* ranked merges (byte-level; SentencePiece-style from tokenizer.json).
       With none, SentencePiece-style vocabularies merge by score.            */
    int n_merges;
    int32_t *merge_l, *merge_r, *merge_res; /* [n_merges] in rank order         */
    uint32_t mhash_mask;
    int32_t *mhash;             /* (left, right) → rank, -1 = empty              */

    /* special / added tokens matched in text before tokenizing */
    int n_special;
    tok_special *special;       /* sorted by first byte, then longest first     */
    int32_t special_start[257]; /* bucket of each first byte in special[]       */
    char *spbuf;
};

/* tokenizer.c */
tokenizer *tok_alloc(int n);
/* Copies piece i: internal text s[0..n); the decoded text is derived from it
 * (SentencePiece-style: "▁" → ' '; byte-level NORMAL/BYTE pieces: code points
 * mapped back to bytes). Pieces must be added in id order into buffers sized
 * by tok_alloc_text. */
int tok_alloc_text(tokenizer *t, size_t total_internal_bytes);
void tok_set_piece(tokenizer *t, int i, const char *s, size_t n, size_t *ip, size_t *dp);
/* Builds the hash tables, byte table, merge table and special-token table.
 * Errors name path. */
int tok_finish(tokenizer *t, const char *path);
/* Adds merges (left, right) in rank order; merge_res is looked up. Entries
 * whose pieces or concatenation are not in the vocabulary are an error. */
int tok_set_merges(tokenizer *t, int n, const char *const *left, const uint32_t *llen,
                   const char *const *right, const uint32_t *rlen, const char *path);
/* Id of any piece with internal text s[0..n), or -1. */
int tok_find_any(const tokenizer *t, const char *s, size_t n);
int tok_read_file(const char *path, unsigned char **buf, size_t *size);

/* tok_pretok.c */
/* GPT-2 byte ↔ code point alphabet. */
uint32_t tok_byte_to_cp(unsigned b);
int tok_cp_to_byte(uint32_t cp); /* -1 if cp is not in the alphabet */
/* Encodes cp as UTF-8 into out (4 bytes room); returns the length. */
int tok_utf8_put(uint32_t cp, char *out);
/* Decodes one UTF-8 code point from s[0..n) (n > 0): its length (1..4) and
 * *cp, or 0 for an invalid sequence. */
int tok_utf8_get(const unsigned char *s, size_t n, uint32_t *cp);
/* Known regexes. */
const char *tok_pre_regex(int pre);
int tok_pre_from_gguf_name(const char *name); /* TOK_PRE_*, -1 unknown */
const char *tok_pre_gguf_name(int pre);
int tok_pre_from_regex(const char *re);       /* TOK_PRE_CUSTOM if unknown */
/* Adds and compiles one split regex (copied). Errors name path. */
int tok_regex_add(tokenizer *t, const char *re, const char *path);
void tok_regex_free(tokenizer *t);
/* Splits text[0..n) with the regexes in turn (HF Split "Isolated": matches
 * and the text between them both become pieces). *spans receives pairs
 * (offset, length) — malloc'd, caller frees — and *n_spans their count. */
int tok_regex_split(const tokenizer *t, const char *text, size_t n, uint32_t **spans, int *n_spans);

#endif

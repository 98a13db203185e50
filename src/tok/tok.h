/*
 * tok.h — the tokenizer tier (src/tok/): BPE tokenizers from llama2.c, GGUF
 * and Hugging Face files. Builds on formats.h. Not installed.
 */
#ifndef STEER_TOK_H
#define STEER_TOK_H

#include "formats.h"

/* ---------------------------------------------------------------- tokenizer (tokenizer.c) */

/* BPE tokenizers (tokenizer.c, tok_hf.c, tok_pretok.c; shared struct in
 * tok_impl.h). SentencePiece style, as llama2.c run.c and llama.cpp's SPM
 * tokenizer do it: dummy-prefix space, spaces as U+2581 "▁", code points
 * looked up whole or as <0xXX> byte tokens, then greedy merges of the adjacent
 * pair with the highest score (leftmost wins ties). Byte-level style (GPT-2,
 * Llama 3, Qwen2): PCRE2 pre-split, bytes mapped to characters, merges by
 * rank. */
typedef struct tokenizer tokenizer;

/* Token types (as GGUF tokenizer.ggml.token_type). */
enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER = 4, TOK_UNUSED = 5, TOK_BYTE = 6 };

/* llama2.c tokenizer.bin: int32 max_token_length, then per token
 * float score, int32 len, bytes. n_vocab from the model header. */
int tok_load_llama2c(const char *path, int n_vocab, tokenizer **out);
/* tokenizer.ggml.{model="llama", tokens, scores, token_type, bos/eos/unk ids,
 * add_space_prefix}. */
int tok_load_gguf(const gg_file *f, tokenizer **out);
void tok_free(tokenizer *t);

int tok_n_vocab(const tokenizer *t);
int tok_bos(const tokenizer *t);
int tok_eos(const tokenizer *t);
/* The vocabulary's add_bos_token / add_eos_token settings (1/0). */
int tok_add_bos(const tokenizer *t);
int tok_add_eos(const tokenizer *t);

/* Encodes text; see steer_tokenize for the contract. */
int tok_encode(const tokenizer *t, const char *text, int add_bos, int *tokens, int max_tokens, int *n_tokens);
/* flags: STEER_TOK_ADD_BOS | STEER_TOK_PARSE_SPECIAL (see steer_tokenize_ex). */
int tok_encode_ex(const tokenizer *t, const char *text, int flags, int *tokens, int max_tokens, int *n_tokens);

/* Hugging Face tokenizer files in dir: tokenizer.json (model BPE, either
 * SentencePiece-style — "▁", byte fallback, Llama 2 / Mistral / Gemma — or
 * byte-level with a pre-tokenizer split regex run through PCRE2 — GPT-2,
 * Llama 3, Qwen2), with its added/special tokens; else tokenizer.model (a
 * SentencePiece protobuf). tokenizer_config.json gives add_bos_token,
 * add_eos_token, bos/eos tokens and chat_template. Errors name the file. */
int tok_load_hf(const char *dir, tokenizer **out);
/* A SentencePiece-style vocabulary from arrays (pieces use U+2581 for space;
 * types as TOK_*; copied). For random-weight models and tests. */
int tok_build_spm(int n, const char *const *pieces, const float *scores, const int *types, int bos, int eos,
                  int unk, int add_space_prefix, tokenizer **out);
/* Writers: the vocabulary as GGUF tokenizer.ggml.* keys (the tokenizer must
 * outlive gg_writer_write), as tokenizer.json + tokenizer_config.json in dir
 * (atomic), or as a llama2.c tokenizer.bin (SentencePiece-style only). */
int tok_write_gguf(const tokenizer *t, gg_writer *w);
int tok_write_hf(const tokenizer *t, const char *dir);
int tok_write_llama2c(const tokenizer *t, const char *path);
/* The raw chat template (tokenizer_config.json chat_template or GGUF
 * tokenizer.chat_template), or NULL. Valid until tok_free. */
const char *tok_chat_template(const tokenizer *t);
/* Id of a piece spelled exactly so (e.g. "<|im_start|>"), or -1. */
int tok_piece_id(const tokenizer *t, const char *piece);
/* See steer_token_piece. */
const char *tok_piece(const tokenizer *t, int prev, int token, size_t *len);

#endif /* STEER_TOK_H */

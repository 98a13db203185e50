/*
 * fuzz_tokjson.c — Hugging Face tokenizer files (tok_load_hf on a directory):
 * tokenizer.json (model BPE, vocab, merges in both spellings, added tokens,
 * normalizer, pre-tokenizer split regexes compiled by PCRE2, decoder) and
 * tokenizer_config.json (add_bos/eos, bos/eos tokens, chat_template). Input:
 * tokenizer.json, then optionally a NUL byte and tokenizer_config.json (JSON
 * text holds no raw NUL). Then the encoder/decoder on the sample texts.
 * Seeds: tests/fuzz/corpus/tokjson (small SentencePiece-style and byte-level
 * vocabularies). See fuzz_util.h.
 */
#include "fuzz_util.h"

static int fuzz_tokjson_one(const uint8_t *data, size_t size)
{
    char dir[600], pj[700], pc[700];
    fuzz_path(dir, sizeof dir, "tokjson");
    fuzz_mkdir(dir);
    snprintf(pj, sizeof pj, "%s/tokenizer.json", dir);
    snprintf(pc, sizeof pc, "%s/tokenizer_config.json", dir);
    const uint8_t *nul = memchr(data, 0, size);
    size_t n1 = nul ? (size_t)(nul - data) : size;
    fuzz_write(pj, data, n1);
    if (nul) fuzz_write(pc, nul + 1, size - n1 - 1);
    else remove(pc);
    tokenizer *t = NULL;
    int rc = tok_load_hf(dir, &t);
    fuzz_check_error(rc, dir);
    if (rc == STEER_OK) {
        fuzz_exercise_tokenizer(t);
        tok_free(t);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_tokjson_one)

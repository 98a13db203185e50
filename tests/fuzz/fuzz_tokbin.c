/*
 * fuzz_tokbin.c — the llama2.c tokenizer.bin reader (tok_load_llama2c) and the
 * SentencePiece-style encoder/decoder on whatever vocabulary it yields
 * (scores, byte pieces, spaces). Input: 2 bytes little-endian k, then the
 * file; the vocabulary size asked for is 3 + k % 1024 (the seeds use 512).
 * Seeds: tests/fuzz/corpus/tokbin. See fuzz_util.h.
 */
#include "fuzz_util.h"

static int fuzz_tokbin_one(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int n_vocab = 3 + (int)((data[0] | data[1] << 8) % 1024);
    char path[600];
    fuzz_path(path, sizeof path, "tokenizer.bin");
    fuzz_write(path, data + 2, size - 2);
    tokenizer *t = NULL;
    int rc = tok_load_llama2c(path, n_vocab, &t);
    fuzz_check_error(rc, path);
    if (rc == STEER_OK) {
        if (tok_n_vocab(t) != n_vocab) fuzz_fail("vocabulary size differs from the one asked for", NULL);
        fuzz_exercise_tokenizer(t);
        tok_free(t);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_tokbin_one)

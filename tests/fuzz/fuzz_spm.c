/*
 * fuzz_spm.c — SentencePiece tokenizer.model files (the protobuf reader in
 * tok_hf.c, reached through tok_load_hf on a directory holding only
 * tokenizer.model): varints, wire types, nested pieces, trainer and
 * normalizer specs. Then the encoder/decoder on the sample texts.
 * Seeds: tests/fuzz/corpus/spm. See fuzz_util.h.
 */
#include "fuzz_util.h"

static int fuzz_spm_one(const uint8_t *data, size_t size)
{
    char dir[600], pm[700];
    fuzz_path(dir, sizeof dir, "spm");
    fuzz_mkdir(dir);
    snprintf(pm, sizeof pm, "%s/tokenizer.model", dir);
    fuzz_write(pm, data, size);
    tokenizer *t = NULL;
    int rc = tok_load_hf(dir, &t);
    fuzz_check_error(rc, dir);
    if (rc == STEER_OK) {
        fuzz_exercise_tokenizer(t);
        tok_free(t);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_spm_one)

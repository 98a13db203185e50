/*
 * fuzz_llama2c.c — the llama2.c checkpoint loader (steer_model_load on a
 * legacy .bin: the 7-int header, the size the header implies, weight layout),
 * with a fixed valid 259-token tokenizer.bin passed as tokenizer_path; then
 * tokenizer, chat formatting and a 2-token forward pass.
 * Seeds: tests/fuzz/corpus/llama2c (tiny checkpoints with vocab 259). See
 * fuzz_util.h.
 */
#include "fuzz_util.h"

/* <scratch>/fixture_tok259.bin: <unk>, <s>, </s> and the 256 byte pieces. */
static const char *fuzz_llama2c_tokenizer(void)
{
    static char path[600];
    if (path[0]) return path;
    const char *pieces[259];
    char bytes[256][8];
    float scores[259];
    int types[259];
    pieces[0] = "<unk>";
    pieces[1] = "<s>";
    pieces[2] = "</s>";
    for (int i = 0; i < 3; i++) {
        scores[i] = 0;
        types[i] = i == 0 ? TOK_UNKNOWN : TOK_CONTROL;
    }
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        pieces[3 + b] = bytes[b];
        scores[3 + b] = 0;
        types[3 + b] = TOK_BYTE;
    }
    tokenizer *t = NULL;
    if (tok_build_spm(259, pieces, scores, types, 1, 2, 0, 1, &t) != STEER_OK) fuzz_fail("tok_build_spm", steer_last_error());
    fuzz_path(path, sizeof path, "fixture_tok259.bin");
    if (tok_write_llama2c(t, path) != STEER_OK) fuzz_fail("tok_write_llama2c", steer_last_error());
    tok_free(t);
    return path;
}

static int fuzz_llama2c_one(const uint8_t *data, size_t size)
{
    steer_model_params p = steer_model_default_params();
    p.tokenizer_path = fuzz_llama2c_tokenizer();
    char path[600];
    fuzz_path(path, sizeof path, "in.bin");
    fuzz_write(path, data, size);
    steer_model *m = NULL;
    int rc = steer_model_load(path, &p, &m);
    /* a bad tokenizer would be named instead; the fixture is valid, so the
     * only file to blame is the checkpoint (or the vocab sizes disagree) */
    fuzz_check_error(rc, rc == STEER_EFORMAT && strstr(steer_last_error(), "fixture_tok259") ? NULL : path);
    if (rc == STEER_OK) {
        fuzz_exercise_model(m);
        steer_model_free(m);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_llama2c_one)

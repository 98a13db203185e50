/*
 * fuzz_vectors.c — steering-vector files (SPEC §5): steer_vecset_load on
 * safetensors vector files (<site>.<layer> names, [d] / [T, d] shapes, dtypes,
 * non-finite values, __metadata__) and on llama.cpp control vectors (GGUF,
 * recognised by magic), plus steer_vecset_load_llamacpp with a model's
 * n_layer / d_model. A set that loads must survive save + load unchanged
 * (bit for bit, metadata included), as safetensors and, where expressible,
 * as a control vector; the one allowed refusal is a control vector's
 * model_hint that is not UTF-8 (the error names the output file).
 * Seeds: tests/fuzz/corpus/vectors. See fuzz_util.h.
 */
#include "fuzz_util.h"

/* 1 if a and b hold the same vectors bit for bit. */
static int fuzz_vectors_same(const steer_vecset *a, const steer_vecset *b)
{
    if (steer_vecset_count(a) != steer_vecset_count(b)) return 0;
    for (int i = 0; i < steer_vecset_count(a); i++) {
        const steer_vec *x = steer_vecset_at(a, i), *y = steer_vecset_at(b, i);
        if (x->site != y->site || x->layer != y->layer || x->n_rows != y->n_rows || x->width != y->width) return 0;
        size_t n = (size_t)(x->n_rows ? x->n_rows : 1) * (size_t)x->width;
        if (memcmp(x->data, y->data, n * sizeof(float)) != 0) return 0;
    }
    return 1;
}

static void fuzz_vectors_roundtrip(const steer_vecset *vs)
{
    char out[600];
    fuzz_path(out, sizeof out, "roundtrip.safetensors");
    int rc = steer_vecset_save(vs, out);
    fuzz_check_error(rc, out);
    /* The one allowed refusal: a control vector's model_hint (a GGUF string,
     * not checked at load) that is not UTF-8 cannot go into a safetensors
     * header; the error names the output file. */
    if (rc == STEER_EARG && strstr(steer_last_error(), "is not valid UTF-8")) return;
    if (rc != STEER_OK) fuzz_fail("a loaded vector set cannot be saved", steer_last_error());
    steer_vecset *back = NULL;
    rc = steer_vecset_load(out, &back);
    if (rc != STEER_OK) fuzz_fail("a saved vector set does not load", steer_last_error());
    if (!fuzz_vectors_same(vs, back)) fuzz_fail("save + load changed the vectors", NULL);
    for (int i = 0; i < steer_vecset_meta_count(vs); i++) {
        const char *k = steer_vecset_meta_key(vs, i), *v = steer_vecset_meta(back, k);
        if (!v || strcmp(v, steer_vecset_meta(vs, k)) != 0) fuzz_fail("save + load changed metadata", k);
    }
    steer_vecset_free(back);

    fuzz_path(out, sizeof out, "roundtrip.gguf");
    rc = steer_vecset_save_llamacpp(vs, out, NULL);
    fuzz_check_error(rc, NULL);
    if (rc != STEER_OK) return; /* not expressible as a control vector: STEER_EARG */
    rc = steer_vecset_load(out, &back);
    if (rc != STEER_OK) fuzz_fail("a saved control vector does not load", steer_last_error());
    if (!fuzz_vectors_same(vs, back)) fuzz_fail("control vector save + load changed the vectors", NULL);
    steer_vecset_free(back);
}

static int fuzz_vectors_one(const uint8_t *data, size_t size)
{
    char path[600];
    fuzz_path(path, sizeof path, "in.vec");
    fuzz_write(path, data, size);
    steer_vecset *vs = NULL;
    int rc = steer_vecset_load(path, &vs);
    fuzz_check_error(rc, path);
    if (rc == STEER_OK) {
        fuzz_vectors_roundtrip(vs);
        rc = steer_vecset_normalize(vs);
        fuzz_check_error(rc, NULL);
        steer_vecset_free(vs);
    }
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) {
        /* as a model with 5 layers of width 8 would check it */
        rc = steer_vecset_load_llamacpp(path, 5, 8, &vs);
        fuzz_check_error(rc, path);
        if (rc == STEER_OK) steer_vecset_free(vs);
    }
    return 0;
}

FUZZ_ENTRY(fuzz_vectors_one)

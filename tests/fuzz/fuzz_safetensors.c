/*
 * fuzz_safetensors.c — the safetensors reader (steer_tensors_open): header
 * length, JSON header, dtypes, shapes, data_offsets against the file, overlap
 * and duplicate checks, __metadata__. Every tensor's bytes are read, so a
 * range past the data section is an AddressSanitizer report.
 * Seeds: tests/fuzz/corpus/safetensors. See fuzz_util.h.
 */
#include "fuzz_util.h"

static int fuzz_safetensors_one(const uint8_t *data, size_t size)
{
    char path[600];
    fuzz_path(path, sizeof path, "in.safetensors");
    fuzz_write(path, data, size);
    steer_tensors *t = NULL;
    int rc = steer_tensors_open(path, &t);
    fuzz_check_error(rc, path);
    if (rc != STEER_OK) return 0;
    unsigned sum = 0;
    for (int i = 0; i < steer_tensors_count(t); i++) {
        const steer_tensor_info *ti = steer_tensors_at(t, i);
        if (!ti || !ti->name) fuzz_fail("missing tensor record", NULL);
        if (steer_tensors_find(t, ti->name) != ti) fuzz_fail("steer_tensors_find disagrees", ti->name);
        if (ti->n_dims < 0 || ti->n_dims > 8) fuzz_fail("rank out of range", ti->name);
        uint64_t n = steer_dtype_size(ti->dtype);
        for (int d = 0; d < ti->n_dims; d++) {
            if (ti->shape[d] < 0) fuzz_fail("negative dimension", ti->name);
            n *= (uint64_t)ti->shape[d];
        }
        if (n != ti->nbytes) fuzz_fail("nbytes is not the shape's size", ti->name);
        sum += fuzz_touch(ti->data, ti->nbytes);
    }
    const char *keys[] = {"format_version", "model_hint", "method", "site", "command", "format"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = steer_tensors_meta(t, keys[i]);
        if (v) sum += fuzz_touch(v, strlen(v));
    }
    steer_tensors_free(t);
    return (int)(sum & 0);
}

FUZZ_ENTRY(fuzz_safetensors_one)

/*
 * fuzz_jsonl.c — dataset files (SPEC §6; steer_data_load_file): JSON Lines in
 * the jsonl, winogrande and listops formats (line splitting, BOM, blank
 * lines, malformed JSON, fields and their types, templates, the
 * one-blank rule, answers), and the ListOps expression parser
 * (steer_listops_eval). Input: one selector byte s, then the file (or, for
 * s % 4 == 3, the expression). A dataset that loads must survive
 * steer_data_write_jsonl + load as jsonl with the same prompts and
 * completions.
 * Seeds: tests/fuzz/corpus/jsonl. See fuzz_util.h.
 */
#include "fuzz_util.h"

static void fuzz_jsonl_roundtrip(const steer_dataset *d)
{
    char out[600];
    fuzz_path(out, sizeof out, "roundtrip.jsonl");
    int rc = steer_data_write_jsonl(d, out);
    fuzz_check_error(rc, out);
    if (rc != STEER_OK) fuzz_fail("a loaded dataset cannot be written", steer_last_error());
    steer_dataset *back = NULL;
    rc = steer_data_load_file(STEER_DATA_JSONL, out, NULL, &back);
    if (rc != STEER_OK) fuzz_fail("a written dataset does not load", steer_last_error());
    if (steer_data_count(back) != steer_data_count(d)) fuzz_fail("write + load changed the item count", NULL);
    for (int i = 0; i < steer_data_count(d); i++) {
        const steer_data_item *x = steer_data_at(d, i), *y = steer_data_at(back, i);
        if (strcmp(x->prompt, y->prompt) != 0) fuzz_fail("write + load changed a prompt", x->prompt);
        if (!x->completion != !y->completion || (x->completion && strcmp(x->completion, y->completion) != 0))
            fuzz_fail("write + load changed a completion", x->prompt);
    }
    steer_data_free(back);
}

static int fuzz_jsonl_one(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int sel = data[0] % 4;
    if (sel == 3) {
        char *expr = fuzz_strndup(data + 1, size - 1);
        int v = -1, depth = -1, width = -1;
        int rc = steer_listops_eval(expr, &v, &depth, &width);
        fuzz_check_error(rc, "listops");
        if (rc == STEER_OK && (v < 0 || v > 9 || depth < 0 || width < 0)) fuzz_fail("listops value out of range", expr);
        free(expr);
        return 0;
    }
    static const steer_data_format fmts[3] = {STEER_DATA_JSONL, STEER_DATA_WINOGRANDE, STEER_DATA_LISTOPS};
    char path[600];
    fuzz_path(path, sizeof path, "in.jsonl");
    fuzz_write(path, data + 1, size - 1);
    steer_dataset *d = NULL;
    int rc = steer_data_load_file(fmts[sel], path, NULL, &d);
    fuzz_check_error(rc, path);
    if (rc != STEER_OK) return 0;
    for (int i = 0; i < steer_data_count(d); i++) {
        const steer_data_item *it = steer_data_at(d, i);
        if (!it || !it->id || !it->prompt) fuzz_fail("item without id or prompt", NULL);
        if (it->n_choices > 0 && (it->label < -1 || it->label >= it->n_choices)) fuzz_fail("label out of range", it->id);
        for (int k = 0; k < it->n_choices; k++)
            if (!it->choices[k]) fuzz_fail("missing choice", it->id);
    }
    fuzz_jsonl_roundtrip(d);
    steer_data_free(d);
    return 0;
}

FUZZ_ENTRY(fuzz_jsonl_one)

/*
 * adapter.c — a training checkpoint applied to inference (steer_train.h:
 * steer_adapter_*): the checkpoint's trainable set is rebuilt from its
 * metadata as steer_eval_dataset does (tr_params_from_checkpoint,
 * tr_build_spec, tr_load_checkpoint), and the evaluation engine
 * (train_eval.c) turns it into a model (LoRA merged in memory) and a
 * steering hook that any context of that model can take.
 */
#include "steer_train.h"
#include "steer.h"
#include "base.h"
#include "train_internal.h"
#include "train_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct steer_adapter {
    steer_tensors *st;
    tr_spec_buf sb;
    uint8_t *mask;
    trm_f32 *t;
    tr_engine *e;
    char method[32];
};

void steer_adapter_free(steer_adapter *a)
{
    if (!a) return;
    tr_engine_free(a->e);
    trm_free_f32(a->t);
    free(a->sb.layers);
    free(a->mask);
    if (a->st) steer_tensors_free(a->st);
    free(a);
}

/* What a file that is not a safetensors checkpoint is, for the message. */
static int not_safetensors(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return steer_err(STEER_EIO, "%s: cannot open", path);
    unsigned char mg[4] = {0};
    size_t n = fread(mg, 1, 4, f);
    fclose(f);
    if (n == 4 && memcmp(mg, "GGUF", 4) == 0)
        return steer_err(STEER_EFORMAT,
                         "%s: is a GGUF file (a model or a llama.cpp control vector), not a training checkpoint: "
                         "expected the adapter.safetensors that steer train writes (control vectors go with "
                         "--control-vector)",
                         path);
    return STEER_OK;
}

int steer_adapter_load(const steer_model *m, const char *path, steer_adapter **out)
{
    /* Ownership: *out is the caller's (steer_adapter_free); m must outlive it. */
    if (!m || !path || !out) return steer_err(STEER_EARG, "steer_adapter_load: NULL argument");
    *out = NULL;
    int rc = not_safetensors(path);
    if (rc) return rc;
    steer_adapter *a = calloc(1, sizeof *a);
    if (!a) return steer_err(STEER_ENOMEM, "out of memory");
    steer_train_params p;
    if ((rc = steer_tensors_open(path, &a->st)) != STEER_OK) goto fail;
    if ((rc = tr_params_from_checkpoint(a->st, path, m, &p, &a->mask)) != STEER_OK) goto fail;
    snprintf(a->method, sizeof a->method, "%s", p.method);
    if ((rc = tr_build_spec(m, &p, 1, 1, &a->sb)) != STEER_OK) goto fail;
    if ((rc = trm_new_f32(m, &a->sb.spec, &a->t)) != STEER_OK) goto fail;
    if ((rc = tr_load_checkpoint(a->t, a->st, path)) != STEER_OK) goto fail;
    if ((rc = tr_engine_new(m, a->t, &a->sb.spec, 1, 1, &a->e)) != STEER_OK) goto fail;
    *out = a;
    return STEER_OK;
fail:
    steer_adapter_free(a);
    return rc;
}

const char *steer_adapter_method(const steer_adapter *a) { return a ? a->method : NULL; }

steer_model *steer_adapter_model(steer_adapter *a) { return a ? tr_engine_model(a->e) : NULL; }

int steer_adapter_install(steer_adapter *a, steer_ctx *c)
{
    if (!a || !c) return steer_err(STEER_EARG, "steer_adapter_install: NULL argument");
    return tr_engine_install(a->e, c);
}

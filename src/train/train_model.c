/*
 * train_model.c — the float32 instance of the training graph
 * (train_model_impl.h) over the float ops of train_ops.c, and the
 * REAL-independent spec helpers. API: train_model.h; the double instance
 * lives in tests/unit/test_train_grad.c.
 */
#include "steer_train.h"
#include "train_model.h"
#include "train_ops.h"

#include <string.h>

trm_spec trm_spec_default(void)
{
    trm_spec s = {
        .B = 1, .T = 64, .full = 0,
        .lora_rank = 0, .lora_alpha = 8.0f, .lora_targets = TRM_LORA_ALL, .lora_layers = NULL,
        .steer = TRM_STEER_NONE, .steer_site = STEER_SITE_RESID_POST, .steer_layers = NULL, .steer_rank = 8,
        .steer_act = TRM_ACT_SILU, .steer_alpha = 1.0f, .joint = 0,
        .grad_site = -1, .grad_layers = NULL, .kl_rows = 0, .seed = 1,
    };
    return s;
}

int trm_spec_method(trm_spec *s, const char *method)
{
    const char *m = method ? method : "";
    s->full = 0;
    s->lora_rank = 0;
    s->steer = TRM_STEER_NONE;
    s->joint = 0;
    if (strcmp(m, "full") == 0) {
        s->full = 1;
    } else if (strcmp(m, "lora") == 0 || strcmp(m, "joint") == 0) {
        s->lora_rank = 8;
        s->lora_alpha = 8.0f;
        s->lora_targets = TRM_LORA_ALL;
        if (m[0] == 'j') {
            s->steer = TRM_STEER_ADAPTER;
            s->steer_site = STEER_SITE_RESID_POST;
            s->steer_rank = 8;
            s->steer_act = TRM_ACT_SILU;
            s->steer_alpha = 1.0f;
            s->joint = 1;
        }
    } else if (strcmp(m, "vector") == 0) {
        s->steer = TRM_STEER_VECTOR;
    } else if (strcmp(m, "adapter") == 0 || strcmp(m, "adapter-linear") == 0 || strcmp(m, "rank1") == 0) {
        s->steer = TRM_STEER_ADAPTER;
        s->steer_rank = m[0] == 'r' ? 1 : 8;
        s->steer_act = strcmp(m, "adapter") == 0 ? TRM_ACT_SILU : TRM_ACT_NONE;
        s->steer_alpha = 1.0f;
    } else if (strcmp(m, "loreft") == 0) {
        s->steer = TRM_STEER_LOREFT;
        s->steer_rank = 8;
    } else {
        return steer_err(STEER_EARG,
                         "unknown training method '%s' (full, lora, vector, adapter, adapter-linear, rank1, loreft, "
                         "joint)", m);
    }
    return STEER_OK;
}

#define REAL float
#define R_(name) name##_f32
#include "train_model_impl.h"

/*
 * train_internal.h — pieces of the training loop (train.c) shared with
 * train_merge.c (steer_merge_lora): the trainable set of a method, training
 * checkpoints (adapter.safetensors) read back, and the writers of checkpoint
 * files.
 */
#ifndef STEER_TRAIN_INTERNAL_H
#define STEER_TRAIN_INTERNAL_H

#include "steer.h"
#include "train_model.h"

/* A trm_spec and the layer mask it points at (layers owned: free it). */
typedef struct {
    trm_spec spec;
    uint8_t *layers; /* [n_layer] */
} tr_spec_buf;

/* The trainable set of p (method, site, layers, ranks, …) for a batch
 * capacity B × T. sb->layers is malloc'd even on failure (free it). */
int tr_build_spec(const steer_model *m, const steer_train_params *p, int B, int T, tr_spec_buf *sb);

/* The training parameters that rebuild the trainable set of checkpoint st
 * (read from `path`): method, site, layers, rank, act, alpha, LoRA alpha and
 * targets from its metadata, checked against m (layers, d_model). *mask
 * [n_layer] is malloc'd (the caller frees it, also on failure) and p->layers
 * points at it; p->method points into st (valid until it is closed).
 * STEER_EFORMAT without 'method' metadata; STEER_EARG for a checkpoint of
 * another model or a full fine-tuning one. */
int tr_params_from_checkpoint(const steer_tensors *st, const char *path, const steer_model *m,
                              steer_train_params *p, uint8_t **mask);

/* Copies every trainable tensor of t from checkpoint st (read from path):
 * each must be there, F32, of t's shape, finite, and st must hold nothing
 * else. One-line errors naming path and the tensor. */
int tr_load_checkpoint(trm_f32 *t, const steer_tensors *st, const char *path);

/* Writes the trainable tensors of t (all but model weights) with the
 * metadata of the set (p: method, model_hint, command; s: the spec) to path,
 * atomically. step >= 0 is recorded as train.step. */
int tr_save_adapter(trm_f32 *t, const steer_model *m, const steer_train_params *p, const trm_spec *s,
                    const char *path, int64_t step);

/* The model weights of t (spec.full) as a Hugging Face directory `dir` (F32):
 * the base model at model_path converted to HF, its model.safetensors
 * replaced by t's weights (q/k rows to the half RoPE order, Gemma norms as
 * w), loaded back, then renamed into place (a previous dir is replaced). */
int tr_write_hf(trm_f32 *t, const steer_model *m, const char *model_path, const char *tokenizer_path,
                const char *command, const char *dir);

/* Removes the regular files in dir, then dir (no recursion). */
void tr_remove_dir(const char *dir);

/* BEGIN fast evaluation (train_eval.c) */
/* Greedy generation through the inference engine (KV cache) with the
 * trainable set of t applied: steering as a hook, LoRA merged into F32 copies
 * of the projections. Not for full fine-tuning (STEER_EUNSUPPORTED). The
 * engine reads t's parameters when it is made: make a new one after t
 * changes. t and m must outlive it. */
typedef struct tr_engine tr_engine;
int tr_engine_new(const steer_model *m, trm_f32 *t, const trm_spec *sp, int n_seq, int n_ctx, tr_engine **out);
void tr_engine_free(tr_engine *e);
/* n <= n_seq sequences: sequence i is tok[i·T, i·T + len[i]); k_gen[i]
 * tokens are generated greedily (first maximum) and appended in place,
 * len[i] += k_gen[i]. */
int tr_engine_generate(tr_engine *e, int n, int T, int *tok, int *len, const int *k_gen);
/* The model the engine runs (the base, or its shallow copy with the LoRA
 * merged), and the engine's steering hook added to another context of that
 * model (nothing for a LoRA-only set); used by steer_adapter_* (adapter.c). */
steer_model *tr_engine_model(tr_engine *e);
int tr_engine_install(tr_engine *e, steer_ctx *c);
/* END fast evaluation */

#endif /* STEER_TRAIN_INTERNAL_H */

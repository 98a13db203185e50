/*
 * train_merge.c — steer_merge_lora: a LoRA training checkpoint folded into
 * its base model, W += (lora_alpha/r)·B·A, written in any steer_convert
 * format.
 *
 * The merge runs on the training graph (train_model.h): the checkpoint's
 * trainable set is rebuilt from its metadata as for steer_eval_dataset, with
 * every model weight made trainable as well (spec.full), so the model's
 * weights sit in the parameter block in F32 under their HF names, in the
 * frame the LoRA was trained in (q/k rows in the model's RoPE order, Gemma
 * norms as 1 + w). trm_merge_lora_f32 adds s·B·A into them, and the writer
 * of full fine-tuning (tr_write_hf) turns them into a Hugging Face directory
 * (q/k rows to HF's order, norms to w) beside the output; steer_convert then
 * writes the requested format and dtype from it, loads the result back and
 * renames it into place, and the intermediate directory is removed.
 *
 * A joint checkpoint also holds the post-block adapter; its tensors go to
 * their own checkpoint (method "adapter", same site, layers, rank, σ and α),
 * which steer eval --adapter applies to the merged model: merged + adapter
 * computes what base + joint did.
 */
#include "steer_train.h"
#include "steer.h"
#include "model.h"
#include "train_internal.h"
#include "train_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

steer_merge_params steer_merge_default_params(void)
{
    steer_merge_params p;
    memset(&p, 0, sizeof p);
    p.dtype = STEER_DTYPE_KEEP;
    return p;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The directory out goes into must exist (checked first, so that the error
 * names out rather than an intermediate file). */
static int parent_exists(const char *out)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = 0;
    char *slash = strrchr(dir, '/');
    if (!slash)
        return STEER_OK;
    if (slash == dir)
        slash[1] = 0;
    else
        *slash = 0;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return steer_err(STEER_EIO, "%s: cannot write the output: directory %s does not exist", out, dir);
    return STEER_OK;
}

int steer_merge_lora(const char *base, const char *adapter, const char *out, const steer_merge_params *pp)
{
    /* Ownership: borrows its arguments; the model, the checkpoint and the
     * training graph live only for the call. */
    steer_merge_params dp = steer_merge_default_params();
    const steer_merge_params *p = pp ? pp : &dp;
    if (!base || !*base)
        return steer_err(STEER_EARG, "merge-lora: no base model path");
    if (!adapter || !*adapter)
        return steer_err(STEER_EARG, "merge-lora: no adapter path");
    if (!out || !*out)
        return steer_err(STEER_EARG, "merge-lora: no output path");
    if (strlen(out) > 3900)
        return steer_err(STEER_EARG, "%.64s...: output path too long", out);
    if (p->dtype != STEER_DTYPE_KEEP && p->dtype != STEER_DTYPE_F32 && p->dtype != STEER_DTYPE_F16 && p->dtype != STEER_DTYPE_BF16)
        return steer_err(STEER_EARG, "merge-lora: dtype must be F32, F16 or BF16 (or -1 for the base's), got %d",
                         p->dtype);
    char outb[4096]; /* out without trailing slashes ("dir/" names the directory dir) */
    snprintf(outb, sizeof outb, "%s", out);
    for (size_t n = strlen(outb); n > 1 && outb[n - 1] == '/'; n--)
        outb[n - 1] = 0;
    out = outb;
    const char *fmt = p->format;
    if (!fmt)
        fmt = ends_with(out, ".gguf") ? "gguf" : ends_with(out, ".bin") ? "llama2c" : "hf";
    if (strcmp(fmt, "hf") != 0 && strcmp(fmt, "gguf") != 0 && strcmp(fmt, "llama2c") != 0)
        return steer_err(STEER_EARG, "merge-lora: unknown format '%s' (hf, gguf, llama2c)", fmt);

    int rc = parent_exists(out);
    if (!rc && p->steer_out)
        rc = parent_exists(p->steer_out);
    if (rc)
        return rc;
    steer_tensors *st = NULL;
    steer_model *m = NULL;
    trm_f32 *t = NULL;
    uint8_t *mask = NULL;
    tr_spec_buf sb = {0};
    char tmp[4096];
    tmp[0] = 0;
    rc = steer_tensors_open(adapter, &st);
    if (rc)
        goto done;
    steer_model_params mp = steer_model_default_params();
    mp.tokenizer_path = p->tokenizer_path;
    if ((rc = steer_model_load(base, &mp, &m)))
        goto done;
    steer_train_params tp;
    if ((rc = tr_params_from_checkpoint(st, adapter, m, &tp, &mask)))
        goto done;
    const int joint = strcmp(tp.method, "joint") == 0;
    if (!joint && strcmp(tp.method, "lora") != 0) {
        rc = steer_err(STEER_EARG, "%s: not a LoRA checkpoint (method '%s'); only lora and joint checkpoints hold LoRA "
                       "weights to merge", adapter, tp.method);
        goto done;
    }
    if (joint && !p->steer_out) {
        rc = steer_err(STEER_EARG, "%s: a joint checkpoint also holds a steering adapter, which a merged model cannot "
                       "hold: name a file to save it to (steer_out, --steer-out)", adapter);
        goto done;
    }
    if (!joint && p->steer_out) {
        rc = steer_err(STEER_EARG, "%s: holds no steering adapter (method lora) to write to %s", adapter, p->steer_out);
        goto done;
    }
    if ((rc = tr_build_spec(m, &tp, 1, 2, &sb)))
        goto done;
    sb.spec.full = 1; /* the model's weights as parameters, in F32, by HF name */
    if ((rc = trm_new_f32(m, &sb.spec, &t)))
        goto done;
    if ((rc = tr_load_checkpoint(t, st, adapter)))
        goto done;
    trm_merge_lora_f32(t);

    /* the merged weights as an HF directory beside out, then out from it */
    if (snprintf(tmp, sizeof tmp, "%s.merge.%ld", out, (long)getpid()) >= (int)sizeof tmp) {
        rc = steer_err(STEER_EARG, "%s: output path too long", out);
        goto done;
    }
    if ((rc = tr_write_hf(t, m, base, p->tokenizer_path, p->command, tmp)))
        goto done;
    steer_convert_params cp = steer_convert_default_params();
    cp.format = fmt;
    if (p->dtype != STEER_DTYPE_KEEP)
        cp.dtype = p->dtype;
    else {
        steer_dtype bd = m->layers[0].wq.dtype;
        cp.dtype = strcmp(fmt, "llama2c") != 0 && (bd == STEER_DTYPE_F16 || bd == STEER_DTYPE_BF16) ? (int)bd
                                                                                                  : STEER_DTYPE_F32;
    }
    if ((rc = steer_convert(tmp, out, &cp)))
        goto done;
    if (joint) {
        steer_train_params ap = tp;
        ap.method = "adapter";
        ap.model_hint = steer_tensors_meta(st, "model_hint");
        ap.command = p->command;
        trm_spec as = sb.spec;
        as.full = 0, as.lora_rank = 0, as.joint = 0;
        if ((rc = tr_save_adapter(t, m, &ap, &as, p->steer_out, -1))) {
            /* no half-written output: take the merged model back */
            if (strcmp(fmt, "hf") == 0)
                tr_remove_dir(out);
            else
                unlink(out);
            goto done;
        }
    }
done:
    if (tmp[0])
        tr_remove_dir(tmp);
    trm_free_f32(t);
    free(sb.layers);
    free(mask);
    steer_model_free(m);
    steer_tensors_free(st);
    return rc;
}

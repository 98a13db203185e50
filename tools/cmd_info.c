/* cmd_info.c — `steer info MODEL`: architecture, sizes and sites of a model. */
#include "cli.h"

#include <stdio.h>

int cmd_info(int argc, char **argv)
{
    const char *tokenizer = NULL;
    const char *pos[1] = {NULL};
    const cli_opt opts[] = {
        {"-z", "--tokenizer", OPT_STR, &tokenizer, "FILE", "tokenizer.bin for llama2.c checkpoints"},
    };
    const cli_spec spec = {
        .usage = "steer info MODEL [-z TOKENIZER]",
        .description = "Prints the architecture, file format, sizes, parameter count, weight dtype,\n"
                       "whether the output head is tied to the embedding, and every hook site with\n"
                       "its width.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer info models/stories260K/stories260K.bin",
        .min_pos = 1,
        .max_pos = 1,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;

    steer_model *m = NULL;
    if (cli_load_model(pos[0], tokenizer, &m))
        return 1;
    const steer_model_config *c = steer_model_get_config(m);
    printf("model:        %s\n", pos[0]);
    printf("architecture: %s\n", c->arch_name ? c->arch_name : "?");
    printf("format:       %s\n", c->format ? c->format : "?");
    printf("layers:       %d\n", c->n_layer);
    printf("d_model:      %d\n", c->d_model);
    printf("heads:        %d\n", c->n_head);
    printf("kv_heads:     %d\n", c->n_kv_head);
    printf("head_dim:     %d\n", c->head_dim);
    printf("d_ff:         %d\n", c->d_ff);
    printf("vocab:        %d\n", c->n_vocab);
    printf("context:      %d\n", c->n_ctx_train);
    printf("rope_theta:   %g\n", (double)c->rope_theta);
    printf("rms_eps:      %g\n", (double)c->rms_eps);
    printf("parameters:   %lld (%.2f M)\n", (long long)c->n_params, (double)c->n_params / 1e6);
    printf("dtype:        %s\n", steer_dtype_name(c->weight_dtype));
    printf("tied_head:    %s\n", c->tied_embeddings ? "yes" : "no");
    static const char *const acts[] = {"silu", "gelu_tanh", "gelu"};
    printf("activation:   %s\n", (unsigned)c->act < 3 ? acts[c->act] : "?");
    printf("norms:        %s%s\n", c->sandwich_norms ? "sandwich (pre + post attention and MLP)" : "pre-norm",
           c->qk_norm ? ", q/k norms" : "");
    if (c->embed_scale != 1.0f) printf("embed_scale:  %g\n", (double)c->embed_scale);
    if (c->qkv_bias) printf("qkv_bias:     yes\n");
    if (c->attn_softcap > 0) printf("attn_softcap: %g\n", (double)c->attn_softcap);
    if (c->final_softcap > 0) printf("final_softcap: %g\n", (double)c->final_softcap);
    if (c->sliding_window > 0) {
        int n_sl = 0;
        for (int l = 0; l < c->n_layer; l++) n_sl += steer_model_layer_is_sliding(m, l);
        printf("sliding:      window %d on %d of %d layers (local RoPE base %g)\n", c->sliding_window, n_sl,
               c->n_layer, (double)c->rope_theta_local);
    }
    printf("bos/eos:      %d / %d\n", steer_token_bos(m), steer_token_eos(m));
    printf("sites:\n");
    for (int s = 0; s < STEER_SITE_COUNT; s++)
        printf("  %-11s %d\n", steer_site_name((steer_site)s), steer_model_site_width(m, (steer_site)s));
    steer_model_free(m);
    return 0;
}

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
    printf("bos/eos:      %d / %d\n", steer_token_bos(m), steer_token_eos(m));
    printf("sites:\n");
    for (int s = 0; s < STEER_SITE_COUNT; s++)
        printf("  %-11s %d\n", steer_site_name((steer_site)s), steer_model_site_width(m, (steer_site)s));
    steer_model_free(m);
    return 0;
}

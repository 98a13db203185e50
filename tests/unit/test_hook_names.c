/*
 * test_hook_names.c — TransformerLens hook names (steer_site_parse,
 * steer_hook_name_parse; docs/VECTORS.md §1): every mapped name gives its
 * site, "blocks.L." gives the layer, and names without a matching site
 * (ln2.hook_normalized, attention internals) and malformed ones are errors.
 */
#include "test_util.h"

int main(void)
{
    static const struct {
        const char *name;
        steer_site site;
    } ok[] = {
        {"hook_resid_pre", STEER_SITE_RESID_PRE},   {"hook_attn_out", STEER_SITE_ATTN_OUT},
        {"hook_resid_mid", STEER_SITE_RESID_MID},   {"mlp.hook_pre", STEER_SITE_MLP_GATE},
        {"mlp.hook_pre_linear", STEER_SITE_MLP_UP}, {"mlp.hook_post", STEER_SITE_MLP_ACT},
        {"hook_mlp_out", STEER_SITE_MLP_OUT},       {"hook_resid_post", STEER_SITE_RESID_POST},
        {"resid_post", STEER_SITE_RESID_POST},      {"mlp_in", STEER_SITE_MLP_IN},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        steer_site s = STEER_SITE_COUNT;
        int layer = 99;
        CHECK(steer_site_parse(ok[i].name, &s) == STEER_OK && s == ok[i].site, "%s -> %d", ok[i].name, (int)s);
        CHECK(steer_hook_name_parse(ok[i].name, &s, &layer) == STEER_OK && s == ok[i].site && layer == -1,
              "%s -> (%d, %d)", ok[i].name, (int)s, layer);
        char full[64];
        snprintf(full, sizeof full, "blocks.%zu.%s", 3 + i, ok[i].name);
        CHECK(steer_hook_name_parse(full, &s, &layer) == STEER_OK && s == ok[i].site && layer == (int)(3 + i),
              "%s -> (%d, %d)", full, (int)s, layer);
        CHECK(steer_site_parse(full, &s) != STEER_OK, "steer_site_parse accepted %s (it names a layer)", full);
    }
    const char *bad[] = {"ln2.hook_normalized", "attn.hook_z", "hook_embed", "blocks.x.hook_resid_post",
                         "blocks.3", "blocks.3.", "blocks..hook_resid_post", "blocks.3.hook_nope", "", "Hook_resid_post"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        steer_site s;
        int layer;
        CHECK(steer_hook_name_parse(bad[i], &s, &layer) == STEER_EARG, "accepted '%s'", bad[i]);
        printf("'%s': %s\n", bad[i], steer_last_error());
    }
    return tu_finish("test_hook_names");
}

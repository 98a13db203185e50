/* cmd_info.c — `steer info MODEL`: architecture, sizes and sites of a model,
 * and the types of its tensors (count and bytes per type, each tensor with
 * --tensors), read from the model's files through the public file readers. */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Tensors by type: a few dozen distinct names at most. */
typedef struct {
    const char *name[64];
    int count[64];
    uint64_t bytes[64];
    int n;
    int tensors;
    uint64_t total;
} type_tally;

static void tally_add(type_tally *t, const char *type, uint64_t bytes)
{
    int k = 0;
    while (k < t->n && strcmp(t->name[k], type) != 0)
        k++;
    if (k == t->n) {
        if (t->n == 64)
            k = 63;
        else
            t->name[t->n++] = type;
    }
    t->count[k]++;
    t->bytes[k] += bytes;
    t->tensors++;
    t->total += bytes;
}

static void print_size(uint64_t b)
{
    if (b >= (uint64_t)1 << 30)
        printf("%.2f GiB", (double)b / (double)((uint64_t)1 << 30));
    else if (b >= (uint64_t)1 << 20)
        printf("%.2f MiB", (double)b / (double)((uint64_t)1 << 20));
    else
        printf("%.1f KiB", (double)b / 1024.0);
}

static void print_shape(int n_dims, const int64_t *shape)
{
    char buf[96];
    size_t at = 0;
    buf[at++] = '[';
    for (int d = 0; d < n_dims && at < sizeof buf - 24; d++)
        at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%lld", d ? ", " : "", (long long)shape[d]);
    snprintf(buf + at, sizeof buf - at, "]");
    printf(" %-14s", buf);
}

/* A GGUF file's tensors. 0, or 1 after an error message. */
static int gguf_tensors(const char *path, type_tally *t, int list)
{
    steer_gguf *g = NULL;
    if (steer_gguf_open(path, &g) != STEER_OK)
        return cli_lib_error();
    uint32_t ft = 0;
    if (steer_gguf_has_key(g, "general.file_type") && steer_gguf_get_u32(g, "general.file_type", &ft) == STEER_OK) {
        const char *name = steer_ftype_name((int)ft);
        printf("file_type:    %u (%s)\n", ft, name ? name : "unknown to this steer");
    }
    if (list)
        printf("tensors (file order; row-major shapes):\n");
    for (int i = 0; i < steer_gguf_n_tensors(g); i++) {
        steer_gguf_tensor_info ti;
        if (steer_gguf_tensor_at(g, i, &ti) != STEER_OK)
            continue;
        tally_add(t, ti.type_name, ti.nbytes);
        if (list) {
            printf("  %-36s %-5s", ti.name, ti.type_name);
            print_shape(ti.n_dims, ti.shape);
            printf(" %12zu B\n", ti.nbytes);
        }
    }
    steer_gguf_free(g);
    return 0;
}

static int safetensors_file(const char *path, type_tally *t, int list)
{
    steer_tensors *st = NULL;
    if (steer_tensors_open(path, &st) != STEER_OK)
        return cli_lib_error();
    for (int i = 0; i < steer_tensors_count(st); i++) {
        const steer_tensor_info *ti = steer_tensors_at(st, i);
        tally_add(t, steer_dtype_name(ti->dtype), ti->nbytes);
        if (list) {
            printf("  %-36s %-5s", ti->name, steer_dtype_name(ti->dtype));
            print_shape(ti->n_dims, ti->shape);
            printf(" %12zu B\n", ti->nbytes);
        }
    }
    steer_tensors_free(st);
    return 0;
}

/* A Hugging Face directory: model.safetensors, or every shard its index
 * names (each once, in first-mention order). */
static int hf_tensors(const char *dir, type_tally *t, int list)
{
    char path[4200];
    struct stat sb;
    if (list)
        printf("tensors (file order):\n");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (stat(path, &sb) == 0)
        return safetensors_file(path, t, list);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return cli_error("%s: no model.safetensors or model.safetensors.index.json", dir);
    char *txt = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n > 0 && n < (1L << 28) && fseek(f, 0, SEEK_SET) == 0 && (txt = malloc((size_t)n + 1)) != NULL) {
        if (fread(txt, 1, (size_t)n, f) == (size_t)n)
            txt[n] = 0;
        else
            txt[0] = 0;
    }
    fclose(f);
    cJSON *j = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    const cJSON *map = j ? cJSON_GetObjectItemCaseSensitive(j, "weight_map") : NULL;
    int rc = 0;
    if (!cJSON_IsObject(map))
        rc = cli_error("%s: no weight_map", path);
    for (const cJSON *it = cJSON_IsObject(map) ? map->child : NULL; it && !rc; it = it->next) {
        if (!cJSON_IsString(it))
            continue;
        int seen = 0;
        for (const cJSON *p = map->child; p != it && !seen; p = p->next)
            seen = cJSON_IsString(p) && strcmp(p->valuestring, it->valuestring) == 0;
        if (seen)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, it->valuestring);
        rc = safetensors_file(path, t, list);
    }
    cJSON_Delete(j);
    return rc;
}

/* The summary and (list) each tensor of the model's files. */
static int print_tensors(const char *model, const steer_model_config *c, int list)
{
    type_tally t = {0};
    int rc = 0;
    const char *fmt = c->format ? c->format : "";
    if (strcmp(fmt, "gguf") == 0) {
        rc = gguf_tensors(model, &t, list);
    } else if (strcmp(fmt, "hf") == 0) {
        rc = hf_tensors(model, &t, list);
    } else {
        printf("tensor types: F32 (a llama2.c checkpoint stores every weight as F32)\n");
        return 0;
    }
    if (rc)
        return rc;
    /* types in steer_dtype order: F32, F16, BF16, Q8_0, …, Q6_K */
    int key[64];
    for (int k = 0; k < t.n; k++) {
        steer_dtype dt;
        key[k] = steer_dtype_parse(t.name[k], &dt) == STEER_OK ? (int)dt : 1000;
    }
    for (int a = 0; a < t.n; a++)
        for (int b = a + 1; b < t.n; b++)
            if (key[b] < key[a]) {
                int kk = key[a], cc = t.count[a];
                uint64_t bb = t.bytes[a];
                const char *nn = t.name[a];
                key[a] = key[b], t.count[a] = t.count[b], t.bytes[a] = t.bytes[b], t.name[a] = t.name[b];
                key[b] = kk, t.count[b] = cc, t.bytes[b] = bb, t.name[b] = nn;
            }
    printf("tensor types: %d tensors, ", t.tensors);
    print_size(t.total);
    printf(" (%llu bytes)\n", (unsigned long long)t.total);
    for (int k = 0; k < t.n; k++) {
        printf("  %-6s %5d tensors %14llu bytes  ", t.name[k], t.count[k], (unsigned long long)t.bytes[k]);
        print_size(t.bytes[k]);
        printf("\n");
    }
    return 0;
}

int cmd_info(int argc, char **argv)
{
    const char *tokenizer = NULL;
    int list = 0;
    const char *pos[1] = {NULL};
    const cli_opt opts[] = {
        {"-z", "--tokenizer", OPT_STR, &tokenizer, "FILE", "tokenizer.bin for llama2.c checkpoints"},
        {NULL, "--tensors", OPT_FLAG, &list, NULL, "also list every tensor: name, type, shape, bytes"},
    };
    const cli_spec spec = {
        .usage = "steer info MODEL [-z TOKENIZER] [--tensors]",
        .description = "Prints the architecture, file format, sizes, parameter count, weight dtype,\n"
                       "whether the output head is tied to the embedding, the tensor types of the\n"
                       "model's files (tensors and bytes per type; a GGUF file's general.file_type,\n"
                       "e.g. 15 (Q4_K_M)), and every hook site with its width. --tensors lists each\n"
                       "tensor too.",
        .opts = opts,
        .n_opts = (int)(sizeof opts / sizeof opts[0]),
        .example = "  steer info models/stories260K/stories260K.bin\n"
                   "  steer info tests/data/llama-quant/tiny-random-llama-quant.Q4_K_M.gguf --tensors",
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
    if (print_tensors(pos[0], c, list)) {
        steer_model_free(m);
        return 1;
    }
    printf("sites:\n");
    for (int s = 0; s < STEER_SITE_COUNT; s++)
        printf("  %-11s %d\n", steer_site_name((steer_site)s), steer_model_site_width(m, (steer_site)s));
    steer_model_free(m);
    return 0;
}

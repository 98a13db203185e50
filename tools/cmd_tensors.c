/* cmd_tensors.c — `steer tensors FILE`: list the tensors (name, dtype, shape)
 * and metadata of a safetensors file, or the tensors of a GGUF file. */
#include "cli.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_shape(int n_dims, const int64_t *shape)
{
    putchar('[');
    for (int d = 0; d < n_dims; d++)
        printf("%s%lld", d ? ", " : "", (long long)shape[d]);
    putchar(']');
}

/* Prints a string on one line, escaping control characters. */
static void print_escaped(const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\n')
            fputs("\\n", stdout);
        else if (ch == '\t')
            fputs("\\t", stdout);
        else if (ch < 0x20)
            printf("\\x%02x", ch);
        else
            putchar(ch);
    }
}

/* The __metadata__ object of a safetensors header, key by key. The public API
 * looks values up by key only, so the listing reads the (already validated)
 * header's keys itself. */
static void print_metadata(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    unsigned char len8[8];
    char *hdr = NULL;
    if (fread(len8, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = n << 8 | len8[i];
        if (n > 0 && n < ((uint64_t)1 << 30) && (hdr = malloc((size_t)n + 1)) != NULL) {
            if (fread(hdr, 1, (size_t)n, f) == (size_t)n)
                hdr[n] = '\0';
            else
                hdr[0] = '\0';
        }
    }
    fclose(f);
    if (!hdr)
        return;
    cJSON *root = cJSON_Parse(hdr);
    free(hdr);
    const cJSON *meta = root ? cJSON_GetObjectItemCaseSensitive(root, "__metadata__") : NULL;
    if (cJSON_IsObject(meta) && meta->child) {
        printf("metadata:\n");
        for (const cJSON *it = meta->child; it; it = it->next) {
            printf("  %s = ", it->string);
            if (cJSON_IsString(it))
                print_escaped(it->valuestring);
            putchar('\n');
        }
    }
    cJSON_Delete(root);
}

static int list_safetensors(const char *path)
{
    steer_tensors *t = NULL;
    if (steer_tensors_open(path, &t) != STEER_OK)
        return cli_lib_error();
    int n = steer_tensors_count(t);
    printf("file: %s\nformat: safetensors\ntensors: %d\n", path, n);
    for (int i = 0; i < n; i++) {
        const steer_tensor_info *ti = steer_tensors_at(t, i);
        printf("  %-24s %-5s ", ti->name, steer_dtype_name(ti->dtype));
        print_shape(ti->n_dims, ti->shape);
        putchar('\n');
    }
    steer_tensors_free(t);
    print_metadata(path);
    return 0;
}

static int list_gguf(const char *path)
{
    steer_gguf *g = NULL;
    if (steer_gguf_open(path, &g) != STEER_OK)
        return cli_lib_error();
    int n = steer_gguf_n_tensors(g);
    printf("file: %s\nformat: gguf\ntensors: %d (shapes row-major [rows, cols])\n", path, n);
    for (int i = 0; i < n; i++) {
        steer_gguf_tensor_info ti;
        if (steer_gguf_tensor_at(g, i, &ti) != STEER_OK) {
            steer_gguf_free(g);
            return cli_lib_error();
        }
        printf("  %-24s %-5s ", ti.name, ti.type_name);
        print_shape(ti.n_dims, ti.shape);
        putchar('\n');
    }
    const char *arch = NULL;
    if (steer_gguf_get_str(g, "general.architecture", &arch) == STEER_OK)
        printf("general.architecture = %s\n", arch);
    steer_gguf_free(g);
    return 0;
}

int cmd_tensors(int argc, char **argv)
{
    const char *pos[1] = {NULL};
    const cli_spec spec = {
        .usage = "steer tensors FILE",
        .description = "Lists the tensors of a safetensors file (name, dtype, shape) and its metadata;\n"
                       "for a GGUF file, its tensors (row-major shapes) and architecture.",
        .opts = NULL,
        .n_opts = 0,
        .example = "  steer tensors acts.safetensors",
        .min_pos = 1,
        .max_pos = 1,
        .pos = pos,
    };
    int rc = cli_parse(&spec, argc, argv, NULL);
    if (rc >= 0)
        return rc;
    FILE *f = fopen(pos[0], "rb");
    char magic[4] = {0};
    if (f) {
        if (fread(magic, 1, 4, f) != 4)
            magic[0] = '\0';
        fclose(f);
    }
    if (memcmp(magic, "GGUF", 4) == 0)
        return list_gguf(pos[0]);
    return list_safetensors(pos[0]);
}

/*
 * io_hf.c — Hugging Face model directories: config.json (cJSON) and the
 * safetensors weights, single-file or sharded through
 * model.safetensors.index.json.
 */
#include "formats.h"

#include <float.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct hf_dir {
    char *path;            /* the directory                                */
    cJSON *config;         /* parsed config.json                           */
    steer_tensors **shards;/* [n_shards]                                   */
    int n_shards;
    const steer_tensor_info **all; /* [n_all] every tensor of every shard  */
    int n_all;
};

const char *hf_path(const hf_dir *h) { return h->path; }
const cJSON *hf_config(const hf_dir *h) { return h->config; }
int hf_n_tensors(const hf_dir *h) { return h->n_all; }
const steer_tensor_info *hf_tensor_at(const hf_dir *h, int i) { return i >= 0 && i < h->n_all ? h->all[i] : NULL; }

static int parse_json_file(const char *path, cJSON **out)
{
    char *txt = NULL;
    int rc = io_read_text(path, &txt, NULL);
    if (rc) return rc;
    *out = cJSON_Parse(txt);
    free(txt);
    if (!*out || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return steer_err(STEER_EFORMAT, "%s: not a valid JSON object", path);
    }
    return STEER_OK;
}

static int add_shard(hf_dir *h, const char *file)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", h->path, file);
    steer_tensors **ns = realloc(h->shards, (size_t)(h->n_shards + 1) * sizeof *ns);
    if (!ns) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    h->shards = ns;
    int rc = steer_tensors_open(path, &h->shards[h->n_shards]);
    if (rc) return rc;
    h->n_shards++;
    return STEER_OK;
}

static int cmp_info_name(const void *a, const void *b)
{
    return strcmp((*(const steer_tensor_info *const *)a)->name, (*(const steer_tensor_info *const *)b)->name);
}

int hf_open(const char *dir, hf_dir **out)
{
    *out = NULL;
    hf_dir *h = calloc(1, sizeof *h);
    if (!h) return steer_err(STEER_ENOMEM, "%s: out of memory", dir);
    h->path = strdup(dir);
    size_t n = strlen(h->path);
    while (n > 1 && h->path[n - 1] == '/') h->path[--n] = 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", h->path);
    int rc = parse_json_file(path, &h->config);
    if (rc) goto fail;

    struct stat st;
    snprintf(path, sizeof path, "%s/model.safetensors", h->path);
    if (stat(path, &st) == 0) {
        rc = add_shard(h, "model.safetensors");
        if (rc) goto fail;
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", h->path);
        if (stat(path, &st) != 0) {
            rc = steer_err(STEER_EIO, "%s: no model.safetensors or model.safetensors.index.json", h->path);
            goto fail;
        }
        cJSON *idx;
        if ((rc = parse_json_file(path, &idx))) goto fail;
        const cJSON *map = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
        if (!cJSON_IsObject(map)) {
            cJSON_Delete(idx);
            rc = steer_err(STEER_EFORMAT, "%s: no weight_map object", path);
            goto fail;
        }
        /* distinct shard file names, in order of first appearance */
        const char **files = NULL;
        int n_files = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, map)
        {
            if (!cJSON_IsString(e)) {
                /* the message quotes e->string: format it before freeing idx */
                rc = steer_err(STEER_EFORMAT, "%s: weight_map entry '%s' is not a file name", path, e->string);
                free(files);
                cJSON_Delete(idx);
                goto fail;
            }
            int seen = 0;
            for (int i = 0; i < n_files && !seen; i++) seen = strcmp(files[i], e->valuestring) == 0;
            if (seen) continue;
            const char **nf = realloc(files, (size_t)(n_files + 1) * sizeof *nf);
            if (!nf) { free(files); cJSON_Delete(idx); rc = steer_err(STEER_ENOMEM, "out of memory"); goto fail; }
            files = nf;
            files[n_files++] = e->valuestring;
        }
        for (int i = 0; i < n_files && rc == STEER_OK; i++) {
            if (strchr(files[i], '/')) rc = steer_err(STEER_EFORMAT, "%s: shard name '%s' has a '/'", path, files[i]);
            else rc = add_shard(h, files[i]);
        }
        free(files);
        cJSON_Delete(idx);
        if (rc) goto fail;
    }
    for (int s = 0; s < h->n_shards; s++) h->n_all += steer_tensors_count(h->shards[s]);
    h->all = malloc((size_t)(h->n_all ? h->n_all : 1) * sizeof *h->all);
    if (!h->all) { rc = steer_err(STEER_ENOMEM, "%s: out of memory", h->path); goto fail; }
    int k = 0;
    for (int s = 0; s < h->n_shards; s++)
        for (int i = 0; i < steer_tensors_count(h->shards[s]); i++) h->all[k++] = steer_tensors_at(h->shards[s], i);
    qsort(h->all, (size_t)h->n_all, sizeof *h->all, cmp_info_name);
    for (int i = 1; i < h->n_all; i++)
        if (strcmp(h->all[i - 1]->name, h->all[i]->name) == 0) {
            rc = steer_err(STEER_EFORMAT, "%s: tensor %s appears in two shards", h->path, h->all[i]->name);
            goto fail;
        }
    *out = h;
    return STEER_OK;
fail:
    hf_close(h);
    return rc;
}

void hf_close(hf_dir *h)
{
    if (!h) return;
    for (int i = 0; i < h->n_shards; i++) steer_tensors_free(h->shards[i]);
    free(h->shards);
    free(h->all);
    cJSON_Delete(h->config);
    free(h->path);
    free(h);
}

const steer_tensor_info *hf_find(const hf_dir *h, const char *name)
{
    size_t lo = 0, hi = (size_t)h->n_all;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(h->all[mid]->name, name);
        if (c == 0) return h->all[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

/* ---------------------------------------------------------------- config getters */

static const cJSON *cfg_item(const hf_dir *h, const char *key, int required, int *rc)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(h->config, key);
    *rc = STEER_OK;
    if (!j || cJSON_IsNull(j)) {
        if (required) *rc = steer_err(STEER_EFORMAT, "%s/config.json: missing field '%s'", h->path, key);
        return NULL;
    }
    return j;
}

int hf_cfg_int(const hf_dir *h, const char *key, int required, int *out)
{
    int rc;
    const cJSON *j = cfg_item(h, key, required, &rc);
    if (!j) return rc;
    /* range first: converting a double outside int's range is undefined */
    if (cJSON_IsNumber(j) && !(j->valuedouble >= INT_MIN && j->valuedouble <= INT_MAX))
        return steer_err(STEER_EFORMAT, "%s/config.json: field '%s' = %g is out of range", h->path, key,
                         j->valuedouble);
    if (!cJSON_IsNumber(j) || j->valuedouble != (double)(int)j->valuedouble)
        return steer_err(STEER_EFORMAT, "%s/config.json: field '%s' is not an integer", h->path, key);
    *out = (int)j->valuedouble;
    return STEER_OK;
}

int hf_cfg_float(const hf_dir *h, const char *key, int required, float *out)
{
    int rc;
    const cJSON *j = cfg_item(h, key, required, &rc);
    if (!j) return rc;
    if (!cJSON_IsNumber(j)) return steer_err(STEER_EFORMAT, "%s/config.json: field '%s' is not a number", h->path, key);
    if (!(j->valuedouble >= -FLT_MAX && j->valuedouble <= FLT_MAX)) /* (float) of it would be undefined */
        return steer_err(STEER_EFORMAT, "%s/config.json: field '%s' = %g is out of range", h->path, key,
                         j->valuedouble);
    *out = (float)j->valuedouble;
    return STEER_OK;
}

int hf_cfg_bool(const hf_dir *h, const char *key, int required, int *out)
{
    int rc;
    const cJSON *j = cfg_item(h, key, required, &rc);
    if (!j) return rc;
    if (!cJSON_IsBool(j)) return steer_err(STEER_EFORMAT, "%s/config.json: field '%s' is not a boolean", h->path, key);
    *out = cJSON_IsTrue(j);
    return STEER_OK;
}

int hf_cfg_str(const hf_dir *h, const char *key, int required, const char **out)
{
    int rc;
    const cJSON *j = cfg_item(h, key, required, &rc);
    if (!j) return rc;
    if (!cJSON_IsString(j)) return steer_err(STEER_EFORMAT, "%s/config.json: field '%s' is not a string", h->path, key);
    *out = j->valuestring;
    return STEER_OK;
}

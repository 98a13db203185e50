/* io_safetensors.c — safetensors reader (memory-mapped) and writer, and the
 * dtype names/sizes of steer.h.
 *
 * Layout: u64 little-endian N | N bytes of UTF-8 JSON header | data.
 * The header maps each tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]} (offsets relative to the first data byte) and may hold
 * "__metadata__": {string: string}. Our writer emits the header compactly,
 * padded with spaces to a multiple of 8 bytes, tensors in the order added and
 * back to back, as the Rust safetensors crate does. */
#include "formats.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ST_MAX_DIMS 8
#define ST_TMP_PATH_MAX 4096
#define ST_MAX_EXACT_INT 9007199254740992.0 /* 2^53: JSON numbers are doubles in cJSON */

/* ---------------------------------------------------------------- dtypes */

static const char *const dtype_names[STEER_DTYPE_COUNT] = {
    "F32", "F16", "BF16", "F64", "I32", "I64", "U8", "I8",
    "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
};
/* Bytes per element; 0 for the block types (an element has no byte size:
 * steer_dtype_block, quant.c). */
static const size_t dtype_sizes[STEER_DTYPE_COUNT] = {4, 2, 2, 8, 4, 8, 1, 1};
/* The dtypes safetensors files can hold (the block types are GGUF-only). */
#define ST_N_DTYPES (STEER_DTYPE_I8 + 1)

const char *steer_dtype_name(steer_dtype t)
{
    return (int)t >= 0 && t < STEER_DTYPE_COUNT ? dtype_names[t] : "?";
}

size_t steer_dtype_size(steer_dtype t) { return (int)t >= 0 && t < STEER_DTYPE_COUNT ? dtype_sizes[t] : 0; }

int steer_dtype_parse(const char *name, steer_dtype *out)
{
    /* f32, f16, bf16 and the block types, case-insensitively. */
    static const steer_dtype types[] = {
        STEER_DTYPE_F32,  STEER_DTYPE_F16,  STEER_DTYPE_BF16, STEER_DTYPE_Q8_0, STEER_DTYPE_Q4_0,
        STEER_DTYPE_Q4_1, STEER_DTYPE_Q5_0, STEER_DTYPE_Q5_1, STEER_DTYPE_Q2_K, STEER_DTYPE_Q3_K,
        STEER_DTYPE_Q4_K, STEER_DTYPE_Q5_K, STEER_DTYPE_Q6_K,
    };
    for (size_t i = 0; name && i < sizeof types / sizeof types[0]; i++) {
        if (strcasecmp(name, dtype_names[types[i]]) == 0) {
            *out = types[i];
            return STEER_OK;
        }
    }
    return steer_err(STEER_EARG, "unknown dtype '%s' (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, "
                     "q4_k, q5_k or q6_k)", name ? name : "(null)");
}

/* Returns 0 and sets *out for a dtype we read; 1 for a dtype of the
 * safetensors format that we do not implement; -1 for an unknown name. */
static int dtype_parse(const char *s, steer_dtype *out)
{
    static const char *const other[] = {"BOOL", "U16",     "I16",     "U32",     "U64", "F8_E4M3",
                                        "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",  "C64"};
    for (int i = 0; i < ST_N_DTYPES; i++) {
        if (strcmp(s, dtype_names[i]) == 0) {
            *out = (steer_dtype)i;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        if (strcmp(s, other[i]) == 0) return 1;
    return -1;
}

/* Element count × element size of shape[n_dims], or -1 if it overflows. */
static int shape_nbytes(const int64_t *shape, int n_dims, size_t esize, uint64_t *out)
{
    uint64_t n = esize;
    for (int i = 0; i < n_dims; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && n > UINT64_MAX / d) return -1;
        n *= d;
    }
    *out = n;
    return 0;
}

/* Shape as "[2, 3]" for messages (truncated to buf). */
static const char *shape_str(const int64_t *shape, int n_dims, char *buf, size_t cap)
{
    size_t k = 0;
    k += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n_dims && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* ---------------------------------------------------------------- reader */

static int utf8_valid(const char *s); /* writer section */

struct steer_tensors {
    char *path;               /* owned copy                                   */
    io_map map;               /* owned mapping; info[].data points into it     */
    int n;
    steer_tensor_info *info;  /* owned [n]; each name owned                    */
    int n_meta;
    char **meta_keys;         /* owned [n_meta], each owned                    */
    char **meta_vals;         /* owned [n_meta], each owned                    */
};

static uint64_t rd_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* A JSON number that is a non-negative integer <= 2^53. */
static int json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_EXACT_INT) || d != (double)(uint64_t)d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int cmp_begin(const void *a, const void *b)
{
    const steer_tensor_info *x = *(const steer_tensor_info *const *)a;
    const steer_tensor_info *y = *(const steer_tensor_info *const *)b;
    const uint8_t *px = x->data, *py = y->data;
    return px < py ? -1 : px > py;
}

static int cmp_name(const void *a, const void *b)
{
    const steer_tensor_info *x = *(const steer_tensor_info *const *)a;
    const steer_tensor_info *y = *(const steer_tensor_info *const *)b;
    return strcmp(x->name, y->name);
}

/* Reads the header entry e (name: {dtype, shape, data_offsets}) into
 * t->info[i] (name owned by t). data[data_size] is the data section. */
static int parse_entry(steer_tensors *t, int i, const cJSON *e, const uint8_t *data, size_t data_size)
{
    const char *path = t->path;
    steer_tensor_info *ti = &t->info[i];
    ti->name = strdup(e->string);
    if (!ti->name) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    const char *name = ti->name;
    if (!cJSON_IsObject(e)) return steer_err(STEER_EFORMAT, "%s: tensor %s: entry is not an object", path, name);

    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd)) return steer_err(STEER_EFORMAT, "%s: tensor %s: missing dtype", path, name);
    if (!cJSON_IsArray(js)) return steer_err(STEER_EFORMAT, "%s: tensor %s: missing shape", path, name);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return steer_err(STEER_EFORMAT, "%s: tensor %s: data_offsets is not [begin, end]", path, name);

    int k = dtype_parse(jd->valuestring, &ti->dtype);
    if (k > 0)
        return steer_err(STEER_EUNSUPPORTED, "%s: tensor %s has unsupported dtype %s", path, name,
                         jd->valuestring);
    if (k < 0) return steer_err(STEER_EFORMAT, "%s: tensor %s has unknown dtype %s", path, name, jd->valuestring);

    int n_dims = cJSON_GetArraySize(js);
    if (n_dims > ST_MAX_DIMS)
        return steer_err(STEER_EUNSUPPORTED, "%s: tensor %s has %d dimensions (at most %d supported)", path, name,
                         n_dims, ST_MAX_DIMS);
    ti->n_dims = n_dims;
    int d = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, js)
    {
        uint64_t v;
        if (json_uint(it, &v) != 0)
            return steer_err(STEER_EFORMAT, "%s: tensor %s: shape[%d] is not a non-negative integer", path, name, d);
        ti->shape[d++] = (int64_t)v;
    }

    uint64_t begin, end;
    if (json_uint(cJSON_GetArrayItem(jo, 0), &begin) != 0 || json_uint(cJSON_GetArrayItem(jo, 1), &end) != 0)
        return steer_err(STEER_EFORMAT, "%s: tensor %s: data_offsets are not non-negative integers", path, name);
    if (begin > end)
        return steer_err(STEER_EFORMAT, "%s: tensor %s: data_offsets [%llu, %llu] are reversed", path, name,
                         (unsigned long long)begin, (unsigned long long)end);

    uint64_t nbytes;
    char sbuf[160];
    if (shape_nbytes(ti->shape, n_dims, steer_dtype_size(ti->dtype), &nbytes) != 0)
        return steer_err(STEER_EFORMAT, "%s: tensor %s: shape %s overflows", path, name,
                         shape_str(ti->shape, n_dims, sbuf, sizeof sbuf));
    if (nbytes != end - begin)
        return steer_err(STEER_EFORMAT, "%s: tensor %s: shape %s of %s is %llu bytes but data_offsets span %llu",
                         path, name, shape_str(ti->shape, n_dims, sbuf, sizeof sbuf), jd->valuestring,
                         (unsigned long long)nbytes, (unsigned long long)(end - begin));
    if (end > data_size)
        return steer_err(STEER_EFORMAT, "%s: tensor %s data runs past end of file (ends at data byte %llu of %zu)",
                         path, name, (unsigned long long)end, data_size);
    ti->data = data + begin;
    ti->nbytes = (size_t)nbytes;
    return STEER_OK;
}

static int st_parse(steer_tensors *t)
{
    const char *path = t->path;
    size_t size = t->map.size;
    if (size == 0) return steer_err(STEER_EFORMAT, "%s: not a safetensors file (empty file)", path);
    if (size < 8) return steer_err(STEER_EFORMAT, "%s: not a safetensors file (shorter than 8 bytes)", path);
    uint64_t hlen = rd_le64(t->map.data);
    if (hlen > size - 8)
        return steer_err(STEER_EFORMAT, "%s: header length %llu is larger than the file (%zu bytes)", path,
                         (unsigned long long)hlen, size);
    if (hlen < 2) return steer_err(STEER_EFORMAT, "%s: header length %llu is too short", path, (unsigned long long)hlen);

    /* cJSON wants a NUL-terminated buffer: copy the header (bounded by the file). */
    char *hdr = malloc((size_t)hlen + 1);
    if (!hdr) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    memcpy(hdr, t->map.data + 8, (size_t)hlen);
    hdr[hlen] = 0;
    const char *end = NULL;
    /* The header is UTF-8 JSON (the Rust crate rejects anything else; our
     * writer could not write back names or metadata that are not). */
    cJSON *root = utf8_valid(hdr) ? cJSON_ParseWithOpts(hdr, &end, 0) : NULL;
    int rc = STEER_OK;
    if (!root && !utf8_valid(hdr)) {
        rc = steer_err(STEER_EFORMAT, "%s: header is not valid UTF-8", path);
    } else if (!root) {
        long at = end ? (long)(end - hdr) : 0;
        rc = steer_err(STEER_EFORMAT, "%s: header is not valid JSON (error near byte %ld)", path, at);
    } else {
        /* Only padding may follow the JSON value. */
        for (const char *p = end; p < hdr + hlen && rc == STEER_OK; p++)
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
                rc = steer_err(STEER_EFORMAT, "%s: header has trailing bytes after the JSON object", path);
        if (rc == STEER_OK && !cJSON_IsObject(root))
            rc = steer_err(STEER_EFORMAT, "%s: header is not a JSON object", path);
    }
    free(hdr);
    if (rc != STEER_OK) {
        cJSON_Delete(root);
        return rc;
    }

    const uint8_t *data = t->map.data + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    int n_t = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root)
    {
        if (strcmp(e->string, "__metadata__") != 0) n_t++;
    }
    t->info = calloc((size_t)(n_t ? n_t : 1), sizeof *t->info);
    if (!t->info) rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
    /* t->n counts filled entries so steer_tensors_free frees exactly those. */
    cJSON_ArrayForEach(e, root)
    {
        if (rc != STEER_OK) break;
        if (strcmp(e->string, "__metadata__") == 0) {
            if (t->meta_keys) {
                rc = steer_err(STEER_EFORMAT, "%s: __metadata__ appears twice", path);
                break;
            }
            if (!cJSON_IsObject(e)) {
                rc = steer_err(STEER_EFORMAT, "%s: __metadata__ is not an object", path);
                break;
            }
            int nm = cJSON_GetArraySize(e);
            t->meta_keys = calloc((size_t)(nm ? nm : 1), sizeof *t->meta_keys);
            t->meta_vals = calloc((size_t)(nm ? nm : 1), sizeof *t->meta_vals);
            if (!t->meta_keys || !t->meta_vals) {
                rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
                break;
            }
            const cJSON *m;
            cJSON_ArrayForEach(m, e)
            {
                if (!cJSON_IsString(m)) {
                    rc = steer_err(STEER_EFORMAT, "%s: __metadata__ value of %s is not a string", path, m->string);
                    break;
                }
                t->meta_keys[t->n_meta] = strdup(m->string);
                t->meta_vals[t->n_meta] = strdup(m->valuestring);
                t->n_meta++;
                if (!t->meta_keys[t->n_meta - 1] || !t->meta_vals[t->n_meta - 1]) {
                    rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
                    break;
                }
            }
            continue;
        }
        t->n++;
        rc = parse_entry(t, t->n - 1, e, data, data_size);
    }
    cJSON_Delete(root);
    if (rc != STEER_OK || t->n < 2) return rc;

    /* Duplicate names and overlapping data ranges, via two sorted views. */
    const steer_tensor_info **v = malloc((size_t)t->n * sizeof *v);
    if (!v) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < t->n; i++) v[i] = &t->info[i];
    qsort(v, (size_t)t->n, sizeof *v, cmp_name);
    for (int i = 1; i < t->n && rc == STEER_OK; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            rc = steer_err(STEER_EFORMAT, "%s: duplicate tensor %s", path, v[i]->name);
    qsort(v, (size_t)t->n, sizeof *v, cmp_begin);
    const uint8_t *prev_end = data;
    const char *prev_name = NULL;
    for (int i = 0; i < t->n && rc == STEER_OK; i++) {
        const uint8_t *b = v[i]->data;
        if (v[i]->nbytes == 0) continue;
        if (prev_name && b < prev_end)
            rc = steer_err(STEER_EFORMAT, "%s: tensors %s and %s overlap", path, prev_name, v[i]->name);
        prev_end = b + v[i]->nbytes;
        prev_name = v[i]->name;
    }
    free(v);
    return rc;
}

int steer_tensors_open(const char *path, steer_tensors **out)
{
    /* Ownership: on success *out is owned by the caller (steer_tensors_free);
     * it owns the mapping, names and metadata it hands out. */
    if (!out) return steer_err(STEER_EARG, "steer_tensors_open: out is NULL");
    *out = NULL;
    if (!path) return steer_err(STEER_EARG, "steer_tensors_open: path is NULL");
    steer_tensors *t = calloc(1, sizeof *t);
    if (!t) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    t->path = strdup(path);
    if (!t->path) {
        free(t);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    int rc = io_map_open(path, &t->map);
    if (rc == STEER_OK) rc = st_parse(t);
    if (rc != STEER_OK) {
        steer_tensors_free(t);
        return rc;
    }
    *out = t;
    return STEER_OK;
}

void steer_tensors_free(steer_tensors *t)
{
    /* Ownership: frees t and all it owns; pointers it handed out die here. */
    if (!t) return;
    for (int i = 0; i < t->n; i++) free((char *)t->info[i].name);
    free(t->info);
    for (int i = 0; i < t->n_meta; i++) {
        free(t->meta_keys[i]);
        free(t->meta_vals[i]);
    }
    free(t->meta_keys);
    free(t->meta_vals);
    io_map_close(&t->map);
    free(t->path);
    free(t);
}

int steer_tensors_count(const steer_tensors *t) { return t ? t->n : 0; }

const steer_tensor_info *steer_tensors_at(const steer_tensors *t, int i)
{
    if (!t || i < 0 || i >= t->n) return NULL;
    return &t->info[i];
}

const steer_tensor_info *steer_tensors_find(const steer_tensors *t, const char *name)
{
    if (!t || !name) return NULL;
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->info[i].name, name) == 0) return &t->info[i];
    return NULL;
}

const char *steer_tensors_meta(const steer_tensors *t, const char *key)
{
    if (!t || !key) return NULL;
    for (int i = 0; i < t->n_meta; i++)
        if (strcmp(t->meta_keys[i], key) == 0) return t->meta_vals[i];
    return NULL;
}

/* ---------------------------------------------------------------- writer */

typedef struct {
    char *name; /* owned */
    steer_dtype dtype;
    int n_dims;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* borrowed until write */
    size_t nbytes;
} stw_tensor;

struct steer_tensors_writer {
    stw_tensor *t; /* owned [n] */
    int n, cap;
    char **mk, **mv; /* owned [n_meta], each owned */
    int n_meta, cap_meta;
};

/* 1 if s is well-formed UTF-8 (JSON text must be). */
static int utf8_valid(const char *s)
{
    const uint8_t *p = (const uint8_t *)s;
    while (*p) {
        uint32_t c = *p;
        int n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0) return 0;
        uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1f) : n == 2 ? (c & 0x0f) : (c & 0x07);
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        p += n + 1;
    }
    return 1;
}

int steer_tensors_writer_new(steer_tensors_writer **out)
{
    /* Ownership: *out is owned by the caller (steer_tensors_writer_free). */
    if (!out) return steer_err(STEER_EARG, "steer_tensors_writer_new: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return steer_err(STEER_ENOMEM, "steer_tensors_writer_new: out of memory");
    return STEER_OK;
}

void steer_tensors_writer_free(steer_tensors_writer *w)
{
    /* Ownership: frees w and its copies; tensor data stays the caller's. */
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    for (int i = 0; i < w->n_meta; i++) {
        free(w->mk[i]);
        free(w->mv[i]);
    }
    free(w->mk);
    free(w->mv);
    free(w);
}

int steer_tensors_writer_add(steer_tensors_writer *w, const char *name, steer_dtype dtype, int n_dims,
                             const int64_t *shape, const void *data)
{
    /* Ownership: name and shape are copied; data[nbytes] is borrowed until
     * steer_tensors_writer_write. */
    if (!w || !name || !*name) return steer_err(STEER_EARG, "safetensors writer: NULL writer or empty name");
    if (strcmp(name, "__metadata__") == 0 || !utf8_valid(name))
        return steer_err(STEER_EARG, "safetensors writer: invalid tensor name %s", name);
    if ((int)dtype < 0 || dtype >= ST_N_DTYPES)
        return steer_err(STEER_EARG, "safetensors writer: tensor %s: invalid dtype %d%s", name, (int)dtype,
                         dtype >= ST_N_DTYPES && dtype < STEER_DTYPE_COUNT ? " (block types are GGUF-only)" : "");
    if (n_dims < 0 || n_dims > ST_MAX_DIMS || (n_dims > 0 && !shape))
        return steer_err(STEER_EARG, "safetensors writer: tensor %s: %d dimensions (0 to %d allowed)", name,
                         n_dims, ST_MAX_DIMS);
    for (int i = 0; i < n_dims; i++)
        if (shape[i] < 0 || (double)shape[i] > ST_MAX_EXACT_INT)
            return steer_err(STEER_EARG, "safetensors writer: tensor %s: invalid shape[%d] = %lld", name, i,
                             (long long)shape[i]);
    uint64_t nbytes;
    if (shape_nbytes(shape, n_dims, steer_dtype_size(dtype), &nbytes) != 0 || nbytes > (uint64_t)SIZE_MAX / 2)
        return steer_err(STEER_EARG, "safetensors writer: tensor %s is too large", name);
    if (nbytes && !data) return steer_err(STEER_EARG, "safetensors writer: tensor %s has no data", name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return steer_err(STEER_EARG, "safetensors writer: duplicate tensor %s", name);
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 8;
        stw_tensor *p = realloc(w->t, (size_t)cap * sizeof *p);
        if (!p) return steer_err(STEER_ENOMEM, "safetensors writer: out of memory");
        w->t = p;
        w->cap = cap;
    }
    stw_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return steer_err(STEER_ENOMEM, "safetensors writer: out of memory");
    t->dtype = dtype;
    t->n_dims = n_dims;
    for (int i = 0; i < n_dims; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = (size_t)nbytes;
    w->n++;
    return STEER_OK;
}

int steer_tensors_writer_meta(steer_tensors_writer *w, const char *key, const char *value)
{
    /* Ownership: key and value are copied; setting a key again replaces it. */
    if (!w || !key || !value) return steer_err(STEER_EARG, "safetensors writer: NULL writer, key or value");
    if (!utf8_valid(key) || !utf8_valid(value))
        return steer_err(STEER_EARG, "safetensors writer: metadata %s is not valid UTF-8", key);
    char *v = strdup(value);
    if (!v) return steer_err(STEER_ENOMEM, "safetensors writer: out of memory");
    for (int i = 0; i < w->n_meta; i++) {
        if (strcmp(w->mk[i], key) == 0) {
            free(w->mv[i]);
            w->mv[i] = v;
            return STEER_OK;
        }
    }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? w->cap_meta * 2 : 8;
        char **a = realloc(w->mk, (size_t)cap * sizeof *a);
        if (a) w->mk = a;
        char **b = a ? realloc(w->mv, (size_t)cap * sizeof *b) : NULL;
        if (b) w->mv = b;
        if (!a || !b) {
            free(v);
            return steer_err(STEER_ENOMEM, "safetensors writer: out of memory");
        }
        w->cap_meta = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return steer_err(STEER_ENOMEM, "safetensors writer: out of memory");
    }
    w->mk[w->n_meta] = k;
    w->mv[w->n_meta] = v;
    w->n_meta++;
    return STEER_OK;
}

static void sb_u64(sbuf *b, uint64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_put(b, tmp, (size_t)n);
}

/* s as a JSON string literal (UTF-8 passes through; controls escaped). */
static void sb_json_str(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') sb_put(b, "\\\"", 2);
        else if (c == '\\') sb_put(b, "\\\\", 2);
        else if (c == '\n') sb_put(b, "\\n", 2);
        else if (c == '\r') sb_put(b, "\\r", 2);
        else if (c == '\t') sb_put(b, "\\t", 2);
        else if (c < 0x20) {
            char tmp[8];
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            sb_put(b, tmp, 6);
        } else sb_put(b, p, 1);
    }
    sb_put(b, "\"", 1);
}

int steer_tensors_writer_write(steer_tensors_writer *w, const char *path)
{
    /* Ownership: reads w (which keeps everything); creates or replaces path
     * atomically; no file is left behind on failure. */
    if (!w || !path) return steer_err(STEER_EARG, "safetensors writer: NULL writer or path");

    /* Header: {"__metadata__":{...},"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]},...} */
    sbuf h = {0};
    sb_put(&h, "{", 1);
    int first = 1;
    if (w->n_meta) {
        sb_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) sb_put(&h, ",", 1);
            sb_json_str(&h, w->mk[i]);
            sb_put(&h, ":", 1);
            sb_json_str(&h, w->mv[i]);
        }
        sb_put(&h, "}", 1);
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const stw_tensor *t = &w->t[i];
        if (!first) sb_put(&h, ",", 1);
        first = 0;
        sb_json_str(&h, t->name);
        sb_puts(&h, ":{\"dtype\":\"");
        sb_puts(&h, steer_dtype_name(t->dtype));
        sb_puts(&h, "\",\"shape\":[");
        for (int d = 0; d < t->n_dims; d++) {
            if (d) sb_put(&h, ",", 1);
            sb_u64(&h, (uint64_t)t->shape[d]);
        }
        sb_puts(&h, "],\"data_offsets\":[");
        sb_u64(&h, off);
        sb_put(&h, ",", 1);
        off += t->nbytes;
        sb_u64(&h, off);
        sb_puts(&h, "]}");
    }
    sb_put(&h, "}", 1);
    while (!h.oom && h.n % 8 != 0) sb_put(&h, " ", 1);
    if (h.oom) {
        free(h.p);
        return steer_err(STEER_ENOMEM, "%s: out of memory building the header", path);
    }

    char tmp[ST_TMP_PATH_MAX];
    FILE *fp = io_tmp_open(path, tmp);
    if (!fp) {
        free(h.p);
        return STEER_EIO;
    }
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    fwrite(len, 1, 8, fp);
    fwrite(h.p, 1, h.n, fp);
    free(h.p);
    for (int i = 0; i < w->n; i++)
        if (w->t[i].nbytes) fwrite(w->t[i].data, 1, w->t[i].nbytes, fp);
    int ok = !ferror(fp);
    if (!ok) steer_err(STEER_EIO, "%s: write failed", path);
    return io_tmp_commit(fp, tmp, path, ok);
}

/* gguf.c — GGUF v2/v3 (little-endian) reader and v3 writer (internal gg_*, public steer_gguf_* at the end).
 *
 * Layout of a GGUF file (all integers little-endian):
 *   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv × { string key | u32 value type | value }
 *   n_tensors × { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset }
 *   padding to general.alignment (default 32)
 *   data section: tensor i at data_start + offset_i
 * where string = u64 length + bytes (no NUL) and an array value is
 * u32 element type | u64 count | elements.
 *
 * The reader maps the file and validates every record against the file size
 * before it allocates anything whose size comes from the file, so a truncated
 * or corrupt file gives STEER_EFORMAT with a one-line message, never a crash
 * or a huge allocation. Tensor data and numeric arrays stay in the mapping;
 * keys, names and strings are copied (NUL-terminated) and owned by the file. */
#include "formats.h"
#include "quant.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_DIMS 4
#define GGUF_N_TYPES 13 /* value types 0..12 */
#define GGUF_TMP_PATH_MAX 4096

/* ---------------------------------------------------------------- little-endian decoding */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32); }

/* Bytes per scalar value of each GGUF value type (0 = not a fixed-size scalar). */
static const uint8_t gguf_type_size[GGUF_N_TYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static const char *gguf_type_name(int t)
{
    static const char *names[GGUF_N_TYPES] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                              "bool", "string", "array", "u64", "i64", "f64"};
    return t >= 0 && t < GGUF_N_TYPES ? names[t] : "invalid";
}

static const char *ggml_type_name(uint32_t t)
{
    static const char *names[] = {
        "F32",     "F16",    "Q4_0",    "Q4_1",  "Q4_2",   "Q4_3",  "Q5_0",  "Q5_1",
        "Q8_0",    "Q8_1",   "Q2_K",    "Q3_K",  "Q4_K",   "Q5_K",  "Q6_K",  "Q8_K",
        "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
        "I8",      "I16",    "I32",     "I64",   "F64",    "IQ1_M", "BF16",
    };
    if (t < sizeof names / sizeof names[0]) return names[t];
    if (t == 34) return "TQ1_0";
    if (t == 35) return "TQ2_0";
    if (t == 39) return "MXFP4";
    return "unknown";
}

/* Block size (elements) and bytes per block of the ggml types we handle:
 * F32, F16, BF16 and the block-quantized types of quant.h (Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q2_K … Q6_K). Returns 0, or -1 for a type we do not read. */
static int ggml_type_block(uint32_t t, uint64_t *blck, uint64_t *bytes)
{
    steer_dtype dt;
    size_t be, bb;
    if (q_from_ggml_type(t, &dt) != 0 || q_block(dt, &be, &bb) != 0) return -1;
    *blck = be;
    *bytes = bb;
    return 0;
}

/* nbytes of a tensor ne[0..n_dims) of ggml type t.
 * Returns 0, -1 unsupported type, -2 ne[0] not a multiple of the block size,
 * -3 the size overflows 64 bits. */
static int ggml_nbytes(uint32_t t, int n_dims, const uint64_t *ne, uint64_t *out)
{
    uint64_t blck, bsize;
    if (ggml_type_block(t, &blck, &bsize) != 0) return -1;
    if (ne[0] % blck != 0) return -2;
    uint64_t n = ne[0] / blck;
    if (n != 0 && bsize > UINT64_MAX / n) return -3;
    n *= bsize;
    for (int i = 1; i < n_dims; i++) {
        if (ne[i] != 0 && n > UINT64_MAX / ne[i]) return -3;
        n *= ne[i];
    }
    *out = n;
    return 0;
}

/* ---------------------------------------------------------------- reader state */

typedef struct {
    char *key;            /* owned, NUL-terminated                                     */
    int type;             /* GGUF_TYPE_*                                               */
    const uint8_t *val;   /* scalar: its bytes; numeric array: element 0 (in mapping) */
    char *str;            /* STRING: owned NUL-terminated copy                         */
    uint64_t str_len;
    int arr_type;         /* ARRAY: element type                                      */
    uint64_t arr_n;       /* ARRAY: element count                                     */
    char **arr_strs;      /* ARRAY of STRING: owned [arr_n] pointers into arr_buf      */
    uint32_t *arr_lens;   /* ARRAY of STRING: owned [arr_n] byte lengths               */
    char *arr_buf;        /* ARRAY of STRING: owned, all strings, each NUL-terminated  */
} gguf_kv;

/* Open-addressing name → index table: slot holds index + 1, 0 = empty. */
typedef struct {
    uint32_t *slot; /* owned [mask + 1] */
    size_t mask;
} name_index;

struct gg_file {
    char *path; /* owned copy */
    io_map map; /* owned mapping of the whole file */
    uint32_t version;
    uint32_t alignment;
    size_t data_start; /* byte offset of the data section */
    int n_kv;
    gguf_kv *kv; /* owned [n_kv] */
    int n_tensors;
    gg_tensor *tensors; /* owned [n_tensors]; names owned */
    name_index kv_ix, t_ix;
};

typedef struct {
    const uint8_t *base;
    size_t size;
    size_t pos;
} reader;

static size_t rd_left(const reader *r) { return r->size - r->pos; }

static int rd_u32(reader *r, uint32_t *v)
{
    if (rd_left(r) < 4) return -1;
    *v = le32(r->base + r->pos);
    r->pos += 4;
    return 0;
}

static int rd_u64(reader *r, uint64_t *v)
{
    if (rd_left(r) < 8) return -1;
    *v = le64(r->base + r->pos);
    r->pos += 8;
    return 0;
}

/* A GGUF string: *s points into the mapping, *len <= bytes left. */
static int rd_str(reader *r, const uint8_t **s, uint64_t *len)
{
    uint64_t n;
    if (rd_u64(r, &n) != 0) return -1;
    if (n > rd_left(r)) return -1;
    *s = r->base + r->pos;
    *len = n;
    r->pos += (size_t)n;
    return 0;
}

static int rd_skip(reader *r, uint64_t n, const uint8_t **at)
{
    if (n > rd_left(r)) return -1;
    *at = r->base + r->pos;
    r->pos += (size_t)n;
    return 0;
}

/* Owned NUL-terminated copy of s[len] (len is bounded by the file size). */
static char *dup_bytes(const uint8_t *s, uint64_t len)
{
    char *d = malloc((size_t)len + 1);
    if (!d) return NULL;
    if (len) memcpy(d, s, (size_t)len);
    d[len] = 0;
    return d;
}

/* ---------------------------------------------------------------- name index */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Builds ix over names[0..n). Returns 0, -1 out of memory, or 1 with *dup set
 * to the index of the first name seen twice. Ownership: ix->slot is owned by
 * ix (ni_free); names are borrowed only during the call. */
static int ni_build(name_index *ix, int n, const char *(*name_at)(const void *, int), const void *arr,
                    int *dup)
{
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    ix->slot = calloc(cap, sizeof *ix->slot);
    if (!ix->slot) return -1;
    ix->mask = cap - 1;
    for (int i = 0; i < n; i++) {
        const char *name = name_at(arr, i);
        size_t h = (size_t)fnv1a(name) & ix->mask;
        while (ix->slot[h]) {
            if (strcmp(name_at(arr, (int)ix->slot[h] - 1), name) == 0) {
                *dup = i;
                return 1;
            }
            h = (h + 1) & ix->mask;
        }
        ix->slot[h] = (uint32_t)i + 1;
    }
    return 0;
}

static int ni_find(const name_index *ix, const char *name, const char *(*name_at)(const void *, int),
                   const void *arr)
{
    if (!ix->slot || !name) return -1;
    size_t h = (size_t)fnv1a(name) & ix->mask;
    while (ix->slot[h]) {
        int i = (int)ix->slot[h] - 1;
        if (strcmp(name_at(arr, i), name) == 0) return i;
        h = (h + 1) & ix->mask;
    }
    return -1;
}

static void ni_free(name_index *ix)
{
    free(ix->slot);
    ix->slot = NULL;
}

static const char *kv_name_at(const void *arr, int i) { return ((const gguf_kv *)arr)[i].key; }
static const char *tensor_name_at(const void *arr, int i) { return ((const gg_tensor *)arr)[i].name; }

/* ---------------------------------------------------------------- parsing */

static int trunc_kv(const gg_file *f, int i, const char *key)
{
    if (key) return steer_err(STEER_EFORMAT, "%s: truncated in key/value %d (%s)", f->path, i, key);
    return steer_err(STEER_EFORMAT, "%s: truncated in key/value %d", f->path, i);
}

static int trunc_ti(const gg_file *f, int i, const char *name)
{
    if (name) return steer_err(STEER_EFORMAT, "%s: truncated in tensor info %d (%s)", f->path, i, name);
    return steer_err(STEER_EFORMAT, "%s: truncated in tensor info %d", f->path, i);
}

/* Reads an array of strings into kv (arr_strs/arr_lens/arr_buf, owned by kv).
 * Two passes: the first validates every length against the file and sums
 * them, so the allocation is bounded by the file size. */
static int parse_str_array(gg_file *f, reader *r, gguf_kv *kv, int i, uint64_t n)
{
    if (n > rd_left(r) / 8) return trunc_kv(f, i, kv->key); /* each needs a u64 length */
    size_t start = r->pos;
    uint64_t total = 0;
    for (uint64_t j = 0; j < n; j++) {
        const uint8_t *s;
        uint64_t len;
        if (rd_str(r, &s, &len) != 0) return trunc_kv(f, i, kv->key);
        if (len > UINT32_MAX)
            return steer_err(STEER_EFORMAT, "%s: key %s: string %llu is too long", f->path, kv->key,
                             (unsigned long long)j);
        total += len + 1;
    }
    kv->arr_strs = malloc((size_t)(n ? n : 1) * sizeof *kv->arr_strs);
    kv->arr_lens = malloc((size_t)(n ? n : 1) * sizeof *kv->arr_lens);
    kv->arr_buf = malloc((size_t)(total ? total : 1));
    if (!kv->arr_strs || !kv->arr_lens || !kv->arr_buf)
        return steer_err(STEER_ENOMEM, "%s: out of memory reading key %s", f->path, kv->key);
    r->pos = start;
    char *dst = kv->arr_buf;
    for (uint64_t j = 0; j < n; j++) {
        const uint8_t *s;
        uint64_t len;
        rd_str(r, &s, &len); /* validated by the first pass */
        if (len) memcpy(dst, s, (size_t)len);
        dst[len] = 0;
        kv->arr_strs[j] = dst;
        kv->arr_lens[j] = (uint32_t)len;
        dst += len + 1;
    }
    return STEER_OK;
}

/* Reads key/value record i into f->kv[i] (owned by f). */
static int parse_kv(gg_file *f, reader *r, int i)
{
    gguf_kv *kv = &f->kv[i];
    const uint8_t *s;
    uint64_t len;
    if (rd_str(r, &s, &len) != 0) return trunc_kv(f, i, NULL);
    if (memchr(s, 0, (size_t)len))
        return steer_err(STEER_EFORMAT, "%s: key/value %d has a NUL byte in its key", f->path, i);
    kv->key = dup_bytes(s, len);
    if (!kv->key) return steer_err(STEER_ENOMEM, "%s: out of memory", f->path);

    uint32_t t;
    if (rd_u32(r, &t) != 0) return trunc_kv(f, i, kv->key);
    if (t >= GGUF_N_TYPES)
        return steer_err(STEER_EFORMAT, "%s: key %s has invalid value type %u", f->path, kv->key, t);
    kv->type = (int)t;

    if (t == GGUF_TYPE_STRING) {
        if (rd_str(r, &s, &len) != 0) return trunc_kv(f, i, kv->key);
        kv->str = dup_bytes(s, len);
        if (!kv->str) return steer_err(STEER_ENOMEM, "%s: out of memory", f->path);
        kv->str_len = len;
        return STEER_OK;
    }
    if (t == GGUF_TYPE_ARRAY) {
        uint32_t et;
        uint64_t n;
        if (rd_u32(r, &et) != 0 || rd_u64(r, &n) != 0) return trunc_kv(f, i, kv->key);
        if (et == GGUF_TYPE_ARRAY)
            return steer_err(STEER_EUNSUPPORTED, "%s: key %s is an array of arrays (not supported)", f->path,
                             kv->key);
        if (et >= GGUF_N_TYPES)
            return steer_err(STEER_EFORMAT, "%s: key %s has invalid array element type %u", f->path, kv->key,
                             et);
        kv->arr_type = (int)et;
        kv->arr_n = n;
        if (et == GGUF_TYPE_STRING) return parse_str_array(f, r, kv, i, n);
        uint64_t esz = gguf_type_size[et];
        if (n > rd_left(r) / esz) return trunc_kv(f, i, kv->key);
        if (rd_skip(r, n * esz, &kv->val) != 0) return trunc_kv(f, i, kv->key);
        return STEER_OK;
    }
    if (rd_skip(r, gguf_type_size[t], &kv->val) != 0) return trunc_kv(f, i, kv->key);
    return STEER_OK;
}

/* Reads tensor info record i into f->tensors[i] (name owned by f). The data
 * range is checked later, once the data section's start is known. */
static int parse_tensor_info(gg_file *f, reader *r, int i, uint64_t *offset)
{
    gg_tensor *t = &f->tensors[i];
    const uint8_t *s;
    uint64_t len;
    if (rd_str(r, &s, &len) != 0) return trunc_ti(f, i, NULL);
    if (memchr(s, 0, (size_t)len))
        return steer_err(STEER_EFORMAT, "%s: tensor info %d has a NUL byte in its name", f->path, i);
    t->name = dup_bytes(s, len);
    if (!t->name) return steer_err(STEER_ENOMEM, "%s: out of memory", f->path);

    uint32_t n_dims;
    if (rd_u32(r, &n_dims) != 0) return trunc_ti(f, i, t->name);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return steer_err(STEER_EFORMAT, "%s: tensor %s has %u dimensions (1 to %d allowed)", f->path, t->name,
                         n_dims, GGUF_MAX_DIMS);
    t->n_dims = (int)n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        if (rd_u64(r, &t->ne[d]) != 0) return trunc_ti(f, i, t->name);
    uint32_t type;
    if (rd_u32(r, &type) != 0 || rd_u64(r, offset) != 0) return trunc_ti(f, i, t->name);
    t->type = (int)type;

    for (uint32_t d = 0; d < n_dims; d++)
        if (t->ne[d] > (uint64_t)INT64_MAX)
            return steer_err(STEER_EFORMAT, "%s: tensor %s has invalid ne[%u] = %llu", f->path, t->name, d,
                             (unsigned long long)t->ne[d]);
    uint64_t nbytes = 0;
    switch (ggml_nbytes(type, t->n_dims, t->ne, &nbytes)) {
    case 0: break;
    case -1:
        return steer_err(STEER_EUNSUPPORTED, "%s: tensor %s has unsupported ggml type %u (%s)", f->path,
                         t->name, type, ggml_type_name(type));
    case -2:
        return steer_err(STEER_EFORMAT, "%s: tensor %s: ne[0] = %llu is not a multiple of the %s block size",
                         f->path, t->name, (unsigned long long)t->ne[0], ggml_type_name(type));
    default:
        return steer_err(STEER_EFORMAT, "%s: tensor %s: size overflows", f->path, t->name);
    }
    if (nbytes > (uint64_t)SIZE_MAX)
        return steer_err(STEER_EFORMAT, "%s: tensor %s data runs past end of file", f->path, t->name);
    t->nbytes = (size_t)nbytes; /* checked against the file once the data section is known */
    return STEER_OK;
}

static int gguf_parse(gg_file *f)
{
    const char *path = f->path;
    if (f->map.size == 0) return steer_err(STEER_EFORMAT, "%s: not a GGUF file (empty file)", path);
    if (f->map.size < 4 || memcmp(f->map.data, "GGUF", 4) != 0)
        return steer_err(STEER_EFORMAT, "%s: not a GGUF file (bad magic)", path);
    reader r = {f->map.data, f->map.size, 4};

    uint64_t n_tensors, n_kv;
    if (rd_u32(&r, &f->version) != 0 || rd_u64(&r, &n_tensors) != 0 || rd_u64(&r, &n_kv) != 0)
        return steer_err(STEER_EFORMAT, "%s: truncated header", path);
    if (f->version == 1)
        return steer_err(STEER_EUNSUPPORTED, "%s: GGUF version 1 is not supported (only 2 and 3)", path);
    if (f->version == 0x02000000u || f->version == 0x03000000u)
        return steer_err(STEER_EUNSUPPORTED, "%s: big-endian GGUF files are not supported", path);
    if (f->version != 2 && f->version != 3)
        return steer_err(STEER_EFORMAT, "%s: unknown GGUF version %u", path, f->version);

    if (n_kv > INT_MAX)
        return steer_err(STEER_EFORMAT, "%s: key/value count %llu is too large", path, (unsigned long long)n_kv);
    if (n_tensors > INT_MAX)
        return steer_err(STEER_EFORMAT, "%s: tensor count %llu is too large", path, (unsigned long long)n_tensors);

    /* Smallest records: key/value 8 + 0 (key) + 4 + 1 = 13 bytes, tensor info
     * 8 + 4 + 8 + 4 + 8 = 32 bytes, so at most left/13 key/values and left/32
     * tensor infos can be read before the file runs out: the arrays need no
     * more slots than that (+1), whatever the header claims. A claim beyond
     * it is then reported as truncation at the record where the bytes end. */
    size_t left = rd_left(&r);
    size_t kv_cap = (size_t)n_kv < left / 13 + 1 ? (size_t)n_kv : left / 13 + 1;
    size_t t_cap = (size_t)n_tensors < left / 32 + 1 ? (size_t)n_tensors : left / 32 + 1;
    f->kv = calloc(kv_cap ? kv_cap : 1, sizeof *f->kv);
    f->tensors = calloc(t_cap ? t_cap : 1, sizeof *f->tensors);
    uint64_t *offsets = calloc(t_cap ? t_cap : 1, sizeof *offsets);
    if (!f->kv || !f->tensors || !offsets) {
        free(offsets);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }

    /* n_kv / n_tensors count the slots in use, so gg_close frees exactly
     * the records read so far. */
    int rc = STEER_OK, dup = -1;
    for (int i = 0; i < (int)n_kv && rc == STEER_OK; i++) {
        if ((size_t)i >= kv_cap) {
            rc = trunc_kv(f, i, NULL);
            break;
        }
        f->n_kv = i + 1;
        rc = parse_kv(f, &r, i);
    }
    if (rc == STEER_OK) {
        int b = ni_build(&f->kv_ix, f->n_kv, kv_name_at, f->kv, &dup);
        if (b < 0) rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
        if (b > 0) rc = steer_err(STEER_EFORMAT, "%s: duplicate key %s", path, f->kv[dup].key);
    }

    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (rc == STEER_OK && gg_has_key(f, "general.alignment")) {
        rc = gg_get_u32(f, "general.alignment", &f->alignment);
        if (rc != STEER_OK)
            rc = steer_err(STEER_EFORMAT, "%s: general.alignment is not an unsigned integer", path);
        else if (f->alignment == 0 || (f->alignment & (f->alignment - 1)) != 0)
            rc = steer_err(STEER_EFORMAT, "%s: general.alignment %u is not a power of two", path, f->alignment);
    }

    for (int i = 0; i < (int)n_tensors && rc == STEER_OK; i++) {
        if ((size_t)i >= t_cap) {
            rc = trunc_ti(f, i, NULL);
            break;
        }
        f->n_tensors = i + 1;
        rc = parse_tensor_info(f, &r, i, &offsets[i]);
    }
    if (rc == STEER_OK) {
        int b = ni_build(&f->t_ix, f->n_tensors, tensor_name_at, f->tensors, &dup);
        if (b < 0) rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
        if (b > 0) rc = steer_err(STEER_EFORMAT, "%s: duplicate tensor %s", path, f->tensors[dup].name);
    }

    if (rc == STEER_OK) {
        /* r.pos <= size < SIZE_MAX - alignment, so this cannot overflow. */
        f->data_start = (r.pos + f->alignment - 1) / f->alignment * f->alignment;
        if (f->n_tensors > 0 && f->data_start > f->map.size)
            rc = steer_err(STEER_EFORMAT, "%s: truncated before the data section (starts at byte %zu of %zu)",
                           path, f->data_start, f->map.size);
    }
    for (int i = 0; i < f->n_tensors && rc == STEER_OK; i++) {
        gg_tensor *t = &f->tensors[i];
        size_t avail = f->map.size - f->data_start;
        if (offsets[i] % f->alignment != 0)
            rc = steer_err(STEER_EFORMAT, "%s: tensor %s data offset %llu is not a multiple of the alignment %u",
                           path, t->name, (unsigned long long)offsets[i], f->alignment);
        else if (offsets[i] > avail || t->nbytes > avail - offsets[i])
            rc = steer_err(STEER_EFORMAT, "%s: tensor %s data runs past end of file", path, t->name);
        else
            t->data = f->map.data + f->data_start + offsets[i];
    }
    free(offsets);
    return rc;
}

int gg_open(const char *path, gg_file **out)
{
    /* Ownership: on success *out is owned by the caller (gg_close); it owns
     * the mapping, so every pointer it hands out lives until gg_close. */
    if (!out) return steer_err(STEER_EARG, "gg_open: out is NULL");
    *out = NULL;
    if (!path) return steer_err(STEER_EARG, "gg_open: path is NULL");
    gg_file *f = calloc(1, sizeof *f);
    if (!f) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    f->path = strdup(path);
    if (!f->path) {
        free(f);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    int rc = io_map_open(path, &f->map);
    if (rc == STEER_OK) rc = gguf_parse(f);
    if (rc != STEER_OK) {
        gg_close(f);
        return rc;
    }
    *out = f;
    return STEER_OK;
}

void gg_close(gg_file *f)
{
    /* Ownership: frees f and everything it owns, including the mapping. */
    if (!f) return;
    for (int i = 0; f->kv && i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        free(kv->key);
        free(kv->str);
        free(kv->arr_strs);
        free(kv->arr_lens);
        free(kv->arr_buf);
    }
    for (int i = 0; f->tensors && i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->kv);
    free(f->tensors);
    ni_free(&f->kv_ix);
    ni_free(&f->t_ix);
    io_map_close(&f->map);
    free(f->path);
    free(f);
}

const char *gg_path(const gg_file *f) { return f ? f->path : ""; }

/* ---------------------------------------------------------------- getters */

static const gguf_kv *find_kv(const gg_file *f, const char *key)
{
    int i = ni_find(&f->kv_ix, key, kv_name_at, f->kv);
    return i < 0 ? NULL : &f->kv[i];
}

int gg_has_key(const gg_file *f, const char *key) { return f && key && find_kv(f, key) != NULL; }

/* A decoded number: kind 0 unsigned integer (u), 1 signed integer (s),
 * 2 floating point (d), 3 bool (u), -1 not a number. */
typedef struct {
    int kind;
    uint64_t u;
    int64_t s;
    double d;
} num;

static num decode_num(int type, const uint8_t *p)
{
    num n = {-1, 0, 0, 0};
    switch (type) {
    case GGUF_TYPE_UINT8: n.kind = 0; n.u = p[0]; break;
    case GGUF_TYPE_UINT16: n.kind = 0; n.u = le16(p); break;
    case GGUF_TYPE_UINT32: n.kind = 0; n.u = le32(p); break;
    case GGUF_TYPE_UINT64: n.kind = 0; n.u = le64(p); break;
    case GGUF_TYPE_INT8: n.kind = 1; n.s = (int8_t)p[0]; break;
    case GGUF_TYPE_INT16: n.kind = 1; n.s = (int16_t)le16(p); break;
    case GGUF_TYPE_INT32: n.kind = 1; n.s = (int32_t)le32(p); break;
    case GGUF_TYPE_INT64: n.kind = 1; n.s = (int64_t)le64(p); break;
    case GGUF_TYPE_FLOAT32: {
        uint32_t b = le32(p);
        float v;
        memcpy(&v, &b, sizeof v);
        n.kind = 2;
        n.d = v;
        break;
    }
    case GGUF_TYPE_FLOAT64: {
        uint64_t b = le64(p);
        memcpy(&n.d, &b, sizeof n.d);
        n.kind = 2;
        break;
    }
    case GGUF_TYPE_BOOL: n.kind = 3; n.u = p[0] != 0; break;
    default: break;
    }
    return n;
}

/* Looks up key; STEER_EARG naming the file and key if it is missing. */
static int need_kv(const gg_file *f, const char *key, const gguf_kv **kv)
{
    if (!f || !key) return steer_err(STEER_EARG, "gguf: NULL file or key");
    *kv = find_kv(f, key);
    if (!*kv) return steer_err(STEER_EARG, "%s: missing key %s", f->path, key);
    return STEER_OK;
}

static int wrong_kind(const gg_file *f, const gguf_kv *kv, const char *want)
{
    if (kv->type == GGUF_TYPE_ARRAY)
        return steer_err(STEER_EARG, "%s: key %s is an array of %s, expected %s", f->path, kv->key,
                         gguf_type_name(kv->arr_type), want);
    return steer_err(STEER_EARG, "%s: key %s is a %s, expected %s", f->path, kv->key, gguf_type_name(kv->type),
                     want);
}

int gg_get_u32(const gg_file *f, const char *key, uint32_t *out)
{
    const gguf_kv *kv;
    int rc = need_kv(f, key, &kv);
    if (rc) return rc;
    if (kv->type == GGUF_TYPE_STRING || kv->type == GGUF_TYPE_ARRAY) return wrong_kind(f, kv, "an integer");
    num n = decode_num(kv->type, kv->val);
    if (n.kind == 0 && n.u <= UINT32_MAX) {
        *out = (uint32_t)n.u;
        return STEER_OK;
    }
    if (n.kind == 1 && n.s >= 0 && n.s <= (int64_t)UINT32_MAX) {
        *out = (uint32_t)n.s;
        return STEER_OK;
    }
    if (n.kind == 0 || n.kind == 1)
        return steer_err(STEER_EARG, "%s: key %s value %s%llu is out of range for u32", f->path, key,
                         n.kind == 1 ? "-" : "",
                         n.kind == 1 ? (unsigned long long)(-(n.s + 1)) + 1 : (unsigned long long)n.u);
    return wrong_kind(f, kv, "an integer");
}

int gg_get_f32(const gg_file *f, const char *key, float *out)
{
    const gguf_kv *kv;
    int rc = need_kv(f, key, &kv);
    if (rc) return rc;
    if (kv->type == GGUF_TYPE_STRING || kv->type == GGUF_TYPE_ARRAY) return wrong_kind(f, kv, "a number");
    num n = decode_num(kv->type, kv->val);
    switch (n.kind) {
    case 0: *out = (float)n.u; return STEER_OK;
    case 1: *out = (float)n.s; return STEER_OK;
    case 2: *out = (float)n.d; return STEER_OK;
    default: return wrong_kind(f, kv, "a number");
    }
}

int gg_get_bool(const gg_file *f, const char *key, int *out)
{
    const gguf_kv *kv;
    int rc = need_kv(f, key, &kv);
    if (rc) return rc;
    if (kv->type == GGUF_TYPE_STRING || kv->type == GGUF_TYPE_ARRAY) return wrong_kind(f, kv, "a bool");
    num n = decode_num(kv->type, kv->val);
    switch (n.kind) {
    case 0:
    case 3: *out = n.u != 0; return STEER_OK;
    case 1: *out = n.s != 0; return STEER_OK;
    default: return wrong_kind(f, kv, "a bool");
    }
}

int gg_get_str(const gg_file *f, const char *key, const char **out)
{
    const gguf_kv *kv;
    int rc = need_kv(f, key, &kv);
    if (rc) return rc;
    if (kv->type != GGUF_TYPE_STRING) return wrong_kind(f, kv, "a string");
    *out = kv->str;
    return STEER_OK;
}

int gg_get_arr_str(const gg_file *f, const char *key, uint64_t *n, const char *const **strs,
                   const uint32_t **lens)
{
    /* Ownership: *strs and *lens are owned by f (valid until gg_close). */
    const gguf_kv *kv;
    int rc = need_kv(f, key, &kv);
    if (rc) return rc;
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING)
        return wrong_kind(f, kv, "an array of strings");
    if (n) *n = kv->arr_n;
    if (strs) *strs = (const char *const *)kv->arr_strs;
    if (lens) *lens = kv->arr_lens;
    return STEER_OK;
}

/* Numeric array kv as a malloc'd copy converted element by element.
 * to_i32 != 0: integers only, range-checked into int32; else floats. */
static int get_arr_num(const gg_file *f, const char *key, uint64_t *n_out, void **out, int to_i32)
{
    const char *want = to_i32 ? "an array of integers" : "an array of numbers";
    const gguf_kv *kv;
    int rc = need_kv(f, key, &kv);
    if (rc) return rc;
    if (kv->type != GGUF_TYPE_ARRAY || kv->arr_type == GGUF_TYPE_STRING || kv->arr_type == GGUF_TYPE_BOOL)
        return wrong_kind(f, kv, want);
    if (to_i32 && (kv->arr_type == GGUF_TYPE_FLOAT32 || kv->arr_type == GGUF_TYPE_FLOAT64))
        return wrong_kind(f, kv, want);
    uint64_t n = kv->arr_n; /* n × element size <= file size, so n × 4 fits */
    size_t esz = gguf_type_size[kv->arr_type];
    void *buf = malloc((size_t)(n ? n : 1) * 4);
    if (!buf) return steer_err(STEER_ENOMEM, "%s: out of memory reading key %s", f->path, key);
    for (uint64_t i = 0; i < n; i++) {
        num v = decode_num(kv->arr_type, kv->val + i * esz);
        if (to_i32) {
            int ok = (v.kind == 0 && v.u <= INT32_MAX) || (v.kind == 1 && v.s >= INT32_MIN && v.s <= INT32_MAX);
            if (!ok) {
                free(buf);
                return steer_err(STEER_EARG, "%s: key %s element %llu is out of range for int32", f->path, key,
                                 (unsigned long long)i);
            }
            ((int32_t *)buf)[i] = v.kind == 0 ? (int32_t)v.u : (int32_t)v.s;
        } else {
            ((float *)buf)[i] = v.kind == 0 ? (float)v.u : v.kind == 1 ? (float)v.s : (float)v.d;
        }
    }
    *n_out = n;
    *out = buf;
    return STEER_OK;
}

int gg_get_arr_f32(const gg_file *f, const char *key, uint64_t *n, float **out)
{
    /* Ownership: *out is malloc'd [*n] and owned by the caller (free). */
    void *p = NULL;
    int rc = get_arr_num(f, key, n, &p, 0);
    if (rc == STEER_OK) *out = p;
    return rc;
}

int gg_get_arr_i32(const gg_file *f, const char *key, uint64_t *n, int32_t **out)
{
    /* Ownership: *out is malloc'd [*n] and owned by the caller (free). */
    void *p = NULL;
    int rc = get_arr_num(f, key, n, &p, 1);
    if (rc == STEER_OK) *out = p;
    return rc;
}

int gg_n_tensors(const gg_file *f) { return f ? f->n_tensors : 0; }

const gg_tensor *gg_tensor_at(const gg_file *f, int i)
{
    if (!f || i < 0 || i >= f->n_tensors) return NULL;
    return &f->tensors[i];
}

const gg_tensor *gg_find_tensor(const gg_file *f, const char *name)
{
    if (!f) return NULL;
    int i = ni_find(&f->t_ix, name, tensor_name_at, f->tensors);
    return i < 0 ? NULL : &f->tensors[i];
}

/* ---------------------------------------------------------------- writer */

typedef struct {
    char *key; /* owned */
    int type;  /* GGUF_TYPE_* */
    uint32_t u32;
    float f32;
    uint8_t b;
    char *str;      /* STRING: owned */
    int arr_type;   /* ARRAY: element type (STRING, FLOAT32 or INT32) */
    int arr_n;
    void *arr;      /* ARRAY of numbers: owned copy [arr_n]; of strings: owned char *[arr_n], each owned */
} gw_kv;

typedef struct {
    char *name; /* owned */
    uint32_t type;
    int n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    const void *data; /* borrowed until gg_writer_write */
    uint64_t nbytes;
} gw_tensor;

struct gg_writer {
    gw_kv *kv; /* owned [n_kv] */
    int n_kv, cap_kv;
    gw_tensor *t; /* owned [n_t] */
    int n_t, cap_t;
};

static void gw_kv_clear(gw_kv *kv)
{
    if (kv->type == GGUF_TYPE_STRING) free(kv->str);
    if (kv->type == GGUF_TYPE_ARRAY) {
        if (kv->arr_type == GGUF_TYPE_STRING)
            for (int i = 0; i < kv->arr_n; i++) free(((char **)kv->arr)[i]);
        free(kv->arr);
    }
    kv->str = NULL;
    kv->arr = NULL;
    kv->arr_n = 0;
}

int gg_writer_new(gg_writer **out)
{
    /* Ownership: *out is owned by the caller (gg_writer_free). */
    if (!out) return steer_err(STEER_EARG, "gg_writer_new: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return steer_err(STEER_ENOMEM, "gg_writer_new: out of memory");
    return STEER_OK;
}

void gg_writer_free(gg_writer *w)
{
    /* Ownership: frees w and its copies; tensor data stays the caller's. */
    if (!w) return;
    for (int i = 0; i < w->n_kv; i++) {
        gw_kv_clear(&w->kv[i]);
        free(w->kv[i].key);
    }
    for (int i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* The slot for key: an existing one (its old value released) or a new one.
 * Returns NULL with the error set. */
static gw_kv *gw_slot(gg_writer *w, const char *key)
{
    if (!w || !key || !*key) {
        steer_err(STEER_EARG, "gguf writer: NULL writer or empty key");
        return NULL;
    }
    for (int i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            gw_kv_clear(&w->kv[i]);
            return &w->kv[i];
        }
    }
    if (w->n_kv == w->cap_kv) {
        int cap = w->cap_kv ? w->cap_kv * 2 : 16;
        gw_kv *p = realloc(w->kv, (size_t)cap * sizeof *p);
        if (!p) {
            steer_err(STEER_ENOMEM, "gguf writer: out of memory");
            return NULL;
        }
        w->kv = p;
        w->cap_kv = cap;
    }
    gw_kv *kv = &w->kv[w->n_kv];
    memset(kv, 0, sizeof *kv);
    kv->key = strdup(key);
    if (!kv->key) {
        steer_err(STEER_ENOMEM, "gguf writer: out of memory");
        return NULL;
    }
    w->n_kv++;
    return kv;
}

int gg_writer_set_u32(gg_writer *w, const char *key, uint32_t v)
{
    gw_kv *kv = gw_slot(w, key);
    if (!kv) return w && key && *key ? STEER_ENOMEM : STEER_EARG;
    kv->type = GGUF_TYPE_UINT32;
    kv->u32 = v;
    return STEER_OK;
}

int gg_writer_set_f32(gg_writer *w, const char *key, float v)
{
    gw_kv *kv = gw_slot(w, key);
    if (!kv) return w && key && *key ? STEER_ENOMEM : STEER_EARG;
    kv->type = GGUF_TYPE_FLOAT32;
    kv->f32 = v;
    return STEER_OK;
}

int gg_writer_set_bool(gg_writer *w, const char *key, int v)
{
    gw_kv *kv = gw_slot(w, key);
    if (!kv) return w && key && *key ? STEER_ENOMEM : STEER_EARG;
    kv->type = GGUF_TYPE_BOOL;
    kv->b = v != 0;
    return STEER_OK;
}

int gg_writer_set_str(gg_writer *w, const char *key, const char *v)
{
    /* Ownership: v is copied. */
    if (!v) return steer_err(STEER_EARG, "gguf writer: NULL string for key %s", key ? key : "?");
    char *copy = strdup(v);
    if (!copy) return steer_err(STEER_ENOMEM, "gguf writer: out of memory");
    gw_kv *kv = gw_slot(w, key);
    if (!kv) {
        free(copy);
        return w && key && *key ? STEER_ENOMEM : STEER_EARG;
    }
    kv->type = GGUF_TYPE_STRING;
    kv->str = copy;
    return STEER_OK;
}

int gg_writer_set_arr_str(gg_writer *w, const char *key, const char *const *v, int n)
{
    /* Ownership: v[0..n) and the strings are copied. */
    if (n < 0 || (n > 0 && !v)) return steer_err(STEER_EARG, "gguf writer: bad string array for key %s", key ? key : "?");
    for (int i = 0; i < n; i++)
        if (!v[i]) return steer_err(STEER_EARG, "gguf writer: key %s: string %d is NULL", key ? key : "?", i);
    char **copy = calloc((size_t)(n ? n : 1), sizeof *copy);
    if (!copy) return steer_err(STEER_ENOMEM, "gguf writer: out of memory");
    for (int i = 0; i < n; i++) {
        copy[i] = strdup(v[i]);
        if (!copy[i]) {
            for (int j = 0; j < i; j++) free(copy[j]);
            free(copy);
            return steer_err(STEER_ENOMEM, "gguf writer: out of memory");
        }
    }
    gw_kv *kv = gw_slot(w, key);
    if (!kv) {
        for (int i = 0; i < n; i++) free(copy[i]);
        free(copy);
        return w && key && *key ? STEER_ENOMEM : STEER_EARG;
    }
    kv->type = GGUF_TYPE_ARRAY;
    kv->arr_type = GGUF_TYPE_STRING;
    kv->arr_n = n;
    kv->arr = copy;
    return STEER_OK;
}

/* Numeric arrays of 4-byte elements (f32 / i32), copied. */
static int gw_set_arr4(gg_writer *w, const char *key, const void *v, int n, int type)
{
    if (n < 0 || (n > 0 && !v)) return steer_err(STEER_EARG, "gguf writer: bad array for key %s", key ? key : "?");
    void *copy = malloc((size_t)(n ? n : 1) * 4);
    if (!copy) return steer_err(STEER_ENOMEM, "gguf writer: out of memory");
    if (n) memcpy(copy, v, (size_t)n * 4);
    gw_kv *kv = gw_slot(w, key);
    if (!kv) {
        free(copy);
        return w && key && *key ? STEER_ENOMEM : STEER_EARG;
    }
    kv->type = GGUF_TYPE_ARRAY;
    kv->arr_type = type;
    kv->arr_n = n;
    kv->arr = copy;
    return STEER_OK;
}

int gg_writer_set_arr_f32(gg_writer *w, const char *key, const float *v, int n)
{
    return gw_set_arr4(w, key, v, n, GGUF_TYPE_FLOAT32);
}

int gg_writer_set_arr_i32(gg_writer *w, const char *key, const int32_t *v, int n)
{
    return gw_set_arr4(w, key, v, n, GGUF_TYPE_INT32);
}

int gg_writer_add_tensor(gg_writer *w, const char *name, int ggml_type, int n_dims, const uint64_t *ne,
                         const void *data)
{
    /* Ownership: name is copied; data[nbytes] is borrowed until write. */
    if (!w || !name || !*name || !ne) return steer_err(STEER_EARG, "gguf writer: bad tensor arguments");
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return steer_err(STEER_EARG, "gguf writer: tensor %s has %d dimensions (1 to %d allowed)", name, n_dims,
                         GGUF_MAX_DIMS);
    for (int i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return steer_err(STEER_EARG, "gguf writer: duplicate tensor %s", name);
    uint64_t nbytes = 0;
    switch (ggml_nbytes((uint32_t)ggml_type, n_dims, ne, &nbytes)) {
    case 0: break;
    case -1:
        return steer_err(STEER_EUNSUPPORTED, "gguf writer: tensor %s has unsupported ggml type %d (%s)", name,
                         ggml_type, ggml_type_name((uint32_t)ggml_type));
    case -2:
        return steer_err(STEER_EARG, "gguf writer: tensor %s: ne[0] = %llu is not a multiple of the block size",
                         name, (unsigned long long)ne[0]);
    default: return steer_err(STEER_EARG, "gguf writer: tensor %s: size overflows", name);
    }
    if (nbytes > (uint64_t)SIZE_MAX / 2) return steer_err(STEER_EARG, "gguf writer: tensor %s is too large", name);
    if (nbytes && !data) return steer_err(STEER_EARG, "gguf writer: tensor %s has no data", name);
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? w->cap_t * 2 : 16;
        gw_tensor *p = realloc(w->t, (size_t)cap * sizeof *p);
        if (!p) return steer_err(STEER_ENOMEM, "gguf writer: out of memory");
        w->t = p;
        w->cap_t = cap;
    }
    gw_tensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return steer_err(STEER_ENOMEM, "gguf writer: out of memory");
    t->type = (uint32_t)ggml_type;
    t->n_dims = n_dims;
    for (int i = 0; i < GGUF_MAX_DIMS; i++) t->ne[i] = i < n_dims ? ne[i] : 1;
    t->data = data;
    t->nbytes = nbytes;
    w->n_t++;
    return STEER_OK;
}

/* Streaming output with a running byte count (for padding). Errors are
 * sticky in the FILE and checked once at the end. */
typedef struct {
    FILE *fp;
    uint64_t pos;
} gw_out;

static void put_bytes(gw_out *o, const void *p, size_t n)
{
    if (n) fwrite(p, 1, n, o->fp);
    o->pos += n;
}

static void put_u32(gw_out *o, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put_bytes(o, b, 4);
}

static void put_u64(gw_out *o, uint64_t v)
{
    put_u32(o, (uint32_t)v);
    put_u32(o, (uint32_t)(v >> 32));
}

static void put_str(gw_out *o, const char *s)
{
    size_t n = strlen(s);
    put_u64(o, n);
    put_bytes(o, s, n);
}

static void put_pad(gw_out *o, uint32_t align)
{
    static const uint8_t zeros[64];
    size_t n = (size_t)((align - o->pos % align) % align);
    put_bytes(o, zeros, n);
}

static uint64_t pad_to(uint64_t n, uint64_t align) { return (n + align - 1) / align * align; }

int gg_writer_write(gg_writer *w, const char *path)
{
    /* Ownership: reads w (which keeps everything); creates or replaces path
     * atomically; no file is left behind on failure. */
    if (!w || !path) return steer_err(STEER_EARG, "gguf writer: NULL writer or path");
    char tmp[GGUF_TMP_PATH_MAX];
    FILE *fp = io_tmp_open(path, tmp);
    if (!fp) return STEER_EIO;
    gw_out o = {fp, 0};

    put_bytes(&o, "GGUF", 4);
    put_u32(&o, 3);
    put_u64(&o, (uint64_t)w->n_t);
    put_u64(&o, (uint64_t)w->n_kv);
    for (int i = 0; i < w->n_kv; i++) {
        const gw_kv *kv = &w->kv[i];
        put_str(&o, kv->key);
        put_u32(&o, (uint32_t)kv->type);
        switch (kv->type) {
        case GGUF_TYPE_UINT32: put_u32(&o, kv->u32); break;
        case GGUF_TYPE_FLOAT32: {
            uint32_t b;
            memcpy(&b, &kv->f32, 4);
            put_u32(&o, b);
            break;
        }
        case GGUF_TYPE_BOOL: put_bytes(&o, &kv->b, 1); break;
        case GGUF_TYPE_STRING: put_str(&o, kv->str); break;
        case GGUF_TYPE_ARRAY:
            put_u32(&o, (uint32_t)kv->arr_type);
            put_u64(&o, (uint64_t)kv->arr_n);
            for (int j = 0; j < kv->arr_n; j++) {
                if (kv->arr_type == GGUF_TYPE_STRING) {
                    put_str(&o, ((char **)kv->arr)[j]);
                } else {
                    uint32_t b;
                    memcpy(&b, (const uint8_t *)kv->arr + (size_t)j * 4, 4);
                    put_u32(&o, b);
                }
            }
            break;
        default: break;
        }
    }
    /* Tensor infos: offsets are the running sum of sizes, each padded to 32. */
    uint64_t off = 0;
    for (int i = 0; i < w->n_t; i++) {
        const gw_tensor *t = &w->t[i];
        put_str(&o, t->name);
        put_u32(&o, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) put_u64(&o, t->ne[d]);
        put_u32(&o, t->type);
        put_u64(&o, off);
        off += pad_to(t->nbytes, GGUF_DEFAULT_ALIGNMENT);
    }
    put_pad(&o, GGUF_DEFAULT_ALIGNMENT);
    for (int i = 0; i < w->n_t; i++) {
        put_bytes(&o, w->t[i].data, (size_t)w->t[i].nbytes);
        put_pad(&o, GGUF_DEFAULT_ALIGNMENT);
    }
    int ok = !ferror(fp);
    if (!ok) steer_err(STEER_EIO, "%s: write failed", path);
    return io_tmp_commit(fp, tmp, path, ok);
}

/* ---------------------------------------------------------------- public API (steer.h, "files: GGUF") */

struct steer_gguf {
    gg_file *f; /* owned */
};

struct steer_gguf_writer {
    gg_writer *w; /* owned */
};

int steer_gguf_open(const char *path, steer_gguf **out)
{
    /* Ownership: on success *out is owned by the caller (steer_gguf_free). */
    if (!out) return steer_err(STEER_EARG, "steer_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return steer_err(STEER_EARG, "steer_gguf_open: path is NULL");
    steer_gguf *g = calloc(1, sizeof *g);
    if (!g) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    int rc = gg_open(path, &g->f);
    if (rc != STEER_OK) {
        free(g);
        return rc;
    }
    *out = g;
    return STEER_OK;
}

void steer_gguf_free(steer_gguf *g)
{
    /* Ownership: frees g, its mapping and every pointer it handed out. */
    if (!g) return;
    gg_close(g->f);
    free(g);
}

int steer_gguf_n_tensors(const steer_gguf *g) { return g ? gg_n_tensors(g->f) : 0; }

static void tensor_info(const gg_file *f, const gg_tensor *t, steer_gguf_tensor_info *out)
{
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->ggml_type = t->type;
    out->type_name = ggml_type_name((uint32_t)t->type);
    out->n_dims = t->n_dims;
    for (int d = 0; d < t->n_dims && d < GGUF_MAX_DIMS; d++) out->shape[d] = (int64_t)t->ne[t->n_dims - 1 - d];
    out->data = t->data;
    out->nbytes = t->nbytes;
    out->offset = (uint64_t)((const uint8_t *)t->data - f->map.data);
}

int steer_gguf_tensor_at(const steer_gguf *g, int i, steer_gguf_tensor_info *out)
{
    /* Ownership: *out points into g (valid until steer_gguf_free). */
    if (!g || !out) return steer_err(STEER_EARG, "steer_gguf_tensor_at: NULL file or out");
    const gg_tensor *t = gg_tensor_at(g->f, i);
    if (!t)
        return steer_err(STEER_EARG, "%s: tensor index %d out of range (%d tensors)", g->f->path, i,
                         g->f->n_tensors);
    tensor_info(g->f, t, out);
    return STEER_OK;
}

int steer_gguf_tensor_find(const steer_gguf *g, const char *name, steer_gguf_tensor_info *out)
{
    /* Ownership: *out points into g (valid until steer_gguf_free). */
    if (!g || !name || !out) return steer_err(STEER_EARG, "steer_gguf_tensor_find: NULL file, name or out");
    const gg_tensor *t = gg_find_tensor(g->f, name);
    if (!t) return steer_err(STEER_EARG, "%s: no tensor %s", g->f->path, name);
    tensor_info(g->f, t, out);
    return STEER_OK;
}

int steer_gguf_n_keys(const steer_gguf *g) { return g ? g->f->n_kv : 0; }

const char *steer_gguf_key(const steer_gguf *g, int i)
{
    /* Ownership: the key is owned by g (valid until steer_gguf_free). */
    if (!g || i < 0 || i >= g->f->n_kv) return NULL;
    return g->f->kv[i].key;
}

int steer_gguf_has_key(const steer_gguf *g, const char *key) { return g ? gg_has_key(g->f, key) : 0; }

int steer_gguf_get_str(const steer_gguf *g, const char *key, const char **out)
{
    /* Ownership: *out is owned by g (valid until steer_gguf_free). */
    if (!g || !out) return steer_err(STEER_EARG, "steer_gguf_get_str: NULL file or out");
    return gg_get_str(g->f, key, out);
}

int steer_gguf_get_u32(const steer_gguf *g, const char *key, uint32_t *out)
{
    if (!g || !out) return steer_err(STEER_EARG, "steer_gguf_get_u32: NULL file or out");
    return gg_get_u32(g->f, key, out);
}

int steer_gguf_get_f32(const steer_gguf *g, const char *key, float *out)
{
    if (!g || !out) return steer_err(STEER_EARG, "steer_gguf_get_f32: NULL file or out");
    return gg_get_f32(g->f, key, out);
}

int steer_gguf_get_bool(const steer_gguf *g, const char *key, int *out)
{
    if (!g || !out) return steer_err(STEER_EARG, "steer_gguf_get_bool: NULL file or out");
    return gg_get_bool(g->f, key, out);
}

int steer_gguf_writer_new(steer_gguf_writer **out)
{
    /* Ownership: *out is owned by the caller (steer_gguf_writer_free). */
    if (!out) return steer_err(STEER_EARG, "steer_gguf_writer_new: out is NULL");
    *out = NULL;
    steer_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return steer_err(STEER_ENOMEM, "steer_gguf_writer_new: out of memory");
    int rc = gg_writer_new(&w->w);
    if (rc != STEER_OK) {
        free(w);
        return rc;
    }
    *out = w;
    return STEER_OK;
}

void steer_gguf_writer_free(steer_gguf_writer *w)
{
    /* Ownership: frees w and its copies; tensor data stays the caller's. */
    if (!w) return;
    gg_writer_free(w->w);
    free(w);
}

static int no_writer(void) { return steer_err(STEER_EARG, "gguf writer: NULL writer"); }

int steer_gguf_writer_set_u32(steer_gguf_writer *w, const char *key, uint32_t v)
{
    return w ? gg_writer_set_u32(w->w, key, v) : no_writer();
}

int steer_gguf_writer_set_f32(steer_gguf_writer *w, const char *key, float v)
{
    return w ? gg_writer_set_f32(w->w, key, v) : no_writer();
}

int steer_gguf_writer_set_bool(steer_gguf_writer *w, const char *key, int v)
{
    return w ? gg_writer_set_bool(w->w, key, v) : no_writer();
}

int steer_gguf_writer_set_str(steer_gguf_writer *w, const char *key, const char *v)
{
    /* Ownership: v is copied. */
    return w ? gg_writer_set_str(w->w, key, v) : no_writer();
}

int steer_gguf_writer_set_arr_str(steer_gguf_writer *w, const char *key, const char *const *v, int n)
{
    /* Ownership: v[0..n) and the strings are copied. */
    return w ? gg_writer_set_arr_str(w->w, key, v, n) : no_writer();
}

int steer_gguf_writer_set_arr_f32(steer_gguf_writer *w, const char *key, const float *v, int n)
{
    /* Ownership: v[0..n) is copied. */
    return w ? gg_writer_set_arr_f32(w->w, key, v, n) : no_writer();
}

int steer_gguf_writer_set_arr_i32(steer_gguf_writer *w, const char *key, const int32_t *v, int n)
{
    /* Ownership: v[0..n) is copied. */
    return w ? gg_writer_set_arr_i32(w->w, key, v, n) : no_writer();
}

int steer_gguf_writer_add_tensor(steer_gguf_writer *w, const char *name, int ggml_type, int n_dims,
                                 const int64_t *shape, const void *data)
{
    /* Ownership: name is copied; data is borrowed until steer_gguf_writer_write. */
    if (!w || !name || !shape) return steer_err(STEER_EARG, "gguf writer: bad tensor arguments");
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return steer_err(STEER_EARG, "gguf writer: tensor %s has %d dimensions (1 to %d allowed)", name, n_dims,
                         GGUF_MAX_DIMS);
    uint64_t ne[GGUF_MAX_DIMS];
    for (int d = 0; d < n_dims; d++) {
        if (shape[d] < 0)
            return steer_err(STEER_EARG, "gguf writer: tensor %s: dimension %d is negative (%lld)", name, d,
                             (long long)shape[d]);
        ne[n_dims - 1 - d] = (uint64_t)shape[d];
    }
    return gg_writer_add_tensor(w->w, name, ggml_type, n_dims, ne, data);
}

int steer_gguf_writer_write(steer_gguf_writer *w, const char *path)
{
    /* Ownership: reads w (which keeps everything); creates or replaces path
     * atomically; no file is left behind on failure. */
    return w ? gg_writer_write(w->w, path) : no_writer();
}

/* vectors.c — steering vectors: the extraction math (mean difference, PCA),
 * vector sets and their files (safetensors vector files, llama.cpp control
 * vectors). Conventions and decisions: docs/VECTORS.md.
 *
 * PCA uses LAPACK's dsyev from OpenBLAS on whichever of the d×d second-moment
 * matrix XᵀX and the n×n Gram matrix XXᵀ is smaller; both have the same
 * non-zero eigenvalues, and a top eigenvector a of XXᵀ gives v = Xᵀa. */
#include "model.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (Fortran calling convention, 32-bit integers, trailing hidden
 * lengths of the character arguments). */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                   double *work, const int *lwork, int *info, size_t jobz_len, size_t uplo_len);

/* ---------------------------------------------------------------- math */

double steer_vec_norm(const float *v, int d)
{
    double s = 0.0;
    for (int j = 0; j < d; j++) s += (double)v[j] * v[j];
    return sqrt(s);
}

double steer_vec_cosine(const float *a, const float *b, int d)
{
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (int j = 0; j < d; j++) {
        ab += (double)a[j] * b[j];
        aa += (double)a[j] * a[j];
        bb += (double)b[j] * b[j];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

int steer_vec_mean_diff(const float *pos, int n_pos, const float *neg, int n_neg, int d, float *out)
{
    if (!pos || !neg || !out || d <= 0) return steer_err(STEER_EARG, "mean-diff: bad arguments");
    if (n_pos < 1 || n_neg < 1)
        return steer_err(STEER_EARG, "mean-diff: need at least one positive and one negative (got %d and %d)", n_pos,
                         n_neg);
    /* Two means, then one subtraction: identical inputs give exactly 0. */
    double *mp = calloc((size_t)d, sizeof *mp), *mn = calloc((size_t)d, sizeof *mn);
    if (!mp || !mn) {
        free(mp);
        free(mn);
        return steer_err(STEER_ENOMEM, "mean-diff: out of memory");
    }
    for (int i = 0; i < n_pos; i++)
        for (int j = 0; j < d; j++) mp[j] += pos[(size_t)i * d + j];
    for (int i = 0; i < n_neg; i++)
        for (int j = 0; j < d; j++) mn[j] += neg[(size_t)i * d + j];
    for (int j = 0; j < d; j++) out[j] = (float)(mp[j] / n_pos - mn[j] / n_neg);
    free(mp);
    free(mn);
    return STEER_OK;
}

/* Top eigenpair of the symmetric n×n matrix a (destroyed). *v receives the
 * eigenvector (a column of a), *lam its eigenvalue, *trace the trace. */
static int top_eigen(double *a, int n, double *v, double *lam, double *trace)
{
    *trace = 0.0;
    for (int i = 0; i < n; i++) *trace += a[(size_t)i * n + i];
    double *w = malloc((size_t)n * sizeof *w), wq = 0.0;
    if (!w) return steer_err(STEER_ENOMEM, "pca: out of memory");
    int lwork = -1, info = 0;
    dsyev_("V", "U", &n, a, &n, w, &wq, &lwork, &info, 1, 1);
    if (info != 0) {
        free(w);
        return steer_err(STEER_EARG, "pca: dsyev workspace query failed (info %d)", info);
    }
    lwork = (int)wq;
    if (lwork < 3 * n) lwork = 3 * n;
    double *work = malloc((size_t)lwork * sizeof *work);
    if (!work) {
        free(w);
        return steer_err(STEER_ENOMEM, "pca: out of memory");
    }
    dsyev_("V", "U", &n, a, &n, w, work, &lwork, &info, 1, 1);
    free(work);
    if (info != 0) {
        free(w);
        return steer_err(STEER_EARG, "pca: dsyev did not converge (info %d)", info);
    }
    /* Eigenvalues ascend; eigenvector k is column k (column-major). */
    *lam = w[n - 1];
    memcpy(v, a + (size_t)(n - 1) * n, (size_t)n * sizeof *v);
    free(w);
    return STEER_OK;
}

int steer_vec_pca(steer_pca_kind kind, const float *pos, int n_pos, const float *neg, int n_neg, int d, float *out,
                  double *explained)
{
    if (!pos || !neg || !out || d <= 0) return steer_err(STEER_EARG, "pca: bad arguments");
    if (kind != STEER_PCA_DIFF && kind != STEER_PCA_CENTER) return steer_err(STEER_EARG, "pca: unknown kind %d", kind);
    if (n_pos < 1 || n_neg < 1)
        return steer_err(STEER_EARG, "pca: need at least one positive and one negative (got %d and %d)", n_pos, n_neg);
    if (kind == STEER_PCA_DIFF && n_pos != n_neg)
        return steer_err(STEER_EARG, "pca-diff: positives and negatives must pair up (got %d and %d)", n_pos, n_neg);

    /* X [n, d] in double: the rows whose second moment we decompose. */
    const int n = kind == STEER_PCA_DIFF ? n_pos : n_pos + n_neg;
    const int m = n < d ? n : d; /* size of the matrix handed to dsyev */
    double *x = malloc((size_t)n * d * sizeof *x);
    double *mean = calloc((size_t)d, sizeof *mean);
    double *a = malloc((size_t)m * m * sizeof *a);
    double *ev = malloc((size_t)m * sizeof *ev);
    double *v = calloc((size_t)d, sizeof *v);
    int rc = STEER_OK;
    if (!x || !mean || !a || !ev || !v) {
        rc = steer_err(STEER_ENOMEM, "pca: out of memory");
        goto done;
    }
    if (kind == STEER_PCA_DIFF) {
        for (size_t k = 0; k < (size_t)n * d; k++) x[k] = (double)pos[k] - (double)neg[k];
    } else {
        for (size_t k = 0; k < (size_t)n_pos * d; k++) x[k] = pos[k];
        for (size_t k = 0; k < (size_t)n_neg * d; k++) x[(size_t)n_pos * d + k] = neg[k];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) mean[j] += x[(size_t)i * d + j] / n;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) x[(size_t)i * d + j] -= mean[j];
    }
    /* Column-major m×m: XᵀX when d <= n, else XXᵀ; dsyrk fills the upper
     * triangle, which is the one dsyev reads ("U"). */
    if (m == d)
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, d, n, 1.0, x, d, 0.0, a, d);
    else
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, n, d, 1.0, x, d, 0.0, a, n);
    double lam = 0.0, trace = 0.0;
    if ((rc = top_eigen(a, m, ev, &lam, &trace)) != STEER_OK) goto done;
    if (!(trace > 0.0) || !(lam > 0.0)) {
        rc = steer_err(STEER_EARG, "pca: the activations have no variance (all %s are equal)",
                       kind == STEER_PCA_DIFF ? "differences" : "rows");
        goto done;
    }
    if (m == d) {
        memcpy(v, ev, (size_t)d * sizeof *v);
    } else {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) v[j] += ev[i] * x[(size_t)i * d + j];
    }
    double nn = 0.0;
    for (int j = 0; j < d; j++) nn += v[j] * v[j];
    nn = sqrt(nn);
    if (!(nn > 0.0)) {
        rc = steer_err(STEER_EARG, "pca: degenerate principal component");
        goto done;
    }
    /* Sign: positives project higher. For both kinds this is Σ_i x_i·v over
     * the positives' rows of X minus the negatives' (centring cancels when
     * comparing means: mean(pos)·v − mean(neg)·v). */
    double s = 0.0;
    if (kind == STEER_PCA_DIFF) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) s += x[(size_t)i * d + j] * v[j];
    } else {
        for (int i = 0; i < n; i++) {
            double p = 0.0;
            for (int j = 0; j < d; j++) p += x[(size_t)i * d + j] * v[j];
            s += i < n_pos ? p / n_pos : -p / n_neg;
        }
    }
    const double sign = s < 0 ? -1.0 : 1.0;
    for (int j = 0; j < d; j++) out[j] = (float)(sign * v[j] / nn);
    if (explained) *explained = lam / trace;
done:
    free(x);
    free(mean);
    free(a);
    free(ev);
    free(v);
    return rc;
}

/* ---------------------------------------------------------------- sets */

struct steer_vecset {
    steer_vec *v;
    int n, cap;
    char **mk, **mv; /* metadata keys/values, owned */
    int n_meta, cap_meta;
};

int steer_vecset_new(steer_vecset **out)
{
    if (!out) return steer_err(STEER_EARG, "steer_vecset_new: out is NULL");
    *out = calloc(1, sizeof **out);
    return *out ? STEER_OK : steer_err(STEER_ENOMEM, "vector set: out of memory");
}

void steer_vecset_free(steer_vecset *vs)
{
    if (!vs) return;
    for (int i = 0; i < vs->n; i++) free(vs->v[i].data);
    for (int i = 0; i < vs->n_meta; i++) {
        free(vs->mk[i]);
        free(vs->mv[i]);
    }
    free(vs->v);
    free(vs->mk);
    free(vs->mv);
    free(vs);
}

int steer_vecset_count(const steer_vecset *vs) { return vs ? vs->n : 0; }

steer_vec *steer_vecset_at(const steer_vecset *vs, int i) { return vs && i >= 0 && i < vs->n ? &vs->v[i] : NULL; }

static int key_cmp(steer_site s1, int l1, steer_site s2, int l2)
{
    if (s1 != s2) return s1 < s2 ? -1 : 1;
    return l1 < l2 ? -1 : l1 > l2;
}

/* Index of (site, layer), or -(insertion point) - 1. */
static int vs_search(const steer_vecset *vs, steer_site site, int layer)
{
    int lo = 0, hi = vs->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2, c = key_cmp(vs->v[mid].site, vs->v[mid].layer, site, layer);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -lo - 1;
}

steer_vec *steer_vecset_find(const steer_vecset *vs, steer_site site, int layer)
{
    if (!vs) return NULL;
    int i = vs_search(vs, site, layer);
    return i >= 0 ? &vs->v[i] : NULL;
}

static size_t vec_len(int n_rows, int width) { return (size_t)(n_rows > 0 ? n_rows : 1) * (size_t)width; }

/* Inserts a zero-filled entry at (site, layer) (which must be absent). */
static int vs_insert(steer_vecset *vs, steer_site site, int layer, int n_rows, int width, steer_vec **out)
{
    int i = vs_search(vs, site, layer);
    if (i >= 0) return steer_err(STEER_EARG, "vector set: %s.%d already present", steer_site_name(site), layer);
    i = -i - 1;
    if (vs->n == vs->cap) {
        int cap = vs->cap ? 2 * vs->cap : 16;
        steer_vec *p = realloc(vs->v, (size_t)cap * sizeof *p);
        if (!p) return steer_err(STEER_ENOMEM, "vector set: out of memory");
        vs->v = p;
        vs->cap = cap;
    }
    float *data = calloc(vec_len(n_rows, width), sizeof *data);
    if (!data) return steer_err(STEER_ENOMEM, "vector set: out of memory");
    memmove(vs->v + i + 1, vs->v + i, (size_t)(vs->n - i) * sizeof *vs->v);
    vs->v[i] = (steer_vec){.site = site, .layer = layer, .n_rows = n_rows, .width = width, .data = data};
    vs->n++;
    *out = &vs->v[i];
    return STEER_OK;
}

static int check_key(steer_site site, int layer, int n_rows, int width)
{
    if ((unsigned)site >= STEER_SITE_COUNT) return steer_err(STEER_EARG, "vector set: unknown site %d", (int)site);
    if (layer < 0) return steer_err(STEER_EARG, "vector set: negative layer %d", layer);
    if (n_rows < 0 || width <= 0)
        return steer_err(STEER_EARG, "vector set: bad shape for %s.%d (%d rows of %d)", steer_site_name(site), layer,
                         n_rows, width);
    return STEER_OK;
}

int steer_vecset_set(steer_vecset *vs, steer_site site, int layer, int n_rows, int width, const float *data)
{
    if (!vs || !data) return steer_err(STEER_EARG, "steer_vecset_set: NULL argument");
    int rc = check_key(site, layer, n_rows, width);
    if (rc) return rc;
    steer_vec *e = steer_vecset_find(vs, site, layer);
    size_t len = vec_len(n_rows, width);
    if (e) {
        float *p = malloc(len * sizeof *p);
        if (!p) return steer_err(STEER_ENOMEM, "vector set: out of memory");
        free(e->data);
        e->data = p;
        e->n_rows = n_rows;
        e->width = width;
    } else if ((rc = vs_insert(vs, site, layer, n_rows, width, &e)) != STEER_OK) {
        return rc;
    }
    memcpy(e->data, data, len * sizeof *data);
    return STEER_OK;
}

int steer_vecset_accumulate(steer_vecset *dst, steer_site site, int layer, int n_rows, int width, const float *data,
                            float alpha)
{
    if (!dst || !data) return steer_err(STEER_EARG, "steer_vecset_accumulate: NULL argument");
    int rc = check_key(site, layer, n_rows, width);
    if (rc) return rc;
    steer_vec *e = steer_vecset_find(dst, site, layer);
    if (!e) {
        if ((rc = vs_insert(dst, site, layer, n_rows, width, &e)) != STEER_OK) return rc;
    } else {
        if (e->width != width)
            return steer_err(STEER_EARG, "%s.%d: cannot add a vector %d wide to one %d wide", steer_site_name(site),
                             layer, width, e->width);
        if ((e->n_rows > 0) != (n_rows > 0))
            return steer_err(STEER_EARG, "%s.%d: cannot add a per-position vector [T, %d] and a single vector [%d]",
                             steer_site_name(site), layer, width, width);
        if (n_rows > e->n_rows) {
            float *p = realloc(e->data, vec_len(n_rows, width) * sizeof *p);
            if (!p) return steer_err(STEER_ENOMEM, "vector set: out of memory");
            memset(p + vec_len(e->n_rows, width), 0, (size_t)(n_rows - e->n_rows) * width * sizeof *p);
            e->data = p;
            e->n_rows = n_rows;
        }
    }
    size_t len = vec_len(n_rows, width);
    for (size_t k = 0; k < len; k++) e->data[k] += alpha * data[k];
    return STEER_OK;
}

int steer_vecset_add(steer_vecset *dst, const steer_vecset *src, float alpha)
{
    if (!dst || !src) return steer_err(STEER_EARG, "steer_vecset_add: NULL argument");
    for (int i = 0; i < src->n; i++) {
        const steer_vec *s = &src->v[i];
        int rc = steer_vecset_accumulate(dst, s->site, s->layer, s->n_rows, s->width, s->data, alpha);
        if (rc) return rc;
    }
    return STEER_OK;
}

void steer_vecset_scale(steer_vecset *vs, float alpha)
{
    for (int i = 0; vs && i < vs->n; i++) {
        steer_vec *e = &vs->v[i];
        size_t len = vec_len(e->n_rows, e->width);
        for (size_t k = 0; k < len; k++) e->data[k] *= alpha;
    }
}

int steer_vecset_normalize(steer_vecset *vs)
{
    for (int i = 0; vs && i < vs->n; i++) {
        steer_vec *e = &vs->v[i];
        int rows = e->n_rows > 0 ? e->n_rows : 1;
        for (int r = 0; r < rows; r++) {
            float *row = e->data + (size_t)r * e->width;
            double nn = steer_vec_norm(row, e->width);
            if (!(nn > 0.0))
                return steer_err(STEER_EARG, "%s.%d: cannot normalize a zero vector%s", steer_site_name(e->site),
                                 e->layer, e->n_rows ? " (a row is zero)" : "");
            for (int j = 0; j < e->width; j++) row[j] = (float)(row[j] / nn);
        }
    }
    return STEER_OK;
}

void steer_vecset_keep(steer_vecset *vs, const unsigned char *site_mask, const unsigned char *layer_mask,
                       int n_layer_mask)
{
    if (!vs) return;
    int k = 0;
    for (int i = 0; i < vs->n; i++) {
        steer_vec *e = &vs->v[i];
        int keep = (!site_mask || site_mask[e->site]) &&
                   (!layer_mask || (e->layer < n_layer_mask && layer_mask[e->layer]));
        if (keep) vs->v[k++] = *e;
        else free(e->data);
    }
    vs->n = k;
}

/* ---------------------------------------------------------------- metadata */

int steer_vecset_set_meta(steer_vecset *vs, const char *key, const char *value)
{
    if (!vs || !key || !*key) return steer_err(STEER_EARG, "vector set metadata: empty key");
    for (int i = 0; i < vs->n_meta; i++) {
        if (strcmp(vs->mk[i], key) != 0) continue;
        if (!value) {
            free(vs->mk[i]);
            free(vs->mv[i]);
            memmove(vs->mk + i, vs->mk + i + 1, (size_t)(vs->n_meta - i - 1) * sizeof *vs->mk);
            memmove(vs->mv + i, vs->mv + i + 1, (size_t)(vs->n_meta - i - 1) * sizeof *vs->mv);
            vs->n_meta--;
            return STEER_OK;
        }
        char *v = strdup(value);
        if (!v) return steer_err(STEER_ENOMEM, "vector set: out of memory");
        free(vs->mv[i]);
        vs->mv[i] = v;
        return STEER_OK;
    }
    if (!value) return STEER_OK;
    if (vs->n_meta == vs->cap_meta) {
        int cap = vs->cap_meta ? 2 * vs->cap_meta : 16;
        char **k = realloc(vs->mk, (size_t)cap * sizeof *k);
        if (!k) return steer_err(STEER_ENOMEM, "vector set: out of memory");
        vs->mk = k;
        char **v = realloc(vs->mv, (size_t)cap * sizeof *v);
        if (!v) return steer_err(STEER_ENOMEM, "vector set: out of memory");
        vs->mv = v;
        vs->cap_meta = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return steer_err(STEER_ENOMEM, "vector set: out of memory");
    }
    vs->mk[vs->n_meta] = k;
    vs->mv[vs->n_meta] = v;
    vs->n_meta++;
    return STEER_OK;
}

const char *steer_vecset_meta(const steer_vecset *vs, const char *key)
{
    for (int i = 0; vs && key && i < vs->n_meta; i++)
        if (strcmp(vs->mk[i], key) == 0) return vs->mv[i];
    return NULL;
}

int steer_vecset_meta_count(const steer_vecset *vs) { return vs ? vs->n_meta : 0; }

const char *steer_vecset_meta_key(const steer_vecset *vs, int i)
{
    return vs && i >= 0 && i < vs->n_meta ? vs->mk[i] : NULL;
}

/* ---------------------------------------------------------------- safetensors files */

/* "resid_post.12" → site, layer (decimal, no sign, no leading zeros). */
static int parse_vec_name(const char *name, steer_site *site, int *layer)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name || dot - name >= 64) return -1;
    char sname[64];
    memcpy(sname, name, (size_t)(dot - name));
    sname[dot - name] = '\0';
    const char *p = dot + 1;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '\0')) return -1;
    long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > 1000000) return -1;
    }
    if (*p != '\0') return -1;
    for (int s = 0; s < STEER_SITE_COUNT; s++) {
        if (strcmp(sname, steer_site_name((steer_site)s)) == 0) {
            *site = (steer_site)s;
            *layer = (int)v;
            return 0;
        }
    }
    return -1;
}

/* The __metadata__ pairs of a safetensors header, in file order, into vs
 * (the tensors were validated by steer_tensors_open already). A key given
 * twice is an error. */
static int read_st_metadata(const char *path, steer_vecset *vs)
{
    io_map map;
    int rc = io_map_open(path, &map);
    if (rc) return rc;
    uint64_t hlen = 0;
    for (int i = 0; i < 8 && (size_t)i < map.size; i++) hlen |= (uint64_t)map.data[i] << (8 * i);
    if (map.size < 8 || hlen > map.size - 8) {
        io_map_close(&map);
        return steer_err(STEER_EFORMAT, "%s: truncated safetensors header", path);
    }
    char *hdr = malloc((size_t)hlen + 1);
    if (!hdr) {
        io_map_close(&map);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    memcpy(hdr, map.data + 8, (size_t)hlen);
    hdr[hlen] = '\0';
    io_map_close(&map);
    cJSON *root = cJSON_Parse(hdr);
    free(hdr);
    if (!root) return steer_err(STEER_EFORMAT, "%s: header is not valid JSON", path);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    const cJSON *m;
    if (cJSON_IsObject(meta)) {
        cJSON_ArrayForEach(m, meta)
        {
            if (!cJSON_IsString(m)) {
                rc = steer_err(STEER_EFORMAT, "%s: __metadata__ value of %s is not a string", path, m->string);
                break;
            }
            if (steer_vecset_meta(vs, m->string)) {
                rc = steer_err(STEER_EFORMAT, "%s: duplicate metadata key %s", path, m->string);
                break;
            }
            if ((rc = steer_vecset_set_meta(vs, m->string, m->valuestring)) != STEER_OK) break;
        }
    }
    cJSON_Delete(root);
    return rc;
}

static int load_safetensors(const char *path, steer_vecset *vs)
{
    steer_tensors *tf = NULL;
    int rc = steer_tensors_open(path, &tf);
    if (rc) return rc;
    float *buf = NULL;
    for (int i = 0; i < steer_tensors_count(tf) && rc == STEER_OK; i++) {
        const steer_tensor_info *ti = steer_tensors_at(tf, i);
        steer_site site;
        int layer;
        if (parse_vec_name(ti->name, &site, &layer)) {
            rc = steer_err(STEER_EFORMAT, "%s: tensor '%s' is not a steering vector (expected <site>.<layer>)", path,
                           ti->name);
            break;
        }
        if (ti->n_dims < 1 || ti->n_dims > 2 || ti->shape[ti->n_dims - 1] < 1 ||
            (ti->n_dims == 2 && ti->shape[0] < 1)) {
            rc = steer_err(STEER_EFORMAT, "%s: tensor %s must have shape [d] or [T, d] with T, d >= 1", path,
                           ti->name);
            break;
        }
        int64_t width = ti->shape[ti->n_dims - 1], rows = ti->n_dims == 2 ? ti->shape[0] : 0;
        if (width > (1 << 24) || rows > (1 << 24) || (rows ? rows : 1) * width > ((int64_t)1 << 31)) {
            rc = steer_err(STEER_EFORMAT, "%s: tensor %s is too large", path, ti->name);
            break;
        }
        size_t len = vec_len((int)rows, (int)width);
        if (ti->dtype != STEER_DTYPE_F32 && ti->dtype != STEER_DTYPE_F16 && ti->dtype != STEER_DTYPE_BF16 &&
            ti->dtype != STEER_DTYPE_F64) {
            rc = steer_err(STEER_EFORMAT, "%s: tensor %s has dtype %s (expected F32, F16, BF16 or F64)", path,
                           ti->name, steer_dtype_name(ti->dtype));
            break;
        }
        free(buf);
        buf = malloc(len * sizeof *buf);
        if (!buf) {
            rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
            break;
        }
        if (ti->dtype == STEER_DTYPE_F64) {
            for (size_t k = 0; k < len; k++) {
                double x;
                memcpy(&x, (const uint8_t *)ti->data + 8 * k, 8);
                buf[k] = (float)x;
            }
        } else if (ti->dtype == STEER_DTYPE_F32) {
            memcpy(buf, ti->data, len * sizeof *buf); /* the mapping may be unaligned */
        } else {
            for (size_t k = 0; k < len; k++) {
                uint16_t h;
                memcpy(&h, (const uint8_t *)ti->data + 2 * k, 2);
                buf[k] = ti->dtype == STEER_DTYPE_BF16 ? ops_bf16_to_f32(h) : q_f16_to_f32(h);
            }
        }
        for (size_t k = 0; k < len; k++) {
            if (!isfinite(buf[k])) {
                rc = steer_err(STEER_ENAN, "%s: tensor %s has a non-finite value (%g) at row %zu, index %zu", path,
                               ti->name, (double)buf[k], k / (size_t)width, k % (size_t)width);
                break;
            }
        }
        if (rc == STEER_OK) rc = steer_vecset_set(vs, site, layer, (int)rows, (int)width, buf);
    }
    free(buf);
    steer_tensors_free(tf);
    if (rc == STEER_OK) rc = read_st_metadata(path, vs);
    return rc;
}

int steer_vecset_load(const char *path, steer_vecset **out)
{
    if (!out || !path) return steer_err(STEER_EARG, "steer_vecset_load: NULL argument");
    *out = NULL;
    io_map map;
    int rc = io_map_open(path, &map);
    if (rc) return rc;
    int is_gguf = map.size >= 4 && memcmp(map.data, "GGUF", 4) == 0;
    io_map_close(&map);
    if (is_gguf) return steer_vecset_load_llamacpp(path, 0, 0, out);
    steer_vecset *vs = NULL;
    if ((rc = steer_vecset_new(&vs)) != STEER_OK) return rc;
    rc = load_safetensors(path, vs);
    if (rc) {
        steer_vecset_free(vs);
        return rc;
    }
    *out = vs;
    return STEER_OK;
}

int steer_vecset_save(const steer_vecset *vs, const char *path)
{
    if (!vs || !path) return steer_err(STEER_EARG, "steer_vecset_save: NULL argument");
    steer_tensors_writer *w = NULL;
    int rc = steer_tensors_writer_new(&w);
    if (rc) return rc;
    char(*names)[48] = calloc((size_t)(vs->n ? vs->n : 1), sizeof *names);
    if (!names) rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
    for (int i = 0; rc == STEER_OK && i < vs->n; i++) {
        const steer_vec *e = &vs->v[i];
        snprintf(names[i], sizeof names[i], "%s.%d", steer_site_name(e->site), e->layer);
        int64_t shape[2] = {e->n_rows, e->width};
        rc = e->n_rows > 0 ? steer_tensors_writer_add(w, names[i], STEER_DTYPE_F32, 2, shape, e->data)
                           : steer_tensors_writer_add(w, names[i], STEER_DTYPE_F32, 1, shape + 1, e->data);
    }
    if (rc == STEER_OK && !steer_vecset_meta(vs, "format_version"))
        rc = steer_tensors_writer_meta(w, "format_version", "1");
    for (int i = 0; rc == STEER_OK && i < vs->n_meta; i++) rc = steer_tensors_writer_meta(w, vs->mk[i], vs->mv[i]);
    /* the writer's own messages ("safetensors writer: …") do not know the file */
    if (rc != STEER_OK && rc != STEER_ENOMEM) rc = steer_err(rc, "%s: %s", path, steer_last_error());
    if (rc == STEER_OK) rc = steer_tensors_writer_write(w, path);
    steer_tensors_writer_free(w);
    free(names);
    return rc;
}

/* ---------------------------------------------------------------- llama.cpp control vectors */

/* "direction.12" → 12: the digits written canonically (no sign, no leading
 * zero). -1 if the name is not direction.<N>. */
static long parse_direction(const char *name)
{
    static const char prefix[] = "direction.";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0) return -1;
    const char *p = name + sizeof prefix - 1;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '\0')) return -1;
    long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > 1000000) return -1;
    }
    return *p == '\0' ? v : -1;
}

int steer_vecset_load_llamacpp(const char *path, int n_layer, int d_model, steer_vecset **out)
{
    if (!out || !path) return steer_err(STEER_EARG, "steer_vecset_load_llamacpp: NULL argument");
    *out = NULL;
    gg_file *f = NULL;
    int rc = gg_open(path, &f); /* rejects duplicate keys and tensors, bad offsets */
    if (rc) return rc;
    steer_vecset *vs = NULL;
    const char *arch = NULL, *hint = NULL;
    if (!gg_has_key(f, "general.architecture"))
        rc = steer_err(STEER_EFORMAT, "%s: not a control vector (no general.architecture)", path);
    else if (gg_get_str(f, "general.architecture", &arch) != STEER_OK)
        rc = steer_err(STEER_EFORMAT, "%s: general.architecture is not a string", path);
    else if (strcmp(arch, "controlvector") != 0)
        rc = steer_err(STEER_EFORMAT, "%s: not a control vector (general.architecture is '%s', expected "
                                      "'controlvector')", path, arch);
    if (rc == STEER_OK && gg_has_key(f, "controlvector.model_hint") &&
        gg_get_str(f, "controlvector.model_hint", &hint) != STEER_OK)
        rc = steer_err(STEER_EFORMAT, "%s: controlvector.model_hint is not a string", path);
    uint32_t layer_count = 0;
    int have_count = rc == STEER_OK && gg_has_key(f, "controlvector.layer_count");
    if (have_count && gg_get_u32(f, "controlvector.layer_count", &layer_count) != STEER_OK)
        rc = steer_err(STEER_EFORMAT, "%s: controlvector.layer_count is not an unsigned integer", path);
    if (rc == STEER_OK && gg_n_tensors(f) == 0)
        rc = steer_err(STEER_EFORMAT, "%s: control vector has no direction tensors", path);
    if (rc == STEER_OK) rc = steer_vecset_new(&vs);
    int width = d_model > 0 ? d_model : -1;
    const char *width_from = NULL;
    for (int i = 0; rc == STEER_OK && i < gg_n_tensors(f); i++) {
        const gg_tensor *t = gg_tensor_at(f, i);
        long layer = parse_direction(t->name);
        if (layer < 0) {
            rc = steer_err(STEER_EFORMAT, "%s: tensor '%s' is not named direction.<N> (the only tensors a control "
                                          "vector may hold)", path, t->name);
        } else if (layer == 0) {
            rc = steer_err(STEER_EFORMAT, "%s: tensor direction.0: layer 0 is invalid in a control vector "
                                          "(direction.L is added after block L, L >= 1)", path);
        } else if (n_layer > 0 && layer >= n_layer) {
            rc = steer_err(STEER_EFORMAT, "%s: tensor %s: layer %ld out of range (model has %d layers, so "
                                          "direction.1 to direction.%d)", path, t->name, layer, n_layer, n_layer - 1);
        } else if (t->type != GGML_TYPE_F32) {
            rc = steer_err(STEER_EFORMAT, "%s: tensor %s has ggml type %d (control vectors are F32)", path, t->name,
                           t->type);
        } else if (t->n_dims != 1) {
            rc = steer_err(STEER_EFORMAT, "%s: tensor %s has %d dimensions (expected 1: [n_embd])", path, t->name,
                           t->n_dims);
        } else if (t->ne[0] < 1 || t->ne[0] > (1u << 24)) {
            rc = steer_err(STEER_EFORMAT, "%s: tensor %s has bad length %llu", path, t->name,
                           (unsigned long long)t->ne[0]);
        } else if (width > 0 && (int)t->ne[0] != width) {
            if (d_model > 0)
                rc = steer_err(STEER_EFORMAT, "%s: tensor %s has %llu values but the model's n_embd (d_model) is %d",
                               path, t->name, (unsigned long long)t->ne[0], width);
            else
                rc = steer_err(STEER_EFORMAT, "%s: tensor %s has %llu values but %s has %d", path, t->name,
                               (unsigned long long)t->ne[0], width_from, width);
        }
        if (rc) break;
        if (!width_from) {
            width = (int)t->ne[0];
            width_from = t->name;
        }
        float *buf = malloc((size_t)width * sizeof *buf);
        if (!buf) {
            rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
            break;
        }
        memcpy(buf, t->data, (size_t)width * sizeof *buf);
        for (int j = 0; j < width && rc == STEER_OK; j++)
            if (!isfinite(buf[j]))
                rc = steer_err(STEER_ENAN, "%s: tensor %s has a non-finite value (%g) at index %d", path, t->name,
                               (double)buf[j], j);
        if (rc == STEER_OK) rc = steer_vecset_set(vs, STEER_SITE_RESID_POST, (int)layer, 0, width, buf);
        free(buf);
    }
    char num[32];
    if (rc == STEER_OK) rc = steer_vecset_set_meta(vs, "format_version", "1");
    if (rc == STEER_OK) rc = steer_vecset_set_meta(vs, "source_format", "llama.cpp control vector (GGUF)");
    if (rc == STEER_OK) rc = steer_vecset_set_meta(vs, "site", "resid_post");
    if (rc == STEER_OK && hint) rc = steer_vecset_set_meta(vs, "model_hint", hint);
    if (rc == STEER_OK && have_count) {
        snprintf(num, sizeof num, "%u", layer_count);
        rc = steer_vecset_set_meta(vs, "controlvector.layer_count", num);
    }
    gg_close(f);
    if (rc) {
        steer_vecset_free(vs);
        return rc;
    }
    *out = vs;
    return STEER_OK;
}

int steer_vecset_save_llamacpp(const steer_vecset *vs, const char *path, const char *model_hint)
{
    if (!vs || !path) return steer_err(STEER_EARG, "steer_vecset_save_llamacpp: NULL argument");
    if (vs->n == 0) return steer_err(STEER_EARG, "%s: no vectors to export", path);
    for (int i = 0; i < vs->n; i++) {
        const steer_vec *e = &vs->v[i];
        const char *s = steer_site_name(e->site);
        if (e->site != STEER_SITE_RESID_POST)
            return steer_err(STEER_EARG, "%s: cannot export %s.%d: llama.cpp control vectors act at resid_post only "
                                         "(drop other sites with 'steer vec slice --site resid_post')", path, s,
                             e->layer);
        if (e->n_rows > 0)
            return steer_err(STEER_EARG, "%s: cannot export %s.%d: it is per-position [%d, %d]; control vectors "
                                         "are one vector per layer", path, s, e->layer, e->n_rows, e->width);
        if (e->layer == 0)
            return steer_err(STEER_EARG, "%s: cannot export resid_post.0: llama.cpp rejects direction.0 (layer 0 "
                                         "cannot be expressed); drop it with --layers", path);
        if (e->width != vs->v[0].width)
            return steer_err(STEER_EARG, "%s: %s.%d is %d wide but %s.%d is %d wide", path, s, e->layer, e->width,
                             steer_site_name(vs->v[0].site), vs->v[0].layer, vs->v[0].width);
    }
    if (!model_hint) model_hint = steer_vecset_meta(vs, "model_hint");
    if (!model_hint) model_hint = "";
    gg_writer *w = NULL;
    int rc = gg_writer_new(&w);
    if (rc) return rc;
    rc = gg_writer_set_str(w, "general.architecture", "controlvector");
    if (!rc) rc = gg_writer_set_str(w, "controlvector.model_hint", model_hint);
    if (!rc) rc = gg_writer_set_u32(w, "controlvector.layer_count", (uint32_t)vs->n);
    for (int i = 0; !rc && i < vs->n; i++) {
        char name[48];
        snprintf(name, sizeof name, "direction.%d", vs->v[i].layer);
        uint64_t ne[1] = {(uint64_t)vs->v[i].width};
        rc = gg_writer_add_tensor(w, name, GGML_TYPE_F32, 1, ne, vs->v[i].data);
    }
    if (!rc) rc = gg_writer_write(w, path);
    gg_writer_free(w);
    return rc;
}

/* ---------------------------------------------------------------- use with a model */

int steer_vecset_check_model(const steer_vecset *vs, const steer_model *m, const char *path)
{
    if (!vs || !m) return steer_err(STEER_EARG, "steer_vecset_check_model: NULL argument");
    if (!path) path = "vectors";
    const steer_model_config *cfg = steer_model_get_config(m);
    for (int i = 0; i < vs->n; i++) {
        const steer_vec *e = &vs->v[i];
        const char *s = steer_site_name(e->site);
        if (e->layer >= cfg->n_layer)
            return steer_err(STEER_EARG, "%s: tensor %s.%d: layer %d out of range (model has %d layers)", path, s,
                             e->layer, e->layer, cfg->n_layer);
        int w = steer_model_site_width(m, e->site);
        if (e->width != w)
            return steer_err(STEER_EARG, "%s: tensor %s.%d is %d wide but %s is %d wide in this model (d_model %d, "
                                         "d_ff %d)", path, s, e->layer, e->width, s, w, cfg->d_model, cfg->d_ff);
    }
    return STEER_OK;
}

int steer_vecset_apply(const steer_vecset *vs, steer_ctx *c, float alpha)
{
    if (!vs || !c) return steer_err(STEER_EARG, "steer_vecset_apply: NULL argument");
    for (int i = 0; i < vs->n; i++) {
        const steer_vec *e = &vs->v[i];
        steer_intervention iv;
        memset(&iv, 0, sizeof iv);
        iv.kind = STEER_ADD;
        iv.site = e->site;
        iv.layer = e->layer;
        iv.alpha = alpha;
        iv.data = e->data;
        iv.n_rows = e->n_rows;
        iv.positions.kind = STEER_POS_ALL;
        iv.seq = -1;
        int id = steer_ctx_add_intervention(c, &iv);
        if (id < 0) return id;
    }
    return STEER_OK;
}

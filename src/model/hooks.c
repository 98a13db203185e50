/*
 * hooks.c — the hook list of a context, and the declarative interventions
 * (add, patch, ablate) and captures built on it. Hooks run in the order they
 * were added; a (site, layer) that no hook wants is skipped by one byte test
 * in the forward pass.
 */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- list */

void steer_ctx_refresh_hooks(steer_ctx *c)
{
    const int L = c->m->cfg.n_layer;
    memset(c->want, 0, (size_t)STEER_SITE_COUNT * L);
    for (int i = 0; i < c->n_hooks; i++) {
        const steer_hook *h = &c->hooks[i].h;
        for (int s = 0; s < STEER_SITE_COUNT; s++)
            for (int l = 0; l < L; l++)
                if (!c->want[s * L + l] && h->wants(h->ud, (steer_site)s, l)) c->want[s * L + l] = 1;
    }
}

static int add_entry(steer_ctx *c, const steer_hook *h, void *owned, void (*free_owned)(void *))
{
    if (!h || !h->wants || !h->apply) {
        if (free_owned) free_owned(owned);
        return steer_err(STEER_EARG, "hook: wants() and apply() are required");
    }
    if (c->n_hooks == c->cap_hooks) {
        int cap = c->cap_hooks ? 2 * c->cap_hooks : 8;
        hook_entry *nh = realloc(c->hooks, (size_t)cap * sizeof *nh);
        if (!nh) {
            if (free_owned) free_owned(owned);
            return steer_err(STEER_ENOMEM, "hook: out of memory");
        }
        c->hooks = nh;
        c->cap_hooks = cap;
    }
    hook_entry *e = &c->hooks[c->n_hooks++];
    e->id = c->next_hook_id++;
    e->h = *h;
    e->owned = owned;
    e->free_owned = free_owned;
    /* the want table is the OR over the hooks: adding one only sets bits (a
     * full refresh per add would make adding n hooks O(n²)) */
    const int L = c->m->cfg.n_layer;
    for (int s = 0; s < STEER_SITE_COUNT; s++)
        for (int l = 0; l < L; l++)
            if (!c->want[s * L + l] && h->wants(h->ud, (steer_site)s, l)) c->want[s * L + l] = 1;
    return e->id;
}

int steer_ctx_add_hook(steer_ctx *c, const steer_hook *h) { return add_entry(c, h, NULL, NULL); }

void hook_free_all(steer_ctx *c)
{
    for (int i = 0; i < c->n_hooks; i++)
        if (c->hooks[i].free_owned) c->hooks[i].free_owned(c->hooks[i].owned);
    c->n_hooks = 0;
}

void steer_ctx_clear_hooks(steer_ctx *c)
{
    hook_free_all(c);
    steer_ctx_refresh_hooks(c);
}

int steer_ctx_remove_hook(steer_ctx *c, int id)
{
    for (int i = 0; i < c->n_hooks; i++) {
        if (c->hooks[i].id != id) continue;
        if (c->hooks[i].free_owned) c->hooks[i].free_owned(c->hooks[i].owned);
        memmove(&c->hooks[i], &c->hooks[i + 1], (size_t)(c->n_hooks - i - 1) * sizeof c->hooks[0]);
        c->n_hooks--;
        steer_ctx_refresh_hooks(c);
        return STEER_OK;
    }
    return steer_err(STEER_EARG, "remove hook: no hook has id %d", id);
}

int hook_run(steer_ctx *c, steer_site site, int layer, float *h, const steer_hook_batch *b)
{
    for (int i = 0; i < c->n_hooks; i++) {
        const steer_hook *hk = &c->hooks[i].h;
        if (!hk->wants(hk->ud, site, layer)) continue;
        int rc = hk->apply(hk->ud, site, layer, h, b);
        if (rc) return rc;
    }
    return STEER_OK;
}

/* ---------------------------------------------------------------- shared checks */

static int check_site_layer(const steer_ctx *c, steer_site site, int layer, const char *what)
{
    if ((unsigned)site >= STEER_SITE_COUNT) return steer_err(STEER_EARG, "%s: unknown site %d", what, (int)site);
    if (layer < 0 || layer >= c->m->cfg.n_layer)
        return steer_err(STEER_EARG, "%s: layer %d out of range (model has %d layers)", what, layer,
                         c->m->cfg.n_layer);
    return STEER_OK;
}

/* ---------------------------------------------------------------- interventions */

typedef struct {
    steer_ctx *c;
    steer_intervention iv; /* data/list point at the copies below          */
    int width;
    float *data;           /* [max(n_rows,1), width]                       */
    int *list;             /* [n_list]                                     */
} intervention;

static void intervention_free(void *p)
{
    intervention *it = p;
    if (!it) return;
    free(it->data);
    free(it->list);
    free(it);
}

static int intervention_wants(void *ud, steer_site site, int layer)
{
    const intervention *it = ud;
    return site == it->iv.site && layer == it->iv.layer;
}

static int position_selected(const intervention *it, int seq, int pos)
{
    const steer_positions *p = &it->iv.positions;
    int plen = it->c->prompt_len[seq];
    switch (p->kind) {
    case STEER_POS_ALL: return 1;
    case STEER_POS_PROMPT: return pos < plen;
    case STEER_POS_GENERATED: return pos >= plen;
    case STEER_POS_LAST_K: return pos < plen && pos >= plen - p->k;
    case STEER_POS_FROM: return pos >= p->k;
    case STEER_POS_LIST:
        for (int i = 0; i < p->n_list; i++)
            if (it->list[i] == pos) return 1;
        return 0;
    }
    return 0;
}

static int intervention_apply(void *ud, steer_site site, int layer, float *h, const steer_hook_batch *b)
{
    (void)site; (void)layer;
    const intervention *it = ud;
    const int w = b->width;
    const float a = it->iv.alpha;
    for (int i = 0; i < b->n; i++) {
        if (it->iv.seq >= 0 && b->seq[i] != it->iv.seq) continue;
        if (!position_selected(it, b->seq[i], b->pos[i])) continue;
        const float *v;
        if (it->iv.n_rows == 0) v = it->data;
        else if (b->pos[i] < it->iv.n_rows) v = it->data + (size_t)b->pos[i] * w;
        else continue;
        float *x = h + (size_t)i * w;
        switch (it->iv.kind) {
        case STEER_ADD:
            for (int j = 0; j < w; j++) x[j] += a * v[j];
            break;
        case STEER_PATCH:
            if (a == 1.0f) memcpy(x, v, (size_t)w * sizeof(float));
            else for (int j = 0; j < w; j++) x[j] += a * (v[j] - x[j]);
            break;
        case STEER_ABLATE: { /* v is unit length (normalised at add time) */
            double dot = 0.0;
            for (int j = 0; j < w; j++) dot += (double)x[j] * v[j];
            for (int j = 0; j < w; j++) x[j] -= (float)(dot * v[j]);
            break;
        }
        }
    }
    return STEER_OK;
}

int steer_ctx_add_intervention(steer_ctx *c, const steer_intervention *iv)
{
    static const char *const kinds[] = {"add", "patch", "ablate"};
    if (!iv) return steer_err(STEER_EARG, "intervention: NULL");
    if ((unsigned)iv->kind > STEER_ABLATE) return steer_err(STEER_EARG, "intervention: unknown kind %d", iv->kind);
    int rc = check_site_layer(c, iv->site, iv->layer, "intervention");
    if (rc) return rc;
    const char *sname = steer_site_name(iv->site);
    if (!iv->data) return steer_err(STEER_EARG, "%s %s.%d: no vector data", kinds[iv->kind], sname, iv->layer);
    if (iv->n_rows < 0) return steer_err(STEER_EARG, "%s %s.%d: negative row count", kinds[iv->kind], sname, iv->layer);
    if (!isfinite(iv->alpha))
        return steer_err(STEER_ENAN, "%s %s.%d: alpha is not finite", kinds[iv->kind], sname, iv->layer);
    if (iv->positions.kind == STEER_POS_LIST && iv->positions.n_list > 0 && !iv->positions.list)
        return steer_err(STEER_EARG, "%s %s.%d: position list is NULL", kinds[iv->kind], sname, iv->layer);
    if (iv->seq >= c->n_seq)
        return steer_err(STEER_EARG, "%s %s.%d: sequence %d outside 0..%d", kinds[iv->kind], sname, iv->layer,
                         iv->seq, c->n_seq - 1);
    const int w = steer_model_site_width(c->m, iv->site);
    const size_t rows = iv->n_rows > 0 ? (size_t)iv->n_rows : 1, n = rows * w;
    for (size_t j = 0; j < n; j++)
        if (!isfinite(iv->data[j]))
            return steer_err(STEER_ENAN, "%s %s.%d: vector has a non-finite value (%g) at row %zu, index %zu",
                             kinds[iv->kind], sname, iv->layer, (double)iv->data[j], j / w, j % w);
    intervention *it = calloc(1, sizeof *it);
    if (!it) return steer_err(STEER_ENOMEM, "intervention: out of memory");
    it->c = c;
    it->iv = *iv;
    it->width = w;
    it->data = malloc(n * sizeof(float));
    if (iv->positions.kind == STEER_POS_LIST && iv->positions.n_list > 0)
        it->list = malloc((size_t)iv->positions.n_list * sizeof(int));
    if (!it->data || (iv->positions.kind == STEER_POS_LIST && iv->positions.n_list > 0 && !it->list)) {
        intervention_free(it);
        return steer_err(STEER_ENOMEM, "intervention: out of memory");
    }
    memcpy(it->data, iv->data, n * sizeof(float));
    if (it->list) memcpy(it->list, iv->positions.list, (size_t)iv->positions.n_list * sizeof(int));
    it->iv.data = it->data;
    it->iv.positions.list = it->list;
    if (iv->kind == STEER_ABLATE) {
        for (size_t r = 0; r < rows; r++) {
            float *u = it->data + r * w;
            double nn = 0.0;
            for (int j = 0; j < w; j++) nn += (double)u[j] * u[j];
            if (nn == 0.0) {
                intervention_free(it);
                return steer_err(STEER_EARG, "ablate %s.%d: direction is the zero vector", sname, iv->layer);
            }
            double inv = 1.0 / sqrt(nn);
            for (int j = 0; j < w; j++) u[j] = (float)(u[j] * inv);
        }
    }
    steer_hook h = {.wants = intervention_wants, .apply = intervention_apply, .ud = it};
    return add_entry(c, &h, it, intervention_free);
}

/* ---------------------------------------------------------------- captures */

typedef struct {
    steer_site site;
    int layer, seq, width;
    int n_rows;   /* highest captured position + 1            */
    float *rows;  /* [n_ctx, width], zero where not captured   */
} capture;

static void capture_free(void *p)
{
    capture *cp = p;
    if (!cp) return;
    free(cp->rows);
    free(cp);
}

static int capture_wants(void *ud, steer_site site, int layer)
{
    const capture *cp = ud;
    return site == cp->site && layer == cp->layer;
}

static int capture_apply(void *ud, steer_site site, int layer, float *h, const steer_hook_batch *b)
{
    (void)site; (void)layer;
    capture *cp = ud;
    for (int i = 0; i < b->n; i++) {
        if (b->seq[i] != cp->seq) continue;
        memcpy(cp->rows + (size_t)b->pos[i] * cp->width, h + (size_t)i * b->width, (size_t)cp->width * sizeof(float));
        if (b->pos[i] + 1 > cp->n_rows) cp->n_rows = b->pos[i] + 1;
    }
    return STEER_OK;
}

int steer_ctx_add_capture(steer_ctx *c, steer_site site, int layer, int seq)
{
    int rc = check_site_layer(c, site, layer, "capture");
    if (rc) return rc;
    if (seq < 0 || seq >= c->n_seq) return steer_err(STEER_EARG, "capture: sequence %d outside 0..%d", seq, c->n_seq - 1);
    capture *cp = calloc(1, sizeof *cp);
    if (!cp) return steer_err(STEER_ENOMEM, "capture: out of memory");
    cp->site = site;
    cp->layer = layer;
    cp->seq = seq;
    cp->width = steer_model_site_width(c->m, site);
    cp->rows = calloc((size_t)c->n_ctx * cp->width, sizeof(float));
    if (!cp->rows) {
        capture_free(cp);
        return steer_err(STEER_ENOMEM, "capture %s.%d: out of memory", steer_site_name(site), layer);
    }
    steer_hook h = {.wants = capture_wants, .apply = capture_apply, .ud = cp};
    return add_entry(c, &h, cp, capture_free);
}

const float *steer_ctx_captured(const steer_ctx *c, steer_site site, int layer, int *n_rows)
{
    for (int i = 0; i < c->n_hooks; i++) {
        if (c->hooks[i].free_owned != capture_free) continue;
        const capture *cp = c->hooks[i].owned;
        if (cp->site == site && cp->layer == layer && cp->n_rows > 0) {
            if (n_rows) *n_rows = cp->n_rows;
            return cp->rows;
        }
    }
    if (n_rows) *n_rows = 0;
    return NULL;
}

/* ---------------------------------------------------------------- captures into a caller's buffer */

typedef struct {
    steer_site site;
    int layer, seq, width;
    float *dst;          /* [dst_rows, width], the caller's               */
    int dst_rows;
    const int *row_map;  /* [n_map], the caller's; NULL: row = position  */
    int n_map;
} capture_into;

static void capture_into_free(void *p) { free(p); }

static int capture_into_wants(void *ud, steer_site site, int layer)
{
    const capture_into *ci = ud;
    return site == ci->site && layer == ci->layer;
}

static int capture_into_apply(void *ud, steer_site site, int layer, float *h, const steer_hook_batch *b)
{
    (void)site; (void)layer;
    const capture_into *ci = ud;
    for (int i = 0; i < b->n; i++) {
        if (ci->seq >= 0 && b->seq[i] != ci->seq) continue;
        const int p = b->pos[i];
        int row = p;
        if (ci->row_map) row = p < ci->n_map ? ci->row_map[p] : -1;
        if (row < 0 || row >= ci->dst_rows) continue;
        memcpy(ci->dst + (size_t)row * ci->width, h + (size_t)i * b->width, (size_t)ci->width * sizeof(float));
    }
    return STEER_OK;
}

int steer_ctx_add_capture_into(steer_ctx *c, steer_site site, int layer, int seq, float *dst, int dst_rows, int width,
                               const int *row_map, int n_map)
{
    int rc = check_site_layer(c, site, layer, "capture");
    if (rc) return rc;
    const char *sname = steer_site_name(site);
    if (seq < -1 || seq >= c->n_seq)
        return steer_err(STEER_EARG, "capture %s.%d: sequence %d outside -1..%d", sname, layer, seq, c->n_seq - 1);
    if (width != steer_model_site_width(c->m, site))
        return steer_err(STEER_EARG, "capture %s.%d: buffer rows are %d wide but the site is %d wide", sname, layer,
                         width, steer_model_site_width(c->m, site));
    if (dst_rows < 0 || (dst_rows > 0 && !dst))
        return steer_err(STEER_EARG, "capture %s.%d: no buffer for %d rows", sname, layer, dst_rows);
    if (n_map < 0 || (row_map == NULL && n_map > 0))
        return steer_err(STEER_EARG, "capture %s.%d: row map of %d positions without entries", sname, layer, n_map);
    capture_into *ci = malloc(sizeof *ci);
    if (!ci) return steer_err(STEER_ENOMEM, "capture %s.%d: out of memory", sname, layer);
    *ci = (capture_into){.site = site, .layer = layer, .seq = seq, .width = width, .dst = dst, .dst_rows = dst_rows,
                         .row_map = row_map, .n_map = n_map};
    steer_hook h = {.wants = capture_into_wants, .apply = capture_into_apply, .ud = ci};
    return add_entry(c, &h, ci, capture_into_free);
}

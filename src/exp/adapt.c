/*
 * adapt.c — the results file of `steer study adapt` (SPEC E4): DIR/summary.json
 * {"study": "adapt", …} written and read by the library (steer_exp.h, report
 * section), so the report's adapt section and the study command agree on
 * one format. The study itself (training and evaluating every method) is
 * tools/study/cmd_study_adapt.c.
 */
#include "steer_exp.h"
#include "base.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A JSON string literal (quotes included). */
static void sb_json_str(sbuf *b, const char *s)
{
    sb_putc(b, '"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            sb_putc(b, '\\');
            sb_putc(b, (char)c);
        } else if (c < 0x20) sb_printf(b, "\\u%04x", c);
        else sb_putc(b, (char)c);
    }
    sb_putc(b, '"');
}

static int summary_path(const char *dir, char **out)
{
    size_t n = strlen(dir) + sizeof "/summary.json";
    if (!(*out = malloc(n))) return steer_err(STEER_ENOMEM, "study adapt: out of memory");
    size_t dl = strlen(dir);
    snprintf(*out, n, "%s%ssummary.json", dir, dl && dir[dl - 1] == '/' ? "" : "/");
    return STEER_OK;
}

int steer_adapt_summary_write(const char *dir, const steer_adapt_summary *s)
{
    /* Ownership: borrows everything; creates or replaces DIR/summary.json. */
    if (!dir || !*dir || !s || (s->n_rows > 0 && !s->rows) || s->n_rows < 0)
        return steer_err(STEER_EARG, "steer_adapt_summary_write: no directory or summary");
    const steer_adapt_row *u = &s->untrained;
    sbuf b = {0};
    sb_puts(&b, "{\"study\": \"adapt\", \"task\": ");
    sb_json_str(&b, s->task);
    sb_puts(&b, ", \"model\": ");
    sb_json_str(&b, s->model);
    sb_printf(&b, ", \"seed\": %llu, \"steps\": %d, \"batch\": %d,\n", (unsigned long long)s->seed, s->steps, s->batch);
    sb_printf(&b, " \"n_train\": %d, \"n_val\": %d, \"n_test\": %d, \"lr_sweep\": %s,\n", s->n_train, s->n_val,
              s->n_test, s->lr_sweep ? "true" : "false");
    sb_printf(&b, " \"untrained\": {\"val_acc\": %.6f, \"test_acc\": %.6f, \"test_loss\": %.6f, \"test_format\": %.6f},\n",
              u->val_acc, u->test_acc, u->test_loss, u->test_format);
    sb_puts(&b, " \"rows\": [\n");
    for (int i = 0; i < s->n_rows; i++) {
        const steer_adapt_row *r = &s->rows[i];
        sb_puts(&b, "  {\"method\": ");
        sb_json_str(&b, r->method);
        sb_puts(&b, ", \"site\": ");
        sb_json_str(&b, r->site ? r->site : "");
        sb_printf(&b,
                  ", \"rank\": %d, \"lr\": %g, \"trainable\": %zu, \"n_model\": %zu, \"share\": %.6g, \"val_acc\": %.6f, "
                  "\"test_acc\": %.6f, \"test_loss\": %.6f, \"test_format\": %.6f}%s\n",
                  r->rank, r->lr, r->trainable, r->n_model, (double)r->trainable / (double)r->n_model, r->val_acc,
                  r->test_acc, r->test_loss, r->test_format, i + 1 < s->n_rows ? "," : "");
    }
    sb_puts(&b, " ]}\n");
    char *path = NULL;
    int rc = b.oom ? steer_err(STEER_ENOMEM, "study adapt: out of memory") : summary_path(dir, &path);
    if (!rc) rc = io_write_atomic(path, b.p, b.n);
    free(path);
    sb_free(&b);
    return rc;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int inum(const cJSON *o, const char *key)
{
    double v = num(o, key);
    return isfinite(v) && fabs(v) < 2e9 ? (int)v : 0;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Copies s into the string area at *p (advanced). */
static const char *put_str(char **p, const char *s)
{
    size_t n = strlen(s) + 1;
    memcpy(*p, s, n);
    const char *r = *p;
    *p += n;
    return r;
}

static void row_from(steer_adapt_row *r, const cJSON *o, char **strs)
{
    r->method = put_str(strs, str(o, "method"));
    r->site = put_str(strs, str(o, "site"));
    r->rank = inum(o, "rank");
    r->lr = num(o, "lr");
    double t = num(o, "trainable"), m = num(o, "n_model");
    r->trainable = isfinite(t) && t >= 0 ? (size_t)t : 0;
    r->n_model = isfinite(m) && m >= 0 ? (size_t)m : 0;
    r->share = num(o, "share");
    r->val_acc = num(o, "val_acc");
    r->test_acc = num(o, "test_acc");
    r->test_loss = num(o, "test_loss");
    r->test_format = num(o, "test_format");
}

int steer_adapt_summary_read(const char *dir, steer_adapt_summary **out)
{
    /* Ownership: borrows dir; *out is one malloc'd block the caller frees. */
    *out = NULL;
    char *path = NULL, *text = NULL;
    int rc = summary_path(dir, &path);
    if (!rc) rc = io_read_text(path, &text, NULL);
    if (rc) {
        free(path);
        return rc;
    }
    cJSON *js = cJSON_Parse(text);
    free(text);
    const cJSON *st = js ? cJSON_GetObjectItemCaseSensitive(js, "study") : NULL;
    const cJSON *rows = js ? cJSON_GetObjectItemCaseSensitive(js, "rows") : NULL;
    const cJSON *base = js ? cJSON_GetObjectItemCaseSensitive(js, "untrained") : NULL;
    if (!js || !cJSON_IsString(st) || strcmp(st->valuestring, "adapt") != 0 || !cJSON_IsArray(rows) ||
        !cJSON_IsObject(base)) {
        cJSON_Delete(js);
        rc = steer_err(STEER_EFORMAT, "%s: not a study adapt summary (\"study\": \"adapt\" with \"rows\")", path);
        free(path);
        return rc;
    }
    free(path);
    /* One block: the summary, the rows, then every string. */
    int n = cJSON_GetArraySize(rows);
    size_t strs = strlen(str(js, "task")) + strlen(str(js, "model")) + 2 + strlen(str(base, "method")) +
                  strlen(str(base, "site")) + 2 + sizeof "untrained";
    const cJSON *o;
    cJSON_ArrayForEach(o, rows) strs += strlen(str(o, "method")) + strlen(str(o, "site")) + 2;
    steer_adapt_summary *s = malloc(sizeof *s + (size_t)n * sizeof(steer_adapt_row) + strs);
    if (!s) {
        cJSON_Delete(js);
        return steer_err(STEER_ENOMEM, "study adapt: out of memory");
    }
    steer_adapt_row *rw = (steer_adapt_row *)(s + 1);
    char *p = (char *)(rw + n);
    memset(s, 0, sizeof *s);
    s->task = put_str(&p, str(js, "task"));
    s->model = put_str(&p, str(js, "model"));
    double seed = num(js, "seed");
    s->seed = isfinite(seed) && seed >= 0 ? (uint64_t)seed : 0;
    s->steps = inum(js, "steps");
    s->batch = inum(js, "batch");
    s->n_train = inum(js, "n_train");
    s->n_val = inum(js, "n_val");
    s->n_test = inum(js, "n_test");
    s->lr_sweep = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(js, "lr_sweep"));
    row_from(&s->untrained, base, &p);
    s->untrained.method = put_str(&p, "untrained");
    int i = 0;
    cJSON_ArrayForEach(o, rows) row_from(&rw[i++], o, &p);
    s->rows = rw;
    s->n_rows = n;
    cJSON_Delete(js);
    *out = s;
    return STEER_OK;
}

/*
 * train_log.c — the CSV training log (resume-safe appends), its loss-curve
 * figure, and the progress line (train_optim.h).
 */
#include "steer_train.h"
#include "plot.h"
#include "train_optim.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tr_log {
    FILE *f;    /* owned, opened for appending */
    char *path; /* owned                       */
    int n_eval;
};

/* ---------------------------------------------------------------- header */

static int valid_col_name(const char *s)
{
    if (!s || !*s) return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static const char *const fixed_cols[5] = {"step", "lr", "loss", "grad_norm", "tokens_per_s"};

/* The header line (with its newline), malloc'd; NULL with the error set. */
static char *make_header(const char *path, const char *const *eval_names, int n_eval)
{
    if (n_eval < 0 || (n_eval > 0 && !eval_names)) {
        steer_err(STEER_EARG, "%s: tr_log_open: %d eval columns without names", path, n_eval);
        return NULL;
    }
    size_t len = 64;
    for (int i = 0; i < n_eval; i++) {
        const char *e = eval_names[i];
        if (!valid_col_name(e)) {
            steer_err(STEER_EARG, "%s: eval column name \"%s\" (use letters, digits, '_', '.', '-')", path,
                      e ? e : "(null)");
            return NULL;
        }
        for (int j = 0; j < 5; j++)
            if (strcmp(e, fixed_cols[j]) == 0) {
                steer_err(STEER_EARG, "%s: eval column name \"%s\" is a fixed column", path, e);
                return NULL;
            }
        for (int j = 0; j < i; j++)
            if (strcmp(e, eval_names[j]) == 0) {
                steer_err(STEER_EARG, "%s: duplicate eval column \"%s\"", path, e);
                return NULL;
            }
        len += strlen(e) + 1;
    }
    char *h = malloc(len);
    if (!h) {
        steer_err(STEER_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    strcpy(h, "step,lr,loss,grad_norm");
    for (int i = 0; i < n_eval; i++) {
        strcat(h, ",");
        strcat(h, eval_names[i]);
    }
    strcat(h, ",tokens_per_s\n");
    return h;
}

/* ---------------------------------------------------------------- open / rows / close */

/* Reads a whole file: *data malloc'd (NUL-terminated). STEER_EIO with errno
 * kept in *err_no when it cannot be opened. */
static int read_all(const char *path, char **data, size_t *size, int *err_no)
{
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err_no = errno;
        return steer_err(STEER_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? STEER_OK : steer_err(STEER_ENOMEM, "%s: out of memory", path);
    while (!rc) {
        if (n + 1 >= cap) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                rc = steer_err(STEER_ENOMEM, "%s: out of memory", path);
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) rc = steer_err(STEER_EIO, "%s: read failed", path);
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = 0;
    *data = buf;
    *size = n;
    return STEER_OK;
}

/* The rows of an existing log (content, size) up to resume_step, header
 * included, appended to *out (malloc'd). */
static int keep_rows(const char *path, const char *content, size_t size, const char *header, int64_t resume_step,
                     char **out, size_t *out_n)
{
    size_t hlen = strlen(header);
    if (size < hlen || memcmp(content, header, hlen) != 0) {
        const char *nl = memchr(content, '\n', size);
        int shown = (int)(nl ? (size_t)(nl - content) : size);
        if (shown > 200) shown = 200;
        return steer_err(STEER_EFORMAT, "%s: header \"%.*s\" differs from this run's \"%.*s\"", path, shown, content,
                         (int)hlen - 1, header);
    }
    char *buf = malloc(size + 1);
    if (!buf) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    memcpy(buf, content, hlen);
    size_t n = hlen;
    size_t pos = hlen;
    int line = 1;
    while (pos < size) {
        const char *nl = memchr(content + pos, '\n', size - pos);
        if (!nl) break; /* a partial last line (interrupted write): dropped */
        size_t end = (size_t)(nl - content) + 1;
        line++;
        char *e = NULL;
        errno = 0;
        long long step = strtoll(content + pos, &e, 10);
        if (e == content + pos || *e != ',' || errno == ERANGE) {
            free(buf);
            return steer_err(STEER_EFORMAT, "%s:%d: row does not start with a step number", path, line);
        }
        if (step <= resume_step) {
            memcpy(buf + n, content + pos, end - pos);
            n += end - pos;
        }
        pos = end;
    }
    buf[n] = 0;
    *out = buf;
    *out_n = n;
    return STEER_OK;
}

int tr_log_open(const char *path, const char *const *eval_names, int n_eval, int64_t resume_step, tr_log **out)
{
    /* Ownership: *out is owned by the caller (tr_log_close); eval_names are
     * only read. */
    if (!out) return steer_err(STEER_EARG, "tr_log_open: out is NULL");
    *out = NULL;
    if (!path || !*path) return steer_err(STEER_EARG, "tr_log_open: empty path");
    char *header = make_header(path, eval_names, n_eval);
    if (!header) return STEER_EARG;
    int rc = STEER_OK;
    char *content = NULL, *kept = NULL;
    size_t size = 0, kept_n = 0;
    int fresh = resume_step < 0;
    if (!fresh) {
        int err_no = 0;
        rc = read_all(path, &content, &size, &err_no);
        if (rc == STEER_EIO && err_no == ENOENT) {
            fresh = 1;
            rc = STEER_OK;
        }
        if (!rc && !fresh) rc = keep_rows(path, content, size, header, resume_step, &kept, &kept_n);
    }
    if (!rc) rc = fresh ? io_write_atomic(path, header, strlen(header)) : io_write_atomic(path, kept, kept_n);
    free(content);
    free(kept);
    free(header);
    if (rc) return rc;
    tr_log *l = calloc(1, sizeof *l);
    if (l) l->path = strdup(path);
    if (!l || !l->path) {
        free(l);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    l->n_eval = n_eval;
    l->f = fopen(path, "ab");
    if (!l->f) {
        rc = steer_err(STEER_EIO, "%s: cannot open for appending: %s", path, strerror(errno));
        free(l->path);
        free(l);
        return rc;
    }
    *out = l;
    return STEER_OK;
}

static void put_num(FILE *f, double v)
{
    if (!isnan(v)) fprintf(f, "%.9g", v);
}

int tr_log_row(tr_log *l, int64_t step, double lr, double loss, double grad_norm, const double *eval,
               double tokens_per_s)
{
    if (!l || !l->f) return steer_err(STEER_EARG, "tr_log_row: log is not open");
    FILE *f = l->f;
    fprintf(f, "%lld,", (long long)step);
    put_num(f, lr);
    fputc(',', f);
    put_num(f, loss);
    fputc(',', f);
    put_num(f, grad_norm);
    for (int i = 0; i < l->n_eval; i++) {
        fputc(',', f);
        if (eval) put_num(f, eval[i]);
    }
    fputc(',', f);
    put_num(f, tokens_per_s);
    fputc('\n', f);
    if (fflush(f) != 0 || ferror(f)) return steer_err(STEER_EIO, "%s: write failed: %s", l->path, strerror(errno));
    return STEER_OK;
}

int tr_log_close(tr_log *l)
{
    /* Ownership: frees l. */
    if (!l) return STEER_OK;
    int rc = STEER_OK;
    if (l->f) {
        int bad = fflush(l->f) != 0 || ferror(l->f);
        if (!bad && fsync(fileno(l->f)) != 0 && (errno == EIO || errno == ENOSPC)) bad = 1;
        if (fclose(l->f) != 0) bad = 1;
        if (bad) rc = steer_err(STEER_EIO, "%s: write failed", l->path);
    }
    free(l->path);
    free(l);
    return rc;
}

/* ---------------------------------------------------------------- loss-curve figure */

/* A parsed log: n_cols names, n_rows rows of values (NaN = empty). */
typedef struct {
    int n_cols, n_rows;
    char **names;  /* owned [n_cols], each owned */
    double *v;     /* owned [n_rows · n_cols]    */
} csv_table;

static void csv_free(csv_table *t)
{
    for (int i = 0; i < t->n_cols; i++) free(t->names[i]);
    free(t->names);
    free(t->v);
}

static int csv_parse(const char *path, char *s, size_t size, csv_table *t)
{
    memset(t, 0, sizeof *t);
    char *nl = memchr(s, '\n', size);
    if (!nl) return steer_err(STEER_EFORMAT, "%s: no header line", path);
    *nl = 0;
    if (nl > s && nl[-1] == '\r') nl[-1] = 0;
    int nc = 1;
    for (char *p = s; *p; p++) nc += *p == ',';
    int nr = 0;
    for (char *p = nl + 1; p < s + size; p++) nr += *p == '\n';
    t->names = calloc((size_t)nc, sizeof *t->names);
    t->v = malloc((size_t)(nr > 0 ? nr : 1) * (size_t)nc * sizeof *t->v);
    if (!t->names || !t->v) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    t->n_cols = nc;
    char *p = s;
    for (int c = 0; c < nc; c++) {
        char *e = strchr(p, ',');
        if (e) *e = 0;
        t->names[c] = strdup(p);
        if (!t->names[c]) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
        p = e ? e + 1 : p + strlen(p);
    }
    char *line = nl + 1;
    int lineno = 1;
    while (line < s + size) {
        char *end = memchr(line, '\n', (size_t)(s + size - line));
        if (!end) break; /* partial last line */
        *end = 0;
        if (end > line && end[-1] == '\r') end[-1] = 0;
        lineno++;
        double *row = t->v + (size_t)t->n_rows * (size_t)nc;
        char *q = line;
        for (int c = 0; c < nc; c++) {
            char *e = q;
            while (*e && *e != ',') e++;
            if (c < nc - 1 && *e != ',')
                return steer_err(STEER_EFORMAT, "%s:%d: %d fields, expected %d", path, lineno, c + 1, nc);
            if (c == nc - 1 && *e == ',')
                return steer_err(STEER_EFORMAT, "%s:%d: more than %d fields", path, lineno, nc);
            char sv = *e;
            *e = 0;
            if (e == q) row[c] = NAN;
            else {
                char *pe = NULL;
                row[c] = strtod(q, &pe);
                if (*pe)
                    return steer_err(STEER_EFORMAT, "%s:%d: field %s = \"%s\" is not a number", path, lineno,
                                     t->names[c], q);
            }
            *e = sv;
            q = e + 1;
        }
        t->n_rows++;
        line = end + 1;
    }
    return STEER_OK;
}

static int csv_col(const csv_table *t, const char *name)
{
    for (int c = 0; c < t->n_cols; c++)
        if (strcmp(t->names[c], name) == 0) return c;
    return -1;
}

int tr_log_plot(const char *csv_path, const char *out_path, const char *title)
{
    /* Ownership: borrows the paths; creates or replaces out_path. */
    if (!csv_path || !out_path) return steer_err(STEER_EARG, "tr_log_plot: NULL path");
    char *content = NULL;
    size_t size = 0;
    int err_no = 0;
    int rc = read_all(csv_path, &content, &size, &err_no);
    if (rc) return rc;
    csv_table t;
    rc = csv_parse(csv_path, content, size, &t);
    int cstep = -1, clr = -1, closs = -1;
    if (!rc) {
        cstep = csv_col(&t, "step");
        clr = csv_col(&t, "lr");
        closs = csv_col(&t, "loss");
    }
    if (!rc && (cstep < 0 || clr < 0 || closs < 0))
        rc = steer_err(STEER_EFORMAT, "%s: not a training log (needs columns step, lr, loss)", csv_path);
    /* One compacted (x, y) array pair per plotted column: rows with a value. */
    int nc = t.n_cols, nr = t.n_rows;
    double *xs = NULL, *ys = NULL;
    plot_series *ser = NULL;
    int *count = NULL;
    if (!rc) {
        xs = malloc((size_t)(nr > 0 ? nr : 1) * (size_t)nc * sizeof *xs);
        ys = malloc((size_t)(nr > 0 ? nr : 1) * (size_t)nc * sizeof *ys);
        ser = calloc((size_t)nc, sizeof *ser);
        count = calloc((size_t)nc, sizeof *count);
        if (!xs || !ys || !ser || !count) rc = steer_err(STEER_ENOMEM, "%s: out of memory", csv_path);
    }
    if (!rc) {
        for (int c = 0; c < nc; c++) {
            double *x = xs + (size_t)c * (size_t)(nr > 0 ? nr : 1), *y = ys + (size_t)c * (size_t)(nr > 0 ? nr : 1);
            for (int r = 0; r < nr; r++) {
                double v = t.v[(size_t)r * (size_t)nc + (size_t)c], s = t.v[(size_t)r * (size_t)nc + (size_t)cstep];
                if (isfinite(v) && isfinite(s)) {
                    x[count[c]] = s;
                    y[count[c]] = v;
                    count[c]++;
                }
            }
            ser[c].x = x;
            ser[c].y = y;
            ser[c].n = count[c];
            ser[c].label = t.names[c];
        }
        /* Panels: loss (train + eval losses), other eval columns, lr. Series
         * are gathered into per-panel arrays. */
        plot_series *loss_s = calloc((size_t)nc, sizeof *loss_s), *eval_s = calloc((size_t)nc, sizeof *eval_s);
        if (!loss_s || !eval_s) rc = steer_err(STEER_ENOMEM, "%s: out of memory", csv_path);
        if (!rc) {
            int nl = 0, ne = 0;
            loss_s[nl] = ser[closs];
            loss_s[nl].label = "train loss";
            nl++;
            for (int c = 0; c < nc; c++) {
                int fixed = 0;
                for (int j = 0; j < 5; j++) fixed |= strcmp(t.names[c], fixed_cols[j]) == 0;
                if (fixed) continue;
                plot_series s = ser[c];
                s.markers = 1;
                if (strstr(t.names[c], "loss")) loss_s[nl++] = s;
                else eval_s[ne++] = s;
            }
            plot_series lr_s = ser[clr];
            lr_s.label = NULL;
            plot_panel panels[3];
            int np = 0;
            memset(panels, 0, sizeof panels);
            panels[np].title = "loss";
            panels[np].xlabel = "step";
            panels[np].series = loss_s;
            panels[np].n_series = nl;
            np++;
            if (ne > 0) {
                panels[np].title = "eval";
                panels[np].xlabel = "step";
                panels[np].series = eval_s;
                panels[np].n_series = ne;
                np++;
            }
            panels[np].title = "learning rate";
            panels[np].xlabel = "step";
            panels[np].series = &lr_s;
            panels[np].n_series = 1;
            np++;
            plot_figure fig;
            memset(&fig, 0, sizeof fig);
            fig.title = title;
            fig.cols = np;
            fig.share_x = 1;
            rc = plot_write(out_path, &fig, panels, np);
        }
        free(loss_s);
        free(eval_s);
    }
    free(xs);
    free(ys);
    free(ser);
    free(count);
    csv_free(&t);
    free(content);
    return rc;
}

/* ---------------------------------------------------------------- progress line */

static void fmt_hms(char *buf, size_t n, double s)
{
    if (!(s >= 0) || s > 1e9) {
        snprintf(buf, n, "?");
        return;
    }
    long long t = (long long)(s + 0.5);
    snprintf(buf, n, "%lld:%02lld:%02lld", t / 3600, (t / 60) % 60, t % 60);
}

/* Appends a formatted piece to buf[cap] at *n, never past the end; *n counts
 * what would have been written. */
static void appendf(char *buf, size_t cap, int *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void appendf(char *buf, size_t cap, int *n, const char *fmt, ...)
{
    size_t at = (size_t)*n < cap ? (size_t)*n : cap - 1;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + at, cap - at, fmt, ap);
    va_end(ap);
    if (k > 0) *n += k;
}

int tr_progress_format(char *buf, size_t size, int64_t step, int64_t total, double loss, double lr,
                       double tokens_per_s, double elapsed_s)
{
    char tmp[512], a[32], b[32];
    int n = 0;
    if (total > 0)
        appendf(tmp, sizeof tmp, &n, "step %lld/%lld (%.1f%%)", (long long)step, (long long)total,
                100.0 * (double)step / (double)total);
    else appendf(tmp, sizeof tmp, &n, "step %lld", (long long)step);
    if (!isnan(loss)) appendf(tmp, sizeof tmp, &n, fabs(loss) < 1e6 ? "  loss %.4f" : "  loss %.4g", loss);
    if (!isnan(lr)) appendf(tmp, sizeof tmp, &n, "  lr %.2e", lr);
    if (!isnan(tokens_per_s)) appendf(tmp, sizeof tmp, &n, "  %.4g tok/s", tokens_per_s);
    if (!isnan(elapsed_s)) {
        fmt_hms(a, sizeof a, elapsed_s);
        if (total > 0 && step > 0 && step <= total) {
            fmt_hms(b, sizeof b, elapsed_s * (double)(total - step) / (double)step);
            appendf(tmp, sizeof tmp, &n, "  %s < %s", a, b);
        } else appendf(tmp, sizeof tmp, &n, "  %s", a);
    }
    if (buf && size) snprintf(buf, size, "%s", tmp);
    return n;
}

void tr_progress_print(FILE *f, int tty, int64_t step, int64_t total, double loss, double lr, double tokens_per_s,
                       double elapsed_s)
{
    if (!f) return;
    char line[256];
    tr_progress_format(line, sizeof line, step, total, loss, lr, tokens_per_s, elapsed_s);
    if (tty) fprintf(f, "\r%s\033[K", line);
    else fprintf(f, "%s\n", line);
    fflush(f);
}

void tr_progress_end(FILE *f, int tty)
{
    if (f && tty) {
        fputc('\n', f);
        fflush(f);
    }
}

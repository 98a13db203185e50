/*
 * report_doc.c — the report's document model and its two renderers
 * (report_doc.h). Blocks are kept in one array in the order they were
 * added; rows and cells follow their table, list items form one list while
 * they follow each other. Each renderer walks the array once.
 */
#include "report_doc.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

typedef enum {
    B_SECTION_BEGIN,
    B_SECTION_END,
    B_HEADING, /* n: level; a: text; b: id                                  */
    B_PARA,    /* a                                                          */
    B_CODE,    /* a                                                          */
    B_NOTE,    /* a: label; b: code                                          */
    B_ITEM,    /* a                                                          */
    B_TABLE,   /* n: columns; a: class; b: alignment; head[n]; head_md_only  */
    B_ROW,
    B_CELL,    /* n: flags; a: text; b: title; bg; colspan; c: md_span        */
    B_FIGURE,  /* a: alt; b: file name; c: real path; data[size]: the PNG    */
} btype;

typedef struct {
    btype type;
    int n, bg, colspan, head_md_only;
    char *a, *b, *c;
    char **head;
    unsigned char *data;
    size_t size;
} block;

struct doc {
    char *title;
    block *b;
    int n, cap;
    int n_sections;
    int oom;
};

/* ---------------------------------------------------------------- building */

static char *dup_or_null(doc *d, const char *s)
{
    if (!s) return NULL;
    char *r = strdup(s);
    if (!r) d->oom = 1;
    return r;
}

static block *add(doc *d, btype t)
{
    if (d->oom) return NULL;
    if (d->n == d->cap) {
        int nc = d->cap ? d->cap * 2 : 64;
        block *nb = realloc(d->b, (size_t)nc * sizeof *nb);
        if (!nb) {
            d->oom = 1;
            return NULL;
        }
        d->b = nb;
        d->cap = nc;
    }
    block *b = &d->b[d->n++];
    memset(b, 0, sizeof *b);
    b->type = t;
    b->bg = -1;
    return b;
}

doc *doc_new(const char *title)
{
    doc *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    if (!(d->title = strdup(title ? title : ""))) {
        free(d);
        return NULL;
    }
    return d;
}

void doc_free(doc *d)
{
    if (!d) return;
    for (int i = 0; i < d->n; i++) {
        block *b = &d->b[i];
        free(b->a);
        free(b->b);
        free(b->c);
        free(b->data);
        if (b->head)
            for (int k = 0; k < b->n; k++) free(b->head[k]);
        free(b->head);
    }
    free(d->b);
    free(d->title);
    free(d);
}

int doc_ok(const doc *d) { return d->oom ? steer_err(STEER_ENOMEM, "report: out of memory") : STEER_OK; }

static void add_text(doc *d, btype t, const char *a, const char *b2)
{
    block *b = add(d, t);
    if (!b) return;
    b->a = dup_or_null(d, a ? a : "");
    b->b = dup_or_null(d, b2);
}

void doc_section_begin(doc *d, const char *title, const char *dir)
{
    add(d, B_SECTION_BEGIN);
    doc_heading(d, 2, title, NULL);
    doc_note(d, "results in", dir);
}

void doc_section_end(doc *d)
{
    if (add(d, B_SECTION_END)) d->n_sections++;
}

int doc_section_index(const doc *d) { return d->n_sections; }

void doc_heading(doc *d, int level, const char *text, const char *id)
{
    block *b = add(d, B_HEADING);
    if (!b) return;
    b->n = level < 2 ? 2 : level > 6 ? 6 : level;
    b->a = dup_or_null(d, text ? text : "");
    b->b = dup_or_null(d, id);
}

void doc_para(doc *d, const char *text) { add_text(d, B_PARA, text, NULL); }

static char *vfmt(doc *d, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) {
        d->oom = 1;
        return NULL;
    }
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

void doc_paraf(doc *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(d, fmt, ap);
    va_end(ap);
    if (s) doc_para(d, s);
    free(s);
}

void doc_code(doc *d, const char *text) { add_text(d, B_CODE, text, NULL); }
void doc_note(doc *d, const char *label, const char *code) { add_text(d, B_NOTE, label, code ? code : ""); }
void doc_item(doc *d, const char *text) { add_text(d, B_ITEM, text, NULL); }

void doc_table(doc *d, const char *cls, int n_cols, const char *align, const char *const *head, int head_md_only)
{
    block *b = add(d, B_TABLE);
    if (!b) return;
    b->n = n_cols;
    b->a = dup_or_null(d, cls);
    b->b = dup_or_null(d, align ? align : "");
    b->head_md_only = head_md_only;
    if (head) {
        b->head = calloc((size_t)n_cols, sizeof *b->head);
        if (!b->head) {
            d->oom = 1;
            return;
        }
        for (int k = 0; k < n_cols; k++) b->head[k] = dup_or_null(d, head[k] ? head[k] : "");
    }
}

void doc_row(doc *d) { add(d, B_ROW); }

void doc_cell_ex(doc *d, const doc_cell_opt *o, const char *text)
{
    block *b = add(d, B_CELL);
    if (!b) return;
    b->n = o->flags;
    b->bg = o->bg;
    b->colspan = o->colspan;
    b->a = dup_or_null(d, text ? text : "");
    b->b = dup_or_null(d, o->title);
    b->c = dup_or_null(d, o->md_span);
}

void doc_cell(doc *d, int flags, const char *text)
{
    doc_cell_opt o = {.flags = flags, .bg = -1};
    doc_cell_ex(d, &o, text);
}

void doc_cellf(doc *d, int flags, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(d, fmt, ap);
    va_end(ap);
    if (s) doc_cell(d, flags, s);
    free(s);
}

void doc_setting(doc *d, const char *key, const char *value)
{
    if (!value) return;
    doc_row(d);
    doc_cell(d, DOC_TH, key);
    doc_cell(d, 0, value);
}

/* out = dir "/" name (no doubled slash). STEER_EARG if it does not fit. */
static int join_path(char *out, size_t n, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    int k = dl && dir[dl - 1] == '/' ? snprintf(out, n, "%s%s", dir, name) : snprintf(out, n, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= n) return steer_err(STEER_EARG, "%s: path too long", dir);
    return STEER_OK;
}

int doc_figure(doc *d, const char *dir, const char *file, const char *alt)
{
    char path[PATH_MAX], real[PATH_MAX];
    int rc = join_path(path, sizeof path, dir, file);
    if (rc) return rc;
    io_map m;
    if ((rc = io_map_open(path, &m))) return rc;
    unsigned char *data = m.size ? malloc(m.size) : NULL;
    if (m.size && !data) {
        io_map_close(&m);
        return steer_err(STEER_ENOMEM, "report: out of memory");
    }
    if (m.size) memcpy(data, m.data, m.size);
    size_t size = m.size;
    io_map_close(&m);
    if (!realpath(path, real)) {
        free(data);
        return steer_err(STEER_EIO, "%s: %s", path, strerror(errno));
    }
    block *b = add(d, B_FIGURE);
    if (!b) {
        free(data);
        return STEER_OK; /* reported by doc_ok / the renderers */
    }
    b->a = dup_or_null(d, alt ? alt : "");
    b->b = dup_or_null(d, file);
    b->c = dup_or_null(d, real);
    b->data = data;
    b->size = size;
    return STEER_OK;
}

/* ---------------------------------------------------------------- text escapes */

/* HTML text: & < > " escaped. */
static void sb_html(sbuf *b, const char *s)
{
    for (; s && *s; s++) switch (*s) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        default: sb_put(b, s, 1);
        }
}

/* Markdown table cell / inline text: | and line breaks made harmless. */
static void sb_md(sbuf *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|') sb_puts(b, "\\|");
        else if (*s == '\n' || *s == '\r') sb_puts(b, " ");
        else sb_put(b, s, 1);
    }
}

static void sb_base64(sbuf *b, const unsigned char *d, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4];
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
        out[0] = tab[v >> 18];
        out[1] = tab[(v >> 12) & 63];
        out[2] = tab[(v >> 6) & 63];
        out[3] = tab[v & 63];
        sb_put(b, out, 4);
    }
    if (i < n) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0);
        out[0] = tab[v >> 18];
        out[1] = tab[(v >> 12) & 63];
        out[2] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[3] = '=';
        sb_put(b, out, 4);
    }
}

/* out = to (canonical absolute) relative to from_dir (canonical absolute). */
static void rel_path(const char *from_dir, const char *to, char *out, size_t n)
{
    size_t common = 0, i = 0;
    for (; from_dir[i] && to[i] && from_dir[i] == to[i]; i++)
        if (to[i] == '/') common = i + 1;
    if (!from_dir[i] && (to[i] == '/' || !to[i])) common = i + (to[i] == '/');
    if (strcmp(from_dir, "/") == 0) common = 1;
    size_t o = 0;
    out[0] = 0;
    /* One "../" per component of from_dir after the common prefix. */
    for (const char *p = from_dir + common; *p;) {
        if (o + 4 < n) {
            memcpy(out + o, "../", 3);
            o += 3;
        }
        const char *sl = strchr(p, '/');
        if (!sl) break;
        p = sl + 1;
    }
    out[o] = 0;
    snprintf(out + o, n - o, "%s", to + common);
}

/* ---------------------------------------------------------------- HTML */

static const char html_style[] =
    "<style>\n"
    "body{font-family:sans-serif;max-width:1600px;margin:1em auto;padding:0 1em;color:#222}\n"
    "table{border-collapse:collapse;margin:0.5em 0 1em}\n"
    "th,td{border:1px solid #ccc;padding:2px 8px;text-align:right}\n"
    "table.settings th,table.settings td{text-align:left}\n"
    "figure{margin:1em 0}img{max-width:100%;height:auto}figcaption{color:#555;font-size:90%}\n"
    "pre{background:#f4f4f4;padding:0.5em;white-space:pre-wrap}\n"
    "section{border-top:2px solid #888;margin-top:2em}\n"
    "</style>\n";

static void html_cell(sbuf *o, const block *c)
{
    const char *tag = c->n & DOC_TH ? "th" : "td";
    sb_printf(o, "<%s", tag);
    if (c->n & DOC_LEFT || c->bg >= 0) {
        /* One style attribute; on a dark background the text is white (relative
         * luminance of the sRGB colour below 0.45), so bold cells stay readable. */
        sb_puts(o, " style=\"");
        if (c->n & DOC_LEFT) sb_puts(o, "text-align:left;");
        if (c->bg >= 0) {
            unsigned rgb = (unsigned)c->bg & 0xffffffu;
            double lum = (0.2126 * (rgb >> 16 & 255) + 0.7152 * (rgb >> 8 & 255) + 0.0722 * (rgb & 255)) / 255.0;
            sb_printf(o, "background:#%06x%s", rgb, lum < 0.45 ? ";color:#fff" : "");
        }
        sb_puts(o, "\"");
    }
    if (c->b) {
        sb_puts(o, " title=\"");
        sb_html(o, c->b);
        sb_puts(o, "\"");
    }
    if (c->colspan > 1) sb_printf(o, " colspan=\"%d\"", c->colspan);
    sb_puts(o, ">");
    if (c->n & DOC_BOLD) sb_puts(o, "<b>");
    sb_html(o, c->a);
    if (c->n & DOC_BOLD) sb_puts(o, "</b>");
    sb_printf(o, "</%s>", tag);
}

int doc_render_html(const doc *d, sbuf *o)
{
    if (d->oom) return doc_ok(d);
    sb_puts(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    sb_html(o, d->title);
    sb_puts(o, "</title>\n");
    sb_puts(o, html_style);
    sb_puts(o, "</head>\n<body>\n<h1>");
    sb_html(o, d->title);
    sb_puts(o, "</h1>\n");
    for (int i = 0; i < d->n; i++) {
        const block *b = &d->b[i];
        const btype prev = i ? d->b[i - 1].type : B_SECTION_END, next = i + 1 < d->n ? d->b[i + 1].type : B_SECTION_END;
        switch (b->type) {
        case B_SECTION_BEGIN: sb_puts(o, "<section>\n"); break;
        case B_SECTION_END: sb_puts(o, "</section>\n"); break;
        case B_HEADING:
            sb_printf(o, "<h%d", b->n);
            if (b->b) {
                sb_puts(o, " id=\"");
                sb_html(o, b->b);
                sb_puts(o, "\"");
            }
            sb_puts(o, ">");
            sb_html(o, b->a);
            sb_printf(o, "</h%d>\n", b->n);
            break;
        case B_PARA:
            sb_puts(o, "<p>");
            sb_html(o, b->a);
            sb_puts(o, "</p>\n");
            break;
        case B_CODE:
            sb_puts(o, "<pre>");
            sb_html(o, b->a);
            sb_puts(o, "</pre>\n");
            break;
        case B_NOTE:
            sb_puts(o, "<p class=\"dir\">");
            sb_html(o, b->a);
            sb_puts(o, " <code>");
            sb_html(o, b->b);
            sb_puts(o, "</code></p>\n");
            break;
        case B_ITEM:
            if (prev != B_ITEM) sb_puts(o, "<ul>\n");
            sb_puts(o, "<li>");
            sb_html(o, b->a);
            sb_puts(o, "</li>\n");
            if (next != B_ITEM) sb_puts(o, "</ul>\n");
            break;
        case B_TABLE:
            sb_puts(o, "<table");
            if (b->a) {
                sb_puts(o, " class=\"");
                sb_html(o, b->a);
                sb_puts(o, "\"");
            }
            sb_puts(o, ">\n");
            if (b->head && !b->head_md_only) {
                sb_puts(o, "<tr>");
                for (int k = 0; k < b->n; k++) {
                    sb_puts(o, "<th>");
                    sb_html(o, b->head[k]);
                    sb_puts(o, "</th>");
                }
                sb_puts(o, "</tr>\n");
            }
            break;
        case B_ROW: sb_puts(o, "<tr>"); break;
        case B_CELL: html_cell(o, b); break;
        case B_FIGURE:
            sb_puts(o, "<figure><img alt=\"");
            sb_html(o, b->a);
            sb_puts(o, "\" src=\"data:image/png;base64,");
            sb_base64(o, b->data, b->size);
            sb_puts(o, "\"><figcaption>");
            sb_html(o, b->a);
            sb_puts(o, " (<code>");
            sb_html(o, b->b);
            sb_puts(o, "</code>)</figcaption></figure>\n");
            break;
        }
        /* A row ends before the next row or anything that is not a cell; a
         * table ends at the first block that is neither a row nor a cell. */
        if ((b->type == B_ROW || b->type == B_CELL) && next != B_CELL) sb_puts(o, "</tr>\n");
        if ((b->type == B_TABLE || b->type == B_ROW || b->type == B_CELL) && next != B_ROW && next != B_CELL)
            sb_puts(o, "</table>\n");
    }
    sb_printf(o, "<p style=\"color:#777\">steer %s</p>\n</body>\n</html>\n", STEER_VERSION);
    return o->oom ? steer_err(STEER_ENOMEM, "report: out of memory") : STEER_OK;
}

/* ---------------------------------------------------------------- Markdown */

int doc_render_md(const doc *d, const char *md_dir, sbuf *o)
{
    if (d->oom) return doc_ok(d);
    sb_puts(o, "# ");
    sb_md(o, d->title);
    sb_puts(o, "\n\n");
    for (int i = 0; i < d->n; i++) {
        const block *b = &d->b[i];
        const btype next = i + 1 < d->n ? d->b[i + 1].type : B_SECTION_END;
        switch (b->type) {
        case B_SECTION_BEGIN:
        case B_SECTION_END: break;
        case B_HEADING:
            for (int k = 0; k < b->n; k++) sb_putc(o, '#');
            sb_putc(o, ' ');
            sb_md(o, b->a);
            sb_puts(o, "\n\n");
            break;
        case B_PARA:
            sb_md(o, b->a);
            sb_puts(o, "\n\n");
            break;
        case B_CODE:
            sb_puts(o, "```\n");
            sb_puts(o, b->a);
            sb_puts(o, "\n```\n\n");
            break;
        case B_NOTE: {
            char first = b->a[0] >= 'a' && b->a[0] <= 'z' ? (char)(b->a[0] - 'a' + 'A') : b->a[0];
            if (first) {
                sb_putc(o, first);
                sb_md(o, b->a + 1);
            }
            sb_puts(o, " `");
            sb_md(o, b->b);
            sb_puts(o, "`.\n\n");
            break;
        }
        case B_ITEM:
            sb_puts(o, "- ");
            sb_md(o, b->a);
            sb_puts(o, "\n");
            if (next != B_ITEM) sb_puts(o, "\n");
            break;
        case B_TABLE:
            if (b->head) {
                sb_puts(o, "|");
                for (int k = 0; k < b->n; k++) {
                    sb_putc(o, ' ');
                    sb_md(o, b->head[k]);
                    sb_puts(o, " |");
                }
                sb_puts(o, "\n|");
                for (int k = 0; k < b->n; k++) sb_puts(o, b->b[k] == 'r' ? "---:|" : "---|");
                sb_puts(o, "\n");
            }
            break;
        case B_ROW: sb_puts(o, "|"); break;
        case B_CELL:
            for (int k = 0; k < (b->colspan > 1 ? b->colspan : 1); k++) {
                sb_putc(o, ' ');
                if (b->colspan > 1) sb_md(o, b->c);
                else {
                    if (b->n & DOC_BOLD) sb_puts(o, "**");
                    sb_md(o, b->a);
                    if (b->n & DOC_BOLD) sb_puts(o, "**");
                }
                sb_puts(o, " |");
            }
            break;
        case B_FIGURE: {
            char rel[PATH_MAX];
            rel_path(md_dir, b->c, rel, sizeof rel);
            sb_puts(o, "![");
            sb_md(o, b->a);
            sb_puts(o, "](");
            sb_puts(o, rel);
            sb_puts(o, ")\n\n");
            break;
        }
        }
        if ((b->type == B_ROW || b->type == B_CELL) && next != B_CELL) sb_puts(o, "\n");
        if ((b->type == B_TABLE || b->type == B_ROW || b->type == B_CELL) && next != B_ROW && next != B_CELL)
            sb_puts(o, "\n");
    }
    return o->oom ? steer_err(STEER_ENOMEM, "report: out of memory") : STEER_OK;
}

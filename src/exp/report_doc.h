/*
 * report_doc.h — the report as a small document model (report_doc.c): a
 * list of blocks (section, heading, paragraph, code, note, table, figure,
 * list) built once by report.c's section functions and rendered twice, to
 * one self-contained HTML page and to Markdown.
 *
 * Building never fails on the spot: out of memory is sticky and reported by
 * the renderers (and doc_ok); the only building step that reads a file is
 * doc_figure, which returns a status. Text is plain text: the renderers
 * escape it (HTML: & < > "; Markdown: | and line breaks, except in code).
 */
#ifndef STEER_REPORT_DOC_H
#define STEER_REPORT_DOC_H

#include "base.h"

typedef struct doc doc;

/* A new empty document titled title (the page's <title> and <h1>, the
 * Markdown's "# title"). NULL when out of memory. Caller frees (doc_free). */
doc *doc_new(const char *title);
void doc_free(doc *d);
/* STEER_OK, or STEER_ENOMEM ("report: out of memory") when building ran out. */
int doc_ok(const doc *d);

/* A section (HTML <section>, a rule above it): title as a level-2 heading,
 * then dir as a note "results in DIR". doc_section_end closes it; sections
 * are numbered from 0 (doc_section_index: the open or next one's number). */
void doc_section_begin(doc *d, const char *title, const char *dir);
void doc_section_end(doc *d);
int doc_section_index(const doc *d);

/* A heading of level 2…6; id (may be NULL) is the HTML element's id. */
void doc_heading(doc *d, int level, const char *text, const char *id);
void doc_para(doc *d, const char *text);
void doc_paraf(doc *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A verbatim block (HTML <pre>, Markdown ``` fence). */
void doc_code(doc *d, const char *text);
/* Small print naming where something is: HTML <p class="dir">label
 * <code>code</code></p>; Markdown "Label `code`." (first letter capitalised). */
void doc_note(doc *d, const char *label, const char *code);
/* A bulleted list item (consecutive items form one list). */
void doc_item(doc *d, const char *text);

/* Tables. doc_table opens one of n_cols columns: cls is the HTML class (NULL:
 * none; "settings": a key/value table), align the Markdown alignment per
 * column ('l' or 'r', n_cols characters), head[n_cols] the header (NULL:
 * none); head_md_only: the header row is in the Markdown only. Rows follow
 * with doc_row and cells with doc_cell; the next block closes the table. */
void doc_table(doc *d, const char *cls, int n_cols, const char *align, const char *const *head, int head_md_only);
void doc_row(doc *d);

enum {
    DOC_TH = 1,    /* a header cell (<th>)                                   */
    DOC_BOLD = 2,  /* HTML <b>, Markdown **…**                               */
    DOC_LEFT = 4,  /* left-aligned in HTML (style="text-align:left")         */
};

typedef struct {
    int flags;        /* DOC_*                                               */
    int bg;           /* HTML background colour 0xRRGGBB; -1: none           */
    const char *title; /* HTML title (tooltip); NULL: none                   */
    int colspan;      /* > 1: spans columns; Markdown has no spanning cells,
                         so there it is colspan cells of md_span            */
    const char *md_span;
} doc_cell_opt;

void doc_cell(doc *d, int flags, const char *text);
void doc_cellf(doc *d, int flags, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void doc_cell_ex(doc *d, const doc_cell_opt *o, const char *text);
/* A settings row: key (a header cell) and value; value NULL: no row. */
void doc_setting(doc *d, const char *key, const char *value);

/* A figure: dir/file (a PNG) embedded in the HTML as a data URI, linked
 * from the Markdown by a path relative to the Markdown file's directory; alt
 * is its alternative text and caption. The file is read now: STEER_EIO (or
 * STEER_EARG for a path too long) naming it. */
int doc_figure(doc *d, const char *dir, const char *file, const char *alt);

/* Renders the whole document (head, body, footer naming the steer version)
 * into out (appended). md_dir: the canonical absolute directory of the
 * Markdown file (image links are relative to it). STEER_ENOMEM when out of
 * memory. */
int doc_render_html(const doc *d, sbuf *out);
int doc_render_md(const doc *d, const char *md_dir, sbuf *out);

#endif /* STEER_REPORT_DOC_H */

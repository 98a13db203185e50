/*
 * base.h — the base tier (src/base/): errors, the string buffer, file mapping,
 * atomic writes, directories, CSV and time helpers. Includes only the public
 * steer.h and the C library; every other tier builds on it. Not installed.
 */
#ifndef STEER_BASE_H
#define STEER_BASE_H

#include "steer.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- private ABI
 *
 * The three shared libraries (libsteer, libsteer-train, libsteer-exp) are
 * compiled with -fvisibility=hidden and export what the public headers mark
 * STEER_API. A function that one library calls in another (a higher tier
 * calling into a lower one) is declared with STEER_PRIVATE, and a #define
 * next to its declaration gives it a steer_-prefixed symbol name (as zlib's
 * Z_PREFIX does), so sources keep the short name while every library exports
 * only steer_ symbols (tests/cli/cli_exports.sh). These are not in the
 * installed headers and may change in any release. The base helpers below
 * (except steer_err, whose thread-local message must be one) are compiled
 * into each library and are not exported. */
#if defined(__GNUC__)
#define STEER_PRIVATE __attribute__((visibility("default")))
#else
#define STEER_PRIVATE
#endif

/* ---------------------------------------------------------------- errors (error.c) */

/* Formats the thread-local error message and returns code (so callers can
 * `return steer_err(STEER_EFORMAT, "%s: truncated header", path);`). */
STEER_PRIVATE int steer_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---------------------------------------------------------------- mmap (io_mmap.c) */

typedef struct {
    const uint8_t *data; /* read-only mapping of the whole file          */
    size_t size;
} io_map;

/* Maps path read-only. STEER_EIO (message names the file) if missing/unreadable.
 * An empty file maps to data = NULL, size = 0. */
int io_map_open(const char *path, io_map *out);
void io_map_close(io_map *m);

/* Writes `size` bytes to path atomically: path.tmp.<pid> then rename. */
int io_write_atomic(const char *path, const void *data, size_t size);
/* Reads a whole (small) file as a NUL-terminated string: *out (caller frees),
 * *size its length in bytes (size may be NULL). Errors name the file. */
int io_read_text(const char *path, char **out, size_t *size);
/* Writes j as indented JSON plus a final newline, atomically (io_write_atomic). */
struct cJSON;
int io_write_json(const char *path, const struct cJSON *j);

/* Opens a temporary file beside path for streaming writes; io_commit renames it
 * over path (or removes it if ok == 0). tmp_path must hold IO_TMP_PATH_MAX
 * bytes (also the longest path io_mkdir_p takes). */
#define IO_TMP_PATH_MAX 4096
FILE *io_tmp_open(const char *path, char *tmp_path);
/* The registry of temporaries (cleanup.c, core only): a path being written
 * that steer_remove_temporaries() removes if the program is interrupted
 * (is_dir: a directory of files). io_tmp_open/io_tmp_commit do this for
 * their own files; other writers (convert's directories) call it directly. */
#define io_tmp_register steer_io_tmp_register
#define io_tmp_unregister steer_io_tmp_unregister
STEER_PRIVATE void io_tmp_register(const char *path, int is_dir);
STEER_PRIVATE void io_tmp_unregister(const char *path);
/* Removes PATH<marker><pid>[.…] files and directories of files beside path
 * left by writers that are no longer running (io_tmp_open does it for
 * ".tmp."; convert for its ".conv." files and ".tmp." directories). */
void io_sweep_stale(const char *path, const char *marker);
int io_tmp_commit(FILE *f, const char *tmp_path, const char *path, int ok);

/* ---------------------------------------------------------------- fs.c */

/* mkdir -p: creates dir and its missing parents (mode 0777 & umask); an
 * existing directory is fine. STEER_EIO naming the path that could not be
 * created, or "DIR: not a directory" when a file is in the way; STEER_EARG
 * for an empty or over-long (>= IO_TMP_PATH_MAX) name. */
int io_mkdir_p(const char *dir);
/* Monotonic clock in seconds (for durations). */
double io_now_s(void);
/* Removes the files directly inside dir, then dir (a directory of files such
 * as a conversion's temporary output). Best effort: errors are ignored. */
void io_remove_dir(const char *dir);

/* ---------------------------------------------------------------- csv.c */

/* Splits one CSV line (no line break) in place into fields f[0..): commas
 * separate fields; a field that starts with '"' is quoted, with "" for a
 * quote, and must end at a comma or the line's end. Returns the field count
 * (f[0..count) point into line), max + 1 when there are more than max
 * fields, or -1 for an unterminated or misplaced quote. */
int csv_split(char *line, char **f, int max);
/* Cuts the next line out of a NUL-terminated text in place (the '\n' and a
 * '\r' before it become NUL) and advances *cursor past it (NULL after the
 * last line). Returns the line, or NULL when *cursor is NULL; *len (may be
 * NULL) its length. */
char *text_next_line(char **cursor, size_t *len);

/* ---------------------------------------------------------------- strbuf.c */

/* A growable NUL-terminated string (also fine for bytes: n counts them); a
 * zero-initialised sbuf is empty. oom is sticky: after a failed growth every
 * later call does nothing, so callers check it once at the end. p is owned by
 * the buffer (sb_free), or taken over by the caller. */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

void sb_put(sbuf *b, const void *s, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_putc(sbuf *b, char c);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_free(sbuf *b);

#endif /* STEER_BASE_H */

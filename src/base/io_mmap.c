/* io_mmap.c — read-only file mappings and atomic file writes.
 *
 * Reading: io_map_open maps a whole file read-only (MAP_PRIVATE); the caller
 * owns the io_map and releases it with io_map_close.
 *
 * Writing: every file libsteer produces is written to a temporary file beside
 * the destination (same directory, so rename(2) stays on one filesystem) and
 * renamed over it only once every byte was written and flushed. On any failure
 * the temporary file is removed, so readers see either the old file or the
 * complete new one, never a partial file. */
#include "base.h"
#include <cjson/cJSON.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int io_map_open(const char *path, io_map *out)
{
    /* Ownership: on success *out holds a mapping owned by the caller
     * (io_map_close); on failure *out is zeroed and nothing is held. */
    out->data = NULL;
    out->size = 0;
    if (!path) return steer_err(STEER_EARG, "io_map_open: path is NULL");

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return steer_err(STEER_EIO, "%s: cannot open: %s", path, strerror(errno));

    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return steer_err(STEER_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return steer_err(STEER_EIO, "%s: is a directory", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return steer_err(STEER_EIO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        /* mmap of length 0 is an error; an empty file is simply empty. */
        close(fd);
        return STEER_OK;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return steer_err(STEER_EIO, "%s: file too large to map", path);
    }

    size_t size = (size_t)st.st_size;
#ifdef STEER_FUZZ_READ_MAPS
    /* Fuzz builds (CMake STEER_FUZZ): the file is read into a heap buffer of
     * exactly its size instead of being mapped, so AddressSanitizer reports
     * any read past the end of the file's bytes (a mapping would hand back
     * the zeros of the last page silently). */
    uint8_t *buf = malloc(size);
    size_t got = 0;
    while (buf && got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k <= 0) break;
        got += (size_t)k;
    }
    int e = errno;
    close(fd);
    if (!buf || got != size) {
        free(buf);
        return steer_err(STEER_EIO, "%s: cannot read: %s", path, buf ? strerror(e) : "out of memory");
    }
    out->data = buf;
    out->size = size;
    return STEER_OK;
#else
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps its own reference to the file */
    if (p == MAP_FAILED) return steer_err(STEER_EIO, "%s: cannot map: %s", path, strerror(e));

    out->data = (const uint8_t *)p;
    out->size = size;
    return STEER_OK;
#endif
}

void io_map_close(io_map *m)
{
    /* Ownership: releases the mapping held by *m (if any); *m is reset so a
     * second close is harmless. */
    if (!m) return;
#ifdef STEER_FUZZ_READ_MAPS
    free((void *)m->data);
#else
    if (m->data && m->size) munmap((void *)m->data, m->size);
#endif
    m->data = NULL;
    m->size = 0;
}

/* Removes path<marker><pid>[.<k>...] files (and directories of files) beside
 * path whose writer process no longer exists (a run killed while writing path
 * leaves one; the target itself is never torn). A pid that is alive, or that
 * cannot be checked, keeps its file. Best effort: errors are ignored. */
void io_sweep_stale(const char *path, const char *marker)
{
    const char *slash = strrchr(path, '/');
    char dir[IO_TMP_PATH_MAX];
    const char *base = slash ? slash + 1 : path;
    if (slash) {
        size_t n = (size_t)(slash - path);
        if (n == 0) n = 1; /* "/file" */
        if (n >= sizeof dir) return;
        memcpy(dir, path, n);
        dir[n] = 0;
    } else {
        strcpy(dir, ".");
    }
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        const size_t ml = strlen(marker);
        if (strncmp(nm, base, bl) != 0 || strncmp(nm + bl, marker, ml) != 0) continue;
        char *end;
        errno = 0;
        long pid = strtol(nm + bl + ml, &end, 10);
        if (errno || end == nm + bl + ml || pid <= 0 || (*end && *end != '.')) continue;
        if (pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char full[IO_TMP_PATH_MAX];
        int n = snprintf(full, sizeof full, "%s/%s", dir, nm);
        if (n <= 0 || n >= (int)sizeof full) continue;
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode)) io_remove_dir(full); /* a directory of files (convert) */
        else remove(full);
    }
    closedir(d);
}

FILE *io_tmp_open(const char *path, char *tmp_path)
{
    /* Ownership: on success returns a FILE owned by the caller, who must hand
     * it to io_tmp_commit (which closes it); tmp_path (caller's buffer of
     * IO_TMP_PATH_MAX bytes) receives the temporary file's name. On failure
     * returns NULL with the error message set (the status is STEER_EIO) and
     * creates nothing. */
    if (!path || !tmp_path || !*path) {
        steer_err(STEER_EIO, "io_tmp_open: empty path");
        return NULL;
    }
    tmp_path[0] = 0;
    io_sweep_stale(path, ".tmp.");
    long pid = (long)getpid();
    /* "x" (C11) = O_EXCL: never reuse a file another writer is filling. Try
     * path.tmp.<pid>, then path.tmp.<pid>.<k> if that name is taken (a
     * concurrent writer of the same path in this process, or a stale file). */
    for (int k = 0; k < 100; k++) {
        int n = k == 0 ? snprintf(tmp_path, IO_TMP_PATH_MAX, "%s.tmp.%ld", path, pid)
                       : snprintf(tmp_path, IO_TMP_PATH_MAX, "%s.tmp.%ld.%d", path, pid, k);
        if (n < 0 || n >= IO_TMP_PATH_MAX) {
            tmp_path[0] = 0;
            steer_err(STEER_EIO, "%s: path too long", path);
            return NULL;
        }
        FILE *f = fopen(tmp_path, "wbx");
        if (f) {
            io_tmp_register(tmp_path, 0);
            return f;
        }
        if (errno != EEXIST) {
            steer_err(STEER_EIO, "%s: cannot create temporary file %s: %s", path, tmp_path,
                      strerror(errno));
            tmp_path[0] = 0;
            return NULL;
        }
    }
    steer_err(STEER_EIO, "%s: cannot create temporary file %s: too many stale temporary files", path,
              tmp_path);
    tmp_path[0] = 0;
    return NULL;
}

int io_tmp_commit(FILE *f, const char *tmp_path, const char *path, int ok)
{
    /* Ownership: always closes f. ok != 0: flushes and renames tmp_path over
     * path, returning STEER_OK, or STEER_EIO (message set) after removing
     * tmp_path. ok == 0 (the caller failed part-way): removes tmp_path and
     * returns STEER_EIO; the caller's own error message is kept unless the
     * stream itself recorded a write error. */
    if (!f) return steer_err(STEER_EARG, "io_tmp_commit: no file");
    io_tmp_unregister(tmp_path); /* renamed or removed below, whatever happens */
    if (!ok) {
        if (ferror(f)) steer_err(STEER_EIO, "%s: write failed", path);
        fclose(f);
        remove(tmp_path);
        return STEER_EIO;
    }
    int bad = fflush(f) != 0 || ferror(f);
    int e = errno;
    if (!bad && fsync(fileno(f)) != 0) {
        /* EINVAL/EROFS: the file cannot be synced (e.g. a pipe-like target);
         * the data is still written, so only real I/O errors count. */
        if (errno == EIO || errno == ENOSPC
#ifdef EDQUOT
            || errno == EDQUOT
#endif
        ) {
            bad = 1;
            e = errno;
        }
    }
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        remove(tmp_path);
        return steer_err(STEER_EIO, "%s: write failed: %s", path, strerror(e));
    }
    if (rename(tmp_path, path) != 0) {
        e = errno;
        remove(tmp_path);
        return steer_err(STEER_EIO, "%s: cannot rename %s into place: %s", path, tmp_path, strerror(e));
    }
    return STEER_OK;
}

int io_write_atomic(const char *path, const void *data, size_t size)
{
    /* Ownership: borrows data[size]; creates or replaces path. */
    if (size && !data) return steer_err(STEER_EARG, "%s: io_write_atomic: data is NULL", path);
    char tmp[IO_TMP_PATH_MAX];
    FILE *f = io_tmp_open(path, tmp);
    if (!f) return STEER_EIO;
    int ok = size == 0 || fwrite(data, 1, size, f) == size;
    if (!ok) {
        steer_err(STEER_EIO, "%s: write failed: %s", path, strerror(errno));
        io_tmp_commit(f, tmp, path, 0);
        return STEER_EIO;
    }
    return io_tmp_commit(f, tmp, path, 1);
}

int io_read_text(const char *path, char **out, size_t *size)
{
    *out = NULL;
    io_map m;
    int rc = io_map_open(path, &m);
    if (rc) return rc;
    char *t = malloc(m.size + 1);
    if (!t) {
        io_map_close(&m);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    if (m.size) memcpy(t, m.data, m.size);
    t[m.size] = 0;
    if (size) *size = m.size;
    io_map_close(&m);
    *out = t;
    return STEER_OK;
}

int io_write_json(const char *path, const struct cJSON *j)
{
    char *text = cJSON_Print(j);
    if (!text) return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    size_t n = strlen(text);
    char *t2 = realloc(text, n + 2);
    if (!t2) {
        free(text);
        return steer_err(STEER_ENOMEM, "%s: out of memory", path);
    }
    t2[n] = '\n';
    t2[n + 1] = 0;
    int rc = io_write_atomic(path, t2, n + 1);
    free(t2);
    return rc;
}

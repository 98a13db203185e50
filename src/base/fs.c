/* fs.c — directories and the clock: io_mkdir_p (mkdir -p) and io_now_s. */
#include "base.h"

#include <unistd.h>

#include <dirent.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int io_mkdir_p(const char *dir)
{
    char buf[IO_TMP_PATH_MAX];
    size_t n = dir ? strlen(dir) : 0;
    if (n == 0) return steer_err(STEER_EARG, "mkdir: empty directory name");
    if (n >= sizeof buf) return steer_err(STEER_EARG, "%s: path too long", dir);
    memcpy(buf, dir, n + 1);
    /* Each prefix that ends before a '/' (and the whole path) in turn. */
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return steer_err(STEER_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st; /* EEXIST also means a file is in the way */
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return steer_err(STEER_EIO, "%s: not a directory", dir);
    return STEER_OK;
}

double io_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void io_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[IO_TMP_PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p) unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* cleanup.c — the registry of temporary files and directories being written
 * (io_tmp_open's FILE.tmp.<pid>, convert's OUT.tmp.<pid> directories), so a
 * program's SIGINT/SIGTERM handler can remove them with
 * steer_remove_temporaries(), which is async-signal-safe. Like error.c it is
 * compiled into the core library only, so the three libraries share one
 * registry (private ABI: io_tmp_register/io_tmp_unregister). */
#define _GNU_SOURCE
#include "base.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TMP_SLOTS 64

static char tmp_path[TMP_SLOTS][IO_TMP_PATH_MAX];
static volatile sig_atomic_t tmp_kind[TMP_SLOTS]; /* 0 free, 1 file, 2 directory */
static pthread_mutex_t tmp_mu = PTHREAD_MUTEX_INITIALIZER;
static int tmp_count; /* registrations so far (STEER_TEST_INTERRUPT_AT_TMP) */

void io_tmp_register(const char *path, int is_dir)
{
    if (!path || strlen(path) >= IO_TMP_PATH_MAX) return;
    pthread_mutex_lock(&tmp_mu);
    for (int i = 0; i < TMP_SLOTS; i++)
        if (!tmp_kind[i]) {
            strcpy(tmp_path[i], path);
            __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the path before the flag */
            tmp_kind[i] = is_dir ? 2 : 1;
            break;
        }
    int k = ++tmp_count;
    pthread_mutex_unlock(&tmp_mu);
    /* Tests of interrupted commands: raise SIGINT once the k-th temporary of
     * this process exists (tests/cli/cli_interrupt.sh), so the interrupt falls
     * at a known point instead of after a guessed delay. */
    const char *at = getenv("STEER_TEST_INTERRUPT_AT_TMP");
    if (at && atoi(at) == k) raise(SIGINT);
}

void io_tmp_unregister(const char *path)
{
    if (!path) return;
    pthread_mutex_lock(&tmp_mu);
    for (int i = 0; i < TMP_SLOTS; i++)
        if (tmp_kind[i] && strcmp(tmp_path[i], path) == 0) {
            tmp_kind[i] = 0;
            break;
        }
    pthread_mutex_unlock(&tmp_mu);
}

/* Removes the files directly inside dir, then dir, with system calls only
 * (open, getdents64, unlinkat, rmdir: async-signal-safe). The registered
 * directories hold files, not subdirectories. */
static void remove_dir_signal_safe(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[4096] __attribute__((aligned(8)));
        for (;;) {
            long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
            if (n <= 0) break;
            for (long off = 0; off < n;) {
                struct {
                    unsigned long long ino;
                    long long off;
                    unsigned short reclen;
                    unsigned char type;
                    char name[];
                } *e = (void *)(buf + off);
                if (strcmp(e->name, ".") != 0 && strcmp(e->name, "..") != 0) unlinkat(fd, e->name, 0);
                off += e->reclen;
            }
        }
        close(fd);
    }
    rmdir(dir);
}

void steer_remove_temporaries(void)
{
    /* No lock: a signal handler may run while the lock is held. A slot whose
     * flag is set has its whole path written (see io_tmp_register). */
    for (int i = 0; i < TMP_SLOTS; i++) {
        sig_atomic_t k = tmp_kind[i];
        if (k == 1) unlink(tmp_path[i]);
        else if (k == 2) remove_dir_signal_safe(tmp_path[i]);
    }
}

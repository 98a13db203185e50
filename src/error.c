/* error.c — the thread-local last-error message (SQLite style: codes + text). */
#include "internal.h"

#include <stdio.h>

static _Thread_local char err_buf[1024] = "no error";

const char *steer_last_error(void) { return err_buf; }

int steer_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return code;
}

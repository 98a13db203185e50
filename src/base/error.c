/* error.c — the thread-local last-error message (SQLite style: codes + text). */
#include "base.h"

#include <stdio.h>

static _Thread_local char err_buf[1024] = "no error";

const char *steer_last_error(void) { return err_buf; }

int steer_err(int code, const char *fmt, ...)
{
    /* Formatted into tmp first: an argument may be steer_last_error() itself
     * (re-prefixing a message). */
    char tmp[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    /* The message is one line whatever a file held: control characters
     * quoted from file contents (key names, JSON strings) are written as
     * \n, \r or \xHH (a tab stays). */
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)tmp; *p && k + 5 < sizeof err_buf; p++) {
        if ((*p >= 0x20 && *p != 0x7f) || *p == '\t') err_buf[k++] = (char)*p;
        else k += (size_t)snprintf(err_buf + k, sizeof err_buf - k, *p == '\n' ? "\\n" : *p == '\r' ? "\\r" : "\\x%02x", *p);
    }
    err_buf[k] = 0;
    return code;
}

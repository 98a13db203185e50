/* csv.c — reading CSV lines (RFC 4180 quoting). The writers quote with
 * their own csv_field/tb_csv into a FILE or an sbuf. */
#include "base.h"

#include <string.h>

int csv_split(char *line, char **f, int max)
{
    int n = 0;
    char *s = line;
    for (;;) {
        if (n == max) return max + 1;
        if (*s == '"') {
            char *o = ++s;
            f[n++] = o;
            for (;;) {
                if (*s == 0) return -1;
                if (*s == '"') {
                    if (s[1] == '"') {
                        *o++ = '"';
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                *o++ = *s++;
            }
            *o = 0; /* o <= s - 1 */
            if (*s == ',') {
                s++;
                continue;
            }
            if (*s == 0) return n;
            return -1;
        }
        f[n++] = s;
        char *c = strchr(s, ',');
        if (!c) return n;
        *c = 0;
        s = c + 1;
    }
}

char *text_next_line(char **cursor, size_t *len)
{
    char *ln = *cursor;
    if (!ln) return NULL;
    char *nl = strchr(ln, '\n');
    *cursor = nl ? nl + 1 : NULL;
    if (nl) *nl = 0;
    size_t n = strlen(ln);
    if (n && ln[n - 1] == '\r') ln[--n] = 0;
    if (len) *len = n;
    return ln;
}

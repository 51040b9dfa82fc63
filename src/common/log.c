/* One-line log events on stderr, text or JSON. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pickple/common.h"
#include "pickple/log.h"

/* Set once by pk_log_init() before any other thread exists; read-only after. */
static bool pk__log_json;

void pk_log_init(bool json)
{
    pk__log_json = json;
}

static const char *const pk__level_names[] = {"debug", "info", "warn", "error"};

void pk_log(pk_log_level_t level, const char *fmt, ...)
{
    char msg[1024], line[2300], ts[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pk_time_format(pk_now_ms(), ts, sizeof(ts));
    int n;
    if (pk__log_json) {
        char esc[2 * sizeof(msg)];
        size_t o = 0;
        for (const char *p = msg; *p && o + 7 < sizeof(esc); p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '"' || c == '\\') {
                esc[o++] = '\\';
                esc[o++] = (char)c;
            } else if (c < 0x20) {
                o += (size_t)snprintf(esc + o, sizeof(esc) - o, "\\u%04x", c);
            } else {
                esc[o++] = (char)c;
            }
        }
        esc[o] = '\0';
        n = snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts,
                     pk__level_names[level], esc);
    } else {
        n = snprintf(line, sizeof(line), "%s %s %s\n", ts, pk__level_names[level], msg);
    }
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1;
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

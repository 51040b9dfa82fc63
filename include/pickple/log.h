/*
 * Logging: one line per event on stderr, as text ("2026-11-24T10:00:00.000Z
 * info shard=0 message") or JSON ({"ts":..,"level":..,"msg":..}).
 * Lines are written with a single write(2) so lines from different threads
 * never interleave.  The format is chosen once at start-up, before any
 * thread starts, and never changes after.
 */
#ifndef PICKPLE_LOG_H
#define PICKPLE_LOG_H

#include <stdbool.h>

typedef enum pk_log_level { PK_LOG_DEBUG, PK_LOG_INFO, PK_LOG_WARN, PK_LOG_ERROR } pk_log_level_t;

/* Called once by main before threads start. */
void pk_log_init(bool json);

void pk_log(pk_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pk_log_info(...) pk_log(PK_LOG_INFO, __VA_ARGS__)
#define pk_log_warn(...) pk_log(PK_LOG_WARN, __VA_ARGS__)
#define pk_log_error(...) pk_log(PK_LOG_ERROR, __VA_ARGS__)

#endif

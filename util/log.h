/*
 * log: levelled logging for the program's edges (library code never logs
 * to stderr; it records errors with err_set and lets its caller decide).
 *
 * Two formats: plain lines for a person at a terminal (the CLI), JSON lines
 * for the service ({"ts":"...","level":"info","msg":"...", ...fields}).
 * Thread-safe: each record is written with one locked fwrite.
 */
#ifndef UTIL_LOG_H
#define UTIL_LOG_H

#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };
enum log_format { LOG_PLAIN = 0, LOG_JSON = 1 };

/* Configure the process-wide logger. out defaults to stderr when NULL. */
void log_setup(enum log_format fmt, enum log_level min, FILE *out);

/* Parse "debug", "info", "warn", "error", "off". 0 or ERR_INVALID. */
int log_level_parse(enum log_level *out, const char *s);

int log_enabled(enum log_level lvl);

/* Log a message. In JSON format, fields is a list of key/value string pairs
 * ending with NULL, added as string members: log_kv(LOG_INFO, "run started",
 * "run", id, NULL). In plain format they are appended as key=value. */
void log_kv(enum log_level lvl, const char *msg, ...);

/* printf-style, no fields. */
void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif

/*
 * clock: monotonic time for durations and deadlines, wall time for records.
 */
#ifndef UTIL_CLOCK_H
#define UTIL_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds / milliseconds. Never goes backwards. */
int64_t clock_mono_ns(void);
int64_t clock_mono_ms(void);

/* Wall-clock time in milliseconds since the epoch. */
int64_t clock_wall_ms(void);

/* Format a wall time (ms since epoch; 0 means now) as RFC 3339 UTC:
 * "2026-11-23T09:31:38Z", or with millis "2026-11-23T09:31:38.123Z".
 * out must hold at least 32 bytes. Returns out. */
char *clock_format_rfc3339(char *out, size_t size, int64_t wall_ms, int millis);
/* Shorthand for the current time. */
char *clock_wall_rfc3339(char *out, size_t size, int millis);

/* Parse RFC 3339 ("...Z" or with an offset, optional fraction) into ms
 * since the epoch. 0 or ERR_INVALID. */
int clock_parse_rfc3339(int64_t *out_ms, const char *s);

/* Sleep for ms milliseconds (restarting after signals). */
void clock_sleep_ms(int64_t ms);

/* Milliseconds left until deadline (a clock_mono_ms value); 0 if passed.
 * A deadline of 0 means none and returns INT64_MAX. */
int64_t clock_remaining_ms(int64_t deadline_ms);

#endif

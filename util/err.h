/*
 * err: the one error convention of ci-fixer (see ../shared/STYLE.md).
 *
 * Functions return int: 0 on success, one of the small negative codes below
 * for failures a caller acts on, ERR_FAIL (-1) otherwise. The human message
 * is recorded at the failure site with err_set() and read by the caller with
 * err_msg(). The message is per thread, so concurrent runs never see each
 * other's errors.
 */
#ifndef UTIL_ERR_H
#define UTIL_ERR_H

#include <stdarg.h>

enum err_code {
	ERR_OK = 0,
	ERR_FAIL = -1,         /* anything not below */
	ERR_NOTFOUND = -2,     /* 404, no such file, no such object */
	ERR_CONFLICT = -3,     /* 409: exists, or a resourceVersion conflict */
	ERR_FORBIDDEN = -4,    /* 403 */
	ERR_UNAUTHORIZED = -5, /* 401 */
	ERR_TIMEOUT = -6,      /* a deadline passed */
	ERR_AGAIN = -7,        /* transient: 429, 5xx, connection reset */
	ERR_INVALID = -8,      /* bad input: 400, 422, a parse error */
	ERR_TOOBIG = -9,       /* a size cap was hit */
	ERR_CANCELLED = -10,   /* the caller cancelled */
	ERR_LOST = -11,        /* a stream ended without its status */
	ERR_GONE = -12,        /* 410: watch resourceVersion expired */
	ERR_NOMEM = -13        /* allocation failed */
};

/* Record the message for the calling thread and return code unchanged, so
 * the failure site reads `return err_set(ERR_INVALID, "...", ...);`. */
int err_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int err_setv(int code, const char *fmt, va_list ap);

/* Prefix the current message: "context: previous message". Returns code. */
int err_wrap(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The calling thread's last message ("" if none). Valid until the next
 * err_set/err_wrap/err_clear on this thread. */
const char *err_msg(void);

/* The code passed with the last err_set on this thread (0 if none). */
int err_last_code(void);

void err_clear(void);

/* A short constant name for a code ("not found", "timeout", ...). */
const char *err_name(int code);

#endif

#include "util/err.h"

#include <stdio.h>
#include <string.h>

static void str_copy_cut(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* 1 KiB is enough for an API server message plus context; longer messages
 * are cut, never overflowed. */
#define ERR_MSG_MAX 1024

static _Thread_local char err_buf[ERR_MSG_MAX];
static _Thread_local int err_code_last;

int err_setv(int code, const char *fmt, va_list ap)
{
	vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
	err_code_last = code;
	return code;
}

int err_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_setv(code, fmt, ap);
	va_end(ap);
	return code;
}

int err_wrap(int code, const char *fmt, ...)
{
	char prev[ERR_MSG_MAX];
	char ctx[ERR_MSG_MAX];
	va_list ap;

	memcpy(prev, err_buf, sizeof(prev));
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	/* "ctx: prev", cut to the buffer (the tail of a long message is lost) */
	size_t n = strlen(ctx);

	memcpy(err_buf, ctx, n + 1);
	if (prev[0] && n + 2 < sizeof(err_buf)) {
		memcpy(err_buf + n, ": ", 2);
		str_copy_cut(err_buf + n + 2, sizeof(err_buf) - n - 2, prev);
	}
	err_code_last = code;
	return code;
}

const char *err_msg(void)
{
	return err_buf;
}

int err_last_code(void)
{
	return err_code_last;
}

void err_clear(void)
{
	err_buf[0] = '\0';
	err_code_last = 0;
}

const char *err_name(int code)
{
	switch (code) {
	case ERR_OK: return "ok";
	case ERR_FAIL: return "error";
	case ERR_NOTFOUND: return "not found";
	case ERR_CONFLICT: return "conflict";
	case ERR_FORBIDDEN: return "forbidden";
	case ERR_UNAUTHORIZED: return "unauthorized";
	case ERR_TIMEOUT: return "timeout";
	case ERR_AGAIN: return "try again";
	case ERR_INVALID: return "invalid";
	case ERR_TOOBIG: return "too big";
	case ERR_CANCELLED: return "cancelled";
	case ERR_LOST: return "lost";
	case ERR_GONE: return "gone";
	case ERR_NOMEM: return "out of memory";
	}
	return "unknown error";
}

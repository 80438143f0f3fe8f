/*
 * buf: a growable byte buffer with a hard size cap (curl's curlx_dyn).
 *
 * Every buffer fed by the network is a buf with a cap: exceeding it is
 * ERR_TOOBIG with a message, never a crash or an unbounded allocation.
 * The data is always NUL-terminated (the NUL is not counted in len), so a
 * text buffer can be used as a C string.
 */
#ifndef UTIL_BUF_H
#define UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
	char *data;   /* NULL until the first append; NUL-terminated after */
	size_t len;   /* bytes used, not counting the terminating NUL */
	size_t cap;   /* bytes allocated */
	size_t max;   /* hard cap on len */
} buf;

#define BUF_INIT(maxlen) { NULL, 0, 0, (maxlen) }

void buf_init(buf *b, size_t max);

/* Append n bytes. 0, or ERR_TOOBIG (buffer unchanged) past the cap, or
 * ERR_NOMEM. */
int buf_append(buf *b, const void *p, size_t n);
int buf_append_str(buf *b, const char *s);
int buf_append_byte(buf *b, unsigned char c);
int buf_printf(buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(buf *b, const char *fmt, va_list ap);

/* Make room for n more bytes without changing len. */
int buf_reserve(buf *b, size_t n);

/* Drop the first n bytes (n <= len), keeping the rest. */
void buf_consume(buf *b, size_t n);

/* The contents as a C string: "" when empty, never NULL. */
const char *buf_cstr(const buf *b);

/* Hand the storage to the caller (who frees it with free()); the buffer
 * is left empty with its cap unchanged. Never NULL: an empty buffer gives
 * a freshly allocated "" (NULL only on allocation failure). */
char *buf_take(buf *b, size_t *len_out);

/* Empty the buffer, keeping its storage. */
void buf_reset(buf *b);

/* Free the storage; the buffer is left empty and reusable. NULL-safe. */
void buf_free(buf *b);

#endif

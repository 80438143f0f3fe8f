#include "util/str.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

char *str_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *str_ndup(const char *s, size_t n)
{
	char *p;

	if (!s)
		return NULL;
	n = strnlen(s, n);
	p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *str_printf(const char *fmt, ...)
{
	va_list ap, ap2;
	char *p;
	int n;

	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		va_end(ap2);
		return NULL;
	}
	p = malloc((size_t)n + 1);
	if (p)
		vsnprintf(p, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return p;
}

int str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (size == 0)
		return err_set(ERR_TOOBIG, "no room to copy a string");
	if (n >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return err_set(ERR_TOOBIG, "string of %zu bytes does not fit in %zu", n, size - 1);
	}
	memcpy(dst, src, n + 1);
	return 0;
}

int str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int str_has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

int str_parse_i64(int64_t *out, const char *s, int64_t min, int64_t max)
{
	char *end;
	long long v;

	if (!s || !*s || isspace((unsigned char)*s))
		return err_set(ERR_INVALID, "\"%s\" is not a number", s ? s : "");
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return err_set(ERR_INVALID, "\"%s\" is not a number", s);
	if (errno == ERANGE || v < min || v > max)
		return err_set(ERR_INVALID, "%s is out of range [%" PRId64 ", %" PRId64 "]", s, min, max);
	*out = v;
	return 0;
}

int str_parse_u64(uint64_t *out, const char *s, uint64_t max)
{
	char *end;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)*s))
		return err_set(ERR_INVALID, "\"%s\" is not a non-negative number", s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		return err_set(ERR_INVALID, "\"%s\" is not a non-negative number", s);
	if (errno == ERANGE || v > max)
		return err_set(ERR_INVALID, "%s is out of range [0, %" PRIu64 "]", s, max);
	*out = v;
	return 0;
}

int str_parse_int(int *out, const char *s, int min, int max)
{
	int64_t v;
	int rc = str_parse_i64(&v, s, min, max);

	if (rc == 0)
		*out = (int)v;
	return rc;
}

int size_add(size_t *out, size_t a, size_t b)
{
	if (a > SIZE_MAX - b)
		return err_set(ERR_TOOBIG, "size overflow adding %zu and %zu", a, b);
	*out = a + b;
	return 0;
}

int size_mul(size_t *out, size_t a, size_t b)
{
	if (a && b > SIZE_MAX / a)
		return err_set(ERR_TOOBIG, "size overflow multiplying %zu by %zu", a, b);
	*out = a * b;
	return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xE0) == 0xC0) {
		len = 2;
		cp = s[0] & 0x1F;
	} else if ((s[0] & 0xF0) == 0xE0) {
		len = 3;
		cp = s[0] & 0x0F;
	} else if ((s[0] & 0xF8) == 0xF0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

int str_json_quote_n(buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run;
	int rc;

	if ((rc = buf_append_byte(b, '"')))
		return rc;
	while (i < n) {
		unsigned char c = p[i];
		size_t seq;

		/* copy runs of plain characters in one go */
		run = i;
		while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
			run++;
		if (run > i) {
			if ((rc = buf_append(b, p + i, run - i)))
				return rc;
			i = run;
			continue;
		}
		switch (c) {
		case '"': rc = buf_append(b, "\\\"", 2); seq = 1; break;
		case '\\': rc = buf_append(b, "\\\\", 2); seq = 1; break;
		case '\n': rc = buf_append(b, "\\n", 2); seq = 1; break;
		case '\r': rc = buf_append(b, "\\r", 2); seq = 1; break;
		case '\t': rc = buf_append(b, "\\t", 2); seq = 1; break;
		default:
			if (c < 0x20) {
				rc = buf_printf(b, "\\u%04x", c);
				seq = 1;
			} else {
				seq = utf8_seq(p + i, n - i);
				if (seq)
					rc = buf_append(b, p + i, seq);
				else {
					rc = buf_append(b, "\xEF\xBF\xBD", 3);
					seq = 1;
				}
			}
		}
		if (rc)
			return rc;
		i += seq;
	}
	return buf_append_byte(b, '"');
}

int str_json_quote(buf *b, const char *s)
{
	return str_json_quote_n(b, s, strlen(s));
}

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int str_base64_encode(buf *out, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i, need = 0;
	int rc;

	if ((rc = size_mul(&need, (n + 2) / 3, 4)))
		return rc;
	if ((rc = buf_reserve(out, need)))
		return rc;
	for (i = 0; i + 2 < n; i += 3) {
		char q[4] = { b64chars[s[i] >> 2], b64chars[((s[i] & 3) << 4) | (s[i + 1] >> 4)],
			      b64chars[((s[i + 1] & 15) << 2) | (s[i + 2] >> 6)], b64chars[s[i + 2] & 63] };
		buf_append(out, q, 4);
	}
	if (i < n) {
		char q[4] = { b64chars[s[i] >> 2], 0, '=', '=' };
		if (i + 1 < n) {
			q[1] = b64chars[((s[i] & 3) << 4) | (s[i + 1] >> 4)];
			q[2] = b64chars[(s[i + 1] & 15) << 2];
		} else {
			q[1] = b64chars[(s[i] & 3) << 4];
		}
		buf_append(out, q, 4);
	}
	return 0;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

int str_base64_decode(buf *out, const char *s, size_t n)
{
	uint32_t acc = 0;
	int bits = 0, pad = 0, rc;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;

		if (isspace(c))
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad)
			return err_set(ERR_INVALID, "base64: data after padding");
		v = b64val(c);
		if (v < 0)
			return err_set(ERR_INVALID, "base64: invalid character 0x%02x", c);
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if ((rc = buf_append_byte(out, (unsigned char)(acc >> bits))))
				return rc;
		}
	}
	if (pad > 2 || bits >= 6)
		return err_set(ERR_INVALID, "base64: truncated input");
	return 0;
}

void str_hex(char *out, const void *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[s[i] >> 4];
		out[2 * i + 1] = hx[s[i] & 15];
	}
	out[2 * n] = '\0';
}

int str_consttime_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = alen != blen;
	size_t n = alen < blen ? alen : blen;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

static int label_ok(const char *s, size_t n)
{
	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && !(c == '-' && i > 0 && i < n - 1))
			return 0;
	}
	return 1;
}

int str_is_dns1123_label(const char *s)
{
	return s && label_ok(s, strlen(s));
}

int str_is_dns1123_subdomain(const char *s)
{
	size_t n;
	const char *p;

	if (!s || (n = strlen(s)) == 0 || n > 253)
		return 0;
	/* upstream: [a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)* */
	while ((p = strchr(s, '.')) != NULL) {
		if (!label_ok(s, (size_t)(p - s)))
			return 0;
		s = p + 1;
	}
	return label_ok(s, strlen(s));
}

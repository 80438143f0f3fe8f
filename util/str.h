/*
 * str: string and number helpers that never overflow silently.
 *
 * Parsers are strict: the whole input must be a number in range, or the
 * call fails with ERR_INVALID and a message naming the input. Size
 * arithmetic reports overflow instead of wrapping.
 */
#ifndef UTIL_STR_H
#define UTIL_STR_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* strdup that accepts NULL (and returns NULL for it). Caller frees. */
char *str_dup(const char *s);
/* Duplicate at most n bytes, always NUL-terminated. Caller frees. */
char *str_ndup(const char *s, size_t n);
/* Allocate a formatted string. Caller frees; NULL on allocation failure. */
char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copy src into dst[size] (always NUL-terminated). 0, or ERR_TOOBIG when
 * src did not fit (dst then holds a truncated copy). */
int str_copy(char *dst, size_t size, const char *src);

int str_has_prefix(const char *s, const char *prefix);
int str_has_suffix(const char *s, const char *suffix);
/* NULL-safe equality: two NULLs are equal. */
int str_eq(const char *a, const char *b);

/* Strict decimal parsing of the whole string into [min, max]. */
int str_parse_i64(int64_t *out, const char *s, int64_t min, int64_t max);
int str_parse_u64(uint64_t *out, const char *s, uint64_t max);
int str_parse_int(int *out, const char *s, int min, int max);

/* Overflow-checked size arithmetic: 0 or ERR_TOOBIG. */
int size_add(size_t *out, size_t a, size_t b);
int size_mul(size_t *out, size_t a, size_t b);

/* Append s as a JSON string literal (with quotes and escapes; invalid
 * UTF-8 bytes become U+FFFD). */
int str_json_quote(buf *b, const char *s);
int str_json_quote_n(buf *b, const char *s, size_t n);

/* Base64 (standard alphabet, padded). Decode accepts missing padding and
 * ignores whitespace; anything else is ERR_INVALID. */
int str_base64_encode(buf *out, const void *p, size_t n);
int str_base64_decode(buf *out, const char *s, size_t n);

/* Lower-case hex of n bytes into out, which must hold 2n+1 bytes. */
void str_hex(char *out, const void *p, size_t n);

/* Compare in time that depends only on the lengths, not the contents
 * (for bearer tokens). 1 if equal. */
int str_consttime_eq(const void *a, size_t alen, const void *b, size_t blen);

/* DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters. */
int str_is_dns1123_label(const char *s);
/* DNS-1123 subdomain: labels joined by '.', at most 253 characters. */
int str_is_dns1123_subdomain(const char *s);

#endif

/*
 * kube/exec_http: build the exec upgrade request, parse the answer's head
 * and a chunked error body. See exec_http.h.
 */
#include "kube/exec_http.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"
#include "util/str.h"

/* Find the end of the head: the first empty line. Returns the offset just
 * past it, or 0 when not there yet. */
static size_t head_end(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (i + 1 < n && p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Copy [s, e) trimmed of spaces and tabs into dst[size], cut to fit. */
static void copy_trim(char *dst, size_t size, const char *s, const char *e)
{
	size_t n;

	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	n = (size_t)(e - s);
	if (n >= size)
		n = size - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* Does the comma-separated list v contain token (case-insensitive)? */
static int has_token(const char *v, const char *token)
{
	size_t tl = strlen(token);

	while (*v) {
		const char *e;

		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		e = v;
		while (*e && *e != ',')
			e++;
		{
			const char *te = e;

			while (te > v && (te[-1] == ' ' || te[-1] == '\t'))
				te--;
			if ((size_t)(te - v) == tl && strncasecmp(v, token, tl) == 0)
				return 1;
		}
		v = e;
	}
	return 0;
}

static int parse_status_line(kube_exec_http_head *out, const char *s, const char *e)
{
	/* "HTTP/1.1 101 Switching Protocols" */
	if (e - s < 12 || strncmp(s, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)s[7]) || s[8] != ' ')
		return err_set(ERR_INVALID, "exec: the server's answer is not HTTP/1.x: \"%.*s\"",
			       (int)(e - s < 40 ? e - s : 40), s);
	s += 9;
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]) ||
	    (s + 3 < e && s[3] != ' '))
		return err_set(ERR_INVALID, "exec: bad HTTP status line");
	out->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (out->code < 100)
		return err_set(ERR_INVALID, "exec: bad HTTP status code %d", out->code);
	if (s + 3 < e)
		copy_trim(out->reason, sizeof(out->reason), s + 4, e);
	return 0;
}

static int parse_header(kube_exec_http_head *out, const char *s, const char *e)
{
	const char *colon = memchr(s, ':', (size_t)(e - s));
	char value[256];
	size_t nl;

	if (!colon || colon == s)
		return err_set(ERR_INVALID, "exec: malformed HTTP header line in the server's answer");
	for (const char *q = s; q < colon; q++)
		if (*q == ' ' || *q == '\t' || (unsigned char)*q < 0x21 || (unsigned char)*q > 0x7e)
			return err_set(ERR_INVALID, "exec: malformed HTTP header name in the server's answer");
	nl = (size_t)(colon - s);
	copy_trim(value, sizeof(value), colon + 1, e);
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(s, name, nl) == 0)
	if (IS("Upgrade")) {
		(void)str_copy(out->upgrade, sizeof(out->upgrade), value);
	} else if (IS("Connection")) {
		if (has_token(value, "upgrade"))
			out->conn_upgrade = 1;
	} else if (IS("Sec-WebSocket-Accept")) {
		(void)str_copy(out->accept, sizeof(out->accept), value);
	} else if (IS("Sec-WebSocket-Protocol")) {
		(void)str_copy(out->protocol, sizeof(out->protocol), value);
	} else if (IS("Content-Type")) {
		(void)str_copy(out->content_type, sizeof(out->content_type), value);
	} else if (IS("Content-Length")) {
		int64_t v;

		if (str_parse_i64(&v, value, 0, INT64_MAX) != 0)
			return err_set(ERR_INVALID, "exec: bad Content-Length \"%.32s\" in the server's answer", value);
		out->content_length = v;
	} else if (IS("Transfer-Encoding")) {
		if (has_token(value, "chunked"))
			out->chunked = 1;
	} else if (IS("Retry-After")) {
		int v;

		if (str_parse_int(&v, value, 0, 86400) == 0)
			out->retry_after = v;
	}
#undef IS
	return 0;
}

int kube_exec_http_head_parse(kube_exec_http_head *out, const char *p, size_t n)
{
	size_t end, limit = n < KUBE_EXEC_HEAD_MAX ? n : KUBE_EXEC_HEAD_MAX;
	const char *s, *stop;
	int first = 1, rc;

	memset(out, 0, sizeof(*out));
	out->content_length = -1;
	out->retry_after = -1;
	end = head_end(p, limit);
	if (!end) {
		if (n >= KUBE_EXEC_HEAD_MAX)
			return err_set(ERR_TOOBIG, "exec: the server's HTTP answer head is over %u bytes",
				       KUBE_EXEC_HEAD_MAX);
		return ERR_AGAIN;
	}
	out->head_len = end;
	s = p;
	stop = p + end;
	while (s < stop) {
		const char *nl = memchr(s, '\n', (size_t)(stop - s));
		const char *e = nl;

		if (e > s && e[-1] == '\r')
			e--;
		if (e == s)
			break; /* the blank line */
		if (memchr(s, '\0', (size_t)(e - s)))
			return err_set(ERR_INVALID, "exec: NUL byte in the server's HTTP answer");
		rc = first ? parse_status_line(out, s, e) : parse_header(out, s, e);
		if (rc)
			return rc;
		first = 0;
		s = nl + 1;
	}
	if (first)
		return err_set(ERR_INVALID, "exec: empty HTTP answer head");
	return 0;
}

int kube_exec_http_chunked_decode(buf *out, const char *p, size_t n, size_t *used)
{
	size_t i = 0;
	int rc;

	buf_reset(out);
	*used = 0;
	for (;;) {
		uint64_t size = 0;
		int digits = 0;

		/* chunk-size [; ext] CRLF */
		while (i < n && isxdigit((unsigned char)p[i])) {
			int c = p[i];
			unsigned d = (unsigned)(isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));

			if (size > (UINT64_MAX >> 4) || ++digits > 15)
				return err_set(ERR_INVALID, "exec: chunk size too large in the server's answer");
			size = size * 16 + d;
			i++;
		}
		if (i >= n)
			return ERR_AGAIN;
		if (!digits)
			return err_set(ERR_INVALID, "exec: bad chunk size in the server's answer");
		while (i < n && p[i] != '\n') {
			if (i - *used > 1024)
				return err_set(ERR_INVALID, "exec: chunk extension too long in the server's answer");
			i++;
		}
		if (i >= n)
			return ERR_AGAIN;
		i++; /* LF */
		if (size == 0) {
			/* trailers, then the blank line */
			for (;;) {
				size_t ls = i;

				while (i < n && p[i] != '\n')
					i++;
				if (i >= n)
					return ERR_AGAIN;
				i++;
				if (i - ls <= 2 && (i - ls == 1 || p[ls] == '\r')) {
					*used = i;
					return 0;
				}
				if (i - ls > 4096)
					return err_set(ERR_INVALID, "exec: trailer too long in the server's answer");
			}
		}
		if (size > n - i)
			return ERR_AGAIN;
		rc = buf_append(out, p + i, (size_t)size);
		if (rc)
			return err_set(rc, "exec: the server's error body is over %zu bytes", out->max);
		i += (size_t)size;
		if (i < n && p[i] == '\r')
			i++;
		if (i >= n)
			return ERR_AGAIN;
		if (p[i] != '\n')
			return err_set(ERR_INVALID, "exec: missing CRLF after a chunk in the server's answer");
		i++;
		*used = i;
	}
}

static int check_line(const char *s)
{
	if (strpbrk(s, "\r\n"))
		return err_set(ERR_INVALID, "exec: refusing an HTTP header value with CR or LF in it");
	return 0;
}

int kube_exec_http_request(buf *out, const char *host, const char *target, const char *key,
			   const char *protocols, const struct curl_slist *extra)
{
	int rc, own_host = 1;

	if ((rc = check_line(host)) || (rc = check_line(target)) || (rc = check_line(key)) ||
	    (rc = check_line(protocols)))
		return rc;
	/* the client may bring its own Host (kube_client's connect-to mode) */
	for (const struct curl_slist *l = extra; l; l = l->next)
		if (strncasecmp(l->data, "Host:", 5) == 0)
			own_host = 0;
	rc = buf_printf(out, "GET %s HTTP/1.1\r\n", target);
	if (!rc && own_host)
		rc = buf_printf(out, "Host: %s\r\n", host);
	rc = rc ? rc : buf_printf(out,
			"User-Agent: ci-fixer\r\n"
			"Connection: Upgrade\r\n"
			"Upgrade: websocket\r\n"
			"Sec-WebSocket-Version: 13\r\n"
			"Sec-WebSocket-Key: %s\r\n"
			"Sec-WebSocket-Protocol: %s\r\n",
			key, protocols);
	for (const struct curl_slist *l = extra; !rc && l; l = l->next) {
		if ((rc = check_line(l->data)))
			return rc;
		/* curl's "Name:" (remove a header) has no meaning here */
		if (!strchr(l->data, ':') || str_has_suffix(l->data, ":"))
			continue;
		rc = buf_printf(out, "%s\r\n", l->data);
	}
	if (!rc)
		rc = buf_append_str(out, "\r\n");
	return rc ? err_set(rc, "exec: the upgrade request is over %zu bytes", out->max) : 0;
}

int kube_exec_http_escape(buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (const unsigned char *q = (const unsigned char *)s; *q && !rc; q++) {
		if ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '-' || *q == '.' || *q == '_' || *q == '~') {
			rc = buf_append_byte(out, *q);
		} else {
			char e[3] = { '%', hex[*q >> 4], hex[*q & 15] };

			rc = buf_append(out, e, 3);
		}
	}
	return rc;
}

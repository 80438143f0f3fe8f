/*
 * kube/exec_http: the HTTP/1.1 half of the exec WebSocket handshake.
 *
 * The exec client (kube/exec.c) writes the upgrade request itself on a
 * libcurl CONNECT_ONLY connection and reads the answer itself, so the
 * request builder and the response-head parser live here, apart and
 * testable: a 101 with the WebSocket headers, or an ordinary HTTP error
 * whose body is a metav1.Status (possibly chunked).
 *
 * Every parser here has a hard cap and a fuzz target
 * (tests/fuzz/fuzz_kube_exec_http.c).
 */
#ifndef KUBE_EXEC_HTTP_H
#define KUBE_EXEC_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "util/buf.h"

/* Hard cap on a response head (status line and headers). */
#define KUBE_EXEC_HEAD_MAX (16u << 10)

/* What the exec client needs from a response head. Header values are cut
 * to fit their field. */
typedef struct kube_exec_http_head {
	int code;                /* 101, 403, ... */
	char reason[64];         /* the status line's reason phrase */
	char upgrade[32];        /* Upgrade */
	char accept[64];         /* Sec-WebSocket-Accept */
	char protocol[64];       /* Sec-WebSocket-Protocol */
	char content_type[96];
	int conn_upgrade;        /* Connection carries the "upgrade" token */
	int64_t content_length;  /* -1 when absent */
	int chunked;             /* Transfer-Encoding: chunked */
	int retry_after;         /* Retry-After in seconds, -1 when absent or a date */
	size_t head_len;         /* bytes of the head, blank line included */
} kube_exec_http_head;

/* Parse a response head at the start of p[0..n). 0 with *out filled;
 * ERR_AGAIN when the blank line has not arrived yet; ERR_TOOBIG when no
 * blank line within KUBE_EXEC_HEAD_MAX; ERR_INVALID for a malformed
 * status line or header (message says which). Accepts LF or CRLF. */
int kube_exec_http_head_parse(kube_exec_http_head *out, const char *p, size_t n);

/* Decode a whole chunked body from p[0..n) into out (which has its own
 * cap). 0 when the last chunk was seen (*used: bytes consumed); ERR_AGAIN
 * when more bytes are needed (out is reset; call again with more);
 * ERR_INVALID for bad framing; ERR_TOOBIG past out's cap. */
int kube_exec_http_chunked_decode(buf *out, const char *p, size_t n, size_t *used);

/* Append the GET upgrade request for target ("/api/v1/...exec?..."):
 * Host, Upgrade, Connection, Sec-WebSocket-Version: 13, Sec-WebSocket-Key
 * key, Sec-WebSocket-Protocol protocols, every line of extra (e.g. the
 * Authorization header from kube_client_curl_setup; may be NULL), then the
 * blank line. Lines with CR or LF in them are refused (ERR_INVALID). */
int kube_exec_http_request(buf *out, const char *host, const char *target, const char *key,
			   const char *protocols, const struct curl_slist *extra);

/* Append s percent-encoded for a query value or a path segment: every
 * byte but the RFC 3986 unreserved set (A-Z a-z 0-9 - . _ ~) as %XX. */
int kube_exec_http_escape(buf *out, const char *s);

#endif

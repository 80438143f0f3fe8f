/*
 * kube/rest: one API request, with client-go's retry policy.
 *
 * A request is sent through the client's pooled, connection-sharing easy
 * handles. A failure is a typed error (util/err.h code) whose message
 * quotes the API server's Status, and whose Status is kept for the thread
 * (kube_status_last()). Retries follow s/client-go/rest/with_retry.go and
 * request.go: at most 10, only
 *  - on 429 or >= 500 with an integer Retry-After header (sleep that long);
 *  - for GET, after a connection reset or an unexpected EOF (sleep 1 s);
 * and never past the caller's deadline. One more attempt is made after a
 * 401 when refreshing the credentials gave a different one (a rotated
 * token file, a re-run exec plugin): the server rejected the request
 * before acting on it, so any verb is safe to repeat.
 */
#ifndef KUBE_REST_H
#define KUBE_REST_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kube/client.h"
#include "kube/status.h"
#include "util/buf.h"

/* Default cap on a buffered response body (a large List fits). */
#define KUBE_REST_MAX_BODY (64u << 20)
/* Cap on an error body kept for its Status. */
#define KUBE_REST_MAX_ERROR_BODY (1u << 20)
/* client-go's maxRetries (s/client-go/rest/request.go). */
#define KUBE_REST_MAX_RETRIES 10

/* Receives a streamed 2xx body as it arrives. Return 0 to go on, a
 * negative err code to stop the transfer with that code (the callback
 * sets the message), 1 to stop quietly (kube_rest_do then returns 0). */
typedef int (*kube_rest_data_cb)(void *ud, const char *p, size_t n);

typedef struct kube_request {
	const char *method;       /* "GET" (default), "POST", "PUT", "PATCH", "DELETE" */
	const char *path;         /* "/api/v1/...", query included and already escaped */
	const char *body;         /* request body or NULL */
	size_t body_len;
	const char *content_type; /* of body; default "application/json" */
	const char *accept;       /* default "application/json" */
	int64_t deadline_ms;      /* clock_mono_ms() deadline for all attempts; 0: the
				   * client's request timeout (none when streaming) */
	size_t max_body;          /* cap on the buffered body; 0: KUBE_REST_MAX_BODY */
	int max_retries;          /* -1: KUBE_REST_MAX_RETRIES; 0: never retry */
	kube_cancel *cancel;      /* may be NULL */
	kube_rest_data_cb on_data; /* stream a 2xx body here instead of buffering */
	void *ud;
	const char *verb;         /* accounting label; NULL: method */
	void (*on_tick)(void *);  /* called about once a second while the request
				   * is in progress, from its thread; may be NULL */
	void *tick_ud;
} kube_request;

#define KUBE_REQUEST_INIT { "GET", NULL, NULL, 0, NULL, NULL, 0, 0, -1, NULL, NULL, NULL, NULL, NULL, NULL }

typedef struct kube_response {
	long code;            /* HTTP status of the last attempt (0: none) */
	buf body;             /* the body, unless streamed; NUL-terminated */
	char content_type[128];
	char warning[512];    /* the first Warning header's text, "" if none */
	int attempts;         /* attempts made */
} kube_response;

/* Release the body. NULL-safe; the response may be reused. */
void kube_response_free(kube_response *r);

/* Send req. *out (may be NULL) receives the response; the caller frees it
 * with kube_response_free() whatever the result. Returns 0 for a 2xx
 * response; otherwise the typed error with the server's message
 * (ERR_NOTFOUND, ERR_FORBIDDEN, ERR_AGAIN for 429/5xx left after the
 * retries, ...), ERR_TIMEOUT at the deadline, ERR_CANCELLED, ERR_TOOBIG
 * past max_body, ERR_AGAIN for a transport failure (message from libcurl).
 * Thread-safe. */
int kube_rest_do(kube_response *out, kube_client *c, const kube_request *req);

/* JSON convenience: send body (NULL for none) and parse the 2xx answer.
 * *out gets the parsed object (caller frees with cJSON_Delete) or NULL.
 * deadline_ms as in kube_request. ERR_INVALID when the answer is not JSON. */
int kube_rest_json(cJSON **out, kube_client *c, const char *method, const char *path,
		   const cJSON *body, int64_t deadline_ms);

/* The retry decision, exposed for tests. attempt counts the attempts made
 * so far (1 after the first). http_code is 0 when there was no response;
 * then transport_retryable says whether the failure was a connection reset
 * or unexpected EOF. retry_after is the header's value or NULL. Returns 1
 * with *wait_ms set when another attempt should follow. */
int kube_rest_should_retry(int64_t *wait_ms, const char *method, long http_code,
			   const char *retry_after, int transport_retryable, int attempt,
			   int max_retries);

/* Percent-encode s for a query value into b (RFC 3986 unreserved kept). */
int kube_query_escape(buf *b, const char *s);

#endif

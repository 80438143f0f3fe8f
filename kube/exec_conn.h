/*
 * kube/exec_conn: the transport seam under kube_exec_run().
 *
 * kube_exec_run() opens a libcurl CONNECT_ONLY connection and runs the
 * exec protocol over it through this small interface; unit tests run the
 * same protocol engine over a socketpair to an in-process fake server.
 * Nothing here knows about libcurl or TLS.
 */
#ifndef KUBE_EXEC_CONN_H
#define KUBE_EXEC_CONN_H

#include <stddef.h>

#include <curl/curl.h>

#include "kube/exec.h"
#include "util/buf.h"

typedef struct kube_exec_conn {
	void *ctx;
	int fd; /* the socket to poll */
	/* Send up to n bytes (n > 0): 0 with *sent > 0; ERR_AGAIN when nothing
	 * can be sent now (then the next call must offer the same bytes again,
	 * possibly with more after them: TLS requires it); another negative
	 * code when the connection failed. */
	int (*send)(void *ctx, const void *p, size_t n, size_t *sent);
	/* Receive up to n bytes: 0 with *got > 0; 0 with *got == 0 at EOF;
	 * ERR_AGAIN when nothing is available now; another negative code when
	 * the connection failed. Data may sit inside the TLS layer where poll
	 * cannot see it, so the engine always reads until ERR_AGAIN before it
	 * polls again. */
	int (*recv)(void *ctx, void *p, size_t n, size_t *got);
} kube_exec_conn;

typedef struct kube_exec_request {
	const char *host;                 /* the Host header value ("host:port") */
	const char *target;               /* request target: "/api/v1/...exec?..." */
	const struct curl_slist *headers; /* extra header lines (Authorization...); may be NULL */
} kube_exec_request;

/* Append the request target for opts under the server's path prefix
 * (usually ""): "/api/v1/namespaces/NS/pods/POD/exec?command=...&
 * container=C&stdin=true&stdout=true&stderr=true". One command= per argv
 * element, every value percent-encoded; a stream not requested is left
 * out, never sent as false (only absent, "0" and "false" read as false:
 * s/apimachinery/pkg/runtime/conversion.go). ns must be set.
 * 0, ERR_INVALID (no pod, no argv, no stream), or the buf's error. */
int kube_exec_target(buf *out, const char *prefix, const char *ns, const kube_exec_opts *opts);

/* Run the whole exec protocol (handshake, streams, status) over conn. Same
 * results as kube_exec_run(), except that a 401 is returned as
 * ERR_UNAUTHORIZED without any retry. Does not close conn. */
int kube_exec_run_conn(kube_exec_result *out, const kube_exec_conn *conn, const kube_exec_request *req,
		       const kube_exec_opts *opts);

#endif

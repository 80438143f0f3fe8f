/*
 * kube/client: the handle every request to one API server goes through.
 *
 * A kube_client holds the TLS and credential state of a kube_config and a
 * pool of libcurl easy handles that share one connection cache, DNS cache
 * and TLS session cache (a CURLSH with lock callbacks), so connections are
 * reused across requests and threads. It is thread-safe: any number of
 * threads may issue requests (kube/rest.h, kube/watch.h, kube/resources.h)
 * and build exec connections (kube/exec.h) through one client at once.
 *
 * Credentials (kube/auth.h) are refreshed as client-go does: a token file is
 * re-read at least every minute and after a 401, an exec plugin's credential
 * is cached until its expirationTimestamp and re-run after a 401.
 */
#ifndef KUBE_CLIENT_H
#define KUBE_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "kube/config.h"
#include "util/buf.h"

typedef struct kube_client kube_client;

/* Default timeouts (override with kube_client_set_timeouts). */
#define KUBE_CONNECT_TIMEOUT_MS_DEFAULT 10000
#define KUBE_REQUEST_TIMEOUT_MS_DEFAULT 60000

/* Create a client for cfg. cfg is deep-copied: the caller may free it
 * afterwards. Reads the CA and client certificate files now (so a missing
 * file is an error here, naming it). Caller owns *out; free with
 * kube_client_free(). ERR_NOTFOUND / ERR_INVALID / ERR_NOMEM / ERR_FAIL. */
int kube_client_new(kube_client **out, const kube_config *cfg);

/* Free the client, its easy-handle pool and its connections. NULL-safe.
 * No request may be in flight. */
void kube_client_free(kube_client *c);

/* Connect timeout for every request, and the default total timeout of a
 * non-streaming request without its own deadline. 0 keeps the current
 * value. Call before sharing the client between threads. */
void kube_client_set_timeouts(kube_client *c, long connect_ms, long request_ms);
/* The total timeout of a request without its own deadline, in ms. */
long kube_client_request_timeout_ms(const kube_client *c);

/* Apply the client's TLS (CA, client cert/key, tls-server-name, insecure
 * only when the kubeconfig says so), proxy and connect timeout to an easy
 * handle, and build the headers to send (Authorization: Bearer with the
 * CURRENT token, refreshed as needed: this may run an exec plugin or read
 * the token file). The handle is NOT attached to the client's shared
 * connection cache (a CONNECT_ONLY handle keeps its connection to itself);
 * the REST path attaches its own handles. The handle is set to HTTP/1.1
 * (a WebSocket upgrade cannot ride HTTP/2). Caller frees *headers_out with
 * curl_slist_free_all (it may be NULL when there is no header to send).
 * 0, or an error from the credential source (ERR_UNAUTHORIZED, ERR_FAIL...)
 * with a message. */
int kube_client_curl_setup(kube_client *c, CURL *h, struct curl_slist **headers_out);

/* "https://host:port", no trailing slash. Valid for the client's life. */
const char *kube_client_server(const kube_client *c);

/* The URL to give CURLOPT_URL for path ("/api/v1/...?..."): the server
 * followed by path. Use it rather than kube_client_server() + path: with a
 * tls-server-name its host is that name, which kube_client_curl_setup
 * routes to the real server (CURLOPT_CONNECT_TO) with the real Host header.
 * Caller frees. NULL on allocation failure. */
char *kube_client_url(const kube_client *c, const char *path);

/* The namespace from the context / in-cluster, "default" at least. */
const char *kube_client_namespace(const kube_client *c);

/* The configuration the client was built from (its own copy). */
const kube_config *kube_client_config(const kube_client *c);

/* A 401 was seen: refresh credentials before the next request (re-read the
 * token file, re-run the exec plugin). Thread-safe. */
void kube_client_note_unauthorized(kube_client *c);

/* Request accounting, for the runner's /metrics. Every request made through
 * kube/rest.h is counted by verb ("GET", "POST", ..., "WATCH" for watch
 * streams) and HTTP status (0 = no response: transport error). Exec (and
 * any other caller making its own transfers) records with
 * kube_client_count_request. Thread-safe. */
void kube_client_count_request(kube_client *c, const char *verb, long code);

/* New connections (TCP, and TLS when https) the REST path has opened:
 * with reuse working, far fewer than requests. Thread-safe. */
uint64_t kube_client_connections_opened(kube_client *c);

typedef struct kube_request_count {
	char verb[12];
	long code;
	uint64_t count;
} kube_request_count;

/* Copy up to max counters into out; returns how many there are in total
 * (may exceed max). Thread-safe snapshot. */
size_t kube_client_request_counts(kube_client *c, kube_request_count *out, size_t max);

/* Append the counters in Prometheus text format under the metric name
 * (e.g. "cifixer_kube_requests_total"), with HELP and TYPE lines:
 *   NAME{verb="GET",code="200"} 12
 * and, when conn_name is not NULL, the connections opened by the REST path
 * (kube_client_connections_opened) as the counter conn_name.
 * 0, or ERR_TOOBIG when out's cap is hit. */
int kube_client_metrics_write(kube_client *c, buf *out, const char *name, const char *conn_name);

/* A cancellation flag a caller sets from any thread to stop a request,
 * watch or log stream in progress (it stops within about a second, the
 * interval at which libcurl polls its progress callback, or sooner). */
typedef struct kube_cancel {
	atomic_int flag;
} kube_cancel;

#define KUBE_CANCEL_INIT { 0 }

static inline void kube_cancel_init(kube_cancel *k) { atomic_store(&k->flag, 0); }
static inline void kube_cancel_request(kube_cancel *k) { atomic_store(&k->flag, 1); }
static inline int kube_cancelled(kube_cancel *k) { return k && atomic_load(&k->flag) != 0; }

#endif

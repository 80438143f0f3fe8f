/*
 * kube/rest: requests to the API server over the client's pooled handles.
 *
 * One call = up to 1 + max_retries attempts (plus one after a 401 that
 * changed the credential). Each attempt: take a handle, prepare TLS and
 * auth (kube_client_prepare), perform, give the handle back. The header
 * callback collects Retry-After, Content-Type and Warning; the write
 * callback either buffers the body (capped) or, for a streaming 2xx
 * answer, hands each chunk to the caller. The progress callback enforces
 * cancellation and the deadline. Between attempts we sleep in short steps
 * so a cancellation is seen quickly. See rest.h for the policy.
 */
#include "kube/rest.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kube/client_priv.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

void kube_response_free(kube_response *r)
{
	if (!r)
		return;
	buf_free(&r->body);
}

int kube_query_escape(buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			rc = buf_append_byte(b, *p);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			rc = buf_append(b, e, 3);
		}
	}
	return rc;
}

int kube_rest_should_retry(int64_t *wait_ms, const char *method, long http_code,
			   const char *retry_after, int transport_retryable, int attempt,
			   int max_retries)
{
	*wait_ms = 0;
	if (attempt > max_retries)
		return 0;
	if (http_code == 0) {
		/* request.go: "Connection reset by peer" / EOF are retried for
		 * GET only; writes are not idempotent. with_retry.go answers a
		 * retryable error with an artificial "Retry-After: 1". */
		if (!transport_retryable || !method || strcmp(method, "GET"))
			return 0;
		*wait_ms = 1000;
		return 1;
	}
	/* with_retry.go checkWait: 429 or any 5xx, and only with an integer
	 * Retry-After (strconv.Atoi). */
	if (http_code != 429 && http_code < 500)
		return 0;
	if (!retry_after)
		return 0;
	int64_t secs;
	if (str_parse_i64(&secs, retry_after, INT32_MIN, INT32_MAX) < 0)
		return 0;
	*wait_ms = secs > 0 ? secs * 1000 : 0;
	return 1;
}

/* ---- one attempt ------------------------------------------------------ */

struct xfer {
	kube_client *c;
	const kube_request *req;
	CURL *h;
	kube_response *resp;
	int64_t deadline;      /* absolute, 0 = none */
	char retry_after[32];
	int have_retry_after;
	int streaming;         /* this response's body goes to on_data */
	int decided;           /* streaming decided for this response */
	int cb_rc;             /* error returned by on_data or a cap */
	int stopped_quietly;   /* on_data returned 1 */
	int delivered;         /* bytes were handed to on_data */
};

static void trim_header_value(const char *p, size_t n, char *out, size_t size)
{
	while (n > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n >= size)
		n = size - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

static size_t header_cb(char *p, size_t sz, size_t nm, void *ud)
{
	struct xfer *x = ud;
	size_t n = sz * nm;

	/* A new status line (after a 100 Continue, or a proxy's answer)
	 * starts a new set of headers. */
	if (n >= 5 && !strncmp(p, "HTTP/", 5)) {
		x->have_retry_after = 0;
		x->resp->content_type[0] = '\0';
		return n;
	}
	if (n > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		trim_header_value(p + 12, n - 12, x->retry_after, sizeof(x->retry_after));
		x->have_retry_after = 1;
	} else if (n > 13 && !strncasecmp(p, "Content-Type:", 13)) {
		trim_header_value(p + 13, n - 13, x->resp->content_type, sizeof(x->resp->content_type));
	} else if (n > 8 && !strncasecmp(p, "Warning:", 8) && !x->resp->warning[0]) {
		trim_header_value(p + 8, n - 8, x->resp->warning, sizeof(x->resp->warning));
	}
	return n;
}

static size_t write_cb(char *p, size_t sz, size_t nm, void *ud)
{
	struct xfer *x = ud;
	size_t n = sz * nm;

	if (!x->decided) {
		long code = 0;
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
		x->streaming = x->req->on_data && code >= 200 && code < 300;
		if (!x->streaming && !(code >= 200 && code < 300))
			x->resp->body.max = KUBE_REST_MAX_ERROR_BODY;
		x->decided = 1;
	}
	if (x->streaming) {
		int r = x->req->on_data(x->req->ud, p, n);
		x->delivered = 1;
		if (r == 1) {
			x->stopped_quietly = 1;
			return 0;
		}
		if (r < 0) {
			x->cb_rc = r;
			return 0;
		}
		return n;
	}
	if (buf_append(&x->resp->body, p, n) < 0) {
		long code = 0;
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200 && code < 300) {
			x->cb_rc = err_set(ERR_TOOBIG, "%s %s: response larger than %zu bytes",
					   x->req->method, x->req->path, x->resp->body.max);
			return 0;
		}
		/* An error body: keep its head, drop the rest. */
		return n;
	}
	return n;
}

static int progress_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct xfer *x = ud;
	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	if (kube_cancelled(x->req->cancel))
		return 1;
	if (x->deadline && clock_mono_ms() >= x->deadline)
		return 1;
	/* libcurl calls this at least about once a second, data or not */
	if (x->req->on_tick)
		x->req->on_tick(x->req->tick_ud);
	return 0;
}

/* curl failures that mean "connection reset / unexpected EOF"
 * (s/apimachinery/pkg/util/net/util.go IsConnectionReset, IsProbableEOF). */
static int curl_is_reset(CURLcode cc)
{
	return cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING ||
	       cc == CURLE_PARTIAL_FILE || cc == CURLE_HTTP2_STREAM;
}

/* What an attempt came to. */
enum att_kind {
	ATT_SETUP,     /* nothing was sent: credentials or allocation failed */
	ATT_RESPONSE,  /* a whole response arrived (any status) */
	ATT_TRANSPORT, /* the connection failed (*reset: reset or EOF) */
	ATT_LOCAL      /* stopped here: cancel, deadline, a cap, the data callback */
};

/* Perform one attempt. Returns 0 with resp->code set when a response
 * arrived (whatever its status), or a negative code with the message set;
 * *kind says which. */
static int attempt(kube_client *c, const kube_request *req, kube_response *resp,
		   int64_t deadline, uint64_t *gen, char *retry_after, int *have_ra, int *reset,
		   int *delivered, int *stopped_quietly, int *kind)
{
	struct curl_slist *hd = NULL;
	char *url = NULL;
	char errbuf[CURL_ERROR_SIZE];
	struct xfer x = { 0 };
	int rc = 0;
	CURL *h = kube_client_handle_get(c);

	*reset = 0;
	*have_ra = 0;
	*kind = ATT_SETUP;
	resp->code = 0;
	resp->content_type[0] = '\0';
	resp->warning[0] = '\0';
	buf_free(&resp->body);
	buf_init(&resp->body, req->max_body ? req->max_body : KUBE_REST_MAX_BODY);
	if (!h)
		return ERR_NOMEM;
	if ((rc = kube_client_prepare(c, h, &hd, gen)) < 0)
		goto done;
	url = kube_client_url(c, req->path);
	const char *ct = req->content_type ? req->content_type : "application/json";
	char cth[160], acc[256];
	snprintf(cth, sizeof(cth), "Content-Type: %s", ct);
	snprintf(acc, sizeof(acc), "Accept: %s", req->accept ? req->accept : "application/json");
	struct curl_slist *n1 = url ? curl_slist_append(hd, acc) : NULL;
	if (n1)
		hd = n1;
	struct curl_slist *n2 = n1 && req->body ? curl_slist_append(hd, cth) : n1;
	if (n2)
		hd = n2;
	struct curl_slist *n3 = n2 ? curl_slist_append(hd, "Expect:") : NULL;
	if (n3)
		hd = n3;
	struct curl_slist *n4 = n3 ? curl_slist_append(hd, "User-Agent: ci-fixer/kube") : NULL;
	if (!n4) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto done;
	}
	hd = n4;
	x.c = c;
	x.req = req;
	x.h = h;
	x.resp = resp;
	x.deadline = deadline;
	errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
	if (!strcmp(req->method, "GET")) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		/* libcurl silently re-sends a request whose reused connection
		 * died before any answer (lib/transfer.c Curl_retry_request).
		 * client-go never repeats a write after a transport failure
		 * (request.go: only GET), since the server may have acted on
		 * it; a fresh connection makes curl's retry impossible. */
		curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
		if (!strcmp(req->method, "POST") && req->body)
			curl_easy_setopt(h, CURLOPT_POST, 1L);
		else
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	}
	if (req->body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	if (deadline) {
		int64_t left = clock_remaining_ms(deadline);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(left > 0 ? left : 1));
	}
	CURLcode cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->code);
	long nconn = 0;
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nconn);
	kube_client_note_connections(c, nconn);
	*kind = ATT_LOCAL;
	*delivered = x.delivered;
	*stopped_quietly = x.stopped_quietly;
	if (x.have_retry_after) {
		memcpy(retry_after, x.retry_after, sizeof(x.retry_after));
		*have_ra = 1;
	}
	if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && x.stopped_quietly)) {
		rc = 0;
		*kind = ATT_RESPONSE;
	} else if (cc == CURLE_WRITE_ERROR && x.cb_rc) {
		rc = x.cb_rc;
	} else if (kube_cancelled(req->cancel)) {
		rc = err_set(ERR_CANCELLED, "%s %s: cancelled", req->method, req->path);
	} else if ((cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_ABORTED_BY_CALLBACK) && deadline &&
		   clock_mono_ms() >= deadline - 5) {
		/* (a connect timeout before the deadline falls through below:
		 * a transport failure with curl's message) */
		rc = err_set(ERR_TIMEOUT, "%s %s: deadline reached (%s)", req->method, req->path,
			     errbuf[0] ? errbuf : curl_easy_strerror(cc));
	} else {
		*reset = curl_is_reset(cc);
		*kind = ATT_TRANSPORT;
		/* A response that started and then broke is a transport failure
		 * too; the status line alone proves nothing. */
		char why[CURL_ERROR_SIZE + 64];
		rc = err_set(ERR_AGAIN, "%s %s%s: %s", req->method, kube_client_server(c), req->path,
			     kube_curl_error(h, cc, errbuf, why, sizeof why));
		resp->code = 0;
	}
done:
	curl_slist_free_all(hd);
	free(url);
	kube_client_handle_put(c, h);
	return rc;
}

/* Sleep up to ms, waking for cancellation; stops at the deadline. */
static int sleep_for_retry(const kube_request *req, int64_t ms)
{
	int64_t until = clock_mono_ms() + ms;
	while (clock_mono_ms() < until) {
		if (kube_cancelled(req->cancel))
			return ERR_CANCELLED;
		int64_t step = until - clock_mono_ms();
		clock_sleep_ms(step > 50 ? 50 : step);
	}
	return 0;
}

/* The error of a final non-2xx answer, from its Status, and the Status
 * kept for kube_status_last(). Not inlined: its 8 KiB Status would sit
 * in kube_rest_do's frame, under libcurl's and OpenSSL's frames, in every
 * thread that makes a request (1,000 workers in bench part 4). */
static __attribute__((noinline)) int final_error(const kube_request *req, const kube_response *resp, int n)
{
	kube_status st;
	char what[512];
	int rc;

	kube_status_from_body(&st, resp->code, resp->body.data, resp->body.len);
	snprintf(what, sizeof(what), "%s %s", req->method, req->path);
	rc = kube_status_err(&st, what);
	if (n > 1)
		err_wrap(rc, "after %d attempts", n);
	kube_status_set_last(&st);
	return rc;
}

int kube_rest_do(kube_response *out, kube_client *c, const kube_request *in)
{
	kube_response local = { 0 };
	kube_response *resp = out ? out : &local;
	kube_request req = *in;
	int max_retries = req.max_retries < 0 ? KUBE_REST_MAX_RETRIES : req.max_retries;
	int64_t deadline = req.deadline_ms;
	int retried_401 = 0;
	int rc = 0;

	memset(resp, 0, sizeof(*resp));
	if (!req.method)
		req.method = "GET";
	if (!req.path)
		return err_set(ERR_INVALID, "kube_rest_do: no path");
	if (!deadline && !req.on_data)
		deadline = clock_mono_ms() + kube_client_request_timeout_ms(c);
	const char *verb = req.verb ? req.verb : req.method;
	kube_status_set_last(NULL);

	for (int n = 1;; n++) {
		char ra[32] = "";
		int have_ra = 0, reset = 0, delivered = 0, quiet = 0;
		uint64_t gen = 0;

		if (kube_cancelled(req.cancel)) {
			rc = err_set(ERR_CANCELLED, "%s %s: cancelled", req.method, req.path);
			break;
		}
		if (deadline && clock_mono_ms() >= deadline) {
			rc = err_set(ERR_TIMEOUT, "%s %s: deadline reached", req.method, req.path);
			break;
		}
		resp->attempts = n;
		int kind;
		rc = attempt(c, &req, resp, deadline, &gen, ra, &have_ra, &reset, &delivered, &quiet,
			     &kind);
		if (kind == ATT_SETUP)
			break;
		kube_client_count_request(c, verb, kind == ATT_TRANSPORT ? 0 : resp->code);
		if (kind == ATT_LOCAL)
			break;
		if (kind == ATT_TRANSPORT) {
			int64_t wait = 0;
			/* Never retry a stream that already delivered data: the
			 * caller would see it twice. */
			if (!delivered &&
			    kube_rest_should_retry(&wait, req.method, 0, NULL, reset, n, max_retries) &&
			    (!deadline || clock_mono_ms() + wait < deadline)) {
				if ((rc = sleep_for_retry(&req, wait)) < 0) {
					err_set(rc, "%s %s: cancelled", req.method, req.path);
					break;
				}
				continue;
			}
			break;
		}
		if (resp->code >= 200 && resp->code < 300) {
			rc = 0;
			break;
		}
		/* An error response: its Status makes the error (final_error) */
		if (resp->code == 401) {
			kube_client_note_unauthorized_gen(c, gen);
			if (!retried_401) {
				/* Refresh now; retry once if the credential changed. */
				kube_cred cred;
				if (kube_auth_get(kube_client_auth(c), &cred) == 0 &&
				    cred.generation != gen) {
					kube_cred_clear(&cred);
					retried_401 = 1;
					continue;
				}
				kube_cred_clear(&cred);
			}
		}
		int64_t wait = 0;
		if (kube_rest_should_retry(&wait, req.method, resp->code, have_ra ? ra : NULL, 0, n,
					   max_retries)) {
			if (!deadline || clock_mono_ms() + wait < deadline) {
				if ((rc = sleep_for_retry(&req, wait)) < 0) {
					err_set(rc, "%s %s: cancelled", req.method, req.path);
					break;
				}
				continue;
			}
		}
		rc = final_error(&req, resp, n);
		break;
	}
	if (!out)
		kube_response_free(&local);
	return rc;
}

int kube_rest_json(cJSON **out, kube_client *c, const char *method, const char *path,
		   const cJSON *body, int64_t deadline_ms)
{
	kube_request req = KUBE_REQUEST_INIT;
	kube_response resp = { 0 };
	char *text = NULL;
	int rc;

	if (out)
		*out = NULL;
	if (body) {
		text = cJSON_PrintUnformatted(body);
		if (!text)
			return err_set(ERR_NOMEM, "out of memory");
	}
	req.method = method;
	req.path = path;
	req.body = text;
	req.body_len = text ? strlen(text) : 0;
	req.deadline_ms = deadline_ms;
	rc = kube_rest_do(&resp, c, &req);
	if (rc == 0 && out) {
		*out = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "", resp.body.len);
		if (!*out)
			rc = err_set(ERR_INVALID, "%s %s: the answer is not JSON", method, path);
	}
	free(text);
	kube_response_free(&resp);
	return rc;
}

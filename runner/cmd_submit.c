/*
 * cmd_submit: `ci-fixer submit`, the pipeline client of a running service.
 *
 * POST /v1/runs with an idempotency key, then follow GET
 * /v1/runs/{id}/events (server-sent events, docs/api.md): phases and
 * command lines to stderr, output chunks (base64) to stdout/stderr as they
 * arrive, the run document at the end. If the connection breaks, it posts
 * again with the same key (which finds the same run) and resumes the events
 * with Last-Event-ID, so no output is printed twice. SIGINT/SIGTERM cancel
 * the run (DELETE) and wait for it to end as Cancelled (exit 130).
 */
#include "runner/commands.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "runner/request.h"
#include "runner/result.h"
#include "runner/sse.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

#define SUBMIT_MAX_RESPONSE (64u << 20)
#define SUBMIT_MAX_EVENT (64u << 20)
#define SUBMIT_RECONNECT_MS (10 * 60 * 1000) /* give up reconnecting after this */
#define SUBMIT_CANCEL_WAIT_MS (30 * 1000)     /* after a cancel, wait this long for its result */

static volatile sig_atomic_t interrupted;

/* The first signal cancels the run and waits for its result; a second
 * one leaves at once (the server still cancels the run it was told to). */
static void on_signal(int sig)
{
	(void)sig;
	if (interrupted)
		_exit(RUNNER_EXIT_CANCELLED);
	interrupted = 1;
}

typedef struct submit_ctx {
	const runner_opts *o;
	char *token;
	char id[80];
	runner_sse_parser sse;
	runner_run_doc *doc;     /* set by the result event */
	int64_t start_ms;
	int cancel_sent;
} submit_ctx;

static int read_token(char **out, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[8192];

	*out = NULL;
	if (!f)
		return err_set(ERR_NOTFOUND, "--token-file %s: %s", path, strerror(errno));
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	if (!line[0])
		return err_set(ERR_INVALID, "--token-file %s: empty", path);
	*out = str_dup(line);
	return *out ? 0 : ERR_NOMEM;
}

static size_t body_write(char *p, size_t sz, size_t n, void *ud)
{
	buf *b = ud;

	return buf_append(b, p, sz * n) ? 0 : sz * n;
}

typedef struct hdrs {
	long retry_after;
} hdrs;

static size_t header_cb(char *p, size_t sz, size_t n, void *ud)
{
	hdrs *h = ud;
	size_t len = sz * n;

	if (len > 12 && !strncasecmp(p, "Retry-After:", 12))
		h->retry_after = strtol(p + 12, NULL, 10);
	return len;
}

/* Breaks off the event stream when interrupted, so the cancel can be
 * sent; once it is, the stream is followed to the Cancelled result. */
static int progress_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	const submit_ctx *s = ud;

	(void)a, (void)b, (void)c, (void)d;
	return interrupted && !s->cancel_sent ? 1 : 0;
}

/* One plain request. *status gets the HTTP status (0: no response). */
static int http_do(long *status, buf *resp, long *retry_after, submit_ctx *s, const char *method, const char *path,
		   const char *body, size_t body_len, const char *idem_key)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hl = NULL;
	char url[2048], auth[8300], idem[300];
	hdrs hd = { -1 };
	CURLcode cc;

	*status = 0;
	if (!h)
		return err_set(ERR_NOMEM, "curl_easy_init failed");
	snprintf(url, sizeof(url), "%s%s", s->o->server, path);
	hl = curl_slist_append(hl, "Content-Type: application/json");
	hl = curl_slist_append(hl, "Accept: application/json");
	if (s->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->token);
		hl = curl_slist_append(hl, auth);
	}
	if (idem_key) {
		snprintf(idem, sizeof(idem), "Idempotency-Key: %s", idem_key);
		hl = curl_slist_append(hl, idem);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)body_len);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &hd);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	if (retry_after)
		*retry_after = hd.retry_after;
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	if (cc != CURLE_OK)
		return err_set(ERR_AGAIN, "%s %s: %s", method, url, curl_easy_strerror(cc));
	return 0;
}

/* The message of an error body {"error":{"message":...}} or the body. */
static void print_api_error(long status, const buf *resp)
{
	cJSON *j = cJSON_ParseWithLength(buf_cstr(resp), resp->len);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");

	fprintf(stderr, "ci-fixer: the service answered %ld: %s\n", status,
		cJSON_IsString(m) ? m->valuestring : buf_cstr(resp));
	cJSON_Delete(j);
}

/* ---- events ------------------------------------------------------------- */

static int on_event(void *ctx, const runner_sse_event *ev)
{
	submit_ctx *s = ctx;
	cJSON *j;
	double t = (double)(clock_mono_ms() - s->start_ms) / 1000.0;

	if (!strcmp(ev->event, "result")) {
		runner_run_doc_free(s->doc);
		s->doc = NULL;
		if (runner_run_doc_decode(&s->doc, ev->data, ev->data_len, SUBMIT_MAX_EVENT))
			fprintf(stderr, "ci-fixer: bad result event: %s\n", err_msg());
		return 1; /* stop reading */
	}
	j = cJSON_ParseWithLength(ev->data, ev->data_len);
	if (!j)
		return 0;
	if (!strcmp(ev->event, "output")) {
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "stream");
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "data");
		buf raw = BUF_INIT(SUBMIT_MAX_EVENT);

		if (cJSON_IsString(d) && str_base64_decode(&raw, d->valuestring, strlen(d->valuestring)) == 0) {
			FILE *f = cJSON_IsString(st) && !strcmp(st->valuestring, "stderr") ? stderr : stdout;

			fwrite(raw.data ? raw.data : "", 1, raw.len, f);
			fflush(f);
		}
		buf_free(&raw);
	} else if (!strcmp(ev->event, "phase")) {
		const cJSON *ph = cJSON_GetObjectItemCaseSensitive(j, "phase");
		const cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step");
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");

		fprintf(stderr, "[%6.1fs] %s%s%s%s%s\n", t, cJSON_IsString(step) ? step->valuestring : "",
			cJSON_IsString(step) ? " " : "", cJSON_IsString(ph) ? "(" : "",
			cJSON_IsString(ph) ? ph->valuestring : "", cJSON_IsString(ph) ? ")" : "");
		if (cJSON_IsString(msg) && *msg->valuestring)
			fprintf(stderr, "          %s\n", msg->valuestring);
	} else if (!strcmp(ev->event, "command")) {
		const cJSON *i = cJSON_GetObjectItemCaseSensitive(j, "index");
		const cJSON *argv = cJSON_GetObjectItemCaseSensitive(j, "argv");
		const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shell"), *a;

		fprintf(stderr, "[%6.1fs] command %d: ", t, cJSON_IsNumber(i) ? i->valueint + 1 : 0);
		if (cJSON_IsString(sh))
			fprintf(stderr, "sh -c %s", sh->valuestring);
		cJSON_ArrayForEach(a, argv)
			if (cJSON_IsString(a))
				fprintf(stderr, "%s%s", a == argv->child ? "" : " ", a->valuestring);
		fputc('\n', stderr);
	} else if (!strcmp(ev->event, "commandDone")) {
		const cJSON *i = cJSON_GetObjectItemCaseSensitive(j, "index");
		const cJSON *oc = cJSON_GetObjectItemCaseSensitive(j, "outcome");
		const cJSON *ec = cJSON_GetObjectItemCaseSensitive(j, "exitCode");

		fprintf(stderr, "[%6.1fs] command %d %s", t, cJSON_IsNumber(i) ? i->valueint + 1 : 0,
			cJSON_IsString(oc) ? oc->valuestring : "?");
		if (cJSON_IsNumber(ec))
			fprintf(stderr, " with status %d", ec->valueint);
		fputc('\n', stderr);
	}
	fflush(stderr);
	cJSON_Delete(j);
	return 0;
}

static size_t sse_write(char *p, size_t sz, size_t n, void *ud)
{
	submit_ctx *s = ud;
	int rc = runner_sse_feed(&s->sse, p, sz * n);

	/* rc 1: the result arrived; stop the transfer */
	return rc ? 0 : sz * n;
}

/* Follow the events until the result or a break. *status: HTTP status. */
static void follow_events(long *status, submit_ctx *s)
{
	CURL *h = curl_easy_init();
	struct curl_slist *hl = NULL;
	char url[2048], auth[8300], last[200];

	*status = 0;
	if (!h)
		return;
	snprintf(url, sizeof(url), "%s/v1/runs/%s/events", s->o->server, s->id);
	hl = curl_slist_append(hl, "Accept: text/event-stream");
	if (s->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->token);
		hl = curl_slist_append(hl, auth);
	}
	if (s->sse.last_id[0]) {
		snprintf(last, sizeof(last), "Last-Event-ID: %s", s->sse.last_id);
		hl = curl_slist_append(hl, last);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sse_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, s);
	/* the server sends a comment every 15 s: a minute of silence is a break */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
}

/* POST the request (again, after a break: the key finds the same run). 0
 * with s->id set; ERR_AGAIN to retry; ERR_INVALID for a refusal. */
static int post_run(submit_ctx *s, const buf *body, const char *key)
{
	buf resp = BUF_INIT(SUBMIT_MAX_RESPONSE);
	long status = 0, retry = -1;
	int rc = http_do(&status, &resp, &retry, s, "POST", "/v1/runs", body->data, body->len, key);
	cJSON *j = NULL;
	const cJSON *id;

	if (rc) {
		fprintf(stderr, "ci-fixer: %s\n", err_msg());
		goto done;
	}
	if (status == 429 || status >= 500) {
		fprintf(stderr, "ci-fixer: the service answered %ld; retrying in %ld s\n", status, retry > 0 ? retry : 2);
		clock_sleep_ms((retry > 0 && retry < 60 ? retry : 2) * 1000);
		rc = ERR_AGAIN;
		goto done;
	}
	if (status < 200 || status >= 300) {
		print_api_error(status, &resp);
		rc = ERR_INVALID;
		goto done;
	}
	j = cJSON_ParseWithLength(buf_cstr(&resp), resp.len);
	id = cJSON_GetObjectItemCaseSensitive(j, "id");
	if (!cJSON_IsString(id) || strlen(id->valuestring) >= sizeof(s->id)) {
		fprintf(stderr, "ci-fixer: the service's answer has no run id\n");
		rc = ERR_INVALID;
		goto done;
	}
	if (!s->id[0])
		fprintf(stderr, "[%6.1fs] run %s accepted\n", (double)(clock_mono_ms() - s->start_ms) / 1000.0,
			id->valuestring);
	snprintf(s->id, sizeof(s->id), "%s", id->valuestring);
done:
	cJSON_Delete(j);
	buf_free(&resp);
	return rc;
}

static void send_cancel(submit_ctx *s)
{
	buf resp = BUF_INIT(1 << 20);
	long status = 0;
	char path[200];

	snprintf(path, sizeof(path), "/v1/runs/%s", s->id);
	fprintf(stderr, "ci-fixer: interrupted: cancelling run %s\n", s->id);
	http_do(&status, &resp, NULL, s, "DELETE", path, NULL, 0, NULL);
	buf_free(&resp);
	s->cancel_sent = 1;
}

int runner_cmd_submit(const runner_opts *o)
{
	submit_ctx s;
	runner_request *req = NULL;
	runner_request_error e;
	runner_limits lim = RUNNER_LIMITS_INIT;
	buf body = BUF_INIT(8u << 20), out = BUF_INIT(SUBMIT_MAX_EVENT * 2);
	char key[64];
	int status = RUNNER_EXIT_INFRA, rc;
	int64_t give_up;
	struct sigaction sa;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.start_ms = clock_mono_ms();
	runner_sse_init(&s.sse, SUBMIT_MAX_EVENT, on_event, &s);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (o->token_file && read_token(&s.token, o->token_file)) {
		fprintf(stderr, "ci-fixer: %s\n", err_msg());
		goto done;
	}
	if (runner_opts_request(&req, o)) {
		fprintf(stderr, "ci-fixer: %s\n", err_msg());
		goto done;
	}
	if (!req->idempotency_key) {
		if (runner_new_id(key, sizeof(key)))
			goto done;
		req->idempotency_key = str_printf("submit-%s", key + 2);
	}
	lim.allow_local_repos = 1; /* the server decides */
	lim.max_timeout_seconds = 365 * 24 * 3600;
	if (runner_request_validate(req, &e, &lim)) {
		fprintf(stderr, "ci-fixer: invalid request: %s\n", e.message);
		goto done;
	}
	if (runner_request_encode(&body, req))
		goto done;

	give_up = clock_mono_ms() + SUBMIT_RECONNECT_MS;
	while (!s.doc) {
		long http = 0;

		if (interrupted && !s.id[0])
			break;
		if (interrupted && !s.cancel_sent) {
			send_cancel(&s);
			if (give_up > clock_mono_ms() + SUBMIT_CANCEL_WAIT_MS)
				give_up = clock_mono_ms() + SUBMIT_CANCEL_WAIT_MS;
		}
		rc = post_run(&s, &body, req->idempotency_key);
		if (rc == ERR_INVALID)
			goto done;
		if (rc == 0)
			follow_events(&http, &s);
		if (s.doc)
			break;
		if (http == 404 || http == 401 || http == 403) {
			fprintf(stderr, "ci-fixer: following run %s: HTTP %ld\n", s.id, http);
			goto done;
		}
		if (clock_mono_ms() > give_up) {
			fprintf(stderr, "ci-fixer: the connection to %s kept breaking; giving up\n", o->server);
			goto done;
		}
		if (!interrupted || s.cancel_sent) {
			if (!interrupted)
				fprintf(stderr, "ci-fixer: the event stream broke; reconnecting\n");
			clock_sleep_ms(1000);
		}
	}
	if (!s.doc) {
		status = interrupted ? RUNNER_EXIT_CANCELLED : RUNNER_EXIT_INFRA;
		goto done;
	}
	status = runner_run_doc_exit_status(s.doc);
	fprintf(stderr, "[%6.1fs] %s%s%s%s%s (exit status %d)\n", (double)(clock_mono_ms() - s.start_ms) / 1000.0,
		runner_phase_name(s.doc->phase), s.doc->reason ? " " : "", s.doc->reason ? s.doc->reason : "",
		s.doc->message ? ": " : "", s.doc->message ? s.doc->message : "", status);
	if (o->patch_file && runner_write_file(o->patch_file, s.doc->patch ? s.doc->patch : "",
					       s.doc->patch ? strlen(s.doc->patch) : 0)) {
		fprintf(stderr, "ci-fixer: --patch: %s\n", err_msg());
		if (!status)
			status = 1;
	}
	if (o->json && runner_run_doc_encode(&out, s.doc, 1) == 0) {
		buf_append_byte(&out, '\n');
		fwrite(out.data, 1, out.len, stdout);
		fflush(stdout);
	}
done:
	buf_free(&out);
	buf_free(&body);
	runner_request_free(req);
	runner_run_doc_free(s.doc);
	runner_sse_free(&s.sse);
	free(s.token);
	curl_global_cleanup();
	return status;
}

/*
 * kube/rest, kube/client and kube/status against a local fake HTTP server:
 * Status errors, client-go's retry policy, deadlines, cancellation,
 * connection reuse, body caps, 401 handling and request accounting.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>

#include "kube/client.h"
#include "kube/client_priv.h"
#include "kube/config.h"
#include "kube/rest.h"
#include "kube/status.h"
#include "tests/unit/kube_fake_client.h"
#include "tests/unit/kube_fake_http.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

static fake_http *srv;
static kube_client *kc;

static kube_client *client_for(const char *url, const char *user_yaml)
{
	return fake_kube_client(url, "ns1", user_yaml);
}

static void setup(void)
{
	srv = fake_http_start();
	kc = client_for(srv->url, NULL);
}

static void teardown(void)
{
	kube_client_free(kc);
	fake_http_stop(srv);
}

TestSuite(kube_rest, .init = setup, .fini = teardown, .timeout = 60);

Test(kube_rest, get_sends_bearer_token_and_parses_json)
{
	fake_http_push(srv, (fake_resp){ .status = 200, .headers = "Content-Type: application/json\r\n",
					 .body = "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\"}}" });
	cJSON *o = NULL;
	cr_assert_eq(kube_rest_json(&o, kc, "GET", "/api/v1/namespaces/ns1/pods/p", NULL, 0), 0,
		     "%s", err_msg());
	cr_assert_str_eq(cJSON_GetObjectItem(o, "kind")->valuestring, "Pod");
	fake_req r = fake_http_req(srv, 0);
	cr_assert_str_eq(r.method, "GET");
	cr_assert_str_eq(r.path, "/api/v1/namespaces/ns1/pods/p");
	cr_assert_str_eq(r.auth, "Bearer tok-1");
	cr_assert_str_eq(kube_client_namespace(kc), "ns1");
	cJSON_Delete(o);
}

Test(kube_rest, post_sends_the_body)
{
	cJSON *b = cJSON_Parse("{\"a\":1}");
	cr_assert_eq(kube_rest_json(NULL, kc, "POST", "/x", b, 0), 0, "%s", err_msg());
	fake_req r = fake_http_req(srv, 0);
	cr_assert_str_eq(r.method, "POST");
	cr_assert_str_eq(r.body, "{\"a\":1}");
	cJSON_Delete(b);
}

Test(kube_rest, not_found_quotes_the_status_message)
{
	fake_http_push(srv, (fake_resp){ .status = 404, .body =
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
		"\"message\":\"pods \\\"x\\\" not found\",\"reason\":\"NotFound\","
		"\"details\":{\"name\":\"x\",\"kind\":\"pods\"},\"code\":404}" });
	int rc = kube_rest_json(NULL, kc, "GET", "/api/v1/namespaces/ns1/pods/x", NULL, 0);
	cr_assert_eq(rc, ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "pods \"x\" not found"), "%s", err_msg());
	cr_assert(strstr(err_msg(), "NotFound"), "%s", err_msg());
	const kube_status *st = kube_status_last();
	cr_assert_not_null(st);
	cr_assert_eq(st->code, 404);
	cr_assert_str_eq(st->reason, "NotFound");
	cr_assert_str_eq(st->name, "x");
	cr_assert_str_eq(st->kind, "pods");
	cr_assert_eq(fake_http_requests(srv), 1, "a 404 is never retried");
}

Test(kube_rest, invalid_lists_the_causes)
{
	fake_http_push(srv, (fake_resp){ .status = 422, .body =
		"{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"Job.batch \\\"j\\\" is invalid\","
		"\"reason\":\"Invalid\",\"details\":{\"causes\":[{\"reason\":\"FieldValueInvalid\","
		"\"message\":\"Invalid value: -1\",\"field\":\"spec.backoffLimit\"}]},\"code\":422}" });
	cr_assert_eq(kube_rest_json(NULL, kc, "POST", "/apis/batch/v1/namespaces/ns1/jobs", NULL, 0),
		     ERR_INVALID);
	cr_assert(strstr(err_msg(), "spec.backoffLimit: Invalid value: -1"), "%s", err_msg());
	cr_assert_eq(kube_status_last()->ncauses, 1);
	cr_assert_str_eq(kube_status_last()->causes[0].reason, "FieldValueInvalid");
}

Test(kube_rest, forbidden_says_what_to_do)
{
	fake_http_push(srv, (fake_resp){ .status = 403, .body =
		"{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"pods is forbidden: User "
		"\\\"u\\\" cannot list resource \\\"pods\\\"\",\"reason\":\"Forbidden\",\"code\":403}" });
	cr_assert_eq(kube_rest_json(NULL, kc, "GET", "/api/v1/pods", NULL, 0), ERR_FORBIDDEN);
	cr_assert(strstr(err_msg(), "cannot list resource"), "%s", err_msg());
	cr_assert(strstr(err_msg(), "RBAC"), "%s", err_msg());
}

Test(kube_rest, plain_text_429_is_retried_after_retry_after)
{
	fake_http_push(srv, (fake_resp){ .status = 429, .headers = "Retry-After: 0\r\nContent-Type: text/plain\r\n",
					 .body = "Too many requests, please try again later.\n" });
	fake_http_push(srv, (fake_resp){ .status = 200, .body = "{\"ok\":true}" });
	kube_response resp;
	kube_request req = KUBE_REQUEST_INIT;
	req.path = "/api/v1/pods";
	cr_assert_eq(kube_rest_do(&resp, kc, &req), 0, "%s", err_msg());
	cr_assert_eq(resp.attempts, 2);
	cr_assert_eq(resp.code, 200);
	kube_response_free(&resp);
}

Test(kube_rest, plain_text_429_without_retry_after_is_a_typed_error)
{
	fake_http_push(srv, (fake_resp){ .status = 429, .headers = "Content-Type: text/plain\r\n",
					 .body = "Too many requests, please try again later.\n" });
	cr_assert_eq(kube_rest_json(NULL, kc, "GET", "/api/v1/pods", NULL, 0), ERR_AGAIN);
	cr_assert(strstr(err_msg(), "Too many requests, please try again later."), "%s", err_msg());
	cr_assert_str_eq(kube_status_last()->reason, "TooManyRequests");
	cr_assert_eq(kube_status_last()->code, 429);
	cr_assert_eq(fake_http_requests(srv), 1);
}

Test(kube_rest, server_error_with_retry_after_waits_that_long)
{
	fake_http_push(srv, (fake_resp){ .status = 500, .headers = "Retry-After: 1\r\n",
					 .body = "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"InternalError\",\"code\":500}" });
	fake_http_push(srv, (fake_resp){ .status = 200, .body = "{}" });
	int64_t t0 = clock_mono_ms();
	cr_assert_eq(kube_rest_json(NULL, kc, "GET", "/api/v1/pods", NULL, 0), 0, "%s", err_msg());
	cr_assert_geq(clock_mono_ms() - t0, 950, "slept for Retry-After");
	cr_assert_eq(fake_http_requests(srv), 2);
}

Test(kube_rest, server_error_without_retry_after_is_not_retried)
{
	fake_http_push(srv, (fake_resp){ .status = 503, .body = "down" });
	cr_assert_eq(kube_rest_json(NULL, kc, "GET", "/api/v1/pods", NULL, 0), ERR_AGAIN);
	cr_assert_eq(fake_http_requests(srv), 1);
	cr_assert(strstr(err_msg(), "down"), "%s", err_msg());
}

Test(kube_rest, a_4xx_with_retry_after_is_not_retried)
{
	fake_http_push(srv, (fake_resp){ .status = 409, .headers = "Retry-After: 0\r\n",
					 .body = "{\"kind\":\"Status\",\"reason\":\"Conflict\",\"message\":\"c\",\"code\":409}" });
	cr_assert_eq(kube_rest_json(NULL, kc, "PUT", "/x", NULL, 0), ERR_CONFLICT);
	cr_assert_eq(fake_http_requests(srv), 1);
}

Test(kube_rest, retries_stop_after_ten)
{
	srv->dflt = (fake_resp){ .status = 503, .headers = "Retry-After: 0\r\n", .body = "busy" };
	kube_response resp;
	kube_request req = KUBE_REQUEST_INIT;
	req.path = "/api/v1/pods";
	cr_assert_eq(kube_rest_do(&resp, kc, &req), ERR_AGAIN);
	cr_assert_eq(resp.attempts, 11, "one attempt and 10 retries, got %d", resp.attempts);
	cr_assert_eq(fake_http_requests(srv), 11);
	cr_assert(strstr(err_msg(), "after 11 attempts"), "%s", err_msg());
	kube_response_free(&resp);
}

Test(kube_rest, retry_after_past_the_deadline_gives_up_at_once)
{
	srv->dflt = (fake_resp){ .status = 429, .headers = "Retry-After: 30\r\n", .body = "slow down" };
	int64_t t0 = clock_mono_ms();
	int rc = kube_rest_json(NULL, kc, "GET", "/api/v1/pods", NULL, clock_mono_ms() + 2000);
	cr_assert_eq(rc, ERR_AGAIN);
	cr_assert_lt(clock_mono_ms() - t0, 20000, "did not sleep 30 s past a 2 s deadline");
	cr_assert_eq(fake_http_requests(srv), 1);
	cr_assert(strstr(err_msg(), "slow down"), "%s", err_msg());
}

Test(kube_rest, get_is_retried_after_a_dropped_connection)
{
	fake_http_push(srv, (fake_resp){ .status = 0 });
	fake_http_push(srv, (fake_resp){ .status = 200, .body = "{\"v\":2}" });
	cJSON *o = NULL;
	cr_assert_eq(kube_rest_json(&o, kc, "GET", "/api/v1/pods", NULL, 0), 0, "%s", err_msg());
	cr_assert_eq(fake_http_requests(srv), 2);
	cJSON_Delete(o);
}

Test(kube_rest, post_is_not_retried_after_a_dropped_connection)
{
	fake_http_push(srv, (fake_resp){ .status = 0 });
	fake_http_push(srv, (fake_resp){ .status = 200, .body = "{}" });
	cr_assert_eq(kube_rest_json(NULL, kc, "POST", "/apis/batch/v1/namespaces/ns1/jobs", NULL, 0),
		     ERR_AGAIN);
	cr_assert_eq(fake_http_requests(srv), 1);
}

Test(kube_rest, a_write_on_a_reused_connection_is_not_resent_by_libcurl)
{
	/* a GET leaves a kept-alive connection; the POST then meets a drop:
	 * libcurl alone would quietly send it again on a new connection */
	fake_http_push(srv, (fake_resp){ .status = 200, .body = "{}" });
	fake_http_push(srv, (fake_resp){ .status = 0 });
	fake_http_push(srv, (fake_resp){ .status = 201, .body = "{}" });
	cr_assert_eq(kube_rest_json(NULL, kc, "GET", "/x", NULL, 0), 0);
	cr_assert_eq(kube_rest_json(NULL, kc, "POST", "/apis/batch/v1/namespaces/ns1/jobs", NULL, 0), ERR_AGAIN);
	cr_assert_eq(fake_http_requests(srv), 2, "the POST was sent once");
}

Test(kube_rest, deadline_bounds_a_slow_answer)
{
	fake_http_push(srv, (fake_resp){ .status = 200, .body = "{}", .delay_ms = 5000 });
	int64_t t0 = clock_mono_ms();
	cr_assert_eq(kube_rest_json(NULL, kc, "GET", "/slow", NULL, clock_mono_ms() + 300), ERR_TIMEOUT);
	cr_assert_lt(clock_mono_ms() - t0, 4500);
}

Test(kube_rest, the_client_request_timeout_applies_without_a_deadline)
{
	fake_http_push(srv, (fake_resp){ .status = 200, .body = "{}", .delay_ms = 5000 });
	kube_client_set_timeouts(kc, 0, 300);
	int64_t t0 = clock_mono_ms();
	cr_assert_eq(kube_rest_json(NULL, kc, "GET", "/slow", NULL, 0), ERR_TIMEOUT, "%s", err_msg());
	cr_assert_lt(clock_mono_ms() - t0, 4500);
}

struct canceller {
	kube_cancel *k;
	int ms;
};

static void *cancel_later(void *arg)
{
	struct canceller *c = arg;
	clock_sleep_ms(c->ms);
	kube_cancel_request(c->k);
	return NULL;
}

Test(kube_rest, cancel_from_another_thread)
{
	fake_http_push(srv, (fake_resp){ .status = 200, .body = "{}", .delay_ms = 8000 });
	kube_cancel k = KUBE_CANCEL_INIT;
	struct canceller cc = { &k, 200 };
	pthread_t t;
	pthread_create(&t, NULL, cancel_later, &cc);
	kube_request req = KUBE_REQUEST_INIT;
	req.path = "/slow";
	req.cancel = &k;
	int64_t t0 = clock_mono_ms();
	cr_assert_eq(kube_rest_do(NULL, kc, &req), ERR_CANCELLED, "%s", err_msg());
	cr_assert_lt(clock_mono_ms() - t0, 7000);
	pthread_join(t, NULL);
}

Test(kube_rest, body_over_the_cap_is_toobig)
{
	char *big = malloc(5001);
	memset(big, 'a', 5000);
	big[5000] = '\0';
	fake_http_push(srv, (fake_resp){ .status = 200, .body = big });
	kube_request req = KUBE_REQUEST_INIT;
	req.path = "/big";
	req.max_body = 1000;
	cr_assert_eq(kube_rest_do(NULL, kc, &req), ERR_TOOBIG);
	cr_assert(strstr(err_msg(), "larger than 1000 bytes"), "%s", err_msg());
	/* wait for the server to finish writing before freeing its body */
	clock_sleep_ms(100);
	free(big);
}

Test(kube_rest, connections_are_reused)
{
	for (int i = 0; i < 20; i++)
		cr_assert_eq(kube_rest_json(NULL, kc, "GET", "/api/v1/namespaces", NULL, 0), 0, "%s",
			     err_msg());
	cr_assert_eq(fake_http_requests(srv), 20);
	cr_assert_eq(fake_http_connections(srv), 1, "20 requests on %d connections",
		     fake_http_connections(srv));
	cr_assert_eq(kube_client_connections_opened(kc), 1);
}

static void *hammer(void *arg)
{
	for (int i = 0; i < 25; i++)
		if (kube_rest_json(NULL, arg, "GET", "/api/v1/namespaces", NULL, 0) != 0)
			return (void *)1;
	return NULL;
}

Test(kube_rest, one_client_many_threads)
{
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, hammer, kc);
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_assert_null(r);
	}
	cr_assert_eq(fake_http_requests(srv), 200);
	cr_assert_leq(fake_http_connections(srv), 8, "connections shared: %d",
		      fake_http_connections(srv));
	kube_request_count counts[8];
	size_t n = kube_client_request_counts(kc, counts, 8);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(counts[0].verb, "GET");
	cr_assert_eq(counts[0].code, 200);
	cr_assert_eq(counts[0].count, 200);
}

Test(kube_rest, metrics_in_prometheus_text)
{
	fake_http_push(srv, (fake_resp){ .status = 404, .body = "{}" });
	kube_rest_json(NULL, kc, "GET", "/a", NULL, 0);
	kube_rest_json(NULL, kc, "DELETE", "/b", NULL, 0);
	buf b = BUF_INIT(4096);
	cr_assert_eq(kube_client_metrics_write(kc, &b, "cifixer_kube_requests_total", "conns_total"), 0);
	cr_assert(strstr(buf_cstr(&b), "# TYPE cifixer_kube_requests_total counter\n"));
	char want[64];
	/* the DELETE took a fresh connection (no silent re-send of a write) */
	cr_assert_eq(kube_client_connections_opened(kc), 2);
	snprintf(want, sizeof want, "\nconns_total %llu\n", (unsigned long long)kube_client_connections_opened(kc));
	cr_assert(strstr(buf_cstr(&b), "# TYPE conns_total counter\n"), "%s", buf_cstr(&b));
	cr_assert(strstr(buf_cstr(&b), want), "%s", buf_cstr(&b));
	cr_assert(strstr(buf_cstr(&b), "cifixer_kube_requests_total{verb=\"GET\",code=\"404\"} 1\n"),
		  "%s", buf_cstr(&b));
	cr_assert(strstr(buf_cstr(&b), "cifixer_kube_requests_total{verb=\"DELETE\",code=\"200\"} 1\n"),
		  "%s", buf_cstr(&b));
	buf_free(&b);
}

struct collect {
	buf b;
	int calls;
};

static int collect_cb(void *ud, const char *p, size_t n)
{
	struct collect *c = ud;
	c->calls++;
	return buf_append(&c->b, p, n) < 0 ? ERR_TOOBIG : 0;
}

Test(kube_rest, streamed_body_reaches_the_callback_in_pieces)
{
	fake_http_push(srv, (fake_resp){ .status = 200, .chunks = { "one\n", "two\n", "three\n" },
					 .chunk_delay_ms = 30 });
	struct collect c = { BUF_INIT(1024), 0 };
	kube_request req = KUBE_REQUEST_INIT;
	req.path = "/log";
	req.on_data = collect_cb;
	req.ud = &c;
	cr_assert_eq(kube_rest_do(NULL, kc, &req), 0, "%s", err_msg());
	cr_assert_str_eq(buf_cstr(&c.b), "one\ntwo\nthree\n");
	cr_assert_geq(c.calls, 2, "delivered as it arrived, not at the end");
	buf_free(&c.b);
}

Test(kube_rest, a_stream_cut_midway_is_an_error_and_not_retried)
{
	fake_http_push(srv, (fake_resp){ .status = 200, .chunks = { "partial\n" },
					 .drop_after_chunks = 1 });
	fake_http_push(srv, (fake_resp){ .status = 200, .body = "again\n" });
	struct collect c = { BUF_INIT(1024), 0 };
	kube_request req = KUBE_REQUEST_INIT;
	req.path = "/log";
	req.on_data = collect_cb;
	req.ud = &c;
	cr_assert_eq(kube_rest_do(NULL, kc, &req), ERR_AGAIN);
	cr_assert_str_eq(buf_cstr(&c.b), "partial\n", "data already delivered is never repeated");
	cr_assert_eq(fake_http_requests(srv), 1);
	buf_free(&c.b);
}

Test(kube_rest, streamed_error_body_becomes_a_status)
{
	fake_http_push(srv, (fake_resp){ .status = 400, .body =
		"{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"container \\\"c\\\" in pod "
		"\\\"p\\\" is waiting to start: ContainerCreating\",\"reason\":\"BadRequest\",\"code\":400}" });
	struct collect c = { BUF_INIT(1024), 0 };
	kube_request req = KUBE_REQUEST_INIT;
	req.path = "/log";
	req.on_data = collect_cb;
	req.ud = &c;
	cr_assert_eq(kube_rest_do(NULL, kc, &req), ERR_INVALID);
	cr_assert(strstr(err_msg(), "is waiting to start: ContainerCreating"), "%s", err_msg());
	cr_assert_eq(c.calls, 0, "an error body is not handed to the data callback");
	buf_free(&c.b);
}

/* ---- 401 and credential refresh --------------------------------------- */

static char good_token[64];
static pthread_mutex_t tok_mu = PTHREAD_MUTEX_INITIALIZER;

static fake_resp accept_good_token(fake_http *s, const fake_req *r)
{
	(void)s;
	char want[128];
	pthread_mutex_lock(&tok_mu);
	snprintf(want, sizeof(want), "Bearer %s", good_token);
	pthread_mutex_unlock(&tok_mu);
	if (strcmp(r->auth, want))
		return (fake_resp){ .status = 401, .body =
			"{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"Unauthorized\","
			"\"reason\":\"Unauthorized\",\"code\":401}" };
	return (fake_resp){ .status = 200, .body = "{}" };
}

static void write_file(const char *path, const char *text)
{
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	cr_assert_eq(rename(tmp, path), 0);
}

Test(kube_rest, rotated_token_file_is_picked_up_after_a_401)
{
	char dir[] = "/tmp/kube-rest-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char tf[256], user[512];
	snprintf(tf, sizeof(tf), "%s/token", dir);
	write_file(tf, "first-token\n");
	snprintf(good_token, sizeof(good_token), "first-token");
	snprintf(user, sizeof(user), "    tokenFile: %s\n", tf);
	kube_client *c = client_for(srv->url, user);
	srv->handler = accept_good_token;

	cr_assert_eq(kube_rest_json(NULL, c, "GET", "/a", NULL, 0), 0, "%s", err_msg());
	/* rotate: the server now accepts only the new token */
	write_file(tf, "second-token\n");
	pthread_mutex_lock(&tok_mu);
	snprintf(good_token, sizeof(good_token), "second-token");
	pthread_mutex_unlock(&tok_mu);
	cr_assert_eq(kube_rest_json(NULL, c, "POST", "/b", NULL, 0), 0, "%s", err_msg());
	cr_assert_eq(fake_http_requests(srv), 3, "401 then one retry with the new token");
	cr_assert_str_eq(fake_http_req(srv, 1).auth, "Bearer first-token");
	cr_assert_str_eq(fake_http_req(srv, 2).auth, "Bearer second-token");
	cr_assert_eq(kube_auth_token_reads(kube_client_auth(c)), 2);
	kube_client_free(c);
	unlink(tf);
	rmdir(dir);
}

Test(kube_rest, token_file_is_reread_after_the_period)
{
	char dir[] = "/tmp/kube-rest-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char tf[256], user[512];
	snprintf(tf, sizeof(tf), "%s/token", dir);
	write_file(tf, "t1");
	snprintf(user, sizeof(user), "    tokenFile: %s\n", tf);
	kube_client *c = client_for(srv->url, user);
	/* the default period is client-go's minute; a long one here so a
	 * slow machine cannot cross it between two requests */
	kube_auth_set_reread_ms(kube_client_auth(c), 3600 * 1000);
	cr_assert_eq(kube_rest_json(NULL, c, "GET", "/a", NULL, 0), 0);
	write_file(tf, "t2");
	cr_assert_eq(kube_rest_json(NULL, c, "GET", "/a", NULL, 0), 0);
	cr_assert_str_eq(fake_http_req(srv, 1).auth, "Bearer t1", "cached within the period");
	/* the period passes (made 0 rather than waited for) */
	kube_auth_set_reread_ms(kube_client_auth(c), 0);
	cr_assert_eq(kube_rest_json(NULL, c, "GET", "/a", NULL, 0), 0);
	cr_assert_str_eq(fake_http_req(srv, 2).auth, "Bearer t2", "re-read after the period");
	kube_client_free(c);
	unlink(tf);
	rmdir(dir);
}

Test(kube_rest, static_token_401_is_not_retried)
{
	snprintf(good_token, sizeof(good_token), "other");
	srv->handler = accept_good_token;
	cr_assert_eq(kube_rest_json(NULL, kc, "GET", "/a", NULL, 0), ERR_UNAUTHORIZED);
	cr_assert_eq(fake_http_requests(srv), 1);
	cr_assert(strstr(err_msg(), "credentials were rejected"), "%s", err_msg());
}

/* ---- the retry decision, case by case --------------------------------- */

Test(kube_rest_policy, client_go_retry_table)
{
	int64_t w;
	cr_assert_eq(kube_rest_should_retry(&w, "GET", 429, "2", 0, 1, 10), 1);
	cr_assert_eq(w, 2000);
	cr_assert_eq(kube_rest_should_retry(&w, "POST", 429, "0", 0, 1, 10), 1, "any verb on 429");
	cr_assert_eq(kube_rest_should_retry(&w, "GET", 429, NULL, 0, 1, 10), 0, "no Retry-After");
	cr_assert_eq(kube_rest_should_retry(&w, "GET", 429, "1.5", 0, 1, 10), 0, "not an integer");
	cr_assert_eq(kube_rest_should_retry(&w, "GET", 429, "Wed, 21 Oct 2015 07:28:00 GMT", 0, 1, 10), 0);
	cr_assert_eq(kube_rest_should_retry(&w, "GET", 500, "1", 0, 1, 10), 1);
	cr_assert_eq(kube_rest_should_retry(&w, "PUT", 504, "1", 0, 1, 10), 1);
	cr_assert_eq(kube_rest_should_retry(&w, "GET", 404, "1", 0, 1, 10), 0);
	cr_assert_eq(kube_rest_should_retry(&w, "GET", 409, "1", 0, 1, 10), 0);
	cr_assert_eq(kube_rest_should_retry(&w, "GET", 503, "1", 0, 10, 10), 1, "the 10th retry");
	cr_assert_eq(kube_rest_should_retry(&w, "GET", 503, "1", 0, 11, 10), 0, "no 11th");
	cr_assert_eq(kube_rest_should_retry(&w, "GET", 0, NULL, 1, 1, 10), 1, "GET after a reset");
	cr_assert_eq(w, 1000);
	cr_assert_eq(kube_rest_should_retry(&w, "POST", 0, NULL, 1, 1, 10), 0, "writes are not");
	cr_assert_eq(kube_rest_should_retry(&w, "DELETE", 0, NULL, 1, 1, 10), 0);
	cr_assert_eq(kube_rest_should_retry(&w, "GET", 0, NULL, 0, 1, 10), 0, "connection refused");
	cr_assert_eq(kube_rest_should_retry(&w, "GET", 503, "1", 0, 1, 0), 0, "retries off");
}

Test(kube_rest_policy, query_escape)
{
	buf b = BUF_INIT(256);
	kube_query_escape(&b, "app=x,tier in (a, b)");
	cr_assert_str_eq(buf_cstr(&b), "app%3Dx%2Ctier%20in%20%28a%2C%20b%29");
	buf_free(&b);
}

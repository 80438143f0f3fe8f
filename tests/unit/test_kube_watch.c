/*
 * kube/watch: the line decoder under random splits, event parsing, and the
 * list/watch/resume/re-list loop against a scripted local server.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/objects.h"
#include "kube/watch.h"
#include "tests/unit/kube_fake_client.h"
#include "tests/unit/kube_fake_http.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

/* ---- line decoder ----------------------------------------------------- */

struct lines {
	buf all;
	int n;
	int stop_at;
};

static int got_line(void *ud, const char *p, size_t n)
{
	struct lines *l = ud;
	buf_append(&l->all, p, n);
	buf_append_byte(&l->all, '|');
	l->n++;
	return l->stop_at && l->n == l->stop_at ? 1 : 0;
}

Test(kube_watch_decoder, random_splits_give_the_same_lines)
{
	buf in = BUF_INIT(1 << 20), want = BUF_INIT(1 << 20);
	srand(12345);
	for (int i = 0; i < 500; i++) {
		int len = rand() % 300;
		buf_printf(&in, "{\"type\":\"ADDED\",\"i\":%d,\"pad\":\"", i);
		buf_printf(&want, "{\"type\":\"ADDED\",\"i\":%d,\"pad\":\"", i);
		for (int k = 0; k < len; k++) {
			buf_append_byte(&in, 'a' + k % 26);
			buf_append_byte(&want, 'a' + k % 26);
		}
		buf_append_str(&in, i % 7 ? "\"}\n" : "\"}\r\n");
		buf_append_str(&want, "\"}|");
		if (i % 50 == 0)
			buf_append_str(&in, "\n"); /* empty lines are skipped */
	}
	for (int round = 0; round < 50; round++) {
		kube_line_decoder d;
		struct lines l = { BUF_INIT(1 << 20), 0, 0 };
		kube_line_decoder_init(&d, 4096);
		size_t off = 0;
		while (off < in.len) {
			size_t n = (size_t)(rand() % (round < 10 ? 3 : 700)) + 1;
			if (n > in.len - off)
				n = in.len - off;
			cr_assert_eq(kube_line_decoder_feed(&d, in.data + off, n, got_line, &l), 0);
			off += n;
		}
		cr_assert_eq(kube_line_decoder_pending(&d), 0);
		cr_assert_eq(l.n, 500);
		cr_assert_eq(l.all.len, want.len);
		cr_assert_eq(memcmp(l.all.data, want.data, want.len), 0, "round %d", round);
		kube_line_decoder_free(&d);
		buf_free(&l.all);
	}
	buf_free(&in);
	buf_free(&want);
}

Test(kube_watch_decoder, line_cap_whole_and_split)
{
	kube_line_decoder d;
	struct lines l = { BUF_INIT(4096), 0, 0 };
	char big[200];
	memset(big, 'x', sizeof(big));
	kube_line_decoder_init(&d, 100);
	cr_assert_eq(kube_line_decoder_feed(&d, "short\n", 6, got_line, &l), 0);
	/* a long line split across reads */
	int rc = 0;
	for (int i = 0; i < 4 && rc == 0; i++)
		rc = kube_line_decoder_feed(&d, big, 50, got_line, &l);
	cr_assert_eq(rc, ERR_TOOBIG);
	cr_assert(strstr(err_msg(), "longer than 100 bytes"));
	kube_line_decoder_free(&d);
	/* a long line in one read */
	kube_line_decoder_init(&d, 100);
	char one[202];
	memcpy(one, big, 200);
	one[200] = '\n';
	cr_assert_eq(kube_line_decoder_feed(&d, one, 201, got_line, &l), ERR_TOOBIG);
	kube_line_decoder_free(&d);
	buf_free(&l.all);
}

Test(kube_watch_decoder, stop_and_pending)
{
	kube_line_decoder d;
	struct lines l = { BUF_INIT(4096), 0, 2 };
	kube_line_decoder_init(&d, 0);
	cr_assert_eq(kube_line_decoder_feed(&d, "a\nb\nc\n", 6, got_line, &l), 1);
	cr_assert_eq(l.n, 2);
	kube_line_decoder_free(&d);
	kube_line_decoder_init(&d, 0);
	cr_assert_eq(kube_line_decoder_feed(&d, "{\"half", 6, got_line, &l), 0);
	cr_assert_eq(kube_line_decoder_pending(&d), 6);
	kube_line_decoder_free(&d);
	buf_free(&l.all);
}

Test(kube_watch_event, parse_types_and_errors)
{
	kube_watch_event ev;
	const char *s = "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p\","
			"\"resourceVersion\":\"42\"}}}";
	cr_assert_eq(kube_watch_event_parse(&ev, s, strlen(s)), 0);
	cr_assert_eq(ev.type, KUBE_WATCH_MODIFIED);
	cr_assert_str_eq(ev.resource_version, "42");
	kube_watch_event_clear(&ev);
	s = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":\"99\"}}}";
	cr_assert_eq(kube_watch_event_parse(&ev, s, strlen(s)), 0);
	cr_assert_eq(ev.type, KUBE_WATCH_BOOKMARK);
	cr_assert_str_eq(ev.resource_version, "99");
	kube_watch_event_clear(&ev);
	s = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}";
	cr_assert_eq(kube_watch_event_parse(&ev, s, strlen(s)), 0);
	cr_assert_eq(ev.type, KUBE_WATCH_ERROR);
	kube_watch_event_clear(&ev);
	const char *bad[] = { "{\"type\":\"SOMETHING\",\"object\":{}}", "{\"type\":\"ADDED\"}",
			      "{\"type\":\"ADDED\",\"object\":[1]}", "[]", "{", "\"ADDED\"" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(kube_watch_event_parse(&ev, bad[i], strlen(bad[i])), ERR_INVALID, "%s", bad[i]);
}

/* ---- the loop against a local server ---------------------------------- */

static fake_http *srv;
static kube_client *kc;

static void setup(void)
{
	srv = fake_http_start();
	kc = fake_kube_client(srv->url, NULL, "    token: t\n");
}

static void teardown(void)
{
	kube_client_free(kc);
	fake_http_stop(srv);
}

TestSuite(kube_watch, .init = setup, .fini = teardown, .timeout = 60);

struct seen {
	char log[4096];
	int n;
	int stop_after;
};

static int on_event(void *ud, const kube_watch_event *ev)
{
	struct seen *s = ud;
	static const char *names[] = { "", "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR", "SYNC" };
	const char *name = kube_obj_name(ev->object) ? kube_obj_name(ev->object) : "-";
	size_t l = strlen(s->log);
	snprintf(s->log + l, sizeof(s->log) - l, "%s:%s@%s ", names[ev->type], name,
		 ev->resource_version ? ev->resource_version : "-");
	int n = __atomic_add_fetch(&s->n, 1, __ATOMIC_RELEASE); /* read by cancel_later */
	return s->stop_after && n >= s->stop_after ? 1 : 0;
}

#define POD(t, name, rv) "{\"type\":\"" t "\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name "\",\"resourceVersion\":\"" rv "\"}}}\n"

Test(kube_watch, list_watch_resume_on_eof_relist_on_expired_event)
{
	/* 1: the initial LIST */
	fake_http_push(srv, (fake_resp){ .status = 200, .body =
		"{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"10\"},\"items\":[{\"metadata\":{\"name\":\"a\"}}]}" });
	/* 2: a watch whose events arrive split mid-line, then EOF */
	fake_http_push(srv, (fake_resp){ .status = 200, .chunk_delay_ms = 10, .chunks = {
		"{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"na",
		"me\":\"b\",\"resourceVersion\":\"11\"}}}\n" POD("MODIFIED", "b", "12"),
		"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":\"15\"}}}\n" } });
	/* 3: resumed from 15: the resourceVersion is too old (HTTP 200 + ERROR) */
	fake_http_push(srv, (fake_resp){ .status = 200, .chunks = {
		"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
		"\"status\":\"Failure\",\"message\":\"too old resource version: 15 (20)\",\"reason\":\"Expired\",\"code\":410}}\n" } });
	/* 4: re-LIST */
	fake_http_push(srv, (fake_resp){ .status = 200, .body =
		"{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"20\"},\"items\":[]}" });
	/* 5: watch from 20; the callback stops at the DELETED */
	fake_http_push(srv, (fake_resp){ .status = 200, .chunks = { POD("DELETED", "b", "21"), POD("ADDED", "z", "22") } });

	struct seen s = { .stop_after = 6 };
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	kube_watch_stats st;
	o.path = "/api/v1/namespaces/ns/pods";
	o.label_selector = "app=x";
	o.deadline_ms = clock_mono_ms() + 30000;
	cr_assert_eq(kube_watch_run_stats(kc, &o, on_event, &s, &st), 0, "%s", err_msg());
	cr_assert_str_eq(s.log, "SYNC:-@10 ADDED:b@11 MODIFIED:b@12 BOOKMARK:-@15 SYNC:-@20 DELETED:b@21 ");
	cr_assert_eq(st.lists, 2);
	cr_assert_eq(st.watches, 3);
	cr_assert_eq(st.expired, 1);
	cr_assert_eq(st.bookmarks, 1);
	cr_assert_str_eq(fake_http_req(srv, 0).path, "/api/v1/namespaces/ns/pods?labelSelector=app%3Dx");
	/* the server-side timeout follows the 30 s deadline (less what has
	 * passed: seconds under valgrind) */
	int tos = 0;
	cr_assert_eq(sscanf(fake_http_req(srv, 1).path,
			    "/api/v1/namespaces/ns/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d", &tos), 1,
		     "%s", fake_http_req(srv, 1).path);
	cr_assert(tos >= 20 && tos <= 31, "timeoutSeconds=%d", tos);
	cr_assert(str_has_suffix(fake_http_req(srv, 1).path, "&resourceVersion=10&labelSelector=app%3Dx"),
		  "%s", fake_http_req(srv, 1).path);
	cr_assert(strstr(fake_http_req(srv, 2).path, "&resourceVersion=15&"), "resumed from the bookmark: %s",
		  fake_http_req(srv, 2).path);
	cr_assert(!strstr(fake_http_req(srv, 3).path, "watch=1"), "a LIST: %s", fake_http_req(srv, 3).path);
	cr_assert(strstr(fake_http_req(srv, 4).path, "&resourceVersion=20&"), "%s", fake_http_req(srv, 4).path);
}

Test(kube_watch, plain_410_relists_and_cut_stream_resumes)
{
	/* start from a given RV: no initial list */
	fake_http_push(srv, (fake_resp){ .status = 410, .body =
		"{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Gone\",\"code\":410}" });
	fake_http_push(srv, (fake_resp){ .status = 200, .body =
		"{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"50\"},\"items\":[]}" });
	/* a cut in the middle of an event: the half line is dropped, resume from 51 */
	fake_http_push(srv, (fake_resp){ .status = 200, .drop_after_chunks = 1, .chunks = {
		POD("ADDED", "p", "51"), "{\"type\":\"MODIFIED\",\"obj" } });
	fake_http_push(srv, (fake_resp){ .status = 200, .chunks = { POD("MODIFIED", "p", "52") } });

	struct seen s = { .stop_after = 3 };
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	o.path = "/api/v1/namespaces/ns/pods";
	o.resource_version = "5";
	o.deadline_ms = clock_mono_ms() + 30000;
	cr_assert_eq(kube_watch_run(kc, &o, on_event, &s), 0, "%s", err_msg());
	cr_assert_str_eq(s.log, "SYNC:-@50 ADDED:p@51 MODIFIED:p@52 ");
	cr_assert(strstr(fake_http_req(srv, 0).path, "resourceVersion=5"));
	cr_assert(strstr(fake_http_req(srv, 3).path, "resourceVersion=51"), "%s", fake_http_req(srv, 3).path);
}

Test(kube_watch, a_forbidden_watch_is_final)
{
	fake_http_push(srv, (fake_resp){ .status = 403, .body =
		"{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"pods is forbidden: nope\","
		"\"reason\":\"Forbidden\",\"code\":403}" });
	struct seen s = { 0 };
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	o.path = "/api/v1/namespaces/ns/pods";
	o.resource_version = "1";
	cr_assert_eq(kube_watch_run(kc, &o, on_event, &s), ERR_FORBIDDEN);
	cr_assert(strstr(err_msg(), "pods is forbidden: nope"), "%s", err_msg());
	cr_assert_eq(fake_http_requests(srv), 1);
}

Test(kube_watch, an_error_event_that_is_not_410_is_reported)
{
	fake_http_push(srv, (fake_resp){ .status = 200, .chunks = {
		"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"message\":\"no access\","
		"\"reason\":\"Forbidden\",\"code\":403}}\n" } });
	struct seen s = { 0 };
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	o.path = "/api/v1/namespaces/ns/pods";
	o.resource_version = "1";
	cr_assert_eq(kube_watch_run(kc, &o, on_event, &s), ERR_FORBIDDEN);
	cr_assert(strstr(err_msg(), "no access"), "%s", err_msg());
}

Test(kube_watch, a_server_that_closes_at_once_is_given_up_on)
{
	srv->dflt = (fake_resp){ .status = 200, .chunks = { "" } };
	srv->dflt.chunks[0] = NULL;
	srv->dflt.body = "";
	struct seen s = { 0 };
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	o.path = "/api/v1/namespaces/ns/pods";
	o.resource_version = "1";
	o.max_failures = 3;
	cr_assert_eq(kube_watch_run(kc, &o, on_event, &s), ERR_AGAIN);
	/* 3 watches; a GET that finds its kept-alive connection closed by
	 * then may be sent once more (kube/rest.h), on a slow machine */
	int n = fake_http_requests(srv);
	cr_assert(n >= 3 && n <= 6, "%d requests", n);
}

struct canceller {
	kube_cancel *k;
	int ms;
	const int *events; /* when set: wait for the first event first (slow machines, valgrind) */
};

static void *cancel_later(void *arg)
{
	struct canceller *c = arg;
	for (int i = 0; c->events && i < 2000 && __atomic_load_n(c->events, __ATOMIC_ACQUIRE) < 1; i++)
		clock_sleep_ms(10);
	clock_sleep_ms(c->ms);
	kube_cancel_request(c->k);
	return NULL;
}

Test(kube_watch, cancelled_from_another_thread_while_idle)
{
	/* an event, then silence for a long time */
	fake_http_push(srv, (fake_resp){ .status = 200, .chunk_delay_ms = 0, .chunks = {
		POD("ADDED", "p", "2") } , .drop_after_chunks = 0 });
	srv->dflt = (fake_resp){ .status = 200, .delay_ms = 20000, .body = "" };
	kube_cancel k = KUBE_CANCEL_INIT;
	struct seen s = { 0 };
	struct canceller cc = { &k, 300, &s.n };
	pthread_t t;
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	o.path = "/api/v1/namespaces/ns/pods";
	o.resource_version = "1";
	o.cancel = &k;
	pthread_create(&t, NULL, cancel_later, &cc);
	int64_t t0 = clock_mono_ms();
	cr_assert_eq(kube_watch_run(kc, &o, on_event, &s), ERR_CANCELLED, "%s", err_msg());
	cr_assert_lt(clock_mono_ms() - t0, 15000);
	cr_assert_str_eq(s.log, "ADDED:p@2 ");
	pthread_join(t, NULL);
}

Test(kube_watch, deadline_ends_the_watch)
{
	srv->dflt = (fake_resp){ .status = 200, .delay_ms = 20000, .body = "" };
	struct seen s = { 0 };
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	o.path = "/api/v1/namespaces/ns/pods";
	o.resource_version = "1";
	o.deadline_ms = clock_mono_ms() + 3000;
	cr_assert_eq(kube_watch_run(kc, &o, on_event, &s), ERR_TIMEOUT, "%s", err_msg());
	/* the request asked the server to end it by the deadline too */
	int tos = 0;
	cr_assert_geq(fake_http_requests(srv), 1);
	const char *ts = strstr(fake_http_req(srv, 0).path, "timeoutSeconds=");
	cr_assert(ts && sscanf(ts, "timeoutSeconds=%d", &tos) == 1, "%s", fake_http_req(srv, 0).path);
	cr_assert(tos >= 1 && tos <= 4, "timeoutSeconds=%d for a 3 s deadline", tos);
}

static int fail_cb(void *ud, const kube_watch_event *ev)
{
	(void)ud;
	(void)ev;
	return err_set(ERR_CONFLICT, "callback says no");
}

Test(kube_watch, callback_error_is_returned)
{
	fake_http_push(srv, (fake_resp){ .status = 200, .body =
		"{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[]}" });
	struct seen s = { 0 };
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	o.path = "/api/v1/namespaces/ns/pods";
	cr_assert_eq(kube_watch_run(kc, &o, fail_cb, &s), ERR_CONFLICT);
	cr_assert_str_eq(err_msg(), "callback says no");
}


/* kube/watch: list, watch, resume, re-list. See watch.h for the design. */
#include "kube/watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/rest.h"
#include "kube/status.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

/* ---- line decoder ----------------------------------------------------- */

void kube_line_decoder_init(kube_line_decoder *d, size_t max_line)
{
	buf_init(&d->partial, max_line ? max_line : KUBE_WATCH_MAX_LINE);
	d->max = max_line ? max_line : KUBE_WATCH_MAX_LINE;
}

void kube_line_decoder_free(kube_line_decoder *d)
{
	buf_free(&d->partial);
}

size_t kube_line_decoder_pending(const kube_line_decoder *d)
{
	return d->partial.len;
}

static int emit_line(const char *p, size_t n, kube_line_cb on_line, void *ud)
{
	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n == 0)
		return 0;
	return on_line(ud, p, n);
}

int kube_line_decoder_feed(kube_line_decoder *d, const char *p, size_t n, kube_line_cb on_line,
			   void *ud)
{
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		if (!nl) {
			if (buf_append(&d->partial, p, n) < 0)
				return err_set(ERR_TOOBIG, "watch: an event line is longer than %zu bytes",
					       d->max);
			return 0;
		}
		size_t len = (size_t)(nl - p);
		int rc;
		if (d->partial.len == 0) {
			/* The common case: a whole line in this read, no copy. */
			if (len > d->max)
				return err_set(ERR_TOOBIG, "watch: an event line is longer than %zu bytes",
					       d->max);
			rc = emit_line(p, len, on_line, ud);
		} else {
			if (buf_append(&d->partial, p, len) < 0)
				return err_set(ERR_TOOBIG, "watch: an event line is longer than %zu bytes",
					       d->max);
			rc = emit_line(d->partial.data, d->partial.len, on_line, ud);
			buf_reset(&d->partial);
		}
		if (rc != 0)
			return rc;
		p = nl + 1;
		n -= len + 1;
	}
	return 0;
}

/* ---- events ----------------------------------------------------------- */

void kube_watch_event_clear(kube_watch_event *ev)
{
	if (!ev)
		return;
	cJSON_Delete(ev->object);
	memset(ev, 0, sizeof(*ev));
}

static const char *object_rv(const cJSON *obj)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *rv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
	return cJSON_IsString(rv) ? rv->valuestring : NULL;
}

int kube_watch_event_parse(kube_watch_event *out, const char *line, size_t len)
{
	static const struct { const char *name; int type; } types[] = {
		{ "ADDED", KUBE_WATCH_ADDED },       { "MODIFIED", KUBE_WATCH_MODIFIED },
		{ "DELETED", KUBE_WATCH_DELETED },   { "BOOKMARK", KUBE_WATCH_BOOKMARK },
		{ "ERROR", KUBE_WATCH_ERROR },
	};
	cJSON *root;

	memset(out, 0, sizeof(*out));
	root = cJSON_ParseWithLength(line, len);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return err_set(ERR_INVALID, "watch: an event is not a JSON object");
	}
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "type");
	cJSON *obj = cJSON_DetachItemFromObjectCaseSensitive(root, "object");
	int type = 0;
	for (size_t i = 0; cJSON_IsString(t) && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(t->valuestring, types[i].name))
			type = types[i].type;
	int rc = 0;
	if (!type)
		rc = err_set(ERR_INVALID, "watch: unknown event type %s",
			     cJSON_IsString(t) ? t->valuestring : "(none)");
	else if (!cJSON_IsObject(obj))
		rc = err_set(ERR_INVALID, "watch: %s event without an object", t->valuestring);
	cJSON_Delete(root);
	if (rc < 0) {
		cJSON_Delete(obj);
		return rc;
	}
	out->type = type;
	out->object = obj;
	out->resource_version = object_rv(obj);
	return 0;
}

/* ---- the run loop ----------------------------------------------------- */

struct wstate {
	kube_client *c;
	const kube_watch_opts *o;
	kube_watch_cb cb;
	void *ud;
	kube_watch_stats *st;
	kube_line_decoder dec;
	char rv[256];
	int gone;       /* the stream said 410 */
	int cb_stop;    /* the callback asked to stop (1) or failed (<0) */
	int events;     /* events in this watch request */
};

static void set_rv(struct wstate *w, const char *rv)
{
	if (rv && *rv)
		str_copy(w->rv, sizeof(w->rv), rv);
}

/* An ERROR event. Not inlined: its 8 KiB Status would sit in on_line's
 * frame for every event of every watch. */
static __attribute__((noinline)) int on_error_event(struct wstate *w, kube_watch_event *ev)
{
	kube_status st;
	int rc;

	kube_status_from_json(&st, ev->object);
	kube_watch_event_clear(ev);
	/* An expired resourceVersion arrives as HTTP 200 with an ERROR
	 * event (s/apiserver/pkg/storage/cacher, errors.NewResourceExpired);
	 * reflector.go treats 410 Expired and Gone alike: re-list. */
	if (st.code == 410 || !strcmp(st.reason, "Expired") || !strcmp(st.reason, "Gone")) {
		w->gone = 1;
		return 1;
	}
	if (!st.code)
		st.code = 500;
	/* Other errors end this request: transient ones (5xx) make
	 * the loop reconnect, the rest are final. */
	rc = kube_status_err(&st, "watch");
	kube_status_set_last(&st);
	return rc;
}

static int on_line(void *ud, const char *line, size_t len)
{
	struct wstate *w = ud;
	kube_watch_event ev;
	int rc = kube_watch_event_parse(&ev, line, len);

	if (rc < 0)
		return rc;
	if (ev.type == KUBE_WATCH_ERROR)
		return on_error_event(w, &ev);
	set_rv(w, ev.resource_version);
	w->events++;
	if (w->st) {
		w->st->events++;
		if (ev.type == KUBE_WATCH_BOOKMARK)
			w->st->bookmarks++;
	}
	rc = w->cb(w->ud, &ev);
	kube_watch_event_clear(&ev);
	if (rc != 0) {
		w->cb_stop = rc;
		return rc;
	}
	return 0;
}

static int on_data(void *ud, const char *p, size_t n)
{
	struct wstate *w = ud;
	return kube_line_decoder_feed(&w->dec, p, n, on_line, w);
}

static int add_param(buf *b, const char *key, const char *val)
{
	int rc = 0;
	if (!val || !*val)
		return 0;
	rc |= buf_append_str(b, strchr(buf_cstr(b), '?') ? "&" : "?");
	rc |= buf_append_str(b, key);
	rc |= buf_append_byte(b, '=');
	rc |= kube_query_escape(b, val);
	return rc ? ERR_TOOBIG : 0;
}

static int append_selectors(buf *b, const kube_watch_opts *o)
{
	int rc = add_param(b, "labelSelector", o->label_selector);
	return rc ? rc : add_param(b, "fieldSelector", o->field_selector);
}

static int do_list(struct wstate *w)
{
	const kube_watch_opts *o = w->o;
	buf path = BUF_INIT(16384);
	cJSON *list = NULL;
	int rc;

	buf_append_str(&path, o->path);
	if ((rc = append_selectors(&path, o)) < 0) {
		buf_free(&path);
		return err_set(rc, "watch: selectors too long");
	}
	if (w->st)
		w->st->lists++;
	rc = kube_rest_json(&list, w->c, "GET", buf_cstr(&path),
			    NULL, o->deadline_ms);
	buf_free(&path);
	if (rc < 0)
		return rc;
	w->rv[0] = '\0';
	set_rv(w, object_rv(list));
	kube_watch_event ev = { KUBE_WATCH_SYNC, list, w->rv[0] ? w->rv : NULL };
	if (w->st)
		w->st->events++;
	rc = w->cb(w->ud, &ev);
	cJSON_Delete(list);
	if (rc != 0)
		w->cb_stop = rc;
	return 0;
}

static int backoff_sleep(const kube_watch_opts *o, int failures)
{
	int64_t ms = 100;
	for (int i = 1; i < failures && ms < 5000; i++)
		ms *= 2;
	if (ms > 5000)
		ms = 5000;
	int64_t until = clock_mono_ms() + ms;
	while (clock_mono_ms() < until) {
		if (kube_cancelled(o->cancel))
			return err_set(ERR_CANCELLED, "watch %s: cancelled", o->path);
		if (o->deadline_ms && clock_mono_ms() >= o->deadline_ms)
			return err_set(ERR_TIMEOUT, "watch %s: deadline reached", o->path);
		clock_sleep_ms(50);
	}
	return 0;
}

int kube_watch_run_stats(kube_client *c, const kube_watch_opts *o, kube_watch_cb cb, void *ud,
			 kube_watch_stats *stats)
{
	struct wstate w = { 0 };
	int max_failures = o->max_failures > 0 ? o->max_failures : 10;
	int failures = 0;
	int need_list = !o->resource_version;
	int rc = 0;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	if (!o->path || o->path[0] != '/')
		return err_set(ERR_INVALID, "watch: the collection path must start with '/'");
	w.c = c;
	w.o = o;
	w.cb = cb;
	w.ud = ud;
	w.st = stats;
	if (o->resource_version)
		str_copy(w.rv, sizeof(w.rv), o->resource_version);

	for (;;) {
		if (kube_cancelled(o->cancel)) {
			rc = err_set(ERR_CANCELLED, "watch %s: cancelled", o->path);
			break;
		}
		if (o->deadline_ms && clock_mono_ms() >= o->deadline_ms) {
			rc = err_set(ERR_TIMEOUT, "watch %s: deadline reached", o->path);
			break;
		}
		if (need_list) {
			rc = do_list(&w);
			if (w.cb_stop) {
				rc = w.cb_stop < 0 ? w.cb_stop : 0;
				break;
			}
			if (rc == ERR_AGAIN && ++failures < max_failures) {
				if ((rc = backoff_sleep(o, failures)) < 0)
					break;
				continue;
			}
			if (rc < 0)
				break;
			need_list = 0;
		}

		/* The watch request from the last resourceVersion. */
		buf path = BUF_INIT(16384);
		int timeout = o->timeout_seconds > 0 ? o->timeout_seconds : 300;
		if (o->deadline_ms) {
			int64_t left = clock_remaining_ms(o->deadline_ms) / 1000 + 1;
			if (left < timeout)
				timeout = (int)left;
		}
		buf_append_str(&path, o->path);
		buf_printf(&path, "%swatch=1&allowWatchBookmarks=true&timeoutSeconds=%d",
			   strchr(o->path, '?') ? "&" : "?", timeout);
		if (w.rv[0]) {
			buf_append_str(&path, "&resourceVersion=");
			kube_query_escape(&path, w.rv);
		}
		if (append_selectors(&path, o) < 0) {
			buf_free(&path);
			rc = err_set(ERR_TOOBIG, "watch: selectors too long");
			break;
		}
		kube_request req = KUBE_REQUEST_INIT;
		req.path = buf_cstr(&path);
		req.deadline_ms = o->deadline_ms;
		req.cancel = o->cancel;
		req.on_data = on_data;
		req.ud = &w;
		req.verb = "WATCH";
		req.on_tick = o->on_tick;
		req.tick_ud = o->tick_ud;
		kube_line_decoder_init(&w.dec, o->max_line);
		w.gone = 0;
		w.events = 0;
		if (stats)
			stats->watches++;
		int64_t started = clock_mono_ms();
		rc = kube_rest_do(NULL, c, &req);
		size_t pending = kube_line_decoder_pending(&w.dec);
		kube_line_decoder_free(&w.dec);
		buf_free(&path);

		if (w.cb_stop) {
			rc = w.cb_stop < 0 ? w.cb_stop : 0;
			break;
		}
		if (w.gone || rc == ERR_GONE) {
			/* reflector.go: a 410 means our resourceVersion is gone
			 * from the watch cache; list again. */
			if (stats)
				stats->expired++;
			need_list = 1;
			if (w.events == 0 && ++failures >= max_failures) {
				rc = err_set(ERR_GONE, "watch %s: resourceVersion keeps expiring", o->path);
				break;
			}
			continue;
		}
		if (rc == ERR_CANCELLED || rc == ERR_TIMEOUT)
			break;
		if (rc == 0 && pending == 0) {
			/* A normal end of stream: resume from the last RV. Count
			 * quick empty streams so a server that closes at once
			 * cannot make us spin. */
			if (w.events > 0 || clock_mono_ms() - started >= 1000)
				failures = 0;
			else if (++failures >= max_failures) {
				rc = err_set(ERR_AGAIN, "watch %s: the server keeps ending the stream "
					     "at once", o->path);
				break;
			}
			if (failures && (rc = backoff_sleep(o, failures)) < 0)
				break;
			continue;
		}
		if (rc == 0)
			rc = err_set(ERR_AGAIN, "watch %s: the stream ended inside an event", o->path);
		/* Transport failures, cut or undecodable streams, 5xx: reconnect
		 * from the last RV, with backoff. Anything else (a 4xx Status,
		 * a line over the cap) is final. */
		if (rc != ERR_AGAIN && (rc != ERR_INVALID || kube_status_last()))
			break;
		if (w.events > 0)
			failures = 0;
		if (++failures >= max_failures)
			break;
		if ((rc = backoff_sleep(o, failures)) < 0)
			break;
	}
	return rc;
}

int kube_watch_run(kube_client *c, const kube_watch_opts *opts, kube_watch_cb cb, void *ud)
{
	return kube_watch_run_stats(c, opts, cb, ud, NULL);
}

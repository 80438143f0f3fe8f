/*
 * sse: server-sent events encoder and incremental parser (see sse.h).
 */
#include "runner/sse.h"

#include <stdio.h>
#include <string.h>

#include "util/err.h"

int runner_sse_format(buf *out, unsigned long long id, const char *event, const char *data, size_t len)
{
	int rc = buf_printf(out, "id: %llu\nevent: %s\ndata: ", id, event);

	if (!rc)
		rc = buf_append(out, data, len);
	if (!rc)
		rc = buf_append_str(out, "\n\n");
	return rc;
}

void runner_sse_init(runner_sse_parser *p, size_t max_event, runner_sse_fn fn, void *ctx)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->line, max_event + 64);
	buf_init(&p->data, max_event);
	p->fn = fn;
	p->ctx = ctx;
}

void runner_sse_free(runner_sse_parser *p)
{
	buf_free(&p->line);
	buf_free(&p->data);
}

static int dispatch(runner_sse_parser *p)
{
	runner_sse_event ev;
	int rc = 0;

	/* the id is remembered even for an event without data (the standard) */
	snprintf(p->last_id, sizeof(p->last_id), "%s", p->id);
	if (p->data.len || p->event[0]) {
		if (p->data.len && p->data.data[p->data.len - 1] == '\n')
			p->data.data[--p->data.len] = '\0';
		ev.id = p->id;
		ev.event = p->event[0] ? p->event : "message";
		ev.data = buf_cstr(&p->data);
		ev.data_len = p->data.len;
		rc = p->fn ? p->fn(p->ctx, &ev) : 0;
	}
	buf_reset(&p->data);
	p->event[0] = '\0';
	return rc;
}

static int line_done(runner_sse_parser *p)
{
	const char *l = buf_cstr(&p->line), *colon, *val;
	size_t n = p->line.len, fl, vl;
	int rc = 0;

	if (n == 0) {
		rc = dispatch(p);
		buf_reset(&p->line);
		return rc;
	}
	if (l[0] == ':') {
		buf_reset(&p->line);
		return 0;
	}
	colon = memchr(l, ':', n);
	fl = colon ? (size_t)(colon - l) : n;
	val = colon ? colon + 1 : l + n;
	if (colon && *val == ' ')
		val++;
	vl = (size_t)(l + n - val);
	if (fl == 4 && !memcmp(l, "data", 4)) {
		if ((rc = buf_append(&p->data, val, vl)) || (rc = buf_append_byte(&p->data, '\n'))) {
			buf_reset(&p->line);
			return err_set(ERR_TOOBIG, "server-sent event larger than %zu bytes", p->data.max);
		}
	} else if (fl == 5 && !memcmp(l, "event", 5)) {
		snprintf(p->event, sizeof(p->event), "%.*s", (int)(vl < 63 ? vl : 63), val);
	} else if (fl == 2 && !memcmp(l, "id", 2)) {
		if (!memchr(val, '\0', vl))
			snprintf(p->id, sizeof(p->id), "%.*s", (int)(vl < 127 ? vl : 127), val);
	}
	/* retry and unknown fields are ignored */
	buf_reset(&p->line);
	return 0;
}

int runner_sse_feed(runner_sse_parser *p, const char *data, size_t n)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		char c = data[i];

		if (p->cr) {
			p->cr = 0;
			if (c == '\n')
				continue;
		}
		if (c == '\r' || c == '\n') {
			p->cr = c == '\r';
			if ((rc = line_done(p)))
				return rc;
			continue;
		}
		/* append runs of ordinary bytes in one go */
		size_t j = i;
		while (j < n && data[j] != '\r' && data[j] != '\n')
			j++;
		if (buf_append(&p->line, data + i, j - i))
			return err_set(ERR_TOOBIG, "server-sent event line longer than %zu bytes", p->line.max);
		i = j - 1;
	}
	return 0;
}

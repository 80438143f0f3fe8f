/*
 * sse: server-sent events (the text/event-stream format of the HTML
 * standard, "9.2 Server-sent events"): the encoder serve uses and the
 * incremental parser submit uses. Fields: id, event, data (several data
 * lines are joined with "\n"); a blank line dispatches; lines starting with
 * ':' are comments (keep-alives). Lines end with \n, \r\n or \r.
 */
#ifndef RUNNER_SSE_H
#define RUNNER_SSE_H

#include <stddef.h>

#include "util/buf.h"

/* Append one event. data must not contain newlines (ours is JSON). */
int runner_sse_format(buf *out, unsigned long long id, const char *event, const char *data, size_t len);

typedef struct runner_sse_event {
	const char *id;      /* "" when the event had none */
	const char *event;   /* "message" when the event had none */
	const char *data;
	size_t data_len;
} runner_sse_event;

/* Called for each dispatched event; a non-zero return stops the feed and
 * is returned by runner_sse_feed(). */
typedef int (*runner_sse_fn)(void *ctx, const runner_sse_event *ev);

typedef struct runner_sse_parser {
	buf line;            /* the partial line */
	buf data;            /* the event's data so far */
	char id[128];
	char last_id[128];   /* the id of the last dispatched event (Last-Event-ID) */
	char event[64];
	int cr;              /* the previous chunk ended in '\r' */
	runner_sse_fn fn;
	void *ctx;
} runner_sse_parser;

/* max_event caps one event's data (and one line). */
void runner_sse_init(runner_sse_parser *p, size_t max_event, runner_sse_fn fn, void *ctx);
void runner_sse_free(runner_sse_parser *p);

/* Feed n bytes. 0, ERR_TOOBIG past the cap, or the callback's code. */
int runner_sse_feed(runner_sse_parser *p, const char *data, size_t n);

#endif

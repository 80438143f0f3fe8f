/* libFuzzer target: the server-sent events parser `ci-fixer submit` feeds
 * with whatever the server sends (runner/sse.c), on arbitrary bytes cut
 * into chunks at arbitrary places. Every dispatched event must respect the
 * cap and carry a name; feeding the same bytes whole or in pieces must give
 * the same events (the parser is incremental). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runner/sse.h"

#define CAP 4096

typedef struct seen {
	size_t n;
	uint64_t hash;
} seen;

static int on_event(void *ctx, const runner_sse_event *ev)
{
	seen *s = ctx;

	if (ev->data_len > CAP || !ev->event || !ev->event[0] || !ev->id || strlen(ev->data) > ev->data_len)
		abort();
	s->n++;
	for (size_t i = 0; i < ev->data_len; i++)
		s->hash = s->hash * 1099511628211ULL ^ (unsigned char)ev->data[i];
	for (const char *p = ev->event; *p; p++)
		s->hash = s->hash * 1099511628211ULL ^ (unsigned char)*p;
	return 0;
}

static int feed(seen *s, const uint8_t *data, size_t size, size_t step)
{
	runner_sse_parser p;
	int rc = 0;

	runner_sse_init(&p, CAP, on_event, s);
	for (size_t off = 0; off < size && !rc; off += step)
		rc = runner_sse_feed(&p, (const char *)data + off, size - off < step ? size - off : step);
	runner_sse_free(&p);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	seen whole = { 0, 14695981039346656037ULL }, pieces = { 0, 14695981039346656037ULL };
	size_t step;
	int rc1, rc2;

	if (size < 1)
		return 0;
	step = 1 + data[0] % 17;
	rc1 = feed(&whole, data + 1, size - 1, size);
	rc2 = feed(&pieces, data + 1, size - 1, step);
	if (!rc1 && !rc2 && (whole.n != pieces.n || whole.hash != pieces.hash))
		abort();
	return 0;
}

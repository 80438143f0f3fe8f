/* libFuzzer target: the encoders of what serve sends to clients, the run
 * document (runner_run_doc_encode: GET /v1/runs/{id}, the list, the last
 * server-sent event) and the SSE record (runner_sse_format), fed documents
 * built from arbitrary bytes: any byte in any string (NUL, controls,
 * invalid UTF-8, quotes, backslashes), any counts and numbers, and a random
 * output cap.
 *
 * What must hold, else abort():
 *  - the encoder never writes past its buffer's cap: it returns an error
 *    (ERR_TOOBIG) instead, and with an unlimited buffer it succeeds;
 *  - the JSON is valid UTF-8 with no raw control character (so it is one
 *    SSE data line: runner_sse_format requires no newline in data);
 *  - it decodes again (runner_run_doc_decode) to the same phase, reason,
 *    message, ids, command outcomes, exit codes, byte counts, hashes and
 *    truncation flags; strings and outputs that were valid UTF-8 without
 *    NUL come back byte for byte; without output, no output field appears;
 *  - the SSE record, fed to the SSE parser in random chunks (split inside
 *    "\r\n" too), gives back exactly one event with the same id, event
 *    name and data.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/result.h"
#include "runner/sse.h"
#include "util/buf.h"

typedef struct src {
	const uint8_t *p;
	size_t n;
} src;

static unsigned take_byte(src *s)
{
	unsigned v;

	if (!s->n)
		return 0;
	v = *s->p;
	s->p++;
	s->n--;
	return v;
}

static uint64_t take_u64(src *s, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = (v << 8) | take_byte(s);
	return v;
}

/* A string of a length chosen by the input (up to max), as a malloc'd copy
 * with a NUL after it; *len gets its length (it may hold NULs). */
static char *take_str(src *s, size_t max, size_t *len)
{
	size_t n = take_byte(s);
	char *out;

	if (n == 255)
		n = (size_t)take_u64(s, 2);
	if (n > max)
		n %= max + 1;
	if (n > s->n)
		n = s->n;
	if (!(out = malloc(n + 1)))
		abort();
	memcpy(out, s->p, n);
	out[n] = '\0';
	s->p += n;
	s->n -= n;
	if (len)
		*len = n;
	return out;
}

/* 1 when the n bytes are RFC 3629 UTF-8 (no overlong form, no surrogate,
 * nothing past U+10FFFF) and hold no NUL. */
static int utf8_clean(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i];
		size_t len;
		uint32_t cp;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			len = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += len;
	}
	return 1;
}

/* A decoded string equals what was encoded, when that was clean text. */
static void same_str(const char *orig, size_t olen, const char *back)
{
	if (!orig || !utf8_clean((const unsigned char *)orig, olen))
		return;
	if (olen == 0) {
		if (back && *back)
			abort();
		return;
	}
	if (!back || strlen(back) != olen || memcmp(orig, back, olen))
		abort();
}

typedef struct got {
	int n;
	char id[32];
	char event[64];
	buf data;
} got;

static int on_event(void *ctx, const runner_sse_event *ev)
{
	got *g = ctx;

	g->n++;
	snprintf(g->id, sizeof(g->id), "%s", ev->id);
	snprintf(g->event, sizeof(g->event), "%s", ev->event);
	buf_reset(&g->data);
	if (buf_append(&g->data, ev->data, ev->data_len))
		abort();
	return 0;
}

static void sse_roundtrip(src *s, const char *json, size_t len, unsigned long long id)
{
	static const char *const names[] = { "phase", "command", "output", "commandDone", "result" };
	const char *name = names[take_byte(s) % 5];
	buf rec = BUF_INIT(64u << 20);
	runner_sse_parser p;
	got g;
	size_t off = 0;
	char want_id[32];

	memset(&g, 0, sizeof(g));
	buf_init(&g.data, 64u << 20);
	if (runner_sse_format(&rec, id, name, json, len))
		abort();
	runner_sse_init(&p, len + 16, on_event, &g);
	while (off < rec.len) {
		size_t k = 1 + take_byte(s) % 64;

		if (k > rec.len - off)
			k = rec.len - off;
		if (runner_sse_feed(&p, rec.data + off, k))
			abort();
		off += k;
	}
	snprintf(want_id, sizeof(want_id), "%llu", id);
	if (g.n != 1 || strcmp(g.id, want_id) || strcmp(g.event, name) || g.data.len != len ||
	    (len && memcmp(g.data.data, json, len)))
		abort();
	runner_sse_free(&p);
	buf_free(&g.data);
	buf_free(&rec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	src s = { data, size };
	runner_run_doc *d = runner_run_doc_new(), *back = NULL;
	size_t len_reason = 0, len_msg = 0, len_logs = 0, len_patch = 0, len_id = 0;
	size_t cap;
	unsigned flags;
	int with_output, rc;
	buf out = BUF_INIT(64u << 20), capped;

	if (!d)
		abort();
	flags = take_byte(&s);
	with_output = flags & 1;
	d->phase = (enum runner_phase)(take_byte(&s) % RUNNER_NPHASES);
	/* the id is what the API hands out: a run id (the decoder needs one) */
	d->id = take_str(&s, 40, &len_id);
	if (!len_id || !utf8_clean((unsigned char *)d->id, len_id)) {
		free(d->id);
		d->id = strdup("r-0123456789abcdef");
		len_id = strlen(d->id);
	}
	d->reason = take_str(&s, 64, &len_reason);
	d->message = take_str(&s, 1024, &len_msg);
	/* times stay before the year 10000 (RFC 3339 has four-digit years) */
	d->created_ms = (int64_t)(take_u64(&s, 6) % 253402000000000ULL);
	d->started_ms = flags & 2 ? d->created_ms + (int64_t)take_u64(&s, 3) : 0;
	d->finished_ms = flags & 4 ? d->started_ms + (int64_t)take_u64(&s, 3) : 0;
	if (flags & 8) {
		d->job_namespace = take_str(&s, 63, NULL);
		d->job_name = take_str(&s, 63, NULL);
	}
	d->ncmds = take_byte(&s) % 6;
	if (d->ncmds && !(d->cmds = calloc(d->ncmds, sizeof(*d->cmds))))
		abort();
	for (size_t i = 0; i < d->ncmds; i++) {
		runner_cmd_result *c = &d->cmds[i];
		unsigned cf = take_byte(&s);

		if (cf & 1) {
			c->argc = 1 + take_byte(&s) % 4;
			if (!(c->argv = calloc(c->argc + 1, sizeof(char *))))
				abort();
			for (size_t j = 0; j < c->argc; j++)
				c->argv[j] = take_str(&s, 200, NULL);
		} else {
			c->shell = take_str(&s, 400, NULL);
		}
		c->outcome = (enum runner_outcome)(take_byte(&s) % 5);
		c->exit_code = (int)(take_byte(&s)) - (cf & 2 ? 128 : 0);
		c->duration_ms = (int64_t)take_u64(&s, 4);
		c->out = take_str(&s, 4096, &c->out_len);
		c->err = take_str(&s, 1024, &c->err_len);
		c->out_bytes = take_u64(&s, 5);
		c->err_bytes = take_u64(&s, 5);
		for (int k = 0; k < 64; k++) {
			c->out_sha256[k] = "0123456789abcdef"[take_byte(&s) & 15];
			c->err_sha256[k] = "0123456789abcdef"[(k * 7) & 15];
		}
		if (cf & 4)
			c->err_sha256[0] = '\0';
		c->truncated = (cf >> 3) & 1;
	}
	if (flags & 16)
		d->logs = take_str(&s, 4096, &len_logs);
	if (flags & 32)
		d->patch = take_str(&s, 4096, &len_patch);
	d->queued_ms = flags & 64 ? (int64_t)take_u64(&s, 3) : -1;
	d->pod_ready_ms = (int64_t)take_u64(&s, 3) - 1;
	d->upload_ms = -1;

	/* under a cap: an error, never an overrun, and never a partial success */
	cap = (size_t)take_u64(&s, 2);
	buf_init(&capped, cap ? cap : 1);
	rc = runner_run_doc_encode(&capped, d, with_output);
	if (capped.len > (cap ? cap : 1))
		abort();
	if (runner_run_doc_encode(&out, d, with_output))
		abort(); /* no cap: must succeed */
	if (rc == 0 && (capped.len != out.len || memcmp(capped.data, out.data, out.len)))
		abort();
	if (rc != 0 && out.len <= (cap ? cap : 1))
		abort(); /* it fitted, yet it failed */
	buf_free(&capped);

	/* valid UTF-8, no raw control character */
	if (!utf8_clean((const unsigned char *)out.data, out.len))
		abort();
	for (size_t i = 0; i < out.len; i++)
		if ((unsigned char)out.data[i] < 0x20)
			abort();
	if (!with_output && (memmem(out.data, out.len, "\"stdout\":", 9) || memmem(out.data, out.len, "\"patch\":", 8)))
		abort();

	/* it decodes back to the same document */
	if (runner_run_doc_decode(&back, out.data, out.len, out.len))
		abort();
	if (back->phase != d->phase || back->ncmds != d->ncmds || strcmp(back->id, d->id) ||
	    back->created_ms != d->created_ms || back->started_ms != d->started_ms ||
	    back->finished_ms != d->finished_ms || back->queued_ms != d->queued_ms ||
	    back->pod_ready_ms != (d->pod_ready_ms < 0 ? -1 : d->pod_ready_ms) || back->upload_ms != -1)
		abort();
	same_str(d->reason, len_reason, back->reason);
	same_str(d->message, len_msg, back->message);
	if (with_output) {
		same_str(d->logs, len_logs, back->logs);
		same_str(d->patch, len_patch, back->patch);
	} else if (back->logs || back->patch) {
		abort();
	}
	for (size_t i = 0; i < d->ncmds; i++) {
		const runner_cmd_result *a = &d->cmds[i], *b = &back->cmds[i];

		if (a->outcome != b->outcome || a->out_bytes != b->out_bytes || a->err_bytes != b->err_bytes ||
		    strcmp(a->out_sha256, b->out_sha256) || strcmp(a->err_sha256, b->err_sha256) ||
		    a->truncated != b->truncated || a->duration_ms != b->duration_ms ||
		    (a->outcome == RUNNER_OUTCOME_EXITED && a->exit_code != b->exit_code) ||
		    (a->argv != NULL) != (b->argv != NULL) || (a->argv && a->argc != b->argc))
			abort();
		if (with_output) {
			same_str(a->out, a->out_len, b->out);
			same_str(a->err, a->err_len, b->err);
		} else if (b->out || b->err) {
			abort();
		}
		for (size_t j = 0; a->argv && j < a->argc; j++)
			same_str(a->argv[j], strlen(a->argv[j]), b->argv[j]);
		if (a->shell)
			same_str(a->shell, strlen(a->shell), b->shell);
	}

	sse_roundtrip(&s, out.data, out.len, take_u64(&s, 8));

	runner_run_doc_free(back);
	runner_run_doc_free(d);
	buf_free(&out);
	return 0;
}

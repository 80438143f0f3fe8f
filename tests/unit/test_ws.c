/* util/ws: RFC 6455 framing, encoder and streaming decoder. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/str.h"
#include "util/ws.h"

/* What a caller of the decoder sees: the events of a byte stream, fed in
 * pieces of `step` bytes, with unconsumed bytes kept and fed again. */
typedef struct rec_ev {
	int type, opcode, start, end, close_code;
	size_t off, len; /* into rec.data */
} rec_ev;

typedef struct rec {
	rec_ev *ev;
	size_t n, cap;
	buf data;  /* payloads of every event, concatenated */
	int rc;    /* the decoder's error, if any */
	int fail;  /* ws_decoder_fail_code after an error */
} rec;

static void rec_free(rec *r)
{
	buf_free(&r->data);
	free(r->ev);
	r->ev = NULL;
}

/* The event kinds in order, runs of data chunks collapsed: "DPDODC". */
static void rec_signature(const rec *r, char *out, size_t size)
{
	size_t k = 0;
	for (size_t i = 0; i < r->n && k + 1 < size; i++) {
		char c = "NDPOC"[r->ev[i].type];
		if (c == 'D' && k && out[k - 1] == 'D')
			continue;
		out[k++] = c;
	}
	out[k] = '\0';
}

static void feed_all(rec *r, ws_decoder *d, const uint8_t *stream, size_t len, size_t step)
{
	buf pend = BUF_INIT(SIZE_MAX);
	size_t pos = 0;

	memset(r, 0, sizeof *r);
	buf_init(&r->data, SIZE_MAX);
	while (pos < len || pend.len) {
		size_t k = len - pos < step ? len - pos : step;
		int progressed = k > 0;

		buf_append(&pend, stream + pos, k);
		pos += k;
		for (;;) {
			ws_event e;
			size_t used;
			int rc = ws_decoder_next(d, (uint8_t *)pend.data, pend.len, &used, &e);

			if (rc) {
				r->rc = rc;
				r->fail = ws_decoder_fail_code(d);
				buf_free(&pend);
				return;
			}
			if (e.type != WS_EV_NONE) {
				if (r->n == r->cap) {
					r->cap = r->cap ? 2 * r->cap : 64;
					r->ev = realloc(r->ev, r->cap * sizeof *r->ev);
				}
				rec_ev *x = &r->ev[r->n++];
				x->type = e.type;
				x->opcode = e.opcode;
				x->start = e.msg_start;
				x->end = e.msg_end;
				x->close_code = e.close_code;
				x->off = r->data.len;
				x->len = e.len;
				buf_append(&r->data, e.data, e.len);
			}
			buf_consume(&pend, used);
			if (used)
				progressed = 1;
			if (e.type == WS_EV_NONE && !used)
				break;
		}
		if (!progressed)
			break; /* stream ended inside a frame */
	}
	buf_free(&pend);
}

/* Merge the DATA chunks into messages: returns the number of messages and
 * fills msgs[i] with the payload (allocated) and ops[i] with the opcode. */
static size_t messages(const rec *r, char **msgs, size_t *lens, int *ops, size_t max)
{
	size_t m = 0;
	buf cur = BUF_INIT(SIZE_MAX);
	int open = 0;

	for (size_t i = 0; i < r->n; i++) {
		const rec_ev *e = &r->ev[i];
		if (e->type != WS_EV_DATA)
			continue;
		if (e->start) {
			cr_assert(!open, "a message started inside another");
			open = 1;
			buf_reset(&cur);
			ops[m] = e->opcode;
		}
		cr_assert(open, "data outside a message");
		buf_append(&cur, r->data.data + e->off, e->len);
		if (e->end) {
			cr_assert_lt(m, max);
			lens[m] = cur.len;
			msgs[m++] = buf_take(&cur, NULL);
			open = 0;
		}
	}
	buf_free(&cur);
	return m;
}

static void client_frame(buf *b, int fin, int op, const void *p, size_t n)
{
	uint8_t key[4];
	ws_mask_key(key);
	cr_assert_eq(ws_frame_append(b, fin, op, p, n, key), 0);
}

Test(ws, accept_key_matches_rfc6455_example)
{
	char out[29];

	/* RFC 6455 section 1.3 */
	cr_assert_eq(ws_accept_key(out, "dGhlIHNhbXBsZSBub25jZQ=="), 0);
	cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	cr_assert_eq(ws_accept_key(out, "short"), ERR_INVALID);
	cr_assert_eq(ws_accept_key(out, NULL), ERR_INVALID);
	cr_assert_eq(ws_accept_key(out, "!!!!!!!!!!!!!!!!!!!!!!=="), ERR_INVALID);
}

Test(ws, client_key_is_base64_of_16_random_bytes)
{
	char a[25], b[25];
	buf raw = BUF_INIT(64);

	cr_assert_eq(ws_client_key(a), 0);
	cr_assert_eq(ws_client_key(b), 0);
	cr_assert_eq(strlen(a), 24);
	cr_assert_str_neq(a, b);
	cr_assert_eq(str_base64_decode(&raw, a, 24), 0);
	cr_assert_eq(raw.len, 16);
	buf_free(&raw);
}

Test(ws, mask_in_pieces_at_any_offset_equals_mask_whole)
{
	uint8_t key[4] = { 0x12, 0x34, 0x56, 0x78 };
	uint8_t ref[100], p[100];

	for (size_t i = 0; i < sizeof ref; i++)
		ref[i] = (uint8_t)(i * 7 + 1);
	memcpy(p, ref, sizeof p);
	ws_mask_apply(p, sizeof p, key, 0);
	for (size_t i = 0; i < sizeof p; i++)
		cr_assert_eq(p[i], ref[i] ^ key[i & 3], "byte %zu", i);
	/* unmask in pieces of every size from 1 to 13, starting anywhere */
	for (size_t step = 1; step <= 13; step++) {
		uint8_t q[100];
		memcpy(q, p, sizeof q);
		for (size_t off = 0; off < sizeof q; off += step) {
			size_t k = sizeof q - off < step ? sizeof q - off : step;
			ws_mask_apply(q + off, k, key, off);
		}
		cr_assert_arr_eq(q, ref, sizeof q, "step %zu", step);
	}
	/* an offset beyond 32 bits keeps its phase */
	memcpy(p, ref, 8);
	ws_mask_apply(p, 8, key, ((uint64_t)1 << 40) + 3);
	cr_assert_eq(p[0], ref[0] ^ key[3]);
	cr_assert_eq(p[1], ref[1] ^ key[0]);
}

Test(ws, header_uses_7_16_and_64_bit_lengths)
{
	uint8_t h[14], key[4] = { 1, 2, 3, 4 };

	cr_assert_eq(ws_header_encode(h, 1, WS_OP_BINARY, 0, NULL), 2);
	cr_assert_eq(h[0], 0x82);
	cr_assert_eq(h[1], 0);
	cr_assert_eq(ws_header_encode(h, 1, WS_OP_BINARY, 125, NULL), 2);
	cr_assert_eq(h[1], 125);
	cr_assert_eq(ws_header_encode(h, 0, WS_OP_TEXT, 126, NULL), 4);
	cr_assert_eq(h[0], 0x01);
	cr_assert_eq(h[1], 126);
	cr_assert_eq(h[2], 0);
	cr_assert_eq(h[3], 126);
	cr_assert_eq(ws_header_encode(h, 1, WS_OP_BINARY, 65535, NULL), 4);
	cr_assert_eq(h[2], 0xff);
	cr_assert_eq(h[3], 0xff);
	cr_assert_eq(ws_header_encode(h, 1, WS_OP_BINARY, 65536, NULL), 10);
	cr_assert_eq(h[1], 127);
	uint8_t want[8] = { 0, 0, 0, 0, 0, 1, 0, 0 };
	cr_assert_arr_eq(h + 2, want, 8);
	cr_assert_eq(ws_header_encode(h, 1, WS_OP_BINARY, 0x0102030405060708ULL, key), 14);
	cr_assert_eq(h[1], 0x80 | 127);
	uint8_t want2[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4 };
	cr_assert_arr_eq(h + 2, want2, 12);
	cr_assert_eq(ws_header_encode(h, 1, WS_OP_PING, 5, key), 6);
	cr_assert_eq(h[0], 0x89);
	cr_assert_eq(h[1], 0x85);
}

/* Payload sizes around each length boundary, masked client to server and
 * unmasked server to client, fed whole, byte by byte and in odd pieces. */
Test(ws, round_trip_every_length_encoding_and_feed_size)
{
	size_t sizes[] = { 0, 1, 125, 126, 127, 65535, 65536, 70001 };
	size_t steps[] = { 1, 3, 7, 4096, SIZE_MAX };
	uint8_t *payload = malloc(70001);

	for (size_t i = 0; i < 70001; i++)
		payload[i] = (uint8_t)(i * 31 + 7);
	for (int server = 0; server <= 1; server++) {
		for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
			buf stream = BUF_INIT(SIZE_MAX);
			uint8_t key[4] = { 0xde, 0xad, 0xbe, 0xef };
			cr_assert_eq(ws_frame_append(&stream, 1, WS_OP_BINARY, payload, sizes[s],
						     server ? key : NULL), 0);
			for (size_t t = 0; t < sizeof steps / sizeof *steps; t++) {
				if (steps[t] == 1 && sizes[s] > 1000)
					continue; /* byte-by-byte of 64 KiB is covered by step 3 */
				ws_decoder d;
				rec r;
				char *msgs[2];
				size_t lens[2];
				int ops[2];
				uint8_t *copy = malloc(stream.len + 1);
				memcpy(copy, stream.data, stream.len);
				ws_decoder_init(&d, server, 0);
				feed_all(&r, &d, copy, stream.len, steps[t]);
				cr_assert_eq(r.rc, 0, "size %zu step %zu: %s", sizes[s], steps[t], err_msg());
				cr_assert_eq(messages(&r, msgs, lens, ops, 2), 1, "size %zu step %zu", sizes[s],
					     steps[t]);
				cr_assert_eq(ops[0], WS_OP_BINARY);
				cr_assert_eq(lens[0], sizes[s]);
				cr_assert(memcmp(msgs[0], payload, sizes[s]) == 0, "size %zu step %zu", sizes[s],
					  steps[t]);
				free(msgs[0]);
				rec_free(&r);
				free(copy);
			}
			buf_free(&stream);
		}
	}
	free(payload);
}

Test(ws, frame_append_does_not_modify_the_callers_payload)
{
	buf b = BUF_INIT(1024);
	char p[] = "hello";
	uint8_t key[4] = { 9, 9, 9, 9 };

	cr_assert_eq(ws_frame_append(&b, 1, WS_OP_TEXT, p, 5, key), 0);
	cr_assert_str_eq(p, "hello");
	cr_assert_eq(b.len, 2 + 4 + 5);
	cr_assert_eq((uint8_t)b.data[6], 'h' ^ 9);
	buf_free(&b);
}

Test(ws, fragmented_message_with_interleaved_control_frames)
{
	buf s = BUF_INIT(SIZE_MAX);
	ws_decoder d;
	rec r;

	client_frame(&s, 0, WS_OP_TEXT, "Hel", 3);
	client_frame(&s, 1, WS_OP_PING, "p1", 2);
	client_frame(&s, 0, WS_OP_CONT, "", 0);
	client_frame(&s, 1, WS_OP_PONG, "", 0);
	client_frame(&s, 0, WS_OP_CONT, "lo, ", 4);
	client_frame(&s, 1, WS_OP_CONT, "world", 5);
	client_frame(&s, 1, WS_OP_BINARY, "\x01\x02", 2);
	client_frame(&s, 1, WS_OP_BINARY, "", 0);
	ws_close_append(&s, 1000, "bye", (const uint8_t *)"abcd");
	for (size_t step = 1; step <= 4096; step *= 4) {
		char sig[64];
		ws_decoder_init(&d, 1, 0);
		feed_all(&r, &d, (uint8_t *)s.data, s.len, step);
		cr_assert_eq(r.rc, 0, "%s", err_msg());
		rec_signature(&r, sig, sizeof sig);
		cr_assert_str_eq(sig, "DPDODC", "step %zu", step);
		if (step == 4096) {
			/* fed whole: one event per frame. Hel, PING, "", PONG,
			 * "lo, ", world, \1\2, "", CLOSE */
			cr_assert_eq(r.n, 9, "%zu events", r.n);
			cr_assert_eq(r.ev[0].type, WS_EV_DATA);
			cr_assert(r.ev[0].start && !r.ev[0].end);
			cr_assert_eq(r.ev[0].opcode, WS_OP_TEXT);
			cr_assert_eq(r.ev[1].type, WS_EV_PING);
			cr_assert_eq(r.ev[1].len, 2);
			cr_assert(memcmp(r.data.data + r.ev[1].off, "p1", 2) == 0);
			cr_assert_eq(r.ev[2].type, WS_EV_DATA);
			cr_assert(!r.ev[2].start && !r.ev[2].end && r.ev[2].len == 0);
			cr_assert_eq(r.ev[2].opcode, WS_OP_TEXT, "continuations carry the message's opcode");
			cr_assert_eq(r.ev[3].type, WS_EV_PONG);
			cr_assert(r.ev[5].end);
			cr_assert_eq(r.ev[6].opcode, WS_OP_BINARY);
			cr_assert(r.ev[6].start && r.ev[6].end);
			cr_assert(r.ev[7].start && r.ev[7].end && r.ev[7].len == 0);
		}
		cr_assert_eq(r.ev[r.n - 1].type, WS_EV_CLOSE);
		cr_assert_eq(r.ev[r.n - 1].close_code, 1000);
		cr_assert_eq(r.ev[r.n - 1].len, 3);

		char *msgs[4];
		size_t lens[4];
		int ops[4];
		cr_assert_eq(messages(&r, msgs, lens, ops, 4), 3);
		cr_assert_eq(lens[0], 12);
		cr_assert(memcmp(msgs[0], "Hello, world", 12) == 0);
		cr_assert_eq(lens[1], 2);
		cr_assert_eq(lens[2], 0);
		for (int i = 0; i < 3; i++)
			free(msgs[i]);
		rec_free(&r);
	}
	buf_free(&s);
}

Test(ws, close_without_code_reports_1005)
{
	buf s = BUF_INIT(64);
	ws_decoder d;
	rec r;

	ws_frame_append(&s, 1, WS_OP_CLOSE, NULL, 0, NULL);
	ws_decoder_init(&d, 0, 0);
	feed_all(&r, &d, (uint8_t *)s.data, s.len, 1);
	cr_assert_eq(r.rc, 0);
	cr_assert_eq(r.n, 1);
	cr_assert_eq(r.ev[0].type, WS_EV_CLOSE);
	cr_assert_eq(r.ev[0].close_code, WS_CLOSE_NO_STATUS);
	rec_free(&r);
	buf_free(&s);
}

Test(ws, close_append_cuts_long_reason_on_a_character_boundary)
{
	char reason[300];
	buf s = BUF_INIT(1024);
	ws_decoder d;
	rec r;

	/* "é" is 2 bytes: 1 + 61*2 = 123 fits exactly; an offset of 1 more
	 * ASCII byte would split a character at byte 123. */
	reason[0] = 'a';
	reason[1] = 'b';
	size_t n = 2;
	while (n + 2 < sizeof reason) {
		reason[n++] = (char)0xC3;
		reason[n++] = (char)0xA9;
	}
	reason[n] = '\0';
	cr_assert_eq(ws_close_append(&s, 4000, reason, NULL), 0);
	cr_assert_eq((uint8_t)s.data[1], 124, "2 + 122 bytes: the 123rd would split a character");
	ws_decoder_init(&d, 0, 0);
	feed_all(&r, &d, (uint8_t *)s.data, s.len, 5);
	cr_assert_eq(r.rc, 0, "%s", err_msg());
	cr_assert_eq(r.ev[0].close_code, 4000);
	cr_assert_eq(r.ev[0].len, 122);
	rec_free(&r);
	buf_free(&s);
}

/* One malformed stream each, and the close code the peer must get. */
typedef struct bad_case {
	const char *name;
	int server;
	uint64_t max;
	const char *bytes;
	size_t len;
	int code;
} bad_case;

Test(ws, protocol_errors_give_the_right_close_code)
{
	/* masked client frames use the key 00 00 00 00 so the payload is plain */
	static const bad_case cases[] = {
		{ "unmasked client frame", 1, 0, "\x82\x01x", 3, 1002 },
		{ "masked server frame", 0, 0, "\x82\x81\0\0\0\0x", 7, 1002 },
		{ "RSV1 set", 1, 0, "\xc2\x80\0\0\0\0", 6, 1002 },
		{ "RSV3 set", 0, 0, "\x92\x00", 2, 1002 },
		{ "reserved data opcode 3", 1, 0, "\x83\x80\0\0\0\0", 6, 1002 },
		{ "reserved control opcode 0xB", 0, 0, "\x8b\x00", 2, 1002 },
		{ "fragmented ping", 0, 0, "\x09\x00", 2, 1002 },
		{ "ping longer than 125", 0, 0, "\x89\x7e\x00\x7e", 4, 1002 },
		{ "continuation without a start", 0, 0, "\x80\x01x", 3, 1002 },
		{ "new message inside a fragmented one", 0, 0, "\x02\x01x\x82\x01y", 6, 1002 },
		{ "64-bit length top bit", 0, 0, "\x82\x7f\x80\0\0\0\0\0\0\0", 10, 1002 },
		{ "close with 1 byte", 0, 0, "\x88\x01\x03", 3, 1002 },
		{ "close code 999", 0, 0, "\x88\x02\x03\xe7", 4, 1002 },
		{ "close code 1005", 0, 0, "\x88\x02\x03\xed", 4, 1002 },
		{ "close code 1006", 0, 0, "\x88\x02\x03\xee", 4, 1002 },
		{ "close code 2000", 0, 0, "\x88\x02\x07\xd0", 4, 1002 },
		{ "close code 5000", 0, 0, "\x88\x02\x13\x88", 4, 1002 },
		{ "close reason bad UTF-8", 0, 0, "\x88\x04\x03\xe8\xc3\x28", 6, 1007 },
		{ "close reason overlong", 0, 0, "\x88\x04\x03\xe8\xc0\xaf", 6, 1007 },
		{ "close reason surrogate", 0, 0, "\x88\x05\x03\xe8\xed\xa0\x80", 7, 1007 },
		{ "close reason truncated", 0, 0, "\x88\x04\x03\xe8\xe2\x82", 6, 1007 },
		{ "frame over max_message", 0, 10, "\x82\x0b", 2, 1009 },
		{ "fragments over max_message", 0, 10, "\x02\x06" "abcdef\x80\x05" "ghijk", 15, 1009 },
		{ "64-bit length over default cap", 0, 0, "\x82\x7f\0\0\0\0\x01\0\0\x01", 10, 1009 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const bad_case *c = &cases[i];
		for (size_t step = 1; step <= 16; step *= 16) {
			ws_decoder d;
			rec r;
			uint8_t copy[64];

			memcpy(copy, c->bytes, c->len);
			ws_decoder_init(&d, c->server, c->max);
			feed_all(&r, &d, copy, c->len, step);
			cr_assert_neq(r.rc, 0, "%s (step %zu): accepted", c->name, step);
			cr_assert_eq(r.fail, c->code, "%s: close code %d, want %d", c->name, r.fail, c->code);
			cr_assert_neq(err_msg()[0], '\0', "%s: no message", c->name);
			/* a failed decoder stays failed */
			ws_event e;
			size_t used;
			cr_assert_neq(ws_decoder_next(&d, copy, c->len, &used, &e), 0);
			cr_assert_eq(used, 0);
			rec_free(&r);
		}
	}
}

Test(ws, valid_close_codes_and_utf8_reasons_pass)
{
	static const struct { const char *b; size_t n; int code; } ok[] = {
		{ "\x88\x02\x03\xe8", 4, 1000 },
		{ "\x88\x02\x03\xf3", 4, 1011 },
		{ "\x88\x02\x0b\xb8", 4, 3000 },
		{ "\x88\x02\x13\x87", 4, 4999 },
		{ "\x88\x06\x03\xe8\xf0\x9f\x98\x80", 8, 1000 }, /* U+1F600 */
	};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		ws_decoder d;
		rec r;
		uint8_t copy[16];
		memcpy(copy, ok[i].b, ok[i].n);
		ws_decoder_init(&d, 0, 0);
		feed_all(&r, &d, copy, ok[i].n, 1);
		cr_assert_eq(r.rc, 0, "case %zu: %s", i, err_msg());
		cr_assert_eq(r.ev[0].close_code, ok[i].code);
		rec_free(&r);
	}
}

Test(ws, max_message_allows_exactly_the_cap_and_resets_per_message)
{
	buf s = BUF_INIT(1024);
	ws_decoder d;
	rec r;

	/* two messages of exactly 10 bytes, the first fragmented 4 + 6 */
	ws_frame_append(&s, 0, WS_OP_BINARY, "abcd", 4, NULL);
	ws_frame_append(&s, 1, WS_OP_CONT, "efghij", 6, NULL);
	ws_frame_append(&s, 1, WS_OP_BINARY, "0123456789", 10, NULL);
	ws_decoder_init(&d, 0, 10);
	feed_all(&r, &d, (uint8_t *)s.data, s.len, 2);
	cr_assert_eq(r.rc, 0, "%s", err_msg());
	cr_assert_eq(r.data.len, 20);
	rec_free(&r);
	buf_free(&s);
}

Test(ws, payload_chunks_point_into_the_fed_bytes_and_stream)
{
	/* a 1 MiB frame fed in 1000-byte pieces: each chunk arrives without the
	 * whole frame being buffered */
	size_t len = 1 << 20;
	buf s = BUF_INIT(SIZE_MAX);
	uint8_t *pl = malloc(len);
	uint8_t key[4] = { 7, 6, 5, 4 };
	ws_decoder d;
	size_t pos, got = 0, events = 0;

	for (size_t i = 0; i < len; i++)
		pl[i] = (uint8_t)(i ^ (i >> 8));
	ws_frame_append(&s, 1, WS_OP_BINARY, pl, len, key);
	ws_decoder_init(&d, 1, 0);
	pos = 0;
	while (pos < s.len) {
		size_t k = s.len - pos < 1000 ? s.len - pos : 1000, used;
		ws_event e;
		cr_assert_eq(ws_decoder_next(&d, (uint8_t *)s.data + pos, k, &used, &e), 0);
		if (pos == 0) {
			cr_assert_eq(used, 1000, "header and first chunk taken at once");
		}
		if (e.type == WS_EV_DATA) {
			cr_assert(memcmp(e.data, pl + got, e.len) == 0);
			cr_assert_eq(e.msg_start, got == 0);
			got += e.len;
			cr_assert_eq(e.msg_end, got == len);
			events++;
		}
		pos += used;
	}
	cr_assert_eq(got, len);
	cr_assert_gt(events, 1000);
	free(pl);
	buf_free(&s);
}

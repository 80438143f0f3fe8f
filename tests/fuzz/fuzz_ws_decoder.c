/*
 * libFuzzer target for util/ws's decoder: the bytes a peer sends over an
 * upgraded connection. The first input byte picks the side (server or
 * client), the feed size and the message cap; the rest is the stream.
 * Checks the decoder's invariants: it never consumes more than it is given,
 * events point inside the fed bytes, data of one message never exceeds the
 * cap, and a failure always names a close code 1002, 1007 or 1009.
 * Then re-encodes the rest as one frame each way and decodes it back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/ws.h"

static void check(int ok)
{
	if (!ok)
		abort();
}

static void decode_stream(const uint8_t *in, size_t len, int server, size_t step, uint64_t max)
{
	ws_decoder d;
	uint8_t *pend = malloc(len + 1);
	size_t plen = 0, pos = 0;
	uint64_t msg = 0;

	ws_decoder_init(&d, server, max);
	for (;;) {
		size_t k = len - pos < step ? len - pos : step;
		int progressed = k > 0;

		memcpy(pend + plen, in + pos, k);
		plen += k;
		pos += k;
		for (;;) {
			ws_event e;
			size_t used;
			int rc = ws_decoder_next(&d, pend, plen, &used, &e);

			if (rc) {
				int c = ws_decoder_fail_code(&d);
				check(c == 1002 || c == 1007 || c == 1009);
				free(pend);
				return;
			}
			check(used <= plen);
			if (e.type != WS_EV_NONE && e.len)
				check(e.data >= pend && e.data + e.len <= pend + plen);
			if (e.type == WS_EV_DATA) {
				if (e.msg_start)
					msg = 0;
				msg += e.len;
				check(msg <= d.max_message);
				check(e.opcode == WS_OP_TEXT || e.opcode == WS_OP_BINARY);
			}
			if (e.type == WS_EV_PING || e.type == WS_EV_PONG)
				check(e.len <= 125);
			memmove(pend, pend + used, plen - used);
			plen -= used;
			if (used)
				progressed = 1;
			if (e.type == WS_EV_NONE && !used)
				break;
		}
		if (!progressed || (pos == len && plen == 0))
			break;
	}
	free(pend);
}

static void round_trip(const uint8_t *p, size_t n, int masked)
{
	buf b = BUF_INIT(n + 64);
	uint8_t key[4] = { n ? p[0] : 1, 0x5a, 0xa5, 0x3c };
	ws_decoder d;
	ws_event e;
	size_t used, got = 0, off = 0;

	check(ws_frame_append(&b, 1, WS_OP_BINARY, p, n, masked ? key : NULL) == 0);
	ws_decoder_init(&d, masked, n + 1);
	while (off < b.len || (n == 0 && got == 0)) {
		check(ws_decoder_next(&d, (uint8_t *)b.data + off, b.len - off, &used, &e) == 0);
		off += used;
		if (e.type == WS_EV_DATA) {
			check(memcmp(e.data, p + got, e.len) == 0);
			got += e.len;
			if (e.msg_end)
				break;
		}
		check(used > 0);
	}
	check(got == n);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t ctl = data[0];
	int server = ctl & 1;
	static const size_t steps[4] = { 1, 7, 64, 1 << 20 };
	size_t step = steps[(ctl >> 1) & 3];
	uint64_t max = (ctl & 8) ? 64 : 0;

	decode_stream(data + 1, size - 1, server, step, max);
	if (size - 1 <= 4096) {
		round_trip(data + 1, size - 1, 0);
		round_trip(data + 1, size - 1, 1);
	}
	return 0;
}

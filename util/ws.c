/*
 * ws: RFC 6455 framing (see ws.h for the contract).
 *
 * The decoder is a small state machine over caller-owned bytes:
 *   - between frames it needs a whole header (2 to 14 bytes) before it
 *     consumes anything; a control frame (payload <= 125) is consumed only
 *     once it is complete and is delivered whole;
 *   - a data frame's header is consumed as soon as it is complete, then its
 *     payload is unmasked in place and delivered in whatever chunks the
 *     caller feeds, so memory never grows with the message size.
 * Every check that can be made from a header (reserved bits, opcodes, mask
 * bit, control frame size and fragmentation, continuation order, the
 * message cap) is made before any payload is accepted.
 *
 * UTF-8 is checked where a whole text is at hand: the reason of a close
 * frame (RFC 6455 section 7.1.6 -> 1007). Text data messages are delivered
 * as bytes without validation, as the Go servers Kubernetes uses do
 * (golang.org/x/net/websocket behind
 * staging/src/k8s.io/apiserver/pkg/util/wsstream/conn.go); the exec
 * protocols carry binary messages anyway.
 */
#include "util/ws.h"

#include <string.h>
#include <sys/random.h>

#include <openssl/rand.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "util/err.h"
#include "util/str.h"

#define WS_DEFAULT_MAX_MESSAGE ((uint64_t)16 << 20)

/* The GUID of RFC 6455 section 1.3, checked against the RFC's own example
 * in tests/unit/test_ws.c. */
static const char rfc6455_guid[] = WS_GUID;

int ws_accept_key(char out[29], const char *client_key)
{
	unsigned char digest[SHA_DIGEST_LENGTH];
	buf b = BUF_INIT(64);
	size_t klen;
	int rc;

	out[0] = '\0';
	if (!client_key)
		return err_set(ERR_INVALID, "websocket: no Sec-WebSocket-Key");
	klen = strlen(client_key);
	/* RFC 6455 section 4.2.1: the key is base64 of 16 bytes (24 characters). */
	if (klen != 24)
		return err_set(ERR_INVALID, "websocket: Sec-WebSocket-Key must be 24 base64 characters, got %zu",
			       klen);
	{
		buf raw = BUF_INIT(64);
		rc = str_base64_decode(&raw, client_key, klen);
		size_t rlen = raw.len;
		buf_free(&raw);
		if (rc || rlen != 16)
			return err_set(ERR_INVALID, "websocket: Sec-WebSocket-Key is not base64 of 16 bytes");
	}
	{
		char cat[24 + sizeof rfc6455_guid];
		memcpy(cat, client_key, 24);
		memcpy(cat + 24, rfc6455_guid, sizeof rfc6455_guid - 1);
		if (!EVP_Digest(cat, 24 + sizeof rfc6455_guid - 1, digest, NULL, EVP_sha1(), NULL))
			return err_set(ERR_FAIL, "websocket: SHA-1 failed");
	}
	if ((rc = str_base64_encode(&b, digest, sizeof digest))) {
		buf_free(&b);
		return rc;
	}
	memcpy(out, b.data, 28);
	out[28] = '\0';
	buf_free(&b);
	return 0;
}

static int random_bytes(uint8_t *p, size_t n)
{
	if (RAND_bytes(p, (int)n) == 1)
		return 0;
	if (getrandom(p, n, 0) == (ssize_t)n)
		return 0;
	return -1;
}

int ws_client_key(char out[25])
{
	uint8_t raw[16];
	buf b = BUF_INIT(64);
	int rc;

	out[0] = '\0';
	if (random_bytes(raw, sizeof raw))
		return err_set(ERR_FAIL, "websocket: no random bytes for Sec-WebSocket-Key");
	if ((rc = str_base64_encode(&b, raw, sizeof raw))) {
		buf_free(&b);
		return rc;
	}
	memcpy(out, b.data, 24);
	out[24] = '\0';
	buf_free(&b);
	return 0;
}

void ws_mask_key(uint8_t key[4])
{
	if (random_bytes(key, 4)) {
		/* Masking only defeats cache poisoning by proxies; a weak key
		 * still produces a valid frame. */
		uint64_t t = (uint64_t)(uintptr_t)key ^ 0x9E3779B97F4A7C15ULL;
		memcpy(key, &t, 4);
	}
}

void ws_mask_apply(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset)
{
	uint8_t k[8];
	uint64_t w, m;
	size_t i = 0;
	unsigned r = (unsigned)(offset & 3);

	for (int j = 0; j < 8; j++)
		k[j] = key[(r + j) & 3];
	memcpy(&m, k, 8);
	/* The rotated key repeats every 4 bytes, so 8-byte words keep phase. */
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		w ^= m;
		memcpy(p + i, &w, 8);
	}
	for (; i < n; i++)
		p[i] ^= k[i & 3];
}

size_t ws_header_encode(uint8_t out[14], int fin, int opcode, uint64_t payload_len, const uint8_t *mask_key)
{
	size_t n = 0;
	uint8_t mbit = mask_key ? 0x80 : 0;

	out[n++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (payload_len <= 125) {
		out[n++] = (uint8_t)(mbit | payload_len);
	} else if (payload_len <= 0xffff) {
		out[n++] = (uint8_t)(mbit | 126);
		out[n++] = (uint8_t)(payload_len >> 8);
		out[n++] = (uint8_t)payload_len;
	} else {
		out[n++] = (uint8_t)(mbit | 127);
		for (int s = 56; s >= 0; s -= 8)
			out[n++] = (uint8_t)(payload_len >> s);
	}
	if (mask_key) {
		memcpy(out + n, mask_key, 4);
		n += 4;
	}
	return n;
}

int ws_frame_append(buf *out, int fin, int opcode, const void *payload, size_t len, const uint8_t *mask_key)
{
	uint8_t hdr[14];
	size_t hlen = ws_header_encode(hdr, fin, opcode, len, mask_key);
	size_t need, start;
	int rc;

	if ((rc = size_add(&need, hlen, len)))
		return rc;
	if ((rc = buf_reserve(out, need)))
		return rc;
	if ((rc = buf_append(out, hdr, hlen)))
		return rc;
	start = out->len;
	if (len && (rc = buf_append(out, payload, len)))
		return rc;
	if (mask_key && len)
		ws_mask_apply((uint8_t *)out->data + start, len, mask_key, 0);
	return 0;
}

/* The longest prefix of s no longer than n bytes that ends on a UTF-8
 * character boundary (s is longer than n; a cut reason must stay valid
 * UTF-8 for the peer). */
static size_t utf8_cut(const char *s, size_t n)
{
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

int ws_close_append(buf *out, int code, const char *reason, const uint8_t *mask_key)
{
	uint8_t p[125];
	size_t rlen = reason ? strlen(reason) : 0;

	if (rlen > sizeof p - 2)
		rlen = utf8_cut(reason, sizeof p - 2);
	p[0] = (uint8_t)((unsigned)code >> 8);
	p[1] = (uint8_t)code;
	if (rlen)
		memcpy(p + 2, reason, rlen);
	return ws_frame_append(out, 1, WS_OP_CLOSE, p, 2 + rlen, mask_key);
}

/* Strict UTF-8 (no overlongs, no surrogates, at most U+10FFFF). */
static int utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF) {
			k = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			k = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += k + 1;
	}
	return 1;
}

void ws_decoder_init(ws_decoder *d, int server, uint64_t max_message)
{
	memset(d, 0, sizeof *d);
	d->server = server;
	d->max_message = max_message ? max_message : WS_DEFAULT_MAX_MESSAGE;
}

int ws_decoder_fail_code(const ws_decoder *d)
{
	return d->fail_code;
}

static int fail(ws_decoder *d, int close_code, int err, const char *msg)
{
	d->fail_code = close_code;
	return err_set(err, "websocket: %s", msg);
}

/* Deliver the next chunk of the current data frame's payload. */
static void data_chunk(ws_decoder *d, uint8_t *p, size_t n, size_t *consumed, ws_event *ev)
{
	uint64_t k = d->frame_left < n ? d->frame_left : n;

	if (d->masked && k)
		ws_mask_apply(p, (size_t)k, d->mask, d->frame_off);
	ev->type = WS_EV_DATA;
	ev->opcode = d->msg_opcode;
	/* The first frame of a message carries TEXT/BINARY, the others CONT. */
	ev->msg_start = d->frame_opcode != WS_OP_CONT && d->frame_off == 0;
	ev->data = p;
	ev->len = (size_t)k;
	d->frame_off += k;
	d->frame_left -= k;
	d->msg_len += k;
	*consumed += (size_t)k;
	ev->msg_end = d->frame_left == 0 && d->frame_fin;
	if (d->frame_left == 0) {
		d->in_frame = 0;
		if (d->frame_fin) {
			d->in_message = 0;
			d->msg_len = 0;
		}
	}
}

int ws_decoder_next(ws_decoder *d, uint8_t *p, size_t n, size_t *consumed, ws_event *ev)
{
	uint64_t len;
	size_t h = 2;
	int fin, op, masked;

	memset(ev, 0, sizeof *ev);
	*consumed = 0;
	if (d->fail_code)
		return err_set(ERR_INVALID, "websocket: the stream already failed (close code %d)", d->fail_code);
	if (d->in_frame) {
		if (n)
			data_chunk(d, p, n, consumed, ev);
		return 0;
	}
	if (n < 2)
		return 0;
	fin = (p[0] & 0x80) != 0;
	op = p[0] & 0x0f;
	masked = (p[1] & 0x80) != 0;
	len = p[1] & 0x7f;
	/* RFC 6455 5.2: reserved bits must be 0 without a negotiated extension. */
	if (p[0] & 0x70)
		return fail(d, WS_CLOSE_PROTOCOL, ERR_INVALID, "reserved bits set (no extension negotiated)");
	if ((op >= 0x3 && op <= 0x7) || op >= 0xB)
		return fail(d, WS_CLOSE_PROTOCOL, ERR_INVALID, "reserved opcode");
	/* RFC 6455 5.1: a client masks every frame, a server none. */
	if (d->server && !masked)
		return fail(d, WS_CLOSE_PROTOCOL, ERR_INVALID, "unmasked frame from the client");
	if (!d->server && masked)
		return fail(d, WS_CLOSE_PROTOCOL, ERR_INVALID, "masked frame from the server");
	if (op & 0x8) {
		/* RFC 6455 5.5: control frames are short and never fragmented. */
		if (!fin)
			return fail(d, WS_CLOSE_PROTOCOL, ERR_INVALID, "fragmented control frame");
		if (len > 125)
			return fail(d, WS_CLOSE_PROTOCOL, ERR_INVALID, "control frame longer than 125 bytes");
	} else if (op == WS_OP_CONT) {
		if (!d->in_message)
			return fail(d, WS_CLOSE_PROTOCOL, ERR_INVALID, "continuation frame without a message to continue");
	} else if (d->in_message) {
		return fail(d, WS_CLOSE_PROTOCOL, ERR_INVALID, "new message inside a fragmented message");
	}
	if (len == 126) {
		if (n < 4)
			return 0;
		len = ((uint64_t)p[2] << 8) | p[3];
		h = 4;
	} else if (len == 127) {
		if (n < 10)
			return 0;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = (len << 8) | p[2 + i];
		h = 10;
		if (len >> 63)
			return fail(d, WS_CLOSE_PROTOCOL, ERR_INVALID, "64-bit length with the top bit set");
	}
	if (masked) {
		if (n < h + 4)
			return 0;
		memcpy(d->mask, p + h, 4);
		h += 4;
	}
	d->masked = masked;

	if (op & 0x8) {
		uint8_t *pl = p + h;

		if (n - h < len)
			return 0; /* wait for the whole control frame */
		if (masked)
			ws_mask_apply(pl, (size_t)len, d->mask, 0);
		*consumed = h + (size_t)len;
		ev->data = pl;
		ev->len = (size_t)len;
		if (op == WS_OP_PING) {
			ev->type = WS_EV_PING;
		} else if (op == WS_OP_PONG) {
			ev->type = WS_EV_PONG;
		} else {
			ev->type = WS_EV_CLOSE;
			ev->close_code = WS_CLOSE_NO_STATUS;
			if (len == 1)
				return fail(d, WS_CLOSE_PROTOCOL, ERR_INVALID, "close frame with a 1-byte payload");
			if (len >= 2) {
				int code = (pl[0] << 8) | pl[1];
				/* RFC 6455 7.4: 1004-1006 and 1015 are never sent;
				 * 1000-2999 are IANA's (only the registered ones are
				 * valid), 3000-4999 are for libraries and applications. */
				if (code < 1000 || code == 1004 || code == 1005 || code == 1006 ||
				    (code >= 1015 && code < 3000) || code >= 5000)
					return fail(d, WS_CLOSE_PROTOCOL, ERR_INVALID, "invalid close code");
				if (!utf8_valid(pl + 2, (size_t)len - 2))
					return fail(d, WS_CLOSE_INVALID_DATA, ERR_INVALID,
						    "close reason is not valid UTF-8");
				ev->close_code = code;
				ev->data = pl + 2;
				ev->len = (size_t)len - 2;
			}
		}
		return 0;
	}

	/* A data frame: check the message cap on the declared length, before
	 * any of the payload is taken. */
	if (len > d->max_message || d->msg_len > d->max_message - len)
		return fail(d, WS_CLOSE_TOO_BIG, ERR_TOOBIG, "message larger than the limit");
	*consumed = h;
	d->frame_fin = fin;
	d->frame_opcode = op;
	d->frame_left = len;
	d->frame_off = 0;
	if (op != WS_OP_CONT) {
		d->msg_opcode = op;
		d->in_message = 1;
		d->msg_len = 0;
	}
	d->in_frame = 1;
	if (len == 0 || n > h) {
		data_chunk(d, p + h, n - h, consumed, ev);
		return 0;
	}
	return 0; /* header taken; feed the payload */
}

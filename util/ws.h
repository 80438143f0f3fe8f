/*
 * ws: RFC 6455 WebSocket framing, shared by the exec client (kube/exec.c)
 * and kubesim's exec server. No I/O here: bytes in, events out; frames
 * built into a buf. Both ends stream: a data frame's payload is delivered
 * in chunks as it arrives, never assembled whole, so a 256 MiB stdout costs
 * no more memory than one read. Control frames (<= 125 bytes, never
 * fragmented) are delivered whole.
 */
#ifndef UTIL_WS_H
#define UTIL_WS_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA
};

enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_UNSUPPORTED = 1003,
	WS_CLOSE_NO_STATUS = 1005,   /* never sent: a close frame without a code */
	WS_CLOSE_ABNORMAL = 1006,    /* never sent: the connection dropped */
	WS_CLOSE_INVALID_DATA = 1007,
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL = 1011
};

/* The GUID of RFC 6455 section 1.3. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
 * out holds 29 bytes (28 characters and a NUL). 0 or ERR_INVALID. */
int ws_accept_key(char out[29], const char *client_key);

/* A fresh Sec-WebSocket-Key: base64 of 16 random bytes (OpenSSL RAND).
 * out holds 25 bytes. 0 or ERR_FAIL. */
int ws_client_key(char out[25]);

/* Four random mask bytes for a client frame. */
void ws_mask_key(uint8_t key[4]);

/* XOR n bytes with the mask, starting at byte `offset` of the payload
 * (so a payload can be (un)masked in pieces). */
void ws_mask_apply(uint8_t *p, size_t n, const uint8_t key[4], uint64_t offset);

/* Encode a frame header into out; returns its length (2 to 14).
 * mask_key NULL: an unmasked (server) frame; else a masked (client) one. */
size_t ws_header_encode(uint8_t out[14], int fin, int opcode, uint64_t payload_len,
			const uint8_t *mask_key);

/* Append one whole frame (header + payload, masked when mask_key is set;
 * the caller's payload is not modified). 0 or the buf's error. */
int ws_frame_append(buf *out, int fin, int opcode, const void *payload, size_t len,
		    const uint8_t *mask_key);

/* Append a close frame with a code and a reason (cut to fit 125 bytes). */
int ws_close_append(buf *out, int code, const char *reason, const uint8_t *mask_key);

enum ws_event_type {
	WS_EV_NONE = 0, /* need more bytes */
	WS_EV_DATA,     /* a chunk of a text or binary message */
	WS_EV_PING,     /* a whole ping; answer with a pong carrying data */
	WS_EV_PONG,
	WS_EV_CLOSE     /* a close frame: close_code and data (the reason) */
};

typedef struct ws_event {
	enum ws_event_type type;
	int opcode;          /* WS_EV_DATA: WS_OP_TEXT or WS_OP_BINARY of the message */
	int msg_start;       /* WS_EV_DATA: this chunk is the message's first */
	int msg_end;         /* WS_EV_DATA: this chunk is the message's last */
	const uint8_t *data; /* payload (unmasked), points into the fed bytes */
	size_t len;
	int close_code;      /* WS_EV_CLOSE: the code, WS_CLOSE_NO_STATUS if absent */
} ws_event;

typedef struct ws_decoder {
	int server;            /* 1: frames must be masked (we are the server);
				  0: frames must not be (we are the client) */
	uint64_t max_message;  /* cap on one message's total payload (0: 16 MiB) */
	/* private state */
	int in_frame;          /* inside a data frame's payload */
	int in_message;        /* inside a fragmented message */
	int msg_opcode;
	int frame_fin;
	int frame_opcode;
	uint64_t frame_left;   /* payload bytes still to come in this frame */
	uint64_t frame_off;    /* payload bytes seen of this frame (for unmasking) */
	uint64_t msg_len;      /* payload bytes seen of this message */
	uint8_t mask[4];
	int masked;
	int fail_code;         /* close code of the protocol error, once failed */
} ws_decoder;

/* Initialise a decoder for our side of the connection. */
void ws_decoder_init(ws_decoder *d, int server, uint64_t max_message);

/* Decode the next event from p[0..n). p is writable: payload is unmasked in
 * place. Sets *consumed to the bytes used (the caller drops them and feeds
 * the rest again later); ev->type WS_EV_NONE means "feed more bytes" (the
 * caller keeps the unconsumed ones). Returns 0, or a negative err code on a
 * protocol violation (unmasked client frame, reserved bits or opcodes,
 * fragmented or oversized control frame, continuation without a start,
 * message over max_message, bad close payload...), after which
 * ws_decoder_fail_code() gives the close code to send (1002, 1007, 1009)
 * and err_msg() the reason. Data chunks may be empty (a zero-length frame
 * still reports msg_start/msg_end). */
int ws_decoder_next(ws_decoder *d, uint8_t *p, size_t n, size_t *consumed, ws_event *ev);

int ws_decoder_fail_code(const ws_decoder *d);

#endif

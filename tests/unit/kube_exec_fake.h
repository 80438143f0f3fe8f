/*
 * A fake exec server for the kube/exec unit tests: one thread speaking the
 * exec WebSocket protocol (util/ws) on a socket, plain or TLS (OpenSSL),
 * driven by a script. Header-only, included by tests/unit/test_kube_exec*.c.
 */
#ifndef TESTS_UNIT_KUBE_EXEC_FAKE_H
#define TESTS_UNIT_KUBE_EXEC_FAKE_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "util/buf.h"
#include "util/clock.h"
#include "util/ws.h"

#define FAKE_FN static __attribute__((unused))

#define SUCCESS "{\"metadata\":{},\"status\":\"Success\"}"
#define EXIT(n) \
	"{\"metadata\":{},\"status\":\"Failure\",\"message\":\"command terminated with non-zero exit code: " \
	"exit status " #n "\",\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":"      \
	"\"ExitCode\",\"message\":\"" #n "\"}]}}"


typedef struct srv srv;
typedef void (*script_fn)(srv *s);

struct srv {
	int fd;                 /* server end */
	SSL *ssl;               /* set: speak TLS on fd */
	script_fn script;
	pthread_t th;
	int arg;                /* per-test knob */
	const char *answer;     /* per-test canned text */
	char req[16384];        /* the request head received */
	size_t req_len;
	uint8_t rbuf[1 << 17];  /* bytes received, not yet decoded */
	size_t rlen;
	ws_decoder dec;
	int msg_chan;
	buf in;                 /* stdin received (channel 0) */
	int stdin_closed;       /* FF 00 seen */
	int bad_frames;         /* client frames that broke the protocol */
	int pings;
	int client_close;       /* close code from the client, 0 none */
	int eof;
	int answer_pings;
	int64_t first_ping_ms, last_ping_ms;
};

/* I/O on the server end, plain or TLS. */
FAKE_FN ssize_t srv_io_send(srv *s, const void *p, size_t n)
{
	if (s->ssl) {
		int w = SSL_write(s->ssl, p, (int)n);
		return w > 0 ? w : -1;
	}
	return send(s->fd, p, n, MSG_NOSIGNAL);
}

FAKE_FN ssize_t srv_io_recv(srv *s, void *p, size_t n)
{
	if (s->ssl) {
		int r = SSL_read(s->ssl, p, (int)n);
		return r > 0 ? r : (SSL_get_error(s->ssl, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1);
	}
	return recv(s->fd, p, n, 0);
}

/* Wait up to ms for something to read: > 0 when there is. */
FAKE_FN int srv_io_wait(srv *s, int ms)
{
	struct pollfd p = { s->fd, POLLIN, 0 };

	if (s->ssl && SSL_pending(s->ssl) > 0)
		return 1;
	return poll(&p, 1, ms);
}

FAKE_FN void srv_write(srv *s, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = srv_io_send(s, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* the client went away: the test checks what it saw */
		}
		c += w;
		n -= (size_t)w;
	}
}

/* Read the request head. */
FAKE_FN int srv_read_head(srv *s)
{
	while (!strstr(s->req, "\r\n\r\n")) {
		ssize_t r = srv_io_recv(s, s->req + s->req_len, sizeof(s->req) - 1 - s->req_len);

		if (r <= 0)
			return -1;
		s->req_len += (size_t)r;
		s->req[s->req_len] = '\0';
	}
	char *end = strstr(s->req, "\r\n\r\n") + 4;
	s->rlen = s->req_len - (size_t)(end - s->req);
	memcpy(s->rbuf, end, s->rlen);
	*end = '\0';
	return 0;
}

FAKE_FN void srv_101(srv *s, const char *proto)
{
	char accept[29], key[64] = "", out[512];
	const char *k = strstr(s->req, "Sec-WebSocket-Key: ");

	if (k)
		sscanf(k + 19, "%63[^\r]", key);
	ws_accept_key(accept, key);
	int n = snprintf(out, sizeof(out),
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
			 accept, proto ? "Sec-WebSocket-Protocol: " : "", proto ? proto : "", proto ? "\r\n" : "");
	srv_write(s, out, (size_t)n);
}

/* One binary message: channel byte + data, unmasked (server side). */
FAKE_FN void srv_msg(srv *s, int chan, const void *data, size_t len)
{
	buf b = BUF_INIT(1 << 24);
	uint8_t hdr[14];
	size_t hl = ws_header_encode(hdr, 1, WS_OP_BINARY, len + 1, NULL);

	buf_append(&b, hdr, hl);
	buf_append_byte(&b, (unsigned char)chan);
	buf_append(&b, data, len);
	srv_write(s, b.data, b.len);
	buf_free(&b);
}

FAKE_FN void srv_str(srv *s, int chan, const char *str)
{
	srv_msg(s, chan, str, strlen(str));
}

FAKE_FN void srv_close(srv *s, int code)
{
	buf b = BUF_INIT(256);

	ws_close_append(&b, code, "", NULL);
	srv_write(s, b.data, b.len);
	buf_free(&b);
}

/* Decode client frames for up to ms, stopping early when stop(s) holds. */
FAKE_FN void srv_pump(srv *s, int ms, int (*stop)(srv *s))
{
	int64_t until = clock_mono_ms() + ms;

	for (;;) {
		size_t pos = 0;

		while (pos < s->rlen) {
			ws_event ev;
			size_t used = 0;

			if (ws_decoder_next(&s->dec, s->rbuf + pos, s->rlen - pos, &used, &ev) != 0) {
				s->bad_frames++;
				s->eof = 1;
				return;
			}
			pos += used;
			if (ev.type == WS_EV_NONE) {
				if (!used)
					break;
				continue;
			}
			if (ev.type == WS_EV_DATA) {
				const uint8_t *p = ev.data;
				size_t n = ev.len;

				if (ev.msg_start)
					s->msg_chan = -1;
				if (s->msg_chan < 0 && n) {
					s->msg_chan = p[0];
					p++, n--;
				}
				if (s->msg_chan == 0) {
					buf_append(&s->in, p, n);
					if (s->stdin_closed)
						s->bad_frames++; /* stdin after its close */
				} else if (s->msg_chan == 255) {
					if (n != 1 || p[0] != 0)
						s->bad_frames++;
					else
						s->stdin_closed++;
				} else if (s->msg_chan >= 0) {
					s->bad_frames++;
				}
			} else if (ev.type == WS_EV_PING) {
				s->pings++;
				s->last_ping_ms = clock_mono_ms();
				if (!s->first_ping_ms)
					s->first_ping_ms = s->last_ping_ms;
				if (s->answer_pings) {
					buf b = BUF_INIT(256);
					ws_frame_append(&b, 1, WS_OP_PONG, ev.data, ev.len, NULL);
					srv_write(s, b.data, b.len);
					buf_free(&b);
				}
			} else if (ev.type == WS_EV_CLOSE) {
				s->client_close = ev.close_code;
			}
		}
		memmove(s->rbuf, s->rbuf + pos, s->rlen - pos);
		s->rlen -= pos;
		if (stop && stop(s))
			return;
		int64_t left = until - clock_mono_ms();
		if (left <= 0 || s->eof)
			return;
		if (srv_io_wait(s, (int)(left > 50 ? 50 : left)) <= 0)
			continue;
		ssize_t r = srv_io_recv(s, s->rbuf + s->rlen, sizeof(s->rbuf) - s->rlen);
		if (r <= 0) {
			s->eof = 1;
			return;
		}
		s->rlen += (size_t)r;
	}
}

FAKE_FN int stop_on_stdin_close(srv *s)
{
	return s->stdin_closed > 0;
}

FAKE_FN int stop_on_client_close(srv *s)
{
	return s->client_close != 0;
}

FAKE_FN void *srv_main(void *arg)
{
	srv *s = arg;

	if (srv_read_head(s) == 0)
		s->script(s);
	shutdown(s->fd, SHUT_RDWR);
	return NULL;
}


/* The usual end: output, status, close 1000 (as the API server's translator). */
FAKE_FN void sc_hello(srv *s)
{
	srv_101(s, "v5.channel.k8s.io");
	srv_msg(s, 1, "", 0); /* the initial empty message on the lowest writable channel */
	srv_str(s, 1, "hello ");
	srv_str(s, 2, "warning\n");
	srv_str(s, 1, "world\n");
	srv_str(s, 3, s->answer ? s->answer : SUCCESS);
	srv_close(s, 1000);
	srv_pump(s, 1000, stop_on_client_close);
}

/* Output, then the connection just ends: no status, no close frame. */
FAKE_FN void sc_cut(srv *s)
{
	srv_101(s, "v5.channel.k8s.io");
	srv_str(s, 1, "partial output");
	if (s->arg == 1)
		srv_close(s, 1000); /* a normal close, still no status */
	if (s->arg == 2) {
		/* half a status */
		const char *st = SUCCESS;
		srv_msg(s, 3, st, 10);
	}
	if (s->arg == 3) {
		/* a frame header promising more than comes */
		uint8_t h[4] = { 0x82, 126, 0x10, 0x00 };
		srv_write(s, h, 4);
		srv_write(s, "\x01zzz", 4);
	}
}

/* v5 stdin: read until FF 00, then echo it on stdout. */
FAKE_FN void sc_echo(srv *s)
{
	srv_101(s, "v5.channel.k8s.io");
	srv_msg(s, 0, "", 0);
	srv_pump(s, 20000, stop_on_stdin_close);
	for (size_t off = 0; off < s->in.len; off += 32768) {
		size_t n = s->in.len - off < 32768 ? s->in.len - off : 32768;
		srv_msg(s, 1, s->in.data + off, n);
	}
	srv_str(s, 3, s->stdin_closed == 1 && !s->bad_frames ? SUCCESS : EXIT(99));
	srv_close(s, 1000);
	srv_pump(s, 1000, stop_on_client_close);
}

FAKE_FN void fill_pattern(uint8_t *p, size_t n)
{
	uint32_t x = 12345;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245 + 12345;
		p[i] = (uint8_t)(x >> 16);
	}
}

/* Big output, streamed in pieces. */
FAKE_FN void sc_big(srv *s)
{
	size_t n = (size_t)s->arg;
	uint8_t *p = malloc(65536);

	srv_101(s, "v5.channel.k8s.io");
	fill_pattern(p, 65536);
	for (size_t off = 0; off < n; off += 32768) {
		srv_msg(s, 1, p + (off % 65536), 32768);
		if (off % (1u << 20) == 0)
			srv_msg(s, 2, p, 100);
	}
	srv_str(s, 3, SUCCESS);
	srv_close(s, 1000);
	srv_pump(s, 2000, stop_on_client_close);
	free(p);
}

/* HTTP errors before the upgrade. */
FAKE_FN void sc_http_error(srv *s)
{
	srv_write(s, s->answer, strlen(s->answer));
}

#endif

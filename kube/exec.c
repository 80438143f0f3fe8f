/*
 * kube/exec: pod exec over WebSocket (see exec.h for the contract).
 *
 * How one run flows, all in the caller's thread (no helper threads):
 *
 *   kube_exec_run          libcurl CONNECT_ONLY handle set up by the client
 *     |                    (TLS, proxy, credentials of the REST path), one
 *     |                    retry after a 401 with refreshed credentials
 *     v
 *   kube_exec_run_conn     over a kube_exec_conn (curl, or a test socket):
 *     handshake            GET .../exec?command=... Upgrade: websocket,
 *                          Sec-WebSocket-Protocol v5 then v4; a 101 is
 *                          checked (Accept key, chosen protocol), anything
 *                          else is an HTTP error whose Status is surfaced
 *     stream loop          one poll() over the socket, the cancel fd and
 *                          the stdin fd:
 *                            socket bytes -> util/ws decoder -> channel
 *                            1/2 to the output callbacks as they come,
 *                            channel 3 into a capped status buffer;
 *                            stdin -> masked binary frames (channel 0) in
 *                            a fixed outgoing window; v5 ends it with FF 00;
 *                            pings every ping_ms; silence past idle_ms,
 *                            EOF, a reset or a close frame before the
 *                            status end the stream as lost
 *     status               kube/exec_status parses channel 3; the exit
 *                          code comes from its ExitCode cause
 *
 * Upstream behaviour relied on: the channel layout and the FF 00 close of
 * v5 (s/apimachinery/pkg/util/remotecommand/constants.go,
 * s/client-go/tools/remotecommand/websocket.go stream.Close), heartbeat
 * timing (websocket.go pingPeriod/pingReadDeadline), unknown channels are
 * discarded (websocket.go readDemuxLoop), the status is written after the
 * output and followed by a normal close (s/apiserver/pkg/util/proxy/
 * streamtranslator.go, s/kubelet/pkg/cri/streaming/remotecommand/exec.go).
 *
 * TLS note: OpenSSL may hold decrypted bytes that poll() cannot see, so
 * the socket is always read until the transport says "again" before the
 * loop polls; a write that returned "again" is retried with the same bytes
 * (SSL_write's rule), which is why the outgoing window never moves while a
 * write is pending.
 */
#include "kube/exec.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "kube/client_priv.h"
#include "kube/exec_conn.h"
#include "kube/exec_http.h"
#include "kube/exec_status.h"
#include "kube/status.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"
#include "util/ws.h"

#define READ_CHUNK (64u << 10)        /* one recv */
#define IN_CAP (READ_CHUNK + 512)     /* + a partial frame header or control frame */
#define OUT_CAP (256u << 10)          /* the outgoing window */
/* Both buffers start small and grow to their caps only for a stream that
 * moves bulk data (a recv that fills the input buffer, stdin frames that
 * do not fit): most execs move a few KiB, and a process with 1,000 of them
 * at once (bench part 4) held 350 KiB of mostly idle buffers for each. */
#define IN_START ((16u << 10) + 512)
#define OUT_START (16u << 10)
#define OUT_LOW (64u << 10)           /* refill stdin while less than this is queued */
#define STDIN_CHUNK (32u << 10)       /* stdin bytes per frame */
#define READS_PER_ROUND 16            /* then give writes and timers a turn */
#define CANCEL_POLL_MS 100
#define CLOSE_GRACE_MS 2000           /* after the status, wait this long for the close */
#define REQUEST_MAX (64u << 10)
#define ERROR_BODY_MAX (64u << 10)

/* s/apimachinery/pkg/util/remotecommand/constants.go */
#define PROTO_V5 "v5.channel.k8s.io"
#define PROTO_V4 "v4.channel.k8s.io"
enum { CH_STDIN = 0, CH_STDOUT = 1, CH_STDERR = 2, CH_ERROR = 3, CH_CLOSE = 255 };

enum stdin_state { IN_NONE = 0, IN_OPEN, IN_EOF, IN_DONE };

/* One exec session over one connection. */
typedef struct xs {
	const kube_exec_conn *conn;
	const kube_exec_opts *o;
	kube_exec_result *res;
	char what[160];             /* "exec in pod NS/POD" for messages */
	int proto;                  /* 5 or 4 */
	int ping_ms, idle_ms;

	ws_decoder dec;
	uint8_t *in;                /* in_cap (<= IN_CAP): received, not yet decoded */
	size_t in_len, in_cap;
	int in_filled;              /* the last read filled the free space */
	uint8_t *out;               /* out_cap (<= OUT_CAP): frames waiting to be sent */
	size_t out_off, out_len, out_cap;
	int send_blocked;           /* last send said "again": the window is pinned */
	int send_dead;              /* sending failed: only reading goes on */
	uint8_t *tmp;               /* STDIN_CHUNK scratch for stdin */

	int msg_chan;               /* channel of the message being received, -1 unknown */
	buf status;                 /* channel 3 content, capped */
	int status_done;
	kube_exec_status st;
	char status_err[512];       /* why the status did not parse, if it did not */

	int stdin_state;
	size_t stdin_pos;           /* stdin_data sent so far */

	int64_t last_rx, next_ping, status_at;
	int eof;                    /* the transport ended */
	char eof_why[256];
	int peer_closed;            /* a close frame came */
	int close_queued;
	int pong_pending;
	uint8_t pong[125];
	size_t pong_len;
} xs;

/* ---- small helpers ---------------------------------------------------- */

static int cancelled(const kube_exec_opts *o)
{
	if (kube_cancelled(o->cancel))
		return 1;
	if (o->cancel_fd >= 0) {
		struct pollfd p = { o->cancel_fd, POLLIN, 0 };

		return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
	}
	return 0;
}

static size_t out_queued(const xs *s)
{
	return s->out_len - s->out_off;
}

/* Room for n more bytes at the end of the outgoing window, or NULL. The
 * window is compacted only when no write is pending on it. */
static uint8_t *out_reserve(xs *s, size_t n)
{
	if (s->out_off == s->out_len) {
		s->out_off = s->out_len = 0;
		s->send_blocked = 0;
	}
	if (s->out_cap - s->out_len < n && !s->send_blocked && s->out_off > 0) {
		memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
		s->out_len -= s->out_off;
		s->out_off = 0;
	}
	/* grow, but never move the window under a pending write (TLS wants
	 * the same buffer again) */
	if (s->out_cap - s->out_len < n && !s->send_blocked && s->out_cap < OUT_CAP) {
		size_t nc = s->out_cap;
		uint8_t *nb;

		while (nc - s->out_len < n && nc < OUT_CAP)
			nc *= 2;
		if (nc > OUT_CAP)
			nc = OUT_CAP;
		if ((nb = realloc(s->out, nc)) != NULL) {
			s->out = nb;
			s->out_cap = nc;
		}
	}
	if (s->out_cap - s->out_len < n)
		return NULL;
	return s->out + s->out_len;
}

/* Queue one masked frame: [chan byte] + data (chan < 0: no channel byte).
 * 0, or ERR_AGAIN when the window has no room now. */
static int queue_frame(xs *s, int opcode, int chan, const void *data, size_t len)
{
	uint8_t key[4], hdr[14];
	size_t plen = len + (chan >= 0 ? 1 : 0), hlen;
	uint8_t *p;

	ws_mask_key(key);
	hlen = ws_header_encode(hdr, 1, opcode, plen, key);
	p = out_reserve(s, hlen + plen);
	if (!p)
		return ERR_AGAIN;
	memcpy(p, hdr, hlen);
	if (chan >= 0)
		p[hlen] = (uint8_t)chan;
	if (len)
		memcpy(p + hlen + (chan >= 0 ? 1 : 0), data, len);
	ws_mask_apply(p + hlen, plen, key, 0);
	s->out_len += hlen + plen;
	return 0;
}

static int queue_close(xs *s, int code, const char *reason)
{
	uint8_t p[125];
	size_t rl = reason ? strlen(reason) : 0;

	if (s->close_queued)
		return 0;
	if (rl > sizeof(p) - 2)
		rl = sizeof(p) - 2;
	p[0] = (uint8_t)(code >> 8);
	p[1] = (uint8_t)code;
	if (rl)
		memcpy(p + 2, reason, rl);
	if (queue_frame(s, WS_OP_CLOSE, -1, p, rl + 2) != 0)
		return ERR_AGAIN;
	s->close_queued = 1;
	return 0;
}

/* Send what is queued until done or "again". */
static int lost(xs *s, const char *why);

static void flush(xs *s)
{
	while (!s->send_dead && out_queued(s) > 0) {
		size_t sent = 0;
		int rc = s->conn->send(s->conn->ctx, s->out + s->out_off, out_queued(s), &sent);

		if (rc == ERR_AGAIN) {
			s->send_blocked = 1;
			return;
		}
		if (rc < 0) {
			/* Keep reading: the status may already be on its way. */
			s->send_dead = 1;
			s->send_blocked = 0;
			if (!s->eof_why[0])
				snprintf(s->eof_why, sizeof(s->eof_why), "sending failed: %s", err_msg());
			return;
		}
		s->send_blocked = 0;
		s->out_off += sent;
	}
	if (out_queued(s) == 0)
		s->out_off = s->out_len = 0;
}

/* Best effort: push queued frames (a close) for up to ms, then give up. */
static void flush_for(xs *s, int ms)
{
	int64_t until = clock_mono_ms() + ms;

	for (;;) {
		flush(s);
		if (s->send_dead || out_queued(s) == 0)
			return;
		int64_t left = until - clock_mono_ms();
		if (left <= 0)
			return;
		struct pollfd p = { s->conn->fd, POLLOUT, 0 };
		(void)poll(&p, 1, (int)(left < 50 ? left : 50));
	}
}

/* ---- receiving -------------------------------------------------------- */

static int deliver(xs *s, int chan, const uint8_t *p, size_t n)
{
	int rc = 0;

	switch (chan) {
	case CH_STDOUT:
		s->res->stdout_bytes += n;
		if (s->o->on_stdout)
			rc = s->o->on_stdout(s->o->out_arg, p, n);
		break;
	case CH_STDERR:
		s->res->stderr_bytes += n;
		if (s->o->on_stderr)
			rc = s->o->on_stderr(s->o->out_arg, p, n);
		break;
	case CH_ERROR:
		if (s->status_done)
			break;
		if (buf_append(&s->status, p, n) != 0) {
			char why[96];

			snprintf(why, sizeof(why), "the status on channel 3 is over the %u-byte cap",
				 KUBE_EXEC_STATUS_MAX);
			(void)queue_close(s, WS_CLOSE_TOO_BIG, "status too big");
			return lost(s, why);
		}
		break;
	default:
		/* websocket.go readDemuxLoop: "Unknown stream id, discarding message" */
		break;
	}
	if (rc > 0)
		rc = 0;
	return rc;
}

static void status_check(xs *s)
{
	int rc = kube_exec_status_parse(&s->st, s->status.data, s->status.len);

	if (rc == 0) {
		s->status_done = 1;
		s->status_at = clock_mono_ms();
		s->status_err[0] = '\0';
	} else {
		snprintf(s->status_err, sizeof(s->status_err), "%s", err_msg());
	}
}

/* Decode what is in s->in. 0, ERR_INVALID/ERR_TOOBIG for a protocol
 * violation (s->eof_why says what), or a callback's code. */
static int process(xs *s)
{
	size_t pos = 0;
	int rc = 0;

	while (pos < s->in_len && !s->peer_closed) {
		ws_event ev;
		size_t used = 0;

		rc = ws_decoder_next(&s->dec, s->in + pos, s->in_len - pos, &used, &ev);
		if (rc) {
			char why[300];

			snprintf(why, sizeof(why), "WebSocket protocol error from the server: %s", err_msg());
			(void)queue_close(s, ws_decoder_fail_code(&s->dec), "protocol error");
			rc = lost(s, why);
			break;
		}
		pos += used;
		if (ev.type == WS_EV_NONE) {
			if (used == 0)
				break;
			continue;
		}
		if (ev.type == WS_EV_DATA) {
			const uint8_t *p = ev.data;
			size_t n = ev.len;

			if (ev.msg_start) {
				s->msg_chan = -1;
				/* websocket.go: remote command protocols use only binary messages */
				if (ev.opcode != WS_OP_BINARY) {
					(void)queue_close(s, WS_CLOSE_UNSUPPORTED, "binary messages only");
					rc = lost(s, "the server sent a text message (only binary ones are valid)");
					break;
				}
			}
			if (s->msg_chan < 0 && n > 0) {
				s->msg_chan = p[0];
				p++;
				n--;
			}
			if (n > 0 && (rc = deliver(s, s->msg_chan, p, n)) != 0)
				break;
			if (ev.msg_end) {
				if (s->msg_chan == CH_ERROR && !s->status_done)
					status_check(s);
				s->msg_chan = -1;
			}
		} else if (ev.type == WS_EV_PING) {
			s->pong_len = ev.len;
			memcpy(s->pong, ev.data, ev.len);
			s->pong_pending = 1;
		} else if (ev.type == WS_EV_CLOSE) {
			s->peer_closed = 1;
			s->res->close_code = ev.close_code;
			/* RFC 6455 5.5.1: answer a close with a close */
			(void)queue_close(s, ev.close_code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : ev.close_code,
					  NULL);
		}
		/* WS_EV_PONG: receiving it already pushed the read deadline */
	}
	if (pos > 0) {
		memmove(s->in, s->in + pos, s->in_len - pos);
		s->in_len -= pos;
	}
	return rc;
}

/* Read and decode until the transport says "again" (return 0), the stream
 * ends (s->eof, return 0), or READS_PER_ROUND reads (return 1: more may be
 * waiting, possibly inside TLS). Negative: a protocol error or a callback's
 * code. */
static int receive(xs *s)
{
	for (int i = 0; i < READS_PER_ROUND; i++) {
		size_t got = 0;
		int rc;

		if (s->eof || s->peer_closed)
			return 0;
		size_t room;

		if (s->in_filled && s->in_cap < IN_CAP) {
			/* a read filled it: a bulk stream, take the full size */
			uint8_t *nb = realloc(s->in, IN_CAP);

			if (nb) {
				s->in = nb;
				s->in_cap = IN_CAP;
			}
		}
		room = s->in_cap - s->in_len;
		rc = s->conn->recv(s->conn->ctx, s->in + s->in_len, room, &got);
		s->in_filled = got == room;
		if (rc == ERR_AGAIN)
			return 0;
		if (rc < 0) {
			s->eof = 1;
			snprintf(s->eof_why, sizeof(s->eof_why), "the connection failed: %s", err_msg());
			return 0;
		}
		if (got == 0) {
			s->eof = 1;
			if (!s->eof_why[0])
				snprintf(s->eof_why, sizeof(s->eof_why),
					 "the connection was closed without a WebSocket close frame");
			return 0;
		}
		s->last_rx = clock_mono_ms();
		s->in_len += got;
		rc = process(s);
		if (rc)
			return rc;
	}
	return 1;
}

/* ---- sending stdin ---------------------------------------------------- */

/* Move stdin into frames while the window is low. 0 or an error to end
 * the run with (a stdin callback's code, a read error). */
static int pump_stdin(xs *s, int fd_ready)
{
	const kube_exec_opts *o = s->o;

	while (s->stdin_state == IN_OPEN && out_queued(s) < OUT_LOW) {
		size_t n = 0;

		if (o->stdin_data) {
			n = o->stdin_len - s->stdin_pos;
			if (n > STDIN_CHUNK)
				n = STDIN_CHUNK;
			if (n == 0) {
				s->stdin_state = IN_EOF;
				break;
			}
			if (queue_frame(s, WS_OP_BINARY, CH_STDIN, (const uint8_t *)o->stdin_data + s->stdin_pos,
					n) != 0)
				break;
			s->stdin_pos += n;
		} else if (o->stdin_read) {
			int rc;

			if (!out_reserve(s, STDIN_CHUNK + 16))
				break;
			rc = o->stdin_read(o->stdin_arg, s->tmp, STDIN_CHUNK, &n);
			if (rc < 0)
				return rc;
			if (n > STDIN_CHUNK)
				return err_set(ERR_INVALID, "%s: the stdin callback returned more than it was given room for",
					       s->what);
			if (n == 0) {
				s->stdin_state = IN_EOF;
				break;
			}
			(void)queue_frame(s, WS_OP_BINARY, CH_STDIN, s->tmp, n);
		} else {
			ssize_t r;

			if (!fd_ready || !out_reserve(s, STDIN_CHUNK + 16))
				break;
			fd_ready = 0; /* one read per readiness report */
			r = read(o->stdin_fd, s->tmp, STDIN_CHUNK);
			if (r < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
					break;
				return err_set(ERR_FAIL, "%s: reading stdin: %s", s->what, strerror(errno));
			}
			if (r == 0) {
				s->stdin_state = IN_EOF;
				break;
			}
			n = (size_t)r;
			(void)queue_frame(s, WS_OP_BINARY, CH_STDIN, s->tmp, n);
		}
		s->res->stdin_bytes += n;
	}
	if (s->stdin_state == IN_EOF) {
		if (s->proto == 5) {
			/* v5 half-close: the 2-byte message CLOSE(255), stream 0
			 * (websocket.go stream.Close). */
			static const uint8_t fin[1] = { CH_STDIN };

			if (queue_frame(s, WS_OP_BINARY, CH_CLOSE, fin, 1) == 0)
				s->stdin_state = IN_DONE;
		} else {
			/* v4 has no half-close over WebSocket (k/k #89899): the
			 * command must find its input's end by itself. Closing
			 * the connection here would lose output and status. */
			s->stdin_state = IN_DONE;
		}
	}
	return 0;
}

/* ---- handshake -------------------------------------------------------- */

/* Wait until fd is ready for events, the deadline passes or the run is
 * cancelled. 0, ERR_TIMEOUT, ERR_CANCELLED. */
static int wait_io(xs *s, short events, int64_t until)
{
	for (;;) {
		struct pollfd p[2] = { { s->conn->fd, events, 0 }, { s->o->cancel_fd, POLLIN, 0 } };
		int64_t left = until - clock_mono_ms();
		int n;

		if (cancelled(s->o))
			return err_set(ERR_CANCELLED, "%s: cancelled", s->what);
		if (left <= 0)
			return ERR_TIMEOUT;
		if (s->o->cancel && left > CANCEL_POLL_MS)
			left = CANCEL_POLL_MS;
		n = poll(p, s->o->cancel_fd >= 0 ? 2 : 1, (int)left);
		if (n < 0 && errno != EINTR)
			return err_set(ERR_FAIL, "%s: poll: %s", s->what, strerror(errno));
		if (n > 0 && p[0].revents)
			return 0;
	}
}

static int64_t handshake_until(const xs *s)
{
	int64_t until = clock_mono_ms() + s->idle_ms;

	if (s->o->deadline_ms && s->o->deadline_ms < until)
		until = s->o->deadline_ms;
	return until;
}

/* The handshake waited idle_ms for the server. ERR_TIMEOUT only when the
 * run's deadline is what ended it; before it, ERR_AGAIN: an overloaded API
 * server that has not answered yet is a transient failure, and the caller
 * may try again (the command may or may not have been started: callers
 * that retry make that safe, sandbox/command.c). */
static int handshake_timeout_code(const xs *s)
{
	if (!s->o->deadline_ms || clock_mono_ms() < s->o->deadline_ms - 5)
		return ERR_AGAIN;
	return ERR_TIMEOUT;
}

static int send_all(xs *s, const char *p, size_t n, int64_t until)
{
	while (n > 0) {
		size_t sent = 0;
		int rc = s->conn->send(s->conn->ctx, p, n, &sent);

		if (rc == ERR_AGAIN) {
			rc = wait_io(s, POLLOUT, until);
			if (rc == ERR_TIMEOUT)
				return err_set(handshake_timeout_code(s), "%s: timed out sending the upgrade request",
					       s->what);
			if (rc)
				return rc;
			continue;
		}
		if (rc < 0)
			return err_set(ERR_AGAIN, "%s: sending the upgrade request: %s", s->what, err_msg());
		p += sent;
		n -= sent;
	}
	return 0;
}

/* Read more of the answer into b (capped). 0 with *eof set at the end,
 * or an error. Waits as needed. */
static int read_more(xs *s, buf *b, int64_t until, int *eof)
{
	/* s->in is the scratch: no WebSocket byte is in it before the
	 * upgrade's answer has been read (a stack buffer here sat under
	 * libcurl's and OpenSSL's frames in every exec's thread) */
	uint8_t *tmp = s->in;

	*eof = 0;
	for (;;) {
		size_t got = 0;
		int rc = s->conn->recv(s->conn->ctx, tmp, s->in_cap, &got);

		if (rc == ERR_AGAIN) {
			rc = wait_io(s, POLLIN, until);
			if (rc == ERR_TIMEOUT)
				return err_set(handshake_timeout_code(s), "%s: no answer to the upgrade request within %d ms",
					       s->what, s->idle_ms);
			if (rc)
				return rc;
			continue;
		}
		if (rc < 0)
			return err_set(ERR_AGAIN, "%s: reading the answer to the upgrade request: %s", s->what,
				       err_msg());
		if (got == 0) {
			*eof = 1;
			return 0;
		}
		if (buf_append(b, tmp, got) != 0)
			return err_set(ERR_TOOBIG, "%s: the server's answer is over %zu bytes", s->what, b->max);
		return 0;
	}
}

/* The answer is an HTTP error: read its body and turn its Status into our
 * error (kube/status.h maps codes and adds what to do). Not inlined: its
 * 8 KiB Status would sit in the frame of every exec. */
static __attribute__((noinline)) int http_error(xs *s, const kube_exec_http_head *h, buf *raw, int64_t until, const char *protocols)
{
	buf body = BUF_INIT(ERROR_BODY_MAX);
	kube_status st;
	int rc = 0, eof = 0;
	size_t used;

	buf_consume(raw, h->head_len);
	for (;;) {
		if (h->chunked) {
			rc = kube_exec_http_chunked_decode(&body, raw->data ? raw->data : "", raw->len, &used);
			if (rc != ERR_AGAIN)
				break;
		} else if (h->content_length >= 0 &&
			   (raw->len >= (uint64_t)h->content_length || raw->len >= ERROR_BODY_MAX)) {
			size_t n = raw->len < (uint64_t)h->content_length ? raw->len : (size_t)h->content_length;

			rc = buf_append(&body, raw->data, n < ERROR_BODY_MAX ? n : ERROR_BODY_MAX);
			break;
		} else if (raw->len >= ERROR_BODY_MAX) {
			rc = buf_append(&body, raw->data, ERROR_BODY_MAX);
			break;
		}
		if (eof) {
			/* what arrived is the body (a cut chunked body: its raw text) */
			buf_reset(&body);
			rc = buf_append(&body, raw->data ? raw->data : "", raw->len);
			break;
		}
		rc = read_more(s, raw, until, &eof);
		if (rc == ERR_TOOBIG) {
			rc = 0;
			eof = 1;
		} else if (rc) {
			/* the status line alone still says enough */
			err_clear();
			eof = 1;
		}
	}
	kube_status_from_body(&st, h->code, buf_cstr(&body), body.len);
	if (!st.message[0])
		snprintf(st.message, sizeof(st.message), "HTTP %d %s", h->code, h->reason);
	kube_status_set_last(&st);
	rc = kube_status_err(&st, s->what);
	if (h->code == 403 && !st.is_status) {
		/* golang.org/x/net/websocket answers a bare 403 when no offered
		 * subprotocol is supported: not an RBAC denial. */
		char prev[768];

		snprintf(prev, sizeof(prev), "%s", err_msg());
		rc = err_set(rc, "%s (a 403 without a Status can also mean the server supports none of the offered subprotocols: %s)",
			     prev, protocols);
	}
	buf_free(&body);
	return rc;
}

static int handshake(xs *s, const kube_exec_request *req)
{
	char key[25], accept[29];
	const char *protocols = s->o->protocol == 5 ? PROTO_V5
				: s->o->protocol == 4 ? PROTO_V4
				: PROTO_V5 ", " PROTO_V4;
	buf rq = BUF_INIT(REQUEST_MAX);
	buf raw = BUF_INIT(KUBE_EXEC_HEAD_MAX + READ_CHUNK);
	kube_exec_http_head h;
	int64_t until = handshake_until(s);
	int rc, eof = 0;

	if ((rc = ws_client_key(key)) || (rc = ws_accept_key(accept, key)))
		goto done;
	if ((rc = kube_exec_http_request(&rq, req->host, req->target, key, protocols, req->headers)))
		goto done;
	if ((rc = send_all(s, rq.data, rq.len, until)))
		goto done;
	for (;;) {
		rc = kube_exec_http_head_parse(&h, raw.data ? raw.data : "", raw.len);
		if (rc == 0)
			break;
		if (rc != ERR_AGAIN) {
			rc = err_wrap(ERR_FAIL, "%s", s->what);
			goto done;
		}
		if (eof) {
			rc = err_set(ERR_AGAIN, "%s: the server closed the connection %s", s->what,
				     raw.len ? "in the middle of its answer" : "without answering the upgrade request");
			goto done;
		}
		if ((rc = read_more(s, &raw, until, &eof)))
			goto done;
	}
	s->res->http_code = h.code;
	if (h.code != 101) {
		rc = http_error(s, &h, &raw, until, protocols);
		goto done;
	}
	/* RFC 6455 4.1: the client MUST fail the connection unless these hold. */
	if (strcasecmp(h.upgrade, "websocket") != 0 || !h.conn_upgrade) {
		rc = err_set(ERR_FAIL, "%s: the server answered 101 without \"Upgrade: websocket\" and \"Connection: Upgrade\"",
			     s->what);
		goto done;
	}
	if (strcmp(h.accept, accept) != 0) {
		rc = err_set(ERR_FAIL, "%s: the server's Sec-WebSocket-Accept \"%s\" does not match the key sent",
			     s->what, h.accept);
		goto done;
	}
	if (strcmp(h.protocol, PROTO_V5) == 0 && s->o->protocol != 4) {
		s->proto = 5;
	} else if (strcmp(h.protocol, PROTO_V4) == 0 && s->o->protocol != 5) {
		s->proto = 4;
	} else {
		/* Without v4+ there is no Status with an exit code to trust
		 * (websocket.go falls back to v1 when none is negotiated). */
		rc = err_set(ERR_FAIL, "%s: the server chose subprotocol \"%s\"; offered: %s", s->what,
			     h.protocol[0] ? h.protocol : "(none)", protocols);
		goto done;
	}
	s->res->protocol = s->proto;
	/* bytes after the head already belong to the WebSocket stream */
	if (raw.len - h.head_len > s->in_cap) {
		uint8_t *nb = realloc(s->in, raw.len - h.head_len);

		if (!nb) {
			rc = err_set(ERR_NOMEM, "%s: out of memory", s->what);
			goto done;
		}
		s->in = nb;
		s->in_cap = raw.len - h.head_len;
	}
	memcpy(s->in, raw.data + h.head_len, raw.len - h.head_len);
	s->in_len = raw.len - h.head_len;
	rc = 0;
done:
	buf_free(&rq);
	buf_free(&raw);
	return rc;
}

/* ---- the stream ------------------------------------------------------- */

static int lost(xs *s, const char *why)
{
	char st[600] = "";

	if (s->status.len > 0 && s->status_err[0])
		snprintf(st, sizeof(st), "; a status arrived but was not valid: %s", s->status_err);
	return err_set(ERR_LOST, "%s: the exec stream ended without an exit status: the command's outcome is unknown (%s%s)",
		       s->what, why, st);
}

static int finish_status(xs *s)
{
	kube_exec_result *r = s->res;

	(void)str_copy(r->reason, sizeof(r->reason), s->st.reason);
	(void)str_copy(r->message, sizeof(r->message), s->st.message);
	if (s->st.outcome == KUBE_EXEC_EXITED) {
		r->exit_code = s->st.exit_code;
		r->signal = kube_exec_signal_of(r->exit_code);
		return 0;
	}
	if (s->st.code)
		return err_set(ERR_FAIL, "%s: %s (%s, code %d)", s->what,
			       s->st.message[0] ? s->st.message : "the command failed without a message",
			       s->st.reason[0] ? s->st.reason : "Failure", s->st.code);
	return err_set(ERR_FAIL, "%s: %s (%s)", s->what,
		       s->st.message[0] ? s->st.message : "the command failed without a message",
		       s->st.reason[0] ? s->st.reason : "Failure");
}

static int stream(xs *s)
{
	const kube_exec_opts *o = s->o;
	int rc = 0, more = 1, fd_ready = 0;

	s->last_rx = clock_mono_ms();
	s->next_ping = s->last_rx + (s->ping_ms > 0 ? s->ping_ms : 0);
	/* bytes that came with the 101 */
	if (s->in_len && (rc = process(s)) != 0)
		goto abort;
	for (;;) {
		struct pollfd p[3];
		int np = 0, sock_i, cancel_i = -1, stdin_i = -1, n;
		int64_t now = clock_mono_ms(), timeout;

		if (more && !s->eof && !s->peer_closed) {
			rc = receive(s);
			if (rc < 0)
				goto abort;
			more = rc;
		}
		if (s->peer_closed || s->eof)
			break;
		if (s->status_done && s->close_queued && now - s->status_at >= CLOSE_GRACE_MS)
			break;
		if (cancelled(o)) {
			rc = err_set(ERR_CANCELLED, "%s: cancelled", s->what);
			(void)queue_close(s, WS_CLOSE_NORMAL, "cancelled");
			goto abort;
		}
		if (o->deadline_ms && now >= o->deadline_ms) {
			rc = err_set(ERR_TIMEOUT, "%s: the deadline passed before the command ended", s->what);
			(void)queue_close(s, WS_CLOSE_NORMAL, "deadline");
			goto abort;
		}
		if (now - s->last_rx >= s->idle_ms) {
			char why[96];

			snprintf(why, sizeof(why), "nothing from the server, not even a pong, for %d ms", s->idle_ms);
			rc = lost(s, why);
			(void)queue_close(s, WS_CLOSE_GOING_AWAY, "idle");
			goto abort;
		}
		if (s->status_done && !s->close_queued)
			(void)queue_close(s, WS_CLOSE_NORMAL, NULL);
		if (s->pong_pending && queue_frame(s, WS_OP_PONG, -1, s->pong, s->pong_len) == 0)
			s->pong_pending = 0;
		if (s->ping_ms > 0 && now >= s->next_ping && !s->close_queued) {
			(void)queue_frame(s, WS_OP_PING, -1, NULL, 0);
			s->next_ping = now + s->ping_ms;
		}
		/* Fill and send until the socket pushes back or stdin has
		 * nothing more right now. */
		for (int round = 0; round < 64; round++) {
			uint64_t sent_before = s->res->stdin_bytes;
			int state_before = s->stdin_state;
			int had_room = out_queued(s) < OUT_LOW;

			if (!s->status_done && !s->close_queued && !s->send_dead &&
			    (rc = pump_stdin(s, fd_ready)) != 0)
				goto abort;
			fd_ready = 0;
			flush(s);
			if (s->send_blocked || s->send_dead || s->stdin_state == IN_NONE ||
			    s->stdin_state == IN_DONE)
				break;
			/* room, yet nothing came: stdin has nothing now */
			if (had_room && s->res->stdin_bytes == sent_before && s->stdin_state == state_before)
				break;
		}

		sock_i = np;
		p[np++] = (struct pollfd){ s->conn->fd, (short)(POLLIN | (out_queued(s) && !s->send_dead ? POLLOUT : 0)),
					   0 };
		if (o->cancel_fd >= 0) {
			cancel_i = np;
			p[np++] = (struct pollfd){ o->cancel_fd, POLLIN, 0 };
		}
		if (o->stdin_fd >= 0 && !o->stdin_data && !o->stdin_read && s->stdin_state == IN_OPEN &&
		    !s->status_done && !s->close_queued && !s->send_dead && out_queued(s) < OUT_LOW) {
			stdin_i = np;
			p[np++] = (struct pollfd){ o->stdin_fd, POLLIN, 0 };
		}
		timeout = s->last_rx + s->idle_ms - now;
		if (s->ping_ms > 0 && !s->close_queued && s->next_ping - now < timeout)
			timeout = s->next_ping - now;
		if (o->deadline_ms && o->deadline_ms - now < timeout)
			timeout = o->deadline_ms - now;
		if (s->status_done && s->status_at + CLOSE_GRACE_MS - now < timeout)
			timeout = s->status_at + CLOSE_GRACE_MS - now;
		if (o->cancel && timeout > CANCEL_POLL_MS)
			timeout = CANCEL_POLL_MS;
		if (timeout < 0 || more)
			timeout = 0;
		n = poll(p, (nfds_t)np, (int)timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = err_set(ERR_FAIL, "%s: poll: %s", s->what, strerror(errno));
			goto abort;
		}
		if (p[sock_i].revents & (POLLIN | POLLHUP | POLLERR))
			more = 1;
		if (stdin_i >= 0 && (p[stdin_i].revents & (POLLIN | POLLHUP | POLLERR)))
			fd_ready = 1;
		(void)cancel_i; /* its readiness is seen by cancelled() at the top */
	}
	/* The stream is over: the status decides. */
	flush_for(s, s->peer_closed ? 200 : 0);
	if (s->status_done)
		return finish_status(s);
	if (s->peer_closed) {
		char why[160];

		snprintf(why, sizeof(why), "the server closed the WebSocket with code %d", s->res->close_code);
		return lost(s, why);
	}
	return lost(s, s->eof_why[0] ? s->eof_why : "the connection ended");
abort:
	flush_for(s, 200);
	return rc;
}

/* ---- public ----------------------------------------------------------- */

static void result_init(kube_exec_result *r)
{
	memset(r, 0, sizeof(*r));
	r->exit_code = -1;
}

static int check_opts(const kube_exec_opts *o)
{
	int sources = (o->stdin_data != NULL) + (o->stdin_fd >= 0) + (o->stdin_read != NULL);

	if (!o->pod || !o->pod[0])
		return err_set(ERR_INVALID, "exec: no pod given");
	if (!o->argv || !o->argv[0] || !o->argv[0][0])
		return err_set(ERR_INVALID, "exec in pod %s: no command given", o->pod);
	if (sources > 1)
		return err_set(ERR_INVALID, "exec in pod %s: more than one stdin source given", o->pod);
	if (!sources && !o->on_stdout && !o->on_stderr)
		return err_set(ERR_INVALID, "exec in pod %s: at least one of stdin, stdout and stderr must be requested",
			       o->pod);
	if (o->protocol != 0 && o->protocol != 4 && o->protocol != 5)
		return err_set(ERR_INVALID, "exec in pod %s: protocol must be 0, 4 or 5", o->pod);
	return 0;
}

int kube_exec_target(buf *out, const char *prefix, const char *ns, const kube_exec_opts *o)
{
	int rc;

	if ((rc = check_opts(o)))
		return rc;
	if (!ns || !ns[0])
		return err_set(ERR_INVALID, "exec in pod %s: no namespace given", o->pod);
	rc = buf_printf(out, "%s/api/v1/namespaces/", prefix ? prefix : "");
	rc = rc ? rc : kube_exec_http_escape(out, ns);
	rc = rc ? rc : buf_append_str(out, "/pods/");
	rc = rc ? rc : kube_exec_http_escape(out, o->pod);
	rc = rc ? rc : buf_append_str(out, "/exec?");
	for (size_t i = 0; !rc && o->argv[i]; i++) {
		rc = buf_append_str(out, i ? "&command=" : "command=");
		rc = rc ? rc : kube_exec_http_escape(out, o->argv[i]);
	}
	if (!rc && o->container && o->container[0]) {
		rc = buf_append_str(out, "&container=");
		rc = rc ? rc : kube_exec_http_escape(out, o->container);
	}
	/* Booleans: only absent, "0" or "false" are false
	 * (s/apimachinery/pkg/runtime/conversion.go): leave out what is not wanted. */
	if (!rc && (o->stdin_data || o->stdin_fd >= 0 || o->stdin_read))
		rc = buf_append_str(out, "&stdin=true");
	if (!rc && o->on_stdout)
		rc = buf_append_str(out, "&stdout=true");
	if (!rc && o->on_stderr)
		rc = buf_append_str(out, "&stderr=true");
	return rc ? err_set(rc, "exec in pod %s: the request URL is too long", o->pod) : 0;
}

int kube_exec_run_conn(kube_exec_result *out, const kube_exec_conn *conn, const kube_exec_request *req,
		       const kube_exec_opts *o)
{
	xs s;
	int64_t t0 = clock_mono_ms();
	int rc;

	result_init(out);
	memset(&s, 0, sizeof(s));
	s.conn = conn;
	s.o = o;
	s.res = out;
	s.msg_chan = -1;
	buf_init(&s.status, KUBE_EXEC_STATUS_MAX);
	snprintf(s.what, sizeof(s.what), "exec in pod %s", o->pod ? o->pod : "?");
	if ((rc = check_opts(o)))
		goto done;
	s.ping_ms = o->ping_ms == 0 ? KUBE_EXEC_PING_MS_DEFAULT : o->ping_ms;
	s.idle_ms = o->idle_ms > 0 ? o->idle_ms : KUBE_EXEC_IDLE_MS_DEFAULT;
	s.stdin_state = (o->stdin_data || o->stdin_fd >= 0 || o->stdin_read) ? IN_OPEN : IN_NONE;
	ws_decoder_init(&s.dec, 0, o->max_message ? o->max_message : KUBE_EXEC_MAX_MESSAGE_DEFAULT);
	s.in_cap = IN_START;
	s.out_cap = OUT_START;
	s.in = malloc(s.in_cap);
	s.out = malloc(s.out_cap);
	s.tmp = s.stdin_state == IN_NONE ? NULL : malloc(STDIN_CHUNK);
	if (!s.in || !s.out || (s.stdin_state != IN_NONE && !s.tmp)) {
		rc = err_set(ERR_NOMEM, "%s: out of memory", s.what);
		goto done;
	}
	if ((rc = handshake(&s, req)))
		goto done;
	rc = stream(&s);
done:
	out->duration_ms = clock_mono_ms() - t0;
	buf_free(&s.status);
	free(s.in);
	free(s.out);
	free(s.tmp);
	return rc;
}

/* ---- over libcurl ----------------------------------------------------- */

static int curl_conn_send(void *ctx, const void *p, size_t n, size_t *sent)
{
	CURLcode cc = curl_easy_send((CURL *)ctx, p, n, sent);

	if (cc == CURLE_OK)
		return *sent ? 0 : ERR_AGAIN;
	if (cc == CURLE_AGAIN)
		return ERR_AGAIN;
	return err_set(ERR_LOST, "%s", curl_easy_strerror(cc));
}

static int curl_conn_recv(void *ctx, void *p, size_t n, size_t *got)
{
	CURLcode cc = curl_easy_recv((CURL *)ctx, p, n, got);

	if (cc == CURLE_OK)
		return 0;
	if (cc == CURLE_AGAIN)
		return ERR_AGAIN;
	return err_set(ERR_LOST, "%s", curl_easy_strerror(cc));
}

/* libcurl's progress callback during the connect: cancel and deadline. */
static int connect_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	const kube_exec_opts *o = arg;

	(void)a, (void)b, (void)c, (void)d;
	if (cancelled(o))
		return 1;
	return o->deadline_ms && clock_mono_ms() >= o->deadline_ms;
}

/* Split "https://host:port[/prefix]" into the Host header value and the
 * path prefix. */
static int split_server(const char *server, char *host, size_t hsize, const char **prefix)
{
	const char *a = strstr(server, "://");
	const char *slash;

	if (!a)
		return err_set(ERR_INVALID, "exec: server URL \"%s\" has no scheme", server);
	a += 3;
	slash = strchr(a, '/');
	if ((size_t)((slash ? slash : a + strlen(a)) - a) >= hsize || slash == a)
		return err_set(ERR_INVALID, "exec: bad server URL \"%s\"", server);
	snprintf(host, hsize, "%.*s", (int)((slash ? slash : a + strlen(a)) - a), a);
	*prefix = slash ? slash : "";
	/* no trailing slash in the prefix: targets start with '/' */
	return 0;
}

static int has_header(const struct curl_slist *l, const char *name)
{
	size_t n = strlen(name);

	for (; l; l = l->next)
		if (strncasecmp(l->data, name, n) == 0 && l->data[n] == ':')
			return 1;
	return 0;
}

/* Basic credentials go through CURLOPT_USERNAME on the REST path, which a
 * CONNECT_ONLY handle never sends: write the header ourselves. */
static int add_basic_auth(struct curl_slist **headers, const kube_config *cfg)
{
	buf raw = BUF_INIT(4096), enc = BUF_INIT(8192);
	struct curl_slist *n;
	char *line = NULL;
	int rc;

	if (has_header(*headers, "Authorization") || (!cfg->username && !cfg->password) || cfg->token ||
	    cfg->token_file || cfg->exec)
		return 0;
	rc = buf_printf(&raw, "%s:%s", cfg->username ? cfg->username : "", cfg->password ? cfg->password : "");
	rc = rc ? rc : str_base64_encode(&enc, raw.data, raw.len);
	if (!rc) {
		line = str_printf("Authorization: Basic %s", buf_cstr(&enc));
		n = line ? curl_slist_append(*headers, line) : NULL;
		if (!n)
			rc = err_set(ERR_NOMEM, "out of memory");
		else
			*headers = n;
	}
	if (raw.data)
		explicit_bzero(raw.data, raw.len);
	if (enc.data)
		explicit_bzero(enc.data, enc.len);
	if (line) {
		explicit_bzero(line, strlen(line));
		free(line);
	}
	buf_free(&raw);
	buf_free(&enc);
	return rc;
}

static int run_once(kube_exec_result *out, kube_client *c, const kube_exec_opts *o, const char *host,
		    const char *target)
{
	CURL *h = curl_easy_init();
	struct curl_slist *headers = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	char url[1024];
	curl_socket_t sock = CURL_SOCKET_BAD;
	CURLcode cc;
	kube_exec_conn conn;
	kube_exec_request req;
	int rc;

	if (!h)
		return err_set(ERR_NOMEM, "exec in pod %s: curl_easy_init failed", o->pod);
	if ((rc = kube_client_curl_setup(c, h, &headers)))
		goto done;
	if ((rc = add_basic_auth(&headers, kube_client_config(c))))
		goto done;
	snprintf(url, sizeof(url), "%s/", kube_client_server(c));
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
	if (kube_client_config(c)->proxy_url)
		curl_easy_setopt(h, CURLOPT_HTTPPROXYTUNNEL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, connect_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)o);
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		if (cancelled(o))
			rc = err_set(ERR_CANCELLED, "exec in pod %s: cancelled while connecting", o->pod);
		else if (cc == CURLE_ABORTED_BY_CALLBACK)
			rc = err_set(ERR_TIMEOUT, "exec in pod %s: the deadline passed while connecting", o->pod);
		else
		{
			char why[CURL_ERROR_SIZE + 64];
			rc = err_set(ERR_AGAIN, "exec in pod %s: connecting to %s: %s", o->pod, kube_client_server(c),
				     kube_curl_error(h, cc, errbuf, why, sizeof why));
		}
		goto done;
	}
	if (curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &sock) != CURLE_OK || sock == CURL_SOCKET_BAD) {
		rc = err_set(ERR_FAIL, "exec in pod %s: libcurl gave no socket for the connection", o->pod);
		goto done;
	}
	conn = (kube_exec_conn){ h, (int)sock, curl_conn_send, curl_conn_recv };
	req = (kube_exec_request){ host, target, headers };
	rc = kube_exec_run_conn(out, &conn, &req, o);
done:
	kube_client_count_request(c, "EXEC", out->http_code);
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	return rc;
}

int kube_exec_run(kube_exec_result *out, kube_client *c, const kube_exec_opts *o)
{
	buf target = BUF_INIT(256u << 10);
	char host[512];
	const char *prefix = "";
	sigset_t pipe_set, old_set, pending;
	int rc, had_pipe;

	result_init(out);
	kube_status_set_last(NULL);
	if ((rc = split_server(kube_client_server(c), host, sizeof(host), &prefix)))
		goto done;
	if ((rc = kube_exec_target(&target, prefix, o->ns ? o->ns : kube_client_namespace(c), o)))
		goto done;

	/* A write on a socket the server closed raises SIGPIPE for this
	 * thread (OpenSSL writes with write(2)): keep it blocked during the
	 * run and swallow one raised here, so the process is not killed. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
	sigpending(&pending);
	had_pipe = sigismember(&pending, SIGPIPE);

	for (int attempt = 0; attempt < 2; attempt++) {
		int64_t t0 = clock_mono_ms();

		rc = run_once(out, c, o, host, buf_cstr(&target));
		out->duration_ms = clock_mono_ms() - t0;
		out->attempts = attempt + 1;
		if (rc != ERR_UNAUTHORIZED || attempt == 1)
			break;
		/* the credential may have rotated: refresh and try once more
		 * (nothing ran: the answer came before the upgrade) */
		kube_client_note_unauthorized(c);
	}

	sigpending(&pending);
	if (!had_pipe && sigismember(&pending, SIGPIPE)) {
		struct timespec zero = { 0, 0 };

		(void)sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old_set, NULL);
done:
	buf_free(&target);
	return rc;
}

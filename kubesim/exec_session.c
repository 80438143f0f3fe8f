/*
 * exec_session: the kubelet side of one pods/exec stream, as the API
 * server's WebSocket translator and the kubelet serve it
 * (staging/src/k8s.io/apiserver/pkg/util/proxy/websocket.go,
 * staging/src/k8s.io/kubelet/pkg/cri/streaming/remotecommand/websocket.go,
 * wsstream/conn.go; reference/k8s-protocol.md section 1).
 *
 * One thread, one poll loop, everything non-blocking:
 *   socket -> ws decoder -> channel 0 bytes -> stdin queue -> stdin pipe
 *   stdout/stderr pipes -> one binary frame per read (up to 32 KiB, channel
 *   byte in front, header built in place: no copy) -> socket, queued only
 *   when the socket is full
 *   the command's pidfd -> exit status (it is kubesim's child: isolate.c).
 * Back-pressure both ways: past 64 KiB queued for the socket the pipes
 * are not read (so output is copied at most once, usually never); past 1 MiB of stdin not yet taken by the process the socket is
 * not read. When the process has exited and both pipes are at EOF the
 * status goes out on channel 3, then a close frame (1000), and the session
 * waits for the client to close (as upstream's finish(), up to 15
 * minutes) so that output still in flight is not lost to a reset.
 * A client that goes away ends the stream, not the process: it keeps
 * running in the container and is reaped here when it ends.
 */
#include "kubesim/exec_session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kubesim/isolate.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"
#include "util/ws.h"

#define FRAME_DATA (32 * 1024)
#define SOCK_READ (64 * 1024)
#define HIGH_WATER (1024 * 1024)
#define OUT_LOW_WATER (64 * 1024) /* pipes are read only while the socket keeps up */
#define FINISH_TIMEOUT_MS (15 * 60 * 1000) /* upstream finishTimeout */
#define CH_STDIN 0
#define CH_STDOUT 1
#define CH_STDERR 2
#define CH_ERROR 3
#define CH_RESIZE 4
#define CH_CLOSE 255 /* v5: [255, channel] half-closes a channel */

typedef struct sess {
	ks_exec_params *p;
	ks_exec_target *t;
	int fd;
	ws_decoder dec;
	buf in;        /* socket bytes not yet decoded */
	buf outq;      /* whole frames not yet written to the socket */
	buf stdin_q;   /* stdin not yet taken by the process */
	buf resize;    /* a channel-4 message being assembled */
	int stdin_w, out_r, err_r, tty_master;
	int stdin_eof;      /* the client closed stdin */
	int msg_channel;    /* channel of the message being received: -1 unknown, -2 none */
	uint8_t close_buf[2];
	size_t close_len;
	pid_t relay;
	int relay_pidfd;
	int exited, exit_code;
	int64_t out_bytes;
	int sock_dead;      /* no more reads or writes on the socket */
	int status_sent;
	int got_close;
	int64_t finish_deadline;
} sess;

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Write what the socket takes now; keep the rest queued. */
static void flush_out(sess *s)
{
	while (!s->sock_dead && s->outq.len) {
		ssize_t w = send(s->fd, s->outq.data, s->outq.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0) {
			buf_consume(&s->outq, (size_t)w);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		s->sock_dead = 1; /* the client is gone */
		buf_reset(&s->outq);
	}
}

static void send_bytes(sess *s, const void *p, size_t n)
{
	if (s->sock_dead)
		return;
	if (s->outq.len == 0) {
		for (;;) {
			ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				s->sock_dead = 1;
				return;
			}
			if (w > 0) {
				p = (const char *)p + w;
				n -= (size_t)w;
			}
			break;
		}
	}
	if (n && buf_append(&s->outq, p, n))
		s->sock_dead = 1; /* over the queue's cap: give the stream up */
}

/* One binary message: channel byte + payload. */
static void send_channel(sess *s, int ch, const void *p, size_t n)
{
	uint8_t hdr[15];
	size_t h = ws_header_encode(hdr, 1, WS_OP_BINARY, n + 1, NULL);

	hdr[h++] = (uint8_t)ch;
	if (s->outq.len == 0 && n < 4096) {
		uint8_t one[4096 + 16];
		memcpy(one, hdr, h);
		memcpy(one + h, p, n);
		send_bytes(s, one, h + n);
		return;
	}
	send_bytes(s, hdr, h);
	send_bytes(s, p, n);
}

static void send_close(sess *s, int code)
{
	buf b = BUF_INIT(256);
	if (code == WS_CLOSE_NO_STATUS)
		ws_frame_append(&b, 1, WS_OP_CLOSE, NULL, 0, NULL);
	else
		ws_close_append(&b, code, "", NULL);
	send_bytes(s, b.data, b.len);
	buf_free(&b);
}

/* Cut the connection without status or close frame (fault injection). */
static void hard_drop(sess *s)
{
	struct linger lg = { 1, 0 };

	if (s->fd >= 0) {
		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		shutdown(s->fd, SHUT_RDWR);
	}
	s->sock_dead = 1;
	buf_reset(&s->outq);
}

/* Read one chunk of a pipe and send it as one frame, header built in
 * front of the data. Returns 0 at EOF. */
static int pump_pipe(sess *s, int *fd, int ch)
{
	static __thread uint8_t frame[4 + 1 + FRAME_DATA];
	ssize_t n;

	for (;;) {
		n = read(*fd, frame + 5, FRAME_DATA);
		if (n < 0 && errno == EINTR)
			continue;
		break;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 1;
	if (n <= 0) { /* EOF, or EIO from a pty whose other side is closed */
		close_fd(fd);
		return 0;
	}
	if (s->sock_dead)
		return 1;
	if (s->p->cut_after_bytes >= 0 && s->out_bytes + n >= s->p->cut_after_bytes) {
		n = (ssize_t)(s->p->cut_after_bytes - s->out_bytes);
		if (n > 0)
			send_channel(s, ch, frame + 5, (size_t)n);
		s->out_bytes += n;
		flush_out(s);
		hard_drop(s);
		return 1;
	}
	s->out_bytes += n;
	uint8_t *start;
	size_t plen = (size_t)n + 1;
	if (plen <= 125) {
		start = frame + 2;
		start[0] = 0x80 | WS_OP_BINARY;
		start[1] = (uint8_t)plen;
	} else {
		start = frame;
		start[0] = 0x80 | WS_OP_BINARY;
		start[1] = 126;
		start[2] = (uint8_t)(plen >> 8);
		start[3] = (uint8_t)plen;
	}
	frame[4] = (uint8_t)ch;
	send_bytes(s, start, (size_t)(frame + 5 + n - start));
	return 1;
}

static void stdin_close(sess *s)
{
	s->stdin_eof = 1;
	if (s->stdin_q.len == 0) {
		if (s->tty_master >= 0 && s->stdin_w == s->tty_master) {
			/* a terminal has no half-close: send EOF the way a user would */
			ssize_t w = write(s->tty_master, "\x04", 1);
			(void)w;
			s->stdin_w = -1;
		} else {
			close_fd(&s->stdin_w);
		}
	}
}

static void flush_stdin(sess *s)
{
	while (s->stdin_w >= 0 && s->stdin_q.len) {
		ssize_t w = write(s->stdin_w, s->stdin_q.data, s->stdin_q.len);
		if (w > 0) {
			buf_consume(&s->stdin_q, (size_t)w);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EPIPE: the process closed its stdin; drop what is left */
		buf_reset(&s->stdin_q);
		if (s->stdin_w != s->tty_master)
			close_fd(&s->stdin_w);
		else
			s->stdin_w = -1;
		return;
	}
	if (s->stdin_eof && s->stdin_q.len == 0 && s->stdin_w >= 0)
		stdin_close(s);
}

static void apply_resize(sess *s)
{
	cJSON *j = cJSON_ParseWithLength(s->resize.data ? s->resize.data : "", s->resize.len);
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "Width");
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "Height");

	if (s->tty_master >= 0 && cJSON_IsNumber(w) && cJSON_IsNumber(h)) {
		struct winsize ws = { .ws_row = (unsigned short)h->valuedouble, .ws_col = (unsigned short)w->valuedouble };
		ioctl(s->tty_master, TIOCSWINSZ, &ws);
	}
	cJSON_Delete(j);
	buf_reset(&s->resize);
}

static void channel_data(sess *s, const uint8_t *p, size_t n)
{
	switch (s->msg_channel) {
	case CH_STDIN:
		if (s->p->want_stdin && !s->stdin_eof && s->stdin_w >= 0 && n)
			if (buf_append(&s->stdin_q, p, n))
				buf_reset(&s->stdin_q);
		break;
	case CH_RESIZE:
		/* resize is read only with a terminal (upstream ignores it otherwise) */
		if (s->p->tty && buf_append(&s->resize, p, n))
			buf_reset(&s->resize);
		break;
	case CH_CLOSE:
		if (s->p->version >= 5)
			for (size_t i = 0; i < n; i++) {
				if (s->close_len < sizeof s->close_buf)
					s->close_buf[s->close_len] = p[i];
				s->close_len++;
			}
		break;
	default:
		break; /* wsstream: frames for a channel we do not read are dropped */
	}
}

/* Returns -1 when the stream must end (protocol error, client close). */
static int handle_socket_input(sess *s)
{
	size_t off = 0;
	int rc = 0;

	while (off < s->in.len) {
		ws_event ev;
		size_t used;
		if (ws_decoder_next(&s->dec, (uint8_t *)s->in.data + off, s->in.len - off, &used, &ev)) {
			send_close(s, ws_decoder_fail_code(&s->dec));
			flush_out(s);
			rc = -1;
			break;
		}
		off += used;
		if (ev.type == WS_EV_NONE) {
			if (!used)
				break;
			continue;
		}
		if (ev.type == WS_EV_PING) {
			uint8_t hdr[14];
			size_t h = ws_header_encode(hdr, 1, WS_OP_PONG, ev.len, NULL);
			uint8_t f[14 + 125];
			memcpy(f, hdr, h);
			memcpy(f + h, ev.data, ev.len);
			send_bytes(s, f, h + ev.len);
		} else if (ev.type == WS_EV_CLOSE) {
			s->got_close = 1;
			if (!s->status_sent)
				send_close(s, ev.close_code); /* echo, RFC 6455 5.5.1 */
			flush_out(s);
			rc = -1;
			break;
		} else if (ev.type == WS_EV_DATA) {
			const uint8_t *d = ev.data;
			size_t n = ev.len;
			if (ev.msg_start) {
				s->msg_channel = -1;
				s->close_len = 0;
				buf_reset(&s->resize);
			}
			if (s->msg_channel == -1 && n) {
				s->msg_channel = d[0];
				d++;
				n--;
			}
			if (s->msg_channel >= 0)
				channel_data(s, d, n);
			if (ev.msg_end) {
				if (s->msg_channel == CH_CLOSE && s->p->version >= 5) {
					/* wsstream/conn.go: exactly one channel byte follows */
					if (s->close_len != 1) {
						send_close(s, WS_CLOSE_PROTOCOL);
						flush_out(s);
						rc = -1;
						break;
					}
					if (s->close_buf[0] == CH_STDIN)
						stdin_close(s);
				} else if (s->msg_channel == CH_RESIZE && s->p->tty) {
					apply_resize(s);
				}
				s->msg_channel = -2;
			}
		}
	}
	buf_consume(&s->in, off);
	return rc;
}

static void json_status(sess *s, buf *b, const char *internal_msg)
{
	buf_append_str(b, "\x03");
	if (internal_msg) {
		/* apierrors.NewInternalError (staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go) */
		buf_append_str(b, "{\"metadata\":{},\"status\":\"Failure\",\"message\":");
		char *m = str_printf("Internal error occurred: %s", internal_msg);
		str_json_quote(b, m);
		free(m);
		buf_append_str(b, ",\"reason\":\"InternalError\",\"details\":{\"causes\":[{\"message\":");
		str_json_quote(b, internal_msg);
		buf_append_str(b, "}]},\"code\":500}");
		return;
	}
	if (s->exit_code == 0) {
		buf_append_str(b, "{\"metadata\":{},\"status\":\"Success\"}");
		return;
	}
	/* kubelet ServeExec (pkg/kubelet/cri/streaming/remotecommand/exec.go) wraps
	 * the runtime's CodeExitError; containerd's text is
	 * "error executing command %v, exit code %d" (pkg/cri/server/streaming.go). */
	buf cmd = BUF_INIT(1 << 20);
	buf_append_byte(&cmd, '[');
	for (int i = 0; s->p->argv[i]; i++) {
		if (i)
			buf_append_byte(&cmd, ' ');
		buf_append_str(&cmd, s->p->argv[i]);
	}
	buf_append_byte(&cmd, ']');
	char *m = str_printf("command terminated with non-zero exit code: error executing command %s, exit code %d",
			     buf_cstr(&cmd), s->exit_code);
	buf_append_str(b, "{\"metadata\":{},\"status\":\"Failure\",\"message\":");
	str_json_quote(b, m);
	buf_printf(b, ",\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"%d\"}]}}",
		   s->exit_code);
	free(m);
	buf_free(&cmd);
}

static void send_status(sess *s, const char *internal_msg)
{
	buf b = BUF_INIT(1 << 20);
	json_status(s, &b, internal_msg);
	send_channel(s, CH_ERROR, b.data + 1, b.len - 1);
	buf_free(&b);
	send_close(s, WS_CLOSE_NORMAL);
	s->status_sent = 1;
	s->finish_deadline = clock_mono_ms() + FINISH_TIMEOUT_MS;
}

/* Start the process; on failure send the InternalError status. */
static int start_process(sess *s, const ks_exec_hooks *h)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	int slave = -1;
	ks_iso_proc proc = { 0 };
	int rc = 0;

	if (s->p->tty) {
		s->tty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (s->tty_master < 0 || grantpt(s->tty_master) || unlockpt(s->tty_master)) {
			rc = err_set(ERR_FAIL, "allocating a terminal: %s", strerror(errno));
			goto fail;
		}
		slave = open(ptsname(s->tty_master), O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (slave < 0) {
			rc = err_set(ERR_FAIL, "opening the terminal: %s", strerror(errno));
			goto fail;
		}
		proc.fd_in = proc.fd_out = proc.fd_err = slave;
		proc.tty = 1;
		s->out_r = dup(s->tty_master);
		fcntl(s->out_r, F_SETFD, FD_CLOEXEC);
		s->stdin_w = s->p->want_stdin ? s->tty_master : -1;
	} else {
		if (s->p->want_stdin && pipe2(in, O_CLOEXEC) < 0)
			goto pipefail;
		if (s->p->want_stdout && pipe2(out, O_CLOEXEC) < 0)
			goto pipefail;
		if (s->p->want_stderr && pipe2(errp, O_CLOEXEC) < 0)
			goto pipefail;
		if (out[1] >= 0)
			fcntl(out[1], F_SETPIPE_SZ, 1 << 20);
		proc.fd_in = in[0];
		proc.fd_out = out[1];
		proc.fd_err = errp[1];
		s->stdin_w = in[1];
		s->out_r = out[0];
		s->err_r = errp[0];
	}
	proc.argv = s->p->argv;
	proc.envp = s->t->envp;
	proc.workdir = s->t->workdir;
	proc.set_user = s->t->set_user;
	proc.uid = s->t->uid;
	proc.gid = s->t->gid;
	proc.groups = s->t->groups;
	proc.n_groups = s->t->n_groups;
	rc = ks_iso_exec(&s->relay, &s->relay_pidfd, s->t->ctr_pidfd, s->t->userns, &proc);
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&errp[1]);
	close_fd(&slave);
	if (rc)
		goto fail;
	h->proc_started(h->arg);
	if (s->stdin_w >= 0)
		set_nonblock(s->stdin_w);
	if (s->out_r >= 0)
		set_nonblock(s->out_r);
	if (s->err_r >= 0)
		set_nonblock(s->err_r);
	return 0;
pipefail:
	rc = err_set(ERR_FAIL, "pipe: %s", strerror(errno));
fail:
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	close_fd(&slave);
	if (s->tty_master >= 0 && s->stdin_w == s->tty_master)
		s->stdin_w = -1;
	close_fd(&s->stdin_w);
	close_fd(&s->out_r);
	close_fd(&s->err_r);
	close_fd(&s->tty_master);
	return rc;
}

static void reap(sess *s)
{
	int st;

	if (s->relay <= 0 || s->exited)
		return;
	if (waitpid(s->relay, &st, WNOHANG) == s->relay) {
		s->exited = 1;
		s->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
}

void ks_exec_session_run(ks_exec_params *p, int fd, const void *extra, size_t extra_len, ks_exec_target *t,
			 const ks_exec_hooks *h)
{
	sess s = { 0 };
	sigset_t pipe_set;

	/* writes to a pipe whose reader is gone fail with EPIPE here */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);

	s.p = p;
	s.t = t;
	s.fd = fd;
	s.stdin_w = s.out_r = s.err_r = s.tty_master = s.relay_pidfd = -1;
	s.msg_channel = -2;
	ws_decoder_init(&s.dec, 1, 0);
	buf_init(&s.in, 4 * SOCK_READ);
	buf_init(&s.outq, 16 << 20);
	buf_init(&s.stdin_q, 4 * HIGH_WATER);
	buf_init(&s.resize, 4096);
	set_nonblock(fd);
	if (extra_len)
		buf_append(&s.in, extra, extra_len);

	/* "Send an empty message to the lowest writable channel to notify the
	 * client the connection is established" (websocket.go) */
	send_channel(&s, p->want_stdout ? CH_STDOUT : (p->want_stderr && !p->tty) ? CH_STDERR : CH_ERROR, "", 0);

	if (start_process(&s, h)) {
		/* a runtime failure before the command ran: containerd's wording
		 * (pkg/cri/server/container_execsync.go, runc), e.g. for a missing
		 * binary: ... exec: "foo": executable file not found in $PATH: unknown */
		uint8_t id[32];
		char hex[65];
		if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id)
			memset(id, 0x5a, sizeof id);
		str_hex(hex, id, sizeof id);
		char *m = str_printf("error executing command in container: failed to exec in container: failed to "
				     "start exec \"%s\": OCI runtime exec failed: exec failed: unable to start container "
				     "process: %s: unknown",
				     hex, err_msg());
		send_status(&s, m);
		free(m);
	} else if (s.in.len && handle_socket_input(&s)) {
		s.sock_dead = 1;
	}

	while (!s.sock_dead) {
		struct pollfd pf[6];
		int n = 0, i_sock = -1, i_out = -1, i_err = -1, i_in = -1, i_pid = -1, i_shut = -1;
		int timeout = -1;

		if (!s.status_sent && s.exited && s.out_r < 0 && s.err_r < 0) {
			send_status(&s, NULL);
			if (s.tty_master != s.stdin_w)
				close_fd(&s.stdin_w);
			else
				s.stdin_w = -1;
		}
		if (s.status_sent) {
			if (s.got_close)
				break;
			int64_t left = s.finish_deadline - clock_mono_ms();
			if (left <= 0)
				break;
			timeout = left > 60000 ? 60000 : (int)left;
		}
		pf[n] = (struct pollfd){ s.fd, 0, 0 };
		if (s.outq.len)
			pf[n].events |= POLLOUT;
		if (s.stdin_q.len < HIGH_WATER)
			pf[n].events |= POLLIN;
		i_sock = n++;
		if (s.outq.len < OUT_LOW_WATER) {
			if (s.out_r >= 0) {
				pf[n] = (struct pollfd){ s.out_r, POLLIN, 0 };
				i_out = n++;
			}
			if (s.err_r >= 0) {
				pf[n] = (struct pollfd){ s.err_r, POLLIN, 0 };
				i_err = n++;
			}
		}
		if (s.stdin_w >= 0 && s.stdin_q.len) {
			pf[n] = (struct pollfd){ s.stdin_w, POLLOUT, 0 };
			i_in = n++;
		}
		if (!s.exited && s.relay_pidfd >= 0) {
			pf[n] = (struct pollfd){ s.relay_pidfd, POLLIN, 0 };
			i_pid = n++;
		}
		if (t->shutdown_fd >= 0) {
			pf[n] = (struct pollfd){ t->shutdown_fd, POLLIN, 0 };
			i_shut = n++;
		}
		if (poll(pf, (nfds_t)n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (i_shut >= 0 && pf[i_shut].revents)
			break;
		if (pf[i_sock].revents & POLLOUT)
			flush_out(&s);
		if (pf[i_sock].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (buf_reserve(&s.in, SOCK_READ) == 0) {
				ssize_t r = recv(s.fd, s.in.data + s.in.len, SOCK_READ, MSG_DONTWAIT);
				if (r > 0) {
					s.in.len += (size_t)r;
					if (handle_socket_input(&s))
						s.sock_dead = 1;
				} else if (r == 0 || (errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK)) {
					s.sock_dead = 1; /* the client is gone: the process goes on */
				}
			} else {
				s.sock_dead = 1;
			}
		}
		/* several reads per wake-up: a busy writer fills the pipe fast */
		for (int k = 0; k < 8 && i_out >= 0 && (pf[i_out].revents & (POLLIN | POLLHUP | POLLERR)) && s.out_r >= 0 &&
				!s.sock_dead && s.outq.len < OUT_LOW_WATER;
		     k++) {
			int64_t before = s.out_bytes;
			if (!pump_pipe(&s, &s.out_r, CH_STDOUT) || s.out_bytes == before)
				break;
		}
		for (int k = 0; k < 8 && i_err >= 0 && (pf[i_err].revents & (POLLIN | POLLHUP | POLLERR)) && s.err_r >= 0 &&
				!s.sock_dead && s.outq.len < OUT_LOW_WATER;
		     k++) {
			int64_t before = s.out_bytes;
			if (!pump_pipe(&s, &s.err_r, CH_STDERR) || s.out_bytes == before)
				break;
		}
		if (s.sock_dead)
			break;
		if (i_in >= 0 && (pf[i_in].revents & POLLERR))
			buf_reset(&s.stdin_q); /* the process's stdin is gone */
		flush_stdin(&s);
		if (i_pid >= 0 && pf[i_pid].revents)
			reap(&s);
	}

	/* the stream is over; the process may not be */
	if (s.fd >= 0)
		close(s.fd);
	s.fd = -1;
	h->stream_done(h->arg);
	if (s.tty_master >= 0 && s.stdin_w == s.tty_master)
		s.stdin_w = -1;
	close_fd(&s.stdin_w);
	close_fd(&s.out_r);
	close_fd(&s.err_r);
	close_fd(&s.tty_master);
	if (s.relay > 0) {
		while (!s.exited) {
			int st;
			pid_t r = waitpid(s.relay, &st, 0);
			if (r == s.relay || (r < 0 && errno != EINTR))
				s.exited = 1;
		}
		h->proc_reaped(h->arg);
	}
	close_fd(&s.relay_pidfd);
	buf_free(&s.in);
	buf_free(&s.outq);
	buf_free(&s.stdin_q);
	buf_free(&s.resize);
	ks_exec_params_free(p);
	ks_exec_target_clear(t);
	h->thread_done(h->arg);
}

void ks_exec_target_clear(ks_exec_target *t)
{
	if (!t)
		return;
	if (t->ctr_pidfd >= 0)
		close(t->ctr_pidfd);
	t->ctr_pidfd = -1;
	for (size_t i = 0; t->envp && t->envp[i]; i++)
		free(t->envp[i]);
	free(t->envp);
	t->envp = NULL;
	free(t->workdir);
	t->workdir = NULL;
	free(t->groups);
	t->groups = NULL;
}

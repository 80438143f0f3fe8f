/*
 * kube/exec: the protocol engine (kube_exec_run_conn) against an
 * in-process fake server on a socketpair, speaking the exec WebSocket
 * protocol with util/ws: handshake checks, v5/v4 negotiation, stdin with
 * and without the half-close, output split and fragmented every way,
 * statuses, lost streams, pings, idle silence, cancellation, deadlines.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "kube/exec.h"
#include "kube/exec_conn.h"
#include "tests/unit/kube_exec_fake.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"
#include "util/ws.h"

/* ---- the client side -------------------------------------------------- */

static int t_send(void *ctx, const void *p, size_t n, size_t *sent)
{
	ssize_t w = send(*(int *)ctx, p, n, MSG_NOSIGNAL);

	if (w < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return ERR_AGAIN;
		return err_set(ERR_LOST, "send: %s", strerror(errno));
	}
	*sent = (size_t)w;
	return 0;
}

static int t_recv(void *ctx, void *p, size_t n, size_t *got)
{
	ssize_t r = recv(*(int *)ctx, p, n, 0);

	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return ERR_AGAIN;
		return err_set(ERR_LOST, "recv: %s", strerror(errno));
	}
	*got = (size_t)r;
	return 0;
}

typedef struct sink {
	buf out, err;
	int calls_out, calls_err;
	int abort_after; /* stop the run after this many stdout bytes (0: never) */
	EVP_MD_CTX *sha;
	int hash_only;
} sink;

static int on_out(void *arg, const void *p, size_t n)
{
	sink *k = arg;

	k->calls_out++;
	if (k->hash_only)
		EVP_DigestUpdate(k->sha, p, n);
	else
		cr_assert_eq(buf_append(&k->out, p, n), 0);
	if (k->abort_after && k->out.len >= (size_t)k->abort_after)
		return err_set(ERR_TOOBIG, "test sink: enough");
	return 0;
}

static int on_err(void *arg, const void *p, size_t n)
{
	sink *k = arg;

	k->calls_err++;
	cr_assert_eq(buf_append(&k->err, p, n), 0);
	return 0;
}

typedef struct run {
	srv s;
	sink k;
	kube_exec_opts o;
	kube_exec_result r;
	int cfd;
	int rc;
	char msg[1024];
} run;

static const char *const ARGV[] = { "sh", "-c", "echo hi", NULL };

static void run_init(run *t, script_fn script)
{
	int sv[2];

	memset(t, 0, sizeof(*t));
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	t->cfd = sv[0];
	t->s.fd = sv[1];
	t->s.script = script;
	t->s.msg_chan = -1;
	t->s.answer_pings = 1;
	buf_init(&t->s.in, 64u << 20);
	ws_decoder_init(&t->s.dec, 1, 64u << 20);
	fcntl(t->cfd, F_SETFL, fcntl(t->cfd, F_GETFL) | O_NONBLOCK);
	buf_init(&t->k.out, 256u << 20);
	buf_init(&t->k.err, 64u << 20);
	kube_exec_opts o = KUBE_EXEC_OPTS_INIT;
	t->o = o;
	t->o.pod = "p";
	t->o.argv = ARGV;
	t->o.on_stdout = on_out;
	t->o.on_stderr = on_err;
	t->o.out_arg = &t->k;
}

static int run_go(run *t)
{
	kube_exec_conn c = { &t->cfd, t->cfd, t_send, t_recv };
	kube_exec_request rq = { "k:6443", "/api/v1/namespaces/ns/pods/p/exec?command=x&stdout=true", NULL };

	cr_assert_eq(pthread_create(&t->s.th, NULL, srv_main, &t->s), 0);
	t->rc = kube_exec_run_conn(&t->r, &c, &rq, &t->o);
	snprintf(t->msg, sizeof(t->msg), "%s", err_msg());
	close(t->cfd);
	pthread_join(t->s.th, NULL);
	close(t->s.fd);
	return t->rc;
}

static void run_free(run *t)
{
	buf_free(&t->s.in);
	buf_free(&t->k.out);
	buf_free(&t->k.err);
}

/* ---- scripts ---------------------------------------------------------- */


Test(kube_exec, v5_output_and_success, .timeout = 10)
{
	run t;

	run_init(&t, sc_hello);
	cr_assert_eq(run_go(&t), 0, "%s", t.msg);
	cr_assert_eq(t.r.exit_code, 0);
	cr_assert_eq(t.r.protocol, 5);
	cr_assert_eq(t.r.http_code, 101);
	cr_assert_eq(t.r.close_code, 1000);
	cr_assert_str_eq(buf_cstr(&t.k.out), "hello world\n");
	cr_assert_str_eq(buf_cstr(&t.k.err), "warning\n");
	cr_assert_eq(t.r.stdout_bytes, 12);
	cr_assert_eq(t.r.stderr_bytes, 8);
	/* the request as sent */
	cr_assert(strstr(t.s.req, "GET /api/v1/namespaces/ns/pods/p/exec?command=x&stdout=true HTTP/1.1\r\n"));
	cr_assert(strstr(t.s.req, "\r\nSec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io\r\n"));
	cr_assert(strstr(t.s.req, "\r\nHost: k:6443\r\n"));
	cr_assert_eq(t.s.client_close, 1000, "the client answers the close");
	cr_assert_eq(t.s.bad_frames, 0);
	run_free(&t);
}

Test(kube_exec, exit_codes_from_the_status, .timeout = 20)
{
	static const char *answers[] = { EXIT(1), EXIT(3), EXIT(127), EXIT(137), EXIT(255) };
	static const int want[] = { 1, 3, 127, 137, 255 };

	for (int i = 0; i < 5; i++) {
		run t;

		run_init(&t, sc_hello);
		t.s.answer = answers[i];
		cr_assert_eq(run_go(&t), 0, "%s", t.msg);
		cr_assert_eq(t.r.exit_code, want[i]);
		cr_assert_eq(t.r.signal, want[i] == 137 ? 9 : 0);
		cr_assert_str_eq(t.r.reason, "NonZeroExitCode");
		cr_assert(strstr(t.r.message, "exit status"));
		run_free(&t);
	}
}

Test(kube_exec, other_failure_is_an_error_with_the_servers_message, .timeout = 10)
{
	run t;

	run_init(&t, sc_hello);
	t.s.answer = "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"error executing command in container: "
		     "exec: \\\"nope\\\": executable file not found in $PATH\",\"reason\":\"InternalError\",\"code\":500}";
	cr_assert_eq(run_go(&t), ERR_FAIL);
	cr_assert(strstr(t.msg, "executable file not found"), "%s", t.msg);
	cr_assert(strstr(t.msg, "InternalError"), "%s", t.msg);
	cr_assert_eq(t.r.exit_code, -1);
	cr_assert_str_eq(t.r.reason, "InternalError");
	run_free(&t);
}

Test(kube_exec, invalid_status_is_lost_not_success, .timeout = 10)
{
	run t;

	run_init(&t, sc_hello);
	t.s.answer = "{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\",\"details\":{\"causes\":[]}}";
	cr_assert_eq(run_go(&t), ERR_LOST);
	cr_assert(strstr(t.msg, "without an exit status"), "%s", t.msg);
	cr_assert(strstr(t.msg, "no ExitCode cause"), "%s", t.msg);
	cr_assert_eq(t.r.exit_code, -1);
	run_free(&t);
}


Test(kube_exec, stream_ending_without_status_is_lost, .timeout = 20)
{
	for (int arg = 0; arg <= 3; arg++) {
		run t;

		run_init(&t, sc_cut);
		t.s.arg = arg;
		cr_assert_eq(run_go(&t), ERR_LOST, "arg %d: rc %d %s", arg, t.rc, t.msg);
		cr_assert(strstr(t.msg, "the exec stream ended without an exit status: the command's outcome is unknown"),
			  "%s", t.msg);
		cr_assert_eq(t.r.exit_code, -1);
		cr_assert(str_has_prefix(buf_cstr(&t.k.out), "partial output"));
		if (arg == 1)
			cr_assert(strstr(t.msg, "code 1000"), "%s", t.msg);
		run_free(&t);
	}
}

/* Everything byte by byte, and output as fragmented messages whose
 * channel byte comes in a later frame. */
static void sc_split(srv *s)
{
	buf b = BUF_INIT(1 << 20);
	char accept[29], key[64] = "";

	sscanf(strstr(s->req, "Sec-WebSocket-Key: ") + 19, "%63[^\r]", key);
	ws_accept_key(accept, key);
	buf_printf(&b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		       "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n",
		   accept);
	ws_frame_append(&b, 1, WS_OP_BINARY, "\x01", 1, NULL);
	/* stdout "hello" as: empty first frame, "\x01he" continuation, "llo" final */
	ws_frame_append(&b, 0, WS_OP_BINARY, "", 0, NULL);
	ws_frame_append(&b, 0, WS_OP_CONT, "\x01he", 3, NULL);
	ws_frame_append(&b, 1, WS_OP_CONT, "llo", 3, NULL);
	/* a ping in the middle of a fragmented stderr message */
	ws_frame_append(&b, 0, WS_OP_BINARY, "\x02" "err", 4, NULL);
	ws_frame_append(&b, 1, WS_OP_PING, "pp", 2, NULL);
	ws_frame_append(&b, 1, WS_OP_CONT, "or", 2, NULL);
	/* a message on an unknown channel is discarded */
	ws_frame_append(&b, 1, WS_OP_BINARY, "\x07junk", 5, NULL);
	/* the status in three pieces */
	ws_frame_append(&b, 0, WS_OP_BINARY, "\x03{\"metadata\":{},", 16, NULL);
	ws_frame_append(&b, 0, WS_OP_CONT, "\"status\":", 9, NULL);
	ws_frame_append(&b, 1, WS_OP_CONT, "\"Success\"}", 10, NULL);
	ws_close_append(&b, 1000, "bye", NULL);
	for (size_t i = 0; i < b.len; i++) {
		srv_write(s, b.data + i, 1);
		if (i % 7 == 0)
			usleep(100);
	}
	buf_free(&b);
	srv_pump(s, 1000, stop_on_client_close);
}

Test(kube_exec, split_and_fragmented_frames, .timeout = 20)
{
	run t;

	run_init(&t, sc_split);
	t.o.ping_ms = -1;
	cr_assert_eq(run_go(&t), 0, "%s", t.msg);
	cr_assert_eq(t.r.exit_code, 0);
	cr_assert_str_eq(buf_cstr(&t.k.out), "hello");
	cr_assert_str_eq(buf_cstr(&t.k.err), "error");
	cr_assert_eq(t.s.bad_frames, 0);
	run_free(&t);
}



Test(kube_exec, v5_stdin_from_memory_ends_with_the_half_close, .timeout = 30)
{
	size_t n = 3u << 20;
	uint8_t *data = malloc(n);
	run t;

	fill_pattern(data, n);
	run_init(&t, sc_echo);
	t.o.stdin_data = data;
	t.o.stdin_len = n;
	cr_assert_eq(run_go(&t), 0, "%s", t.msg);
	cr_assert_eq(t.r.exit_code, 0, "the server saw a bad stdin close");
	cr_assert_eq(t.s.in.len, n);
	cr_assert_eq(memcmp(t.s.in.data, data, n), 0);
	cr_assert_eq(t.k.out.len, n);
	cr_assert_eq(memcmp(t.k.out.data, data, n), 0);
	cr_assert_eq(t.r.stdin_bytes, n);
	cr_assert_eq(t.s.stdin_closed, 1);
	free(data);
	run_free(&t);
}

struct feeder {
	const uint8_t *p;
	size_t n, off;
	int calls;
};

static int feed(void *arg, void *dst, size_t cap, size_t *got)
{
	struct feeder *f = arg;
	size_t k = (size_t)(f->calls++ % 5) * 1000 + 1; /* odd sizes */

	if (k > cap)
		k = cap;
	if (k > f->n - f->off)
		k = f->n - f->off;
	memcpy(dst, f->p + f->off, k);
	f->off += k;
	*got = k;
	return 0;
}

Test(kube_exec, v5_stdin_from_a_callback, .timeout = 30)
{
	size_t n = 200000;
	uint8_t *data = malloc(n);
	struct feeder f = { data, n, 0, 0 };
	run t;

	fill_pattern(data, n);
	run_init(&t, sc_echo);
	t.o.stdin_read = feed;
	t.o.stdin_arg = &f;
	cr_assert_eq(run_go(&t), 0, "%s", t.msg);
	cr_assert_eq(t.r.exit_code, 0);
	cr_assert_eq(t.k.out.len, n);
	cr_assert_eq(memcmp(t.k.out.data, data, n), 0);
	free(data);
	run_free(&t);
}

struct writer {
	int fd;
	const uint8_t *p;
	size_t n;
};

static void *slow_writer(void *arg)
{
	struct writer *w = arg;

	for (size_t off = 0; off < w->n;) {
		size_t k = w->n - off < 7000 ? w->n - off : 7000;
		ssize_t r = write(w->fd, w->p + off, k);
		if (r <= 0)
			break;
		off += (size_t)r;
		usleep(500);
	}
	close(w->fd);
	return NULL;
}

Test(kube_exec, v5_stdin_from_a_pipe, .timeout = 30)
{
	size_t n = 500000;
	uint8_t *data = malloc(n);
	int pfd[2];
	pthread_t th;
	run t;

	fill_pattern(data, n);
	cr_assert_eq(pipe(pfd), 0);
	struct writer w = { pfd[1], data, n };
	pthread_create(&th, NULL, slow_writer, &w);
	run_init(&t, sc_echo);
	t.o.stdin_fd = pfd[0];
	cr_assert_eq(run_go(&t), 0, "%s", t.msg);
	pthread_join(th, NULL);
	close(pfd[0]);
	cr_assert_eq(t.r.exit_code, 0);
	cr_assert_eq(t.k.out.len, n);
	cr_assert_eq(memcmp(t.k.out.data, data, n), 0);
	free(data);
	run_free(&t);
}

/* v4: the server picks v4, reads a known length of stdin, checks that
 * nothing else (no FF 00, no close) comes before the status. */
static void sc_v4(srv *s)
{
	const char *off = strstr(s->req, "Sec-WebSocket-Protocol: ");
	int offered_v5 = off && strstr(off, "v5.channel.k8s.io") && strstr(off, "v5.channel.k8s.io") < strstr(off, "\r\n");

	srv_101(s, "v4.channel.k8s.io");
	srv_msg(s, 0, "", 0);
	while (s->in.len < (size_t)s->arg && !s->eof)
		srv_pump(s, 100, NULL);
	srv_pump(s, 300, NULL); /* anything more would be a v5-ism or an early close */
	char out[64];
	snprintf(out, sizeof(out), "got %zu offered_v5=%d", s->in.len, offered_v5);
	srv_str(s, 1, out);
	srv_str(s, 3, !s->stdin_closed && !s->client_close && !s->eof && !s->bad_frames ? SUCCESS : EXIT(98));
	srv_close(s, 1000);
	srv_pump(s, 1000, stop_on_client_close);
}

Test(kube_exec, v4_fallback_has_no_half_close_and_keeps_the_connection, .timeout = 20)
{
	run t;
	static const char data[] = "0123456789abcdef";

	run_init(&t, sc_v4);
	t.s.arg = 16;
	t.o.stdin_data = data;
	t.o.stdin_len = 16;
	cr_assert_eq(run_go(&t), 0, "%s", t.msg);
	cr_assert_eq(t.r.protocol, 4);
	cr_assert_eq(t.r.exit_code, 0, "the client closed stdin or the connection under v4");
	cr_assert_str_eq(buf_cstr(&t.k.out), "got 16 offered_v5=1");
	run_free(&t);

	/* only v4 offered when asked */
	run_init(&t, sc_v4);
	t.s.arg = 16;
	t.o.stdin_data = data;
	t.o.stdin_len = 16;
	t.o.protocol = 4;
	cr_assert_eq(run_go(&t), 0, "%s", t.msg);
	cr_assert_str_eq(buf_cstr(&t.k.out), "got 16 offered_v5=0");
	cr_assert(strstr(t.s.req, "\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n"));
	run_free(&t);
}

static void sc_proto(srv *s)
{
	srv_101(s, s->answer);
	srv_str(s, 3, SUCCESS);
	srv_close(s, 1000);
	srv_pump(s, 500, stop_on_client_close);
}

Test(kube_exec, protocol_negotiation_failures, .timeout = 20)
{
	static const struct {
		const char *answer;
		int protocol;
	} cases[] = { { NULL, 0 }, { "channel.k8s.io", 0 }, { "v4.channel.k8s.io", 5 }, { "v5.channel.k8s.io", 4 },
		      { "v3.channel.k8s.io", 0 } };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run t;

		run_init(&t, sc_proto);
		t.s.answer = cases[i].answer;
		t.o.protocol = cases[i].protocol;
		cr_assert_eq(run_go(&t), ERR_FAIL, "case %zu: %d %s", i, t.rc, t.msg);
		cr_assert(strstr(t.msg, "subprotocol"), "%s", t.msg);
		cr_assert_eq(t.r.protocol, 0);
		run_free(&t);
	}
}

static void sc_bad_accept(srv *s)
{
	const char *a = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			"Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n";
	srv_write(s, a, strlen(a));
}

Test(kube_exec, wrong_accept_key_fails_the_handshake, .timeout = 10)
{
	run t;

	run_init(&t, sc_bad_accept);
	cr_assert_eq(run_go(&t), ERR_FAIL);
	cr_assert(strstr(t.msg, "Sec-WebSocket-Accept"), "%s", t.msg);
	run_free(&t);
}


Test(kube_exec, http_errors_before_the_upgrade_carry_the_status, .timeout = 20)
{
	static const char body403[] =
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"
		"\"pods \\\"p\\\" is forbidden: User \\\"system:serviceaccount:ns:sa\\\" cannot get resource "
		"\\\"pods/exec\\\" in API group \\\"\\\" in the namespace \\\"ns\\\"\",\"reason\":\"Forbidden\","
		"\"details\":{\"name\":\"p\",\"kind\":\"pods\"},\"code\":403}";
	static const char body404[] =
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"
		"\"pods \\\"p\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"p\",\"kind\":\"pods\"},\"code\":404}";
	static const char body400[] =
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"
		"\"container x is not valid for pod p\",\"reason\":\"BadRequest\",\"code\":400}";
	char a[4][2048];
	int want[4] = { ERR_FORBIDDEN, ERR_NOTFOUND, ERR_INVALID, ERR_UNAUTHORIZED };
	const char *needle[4] = { "cannot get resource", "not found", "is not valid for pod", "Unauthorized" };

	snprintf(a[0], sizeof(a[0]), "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		 strlen(body403), body403);
	/* chunked */
	snprintf(a[1], sizeof(a[1]), "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n%.16s\r\n%zx\r\n%s\r\n0\r\n\r\n",
		 body404, strlen(body404) - 16, body404 + 16);
	/* no length: until EOF */
	snprintf(a[2], sizeof(a[2]), "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n%s", body400);
	snprintf(a[3], sizeof(a[3]), "HTTP/1.1 401 Unauthorized\r\nContent-Length: 13\r\n\r\nUnauthorized\n");
	for (int i = 0; i < 4; i++) {
		run t;

		run_init(&t, sc_http_error);
		t.s.answer = a[i];
		cr_assert_eq(run_go(&t), want[i], "case %d: %d %s", i, t.rc, t.msg);
		cr_assert(strstr(t.msg, needle[i]), "case %d: %s", i, t.msg);
		cr_assert_eq(t.r.protocol, 0);
		run_free(&t);
	}
}

Test(kube_exec, bare_403_mentions_the_subprotocols, .timeout = 10)
{
	run t;

	run_init(&t, sc_http_error);
	t.s.answer = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
	cr_assert_eq(run_go(&t), ERR_FORBIDDEN);
	cr_assert(strstr(t.msg, "subprotocols"), "%s", t.msg);
	run_free(&t);
}

Test(kube_exec, connection_closed_before_an_answer_is_retryable, .timeout = 10)
{
	run t;

	run_init(&t, sc_http_error);
	t.s.answer = "";
	cr_assert_eq(run_go(&t), ERR_AGAIN, "%s", t.msg);
	cr_assert(strstr(t.msg, "without answering"), "%s", t.msg);
	run_free(&t);
}

/* The server reads the upgrade request and says nothing for s->arg ms
 * (an overloaded API server), then hangs up. */
static void sc_mute(srv *s)
{
	struct pollfd p = { s->fd, POLLRDHUP, 0 };

	/* until the client gives up (its end closes) or the time is over */
	poll(&p, 1, s->arg);
}

Test(kube_exec, no_answer_to_the_upgrade_before_the_deadline_is_retryable, .timeout = 20)
{
	run t;

	run_init(&t, sc_mute);
	t.s.arg = 5000;
	t.o.idle_ms = 300;
	t.o.deadline_ms = clock_mono_ms() + 10000;
	/* an API server that did not answer in time is a transient failure,
	 * not the caller's deadline (bench part 4: such execs were reported
	 * as the run's timeout) */
	cr_assert_eq(run_go(&t), ERR_AGAIN, "%s", t.msg);
	cr_assert(strstr(t.msg, "no answer to the upgrade request within 300 ms"), "%s", t.msg);
	cr_assert_eq(t.r.protocol, 0);
	run_free(&t);
}

Test(kube_exec, no_answer_to_the_upgrade_until_the_deadline_is_a_timeout, .timeout = 20)
{
	run t;

	run_init(&t, sc_mute);
	t.s.arg = 5000;
	t.o.idle_ms = 3000;
	t.o.deadline_ms = clock_mono_ms() + 300;
	cr_assert_eq(run_go(&t), ERR_TIMEOUT, "%s", t.msg);
	run_free(&t);
}

/* Pings: the server answers pongs and finishes after a while. */
static void sc_slow(srv *s)
{
	srv_101(s, "v5.channel.k8s.io");
	srv_msg(s, 1, "", 0);
	srv_pump(s, s->arg, NULL);
	srv_str(s, 3, SUCCESS);
	srv_close(s, 1000);
	srv_pump(s, 1000, stop_on_client_close);
}

Test(kube_exec, pings_keep_a_silent_command_alive, .timeout = 20)
{
	run t;

	/* periods wide enough for a loaded machine or valgrind, where the
	 * fake server's thread may answer hundreds of ms late */
	run_init(&t, sc_slow);
	t.s.arg = 6000;
	t.o.ping_ms = 500;
	t.o.idle_ms = 3000; /* would expire without the pongs */
	cr_assert_eq(run_go(&t), 0, "%s", t.msg);
	cr_assert_eq(t.r.exit_code, 0);
	/* about 12: periodic, neither missing nor flooding */
	cr_assert_geq(t.s.pings, 4, "pings: %d", t.s.pings);
	cr_assert_leq(t.s.pings, 20, "pings: %d", t.s.pings);
	run_free(&t);
}

Test(kube_exec, silence_past_the_idle_limit_is_lost, .timeout = 20)
{
	run t;

	run_init(&t, sc_slow);
	t.s.arg = 20000;
	t.s.answer_pings = 0; /* a dead peer */
	t.o.ping_ms = 250;
	t.o.idle_ms = 3000; /* also the handshake's limit: room for a slow fake server */
	int64_t t0 = clock_mono_ms();
	cr_assert_eq(run_go(&t), ERR_LOST, "%s", t.msg);
	cr_assert_lt(clock_mono_ms() - t0, 18000, "the idle limit did not end the wait");
	cr_assert(strstr(t.msg, "not even a pong"), "%s", t.msg);
	cr_assert_geq(t.s.pings, 3);
	run_free(&t);
}

/* The server pings the client: the client must answer. */
static void sc_server_pings(srv *s)
{
	buf b = BUF_INIT(256);
	int pongs = 0;

	srv_101(s, "v5.channel.k8s.io");
	ws_frame_append(&b, 1, WS_OP_PING, "abc", 3, NULL);
	srv_write(s, b.data, b.len);
	/* read frames until the pong */
	for (int i = 0; i < 40 && !pongs; i++) {
		struct pollfd p = { s->fd, POLLIN, 0 };
		if (poll(&p, 1, 50) > 0) {
			ssize_t r = recv(s->fd, s->rbuf + s->rlen, sizeof(s->rbuf) - s->rlen, 0);
			if (r <= 0)
				break;
			s->rlen += (size_t)r;
		}
		size_t pos = 0;
		ws_event ev;
		size_t used;
		while (pos < s->rlen && ws_decoder_next(&s->dec, s->rbuf + pos, s->rlen - pos, &used, &ev) == 0 &&
		       (used || ev.type != WS_EV_NONE)) {
			pos += used;
			if (ev.type == WS_EV_PONG && ev.len == 3 && memcmp(ev.data, "abc", 3) == 0)
				pongs++;
		}
		memmove(s->rbuf, s->rbuf + pos, s->rlen - pos);
		s->rlen -= pos;
	}
	srv_str(s, 3, pongs ? SUCCESS : EXIT(97));
	srv_close(s, 1000);
	buf_free(&b);
}

Test(kube_exec, server_pings_are_answered, .timeout = 10)
{
	run t;

	run_init(&t, sc_server_pings);
	t.o.ping_ms = -1;
	cr_assert_eq(run_go(&t), 0, "%s", t.msg);
	cr_assert_eq(t.r.exit_code, 0, "no pong came back");
	run_free(&t);
}

struct canceller {
	int fd;
	kube_cancel *flag;
	int ms;
	const int *pings;      /* when set: wait for the first ping (the stream is up) first */
	int64_t cancelled_at;
};

static void *cancel_later(void *arg)
{
	struct canceller *c = arg;

	/* the server counts the client's pings: one means the upgrade is
	 * done, whatever the machine's speed (valgrind, load) */
	while (c->pings && __atomic_load_n(c->pings, __ATOMIC_ACQUIRE) < 1)
		usleep(10000);
	usleep((useconds_t)c->ms * 1000);
	c->cancelled_at = clock_mono_ms();
	if (c->flag)
		kube_cancel_request(c->flag);
	if (c->fd >= 0) {
		uint64_t one = 1;
		ssize_t w = write(c->fd, &one, sizeof(one));
		(void)w;
	}
	return NULL;
}

Test(kube_exec, cancel_from_another_thread_wakes_the_run, .timeout = 20)
{
	for (int mode = 0; mode < 2; mode++) {
		run t;
		pthread_t th;
		kube_cancel flag = KUBE_CANCEL_INIT;
		int efd = eventfd(0, EFD_CLOEXEC);
		struct canceller c = { mode == 0 ? efd : -1, mode == 1 ? &flag : NULL, 300, NULL, 0 };

		run_init(&t, sc_slow);
		t.s.arg = 8000;
		t.o.ping_ms = 100;
		t.o.cancel_fd = mode == 0 ? efd : -1;
		t.o.cancel = mode == 1 ? &flag : NULL;
		c.pings = &t.s.pings;
		pthread_create(&th, NULL, cancel_later, &c);
		cr_assert_eq(run_go(&t), ERR_CANCELLED, "mode %d: %s", mode, t.msg);
		int64_t ended = clock_mono_ms();
		pthread_join(th, NULL);
		int64_t took = ended - c.cancelled_at;
		/* the flag is polled every 100 ms, the fd wakes at once; then
		 * up to 200 ms to send the close */
		cr_assert_lt(took, 2500, "mode %d: %lld ms after the cancel", mode, (long long)took);
		cr_assert_eq(t.s.client_close, 1000, "mode %d: the client said goodbye", mode);
		cr_assert_eq(t.r.exit_code, -1);
		close(efd);
		run_free(&t);
	}
}

Test(kube_exec, deadline_is_a_timeout, .timeout = 20)
{
	run t;

	run_init(&t, sc_slow);
	t.s.arg = 3000;
	t.o.deadline_ms = clock_mono_ms() + 300;
	cr_assert_eq(run_go(&t), ERR_TIMEOUT, "%s", t.msg);
	cr_assert_eq(t.r.exit_code, -1);
	run_free(&t);
}


Test(kube_exec, large_output_is_streamed_not_buffered, .timeout = 60)
{
	run t;
	uint8_t want[32], got[32], *p = malloc(65536);
	EVP_MD_CTX *w = EVP_MD_CTX_new();
	/* less under valgrind (tests/tools/valgrind.sh sets CIFIXER_VALGRIND) */
	size_t n = getenv("CIFIXER_VALGRIND") ? 4u << 20 : 64u << 20;

	run_init(&t, sc_big);
	t.s.arg = (int)n;
	t.k.hash_only = 1;
	t.k.sha = EVP_MD_CTX_new();
	EVP_DigestInit_ex(t.k.sha, EVP_sha256(), NULL);
	int64_t t0 = clock_mono_ms();
	cr_assert_eq(run_go(&t), 0, "%s", t.msg);
	int64_t ms = clock_mono_ms() - t0;
	EVP_DigestFinal_ex(t.k.sha, got, NULL);
	EVP_MD_CTX_free(t.k.sha);
	fill_pattern(p, 65536);
	EVP_DigestInit_ex(w, EVP_sha256(), NULL);
	for (size_t off = 0; off < n; off += 32768)
		EVP_DigestUpdate(w, p + (off % 65536), 32768);
	EVP_DigestFinal_ex(w, want, NULL);
	EVP_MD_CTX_free(w);
	cr_assert_eq(memcmp(want, got, 32), 0);
	cr_assert_eq(t.r.stdout_bytes, n);
	cr_assert_eq(t.r.stderr_bytes, (n >> 20) * 100); /* sc_big: 100 bytes per MiB */
	cr_assert_gt(t.k.calls_out, n >> 20, "delivered in pieces");
	cr_log_info("%zu MiB over a socketpair in %lld ms", n >> 20, (long long)ms);
	free(p);
	run_free(&t);
}

Test(kube_exec, a_callback_can_stop_the_run, .timeout = 20)
{
	run t;

	run_init(&t, sc_big);
	t.s.arg = 8 << 20;
	t.k.abort_after = 100000;
	cr_assert_eq(run_go(&t), ERR_TOOBIG, "%s", t.msg);
	cr_assert(strstr(t.msg, "test sink"), "%s", t.msg);
	cr_assert_eq(t.r.exit_code, -1);
	run_free(&t);
}

static void sc_huge_status(srv *s)
{
	size_t n = 70000;
	char *p = malloc(n);

	memset(p, ' ', n);
	srv_101(s, "v5.channel.k8s.io");
	srv_msg(s, 3, p, n);
	srv_str(s, 3, SUCCESS);
	srv_close(s, 1000);
	srv_pump(s, 500, stop_on_client_close);
	free(p);
}

Test(kube_exec, status_over_the_cap_is_lost, .timeout = 10)
{
	run t;

	run_init(&t, sc_huge_status);
	cr_assert_eq(run_go(&t), ERR_LOST, "%s", t.msg);
	cr_assert(strstr(t.msg, "cap"), "%s", t.msg);
	run_free(&t);
}

static void sc_text(srv *s)
{
	buf b = BUF_INIT(256);

	srv_101(s, "v5.channel.k8s.io");
	ws_frame_append(&b, 1, WS_OP_TEXT, "\x01hi", 3, NULL);
	srv_write(s, b.data, b.len);
	srv_str(s, 3, SUCCESS);
	srv_pump(s, 500, stop_on_client_close);
	buf_free(&b);
}

Test(kube_exec, text_messages_are_a_protocol_error, .timeout = 10)
{
	run t;

	run_init(&t, sc_text);
	cr_assert_eq(run_go(&t), ERR_LOST, "%s", t.msg);
	cr_assert(strstr(t.msg, "text message"), "%s", t.msg);
	cr_assert_eq(t.s.client_close, 1003);
	run_free(&t);
}

static void sc_masked(srv *s)
{
	buf b = BUF_INIT(256);
	uint8_t key[4] = { 1, 2, 3, 4 };

	srv_101(s, "v5.channel.k8s.io");
	ws_frame_append(&b, 1, WS_OP_BINARY, "\x01hi", 3, key); /* servers must not mask */
	srv_write(s, b.data, b.len);
	srv_str(s, 3, SUCCESS);
	srv_pump(s, 500, stop_on_client_close);
	buf_free(&b);
}

Test(kube_exec, masked_server_frames_are_a_protocol_error, .timeout = 10)
{
	run t;

	run_init(&t, sc_masked);
	cr_assert_eq(run_go(&t), ERR_LOST, "%s", t.msg);
	cr_assert(strstr(t.msg, "protocol error"), "%s", t.msg);
	cr_assert_eq(t.s.client_close, 1002);
	run_free(&t);
}

Test(kube_exec, bad_options_are_refused_before_any_io, .timeout = 10)
{
	kube_exec_opts o = KUBE_EXEC_OPTS_INIT;
	kube_exec_result r;
	int fd = -1;
	kube_exec_conn c = { &fd, -1, t_send, t_recv };
	kube_exec_request rq = { "h", "/", NULL };

	o.pod = "p";
	cr_assert_eq(kube_exec_run_conn(&r, &c, &rq, &o), ERR_INVALID); /* no argv */
	o.argv = ARGV;
	cr_assert_eq(kube_exec_run_conn(&r, &c, &rq, &o), ERR_INVALID); /* no stream */
	o.on_stdout = on_out;
	o.protocol = 3;
	cr_assert_eq(kube_exec_run_conn(&r, &c, &rq, &o), ERR_INVALID);
	cr_assert_eq(r.exit_code, -1);
}

/* kubesim kubelet: pods/exec sessions over WebSocket frames (util/ws). */
#include "test_kubelet_harness.h"

#include <sys/random.h>

TestSuite(kubelet_exec, .init = h_setup, .fini = h_teardown, .timeout = 90);

static void running_pod(const char *uid)
{
	h_start_sh(uid, "echo from-container > /workspace/c.txt; exec sleep 600",
		   "\"workingDir\":\"/workspace\",\"env\":[{\"name\":\"GREETING\",\"value\":\"hello\"}]");
	h_wait_phase(uid, "Running", 20000);
}

#define ARGV(...) ((const char *const[]){ __VA_ARGS__, NULL })

Test(kubelet_exec, v5_streams_stdout_stderr_and_nonzero_exit_status)
{
	running_pod("x1");
	h_exec r = h_exec_run("x1", ARGV("sh", "-c", "echo out; echo err >&2; exit 3"), 5, NULL, 0, 0, -1);
	cr_assert(r.got_initial, "the first message is the empty one");
	cr_assert_eq(r.initial_channel, 1, "on the lowest writable channel (stdout)");
	cr_assert_str_eq(buf_cstr(&r.out), "out\n");
	cr_assert_str_eq(buf_cstr(&r.err), "err\n");
	cr_assert_str_eq(buf_cstr(&r.status),
			 "{\"metadata\":{},\"status\":\"Failure\",\"message\":\"command terminated with non-zero exit code: "
			 "error executing command [sh -c echo out; echo err >&2; exit 3], exit code 3\",\"reason\":"
			 "\"NonZeroExitCode\",\"details\":{\"causes\":[{\"reason\":\"ExitCode\",\"message\":\"3\"}]}}");
	cr_assert_eq(r.close_code, 1000);
	h_exec_free(&r);
}

Test(kubelet_exec, exit_codes_and_success_status)
{
	running_pod("x2");
	static const struct { const char *script; int code; } cases[] = {
		{ "true", 0 }, { "exit 1", 1 }, { "exit 255", 255 }, { "kill -9 $$", 137 }, { "nosuchcmd-k2", 127 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		h_exec r = h_exec_run("x2", ARGV("sh", "-c", cases[i].script), 5, NULL, 0, 0, -1);
		cr_assert_eq(h_exit_code(&r), cases[i].code, "%s: %s", cases[i].script, buf_cstr(&r.status));
		if (cases[i].code == 0)
			cr_assert_str_eq(buf_cstr(&r.status), "{\"metadata\":{},\"status\":\"Success\"}");
		cr_assert_eq(r.close_code, 1000);
		h_exec_free(&r);
	}
}

Test(kubelet_exec, missing_executable_is_internal_error_as_containerd_reports_it)
{
	running_pod("x3");
	h_exec r = h_exec_run("x3", ARGV("no-such-binary-k2"), 5, NULL, 0, 0, -1);
	cJSON *j = cJSON_Parse(buf_cstr(&r.status));
	cr_assert_not_null(j, "%s", buf_cstr(&r.status));
	cr_assert_str_eq(cJSON_GetObjectItem(j, "reason")->valuestring, "InternalError");
	cr_assert_eq(cJSON_GetObjectItem(j, "code")->valueint, 500);
	const char *m = cJSON_GetObjectItem(j, "message")->valuestring;
	cr_assert(str_has_prefix(m, "Internal error occurred: error executing command in container: failed to exec in "
				    "container: failed to start exec \""),
		  "%s", m);
	cr_assert(strstr(m, "OCI runtime exec failed: exec failed: unable to start container process: exec: "
			    "\"no-such-binary-k2\": executable file not found in $PATH: unknown"),
		  "%s", m);
	cJSON_Delete(j);
	cr_assert_eq(r.close_code, 1000);
	h_exec_free(&r);
}

Test(kubelet_exec, runs_in_the_pods_namespaces_with_its_env_and_workdir)
{
	running_pod("x4");
	h_exec r = h_exec_run("x4", ARGV("sh", "-c", "cat c.txt; pwd; echo $GREETING; echo $$; hostname; ls /proc/1/exe >/dev/null && echo pid1-visible"),
			      5, NULL, 0, 0, -1);
	cr_assert_eq(h_exit_code(&r), 0, "%s %s", buf_cstr(&r.status), buf_cstr(&r.err));
	/* pid: not 1 (that is the container), small (its own namespace) */
	char out[512];
	snprintf(out, sizeof out, "%s", buf_cstr(&r.out));
	cr_assert(str_has_prefix(out, "from-container\n/workspace\nhello\n"), "%s", out);
	cr_assert(strstr(out, "\npod-x4\npid1-visible\n"), "%s", out);
	int pid = atoi(out + strlen("from-container\n/workspace\nhello\n"));
	cr_assert(pid > 1 && pid < 100, "exec'd pid %d", pid);
	h_exec_free(&r);
}

Test(kubelet_exec, stdin_round_trips_10_MiB_and_v5_close_ends_it)
{
	running_pod("x5");
	size_t n = 10 << 20;
	char *in = malloc(n);
	cr_assert_eq(getrandom(in, n, 0), (ssize_t)n);
	h_exec r = h_exec_run("x5", ARGV("cat"), 5, in, n, 1, -1);
	cr_assert_eq(h_exit_code(&r), 0, "%s", buf_cstr(&r.status));
	cr_assert_eq(r.out.len, n);
	cr_assert(memcmp(r.out.data, in, n) == 0, "stdin came back altered");
	free(in);
	h_exec_free(&r);
}

Test(kubelet_exec, v4_ignores_the_v5_close_message_v5_honours_it)
{
	running_pod("x6");
	/* stdin "abc", FF 00, "def": v4 drops the close message (255 is not
	 * one of its channels), v5 closes stdin after "abc" */
	h_exec r = h_exec_run("x6", ARGV("head", "-c", "6"), 4, "abcdef", 6, 2, -1);
	cr_assert_str_eq(buf_cstr(&r.out), "abcdef");
	cr_assert_eq(h_exit_code(&r), 0);
	h_exec_free(&r);
	r = h_exec_run("x6", ARGV("cat"), 5, "abcdef", 6, 2, -1);
	cr_assert_str_eq(buf_cstr(&r.out), "abc");
	cr_assert_eq(h_exit_code(&r), 0);
	h_exec_free(&r);
}

/* v4 and v5 differ only in stdin EOF: a command that reads a known
 * length works the same with both. */
Test(kubelet_exec, v4_stdin_with_a_known_length)
{
	running_pod("x7");
	size_t n = 300000;
	char *in = malloc(n);
	for (size_t i = 0; i < n; i++)
		in[i] = (char)('a' + i % 26);
	h_exec r = h_exec_run("x7", ARGV("head", "-c", "300000"), 4, in, n, 0, -1);
	cr_assert_eq(h_exit_code(&r), 0);
	cr_assert_eq(r.out.len, n);
	cr_assert(memcmp(r.out.data, in, n) == 0);
	free(in);
	h_exec_free(&r);
}

Test(kubelet_exec, cut_after_bytes_drops_the_connection_without_status)
{
	running_pod("x8");
	h_exec r = h_exec_run("x8", ARGV("sh", "-c", "yes | head -c 2000000"), 5, NULL, 0, 0, 1000);
	cr_assert_leq(r.out.len, 1000);
	cr_assert_eq(r.status.len, 0, "no status after a cut");
	cr_assert_eq(r.close_code, 0, "no close frame after a cut");
	h_exec_free(&r);
}

Test(kubelet_exec, a_process_outlives_its_stream)
{
	running_pod("x9");
	h_exec r = h_exec_run("x9", ARGV("sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $! > /workspace/bg.pid"), 5, NULL, 0,
			      0, -1);
	cr_assert_eq(h_exit_code(&r), 0);
	h_exec_free(&r);
	clock_sleep_ms(200);
	r = h_exec_run("x9", ARGV("sh", "-c", "kill -0 $(cat /workspace/bg.pid)"), 5, NULL, 0, 0, -1);
	cr_assert_eq(h_exit_code(&r), 0, "the background process is gone");
	h_exec_free(&r);
	for (int i = 0; i < 100 && ks_kubelet_exec_count(H.k) > 0; i++)
		clock_sleep_ms(20);
	cr_assert_eq(ks_kubelet_exec_count(H.k), 0);
}

Test(kubelet_exec, check_refuses_unknown_pods_containers_and_finished_pods)
{
	cr_assert_eq(ks_kubelet_exec_check(H.k, "nope", NULL), ERR_NOTFOUND);
	running_pod("x10");
	cr_assert_eq(ks_kubelet_exec_check(H.k, "x10", "other"), ERR_INVALID);
	cr_assert_str_eq(err_msg(), "container other is not valid for pod pod-x10");
	cr_assert_eq(ks_kubelet_exec_check(H.k, "x10", "main"), 0);
	h_start_sh("x10done", "true", NULL);
	h_wait_phase("x10done", "Succeeded", 20000);
	cr_assert_eq(ks_kubelet_exec_check(H.k, "x10done", NULL), ERR_INVALID);
	cr_assert_str_eq(err_msg(), "cannot exec into a container in a completed pod; current phase is Succeeded");
}

/* A raw client: pings, bad frames. */
static int raw_session(const char *uid, int *fd_out)
{
	int sv[2];
	ks_exec_params *p = calloc(1, sizeof *p);
	p->uid = str_dup(uid);
	p->argv = calloc(2, sizeof *p->argv);
	p->argv[0] = str_dup("cat");
	p->want_stdin = p->want_stdout = p->want_stderr = 1;
	p->version = 5;
	p->cut_after_bytes = -1;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(ks_kubelet_exec_serve(H.k, p, sv[1], NULL, 0), 0, "%s", err_msg());
	*fd_out = sv[0];
	return 0;
}

/* Read frames until one of type `want`; returns its close code or 0. */
static int read_until(int fd, int want, buf *payload)
{
	ws_decoder d;
	buf pend = BUF_INIT(SIZE_MAX);
	int result = -1;
	ws_decoder_init(&d, 0, 0);
	while (result < 0) {
		struct pollfd pf = { fd, POLLIN, 0 };
		cr_assert_gt(poll(&pf, 1, 20000), 0, "no frame");
		buf_reserve(&pend, 4096);
		ssize_t n = recv(fd, pend.data + pend.len, 4096, 0);
		if (n <= 0)
			break;
		pend.len += (size_t)n;
		size_t off = 0;
		for (;;) {
			ws_event e;
			size_t used;
			cr_assert_eq(ws_decoder_next(&d, (uint8_t *)pend.data + off, pend.len - off, &used, &e), 0);
			off += used;
			if (e.type == WS_EV_NONE) {
				if (!used)
					break;
				continue;
			}
			if ((int)e.type == want) {
				if (payload)
					buf_append(payload, e.data, e.len);
				result = e.close_code;
				break;
			}
		}
		buf_consume(&pend, off);
	}
	buf_free(&pend);
	return result;
}

Test(kubelet_exec, pings_are_answered_and_bad_frames_close_with_1002)
{
	running_pod("x11");
	int fd;
	raw_session("x11", &fd);
	buf b = BUF_INIT(1024);
	uint8_t key[4] = { 9, 8, 7, 6 };
	ws_frame_append(&b, 1, WS_OP_PING, "are-you-there", 13, key);
	cr_assert_eq(send(fd, b.data, b.len, 0), (ssize_t)b.len);
	buf pong = BUF_INIT(1024);
	read_until(fd, WS_EV_PONG, &pong);
	cr_assert_str_eq(buf_cstr(&pong), "are-you-there");
	/* an unmasked client frame is a protocol error: close 1002 */
	buf_reset(&b);
	ws_frame_append(&b, 1, WS_OP_BINARY, "\0x", 2, NULL);
	cr_assert_eq(send(fd, b.data, b.len, 0), (ssize_t)b.len);
	cr_assert_eq(read_until(fd, WS_EV_CLOSE, NULL), 1002);
	close(fd);
	buf_free(&b);
	buf_free(&pong);
	/* the session ends; its cat sees EOF and is reaped */
	for (int i = 0; i < 100 && ks_kubelet_process_count(H.k) > 1; i++)
		clock_sleep_ms(50);
	cr_assert_eq(ks_kubelet_process_count(H.k), 1, "only the container is left");
}

typedef struct par {
	int i, ok;
} par;

static void *par_exec(void *arg)
{
	par *p = arg;
	char cmd[64];
	snprintf(cmd, sizeof cmd, "echo session-%d", p->i);
	h_exec r = h_exec_run("x12", ARGV("sh", "-c", cmd), 5, NULL, 0, 0, -1);
	char want[64];
	snprintf(want, sizeof want, "session-%d\n", p->i);
	p->ok = h_exit_code(&r) == 0 && strcmp(buf_cstr(&r.out), want) == 0 && r.close_code == 1000;
	h_exec_free(&r);
	return NULL;
}

Test(kubelet_exec, two_hundred_concurrent_sessions)
{
	running_pod("x12");
	enum { N = 200 };
	static pthread_t th[N];
	static par ps[N];
	for (int i = 0; i < N; i++) {
		ps[i].i = i;
		pthread_create(&th[i], NULL, par_exec, &ps[i]);
	}
	int ok = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ok += ps[i].ok;
	}
	cr_assert_eq(ok, N, "%d of %d sessions were right", ok, N);
	for (int i = 0; i < 100 && ks_kubelet_exec_count(H.k) > 0; i++)
		clock_sleep_ms(20);
	cr_assert_eq(ks_kubelet_exec_count(H.k), 0);
}

Test(kubelet_exec, throughput_of_256_MiB_of_stdout)
{
	running_pod("x13");
	int64_t t0 = clock_mono_ns();
	h_exec r = h_exec_run("x13", ARGV("head", "-c", "268435456", "/dev/zero"), 5, NULL, 0, 0, -1);
	int64_t ns = clock_mono_ns() - t0;
	cr_assert_eq(h_exit_code(&r), 0);
	cr_assert_eq(r.out.len, (size_t)256 << 20);
	/* reported, not asserted: the machine is shared */
	cr_log_info("exec stdout: 256 MiB in %.2f s = %.0f MiB/s", ns / 1e9, 256.0 / (ns / 1e9));
	fprintf(stderr, "exec stdout throughput: 256 MiB in %.2f s = %.0f MiB/s\n", ns / 1e9, 256.0 / (ns / 1e9));
	h_exec_free(&r);
}

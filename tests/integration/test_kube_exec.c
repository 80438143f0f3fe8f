/*
 * kube/exec against the real kubesim binary over HTTPS and WebSocket:
 * exit codes and a signal death exactly as the status says, stdout and
 * stderr apart, stdin with the v5 half-close and under v4 with the
 * command's own framing, API errors before the upgrade with the server's
 * message, a 401 retried once, and streams cut by kubesim's exec-cut
 * fault reported as lost, never as success.
 */
#include "tests/integration/kube_exec_common.h"

#include <pthread.h>

#include <openssl/evp.h>

Test(kube_exec_sim, exit_codes_and_signal_exactly_as_the_status_says, .timeout = 90)
{
	static const struct {
		const char *script;
		int code;
	} cases[] = {
		{ "exit 0", 0 }, { "exit 1", 1 }, { "exit 3", 3 }, { "exit 255", 255 },
		{ "no-such-command-cifixer", 127 }, { "exit 127", 127 },
		/* killed by SIGKILL: the runtime reports 128+9 */
		{ "kill -9 $$", 137 },
	};
	xenv e;

	xenv_start(&e, NULL);
	xenv_pod(&e, "codes");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *argv[] = { "sh", "-c", cases[i].script, NULL };
		kube_exec_result r;
		xout o;
		int rc = xrun(&e, &r, &o, "codes", argv, NULL);

		cr_assert_eq(rc, 0, "%s: %s", cases[i].script, err_msg());
		cr_assert_eq(r.exit_code, cases[i].code, "%s: exit %d, status %s/%s", cases[i].script, r.exit_code,
			     r.reason, r.message);
		cr_assert_eq(r.signal, cases[i].code == 137 ? 9 : 0);
		cr_assert_eq(r.protocol, 5);
		if (cases[i].code)
			cr_assert_str_eq(r.reason, "NonZeroExitCode");
		xout_free(&o);
	}
	xenv_stop(&e);
}

Test(kube_exec_sim, stdout_and_stderr_stay_apart, .timeout = 60)
{
	const char *argv[] = { "sh", "-c", "for i in 1 2 3; do echo out$i; echo err$i >&2; done; printf tail", NULL };
	kube_exec_result r;
	xout o;
	xenv e;

	xenv_start(&e, NULL);
	xenv_pod(&e, "streams");
	cr_assert_eq(xrun(&e, &r, &o, "streams", argv, NULL), 0, "%s", err_msg());
	cr_assert_eq(r.exit_code, 0);
	cr_assert_str_eq(buf_cstr(&o.out), "out1\nout2\nout3\ntail");
	cr_assert_str_eq(buf_cstr(&o.err), "err1\nerr2\nerr3\n");
	cr_assert_eq(r.stdout_bytes, o.out.len);
	cr_assert_eq(r.stderr_bytes, o.err.len);
	xout_free(&o);

	/* argv elements reach the command unsplit and unmangled */
	const char *argv2[] = { "printf", "%s|", "a b", "c&d=e", "\xc3\xa9", "", "'\"", NULL };
	cr_assert_eq(xrun(&e, &r, &o, "streams", argv2, NULL), 0, "%s", err_msg());
	cr_assert_str_eq(buf_cstr(&o.out), "a b|c&d=e|\xc3\xa9||'\"|");
	xout_free(&o);
	xenv_stop(&e);
}

static void sha_hex(char out[65], const void *p, size_t n)
{
	uint8_t d[32];
	unsigned len = 0;

	EVP_Digest(p, n, d, &len, EVP_sha256(), NULL);
	str_hex(out, d, 32);
}

Test(kube_exec_sim, stdin_v5_half_close_and_v4_own_framing, .timeout = 60)
{
	size_t n = 5u << 20;
	uint8_t *data = malloc(n);
	char want[65];
	xenv e;

	for (size_t i = 0; i < n; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	sha_hex(want, data, n);
	xenv_start(&e, NULL);
	xenv_pod(&e, "stdin");

	/* v5: the command reads to EOF, which only the FF 00 close can give */
	{
		const char *argv[] = { "sha256sum", NULL };
		kube_exec_opts base = KUBE_EXEC_OPTS_INIT;
		kube_exec_result r;
		xout o;

		base.stdin_data = data;
		base.stdin_len = n;
		cr_assert_eq(xrun(&e, &r, &o, "stdin", argv, &base), 0, "%s", err_msg());
		cr_assert_eq(r.protocol, 5);
		cr_assert_eq(r.exit_code, 0, "%s", buf_cstr(&o.err));
		cr_assert_eq(r.stdin_bytes, n);
		cr_assert(str_has_prefix(buf_cstr(&o.out), want), "got %s want %s", buf_cstr(&o.out), want);
		xout_free(&o);
	}
	/* v4: no half-close exists, so the command takes exactly N bytes */
	{
		char script[64];
		snprintf(script, sizeof(script), "head -c %zu | sha256sum", n);
		const char *argv[] = { "sh", "-c", script, NULL };
		kube_exec_opts base = KUBE_EXEC_OPTS_INIT;
		kube_exec_result r;
		xout o;

		base.stdin_data = data;
		base.stdin_len = n;
		base.protocol = 4;
		cr_assert_eq(xrun(&e, &r, &o, "stdin", argv, &base), 0, "%s", err_msg());
		cr_assert_eq(r.protocol, 4);
		cr_assert_eq(r.exit_code, 0, "%s", buf_cstr(&o.err));
		cr_assert(str_has_prefix(buf_cstr(&o.out), want), "got %s want %s", buf_cstr(&o.out), want);
		xout_free(&o);
	}
	/* stdin from a pipe fed by another thread's writes: empty input */
	{
		int p[2];
		const char *argv[] = { "wc", "-c", NULL };
		kube_exec_opts base = KUBE_EXEC_OPTS_INIT;
		kube_exec_result r;
		xout o;

		cr_assert_eq(pipe(p), 0);
		cr_assert_eq(write(p[1], "12345", 5), 5);
		close(p[1]);
		base.stdin_fd = p[0];
		cr_assert_eq(xrun(&e, &r, &o, "stdin", argv, &base), 0, "%s", err_msg());
		close(p[0]);
		cr_assert_eq(r.exit_code, 0);
		cr_assert_eq(atoi(buf_cstr(&o.out)), 5, "%s", buf_cstr(&o.out));
		xout_free(&o);
	}
	free(data);
	xenv_stop(&e);
}

Test(kube_exec_sim, api_errors_before_the_upgrade_quote_the_server, .timeout = 60)
{
	const char *argv[] = { "true", NULL };
	kube_exec_opts base = KUBE_EXEC_OPTS_INIT;
	kube_exec_result r;
	xout o;
	xenv e;

	xenv_start(&e, NULL);
	xenv_pod(&e, "errs");
	cr_assert_eq(xrun(&e, &r, &o, "nosuchpod", argv, NULL), ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "\"nosuchpod\" not found"), "%s", err_msg());
	cr_assert_eq(r.http_code, 404);
	xout_free(&o);

	base.container = "nosuch";
	cr_assert_eq(xrun(&e, &r, &o, "errs", argv, &base), ERR_INVALID);
	cr_assert(strstr(err_msg(), "nosuch"), "%s", err_msg());
	cr_assert_eq(r.http_code, 400);
	xout_free(&o);
	xenv_stop(&e);
}

Test(kube_exec_sim, unauthorized_is_retried_once_then_reported, .timeout = 60)
{
	const char *argv[] = { "true", NULL };
	kube_exec_result r;
	xout o;
	xenv e;
	kube_client *bad = NULL;
	kube_config *cfg = NULL;

	xenv_start(&e, NULL);
	xenv_pod(&e, "auth");
	cr_assert_eq(kube_config_dup(&cfg, e.cfg), 0);
	cr_assert_not_null(cfg->token, "the kubesim kubeconfig has no token");
	free(cfg->token);
	cfg->token = strdup("not-a-valid-token");
	cr_assert_eq(kube_client_new(&bad, cfg), 0, "%s", err_msg());
	kube_client *good = e.c;
	e.c = bad;
	cr_assert_eq(xrun(&e, &r, &o, "auth", argv, NULL), ERR_UNAUTHORIZED, "%s", err_msg());
	cr_assert_eq(r.attempts, 2);
	cr_assert_eq(r.http_code, 401);
	xout_free(&o);
	e.c = good;
	kube_client_free(bad);
	kube_config_free(cfg);
	xenv_stop(&e);
}

Test(kube_exec_sim, a_cut_stream_is_lost_never_success, .timeout = 90)
{
	/* every other exec is cut after 1000 output bytes */
	const char *const extra[] = { "--faults", "exec *:exec-cut=1000@every=2", "--seed", "1", NULL };
	const char *argv[] = { "sh", "-c", "head -c 200000 /dev/zero; echo done >&2", NULL };
	int lost = 0, ok = 0;
	xenv e;

	xenv_start(&e, extra);
	xenv_pod(&e, "cut");
	for (int i = 0; i < 6; i++) {
		kube_exec_result r;
		xout o;
		int rc = xrun(&e, &r, &o, "cut", argv, NULL);

		if (rc == ERR_LOST) {
			lost++;
			cr_assert(strstr(err_msg(), "the exec stream ended without an exit status: the command's outcome is unknown"),
				  "%s", err_msg());
			cr_assert_eq(r.exit_code, -1);
			cr_assert_lt(r.stdout_bytes, 200000);
		} else {
			cr_assert_eq(rc, 0, "run %d: %d %s", i, rc, err_msg());
			cr_assert_eq(r.exit_code, 0);
			cr_assert_eq(r.stdout_bytes, 200000);
			cr_assert_str_eq(buf_cstr(&o.err), "done\n");
			ok++;
		}
		xout_free(&o);
	}
	cr_assert_eq(lost, 3, "lost %d ok %d", lost, ok);
	cr_assert_eq(ok, 3);
	xenv_stop(&e);
}

struct canceller {
	kube_cancel *flag;
};

static void *cancel_soon(void *arg)
{
	clock_sleep_ms(500);
	kube_cancel_request(((struct canceller *)arg)->flag);
	return NULL;
}

Test(kube_exec_sim, cancel_and_pings_on_a_silent_command, .timeout = 60)
{
	const char *argv[] = { "sleep", "30", NULL };
	kube_cancel flag = KUBE_CANCEL_INIT;
	struct canceller c = { &flag };
	kube_exec_opts base = KUBE_EXEC_OPTS_INIT;
	kube_exec_result r;
	pthread_t th;
	xout o;
	xenv e;

	xenv_start(&e, NULL);
	xenv_pod(&e, "quiet");
	/* a silent command outlives several ping periods and a short idle
	 * limit: only pongs keep it alive */
	{
		const char *a2[] = { "sleep", "2", NULL };
		kube_exec_opts b2 = KUBE_EXEC_OPTS_INIT;

		b2.ping_ms = 200;
		b2.idle_ms = 1000;
		cr_assert_eq(xrun(&e, &r, &o, "quiet", a2, &b2), 0, "%s", err_msg());
		cr_assert_eq(r.exit_code, 0);
		xout_free(&o);
	}
	base.cancel = &flag;
	pthread_create(&th, NULL, cancel_soon, &c);
	int64_t t0 = clock_mono_ms();
	cr_assert_eq(xrun(&e, &r, &o, "quiet", argv, &base), ERR_CANCELLED, "%s", err_msg());
	cr_assert_lt(clock_mono_ms() - t0, 5000);
	pthread_join(th, NULL);
	xout_free(&o);
	xenv_stop(&e);
}

/*
 * kube/exec against the real kubesim, issue 4's acceptance: 100
 * concurrent exec streams from 100 threads on one kube_client, each with
 * its own output and exit code.
 */
#include "tests/integration/kube_exec_common.h"

#include <pthread.h>

typedef struct worker {
	xenv *e;
	int i;
	int rc, exit_code;
	char out[64], err[64], msg[256];
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	char idx[16];
	const char *argv[] = { "sh", "-c", "sleep 0.2; echo out-$0; echo err-$0 >&2; exit $(($0 % 7))", idx, NULL };
	kube_exec_result r;
	xout o;

	snprintf(idx, sizeof(idx), "%d", w->i);
	w->rc = xrun(w->e, &r, &o, "conc", argv, NULL);
	w->exit_code = r.exit_code;
	snprintf(w->out, sizeof(w->out), "%s", buf_cstr(&o.out));
	snprintf(w->err, sizeof(w->err), "%s", buf_cstr(&o.err));
	snprintf(w->msg, sizeof(w->msg), "%s", err_msg());
	xout_free(&o);
	return NULL;
}

Test(kube_exec_load, hundred_concurrent_streams_from_hundred_threads, .timeout = 110)
{
	enum { N = 100 };
	static worker w[N];
	pthread_t th[N];
	xenv e;

	xenv_start(&e, NULL);
	/* 100 TLS handshakes at once against one kubesim on 2 shared cores can
	 * take longer than the default 10 s connect timeout (which, as
	 * client-go's TLSHandshakeTimeout, covers the handshake): this test is
	 * about the streams, so the handshakes get a safety limit instead. */
	kube_client_set_timeouts(e.c, 60000, 0);
	xenv_pod(&e, "conc");
	int64_t t0 = clock_mono_ms();
	for (int i = 0; i < N; i++) {
		w[i] = (worker){ .e = &e, .i = i };
		cr_assert_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	fprintf(stderr, "# 100 concurrent execs: %lld ms\n", (long long)(clock_mono_ms() - t0));
	/* the first wrong result, checked after the teardown (a failed
	 * assertion ends the test at once: nothing would be freed) */
	char bad[512] = "";
	for (int i = 0; i < N && !bad[0]; i++) {
		char want_out[32], want_err[32];

		snprintf(want_out, sizeof(want_out), "out-%d\n", i);
		snprintf(want_err, sizeof(want_err), "err-%d\n", i);
		if (w[i].rc != 0)
			snprintf(bad, sizeof(bad), "thread %d: %s", i, w[i].msg);
		else if (w[i].exit_code != i % 7)
			snprintf(bad, sizeof(bad), "thread %d: exit code %d, want %d", i, w[i].exit_code, i % 7);
		else if (strcmp(w[i].out, want_out) != 0 || strcmp(w[i].err, want_err) != 0)
			snprintf(bad, sizeof(bad), "thread %d: stdout \"%s\", stderr \"%s\"", i, w[i].out, w[i].err);
	}
	xenv_stop(&e);
	cr_assert_str_empty(bad, "%s", bad);
}

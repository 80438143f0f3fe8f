/*
 * kube/exec against the real kubesim, issue 4's acceptance: 1,000
 * sequential execs of `true` in one pod, each a fresh TLS connection and
 * WebSocket upgrade, with zero failures. About 60 ms each on a quiet
 * machine, almost all of it kubesim starting the process (the client
 * spends about 4 ms of CPU per exec); 229 s were measured with the
 * 2 shared cores at a load average of 40, hence the timeout.
 */
#include "tests/integration/kube_exec_common.h"

Test(kube_exec_seq, a_thousand_sequential_execs_of_true, .timeout = 480)
{
	const char *argv[] = { "true", NULL };
	kube_exec_opts o = KUBE_EXEC_OPTS_INIT;
	xenv e;
	int failures = 0;
	char first[512] = "";

	xenv_start(&e, NULL);
	xenv_pod(&e, "seq");
	o.ns = "default";
	o.pod = "seq";
	o.argv = argv;
	o.stdin_data = ""; /* stdin requested, empty: at least one stream */
	o.stdin_len = 0;
	int64_t t0 = clock_mono_ms();
	for (int i = 0; i < 1000; i++) {
		kube_exec_result r;
		int rc = kube_exec_run(&r, e.c, &o);

		if (rc != 0 || r.exit_code != 0) {
			if (!failures++)
				snprintf(first, sizeof(first), "exec %d: rc %d exit %d: %s", i, rc, r.exit_code, err_msg());
		}
	}
	int64_t ms = clock_mono_ms() - t0;
	cr_log_info("1000 sequential execs in %lld ms (%.1f ms each)", (long long)ms, ms / 1000.0);
	fprintf(stderr, "# 1000 sequential execs of true: %lld ms (%.1f ms each)\n", (long long)ms, ms / 1000.0);
	cr_assert_eq(failures, 0, "%d failures; first: %s", failures, first);
	xenv_stop(&e);
}


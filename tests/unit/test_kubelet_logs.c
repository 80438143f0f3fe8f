/* kubesim kubelet: container logs (pods/log options). */
#include "test_kubelet_harness.h"

#include <regex.h>

TestSuite(kubelet_logs, .init = h_setup, .fini = h_teardown, .timeout = 60);

static ks_log_params params(const char *uid)
{
	ks_log_params p = { uid, NULL, 0, -1, -1, -1, 0, 0 };
	return p;
}

/* Everything a reader gives until its end. */
static char *read_all(const ks_log_params *p)
{
	ks_log_reader *r;
	buf b = BUF_INIT(1 << 24);
	char chunk[7]; /* small reads: exercise the hand-out in pieces */

	cr_assert_eq(ks_kubelet_log_open(H.k, &r, p), 0, "%s", err_msg());
	for (;;) {
		long n = ks_log_read(r, chunk, sizeof chunk, 10000);
		cr_assert_geq(n, 0, "read: %s", err_msg());
		if (n == 0)
			break;
		buf_append(&b, chunk, (size_t)n);
	}
	ks_log_close(r);
	return buf_take(&b, NULL);
}

Test(kubelet_logs, tail_limit_timestamps_stderr_and_partial_lines)
{
	h_start_sh("l1", "for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; done; echo oops >&2; printf no-newline", NULL);
	h_wait_phase("l1", "Succeeded", 20000);
	ks_log_params p = params("l1");
	char *all = read_all(&p);
	cr_assert_str_eq(all, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\noops\nno-newline");
	free(all);

	p.tail_lines = 3;
	char *t = read_all(&p);
	cr_assert_str_eq(t, "10\noops\nno-newline");
	free(t);
	p.tail_lines = 0;
	t = read_all(&p);
	cr_assert_str_eq(t, "");
	free(t);
	p.tail_lines = 1000;
	t = read_all(&p);
	cr_assert(str_has_prefix(t, "1\n2\n"));
	free(t);

	p = params("l1");
	p.limit_bytes = 5;
	char *l = read_all(&p);
	cr_assert_str_eq(l, "1\n2\n3");
	free(l);

	p = params("l1");
	p.timestamps = 1;
	p.tail_lines = 2;
	char *ts = read_all(&p);
	/* RFC 3339 with trailing zeros of the fraction dropped (RFC3339Nano) */
	regex_t re;
	cr_assert_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]*[1-9])?Z oops\n"
				  "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}(\\.[0-9]*[1-9])?Z no-newline$",
			     REG_EXTENDED),
		     0);
	cr_assert_eq(regexec(&re, ts, 0, NULL, 0), 0, "%s", ts);
	regfree(&re);
	free(ts);
}

Test(kubelet_logs, since_seconds_keeps_only_recent_lines)
{
	h_start_sh("l2", "echo old; sleep 2; echo new", NULL);
	h_wait_phase("l2", "Succeeded", 20000);
	ks_log_params p = params("l2");
	p.since_seconds = 1;
	char *s = read_all(&p);
	cr_assert_str_eq(s, "new\n");
	free(s);
}

Test(kubelet_logs, follow_streams_until_the_container_stops)
{
	h_start_sh("l3", "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done", NULL);
	h_wait_phase("l3", "Running|Succeeded", 20000);
	ks_log_params p = params("l3");
	p.follow = 1;
	ks_log_reader *r;
	cr_assert_eq(ks_kubelet_log_open(H.k, &r, &p), 0, "%s", err_msg());
	buf b = BUF_INIT(4096);
	int64_t t0 = clock_mono_ms();
	for (;;) {
		char c[64];
		long n = ks_log_read(r, c, sizeof c, 5000);
		cr_assert_geq(n, 0, "%s", err_msg());
		if (n == 0)
			break;
		buf_append(&b, c, (size_t)n);
	}
	cr_assert_str_eq(buf_cstr(&b), "line1\nline2\nline3\nline4\nline5\n");
	cr_assert_geq(clock_mono_ms() - t0, 500, "follow returned before the container ended");
	ks_log_close(r);
	buf_free(&b);
}

Test(kubelet_logs, follow_times_out_while_quiet)
{
	h_start_sh("l4", "echo first; exec sleep 30", NULL);
	h_wait_phase("l4", "Running", 20000);
	ks_log_params p = params("l4");
	p.follow = 1;
	ks_log_reader *r;
	char c[64];
	clock_sleep_ms(300);
	cr_assert_eq(ks_kubelet_log_open(H.k, &r, &p), 0);
	cr_assert_eq(ks_log_read(r, c, sizeof c, 2000), 6);
	cr_assert_eq(ks_log_read(r, c, sizeof c, 200), ERR_TIMEOUT);
	ks_log_close(r);
}

Test(kubelet_logs, previous_waiting_and_unknown_are_refused_as_upstream)
{
	ks_log_params p = params("nope");
	ks_log_reader *r;
	cr_assert_eq(ks_kubelet_log_open(H.k, &r, &p), ERR_NOTFOUND);

	h_start_sh("l5", "echo x", NULL);
	h_wait_phase("l5", "Succeeded", 20000);
	p = params("l5");
	p.previous = 1;
	cr_assert_eq(ks_kubelet_log_open(H.k, &r, &p), ERR_INVALID);
	cr_assert_str_eq(err_msg(), "previous terminated container \"main\" in pod \"pod-l5\" not found");
	p = params("l5");
	p.container = "other";
	cr_assert_eq(ks_kubelet_log_open(H.k, &r, &p), ERR_INVALID);
	cr_assert_str_eq(err_msg(), "container other is not valid for pod pod-l5");

	h_start("l6", "{\"containers\":[{\"name\":\"main\",\"image\":\"registry.invalid/x:1\",\"command\":[\"true\"]}]}");
	h_wait_reason("l6", "ImagePullBackOff", 20000);
	p = params("l6");
	cr_assert_eq(ks_kubelet_log_open(H.k, &r, &p), ERR_INVALID);
	cr_assert_str_eq(err_msg(), "container \"main\" in pod \"pod-l6\" is waiting to start: trying and failing to pull image");

	h_start_sh("l7", "true", "\"env\":[{\"name\":\"S\",\"valueFrom\":{\"configMapKeyRef\":{\"name\":\"c\",\"key\":\"k\"}}}]");
	h_wait_reason("l7", "CreateContainerConfigError", 20000);
	p = params("l7");
	cr_assert_eq(ks_kubelet_log_open(H.k, &r, &p), ERR_INVALID);
	cr_assert_str_eq(err_msg(), "container \"main\" in pod \"pod-l7\" is waiting to start: CreateContainerConfigError");
}

Test(kubelet_logs, long_lines_are_kept_whole)
{
	/* over containerd's 16 KiB line size: stored as P pieces, read back joined */
	h_start_sh("l8", "head -c 40000 /dev/zero | tr '\\0' a; echo; echo end", NULL);
	h_wait_phase("l8", "Succeeded", 20000);
	ks_log_params p = params("l8");
	char *s = read_all(&p);
	cr_assert_eq(strlen(s), 40000 + 1 + 4, "%zu", strlen(s));
	cr_assert(str_has_suffix(s, "a\nend\n"));
	free(s);
}

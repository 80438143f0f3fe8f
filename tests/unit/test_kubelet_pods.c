/* kubesim kubelet: pods as isolated processes, status, events, stop. */
#include "test_kubelet_harness.h"

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>

TestSuite(kubelet_pods, .init = h_setup, .fini = h_teardown, .timeout = 60);

Test(kubelet_pods, runs_the_command_and_reports_completed_with_upstream_events)
{
	h_start_sh("ok1", "echo hi", NULL);
	h_pod p = h_wait_phase("ok1", "Succeeded|Failed", 20000);
	cr_assert_str_eq(p.phase, "Succeeded");
	cr_assert_eq(p.ctrs[0].state, KS_CTR_TERMINATED);
	cr_assert_eq(p.ctrs[0].exit_code, 0);
	cr_assert_str_eq(p.ctrs[0].reason, "Completed");
	cr_assert(h_has_event("ok1", "Normal", "Pulled", "Container image \"busybox:1.36\" already present on machine"));
	cr_assert(h_has_event("ok1", "Normal", "Created", "Created container: main|spec.containers{main}"));
	cr_assert(h_has_event("ok1", "Normal", "Started", "Started container main|spec.containers{main}"));
	cr_assert_eq(ks_kubelet_pod_count(H.k), 1);
	ks_kubelet_pod_forget(H.k, "ok1");
	cr_assert_eq(ks_kubelet_pod_count(H.k), 0);
	cr_assert_eq(ks_kubelet_process_count(H.k), 0);
	char *d = str_printf("%s/pods/ok1", H.dir);
	cr_assert_neq(access(d, F_OK), 0, "the pod's directory is removed when it is forgotten");
	free(d);
}

Test(kubelet_pods, exit_codes_1_3_255_and_a_signal)
{
	static const struct { const char *uid, *script; int code, sig; } cases[] = {
		{ "e1", "exit 1", 1, 0 },
		{ "e3", "exit 3", 3, 0 },
		{ "e255", "exit 255", 255, 0 },
		{ "esig", "sh -c 'kill -9 $$$$'", 137, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		h_start_sh(cases[i].uid, cases[i].script, NULL);
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		h_pod p = h_wait_phase(cases[i].uid, "Succeeded|Failed", 20000);
		cr_assert_str_eq(p.phase, "Failed", "%s", cases[i].uid);
		cr_assert_eq(p.ctrs[0].exit_code, cases[i].code, "%s: exit %d", cases[i].uid, p.ctrs[0].exit_code);
		cr_assert_eq(p.ctrs[0].signal, cases[i].sig, "%s", cases[i].uid);
		cr_assert_str_eq(p.ctrs[0].reason, "Error");
	}
}

Test(kubelet_pods, missing_binary_is_start_error_128_with_runc_message)
{
	h_start("nobin", "{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"main\",\"image\":\"x:1\","
			 "\"command\":[\"no-such-binary-kubesim\"]}]}");
	h_pod p = h_wait_phase("nobin", "Failed", 20000);
	cr_assert_eq(p.ctrs[0].exit_code, 128);
	cr_assert_str_eq(p.ctrs[0].reason, "StartError");
	cr_assert(strstr(p.ctrs[0].message, "exec: \"no-such-binary-kubesim\": executable file not found in $PATH"),
		  "%s", p.ctrs[0].message);
	cr_assert(h_has_event("nobin", "Warning", "Failed", "Error: failed to create containerd task"));
}

Test(kubelet_pods, workspace_is_private_per_pod_and_world_writable_on_the_host)
{
	h_start_sh("isoA", "cd /workspace && echo secret > a.txt && test -f /workspace/a.txt && sleep 30", NULL);
	h_wait_phase("isoA", "Running", 20000);
	/* A's file exists on the host under A's volume, not B's */
	char *fa = str_printf("%s/pods/isoA/volumes/kubernetes.io~empty-dir/ws", H.dir);
	struct stat st;
	cr_assert_eq(stat(fa, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0777, "emptyDir mode %o", st.st_mode & 0777);
	free(fa);
	clock_sleep_ms(300);
	h_start_sh("isoB", "test -d /workspace && test ! -e /workspace/a.txt && [ -z \"$(ls -A /workspace)\" ] && "
			   "test ! -e /tmp/a.txt",
		   NULL);
	h_pod b = h_wait_phase("isoB", "Succeeded|Failed", 20000);
	cr_assert_str_eq(b.phase, "Succeeded", "pod B saw pod A's files (exit %d)", b.ctrs[0].exit_code);
	cr_assert_eq(ks_kubelet_pod_stop(H.k, "isoA", 0, NULL), 0);
	h_wait_phase("isoA", "Failed", 20000);
}

Test(kubelet_pods, pid_namespace_mount_namespace_and_proc)
{
	/* the command is PID 1 of its own PID namespace; /proc is that namespace's */
	h_start_sh("pidns", "[ $$$$ = 1 ] && [ \"$(ls /proc | grep -c '^[0-9]')\" -lt 5 ] && test -x /bin/sh && "
			    "test -d /etc && ! test -e /work/brief.md",
		   NULL);
	h_pod p = h_wait_phase("pidns", "Succeeded|Failed", 20000);
	cr_assert_str_eq(p.phase, "Succeeded", "exit %d", p.ctrs[0].exit_code);
}

Test(kubelet_pods, read_only_root_filesystem_keeps_volumes_writable)
{
	h_start_sh("ro", "if touch /rootfile 2>/dev/null; then exit 10; fi; if touch /etc/x 2>/dev/null; then exit 11; fi;"
			 "touch /workspace/ok || exit 12",
		   "\"securityContext\":{\"readOnlyRootFilesystem\":true}");
	h_pod p = h_wait_phase("ro", "Succeeded|Failed", 20000);
	cr_assert_str_eq(p.phase, "Succeeded", "exit %d", p.ctrs[0].exit_code);
	/* without it / is writable (a tmpfs), the host's /usr stays read-only */
	h_start_sh("rw", "touch /rootfile || exit 10; if touch /usr/x 2>/dev/null; then exit 11; fi", NULL);
	p = h_wait_phase("rw", "Succeeded|Failed", 20000);
	cr_assert_str_eq(p.phase, "Succeeded", "exit %d", p.ctrs[0].exit_code);
}

Test(kubelet_pods, run_as_user_and_group_apply)
{
	h_start_sh("user", "[ \"$(id -u)\" = 1234 ] && [ \"$(id -g)\" = 2345 ] && touch /workspace/mine && "
			   "[ \"$(stat -c %u /workspace/mine)\" = 1234 ]",
		   "\"securityContext\":{\"runAsUser\":1234,\"runAsGroup\":2345}");
	h_pod p = h_wait_phase("user", "Succeeded|Failed", 20000);
	cr_assert_str_eq(p.phase, "Succeeded", "exit %d", p.ctrs[0].exit_code);
}

Test(kubelet_pods, run_as_non_root_with_root_user_is_create_container_config_error)
{
	h_start_sh("nonroot", "true", "\"securityContext\":{\"runAsNonRoot\":true}");
	h_pod p = h_wait_reason("nonroot", "CreateContainerConfigError", 20000);
	cr_assert_str_eq(p.phase, "Pending");
	cr_assert(strstr(p.ctrs[0].message,
			 "container has runAsNonRoot and image will run as root (pod: \"pod-nonroot_default(nonroot)\", "
			 "container: main)"),
		  "%s", p.ctrs[0].message);
	cr_assert_eq(ks_kubelet_pod_stop(H.k, "nonroot", 0, NULL), 0);
	p = h_wait_phase("nonroot", "Failed", 20000);
	cr_assert_str_eq(p.ctrs[0].reason, "ContainerStatusUnknown");
}

Test(kubelet_pods, env_expansion_working_dir_and_hostname)
{
	h_start_sh("env", "[ \"$BAZ\" = bar-x ] && [ \"$(pwd)\" = /workspace/sub ] && [ \"$HOSTNAME\" = pod-env ] && "
			  "[ \"$(hostname)\" = pod-env ] && [ \"$POD\" = pod-env ] && [ \"$LIT\" = '$$(FOO)' ]",
		   "\"workingDir\":\"/workspace/sub\",\"env\":[{\"name\":\"FOO\",\"value\":\"bar\"},"
		   "{\"name\":\"BAZ\",\"value\":\"$(FOO)-x\"},{\"name\":\"LIT\",\"value\":\"$$(FOO)\"},"
		   "{\"name\":\"POD\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}}]");
	h_pod p = h_wait_phase("env", "Succeeded|Failed", 20000);
	cr_assert_str_eq(p.phase, "Succeeded", "exit %d", p.ctrs[0].exit_code);
}

Test(kubelet_pods, secret_env_is_create_container_config_error)
{
	h_start_sh("cfgerr", "true",
		   "\"env\":[{\"name\":\"S\",\"valueFrom\":{\"secretKeyRef\":{\"name\":\"s\",\"key\":\"k\"}}}]");
	h_pod p = h_wait_reason("cfgerr", "CreateContainerConfigError", 20000);
	cr_assert_eq(p.ctrs[0].state, KS_CTR_WAITING);
	cr_assert(h_has_event("cfgerr", "Warning", "Failed", "Error: "));
	ks_kubelet_pod_forget(H.k, "cfgerr");
}

Test(kubelet_pods, stop_sends_sigterm_then_sigkill_after_grace)
{
	/* a handler for SIGTERM: PID 1 gets it and exits 143 */
	h_start_sh("term", "trap 'exit 143' TERM; while :; do sleep 0.05; done", NULL);
	/* no handler: PID 1 ignores SIGTERM, as in a container; SIGKILL after 1 s */
	h_start_sh("kill", "exec sleep 60", NULL);
	h_wait_phase("term", "Running", 20000);
	h_wait_phase("kill", "Running", 20000);
	clock_sleep_ms(200);
	int64_t t0 = clock_mono_ms();
	cr_assert_eq(ks_kubelet_pod_stop(H.k, "term", 5, "DeadlineExceeded"), 0);
	cr_assert_eq(ks_kubelet_pod_stop(H.k, "kill", 1, NULL), 0);
	h_pod t = h_wait_phase("term", "Failed", 20000);
	cr_assert_eq(t.ctrs[0].exit_code, 143);
	cr_assert_str_eq(t.reason, "DeadlineExceeded");
	h_pod k = h_wait_phase("kill", "Failed", 20000);
	cr_assert_eq(k.ctrs[0].exit_code, 137);
	cr_assert_eq(k.ctrs[0].signal, 9);
	cr_assert_geq(clock_mono_ms() - t0, 900, "SIGKILL came before the grace period");
	cr_assert(h_has_event("kill", "Normal", "Killing", "Stopping container main"));
	cr_assert_eq(ks_kubelet_process_count(H.k), 0);
	cr_assert_eq(ks_kubelet_pod_stop(H.k, "unknown-uid", 0, NULL), ERR_NOTFOUND);
}

Test(kubelet_pods, image_pull_failure_backs_off_and_never_starts)
{
	h_start("pull", "{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"main\","
			"\"image\":\"registry.invalid/team/app:v1\",\"command\":[\"sh\",\"-c\",\"touch /started\"]}]}");
	h_pod p = h_wait_reason("pull", "ImagePullBackOff", 20000);
	cr_assert_str_eq(p.phase, "Pending");
	cr_assert_str_eq(p.ctrs[0].message, "Back-off pulling image \"registry.invalid/team/app:v1\"");
	cr_assert(h_has_event("pull", "Normal", "Pulling", "Pulling image \"registry.invalid/team/app:v1\""));
	cr_assert(h_has_event("pull", "Warning", "Failed",
			      "Failed to pull image \"registry.invalid/team/app:v1\": rpc error: code = NotFound desc = "
			      "failed to pull and unpack image \"registry.invalid/team/app:v1\""));
	cr_assert(h_has_event("pull", "Warning", "Failed", "Error: ErrImagePull"));
	cr_assert(h_has_event("pull", "Normal", "BackOff", "Back-off pulling image \"registry.invalid/team/app:v1\""));
	cr_assert(h_has_event("pull", "Warning", "Failed", "Error: ImagePullBackOff"));
	cr_assert(!h_has_event("pull", "Normal", "Started", NULL));
	cr_assert_eq(ks_kubelet_process_count(H.k), 0);
	ks_kubelet_pod_forget(H.k, "pull");
}

Test(kubelet_pods, on_failure_restarts_and_keeps_the_previous_log)
{
	h_start("again", "{\"restartPolicy\":\"OnFailure\",\"volumes\":[{\"name\":\"ws\",\"emptyDir\":{}}],"
			 "\"containers\":[{\"name\":\"main\",\"image\":\"busybox\",\"command\":[\"sh\",\"-c\","
			 "\"if [ -f /workspace/ran ]; then echo second; exit 0; fi; touch /workspace/ran; echo first; exit 1\"],"
			 "\"volumeMounts\":[{\"name\":\"ws\",\"mountPath\":\"/workspace\"}]}]}");
	h_pod p = h_wait_phase("again", "Succeeded|Failed", 30000);
	cr_assert_str_eq(p.phase, "Succeeded");
	cr_assert_eq(p.ctrs[0].restart_count, 1);
	/* imagePullPolicy defaults to Always for an untagged image */
	cr_assert(h_has_event("again", "Normal", "Pulled", "Successfully pulled image \"busybox\" in "));

	ks_log_params lp = { "again", NULL, 0, -1, -1, -1, 0, 1 };
	ks_log_reader *r;
	char b[256];
	cr_assert_eq(ks_kubelet_log_open(H.k, &r, &lp), 0, "%s", err_msg());
	long n = ks_log_read(r, b, sizeof b, 1000);
	cr_assert_eq(n, 6);
	cr_assert(memcmp(b, "first\n", 6) == 0);
	ks_log_close(r);
	lp.previous = 0;
	cr_assert_eq(ks_kubelet_log_open(H.k, &r, &lp), 0, "%s", err_msg());
	n = ks_log_read(r, b, sizeof b, 1000);
	cr_assert_eq(n, 7);
	cr_assert(memcmp(b, "second\n", 7) == 0);
	ks_log_close(r);
}

Test(kubelet_pods, invalid_and_duplicate_pods_are_refused)
{
	cJSON *o = cJSON_Parse("{\"metadata\":{\"name\":\"x\",\"uid\":\"u\"},\"spec\":{\"containers\":[]}}");
	cr_assert_eq(ks_kubelet_pod_start(H.k, o), ERR_INVALID);
	cJSON_Delete(o);
	o = cJSON_Parse("{\"metadata\":{\"name\":\"x\",\"uid\":\"u\"},\"spec\":{\"containers\":[{\"name\":\"c\","
			"\"image\":\"i\",\"command\":[\"true\"],\"volumeMounts\":[{\"name\":\"nope\",\"mountPath\":\"/w\"}]}]}}");
	cr_assert_eq(ks_kubelet_pod_start(H.k, o), ERR_INVALID);
	cr_assert(strstr(err_msg(), "nope"));
	cJSON_Delete(o);
	h_start_sh("dup", "sleep 5", NULL);
	o = cJSON_Parse("{\"metadata\":{\"name\":\"pod-dup\",\"uid\":\"dup\"},\"spec\":{\"containers\":[{\"name\":\"c\","
			"\"image\":\"i\",\"command\":[\"true\"]}]}}");
	cr_assert_eq(ks_kubelet_pod_start(H.k, o), ERR_CONFLICT);
	cJSON_Delete(o);
}

Test(kubelet_pods, free_kills_everything)
{
	h_start_sh("f1", "sleep 60 & sleep 60", NULL);
	h_start_sh("f2", "exec sleep 60", NULL);
	h_wait_phase("f1", "Running", 20000);
	h_wait_phase("f2", "Running", 20000);
	cr_assert_eq(ks_kubelet_process_count(H.k), 2);
	/* h_teardown frees the kubelet and checks that no child is left */
}

/* Not root: the kubelet isolates pods in a user namespace instead. Run in
 * a child process that drops to nobody; it exits 0 if the pod succeeded. */
static volatile int userns_phase; /* 1 Succeeded, 2 Failed */
static void userns_status(void *arg, const ks_pod_status *st)
{
	(void)arg;
	if (strcmp(st->phase, "Succeeded") == 0)
		userns_phase = 1;
	else if (strcmp(st->phase, "Failed") == 0)
		userns_phase = 2;
}

Test(kubelet_pods, without_root_pods_run_in_a_user_namespace)
{
	char dir[] = "/tmp/kubelet-userns-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	chmod(dir, 0777);
	pid_t pid = fork();
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(90);
		ks_kubelet *k;
		ks_kubelet_opts o = KS_KUBELET_OPTS_INIT;
		char *dd = str_printf("%s/data", dir);
		o.data_dir = dd;
		if (ks_kubelet_new(&k, &o, userns_status, NULL, NULL)) {
			fprintf(stderr, "no user namespaces here: %s\n", err_msg());
			_exit(77);
		}
		cJSON *p = cJSON_Parse("{\"metadata\":{\"name\":\"u\",\"uid\":\"u\"},\"spec\":{\"restartPolicy\":\"Never\","
				       "\"volumes\":[{\"name\":\"ws\",\"emptyDir\":{}}],\"containers\":[{\"name\":\"main\","
				       "\"image\":\"x\",\"command\":[\"sh\",\"-c\",\"cd /workspace && touch f && "
				       "if touch /usr/x 2>/dev/null; then exit 5; fi\"],"
				       "\"volumeMounts\":[{\"name\":\"ws\",\"mountPath\":\"/workspace\"}]}]}}");
		if (ks_kubelet_pod_start(k, p))
			_exit(91);
		for (int i = 0; i < 400 && !userns_phase; i++)
			clock_sleep_ms(50);
		ks_kubelet_free(k);
		_exit(userns_phase == 1 ? 0 : 92);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	nftw(dir, h_rm, 16, FTW_DEPTH | FTW_PHYS);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77)
		cr_skip_test("unprivileged user namespaces are not available here");
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
}

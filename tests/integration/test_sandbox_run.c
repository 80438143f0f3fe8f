/*
 * sandbox_run() against the real kubesim, as the ci-fixer-app
 * ServiceAccount bound by rbac/: a run of three commands end to end
 * (exact output, exit codes, container log, a patch git apply accepts),
 * a command timeout that kills the process in the pod, the run deadline,
 * cancellation, the pod deleted from outside mid-run, and the reaper.
 * After every run, no Job and no pod of ci-fixer's is left.
 */
#include <pthread.h>

#include "tests/integration/test_sandbox_env.h"

TestSuite(sandbox_run, .fini = sb_down, .timeout = 110);

Test(sandbox_run, three_commands_exact_output_log_and_patch)
{
	sandbox_request *r;
	sandbox_result *res = NULL;
	sb_record rec;
	sandbox_callbacks cb;

	sb_up(NULL);
	r = sb_request(3);
	r->repo.url = strdup(E.repo);
	sb_argv(r, 0, "cat", "a.txt", NULL);
	sb_shell(r, 1, "printf 'to stderr\\n' >&2; printf 'changed\\n' >> a.txt; "
		       "printf 'brand new\\n' > new.txt; rm src/lib.txt; printf 'two words' ");
	sb_argv(r, 2, "sh", "-c", "echo \"$1 $GREETING\"; exit 3", "sh", "arg with $(space)", NULL);
	r->commands[2].env = calloc(1, sizeof(sandbox_kv));
	r->commands[2].env_count = 1;
	r->commands[2].env[0].name = strdup("GREETING");
	r->commands[2].env[0].value = strdup("hi; there");
	cb = sb_callbacks(&rec);

	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "three-cmds", &cb, NULL), 0, "%s", err_msg());
	cr_assert_eq(res->phase, SANDBOX_FAILED, "phase %s: %s %s", sandbox_phase_name(res->phase),
		     res->reason, res->message);
	cr_assert_str_eq(res->reason, "CommandFailed");
	cr_assert(strstr(res->message, "status 3"), "%s", res->message);
	cr_assert_eq(res->command_count, 3);

	cr_assert_eq(res->commands[0].outcome, SANDBOX_OUTCOME_EXITED);
	cr_assert_eq(res->commands[0].exit_code, 0);
	cr_assert_str_eq(res->commands[0].out.data, "hello\n");
	cr_assert_str_eq(res->commands[0].err.data, "");
	cr_assert_eq(res->commands[0].out.bytes, 6);
	cr_assert_str_eq(res->commands[0].out.sha256,
			 "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");

	cr_assert_eq(res->commands[1].exit_code, 0);
	cr_assert_str_eq(res->commands[1].out.data, "two words");
	cr_assert_str_eq(res->commands[1].err.data, "to stderr\n");

	cr_assert_eq(res->commands[2].outcome, SANDBOX_OUTCOME_EXITED);
	cr_assert_eq(res->commands[2].exit_code, 3);
	cr_assert_str_eq(res->commands[2].out.data, "arg with $(space) hi; there\n");

	/* streamed as it arrived, in order, stdout and stderr apart */
	cr_assert_str_eq(buf_cstr(&rec.out[0]), "hello\ntwo wordsarg with $(space) hi; there\n");
	cr_assert_str_eq(buf_cstr(&rec.out[1]), "to stderr\n");
	cr_assert_eq(rec.started, 3);
	cr_assert_eq(rec.done, 3);
	cr_assert(strstr(buf_cstr(&rec.phases), "Preparing/creating;Preparing/waiting for pod;"
			 "Preparing/uploading;Running/running;"), "%s", buf_cstr(&rec.phases));
	cr_assert(strstr(buf_cstr(&rec.phases), "Collecting/collecting;Collecting/tearing down;"
			 "Failed/done;"), "%s", buf_cstr(&rec.phases));

	/* the container log: the keep-alive's line */
	cr_assert(strstr(res->logs, "ci-fixer sandbox: keep-alive for"), "log: [%s]", res->logs);

	/* the patch applies on the base commit and gives the pod's tree */
	char *base = sb_out("git -C %s rev-parse HEAD", E.repo);
	cr_assert_str_eq(res->commit, base);
	free(base);
	cr_assert(strstr(res->patch, "new file mode"), "%s", res->patch);
	cr_assert(strstr(res->patch, "deleted file mode"), "%s", res->patch);
	char pf[256];
	snprintf(pf, sizeof(pf), "%s/run.diff", E.dir);
	FILE *f = fopen(pf, "w");
	fwrite(res->patch, 1, res->patch_len, f);
	fclose(f);
	cr_assert_eq(sb_sh(SB_GIT " clone -q %s %s/check && cd %s/check && git apply --check %s && "
			   "git apply %s && test \"$(cat a.txt)\" = \"$(printf 'hello\\nchanged')\" && "
			   "test \"$(cat new.txt)\" = 'brand new' && test ! -e src/lib.txt",
			   E.repo, E.dir, E.dir, pf, pf), 0, "patch:\n%s", res->patch);

	cr_assert_str_eq(res->job.namespace_, SB_NS);
	cr_assert_str_eq(res->job.name, "cifix-three-cmds");
	cr_assert_gt(res->finished_at_ms, 0);
	sb_assert_no_leak();
	sandbox_result_free(res);
	sandbox_request_free(r);
	sb_record_free(&rec);
}

Test(sandbox_run, all_commands_succeed_without_repo)
{
	sandbox_request *r;
	sandbox_result *res = NULL;

	sb_up(NULL);
	r = sb_request(2);
	sb_shell(r, 0, "test -z \"$(ls -A)\" && pwd && printf 'x\\n' > made.txt");
	sb_shell(r, 1, "false");
	r->commands[1].continue_on_error = 1;
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "norepo", NULL, NULL), 0);
	cr_assert_eq(res->phase, SANDBOX_SUCCEEDED, "%s: %s", res->reason, res->message);
	cr_assert_str_eq(res->commands[0].out.data, "/workspace\n");
	cr_assert_eq(res->commands[1].exit_code, 1);
	cr_assert_null(res->commit);
	cr_assert(strstr(res->patch, "+++ b/made.txt"), "%s", res->patch);
	sb_assert_no_leak();
	sandbox_result_free(res);
	sandbox_request_free(r);
}

Test(sandbox_run, command_timeout_kills_the_process_in_the_pod)
{
	sandbox_request *r;
	sandbox_result *res = NULL;

	sb_up(NULL);
	r = sb_request(3);
	sb_shell(r, 0, "echo started; sleep 57; echo never");
	r->commands[0].timeout_seconds = 2;
	r->commands[0].continue_on_error = 1;
	/* is anything still running "sleep 57" in the pod? */
	sb_shell(r, 1, "n=0; for p in /proc/[0-9]*; do if tr '\\0' ' ' < $p/cmdline 2>/dev/null | "
		       "grep -q '^sleep 57'; then n=$((n+1)); fi; done; echo \"left=$n\"");
	sb_shell(r, 2, "sleep 58");
	r->commands[2].timeout_seconds = 1;
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "cmd-timeout", NULL, NULL), 0);
	cr_assert_eq(res->phase, SANDBOX_FAILED, "%s: %s", res->reason, res->message);
	cr_assert_str_eq(res->reason, "CommandTimeout");
	cr_assert_eq(res->commands[0].outcome, SANDBOX_OUTCOME_TIMEOUT);
	cr_assert_eq(res->commands[0].exit_code, -1);
	cr_assert_str_eq(res->commands[0].out.data, "started\n");
	cr_assert_str_eq(res->commands[1].out.data, "left=0\n", "the timed-out process survived: %s",
			 res->commands[1].out.data);
	cr_assert_eq(res->commands[2].outcome, SANDBOX_OUTCOME_TIMEOUT);
	sb_assert_no_leak();
	sandbox_result_free(res);
	sandbox_request_free(r);
}

Test(sandbox_run, run_deadline_fails_the_run_and_skips_the_rest)
{
	sandbox_request *r;
	sandbox_result *res = NULL;

	sb_up(NULL);
	r = sb_request(2);
	r->timeout_seconds = 8;
	sb_shell(r, 0, "sleep 59");
	sb_shell(r, 1, "echo never");
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "deadline", NULL, NULL), 0);
	cr_assert_eq(res->phase, SANDBOX_FAILED, "%s: %s", res->reason, res->message);
	cr_assert_str_eq(res->reason, "DeadlineExceeded");
	cr_assert_eq(res->commands[0].outcome, SANDBOX_OUTCOME_TIMEOUT);
	cr_assert_eq(res->commands[1].outcome, SANDBOX_OUTCOME_SKIPPED);
	sb_assert_no_leak();
	sandbox_result_free(res);
	sandbox_request_free(r);
}

static sandbox_cancel *cancel_token;

static void *cancel_later(void *arg)
{
	(void)arg;
	clock_sleep_ms(1500);
	sandbox_cancel_request(cancel_token, NULL);
	return NULL;
}

static pthread_t canceller;

static void start_canceller(size_t i)
{
	if (i == 0)
		pthread_create(&canceller, NULL, cancel_later, NULL);
}

Test(sandbox_run, cancellation_mid_command_tears_down)
{
	sandbox_request *r;
	sandbox_result *res = NULL;
	sb_record rec;
	sandbox_callbacks cb;

	sb_up(NULL);
	r = sb_request(2);
	sb_shell(r, 0, "echo go; sleep 56");
	sb_shell(r, 1, "echo never");
	cb = sb_callbacks(&rec);
	rec.on_start = start_canceller;
	cr_assert_eq(sandbox_cancel_new(&cancel_token), 0);
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "cancelled", &cb, cancel_token), 0);
	pthread_join(canceller, NULL);
	cr_assert_eq(res->phase, SANDBOX_CANCELLED, "%s: %s", res->reason, res->message);
	cr_assert_str_eq(res->reason, "Cancelled");
	cr_assert_eq(res->commands[0].outcome, SANDBOX_OUTCOME_LOST);
	cr_assert_str_eq(res->commands[0].out.data, "go\n");
	cr_assert_eq(res->commands[1].outcome, SANDBOX_OUTCOME_SKIPPED);
	cr_assert(strstr(buf_cstr(&rec.phases), "tearing down"), "%s", buf_cstr(&rec.phases));
	sb_assert_no_leak();
	sandbox_cancel_free(cancel_token);
	sandbox_result_free(res);
	sandbox_request_free(r);
	sb_record_free(&rec);
}

static void *delete_pod_later(void *arg)
{
	cJSON *list = NULL, *out = NULL;
	char path[512];

	(void)arg;
	clock_sleep_ms(1000);
	if (kube_pod_list(&list, E.admin, SB_NS, "ci-fixer.io/run-id=pod-deleted", NULL,
			  clock_mono_ms() + 5000) != 0)
		return NULL;
	const char *name = kube_obj_name(cJSON_GetArrayItem(cJSON_GetObjectItem(list, "items"), 0));
	if (name) {
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", SB_NS, name);
		kube_rest_json(&out, E.admin, "DELETE", path, NULL, clock_mono_ms() + 5000);
	}
	cJSON_Delete(out);
	cJSON_Delete(list);
	return NULL;
}

static pthread_t deleter;

static void start_deleter(size_t i)
{
	if (i == 0)
		pthread_create(&deleter, NULL, delete_pod_later, NULL);
}

Test(sandbox_run, pod_deleted_from_outside_is_an_error_never_success)
{
	sandbox_request *r;
	sandbox_result *res = NULL;
	sb_record rec;
	sandbox_callbacks cb;

	sb_up(NULL);
	r = sb_request(1);
	sb_shell(r, 0, "echo running; sleep 55; echo never");
	cb = sb_callbacks(&rec);
	rec.on_start = start_deleter;
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "pod-deleted", &cb, NULL), 0);
	pthread_join(deleter, NULL);
	cr_assert_eq(res->phase, SANDBOX_ERROR, "%s: %s", res->reason, res->message);
	cr_assert(strcmp(res->reason, "PodDeleted") == 0 || strcmp(res->reason, "StreamLost") == 0,
		  "%s: %s", res->reason, res->message);
	/* the runtime may end the stream (lost) or report the kill it did
	 * (exited, 128+signal): either way never a success */
	if (res->commands[0].outcome == SANDBOX_OUTCOME_EXITED)
		cr_assert_gt(res->commands[0].exit_code, 128, "%d", res->commands[0].exit_code);
	else
		cr_assert_eq(res->commands[0].outcome, SANDBOX_OUTCOME_LOST);
	cr_assert_str_eq(res->patch, "");
	sb_assert_no_leak();
	sandbox_result_free(res);
	sandbox_request_free(r);
	sb_record_free(&rec);
}

static int owns_keep(void *ctx, const char *run_id)
{
	(void)ctx;
	return strcmp(run_id, "keep") == 0;
}

Test(sandbox_run, reaper_deletes_only_unowned_jobs_of_this_installation)
{
	sandbox_request *r;
	cJSON *spec = NULL, *out = NULL;
	sandbox_config other;
	size_t deleted = 0;
	sandbox_job_ref *refs = NULL;
	size_t n = 0;
	const char *ids[] = { "keep", "orphan-1", "orphan-2" };

	sb_up(NULL);
	r = sb_request(1);
	sb_shell(r, 0, "true");
	for (size_t i = 0; i < 3; i++) {
		cr_assert_eq(sandbox_jobspec_build(&spec, &E.cfg, r, ids[i]), 0, "%s", err_msg());
		cr_assert_eq(kube_job_create(&out, E.app, SB_NS, spec, clock_mono_ms() + 10000), 0, "%s",
			     err_msg());
		cJSON_Delete(spec);
		cJSON_Delete(out);
	}
	/* another installation's Job is not ours to reap */
	other = E.cfg;
	other.owner = "someone-else";
	cr_assert_eq(sandbox_jobspec_build(&spec, &other, r, "theirs"), 0);
	cr_assert_eq(kube_job_create(&out, E.admin, SB_NS, spec, clock_mono_ms() + 10000), 0);
	cJSON_Delete(spec);
	cJSON_Delete(out);

	cr_assert_eq(sandbox_jobs_list(&refs, &n, E.app, &E.cfg), 0, "%s", err_msg());
	cr_assert_eq(n, 3);
	sandbox_job_refs_free(refs, n);
	cr_assert_eq(sandbox_reap(&deleted, E.app, &E.cfg, owns_keep, NULL), 0, "%s", err_msg());
	cr_assert_eq(deleted, 2);
	cr_assert_eq(sandbox_jobs_list(&refs, &n, E.app, &E.cfg), 0);
	size_t live = 0;
	for (size_t i = 0; i < n; i++)
		if (!refs[i].deleting) {
			cr_assert_str_eq(refs[i].run_id, "keep");
			live++;
		}
	cr_assert_eq(live, 1);
	sandbox_job_refs_free(refs, n);
	/* and the rest, as a runner shutting down would */
	cr_assert_eq(sandbox_job_delete(E.app, &E.cfg, "keep"), 0, "%s", err_msg());
	cr_assert_eq(sandbox_job_delete(E.app, &E.cfg, "keep"), 0, "deleting twice is fine");
	cr_assert_eq(sandbox_job_delete(E.admin, &other, "theirs"), 0);
	sb_assert_no_leak();
	sandbox_request_free(r);
}

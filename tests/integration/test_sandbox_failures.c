/*
 * sandbox_run() failure paths against the real kubesim: each gives the
 * right phase and a reason a person can act on, and leaks nothing.
 *   - an image that cannot be pulled (kubesim --image-fail) fails within
 *     the pull grace, quoting the kubelet's event;
 *   - a ResourceQuota that refuses the pod (the Job's FailedCreate event);
 *   - an exec stream cut mid-command (--faults exec-cut) is an Error with
 *     reason StreamLost, never a success;
 *   - API faults (503 with Retry-After on create and delete, cut watches)
 *     are absorbed and the run succeeds.
 */
#include "sandbox/command.h"
#include "tests/integration/test_sandbox_env.h"

TestSuite(sandbox_failures, .fini = sb_down, .timeout = 110);

Test(sandbox_failures, image_pull_failure_within_grace_quoting_the_event)
{
	const char *args[] = { "--image-fail", "registry.invalid/*", NULL };
	sandbox_request *r;
	sandbox_result *res = NULL;

	sb_up(args);
	E.cfg.image_pull_grace_seconds = 2;
	r = sb_request(1);
	r->image = strdup("registry.invalid/team/app:1.0");
	sb_shell(r, 0, "echo never");
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "bad-image", NULL, NULL), 0);
	cr_assert_eq(res->phase, SANDBOX_ERROR, "%s: %s", res->reason, res->message);
	cr_assert(strcmp(res->reason, "ErrImagePull") == 0 || strcmp(res->reason, "ImagePullBackOff") == 0,
		  "%s: %s", res->reason, res->message);
	cr_assert(strstr(res->message, "events of Pod"), "no event quoted: %s", res->message);
	/* well before the start timeout (a safety bound, not a speed test) */
	cr_assert_lt(res->timings.pod_ready_ms, (int64_t)E.cfg.start_timeout_seconds * 1000,
		     "waited the whole start timeout");
	cr_assert_eq(res->commands[0].outcome, SANDBOX_OUTCOME_SKIPPED);
	sb_assert_no_leak();
	sandbox_result_free(res);
	sandbox_request_free(r);
}

Test(sandbox_failures, quota_rejection_is_reported_from_the_jobs_event)
{
	sandbox_request *r;
	sandbox_result *res = NULL;
	cJSON *q = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ResourceQuota\",\"metadata\":"
			       "{\"name\":\"no-pods\"},\"spec\":{\"hard\":{\"pods\":\"0\"}}}");
	cJSON *out = NULL;

	sb_up(NULL);
	cr_assert_eq(kube_rest_json(&out, E.admin, "POST", "/api/v1/namespaces/" SB_NS "/resourcequotas",
				    q, clock_mono_ms() + 10000), 0, "%s", err_msg());
	cJSON_Delete(q);
	cJSON_Delete(out);
	r = sb_request(1);
	sb_shell(r, 0, "echo never");
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "over-quota", NULL, NULL), 0);
	cr_assert_eq(res->phase, SANDBOX_ERROR, "%s: %s", res->reason, res->message);
	cr_assert_str_eq(res->reason, "QuotaExceeded", "%s", res->message);
	cr_assert(strstr(res->message, "exceeded quota"), "%s", res->message);
	sb_assert_no_leak();
	sandbox_result_free(res);
	sandbox_request_free(r);
}

/* Every exec cut after 4 bytes: no reattach can bring a byte (a frame
 * header alone is longer), so after SANDBOX_REATTACH_IDLE_MAX attempts the
 * command is lost, never a success. (Reattaching that succeeds:
 * test_sandbox_durable.c.) */
Test(sandbox_failures, cut_exec_stream_is_stream_lost_never_success)
{
	const char *args[] = { "--faults", "exec /api/v1/namespaces/*/pods/*/exec:exec-cut=4", NULL };
	sandbox_request *r;
	sandbox_result *res = NULL;

	sb_up(args);
	r = sb_request(2);
	sb_shell(r, 0, "echo 0123456789; sleep 1; echo more; exit 0");
	sb_shell(r, 1, "echo never");
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "cut-stream", NULL, NULL), 0);
	cr_assert_eq(res->phase, SANDBOX_ERROR, "%s: %s", res->reason, res->message);
	cr_assert_str_eq(res->reason, "StreamLost", "%s", res->message);
	cr_assert_eq(res->commands[0].outcome, SANDBOX_OUTCOME_LOST);
	cr_assert_eq(res->commands[0].exit_code, -1);
	cr_assert_eq(res->commands[0].breaks, SANDBOX_REATTACH_IDLE_MAX);
	cr_assert_eq(res->commands[0].reattaches, SANDBOX_REATTACH_IDLE_MAX - 1);
	cr_assert(strstr(res->message, "gave up reattaching"), "%s", res->message);
	cr_assert_eq(res->commands[1].outcome, SANDBOX_OUTCOME_SKIPPED);
	sb_assert_no_leak();
	sandbox_result_free(res);
	sandbox_request_free(r);
}

Test(sandbox_failures, api_faults_are_absorbed)
{
	const char *args[] = {
		"--faults",
		"POST /apis/batch/v1/namespaces/*/jobs:status=503,retry=1@first=1;"
		"DELETE /apis/batch/v1/namespaces/*/jobs/*:status=429,retry=1@first=1;"
		"watch /api/v1/namespaces/*/pods:watch-cut=1@first=1;"
		/* the upload's exec upgrade refused 3 times (an API server
		 * restarting): retried, nothing ran yet */
		"exec */exec:status=503,retry=1@first=3",
		NULL
	};
	sandbox_request *r;
	sandbox_result *res = NULL;

	sb_up(args);
	r = sb_request(1);
	r->repo.url = strdup(E.repo);
	sb_argv(r, 0, "cat", "src/lib.txt", NULL);
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "faulty-api", NULL, NULL), 0);
	cr_assert_eq(res->phase, SANDBOX_SUCCEEDED, "%s: %s", res->reason, res->message);
	cr_assert_str_eq(res->commands[0].out.data, "one\ntwo\n");
	cr_assert_str_eq(res->patch, "");
	sb_assert_no_leak();
	sandbox_result_free(res);
	sandbox_request_free(r);
}

Test(sandbox_failures, invalid_request_creates_nothing)
{
	sandbox_request *r;
	sandbox_result *res = NULL;

	sb_up(NULL);
	r = sb_request(1);
	sb_shell(r, 0, "true");
	r->commands[0].workdir = strdup("../../etc");
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "bad-input", NULL, NULL), ERR_INVALID);
	cr_assert_eq(res->phase, SANDBOX_ERROR);
	cr_assert_str_eq(res->reason, "InvalidRequest");
	cr_assert(strstr(res->message, "commands[0].workdir"), "%s", res->message);
	cr_assert_eq(sb_count("jobs"), 0);
	sandbox_result_free(res);

	free(r->commands[0].workdir);
	r->commands[0].workdir = NULL;
	r->repo.url = strdup(E.repo);
	r->repo.ref = strdup("no-such-branch");
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "bad-ref", NULL, NULL), 0);
	cr_assert_eq(res->phase, SANDBOX_ERROR);
	cr_assert_str_eq(res->reason, "RefNotFound", "%s", res->message);
	cr_assert_eq(sb_count("jobs"), 0, "a Job was created for a request that cannot run");
	sandbox_result_free(res);
	sandbox_request_free(r);
}

/*
 * Creating the run's Job against the real kubesim: the Job POST is retried
 * when the API server failed in a way client-go does not retry for a POST
 * (500 without Retry-After, a dropped connection, no answer within the
 * attempt's deadline), a Job of this run that
 * already exists is adopted, and a Job of that name belonging to another
 * run is refused and left alone (sandbox/jobs.c sandbox_job_create).
 */
#include "sandbox/jobs.h"
#include "sandbox/jobspec.h"
#include "tests/integration/test_sandbox_env.h"

TestSuite(sandbox_create, .fini = sb_down, .timeout = 110);

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

/* Run one command in an empty workspace; the run must succeed. Returns
 * how many "creating" steps were reported (2 when a Job was adopted). */
static int run_ok(const char *run_id)
{
	sandbox_request *r = sb_request(1);
	sandbox_result *res = NULL;
	sb_record rec;
	sandbox_callbacks cb = sb_callbacks(&rec);
	int n;

	sb_argv(r, 0, "echo", "hello", NULL);
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, run_id, &cb, NULL), 0);
	cr_assert_eq(res->phase, SANDBOX_SUCCEEDED, "%s: %s", res->reason, res->message);
	cr_assert_str_eq(res->commands[0].out.data, "hello\n");
	n = count_of(rec.phases.data, "Preparing/creating;");
	sandbox_result_free(res);
	sandbox_request_free(r);
	sb_record_free(&rec);
	return n;
}

/* POST the Job that sandbox_run would create for spec_run_id, named
 * after name_run_id, as the admin. */
static void precreate(const char *spec_run_id, const char *name_run_id)
{
	sandbox_request *r = sb_request(1);
	cJSON *spec = NULL, *md;
	char name[64];

	sb_argv(r, 0, "echo", "hello", NULL);
	cr_assert_eq(sandbox_jobspec_build(&spec, &E.cfg, r, spec_run_id), 0, "%s", err_msg());
	cr_assert_eq(sandbox_job_name(name, name_run_id), 0);
	md = cJSON_GetObjectItem(spec, "metadata");
	cJSON_ReplaceItemInObject(md, "name", cJSON_CreateString(name));
	cr_assert_eq(kube_job_create(NULL, E.admin, SB_NS, spec, clock_mono_ms() + 10000), 0, "%s",
		     err_msg());
	cJSON_Delete(spec);
	sandbox_request_free(r);
}

Test(sandbox_create, post_answered_500_without_retry_after_is_retried)
{
	/* kubesim answers the fault before the request reaches the store,
	 * so the retry is what creates the Job: no adoption */
	const char *args[] = { "--faults", "POST /apis/batch/v1/namespaces/*/jobs:status=500@first=1",
			       NULL };

	sb_up(args);
	cr_assert_eq(run_ok("post-500"), 1, "the Job was adopted, not created by the retry");
	sb_assert_no_leak();
}

Test(sandbox_create, dropped_post_is_retried)
{
	const char *args[] = { "--faults", "POST /apis/batch/v1/namespaces/*/jobs:drop@first=2",
			       NULL };

	sb_up(args);
	run_ok("post-dropped");
	sb_assert_no_leak();
}

/* An overloaded API server that keeps a POST past the attempt's own
 * deadline: the outcome is unknown, so the next attempt finds out (the
 * delayed POST either created the Job first, and the retry adopts it
 * after a 409, or the retry creates it and the delayed one meets 409).
 * Before, one POST without an answer within 30 s ended the run
 * APIUnavailable (bench part 4: 116 of 1,000 runs). */
Test(sandbox_create, post_without_an_answer_in_time_is_retried)
{
	const char *args[] = { "--faults", "POST /apis/batch/v1/namespaces/*/jobs:delay=2300@first=1",
			       NULL };
	int creating;

	sb_up(args);
	/* the attempt's deadline is at most the client's request timeout */
	kube_client_set_timeouts(E.app, 0, 2000);
	creating = run_ok("post-slow");
	cr_assert(creating == 1 || creating == 2, "%d", creating);
	sb_assert_no_leak();
}

/* Slow is not failing: five POSTs in a row without an answer within the
 * attempt's deadline, and the sixth creates the Job (or adopts the one a
 * slow POST made). Before, the fourth slow attempt ended the run
 * APIUnavailable (bench part 4, 1,000 runs at once). */
Test(sandbox_create, a_slow_api_server_is_waited_for_past_four_attempts, .timeout = 120)
{
	const char *args[] = { "--faults", "POST /apis/batch/v1/namespaces/*/jobs:delay=2300@first=5",
			       NULL };
	int creating;

	sb_up(args);
	kube_client_set_timeouts(E.app, 0, 2000);
	creating = run_ok("post-slow-5");
	cr_assert(creating >= 1 && creating <= 6, "%d", creating);
	sb_assert_no_leak();
}

Test(sandbox_create, four_failed_posts_end_the_run_api_unavailable)
{
	const char *args[] = { "--faults", "POST /apis/batch/v1/namespaces/*/jobs:status=500@first=4",
			       NULL };
	sandbox_request *r;
	sandbox_result *res = NULL;

	sb_up(args);
	r = sb_request(1);
	sb_argv(r, 0, "echo", "hello", NULL);
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "post-500-thrice", NULL, NULL), 0);
	cr_assert_eq(res->phase, SANDBOX_ERROR, "%s: %s", res->reason, res->message);
	cr_assert_str_eq(res->reason, "APIUnavailable", "%s", res->message);
	cr_assert(strstr(res->message, "after 4 attempts"), "%s", res->message);
	sb_assert_no_leak();
	sandbox_result_free(res);
	sandbox_request_free(r);
}

/* kubesim's drop resets the connection before the store acts, so "created,
 * then the answer lost" is set up by creating the run's own Job first (as
 * the lost attempt, or a runner that restarted, would have). */
Test(sandbox_create, existing_job_of_this_run_is_adopted)
{
	sb_up(NULL);
	precreate("adopt-me", "adopt-me");
	cr_assert_eq(sb_count("jobs"), 1);
	cr_assert_eq(run_ok("adopt-me"), 2, "no adoption reported");
	sb_assert_no_leak();
}

Test(sandbox_create, foreign_job_with_our_name_is_refused_and_left_alone)
{
	sandbox_request *r;
	sandbox_result *res = NULL;
	cJSON *job = NULL;
	char name[64];
	const char *id;

	sb_up(NULL);
	precreate("someone-else", "victim");
	r = sb_request(1);
	sb_argv(r, 0, "echo", "hello", NULL);
	cr_assert_eq(sandbox_run(&res, E.app, &E.cfg, r, "victim", NULL, NULL), 0);
	cr_assert_eq(res->phase, SANDBOX_ERROR, "%s: %s", res->reason, res->message);
	cr_assert_str_eq(res->reason, "JobExists", "%s", res->message);
	cr_assert(strstr(res->message, "is not this run's"), "%s", res->message);
	cr_assert(strstr(res->message, "someone-else"), "%s", res->message);

	/* the other run's Job is still there, untouched */
	cr_assert_eq(sandbox_job_name(name, "victim"), 0);
	cr_assert_eq(kube_job_get(&job, E.admin, SB_NS, name, clock_mono_ms() + 10000), 0, "%s",
		     err_msg());
	cr_assert(!kube_obj_deleting(job), "teardown deleted another run's Job");
	id = kube_obj_label(job, SANDBOX_LABEL_RUN_ID);
	cr_assert(id && strcmp(id, "someone-else") == 0);
	cJSON_Delete(job);
	cr_assert_eq(sb_count("jobs"), 1);

	cr_assert_eq(kube_job_delete(E.admin, SB_NS, name, "Background", clock_mono_ms() + 10000), 0,
		     "%s", err_msg());
	sb_assert_no_leak();
	sandbox_result_free(res);
	sandbox_request_free(r);
}

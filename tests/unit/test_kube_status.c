/*
 * kube/status and kube/objects: Status parsing (JSON and plain text),
 * error mapping and messages; Pod and Job summaries.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "kube/objects.h"
#include "kube/status.h"
#include "util/err.h"

static kube_status from(long code, const char *body)
{
	kube_status st;
	kube_status_from_body(&st, code, body, body ? strlen(body) : 0);
	return st;
}

Test(kube_status, json_status_fields)
{
	kube_status st = from(409,
		"{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","
		"\"message\":\"jobs.batch \\\"j\\\" already exists\",\"reason\":\"AlreadyExists\","
		"\"details\":{\"name\":\"j\",\"group\":\"batch\",\"kind\":\"jobs\",\"retryAfterSeconds\":3},\"code\":409}");
	cr_assert_eq(st.is_status, 1);
	cr_assert_eq(st.code, 409);
	cr_assert_str_eq(st.reason, "AlreadyExists");
	cr_assert_str_eq(st.group, "batch");
	cr_assert_eq(st.retry_after_seconds, 3);
	cr_assert_eq(kube_status_err_code(&st), ERR_CONFLICT);
	cr_assert_eq(kube_status_err(&st, "POST /apis/batch/v1/namespaces/n/jobs"), ERR_CONFLICT);
	cr_assert_str_eq(err_msg(), "POST /apis/batch/v1/namespaces/n/jobs: jobs.batch \"j\" already exists "
				    "(AlreadyExists, HTTP 409)");
}

Test(kube_status, plain_text_and_empty_bodies)
{
	kube_status st = from(429, "Too many requests, please try again later.\n");
	cr_assert_eq(st.is_status, 0);
	cr_assert_str_eq(st.message, "Too many requests, please try again later.");
	cr_assert_str_eq(st.reason, "TooManyRequests");
	cr_assert_eq(kube_status_err_code(&st), ERR_AGAIN);

	st = from(503, NULL);
	cr_assert_str_eq(st.reason, "ServiceUnavailable");
	kube_status_err(&st, "GET /x");
	cr_assert(strstr(err_msg(), "the API server gave no message"), "%s", err_msg());
	cr_assert(strstr(err_msg(), "HTTP 503"), "%s", err_msg());

	st = from(502, "<html>\x01\x02" "bad gateway</html>");
	cr_assert_str_eq(st.message, "<html>  bad gateway</html>", "control characters replaced");
	cr_assert_eq(kube_status_err_code(&st), ERR_AGAIN);

	/* JSON but not a Status, with no code: the HTTP code is kept */
	st = from(404, "{\"foo\":1}");
	cr_assert_eq(st.code, 404);
	cr_assert_str_eq(st.reason, "NotFound");
	cr_assert_eq(kube_status_err_code(&st), ERR_NOTFOUND);
}

Test(kube_status, code_mapping)
{
	struct { long code; const char *reason; int want; } cases[] = {
		{ 400, "BadRequest", ERR_INVALID }, { 401, "Unauthorized", ERR_UNAUTHORIZED },
		{ 403, "Forbidden", ERR_FORBIDDEN }, { 404, "NotFound", ERR_NOTFOUND },
		{ 405, "MethodNotAllowed", ERR_INVALID }, { 409, "Conflict", ERR_CONFLICT },
		{ 410, "Expired", ERR_GONE }, { 410, "Gone", ERR_GONE }, { 413, "", ERR_TOOBIG },
		{ 422, "Invalid", ERR_INVALID }, { 429, "", ERR_AGAIN }, { 500, "InternalError", ERR_AGAIN },
		{ 504, "Timeout", ERR_AGAIN }, { 418, "", ERR_FAIL }, { 302, "", ERR_FAIL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kube_status st = { 0 };
		st.code = cases[i].code;
		strcpy(st.reason, cases[i].reason);
		cr_assert_eq(kube_status_err_code(&st), cases[i].want, "case %zu", i);
	}
}

Test(kube_status, long_fields_are_truncated_not_overflowed)
{
	static char body[20000];
	strcpy(body, "{\"kind\":\"Status\",\"message\":\"");
	size_t n = strlen(body);
	memset(body + n, 'm', 5000);
	strcpy(body + n + 5000, "\",\"details\":{\"causes\":[");
	for (int i = 0; i < 20; i++)
		strcat(body, i ? ",{\"field\":\"f\",\"message\":\"x\"}" : "{\"field\":\"f\",\"message\":\"x\"}");
	strcat(body, "]},\"code\":422}");
	kube_status st = from(422, body);
	cr_assert_eq(strlen(st.message), sizeof(st.message) - 1);
	cr_assert_eq(st.ncauses, KUBE_STATUS_CAUSES_MAX);
	kube_status_err(&st, "x");
	cr_assert_eq(err_last_code(), ERR_INVALID);
}

Test(kube_objects, pod_summary)
{
	cJSON *p = cJSON_Parse(
		"{\"metadata\":{\"name\":\"p\",\"uid\":\"u1\",\"labels\":{\"a\":\"b\"},\"resourceVersion\":\"7\","
		"\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"},"
		"\"status\":{\"phase\":\"Pending\",\"conditions\":[{\"type\":\"PodScheduled\",\"status\":\"False\","
		"\"reason\":\"Unschedulable\",\"message\":\"0/1 nodes are available\"}],"
		"\"containerStatuses\":[{\"name\":\"main\",\"ready\":false,\"restartCount\":2,"
		"\"state\":{\"waiting\":{\"reason\":\"ImagePullBackOff\",\"message\":\"Back-off pulling image\"}},"
		"\"lastState\":{\"terminated\":{\"exitCode\":137,\"reason\":\"OOMKilled\"}}},"
		"{\"name\":\"side\",\"ready\":true,\"state\":{\"terminated\":{\"exitCode\":0,\"signal\":9,\"reason\":\"Completed\"}}}]}}");
	kube_pod_summary s;
	cr_assert_eq(kube_pod_summary_parse(&s, p), 0, "%s", err_msg());
	cr_assert_str_eq(s.name, "p");
	cr_assert_str_eq(s.phase, "Pending");
	cr_assert_eq(s.unschedulable, 1);
	cr_assert_str_eq(s.sched_message, "0/1 nodes are available");
	cr_assert_eq(s.deleting, 1);
	cr_assert_eq(s.ncontainers, 2);
	cr_assert_eq(s.containers[0].state, KUBE_CONTAINER_WAITING);
	cr_assert_str_eq(s.containers[0].reason, "ImagePullBackOff");
	cr_assert_eq(s.containers[0].restart_count, 2);
	cr_assert_eq(s.containers[0].last_terminated, 1);
	cr_assert_eq(s.containers[0].last_exit_code, 137);
	cr_assert_str_eq(s.containers[0].last_reason, "OOMKilled");
	cr_assert_eq(s.containers[1].state, KUBE_CONTAINER_TERMINATED);
	cr_assert_eq(s.containers[1].signal, 9);
	cr_assert_str_eq(kube_obj_label(p, "a"), "b");
	cr_assert_str_eq(kube_obj_resource_version(p), "7");
	cr_assert_str_eq(kube_obj_uid(p), "u1");
	cJSON_Delete(p);

	p = cJSON_Parse("{\"status\":{\"containerStatuses\":[{\"restartCount\":\"x\"}]}}");
	cr_assert_eq(kube_pod_summary_parse(&s, p), ERR_INVALID);
	cJSON_Delete(p);
	p = cJSON_Parse("{\"status\":{\"containerStatuses\":[{\"state\":{\"terminated\":{\"exitCode\":1.5}}}]}}");
	cr_assert_eq(kube_pod_summary_parse(&s, p), ERR_INVALID);
	cJSON_Delete(p);
	p = cJSON_Parse("{\"status\":{\"phase\":\"Running\",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}");
	cr_assert_eq(kube_pod_summary_parse(&s, p), 0);
	cr_assert_eq(s.ready, 1);
	cJSON_Delete(p);
	cr_assert_eq(kube_pod_summary_parse(&s, NULL), ERR_INVALID);
}

Test(kube_objects, job_summary_terminal_conditions)
{
	cJSON *j = cJSON_Parse(
		"{\"metadata\":{\"name\":\"j\",\"uid\":\"u\"},\"spec\":{\"selector\":{\"matchLabels\":"
		"{\"batch.kubernetes.io/controller-uid\":\"cu-1\"}}},"
		"\"status\":{\"active\":0,\"failed\":1,\"conditions\":["
		"{\"type\":\"FailureTarget\",\"status\":\"True\",\"reason\":\"DeadlineExceeded\"},"
		"{\"type\":\"Failed\",\"status\":\"True\",\"reason\":\"DeadlineExceeded\",\"message\":\"Job was active longer than specified deadline\"}]}}");
	kube_job_summary s;
	cr_assert_eq(kube_job_summary_parse(&s, j), 0, "%s", err_msg());
	cr_assert_str_eq(s.controller_uid, "cu-1");
	cr_assert_eq(s.failed, 1);
	cr_assert_eq(s.failed_cond, 1);
	cr_assert_eq(s.complete, 0);
	cr_assert_str_eq(s.reason, "DeadlineExceeded");
	cJSON_Delete(j);

	j = cJSON_Parse("{\"status\":{\"conditions\":[{\"type\":\"FailureTarget\",\"status\":\"True\"},"
			"{\"type\":\"Complete\",\"status\":\"False\"}]}}");
	cr_assert_eq(kube_job_summary_parse(&s, j), 0);
	cr_assert_eq(s.failed_cond + s.complete, 0, "FailureTarget alone is not terminal");
	cJSON_Delete(j);
	j = cJSON_Parse("{\"spec\":{\"selector\":{\"matchLabels\":{\"controller-uid\":\"old\"}}},"
			"\"status\":{\"succeeded\":1,\"conditions\":[{\"type\":\"Complete\",\"status\":\"True\"}]}}");
	cr_assert_eq(kube_job_summary_parse(&s, j), 0);
	cr_assert_eq(s.complete, 1);
	cr_assert_str_eq(s.controller_uid, "old");
	cJSON_Delete(j);
	j = cJSON_Parse("{\"status\":{\"active\":-1}}");
	cr_assert_eq(kube_job_summary_parse(&s, j), ERR_INVALID);
	cJSON_Delete(j);
}

Test(kube_objects, time_parse_is_strict)
{
	int64_t ms = 0;
	cr_assert_eq(kube_time_parse(&ms, "2030-01-01T00:00:00Z"), 0);
	cr_assert_eq(ms, 1893456000000LL);
	cr_assert_eq(kube_time_parse(&ms, "2030-01-01T01:00:00.250+01:00"), 0);
	cr_assert_eq(ms, 1893456000250LL);
	const char *bad[] = { "31-1-1T0:00:1-0:0", "2030-01-01T00:00:00", "2030-01-01T00:00:00+1:00",
			      "2030-01-01 00:00:00Z", "2030-01-01T00:00:00.Z", "2030-01-01T00:00:00Zjunk",
			      "2030-1-01T00:00:00Z", "", "soon" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(kube_time_parse(&ms, bad[i]), ERR_INVALID, "%s", bad[i]);
	cr_assert_eq(kube_time_parse(&ms, NULL), ERR_INVALID);
}

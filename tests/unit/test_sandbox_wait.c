#include <criterion/criterion.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kube/objects.h"
#include "sandbox/wait.h"

static kube_pod_summary parse(const char *json)
{
	kube_pod_summary s;
	cJSON *o = cJSON_Parse(json);

	cr_assert_not_null(o, "bad test json");
	cr_assert_eq(kube_pod_summary_parse(&s, o), 0);
	cJSON_Delete(o);
	return s;
}

static sandbox_config cfg(void)
{
	sandbox_config c;

	sandbox_config_init(&c);
	c.image_pull_grace_seconds = 30;
	c.unschedulable_grace_seconds = 60;
	return c;
}

#define POD(phase, extra) \
	"{\"metadata\":{\"name\":\"cifix-a-x\",\"uid\":\"u1\"},\"status\":{\"phase\":\"" phase "\"" extra "}}"

Test(sandbox_wait, running_and_ready_is_ready)
{
	sandbox_wait_result r;
	sandbox_wait_clock clk = { 0 };
	sandbox_config c = cfg();
	kube_pod_summary s = parse(POD("Running", ",\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}],"
		"\"containerStatuses\":[{\"name\":\"sandbox\",\"ready\":true,\"state\":{\"running\":{}}}]"));

	memset(&r, 0, sizeof(r));
	cr_assert_eq(sandbox_pod_assess(&r, &clk, &s, &c, 1000, NULL), SANDBOX_POD_READY);
	cr_assert_str_eq(r.pod, "cifix-a-x");
}

Test(sandbox_wait, pending_container_creating_waits)
{
	sandbox_wait_result r;
	sandbox_wait_clock clk = { 0 };
	sandbox_config c = cfg();
	int64_t next = -1;
	kube_pod_summary s = parse(POD("Pending", ",\"containerStatuses\":[{\"name\":\"sandbox\",\"ready\":false,"
		"\"state\":{\"waiting\":{\"reason\":\"ContainerCreating\"}}}]"));

	cr_assert_eq(sandbox_pod_assess(&r, &clk, &s, &c, 1000, &next), SANDBOX_POD_WAIT);
	cr_assert_eq(next, 0);
}

Test(sandbox_wait, image_pull_failure_fails_after_grace_with_the_kubelet_message)
{
	sandbox_wait_result r;
	sandbox_wait_clock clk = { 0 };
	sandbox_config c = cfg();
	int64_t next = 0;
	kube_pod_summary s = parse(POD("Pending", ",\"containerStatuses\":[{\"name\":\"sandbox\",\"ready\":false,"
		"\"state\":{\"waiting\":{\"reason\":\"ErrImagePull\",\"message\":\"pull access denied for nope\"}}}]"));
	kube_pod_summary b = parse(POD("Pending", ",\"containerStatuses\":[{\"name\":\"sandbox\",\"ready\":false,"
		"\"state\":{\"waiting\":{\"reason\":\"ImagePullBackOff\",\"message\":\"Back-off pulling image nope\"}}}]"));

	memset(&r, 0, sizeof(r));
	cr_assert_eq(sandbox_pod_assess(&r, &clk, &s, &c, 10000, &next), SANDBOX_POD_WAIT);
	cr_assert_eq(next, 10000 + 30000);
	cr_assert_eq(sandbox_pod_assess(&r, &clk, &b, &c, 25000, &next), SANDBOX_POD_WAIT);
	cr_assert_eq(next, 40000, "the grace counts from the first failure");
	cr_assert_eq(sandbox_pod_assess(&r, &clk, &b, &c, 40000, &next), SANDBOX_POD_FAIL);
	cr_assert_str_eq(r.reason, "ImagePullBackOff");
	cr_assert(strstr(r.message, "Back-off pulling image nope"), "%s", r.message);
}

Test(sandbox_wait, pull_recovering_resets_the_clock)
{
	sandbox_wait_result r;
	sandbox_wait_clock clk = { 0 };
	sandbox_config c = cfg();
	kube_pod_summary bad = parse(POD("Pending", ",\"containerStatuses\":[{\"name\":\"sandbox\","
		"\"state\":{\"waiting\":{\"reason\":\"ErrImagePull\"}}}]"));
	kube_pod_summary ok = parse(POD("Pending", ",\"containerStatuses\":[{\"name\":\"sandbox\","
		"\"state\":{\"waiting\":{\"reason\":\"ContainerCreating\"}}}]"));

	sandbox_pod_assess(&r, &clk, &bad, &c, 0, NULL);
	sandbox_pod_assess(&r, &clk, &ok, &c, 20000, NULL);
	cr_assert_eq(clk.pull_bad_since_ms, 0);
	cr_assert_eq(sandbox_pod_assess(&r, &clk, &bad, &c, 45000, NULL), SANDBOX_POD_WAIT);
}

Test(sandbox_wait, config_error_fails_at_once)
{
	sandbox_wait_result r;
	sandbox_wait_clock clk = { 0 };
	sandbox_config c = cfg();
	kube_pod_summary s = parse(POD("Pending", ",\"containerStatuses\":[{\"name\":\"sandbox\","
		"\"state\":{\"waiting\":{\"reason\":\"CreateContainerConfigError\",\"message\":\"secret x not found\"}}}]"));

	cr_assert_eq(sandbox_pod_assess(&r, &clk, &s, &c, 0, NULL), SANDBOX_POD_FAIL);
	cr_assert_str_eq(r.reason, "CreateContainerConfigError");
	cr_assert(strstr(r.message, "secret x not found"));
}

Test(sandbox_wait, unschedulable_has_its_own_grace)
{
	sandbox_wait_result r;
	sandbox_wait_clock clk = { 0 };
	sandbox_config c = cfg();
	int64_t next;
	kube_pod_summary s = parse(POD("Pending", ",\"conditions\":[{\"type\":\"PodScheduled\",\"status\":\"False\","
		"\"reason\":\"Unschedulable\",\"message\":\"0/3 nodes are available: 3 Insufficient memory.\"}]"));

	cr_assert_eq(sandbox_pod_assess(&r, &clk, &s, &c, 5000, &next), SANDBOX_POD_WAIT);
	cr_assert_eq(next, 65000);
	cr_assert_eq(sandbox_pod_assess(&r, &clk, &s, &c, 65000, &next), SANDBOX_POD_FAIL);
	cr_assert_str_eq(r.reason, "Unschedulable");
	cr_assert(strstr(r.message, "Insufficient memory"), "%s", r.message);
}

Test(sandbox_wait, failed_or_finished_pod_fails)
{
	sandbox_wait_result r;
	sandbox_wait_clock clk = { 0 };
	sandbox_config c = cfg();
	kube_pod_summary f = parse(POD("Failed", ",\"reason\":\"DeadlineExceeded\",\"message\":\"Pod was active too long\""));
	kube_pod_summary t = parse(POD("Running", ",\"containerStatuses\":[{\"name\":\"sandbox\","
		"\"state\":{\"terminated\":{\"reason\":\"Error\",\"exitCode\":127}}}]"));
	kube_pod_summary d = parse("{\"metadata\":{\"name\":\"p\",\"deletionTimestamp\":\"2026-01-01T00:00:00Z\"},"
				   "\"status\":{\"phase\":\"Running\"}}");

	cr_assert_eq(sandbox_pod_assess(&r, &clk, &f, &c, 0, NULL), SANDBOX_POD_FAIL);
	cr_assert_str_eq(r.reason, "DeadlineExceeded");
	cr_assert_eq(sandbox_pod_assess(&r, &clk, &t, &c, 0, NULL), SANDBOX_POD_FAIL);
	cr_assert_str_eq(r.reason, "ContainerExited");
	cr_assert(strstr(r.message, "127"));
	cr_assert_eq(sandbox_pod_assess(&r, &clk, &d, &c, 0, NULL), SANDBOX_POD_FAIL);
	cr_assert_str_eq(r.reason, "PodDeleted");
}

Test(sandbox_wait, failed_create_reasons)
{
	cr_assert_str_eq(sandbox_failed_create_reason(
		"Error creating: pods \"x\" is forbidden: exceeded quota: q, requested: cpu=2"), "QuotaExceeded");
	cr_assert_str_eq(sandbox_failed_create_reason(
		"Error creating: pods \"x\" is forbidden: violates PodSecurity \"restricted:latest\": runAsNonRoot"),
		"PodSecurityRejected");
	cr_assert_str_eq(sandbox_failed_create_reason("something else"), "FailedCreate");
	cr_assert_str_eq(sandbox_failed_create_reason(NULL), "FailedCreate");
}

/* ---- sandbox_wait_pod against a real kubesim ---------------------------
 * The requests each wait makes are read from kubesim's /metrics
 * (apiserver_request_total by verb and resource), so the tests check the
 * request plan of issue 7: one pod WATCH, no LIST, on the common path. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/resources.h"
#include "kube/rest.h"
#include "sandbox/run.h"
#include "tests/lib/kubesim_harness.h"
#include "util/clock.h"
#include "util/err.h"

#define WNS "wait-ns"

static ks_harness *KS;
static kube_client *KC;

static void wait_down(void)
{
	kube_client_free(KC);
	KC = NULL;
	ks_harness_stop(KS);
	KS = NULL;
}

static void wait_up(const char *const *args)
{
	char path[1024];
	const char *root = getenv("CIFIXER_TEST_ROOT"), *build = getenv("BUILD");
	kube_config *kcfg = NULL;
	kube_config_opts o = KUBE_CONFIG_OPTS_INIT;
	cJSON *ns = NULL;

	snprintf(path, sizeof(path), "%s%s%s/kubesim", build && build[0] == '/' ? "" : root ? root : ".",
		 build && build[0] == '/' ? "" : "/", build ? build : "build");
	if (access(path, X_OK) != 0)
		cr_skip_test("kubesim has not been built (%s missing)", path);
	cr_assert_eq(ks_harness_start(&KS, args), 0, "kubesim: %s", ks_harness_error(KS));
	o.kubeconfig = ks_harness_kubeconfig(KS);
	o.in_cluster = KUBE_INCLUSTER_NEVER;
	cr_assert_eq(kube_config_load(&kcfg, &o), 0, "%s", err_msg());
	cr_assert_eq(kube_client_new(&KC, kcfg), 0, "%s", err_msg());
	kube_config_free(kcfg);
	cr_assert_eq(kube_namespace_create(&ns, KC, WNS, NULL, clock_mono_ms() + 10000), 0, "%s",
		     err_msg());
	cJSON_Delete(ns);
}

/* POST a one-pod Job (the shape sandbox/jobspec makes, minus the
 * hardening); the created object, as sandbox_run hands it to the wait. */
static cJSON *wait_job(const char *name, const char *image)
{
	char body[1024];
	cJSON *in, *out = NULL;

	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"name\":\"%s\"},"
		 "\"spec\":{\"backoffLimit\":0,\"template\":{\"spec\":{\"restartPolicy\":\"Never\","
		 "\"containers\":[{\"name\":\"sandbox\",\"image\":\"%s\",\"command\":[\"sleep\","
		 "\"300\"]}]}}}}", name, image);
	in = cJSON_Parse(body);
	cr_assert_not_null(in);
	cr_assert_eq(kube_rest_json(&out, KC, "POST", "/apis/batch/v1/namespaces/" WNS "/jobs", in,
				    clock_mono_ms() + 10000), 0, "%s", err_msg());
	cJSON_Delete(in);
	return out;
}

/* apiserver_request_total summed over codes for VERB on RESOURCE (no
 * subresource), from kubesim's /metrics. */
static long wait_requests(const char *verb, const char *resource)
{
	kube_request req = KUBE_REQUEST_INIT;
	kube_response resp = { 0 };
	char v[64], r[64];
	long total = 0;

	req.path = "/metrics";
	req.accept = "text/plain";
	cr_assert_eq(kube_rest_do(&resp, KC, &req), 0, "%s", err_msg());
	snprintf(v, sizeof(v), "verb=\"%s\"", verb);
	snprintf(r, sizeof(r), "resource=\"%s\"", resource);
	for (char *line = resp.body.data, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (strncmp(line, "apiserver_request_total{", 24) == 0 && strstr(line, v) &&
		    strstr(line, r) && strstr(line, "subresource=\"\"")) {
			const char *sp = strrchr(line, ' ');

			if (sp)
				total += strtol(sp + 1, NULL, 10);
		}
	}
	kube_response_free(&resp);
	return total;
}

static sandbox_config wait_cfg(void)
{
	sandbox_config c;

	sandbox_config_init(&c);
	c.namespace_ = WNS;
	c.start_timeout_seconds = 60;
	c.image_pull_grace_seconds = 1;
	return c;
}

Test(sandbox_wait, ready_pod_takes_one_watch_and_no_list, .fini = wait_down)
{
	sandbox_config c = wait_cfg();
	sandbox_wait_result r;
	cJSON *job;

	wait_up(NULL);
	job = wait_job("w-ready", "busybox");
	cr_assert_eq(sandbox_wait_pod(&r, KC, &c, job, NULL, 0), 0, "%s: %s", r.reason, r.message);
	cr_assert_neq(r.pod[0], '\0');
	cr_assert_eq(wait_requests("WATCH", "pods"), 1);
	cr_assert_eq(wait_requests("LIST", "pods"), 0);
	cr_assert_eq(wait_requests("LIST", "events"), 0);
	/* the pod existing ends the Events helper; whether it got to start
	 * its watch depends on how fast the Job controller was, so at most one */
	cr_assert_leq(wait_requests("WATCH", "events"), 1);
	cJSON_Delete(job);
}

/* The pod already exists when the wait starts: the watch's synthetic
 * ADDED brings it, no LIST. */
Test(sandbox_wait, existing_pod_arrives_as_added, .fini = wait_down)
{
	sandbox_config c = wait_cfg();
	sandbox_wait_result r;
	cJSON *job;

	wait_up(NULL);
	job = wait_job("w-late", "busybox");
	for (int i = 0; i < 200; i++) {
		cJSON *l = NULL;
		int n;

		cr_assert_eq(kube_rest_json(&l, KC, "GET", "/api/v1/namespaces/" WNS "/pods", NULL,
					    clock_mono_ms() + 10000), 0, "%s", err_msg());
		n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(l, "items"));
		cJSON_Delete(l);
		if (n > 0)
			break;
		clock_sleep_ms(50);
	}
	long lists = wait_requests("LIST", "pods");

	cr_assert_eq(sandbox_wait_pod(&r, KC, &c, job, NULL, 0), 0, "%s: %s", r.reason, r.message);
	cr_assert_eq(wait_requests("LIST", "pods"), lists, "the wait listed the pods");
	cr_assert_eq(wait_requests("WATCH", "pods"), 1);
	cr_assert_eq(wait_requests("WATCH", "events"), 0, "a pod existed: no Events watch");
	cJSON_Delete(job);
}

Test(sandbox_wait, quota_failed_create_comes_from_one_events_watch, .fini = wait_down)
{
	sandbox_config c = wait_cfg();
	sandbox_wait_result r;
	cJSON *q, *out = NULL, *job;

	wait_up(NULL);
	q = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ResourceQuota\",\"metadata\":"
			"{\"name\":\"no-pods\"},\"spec\":{\"hard\":{\"pods\":\"0\"}}}");
	cr_assert_eq(kube_rest_json(&out, KC, "POST", "/api/v1/namespaces/" WNS "/resourcequotas", q,
				    clock_mono_ms() + 10000), 0, "%s", err_msg());
	cJSON_Delete(q);
	cJSON_Delete(out);
	job = wait_job("w-quota", "busybox");
	cr_assert_eq(sandbox_wait_pod(&r, KC, &c, job, NULL, 0), ERR_FAIL);
	cr_assert_str_eq(r.reason, "QuotaExceeded", "%s", r.message);
	cr_assert(strstr(r.message, "exceeded quota"), "%s", r.message);
	cr_assert_eq(wait_requests("WATCH", "events"), 1);
	/* the one LIST of events is the failure message's quote, after the wait */
	cr_assert_eq(wait_requests("LIST", "events"), 1);
	cr_assert_eq(wait_requests("LIST", "pods"), 0);
	cJSON_Delete(job);
}

Test(sandbox_wait, image_pull_failure_after_grace_without_list, .fini = wait_down)
{
	const char *args[] = { "--image-fail", "nosuch/*", NULL };
	sandbox_config c = wait_cfg();
	sandbox_wait_result r;
	cJSON *job;

	wait_up(args);
	job = wait_job("w-pull", "nosuch/image:1");
	cr_assert_eq(sandbox_wait_pod(&r, KC, &c, job, NULL, 0), ERR_FAIL);
	cr_assert(strcmp(r.reason, "ErrImagePull") == 0 || strcmp(r.reason, "ImagePullBackOff") == 0,
		  "%s: %s", r.reason, r.message);
	cr_assert_eq(wait_requests("LIST", "pods"), 0);
	cJSON_Delete(job);
}

/* A cut stream resumes from the last resourceVersion: still no LIST. */
Test(sandbox_wait, cut_watch_resumes_without_list, .fini = wait_down)
{
	/* the 1 s pull keeps the pod Pending past the first event, so the
	 * wait must resume the cut watch to see it ready */
	const char *args[] = { "--faults", "watch /api/v1/namespaces/*/pods:watch-cut=1@first=1",
			       "--image-pull-ms", "1000", NULL };
	sandbox_config c = wait_cfg();
	sandbox_wait_result r;
	cJSON *job;

	wait_up(args);
	job = wait_job("w-cut", "busybox");
	cr_assert_eq(sandbox_wait_pod(&r, KC, &c, job, NULL, 0), 0, "%s: %s", r.reason, r.message);
	cr_assert_geq(wait_requests("WATCH", "pods"), 2);
	cr_assert_eq(wait_requests("LIST", "pods"), 0);
	cJSON_Delete(job);
}

/* 410 Expired: kube/watch starts over with a LIST (the reflector's rule)
 * and the wait still reaches the ready pod, from the LIST or a new WATCH. */
Test(sandbox_wait, expired_watch_starts_over, .fini = wait_down)
{
	const char *args[] = { "--faults", "watch /api/v1/namespaces/*/pods:watch-gone=0@first=1", NULL };
	sandbox_config c = wait_cfg();
	sandbox_wait_result r;
	cJSON *job;

	wait_up(args);
	job = wait_job("w-gone", "busybox");
	cr_assert_eq(sandbox_wait_pod(&r, KC, &c, job, NULL, 0), 0, "%s: %s", r.reason, r.message);
	/* the second WATCH happens only when the re-list does not already
	 * show the pod ready; on a fast machine it does (CI saw 1) */
	cr_assert_geq(wait_requests("WATCH", "pods"), 1);
	cr_assert_eq(wait_requests("LIST", "pods"), 1, "one re-list after the 410");
	cJSON_Delete(job);
}

static void *cancel_later(void *arg)
{
	clock_sleep_ms(500);
	sandbox_cancel_request(arg, "test");
	return NULL;
}

Test(sandbox_wait, cancel_ends_the_wait, .fini = wait_down)
{
	const char *args[] = { "--image-fail", "nosuch/*", NULL };
	sandbox_config c = wait_cfg();
	sandbox_wait_result r;
	sandbox_cancel *cancel = NULL;
	pthread_t th;
	cJSON *job;

	c.image_pull_grace_seconds = 300;
	wait_up(args);
	job = wait_job("w-cancel", "nosuch/image:1");
	cr_assert_eq(sandbox_cancel_new(&cancel), 0);
	cr_assert_eq(pthread_create(&th, NULL, cancel_later, cancel), 0);
	cr_assert_eq(sandbox_wait_pod(&r, KC, &c, job, cancel, 0), ERR_CANCELLED, "%s: %s", r.reason,
		     r.message);
	pthread_join(th, NULL);
	sandbox_cancel_free(cancel);
	cJSON_Delete(job);
}

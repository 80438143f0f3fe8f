/*
 * kube/resources: the exact requests the typed operations send (paths,
 * query parameters, bodies) and how they read the answers, against the
 * local fake server. kubesim covers the same operations end to end in
 * tests/integration/test_kube_sim.c.
 */
#include <criterion/criterion.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/resources.h"
#include "tests/unit/kube_fake_client.h"
#include "tests/unit/kube_fake_http.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

static fake_http *srv;
static kube_client *kc;

static void setup(void)
{
	srv = fake_http_start();
	kc = fake_kube_client(srv->url, NULL, "    token: t\n");
}

static void teardown(void)
{
	kube_client_free(kc);
	fake_http_stop(srv);
}

TestSuite(kube_resources, .init = setup, .fini = teardown, .timeout = 30);

#define LAST(i) fake_http_req(srv, (i))

Test(kube_resources, job_paths_and_propagation)
{
	cJSON *job = cJSON_Parse("{\"kind\":\"Job\",\"metadata\":{\"name\":\"j\"}}"), *o = NULL;
	fake_http_push(srv, (fake_resp){ .status = 201, .body = "{\"kind\":\"Job\",\"metadata\":{\"name\":\"j\",\"uid\":\"u\"}}" });
	cr_assert_eq(kube_job_create(&o, kc, "ns", job, 0), 0, "%s", err_msg());
	cr_assert_str_eq(LAST(0).method, "POST");
	cr_assert_str_eq(LAST(0).path, "/apis/batch/v1/namespaces/ns/jobs");
	cr_assert_str_eq(LAST(0).body, "{\"kind\":\"Job\",\"metadata\":{\"name\":\"j\"}}");
	cJSON_Delete(o);
	cJSON_Delete(job);
	cr_assert_eq(kube_job_get(&o, kc, "ns", "j", 0), 0);
	cJSON_Delete(o);
	cr_assert_str_eq(LAST(1).path, "/apis/batch/v1/namespaces/ns/jobs/j");
	cr_assert_eq(kube_job_list(&o, kc, "ns", "app=x,ci-fixer.io/run-id in (a,b)", 0), 0);
	cJSON_Delete(o);
	cr_assert_str_eq(LAST(2).path,
			 "/apis/batch/v1/namespaces/ns/jobs?labelSelector=app%3Dx%2Cci-fixer.io%2Frun-id%20in%20%28a%2Cb%29");
	cr_assert_eq(kube_job_delete(kc, "ns", "j", NULL, 0), 0);
	cr_assert_str_eq(LAST(3).method, "DELETE");
	cr_assert_str_eq(LAST(3).path, "/apis/batch/v1/namespaces/ns/jobs/j?propagationPolicy=Background",
			 "never without a policy: batch/v1 would orphan the pods");
	cr_assert_eq(kube_job_delete(kc, "ns", "j", "Foreground", 0), 0);
	cr_assert_str_eq(LAST(4).path, "/apis/batch/v1/namespaces/ns/jobs/j?propagationPolicy=Foreground");
	cr_assert_eq(kube_job_delete(kc, "ns", "j", "Whatever", 0), ERR_INVALID);
	cr_assert_eq(fake_http_requests(srv), 5, "an invalid policy is refused before sending");
}

Test(kube_resources, names_that_cannot_be_path_segments_are_refused)
{
	cJSON *o = NULL;
	cr_assert_eq(kube_job_get(&o, kc, "ns", "../secrets", 0), ERR_INVALID);
	cr_assert_eq(kube_job_get(&o, kc, "ns", "..", 0), ERR_INVALID);
	cr_assert_eq(kube_pod_get(&o, kc, "n/s", "p", 0), ERR_INVALID);
	cr_assert_eq(kube_pod_get(&o, kc, "ns", "a%2f", 0), ERR_INVALID);
	cr_assert_eq(kube_pod_get(&o, kc, "ns", "a b", 0), ERR_INVALID);
	cr_assert_eq(kube_pod_get(&o, kc, "ns", "", 0), ERR_INVALID);
	cr_assert_eq(kube_namespace_get(&o, kc, "a?b", 0), ERR_INVALID);
	cr_assert_eq(fake_http_requests(srv), 0);
}

Test(kube_resources, pods_and_events_selectors)
{
	cJSON *o = NULL;
	cr_assert_eq(kube_pod_list(&o, kc, "ns", "batch.kubernetes.io/controller-uid=u1", "status.phase=Running", 0), 0);
	cJSON_Delete(o);
	cr_assert_str_eq(LAST(0).path, "/api/v1/namespaces/ns/pods?labelSelector=batch.kubernetes.io%2Fcontroller-uid%3Du1"
				       "&fieldSelector=status.phase%3DRunning");
	cr_assert_eq(kube_event_list_for(&o, kc, "ns", "Pod", "p1", "uid-1", 0), 0);
	cJSON_Delete(o);
	cr_assert_str_eq(LAST(1).path, "/api/v1/namespaces/ns/events?fieldSelector=involvedObject.kind%3DPod%2C"
				       "involvedObject.name%3Dp1%2CinvolvedObject.uid%3Duid-1");
	cr_assert_eq(kube_event_list_for(&o, kc, "ns", NULL, "p1", NULL, 0), 0);
	cJSON_Delete(o);
	cr_assert_str_eq(LAST(2).path, "/api/v1/namespaces/ns/events?fieldSelector=involvedObject.name%3Dp1");
}

static int stop_at_added(void *ud, const kube_watch_event *ev)
{
	(void)ud;
	return ev->type == KUBE_WATCH_ADDED;
}

Test(kube_resources, pod_watch_path)
{
	fake_http_push(srv, (fake_resp){ .status = 200, .chunks = {
		"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"p\",\"resourceVersion\":\"3\"}}}\n" } });
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	o.resource_version = "2";
	o.field_selector = "metadata.name=p";
	cr_assert_eq(kube_pod_watch(kc, "ns", "app=x", &o, stop_at_added, NULL), 0, "%s", err_msg());
	cr_assert_str_eq(LAST(0).path, "/api/v1/namespaces/ns/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=300"
				       "&resourceVersion=2&labelSelector=app%3Dx&fieldSelector=metadata.name%3Dp");
}

Test(kube_resources, log_query_parameters)
{
	fake_http_push(srv, (fake_resp){ .status = 200, .headers = "Content-Type: text/plain\r\n", .body = "x\ny\n" });
	buf b = BUF_INIT(1024);
	kube_log_opts lo = KUBE_LOG_OPTS_INIT;
	lo.container = "main";
	lo.tail_lines = 200;
	lo.limit_bytes = 65536;
	lo.timestamps = 1;
	cr_assert_eq(kube_pod_logs_buf(&b, kc, "ns", "p", &lo), 0, "%s", err_msg());
	cr_assert_str_eq(buf_cstr(&b), "x\ny\n");
	cr_assert_str_eq(LAST(0).path, "/api/v1/namespaces/ns/pods/p/log?container=main&timestamps=true&tailLines=200"
				       "&limitBytes=65536");
	buf_reset(&b);
	kube_log_opts def = KUBE_LOG_OPTS_INIT;
	cr_assert_eq(kube_pod_logs_buf(&b, kc, "ns", "p", &def), 0);
	cr_assert_str_eq(LAST(1).path, "/api/v1/namespaces/ns/pods/p/log", "false booleans are never sent");
	/* a log larger than the buffer's cap */
	fake_http_push(srv, (fake_resp){ .status = 200, .body = "0123456789" });
	buf small = BUF_INIT(4);
	cr_assert_eq(kube_pod_logs_buf(&small, kc, "ns", "p", NULL), ERR_TOOBIG);
	buf_free(&small);
	buf_free(&b);
}

Test(kube_resources, access_review_body_and_answer)
{
	fake_http_push(srv, (fake_resp){ .status = 201, .body =
		"{\"kind\":\"SelfSubjectAccessReview\",\"status\":{\"allowed\":true,\"reason\":\"RBAC: allowed by RoleBinding\"}}" });
	kube_access a = { .ns = "ci", .verb = "create", .group = "", .resource = "pods", .subresource = "exec", .name = "p" };
	int allowed = 0;
	char *reason = NULL;
	cr_assert_eq(kube_access_review(&allowed, &reason, kc, &a, 0), 0, "%s", err_msg());
	cr_assert_eq(allowed, 1);
	cr_assert_str_eq(reason, "RBAC: allowed by RoleBinding");
	free(reason);
	cr_assert_str_eq(LAST(0).path, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews");
	cJSON *body = cJSON_Parse(LAST(0).body);
	cJSON *ra = cJSON_GetObjectItem(cJSON_GetObjectItem(body, "spec"), "resourceAttributes");
	cr_assert_str_eq(cJSON_GetObjectItem(body, "kind")->valuestring, "SelfSubjectAccessReview");
	cr_assert_str_eq(cJSON_GetObjectItem(ra, "namespace")->valuestring, "ci");
	cr_assert_str_eq(cJSON_GetObjectItem(ra, "verb")->valuestring, "create");
	cr_assert_str_eq(cJSON_GetObjectItem(ra, "group")->valuestring, "", "core group is \"\"");
	cr_assert_str_eq(cJSON_GetObjectItem(ra, "subresource")->valuestring, "exec");
	cr_assert_str_eq(cJSON_GetObjectItem(ra, "name")->valuestring, "p");
	cJSON_Delete(body);

	/* denied, and a non-resource check */
	fake_http_push(srv, (fake_resp){ .status = 201, .body =
		"{\"status\":{\"allowed\":false,\"denied\":true,\"evaluationError\":\"no RBAC policy matched\"}}" });
	kube_access nr = { .verb = "get", .path = "/logs/" };
	cr_assert_eq(kube_access_review(&allowed, &reason, kc, &nr, 0), 0);
	cr_assert_eq(allowed, 0);
	cr_assert_str_eq(reason, "no RBAC policy matched");
	free(reason);
	body = cJSON_Parse(LAST(1).body);
	cJSON *na = cJSON_GetObjectItem(cJSON_GetObjectItem(body, "spec"), "nonResourceAttributes");
	cr_assert_str_eq(cJSON_GetObjectItem(na, "path")->valuestring, "/logs/");
	cJSON_Delete(body);

	fake_http_push(srv, (fake_resp){ .status = 201, .body =
		"{\"status\":{\"resourceRules\":[{\"verbs\":[\"get\"],\"apiGroups\":[\"\"],\"resources\":[\"pods\"]}],"
		"\"nonResourceRules\":[],\"incomplete\":false}}" });
	cJSON *rules = NULL;
	cr_assert_eq(kube_rules_review(&rules, kc, "ci", 0), 0, "%s", err_msg());
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(rules, "resourceRules")), 1);
	cJSON_Delete(rules);
	body = cJSON_Parse(LAST(2).body);
	cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "spec"), "namespace")->valuestring, "ci");
	cJSON_Delete(body);
}

Test(kube_resources, token_request)
{
	fake_http_push(srv, (fake_resp){ .status = 201, .body =
		"{\"kind\":\"TokenRequest\",\"status\":{\"token\":\"eyJ.x.y\",\"expirationTimestamp\":\"2030-01-01T00:00:00Z\"}}" });
	char *tok = NULL;
	int64_t exp = 0;
	const char *aud[] = { "https://kubernetes.default.svc", NULL };
	cr_assert_eq(kube_token_request(&tok, &exp, kc, "ci", "runner", aud, 600, 0), 0, "%s", err_msg());
	cr_assert_str_eq(tok, "eyJ.x.y");
	cr_assert_eq(exp, 1893456000000LL);
	free(tok);
	cr_assert_str_eq(LAST(0).path, "/api/v1/namespaces/ci/serviceaccounts/runner/token");
	cJSON *body = cJSON_Parse(LAST(0).body);
	cJSON *spec = cJSON_GetObjectItem(body, "spec");
	cr_assert_eq(cJSON_GetObjectItem(spec, "expirationSeconds")->valueint, 600);
	cr_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(spec, "audiences"), 0)->valuestring,
			 "https://kubernetes.default.svc");
	cJSON_Delete(body);
	fake_http_push(srv, (fake_resp){ .status = 201, .body = "{\"status\":{}}" });
	cr_assert_eq(kube_token_request(&tok, NULL, kc, "ci", "runner", NULL, 0, 0), ERR_INVALID);
	cr_assert_null(tok);
}

Test(kube_resources, namespace_create_body)
{
	cJSON *labels = cJSON_Parse("{\"pod-security.kubernetes.io/enforce\":\"restricted\"}"), *o = NULL;
	fake_http_push(srv, (fake_resp){ .status = 201, .body = "{\"metadata\":{\"name\":\"ci\"}}" });
	cr_assert_eq(kube_namespace_create(&o, kc, "ci", labels, 0), 0, "%s", err_msg());
	cr_assert_str_eq(LAST(0).path, "/api/v1/namespaces");
	cJSON *body = cJSON_Parse(LAST(0).body);
	cJSON *md = cJSON_GetObjectItem(body, "metadata");
	cr_assert_str_eq(cJSON_GetObjectItem(md, "name")->valuestring, "ci");
	cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(md, "labels"), "pod-security.kubernetes.io/enforce")->valuestring,
			 "restricted");
	cJSON_Delete(body);
	cJSON_Delete(o);
	cJSON_Delete(labels);
}

/*
 * kube against the real kubesim binary over HTTPS: Jobs and pods (CRUD,
 * list and watch by label), events by involvedObject, pods/log, access
 * reviews, TokenRequest, namespaces, faults (429/503 with Retry-After,
 * 500s, dropped connections, watch cuts and 410s), an exec-plugin
 * kubeconfig, and in-cluster mode across a token rotation with the old
 * token revoked.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/auth.h"
#include "kube/client.h"
#include "kube/client_priv.h"
#include "kube/config.h"
#include "kube/objects.h"
#include "kube/resources.h"
#include "kube/rest.h"
#include "kube/watch.h"
#include "tests/integration/kube_sim_launch.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

static ksim sim;
static kube_client *kc;
static kube_config *kcfg;

static void start_with_args(const char *faults, const char *const *extra)
{
	int rc = ksim_start(&sim, faults, extra);
	if (rc == -1)
		cr_skip_test("kubesim has not been built (%s/kubesim missing)",
			     getenv("BUILD") ? getenv("BUILD") : "build");
	cr_assert_eq(rc, 0, "kubesim did not start");
	kube_config_opts o = KUBE_CONFIG_OPTS_INIT;
	o.kubeconfig = sim.kubeconfig;
	cr_assert_eq(kube_config_load(&kcfg, &o), 0, "%s", err_msg());
	cr_assert(str_has_prefix(kcfg->server, "https://"), "kubesim serves HTTPS: %s", kcfg->server);
	cr_assert_eq(kube_client_new(&kc, kcfg), 0, "%s", err_msg());
}

static void start_with(const char *faults) { start_with_args(faults, NULL); }
static void start_plain(void) { start_with(NULL); }

static void stop(void)
{
	kube_client_free(kc);
	kube_config_free(kcfg);
	kc = NULL;
	kcfg = NULL;
	ksim_stop(&sim);
}

static int64_t in_ms(int ms) { return clock_mono_ms() + ms; }

static cJSON *job_manifest(const char *name, const char *label, const char *script)
{
	cJSON *j = cJSON_Parse(
		"{\"apiVersion\":\"batch/v1\",\"kind\":\"Job\",\"metadata\":{\"labels\":{}},"
		"\"spec\":{\"backoffLimit\":0,\"template\":{\"metadata\":{\"labels\":{}},"
		"\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"main\","
		"\"image\":\"busybox:1.36\",\"command\":[\"sh\",\"-c\"]}]}}}}");
	cJSON *md = cJSON_GetObjectItem(j, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(cJSON_GetObjectItem(md, "labels"), "kube-test", label);
	cJSON *tmpl = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "spec"), "template");
	cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(tmpl, "metadata"), "labels"),
				"kube-test", label);
	cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(tmpl, "spec"), "containers"), 0);
	cJSON_AddItemToArray(cJSON_GetObjectItem(c0, "command"), cJSON_CreateString(script));
	return j;
}

/* ---- waiting with watches --------------------------------------------- */

struct job_wait {
	const char *name;
	kube_job_summary s;
	int done;
};

static int job_event(void *ud, const kube_watch_event *ev)
{
	struct job_wait *w = ud;
	const cJSON *objs[256];
	int n = 0;
	if (ev->type == KUBE_WATCH_SYNC) {
		const cJSON *items = cJSON_GetObjectItem(ev->object, "items");
		for (const cJSON *it = items ? items->child : NULL; it && n < 256; it = it->next)
			objs[n++] = it;
	} else if (ev->type == KUBE_WATCH_ADDED || ev->type == KUBE_WATCH_MODIFIED) {
		objs[n++] = ev->object;
	}
	for (int i = 0; i < n; i++) {
		if (!str_eq(kube_obj_name(objs[i]), w->name))
			continue;
		cr_assert_eq(kube_job_summary_parse(&w->s, objs[i]), 0, "%s", err_msg());
		if (w->s.complete || w->s.failed_cond) {
			w->done = 1;
			return 1;
		}
	}
	return 0;
}

static kube_job_summary wait_job(const char *ns, const char *name, const char *label)
{
	struct job_wait w = { .name = name };
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	char sel[128];
	snprintf(sel, sizeof(sel), "kube-test=%s", label);
	o.deadline_ms = in_ms(60000);
	int rc = kube_job_watch(kc, ns, sel, &o, job_event, &w);
	if (rc != 0) {
		/* say what the Job looked like when the wait gave up */
		char why[1024];
		snprintf(why, sizeof(why), "%s", err_msg());
		cJSON *j = NULL;
		kube_job_get(&j, kc, ns, name, 0);
		char *st = j ? cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "status")) : NULL;
		cr_assert_fail("%s; the Job's status: %s", why, st ? st : "?");
	}
	cr_assert(w.done);
	return w.s;
}

/* ---- Jobs, pods, events, logs ----------------------------------------- */

TestSuite(kube_sim, .init = start_plain, .fini = stop, .timeout = 120);

Test(kube_sim, https_connections_are_reused)
{
	uint64_t before = kube_client_connections_opened(kc);
	for (int i = 0; i < 20; i++) {
		cJSON *o = NULL;
		cr_assert_eq(kube_namespace_get(&o, kc, "default", 0), 0, "%s", err_msg());
		cJSON_Delete(o);
	}
	cr_assert_leq(kube_client_connections_opened(kc) - before, 1,
		      "20 HTTPS requests, %llu new connections",
		      (unsigned long long)(kube_client_connections_opened(kc) - before));
}

/* Many long watches hold a busy connection each; a short request must still
 * find an idle connection to reuse, not open a new one each time (libcurl
 * counts busy connections against CURLOPT_MAXCONNECTS). */
#define IDLE_WATCHES 40
static atomic_int idle_synced, idle_seen;
static kube_cancel idle_cancel;

static int idle_watch_event(void *ud, const kube_watch_event *ev)
{
	int *seen = ud;
	if (ev->type == KUBE_WATCH_SYNC)
		atomic_fetch_add(&idle_synced, 1);
	if (ev->type == KUBE_WATCH_ADDED && !*seen) {
		*seen = 1;
		atomic_fetch_add(&idle_seen, 1);
	}
	return 0;
}

static void *idle_watch(void *arg)
{
	int seen = 0;
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	o.path = "/api/v1/namespaces/kt-busy/configmaps";
	o.deadline_ms = in_ms(60000);
	o.cancel = &idle_cancel;
	(void)arg;
	int rc = kube_watch_run(kc, &o, idle_watch_event, &seen);
	return rc == ERR_CANCELLED ? NULL : (void *)1;
}

Test(kube_sim, connections_are_reused_beside_many_busy_watches)
{
	cJSON *ns = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"kt-busy\"}}");
	cr_assert_eq(kube_rest_json(NULL, kc, "POST", "/api/v1/namespaces", ns, 0), 0, "%s", err_msg());
	cJSON_Delete(ns);
	kube_cancel_init(&idle_cancel);
	atomic_store(&idle_seen, 0);
	atomic_store(&idle_synced, 0);
	pthread_t t[IDLE_WATCHES];
	for (int i = 0; i < IDLE_WATCHES; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, idle_watch, NULL), 0);
	/* every watch listed the (empty) namespace: the ConfigMap made now
	 * comes to each as an ADDED event on its watch stream */
	int64_t until = in_ms(30000);
	while (atomic_load(&idle_synced) < IDLE_WATCHES && clock_mono_ms() < until)
		clock_sleep_ms(20);
	cJSON *cm = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"one\"}}");
	cr_assert_eq(kube_rest_json(NULL, kc, "POST", "/api/v1/namespaces/kt-busy/configmaps", cm, 0), 0, "%s",
		     err_msg());
	cJSON_Delete(cm);
	/* every watch saw the ConfigMap: its stream is open, its connection busy */
	while (atomic_load(&idle_seen) < IDLE_WATCHES && clock_mono_ms() < until)
		clock_sleep_ms(20);
	int seen = atomic_load(&idle_seen);
	uint64_t before = kube_client_connections_opened(kc);
	int failed = 0;
	for (int i = 0; i < 20 && seen == IDLE_WATCHES; i++) {
		cJSON *o = NULL;
		failed += kube_namespace_get(&o, kc, "default", 0) != 0;
		cJSON_Delete(o);
	}
	uint64_t opened = kube_client_connections_opened(kc) - before;
	kube_cancel_request(&idle_cancel);
	int bad = 0;
	for (int i = 0; i < IDLE_WATCHES; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad += r != NULL;
	}
	cr_assert_eq(seen, IDLE_WATCHES, "watches with the event: %d", seen);
	cr_assert_eq(failed, 0);
	cr_assert_eq(bad, 0, "%d watches did not end cancelled", bad);
	cr_assert_leq(opened, 1, "20 requests beside %d busy watches opened %llu connections", IDLE_WATCHES,
		      (unsigned long long)opened);
}

static void *hammer(void *arg)
{
	(void)arg;
	for (int i = 0; i < 25; i++) {
		cJSON *o = NULL;
		if (kube_namespace_get(&o, kc, "default", 0) != 0)
			return (void *)1;
		cJSON_Delete(o);
	}
	return NULL;
}

Test(kube_sim, one_client_eight_threads_over_tls)
{
	pthread_t t[8];
	uint64_t before = kube_client_connections_opened(kc);
	for (int i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, hammer, NULL);
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_assert_null(r, "every request succeeded");
	}
	cr_assert_leq(kube_client_connections_opened(kc) - before, 8, "connections shared across threads: %llu",
		      (unsigned long long)(kube_client_connections_opened(kc) - before));
	kube_request_count cnt[8];
	size_t n = kube_client_request_counts(kc, cnt, 8);
	uint64_t ok = 0;
	for (size_t i = 0; i < n && i < 8; i++)
		if (!strcmp(cnt[i].verb, "GET") && cnt[i].code == 200)
			ok = cnt[i].count;
	cr_assert_geq(ok, 200);
}

Test(kube_sim, namespaces_get_and_create)
{
	cJSON *o = NULL;
	cr_assert_eq(kube_namespace_get(&o, kc, "default", 0), 0, "%s", err_msg());
	cr_assert_str_eq(kube_obj_name(o), "default");
	cJSON_Delete(o);
	cJSON *labels = cJSON_Parse("{\"team\":\"kube\"}");
	cr_assert_eq(kube_namespace_create(&o, kc, "kt-ns", labels, 0), 0, "%s", err_msg());
	cr_assert_str_eq(kube_obj_label(o, "team"), "kube");
	cJSON_Delete(o);
	cr_assert_eq(kube_namespace_create(NULL, kc, "kt-ns", NULL, 0), ERR_CONFLICT);
	cr_assert(strstr(err_msg(), "already exists"), "%s", err_msg());
	cr_assert_eq(kube_namespace_get(&o, kc, "nope-ns", 0), ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "\"nope-ns\" not found"), "%s", err_msg());
	cJSON_Delete(labels);
}

Test(kube_sim, job_lifecycle_pods_logs_events)
{
	const char *ns = "default";
	cJSON *m = job_manifest("kt-crud", "crud", "echo line1; echo line2; echo line3");
	cJSON *job = NULL;
	cr_assert_eq(kube_job_create(&job, kc, ns, m, 0), 0, "%s", err_msg());
	kube_job_summary js;
	cr_assert_eq(kube_job_summary_parse(&js, job), 0);
	cr_assert_neq(js.controller_uid[0], '\0', "the server adds the controller-uid selector");
	cJSON_Delete(job);
	cr_assert_eq(kube_job_create(NULL, kc, ns, m, 0), ERR_CONFLICT);
	cJSON_Delete(m);

	cJSON *got = NULL;
	cr_assert_eq(kube_job_get(&got, kc, ns, "kt-crud", 0), 0, "%s", err_msg());
	cr_assert_str_eq(kube_obj_name(got), "kt-crud");
	cJSON_Delete(got);
	cr_assert_eq(kube_job_list(&got, kc, ns, "kube-test=crud", 0), 0, "%s", err_msg());
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(got, "items")), 1);
	cJSON_Delete(got);
	cr_assert_eq(kube_job_list(&got, kc, ns, "kube-test=other", 0), 0, "%s", err_msg());
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(got, "items")), 0);
	cJSON_Delete(got);

	kube_job_summary done = wait_job(ns, "kt-crud", "crud");
	cr_assert_eq(done.complete, 1, "Job completed (reason %s: %s)", done.reason, done.message);

	/* its pod, by the controller-uid label */
	char sel[160];
	snprintf(sel, sizeof(sel), "batch.kubernetes.io/controller-uid=%s", js.controller_uid);
	cJSON *pods = NULL;
	cr_assert_eq(kube_pod_list(&pods, kc, ns, sel, NULL, 0), 0, "%s", err_msg());
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(pods, "items")), 1);
	cJSON *pod = cJSON_GetArrayItem(cJSON_GetObjectItem(pods, "items"), 0);
	char pname[254];
	str_copy(pname, sizeof(pname), kube_obj_name(pod));
	char puid[64];
	str_copy(puid, sizeof(puid), kube_obj_uid(pod));
	cJSON_Delete(pods);
	cJSON *p1 = NULL;
	cr_assert_eq(kube_pod_get(&p1, kc, ns, pname, 0), 0, "%s", err_msg());
	kube_pod_summary ps;
	cr_assert_eq(kube_pod_summary_parse(&ps, p1), 0);
	cr_assert_str_eq(ps.phase, "Succeeded");
	cr_assert_eq(ps.containers[0].state, KUBE_CONTAINER_TERMINATED);
	cr_assert_eq(ps.containers[0].exit_code, 0);
	cJSON_Delete(p1);

	/* logs: whole, tailLines, limitBytes */
	buf b = BUF_INIT(1 << 20);
	kube_log_opts lo = KUBE_LOG_OPTS_INIT;
	cr_assert_eq(kube_pod_logs_buf(&b, kc, ns, pname, &lo), 0, "%s", err_msg());
	cr_assert_str_eq(buf_cstr(&b), "line1\nline2\nline3\n");
	buf_reset(&b);
	lo.tail_lines = 1;
	cr_assert_eq(kube_pod_logs_buf(&b, kc, ns, pname, &lo), 0, "%s", err_msg());
	cr_assert_str_eq(buf_cstr(&b), "line3\n");
	buf_reset(&b);
	lo.tail_lines = -1;
	lo.limit_bytes = 4;
	cr_assert_eq(kube_pod_logs_buf(&b, kc, ns, pname, &lo), 0, "%s", err_msg());
	cr_assert_str_eq(buf_cstr(&b), "line");
	buf_free(&b);

	/* events about the pod, by involvedObject */
	cJSON *evs = NULL;
	cr_assert_eq(kube_event_list_for(&evs, kc, ns, "Pod", pname, puid, 0), 0, "%s", err_msg());
	cJSON *items = cJSON_GetObjectItem(evs, "items");
	cr_assert(cJSON_IsArray(items));
	int scheduled = 0;
	for (cJSON *e = items->child; e; e = e->next) {
		cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "involvedObject"), "name")->valuestring,
				 pname);
		scheduled |= str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(e, "reason")), "Scheduled");
	}
	cr_assert(scheduled, "the pod's Scheduled event is listed");
	cJSON_Delete(evs);
	cr_assert_eq(kube_event_list_for(&evs, kc, ns, "Job", "kt-crud", NULL, 0), 0, "%s", err_msg());
	int completed = 0;
	items = cJSON_GetObjectItem(evs, "items");
	for (cJSON *e = items->child; e; e = e->next) {
		cr_assert_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "involvedObject"), "kind")),
				 "Job", "only the Job's events");
		completed |= str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(e, "reason")), "Completed");
	}
	cr_assert(completed, "the Job's Completed event is listed");
	cJSON_Delete(evs);

	/* delete with Background: the Job and its pod go */
	cr_assert_eq(kube_job_delete(kc, ns, "kt-crud", NULL, 0), 0, "%s", err_msg());
	int gone = 0;
	for (int i = 0; i < 200 && !gone; i++) {
		cJSON *l = NULL;
		int rc1 = kube_job_get(&l, kc, ns, "kt-crud", 0);
		cJSON_Delete(l);
		cr_assert_eq(kube_pod_list(&l, kc, ns, sel, NULL, 0), 0, "%s", err_msg());
		gone = rc1 == ERR_NOTFOUND && cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")) == 0;
		cJSON_Delete(l);
		if (!gone)
			clock_sleep_ms(100);
	}
	cr_assert(gone, "the Job and its pods were deleted (propagationPolicy=Background)");
	cr_assert_eq(kube_job_delete(kc, ns, "kt-crud", NULL, 0), ERR_NOTFOUND);
	cr_assert_eq(kube_job_delete(kc, ns, "kt-crud", "Sideways", 0), ERR_INVALID);
}

static int pod_phase_event(void *ud, const kube_watch_event *ev)
{
	char *phase = ud;
	const cJSON *o = NULL;
	if (ev->type == KUBE_WATCH_SYNC)
		o = cJSON_GetArrayItem(cJSON_GetObjectItem(ev->object, "items"), 0);
	else if (ev->type == KUBE_WATCH_ADDED || ev->type == KUBE_WATCH_MODIFIED)
		o = ev->object;
	if (!o)
		return 0;
	kube_pod_summary s;
	if (kube_pod_summary_parse(&s, o) == 0)
		str_copy(phase, 16, s.phase);
	return !strcmp(phase, "Succeeded") || !strcmp(phase, "Failed");
}

struct follow {
	buf b;
	int chunks;
};

static int follow_cb(void *ud, const char *p, size_t n)
{
	struct follow *f = ud;
	f->chunks++;
	return buf_append(&f->b, p, n) < 0 ? ERR_TOOBIG : 0;
}

Test(kube_sim, pod_watch_by_label_and_log_follow)
{
	const char *ns = "default";
	cJSON *m = job_manifest("kt-follow", "follow", "echo a; sleep 1; echo b");
	cr_assert_eq(kube_job_create(NULL, kc, ns, m, 0), 0, "%s", err_msg());
	cJSON_Delete(m);
	/* wait for the pod to exist and run, then follow its log to the end */
	char pname[254] = "";
	for (int i = 0; i < 300 && !pname[0]; i++) {
		cJSON *l = NULL;
		cr_assert_eq(kube_pod_list(&l, kc, ns, "kube-test=follow", NULL, 0), 0, "%s", err_msg());
		cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(l, "items"), 0);
		kube_pod_summary s;
		if (p && kube_pod_summary_parse(&s, p) == 0 && (!strcmp(s.phase, "Running") || !strcmp(s.phase, "Succeeded")))
			str_copy(pname, sizeof(pname), s.name);
		cJSON_Delete(l);
		if (!pname[0])
			clock_sleep_ms(50);
	}
	cr_assert_neq(pname[0], '\0', "the pod started");
	struct follow f = { BUF_INIT(4096), 0 };
	kube_log_opts lo = KUBE_LOG_OPTS_INIT;
	lo.follow = 1;
	lo.deadline_ms = in_ms(30000);
	cr_assert_eq(kube_pod_logs(kc, ns, pname, &lo, follow_cb, &f), 0, "%s", err_msg());
	cr_assert_str_eq(buf_cstr(&f.b), "a\nb\n", "follow ends with a normal EOF when the container stops");
	buf_free(&f.b);

	char phase[16] = "";
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	o.deadline_ms = in_ms(30000);
	cr_assert_eq(kube_pod_watch(kc, ns, "kube-test=follow", &o, pod_phase_event, phase), 0, "%s", err_msg());
	cr_assert_str_eq(phase, "Succeeded");
	kube_job_delete(kc, ns, "kt-follow", "Background", 0);

	/* logs of a pod that does not exist: a typed 404 */
	buf b = BUF_INIT(1024);
	cr_assert_eq(kube_pod_logs_buf(&b, kc, ns, "no-such-pod", NULL), ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "\"no-such-pod\" not found"), "%s", err_msg());
	buf_free(&b);
}

Test(kube_sim, access_reviews_and_token_request)
{
	int allowed = 0;
	char *reason = NULL;
	kube_access a = { .ns = "default", .verb = "create", .group = "", .resource = "pods",
			  .subresource = "exec" };
	cr_assert_eq(kube_access_review(&allowed, &reason, kc, &a, 0), 0, "%s", err_msg());
	cr_assert_eq(allowed, 1, "the admin may exec");
	free(reason);
	cJSON *rules = NULL;
	cr_assert_eq(kube_rules_review(&rules, kc, "default", 0), 0, "%s", err_msg());
	cr_assert(cJSON_IsArray(cJSON_GetObjectItem(rules, "resourceRules")));
	cJSON_Delete(rules);

	/* a ServiceAccount with no RBAC: authenticated, but denied */
	cJSON *sa = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":\"kt-nobody\"}}");
	cr_assert_eq(kube_rest_json(NULL, kc, "POST", "/api/v1/namespaces/default/serviceaccounts", sa, 0), 0,
		     "%s", err_msg());
	cJSON_Delete(sa);
	char *tok = NULL;
	int64_t exp = 0;
	cr_assert_eq(kube_token_request(&tok, &exp, kc, "default", "kt-nobody", NULL, 3600, 0), 0, "%s",
		     err_msg());
	cr_assert_gt(strlen(tok), 10);
	cr_assert_gt(exp, clock_wall_ms(), "expirationTimestamp in the future");

	kube_config *c2 = NULL;
	cr_assert_eq(kube_config_dup(&c2, kcfg), 0);
	free(c2->token);
	c2->token = tok;
	free(c2->client_cert_data);
	free(c2->client_key_data);
	c2->client_cert_data = c2->client_key_data = NULL;
	c2->client_cert_file = c2->client_key_file = NULL;
	kube_client *k2 = NULL;
	cr_assert_eq(kube_client_new(&k2, c2), 0, "%s", err_msg());
	cr_assert_eq(kube_access_review(&allowed, NULL, k2, &a, 0), 0, "%s", err_msg());
	cr_assert_eq(allowed, 0, "a ServiceAccount without a RoleBinding may not exec");
	cJSON *l = NULL;
	cr_assert_eq(kube_pod_list(&l, k2, "default", NULL, NULL, 0), ERR_FORBIDDEN);
	cr_assert(strstr(err_msg(), "forbidden"), "%s", err_msg());
	cr_assert(strstr(err_msg(), "system:serviceaccount:default:kt-nobody"), "%s", err_msg());
	kube_client_free(k2);
	kube_config_free(c2);
}

/* ---- a pod that cannot start ------------------------------------------ */

static void start_image_fail(void)
{
	static const char *const extra[] = { "--image-fail", "*broken*", NULL };
	start_with_args(NULL, extra);
}

TestSuite(kube_sim_imagefail, .init = start_image_fail, .fini = stop, .timeout = 120);

struct waiting {
	char pod[254];
	char reason[64];
};

static int waiting_event(void *ud, const kube_watch_event *ev)
{
	struct waiting *w = ud;
	const cJSON *o = ev->type == KUBE_WATCH_SYNC ? cJSON_GetArrayItem(cJSON_GetObjectItem(ev->object, "items"), 0)
		       : (ev->type == KUBE_WATCH_ADDED || ev->type == KUBE_WATCH_MODIFIED) ? ev->object : NULL;
	kube_pod_summary s;
	if (!o || kube_pod_summary_parse(&s, o) != 0 || s.ncontainers == 0)
		return 0;
	if (s.containers[0].state == KUBE_CONTAINER_WAITING &&
	    (!strcmp(s.containers[0].reason, "ErrImagePull") || !strcmp(s.containers[0].reason, "ImagePullBackOff"))) {
		str_copy(w->pod, sizeof(w->pod), s.name);
		str_copy(w->reason, sizeof(w->reason), s.containers[0].reason);
		return 1;
	}
	return 0;
}

Test(kube_sim_imagefail, logs_of_a_waiting_container_are_a_typed_400)
{
	cJSON *m = job_manifest("kt-broken", "broken", "true");
	cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(
		cJSON_GetObjectItem(m, "spec"), "template"), "spec"), "containers"), 0);
	cJSON_ReplaceItemInObject(c0, "image", cJSON_CreateString("registry.example/broken:1"));
	cr_assert_eq(kube_job_create(NULL, kc, "default", m, 0), 0, "%s", err_msg());
	cJSON_Delete(m);
	struct waiting w = { "", "" };
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	o.deadline_ms = in_ms(60000);
	cr_assert_eq(kube_pod_watch(kc, "default", "kube-test=broken", &o, waiting_event, &w), 0, "%s", err_msg());
	buf b = BUF_INIT(4096);
	cr_assert_eq(kube_pod_logs_buf(&b, kc, "default", w.pod, NULL), ERR_INVALID);
	cr_assert(strstr(err_msg(), "is waiting to start"), "%s", err_msg());
	cr_assert_eq(kube_status_last()->code, 400);
	buf_free(&b);
	/* the kubelet's Warning events are there to quote */
	cJSON *evs = NULL;
	cr_assert_eq(kube_event_list_for(&evs, kc, "default", "Pod", w.pod, NULL, 0), 0, "%s", err_msg());
	int warning = 0;
	for (cJSON *e = cJSON_GetObjectItem(evs, "items")->child; e; e = e->next)
		warning |= str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(e, "type")), "Warning");
	cr_assert(warning, "a Warning event about the image pull");
	cJSON_Delete(evs);
	cr_assert_eq(kube_job_delete(kc, "default", "kt-broken", NULL, 0), 0, "%s", err_msg());
}

/* ---- faults ----------------------------------------------------------- */

static void start_faults_retry(void)
{
	start_with("GET /api/v1/namespaces/default/pods:status=429,text,retry=1@first=2;"
		   "GET /api/v1/namespaces/default/configmaps:status=503,retry=1@first=2;"
		   "GET /api/v1/namespaces/default/secrets:status=500;"
		   "GET /api/v1/namespaces/default/services:drop@first=1;"
		   "POST /api/v1/namespaces/default/configmaps:drop@first=1");
}

TestSuite(kube_sim_faults, .init = start_faults_retry, .fini = stop, .timeout = 120);

static uint64_t count_of(const char *verb, long code)
{
	kube_request_count c[64];
	size_t n = kube_client_request_counts(kc, c, 64);
	for (size_t i = 0; i < n && i < 64; i++)
		if (!strcmp(c[i].verb, verb) && c[i].code == code)
			return c[i].count;
	return 0;
}

Test(kube_sim_faults, plain_text_429_then_success)
{
	cJSON *l = NULL;
	int64_t t0 = clock_mono_ms();
	cr_assert_eq(kube_pod_list(&l, kc, "default", NULL, NULL, 0), 0, "%s", err_msg());
	cr_assert_geq(clock_mono_ms() - t0, 1900, "slept Retry-After: 1 twice");
	cr_assert_eq(count_of("GET", 429), 2);
	cJSON_Delete(l);
}

Test(kube_sim_faults, a_503_with_retry_after_is_retried)
{
	cJSON *l = NULL;
	cr_assert_eq(kube_rest_json(&l, kc, "GET", "/api/v1/namespaces/default/configmaps", NULL, 0), 0,
		     "%s", err_msg());
	cr_assert_eq(count_of("GET", 503), 2);
	cJSON_Delete(l);
}

Test(kube_sim_faults, a_500_without_retry_after_is_a_typed_error)
{
	cr_assert_eq(kube_rest_json(NULL, kc, "GET", "/api/v1/namespaces/default/secrets", NULL, 0), ERR_AGAIN);
	cr_assert_eq(count_of("GET", 500), 1);
	cr_assert_not_null(kube_status_last());
	cr_assert_eq(kube_status_last()->code, 500);
	cr_assert(strstr(err_msg(), "HTTP 500"), "%s", err_msg());
}

Test(kube_sim_faults, dropped_connection_get_retried_post_not)
{
	cJSON *l = NULL;
	cr_assert_eq(kube_rest_json(&l, kc, "GET", "/api/v1/namespaces/default/services", NULL, 0), 0, "%s",
		     err_msg());
	cJSON_Delete(l);
	cr_assert_eq(count_of("GET", 0), 1, "one transport failure, then success");
	cJSON *cm = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"kt\"}}");
	cr_assert_eq(kube_rest_json(NULL, kc, "POST", "/api/v1/namespaces/default/configmaps", cm, 0), ERR_AGAIN);
	cr_assert_eq(count_of("POST", 0), 1, "a write is not retried after a transport failure");
	cJSON_Delete(cm);
}

/* watches across cuts and expiries */
static void start_faults_watch(void)
{
	start_with("watch /api/v1/namespaces/default/configmaps:watch-cut=1@first=2;"
		   "watch /api/v1/namespaces/kt-gone/configmaps:watch-gone=1@first=1");
}

TestSuite(kube_sim_watch, .init = start_faults_watch, .fini = stop, .timeout = 120);

struct cm_seen {
	int added[8];
	int syncs;
	const char *ns;
};

static int cm_event(void *ud, const kube_watch_event *ev)
{
	struct cm_seen *s = ud;
	if (ev->type == KUBE_WATCH_SYNC) {
		s->syncs++;
		const cJSON *items = cJSON_GetObjectItem(ev->object, "items");
		for (const cJSON *it = items ? items->child : NULL; it; it = it->next) {
			int i;
			if (sscanf(kube_obj_name(it) ? kube_obj_name(it) : "", "cm-%d", &i) == 1 && i >= 0 && i < 8)
				s->added[i] = 1;
		}
	}
	if (ev->type == KUBE_WATCH_ADDED) {
		int i;
		if (sscanf(kube_obj_name(ev->object) ? kube_obj_name(ev->object) : "", "cm-%d", &i) == 1 && i >= 0 && i < 8)
			s->added[i] = 1;
	}
	int all = 1;
	for (int i = 0; i < 4; i++)
		all &= s->added[i];
	return all;
}

struct creator {
	const char *ns;
};

static void *create_cms(void *arg)
{
	struct creator *cr = arg;
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", cr->ns);
	for (int i = 0; i < 4; i++) {
		clock_sleep_ms(300);
		char *b = str_printf("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cm-%d\"}}", i);
		cJSON *j = cJSON_Parse(b);
		kube_rest_json(NULL, kc, "POST", path, j, 0);
		cJSON_Delete(j);
		free(b);
	}
	return NULL;
}

Test(kube_sim_watch, resumes_after_cuts_without_missing_events)
{
	struct cm_seen s = { .ns = "default" };
	struct creator cr = { "default" };
	pthread_t t;
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	kube_watch_stats st;
	o.path = "/api/v1/namespaces/default/configmaps";
	o.deadline_ms = in_ms(30000);
	pthread_create(&t, NULL, create_cms, &cr);
	int rc = kube_watch_run_stats(kc, &o, cm_event, &s, &st);
	pthread_join(t, NULL);
	cr_assert_eq(rc, 0, "%s", err_msg());
	cr_assert_geq(st.watches, 3, "two cuts, so at least three watch requests (%u)", st.watches);
	cr_assert_eq(st.lists, 1, "a cut resumes from the last resourceVersion, no re-list");
}

Test(kube_sim_watch, expired_resource_version_relists)
{
	cJSON *ns = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"kt-gone\"}}");
	cr_assert_eq(kube_rest_json(NULL, kc, "POST", "/api/v1/namespaces", ns, 0), 0, "%s", err_msg());
	cJSON_Delete(ns);
	struct cm_seen s = { .ns = "kt-gone" };
	struct creator cr = { "kt-gone" };
	pthread_t t;
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	kube_watch_stats st;
	o.path = "/api/v1/namespaces/kt-gone/configmaps";
	o.deadline_ms = in_ms(30000);
	pthread_create(&t, NULL, create_cms, &cr);
	int rc = kube_watch_run_stats(kc, &o, cm_event, &s, &st);
	pthread_join(t, NULL);
	cr_assert_eq(rc, 0, "%s", err_msg());
	cr_assert_eq(st.expired, 1);
	cr_assert_eq(st.lists, 2, "410 Expired: list again");
	cr_assert_eq(s.syncs, 2);
}

/* ---- exec credential plugin ------------------------------------------- */

TestSuite(kube_sim_auth, .init = start_plain, .fini = stop, .timeout = 120);

/* The plugin prints a wrong token on its first run (so the server answers
 * 401), the admin token afterwards, each valid for EXPIRY seconds. */
static const char *PLUGIN =
	"#!/bin/sh\n"
	"echo run >> \"$STATE/runs\"\n"
	"n=$(wc -l < \"$STATE/runs\")\n"
	"tok=$(cat \"$STATE/good\")\n"
	"[ \"$n\" = 1 ] && [ -n \"$BAD_FIRST\" ] && tok=wrong-token\n"
	"exp=$(date -u -d \"+$EXPIRY seconds\" +%Y-%m-%dT%H:%M:%SZ)\n"
	"printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
	"\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"%s\"}}' \"$tok\" \"$exp\"\n";

static kube_client *plugin_client(const char *dir, int bad_first, int expiry)
{
	/* the admin's token from kubesim's kubeconfig */
	char *tok = NULL;
	if (kcfg->token) {
		tok = str_dup(kcfg->token);
	} else {
		cr_assert_eq(kube_token_request(&tok, NULL, kc, "default", "default", NULL, 3600, 0), 0,
			     "%s", err_msg());
	}
	char *p = str_printf("%s/good", dir);
	FILE *f = fopen(p, "w");
	fputs(tok, f);
	fclose(f);
	free(p);
	free(tok);
	p = str_printf("%s/plugin.sh", dir);
	f = fopen(p, "w");
	fputs(PLUGIN, f);
	fclose(f);
	chmod(p, 0755);
	kube_config *c = NULL;
	cr_assert_eq(kube_config_dup(&c, kcfg), 0);
	free(c->token);
	c->token = NULL;
	free(c->client_cert_data);
	free(c->client_key_data);
	c->client_cert_data = c->client_key_data = NULL;
	free(c->client_cert_file);
	free(c->client_key_file);
	c->client_cert_file = c->client_key_file = NULL;
	c->exec = calloc(1, sizeof(*c->exec));
	c->exec->api_version = str_dup("client.authentication.k8s.io/v1");
	c->exec->command = p;
	c->exec->args = calloc(1, sizeof(char *));
	c->exec->env = calloc(4, sizeof(char *));
	c->exec->env[0] = str_printf("STATE=%s", dir);
	c->exec->env[1] = str_printf("EXPIRY=%d", expiry);
	c->exec->env[2] = str_printf("BAD_FIRST=%s", bad_first ? "1" : "");
	c->exec->nenv = 3;
	kube_client *k = NULL;
	cr_assert_eq(kube_client_new(&k, c), 0, "%s", err_msg());
	kube_config_free(c);
	return k;
}

Test(kube_sim_auth, exec_plugin_runs_again_only_after_expiry_or_a_401)
{
	char dir[] = "/tmp/kube-plugin-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	kube_client *k = plugin_client(dir, 1, 3);
	kube_auth *a = kube_client_auth(k);
	cJSON *o = NULL;
	/* first run: a wrong token, 401, the plugin runs again, the request is retried */
	cr_assert_eq(kube_namespace_get(&o, k, "default", 0), 0, "%s", err_msg());
	cJSON_Delete(o);
	cr_assert_eq(kube_auth_exec_runs(a), 2, "re-run after the 401");
	kube_request_count cnt[8];
	size_t n = kube_client_request_counts(k, cnt, 8);
	int saw401 = 0;
	for (size_t i = 0; i < n; i++)
		saw401 |= cnt[i].code == 401;
	cr_assert(saw401, "the server did answer 401 to the wrong token");
	/* cached while valid */
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(kube_namespace_get(&o, k, "default", 0), 0, "%s", err_msg());
		cJSON_Delete(o);
	}
	cr_assert_eq(kube_auth_exec_runs(a), 2, "cached until expirationTimestamp");
	/* after the expiry, exactly one more run */
	clock_sleep_ms(3500);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(kube_namespace_get(&o, k, "default", 0), 0, "%s", err_msg());
		cJSON_Delete(o);
	}
	cr_assert_eq(kube_auth_exec_runs(a), 3, "re-run once the credential expired");
	kube_client_free(k);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

/* ---- in-cluster with a rotated, revoked token -------------------------- */

/* (Re)create the ServiceAccount kt-runner: a new uid, so every token
 * minted for the previous one is revoked (kubesim/auth.c, as upstream
 * pkg/serviceaccount/claims.go checks the uid), and mint a token. */
static char *fresh_sa_token(void)
{
	kube_rest_json(NULL, kc, "DELETE", "/api/v1/namespaces/default/serviceaccounts/kt-runner", NULL, 0);
	cJSON *sa = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{\"name\":\"kt-runner\"}}");
	int rc = ERR_CONFLICT;
	for (int i = 0; i < 100 && rc == ERR_CONFLICT; i++) {
		rc = kube_rest_json(NULL, kc, "POST", "/api/v1/namespaces/default/serviceaccounts", sa, 0);
		if (rc == ERR_CONFLICT)
			clock_sleep_ms(50);
	}
	cr_assert_eq(rc, 0, "%s", err_msg());
	cJSON_Delete(sa);
	char *t = NULL;
	cr_assert_eq(kube_token_request(&t, NULL, kc, "default", "kt-runner", NULL, 3600, 0), 0, "%s", err_msg());
	return t;
}

static void put_file(const char *dir, const char *name, const char *data, size_t len)
{
	char *tmp = str_printf("%s/.%s.tmp", dir, name), *dst = str_printf("%s/%s", dir, name);
	FILE *f = fopen(tmp, "w");
	fwrite(data, 1, len, f);
	fclose(f);
	cr_assert_eq(rename(tmp, dst), 0, "atomic replace, as the kubelet swaps its symlink");
	free(tmp);
	free(dst);
}

Test(kube_sim_auth, in_cluster_survives_token_rotation_and_revocation)
{
	char *t1 = fresh_sa_token();

	char dir[] = "/tmp/kube-sa-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	put_file(dir, "token", t1, strlen(t1));
	put_file(dir, "namespace", "default", 7);
	if (kcfg->ca_data) {
		put_file(dir, "ca.crt", kcfg->ca_data, kcfg->ca_data_len);
	} else {
		char *ca = NULL;
		FILE *f = fopen(kcfg->ca_file, "r");
		cr_assert_not_null(f);
		ca = calloc(1, 1 << 20);
		size_t n = fread(ca, 1, (1 << 20) - 1, f);
		fclose(f);
		put_file(dir, "ca.crt", ca, n);
		free(ca);
	}
	char port[16];
	snprintf(port, sizeof(port), "%d", sim.port);
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", port, 1);
	kube_config_opts o = KUBE_CONFIG_OPTS_INIT;
	o.in_cluster = KUBE_INCLUSTER_ONLY;
	o.sa_dir = dir;
	kube_config *c = NULL;
	cr_assert_eq(kube_config_load(&c, &o), 0, "%s", err_msg());
	kube_client *k = NULL;
	cr_assert_eq(kube_client_new(&k, c), 0, "%s", err_msg());
	kube_config_free(c);

	kube_access a = { .ns = "default", .verb = "get", .group = "", .resource = "pods" };
	int allowed;
	/* SelfSubjectAccessReview is allowed to every authenticated identity:
	 * it succeeds only while our token is accepted. */
	cr_assert_eq(kube_access_review(&allowed, NULL, k, &a, 0), 0, "%s", err_msg());

	/* rotate: the kubelet writes a new token; the old one is revoked */
	char *t2 = fresh_sa_token();
	put_file(dir, "token", t2, strlen(t2));
	/* the old token is really revoked */
	kube_config *cold = NULL;
	cr_assert_eq(kube_config_dup(&cold, kcfg), 0);
	free(cold->token);
	cold->token = str_dup(t1);
	free(cold->client_cert_data);
	free(cold->client_key_data);
	cold->client_cert_data = cold->client_key_data = NULL;
	kube_client *kold = NULL;
	cr_assert_eq(kube_client_new(&kold, cold), 0);
	/* as kube-apiserver, kubesim remembers a successful token check for
	 * 10 s (TokenSuccessCacheTTL), so revocation takes up to that long */
	int rc_old = 0;
	for (int64_t until = in_ms(20000); clock_mono_ms() < until; clock_sleep_ms(250))
		if ((rc_old = kube_access_review(&allowed, NULL, kold, &a, 0)) == ERR_UNAUTHORIZED)
			break;
	cr_assert_eq(rc_old, ERR_UNAUTHORIZED, "%s", err_msg());
	kube_client_free(kold);
	kube_config_free(cold);

	/* the in-cluster client keeps working: a 401, a re-read, a retry */
	for (int i = 0; i < 5; i++)
		cr_assert_eq(kube_access_review(&allowed, NULL, k, &a, 0), 0, "%s", err_msg());
	cr_assert_eq(kube_auth_token_reads(kube_client_auth(k)), 2);

	/* and a third rotation is picked up by the periodic re-read alone */
	char *t3 = fresh_sa_token();
	put_file(dir, "token", t3, strlen(t3));
	kube_auth_set_reread_ms(kube_client_auth(k), 0);
	uint64_t before401 = 0;
	kube_request_count cnt[16];
	size_t nc = kube_client_request_counts(k, cnt, 16);
	for (size_t i = 0; i < nc && i < 16; i++)
		if (cnt[i].code == 401)
			before401 = cnt[i].count;
	cr_assert_eq(kube_access_review(&allowed, NULL, k, &a, 0), 0, "%s", err_msg());
	nc = kube_client_request_counts(k, cnt, 16);
	for (size_t i = 0; i < nc && i < 16; i++)
		if (cnt[i].code == 401)
			cr_assert_eq(cnt[i].count, before401, "no 401: the periodic re-read found the new token first");
	kube_client_free(k);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	free(t1);
	free(t2);
	free(t3);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

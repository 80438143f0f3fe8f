/* kube/objects: Pod and Job fields callers act on. See objects.h. */
#include "kube/objects.h"

#include <string.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

static int digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

int kube_time_parse(int64_t *out_ms, const char *s)
{
	/* YYYY-MM-DDTHH:MM:SS */
	if (!s || strnlen(s, 64) < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) ||
	    s[7] != '-' || !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) ||
	    s[13] != ':' || !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
		return err_set(ERR_INVALID, "\"%.64s\" is not an RFC 3339 time", s ? s : "");
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		int n = 0;
		while (*p >= '0' && *p <= '9' && n < 9) {
			p++;
			n++;
		}
		if (n == 0)
			return err_set(ERR_INVALID, "\"%.64s\" is not an RFC 3339 time", s);
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if ((*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2))
		p += 6;
	else
		return err_set(ERR_INVALID, "\"%.64s\" is not an RFC 3339 time", s);
	if (*p)
		return err_set(ERR_INVALID, "\"%.64s\" is not an RFC 3339 time", s);
	return clock_parse_rfc3339(out_ms, s);
}

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static const char *gets(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *kube_obj_name(const cJSON *o) { return gets(get(o, "metadata"), "name"); }
const char *kube_obj_namespace(const cJSON *o) { return gets(get(o, "metadata"), "namespace"); }
const char *kube_obj_uid(const cJSON *o) { return gets(get(o, "metadata"), "uid"); }
const char *kube_obj_resource_version(const cJSON *o)
{
	return gets(get(o, "metadata"), "resourceVersion");
}
const char *kube_obj_label(const cJSON *o, const char *key)
{
	return gets(get(get(o, "metadata"), "labels"), key);
}
int kube_obj_deleting(const cJSON *o)
{
	return gets(get(o, "metadata"), "deletionTimestamp") != NULL;
}

static void cp(char *dst, size_t size, const char *s)
{
	str_copy(dst, size, s ? s : "");
}

/* An int field within [lo, hi]; absent leaves *out. */
static int get_int(int *out, const cJSON *o, const char *k, long lo, long hi, const char *what)
{
	const cJSON *v = get(o, k);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < (double)lo || v->valuedouble > (double)hi ||
	    v->valuedouble != (double)(long)v->valuedouble)
		return err_set(ERR_INVALID, "%s.%s: expected an integer", what, k);
	*out = (int)v->valuedouble;
	return 0;
}

static int container_status(kube_container_status *cs, const cJSON *j)
{
	int rc;
	memset(cs, 0, sizeof(*cs));
	if (!cJSON_IsObject(j))
		return err_set(ERR_INVALID, "containerStatuses: an entry is not an object");
	cp(cs->name, sizeof(cs->name), gets(j, "name"));
	cs->ready = cJSON_IsTrue(get(j, "ready"));
	if ((rc = get_int(&cs->restart_count, j, "restartCount", 0, 1 << 30, "containerStatus")) < 0)
		return rc;
	const cJSON *st = get(j, "state");
	const cJSON *w = get(st, "waiting"), *r = get(st, "running"), *t = get(st, "terminated");
	if (cJSON_IsObject(t)) {
		cs->state = KUBE_CONTAINER_TERMINATED;
		cp(cs->reason, sizeof(cs->reason), gets(t, "reason"));
		cp(cs->message, sizeof(cs->message), gets(t, "message"));
		if ((rc = get_int(&cs->exit_code, t, "exitCode", -(1L << 31) + 1, (1L << 31) - 1,
				  "state.terminated")) < 0 ||
		    (rc = get_int(&cs->signal, t, "signal", 0, 255, "state.terminated")) < 0)
			return rc;
	} else if (cJSON_IsObject(r)) {
		cs->state = KUBE_CONTAINER_RUNNING;
	} else if (cJSON_IsObject(w)) {
		cs->state = KUBE_CONTAINER_WAITING;
		cp(cs->reason, sizeof(cs->reason), gets(w, "reason"));
		cp(cs->message, sizeof(cs->message), gets(w, "message"));
	}
	const cJSON *lt = get(get(j, "lastState"), "terminated");
	if (cJSON_IsObject(lt)) {
		cs->last_terminated = 1;
		cp(cs->last_reason, sizeof(cs->last_reason), gets(lt, "reason"));
		if ((rc = get_int(&cs->last_exit_code, lt, "exitCode", -(1L << 31) + 1, (1L << 31) - 1,
				  "lastState.terminated")) < 0)
			return rc;
	}
	return 0;
}

static int container_list(kube_container_status *arr, size_t *n, const cJSON *list)
{
	*n = 0;
	if (!list || cJSON_IsNull(list))
		return 0;
	if (!cJSON_IsArray(list))
		return err_set(ERR_INVALID, "pod status: container statuses are not a list");
	for (const cJSON *e = list->child; e && *n < KUBE_POD_MAX_CONTAINERS; e = e->next) {
		int rc = container_status(&arr[*n], e);
		if (rc < 0)
			return rc;
		(*n)++;
	}
	return 0;
}

int kube_pod_summary_parse(kube_pod_summary *out, const cJSON *pod)
{
	int rc;
	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(pod))
		return err_set(ERR_INVALID, "pod: not a JSON object");
	cp(out->name, sizeof(out->name), kube_obj_name(pod));
	cp(out->uid, sizeof(out->uid), kube_obj_uid(pod));
	out->deleting = kube_obj_deleting(pod);
	const cJSON *st = get(pod, "status");
	if (st && !cJSON_IsNull(st) && !cJSON_IsObject(st))
		return err_set(ERR_INVALID, "pod %s: status is not an object", out->name);
	cp(out->phase, sizeof(out->phase), gets(st, "phase"));
	cp(out->reason, sizeof(out->reason), gets(st, "reason"));
	cp(out->message, sizeof(out->message), gets(st, "message"));
	const cJSON *conds = get(st, "conditions");
	if (cJSON_IsArray(conds)) {
		for (const cJSON *c = conds->child; c; c = c->next) {
			const char *type = gets(c, "type"), *status = gets(c, "status");
			if (!type || !status)
				continue;
			if (!strcmp(type, "Ready") && !strcmp(status, "True"))
				out->ready = 1;
			if (!strcmp(type, "PodScheduled") && !strcmp(status, "False") &&
			    str_eq(gets(c, "reason"), "Unschedulable")) {
				out->unschedulable = 1;
				cp(out->sched_message, sizeof(out->sched_message), gets(c, "message"));
			}
		}
	}
	if ((rc = container_list(out->containers, &out->ncontainers, get(st, "containerStatuses"))) < 0)
		return rc;
	return container_list(out->init, &out->ninit, get(st, "initContainerStatuses"));
}

int kube_job_summary_parse(kube_job_summary *out, const cJSON *job)
{
	int rc;
	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(job))
		return err_set(ERR_INVALID, "job: not a JSON object");
	cp(out->name, sizeof(out->name), kube_obj_name(job));
	cp(out->uid, sizeof(out->uid), kube_obj_uid(job));
	out->deleting = kube_obj_deleting(job);
	/* The API server selects a Job's pods by controller-uid
	 * (pkg/registry/batch/job/strategy.go generateSelector). */
	const cJSON *ml = get(get(get(job, "spec"), "selector"), "matchLabels");
	const char *cu = gets(ml, "batch.kubernetes.io/controller-uid");
	cp(out->controller_uid, sizeof(out->controller_uid), cu ? cu : gets(ml, "controller-uid"));
	const cJSON *st = get(job, "status");
	if (st && !cJSON_IsNull(st) && !cJSON_IsObject(st))
		return err_set(ERR_INVALID, "job %s: status is not an object", out->name);
	if ((rc = get_int(&out->active, st, "active", 0, 1 << 30, "job status")) < 0 ||
	    (rc = get_int(&out->succeeded, st, "succeeded", 0, 1 << 30, "job status")) < 0 ||
	    (rc = get_int(&out->failed, st, "failed", 0, 1 << 30, "job status")) < 0)
		return rc;
	const cJSON *conds = get(st, "conditions");
	if (cJSON_IsArray(conds)) {
		for (const cJSON *c = conds->child; c; c = c->next) {
			const char *type = gets(c, "type"), *status = gets(c, "status");
			if (!type || !status || strcmp(status, "True"))
				continue;
			/* Terminal: Complete or Failed with status True; FailureTarget
			 * and SuccessCriteriaMet come first and are not terminal. */
			int complete = !strcmp(type, "Complete"), failed = !strcmp(type, "Failed");
			if (!complete && !failed)
				continue;
			out->complete |= complete;
			out->failed_cond |= failed;
			cp(out->reason, sizeof(out->reason), gets(c, "reason"));
			cp(out->message, sizeof(out->message), gets(c, "message"));
		}
	}
	return 0;
}

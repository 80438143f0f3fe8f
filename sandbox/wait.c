/*
 * wait: the pod of a run's Job, by watch, with as few API requests as the
 * answer allows (issue 7: one pod WATCH on the common path, no LIST).
 *
 *  - The caller's thread watches the pods selected by the Job's
 *    spec.selector (the controller-uid label the API server adds,
 *    pkg/registry/batch/job/strategy.go) and judges each version of the pod
 *    (sandbox_pod_assess). The first watch is sent without a
 *    resourceVersion: the API server then delivers the current objects as
 *    synthetic ADDED events before the changes ("Get State and Start at
 *    Most Recent", kubernetes.io/docs/reference/using-api/api-concepts/
 *    #semantics-for-watch; staging/src/k8s.io/apiserver/pkg/storage/cacher/
 *    cacher.go, Watch with resourceVersion ""), so one WATCH does what a
 *    LIST then a WATCH from the list's resourceVersion would. Later watches
 *    resume from the last resourceVersion seen; a 410 Expired makes
 *    kube/watch list again (the reflector's rule, kube/watch.h).
 *  - A helper thread watches the Job's Events, but only when that can
 *    matter: when the Job controller cannot create the pod at all (Pod
 *    Security admission, a ResourceQuota), the only trace is a FailedCreate
 *    Warning on the Job (pkg/controller/job/job_controller.go, via the pod
 *    control's recorder), and no pod event will ever come. So the helper
 *    is started only when EVENTS_DELAY_MS have passed without a pod: the
 *    pod watch's tick (libcurl's progress callback, about once a second)
 *    checks, in the waiting thread, so a run whose pod comes in time has
 *    no second thread (bench part 4: about 580 sleeping helpers, 24 KiB of
 *    stack each, when every run started one). The helper starts one
 *    events WATCH, again without a resourceVersion, so a FailedCreate
 *    recorded before it arrives as ADDED. A pod appearing later stops that
 *    watch too.
 * The helper stops the main watch through a kube_cancel when it finds one.
 * Grace periods (an image pull that keeps failing, an Unschedulable pod a
 * cluster autoscaler may still place) end by the watch deadline: the
 * watch is restarted from its last resourceVersion with the deadline set
 * to when the grace ends, so no timer thread and no polling is needed.
 */
#include "sandbox/wait.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/resources.h"
#include "kube/watch.h"
#include "sandbox/cancel.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

/* How long the events helper waits for a pod before it watches the Job's
 * Events: the Job controller creates the pod within milliseconds of the
 * Job when it can, so only a Job that cannot have its pod gets that far.
 * 5 s, not less: an API server busy with many runs at once takes seconds
 * to show a pod it can create (bench part 3 at concurrency 100: with 2 s,
 * 23 runs in 100 started an events watch they did not need, each a request
 * and a TLS connection more), and a Job that cannot have its pod is still
 * reported 5 s after it was created instead of at the start deadline. */
#define EVENTS_DELAY_MS 5000

static void set_fail(sandbox_wait_result *out, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_fail(sandbox_wait_result *out, const char *reason, const char *fmt, ...)
{
	va_list ap;

	str_copy(out->reason, sizeof(out->reason), reason);
	va_start(ap, fmt);
	vsnprintf(out->message, sizeof(out->message), fmt, ap);
	va_end(ap);
}

const char *sandbox_failed_create_reason(const char *message)
{
	if (!message)
		return "FailedCreate";
	/* pkg/quota/v1/evaluator and plugin/pkg/admission/resourcequota:
	 * "exceeded quota: NAME, requested: ..., used: ..., limited: ..." */
	if (strstr(message, "exceeded quota"))
		return "QuotaExceeded";
	/* staging/src/k8s.io/pod-security-admission/admission/admission.go:
	 * "violates PodSecurity \"restricted:latest\": ..." */
	if (strstr(message, "violates PodSecurity"))
		return "PodSecurityRejected";
	return "FailedCreate";
}

static int never_resolves(const char *waiting_reason)
{
	/* kubelet waiting reasons that stay until the pod spec or the cluster
	 * changes (pkg/kubelet/kuberuntime, pkg/kubelet/images/types.go) */
	static const char *const r[] = {
		"CreateContainerConfigError", "CreateContainerError", "InvalidImageName",
		"RunContainerError", "ErrImageNeverPull", "PreCreateHookError",
	};

	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if (strcmp(waiting_reason, r[i]) == 0)
			return 1;
	return 0;
}

int sandbox_pod_assess(sandbox_wait_result *out, sandbox_wait_clock *clk,
		       const kube_pod_summary *pod, const sandbox_config *cfg, int64_t now_ms,
		       int64_t *next_check_ms)
{
	int64_t pull_grace = (int64_t)(cfg->image_pull_grace_seconds > 0 ? cfg->image_pull_grace_seconds : 0) * 1000;
	int64_t sched_grace = (int64_t)(cfg->unschedulable_grace_seconds > 0 ? cfg->unschedulable_grace_seconds : 0) * 1000;
	const kube_container_status *c = pod->ncontainers ? &pod->containers[0] : NULL;
	int64_t next = 0;
	int pulling_bad = 0;

	if (next_check_ms)
		*next_check_ms = 0;
	str_copy(out->pod, sizeof(out->pod), pod->name);
	str_copy(out->pod_uid, sizeof(out->pod_uid), pod->uid);
	if (pod->deleting) {
		set_fail(out, "PodDeleted", "the sandbox pod %s is being deleted before it was ready",
			 pod->name);
		return SANDBOX_POD_FAIL;
	}
	if (strcmp(pod->phase, "Failed") == 0) {
		if (c && c->state == KUBE_CONTAINER_TERMINATED)
			set_fail(out, pod->reason[0] ? pod->reason : "PodFailed",
				 "the sandbox pod %s failed before it was ready: its container %s with "
				 "exit code %d%s%s%s", pod->name,
				 c->reason[0] ? c->reason : "terminated", c->exit_code,
				 c->message[0] ? " (" : "", c->message, c->message[0] ? ")" : "");
		else
			set_fail(out, pod->reason[0] ? pod->reason : "PodFailed",
				 "the sandbox pod %s failed before it was ready%s%s", pod->name,
				 pod->message[0] ? ": " : "", pod->message);
		return SANDBOX_POD_FAIL;
	}
	if (strcmp(pod->phase, "Succeeded") == 0) {
		set_fail(out, "PodExited", "the sandbox pod %s ended before it was ready (its "
			 "keep-alive command exited)", pod->name);
		return SANDBOX_POD_FAIL;
	}
	if (c && c->state == KUBE_CONTAINER_WAITING && c->reason[0]) {
		if (strcmp(c->reason, "ErrImagePull") == 0 ||
		    strcmp(c->reason, "ImagePullBackOff") == 0) {
			pulling_bad = 1;
			if (!clk->pull_bad_since_ms)
				clk->pull_bad_since_ms = now_ms;
			if (now_ms - clk->pull_bad_since_ms >= pull_grace) {
				set_fail(out, c->reason,
					 "the image could not be pulled for %lld s (%s%s%s); check the "
					 "image name and tag and the registry's credentials",
					 (long long)((now_ms - clk->pull_bad_since_ms) / 1000), c->reason,
					 c->message[0] ? ": " : "", c->message);
				return SANDBOX_POD_FAIL;
			}
			next = clk->pull_bad_since_ms + pull_grace;
		} else if (never_resolves(c->reason)) {
			set_fail(out, c->reason, "the sandbox container cannot start: %s%s%s", c->reason,
				 c->message[0] ? ": " : "", c->message);
			return SANDBOX_POD_FAIL;
		}
	}
	if (!pulling_bad)
		clk->pull_bad_since_ms = 0;
	if (c && c->state == KUBE_CONTAINER_TERMINATED) {
		set_fail(out, "ContainerExited", "the sandbox container exited before it was ready "
			 "(%s, exit code %d)%s%s", c->reason[0] ? c->reason : "terminated",
			 c->exit_code, c->message[0] ? ": " : "", c->message);
		return SANDBOX_POD_FAIL;
	}
	if (pod->unschedulable) {
		if (!clk->unsched_since_ms)
			clk->unsched_since_ms = now_ms;
		if (now_ms - clk->unsched_since_ms >= sched_grace) {
			set_fail(out, "Unschedulable", "no node can run the sandbox pod %s: %s; lower "
				 "resources.cpu / resources.memory or add capacity", pod->name,
				 pod->sched_message[0] ? pod->sched_message : "(no scheduler message)");
			return SANDBOX_POD_FAIL;
		}
		int64_t n = clk->unsched_since_ms + sched_grace;

		if (!next || n < next)
			next = n;
	} else {
		clk->unsched_since_ms = 0;
	}
	if (strcmp(pod->phase, "Running") == 0 && (pod->ready || (c && c->ready)))
		return SANDBOX_POD_READY;
	if (next_check_ms)
		*next_check_ms = next;
	return SANDBOX_POD_WAIT;
}

/* ---- events --------------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

void sandbox_quote_events(char *msg, size_t size, kube_client *kc, const char *ns,
			  const char *kind, const char *name)
{
	cJSON *list = NULL;
	const cJSON *items, *it;
	size_t n = 0, warn = 0, shown = 0;
	buf b = BUF_INIT(2048);

	if (!name || !*name)
		return;
	if (kube_event_list_for(&list, kc, ns, kind, name, NULL,
				clock_mono_ms() + 5000) != 0)
		return;
	items = cJSON_GetObjectItemCaseSensitive(list, "items");
	cJSON_ArrayForEach(it, items) {
		n++;
		if (str_eq(jstr(it, "type"), "Warning"))
			warn++;
	}
	/* the last few, Warnings only if there are any (kubectl describe order) */
	size_t skip = (warn ? warn : n) > 3 ? (warn ? warn : n) - 3 : 0, idx = 0;

	cJSON_ArrayForEach(it, items) {
		const char *reason = jstr(it, "reason"), *m = jstr(it, "message");
		const cJSON *count = cJSON_GetObjectItemCaseSensitive(it, "count");

		if (warn && !str_eq(jstr(it, "type"), "Warning"))
			continue;
		if (idx++ < skip)
			continue;
		buf_printf(&b, "%s%s: %s", shown++ ? "; " : "", reason ? reason : "?", m ? m : "");
		if (cJSON_IsNumber(count) && count->valuedouble > 1)
			buf_printf(&b, " (x%d)", (int)count->valuedouble);
	}
	if (shown) {
		size_t len = strlen(msg);

		snprintf(msg + len, size - len, "; events of %s %s: %s", kind ? kind : "object", name,
			 buf_cstr(&b));
	}
	buf_free(&b);
	cJSON_Delete(list);
}

/* ---- the wait ------------------------------------------------------------ */

typedef struct wait_ctx {
	const sandbox_config *cfg;
	kube_client *kc;
	sandbox_wait_result *out;
	sandbox_wait_clock clk;
	int verdict;
	int64_t next_check_ms;      /* a grace ends then */
	int64_t watch_deadline_ms;  /* the deadline the current watch runs with */
	char rv[64];
	kube_pod_summary last;      /* the last version judged */
	int have_last;

	/* the events helper: started (1) or not needed (-1) by wait_tick, in
	 * the waiting thread */
	int64_t started_ms;
	pthread_t helper;
	int helper_state;

	/* shared with the events thread, under lock */
	pthread_mutex_t lock;
	int pod_seen;               /* a pod of the Job exists: FailedCreate cannot matter */
	int stop;                   /* the wait is over */
	int failed_create;
	char fc_message[2048];
	kube_cancel pod_cancel;
	kube_cancel ev_cancel;
	const char *job_name;
	const char *job_uid;
	const char *ns;
} wait_ctx;

static int judge(wait_ctx *w, const cJSON *pod)
{
	kube_pod_summary *s = malloc(sizeof(*s));
	int64_t next = 0;

	if (!s)
		return err_set(ERR_NOMEM, "out of memory");
	if (kube_pod_summary_parse(s, pod) != 0) {
		free(s);
		return 0; /* not a pod we can read; wait for the next version */
	}
	if (!w->pod_seen) {
		/* the Job has its pod: the events helper has nothing to find */
		pthread_mutex_lock(&w->lock);
		w->pod_seen = 1;
		pthread_mutex_unlock(&w->lock);
		kube_cancel_request(&w->ev_cancel);
	}
	w->verdict = sandbox_pod_assess(w->out, &w->clk, s, w->cfg, clock_mono_ms(), &next);
	w->last = *s;
	w->have_last = 1;
	free(s);
	w->next_check_ms = next;
	if (w->verdict != SANDBOX_POD_WAIT)
		return 1;
	/* a grace now ends before the current watch's deadline: restart */
	if (next && (!w->watch_deadline_ms || next < w->watch_deadline_ms))
		return 1;
	return 0;
}

static int pod_event(void *ud, const kube_watch_event *ev)
{
	wait_ctx *w = ud;
	const cJSON *it;
	int rc = 0;

	if (ev->resource_version)
		str_copy(w->rv, sizeof(w->rv), ev->resource_version);
	switch (ev->type) {
	case KUBE_WATCH_SYNC:
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(ev->object, "items")) {
			if ((rc = judge(w, it)) != 0)
				return rc;
		}
		return 0;
	case KUBE_WATCH_ADDED:
	case KUBE_WATCH_MODIFIED:
		return judge(w, ev->object);
	case KUBE_WATCH_DELETED: {
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(ev->object, "metadata");

		set_fail(w->out, "PodDeleted", "the sandbox pod %s was deleted before it was ready",
			 jstr(md, "name") ? jstr(md, "name") : "?");
		w->verdict = SANDBOX_POD_FAIL;
		return 1;
	}
	default:
		return 0;
	}
}

static int job_event(void *ud, const kube_watch_event *ev)
{
	wait_ctx *w = ud;
	const cJSON *it;

	if (ev->type == KUBE_WATCH_SYNC) {
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(ev->object, "items")) {
			kube_watch_event one = { KUBE_WATCH_ADDED, (cJSON *)it, NULL };

			if (job_event(ud, &one))
				return 1;
		}
		return 0;
	}
	if (ev->type != KUBE_WATCH_ADDED && ev->type != KUBE_WATCH_MODIFIED)
		return 0;
	const cJSON *io = cJSON_GetObjectItemCaseSensitive(ev->object, "involvedObject");

	if (!str_eq(jstr(io, "kind"), "Job") || !str_eq(jstr(io, "name"), w->job_name))
		return 0;
	if (w->job_uid && jstr(io, "uid") && !str_eq(jstr(io, "uid"), w->job_uid))
		return 0;
	if (!str_eq(jstr(ev->object, "reason"), "FailedCreate"))
		return 0;
	pthread_mutex_lock(&w->lock);
	w->failed_create = 1;
	str_copy(w->fc_message, sizeof(w->fc_message),
		 jstr(ev->object, "message") ? jstr(ev->object, "message") : "");
	pthread_mutex_unlock(&w->lock);
	kube_cancel_request(&w->pod_cancel);
	return 1;
}

/* 1 while the Events watch is worth having: no pod yet, the wait not over. */
static int events_needed(wait_ctx *w)
{
	int go;

	pthread_mutex_lock(&w->lock);
	go = !w->pod_seen && !w->stop;
	pthread_mutex_unlock(&w->lock);
	return go;
}

static void *events_thread(void *arg)
{
	wait_ctx *w = arg;
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	char path[512], sel[400];

	if (!events_needed(w))
		return NULL;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", w->ns);
	snprintf(sel, sizeof(sel), "involvedObject.kind=Job,involvedObject.name=%s", w->job_name);
	o.path = path;
	o.field_selector = sel;
	/* "": no LIST; the Events that exist come first as ADDED */
	o.resource_version = "";
	o.cancel = &w->ev_cancel;
	o.timeout_seconds = 60;
	o.max_failures = 3;
	/* best effort: without it a FailedCreate ends the wait at the start timeout */
	kube_watch_run(w->kc, &o, job_event, w);
	return NULL;
}

/* The pod watch's tick, in the waiting thread: start the events helper
 * once EVENTS_DELAY_MS have passed without a pod. */
static void wait_tick(void *ud)
{
	wait_ctx *w = ud;
	pthread_attr_t at;

	if (w->helper_state || clock_mono_ms() - w->started_ms < EVENTS_DELAY_MS)
		return;
	if (!events_needed(w)) {
		w->helper_state = -1;
		return;
	}
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, (size_t)512 << 10);
	/* best effort, as the watch is: without it a FailedCreate ends the
	 * wait at the start timeout */
	w->helper_state = pthread_create(&w->helper, &at, events_thread, w) == 0 ? 1 : -1;
	pthread_attr_destroy(&at);
}

/* "k=v,k2=v2" from spec.selector.matchLabels, else controller-uid. */
static int job_selector(buf *sel, const cJSON *job)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(job, "spec");
	const cJSON *ml = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(spec, "selector"), "matchLabels");
	const cJSON *it;
	kube_job_summary js;

	cJSON_ArrayForEach(it, ml) {
		if (!cJSON_IsString(it))
			continue;
		buf_printf(sel, "%s%s=%s", sel->len ? "," : "", it->string, it->valuestring);
	}
	if (sel->len)
		return 0;
	if (kube_job_summary_parse(&js, job) == 0 && js.controller_uid[0])
		return buf_printf(sel, "controller-uid=%s", js.controller_uid);
	return err_set(ERR_INVALID, "the created Job has no selector and no controller-uid");
}

int sandbox_wait_pod(sandbox_wait_result *out, kube_client *kc, const sandbox_config *cfg,
		     const cJSON *job, sandbox_cancel *cancel, int64_t run_deadline_ms)
{
	wait_ctx *w = calloc(1, sizeof(*w));
	buf sel = BUF_INIT(4096);
	int rc = 0;
	int64_t start_deadline = clock_mono_ms() + (int64_t)(cfg->start_timeout_seconds > 0 ? cfg->start_timeout_seconds : 300) * 1000;
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(job, "metadata");

	memset(out, 0, sizeof(*out));
	if (!w)
		return err_set(ERR_NOMEM, "out of memory");
	w->cfg = cfg;
	w->kc = kc;
	w->out = out;
	w->ns = cfg->namespace_;
	w->job_name = jstr(md, "name");
	w->job_uid = jstr(md, "uid");
	w->started_ms = clock_mono_ms();
	pthread_mutex_init(&w->lock, NULL);
	kube_cancel_init(&w->pod_cancel);
	kube_cancel_init(&w->ev_cancel);
	if (!w->job_name) {
		rc = err_set(ERR_INVALID, "the created Job has no name");
		goto done;
	}
	if ((rc = job_selector(&sel, job)) != 0)
		goto done;
	if ((rc = sandbox_cancel_link(cancel, &w->pod_cancel)) != 0)
		goto done;

	for (;;) {
		kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
		int64_t dl = start_deadline;

		if (run_deadline_ms && run_deadline_ms < dl)
			dl = run_deadline_ms;
		if (w->next_check_ms && w->next_check_ms < dl)
			dl = w->next_check_ms;
		w->watch_deadline_ms = dl;
		o.label_selector = buf_cstr(&sel);
		/* "" (not NULL): no LIST; what exists comes first as ADDED */
		o.resource_version = w->rv;
		o.deadline_ms = dl;
		o.cancel = &w->pod_cancel;
		o.timeout_seconds = 60;
		o.on_tick = wait_tick;
		o.tick_ud = w;
		rc = kube_pod_watch(kc, cfg->namespace_, NULL, &o, pod_event, w);
		if (w->verdict == SANDBOX_POD_READY) {
			rc = 0;
			break;
		}
		if (w->verdict == SANDBOX_POD_FAIL) {
			rc = ERR_FAIL;
			break;
		}
		pthread_mutex_lock(&w->lock);
		int fc = w->failed_create;
		pthread_mutex_unlock(&w->lock);
		if (fc) {
			set_fail(out, sandbox_failed_create_reason(w->fc_message),
				 "the Job could not create its pod: %s", w->fc_message);
			rc = ERR_FAIL;
			break;
		}
		if (sandbox_cancel_requested(cancel)) {
			set_fail(out, sandbox_cancel_reason(cancel), "cancelled while waiting for the pod");
			rc = ERR_CANCELLED;
			break;
		}
		if (rc == 0 || rc == ERR_TIMEOUT) {
			int64_t now = clock_mono_ms();

			if (w->next_check_ms && now >= w->next_check_ms && w->have_last) {
				/* a grace ended without a new version: judge the last again */
				int64_t next = 0;

				w->verdict = sandbox_pod_assess(out, &w->clk, &w->last, cfg, now, &next);
				w->next_check_ms = next;
				if (w->verdict == SANDBOX_POD_FAIL) {
					rc = ERR_FAIL;
					break;
				}
				if (w->verdict == SANDBOX_POD_READY) {
					rc = 0;
					break;
				}
			}
			if (run_deadline_ms && now >= run_deadline_ms) {
				set_fail(out, "DeadlineExceeded", "the run's deadline passed while waiting "
					 "for the pod%s%s", out->pod[0] ? " " : "", out->pod);
				rc = ERR_TIMEOUT;
				break;
			}
			if (now >= start_deadline) {
				set_fail(out, "PodStartTimeout", "the sandbox pod%s%s was not ready within "
					 "%d s", out->pod[0] ? " " : "", out->pod,
					 cfg->start_timeout_seconds);
				rc = ERR_TIMEOUT;
				break;
			}
			continue;
		}
		/* the API failed us */
		set_fail(out, "APIError", "watching the sandbox pod failed: %s", err_msg());
		break;
	}
	if (rc == ERR_FAIL || rc == ERR_TIMEOUT) {
		if (out->pod[0])
			sandbox_quote_events(out->message, sizeof(out->message), kc, cfg->namespace_,
					     "Pod", out->pod);
		else
			sandbox_quote_events(out->message, sizeof(out->message), kc, cfg->namespace_,
					     "Job", w->job_name);
	}
done:
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_mutex_unlock(&w->lock);
	kube_cancel_request(&w->ev_cancel);
	if (w->helper_state == 1)
		pthread_join(w->helper, NULL);
	sandbox_cancel_unlink(cancel, &w->pod_cancel);
	pthread_mutex_destroy(&w->lock);
	buf_free(&sel);
	free(w);
	if (rc == ERR_INVALID && !out->reason[0])
		set_fail(out, "APIError", "%s", err_msg());
	return rc;
}

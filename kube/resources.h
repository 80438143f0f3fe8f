/*
 * kube/resources: the typed operations the sandbox and the runner need.
 *
 * Objects travel as cJSON trees (the caller builds a Job manifest, gets the
 * server's object back); the few fields callers act on are read through
 * kube/objects.h. Every function: 0 or a typed error from kube/rest.h with
 * the server's Status quoted (kube_status_last() has it). deadline_ms is a
 * clock_mono_ms() deadline, 0 for the client's default request timeout.
 * Names and namespaces are checked before use (no '/', '%', "." or "..";
 * s/client-go/rest/request.go IsValidPathSegmentName): ERR_INVALID.
 */
#ifndef KUBE_RESOURCES_H
#define KUBE_RESOURCES_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "kube/client.h"
#include "kube/rest.h"
#include "kube/watch.h"
#include "util/buf.h"

/* ---- Jobs (batch/v1) ------------------------------------------------- */

/* POST the Job. *out (may be NULL) gets the created object; caller frees
 * with cJSON_Delete. ERR_CONFLICT when it exists. */
int kube_job_create(cJSON **out, kube_client *c, const char *ns, const cJSON *job,
		    int64_t deadline_ms);
int kube_job_get(cJSON **out, kube_client *c, const char *ns, const char *name, int64_t deadline_ms);
/* List Jobs; label_selector may be NULL. *out is the JobList. */
int kube_job_list(cJSON **out, kube_client *c, const char *ns, const char *label_selector,
		  int64_t deadline_ms);
/* DELETE with propagationPolicy ("Background", "Foreground", "Orphan";
 * NULL means "Background": without one, batch/v1 orphans the pods,
 * s/api/batch/v1 and pkg/registry/batch/job/strategy.go). A Job already
 * gone is ERR_NOTFOUND (callers tearing down treat it as done). */
int kube_job_delete(kube_client *c, const char *ns, const char *name, const char *propagation,
		    int64_t deadline_ms);
/* Watch Jobs in ns (label_selector may be NULL); see kube/watch.h.
 * opts may be NULL; its path is set by this function. */
int kube_job_watch(kube_client *c, const char *ns, const char *label_selector,
		   const kube_watch_opts *opts, kube_watch_cb cb, void *ud);

/* ---- Pods ------------------------------------------------------------- */

int kube_pod_get(cJSON **out, kube_client *c, const char *ns, const char *name, int64_t deadline_ms);
/* List pods by label and/or field selector (either may be NULL). */
int kube_pod_list(cJSON **out, kube_client *c, const char *ns, const char *label_selector,
		  const char *field_selector, int64_t deadline_ms);
int kube_pod_watch(kube_client *c, const char *ns, const char *label_selector,
		   const kube_watch_opts *opts, kube_watch_cb cb, void *ud);

/* ---- Events ----------------------------------------------------------- */

/* Core v1 Events about one object, by fieldSelector on involvedObject
 * (kind, name, and uid when given; kind/uid may be NULL). *out is the
 * EventList. */
int kube_event_list_for(cJSON **out, kube_client *c, const char *ns, const char *kind,
			const char *name, const char *uid, int64_t deadline_ms);

/* ---- pods/log --------------------------------------------------------- */

typedef struct kube_log_opts {
	const char *container;  /* NULL: the only container */
	int64_t tail_lines;     /* -1: all */
	int64_t limit_bytes;    /* 0: no limit */
	int64_t since_seconds;  /* 0: from the start */
	int follow;             /* stream until the container stops */
	int previous;           /* the previous instance's log */
	int timestamps;
	int64_t deadline_ms;    /* 0: the client's request timeout; none when following */
	kube_cancel *cancel;
} kube_log_opts;

#define KUBE_LOG_OPTS_INIT { NULL, -1, 0, 0, 0, 0, 0, 0, NULL }

/* Stream a container's log to cb as it arrives (the callback contract of
 * kube_rest_data_cb). ERR_NOTFOUND when the pod is gone, ERR_INVALID (400)
 * when the container is waiting to start, ERR_AGAIN when a followed stream
 * breaks (a node or API failure, not the end of the log). */
int kube_pod_logs(kube_client *c, const char *ns, const char *pod, const kube_log_opts *opts,
		  kube_rest_data_cb cb, void *ud);
/* The same into out (capped by out->max: ERR_TOOBIG past it). */
int kube_pod_logs_buf(buf *out, kube_client *c, const char *ns, const char *pod,
		      const kube_log_opts *opts);

/* ---- access reviews (authorization.k8s.io/v1) -------------------------- */

typedef struct kube_access {
	const char *ns;          /* NULL/"" for cluster-scoped */
	const char *verb;        /* required */
	const char *group;       /* "" for core */
	const char *resource;    /* e.g. "pods"; NULL for a non-resource check */
	const char *subresource; /* e.g. "exec" */
	const char *name;
	const char *path;        /* non-resource URL ("/logs/") when resource is NULL */
} kube_access;

/* SelfSubjectAccessReview. *allowed 1/0; reason_out (may be NULL) gets the
 * status.reason or evaluationError (caller frees; may be NULL). */
int kube_access_review(int *allowed, char **reason_out, kube_client *c, const kube_access *a,
		       int64_t deadline_ms);
/* SelfSubjectRulesReview for ns. *out is the review's status
 * ({resourceRules, nonResourceRules, incomplete}); caller frees. */
int kube_rules_review(cJSON **out, kube_client *c, const char *ns, int64_t deadline_ms);

/* ---- TokenRequest (serviceaccounts/token) ----------------------------- */

/* Mint a token for a ServiceAccount. audiences may be NULL (the API
 * server's default); expiration_seconds 0 for the default. *token_out:
 * caller frees; *expiry_ms_out (may be NULL): wall-clock ms. */
int kube_token_request(char **token_out, int64_t *expiry_ms_out, kube_client *c, const char *ns,
		       const char *service_account, const char *const *audiences,
		       int64_t expiration_seconds, int64_t deadline_ms);

/* ---- Namespaces ------------------------------------------------------- */

int kube_namespace_get(cJSON **out, kube_client *c, const char *name, int64_t deadline_ms);
/* Create a namespace with optional labels ({"k":"v"} object, may be NULL).
 * ERR_CONFLICT when it exists. */
int kube_namespace_create(cJSON **out, kube_client *c, const char *name, const cJSON *labels,
			  int64_t deadline_ms);

/* 0 if s can be a path segment (name or namespace), else ERR_INVALID. */
int kube_check_segment(const char *s, const char *what);

#endif

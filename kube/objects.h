/*
 * kube/objects: the few fields of Pods and Jobs that callers act on, read
 * strictly out of the server's JSON into fixed-size structs (truncated,
 * never allocated). Everything else stays in the cJSON tree.
 *
 * Field meanings: core/v1 PodStatus and ContainerStatus, batch/v1
 * JobStatus (s/api/core/v1/types.go, s/api/batch/v1/types.go).
 */
#ifndef KUBE_OBJECTS_H
#define KUBE_OBJECTS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Parse a Kubernetes timestamp (RFC 3339: "2030-01-01T00:00:00Z", with an
 * optional fraction and Z or a +HH:MM/-HH:MM offset) into wall-clock ms.
 * The shape is checked strictly first, so a malformed value from the
 * network is ERR_INVALID and never reaches a lenient parser. */
int kube_time_parse(int64_t *out_ms, const char *s);

/* metadata fields, NULL when absent. Valid as long as the object. */
const char *kube_obj_name(const cJSON *obj);
const char *kube_obj_namespace(const cJSON *obj);
const char *kube_obj_uid(const cJSON *obj);
const char *kube_obj_resource_version(const cJSON *obj);
const char *kube_obj_label(const cJSON *obj, const char *key);
int kube_obj_deleting(const cJSON *obj); /* 1 when metadata.deletionTimestamp is set */

enum kube_container_state_kind {
	KUBE_CONTAINER_UNKNOWN = 0,
	KUBE_CONTAINER_WAITING,
	KUBE_CONTAINER_RUNNING,
	KUBE_CONTAINER_TERMINATED
};

typedef struct kube_container_status {
	char name[64];
	int ready;
	int restart_count;
	int state;             /* enum kube_container_state_kind */
	char reason[64];       /* waiting/terminated reason: ErrImagePull, OOMKilled, ... */
	char message[512];
	int exit_code;         /* terminated */
	int signal;            /* terminated, 0 if none */
	int last_terminated;   /* lastState.terminated present */
	int last_exit_code;
	char last_reason[64];
} kube_container_status;

/* Container statuses kept per list (the rest are not judged). A sandbox
 * pod has one container, plus what a mesh or admission webhook injects
 * (one or two). 8 rather than 16: a summary is 13 KiB instead of 24, and
 * every run waiting for its pod holds one (sandbox/wait.c wait_ctx.last:
 * 700 of them, 17 MiB of serve's heap, at the peak of bench part 4). */
#define KUBE_POD_MAX_CONTAINERS 8

typedef struct kube_pod_summary {
	char name[254];
	char uid[64];
	char phase[16];        /* Pending, Running, Succeeded, Failed, Unknown, "" */
	char reason[64];       /* status.reason (Evicted, DeadlineExceeded, ...) */
	char message[512];
	int ready;             /* condition Ready is True */
	int unschedulable;     /* condition PodScheduled False, reason Unschedulable */
	char sched_message[512];
	int deleting;
	size_t ncontainers;    /* status.containerStatuses (capped) */
	kube_container_status containers[KUBE_POD_MAX_CONTAINERS];
	size_t ninit;          /* status.initContainerStatuses (capped) */
	kube_container_status init[KUBE_POD_MAX_CONTAINERS];
} kube_pod_summary;

/* Fill *out from a Pod. 0, or ERR_INVALID when pod is not an object or a
 * present field has the wrong type. */
int kube_pod_summary_parse(kube_pod_summary *out, const cJSON *pod);

typedef struct kube_job_summary {
	char name[254];
	char uid[64];
	char controller_uid[64]; /* spec.selector's controller-uid, for selecting pods */
	int active, succeeded, failed;
	int complete;            /* condition Complete True */
	int failed_cond;         /* condition Failed True */
	char reason[64];         /* of the terminal condition (BackoffLimitExceeded, DeadlineExceeded) */
	char message[512];
	int deleting;
} kube_job_summary;

/* Fill *out from a Job. 0 or ERR_INVALID. */
int kube_job_summary_parse(kube_job_summary *out, const cJSON *job);

#endif

/*
 * wait: from a created Job to its pod being ready, by watch (DESIGN.md
 * step 4), failing fast with a reason and the Kubernetes Events quoted.
 */
#ifndef SANDBOX_WAIT_H
#define SANDBOX_WAIT_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "kube/client.h"
#include "kube/objects.h"
#include "sandbox/run.h"

typedef struct sandbox_wait_result {
	char pod[254];          /* the pod's name once seen */
	char pod_uid[64];
	char reason[64];        /* on failure: ImagePullBackOff, ErrImagePull,
				   CreateContainerConfigError, Unschedulable, PodFailed,
				   PodDeleted, QuotaExceeded, PodSecurityRejected,
				   FailedCreate, PodStartTimeout, DeadlineExceeded,
				   Cancelled, APIError */
	char message[4096];     /* a sentence, with the Events quoted */
} sandbox_wait_result;

/* What one observation of the pod means. */
enum sandbox_pod_verdict { SANDBOX_POD_WAIT = 0, SANDBOX_POD_READY, SANDBOX_POD_FAIL };

/* Fail-fast clock of one wait: when a tolerated bad state was first seen. */
typedef struct sandbox_wait_clock {
	int64_t pull_bad_since_ms;     /* ErrImagePull / ImagePullBackOff; 0 if not */
	int64_t unsched_since_ms;      /* Unschedulable; 0 if not */
} sandbox_wait_clock;

/*
 * Judge a pod summary at now_ms (clock_mono_ms). READY when Running and its
 * container ready; FAIL (reason/message set in *out) when Failed,
 * Succeeded (the keep-alive ended), CreateContainerConfigError (or another
 * waiting reason that never resolves by itself: InvalidImageName,
 * CreateContainerError), an image pull failing for longer than the pull
 * grace, or Unschedulable for longer than its grace; else WAIT. The clock
 * remembers when a tolerated state began; *next_check_ms (may be NULL) gets
 * the time a grace ends (0 if none pending), so the caller wakes then even
 * without an event.
 */
int sandbox_pod_assess(sandbox_wait_result *out, sandbox_wait_clock *clk,
		       const kube_pod_summary *pod, const sandbox_config *cfg, int64_t now_ms,
		       int64_t *next_check_ms);

/* Classify a Job's FailedCreate event message: QuotaExceeded ("exceeded
 * quota"), PodSecurityRejected ("violates PodSecurity"), else FailedCreate. */
const char *sandbox_failed_create_reason(const char *message);

/*
 * Wait for the pod of job (the object returned by the create). Watches the
 * pods selected by the Job's spec.selector (its controller-uid label) with
 * one WATCH and no LIST (the existing pod arrives as a synthetic ADDED);
 * only when no pod has appeared 2 s in, also the Job's Events (a
 * FailedCreate there means no pod will come: quota, Pod Security), again
 * by one WATCH. Stops at cfg->start_timeout_seconds from now,
 * at run_deadline_ms (0: none), or when cancel is requested.
 * 0 when ready (out->pod set), else a negative code with out->reason and
 * out->message set: ERR_FAIL (the pod cannot start), ERR_TIMEOUT,
 * ERR_CANCELLED, or an API error code.
 */
int sandbox_wait_pod(sandbox_wait_result *out, kube_client *kc, const sandbox_config *cfg,
		     const cJSON *job, sandbox_cancel *cancel, int64_t run_deadline_ms);

/* Append to msg the pod's recent Warning Events ("; events: Failed: ...")
 * as a person would read them in `kubectl describe`. Best effort. */
void sandbox_quote_events(char *msg, size_t size, kube_client *kc, const char *ns,
			  const char *kind, const char *name);

#endif

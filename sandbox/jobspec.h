/*
 * jobspec: the batch/v1 Job one run gets (DESIGN.md "The life of a run",
 * step 3), built as a cJSON tree for kube_job_create().
 */
#ifndef SANDBOX_JOBSPEC_H
#define SANDBOX_JOBSPEC_H

#include <cjson/cJSON.h>

#include "sandbox/run.h"

/* The labels every sandbox Job and pod carries. */
#define SANDBOX_LABEL_APP "app"
#define SANDBOX_LABEL_APP_VALUE "ci-fixer-sandbox"
#define SANDBOX_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define SANDBOX_LABEL_MANAGED_BY_VALUE "ci-fixer"
#define SANDBOX_LABEL_RUN_ID "ci-fixer.io/run-id"
#define SANDBOX_LABEL_OWNER "ci-fixer.io/owner"
#define SANDBOX_ANNOTATION_IDEMPOTENCY "ci-fixer.io/idempotency-key"

/* Mount points of the two emptyDir volumes. */
#define SANDBOX_WORKSPACE "/workspace"
#define SANDBOX_TMP "/tmp"

/* The keep-alive: logs one line, then sleeps for $1 seconds (the Job's
 * activeDeadlineSeconds) and exits by itself. It is the container's PID 1,
 * which the kernel spares from signals it has no handler for: an `exec
 * sleep` would ignore the kubelet's SIGTERM and every pod would take its
 * whole grace period to go. So sh keeps a TERM handler and waits. */
#define SANDBOX_KEEPALIVE_SCRIPT \
	"echo \"ci-fixer sandbox: keep-alive for $1 s\"; trap 'exit 0' TERM; sleep \"$1\" & wait"

/* The run's timeout in seconds after defaults: req->timeout_seconds or
 * cfg->default_timeout_seconds. */
int sandbox_run_timeout(const sandbox_config *cfg, const sandbox_request *req);

/* Resolved resources: requests and limits as Kubernetes quantity strings.
 * A request's cpu/memory sets both request and limit (Guaranteed QoS);
 * otherwise the configured defaults apply. Values above the configured
 * maxima are refused (ERR_INVALID naming the field). */
typedef struct sandbox_resources {
	char cpu_request[32], cpu_limit[32];
	char memory_request[32], memory_limit[32];
} sandbox_resources;
int sandbox_resources_resolve(sandbox_resources *out, const sandbox_config *cfg,
			      const sandbox_request *req);

/* The label selector that finds every Job (and pod) of this installation:
 * "app.kubernetes.io/managed-by=ci-fixer,ci-fixer.io/owner=OWNER".
 * Caller frees. NULL on allocation failure. */
char *sandbox_owner_selector(const sandbox_config *cfg);

/*
 * Build the Job for run_id. Hardened as Pod Security "restricted" requires
 * (numeric non-root runAsUser/runAsGroup, seccomp RuntimeDefault, drop ALL,
 * allowPrivilegeEscalation false, read-only root filesystem with emptyDir
 * volumes at /workspace and /tmp), no ServiceAccount token, no service
 * links, backoffLimit 0, restartPolicy Never, ttlSecondsAfterFinished,
 * activeDeadlineSeconds = run timeout + grace and a keep-alive command
 * (sleep for the same number of seconds, the number passed as an argument)
 * so the pod ends on its own if the runner dies. The run's env goes into the container's env.
 * The configured imagePullPolicy, ServiceAccount, nodeSelector, tolerations,
 * affinity and GPUs (sandbox/placement.h) are checked and added.
 * Caller owns *out (cJSON_Delete). 0, ERR_INVALID (request or config
 * invalid, message names the field) or ERR_NOMEM.
 */
int sandbox_jobspec_build(cJSON **out, const sandbox_config *cfg, const sandbox_request *req,
			  const char *run_id);

#endif

/*
 * jobs: creating a run's Job so that transient API failures do not end the
 * run (the delete, list and reaper are declared in sandbox/run.h).
 */
#ifndef SANDBOX_JOBS_H
#define SANDBOX_JOBS_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "kube/client.h"
#include "sandbox/run.h"

/* Attempts of the Job POST, and the pause before the 2nd, 3rd, ... */
#define SANDBOX_CREATE_ATTEMPTS 4
#define SANDBOX_CREATE_BACKOFF_MS 500 /* doubled after each retry: 0.5 s, 1 s, 2 s ... */
#define SANDBOX_CREATE_BACKOFF_MAX_MS 8000
/* One attempt's own deadline (at most the client's request timeout): an
 * attempt that got no answer by then is abandoned and the next one finds
 * out, through 409 and adoption, whether the first went through. */
#define SANDBOX_CREATE_ATTEMPT_MS 15000

/*
 * POST spec (the Job named sandbox_job_name(run_id), labelled with run_id
 * and cfg->owner by sandbox_jobspec_build) and set *out to the Job.
 * A transient failure (ERR_AGAIN: 5xx, 429, reset or empty reply) and an
 * attempt that got no answer within its own deadline (the smaller of
 * SANDBOX_CREATE_ATTEMPT_MS and the client's request timeout: the POST's
 * outcome is unknown) are retried with backoff: failures up to
 * SANDBOX_CREATE_ATTEMPTS attempts, attempts without an answer (a slow,
 * not a failing, API server) without a count; always within deadline_ms,
 * stopping when cancel (may be NULL)
 * is requested: the name is deterministic, so a retry cannot create a
 * second Job. A 409
 * AlreadyExists (on any attempt) GETs the Job and adopts it when its
 * run-id and owner labels are this run's (an earlier attempt, or a
 * restarted runner, created it); *adopted is then 1.
 * Returns 0; ERR_CONFLICT when a Job of that name belongs to someone else
 * or is being deleted (it must not be torn down by this run);
 * ERR_CANCELLED; or the last attempt's error (err_msg() says why and how
 * many attempts were made).
 */
int sandbox_job_create(cJSON **out, int *adopted, kube_client *kc, const sandbox_config *cfg,
		       const cJSON *spec, const char *run_id, sandbox_cancel *cancel,
		       int64_t deadline_ms);

#endif

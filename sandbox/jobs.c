/*
 * jobs: the backstops around a run's Job: delete it (every path of a run
 * ends here), list this installation's Jobs, and the reaper that deletes
 * the ones no live run owns (a runner that died, a Helm rollback).
 *
 * DELETE always carries propagationPolicy=Background: without it batch/v1
 * orphans the pods (pkg/registry/batch/job/strategy.go
 * DefaultGarbageCollectionPolicy), and Foreground leaves the Job behind,
 * Terminating, until its pods are gone (gitlab-runner MR !4339).
 *
 * Creating the Job retries what the REST layer does not: client-go never
 * retries a POST after a 500 without Retry-After or a dropped connection,
 * since the server may have acted (k8s.io/client-go/rest/request.go
 * request(): isErrRetryableFunc only covers GET-like verbs;
 * checkWait() needs Retry-After). Here the Job's name is derived from the
 * run id and its labels carry the run id and owner, so a retry is safe:
 * it either creates the Job or gets 409 AlreadyExists, and then a GET
 * tells whether the Job is this run's (adopt it) or someone else's
 * (refuse, and never delete it). metadata.name is unique per namespace
 * and resource (apiserver registry/generic/registry/store.go Create
 * returns AlreadyExists), which is what makes this exactly-once.
 * The same holds for a POST that got no answer in time: an attempt has a
 * deadline of its own, shorter than the create's, so a POST stuck in an
 * overloaded API server is abandoned and the next attempt either creates
 * the Job or adopts the one the stuck POST made (bench part 4: 116 of
 * 1,000 runs ended APIUnavailable on a single 30 s POST timeout).
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kube/objects.h"
#include "kube/resources.h"
#include "sandbox/jobs.h"
#include "sandbox/jobspec.h"
#include "sandbox/run.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

/* DELETE name (Background) within the teardown deadline. 0 also when it
 * was already gone; *gone (may be NULL) then says so. */
static int delete_named(int *gone, kube_client *kc, const sandbox_config *cfg, const char *name)
{
	int64_t deadline = clock_mono_ms() +
			   (int64_t)(cfg->teardown_timeout_seconds > 0 ? cfg->teardown_timeout_seconds : 10) * 1000;
	int rc;

	if (gone)
		*gone = 0;
	for (;;) {
		rc = kube_job_delete(kc, cfg->namespace_, name, "Background", deadline);
		if (rc == ERR_NOTFOUND && gone)
			*gone = 1;
		if (rc == 0 || rc == ERR_NOTFOUND)
			return 0;
		/* writes are not retried by the REST layer after a transport
		 * failure (client-go does the same); a DELETE is idempotent, so
		 * teardown retries it within its own deadline */
		if (rc != ERR_AGAIN || clock_remaining_ms(deadline) < 500)
			return err_wrap(rc, "deleting Job %s", name);
		clock_sleep_ms(500);
	}
}

int sandbox_job_delete(kube_client *kc, const sandbox_config *cfg, const char *run_id)
{
	char name[64];
	int rc;

	if ((rc = sandbox_job_name(name, run_id)) != 0)
		return rc;
	return delete_named(NULL, kc, cfg, name);
}

void sandbox_job_refs_free(sandbox_job_ref *refs, size_t count)
{
	for (size_t i = 0; refs && i < count; i++) {
		free(refs[i].name);
		free(refs[i].run_id);
	}
	free(refs);
}

int sandbox_jobs_list(sandbox_job_ref **out, size_t *count, kube_client *kc,
		      const sandbox_config *cfg)
{
	char *sel = sandbox_owner_selector(cfg);
	cJSON *list = NULL;
	const cJSON *it;
	sandbox_job_ref *refs = NULL;
	size_t n = 0, cap;
	int rc;

	*out = NULL;
	*count = 0;
	if (!sel)
		return err_set(ERR_NOMEM, "out of memory");
	rc = kube_job_list(&list, kc, cfg->namespace_, sel, 0);
	free(sel);
	if (rc)
		return err_wrap(rc, "listing sandbox Jobs");
	cap = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "items"));
	refs = calloc(cap ? cap : 1, sizeof(*refs));
	if (!refs) {
		cJSON_Delete(list);
		return err_set(ERR_NOMEM, "out of memory");
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "items")) {
		kube_job_summary js;
		const char *name = kube_obj_name(it), *id = kube_obj_label(it, SANDBOX_LABEL_RUN_ID);
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
		const cJSON *ct = cJSON_GetObjectItemCaseSensitive(md, "creationTimestamp");

		if (!name || n >= cap)
			continue;
		refs[n].name = str_dup(name);
		refs[n].run_id = str_dup(id ? id : "");
		if (!refs[n].name || !refs[n].run_id) {
			sandbox_job_refs_free(refs, n + 1);
			cJSON_Delete(list);
			return err_set(ERR_NOMEM, "out of memory");
		}
		if (cJSON_IsString(ct))
			clock_parse_rfc3339(&refs[n].created_ms, ct->valuestring);
		if (kube_job_summary_parse(&js, it) == 0)
			refs[n].finished = js.complete || js.failed_cond;
		refs[n].deleting = kube_obj_deleting(it);
		n++;
	}
	cJSON_Delete(list);
	*out = refs;
	*count = n;
	return 0;
}

int sandbox_reap(size_t *deleted, kube_client *kc, const sandbox_config *cfg,
		 sandbox_owned_fn owned, void *ctx)
{
	sandbox_job_ref *refs = NULL;
	size_t n = 0, done = 0;
	int rc, first = 0;
	char first_msg[512] = "";

	if (deleted)
		*deleted = 0;
	if ((rc = sandbox_jobs_list(&refs, &n, kc, cfg)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		int gone = 0;

		if (refs[i].deleting)
			continue;
		if (owned && refs[i].run_id[0] && owned(ctx, refs[i].run_id))
			continue;
		rc = delete_named(&gone, kc, cfg, refs[i].name);
		if (rc == 0) {
			/* gone already: its run's own teardown got there first */
			done += !gone;
		} else if (!first) {
			first = rc;
			str_copy(first_msg, sizeof(first_msg), err_msg());
		}
	}
	sandbox_job_refs_free(refs, n);
	if (deleted)
		*deleted = done;
	if (first)
		return err_set(first, "reaper: %s", first_msg);
	return 0;
}

/* Sleep ms, or less if the deadline or a cancel comes first. 1 when
 * cancelled. */
static int pause_ms(int64_t ms, sandbox_cancel *cancel)
{
	if (!cancel) {
		clock_sleep_ms(ms);
		return 0;
	}
	if (sandbox_cancel_requested(cancel))
		return 1;
	{
		struct pollfd p = { .fd = sandbox_cancel_fd(cancel), .events = POLLIN };

		if (p.fd >= 0)
			poll(&p, 1, (int)ms);
		else
			clock_sleep_ms(ms);
	}
	return sandbox_cancel_requested(cancel);
}

/* After a 409: GET name and adopt it if its labels are this run's. */
static int adopt(cJSON **out, kube_client *kc, const sandbox_config *cfg, const char *name,
		 const char *run_id, int64_t deadline_ms)
{
	cJSON *job = NULL;
	const char *id, *owner;
	int rc;

	rc = kube_job_get(&job, kc, cfg->namespace_, name, deadline_ms);
	if (rc == ERR_NOTFOUND) /* deleted between the POST and the GET */
		return err_set(ERR_AGAIN, "Job %s existed, then was gone", name);
	if (rc)
		return err_wrap(rc, "reading the existing Job %s", name);
	id = kube_obj_label(job, SANDBOX_LABEL_RUN_ID);
	owner = kube_obj_label(job, SANDBOX_LABEL_OWNER);
	if (!id || strcmp(id, run_id) != 0 || !owner || strcmp(owner, cfg->owner) != 0) {
		rc = err_set(ERR_CONFLICT,
			     "a Job named %s already exists and is not this run's (its %s label is "
			     "\"%s\", its %s label \"%s\"; this run is \"%s\" of \"%s\"): it was left "
			     "untouched",
			     name, SANDBOX_LABEL_RUN_ID, id ? id : "", SANDBOX_LABEL_OWNER,
			     owner ? owner : "", run_id, cfg->owner);
		cJSON_Delete(job);
		return rc;
	}
	if (kube_obj_deleting(job)) {
		cJSON_Delete(job);
		return err_set(ERR_CONFLICT, "the Job %s of this run id is being deleted", name);
	}
	*out = job;
	return 0;
}

int sandbox_job_create(cJSON **out, int *adopted, kube_client *kc, const sandbox_config *cfg,
		       const cJSON *spec, const char *run_id, sandbox_cancel *cancel,
		       int64_t deadline_ms)
{
	char name[64];
	int64_t backoff = SANDBOX_CREATE_BACKOFF_MS;
	int64_t per = SANDBOX_CREATE_ATTEMPT_MS;
	int rc, attempt, failed = 0; /* failed: attempts that were answered, or could not connect */

	*out = NULL;
	*adopted = 0;
	if ((rc = sandbox_job_name(name, run_id)) != 0)
		return rc;
	if (kube_client_request_timeout_ms(kc) > 0 && kube_client_request_timeout_ms(kc) < per)
		per = kube_client_request_timeout_ms(kc);
	for (attempt = 1;; attempt++) {
		int64_t d = clock_mono_ms() + per;

		if (d > deadline_ms)
			d = deadline_ms;
		int slow = 0;
		rc = kube_job_create(out, kc, cfg->namespace_, spec, d);
		/* no answer within the attempt's own deadline: the POST may or
		 * may not have been acted on (the API server may still be
		 * working on it); the next attempt finds out through 409 */
		if (rc == ERR_TIMEOUT && d < deadline_ms) {
			rc = ERR_AGAIN;
			slow = 1;
		}
		if (rc == ERR_CONFLICT) {
			d = clock_mono_ms() + per;
			if (d > deadline_ms)
				d = deadline_ms;
			rc = adopt(out, kc, cfg, name, run_id, d);
			if (rc == 0) {
				*adopted = 1;
				return 0;
			}
			if (rc == ERR_TIMEOUT && d < deadline_ms) {
				rc = ERR_AGAIN;
				slow = 1;
			}
		}
		if (rc == 0 || rc != ERR_AGAIN)
			return rc;
		/* An API server that answers errors, or cannot be reached, gets
		 * SANDBOX_CREATE_ATTEMPTS tries. One that is reachable but slow
		 * (no answer within the attempt's deadline) is tried until the
		 * run's start deadline: it is working, only late, and a retry
		 * is safe (bench part 4: a few of 1,000 runs at once met four
		 * slow attempts in a row and ended APIUnavailable). */
		if (!slow)
			failed++;
		if (failed >= SANDBOX_CREATE_ATTEMPTS || clock_remaining_ms(deadline_ms) < backoff + 1000)
			return err_wrap(rc, "after %d attempt%s", attempt, attempt > 1 ? "s" : "");
		if (pause_ms(backoff, cancel))
			return err_set(ERR_CANCELLED, "cancelled while creating the Job %s", name);
		if (backoff < SANDBOX_CREATE_BACKOFF_MAX_MS)
			backoff *= 2;
	}
}

/*
 * sandbox/run: one run's life on Kubernetes, top to bottom
 * (DESIGN.md "The life of a run", steps 2 to 8).
 *
 *   validate -> workspace (libgit2; nothing in the cluster yet)
 *   -> create the Job -> wait for its pod (watch) -> upload (exec stdin)
 *   -> each command (exec) -> collect: container log, workspace (exec
 *   stdout) diffed into a patch -> DELETE the Job (Background)
 *
 * Every step after the create leads to the teardown, whatever happened:
 * failure, timeout, cancellation or an API error. A create that failed in
 * transport may still have created the Job, so the teardown runs after
 * any create attempt (a NotFound there is fine). The teardown has its own
 * deadline and ignores the cancel token: a cancelled run must still
 * delete its Job.
 *
 * The phase is decided once at the end, from what happened, in this order:
 * Cancelled (the token was set), Error (an infrastructure step failed: the
 * reason names it), Failed (a command exited non-zero or timed out, or the
 * run's deadline passed), Succeeded. Commands that did not run are
 * "skipped".
 *
 * Threads: everything here runs on the caller's thread; sandbox/wait.c
 * adds one helper thread for the Job's Events while waiting.
 */
#include "sandbox/run.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/objects.h"
#include "kube/resources.h"
#include "sandbox/command.h"
#include "sandbox/jobs.h"
#include "sandbox/jobspec.h"
#include "sandbox/wait.h"
#include "sandbox/workspace.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

typedef struct run_state {
	sandbox_result *res;
	const sandbox_config *cfg;
	const sandbox_request *req;
	const sandbox_callbacks *cb;
	sandbox_cancel *cancel;
	kube_client *kc;
	int64_t t0;               /* clock_mono_ms() at entry */
	int64_t deadline;         /* the run's timeout */
	enum sandbox_phase phase; /* the phase shown while running */
	int errored;              /* an infrastructure failure: reason/message set */
	int failed;               /* a command failed: reason/message set */
	int deadline_hit;
	char pod[254];
} run_state;

static void set_str(char **dst, const char *s)
{
	char *n = str_dup(s ? s : "");

	if (n) {
		free(*dst);
		*dst = n;
	}
}

static void step(run_state *st, enum sandbox_phase phase, enum sandbox_step s, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void step(run_state *st, enum sandbox_phase phase, enum sandbox_step s, const char *fmt, ...)
{
	char msg[1024] = "";
	va_list ap;

	st->phase = phase;
	st->res->phase = phase;
	if (!st->cb || !st->cb->on_phase)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->cb->on_phase(st->cb->ctx, phase, s, clock_mono_ms() - st->t0, msg);
}

/* An infrastructure failure; the first one is kept. */
static void fail_error(run_state *st, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail_error(run_state *st, const char *reason, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	if (st->errored)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->errored = 1;
	set_str(&st->res->reason, reason);
	set_str(&st->res->message, msg);
}

/* A command failure (the CI result); the first one is kept. */
static void fail_command(run_state *st, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail_command(run_state *st, const char *reason, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (st->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->failed = 1;
	set_str(&st->res->reason, reason);
	set_str(&st->res->message, msg);
}

static int cancelled(run_state *st)
{
	return sandbox_cancel_requested(st->cancel);
}

/* "npm test" / "sh -c 'npm run lint'" for messages, cut to fit. */
static void describe(char *out, size_t size, const sandbox_command *c)
{
	size_t o = 0;

	out[0] = '\0';
	if (c->shell) {
		snprintf(out, size, "%s", c->shell);
	} else {
		for (size_t i = 0; i < c->argc && o + 1 < size; i++)
			o += (size_t)snprintf(out + o, size - o, "%s%s", i ? " " : "", c->argv[i]);
	}
	if (strlen(out) > 80)
		memcpy(out + 77, "...", 4);
}

static int results_init(sandbox_result *res, const sandbox_request *req)
{
	res->commands = calloc(req->command_count, sizeof(*res->commands));
	if (!res->commands)
		return ERR_NOMEM;
	res->command_count = req->command_count;
	for (size_t i = 0; i < req->command_count; i++) {
		const sandbox_command *c = &req->commands[i];
		sandbox_command_result *r = &res->commands[i];

		r->outcome = SANDBOX_OUTCOME_SKIPPED;
		r->exit_code = -1;
		r->out.data = str_dup("");
		r->err.data = str_dup("");
		if (!r->out.data || !r->err.data)
			return ERR_NOMEM;
		/* sha256 of the empty stream, so a skipped command's fields are valid */
		str_copy(r->out.sha256, sizeof(r->out.sha256),
			 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
		str_copy(r->err.sha256, sizeof(r->err.sha256), r->out.sha256);
		if (c->shell) {
			if (!(r->shell = str_dup(c->shell)))
				return ERR_NOMEM;
		} else {
			r->argv = calloc(c->argc + 1, sizeof(char *));
			if (!r->argv)
				return ERR_NOMEM;
			r->argc = c->argc;
			for (size_t a = 0; a < c->argc; a++)
				if (!(r->argv[a] = str_dup(c->argv[a])))
					return ERR_NOMEM;
		}
	}
	return 0;
}

/* After a lost stream, or a command killed by a signal: is the pod still
 * there, and if its container ended, why? Fills reason/extra for the
 * message; returns 1 when the pod itself is the cause (gone, being
 * deleted, its container or the pod ended), 0 when the pod looks fine. */
static int why_lost(run_state *st, char *reason, size_t rsize, char *extra, size_t esize)
{
	int cause = 0;

	cJSON *pod = NULL;
	kube_pod_summary *s;
	int rc = kube_pod_get(&pod, st->kc, st->cfg->namespace_, st->pod, clock_mono_ms() + 5000);

	str_copy(reason, rsize, "StreamLost");
	extra[0] = '\0';
	if (rc == ERR_NOTFOUND) {
		str_copy(reason, rsize, "PodDeleted");
		snprintf(extra, esize, "; the sandbox pod %s no longer exists (deleted from outside?)",
			 st->pod);
		return 1;
	}
	if (rc != 0)
		return 0;
	s = malloc(sizeof(*s));
	if (s && kube_pod_summary_parse(s, pod) == 0) {
		cause = 1;
		if (s->deleting) {
			str_copy(reason, rsize, "PodDeleted");
			snprintf(extra, esize, "; the sandbox pod %s is being deleted (from outside?)",
				 st->pod);
		} else if (s->ncontainers && s->containers[0].state == KUBE_CONTAINER_TERMINATED) {
			const kube_container_status *c = &s->containers[0];

			if (strcmp(c->reason, "OOMKilled") == 0)
				str_copy(reason, rsize, "OOMKilled");
			snprintf(extra, esize, "; the sandbox container terminated (%s, exit code %d)",
				 c->reason[0] ? c->reason : "terminated", c->exit_code);
		} else if (strcmp(s->phase, "Failed") == 0 || strcmp(s->phase, "Succeeded") == 0) {
			snprintf(extra, esize, "; the sandbox pod ended (%.64s%s%.300s)",
				 s->reason[0] ? s->reason : s->phase, s->message[0] ? ": " : "", s->message);
		} else {
			cause = 0;
		}
	}
	free(s);
	cJSON_Delete(pod);
	return cause;
}

static void run_commands(run_state *st)
{
	const sandbox_request *req = st->req;

	for (size_t i = 0; i < req->command_count; i++) {
		sandbox_command_result *r = &st->res->commands[i];
		const sandbox_command *c = &req->commands[i];
		char what[96];
		int end;

		describe(what, sizeof(what), c);
		if (cancelled(st))
			return;
		if (clock_remaining_ms(st->deadline) == 0) {
			st->deadline_hit = 1;
			fail_command(st, "DeadlineExceeded", "the run's timeout of %d s passed before "
				     "command %zu (%s) could start", sandbox_run_timeout(st->cfg, req), i + 1,
				     what);
			return;
		}
		step(st, SANDBOX_RUNNING, SANDBOX_STEP_RUNNING, "command %zu/%zu: %s", i + 1,
		     req->command_count, what);
		if (st->cb && st->cb->on_command_start)
			st->cb->on_command_start(st->cb->ctx, i, c);
		end = sandbox_command_run(r, st->kc, st->cfg, st->pod, req, i, st->deadline, st->cb,
					  st->cancel);
		if (st->cb && st->cb->on_command_done)
			st->cb->on_command_done(st->cb->ctx, i, r);
		switch (end) {
		case SANDBOX_END_EXITED:
			if (r->exit_code == 0)
				continue;
			/* killed by a signal: the pod being deleted or its container
			 * killed (OOM) would look like this; then the exit code is
			 * real but the cause is not the user's code */
			if (r->exit_code > 128) {
				char reason[64], extra[512];

				if (why_lost(st, reason, sizeof(reason), extra, sizeof(extra))) {
					fail_error(st, strcmp(reason, "StreamLost") == 0 ? "PodFailed" : reason,
						   "command %zu (%s) was killed (exit status %d)%s", i + 1, what,
						   r->exit_code, extra);
					return;
				}
			}
			if (c->continue_on_error)
				continue;
			fail_command(st, "CommandFailed", "command %zu (%s) exited with status %d%s%s", i + 1,
				     what, r->exit_code, r->message ? ": " : "", r->message ? r->message : "");
			return;
		case SANDBOX_END_TIMEOUT:
			if (c->continue_on_error)
				continue;
			fail_command(st, "CommandTimeout", "command %zu (%s) timed out after %d s", i + 1,
				     what, c->timeout_seconds);
			return;
		case SANDBOX_END_DEADLINE:
			if (clock_remaining_ms(st->deadline) > 0) {
				/* a timeout that was not the run's: never blame
				 * the run's deadline (or the user) for it */
				fail_error(st, "ExecFailed", "command %zu (%s): %s", i + 1, what,
					   r->message ? r->message : "exec timed out");
				return;
			}
			st->deadline_hit = 1;
			fail_command(st, "DeadlineExceeded", "the run's timeout of %d s passed during "
				     "command %zu (%s)", sandbox_run_timeout(st->cfg, req), i + 1, what);
			return;
		case SANDBOX_END_CANCELLED:
			return;
		case SANDBOX_END_LOST: {
			char reason[64], extra[512];

			why_lost(st, reason, sizeof(reason), extra, sizeof(extra));
			fail_error(st, reason, "command %zu (%s): %s%s", i + 1, what,
				   r->message ? r->message : "stream lost", extra);
			return;
		}
		default: {
			char reason[64], extra[512];

			why_lost(st, reason, sizeof(reason), extra, sizeof(extra));
			fail_error(st, strcmp(reason, "StreamLost") == 0 ? "ExecFailed" : reason,
				   "command %zu (%s): %s%s", i + 1, what,
				   r->message ? r->message : "exec failed", extra);
			return;
		}
		}
	}
}

static const char *create_reason(int rc)
{
	switch (rc) {
	case ERR_FORBIDDEN: return "Forbidden";
	case ERR_UNAUTHORIZED: return "Unauthorized";
	case ERR_INVALID: return "JobRejected";
	case ERR_CONFLICT: return "JobExists";
	case ERR_TIMEOUT:
	case ERR_AGAIN: return "APIUnavailable";
	default: return "JobCreateFailed";
	}
}

static void collect(run_state *st, sandbox_workspace *ws)
{
	const sandbox_request *req = st->req;
	int tail = req->collect.log_tail_lines >= 0 ? req->collect.log_tail_lines
						    : st->cfg->log_tail_lines;
	int want_patch = req->collect.patch != 0;
	/* collection may use the Job's grace beyond the run's timeout: the
	 * Job's activeDeadlineSeconds is timeout + grace */
	int64_t grace = (int64_t)(st->cfg->grace_seconds > 10 ? st->cfg->grace_seconds - 5 : 5) * 1000;
	int64_t dl = st->deadline + grace;
	int rc;

	step(st, SANDBOX_COLLECTING, SANDBOX_STEP_COLLECTING, "container log%s",
	     want_patch ? " and workspace" : "");
	if (tail > 0) {
		char *logs = NULL;
		size_t len = 0;

		if (sandbox_logs(&logs, &len, st->kc, st->cfg, st->pod, tail,
				 clock_mono_ms() + 15000) == 0) {
			free(st->res->logs);
			st->res->logs = logs;
			st->res->logs_len = len;
		}
		/* a log that cannot be read does not change the result */
	}
	if (!want_patch || cancelled(st))
		return;
	rc = sandbox_download(st->kc, st->cfg, st->pod, ws, st->cancel, dl);
	if (rc == 0) {
		char *patch = NULL;
		size_t len = 0;

		rc = sandbox_workspace_collect_patch(&patch, &len, ws, st->cfg->patch_cap);
		if (rc == 0) {
			free(st->res->patch);
			st->res->patch = patch;
			st->res->patch_len = len;
			return;
		}
	}
	if (cancelled(st))
		return;
	if (st->failed) {
		/* the run already failed on a command: that stays its result */
		char *m = str_printf("%s; collecting the changes failed too: %s", st->res->message,
				     err_msg());

		if (m) {
			free(st->res->message);
			st->res->message = m;
		}
		return;
	}
	if (rc == ERR_TOOBIG)
		fail_error(st, "PatchTooLarge", "collecting the changes: %s", err_msg());
	else
		fail_error(st, "CollectFailed", "collecting the changes: %s", err_msg());
}

static void teardown(run_state *st, const char *job_name)
{
	int64_t t = clock_mono_ms();
	int rc;

	step(st, st->phase, SANDBOX_STEP_TEARDOWN, "deleting Job %s", job_name);
	rc = sandbox_job_delete(st->kc, st->cfg, st->res->id);
	st->res->timings.teardown_ms = clock_mono_ms() - t;
	if (rc) {
		char *m = str_printf("%s%sthe Job %s could not be deleted (%s); the reaper and its "
				     "ttlSecondsAfterFinished will remove it",
				     st->res->message, st->res->message[0] ? "; " : "", job_name,
				     err_msg());
		if (m) {
			free(st->res->message);
			st->res->message = m;
		}
	}
}

int sandbox_run(sandbox_result **out, kube_client *kc, const sandbox_config *cfg,
		const sandbox_request *req, const char *run_id, const sandbox_callbacks *cb,
		sandbox_cancel *cancel)
{
	run_state st;
	sandbox_workspace *ws = NULL;
	cJSON *spec = NULL, *created = NULL;
	char job_name[64] = "";
	int created_attempted = 0, rc, ret = 0;
	int64_t t;

	memset(&st, 0, sizeof(st));
	*out = NULL;
	st.res = sandbox_result_new(run_id);
	if (!st.res)
		return err_set(ERR_NOMEM, "out of memory");
	st.cfg = cfg;
	st.req = req;
	st.cb = cb;
	st.cancel = cancel;
	st.kc = kc;
	st.t0 = clock_mono_ms();
	st.res->started_at_ms = clock_wall_ms();
	*out = st.res;

	if ((rc = sandbox_request_validate(cfg, req)) != 0 ||
	    (rc = sandbox_job_name(job_name, run_id)) != 0) {
		fail_error(&st, "InvalidRequest", "%s", err_msg());
		ret = ERR_INVALID;
		goto finish;
	}
	st.deadline = st.t0 + (int64_t)sandbox_run_timeout(cfg, req) * 1000;
	st.res->job.namespace_ = str_dup(cfg->namespace_);
	st.res->job.name = str_dup(job_name);
	st.res->image = str_dup(req->image ? req->image : cfg->default_image);
	if (!st.res->job.namespace_ || !st.res->job.name || !st.res->image ||
	    results_init(st.res, req) != 0) {
		fail_error(&st, "OutOfMemory", "out of memory");
		ret = ERR_NOMEM;
		goto finish;
	}

	/* 2. workspace */
	step(&st, SANDBOX_PREPARING, SANDBOX_STEP_WORKSPACE, "%s%s%s",
	     req->repo.url ? req->repo.url : "empty workspace",
	     req->repo.url && (req->repo.commit || req->repo.ref) ? " at " : "",
	     req->repo.url ? (req->repo.commit ? req->repo.commit : req->repo.ref ? req->repo.ref : "") : "");
	t = clock_mono_ms();
	rc = sandbox_workspace_prepare(&ws, cfg, &req->repo, cancel, st.deadline);
	st.res->timings.workspace_ms = clock_mono_ms() - t;
	if (rc) {
		if (rc == ERR_CANCELLED || cancelled(&st))
			goto finish;
		if (rc == ERR_TIMEOUT) {
			st.deadline_hit = 1;
			fail_command(&st, "DeadlineExceeded", "%s", err_msg());
		} else if (rc == ERR_NOTFOUND) {
			fail_error(&st, "RefNotFound", "%s", err_msg());
		} else if (rc == ERR_TOOBIG) {
			fail_error(&st, "WorkspaceTooLarge", "%s", err_msg());
		} else {
			fail_error(&st, "CloneFailed", "preparing the workspace from %s: %s",
				   req->repo.url ? req->repo.url : "(none)", err_msg());
		}
		goto finish;
	}
	if (sandbox_workspace_commit(ws))
		st.res->commit = str_dup(sandbox_workspace_commit(ws));
	if (cancelled(&st))
		goto finish;

	/* 3. the Job */
	step(&st, SANDBOX_PREPARING, SANDBOX_STEP_CREATING, "Job %s/%s", cfg->namespace_, job_name);
	if ((rc = sandbox_jobspec_build(&spec, cfg, req, run_id)) != 0) {
		fail_error(&st, "InvalidRequest", "%s", err_msg());
		goto finish;
	}
	t = clock_mono_ms();
	created_attempted = 1;
	{
		int adopted = 0;

		rc = sandbox_job_create(&created, &adopted, kc, cfg, spec, run_id, cancel, st.deadline);
		if (adopted)
			step(&st, SANDBOX_PREPARING, SANDBOX_STEP_CREATING,
			     "adopted the existing Job %s of this run", job_name);
	}
	st.res->timings.create_ms = clock_mono_ms() - t;
	if (rc == ERR_CANCELLED || (rc && cancelled(&st)))
		goto finish;
	if (rc) {
		if (rc == ERR_CONFLICT) /* not ours to delete: another run's Job */
			created_attempted = 0;
		fail_error(&st, create_reason(rc), "creating the Job %s: %s", job_name, err_msg());
		goto finish;
	}

	/* 4. the pod */
	step(&st, SANDBOX_PREPARING, SANDBOX_STEP_WAITING, "pod of Job %s", job_name);
	{
		sandbox_wait_result *wr = calloc(1, sizeof(*wr));

		if (!wr) {
			fail_error(&st, "OutOfMemory", "out of memory");
			goto finish;
		}
		t = clock_mono_ms();
		rc = sandbox_wait_pod(wr, kc, cfg, created, cancel, st.deadline);
		st.res->timings.pod_ready_ms = clock_mono_ms() - t;
		str_copy(st.pod, sizeof(st.pod), wr->pod);
		if (rc && !cancelled(&st)) {
			if (strcmp(wr->reason, "DeadlineExceeded") == 0) {
				st.deadline_hit = 1;
				fail_command(&st, wr->reason, "%s", wr->message);
			} else {
				fail_error(&st, wr->reason[0] ? wr->reason : "PodStartFailed", "%s",
					   wr->message[0] ? wr->message : err_msg());
			}
		}
		free(wr);
		if (rc)
			goto finish;
	}

	/* 5. upload */
	{
		size_t len;
		const char *tar = sandbox_workspace_upload(ws, &len);

		step(&st, SANDBOX_PREPARING, SANDBOX_STEP_UPLOADING, "%zu bytes into pod %s", len,
		     st.pod);
		t = clock_mono_ms();
		rc = sandbox_upload(kc, cfg, st.pod, tar, len, cancel, st.deadline);
		st.res->timings.upload_ms = clock_mono_ms() - t;
		sandbox_workspace_drop_upload(ws);
		if (rc) {
			if (cancelled(&st))
				goto finish;
			/* DeadlineExceeded only when the run's own deadline is
			 * what ended it; an API server that did not answer in
			 * time before that is an infrastructure error */
			if (rc == ERR_TIMEOUT && clock_remaining_ms(st.deadline) == 0) {
				st.deadline_hit = 1;
				fail_command(&st, "DeadlineExceeded", "%s", err_msg());
			} else {
				fail_error(&st, "UploadFailed", "%s", err_msg());
			}
			goto finish;
		}
	}

	/* 6. the commands */
	t = clock_mono_ms();
	run_commands(&st);
	st.res->timings.run_ms = clock_mono_ms() - t;

	/* 7. collect, unless the pod is gone or the run was cancelled */
	if (!cancelled(&st) && !st.errored) {
		t = clock_mono_ms();
		collect(&st, ws);
		st.res->timings.collect_ms = clock_mono_ms() - t;
	}

finish:
	/* 8. tear down, on every path after a create attempt */
	if (created_attempted)
		teardown(&st, job_name);
	if (cancelled(&st)) {
		const char *why = sandbox_cancel_reason(cancel);

		st.res->phase = SANDBOX_CANCELLED;
		set_str(&st.res->reason, why[0] ? why : "Cancelled");
		if (!st.errored && !st.failed)
			set_str(&st.res->message, strcmp(why, "Shutdown") == 0
				? "the run was cancelled because ci-fixer is shutting down"
				: "the run was cancelled");
	} else if (st.errored) {
		st.res->phase = SANDBOX_ERROR;
	} else if (st.failed) {
		st.res->phase = SANDBOX_FAILED;
	} else {
		st.res->phase = SANDBOX_SUCCEEDED;
		set_str(&st.res->reason, "");
		set_str(&st.res->message, "");
	}
	st.res->finished_at_ms = clock_wall_ms();
	st.res->timings.total_ms = clock_mono_ms() - st.t0;
	step(&st, st.res->phase, SANDBOX_STEP_DONE, "%s%s%s", sandbox_phase_name(st.res->phase),
	     st.res->reason[0] ? ": " : "", st.res->reason);
	sandbox_workspace_free(ws);
	cJSON_Delete(spec);
	cJSON_Delete(created);
	return ret;
}

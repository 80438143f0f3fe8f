/*
 * bridge: copies between the runner's documents and sandbox's structs (see
 * bridge.h). Every string is copied: the two sides have different owners.
 */
#include "runner/bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/str.h"

static int dup_into(char **dst, const char *src)
{
	if (!src)
		return 0;
	return (*dst = str_dup(src)) ? 0 : ERR_NOMEM;
}

static int kv_copy(sandbox_kv **out, size_t *count, const runner_map *m)
{
	if (!m->n)
		return 0;
	if (!(*out = calloc(m->n, sizeof(**out))))
		return ERR_NOMEM;
	for (size_t i = 0; i < m->n; i++) {
		*count = i + 1;
		if (dup_into(&(*out)[i].name, m->items[i].key) || dup_into(&(*out)[i].value, m->items[i].value))
			return ERR_NOMEM;
	}
	return 0;
}

int runner_to_sandbox_request(sandbox_request **out, const runner_request *r)
{
	sandbox_request *s = sandbox_request_new();
	int rc = 0;

	*out = NULL;
	if (!s)
		return err_set(ERR_NOMEM, "out of memory");
	if (dup_into(&s->repo.url, r->repo_url) || dup_into(&s->repo.ref, r->repo_ref) ||
	    dup_into(&s->repo.commit, r->repo_commit) || dup_into(&s->image, r->image) ||
	    dup_into(&s->resources.cpu, r->cpu) || dup_into(&s->resources.memory, r->memory) ||
	    dup_into(&s->idempotency_key, r->idempotency_key) || kv_copy(&s->env, &s->env_count, &r->env) ||
	    kv_copy(&s->labels, &s->label_count, &r->labels))
		goto nomem;
	s->timeout_seconds = r->timeout_seconds;
	s->collect.patch = r->collect_patch;
	s->collect.log_tail_lines = r->log_tail_lines;
	if (r->ncommands && !(s->commands = calloc(r->ncommands, sizeof(*s->commands))))
		goto nomem;
	for (size_t i = 0; i < r->ncommands; i++) {
		const runner_command *c = &r->commands[i];
		sandbox_command *d = &s->commands[i];

		s->command_count = i + 1;
		if (c->argv) {
			if (!(d->argv = calloc(c->argc + 1, sizeof(char *))))
				goto nomem;
			for (size_t j = 0; j < c->argc; j++) {
				d->argc = j + 1;
				if (dup_into(&d->argv[j], c->argv[j]))
					goto nomem;
			}
		}
		if (dup_into(&d->shell, c->shell) || dup_into(&d->workdir, c->workdir) ||
		    kv_copy(&d->env, &d->env_count, &c->env))
			goto nomem;
		d->timeout_seconds = c->timeout_seconds;
		d->continue_on_error = c->continue_on_error;
	}
	*out = s;
	return rc;
nomem:
	sandbox_request_free(s);
	return err_set(ERR_NOMEM, "out of memory");
}

int runner_sandbox_validate(runner_request_error *e, const runner_request *r, const sandbox_config *cfg)
{
	sandbox_request *s = NULL;
	int rc;

	memset(e, 0, sizeof(*e));
	if ((rc = runner_to_sandbox_request(&s, r)))
		return rc;
	rc = sandbox_request_validate(cfg, s);
	sandbox_request_free(s);
	if (rc) {
		/* sandbox messages are "field: what is wrong" */
		const char *m = err_msg();
		const char *colon = strstr(m, ": ");
		size_t fl = colon ? (size_t)(colon - m) : 0;

		e->status = 400;
		snprintf(e->reason, sizeof(e->reason), "FieldValueInvalid");
		if (fl && fl < sizeof(e->field) && !memchr(m, ' ', fl))
			snprintf(e->field, sizeof(e->field), "%.*s", (int)fl, m);
		snprintf(e->message, sizeof(e->message), "%s", m);
		return ERR_INVALID;
	}
	return 0;
}

enum runner_phase runner_phase_from_sandbox(enum sandbox_phase p)
{
	switch (p) {
	case SANDBOX_PENDING: return RUNNER_PENDING;
	case SANDBOX_PREPARING: return RUNNER_PREPARING;
	case SANDBOX_RUNNING: return RUNNER_RUNNING;
	case SANDBOX_COLLECTING: return RUNNER_COLLECTING;
	case SANDBOX_SUCCEEDED: return RUNNER_SUCCEEDED;
	case SANDBOX_FAILED: return RUNNER_FAILED;
	case SANDBOX_CANCELLED: return RUNNER_CANCELLED;
	default: return RUNNER_ERROR;
	}
}

static enum runner_outcome outcome_from_sandbox(enum sandbox_outcome o)
{
	switch (o) {
	case SANDBOX_OUTCOME_EXITED: return RUNNER_OUTCOME_EXITED;
	case SANDBOX_OUTCOME_TIMEOUT: return RUNNER_OUTCOME_TIMEOUT;
	case SANDBOX_OUTCOME_LOST: return RUNNER_OUTCOME_LOST;
	default: return RUNNER_OUTCOME_SKIPPED;
	}
}

static int bytes_copy(char **dst, size_t *dlen, const char *src, size_t len)
{
	free(*dst);
	*dst = NULL;
	*dlen = 0;
	if (!src)
		return 0;
	if (!(*dst = malloc(len + 1)))
		return ERR_NOMEM;
	memcpy(*dst, src, len);
	(*dst)[len] = '\0';
	*dlen = len;
	return 0;
}

int runner_doc_from_result(runner_run_doc *d, const sandbox_result *res)
{
	size_t dummy;

	d->phase = runner_phase_from_sandbox(res->phase);
	if (runner_doc_set(&d->reason, res->reason && *res->reason ? res->reason : NULL) ||
	    runner_doc_set(&d->message, res->message && *res->message ? res->message : NULL) ||
	    runner_doc_set(&d->job_namespace, res->job.namespace_) || runner_doc_set(&d->job_name, res->job.name) ||
	    bytes_copy(&d->logs, &dummy, res->logs, res->logs_len) ||
	    bytes_copy(&d->patch, &dummy, res->patch, res->patch_len))
		return err_set(ERR_NOMEM, "out of memory");
	if (res->started_at_ms)
		d->started_ms = res->started_at_ms;
	if (res->finished_at_ms)
		d->finished_ms = res->finished_at_ms;
	if (res->timings.queued_ms)
		d->queued_ms = res->timings.queued_ms;
	d->pod_ready_ms = res->timings.pod_ready_ms;
	d->upload_ms = res->timings.upload_ms;
	for (size_t i = 0; i < d->ncmds; i++) {
		runner_cmd_result *c = &d->cmds[i];

		for (size_t j = 0; c->argv && j < c->argc; j++)
			free(c->argv[j]);
		free(c->argv);
		free(c->shell);
		free(c->out);
		free(c->err);
	}
	free(d->cmds);
	d->cmds = NULL;
	d->ncmds = 0;
	if (res->command_count && !(d->cmds = calloc(res->command_count, sizeof(*d->cmds))))
		return err_set(ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < res->command_count; i++) {
		const sandbox_command_result *s = &res->commands[i];
		runner_cmd_result *c = &d->cmds[i];

		d->ncmds = i + 1;
		if (s->argv) {
			if (!(c->argv = calloc(s->argc + 1, sizeof(char *))))
				return err_set(ERR_NOMEM, "out of memory");
			for (size_t j = 0; j < s->argc; j++) {
				c->argc = j + 1;
				if (dup_into(&c->argv[j], s->argv[j]))
					return err_set(ERR_NOMEM, "out of memory");
			}
		}
		if (dup_into(&c->shell, s->shell) || bytes_copy(&c->out, &c->out_len, s->out.data, s->out.len) ||
		    bytes_copy(&c->err, &c->err_len, s->err.data, s->err.len))
			return err_set(ERR_NOMEM, "out of memory");
		c->outcome = outcome_from_sandbox(s->outcome);
		c->exit_code = s->exit_code;
		c->duration_ms = s->duration_ms;
		c->out_bytes = s->out.bytes;
		c->err_bytes = s->err.bytes;
		memcpy(c->out_sha256, s->out.sha256, sizeof(c->out_sha256));
		memcpy(c->err_sha256, s->err.sha256, sizeof(c->err_sha256));
		c->truncated = s->truncated;
	}
	return 0;
}

void runner_limits_from_config(runner_limits *lim, const sandbox_config *cfg)
{
	int64_t q;

	if (cfg->max_commands && cfg->max_commands < lim->max_commands)
		lim->max_commands = cfg->max_commands;
	if (cfg->max_timeout_seconds > 0)
		lim->max_timeout_seconds = cfg->max_timeout_seconds;
	if (cfg->max_command_bytes && cfg->max_command_bytes < lim->max_arg_bytes)
		lim->max_arg_bytes = cfg->max_command_bytes;
	if (cfg->max_command_bytes && cfg->max_command_bytes < lim->max_command_bytes)
		lim->max_command_bytes = cfg->max_command_bytes;
	if (cfg->max_cpu && runner_quantity_parse(&q, cfg->max_cpu, 3) == 0)
		lim->max_cpu_millis = q;
	if (cfg->max_memory && runner_quantity_parse(&q, cfg->max_memory, 0) == 0)
		lim->max_memory_bytes = q;
}

/*
 * The sandbox model: names of phases, steps and outcomes; request and
 * result allocation; the cancellation token; configuration defaults; and
 * request validation (everything checked before anything is created).
 */
#include "sandbox/run.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox/cancel.h"
#include "sandbox/quantity.h"
#include "util/err.h"
#include "util/str.h"

static const char *const phase_names[SANDBOX_PHASE_COUNT] = {
	"Pending", "Preparing", "Running", "Collecting",
	"Succeeded", "Failed", "Error", "Cancelled",
};

const char *sandbox_phase_name(enum sandbox_phase p)
{
	if ((int)p < 0 || (int)p >= SANDBOX_PHASE_COUNT)
		return "Unknown";
	return phase_names[p];
}

int sandbox_phase_parse(enum sandbox_phase *out, const char *name)
{
	for (int i = 0; name && i < SANDBOX_PHASE_COUNT; i++) {
		if (strcmp(name, phase_names[i]) == 0) {
			*out = (enum sandbox_phase)i;
			return 0;
		}
	}
	return err_set(ERR_INVALID, "unknown phase \"%s\"", name ? name : "");
}

int sandbox_phase_is_terminal(enum sandbox_phase p)
{
	return p == SANDBOX_SUCCEEDED || p == SANDBOX_FAILED || p == SANDBOX_ERROR ||
	       p == SANDBOX_CANCELLED;
}

const char *sandbox_step_name(enum sandbox_step s)
{
	switch (s) {
	case SANDBOX_STEP_WORKSPACE: return "preparing workspace";
	case SANDBOX_STEP_CREATING: return "creating";
	case SANDBOX_STEP_WAITING: return "waiting for pod";
	case SANDBOX_STEP_UPLOADING: return "uploading";
	case SANDBOX_STEP_RUNNING: return "running";
	case SANDBOX_STEP_COLLECTING: return "collecting";
	case SANDBOX_STEP_TEARDOWN: return "tearing down";
	case SANDBOX_STEP_DONE: return "done";
	}
	return "unknown";
}

static const char *const outcome_names[] = { "skipped", "exited", "timeout", "lost" };

const char *sandbox_outcome_name(enum sandbox_outcome o)
{
	if ((int)o < 0 || (int)o > SANDBOX_OUTCOME_LOST)
		return "unknown";
	return outcome_names[o];
}

int sandbox_outcome_parse(enum sandbox_outcome *out, const char *name)
{
	for (int i = 0; name && i <= SANDBOX_OUTCOME_LOST; i++) {
		if (strcmp(name, outcome_names[i]) == 0) {
			*out = (enum sandbox_outcome)i;
			return 0;
		}
	}
	return err_set(ERR_INVALID, "unknown outcome \"%s\"", name ? name : "");
}

/* ---- request and result ------------------------------------------------ */

sandbox_request *sandbox_request_new(void)
{
	sandbox_request *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->collect.patch = -1;
	r->collect.log_tail_lines = -1;
	return r;
}

static void kv_free(sandbox_kv *kv, size_t n)
{
	for (size_t i = 0; kv && i < n; i++) {
		free(kv[i].name);
		free(kv[i].value);
	}
	free(kv);
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void sandbox_command_clear(sandbox_command *cmd)
{
	if (!cmd)
		return;
	strv_free(cmd->argv, cmd->argc);
	free(cmd->shell);
	kv_free(cmd->env, cmd->env_count);
	free(cmd->workdir);
	memset(cmd, 0, sizeof(*cmd));
}

void sandbox_request_free(sandbox_request *req)
{
	if (!req)
		return;
	free(req->repo.url);
	free(req->repo.ref);
	free(req->repo.commit);
	free(req->image);
	for (size_t i = 0; req->commands && i < req->command_count; i++)
		sandbox_command_clear(&req->commands[i]);
	free(req->commands);
	kv_free(req->env, req->env_count);
	free(req->resources.cpu);
	free(req->resources.memory);
	kv_free(req->labels, req->label_count);
	free(req->idempotency_key);
	free(req);
}

sandbox_result *sandbox_result_new(const char *id)
{
	sandbox_result *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->phase = SANDBOX_PENDING;
	r->id = str_dup(id ? id : "");
	r->reason = str_dup("");
	r->message = str_dup("");
	r->logs = str_dup("");
	r->patch = str_dup("");
	if (!r->id || !r->reason || !r->message || !r->logs || !r->patch) {
		sandbox_result_free(r);
		return NULL;
	}
	return r;
}

void sandbox_result_free(sandbox_result *res)
{
	if (!res)
		return;
	free(res->id);
	free(res->reason);
	free(res->message);
	free(res->job.namespace_);
	free(res->job.name);
	free(res->image);
	free(res->commit);
	for (size_t i = 0; res->commands && i < res->command_count; i++) {
		sandbox_command_result *c = &res->commands[i];

		strv_free(c->argv, c->argc);
		free(c->shell);
		free(c->out.data);
		free(c->err.data);
		free(c->message);
	}
	free(res->commands);
	free(res->logs);
	free(res->patch);
	free(res);
}

/* ---- configuration --------------------------------------------------- */

void sandbox_config_init(sandbox_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->namespace_ = "ci-sandbox";
	cfg->default_image = "debian:bookworm-slim";
	cfg->owner = "default";
	cfg->service_account = "ci-fixer-sandbox";
	cfg->container_name = "sandbox";
	cfg->run_as_user = 65532;
	cfg->run_as_group = 65532;
	cfg->ttl_seconds_after_finished = 300;
	cfg->grace_seconds = 60;
	cfg->default_timeout_seconds = 1800;
	cfg->max_timeout_seconds = 6 * 3600;
	cfg->start_timeout_seconds = 300;
	cfg->image_pull_grace_seconds = 30;
	cfg->unschedulable_grace_seconds = 60;
	cfg->teardown_timeout_seconds = 10;
	cfg->default_cpu_request = "250m";
	cfg->default_cpu_limit = "1";
	cfg->max_cpu = "4";
	cfg->default_memory_request = "256Mi";
	cfg->default_memory_limit = "1Gi";
	cfg->max_memory = "8Gi";
	cfg->ephemeral_storage_limit = "2Gi";
	cfg->output_cap = 1 << 20;
	cfg->log_cap = 1 << 20;
	cfg->patch_cap = 16 << 20;
	cfg->workspace_cap = 512u << 20;
	cfg->log_tail_lines = 200;
	cfg->max_commands = 100;
	cfg->max_command_bytes = 64 << 10;
	cfg->repo_cache_dir = NULL;
	cfg->scratch_dir = NULL;
	cfg->image_pull_policy = "IfNotPresent";
	cfg->node_selector = NULL;
	cfg->node_selector_count = 0;
	cfg->tolerations = NULL;
	cfg->toleration_count = 0;
	cfg->affinity = NULL;
	cfg->gpu_resource = "nvidia.com/gpu";
	cfg->gpu_count = 0;
}

/* ---- cancellation ------------------------------------------------------ */

struct sandbox_cancel {
	atomic_int requested;
	pthread_mutex_t lock;   /* guards reason and links */
	char reason[64];
	int pipe_r, pipe_w;     /* readable once requested */
	kube_cancel *links[SANDBOX_CANCEL_LINKS];
};

int sandbox_cancel_new(sandbox_cancel **out)
{
	sandbox_cancel *c = calloc(1, sizeof(*c));
	int fds[2];

	*out = NULL;
	if (!c)
		return err_set(ERR_NOMEM, "out of memory");
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
		free(c);
		return err_set(ERR_FAIL, "cancel token: pipe failed");
	}
	atomic_init(&c->requested, 0);
	pthread_mutex_init(&c->lock, NULL);
	c->pipe_r = fds[0];
	c->pipe_w = fds[1];
	*out = c;
	return 0;
}

void sandbox_cancel_free(sandbox_cancel *c)
{
	if (!c)
		return;
	close(c->pipe_r);
	close(c->pipe_w);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void sandbox_cancel_request(sandbox_cancel *c, const char *reason)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	if (!atomic_load(&c->requested)) {
		str_copy(c->reason, sizeof(c->reason), reason && *reason ? reason : "Cancelled");
		atomic_store(&c->requested, 1);
		ssize_t w = write(c->pipe_w, "x", 1);
		(void)w;
		for (int i = 0; i < SANDBOX_CANCEL_LINKS; i++)
			if (c->links[i])
				kube_cancel_request(c->links[i]);
	}
	pthread_mutex_unlock(&c->lock);
}

int sandbox_cancel_link(sandbox_cancel *c, kube_cancel *k)
{
	int rc = ERR_FAIL;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < SANDBOX_CANCEL_LINKS; i++) {
		if (!c->links[i]) {
			c->links[i] = k;
			rc = 0;
			break;
		}
	}
	if (atomic_load(&c->requested))
		kube_cancel_request(k);
	pthread_mutex_unlock(&c->lock);
	if (rc)
		err_set(ERR_FAIL, "cancel token: too many linked calls");
	return rc;
}

void sandbox_cancel_unlink(sandbox_cancel *c, kube_cancel *k)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < SANDBOX_CANCEL_LINKS; i++)
		if (c->links[i] == k)
			c->links[i] = NULL;
	pthread_mutex_unlock(&c->lock);
}

int sandbox_cancel_requested(sandbox_cancel *c)
{
	return c && atomic_load(&c->requested);
}

const char *sandbox_cancel_reason(sandbox_cancel *c)
{
	/* written once, before requested is set, never again */
	if (!c || !atomic_load(&c->requested))
		return "";
	return c->reason;
}

int sandbox_cancel_fd(sandbox_cancel *c)
{
	return c ? c->pipe_r : -1;
}

/*
 * cmd_run: `ci-fixer run`, one run without a server, for a pipeline step or
 * a person at a terminal.
 *
 * Threads: the main thread runs sandbox_run() and prints from its callbacks
 * (phases with elapsed times on stderr, the commands' output on stdout and
 * stderr as it arrives). A signal thread waits for SIGINT/SIGTERM (blocked
 * everywhere else) and cancels the run; the sandbox still tears the Job down
 * and the exit status is then 130.
 */
#include "runner/commands.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "kube/config.h"
#include "runner/bridge.h"
#include "runner/request.h"
#include "runner/result.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

int runner_new_id(char *out, size_t size)
{
	unsigned char r[8];
	char hex[17];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return err_set(ERR_FAIL, "getrandom: %s", strerror(errno));
	str_hex(hex, r, sizeof(r));
	snprintf(out, size, "r-%s", hex);
	return 0;
}

int runner_kube_client(kube_client **out, const runner_opts *o)
{
	kube_config_opts co = KUBE_CONFIG_OPTS_INIT;
	kube_config *cfg = NULL;
	int rc;

	co.kubeconfig = o->kubeconfig;
	co.context = o->context;
	co.ns = o->namespace_;
	if ((rc = kube_config_load(&cfg, &co)))
		return rc;
	rc = kube_client_new(out, cfg);
	kube_config_free(cfg);
	return rc;
}

void runner_sandbox_config(sandbox_config *cfg, const runner_opts *o)
{
	sandbox_config_init(cfg);
	if (o->namespace_)
		cfg->namespace_ = o->namespace_;
	if (o->owner)
		cfg->owner = o->owner;
	if (o->image && o->cmd == RUNNER_CMD_SERVE)
		cfg->default_image = o->image;
	/* the Job settings (runner/cli.c checked ranges and quantities) */
	if (o->ttl_after_finished.set)
		cfg->ttl_seconds_after_finished = o->ttl_after_finished.value;
	if (o->run_as_user.set)
		cfg->run_as_user = o->run_as_user.value;
	if (o->run_as_group.set)
		cfg->run_as_group = o->run_as_group.value;
	if (o->default_timeout.set)
		cfg->default_timeout_seconds = o->default_timeout.value;
	if (o->max_timeout.set)
		cfg->max_timeout_seconds = o->max_timeout.value;
	if (o->deadline_grace.set)
		cfg->grace_seconds = o->deadline_grace.value;
	if (o->pod_start_timeout.set)
		cfg->start_timeout_seconds = o->pod_start_timeout.value;
	if (o->image_pull_grace.set)
		cfg->image_pull_grace_seconds = o->image_pull_grace.value;
	if (o->cpu_request)
		cfg->default_cpu_request = o->cpu_request;
	if (o->cpu_limit)
		cfg->default_cpu_limit = o->cpu_limit;
	if (o->max_cpu)
		cfg->max_cpu = o->max_cpu;
	if (o->memory_request)
		cfg->default_memory_request = o->memory_request;
	if (o->memory_limit)
		cfg->default_memory_limit = o->memory_limit;
	if (o->max_memory)
		cfg->max_memory = o->max_memory;
	if (o->workspace_size_limit)
		cfg->ephemeral_storage_limit = o->workspace_size_limit;
	/* the pod's placement (sandbox/placement.h), parsed and checked by cli.c */
	if (o->image_pull_policy)
		cfg->image_pull_policy = o->image_pull_policy;
	if (o->sandbox_service_account)
		cfg->service_account = o->sandbox_service_account;
	if (o->node_selector.n) {
		cfg->node_selector = o->node_selector.items;
		cfg->node_selector_count = o->node_selector.n;
	}
	if (o->tolerations.n) {
		cfg->tolerations = o->tolerations.items;
		cfg->toleration_count = o->tolerations.n;
	}
	if (o->affinity)
		cfg->affinity = o->affinity;
	if (o->gpu_resource)
		cfg->gpu_resource = o->gpu_resource;
	if (o->gpu_count.set)
		cfg->gpu_count = o->gpu_count.value;
}

/* ---- live output -------------------------------------------------------- */

typedef struct run_view {
	int64_t start_ms;
	int last_step;
} run_view;

static void on_phase(void *ctx, enum sandbox_phase phase, enum sandbox_step step, int64_t elapsed_ms,
		     const char *message)
{
	run_view *v = ctx;

	(void)v;
	(void)phase;
	fprintf(stderr, "[%6.1fs] %s%s%s\n", (double)elapsed_ms / 1000.0, sandbox_step_name(step),
			message && *message ? ": " : "", message ? message : "");
	fflush(stderr);
}

static void on_command_start(void *ctx, size_t index, const sandbox_command *cmd)
{
	run_view *v = ctx;

	fprintf(stderr, "[%6.1fs] command %zu: ", (double)(clock_mono_ms() - v->start_ms) / 1000.0, index + 1);
	if (cmd->shell) {
		fprintf(stderr, "sh -c %s\n", cmd->shell);
	} else {
		for (size_t i = 0; i < cmd->argc; i++)
			fprintf(stderr, "%s%s", i ? " " : "", cmd->argv[i]);
		fputc('\n', stderr);
	}
	fflush(stderr);
}

static void on_output(void *ctx, size_t index, int stream, const char *data, size_t len)
{
	FILE *f = stream == 2 ? stderr : stdout;

	(void)ctx;
	(void)index;
	fwrite(data, 1, len, f);
	fflush(f);
}

static void on_command_done(void *ctx, size_t index, const sandbox_command_result *res)
{
	run_view *v = ctx;

	fprintf(stderr, "[%6.1fs] command %zu %s", (double)(clock_mono_ms() - v->start_ms) / 1000.0, index + 1,
		sandbox_outcome_name(res->outcome));
	if (res->outcome == SANDBOX_OUTCOME_EXITED)
		fprintf(stderr, " with status %d", res->exit_code);
	fprintf(stderr, " after %.1fs%s%s\n", (double)res->duration_ms / 1000.0, res->message ? ": " : "",
		res->message ? res->message : "");
	fflush(stderr);
}

/* ---- signals ------------------------------------------------------------ */

typedef struct sig_ctx {
	sigset_t set;
	sandbox_cancel *cancel;
} sig_ctx;

static void *signal_thread(void *arg)
{
	sig_ctx *s = arg;
	int sig = 0;

	if (sigwait(&s->set, &sig) == 0 && (sig == SIGINT || sig == SIGTERM)) {
		fprintf(stderr, "ci-fixer: %s: cancelling the run (the Job is torn down)\n", strsignal(sig));
		sandbox_cancel_request(s->cancel, "Cancelled");
	}
	return NULL;
}

int runner_write_file(const char *path, const char *data, size_t len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
	int ok;

	if (!f)
		return err_set(ERR_FAIL, "%s: %s", path, strerror(errno));
	ok = fwrite(data, 1, len, f) == len;
	if (f != stdout)
		ok = (fclose(f) == 0) && ok;
	else
		fflush(f);
	return ok ? 0 : err_set(ERR_FAIL, "%s: write failed", path);
}

int runner_cmd_run(const runner_opts *o)
{
	runner_request *req = NULL;
	runner_request_error e;
	runner_limits lim = RUNNER_LIMITS_INIT;
	sandbox_request *sreq = NULL;
	sandbox_result *res = NULL;
	sandbox_cancel *cancel = NULL;
	sandbox_config cfg;
	kube_client *kc = NULL;
	runner_run_doc *doc = NULL;
	run_view view = { clock_mono_ms(), -1 };
	sandbox_callbacks cb = { &view, on_phase, on_command_start, on_output, on_command_done };
	sig_ctx sc;
	pthread_t sig_tid;
	int sig_started = 0, status = RUNNER_EXIT_INFRA;
	char id[32];
	buf out = BUF_INIT((size_t)256 << 20);

	runner_sandbox_config(&cfg, o);
	if (o->image)
		cfg.default_image = o->image;
	runner_limits_from_config(&lim, &cfg);
	lim.allow_local_repos = 1; /* a local run reads what its user can read */
	if (runner_opts_request(&req, o)) {
		fprintf(stderr, "ci-fixer: %s\n", err_msg());
		status = RUNNER_EXIT_INFRA;
		goto done;
	}
	if (runner_request_validate(req, &e, &lim) || runner_sandbox_validate(&e, req, &cfg)) {
		fprintf(stderr, "ci-fixer: invalid request: %s\n", e.message);
		status = RUNNER_EXIT_INFRA;
		goto done;
	}
	if (runner_kube_client(&kc, o)) {
		fprintf(stderr, "ci-fixer: Kubernetes configuration: %s\n", err_msg());
		goto done;
	}
	if (!o->namespace_)
		cfg.namespace_ = kube_client_namespace(kc);
	if (runner_to_sandbox_request(&sreq, req) || runner_new_id(id, sizeof(id)) || sandbox_cancel_new(&cancel)) {
		fprintf(stderr, "ci-fixer: %s\n", err_msg());
		goto done;
	}
	sigemptyset(&sc.set);
	sigaddset(&sc.set, SIGINT);
	sigaddset(&sc.set, SIGTERM);
	sc.cancel = cancel;
	pthread_sigmask(SIG_BLOCK, &sc.set, NULL);
	if (pthread_create(&sig_tid, NULL, signal_thread, &sc) == 0)
		sig_started = 1;
	fprintf(stderr, "[%6.1fs] run %s in namespace %s\n", 0.0, id, cfg.namespace_);
	if (sandbox_run(&res, kc, &cfg, sreq, id, &cb, cancel) && !res) {
		fprintf(stderr, "ci-fixer: %s\n", err_msg());
		goto done;
	}
	if (!(doc = runner_run_doc_new()) || runner_doc_set(&doc->id, id) || runner_doc_from_result(doc, res)) {
		fprintf(stderr, "ci-fixer: out of memory\n");
		goto done;
	}
	doc->created_ms = res->started_at_ms;
	status = runner_run_doc_exit_status(doc);
	fprintf(stderr, "[%6.1fs] %s%s%s%s%s (exit status %d)\n", (double)(clock_mono_ms() - view.start_ms) / 1000.0,
		runner_phase_name(doc->phase), doc->reason ? " " : "", doc->reason ? doc->reason : "",
		doc->message ? ": " : "", doc->message ? doc->message : "", status);
	if (o->patch_file && runner_write_file(o->patch_file, res->patch, res->patch_len)) {
		fprintf(stderr, "ci-fixer: --patch: %s\n", err_msg());
		if (!status)
			status = 1;
	}
	if (o->json) {
		if (runner_run_doc_encode(&out, doc, 1) == 0) {
			buf_append_byte(&out, '\n');
			fwrite(out.data, 1, out.len, stdout);
			fflush(stdout);
		} else {
			fprintf(stderr, "ci-fixer: --json: %s\n", err_msg());
		}
	}
done:
	if (sig_started) {
		pthread_cancel(sig_tid);
		pthread_join(sig_tid, NULL);
	}
	buf_free(&out);
	runner_run_doc_free(doc);
	sandbox_result_free(res);
	sandbox_cancel_free(cancel);
	sandbox_request_free(sreq);
	runner_request_free(req);
	kube_client_free(kc);
	return status;
}

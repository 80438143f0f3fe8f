/*
 * cli: flags, environment variables and the serve --config file (see cli.h).
 *
 * One table lists every option: its flag, its environment variable, which
 * subcommands take it, and its help line; parsing, the --help texts and the
 * config file keys all come from it, so they cannot drift apart. The config
 * file is JSON (cJSON is already a dependency): an object whose keys are the
 * flag names without dashes, e.g. {"listen": "0.0.0.0:3001",
 * "max-concurrent": 4}; unknown keys are an error.
 *
 * The sandbox Job settings (--ttl-seconds-after-finished ... --gpu-count,
 * C_JOB in the table) override sandbox_config_init's defaults
 * (sandbox/model.c).
 * Quantities are checked with the sandbox's own parser when they are set,
 * so a bad one is refused at start naming its flag, variable or key, and
 * after parsing the resulting configuration must hang together (default
 * timeout <= max timeout, request <= limit <= max), since a Job built from
 * it would otherwise be refused by Kubernetes or by every run's validation.
 *
 * Three settings are JSON values: --node-selector (an object), --tolerations
 * (an array) and --affinity (an object). On the command line and in the
 * environment they are JSON text; in the config file they are the JSON
 * value itself (the file is JSON already), printed back to text and parsed
 * by the same code, so all three sources are checked by the same rules
 * (sandbox/placement.c) and a bad value names its flag, variable or key.
 */
#include "runner/cli.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "runner/commands.h"
#include "sandbox/placement.h"
#include "sandbox/quantity.h"
#include "sandbox/validate.h"
#include "util/err.h"
#include "util/str.h"

#define C_RUN (1 << RUNNER_CMD_RUN)
#define C_SERVE (1 << RUNNER_CMD_SERVE)
#define C_SUBMIT (1 << RUNNER_CMD_SUBMIT)
#define C_VERIFY (1 << RUNNER_CMD_VERIFY_RBAC)
#define C_REQ (C_RUN | C_SUBMIT)
#define C_KUBE (C_RUN | C_SERVE | C_VERIFY)
#define C_JOB (C_RUN | C_SERVE)
#define INT32_MAX_ 2147483647

/* K_OINT: a runner_opt_int. Strings with a syntax, checked when set: K_QTY
 * a Kubernetes quantity, K_PULL an image pull policy, K_RESOURCE an extended
 * resource name, K_SANAME a ServiceAccount name. JSON values (text on the
 * command line and in the environment, the value itself in the config
 * file): K_LABELS an object of labels (runner_opt_labels), K_TOLERATIONS an
 * array of Toleration objects (runner_opt_tolerations), K_AFFINITY an
 * Affinity object (kept as the text given). */
enum opt_kind {
	K_STR, K_INT, K_BOOL, K_ENV, K_SHELL, K_OINT, K_QTY, K_PULL, K_RESOURCE, K_SANAME,
	K_LABELS, K_TOLERATIONS, K_AFFINITY
};

/* Kinds stored as a char * in runner_opts (freed by runner_opts_clear). */
static int kind_is_string(enum opt_kind k)
{
	return k == K_STR || k == K_QTY || k == K_PULL || k == K_RESOURCE || k == K_SANAME || k == K_AFFINITY;
}

typedef struct opt_def {
	const char *flag;   /* without the leading "--" */
	char short_;        /* or 0 */
	const char *env;
	enum opt_kind kind;
	size_t off;
	int cmds;
	const char *arg;    /* metavariable in help */
	const char *help;
	int min, max;       /* K_INT, K_OINT range */
} opt_def;

#define O(f) offsetof(runner_opts, f)

static const opt_def opts[] = {
	{ "kubeconfig", 0, "CIFIXER_KUBECONFIG", K_STR, O(kubeconfig), C_KUBE, "FILE",
	  "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster)", 0, 0 },
	{ "context", 0, "CIFIXER_CONTEXT", K_STR, O(context), C_KUBE, "NAME", "kubeconfig context", 0, 0 },
	{ "namespace", 'n', "CIFIXER_NAMESPACE", K_STR, O(namespace_), C_KUBE, "NS",
	  "sandbox namespace for the Jobs (default ci-sandbox)", 0, 0 },
	{ "owner", 0, "CIFIXER_OWNER", K_STR, O(owner), C_RUN | C_SERVE, "NAME",
	  "this installation's ci-fixer.io/owner label (default: default)", 0, 0 },
	{ "image", 0, "CIFIXER_IMAGE", K_STR, O(image), C_REQ | C_SERVE, "IMG",
	  "container image (serve: the default image)", 0, 0 },
	{ "ttl-seconds-after-finished", 0, "CIFIXER_TTL_SECONDS_AFTER_FINISHED", K_OINT, O(ttl_after_finished), C_JOB,
	  "SECONDS", "the Job's ttlSecondsAfterFinished: Kubernetes deletes it this long after it finished (default 300)",
	  0, INT32_MAX_ },
	{ "run-as-user", 0, "CIFIXER_RUN_AS_USER", K_OINT, O(run_as_user), C_JOB, "UID",
	  "UID of the sandbox container, non-zero (Pod Security restricted) (default 65532)", 1, INT32_MAX_ },
	{ "run-as-group", 0, "CIFIXER_RUN_AS_GROUP", K_OINT, O(run_as_group), C_JOB, "GID",
	  "GID of the sandbox container (default 65532)", 1, INT32_MAX_ },
	{ "cpu-request", 0, "CIFIXER_CPU_REQUEST", K_QTY, O(cpu_request), C_JOB, "QTY",
	  "the sandbox's CPU request when a run gives no cpu (default 250m)", 0, 0 },
	{ "cpu-limit", 0, "CIFIXER_CPU_LIMIT", K_QTY, O(cpu_limit), C_JOB, "QTY",
	  "the sandbox's CPU limit when a run gives no cpu (default 1)", 0, 0 },
	{ "max-cpu", 0, "CIFIXER_MAX_CPU", K_QTY, O(max_cpu), C_JOB, "QTY",
	  "runs asking for more CPU are refused (default 4)", 0, 0 },
	{ "memory-request", 0, "CIFIXER_MEMORY_REQUEST", K_QTY, O(memory_request), C_JOB, "QTY",
	  "the sandbox's memory request when a run gives no memory (default 256Mi)", 0, 0 },
	{ "memory-limit", 0, "CIFIXER_MEMORY_LIMIT", K_QTY, O(memory_limit), C_JOB, "QTY",
	  "the sandbox's memory limit when a run gives no memory (default 1Gi)", 0, 0 },
	{ "max-memory", 0, "CIFIXER_MAX_MEMORY", K_QTY, O(max_memory), C_JOB, "QTY",
	  "runs asking for more memory are refused (default 8Gi)", 0, 0 },
	{ "workspace-size-limit", 0, "CIFIXER_WORKSPACE_SIZE_LIMIT", K_QTY, O(workspace_size_limit), C_JOB, "QTY",
	  "sizeLimit of the /workspace emptyDir (default 2Gi)", 0, 0 },
	{ "default-timeout", 0, "CIFIXER_DEFAULT_TIMEOUT", K_OINT, O(default_timeout), C_JOB, "SECONDS",
	  "run timeout when a run gives none (default 1800)", 1, 7 * 86400 },
	{ "max-timeout", 0, "CIFIXER_MAX_TIMEOUT", K_OINT, O(max_timeout), C_JOB, "SECONDS",
	  "longer run timeouts are refused (default 21600)", 1, 7 * 86400 },
	{ "deadline-grace", 0, "CIFIXER_DEADLINE_GRACE", K_OINT, O(deadline_grace), C_JOB, "SECONDS",
	  "added to the run timeout for the Job's activeDeadlineSeconds (default 60)", 0, 3600 },
	{ "pod-start-timeout", 0, "CIFIXER_POD_START_TIMEOUT", K_OINT, O(pod_start_timeout), C_JOB, "SECONDS",
	  "the sandbox pod must be ready within this (default 300)", 1, 3600 },
	{ "image-pull-grace", 0, "CIFIXER_IMAGE_PULL_GRACE", K_OINT, O(image_pull_grace), C_JOB, "SECONDS",
	  "ErrImagePull/ImagePullBackOff is tolerated this long (default 30)", 0, 3600 },
	{ "image-pull-policy", 0, "CIFIXER_IMAGE_PULL_POLICY", K_PULL, O(image_pull_policy), C_JOB, "POLICY",
	  "pull policy of the sandbox image: Always, IfNotPresent or Never (default IfNotPresent)", 0, 0 },
	{ "sandbox-service-account", 0, "CIFIXER_SANDBOX_SERVICE_ACCOUNT", K_SANAME, O(sandbox_service_account), C_JOB,
	  "NAME", "ServiceAccount of the sandbox pods; they mount no token (default ci-fixer-sandbox)", 0, 0 },
	{ "node-selector", 0, "CIFIXER_NODE_SELECTOR", K_LABELS, O(node_selector), C_JOB, "JSON",
	  "node labels the sandbox pods need, a JSON object: '{\"pool\":\"ci\"}' (default none)", 0, 0 },
	{ "tolerations", 0, "CIFIXER_TOLERATIONS", K_TOLERATIONS, O(tolerations), C_JOB, "JSON",
	  "tolerations of the sandbox pods, a JSON array: '[{\"key\":\"ci\",\"operator\":\"Exists\","
	  "\"effect\":\"NoSchedule\"}]' (default none)", 0, 0 },
	{ "affinity", 0, "CIFIXER_AFFINITY", K_AFFINITY, O(affinity), C_JOB, "JSON",
	  "affinity of the sandbox pods, a JSON object of nodeAffinity, podAffinity, podAntiAffinity (default none)",
	  0, 0 },
	{ "gpu-resource", 0, "CIFIXER_GPU_RESOURCE", K_RESOURCE, O(gpu_resource), C_JOB, "NAME",
	  "extended resource name of a GPU (default nvidia.com/gpu)", 0, 0 },
	{ "gpu-count", 0, "CIFIXER_GPU_COUNT", K_OINT, O(gpu_count), C_JOB, "N",
	  "GPUs per sandbox pod, set as its limit and request of --gpu-resource (default 0: none)", 0, 1024 },
	{ "repo", 0, "CIFIXER_REPO", K_STR, O(repo), C_REQ, "URL", "repository to check out into the workspace", 0, 0 },
	{ "ref", 0, "CIFIXER_REF", K_STR, O(ref), C_REQ, "REF", "branch or tag (default: the remote's HEAD)", 0, 0 },
	{ "commit", 0, "CIFIXER_COMMIT", K_STR, O(commit), C_REQ, "SHA", "full commit id (wins over --ref)", 0, 0 },
	{ "timeout", 0, "CIFIXER_TIMEOUT", K_INT, O(timeout), C_REQ, "SECONDS", "whole-run timeout", 1, 24 * 3600 },
	{ "env", 'e', "CIFIXER_ENV", K_ENV, O(env), C_REQ, "K=V",
	  "environment for every command (repeat; the variable holds K=V lines)", 0, 0 },
	{ "cpu", 0, "CIFIXER_CPU", K_STR, O(cpu), C_REQ, "QTY", "CPU for the sandbox (\"500m\", \"2\")", 0, 0 },
	{ "memory", 0, "CIFIXER_MEMORY", K_STR, O(memory), C_REQ, "QTY", "memory for the sandbox (\"2Gi\")", 0, 0 },
	{ "patch", 0, "CIFIXER_PATCH", K_STR, O(patch_file), C_REQ, "FILE", "write the patch of the changes to FILE", 0, 0 },
	{ "json", 0, "CIFIXER_JSON", K_BOOL, O(json), C_REQ | C_VERIFY, NULL,
	  "print the result document (verify-rbac: the checks) as JSON on stdout", 0, 0 },
	{ "idempotency-key", 0, "CIFIXER_IDEMPOTENCY_KEY", K_STR, O(idempotency_key), C_SUBMIT, "KEY",
	  "the same key finds the same run again (default: generated)", 0, 0 },
	{ "server", 0, "CIFIXER_SERVER", K_STR, O(server), C_SUBMIT, "URL", "the ci-fixer service (http://host:3001)", 0, 0 },
	{ "token-file", 0, "CIFIXER_TOKEN_FILE", K_STR, O(token_file), C_SUBMIT | C_SERVE, "FILE",
	  "bearer token (submit) / accepted tokens, one per line, re-read on change (serve)", 0, 0 },
	{ "listen", 0, "CIFIXER_LISTEN", K_STR, O(listen), C_SERVE, "ADDR", "HTTP address (default 0.0.0.0:3001)", 0, 0 },
	{ "data-dir", 0, "CIFIXER_DATA_DIR", K_STR, O(data_dir), C_SERVE, "DIR",
	  "run store (SQLite) and repository cache (default ./ci-fixer-data)", 0, 0 },
	{ "max-concurrent", 0, "CIFIXER_MAX_CONCURRENT", K_INT, O(max_concurrent), C_SERVE, "N",
	  "runs at a time (default 4)", 1, 1000 },
	{ "queue-size", 0, "CIFIXER_QUEUE_SIZE", K_INT, O(queue_size), C_SERVE, "N",
	  "runs waiting beyond those; more get 429 (default 32)", 0, 100000 },
	{ "config", 0, "CIFIXER_CONFIG", K_STR, O(config_file), C_SERVE, "FILE",
	  "JSON file of these settings, keys = flag names", 0, 0 },
	{ "retention-hours", 0, "CIFIXER_RETENTION_HOURS", K_INT, O(retention_hours), C_SERVE, "H",
	  "keep finished runs this long (default 168)", 1, 24 * 3650 },
	{ "shutdown-grace", 0, "CIFIXER_SHUTDOWN_GRACE", K_INT, O(shutdown_grace), C_SERVE, "SECONDS",
	  "on SIGTERM, wait this long for runs before cancelling them (default 0)", 0, 3600 },
	{ "allow-local-repos", 0, "CIFIXER_ALLOW_LOCAL_REPOS", K_BOOL, O(allow_local_repos), C_SERVE, NULL,
	  "accept file:// URLs and local paths as repositories", 0, 0 },
	{ "reap-interval", 0, "CIFIXER_REAP_INTERVAL", K_INT, O(reap_interval), C_SERVE, "SECONDS",
	  "how often orphaned Jobs are reaped (default 60)", 1, 86400 },
	{ "log-level", 0, "CIFIXER_LOG_LEVEL", K_STR, O(log_level), C_SERVE, "LEVEL", "debug, info, warn, error", 0, 0 },
	{ "log-format", 0, "CIFIXER_LOG_FORMAT", K_STR, O(log_format), C_SERVE, "FMT", "json (default) or text", 0, 0 },
	{ "command", 'c', "CIFIXER_COMMAND", K_SHELL, 0, C_REQ, "'SHELL'",
	  "a shell command (repeat; runs before the argv after --)", 0, 0 },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const char *const cmd_names[] = { NULL, "run", "serve", "submit", "verify-rbac" };

/* Replace the string *p with a copy of val. */
static int set_str(char **p, const char *val)
{
	char *v = str_dup(val);

	if (!v)
		return err_set(ERR_NOMEM, "out of memory");
	free(*p);
	*p = v;
	return 0;
}

static int set_opt(runner_opts *o, const opt_def *d, const char *val, const char *from)
{
	char *base = (char *)o;
	char **str = (char **)(base + d->off); /* the kinds kind_is_string() names */

	switch (d->kind) {
	case K_QTY: {
		int64_t milli;

		if (sandbox_quantity_parse(&milli, val))
			return err_wrap(ERR_INVALID, "%s: not a Kubernetes quantity (\"500m\", \"2\", \"4Gi\")", from);
		return set_str(str, val);
	}
	case K_PULL:
		if (!sandbox_pull_policy_valid(val))
			return err_set(ERR_INVALID, "%s: \"%.40s\" is not Always, IfNotPresent or Never", from, val);
		return set_str(str, val);
	case K_RESOURCE:
		if (!sandbox_extended_resource_valid(val))
			return err_set(ERR_INVALID, "%s: \"%.80s\" is not an extended resource name "
				       "(DOMAIN/NAME outside kubernetes.io, e.g. nvidia.com/gpu)", from, val);
		return set_str(str, val);
	case K_SANAME:
		if (strlen(val) > 253 || !str_is_dns1123_subdomain(val))
			return err_set(ERR_INVALID, "%s: \"%.80s\" is not a ServiceAccount name (DNS-1123 subdomain)",
				       from, val);
		return set_str(str, val);
	case K_AFFINITY:
		if (sandbox_affinity_check(val))
			return err_wrap(ERR_INVALID, "%s", from);
		return set_str(str, val);
	case K_LABELS: {
		runner_opt_labels *p = (runner_opt_labels *)(base + d->off);
		sandbox_kv *kv;
		size_t n;

		if (sandbox_node_selector_parse(&kv, &n, val))
			return err_wrap(ERR_INVALID, "%s", from);
		sandbox_kv_array_free(p->items, p->n);
		p->items = kv;
		p->n = n;
		return 0;
	}
	case K_TOLERATIONS: {
		runner_opt_tolerations *p = (runner_opt_tolerations *)(base + d->off);
		sandbox_toleration *t;
		size_t n;

		if (sandbox_tolerations_parse(&t, &n, val))
			return err_wrap(ERR_INVALID, "%s", from);
		sandbox_tolerations_free(p->items, p->n);
		p->items = t;
		p->n = n;
		return 0;
	}
	case K_STR:
		return set_str(str, val);
	case K_INT: {
		int *p = (int *)(base + d->off);

		if (str_parse_int(p, val, d->min, d->max))
			return err_set(ERR_INVALID, "%s: \"%s\" is not a number from %d to %d", from, val, d->min, d->max);
		return 0;
	}
	case K_OINT: {
		runner_opt_int *p = (runner_opt_int *)(base + d->off);

		if (str_parse_int(&p->value, val, d->min, d->max))
			return err_set(ERR_INVALID, "%s: \"%s\" is not a number from %d to %d", from, val, d->min, d->max);
		p->set = 1;
		return 0;
	}
	case K_BOOL: {
		int *p = (int *)(base + d->off);

		if (!val || !strcmp(val, "1") || !strcasecmp(val, "true") || !strcasecmp(val, "yes"))
			*p = 1;
		else if (!strcmp(val, "0") || !strcasecmp(val, "false") || !strcasecmp(val, "no") || !*val)
			*p = 0;
		else
			return err_set(ERR_INVALID, "%s: \"%s\" is not true or false", from, val);
		return 0;
	}
	case K_ENV:
		if (runner_map_add_kv(&o->env, val))
			return err_wrap(ERR_INVALID, "%s", from);
		return 0;
	case K_SHELL: {
		char **n = realloc(o->shell, (o->nshell + 1) * sizeof(char *));

		if (!n)
			return err_set(ERR_NOMEM, "out of memory");
		o->shell = n;
		if (!(n[o->nshell] = str_dup(val)))
			return err_set(ERR_NOMEM, "out of memory");
		o->nshell++;
		return 0;
	}
	}
	return 0;
}

/* K_ENV and K_SHELL variables hold one item per line. */
static int set_from_env(runner_opts *o, const opt_def *d)
{
	const char *v = getenv(d->env);
	int rc = 0;

	if (!v)
		return 0;
	if (d->kind != K_ENV && d->kind != K_SHELL)
		return set_opt(o, d, v, d->env);
	char *copy = str_dup(v), *save = NULL;
	if (!copy)
		return err_set(ERR_NOMEM, "out of memory");
	for (char *line = strtok_r(copy, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save))
		if (*line)
			rc = set_opt(o, d, line, d->env);
	free(copy);
	return rc;
}

static int load_config_file(runner_opts *o, const char *path)
{
	FILE *f = fopen(path, "r");
	buf b = BUF_INIT(1 << 20);
	char tmp[4096];
	size_t n;
	cJSON *root = NULL;
	int rc = 0;

	if (!f)
		return err_set(ERR_NOTFOUND, "--config %s: cannot open it", path);
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		if ((rc = buf_append(&b, tmp, n)))
			break;
	fclose(f);
	if (rc) {
		buf_free(&b);
		return err_set(ERR_TOOBIG, "--config %s: larger than 1 MiB", path);
	}
	root = cJSON_ParseWithLength(b.data ? b.data : "", b.len);
	buf_free(&b);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return err_set(ERR_INVALID, "--config %s: not a JSON object", path);
	}
	for (cJSON *c = root->child; c && !rc; c = c->next) {
		const opt_def *d = NULL;
		char from[300], num[32];

		for (size_t i = 0; i < NOPTS; i++)
			if (!strcmp(opts[i].flag, c->string) && (opts[i].cmds & C_SERVE))
				d = &opts[i];
		snprintf(from, sizeof(from), "--config %.200s: %.60s", path, c->string);
		if (!d || !strcmp(c->string, "config")) {
			rc = err_set(ERR_INVALID, "%s: unknown setting", from);
		} else if (d->kind == K_LABELS || d->kind == K_TOLERATIONS || d->kind == K_AFFINITY) {
			/* the JSON value itself, through the same parser as the text of
			 * a flag (which also refuses the wrong one of object and array) */
			char *text = (cJSON_IsObject(c) || cJSON_IsArray(c)) ? cJSON_PrintUnformatted(c) : NULL;

			if (!cJSON_IsObject(c) && !cJSON_IsArray(c))
				rc = err_set(ERR_INVALID, "%s: must be a JSON %s", from,
					     d->kind == K_TOLERATIONS ? "array" : "object");
			else if (!text)
				rc = err_set(ERR_NOMEM, "out of memory");
			else
				rc = set_opt(o, d, text, from);
			cJSON_free(text);
		} else if (cJSON_IsString(c)) {
			/* the environment and flags come later and override */
			rc = set_opt(o, d, c->valuestring, from);
		} else if (cJSON_IsNumber(c)) {
			snprintf(num, sizeof(num), "%.0f", c->valuedouble);
			rc = set_opt(o, d, num, from);
		} else if (cJSON_IsBool(c)) {
			rc = set_opt(o, d, cJSON_IsTrue(c) ? "true" : "false", from);
		} else {
			rc = err_set(ERR_INVALID, "%s: must be a string, number or boolean", from);
		}
	}
	cJSON_Delete(root);
	return rc;
}

/* a <= b as quantities, both already parseable (the defaults or checked
 * values). */
static int qty_le(const char *a, const char *b)
{
	int64_t x = 0, y = 0;

	if (!a || !b || sandbox_quantity_parse(&x, a) || sandbox_quantity_parse(&y, b)) {
		err_clear();
		return 1;
	}
	return x <= y;
}

/* The sandbox settings, given ones over the defaults, must hang together. */
static int check_sandbox_settings(const runner_opts *o)
{
	sandbox_config cfg;

	runner_sandbox_config(&cfg, o);
	if (cfg.default_timeout_seconds > cfg.max_timeout_seconds)
		return err_set(ERR_INVALID, "default-timeout (%d s) is above max-timeout (%d s)",
			       cfg.default_timeout_seconds, cfg.max_timeout_seconds);
	if (!qty_le(cfg.default_cpu_request, cfg.default_cpu_limit))
		return err_set(ERR_INVALID, "cpu-request (%s) is above cpu-limit (%s)", cfg.default_cpu_request,
			       cfg.default_cpu_limit);
	if (!qty_le(cfg.default_cpu_limit, cfg.max_cpu))
		return err_set(ERR_INVALID, "cpu-limit (%s) is above max-cpu (%s)", cfg.default_cpu_limit, cfg.max_cpu);
	if (!qty_le(cfg.default_memory_request, cfg.default_memory_limit))
		return err_set(ERR_INVALID, "memory-request (%s) is above memory-limit (%s)",
			       cfg.default_memory_request, cfg.default_memory_limit);
	if (!qty_le(cfg.default_memory_limit, cfg.max_memory))
		return err_set(ERR_INVALID, "memory-limit (%s) is above max-memory (%s)", cfg.default_memory_limit,
			       cfg.max_memory);
	/* each was checked when set; this is the Job spec builder's own check */
	return sandbox_pod_settings_check(&cfg);
}

int runner_opts_parse(runner_opts *o, int argc, char **argv)
{
	int i = 2, rc;
	const char *config = NULL;

	if (argc < 2) {
		o->help = 1;
		return 0;
	}
	for (int c = 1; c <= RUNNER_CMD_VERIFY_RBAC; c++)
		if (!strcmp(argv[1], cmd_names[c]))
			o->cmd = (enum runner_cmd)c;
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		o->help = 1;
		if (argc > 2)
			for (int c = 1; c <= RUNNER_CMD_VERIFY_RBAC; c++)
				if (!strcmp(argv[2], cmd_names[c]))
					o->cmd = (enum runner_cmd)c;
		return 0;
	}
	if (o->cmd == RUNNER_CMD_NONE)
		return err_set(ERR_INVALID, "unknown command \"%s\" (run, serve, submit, verify-rbac)", argv[1]);

	/* 1. the config file (serve), found by flag or variable */
	if (o->cmd == RUNNER_CMD_SERVE) {
		config = getenv("CIFIXER_CONFIG");
		for (int j = 2; j < argc && strcmp(argv[j], "--"); j++) {
			if (!strcmp(argv[j], "--config") && j + 1 < argc)
				config = argv[j + 1];
			else if (str_has_prefix(argv[j], "--config="))
				config = argv[j] + 9;
		}
		if (config && *config && (rc = load_config_file(o, config)))
			return rc;
	}
	/* 2. the environment */
	for (size_t k = 0; k < NOPTS; k++)
		if ((opts[k].cmds & (1 << o->cmd)) && (rc = set_from_env(o, &opts[k])))
			return rc;
	/* 3. the flags: list options from flags replace the environment's */
	int env_from_flags = 0, shell_from_flags = 0;
	for (; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		const opt_def *d = NULL;
		char name[64];

		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			o->help = 1;
			return 0;
		}
		if (a[0] != '-' || !a[1])
			return err_set(ERR_INVALID, "unexpected argument \"%s\" (put the command after --)", a);
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t l = eq ? (size_t)(eq - a - 2) : strlen(a + 2);

			snprintf(name, sizeof(name), "%.*s", (int)(l < 60 ? l : 60), a + 2);
			for (size_t k = 0; k < NOPTS; k++)
				if (!strcmp(opts[k].flag, name))
					d = &opts[k];
			if (eq)
				val = eq + 1;
		} else if (!a[2]) {
			snprintf(name, sizeof(name), "%c", a[1]);
			for (size_t k = 0; k < NOPTS; k++)
				if (opts[k].short_ == a[1])
					d = &opts[k];
		}
		if (!d)
			return err_set(ERR_INVALID, "unknown option %s for %s (see ci-fixer %s --help)", a, cmd_names[o->cmd],
				       cmd_names[o->cmd]);
		if (!(d->cmds & (1 << o->cmd)))
			return err_set(ERR_INVALID, "option --%s does not apply to %s", d->flag, cmd_names[o->cmd]);
		if (d->kind != K_BOOL && !val) {
			if (i + 1 >= argc)
				return err_set(ERR_INVALID, "option --%s needs a value (%s)", d->flag, d->arg);
			val = argv[++i];
		}
		if (d->kind == K_ENV && !env_from_flags++)
			runner_map_clear(&o->env);
		if (d->kind == K_SHELL && !shell_from_flags++) {
			for (size_t k = 0; k < o->nshell; k++)
				free(o->shell[k]);
			o->nshell = 0;
		}
		char from[80];
		snprintf(from, sizeof(from), "--%s", d->flag);
		if ((rc = set_opt(o, d, val, from)))
			return rc;
	}
	if (i < argc) {
		if (!((1 << o->cmd) & C_REQ))
			return err_set(ERR_INVALID, "%s takes no command after --", cmd_names[o->cmd]);
		o->argc = (size_t)(argc - i);
		if (!(o->argv = calloc(o->argc + 1, sizeof(char *))))
			return err_set(ERR_NOMEM, "out of memory");
		for (size_t k = 0; k < o->argc; k++)
			if (!(o->argv[k] = str_dup(argv[i + (int)k])))
				return err_set(ERR_NOMEM, "out of memory");
	}
	if (o->cmd == RUNNER_CMD_SUBMIT && !o->server)
		return err_set(ERR_INVALID, "submit needs --server URL (or CIFIXER_SERVER)");
	if (((1 << o->cmd) & C_REQ) && !o->nshell && !o->argc)
		return err_set(ERR_INVALID, "no command: give -c 'SHELL COMMAND' and/or -- CMD [ARG...]");
	if (((1 << o->cmd) & C_JOB) && (rc = check_sandbox_settings(o)))
		return rc;
	return 0;
}

int runner_opts_request(runner_request **out, const runner_opts *o)
{
	runner_request *r = runner_request_new();
	int rc = 0;

	*out = NULL;
	if (!r)
		return err_set(ERR_NOMEM, "out of memory");
#define DUP(dst, src) do { if (!rc && (src) && !((dst) = str_dup(src))) rc = err_set(ERR_NOMEM, "out of memory"); } while (0)
	DUP(r->repo_url, o->repo);
	DUP(r->repo_ref, o->ref);
	DUP(r->repo_commit, o->commit);
	DUP(r->image, o->image);
	DUP(r->cpu, o->cpu);
	DUP(r->memory, o->memory);
	DUP(r->idempotency_key, o->idempotency_key);
#undef DUP
	r->timeout_seconds = o->timeout;
	r->collect_patch = 1;
	for (size_t i = 0; !rc && i < o->env.n; i++)
		rc = runner_map_add(&r->env, o->env.items[i].key, o->env.items[i].value);
	for (size_t i = 0; !rc && i < o->nshell; i++)
		rc = runner_request_add_shell(r, o->shell[i]);
	if (!rc && o->argc)
		rc = runner_request_add_argv(r, o->argv, o->argc);
	if (!rc && !r->ncommands)
		rc = err_set(ERR_INVALID, "no command: give -c 'SHELL COMMAND' and/or -- CMD [ARG...]");
	if (rc) {
		runner_request_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void runner_opts_clear(runner_opts *o)
{
	for (size_t k = 0; k < NOPTS; k++)
		if (kind_is_string(opts[k].kind))
			free(*(char **)((char *)o + opts[k].off));
	sandbox_kv_array_free(o->node_selector.items, o->node_selector.n);
	sandbox_tolerations_free(o->tolerations.items, o->tolerations.n);
	runner_map_clear(&o->env);
	for (size_t k = 0; k < o->nshell; k++)
		free(o->shell[k]);
	free(o->shell);
	for (size_t k = 0; k < o->argc; k++)
		free(o->argv[k]);
	free(o->argv);
	memset(o, 0, sizeof(*o));
}

static const char *const synopsis[] = {
	NULL,
	"ci-fixer run [options] [-c 'SHELL']... [-- CMD [ARG...]]\n\n"
	"One run without a server: creates a sandbox Job, runs the commands in it,\n"
	"streams their stdout/stderr live, collects the patch and tears the Job down.\n"
	"Phases with elapsed times go to stderr.\n\n"
	"Exit status: 0 if every command succeeded; the failing command's status;\n"
	"124 when a command timed out; 125 for an infrastructure error; 130 if cancelled\n"
	"(SIGINT/SIGTERM; the Job is still torn down).\n",
	"ci-fixer serve [options]\n\n"
	"The HTTP API (docs/api.md): POST/GET/DELETE /v1/runs, server-sent events,\n"
	"/healthz, /readyz (ready once the RBAC self-check passed), /metrics.\n"
	"JSON logs on stderr. SIGTERM drains: stop accepting, cancel runs after\n"
	"--shutdown-grace, tear every Job down, record the runs as Cancelled.\n",
	"ci-fixer submit --server URL [options] [-c 'SHELL']... [-- CMD [ARG...]]\n\n"
	"Submit a run to a ci-fixer service and stream its output live; reconnects\n"
	"with the same idempotency key if the connection breaks. Same output and exit\n"
	"status contract as `run` (125 also when the service cannot be reached).\n",
	"ci-fixer verify-rbac [options]\n\n"
	"Checks with SelfSubjectAccessReviews that the current identity can do\n"
	"everything a run needs in the namespace and none of a list of dangerous\n"
	"things. Prints a table (or --json). Exit status 0 only if both hold, 1 if\n"
	"not, 125 if the checks could not be made.\n",
};

void runner_opts_usage(FILE *f, enum runner_cmd cmd)
{
	if (cmd == RUNNER_CMD_NONE) {
		fprintf(f, "ci-fixer: a sandbox job runner for CI on Kubernetes\n\n"
			   "usage:\n"
			   "  ci-fixer run    [options] [-c 'SHELL']... [-- CMD [ARG...]]\n"
			   "  ci-fixer submit --server URL [options] [-- CMD [ARG...]]\n"
			   "  ci-fixer serve  [options]\n"
			   "  ci-fixer verify-rbac [options]\n\n"
			   "`ci-fixer COMMAND --help` lists a command's options. Every option can also\n"
			   "be set by the environment variable shown beside it.\n");
		return;
	}
	fprintf(f, "usage: %s\noptions (environment variable in brackets):\n", synopsis[cmd]);
	for (size_t k = 0; k < NOPTS; k++) {
		char left[64];

		if (!(opts[k].cmds & (1 << cmd)))
			continue;
		if (opts[k].short_)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", opts[k].short_, opts[k].flag, opts[k].arg ? " " : "",
				 opts[k].arg ? opts[k].arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", opts[k].flag, opts[k].arg ? " " : "",
				 opts[k].arg ? opts[k].arg : "");
		fprintf(f, "  %-32s %s [%s]\n", left, opts[k].help, opts[k].env);
	}
	fprintf(f, "  %-32s %s\n", "-h, --help", "this help");
}

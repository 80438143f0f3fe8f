/*
 * cli: the command line of the ci-fixer program: four subcommands (run,
 * serve, submit, verify-rbac), their flags, and the environment variable
 * behind each flag. Precedence, highest first: a flag, its environment
 * variable, the --config file (serve), the built-in default.
 */
#ifndef RUNNER_CLI_H
#define RUNNER_CLI_H

#include <stdio.h>

#include "runner/request.h"
#include "sandbox/run.h"

/* An integer setting whose every value, 0 included, is meaningful: set says
 * whether a flag, variable or config key gave it. */
typedef struct runner_opt_int {
	int set;
	int value;
} runner_opt_int;

/* The sandbox pod's nodeSelector and tolerations, parsed and checked from
 * their JSON (sandbox/placement.h); n 0: none given, or given empty. */
typedef struct runner_opt_labels {
	sandbox_kv *items;
	size_t n;
} runner_opt_labels;
typedef struct runner_opt_tolerations {
	sandbox_toleration *items;
	size_t n;
} runner_opt_tolerations;

enum runner_cmd { RUNNER_CMD_NONE = 0, RUNNER_CMD_RUN, RUNNER_CMD_SERVE, RUNNER_CMD_SUBMIT, RUNNER_CMD_VERIFY_RBAC };

typedef struct runner_opts {
	enum runner_cmd cmd;
	int help;                 /* --help: print the subcommand's help, exit 0 */

	/* Kubernetes (run, serve, verify-rbac) */
	char *kubeconfig;
	char *context;
	char *namespace_;         /* sandbox namespace */
	char *owner;              /* ci-fixer.io/owner label value */
	char *image;              /* default image */

	/* the sandbox Job's settings (run, serve); unset: sandbox_config_init's */
	runner_opt_int ttl_after_finished; /* Job ttlSecondsAfterFinished */
	runner_opt_int run_as_user;        /* non-zero */
	runner_opt_int run_as_group;
	runner_opt_int default_timeout;    /* run timeout when a request gives none */
	runner_opt_int max_timeout;        /* longer run timeouts are refused */
	runner_opt_int deadline_grace;     /* added to the timeout: activeDeadlineSeconds */
	runner_opt_int pod_start_timeout;
	runner_opt_int image_pull_grace;
	char *cpu_request, *cpu_limit, *max_cpu;          /* quantities, checked */
	char *memory_request, *memory_limit, *max_memory;
	char *workspace_size_limit;        /* the /workspace emptyDir sizeLimit */
	char *image_pull_policy;           /* Always, IfNotPresent, Never */
	char *sandbox_service_account;     /* the pod's ServiceAccount */
	runner_opt_labels node_selector;   /* --node-selector '{"K":"V"}' */
	runner_opt_tolerations tolerations;/* --tolerations '[{...}]' */
	char *affinity;                    /* --affinity '{...}': compact JSON text, checked */
	char *gpu_resource;                /* extended resource name of a GPU */
	runner_opt_int gpu_count;          /* GPUs per sandbox pod, 0: none */

	/* the request (run, submit) */
	char *repo, *ref, *commit;
	int timeout;              /* seconds, 0: default */
	runner_map env;
	char **shell;             /* -c, in order */
	size_t nshell;
	char **argv;              /* after --, NULL-terminated */
	size_t argc;
	char *patch_file;
	int json;
	char *idempotency_key;
	char *cpu, *memory;

	/* submit */
	char *server;
	char *token_file;         /* submit: the bearer token; serve: accepted tokens */

	/* serve */
	char *listen;             /* ADDR:PORT */
	char *data_dir;
	int max_concurrent;
	int queue_size;
	char *config_file;
	int retention_hours;
	int shutdown_grace;       /* seconds */
	int allow_local_repos;
	int reap_interval;        /* seconds */

	char *log_level;
	char *log_format;         /* "json" or "text" */
} runner_opts;

/* Parse argv (argv[0] is the program) and the environment into *o, which
 * the caller zeroes first. 0, or ERR_INVALID with err_msg() saying what is
 * wrong (the caller prints it with the usage hint and exits 125, as docker
 * run does). Strings in *o are owned by it: free with runner_opts_clear(). */
int runner_opts_parse(runner_opts *o, int argc, char **argv);

/* Print the help of o->cmd (the overview when RUNNER_CMD_NONE). */
void runner_opts_usage(FILE *f, enum runner_cmd cmd);

/* Build the run request the flags describe (run, submit): the commands
 * (-c ones, then the argv after --), repo, env, timeout, image, resources,
 * key. Caller frees *out with runner_request_free(). 0, ERR_INVALID when
 * there is no command, ERR_NOMEM. */
int runner_opts_request(runner_request **out, const runner_opts *o);

void runner_opts_clear(runner_opts *o);

#endif

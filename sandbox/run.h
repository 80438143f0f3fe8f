/*
 * sandbox/run: one run's life on Kubernetes (DESIGN.md "The life of a run",
 * steps 2 to 8), as one blocking call:
 *
 *   workspace (libgit2 clone/fetch into a cache, checkout into a scratch tree)
 *   -> create the Job -> wait for its pod by watch -> upload the workspace as
 *   a tar through exec stdin -> run each command through exec -> collect the
 *   container log and the workspace (tar back through exec, libgit2 diff into
 *   a patch) -> DELETE the Job with propagationPolicy=Background, on every
 *   path.
 *
 * The request and result are plain C structs (arrays with counts); the
 * runner encodes and decodes them as JSON. Strings in a request are owned by
 * whoever built it; a result is owned by the caller of sandbox_run() and
 * freed with sandbox_result_free().
 *
 * Threads: sandbox_run() runs on the caller's thread and calls the callbacks
 * on that same thread. The only thing another thread may touch is the
 * sandbox_cancel token (sandbox_cancel_request()).
 */
#ifndef SANDBOX_RUN_H
#define SANDBOX_RUN_H

#include <stddef.h>
#include <stdint.h>

/* The Kubernetes client handle (kube/client.h); sandbox only passes it on. */
typedef struct kube_client kube_client;

/* ---- the request ------------------------------------------------------ */

/* A name=value pair (env, labels). */
typedef struct sandbox_kv {
	char *name;
	char *value;
} sandbox_kv;

typedef struct sandbox_command {
	/* Exactly one of argv (argc > 0) and shell is set. argv runs as is
	 * (no shell); shell runs as `sh -c SHELL`. */
	char **argv;
	size_t argc;
	char *shell;
	int timeout_seconds;       /* 0: the run's remaining time */
	sandbox_kv *env;           /* added to (and overriding) the run's env */
	size_t env_count;
	char *workdir;             /* relative to /workspace; NULL or "" = "." */
	int continue_on_error;     /* a failure does not stop the run */
} sandbox_command;

typedef struct sandbox_repo {
	char *url;     /* https://, file://, or a local path; NULL: no repository */
	char *ref;     /* branch or tag; NULL: the remote's HEAD */
	char *commit;  /* full 40-hex sha; when set it wins over ref */
} sandbox_repo;

typedef struct sandbox_request {
	sandbox_repo repo;
	char *image;               /* NULL: cfg->default_image */
	sandbox_command *commands;
	size_t command_count;
	sandbox_kv *env;           /* for every command */
	size_t env_count;
	int timeout_seconds;       /* whole run; 0: cfg->default_timeout_seconds */
	struct {
		char *cpu;         /* Kubernetes quantity, "500m", "1"; NULL: default */
		char *memory;      /* "512Mi", "2Gi"; NULL: default */
	} resources;
	struct {
		int patch;         /* 1 collect, 0 don't, -1 default (collect) */
		int log_tail_lines;/* -1 default (cfg->log_tail_lines), 0 no log */
	} collect;
	sandbox_kv *labels;        /* extra Job labels (validated like Kubernetes labels) */
	size_t label_count;
	char *idempotency_key;     /* recorded as a Job annotation; the runner dedups */
} sandbox_request;

/* An empty request with the defaults above (collect.patch = -1,
 * collect.log_tail_lines = -1). Caller owns it; free with
 * sandbox_request_free(), which frees every string and array in it with
 * free(), so build it from malloc'd pieces. NULL on allocation failure. */
sandbox_request *sandbox_request_new(void);
void sandbox_request_free(sandbox_request *req);

/* Free the members of one command (not the struct itself). NULL-safe. */
void sandbox_command_clear(sandbox_command *cmd);

/* ---- configuration ---------------------------------------------------- */

/* One toleration of the sandbox pod (core/v1 Toleration), checked by
 * sandbox_tolerations_parse() and the Job spec builder as the API server
 * would (pkg/apis/core/validation ValidateTolerations). */
typedef struct sandbox_toleration {
	char *key;          /* NULL or "": every key (operator must be Exists) */
	char *operator_;    /* "Exists" or "Equal"; NULL: Equal (the API's default) */
	char *value;        /* Equal only; NULL: "" */
	char *effect;       /* NULL or "": every effect; NoSchedule, PreferNoSchedule, NoExecute */
	int64_t seconds;    /* tolerationSeconds (when has_seconds; NoExecute only, >= 0) */
	int has_seconds;
} sandbox_toleration;

typedef struct sandbox_config {
	const char *namespace_;          /* where Jobs go ("ci-sandbox") */
	const char *default_image;
	const char *owner;               /* this installation: ci-fixer.io/owner label value */
	const char *service_account;     /* the pod's ServiceAccount ("ci-fixer-sandbox") */
	const char *container_name;      /* "sandbox" */
	int64_t run_as_user;             /* numeric, non-zero (65532) */
	int64_t run_as_group;            /* (65532) */
	int ttl_seconds_after_finished;  /* 300 */
	int grace_seconds;               /* added to the run timeout for the Job deadline (60) */
	int default_timeout_seconds;     /* 1800 */
	int max_timeout_seconds;         /* 6 h */
	int start_timeout_seconds;       /* pod must be ready within this (300) */
	int image_pull_grace_seconds;    /* ErrImagePull tolerated this long (30) */
	int unschedulable_grace_seconds; /* Unschedulable tolerated this long, for a
					    cluster autoscaler to add a node (60) */
	int teardown_timeout_seconds;    /* the DELETE's own deadline (10) */
	const char *default_cpu_request; /* "250m" */
	const char *default_cpu_limit;   /* "1" */
	const char *max_cpu;             /* requests above this are refused ("4") */
	const char *default_memory_request; /* "256Mi" */
	const char *default_memory_limit;   /* "1Gi" */
	const char *max_memory;             /* ("8Gi") */
	const char *ephemeral_storage_limit;/* emptyDir sizeLimit for /workspace ("2Gi"); NULL none */
	size_t output_cap;               /* bytes kept per stream per command (1 MiB) */
	size_t log_cap;                  /* bytes kept of the container log (1 MiB) */
	size_t patch_cap;                /* largest patch returned (16 MiB) */
	size_t workspace_cap;            /* largest workspace tar in or out (512 MiB) */
	int log_tail_lines;              /* default tailLines (200) */
	size_t max_commands;             /* commands per request (100) */
	size_t max_command_bytes;        /* argv/shell + env of one command, as sent
					    in the exec URL (64 KiB) */
	const char *repo_cache_dir;      /* bare clones, one per URL; NULL: no cache (temp) */
	const char *scratch_dir;         /* checkouts and downloads ($TMPDIR or /tmp) */
	/* where the pod may run, and its image pull (sandbox/placement.h);
	 * none of them weakens the Pod Security hardening */
	const char *image_pull_policy;   /* Always, IfNotPresent, Never ("IfNotPresent") */
	const sandbox_kv *node_selector; /* the pod's nodeSelector; NULL: none */
	size_t node_selector_count;
	const sandbox_toleration *tolerations; /* the pod's tolerations; NULL: none */
	size_t toleration_count;
	const char *affinity;            /* the pod's affinity, JSON object text passed
					    through; NULL or "{}": none */
	const char *gpu_resource;        /* extended resource of a GPU ("nvidia.com/gpu") */
	int64_t gpu_count;               /* GPUs per pod, in limits and requests; 0: none */
} sandbox_config;

/* Fill cfg with the defaults noted above (namespace "ci-sandbox", owner
 * "default", image "debian:bookworm-slim"). Strings are static. */
void sandbox_config_init(sandbox_config *cfg);

/* Check a request against cfg before anything is created: argv/shell
 * exclusive, no NUL-free argv element empty, workdirs relative without
 * "..", env names valid, quantities parse and are within the maxima, label
 * keys/values valid, image reference valid, timeouts within range. 0, or
 * ERR_INVALID with err_msg() naming the field ("commands[1].workdir: ...").
 * The runner maps this to 400. sandbox_run() calls it too. */
int sandbox_request_validate(const sandbox_config *cfg, const sandbox_request *req);

/* ---- phases and outcomes --------------------------------------------- */

enum sandbox_phase {
	SANDBOX_PENDING = 0,
	SANDBOX_PREPARING,
	SANDBOX_RUNNING,
	SANDBOX_COLLECTING,
	SANDBOX_SUCCEEDED,   /* every command that counts exited 0 */
	SANDBOX_FAILED,      /* a command exited non-zero or timed out: the CI result */
	SANDBOX_ERROR,       /* infrastructure: never the user's code */
	SANDBOX_CANCELLED
};
#define SANDBOX_PHASE_COUNT 8

/* "Pending", "Preparing", ... ; "Unknown" out of range. */
const char *sandbox_phase_name(enum sandbox_phase p);
/* Exact name to enum: 0 or ERR_INVALID. */
int sandbox_phase_parse(enum sandbox_phase *out, const char *name);
/* Succeeded, Failed, Error, Cancelled. */
int sandbox_phase_is_terminal(enum sandbox_phase p);

/* The steps shown to a person, each reported with its elapsed time. */
enum sandbox_step {
	SANDBOX_STEP_WORKSPACE = 0,  /* "preparing workspace" */
	SANDBOX_STEP_CREATING,       /* "creating" */
	SANDBOX_STEP_WAITING,        /* "waiting for pod" */
	SANDBOX_STEP_UPLOADING,      /* "uploading" */
	SANDBOX_STEP_RUNNING,        /* "running" */
	SANDBOX_STEP_COLLECTING,     /* "collecting" */
	SANDBOX_STEP_TEARDOWN,       /* "tearing down" */
	SANDBOX_STEP_DONE            /* "done" (the terminal phase is known) */
};
const char *sandbox_step_name(enum sandbox_step s);

enum sandbox_outcome {
	SANDBOX_OUTCOME_SKIPPED = 0, /* not run (an earlier command failed, or cancelled) */
	SANDBOX_OUTCOME_EXITED,      /* exit_code is valid */
	SANDBOX_OUTCOME_TIMEOUT,     /* its timeout passed; killed */
	SANDBOX_OUTCOME_LOST         /* no status could be had (the stream broke and could not
					be reattached, or cancelled): infrastructure */
};
/* "skipped", "exited", "timeout", "lost". */
const char *sandbox_outcome_name(enum sandbox_outcome o);
int sandbox_outcome_parse(enum sandbox_outcome *out, const char *name);

/* ---- the result -------------------------------------------------------- */

/* One stream of one command, as kept: at most cfg->output_cap bytes; past
 * that the head and the tail with a marker line between them
 * ("\n[... N bytes truncated ...]\n"). bytes and sha256 are of the full
 * stream as it arrived. */
typedef struct sandbox_stream {
	char *data;          /* NUL-terminated (not counted in len); never NULL in a result */
	size_t len;
	uint64_t bytes;      /* full byte count */
	char sha256[65];     /* lower-case hex of the full stream */
	int truncated;
} sandbox_stream;

typedef struct sandbox_command_result {
	char **argv;         /* copy of the request's form */
	size_t argc;
	char *shell;
	enum sandbox_outcome outcome;
	int exit_code;       /* exited: 0..255; otherwise -1 */
	int64_t duration_ms;
	sandbox_stream out;  /* stdout */
	sandbox_stream err;  /* stderr */
	int truncated;       /* out.truncated || err.truncated */
	char *message;       /* why, when not a plain exit ("timed out after 10 s"); may be NULL */
	int breaks;          /* exec streams that ended before the command's status came */
	int reattaches;      /* execs made again to continue after a break */
} sandbox_command_result;

typedef struct sandbox_timings {
	int64_t queued_ms;      /* set by the runner (accept to start); sandbox leaves 0 */
	int64_t workspace_ms;   /* clone/fetch + checkout + tar */
	int64_t create_ms;      /* POST of the Job */
	int64_t pod_ready_ms;   /* Job created to pod ready */
	int64_t upload_ms;
	int64_t run_ms;         /* all commands */
	int64_t collect_ms;     /* logs + workspace download + diff */
	int64_t teardown_ms;
	int64_t total_ms;       /* sandbox_run() from entry to return */
} sandbox_timings;

typedef struct sandbox_result {
	char *id;
	enum sandbox_phase phase;
	char *reason;        /* CamelCase word, "" on success (never NULL) */
	char *message;       /* a sentence a person can act on, "" on success */
	int64_t created_at_ms;   /* wall ms; set by the runner (sandbox leaves 0) */
	int64_t started_at_ms;   /* sandbox_run() entry */
	int64_t finished_at_ms;  /* sandbox_run() return */
	struct {
		char *namespace_;
		char *name;
	} job;
	char *image;
	char *commit;        /* the base commit checked out (40 hex), NULL without repo */
	sandbox_command_result *commands;  /* one per request command, in order */
	size_t command_count;
	char *logs;          /* container log tail, NUL-terminated, never NULL */
	size_t logs_len;
	char *patch;         /* unified diff ("" when nothing changed or not
				collected), NUL-terminated, never NULL */
	size_t patch_len;
	sandbox_timings timings;
} sandbox_result;

/* A result in phase Pending for id (copied), with empty strings and no
 * commands. Caller frees with sandbox_result_free(). NULL on allocation
 * failure. The runner may use it for queued runs. */
sandbox_result *sandbox_result_new(const char *id);
void sandbox_result_free(sandbox_result *res);

/* ---- callbacks ---------------------------------------------------------- */

typedef struct sandbox_callbacks {
	void *ctx;
	/* The phase or step changed. elapsed_ms: since sandbox_run() began.
	 * message: what is happening ("pod cifix-x-abcde ready"), may be "". */
	void (*on_phase)(void *ctx, enum sandbox_phase phase, enum sandbox_step step,
			 int64_t elapsed_ms, const char *message);
	/* A command is starting. */
	void (*on_command_start)(void *ctx, size_t index, const sandbox_command *cmd);
	/* Output as it arrives: stream 1 stdout, 2 stderr; data not
	 * NUL-terminated, valid only during the call. */
	void (*on_output)(void *ctx, size_t index, int stream, const char *data, size_t len);
	/* A command finished (any outcome but skipped). */
	void (*on_command_done)(void *ctx, size_t index, const sandbox_command_result *res);
} sandbox_callbacks;

/* ---- cancellation ----------------------------------------------------- */

/* A token another thread sets to stop a run. sandbox_run() notices it
 * between steps and inside every wait (watch, exec), ends in phase
 * Cancelled and still tears the Job down. */
typedef struct sandbox_cancel sandbox_cancel;

/* Caller owns it; free with sandbox_cancel_free() after sandbox_run()
 * returned. 0 or ERR_NOMEM/ERR_FAIL. */
int sandbox_cancel_new(sandbox_cancel **out);
void sandbox_cancel_free(sandbox_cancel *c);
/* Thread-safe, idempotent. reason: a CamelCase word for the result
 * ("Cancelled" when NULL; e.g. "Shutdown" on SIGTERM). The first reason wins. */
void sandbox_cancel_request(sandbox_cancel *c, const char *reason);
/* 1 once requested. Thread-safe. */
int sandbox_cancel_requested(sandbox_cancel *c);
/* The reason given (a static or token-owned string), "" if not cancelled. */
const char *sandbox_cancel_reason(sandbox_cancel *c);
/* A file descriptor that becomes readable once cancelled (for poll()). */
int sandbox_cancel_fd(sandbox_cancel *c);

/* ---- the run ---------------------------------------------------------- */

/*
 * Run req to its end. Always sets *out to a result (unless allocation
 * fails), whose phase is terminal; the Job cluster-side has been deleted
 * (propagationPolicy=Background) when it returns, whatever happened, unless
 * the DELETE itself failed (then the message says so and the reaper and
 * ttlSecondsAfterFinished are the backstops).
 *
 * run_id: the run's id, [a-z0-9-], used in the Job name cifix-<id> (cut to
 * 63 characters) and the ci-fixer.io/run-id label.
 * cb and cancel may be NULL.
 *
 * Returns 0 when a result was produced (any phase: check (*out)->phase),
 * ERR_INVALID when the request fails sandbox_request_validate() (then
 * *out is an Error result with reason InvalidRequest and nothing was
 * created), ERR_NOMEM. Caller frees *out with sandbox_result_free().
 */
int sandbox_run(sandbox_result **out, kube_client *kc, const sandbox_config *cfg,
		const sandbox_request *req, const char *run_id,
		const sandbox_callbacks *cb, sandbox_cancel *cancel);

/* ---- backstops ---------------------------------------------------------- */

/* The Job name for a run id: "cifix-" + id. run_id must be 1 to 57
 * characters of [a-z0-9-], starting and ending alphanumeric (so the name is a
 * DNS-1123 label of at most 63 characters and the id a valid label value).
 * out holds 64 bytes. 0 or ERR_INVALID. */
int sandbox_job_name(char out[64], const char *run_id);

/* A Job of this installation found in the cluster. */
typedef struct sandbox_job_ref {
	char *name;
	char *run_id;            /* the ci-fixer.io/run-id label */
	int64_t created_ms;      /* creationTimestamp, wall ms */
	int finished;            /* Complete or Failed condition True */
	int deleting;            /* deletionTimestamp set */
} sandbox_job_ref;

/* List the Jobs in cfg->namespace_ labelled ci-fixer.io/owner=cfg->owner and
 * app.kubernetes.io/managed-by=ci-fixer. Caller frees with
 * sandbox_job_refs_free(). 0 or a kube error code (err_msg() says why). */
int sandbox_jobs_list(sandbox_job_ref **out, size_t *count, kube_client *kc,
		      const sandbox_config *cfg);
void sandbox_job_refs_free(sandbox_job_ref *refs, size_t count);

/* Delete the Job of run_id with propagationPolicy=Background within
 * cfg->teardown_timeout_seconds. 0 (also when already gone) or an error. */
int sandbox_job_delete(kube_client *kc, const sandbox_config *cfg, const char *run_id);

/* Does a live run own run_id? 1 yes (keep its Job), 0 no. Called from the
 * reaper's thread. */
typedef int (*sandbox_owned_fn)(void *ctx, const char *run_id);

/* The reaper: delete every Job of this installation (see sandbox_jobs_list)
 * whose run id no live run owns (owned(ctx, run_id) == 0), and that is not
 * already being deleted. The runner calls it at start-up and periodically.
 * *deleted (may be NULL) gets the count deleted. 0, or the first error
 * (the others are still attempted). */
int sandbox_reap(size_t *deleted, kube_client *kc, const sandbox_config *cfg,
		 sandbox_owned_fn owned, void *ctx);

#endif

/*
 * request: the run request document of DESIGN.md ("Interfaces in detail"),
 * decoded strictly from JSON (POST /v1/runs) or built from CLI flags, and
 * validated in one place so that the HTTP API, `run` and `submit` refuse
 * exactly the same things with exactly the same messages.
 *
 * Strict means: the body has a size cap; it must be valid UTF-8 JSON with an
 * object at the top; unknown and duplicate fields are rejected; every value
 * has its JSON type; numbers are integers in range; strings carry no NUL;
 * lists and maps have caps (commands, argv, env, labels). Each refusal names
 * the field at fault with its path in the document ("commands[2].argv[0]",
 * the notation of Kubernetes field.Path, k/k
 * s/apimachinery/pkg/util/validation/field/path.go) and says what to do.
 */
#ifndef RUNNER_REQUEST_H
#define RUNNER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* One string-to-string map (env, labels), in the order given. */
typedef struct runner_kv {
	char *key;
	char *value;
} runner_kv;

typedef struct runner_map {
	runner_kv *items;
	size_t n;
} runner_map;

/* One command: exactly one of argv (argc >= 1) or shell is set. */
typedef struct runner_command {
	char **argv;          /* NULL-terminated, argc entries */
	size_t argc;
	char *shell;          /* shell form: run as sh -c SHELL */
	int timeout_seconds;  /* 0: the run's remaining time */
	runner_map env;       /* on top of the run's env */
	char *workdir;        /* relative to the workspace; NULL: the workspace */
	int continue_on_error;
} runner_command;

typedef struct runner_request {
	char *repo_url;       /* NULL: the workspace starts empty */
	char *repo_ref;       /* NULL: the remote's HEAD */
	char *repo_commit;    /* NULL or a full lower-case hex object id */
	char *image;          /* NULL: the configured default */
	runner_command *commands;
	size_t ncommands;
	runner_map env;
	int timeout_seconds;  /* 0: the configured default */
	char *cpu;            /* Kubernetes quantities; NULL: defaults */
	char *memory;
	int collect_patch;    /* default 1 */
	int log_tail_lines;   /* default RUNNER_DEFAULT_LOG_TAIL */
	runner_map labels;
	char *idempotency_key;
} runner_request;

#define RUNNER_DEFAULT_LOG_TAIL 200

/* The caps a request is checked against. RUNNER_LIMITS_INIT holds the
 * defaults; a server may tighten or widen them from its configuration. */
typedef struct runner_limits {
	size_t max_body;            /* bytes of JSON */
	size_t max_commands;
	size_t max_argv;            /* entries in one argv */
	size_t max_arg_bytes;       /* one argv entry, one shell string */
	size_t max_command_bytes;   /* all of one command's argv/shell bytes */
	size_t max_env;             /* entries in one env map */
	size_t max_env_bytes;       /* keys + values of one env map */
	size_t max_labels;
	int max_timeout_seconds;    /* run and command timeouts */
	int max_log_tail_lines;
	int64_t max_cpu_millis;     /* resources.cpu upper bound */
	int64_t max_memory_bytes;   /* resources.memory upper bound */
	int allow_local_repos;      /* file:// URLs and absolute paths */
} runner_limits;

#define RUNNER_LIMITS_INIT { \
	1024 * 1024,  /* max_body */ \
	100,          /* max_commands */ \
	1024,         /* max_argv */ \
	64 * 1024,    /* max_arg_bytes */ \
	256 * 1024,   /* max_command_bytes */ \
	256,          /* max_env */ \
	64 * 1024,    /* max_env_bytes */ \
	32,           /* max_labels */ \
	24 * 3600,    /* max_timeout_seconds */ \
	10000,        /* max_log_tail_lines */ \
	16000,        /* max_cpu_millis: 16 cores */ \
	(int64_t)32 << 30, /* max_memory_bytes: 32 GiB */ \
	0             /* allow_local_repos */ \
}

/* What was wrong with a refused request: the HTTP status to answer (400,
 * 413 body too large), a CamelCase reason, the field's path ("" for the
 * document as a whole) and a sentence naming it. */
typedef struct runner_request_error {
	int status;
	char reason[32];
	char field[256];
	char message[512];
} runner_request_error;

/* Decode and validate a JSON request of len bytes (no NUL terminator
 * needed). On success *out is a new request (caller frees it with
 * runner_request_free()) and 0 is returned; on refusal *out is NULL, *e
 * says why, and ERR_INVALID or ERR_TOOBIG is returned. */
int runner_request_decode(runner_request **out, runner_request_error *e,
			  const char *json, size_t len, const runner_limits *lim);

/* Validate a request built in memory (the CLI builds one from its flags):
 * the same checks as the decoder after parsing. 0 or ERR_INVALID with *e. */
int runner_request_validate(const runner_request *r, runner_request_error *e,
			    const runner_limits *lim);

/* Encode a request as the JSON document the decoder accepts (what `submit`
 * sends). Appends to out. 0 or the buf's error. */
int runner_request_encode(buf *out, const runner_request *r);

/* A new empty request with the defaults (collect_patch 1, log tail 200).
 * NULL on allocation failure. Free with runner_request_free(). */
runner_request *runner_request_new(void);

/* Append an argv or shell command to a request being built (the CLI).
 * argv is copied. 0 or ERR_NOMEM. */
int runner_request_add_argv(runner_request *r, char *const *argv, size_t argc);
int runner_request_add_shell(runner_request *r, const char *shell);

/* Append KEY=VALUE to a map (copied). 0, ERR_INVALID without '=', ERR_NOMEM. */
int runner_map_add_kv(runner_map *m, const char *key_eq_value);
int runner_map_add(runner_map *m, const char *key, const char *value);

/* Look a key up; NULL when absent. */
const char *runner_map_get(const runner_map *m, const char *key);

void runner_map_clear(runner_map *m);

/* Free a request and everything in it. NULL-safe. */
void runner_request_free(runner_request *r);

/* Parse a Kubernetes quantity ("500m", "2", "1.5", "2Gi", "512M", "1e3")
 * into a whole number of units scaled by 10^scale_pow10 (3 for millicores,
 * 0 for bytes), rounding up as Kubernetes does. 0, or ERR_INVALID for a
 * malformed quantity, ERR_TOOBIG if it does not fit. Grammar from k/k
 * s/apimachinery/pkg/api/resource/quantity.go. */
int runner_quantity_parse(int64_t *out, const char *s, int scale_pow10);

/* Checks shared with the CLI and the tests. Each returns 1 if valid and
 * otherwise 0 with a short reason in why[why_size]. */
int runner_image_ref_valid(const char *s, char *why, size_t why_size);
int runner_repo_url_valid(const char *s, int allow_local, char *why, size_t why_size);
int runner_git_ref_valid(const char *s, char *why, size_t why_size);
int runner_workdir_valid(const char *s, char *why, size_t why_size);

#endif

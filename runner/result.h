/*
 * result: the run document of DESIGN.md ("Interfaces in detail"): what
 * GET /v1/runs/{id}, `run --json` and the last server-sent event carry, and
 * what the run store keeps. One encoder and one strict-enough decoder (the
 * `submit` client reads documents from the network; the store reads its own
 * rows back), plus the exit status contract of `run` and `submit`.
 */
#ifndef RUNNER_RESULT_H
#define RUNNER_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

enum runner_phase {
	RUNNER_PENDING = 0,
	RUNNER_PREPARING,
	RUNNER_RUNNING,
	RUNNER_COLLECTING,
	RUNNER_SUCCEEDED,
	RUNNER_FAILED,
	RUNNER_ERROR,
	RUNNER_CANCELLED
};
#define RUNNER_NPHASES 8

enum runner_outcome {
	RUNNER_OUTCOME_NONE = 0, /* not run yet (an in-flight document) */
	RUNNER_OUTCOME_EXITED,
	RUNNER_OUTCOME_TIMEOUT,
	RUNNER_OUTCOME_LOST,
	RUNNER_OUTCOME_SKIPPED
};

/* Exit statuses of `run` and `submit` (docker run's convention). */
#define RUNNER_EXIT_INFRA 125
#define RUNNER_EXIT_CANCELLED 130
#define RUNNER_EXIT_TIMEOUT 124 /* a command timed out: timeout(1)'s status */

typedef struct runner_cmd_result {
	char **argv;            /* NULL-terminated, or NULL for a shell command */
	size_t argc;
	char *shell;
	enum runner_outcome outcome;
	int exit_code;          /* meaningful when outcome is EXITED */
	int64_t duration_ms;
	char *out;              /* kept stdout (head + marker + tail when truncated) */
	size_t out_len;
	char *err;              /* kept stderr */
	size_t err_len;
	uint64_t out_bytes;     /* full byte counts */
	uint64_t err_bytes;
	char out_sha256[65];    /* hex of the full stream; "" if unknown */
	char err_sha256[65];
	int truncated;
} runner_cmd_result;

typedef struct runner_run_doc {
	char *id;
	enum runner_phase phase;
	char *reason;           /* CamelCase word, NULL for "" */
	char *message;          /* a sentence, NULL for "" */
	int64_t created_ms;     /* wall ms since the epoch; 0 = not reached */
	int64_t started_ms;
	int64_t finished_ms;
	char *job_namespace;
	char *job_name;
	runner_cmd_result *cmds;
	size_t ncmds;
	char *logs;
	char *patch;
	int64_t queued_ms;      /* timings; -1 = not measured */
	int64_t pod_ready_ms;
	int64_t upload_ms;
} runner_run_doc;

/* "Pending", "Preparing", ... ; runner_phase_parse: 0 or ERR_INVALID. */
const char *runner_phase_name(enum runner_phase p);
int runner_phase_parse(enum runner_phase *out, const char *s);
int runner_phase_terminal(enum runner_phase p);
const char *runner_outcome_name(enum runner_outcome o);

/* A new empty document (phase Pending, timings -1). NULL on no memory.
 * Free with runner_run_doc_free(). */
runner_run_doc *runner_run_doc_new(void);
void runner_run_doc_free(runner_run_doc *d);

/* Set one of the document's string fields to a copy of s (NULL clears).
 * 0 or ERR_NOMEM. */
int runner_doc_set(char **field, const char *s);

/* Encode the document as JSON (DESIGN.md's shape), appended to out. With
 * with_output 0, stdout, stderr, logs and patch are left out (list views).
 * 0 or the buf's error (ERR_TOOBIG past its cap). */
int runner_run_doc_encode(buf *out, const runner_run_doc *d, int with_output);

/* Decode a run document of len bytes. Unknown fields are ignored (a newer
 * server may add some); wrong types are ERR_INVALID with a message. The
 * caller frees *out with runner_run_doc_free(). Input over max_len is
 * ERR_TOOBIG. */
int runner_run_doc_decode(runner_run_doc **out, const char *json, size_t len, size_t max_len);

/* The exit status of `run` / `submit` for a finished document: 0 when
 * Succeeded, the first failing command's exit code when Failed (124 when it
 * timed out), 125 for Error (or a non-terminal document), 130 Cancelled. */
int runner_run_doc_exit_status(const runner_run_doc *d);

#endif

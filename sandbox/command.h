/*
 * command: what runs in the pod through exec: the user's commands (with a
 * per-command timeout that also kills the process in the pod), the
 * workspace upload and download, and the container log.
 */
#ifndef SANDBOX_COMMAND_H
#define SANDBOX_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "kube/client.h"
#include "sandbox/run.h"
#include "sandbox/workspace.h"

/* Where command i keeps its output, status and pid in the pod (/tmp is an
 * emptyDir): BASE/c<i>.out, .err, .status, .pid, .lock (.killed). */
#define SANDBOX_CMD_BASE "/tmp/.ci-fixer"

/* Reattaching after a broken exec stream gives up after this many attempts
 * in a row that brought no new byte (with a backoff of 0.25 s doubling to
 * 4 s between them), or this many attempts for one command in all. */
#define SANDBOX_REATTACH_IDLE_MAX 6
#define SANDBOX_REATTACH_MAX 100

/*
 * The exec argv for command i of req, continuing from out_off/err_off bytes
 * of its stdout/stderr: a POSIX sh wrapper that starts the command once
 * (exporting its env, entering /workspace/WORKDIR; argv form as is, shell
 * form as `sh -c SHELL`) detached, with its output and status in files
 * under SANDBOX_CMD_BASE, and streams them back from the offsets in the
 * frames of sandbox/follow.h. The same argv (with new offsets) reattaches.
 * Every user string travels as its own argv element, never inside the
 * script. *out is NULL-terminated; caller frees with sandbox_argv_free().
 * 0, ERR_INVALID (bad workdir or env name), ERR_NOMEM.
 */
int sandbox_command_argv(char ***out, const sandbox_request *req, size_t i, uint64_t out_off,
			 uint64_t err_off);
void sandbox_argv_free(char **argv);

/* How a command ended, for the run to decide its phase. */
enum sandbox_command_end {
	SANDBOX_END_EXITED = 0,     /* res->exit_code is valid */
	SANDBOX_END_TIMEOUT,        /* its own timeoutSeconds passed; killed */
	SANDBOX_END_DEADLINE,       /* the run's deadline passed; killed */
	SANDBOX_END_CANCELLED,      /* cancel requested; killed */
	SANDBOX_END_LOST,           /* no status could be had: reattaching failed or
				       was given up, or the follower's stream was wrong */
	SANDBOX_END_EXEC_FAILED     /* exec refused or the command could not be started */
};

/*
 * Run command i of req in pod. res must hold the command's form already;
 * this fills outcome, exit_code, duration, the two streams, breaks,
 * reattaches and message. Output goes to cb->on_output as it arrives. A
 * stream that breaks is reattached (see SANDBOX_REATTACH_*) and continues
 * where it stopped. After a timeout, deadline or cancellation the process
 * tree in the pod is killed through another exec. Returns the enum
 * sandbox_command_end value (>= 0); res->message has the detail for LOST
 * and EXEC_FAILED.
 */
int sandbox_command_run(sandbox_command_result *res, kube_client *kc, const sandbox_config *cfg,
			const char *pod, const sandbox_request *req, size_t i,
			int64_t run_deadline_ms, const sandbox_callbacks *cb, sandbox_cancel *cancel);

/* Upload the workspace's tar into /workspace (`head -c N | tar -x`).
 * 0, or an error with tar's stderr quoted. */
int sandbox_upload(kube_client *kc, const sandbox_config *cfg, const char *pod,
		   const char *tar, size_t len, sandbox_cancel *cancel, int64_t deadline_ms);

/* Download /workspace as a tar (`tar -c`) into sandbox_workspace_collect_feed().
 * 0, or an error (tar's stderr quoted, or the reader's error). */
int sandbox_download(kube_client *kc, const sandbox_config *cfg, const char *pod,
		     sandbox_workspace *ws, sandbox_cancel *cancel, int64_t deadline_ms);

/* The container log, tail-limited and capped at cfg->log_cap. *out is
 * NUL-terminated, caller frees. 0 or an API error. */
int sandbox_logs(char **out, size_t *len, kube_client *kc, const sandbox_config *cfg,
		 const char *pod, int tail_lines, int64_t deadline_ms);

#endif

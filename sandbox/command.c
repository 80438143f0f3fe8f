/*
 * command: the sandbox's uses of pods/exec.
 *
 * Durable commands. An exec stream can break while the command goes on in
 * the pod: a cut connection, an API server restart, an idle proxy. So a
 * user command does not run as the exec's own process (whose output and
 * status die with the stream) but under a small POSIX sh wrapper (SCRIPT
 * below) that starts it detached, with stdout, stderr and the exit status
 * going to files in /tmp (an emptyDir), and then follows those files,
 * sending what is new in offset-stamped frames (sandbox/follow.h) and, at
 * the end, the status. When the stream breaks, the runner execs the same
 * wrapper again with the byte offsets it already has: the wrapper sees the
 * command was started (an atomic mkdir) and streams from those offsets, so
 * nothing is lost or repeated, and the exit code is the one in the status
 * file. This is GitLab Runner's approach for its Kubernetes executor
 * (output to a log file in the pod, read back by offset after a
 * reconnect). Reattaching is bounded (SANDBOX_REATTACH_*); when it is
 * impossible (the pod or the files are gone) the command is lost, never a
 * success.
 *
 * The user's strings are positional parameters, never part of the script,
 * so there is nothing to quote and nothing to inject. Closing an exec
 * stream does not stop the process in the container (the kubelet's
 * streaming server only ends the session), so after a timeout or a cancel a
 * second exec (KILL below) sends TERM, then KILL, to the wrapper and every
 * descendant found through /proc: no process-group tricks, which need job
 * control that sh without a tty does not have.
 *
 * The upload reads a length-carrying stream (`head -c N | tar -x`), because
 * under the v4 exec protocol stdin cannot be half-closed (k/k #89899).
 */
#include "sandbox/command.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/exec.h"
#include "kube/exec_status.h"
#include "kube/resources.h"
#include "sandbox/cancel.h"
#include "sandbox/capture.h"
#include "sandbox/follow.h"
#include "sandbox/jobspec.h"
#include "sandbox/validate.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

/*
 * The wrapper (SCRIPT): `sh -c SCRIPT ci-fixer BASE I OUT_OFF ERR_OFF
 * WORKDIR NAME=VALUE... -- ARGV...`, with D = BASE/cI. Every exec of
 * command I runs it, the first one and every reattach alike:
 *  - start, once: creating D.lock with noclobber (O_EXCL: atomic) is the
 *    lock, so whichever exec gets there first starts the command and a
 *    later one only follows. The command runs detached from the exec, as an
 *    asynchronous list, with stdout and stderr going to D.out and D.err;
 *    its exit status is written to D.status (non-empty only once written)
 *    and its wrapper's pid to D.pid. The files of command I-1 are removed.
 *  - follow: stream D.out and D.err from the given offsets in the frames of
 *    sandbox/follow.h until D.status is there, then the X frame. The status
 *    is looked at before the sizes, so the sizes read after it are final.
 *    Polling starts at 20 ms after new output and slows to 250 ms when
 *    idle, 500 ms after about 5 s of silence. It gives up (exit 125, a
 *    "ci-fixer:" line on stderr) when the files are gone or the command
 *    died without a status (killed).
 * Forks are few (one wc per round for both sizes, head (tail|head past
 * offset 0) only for new output, builtins for the rest): a loaded node
 * makes each one slow.
 * Exit 125 is only the follower's: the command's code travels in X.
 */
static const char SCRIPT[] =
	"b=$1; i=$2; oo=$3; eo=$4; w=$5; shift 5; d=$b/c$i\n"
	"[ -d \"$b\" ] || mkdir -p \"$b\" 2>/dev/null\n"
	"set -C\n"
	"if { true > \"$d.lock\"; } 2>/dev/null; then\n"
	"\tset +C\n"
	"\tif [ \"$i\" -gt 0 ] && [ -e \"$b/c$((i - 1)).lock\" ]; then rm -f \"$b/c$((i - 1))\".*; fi\n"
	"\t{ true > \"$d.out\" && true > \"$d.err\"; } 2>/dev/null || { echo \"ci-fixer: cannot write to $b\" >&2; exit 125; }\n"
	"\t(\n"
	"\t\twhile [ \"$#\" -gt 0 ] && [ \"$1\" != \"--\" ]; do export \"$1\"; shift; done\n"
	"\t\t[ \"$#\" -gt 0 ] && shift\n"
	"\t\tif cd \"$w\" 2>/dev/null; then (exec \"$@\"); s=$?\n"
	"\t\telse echo \"ci-fixer: cannot enter the working directory $w\" >&2; s=127; fi\n"
	"\t\techo \"$s\" > \"$d.status\"\n"
	"\t) < /dev/null >> \"$d.out\" 2>> \"$d.err\" &\n"
	"\techo \"$!\" > \"$d.pid\"\n"
	"fi\n"
	"set +C\n"
	"t=0\n"
	"while :; do\n"
	"\tf=0; [ -s \"$d.status\" ] && f=1\n"
	"\tif [ \"$f\" = 0 ] && { [ -e \"$d.killed\" ] || [ \"$t\" -ge 3 ]; }; then\n"
	"\t\tp=; read -r p 2>/dev/null < \"$d.pid\"\n"
	"\t\tif [ -e \"$d.killed\" ] || { [ -n \"$p\" ] && ! kill -0 \"$p\" 2>/dev/null; }; then\n"
	"\t\t\t[ -s \"$d.status\" ] && f=1 || { echo \"ci-fixer: the command ended without an exit status (killed)\" >&2; exit 125; }\n"
	"\t\tfi\n"
	"\tfi\n"
	"\tset -- $(wc -c \"$d.out\" \"$d.err\" 2>/dev/null)\n"
	"\t[ \"$2\" = \"$d.out\" ] && [ \"$4\" = \"$d.err\" ] || { echo \"ci-fixer: the command's files in $b are gone\" >&2; exit 125; }\n"
	"\tif [ \"$1\" -gt \"$oo\" ]; then\n"
	"\t\tprintf 'O %s %s\\n' \"$oo\" $(($1 - oo))\n"
	"\t\tif [ \"$oo\" = 0 ]; then head -c \"$1\" < \"$d.out\"; else tail -c +$((oo + 1)) \"$d.out\" | head -c $(($1 - oo)); fi\n"
	"\t\too=$1; t=0\n"
	"\tfi\n"
	"\tif [ \"$3\" -gt \"$eo\" ]; then\n"
	"\t\tprintf 'E %s %s\\n' \"$eo\" $(($3 - eo))\n"
	"\t\tif [ \"$eo\" = 0 ]; then head -c \"$3\" < \"$d.err\"; else tail -c +$((eo + 1)) \"$d.err\" | head -c $(($3 - eo)); fi\n"
	"\t\teo=$3; t=0\n"
	"\tfi\n"
	"\tif [ \"$f\" = 1 ]; then read -r c < \"$d.status\"; printf 'X %s %s %s\\n' \"$c\" \"$oo\" \"$eo\"; exit 0; fi\n"
	"\tcase $t in 0) s=0.02;; 1) s=0.05;; 2) s=0.1;; 3) s=0.2;; [4-9]|1[0-9]) s=0.25;; *) s=0.5;; esac\n"
	"\tt=$((t + 1))\n"
	"\tsleep \"$s\" 2>/dev/null || sleep 1\n"
	"done\n";

/* `sh -c KILL ci-fixer-kill D`: mark command D as killed (its followers
 * then stop), TERM its wrapper and every descendant, KILL what is left
 * after up to 3 s. */
static const char KILL[] =
	": > \"$1.killed\" 2>/dev/null\n"
	"p=; read -r p 2>/dev/null < \"$1.pid\"\n"
	"[ -n \"$p\" ] || exit 0\n"
	"tree() {\n"
	"\techo \"$1\"\n"
	"\tfor s in /proc/[0-9]*/status; do\n"
	"\t\tpp=\n"
	"\t\twhile read -r k v; do\n"
	"\t\t\tif [ \"$k\" = PPid: ]; then pp=$v; break; fi\n"
	"\t\tdone < \"$s\" 2>/dev/null\n"
	"\t\tif [ \"$pp\" = \"$1\" ]; then c=${s#/proc/}; tree \"${c%/status}\"; fi\n"
	"\tdone\n"
	"}\n"
	"kill -TERM $(tree \"$p\") 2>/dev/null\n"
	"for i in 1 2 3; do kill -0 \"$p\" 2>/dev/null || break; sleep 1; done\n"
	"kill -KILL $(tree \"$p\") 2>/dev/null\n"
	"exit 0\n";

void sandbox_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

int sandbox_command_argv(char ***out, const sandbox_request *req, size_t i, uint64_t out_off,
			 uint64_t err_off)
{
	const sandbox_command *c = &req->commands[i];
	size_t n = 9 + c->env_count + 1 + (c->shell ? 3 : c->argc) + 1, k = 0;
	char **v = calloc(n, sizeof(char *));
	int rc = ERR_NOMEM;

	*out = NULL;
	if (!v)
		return err_set(ERR_NOMEM, "out of memory");
	if (!sandbox_workdir_valid(c->workdir)) {
		rc = err_set(ERR_INVALID, "commands[%zu].workdir: must stay inside /workspace", i);
		goto fail;
	}
	if (!(v[k++] = str_dup("sh")) || !(v[k++] = str_dup("-c")) || !(v[k++] = str_dup(SCRIPT)) ||
	    !(v[k++] = str_dup("ci-fixer")) || !(v[k++] = str_dup(SANDBOX_CMD_BASE)) ||
	    !(v[k++] = str_printf("%zu", i)) ||
	    !(v[k++] = str_printf("%llu", (unsigned long long)out_off)) ||
	    !(v[k++] = str_printf("%llu", (unsigned long long)err_off)) ||
	    !(v[k++] = str_printf("%s/%s", SANDBOX_WORKSPACE,
				  c->workdir && *c->workdir ? c->workdir : ".")))
		goto fail;
	for (size_t e = 0; e < c->env_count; e++) {
		if (!sandbox_env_name_valid(c->env[e].name)) {
			rc = err_set(ERR_INVALID, "commands[%zu].env: bad name", i);
			goto fail;
		}
		if (!(v[k++] = str_printf("%s=%s", c->env[e].name, c->env[e].value ? c->env[e].value : "")))
			goto fail;
	}
	if (!(v[k++] = str_dup("--")))
		goto fail;
	if (c->shell) {
		if (!(v[k++] = str_dup("sh")) || !(v[k++] = str_dup("-c")) || !(v[k++] = str_dup(c->shell)))
			goto fail;
	} else {
		for (size_t a = 0; a < c->argc; a++)
			if (!(v[k++] = str_dup(c->argv[a])))
				goto fail;
	}
	v[k] = NULL;
	*out = v;
	return 0;
fail:
	sandbox_argv_free(v);
	if (rc == ERR_NOMEM)
		err_set(ERR_NOMEM, "out of memory");
	return rc;
}

/* ---- one command ------------------------------------------------------- */

static void backoff(int ms, sandbox_cancel *cancel, int64_t deadline);

typedef struct out_ctx {
	sandbox_capture *cap[2];
	const sandbox_callbacks *cb;
	size_t index;
	sandbox_follow *fw;
	int proto_rc;          /* the frame reader refused the stream */
	char proto_msg[256];
	buf diag;              /* the follower's own stderr, its start */
} out_ctx;

static int on_data(void *arg, int stream, const char *p, size_t n)
{
	out_ctx *o = arg;

	sandbox_capture_append(o->cap[stream - 1], p, n);
	if (o->cb && o->cb->on_output)
		o->cb->on_output(o->cb->ctx, o->index, stream, p, n);
	return 0;
}

static int on_frames(void *arg, const void *p, size_t n)
{
	out_ctx *o = arg;
	int rc = sandbox_follow_feed(o->fw, p, n);

	if (rc && !o->proto_rc) {
		o->proto_rc = rc;
		str_copy(o->proto_msg, sizeof(o->proto_msg), err_msg());
	}
	return rc;
}

static int on_diag(void *arg, const void *p, size_t n)
{
	out_ctx *o = arg;

	if (o->diag.len < o->diag.max)
		buf_append(&o->diag, p, n < o->diag.max - o->diag.len ? n : o->diag.max - o->diag.len);
	return 0;
}

static int discard(void *arg, const void *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
	return 0;
}

/* kube_exec_run, again after a refusal before the upgrade (429, 5xx, a
 * connection failure: nothing ran in the pod, so it is safe), up to 4
 * attempts over about 3.5 s, as an API server that restarts looks. */
static int exec_retrying(kube_exec_result *r, kube_client *kc, const kube_exec_opts *o,
			 sandbox_cancel *cancel)
{
	int rc;

	for (int attempt = 0;; attempt++) {
		rc = kube_exec_run(r, kc, o);
		if (rc != ERR_AGAIN || r->protocol != 0 || attempt == 3 || sandbox_cancel_requested(cancel) ||
		    (o->deadline_ms && clock_remaining_ms(o->deadline_ms) == 0))
			return rc;
		backoff(500 << attempt, cancel, o->deadline_ms);
	}
}

/* Run one exec in the sandbox container of POD with O's argv and callbacks,
 * retried as exec_retrying does, bounded by DEADLINE_MS and ended early by
 * CANCEL (may be NULL). */
static int exec_in_pod(kube_exec_result *r, kube_client *kc, const sandbox_config *cfg, const char *pod,
		       kube_exec_opts *o, sandbox_cancel *cancel, int64_t deadline_ms)
{
	kube_cancel kcancel = KUBE_CANCEL_INIT;
	int rc;

	o->ns = cfg->namespace_;
	o->pod = pod;
	o->container = cfg->container_name;
	o->deadline_ms = deadline_ms;
	o->cancel = &kcancel;
	o->cancel_fd = cancel ? sandbox_cancel_fd(cancel) : -1;
	if ((rc = sandbox_cancel_link(cancel, &kcancel)) != 0)
		return rc;
	rc = exec_retrying(r, kc, o, cancel);
	sandbox_cancel_unlink(cancel, &kcancel);
	return rc;
}

/* Kill the command's process tree in the pod; best effort, with its own
 * deadline and no cancel: it runs because of a timeout or a cancel. */
static void kill_in_pod(kube_client *kc, const sandbox_config *cfg, const char *pod, size_t i)
{
	kube_exec_opts o = KUBE_EXEC_OPTS_INIT;
	kube_exec_result r;
	char dir[64];
	const char *argv[] = { "sh", "-c", KILL, "ci-fixer-kill", dir, NULL };

	snprintf(dir, sizeof(dir), "%s/c%zu", SANDBOX_CMD_BASE, i);
	o.argv = argv;
	o.on_stdout = discard;
	o.on_stderr = discard;
	exec_in_pod(&r, kc, cfg, pod, &o, NULL, clock_mono_ms() + 15000);
}

static const char *signame(int sig)
{
	const char *n = sigabbrev_np(sig);

	return n ? n : "?";
}

/* Sleep ms, cut short by a cancel or the deadline. */
static void backoff(int ms, sandbox_cancel *cancel, int64_t deadline)
{
	struct pollfd p = { cancel ? sandbox_cancel_fd(cancel) : -1, POLLIN, 0 };
	int64_t left = deadline ? clock_remaining_ms(deadline) : ms;

	if (left < ms)
		ms = (int)left;
	if (ms > 0)
		poll(&p, p.fd >= 0 ? 1 : 0, ms);
}

int sandbox_command_run(sandbox_command_result *res, kube_client *kc, const sandbox_config *cfg,
			const char *pod, const sandbox_request *req, size_t i,
			int64_t run_deadline_ms, const sandbox_callbacks *cb, sandbox_cancel *cancel)
{
	const sandbox_command *c = &req->commands[i];
	kube_exec_opts o = KUBE_EXEC_OPTS_INIT;
	kube_exec_result r;
	kube_cancel kcancel = KUBE_CANCEL_INIT;
	out_ctx oc = { { NULL, NULL }, cb, i, NULL, 0, "", BUF_INIT(4096) };
	char **argv = NULL;
	int64_t start = clock_mono_ms(), cmd_deadline = 0, dl;
	int rc, end = SANDBOX_END_EXEC_FAILED, linked = 0, idle = 0, attempts = 0, code;
	size_t cap = cfg->output_cap ? cfg->output_cap : (1u << 20);

	res->outcome = SANDBOX_OUTCOME_LOST;
	res->exit_code = -1;
	res->breaks = 0;
	res->reattaches = 0;
	if ((rc = sandbox_capture_new(&oc.cap[0], cap)) != 0 ||
	    (rc = sandbox_capture_new(&oc.cap[1], cap)) != 0 ||
	    (rc = sandbox_follow_new(&oc.fw, on_data, &oc)) != 0) {
		res->message = str_printf("could not start: %s", err_msg());
		goto done;
	}
	if (c->timeout_seconds > 0)
		cmd_deadline = start + (int64_t)c->timeout_seconds * 1000;
	dl = run_deadline_ms;
	if (cmd_deadline && (!dl || cmd_deadline < dl))
		dl = cmd_deadline;
	o.ns = cfg->namespace_;
	o.pod = pod;
	o.container = cfg->container_name;
	o.on_stdout = on_frames;
	o.on_stderr = on_diag;
	o.out_arg = &oc;
	o.deadline_ms = dl;
	o.cancel = &kcancel;
	o.cancel_fd = cancel ? sandbox_cancel_fd(cancel) : -1;
	if ((rc = sandbox_cancel_link(cancel, &kcancel)) != 0) {
		res->message = str_printf("could not start: %s", err_msg());
		goto done;
	}
	linked = 1;

	/* One exec per attempt; each continues from the offsets delivered. */
	for (;;) {
		uint64_t before = sandbox_follow_offset(oc.fw, 1) + sandbox_follow_offset(oc.fw, 2);
		int retry, ended;

		sandbox_argv_free(argv);
		if ((rc = sandbox_command_argv(&argv, req, i, sandbox_follow_offset(oc.fw, 1),
					       sandbox_follow_offset(oc.fw, 2))) != 0) {
			res->message = str_printf("could not start: %s", err_msg());
			goto done;
		}
		o.argv = (const char *const *)argv;
		buf_reset(&oc.diag);
		sandbox_follow_restart(oc.fw);
		rc = kube_exec_run(&r, kc, &o);
		attempts++;
		ended = sandbox_follow_ended(oc.fw, &code);
		if (oc.proto_rc) {
			/* never guess: a stream that does not add up is lost */
			res->message = str_printf("the follower's stream could not be read (%s): the "
						  "command's outcome is unknown", oc.proto_msg);
			end = SANDBOX_END_LOST;
			kill_in_pod(kc, cfg, pod, i);
			goto done;
		}
		if (ended) {
			/* the X frame came: the command's code, whatever the stream did next */
			res->outcome = SANDBOX_OUTCOME_EXITED;
			res->exit_code = code;
			if (kube_exec_signal_of(code))
				res->message = str_printf("exit status %d: killed by signal %d (SIG%s)%s", code,
							  code - 128, signame(code - 128),
							  code == 128 + SIGKILL ? "; if it used much memory, it "
							  "may have hit the container's memory limit" : "");
			end = SANDBOX_END_EXITED;
			goto done;
		}
		if (rc == ERR_TIMEOUT || rc == ERR_CANCELLED || sandbox_cancel_requested(cancel))
			break;
		if (rc == 0 && r.exit_code == 125 && strstr(buf_cstr(&oc.diag), "ci-fixer:")) {
			res->message = str_printf("the command's state in the pod is gone (%.300s): its "
						  "outcome is unknown", buf_cstr(&oc.diag));
			end = SANDBOX_END_LOST;
			goto done;
		}
		/* a break: cut, reset, refused before the upgrade, or the
		 * follower ended without the X frame (killed) */
		retry = rc == 0 || rc == ERR_LOST || rc == ERR_AGAIN;
		if (!retry) {
			if (attempts == 1) {
				res->message = str_printf("could not run it through exec: %s", err_msg());
				end = SANDBOX_END_EXEC_FAILED;
			} else {
				res->message = str_printf("the exec stream broke and reattaching failed "
							  "(%s): the command's outcome is unknown",
							  err_msg());
				end = SANDBOX_END_LOST;
			}
			goto done;
		}
		res->breaks++;
		if (sandbox_follow_offset(oc.fw, 1) + sandbox_follow_offset(oc.fw, 2) != before)
			idle = 0;
		else
			idle++;
		if (idle >= SANDBOX_REATTACH_IDLE_MAX || attempts > SANDBOX_REATTACH_MAX) {
			res->message = str_printf("the exec stream ended without an exit status %d times "
						  "(last: %s); gave up reattaching after %d attempts: the "
						  "command's outcome is unknown", res->breaks,
						  rc == 0 ? "the follower ended early" : err_msg(), attempts);
			end = SANDBOX_END_LOST;
			/* it may still run in the pod */
			kill_in_pod(kc, cfg, pod, i);
			goto done;
		}
		if (idle > 0)
			backoff(idle >= 5 ? 4000 : 250 << (idle - 1), cancel, dl);
		res->reattaches++;
	}

	/* a timeout or a cancel: stop the process in the pod */
	{
		int own = cmd_deadline && clock_mono_ms() >= cmd_deadline &&
			  (!run_deadline_ms || cmd_deadline <= run_deadline_ms);

		kill_in_pod(kc, cfg, pod, i);
		if (rc == ERR_CANCELLED || (rc != ERR_TIMEOUT && sandbox_cancel_requested(cancel))) {
			res->outcome = SANDBOX_OUTCOME_LOST;
			res->message = str_printf("cancelled while running (%s); the process was killed",
						  sandbox_cancel_reason(cancel));
			end = SANDBOX_END_CANCELLED;
		} else if (own) {
			res->outcome = SANDBOX_OUTCOME_TIMEOUT;
			res->message = str_printf("timed out after %d s (timeoutSeconds); the process "
						  "was killed", c->timeout_seconds);
			end = SANDBOX_END_TIMEOUT;
		} else {
			res->outcome = SANDBOX_OUTCOME_TIMEOUT;
			res->message = str_printf("the run's deadline passed while it ran; the process "
						  "was killed");
			end = SANDBOX_END_DEADLINE;
		}
	}
done:
	if (linked)
		sandbox_cancel_unlink(cancel, &kcancel);
	res->duration_ms = clock_mono_ms() - start;
	if (end == SANDBOX_END_EXEC_FAILED && !res->message)
		res->message = str_printf("could not run it: %s", err_msg());
	for (int s = 0; s < 2; s++) {
		sandbox_stream *st = s == 0 ? &res->out : &res->err;

		free(st->data);
		memset(st, 0, sizeof(*st));
		if (oc.cap[s])
			sandbox_capture_finish(st, oc.cap[s]);
		if (!st->data) {
			sandbox_capture *empty = NULL;

			if (sandbox_capture_new(&empty, 64) == 0)
				sandbox_capture_finish(st, empty);
			sandbox_capture_free(empty);
		}
		sandbox_capture_free(oc.cap[s]);
	}
	res->truncated = res->out.truncated || res->err.truncated;
	sandbox_follow_free(oc.fw);
	buf_free(&oc.diag);
	sandbox_argv_free(argv);
	return end;
}

/* ---- upload / download / logs -------------------------------------------- */

static int to_buf(void *arg, const void *p, size_t n)
{
	buf *b = arg;

	/* keep the start of stderr; it says what went wrong */
	if (b->len < b->max)
		buf_append(b, p, n < b->max - b->len ? n : b->max - b->len);
	return 0;
}

int sandbox_upload(kube_client *kc, const sandbox_config *cfg, const char *pod,
		   const char *tar, size_t len, sandbox_cancel *cancel, int64_t deadline_ms)
{
	kube_exec_opts o = KUBE_EXEC_OPTS_INIT;
	kube_exec_result r;
	char n[32];
	const char *argv[] = { "sh", "-c", "head -c \"$1\" | tar -x -f - -C " SANDBOX_WORKSPACE,
			       "ci-fixer-upload", n, NULL };
	buf err = BUF_INIT(8192);
	int rc;

	snprintf(n, sizeof(n), "%zu", len);
	o.argv = argv;
	o.stdin_data = tar;
	o.stdin_len = len;
	o.on_stdout = to_buf;
	o.on_stderr = to_buf;
	o.out_arg = &err;
	if ((rc = exec_in_pod(&r, kc, cfg, pod, &o, cancel, deadline_ms)) != 0) {
		err_wrap(rc, "uploading the workspace");
		goto done;
	}
	if (r.exit_code != 0) {
		rc = err_set(ERR_FAIL, "uploading the workspace: tar -x exited with %d: %.500s",
			     r.exit_code, buf_cstr(&err));
		goto done;
	}
	if (r.stdin_bytes != len) {
		rc = err_set(ERR_LOST, "uploading the workspace: %llu of %zu bytes sent",
			     (unsigned long long)r.stdin_bytes, len);
		goto done;
	}
done:
	buf_free(&err);
	return rc;
}

typedef struct dl_ctx {
	sandbox_workspace *ws;
	int feed_rc;
	char feed_msg[512];
	buf err;   /* tar's stderr, its start */
} dl_ctx;

static int to_workspace(void *arg, const void *p, size_t n)
{
	dl_ctx *d = arg;
	int rc = sandbox_workspace_collect_feed(d->ws, p, n);

	if (rc) {
		d->feed_rc = rc;
		str_copy(d->feed_msg, sizeof(d->feed_msg), err_msg());
	}
	return rc;
}

static int dl_stderr(void *arg, const void *p, size_t n)
{
	dl_ctx *d = arg;

	return to_buf(&d->err, p, n);
}

int sandbox_download(kube_client *kc, const sandbox_config *cfg, const char *pod,
		     sandbox_workspace *ws, sandbox_cancel *cancel, int64_t deadline_ms)
{
	kube_exec_opts o = KUBE_EXEC_OPTS_INIT;
	kube_exec_result r;
	const char *argv[] = { "tar", "-c", "-f", "-", "-C", SANDBOX_WORKSPACE, ".", NULL };
	dl_ctx d = { ws, 0, "", BUF_INIT(8192) };
	int rc;

	o.argv = argv;
	o.on_stdout = to_workspace;
	o.on_stderr = dl_stderr;
	o.out_arg = &d;
	rc = exec_in_pod(&r, kc, cfg, pod, &o, cancel, deadline_ms);
	if (d.feed_rc) {
		rc = err_set(d.feed_rc, "downloading the workspace: %s", d.feed_msg);
		goto done;
	}
	if (rc) {
		err_wrap(rc, "downloading the workspace");
		goto done;
	}
	if (r.exit_code != 0) {
		rc = err_set(ERR_FAIL, "downloading the workspace: tar -c exited with %d: %.500s",
			     r.exit_code, buf_cstr(&d.err));
		goto done;
	}
done:
	buf_free(&d.err);
	return rc;
}

int sandbox_logs(char **out, size_t *len, kube_client *kc, const sandbox_config *cfg,
		 const char *pod, int tail_lines, int64_t deadline_ms)
{
	kube_log_opts o = KUBE_LOG_OPTS_INIT;
	size_t cap = cfg->log_cap ? cfg->log_cap : (1u << 20);
	buf b = BUF_INIT(cap);
	int rc;

	*out = NULL;
	*len = 0;
	o.container = cfg->container_name;
	o.tail_lines = tail_lines;
	o.limit_bytes = (int64_t)cap;
	o.deadline_ms = deadline_ms;
	rc = kube_pod_logs_buf(&b, kc, cfg->namespace_, pod, &o);
	if (rc == ERR_TOOBIG)
		rc = 0; /* limitBytes should prevent it; keep what fit */
	if (rc) {
		buf_free(&b);
		return err_wrap(rc, "reading the container log");
	}
	*out = buf_take(&b, len);
	return *out ? 0 : err_set(ERR_NOMEM, "out of memory");
}

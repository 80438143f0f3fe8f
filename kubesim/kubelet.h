/*
 * kubelet: kubesim's node agent. It runs pods as local processes, isolated
 * the way DESIGN.md ("kubesim") describes, serves exec sessions on an
 * upgraded connection and container logs, and reports pod and container
 * status and Kubernetes-style events back to the API server half of
 * kubesim through callbacks. It knows nothing about HTTP, RBAC or the
 * object store: the API server calls it and stores what it reports.
 *
 * Threads: the kubelet owns one supervisor thread per running pod (start,
 * wait, kill with grace) and one thread per exec session. Callbacks are
 * called from those threads; the callee must be thread-safe. The pod table
 * is behind one mutex inside the kubelet.
 */
#ifndef KUBESIM_KUBELET_H
#define KUBESIM_KUBELET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

typedef struct ks_kubelet ks_kubelet;

typedef struct ks_kubelet_opts {
	const char *data_dir;        /* pods live under DATA_DIR/pods/<uid>/ */
	const char *image_fail_glob; /* images matching this fnmatch(3) pattern fail
					with ErrImagePull then ImagePullBackOff; NULL: none */
	int image_pull_ms;           /* simulated pull time before start (default 0) */
} ks_kubelet_opts;

#define KS_KUBELET_OPTS_INIT { NULL, NULL, 0 }

enum ks_ctr_state { KS_CTR_WAITING = 0, KS_CTR_RUNNING, KS_CTR_TERMINATED };

typedef struct ks_container_status {
	const char *name;
	const char *image;
	enum ks_ctr_state state;
	const char *reason;   /* waiting: ContainerCreating, ErrImagePull, ImagePullBackOff,
				 CreateContainerConfigError; terminated: Completed, Error,
				 OOMKilled, DeadlineExceeded... */
	const char *message;
	int exit_code;        /* terminated: the exit code (128+signal when killed) */
	int signal;           /* terminated by a signal: its number, else 0 */
	int ready;
	int restart_count;
	int64_t started_ms;   /* wall ms since the epoch, 0 if not started */
	int64_t finished_ms;
} ks_container_status;

typedef struct ks_pod_status {
	const char *uid;
	const char *namespace_;
	const char *name;
	const char *phase;    /* Pending, Running, Succeeded, Failed */
	const char *reason;   /* e.g. DeadlineExceeded, Evicted; may be NULL */
	const char *message;  /* may be NULL */
	const ks_container_status *containers;
	size_t n_containers;
} ks_pod_status;

/* Called on every change of a pod's status (from kubelet threads). */
typedef void (*ks_pod_status_cb)(void *arg, const ks_pod_status *st);

/* Called for every event the kubelet would record (type Normal or Warning;
 * reasons as upstream: Pulling, Pulled, Failed, BackOff, Created, Started,
 * Killing, ...). fieldPath like "spec.containers{main}" or NULL. */
typedef void (*ks_pod_event_cb)(void *arg, const char *ns, const char *pod, const char *uid,
				const char *type, const char *reason, const char *message,
				const char *field_path);

/* Create the kubelet. Fails (ERR_FAIL, with a message saying why and what
 * to do) when pods cannot be isolated: no mount namespaces as root and no
 * user namespace otherwise; kubesim then refuses to start.
 * Caller owns the result; free with ks_kubelet_free(). */
int ks_kubelet_new(ks_kubelet **out, const ks_kubelet_opts *opts, ks_pod_status_cb status_cb,
		   ks_pod_event_cb event_cb, void *cb_arg);

/* Stop every pod (SIGKILL to each process group, wait for them), remove
 * nothing from data_dir, free. NULL-safe. */
void ks_kubelet_free(ks_kubelet *k);

/* Start a pod asynchronously from a stored Pod object (metadata.uid,
 * namespace, name and spec are read; the object is not kept). Status and
 * events follow through the callbacks: Pending/ContainerCreating, then
 * Running + ready, then Succeeded/Failed with each container's exit code.
 * Only the first container of spec.containers is required to be supported;
 * spec.restartPolicy Never and OnFailure are honoured. 0, ERR_CONFLICT if
 * this uid is already running, ERR_INVALID for a spec it cannot run. */
int ks_kubelet_pod_start(ks_kubelet *k, const cJSON *pod);

/* Stop a pod's processes: SIGTERM to each container's process group, then
 * SIGKILL after grace_seconds (0: at once). Asynchronous; the status
 * callback reports the termination. reason, if not NULL, becomes the pod's
 * status reason (e.g. "DeadlineExceeded"). 0 or ERR_NOTFOUND. */
int ks_kubelet_pod_stop(ks_kubelet *k, const char *uid, int grace_seconds, const char *reason);

/* Forget a pod after its object is deleted: make sure its processes are
 * gone (SIGKILL), remove its volume directories, drop it from the table.
 * Log files are removed too. NULL-safe on an unknown uid. */
void ks_kubelet_pod_forget(ks_kubelet *k, const char *uid);

/* Number of pods the kubelet is tracking, and of live processes (for tests
 * that assert nothing is left running). */
size_t ks_kubelet_pod_count(ks_kubelet *k);
size_t ks_kubelet_process_count(ks_kubelet *k);

/* ---- exec (pods/exec after the WebSocket upgrade) ---- */

typedef struct ks_exec_params {
	char *uid;            /* the pod's uid */
	char *container;      /* NULL: the only/first container */
	char **argv;          /* NULL-terminated, at least one element */
	int want_stdin, want_stdout, want_stderr, tty;
	int version;          /* 4 or 5: the negotiated vN.channel.k8s.io */
	int64_t cut_after_bytes; /* fault injection: drop the connection (no status,
				    no close frame) after this many output bytes; -1: never */
} ks_exec_params;

/* Check before the upgrade that an exec can run: the pod is known and
 * running, the container exists. 0, or ERR_NOTFOUND (no such pod or
 * container) / ERR_INVALID (container not running: the caller answers 400
 * with err_msg(), as upstream: "container not found" / "unable to upgrade
 * connection: container not found"...). */
int ks_kubelet_exec_check(ks_kubelet *k, const char *uid, const char *container);

/* Serve one exec session on an already upgraded connection (the 101 has
 * been sent; fd is a plain bidirectional socket; extra holds bytes already
 * read after the HTTP request, if any). Runs in a new detached thread and
 * returns at once: it sends the initial empty frame, runs argv in the pod's
 * namespaces with the container's env, workingDir and user, copies stdin
 * from channel 0 (v5: FF 00 closes stdin), stdout and stderr to channels 1
 * and 2 as they come, answers pings, writes the status JSON on channel 3
 * (Success, or NonZeroExitCode with the ExitCode cause, or InternalError)
 * and closes with 1000. Takes ownership of p (freed with
 * ks_exec_params_free) and fd (closed when done). 0 or ERR_FAIL (then fd
 * and p are still freed/closed). */
int ks_kubelet_exec_serve(ks_kubelet *k, ks_exec_params *p, int fd, const void *extra,
			  size_t extra_len);

void ks_exec_params_free(ks_exec_params *p);

/* Number of exec sessions in flight. */
size_t ks_kubelet_exec_count(ks_kubelet *k);

/* ---- logs (pods/log) ---- */

typedef struct ks_log_params {
	const char *uid;
	const char *container;  /* NULL: the only/first container */
	int follow;
	int64_t tail_lines;     /* -1: all */
	int64_t limit_bytes;    /* -1: no limit */
	int64_t since_seconds;  /* -1: all */
	int timestamps;
	int previous;
} ks_log_params;

typedef struct ks_log_reader ks_log_reader;

/* Open a container's log. ERR_NOTFOUND (no such pod/container), or
 * ERR_INVALID when the container is waiting (message as upstream:
 * 'container "c" in pod "p" is waiting to start: ContainerCreating') or
 * previous was asked with no earlier instance. Caller frees with
 * ks_log_close(). */
int ks_kubelet_log_open(ks_kubelet *k, ks_log_reader **out, const ks_log_params *p);

/* Read up to max bytes. Returns bytes read (> 0), 0 at the end (not
 * following, or the container stopped while following), ERR_TIMEOUT when
 * following and nothing came within timeout_ms, or another negative code. */
long ks_log_read(ks_log_reader *r, char *dst, size_t max, int timeout_ms);

void ks_log_close(ks_log_reader *r);

#endif

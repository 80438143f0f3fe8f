/*
 * kubelet: kubesim's node agent (contract in kubelet.h).
 *
 * A pod is a row in the kubelet's table and one supervisor thread. The
 * supervisor does, top to bottom: create the pod's directories (emptyDir
 * volumes under DATA_DIR/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>,
 * mode 0777 as upstream's empty_dir.go), "pull" each container's image
 * (recorded, not pulled; images matching image_fail_glob fail with
 * ErrImagePull and back off with ImagePullBackOff forever), start each
 * container isolated (isolate.c), then poll: the containers' stdout/stderr
 * pipes (into their CRI-format log files, logs_file.c), their pidfds (exit),
 * an eventfd (stop requests) and timers (grace period, back-offs). When no
 * container will run again it reports the final phase and ends.
 *
 * Exec sessions get a thread each (exec_session.c); they receive copies of
 * what they need (a dup of the container's pidfd, env, user), so they never
 * touch the table.
 *
 * Locking: k->mu guards the table, the counters and every pod's and
 * container's mutable fields; callbacks are made without it, status
 * callbacks only from the pod's supervisor (so a pod's reports are
 * ordered). Pods are reference-counted (table, supervisor): the last
 * unref frees.
 *
 * Events follow pkg/kubelet/kuberuntime/kuberuntime_container.go
 * (Created "Created container: %v", Started "Started container %v",
 * Killing "Stopping container %s", Failed "Error: %v") and
 * pkg/kubelet/images/image_manager.go (Pulling, Pulled, Failed, BackOff).
 */
#include "kubesim/kubelet.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kubesim/exec_session.h"
#include "kubesim/isolate.h"
#include "kubesim/logs_file.h"
#include "kubesim/pod_spec.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

#define PIPE_READ (64 * 1024)
#define BACKOFF_FIRST_S 10   /* kubelet: initial container/image back-off */
#define BACKOFF_MAX_S 300    /* MaxContainerBackOff / image back-off cap */

enum ctr_action { A_NONE = 0, A_BACKOFF_EVENT, A_PULL_RETRY, A_RESTART };

typedef struct ctr {
	const ks_ctr_spec *spec;
	enum ks_ctr_state state;
	char *reason, *message;
	int exit_code, signal, ready, restart_count;
	int64_t started_ms, finished_ms;
	int ran;                  /* an instance has run (for previous/status) */
	pid_t pid;
	int pidfd;
	int out_r, err_r;
	int exited, wstatus;
	ks_log_sink *log, *prev_log;
	char **envp;
	int set_user;
	uid_t uid;
	gid_t gid;
	enum ctr_action action;
	int64_t action_at;        /* clock_mono_ms */
	int pull_backoff_s, restart_backoff_s;
	int pulled;
	int final;                /* will not run again */
} ctr;

typedef struct pod {
	ks_kubelet *k;
	ks_pod_spec *spec;
	ctr *ctrs;
	char *phase, *reason, *message;
	char *dir;
	int evfd;
	int refs;
	int stopping, kill_sent;
	int64_t kill_at;
	int started_any;
	int sup_done, forgotten;
	pthread_t thr;
} pod;

struct ks_kubelet {
	char *data_dir;
	char *fail_glob;
	int pull_ms;
	ks_pod_status_cb status_cb;
	ks_pod_event_cb event_cb;
	void *cb_arg;
	int userns;
	int shutdown_fd;
	pthread_mutex_t mu; /* guards all below and pods' mutable state */
	pthread_cond_t cond;
	pod **pods;
	size_t n_pods, cap_pods;
	size_t n_procs, n_sessions, n_threads;
	int shutdown;
};

/* ---- small helpers ---- */

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = str_dup(s);
}

static void pod_unref(pod *p);

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void wake(int evfd)
{
	uint64_t one = 1;
	ssize_t w = write(evfd, &one, sizeof one);
	(void)w;
}

/* format.Pod: "name_namespace(uid)" */
static char *pod_ref(const pod *p)
{
	return str_printf("%s_%s(%s)", p->spec->name, p->spec->ns, p->spec->uid);
}

static void event(pod *p, const ctr *c, const char *type, const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void event(pod *p, const ctr *c, const char *type, const char *reason, const char *fmt, ...)
{
	va_list ap;
	buf m = BUF_INIT(64 * 1024);
	char *fp = NULL;

	if (!p->k->event_cb)
		return;
	va_start(ap, fmt);
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	if (c)
		fp = str_printf("spec.containers{%s}", c->spec->name);
	p->k->event_cb(p->k->cb_arg, p->spec->ns, p->spec->name, p->spec->uid, type, reason, buf_cstr(&m), fp);
	free(fp);
	buf_free(&m);
}

/* Go's time.Duration.String() for a duration truncated to milliseconds. */
static void go_duration(char *out, size_t n, int64_t ms)
{
	if (ms <= 0)
		snprintf(out, n, "0s");
	else if (ms < 1000)
		snprintf(out, n, "%lldms", (long long)ms);
	else {
		char frac[8] = "";
		int64_t s = ms / 1000, r = ms % 1000;
		if (r) {
			snprintf(frac, sizeof frac, ".%03lld", (long long)r);
			size_t l = strlen(frac);
			while (frac[l - 1] == '0')
				frac[--l] = '\0';
		}
		if (s < 60)
			snprintf(out, n, "%lld%ss", (long long)s, frac);
		else
			snprintf(out, n, "%lldm%lld%ss", (long long)(s / 60), (long long)(s % 60), frac);
	}
}

/* ---- status ---- */

static const char *compute_phase(pod *p)
{
	int all_final = 1, all_ok = 1;

	for (size_t i = 0; i < p->spec->n_ctrs; i++) {
		ctr *c = &p->ctrs[i];
		if (!c->final)
			all_final = 0;
		if (c->state != KS_CTR_TERMINATED || c->exit_code != 0)
			all_ok = 0;
	}
	if (all_final)
		return all_ok ? "Succeeded" : "Failed";
	return p->started_any ? "Running" : "Pending";
}

/* Report the pod's status; called by the supervisor only. */
static void emit_status(pod *p)
{
	ks_kubelet *k = p->k;
	ks_pod_status st = { 0 };
	ks_container_status *cs;
	size_t n = p->spec->n_ctrs;

	cs = calloc(n, sizeof *cs);
	if (!cs)
		return;
	pthread_mutex_lock(&k->mu);
	set_str(&p->phase, compute_phase(p));
	st.uid = str_dup(p->spec->uid);
	st.namespace_ = str_dup(p->spec->ns);
	st.name = str_dup(p->spec->name);
	st.phase = str_dup(p->phase);
	st.reason = str_dup(p->reason);
	st.message = str_dup(p->message);
	for (size_t i = 0; i < n; i++) {
		ctr *c = &p->ctrs[i];
		cs[i].name = str_dup(c->spec->name);
		cs[i].image = str_dup(c->spec->image);
		cs[i].state = c->state;
		cs[i].reason = str_dup(c->reason);
		cs[i].message = str_dup(c->message);
		cs[i].exit_code = c->exit_code;
		cs[i].signal = c->signal;
		cs[i].ready = c->ready;
		cs[i].restart_count = c->restart_count;
		cs[i].started_ms = c->started_ms;
		cs[i].finished_ms = c->finished_ms;
	}
	pthread_mutex_unlock(&k->mu);
	st.containers = cs;
	st.n_containers = n;
	if (k->status_cb)
		k->status_cb(k->cb_arg, &st);
	for (size_t i = 0; i < n; i++) {
		free((char *)cs[i].name);
		free((char *)cs[i].image);
		free((char *)cs[i].reason);
		free((char *)cs[i].message);
	}
	free(cs);
	free((char *)st.uid);
	free((char *)st.namespace_);
	free((char *)st.name);
	free((char *)st.phase);
	free((char *)st.reason);
	free((char *)st.message);
}

static void ctr_set(pod *p, ctr *c, enum ks_ctr_state state, const char *reason, const char *message)
{
	pthread_mutex_lock(&p->k->mu);
	c->state = state;
	set_str(&c->reason, reason);
	set_str(&c->message, message);
	if (state != KS_CTR_RUNNING)
		c->ready = 0;
	pthread_mutex_unlock(&p->k->mu);
}

/* ---- images ---- */

/* The reference containerd resolves: docker.io/library/NAME:latest. */
static char *image_ref(const char *image)
{
	const char *slash = strchr(image, '/');
	const char *last = strrchr(image, '/');
	int has_tag = strchr(last ? last : image, ':') || strchr(image, '@');
	int has_host = slash && (memchr(image, '.', (size_t)(slash - image)) || memchr(image, ':', (size_t)(slash - image)) ||
				 strncmp(image, "localhost/", 10) == 0);

	return str_printf("%s%s%s%s", has_host ? "" : "docker.io/", (!has_host && !slash) ? "library/" : "", image,
			  has_tag ? "" : ":latest");
}

/* One pull attempt. 0: the image is there; -1: it failed (state set). */
static int pull_image(pod *p, ctr *c)
{
	ks_kubelet *k = p->k;
	const char *img = c->spec->image;

	if (k->fail_glob && fnmatch(k->fail_glob, img, 0) == 0) {
		char *ref = image_ref(img);
		char *err = str_printf("rpc error: code = NotFound desc = failed to pull and unpack image \"%s\": failed to "
				       "resolve reference \"%s\": %s: not found",
				       ref, ref, ref);
		event(p, c, "Normal", "Pulling", "Pulling image \"%s\"", img);
		event(p, c, "Warning", "Failed", "Failed to pull image \"%s\": %s", img, err);
		event(p, c, "Warning", "Failed", "Error: ErrImagePull");
		ctr_set(p, c, KS_CTR_WAITING, "ErrImagePull", err);
		pthread_mutex_lock(&k->mu);
		c->action = A_BACKOFF_EVENT;
		c->action_at = clock_mono_ms() + 1000;
		c->pull_backoff_s = c->pull_backoff_s ? c->pull_backoff_s * 2 : BACKOFF_FIRST_S;
		if (c->pull_backoff_s > BACKOFF_MAX_S)
			c->pull_backoff_s = BACKOFF_MAX_S;
		pthread_mutex_unlock(&k->mu);
		free(ref);
		free(err);
		emit_status(p);
		return -1;
	}
	if (strcmp(c->spec->pull_policy, "Always") == 0) {
		int64_t t0 = clock_mono_ms();
		char d[32];
		event(p, c, "Normal", "Pulling", "Pulling image \"%s\"", img);
		if (k->pull_ms > 0) {
			struct pollfd pf = { p->evfd, POLLIN, 0 };
			poll(&pf, 1, k->pull_ms); /* a stop request cuts the wait short */
		}
		go_duration(d, sizeof d, clock_mono_ms() - t0);
		/* nothing is downloaded: the image size is 0 bytes */
		event(p, c, "Normal", "Pulled", "Successfully pulled image \"%s\" in %s (%s including waiting). Image size: 0 bytes.",
		      img, d, d);
	} else {
		event(p, c, "Normal", "Pulled", "Container image \"%s\" already present on machine", img);
	}
	c->pulled = 1;
	return 0;
}

/* ---- containers ---- */

static int cmp_bind(const void *a, const void *b)
{
	return (int)strlen(((const ks_iso_bind *)a)->dst) - (int)strlen(((const ks_iso_bind *)b)->dst);
}

static void restart_or_finish(pod *p, ctr *c);

/* Start one instance of a container. */
static void start_ctr(pod *p, ctr *c)
{
	ks_kubelet *k = p->k;
	const ks_ctr_spec *cs = c->spec;
	ks_iso_bind *binds = NULL;
	size_t nb = 0;
	char *root = NULL, *logdir = NULL, *logpath = NULL, *ref = NULL;
	int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	ks_log_sink *sink = NULL;
	pid_t pid;
	int pidfd;

	if (cs->config_error) {
		event(p, c, "Warning", "Failed", "Error: %s", cs->config_error);
		ctr_set(p, c, KS_CTR_WAITING, "CreateContainerConfigError", cs->config_error);
		emit_status(p);
		return;
	}
	/* verifyRunAsNonRoot (pkg/kubelet/kuberuntime/security_context_others.go);
	 * the "image" runs as root */
	if (cs->run_as_non_root && (!cs->has_uid || cs->uid == 0)) {
		char *m;
		ref = pod_ref(p);
		if (cs->has_uid)
			m = str_printf("container's runAsUser breaks non-root policy (pod: \"%s\", container: %s)", ref,
				       cs->name);
		else
			m = str_printf("container has runAsNonRoot and image will run as root (pod: \"%s\", container: %s)",
				       ref, cs->name);
		event(p, c, "Warning", "Failed", "Error: %s", m);
		ctr_set(p, c, KS_CTR_WAITING, "CreateContainerConfigError", m);
		free(m);
		free(ref);
		emit_status(p);
		return;
	}

	logdir = str_printf("%s/logs/%s", p->dir, cs->name);
	logpath = str_printf("%s/%d.log", logdir, c->restart_count);
	root = str_printf("%s/root/%s", p->dir, cs->name);
	mkdir(logdir, 0750);
	mkdir(root, 0755);
	if (ks_log_sink_new(&sink, logpath) || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		char *m = str_printf("preparing the container: %s", err_msg()[0] ? err_msg() : strerror(errno));
		event(p, c, "Warning", "Failed", "Error: %s", m);
		ctr_set(p, c, KS_CTR_WAITING, "CreateContainerError", m);
		free(m);
		close_fd(&out[0]);
		close_fd(&out[1]);
		close_fd(&errp[0]);
		close_fd(&errp[1]);
		ks_log_sink_unref(sink);
		emit_status(p);
		goto done;
	}
	binds = calloc(cs->n_mounts + 1, sizeof *binds);
	for (size_t i = 0; i < cs->n_mounts; i++) {
		if (!cs->mounts[i].emptydir)
			continue;
		binds[nb].src = str_printf("%s/volumes/kubernetes.io~empty-dir/%s", p->dir, cs->mounts[i].volume);
		binds[nb].dst = cs->mounts[i].path;
		binds[nb].ro = cs->mounts[i].read_only;
		nb++;
	}
	qsort(binds, nb, sizeof *binds, cmp_bind);

	ks_iso_box box = { .root = root, .hostname = p->spec->hostname, .binds = binds, .n_binds = nb,
			   .ro_root = cs->ro_root, .mkdir_workdir = 1, .userns = k->userns };
	ks_iso_proc proc = { .argv = cs->argv, .envp = c->envp, .workdir = cs->workdir, .set_user = c->set_user,
			     .uid = c->uid, .gid = c->gid, .groups = p->spec->groups, .n_groups = p->spec->n_groups,
			     .fd_in = -1, .fd_out = out[1], .fd_err = errp[1] };
	int rc = ks_iso_start(&pid, &pidfd, &box, &proc);
	close_fd(&out[1]);
	close_fd(&errp[1]);

	pthread_mutex_lock(&k->mu);
	if (c->prev_log)
		ks_log_sink_unref(c->prev_log);
	c->prev_log = c->log;
	c->log = sink;
	pthread_mutex_unlock(&k->mu);
	event(p, c, "Normal", "Created", "Created container: %s", cs->name);
	if (rc) {
		/* containerd + runc, as the kubelet reports a failed StartContainer:
		 * state terminated, reason StartError, exit code 128 */
		char *m = str_printf("failed to create containerd task: failed to create shim task: OCI runtime create "
				     "failed: runc create failed: unable to start container process: %s: unknown",
				     err_msg());
		event(p, c, "Warning", "Failed", "Error: %s", m);
		close_fd(&out[0]);
		close_fd(&errp[0]);
		ks_log_sink_finish(sink);
		pthread_mutex_lock(&k->mu);
		c->state = KS_CTR_TERMINATED;
		set_str(&c->reason, "StartError");
		set_str(&c->message, m);
		c->exit_code = 128;
		c->signal = 0;
		c->ready = 0;
		c->started_ms = 0;
		c->finished_ms = clock_wall_ms();
		c->ran = 1;
		pthread_mutex_unlock(&k->mu);
		free(m);
		restart_or_finish(p, c);
		goto done;
	}
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	pthread_mutex_lock(&k->mu);
	k->n_procs++;
	c->pid = pid;
	c->pidfd = pidfd;
	c->out_r = out[0];
	c->err_r = errp[0];
	c->exited = 0;
	c->state = KS_CTR_RUNNING;
	set_str(&c->reason, NULL);
	set_str(&c->message, NULL);
	c->ready = 1; /* no probes: ready once running */
	c->started_ms = clock_wall_ms();
	c->finished_ms = 0;
	c->exit_code = 0;
	c->signal = 0;
	c->ran = 1;
	p->started_any = 1;
	pthread_mutex_unlock(&k->mu);
	event(p, c, "Normal", "Started", "Started container %s", cs->name);
	emit_status(p);
done:
	for (size_t i = 0; i < nb; i++)
		free((char *)binds[i].src);
	free(binds);
	free(root);
	free(logdir);
	free(logpath);
}

/* After an instance ended: restart it (restartPolicy) or leave it final. */
static void restart_or_finish(pod *p, ctr *c)
{
	ks_kubelet *k = p->k;
	const char *pol = p->spec->restart_policy;
	int again = !p->stopping && !k->shutdown &&
		    (strcmp(pol, "Always") == 0 || (strcmp(pol, "OnFailure") == 0 && c->exit_code != 0));

	if (!again) {
		pthread_mutex_lock(&k->mu);
		c->final = 1;
		pthread_mutex_unlock(&k->mu);
		emit_status(p);
		return;
	}
	/* the first restart is immediate, then 10s, 20s, ... 300s
	 * (pkg/kubelet/kuberuntime/kuberuntime_manager.go doBackOff) */
	pthread_mutex_lock(&k->mu);
	c->action = A_RESTART;
	c->action_at = clock_mono_ms() + (int64_t)c->restart_backoff_s * 1000;
	int delay = c->restart_backoff_s;
	c->restart_backoff_s = c->restart_backoff_s ? c->restart_backoff_s * 2 : BACKOFF_FIRST_S;
	if (c->restart_backoff_s > BACKOFF_MAX_S)
		c->restart_backoff_s = BACKOFF_MAX_S;
	pthread_mutex_unlock(&k->mu);
	emit_status(p);
	if (delay > 0) {
		char *ref = pod_ref(p);
		char *m = str_printf("back-off %ds restarting failed container=%s pod=%s", delay, c->spec->name, ref);
		event(p, c, "Warning", "BackOff", "Back-off restarting failed container %s in pod %s", c->spec->name, ref);
		ctr_set(p, c, KS_CTR_WAITING, "CrashLoopBackOff", m);
		free(m);
		free(ref);
		emit_status(p);
	}
}

/* The instance's process was reaped and its pipes are at EOF. */
static void ctr_ended(pod *p, ctr *c)
{
	ks_kubelet *k = p->k;
	int st = c->wstatus;

	ks_log_sink_finish(c->log);
	pthread_mutex_lock(&k->mu);
	k->n_procs--;
	close_fd(&c->pidfd);
	c->pid = -1;
	c->state = KS_CTR_TERMINATED;
	c->ready = 0;
	c->finished_ms = clock_wall_ms();
	if (WIFSIGNALED(st)) {
		c->signal = WTERMSIG(st);
		c->exit_code = 128 + c->signal;
	} else {
		c->signal = 0;
		c->exit_code = WEXITSTATUS(st);
	}
	set_str(&c->reason, c->exit_code == 0 ? "Completed" : "Error");
	set_str(&c->message, NULL);
	pthread_mutex_unlock(&k->mu);
	pthread_cond_broadcast(&k->cond);
	restart_or_finish(p, c);
}

/* A stop: SIGTERM to every running container's process group, SIGKILL
 * after the grace period; containers that never ran end at once. */
static void begin_stop(pod *p, int64_t grace_s)
{
	ks_kubelet *k = p->k;

	for (size_t i = 0; i < p->spec->n_ctrs; i++) {
		ctr *c = &p->ctrs[i];
		if (c->final)
			continue;
		if (c->pid > 0) {
			event(p, c, "Normal", "Killing", "Stopping container %s", c->spec->name);
			kill(-c->pid, grace_s > 0 ? SIGTERM : SIGKILL);
			continue;
		}
		/* waiting (pull back-off, config error, restart back-off) */
		pthread_mutex_lock(&k->mu);
		c->action = A_NONE;
		c->final = 1;
		if (!c->ran) {
			/* pkg/kubelet/status/status_manager.go: a container that never
			 * ran reports this when its pod is terminated */
			c->state = KS_CTR_TERMINATED;
			set_str(&c->reason, "ContainerStatusUnknown");
			set_str(&c->message, "The container could not be located when the pod was terminated");
			c->exit_code = 137;
		} else {
			c->state = KS_CTR_TERMINATED;
		}
		pthread_mutex_unlock(&k->mu);
	}
	pthread_mutex_lock(&k->mu);
	p->kill_at = clock_mono_ms() + grace_s * 1000;
	pthread_mutex_unlock(&k->mu);
	emit_status(p);
}

static void kill_all(pod *p)
{
	for (size_t i = 0; i < p->spec->n_ctrs; i++)
		if (p->ctrs[i].pidfd >= 0)
			syscall(SYS_pidfd_send_signal, p->ctrs[i].pidfd, SIGKILL, NULL, 0);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_pod_dir(pod *p)
{
	nftw(p->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void *supervise(void *arg)
{
	pod *p = arg;
	ks_kubelet *k = p->k;
	char *rbuf = malloc(PIPE_READ);
	int stop_seen = 0;
	sigset_t pipe_set;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);

	emit_status(p);
	for (size_t i = 0; i < p->spec->n_ctrs; i++) {
		if (p->stopping || k->shutdown)
			break;
		if (pull_image(p, &p->ctrs[i]) == 0)
			start_ctr(p, &p->ctrs[i]);
	}
	for (;;) {
		struct pollfd pf[1 + 3 * 16];
		ctr *who[1 + 3 * 16];
		int what[1 + 3 * 16];
		int n = 0, all_final = 1, stopping, timeout = -1;
		int64_t now = clock_mono_ms(), next = INT64_MAX;

		pthread_mutex_lock(&k->mu);
		stopping = p->stopping || k->shutdown;
		pthread_mutex_unlock(&k->mu);
		if (stopping && !stop_seen) {
			stop_seen = 1;
			int64_t grace;
			pthread_mutex_lock(&k->mu);
			grace = k->shutdown ? 0 : p->kill_at; /* kill_at holds the grace until begin_stop */
			pthread_mutex_unlock(&k->mu);
			begin_stop(p, grace);
		}
		for (size_t i = 0; i < p->spec->n_ctrs; i++) {
			ctr *c = &p->ctrs[i];
			if (!c->final)
				all_final = 0;
			if (c->action != A_NONE && c->action_at < next)
				next = c->action_at;
		}
		if (all_final)
			break;
		if (stop_seen && !p->kill_sent && p->kill_at < next)
			next = p->kill_at;
		pf[n] = (struct pollfd){ p->evfd, POLLIN, 0 };
		who[n] = NULL;
		what[n++] = 0;
		for (size_t i = 0; i < p->spec->n_ctrs && n + 3 <= (int)(sizeof pf / sizeof *pf); i++) {
			ctr *c = &p->ctrs[i];
			if (c->out_r >= 0) {
				pf[n] = (struct pollfd){ c->out_r, POLLIN, 0 };
				who[n] = c;
				what[n++] = 1;
			}
			if (c->err_r >= 0) {
				pf[n] = (struct pollfd){ c->err_r, POLLIN, 0 };
				who[n] = c;
				what[n++] = 2;
			}
			if (c->pidfd >= 0 && !c->exited) {
				pf[n] = (struct pollfd){ c->pidfd, POLLIN, 0 };
				who[n] = c;
				what[n++] = 3;
			}
		}
		if (next != INT64_MAX)
			timeout = next <= now ? 0 : (next - now > 60000 ? 60000 : (int)(next - now));
		if (poll(pf, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (pf[0].revents) {
			uint64_t v;
			ssize_t r = read(p->evfd, &v, sizeof v);
			(void)r;
		}
		for (int i = 1; i < n; i++) {
			ctr *c = who[i];
			if (!pf[i].revents)
				continue;
			if (what[i] == 3) {
				if (waitpid(c->pid, &c->wstatus, WNOHANG) == c->pid)
					c->exited = 1;
				continue;
			}
			int *fd = what[i] == 1 ? &c->out_r : &c->err_r;
			for (int rounds = 0; rounds < 16 && *fd >= 0; rounds++) {
				ssize_t r = read(*fd, rbuf, PIPE_READ);
				if (r > 0) {
					ks_log_sink_write(c->log, what[i], rbuf, (size_t)r);
					continue;
				}
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				close_fd(fd);
			}
		}
		for (size_t i = 0; i < p->spec->n_ctrs; i++) {
			ctr *c = &p->ctrs[i];
			if (c->pid > 0 && c->exited && c->out_r < 0 && c->err_r < 0)
				ctr_ended(p, c);
		}
		now = clock_mono_ms();
		if (stop_seen && !p->kill_sent && now >= p->kill_at) {
			p->kill_sent = 1;
			kill_all(p);
		}
		for (size_t i = 0; i < p->spec->n_ctrs; i++) {
			ctr *c = &p->ctrs[i];
			if (c->action == A_NONE || now < c->action_at || c->final)
				continue;
			enum ctr_action a = c->action;
			c->action = A_NONE;
			if (a == A_BACKOFF_EVENT) {
				event(p, c, "Normal", "BackOff", "Back-off pulling image \"%s\"", c->spec->image);
				event(p, c, "Warning", "Failed", "Error: ImagePullBackOff");
				char *m = str_printf("Back-off pulling image \"%s\"", c->spec->image);
				ctr_set(p, c, KS_CTR_WAITING, "ImagePullBackOff", m);
				free(m);
				pthread_mutex_lock(&k->mu);
				c->action = A_PULL_RETRY;
				c->action_at = now + (int64_t)c->pull_backoff_s * 1000 - 1000;
				pthread_mutex_unlock(&k->mu);
				emit_status(p);
			} else if (a == A_PULL_RETRY) {
				if (pull_image(p, c) == 0)
					start_ctr(p, c);
			} else if (a == A_RESTART) {
				pthread_mutex_lock(&k->mu);
				c->restart_count++;
				pthread_mutex_unlock(&k->mu);
				start_ctr(p, c);
			}
		}
	}
	/* done: every container is final */
	emit_status(p);
	free(rbuf);
	pthread_mutex_lock(&k->mu);
	p->sup_done = 1;
	int forgotten = p->forgotten;
	pthread_mutex_unlock(&k->mu);
	if (forgotten)
		remove_pod_dir(p);
	pthread_mutex_lock(&k->mu);
	k->n_threads--;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->mu);
	pod_unref(p);
	return NULL;
}

/* ---- pods ---- */

static void pod_free(pod *p)
{
	for (size_t i = 0; p->ctrs && i < p->spec->n_ctrs; i++) {
		ctr *c = &p->ctrs[i];
		free(c->reason);
		free(c->message);
		close_fd(&c->pidfd);
		close_fd(&c->out_r);
		close_fd(&c->err_r);
		ks_log_sink_unref(c->log);
		ks_log_sink_unref(c->prev_log);
		for (size_t j = 0; c->envp && c->envp[j]; j++)
			free(c->envp[j]);
		free(c->envp);
	}
	free(p->ctrs);
	close_fd(&p->evfd);
	free(p->phase);
	free(p->reason);
	free(p->message);
	free(p->dir);
	ks_pod_spec_free(p->spec);
	free(p);
}

static void pod_unref(pod *p)
{
	ks_kubelet *k = p->k;
	int last;

	pthread_mutex_lock(&k->mu);
	last = --p->refs == 0;
	pthread_mutex_unlock(&k->mu);
	if (last)
		pod_free(p);
}

static pod *find_pod(ks_kubelet *k, const char *uid, size_t *idx)
{
	for (size_t i = 0; uid && i < k->n_pods; i++)
		if (strcmp(k->pods[i]->spec->uid, uid) == 0) {
			if (idx)
				*idx = i;
			return k->pods[i];
		}
	return NULL;
}

/* The container's environment as the runtime gives it: the spec's env,
 * then defaults for what the image config would have (PATH), HOSTNAME
 * (containerd) and HOME (runc: the user's home, or /). */
static char **build_envp(const ks_pod_spec *ps, const ks_ctr_spec *cs, uid_t uid)
{
	size_t n = cs->n_env;
	char **env = calloc(n + 4, sizeof *env);
	size_t k = 0;
	int has_path = 0, has_home = 0, has_host = 0;

	env[k++] = str_printf("HOSTNAME=%s", ps->hostname);
	has_host = 1;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(cs->env[i].name, "PATH") == 0)
			has_path = 1;
		if (strcmp(cs->env[i].name, "HOME") == 0)
			has_home = 1;
		if (strcmp(cs->env[i].name, "HOSTNAME") == 0 && has_host) {
			free(env[0]);
			env[0] = str_printf("HOSTNAME=%s", cs->env[i].value);
			continue;
		}
		env[k++] = str_printf("%s=%s", cs->env[i].name, cs->env[i].value);
	}
	if (!has_path)
		env[k++] = str_dup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (!has_home) {
		struct passwd pw, *res = NULL;
		char b[1024];
		if (getpwuid_r(uid, &pw, b, sizeof b, &res) == 0 && res)
			env[k++] = str_printf("HOME=%s", pw.pw_dir);
		else
			env[k++] = str_dup("HOME=/");
	}
	env[k] = NULL;
	return env;
}

int ks_kubelet_pod_start(ks_kubelet *k, const cJSON *pod_obj)
{
	ks_pod_spec *spec = NULL;
	pod *p = NULL;
	pthread_attr_t attr;
	int rc;

	if ((rc = ks_pod_spec_parse(&spec, pod_obj)))
		return rc;
	pthread_mutex_lock(&k->mu);
	if (k->shutdown) {
		pthread_mutex_unlock(&k->mu);
		ks_pod_spec_free(spec);
		return err_set(ERR_FAIL, "the kubelet is shutting down");
	}
	if (find_pod(k, spec->uid, NULL)) {
		pthread_mutex_unlock(&k->mu);
		rc = err_set(ERR_CONFLICT, "pod %s/%s (uid %s) is already running", spec->ns, spec->name, spec->uid);
		ks_pod_spec_free(spec);
		return rc;
	}
	pthread_mutex_unlock(&k->mu);

	p = calloc(1, sizeof *p);
	p->k = k;
	p->spec = spec;
	p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	p->dir = str_printf("%s/pods/%s", k->data_dir, spec->uid);
	p->ctrs = calloc(spec->n_ctrs, sizeof *p->ctrs);
	p->phase = str_dup("Pending");
	p->refs = 2; /* the table and the supervisor */
	for (size_t i = 0; i < spec->n_ctrs; i++) {
		ctr *c = &p->ctrs[i];
		const ks_ctr_spec *cs = &spec->ctrs[i];
		c->spec = cs;
		c->pid = -1;
		c->pidfd = c->out_r = c->err_r = -1;
		c->state = KS_CTR_WAITING;
		c->reason = str_dup("ContainerCreating");
		c->set_user = geteuid() == 0 && !k->userns;
		c->uid = cs->has_uid ? cs->uid : 0;
		c->gid = cs->has_gid ? cs->gid : 0;
		if (!cs->has_gid && cs->has_uid) {
			struct passwd pw, *res = NULL;
			char b[1024];
			if (getpwuid_r(cs->uid, &pw, b, sizeof b, &res) == 0 && res)
				c->gid = pw.pw_gid;
		}
		c->envp = build_envp(spec, cs, c->uid);
	}

	/* DATA_DIR/pods/<uid>/{volumes/kubernetes.io~empty-dir/<name>,logs,root} */
	char *d = str_printf("%s/volumes/kubernetes.io~empty-dir", p->dir);
	mkdir(p->dir, 0750);
	char *v = str_printf("%s/volumes", p->dir);
	mkdir(v, 0750);
	free(v);
	mkdir(d, 0750);
	for (size_t i = 0; i < spec->n_volumes; i++) {
		char *vd = str_printf("%s/%s", d, spec->volumes[i]);
		mkdir(vd, 0777);
		chmod(vd, 0777); /* upstream: emptyDir directories are world-writable */
		free(vd);
	}
	free(d);
	d = str_printf("%s/logs", p->dir);
	mkdir(d, 0750);
	free(d);
	d = str_printf("%s/root", p->dir);
	mkdir(d, 0755);
	free(d);

	pthread_mutex_lock(&k->mu);
	if (k->n_pods == k->cap_pods) {
		size_t nc = k->cap_pods ? 2 * k->cap_pods : 16;
		pod **np = realloc(k->pods, nc * sizeof *np);
		if (!np) {
			pthread_mutex_unlock(&k->mu);
			p->refs = 1;
			pod_unref(p);
			return err_set(ERR_NOMEM, "out of memory");
		}
		k->pods = np;
		k->cap_pods = nc;
	}
	k->pods[k->n_pods++] = p;
	k->n_threads++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&p->thr, &attr, supervise, p);
	pthread_attr_destroy(&attr);
	if (rc) {
		k->n_pods--;
		k->n_threads--;
		pthread_mutex_unlock(&k->mu);
		p->refs = 1;
		pod_unref(p);
		return err_set(ERR_FAIL, "starting the pod's thread: %s", strerror(rc));
	}
	pthread_mutex_unlock(&k->mu);
	return 0;
}

int ks_kubelet_pod_stop(ks_kubelet *k, const char *uid, int grace_seconds, const char *reason)
{
	pod *p;

	pthread_mutex_lock(&k->mu);
	p = find_pod(k, uid, NULL);
	if (!p) {
		pthread_mutex_unlock(&k->mu);
		return err_set(ERR_NOTFOUND, "no pod with uid %s", uid ? uid : "(null)");
	}
	if (!p->stopping && !p->sup_done) {
		p->stopping = 1;
		p->kill_at = grace_seconds > 0 ? grace_seconds : 0; /* the grace, read by the supervisor */
		if (reason)
			set_str(&p->reason, reason);
		wake(p->evfd);
	}
	pthread_mutex_unlock(&k->mu);
	return 0;
}

void ks_kubelet_pod_forget(ks_kubelet *k, const char *uid)
{
	pod *p;
	size_t idx;
	int done;

	if (!k || !uid)
		return;
	pthread_mutex_lock(&k->mu);
	p = find_pod(k, uid, &idx);
	if (!p) {
		pthread_mutex_unlock(&k->mu);
		return;
	}
	k->pods[idx] = k->pods[--k->n_pods];
	p->forgotten = 1;
	if (!p->stopping) {
		p->stopping = 1;
		p->kill_at = 0;
	}
	for (size_t i = 0; i < p->spec->n_ctrs; i++)
		if (p->ctrs[i].pidfd >= 0)
			syscall(SYS_pidfd_send_signal, p->ctrs[i].pidfd, SIGKILL, NULL, 0);
	wake(p->evfd);
	/* wait for the processes to be gone, unless we are the supervisor
	 * itself (a callback that forgets its own pod) */
	if (!pthread_equal(pthread_self(), p->thr))
		while (!p->sup_done)
			pthread_cond_wait(&k->cond, &k->mu);
	done = p->sup_done;
	pthread_mutex_unlock(&k->mu);
	if (done)
		remove_pod_dir(p);
	pod_unref(p);
}

size_t ks_kubelet_pod_count(ks_kubelet *k)
{
	size_t n;
	pthread_mutex_lock(&k->mu);
	n = k->n_pods;
	pthread_mutex_unlock(&k->mu);
	return n;
}

size_t ks_kubelet_process_count(ks_kubelet *k)
{
	size_t n;
	pthread_mutex_lock(&k->mu);
	n = k->n_procs;
	pthread_mutex_unlock(&k->mu);
	return n;
}

/* ---- kubelet ---- */

int ks_kubelet_new(ks_kubelet **out, const ks_kubelet_opts *opts, ks_pod_status_cb status_cb, ks_pod_event_cb event_cb,
		   void *cb_arg)
{
	ks_kubelet *k;
	int userns, rc;
	char *pods;

	*out = NULL;
	if (!opts || !opts->data_dir || !*opts->data_dir)
		return err_set(ERR_INVALID, "kubelet: a data directory is required");
	if ((rc = ks_iso_probe(&userns)))
		return rc;
	pods = str_printf("%s/pods", opts->data_dir);
	if (mkdir(opts->data_dir, 0750) < 0 && errno != EEXIST) {
		rc = err_set(ERR_FAIL, "kubelet: create %s: %s", opts->data_dir, strerror(errno));
		free(pods);
		return rc;
	}
	if (mkdir(pods, 0750) < 0 && errno != EEXIST) {
		rc = err_set(ERR_FAIL, "kubelet: create %s: %s", pods, strerror(errno));
		free(pods);
		return rc;
	}
	free(pods);
	k = calloc(1, sizeof *k);
	if (!k)
		return err_set(ERR_NOMEM, "out of memory");
	k->data_dir = str_dup(opts->data_dir);
	k->fail_glob = str_dup(opts->image_fail_glob);
	k->pull_ms = opts->image_pull_ms;
	k->status_cb = status_cb;
	k->event_cb = event_cb;
	k->cb_arg = cb_arg;
	k->userns = userns;
	k->shutdown_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cond, NULL);
	*out = k;
	return 0;
}

void ks_kubelet_free(ks_kubelet *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->mu);
	k->shutdown = 1;
	wake(k->shutdown_fd);
	for (size_t i = 0; i < k->n_pods; i++) {
		pod *p = k->pods[i];
		p->stopping = 1;
		p->kill_at = 0;
		for (size_t j = 0; j < p->spec->n_ctrs; j++)
			if (p->ctrs[j].pidfd >= 0)
				syscall(SYS_pidfd_send_signal, p->ctrs[j].pidfd, SIGKILL, NULL, 0);
		wake(p->evfd);
	}
	while (k->n_threads > 0)
		pthread_cond_wait(&k->cond, &k->mu);
	pthread_mutex_unlock(&k->mu);
	for (size_t i = 0; i < k->n_pods; i++)
		pod_unref(k->pods[i]);
	free(k->pods);
	close_fd(&k->shutdown_fd);
	pthread_mutex_destroy(&k->mu);
	pthread_cond_destroy(&k->cond);
	free(k->data_dir);
	free(k->fail_glob);
	free(k);
}

/* ---- exec ---- */

/* The running container an exec or a log refers to; k->mu held. */
static int find_ctr(ks_kubelet *k, const char *uid, const char *name, pod **pout, ctr **cout)
{
	pod *p = find_pod(k, uid, NULL);
	const ks_ctr_spec *cs;

	if (!p)
		return err_set(ERR_NOTFOUND, "no pod with uid %s on this node", uid ? uid : "(null)");
	cs = ks_pod_spec_container(p->spec, name);
	if (!cs)
		/* pkg/registry/core/pod/strategy.go: BadRequest */
		return err_set(ERR_INVALID, "container %s is not valid for pod %s", name ? name : "", p->spec->name);
	*pout = p;
	*cout = &p->ctrs[cs - p->spec->ctrs];
	return 0;
}

int ks_kubelet_exec_check(ks_kubelet *k, const char *uid, const char *container)
{
	pod *p;
	ctr *c;
	int rc;

	pthread_mutex_lock(&k->mu);
	rc = find_ctr(k, uid, container, &p, &c);
	if (!rc && p->phase && (strcmp(p->phase, "Succeeded") == 0 || strcmp(p->phase, "Failed") == 0))
		/* pkg/registry/core/pod/strategy.go streamLocation */
		rc = err_set(ERR_INVALID, "cannot exec into a container in a completed pod; current phase is %s", p->phase);
	else if (!rc && (c->state != KS_CTR_RUNNING || c->pidfd < 0))
		/* the kubelet's GetExec: kl.findContainer found nothing running */
		rc = err_set(ERR_INVALID, "container not found (\"%s\")", c->spec->name);
	pthread_mutex_unlock(&k->mu);
	return rc;
}

typedef struct exec_job {
	ks_kubelet *k;
	ks_exec_params *p;
	int fd;
	void *extra;
	size_t extra_len;
	ks_exec_target t;
	ks_exec_hooks hooks;
} exec_job;

static void hook_stream_done(void *arg)
{
	ks_kubelet *k = arg;
	pthread_mutex_lock(&k->mu);
	k->n_sessions--;
	pthread_mutex_unlock(&k->mu);
}

static void hook_proc_started(void *arg)
{
	ks_kubelet *k = arg;
	pthread_mutex_lock(&k->mu);
	k->n_procs++;
	pthread_mutex_unlock(&k->mu);
}

static void hook_proc_reaped(void *arg)
{
	ks_kubelet *k = arg;
	pthread_mutex_lock(&k->mu);
	k->n_procs--;
	pthread_mutex_unlock(&k->mu);
}

static void hook_thread_done(void *arg)
{
	ks_kubelet *k = arg;
	pthread_mutex_lock(&k->mu);
	k->n_threads--;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->mu);
}

static void *exec_thread(void *arg)
{
	exec_job *j = arg;
	ks_exec_session_run(j->p, j->fd, j->extra, j->extra_len, &j->t, &j->hooks);
	free(j->extra);
	free(j);
	return NULL;
}

int ks_kubelet_exec_serve(ks_kubelet *k, ks_exec_params *p, int fd, const void *extra, size_t extra_len)
{
	exec_job *j = NULL;
	pod *pd;
	ctr *c;
	pthread_attr_t attr;
	int rc;

	if (!p || !p->argv || !p->argv[0]) {
		ks_exec_params_free(p);
		close(fd);
		return err_set(ERR_INVALID, "exec: a command is required");
	}
	j = calloc(1, sizeof *j);
	if (!j) {
		ks_exec_params_free(p);
		close(fd);
		return err_set(ERR_NOMEM, "out of memory");
	}
	j->t.ctr_pidfd = -1;
	pthread_mutex_lock(&k->mu);
	rc = find_ctr(k, p->uid, p->container, &pd, &c);
	if (!rc && (c->state != KS_CTR_RUNNING || c->pidfd < 0))
		rc = err_set(ERR_INVALID, "container not found (\"%s\")", c->spec->name);
	if (!rc && k->shutdown)
		rc = err_set(ERR_FAIL, "the kubelet is shutting down");
	if (rc) {
		pthread_mutex_unlock(&k->mu);
		free(j);
		ks_exec_params_free(p);
		close(fd);
		return rc == ERR_NOTFOUND || rc == ERR_INVALID ? rc : ERR_FAIL;
	}
	size_t ne = 0;
	while (c->envp[ne])
		ne++;
	j->t.envp = calloc(ne + 1, sizeof *j->t.envp);
	for (size_t i = 0; i < ne; i++)
		j->t.envp[i] = str_dup(c->envp[i]);
	j->t.ctr_pidfd = fcntl(c->pidfd, F_DUPFD_CLOEXEC, 3);
	j->t.userns = k->userns;
	j->t.workdir = str_dup(c->spec->workdir);
	j->t.set_user = c->set_user;
	j->t.uid = c->uid;
	j->t.gid = c->gid;
	j->t.n_groups = pd->spec->n_groups;
	j->t.groups = calloc(j->t.n_groups + 1, sizeof *j->t.groups);
	memcpy(j->t.groups, pd->spec->groups, j->t.n_groups * sizeof *j->t.groups);
	j->t.shutdown_fd = k->shutdown_fd;
	k->n_sessions++;
	k->n_threads++;
	pthread_mutex_unlock(&k->mu);

	j->k = k;
	j->p = p;
	j->fd = fd;
	if (extra_len) {
		j->extra = malloc(extra_len);
		memcpy(j->extra, extra, extra_len);
		j->extra_len = extra_len;
	}
	j->hooks = (ks_exec_hooks){ k, hook_stream_done, hook_proc_started, hook_proc_reaped, hook_thread_done };
	pthread_t th;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	rc = pthread_create(&th, &attr, exec_thread, j);
	pthread_attr_destroy(&attr);
	if (rc) {
		pthread_mutex_lock(&k->mu);
		k->n_sessions--;
		k->n_threads--;
		pthread_mutex_unlock(&k->mu);
		ks_exec_target_clear(&j->t);
		free(j->extra);
		free(j);
		ks_exec_params_free(p);
		close(fd);
		return err_set(ERR_FAIL, "exec: starting the session's thread: %s", strerror(rc));
	}
	return 0;
}

void ks_exec_params_free(ks_exec_params *p)
{
	if (!p)
		return;
	free(p->uid);
	free(p->container);
	for (size_t i = 0; p->argv && p->argv[i]; i++)
		free(p->argv[i]);
	free(p->argv);
	free(p);
}

size_t ks_kubelet_exec_count(ks_kubelet *k)
{
	size_t n;
	pthread_mutex_lock(&k->mu);
	n = k->n_sessions;
	pthread_mutex_unlock(&k->mu);
	return n;
}

/* ---- logs ---- */

int ks_kubelet_log_open(ks_kubelet *k, ks_log_reader **out, const ks_log_params *lp)
{
	pod *p;
	ctr *c;
	ks_log_sink *sink = NULL;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&k->mu);
	rc = find_ctr(k, lp->uid, lp->container, &p, &c);
	if (rc) {
		pthread_mutex_unlock(&k->mu);
		return rc;
	}
	/* pkg/kubelet/kubelet_pods.go validateContainerLogStatus */
	const char *cn = c->spec->name, *pn = p->spec->name;
	if (lp->previous) {
		if (!c->prev_log || c->restart_count == 0) {
			pthread_mutex_unlock(&k->mu);
			return err_set(ERR_INVALID, "previous terminated container \"%s\" in pod \"%s\" not found", cn, pn);
		}
		sink = c->prev_log;
	} else if (c->state == KS_CTR_WAITING && (!c->log || !c->ran)) {
		const char *r = c->reason ? c->reason : "ContainerCreating";
		if (strcmp(r, "ErrImagePull") == 0)
			rc = err_set(ERR_INVALID, "container \"%s\" in pod \"%s\" is waiting to start: image can't be pulled",
				     cn, pn);
		else if (strcmp(r, "ImagePullBackOff") == 0)
			rc = err_set(ERR_INVALID,
				     "container \"%s\" in pod \"%s\" is waiting to start: trying and failing to pull image", cn,
				     pn);
		else
			rc = err_set(ERR_INVALID, "container \"%s\" in pod \"%s\" is waiting to start: %s", cn, pn, r);
		pthread_mutex_unlock(&k->mu);
		return rc;
	} else if (c->log) {
		sink = c->log;
	} else {
		pthread_mutex_unlock(&k->mu);
		return err_set(ERR_INVALID, "container \"%s\" in pod \"%s\" is terminated", cn, pn);
	}
	ks_log_sink_ref(sink);
	pthread_mutex_unlock(&k->mu);
	rc = ks_log_reader_new(out, sink, lp);
	ks_log_sink_unref(sink);
	return rc;
}

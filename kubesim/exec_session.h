/*
 * exec_session: one pods/exec WebSocket session of the kubelet (see
 * exec_session.c). kubelet.c resolves the target container and hands the
 * session everything it needs, so the session never touches the pod table.
 */
#ifndef KUBESIM_EXEC_SESSION_H
#define KUBESIM_EXEC_SESSION_H

#include <stddef.h>
#include <sys/types.h>

#include "kubesim/kubelet.h"

typedef struct ks_exec_target {
	int ctr_pidfd;        /* the container's PID 1 (owned: closed by the session) */
	int userns;
	char **envp;          /* owned, NULL-terminated */
	char *workdir;        /* owned, may be NULL */
	int set_user;
	uid_t uid;
	gid_t gid;
	gid_t *groups;        /* owned */
	size_t n_groups;
	int shutdown_fd;      /* kubelet-wide: readable once the kubelet is being freed */
} ks_exec_target;

/* Calls back into the kubelet's counters (from the session's thread). */
typedef struct ks_exec_hooks {
	void *arg;
	void (*stream_done)(void *arg);  /* the WebSocket is finished */
	void (*proc_started)(void *arg); /* a relay process now exists */
	void (*proc_reaped)(void *arg);  /* and is gone */
	void (*thread_done)(void *arg);  /* the session's last act */
} ks_exec_hooks;

/* Run a whole session on the calling thread (the kubelet gives it a
 * thread of its own). Takes ownership of p, fd and t's owned members. */
void ks_exec_session_run(ks_exec_params *p, int fd, const void *extra, size_t extra_len, ks_exec_target *t,
			 const ks_exec_hooks *hooks);

void ks_exec_target_clear(ks_exec_target *t);

#endif

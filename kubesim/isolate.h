/*
 * isolate: start a container's process in its own namespaces, and run more
 * processes inside them later (exec). See isolate.c for how the root
 * filesystem is built.
 */
#ifndef KUBESIM_ISOLATE_H
#define KUBESIM_ISOLATE_H

#include <stddef.h>
#include <sys/types.h>

/* A directory bind-mounted into the container at dst (absolute). */
typedef struct ks_iso_bind {
	const char *src;
	const char *dst;
	int ro;
} ks_iso_bind;

/* The process to run, in the container's view of the filesystem. */
typedef struct ks_iso_proc {
	char *const *argv;    /* argv[0] without '/' is looked up in envp's PATH */
	char *const *envp;
	const char *workdir;  /* NULL: "/" */
	int set_user;         /* apply uid/gid/groups (root only) */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t n_groups;
	int fd_in, fd_out, fd_err; /* become 0, 1, 2; -1: /dev/null */
	int tty;              /* fd_in is a terminal: make it the controlling one */
} ks_iso_proc;

/* The container's private filesystem. */
typedef struct ks_iso_box {
	const char *root;     /* an empty host directory: the new root's mount point */
	const char *hostname;
	const ks_iso_bind *binds; /* sorted so that a parent comes before its children */
	size_t n_binds;
	int ro_root;          /* remount / read-only (readOnlyRootFilesystem) */
	int mkdir_workdir;    /* create proc->workdir if missing, as runc does */
	int userns;           /* not root: a user namespace mapping us to 0 */
} ks_iso_box;

/* Probe whether containers can be isolated here: as root, mount and PID
 * namespaces; otherwise a user namespace with them. *userns_out says which
 * (0: root, 1: user namespace). 0, or ERR_FAIL with a message saying what
 * is missing and what to do. */
int ks_iso_probe(int *userns_out);

/* Start proc as PID 1 of new mount, PID and UTS namespaces (and a user
 * namespace when box->userns) inside box, in its own session and process
 * group. Returns once the program was executed: *out_pid is its PID here,
 * *out_pidfd a pidfd for it (caller closes). On failure (a mount, the
 * working directory, the user, or the exec itself) ERR_FAIL with the
 * runtime-style message, e.g. 'exec: "foo": executable file not found in
 * $PATH'; nothing is left running. */
int ks_iso_start(pid_t *out_pid, int *out_pidfd, const ks_iso_box *box, const ks_iso_proc *proc);

/* Run proc inside the namespaces of the container whose PID 1 is ctr_pidfd
 * (setns in a clone of ours, then the command started in the container's
 * PID namespace as our own child). Returns once it was executed:
 * *out_pid is the command's PID here (reap it: its status is the
 * command's), *out_pidfd a pidfd for it (caller closes). Errors as
 * ks_iso_start. */
int ks_iso_exec(pid_t *out_pid, int *out_pidfd, int ctr_pidfd, int userns, const ks_iso_proc *proc);

#endif

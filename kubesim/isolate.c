/*
 * isolate: containers without a container runtime (DESIGN.md "kubesim").
 *
 * A container is a process cloned into new mount, PID and UTS namespaces
 * (plus a user namespace when we are not root). Before it executes the
 * container's command it builds its own root filesystem:
 *
 *   tmpfs on ROOT                          the new /, empty
 *   /usr /bin /sbin /lib /lib64 /etc ...   the host's, bind-mounted read-only
 *                                          (a host symlink such as bin ->
 *                                          usr/bin is recreated as a symlink)
 *   /dev                                   the host's /dev, bound
 *   /tmp /root /home /run /var/tmp         empty directories in the tmpfs
 *   volumes                                each bound at its mountPath
 *   pivot_root into ROOT, detach the old root, mount a fresh /proc, and
 *   remount / read-only for readOnlyRootFilesystem.
 * Not root: the same inside a user namespace that maps us to 0; runAsUser
 * is not applied there, and where the kernel refuses a fresh /proc (a
 * host /proc with masked paths) the host's /proc is bound instead.
 *
 * The command runs as PID 1 of its PID namespace, as in a container: when
 * it exits the kernel kills everything else in the namespace, and like any
 * PID 1 it ignores signals it has no handler for (SIGTERM to `sleep` as
 * PID 1 does nothing; the grace period then ends in SIGKILL, as with a
 * real runtime).
 *
 * exec joins a running container with setns() on its pidfd (mount, PID,
 * UTS, user) in a clone of ours, which then starts the command with
 * CLONE_PARENT, since only children enter a PID namespace: the command is
 * kubesim's own child, so the kubelet waits for it directly. Both clones
 * share our memory (vfork-style): forking kubesim's address space cost
 * ~20 ms of CPU per exec.
 *
 * Everything between clone/fork and execve runs in a copy of a
 * multi-threaded process: only system calls and stack buffers there, no
 * malloc, no stdio. Failures travel back as a message over a close-on-exec
 * pipe: EOF without a message means the exec succeeded.
 */
#include "kubesim/isolate.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/err.h"
#include "util/str.h"

/* The nice value of every container process and exec'd command. */
#define KS_ISO_NICE 10

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define ISO_PATH_MAX 4096
#define ISO_MSG_MAX 1024

/* ---- async-signal-safe helpers for the child ---- */

typedef struct smsg {
	char b[ISO_MSG_MAX];
	size_t n;
} smsg;

static void sm_add(smsg *m, const char *s)
{
	while (s && *s && m->n + 1 < sizeof m->b)
		m->b[m->n++] = *s++;
	m->b[m->n] = '\0';
}

/* Go-style lower-case error text: "no such file or directory". */
static void sm_errno(smsg *m, int e)
{
	const char *d = strerrordesc_np(e);
	size_t start = m->n;

	sm_add(m, d ? d : "unknown error");
	if (m->n > start && m->b[start] >= 'A' && m->b[start] <= 'Z' &&
	    !(m->b[start + 1] >= 'A' && m->b[start + 1] <= 'Z'))
		m->b[start] = (char)(m->b[start] - 'A' + 'a');
}

static _Noreturn void child_fail(int efd, smsg *m)
{
	if (efd >= 0) {
		ssize_t w = write(efd, m->b, m->n);
		(void)w;
	}
	_exit(127);
}

/* Fail with "WHAT "PATH": errno-text". */
static _Noreturn void fail_path(int efd, const char *what, const char *path, int e)
{
	smsg m = { .n = 0 };

	sm_add(&m, what);
	sm_add(&m, " \"");
	sm_add(&m, path);
	sm_add(&m, "\": ");
	sm_errno(&m, e);
	child_fail(efd, &m);
}

static int join(char *out, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la + lb + 2 > ISO_PATH_MAX)
		return -1;
	memcpy(out, a, la);
	if (la && a[la - 1] == '/' && b[0] == '/')
		b++, lb--;
	else if (la && a[la - 1] != '/' && b[0] != '/')
		out[la++] = '/';
	memcpy(out + la, b, lb + 1);
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char p[ISO_PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof p)
		return -1;
	memcpy(p, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] == '/' || p[i] == '\0') {
			char c = p[i];
			p[i] = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST)
				return -1;
			p[i] = c;
		}
	}
	return 0;
}

/* Remount a bind mount read-only, keeping the flags the kernel locks
 * (nosuid, nodev, noexec: required inside a user namespace). */
static int remount_ro(const char *path)
{
	struct statvfs sv;
	unsigned long fl = MS_REMOUNT | MS_BIND | MS_RDONLY;

	if (statvfs(path, &sv) == 0) {
		if (sv.f_flag & ST_NOSUID)
			fl |= MS_NOSUID;
		if (sv.f_flag & ST_NODEV)
			fl |= MS_NODEV;
		if (sv.f_flag & ST_NOEXEC)
			fl |= MS_NOEXEC;
		if (sv.f_flag & ST_NOATIME)
			fl |= MS_NOATIME;
		if (sv.f_flag & ST_NODIRATIME)
			fl |= MS_NODIRATIME;
		if (sv.f_flag & ST_RELATIME)
			fl |= MS_RELATIME;
	}
	return mount(NULL, path, NULL, fl, NULL);
}

static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* execve with a PATH search in the container's own PATH (runc looks the
 * command up inside the container, not with the runtime's PATH), and
 * runc's messages (libcontainer/standard_init_linux.go: exec: "x": ...). */
static _Noreturn void exec_proc(int efd, const ks_iso_proc *p)
{
	const char *file = p->argv[0];
	smsg m = { .n = 0 };

	if (strchr(file, '/')) {
		execve(file, p->argv, p->envp);
		int e = errno;
		struct stat st;
		sm_add(&m, "exec: \"");
		sm_add(&m, file);
		sm_add(&m, "\": ");
		if (stat(file, &st) < 0) {
			/* Go's exec.LookPath reports the stat */
			sm_add(&m, "stat ");
			sm_add(&m, file);
			sm_add(&m, ": ");
			sm_errno(&m, errno);
		} else {
			sm_errno(&m, e);
		}
		child_fail(efd, &m);
	}
	const char *path = env_get(p->envp, "PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	int saw_eacces = 0;
	while (*path) {
		const char *end = strchr(path, ':');
		size_t dl = end ? (size_t)(end - path) : strlen(path);
		char full[ISO_PATH_MAX];
		if (dl + strlen(file) + 2 < sizeof full) {
			if (dl == 0) {
				full[0] = '.';
				dl = 1;
			} else {
				memcpy(full, path, dl);
			}
			full[dl] = '/';
			memcpy(full + dl + 1, file, strlen(file) + 1);
			execve(full, p->argv, p->envp);
			if (errno == EACCES)
				saw_eacces = 1;
		}
		path += end ? (size_t)(end - path) + 1 : strlen(path);
	}
	sm_add(&m, "exec: \"");
	sm_add(&m, file);
	sm_add(&m, saw_eacces ? "\": permission denied" : "\": executable file not found in $PATH");
	child_fail(efd, &m);
}

/* The process side common to start and exec: session, stdio, working
 * directory, user, default signal state, then exec. */
static _Noreturn void run_proc(int efd, const ks_iso_proc *p)
{
	sigset_t all;
	int fds[3] = { p->fd_in, p->fd_out, p->fd_err };
	int devnull = -1;

	setsid();
	/* Pods run on the API server's own CPUs here, which a cluster never
	 * does: at nice KS_ISO_NICE they take what the API server leaves
	 * instead of an equal share (bench part 4: 1,000 pods' shells and
	 * their wc and sleep children used most of both cores and kubesim's
	 * requests waited tens of seconds for a CPU). Failure is harmless. */
	{
		int cur;

		errno = 0;
		cur = getpriority(PRIO_PROCESS, 0);
		if (errno == 0 && cur < KS_ISO_NICE)
			(void)setpriority(PRIO_PROCESS, 0, KS_ISO_NICE);
	}
	for (int i = 0; i < 3; i++) {
		if (fds[i] < 0) {
			if (devnull < 0)
				devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
			fds[i] = devnull;
		}
	}
	/* move the sources above 2 first so dup2 cannot clobber one */
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0 && fds[i] <= 2)
			fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0 && dup2(fds[i], i) < 0) {
			smsg m = { .n = 0 };
			sm_add(&m, "dup2: ");
			sm_errno(&m, errno);
			child_fail(efd, &m);
		}
	if (p->tty)
		ioctl(0, TIOCSCTTY, 0);
	/* nothing of the kubelet's leaks into the container */
	syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	fcntl(efd, F_SETFD, FD_CLOEXEC);

	const char *wd = p->workdir && *p->workdir ? p->workdir : "/";
	if (chdir(wd) < 0) {
		smsg m = { .n = 0 };
		/* runc: libcontainer/init_linux.go */
		sm_add(&m, "chdir to cwd (\"");
		sm_add(&m, wd);
		sm_add(&m, "\") set in config.json failed: ");
		sm_errno(&m, errno);
		child_fail(efd, &m);
	}
	if (p->set_user) {
		/* raw system calls: glibc's wrappers broadcast the change to every
		 * thread of the parent's copy (setxid) and may wait on a lock that
		 * another parent thread held at clone time */
		if (syscall(SYS_setgroups, p->n_groups, p->groups) < 0 || syscall(SYS_setgid, p->gid) < 0 ||
		    syscall(SYS_setuid, p->uid) < 0) {
			smsg m = { .n = 0 };
			sm_add(&m, "setting the user: ");
			sm_errno(&m, errno);
			child_fail(efd, &m);
		}
	}
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	exec_proc(efd, p);
}

static const char *const host_dirs[] = { "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", NULL };

static _Noreturn void box_child(int efd, int syncfd, const ks_iso_box *b, const ks_iso_proc *p)
{
	char path[ISO_PATH_MAX];
	const char *root = b->root;

	if (syncfd >= 0) {
		char c;
		/* the parent writes our uid/gid maps, then lets us go */
		if (read(syncfd, &c, 1) != 1)
			_exit(127);
		close(syncfd);
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail_path(efd, "making mounts private", "/", errno);
	if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
		fail_path(efd, "mount tmpfs on", root, errno);
	for (int i = 0; host_dirs[i]; i++) {
		char host[64] = "/";
		struct stat st;
		memcpy(host + 1, host_dirs[i], strlen(host_dirs[i]) + 1);
		if (lstat(host, &st) < 0)
			continue;
		join(path, root, host);
		if (S_ISLNK(st.st_mode)) {
			char target[ISO_PATH_MAX];
			ssize_t n = readlink(host, target, sizeof target - 1);
			if (n > 0) {
				target[n] = '\0';
				if (symlink(target, path) < 0)
					fail_path(efd, "symlink", path, errno);
			}
		} else if (S_ISDIR(st.st_mode)) {
			if (mkdir(path, 0755) < 0 && errno != EEXIST)
				fail_path(efd, "mkdir", path, errno);
			if (mount(host, path, NULL, MS_BIND | MS_REC, NULL) < 0)
				fail_path(efd, "bind mount", host, errno);
			if (remount_ro(path) < 0)
				fail_path(efd, "remount read-only", path, errno);
		}
	}
	join(path, root, "/dev");
	mkdir(path, 0755);
	if (mount("/dev", path, NULL, MS_BIND | MS_REC, NULL) < 0)
		fail_path(efd, "bind mount", "/dev", errno);
	static const struct { const char *d; mode_t m; } dirs[] = {
		{ "/proc", 0555 }, { "/tmp", 01777 }, { "/root", 0700 }, { "/home", 0755 },
		{ "/run", 0755 },  { "/var", 0755 },  { "/var/tmp", 01777 }, { NULL, 0 } };
	for (int i = 0; dirs[i].d; i++) {
		join(path, root, dirs[i].d);
		mkdir(path, dirs[i].m);
		chmod(path, dirs[i].m);
	}
	for (size_t i = 0; i < b->n_binds; i++) {
		if (join(path, root, b->binds[i].dst) < 0)
			fail_path(efd, "mount path too long", b->binds[i].dst, ENAMETOOLONG);
		if (mkdir_p(path, 0755) < 0)
			fail_path(efd, "mkdir", b->binds[i].dst, errno);
		if (mount(b->binds[i].src, path, NULL, MS_BIND | MS_REC, NULL) < 0)
			fail_path(efd, "bind mount", b->binds[i].dst, errno);
		if (b->binds[i].ro && remount_ro(path) < 0)
			fail_path(efd, "remount read-only", b->binds[i].dst, errno);
	}
	if (b->mkdir_workdir && p->workdir && p->workdir[0] == '/') {
		join(path, root, p->workdir);
		mkdir_p(path, 0755);
	}
	if (b->userns) {
		/* Inside a user namespace the kernel refuses a fresh proc mount
		 * when the host's /proc has masked (over-mounted) paths, as in a
		 * container; the host's /proc is bound first as the fallback. */
		join(path, root, "/proc");
		mount("/proc", path, NULL, MS_BIND | MS_REC, NULL);
	}
	/* best effort: without its own UTS namespace the pod keeps the
	 * host's name, which no test relies on */
	if (b->hostname && sethostname(b->hostname, strlen(b->hostname)) < 0)
		errno = 0;
	/* pivot_root(".", "."): the old root ends up stacked on the new one
	 * and is detached right away (pivot_root(2), NOTES). */
	if (chdir(root) < 0)
		fail_path(efd, "chdir", root, errno);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		fail_path(efd, "pivot_root", root, errno);
	if (umount2(".", MNT_DETACH) < 0)
		fail_path(efd, "detach the old root", "/", errno);
	if (chdir("/") < 0)
		fail_path(efd, "chdir", "/", errno);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 && !b->userns)
		fail_path(efd, "mount", "/proc", errno);
	if (b->ro_root && remount_ro("/") < 0)
		fail_path(efd, "remount read-only", "/", errno);
	run_proc(efd, p);
}

typedef struct start_args {
	int efd;
	const ks_iso_box *box;
	const ks_iso_proc *proc;
} start_args;

#define START_STACK (128 * 1024) /* box_child's path buffers are a few 4 KiB */

static int start_main(void *arg)
{
	start_args *sa = arg;
	box_child(sa->efd, -1, sa->box, sa->proc);
}

/* Read the child's failure message; "" and 0 when the exec succeeded. */
static int read_failure(int efd, char *msg, size_t size)
{
	size_t n = 0;

	for (;;) {
		ssize_t r = read(efd, msg + n, size - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n + 1 >= size)
			break;
	}
	msg[n] = '\0';
	return n > 0;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

int ks_iso_start(pid_t *out_pid, int *out_pidfd, const ks_iso_box *box, const ks_iso_proc *proc)
{
	int ep[2] = { -1, -1 }, sp[2] = { -1, -1 };
	int pidfd = -1, status;
	unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_PIDFD | SIGCHLD;
	char msg[ISO_MSG_MAX];
	pid_t pid;

	*out_pid = -1;
	*out_pidfd = -1;
	if (pipe2(ep, O_CLOEXEC) < 0)
		return err_set(ERR_FAIL, "pipe: %s", strerror(errno));
	if (box->userns) {
		flags |= CLONE_NEWUSER;
		if (pipe2(sp, O_CLOEXEC) < 0) {
			close(ep[0]);
			close(ep[1]);
			return err_set(ERR_FAIL, "pipe: %s", strerror(errno));
		}
	}
	if (!box->userns) {
		/* As root: a clone sharing our memory (CLONE_VM|CLONE_VFORK, as
		 * for exec) on a stack of its own; this thread waits until the
		 * command was executed. Copying kubesim's address space was most
		 * of a pod start's cost. */
		start_args sa = { ep[1], box, proc };
		char *stack = malloc(START_STACK);
		if (!stack) {
			close(ep[0]);
			close(ep[1]);
			return err_set(ERR_NOMEM, "out of memory");
		}
		pid = clone(start_main, stack + START_STACK, (int)(flags | CLONE_VM | CLONE_VFORK), &sa, &pidfd);
		int e = errno;
		free(stack);
		errno = e;
	} else {
		/* With a user namespace the child must wait for the maps we
		 * write, so it cannot hold this thread: a raw clone (glibc has no
		 * fork() that enters new namespaces); the child only makes
		 * system calls until it executes. */
		pid = (pid_t)syscall(SYS_clone, flags, NULL, &pidfd, NULL, NULL);
		if (pid == 0) {
			close(ep[0]);
			if (sp[1] >= 0)
				close(sp[1]);
			box_child(ep[1], sp[0], box, proc);
		}
	}
	close(ep[1]);
	if (sp[0] >= 0)
		close(sp[0]);
	if (pid < 0) {
		int e = errno;
		close(ep[0]);
		if (sp[1] >= 0)
			close(sp[1]);
		return err_set(ERR_FAIL, "clone into new namespaces: %s", strerror(e));
	}
	if (box->userns) {
		char p[64], map[64];
		int ok;
		snprintf(map, sizeof map, "0 %u 1\n", (unsigned)getuid());
		snprintf(p, sizeof p, "/proc/%d/uid_map", (int)pid);
		ok = write_file(p, map) == 0;
		snprintf(p, sizeof p, "/proc/%d/setgroups", (int)pid);
		ok = ok && write_file(p, "deny") == 0;
		snprintf(map, sizeof map, "0 %u 1\n", (unsigned)getgid());
		snprintf(p, sizeof p, "/proc/%d/gid_map", (int)pid);
		ok = ok && write_file(p, map) == 0;
		if (ok) {
			ssize_t w = write(sp[1], "x", 1);
			(void)w;
		}
		close(sp[1]);
		if (!ok) {
			int e = errno;
			close(ep[0]);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			close(pidfd);
			return err_set(ERR_FAIL, "writing the user namespace's uid/gid maps: %s", strerror(e));
		}
	}
	if (read_failure(ep[0], msg, sizeof msg)) {
		close(ep[0]);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		close(pidfd);
		return err_set(ERR_FAIL, "%s", msg);
	}
	close(ep[0]);
	*out_pid = pid;
	*out_pidfd = pidfd;
	return 0;
}

/* exec's two steps, each a clone sharing our memory (CLONE_VM|CLONE_VFORK,
 * as posix_spawn does): no page tables copied, no copy-on-write faults in
 * kubesim's threads. The caller's thread waits until the command has been
 * executed (or failed); only the system calls of run_proc happen in
 * between, on the stacks given here. */
typedef struct exec_step {
	int efd;
	int ctr_pidfd;
	int nsflags;
	const ks_iso_proc *proc;
	char *cmd_stack_top;
	pid_t cmd_pid;          /* out: the command, a child of kubesim */
} exec_step;

#define EXEC_STACK (64 * 1024)

static int exec_cmd_main(void *arg)
{
	exec_step *st = arg;
	run_proc(st->efd, st->proc);
}

/* Join the container's namespaces (setns needs a process of its own: a
 * thread of kubesim shares its fs and could not enter a mount namespace),
 * then start the command as kubesim's child (CLONE_PARENT) in the
 * container's PID namespace, which only children enter. */
static int exec_join_main(void *arg)
{
	exec_step *st = arg;

	if (setns(st->ctr_pidfd, st->nsflags) < 0) {
		smsg m = { .n = 0 };
		sm_add(&m, "joining the container's namespaces: ");
		sm_errno(&m, errno);
		child_fail(st->efd, &m);
	}
	st->cmd_pid = clone(exec_cmd_main, st->cmd_stack_top, CLONE_VM | CLONE_VFORK | CLONE_PARENT | SIGCHLD, st);
	if (st->cmd_pid < 0) {
		smsg m = { .n = 0 };
		sm_add(&m, "clone: ");
		sm_errno(&m, errno);
		child_fail(st->efd, &m);
	}
	return 0;
}

int ks_iso_exec(pid_t *out_pid, int *out_pidfd, int ctr_pidfd, int userns, const ks_iso_proc *proc)
{
	int ep[2];
	int status;
	char msg[ISO_MSG_MAX];
	char *stacks = NULL;
	pid_t joiner;
	exec_step st;

	*out_pid = -1;
	*out_pidfd = -1;
	if (pipe2(ep, O_CLOEXEC) < 0)
		return err_set(ERR_FAIL, "pipe: %s", strerror(errno));
	stacks = malloc(2 * EXEC_STACK);
	if (!stacks) {
		close(ep[0]);
		close(ep[1]);
		return err_set(ERR_NOMEM, "out of memory");
	}
	memset(&st, 0, sizeof st);
	st.efd = ep[1];
	st.ctr_pidfd = ctr_pidfd;
	st.nsflags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | (userns ? CLONE_NEWUSER : 0);
	st.proc = proc;
	st.cmd_stack_top = stacks + 2 * EXEC_STACK;
	st.cmd_pid = -1;
	joiner = clone(exec_join_main, stacks + EXEC_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &st);
	int clone_errno = errno;
	close(ep[1]);
	if (joiner < 0) {
		close(ep[0]);
		free(stacks);
		return err_set(ERR_FAIL, "clone: %s", strerror(clone_errno));
	}
	/* the joiner has exited by now (it ends right after the command was
	 * executed); reap it */
	while (waitpid(joiner, &status, 0) < 0 && errno == EINTR)
		;
	free(stacks);
	if (read_failure(ep[0], msg, sizeof msg)) {
		close(ep[0]);
		if (st.cmd_pid > 0)
			while (waitpid(st.cmd_pid, &status, 0) < 0 && errno == EINTR)
				;
		return err_set(ERR_FAIL, "%s", msg);
	}
	close(ep[0]);
	if (st.cmd_pid <= 0)
		return err_set(ERR_FAIL, "exec: the command was not started");
	*out_pid = st.cmd_pid;
	*out_pidfd = (int)syscall(SYS_pidfd_open, st.cmd_pid, 0);
	return 0;
}

int ks_iso_probe(int *userns_out)
{
	unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | SIGCHLD;
	int status;
	pid_t pid;

	*userns_out = geteuid() != 0;
	if (*userns_out) {
		flags |= CLONE_NEWUSER;
		/* we write our children's /proc/PID/uid_map: that needs them (and
		 * so us) dumpable, which a process that changed its uid is not */
		prctl(PR_SET_DUMPABLE, 1);
	}
	pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
	if (pid == 0) {
		/* a private tmpfs proves we may mount here */
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(1);
		if (mount("tmpfs", "/tmp", "tmpfs", 0, NULL) < 0)
			_exit(2);
		_exit(0);
	}
	if (pid < 0)
		return err_set(ERR_FAIL,
			       "cannot isolate pods: creating %s namespaces failed (%s). Run kubesim as root, or enable "
			       "unprivileged user namespaces (sysctl user.max_user_namespaces, "
			       "kernel.apparmor_restrict_unprivileged_userns=0); kubesim will not run pods unisolated",
			       *userns_out ? "user, mount and PID" : "mount and PID", strerror(errno));
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return err_set(ERR_FAIL, "cannot isolate pods: waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return err_set(ERR_FAIL,
			       "cannot isolate pods: mounting inside a new mount namespace failed%s. Run kubesim as "
			       "root; kubesim will not run pods unisolated",
			       *userns_out ? " (in a user namespace)" : "");
	return 0;
}

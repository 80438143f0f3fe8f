/*
 * kubesim_harness: see kubesim_harness.h. Test code: plain stdio, no
 * dependency on kubesim's internals; the process is driven like a user
 * would (argv, files in the data directory, signals).
 */
#include "tests/lib/kubesim_harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct ks_harness {
	pid_t pid;
	char dir[512];
	char data[600];
	char url[128];
	char kubeconfig[700];
	char ca[700];
	char token[256];
	char err[1024];
};

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int read_first_line(const char *path, char *out, size_t n)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(out, (int)n, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	out[strcspn(out, "\r\n")] = 0;
	return out[0] ? 0 : -1;
}

static void stderr_tail(ks_harness *h)
{
	char path[700], b[700];
	snprintf(path, sizeof path, "%s/stderr", h->dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t n = fread(b, 1, sizeof b - 1, f);
	b[n] = 0;
	fclose(f);
	size_t l = strlen(h->err);
	snprintf(h->err + l, sizeof h->err - l, "; kubesim stderr: %s", b);
}

int ks_harness_start(ks_harness **out, const char *const *extra_args)
{
	ks_harness *h = calloc(1, sizeof *h);
	*out = h;
	if (!h)
		return -1;
	h->pid = -1;
	const char *tmp = getenv("TMPDIR");
	snprintf(h->dir, sizeof h->dir, "%s/kubesim-harness.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(h->dir)) {
		snprintf(h->err, sizeof h->err, "mkdtemp: %s", strerror(errno));
		h->dir[0] = 0;
		return -1;
	}
	snprintf(h->data, sizeof h->data, "%s/data", h->dir);
	const char *root = getenv("CIFIXER_TEST_ROOT");
	const char *build = getenv("BUILD");
	char bin[1024];
	if (!build || !build[0])
		build = "build";
	if (build[0] == '/')
		snprintf(bin, sizeof bin, "%s/kubesim", build);
	else
		snprintf(bin, sizeof bin, "%s/%s/kubesim", root && root[0] ? root : ".", build);
	if (access(bin, X_OK) != 0) {
		snprintf(h->err, sizeof h->err, "%.900s not found or not executable (run make first)", bin);
		return -1;
	}
	const char *argv[64];
	int n = 0;
	argv[n++] = bin;
	argv[n++] = "--listen";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--data-dir";
	argv[n++] = h->data;
	for (int i = 0; extra_args && extra_args[i] && n < 62; i++)
		argv[n++] = extra_args[i];
	argv[n] = NULL;
	char outp[700], errp[700];
	snprintf(outp, sizeof outp, "%s/stdout", h->dir);
	snprintf(errp, sizeof errp, "%s/stderr", h->dir);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(h->err, sizeof h->err, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* a test process killed by its timeout must not leave kubesim
		 * (and its pods) running: it gets SIGTERM when we die */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (o >= 0)
			dup2(o, 1);
		if (e >= 0)
			dup2(e, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	h->pid = pid;
	char ready[700];
	snprintf(ready, sizeof ready, "%s/ready", h->data);
	for (int i = 0; i < 200; i++) {
		if (read_first_line(ready, h->url, sizeof h->url) == 0)
			break;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			h->pid = -1;
			snprintf(h->err, sizeof h->err, "kubesim exited (status %d) before it was ready", st);
			stderr_tail(h);
			return -1;
		}
		sleep_ms(100);
	}
	if (!h->url[0]) {
		snprintf(h->err, sizeof h->err, "kubesim not ready after 20 s");
		stderr_tail(h);
		return -1;
	}
	snprintf(h->kubeconfig, sizeof h->kubeconfig, "%s/kubeconfig", h->data);
	snprintf(h->ca, sizeof h->ca, "%s/ca.crt", h->data);
	char tokp[700];
	snprintf(tokp, sizeof tokp, "%s/token", h->data);
	if (read_first_line(tokp, h->token, sizeof h->token)) {
		snprintf(h->err, sizeof h->err, "cannot read %s", tokp);
		return -1;
	}
	return 0;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void ks_harness_stop(ks_harness *h)
{
	if (!h)
		return;
	if (h->pid > 0) {
		kill(h->pid, SIGTERM);
		int st, done = 0;
		for (int i = 0; i < 100; i++) {
			if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
				done = 1;
				break;
			}
			sleep_ms(100);
		}
		if (!done) {
			kill(h->pid, SIGKILL);
			waitpid(h->pid, &st, 0);
		}
	}
	if (h->dir[0])
		nftw(h->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(h);
}

const char *ks_harness_url(const ks_harness *h) { return h->url; }
const char *ks_harness_data_dir(const ks_harness *h) { return h->data; }
const char *ks_harness_kubeconfig(const ks_harness *h) { return h->kubeconfig; }
const char *ks_harness_ca_file(const ks_harness *h) { return h->ca; }
const char *ks_harness_token(const ks_harness *h) { return h->token; }
pid_t ks_harness_pid(const ks_harness *h) { return h->pid; }
const char *ks_harness_error(const ks_harness *h) { return h ? h->err : "out of memory"; }

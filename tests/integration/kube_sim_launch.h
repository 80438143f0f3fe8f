/*
 * Start and stop a real kubesim binary for the kube integration tests
 * (header-only, included by tests/integration/test_kube_*.c).
 *
 *   kubesim --listen 127.0.0.1:PORT --data-dir DIR [--faults SPEC --seed 1]
 * writes DIR/kubeconfig (an admin identity over HTTPS with its own CA);
 * the tests load that file through kube_config_load like any user would.
 */
#ifndef KUBE_SIM_LAUNCH_H
#define KUBE_SIM_LAUNCH_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/rest.h"
#include "util/clock.h"

extern char **environ;

typedef struct ksim {
	pid_t pid;
	int port;
	char dir[128];
	char kubeconfig[256];
	char bin[512];
} ksim;

static inline int ksim_free_port(void)
{
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	close(fd);
	return ntohs(sa.sin_port);
}

/* The kubesim binary, or "" when it has not been built. */
static inline const char *ksim_binary(ksim *k)
{
	const char *root = getenv("CIFIXER_TEST_ROOT");
	const char *build = getenv("BUILD");
	snprintf(k->bin, sizeof(k->bin), "%s/%s/kubesim", root ? root : ".", build ? build : "build");
	if (access(k->bin, X_OK) != 0)
		k->bin[0] = '\0';
	return k->bin;
}

static inline void ksim_stop(ksim *k)
{
	if (k->pid > 0) {
		kill(k->pid, SIGTERM);
		for (int i = 0; i < 100; i++) {
			if (waitpid(k->pid, NULL, WNOHANG) == k->pid) {
				k->pid = 0;
				break;
			}
			clock_sleep_ms(50);
		}
		if (k->pid > 0) {
			kill(k->pid, SIGKILL);
			waitpid(k->pid, NULL, 0);
			k->pid = 0;
		}
	}
	if (k->dir[0] && !getenv("KUBE_TEST_KEEP")) {
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", k->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", k->dir);
	}
	k->dir[0] = '\0';
}

/* Start kubesim (faults may be NULL; extra: more arguments, NULL-terminated,
 * or NULL). 0 when it answers; -1 when the binary is missing; -2 when it
 * did not come up (its log is printed). */
static inline int ksim_start(ksim *k, const char *faults, const char *const *extra)
{
	memset(k, 0, sizeof(*k));
	if (!ksim_binary(k)[0])
		return -1;
	snprintf(k->dir, sizeof(k->dir), "/tmp/kube-it-XXXXXX");
	if (!mkdtemp(k->dir))
		return -2;
	k->port = ksim_free_port();
	snprintf(k->kubeconfig, sizeof(k->kubeconfig), "%s/kubeconfig", k->dir);
	char listen[64], log[256], datadir[160];
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", k->port);
	snprintf(log, sizeof(log), "%s/kubesim.log", k->dir);
	snprintf(datadir, sizeof(datadir), "%s/data", k->dir);
	mkdir(datadir, 0755);
	char *argv[16];
	int n = 0;
	argv[n++] = k->bin;
	argv[n++] = "--listen";
	argv[n++] = listen;
	argv[n++] = "--data-dir";
	argv[n++] = datadir;
	if (faults) {
		argv[n++] = "--faults";
		argv[n++] = (char *)faults;
		argv[n++] = "--seed";
		argv[n++] = "1";
	}
	for (int i = 0; extra && extra[i] && n < 15; i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	snprintf(k->kubeconfig, sizeof(k->kubeconfig), "%s/kubeconfig", datadir);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	int se = posix_spawn(&k->pid, k->bin, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (se != 0) {
		k->pid = 0;
		return -2;
	}
	/* Ready when the kubeconfig exists and the server answers. */
	int64_t deadline = clock_mono_ms() + 30000;
	while (clock_mono_ms() < deadline) {
		if (waitpid(k->pid, NULL, WNOHANG) == k->pid) {
			k->pid = 0;
			break;
		}
		if (access(k->kubeconfig, R_OK) == 0) {
			kube_config_opts o = KUBE_CONFIG_OPTS_INIT;
			kube_config *cfg = NULL;
			kube_client *c = NULL;
			o.kubeconfig = k->kubeconfig;
			int ok = 0;
			if (kube_config_load(&cfg, &o) == 0 && kube_client_new(&c, cfg) == 0) {
				kube_request req = KUBE_REQUEST_INIT;
				req.path = "/api/v1/namespaces";
				req.max_retries = 0;
				req.deadline_ms = clock_mono_ms() + 2000;
				ok = kube_rest_do(NULL, c, &req) == 0;
			}
			kube_client_free(c);
			kube_config_free(cfg);
			if (ok)
				return 0;
		}
		clock_sleep_ms(100);
	}
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "tail -20 '%s' >&2", log);
	if (system(cmd) != 0)
		fprintf(stderr, "kubesim did not start\n");
	ksim_stop(k);
	return -2;
}

#endif

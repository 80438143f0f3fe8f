/*
 * kubesim: a local Kubernetes API emulator that real clients (kubectl,
 * @kubernetes/client-node) drive unchanged. See docs/kubesim.md.
 *
 *   kubesim --listen 127.0.0.1:PORT --data-dir DIR [--faults SPEC] [--seed N]
 *           [--image-fail GLOB] [--watch-history N] [--log-level LEVEL]
 *           [--max-requests-inflight N] [--max-mutating-requests-inflight N]
 *
 * Start-up: state (sim.c), HTTPS server (server.c), then DIR/kubeconfig,
 * DIR/ca.crt, DIR/token, DIR/ready, and the URL on stdout. SIGTERM/SIGINT:
 * stop serving, stop every pod, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kubesim/inflight.h"
#include "kubesim/server.h"
#include "kubesim/sim.h"
#include "util/err.h"
#include "util/log.h"
#include "util/str.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: kubesim --listen 127.0.0.1:PORT --data-dir DIR [--faults SPEC] [--seed N]\n"
		   "               [--image-fail GLOB] [--image-pull-ms MS] [--watch-history N]\n"
		   "               [--max-requests-inflight N (400)] [--max-mutating-requests-inflight N (200)]\n"
		   "               [--log-level debug|info|warn|error]\n");
}

static int g_sig_pipe[2] = {-1, -1};

/* Stop signals go through a pipe rather than a blocked mask: a blocked
 * mask would be inherited by every pod process the kubelet forks. */
static void on_stop_signal(int sig)
{
	unsigned char c = (unsigned char)sig;
	if (write(g_sig_pipe[1], &c, 1) < 0) {
	}
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "kubesim: shutdown took too long; exiting\n";
	if (write(2, m, sizeof m - 1) < 0) {
	}
	_exit(1);
}

int main(int argc, char **argv)
{
	const char *listen = "127.0.0.1:0", *dir = NULL, *faults = NULL, *image_fail = NULL;
	uint64_t seed = 1;
	int64_t hist = 10000;
	int pull_ms = 0;
	int max_ro = KS_INFLIGHT_READONLY_DEFAULT, max_mut = KS_INFLIGHT_MUTATING_DEFAULT;
	enum log_level lvl = LOG_WARN;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (!v) {
			fprintf(stderr, "kubesim: %s needs a value\n", a);
			usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(a, "--listen") == 0)
			listen = v;
		else if (strcmp(a, "--data-dir") == 0)
			dir = v;
		else if (strcmp(a, "--faults") == 0)
			faults = v;
		else if (strcmp(a, "--image-fail") == 0)
			image_fail = v;
		else if (strcmp(a, "--seed") == 0) {
			if (str_parse_u64(&seed, v, UINT64_MAX)) {
				fprintf(stderr, "kubesim: --seed: %s\n", err_msg());
				return 2;
			}
		} else if (strcmp(a, "--image-pull-ms") == 0) {
			if (str_parse_int(&pull_ms, v, 0, 600000)) {
				fprintf(stderr, "kubesim: --image-pull-ms: %s\n", err_msg());
				return 2;
			}
		} else if (strcmp(a, "--max-requests-inflight") == 0) {
			if (str_parse_int(&max_ro, v, 0, 1000000)) {
				fprintf(stderr, "kubesim: --max-requests-inflight: %s\n", err_msg());
				return 2;
			}
		} else if (strcmp(a, "--max-mutating-requests-inflight") == 0) {
			if (str_parse_int(&max_mut, v, 0, 1000000)) {
				fprintf(stderr, "kubesim: --max-mutating-requests-inflight: %s\n", err_msg());
				return 2;
			}
		} else if (strcmp(a, "--watch-history") == 0) {
			if (str_parse_i64(&hist, v, 16, 10000000)) {
				fprintf(stderr, "kubesim: --watch-history: %s\n", err_msg());
				return 2;
			}
		} else if (strcmp(a, "--log-level") == 0) {
			if (log_level_parse(&lvl, v)) {
				fprintf(stderr, "kubesim: --log-level: %s\n", err_msg());
				return 2;
			}
		} else {
			fprintf(stderr, "kubesim: unknown option %s\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!dir) {
		fprintf(stderr, "kubesim: --data-dir is required\n");
		usage(stderr);
		return 2;
	}
	log_setup(LOG_PLAIN, lvl, stderr);
	char host[64];
	const char *colon = strrchr(listen, ':');
	int port = 0;
	if (!colon || (size_t)(colon - listen) >= sizeof host || str_parse_int(&port, colon + 1, 0, 65535)) {
		fprintf(stderr, "kubesim: --listen wants HOST:PORT, got %s\n", listen);
		return 2;
	}
	snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "kubesim: cannot create %s: %s\n", dir, strerror(errno));
		return 1;
	}
	char ready[4096];
	snprintf(ready, sizeof ready, "%s/ready", dir);
	unlink(ready);

	if (pipe2(g_sig_pipe, O_CLOEXEC) != 0) {
		fprintf(stderr, "kubesim: pipe: %s\n", strerror(errno));
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ks_sim_opts o = {
		.data_dir = dir,
		.faults = faults,
		.seed = seed,
		.image_fail_glob = image_fail,
		.history_cap = (size_t)hist,
		.image_pull_ms = pull_ms,
		.max_inflight = max_ro,
		.max_mutating_inflight = max_mut,
	};
	ks_sim *sim = NULL;
	if (ks_sim_new(&sim, &o)) {
		fprintf(stderr, "%s\n", err_msg());
		return 1;
	}
	ks_server *srv = NULL;
	if (ks_server_new(&srv, sim, host, (uint16_t)port)) {
		fprintf(stderr, "%s\n", err_msg());
		ks_sim_free(sim);
		return 1;
	}
	char url[128];
	snprintf(url, sizeof url, "https://%s:%u", host, (unsigned)ks_server_port(srv));
	if (ks_sim_write_kubeconfig(sim, url)) {
		fprintf(stderr, "%s\n", err_msg());
		ks_server_free(srv);
		ks_sim_free(sim);
		return 1;
	}
	FILE *rf = fopen(ready, "w");
	if (rf) {
		fprintf(rf, "%s\n", url);
		fclose(rf);
	}
	printf("%s\n", url);
	fflush(stdout);

	unsigned char sigc = 0;
	while (read(g_sig_pipe[0], &sigc, 1) < 0 && errno == EINTR)
		;
	int sig = sigc;
	log_msg(LOG_INFO, "kubesim: signal %d, stopping", sig);
	signal(SIGALRM, on_alarm);
	alarm(20);
	unlink(ready);
	sim->stopping = 1;
	ks_store_lock(sim->store);
	ks_store_broadcast(sim->store);
	ks_store_unlock(sim->store);
	/* pods first (their exec sessions and log follows end with them),
	 * then the server, whose connection threads then finish */
	ks_controllers_stop(sim);
	ks_kubelet_free(sim->kubelet);
	sim->kubelet = NULL;
	ks_server_free(srv);
	ks_sim_free(sim);
	return 0;
}

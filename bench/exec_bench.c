/*
 * bench/exec_bench: ci-fixer's exec client (kube/exec.h) in benchmarks 1
 * and 2 (bench/README.md), measured exactly as the sandbox uses it: one
 * kube_client for the process, one kube_exec_run() per command.
 *
 *   exec_bench rtt  --kubeconfig F --namespace NS --pod P [--container C] --count N
 *       N sequential execs of `true` (stdout and stderr requested, as
 *       kubectl does), each timed from the call to its return with the exit
 *       status. One JSON line on stdout:
 *       {"client":"ci-fixer","count":N,"failures":F,"firstError":"...","ms":[...]}
 *   exec_bench tput --kubeconfig F --namespace NS --pod P [--container C] -- CMD ARG...
 *       one exec of CMD, stdout hashed (SHA-256, OpenSSL EVP) as it arrives:
 *       {"client":"ci-fixer","bytes":B,"sha256":"...","seconds":S,"status":"Success"}
 *
 * Exit status 0 when the measurement was made (failures are counted in
 * the JSON), 1 on bad usage or when no client could be built.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/exec.h"
#include "util/clock.h"
#include "util/err.h"

typedef struct bench_opts {
	const char *mode;
	const char *kubeconfig;
	const char *ns;
	const char *pod;
	const char *container;
	long count;
	char **cmd; /* NULL-terminated, from after "--" */
} bench_opts;

typedef struct sink {
	EVP_MD_CTX *md; /* NULL: count only */
	uint64_t bytes;
} sink;

static int sink_write(void *arg, const void *data, size_t len)
{
	sink *s = arg;
	s->bytes += len;
	if (s->md && EVP_DigestUpdate(s->md, data, len) != 1)
		return err_set(ERR_FAIL, "EVP_DigestUpdate failed");
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: exec_bench rtt  --kubeconfig F --namespace NS --pod P [--container C] --count N\n"
		"       exec_bench tput --kubeconfig F --namespace NS --pod P [--container C] -- CMD ARG...\n");
}

static int parse_args(bench_opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof(*o));
	o->count = 200;
	if (argc < 2)
		return -1;
	o->mode = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			o->cmd = &argv[i + 1];
			break;
		}
		if (i + 1 >= argc)
			return -1;
		const char *v = argv[++i];
		if (strcmp(a, "--kubeconfig") == 0)
			o->kubeconfig = v;
		else if (strcmp(a, "--namespace") == 0)
			o->ns = v;
		else if (strcmp(a, "--pod") == 0)
			o->pod = v;
		else if (strcmp(a, "--container") == 0)
			o->container = v;
		else if (strcmp(a, "--count") == 0)
			o->count = strtol(v, NULL, 10);
		else
			return -1;
	}
	if (!o->kubeconfig || !o->pod || o->count <= 0)
		return -1;
	if (strcmp(o->mode, "rtt") != 0 && strcmp(o->mode, "tput") != 0)
		return -1;
	if (strcmp(o->mode, "tput") == 0 && (!o->cmd || !o->cmd[0]))
		return -1;
	return 0;
}

/* JSON string body for a message (quotes, backslashes, control bytes). */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static int bench_rtt(kube_client *kc, const bench_opts *o)
{
	static const char *const argv_true[] = { "true", NULL };
	double *ms = calloc((size_t)o->count, sizeof(*ms));
	char first[1200] = "";
	long failures = 0;
	if (!ms)
		return -1;
	for (long i = 0; i < o->count; i++) {
		sink out = { NULL, 0 };
		kube_exec_opts eo = KUBE_EXEC_OPTS_INIT;
		kube_exec_result res;
		eo.ns = o->ns;
		eo.pod = o->pod;
		eo.container = o->container;
		eo.argv = argv_true;
		eo.on_stdout = sink_write;
		eo.on_stderr = sink_write;
		eo.out_arg = &out;
		int64_t t0 = clock_mono_ns();
		int rc = kube_exec_run(&res, kc, &eo);
		ms[i] = (double)(clock_mono_ns() - t0) / 1e6;
		if (rc != 0 || res.exit_code != 0) {
			failures++;
			if (!first[0])
				snprintf(first, sizeof(first), "rc %d (%s) exit %d: %s", rc, err_name(rc),
					 res.exit_code, rc ? err_msg() : res.message);
		}
	}
	printf("{\"client\":\"ci-fixer\",\"count\":%ld,\"failures\":%ld,\"firstError\":", o->count,
	       failures);
	json_str(stdout, first);
	printf(",\"ms\":[");
	for (long i = 0; i < o->count; i++)
		printf("%s%.4f", i ? "," : "", ms[i]);
	printf("]}\n");
	free(ms);
	return 0;
}

static int bench_tput(kube_client *kc, const bench_opts *o)
{
	sink out = { EVP_MD_CTX_new(), 0 };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
	char status[1200];
	int ret = -1;
	if (!out.md || EVP_DigestInit_ex(out.md, EVP_sha256(), NULL) != 1)
		goto done;
	kube_exec_opts eo = KUBE_EXEC_OPTS_INIT;
	kube_exec_result res;
	eo.ns = o->ns;
	eo.pod = o->pod;
	eo.container = o->container;
	eo.argv = (const char *const *)o->cmd;
	eo.on_stdout = sink_write;
	eo.on_stderr = NULL;
	eo.out_arg = &out;
	int64_t t0 = clock_mono_ns();
	int rc = kube_exec_run(&res, kc, &eo);
	/* The digest is finished inside the timed span: the other clients
	 * hash as they read too. */
	EVP_DigestFinal_ex(out.md, md, &mdlen);
	double secs = (double)(clock_mono_ns() - t0) / 1e9;
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (rc == 0 && res.exit_code == 0)
		snprintf(status, sizeof(status), "Success");
	else
		snprintf(status, sizeof(status), "rc %d (%s) exit %d: %s", rc, err_name(rc), res.exit_code,
			 rc ? err_msg() : res.message);
	printf("{\"client\":\"ci-fixer\",\"bytes\":%llu,\"sha256\":\"%s\",\"seconds\":%.6f,"
	       "\"protocol\":%d,\"status\":",
	       (unsigned long long)res.stdout_bytes, hex, secs, res.protocol);
	json_str(stdout, status);
	printf("}\n");
	ret = 0;
done:
	EVP_MD_CTX_free(out.md);
	return ret;
}

int main(int argc, char **argv)
{
	bench_opts o;
	kube_config_opts co = KUBE_CONFIG_OPTS_INIT;
	kube_config *cfg = NULL;
	kube_client *kc = NULL;
	int ret = 1;

	if (parse_args(&o, argc, argv) != 0) {
		usage();
		return 1;
	}
	co.kubeconfig = o.kubeconfig;
	co.ns = o.ns;
	co.in_cluster = KUBE_INCLUSTER_NEVER;
	if (kube_config_load(&cfg, &co) != 0 || kube_client_new(&kc, cfg) != 0) {
		fprintf(stderr, "exec_bench: %s\n", err_msg());
		goto done;
	}
	if (strcmp(o.mode, "rtt") == 0)
		ret = bench_rtt(kc, &o) == 0 ? 0 : 1;
	else
		ret = bench_tput(kc, &o) == 0 ? 0 : 1;
done:
	kube_client_free(kc);
	kube_config_free(cfg);
	return ret;
}

/*
 * kubesim under load (issue 3's acceptance): 200 pods running at once,
 * then 200 exec streams at once, one in each pod, with no failure; then
 * the pods deleted together. Counts only, no timing. kubesim's peak RSS
 * (VmHWM) is printed for docs/kubesim.md, and asserted under a loose
 * ceiling so that a leak per stream shows.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/exec.h"
#include "kube/rest.h"
#include "tests/lib/kubesim_harness.h"
#include "util/clock.h"
#include "util/err.h"

#define PODS 200
#define NS "load"
/* each exec prints this much on stdout, then sleeps so that all of them
 * overlap, then prints one line on stderr */
#define OUT_BYTES (64 * 1024)

typedef struct env {
	ks_harness *sim;
	kube_config *cfg;
	kube_client *c;
} env;

static void env_start(env *e)
{
	kube_config_opts co = KUBE_CONFIG_OPTS_INIT;

	memset(e, 0, sizeof *e);
	cr_assert_eq(ks_harness_start(&e->sim, NULL), 0, "kubesim: %s", ks_harness_error(e->sim));
	co.kubeconfig = ks_harness_kubeconfig(e->sim);
	co.in_cluster = KUBE_INCLUSTER_NEVER;
	cr_assert_eq(kube_config_load(&e->cfg, &co), 0, "%s", err_msg());
	cr_assert_eq(kube_client_new(&e->c, e->cfg), 0, "%s", err_msg());
}

static void env_stop(env *e)
{
	kube_client_free(e->c);
	kube_config_free(e->cfg);
	ks_harness_stop(e->sim);
}

/* VmHWM of pid in KiB (0 if unreadable). */
static long vm_hwm_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = 0;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static int count_running(env *e, int *total)
{
	cJSON *list = NULL;
	int running = 0;

	cr_assert_eq(kube_rest_json(&list, e->c, "GET", "/api/v1/namespaces/" NS "/pods", NULL, 0), 0, "list: %s",
		     err_msg());
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
	const cJSON *it;
	*total = cJSON_GetArraySize(items);
	cJSON_ArrayForEach(it, items) {
		const cJSON *ph = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "status"), "phase");
		if (cJSON_IsString(ph) && strcmp(ph->valuestring, "Running") == 0)
			running++;
	}
	cJSON_Delete(list);
	return running;
}

typedef struct creator {
	env *e;
	int first; /* creates pods first, first + CREATORS, ... */
	int rc;
	char msg[256];
} creator;

#define CREATORS 8

static void *create_pods(void *arg)
{
	creator *k = arg;
	char body[512];

	for (int i = k->first; i < PODS && !k->rc; i += CREATORS) {
		snprintf(body, sizeof body,
			 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"p%d\",\"labels\":{\"app\":\"load\"}},"
			 "\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"main\",\"image\":\"busybox\","
			 "\"command\":[\"sleep\",\"3600\"]}]}}",
			 i);
		cJSON *pod = cJSON_Parse(body);
		cJSON *out = NULL;
		k->rc = kube_rest_json(&out, k->e->c, "POST", "/api/v1/namespaces/" NS "/pods", pod, 0);
		if (k->rc)
			snprintf(k->msg, sizeof k->msg, "pod p%d: %s", i, err_msg());
		cJSON_Delete(pod);
		cJSON_Delete(out);
	}
	return NULL;
}

typedef struct job {
	env *e;
	int i;
	int rc, exit_code;
	uint64_t out, err;
	char msg[256];
} job;

static int count_out(void *arg, const void *p, size_t n)
{
	(void)p;
	((job *)arg)->out += n;
	return 0;
}

static int count_err(void *arg, const void *p, size_t n)
{
	(void)p;
	((job *)arg)->err += n;
	return 0;
}

static void *exec_one(void *arg)
{
	job *j = arg;
	char pod[32];
	char cmd[128];
	kube_exec_opts o = KUBE_EXEC_OPTS_INIT;
	kube_exec_result r;

	snprintf(pod, sizeof pod, "p%d", j->i);
	snprintf(cmd, sizeof cmd, "head -c %d /dev/zero; cat; sleep 2; echo done >&2", OUT_BYTES);
	const char *argv[] = { "sh", "-c", cmd, NULL };
	o.ns = NS;
	o.pod = pod;
	o.argv = argv;
	o.stdin_data = "stdin\n"; /* echoed by cat: 6 more bytes */
	o.stdin_len = 6;
	o.on_stdout = count_out;
	o.on_stderr = count_err;
	o.out_arg = j;
	o.deadline_ms = clock_mono_ms() + 100000;
	j->rc = kube_exec_run(&r, j->e->c, &o);
	j->exit_code = r.exit_code;
	if (j->rc)
		snprintf(j->msg, sizeof j->msg, "%s", err_msg());
	return NULL;
}

Test(kubesim_load, two_hundred_pods_and_two_hundred_concurrent_execs, .timeout = 110)
{
	env e;
	int total = 0, running = 0;

	env_start(&e);
	int64_t t0 = clock_mono_ms();
	long hwm_idle = vm_hwm_kib(ks_harness_pid(e.sim));
	cJSON *ns = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"" NS "\"}}");
	cJSON *out = NULL;
	cr_assert_eq(kube_rest_json(&out, e.c, "POST", "/api/v1/namespaces", ns, 0), 0, "%s", err_msg());
	cJSON_Delete(ns);
	cJSON_Delete(out);

	/* created by 8 clients at once, as a controller's workers would */
	static creator cr[CREATORS];
	pthread_t ct[CREATORS];
	for (int k = 0; k < CREATORS; k++) {
		cr[k] = (creator){ .e = &e, .first = k };
		cr_assert_eq(pthread_create(&ct[k], NULL, create_pods, &cr[k]), 0);
	}
	for (int k = 0; k < CREATORS; k++) {
		pthread_join(ct[k], NULL);
		cr_assert_eq(cr[k].rc, 0, "%s", cr[k].msg);
	}
	int64_t until = clock_mono_ms() + 60000;
	while ((running = count_running(&e, &total)) < PODS && clock_mono_ms() < until)
		clock_sleep_ms(250);
	cr_assert_eq(total, PODS);
	cr_assert_eq(running, PODS, "%d of %d pods Running after 60 s", running, PODS);
	long hwm_pods = vm_hwm_kib(ks_harness_pid(e.sim));
	int64_t t_pods = clock_mono_ms();

	static job jobs[PODS];
	static pthread_t th[PODS];
	for (int i = 0; i < PODS; i++) {
		jobs[i] = (job){ .e = &e, .i = i };
		cr_assert_eq(pthread_create(&th[i], NULL, exec_one, &jobs[i]), 0);
	}
	int failures = 0;
	char first[512] = "";
	for (int i = 0; i < PODS; i++) {
		pthread_join(th[i], NULL);
		job *j = &jobs[i];
		if (j->rc || j->exit_code != 0 || j->out != OUT_BYTES + 6 || j->err != 5) {
			if (!failures++)
				snprintf(first, sizeof first, "exec in p%d: rc %d exit %d, %llu stdout bytes, %llu stderr: %s",
					 i, j->rc, j->exit_code, (unsigned long long)j->out, (unsigned long long)j->err,
					 j->msg);
		}
	}
	long hwm_exec = vm_hwm_kib(ks_harness_pid(e.sim));
	int64_t t_exec = clock_mono_ms();
	fprintf(stderr, "# kubesim VmHWM: %ld KiB idle, %ld KiB with %d pods, %ld KiB after %d concurrent execs\n",
		hwm_idle, hwm_pods, PODS, hwm_exec, PODS);
	cr_log_info("kubesim VmHWM: %ld KiB idle, %ld KiB with %d pods, %ld KiB after %d concurrent execs", hwm_idle,
		    hwm_pods, PODS, hwm_exec, PODS);
	cr_assert_eq(failures, 0, "%d of %d execs failed; first: %s", failures, PODS, first);
	/* bounded: well under 1 GiB (each stream's buffers are a few 256 KiB) */
	cr_assert_lt(hwm_exec, 1024L * 1024, "kubesim's peak RSS %ld KiB", hwm_exec);

	/* all of them at once, as kubectl delete pods --all does */
	out = NULL;
	cr_assert_eq(kube_rest_json(&out, e.c, "DELETE", "/api/v1/namespaces/" NS "/pods?gracePeriodSeconds=0", NULL, 0), 0,
		     "deletecollection: %s", err_msg());
	cJSON_Delete(out);
	/* gracePeriodSeconds=0 must reach every pod: with the default 30 s
	 * grace, `sleep` (PID 1, SIGTERM ignored) would stay 30 s */
	until = clock_mono_ms() + 25000;
	while (count_running(&e, &total), total > 0 && clock_mono_ms() < until)
		clock_sleep_ms(250);
	cr_assert_eq(total, 0, "%d pods left 25 s after a delete with gracePeriodSeconds=0", total);
	/* a diagnostic for the log, not an assertion */
	fprintf(stderr, "# phases: pods running %lld ms, execs %lld ms, delete %lld ms\n", (long long)(t_pods - t0),
		(long long)(t_exec - t_pods), (long long)(clock_mono_ms() - t_exec));
	env_stop(&e);
}

/*
 * Shared by the kube exec integration tests (test_kube_exec*.c): start a
 * real kubesim (tests/lib/kubesim_harness.h), connect a kube_client with
 * the kubeconfig it writes, create a pod and wait until it runs, and run
 * commands in it collecting their output. Header-only; every function is
 * static.
 */
#ifndef TESTS_INTEGRATION_KUBE_EXEC_COMMON_H
#define TESTS_INTEGRATION_KUBE_EXEC_COMMON_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/exec.h"
#include "kube/resources.h"
#include "kube/rest.h"
#include "tests/lib/kubesim_harness.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

typedef struct xenv {
	ks_harness *sim;
	kube_client *c;
	kube_config *cfg;
} xenv;

/* Skip the test when kubesim (or its pod runtime, kubesim/kubelet.c) has
 * not been built; otherwise start it with extra args and connect. */
static __attribute__((unused)) void xenv_start(xenv *e, const char *const *extra)
{
	const char *root = getenv("CIFIXER_TEST_ROOT");
	const char *build = getenv("BUILD");
	char bin[1024];
	kube_config_opts co = KUBE_CONFIG_OPTS_INIT;

	memset(e, 0, sizeof(*e));
	snprintf(bin, sizeof(bin), "%s/%s/kubesim", root && root[0] ? root : ".", build && build[0] ? build : "build");
	if (access(bin, X_OK) != 0)
		cr_skip_test("kubesim is not built (%s): its pod runtime, kubesim/kubelet.c, is not in the tree yet", bin);
	cr_assert_eq(ks_harness_start(&e->sim, extra), 0, "kubesim: %s", ks_harness_error(e->sim));
	co.kubeconfig = ks_harness_kubeconfig(e->sim);
	co.in_cluster = KUBE_INCLUSTER_NEVER;
	cr_assert_eq(kube_config_load(&e->cfg, &co), 0, "%s", err_msg());
	cr_assert_eq(kube_client_new(&e->c, e->cfg), 0, "%s", err_msg());
}

static __attribute__((unused)) void xenv_stop(xenv *e)
{
	kube_client_free(e->c);
	kube_config_free(e->cfg);
	ks_harness_stop(e->sim);
	memset(e, 0, sizeof(*e));
}

/* Create a pod whose one container ("main") sleeps, and wait until it
 * runs. */
static __attribute__((unused)) void xenv_pod(xenv *e, const char *name)
{
	char body[1024], path[256];
	cJSON *out = NULL;
	int64_t until = clock_mono_ms() + 30000;

	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\"},"
		 "\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"main\",\"image\":\"busybox\","
		 "\"command\":[\"sleep\",\"3600\"],\"volumeMounts\":[{\"name\":\"tmp\",\"mountPath\":\"/tmp\"}]}],"
		 "\"volumes\":[{\"name\":\"tmp\",\"emptyDir\":{}}]}}",
		 name);
	snprintf(path, sizeof(path), "/api/v1/namespaces/default/pods");
	cJSON *obj = cJSON_Parse(body);
	cr_assert_eq(kube_rest_json(&out, e->c, "POST", path, obj, 0), 0, "create pod: %s", err_msg());
	cJSON_Delete(obj);
	cJSON_Delete(out);
	for (;;) {
		cJSON *pod = NULL;
		const char *phase = NULL;

		cr_assert_eq(kube_pod_get(&pod, e->c, "default", name, 0), 0, "%s", err_msg());
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(pod, "status");
		const cJSON *ph = cJSON_GetObjectItemCaseSensitive(st, "phase");
		phase = cJSON_IsString(ph) ? ph->valuestring : "";
		int running = strcmp(phase, "Running") == 0;
		char seen[32];
		snprintf(seen, sizeof(seen), "%s", phase);
		cJSON_Delete(pod);
		if (running)
			return;
		cr_assert_lt(clock_mono_ms(), until, "pod %s not Running after 30 s (phase %s)", name, seen);
		clock_sleep_ms(50);
	}
}

/* Output collected in memory (small commands). */
typedef struct xout {
	buf out, err;
} xout;

static __attribute__((unused)) int xout_stdout(void *arg, const void *p, size_t n)
{
	return buf_append(&((xout *)arg)->out, p, n) ? err_set(ERR_TOOBIG, "test: stdout over its cap") : 0;
}

static __attribute__((unused)) int xout_stderr(void *arg, const void *p, size_t n)
{
	return buf_append(&((xout *)arg)->err, p, n) ? err_set(ERR_TOOBIG, "test: stderr over its cap") : 0;
}

/* Run argv in pod, collecting output into *o (initialised here; free with
 * xout_free). Returns kube_exec_run's code. */
static __attribute__((unused)) int xrun(xenv *e, kube_exec_result *r, xout *o, const char *pod, const char *const *argv,
		const kube_exec_opts *base)
{
	kube_exec_opts op = KUBE_EXEC_OPTS_INIT;

	if (base)
		op = *base;
	buf_init(&o->out, 16u << 20);
	buf_init(&o->err, 16u << 20);
	op.ns = "default";
	op.pod = pod;
	op.argv = argv;
	op.on_stdout = xout_stdout;
	op.on_stderr = xout_stderr;
	op.out_arg = o;
	return kube_exec_run(r, e->c, &op);
}

static __attribute__((unused)) void xout_free(xout *o)
{
	buf_free(&o->out);
	buf_free(&o->err);
}

#endif

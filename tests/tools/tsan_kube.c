/*
 * tsan_kube: the kube client's concurrency, as one plain program for
 * ThreadSanitizer (tests/tools/tsan.sh builds and runs it).
 *
 * Why not the Criterion programs: Criterion 2.4's runner cannot start under
 * TSan ("Could not initialize inheritable arena: Resource temporarily
 * unavailable", Snaipe/Criterion#274: TSan reserves the address ranges
 * BoxFort maps its arena at). So the scenarios of the concurrency tests are
 * repeated here against the real kubesim (plain build, $BUILD/kubesim):
 *
 *   pool      8 threads x 40 GETs through one client over TLS (the shared
 *             connection cache, the handle pool, the request counters),
 *             while another thread reads the counters and the metrics text
 *   tokenfile 8 threads x 20 GETs with a token file re-read on every
 *             request, while one thread rewrites the file and another
 *             reports 401s (the credential cache and its lock)
 *   cancel    a watch and an exec stopped from another thread (kube_cancel)
 *   exec100   100 concurrent execs from 100 threads on one client, each
 *             with its own output and exit code (test_kube_exec_load)
 *
 * Prints one "ok"/"not ok" line per scenario; exit status 0 when all pass.
 * TSan's own reports go to stderr (or TSAN_OPTIONS log_path).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kube/client.h"
#include "kube/client_priv.h"
#include "kube/config.h"
#include "kube/exec.h"
#include "kube/resources.h"
#include "kube/rest.h"
#include "kube/watch.h"
#include "tests/lib/kubesim_harness.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"

static int failures;

static void result(const char *name, int ok, const char *why)
{
	if (ok) {
		printf("ok - %s\n", name);
	} else {
		printf("not ok - %s: %s\n", name, why);
		failures++;
	}
	fflush(stdout);
}

/* ---- pool ------------------------------------------------------------- */

typedef struct pool_arg {
	kube_client *c;
	int n;
	int failed;
	char why[512];
} pool_arg;

static atomic_int pool_done;

static void *pool_worker(void *arg)
{
	pool_arg *a = arg;

	for (int i = 0; i < a->n; i++) {
		cJSON *o = NULL;

		if (kube_namespace_get(&o, a->c, "default", 0) != 0) {
			a->failed = 1;
			snprintf(a->why, sizeof(a->why), "%s", err_msg());
			break;
		}
		cJSON_Delete(o);
	}
	return NULL;
}

static void *metrics_reader(void *arg)
{
	kube_client *c = arg;

	while (!atomic_load(&pool_done)) {
		kube_request_count cnt[16];
		buf b = BUF_INIT(1 << 20);

		(void)kube_client_request_counts(c, cnt, 16);
		(void)kube_client_metrics_write(c, &b, "cifixer_kube_requests_total", "cifixer_kube_connections_opened_total");
		(void)kube_client_connections_opened(c);
		buf_free(&b);
		clock_sleep_ms(5);
	}
	return NULL;
}

static int run_threads(kube_client *c, int threads, int per, char *why, size_t whysz)
{
	pthread_t t[16], m;
	pool_arg a[16];
	int bad = 0;

	atomic_store(&pool_done, 0);
	pthread_create(&m, NULL, metrics_reader, c);
	for (int i = 0; i < threads; i++) {
		a[i] = (pool_arg){ .c = c, .n = per };
		pthread_create(&t[i], NULL, pool_worker, &a[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		if (a[i].failed && !bad++)
			snprintf(why, whysz, "thread %d: %s", i, a[i].why);
	}
	atomic_store(&pool_done, 1);
	pthread_join(m, NULL);
	return bad;
}

static void scenario_pool(kube_client *c)
{
	char why[600] = "";
	int bad = run_threads(c, 8, 40, why, sizeof(why));

	result("pool: 8 threads x 40 GETs over TLS, counters read meanwhile", !bad, why);
}

/* ---- token file --------------------------------------------------------- */

typedef struct tok_arg {
	kube_client *c;
	const char *path;
	const char *token;
} tok_arg;

static void *token_rewriter(void *arg)
{
	tok_arg *a = arg;
	char tmp[600];

	snprintf(tmp, sizeof(tmp), "%s.new", a->path);
	while (!atomic_load(&pool_done)) {
		FILE *f = fopen(tmp, "w");

		if (f) {
			fputs(a->token, f);
			fclose(f);
			rename(tmp, a->path);
		}
		kube_client_note_unauthorized(a->c);
		clock_sleep_ms(3);
	}
	return NULL;
}

static void scenario_token_file(const kube_config *base, const char *token, const char *dir)
{
	kube_config *cfg = NULL;
	kube_client *c = NULL;
	char path[512], why[600] = "";
	pthread_t w;
	tok_arg ta;
	FILE *f;

	snprintf(path, sizeof(path), "%s/tsan-token", dir);
	f = fopen(path, "w");
	if (!f || fputs(token, f) < 0) {
		result("tokenfile", 0, "cannot write the token file");
		if (f)
			fclose(f);
		return;
	}
	fclose(f);
	if (kube_config_dup(&cfg, base) != 0) {
		result("tokenfile", 0, err_msg());
		return;
	}
	free(cfg->token);
	cfg->token = NULL;
	free(cfg->token_file);
	cfg->token_file = strdup(path);
	if (!cfg->token_file || kube_client_new(&c, cfg) != 0) {
		result("tokenfile", 0, "client");
		kube_config_free(cfg);
		return;
	}
	kube_auth_set_reread_ms(kube_client_auth(c), 0);
	ta = (tok_arg){ c, path, token };
	atomic_store(&pool_done, 0);
	pthread_create(&w, NULL, token_rewriter, &ta);
	int bad = 0;
	{
		pthread_t t[8];
		pool_arg a[8];

		for (int i = 0; i < 8; i++) {
			a[i] = (pool_arg){ .c = c, .n = 20 };
			pthread_create(&t[i], NULL, pool_worker, &a[i]);
		}
		for (int i = 0; i < 8; i++) {
			pthread_join(t[i], NULL);
			if (a[i].failed && !bad++)
				snprintf(why, sizeof(why), "thread %d: %s", i, a[i].why);
		}
	}
	atomic_store(&pool_done, 1);
	pthread_join(w, NULL);
	if (!bad && kube_auth_token_reads(kube_client_auth(c)) < 2)
		snprintf(why, sizeof(why), "the token file was read %u times", kube_auth_token_reads(kube_client_auth(c))),
			bad = 1;
	result("tokenfile: 8 threads x 20 GETs, the file re-read each time and rewritten, 401s noted", !bad, why);
	kube_client_free(c);
	kube_config_free(cfg);
	unlink(path);
}

/* ---- pods, exec ------------------------------------------------------- */

static int make_pod(kube_client *c, const char *name)
{
	char body[1024];
	cJSON *obj, *out = NULL;
	int64_t until = clock_mono_ms() + 60000;
	int rc;

	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"labels\":{\"t\":\"tsan\"}},"
		 "\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{\"name\":\"main\",\"image\":\"busybox\","
		 "\"command\":[\"sleep\",\"3600\"]}]}}",
		 name);
	obj = cJSON_Parse(body);
	rc = kube_rest_json(&out, c, "POST", "/api/v1/namespaces/default/pods", obj, 0);
	cJSON_Delete(obj);
	cJSON_Delete(out);
	if (rc)
		return rc;
	for (;;) {
		cJSON *pod = NULL;
		int running;

		if ((rc = kube_pod_get(&pod, c, "default", name, 0)))
			return rc;
		const cJSON *ph = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "status"), "phase");
		running = cJSON_IsString(ph) && strcmp(ph->valuestring, "Running") == 0;
		cJSON_Delete(pod);
		if (running)
			return 0;
		if (clock_mono_ms() > until)
			return err_set(ERR_TIMEOUT, "pod %s not Running after 60 s", name);
		clock_sleep_ms(50);
	}
}

typedef struct xw {
	kube_client *c;
	int i;
	int rc, exit_code;
	buf out, err;
	char msg[300];
} xw;

static int xw_out(void *arg, const void *p, size_t n)
{
	return buf_append(&((xw *)arg)->out, p, n) ? err_set(ERR_TOOBIG, "stdout over its cap") : 0;
}

static int xw_err(void *arg, const void *p, size_t n)
{
	return buf_append(&((xw *)arg)->err, p, n) ? err_set(ERR_TOOBIG, "stderr over its cap") : 0;
}

static void *exec_worker(void *arg)
{
	xw *w = arg;
	char idx[16];
	const char *argv[] = { "sh", "-c", "echo out-$0; echo err-$0 >&2; exit $(($0 % 7))", idx, NULL };
	kube_exec_opts o = KUBE_EXEC_OPTS_INIT;
	kube_exec_result r;

	snprintf(idx, sizeof(idx), "%d", w->i);
	o.ns = "default";
	o.pod = "tsan";
	o.argv = argv;
	o.on_stdout = xw_out;
	o.on_stderr = xw_err;
	o.out_arg = w;
	w->rc = kube_exec_run(&r, w->c, &o);
	w->exit_code = r.exit_code;
	snprintf(w->msg, sizeof(w->msg), "%s", w->rc ? err_msg() : "");
	return NULL;
}

static void scenario_exec100(kube_client *c)
{
	enum { N = 100 };
	static xw w[N];
	pthread_t t[N];
	char why[600] = "";
	int bad = 0;

	for (int i = 0; i < N; i++) {
		w[i] = (xw){ .c = c, .i = i };
		buf_init(&w[i].out, 4096);
		buf_init(&w[i].err, 4096);
		if (pthread_create(&t[i], NULL, exec_worker, &w[i]) != 0) {
			result("exec100", 0, "pthread_create");
			return;
		}
	}
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < N && !bad; i++) {
		char want_out[32], want_err[32];

		snprintf(want_out, sizeof(want_out), "out-%d\n", i);
		snprintf(want_err, sizeof(want_err), "err-%d\n", i);
		if (w[i].rc)
			snprintf(why, sizeof(why), "exec %d: %s", i, w[i].msg), bad = 1;
		else if (w[i].exit_code != i % 7)
			snprintf(why, sizeof(why), "exec %d: exit %d, want %d", i, w[i].exit_code, i % 7), bad = 1;
		else if (strcmp(buf_cstr(&w[i].out), want_out) || strcmp(buf_cstr(&w[i].err), want_err))
			snprintf(why, sizeof(why), "exec %d: stdout \"%s\" stderr \"%s\"", i, buf_cstr(&w[i].out),
				 buf_cstr(&w[i].err)),
				bad = 1;
	}
	for (int i = 0; i < N; i++) {
		buf_free(&w[i].out);
		buf_free(&w[i].err);
	}
	result("exec100: 100 concurrent execs from 100 threads, outputs and exit codes apart", !bad, why);
}

/* ---- cancellation from another thread ---------------------------------- */

typedef struct canceller {
	kube_cancel *k;
	int ms;
} canceller;

static void *cancel_later(void *arg)
{
	canceller *cc = arg;

	clock_sleep_ms(cc->ms);
	kube_cancel_request(cc->k);
	return NULL;
}

static int ignore_output(void *arg, const void *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
	return 0;
}

static int watch_cb(void *ud, const kube_watch_event *ev)
{
	(void)ud;
	(void)ev;
	return 0;
}

static void scenario_cancel(kube_client *c)
{
	kube_cancel k = KUBE_CANCEL_INIT;
	canceller cc = { &k, 500 };
	pthread_t t;
	kube_watch_opts wo = KUBE_WATCH_OPTS_INIT;
	char why[400] = "";
	int rc;

	wo.deadline_ms = clock_mono_ms() + 60000;
	wo.cancel = &k;
	pthread_create(&t, NULL, cancel_later, &cc);
	rc = kube_pod_watch(c, "default", "t=tsan", &wo, watch_cb, NULL);
	pthread_join(t, NULL);
	if (rc != ERR_CANCELLED)
		snprintf(why, sizeof(why), "rc %d: %s", rc, err_msg());
	result("cancel: a pod watch stopped from another thread", rc == ERR_CANCELLED, why);

	const char *argv[] = { "sleep", "30", NULL };
	kube_exec_opts o = KUBE_EXEC_OPTS_INIT;
	kube_exec_result r;

	kube_cancel_init(&k);
	cc.ms = 1000;
	o.ns = "default";
	o.pod = "tsan";
	o.argv = argv;
	o.on_stdout = ignore_output;
	o.cancel = &k;
	pthread_create(&t, NULL, cancel_later, &cc);
	rc = kube_exec_run(&r, c, &o);
	pthread_join(t, NULL);
	why[0] = '\0';
	if (rc != ERR_CANCELLED)
		snprintf(why, sizeof(why), "rc %d: %s", rc, err_msg());
	result("cancel: an exec stopped from another thread", rc == ERR_CANCELLED, why);
}

int main(void)
{
	ks_harness *h = NULL;
	kube_config *cfg = NULL;
	kube_client *c = NULL;
	kube_config_opts co = KUBE_CONFIG_OPTS_INIT;
	int rc;

	if (ks_harness_start(&h, NULL) != 0) {
		printf("not ok - kubesim: %s\n", ks_harness_error(h));
		ks_harness_stop(h);
		return 1;
	}
	co.kubeconfig = ks_harness_kubeconfig(h);
	co.in_cluster = KUBE_INCLUSTER_NEVER;
	if ((rc = kube_config_load(&cfg, &co)) || (rc = kube_client_new(&c, cfg))) {
		printf("not ok - client: %s\n", err_msg());
		failures++;
		goto done;
	}
	/* many handshakes at once on a loaded 2-core machine, under TSan */
	kube_client_set_timeouts(c, 120000, 120000);
	scenario_pool(c);
	scenario_token_file(cfg, ks_harness_token(h), ks_harness_data_dir(h));
	if ((rc = make_pod(c, "tsan"))) {
		result("pod", 0, err_msg());
		goto done;
	}
	scenario_cancel(c);
	scenario_exec100(c);
done:
	kube_client_free(c);
	kube_config_free(cfg);
	ks_harness_stop(h);
	printf("%d failed\n", failures);
	return failures ? 1 : 0;
}

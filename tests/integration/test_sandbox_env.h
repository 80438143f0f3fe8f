/*
 * The environment of the sandbox integration tests: a real kubesim with
 * the sandbox namespace (Pod Security "restricted" enforced), rbac/
 * applied with the real kubectl, and a client that speaks as the
 * ci-fixer-app ServiceAccount through a token from TokenRequest, never as
 * admin (admin is only used to set up and to check for leaks). A real git
 * repository made here is the run's repository.
 *
 * Included by tests/integration/test_sandbox_*.c (each a Criterion
 * program); everything is static.
 */
#ifndef TEST_SANDBOX_ENV_H
#define TEST_SANDBOX_ENV_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/objects.h"
#include "kube/resources.h"
#include "kube/rest.h"
#include "sandbox/jobspec.h"
#include "sandbox/run.h"
#include "tests/lib/kubesim_harness.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

#define SB_NS "ci-sandbox"
#define SB_GIT "git -c user.name=t -c user.email=t@e -c init.defaultBranch=main"

typedef struct sb_env {
	ks_harness *ks;
	kube_client *admin;
	kube_client *app;         /* the ci-fixer-app ServiceAccount */
	int app_is_admin;         /* kubectl missing: fell back to admin */
	char dir[128];            /* scratch for this test */
	char repo[256];           /* a git repository: a.txt, src/lib.txt */
	sandbox_config cfg;
	char cache[256], scratch[256];
} sb_env;

static sb_env E;

static __attribute__((unused)) int sb_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static __attribute__((unused)) int sb_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static __attribute__((unused)) char *sb_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static __attribute__((unused)) char *sb_out(const char *fmt, ...)
{
	char cmd[4096], tmp[4096];
	va_list ap;
	buf b = BUF_INIT(1 << 20);
	size_t n;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	while (p && (n = fread(tmp, 1, sizeof(tmp), p)) > 0)
		buf_append(&b, tmp, n);
	if (p)
		pclose(p);
	while (b.len && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	return buf_take(&b, NULL);
}

static kube_client *sb_client(const char *kubeconfig)
{
	kube_config *cfg = NULL;
	kube_config_opts o = KUBE_CONFIG_OPTS_INIT;
	kube_client *c = NULL;

	o.kubeconfig = kubeconfig;
	o.in_cluster = KUBE_INCLUSTER_NEVER;
	cr_assert_eq(kube_config_load(&cfg, &o), 0, "%s", err_msg());
	cr_assert_eq(kube_client_new(&c, cfg), 0, "%s", err_msg());
	kube_config_free(cfg);
	return c;
}

static int sb_kubesim_built(void)
{
	char path[1024];
	const char *root = getenv("CIFIXER_TEST_ROOT"), *build = getenv("BUILD");

	snprintf(path, sizeof(path), "%s%s%s/kubesim", build && build[0] == '/' ? "" : root ? root : ".",
		 build && build[0] == '/' ? "" : "/", build ? build : "build");
	return access(path, X_OK) == 0;
}

/* Start everything; extra kubesim arguments (NULL-terminated) or NULL. */
static void sb_up(const char *const *args)
{
	char kc[512], rbac[1024];
	const char *root = getenv("CIFIXER_TEST_ROOT");
	cJSON *labels, *ns = NULL;
	char *token = NULL;

	memset(&E, 0, sizeof(E));
	if (!sb_kubesim_built())
		cr_skip_test("kubesim has not been built (%s/kubesim missing)",
			     getenv("BUILD") ? getenv("BUILD") : "build");
	strcpy(E.dir, "/tmp/sbit-XXXXXX");
	cr_assert_not_null(mkdtemp(E.dir));
	cr_assert_eq(ks_harness_start(&E.ks, args), 0, "kubesim: %s", ks_harness_error(E.ks));
	E.admin = sb_client(ks_harness_kubeconfig(E.ks));

	/* the sandbox namespace, Pod Security restricted as k8s-manifests/ has it */
	labels = cJSON_CreateObject();
	cJSON_AddStringToObject(labels, "pod-security.kubernetes.io/enforce", "restricted");
	cJSON_AddStringToObject(labels, "pod-security.kubernetes.io/enforce-version", "latest");
	cr_assert_eq(kube_namespace_create(&ns, E.admin, SB_NS, labels, clock_mono_ms() + 10000), 0,
		     "%s", err_msg());
	cJSON_Delete(labels);
	cJSON_Delete(ns);

	/* rbac/ with the real kubectl, then a token for ci-fixer-app */
	snprintf(rbac, sizeof(rbac), "%s/rbac/ci-fixer-rbac.yaml", root ? root : ".");
	if (sb_sh("command -v kubectl >/dev/null 2>&1") != 0 || access(rbac, R_OK) != 0) {
		cr_log_warn("kubectl or rbac/ci-fixer-rbac.yaml missing: the run uses the ADMIN identity");
		E.app = sb_client(ks_harness_kubeconfig(E.ks));
		E.app_is_admin = 1;
	} else {
		cr_assert_eq(sb_sh("kubectl --kubeconfig %s apply -f %s >%s/kubectl.log 2>&1",
				   ks_harness_kubeconfig(E.ks), rbac, E.dir), 0,
			     "kubectl apply rbac/: %s", sb_out("cat %s/kubectl.log", E.dir));
		cr_assert_eq(kube_token_request(&token, NULL, E.admin, "default", "ci-fixer-app", NULL,
						3600, clock_mono_ms() + 10000), 0, "%s", err_msg());
		snprintf(kc, sizeof(kc), "%s/app.kubeconfig", E.dir);
		FILE *f = fopen(kc, "w");
		cr_assert_not_null(f);
		fprintf(f, "apiVersion: v1\nkind: Config\nclusters:\n- name: ks\n  cluster:\n"
			"    server: %s\n    certificate-authority: %s\nusers:\n- name: app\n  user:\n"
			"    token: %s\ncontexts:\n- name: app\n  context:\n    cluster: ks\n    user: app\n"
			"    namespace: %s\ncurrent-context: app\n",
			ks_harness_url(E.ks), ks_harness_ca_file(E.ks), token, SB_NS);
		fclose(f);
		free(token);
		E.app = sb_client(kc);
	}

	/* the repository */
	snprintf(E.repo, sizeof(E.repo), "%s/origin", E.dir);
	cr_assert_eq(sb_sh("mkdir -p %s/src && cd %s && " SB_GIT " init -q && printf 'hello\\n' > a.txt && "
			   "printf 'one\\ntwo\\n' > src/lib.txt && " SB_GIT " add -A && "
			   SB_GIT " commit -qm base", E.repo, E.repo), 0);

	sandbox_config_init(&E.cfg);
	E.cfg.namespace_ = SB_NS;
	E.cfg.owner = "itest";
	E.cfg.default_image = "busybox:1.36";
	E.cfg.default_timeout_seconds = 90;
	E.cfg.start_timeout_seconds = 60;
	E.cfg.grace_seconds = 30;
	snprintf(E.cache, sizeof(E.cache), "%s/cache", E.dir);
	snprintf(E.scratch, sizeof(E.scratch), "%s/scratch", E.dir);
	E.cfg.repo_cache_dir = E.cache;
	E.cfg.scratch_dir = E.scratch;
}

/* Jobs and pods of ci-fixer's left in the sandbox namespace (via admin). */
static int sb_count(const char *what)
{
	cJSON *list = NULL;
	int n;
	int rc = strcmp(what, "jobs") == 0
		 ? kube_job_list(&list, E.admin, SB_NS, "app=ci-fixer-sandbox", clock_mono_ms() + 10000)
		 : kube_pod_list(&list, E.admin, SB_NS, "app=ci-fixer-sandbox", NULL,
				 clock_mono_ms() + 10000);

	cr_assert_eq(rc, 0, "listing %s: %s", what, err_msg());
	n = cJSON_GetArraySize(cJSON_GetObjectItem(list, "items"));
	cJSON_Delete(list);
	return n;
}

/* Nothing leaks: no Job at once (the run deleted it), and no pod once the
 * garbage collector has followed the Background deletion. */
static void sb_assert_no_leak(void)
{
	int64_t until = clock_mono_ms() + 30000;
	int pods;

	cr_assert_eq(sb_count("jobs"), 0, "a sandbox Job is left after the run");
	while ((pods = sb_count("pods")) > 0 && clock_mono_ms() < until)
		clock_sleep_ms(200);
	cr_assert_eq(pods, 0, "a sandbox pod is left 30 s after the run");
}

static void sb_down(void)
{
	kube_client_free(E.app);
	kube_client_free(E.admin);
	E.app = E.admin = NULL;
	ks_harness_stop(E.ks);
	E.ks = NULL;
	if (E.dir[0])
		sb_sh("rm -rf %s", E.dir);
}

/* ---- building requests ------------------------------------------------- */

static sandbox_request *sb_request(size_t ncmd)
{
	sandbox_request *r = sandbox_request_new();

	cr_assert_not_null(r);
	r->commands = calloc(ncmd, sizeof(*r->commands));
	r->command_count = ncmd;
	return r;
}

static __attribute__((unused)) void sb_shell(sandbox_request *r, size_t i, const char *script)
{
	r->commands[i].shell = strdup(script);
}

static __attribute__((unused)) void sb_argv(sandbox_request *r, size_t i, ...)
{
	va_list ap;
	const char *a;
	size_t n = 0;

	r->commands[i].argv = calloc(16, sizeof(char *));
	va_start(ap, i);
	while ((a = va_arg(ap, const char *)) != NULL && n < 15)
		r->commands[i].argv[n++] = strdup(a);
	va_end(ap);
	r->commands[i].argc = n;
}

/* ---- a recording of the callbacks -------------------------------------- */

typedef struct sb_record {
	buf phases;              /* "Preparing/creating;..." */
	buf out[2];              /* streamed stdout / stderr, all commands */
	int started, done;
	void (*on_start)(size_t i);
} sb_record;

static void rec_phase(void *ctx, enum sandbox_phase p, enum sandbox_step s, int64_t ms,
		      const char *msg)
{
	sb_record *r = ctx;

	(void)ms;
	(void)msg;
	buf_printf(&r->phases, "%s/%s;", sandbox_phase_name(p), sandbox_step_name(s));
}

static void rec_start(void *ctx, size_t i, const sandbox_command *c)
{
	sb_record *r = ctx;

	(void)c;
	r->started++;
	if (r->on_start)
		r->on_start(i);
}

static void rec_output(void *ctx, size_t i, int stream, const char *d, size_t n)
{
	sb_record *r = ctx;

	(void)i;
	buf_append(&r->out[stream - 1], d, n);
}

static void rec_done(void *ctx, size_t i, const sandbox_command_result *res)
{
	sb_record *r = ctx;

	(void)i;
	(void)res;
	r->done++;
}

static __attribute__((unused)) sandbox_callbacks sb_callbacks(sb_record *rec)
{
	sandbox_callbacks cb = { rec, rec_phase, rec_start, rec_output, rec_done };

	memset(rec, 0, sizeof(*rec));
	buf_init(&rec->phases, 1 << 16);
	buf_init(&rec->out[0], 1 << 24);
	buf_init(&rec->out[1], 1 << 24);
	return cb;
}

static __attribute__((unused)) void sb_record_free(sb_record *rec)
{
	buf_free(&rec->phases);
	buf_free(&rec->out[0]);
	buf_free(&rec->out[1]);
}

#endif

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sandbox/jobspec.h"
#include "sandbox/run.h"
#include "util/err.h"
#include "util/str.h"

static cJSON *at(cJSON *o, const char *path)
{
	char buf[256], *save = NULL, *tok;

	str_copy(buf, sizeof(buf), path);
	for (tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save)) {
		if (cJSON_IsArray(o))
			o = cJSON_GetArrayItem(o, atoi(tok));
		else
			o = cJSON_GetObjectItemCaseSensitive(o, tok);
	}
	cr_assert_not_null(o, "missing %s", path);
	return o;
}

static const char *s_at(cJSON *o, const char *path)
{
	cJSON *v = at(o, path);

	cr_assert(cJSON_IsString(v), "%s is not a string", path);
	return v->valuestring;
}

static double n_at(cJSON *o, const char *path)
{
	cJSON *v = at(o, path);

	cr_assert(cJSON_IsNumber(v), "%s is not a number", path);
	return v->valuedouble;
}

static int b_at(cJSON *o, const char *path)
{
	cJSON *v = at(o, path);

	cr_assert(cJSON_IsBool(v), "%s is not a bool", path);
	return cJSON_IsTrue(v);
}

static const char *key_of(cJSON *o, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	cr_assert(cJSON_IsString(v), "missing %s", key);
	return v->valuestring;
}

static sandbox_request *req_new(void)
{
	sandbox_request *r = sandbox_request_new();

	r->commands = calloc(1, sizeof(*r->commands));
	r->command_count = 1;
	r->commands[0].shell = strdup("make test");
	return r;
}

Test(sandbox_jobspec, hardened_job_with_labels_deadline_and_ttl)
{
	sandbox_config cfg;
	sandbox_request *r = req_new();
	cJSON *job;

	sandbox_config_init(&cfg);
	cfg.owner = "prod-a";
	r->timeout_seconds = 600;
	r->image = strdup("nikolaik/python-nodejs:python3.11-nodejs20-bullseye");
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "r-7f3a"), 0, "%s", err_msg());

	cr_assert_str_eq(s_at(job, "apiVersion"), "batch/v1");
	cr_assert_str_eq(s_at(job, "kind"), "Job");
	cr_assert_str_eq(s_at(job, "metadata.name"), "cifix-r-7f3a");
	cr_assert_str_eq(s_at(job, "metadata.namespace"), "ci-sandbox");
	for (int t = 0; t < 2; t++) {
		cJSON *l = at(job, t ? "spec.template.metadata.labels" : "metadata.labels");

		cr_assert_str_eq(key_of(l, "app"), "ci-fixer-sandbox");
		cr_assert_str_eq(key_of(l, "app.kubernetes.io/managed-by"), "ci-fixer");
		cr_assert_str_eq(key_of(l, "ci-fixer.io/run-id"), "r-7f3a");
		cr_assert_str_eq(key_of(l, "ci-fixer.io/owner"), "prod-a");
	}
	cr_assert_eq(n_at(job, "spec.backoffLimit"), 0);
	cr_assert_eq(n_at(job, "spec.ttlSecondsAfterFinished"), 300);
	cr_assert_eq(n_at(job, "spec.activeDeadlineSeconds"), 600 + 60);

	cJSON *ps = at(job, "spec.template.spec");
	cr_assert_str_eq(s_at(ps, "restartPolicy"), "Never");
	cr_assert_str_eq(s_at(ps, "serviceAccountName"), "ci-fixer-sandbox");
	cr_assert_not(b_at(ps, "automountServiceAccountToken"));
	cr_assert_not(b_at(ps, "enableServiceLinks"));
	cr_assert(b_at(ps, "securityContext.runAsNonRoot"));
	cr_assert_eq(n_at(ps, "securityContext.runAsUser"), 65532);
	cr_assert_eq(n_at(ps, "securityContext.runAsGroup"), 65532);
	cr_assert_str_eq(s_at(ps, "securityContext.seccompProfile.type"), "RuntimeDefault");

	cr_assert_eq(cJSON_GetArraySize(at(ps, "containers")), 1);
	cJSON *c = at(ps, "containers.0");
	cr_assert_str_eq(s_at(c, "image"), "nikolaik/python-nodejs:python3.11-nodejs20-bullseye");
	cr_assert_str_eq(s_at(c, "command.0"), "sh");
	cr_assert_str_eq(s_at(c, "command.1"), "-c");
	cr_assert_str_eq(s_at(c, "command.2"), SANDBOX_KEEPALIVE_SCRIPT);
	cr_assert_str_eq(s_at(c, "command.4"), "660");
	cr_assert_eq(cJSON_GetArraySize(at(c, "command")), 5);
	cr_assert_str_eq(s_at(c, "workingDir"), "/workspace");
	cr_assert_not(b_at(c, "securityContext.allowPrivilegeEscalation"));
	cr_assert(b_at(c, "securityContext.readOnlyRootFilesystem"));
	cr_assert(b_at(c, "securityContext.runAsNonRoot"));
	cr_assert_str_eq(s_at(c, "securityContext.capabilities.drop.0"), "ALL");
	cr_assert_str_eq(s_at(c, "securityContext.seccompProfile.type"), "RuntimeDefault");
	cr_assert_str_eq(s_at(c, "resources.requests.cpu"), "250m");
	cr_assert_str_eq(s_at(c, "resources.limits.cpu"), "1");
	cr_assert_str_eq(s_at(c, "resources.requests.memory"), "256Mi");
	cr_assert_str_eq(s_at(c, "resources.limits.memory"), "1Gi");
	cr_assert_str_eq(s_at(c, "volumeMounts.0.mountPath"), "/workspace");
	cr_assert_str_eq(s_at(c, "volumeMounts.1.mountPath"), "/tmp");
	cr_assert_str_eq(s_at(ps, "volumes.0.name"), "workspace");
	cr_assert(cJSON_IsObject(at(ps, "volumes.0.emptyDir")));
	cr_assert(cJSON_IsObject(at(ps, "volumes.1.emptyDir")));
	cr_assert_null(cJSON_GetObjectItem(ps, "hostNetwork"));
	cJSON_Delete(job);
	sandbox_request_free(r);
}

Test(sandbox_jobspec, user_resources_set_request_and_limit_within_maxima)
{
	sandbox_config cfg;
	sandbox_request *r = req_new();
	cJSON *job;

	sandbox_config_init(&cfg);
	r->resources.cpu = strdup("500m");
	r->resources.memory = strdup("2Gi");
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "a1"), 0, "%s", err_msg());
	cJSON *c = at(job, "spec.template.spec.containers.0");
	cr_assert_str_eq(s_at(c, "resources.requests.cpu"), "500m");
	cr_assert_str_eq(s_at(c, "resources.limits.cpu"), "500m");
	cr_assert_str_eq(s_at(c, "resources.requests.memory"), "2Gi");
	cr_assert_str_eq(s_at(c, "resources.limits.memory"), "2Gi");
	cJSON_Delete(job);

	free(r->resources.cpu);
	r->resources.cpu = strdup("5");
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "a1"), ERR_INVALID);
	cr_assert_null(job);
	cr_assert(strstr(err_msg(), "resources.cpu") && strstr(err_msg(), "maximum"), "%s", err_msg());
	sandbox_request_free(r);
}

Test(sandbox_jobspec, env_labels_and_idempotency_key)
{
	sandbox_config cfg;
	sandbox_request *r = req_new();
	cJSON *job;

	sandbox_config_init(&cfg);
	r->env = calloc(1, sizeof(*r->env));
	r->env_count = 1;
	r->env[0].name = strdup("CI");
	r->env[0].value = strdup("true; rm -rf /");
	r->labels = calloc(1, sizeof(*r->labels));
	r->label_count = 1;
	r->labels[0].name = strdup("pipeline");
	r->labels[0].value = strdup("1234");
	r->idempotency_key = strdup("pipeline-1234-attempt-1");
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "x"), 0, "%s", err_msg());
	cr_assert_str_eq(s_at(job, "spec.template.spec.containers.0.env.0.name"), "CI");
	cr_assert_str_eq(s_at(job, "spec.template.spec.containers.0.env.0.value"), "true; rm -rf /");
	cr_assert_str_eq(key_of(at(job, "metadata.labels"), "pipeline"), "1234");
	cr_assert_str_eq(key_of(at(job, "metadata.annotations"), "ci-fixer.io/idempotency-key"),
			 "pipeline-1234-attempt-1");
	cJSON_Delete(job);
	sandbox_request_free(r);
}

Test(sandbox_jobspec, refuses_bad_config_and_ids)
{
	sandbox_config cfg;
	sandbox_request *r = req_new();
	cJSON *job;

	sandbox_config_init(&cfg);
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "Bad_ID"), ERR_INVALID);
	cfg.run_as_user = 0;
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "ok"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "runAsUser"));
	sandbox_config_init(&cfg);
	cfg.owner = "has space";
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "ok"), ERR_INVALID);
	sandbox_config_init(&cfg);
	r->image = strdup("UPPER CASE");
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "ok"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "image"));
	sandbox_request_free(r);
}

Test(sandbox_jobspec, owner_selector)
{
	sandbox_config cfg;

	sandbox_config_init(&cfg);
	cfg.owner = "inst-1";
	char *s = sandbox_owner_selector(&cfg);
	cr_assert_str_eq(s, "app.kubernetes.io/managed-by=ci-fixer,ci-fixer.io/owner=inst-1");
	free(s);
}

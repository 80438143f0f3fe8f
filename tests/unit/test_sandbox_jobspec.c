#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sandbox/jobspec.h"
#include "sandbox/placement.h"
#include "sandbox/run.h"
#include "sandbox/validate.h"
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

/* ---- placement: image pull policy, ServiceAccount, nodeSelector,
 * tolerations, affinity, GPUs (sandbox/placement.h) ---- */

Test(sandbox_jobspec, default_placement_sets_nothing_beyond_the_pull_policy)
{
	sandbox_config cfg;
	sandbox_request *r = req_new();
	cJSON *job;

	sandbox_config_init(&cfg);
	cr_assert_str_eq(cfg.image_pull_policy, "IfNotPresent");
	cr_assert_str_eq(cfg.gpu_resource, "nvidia.com/gpu");
	cr_assert_eq(cfg.gpu_count, 0);
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "p0"), 0, "%s", err_msg());
	cJSON *ps = at(job, "spec.template.spec");
	cr_assert_str_eq(s_at(ps, "containers.0.imagePullPolicy"), "IfNotPresent");
	cr_assert_str_eq(s_at(ps, "serviceAccountName"), "ci-fixer-sandbox");
	cr_assert_null(cJSON_GetObjectItem(ps, "nodeSelector"));
	cr_assert_null(cJSON_GetObjectItem(ps, "tolerations"));
	cr_assert_null(cJSON_GetObjectItem(ps, "affinity"));
	cr_assert_eq(cJSON_GetArraySize(at(ps, "containers.0.resources.limits")), 3); /* cpu, memory, storage */
	cr_assert_eq(cJSON_GetArraySize(at(ps, "containers.0.resources.requests")), 2);
	cJSON_Delete(job);
	/* "{}" affinity is none too */
	cfg.affinity = "{}";
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "p0"), 0, "%s", err_msg());
	cr_assert_null(cJSON_GetObjectItem(at(job, "spec.template.spec"), "affinity"));
	cJSON_Delete(job);
	sandbox_request_free(r);
}

Test(sandbox_jobspec, configured_placement_reaches_the_pod_and_keeps_it_restricted)
{
	sandbox_config cfg;
	sandbox_request *r = req_new();
	sandbox_kv sel[] = { { "cloud.google.com/gke-nodepool", "ci-gpu" }, { "kubernetes.io/arch", "amd64" } };
	sandbox_toleration tol[] = {
		{ "nvidia.com/gpu", "Exists", NULL, "NoSchedule", 0, 0 },
		{ "pool", "Equal", "ci", "NoExecute", 600, 1 },
		{ NULL, "Exists", NULL, NULL, 0, 0 },
	};
	cJSON *job;

	sandbox_config_init(&cfg);
	cfg.image_pull_policy = "Always";
	cfg.service_account = "team-a-sandbox";
	cfg.node_selector = sel;
	cfg.node_selector_count = 2;
	cfg.tolerations = tol;
	cfg.toleration_count = 3;
	cfg.affinity = "{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":{\"nodeSelectorTerms\":"
		       "[{\"matchExpressions\":[{\"key\":\"gpu\",\"operator\":\"In\",\"values\":[\"a100\"]}]}]}}}";
	cfg.gpu_count = 2;
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "p1"), 0, "%s", err_msg());

	cJSON *ps = at(job, "spec.template.spec");
	cr_assert_str_eq(s_at(ps, "serviceAccountName"), "team-a-sandbox");
	cr_assert_not(b_at(ps, "automountServiceAccountToken"));
	cr_assert_str_eq(s_at(ps, "containers.0.imagePullPolicy"), "Always");
	cr_assert_eq(cJSON_GetArraySize(at(ps, "nodeSelector")), 2);
	cr_assert_str_eq(key_of(at(ps, "nodeSelector"), "cloud.google.com/gke-nodepool"), "ci-gpu");
	cr_assert_str_eq(key_of(at(ps, "nodeSelector"), "kubernetes.io/arch"), "amd64");
	cr_assert_eq(cJSON_GetArraySize(at(ps, "tolerations")), 3);
	cr_assert_str_eq(s_at(ps, "tolerations.0.key"), "nvidia.com/gpu");
	cr_assert_str_eq(s_at(ps, "tolerations.0.operator"), "Exists");
	cr_assert_str_eq(s_at(ps, "tolerations.0.effect"), "NoSchedule");
	cr_assert_null(cJSON_GetObjectItem(at(ps, "tolerations.0"), "value"));
	cr_assert_null(cJSON_GetObjectItem(at(ps, "tolerations.0"), "tolerationSeconds"));
	cr_assert_str_eq(s_at(ps, "tolerations.1.value"), "ci");
	cr_assert_eq(n_at(ps, "tolerations.1.tolerationSeconds"), 600);
	cr_assert_null(cJSON_GetObjectItem(at(ps, "tolerations.2"), "key"));
	cr_assert_eq(cJSON_GetArraySize(at(ps, "tolerations.2")), 1); /* operator Exists alone: every taint */
	cr_assert_str_eq(s_at(ps, "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution."
			      "nodeSelectorTerms.0.matchExpressions.0.values.0"), "a100");
	/* the GPUs: limit and request equal (no overcommit of extended resources) */
	cJSON *c = at(ps, "containers.0");
	cr_assert_str_eq(key_of(at(c, "resources.limits"), "nvidia.com/gpu"), "2");
	cr_assert_str_eq(key_of(at(c, "resources.requests"), "nvidia.com/gpu"), "2");
	cr_assert_str_eq(s_at(c, "resources.limits.cpu"), "1");
	cr_assert_str_eq(s_at(c, "resources.requests.memory"), "256Mi");
	/* Pod Security restricted, untouched */
	cr_assert(b_at(ps, "securityContext.runAsNonRoot"));
	cr_assert_str_eq(s_at(ps, "securityContext.seccompProfile.type"), "RuntimeDefault");
	cr_assert_not(b_at(c, "securityContext.allowPrivilegeEscalation"));
	cr_assert_not(b_at(c, "securityContext.privileged"));
	cr_assert(b_at(c, "securityContext.readOnlyRootFilesystem"));
	cr_assert_str_eq(s_at(c, "securityContext.capabilities.drop.0"), "ALL");
	cr_assert_null(cJSON_GetObjectItem(ps, "hostNetwork"));
	cJSON_Delete(job);

	/* another extended resource */
	cfg.gpu_resource = "amd.com/gpu";
	cfg.gpu_count = 1;
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "p1"), 0, "%s", err_msg());
	cr_assert_str_eq(key_of(at(job, "spec.template.spec.containers.0.resources.limits"), "amd.com/gpu"), "1");
	cr_assert_null(cJSON_GetObjectItem(at(job, "spec.template.spec.containers.0.resources.limits"),
					   "nvidia.com/gpu"));
	cJSON_Delete(job);
	sandbox_request_free(r);
}

/* Build with one bad setting: ERR_INVALID, no Job, a message containing
 * want. */
static void refused(const sandbox_config *cfg, const char *want)
{
	sandbox_request *r = req_new();
	cJSON *job = (cJSON *)1;

	cr_assert_eq(sandbox_jobspec_build(&job, cfg, r, "bad"), ERR_INVALID, "accepted, wanted: %s", want);
	cr_assert_null(job);
	cr_assert(strstr(err_msg(), want), "\"%s\" not in: %s", want, err_msg());
	sandbox_request_free(r);
}

Test(sandbox_jobspec, bad_placement_settings_are_refused_naming_them)
{
	sandbox_config cfg;
	sandbox_kv bad_key[] = { { "has space", "x" } };
	sandbox_kv bad_value[] = { { "pool", "not/a value" } };
	sandbox_toleration t;

	sandbox_config_init(&cfg);
	cfg.image_pull_policy = "Sometimes";
	refused(&cfg, "imagePullPolicy \"Sometimes\"");
	cfg.image_pull_policy = NULL;
	refused(&cfg, "imagePullPolicy");

	sandbox_config_init(&cfg);
	cfg.service_account = "Not_A_Name";
	refused(&cfg, "serviceAccountName \"Not_A_Name\"");

	sandbox_config_init(&cfg);
	cfg.node_selector = bad_key;
	cfg.node_selector_count = 1;
	refused(&cfg, "nodeSelector: \"has space\"");
	cfg.node_selector = bad_value;
	refused(&cfg, "nodeSelector: pool");

	sandbox_config_init(&cfg);
	cfg.tolerations = &t;
	cfg.toleration_count = 1;
	t = (sandbox_toleration){ NULL, "Equal", "x", NULL, 0, 0 };
	refused(&cfg, "tolerations[0].operator: must be Exists when key is empty");
	t = (sandbox_toleration){ "k", "Exists", "v", NULL, 0, 0 };
	refused(&cfg, "tolerations[0].value: must be empty");
	t = (sandbox_toleration){ "k", "Maybe", NULL, NULL, 0, 0 };
	refused(&cfg, "tolerations[0].operator: \"Maybe\"");
	t = (sandbox_toleration){ "k", "Exists", NULL, "NoRun", 0, 0 };
	refused(&cfg, "tolerations[0].effect: \"NoRun\"");
	t = (sandbox_toleration){ "k", "Exists", NULL, "NoSchedule", 30, 1 };
	refused(&cfg, "tolerations[0].effect: must be NoExecute when tolerationSeconds");
	t = (sandbox_toleration){ "k", "Exists", NULL, "NoExecute", -1, 1 };
	refused(&cfg, "tolerations[0].tolerationSeconds");
	t = (sandbox_toleration){ "-bad-", "Exists", NULL, NULL, 0, 0 };
	refused(&cfg, "tolerations[0].key: \"-bad-\"");

	sandbox_config_init(&cfg);
	cfg.affinity = "[]";
	refused(&cfg, "affinity");
	cfg.affinity = "{\"nodeAffinity\":";
	refused(&cfg, "affinity: not valid JSON");
	cfg.affinity = "{\"nodeAfinity\":{}}";
	refused(&cfg, "\"nodeAfinity\": unknown field");

	sandbox_config_init(&cfg);
	cfg.gpu_count = 1;
	cfg.gpu_resource = "cpu";
	refused(&cfg, "GPU resource \"cpu\"");
	cfg.gpu_resource = "kubernetes.io/gpu";
	refused(&cfg, "GPU resource");
	cfg.gpu_resource = NULL;
	refused(&cfg, "GPU resource");
	cfg.gpu_count = -1;
	cfg.gpu_resource = "nvidia.com/gpu";
	refused(&cfg, "GPU count");
	/* with no GPU asked for, the resource name is not used */
	cfg.gpu_count = 0;
	cfg.gpu_resource = NULL;
	sandbox_request *r = req_new();
	cJSON *job;
	cr_assert_eq(sandbox_jobspec_build(&job, &cfg, r, "ok"), 0, "%s", err_msg());
	cJSON_Delete(job);
	sandbox_request_free(r);
}

Test(sandbox_jobspec, extended_resource_names_and_pull_policies)
{
	static const char *const good[] = { "nvidia.com/gpu", "amd.com/gpu", "gpu.intel.com/i915",
					    "example.org/fpga-x_1", NULL };
	static const char *const bad[] = { "", "gpu", "cpu", "memory", "kubernetes.io/gpu", "node.kubernetes.io/x",
					   "requests.nvidia.com/gpu", "nvidia.com/", "/gpu", "nvidia.com/gpu/x",
					   "Nvidia_Com/gpu", "nvidia.com/-gpu", NULL };

	for (size_t i = 0; good[i]; i++)
		cr_assert(sandbox_extended_resource_valid(good[i]), "refused %s", good[i]);
	for (size_t i = 0; bad[i]; i++)
		cr_assert_not(sandbox_extended_resource_valid(bad[i]), "accepted %s", bad[i]);
	cr_assert_not(sandbox_extended_resource_valid(NULL));
	cr_assert(sandbox_pull_policy_valid("Always") && sandbox_pull_policy_valid("IfNotPresent") &&
		  sandbox_pull_policy_valid("Never"));
	cr_assert_not(sandbox_pull_policy_valid("always") || sandbox_pull_policy_valid("") ||
		      sandbox_pull_policy_valid(NULL));
}

Test(sandbox_jobspec, node_selector_parse)
{
	sandbox_kv *kv;
	size_t n;

	cr_assert_eq(sandbox_node_selector_parse(&kv, &n, "{\"pool\":\"ci\",\"example.com/zone\":\"\"}"), 0, "%s",
		     err_msg());
	cr_assert_eq(n, 2);
	cr_assert_str_eq(kv[0].name, "pool");
	cr_assert_str_eq(kv[0].value, "ci");
	cr_assert_str_eq(kv[1].name, "example.com/zone");
	cr_assert_str_eq(kv[1].value, "");
	sandbox_kv_array_free(kv, n);
	cr_assert_eq(sandbox_node_selector_parse(&kv, &n, " {} "), 0, "%s", err_msg());
	cr_assert_eq(n, 0);
	cr_assert_null(kv);

	static const struct {
		const char *json, *want;
	} bad[] = {
		{ "[]", "must be a JSON object" },
		{ "{\"pool\":1}", "\"pool\": the value must be a string" },
		{ "{\"bad key\":\"x\"}", "\"bad key\": not a valid label key" },
		{ "{\"pool\":\"a b\"}", "\"pool\": \"a b\" is not a valid label value" },
		{ "{\"pool\":\"a\",\"pool\":\"b\"}", "\"pool\": given twice" },
		{ "{\"pool\":\"a\"} x", "not valid JSON" },
		{ "", "not valid JSON" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(sandbox_node_selector_parse(&kv, &n, bad[i].json), ERR_INVALID, "accepted %s", bad[i].json);
		cr_assert(kv == NULL && n == 0);
		cr_assert(strstr(err_msg(), bad[i].want), "%s: \"%s\" not in: %s", bad[i].json, bad[i].want, err_msg());
	}
}

Test(sandbox_jobspec, tolerations_parse)
{
	sandbox_toleration *t;
	size_t n;

	cr_assert_eq(sandbox_tolerations_parse(&t, &n,
					       "[{\"key\":\"nvidia.com/gpu\",\"operator\":\"Exists\",\"effect\":\"NoSchedule\"},"
					       " {\"key\":\"pool\",\"value\":\"ci\",\"effect\":\"NoExecute\","
					       "\"tolerationSeconds\":300},"
					       " {\"operator\":\"Exists\",\"value\":null}]"),
		     0, "%s", err_msg());
	cr_assert_eq(n, 3);
	cr_assert_str_eq(t[0].key, "nvidia.com/gpu");
	cr_assert_str_eq(t[0].operator_, "Exists");
	cr_assert_str_eq(t[0].effect, "NoSchedule");
	cr_assert_not(t[0].has_seconds);
	cr_assert_null(t[1].operator_); /* Equal, the API's default */
	cr_assert_str_eq(t[1].value, "ci");
	cr_assert(t[1].has_seconds && t[1].seconds == 300);
	cr_assert_null(t[2].key);
	sandbox_tolerations_free(t, n);
	cr_assert_eq(sandbox_tolerations_parse(&t, &n, "[]"), 0, "%s", err_msg());
	cr_assert(t == NULL && n == 0);

	static const struct {
		const char *json, *want;
	} bad[] = {
		{ "{}", "must be a JSON array" },
		{ "[\"x\"]", "[0]: must be an object" },
		{ "[{\"key\":\"a\",\"operator\":\"Exists\"},{\"key\":1}]", "[1]: key: must be a string" },
		{ "[{\"key\":\"a\",\"operater\":\"Exists\"}]", "[0]: \"operater\": unknown field" },
		{ "[{\"key\":\"a\",\"key\":\"b\",\"operator\":\"Exists\"}]", "[0]: \"key\" given twice" },
		{ "[{\"key\":\"a\",\"effect\":\"NoExecute\",\"tolerationSeconds\":1.5}]",
		  "[0]: tolerationSeconds: must be a whole number" },
		{ "[{\"key\":\"a\",\"effect\":\"NoExecute\",\"tolerationSeconds\":\"60\"}]",
		  "[0]: tolerationSeconds: must be a whole number" },
		{ "[{\"value\":\"x\"}]", "[0].operator: must be Exists when key is empty" },
		{ "[{\"key\":\"a\",\"effect\":\"NoSchedule\",\"tolerationSeconds\":60}]",
		  "[0].effect: must be NoExecute" },
		{ "[{\"key\":\"a\",\"operator\":\"exists\"}]", "[0].operator: \"exists\" is not Exists or Equal" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(sandbox_tolerations_parse(&t, &n, bad[i].json), ERR_INVALID, "accepted %s", bad[i].json);
		cr_assert(t == NULL && n == 0);
		cr_assert(strstr(err_msg(), bad[i].want), "%s: \"%s\" not in: %s", bad[i].json, bad[i].want, err_msg());
	}
}

Test(sandbox_jobspec, affinity_check)
{
	cr_assert_eq(sandbox_affinity_check("{}"), 0, "%s", err_msg());
	cr_assert_eq(sandbox_affinity_check("{\"podAntiAffinity\":{\"preferredDuringSchedulingIgnoredDuringExecution\":"
					    "[{\"weight\":100,\"podAffinityTerm\":{\"topologyKey\":"
					    "\"kubernetes.io/hostname\"}}]},\"nodeAffinity\":{},\"podAffinity\":{}}"),
		     0, "%s", err_msg());
	cr_assert_eq(sandbox_affinity_check("[]"), ERR_INVALID);
	cr_assert_eq(sandbox_affinity_check("null"), ERR_INVALID);
	cr_assert_eq(sandbox_affinity_check("{\"nodeAffinity\":[]}"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "nodeAffinity: must be an object"), "%s", err_msg());
	cr_assert_eq(sandbox_affinity_check("{\"nodeSelector\":{}}"), ERR_INVALID);
	cr_assert(strstr(err_msg(), "\"nodeSelector\": unknown field"), "%s", err_msg());
}

/*
 * The sandbox Job. Why each field is there:
 *  - backoffLimit 0, restartPolicy Never: a sandbox is never retried; a
 *    second pod would start with an empty workspace.
 *  - activeDeadlineSeconds and the keep-alive (`sleep N` under sh, which
 *    first logs one line so the container log says what the pod is): TTL only counts
 *    after a Job finishes (pkg/controller/ttlafterfinished), so a sandbox
 *    whose runner died must finish by itself; the deadline makes the Job
 *    controller kill the pod (reason DeadlineExceeded,
 *    pkg/controller/job/job_controller.go) and the sleep ends it even where
 *    that controller is slow.
 *  - ttlSecondsAfterFinished: the cluster deletes what the runner could not.
 *  - Pod Security "restricted" (k/w concepts/security/pod-security-standards.md):
 *    runAsNonRoot with a numeric runAsUser, seccomp RuntimeDefault, drop
 *    ALL, allowPrivilegeEscalation false set explicitly on the container.
 *  - automountServiceAccountToken false, enableServiceLinks false: the
 *    user's code gets no credentials and no service environment.
 *  - readOnlyRootFilesystem with emptyDir at /workspace and /tmp: the only
 *    writable places are the ones the runner collects or throws away.
 *  - nodeSelector, tolerations, affinity, GPUs, imagePullPolicy and the
 *    ServiceAccount name come from the configuration (sandbox/placement.c);
 *    they choose nodes, never loosen the hardening above.
 */
#include "sandbox/jobspec.h"

#include <stdio.h>
#include <string.h>

#include "sandbox/placement.h"
#include "sandbox/quantity.h"
#include "sandbox/validate.h"
#include "util/err.h"
#include "util/str.h"

int sandbox_run_timeout(const sandbox_config *cfg, const sandbox_request *req)
{
	if (req && req->timeout_seconds > 0)
		return req->timeout_seconds;
	return cfg->default_timeout_seconds > 0 ? cfg->default_timeout_seconds : 1800;
}

static int pick(char *dst, size_t size, const char *field, const char *user, const char *def,
		const char *max)
{
	int64_t v, m;
	const char *val = user ? user : def;

	if (!val || !*val)
		return err_set(ERR_INVALID, "%s: no value and no default configured", field);
	if (sandbox_quantity_parse(&v, val) != 0)
		return err_wrap(ERR_INVALID, "%s", field);
	if (v <= 0)
		return err_set(ERR_INVALID, "%s: must be greater than zero", field);
	if (max && *max) {
		if (sandbox_quantity_parse(&m, max) != 0)
			return err_wrap(ERR_INVALID, "configured maximum for %s", field);
		if (v > m)
			return err_set(ERR_INVALID, "%s: \"%s\" is above the maximum \"%s\"",
				       field, val, max);
	}
	if (str_copy(dst, size, val) != 0)
		return err_set(ERR_INVALID, "%s: \"%.40s\" too long", field, val);
	return 0;
}

int sandbox_resources_resolve(sandbox_resources *out, const sandbox_config *cfg,
			      const sandbox_request *req)
{
	const char *cpu = req ? req->resources.cpu : NULL;
	const char *mem = req ? req->resources.memory : NULL;
	int64_t rq, lm;

	memset(out, 0, sizeof(*out));
	if (pick(out->cpu_request, sizeof(out->cpu_request), "resources.cpu", cpu,
		 cfg->default_cpu_request, cfg->max_cpu) ||
	    pick(out->cpu_limit, sizeof(out->cpu_limit), "resources.cpu", cpu,
		 cfg->default_cpu_limit, cfg->max_cpu) ||
	    pick(out->memory_request, sizeof(out->memory_request), "resources.memory", mem,
		 cfg->default_memory_request, cfg->max_memory) ||
	    pick(out->memory_limit, sizeof(out->memory_limit), "resources.memory", mem,
		 cfg->default_memory_limit, cfg->max_memory))
		return ERR_INVALID;
	/* a request above its limit is refused by the API server
	 * (pkg/apis/core/validation ValidateResourceRequirements): keep the
	 * limit, lower the request */
	sandbox_quantity_parse(&rq, out->cpu_request);
	sandbox_quantity_parse(&lm, out->cpu_limit);
	if (rq > lm)
		memcpy(out->cpu_request, out->cpu_limit, sizeof(out->cpu_request));
	sandbox_quantity_parse(&rq, out->memory_request);
	sandbox_quantity_parse(&lm, out->memory_limit);
	if (rq > lm)
		memcpy(out->memory_request, out->memory_limit, sizeof(out->memory_request));
	return 0;
}

char *sandbox_owner_selector(const sandbox_config *cfg)
{
	return str_printf("%s=%s,%s=%s", SANDBOX_LABEL_MANAGED_BY, SANDBOX_LABEL_MANAGED_BY_VALUE,
			  SANDBOX_LABEL_OWNER, cfg->owner);
}

static cJSON *labels_new(const sandbox_config *cfg, const sandbox_request *req, const char *run_id)
{
	cJSON *l = cJSON_CreateObject();

	if (!l)
		return NULL;
	/* the request's labels first: ours are added after and cannot be
	 * shadowed (validation refuses reserved keys anyway) */
	for (size_t i = 0; req && i < req->label_count; i++)
		cJSON_AddStringToObject(l, req->labels[i].name, req->labels[i].value);
	cJSON_AddStringToObject(l, SANDBOX_LABEL_APP, SANDBOX_LABEL_APP_VALUE);
	cJSON_AddStringToObject(l, SANDBOX_LABEL_MANAGED_BY, SANDBOX_LABEL_MANAGED_BY_VALUE);
	cJSON_AddStringToObject(l, SANDBOX_LABEL_RUN_ID, run_id);
	cJSON_AddStringToObject(l, SANDBOX_LABEL_OWNER, cfg->owner);
	return l;
}

static cJSON *security_context(const sandbox_config *cfg, int container)
{
	cJSON *sc = cJSON_CreateObject();
	cJSON *sp = cJSON_CreateObject();

	if (!sc || !sp) {
		cJSON_Delete(sc);
		cJSON_Delete(sp);
		return NULL;
	}
	cJSON_AddStringToObject(sp, "type", "RuntimeDefault");
	cJSON_AddBoolToObject(sc, "runAsNonRoot", 1);
	cJSON_AddNumberToObject(sc, "runAsUser", (double)cfg->run_as_user);
	cJSON_AddNumberToObject(sc, "runAsGroup", (double)cfg->run_as_group);
	cJSON_AddItemToObject(sc, "seccompProfile", sp);
	if (container) {
		cJSON *caps = cJSON_AddObjectToObject(sc, "capabilities");
		cJSON *drop = caps ? cJSON_AddArrayToObject(caps, "drop") : NULL;

		if (drop)
			cJSON_AddItemToArray(drop, cJSON_CreateString("ALL"));
		cJSON_AddBoolToObject(sc, "allowPrivilegeEscalation", 0);
		cJSON_AddBoolToObject(sc, "readOnlyRootFilesystem", 1);
		cJSON_AddBoolToObject(sc, "privileged", 0);
	} else {
		cJSON_AddNumberToObject(sc, "fsGroup", (double)cfg->run_as_group);
	}
	return sc;
}

int sandbox_jobspec_build(cJSON **out, const sandbox_config *cfg, const sandbox_request *req,
			  const char *run_id)
{
	char name[64], num[32];
	sandbox_resources res;
	cJSON *job = NULL, *md, *spec, *tmpl, *tmd, *pspec, *ctrs, *ctr, *a, *o;
	const char *image = req && req->image ? req->image : cfg->default_image;
	int timeout = sandbox_run_timeout(cfg, req);
	long long deadline = (long long)timeout + (cfg->grace_seconds > 0 ? cfg->grace_seconds : 0);
	int rc;

	*out = NULL;
	if ((rc = sandbox_job_name(name, run_id)) != 0)
		return rc;
	if (!cfg->owner || !sandbox_label_value_valid(cfg->owner) || !*cfg->owner)
		return err_set(ERR_INVALID, "configuration: owner \"%s\" is not a valid label value",
			       cfg->owner ? cfg->owner : "");
	if (!cfg->namespace_ || !str_is_dns1123_label(cfg->namespace_))
		return err_set(ERR_INVALID, "configuration: namespace \"%s\" is not a DNS-1123 label",
			       cfg->namespace_ ? cfg->namespace_ : "");
	if (cfg->run_as_user <= 0 || cfg->run_as_group < 0)
		return err_set(ERR_INVALID, "configuration: runAsUser must be a non-zero UID "
			       "(Pod Security restricted)");
	if (!image || !sandbox_image_valid(image))
		return err_set(ERR_INVALID, "image: \"%s\" is not a valid image reference",
			       image ? image : "");
	if ((rc = sandbox_resources_resolve(&res, cfg, req)) != 0)
		return rc;
	if ((rc = sandbox_pod_settings_check(cfg)) != 0)
		return rc;

	job = cJSON_CreateObject();
	if (!job)
		goto nomem;
	cJSON_AddStringToObject(job, "apiVersion", "batch/v1");
	cJSON_AddStringToObject(job, "kind", "Job");
	md = cJSON_AddObjectToObject(job, "metadata");
	if (!md)
		goto nomem;
	cJSON_AddStringToObject(md, "name", name);
	cJSON_AddStringToObject(md, "namespace", cfg->namespace_);
	cJSON_AddItemToObject(md, "labels", labels_new(cfg, req, run_id));
	if (req && req->idempotency_key) {
		cJSON *ann = cJSON_AddObjectToObject(md, "annotations");

		if (!ann)
			goto nomem;
		cJSON_AddStringToObject(ann, SANDBOX_ANNOTATION_IDEMPOTENCY, req->idempotency_key);
	}

	spec = cJSON_AddObjectToObject(job, "spec");
	if (!spec)
		goto nomem;
	cJSON_AddNumberToObject(spec, "backoffLimit", 0);
	cJSON_AddNumberToObject(spec, "activeDeadlineSeconds", (double)deadline);
	cJSON_AddNumberToObject(spec, "ttlSecondsAfterFinished",
				cfg->ttl_seconds_after_finished >= 0 ? cfg->ttl_seconds_after_finished
								     : 300);
	tmpl = cJSON_AddObjectToObject(spec, "template");
	tmd = tmpl ? cJSON_AddObjectToObject(tmpl, "metadata") : NULL;
	if (!tmd)
		goto nomem;
	cJSON_AddItemToObject(tmd, "labels", labels_new(cfg, req, run_id));
	pspec = cJSON_AddObjectToObject(tmpl, "spec");
	if (!pspec)
		goto nomem;
	cJSON_AddStringToObject(pspec, "restartPolicy", "Never");
	cJSON_AddStringToObject(pspec, "serviceAccountName", cfg->service_account);
	cJSON_AddBoolToObject(pspec, "automountServiceAccountToken", 0);
	cJSON_AddBoolToObject(pspec, "enableServiceLinks", 0);
	/* the keep-alive ends on SIGTERM at once (SANDBOX_KEEPALIVE_SCRIPT) */
	cJSON_AddNumberToObject(pspec, "terminationGracePeriodSeconds", 5);
	cJSON_AddItemToObject(pspec, "securityContext", security_context(cfg, 0));

	ctrs = cJSON_AddArrayToObject(pspec, "containers");
	ctr = cJSON_CreateObject();
	if (!ctrs || !ctr) {
		cJSON_Delete(ctr);
		goto nomem;
	}
	cJSON_AddItemToArray(ctrs, ctr);
	cJSON_AddStringToObject(ctr, "name", cfg->container_name ? cfg->container_name : "sandbox");
	cJSON_AddStringToObject(ctr, "image", image);
	cJSON_AddStringToObject(ctr, "imagePullPolicy", cfg->image_pull_policy);
	a = cJSON_AddArrayToObject(ctr, "command");
	if (!a)
		goto nomem;
	/* the deadline travels as a positional parameter, not in the script */
	snprintf(num, sizeof(num), "%lld", deadline);
	cJSON_AddItemToArray(a, cJSON_CreateString("sh"));
	cJSON_AddItemToArray(a, cJSON_CreateString("-c"));
	cJSON_AddItemToArray(a, cJSON_CreateString(SANDBOX_KEEPALIVE_SCRIPT));
	cJSON_AddItemToArray(a, cJSON_CreateString("ci-fixer-keepalive"));
	cJSON_AddItemToArray(a, cJSON_CreateString(num));
	cJSON_AddStringToObject(ctr, "workingDir", SANDBOX_WORKSPACE);
	if (req && req->env_count) {
		a = cJSON_AddArrayToObject(ctr, "env");
		if (!a)
			goto nomem;
		for (size_t i = 0; i < req->env_count; i++) {
			if (!sandbox_env_name_valid(req->env[i].name)) {
				cJSON_Delete(job);
				return err_set(ERR_INVALID, "env: \"%.64s\" is not a valid name",
					       req->env[i].name ? req->env[i].name : "");
			}
			o = cJSON_CreateObject();
			if (!o)
				goto nomem;
			cJSON_AddStringToObject(o, "name", req->env[i].name);
			cJSON_AddStringToObject(o, "value", req->env[i].value ? req->env[i].value : "");
			cJSON_AddItemToArray(a, o);
		}
	}
	o = cJSON_AddObjectToObject(ctr, "resources");
	if (!o)
		goto nomem;
	{
		cJSON *rq = cJSON_AddObjectToObject(o, "requests");
		cJSON *lm = cJSON_AddObjectToObject(o, "limits");

		if (!rq || !lm)
			goto nomem;
		cJSON_AddStringToObject(rq, "cpu", res.cpu_request);
		cJSON_AddStringToObject(rq, "memory", res.memory_request);
		cJSON_AddStringToObject(lm, "cpu", res.cpu_limit);
		cJSON_AddStringToObject(lm, "memory", res.memory_limit);
		if (cfg->ephemeral_storage_limit && *cfg->ephemeral_storage_limit)
			cJSON_AddStringToObject(lm, "ephemeral-storage", cfg->ephemeral_storage_limit);
	}
	/* nodeSelector, tolerations, affinity; the GPUs into these resources */
	if ((rc = sandbox_pod_settings_apply(pspec, o, cfg)) != 0) {
		cJSON_Delete(job);
		return rc;
	}
	cJSON_AddItemToObject(ctr, "securityContext", security_context(cfg, 1));
	a = cJSON_AddArrayToObject(ctr, "volumeMounts");
	if (!a)
		goto nomem;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", "workspace");
	cJSON_AddStringToObject(o, "mountPath", SANDBOX_WORKSPACE);
	cJSON_AddItemToArray(a, o);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", "tmp");
	cJSON_AddStringToObject(o, "mountPath", SANDBOX_TMP);
	cJSON_AddItemToArray(a, o);

	a = cJSON_AddArrayToObject(pspec, "volumes");
	if (!a)
		goto nomem;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", "workspace");
	{
		cJSON *ed = cJSON_AddObjectToObject(o, "emptyDir");

		if (ed && cfg->ephemeral_storage_limit && *cfg->ephemeral_storage_limit) {
			int64_t v;

			if (sandbox_quantity_parse(&v, cfg->ephemeral_storage_limit) != 0) {
				cJSON_Delete(o);
				cJSON_Delete(job);
				return err_wrap(ERR_INVALID, "configuration: ephemeral storage limit");
			}
			cJSON_AddStringToObject(ed, "sizeLimit", cfg->ephemeral_storage_limit);
		}
	}
	cJSON_AddItemToArray(a, o);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", "tmp");
	cJSON_AddObjectToObject(o, "emptyDir");
	cJSON_AddItemToArray(a, o);

	*out = job;
	return 0;
nomem:
	cJSON_Delete(job);
	return err_set(ERR_NOMEM, "building the Job: out of memory");
}

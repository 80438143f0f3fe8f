#include "kubesim/pod_spec.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/str.h"

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *jobj(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsObject(v) ? v : NULL;
}

static int jint(const cJSON *o, const char *key, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v))
		return 0;
	*out = (int64_t)v->valuedouble;
	return 1;
}

static int jbool(const cJSON *o, const char *key)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* $(VAR) expansion as upstream's third_party/forked/golang/expansion:
 * a defined VAR is replaced, an undefined one is left as written, "$$"
 * is a literal "$", anything else after "$" is kept. */
static char *expand(const char *in, const ks_env_var *env, size_t n_env)
{
	buf b = BUF_INIT(1 << 20);
	const char *p = in;

	while (*p) {
		if (p[0] == '$' && p[1] == '$') {
			buf_append_byte(&b, '$');
			p += 2;
		} else if (p[0] == '$' && p[1] == '(') {
			const char *end = strchr(p + 2, ')');
			if (!end) {
				buf_append_str(&b, p);
				break;
			}
			size_t nl = (size_t)(end - (p + 2));
			const char *val = NULL;
			for (size_t i = n_env; i-- > 0;)
				if (strlen(env[i].name) == nl && memcmp(env[i].name, p + 2, nl) == 0) {
					val = env[i].value;
					break;
				}
			if (val)
				buf_append_str(&b, val);
			else
				buf_append(&b, p, (size_t)(end + 1 - p));
			p = end + 1;
		} else {
			buf_append_byte(&b, (unsigned char)*p++);
		}
	}
	return buf_take(&b, NULL);
}

/* valueFrom.fieldRef (pkg/kubelet/kubelet_pods.go podFieldSelectorRuntimeValue):
 * the pod's own fields. NULL when the path is not one we can answer. */
static char *field_ref(const cJSON *pod, const char *path)
{
	const cJSON *meta = jobj(pod, "metadata"), *spec = jobj(pod, "spec");
	const char *v = NULL;

	if (!path)
		return NULL;
	if (strcmp(path, "metadata.name") == 0)
		v = jstr(meta, "name");
	else if (strcmp(path, "metadata.namespace") == 0)
		v = jstr(meta, "namespace");
	else if (strcmp(path, "metadata.uid") == 0)
		v = jstr(meta, "uid");
	else if (strcmp(path, "spec.nodeName") == 0)
		v = jstr(spec, "nodeName");
	else if (strcmp(path, "spec.serviceAccountName") == 0)
		v = jstr(spec, "serviceAccountName");
	else if (strcmp(path, "status.podIP") == 0 || strcmp(path, "status.podIPs") == 0 ||
		 strcmp(path, "status.hostIP") == 0 || strcmp(path, "status.hostIPs") == 0)
		v = "127.0.0.1"; /* pods share the host's network here */
	else if (str_has_prefix(path, "metadata.labels['") || str_has_prefix(path, "metadata.annotations['")) {
		int lab = str_has_prefix(path, "metadata.labels");
		const char *k = strchr(path, '\'') + 1;
		const char *e = strchr(k, '\'');
		if (!e)
			return NULL;
		char *key = str_ndup(k, (size_t)(e - k));
		v = jstr(jobj(meta, lab ? "labels" : "annotations"), key);
		free(key);
		if (!v)
			v = "";
	}
	return v ? str_dup(v) : NULL;
}

static void ctr_free(ks_ctr_spec *c)
{
	free(c->name);
	free(c->image);
	free(c->pull_policy);
	for (size_t i = 0; i < c->argc; i++)
		free(c->argv[i]);
	free(c->argv);
	free(c->workdir);
	for (size_t i = 0; i < c->n_env; i++) {
		free(c->env[i].name);
		free(c->env[i].value);
	}
	free(c->env);
	for (size_t i = 0; i < c->n_mounts; i++) {
		free(c->mounts[i].volume);
		free(c->mounts[i].path);
	}
	free(c->mounts);
	free(c->config_error);
}

void ks_pod_spec_free(ks_pod_spec *s)
{
	if (!s)
		return;
	free(s->uid);
	free(s->ns);
	free(s->name);
	free(s->hostname);
	free(s->restart_policy);
	for (size_t i = 0; i < s->n_volumes; i++)
		free(s->volumes[i]);
	free(s->volumes);
	free(s->groups);
	for (size_t i = 0; i < s->n_ctrs; i++)
		ctr_free(&s->ctrs[i]);
	free(s->ctrs);
	free(s);
}

const ks_ctr_spec *ks_pod_spec_container(const ks_pod_spec *s, const char *name)
{
	if (!s || s->n_ctrs == 0)
		return NULL;
	if (!name || !*name)
		return &s->ctrs[0];
	for (size_t i = 0; i < s->n_ctrs; i++)
		if (strcmp(s->ctrs[i].name, name) == 0)
			return &s->ctrs[i];
	return NULL;
}

/* imagePullPolicy default (pkg/apis/core/v1/defaults.go SetDefaults_Container):
 * Always for a ":latest" or untagged image without a digest, else IfNotPresent. */
static const char *default_pull_policy(const char *image)
{
	const char *slash = strrchr(image, '/');
	const char *last = slash ? slash + 1 : image;
	const char *colon = strchr(last, ':');

	if (strchr(image, '@'))
		return "IfNotPresent";
	if (!colon || strcmp(colon + 1, "latest") == 0)
		return "Always";
	return "IfNotPresent";
}

static int is_emptydir(const ks_pod_spec *s, const char *vol)
{
	for (size_t i = 0; i < s->n_volumes; i++)
		if (strcmp(s->volumes[i], vol) == 0)
			return 1;
	return 0;
}

static int parse_container(ks_pod_spec *s, ks_ctr_spec *c, const cJSON *pod, const cJSON *jc,
			   const cJSON *pod_sc, const cJSON *all_volumes)
{
	const char *name = jstr(jc, "name"), *image = jstr(jc, "image");
	const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(jc, "command");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(jc, "args");
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(jc, "env");
	const cJSON *vm = cJSON_GetObjectItemCaseSensitive(jc, "volumeMounts");
	const cJSON *sc = jobj(jc, "securityContext");
	const cJSON *it;
	size_t n;
	int64_t v;

	if (!name || !*name)
		return err_set(ERR_INVALID, "spec.containers: a container has no name");
	c->name = str_dup(name);
	c->image = str_dup(image ? image : "");
	c->pull_policy = str_dup(jstr(jc, "imagePullPolicy") ? jstr(jc, "imagePullPolicy")
							      : default_pull_policy(c->image));
	c->workdir = str_dup(jstr(jc, "workingDir"));
	c->tty = jbool(jc, "tty");
	c->stdin_open = jbool(jc, "stdin");

	/* env, in order; each value may refer to the ones before it */
	n = cJSON_IsArray(env) ? (size_t)cJSON_GetArraySize(env) : 0;
	c->env = calloc(n + 1, sizeof *c->env);
	cJSON_ArrayForEach(it, (cJSON_IsArray(env) ? env : NULL))
	{
		const char *en = jstr(it, "name");
		const cJSON *vf = jobj(it, "valueFrom");
		char *val = NULL;

		if (!en)
			return err_set(ERR_INVALID, "spec.containers[%s].env: an entry has no name", name);
		if (vf) {
			const cJSON *fr = jobj(vf, "fieldRef");
			if (fr)
				val = field_ref(pod, jstr(fr, "fieldPath"));
			if (!val && !c->config_error) {
				const char *kind = fr ? "fieldRef" : jobj(vf, "secretKeyRef") ? "secretKeyRef"
								 : jobj(vf, "configMapKeyRef") ? "configMapKeyRef"
								 : jobj(vf, "resourceFieldRef") ? "resourceFieldRef" : "valueFrom";
				c->config_error = str_printf("kubesim: env %s: valueFrom.%s is not supported by kubesim's "
							     "kubelet (it has no access to the API)", en, kind);
			}
			if (!val)
				continue;
		} else {
			val = expand(jstr(it, "value") ? jstr(it, "value") : "", c->env, c->n_env);
		}
		/* a later definition of the same name replaces the earlier one */
		size_t k;
		for (k = 0; k < c->n_env; k++)
			if (strcmp(c->env[k].name, en) == 0)
				break;
		if (k < c->n_env) {
			free(c->env[k].value);
			c->env[k].value = val;
		} else {
			c->env[c->n_env].name = str_dup(en);
			c->env[c->n_env++].value = val;
		}
	}
	if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(jc, "envFrom")) > 0 && !c->config_error)
			c->config_error = str_printf("kubesim: envFrom is not supported by kubesim's kubelet "
						     "(it has no access to the API)");

	/* argv: command + args, expanded against the container's env
	 * (kubecontainer.ExpandContainerCommandAndArgs). With no command the
	 * image's entrypoint would run; images are not pulled, so args alone
	 * are taken as the command line. */
	n = (cJSON_IsArray(cmd) ? (size_t)cJSON_GetArraySize(cmd) : 0) +
	    (cJSON_IsArray(args) ? (size_t)cJSON_GetArraySize(args) : 0);
	c->argv = calloc(n + 1, sizeof *c->argv);
	cJSON_ArrayForEach(it, (cJSON_IsArray(cmd) ? cmd : NULL))
		if (cJSON_IsString(it))
			c->argv[c->argc++] = expand(it->valuestring, c->env, c->n_env);
	cJSON_ArrayForEach(it, (cJSON_IsArray(args) ? args : NULL))
		if (cJSON_IsString(it))
			c->argv[c->argc++] = expand(it->valuestring, c->env, c->n_env);
	if (c->argc == 0 && !c->config_error)
		c->config_error = str_printf("kubesim: container %s has no command: images are not pulled, "
					     "so there is no entrypoint to run", name);

	/* volume mounts */
	n = cJSON_IsArray(vm) ? (size_t)cJSON_GetArraySize(vm) : 0;
	c->mounts = calloc(n + 1, sizeof *c->mounts);
	cJSON_ArrayForEach(it, (cJSON_IsArray(vm) ? vm : NULL))
	{
		const char *vn = jstr(it, "name"), *mp = jstr(it, "mountPath");
		int declared = 0;
		const cJSON *vol;

		if (!vn || !mp || mp[0] != '/')
			return err_set(ERR_INVALID, "spec.containers[%s].volumeMounts: name and an absolute mountPath "
				       "are required", name);
		if (strstr(mp, "/../") || str_has_suffix(mp, "/.."))
			return err_set(ERR_INVALID, "spec.containers[%s].volumeMounts: mountPath %s must not contain '..'",
				       name, mp);
		cJSON_ArrayForEach(vol, all_volumes)
			if (str_eq(jstr(vol, "name"), vn))
				declared = 1;
		if (!declared)
			return err_set(ERR_INVALID, "spec.containers[%s].volumeMounts: volume %s is not declared in "
				       "spec.volumes", name, vn);
		ks_vol_mount *m = &c->mounts[c->n_mounts++];
		m->volume = str_dup(vn);
		m->path = str_dup(mp);
		m->read_only = jbool(it, "readOnly");
		m->emptydir = is_emptydir(s, vn);
	}

	/* securityContext: the container's fields win over the pod's */
	if (jint(sc, "runAsUser", &v) || jint(pod_sc, "runAsUser", &v)) {
		c->has_uid = 1;
		c->uid = (uid_t)v;
	}
	if (jint(sc, "runAsGroup", &v) || jint(pod_sc, "runAsGroup", &v)) {
		c->has_gid = 1;
		c->gid = (gid_t)v;
	}
	if (cJSON_GetObjectItemCaseSensitive(sc, "runAsNonRoot"))
		c->run_as_non_root = jbool(sc, "runAsNonRoot");
	else
		c->run_as_non_root = jbool(pod_sc, "runAsNonRoot");
	c->ro_root = jbool(sc, "readOnlyRootFilesystem");
	return 0;
}

int ks_pod_spec_parse(ks_pod_spec **out, const cJSON *pod)
{
	const cJSON *meta = jobj(pod, "metadata"), *spec = jobj(pod, "spec");
	const cJSON *ctrs, *vols, *psc, *it;
	ks_pod_spec *s = NULL;
	int64_t v;
	size_t n;
	int rc;

	*out = NULL;
	if (!meta || !spec || !jstr(meta, "uid") || !jstr(meta, "name"))
		return err_set(ERR_INVALID, "pod: metadata.uid, metadata.name and spec are required");
	ctrs = cJSON_GetObjectItemCaseSensitive(spec, "containers");
	if (!cJSON_IsArray(ctrs) || cJSON_GetArraySize(ctrs) == 0)
		return err_set(ERR_INVALID, "pod: spec.containers must have at least one container");
	s = calloc(1, sizeof *s);
	if (!s)
		return err_set(ERR_NOMEM, "out of memory");
	s->uid = str_dup(jstr(meta, "uid"));
	s->name = str_dup(jstr(meta, "name"));
	s->ns = str_dup(jstr(meta, "namespace") ? jstr(meta, "namespace") : "default");
	s->hostname = str_dup(jstr(spec, "hostname") ? jstr(spec, "hostname") : s->name);
	s->restart_policy = str_dup(jstr(spec, "restartPolicy") ? jstr(spec, "restartPolicy") : "Always");
	s->grace_seconds = jint(spec, "terminationGracePeriodSeconds", &v) ? v : 30;
	if (s->grace_seconds < 0)
		s->grace_seconds = 0;

	vols = cJSON_GetObjectItemCaseSensitive(spec, "volumes");
	if (!cJSON_IsArray(vols))
		vols = NULL;
	n = vols ? (size_t)cJSON_GetArraySize(vols) : 0;
	s->volumes = calloc(n + 1, sizeof *s->volumes);
	cJSON_ArrayForEach(it, vols)
	{
		const char *vn = jstr(it, "name");
		if (!vn || !str_is_dns1123_label(vn)) {
			rc = err_set(ERR_INVALID, "spec.volumes: a volume name must be a DNS-1123 label");
			goto fail;
		}
		if (cJSON_GetObjectItemCaseSensitive(it, "emptyDir"))
			s->volumes[s->n_volumes++] = str_dup(vn);
	}

	psc = jobj(spec, "securityContext");
	{
		const cJSON *sg = cJSON_GetObjectItemCaseSensitive(psc, "supplementalGroups");
		n = cJSON_IsArray(sg) ? (size_t)cJSON_GetArraySize(sg) : 0;
		s->groups = calloc(n + 2, sizeof *s->groups);
		cJSON_ArrayForEach(it, (cJSON_IsArray(sg) ? sg : NULL))
			if (cJSON_IsNumber(it))
				s->groups[s->n_groups++] = (gid_t)it->valuedouble;
		if (jint(psc, "fsGroup", &v))
			s->groups[s->n_groups++] = (gid_t)v;
	}

	n = (size_t)cJSON_GetArraySize(ctrs);
	s->ctrs = calloc(n, sizeof *s->ctrs);
	cJSON_ArrayForEach(it, ctrs)
	{
		if ((rc = parse_container(s, &s->ctrs[s->n_ctrs++], pod, it, psc, vols)))
			goto fail;
	}
	*out = s;
	return 0;
fail:
	ks_pod_spec_free(s);
	return rc;
}

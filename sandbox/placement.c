/*
 * The sandbox pod's placement settings (see placement.h). The rules are the
 * API server's (k/k pkg/apis/core/validation: ValidateTolerations,
 * ValidateNodeSelector via label syntax, validateContainerResourceName and
 * ValidateResourceRequirements for extended resources), so that a bad
 * setting stops the service at start with the setting's name instead of
 * failing every run's Job create with a 422.
 */
#include "sandbox/placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/validate.h"
#include "util/err.h"
#include "util/str.h"

/* Strict parse: one JSON value and nothing after it. NULL (with err_set)
 * if text is not JSON. */
static cJSON *parse_json(const char *text, const char *what)
{
	cJSON *v;

	if (!text)
		text = "";
	v = cJSON_ParseWithOpts(text, NULL, 1);
	if (!v)
		err_set(ERR_INVALID, "not valid JSON (%s expected): \"%.40s%s\"", what, text,
			strlen(text) > 40 ? "..." : "");
	return v;
}

/* cJSON keeps duplicate members; the API server's decoder would keep the
 * last one. Refuse them so what was meant is never in doubt. */
static int has_duplicate(const cJSON *obj, const cJSON *member)
{
	for (const cJSON *c = obj->child; c && c != member; c = c->next)
		if (!strcmp(c->string, member->string))
			return 1;
	return 0;
}

void sandbox_kv_array_free(sandbox_kv *kv, size_t count)
{
	for (size_t i = 0; kv && i < count; i++) {
		free(kv[i].name);
		free(kv[i].value);
	}
	free(kv);
}

int sandbox_node_selector_parse(sandbox_kv **out, size_t *count, const char *json)
{
	cJSON *root = parse_json(json, "an object of node labels");
	sandbox_kv *kv = NULL;
	size_t n = 0;
	int rc = 0;

	*out = NULL;
	*count = 0;
	if (!root)
		return ERR_INVALID;
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return err_set(ERR_INVALID, "must be a JSON object of node labels ({\"KEY\": \"VALUE\"})");
	}
	size_t total = (size_t)cJSON_GetArraySize(root);
	if (total && !(kv = calloc(total, sizeof(*kv)))) {
		cJSON_Delete(root);
		return err_set(ERR_NOMEM, "out of memory");
	}
	for (const cJSON *c = root->child; c && !rc; c = c->next) {
		if (!sandbox_label_key_valid(c->string))
			rc = err_set(ERR_INVALID, "\"%.80s\": not a valid label key ([prefix/]name)", c->string);
		else if (has_duplicate(root, c))
			rc = err_set(ERR_INVALID, "\"%.80s\": given twice", c->string);
		else if (!cJSON_IsString(c))
			rc = err_set(ERR_INVALID, "\"%.80s\": the value must be a string", c->string);
		else if (!sandbox_label_value_valid(c->valuestring))
			rc = err_set(ERR_INVALID, "\"%.80s\": \"%.80s\" is not a valid label value", c->string,
				     c->valuestring);
		else if (!(kv[n].name = str_dup(c->string)) || !(kv[n].value = str_dup(c->valuestring)))
			rc = err_set(ERR_NOMEM, "out of memory");
		n++;
	}
	cJSON_Delete(root);
	if (rc) {
		sandbox_kv_array_free(kv, n);
		return rc;
	}
	*out = kv;
	*count = n;
	return 0;
}

void sandbox_tolerations_free(sandbox_toleration *t, size_t count)
{
	for (size_t i = 0; t && i < count; i++) {
		free(t[i].key);
		free(t[i].operator_);
		free(t[i].value);
		free(t[i].effect);
	}
	free(t);
}

static int effect_valid(const char *e)
{
	return !e || !*e || !strcmp(e, "NoSchedule") || !strcmp(e, "PreferNoSchedule") ||
	       !strcmp(e, "NoExecute");
}

int sandbox_toleration_check(const sandbox_toleration *t)
{
	const char *key = t->key ? t->key : "";
	const char *op = t->operator_ && *t->operator_ ? t->operator_ : "Equal";
	const char *value = t->value ? t->value : "";
	const char *effect = t->effect ? t->effect : "";

	if (*key && !sandbox_label_key_valid(key))
		return err_set(ERR_INVALID, "key: \"%.80s\" is not a qualified name ([prefix/]name)", key);
	if (strcmp(op, "Exists") && strcmp(op, "Equal"))
		return err_set(ERR_INVALID, "operator: \"%.40s\" is not Exists or Equal", op);
	if (!*key && strcmp(op, "Exists"))
		return err_set(ERR_INVALID, "operator: must be Exists when key is empty (which matches "
			       "every taint)");
	if (!strcmp(op, "Exists") && *value)
		return err_set(ERR_INVALID, "value: must be empty when operator is Exists");
	if (!strcmp(op, "Equal") && !sandbox_label_value_valid(value))
		return err_set(ERR_INVALID, "value: \"%.80s\" is not a valid label value", value);
	if (!effect_valid(effect))
		return err_set(ERR_INVALID, "effect: \"%.40s\" is not NoSchedule, PreferNoSchedule, NoExecute "
			       "or empty (every effect)", effect);
	if (t->has_seconds && strcmp(effect, "NoExecute"))
		return err_set(ERR_INVALID, "effect: must be NoExecute when tolerationSeconds is set");
	if (t->has_seconds && t->seconds < 0)
		return err_set(ERR_INVALID, "tolerationSeconds: must be 0 or more");
	return 0;
}

/* One member of a Toleration object into *t. */
static int toleration_member(sandbox_toleration *t, const cJSON *m)
{
	static const char *const names[] = { "key", "operator", "value", "effect" };
	char **slots[] = { &t->key, &t->operator_, &t->value, &t->effect };

	if (cJSON_IsNull(m))
		return 0;
	for (size_t i = 0; i < 4; i++) {
		if (strcmp(m->string, names[i]))
			continue;
		if (!cJSON_IsString(m))
			return err_set(ERR_INVALID, "%s: must be a string", names[i]);
		free(*slots[i]);
		if (!(*slots[i] = str_dup(m->valuestring)))
			return err_set(ERR_NOMEM, "out of memory");
		return 0;
	}
	if (!strcmp(m->string, "tolerationSeconds")) {
		double d = m->valuedouble;

		if (!cJSON_IsNumber(m) || d > 9007199254740992.0 || d < -9007199254740992.0 ||
		    d != (double)(int64_t)d)
			return err_set(ERR_INVALID, "tolerationSeconds: must be a whole number of seconds");
		t->seconds = (int64_t)d;
		t->has_seconds = 1;
		return 0;
	}
	return err_set(ERR_INVALID, "\"%.60s\": unknown field (key, operator, value, effect, "
		       "tolerationSeconds)", m->string);
}

int sandbox_tolerations_parse(sandbox_toleration **out, size_t *count, const char *json)
{
	cJSON *root = parse_json(json, "an array of tolerations");
	sandbox_toleration *t = NULL;
	size_t n = 0;
	int rc = 0;

	*out = NULL;
	*count = 0;
	if (!root)
		return ERR_INVALID;
	if (!cJSON_IsArray(root)) {
		cJSON_Delete(root);
		return err_set(ERR_INVALID, "must be a JSON array of tolerations "
			       "([{\"key\": ..., \"operator\": ..., \"effect\": ...}])");
	}
	size_t total = (size_t)cJSON_GetArraySize(root);
	if (total && !(t = calloc(total, sizeof(*t)))) {
		cJSON_Delete(root);
		return err_set(ERR_NOMEM, "out of memory");
	}
	for (const cJSON *item = root->child; item && !rc; item = item->next, n++) {
		if (!cJSON_IsObject(item)) {
			rc = err_set(ERR_INVALID, "[%zu]: must be an object", n);
			break;
		}
		for (const cJSON *m = item->child; m && !rc; m = m->next)
			if (has_duplicate(item, m))
				rc = err_set(ERR_INVALID, "\"%.60s\" given twice", m->string);
			else
				rc = toleration_member(&t[n], m);
		if (rc) {
			err_wrap(rc, "[%zu]", n);
		} else if ((rc = sandbox_toleration_check(&t[n])) != 0) {
			/* its message starts with the field: "[1].effect: ..." */
			char why[256];

			str_copy(why, sizeof(why), err_msg());
			err_set(rc, "[%zu].%s", n, why);
		}
	}
	cJSON_Delete(root);
	if (rc) {
		sandbox_tolerations_free(t, total);
		return rc;
	}
	*out = t;
	*count = n;
	return 0;
}

int sandbox_affinity_check(const char *json)
{
	static const char *const kinds[] = { "nodeAffinity", "podAffinity", "podAntiAffinity" };
	cJSON *root = parse_json(json, "an object");
	int rc = 0;

	if (!root)
		return ERR_INVALID;
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return err_set(ERR_INVALID, "must be a JSON object (nodeAffinity, podAffinity, podAntiAffinity)");
	}
	for (const cJSON *c = root->child; c && !rc; c = c->next) {
		int known = 0;

		for (size_t i = 0; i < 3; i++)
			known |= !strcmp(c->string, kinds[i]);
		if (!known)
			rc = err_set(ERR_INVALID, "\"%.60s\": unknown field (nodeAffinity, podAffinity, "
				     "podAntiAffinity)", c->string);
		else if (has_duplicate(root, c))
			rc = err_set(ERR_INVALID, "%s: given twice", c->string);
		else if (!cJSON_IsObject(c))
			rc = err_set(ERR_INVALID, "%s: must be an object", c->string);
	}
	cJSON_Delete(root);
	return rc;
}

int sandbox_pod_settings_check(const sandbox_config *cfg)
{
	const char *sa = cfg->service_account;

	if (!sandbox_pull_policy_valid(cfg->image_pull_policy))
		return err_set(ERR_INVALID, "configuration: imagePullPolicy \"%.40s\" is not Always, "
			       "IfNotPresent or Never", cfg->image_pull_policy ? cfg->image_pull_policy : "");
	if (!sa || strlen(sa) > 253 || !str_is_dns1123_subdomain(sa))
		return err_set(ERR_INVALID, "configuration: serviceAccountName \"%.80s\" is not a valid "
			       "ServiceAccount name (DNS-1123 subdomain)", sa ? sa : "");
	for (size_t i = 0; i < cfg->node_selector_count; i++) {
		const sandbox_kv *kv = &cfg->node_selector[i];

		if (!sandbox_label_key_valid(kv->name))
			return err_set(ERR_INVALID, "configuration: nodeSelector: \"%.80s\" is not a valid "
				       "label key", kv->name ? kv->name : "");
		if (!sandbox_label_value_valid(kv->value))
			return err_set(ERR_INVALID, "configuration: nodeSelector: %s: \"%.80s\" is not a valid "
				       "label value", kv->name, kv->value ? kv->value : "");
	}
	for (size_t i = 0; i < cfg->toleration_count; i++) {
		if (sandbox_toleration_check(&cfg->tolerations[i])) {
			char why[256];

			str_copy(why, sizeof(why), err_msg());
			return err_set(ERR_INVALID, "configuration: tolerations[%zu].%s", i, why);
		}
	}
	if (cfg->affinity && sandbox_affinity_check(cfg->affinity))
		return err_wrap(ERR_INVALID, "configuration: affinity");
	if (cfg->gpu_count < 0)
		return err_set(ERR_INVALID, "configuration: GPU count must be 0 (none) or more");
	if (cfg->gpu_count > 0 && !sandbox_extended_resource_valid(cfg->gpu_resource))
		return err_set(ERR_INVALID, "configuration: GPU resource \"%.80s\" is not an extended "
			       "resource name (DOMAIN/NAME outside kubernetes.io, e.g. nvidia.com/gpu)",
			       cfg->gpu_resource ? cfg->gpu_resource : "");
	return 0;
}

static cJSON *toleration_json(const sandbox_toleration *t)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	if (t->key && *t->key)
		cJSON_AddStringToObject(o, "key", t->key);
	cJSON_AddStringToObject(o, "operator", t->operator_ && *t->operator_ ? t->operator_ : "Equal");
	if (t->value && *t->value)
		cJSON_AddStringToObject(o, "value", t->value);
	if (t->effect && *t->effect)
		cJSON_AddStringToObject(o, "effect", t->effect);
	if (t->has_seconds)
		cJSON_AddNumberToObject(o, "tolerationSeconds", (double)t->seconds);
	return o;
}

int sandbox_pod_settings_apply(cJSON *pod_spec, cJSON *resources, const sandbox_config *cfg)
{
	if (cfg->node_selector_count) {
		cJSON *ns = cJSON_AddObjectToObject(pod_spec, "nodeSelector");

		if (!ns)
			goto nomem;
		for (size_t i = 0; i < cfg->node_selector_count; i++)
			if (!cJSON_AddStringToObject(ns, cfg->node_selector[i].name, cfg->node_selector[i].value))
				goto nomem;
	}
	if (cfg->toleration_count) {
		cJSON *a = cJSON_AddArrayToObject(pod_spec, "tolerations");

		if (!a)
			goto nomem;
		for (size_t i = 0; i < cfg->toleration_count; i++) {
			cJSON *o = toleration_json(&cfg->tolerations[i]);

			if (!o)
				goto nomem;
			cJSON_AddItemToArray(a, o);
		}
	}
	if (cfg->affinity) {
		cJSON *aff = cJSON_ParseWithOpts(cfg->affinity, NULL, 1);

		if (!cJSON_IsObject(aff)) {
			cJSON_Delete(aff);
			return err_set(ERR_INVALID, "configuration: affinity is not a JSON object");
		}
		if (!aff->child) /* {}: none */
			cJSON_Delete(aff);
		else
			cJSON_AddItemToObject(pod_spec, "affinity", aff);
	}
	if (cfg->gpu_count > 0) {
		/* an extended resource may not be overcommitted: the request,
		 * when given, must equal the limit (ValidateResourceRequirements) */
		const char *kinds[] = { "limits", "requests" };
		char num[32];

		snprintf(num, sizeof(num), "%lld", (long long)cfg->gpu_count);
		for (size_t i = 0; i < 2; i++) {
			cJSON *r = cJSON_GetObjectItemCaseSensitive(resources, kinds[i]);

			if (!r && !(r = cJSON_AddObjectToObject(resources, kinds[i])))
				goto nomem;
			if (!cJSON_AddStringToObject(r, cfg->gpu_resource, num))
				goto nomem;
		}
	}
	return 0;
nomem:
	return err_set(ERR_NOMEM, "building the Job: out of memory");
}

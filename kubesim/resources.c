/*
 * resources: kubesim's resource table and object validation. Messages and
 * cause shapes follow upstream:
 *   k/k staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go
 *     (DNS-1123 label/subdomain, label value, qualified name messages)
 *   k/k staging/src/k8s.io/apimachinery/pkg/util/validation/field/errors.go
 *     ("Invalid value: ...", "Required value", "Unsupported value: ...")
 *   k/k pkg/apis/batch/validation/validation.go (Job restartPolicy, the
 *     job-name labels that make a Job name longer than 63 characters invalid)
 */
#include "kubesim/resources.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/str.h"

#define CRUD KS_RES_STORED
#define REVIEW KS_RES_CREATE_ONLY

const ks_resource ks_resources[] = {
	{"", "v1", "namespaces", "namespace", "Namespace", 0, CRUD, "ns", "status,finalize", ""},
	{"", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", 1, CRUD, "sa", "token", ""},
	{"", "v1", "pods", "pod", "Pod", 1, CRUD, "po", "status,log,exec", "all"},
	{"", "v1", "events", "event", "Event", 1, CRUD, "ev", "", ""},
	{"", "v1", "configmaps", "configmap", "ConfigMap", 1, CRUD, "cm", "", ""},
	{"", "v1", "secrets", "secret", "Secret", 1, CRUD, "", "", ""},
	{"", "v1", "services", "service", "Service", 1, CRUD, "svc", "status", "all"},
	{"", "v1", "resourcequotas", "resourcequota", "ResourceQuota", 1, CRUD, "quota", "status", ""},
	{"", "v1", "limitranges", "limitrange", "LimitRange", 1, CRUD, "limits", "", ""},
	{"batch", "v1", "jobs", "job", "Job", 1, CRUD, "", "status", "all"},
	{"apps", "v1", "deployments", "deployment", "Deployment", 1, CRUD, "deploy", "status,scale", "all"},
	{"policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", 1, CRUD, "pdb", "status", ""},
	{"networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", 1, CRUD, "netpol", "", ""},
	{"rbac.authorization.k8s.io", "v1", "roles", "role", "Role", 1, CRUD, "", "", ""},
	{"rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", 1, CRUD, "", "", ""},
	{"rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", 0, CRUD, "", "", ""},
	{"rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", 0, CRUD, "", "", ""},
	{"authorization.k8s.io", "v1", "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview", 0, REVIEW, "", "", ""},
	{"authorization.k8s.io", "v1", "selfsubjectrulesreviews", "selfsubjectrulesreview", "SelfSubjectRulesReview", 0, REVIEW, "", "", ""},
	{"authorization.k8s.io", "v1", "subjectaccessreviews", "subjectaccessreview", "SubjectAccessReview", 0, REVIEW, "", "", ""},
	{"authorization.k8s.io", "v1", "localsubjectaccessreviews", "localsubjectaccessreview", "LocalSubjectAccessReview", 1, REVIEW, "", "", ""},
	{"authentication.k8s.io", "v1", "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview", 0, REVIEW, "", "", ""},
	{"authentication.k8s.io", "v1", "tokenreviews", "tokenreview", "TokenReview", 0, REVIEW, "", "", ""},
};
const size_t ks_n_resources = sizeof ks_resources / sizeof ks_resources[0];

int ks_resource_find(const char *group, const char *version, const char *plural)
{
	for (size_t i = 0; i < ks_n_resources; i++) {
		const ks_resource *r = &ks_resources[i];
		if (strcmp(r->group, group) == 0 && strcmp(r->version, version) == 0 &&
		    strcmp(r->plural, plural) == 0)
			return (int)i;
	}
	return -1;
}

int ks_resource_by_plural(const char *plural)
{
	for (size_t i = 0; i < ks_n_resources; i++)
		if (strcmp(ks_resources[i].plural, plural) == 0)
			return (int)i;
	return -1;
}

static int in_csv(const char *csv, const char *s)
{
	size_t n = strlen(s);
	const char *p = csv;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && strncmp(p, s, n) == 0)
			return 1;
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

int ks_resource_has_sub(const ks_resource *r, const char *sub) { return in_csv(r->subresources, sub); }

void ks_resource_qualified(char *out, size_t n, const ks_resource *r)
{
	if (r->group[0])
		snprintf(out, n, "%s.%s", r->plural, r->group);
	else
		snprintf(out, n, "%s", r->plural);
}

void ks_resource_api_version(char *out, size_t n, const ks_resource *r)
{
	if (r->group[0])
		snprintf(out, n, "%s/%s", r->group, r->version);
	else
		snprintf(out, n, "%s", r->version);
}

void ks_causes_add(ks_causes *cs, const char *reason, const char *field, const char *fmt, ...)
{
	if (cs->n >= KS_MAX_CAUSES)
		return;
	ks_cause *c = &cs->c[cs->n];
	snprintf(c->reason, sizeof c->reason, "%s", reason);
	snprintf(c->field, sizeof c->field, "%s", field);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->message, sizeof c->message, fmt, ap);
	va_end(ap);
	/* upstream's ToAggregate drops duplicate messages */
	for (size_t i = 0; i < cs->n; i++)
		if (strcmp(cs->c[i].field, c->field) == 0 && strcmp(cs->c[i].message, c->message) == 0)
			return;
	cs->n++;
}

#define DNS1123_LABEL_MSG                                                                          \
	"a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and " \
	"must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "  \
	"used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
#define DNS1123_SUBDOMAIN_MSG                                                                       \
	"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or " \
	"'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used " \
	"for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
#define LABEL_VALUE_MSG                                                                          \
	"a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or " \
	"'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "          \
	"'my_value',  or '12345', regex used for validation is "                                   \
	"'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
#define QUALIFIED_NAME_MSG                                                                        \
	"name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "   \
	"end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "   \
	"used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"

int ks_valid_label_value(const char *v)
{
	size_t n = strlen(v);
	if (n == 0)
		return 1;
	if (n > 63)
		return 0;
	if (!isalnum((unsigned char)v[0]) || !isalnum((unsigned char)v[n - 1]))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!isalnum(c) && c != '-' && c != '_' && c != '.')
			return 0;
	}
	return 1;
}

int ks_valid_qualified_name(const char *k)
{
	const char *slash = strchr(k, '/');
	const char *name = k;
	if (slash) {
		char prefix[256];
		size_t pl = (size_t)(slash - k);
		if (pl == 0 || pl > 253)
			return 0;
		memcpy(prefix, k, pl);
		prefix[pl] = 0;
		if (!str_is_dns1123_subdomain(prefix))
			return 0;
		name = slash + 1;
	}
	size_t n = strlen(name);
	if (n == 0 || n > 63)
		return 0;
	return ks_valid_label_value(name);
}

static const char *gets(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void quote_trunc(char *out, size_t n, const char *s)
{
	snprintf(out, n, "%s", s);
}

static void check_labels(ks_causes *cs, const cJSON *labels, const char *field)
{
	const cJSON *l;
	char q[300];
	cJSON_ArrayForEach(l, labels)
	{
		if (!ks_valid_qualified_name(l->string)) {
			quote_trunc(q, sizeof q, l->string);
			ks_causes_add(cs, "FieldValueInvalid", field, "Invalid value: \"%s\": %s", q,
				      QUALIFIED_NAME_MSG);
		}
		if (!cJSON_IsString(l)) {
			ks_causes_add(cs, "FieldValueInvalid", field, "Invalid value: %s", "non-string label value");
			continue;
		}
		if (strlen(l->valuestring) > 63) {
			quote_trunc(q, sizeof q, l->valuestring);
			ks_causes_add(cs, "FieldValueInvalid", field,
				      "Invalid value: \"%s\": must be no more than 63 characters", q);
		} else if (!ks_valid_label_value(l->valuestring)) {
			quote_trunc(q, sizeof q, l->valuestring);
			ks_causes_add(cs, "FieldValueInvalid", field, "Invalid value: \"%s\": %s", q,
				      LABEL_VALUE_MSG);
		}
	}
}

/* RBAC and a few others only forbid path-breaking names
 * (k/k staging/src/k8s.io/apimachinery/pkg/api/validation/path/name.go). */
static const char *path_segment_problem(const char *name)
{
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return "may not be '.' or '..'";
	if (strchr(name, '/'))
		return "may not contain '/'";
	if (strchr(name, '%'))
		return "may not contain '%'";
	return NULL;
}

static void check_name(ks_causes *cs, const ks_resource *r, const cJSON *meta)
{
	const char *name = gets(meta, "name");
	const char *gen = gets(meta, "generateName");
	char q[300];
	if (!name || !name[0]) {
		if (!gen || !gen[0])
			ks_causes_add(cs, "FieldValueRequired", "metadata.name",
				      "Required value: name or generateName is required");
		return;
	}
	quote_trunc(q, sizeof q, name);
	int label = strcmp(r->plural, "namespaces") == 0 || strcmp(r->plural, "services") == 0;
	int rbac = strcmp(r->group, "rbac.authorization.k8s.io") == 0;
	if (rbac) {
		const char *p = path_segment_problem(name);
		if (p)
			ks_causes_add(cs, "FieldValueInvalid", "metadata.name", "Invalid value: \"%s\": %s", q, p);
		return;
	}
	if (label) {
		if (strlen(name) > 63)
			ks_causes_add(cs, "FieldValueInvalid", "metadata.name",
				      "Invalid value: \"%s\": must be no more than 63 characters", q);
		else if (!str_is_dns1123_label(name))
			ks_causes_add(cs, "FieldValueInvalid", "metadata.name", "Invalid value: \"%s\": %s", q,
				      DNS1123_LABEL_MSG);
		return;
	}
	if (strlen(name) > 253)
		ks_causes_add(cs, "FieldValueInvalid", "metadata.name",
			      "Invalid value: \"%s\": must be no more than 253 characters", q);
	else if (!str_is_dns1123_subdomain(name))
		ks_causes_add(cs, "FieldValueInvalid", "metadata.name", "Invalid value: \"%s\": %s", q,
			      DNS1123_SUBDOMAIN_MSG);
}

static void check_containers(ks_causes *cs, const cJSON *spec, const char *prefix)
{
	char f[160];
	const cJSON *ctrs = cJSON_GetObjectItemCaseSensitive(spec, "containers");
	if (!cJSON_IsArray(ctrs) || cJSON_GetArraySize(ctrs) == 0) {
		snprintf(f, sizeof f, "%s.containers", prefix);
		ks_causes_add(cs, "FieldValueRequired", f, "Required value");
		return;
	}
	int i = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, ctrs)
	{
		const char *name = gets(c, "name");
		if (!name || !name[0]) {
			snprintf(f, sizeof f, "%s.containers[%d].name", prefix, i);
			ks_causes_add(cs, "FieldValueRequired", f, "Required value");
		} else if (!str_is_dns1123_label(name)) {
			snprintf(f, sizeof f, "%s.containers[%d].name", prefix, i);
			ks_causes_add(cs, "FieldValueInvalid", f, "Invalid value: \"%.100s\": %s", name,
				      DNS1123_LABEL_MSG);
		}
		const char *image = gets(c, "image");
		if (!image || !image[0]) {
			snprintf(f, sizeof f, "%s.containers[%d].image", prefix, i);
			ks_causes_add(cs, "FieldValueRequired", f, "Required value");
		}
		i++;
	}
	const char *rp = gets(spec, "restartPolicy");
	if (rp && strcmp(rp, "Always") && strcmp(rp, "OnFailure") && strcmp(rp, "Never")) {
		snprintf(f, sizeof f, "%s.restartPolicy", prefix);
		ks_causes_add(cs, "FieldValueNotSupported", f,
			      "Unsupported value: \"%.100s\": supported values: \"Always\", \"OnFailure\", \"Never\"", rp);
	}
}

static int json_eq(const cJSON *a, const cJSON *b)
{
	if (!a && !b)
		return 1;
	if (!a || !b)
		return 0;
	return cJSON_Compare(a, b, 1);
}

size_t ks_validate(ks_causes *out, const ks_resource *r, const cJSON *obj, const cJSON *old)
{
	memset(out, 0, sizeof *out);
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	if (!old)
		check_name(out, r, meta);
	check_labels(out, cJSON_GetObjectItemCaseSensitive(meta, "labels"), "metadata.labels");
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	if (strcmp(r->plural, "pods") == 0) {
		check_containers(out, spec, "spec");
		if (old && !json_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(old, "spec"), "containers"),
				    cJSON_GetObjectItemCaseSensitive(spec, "containers"))) {
			const cJSON *oc = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(old, "spec"), "containers");
			const cJSON *nc = cJSON_GetObjectItemCaseSensitive(spec, "containers");
			/* only image may change (k/k pkg/apis/core/validation ValidatePodUpdate) */
			int same_but_image = cJSON_GetArraySize(oc) == cJSON_GetArraySize(nc);
			for (int i = 0; same_but_image && i < cJSON_GetArraySize(oc); i++) {
				cJSON *a = cJSON_Duplicate(cJSON_GetArrayItem(oc, i), 1);
				cJSON *b = cJSON_Duplicate(cJSON_GetArrayItem(nc, i), 1);
				cJSON_DeleteItemFromObject(a, "image");
				cJSON_DeleteItemFromObject(b, "image");
				same_but_image = cJSON_Compare(a, b, 1);
				cJSON_Delete(a);
				cJSON_Delete(b);
			}
			if (!same_but_image)
				ks_causes_add(out, "FieldValueForbidden", "spec",
					      "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)");
		}
	} else if (strcmp(r->plural, "jobs") == 0) {
		const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(spec, "template");
		if (!cJSON_IsObject(tmpl)) {
			ks_causes_add(out, "FieldValueRequired", "spec.template", "Required value");
		} else {
			const cJSON *tspec = cJSON_GetObjectItemCaseSensitive(tmpl, "spec");
			check_containers(out, tspec, "spec.template.spec");
			const char *rp = gets(tspec, "restartPolicy");
			if (!rp || (strcmp(rp, "OnFailure") && strcmp(rp, "Never"))) {
				if (!rp)
					ks_causes_add(out, "FieldValueRequired", "spec.template.spec.restartPolicy",
						      "Required value: valid values: \"OnFailure\", \"Never\"");
				else
					ks_causes_add(out, "FieldValueNotSupported", "spec.template.spec.restartPolicy",
						      "Unsupported value: \"%.100s\": supported values: \"OnFailure\", \"Never\"", rp);
			}
			const cJSON *tl = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(tmpl, "metadata"), "labels");
			check_labels(out, tl, "spec.template.labels");
		}
		const char *names[] = {"backoffLimit", "activeDeadlineSeconds", "completions", "parallelism",
				       "ttlSecondsAfterFinished"};
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, names[i]);
			char f[64];
			snprintf(f, sizeof f, "spec.%s", names[i]);
			if (v && !cJSON_IsNull(v) && (!cJSON_IsNumber(v) || v->valuedouble < 0 ||
						      (strcmp(names[i], "activeDeadlineSeconds") == 0 && v->valuedouble <= 0)))
				ks_causes_add(out, "FieldValueInvalid", f, "Invalid value: %g: must be %s",
					      cJSON_IsNumber(v) ? v->valuedouble : 0.0,
					      strcmp(names[i], "activeDeadlineSeconds") == 0 ? "greater than 0"
											 : "greater than or equal to 0");
		}
		if (old) {
			const cJSON *os = cJSON_GetObjectItemCaseSensitive(old, "spec");
			const char *imm[] = {"template", "selector", "completions", "completionMode"};
			for (size_t i = 0; i < sizeof imm / sizeof imm[0]; i++) {
				if (!json_eq(cJSON_GetObjectItemCaseSensitive(os, imm[i]),
					     cJSON_GetObjectItemCaseSensitive(spec, imm[i]))) {
					char f[64];
					snprintf(f, sizeof f, "spec.%s", imm[i]);
					ks_causes_add(out, "FieldValueInvalid", f, "Invalid value: %s: field is immutable",
						      strcmp(imm[i], "template") == 0 ? "core.PodTemplateSpec{...}" : "\"...\"");
				}
			}
		}
	} else if (strcmp(r->plural, "rolebindings") == 0 || strcmp(r->plural, "clusterrolebindings") == 0) {
		const cJSON *ref = cJSON_GetObjectItemCaseSensitive(obj, "roleRef");
		const char *kind = gets(ref, "kind");
		if (!gets(ref, "name") || !gets(ref, "name")[0])
			ks_causes_add(out, "FieldValueRequired", "roleRef.name", "Required value");
		if (!kind || (strcmp(kind, "Role") && strcmp(kind, "ClusterRole")))
			ks_causes_add(out, "FieldValueNotSupported", "roleRef.kind",
				      "Unsupported value: \"%.60s\": supported values: \"Role\", \"ClusterRole\"", kind ? kind : "");
		else if (strcmp(r->plural, "clusterrolebindings") == 0 && strcmp(kind, "ClusterRole"))
			ks_causes_add(out, "FieldValueNotSupported", "roleRef.kind",
				      "Unsupported value: \"%s\": supported values: \"ClusterRole\"", kind);
		if (old && !json_eq(cJSON_GetObjectItemCaseSensitive(old, "roleRef"), ref))
			ks_causes_add(out, "FieldValueInvalid", "roleRef", "Invalid value: %s: cannot change roleRef",
				      "rbac.RoleRef{...}");
		const cJSON *subs = cJSON_GetObjectItemCaseSensitive(obj, "subjects");
		const cJSON *s;
		int i = 0;
		cJSON_ArrayForEach(s, subs)
		{
			const char *sk = gets(s, "kind");
			char f[64];
			snprintf(f, sizeof f, "subjects[%d].kind", i);
			if (!sk || (strcmp(sk, "User") && strcmp(sk, "Group") && strcmp(sk, "ServiceAccount")))
				ks_causes_add(out, "FieldValueNotSupported", f,
					      "Unsupported value: \"%.60s\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
					      sk ? sk : "");
			if (!gets(s, "name") || !gets(s, "name")[0]) {
				snprintf(f, sizeof f, "subjects[%d].name", i);
				ks_causes_add(out, "FieldValueRequired", f, "Required value");
			}
			if (sk && strcmp(sk, "ServiceAccount") == 0 && strcmp(r->plural, "clusterrolebindings") == 0 &&
			    (!gets(s, "namespace") || !gets(s, "namespace")[0])) {
				snprintf(f, sizeof f, "subjects[%d].namespace", i);
				ks_causes_add(out, "FieldValueRequired", f, "Required value");
			}
			i++;
		}
	} else if (strcmp(r->plural, "roles") == 0 || strcmp(r->plural, "clusterroles") == 0) {
		const cJSON *rules = cJSON_GetObjectItemCaseSensitive(obj, "rules");
		const cJSON *rl;
		int i = 0;
		cJSON_ArrayForEach(rl, rules)
		{
			char f[64];
			const cJSON *verbs = cJSON_GetObjectItemCaseSensitive(rl, "verbs");
			if (!cJSON_IsArray(verbs) || cJSON_GetArraySize(verbs) == 0) {
				snprintf(f, sizeof f, "rules[%d].verbs", i);
				ks_causes_add(out, "FieldValueRequired", f, "Required value: verbs must contain at least one value");
			}
			i++;
		}
	} else if (strcmp(r->plural, "deployments") == 0) {
		if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(spec, "selector")))
			ks_causes_add(out, "FieldValueRequired", "spec.selector", "Required value");
		const cJSON *tmpl = cJSON_GetObjectItemCaseSensitive(spec, "template");
		check_containers(out, cJSON_GetObjectItemCaseSensitive(tmpl, "spec"), "spec.template.spec");
	} else if (strcmp(r->plural, "configmaps") == 0 || strcmp(r->plural, "secrets") == 0) {
		const cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");
		const cJSON *d;
		cJSON_ArrayForEach(d, data)
		{
			const char *k = d->string;
			int ok = k[0] && strlen(k) <= 253;
			for (const char *p = k; ok && *p; p++)
				ok = isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.';
			if (!ok) {
				char f[300];
				snprintf(f, sizeof f, "data[%.250s]", k);
				ks_causes_add(out, "FieldValueInvalid", f,
					      "Invalid value: \"%.100s\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
					      k);
			}
		}
	}
	return out->n;
}

/* ---- fieldValidation=Strict: known fields ---- */

static const char *META_FIELDS[] = {"name", "generateName", "namespace", "selfLink", "uid",
				    "resourceVersion", "generation", "creationTimestamp",
				    "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
				    "annotations", "ownerReferences", "finalizers", "managedFields", NULL};
static const char *CONTAINER_FIELDS[] = {"name", "image", "command", "args", "workingDir", "ports", "envFrom",
					 "env", "resources", "resizePolicy", "restartPolicy", "volumeMounts",
					 "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe",
					 "lifecycle", "terminationMessagePath", "terminationMessagePolicy",
					 "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty", NULL};
static const char *PODSPEC_FIELDS[] = {
	"volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
	"terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector",
	"serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName", "hostNetwork",
	"hostPID", "hostIPC", "shareProcessNamespace", "securityContext", "imagePullSecrets", "hostname",
	"subdomain", "affinity", "schedulerName", "tolerations", "hostAliases", "priorityClassName",
	"priority", "dnsConfig", "readinessGates", "runtimeClassName", "enableServiceLinks",
	"preemptionPolicy", "overhead", "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers",
	"schedulingGates", "resourceClaims", "resources", NULL};
static const char *JOBSPEC_FIELDS[] = {"parallelism", "completions", "activeDeadlineSeconds", "podFailurePolicy",
				       "successPolicy", "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes",
				       "selector", "manualSelector", "template", "ttlSecondsAfterFinished",
				       "completionMode", "suspend", "podReplacementPolicy", "managedBy", NULL};

static int in_list(const char *const *l, const char *s)
{
	for (; *l; l++)
		if (strcmp(*l, s) == 0)
			return 1;
	return 0;
}

static int unknown_in(char *out, size_t n, const cJSON *o, const char *const *known, const char *path)
{
	const cJSON *c;
	if (!cJSON_IsObject(o))
		return 0;
	cJSON_ArrayForEach(c, o)
	{
		if (!in_list(known, c->string)) {
			snprintf(out, n, "%s%s%s", path, path[0] ? "." : "", c->string);
			return 1;
		}
	}
	return 0;
}

static int unknown_podspec(char *out, size_t n, const cJSON *spec, const char *path)
{
	if (unknown_in(out, n, spec, PODSPEC_FIELDS, path))
		return 1;
	const char *lists[] = {"containers", "initContainers"};
	for (int l = 0; l < 2; l++) {
		const cJSON *ctrs = cJSON_GetObjectItemCaseSensitive(spec, lists[l]);
		int i = 0;
		const cJSON *c;
		cJSON_ArrayForEach(c, ctrs)
		{
			char p[200];
			snprintf(p, sizeof p, "%s.%s[%d]", path, lists[l], i++);
			if (unknown_in(out, n, c, CONTAINER_FIELDS, p))
				return 1;
		}
	}
	return 0;
}

int ks_unknown_field(char *out, size_t n, const ks_resource *r, const cJSON *obj)
{
	static const char *base[] = {"apiVersion", "kind", "metadata", "spec", "status", NULL};
	static const char *cm[] = {"apiVersion", "kind", "metadata", "data", "binaryData", "immutable", NULL};
	static const char *secret[] = {"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable", NULL};
	static const char *sa[] = {"apiVersion", "kind", "metadata", "secrets", "imagePullSecrets",
				   "automountServiceAccountToken", NULL};
	static const char *role[] = {"apiVersion", "kind", "metadata", "rules", "aggregationRule", NULL};
	static const char *binding[] = {"apiVersion", "kind", "metadata", "subjects", "roleRef", NULL};
	static const char *event[] = {"apiVersion", "kind", "metadata", "involvedObject", "reason", "message",
				      "source", "firstTimestamp", "lastTimestamp", "count", "type", "eventTime",
				      "series", "action", "related", "reportingComponent", "reportingInstance", NULL};
	const char *const *known = base;
	const char *p = r->plural;
	if (strcmp(p, "configmaps") == 0)
		known = cm;
	else if (strcmp(p, "secrets") == 0)
		known = secret;
	else if (strcmp(p, "serviceaccounts") == 0)
		known = sa;
	else if (strcmp(p, "roles") == 0 || strcmp(p, "clusterroles") == 0)
		known = role;
	else if (strcmp(p, "rolebindings") == 0 || strcmp(p, "clusterrolebindings") == 0)
		known = binding;
	else if (strcmp(p, "events") == 0)
		known = event;
	if (unknown_in(out, n, obj, known, ""))
		return 1;
	if (unknown_in(out, n, cJSON_GetObjectItemCaseSensitive(obj, "metadata"), META_FIELDS, "metadata"))
		return 1;
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
	if (strcmp(p, "pods") == 0)
		return unknown_podspec(out, n, spec, "spec");
	if (strcmp(p, "jobs") == 0) {
		if (unknown_in(out, n, spec, JOBSPEC_FIELDS, "spec"))
			return 1;
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(spec, "template");
		if (unknown_in(out, n, t, (const char *[]){"metadata", "spec", NULL}, "spec.template"))
			return 1;
		if (unknown_in(out, n, cJSON_GetObjectItemCaseSensitive(t, "metadata"), META_FIELDS,
			       "spec.template.metadata"))
			return 1;
		return unknown_podspec(out, n, cJSON_GetObjectItemCaseSensitive(t, "spec"), "spec.template.spec");
	}
	return 0;
}

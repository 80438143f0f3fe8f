/*
 * rbac: RBAC evaluation over the stored Roles, ClusterRoles and their
 * bindings, as k/k plugin/pkg/auth/authorizer/rbac/rbac.go and
 * pkg/apis/rbac/v1/evaluation_helpers.go do it: a request is allowed when
 * a binding whose subjects include the user (User name, Group, or
 * ServiceAccount namespace/name) references a role with a rule that
 * matches verb, API group, resource (or "resource/subresource", "*",
 * "*\/subresource"), resourceName, or, for non-resource requests, the
 * URL (exact, or a prefix ending in "*"). system:masters is allowed
 * everything first, as the apiserver's privileged-group authorizer does.
 * Bootstrap roles follow k/k plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubesim/sim.h"
#include "util/str.h"

static int list_has(const cJSON *list, const char *v)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, list) if (cJSON_IsString(e) && (strcmp(e->valuestring, "*") == 0 || strcmp(e->valuestring, v) == 0)) return 1;
	return 0;
}

static int resource_matches(const cJSON *list, const char *res, const char *sub)
{
	char combined[200];
	if (sub && sub[0])
		snprintf(combined, sizeof combined, "%s/%s", res, sub);
	else
		snprintf(combined, sizeof combined, "%s", res);
	const cJSON *e;
	cJSON_ArrayForEach(e, list)
	{
		if (!cJSON_IsString(e))
			continue;
		const char *s = e->valuestring;
		if (strcmp(s, "*") == 0 || strcmp(s, combined) == 0)
			return 1;
		if (sub && sub[0] && strncmp(s, "*/", 2) == 0 && strcmp(s + 2, sub) == 0)
			return 1;
	}
	return 0;
}

static int rule_allows(const cJSON *rule, const ks_attrs *a)
{
	if (!list_has(cJSON_GetObjectItemCaseSensitive(rule, "verbs"), a->verb))
		return 0;
	if (!a->is_resource) {
		const cJSON *urls = cJSON_GetObjectItemCaseSensitive(rule, "nonResourceURLs");
		const cJSON *e;
		cJSON_ArrayForEach(e, urls)
		{
			if (!cJSON_IsString(e))
				continue;
			const char *u = e->valuestring;
			size_t l = strlen(u);
			if (strcmp(u, "*") == 0 || strcmp(u, a->path) == 0)
				return 1;
			if (l && u[l - 1] == '*' && strncmp(u, a->path, l - 1) == 0)
				return 1;
		}
		return 0;
	}
	if (!list_has(cJSON_GetObjectItemCaseSensitive(rule, "apiGroups"), a->group))
		return 0;
	if (!resource_matches(cJSON_GetObjectItemCaseSensitive(rule, "resources"), a->resource, a->sub))
		return 0;
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(rule, "resourceNames");
	if (cJSON_GetArraySize(names) == 0)
		return 1;
	if (!a->name || !a->name[0])
		return 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, names) if (cJSON_IsString(e) && strcmp(e->valuestring, a->name) == 0) return 1;
	return 0;
}

static int user_in_group(const ks_user *u, const char *g)
{
	for (size_t i = 0; i < u->n_groups; i++)
		if (strcmp(u->groups[i], g) == 0)
			return 1;
	return 0;
}

/* Does subject s match u? Describes the subject into desc. binding_ns is
 * the RoleBinding's namespace (a ServiceAccount subject defaults to it). */
static int subject_matches(const cJSON *s, const ks_user *u, const char *binding_ns, char *desc, size_t n)
{
	const char *kind = ks_jstr(s, "kind"), *name = ks_jstr(s, "name");
	if (!kind || !name)
		return 0;
	if (strcmp(kind, "User") == 0) {
		snprintf(desc, n, "User \"%s\"", name);
		return strcmp(u->name, name) == 0;
	}
	if (strcmp(kind, "Group") == 0) {
		snprintf(desc, n, "Group \"%s\"", name);
		return user_in_group(u, name);
	}
	if (strcmp(kind, "ServiceAccount") == 0) {
		const char *ns = ks_jstr(s, "namespace");
		if (!ns || !ns[0])
			ns = binding_ns;
		char full[600];
		snprintf(full, sizeof full, "system:serviceaccount:%s:%s", ns ? ns : "", name);
		snprintf(desc, n, "ServiceAccount \"%s/%s\"", name, ns ? ns : "");
		return strcmp(u->name, full) == 0;
	}
	return 0;
}

typedef int (*rule_visitor)(void *ctx, const cJSON *rule, const char *binding_desc);

/* Visit the rules of every binding that applies to u in ns (ns "" for
 * cluster scope: only ClusterRoleBindings). Stops when visit returns 1. */
static int visit_rules(ks_sim *s, const ks_user *u, const char *ns, rule_visitor visit, void *ctx)
{
	int crb = ks_resource_by_plural("clusterrolebindings");
	int cr = ks_resource_by_plural("clusterroles");
	int rb = ks_resource_by_plural("rolebindings");
	int ro = ks_resource_by_plural("roles");
	char sdesc[600], desc[1400];
	size_t n = ks_store_count(s->store, crb);
	for (size_t i = 0; i < n; i++) {
		cJSON *b = ks_store_at(s->store, crb, i);
		const cJSON *sub;
		int hit = 0;
		cJSON_ArrayForEach(sub, cJSON_GetObjectItemCaseSensitive(b, "subjects")) if (subject_matches(sub, u, NULL, sdesc, sizeof sdesc))
		{
			hit = 1;
			break;
		}
		if (!hit)
			continue;
		const char *rn = ks_jstr(cJSON_GetObjectItemCaseSensitive(b, "roleRef"), "name");
		cJSON *role = rn ? ks_store_get(s->store, cr, "", rn) : NULL;
		if (!role)
			continue;
		snprintf(desc, sizeof desc, "ClusterRoleBinding \"%s\" of ClusterRole \"%s\" to %s", ks_meta(b, "name"), rn, sdesc);
		const cJSON *rule;
		cJSON_ArrayForEach(rule, cJSON_GetObjectItemCaseSensitive(role, "rules")) if (visit(ctx, rule, desc)) return 1;
	}
	if (!ns || !ns[0])
		return 0;
	n = ks_store_count(s->store, rb);
	for (size_t i = 0; i < n; i++) {
		cJSON *b = ks_store_at(s->store, rb, i);
		if (!str_eq(ks_meta(b, "namespace"), ns))
			continue;
		const cJSON *sub;
		int hit = 0;
		cJSON_ArrayForEach(sub, cJSON_GetObjectItemCaseSensitive(b, "subjects")) if (subject_matches(sub, u, ns, sdesc, sizeof sdesc))
		{
			hit = 1;
			break;
		}
		if (!hit)
			continue;
		const cJSON *ref = cJSON_GetObjectItemCaseSensitive(b, "roleRef");
		const char *rn = ks_jstr(ref, "name"), *rk = ks_jstr(ref, "kind");
		if (!rn || !rk)
			continue;
		cJSON *role = strcmp(rk, "ClusterRole") == 0 ? ks_store_get(s->store, cr, "", rn) : ks_store_get(s->store, ro, ns, rn);
		if (!role)
			continue;
		snprintf(desc, sizeof desc, "RoleBinding \"%s/%s\" of %s \"%s\" to %s", ks_meta(b, "name"), ns, rk, rn, sdesc);
		const cJSON *rule;
		cJSON_ArrayForEach(rule, cJSON_GetObjectItemCaseSensitive(role, "rules")) if (visit(ctx, rule, desc)) return 1;
	}
	return 0;
}

typedef struct allow_ctx {
	const ks_attrs *a;
	char *reason;
	size_t n;
} allow_ctx;

static int allow_visit(void *ctx, const cJSON *rule, const char *desc)
{
	allow_ctx *c = ctx;
	if (!rule_allows(rule, c->a))
		return 0;
	snprintf(c->reason, c->n, "RBAC: allowed by %s", desc);
	return 1;
}

int ks_rbac_allowed(ks_sim *s, const ks_user *u, const ks_attrs *a, char *reason, size_t n)
{
	reason[0] = 0;
	if (user_in_group(u, "system:masters"))
		return 1;
	allow_ctx c = {a, reason, n};
	ks_sim_lock(s);
	int ok = visit_rules(s, u, a->is_resource ? a->ns : "", allow_visit, &c);
	ks_sim_unlock(s);
	return ok;
}

/* k/k staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go forbiddenMessage */
void ks_rbac_forbidden_msg(char *out, size_t n, const ks_user *u, const ks_attrs *a)
{
	if (!a->is_resource) {
		snprintf(out, n, "User \"%s\" cannot %s path \"%s\"", u->name, a->verb, a->path ? a->path : "");
		return;
	}
	char res[200];
	if (a->sub && a->sub[0])
		snprintf(res, sizeof res, "%s/%s", a->resource, a->sub);
	else
		snprintf(res, sizeof res, "%s", a->resource);
	if (a->ns && a->ns[0])
		snprintf(out, n, "User \"%s\" cannot %s resource \"%s\" in API group \"%s\" in the namespace \"%s\"",
			 u->name, a->verb, res, a->group ? a->group : "", a->ns);
	else
		snprintf(out, n, "User \"%s\" cannot %s resource \"%s\" in API group \"%s\" at the cluster scope",
			 u->name, a->verb, res, a->group ? a->group : "");
}

typedef struct rules_ctx {
	cJSON *res_rules;
	cJSON *nonres_rules;
} rules_ctx;

static int rules_visit(void *ctx, const cJSON *rule, const char *desc)
{
	(void)desc;
	rules_ctx *c = ctx;
	const cJSON *urls = cJSON_GetObjectItemCaseSensitive(rule, "nonResourceURLs");
	if (cJSON_GetArraySize(urls) > 0) {
		cJSON *r = cJSON_CreateObject();
		cJSON_AddItemToObject(r, "verbs", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(rule, "verbs"), 1));
		cJSON_AddItemToObject(r, "nonResourceURLs", cJSON_Duplicate(urls, 1));
		cJSON_AddItemToArray(c->nonres_rules, r);
		return 0;
	}
	cJSON *r = cJSON_CreateObject();
	cJSON_AddItemToObject(r, "verbs", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(rule, "verbs"), 1));
	const char *keys[] = {"apiGroups", "resources", "resourceNames"};
	for (int i = 0; i < 3; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(rule, keys[i]);
		if (v)
			cJSON_AddItemToObject(r, keys[i], cJSON_Duplicate(v, 1));
	}
	cJSON_AddItemToArray(c->res_rules, r);
	return 0;
}

cJSON *ks_rbac_rules_review(ks_sim *s, const ks_user *u, const char *ns)
{
	cJSON *st = cJSON_CreateObject();
	rules_ctx c = {cJSON_AddArrayToObject(st, "resourceRules"), cJSON_AddArrayToObject(st, "nonResourceRules")};
	ks_sim_lock(s);
	visit_rules(s, u, ns, rules_visit, &c);
	ks_sim_unlock(s);
	cJSON_AddFalseToObject(st, "incomplete");
	return st;
}

/* ---- bootstrap ---- */

static cJSON *strs(const char *csv)
{
	cJSON *a = cJSON_CreateArray();
	char tmp[1024];
	snprintf(tmp, sizeof tmp, "%s", csv);
	char *save = NULL;
	for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
		cJSON_AddItemToArray(a, cJSON_CreateString(strcmp(t, "-") == 0 ? "" : t));
	return a;
}

static void add_rule(cJSON *rules, const char *groups, const char *resources, const char *verbs)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddItemToObject(r, "verbs", strs(verbs));
	if (groups) {
		cJSON_AddItemToObject(r, "apiGroups", strs(groups));
		cJSON_AddItemToObject(r, "resources", strs(resources));
	} else {
		cJSON_AddItemToObject(r, "nonResourceURLs", strs(resources));
	}
	cJSON_AddItemToArray(rules, r);
}

static cJSON *bootstrap_meta(cJSON *o, const char *kind, const char *name)
{
	cJSON_AddStringToObject(o, "kind", kind);
	cJSON_AddStringToObject(o, "apiVersion", "rbac.authorization.k8s.io/v1");
	cJSON *m = cJSON_AddObjectToObject(o, "metadata");
	cJSON_AddStringToObject(m, "name", name);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "labels"), "kubernetes.io/bootstrapping", "rbac-defaults");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "annotations"), "rbac.authorization.kubernetes.io/autoupdate", "true");
	ks_obj_init_meta(o, NULL);
	return m;
}

static void put_role(ks_sim *s, const char *name, cJSON *rules)
{
	cJSON *o = cJSON_CreateObject();
	bootstrap_meta(o, "ClusterRole", name);
	cJSON_AddItemToObject(o, "rules", rules);
	ks_store_put(s->store, ks_resource_by_plural("clusterroles"), o);
}

static void put_binding(ks_sim *s, const char *name, const char *role, const char *groups_csv)
{
	cJSON *o = cJSON_CreateObject();
	bootstrap_meta(o, "ClusterRoleBinding", name);
	cJSON *ref = cJSON_AddObjectToObject(o, "roleRef");
	cJSON_AddStringToObject(ref, "apiGroup", "rbac.authorization.k8s.io");
	cJSON_AddStringToObject(ref, "kind", "ClusterRole");
	cJSON_AddStringToObject(ref, "name", role);
	cJSON *subs = cJSON_AddArrayToObject(o, "subjects");
	char tmp[256];
	snprintf(tmp, sizeof tmp, "%s", groups_csv);
	char *save = NULL;
	for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		cJSON *sj = cJSON_CreateObject();
		cJSON_AddStringToObject(sj, "apiGroup", "rbac.authorization.k8s.io");
		cJSON_AddStringToObject(sj, "kind", "Group");
		cJSON_AddStringToObject(sj, "name", t);
		cJSON_AddItemToArray(subs, sj);
	}
	ks_store_put(s->store, ks_resource_by_plural("clusterrolebindings"), o);
}

void ks_rbac_bootstrap(ks_sim *s)
{
	cJSON *r = cJSON_CreateArray();
	add_rule(r, "*", "*", "*");
	add_rule(r, NULL, "*", "*");
	put_role(s, "cluster-admin", r);
	put_binding(s, "cluster-admin", "cluster-admin", "system:masters");

	r = cJSON_CreateArray();
	add_rule(r, "authorization.k8s.io", "selfsubjectaccessreviews,selfsubjectrulesreviews", "create");
	add_rule(r, "authentication.k8s.io", "selfsubjectreviews", "create");
	put_role(s, "system:basic-user", r);
	put_binding(s, "system:basic-user", "system:basic-user", "system:authenticated");

	r = cJSON_CreateArray();
	add_rule(r, NULL, "/api,/api/*,/apis,/apis/*,/healthz,/livez,/openapi,/openapi/*,/readyz,/version,/version/", "get");
	put_role(s, "system:discovery", r);
	put_binding(s, "system:discovery", "system:discovery", "system:authenticated");

	r = cJSON_CreateArray();
	add_rule(r, NULL, "/healthz,/livez,/readyz,/version,/version/", "get");
	put_role(s, "system:public-info-viewer", r);
	put_binding(s, "system:public-info-viewer", "system:public-info-viewer", "system:authenticated,system:unauthenticated");

	/* the user-facing roles, flattened (upstream aggregates them) */
	const char *read = "get,list,watch";
	const char *write = "create,delete,deletecollection,patch,update";
	r = cJSON_CreateArray();
	add_rule(r, "-", "configmaps,endpoints,persistentvolumeclaims,pods,pods/log,pods/status,replicationcontrollers,services,services/status,serviceaccounts,events,limitranges,resourcequotas,resourcequotas/status,namespaces,namespaces/status", read);
	add_rule(r, "apps", "deployments,deployments/status,deployments/scale,replicasets,statefulsets,daemonsets", read);
	add_rule(r, "batch", "jobs,jobs/status,cronjobs", read);
	add_rule(r, "policy", "poddisruptionbudgets,poddisruptionbudgets/status", read);
	add_rule(r, "networking.k8s.io", "networkpolicies,ingresses", read);
	put_role(s, "view", r);
	r = cJSON_CreateArray();
	add_rule(r, "-", "configmaps,endpoints,persistentvolumeclaims,pods,pods/log,pods/status,replicationcontrollers,services,services/status,serviceaccounts,events,limitranges,resourcequotas,resourcequotas/status,namespaces,namespaces/status,secrets", read);
	add_rule(r, "-", "configmaps,endpoints,persistentvolumeclaims,pods,replicationcontrollers,services,secrets,serviceaccounts,events", write);
	add_rule(r, "-", "pods/exec,pods/attach,pods/portforward,serviceaccounts/token", "create,get");
	add_rule(r, "apps", "deployments,deployments/scale,replicasets,statefulsets,daemonsets", "create,delete,deletecollection,get,list,patch,update,watch");
	add_rule(r, "batch", "jobs,cronjobs", "create,delete,deletecollection,get,list,patch,update,watch");
	add_rule(r, "policy", "poddisruptionbudgets", "create,delete,deletecollection,get,list,patch,update,watch");
	add_rule(r, "networking.k8s.io", "networkpolicies,ingresses", "create,delete,deletecollection,get,list,patch,update,watch");
	put_role(s, "edit", r);
	r = cJSON_CreateArray();
	add_rule(r, "*", "*", "*");
	put_role(s, "admin", r);
}

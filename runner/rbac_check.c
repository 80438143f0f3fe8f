/*
 * rbac_check: the permission self-check (see rbac_check.h). The needed
 * permissions are exactly rbac/ci-fixer-rbac.yaml's Role; the dangerous ones
 * follow the Kubernetes RBAC good-practices page (k/w
 * concepts/security/rbac-good-practices.md): secrets, workloads other than
 * Jobs, escalate/bind, impersonate, token minting, nodes/proxy, CSR approval,
 * admission webhooks, namespace changes that would weaken Pod Security.
 */
#include "runner/rbac_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/resources.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

static const runner_rbac_item items[] = {
	/* needed: one run's API calls */
	{ 1, "create", "batch", "jobs", NULL, 0, NULL, "create the run's Job" },
	{ 1, "get", "batch", "jobs", NULL, 0, NULL, "read the Job" },
	{ 1, "list", "batch", "jobs", NULL, 0, NULL, "find Jobs to adopt or reap" },
	{ 1, "watch", "batch", "jobs", NULL, 0, NULL, "follow the Job" },
	{ 1, "delete", "batch", "jobs", NULL, 0, NULL, "tear the Job down" },
	{ 1, "get", "", "pods", NULL, 0, NULL, "read the sandbox pod" },
	{ 1, "list", "", "pods", NULL, 0, NULL, "find the Job's pod" },
	{ 1, "watch", "", "pods", NULL, 0, NULL, "wait for the pod by watch" },
	{ 1, "create", "", "pods", "exec", 0, NULL, "exec (WebSocket, since 1.35)" },
	{ 1, "get", "", "pods", "exec", 0, NULL, "exec (WebSocket upgrade)" },
	{ 1, "get", "", "pods", "log", 0, NULL, "read the container log" },
	{ 1, "list", "", "events", NULL, 0, NULL, "quote the pod's events" },
	{ 1, "watch", "", "events", NULL, 0, NULL, "quote the pod's events" },
	/* dangerous: must be denied */
	{ 0, "get", "", "secrets", NULL, 0, NULL, "reads Secrets" },
	{ 0, "list", "", "secrets", NULL, 0, NULL, "list reveals Secret contents" },
	{ 0, "watch", "", "secrets", NULL, 0, NULL, "watch reveals Secret contents" },
	{ 0, "list", "", "secrets", NULL, 1, NULL, "Secrets of every namespace" },
	{ 0, "create", "", "pods", NULL, 0, NULL, "pods outside Jobs (any ServiceAccount)" },
	{ 0, "create", "", "pods", "attach", 0, NULL, "attach to other pods" },
	{ 0, "create", "", "pods", "portforward", 0, NULL, "reach other pods' ports" },
	{ 0, "patch", "", "pods", "ephemeralcontainers", 0, NULL, "inject containers into pods" },
	{ 0, "create", "batch", "jobs", NULL, 0, "kube-system", "Jobs outside the sandbox namespace" },
	{ 0, "create", "batch", "cronjobs", NULL, 0, NULL, "scheduled workloads that outlive runs" },
	{ 0, "create", "apps", "deployments", NULL, 0, NULL, "long-lived workloads" },
	{ 0, "create", "apps", "daemonsets", NULL, 0, NULL, "a pod on every node" },
	{ 0, "create", "", "serviceaccounts", "token", 0, NULL, "mint tokens for any ServiceAccount" },
	{ 0, "get", "", "nodes", NULL, 1, NULL, "node details" },
	{ 0, "get", "", "nodes", "proxy", 1, NULL, "the kubelet API (exec anywhere)" },
	{ 0, "create", "rbac.authorization.k8s.io", "clusterroles", NULL, 1, NULL, "cluster-wide RBAC" },
	{ 0, "create", "rbac.authorization.k8s.io", "clusterrolebindings", NULL, 1, NULL, "cluster-wide RBAC" },
	{ 0, "bind", "rbac.authorization.k8s.io", "clusterroles", NULL, 1, NULL, "grant any ClusterRole" },
	{ 0, "escalate", "rbac.authorization.k8s.io", "clusterroles", NULL, 1, NULL, "raise a role's rights" },
	{ 0, "escalate", "rbac.authorization.k8s.io", "roles", NULL, 0, NULL, "raise a role's rights" },
	{ 0, "create", "rbac.authorization.k8s.io", "rolebindings", NULL, 0, NULL, "grant roles in the namespace" },
	{ 0, "impersonate", "", "users", NULL, 1, NULL, "act as any user" },
	{ 0, "impersonate", "", "groups", NULL, 1, NULL, "act as any group" },
	{ 0, "impersonate", "", "serviceaccounts", NULL, 0, NULL, "act as any ServiceAccount" },
	{ 0, "patch", "", "namespaces", NULL, 1, NULL, "relabel to weaken Pod Security" },
	{ 0, "update", "", "namespaces", NULL, 1, NULL, "relabel to weaken Pod Security" },
	{ 0, "create", "", "persistentvolumes", NULL, 1, NULL, "host storage" },
	{ 0, "update", "certificates.k8s.io", "certificatesigningrequests", "approval", 1, NULL, "approve certificates" },
	{ 0, "create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", NULL, 1, NULL,
	  "rewrite every object" },
	{ 0, "create", "admissionregistration.k8s.io", "validatingwebhookconfigurations", NULL, 1, NULL,
	  "block or observe every write" },
	{ 0, "create", "apiextensions.k8s.io", "customresourcedefinitions", NULL, 1, NULL, "extend the API" },
	{ 0, "*", "*", "*", NULL, 1, NULL, "cluster-admin" },
};

const runner_rbac_item *runner_rbac_items(size_t *n)
{
	*n = sizeof(items) / sizeof(items[0]);
	return items;
}

void runner_rbac_results_free(runner_rbac_result *r, size_t n)
{
	for (size_t i = 0; r && i < n; i++)
		free(r[i].reason);
	free(r);
}

int runner_rbac_verify(runner_rbac_result **out, size_t *n, int *all_ok, kube_client *kc, const char *ns)
{
	size_t cnt;
	const runner_rbac_item *it = runner_rbac_items(&cnt);
	runner_rbac_result *r = calloc(cnt, sizeof(*r));
	int rc = 0;

	*out = NULL;
	*n = 0;
	*all_ok = 0;
	if (!r)
		return err_set(ERR_NOMEM, "out of memory");
	*all_ok = 1;
	for (size_t i = 0; i < cnt; i++) {
		kube_access a = { 0 };

		r[i].item = &it[i];
		snprintf(r[i].ns, sizeof(r[i].ns), "%s", it[i].cluster_scoped ? "" : it[i].other_ns ? it[i].other_ns : ns);
		a.ns = r[i].ns;
		a.verb = it[i].verb;
		a.group = it[i].group;
		a.resource = it[i].resource;
		a.subresource = it[i].subresource;
		if ((rc = kube_access_review(&r[i].allowed, &r[i].reason, kc, &a, clock_mono_ms() + 15000))) {
			err_wrap(rc, "SelfSubjectAccessReview for %s %s%s%s", it[i].verb, it[i].resource,
				 it[i].subresource ? "/" : "", it[i].subresource ? it[i].subresource : "");
			runner_rbac_results_free(r, cnt);
			*all_ok = 0;
			return rc;
		}
		r[i].ok = r[i].allowed == it[i].want_allowed;
		if (!r[i].ok)
			*all_ok = 0;
	}
	*out = r;
	*n = cnt;
	return 0;
}

static void resource_name(char *out, size_t size, const runner_rbac_item *it)
{
	snprintf(out, size, "%s%s%s%s%s", it->resource, it->subresource ? "/" : "", it->subresource ? it->subresource : "",
		 it->group && *it->group ? "." : "", it->group ? it->group : "");
}

int runner_rbac_table(buf *out, const runner_rbac_result *r, size_t n)
{
	int rc = buf_printf(out, "%-6s %-6s %-12s %-52s %-12s %s\n", "RESULT", "WANT", "VERB", "RESOURCE", "NAMESPACE",
			    "WHY");

	for (size_t i = 0; !rc && i < n; i++) {
		char res[128];

		resource_name(res, sizeof(res), r[i].item);
		rc = buf_printf(out, "%-6s %-6s %-12s %-52s %-12s %s%s\n", r[i].ok ? "ok" : "FAIL",
				r[i].item->want_allowed ? "allow" : "deny", r[i].item->verb, res,
				r[i].ns[0] ? r[i].ns : "(cluster)", r[i].item->why,
				r[i].ok ? "" : r[i].item->want_allowed ? " -- NOT ALLOWED" : " -- ALLOWED, must be denied");
	}
	return rc;
}

int runner_rbac_json(buf *out, const runner_rbac_result *r, size_t n, int all_ok, const char *ns)
{
	int rc = buf_printf(out, "{\"ok\":%s,\"namespace\":", all_ok ? "true" : "false");

	if (!rc)
		rc = str_json_quote(out, ns);
	if (!rc)
		rc = buf_append_str(out, ",\"checks\":[");
	for (size_t i = 0; !rc && i < n; i++) {
		rc = buf_printf(out, "%s{\"want\":\"%s\",\"allowed\":%s,\"ok\":%s,\"verb\":", i ? "," : "",
				r[i].item->want_allowed ? "allow" : "deny", r[i].allowed ? "true" : "false",
				r[i].ok ? "true" : "false");
		if (!rc)
			rc = str_json_quote(out, r[i].item->verb);
		if (!rc)
			rc = buf_append_str(out, ",\"group\":");
		if (!rc)
			rc = str_json_quote(out, r[i].item->group);
		if (!rc)
			rc = buf_append_str(out, ",\"resource\":");
		if (!rc)
			rc = str_json_quote(out, r[i].item->resource);
		if (!rc)
			rc = buf_append_str(out, ",\"subresource\":");
		if (!rc)
			rc = str_json_quote(out, r[i].item->subresource ? r[i].item->subresource : "");
		if (!rc)
			rc = buf_append_str(out, ",\"namespace\":");
		if (!rc)
			rc = str_json_quote(out, r[i].ns);
		if (!rc)
			rc = buf_append_str(out, ",\"why\":");
		if (!rc)
			rc = str_json_quote(out, r[i].item->why);
		if (!rc)
			rc = buf_append_str(out, ",\"reason\":");
		if (!rc)
			rc = str_json_quote(out, r[i].reason ? r[i].reason : "");
		if (!rc)
			rc = buf_append_byte(out, '}');
	}
	if (!rc)
		rc = buf_append_str(out, "]}\n");
	return rc;
}

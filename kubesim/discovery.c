/*
 * discovery: /version, /api, /apis, /api/v1, /apis/GROUP/VERSION,
 * /openapi/v3 (+ one document per group version), /healthz, /livez,
 * /readyz and /metrics.
 *
 * Shapes: k/k staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go
 * (APIVersions, APIGroupList, APIResourceList). kubectl first asks for the
 * aggregated discovery (apidiscovery.k8s.io v2) and accepts the plain
 * documents served here (k8s-protocol.md section 10). The OpenAPI v3
 * documents are small: paths with their operations, each carrying
 * x-kubernetes-action and x-kubernetes-group-version-kind, and the
 * fieldValidation query parameter on post/put/patch, which is what kubectl
 * looks for before leaving validation to the server
 * (k/k staging/src/k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubesim/sim.h"
#include "util/buf.h"
#include "util/str.h"

#define KS_K8S_MINOR "33"

static void add_verbs(cJSON *o, const char *const *verbs)
{
	cJSON *a = cJSON_AddArrayToObject(o, "verbs");
	for (; *verbs; verbs++)
		cJSON_AddItemToArray(a, cJSON_CreateString(*verbs));
}

static void add_csv(cJSON *o, const char *key, const char *csv)
{
	if (!csv || !csv[0])
		return;
	cJSON *a = cJSON_AddArrayToObject(o, key);
	char tmp[256];
	snprintf(tmp, sizeof tmp, "%s", csv);
	char *save = NULL;
	for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
		cJSON_AddItemToArray(a, cJSON_CreateString(t));
}

static const char *CRUD_VERBS[] = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch", NULL};
static const char *CREATE_VERBS[] = {"create", NULL};

static cJSON *resource_list(const char *group, const char *version)
{
	cJSON *l = cJSON_CreateObject();
	cJSON_AddStringToObject(l, "kind", "APIResourceList");
	cJSON_AddStringToObject(l, "apiVersion", "v1");
	char gv[128];
	if (group[0])
		snprintf(gv, sizeof gv, "%s/%s", group, version);
	else
		snprintf(gv, sizeof gv, "%s", version);
	cJSON_AddStringToObject(l, "groupVersion", gv);
	cJSON *rs = cJSON_AddArrayToObject(l, "resources");
	int any = 0;
	for (size_t i = 0; i < ks_n_resources; i++) {
		const ks_resource *r = &ks_resources[i];
		if (strcmp(r->group, group) || strcmp(r->version, version))
			continue;
		any = 1;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", r->plural);
		cJSON_AddStringToObject(o, "singularName", r->singular);
		cJSON_AddBoolToObject(o, "namespaced", r->namespaced);
		cJSON_AddStringToObject(o, "kind", r->kind);
		add_verbs(o, (r->flags & KS_RES_STORED) ? CRUD_VERBS : CREATE_VERBS);
		add_csv(o, "shortNames", r->short_names);
		add_csv(o, "categories", r->categories);
		cJSON_AddItemToArray(rs, o);
		char subs[128];
		snprintf(subs, sizeof subs, "%s", r->subresources);
		char *save = NULL;
		for (char *t = strtok_r(subs, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			cJSON *s = cJSON_CreateObject();
			char n[128];
			snprintf(n, sizeof n, "%s/%s", r->plural, t);
			cJSON_AddStringToObject(s, "name", n);
			cJSON_AddStringToObject(s, "singularName", "");
			cJSON_AddBoolToObject(s, "namespaced", r->namespaced);
			if (strcmp(t, "token") == 0) {
				cJSON_AddStringToObject(s, "group", "authentication.k8s.io");
				cJSON_AddStringToObject(s, "version", "v1");
				cJSON_AddStringToObject(s, "kind", "TokenRequest");
				add_verbs(s, CREATE_VERBS);
			} else if (strcmp(t, "exec") == 0) {
				cJSON_AddStringToObject(s, "kind", "PodExecOptions");
				add_verbs(s, (const char *[]){"create", "get", NULL});
			} else if (strcmp(t, "log") == 0) {
				cJSON_AddStringToObject(s, "kind", "Pod");
				add_verbs(s, (const char *[]){"get", NULL});
			} else if (strcmp(t, "finalize") == 0) {
				cJSON_AddStringToObject(s, "kind", r->kind);
				add_verbs(s, (const char *[]){"update", NULL});
			} else if (strcmp(t, "scale") == 0) {
				cJSON_AddStringToObject(s, "group", "autoscaling");
				cJSON_AddStringToObject(s, "version", "v1");
				cJSON_AddStringToObject(s, "kind", "Scale");
				add_verbs(s, (const char *[]){"get", "patch", "update", NULL});
			} else {
				cJSON_AddStringToObject(s, "kind", r->kind);
				add_verbs(s, (const char *[]){"get", "patch", "update", NULL});
			}
			cJSON_AddItemToArray(rs, s);
		}
	}
	if (!any) {
		cJSON_Delete(l);
		return NULL;
	}
	return l;
}

/* Distinct group/versions in table order (core first). */
static int group_versions(const char *groups[], int max)
{
	int n = 0;
	for (size_t i = 0; i < ks_n_resources && n < max; i++) {
		int seen = 0;
		for (int j = 0; j < n; j++)
			if (strcmp(groups[j], ks_resources[i].group) == 0)
				seen = 1;
		if (!seen)
			groups[n++] = ks_resources[i].group;
	}
	return n;
}

static cJSON *group_list(void)
{
	cJSON *l = cJSON_CreateObject();
	cJSON_AddStringToObject(l, "kind", "APIGroupList");
	cJSON_AddStringToObject(l, "apiVersion", "v1");
	cJSON *gs = cJSON_AddArrayToObject(l, "groups");
	const char *groups[32];
	int n = group_versions(groups, 32);
	for (int i = 0; i < n; i++) {
		if (!groups[i][0])
			continue;
		cJSON *g = cJSON_CreateObject();
		cJSON_AddStringToObject(g, "name", groups[i]);
		cJSON *vs = cJSON_AddArrayToObject(g, "versions");
		char gv[128];
		snprintf(gv, sizeof gv, "%s/v1", groups[i]);
		cJSON *v = cJSON_CreateObject();
		cJSON_AddStringToObject(v, "groupVersion", gv);
		cJSON_AddStringToObject(v, "version", "v1");
		cJSON_AddItemToArray(vs, v);
		cJSON_AddItemToObject(g, "preferredVersion", cJSON_Duplicate(v, 1));
		cJSON_AddItemToArray(gs, g);
	}
	return l;
}

/* ---- OpenAPI v3 ---- */

static cJSON *param(const char *name, const char *in, int required)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "name", name);
	cJSON_AddStringToObject(p, "in", in);
	if (required)
		cJSON_AddTrueToObject(p, "required");
	cJSON *s = cJSON_AddObjectToObject(p, "schema");
	cJSON_AddStringToObject(s, "type", "string");
	cJSON_AddTrueToObject(s, "uniqueItems");
	return p;
}

static cJSON *operation(const ks_resource *r, const char *action, int with_fv, const char *schema_ref)
{
	cJSON *op = cJSON_CreateObject();
	char id[160];
	snprintf(id, sizeof id, "%s%s", action, r->kind);
	cJSON_AddStringToObject(op, "operationId", id);
	cJSON *params = cJSON_AddArrayToObject(op, "parameters");
	if (with_fv) {
		cJSON_AddItemToArray(params, param("dryRun", "query", 0));
		cJSON_AddItemToArray(params, param("fieldManager", "query", 0));
		cJSON_AddItemToArray(params, param("fieldValidation", "query", 0));
	}
	if (schema_ref && with_fv) {
		cJSON *rb = cJSON_AddObjectToObject(op, "requestBody");
		cJSON *ct = cJSON_AddObjectToObject(rb, "content");
		/* only application/json: advertising the patch types makes kubectl
		 * 1.30+ compute strategic merge patches from these (schema-less)
		 * documents and warn; without them it uses its compiled-in types */
		cJSON *js = cJSON_AddObjectToObject(ct, "application/json");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(js, "schema"), "$ref", schema_ref);
		cJSON_AddTrueToObject(rb, "required");
	}
	cJSON *resp = cJSON_AddObjectToObject(op, "responses");
	cJSON *ok = cJSON_AddObjectToObject(resp, "200");
	cJSON_AddStringToObject(ok, "description", "OK");
	if (schema_ref) {
		cJSON *ct = cJSON_AddObjectToObject(ok, "content");
		cJSON *js = cJSON_AddObjectToObject(ct, "application/json");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(js, "schema"), "$ref", schema_ref);
	}
	cJSON_AddStringToObject(op, "x-kubernetes-action", action);
	cJSON *gvk = cJSON_AddObjectToObject(op, "x-kubernetes-group-version-kind");
	cJSON_AddStringToObject(gvk, "group", r->group);
	cJSON_AddStringToObject(gvk, "kind", r->kind);
	cJSON_AddStringToObject(gvk, "version", r->version);
	return op;
}

static void schema_name(char *out, size_t n, const ks_resource *r)
{
	/* io.k8s.api.<group short>.<version>.<Kind> as upstream names them */
	char g[64];
	if (!r->group[0])
		snprintf(g, sizeof g, "core");
	else {
		snprintf(g, sizeof g, "%s", r->group);
		char *dot = strchr(g, '.');
		if (dot && strcmp(r->group, "rbac.authorization.k8s.io") == 0)
			snprintf(g, sizeof g, "rbac");
		else if (dot)
			*dot = 0;
	}
	snprintf(out, n, "io.k8s.api.%s.%s.%s", g, r->version, r->kind);
}

static cJSON *openapi_doc(const char *group, const char *version)
{
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "openapi", "3.0.0");
	cJSON *info = cJSON_AddObjectToObject(d, "info");
	cJSON_AddStringToObject(info, "title", "Kubernetes");
	cJSON_AddStringToObject(info, "version", "v1." KS_K8S_MINOR ".0");
	cJSON *paths = cJSON_AddObjectToObject(d, "paths");
	cJSON *comps = cJSON_AddObjectToObject(d, "components");
	cJSON *schemas = cJSON_AddObjectToObject(comps, "schemas");
	int any = 0;
	for (size_t i = 0; i < ks_n_resources; i++) {
		const ks_resource *r = &ks_resources[i];
		if (strcmp(r->group, group) || strcmp(r->version, version))
			continue;
		any = 1;
		char prefix[128], coll[300], item[320], sname[160], ref[200];
		if (group[0])
			snprintf(prefix, sizeof prefix, "/apis/%s/%s", group, version);
		else
			snprintf(prefix, sizeof prefix, "/api/%s", version);
		if (r->namespaced)
			snprintf(coll, sizeof coll, "%s/namespaces/{namespace}/%s", prefix, r->plural);
		else
			snprintf(coll, sizeof coll, "%s/%s", prefix, r->plural);
		snprintf(item, sizeof item, "%s/{name}", coll);
		schema_name(sname, sizeof sname, r);
		snprintf(ref, sizeof ref, "#/components/schemas/%s", sname);
		cJSON *pc = cJSON_AddObjectToObject(paths, coll);
		cJSON_AddItemToObject(pc, "post", operation(r, "post", 1, ref));
		if (r->flags & KS_RES_STORED) {
			cJSON_AddItemToObject(pc, "get", operation(r, "list", 0, NULL));
			cJSON_AddItemToObject(pc, "delete", operation(r, "deletecollection", 0, NULL));
			cJSON *pi = cJSON_AddObjectToObject(paths, item);
			cJSON_AddItemToObject(pi, "get", operation(r, "get", 0, ref));
			cJSON_AddItemToObject(pi, "put", operation(r, "put", 1, ref));
			cJSON_AddItemToObject(pi, "patch", operation(r, "patch", 1, ref));
			cJSON_AddItemToObject(pi, "delete", operation(r, "delete", 0, NULL));
			cJSON *pp = cJSON_CreateArray();
			cJSON_AddItemToArray(pp, param("name", "path", 1));
			if (r->namespaced)
				cJSON_AddItemToArray(pp, param("namespace", "path", 1));
			cJSON_AddItemToObject(pi, "parameters", pp);
		}
		if (r->namespaced) {
			cJSON *pp = cJSON_CreateArray();
			cJSON_AddItemToArray(pp, param("namespace", "path", 1));
			cJSON_AddItemToObject(pc, "parameters", pp);
		}
		cJSON *sc = cJSON_AddObjectToObject(schemas, sname);
		cJSON_AddStringToObject(sc, "description", r->kind);
		cJSON_AddStringToObject(sc, "type", "object");
		cJSON *props = cJSON_AddObjectToObject(sc, "properties");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(props, "apiVersion"), "type", "string");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(props, "kind"), "type", "string");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(props, "metadata"), "type", "object");
		cJSON *gvks = cJSON_AddArrayToObject(sc, "x-kubernetes-group-version-kind");
		cJSON *gvk = cJSON_CreateObject();
		cJSON_AddStringToObject(gvk, "group", r->group);
		cJSON_AddStringToObject(gvk, "kind", r->kind);
		cJSON_AddStringToObject(gvk, "version", r->version);
		cJSON_AddItemToArray(gvks, gvk);
	}
	if (!any) {
		cJSON_Delete(d);
		return NULL;
	}
	return d;
}

static cJSON *openapi_root(void)
{
	cJSON *d = cJSON_CreateObject();
	cJSON *paths = cJSON_AddObjectToObject(d, "paths");
	const char *groups[32];
	int n = group_versions(groups, 32);
	for (int i = 0; i < n; i++) {
		char key[128], url[200];
		if (groups[i][0])
			snprintf(key, sizeof key, "apis/%s/v1", groups[i]);
		else
			snprintf(key, sizeof key, "api/v1");
		snprintf(url, sizeof url, "/openapi/v3/%s?hash=KS%02d", key, i + 1);
		cJSON_AddStringToObject(cJSON_AddObjectToObject(paths, key), "serverRelativeURL", url);
	}
	return d;
}

int ks_discovery_handle(ks_req *r)
{
	const char *u = r->url;
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
		if (strcmp(u, "/api") == 0 || strcmp(u, "/apis") == 0 || strcmp(u, "/version") == 0) {
			ks_reply_status(r, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource", NULL);
			return 1;
		}
		return 0;
	}
	cJSON *o = NULL;
	if (strcmp(u, "/version") == 0 || strcmp(u, "/version/") == 0) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "major", "1");
		cJSON_AddStringToObject(o, "minor", KS_K8S_MINOR);
		cJSON_AddStringToObject(o, "emulationMajor", "1");
		cJSON_AddStringToObject(o, "emulationMinor", KS_K8S_MINOR);
		cJSON_AddStringToObject(o, "minCompatibilityMajor", "1");
		cJSON_AddStringToObject(o, "minCompatibilityMinor", "32");
		cJSON_AddStringToObject(o, "gitVersion", "v1." KS_K8S_MINOR ".0-kubesim");
		cJSON_AddStringToObject(o, "gitCommit", "0000000000000000000000000000000000000000");
		cJSON_AddStringToObject(o, "gitTreeState", "clean");
		cJSON_AddStringToObject(o, "buildDate", "2026-01-01T00:00:00Z");
		cJSON_AddStringToObject(o, "goVersion", "go1.24.0");
		cJSON_AddStringToObject(o, "compiler", "gc");
		cJSON_AddStringToObject(o, "platform", "linux/amd64");
	} else if (strcmp(u, "/api") == 0 || strcmp(u, "/api/") == 0) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "kind", "APIVersions");
		cJSON *vs = cJSON_AddArrayToObject(o, "versions");
		cJSON_AddItemToArray(vs, cJSON_CreateString("v1"));
		cJSON *sa = cJSON_AddArrayToObject(o, "serverAddressByClientCIDRs");
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "clientCIDR", "0.0.0.0/0");
		const char *host = ks_req_header(r, "Host");
		cJSON_AddStringToObject(e, "serverAddress", host ? host : "127.0.0.1");
		cJSON_AddItemToArray(sa, e);
	} else if (strcmp(u, "/apis") == 0 || strcmp(u, "/apis/") == 0) {
		o = group_list();
	} else if (strncmp(u, "/api/", 5) == 0) {
		o = resource_list("", u + 5);
	} else if (strncmp(u, "/apis/", 6) == 0) {
		char g[128], v[32];
		const char *slash = strchr(u + 6, '/');
		if (slash && strlen(slash + 1) < sizeof v && (size_t)(slash - (u + 6)) < sizeof g && !strchr(slash + 1, '/')) {
			snprintf(g, sizeof g, "%.*s", (int)(slash - (u + 6)), u + 6);
			snprintf(v, sizeof v, "%s", slash + 1);
			o = resource_list(g, v);
		} else if (!slash) {
			/* /apis/GROUP: the APIGroup */
			cJSON *gl = group_list();
			cJSON *g2;
			cJSON_ArrayForEach(g2, cJSON_GetObjectItemCaseSensitive(gl, "groups"))
			{
				if (str_eq(ks_jstr(g2, "name"), u + 6)) {
					o = cJSON_Duplicate(g2, 1);
					cJSON_AddStringToObject(o, "kind", "APIGroup");
					cJSON_AddStringToObject(o, "apiVersion", "v1");
				}
			}
			cJSON_Delete(gl);
		}
	} else if (strcmp(u, "/openapi/v3") == 0 || strcmp(u, "/openapi/v3/") == 0) {
		o = openapi_root();
	} else if (strncmp(u, "/openapi/v3/api/", 16) == 0) {
		o = openapi_doc("", u + 16);
	} else if (strncmp(u, "/openapi/v3/apis/", 17) == 0) {
		char g[128], v[32];
		const char *slash = strchr(u + 17, '/');
		if (slash && strlen(slash + 1) < sizeof v && (size_t)(slash - (u + 17)) < sizeof g) {
			snprintf(g, sizeof g, "%.*s", (int)(slash - (u + 17)), u + 17);
			snprintf(v, sizeof v, "%s", slash + 1);
			o = openapi_doc(g, v);
		}
	} else if (strcmp(u, "/openapi/v2") == 0) {
		/* client-go's OpenAPISchema() asks only for the gnostic protobuf
		 * form (application/com.github.proto-openapi.spec.v2@v1.0+protobuf)
		 * and kubectl 1.27's apply needs it to exist; kubesim publishes its
		 * schemas through OpenAPI v3, so v2 is an empty Document:
		 * swagger (1) = "2.0", info (2) = {title (1), version (2)}
		 * (github.com/google/gnostic-models openapiv2/OpenAPIv2.proto). */
		static const char doc[] = "\x0a\x03" "2.0" "\x12\x15" "\x0a\x0a" "Kubernetes" "\x12\x07" "v1." KS_K8S_MINOR ".0";
		ks_reply(r, 200, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", doc, sizeof doc - 1);
		return 1;
	} else if (strcmp(u, "/healthz") == 0 || strcmp(u, "/livez") == 0 || strcmp(u, "/readyz") == 0) {
		ks_reply(r, 200, "text/plain; charset=utf-8", "ok", 2);
		return 1;
	} else if (strcmp(u, "/metrics") == 0) {
		char *m = ks_metrics_render(r->sim);
		if (!m)
			return 0;
		ks_reply(r, 200, "text/plain; version=0.0.4; charset=utf-8", m, strlen(m));
		free(m);
		return 1;
	}
	if (!o)
		return 0;
	ks_reply_json(r, 200, o);
	cJSON_Delete(o);
	return 1;
}

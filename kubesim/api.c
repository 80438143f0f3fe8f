/*
 * api: kubesim's REST API. One entry point, ks_api_handle, runs each
 * request through the same steps a kube-apiserver does
 * (k/k staging/src/k8s.io/apiserver/pkg/server/config.go
 * DefaultBuildHandlerChain): authentication, impersonation, (fault
 * injection), authorization, then the handler for the verb: get, list,
 * watch, create, update, patch, delete, deletecollection, and the
 * subresources status, log, exec, token. Objects are cJSON in the store;
 * every write happens under the store lock, and kubelet calls are queued
 * (ks_action_*) to run after it is released.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/rand.h>

#include "kubesim/faults.h"
#include "kubesim/inflight.h"
#include "kubesim/patch.h"
#include "kubesim/proto.h"
#include "kubesim/selector.h"
#include "kubesim/server.h"
#include "kubesim/sim.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/str.h"

#define WATCH_BOOKMARK_MS 30000
#define WATCH_IDLE_WAKE_MS 5000 /* longest sleep of an idle watch */

/* ---- small helpers ---- */

const char *ks_jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *ks_meta(const cJSON *o, const char *key)
{
	return ks_jstr(cJSON_GetObjectItemCaseSensitive(o, "metadata"), key);
}

cJSON *ks_obj_child(cJSON *o, const char *key)
{
	cJSON *c = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsObject(c)) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, key);
		c = cJSON_AddObjectToObject(o, key);
	}
	return c;
}

static void set_str(cJSON *o, const char *key, const char *v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	cJSON_AddStringToObject(o, key, v);
}

void ks_uid_new(char out[37])
{
	unsigned char b[16];
	if (RAND_bytes(b, sizeof b) != 1) {
		for (int i = 0; i < 16; i++)
			b[i] = (unsigned char)rand();
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
		 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
}

void ks_now(char out[32]) { clock_wall_rfc3339(out, 32, 0); }

/* generateName suffix: 5 characters from upstream's alphabet
 * (k/k staging/src/k8s.io/apimachinery/pkg/util/rand/rand.go: no vowels) */
static void random_suffix(char out[6])
{
	static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
	unsigned char b[5];
	RAND_bytes(b, sizeof b);
	for (int i = 0; i < 5; i++)
		out[i] = alnum[b[i] % (sizeof alnum - 1)];
	out[5] = 0;
}

void ks_obj_init_meta(cJSON *obj, const char *ns)
{
	cJSON *m = ks_obj_child(obj, "metadata");
	const char *name = ks_jstr(m, "name");
	const char *gen = ks_jstr(m, "generateName");
	if ((!name || !name[0]) && gen && gen[0]) {
		char suf[6], n[300];
		random_suffix(suf);
		/* upstream trims the base to 58 characters (names.go maxGeneratedNameLength) */
		snprintf(n, sizeof n, "%.58s%s", gen, suf);
		set_str(m, "name", n);
	}
	if (ns && ns[0])
		set_str(m, "namespace", ns);
	else
		cJSON_DeleteItemFromObjectCaseSensitive(m, "namespace");
	char uid[37], now[32];
	ks_uid_new(uid);
	ks_now(now);
	set_str(m, "uid", uid);
	set_str(m, "creationTimestamp", now);
	cJSON_DeleteItemFromObjectCaseSensitive(m, "deletionTimestamp");
	cJSON_DeleteItemFromObjectCaseSensitive(m, "deletionGracePeriodSeconds");
	cJSON_DeleteItemFromObjectCaseSensitive(m, "resourceVersion");
	cJSON_DeleteItemFromObjectCaseSensitive(m, "selfLink");
	cJSON_DeleteItemFromObjectCaseSensitive(m, "managedFields");
}

static const ks_resource *RES(int i) { return &ks_resources[i]; }

static void qualified(char *out, size_t n, int res) { ks_resource_qualified(out, n, RES(res)); }

static cJSON *details_new(const char *name, const char *group, const char *kind)
{
	cJSON *d = cJSON_CreateObject();
	if (name && name[0])
		cJSON_AddStringToObject(d, "name", name);
	if (group && group[0])
		cJSON_AddStringToObject(d, "group", group);
	if (kind && kind[0])
		cJSON_AddStringToObject(d, "kind", kind);
	return d;
}

/* k/k staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go NewNotFound */
static void reply_notfound(ks_req *r, int res, const char *name)
{
	char q[128], msg[512];
	qualified(q, sizeof q, res);
	snprintf(msg, sizeof msg, "%s \"%s\" not found", q, name);
	ks_reply_status(r, 404, "NotFound", msg, details_new(name, RES(res)->group, RES(res)->plural));
}

static void reply_alreadyexists(ks_req *r, int res, const char *name)
{
	char q[128], msg[512];
	qualified(q, sizeof q, res);
	snprintf(msg, sizeof msg, "%s \"%s\" already exists", q, name);
	ks_reply_status(r, 409, "AlreadyExists", msg, details_new(name, RES(res)->group, RES(res)->plural));
}

static void reply_conflict(ks_req *r, int res, const char *name, const char *why)
{
	char q[128], msg[768];
	qualified(q, sizeof q, res);
	snprintf(msg, sizeof msg, "Operation cannot be fulfilled on %s \"%s\": %s", q, name, why);
	ks_reply_status(r, 409, "Conflict", msg, details_new(name, RES(res)->group, RES(res)->plural));
}

static void reply_badrequest(ks_req *r, const char *msg)
{
	ks_reply_status(r, 400, "BadRequest", msg, NULL);
}

static void reply_notfound_generic(ks_req *r)
{
	ks_reply_status(r, 404, "NotFound", "the server could not find the requested resource", cJSON_CreateObject());
}

/* k/k staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go NewInvalid */
static void reply_invalid(ks_req *r, int res, const char *name, const ks_causes *cs)
{
	char kind[160];
	const ks_resource *rr = RES(res);
	if (rr->group[0])
		snprintf(kind, sizeof kind, "%s.%s", rr->kind, rr->group);
	else
		snprintf(kind, sizeof kind, "%s", rr->kind);
	buf m = BUF_INIT(64 * 1024);
	buf_printf(&m, "%s \"%s\" is invalid: ", kind, name ? name : "");
	if (cs->n > 1)
		buf_append_str(&m, "[");
	cJSON *d = details_new(name, rr->group, rr->kind);
	cJSON *causes = cJSON_AddArrayToObject(d, "causes");
	for (size_t i = 0; i < cs->n; i++) {
		if (i)
			buf_append_str(&m, ", ");
		buf_printf(&m, "%s: %s", cs->c[i].field, cs->c[i].message);
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "reason", cs->c[i].reason);
		cJSON_AddStringToObject(c, "message", cs->c[i].message);
		cJSON_AddStringToObject(c, "field", cs->c[i].field);
		cJSON_AddItemToArray(causes, c);
	}
	if (cs->n > 1)
		buf_append_str(&m, "]");
	ks_reply_status(r, 422, "Invalid", buf_cstr(&m), d);
	buf_free(&m);
}

static void reply_forbidden(ks_req *r, int res, const char *name, const char *why)
{
	char q[128];
	buf m = BUF_INIT(8192);
	qualified(q, sizeof q, res);
	if (name && name[0])
		buf_printf(&m, "%s \"%s\" is forbidden: %s", q, name, why);
	else
		buf_printf(&m, "%s is forbidden: %s", q, why);
	ks_reply_status(r, 403, "Forbidden", buf_cstr(&m), details_new(name, RES(res)->group, RES(res)->plural));
	buf_free(&m);
}

static void reply_internal_err(ks_req *r, int res, const char *name, int rc)
{
	switch (rc) {
	case ERR_NOTFOUND:
		reply_notfound(r, res, name);
		return;
	case ERR_CONFLICT:
		reply_alreadyexists(r, res, name);
		return;
	case ERR_FORBIDDEN:
		reply_forbidden(r, res, name, err_msg());
		return;
	default: {
		char m[600];
		snprintf(m, sizeof m, "Internal error occurred: %s", err_msg());
		ks_reply_status(r, 500, "InternalError", m, NULL);
	}
	}
}

void ks_sim_lock(ks_sim *s) { ks_store_lock(s->store); }
void ks_sim_unlock(ks_sim *s) { ks_store_unlock(s->store); }

/* ---- path parsing (k/k staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go) ---- */

static int copy_seg(char *dst, size_t n, const char *s, size_t len)
{
	if (len >= n)
		return -1;
	memcpy(dst, s, len);
	dst[len] = 0;
	return 0;
}

int ks_api_parse_path(ks_req *r)
{
	const char *segs[8];
	size_t lens[8];
	int n = 0;
	const char *p = r->url;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (n == 8)
			return 0;
		segs[n] = p;
		lens[n] = l;
		n++;
		p += l;
	}
	int i = 0;
	if (n >= 2 && lens[0] == 3 && strncmp(segs[0], "api", 3) == 0) {
		if (copy_seg(r->version, sizeof r->version, segs[1], lens[1]))
			return 0;
		r->group[0] = 0;
		i = 2;
	} else if (n >= 3 && lens[0] == 4 && strncmp(segs[0], "apis", 4) == 0) {
		if (copy_seg(r->group, sizeof r->group, segs[1], lens[1]) ||
		    copy_seg(r->version, sizeof r->version, segs[2], lens[2]))
			return 0;
		i = 3;
	} else {
		return 0;
	}
	if (i >= n)
		return 0;
	const char *rest[6];
	size_t rl[6];
	int m = 0;
	for (; i < n && m < 6; i++, m++) {
		rest[m] = segs[i];
		rl[m] = lens[i];
	}
	if (i < n)
		return 0;
	int k = 0;
	if (rl[0] == 10 && strncmp(rest[0], "namespaces", 10) == 0 && m >= 2) {
		if (copy_seg(r->ns, sizeof r->ns, rest[1], rl[1]))
			return 0;
		if (m >= 3 && !((rl[2] == 6 && strncmp(rest[2], "status", 6) == 0) ||
				(rl[2] == 8 && strncmp(rest[2], "finalize", 8) == 0))) {
			k = 2;
		} else {
			/* the namespace object itself */
			strcpy(r->plural, "namespaces");
			strcpy(r->name, r->ns);
			r->ns[0] = 0;
			if (m >= 3 && copy_seg(r->sub, sizeof r->sub, rest[2], rl[2]))
				return 0;
			if (m > 3)
				return 0;
			goto verb;
		}
	}
	if (k >= m || copy_seg(r->plural, sizeof r->plural, rest[k], rl[k]))
		return 0;
	if (k + 1 < m && copy_seg(r->name, sizeof r->name, rest[k + 1], rl[k + 1]))
		return 0;
	if (k + 2 < m && copy_seg(r->sub, sizeof r->sub, rest[k + 2], rl[k + 2]))
		return 0;
	if (k + 3 < m)
		return 0;
verb:
	r->is_resource = 1;
	r->res = ks_resource_find(r->group, r->version, r->plural);
	const char *meth = r->method;
	if (strcmp(meth, "GET") == 0 || strcmp(meth, "HEAD") == 0) {
		if (r->name[0])
			strcpy(r->verb, "get");
		else if (ks_req_bool(r, "watch"))
			strcpy(r->verb, "watch");
		else
			strcpy(r->verb, "list");
	} else if (strcmp(meth, "POST") == 0) {
		strcpy(r->verb, "create");
	} else if (strcmp(meth, "PUT") == 0) {
		strcpy(r->verb, "update");
	} else if (strcmp(meth, "PATCH") == 0) {
		strcpy(r->verb, "patch");
	} else if (strcmp(meth, "DELETE") == 0) {
		strcpy(r->verb, r->name[0] ? "delete" : "deletecollection");
	} else {
		snprintf(r->verb, sizeof r->verb, "%s", "unknown");
	}
	return 1;
}

/* ---- serialization ---- */

static void api_version_of(char *out, size_t n, int res) { ks_resource_api_version(out, n, RES(res)); }

static void ensure_kind(cJSON *obj, int res)
{
	char av[96];
	api_version_of(av, sizeof av, res);
	if (!ks_jstr(obj, "kind"))
		cJSON_AddStringToObject(obj, "kind", RES(res)->kind);
	if (!ks_jstr(obj, "apiVersion"))
		cJSON_AddStringToObject(obj, "apiVersion", av);
}

static int64_t now_unix(void) { return clock_wall_ms() / 1000; }

/* ---- body decoding ---- */

static int body_content_ok(ks_req *r, int patch)
{
	const char *ct = ks_req_header(r, "Content-Type");
	if (!ct || !ct[0])
		return !patch;
	char base[128];
	size_t l = strcspn(ct, ";");
	if (l >= sizeof base)
		return 0;
	memcpy(base, ct, l);
	base[l] = 0;
	while (l && base[l - 1] == ' ')
		base[--l] = 0;
	if (patch)
		return strcasecmp(base, "application/json-patch+json") == 0 ||
		       strcasecmp(base, "application/merge-patch+json") == 0 ||
		       strcasecmp(base, "application/strategic-merge-patch+json") == 0;
	return strcasecmp(base, "application/json") == 0 || strcasecmp(base, "*/*") == 0 ||
	       strcasecmp(base, "application/vnd.kubernetes.protobuf") == 0;
}

static int is_proto(ks_req *r)
{
	const char *ct = ks_req_header(r, "Content-Type");
	return ct && strncasecmp(ct, "application/vnd.kubernetes.protobuf", 35) == 0;
}

/* k/k staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go: 415 with the media types */
static void reply_unsupported_media(ks_req *r, int patch)
{
	const char *ct = ks_req_header(r, "Content-Type");
	char msg[512];
	if (patch)
		snprintf(msg, sizeof msg,
			 "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json");
	else
		snprintf(msg, sizeof msg,
			 "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf");
	(void)ct;
	ks_reply_status(r, 415, "UnsupportedMediaType", msg, NULL);
}

/* Parse the body as a JSON object; replies 400 and returns NULL on error.
 * Rejects duplicate fields only under fieldValidation=Strict, as upstream. */
static cJSON *parse_body(ks_req *r, int want_object)
{
	if (is_proto(r)) {
		cJSON *po = NULL;
		if (ks_proto_decode(&po, r->body, r->body_len)) {
			ks_reply_status(r, 415, "UnsupportedMediaType", err_msg(), NULL);
			return NULL;
		}
		return po;
	}
	if (r->body_len == 0) {
		reply_badrequest(r, "Object 'Kind' is missing in ''");
		return NULL;
	}
	const char *end = NULL;
	cJSON *o = cJSON_ParseWithLengthOpts(r->body, r->body_len, &end, 0);
	if (!o) {
		char m[300];
		size_t off = end ? (size_t)(end - r->body) : 0;
		snprintf(m, sizeof m, "json: cannot unmarshal the request body: invalid JSON near offset %zu", off);
		reply_badrequest(r, m);
		return NULL;
	}
	/* trailing garbage after the value */
	while (end && (size_t)(end - r->body) < r->body_len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
		end++;
	if (end && (size_t)(end - r->body) < r->body_len) {
		cJSON_Delete(o);
		reply_badrequest(r, "json: cannot unmarshal the request body: invalid character after top-level value");
		return NULL;
	}
	if (want_object && !cJSON_IsObject(o)) {
		cJSON_Delete(o);
		reply_badrequest(r, "json: cannot unmarshal the request body into an object");
		return NULL;
	}
	return o;
}

static int strict(ks_req *r)
{
	const char *fv = ks_req_query(r, "fieldValidation");
	return fv && strcmp(fv, "Strict") == 0;
}

static int has_dup_keys(const cJSON *o, char *path, size_t n, const char *prefix)
{
	if (!cJSON_IsObject(o) && !cJSON_IsArray(o))
		return 0;
	const cJSON *a;
	int i = 0;
	cJSON_ArrayForEach(a, o)
	{
		char p[256];
		if (cJSON_IsObject(o)) {
			for (const cJSON *b = a->next; b; b = b->next)
				if (strcmp(a->string, b->string) == 0) {
					snprintf(path, n, "%s%s%s", prefix, prefix[0] ? "." : "", a->string);
					return 1;
				}
			snprintf(p, sizeof p, "%s%s%s", prefix, prefix[0] ? "." : "", a->string);
		} else {
			snprintf(p, sizeof p, "%s[%d]", prefix, i);
		}
		if (has_dup_keys(a, path, n, p))
			return 1;
		i++;
	}
	return 0;
}

/* k/k staging/src/k8s.io/apimachinery/pkg/runtime/serializer/json strict errors:
 * "strict decoding error: unknown field \"spec.foo\"" wrapped by the handler
 * as "KIND in version \"v1\" cannot be handled as a KIND: ..." */
static int check_strict(ks_req *r, int res, const cJSON *obj)
{
	char f[256];
	const char *what = NULL;
	if (has_dup_keys(obj, f, sizeof f, ""))
		what = "duplicate field";
	else if (strict(r) && ks_unknown_field(f, sizeof f, RES(res), obj))
		what = "unknown field";
	if (!what)
		return 0;
	if (!strict(r)) {
		/* Warn (the default for kubectl is Strict; others get a warning) */
		snprintf(r->warning, sizeof r->warning, "%s \"%s\"", what, f);
		return 0;
	}
	char m[600];
	snprintf(m, sizeof m, "%s in version \"%s\" cannot be handled as a %s: strict decoding error: %s \"%s\"",
		 RES(res)->kind, RES(res)->version, RES(res)->kind, what, f);
	reply_badrequest(r, m);
	return -1;
}

/* ---- defaults (k/k pkg/apis/core/v1/defaults.go, pkg/apis/batch/v1/defaults.go) ---- */

static void default_int(cJSON *o, const char *k, double v)
{
	if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, k))) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, k);
		cJSON_AddNumberToObject(o, k, v);
	}
}

static void default_str(cJSON *o, const char *k, const char *v)
{
	if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, k))) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, k);
		cJSON_AddStringToObject(o, k, v);
	}
}

static void default_podspec(cJSON *spec, const char *restart)
{
	if (!cJSON_IsObject(spec))
		return;
	default_str(spec, "restartPolicy", restart);
	default_int(spec, "terminationGracePeriodSeconds", 30);
	default_str(spec, "dnsPolicy", "ClusterFirst");
	default_str(spec, "schedulerName", "default-scheduler");
	if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(spec, "securityContext")))
		ks_obj_child(spec, "securityContext");
	cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
	{
		if (!cJSON_IsObject(c))
			continue;
		default_str(c, "terminationMessagePath", "/dev/termination-log");
		default_str(c, "terminationMessagePolicy", "File");
		const char *img = ks_jstr(c, "image");
		int latest = !img || !strchr(img, ':') || str_has_suffix(img, ":latest");
		if (img && strchr(img, '@'))
			latest = 0;
		default_str(c, "imagePullPolicy", latest ? "Always" : "IfNotPresent");
		if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(c, "resources")))
			ks_obj_child(c, "resources");
	}
}

static void default_pod(cJSON *pod)
{
	cJSON *spec = ks_obj_child(pod, "spec");
	default_podspec(spec, "Always");
	const char *sa = ks_jstr(spec, "serviceAccountName");
	if (!sa)
		sa = ks_jstr(spec, "serviceAccount");
	if (!sa)
		sa = "default";
	char sab[256];
	snprintf(sab, sizeof sab, "%s", sa);
	default_str(spec, "serviceAccountName", sab);
	default_str(spec, "serviceAccount", sab);
	default_int(spec, "priority", 0);
	if (!cJSON_GetObjectItemCaseSensitive(spec, "enableServiceLinks"))
		cJSON_AddTrueToObject(spec, "enableServiceLinks");
	default_str(spec, "preemptionPolicy", "PreemptLowerPriority");
}

static void default_job(cJSON *job, const char *uid)
{
	cJSON *spec = ks_obj_child(job, "spec");
	default_int(spec, "parallelism", 1);
	default_int(spec, "completions", 1);
	default_int(spec, "backoffLimit", 6);
	default_str(spec, "completionMode", "NonIndexed");
	if (!cJSON_GetObjectItemCaseSensitive(spec, "suspend"))
		cJSON_AddFalseToObject(spec, "suspend");
	default_str(spec, "podReplacementPolicy", "TerminatingOrFailed");
	cJSON *tmpl = ks_obj_child(spec, "template");
	cJSON *tm = ks_obj_child(tmpl, "metadata");
	cJSON *labels = ks_obj_child(tm, "labels");
	const char *name = ks_meta(job, "name");
	/* k/k pkg/registry/batch/job/strategy.go generateSelector */
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "manualSelector"))) {
		set_str(labels, "batch.kubernetes.io/controller-uid", uid);
		set_str(labels, "batch.kubernetes.io/job-name", name ? name : "");
		set_str(labels, "controller-uid", uid);
		set_str(labels, "job-name", name ? name : "");
		cJSON *sel = cJSON_CreateObject();
		cJSON *ml = cJSON_AddObjectToObject(sel, "matchLabels");
		cJSON_AddStringToObject(ml, "batch.kubernetes.io/controller-uid", uid);
		cJSON_DeleteItemFromObjectCaseSensitive(spec, "selector");
		cJSON_AddItemToObject(spec, "selector", sel);
	}
	default_podspec(ks_obj_child(tmpl, "spec"), "Never");
	cJSON *ts = cJSON_GetObjectItemCaseSensitive(tmpl, "spec");
	(void)ts;
	cJSON_DeleteItemFromObjectCaseSensitive(job, "status");
	cJSON_AddObjectToObject(job, "status");
}

static void reset_status_on_create(cJSON *obj, int res)
{
	const char *p = RES(res)->plural;
	if (strcmp(p, "pods") == 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
		cJSON *st = cJSON_AddObjectToObject(obj, "status");
		cJSON_AddStringToObject(st, "phase", "Pending");
		cJSON_AddStringToObject(st, "qosClass", "BestEffort");
	} else if (strcmp(p, "namespaces") == 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
		cJSON *st = cJSON_AddObjectToObject(obj, "status");
		cJSON_AddStringToObject(st, "phase", "Active");
		cJSON *spec = ks_obj_child(obj, "spec");
		cJSON_DeleteItemFromObjectCaseSensitive(spec, "finalizers");
		cJSON *f = cJSON_AddArrayToObject(spec, "finalizers");
		cJSON_AddItemToArray(f, cJSON_CreateString("kubernetes"));
		/* k/k pkg/registry/core/namespace/strategy.go: the name label */
		cJSON *labels = ks_obj_child(ks_obj_child(obj, "metadata"), "labels");
		set_str(labels, "kubernetes.io/metadata.name", ks_meta(obj, "name"));
	} else if (strcmp(p, "services") == 0) {
		cJSON *spec = ks_obj_child(obj, "spec");
		default_str(spec, "type", "ClusterIP");
		default_str(spec, "sessionAffinity", "None");
		if (!ks_jstr(spec, "clusterIP")) {
			unsigned char b[2];
			RAND_bytes(b, 2);
			char ip[32];
			snprintf(ip, sizeof ip, "10.96.%u.%u", b[0], b[1] ? b[1] : 1);
			set_str(spec, "clusterIP", ip);
			cJSON *ips = cJSON_AddArrayToObject(spec, "clusterIPs");
			cJSON_AddItemToArray(ips, cJSON_CreateString(ip));
		}
		cJSON *port;
		cJSON_ArrayForEach(port, cJSON_GetObjectItemCaseSensitive(spec, "ports"))
		{
			default_str(port, "protocol", "TCP");
			cJSON *pv = cJSON_GetObjectItemCaseSensitive(port, "port");
			if (cJSON_IsNumber(pv) && !cJSON_GetObjectItemCaseSensitive(port, "targetPort"))
				cJSON_AddNumberToObject(port, "targetPort", pv->valuedouble);
		}
		if (!cJSON_GetObjectItemCaseSensitive(obj, "status"))
			cJSON_AddObjectToObject(ks_obj_child(obj, "status"), "loadBalancer");
	} else if (strcmp(p, "deployments") == 0) {
		cJSON *spec = ks_obj_child(obj, "spec");
		default_int(spec, "replicas", 1);
		default_int(spec, "revisionHistoryLimit", 10);
		default_int(spec, "progressDeadlineSeconds", 600);
		default_podspec(ks_obj_child(ks_obj_child(spec, "template"), "spec"), "Always");
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
		cJSON_AddObjectToObject(obj, "status");
	} else if (strcmp(p, "resourcequotas") == 0) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
		cJSON *st = cJSON_AddObjectToObject(obj, "status");
		cJSON *hard = cJSON_GetObjectItemCaseSensitive(ks_obj_child(obj, "spec"), "hard");
		if (hard) {
			cJSON_AddItemToObject(st, "hard", cJSON_Duplicate(hard, 1));
			cJSON *used = cJSON_AddObjectToObject(st, "used");
			cJSON *h;
			cJSON_ArrayForEach(h, hard) cJSON_AddStringToObject(used, h->string, "0");
		}
	}
}

static int generation_tracked(int res)
{
	const char *p = RES(res)->plural;
	return strcmp(p, "jobs") == 0 || strcmp(p, "deployments") == 0 ||
	       strcmp(p, "poddisruptionbudgets") == 0 || strcmp(p, "networkpolicies") == 0 ||
	       strcmp(p, "pods") == 0;
}

static int has_status_sub(int res) { return ks_resource_has_sub(RES(res), "status"); }

/* ---- Events ---- */

#define KS_MAX_EVENTS 4000

void ks_event_record(ks_sim *s, const cJSON *obj, const char *type, const char *reason,
		     const char *msg, const char *component)
{
	int ev_res = ks_resource_by_plural("events");
	const char *ns = ks_meta(obj, "namespace");
	const char *name = ks_meta(obj, "name");
	const char *uid = ks_meta(obj, "uid");
	if (!name)
		return;
	if (!ns || !ns[0])
		ns = "default";
	/* bounded: drop the oldest events past the cap */
	while (ks_store_count(s->store, ev_res) >= KS_MAX_EVENTS) {
		cJSON *old = ks_store_at(s->store, ev_res, ks_store_oldest(s->store, ev_res));
		char ons[256], onm[256];
		snprintf(ons, sizeof ons, "%s", ks_meta(old, "namespace") ? ks_meta(old, "namespace") : "");
		snprintf(onm, sizeof onm, "%s", ks_meta(old, "name") ? ks_meta(old, "name") : "");
		ks_store_remove(s->store, ev_res, ons, onm);
	}
	char now[32], evname[300];
	ks_now(now);
	unsigned char rb[8];
	RAND_bytes(rb, sizeof rb);
	char hex[17];
	str_hex(hex, rb, sizeof rb);
	snprintf(evname, sizeof evname, "%.200s.%s", name, hex);
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "kind", "Event");
	cJSON_AddStringToObject(ev, "apiVersion", "v1");
	cJSON *m = cJSON_AddObjectToObject(ev, "metadata");
	cJSON_AddStringToObject(m, "name", evname);
	cJSON_AddStringToObject(m, "namespace", ns);
	char uidb[37];
	ks_uid_new(uidb);
	cJSON_AddStringToObject(m, "uid", uidb);
	cJSON_AddStringToObject(m, "creationTimestamp", now);
	cJSON *io = cJSON_AddObjectToObject(ev, "involvedObject");
	cJSON_AddStringToObject(io, "kind", ks_jstr(obj, "kind") ? ks_jstr(obj, "kind") : "");
	cJSON_AddStringToObject(io, "namespace", ns);
	cJSON_AddStringToObject(io, "name", name);
	if (uid)
		cJSON_AddStringToObject(io, "uid", uid);
	if (ks_jstr(obj, "apiVersion"))
		cJSON_AddStringToObject(io, "apiVersion", ks_jstr(obj, "apiVersion"));
	if (ks_meta(obj, "resourceVersion"))
		cJSON_AddStringToObject(io, "resourceVersion", ks_meta(obj, "resourceVersion"));
	cJSON_AddStringToObject(ev, "reason", reason);
	cJSON_AddStringToObject(ev, "message", msg);
	cJSON *src = cJSON_AddObjectToObject(ev, "source");
	cJSON_AddStringToObject(src, "component", component);
	if (strcmp(component, "kubelet") == 0)
		cJSON_AddStringToObject(src, "host", "kubesim-node");
	cJSON_AddStringToObject(ev, "firstTimestamp", now);
	cJSON_AddStringToObject(ev, "lastTimestamp", now);
	cJSON_AddNumberToObject(ev, "count", 1);
	cJSON_AddStringToObject(ev, "type", type);
	cJSON_AddNullToObject(ev, "eventTime");
	cJSON_AddStringToObject(ev, "reportingComponent", component);
	cJSON_AddStringToObject(ev, "reportingInstance", strcmp(component, "kubelet") == 0 ? "kubesim-node" : "");
	ks_store_put(s->store, ev_res, ev);
}

/* ---- create ---- */

static int ns_check(ks_sim *s, const char *ns, char *why, size_t n)
{
	int nsr = ks_resource_by_plural("namespaces");
	cJSON *o = ks_store_get(s->store, nsr, "", ns);
	if (!o)
		return ERR_NOTFOUND;
	if (ks_meta(o, "deletionTimestamp")) {
		snprintf(why, n, "unable to create new content in namespace %s because it is being terminated", ns);
		return ERR_FORBIDDEN;
	}
	return 0;
}

/* After a pod is stored: schedule it onto kubesim's one node and start it. */
static void pod_schedule(ks_sim *s, cJSON *pod)
{
	cJSON *spec = ks_obj_child(pod, "spec");
	set_str(spec, "nodeName", "kubesim-node");
	cJSON *st = ks_obj_child(pod, "status");
	cJSON *conds = cJSON_GetObjectItemCaseSensitive(st, "conditions");
	if (!conds)
		conds = cJSON_AddArrayToObject(st, "conditions");
	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "type", "PodScheduled");
	cJSON_AddStringToObject(c, "status", "True");
	cJSON_AddNullToObject(c, "lastProbeTime");
	char now[32];
	ks_now(now);
	cJSON_AddStringToObject(c, "lastTransitionTime", now);
	cJSON_AddItemToArray(conds, c);
	cJSON_AddStringToObject(st, "hostIP", "127.0.0.1");
	cJSON *hips = cJSON_AddArrayToObject(st, "hostIPs");
	cJSON *hip = cJSON_CreateObject();
	cJSON_AddStringToObject(hip, "ip", "127.0.0.1");
	cJSON_AddItemToArray(hips, hip);
	char msg[600];
	snprintf(msg, sizeof msg, "Successfully assigned %s/%s to kubesim-node", ks_meta(pod, "namespace"),
		 ks_meta(pod, "name"));
	ks_event_record(s, pod, "Normal", "Scheduled", msg, "default-scheduler");
}

/* Shared create path (lock held). On failure fills causes (Invalid) or
 * err_msg; returns 0, ERR_INVALID (causes), ERR_CONFLICT, ERR_NOTFOUND
 * (namespace), ERR_FORBIDDEN. Takes obj. */
static int create_locked(ks_sim *s, int res, cJSON *obj, const char *ns, ks_causes *cs, cJSON **stored,
			 char *name_out, size_t name_n)
{
	const ks_resource *rr = RES(res);
	ensure_kind(obj, res);
	ks_obj_init_meta(obj, rr->namespaced ? ns : NULL);
	const char *name = ks_meta(obj, "name");
	snprintf(name_out, name_n, "%s", name ? name : "");
	if (rr->namespaced) {
		char why[300];
		int rc = ns_check(s, ns, why, sizeof why);
		if (rc == ERR_NOTFOUND) {
			cJSON_Delete(obj);
			snprintf(name_out, name_n, "%s", ns);
			return err_set(ERR_NOTFOUND, "namespace");
		}
		if (rc) {
			cJSON_Delete(obj);
			return err_set(rc, "%s", why);
		}
	}
	if (strcmp(rr->plural, "jobs") == 0)
		default_job(obj, ks_meta(obj, "uid"));
	else if (strcmp(rr->plural, "pods") == 0)
		default_pod(obj);
	reset_status_on_create(obj, res);
	if (ks_validate(cs, rr, obj, NULL)) {
		cJSON_Delete(obj);
		return ERR_INVALID;
	}
	name = ks_meta(obj, "name");
	snprintf(name_out, name_n, "%s", name);
	if (ks_store_get(s->store, res, rr->namespaced ? ns : "", name)) {
		cJSON_Delete(obj);
		return ERR_CONFLICT;
	}
	if (strcmp(rr->plural, "pods") == 0) {
		int rc = ks_admit_pod(s, obj);
		if (rc) {
			cJSON_Delete(obj);
			return rc;
		}
		const char *sa = ks_jstr(cJSON_GetObjectItemCaseSensitive(obj, "spec"), "serviceAccountName");
		if (sa && !ks_store_get(s->store, ks_resource_by_plural("serviceaccounts"), ns, sa)) {
			/* sa points into obj: format the message before freeing it */
			err_set(ERR_FORBIDDEN, "error looking up service account %s/%s: serviceaccount \"%s\" not found",
				ns, sa, sa);
			cJSON_Delete(obj);
			return ERR_FORBIDDEN;
		}
	}
	if (generation_tracked(res)) {
		cJSON *m = ks_obj_child(obj, "metadata");
		cJSON_DeleteItemFromObjectCaseSensitive(m, "generation");
		cJSON_AddNumberToObject(m, "generation", 1);
	}
	cJSON *st = ks_store_put(s->store, res, obj);
	if (!st)
		return err_set(ERR_NOMEM, "out of memory");
	if (strcmp(rr->plural, "pods") == 0) {
		pod_schedule(s, st);
		st = ks_store_put(s->store, res, cJSON_Duplicate(st, 1));
		ks_action_pod_start(s, st);
	} else if (strcmp(rr->plural, "namespaces") == 0) {
		/* the ServiceAccount controller's default SA and the root CA
		 * publisher's ConfigMap (k/k pkg/controller/serviceaccount,
		 * pkg/controller/certificates/rootcacertpublisher) */
		cJSON *sa = cJSON_CreateObject();
		cJSON_AddStringToObject(sa, "kind", "ServiceAccount");
		cJSON_AddStringToObject(sa, "apiVersion", "v1");
		cJSON_AddStringToObject(cJSON_AddObjectToObject(sa, "metadata"), "name", "default");
		ks_obj_init_meta(sa, name);
		ks_store_put(s->store, ks_resource_by_plural("serviceaccounts"), sa);
		cJSON *cm = cJSON_CreateObject();
		cJSON_AddStringToObject(cm, "kind", "ConfigMap");
		cJSON_AddStringToObject(cm, "apiVersion", "v1");
		cJSON *cmm = cJSON_AddObjectToObject(cm, "metadata");
		cJSON_AddStringToObject(cmm, "name", "kube-root-ca.crt");
		cJSON *ann = cJSON_AddObjectToObject(cmm, "annotations");
		cJSON_AddStringToObject(ann, "kubernetes.io/description",
					"Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.");
		ks_obj_init_meta(cm, name);
		cJSON_AddStringToObject(cJSON_AddObjectToObject(cm, "data"), "ca.crt", s->certs.ca_pem);
		ks_store_put(s->store, ks_resource_by_plural("configmaps"), cm);
	} else if (strcmp(rr->plural, "jobs") == 0) {
		ks_controllers_kick(s);
	}
	if (stored)
		*stored = st;
	return 0;
}

int ks_obj_create_internal(ks_sim *s, int res, cJSON *obj, cJSON **stored)
{
	ks_causes cs;
	char name[300];
	const char *ns = ks_meta(obj, "namespace");
	char nsb[256];
	snprintf(nsb, sizeof nsb, "%s", ns ? ns : "");
	int rc = create_locked(s, res, obj, nsb, &cs, stored, name, sizeof name);
	if (rc == ERR_INVALID && cs.n) {
		char kind[160];
		snprintf(kind, sizeof kind, "%s", RES(res)->kind);
		return err_set(ERR_INVALID, "%s \"%s\" is invalid: %s: %s", kind, name, cs.c[0].field, cs.c[0].message);
	}
	if (rc == ERR_CONFLICT)
		return err_set(ERR_CONFLICT, "%s \"%s\" already exists", RES(res)->plural, name);
	if (rc == ERR_FORBIDDEN) {
		char q[128], why[2048];
		qualified(q, sizeof q, res);
		snprintf(why, sizeof why, "%s", err_msg());
		return err_set(ERR_FORBIDDEN, "%s \"%s\" is forbidden: %s", q, name, why);
	}
	return rc;
}

static int is_dry_run(ks_req *r) { return ks_req_query(r, "dryRun") != NULL; }

static int client_gone(int fd);

static void handle_create(ks_req *r)
{
	int res = r->res;
	if (!body_content_ok(r, 0)) {
		reply_unsupported_media(r, 0);
		return;
	}
	cJSON *obj = parse_body(r, 1);
	if (!obj)
		return;
	const char *kind = ks_jstr(obj, "kind");
	const char *av = ks_jstr(obj, "apiVersion");
	char want_av[96];
	api_version_of(want_av, sizeof want_av, res);
	if (!kind || !kind[0]) {
		cJSON_Delete(obj);
		char m[300];
		snprintf(m, sizeof m, "Object 'Kind' is missing in '%.200s'", r->body);
		reply_badrequest(r, m);
		return;
	}
	if (strcmp(kind, RES(res)->kind) != 0 || (av && strcmp(av, want_av) != 0)) {
		char m[400];
		snprintf(m, sizeof m, "the API version in the data (%.60s) does not match the expected API version (%s)",
			 av ? av : "", want_av);
		if (strcmp(kind, RES(res)->kind) != 0)
			snprintf(m, sizeof m, "%.60s in version \"%s\" cannot be handled as a %s: no kind \"%.60s\" is registered for version \"%s\" in scheme",
				 kind, RES(res)->version, RES(res)->kind, kind, want_av);
		cJSON_Delete(obj);
		reply_badrequest(r, m);
		return;
	}
	if (check_strict(r, res, obj)) {
		cJSON_Delete(obj);
		return;
	}
	const char *bns = ks_meta(obj, "namespace");
	if (RES(res)->namespaced && bns && bns[0] && strcmp(bns, r->ns) != 0) {
		cJSON_Delete(obj);
		reply_badrequest(r, "the namespace of the provided object does not match the namespace sent on the request");
		return;
	}
	if (is_dry_run(r)) {
		ks_causes cs;
		ensure_kind(obj, res);
		if (ks_validate(&cs, RES(res), obj, NULL)) {
			reply_invalid(r, res, ks_meta(obj, "name"), &cs);
		} else {
			ks_reply_json(r, 201, obj);
		}
		cJSON_Delete(obj);
		return;
	}
	ks_causes cs;
	char name[300];
	cJSON *stored = NULL;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	ks_sim_lock(r->sim);
	/* A client that gave up while this request waited (for the store
	 * lock, under load) has gone: kube-apiserver's request context is
	 * cancelled then (net/http cancels it when the connection closes) and
	 * the storage write that takes it fails (staging/src/k8s.io/apiserver/
	 * pkg/storage/etcd3/store.go Create). Acting on it anyway made a Job
	 * after its run had retried, finished and deleted it (bench part 4: a
	 * Job left behind). */
	if (client_gone(ci ? ci->connect_fd : -1)) {
		ks_sim_unlock(r->sim);
		cJSON_Delete(obj);
		ks_reply_status(r, 500, "InternalError", "the client went away before the object was created", NULL);
		return;
	}
	int rc = create_locked(r->sim, res, obj, r->ns, &cs, &stored, name, sizeof name);
	if (rc == 0)
		ks_reply_json(r, 201, stored);
	ks_sim_unlock(r->sim);
	if (rc == ERR_INVALID)
		reply_invalid(r, res, name, &cs);
	else if (rc == ERR_CONFLICT)
		reply_alreadyexists(r, res, name);
	else if (rc == ERR_NOTFOUND)
		reply_notfound(r, ks_resource_by_plural("namespaces"), name);
	else if (rc)
		reply_internal_err(r, res, name, rc);
}

/* ---- get / list ---- */

static int wants_table(ks_req *r)
{
	const char *a = ks_req_header(r, "Accept");
	return a && strstr(a, "as=Table") != NULL;
}

static cJSON *table_for(int res, cJSON **objs, size_t n, const char *rv)
{
	/* k/k staging/src/k8s.io/apiserver/pkg/registry/rest/table.go: the
	 * default columns Name and Created At, one row per object with the
	 * object as PartialObjectMetadata. */
	cJSON *t = cJSON_CreateObject();
	cJSON_AddStringToObject(t, "kind", "Table");
	cJSON_AddStringToObject(t, "apiVersion", "meta.k8s.io/v1");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(t, "metadata"), "resourceVersion", rv);
	cJSON *cols = cJSON_AddArrayToObject(t, "columnDefinitions");
	const char *plural = RES(res)->plural;
	int pods = strcmp(plural, "pods") == 0, jobs = strcmp(plural, "jobs") == 0,
	    nss = strcmp(plural, "namespaces") == 0;
	typedef struct coldef {
		const char *name, *type, *format, *desc;
	} coldef;
	coldef defs_pods[] = {{"Name", "string", "name", "Name must be unique within a namespace."},
			 {"Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic."},
			 {"Status", "string", "", "The aggregate status of the containers in this pod."},
			 {"Restarts", "string", "", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."},
			 {"Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created."}},
	  defs_jobs[] = {{"Name", "string", "name", "Name must be unique within a namespace."},
			 {"Status", "string", "", "Status of the job."},
			 {"Completions", "string", "", "The desired number of successfully finished pods the job should be run with."},
			 {"Duration", "string", "", "Time required to complete the job."},
			 {"Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created."}},
	  defs_ns[] = {{"Name", "string", "name", "Name must be unique within a namespace."},
		       {"Status", "string", "", "The status of the namespace"},
		       {"Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created."}},
	  defs_gen[] = {{"Name", "string", "name", "Name must be unique within a namespace."},
			{"Created At", "date", "", "CreationTimestamp is a timestamp representing the server time when this object was created."}};
	coldef *defs = defs_gen;
	size_t nd = 2;
	if (pods) {
		defs = defs_pods;
		nd = 5;
	} else if (jobs) {
		defs = defs_jobs;
		nd = 5;
	} else if (nss) {
		defs = defs_ns;
		nd = 3;
	}
	for (size_t i = 0; i < nd; i++) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "name", defs[i].name);
		cJSON_AddStringToObject(c, "type", defs[i].type);
		cJSON_AddStringToObject(c, "format", defs[i].format);
		cJSON_AddStringToObject(c, "description", defs[i].desc);
		cJSON_AddNumberToObject(c, "priority", 0);
		cJSON_AddItemToArray(cols, c);
	}
	cJSON *rows = cJSON_AddArrayToObject(t, "rows");
	int64_t now = clock_wall_ms();
	for (size_t i = 0; i < n; i++) {
		cJSON *o = objs[i];
		cJSON *row = cJSON_CreateObject();
		cJSON *cells = cJSON_AddArrayToObject(row, "cells");
		const char *ct = ks_meta(o, "creationTimestamp");
		char age[32] = "<unknown>";
		int64_t t0;
		if (ct && clock_parse_rfc3339(&t0, ct) == 0) {
			int64_t d = (now - t0) / 1000;
			if (d < 0)
				d = 0;
			if (d < 120)
				snprintf(age, sizeof age, "%llds", (long long)d);
			else if (d < 600)
				snprintf(age, sizeof age, "%lldm%llds", (long long)(d / 60), (long long)(d % 60));
			else if (d < 7200)
				snprintf(age, sizeof age, "%lldm", (long long)(d / 60));
			else
				snprintf(age, sizeof age, "%lldh", (long long)(d / 3600));
		}
		cJSON_AddItemToArray(cells, cJSON_CreateString(ks_meta(o, "name") ? ks_meta(o, "name") : ""));
		cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
		if (pods) {
			int total = 0, ready = 0, restarts = 0;
			const cJSON *cs;
			cJSON_ArrayForEach(cs, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "spec"), "containers")) total++;
			const char *status = ks_jstr(st, "phase");
			cJSON_ArrayForEach(cs, cJSON_GetObjectItemCaseSensitive(st, "containerStatuses"))
			{
				if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "ready")))
					ready++;
				const cJSON *rc = cJSON_GetObjectItemCaseSensitive(cs, "restartCount");
				if (cJSON_IsNumber(rc))
					restarts += rc->valueint;
				const cJSON *state = cJSON_GetObjectItemCaseSensitive(cs, "state");
				const char *wr = ks_jstr(cJSON_GetObjectItemCaseSensitive(state, "waiting"), "reason");
				const char *tr = ks_jstr(cJSON_GetObjectItemCaseSensitive(state, "terminated"), "reason");
				if (wr)
					status = wr;
				else if (tr)
					status = tr;
			}
			if (ks_meta(o, "deletionTimestamp"))
				status = "Terminating";
			char rd[32], rs[16];
			snprintf(rd, sizeof rd, "%d/%d", ready, total);
			snprintf(rs, sizeof rs, "%d", restarts);
			cJSON_AddItemToArray(cells, cJSON_CreateString(rd));
			cJSON_AddItemToArray(cells, cJSON_CreateString(status ? status : "Pending"));
			cJSON_AddItemToArray(cells, cJSON_CreateString(rs));
			cJSON_AddItemToArray(cells, cJSON_CreateString(age));
		} else if (jobs) {
			const char *status = "Running";
			const cJSON *c;
			cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(st, "conditions"))
			{
				const char *ty = ks_jstr(c, "type"), *cst = ks_jstr(c, "status");
				if (ty && cst && strcmp(cst, "True") == 0) {
					if (strcmp(ty, "Complete") == 0)
						status = "Complete";
					else if (strcmp(ty, "Failed") == 0)
						status = "Failed";
					else if (strcmp(ty, "Suspended") == 0)
						status = "Suspended";
					else if (strcmp(ty, "FailureTarget") == 0 && strcmp(status, "Running") == 0)
						status = "FailureTarget";
					else if (strcmp(ty, "SuccessCriteriaMet") == 0 && strcmp(status, "Running") == 0)
						status = "SuccessCriteriaMet";
				}
			}
			const cJSON *succ = cJSON_GetObjectItemCaseSensitive(st, "succeeded");
			const cJSON *comp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "spec"), "completions");
			char cb[32], dur[32] = "";
			snprintf(cb, sizeof cb, "%d/%d", cJSON_IsNumber(succ) ? succ->valueint : 0,
				 cJSON_IsNumber(comp) ? comp->valueint : 1);
			int64_t s0, s1;
			const char *sts = ks_jstr(st, "startTime"), *cts = ks_jstr(st, "completionTime");
			if (sts && clock_parse_rfc3339(&s0, sts) == 0) {
				s1 = (cts && clock_parse_rfc3339(&s1, cts) == 0) ? s1 : now;
				snprintf(dur, sizeof dur, "%llds", (long long)((s1 - s0) / 1000));
			}
			cJSON_AddItemToArray(cells, cJSON_CreateString(status));
			cJSON_AddItemToArray(cells, cJSON_CreateString(cb));
			cJSON_AddItemToArray(cells, cJSON_CreateString(dur));
			cJSON_AddItemToArray(cells, cJSON_CreateString(age));
		} else if (nss) {
			const char *ph = ks_jstr(st, "phase");
			cJSON_AddItemToArray(cells, cJSON_CreateString(ph ? ph : "Active"));
			cJSON_AddItemToArray(cells, cJSON_CreateString(age));
		} else {
			cJSON_AddItemToArray(cells, cJSON_CreateString(ct ? ct : ""));
		}
		cJSON *pom = cJSON_CreateObject();
		cJSON_AddStringToObject(pom, "kind", "PartialObjectMetadata");
		cJSON_AddStringToObject(pom, "apiVersion", "meta.k8s.io/v1");
		cJSON_AddItemToObject(pom, "metadata", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(o, "metadata"), 1));
		cJSON_AddItemToObject(row, "object", pom);
		cJSON_AddItemToArray(rows, row);
	}
	return t;
}

static void handle_get(ks_req *r)
{
	ks_sim_lock(r->sim);
	cJSON *o = ks_store_get(r->sim->store, r->res, r->ns, r->name);
	if (!o) {
		ks_sim_unlock(r->sim);
		reply_notfound(r, r->res, r->name);
		return;
	}
	if (wants_table(r)) {
		cJSON *t = table_for(r->res, &o, 1, ks_meta(o, "resourceVersion"));
		ks_reply_json(r, 200, t);
		cJSON_Delete(t);
	} else {
		ks_reply_json(r, 200, o);
	}
	ks_sim_unlock(r->sim);
}

/* field selector keys each resource supports
 * (k/k pkg/registry/core/pod/strategy.go ToSelectableFields, event/strategy.go, ...) */
static int field_supported(int res, const char *k)
{
	if (strcmp(k, "metadata.name") == 0 || strcmp(k, "metadata.namespace") == 0)
		return 1;
	const char *p = RES(res)->plural;
	if (strcmp(p, "pods") == 0)
		return strcmp(k, "status.phase") == 0 || strcmp(k, "spec.nodeName") == 0 ||
		       strcmp(k, "spec.restartPolicy") == 0 || strcmp(k, "spec.schedulerName") == 0 ||
		       strcmp(k, "spec.serviceAccountName") == 0 || strcmp(k, "status.podIP") == 0 ||
		       strcmp(k, "status.nominatedNodeName") == 0 || strcmp(k, "spec.hostNetwork") == 0;
	if (strcmp(p, "events") == 0)
		return str_has_prefix(k, "involvedObject.") || strcmp(k, "reason") == 0 ||
		       strcmp(k, "reportingComponent") == 0 || strcmp(k, "source") == 0 ||
		       strcmp(k, "type") == 0;
	if (strcmp(p, "secrets") == 0)
		return strcmp(k, "type") == 0;
	if (strcmp(p, "jobs") == 0)
		return strcmp(k, "status.successful") == 0;
	if (strcmp(p, "namespaces") == 0)
		return strcmp(k, "status.phase") == 0;
	return 0;
}

typedef struct filters {
	ks_selector *labels;
	ks_selector *fields;
} filters;

static void filters_free(filters *f)
{
	ks_selector_free(f->labels);
	ks_selector_free(f->fields);
}

static int filters_parse(ks_req *r, filters *f)
{
	memset(f, 0, sizeof *f);
	if (ks_selector_parse_labels(&f->labels, ks_req_query(r, "labelSelector"))) {
		char m[600];
		snprintf(m, sizeof m, "unable to parse requirement: %s", err_msg());
		reply_badrequest(r, err_msg());
		(void)m;
		return -1;
	}
	if (ks_selector_parse_fields(&f->fields, ks_req_query(r, "fieldSelector"))) {
		reply_badrequest(r, err_msg());
		filters_free(f);
		return -1;
	}
	for (int i = 0; ks_selector_key(f->fields, i); i++) {
		const char *k = ks_selector_key(f->fields, i);
		if (!field_supported(r->res, k)) {
			char m[300];
			snprintf(m, sizeof m, "field label not supported: %.200s", k);
			reply_badrequest(r, m);
			filters_free(f);
			return -1;
		}
	}
	return 0;
}

static int obj_matches(const filters *f, const cJSON *o)
{
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "labels");
	return ks_selector_match_labels(f->labels, labels) && ks_selector_match_fields(f->fields, o);
}

static int cmp_obj(const void *a, const void *b)
{
	const cJSON *x = *(cJSON *const *)a, *y = *(cJSON *const *)b;
	const char *nx = ks_meta(x, "namespace"), *ny = ks_meta(y, "namespace");
	int c = strcmp(nx ? nx : "", ny ? ny : "");
	if (c)
		return c;
	return strcmp(ks_meta(x, "name") ? ks_meta(x, "name") : "", ks_meta(y, "name") ? ks_meta(y, "name") : "");
}

/* The stored objects of resource RES in namespace NS ("" for all) that
 * match F, sorted by namespace and name as upstream lists them; *M gets the
 * count. The caller holds the store lock and frees the array (not the
 * objects); NULL when out of memory. */
static cJSON **matching_objects(ks_store *st, int res, const char *ns, const filters *f, size_t *m)
{
	size_t n = ks_store_count(st, res);
	cJSON **v = calloc(n ? n : 1, sizeof *v);

	*m = 0;
	for (size_t i = 0; v && i < n; i++) {
		cJSON *o = ks_store_at(st, res, i);
		const char *ons = ks_meta(o, "namespace");
		if (ns[0] && strcmp(ons ? ons : "", ns) != 0)
			continue;
		if (obj_matches(f, o))
			v[(*m)++] = o;
	}
	if (v)
		qsort(v, *m, sizeof *v, cmp_obj);
	return v;
}

static void handle_list(ks_req *r)
{
	filters f;
	if (filters_parse(r, &f))
		return;
	ks_sim_lock(r->sim);
	ks_store *st = r->sim->store;
	size_t m;
	cJSON **v = matching_objects(st, r->res, r->ns, &f, &m);
	char rv[32];
	snprintf(rv, sizeof rv, "%llu", (unsigned long long)ks_store_rv(st));
	if (wants_table(r)) {
		cJSON *t = table_for(r->res, v, m, rv);
		ks_reply_json(r, 200, t);
		cJSON_Delete(t);
	} else {
		/* serialize by hand: items are stored objects, no copies */
		buf b = BUF_INIT((size_t)1 << 31);
		char av[96];
		api_version_of(av, sizeof av, r->res);
		buf_printf(&b, "{\"kind\":\"%sList\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":\"%s\"},\"items\":[",
			   RES(r->res)->kind, av, rv);
		for (size_t i = 0; i < m; i++) {
			char *s = cJSON_PrintUnformatted(v[i]);
			if (i)
				buf_append_byte(&b, ',');
			if (s)
				buf_append_str(&b, s);
			free(s);
		}
		buf_append_str(&b, "]}");
		ks_reply(r, 200, "application/json", buf_cstr(&b), b.len);
		buf_free(&b);
	}
	ks_sim_unlock(r->sim);
	free(v);
	filters_free(&f);
}

/* ---- watch ---- */

typedef struct watch_st {
	ks_sim *sim;
	int res;
	char ns[254];
	filters f;
	uint64_t last_rv;
	int bookmarks;
	int64_t deadline_ms;
	int64_t last_send_ms;
	buf out;
	size_t out_off;
	int finished;
	int fd;
	int64_t cut_after; /* fault: end after N events (-1 none) */
	int64_t gone_after;
	int64_t sent_events;
	int table; /* Accept asked for meta.k8s.io Table: each object becomes a one-row Table */
	ks_store_watcher sw; /* the store queues the changes it matches here */
	uint64_t reg_rv;     /* the store's rv when sw was registered */
} watch_st;

#define WATCH_OUT_HIGH (256 * 1024) /* stop collecting past this much unsent */

static void watch_free(void *cls)
{
	watch_st *w = cls;
	if (w->sw.registered) {
		ks_store_lock(w->sim->store);
		ks_store_watcher_remove(w->sim->store, &w->sw);
		ks_store_unlock(w->sim->store);
	}
	filters_free(&w->f);
	buf_free(&w->out);
	free(w);
}

static void watch_emit_gone(watch_st *w, uint64_t asked, uint64_t oldest)
{
	buf_printf(&w->out,
		   "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old resource version: %llu (%llu)\",\"reason\":\"Expired\",\"code\":410}}\n",
		   (unsigned long long)asked, (unsigned long long)oldest);
	w->finished = 1;
}

static const char *EV_NAMES[] = {"ADDED", "MODIFIED", "DELETED"};

/* The store's match function for a watch (store lock held): the live
 * object, no parsing. */
static int watch_match(void *ctx, const cJSON *obj)
{
	const watch_st *w = ctx;
	if (w->ns[0]) {
		const char *ns = ks_meta(obj, "namespace");
		if (!ns || strcmp(ns, w->ns) != 0)
			return 0;
	}
	if (ks_selector_empty(w->f.labels) && ks_selector_empty(w->f.fields))
		return 1;
	return obj_matches(&w->f, obj);
}

/* Append event e (lock held). matched: the store already matched it
 * against this watch. 1 when the watch is over (a fault ended it). */
static int watch_emit(watch_st *w, const ks_store_event *e, int matched)
{
	cJSON *parsed = NULL;
	if (!matched) {
		if (e->res != w->res)
			return 0;
		if (w->ns[0] && strcmp(e->ns, w->ns) != 0)
			return 0;
	}
	if (w->table || (!matched && (!ks_selector_empty(w->f.labels) || !ks_selector_empty(w->f.fields)))) {
		parsed = cJSON_Parse(e->json);
		int ok = parsed && (matched || obj_matches(&w->f, parsed));
		if (!ok) {
			cJSON_Delete(parsed);
			return 0;
		}
	}
	if (w->gone_after >= 0 && w->sent_events >= w->gone_after) {
		cJSON_Delete(parsed);
		watch_emit_gone(w, e->rv, e->rv);
		return 1;
	}
	if (w->cut_after >= 0 && w->sent_events >= w->cut_after) {
		cJSON_Delete(parsed);
		w->finished = 1;
		return 1;
	}
	buf_printf(&w->out, "{\"type\":\"%s\",\"object\":", EV_NAMES[e->type]);
	if (w->table && parsed) {
		cJSON *t = table_for(w->res, &parsed, 1, ks_meta(parsed, "resourceVersion"));
		char *ts = cJSON_PrintUnformatted(t);
		buf_append_str(&w->out, ts ? ts : "{}");
		free(ts);
		cJSON_Delete(t);
	} else {
		buf_append_str(&w->out, e->json);
	}
	cJSON_Delete(parsed);
	buf_append_str(&w->out, "}\n");
	w->sent_events++;
	return 0;
}

/* Append matching events after last_rv (lock held). The history before
 * the watch was registered (a watch from an older resourceVersion), or all
 * of it after the store's queue for it overflowed, is scanned and each
 * event tested; after that only the changes the store queued to it are
 * looked at, and when none is left the watch has seen everything up to
 * the store's current rv. */
static void watch_collect(watch_st *w)
{
	ks_store *st = w->sim->store;
	uint64_t cur = ks_store_rv(st);
	uint64_t scan_to = w->sw.overflow || !w->sw.registered ? cur : (w->reg_rv < cur ? w->reg_rv : cur);
	while (w->last_rv < scan_to && w->out.len < WATCH_OUT_HIGH) {
		int gone = 0;
		const ks_store_event *e = ks_store_event_at(st, w->last_rv + 1, &gone);
		if (gone) {
			watch_emit_gone(w, w->last_rv, ks_store_oldest_rv(st) - 1);
			return;
		}
		w->last_rv++;
		if (e && watch_emit(w, e, 0))
			return;
	}
	if (w->last_rv < scan_to || !w->sw.registered)
		return;
	if (w->sw.overflow) {
		/* scanned up to cur: the queue takes over again */
		w->sw.overflow = 0;
		w->sw.n = 0;
		return;
	}
	size_t i = 0;
	while (i < w->sw.n && w->out.len < WATCH_OUT_HIGH) {
		uint64_t rv = w->sw.rvs[i++];
		int gone = 0;
		if (rv <= w->last_rv)
			continue;
		const ks_store_event *e = ks_store_event_at(st, rv, &gone);
		if (gone) {
			watch_emit_gone(w, w->last_rv, ks_store_oldest_rv(st) - 1);
			return;
		}
		w->last_rv = rv;
		if (e && watch_emit(w, e, 1))
			return;
	}
	if (i < w->sw.n) /* (rvs is NULL while nothing was ever queued) */
		memmove(w->sw.rvs, w->sw.rvs + i, (w->sw.n - i) * sizeof *w->sw.rvs);
	w->sw.n -= i;
	if (w->sw.n == 0)
		w->last_rv = cur;
}

static int client_gone(int fd)
{
	if (fd < 0)
		return 0;
	struct pollfd p = {fd, POLLRDHUP, 0};
	if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
		return 1;
	return 0;
}

static ssize_t watch_read(void *cls, uint64_t pos, char *dst, size_t max)
{
	(void)pos;
	watch_st *w = cls;
	for (;;) {
		if (w->out_off < w->out.len) {
			size_t n = w->out.len - w->out_off;
			if (n > max)
				n = max;
			memcpy(dst, w->out.data + w->out_off, n);
			w->out_off += n;
			if (w->out_off == w->out.len) {
				buf_reset(&w->out);
				w->out_off = 0;
			}
			w->last_send_ms = clock_mono_ms();
			return (ssize_t)n;
		}
		if (w->finished || w->sim->stopping)
			return MHD_CONTENT_READER_END_OF_STREAM;
		int64_t now = clock_mono_ms();
		if (now >= w->deadline_ms)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (client_gone(w->fd))
			return MHD_CONTENT_READER_END_WITH_ERROR;
		ks_store_lock(w->sim->store);
		watch_collect(w);
		if (w->out.len == 0 && !w->finished) {
			if (w->bookmarks && now - w->last_send_ms >= WATCH_BOOKMARK_MS) {
				char av[96];
				api_version_of(av, sizeof av, w->res);
				buf_printf(&w->out,
					   "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"%s\",\"apiVersion\":\"%s\",\"metadata\":{\"resourceVersion\":\"%llu\",\"creationTimestamp\":null},\"spec\":{\"containers\":null},\"status\":{}}}\n",
					   RES(w->res)->kind, av, (unsigned long long)ks_store_rv(w->sim->store));
				w->last_rv = ks_store_rv(w->sim->store);
			} else {
				/* woken by a matching change or a broadcast; the
				 * timeout only notices a client gone quiet and the
				 * next bookmark, so it need not be short: a
				 * thousand watches waking every second took the
				 * store lock a thousand times a second for nothing */
				int64_t wait = w->deadline_ms - now;
				if (wait > WATCH_IDLE_WAKE_MS)
					wait = WATCH_IDLE_WAKE_MS;
				ks_store_watcher_wait(w->sim->store, &w->sw, wait);
				watch_collect(w);
			}
		}
		ks_store_unlock(w->sim->store);
	}
}

static void handle_watch(ks_req *r, const ks_fault *faults, int nf)
{
	watch_st *w = calloc(1, sizeof *w);
	if (!w) {
		ks_reply_status(r, 500, "InternalError", "out of memory", NULL);
		return;
	}
	if (filters_parse(r, &w->f)) {
		free(w);
		return;
	}
	w->sim = r->sim;
	w->res = r->res;
	w->cut_after = -1;
	w->gone_after = -1;
	for (int i = 0; i < nf; i++) {
		if (faults[i].kind == KS_FAULT_WATCH_CUT)
			w->cut_after = faults[i].n;
		if (faults[i].kind == KS_FAULT_WATCH_GONE)
			w->gone_after = faults[i].n;
	}
	snprintf(w->ns, sizeof w->ns, "%s", r->ns);
	buf_init(&w->out, 64u * 1024 * 1024);
	w->bookmarks = ks_req_bool(r, "allowWatchBookmarks");
	w->table = wants_table(r);
	const char *ts = ks_req_query(r, "timeoutSeconds");
	int64_t tsec;
	if (ts && str_parse_i64(&tsec, ts, 0, 1LL << 31) == 0 && tsec > 0) {
		w->deadline_ms = clock_mono_ms() + tsec * 1000;
	} else {
		/* k/k staging/src/k8s.io/apiserver/pkg/endpoints/handlers/get.go:
		 * minRequestTimeout (1800 s) times a random factor in [1, 2) */
		unsigned char b;
		RAND_bytes(&b, 1);
		w->deadline_ms = clock_mono_ms() + 1800 * 1000 + (int64_t)b * 1800 * 1000 / 256;
	}
	w->last_send_ms = clock_mono_ms();
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	w->fd = ci ? ci->connect_fd : -1;
	const char *rvq = ks_req_query(r, "resourceVersion");
	ks_store_lock(r->sim->store);
	uint64_t cur = ks_store_rv(r->sim->store);
	if (!rvq || !rvq[0] || strcmp(rvq, "0") == 0) {
		/* synthetic ADDED for what exists now, then changes after it */
		size_t m;
		cJSON **v = matching_objects(r->sim->store, r->res, w->ns, &w->f, &m);
		for (size_t i = 0; i < m; i++) {
			/* the watch faults count these events too */
			if (w->gone_after >= 0 && w->sent_events >= w->gone_after) {
				watch_emit_gone(w, cur, cur);
				break;
			}
			if (w->cut_after >= 0 && w->sent_events >= w->cut_after) {
				w->finished = 1;
				break;
			}
			char *s = w->table ? NULL : cJSON_PrintUnformatted(v[i]);
			if (w->table) {
				cJSON *t = table_for(r->res, &v[i], 1, ks_meta(v[i], "resourceVersion"));
				s = cJSON_PrintUnformatted(t);
				cJSON_Delete(t);
			}
			buf_append_str(&w->out, "{\"type\":\"ADDED\",\"object\":");
			if (s)
				buf_append_str(&w->out, s);
			buf_append_str(&w->out, "}\n");
			free(s);
			w->sent_events++;
		}
		free(v);
		w->last_rv = cur;
	} else {
		uint64_t asked;
		if (str_parse_u64(&asked, rvq, UINT64_MAX)) {
			ks_store_unlock(r->sim->store);
			char m[300];
			snprintf(m, sizeof m, "invalid resource version: %.100s", rvq);
			watch_free(w);
			ks_reply_status(r, 400, "BadRequest", m, NULL);
			return;
		}
		if (asked > cur) {
			/* upstream waits for a future RV then times out; answering
			 * from now is what a client observes in practice */
			asked = cur;
		}
		w->last_rv = asked;
		if (asked + 1 < ks_store_oldest_rv(r->sim->store))
			watch_emit_gone(w, asked, ks_store_oldest_rv(r->sim->store) - 1);
	}
	/* from here on the store queues the changes this watch matches */
	w->sw.res = r->res;
	w->sw.match = watch_match;
	w->sw.ctx = w;
	w->reg_rv = cur;
	if (!w->finished && ks_store_watcher_add(r->sim->store, &w->sw) != 0) {
		ks_store_unlock(r->sim->store);
		watch_free(w);
		ks_reply_status(r, 500, "InternalError", "cannot register the watch", NULL);
		return;
	}
	ks_store_unlock(r->sim->store);
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, watch_read, w, watch_free);
	if (!resp) {
		watch_free(w);
		ks_reply_status(r, 500, "InternalError", "out of memory", NULL);
		return;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Transfer-Encoding", "chunked");
	ks_reply_mhd(r, 200, resp);
}

/* ---- update / patch ---- */

/* Keep what a client may not change on update; returns 0 or replies. */
static int prepare_update(ks_req *r, cJSON *obj, const cJSON *old, int status_only)
{
	cJSON *m = ks_obj_child(obj, "metadata");
	const char *rv = ks_jstr(m, "resourceVersion");
	const char *orv = ks_meta(old, "resourceVersion");
	if (rv && rv[0] && orv && strcmp(rv, orv) != 0) {
		reply_conflict(r, r->res, r->name,
			       "the object has been modified; please apply your changes to the latest version and try again");
		return -1;
	}
	const char *bname = ks_jstr(m, "name");
	if (bname && strcmp(bname, r->name) != 0) {
		reply_badrequest(r, "the name of the object does not match the name on the URL");
		return -1;
	}
	const char *keep[] = {"uid", "creationTimestamp", "namespace", "name", "deletionTimestamp",
			      "deletionGracePeriodSeconds", "generation"};
	const cJSON *om = cJSON_GetObjectItemCaseSensitive(old, "metadata");
	for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
		cJSON_DeleteItemFromObjectCaseSensitive(m, keep[i]);
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(om, keep[i]);
		if (v)
			cJSON_AddItemToObject(m, keep[i], cJSON_Duplicate(v, 1));
	}
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "kind");
	cJSON_DeleteItemFromObjectCaseSensitive(obj, "apiVersion");
	cJSON_AddStringToObject(obj, "kind", RES(r->res)->kind);
	char av[96];
	api_version_of(av, sizeof av, r->res);
	cJSON_AddStringToObject(obj, "apiVersion", av);
	if (status_only) {
		/* only status changes through the status subresource */
		cJSON *st = cJSON_DetachItemFromObjectCaseSensitive(obj, "status");
		cJSON *c;
		while ((c = obj->child))
			cJSON_Delete(cJSON_DetachItemViaPointer(obj, c));
		cJSON *copy = cJSON_Duplicate(old, 1);
		for (c = copy->child; c;) {
			cJSON *next = c->next;
			if (strcmp(c->string, "status") != 0)
				cJSON_AddItemToObject(obj, c->string, cJSON_DetachItemViaPointer(copy, c));
			c = next;
		}
		cJSON_Delete(copy);
		if (st)
			cJSON_AddItemToObject(obj, "status", st);
	} else if (has_status_sub(r->res)) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "status");
		const cJSON *ost = cJSON_GetObjectItemCaseSensitive(old, "status");
		if (ost)
			cJSON_AddItemToObject(obj, "status", cJSON_Duplicate(ost, 1));
	}
	if (strcmp(RES(r->res)->plural, "jobs") == 0 && !status_only) {
		/* keep the generated labels/selector when a client resends them */
		const cJSON *os = cJSON_GetObjectItemCaseSensitive(old, "spec");
		cJSON *spec = ks_obj_child(obj, "spec");
		if (!cJSON_GetObjectItemCaseSensitive(spec, "selector") && cJSON_GetObjectItemCaseSensitive(os, "selector"))
			cJSON_AddItemToObject(spec, "selector", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(os, "selector"), 1));
	}
	if (!status_only && generation_tracked(r->res)) {
		const cJSON *ospec = cJSON_GetObjectItemCaseSensitive(old, "spec");
		const cJSON *nspec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
		const cJSON *og = cJSON_GetObjectItemCaseSensitive(om, "generation");
		double g = cJSON_IsNumber(og) ? og->valuedouble : 1;
		if (!(ospec && nspec && cJSON_Compare(ospec, nspec, 1)))
			g += 1;
		cJSON_DeleteItemFromObjectCaseSensitive(m, "generation");
		cJSON_AddNumberToObject(m, "generation", g);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(m, "resourceVersion");
	return 0;
}

static int remove_if_finalized(ks_sim *s, int res, cJSON *obj);

/* Store an updated object (lock held), validating it. Replies. */
static void commit_update(ks_req *r, cJSON *obj, const cJSON *old, int status_only)
{
	ks_causes cs;
	if (!status_only && ks_validate(&cs, RES(r->res), obj, old)) {
		reply_invalid(r, r->res, r->name, &cs);
		cJSON_Delete(obj);
		return;
	}
	if (is_dry_run(r)) {
		ks_reply_json(r, 200, obj);
		cJSON_Delete(obj);
		return;
	}
	/* unchanged objects keep their resourceVersion (no event), as etcd3 store GuaranteedUpdate */
	cJSON *cmp = cJSON_Duplicate(old, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(cmp, "metadata"), "resourceVersion");
	int same = cJSON_Compare(cmp, obj, 1);
	cJSON_Delete(cmp);
	if (same) {
		ks_reply_json(r, 200, old);
		cJSON_Delete(obj);
		return;
	}
	cJSON *st = ks_store_put(r->sim->store, r->res, obj);
	if (!st) {
		ks_reply_status(r, 500, "InternalError", "out of memory", NULL);
		return;
	}
	ks_reply_json(r, 200, st);
	remove_if_finalized(r->sim, r->res, st);
	ks_controllers_kick(r->sim);
}

static void handle_update(ks_req *r, int status_only)
{
	if (!body_content_ok(r, 0)) {
		reply_unsupported_media(r, 0);
		return;
	}
	cJSON *obj = parse_body(r, 1);
	if (!obj)
		return;
	if (check_strict(r, r->res, obj)) {
		cJSON_Delete(obj);
		return;
	}
	ks_sim_lock(r->sim);
	cJSON *old = ks_store_get(r->sim->store, r->res, r->ns, r->name);
	if (!old) {
		ks_sim_unlock(r->sim);
		cJSON_Delete(obj);
		reply_notfound(r, r->res, r->name);
		return;
	}
	if (prepare_update(r, obj, old, status_only)) {
		ks_sim_unlock(r->sim);
		cJSON_Delete(obj);
		return;
	}
	commit_update(r, obj, old, status_only);
	ks_sim_unlock(r->sim);
}

static void handle_patch(ks_req *r, int status_only)
{
	const char *ct = ks_req_header(r, "Content-Type");
	if (!body_content_ok(r, 1)) {
		reply_unsupported_media(r, 1);
		return;
	}
	cJSON *patch = parse_body(r, 0);
	if (!patch)
		return;
	ks_sim_lock(r->sim);
	cJSON *old = ks_store_get(r->sim->store, r->res, r->ns, r->name);
	if (!old) {
		ks_sim_unlock(r->sim);
		cJSON_Delete(patch);
		reply_notfound(r, r->res, r->name);
		return;
	}
	cJSON *doc = cJSON_Duplicate(old, 1);
	int rc;
	if (strncasecmp(ct, "application/json-patch+json", 27) == 0)
		rc = ks_patch_json(&doc, patch);
	else if (strncasecmp(ct, "application/merge-patch+json", 28) == 0)
		rc = ks_patch_merge(&doc, patch);
	else
		rc = ks_patch_strategic(&doc, patch);
	cJSON_Delete(patch);
	if (rc) {
		ks_sim_unlock(r->sim);
		cJSON_Delete(doc);
		if (rc == ERR_CONFLICT) {
			ks_reply_status(r, 422, "Invalid", err_msg(), NULL);
		} else {
			char m[600];
			snprintf(m, sizeof m, "%s", err_msg());
			reply_badrequest(r, m);
		}
		return;
	}
	if (!cJSON_IsObject(doc)) {
		ks_sim_unlock(r->sim);
		cJSON_Delete(doc);
		reply_badrequest(r, "the patch did not produce an object");
		return;
	}
	/* a patch without resourceVersion never conflicts: drop a copied one
	 * unless the patch set it explicitly to something else */
	const char *nrv = ks_meta(doc, "resourceVersion");
	if (nrv && strcmp(nrv, ks_meta(old, "resourceVersion")) == 0)
		cJSON_DeleteItemFromObjectCaseSensitive(ks_obj_child(doc, "metadata"), "resourceVersion");
	if (check_strict(r, r->res, doc) || prepare_update(r, doc, old, status_only)) {
		ks_sim_unlock(r->sim);
		cJSON_Delete(doc);
		return;
	}
	commit_update(r, doc, old, status_only);
	ks_sim_unlock(r->sim);
}

/* ---- delete and garbage collection ---- */

static int has_finalizer(const cJSON *o, const char *f)
{
	const cJSON *fs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "finalizers");
	const cJSON *e;
	cJSON_ArrayForEach(e, fs) if (cJSON_IsString(e) && strcmp(e->valuestring, f) == 0) return 1;
	return 0;
}

static int n_finalizers(const cJSON *o)
{
	const cJSON *fs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "finalizers");
	return cJSON_GetArraySize(fs);
}

/* An object marked for deletion with no finalizers left goes away. */
static int remove_if_finalized(ks_sim *s, int res, cJSON *obj)
{
	if (!ks_meta(obj, "deletionTimestamp") || n_finalizers(obj) > 0)
		return 0;
	if (strcmp(RES(res)->plural, "pods") == 0) {
		/* pods leave when their containers have stopped (controllers.c) */
		const char *ph = ks_jstr(cJSON_GetObjectItemCaseSensitive(obj, "status"), "phase");
		if (ph && (strcmp(ph, "Pending") == 0 || strcmp(ph, "Running") == 0))
			return 0;
	}
	if (strcmp(RES(res)->plural, "namespaces") == 0)
		return 0;
	char ns[256], name[256], uid[64];
	snprintf(ns, sizeof ns, "%s", ks_meta(obj, "namespace") ? ks_meta(obj, "namespace") : "");
	snprintf(name, sizeof name, "%s", ks_meta(obj, "name"));
	snprintf(uid, sizeof uid, "%s", ks_meta(obj, "uid") ? ks_meta(obj, "uid") : "");
	int is_pod = strcmp(RES(res)->plural, "pods") == 0;
	ks_store_remove(s->store, res, ns, name);
	if (is_pod)
		ks_action_pod_forget(s, uid);
	ks_controllers_kick(s);
	return 1;
}

/* Remove ownerReferences to uid from every dependent (Orphan). */
static void orphan_dependents(ks_sim *s, const char *uid)
{
	for (size_t res = 0; res < ks_n_resources; res++) {
		if (!(RES((int)res)->flags & KS_RES_STORED))
			continue;
		size_t n = ks_store_count(s->store, (int)res);
		for (size_t i = 0; i < n; i++) {
			cJSON *o = ks_store_at(s->store, (int)res, i);
			cJSON *refs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "ownerReferences");
			int hit = 0;
			const cJSON *ref;
			cJSON_ArrayForEach(ref, refs) if (str_eq(ks_jstr(ref, "uid"), uid)) hit = 1;
			if (!hit)
				continue;
			cJSON *c = cJSON_Duplicate(o, 1);
			cJSON *cm = ks_obj_child(c, "metadata");
			cJSON *crefs = cJSON_GetObjectItemCaseSensitive(cm, "ownerReferences");
			for (int k = cJSON_GetArraySize(crefs) - 1; k >= 0; k--)
				if (str_eq(ks_jstr(cJSON_GetArrayItem(crefs, k), "uid"), uid))
					cJSON_DeleteItemFromArray(crefs, k);
			if (cJSON_GetArraySize(crefs) == 0)
				cJSON_DeleteItemFromObjectCaseSensitive(cm, "ownerReferences");
			ks_store_put(s->store, (int)res, c);
		}
	}
}

int ks_obj_delete(ks_sim *s, int res, const char *ns, const char *name, const char *propagation,
		  int grace)
{
	cJSON *o = ks_store_get(s->store, res, ns, name);
	if (!o)
		return ERR_NOTFOUND;
	const char *plural = RES(res)->plural;
	char uid[64];
	snprintf(uid, sizeof uid, "%s", ks_meta(o, "uid") ? ks_meta(o, "uid") : "");
	char now[32];
	ks_now(now);
	if (!propagation)
		propagation = "Background";
	if (strcmp(propagation, "Orphan") == 0)
		orphan_dependents(s, uid);
	int is_pod = strcmp(plural, "pods") == 0;
	int already = ks_meta(o, "deletionTimestamp") != NULL;
	cJSON *c = cJSON_Duplicate(o, 1);
	cJSON *m = ks_obj_child(c, "metadata");
	if (strcmp(propagation, "Foreground") == 0 && !has_finalizer(o, "foregroundDeletion")) {
		cJSON *fs = cJSON_GetObjectItemCaseSensitive(m, "finalizers");
		if (!fs)
			fs = cJSON_AddArrayToObject(m, "finalizers");
		cJSON_AddItemToArray(fs, cJSON_CreateString("foregroundDeletion"));
	}
	int running = 0;
	if (is_pod) {
		const char *ph = ks_jstr(cJSON_GetObjectItemCaseSensitive(o, "status"), "phase");
		running = ph && (strcmp(ph, "Pending") == 0 || strcmp(ph, "Running") == 0);
		if (grace < 0) {
			const cJSON *tg = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "spec"),
									 "terminationGracePeriodSeconds");
			grace = cJSON_IsNumber(tg) ? tg->valueint : 30;
		}
	}
	if (strcmp(plural, "namespaces") == 0) {
		if (!already) {
			cJSON_AddStringToObject(m, "deletionTimestamp", now);
			cJSON *st = ks_obj_child(c, "status");
			set_str(st, "phase", "Terminating");
			ks_store_put(s->store, res, c);
		} else {
			cJSON_Delete(c);
		}
		ks_controllers_kick(s);
		return 0;
	}
	if (!already)
		cJSON_AddStringToObject(m, "deletionTimestamp", now);
	if (is_pod && !already) {
		cJSON_DeleteItemFromObjectCaseSensitive(m, "deletionGracePeriodSeconds");
		cJSON_AddNumberToObject(m, "deletionGracePeriodSeconds", grace > 0 ? grace : 0);
	}
	int keep = n_finalizers(c) > 0 || (is_pod && running && grace > 0);
	if (keep) {
		if (!already || strcmp(propagation, "Foreground") == 0)
			ks_store_put(s->store, res, c);
		else
			cJSON_Delete(c);
		if (is_pod && running)
			ks_action_pod_stop(s, uid, grace, NULL);
		ks_controllers_kick(s);
		return 0;
	}
	cJSON_Delete(c);
	ks_store_remove(s->store, res, ns, name);
	if (is_pod)
		ks_action_pod_forget(s, uid);
	ks_controllers_kick(s);
	return 0;
}

static void handle_delete(ks_req *r)
{
	const char *prop = ks_req_query(r, "propagationPolicy");
	int grace = -1;
	const char *gq = ks_req_query(r, "gracePeriodSeconds");
	if (gq && str_parse_int(&grace, gq, 0, 1 << 30)) {
		reply_badrequest(r, "invalid gracePeriodSeconds");
		return;
	}
	char pre_uid[64] = "", pre_rv[32] = "";
	cJSON *opts = NULL;
	if (r->body_len) {
		opts = parse_body(r, 1);
		if (!opts)
			return;
		const char *p = ks_jstr(opts, "propagationPolicy");
		if (p)
			prop = p;
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(opts, "gracePeriodSeconds");
		if (cJSON_IsNumber(g))
			grace = g->valueint < 0 ? 0 : g->valueint;
		const cJSON *orphan = cJSON_GetObjectItemCaseSensitive(opts, "orphanDependents");
		if (!prop && cJSON_IsBool(orphan))
			prop = cJSON_IsTrue(orphan) ? "Orphan" : "Background";
		const cJSON *pc = cJSON_GetObjectItemCaseSensitive(opts, "preconditions");
		if (ks_jstr(pc, "uid"))
			snprintf(pre_uid, sizeof pre_uid, "%s", ks_jstr(pc, "uid"));
		if (ks_jstr(pc, "resourceVersion"))
			snprintf(pre_rv, sizeof pre_rv, "%s", ks_jstr(pc, "resourceVersion"));
	}
	char propb[32] = "";
	if (prop)
		snprintf(propb, sizeof propb, "%s", prop);
	cJSON_Delete(opts);
	if (propb[0] && strcmp(propb, "Orphan") && strcmp(propb, "Background") && strcmp(propb, "Foreground")) {
		char m[200];
		snprintf(m, sizeof m, "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"%s\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"", propb);
		ks_reply_status(r, 422, "Invalid", m, NULL);
		return;
	}
	int is_job = strcmp(RES(r->res)->plural, "jobs") == 0;
	if (!propb[0] && is_job) {
		/* k/k pkg/registry/batch/job/strategy.go DefaultGarbageCollectionPolicy
		 * (Orphan for batch/v1) and the warning in job/storage/storage.go */
		snprintf(propb, sizeof propb, "Orphan");
		snprintf(r->warning, sizeof r->warning,
			 "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning");
	}
	ks_sim_lock(r->sim);
	cJSON *o = ks_store_get(r->sim->store, r->res, r->ns, r->name);
	if (!o) {
		ks_sim_unlock(r->sim);
		reply_notfound(r, r->res, r->name);
		return;
	}
	if ((pre_uid[0] && !str_eq(pre_uid, ks_meta(o, "uid"))) ||
	    (pre_rv[0] && !str_eq(pre_rv, ks_meta(o, "resourceVersion")))) {
		char why[300];
		snprintf(why, sizeof why, "Precondition failed: %s: %s, %s: %s", pre_uid[0] ? "UID in precondition" : "ResourceVersion in precondition",
			 pre_uid[0] ? pre_uid : pre_rv, pre_uid[0] ? "UID in object meta" : "ResourceVersion in object meta",
			 pre_uid[0] ? ks_meta(o, "uid") : ks_meta(o, "resourceVersion"));
		ks_sim_unlock(r->sim);
		reply_conflict(r, r->res, r->name, why);
		return;
	}
	cJSON *before = cJSON_Duplicate(o, 1);
	if (is_dry_run(r)) {
		ks_sim_unlock(r->sim);
		ks_reply_json(r, 200, before);
		cJSON_Delete(before);
		return;
	}
	ks_obj_delete(r->sim, r->res, r->ns, r->name, propb[0] ? propb : NULL, grace);
	cJSON *after = ks_store_get(r->sim->store, r->res, r->ns, r->name);
	if (after) {
		/* still there (graceful or finalizers): 202 with the object
		 * (k/k staging/src/k8s.io/apiserver/pkg/endpoints/handlers/delete.go) */
		ks_reply_json(r, strcmp(RES(r->res)->plural, "pods") == 0 ? 200 : 202, after);
	} else if (strcmp(RES(r->res)->plural, "pods") == 0) {
		ks_reply_json(r, 200, before);
	} else {
		cJSON *d = details_new(r->name, RES(r->res)->group, RES(r->res)->plural);
		cJSON_AddStringToObject(d, "uid", ks_meta(before, "uid") ? ks_meta(before, "uid") : "");
		ks_sim_unlock(r->sim);
		cJSON_Delete(before);
		ks_reply_status(r, 200, NULL, NULL, d);
		return;
	}
	ks_sim_unlock(r->sim);
	cJSON_Delete(before);
}

static void handle_deletecollection(ks_req *r)
{
	filters f;
	if (filters_parse(r, &f))
		return;
	/* DeleteOptions from the query or the body, as for one object
	 * (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/delete.go
	 * DeleteCollection): kubectl delete --all --grace-period sends them */
	const char *propq = ks_req_query(r, "propagationPolicy");
	char prop[32] = "";
	int grace = -1;
	const char *gq = ks_req_query(r, "gracePeriodSeconds");
	if (gq && str_parse_int(&grace, gq, 0, 1 << 30)) {
		filters_free(&f);
		reply_badrequest(r, "invalid gracePeriodSeconds");
		return;
	}
	if (propq)
		snprintf(prop, sizeof prop, "%s", propq);
	if (r->body_len) {
		cJSON *opts = parse_body(r, 1);
		if (!opts) {
			filters_free(&f);
			return;
		}
		if (ks_jstr(opts, "propagationPolicy"))
			snprintf(prop, sizeof prop, "%s", ks_jstr(opts, "propagationPolicy"));
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(opts, "gracePeriodSeconds");
		if (cJSON_IsNumber(g))
			grace = g->valueint < 0 ? 0 : g->valueint;
		cJSON_Delete(opts);
	}
	ks_sim_lock(r->sim);
	ks_store *st = r->sim->store;
	size_t n = ks_store_count(st, r->res);
	char (*names)[2][256] = calloc(n ? n : 1, sizeof *names);
	size_t m = 0;
	for (size_t i = 0; names && i < n; i++) {
		cJSON *o = ks_store_at(st, r->res, i);
		const char *ns = ks_meta(o, "namespace");
		if (r->ns[0] && strcmp(ns ? ns : "", r->ns) != 0)
			continue;
		if (!obj_matches(&f, o))
			continue;
		snprintf(names[m][0], 256, "%s", ns ? ns : "");
		snprintf(names[m][1], 256, "%s", ks_meta(o, "name"));
		m++;
	}
	for (size_t i = 0; i < m; i++)
		ks_obj_delete(r->sim, r->res, names[i][0], names[i][1], prop[0] ? prop : NULL, grace);
	char av[96], rv[32];
	api_version_of(av, sizeof av, r->res);
	snprintf(rv, sizeof rv, "%llu", (unsigned long long)ks_store_rv(st));
	ks_sim_unlock(r->sim);
	free(names);
	filters_free(&f);
	cJSON *l = cJSON_CreateObject();
	char kind[96];
	snprintf(kind, sizeof kind, "%sList", RES(r->res)->kind);
	cJSON_AddStringToObject(l, "kind", kind);
	cJSON_AddStringToObject(l, "apiVersion", av);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(l, "metadata"), "resourceVersion", rv);
	cJSON_AddArrayToObject(l, "items");
	ks_reply_json(r, 200, l);
	cJSON_Delete(l);
}

/* ---- pods/log ---- */

typedef struct log_st {
	ks_log_reader *rd;
	int follow;
	int fd;
	ks_sim *sim;
} log_st;

static ssize_t log_read_cb(void *cls, uint64_t pos, char *dst, size_t max)
{
	(void)pos;
	log_st *l = cls;
	for (;;) {
		if (l->sim->stopping)
			return MHD_CONTENT_READER_END_OF_STREAM;
		long n = ks_log_read(l->rd, dst, max, 1000);
		if (n > 0)
			return n;
		if (n == 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (n == ERR_TIMEOUT) {
			if (client_gone(l->fd))
				return MHD_CONTENT_READER_END_WITH_ERROR;
			continue;
		}
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
}

static void log_free_cb(void *cls)
{
	log_st *l = cls;
	ks_log_close(l->rd);
	free(l);
}

static int64_t q_i64(ks_req *r, const char *name, int64_t def, int *bad)
{
	const char *v = ks_req_query(r, name);
	int64_t x;
	if (!v)
		return def;
	if (str_parse_i64(&x, v, 0, INT64_MAX)) {
		*bad = 1;
		return def;
	}
	return x;
}

static void handle_log(ks_req *r)
{
	char uid[64] = "";
	char container[256] = "";
	const char *cq = ks_req_query(r, "container");
	ks_sim_lock(r->sim);
	cJSON *pod = ks_store_get(r->sim->store, r->res, r->ns, r->name);
	if (pod) {
		snprintf(uid, sizeof uid, "%s", ks_meta(pod, "uid"));
		const cJSON *ctrs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "containers");
		if (cq) {
			int found = 0;
			const cJSON *c;
			cJSON_ArrayForEach(c, ctrs) if (str_eq(ks_jstr(c, "name"), cq)) found = 1;
			if (!found) {
				ks_sim_unlock(r->sim);
				char m[600];
				buf names = BUF_INIT(4096);
				cJSON_ArrayForEach(c, ctrs)
				{
					if (names.len)
						buf_append_str(&names, " ");
					buf_append_str(&names, ks_jstr(c, "name") ? ks_jstr(c, "name") : "");
				}
				/* k/k pkg/registry/core/pod/strategy.go LogLocation */
				snprintf(m, sizeof m, "container %.100s is not valid for pod %.100s", cq, r->name);
				buf_free(&names);
				reply_badrequest(r, m);
				return;
			}
			snprintf(container, sizeof container, "%s", cq);
		} else if (cJSON_GetArraySize(ctrs) > 1) {
			buf names = BUF_INIT(4096);
			const cJSON *c;
			cJSON_ArrayForEach(c, ctrs)
			{
				if (names.len)
					buf_append_str(&names, " ");
				buf_append_str(&names, ks_jstr(c, "name") ? ks_jstr(c, "name") : "");
			}
			char m[800];
			snprintf(m, sizeof m, "a container name must be specified for pod %.100s, choose one of: [%.500s]", r->name, buf_cstr(&names));
			buf_free(&names);
			ks_sim_unlock(r->sim);
			reply_badrequest(r, m);
			return;
		}
	}
	ks_sim_unlock(r->sim);
	if (!uid[0]) {
		reply_notfound(r, r->res, r->name);
		return;
	}
	int bad = 0;
	ks_log_params p;
	memset(&p, 0, sizeof p);
	p.uid = uid;
	p.container = container[0] ? container : NULL;
	p.follow = ks_req_bool(r, "follow");
	p.previous = ks_req_bool(r, "previous");
	p.timestamps = ks_req_bool(r, "timestamps");
	p.tail_lines = q_i64(r, "tailLines", -1, &bad);
	p.limit_bytes = q_i64(r, "limitBytes", -1, &bad);
	p.since_seconds = q_i64(r, "sinceSeconds", -1, &bad);
	const char *since_time = ks_req_query(r, "sinceTime");
	if (since_time) {
		int64_t t;
		if (clock_parse_rfc3339(&t, since_time))
			bad = 1;
		else {
			int64_t d = (clock_wall_ms() - t) / 1000;
			p.since_seconds = d < 1 ? 1 : d;
		}
	}
	if (bad) {
		reply_badrequest(r, "invalid log options: tailLines, limitBytes and sinceSeconds must be non-negative integers");
		return;
	}
	ks_log_reader *rd = NULL;
	int rc = ks_kubelet_log_open(r->sim->kubelet, &rd, &p);
	if (rc == ERR_NOTFOUND) {
		char m[600];
		snprintf(m, sizeof m, "%s", err_msg());
		reply_badrequest(r, m[0] ? m : "container not found");
		return;
	}
	if (rc) {
		char m[600];
		snprintf(m, sizeof m, "%s", err_msg());
		reply_badrequest(r, m);
		return;
	}
	log_st *l = calloc(1, sizeof *l);
	if (!l) {
		ks_log_close(rd);
		ks_reply_status(r, 500, "InternalError", "out of memory", NULL);
		return;
	}
	l->rd = rd;
	l->follow = p.follow;
	l->sim = r->sim;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	l->fd = ci ? ci->connect_fd : -1;
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, log_read_cb, l, log_free_cb);
	if (!resp) {
		log_free_cb(l);
		ks_reply_status(r, 500, "InternalError", "out of memory", NULL);
		return;
	}
	MHD_add_response_header(resp, "Content-Type", "text/plain");
	ks_reply_mhd(r, 200, resp);
}

/* ---- pods/exec ---- */

/* k/k staging/src/k8s.io/apimachinery/pkg/runtime/conversion.go: booleans
 * are false only when absent, "0" or "false" (any case). */
static int exec_bool(ks_req *r, const char *name)
{
	const char *v = ks_req_query(r, name);
	if (!v)
		return 0;
	return !(strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0);
}

typedef struct argv_collect {
	char **v;
	int n;
	int too_many;
} argv_collect;

static enum MHD_Result collect_cmd(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	argv_collect *a = cls;
	if (strcmp(key, "command") != 0)
		return MHD_YES;
	if (a->n >= 4096) {
		a->too_many = 1;
		return MHD_NO;
	}
	char **nv = realloc(a->v, (size_t)(a->n + 2) * sizeof *nv);
	if (!nv)
		return MHD_NO;
	a->v = nv;
	a->v[a->n++] = str_dup(value ? value : "");
	a->v[a->n] = NULL;
	return MHD_YES;
}

static void handle_exec(ks_req *r, const ks_fault *faults, int nf)
{
	const char *upg = ks_req_header(r, "Upgrade");
	if (!upg || strcasecmp(upg, "websocket") != 0) {
		/* SPDY (POST with Upgrade: SPDY/3.1) is not served: kubectl 1.30+
		 * uses WebSocket; older ones get this answer */
		reply_badrequest(r, "Upgrade request required");
		return;
	}
	/* pick the first offered subprotocol we speak (k8s-protocol.md section 1) */
	const char *offer = ks_req_header(r, "Sec-WebSocket-Protocol");
	char proto[32] = "";
	int version = 0;
	if (offer) {
		char tmp[512];
		snprintf(tmp, sizeof tmp, "%s", offer);
		char *save = NULL;
		for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			while (*t == ' ' || *t == '\t')
				t++;
			size_t l = strlen(t);
			while (l && (t[l - 1] == ' ' || t[l - 1] == '\t'))
				t[--l] = 0;
			if (strcmp(t, "v5.channel.k8s.io") == 0) {
				version = 5;
			} else if (strcmp(t, "v4.channel.k8s.io") == 0) {
				version = 4;
			} else {
				continue;
			}
			snprintf(proto, sizeof proto, "%s", t);
			break;
		}
	}
	if (!version) {
		/* golang.org/x/net/websocket: a bare 403 for an unsupported protocol */
		ks_reply(r, 403, "text/plain; charset=utf-8", "", 0);
		return;
	}
	argv_collect a = {0};
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_cmd, &a);
	ks_exec_params *p = calloc(1, sizeof *p);
	if (!p) {
		ks_reply_status(r, 500, "InternalError", "out of memory", NULL);
		return;
	}
	p->argv = a.v;
	p->want_stdin = exec_bool(r, "stdin");
	p->want_stdout = exec_bool(r, "stdout");
	p->want_stderr = exec_bool(r, "stderr");
	p->tty = exec_bool(r, "tty");
	p->version = version;
	p->cut_after_bytes = -1;
	for (int i = 0; i < nf; i++)
		if (faults[i].kind == KS_FAULT_EXEC_CUT)
			p->cut_after_bytes = faults[i].n;
	const char *cq = ks_req_query(r, "container");
	if (a.too_many || a.n == 0) {
		ks_exec_params_free(p);
		reply_badrequest(r, a.too_many ? "too many command arguments" : "you must specify at least one command for the container");
		return;
	}
	if (!p->want_stdin && !p->want_stdout && !p->want_stderr) {
		ks_exec_params_free(p);
		reply_badrequest(r, "you must specify at least 1 of stdin, stdout, stderr");
		return;
	}
	ks_sim_lock(r->sim);
	cJSON *pod = ks_store_get(r->sim->store, r->res, r->ns, r->name);
	char phase[32] = "";
	if (pod) {
		p->uid = str_dup(ks_meta(pod, "uid"));
		const char *ph = ks_jstr(cJSON_GetObjectItemCaseSensitive(pod, "status"), "phase");
		snprintf(phase, sizeof phase, "%s", ph ? ph : "");
		const cJSON *ctrs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pod, "spec"), "containers");
		if (cq) {
			int found = 0;
			const cJSON *c;
			cJSON_ArrayForEach(c, ctrs) if (str_eq(ks_jstr(c, "name"), cq)) found = 1;
			if (!found) {
				ks_sim_unlock(r->sim);
				char m[600];
				snprintf(m, sizeof m, "container %.100s is not valid for pod %.100s", cq, r->name);
				ks_exec_params_free(p);
				reply_badrequest(r, m);
				return;
			}
			p->container = str_dup(cq);
		}
	}
	ks_sim_unlock(r->sim);
	if (!p->uid) {
		ks_exec_params_free(p);
		reply_notfound(r, r->res, r->name);
		return;
	}
	if (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0) {
		/* k/k pkg/registry/core/pod/strategy.go ExecLocation */
		char m[300];
		snprintf(m, sizeof m, "cannot exec into a container in a completed pod; current phase is %s", phase);
		ks_exec_params_free(p);
		reply_badrequest(r, m);
		return;
	}
	int rc = ks_kubelet_exec_check(r->sim->kubelet, p->uid, p->container);
	if (rc) {
		char m[600];
		snprintf(m, sizeof m, "%s", err_msg());
		ks_exec_params_free(p);
		if (rc == ERR_NOTFOUND)
			reply_notfound(r, r->res, r->name);
		else
			reply_badrequest(r, m);
		return;
	}
	ks_server_exec_upgrade(r, proto, p);
}

/* ---- serviceaccounts/token (TokenRequest) ---- */

static void handle_token(ks_req *r)
{
	cJSON *tr = r->body_len ? parse_body(r, 1) : cJSON_CreateObject();
	if (!tr)
		return;
	cJSON *spec = ks_obj_child(tr, "spec");
	const cJSON *es = cJSON_GetObjectItemCaseSensitive(spec, "expirationSeconds");
	int64_t exp = cJSON_IsNumber(es) ? (int64_t)es->valuedouble : 3600;
	if (exp < 600 || exp > (int64_t)1 << 32) {
		char m[700];
		/* k/k pkg/apis/authentication/validation/validation.go */
		snprintf(m, sizeof m, "TokenRequest.authentication.k8s.io \"%s\" is invalid: spec.expirationSeconds: Invalid value: %lld: may not specify a duration less than 10 minutes",
			 r->name, (long long)exp);
		if (exp >= 600)
			snprintf(m, sizeof m, "TokenRequest.authentication.k8s.io \"%s\" is invalid: spec.expirationSeconds: Invalid value: %lld: may not specify a duration larger than 2^32 seconds",
				 r->name, (long long)exp);
		cJSON_Delete(tr);
		ks_reply_status(r, 422, "Invalid", m, NULL);
		return;
	}
	const cJSON *bref = cJSON_GetObjectItemCaseSensitive(spec, "boundObjectRef");
	if (cJSON_IsNull(bref))
		bref = NULL;
	char pod_name[256] = "", pod_uid[64] = "", sa_uid[64] = "";
	ks_sim_lock(r->sim);
	cJSON *sa = ks_store_get(r->sim->store, r->res, r->ns, r->name);
	if (!sa) {
		ks_sim_unlock(r->sim);
		cJSON_Delete(tr);
		reply_notfound(r, r->res, r->name);
		return;
	}
	snprintf(sa_uid, sizeof sa_uid, "%s", ks_meta(sa, "uid"));
	if (bref) {
		const char *k = ks_jstr(bref, "kind"), *n = ks_jstr(bref, "name"), *u = ks_jstr(bref, "uid");
		if (!k || strcmp(k, "Pod") != 0 || !n) {
			ks_sim_unlock(r->sim);
			cJSON_Delete(tr);
			ks_reply_status(r, 400, "BadRequest", "cannot bind token to object of kind other than Pod in kubesim", NULL);
			return;
		}
		cJSON *pod = ks_store_get(r->sim->store, ks_resource_by_plural("pods"), r->ns, n);
		if (!pod) {
			ks_sim_unlock(r->sim);
			cJSON_Delete(tr);
			reply_notfound(r, ks_resource_by_plural("pods"), n);
			return;
		}
		if (u && u[0] && strcmp(u, ks_meta(pod, "uid")) != 0) {
			ks_sim_unlock(r->sim);
			cJSON_Delete(tr);
			char m[300];
			snprintf(m, sizeof m, "the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", u);
			ks_reply_status(r, 409, "Conflict", m, NULL);
			return;
		}
		snprintf(pod_name, sizeof pod_name, "%s", n);
		snprintf(pod_uid, sizeof pod_uid, "%s", ks_meta(pod, "uid"));
	}
	ks_sim_unlock(r->sim);
	int64_t now = now_unix();
	char *tok = ks_auth_token_new(r->sim, r->ns, r->name, sa_uid, pod_name[0] ? pod_name : NULL,
				      pod_uid[0] ? pod_uid : NULL, now + exp, now);
	cJSON *out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "kind", "TokenRequest");
	cJSON_AddStringToObject(out, "apiVersion", "authentication.k8s.io/v1");
	cJSON *m = cJSON_AddObjectToObject(out, "metadata");
	cJSON_AddStringToObject(m, "name", r->name);
	cJSON_AddStringToObject(m, "namespace", r->ns);
	char ts[32];
	clock_format_rfc3339(ts, sizeof ts, now * 1000, 0);
	cJSON_AddStringToObject(m, "creationTimestamp", ts);
	cJSON *ospec = cJSON_AddObjectToObject(out, "spec");
	const cJSON *aud = cJSON_GetObjectItemCaseSensitive(spec, "audiences");
	if (cJSON_IsArray(aud) && cJSON_GetArraySize(aud) > 0) {
		cJSON_AddItemToObject(ospec, "audiences", cJSON_Duplicate(aud, 1));
	} else {
		cJSON *a = cJSON_AddArrayToObject(ospec, "audiences");
		cJSON_AddItemToArray(a, cJSON_CreateString("https://kubernetes.default.svc.cluster.local"));
	}
	cJSON_AddNumberToObject(ospec, "expirationSeconds", (double)exp);
	if (bref)
		cJSON_AddItemToObject(ospec, "boundObjectRef", cJSON_Duplicate(bref, 1));
	else
		cJSON_AddNullToObject(ospec, "boundObjectRef");
	cJSON *st = cJSON_AddObjectToObject(out, "status");
	cJSON_AddStringToObject(st, "token", tok ? tok : "");
	clock_format_rfc3339(ts, sizeof ts, (now + exp) * 1000, 0);
	cJSON_AddStringToObject(st, "expirationTimestamp", ts);
	free(tok);
	cJSON_Delete(tr);
	ks_reply_json(r, 201, out);
	cJSON_Delete(out);
}

/* ---- reviews ---- */

static cJSON *user_info_json(const ks_user *u)
{
	cJSON *ui = cJSON_CreateObject();
	cJSON_AddStringToObject(ui, "username", u->name);
	if (u->uid[0])
		cJSON_AddStringToObject(ui, "uid", u->uid);
	cJSON *g = cJSON_AddArrayToObject(ui, "groups");
	for (size_t i = 0; i < u->n_groups; i++)
		cJSON_AddItemToArray(g, cJSON_CreateString(u->groups[i]));
	return ui;
}

static void review_attrs(const cJSON *spec, ks_attrs *a)
{
	memset(a, 0, sizeof *a);
	const cJSON *ra = cJSON_GetObjectItemCaseSensitive(spec, "resourceAttributes");
	const cJSON *na = cJSON_GetObjectItemCaseSensitive(spec, "nonResourceAttributes");
	if (ra) {
		a->is_resource = 1;
		a->verb = ks_jstr(ra, "verb");
		a->group = ks_jstr(ra, "group");
		a->resource = ks_jstr(ra, "resource");
		a->sub = ks_jstr(ra, "subresource");
		a->ns = ks_jstr(ra, "namespace");
		a->name = ks_jstr(ra, "name");
	} else if (na) {
		a->verb = ks_jstr(na, "verb");
		a->path = ks_jstr(na, "path");
	}
	if (!a->verb)
		a->verb = "";
	if (!a->group)
		a->group = "";
	if (!a->resource)
		a->resource = "";
	if (!a->sub)
		a->sub = "";
	if (!a->ns)
		a->ns = "";
	if (!a->name)
		a->name = "";
	if (!a->path)
		a->path = "";
}

static void handle_review(ks_req *r)
{
	if (!body_content_ok(r, 0)) {
		reply_unsupported_media(r, 0);
		return;
	}
	cJSON *in = parse_body(r, 1);
	if (!in)
		return;
	const char *plural = RES(r->res)->plural;
	cJSON *spec = ks_obj_child(in, "spec");
	cJSON *out = cJSON_Duplicate(in, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(out, "status");
	set_str(out, "kind", RES(r->res)->kind);
	char av[96];
	api_version_of(av, sizeof av, r->res);
	set_str(out, "apiVersion", av);
	cJSON *m = ks_obj_child(out, "metadata");
	cJSON_DeleteItemFromObjectCaseSensitive(m, "creationTimestamp");
	cJSON_AddNullToObject(m, "creationTimestamp");
	if (strcmp(plural, "selfsubjectreviews") == 0) {
		cJSON *st = cJSON_AddObjectToObject(out, "status");
		cJSON_AddItemToObject(st, "userInfo", user_info_json(&r->user));
	} else if (strcmp(plural, "tokenreviews") == 0) {
		ks_user u;
		memset(&u, 0, sizeof u);
		const char *tok = ks_jstr(spec, "token");
		cJSON *st = cJSON_AddObjectToObject(out, "status");
		if (tok && ks_auth_token_check(r->sim, tok, &u) == 0) {
			cJSON_AddTrueToObject(st, "authenticated");
			cJSON_AddItemToObject(st, "user", user_info_json(&u));
			cJSON_AddItemToObject(st, "audiences", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(spec, "audiences"), 1));
		} else {
			cJSON_AddStringToObject(st, "user", "");
			cJSON_DeleteItemFromObjectCaseSensitive(st, "user");
			cJSON_AddItemToObject(st, "user", cJSON_CreateObject());
			cJSON_AddStringToObject(st, "error", "[invalid bearer token, token lookup failed]");
		}
	} else if (strcmp(plural, "selfsubjectrulesreviews") == 0) {
		const char *ns = ks_jstr(spec, "namespace");
		cJSON *st = ks_rbac_rules_review(r->sim, &r->user, ns ? ns : "");
		cJSON_AddItemToObject(out, "status", st);
	} else {
		ks_user u;
		const ks_user *who = &r->user;
		if (strcmp(plural, "subjectaccessreviews") == 0 || strcmp(plural, "localsubjectaccessreviews") == 0) {
			memset(&u, 0, sizeof u);
			const char *un = ks_jstr(spec, "user");
			snprintf(u.name, sizeof u.name, "%s", un ? un : "");
			const cJSON *g;
			cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(spec, "groups")) if (cJSON_IsString(g))
				ks_user_add_group(&u, g->valuestring);
			if (!un && u.n_groups == 0) {
				cJSON_Delete(in);
				cJSON_Delete(out);
				ks_reply_status(r, 422, "Invalid",
						"SubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified",
						NULL);
				return;
			}
			who = &u;
		}
		ks_attrs a;
		review_attrs(spec, &a);
		if (strcmp(plural, "localsubjectaccessreviews") == 0)
			a.ns = r->ns;
		if (!cJSON_GetObjectItemCaseSensitive(spec, "resourceAttributes") &&
		    !cJSON_GetObjectItemCaseSensitive(spec, "nonResourceAttributes")) {
			char msg[300];
			snprintf(msg, sizeof msg, "%s.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
				 RES(r->res)->kind);
			cJSON_Delete(in);
			cJSON_Delete(out);
			ks_reply_status(r, 422, "Invalid", msg, NULL);
			return;
		}
		char reason[512] = "";
		int ok = ks_rbac_allowed(r->sim, who, &a, reason, sizeof reason);
		cJSON *st = cJSON_AddObjectToObject(out, "status");
		if (ok)
			cJSON_AddTrueToObject(st, "allowed");
		else
			cJSON_AddFalseToObject(st, "allowed");
		if (reason[0])
			cJSON_AddStringToObject(st, "reason", reason);
	}
	cJSON_Delete(in);
	ks_reply_json(r, 201, out);
	cJSON_Delete(out);
}

/* ---- dispatch ---- */

static const char *metric_verb(ks_req *r)
{
	/* upstream's apiserver_request_total verbs are upper case, with
	 * LIST/WATCH apart from GET and CONNECT for exec */
	static __thread char v[24];
	if (!r->is_resource)
		snprintf(v, sizeof v, "%s", r->method);
	else if (strcmp(r->sub, "exec") == 0)
		snprintf(v, sizeof v, "CONNECT");
	else {
		size_t i;
		for (i = 0; r->verb[i] && i < sizeof v - 1; i++)
			v[i] = (char)(r->verb[i] >= 'a' && r->verb[i] <= 'z' ? r->verb[i] - 32 : r->verb[i]);
		v[i] = 0;
		if (strcmp(v, "CREATE") == 0)
			snprintf(v, sizeof v, "POST");
		else if (strcmp(v, "UPDATE") == 0)
			snprintf(v, sizeof v, "PUT");
	}
	return v;
}

static int apply_faults(ks_req *r, ks_fault *f, int *nf)
{
	*nf = ks_faults_match(r->sim->faults, r->method, r->is_resource ? (strcmp(r->sub, "exec") == 0 ? "exec" : strcmp(r->sub, "log") == 0 ? "log" : r->verb) : NULL, r->url, f, 8);
	for (int i = 0; i < *nf; i++) {
		switch (f[i].kind) {
		case KS_FAULT_DELAY:
			clock_sleep_ms(f[i].n);
			break;
		case KS_FAULT_DROP: {
			ks_req_drop(r);
			ks_reply(r, 500, "text/plain", "", 0);
			return 1;
		}
		case KS_FAULT_STATUS: {
			int code = f[i].code;
			if (f[i].retry_after)
				r->retry_after = f[i].retry_after;
			if (f[i].text) {
				/* max-in-flight style: plain text
				 * (k/k staging/src/k8s.io/apiserver/pkg/server/filters/maxinflight.go tooManyRequests) */
				const char *t = code == 429 ? "Too many requests, please try again later.\n" : "service unavailable\n";
				ks_reply(r, code, "text/plain; charset=utf-8", t, strlen(t));
				return 1;
			}
			const char *reason = code == 429 ? "TooManyRequests" : code == 503 ? "ServiceUnavailable" :
					     code == 500 ? "InternalError" : code == 504 ? "Timeout" :
					     code == 409 ? "Conflict" : code == 404 ? "NotFound" :
					     code == 403 ? "Forbidden" : code == 401 ? "Unauthorized" :
					     code == 410 ? "Expired" : code == 400 ? "BadRequest" : "";
			const char *msg = code == 429 ? "Too many requests, please try again later." :
					  code == 503 ? "the server is currently unable to handle the request" :
					  code == 504 ? "the server was unable to return a response in the time allotted, but may still be processing the request" :
					  "injected fault";
			cJSON *d = NULL;
			if (f[i].retry_after) {
				d = cJSON_CreateObject();
				cJSON_AddNumberToObject(d, "retryAfterSeconds", f[i].retry_after);
			}
			ks_reply_status(r, code, reason, msg, d);
			return 1;
		}
		default:
			break;
		}
	}
	return 0;
}

static void handle_resource(ks_req *r, const ks_fault *f, int nf)
{
	const ks_resource *rr = RES(r->res);
	const char *verb = r->verb;
	if (r->sub[0] && !ks_resource_has_sub(rr, r->sub)) {
		reply_notfound_generic(r);
		return;
	}
	if (rr->namespaced && !r->ns[0] && strcmp(verb, "list") && strcmp(verb, "watch")) {
		reply_notfound_generic(r);
		return;
	}
	if (!rr->namespaced && r->ns[0]) {
		reply_notfound_generic(r);
		return;
	}
	if (rr->flags & KS_RES_CREATE_ONLY) {
		if (strcmp(verb, "create") == 0 && !r->name[0]) {
			handle_review(r);
			return;
		}
		ks_reply_status(r, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource", NULL);
		return;
	}
	if (r->sub[0]) {
		if (strcmp(r->sub, "log") == 0 && strcmp(verb, "get") == 0)
			handle_log(r);
		else if (strcmp(r->sub, "exec") == 0 && (strcmp(verb, "get") == 0 || strcmp(verb, "create") == 0))
			handle_exec(r, f, nf);
		else if (strcmp(r->sub, "token") == 0 && strcmp(verb, "create") == 0)
			handle_token(r);
		else if (strcmp(r->sub, "status") == 0 && strcmp(verb, "get") == 0)
			handle_get(r);
		else if (strcmp(r->sub, "status") == 0 && strcmp(verb, "update") == 0)
			handle_update(r, 1);
		else if (strcmp(r->sub, "status") == 0 && strcmp(verb, "patch") == 0)
			handle_patch(r, 1);
		else
			ks_reply_status(r, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource", NULL);
		return;
	}
	if (strcmp(verb, "get") == 0)
		handle_get(r);
	else if (strcmp(verb, "list") == 0)
		handle_list(r);
	else if (strcmp(verb, "watch") == 0)
		handle_watch(r, f, nf);
	else if (strcmp(verb, "create") == 0) {
		if (r->name[0])
			ks_reply_status(r, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource", NULL);
		else
			handle_create(r);
	} else if (strcmp(verb, "update") == 0)
		handle_update(r, 0);
	else if (strcmp(verb, "patch") == 0) {
		const char *ct = ks_req_header(r, "Content-Type");
		if (ct && strncasecmp(ct, "application/apply-patch", 23) == 0) {
			ks_reply_status(r, 415, "UnsupportedMediaType",
					"server-side apply is not supported by kubesim: use client-side kubectl apply",
					NULL);
			return;
		}
		handle_patch(r, 0);
	} else if (strcmp(verb, "delete") == 0)
		handle_delete(r);
	else if (strcmp(verb, "deletecollection") == 0)
		handle_deletecollection(r);
	else
		ks_reply_status(r, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource", NULL);
}

/* The max-in-flight counter a request goes to (inflight.h). */
static enum ks_inflight_kind inflight_kind(ks_req *r)
{
	for (size_t i = 0; i < r->user.n_groups; i++)
		if (strcmp(r->user.groups[i], "system:masters") == 0)
			return KS_INFLIGHT_NONE;
	if (!r->is_resource)
		return ks_inflight_classify(strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0 ?
					    "get" : "post", NULL);
	return ks_inflight_classify(r->verb, r->sub);
}

void ks_api_handle(ks_req *r)
{
	ks_api_parse_path(r);
	ks_fault f[8];
	int nf = 0;
	enum ks_inflight_kind ik = KS_INFLIGHT_NONE;
	if (ks_auth_authenticate(r) != 0) {
		ks_reply_status(r, 401, "Unauthorized", "Unauthorized", NULL);
		goto done;
	}
	if (ks_auth_impersonate(r) != 0)
		goto done;
	/* max-in-flight comes after authentication and impersonation and
	 * before authorization, as in upstream's handler chain
	 * (staging/src/k8s.io/apiserver/pkg/server/config.go
	 * DefaultBuildHandlerChain); the injected faults count as handling */
	ik = inflight_kind(r);
	if (!ks_inflight_enter(r->sim->inflight, ik)) {
		/* maxinflight.go tooManyRequests: Retry-After: 1 and
		 * http.Error's plain text, not a Status (client-go makes the
		 * reason TooManyRequests from the code) */
		static const char msg[] = "Too many requests, please try again later.\n";

		ik = KS_INFLIGHT_NONE; /* nothing taken, nothing to give back */
		r->retry_after = 1;
		ks_reply(r, 429, "text/plain; charset=utf-8", msg, sizeof msg - 1);
		goto done;
	}
	if (apply_faults(r, f, &nf))
		goto done;
	ks_attrs a;
	memset(&a, 0, sizeof a);
	if (r->is_resource) {
		a.is_resource = 1;
		a.verb = r->verb;
		a.group = r->group;
		a.resource = r->plural;
		a.sub = r->sub;
		a.ns = r->ns;
		a.name = r->name;
		/* pods/exec over WebSocket is a GET: get, and since 1.35 also
		 * create (pkg/registry/core/pod/rest/subresources.go) */
		if (strcmp(r->sub, "exec") == 0)
			a.verb = "create";
	} else {
		a.verb = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0 ? "get" :
			 strcmp(r->method, "POST") == 0 ? "post" : strcmp(r->method, "PUT") == 0 ? "put" :
			 strcmp(r->method, "DELETE") == 0 ? "delete" : strcmp(r->method, "PATCH") == 0 ? "patch" : "get";
		a.path = r->url;
	}
	char reason[512];
	int allowed = ks_rbac_allowed(r->sim, &r->user, &a, reason, sizeof reason);
	if (allowed && r->is_resource && strcmp(r->sub, "exec") == 0) {
		a.verb = "get";
		allowed = ks_rbac_allowed(r->sim, &r->user, &a, reason, sizeof reason);
	}
	if (!allowed) {
		char m[2048];
		ks_rbac_forbidden_msg(m, sizeof m, &r->user, &a);
		if (r->is_resource) {
			char q[128];
			if (r->group[0])
				snprintf(q, sizeof q, "%s.%s", r->plural, r->group);
			else
				snprintf(q, sizeof q, "%s", r->plural);
			buf b = BUF_INIT(8192);
			if (r->name[0])
				buf_printf(&b, "%s \"%s\" is forbidden: %s", q, r->name, m);
			else
				buf_printf(&b, "%s is forbidden: %s", q, m);
			ks_reply_status(r, 403, "Forbidden", buf_cstr(&b), details_new(r->name, r->group, r->plural));
			buf_free(&b);
		} else {
			char q[2100];
			snprintf(q, sizeof q, "forbidden: %s", m);
			ks_reply_status(r, 403, "Forbidden", q, cJSON_CreateObject());
		}
		goto done;
	}
	if (!r->is_resource) {
		if (!ks_discovery_handle(r))
			reply_notfound_generic(r);
		goto done;
	}
	if (r->res < 0) {
		reply_notfound_generic(r);
		goto done;
	}
	handle_resource(r, f, nf);
done:
	ks_inflight_leave(r->sim->inflight, ik);
	ks_metrics_count(r->sim->metrics, metric_verb(r), r->group, r->version, r->is_resource ? r->plural : "",
			 r->sub, r->ns[0] ? "namespace" : (r->name[0] ? "cluster" : "cluster"), r->code);
}

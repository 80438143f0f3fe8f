/*
 * kube/resources: paths and bodies of the typed operations (resources.h).
 * Each builds its path (names checked, query values escaped) and goes
 * through kube_rest_json / kube_rest_do, which carry retries and errors.
 */
#include "kube/resources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/client_priv.h"
#include "kube/objects.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

#define PATH_MAX_LEN 8192

int kube_check_segment(const char *s, const char *what)
{
	if (!s || !*s)
		return err_set(ERR_INVALID, "%s is empty", what);
	if (!strcmp(s, ".") || !strcmp(s, ".."))
		return err_set(ERR_INVALID, "%s may not be '%s'", what, s);
	if (strchr(s, '/') || strchr(s, '%'))
		return err_set(ERR_INVALID, "%s \"%s\" may not contain '/' or '%%'", what, s);
	if (strlen(s) > 253)
		return err_set(ERR_INVALID, "%s is longer than 253 characters", what);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == '?' || *p == '#' || *p >= 0x7f)
			return err_set(ERR_INVALID, "%s \"%s\" has a character not allowed in a name",
				       what, s);
	return 0;
}

/* "/apis/batch/v1/namespaces/NS/jobs[/NAME]" and the like. */
static int res_path(buf *b, const char *prefix, const char *ns, const char *resource,
		    const char *name)
{
	int rc;
	if (ns && (rc = kube_check_segment(ns, "namespace")) < 0)
		return rc;
	if (name && (rc = kube_check_segment(name, "name")) < 0)
		return rc;
	buf_append_str(b, prefix);
	if (ns)
		buf_printf(b, "/namespaces/%s", ns);
	buf_printf(b, "/%s", resource);
	if (name)
		buf_printf(b, "/%s", name);
	return 0;
}

static int add_query(buf *b, const char *key, const char *val)
{
	if (!val || !*val)
		return 0;
	buf_append_str(b, strchr(buf_cstr(b), '?') ? "&" : "?");
	buf_append_str(b, key);
	buf_append_byte(b, '=');
	return kube_query_escape(b, val);
}

static int json_at(cJSON **out, kube_client *c, const char *method, buf *path, const cJSON *body,
		   int64_t deadline)
{
	int rc = kube_rest_json(out, c, method, buf_cstr(path), body, deadline);
	buf_free(path);
	return rc;
}

/* ---- Jobs ------------------------------------------------------------- */

int kube_job_create(cJSON **out, kube_client *c, const char *ns, const cJSON *job,
		    int64_t deadline)
{
	buf p = BUF_INIT(PATH_MAX_LEN);
	int rc;
	if (out)
		*out = NULL;
	if ((rc = res_path(&p, "/apis/batch/v1", ns, "jobs", NULL)) < 0) {
		buf_free(&p);
		return rc;
	}
	return json_at(out, c, "POST", &p, job, deadline);
}

int kube_job_get(cJSON **out, kube_client *c, const char *ns, const char *name, int64_t deadline)
{
	buf p = BUF_INIT(PATH_MAX_LEN);
	int rc;
	*out = NULL;
	if ((rc = res_path(&p, "/apis/batch/v1", ns, "jobs", name)) < 0) {
		buf_free(&p);
		return rc;
	}
	return json_at(out, c, "GET", &p, NULL, deadline);
}

int kube_job_list(cJSON **out, kube_client *c, const char *ns, const char *label_selector,
		  int64_t deadline)
{
	buf p = BUF_INIT(PATH_MAX_LEN);
	int rc;
	*out = NULL;
	if ((rc = res_path(&p, "/apis/batch/v1", ns, "jobs", NULL)) < 0 ||
	    (rc = add_query(&p, "labelSelector", label_selector)) < 0) {
		buf_free(&p);
		return rc < 0 ? rc : err_set(ERR_TOOBIG, "selector too long");
	}
	return json_at(out, c, "GET", &p, NULL, deadline);
}

int kube_job_delete(kube_client *c, const char *ns, const char *name, const char *propagation,
		    int64_t deadline)
{
	buf p = BUF_INIT(PATH_MAX_LEN);
	int rc;
	if (!propagation)
		propagation = "Background";
	if (strcmp(propagation, "Background") && strcmp(propagation, "Foreground") &&
	    strcmp(propagation, "Orphan"))
		return err_set(ERR_INVALID, "propagationPolicy \"%s\" is not Background, Foreground "
			       "or Orphan", propagation);
	if ((rc = res_path(&p, "/apis/batch/v1", ns, "jobs", name)) < 0 ||
	    (rc = add_query(&p, "propagationPolicy", propagation)) < 0) {
		buf_free(&p);
		return rc;
	}
	return json_at(NULL, c, "DELETE", &p, NULL, deadline);
}

static int watch_at(kube_client *c, const char *prefix, const char *ns, const char *resource,
		    const char *label_selector, const kube_watch_opts *opts, kube_watch_cb cb,
		    void *ud)
{
	kube_watch_opts o = KUBE_WATCH_OPTS_INIT;
	buf p = BUF_INIT(PATH_MAX_LEN);
	int rc;
	if (opts)
		o = *opts;
	if ((rc = res_path(&p, prefix, ns, resource, NULL)) < 0) {
		buf_free(&p);
		return rc;
	}
	o.path = buf_cstr(&p);
	if (label_selector)
		o.label_selector = label_selector;
	rc = kube_watch_run(c, &o, cb, ud);
	buf_free(&p);
	return rc;
}

int kube_job_watch(kube_client *c, const char *ns, const char *label_selector,
		   const kube_watch_opts *opts, kube_watch_cb cb, void *ud)
{
	return watch_at(c, "/apis/batch/v1", ns, "jobs", label_selector, opts, cb, ud);
}

/* ---- Pods ------------------------------------------------------------- */

int kube_pod_get(cJSON **out, kube_client *c, const char *ns, const char *name, int64_t deadline)
{
	buf p = BUF_INIT(PATH_MAX_LEN);
	int rc;
	*out = NULL;
	if ((rc = res_path(&p, "/api/v1", ns, "pods", name)) < 0) {
		buf_free(&p);
		return rc;
	}
	return json_at(out, c, "GET", &p, NULL, deadline);
}

int kube_pod_list(cJSON **out, kube_client *c, const char *ns, const char *label_selector,
		  const char *field_selector, int64_t deadline)
{
	buf p = BUF_INIT(PATH_MAX_LEN);
	int rc;
	*out = NULL;
	if ((rc = res_path(&p, "/api/v1", ns, "pods", NULL)) < 0 ||
	    (rc = add_query(&p, "labelSelector", label_selector)) < 0 ||
	    (rc = add_query(&p, "fieldSelector", field_selector)) < 0) {
		buf_free(&p);
		return rc;
	}
	return json_at(out, c, "GET", &p, NULL, deadline);
}

int kube_pod_watch(kube_client *c, const char *ns, const char *label_selector,
		   const kube_watch_opts *opts, kube_watch_cb cb, void *ud)
{
	return watch_at(c, "/api/v1", ns, "pods", label_selector, opts, cb, ud);
}

/* ---- Events ----------------------------------------------------------- */

int kube_event_list_for(cJSON **out, kube_client *c, const char *ns, const char *kind,
			const char *name, const char *uid, int64_t deadline)
{
	buf p = BUF_INIT(PATH_MAX_LEN);
	buf sel = BUF_INIT(2048);
	int rc;
	*out = NULL;
	if ((rc = kube_check_segment(name, "involvedObject name")) < 0)
		goto fail;
	/* Field selectors separate terms with ','; names cannot contain one. */
	if (kind)
		buf_printf(&sel, "involvedObject.kind=%s,", kind);
	buf_printf(&sel, "involvedObject.name=%s", name);
	if (uid)
		buf_printf(&sel, ",involvedObject.uid=%s", uid);
	if ((rc = res_path(&p, "/api/v1", ns, "events", NULL)) < 0 ||
	    (rc = add_query(&p, "fieldSelector", buf_cstr(&sel))) < 0)
		goto fail;
	buf_free(&sel);
	return json_at(out, c, "GET", &p, NULL, deadline);
fail:
	buf_free(&sel);
	buf_free(&p);
	return rc;
}

/* ---- logs ------------------------------------------------------------- */

int kube_pod_logs(kube_client *c, const char *ns, const char *pod, const kube_log_opts *opts,
		  kube_rest_data_cb cb, void *ud)
{
	kube_log_opts def = KUBE_LOG_OPTS_INIT;
	buf p = BUF_INIT(PATH_MAX_LEN);
	int rc;

	if (!opts)
		opts = &def;
	if ((rc = res_path(&p, "/api/v1", ns, "pods", pod)) < 0)
		goto done;
	buf_append_str(&p, "/log");
	if ((rc = add_query(&p, "container", opts->container)) < 0)
		goto done;
	/* Booleans are only sent when true: the server reads any value but
	 * "false"/"0" as true (s/apimachinery/pkg/runtime/conversion.go). */
	if (opts->follow)
		add_query(&p, "follow", "true");
	if (opts->previous)
		add_query(&p, "previous", "true");
	if (opts->timestamps)
		add_query(&p, "timestamps", "true");
	if (opts->tail_lines >= 0)
		buf_printf(&p, "%stailLines=%lld", strchr(buf_cstr(&p), '?') ? "&" : "?",
			   (long long)opts->tail_lines);
	if (opts->limit_bytes > 0)
		buf_printf(&p, "%slimitBytes=%lld", strchr(buf_cstr(&p), '?') ? "&" : "?",
			   (long long)opts->limit_bytes);
	if (opts->since_seconds > 0)
		buf_printf(&p, "%ssinceSeconds=%lld", strchr(buf_cstr(&p), '?') ? "&" : "?",
			   (long long)opts->since_seconds);
	kube_request req = KUBE_REQUEST_INIT;
	req.path = buf_cstr(&p);
	req.accept = "*/*";
	req.on_data = cb;
	req.ud = ud;
	req.cancel = opts->cancel;
	req.deadline_ms = opts->deadline_ms;
	if (!opts->follow && !req.deadline_ms)
		req.deadline_ms = clock_mono_ms() + kube_client_request_timeout_ms(c);
	rc = kube_rest_do(NULL, c, &req);
done:
	buf_free(&p);
	return rc;
}

static int to_buf(void *ud, const char *p, size_t n)
{
	buf *b = ud;
	if (buf_append(b, p, n) < 0)
		return err_set(ERR_TOOBIG, "log larger than %zu bytes", b->max);
	return 0;
}

int kube_pod_logs_buf(buf *out, kube_client *c, const char *ns, const char *pod,
		      const kube_log_opts *opts)
{
	return kube_pod_logs(c, ns, pod, opts, to_buf, out);
}

/* ---- access reviews --------------------------------------------------- */

int kube_access_review(int *allowed, char **reason_out, kube_client *c, const kube_access *a,
		       int64_t deadline)
{
	cJSON *body = cJSON_CreateObject(), *resp = NULL;
	int rc;

	*allowed = 0;
	if (reason_out)
		*reason_out = NULL;
	if (!body)
		return err_set(ERR_NOMEM, "out of memory");
	if (!a->verb) {
		cJSON_Delete(body);
		return err_set(ERR_INVALID, "access review: no verb");
	}
	cJSON_AddStringToObject(body, "apiVersion", "authorization.k8s.io/v1");
	cJSON_AddStringToObject(body, "kind", "SelfSubjectAccessReview");
	cJSON *spec = cJSON_AddObjectToObject(body, "spec");
	if (a->resource) {
		cJSON *ra = cJSON_AddObjectToObject(spec, "resourceAttributes");
		if (a->ns && *a->ns)
			cJSON_AddStringToObject(ra, "namespace", a->ns);
		cJSON_AddStringToObject(ra, "verb", a->verb);
		cJSON_AddStringToObject(ra, "group", a->group ? a->group : "");
		cJSON_AddStringToObject(ra, "resource", a->resource);
		if (a->subresource && *a->subresource)
			cJSON_AddStringToObject(ra, "subresource", a->subresource);
		if (a->name && *a->name)
			cJSON_AddStringToObject(ra, "name", a->name);
	} else {
		cJSON *nr = cJSON_AddObjectToObject(spec, "nonResourceAttributes");
		cJSON_AddStringToObject(nr, "path", a->path ? a->path : "/");
		cJSON_AddStringToObject(nr, "verb", a->verb);
	}
	rc = kube_rest_json(&resp, c, "POST",
			    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body, deadline);
	cJSON_Delete(body);
	if (rc < 0)
		return rc;
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(resp, "status");
	if (!cJSON_IsObject(st)) {
		cJSON_Delete(resp);
		return err_set(ERR_INVALID, "SelfSubjectAccessReview: the answer has no status");
	}
	*allowed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "allowed")) &&
		   !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "denied"));
	if (reason_out) {
		const cJSON *r = cJSON_GetObjectItemCaseSensitive(st, "reason");
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(st, "evaluationError");
		if (cJSON_IsString(r) && r->valuestring[0])
			*reason_out = str_dup(r->valuestring);
		else if (cJSON_IsString(e) && e->valuestring[0])
			*reason_out = str_dup(e->valuestring);
	}
	cJSON_Delete(resp);
	return 0;
}

int kube_rules_review(cJSON **out, kube_client *c, const char *ns, int64_t deadline)
{
	cJSON *body = cJSON_CreateObject(), *resp = NULL;
	int rc;

	*out = NULL;
	if (!body)
		return err_set(ERR_NOMEM, "out of memory");
	if ((rc = kube_check_segment(ns, "namespace")) < 0) {
		cJSON_Delete(body);
		return rc;
	}
	cJSON_AddStringToObject(body, "apiVersion", "authorization.k8s.io/v1");
	cJSON_AddStringToObject(body, "kind", "SelfSubjectRulesReview");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(body, "spec"), "namespace", ns);
	rc = kube_rest_json(&resp, c, "POST",
			    "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", body, deadline);
	cJSON_Delete(body);
	if (rc < 0)
		return rc;
	cJSON *st = cJSON_DetachItemFromObjectCaseSensitive(resp, "status");
	cJSON_Delete(resp);
	if (!cJSON_IsObject(st)) {
		cJSON_Delete(st);
		return err_set(ERR_INVALID, "SelfSubjectRulesReview: the answer has no status");
	}
	*out = st;
	return 0;
}

/* ---- TokenRequest ----------------------------------------------------- */

int kube_token_request(char **token_out, int64_t *expiry_ms_out, kube_client *c, const char *ns,
		       const char *sa, const char *const *audiences, int64_t expiration_seconds,
		       int64_t deadline)
{
	buf p = BUF_INIT(PATH_MAX_LEN);
	cJSON *body = cJSON_CreateObject(), *resp = NULL;
	int rc;

	*token_out = NULL;
	if (expiry_ms_out)
		*expiry_ms_out = 0;
	if (!body)
		return err_set(ERR_NOMEM, "out of memory");
	if ((rc = res_path(&p, "/api/v1", ns, "serviceaccounts", sa)) < 0)
		goto done;
	buf_append_str(&p, "/token");
	cJSON_AddStringToObject(body, "apiVersion", "authentication.k8s.io/v1");
	cJSON_AddStringToObject(body, "kind", "TokenRequest");
	cJSON *spec = cJSON_AddObjectToObject(body, "spec");
	cJSON *aud = cJSON_AddArrayToObject(spec, "audiences");
	for (size_t i = 0; audiences && audiences[i]; i++)
		cJSON_AddItemToArray(aud, cJSON_CreateString(audiences[i]));
	if (expiration_seconds > 0)
		cJSON_AddNumberToObject(spec, "expirationSeconds", (double)expiration_seconds);
	rc = kube_rest_json(&resp, c, "POST", buf_cstr(&p), body, deadline);
	if (rc < 0)
		goto done;
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(resp, "status");
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(st, "token");
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(st, "expirationTimestamp");
	if (!cJSON_IsString(tok) || !tok->valuestring[0]) {
		rc = err_set(ERR_INVALID, "TokenRequest: the answer has no status.token");
		goto done;
	}
	if (expiry_ms_out && cJSON_IsString(exp))
		kube_time_parse(expiry_ms_out, exp->valuestring);
	*token_out = str_dup(tok->valuestring);
	if (!*token_out)
		rc = err_set(ERR_NOMEM, "out of memory");
done:
	buf_free(&p);
	cJSON_Delete(body);
	cJSON_Delete(resp);
	return rc;
}

/* ---- Namespaces ------------------------------------------------------- */

int kube_namespace_get(cJSON **out, kube_client *c, const char *name, int64_t deadline)
{
	buf p = BUF_INIT(PATH_MAX_LEN);
	int rc;
	*out = NULL;
	if ((rc = res_path(&p, "/api/v1", NULL, "namespaces", name)) < 0) {
		buf_free(&p);
		return rc;
	}
	return json_at(out, c, "GET", &p, NULL, deadline);
}

int kube_namespace_create(cJSON **out, kube_client *c, const char *name, const cJSON *labels,
			  int64_t deadline)
{
	cJSON *body = cJSON_CreateObject();
	int rc;
	if (out)
		*out = NULL;
	if (!body)
		return err_set(ERR_NOMEM, "out of memory");
	if ((rc = kube_check_segment(name, "namespace")) < 0) {
		cJSON_Delete(body);
		return rc;
	}
	cJSON_AddStringToObject(body, "apiVersion", "v1");
	cJSON_AddStringToObject(body, "kind", "Namespace");
	cJSON *md = cJSON_AddObjectToObject(body, "metadata");
	cJSON_AddStringToObject(md, "name", name);
	if (labels)
		cJSON_AddItemToObject(md, "labels", cJSON_Duplicate(labels, 1));
	rc = kube_rest_json(out, c, "POST", "/api/v1/namespaces", body, deadline);
	cJSON_Delete(body);
	return rc;
}

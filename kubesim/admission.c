/*
 * admission: the two admission plugins clients meet most.
 *
 * Pod Security (k/k staging/src/k8s.io/pod-security-admission/policy/check_*.go):
 * a namespace labelled pod-security.kubernetes.io/enforce=baseline or
 * restricted rejects pods that violate the level, with upstream's message
 *   violates PodSecurity "restricted:latest": REASON (DETAIL), ...
 * checks in upstream's order (by check ID).
 *
 * ResourceQuota (k/k pkg/quota/v1/evaluator/core/pods.go and
 * plugin/pkg/admission/resourcequota/controller.go): pods, cpu, memory,
 * requests.cpu/memory, limits.cpu/memory against the non-terminal pods
 * in the namespace; "exceeded quota: NAME, requested: ..., used: ...,
 * limited: ..." or "failed quota: NAME: must specify ...".
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubesim/sim.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/str.h"

/* ---- Pod Security ---- */

typedef struct names {
	char v[16][64];
	int n;
} names;

static void names_add(names *n, const char *s)
{
	for (int i = 0; i < n->n; i++)
		if (strcmp(n->v[i], s) == 0)
			return;
	if (n->n < 16)
		snprintf(n->v[n->n++], sizeof n->v[0], "%s", s);
}

/* `container "a"` or `containers "a", "b"` */
static void names_fmt(buf *b, const char *singular, const char *plural, const names *n)
{
	buf_printf(b, "%s ", n->n == 1 ? singular : plural);
	for (int i = 0; i < n->n; i++)
		buf_printf(b, "%s\"%s\"", i ? ", " : "", n->v[i]);
}

static const cJSON *sc_of(const cJSON *o) { return cJSON_GetObjectItemCaseSensitive(o, "securityContext"); }

static const cJSON *list_first(const cJSON *spec, int l)
{
	static const char *k[] = {"initContainers", "containers", "ephemeralContainers"};
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(spec, k[l]);
	return cJSON_IsArray(a) ? a->child : NULL;
}

/* every container of the pod: init, regular, ephemeral */
#define FOR_CONTAINERS(spec, c)        \
	for (int _l = 0; _l < 3; _l++) \
		for (const cJSON *c = list_first(spec, _l); c; c = c->next)

static const char *cname(const cJSON *c)
{
	const char *n = ks_jstr(c, "name");
	return n ? n : "";
}

static void add_violation(buf *out, int *count, const char *reason, const char *detail)
{
	buf_printf(out, "%s%s", *count ? ", " : "", reason);
	if (detail && detail[0])
		buf_printf(out, " (%s)", detail);
	(*count)++;
}

static int is_true(const cJSON *o, const char *k) { return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k)); }

static const char *BASELINE_CAPS[] = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
				      "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT", NULL};

static int in_strs(const char *const *l, const char *s)
{
	for (; *l; l++)
		if (strcmp(*l, s) == 0)
			return 1;
	return 0;
}

static void pss_check(buf *out, int *count, const cJSON *pod, int restricted)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
	const cJSON *psc = sc_of(spec);
	buf d = BUF_INIT(8192);

	/* allowPrivilegeEscalation (restricted) */
	if (restricted) {
		names bad = {0};
		FOR_CONTAINERS(spec, c)
		{
			const cJSON *ape = cJSON_GetObjectItemCaseSensitive(sc_of(c), "allowPrivilegeEscalation");
			if (!cJSON_IsFalse(ape))
				names_add(&bad, cname(c));
		}
		if (bad.n) {
			buf_reset(&d);
			names_fmt(&d, "container", "containers", &bad);
			buf_append_str(&d, " must set securityContext.allowPrivilegeEscalation=false");
			add_violation(out, count, "allowPrivilegeEscalation != false", buf_cstr(&d));
		}
	}
	/* capabilities_baseline */
	{
		names bad = {0};
		names caps = {0};
		FOR_CONTAINERS(spec, c)
		{
			const cJSON *add = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sc_of(c), "capabilities"), "add");
			const cJSON *cap;
			cJSON_ArrayForEach(cap, add)
			{
				if (cJSON_IsString(cap) && !in_strs(BASELINE_CAPS, cap->valuestring)) {
					names_add(&bad, cname(c));
					names_add(&caps, cap->valuestring);
				}
			}
		}
		if (bad.n) {
			buf_reset(&d);
			names_fmt(&d, "container", "containers", &bad);
			buf_append_str(&d, " must not include ");
			for (int i = 0; i < caps.n; i++)
				buf_printf(&d, "%s\"%s\"", i ? ", " : "", caps.v[i]);
			buf_append_str(&d, " in securityContext.capabilities.add");
			add_violation(out, count, "non-default capabilities", buf_cstr(&d));
		}
	}
	/* capabilities_restricted */
	if (restricted) {
		names nodrop = {0}, badadd = {0}, caps = {0};
		FOR_CONTAINERS(spec, c)
		{
			const cJSON *capo = cJSON_GetObjectItemCaseSensitive(sc_of(c), "capabilities");
			const cJSON *drop = cJSON_GetObjectItemCaseSensitive(capo, "drop");
			int has_all = 0;
			const cJSON *x;
			cJSON_ArrayForEach(x, drop) if (cJSON_IsString(x) && strcmp(x->valuestring, "ALL") == 0) has_all = 1;
			if (!has_all)
				names_add(&nodrop, cname(c));
			cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(capo, "add"))
			{
				if (cJSON_IsString(x) && strcmp(x->valuestring, "NET_BIND_SERVICE") != 0 &&
				    in_strs(BASELINE_CAPS, x->valuestring)) {
					names_add(&badadd, cname(c));
					names_add(&caps, x->valuestring);
				}
			}
		}
		if (nodrop.n || badadd.n) {
			buf_reset(&d);
			if (nodrop.n) {
				names_fmt(&d, "container", "containers", &nodrop);
				buf_append_str(&d, " must set securityContext.capabilities.drop=[\"ALL\"]");
			}
			if (badadd.n) {
				if (nodrop.n)
					buf_append_str(&d, "; ");
				names_fmt(&d, "container", "containers", &badadd);
				buf_append_str(&d, " must not include ");
				for (int i = 0; i < caps.n; i++)
					buf_printf(&d, "%s\"%s\"", i ? ", " : "", caps.v[i]);
				buf_append_str(&d, " in securityContext.capabilities.add");
			}
			add_violation(out, count, "unrestricted capabilities", buf_cstr(&d));
		}
	}
	/* hostNamespaces */
	{
		buf_reset(&d);
		const char *ks[] = {"hostNetwork", "hostPID", "hostIPC"};
		int any = 0;
		for (int i = 0; i < 3; i++)
			if (is_true(spec, ks[i])) {
				buf_printf(&d, "%s%s=true", any ? ", " : "", ks[i]);
				any = 1;
			}
		if (any)
			add_violation(out, count, "host namespaces", buf_cstr(&d));
	}
	/* hostPathVolumes */
	{
		names bad = {0};
		const cJSON *v;
		cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(spec, "volumes")) if (cJSON_GetObjectItemCaseSensitive(v, "hostPath")) names_add(&bad, ks_jstr(v, "name") ? ks_jstr(v, "name") : "");
		if (bad.n) {
			buf_reset(&d);
			names_fmt(&d, "volume", "volumes", &bad);
			add_violation(out, count, "hostPath volumes", buf_cstr(&d));
		}
	}
	/* hostPorts */
	{
		names bad = {0};
		buf ports = BUF_INIT(1024);
		FOR_CONTAINERS(spec, c)
		{
			const cJSON *p;
			cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(c, "ports"))
			{
				const cJSON *hp = cJSON_GetObjectItemCaseSensitive(p, "hostPort");
				if (cJSON_IsNumber(hp) && hp->valueint != 0) {
					names_add(&bad, cname(c));
					buf_printf(&ports, "%s%d", ports.len ? ", " : "", hp->valueint);
				}
			}
		}
		if (bad.n) {
			buf_reset(&d);
			names_fmt(&d, "container", "containers", &bad);
			buf_printf(&d, " %s %s", ports.len && strchr(buf_cstr(&ports), ',') ? "use hostPorts" : "uses hostPort", buf_cstr(&ports));
			add_violation(out, count, "hostPort", buf_cstr(&d));
		}
		buf_free(&ports);
	}
	/* privileged */
	{
		names bad = {0};
		FOR_CONTAINERS(spec, c) if (is_true(sc_of(c), "privileged")) names_add(&bad, cname(c));
		if (bad.n) {
			buf_reset(&d);
			names_fmt(&d, "container", "containers", &bad);
			buf_append_str(&d, " must not set securityContext.privileged=true");
			add_violation(out, count, "privileged", buf_cstr(&d));
		}
	}
	/* restrictedVolumes */
	if (restricted) {
		static const char *ok[] = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
					   "projected", "secret", "name", NULL};
		buf_reset(&d);
		int any = 0;
		const cJSON *v;
		cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(spec, "volumes"))
		{
			const cJSON *f;
			cJSON_ArrayForEach(f, v)
			{
				if (!in_strs(ok, f->string)) {
					buf_printf(&d, "%svolume \"%s\" uses restricted volume type \"%s\"", any ? ", " : "",
						   ks_jstr(v, "name") ? ks_jstr(v, "name") : "", f->string);
					any = 1;
				}
			}
		}
		if (any)
			add_violation(out, count, "restricted volume types", buf_cstr(&d));
	}
	/* runAsNonRoot */
	if (restricted) {
		const cJSON *pr = cJSON_GetObjectItemCaseSensitive(psc, "runAsNonRoot");
		names explicit_false = {0}, unset = {0};
		int pod_true = cJSON_IsTrue(pr), pod_false = cJSON_IsFalse(pr);
		FOR_CONTAINERS(spec, c)
		{
			const cJSON *cr = cJSON_GetObjectItemCaseSensitive(sc_of(c), "runAsNonRoot");
			if (cJSON_IsFalse(cr))
				names_add(&explicit_false, cname(c));
			else if (!cJSON_IsTrue(cr) && !pod_true)
				names_add(&unset, cname(c));
		}
		if (pod_false || explicit_false.n || unset.n) {
			buf_reset(&d);
			if (pod_false)
				buf_append_str(&d, "pod must not set securityContext.runAsNonRoot=false");
			if (explicit_false.n) {
				if (d.len)
					buf_append_str(&d, "; ");
				names_fmt(&d, "container", "containers", &explicit_false);
				buf_append_str(&d, " must not set securityContext.runAsNonRoot=false");
			}
			if (unset.n && !pod_false) {
				if (d.len)
					buf_append_str(&d, "; ");
				buf_append_str(&d, "pod or ");
				names_fmt(&d, "container", "containers", &unset);
				buf_append_str(&d, " must set securityContext.runAsNonRoot=true");
			}
			add_violation(out, count, "runAsNonRoot != true", buf_cstr(&d));
		}
	}
	/* runAsUser */
	if (restricted) {
		const cJSON *pu = cJSON_GetObjectItemCaseSensitive(psc, "runAsUser");
		names bad = {0};
		FOR_CONTAINERS(spec, c)
		{
			const cJSON *cu = cJSON_GetObjectItemCaseSensitive(sc_of(c), "runAsUser");
			if (cJSON_IsNumber(cu) && cu->valuedouble == 0)
				names_add(&bad, cname(c));
		}
		int podbad = cJSON_IsNumber(pu) && pu->valuedouble == 0;
		if (podbad || bad.n) {
			buf_reset(&d);
			if (podbad)
				buf_append_str(&d, "pod must not set runAsUser=0");
			if (bad.n) {
				if (podbad)
					buf_append_str(&d, "; ");
				names_fmt(&d, "container", "containers", &bad);
				buf_append_str(&d, " must not set runAsUser=0");
			}
			add_violation(out, count, "runAsUser=0", buf_cstr(&d));
		}
	}
	/* seccompProfile */
	{
		const char *pt = ks_jstr(cJSON_GetObjectItemCaseSensitive(psc, "seccompProfile"), "type");
		int pod_ok = pt && (strcmp(pt, "RuntimeDefault") == 0 || strcmp(pt, "Localhost") == 0);
		int pod_unconfined = pt && strcmp(pt, "Unconfined") == 0;
		names unset = {0}, unconf = {0};
		FOR_CONTAINERS(spec, c)
		{
			const char *ct = ks_jstr(cJSON_GetObjectItemCaseSensitive(sc_of(c), "seccompProfile"), "type");
			if (ct && strcmp(ct, "Unconfined") == 0)
				names_add(&unconf, cname(c));
			else if (!ct && !pod_ok)
				names_add(&unset, cname(c));
		}
		if (pod_unconfined || unconf.n || (restricted && unset.n)) {
			buf_reset(&d);
			if (pod_unconfined)
				buf_append_str(&d, "pod must not set securityContext.seccompProfile.type to \"Unconfined\"");
			if (unconf.n) {
				if (d.len)
					buf_append_str(&d, "; ");
				names_fmt(&d, "container", "containers", &unconf);
				buf_append_str(&d, " must not set securityContext.seccompProfile.type to \"Unconfined\"");
			}
			if (restricted && unset.n && !pod_unconfined) {
				if (d.len)
					buf_append_str(&d, "; ");
				buf_append_str(&d, "pod or ");
				names_fmt(&d, "container", "containers", &unset);
				buf_append_str(&d, " must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"");
			}
			add_violation(out, count, "seccompProfile", buf_cstr(&d));
		}
	}
	buf_free(&d);
}

/* ---- quantities ---- */

/* Parse a Kubernetes quantity into milli-units (cpu) or units. */
static int qty_parse(double *out, const char *s)
{
	if (!s || !*s)
		return -1;
	char *end;
	double v = strtod(s, &end);
	if (end == s || !isfinite(v) || v < 0)
		return -1;
	static const struct {
		const char *suf;
		double mul;
	} sfx[] = {{"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
		   {"Pi", 1125899906842624.0}, {"Ei", 1152921504606846976.0}, {"n", 1e-9}, {"u", 1e-6},
		   {"m", 1e-3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18}, {"", 1}};
	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
		if (strcmp(end, sfx[i].suf) == 0) {
			*out = v * sfx[i].mul;
			return 0;
		}
	}
	return -1;
}

static void qty_fmt(char *out, size_t n, double v, int cpu)
{
	if (cpu) {
		double m = v * 1000;
		if (fabs(m - round(m / 1000) * 1000) < 1e-6)
			snprintf(out, n, "%.0f", round(m / 1000));
		else
			snprintf(out, n, "%.0fm", round(m));
	} else {
		double x = v;
		if (x >= 1073741824.0 && fmod(x, 1073741824.0) == 0)
			snprintf(out, n, "%.0fGi", x / 1073741824.0);
		else if (x >= 1048576.0 && fmod(x, 1048576.0) == 0)
			snprintf(out, n, "%.0fMi", x / 1048576.0);
		else if (x >= 1024.0 && fmod(x, 1024.0) == 0)
			snprintf(out, n, "%.0fKi", x / 1024.0);
		else
			snprintf(out, n, "%.0f", x);
	}
}

/* Sum a pod's requests/limits for a resource name (cpu, memory). */
static int pod_sum(const cJSON *pod, const char *kind /* requests|limits */, const char *res, double *out,
		   names *missing)
{
	*out = 0;
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(spec, "containers"))
	{
		const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c, "resources");
		const char *v = ks_jstr(cJSON_GetObjectItemCaseSensitive(rs, kind), res);
		/* requests default to limits (k/k pkg/apis/core/v1/defaults.go) */
		if (!v && strcmp(kind, "requests") == 0)
			v = ks_jstr(cJSON_GetObjectItemCaseSensitive(rs, "limits"), res);
		double q;
		if (!v || qty_parse(&q, v)) {
			if (missing)
				names_add(missing, cname(c));
			continue;
		}
		*out += q;
	}
	return 0;
}

static int pod_terminal(const cJSON *pod)
{
	const char *ph = ks_jstr(cJSON_GetObjectItemCaseSensitive(pod, "status"), "phase");
	return ph && (strcmp(ph, "Succeeded") == 0 || strcmp(ph, "Failed") == 0);
}

/* Usage of a quota resource name by one pod. 1 if the name is tracked. */
static int pod_usage(const cJSON *pod, const char *name, double *out, names *missing)
{
	if (strcmp(name, "pods") == 0 || strcmp(name, "count/pods") == 0) {
		*out = 1;
		return 1;
	}
	if (strcmp(name, "cpu") == 0 || strcmp(name, "requests.cpu") == 0)
		return pod_sum(pod, "requests", "cpu", out, missing) == 0;
	if (strcmp(name, "memory") == 0 || strcmp(name, "requests.memory") == 0)
		return pod_sum(pod, "requests", "memory", out, missing) == 0;
	if (strcmp(name, "limits.cpu") == 0)
		return pod_sum(pod, "limits", "cpu", out, missing) == 0;
	if (strcmp(name, "limits.memory") == 0)
		return pod_sum(pod, "limits", "memory", out, missing) == 0;
	return 0;
}

static int is_cpu(const char *name) { return strstr(name, "cpu") != NULL; }

double ks_quota_used(ks_sim *s, const char *ns, const char *name, const char *skip_uid)
{
	int pr = ks_resource_by_plural("pods");
	double sum = 0;
	size_t n = ks_store_count(s->store, pr);
	for (size_t i = 0; i < n; i++) {
		cJSON *p = ks_store_at(s->store, pr, i);
		if (!str_eq(ks_meta(p, "namespace"), ns) || pod_terminal(p))
			continue;
		if (skip_uid && str_eq(ks_meta(p, "uid"), skip_uid))
			continue;
		double u;
		if (pod_usage(p, name, &u, NULL))
			sum += u;
	}
	return sum;
}

/* Format a quota amount for status/used. */
void ks_quota_fmt(char *out, size_t n, const char *name, double v)
{
	if (strcmp(name, "pods") == 0 || strcmp(name, "count/pods") == 0)
		snprintf(out, n, "%.0f", v);
	else
		qty_fmt(out, n, v, is_cpu(name));
}

static int quota_check(ks_sim *s, const cJSON *pod)
{
	int qr = ks_resource_by_plural("resourcequotas");
	const char *ns = ks_meta(pod, "namespace");
	size_t n = ks_store_count(s->store, qr);
	for (size_t i = 0; i < n; i++) {
		cJSON *q = ks_store_at(s->store, qr, i);
		if (!str_eq(ks_meta(q, "namespace"), ns))
			continue;
		const cJSON *hard = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(q, "spec"), "hard");
		buf req = BUF_INIT(2048), used = BUF_INIT(2048), lim = BUF_INIT(2048), miss = BUF_INIT(2048);
		int exceeded = 0;
		const cJSON *h;
		cJSON_ArrayForEach(h, hard)
		{
			double limit, u, cur;
			names missing = {0};
			if (!cJSON_IsString(h) || qty_parse(&limit, h->valuestring))
				continue;
			if (!pod_usage(pod, h->string, &u, &missing))
				continue;
			if (missing.n) {
				buf_printf(&miss, "%s%s for: ", miss.len ? "; " : "", h->string);
				for (int k = 0; k < missing.n; k++)
					buf_printf(&miss, "%s%s", k ? "," : "", missing.v[k]);
				continue;
			}
			cur = ks_quota_used(s, ns, h->string, NULL);
			if (cur + u > limit + 1e-9) {
				char a[64], b[64], c[64];
				ks_quota_fmt(a, sizeof a, h->string, u);
				ks_quota_fmt(b, sizeof b, h->string, cur);
				ks_quota_fmt(c, sizeof c, h->string, limit);
				buf_printf(&req, "%s%s=%s", req.len ? "," : "", h->string, a);
				buf_printf(&used, "%s%s=%s", used.len ? "," : "", h->string, b);
				buf_printf(&lim, "%s%s=%s", lim.len ? "," : "", h->string, c);
				exceeded = 1;
			}
		}
		int rc = 0;
		if (miss.len)
			rc = err_set(ERR_FORBIDDEN, "failed quota: %s: must specify %s", ks_meta(q, "name"), buf_cstr(&miss));
		else if (exceeded)
			rc = err_set(ERR_FORBIDDEN, "exceeded quota: %s, requested: %s, used: %s, limited: %s", ks_meta(q, "name"),
				     buf_cstr(&req), buf_cstr(&used), buf_cstr(&lim));
		buf_free(&req);
		buf_free(&used);
		buf_free(&lim);
		buf_free(&miss);
		if (rc)
			return rc;
	}
	return 0;
}

int ks_admit_pod(ks_sim *s, const cJSON *pod)
{
	const char *ns = ks_meta(pod, "namespace");
	cJSON *nso = ks_store_get(s->store, ks_resource_by_plural("namespaces"), "", ns ? ns : "");
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(nso, "metadata"), "labels");
	const char *level = ks_jstr(labels, "pod-security.kubernetes.io/enforce");
	const char *ver = ks_jstr(labels, "pod-security.kubernetes.io/enforce-version");
	if (level && (strcmp(level, "baseline") == 0 || strcmp(level, "restricted") == 0)) {
		buf v = BUF_INIT(16384);
		int count = 0;
		pss_check(&v, &count, pod, strcmp(level, "restricted") == 0);
		if (count) {
			int rc = err_set(ERR_FORBIDDEN, "violates PodSecurity \"%s:%s\": %s", level, ver ? ver : "latest", buf_cstr(&v));
			buf_free(&v);
			return rc;
		}
		buf_free(&v);
	}
	return quota_check(s, pod);
}

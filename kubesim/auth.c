/*
 * auth: who is asking. Bearer tokens (the admin token written into the
 * kubeconfig, and ServiceAccount tokens minted by TokenRequest), client
 * certificates verified against kubesim's CA (CN = user, O = groups, as
 * k/k staging/src/k8s.io/apiserver/pkg/authentication/request/x509/x509.go
 * CommonNameUserConversion), anonymous otherwise; then impersonation
 * (k/k staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go).
 *
 * ServiceAccount tokens are JWTs (HS256 with a key made at start-up;
 * clients never verify the signature, kubesim does) carrying the claims
 * upstream puts in them (k/k pkg/serviceaccount/claims.go): iss, sub, aud,
 * exp, iat, nbf and kubernetes.io {namespace, serviceaccount, pod}. A token
 * is rejected once expired, or when its ServiceAccount or bound pod is
 * gone or was recreated with another uid.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "kubesim/server.h"
#include "kubesim/sim.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

#define MAX_TOKEN_LEN 16384

void ks_user_add_group(ks_user *u, const char *g)
{
	for (size_t i = 0; i < u->n_groups; i++)
		if (strcmp(u->groups[i], g) == 0)
			return;
	if (u->n_groups >= KS_MAX_GROUPS)
		return;
	snprintf(u->groups[u->n_groups++], sizeof u->groups[0], "%s", g);
}

static void b64url(buf *out, const void *p, size_t n)
{
	buf t = BUF_INIT(MAX_TOKEN_LEN);
	str_base64_encode(&t, p, n);
	for (size_t i = 0; i < t.len; i++) {
		char c = t.data[i];
		if (c == '=')
			break;
		buf_append_byte(out, (unsigned char)(c == '+' ? '-' : c == '/' ? '_' : c));
	}
	buf_free(&t);
}

static int b64url_decode(buf *out, const char *s, size_t n)
{
	buf t = BUF_INIT(MAX_TOKEN_LEN);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+' || c == '/' || c == '=') {
			buf_free(&t);
			return ERR_INVALID;
		}
		buf_append_byte(&t, (unsigned char)(c == '-' ? '+' : c == '_' ? '/' : c));
	}
	while (t.len % 4)
		buf_append_byte(&t, '=');
	int rc = str_base64_decode(out, buf_cstr(&t), t.len);
	buf_free(&t);
	return rc;
}

static void sign(ks_sim *s, const char *data, size_t n, unsigned char mac[32])
{
	unsigned int len = 32;
	HMAC(EVP_sha256(), s->sa_key, sizeof s->sa_key, (const unsigned char *)data, n, mac, &len);
}

char *ks_auth_token_new(ks_sim *s, const char *ns, const char *sa, const char *sa_uid,
			const char *pod_name, const char *pod_uid, int64_t exp_unix, int64_t now_unix)
{
	cJSON *c = cJSON_CreateObject();
	cJSON *aud = cJSON_AddArrayToObject(c, "aud");
	cJSON_AddItemToArray(aud, cJSON_CreateString("https://kubernetes.default.svc.cluster.local"));
	cJSON_AddNumberToObject(c, "exp", (double)exp_unix);
	cJSON_AddNumberToObject(c, "iat", (double)now_unix);
	cJSON_AddStringToObject(c, "iss", "https://kubernetes.default.svc.cluster.local");
	char jti[37];
	ks_uid_new(jti);
	cJSON_AddStringToObject(c, "jti", jti);
	cJSON *k = cJSON_AddObjectToObject(c, "kubernetes.io");
	cJSON_AddStringToObject(k, "namespace", ns);
	if (pod_name) {
		cJSON *p = cJSON_AddObjectToObject(k, "pod");
		cJSON_AddStringToObject(p, "name", pod_name);
		cJSON_AddStringToObject(p, "uid", pod_uid ? pod_uid : "");
	}
	cJSON *sao = cJSON_AddObjectToObject(k, "serviceaccount");
	cJSON_AddStringToObject(sao, "name", sa);
	cJSON_AddStringToObject(sao, "uid", sa_uid);
	cJSON_AddNumberToObject(c, "nbf", (double)now_unix);
	char sub[600];
	snprintf(sub, sizeof sub, "system:serviceaccount:%s:%s", ns, sa);
	cJSON_AddStringToObject(c, "sub", sub);
	char *payload = cJSON_PrintUnformatted(c);
	cJSON_Delete(c);
	if (!payload)
		return NULL;
	buf t = BUF_INIT(MAX_TOKEN_LEN);
	const char *hdr = "{\"alg\":\"HS256\",\"kid\":\"kubesim\",\"typ\":\"JWT\"}";
	b64url(&t, hdr, strlen(hdr));
	buf_append_byte(&t, '.');
	b64url(&t, payload, strlen(payload));
	free(payload);
	unsigned char mac[32];
	sign(s, t.data, t.len, mac);
	buf_append_byte(&t, '.');
	b64url(&t, mac, sizeof mac);
	return buf_take(&t, NULL);
}

/* ---- the cache of successful token checks ----
 * kube-apiserver caches successful token authentications for 10 s and
 * failed ones not at all (pkg/kubeapiserver/options/authentication.go
 * NewBuiltInAuthenticationOptions: TokenSuccessCacheTTL 10 s,
 * TokenFailureCacheTTL 0; the cache wraps the whole token authenticator,
 * staging/src/k8s.io/apiserver/pkg/authentication/token/cache). So a
 * deleted pod's bound token, or a deleted ServiceAccount's, still works
 * for up to 10 s there too. Here it also keeps every request from taking
 * the store lock to look up the ServiceAccount (bench part 4: requests
 * waited up to 40 s for that lock with 1,000 runs at once). */
#define TOKEN_CACHE_TTL_MS 10000
#define TOKEN_CACHE_SLOTS 512 /* direct-mapped by the token's SHA-256 */

typedef struct token_slot {
	unsigned char key[32];
	int64_t until_ms; /* clock_mono_ms(); 0: empty */
	ks_user user;
} token_slot;

struct ks_token_cache {
	pthread_mutex_t mu;
	token_slot slot[TOKEN_CACHE_SLOTS];
};

void ks_auth_cache_free(struct ks_token_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static struct ks_token_cache *cache_of(ks_sim *s)
{
	static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;

	pthread_mutex_lock(&init_mu);
	if (!s->token_cache) {
		s->token_cache = calloc(1, sizeof *s->token_cache);
		if (s->token_cache)
			pthread_mutex_init(&s->token_cache->mu, NULL);
	}
	pthread_mutex_unlock(&init_mu);
	return s->token_cache;
}

static int cache_get(ks_sim *s, const unsigned char key[32], ks_user *user)
{
	struct ks_token_cache *c = cache_of(s);
	int hit = 0;

	if (!c)
		return 0;
	token_slot *e = &c->slot[(key[0] | key[1] << 8) % TOKEN_CACHE_SLOTS];
	pthread_mutex_lock(&c->mu);
	if (e->until_ms > clock_mono_ms() && memcmp(e->key, key, 32) == 0) {
		*user = e->user;
		hit = 1;
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

static void cache_put(ks_sim *s, const unsigned char key[32], const ks_user *user, int64_t exp_unix)
{
	struct ks_token_cache *c = cache_of(s);
	int64_t left_ms = exp_unix * 1000 - clock_wall_ms();

	if (!c || left_ms <= 0)
		return;
	token_slot *e = &c->slot[(key[0] | key[1] << 8) % TOKEN_CACHE_SLOTS];
	pthread_mutex_lock(&c->mu);
	memcpy(e->key, key, 32);
	e->user = *user;
	e->until_ms = clock_mono_ms() + (left_ms < TOKEN_CACHE_TTL_MS ? left_ms : TOKEN_CACHE_TTL_MS);
	pthread_mutex_unlock(&c->mu);
}

static void token_key(const char *token, unsigned char key[32])
{
	unsigned int n = 0;
	EVP_Digest(token, strlen(token), key, &n, EVP_sha256(), NULL);
}

static int token_check_uncached(ks_sim *s, const char *token, ks_user *user, int64_t *exp_unix);

int ks_auth_token_check(ks_sim *s, const char *token, ks_user *user)
{
	unsigned char key[32];
	int64_t exp_unix = 0;

	if (strlen(token) > MAX_TOKEN_LEN)
		return ERR_UNAUTHORIZED;
	token_key(token, key);
	if (cache_get(s, key, user))
		return 0;
	int rc = token_check_uncached(s, token, user, &exp_unix);
	if (rc == 0)
		cache_put(s, key, user, exp_unix);
	return rc;
}

static int token_check_uncached(ks_sim *s, const char *token, ks_user *user, int64_t *exp_unix)
{
	size_t n = strlen(token);
	if (n > MAX_TOKEN_LEN)
		return ERR_UNAUTHORIZED;
	const char *d1 = strchr(token, '.');
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d1 || !d2 || strchr(d2 + 1, '.'))
		return ERR_UNAUTHORIZED;
	unsigned char mac[32];
	sign(s, token, (size_t)(d2 - token), mac);
	buf sig = BUF_INIT(256), pl = BUF_INIT(MAX_TOKEN_LEN);
	int rc = ERR_UNAUTHORIZED;
	cJSON *c = NULL;
	if (b64url_decode(&sig, d2 + 1, strlen(d2 + 1)) || !str_consttime_eq(sig.data, sig.len, mac, sizeof mac))
		goto done;
	if (b64url_decode(&pl, d1 + 1, (size_t)(d2 - d1 - 1)))
		goto done;
	c = cJSON_Parse(buf_cstr(&pl));
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(c, "exp");
	if (!cJSON_IsNumber(exp) || (int64_t)exp->valuedouble <= clock_wall_ms() / 1000)
		goto done;
	*exp_unix = (int64_t)exp->valuedouble;
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(c, "kubernetes.io");
	const char *ns = ks_jstr(k, "namespace");
	const cJSON *sa = cJSON_GetObjectItemCaseSensitive(k, "serviceaccount");
	const cJSON *pod = cJSON_GetObjectItemCaseSensitive(k, "pod");
	const char *san = ks_jstr(sa, "name"), *sauid = ks_jstr(sa, "uid");
	if (!ns || !san || !sauid)
		goto done;
	ks_sim_lock(s);
	cJSON *so = ks_store_get(s->store, ks_resource_by_plural("serviceaccounts"), ns, san);
	int ok = so && str_eq(ks_meta(so, "uid"), sauid);
	if (ok && pod) {
		cJSON *po = ks_store_get(s->store, ks_resource_by_plural("pods"), ns, ks_jstr(pod, "name") ? ks_jstr(pod, "name") : "");
		/* a pod being deleted no longer vouches for its tokens
		 * (k/k pkg/serviceaccount/legacy.go / claims.go Validate) */
		ok = po && str_eq(ks_meta(po, "uid"), ks_jstr(pod, "uid")) && !ks_meta(po, "deletionTimestamp");
	}
	ks_sim_unlock(s);
	if (!ok)
		goto done;
	memset(user, 0, sizeof *user);
	snprintf(user->name, sizeof user->name, "system:serviceaccount:%s:%s", ns, san);
	snprintf(user->uid, sizeof user->uid, "%s", sauid);
	ks_user_add_group(user, "system:serviceaccounts");
	char g[300];
	snprintf(g, sizeof g, "system:serviceaccounts:%s", ns);
	ks_user_add_group(user, g);
	ks_user_add_group(user, "system:authenticated");
	rc = 0;
done:
	cJSON_Delete(c);
	buf_free(&sig);
	buf_free(&pl);
	return rc;
}

int ks_auth_authenticate(ks_req *r)
{
	ks_user *u = &r->user;
	memset(u, 0, sizeof *u);
	const char *h = ks_req_header(r, "Authorization");
	if (h && strncasecmp(h, "Bearer ", 7) == 0) {
		const char *tok = h + 7;
		while (*tok == ' ')
			tok++;
		if (str_consttime_eq(tok, strlen(tok), r->sim->admin_token, strlen(r->sim->admin_token))) {
			snprintf(u->name, sizeof u->name, "kubernetes-admin");
			ks_user_add_group(u, "system:masters");
			ks_user_add_group(u, "system:authenticated");
			r->authenticated = 1;
			return 0;
		}
		if (ks_auth_token_check(r->sim, tok, u) == 0) {
			r->authenticated = 1;
			return 0;
		}
		return ERR_UNAUTHORIZED;
	}
	if (h)
		return ERR_UNAUTHORIZED;
	int c = ks_req_client_cert(r, u); /* verified at the handshake (tls_front.c) */
	if (c < 0)
		return ERR_UNAUTHORIZED;
	if (c > 0) {
		r->authenticated = 1;
		return 0;
	}
	snprintf(u->name, sizeof u->name, "system:anonymous");
	ks_user_add_group(u, "system:unauthenticated");
	return 0;
}

typedef struct imp_collect {
	ks_user *u;
	int groups;
	char uid[64];
	int extra;
} imp_collect;

static enum MHD_Result collect_groups(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	imp_collect *c = cls;
	if (strcasecmp(key, "Impersonate-Group") == 0 && value) {
		ks_user_add_group(c->u, value);
		c->groups++;
	} else if (strncasecmp(key, "Impersonate-Extra-", 18) == 0) {
		c->extra = 1;
	}
	return MHD_YES;
}

static int check_imp(ks_req *r, const char *resource, const char *group, const char *ns, const char *name)
{
	ks_attrs a;
	memset(&a, 0, sizeof a);
	a.is_resource = 1;
	a.verb = "impersonate";
	a.group = group;
	a.resource = resource;
	a.sub = "";
	a.ns = ns;
	a.name = name;
	char reason[256];
	if (ks_rbac_allowed(r->sim, &r->user, &a, reason, sizeof reason))
		return 0;
	char m[1024], q[1400];
	ks_rbac_forbidden_msg(m, sizeof m, &r->user, &a);
	snprintf(q, sizeof q, "%s \"%s\" is forbidden: %s", resource, name, m);
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "name", name);
	cJSON_AddStringToObject(d, "kind", resource);
	ks_reply_status(r, 403, "Forbidden", q, d);
	return ERR_FORBIDDEN;
}

int ks_auth_impersonate(ks_req *r)
{
	const char *iu = ks_req_header(r, "Impersonate-User");
	ks_user nu;
	memset(&nu, 0, sizeof nu);
	imp_collect c = {&nu, 0, "", 0};
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_groups, &c);
	const char *iuid = ks_req_header(r, "Impersonate-Uid");
	if (!iu) {
		if (c.groups || c.extra || iuid) {
			ks_reply_status(r, 500, "InternalError",
					"Internal error occurred: requested [{Group  ...}] without impersonating a user", NULL);
			return ERR_INVALID;
		}
		return 0;
	}
	int rc;
	const char *sa_prefix = "system:serviceaccount:";
	if (strncmp(iu, sa_prefix, strlen(sa_prefix)) == 0) {
		char ns[256], name[256];
		const char *rest = iu + strlen(sa_prefix);
		const char *colon = strchr(rest, ':');
		if (!colon || colon == rest || !colon[1] || strchr(colon + 1, ':')) {
			rc = check_imp(r, "users", "", "", iu);
		} else {
			snprintf(ns, sizeof ns, "%.*s", (int)(colon - rest), rest);
			snprintf(name, sizeof name, "%s", colon + 1);
			rc = check_imp(r, "serviceaccounts", "", ns, name);
			if (!rc && c.groups == 0) {
				ks_user_add_group(&nu, "system:serviceaccounts");
				char g[300];
				snprintf(g, sizeof g, "system:serviceaccounts:%s", ns);
				ks_user_add_group(&nu, g);
			}
		}
	} else {
		rc = check_imp(r, "users", "", "", iu);
	}
	for (size_t i = 0; !rc && i < nu.n_groups; i++) {
		/* groups added for an SA above need no permission of their own */
		if (strncmp(nu.groups[i], "system:serviceaccounts", 22) == 0 && c.groups == 0)
			continue;
		rc = check_imp(r, "groups", "", "", nu.groups[i]);
	}
	if (!rc && iuid)
		rc = check_imp(r, "uids", "authentication.k8s.io", "", iuid);
	if (rc)
		return rc;
	snprintf(nu.name, sizeof nu.name, "%s", iu);
	if (iuid)
		snprintf(nu.uid, sizeof nu.uid, "%s", iuid);
	if (strcmp(iu, "system:anonymous") == 0)
		ks_user_add_group(&nu, "system:unauthenticated");
	else
		ks_user_add_group(&nu, "system:authenticated");
	r->user = nu;
	return 0;
}

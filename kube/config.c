/*
 * kube/config: kubeconfig files and in-cluster configuration.
 *
 * Data flow: each kubeconfig file is read whole (capped), converted from
 * YAML to a cJSON tree (libyaml's document API, with a node budget and a
 * depth cap so a hostile file cannot blow up), checked for shape, then the
 * documents are consulted in order with "first wins" for current-context
 * and for every named cluster, user and context, exactly as
 * s/client-go/tools/clientcmd/loader.go (ClientConfigLoadingRules.Load)
 * merges them. The chosen context is then resolved into a kube_config:
 * relative paths against the directory of the file that defined the entry
 * (loader.go ResolveLocalPaths), *-data fields base64-decoded.
 */
#include "kube/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/str.h"

#define YAML_MAX_NODES 200000
#define YAML_MAX_DEPTH 64

/* ---- YAML to cJSON ---------------------------------------------------- */

struct yconv {
	yaml_document_t *doc;
	size_t nodes;
};

static cJSON *yaml_node_to_json(struct yconv *y, yaml_node_t *n, int depth)
{
	cJSON *j = NULL;

	if (!n || depth > YAML_MAX_DEPTH || ++y->nodes > YAML_MAX_NODES)
		return NULL;
	switch (n->type) {
	case YAML_SCALAR_NODE: {
		const char *v = (const char *)n->data.scalar.value;
		size_t len = n->data.scalar.length;
		if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    (len == 0 || (len == 1 && v[0] == '~') ||
		     (len == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) ||
				   !memcmp(v, "NULL", 4)))))
			return cJSON_CreateNull();
		if (memchr(v, '\0', len))
			return NULL;
		return cJSON_CreateString(v);
	}
	case YAML_SEQUENCE_NODE:
		j = cJSON_CreateArray();
		if (!j)
			return NULL;
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			cJSON *c = yaml_node_to_json(y, yaml_document_get_node(y->doc, *it), depth + 1);
			if (!c) {
				cJSON_Delete(j);
				return NULL;
			}
			cJSON_AddItemToArray(j, c);
		}
		return j;
	case YAML_MAPPING_NODE:
		j = cJSON_CreateObject();
		if (!j)
			return NULL;
		for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
		     p < n->data.mapping.pairs.top; p++) {
			yaml_node_t *k = yaml_document_get_node(y->doc, p->key);
			if (!k || k->type != YAML_SCALAR_NODE ||
			    memchr(k->data.scalar.value, '\0', k->data.scalar.length)) {
				cJSON_Delete(j);
				return NULL;
			}
			cJSON *c = yaml_node_to_json(y, yaml_document_get_node(y->doc, p->value), depth + 1);
			if (!c) {
				cJSON_Delete(j);
				return NULL;
			}
			cJSON_AddItemToObject(j, (const char *)k->data.scalar.value, c);
		}
		return j;
	default:
		return NULL;
	}
}

/* Parse a kubeconfig's text into *out (an object; an empty file gives an
 * empty object). */
static int yaml_parse_json(cJSON **out, const char *text, size_t len, const char *path)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int rc = 0;

	*out = NULL;
	if (len > KUBE_CONFIG_MAX_BYTES)
		return err_set(ERR_TOOBIG, "kubeconfig %s: larger than %u bytes", path,
			       KUBE_CONFIG_MAX_BYTES);
	if (!yaml_parser_initialize(&parser))
		return err_set(ERR_NOMEM, "kubeconfig %s: out of memory", path);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = err_set(ERR_INVALID, "kubeconfig %s: invalid YAML at line %zu: %s", path,
			     parser.problem_mark.line + 1,
			     parser.problem ? parser.problem : "parse error");
		yaml_parser_delete(&parser);
		return rc;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root) {
		*out = cJSON_CreateObject();
		rc = *out ? 0 : err_set(ERR_NOMEM, "out of memory");
	} else if (root->type != YAML_MAPPING_NODE) {
		rc = err_set(ERR_INVALID, "kubeconfig %s: the top level is not a mapping", path);
	} else {
		struct yconv y = { &doc, 0 };
		*out = yaml_node_to_json(&y, root, 0);
		if (!*out)
			rc = err_set(ERR_INVALID,
				     "kubeconfig %s: unsupported YAML (too deep, too many nodes, "
				     "NUL bytes or non-scalar keys)", path);
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

/* ---- helpers ---------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* A field that must be a string if present. */
static int get_str(const char **out, const cJSON *o, const char *key, const char *where)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	*out = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return err_set(ERR_INVALID, "%s.%s: expected a string", where, key);
	*out = v->valuestring[0] ? v->valuestring : NULL;
	return 0;
}

static int get_bool(int *out, const cJSON *o, const char *key, const char *where)
{
	const char *s;
	int rc = get_str(&s, o, key, where);

	*out = 0;
	if (rc < 0 || !s)
		return rc;
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		*out = 1;
	else if (strcmp(s, "false") && strcmp(s, "False") && strcmp(s, "FALSE"))
		return err_set(ERR_INVALID, "%s.%s: expected true or false, got \"%s\"", where, key, s);
	return 0;
}

static char *dir_of(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	if (!slash)
		return str_dup(".");
	if (slash == path)
		return str_dup("/");
	return str_ndup(path, (size_t)(slash - path));
}

/* Resolve p against the directory of the file that named it. */
static char *resolve_path(const char *p, const char *file)
{
	if (!p)
		return NULL;
	if (p[0] == '/' || !file)
		return str_dup(p);
	char *d = dir_of(file);
	char *r = d ? str_printf("%s/%s", d, p) : NULL;
	free(d);
	return r;
}

static int decode_b64(char **out, size_t *len_out, const char *s, const char *where)
{
	buf b = BUF_INIT(KUBE_CONFIG_MAX_BYTES);
	int rc = str_base64_decode(&b, s, strlen(s));

	if (rc < 0) {
		buf_free(&b);
		return err_set(ERR_INVALID, "%s: invalid base64", where);
	}
	*out = buf_take(&b, len_out);
	buf_free(&b);
	return *out ? 0 : err_set(ERR_NOMEM, "out of memory");
}

/* Check that doc[key] is absent or a list of mappings with a string name
 * and a mapping under inner (client-go's decoder would reject others). */
static int check_named_list(const cJSON *doc, const char *key, const char *inner, const char *path)
{
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(doc, key);
	int i = 0;

	if (!l || cJSON_IsNull(l))
		return 0;
	if (!cJSON_IsArray(l))
		return err_set(ERR_INVALID, "kubeconfig %s: %s: expected a list", path, key);
	for (const cJSON *e = l->child; e; e = e->next, i++) {
		if (!cJSON_IsObject(e))
			return err_set(ERR_INVALID, "kubeconfig %s: %s[%d]: expected a mapping", path, key, i);
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name");
		if (!cJSON_IsString(n))
			return err_set(ERR_INVALID, "kubeconfig %s: %s[%d].name: expected a string",
				       path, key, i);
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, inner);
		if (v && !cJSON_IsNull(v) && !cJSON_IsObject(v))
			return err_set(ERR_INVALID, "kubeconfig %s: %s[%d].%s: expected a mapping",
				       path, key, i, inner);
	}
	return 0;
}

/* First entry named name under key/inner across the documents. */
static const cJSON *find_named(cJSON *const *docs, const kube_config_doc *src, size_t n,
			       const char *key, const char *inner, const char *name,
			       const char **path_out)
{
	for (size_t i = 0; i < n; i++) {
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(docs[i], key);
		if (!cJSON_IsArray(l))
			continue;
		for (const cJSON *e = l->child; e; e = e->next) {
			const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
			if (cJSON_IsString(nm) && !strcmp(nm->valuestring, name)) {
				static const cJSON empty = { 0 };
				const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, inner);
				*path_out = src[i].path;
				return cJSON_IsObject(v) ? v : &empty;
			}
		}
	}
	return NULL;
}

/* ---- free / dup ------------------------------------------------------- */

static void exec_free(kube_exec_config *e)
{
	if (!e)
		return;
	free(e->api_version);
	free(e->command);
	for (size_t i = 0; i < e->nargs; i++)
		free(e->args[i]);
	free(e->args);
	for (size_t i = 0; i < e->nenv; i++)
		free(e->env[i]);
	free(e->env);
	free(e->install_hint);
	free(e);
}

void kube_config_free(kube_config *c)
{
	if (!c)
		return;
	free(c->source);
	free(c->context);
	free(c->cluster_name);
	free(c->user_name);
	free(c->server);
	free(c->ns);
	free(c->ca_file);
	free(c->ca_data);
	free(c->tls_server_name);
	free(c->proxy_url);
	free(c->client_cert_file);
	free(c->client_key_file);
	free(c->client_cert_data);
	free(c->client_key_data);
	if (c->token)
		explicit_bzero(c->token, strlen(c->token));
	free(c->token);
	free(c->token_file);
	free(c->username);
	if (c->password)
		explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	exec_free(c->exec);
	free(c);
}

static int dup_s(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -1;
}

static int dup_mem(char **dst, const char *src, size_t len)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = malloc(len + 1);
	if (!*dst)
		return -1;
	memcpy(*dst, src, len);
	(*dst)[len] = '\0';
	return 0;
}

int kube_config_dup(kube_config **out, const kube_config *s)
{
	kube_config *c = calloc(1, sizeof(*c));
	int bad = 0;

	*out = NULL;
	if (!c)
		return err_set(ERR_NOMEM, "out of memory");
	bad |= dup_s(&c->source, s->source);
	bad |= dup_s(&c->context, s->context);
	bad |= dup_s(&c->cluster_name, s->cluster_name);
	bad |= dup_s(&c->user_name, s->user_name);
	bad |= dup_s(&c->server, s->server);
	bad |= dup_s(&c->ns, s->ns);
	c->in_cluster = s->in_cluster;
	bad |= dup_s(&c->ca_file, s->ca_file);
	bad |= dup_mem(&c->ca_data, s->ca_data, s->ca_data_len);
	c->ca_data_len = s->ca_data_len;
	c->insecure = s->insecure;
	bad |= dup_s(&c->tls_server_name, s->tls_server_name);
	bad |= dup_s(&c->proxy_url, s->proxy_url);
	bad |= dup_s(&c->client_cert_file, s->client_cert_file);
	bad |= dup_s(&c->client_key_file, s->client_key_file);
	bad |= dup_mem(&c->client_cert_data, s->client_cert_data, s->client_cert_data_len);
	c->client_cert_data_len = s->client_cert_data_len;
	bad |= dup_mem(&c->client_key_data, s->client_key_data, s->client_key_data_len);
	c->client_key_data_len = s->client_key_data_len;
	bad |= dup_s(&c->token, s->token);
	bad |= dup_s(&c->token_file, s->token_file);
	bad |= dup_s(&c->username, s->username);
	bad |= dup_s(&c->password, s->password);
	if (s->exec) {
		kube_exec_config *e = calloc(1, sizeof(*e));
		c->exec = e;
		if (!e) {
			bad = 1;
		} else {
			bad |= dup_s(&e->api_version, s->exec->api_version);
			bad |= dup_s(&e->command, s->exec->command);
			bad |= dup_s(&e->install_hint, s->exec->install_hint);
			e->provide_cluster_info = s->exec->provide_cluster_info;
			e->args = calloc(s->exec->nargs + 1, sizeof(char *));
			e->env = calloc(s->exec->nenv + 1, sizeof(char *));
			if (!e->args || !e->env) {
				bad = 1;
			} else {
				for (size_t i = 0; i < s->exec->nargs; i++, e->nargs++)
					bad |= dup_s(&e->args[i], s->exec->args[i]);
				for (size_t i = 0; i < s->exec->nenv; i++, e->nenv++)
					bad |= dup_s(&e->env[i], s->exec->env[i]);
			}
		}
	}
	if (bad) {
		kube_config_free(c);
		return err_set(ERR_NOMEM, "out of memory");
	}
	*out = c;
	return 0;
}

/* ---- resolve one context ---------------------------------------------- */

static int parse_exec(kube_exec_config **out, const cJSON *ex, const char *file, const char *where)
{
	kube_exec_config *e = calloc(1, sizeof(*e));
	const char *s;
	char w[600];
	int rc = 0;

	*out = NULL;
	if (!e)
		return err_set(ERR_NOMEM, "out of memory");
	snprintf(w, sizeof(w), "%.512s.exec", where);
	if ((rc = get_str(&s, ex, "apiVersion", w)) < 0)
		goto done;
	/* client-go accepts v1beta1 and v1 (s/client-go/plugin/pkg/client/auth/exec/exec.go). */
	if (!s) {
		rc = err_set(ERR_INVALID, "%s.apiVersion: missing (client.authentication.k8s.io/v1 "
			     "or v1beta1)", w);
		goto done;
	}
	if (strcmp(s, "client.authentication.k8s.io/v1") &&
	    strcmp(s, "client.authentication.k8s.io/v1beta1")) {
		rc = err_set(ERR_INVALID, "%s.apiVersion: \"%s\" is not supported "
			     "(client.authentication.k8s.io/v1 or v1beta1)", w, s);
		goto done;
	}
	e->api_version = str_dup(s);
	if ((rc = get_str(&s, ex, "command", w)) < 0)
		goto done;
	if (!s) {
		rc = err_set(ERR_INVALID, "%s.command: missing", w);
		goto done;
	}
	/* A command with a path separator is relative to the kubeconfig
	 * (loader.go ResolveLocalPaths: "exec.command ... if it contains a
	 * path separator"); a bare name is looked up in PATH. */
	e->command = strchr(s, '/') ? resolve_path(s, file) : str_dup(s);
	if ((rc = get_str(&s, ex, "installHint", w)) < 0)
		goto done;
	e->install_hint = str_dup(s);
	if ((rc = get_bool(&e->provide_cluster_info, ex, "provideClusterInfo", w)) < 0)
		goto done;

	const cJSON *args = cJSON_GetObjectItemCaseSensitive(ex, "args");
	int n = cJSON_IsArray(args) ? cJSON_GetArraySize(args) : 0;
	if (args && !cJSON_IsNull(args) && !cJSON_IsArray(args)) {
		rc = err_set(ERR_INVALID, "%s.args: expected a list", w);
		goto done;
	}
	e->args = calloc((size_t)n + 1, sizeof(char *));
	if (!e->args)
		goto nomem;
	for (const cJSON *a = args ? args->child : NULL; a; a = a->next) {
		if (!cJSON_IsString(a)) {
			rc = err_set(ERR_INVALID, "%s.args[%zu]: expected a string", w, e->nargs);
			goto done;
		}
		if (!(e->args[e->nargs++] = str_dup(a->valuestring)))
			goto nomem;
	}
	const cJSON *env = cJSON_GetObjectItemCaseSensitive(ex, "env");
	n = cJSON_IsArray(env) ? cJSON_GetArraySize(env) : 0;
	if (env && !cJSON_IsNull(env) && !cJSON_IsArray(env)) {
		rc = err_set(ERR_INVALID, "%s.env: expected a list", w);
		goto done;
	}
	e->env = calloc((size_t)n + 1, sizeof(char *));
	if (!e->env)
		goto nomem;
	for (const cJSON *a = env ? env->child : NULL; a; a = a->next) {
		const char *name = jstr(a, "name");
		const cJSON *val = cJSON_GetObjectItemCaseSensitive(a, "value");
		if (!cJSON_IsObject(a) || !name || strchr(name, '=') ||
		    (val && !cJSON_IsString(val) && !cJSON_IsNull(val))) {
			rc = err_set(ERR_INVALID, "%s.env[%zu]: expected {name, value} strings", w, e->nenv);
			goto done;
		}
		if (!(e->env[e->nenv++] = str_printf("%s=%s", name,
						      cJSON_IsString(val) ? val->valuestring : "")))
			goto nomem;
	}
	*out = e;
	return 0;
nomem:
	rc = err_set(ERR_NOMEM, "out of memory");
done:
	exec_free(e);
	return rc;
}

static int server_normalize(char **out, const char *server, const char *where)
{
	size_t n = strlen(server);

	*out = NULL;
	if (!str_has_prefix(server, "https://") && !str_has_prefix(server, "http://"))
		return err_set(ERR_INVALID, "%s.server: \"%s\" is not an http(s) URL", where, server);
	while (n > 0 && server[n - 1] == '/')
		n--;
	*out = str_ndup(server, n);
	return *out ? 0 : err_set(ERR_NOMEM, "out of memory");
}

static int resolve_context(kube_config *c, cJSON *const *docs, const kube_config_doc *src,
			   size_t n, const char *context, const char *ns_override)
{
	const char *ctx_file = NULL, *cl_file = NULL, *u_file = NULL;
	const char *s;
	char w[512];
	int rc;

	if (!context) {
		for (size_t i = 0; i < n && !context; i++)
			context = jstr(docs[i], "current-context");
		if (!context)
			return err_set(ERR_NOTFOUND, "%s: no current-context is set and no context "
				       "was given", c->source);
	}
	const cJSON *ctx = find_named(docs, src, n, "contexts", "context", context, &ctx_file);
	if (!ctx)
		return err_set(ERR_NOTFOUND, "%s: context \"%s\" not found", c->source, context);
	c->context = str_dup(context);
	snprintf(w, sizeof(w), "kubeconfig %s: contexts[%s].context", ctx_file, context);
	const char *cluster, *user, *ns;
	if ((rc = get_str(&cluster, ctx, "cluster", w)) < 0 ||
	    (rc = get_str(&user, ctx, "user", w)) < 0 ||
	    (rc = get_str(&ns, ctx, "namespace", w)) < 0)
		return rc;
	if (!cluster)
		return err_set(ERR_INVALID, "%s.cluster: missing", w);
	c->cluster_name = str_dup(cluster);
	c->user_name = str_dup(user);
	c->ns = str_dup(ns_override ? ns_override : ns ? ns : "default");

	const cJSON *cl = find_named(docs, src, n, "clusters", "cluster", cluster, &cl_file);
	if (!cl)
		return err_set(ERR_NOTFOUND, "%s: cluster \"%s\" (of context \"%s\") not found",
			       c->source, cluster, context);
	snprintf(w, sizeof(w), "kubeconfig %s: clusters[%s].cluster", cl_file, cluster);
	if ((rc = get_str(&s, cl, "server", w)) < 0)
		return rc;
	if (!s)
		return err_set(ERR_INVALID, "%s.server: missing", w);
	if ((rc = server_normalize(&c->server, s, w)) < 0)
		return rc;
	if ((rc = get_str(&s, cl, "certificate-authority-data", w)) < 0)
		return rc;
	if (s) {
		char f[600];
		snprintf(f, sizeof(f), "%s.certificate-authority-data", w);
		if ((rc = decode_b64(&c->ca_data, &c->ca_data_len, s, f)) < 0)
			return rc;
	} else {
		if ((rc = get_str(&s, cl, "certificate-authority", w)) < 0)
			return rc;
		c->ca_file = resolve_path(s, cl_file);
	}
	if ((rc = get_bool(&c->insecure, cl, "insecure-skip-tls-verify", w)) < 0)
		return rc;
	if ((rc = get_str(&s, cl, "tls-server-name", w)) < 0)
		return rc;
	c->tls_server_name = str_dup(s);
	if ((rc = get_str(&s, cl, "proxy-url", w)) < 0)
		return rc;
	c->proxy_url = str_dup(s);

	if (!user)
		return 0; /* anonymous */
	const cJSON *u = find_named(docs, src, n, "users", "user", user, &u_file);
	if (!u)
		return err_set(ERR_NOTFOUND, "%s: user \"%s\" (of context \"%s\") not found",
			       c->source, user, context);
	snprintf(w, sizeof(w), "kubeconfig %s: users[%s].user", u_file, user);
	char f[600];
	if ((rc = get_str(&s, u, "client-certificate-data", w)) < 0)
		return rc;
	if (s) {
		snprintf(f, sizeof(f), "%s.client-certificate-data", w);
		if ((rc = decode_b64(&c->client_cert_data, &c->client_cert_data_len, s, f)) < 0)
			return rc;
	} else {
		if ((rc = get_str(&s, u, "client-certificate", w)) < 0)
			return rc;
		c->client_cert_file = resolve_path(s, u_file);
	}
	if ((rc = get_str(&s, u, "client-key-data", w)) < 0)
		return rc;
	if (s) {
		snprintf(f, sizeof(f), "%s.client-key-data", w);
		if ((rc = decode_b64(&c->client_key_data, &c->client_key_data_len, s, f)) < 0)
			return rc;
	} else {
		if ((rc = get_str(&s, u, "client-key", w)) < 0)
			return rc;
		c->client_key_file = resolve_path(s, u_file);
	}
	int has_cert = c->client_cert_data || c->client_cert_file;
	int has_key = c->client_key_data || c->client_key_file;
	if (has_cert != has_key)
		return err_set(ERR_INVALID, "%s: client-certificate%s without client-key%s", w,
			       has_cert ? "" : " (key)", has_cert ? "" : " (certificate)");
	/* token beats tokenFile (s/client-go/rest/transport.go). */
	if ((rc = get_str(&s, u, "token", w)) < 0)
		return rc;
	c->token = str_dup(s);
	if ((rc = get_str(&s, u, "tokenFile", w)) < 0)
		return rc;
	if (!c->token)
		c->token_file = resolve_path(s, u_file);
	if ((rc = get_str(&s, u, "username", w)) < 0)
		return rc;
	c->username = str_dup(s);
	if ((rc = get_str(&s, u, "password", w)) < 0)
		return rc;
	c->password = str_dup(s);
	const cJSON *ap = cJSON_GetObjectItemCaseSensitive(u, "auth-provider");
	if (ap && !cJSON_IsNull(ap))
		return err_set(ERR_INVALID, "%s.auth-provider: auth providers were removed from "
			       "client-go; use an exec credential plugin", w);
	const cJSON *ex = cJSON_GetObjectItemCaseSensitive(u, "exec");
	if (ex && !cJSON_IsNull(ex)) {
		if (!cJSON_IsObject(ex))
			return err_set(ERR_INVALID, "%s.exec: expected a mapping", w);
		if ((rc = parse_exec(&c->exec, ex, u_file, w)) < 0)
			return rc;
	}
	return 0;
}

int kube_config_parse(kube_config **out, const kube_config_doc *docs, size_t ndocs,
		      const char *context, const char *ns_override)
{
	cJSON **trees = NULL;
	kube_config *c = NULL;
	buf src = BUF_INIT(1 << 16);
	int rc = 0;

	*out = NULL;
	trees = calloc(ndocs ? ndocs : 1, sizeof(*trees));
	c = calloc(1, sizeof(*c));
	if (!trees || !c) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto done;
	}
	buf_append_str(&src, "kubeconfig ");
	for (size_t i = 0; i < ndocs; i++) {
		const char *p = docs[i].path ? docs[i].path : "(memory)";
		if (i)
			buf_append_byte(&src, ':');
		buf_append_str(&src, p);
		if ((rc = yaml_parse_json(&trees[i], docs[i].text, docs[i].len, p)) < 0)
			goto done;
		if ((rc = check_named_list(trees[i], "clusters", "cluster", p)) < 0 ||
		    (rc = check_named_list(trees[i], "users", "user", p)) < 0 ||
		    (rc = check_named_list(trees[i], "contexts", "context", p)) < 0)
			goto done;
		const cJSON *cc = cJSON_GetObjectItemCaseSensitive(trees[i], "current-context");
		if (cc && !cJSON_IsNull(cc) && !cJSON_IsString(cc)) {
			rc = err_set(ERR_INVALID, "kubeconfig %s: current-context: expected a string", p);
			goto done;
		}
	}
	c->source = buf_take(&src, NULL);
	if (!c->source) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = resolve_context(c, trees, docs, ndocs, context, ns_override)) < 0)
		goto done;
	if (!c->ns || !c->server) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto done;
	}
	*out = c;
	c = NULL;
done:
	for (size_t i = 0; trees && i < ndocs; i++)
		cJSON_Delete(trees[i]);
	free(trees);
	kube_config_free(c);
	buf_free(&src);
	return rc;
}

/* ---- files ------------------------------------------------------------ */

/* Read a whole file, capped. ERR_NOTFOUND when it does not exist. */
static int read_file_capped(char **out, size_t *len_out, const char *path, size_t cap,
			    const char *what)
{
	buf b = BUF_INIT(cap);
	char tmp[8192];
	int rc = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	if (fd < 0)
		return err_set(errno == ENOENT ? ERR_NOTFOUND : ERR_FAIL, "%s %s: %s", what, path,
			       strerror(errno));
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_set(ERR_FAIL, "%s %s: %s", what, path, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (buf_append(&b, tmp, (size_t)n) < 0) {
			rc = err_set(ERR_TOOBIG, "%s %s: larger than %zu bytes", what, path, cap);
			break;
		}
	}
	close(fd);
	if (rc == 0) {
		*out = buf_take(&b, len_out);
		if (!*out)
			rc = err_set(ERR_NOMEM, "out of memory");
	}
	buf_free(&b);
	return rc;
}

static char *trim_dup(const char *s, size_t n)
{
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\n')) {
		s++;
		n--;
	}
	return str_ndup(s, n);
}

int kube_config_in_cluster(kube_config **out, const char *sa_dir, const char *ns_override)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	kube_config *c = NULL;
	char *data = NULL;
	size_t len = 0;
	struct stat st;
	int rc = 0;

	*out = NULL;
	if (!sa_dir)
		sa_dir = getenv("CIFIXER_SA_DIR");
	if (!sa_dir || !*sa_dir)
		sa_dir = KUBE_SA_DIR_DEFAULT;
	/* s/client-go/rest/config.go InClusterConfig: both variables or
	 * ErrNotInCluster. */
	if (!host || !*host || !port || !*port)
		return err_set(ERR_NOTFOUND, "not running in a cluster: KUBERNETES_SERVICE_HOST and "
			       "KUBERNETES_SERVICE_PORT must be set");
	c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(ERR_NOMEM, "out of memory");
	c->in_cluster = 1;
	c->source = str_printf("in-cluster (%s)", sa_dir);
	/* net.JoinHostPort brackets IPv6 literals. */
	c->server = strchr(host, ':') ? str_printf("https://[%s]:%s", host, port)
				      : str_printf("https://%s:%s", host, port);
	c->token_file = str_printf("%s/token", sa_dir);
	char *ca = str_printf("%s/ca.crt", sa_dir);
	char *nsf = str_printf("%s/namespace", sa_dir);
	if (!c->source || !c->server || !c->token_file || !ca || !nsf) {
		free(ca);
		free(nsf);
		rc = err_set(ERR_NOMEM, "out of memory");
		goto done;
	}
	if ((rc = read_file_capped(&data, &len, c->token_file, 1 << 20,
				   "in-cluster service-account token")) < 0) {
		free(ca);
		free(nsf);
		goto done;
	}
	explicit_bzero(data, len);
	free(data);
	data = NULL;
	if (stat(ca, &st) == 0)
		c->ca_file = ca;
	else
		free(ca);
	/* The namespace: POD_NAMESPACE, then the mounted file
	 * (s/client-go/tools/clientcmd/client_config.go inClusterClientConfig.Namespace). */
	const char *pns = getenv("POD_NAMESPACE");
	if (ns_override)
		c->ns = str_dup(ns_override);
	else if (pns && *pns)
		c->ns = str_dup(pns);
	else if (read_file_capped(&data, &len, nsf, 4096, "namespace file") == 0 && len > 0)
		c->ns = trim_dup(data, len);
	err_clear();
	free(nsf);
	if (!c->ns || !c->ns[0]) {
		free(c->ns);
		c->ns = str_dup("default");
	}
	if (!c->ns) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto done;
	}
	*out = c;
	c = NULL;
done:
	free(data);
	kube_config_free(c);
	return rc;
}

int kube_config_load(kube_config **out, const kube_config_opts *opts)
{
	kube_config_opts def = KUBE_CONFIG_OPTS_INIT;
	kube_config_doc docs[32];
	char *texts[32] = { 0 };
	char *paths[32] = { 0 };
	char *list = NULL;
	size_t n = 0;
	int rc = 0;

	*out = NULL;
	if (!opts)
		opts = &def;
	if (opts->in_cluster == KUBE_INCLUSTER_ONLY)
		return kube_config_in_cluster(out, opts->sa_dir, opts->ns);

	const char *env = getenv("KUBECONFIG");
	if (opts->kubeconfig) {
		/* An explicit file must exist. */
		paths[0] = str_dup(opts->kubeconfig);
		if (!paths[0])
			return err_set(ERR_NOMEM, "out of memory");
		size_t len = 0;
		if ((rc = read_file_capped(&texts[0], &len, paths[0], KUBE_CONFIG_MAX_BYTES,
					   "kubeconfig")) < 0)
			goto done;
		docs[0] = (kube_config_doc){ texts[0], len, paths[0] };
		n = 1;
	} else {
		if (env && *env) {
			list = str_dup(env);
		} else {
			const char *home = getenv("HOME");
			if (home && *home)
				list = str_printf("%s/.kube/config", home);
		}
		/* Files that do not exist are skipped; duplicates are read once;
		 * an unreadable or unparsable file is an error (loader.go). */
		for (char *save = NULL, *p = list ? strtok_r(list, ":", &save) : NULL; p;
		     p = strtok_r(NULL, ":", &save)) {
			int dup = 0;
			for (size_t i = 0; i < n; i++)
				dup |= !strcmp(paths[i], p);
			if (dup)
				continue;
			if (n == sizeof(docs) / sizeof(docs[0])) {
				rc = err_set(ERR_INVALID, "KUBECONFIG: more than %zu files", n);
				goto done;
			}
			size_t len = 0;
			char *t = NULL;
			rc = read_file_capped(&t, &len, p, KUBE_CONFIG_MAX_BYTES, "kubeconfig");
			if (rc == ERR_NOTFOUND) {
				rc = 0;
				continue;
			}
			if (rc < 0)
				goto done;
			texts[n] = t;
			paths[n] = str_dup(p);
			if (!paths[n]) {
				rc = err_set(ERR_NOMEM, "out of memory");
				goto done;
			}
			docs[n] = (kube_config_doc){ t, len, paths[n] };
			n++;
		}
		err_clear();
	}
	if (n == 0) {
		if (opts->in_cluster == KUBE_INCLUSTER_AUTO) {
			rc = kube_config_in_cluster(out, opts->sa_dir, opts->ns);
			if (rc == ERR_NOTFOUND)
				rc = err_wrap(rc, "no kubeconfig (%s) and %s",
					      env && *env ? "KUBECONFIG names no existing file"
							  : "~/.kube/config does not exist",
					      "not in a cluster");
			goto done;
		}
		rc = err_set(ERR_NOTFOUND, "no kubeconfig: %s",
			     env && *env ? "KUBECONFIG names no existing file"
					 : "~/.kube/config does not exist");
		goto done;
	}
	rc = kube_config_parse(out, docs, n, opts->context, opts->ns);
done:
	for (size_t i = 0; i < n || (i < 1 && paths[0]); i++) {
		if (texts[i]) {
			explicit_bzero(texts[i], docs[i].len);
			free(texts[i]);
		}
		free(paths[i]);
	}
	free(list);
	return rc;
}

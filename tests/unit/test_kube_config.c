/*
 * kube/config: kubeconfig parsing, KUBECONFIG merging (first wins),
 * context selection, path resolution, errors naming file and field, and
 * in-cluster configuration from an overridden service-account directory.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/config.h"
#include "util/err.h"
#include "util/str.h"

static char dir[64];

static void mkdir_tmp(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kube-cfg-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv("POD_NAMESPACE");
	unsetenv("CIFIXER_SA_DIR");
	setenv("HOME", dir, 1);
}

static void rm_tmp(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static char *put(const char *name, const char *text)
{
	char *p = str_printf("%s/%s", dir, name);
	char *slash = strrchr(p, '/');
	*slash = '\0';
	mkdir(p, 0755);
	*slash = '/';
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

TestSuite(kube_config, .init = mkdir_tmp, .fini = rm_tmp);

static const char *ONE =
	"apiVersion: v1\n"
	"kind: Config\n"
	"current-context: dev\n"
	"clusters:\n"
	"- name: c1\n"
	"  cluster:\n"
	"    server: https://10.0.0.1:6443/\n"
	"    certificate-authority: certs/ca.pem\n"
	"    tls-server-name: kubernetes.default\n"
	"    proxy-url: http://proxy:3128\n"
	"- name: c2\n"
	"  cluster:\n"
	"    server: https://other:443\n"
	"    certificate-authority-data: aGVsbG8=\n"
	"    insecure-skip-tls-verify: true\n"
	"contexts:\n"
	"- name: dev\n"
	"  context:\n"
	"    cluster: c1\n"
	"    user: alice\n"
	"    namespace: team-a\n"
	"- name: other\n"
	"  context: {cluster: c2, user: bob}\n"
	"users:\n"
	"- name: alice\n"
	"  user:\n"
	"    client-certificate: alice.crt\n"
	"    client-key: /abs/alice.key\n"
	"    token: tok\n"
	"    tokenFile: ignored\n"
	"- name: bob\n"
	"  user:\n"
	"    tokenFile: bob.token\n"
	"    client-certificate-data: Y2VydA==\n"
	"    client-key-data: a2V5\n";

Test(kube_config, current_context_resolved_with_relative_paths)
{
	char *p = put("kube/config", ONE);
	kube_config_opts o = KUBE_CONFIG_OPTS_INIT;
	kube_config *c = NULL;
	o.kubeconfig = p;
	cr_assert_eq(kube_config_load(&c, &o), 0, "%s", err_msg());
	cr_assert_str_eq(c->server, "https://10.0.0.1:6443", "trailing slash dropped");
	cr_assert_str_eq(c->ns, "team-a");
	cr_assert_str_eq(c->context, "dev");
	char *ca = str_printf("%s/kube/certs/ca.pem", dir);
	char *crt = str_printf("%s/kube/alice.crt", dir);
	cr_assert_str_eq(c->ca_file, ca);
	cr_assert_str_eq(c->client_cert_file, crt);
	cr_assert_str_eq(c->client_key_file, "/abs/alice.key");
	cr_assert_str_eq(c->tls_server_name, "kubernetes.default");
	cr_assert_str_eq(c->proxy_url, "http://proxy:3128");
	cr_assert_str_eq(c->token, "tok");
	cr_assert_null(c->token_file, "token beats tokenFile");
	cr_assert_eq(c->insecure, 0);
	cr_assert_eq(c->in_cluster, 0);
	free(ca);
	free(crt);
	free(p);
	kube_config_free(c);
}

Test(kube_config, named_context_data_fields_and_insecure)
{
	char *p = put("cfg", ONE);
	kube_config_opts o = KUBE_CONFIG_OPTS_INIT;
	kube_config *c = NULL;
	o.kubeconfig = p;
	o.context = "other";
	cr_assert_eq(kube_config_load(&c, &o), 0, "%s", err_msg());
	cr_assert_str_eq(c->server, "https://other:443");
	cr_assert_str_eq(c->ns, "default");
	cr_assert_eq(c->ca_data_len, 5);
	cr_assert_eq(memcmp(c->ca_data, "hello", 5), 0);
	cr_assert_eq(c->insecure, 1);
	cr_assert_eq(c->client_cert_data_len, 4);
	cr_assert_eq(memcmp(c->client_cert_data, "cert", 4), 0);
	cr_assert_eq(memcmp(c->client_key_data, "key", 3), 0);
	char *tf = str_printf("%s/bob.token", dir);
	cr_assert_str_eq(c->token_file, tf);
	free(tf);
	/* dup is deep */
	kube_config *d = NULL;
	cr_assert_eq(kube_config_dup(&d, c), 0);
	kube_config_free(c);
	cr_assert_str_eq(d->server, "https://other:443");
	cr_assert_eq(memcmp(d->ca_data, "hello", 5), 0);
	kube_config_free(d);
	free(p);
}

Test(kube_config, namespace_override)
{
	char *p = put("cfg", ONE);
	kube_config_opts o = KUBE_CONFIG_OPTS_INIT;
	kube_config *c = NULL;
	o.kubeconfig = p;
	o.ns = "forced";
	cr_assert_eq(kube_config_load(&c, &o), 0, "%s", err_msg());
	cr_assert_str_eq(c->ns, "forced");
	kube_config_free(c);
	free(p);
}

Test(kube_config, kubeconfig_merge_first_file_wins)
{
	char *a = put("a", "current-context: ctx-a\n"
			   "users:\n- name: u\n  user: {token: from-a}\n"
			   "contexts:\n- name: ctx-a\n  context: {cluster: shared, user: u}\n");
	char *b = put("b", "current-context: ctx-b\n"
			   "users:\n- name: u\n  user: {token: from-b}\n"
			   "clusters:\n- name: shared\n  cluster: {server: 'https://b:1'}\n"
			   "contexts:\n- name: ctx-a\n  context: {cluster: nowhere, user: u}\n");
	char *env = str_printf("%s/missing::%s:%s", dir, a, b);
	setenv("KUBECONFIG", env, 1);
	kube_config *c = NULL;
	cr_assert_eq(kube_config_load(&c, NULL), 0, "%s", err_msg());
	cr_assert_str_eq(c->context, "ctx-a", "first current-context wins");
	cr_assert_str_eq(c->token, "from-a", "first user of a name wins");
	cr_assert_str_eq(c->server, "https://b:1", "a cluster only the second file has");
	cr_assert(strstr(c->source, a) && strstr(c->source, b), "%s", c->source);
	kube_config_free(c);
	free(a);
	free(b);
	free(env);
}

Test(kube_config, kubeconfig_unparsable_file_is_an_error_naming_it)
{
	char *a = put("good", ONE);
	char *b = put("bad", "clusters: [\n");
	char *env = str_printf("%s:%s", a, b);
	setenv("KUBECONFIG", env, 1);
	kube_config *c = NULL;
	cr_assert_eq(kube_config_load(&c, NULL), ERR_INVALID);
	cr_assert(strstr(err_msg(), b), "%s", err_msg());
	cr_assert_null(c);
	free(a);
	free(b);
	free(env);
}

Test(kube_config, home_kube_config_is_the_default)
{
	char *p = put(".kube/config", ONE);
	kube_config *c = NULL;
	cr_assert_eq(kube_config_load(&c, NULL), 0, "%s", err_msg());
	cr_assert_str_eq(c->context, "dev");
	kube_config_free(c);
	free(p);
}

Test(kube_config, explicit_missing_file_is_not_found)
{
	kube_config_opts o = KUBE_CONFIG_OPTS_INIT;
	kube_config *c = NULL;
	o.kubeconfig = "/nonexistent/kubeconfig";
	cr_assert_eq(kube_config_load(&c, &o), ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "/nonexistent/kubeconfig"), "%s", err_msg());
}

Test(kube_config, nothing_anywhere_is_not_found)
{
	kube_config_opts o = KUBE_CONFIG_OPTS_INIT;
	kube_config *c = NULL;
	cr_assert_eq(kube_config_load(&c, &o), ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "not in a cluster"), "%s", err_msg());
}

static int parse_str(kube_config **c, const char *y, const char *ctx)
{
	kube_config_doc d = { y, strlen(y), "/etc/kc.yaml" };
	return kube_config_parse(c, &d, 1, ctx, NULL);
}

Test(kube_config, errors_name_the_field)
{
	kube_config *c = NULL;
	cr_assert_eq(parse_str(&c, ONE, "nope"), ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "context \"nope\" not found"), "%s", err_msg());

	cr_assert_eq(parse_str(&c, "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
				   "clusters:\n- name: c\n  cluster: {server: 'https://h', "
				   "certificate-authority-data: '!!!'}\n", NULL), ERR_INVALID);
	cr_assert(strstr(err_msg(), "/etc/kc.yaml: clusters[c].cluster.certificate-authority-data: "
				    "invalid base64"), "%s", err_msg());

	cr_assert_eq(parse_str(&c, "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
				   "clusters:\n- name: c\n  cluster: {server: 'ftp://h'}\n", NULL),
		     ERR_INVALID);
	cr_assert(strstr(err_msg(), "clusters[c].cluster.server"), "%s", err_msg());

	cr_assert_eq(parse_str(&c, "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
				   "clusters:\n- name: c\n  cluster: {insecure-skip-tls-verify: maybe, "
				   "server: 'https://h'}\n", NULL), ERR_INVALID);
	cr_assert(strstr(err_msg(), "insecure-skip-tls-verify"), "%s", err_msg());

	cr_assert_eq(parse_str(&c, "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
				   "clusters:\n- name: c\n  cluster: {server: 'https://h'}\n", NULL),
		     ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "user \"u\""), "%s", err_msg());

	cr_assert_eq(parse_str(&c, "clusters: {a: b}\n", NULL), ERR_INVALID);
	cr_assert(strstr(err_msg(), "clusters: expected a list"), "%s", err_msg());

	cr_assert_eq(parse_str(&c, "contexts:\n- name: x\n", NULL), ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "no current-context"), "%s", err_msg());

	cr_assert_eq(parse_str(&c, "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
				   "clusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
				   "users:\n- name: u\n  user: {client-certificate: a.crt}\n", NULL),
		     ERR_INVALID);
	cr_assert(strstr(err_msg(), "without client-key"), "%s", err_msg());

	cr_assert_eq(parse_str(&c, "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
				   "clusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
				   "users:\n- name: u\n  user: {auth-provider: {name: gcp}}\n", NULL),
		     ERR_INVALID);
	cr_assert(strstr(err_msg(), "exec credential plugin"), "%s", err_msg());
	cr_assert_null(c);
}

static const char *EXEC_CFG =
	"current-context: x\n"
	"contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	"clusters:\n- name: c\n  cluster: {server: 'https://h:6443'}\n"
	"users:\n- name: u\n  user:\n    exec:\n"
	"      apiVersion: client.authentication.k8s.io/v1beta1\n"
	"      command: ./bin/get-token\n"
	"      args: [--cluster, prod]\n"
	"      env:\n      - {name: FOO, value: bar}\n"
	"      provideClusterInfo: true\n"
	"      installHint: install get-token\n"
	"      interactiveMode: Never\n";

Test(kube_config, exec_plugin_config)
{
	kube_config *c = NULL;
	cr_assert_eq(parse_str(&c, EXEC_CFG, NULL), 0, "%s", err_msg());
	cr_assert_not_null(c->exec);
	cr_assert_str_eq(c->exec->api_version, "client.authentication.k8s.io/v1beta1");
	cr_assert_str_eq(c->exec->command, "/etc/./bin/get-token", "relative to the file");
	cr_assert_eq(c->exec->nargs, 2);
	cr_assert_str_eq(c->exec->args[1], "prod");
	cr_assert_eq(c->exec->nenv, 1);
	cr_assert_str_eq(c->exec->env[0], "FOO=bar");
	cr_assert_eq(c->exec->provide_cluster_info, 1);
	cr_assert_str_eq(c->exec->install_hint, "install get-token");
	kube_config_free(c);

	char *bad = str_printf("%.*s", (int)strlen(EXEC_CFG), EXEC_CFG);
	char *v = strstr(bad, "v1beta1");
	memcpy(v, "v1alpha", 7);
	cr_assert_eq(parse_str(&c, bad, NULL), ERR_INVALID);
	cr_assert(strstr(err_msg(), "users[u].user.exec.apiVersion"), "%s", err_msg());
	free(bad);
}

Test(kube_config, exec_bare_command_stays_for_path_lookup)
{
	kube_config *c = NULL;
	const char *y = "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
			"clusters:\n- name: c\n  cluster: {server: 'https://h'}\n"
			"users:\n- name: u\n  user:\n    exec: {apiVersion: client.authentication.k8s.io/v1, "
			"command: aws}\n";
	cr_assert_eq(parse_str(&c, y, NULL), 0, "%s", err_msg());
	cr_assert_str_eq(c->exec->command, "aws");
	kube_config_free(c);
}

Test(kube_config, yaml_alias_bomb_is_refused_quickly)
{
	const char *y =
		"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
		"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		"f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
		"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
	kube_config *c = NULL;
	cr_assert_eq(parse_str(&c, y, NULL), ERR_INVALID);
	cr_assert(strstr(err_msg(), "too many nodes"), "%s", err_msg());
}

Test(kube_config, empty_file_has_no_context)
{
	kube_config *c = NULL;
	cr_assert_eq(parse_str(&c, "", NULL), ERR_NOTFOUND);
}

/* ---- in-cluster ------------------------------------------------------- */

static char *sa_dir(const char *token, const char *ns)
{
	char *p = put("sa/token", token);
	free(p);
	if (ns) {
		p = put("sa/namespace", ns);
		free(p);
	}
	p = put("sa/ca.crt", "-----BEGIN CERTIFICATE-----\n");
	free(p);
	return str_printf("%s/sa", dir);
}

Test(kube_config, in_cluster_from_environment)
{
	char *sa = sa_dir("tok", "ci-sandbox\n");
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	setenv("CIFIXER_SA_DIR", sa, 1);
	kube_config_opts o = KUBE_CONFIG_OPTS_INIT;
	o.in_cluster = KUBE_INCLUSTER_ONLY;
	kube_config *c = NULL;
	cr_assert_eq(kube_config_load(&c, &o), 0, "%s", err_msg());
	cr_assert_str_eq(c->server, "https://10.96.0.1:443");
	cr_assert_str_eq(c->ns, "ci-sandbox");
	cr_assert_eq(c->in_cluster, 1);
	char *tf = str_printf("%s/token", sa), *ca = str_printf("%s/ca.crt", sa);
	cr_assert_str_eq(c->token_file, tf);
	cr_assert_str_eq(c->ca_file, ca);
	cr_assert_null(c->token, "the token is read by the client, not cached here");
	kube_config_free(c);
	free(tf);
	free(ca);
	free(sa);
}

Test(kube_config, in_cluster_ipv6_and_pod_namespace)
{
	char *sa = sa_dir("tok", NULL);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	setenv("POD_NAMESPACE", "from-env", 1);
	kube_config *c = NULL;
	cr_assert_eq(kube_config_in_cluster(&c, sa, NULL), 0, "%s", err_msg());
	cr_assert_str_eq(c->server, "https://[fd00::1]:6443");
	cr_assert_str_eq(c->ns, "from-env");
	kube_config_free(c);
	unsetenv("POD_NAMESPACE");
	cr_assert_eq(kube_config_in_cluster(&c, sa, NULL), 0, "%s", err_msg());
	cr_assert_str_eq(c->ns, "default", "no namespace file, no env");
	kube_config_free(c);
	free(sa);
}

Test(kube_config, auto_prefers_a_kubeconfig_then_in_cluster)
{
	char *sa = sa_dir("tok", "ns-in");
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	kube_config_opts o = KUBE_CONFIG_OPTS_INIT;
	o.sa_dir = sa;
	kube_config *c = NULL;
	cr_assert_eq(kube_config_load(&c, &o), 0, "%s", err_msg());
	cr_assert_eq(c->in_cluster, 1, "no kubeconfig anywhere: in-cluster");
	kube_config_free(c);
	char *p = put(".kube/config", ONE);
	cr_assert_eq(kube_config_load(&c, &o), 0, "%s", err_msg());
	cr_assert_eq(c->in_cluster, 0, "~/.kube/config wins");
	kube_config_free(c);
	o.in_cluster = KUBE_INCLUSTER_NEVER;
	unlink(p);
	cr_assert_eq(kube_config_load(&c, &o), ERR_NOTFOUND);
	free(p);
	free(sa);
}

Test(kube_config, in_cluster_errors)
{
	kube_config *c = NULL;
	cr_assert_eq(kube_config_in_cluster(&c, "/nonexistent", NULL), ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "KUBERNETES_SERVICE_HOST"), "%s", err_msg());
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	cr_assert_eq(kube_config_in_cluster(&c, "/nonexistent", NULL), ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "/nonexistent/token"), "%s", err_msg());
}

/*
 * kube/auth: exec credential plugins (a real script run as a child
 * process) cached until expiry and re-run after a 401; token files
 * re-read; ExecCredential parsing.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/auth.h"
#include "kube/config.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/kube-auth-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(kube_auth, .init = setup, .fini = teardown, .timeout = 60);

/* A plugin that counts its runs in $DIR/runs, records its environment,
 * and prints an ExecCredential whose expiry comes from $EXPIRY. */
static const char *PLUGIN =
	"#!/bin/sh\n"
	"echo run >> \"$STATE/runs\"\n"
	"n=$(wc -l < \"$STATE/runs\")\n"
	"printf '%%s' \"$KUBERNETES_EXEC_INFO\" > \"$STATE/info\"\n"
	"echo \"$1 $2 FOO=$FOO\" > \"$STATE/args\"\n"
	"if [ -n \"$FAIL\" ]; then echo 'plugin says: no credentials here' >&2; exit 3; fi\n"
	"printf '{\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"tok-%%s\"%%s}}\\n' "
	"\"$n\" \"${EXPIRY:+,\\\"expirationTimestamp\\\":\\\"$EXPIRY\\\"}\"\n";

static kube_config *plugin_config(const char *api_version, const char *expiry, int fail,
				  int cluster_info)
{
	char *script = str_printf("%s/plugin.sh", dir);
	FILE *f = fopen(script, "w");
	cr_assert_not_null(f);
	fprintf(f, PLUGIN, api_version);
	fclose(f);
	chmod(script, 0755);
	char *y = str_printf(
		"current-context: x\n"
		"contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		"clusters:\n- name: c\n  cluster: {server: 'https://api.example:6443', "
		"certificate-authority-data: Q0FEQVRB}\n"
		"users:\n- name: u\n  user:\n    exec:\n"
		"      apiVersion: %s\n      command: %s\n      args: [a1, a2]\n"
		"      provideClusterInfo: %s\n"
		"      env:\n      - {name: STATE, value: '%s'}\n      - {name: FOO, value: bar}\n"
		"      - {name: EXPIRY, value: '%s'}\n      - {name: FAIL, value: '%s'}\n",
		api_version, script, cluster_info ? "true" : "false", dir, expiry ? expiry : "",
		fail ? "1" : "");
	kube_config_doc d = { y, strlen(y), "/tmp/x" };
	kube_config *c = NULL;
	cr_assert_eq(kube_config_parse(&c, &d, 1, NULL, NULL), 0, "%s", err_msg());
	free(y);
	free(script);
	return c;
}

static char *slurp(const char *name)
{
	char *p = str_printf("%s/%s", dir, name);
	FILE *f = fopen(p, "r");
	free(p);
	if (!f)
		return NULL;
	char *b = calloc(1, 65536);
	size_t n = fread(b, 1, 65535, f);
	b[n] = '\0';
	fclose(f);
	return b;
}

Test(kube_auth, plugin_runs_once_until_a_401)
{
	kube_config *cfg = plugin_config("client.authentication.k8s.io/v1", "2099-01-01T00:00:00Z", 0, 0);
	kube_auth *a = NULL;
	kube_cred c1, c2, c3;
	cr_assert_eq(kube_auth_new(&a, cfg), 0);
	cr_assert_eq(kube_auth_get(a, &c1), 0, "%s", err_msg());
	cr_assert_str_eq(c1.token, "tok-1");
	cr_assert_eq(kube_auth_get(a, &c2), 0, "%s", err_msg());
	cr_assert_str_eq(c2.token, "tok-1");
	cr_assert_eq(kube_auth_exec_runs(a), 1, "cached until expiry");
	char *args = slurp("args");
	cr_assert_str_eq(args, "a1 a2 FOO=bar\n");
	free(args);

	/* A 401 for an old generation changes nothing; for the current one, a re-run. */
	kube_auth_invalidate(a, c1.generation + 100);
	cr_assert_eq(kube_auth_get(a, &c3), 0);
	cr_assert_eq(kube_auth_exec_runs(a), 1);
	kube_cred_clear(&c3);
	kube_auth_invalidate(a, c1.generation);
	cr_assert_eq(kube_auth_get(a, &c3), 0);
	cr_assert_eq(kube_auth_exec_runs(a), 2);
	cr_assert_str_eq(c3.token, "tok-2");
	cr_assert_neq(c3.generation, c1.generation);
	/* a second 401 carrying the stale generation does not re-run it */
	kube_auth_invalidate(a, c1.generation);
	kube_cred_clear(&c3);
	cr_assert_eq(kube_auth_get(a, &c3), 0);
	cr_assert_eq(kube_auth_exec_runs(a), 2);
	kube_cred_clear(&c1);
	kube_cred_clear(&c2);
	kube_cred_clear(&c3);
	kube_auth_free(a);
	kube_config_free(cfg);
}

Test(kube_auth, expired_credential_reruns_the_plugin)
{
	kube_config *cfg = plugin_config("client.authentication.k8s.io/v1", "2001-01-01T00:00:00Z", 0, 0);
	kube_auth *a = NULL;
	kube_cred c;
	cr_assert_eq(kube_auth_new(&a, cfg), 0);
	for (int i = 1; i <= 3; i++) {
		cr_assert_eq(kube_auth_get(a, &c), 0, "%s", err_msg());
		kube_cred_clear(&c);
		cr_assert_eq(kube_auth_exec_runs(a), (unsigned)i);
	}
	kube_auth_free(a);
	kube_config_free(cfg);
}

Test(kube_auth, no_expiry_means_cached_until_a_401)
{
	kube_config *cfg = plugin_config("client.authentication.k8s.io/v1beta1", NULL, 0, 0);
	kube_auth *a = NULL;
	kube_cred c;
	cr_assert_eq(kube_auth_new(&a, cfg), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(kube_auth_get(a, &c), 0, "%s", err_msg());
		kube_cred_clear(&c);
	}
	cr_assert_eq(kube_auth_exec_runs(a), 1);
	kube_auth_free(a);
	kube_config_free(cfg);
}

Test(kube_auth, exec_info_carries_the_cluster_when_asked)
{
	kube_config *cfg = plugin_config("client.authentication.k8s.io/v1", NULL, 0, 1);
	kube_auth *a = NULL;
	kube_cred c;
	cr_assert_eq(kube_auth_new(&a, cfg), 0);
	cr_assert_eq(kube_auth_get(a, &c), 0, "%s", err_msg());
	kube_cred_clear(&c);
	char *info = slurp("info");
	cJSON *j = cJSON_Parse(info);
	cr_assert_not_null(j, "%s", info);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "kind")->valuestring, "ExecCredential");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "apiVersion")->valuestring,
			 "client.authentication.k8s.io/v1");
	cJSON *spec = cJSON_GetObjectItem(j, "spec");
	cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(spec, "interactive")));
	cJSON *cl = cJSON_GetObjectItem(spec, "cluster");
	cr_assert_str_eq(cJSON_GetObjectItem(cl, "server")->valuestring, "https://api.example:6443");
	cr_assert_str_eq(cJSON_GetObjectItem(cl, "certificate-authority-data")->valuestring, "Q0FEQVRB");
	cJSON_Delete(j);
	free(info);
	kube_auth_free(a);
	kube_config_free(cfg);

	cfg = plugin_config("client.authentication.k8s.io/v1", NULL, 0, 0);
	cr_assert_eq(kube_auth_new(&a, cfg), 0);
	cr_assert_eq(kube_auth_get(a, &c), 0, "%s", err_msg());
	kube_cred_clear(&c);
	info = slurp("info");
	j = cJSON_Parse(info);
	cr_assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "spec"), "cluster"),
		       "no cluster without provideClusterInfo");
	cJSON_Delete(j);
	free(info);
	kube_auth_free(a);
	kube_config_free(cfg);
}

Test(kube_auth, failing_plugin_quotes_its_stderr)
{
	kube_config *cfg = plugin_config("client.authentication.k8s.io/v1", NULL, 1, 0);
	kube_auth *a = NULL;
	kube_cred c;
	cr_assert_eq(kube_auth_new(&a, cfg), 0);
	cr_assert_eq(kube_auth_get(a, &c), ERR_FAIL);
	cr_assert(strstr(err_msg(), "exit code 3"), "%s", err_msg());
	cr_assert(strstr(err_msg(), "plugin says: no credentials here"), "%s", err_msg());
	cr_assert(strstr(err_msg(), "user \"u\""), "%s", err_msg());
	kube_auth_free(a);
	kube_config_free(cfg);
}

Test(kube_auth, missing_plugin_shows_the_install_hint)
{
	kube_config *cfg = plugin_config("client.authentication.k8s.io/v1", NULL, 0, 0);
	free(cfg->exec->command);
	cfg->exec->command = str_dup("/nonexistent/get-token");
	free(cfg->exec->install_hint);
	cfg->exec->install_hint = str_dup("brew install get-token");
	kube_auth *a = NULL;
	kube_cred c;
	cr_assert_eq(kube_auth_new(&a, cfg), 0);
	cr_assert_eq(kube_auth_get(a, &c), ERR_FAIL);
	cr_assert(strstr(err_msg(), "brew install get-token"), "%s", err_msg());
	kube_auth_free(a);
	kube_config_free(cfg);
}

Test(kube_auth, plugin_with_wrong_api_version_is_refused)
{
	/* configured v1, the script answers v1beta1 */
	kube_config *cfg = plugin_config("client.authentication.k8s.io/v1beta1", NULL, 0, 0);
	free(cfg->exec->api_version);
	cfg->exec->api_version = str_dup("client.authentication.k8s.io/v1");
	kube_auth *a = NULL;
	kube_cred c;
	cr_assert_eq(kube_auth_new(&a, cfg), 0);
	cr_assert_eq(kube_auth_get(a, &c), ERR_INVALID);
	cr_assert(strstr(err_msg(), "plugin returned version client.authentication.k8s.io/v1beta1"),
		  "%s", err_msg());
	kube_auth_free(a);
	kube_config_free(cfg);
}

Test(kube_auth, token_file_reread_and_generation)
{
	char *tf = str_printf("%s/token", dir);
	FILE *f = fopen(tf, "w");
	fputs("  one\n", f);
	fclose(f);
	kube_config cfg = { 0 };
	cfg.token_file = tf;
	kube_auth *a = NULL;
	kube_cred c1, c2, c3;
	cr_assert_eq(kube_auth_new(&a, &cfg), 0);
	kube_auth_set_reread_ms(a, 0);
	cr_assert_eq(kube_auth_get(a, &c1), 0);
	cr_assert_str_eq(c1.token, "one", "whitespace trimmed");
	cr_assert_eq(kube_auth_get(a, &c2), 0);
	cr_assert_eq(c2.generation, c1.generation, "same content, same generation");
	f = fopen(tf, "w");
	fputs("two", f);
	fclose(f);
	cr_assert_eq(kube_auth_get(a, &c3), 0);
	cr_assert_str_eq(c3.token, "two");
	cr_assert_neq(c3.generation, c1.generation);
	/* the file disappears: the cached token is still served */
	unlink(tf);
	kube_cred_clear(&c3);
	cr_assert_eq(kube_auth_get(a, &c3), 0);
	cr_assert_str_eq(c3.token, "two");
	cr_assert_eq(kube_auth_token_reads(a), 4);
	kube_cred_clear(&c1);
	kube_cred_clear(&c2);
	kube_cred_clear(&c3);
	kube_auth_free(a);
	free(tf);
}

Test(kube_auth, missing_token_file_without_a_cache_is_an_error)
{
	kube_config cfg = { 0 };
	cfg.token_file = "/nonexistent/token";
	kube_auth *a = NULL;
	kube_cred c;
	cr_assert_eq(kube_auth_new(&a, &cfg), 0);
	cr_assert_eq(kube_auth_get(a, &c), ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "/nonexistent/token"), "%s", err_msg());
	kube_auth_free(a);
}

Test(kube_exec_credential, parse_cases)
{
	kube_cred c;
	int64_t exp;
	const char *v1 = "client.authentication.k8s.io/v1";
#define P(s) kube_exec_credential_parse(&c, &exp, s, strlen(s), v1)
	cr_assert_eq(P("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
		       "\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"2030-01-01T00:00:00Z\"}}"), 0);
	cr_assert_str_eq(c.token, "t");
	cr_assert_eq(exp, 1893456000000LL);
	kube_cred_clear(&c);
	cr_assert_eq(P("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
		       "\"status\":{\"clientCertificateData\":\"C\",\"clientKeyData\":\"K\"}}"), 0);
	cr_assert_str_eq(c.cert_pem, "C");
	cr_assert_str_eq(c.key_pem, "K");
	cr_assert_eq(exp, 0);
	kube_cred_clear(&c);
	cr_assert_eq(P("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\"}"),
		     ERR_UNAUTHORIZED);
	cr_assert(strstr(err_msg(), "status"));
	cr_assert_eq(P("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
		       "\"status\":{}}"), ERR_UNAUTHORIZED);
	cr_assert_eq(P("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
		       "\"status\":{\"clientCertificateData\":\"C\"}}"), ERR_UNAUTHORIZED);
	cr_assert_eq(P("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
		       "\"status\":{\"token\":\"t\",\"expirationTimestamp\":\"soon\"}}"), ERR_INVALID);
	cr_assert_eq(P("{\"apiVersion\":\"v1\",\"kind\":\"Pod\"}"), ERR_INVALID);
	cr_assert_eq(P("not json"), ERR_INVALID);
	cr_assert_eq(P(""), ERR_INVALID);
#undef P
}

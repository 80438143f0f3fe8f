/*
 * kube/client TLS options against a real TLS peer (`openssl s_server -www`
 * requiring a client certificate): CA from data or file, client
 * certificate from data, files or an exec plugin, tls-server-name,
 * insecure-skip-tls-verify, and the failures when any of them is wrong.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/rest.h"
#include "tests/unit/kube_fake_http.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

static char dir[64];
static int port;
static pid_t server;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void setup(void)
{
	if (sh("command -v openssl >/dev/null 2>&1") != 0)
		cr_skip_test("openssl command not installed");
	snprintf(dir, sizeof(dir), "/tmp/kube-tls-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	const char *key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
	cr_assert_eq(sh("(cd %s && printf 'subjectAltName=DNS:kubernetes.default\\n' > ext && "
			"openssl req -x509 %s -keyout ca.key -out ca.crt -days 2 -subj /CN=ca && "
			"openssl req -x509 %s -keyout other.key -out other.crt -days 2 -subj /CN=other && "
			"openssl req %s -keyout srv.key -out srv.csr -subj /CN=kubernetes.default && "
			"openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 2 -extfile ext && "
			"openssl req %s -keyout cl.key -out cl.csr -subj /CN=alice && "
			"openssl x509 -req -in cl.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out cl.crt -days 2)"
			" >/dev/null 2>&1", dir, key, key, key, key), 0);
	{
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t sl = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		getsockname(fd, (struct sockaddr *)&sa, &sl);
		port = ntohs(sa.sin_port);
		close(fd);
	}
	server = fork();
	if (server == 0) {
		char acc[64], cert[128], k[128], ca[128];
		snprintf(acc, sizeof(acc), "127.0.0.1:%d", port);
		snprintf(cert, sizeof(cert), "%s/srv.crt", dir);
		snprintf(k, sizeof(k), "%s/srv.key", dir);
		snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		execlp("openssl", "openssl", "s_server", "-accept", acc, "-cert", cert, "-key", k, "-www",
		       "-Verify", "1", "-CAfile", ca, "-quiet", (char *)NULL);
		_exit(127);
	}
	/* wait until it accepts */
	for (int i = 0; i < 100; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			return;
		clock_sleep_ms(50);
	}
	cr_assert_fail("openssl s_server did not start");
}

static void teardown(void)
{
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
	}
	if (dir[0])
		sh("rm -rf '%s'", dir);
}

TestSuite(kube_tls, .init = setup, .fini = teardown, .timeout = 60);

static char *b64file(const char *name)
{
	char *p = str_printf("%s/%s", dir, name);
	FILE *f = fopen(p, "rb");
	char data[8192];
	size_t n = fread(data, 1, sizeof(data), f);
	fclose(f);
	free(p);
	buf b = BUF_INIT(1 << 16);
	str_base64_encode(&b, data, n);
	return buf_take(&b, NULL);
}

/* GET /api through a client built from the YAML cluster and user lines. */
static int get_with(const char *cluster, const char *user)
{
	char *y = str_printf("current-context: t\n"
			     "clusters:\n- name: c\n  cluster:\n%s"
			     "contexts:\n- name: t\n  context: {cluster: c, user: u}\n"
			     "users:\n- name: u\n  user:\n%s", cluster, user);
	kube_config_doc d = { y, strlen(y), "/tmp/x" };
	kube_config *cfg = NULL;
	kube_client *c = NULL;
	cr_assert_eq(kube_config_parse(&cfg, &d, 1, NULL, NULL), 0, "%s", err_msg());
	cr_assert_eq(kube_client_new(&c, cfg), 0, "%s", err_msg());
	kube_request req = KUBE_REQUEST_INIT;
	req.path = "/api";
	req.max_retries = 0;
	req.deadline_ms = clock_mono_ms() + 60000; /* a safety limit: an exec plugin under valgrind is slow */
	int rc = kube_rest_do(NULL, c, &req);
	kube_client_free(c);
	kube_config_free(cfg);
	free(y);
	return rc;
}

Test(kube_tls, ca_data_client_cert_data_and_tls_server_name)
{
	char *ca = b64file("ca.crt"), *crt = b64file("cl.crt"), *key = b64file("cl.key");
	char *cl = str_printf("    server: https://127.0.0.1:%d\n    certificate-authority-data: %s\n"
			      "    tls-server-name: kubernetes.default\n", port, ca);
	char *u = str_printf("    client-certificate-data: %s\n    client-key-data: %s\n", crt, key);
	cr_assert_eq(get_with(cl, u), 0, "%s", err_msg());
	free(ca); free(crt); free(key); free(cl); free(u);
}

Test(kube_tls, ca_file_and_client_cert_files)
{
	char *cl = str_printf("    server: https://127.0.0.1:%d\n    certificate-authority: %s/ca.crt\n"
			      "    tls-server-name: kubernetes.default\n", port, dir);
	char *u = str_printf("    client-certificate: %s/cl.crt\n    client-key: %s/cl.key\n", dir, dir);
	cr_assert_eq(get_with(cl, u), 0, "%s", err_msg());
	free(cl); free(u);
}

Test(kube_tls, server_name_mismatch_fails_without_tls_server_name)
{
	char *cl = str_printf("    server: https://127.0.0.1:%d\n    certificate-authority: %s/ca.crt\n", port, dir);
	char *u = str_printf("    client-certificate: %s/cl.crt\n    client-key: %s/cl.key\n", dir, dir);
	int rc = get_with(cl, u);
	cr_assert_lt(rc, 0);
	cr_assert(strstr(err_msg(), "127.0.0.1") || strstr(err_msg(), "certificate"), "%s", err_msg());
	free(cl); free(u);
}

Test(kube_tls, insecure_only_when_the_file_says_so)
{
	char *u = str_printf("    client-certificate: %s/cl.crt\n    client-key: %s/cl.key\n", dir, dir);
	char *cl = str_printf("    server: https://127.0.0.1:%d\n    insecure-skip-tls-verify: true\n", port);
	cr_assert_eq(get_with(cl, u), 0, "%s", err_msg());
	free(cl);
	/* without it and without a CA: the system roots do not know this CA */
	cl = str_printf("    server: https://127.0.0.1:%d\n    tls-server-name: kubernetes.default\n", port);
	cr_assert_lt(get_with(cl, u), 0);
	free(cl); free(u);
}

Test(kube_tls, wrong_ca_is_refused)
{
	char *cl = str_printf("    server: https://127.0.0.1:%d\n    certificate-authority: %s/other.crt\n"
			      "    tls-server-name: kubernetes.default\n", port, dir);
	char *u = str_printf("    client-certificate: %s/cl.crt\n    client-key: %s/cl.key\n", dir, dir);
	cr_assert_lt(get_with(cl, u), 0);
	free(cl); free(u);
}

Test(kube_tls, no_client_certificate_is_refused)
{
	char *cl = str_printf("    server: https://127.0.0.1:%d\n    certificate-authority: %s/ca.crt\n"
			      "    tls-server-name: kubernetes.default\n", port, dir);
	cr_assert_lt(get_with(cl, "    token: abc\n"), 0);
	free(cl);
}

Test(kube_tls, exec_plugin_client_certificate)
{
	/* the plugin prints the PEM certificate and key as an ExecCredential */
	char *script = str_printf("%s/plugin.sh", dir);
	FILE *f = fopen(script, "w");
	fprintf(f, "#!/bin/sh\n"
		   "j() { awk 'BEGIN{ORS=\"\"} {gsub(/\\r/,\"\"); print $0 \"\\\\n\"}' \"$1\"; }\n"
		   "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
		   "\"status\":{\"clientCertificateData\":\"%%s\",\"clientKeyData\":\"%%s\"}}' "
		   "\"$(j %s/cl.crt)\" \"$(j %s/cl.key)\"\n", dir, dir);
	fclose(f);
	chmod(script, 0755);
	char *cl = str_printf("    server: https://127.0.0.1:%d\n    certificate-authority: %s/ca.crt\n"
			      "    tls-server-name: kubernetes.default\n", port, dir);
	char *u = str_printf("    exec: {apiVersion: client.authentication.k8s.io/v1, command: %s}\n", script);
	cr_assert_eq(get_with(cl, u), 0, "%s", err_msg());
	free(cl); free(u); free(script);
}

Test(kube_tls, missing_ca_file_is_named_at_client_creation)
{
	char *y = str_printf("current-context: t\nclusters:\n- name: c\n  cluster: {server: 'https://h', "
			     "certificate-authority: /nonexistent/ca.crt}\n"
			     "contexts:\n- name: t\n  context: {cluster: c}\n");
	kube_config_doc d = { y, strlen(y), "/tmp/x" };
	kube_config *cfg = NULL;
	kube_client *c = NULL;
	cr_assert_eq(kube_config_parse(&cfg, &d, 1, NULL, NULL), 0, "%s", err_msg());
	cr_assert_eq(kube_client_new(&c, cfg), ERR_NOTFOUND);
	cr_assert(strstr(err_msg(), "certificate-authority /nonexistent/ca.crt"), "%s", err_msg());
	kube_config_free(cfg);
	free(y);
}

/* The CA is parsed once, when the client is made (kube/client.c
 * ca_store_new), and every connection verifies against that copy: a CA
 * file replaced afterwards changes nothing, as with client-go, which
 * reads it when it builds the transport. A bundle of several CAs works
 * whichever of them signed the server. */
Test(kube_tls, ca_is_parsed_once_for_every_connection)
{
	cr_assert_eq(sh("cd %s && cat other.crt ca.crt > bundle.crt", dir), 0);
	char *y = str_printf("current-context: t\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:%d', "
			     "certificate-authority: %s/bundle.crt, tls-server-name: kubernetes.default}\n"
			     "contexts:\n- name: t\n  context: {cluster: c, user: u}\n"
			     "users:\n- name: u\n  user: {client-certificate: %s/cl.crt, client-key: %s/cl.key}\n",
			     port, dir, dir, dir);
	kube_config_doc d = { y, strlen(y), "/tmp/x" };
	kube_config *cfg = NULL;
	kube_client *c = NULL;
	cr_assert_eq(kube_config_parse(&cfg, &d, 1, NULL, NULL), 0, "%s", err_msg());
	cr_assert_eq(kube_client_new(&c, cfg), 0, "%s", err_msg());
	cr_assert_eq(sh("cd %s && cp other.crt bundle.crt", dir), 0);
	for (int i = 0; i < 2; i++) {
		kube_request req = KUBE_REQUEST_INIT;
		req.path = "/api";
		req.max_retries = 0;
		req.deadline_ms = clock_mono_ms() + 60000;
		cr_assert_eq(kube_rest_do(NULL, c, &req), 0, "request %d: %s", i, err_msg());
	}
	kube_client_free(c);
	kube_config_free(cfg);
	free(y);
}

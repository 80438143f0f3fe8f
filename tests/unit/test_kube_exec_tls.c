/*
 * kube_exec_run end to end through libcurl: a kube_client built from a
 * kubeconfig, a CONNECT_ONLY TLS connection, the upgrade written by hand,
 * to a fake exec server speaking TLS (OpenSSL) on loopback. Covers what
 * only the real transport has: TLS records buffered inside OpenSSL, writes
 * retried after "again", the bearer token on the upgrade, the 401 retry,
 * and connection failures.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "kube/client.h"
#include "kube/config.h"
#include "kube/exec.h"
#include "tests/unit/kube_exec_fake.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"

static char dir[64];

/* One listening TLS server; conns[i] is the script for the i-th
 * connection. */
typedef struct tls_srv {
	int lfd, port;
	SSL_CTX *ctx;
	script_fn conns[4];
	int nconns;
	const char *answers[4]; /* s->answer of each connection */
	int arg;
	srv last;              /* the state of the last connection served */
	buf stdin_seen;        /* stdin of the last connection */
	pthread_t th;
} tls_srv;

static void *tls_main(void *arg)
{
	tls_srv *t = arg;

	for (int i = 0; i < t->nconns; i++) {
		int fd = accept(t->lfd, NULL, NULL);
		srv *s = &t->last;

		if (fd < 0)
			return NULL;
		buf_free(&s->in);
		memset(s, 0, sizeof(*s));
		s->fd = fd;
		s->msg_chan = -1;
		s->answer_pings = 1;
		s->answer = t->answers[i];
		s->arg = t->arg;
		buf_init(&s->in, 64u << 20);
		ws_decoder_init(&s->dec, 1, 64u << 20);
		s->ssl = SSL_new(t->ctx);
		SSL_set_fd(s->ssl, fd);
		if (SSL_accept(s->ssl) == 1 && srv_read_head(s) == 0)
			t->conns[i](s);
		SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		s->ssl = NULL;
		close(fd);
	}
	return NULL;
}

static void tls_start(tls_srv *t)
{
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	char cert[128], key[128];

	t->ctx = SSL_CTX_new(TLS_server_method());
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	cr_assert_eq(SSL_CTX_use_certificate_file(t->ctx, cert, SSL_FILETYPE_PEM), 1);
	cr_assert_eq(SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM), 1);
	t->lfd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(t->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(t->lfd, 8), 0);
	getsockname(t->lfd, (struct sockaddr *)&sa, &sl);
	t->port = ntohs(sa.sin_port);
	pthread_create(&t->th, NULL, tls_main, t);
}

static void tls_stop(tls_srv *t)
{
	shutdown(t->lfd, SHUT_RDWR);
	pthread_join(t->th, NULL);
	close(t->lfd);
	buf_free(&t->last.in);
	SSL_CTX_free(t->ctx);
}

static kube_client *client_for(int port, const char *token)
{
	char text[2048], ca[128];
	kube_config *cfg = NULL;
	kube_client *c = NULL;

	snprintf(ca, sizeof(ca), "%s/cert.pem", dir);
	snprintf(text, sizeof(text),
		 "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
		 "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:%d\n    certificate-authority: %s\n"
		 "users:\n- name: u\n  user:\n    token: %s\n"
		 "contexts:\n- name: t\n  context:\n    cluster: c\n    user: u\n    namespace: ns1\n",
		 port, ca, token);
	kube_config_doc doc = { text, strlen(text), "/tmp/kubeconfig" };
	cr_assert_eq(kube_config_parse(&cfg, &doc, 1, NULL, NULL), 0, "%s", err_msg());
	cr_assert_eq(kube_client_new(&c, cfg), 0, "%s", err_msg());
	kube_config_free(cfg);
	return c;
}

static void setup(void)
{
	char cmd[512];

	snprintf(dir, sizeof(dir), "/tmp/kube-exec-tls.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout %s/key.pem "
		 "-out %s/cert.pem -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
		 dir, dir);
	cr_assert_eq(system(cmd), 0, "openssl req failed");
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

typedef struct acc {
	buf out, err;
	EVP_MD_CTX *sha;
} acc;

static int acc_out(void *arg, const void *p, size_t n)
{
	acc *a = arg;

	if (a->sha)
		return EVP_DigestUpdate(a->sha, p, n) == 1 ? 0 : ERR_FAIL;
	return buf_append(&a->out, p, n);
}

static int acc_err(void *arg, const void *p, size_t n)
{
	return buf_append(&((acc *)arg)->err, p, n);
}

static const char *const ARGV[] = { "sh", "-c", "x", NULL };

static void opts_for(kube_exec_opts *o, acc *a)
{
	kube_exec_opts d = KUBE_EXEC_OPTS_INIT;

	*o = d;
	o->pod = "p1";
	o->container = "main";
	o->argv = ARGV;
	o->on_stdout = acc_out;
	o->on_stderr = acc_err;
	o->out_arg = a;
	buf_init(&a->out, 64u << 20);
	buf_init(&a->err, 1u << 20);
	a->sha = NULL;
}

TestSuite(kube_exec_tls, .init = setup, .fini = teardown, .timeout = 60);

Test(kube_exec_tls, upgrade_over_tls_with_the_bearer_token)
{
	tls_srv t = { 0 };
	kube_exec_opts o;
	kube_exec_result r;
	acc a;

	t.conns[0] = sc_hello;
	t.nconns = 1;
	tls_start(&t);
	kube_client *c = client_for(t.port, "sekret-token");
	opts_for(&o, &a);
	cr_assert_eq(kube_exec_run(&r, c, &o), 0, "%s", err_msg());
	cr_assert_eq(r.exit_code, 0);
	cr_assert_eq(r.protocol, 5);
	cr_assert_eq(r.attempts, 1);
	cr_assert_str_eq(buf_cstr(&a.out), "hello world\n");
	cr_assert_str_eq(buf_cstr(&a.err), "warning\n");
	tls_stop(&t);
	cr_assert(strstr(t.last.req, "\r\nAuthorization: Bearer sekret-token\r\n"), "%s", t.last.req);
	cr_assert(strstr(t.last.req, "GET /api/v1/namespaces/ns1/pods/p1/exec?command=sh&command=-c&command=x"
				     "&container=main&stdout=true&stderr=true HTTP/1.1\r\n"),
		  "%s", t.last.req);
	char host[64];
	snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", t.port);
	cr_assert(strstr(t.last.req, host), "%s", t.last.req);
	kube_client_free(c);
	buf_free(&a.out);
	buf_free(&a.err);
}

Test(kube_exec_tls, stdin_and_output_megabytes_through_tls_buffers)
{
	tls_srv t = { 0 };
	kube_exec_opts o;
	kube_exec_result r;
	acc a;
	size_t n = 6u << 20;
	uint8_t *data = malloc(n);

	fill_pattern(data, n);
	t.conns[0] = sc_echo;
	t.nconns = 1;
	tls_start(&t);
	kube_client *c = client_for(t.port, "tok");
	opts_for(&o, &a);
	o.stdin_data = data;
	o.stdin_len = n;
	int64_t t0 = clock_mono_ms();
	cr_assert_eq(kube_exec_run(&r, c, &o), 0, "%s", err_msg());
	cr_log_info("6 MiB in and out over TLS in %lld ms", (long long)(clock_mono_ms() - t0));
	cr_assert_eq(r.exit_code, 0, "the server saw a bad stdin close");
	cr_assert_eq(r.stdin_bytes, n);
	cr_assert_eq(a.out.len, n);
	cr_assert_eq(memcmp(a.out.data, data, n), 0);
	tls_stop(&t);
	kube_client_free(c);
	buf_free(&a.out);
	buf_free(&a.err);
	free(data);
}

Test(kube_exec_tls, large_output_over_tls_is_complete)
{
	tls_srv t = { 0 };
	kube_exec_opts o;
	kube_exec_result r;
	acc a;
	uint8_t got[32], want[32], *p = malloc(65536);
	/* tests/tools/valgrind.sh sets CIFIXER_VALGRIND: the same path with
	 * less data, as memcheck moves about 1 MiB/s through TLS */
	size_t n = getenv("CIFIXER_VALGRIND") ? 4u << 20 : 64u << 20;

	t.conns[0] = sc_big;
	t.nconns = 1;
	t.arg = (int)n;
	tls_start(&t);
	kube_client *c = client_for(t.port, "tok");
	opts_for(&o, &a);
	a.sha = EVP_MD_CTX_new();
	EVP_DigestInit_ex(a.sha, EVP_sha256(), NULL);
	int64_t t0 = clock_mono_ms();
	cr_assert_eq(kube_exec_run(&r, c, &o), 0, "%s", err_msg());
	int64_t ms = clock_mono_ms() - t0;
	EVP_DigestFinal_ex(a.sha, got, NULL);
	EVP_MD_CTX_free(a.sha);
	fill_pattern(p, 65536);
	EVP_MD_CTX *w = EVP_MD_CTX_new();
	EVP_DigestInit_ex(w, EVP_sha256(), NULL);
	for (size_t off = 0; off < n; off += 32768)
		EVP_DigestUpdate(w, p + (off % 65536), 32768);
	EVP_DigestFinal_ex(w, want, NULL);
	EVP_MD_CTX_free(w);
	cr_assert_eq(r.stdout_bytes, n);
	cr_assert_eq(memcmp(got, want, 32), 0);
	fprintf(stderr, "# kube_exec_tls: 64 MiB stdout over TLS on loopback in %lld ms (%.0f MiB/s)\n",
		(long long)ms, 64000.0 / (double)(ms ? ms : 1));
	tls_stop(&t);
	kube_client_free(c);
	buf_free(&a.out);
	buf_free(&a.err);
	free(p);
}

Test(kube_exec_tls, cut_stream_over_tls_is_lost)
{
	tls_srv t = { 0 };
	kube_exec_opts o;
	kube_exec_result r;
	acc a;

	t.conns[0] = sc_cut;
	t.nconns = 1;
	tls_start(&t);
	kube_client *c = client_for(t.port, "tok");
	opts_for(&o, &a);
	cr_assert_eq(kube_exec_run(&r, c, &o), ERR_LOST, "%s", err_msg());
	cr_assert(strstr(err_msg(), "the command's outcome is unknown"), "%s", err_msg());
	cr_assert_str_eq(buf_cstr(&a.out), "partial output");
	tls_stop(&t);
	kube_client_free(c);
	buf_free(&a.out);
	buf_free(&a.err);
}

Test(kube_exec_tls, unauthorized_then_retried_once)
{
	tls_srv t = { 0 };
	kube_exec_opts o;
	kube_exec_result r;
	acc a;

	t.conns[0] = sc_http_error;
	t.conns[1] = sc_hello;
	t.nconns = 2;
	t.answers[0] = "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 129\r\n\r\n"
		   "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Unauthorized\","
		   "\"reason\":\"Unauthorized\",\"code\":401}";
	tls_start(&t);
	kube_client *c = client_for(t.port, "tok");
	opts_for(&o, &a);
	cr_assert_eq(kube_exec_run(&r, c, &o), 0, "%s", err_msg());
	cr_assert_eq(r.attempts, 2);
	cr_assert_eq(r.exit_code, 0);
	tls_stop(&t);
	kube_client_free(c);
	buf_free(&a.out);
	buf_free(&a.err);
}

Test(kube_exec_tls, refused_connection_is_retryable)
{
	tls_srv t = { 0 };
	kube_exec_opts o;
	kube_exec_result r;
	acc a;

	t.nconns = 0;
	tls_start(&t);
	int port = t.port;
	tls_stop(&t); /* nothing listens there any more */
	kube_client *c = client_for(port, "tok");
	opts_for(&o, &a);
	cr_assert_eq(kube_exec_run(&r, c, &o), ERR_AGAIN, "%s", err_msg());
	cr_assert(strstr(err_msg(), "connecting to https://127.0.0.1:"), "%s", err_msg());
	cr_assert_eq(r.protocol, 0);
	cr_assert_eq(r.exit_code, -1);
	kube_client_free(c);
	buf_free(&a.out);
	buf_free(&a.err);
}

/*
 * kube/client: one API server, its TLS and credentials, and a pool of
 * libcurl easy handles.
 *
 * Threads: any. What is shared and how:
 *  - the CURLSH (connections, DNS, TLS sessions) is locked by libcurl
 *    through share_lock_cb, one mutex per curl_lock_data (share_locks);
 *  - the idle easy-handle pool is under pool_lock;
 *  - request counters are under stats_lock;
 *  - credentials are under the kube_auth object's own lock.
 * A REST request takes a handle from the pool (kube_client_handle_get),
 * prepares it (kube_client_prepare: TLS, proxy, timeouts, auth header),
 * performs, and gives it back (kube_client_handle_put), which resets its
 * options but keeps the shared connection alive for the next request.
 */
#include "kube/client.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "kube/auth.h"
#include "kube/client_priv.h"
#include "util/err.h"
#include "util/log.h"
#include "util/str.h"

#define POOL_MAX 32
#define STATS_MAX 96

struct kube_client {
	kube_config *cfg;
	kube_auth *auth;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock; /* guards pool, npool */
	CURL *pool[POOL_MAX];
	int npool;
	long in_use; /* handles given out and not yet put back (pool_lock) */
	long connect_ms;
	long request_ms;
	char *url_base;      /* scheme://authority used in URLs (the SNI name with tls-server-name) */
	struct curl_slist *connect_to; /* tls-server-name: route the SNI name to the server */
	char *host_header;   /* "Host: <server authority>" with tls-server-name */
	pthread_mutex_t stats_lock; /* guards stats, nstats */
	kube_request_count stats[STATS_MAX];
	size_t nstats;
	uint64_t connections; /* opened by the REST path */
	X509_STORE *ca_store; /* the cluster CA, parsed once (ca_store_new); NULL: libcurl loads it */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static void share_lock_cb(CURL *h, curl_lock_data d, curl_lock_access a, void *ud)
{
	kube_client *c = ud;
	(void)h;
	(void)a;
	if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_locks[d]);
}

static void share_unlock_cb(CURL *h, curl_lock_data d, void *ud)
{
	kube_client *c = ud;
	(void)h;
	if ((int)d >= 0 && d < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_locks[d]);
}

/* Split "https://host:port" into scheme, host and port. */
static int split_server(const char *server, char **host, char **port, int *https)
{
	const char *p = server;
	*https = str_has_prefix(p, "https://");
	p += *https ? 8 : 7;
	const char *end = p + strcspn(p, "/");
	const char *colon = NULL;
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));
		if (!rb)
			return -1;
		colon = (rb + 1 < end && rb[1] == ':') ? rb + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
	}
	*host = str_ndup(p, (size_t)((colon ? colon : end) - p));
	*port = colon ? str_ndup(colon + 1, (size_t)(end - colon - 1)) : str_dup(*https ? "443" : "80");
	return *host && *port ? 0 : -1;
}

/* The cluster CA, parsed once for every connection of this client.
 * Given the CA as CURLOPT_CAINFO(_BLOB), libcurl's OpenSSL backend makes
 * each new connection an SSL_CTX and parses the PEM into its X509_STORE
 * again (lib/vtls/openssl.c populate_x509_store; its CA cache,
 * CURLOPT_CA_CACHE_TIMEOUT, is per multi handle, i.e. per easy handle
 * here, and skips blobs): measured 9% of an exec's client CPU and 5 KiB
 * per connection for a one-certificate CA. So ssl_ctx_cb hands every
 * SSL_CTX this one store (reference-counted by OpenSSL, locked for
 * concurrent verifications). It holds what libcurl would load: the
 * certificates and CRLs of the PEM data or file (load_cacert_from_memory,
 * X509_STORE_load_file), with the flags libcurl sets when it verifies
 * (X509_V_FLAG_TRUSTED_FIRST, X509_V_FLAG_PARTIAL_CHAIN). NULL when the
 * CA is not verified here (insecure, no CA: the system roots, which
 * libcurl loads as before), when an HTTPS proxy is configured (libcurl
 * gives the proxy's SSL_CTX to the same callback) or when the PEM has
 * nothing usable: then libcurl loads it, and reports it, as before. */
static X509_STORE *ca_store_new(const kube_config *cfg)
{
	if (cfg->insecure || (!cfg->ca_data && !cfg->ca_file) ||
	    (cfg->proxy_url && !str_has_prefix(cfg->proxy_url, "http://")))
		return NULL;
	X509_STORE *s = X509_STORE_new();
	int n = 0;
	if (s && cfg->ca_data && cfg->ca_data_len <= (size_t)INT_MAX) {
		BIO *b = BIO_new_mem_buf(cfg->ca_data, (int)cfg->ca_data_len);
		STACK_OF(X509_INFO) *inf = b ? PEM_X509_INFO_read_bio(b, NULL, NULL, NULL) : NULL;
		for (int i = 0; inf && i < sk_X509_INFO_num(inf); i++) {
			X509_INFO *x = sk_X509_INFO_value(inf, i);
			n += x->x509 && X509_STORE_add_cert(s, x->x509);
			n += x->crl && X509_STORE_add_crl(s, x->crl);
		}
		sk_X509_INFO_pop_free(inf, X509_INFO_free);
		BIO_free(b);
	} else if (s && !cfg->ca_data) {
		n = X509_STORE_load_file(s, cfg->ca_file);
	}
	if (n <= 0 || !X509_STORE_set_flags(s, X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN)) {
		X509_STORE_free(s);
		ERR_clear_error();
		return NULL;
	}
	return s;
}

int kube_client_new(kube_client **out, const kube_config *cfg)
{
	kube_client *c = NULL;
	int rc = 0;

	*out = NULL;
	pthread_once(&curl_once, curl_init_once);
	c = calloc(1, sizeof(*c));
	if (!c)
		return err_set(ERR_NOMEM, "out of memory");
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	pthread_mutex_init(&c->pool_lock, NULL);
	pthread_mutex_init(&c->stats_lock, NULL);
	c->connect_ms = KUBE_CONNECT_TIMEOUT_MS_DEFAULT;
	c->request_ms = KUBE_REQUEST_TIMEOUT_MS_DEFAULT;
	if ((rc = kube_config_dup(&c->cfg, cfg)) < 0)
		goto fail;
	if ((rc = kube_auth_new(&c->auth, c->cfg)) < 0)
		goto fail;
	/* Referenced files must exist now, with a message naming them. */
	const char *files[] = { c->cfg->ca_file, c->cfg->client_cert_file, c->cfg->client_key_file };
	const char *what[] = { "certificate-authority", "client-certificate", "client-key" };
	for (int i = 0; i < 3; i++) {
		if (files[i] && access(files[i], R_OK) != 0) {
			rc = err_set(ERR_NOTFOUND, "%s: %s %s cannot be read", c->cfg->source, what[i],
				     files[i]);
			goto fail;
		}
	}
	if (!str_has_prefix(c->cfg->server, "https://") && !str_has_prefix(c->cfg->server, "http://")) {
		rc = err_set(ERR_INVALID, "%s: server \"%s\" is not an http(s) URL", c->cfg->source,
			     c->cfg->server);
		goto fail;
	}
	if (c->cfg->tls_server_name) {
		/* libcurl takes the TLS name from the URL: put the SNI name in
		 * the URL, connect it to the real server, and send the real
		 * Host (client-go sets tls.Config.ServerName, Host unchanged). */
		char *host = NULL, *port = NULL;
		int https = 0;
		if (split_server(c->cfg->server, &host, &port, &https) < 0) {
			free(host);
			free(port);
			rc = err_set(ERR_INVALID, "%s: cannot parse server \"%s\"", c->cfg->source,
				     c->cfg->server);
			goto fail;
		}
		char *route = str_printf("%s:%s:%s:%s", c->cfg->tls_server_name, port, host, port);
		c->url_base = str_printf("%s://%s:%s", https ? "https" : "http",
					 c->cfg->tls_server_name, port);
		const char *auth = c->cfg->server + (https ? 8 : 7);
		c->host_header = str_printf("Host: %.*s", (int)strcspn(auth, "/"), auth);
		free(host);
		free(port);
		if (!route || !c->url_base || !c->host_header ||
		    !(c->connect_to = curl_slist_append(NULL, route))) {
			free(route);
			rc = err_set(ERR_NOMEM, "out of memory");
			goto fail;
		}
		free(route);
	} else {
		c->url_base = str_dup(c->cfg->server);
		if (!c->url_base) {
			rc = err_set(ERR_NOMEM, "out of memory");
			goto fail;
		}
	}
	c->share = curl_share_init();
	if (!c->share) {
		rc = err_set(ERR_NOMEM, "curl_share_init failed");
		goto fail;
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock_cb);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock_cb);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	c->ca_store = ca_store_new(c->cfg);
	if (c->cfg->insecure)
		/* The one place the library logs: the user asked for no TLS
		 * verification in the kubeconfig, and must be told. */
		log_kv(LOG_WARN, "kubeconfig disables TLS verification (insecure-skip-tls-verify)",
		       "source", c->cfg->source, "server", c->cfg->server, NULL);
	*out = c;
	return 0;
fail:
	kube_client_free(c);
	return rc;
}

void kube_client_free(kube_client *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	if (c->share)
		curl_share_cleanup(c->share);
	kube_auth_free(c->auth);
	kube_config_free(c->cfg);
	curl_slist_free_all(c->connect_to);
	free(c->url_base);
	free(c->host_header);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->pool_lock);
	pthread_mutex_destroy(&c->stats_lock);
	X509_STORE_free(c->ca_store);
	free(c);
}

void kube_client_set_timeouts(kube_client *c, long connect_ms, long request_ms)
{
	if (connect_ms > 0)
		c->connect_ms = connect_ms;
	if (request_ms > 0)
		c->request_ms = request_ms;
}

const char *kube_client_server(const kube_client *c) { return c->cfg->server; }
const char *kube_client_namespace(const kube_client *c) { return c->cfg->ns; }
const kube_config *kube_client_config(const kube_client *c) { return c->cfg; }
long kube_client_request_timeout_ms(const kube_client *c) { return c->request_ms; }
kube_auth *kube_client_auth(kube_client *c) { return c->auth; }

void kube_client_note_unauthorized(kube_client *c) { kube_auth_invalidate(c->auth, 0); }

void kube_client_note_unauthorized_gen(kube_client *c, uint64_t gen)
{
	kube_auth_invalidate(c->auth, gen);
}

char *kube_client_url(const kube_client *c, const char *path)
{
	return str_printf("%s%s", c->url_base, path ? path : "");
}

/* curl's OpenSSL backend hands each new connection's SSL_CTX here.
 * SSL_MODE_RELEASE_BUFFERS lets OpenSSL free a connection's record buffers
 * (about 17 KiB each way) whenever it has nothing buffered: most of the
 * time for a quiet watch, the exec of a silent command or a pooled
 * keep-alive connection. With 1,000 runs at once (bench part 4) serve
 * holds two to three thousand such connections. It also gives the context
 * the client's one parsed CA (ca_store_new), in place of the empty store
 * libcurl made. Other TLS backends do not call this (the option is
 * refused: kube_client_prepare then gives libcurl the CA as before). */
static CURLcode ssl_ctx_cb(CURL *h, void *ssl_ctx, void *ud)
{
	kube_client *c = ud;
	(void)h;
	SSL_CTX_set_mode((SSL_CTX *)ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
	if (c && c->ca_store)
		SSL_CTX_set1_cert_store((SSL_CTX *)ssl_ctx, c->ca_store);
	return CURLE_OK;
}

int kube_client_prepare(kube_client *c, CURL *h, struct curl_slist **headers_out, uint64_t *gen_out)
{
	const kube_config *cfg = c->cfg;
	struct curl_slist *hd = NULL;
	kube_cred cred;
	int rc;

	*headers_out = NULL;
	if (gen_out)
		*gen_out = 0;
	if ((rc = kube_auth_get(c->auth, &cred)) < 0)
		return rc;
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* Keep-alive probes after 30 s idle, as client-go's dialer
	 * (s/client-go/transport/cache.go: net.Dialer{KeepAlive: 30s}), so a
	 * silently dead connection under a quiet watch is noticed. */
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 30L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	int own_store = curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb) == CURLE_OK &&
			c->ca_store;
	curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, own_store ? c : NULL);
	if (cfg->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	}
	if (own_store) {
		/* No CA for libcurl to load: ssl_ctx_cb installs ours. Both
		 * defaults (the system bundle and path) are cleared, or every
		 * connection would parse those instead. */
		curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	} else if (cfg->ca_data) {
		struct curl_blob b = { cfg->ca_data, cfg->ca_data_len, CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
	} else if (cfg->ca_file) {
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
	}
	if (cred.cert_pem) {
		struct curl_blob cb = { cred.cert_pem, cred.cert_len, CURL_BLOB_COPY };
		struct curl_blob kb = { cred.key_pem, cred.key_len, CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	} else if (cfg->client_cert_data) {
		struct curl_blob cb = { cfg->client_cert_data, cfg->client_cert_data_len, CURL_BLOB_COPY };
		struct curl_blob kb = { cfg->client_key_data, cfg->client_key_data_len, CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
		if (cfg->client_key_data)
			curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
		else
			curl_easy_setopt(h, CURLOPT_SSLKEY, cfg->client_key_file);
	} else if (cfg->client_cert_file) {
		curl_easy_setopt(h, CURLOPT_SSLCERT, cfg->client_cert_file);
		if (cfg->client_key_data) {
			struct curl_blob kb = { cfg->client_key_data, cfg->client_key_data_len,
						CURL_BLOB_COPY };
			curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
		} else {
			curl_easy_setopt(h, CURLOPT_SSLKEY, cfg->client_key_file);
		}
	}
	if (cfg->proxy_url)
		curl_easy_setopt(h, CURLOPT_PROXY, cfg->proxy_url);
	if (c->connect_to) {
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->connect_to);
		hd = curl_slist_append(hd, c->host_header);
	}
	if (cred.token) {
		char *a = str_printf("Authorization: Bearer %s", cred.token);
		struct curl_slist *n = a ? curl_slist_append(hd, a) : NULL;
		if (a) {
			explicit_bzero(a, strlen(a));
			free(a);
		}
		if (!n) {
			curl_slist_free_all(hd);
			kube_cred_clear(&cred);
			return err_set(ERR_NOMEM, "out of memory");
		}
		hd = n;
	} else if (cfg->username || cfg->password) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, cfg->username ? cfg->username : "");
		curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->password ? cfg->password : "");
	}
	if (gen_out)
		*gen_out = cred.generation;
	kube_cred_clear(&cred);
	*headers_out = hd;
	return 0;
}

int kube_client_curl_setup(kube_client *c, CURL *h, struct curl_slist **headers_out)
{
	int rc = kube_client_prepare(c, h, headers_out, NULL);
	/* An Upgrade (exec) needs HTTP/1.1: never let ALPN pick h2. */
	if (rc == 0)
		curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	return rc;
}

CURL *kube_client_handle_get(kube_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->pool_lock);
	if (c->npool > 0)
		h = c->pool[--c->npool];
	long busy = ++c->in_use;
	pthread_mutex_unlock(&c->pool_lock);
	if (!h) {
		h = curl_easy_init();
		if (!h) {
			pthread_mutex_lock(&c->pool_lock);
			c->in_use--;
			pthread_mutex_unlock(&c->pool_lock);
			err_set(ERR_NOMEM, "curl_easy_init failed");
			return NULL;
		}
	}
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	/* Over TLS libcurl copies each request into an upload buffer of
	 * CURLOPT_UPLOAD_BUFFERSIZE (64 KiB by default, lib/http.c
	 * Curl_buffer_send: OpenSSL wants the same address on a retried
	 * write) and keeps it with the handle: 64 KiB for every watch in
	 * flight, 47 MiB of serve's heap at 1,000 runs (bench part 4, a walk
	 * of the heap at the peak). Requests are a few KiB; a bigger body is
	 * sent in pieces of this size. 16 KiB is libcurl's minimum. Set
	 * here, on every handle given out, because curl_easy_reset keeps the
	 * buffer but not the option, and the option frees it (lib/setopt.c). */
	curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
	/* When a transfer ends, libcurl closes the oldest idle connection if
	 * the cache holds more than CURLOPT_MAXCONNECTS connections, busy ones
	 * included (lib/conncache.c Curl_conncache_return_conn counts
	 * Curl_conncache_size, every connection of the share). The default of
	 * 5, or any fixed number, is soon passed by the watches alone (one
	 * busy connection each, a thousand in `serve` at scale): from then on
	 * every request would close an idle connection and the next one open
	 * a new TLS connection. So allow what is busy now plus POOL_MAX idle. */
	curl_easy_setopt(h, CURLOPT_MAXCONNECTS, busy + POOL_MAX);
	return h;
}

void kube_client_handle_put(kube_client *c, CURL *h)
{
	if (!h)
		return;
	/* Reset drops options (and the share); connections stay in the share. */
	curl_easy_reset(h);
	pthread_mutex_lock(&c->pool_lock);
	c->in_use--;
	if (c->npool < POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

/* ---- accounting ------------------------------------------------------- */

void kube_client_count_request(kube_client *c, const char *verb, long code)
{
	pthread_mutex_lock(&c->stats_lock);
	size_t i;
	for (i = 0; i < c->nstats; i++)
		if (c->stats[i].code == code && !strcmp(c->stats[i].verb, verb))
			break;
	if (i == c->nstats && c->nstats < STATS_MAX) {
		str_copy(c->stats[i].verb, sizeof(c->stats[i].verb), verb);
		c->stats[i].code = code;
		c->stats[i].count = 0;
		c->nstats++;
	}
	if (i < c->nstats)
		c->stats[i].count++;
	pthread_mutex_unlock(&c->stats_lock);
}

void kube_client_note_connections(kube_client *c, long n)
{
	if (n <= 0)
		return;
	pthread_mutex_lock(&c->stats_lock);
	c->connections += (uint64_t)n;
	pthread_mutex_unlock(&c->stats_lock);
}

uint64_t kube_client_connections_opened(kube_client *c)
{
	pthread_mutex_lock(&c->stats_lock);
	uint64_t n = c->connections;
	pthread_mutex_unlock(&c->stats_lock);
	return n;
}

size_t kube_client_request_counts(kube_client *c, kube_request_count *out, size_t max)
{
	pthread_mutex_lock(&c->stats_lock);
	size_t n = c->nstats;
	for (size_t i = 0; i < n && i < max; i++)
		out[i] = c->stats[i];
	pthread_mutex_unlock(&c->stats_lock);
	return n;
}

int kube_client_metrics_write(kube_client *c, buf *out, const char *name, const char *conn_name)
{
	kube_request_count snap[STATS_MAX];
	size_t n = kube_client_request_counts(c, snap, STATS_MAX);
	int rc = buf_printf(out, "# HELP %s Requests to the Kubernetes API server by verb and "
			    "HTTP status (0: no response).\n# TYPE %s counter\n", name, name);

	for (size_t i = 0; i < n && rc == 0; i++)
		rc = buf_printf(out, "%s{verb=\"%s\",code=\"%ld\"} %llu\n", name, snap[i].verb,
				snap[i].code, (unsigned long long)snap[i].count);
	if (rc == 0 && conn_name)
		rc = buf_printf(out, "# HELP %s TCP connections opened to the API server for REST "
				"requests and watches (execs open one each besides).\n# TYPE %s counter\n"
				"%s %llu\n", conn_name, conn_name, conn_name,
				(unsigned long long)kube_client_connections_opened(c));
	return rc;
}

const char *kube_curl_error(CURL *h, CURLcode cc, const char *errbuf, char *out, size_t n)
{
	long os = 0;
	const char *msg = errbuf && errbuf[0] ? errbuf : curl_easy_strerror(cc);

	/* libcurl's message for a failed connect ("Failed to connect to ...:
	 * Couldn't connect to server") does not say why; the OS error does
	 * (refused, no free local port, too many open files...). */
	if (h && curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os) == CURLE_OK && os != 0 &&
	    !strstr(msg, strerror((int)os)))
		snprintf(out, n, "%s (%s)", msg, strerror((int)os));
	else
		snprintf(out, n, "%s", msg);
	return out;
}

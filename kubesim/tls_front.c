/*
 * tls_front: the TLS terminator in front of libmicrohttpd.
 *
 * Why not libmicrohttpd's own TLS: after a protocol upgrade (every
 * pods/exec) libmicrohttpd 0.9.75 forwards between TLS and the application
 * through buffers carved out of what is left of the connection's memory
 * pool, and by then the pool is used up: the forwarding falls back to its
 * 8-byte emergency buffer, 4 bytes per system call each way (seen with
 * strace: sendto(..., 4) in a loop), whatever MHD_OPTION_CONNECTION_
 * MEMORY_LIMIT says. Exec stdin crawled at ~0.3 MiB/s with one core busy.
 * So kubesim terminates TLS itself and libmicrohttpd serves plain HTTP on
 * socket pairs (MHD_add_connection); an upgraded connection is then just
 * the socket pair, and the bytes move here through 256 KiB buffers.
 *
 * Threads: one acceptor; one thread per connection, which does the
 * handshake (blocking, at most HANDSHAKE_MS), hands the plaintext end on with the
 * accept callback, then copies both ways with non-blocking I/O until the
 * plaintext side is closed (libmicrohttpd is done with the connection: a
 * close_notify follows) or the TCP side fails. A client's EOF is passed on
 * as a half-close of the plaintext side, as TCP would.
 *
 * f->mu guards f->conns (live connection threads) and f->threads. A
 * connection is referenced by its thread and, once claimed, by whoever
 * claimed it (server.c: for as long as libmicrohttpd's connection lives),
 * so the client certificate can be read after the thread has ended.
 */
#include "kubesim/tls_front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "util/err.h"
#include "util/log.h"

#define IO_BUF (256 * 1024)       /* per direction and connection */
#define TLS_RECORD (16 * 1024)    /* one TLS record's payload */
/* a handshake may take this long: clients under valgrind or on a loaded
 * machine took past 10 s and then met a reset on their first request */
#define HANDSHAKE_MS 60000

struct ks_tls_conn {
	int refs;           /* atomic */
	pthread_mutex_t mu; /* guards closing tcp and plain (drop races with it) */
	int tcp;            /* the client's socket */
	int plain;          /* our end of the socket pair */
	int handed_fd;      /* the end handed on (claim key) */
	int claimed;
	int drop;           /* atomic: reset instead of close_notify */
	int cert_state;     /* 1 verified, 0 none, -1 did not verify */
	ks_user cert_user;
	ks_tls_front *front;
	struct ks_tls_conn *next;
};

struct ks_tls_front {
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	int lfd;
	uint16_t port;
	pthread_t acceptor;
	int acceptor_started;
	ks_tls_accept_fn fn;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	ks_tls_conn *conns;
	size_t threads;
	int stopping;
};

void ks_tls_conn_unref(ks_tls_conn *c)
{
	if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		pthread_mutex_destroy(&c->mu);
		free(c);
	}
}

int ks_tls_conn_client_cert(const ks_tls_conn *c, ks_user *out)
{
	if (!c || c->cert_state <= 0)
		return c ? c->cert_state : 0;
	*out = c->cert_user;
	return 1;
}

void ks_tls_conn_drop(ks_tls_conn *c)
{
	if (!c)
		return;
	__atomic_store_n(&c->drop, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&c->mu);
	if (c->tcp >= 0)
		shutdown(c->tcp, SHUT_RDWR);
	pthread_mutex_unlock(&c->mu);
}

ks_tls_conn *ks_tls_front_claim(ks_tls_front *f, int plain_fd)
{
	ks_tls_conn *found = NULL;

	pthread_mutex_lock(&f->mu);
	/* newest first: an older entry with the same number is a connection
	 * whose socket libmicrohttpd has already closed */
	for (ks_tls_conn *c = f->conns; c; c = c->next)
		if (c->handed_fd == plain_fd && !c->claimed) {
			c->claimed = 1;
			__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
			found = c;
			break;
		}
	pthread_mutex_unlock(&f->mu);
	return found;
}

/* The verified client certificate's CN and O values (the identity the API
 * server takes from a client certificate: staging/src/k8s.io/apiserver/
 * pkg/authentication/request/x509/x509.go CommonNameUserConversion). */
static void read_client_cert(ks_tls_conn *c, gnutls_session_t s)
{
	unsigned int n = 0, status = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
	gnutls_x509_crt_t crt;

	c->cert_state = 0;
	if (!certs || n == 0)
		return;
	c->cert_state = -1;
	if (gnutls_certificate_verify_peers2(s, &status) != 0 || status != 0)
		return;
	if (gnutls_x509_crt_init(&crt) != 0)
		return;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0) {
		char cn[256];
		size_t len = sizeof cn;
		if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &len) == 0) {
			ks_user *u = &c->cert_user;
			memset(u, 0, sizeof *u);
			snprintf(u->name, sizeof u->name, "%s", cn);
			for (unsigned idx = 0; idx < KS_MAX_GROUPS; idx++) {
				char o[128];
				size_t ol = sizeof o;
				if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, idx, 0, o, &ol) != 0)
					break;
				ks_user_add_group(u, o);
			}
			ks_user_add_group(u, "system:authenticated");
			c->cert_state = 1;
		}
	}
	gnutls_x509_crt_deinit(crt);
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Copy both ways until the plaintext side is closed and drained (returns
 * 1: end with close_notify) or the TCP side fails (returns 0). */
static int pump(ks_tls_conn *c, gnutls_session_t s, char *up, char *down)
{
	size_t up_len = 0, up_off = 0, dn_len = 0, dn_off = 0;
	int tcp_eof = 0, plain_eof = 0, plain_shut = 0;

	for (;;) {
		int tcp_out = 0;
		/* TLS -> plaintext */
		while (!tcp_eof && up_len < IO_BUF) {
			ssize_t r = gnutls_record_recv(s, up + up_len, IO_BUF - up_len);
			if (r > 0) {
				up_len += (size_t)r;
				continue;
			}
			if (r == GNUTLS_E_INTERRUPTED)
				continue;
			if (r == GNUTLS_E_AGAIN)
				break;
			tcp_eof = 1; /* close_notify, a bare EOF or a failure: no more input */
		}
		while (up_off < up_len) {
			ssize_t w = send(c->plain, up + up_off, up_len - up_off, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0) {
				up_off += (size_t)w;
				continue;
			}
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			up_off = up_len; /* the server side is gone: drop the input */
		}
		if (up_off == up_len)
			up_off = up_len = 0;
		if (tcp_eof && up_len == 0 && !plain_shut) {
			shutdown(c->plain, SHUT_WR);
			plain_shut = 1;
		}
		/* plaintext -> TLS, one record at a time */
		for (;;) {
			if (dn_off == dn_len && !plain_eof) {
				dn_off = dn_len = 0;
				ssize_t r = recv(c->plain, down, IO_BUF, MSG_DONTWAIT);
				if (r > 0) {
					dn_len = (size_t)r;
				} else if (r < 0 && errno == EINTR) {
					continue;
				} else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
					break;
				} else {
					plain_eof = 1;
				}
			}
			if (dn_off == dn_len)
				break;
			size_t n = dn_len - dn_off < TLS_RECORD ? dn_len - dn_off : TLS_RECORD;
			/* after GNUTLS_E_AGAIN the same data is offered again */
			ssize_t w = gnutls_record_send(s, down + dn_off, n);
			if (w > 0) {
				dn_off += (size_t)w;
				continue;
			}
			if (w == GNUTLS_E_INTERRUPTED)
				continue;
			if (w == GNUTLS_E_AGAIN) {
				tcp_out = 1;
				break;
			}
			return 0;
		}
		if (__atomic_load_n(&c->drop, __ATOMIC_ACQUIRE))
			return 0;
		if (plain_eof && dn_off == dn_len)
			return 1;
		struct pollfd pf[2] = { { c->tcp, 0, 0 }, { c->plain, 0, 0 } };
		if (!tcp_eof && up_len < IO_BUF)
			pf[0].events |= POLLIN;
		if (tcp_out)
			pf[0].events |= POLLOUT;
		if (up_off < up_len)
			pf[1].events |= POLLOUT;
		if (!plain_eof && dn_off == dn_len)
			pf[1].events |= POLLIN;
		/* an fd with nothing to wait for would report HUP at once, forever */
		if (!pf[0].events)
			pf[0].fd = -1;
		if (!pf[1].events)
			pf[1].fd = -1;
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			return 0;
	}
}

static void conn_end(ks_tls_conn *c)
{
	ks_tls_front *f = c->front;

	pthread_mutex_lock(&f->mu);
	for (ks_tls_conn **pp = &f->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	f->threads--;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	ks_tls_conn_unref(c);
}

static void *conn_main(void *arg)
{
	ks_tls_conn *c = arg;
	ks_tls_front *f = c->front;
	gnutls_session_t s = NULL;
	char *up = NULL, *down = NULL;
	int sp[2] = { -1, -1 };
	int clean = 0, r;
	static const gnutls_datum_t h11 = { (unsigned char *)"http/1.1", 8 };

	if (gnutls_init(&s, GNUTLS_SERVER) != GNUTLS_E_SUCCESS) {
		s = NULL;
		goto done;
	}
	if (gnutls_priority_set(s, f->prio) != GNUTLS_E_SUCCESS ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, f->cred) != GNUTLS_E_SUCCESS)
		goto done;
	/* client certificates are asked for, not required (kube-apiserver's
	 * tls.VerifyClientCertIfGiven) */
	gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
	/* HTTP/1.1 only, as libmicrohttpd speaks it (clients offering h2 fall back) */
	gnutls_alpn_set_protocols(s, &h11, 1, 0);
	gnutls_transport_set_int(s, c->tcp);
	gnutls_handshake_set_timeout(s, HANDSHAKE_MS);
	do
		r = gnutls_handshake(s);
	while (r < 0 && !gnutls_error_is_fatal(r));
	if (r < 0) {
		log_msg(LOG_DEBUG, "kubesim: TLS handshake failed: %s", gnutls_strerror(r));
		goto done;
	}
	read_client_cert(c, s);
	up = malloc(IO_BUF);
	down = malloc(IO_BUF);
	if (!up || !down || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
		goto done;
	pthread_mutex_lock(&c->mu);
	c->plain = sp[0];
	pthread_mutex_unlock(&c->mu);
	set_nonblock(c->tcp);
	set_nonblock(c->plain);
	pthread_mutex_lock(&f->mu);
	c->handed_fd = sp[1];
	pthread_mutex_unlock(&f->mu);
	f->fn(f->arg, sp[1]); /* owns sp[1] now */
	clean = pump(c, s, up, down);
	if (clean)
		gnutls_bye(s, GNUTLS_SHUT_WR); /* non-blocking: best effort */
done:
	if (!clean || __atomic_load_n(&c->drop, __ATOMIC_ACQUIRE)) {
		struct linger lg = { 1, 0 };
		setsockopt(c->tcp, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	}
	if (s)
		gnutls_deinit(s);
	free(up);
	free(down);
	pthread_mutex_lock(&c->mu);
	close(c->tcp);
	c->tcp = -1;
	if (c->plain >= 0)
		close(c->plain);
	c->plain = -1;
	pthread_mutex_unlock(&c->mu);
	conn_end(c);
	return NULL;
}

static void *accept_main(void *arg)
{
	ks_tls_front *f = arg;

	for (;;) {
		int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		pthread_mutex_lock(&f->mu);
		int stopping = f->stopping;
		pthread_mutex_unlock(&f->mu);
		if (stopping) {
			if (fd >= 0)
				close(fd);
			break;
		}
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				usleep(10000);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		ks_tls_conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		c->refs = 1;
		pthread_mutex_init(&c->mu, NULL);
		c->tcp = fd;
		c->plain = -1;
		c->handed_fd = -1;
		c->front = f;
		pthread_mutex_lock(&f->mu);
		c->next = f->conns;
		f->conns = c;
		f->threads++;
		pthread_mutex_unlock(&f->mu);
		pthread_attr_t at;
		pthread_t t;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&at, 256 * 1024);
		if (pthread_create(&t, &at, conn_main, c) != 0) {
			close(fd);
			c->tcp = -1;
			conn_end(c);
		}
		pthread_attr_destroy(&at);
	}
	return NULL;
}

int ks_tls_front_new(ks_tls_front **out, const ks_certs *certs, const char *host, uint16_t port,
		     ks_tls_accept_fn fn, void *arg)
{
	ks_tls_front *f = calloc(1, sizeof *f);
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	int rc = 0, one = 1;

	*out = NULL;
	if (!f)
		return err_set(ERR_NOMEM, "out of memory");
	f->lfd = -1;
	f->fn = fn;
	f->arg = arg;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		rc = err_set(ERR_INVALID, "kubesim: --listen host %s is not an IPv4 address", host);
		goto done;
	}
	gnutls_datum_t crt = { (unsigned char *)certs->server_cert_pem, (unsigned)strlen(certs->server_cert_pem) };
	gnutls_datum_t key = { (unsigned char *)certs->server_key_pem, (unsigned)strlen(certs->server_key_pem) };
	gnutls_datum_t ca = { (unsigned char *)certs->ca_pem, (unsigned)strlen(certs->ca_pem) };
	if (gnutls_certificate_allocate_credentials(&f->cred) != GNUTLS_E_SUCCESS) {
		f->cred = NULL;
		rc = err_set(ERR_FAIL, "kubesim: GnuTLS credentials: out of memory");
		goto done;
	}
	if (gnutls_certificate_set_x509_key_mem(f->cred, &crt, &key, GNUTLS_X509_FMT_PEM) < 0 ||
	    gnutls_certificate_set_x509_trust_mem(f->cred, &ca, GNUTLS_X509_FMT_PEM) < 0) {
		rc = err_set(ERR_FAIL, "kubesim: GnuTLS refused the generated certificates");
		goto done;
	}
	if (gnutls_priority_init(&f->prio, "NORMAL", NULL) != GNUTLS_E_SUCCESS) {
		f->prio = NULL;
		rc = err_set(ERR_FAIL, "kubesim: GnuTLS priority NORMAL refused");
		goto done;
	}
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(f->lfd, 1024) != 0 ||
	    getsockname(f->lfd, (struct sockaddr *)&sa, &sl) != 0) {
		rc = err_set(ERR_FAIL, "kubesim: cannot listen on %s:%u: %s", host, (unsigned)port, strerror(errno));
		goto done;
	}
	f->port = ntohs(sa.sin_port);
	if (pthread_create(&f->acceptor, NULL, accept_main, f) != 0) {
		rc = err_set(ERR_FAIL, "kubesim: cannot start the acceptor thread");
		goto done;
	}
	f->acceptor_started = 1;
	*out = f;
	f = NULL;
done:
	ks_tls_front_free(f);
	return rc;
}

uint16_t ks_tls_front_port(const ks_tls_front *f) { return f->port; }

void ks_tls_front_free(ks_tls_front *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stopping = 1;
	pthread_mutex_unlock(&f->mu);
	if (f->acceptor_started) {
		shutdown(f->lfd, SHUT_RDWR); /* wakes accept() */
		pthread_join(f->acceptor, NULL);
	}
	if (f->lfd >= 0)
		close(f->lfd);
	pthread_mutex_lock(&f->mu);
	/* wake every connection thread wherever it waits (handshake, TLS,
	 * or the plaintext side after the client's EOF) */
	for (ks_tls_conn *c = f->conns; c; c = c->next) {
		__atomic_store_n(&c->drop, 1, __ATOMIC_RELEASE);
		pthread_mutex_lock(&c->mu);
		if (c->tcp >= 0)
			shutdown(c->tcp, SHUT_RDWR);
		if (c->plain >= 0)
			shutdown(c->plain, SHUT_RDWR);
		pthread_mutex_unlock(&c->mu);
	}
	while (f->threads)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
	if (f->prio)
		gnutls_priority_deinit(f->prio);
	if (f->cred)
		gnutls_certificate_free_credentials(f->cred);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

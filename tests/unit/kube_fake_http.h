/*
 * A tiny HTTP/1.1 server for the kube unit tests (a fake transport peer:
 * real sockets, scripted answers). Keep-alive is honoured so connection
 * reuse can be counted; answers come from a script in order, or from a
 * handler. Streaming answers are chunked, written piece by piece with
 * pauses, and may end by dropping the connection.
 *
 * Header-only, included by tests/unit/test_kube_*.c.
 */
#ifndef KUBE_FAKE_HTTP_H
#define KUBE_FAKE_HTTP_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAKE_MAX_CHUNKS 16
#define FAKE_MAX_SCRIPT 64
#define FAKE_MAX_CONNS 64
#define FAKE_MAX_LOG 128

typedef struct fake_resp {
	int status;                 /* 0: drop the connection without answering */
	const char *headers;        /* extra header lines, each ending "\r\n" */
	const char *body;           /* whole body (Content-Length) */
	const char *chunks[FAKE_MAX_CHUNKS]; /* or a chunked body, piece by piece */
	int chunk_delay_ms;         /* pause before each chunk */
	int drop_after_chunks;      /* 1: close without the final chunk */
	int delay_ms;               /* pause before answering */
	int close;                  /* close the connection after this answer */
} fake_resp;

typedef struct fake_req {
	char method[16];
	char path[2048];
	char auth[1024];
	char body[8192];
} fake_req;

typedef struct fake_http fake_http;
typedef fake_resp (*fake_handler)(fake_http *s, const fake_req *req);

struct fake_http {
	int lfd;
	int port;
	char url[64];
	pthread_t acceptor;
	pthread_mutex_t mu;  /* guards everything below */
	fake_resp script[FAKE_MAX_SCRIPT];
	int nscript, next;
	fake_resp dflt;
	fake_handler handler;
	void *ud;
	int connections;
	int requests;
	fake_req log[FAKE_MAX_LOG];
	pthread_t conns[FAKE_MAX_CONNS];
	int conn_fds[FAKE_MAX_CONNS];
	int nconns;
	volatile int stop;
};

static inline int fake_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static inline void fake_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

struct fake_conn_arg {
	fake_http *s;
	int fd;
};

static inline void *fake_conn_main(void *arg)
{
	struct fake_conn_arg *a = arg;
	fake_http *s = a->s;
	int fd = a->fd;
	char *in = malloc(65536);
	size_t have = 0;

	free(a);
	for (;;) {
		/* Read one request head (and its body). */
		char *end = NULL;
		while (!(end = memmem(in, have, "\r\n\r\n", 4))) {
			if (have >= 65535)
				goto out;
			ssize_t r = recv(fd, in + have, 65535 - have, 0);
			if (r <= 0)
				goto out;
			have += (size_t)r;
		}
		size_t head_len = (size_t)(end - in) + 4;
		in[head_len - 2] = '\0';
		fake_req req;
		memset(&req, 0, sizeof(req));
		sscanf(in, "%15s %2047s", req.method, req.path);
		size_t clen = 0;
		for (char *line = strstr(in, "\r\n"); line && line < in + head_len; line = strstr(line + 2, "\r\n")) {
			if (!strncasecmp(line + 2, "Content-Length:", 15))
				clen = (size_t)strtoul(line + 17, NULL, 10);
			if (!strncasecmp(line + 2, "Authorization:", 14)) {
				const char *v = line + 16;
				while (*v == ' ')
					v++;
				size_t l = strcspn(v, "\r");
				if (l >= sizeof(req.auth))
					l = sizeof(req.auth) - 1;
				memcpy(req.auth, v, l);
			}
		}
		while (have < head_len + clen) {
			if (head_len + clen > 65535)
				goto out;
			ssize_t r = recv(fd, in + have, 65535 - have, 0);
			if (r <= 0)
				goto out;
			have += (size_t)r;
		}
		size_t bl = clen < sizeof(req.body) - 1 ? clen : sizeof(req.body) - 1;
		memcpy(req.body, in + head_len, bl);
		memmove(in, in + head_len + clen, have - head_len - clen);
		have -= head_len + clen;

		fake_resp r;
		pthread_mutex_lock(&s->mu);
		if (s->requests < FAKE_MAX_LOG)
			s->log[s->requests] = req;
		s->requests++;
		fake_handler h = s->handler;
		if (!h)
			r = s->next < s->nscript ? s->script[s->next++] : s->dflt;
		pthread_mutex_unlock(&s->mu);
		if (h)
			r = h(s, &req);
		for (int waited = 0; waited < r.delay_ms && !s->stop; waited += 10)
			fake_sleep_ms(10);
		if (r.status == 0)
			goto out;
		char head[4096];
		int chunked = r.chunks[0] != NULL;
		const char *body = r.body ? r.body : "";
		int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n%s%s", r.status,
				 r.headers ? r.headers : "", r.close ? "Connection: close\r\n" : "");
		if (chunked)
			n += snprintf(head + n, sizeof(head) - (size_t)n, "Transfer-Encoding: chunked\r\n\r\n");
		else
			n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n\r\n",
				      strlen(body));
		if (fake_write_all(fd, head, (size_t)n) < 0)
			goto out;
		if (!chunked) {
			if (fake_write_all(fd, body, strlen(body)) < 0)
				goto out;
		} else {
			for (int i = 0; i < FAKE_MAX_CHUNKS && r.chunks[i]; i++) {
				if (r.chunk_delay_ms)
					fake_sleep_ms(r.chunk_delay_ms);
				if (s->stop)
					goto out;
				char sz[32];
				int l = snprintf(sz, sizeof(sz), "%zx\r\n", strlen(r.chunks[i]));
				if (fake_write_all(fd, sz, (size_t)l) < 0 ||
				    fake_write_all(fd, r.chunks[i], strlen(r.chunks[i])) < 0 ||
				    fake_write_all(fd, "\r\n", 2) < 0)
					goto out;
			}
			if (r.drop_after_chunks)
				goto out;
			if (fake_write_all(fd, "0\r\n\r\n", 5) < 0)
				goto out;
		}
		if (r.close)
			goto out;
	}
out:
	free(in);
	shutdown(fd, SHUT_RDWR);
	return NULL;
}

static inline void *fake_accept_main(void *arg)
{
	fake_http *s = arg;
	while (!s->stop) {
		struct pollfd pf = { s->lfd, POLLIN, 0 };
		if (poll(&pf, 1, 100) <= 0)
			continue;
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&s->mu);
		if (s->nconns >= FAKE_MAX_CONNS) {
			pthread_mutex_unlock(&s->mu);
			close(fd);
			continue;
		}
		struct fake_conn_arg *a = malloc(sizeof(*a));
		a->s = s;
		a->fd = fd;
		s->conn_fds[s->nconns] = fd;
		s->connections++;
		pthread_create(&s->conns[s->nconns], NULL, fake_conn_main, a);
		s->nconns++;
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

static inline fake_http *fake_http_start(void)
{
	fake_http *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);

	pthread_mutex_init(&s->mu, NULL);
	s->dflt.status = 200;
	s->dflt.body = "{}";
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa));
	listen(s->lfd, 64);
	getsockname(s->lfd, (struct sockaddr *)&sa, &sl);
	s->port = ntohs(sa.sin_port);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
	pthread_create(&s->acceptor, NULL, fake_accept_main, s);
	return s;
}

static inline void fake_http_push(fake_http *s, fake_resp r)
{
	pthread_mutex_lock(&s->mu);
	if (s->nscript < FAKE_MAX_SCRIPT)
		s->script[s->nscript++] = r;
	pthread_mutex_unlock(&s->mu);
}

static inline int fake_http_requests(fake_http *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->requests;
	pthread_mutex_unlock(&s->mu);
	return n;
}

static inline int fake_http_connections(fake_http *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->connections;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* A copy of the i-th request seen. */
static inline fake_req fake_http_req(fake_http *s, int i)
{
	pthread_mutex_lock(&s->mu);
	fake_req r = s->log[i < FAKE_MAX_LOG ? i : FAKE_MAX_LOG - 1];
	pthread_mutex_unlock(&s->mu);
	return r;
}

static inline void fake_http_stop(fake_http *s)
{
	if (!s)
		return;
	s->stop = 1;
	pthread_join(s->acceptor, NULL);
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->nconns; i++)
		shutdown(s->conn_fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < s->nconns; i++) {
		pthread_join(s->conns[i], NULL);
		close(s->conn_fds[i]);
	}
	close(s->lfd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

#endif

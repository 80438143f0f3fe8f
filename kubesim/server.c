/*
 * server: see server.h.
 *
 * Request life: libmicrohttpd calls on_request several times per request:
 * first with no body (we allocate the per-request state and refuse a
 * declared Content-Length above KS_MAX_BODY with 413 at once), then with
 * each body chunk (appended to a capped buf; past the cap the rest is
 * read and dropped and the answer is 413), then once with no data, when
 * ks_api_handle runs and sets r->resp, which is queued here with the
 * headers every answer carries.
 *
 * Exec: after the 101, libmicrohttpd gives us the connection's socket
 * (the plaintext end of tls_front.c's socket pair: with TLS inside
 * libmicrohttpd, 0.9.75 forwarded upgraded bytes 4 at a time, see
 * tls_front.c) and an upgrade handle that must be released
 * with MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE) once nobody uses
 * the socket. The kubelet's session takes ownership of the fd it is given
 * and closes it when the session ends, but nothing would tell us when. So
 * we interpose a second socket pair: the kubelet gets one end, and a relay
 * copies bytes between the other end and libmicrohttpd's socket. When the
 * kubelet closes its end, the relay sees EOF, forwards what is left, and
 * releases the upgrade handle (which closes libmicrohttpd's socket; the TLS
 * front then sends close_notify). When the client goes away first, the
 * relay shuts down the kubelet's side for writing (its stdin sees EOF),
 * closes it after the kubelet's end is closed, and releases the handle.
 * The relay never closes libmicrohttpd's socket itself.
 *
 * The relay runs in libmicrohttpd's own thread for the connection, inside
 * the upgrade callback, never in a thread of ours: libmicrohttpd 0.9.75
 * frees an upgraded connection once both `urh->was_closed` (set by
 * MHD_upgrade_action(CLOSE)) and `urh->clean_ready` (set by the
 * connection's thread after the callback) are true and it was resumed,
 * but MHD_upgrade_action sets was_closed before it takes the cleanup
 * mutex to write `connection->resuming`. From another thread, the daemon
 * could free the connection in that gap and the write landed in freed
 * memory (kubesim aborted with "malloc(): mismatching next->prev_size"
 * under 1,000 concurrent execs: one byte, 1, at the end of a freed
 * 456-byte chunk, sizeof(struct MHD_Connection); libmicrohttpd-0.9.75
 * src/microhttpd/response.c MHD_upgrade_action, daemon.c
 * resume_suspended_connections). From the connection's own thread it
 * cannot: the daemon joins that thread before it frees the connection
 * (daemon.c MHD_cleanup_connections).
 */
#include "kubesim/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/sha.h>

#include "kubesim/tls_front.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/ws.h"
#include "util/log.h"
#include "util/str.h"

struct ks_server {
	ks_sim *sim;
	struct MHD_Daemon *d;
	ks_tls_front *front;
	uint16_t port;
};

typedef struct conn_req {
	buf body;
	int too_big;
	int declared_too_big;
} conn_req;

const char *ks_req_header(ks_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *ks_req_query(ks_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int ks_req_bool(ks_req *r, const char *name)
{
	/* k/k staging/src/k8s.io/apimachinery/pkg/runtime/conversion.go:
	 * only "", absent, "0" and "false" are false... "" is true there for
	 * exec; for plain flags we treat empty as true too. */
	const char *v = ks_req_query(r, name);
	if (!v)
		return 0;
	if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0)
		return 0;
	return 1;
}

static void set_resp(ks_req *r, int code, struct MHD_Response *resp)
{
	if (r->resp)
		MHD_destroy_response(r->resp);
	r->resp = resp;
	r->code = code;
}

void ks_reply(ks_req *r, int code, const char *ctype, const char *body, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return;
	MHD_add_response_header(resp, "Content-Type", ctype);
	set_resp(r, code, resp);
}

void ks_reply_json(ks_req *r, int code, const cJSON *obj)
{
	char *s = cJSON_PrintUnformatted(obj);
	if (!s) {
		ks_reply(r, 500, "text/plain", "out of memory\n", 14);
		return;
	}
	size_t n = strlen(s);
	struct MHD_Response *resp = MHD_create_response_from_buffer(n, s, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(s);
		return;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	set_resp(r, code, resp);
}

cJSON *ks_status_new(int code, const char *reason, const char *msg, cJSON *details)
{
	cJSON *st = cJSON_CreateObject();
	cJSON_AddStringToObject(st, "kind", "Status");
	cJSON_AddStringToObject(st, "apiVersion", "v1");
	cJSON_AddObjectToObject(st, "metadata");
	cJSON_AddStringToObject(st, "status", code < 300 ? "Success" : "Failure");
	if (msg)
		cJSON_AddStringToObject(st, "message", msg);
	if (reason && reason[0])
		cJSON_AddStringToObject(st, "reason", reason);
	if (details)
		cJSON_AddItemToObject(st, "details", details);
	cJSON_AddNumberToObject(st, "code", code);
	return st;
}

void ks_reply_status(ks_req *r, int code, const char *reason, const char *msg, cJSON *details)
{
	cJSON *st = ks_status_new(code, reason, msg, details);
	ks_reply_json(r, code, st);
	cJSON_Delete(st);
}

void ks_reply_mhd(ks_req *r, int code, struct MHD_Response *resp) { set_resp(r, code, resp); }

static void audit_id(char out[37])
{
	ks_uid_new(out);
}

static enum MHD_Result queue(struct MHD_Connection *c, ks_req *r)
{
	if (!r->resp) {
		ks_reply_status(r, 500, "InternalError", "Internal error occurred: no response", NULL);
		if (!r->resp)
			return MHD_NO;
	}
	if (r->code != 101) {
		char id[37];
		audit_id(id);
		MHD_add_response_header(r->resp, "Audit-Id", id);
		MHD_add_response_header(r->resp, "Cache-Control", "no-cache, private");
		MHD_add_response_header(r->resp, "X-Kubernetes-Pf-Flowschema-Uid", id);
		MHD_add_response_header(r->resp, "X-Kubernetes-Pf-Prioritylevel-Uid", id);
	}
	if (r->warning[0]) {
		char w[600];
		snprintf(w, sizeof w, "299 - \"%s\"", r->warning);
		MHD_add_response_header(r->resp, "Warning", w);
	}
	if (r->retry_after > 0) {
		char ra[16];
		snprintf(ra, sizeof ra, "%d", r->retry_after);
		MHD_add_response_header(r->resp, "Retry-After", ra);
	}
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->code, r->resp);
	MHD_destroy_response(r->resp);
	r->resp = NULL;
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	(void)version;
	ks_server *srv = cls;
	conn_req *cr = *con_cls;
	if (!cr) {
		cr = calloc(1, sizeof *cr);
		if (!cr)
			return MHD_NO;
		buf_init(&cr->body, KS_MAX_BODY);
		*con_cls = cr;
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if (cl) {
			char *end;
			unsigned long long n = strtoull(cl, &end, 10);
			if (*end == 0 && n > KS_MAX_BODY)
				cr->declared_too_big = 1;
		}
		if (!cr->declared_too_big)
			return MHD_YES;
	}
	if (*upload_size) {
		if (!cr->too_big && buf_append(&cr->body, upload_data, *upload_size))
			cr->too_big = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	ks_req r;
	memset(&r, 0, sizeof r);
	r.sim = srv->sim;
	r.conn = c;
	r.method = method;
	r.url = url;
	r.res = -1;
	r.body = cr->body.data ? cr->body.data : "";
	r.body_len = cr->body.len;
	if (cr->too_big || cr->declared_too_big) {
		char msg[128];
		/* k/k staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go limitedReadBody */
		snprintf(msg, sizeof msg, "Request entity too large: limit is %u", KS_MAX_BODY);
		ks_api_parse_path(&r);
		ks_reply_status(&r, 413, "RequestEntityTooLarge", msg, NULL);
		ks_metrics_count(srv->sim->metrics, method, r.group, r.version, r.plural, r.sub,
				 r.ns[0] ? "namespace" : "cluster", 413);
	} else {
		ks_api_handle(&r);
	}
	return queue(c, &r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	conn_req *cr = *con_cls;
	if (!cr)
		return;
	buf_free(&cr->body);
	free(cr);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (!log_enabled(LOG_DEBUG))
		return;
	char m[512];
	vsnprintf(m, sizeof m, fmt, ap);
	log_msg(LOG_DEBUG, "libmicrohttpd: %s", m);
}

/* The TLS front's accept callback: libmicrohttpd serves the plaintext end
 * on a thread of its own. */
static void on_plain_conn(void *arg, int fd)
{
	ks_server *srv = arg;
	struct sockaddr_un su;

	memset(&su, 0, sizeof su);
	su.sun_family = AF_UNIX; /* not TCP: libmicrohttpd sets no TCP options on it */
	if (MHD_add_connection(srv->d, fd, (const struct sockaddr *)&su, sizeof(sa_family_t)) != MHD_YES)
		log_msg(LOG_WARN, "kubesim: libmicrohttpd refused a connection");
}

/* Tie libmicrohttpd's connection to the TLS front's (client certificate,
 * dropping the connection) for the connection's whole life. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	ks_server *srv = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci ? ks_tls_front_claim(srv->front, ci->connect_fd) : NULL;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		ks_tls_conn_unref(*socket_context);
		*socket_context = NULL;
	}
}

static ks_tls_conn *req_tls(ks_req *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

int ks_req_client_cert(ks_req *r, ks_user *out) { return ks_tls_conn_client_cert(req_tls(r), out); }

void ks_req_drop(ks_req *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	ks_tls_conn_drop(req_tls(r));
	if (ci)
		shutdown(ci->connect_fd, SHUT_RDWR);
}

int ks_server_new(ks_server **out, ks_sim *sim, const char *host, uint16_t port)
{
	ks_server *srv = calloc(1, sizeof *srv);
	if (!srv)
		return err_set(ERR_NOMEM, "out of memory");
	srv->sim = sim;
	/* plain HTTP on the TLS front's socket pairs (tls_front.c says why) */
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_NO_LISTEN_SOCKET |
			 MHD_USE_ITC | MHD_ALLOW_UPGRADE | MHD_USE_POLL | MHD_USE_ERROR_LOG;
	srv->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
				  MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0,
				  MHD_OPTION_THREAD_STACK_SIZE, (size_t)(512 * 1024),
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				  MHD_OPTION_END);
	if (!srv->d) {
		free(srv);
		return err_set(ERR_FAIL, "kubesim: libmicrohttpd failed to start");
	}
	int rc = ks_tls_front_new(&srv->front, &sim->certs, host, port, on_plain_conn, srv);
	if (rc) {
		MHD_stop_daemon(srv->d);
		free(srv);
		return rc;
	}
	srv->port = ks_tls_front_port(srv->front);
	*out = srv;
	return 0;
}

uint16_t ks_server_port(const ks_server *srv) { return srv->port; }

void ks_server_free(ks_server *srv)
{
	if (!srv)
		return;
	/* the front first: its connections end, so libmicrohttpd's see EOF */
	ks_tls_front_free(srv->front);
	if (srv->d)
		MHD_stop_daemon(srv->d);
	free(srv);
}

/* ---- exec upgrade ---- */

typedef struct exec_up {
	ks_sim *sim;
	ks_exec_params *p;
} exec_up;

typedef struct relay {
	int mhd_fd;     /* libmicrohttpd's socket: never closed here */
	int kub_fd;     /* our end of the pair whose other end the kubelet has */
	struct MHD_UpgradeResponseHandle *urh;
} relay;

#define RELAY_BUF (256 * 1024)

/* One direction of the relay: bytes read from `from` wait in buf until
 * written to `to`. */
typedef struct pump {
	int from, to;
	char *buf;
	size_t len, off;
	int eof;      /* `from` reached EOF or failed */
	int shut;     /* `to` was shut down for writing after eof and drain */
	int dead;     /* `to` failed: drop what comes */
} pump;

static void pump_read(pump *p)
{
	if (p->eof || p->len == RELAY_BUF)
		return;
	if (p->off == p->len)
		p->off = p->len = 0;
	ssize_t got = recv(p->from, p->buf + p->len, RELAY_BUF - p->len, MSG_DONTWAIT);
	if (got > 0) {
		if (p->dead)
			p->len = p->off = 0;
		else
			p->len += (size_t)got;
	} else if (got == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
		p->eof = 1;
	}
}

static void pump_write(pump *p)
{
	if (p->dead || p->off == p->len)
		return;
	ssize_t w = send(p->to, p->buf + p->off, p->len - p->off, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w > 0) {
		p->off += (size_t)w;
		if (p->off == p->len)
			p->off = p->len = 0;
	} else if (w < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
		p->dead = 1;
		p->off = p->len = 0;
	}
}

static void *relay_main(void *arg)
{
	relay *rl = arg;
	/* up: client (libmicrohttpd's socket) -> kubelet; down: kubelet -> client */
	pump up = {rl->mhd_fd, rl->kub_fd, malloc(RELAY_BUF), 0, 0, 0, 0, 0};
	pump down = {rl->kub_fd, rl->mhd_fd, malloc(RELAY_BUF), 0, 0, 0, 0, 0};
	if (!up.buf || !down.buf)
		goto done;
	for (;;) {
		/* the session is over when the kubelet closed its end and all of
		 * its output reached the client (or the client is gone) */
		if (down.eof && (down.len == down.off || down.dead))
			break;
		struct pollfd pf[2] = {{rl->mhd_fd, 0, 0}, {rl->kub_fd, 0, 0}};
		if (!up.eof && up.len < RELAY_BUF)
			pf[0].events |= POLLIN;
		if (down.len > down.off && !down.dead)
			pf[0].events |= POLLOUT;
		if (!down.eof && down.len < RELAY_BUF)
			pf[1].events |= POLLIN;
		if (up.len > up.off && !up.dead)
			pf[1].events |= POLLOUT;
		/* a hung-up fd with nothing to wait for would wake poll at once, forever */
		if (!pf[0].events)
			pf[0].fd = -1;
		if (!pf[1].events)
			pf[1].fd = -1;
		if (poll(pf, 2, 1000) < 0 && errno != EINTR)
			break;
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR))
			pump_read(&up);
		if (pf[1].revents & (POLLIN | POLLHUP | POLLERR))
			pump_read(&down);
		if (pf[1].revents & (POLLOUT | POLLERR))
			pump_write(&up);
		if (pf[0].revents & (POLLOUT | POLLERR))
			pump_write(&down);
		/* the client's EOF reaches the kubelet as EOF once stdin drained */
		if (up.eof && up.len == up.off && !up.shut) {
			shutdown(rl->kub_fd, SHUT_WR);
			up.shut = 1;
		}
		/* nobody to deliver to: let the kubelet see it (EPIPE) and end */
		if (down.dead && !up.shut) {
			shutdown(rl->kub_fd, SHUT_WR);
			up.shut = 1;
		}
	}
done:
	free(up.buf);
	free(down.buf);
	close(rl->kub_fd);
	MHD_upgrade_action(rl->urh, MHD_UPGRADE_ACTION_CLOSE);
	free(rl);
	return NULL;
}

/* In libmicrohttpd's thread for the connection (see the top of this file
 * for why the relay must run here): start the kubelet's session, then
 * relay until it ends. */
static void on_upgrade(void *cls, struct MHD_Connection *c, void *con_cls, const char *extra_in,
		       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	(void)c;
	(void)con_cls;
	exec_up *up = cls;
	int sp[2] = {-1, -1};
	relay *rl = NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
		goto fail;
	rl = calloc(1, sizeof *rl);
	if (!rl)
		goto fail;
	rl->mhd_fd = sock;
	rl->kub_fd = sp[0];
	rl->urh = urh;
	/* the kubelet owns sp[1] and p (it closes/frees them even when it
	 * fails: the relay then sees EOF at once); the relay owns sp[0] and
	 * the handle */
	if (ks_kubelet_exec_serve(up->sim->kubelet, up->p, sp[1], extra_in, extra_in_size) != 0)
		log_msg(LOG_WARN, "kubesim: exec session failed to start: %s", err_msg());
	free(up);
	relay_main(rl);
	return;
fail:
	if (sp[0] >= 0)
		close(sp[0]);
	if (sp[1] >= 0)
		close(sp[1]);
	free(rl);
	ks_exec_params_free(up->p);
	free(up);
	MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static void free_exec_up(void *cls)
{
	(void)cls;
}

void ks_server_exec_upgrade(ks_req *r, const char *proto, ks_exec_params *p)
{
	const char *key = ks_req_header(r, "Sec-WebSocket-Key");
	char accept[29];
	/* RFC 6455 4.2.2: base64(SHA-1(key + GUID)); a malformed key is a 400 */
	if (ws_accept_key(accept, key)) {
		ks_exec_params_free(p);
		ks_reply_status(r, 400, "BadRequest", err_msg(), NULL);
		return;
	}
	log_msg(LOG_DEBUG, "kubesim: exec upgrade key=%s accept=%s proto=%s", key ? key : "(none)", accept, proto);
	exec_up *up = calloc(1, sizeof *up);
	if (!up) {
		ks_exec_params_free(p);
		ks_reply_status(r, 500, "InternalError", "out of memory", NULL);
		return;
	}
	up->sim = r->sim;
	up->p = p;
	struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgrade, up);
	if (!resp) {
		ks_exec_params_free(p);
		free(up);
		ks_reply_status(r, 500, "InternalError", "upgrade failed", NULL);
		return;
	}
	(void)free_exec_up;
	MHD_add_response_header(resp, "Upgrade", "websocket");
	MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept);
	MHD_add_response_header(resp, "Sec-WebSocket-Protocol", proto);
	ks_reply_mhd(r, 101, resp);
}

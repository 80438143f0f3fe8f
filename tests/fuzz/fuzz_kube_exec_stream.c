/*
 * Fuzz the whole exec protocol engine (kube_exec_run_conn) with the
 * server's bytes taken from the input, over an in-memory transport:
 * WebSocket frames, channels, fragmented and control frames, statuses,
 * and (when the first byte says so) the HTTP answer itself. Invariant:
 * success only with an exit code 0..255, never otherwise.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#include "kube/exec.h"
#include "kube/exec_conn.h"
#include "util/err.h"
#include "util/ws.h"

typedef struct fconn {
	const uint8_t *data;
	size_t size, off;
	char head[512];          /* the 101 we answer with, once the key is known */
	size_t head_len, head_off;
	char req[8192];
	size_t req_len;
	int raw;                 /* the input is the whole answer */
	uint8_t step;            /* read sizes come from the input */
} fconn;

static int f_send(void *ctx, const void *p, size_t n, size_t *sent)
{
	fconn *f = ctx;

	if (!f->head_len && !f->raw) {
		size_t k = n < sizeof(f->req) - 1 - f->req_len ? n : sizeof(f->req) - 1 - f->req_len;
		memcpy(f->req + f->req_len, p, k);
		f->req_len += k;
		f->req[f->req_len] = '\0';
		const char *key = strstr(f->req, "Sec-WebSocket-Key: ");
		if (key && strstr(key, "\r\n")) {
			char kbuf[64] = "", acc[29];
			sscanf(key + 19, "%63[^\r]", kbuf);
			ws_accept_key(acc, kbuf);
			f->head_len = (size_t)snprintf(f->head, sizeof(f->head),
						       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
						       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
						       "Sec-WebSocket-Protocol: %s\r\n\r\n",
						       acc, f->step & 2 ? "v4.channel.k8s.io" : "v5.channel.k8s.io");
		}
	}
	*sent = n;
	return 0;
}

static int f_recv(void *ctx, void *p, size_t n, size_t *got)
{
	fconn *f = ctx;

	if (f->head_off < f->head_len) {
		size_t k = f->head_len - f->head_off;
		if (k > n)
			k = n;
		memcpy(p, f->head + f->head_off, k);
		f->head_off += k;
		*got = k;
		return 0;
	}
	size_t k = f->size - f->off;
	size_t lim = (size_t)(f->off < f->size ? f->data[f->off] % 61 : 1) + 1;
	if (k > lim)
		k = lim;
	if (k > n)
		k = n;
	memcpy(p, f->data + f->off, k);
	f->off += k;
	*got = k;
	return 0;
}

static int on_data(void *arg, const void *p, size_t n)
{
	(void)arg, (void)p, (void)n;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int efd = -1;
	static const char *const argv[] = { "sh", NULL };
	kube_exec_opts o = KUBE_EXEC_OPTS_INIT;
	kube_exec_result r;
	kube_exec_request rq = { "h:1", "/api/v1/namespaces/n/pods/p/exec?command=sh", NULL };
	fconn f;
	int rc;

	if (size < 1)
		return 0;
	if (efd < 0) {
		/* always readable and writable: the transport never blocks */
		efd = eventfd(1, EFD_CLOEXEC);
	}
	memset(&f, 0, sizeof(f));
	f.step = data[0];
	f.raw = data[0] & 1;
	f.data = data + 1;
	f.size = size - 1;
	kube_exec_conn c = { &f, efd, f_send, f_recv };
	o.pod = "p";
	o.argv = argv;
	o.on_stdout = on_data;
	o.on_stderr = on_data;
	if (data[0] & 4) {
		o.stdin_data = "input";
		o.stdin_len = 5;
	}
	o.ping_ms = -1;
	o.max_message = 1 << 16;
	rc = kube_exec_run_conn(&r, &c, &rq, &o);
	if (rc == 0 && (r.exit_code < 0 || r.exit_code > 255))
		abort();
	if (rc != 0 && r.exit_code != -1)
		abort();
	return 0;
}

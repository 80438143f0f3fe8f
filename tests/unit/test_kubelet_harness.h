/*
 * Shared by tests/unit/test_kubelet_*.c: a real kubelet in a temporary
 * data directory, callbacks recorded, pods built from JSON, and a
 * WebSocket exec client over a socketpair speaking util/ws frames.
 * Needs root (mount and PID namespaces); otherwise each test skips.
 */
#ifndef TEST_KUBELET_HARNESS_H
#define TEST_KUBELET_HARNESS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kubesim/kubelet.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/str.h"
#include "util/ws.h"

typedef struct h_ctr {
	char name[64];
	int state, exit_code, signal, restart_count, ready;
	char reason[128];
	char message[1024];
} h_ctr;

typedef struct h_pod {
	char uid[64];
	char phase[32];
	char reason[64];
	h_ctr ctrs[4];
	int n_ctrs;
	int reports;
} h_pod;

static __attribute__((unused)) struct {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	h_pod pods[64];
	int n_pods;
	buf events; /* "uid|type|reason|message|fieldpath\n" */
	char dir[256];
	ks_kubelet *k;
} H;

static __attribute__((unused)) h_pod *h_find(const char *uid)
{
	for (int i = 0; i < H.n_pods; i++)
		if (strcmp(H.pods[i].uid, uid) == 0)
			return &H.pods[i];
	return NULL;
}

static __attribute__((unused)) void h_status_cb(void *arg, const ks_pod_status *st)
{
	(void)arg;
	pthread_mutex_lock(&H.mu);
	h_pod *p = h_find(st->uid);
	if (!p && H.n_pods < 64) {
		p = &H.pods[H.n_pods++];
		snprintf(p->uid, sizeof p->uid, "%s", st->uid);
	}
	if (p) {
		snprintf(p->phase, sizeof p->phase, "%s", st->phase);
		snprintf(p->reason, sizeof p->reason, "%s", st->reason ? st->reason : "");
		p->n_ctrs = (int)(st->n_containers < 4 ? st->n_containers : 4);
		for (int i = 0; i < p->n_ctrs; i++) {
			const ks_container_status *c = &st->containers[i];
			h_ctr *h = &p->ctrs[i];
			snprintf(h->name, sizeof h->name, "%s", c->name);
			h->state = c->state;
			h->exit_code = c->exit_code;
			h->signal = c->signal;
			h->ready = c->ready;
			h->restart_count = c->restart_count;
			snprintf(h->reason, sizeof h->reason, "%s", c->reason ? c->reason : "");
			snprintf(h->message, sizeof h->message, "%s", c->message ? c->message : "");
		}
		p->reports++;
	}
	pthread_cond_broadcast(&H.cond);
	pthread_mutex_unlock(&H.mu);
}

static __attribute__((unused)) void h_event_cb(void *arg, const char *ns, const char *pod, const char *uid, const char *type,
		       const char *reason, const char *message, const char *field_path)
{
	(void)arg;
	(void)ns;
	(void)pod;
	pthread_mutex_lock(&H.mu);
	buf_printf(&H.events, "%s|%s|%s|%s|%s\n", uid, type, reason, message, field_path ? field_path : "");
	pthread_cond_broadcast(&H.cond);
	pthread_mutex_unlock(&H.mu);
}

static __attribute__((unused)) int h_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Children of this process still alive (zombies included). */
static __attribute__((unused)) int h_children(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;
	char want[32];

	snprintf(want, sizeof want, "PPid:\t%d\n", (int)getpid());
	while (d && (e = readdir(d))) {
		char path[300], b[4096];
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t r = fread(b, 1, sizeof b - 1, f);
		fclose(f);
		b[r] = '\0';
		if (strstr(b, want))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

static __attribute__((unused)) void h_setup_opts(const char *fail_glob)
{
	ks_kubelet_opts o = KS_KUBELET_OPTS_INIT;

	if (geteuid() != 0)
		cr_skip_test("kubelet tests need root (mount and PID namespaces); running as uid %d", (int)geteuid());
	pthread_mutex_init(&H.mu, NULL);
	pthread_cond_init(&H.cond, NULL);
	buf_init(&H.events, 1 << 24);
	H.n_pods = 0;
	snprintf(H.dir, sizeof H.dir, "/tmp/kubelet-test-XXXXXX");
	cr_assert_not_null(mkdtemp(H.dir));
	o.data_dir = H.dir;
	o.image_fail_glob = fail_glob;
	cr_assert_eq(ks_kubelet_new(&H.k, &o, h_status_cb, h_event_cb, NULL), 0, "%s", err_msg());
}

static __attribute__((unused)) void h_setup(void)
{
	h_setup_opts("registry.invalid/*");
}

static __attribute__((unused)) void h_teardown(void)
{
	if (!H.k)
		return;
	ks_kubelet_free(H.k);
	H.k = NULL;
	cr_expect_eq(h_children(), 0, "processes left behind after ks_kubelet_free");
	nftw(H.dir, h_rm, 16, FTW_DEPTH | FTW_PHYS);
	buf_free(&H.events);
}

/* Start a pod: spec is the JSON of .spec. */
static __attribute__((unused)) void h_start(const char *uid, const char *spec_json)
{
	char *j = str_printf("{\"metadata\":{\"name\":\"pod-%s\",\"namespace\":\"default\",\"uid\":\"%s\"},\"spec\":%s}",
			     uid, uid, spec_json);
	cJSON *o = cJSON_Parse(j);
	cr_assert_not_null(o, "bad test JSON: %s", j);
	cr_assert_eq(ks_kubelet_pod_start(H.k, o), 0, "%s", err_msg());
	cJSON_Delete(o);
	free(j);
}

/* One container "main" running argv through sh -c. */
static __attribute__((unused)) void h_start_sh(const char *uid, const char *script, const char *extra_ctr_fields)
{
	cJSON *s = cJSON_CreateString(script);
	char *q = cJSON_PrintUnformatted(s);
	char *spec = str_printf("{\"restartPolicy\":\"Never\",\"terminationGracePeriodSeconds\":2,"
				"\"volumes\":[{\"name\":\"ws\",\"emptyDir\":{}}],"
				"\"containers\":[{\"name\":\"main\",\"image\":\"busybox:1.36\","
				"\"command\":[\"sh\",\"-c\",%s],"
				"\"volumeMounts\":[{\"name\":\"ws\",\"mountPath\":\"/workspace\"}]%s%s}]}",
				q, extra_ctr_fields ? "," : "", extra_ctr_fields ? extra_ctr_fields : "");
	h_start(uid, spec);
	free(spec);
	free(q);
	cJSON_Delete(s);
}

/* Wait until the pod's phase is one of "A|B"; returns a copy of its record. */
static __attribute__((unused)) h_pod h_wait_phase(const char *uid, const char *phases, int timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	h_pod out;

	pthread_mutex_lock(&H.mu);
	for (;;) {
		h_pod *p = h_find(uid);
		if (p) {
			char want[128];
			snprintf(want, sizeof want, "|%s|", phases);
			char have[64];
			snprintf(have, sizeof have, "|%s|", p->phase);
			if (strstr(want, have))
				break;
		}
		if (clock_mono_ms() > deadline) {
			pthread_mutex_unlock(&H.mu);
			cr_assert_fail("pod %s never reached phase %s (now %s)", uid, phases, p ? p->phase : "unknown");
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&H.cond, &H.mu, &ts);
	}
	out = *h_find(uid);
	pthread_mutex_unlock(&H.mu);
	return out;
}

/* Wait for the first container's waiting/terminated reason. */
static __attribute__((unused)) h_pod h_wait_reason(const char *uid, const char *reason, int timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	h_pod out;

	pthread_mutex_lock(&H.mu);
	for (;;) {
		h_pod *p = h_find(uid);
		if (p && p->n_ctrs && strcmp(p->ctrs[0].reason, reason) == 0)
			break;
		if (clock_mono_ms() > deadline) {
			pthread_mutex_unlock(&H.mu);
			cr_assert_fail("pod %s container never had reason %s (now %s)", uid, reason,
				       p && p->n_ctrs ? p->ctrs[0].reason : "none");
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&H.cond, &H.mu, &ts);
	}
	out = *h_find(uid);
	pthread_mutex_unlock(&H.mu);
	return out;
}

/* Is there an event line containing all of the given pieces? */
static __attribute__((unused)) int h_has_event(const char *uid, const char *type, const char *reason, const char *msg_part)
{
	int found = 0;
	pthread_mutex_lock(&H.mu);
	const char *line = buf_cstr(&H.events);
	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		char *l = str_ndup(line, n);
		char *pre = str_printf("%s|%s|%s|", uid, type, reason);
		if (str_has_prefix(l, pre) && (!msg_part || strstr(l + strlen(pre), msg_part)))
			found = 1;
		free(pre);
		free(l);
		if (found || !nl)
			break;
		line = nl + 1;
	}
	pthread_mutex_unlock(&H.mu);
	return found;
}

/* ---- exec client ---- */

typedef struct h_exec {
	buf out, err, status;
	int close_code;       /* 0: the connection ended without a close frame */
	int got_initial;      /* the first message was empty */
	int initial_channel;
	int frames;
} h_exec;

typedef struct h_writer {
	int fd;
	const char *in;
	size_t in_len;
	int version;
	int close_stdin;      /* v5: send FF 00 after stdin */
	int delay_ms;
} h_writer;

static __attribute__((unused)) void h_send_msg(int fd, int channel, const void *p, size_t n)
{
	buf b = BUF_INIT(SIZE_MAX);
	uint8_t key[4];
	char *m = malloc(n + 1);

	m[0] = (char)channel;
	memcpy(m + 1, p, n);
	ws_mask_key(key);
	ws_frame_append(&b, 1, WS_OP_BINARY, m, n + 1, key);
	size_t off = 0;
	while (off < b.len) {
		ssize_t w = send(fd, b.data + off, b.len - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	free(m);
	buf_free(&b);
}

static __attribute__((unused)) void *h_writer_thread(void *arg)
{
	h_writer *w = arg;
	if (w->delay_ms)
		clock_sleep_ms(w->delay_ms);
	if (w->close_stdin == 2) {
		/* half the input, the v5 close message, the other half */
		h_send_msg(w->fd, 0, w->in, w->in_len / 2);
		h_send_msg(w->fd, 255, "\0", 1);
		h_send_msg(w->fd, 0, w->in + w->in_len / 2, w->in_len - w->in_len / 2);
		return NULL;
	}
	for (size_t off = 0; off < w->in_len; off += 32768) {
		size_t n = w->in_len - off < 32768 ? w->in_len - off : 32768;
		h_send_msg(w->fd, 0, w->in + off, n);
	}
	if (w->close_stdin)
		h_send_msg(w->fd, 255, "\0", 1);
	return NULL;
}

/* Run an exec session to its end. stdin may be NULL. */
static __attribute__((unused)) h_exec h_exec_run(const char *uid, const char *const *argv, int version, const char *in, size_t in_len,
			 int close_stdin, int64_t cut_after)
{
	int sv[2];
	h_exec r = { .out = BUF_INIT(SIZE_MAX), .err = BUF_INIT(SIZE_MAX), .status = BUF_INIT(1 << 20) };
	ks_exec_params *p = calloc(1, sizeof *p);
	size_t argc = 0;

	while (argv[argc])
		argc++;
	p->uid = str_dup(uid);
	p->argv = calloc(argc + 1, sizeof *p->argv);
	for (size_t i = 0; i < argc; i++)
		p->argv[i] = str_dup(argv[i]);
	p->want_stdin = in != NULL || close_stdin;
	p->want_stdout = p->want_stderr = 1;
	p->version = version;
	p->cut_after_bytes = cut_after;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(ks_kubelet_exec_check(H.k, uid, NULL), 0, "%s", err_msg());
	cr_assert_eq(ks_kubelet_exec_serve(H.k, p, sv[1], NULL, 0), 0, "%s", err_msg());

	h_writer w = { sv[0], in, in_len, version, close_stdin, 0 };
	pthread_t th;
	pthread_create(&th, NULL, h_writer_thread, &w);

	ws_decoder d;
	ws_decoder_init(&d, 0, 0);
	buf pend = BUF_INIT(SIZE_MAX);
	int channel = -1, first = 1;
	for (;;) {
		struct pollfd pf = { sv[0], POLLIN, 0 };
		if (poll(&pf, 1, 60000) <= 0)
			cr_assert_fail("exec: no data for 60 s");
		buf_reserve(&pend, 65536);
		ssize_t n = recv(sv[0], pend.data + pend.len, 65536, 0);
		if (n <= 0)
			break;
		pend.len += (size_t)n;
		size_t off = 0;
		int closed = 0;
		for (;;) {
			ws_event e;
			size_t used;
			cr_assert_eq(ws_decoder_next(&d, (uint8_t *)pend.data + off, pend.len - off, &used, &e), 0,
				     "server sent a bad frame: %s", err_msg());
			off += used;
			if (e.type == WS_EV_NONE) {
				if (!used)
					break;
				continue;
			}
			if (e.type == WS_EV_CLOSE) {
				r.close_code = e.close_code;
				closed = 1;
				break;
			}
			if (e.type != WS_EV_DATA)
				continue;
			const uint8_t *dp = e.data;
			size_t dn = e.len;
			if (e.msg_start) {
				channel = -1;
				r.frames++;
			}
			if (channel < 0 && dn) {
				channel = dp[0];
				dp++;
				dn--;
			}
			if (first && e.msg_end) {
				r.got_initial = e.len == 1;
				r.initial_channel = channel;
				first = 0;
				continue;
			}
			if (channel == 1)
				buf_append(&r.out, dp, dn);
			else if (channel == 2)
				buf_append(&r.err, dp, dn);
			else if (channel == 3)
				buf_append(&r.status, dp, dn);
		}
		buf_consume(&pend, off);
		if (closed) {
			/* answer the close, as a client does */
			buf c = BUF_INIT(256);
			uint8_t key[4] = { 1, 2, 3, 4 };
			ws_close_append(&c, 1000, "", key);
			ssize_t wr = send(sv[0], c.data, c.len, MSG_NOSIGNAL);
			(void)wr;
			buf_free(&c);
			break;
		}
	}
	pthread_join(th, NULL);
	close(sv[0]);
	buf_free(&pend);
	return r;
}

static __attribute__((unused)) void h_exec_free(h_exec *r)
{
	buf_free(&r->out);
	buf_free(&r->err);
	buf_free(&r->status);
}

/* The exit code the status reports (0 for Success, -1 if unparsable). */
static __attribute__((unused)) int h_exit_code(const h_exec *r)
{
	cJSON *j = cJSON_Parse(buf_cstr(&r->status));
	int code = -1;
	const cJSON *st = cJSON_GetObjectItem(j, "status");
	if (cJSON_IsString(st) && strcmp(st->valuestring, "Success") == 0)
		code = 0;
	const cJSON *causes = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "details"), "causes");
	const cJSON *c;
	cJSON_ArrayForEach(c, causes)
	{
		const cJSON *reason = cJSON_GetObjectItem(c, "reason");
		if (cJSON_IsString(reason) && strcmp(reason->valuestring, "ExitCode") == 0)
			code = atoi(cJSON_GetObjectItem(c, "message")->valuestring);
	}
	cJSON_Delete(j);
	return code;
}

#endif

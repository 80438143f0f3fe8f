/*
 * serve: `ci-fixer serve`, the HTTP API of docs/api.md on libmicrohttpd.
 *
 * Data flow: a POST is authenticated (bearer token file), decoded and
 * validated (runner/request.c, then sandbox's own rules), looked up by
 * idempotency key, recorded in the store (so it can never disappear) and put
 * on the queue; a worker takes it, runs sandbox_run(), and the sandbox's
 * callbacks append events (phase, command, output, commandDone) to the run's
 * event log, which the SSE readers follow; at the end the run document is
 * stored and the "result" event closes every stream.
 *
 * Threads:
 *  - libmicrohttpd: a pool of HTTP_THREADS threads on epoll shares every
 *    connection. A connection that has to wait (?wait=true until its run
 *    ends, an SSE stream with nothing new to send) is suspended
 *    (MHD_suspend_connection) and parked on its run, holding no thread; the
 *    run's next event resumes every connection parked on it, and the
 *    housekeeper resumes a quiet SSE stream for its keep-alive. (One thread
 *    per connection cost a 29 KiB stack per waiting client: 37 MiB with
 *    1,000 runs at once, bench part 4.)
 *  - N workers (--max-concurrent), each running one sandbox_run() at a time;
 *  - the housekeeper: the RBAC self-check until it passes (/readyz), the
 *    reaper (Jobs of this owner no live run owns), the store's retention and
 *    the SSE keep-alives;
 *  - the main thread waits for SIGTERM/SIGINT and drains.
 * One mutex, srv.lock, guards the run table, the queue, the event logs, the
 * parked connections, the tokens and the counters; srv.changed is broadcast
 * when a run finishes (the drain waits on it), srv.work on every change to
 * the queue (only workers wait on it, so pthread_cond_signal wakes a
 * worker), srv.hk when the housekeeper must stop.
 */
#include "runner/commands.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runner/bridge.h"
#include "runner/rbac_check.h"
#include "runner/request.h"
#include "runner/result.h"
#include "runner/sse.h"
#include "runner/store.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/str.h"

#define EVENT_LOG_CAP (16u << 20)    /* bytes of events kept per run for SSE replay */
#define DOC_CAP (256u << 20)         /* largest run document encoded */
#define FINISHED_IN_MEMORY 256       /* finished runs kept in memory (then the store) */
#define KEEPALIVE_MS 15000
#define HTTP_THREADS 8               /* libmicrohttpd's pool: handlers never wait */
#define MAX_TOKENS 64
/* Thread stacks. A worker runs a whole sandbox_run (libgit2, OpenSSL
 * through libcurl, cJSON, tar): 1 MiB, an eighth of the default, with
 * room to spare (its deepest frames are libgit2's and OpenSSL's, tens of
 * KiB). A thread of libmicrohttpd's pool decodes requests, writes them to
 * SQLite and streams events: 512 KiB. Both are address space; what a
 * thread touches is what counts in RSS. */
#define WORKER_STACK ((size_t)1 << 20)
#define CONNECTION_STACK ((size_t)512 << 10)
/* libmicrohttpd's memory pool per connection (request line, headers, the
 * read buffer and the chunked write buffer; MHD_OPTION_CONNECTION_MEMORY_LIMIT,
 * 32 KiB by default). Every client waiting on ?wait=true or an event
 * stream holds one: 32 MiB of the heap at 1,000 waiting clients (bench
 * part 4). Requests here are a few hundred bytes of headers and a JSON
 * body that on_request reads in pieces; sse_read writes an event across
 * calls when it does not fit. Headers beyond it get 431, as with any
 * libmicrohttpd server. */
#define CONNECTION_MEMORY ((size_t)16 << 10)

typedef struct event {
	unsigned long long seq;
	char *text;      /* a whole SSE record ("id: ..\nevent: ..\ndata: ..\n\n") */
	size_t len;
} event;

/* A suspended connection waiting for its run to change. It lives in the
 * connection's own state (conn or sse_reader); under srv.lock. */
typedef struct parked {
	struct MHD_Connection *c;
	struct run *run;           /* the run it is parked on, while on_list */
	struct parked *next;       /* the run's list */
	int64_t wake_at_ms;        /* resume then even if nothing changed (an SSE
				      keep-alive is due); 0: only on a change */
	int until_finished;        /* ?wait=true: only the run's end wakes it */
	int on_list;
} parked;

typedef struct run {
	struct run *next;          /* srv.runs list */
	struct run *qnext;         /* srv.queue */
	char id[32];
	char *idem_key;
	char *request_json;        /* canonical encoding, for idempotency comparison */
	runner_request *req;
	runner_run_doc *doc;       /* current document; under srv.lock */
	sandbox_cancel *cancel;
	int64_t accepted_mono;
	int started, finished;
	event *events;
	size_t nevents;
	size_t event_bytes;
	int events_dropped;        /* the log cap was hit: later output is not replayable */
	unsigned long long next_seq;
	int refs;                  /* readers holding it besides the table */
	parked *parked;            /* connections suspended until this run changes */
} run;

typedef struct hist {
	const double *bounds;
	size_t n;
	uint64_t counts[16];
	double sum;
	uint64_t total;
} hist;

static const double dur_bounds[] = { 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600 };
static const double start_bounds[] = { 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120 };

typedef struct http_count {
	char method[8];
	int code;
	uint64_t n;
} http_count;

static struct server {
	const runner_opts *o;
	sandbox_config cfg;
	runner_limits lim;
	kube_client *kc;
	runner_store *store;
	struct MHD_Daemon *mhd;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	pthread_cond_t work;       /* workers wait on it: the queue changed */
	pthread_cond_t hk;         /* the housekeeper waits on it (never on work: a
				      signal meant for a worker must reach one) */
	run *runs;
	run *queue_head, *queue_tail;
	size_t queued, active, finished_in_mem;
	int draining, stopping;
	int closing;               /* MHD is about to stop: no connection parks */
	size_t followers;          /* SSE streams and ?wait=true requests open */
	int ready;
	char ready_msg[512];
	/* tokens */
	char *tokens[MAX_TOKENS];
	size_t ntokens;
	struct timespec tok_mtime;
	ino_t tok_ino;
	off_t tok_size;
	/* metrics */
	uint64_t runs_by_phase[RUNNER_NPHASES];
	hist durations, start_latency;
	http_count http[64];
	size_t nhttp;
	uint64_t bytes_streamed;
	uint64_t jobs_reaped;
	int max_concurrent, queue_size;
	char reap_ns[64];
} srv;

/* ---- helpers ------------------------------------------------------------ */

static void hist_observe(hist *h, double v)
{
	for (size_t i = 0; i < h->n; i++)
		if (v <= h->bounds[i])
			h->counts[i]++;
	h->sum += v;
	h->total++;
}

static void count_http(const char *method, int code)
{
	pthread_mutex_lock(&srv.lock);
	for (size_t i = 0; i < srv.nhttp; i++) {
		if (srv.http[i].code == code && !strcmp(srv.http[i].method, method)) {
			srv.http[i].n++;
			pthread_mutex_unlock(&srv.lock);
			return;
		}
	}
	if (srv.nhttp < sizeof(srv.http) / sizeof(srv.http[0])) {
		snprintf(srv.http[srv.nhttp].method, sizeof(srv.http[0].method), "%s", method);
		srv.http[srv.nhttp].code = code;
		srv.http[srv.nhttp++].n = 1;
	}
	pthread_mutex_unlock(&srv.lock);
}

static enum MHD_Result respond(struct MHD_Connection *c, const char *method, int code, const char *ctype,
			       char *body, size_t len, const char *h1, const char *v1)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", ctype);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (h1)
		MHD_add_response_header(r, h1, v1);
	if (code == 401)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"ci-fixer\"");
	ret = MHD_queue_response(c, (unsigned)code, r);
	MHD_destroy_response(r);
	count_http(method, code);
	return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, const char *method, int code, buf *b, const char *h1,
				    const char *v1)
{
	size_t len;
	char *body;

	buf_append_byte(b, '\n');
	body = buf_take(b, &len);
	return respond(c, method, code, "application/json", body, len, h1, v1);
}

static enum MHD_Result respond_error(struct MHD_Connection *c, const char *method, int code, const char *reason,
				     const char *field, const char *msg, const char *h1, const char *v1)
{
	buf b = BUF_INIT(1 << 20);

	buf_printf(&b, "{\"error\":{\"code\":%d,\"reason\":", code);
	str_json_quote(&b, reason);
	if (field && *field) {
		buf_append_str(&b, ",\"field\":");
		str_json_quote(&b, field);
	}
	buf_append_str(&b, ",\"message\":");
	str_json_quote(&b, msg);
	buf_append_str(&b, "}}");
	return respond_json(c, method, code, &b, h1, v1);
}

/* ---- tokens --------------------------------------------------------------- */

/* Re-read the token file when it changed (atomic-rename updates of a
 * mounted Secret included: the inode changes). Under srv.lock. */
static void tokens_refresh_locked(void)
{
	struct stat st;
	FILE *f;
	char line[4096];

	if (stat(srv.o->token_file, &st) != 0)
		return; /* keep the last good set */
	if (st.st_ino == srv.tok_ino && st.st_size == srv.tok_size && st.st_mtim.tv_sec == srv.tok_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == srv.tok_mtime.tv_nsec)
		return;
	if (!(f = fopen(srv.o->token_file, "r")))
		return;
	for (size_t i = 0; i < srv.ntokens; i++)
		free(srv.tokens[i]);
	srv.ntokens = 0;
	while (fgets(line, sizeof(line), f) && srv.ntokens < MAX_TOKENS) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] && line[0] != '#')
			srv.tokens[srv.ntokens++] = str_dup(line);
	}
	fclose(f);
	srv.tok_ino = st.st_ino;
	srv.tok_size = st.st_size;
	srv.tok_mtime = st.st_mtim;
	log_kv(LOG_INFO, "token file read", "path", srv.o->token_file, NULL);
}

static int authorized(struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	int ok = 0;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	h += 7;
	pthread_mutex_lock(&srv.lock);
	tokens_refresh_locked();
	/* compare against every token, in time independent of the contents */
	for (size_t i = 0; i < srv.ntokens; i++)
		ok |= srv.tokens[i] && str_consttime_eq(h, strlen(h), srv.tokens[i], strlen(srv.tokens[i]));
	pthread_mutex_unlock(&srv.lock);
	return ok;
}

/* ---- runs and events ------------------------------------------------------ */

static run *find_run_locked(const char *id)
{
	for (run *r = srv.runs; r; r = r->next)
		if (!strcmp(r->id, id))
			return r;
	return NULL;
}

/* A zeroed run; NULL when out of memory. Free with run_free(). */
static run *run_alloc(void)
{
	return calloc(1, sizeof(run));
}

static void run_free(run *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nevents; i++)
		free(r->events[i].text);
	free(r->events);
	free(r->idem_key);
	free(r->request_json);
	runner_request_free(r->req);
	runner_run_doc_free(r->doc);
	sandbox_cancel_free(r->cancel);
	free(r);
}

/* Suspend the connection of p until r changes. Only from the handler or
 * the content reader of p's connection, with srv.lock held: whoever
 * changes r takes the lock too, so the change cannot slip in between the
 * check and the suspension. */
static void park_locked(run *r, parked *p)
{
	p->run = r;
	p->next = r->parked;
	p->on_list = 1;
	r->parked = p;
	MHD_suspend_connection(p->c);
}

enum wake {
	WAKE_EVENT,     /* a new event: the SSE streams */
	WAKE_KEEPALIVE, /* the streams whose keep-alive is due */
	WAKE_ALL,       /* the run finished, or serve stops */
};

/* Resume the connections parked on r that `why` concerns. Under srv.lock. */
static void wake_locked(run *r, enum wake why)
{
	int64_t now = why == WAKE_KEEPALIVE ? clock_mono_ms() : 0;

	for (parked **pp = &r->parked; *pp;) {
		parked *p = *pp;
		int go = why == WAKE_ALL || (why == WAKE_EVENT && !p->until_finished) ||
			 (why == WAKE_KEEPALIVE && p->wake_at_ms && p->wake_at_ms <= now);

		if (!go) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->next = NULL;
		p->on_list = 0;
		MHD_resume_connection(p->c);
	}
}

/* Take p off r's list if it is there (its connection is going). Under
 * srv.lock. */
static void unpark_locked(run *r, parked *p)
{
	for (parked **pp = &r->parked; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			p->on_list = 0;
			return;
		}
}

/* The keep-alives that are due, for every run. Under srv.lock. */
static void keepalive_sweep_locked(void)
{
	for (run *r = srv.runs; r; r = r->next)
		if (r->parked)
			wake_locked(r, WAKE_KEEPALIVE);
}

/* Append an event; output events past the log cap are dropped from the
 * replay log (live readers that keep up still get... nothing more: the log
 * is what they read). Under srv.lock. */
static void event_add_locked(run *r, const char *name, const char *data, size_t len, int droppable)
{
	buf b = BUF_INIT(DOC_CAP + 256);
	event *ev;

	if (droppable && r->event_bytes + len > EVENT_LOG_CAP) {
		r->events_dropped = 1;
		return;
	}
	if (runner_sse_format(&b, r->next_seq, name, data, len)) {
		buf_free(&b);
		return;
	}
	if (!(ev = realloc(r->events, (r->nevents + 1) * sizeof(*ev)))) {
		buf_free(&b);
		return;
	}
	r->events = ev;
	ev[r->nevents].seq = r->next_seq++;
	ev[r->nevents].text = buf_take(&b, &ev[r->nevents].len);
	r->event_bytes += ev[r->nevents].len;
	r->nevents++;
	/* only this run's readers: with --max-concurrent 1000, waking all
	 * woke 1,000 waiting clients for every event of every run */
	wake_locked(r, WAKE_EVENT);
}

static void phase_event_locked(run *r, const char *step, int64_t elapsed, const char *msg)
{
	buf b = BUF_INIT(1 << 20);

	buf_printf(&b, "{\"phase\":\"%s\",\"step\":", runner_phase_name(r->doc->phase));
	str_json_quote(&b, step);
	buf_printf(&b, ",\"elapsedMs\":%lld,\"message\":", (long long)elapsed);
	str_json_quote(&b, msg ? msg : "");
	buf_append_byte(&b, '}');
	event_add_locked(r, "phase", buf_cstr(&b), b.len, 0);
	buf_free(&b);
}

static void cb_phase(void *ctx, enum sandbox_phase phase, enum sandbox_step step, int64_t elapsed, const char *msg)
{
	run *r = ctx;

	pthread_mutex_lock(&srv.lock);
	if (!runner_phase_terminal(runner_phase_from_sandbox(phase)))
		r->doc->phase = runner_phase_from_sandbox(phase);
	phase_event_locked(r, sandbox_step_name(step), elapsed, msg);
	pthread_mutex_unlock(&srv.lock);
}

static void cb_command_start(void *ctx, size_t index, const sandbox_command *cmd)
{
	run *r = ctx;
	buf b = BUF_INIT(1 << 20);

	buf_printf(&b, "{\"index\":%zu,", index);
	if (cmd->shell) {
		buf_append_str(&b, "\"shell\":");
		str_json_quote(&b, cmd->shell);
	} else {
		buf_append_str(&b, "\"argv\":[");
		for (size_t i = 0; i < cmd->argc; i++) {
			if (i)
				buf_append_byte(&b, ',');
			str_json_quote(&b, cmd->argv[i]);
		}
		buf_append_byte(&b, ']');
	}
	buf_append_byte(&b, '}');
	pthread_mutex_lock(&srv.lock);
	event_add_locked(r, "command", buf_cstr(&b), b.len, 0);
	pthread_mutex_unlock(&srv.lock);
	buf_free(&b);
}

static void cb_output(void *ctx, size_t index, int stream, const char *data, size_t len)
{
	run *r = ctx;
	buf b = BUF_INIT((size_t)64 << 20);

	buf_printf(&b, "{\"index\":%zu,\"stream\":\"%s\",\"data\":\"", index, stream == 2 ? "stderr" : "stdout");
	str_base64_encode(&b, data, len);
	buf_append_str(&b, "\"}");
	pthread_mutex_lock(&srv.lock);
	srv.bytes_streamed += len;
	event_add_locked(r, "output", buf_cstr(&b), b.len, 1);
	pthread_mutex_unlock(&srv.lock);
	buf_free(&b);
}

static void cb_command_done(void *ctx, size_t index, const sandbox_command_result *res)
{
	run *r = ctx;
	buf b = BUF_INIT(1 << 20);

	buf_printf(&b, "{\"index\":%zu,\"outcome\":\"%s\",", index, sandbox_outcome_name(res->outcome));
	if (res->outcome == SANDBOX_OUTCOME_EXITED)
		buf_printf(&b, "\"exitCode\":%d,", res->exit_code);
	else
		buf_append_str(&b, "\"exitCode\":null,");
	buf_printf(&b, "\"durationMs\":%lld}", (long long)res->duration_ms);
	pthread_mutex_lock(&srv.lock);
	event_add_locked(r, "commandDone", buf_cstr(&b), b.len, 0);
	pthread_mutex_unlock(&srv.lock);
	buf_free(&b);
}

/* Store the document as it is now. Not under srv.lock (the store has its
 * own); the caller passes an encoded copy. */
static void store_doc(const run *r, const char *phase, int64_t created, int64_t finished, const char *doc)
{
	if (runner_store_put(srv.store, r->id, r->idem_key, created, phase, finished, r->request_json, doc))
		log_kv(LOG_ERROR, "run store write failed", "run", r->id, "error", err_msg(), NULL);
}

/* The run ended (any terminal phase): publish the result, store it. Under
 * srv.lock on entry and exit (released around the store write). */
static void finish_locked(run *r)
{
	buf doc = BUF_INIT(DOC_CAP);
	char phase[16];
	int64_t created = r->doc->created_ms, finished;

	if (!r->doc->finished_ms)
		r->doc->finished_ms = clock_wall_ms();
	finished = r->doc->finished_ms;
	r->finished = 1;
	/* nothing cancels a finished run (every use checks r->finished under
	 * the lock, and its worker is done with it): its pipe goes now, not
	 * when the run leaves memory (soak: 2 descriptors per finished run) */
	sandbox_cancel_free(r->cancel);
	r->cancel = NULL;
	srv.runs_by_phase[r->doc->phase]++;
	if (r->doc->started_ms)
		hist_observe(&srv.durations, (double)(r->doc->finished_ms - r->doc->started_ms) / 1000.0);
	if (r->doc->pod_ready_ms > 0)
		hist_observe(&srv.start_latency, (double)r->doc->pod_ready_ms / 1000.0);
	if (runner_run_doc_encode(&doc, r->doc, 1)) {
		/* too big with output: keep the record without it */
		buf_reset(&doc);
		runner_run_doc_encode(&doc, r->doc, 0);
	}
	event_add_locked(r, "result", buf_cstr(&doc), doc.len, 0);
	snprintf(phase, sizeof(phase), "%s", runner_phase_name(r->doc->phase));
	srv.finished_in_mem++;
	log_kv(LOG_INFO, "run finished", "run", r->id, "phase", phase, "reason", r->doc->reason ? r->doc->reason : "",
	       NULL);
	/* held while the lock is released, so that trim_locked() in another
	 * thread cannot free r under the store write */
	r->refs++;
	pthread_mutex_unlock(&srv.lock);
	store_doc(r, phase, created, finished, buf_cstr(&doc));
	pthread_mutex_lock(&srv.lock);
	r->refs--;
	buf_free(&doc);
	wake_locked(r, WAKE_ALL);
	pthread_cond_broadcast(&srv.changed);
}

/* Forget the oldest finished runs beyond FINISHED_IN_MEMORY that nobody
 * reads (they stay in the store). Under srv.lock. */
static void trim_locked(void)
{
	run **pp = &srv.runs;

	while (srv.finished_in_mem > FINISHED_IN_MEMORY && *pp) {
		run **last = NULL;

		for (run **q = &srv.runs; *q; q = &(*q)->next)
			if ((*q)->finished && !(*q)->refs)
				last = q; /* the list is newest first: the last is the oldest */
		if (!last)
			break;
		run *r = *last;
		*last = r->next;
		srv.finished_in_mem--;
		run_free(r);
	}
}

/* A new or recovered run joins the run table and the tail of the queue;
 * srv.lock is held. */
static void enqueue_locked(run *r)
{
	r->next = srv.runs;
	srv.runs = r;
	if (srv.queue_tail)
		srv.queue_tail->qnext = r;
	else
		srv.queue_head = r;
	srv.queue_tail = r;
	srv.queued++;
}

static void *worker(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&srv.lock);
	for (;;) {
		run *r;
		sandbox_request *sreq = NULL;
		sandbox_result *res = NULL;
		sandbox_callbacks cb;

		while (!srv.queue_head && !srv.stopping)
			pthread_cond_wait(&srv.work, &srv.lock);
		if (!srv.queue_head)
			break;
		r = srv.queue_head;
		srv.queue_head = r->qnext;
		if (!srv.queue_head)
			srv.queue_tail = NULL;
		srv.queued--;
		if (sandbox_cancel_requested(r->cancel)) {
			/* cancelled while queued: nothing was created */
			r->doc->phase = RUNNER_CANCELLED;
			runner_doc_set(&r->doc->reason, sandbox_cancel_reason(r->cancel));
			runner_doc_set(&r->doc->message, "the run was cancelled before it started; nothing was created");
			finish_locked(r);
			continue;
		}
		srv.active++;
		r->started = 1;
		r->doc->phase = RUNNER_PREPARING;
		r->doc->started_ms = clock_wall_ms();
		r->doc->queued_ms = clock_mono_ms() - r->accepted_mono;
		{
			/* recorded before any Job exists, so that a restart knows this
			 * run may have one and must not simply run it again */
			buf d = BUF_INIT(1 << 20);
			int64_t created = r->doc->created_ms;

			runner_run_doc_encode(&d, r->doc, 0);
			pthread_mutex_unlock(&srv.lock);
			store_doc(r, "Preparing", created, 0, buf_cstr(&d));
			buf_free(&d);
		}

		cb.ctx = r;
		cb.on_phase = cb_phase;
		cb.on_command_start = cb_command_start;
		cb.on_output = cb_output;
		cb.on_command_done = cb_command_done;
		log_kv(LOG_INFO, "run started", "run", r->id, NULL);
		if (runner_to_sandbox_request(&sreq, r->req) == 0)
			sandbox_run(&res, srv.kc, &srv.cfg, sreq, r->id, &cb, r->cancel);
		sandbox_request_free(sreq);

		pthread_mutex_lock(&srv.lock);
		if (res) {
			int64_t created = r->doc->created_ms, queued = r->doc->queued_ms, started = r->doc->started_ms;

			runner_doc_from_result(r->doc, res);
			r->doc->created_ms = created;
			r->doc->queued_ms = queued;
			if (!r->doc->started_ms)
				r->doc->started_ms = started;
		} else {
			r->doc->phase = RUNNER_ERROR;
			runner_doc_set(&r->doc->reason, "InternalError");
			runner_doc_set(&r->doc->message, "the run could not be started (out of memory)");
		}
		sandbox_result_free(res);
		srv.active--;
		finish_locked(r);
		trim_locked();
	}
	pthread_mutex_unlock(&srv.lock);
	return NULL;
}

/* ---- request handling ------------------------------------------------------ */

typedef struct conn {
	buf body;
	int too_big;
	char wait_id[64];          /* ?wait=true: the run it waits for, parked */
	parked park;
} conn;

static int64_t parse_last_event_id(struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
	int64_t v;

	if (!h || str_parse_i64(&v, h, 0, INT64_MAX))
		return -1;
	return v;
}

typedef struct sse_reader {
	run *r;
	parked park;               /* its connection, suspended while nothing is new */
	int64_t last_write_ms;
	unsigned long long next;   /* next seq to send */
	size_t pending_off;        /* bytes of the current event already sent */
	int done;
	char *static_doc;          /* a stored run: just the result event */
	size_t static_len, static_off;
} sse_reader;

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
	sse_reader *s = cls;
	ssize_t n = 0;

	(void)pos;
	if (s->static_doc) {
		size_t left = s->static_len - s->static_off;

		if (!left)
			return MHD_CONTENT_READER_END_OF_STREAM;
		n = (ssize_t)(left < max ? left : max);
		memcpy(out, s->static_doc + s->static_off, (size_t)n);
		s->static_off += (size_t)n;
		return n;
	}
	if (s->done)
		return MHD_CONTENT_READER_END_OF_STREAM;
	pthread_mutex_lock(&srv.lock);
	for (;;) {
		event *ev = NULL;

		for (size_t i = 0; i < s->r->nevents; i++)
			if (s->r->events[i].seq >= s->next) {
				ev = &s->r->events[i];
				break;
			}
		if (ev) {
			size_t left = ev->len - s->pending_off;

			n = (ssize_t)(left < max ? left : max);
			memcpy(out, ev->text + s->pending_off, (size_t)n);
			s->pending_off += (size_t)n;
			if (s->pending_off == ev->len) {
				s->next = ev->seq + 1;
				s->pending_off = 0;
				if (s->r->finished && ev == &s->r->events[s->r->nevents - 1])
					s->done = 1; /* the result event was the last */
			}
			break;
		}
		if (s->r->finished || srv.closing) {
			n = MHD_CONTENT_READER_END_OF_STREAM;
			break;
		}
		if (clock_mono_ms() - s->last_write_ms >= KEEPALIVE_MS) {
			static const char ka[] = ": keep-alive\n\n";

			n = (ssize_t)(sizeof(ka) - 1 < max ? sizeof(ka) - 1 : max);
			memcpy(out, ka, (size_t)n);
			break;
		}
		/* nothing to send: give the thread back until the run changes or
		 * the housekeeper wakes us for the keep-alive (libmicrohttpd
		 * calls again after the resume; 0 is only legal with a suspend) */
		s->park.wake_at_ms = s->last_write_ms + KEEPALIVE_MS;
		s->park.until_finished = 0;
		park_locked(s->r, &s->park);
		n = 0;
		break;
	}
	if (n > 0)
		s->last_write_ms = clock_mono_ms();
	pthread_mutex_unlock(&srv.lock);
	return n;
}

static void sse_free(void *cls)
{
	sse_reader *s = cls;

	pthread_mutex_lock(&srv.lock);
	if (s->r) {
		if (s->park.on_list) /* not expected: a suspended stream is not closed */
			unpark_locked(s->r, &s->park);
		s->r->refs--;
	}
	srv.followers--;
	pthread_cond_broadcast(&srv.changed);
	pthread_mutex_unlock(&srv.lock);
	free(s->static_doc);
	free(s);
}

static enum MHD_Result handle_events(struct MHD_Connection *c, const char *id)
{
	sse_reader *s = calloc(1, sizeof(*s));
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int64_t last = parse_last_event_id(c);

	if (!s)
		return MHD_NO;
	s->park.c = c;
	s->last_write_ms = clock_mono_ms();
	pthread_mutex_lock(&srv.lock);
	s->r = find_run_locked(id);
	if (s->r) {
		s->r->refs++;
		s->next = last >= 0 ? (unsigned long long)last + 1 : 0;
	}
	pthread_mutex_unlock(&srv.lock);
	if (!s->r) {
		char *doc = NULL;
		buf b = BUF_INIT(DOC_CAP + 256);

		if (runner_store_get(srv.store, id, &doc, NULL)) {
			free(s);
			return respond_error(c, "GET", 404, "NotFound", NULL, "no run with this id", NULL, NULL);
		}
		/* a run from an earlier life of the server: only its result */
		runner_sse_format(&b, 1000000000ULL, "result", doc, strlen(doc));
		free(doc);
		s->static_doc = buf_take(&b, &s->static_len);
	}
	pthread_mutex_lock(&srv.lock);
	srv.followers++; /* until sse_free */
	pthread_mutex_unlock(&srv.lock);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, sse_read, s, sse_free);
	if (!resp) {
		sse_free(s);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Accel-Buffering", "no");
	ret = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	count_http("GET", 200);
	return ret;
}

/* The document of id as JSON into b: from memory (current) or the store. */
static int get_doc(buf *b, const char *id, int with_output, int *finished)
{
	run *r;
	char *doc = NULL;
	int rc;

	pthread_mutex_lock(&srv.lock);
	r = find_run_locked(id);
	if (r) {
		rc = runner_run_doc_encode(b, r->doc, with_output);
		if (finished)
			*finished = r->finished;
		pthread_mutex_unlock(&srv.lock);
		return rc;
	}
	pthread_mutex_unlock(&srv.lock);
	if ((rc = runner_store_get(srv.store, id, &doc, NULL)))
		return rc;
	if (finished)
		*finished = 1;
	rc = buf_append_str(b, doc);
	free(doc);
	return rc;
}

/* Answer a POST with the document of run id. With wait (?wait=true) a
 * run still going parks the connection instead (park_locked); once
 * resumed, on_request comes back here through cs->wait_id. */
static enum MHD_Result respond_run(struct MHD_Connection *c, conn *cs, const char *id, int wait, int code)
{
	buf out = BUF_INIT(DOC_CAP);
	char loc[128];

	if (wait) {
		run *r;

		pthread_mutex_lock(&srv.lock);
		r = find_run_locked(id);
		if (r && !r->finished && !srv.closing) {
			if (id != cs->wait_id) {
				snprintf(cs->wait_id, sizeof(cs->wait_id), "%s", id);
				srv.followers++; /* until on_completed */
			}
			cs->park.c = c;
			cs->park.wake_at_ms = 0;
			cs->park.until_finished = 1;
			park_locked(r, &cs->park);
			pthread_mutex_unlock(&srv.lock);
			return MHD_YES;
		}
		pthread_mutex_unlock(&srv.lock);
	}
	get_doc(&out, id, wait, NULL);
	snprintf(loc, sizeof(loc), "/v1/runs/%s", id);
	return respond_json(c, "POST", code, &out, "Location", loc);
}

static enum MHD_Result handle_create(struct MHD_Connection *c, conn *cs)
{
	runner_request *req = NULL;
	runner_request_error e;
	buf enc = BUF_INIT(8u << 20), out = BUF_INIT(DOC_CAP);
	const char *hkey = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
	const char *wait = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
	int do_wait = wait && (!strcmp(wait, "true") || !strcmp(wait, "1"));
	run *r = NULL;
	char existing[64] = "", id[64];

	if (wait && !do_wait && strcmp(wait, "false") && strcmp(wait, "0"))
		return respond_error(c, "POST", 400, "FieldValueInvalid", "wait", "wait: must be true or false", NULL, NULL);
	if (cs->too_big) {
		char m[160];

		snprintf(m, sizeof(m), "the request body is larger than %zu bytes", srv.lim.max_body);
		return respond_error(c, "POST", 413, "RequestTooLarge", "", m, NULL, NULL);
	}
	if (runner_request_decode(&req, &e, cs->body.data ? cs->body.data : "", cs->body.len, &srv.lim) ||
	    runner_sandbox_validate(&e, req, &srv.cfg)) {
		runner_request_free(req);
		return respond_error(c, "POST", e.status ? e.status : 400,
				     e.reason[0] ? e.reason : "FieldValueInvalid", e.field, e.message, NULL, NULL);
	}
	if (hkey) {
		if (req->idempotency_key && strcmp(req->idempotency_key, hkey)) {
			runner_request_free(req);
			return respond_error(c, "POST", 400, "FieldValueInvalid", "idempotencyKey",
					     "idempotencyKey: differs from the Idempotency-Key header", NULL, NULL);
		}
		if (!req->idempotency_key) {
			runner_request_error e2;

			req->idempotency_key = str_dup(hkey);
			if (runner_request_validate(req, &e2, &srv.lim)) {
				runner_request_free(req);
				return respond_error(c, "POST", 400, e2.reason, "Idempotency-Key",
						     "Idempotency-Key header: must be 1 to 128 characters of letters, digits and . _ : -",
						     NULL, NULL);
			}
		}
	}
	runner_request_encode(&enc, req);

	pthread_mutex_lock(&srv.lock);
	if (req->idempotency_key) {
		for (run *q = srv.runs; q; q = q->next)
			if (q->idem_key && !strcmp(q->idem_key, req->idempotency_key))
				snprintf(existing, sizeof(existing), "%s", q->id);
	}
	pthread_mutex_unlock(&srv.lock);
	if (req->idempotency_key && !existing[0])
		runner_store_find_key(srv.store, req->idempotency_key, existing, sizeof(existing));
	if (existing[0]) {
		char *stored_req = NULL, *doc = NULL;
		int same = 1;

		pthread_mutex_lock(&srv.lock);
		run *q = find_run_locked(existing);
		if (q)
			same = q->request_json && !strcmp(q->request_json, buf_cstr(&enc));
		pthread_mutex_unlock(&srv.lock);
		if (!q && runner_store_get(srv.store, existing, &doc, &stored_req) == 0)
			same = !stored_req || !strcmp(stored_req, buf_cstr(&enc));
		free(doc);
		free(stored_req);
		runner_request_free(req);
		buf_free(&enc);
		if (!same)
			return respond_error(c, "POST", 409, "IdempotencyKeyReused", "idempotencyKey",
					     "idempotencyKey: already used for a different request", NULL, NULL);
		return respond_run(c, cs, existing, do_wait, 200);
	}

	pthread_mutex_lock(&srv.lock);
	if (srv.draining) {
		pthread_mutex_unlock(&srv.lock);
		runner_request_free(req);
		buf_free(&enc);
		return respond_error(c, "POST", 503, "ShuttingDown", NULL, "the server is shutting down; retry elsewhere",
				     "Retry-After", "5");
	}
	if (!srv.ready) {
		char m[700];

		snprintf(m, sizeof(m), "not ready: %s", srv.ready_msg);
		pthread_mutex_unlock(&srv.lock);
		runner_request_free(req);
		buf_free(&enc);
		return respond_error(c, "POST", 503, "NotReady", NULL, m, "Retry-After", "10");
	}
	if (srv.queued >= (size_t)srv.queue_size && srv.active >= (size_t)srv.max_concurrent) {
		pthread_mutex_unlock(&srv.lock);
		runner_request_free(req);
		buf_free(&enc);
		return respond_error(c, "POST", 429, "QueueFull", NULL, "the run queue is full; retry later", "Retry-After",
				     "5");
	}
	pthread_mutex_unlock(&srv.lock);

	if (!(r = run_alloc()) || !(r->doc = runner_run_doc_new()) || sandbox_cancel_new(&r->cancel) ||
	    runner_new_id(r->id, sizeof(r->id))) {
		run_free(r);
		runner_request_free(req);
		buf_free(&enc);
		return respond_error(c, "POST", 500, "InternalError", NULL, "could not allocate the run", NULL, NULL);
	}
	r->req = req;
	r->idem_key = str_dup(req->idempotency_key);
	r->request_json = buf_take(&enc, NULL);
	r->accepted_mono = clock_mono_ms();
	runner_doc_set(&r->doc->id, r->id);
	r->doc->created_ms = clock_wall_ms();
	runner_doc_set(&r->doc->job_namespace, srv.cfg.namespace_);
	{
		char jn[64];

		if (sandbox_job_name(jn, r->id) == 0)
			runner_doc_set(&r->doc->job_name, jn);
	}
	/* record at acceptance: an accepted run never disappears */
	runner_run_doc_encode(&out, r->doc, 0);
	store_doc(r, "Pending", r->doc->created_ms, 0, buf_cstr(&out));
	buf_reset(&out);

	log_kv(LOG_INFO, "run accepted", "run", r->id, "idempotencyKey", r->idem_key ? r->idem_key : "", NULL);
	snprintf(id, sizeof(id), "%s", r->id); /* r is the workers' once queued */
	pthread_mutex_lock(&srv.lock);
	enqueue_locked(r);
	phase_event_locked(r, "queued", 0, "");
	pthread_cond_signal(&srv.work);
	pthread_mutex_unlock(&srv.lock);
	buf_free(&out);
	return respond_run(c, cs, id, do_wait, do_wait ? 200 : 201);
}

static int list_cb(void *ctx, const char *id, int64_t created, const char *doc)
{
	buf *b = ctx;
	run *r;
	(void)created;

	if (b->len && b->data[b->len - 1] != '[')
		buf_append_byte(b, ',');
	pthread_mutex_lock(&srv.lock);
	r = find_run_locked(id);
	if (r)
		runner_run_doc_encode(b, r->doc, 0);
	pthread_mutex_unlock(&srv.lock);
	if (!r) {
		/* a stored document, without its output */
		runner_run_doc *d = NULL;

		if (runner_run_doc_decode(&d, doc, strlen(doc), DOC_CAP) == 0)
			runner_run_doc_encode(b, d, 0);
		else
			buf_append_str(b, "null");
		runner_run_doc_free(d);
	}
	return 0;
}

typedef struct last_row {
	int64_t created;
	char id[64];
} last_row;

static int last_cb(void *ctx, const char *id, int64_t created, const char *doc)
{
	last_row *l = ctx;
	(void)doc;
	l->created = created;
	snprintf(l->id, sizeof(l->id), "%s", id);
	return 0;
}

static int both_cb(void *ctx, const char *id, int64_t created, const char *doc)
{
	void **p = ctx;

	last_cb(p[1], id, created, doc);
	return list_cb(p[0], id, created, doc);
}

static enum MHD_Result handle_list(struct MHD_Connection *c)
{
	const char *ls = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
	const char *cont = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "continue");
	int limit = 50, more = 0;
	int64_t after_c = 0;
	char after_id[64] = "";
	buf b = BUF_INIT(DOC_CAP);
	last_row last = { 0, "" };
	void *ctx[2] = { &b, &last };

	if (ls && str_parse_int(&limit, ls, 1, 500))
		return respond_error(c, "GET", 400, "FieldValueInvalid", "limit", "limit: must be a number from 1 to 500", NULL,
				     NULL);
	if (cont) {
		/* the token is "<createdMs>.<id>" from an earlier page */
		const char *dot = strchr(cont, '.');
		char num[32];

		if (!dot || (size_t)(dot - cont) >= sizeof(num) || strlen(dot + 1) >= sizeof(after_id) ||
		    !str_has_prefix(dot + 1, "r-")) {
			return respond_error(c, "GET", 400, "FieldValueInvalid", "continue",
					     "continue: not a token from an earlier page", NULL, NULL);
		}
		snprintf(num, sizeof(num), "%.*s", (int)(dot - cont), cont);
		if (str_parse_i64(&after_c, num, 0, INT64_MAX))
			return respond_error(c, "GET", 400, "FieldValueInvalid", "continue",
					     "continue: not a token from an earlier page", NULL, NULL);
		snprintf(after_id, sizeof(after_id), "%s", dot + 1);
	}
	buf_append_str(&b, "{\"items\":[");
	if (runner_store_list(srv.store, after_c, cont ? after_id : NULL, limit, &more, both_cb, ctx)) {
		buf_free(&b);
		return respond_error(c, "GET", 500, "InternalError", NULL, err_msg(), NULL, NULL);
	}
	buf_append_byte(&b, ']');
	if (more && last.id[0])
		buf_printf(&b, ",\"continue\":\"%lld.%s\"", (long long)last.created, last.id);
	buf_append_byte(&b, '}');
	return respond_json(c, "GET", 200, &b, NULL, NULL);
}

/* Take r off the queue. 1 if it was there. Under srv.lock. */
static int queue_remove_locked(run *r)
{
	run *prev = NULL;

	for (run *q = srv.queue_head; q; prev = q, q = q->qnext) {
		if (q != r)
			continue;
		if (prev)
			prev->qnext = q->qnext;
		else
			srv.queue_head = q->qnext;
		if (srv.queue_tail == q)
			srv.queue_tail = prev;
		q->qnext = NULL;
		srv.queued--;
		return 1;
	}
	return 0;
}

/* DELETE: request the cancellation of a run not finished (202); a
 * finished run, in memory or only in the store, is answered as it is (200).
 * A run whose last step is already over when the token is set keeps its
 * real result: sandbox_run() only reports Cancelled if it saw the token. */
static enum MHD_Result handle_cancel(struct MHD_Connection *c, const char *id)
{
	run *r;
	int requested = 0;
	buf b = BUF_INIT(DOC_CAP);

	pthread_mutex_lock(&srv.lock);
	r = find_run_locked(id);
	if (r && !r->finished) {
		sandbox_cancel_request(r->cancel, "Cancelled");
		requested = 1;
		log_kv(LOG_INFO, "run cancel requested", "run", id, NULL);
		if (!r->started && queue_remove_locked(r)) {
			/* still queued: it ends now, not when a worker frees up */
			r->doc->phase = RUNNER_CANCELLED;
			runner_doc_set(&r->doc->reason, "Cancelled");
			runner_doc_set(&r->doc->message, "the run was cancelled before it started; nothing was created");
			finish_locked(r);
		}
	}
	pthread_mutex_unlock(&srv.lock);
	if (get_doc(&b, id, 0, NULL)) {
		buf_free(&b);
		return respond_error(c, "DELETE", 404, "NotFound", NULL, "no run with this id", NULL, NULL);
	}
	return respond_json(c, "DELETE", requested ? 202 : 200, &b, NULL, NULL);
}

static enum MHD_Result handle_metrics(struct MHD_Connection *c)
{
	buf b = BUF_INIT(4u << 20);
	size_t by_phase[RUNNER_NPHASES] = { 0 };

	pthread_mutex_lock(&srv.lock);
	for (run *r = srv.runs; r; r = r->next)
		if (!r->finished)
			by_phase[r->doc->phase]++;
	buf_append_str(&b, "# HELP cifixer_runs_total Runs finished, by terminal phase.\n# TYPE cifixer_runs_total counter\n");
	for (int p = RUNNER_SUCCEEDED; p < RUNNER_NPHASES; p++)
		buf_printf(&b, "cifixer_runs_total{phase=\"%s\"} %llu\n", runner_phase_name((enum runner_phase)p),
			   (unsigned long long)srv.runs_by_phase[p]);
	buf_append_str(&b, "# HELP cifixer_runs_in_flight Runs not finished, by phase.\n# TYPE cifixer_runs_in_flight gauge\n");
	for (int p = RUNNER_PENDING; p < RUNNER_SUCCEEDED; p++)
		buf_printf(&b, "cifixer_runs_in_flight{phase=\"%s\"} %zu\n", runner_phase_name((enum runner_phase)p), by_phase[p]);
	buf_printf(&b, "# HELP cifixer_queue_depth Runs waiting for a worker.\n# TYPE cifixer_queue_depth gauge\n"
		       "cifixer_queue_depth %zu\n", srv.queued);
	buf_printf(&b, "# HELP cifixer_active_runs Runs a worker is running.\n# TYPE cifixer_active_runs gauge\n"
		       "cifixer_active_runs %zu\n", srv.active);
	for (int h = 0; h < 2; h++) {
		const hist *x = h ? &srv.start_latency : &srv.durations;
		const char *name = h ? "cifixer_sandbox_start_seconds" : "cifixer_run_duration_seconds";

		buf_printf(&b, "# HELP %s %s\n# TYPE %s histogram\n", name,
			   h ? "Job created to pod ready." : "Run start to finish.", name);
		for (size_t i = 0; i < x->n; i++)
			buf_printf(&b, "%s_bucket{le=\"%g\"} %llu\n", name, x->bounds[i], (unsigned long long)x->counts[i]);
		buf_printf(&b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.3f\n%s_count %llu\n", name,
			   (unsigned long long)x->total, name, x->sum, name, (unsigned long long)x->total);
	}
	buf_printf(&b, "# HELP cifixer_output_bytes_total Command output bytes streamed.\n"
		       "# TYPE cifixer_output_bytes_total counter\ncifixer_output_bytes_total %llu\n",
		   (unsigned long long)srv.bytes_streamed);
	buf_printf(&b, "# HELP cifixer_jobs_reaped_total Orphaned Jobs deleted by the reaper.\n"
		       "# TYPE cifixer_jobs_reaped_total counter\ncifixer_jobs_reaped_total %llu\n",
		   (unsigned long long)srv.jobs_reaped);
	buf_printf(&b, "# HELP cifixer_ready 1 once the RBAC self-check passed.\n# TYPE cifixer_ready gauge\n"
		       "cifixer_ready %d\n", srv.ready);
	buf_append_str(&b, "# HELP cifixer_http_requests_total API requests answered, by method and code.\n"
			   "# TYPE cifixer_http_requests_total counter\n");
	for (size_t i = 0; i < srv.nhttp; i++)
		buf_printf(&b, "cifixer_http_requests_total{method=\"%s\",code=\"%d\"} %llu\n", srv.http[i].method,
			   srv.http[i].code, (unsigned long long)srv.http[i].n);
	pthread_mutex_unlock(&srv.lock);
	kube_client_metrics_write(srv.kc, &b, "cifixer_kube_requests_total", "cifixer_kube_connections_opened_total");
	{
		size_t len;
		char *body = buf_take(&b, &len);

		return respond(c, "GET", 200, "text/plain; version=0.0.4", body, len, NULL, NULL);
	}
}

static int valid_id(const char *s)
{
	size_t n = strlen(s);

	if (n < 3 || n > 40 || !str_has_prefix(s, "r-"))
		return 0;
	for (size_t i = 2; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return 1;
}

/* ---- the router ------------------------------------------------------------ */

static enum MHD_Result route_healthz(struct MHD_Connection *c, conn *cs, const char *method, const char *id)
{
	(void)cs, (void)id;
	return respond(c, method, 200, "text/plain", str_dup("ok\n"), 3, NULL, NULL);
}

static enum MHD_Result route_readyz(struct MHD_Connection *c, conn *cs, const char *method, const char *id)
{
	char *m;
	int ready, draining;
	(void)cs, (void)id;

	pthread_mutex_lock(&srv.lock);
	ready = srv.ready;
	draining = srv.draining;
	m = str_printf("%s\n", draining ? "draining" : ready ? "ok" : srv.ready_msg);
	pthread_mutex_unlock(&srv.lock);
	return respond(c, method, ready && !draining ? 200 : 503, "text/plain", m, strlen(m), NULL, NULL);
}

static enum MHD_Result route_metrics(struct MHD_Connection *c, conn *cs, const char *method, const char *id)
{
	(void)cs, (void)method, (void)id;
	return handle_metrics(c);
}

static enum MHD_Result route_create(struct MHD_Connection *c, conn *cs, const char *method, const char *id)
{
	(void)method, (void)id;
	return handle_create(c, cs);
}

static enum MHD_Result route_list(struct MHD_Connection *c, conn *cs, const char *method, const char *id)
{
	(void)cs, (void)method, (void)id;
	return handle_list(c);
}

static enum MHD_Result route_get(struct MHD_Connection *c, conn *cs, const char *method, const char *id)
{
	buf b = BUF_INIT(DOC_CAP);
	(void)cs;

	if (get_doc(&b, id, 1, NULL)) {
		buf_free(&b);
		return respond_error(c, method, 404, "NotFound", NULL, "no run with this id", NULL, NULL);
	}
	return respond_json(c, method, 200, &b, NULL, NULL);
}

static enum MHD_Result route_cancel(struct MHD_Connection *c, conn *cs, const char *method, const char *id)
{
	(void)cs, (void)method;
	return handle_cancel(c, id);
}

static enum MHD_Result route_events(struct MHD_Connection *c, conn *cs, const char *method, const char *id)
{
	(void)cs, (void)method;
	return handle_events(c, id);
}

typedef enum MHD_Result (*route_fn)(struct MHD_Connection *c, conn *cs, const char *method, const char *id);

/* Every route of the API, in one table the router dispatches from.
 * "{id}" stands for a run id. docs/api.md and docs/openapi.yaml describe
 * them; tests/integration/runner_docs.sh reads this table (between the
 * route-table markers) and checks that each route is in openapi.yaml. */
static const struct route {
	const char *method;
	const char *path;
	int auth;          /* needs a bearer token */
	route_fn fn;
} routes[] = {
	/* route-table: begin */
	{ "GET", "/healthz", 0, route_healthz },
	{ "GET", "/readyz", 0, route_readyz },
	{ "GET", "/metrics", 0, route_metrics },
	{ "POST", "/v1/runs", 1, route_create },
	{ "GET", "/v1/runs", 1, route_list },
	{ "GET", "/v1/runs/{id}", 1, route_get },
	{ "DELETE", "/v1/runs/{id}", 1, route_cancel },
	{ "GET", "/v1/runs/{id}/events", 1, route_events },
	/* route-table: end */
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* Does url match pattern? The "{id}" segment matches one non-empty path
 * segment, copied into id (cut to size - 1; *id_ok 0 if it was longer). */
static int path_match(const char *pattern, const char *url, char *id, size_t size, int *id_ok)
{
	const char *brace = strstr(pattern, "{id}");
	size_t pre, seg;

	if (!brace)
		return !strcmp(pattern, url);
	pre = (size_t)(brace - pattern);
	if (strncmp(pattern, url, pre))
		return 0;
	url += pre;
	seg = strcspn(url, "/");
	if (!seg || strcmp(brace + 4, url + seg))
		return 0;
	*id_ok = seg < size;
	snprintf(id, size, "%.*s", (int)(seg < size ? seg : size - 1), url);
	return 1;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	conn *cs = *con_cls;
	char id[64] = "", allow[64] = "";
	const struct route *hit = NULL;
	int path_known = 0, id_ok = 1, auth = 0;
	/* HEAD is GET without the body (libmicrohttpd drops it) */
	const char *as = !strcmp(method, "HEAD") ? "GET" : method;
	(void)cls;
	(void)version;

	if (!cs) {
		if (!(cs = calloc(1, sizeof(*cs))))
			return MHD_NO;
		buf_init(&cs->body, srv.lim.max_body);
		*con_cls = cs;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!cs->too_big && buf_append(&cs->body, upload, *upload_size))
			cs->too_big = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	if (cs->wait_id[0]) /* a ?wait=true POST resumed: has its run finished? */
		return respond_run(c, cs, cs->wait_id, 1, 200);
	for (size_t i = 0; i < NROUTES; i++) {
		if (!path_match(routes[i].path, url, id, sizeof(id), &id_ok))
			continue;
		path_known = 1;
		auth |= routes[i].auth;
		snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s", allow[0] ? ", " : "",
			 routes[i].method);
		if (!hit && !strcmp(routes[i].method, as))
			hit = &routes[i];
	}
	/* everything under /v1/ needs the token, even a path that does not exist */
	if ((auth || str_has_prefix(url, "/v1/")) && !authorized(c))
		return respond_error(c, method, 401, "Unauthorized", NULL,
				     "missing or wrong bearer token (Authorization: Bearer TOKEN)", NULL, NULL);
	if (!path_known)
		return respond_error(c, method, 404, "NotFound", NULL,
				     str_has_prefix(url, "/v1/") ? "no such endpoint"
								 : "no such endpoint (the API is under /v1/)",
				     NULL, NULL);
	if (id[0] && (!id_ok || !valid_id(id)))
		return respond_error(c, method, 404, "NotFound", NULL, "no run with this id", NULL, NULL);
	if (!hit) {
		char m[128];

		snprintf(m, sizeof(m), "%s is not allowed on this path; use %s", method, allow);
		return respond_error(c, method, 405, "MethodNotAllowed", NULL, m, "Allow", allow);
	}
	return hit->fn(c, cs, method, id);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	conn *cs = *con_cls;
	(void)cls, (void)c, (void)t;

	if (cs) {
		if (cs->wait_id[0]) {
			pthread_mutex_lock(&srv.lock);
			/* not expected: libmicrohttpd ends a suspended request only
			 * when it stops, after every parked one was resumed; a
			 * connection left on the list would be resumed after its
			 * free */
			if (cs->park.on_list) {
				unpark_locked(cs->park.run, &cs->park);
				log_kv(LOG_WARN, "a waiting request ended while parked", "run", cs->wait_id, NULL);
			}
			srv.followers--;
			pthread_cond_broadcast(&srv.changed);
			pthread_mutex_unlock(&srv.lock);
		}
		buf_free(&cs->body);
		free(cs);
		*con_cls = NULL;
	}
}

/* ---- housekeeping: readiness, reaper, recovery, retention ----------------- */

static int owned_cb(void *ctx, const char *run_id)
{
	run *r;
	int owned;
	(void)ctx;

	pthread_mutex_lock(&srv.lock);
	r = find_run_locked(run_id);
	owned = r && r->started && !r->finished;
	pthread_mutex_unlock(&srv.lock);
	return owned;
}

static void rbac_check(void)
{
	runner_rbac_result *res = NULL;
	size_t n = 0;
	int ok = 0;
	char msg[512] = "";

	if (runner_rbac_verify(&res, &n, &ok, srv.kc, srv.cfg.namespace_)) {
		snprintf(msg, sizeof(msg), "RBAC self-check could not run: %s", err_msg());
	} else if (!ok) {
		size_t off = 0;

		off += (size_t)snprintf(msg, sizeof(msg), "RBAC self-check failed:");
		for (size_t i = 0; i < n && off < sizeof(msg) - 80; i++)
			if (!res[i].ok)
				off += (size_t)snprintf(msg + off, sizeof(msg) - off, " %s %s%s%s %s;", res[i].item->verb,
							res[i].item->resource, res[i].item->subresource ? "/" : "",
							res[i].item->subresource ? res[i].item->subresource : "",
							res[i].item->want_allowed ? "not allowed" : "allowed (must be denied)");
	}
	runner_rbac_results_free(res, n);
	pthread_mutex_lock(&srv.lock);
	if (ok && !srv.ready)
		log_kv(LOG_INFO, "RBAC self-check passed: ready", "namespace", srv.cfg.namespace_, NULL);
	else if (!ok && strcmp(srv.ready_msg, msg))
		log_kv(LOG_ERROR, "not ready", "reason", msg, NULL);
	srv.ready = ok;
	snprintf(srv.ready_msg, sizeof(srv.ready_msg), "%s", ok ? "ok" : msg);
	pthread_mutex_unlock(&srv.lock);
}

static void reap(void)
{
	size_t deleted = 0;

	if (sandbox_reap(&deleted, srv.kc, &srv.cfg, owned_cb, NULL))
		log_kv(LOG_WARN, "reaper", "error", err_msg(), NULL);
	if (deleted) {
		char n[32];

		snprintf(n, sizeof(n), "%zu", deleted);
		log_kv(LOG_INFO, "reaper deleted orphaned Jobs", "count", n, NULL);
		pthread_mutex_lock(&srv.lock);
		srv.jobs_reaped += deleted;
		pthread_mutex_unlock(&srv.lock);
	}
}

static void *housekeeper(void *arg)
{
	int64_t next_reap = 0, next_rbac = 0, next_expire = 0, next_trim = 0;
	(void)arg;

	for (;;) {
		int64_t now = clock_mono_ms();
		int stopping, ready;

		pthread_mutex_lock(&srv.lock);
		stopping = srv.stopping || srv.draining;
		pthread_mutex_unlock(&srv.lock);
		if (stopping)
			break;
		if (now >= next_rbac) {
			rbac_check();
			/* until ready, retry soon; afterwards re-check now and then
			 * (readiness as this check left it, not as before it) */
			pthread_mutex_lock(&srv.lock);
			ready = srv.ready;
			pthread_mutex_unlock(&srv.lock);
			next_rbac = now + (ready ? 300000 : 5000);
		}
		if (now >= next_reap) {
			reap();
			next_reap = now + (int64_t)srv.o->reap_interval * 1000;
		}
		if (now >= next_expire) {
			int del = 0;

			runner_store_expire(srv.store, clock_wall_ms() - (int64_t)srv.o->retention_hours * 3600000, &del);
			next_expire = now + 600000;
		}
		pthread_mutex_lock(&srv.lock);
		keepalive_sweep_locked();
		pthread_mutex_unlock(&srv.lock);
		if (now >= next_trim) {
			/* give the arenas' free pages back: without it a 2,000-run
			 * soak held ~70 MB of freed memory (malloc_stats: 76 MB in
			 * use, 160 MB from the system; malloc_trim took RSS from 149
			 * to 104 MB) and RSS crept up ~70 KB per run */
			malloc_trim(0);
			next_trim = now + 30000;
		}
		pthread_mutex_lock(&srv.lock);
		if (!srv.stopping && !srv.draining) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&srv.hk, &srv.lock, &ts);
		}
		pthread_mutex_unlock(&srv.lock);
	}
	return NULL;
}

/* Runs the store says were in flight when the last process died. The
 * cluster is the source of truth: a run that never started (Pending) is
 * queued again, since nothing was created for it; one that had started
 * cannot be re-attached (its exec streams died with the process), so its
 * Job is deleted and it is recorded as Error/RunnerRestarted. Either way
 * it stays listed. */
static int recover_cb(void *ctx, const char *id, int64_t created, const char *doc_json)
{
	runner_run_doc *d = NULL;
	char *reqj = NULL, *docj = NULL;
	runner_request *req = NULL;
	runner_request_error e;
	buf b = BUF_INIT(DOC_CAP);
	(void)ctx;
	(void)created;

	if (runner_run_doc_decode(&d, doc_json, strlen(doc_json), DOC_CAP))
		return 0;
	runner_store_get(srv.store, id, &docj, &reqj);
	if (d->phase == RUNNER_PENDING && reqj && !srv.draining &&
	    runner_request_decode(&req, &e, reqj, strlen(reqj), &srv.lim) == 0) {
		run *r = run_alloc();

		if (r && sandbox_cancel_new(&r->cancel) == 0) {
			snprintf(r->id, sizeof(r->id), "%s", id);
			r->req = req;
			req = NULL;
			r->doc = d;
			d = NULL;
			r->idem_key = str_dup(r->req->idempotency_key);
			r->request_json = reqj;
			reqj = NULL;
			r->accepted_mono = clock_mono_ms();
			pthread_mutex_lock(&srv.lock);
			enqueue_locked(r);
			pthread_mutex_unlock(&srv.lock);
			log_kv(LOG_INFO, "recovered a queued run", "run", id, NULL);
		} else {
			run_free(r);
		}
	} else {
		if (sandbox_job_delete(srv.kc, &srv.cfg, id))
			log_kv(LOG_WARN, "could not delete the Job of an interrupted run", "run", id, "error", err_msg(), NULL);
		d->phase = RUNNER_ERROR;
		runner_doc_set(&d->reason, "RunnerRestarted");
		runner_doc_set(&d->message, "the runner restarted while this run was in flight; its Job was deleted; "
					    "submit it again with a new idempotency key");
		d->finished_ms = clock_wall_ms();
		runner_run_doc_encode(&b, d, 1);
		runner_store_put(srv.store, id, NULL, d->created_ms, "Error", d->finished_ms, NULL, buf_cstr(&b));
		log_kv(LOG_WARN, "recorded an interrupted run as Error", "run", id, NULL);
	}
	buf_free(&b);
	runner_request_free(req);
	runner_run_doc_free(d);
	free(reqj);
	free(docj);
	return 0;
}

/* ---- start and drain --------------------------------------------------------- */

static int parse_listen(struct sockaddr_in *sa, const char *s)
{
	const char *colon = strrchr(s, ':');
	char host[64];
	int port;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (!colon || (size_t)(colon - s) >= sizeof(host) || str_parse_int(&port, colon + 1, 0, 65535))
		return err_set(ERR_INVALID, "--listen %s: want ADDR:PORT (0.0.0.0:3001)", s);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
	if (!host[0])
		strcpy(host, "0.0.0.0");
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return err_set(ERR_INVALID, "--listen %s: %s is not an IPv4 address", s, host);
	sa->sin_port = htons((uint16_t)port);
	return 0;
}

/* glibc's per-thread cache (tcache) keeps up to 7 freed blocks of each
 * small size in every thread, out of reach of the others and of
 * malloc_trim: with 1,000 workers and as many waiting clients' threads it
 * held about 50 MB at the peak of bench part 4 (peak RSS 338 to 359 MiB
 * with it, 297 MiB without, the same runs). The tunable is read only at
 * start-up (GLIBC_TUNABLES, glibc.malloc.tcache_count), so serve sets it
 * and executes itself again, once. An operator's own setting of it is
 * left alone; if the exec fails, serve goes on with the defaults. */
void runner_serve_tune_malloc(char **argv)
{
	static const char tun[] = "glibc.malloc.tcache_count=0";
	const char *t = getenv("GLIBC_TUNABLES");
	char *old, *v;

	if (t && strstr(t, "glibc.malloc.tcache_count"))
		return;
	old = t ? str_dup(t) : NULL;
	v = old && *old ? str_printf("%s:%s", old, tun) : str_dup(tun);
	if (v && setenv("GLIBC_TUNABLES", v, 1) == 0) {
		execv("/proc/self/exe", argv);
		/* still here: the exec failed */
		if (old)
			setenv("GLIBC_TUNABLES", old, 1);
		else
			unsetenv("GLIBC_TUNABLES");
	}
	free(v);
	free(old);
}

int runner_cmd_serve(const runner_opts *o)
{
	struct sockaddr_in sa;
	enum log_level lvl = LOG_INFO;
	pthread_t *workers = NULL, hk;
	int nworkers = 0, hk_started = 0, status = 1;
	sigset_t set;
	int sig = 0;
	char port[16], *data_dir = NULL;
	const char *listen = o->listen ? o->listen : "0.0.0.0:3001";

	memset(&srv, 0, sizeof(srv));
	srv.o = o;
	/* glibc gives threads up to 8 malloc arenas per core, each keeping
	 * what it freed: with 1,000 workers each arena held the peak of the
	 * runs that happened to use it (bench part 4: 287 MiB of 390 MiB of
	 * RSS in arena heaps). Four arenas are plenty for the lock traffic of
	 * threads that mostly wait on the network. */
	mallopt(M_ARENA_MAX, 4);
	/* A fixed mmap threshold: glibc's moving one rises to the largest block
	 * freed (the 512 KiB capture halves, MiB-sized workspace tars), after
	 * which such blocks come from the arenas and their pages stay with the
	 * process when freed. Fixed, they are mapped and unmapped whole. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	if (o->log_level && log_level_parse(&lvl, o->log_level)) {
		fprintf(stderr, "ci-fixer: --log-level: %s\n", err_msg());
		return 2;
	}
	log_setup(o->log_format && !strcmp(o->log_format, "text") ? LOG_PLAIN : LOG_JSON, lvl, stderr);
	pthread_mutex_init(&srv.lock, NULL);
	pthread_cond_init(&srv.changed, NULL);
	pthread_cond_init(&srv.work, NULL);
	pthread_cond_init(&srv.hk, NULL);
	srv.durations.bounds = dur_bounds;
	srv.durations.n = sizeof(dur_bounds) / sizeof(dur_bounds[0]);
	srv.start_latency.bounds = start_bounds;
	srv.start_latency.n = sizeof(start_bounds) / sizeof(start_bounds[0]);
	srv.max_concurrent = o->max_concurrent ? o->max_concurrent : 4;
	srv.queue_size = o->queue_size ? o->queue_size : 32;
	snprintf(srv.ready_msg, sizeof(srv.ready_msg), "the RBAC self-check has not finished yet");
	((runner_opts *)o)->reap_interval = o->reap_interval ? o->reap_interval : 60;
	((runner_opts *)o)->retention_hours = o->retention_hours ? o->retention_hours : 168;

	/* SIGTERM/SIGINT are taken by sigwait below; every thread inherits the mask */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!o->token_file) {
		log_kv(LOG_ERROR, "--token-file is required: the API only answers bearer tokens listed in it", NULL);
		goto done;
	}
	if (access(o->token_file, R_OK) != 0) {
		log_kv(LOG_ERROR, "cannot read the token file", "path", o->token_file, "error", strerror(errno), NULL);
		goto done;
	}
	if (parse_listen(&sa, listen)) {
		log_kv(LOG_ERROR, err_msg(), NULL);
		goto done;
	}
	if (runner_kube_client(&srv.kc, o)) {
		log_kv(LOG_ERROR, "Kubernetes configuration", "error", err_msg(), NULL);
		goto done;
	}
	runner_sandbox_config(&srv.cfg, o);
	if (!o->namespace_)
		srv.cfg.namespace_ = kube_client_namespace(srv.kc);
	data_dir = str_dup(o->data_dir ? o->data_dir : "ci-fixer-data");
	{
		static char cache[4096], scratch[4096];

		snprintf(cache, sizeof(cache), "%s/repo-cache", data_dir);
		snprintf(scratch, sizeof(scratch), "%s/scratch", data_dir);
		mkdir(data_dir, 0700);
		mkdir(scratch, 0700);
		srv.cfg.repo_cache_dir = cache;
		srv.cfg.scratch_dir = scratch;
	}
	srv.lim = (runner_limits)RUNNER_LIMITS_INIT;
	runner_limits_from_config(&srv.lim, &srv.cfg);
	srv.lim.allow_local_repos = o->allow_local_repos;
	if (runner_store_open(&srv.store, data_dir)) {
		log_kv(LOG_ERROR, "run store", "error", err_msg(), NULL);
		goto done;
	}
	pthread_mutex_lock(&srv.lock);
	tokens_refresh_locked();
	pthread_mutex_unlock(&srv.lock);

	/* recovery first: requeue or close out what the last process left */
	runner_store_unfinished(srv.store, recover_cb, NULL);
	reap();

	/* Every run in flight can hold an SSE or ?wait=true connection plus
	 * its own API connections: take the whole descriptor allowance, and
	 * epoll rather than select(), which refuses descriptors >= 1024
	 * (bench: 1,000 concurrent runs were answered with connection resets). */
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	srv.mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
					   MHD_USE_ERROR_LOG,
				   0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				   MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
				   (unsigned)120, MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000, MHD_OPTION_LISTENING_ADDRESS_REUSE,
				   (unsigned)1, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)HTTP_THREADS,
				   MHD_OPTION_THREAD_STACK_SIZE, (size_t)CONNECTION_STACK,
				   MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY, MHD_OPTION_END);
	if (!srv.mhd) {
		log_kv(LOG_ERROR, "cannot listen", "listen", listen, "error", strerror(errno), NULL);
		goto done;
	}
	{
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv.mhd, MHD_DAEMON_INFO_BIND_PORT);

		snprintf(port, sizeof(port), "%u", di ? di->port : ntohs(sa.sin_port));
	}
	if (!(workers = calloc((size_t)srv.max_concurrent, sizeof(*workers))))
		goto done;
	{
		/* --max-concurrent workers each hold a stack for the whole
		 * process life: the default 8 MiB each would reserve 8 GiB of
		 * address space at 1,000 (bench part 4) */
		pthread_attr_t at;

		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, WORKER_STACK);
		for (; nworkers < srv.max_concurrent; nworkers++)
			if (pthread_create(&workers[nworkers], &at, worker, NULL))
				break;
		hk_started = pthread_create(&hk, &at, housekeeper, NULL) == 0;
		pthread_attr_destroy(&at);
	}
	log_kv(LOG_INFO, "listening", "port", port, "listen", listen, "namespace", srv.cfg.namespace_, "owner",
	       srv.cfg.owner, NULL);

	while (sigwait(&set, &sig) == 0 && sig != SIGTERM && sig != SIGINT)
		;
	log_kv(LOG_INFO, "draining: no new runs; cancelling runs after the grace period", "signal", strsignal(sig), NULL);
	pthread_mutex_lock(&srv.lock);
	srv.draining = 1;
	pthread_cond_broadcast(&srv.work);
	pthread_cond_broadcast(&srv.hk);
	pthread_mutex_unlock(&srv.lock);
	{
		int64_t until = clock_mono_ms() + (int64_t)o->shutdown_grace * 1000;

		pthread_mutex_lock(&srv.lock);
		while ((srv.active || srv.queued) && clock_mono_ms() < until) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&srv.changed, &srv.lock, &ts);
			keepalive_sweep_locked(); /* the housekeeper has stopped */
		}
		for (run *r = srv.runs; r; r = r->next)
			if (!r->finished)
				sandbox_cancel_request(r->cancel, "Shutdown");
		srv.stopping = 1;
		pthread_cond_broadcast(&srv.work);
		pthread_mutex_unlock(&srv.lock);
	}
	status = 0;
done:
	if (hk_started) {
		pthread_mutex_lock(&srv.lock);
		srv.stopping = 1;
		pthread_cond_broadcast(&srv.work);
		pthread_cond_broadcast(&srv.hk);
		pthread_mutex_unlock(&srv.lock);
		pthread_join(hk, NULL);
	}
	/* workers drain the queue (cancelled runs finish at once) and tear
	 * their Jobs down before they return */
	pthread_mutex_lock(&srv.lock);
	srv.stopping = 1;
	pthread_cond_broadcast(&srv.work);
	pthread_mutex_unlock(&srv.lock);
	for (int i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	free(workers);
	/* a queued run no worker took (none started) is closed out here */
	pthread_mutex_lock(&srv.lock);
	while (srv.queue_head) {
		run *r = srv.queue_head;

		srv.queue_head = r->qnext;
		srv.queued--;
		r->doc->phase = RUNNER_CANCELLED;
		runner_doc_set(&r->doc->reason, "Shutdown");
		runner_doc_set(&r->doc->message, "the server shut down before the run started; nothing was created");
		finish_locked(r);
	}
	/* the backstop: any Job of ours still there (a failed DELETE) */
	for (run *r = srv.runs; r && srv.kc && status == 0; r = r->next)
		if (r->started)
			sandbox_job_delete(srv.kc, &srv.cfg, r->id);
	/* libmicrohttpd must not be stopped with a suspended connection: every
	 * run has finished (which resumed its parked connections), and with
	 * srv.closing set nothing parks again; this is the backstop */
	srv.closing = 1;
	for (run *r = srv.runs; r; r = r->next)
		wake_locked(r, WAKE_ALL);
	/* the followers were resumed by their runs' ends, but their pool
	 * threads may not have written the result yet: MHD_stop_daemon closes
	 * every connection at once. Up to 5 s for them to finish. */
	{
		int64_t until = clock_mono_ms() + 5000;

		while (srv.followers && clock_mono_ms() < until) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1; /* each one that ends broadcasts srv.changed */
			pthread_cond_timedwait(&srv.changed, &srv.lock, &ts);
		}
	}
	pthread_mutex_unlock(&srv.lock);
	if (srv.mhd)
		MHD_stop_daemon(srv.mhd);
	if (status == 0)
		log_kv(LOG_INFO, "stopped: every run finished or cancelled, every Job deleted", NULL);
	while (srv.runs) {
		run *r = srv.runs;

		srv.runs = r->next;
		run_free(r);
	}
	for (size_t i = 0; i < srv.ntokens; i++)
		free(srv.tokens[i]);
	runner_store_free(srv.store);
	kube_client_free(srv.kc);
	free(data_dir);
	return status;
}

/*
 * kube/watch: list-then-watch of one collection, kept alive like
 * client-go's reflector (s/client-go/tools/cache/reflector.go).
 *
 * kube_watch_run lists the collection (unless given a resourceVersion to
 * start from), delivers the list as one KUBE_WATCH_SYNC event, then watches
 * from the list's resourceVersion with allowWatchBookmarks. The stream is
 * newline-delimited JSON ({"type":...,"object":...} per line, s/apimachinery/
 * pkg/watch/json); a line may arrive split across any number of reads and
 * is capped. When the stream ends (EOF is normal: timeoutSeconds or the
 * server's min-request-timeout) or breaks, the watch resumes from the last
 * resourceVersion seen (bookmarks included). When that resourceVersion is
 * too old (HTTP 200 with an ERROR event carrying a 410 Expired/Gone Status,
 * or a plain HTTP 410), it lists again and delivers a new SYNC event.
 * The caller stops it from its callback, with a deadline, or from another
 * thread through a kube_cancel.
 */
#ifndef KUBE_WATCH_H
#define KUBE_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kube/client.h"
#include "util/buf.h"

/* Default cap on one event line. */
#define KUBE_WATCH_MAX_LINE (16u << 20)

enum kube_watch_type {
	KUBE_WATCH_ADDED = 1,
	KUBE_WATCH_MODIFIED,
	KUBE_WATCH_DELETED,
	KUBE_WATCH_BOOKMARK,
	KUBE_WATCH_ERROR,    /* only from kube_watch_event_parse; run() handles it */
	KUBE_WATCH_SYNC      /* a fresh List: object is the whole List ({"items":[...]}) */
};

typedef struct kube_watch_event {
	int type;                      /* enum kube_watch_type */
	cJSON *object;                 /* owned by the event; the callback may detach parts */
	const char *resource_version;  /* object's metadata.resourceVersion, or NULL */
} kube_watch_event;

/* Return 0 to go on, 1 to stop (kube_watch_run returns 0), or a negative
 * err code to stop with that error (set its message first). */
typedef int (*kube_watch_cb)(void *ud, const kube_watch_event *ev);

typedef struct kube_watch_opts {
	const char *path;             /* collection, e.g. "/api/v1/namespaces/ns/pods" */
	const char *label_selector;   /* NULL: all */
	const char *field_selector;   /* NULL: all */
	const char *resource_version; /* start watching here, no initial list; NULL: list first */
	int timeout_seconds;          /* per watch request (server side); 0: 300 */
	int64_t deadline_ms;          /* clock_mono_ms() deadline; 0: none */
	kube_cancel *cancel;          /* may be NULL */
	size_t max_line;              /* 0: KUBE_WATCH_MAX_LINE */
	int max_failures;             /* consecutive failed (re)connects before giving up; 0: 10 */
	void (*on_tick)(void *);      /* about once a second while a watch request is
				       * open, from the watching thread; may be NULL */
	void *tick_ud;
} kube_watch_opts;

#define KUBE_WATCH_OPTS_INIT { NULL, NULL, NULL, NULL, 0, 0, NULL, 0, 0, NULL, NULL }

/* Run the watch until the callback stops it (0), the deadline
 * (ERR_TIMEOUT), cancellation (ERR_CANCELLED), an error Status other than
 * 410 (its typed error), or max_failures reconnects in a row without an
 * event (the last error). Blocking; thread-safe per client. */
int kube_watch_run(kube_client *c, const kube_watch_opts *opts, kube_watch_cb cb, void *ud);

/* Counters of one run, for tests and logs. */
typedef struct kube_watch_stats {
	unsigned lists;        /* LISTs made (initial + re-lists) */
	unsigned watches;      /* watch requests made */
	unsigned events;       /* events delivered (SYNC included) */
	unsigned bookmarks;
	unsigned expired;      /* 410s seen */
} kube_watch_stats;

/* kube_watch_run, also filling *stats (may be NULL). */
int kube_watch_run_stats(kube_client *c, const kube_watch_opts *opts, kube_watch_cb cb, void *ud,
			 kube_watch_stats *stats);

/* ---- the pieces, exposed for tests and fuzzing ---------------------- */

/* A newline splitter with a cap on the line length. */
typedef struct kube_line_decoder {
	buf partial;   /* the start of a line not yet ended */
	size_t max;
} kube_line_decoder;

typedef int (*kube_line_cb)(void *ud, const char *line, size_t len);

void kube_line_decoder_init(kube_line_decoder *d, size_t max_line);
/* Feed bytes; on_line is called for each complete line (without the
 * '\n', a trailing '\r' removed, empty lines skipped). Returns 0, the
 * first negative value on_line returned, 1 if on_line returned 1 (stop),
 * or ERR_TOOBIG when a line exceeds the cap. */
int kube_line_decoder_feed(kube_line_decoder *d, const char *p, size_t n, kube_line_cb on_line,
			   void *ud);
/* Bytes of an unfinished line held (a stream ending with some is cut). */
size_t kube_line_decoder_pending(const kube_line_decoder *d);
void kube_line_decoder_free(kube_line_decoder *d);

/* Parse one watch line into *out (object owned by out; free with
 * kube_watch_event_clear). ERR_INVALID with a message for anything but
 * {"type": known type, "object": {...}}. */
int kube_watch_event_parse(kube_watch_event *out, const char *line, size_t len);
void kube_watch_event_clear(kube_watch_event *ev);

#endif

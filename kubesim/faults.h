/*
 * faults: seeded fault injection for kubesim (--faults SPEC --seed N).
 *
 * SPEC is a ';'-separated list of rules, each
 *     [VERB ]PATH_GLOB:ACTION[@TRIGGER]
 * VERB: an HTTP method (GET, POST, ...) or a Kubernetes verb (get, list,
 * watch, create, update, patch, delete, exec, log) or '*' (the default);
 * PATH_GLOB: an fnmatch(3) pattern on the URL path (e.g. a glob on
 * /api/v1/namespaces/default/pods and its children; see docs/kubesim.md);
 * ACTION one of
 *     status=CODE[,text][,retry=SECONDS]  an error answer: a Status JSON (or
 *                                  plain text with ",text", as upstream's
 *                                  max-in-flight 429), Retry-After for 429/503
 *     delay=MS                     added latency, then the normal answer
 *     drop                         the connection is closed without an answer
 *     watch-cut=N                  a watch ends (EOF) after N events
 *     watch-gone=N                 a watch sends ERROR 410 Expired after N events
 *     exec-cut=N                   an exec stream is cut after N output bytes
 * TRIGGER: p=PROBABILITY (0..1, seeded), every=N (the Nth, 2Nth, ...
 * matching request), first=N (the first N matching requests); default: always.
 * Image pull failures are a separate flag (--image-fail GLOB).
 */
#ifndef KUBESIM_FAULTS_H
#define KUBESIM_FAULTS_H

#include <stdint.h>

typedef struct ks_faults ks_faults;

enum ks_fault_kind {
	KS_FAULT_NONE = 0,
	KS_FAULT_STATUS,
	KS_FAULT_DELAY,
	KS_FAULT_DROP,
	KS_FAULT_WATCH_CUT,
	KS_FAULT_WATCH_GONE,
	KS_FAULT_EXEC_CUT
};

typedef struct ks_fault {
	enum ks_fault_kind kind;
	int code;         /* STATUS */
	int text;         /* STATUS: plain-text body */
	int retry_after;  /* STATUS: seconds, 0 none */
	int64_t n;        /* DELAY ms, WATCH_* events, EXEC_CUT bytes */
} ks_fault;

#define KS_FAULTS_SPEC_MAX 4096

/* Parse SPEC (NULL or "" = no faults). Caller owns the result; free with
 * ks_faults_free(). 0 or ERR_INVALID with the offending rule named. */
int ks_faults_new(ks_faults **out, const char *spec, uint64_t seed);
void ks_faults_free(ks_faults *f);

/* The faults that apply to one request (method, Kubernetes verb, path):
 * fills up to max entries, returns how many. Thread-safe; counters and
 * the random stream advance per matching request, so a given sequence of
 * requests replays exactly for a given seed. */
int ks_faults_match(ks_faults *f, const char *method, const char *verb, const char *path,
		    ks_fault *out, int max);

#endif

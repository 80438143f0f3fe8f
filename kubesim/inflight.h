/*
 * inflight: kube-apiserver's max-in-flight filter (--max-requests-inflight,
 * --max-mutating-requests-inflight), so that an overloaded kubesim sheds
 * load with 429 and Retry-After: 1 at once, as the real API server does,
 * instead of letting every request wait until the client's timeout.
 *
 * Two counters of requests being handled: read-only (get, list) and
 * mutating (every other verb). A request that finds its counter at the
 * limit is refused. Not counted, as upstream: long-running requests
 * (watch and proxy verbs; attach, exec, log, portforward and proxy
 * subresources), and requests of system:masters (always answered). A
 * limit of 0 turns that counter off.
 *
 * Thread-safe: one mutex guards both counters and the statistics.
 */
#ifndef KUBESIM_INFLIGHT_H
#define KUBESIM_INFLIGHT_H

#include <stdint.h>

/* Upstream's defaults (cmd/kube-apiserver options: 400 and 200). */
#define KS_INFLIGHT_READONLY_DEFAULT 400
#define KS_INFLIGHT_MUTATING_DEFAULT 200

typedef struct ks_inflight ks_inflight;

enum ks_inflight_kind { KS_INFLIGHT_NONE = 0, KS_INFLIGHT_READONLY, KS_INFLIGHT_MUTATING };

typedef struct ks_inflight_stats {
	int readonly_limit, mutating_limit;
	int readonly_now, mutating_now;     /* being handled now */
	int readonly_peak, mutating_peak;   /* highest since start */
	uint64_t readonly_dropped, mutating_dropped; /* answered 429 */
} ks_inflight_stats;

/* Limits as the flags give them (0: no limit for that kind). Caller owns
 * the result; free with ks_inflight_free(). 0 or ERR_NOMEM. */
int ks_inflight_new(ks_inflight **out, int readonly_limit, int mutating_limit);
void ks_inflight_free(ks_inflight *f);

/* Which counter a request goes to: KS_INFLIGHT_NONE for long-running
 * requests (verb "watch" or "proxy"; subresource attach, exec, log,
 * portforward or proxy), READONLY for get and list, MUTATING otherwise.
 * verb is kubesim's Kubernetes verb (api.c), or for a non-resource request
 * the lower-case HTTP method ("get", "post"...); sub may be "" or NULL. */
enum ks_inflight_kind ks_inflight_classify(const char *verb, const char *sub);

/* Take a slot of kind. 1 when taken (release it with ks_inflight_leave),
 * 0 when that counter is at its limit: answer 429. KS_INFLIGHT_NONE and
 * a kind without limit always succeed. */
int ks_inflight_enter(ks_inflight *f, enum ks_inflight_kind kind);
void ks_inflight_leave(ks_inflight *f, enum ks_inflight_kind kind);

void ks_inflight_stats_get(ks_inflight *f, ks_inflight_stats *out);

#endif

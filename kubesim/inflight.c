/*
 * inflight: see inflight.h. The behaviour is upstream's
 * staging/src/k8s.io/apiserver/pkg/server/filters/maxinflight.go
 * WithMaxInFlightLimit: a buffered channel per kind, a non-blocking send
 * (no queueing: a full channel answers 429 at once), the slot released when
 * the handler returns; long-running requests skip the filter
 * (pkg/controlplane/apiserver/config.go BasicLongRunningRequestCheck with
 * verbs watch and proxy and subresources attach, exec, proxy, log and
 * portforward); the group system:masters is never refused. Here the
 * channel is a counter under a mutex.
 */
#include "kubesim/inflight.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

struct ks_inflight {
	pthread_mutex_t mu;
	ks_inflight_stats st;
};

int ks_inflight_new(ks_inflight **out, int readonly_limit, int mutating_limit)
{
	ks_inflight *f = calloc(1, sizeof *f);

	*out = NULL;
	if (!f)
		return err_set(ERR_NOMEM, "out of memory");
	pthread_mutex_init(&f->mu, NULL);
	f->st.readonly_limit = readonly_limit > 0 ? readonly_limit : 0;
	f->st.mutating_limit = mutating_limit > 0 ? mutating_limit : 0;
	*out = f;
	return 0;
}

void ks_inflight_free(ks_inflight *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->mu);
	free(f);
}

enum ks_inflight_kind ks_inflight_classify(const char *verb, const char *sub)
{
	static const char *const long_subs[] = { "attach", "exec", "log", "portforward", "proxy" };

	if (!verb)
		verb = "";
	if (!strcmp(verb, "watch") || !strcmp(verb, "proxy"))
		return KS_INFLIGHT_NONE;
	for (size_t i = 0; sub && sub[0] && i < sizeof(long_subs) / sizeof(long_subs[0]); i++)
		if (!strcmp(sub, long_subs[i]))
			return KS_INFLIGHT_NONE;
	/* maxinflight.go nonMutatingRequestVerbs: get, list, watch */
	if (!strcmp(verb, "get") || !strcmp(verb, "list"))
		return KS_INFLIGHT_READONLY;
	return KS_INFLIGHT_MUTATING;
}

int ks_inflight_enter(ks_inflight *f, enum ks_inflight_kind kind)
{
	int ok = 1;

	if (!f || kind == KS_INFLIGHT_NONE)
		return 1;
	pthread_mutex_lock(&f->mu);
	if (kind == KS_INFLIGHT_READONLY) {
		if (f->st.readonly_limit && f->st.readonly_now >= f->st.readonly_limit) {
			f->st.readonly_dropped++;
			ok = 0;
		} else if (++f->st.readonly_now > f->st.readonly_peak) {
			f->st.readonly_peak = f->st.readonly_now;
		}
	} else {
		if (f->st.mutating_limit && f->st.mutating_now >= f->st.mutating_limit) {
			f->st.mutating_dropped++;
			ok = 0;
		} else if (++f->st.mutating_now > f->st.mutating_peak) {
			f->st.mutating_peak = f->st.mutating_now;
		}
	}
	pthread_mutex_unlock(&f->mu);
	return ok;
}

void ks_inflight_leave(ks_inflight *f, enum ks_inflight_kind kind)
{
	if (!f || kind == KS_INFLIGHT_NONE)
		return;
	pthread_mutex_lock(&f->mu);
	if (kind == KS_INFLIGHT_READONLY)
		f->st.readonly_now--;
	else
		f->st.mutating_now--;
	pthread_mutex_unlock(&f->mu);
}

void ks_inflight_stats_get(ks_inflight *f, ks_inflight_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	*out = f->st;
	pthread_mutex_unlock(&f->mu);
}

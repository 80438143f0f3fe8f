/*
 * metrics: request accounting in Prometheus text format at GET /metrics,
 * named and labelled like kube-apiserver's apiserver_request_total
 * (k/k staging/src/k8s.io/apiserver/pkg/endpoints/metrics/metrics.go), plus
 * a few kubesim gauges (objects, watch history bytes, pods, processes,
 * exec sessions, resident memory).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubesim/inflight.h"
#include "kubesim/sim.h"
#include "util/buf.h"

#define MAX_SERIES 4096

typedef struct series {
	char verb[16], group[48], version[12], resource[48], sub[24], scope[12];
	int code;
	unsigned long long n;
} series;

struct ks_metrics {
	pthread_mutex_t mu;
	series *s;
	size_t n;
	unsigned long long dropped;
};

int ks_metrics_new(ks_metrics **out)
{
	ks_metrics *m = calloc(1, sizeof *m);
	if (!m)
		return -1;
	m->s = calloc(MAX_SERIES, sizeof *m->s);
	if (!m->s) {
		free(m);
		return -1;
	}
	pthread_mutex_init(&m->mu, NULL);
	*out = m;
	return 0;
}

void ks_metrics_free(ks_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->s);
	free(m);
}

#define CP(dst, src) snprintf(dst, sizeof dst, "%s", (src) ? (src) : "")

void ks_metrics_count(ks_metrics *m, const char *verb, const char *group, const char *version,
		      const char *resource, const char *sub, const char *scope, int code)
{
	if (!m)
		return;
	series k;
	memset(&k, 0, sizeof k);
	CP(k.verb, verb);
	CP(k.group, group);
	CP(k.version, version);
	CP(k.resource, resource);
	CP(k.sub, sub);
	CP(k.scope, resource && resource[0] ? scope : "");
	k.code = code;
	pthread_mutex_lock(&m->mu);
	size_t i;
	for (i = 0; i < m->n; i++) {
		series *s = &m->s[i];
		if (s->code == k.code && !strcmp(s->verb, k.verb) && !strcmp(s->group, k.group) &&
		    !strcmp(s->version, k.version) && !strcmp(s->resource, k.resource) && !strcmp(s->sub, k.sub) &&
		    !strcmp(s->scope, k.scope))
			break;
	}
	if (i == m->n) {
		if (m->n == MAX_SERIES) {
			m->dropped++;
			pthread_mutex_unlock(&m->mu);
			return;
		}
		m->s[m->n++] = k;
	}
	m->s[i].n++;
	pthread_mutex_unlock(&m->mu);
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	long v = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

char *ks_metrics_render(ks_sim *sim)
{
	ks_metrics *m = sim->metrics;
	buf b = BUF_INIT(8u * 1024 * 1024);
	buf_append_str(&b, "# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, group, version, resource, scope, component, and HTTP response code.\n# TYPE apiserver_request_total counter\n");
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->n; i++) {
		series *s = &m->s[i];
		buf_printf(&b, "apiserver_request_total{code=\"%d\",component=\"apiserver\",group=\"%s\",resource=\"%s\",scope=\"%s\",subresource=\"%s\",verb=\"%s\",version=\"%s\"} %llu\n",
			   s->code, s->group, s->resource, s->scope, s->sub, s->verb, s->version, s->n);
	}
	unsigned long long dropped = m->dropped;
	pthread_mutex_unlock(&m->mu);
	buf_printf(&b, "# TYPE kubesim_metrics_series_dropped_total counter\nkubesim_metrics_series_dropped_total %llu\n", dropped);
	{
		/* k/k staging/src/k8s.io/apiserver/pkg/endpoints/metrics/metrics.go:
		 * apiserver_dropped_requests_total, apiserver_current_inflight_requests */
		ks_inflight_stats is;

		ks_inflight_stats_get(sim->inflight, &is);
		buf_printf(&b, "# HELP apiserver_dropped_requests_total Number of requests dropped with 'Try again later' response.\n"
			       "# TYPE apiserver_dropped_requests_total counter\n"
			       "apiserver_dropped_requests_total{request_kind=\"mutating\"} %llu\n"
			       "apiserver_dropped_requests_total{request_kind=\"readOnly\"} %llu\n",
			   (unsigned long long)is.mutating_dropped, (unsigned long long)is.readonly_dropped);
		buf_printf(&b, "# HELP apiserver_current_inflight_requests Maximal number of currently used inflight request limit of this apiserver per request kind in last second.\n"
			       "# TYPE apiserver_current_inflight_requests gauge\n"
			       "apiserver_current_inflight_requests{request_kind=\"mutating\"} %d\n"
			       "apiserver_current_inflight_requests{request_kind=\"readOnly\"} %d\n",
			   is.mutating_now, is.readonly_now);
		buf_printf(&b, "# TYPE kubesim_inflight_requests_peak gauge\n"
			       "kubesim_inflight_requests_peak{request_kind=\"mutating\"} %d\n"
			       "kubesim_inflight_requests_peak{request_kind=\"readOnly\"} %d\n",
			   is.mutating_peak, is.readonly_peak);
	}
	buf_append_str(&b, "# HELP apiserver_storage_objects Number of stored objects at the time of last check split by kind.\n# TYPE apiserver_storage_objects gauge\n");
	ks_sim_lock(sim);
	for (size_t i = 0; i < ks_n_resources; i++) {
		if (!(ks_resources[i].flags & KS_RES_STORED))
			continue;
		buf_printf(&b, "apiserver_storage_objects{resource=\"%s%s%s\"} %zu\n", ks_resources[i].plural,
			   ks_resources[i].group[0] ? "." : "", ks_resources[i].group, ks_store_count(sim->store, (int)i));
	}
	size_t hist = ks_store_history_bytes(sim->store);
	unsigned long long rv = (unsigned long long)ks_store_rv(sim->store);
	ks_sim_unlock(sim);
	buf_printf(&b, "# TYPE kubesim_watch_history_bytes gauge\nkubesim_watch_history_bytes %zu\n", hist);
	buf_printf(&b, "# TYPE kubesim_resource_version gauge\nkubesim_resource_version %llu\n", rv);
	if (sim->kubelet) {
		buf_printf(&b, "# TYPE kubesim_kubelet_pods gauge\nkubesim_kubelet_pods %zu\n", ks_kubelet_pod_count(sim->kubelet));
		buf_printf(&b, "# TYPE kubesim_kubelet_processes gauge\nkubesim_kubelet_processes %zu\n", ks_kubelet_process_count(sim->kubelet));
		buf_printf(&b, "# TYPE kubesim_exec_sessions gauge\nkubesim_exec_sessions %zu\n", ks_kubelet_exec_count(sim->kubelet));
	}
	buf_printf(&b, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n", rss_kb() * 1024);
	return buf_take(&b, NULL);
}

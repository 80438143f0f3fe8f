/*
 * store: see store.h. Objects of one resource live in a plain array (a few
 * hundred objects per resource at most in tests and benchmarks; lists are
 * sorted by the caller). The event history is a ring indexed by
 * resourceVersion: event rv sits at rv % cap while rv > current - cap.
 */
#include "kubesim/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"
#include "util/str.h"

typedef struct obj_list {
	cJSON **v;
	size_t n, cap;
} obj_list;

struct ks_store {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	obj_list *res;
	size_t n_res;
	uint64_t rv;
	ks_store_event *ring;
	size_t ring_cap;
	uint64_t oldest; /* oldest rv in the ring (rv+1 when empty) */
	size_t hist_bytes;
};

int ks_store_new(ks_store **out, size_t n_res, size_t history_cap)
{
	ks_store *s = calloc(1, sizeof *s);
	if (!s)
		return err_set(ERR_NOMEM, "out of memory");
	s->res = calloc(n_res, sizeof *s->res);
	s->ring = calloc(history_cap ? history_cap : 1, sizeof *s->ring);
	if (!s->res || !s->ring) {
		free(s->res);
		free(s->ring);
		free(s);
		return err_set(ERR_NOMEM, "out of memory");
	}
	s->n_res = n_res;
	s->ring_cap = history_cap ? history_cap : 1;
	s->rv = 1;
	s->oldest = 2;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = s;
	return 0;
}

static void event_clear(ks_store_event *e)
{
	free(e->ns);
	free(e->name);
	free(e->json);
	memset(e, 0, sizeof *e);
}

void ks_store_free(ks_store *s)
{
	if (!s)
		return;
	for (size_t r = 0; r < s->n_res; r++) {
		for (size_t i = 0; i < s->res[r].n; i++)
			cJSON_Delete(s->res[r].v[i]);
		free(s->res[r].v);
	}
	free(s->res);
	for (size_t i = 0; i < s->ring_cap; i++)
		event_clear(&s->ring[i]);
	free(s->ring);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s);
}

void ks_store_lock(ks_store *s) { pthread_mutex_lock(&s->mu); }
void ks_store_unlock(ks_store *s) { pthread_mutex_unlock(&s->mu); }

static const char *meta_str(const cJSON *o, const char *k)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static long find_idx(ks_store *s, int res, const char *ns, const char *name)
{
	obj_list *l = &s->res[res];
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(meta_str(l->v[i], "name"), name) == 0 &&
		    strcmp(meta_str(l->v[i], "namespace"), ns ? ns : "") == 0)
			return (long)i;
	}
	return -1;
}

cJSON *ks_store_get(ks_store *s, int res, const char *ns, const char *name)
{
	long i = find_idx(s, res, ns, name);
	return i < 0 ? NULL : s->res[res].v[i];
}

cJSON *ks_store_find_uid(ks_store *s, int res, const char *uid)
{
	obj_list *l = &s->res[res];
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(meta_str(l->v[i], "uid"), uid) == 0)
			return l->v[i];
	return NULL;
}

static void record(ks_store *s, int res, int type, const cJSON *obj)
{
	uint64_t rv = s->rv;
	ks_store_event *e = &s->ring[rv % s->ring_cap];
	if (e->json) {
		s->hist_bytes -= strlen(e->json);
		event_clear(e);
	}
	e->rv = rv;
	e->res = res;
	e->type = type;
	e->ns = str_dup(meta_str(obj, "namespace"));
	e->name = str_dup(meta_str(obj, "name"));
	e->json = cJSON_PrintUnformatted(obj);
	if (e->json)
		s->hist_bytes += strlen(e->json);
	if (rv >= s->ring_cap && s->oldest < rv - s->ring_cap + 1)
		s->oldest = rv - s->ring_cap + 1;
	if (s->oldest > rv)
		s->oldest = rv;
	pthread_cond_broadcast(&s->cond);
}

static void set_rv(cJSON *obj, uint64_t rv)
{
	cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	if (!m)
		m = cJSON_AddObjectToObject(obj, "metadata");
	char b[32];
	snprintf(b, sizeof b, "%llu", (unsigned long long)rv);
	cJSON_DeleteItemFromObjectCaseSensitive(m, "resourceVersion");
	cJSON_AddStringToObject(m, "resourceVersion", b);
}

cJSON *ks_store_put(ks_store *s, int res, cJSON *obj)
{
	obj_list *l = &s->res[res];
	long i = find_idx(s, res, meta_str(obj, "namespace"), meta_str(obj, "name"));
	s->rv++;
	set_rv(obj, s->rv);
	if (i >= 0) {
		cJSON_Delete(l->v[i]);
		l->v[i] = obj;
		record(s, res, KS_EV_MODIFIED, obj);
		return obj;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		cJSON **nv = realloc(l->v, nc * sizeof *nv);
		if (!nv) {
			cJSON_Delete(obj);
			return NULL;
		}
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = obj;
	record(s, res, KS_EV_ADDED, obj);
	return obj;
}

int ks_store_remove(ks_store *s, int res, const char *ns, const char *name)
{
	obj_list *l = &s->res[res];
	long i = find_idx(s, res, ns, name);
	if (i < 0)
		return ERR_NOTFOUND;
	cJSON *obj = l->v[i];
	memmove(&l->v[i], &l->v[i + 1], (l->n - (size_t)i - 1) * sizeof *l->v);
	l->n--;
	s->rv++;
	set_rv(obj, s->rv);
	record(s, res, KS_EV_DELETED, obj);
	cJSON_Delete(obj);
	return 0;
}

size_t ks_store_count(ks_store *s, int res) { return s->res[res].n; }
cJSON *ks_store_at(ks_store *s, int res, size_t i) { return s->res[res].v[i]; }
uint64_t ks_store_rv(ks_store *s) { return s->rv; }
uint64_t ks_store_oldest_rv(ks_store *s) { return s->oldest; }
size_t ks_store_history_bytes(ks_store *s) { return s->hist_bytes; }

const ks_store_event *ks_store_event_at(ks_store *s, uint64_t rv, int *gone)
{
	*gone = 0;
	if (rv > s->rv)
		return NULL;
	if (rv < s->oldest) {
		*gone = 1;
		return NULL;
	}
	ks_store_event *e = &s->ring[rv % s->ring_cap];
	return e->rv == rv && e->json ? e : NULL;
}

void ks_store_wait(ks_store *s, uint64_t rv, int64_t timeout_ms)
{
	if (s->rv > rv)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&s->cond, &s->mu, &ts);
}

void ks_store_broadcast(ks_store *s) { pthread_cond_broadcast(&s->cond); }

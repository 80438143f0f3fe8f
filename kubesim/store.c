/*
 * store: see store.h. Objects of one resource live in a plain array, in
 * no particular order (lists are sorted by the caller; a removal moves the
 * last object into the hole), found by two hash indexes: (resource,
 * namespace, name) and (resource, uid) to the array position. Without them
 * every get, put and uid lookup was a scan, and with thousands of objects
 * (bench part 4: 1,000 Jobs, their pods and their Events) the scans under
 * the store lock were what every request waited for. The event history is
 * a ring indexed by resourceVersion: event rv sits at rv % cap while
 * rv > current - cap.
 */
#include "kubesim/store.h"

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"
#include "util/str.h"

typedef struct obj_list {
	cJSON **v;
	uint64_t *seq;  /* when each object was added (ks_store_oldest) */
	size_t n, cap;
} obj_list;

/* A hash index from (res, k1, k2) to an array position; k2 may be NULL. */
typedef struct ix_node {
	struct ix_node *next;
	uint64_t h;
	int res;
	char *k1, *k2;
	size_t pos;
} ix_node;

typedef struct ix {
	ix_node **b;
	size_t nb, n;
} ix;

static uint64_t ix_hash(int res, const char *k1, const char *k2)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)(unsigned)res;

	for (const unsigned char *p = (const unsigned char *)k1; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h = (h ^ 0xffu) * 1099511628211ULL;
	for (const unsigned char *p = (const unsigned char *)(k2 ? k2 : ""); *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h;
}

static int ix_same(const ix_node *e, uint64_t h, int res, const char *k1, const char *k2)
{
	return e->h == h && e->res == res && strcmp(e->k1, k1) == 0 &&
	       strcmp(e->k2 ? e->k2 : "", k2 ? k2 : "") == 0;
}

static ix_node *ix_find(const ix *x, int res, const char *k1, const char *k2)
{
	uint64_t h;

	if (!x->nb)
		return NULL;
	h = ix_hash(res, k1, k2);
	for (ix_node *e = x->b[h & (x->nb - 1)]; e; e = e->next)
		if (ix_same(e, h, res, k1, k2))
			return e;
	return NULL;
}

static int ix_grow(ix *x)
{
	size_t nb = x->nb ? x->nb * 2 : 1024;
	ix_node **b = calloc(nb, sizeof *b);

	if (!b)
		return -1;
	for (size_t i = 0; i < x->nb; i++) {
		ix_node *e = x->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[e->h & (nb - 1)];
			b[e->h & (nb - 1)] = e;
		}
	}
	free(x->b);
	x->b = b;
	x->nb = nb;
	return 0;
}

static int ix_add(ix *x, int res, const char *k1, const char *k2, size_t pos)
{
	ix_node *e;

	if (x->n >= x->nb && ix_grow(x) != 0 && !x->nb)
		return -1;
	e = calloc(1, sizeof *e);
	if (!e)
		return -1;
	e->h = ix_hash(res, k1, k2);
	e->res = res;
	e->k1 = str_dup(k1);
	e->k2 = k2 ? str_dup(k2) : NULL;
	e->pos = pos;
	if (!e->k1 || (k2 && !e->k2)) {
		free(e->k1);
		free(e->k2);
		free(e);
		return -1;
	}
	e->next = x->b[e->h & (x->nb - 1)];
	x->b[e->h & (x->nb - 1)] = e;
	x->n++;
	return 0;
}

/* Remove the entry for (res, k1, k2) at pos. */
static void ix_del(ix *x, int res, const char *k1, const char *k2, size_t pos)
{
	uint64_t h;

	if (!x->nb)
		return;
	h = ix_hash(res, k1, k2);
	for (ix_node **pp = &x->b[h & (x->nb - 1)]; *pp; pp = &(*pp)->next) {
		ix_node *e = *pp;
		if (e->pos == pos && ix_same(e, h, res, k1, k2)) {
			*pp = e->next;
			free(e->k1);
			free(e->k2);
			free(e);
			x->n--;
			return;
		}
	}
}

static void ix_set_pos(ix *x, int res, const char *k1, const char *k2, size_t from, size_t to)
{
	uint64_t h;

	if (!x->nb)
		return;
	h = ix_hash(res, k1, k2);
	for (ix_node *e = x->b[h & (x->nb - 1)]; e; e = e->next)
		if (e->pos == from && ix_same(e, h, res, k1, k2)) {
			e->pos = to;
			return;
		}
}

static void ix_free(ix *x)
{
	for (size_t i = 0; i < x->nb; i++) {
		ix_node *e = x->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e->k1);
			free(e->k2);
			free(e);
		}
	}
	free(x->b);
	memset(x, 0, sizeof *x);
}

struct ks_store {
	pthread_mutex_t mu;
	pthread_t owner; /* the thread holding mu, when owned */
	int owned;
	pthread_cond_t cond;
	obj_list *res;
	size_t n_res;
	uint64_t rv;
	ks_store_event *ring;
	size_t ring_cap;
	uint64_t oldest; /* oldest rv in the ring (rv+1 when empty) */
	size_t hist_bytes;
	ks_store_watcher **watchers; /* per resource, registered watchers */
	ix by_name;  /* (res, namespace, name) -> position in res[res] */
	ix by_uid;   /* (res, uid) -> position, objects with a uid */
};

int ks_store_new(ks_store **out, size_t n_res, size_t history_cap)
{
	ks_store *s = calloc(1, sizeof *s);
	if (!s)
		return err_set(ERR_NOMEM, "out of memory");
	s->res = calloc(n_res, sizeof *s->res);
	s->ring = calloc(history_cap ? history_cap : 1, sizeof *s->ring);
	s->watchers = calloc(n_res ? n_res : 1, sizeof *s->watchers);
	if (!s->res || !s->ring || !s->watchers) {
		free(s->res);
		free(s->ring);
		free(s->watchers);
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
		free(s->res[r].seq);
	}
	free(s->res);
	for (size_t i = 0; i < s->ring_cap; i++)
		event_clear(&s->ring[i]);
	free(s->ring);
	free(s->watchers);
	ix_free(&s->by_name);
	ix_free(&s->by_uid);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s);
}

void ks_store_lock(ks_store *s)
{
	pthread_mutex_lock(&s->mu);
	s->owner = pthread_self();
	s->owned = 1;
}

/* Every change must be made under the store lock, and only its holder may
 * release it (a plain mutex lets any thread unlock it, and lets others in
 * while its holder still reads): a change made without it frees objects
 * that a lock holder may be reading. Checked, since the damage shows far
 * from the cause (a heap corruption minutes later). */
static void assert_locked(ks_store *s, const char *what)
{
	if (!s->owned || !pthread_equal(s->owner, pthread_self())) {
		void *bt[32];
		int n = backtrace(bt, 32);
		fprintf(stderr, "kubesim: internal error: %s without the store lock\n", what);
		backtrace_symbols_fd(bt, n, 2);
		abort();
	}
}

void ks_store_unlock(ks_store *s)
{
	assert_locked(s, "ks_store_unlock");
	s->owned = 0;
	pthread_mutex_unlock(&s->mu);
}

/* pthread_cond_*wait releases mu and takes it back */
static void cond_wait_locked(ks_store *s, pthread_cond_t *c, const struct timespec *ts)
{
	s->owned = 0;
	pthread_cond_timedwait(c, &s->mu, ts);
	s->owner = pthread_self();
	s->owned = 1;
}

static const char *meta_str(const cJSON *o, const char *k)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static long find_idx(ks_store *s, int res, const char *ns, const char *name)
{
	ix_node *e = ix_find(&s->by_name, res, ns ? ns : "", name ? name : "");
	return e ? (long)e->pos : -1;
}

cJSON *ks_store_get(ks_store *s, int res, const char *ns, const char *name)
{
	long i = find_idx(s, res, ns, name);
	return i < 0 ? NULL : s->res[res].v[i];
}

cJSON *ks_store_find_uid(ks_store *s, int res, const char *uid)
{
	ix_node *e;

	if (!uid || !uid[0])
		return NULL;
	e = ix_find(&s->by_uid, res, uid, NULL);
	return e ? s->res[res].v[e->pos] : NULL;
}

/* Queue change rv of obj to the watchers of res it matches, and wake them. */
static void dispatch(ks_store *s, int res, uint64_t rv, const cJSON *obj)
{
	if (res < 0 || (size_t)res >= s->n_res)
		return;
	for (ks_store_watcher *w = s->watchers[res]; w; w = w->next) {
		if (w->overflow || (w->match && !w->match(w->ctx, obj)))
			continue;
		if (w->n == w->cap) {
			size_t nc = w->cap ? w->cap * 2 : 16;
			uint64_t *nv = nc <= KS_STORE_WATCHER_QUEUE_MAX ? realloc(w->rvs, nc * sizeof *nv) : NULL;

			if (!nv) {
				/* the watcher scans the history instead */
				w->overflow = 1;
				w->n = 0;
				pthread_cond_signal(&w->cond);
				continue;
			}
			w->rvs = nv;
			w->cap = nc;
		}
		w->rvs[w->n++] = rv;
		pthread_cond_signal(&w->cond);
	}
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
	dispatch(s, res, rv, obj);
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
	assert_locked(s, "ks_store_put");
	obj_list *l = &s->res[res];
	const char *ns = meta_str(obj, "namespace"), *name = meta_str(obj, "name");
	const char *uid = meta_str(obj, "uid");
	long i = find_idx(s, res, ns, name);
	if (i >= 0) {
		const char *old_uid = meta_str(l->v[i], "uid");
		if (strcmp(old_uid, uid) != 0) {
			if (uid[0] && ix_add(&s->by_uid, res, uid, NULL, (size_t)i) != 0) {
				cJSON_Delete(obj);
				return NULL;
			}
			if (old_uid[0])
				ix_del(&s->by_uid, res, old_uid, NULL, (size_t)i);
		}
		s->rv++;
		set_rv(obj, s->rv);
		cJSON_Delete(l->v[i]);
		l->v[i] = obj;
		record(s, res, KS_EV_MODIFIED, obj);
		return obj;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 16;
		cJSON **nv = realloc(l->v, nc * sizeof *nv);
		if (nv)
			l->v = nv;
		uint64_t *ns2 = nv ? realloc(l->seq, nc * sizeof *ns2) : NULL;
		if (!ns2) {
			cJSON_Delete(obj);
			return NULL;
		}
		l->seq = ns2;
		l->cap = nc;
	}
	if (ix_add(&s->by_name, res, ns, name, l->n) != 0) {
		cJSON_Delete(obj);
		return NULL;
	}
	if (uid[0] && ix_add(&s->by_uid, res, uid, NULL, l->n) != 0) {
		ix_del(&s->by_name, res, ns, name, l->n);
		cJSON_Delete(obj);
		return NULL;
	}
	s->rv++;
	set_rv(obj, s->rv);
	l->seq[l->n] = s->rv;
	l->v[l->n++] = obj;
	record(s, res, KS_EV_ADDED, obj);
	return obj;
}

int ks_store_remove(ks_store *s, int res, const char *ns, const char *name)
{
	assert_locked(s, "ks_store_remove");
	obj_list *l = &s->res[res];
	long i = find_idx(s, res, ns, name);
	if (i < 0)
		return ERR_NOTFOUND;
	cJSON *obj = l->v[i];
	size_t last = l->n - 1;
	ix_del(&s->by_name, res, meta_str(obj, "namespace"), meta_str(obj, "name"), (size_t)i);
	if (meta_str(obj, "uid")[0])
		ix_del(&s->by_uid, res, meta_str(obj, "uid"), NULL, (size_t)i);
	if ((size_t)i != last) {
		/* the last object fills the hole */
		cJSON *moved = l->v[last];
		l->v[i] = moved;
		l->seq[i] = l->seq[last];
		ix_set_pos(&s->by_name, res, meta_str(moved, "namespace"), meta_str(moved, "name"), last, (size_t)i);
		if (meta_str(moved, "uid")[0])
			ix_set_pos(&s->by_uid, res, meta_str(moved, "uid"), NULL, last, (size_t)i);
	}
	l->n--;
	l->v[l->n] = NULL; /* a stale read past the end finds nothing, not a freed object */
	s->rv++;
	set_rv(obj, s->rv);
	record(s, res, KS_EV_DELETED, obj);
	cJSON_Delete(obj);
	return 0;
}

size_t ks_store_count(ks_store *s, int res) { return s->res[res].n; }

size_t ks_store_oldest(ks_store *s, int res)
{
	obj_list *l = &s->res[res];
	size_t best = 0;
	for (size_t i = 1; i < l->n; i++)
		if (l->seq[i] < l->seq[best])
			best = i;
	return best;
}
cJSON *ks_store_at(ks_store *s, int res, size_t i) { return i < s->res[res].n ? s->res[res].v[i] : NULL; }
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

/* *ts = CLOCK_MONOTONIC now + timeout_ms (the store's conditions use that
 * clock). */
static void deadline_in(struct timespec *ts, int64_t timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void ks_store_wait(ks_store *s, uint64_t rv, int64_t timeout_ms)
{
	if (s->rv > rv)
		return;
	struct timespec ts;
	deadline_in(&ts, timeout_ms);
	cond_wait_locked(s, &s->cond, &ts);
}

void ks_store_broadcast(ks_store *s)
{
	pthread_cond_broadcast(&s->cond);
	for (size_t r = 0; r < s->n_res; r++) {
		for (ks_store_watcher *w = s->watchers[r]; w; w = w->next) {
			w->wake = 1;
			pthread_cond_signal(&w->cond);
		}
	}
}

int ks_store_watcher_add(ks_store *s, ks_store_watcher *w)
{
	pthread_condattr_t ca;

	if (w->res < 0 || (size_t)w->res >= s->n_res)
		return err_set(ERR_INVALID, "no such resource");
	w->rvs = NULL;
	w->n = w->cap = 0;
	w->overflow = 0;
	w->wake = 0;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	w->prev = NULL;
	w->next = s->watchers[w->res];
	if (w->next)
		w->next->prev = w;
	s->watchers[w->res] = w;
	w->registered = 1;
	return 0;
}

void ks_store_watcher_remove(ks_store *s, ks_store_watcher *w)
{
	if (!w->registered)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		s->watchers[w->res] = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
	free(w->rvs);
	w->rvs = NULL;
	w->n = w->cap = 0;
	pthread_cond_destroy(&w->cond);
	w->registered = 0;
}

void ks_store_watcher_wait(ks_store *s, ks_store_watcher *w, int64_t timeout_ms)
{
	struct timespec ts;

	if (w->n || w->overflow || w->wake) {
		w->wake = 0;
		return;
	}
	deadline_in(&ts, timeout_ms);
	cond_wait_locked(s, &w->cond, &ts);
	w->wake = 0;
}

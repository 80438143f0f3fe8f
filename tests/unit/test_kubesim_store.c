/*
 * kubesim/store: the object store's indexes (name and uid lookups stay
 * right through puts, replacements and removals, which move the last
 * object into the hole), the oldest object, and the watchers: a change is
 * queued only to the watchers whose match function it passes, in order,
 * with an overflow flag past the queue's cap and a wake-up for everyone on
 * a broadcast.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "kubesim/store.h"
#include "util/clock.h"
#include "util/err.h"

enum { R_PODS = 0, R_JOBS = 1, N_RES = 2 };

static cJSON *obj(const char *ns, const char *name, const char *uid, const char *app)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *m = cJSON_AddObjectToObject(o, "metadata");

	cJSON_AddStringToObject(m, "name", name);
	if (ns)
		cJSON_AddStringToObject(m, "namespace", ns);
	if (uid)
		cJSON_AddStringToObject(m, "uid", uid);
	if (app)
		cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "labels"), "app", app);
	return o;
}

static const char *meta(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

Test(kubesim_store, lookups_by_name_and_uid_survive_removals)
{
	ks_store *s = NULL;
	char name[32], uid[32];

	cr_assert_eq(ks_store_new(&s, N_RES, 100), 0);
	ks_store_lock(s);
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof name, "p%d", i);
		snprintf(uid, sizeof uid, "u%d", i);
		cr_assert_not_null(ks_store_put(s, R_PODS, obj(i % 2 ? "a" : "b", name, uid, NULL)));
	}
	/* the same name in another namespace or resource is another object */
	cr_assert_not_null(ks_store_put(s, R_JOBS, obj("a", "p1", "j1", NULL)));
	cr_assert_eq(ks_store_count(s, R_PODS), 2000);
	/* remove every third, from the front (each moves the last one) */
	for (int i = 0; i < 2000; i += 3) {
		snprintf(name, sizeof name, "p%d", i);
		cr_assert_eq(ks_store_remove(s, R_PODS, i % 2 ? "a" : "b", name), 0);
		cr_assert_eq(ks_store_remove(s, R_PODS, i % 2 ? "a" : "b", name), ERR_NOTFOUND);
	}
	for (int i = 0; i < 2000; i++) {
		cJSON *o, *u;

		snprintf(name, sizeof name, "p%d", i);
		snprintf(uid, sizeof uid, "u%d", i);
		o = ks_store_get(s, R_PODS, i % 2 ? "a" : "b", name);
		u = ks_store_find_uid(s, R_PODS, uid);
		if (i % 3 == 0) {
			cr_assert_null(o, "%s is still there", name);
			cr_assert_null(u);
		} else {
			cr_assert_not_null(o, "%s is lost", name);
			cr_assert_str_eq(meta(o, "name"), name);
			cr_assert_eq(u, o, "uid %s finds another object", uid);
		}
		cr_assert_null(ks_store_get(s, R_PODS, i % 2 ? "b" : "a", name));
	}
	cr_assert_str_eq(meta(ks_store_get(s, R_JOBS, "a", "p1"), "uid"), "j1");
	cr_assert_null(ks_store_find_uid(s, R_JOBS, "u1"));
	/* every position holds a distinct live object */
	for (size_t i = 0; i < ks_store_count(s, R_PODS); i++) {
		cJSON *o = ks_store_at(s, R_PODS, i);
		cr_assert_eq(ks_store_get(s, R_PODS, meta(o, "namespace"), meta(o, "name")), o);
	}
	ks_store_unlock(s);
	ks_store_free(s);
}

/* A loop that let go of the lock may come back with an index past the new
 * end: what it finds there must be nothing, not the pointer of an object
 * that moved into a hole (and may be freed by now). */
Test(kubesim_store, nothing_past_the_end_after_a_removal)
{
	ks_store *s = NULL;

	cr_assert_eq(ks_store_new(&s, N_RES, 100), 0);
	ks_store_lock(s);
	cr_assert_not_null(ks_store_put(s, R_JOBS, obj("a", "j0", "u0", NULL)));
	cr_assert_not_null(ks_store_put(s, R_JOBS, obj("a", "j1", "u1", NULL)));
	cr_assert_not_null(ks_store_put(s, R_JOBS, obj("a", "j2", "u2", NULL)));
	cr_assert_eq(ks_store_remove(s, R_JOBS, "a", "j0"), 0);
	cr_assert_eq(ks_store_count(s, R_JOBS), 2);
	cr_assert_str_eq(meta(ks_store_at(s, R_JOBS, 0), "name"), "j2", "the last one took the hole");
	cr_assert_null(ks_store_at(s, R_JOBS, 2));
	cr_assert_null(ks_store_at(s, R_JOBS, 1000));
	ks_store_unlock(s);
	ks_store_free(s);
}

/* a change made without the lock would free what a holder is reading */
Test(kubesim_store, a_change_without_the_lock_aborts, .signal = SIGABRT)
{
	ks_store *s = NULL;

	cr_assert_eq(ks_store_new(&s, N_RES, 100), 0);
	ks_store_put(s, R_PODS, obj("a", "p", "u", NULL));
	ks_store_free(s);
}

static void *unlock_other(void *arg)
{
	ks_store_unlock(arg);
	return NULL;
}

/* a plain mutex lets any thread release it, and others in while its holder
 * still reads: only the holder may */
Test(kubesim_store, an_unlock_by_another_thread_aborts, .signal = SIGABRT)
{
	ks_store *s = NULL;
	pthread_t t;

	cr_assert_eq(ks_store_new(&s, N_RES, 100), 0);
	ks_store_lock(s);
	pthread_create(&t, NULL, unlock_other, s);
	pthread_join(t, NULL);
	ks_store_unlock(s);
	ks_store_free(s);
}

Test(kubesim_store, a_replacement_keeps_the_place_and_follows_a_new_uid)
{
	ks_store *s = NULL;
	cJSON *o;

	cr_assert_eq(ks_store_new(&s, N_RES, 100), 0);
	ks_store_lock(s);
	ks_store_put(s, R_PODS, obj("a", "x", "u1", "old"));
	ks_store_put(s, R_PODS, obj("a", "y", "u2", NULL));
	o = ks_store_put(s, R_PODS, obj("a", "x", "u1", "new"));
	cr_assert_eq(ks_store_count(s, R_PODS), 2);
	cr_assert_eq(ks_store_find_uid(s, R_PODS, "u1"), o);
	cr_assert_eq(ks_store_get(s, R_PODS, "a", "x"), o);
	/* the same name with another uid (deleted and created again) */
	o = ks_store_put(s, R_PODS, obj("a", "x", "u9", NULL));
	cr_assert_null(ks_store_find_uid(s, R_PODS, "u1"));
	cr_assert_eq(ks_store_find_uid(s, R_PODS, "u9"), o);
	/* x was added first: it is the oldest, whatever replaced it */
	cr_assert_str_eq(meta(ks_store_at(s, R_PODS, ks_store_oldest(s, R_PODS)), "name"), "x");
	ks_store_remove(s, R_PODS, "a", "x");
	cr_assert_str_eq(meta(ks_store_at(s, R_PODS, ks_store_oldest(s, R_PODS)), "name"), "y");
	ks_store_unlock(s);
	ks_store_free(s);
}

Test(kubesim_store, oldest_follows_insertion_order_through_removals)
{
	ks_store *s = NULL;
	char name[32];

	cr_assert_eq(ks_store_new(&s, N_RES, 100), 0);
	ks_store_lock(s);
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof name, "e%02d", i);
		ks_store_put(s, R_PODS, obj("a", name, NULL, NULL));
	}
	/* dropping the oldest one at a time drops them in order */
	for (int i = 0; i < 50; i++) {
		cJSON *o = ks_store_at(s, R_PODS, ks_store_oldest(s, R_PODS));
		char want[32];

		snprintf(want, sizeof want, "e%02d", i);
		cr_assert_str_eq(meta(o, "name"), want);
		snprintf(name, sizeof name, "%s", meta(o, "name"));
		ks_store_remove(s, R_PODS, "a", name);
	}
	ks_store_unlock(s);
	ks_store_free(s);
}

static int match_app(void *ctx, const cJSON *o)
{
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "metadata"), "labels");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(l, "app");

	return cJSON_IsString(v) && strcmp(v->valuestring, ctx) == 0;
}

Test(kubesim_store, a_change_is_queued_only_to_the_watchers_it_matches)
{
	ks_store *s = NULL;
	ks_store_watcher a = { .res = R_PODS, .match = match_app, .ctx = "a" };
	ks_store_watcher b = { .res = R_PODS, .match = match_app, .ctx = "b" };
	ks_store_watcher all = { .res = R_PODS };
	ks_store_watcher jobs = { .res = R_JOBS };
	uint64_t rv_a1, rv_a2;

	cr_assert_eq(ks_store_new(&s, N_RES, 100), 0);
	ks_store_lock(s);
	ks_store_put(s, R_PODS, obj("n", "before", "u0", "a")); /* before: not queued */
	cr_assert_eq(ks_store_watcher_add(s, &a), 0);
	cr_assert_eq(ks_store_watcher_add(s, &b), 0);
	cr_assert_eq(ks_store_watcher_add(s, &all), 0);
	cr_assert_eq(ks_store_watcher_add(s, &jobs), 0);
	ks_store_put(s, R_PODS, obj("n", "p1", "u1", "a"));
	rv_a1 = ks_store_rv(s);
	ks_store_put(s, R_PODS, obj("n", "p2", "u2", "b"));
	ks_store_put(s, R_PODS, obj("n", "p3", "u3", NULL));
	ks_store_remove(s, R_PODS, "n", "p1"); /* DELETED, with its final labels */
	rv_a2 = ks_store_rv(s);

	cr_assert_eq(a.n, 2);
	cr_assert_eq(a.rvs[0], rv_a1);
	cr_assert_eq(a.rvs[1], rv_a2);
	cr_assert_eq(b.n, 1);
	cr_assert_eq(all.n, 4);
	cr_assert_eq(jobs.n, 0, "a pod change was queued to a Job watcher");
	cr_assert_eq(ks_store_event_at(s, a.rvs[1], &(int){ 0 })->type, KS_EV_DELETED);

	/* nothing after removal */
	ks_store_watcher_remove(s, &b);
	ks_store_put(s, R_PODS, obj("n", "p4", "u4", "b"));
	cr_assert_eq(b.n, 0);
	cr_assert_eq(all.n, 5);

	ks_store_watcher_remove(s, &a);
	ks_store_watcher_remove(s, &all);
	ks_store_watcher_remove(s, &jobs);
	ks_store_unlock(s);
	ks_store_free(s);
}

Test(kubesim_store, a_full_queue_overflows_instead_of_growing)
{
	ks_store *s = NULL;
	ks_store_watcher w = { .res = R_PODS };
	char name[32];

	cr_assert_eq(ks_store_new(&s, N_RES, 100), 0);
	ks_store_lock(s);
	cr_assert_eq(ks_store_watcher_add(s, &w), 0);
	for (int i = 0; i < KS_STORE_WATCHER_QUEUE_MAX + 10; i++) {
		snprintf(name, sizeof name, "p%d", i % 10);
		ks_store_put(s, R_PODS, obj("n", name, NULL, NULL));
	}
	cr_assert(w.overflow, "the queue kept growing");
	cr_assert_eq(w.n, 0);
	cr_assert_leq(w.cap, KS_STORE_WATCHER_QUEUE_MAX);
	ks_store_watcher_remove(s, &w);
	ks_store_unlock(s);
	ks_store_free(s);
}

typedef struct waiter {
	ks_store *s;
	ks_store_watcher *w;
	int64_t waited_ms;
	size_t seen;
} waiter;

static void *wait_once(void *arg)
{
	waiter *t = arg;
	int64_t t0 = clock_mono_ms();

	ks_store_lock(t->s);
	ks_store_watcher_wait(t->s, t->w, 10000);
	t->seen = t->w->n;
	ks_store_unlock(t->s);
	t->waited_ms = clock_mono_ms() - t0;
	return NULL;
}

Test(kubesim_store, a_watcher_sleeps_through_changes_it_does_not_match, .timeout = 30)
{
	ks_store *s = NULL;
	ks_store_watcher w = { .res = R_PODS, .match = match_app, .ctx = "mine" };
	waiter t = { 0 };
	pthread_t th;

	cr_assert_eq(ks_store_new(&s, N_RES, 1000), 0);
	ks_store_lock(s);
	cr_assert_eq(ks_store_watcher_add(s, &w), 0);
	ks_store_unlock(s);
	t.s = s;
	t.w = &w;
	cr_assert_eq(pthread_create(&th, NULL, wait_once, &t), 0);
	clock_sleep_ms(200);
	for (int i = 0; i < 100; i++) {
		char name[32];

		snprintf(name, sizeof name, "other%d", i);
		ks_store_lock(s);
		ks_store_put(s, R_PODS, obj("n", name, NULL, "theirs"));
		ks_store_put(s, R_JOBS, obj("n", name, NULL, "mine"));
		ks_store_unlock(s);
	}
	clock_sleep_ms(300);
	ks_store_lock(s);
	ks_store_put(s, R_PODS, obj("n", "p", NULL, "mine"));
	ks_store_unlock(s);
	pthread_join(th, NULL);
	/* one wait: had a change it does not match woken it, nothing would
	 * have been queued yet (the matching one came 300 ms later) */
	cr_assert_eq(t.seen, 1, "woken by a change it does not match (%zu queued)", t.seen);
	cr_assert_lt(t.waited_ms, 9000, "the matching change did not wake it");

	/* a broadcast wakes it with nothing queued */
	ks_store_lock(s);
	w.n = 0;
	ks_store_unlock(s);
	cr_assert_eq(pthread_create(&th, NULL, wait_once, &t), 0);
	clock_sleep_ms(200);
	ks_store_lock(s);
	ks_store_broadcast(s);
	ks_store_unlock(s);
	pthread_join(th, NULL);
	cr_assert_eq(t.seen, 0);
	cr_assert_lt(t.waited_ms, 9000, "ks_store_broadcast did not wake it");

	ks_store_lock(s);
	ks_store_watcher_remove(s, &w);
	ks_store_unlock(s);
	ks_store_free(s);
}

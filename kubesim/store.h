/*
 * store: kubesim's object store. Objects are cJSON documents kept per
 * resource (an index into the resource table), keyed by namespace and
 * name. Every change takes the next resourceVersion (one global counter,
 * as etcd's revision) and appends exactly one watch event to a bounded
 * history, so event N sits at a known place in the ring and a watch from
 * a too-old resourceVersion is detected exactly (410 Expired).
 *
 * Locking: one mutex for the whole store (ks_store_lock); every call
 * below except new/free must be made with it held. Watchers wait on the
 * store's condition variable (ks_store_wait) for new events.
 */
#ifndef KUBESIM_STORE_H
#define KUBESIM_STORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef struct ks_store ks_store;

enum ks_event_type { KS_EV_ADDED = 0, KS_EV_MODIFIED, KS_EV_DELETED };

/* One recorded change. json is the object as serialized at that version. */
typedef struct ks_store_event {
	uint64_t rv;
	int res;
	int type;
	char *ns;
	char *name;
	char *json;
} ks_store_event;

/* Create a store for n_res resources keeping history_cap events.
 * Caller owns the result; free with ks_store_free(). */
int ks_store_new(ks_store **out, size_t n_res, size_t history_cap);
void ks_store_free(ks_store *s);

void ks_store_lock(ks_store *s);
void ks_store_unlock(ks_store *s);

/* The stored object (borrowed; valid while the lock is held and until the
 * next change of that object), or NULL. ns is "" for cluster scope. */
cJSON *ks_store_get(ks_store *s, int res, const char *ns, const char *name);
/* The object of resource res with this metadata.uid, or NULL. */
cJSON *ks_store_find_uid(ks_store *s, int res, const char *uid);

/* Store obj (taking ownership), replacing the object with the same
 * namespace and name if any: assigns metadata.resourceVersion and records
 * ADDED or MODIFIED. Returns the stored object (borrowed). */
cJSON *ks_store_put(ks_store *s, int res, cJSON *obj);

/* Remove an object: takes the next resourceVersion, records DELETED with
 * the final state. 0 or ERR_NOTFOUND. */
int ks_store_remove(ks_store *s, int res, const char *ns, const char *name);

/* Objects of a resource, in no particular order: count and i-th. A
 * removal moves the last object into the removed one's place, so a loop
 * that removes the i-th object looks at i again. */
size_t ks_store_count(ks_store *s, int res);
cJSON *ks_store_at(ks_store *s, int res, size_t i);
/* The index of the object of res added longest ago (count must be > 0). */
size_t ks_store_oldest(ks_store *s, int res);

/* The current (latest) resourceVersion. */
uint64_t ks_store_rv(ks_store *s);

/* The event with resourceVersion rv (borrowed), NULL if rv is newer than
 * the store. ERR_GONE via *gone when rv has left the history. */
const ks_store_event *ks_store_event_at(ks_store *s, uint64_t rv, int *gone);
/* The oldest resourceVersion still in the history. */
uint64_t ks_store_oldest_rv(ks_store *s);

/* Wait (lock held) until the store's rv passes rv or timeout_ms passes.
 * Also wakes on ks_store_broadcast. */
void ks_store_wait(ks_store *s, uint64_t rv, int64_t timeout_ms);
/* Wake every waiter: ks_store_wait's and every watcher's. */
void ks_store_broadcast(ks_store *s);

/*
 * Watchers: a watch registers what it wants (a resource and a match
 * function, typically namespace + label and field selectors) and is woken
 * only by the changes it matches. Each change is matched once, on the live
 * object, when it is recorded, and its resourceVersion queued to the
 * watchers it matches, as upstream's watch cache dispatches an event to
 * the watchers whose filter it passes (staging/src/k8s.io/apiserver/pkg/
 * storage/cacher/cacher.go dispatchEvent). Without this every change woke
 * every watch and each re-parsed the event to test its selector, all
 * under the store lock: with 1,000 pod watches open, every pod status
 * update cost 1,000 JSON parses (bench part 4).
 *
 * The caller owns the struct and sets res, match and ctx before
 * ks_store_watcher_add; the other fields are the store's, read and
 * changed only with the lock held. match is called with the lock held,
 * from whichever thread makes the change; it must not call the store.
 */
#define KS_STORE_WATCHER_QUEUE_MAX 4096

typedef struct ks_store_watcher {
	int res;
	int (*match)(void *ctx, const cJSON *obj); /* NULL: every object of res */
	void *ctx;
	/* the store's (lock held): */
	uint64_t *rvs;       /* matched changes not yet taken, oldest first */
	size_t n, cap;
	int overflow;        /* more than KS_STORE_WATCHER_QUEUE_MAX queued: rvs
				was dropped, the watcher must scan the history */
	int wake;            /* ks_store_broadcast was called */
	int registered;
	pthread_cond_t cond;
	struct ks_store_watcher *next, *prev;
} ks_store_watcher;

/* Register w (lock held). Changes recorded from now on are queued to it
 * when they match. 0 or ERR_NOMEM. */
int ks_store_watcher_add(ks_store *s, ks_store_watcher *w);
/* Unregister w and free its queue (lock held). No-op when not registered. */
void ks_store_watcher_remove(ks_store *s, ks_store_watcher *w);
/* Wait (lock held) until w has a queued change, overflowed, is woken by
 * ks_store_broadcast, or timeout_ms passes. Returns at once in the first
 * three cases. Clears the broadcast flag. */
void ks_store_watcher_wait(ks_store *s, ks_store_watcher *w, int64_t timeout_ms);

/* Bytes held by the event history (for /metrics). */
size_t ks_store_history_bytes(ks_store *s);

#endif

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

/* Objects of a resource, in no particular order: count and i-th. */
size_t ks_store_count(ks_store *s, int res);
cJSON *ks_store_at(ks_store *s, int res, size_t i);

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
void ks_store_broadcast(ks_store *s);

/* Bytes held by the event history (for /metrics). */
size_t ks_store_history_bytes(ks_store *s);

#endif

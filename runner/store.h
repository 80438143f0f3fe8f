/*
 * store: the run store, one SQLite database (WAL) under --data-dir. Every
 * accepted run is recorded at acceptance, so it never disappears from GET
 * /v1/runs, and again when it ends; finished runs are deleted after the
 * retention period. Thread-safe: one connection behind one mutex.
 */
#ifndef RUNNER_STORE_H
#define RUNNER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef struct runner_store runner_store;

/* Open or create DIR/runs.db. Caller frees with runner_store_free(). */
int runner_store_open(runner_store **out, const char *dir);
void runner_store_free(runner_store *s);

/* Record a run: insert or replace the row. doc is its run document JSON
 * (with output once finished); request the request JSON (NULL keeps the
 * stored one). finished_ms 0 while in flight. */
int runner_store_put(runner_store *s, const char *id, const char *idem_key, int64_t created_ms, const char *phase,
		     int64_t finished_ms, const char *request, const char *doc);

/* The document of id into *doc (caller frees) and its request JSON into
 * *request (may be NULL to skip). ERR_NOTFOUND when absent. */
int runner_store_get(runner_store *s, const char *id, char **doc, char **request);

/* The run id recorded for an idempotency key: ERR_NOTFOUND when none. */
int runner_store_find_key(runner_store *s, const char *key, char *id_out, size_t size);

/* Up to limit documents, newest first, strictly after the cursor
 * (created_ms, id) when after_id is set. Calls fn for each; *more is 1 when
 * more rows follow. */
typedef int (*runner_store_fn)(void *ctx, const char *id, int64_t created_ms, const char *doc);
int runner_store_list(runner_store *s, int64_t after_created, const char *after_id, int limit, int *more,
		      runner_store_fn fn, void *ctx);

/* The ids of runs recorded as not finished (after a crash). fn as above. */
int runner_store_unfinished(runner_store *s, runner_store_fn fn, void *ctx);

/* Delete finished runs older than before_ms; *deleted gets the count. */
int runner_store_expire(runner_store *s, int64_t before_ms, int *deleted);

#endif

/*
 * store: the run store on SQLite (see store.h). WAL journal so readers do
 * not block the writer; synchronous=NORMAL is durable across a process
 * crash (the case that matters: SIGKILL), which is what recovery needs.
 */
#include "runner/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "util/err.h"
#include "util/str.h"

struct runner_store {
	sqlite3 *db;
	pthread_mutex_t lock; /* guards db */
};

static int db_err(runner_store *s, const char *what)
{
	return err_set(ERR_FAIL, "run store: %s: %s", what, sqlite3_errmsg(s->db));
}

int runner_store_open(runner_store **out, const char *dir)
{
	runner_store *s = calloc(1, sizeof(*s));
	char *path = NULL, *em = NULL;
	int rc = 0;

	*out = NULL;
	if (!s)
		return err_set(ERR_NOMEM, "out of memory");
	pthread_mutex_init(&s->lock, NULL);
	mkdir(dir, 0700);
	if (!(path = str_printf("%s/runs.db", dir))) {
		rc = err_set(ERR_NOMEM, "out of memory");
		goto done;
	}
	if (sqlite3_open(path, &s->db) != SQLITE_OK) {
		rc = err_set(ERR_FAIL, "run store %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
		goto done;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if (sqlite3_exec(s->db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			 "CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, idem_key TEXT, created_ms INTEGER NOT NULL,"
			 " phase TEXT NOT NULL, finished_ms INTEGER NOT NULL DEFAULT 0, request TEXT, doc TEXT NOT NULL);"
			 "CREATE UNIQUE INDEX IF NOT EXISTS runs_idem ON runs(idem_key) WHERE idem_key IS NOT NULL;"
			 "CREATE INDEX IF NOT EXISTS runs_created ON runs(created_ms DESC, id DESC);",
			 NULL, NULL, &em) != SQLITE_OK) {
		rc = err_set(ERR_FAIL, "run store %s: %s", path, em ? em : "schema");
		sqlite3_free(em);
		goto done;
	}
	*out = s;
	s = NULL;
done:
	free(path);
	runner_store_free(s);
	return rc;
}

void runner_store_free(runner_store *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int runner_store_put(runner_store *s, const char *id, const char *idem_key, int64_t created_ms, const char *phase,
		     int64_t finished_ms, const char *request, const char *doc)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db,
			       "INSERT INTO runs (id, idem_key, created_ms, phase, finished_ms, request, doc)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO UPDATE SET phase=?4,"
			       " finished_ms=?5, request=COALESCE(?6, request), doc=?7",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(s, "prepare put");
		goto done;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (idem_key)
		sqlite3_bind_text(st, 2, idem_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, created_ms);
	sqlite3_bind_text(st, 4, phase, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, finished_ms);
	if (request)
		sqlite3_bind_text(st, 6, request, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, doc, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_err(s, "put");
done:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int runner_store_get(runner_store *s, const char *id, char **doc, char **request)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	*doc = NULL;
	if (request)
		*request = NULL;
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "SELECT doc, request FROM runs WHERE id = ?1", -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(s, "prepare get");
		goto done;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = err_set(ERR_NOTFOUND, "run %s not found", id);
		goto done;
	}
	*doc = str_dup((const char *)sqlite3_column_text(st, 0));
	if (request && sqlite3_column_text(st, 1))
		*request = str_dup((const char *)sqlite3_column_text(st, 1));
	if (!*doc)
		rc = err_set(ERR_NOMEM, "out of memory");
done:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int runner_store_find_key(runner_store *s, const char *key, char *id_out, size_t size)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "SELECT id FROM runs WHERE idem_key = ?1", -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(s, "prepare key");
		goto done;
	}
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW)
		rc = ERR_NOTFOUND;
	else
		snprintf(id_out, size, "%s", (const char *)sqlite3_column_text(st, 0));
done:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int runner_store_list(runner_store *s, int64_t after_created, const char *after_id, int limit, int *more,
		      runner_store_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, n = 0;

	*more = 0;
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db,
			       after_id ? "SELECT id, created_ms, doc FROM runs WHERE (created_ms < ?1 OR (created_ms = ?1"
					  " AND id < ?2)) ORDER BY created_ms DESC, id DESC LIMIT ?3"
					: "SELECT id, created_ms, doc FROM runs ORDER BY created_ms DESC, id DESC LIMIT ?3",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(s, "prepare list");
		goto done;
	}
	if (after_id) {
		sqlite3_bind_int64(st, 1, after_created);
		sqlite3_bind_text(st, 2, after_id, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int(st, 3, limit + 1);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n++ == limit) {
			*more = 1;
			break;
		}
		if ((rc = fn(ctx, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1),
			     (const char *)sqlite3_column_text(st, 2))))
			break;
	}
done:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int runner_store_unfinished(runner_store *s, runner_store_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "SELECT id, created_ms, doc FROM runs WHERE finished_ms = 0 ORDER BY created_ms",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_err(s, "prepare unfinished");
		goto done;
	}
	/* collect first: fn may call back into the store */
	typedef struct row { char *id; int64_t c; char *doc; } row;
	row *rows = NULL;
	size_t nr = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		row *r = realloc(rows, (nr + 1) * sizeof(*r));
		if (!r)
			break;
		rows = r;
		rows[nr].id = str_dup((const char *)sqlite3_column_text(st, 0));
		rows[nr].c = sqlite3_column_int64(st, 1);
		rows[nr].doc = str_dup((const char *)sqlite3_column_text(st, 2));
		nr++;
	}
	sqlite3_finalize(st);
	st = NULL;
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; i < nr; i++) {
		if (!rc && rows[i].id && rows[i].doc)
			rc = fn(ctx, rows[i].id, rows[i].c, rows[i].doc);
		free(rows[i].id);
		free(rows[i].doc);
	}
	free(rows);
	return rc;
done:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int runner_store_expire(runner_store *s, int64_t before_ms, int *deleted)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	*deleted = 0;
	pthread_mutex_lock(&s->lock);
	if (sqlite3_prepare_v2(s->db, "DELETE FROM runs WHERE finished_ms != 0 AND finished_ms < ?1", -1, &st, NULL) !=
	    SQLITE_OK) {
		rc = db_err(s, "prepare expire");
		goto done;
	}
	sqlite3_bind_int64(st, 1, before_ms);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_err(s, "expire");
	else
		*deleted = sqlite3_changes(s->db);
done:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

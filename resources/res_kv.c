/*
 * res_kv.c: local I/O of the key-value kind: one SQLite database per
 * resource, one table kv(k BLOB PRIMARY KEY, v BLOB NOT NULL).
 *
 * Keys and values are bytes (BLOBs), so any Lua string round-trips. Every
 * statement is prepared, bound and finalized here; nothing is built by
 * pasting strings. Never: keep a statement across calls (a store may be
 * closed at any time by its registry).
 */
#include "res_entry.h"

#include <stdlib.h>
#include <string.h>

int resi_kv_open(const char *path, int create, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	int rc = sqlite3_open_v2(path, &db, flags, NULL);

	*out = NULL;
	if (rc != SQLITE_OK) {
		sqlite3_close(db);
		return rc == SQLITE_CANTOPEN ? (create ? RES_ERR_IO : RES_ERR_NOTFOUND) : RES_ERR_DB;
	}
	/* A busy store (another process) is waited for briefly, not failed. */
	sqlite3_busy_timeout(db, 2000);
	if (sqlite3_exec(db,
			 "PRAGMA journal_mode=WAL;"
			 "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB NOT NULL);",
			 NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return RES_ERR_DB;
	}
	*out = db;
	return 0;
}

void resi_kv_close(sqlite3 **db)
{
	if (db == NULL || *db == NULL)
		return;
	sqlite3_close(*db);
	*db = NULL;
}

int resi_kv_get(sqlite3 *db, const void *k, size_t klen, struct resi_bytes *out, int *found)
{
	sqlite3_stmt *st = NULL;
	int rc = RES_ERR_DB, step;

	out->data = NULL;
	out->len = 0;
	*found = 0;
	if (sqlite3_prepare_v2(db, "SELECT v FROM kv WHERE k = ?1", -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_bind_blob(st, 1, k, (int)klen, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	step = sqlite3_step(st);
	if (step == SQLITE_DONE) {
		rc = 0;
		goto out;
	}
	if (step != SQLITE_ROW)
		goto out;
	{
		const void *v = sqlite3_column_blob(st, 0);
		size_t vlen = (size_t)sqlite3_column_bytes(st, 0);

		out->data = malloc(vlen + 1);
		if (out->data == NULL) {
			rc = RES_ERR_NOMEM;
			goto out;
		}
		if (vlen > 0)
			memcpy(out->data, v, vlen);
		out->len = vlen;
		*found = 1;
		rc = 0;
	}
out:
	sqlite3_finalize(st);
	return rc;
}

int resi_kv_put(sqlite3 *db, const void *k, size_t klen, const void *v, size_t vlen)
{
	sqlite3_stmt *st = NULL;
	int rc = RES_ERR_DB;

	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO kv(k, v) VALUES (?1, ?2)", -1, &st,
			       NULL) != SQLITE_OK)
		goto out;
	/* A zero-length blob bound from NULL would be SQL NULL: bind "" instead. */
	if (sqlite3_bind_blob(st, 1, klen ? k : "", (int)klen, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 2, vlen ? v : "", (int)vlen, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int resi_kv_delete(sqlite3 *db, const void *k, size_t klen, int *found)
{
	sqlite3_stmt *st = NULL;
	int rc = RES_ERR_DB;

	*found = 0;
	if (sqlite3_prepare_v2(db, "DELETE FROM kv WHERE k = ?1", -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_bind_blob(st, 1, klen ? k : "", (int)klen, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) == SQLITE_DONE) {
		*found = sqlite3_changes(db) > 0;
		rc = 0;
	}
out:
	sqlite3_finalize(st);
	return rc;
}

int resi_kv_size(sqlite3 *db, uint64_t *out, uint64_t *count)
{
	sqlite3_stmt *st = NULL;
	int rc = RES_ERR_DB;

	if (sqlite3_prepare_v2(db, "SELECT coalesce(sum(length(k) + length(v)), 0), count(*) FROM kv",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*out = (uint64_t)sqlite3_column_int64(st, 0);
		if (count)
			*count = (uint64_t)sqlite3_column_int64(st, 1);
		rc = 0;
	}
out:
	sqlite3_finalize(st);
	return rc;
}

int resi_kv_each(sqlite3 *db, int (*fn)(void *ud, const void *k, size_t klen, const void *v,
					size_t vlen),
		 void *ud)
{
	sqlite3_stmt *st = NULL;
	int rc = RES_ERR_DB, step;
	size_t seen = 0;

	if (sqlite3_prepare_v2(db, "SELECT k, v FROM kv ORDER BY k", -1, &st, NULL) != SQLITE_OK)
		goto out;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		/* Blob pointers must be taken before the lengths are read. */
		const void *k = sqlite3_column_blob(st, 0);
		size_t klen = (size_t)sqlite3_column_bytes(st, 0);
		const void *v = sqlite3_column_blob(st, 1);
		size_t vlen = (size_t)sqlite3_column_bytes(st, 1);
		int r;

		if (++seen > RES_KV_MAX_KEYS) {
			rc = RES_ERR_LIMIT;
			goto out;
		}
		r = fn(ud, k ? k : "", klen, v ? v : "", vlen);
		if (r != 0) {
			rc = r;
			goto out;
		}
	}
	if (step == SQLITE_DONE)
		rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int resi_kv_txn(sqlite3 *db, int (*fn)(void *ud, sqlite3 *db), void *ud)
{
	int rc;

	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return RES_ERR_DB;
	rc = fn(ud, db);
	if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = RES_ERR_DB;
	if (rc != 0)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/*
 * agd_store.c: the daemon's durable store over SQLite (agd_store.h).
 *
 * One connection per handle, serialised by a recursive mutex: SQLite's own
 * locking would let two threads interleave statements inside one
 * transaction, and the mutex held from begin to commit is what makes a
 * transaction atomic with respect to the daemon's other threads. Statements
 * used by single-row calls are prepared once and reset after each use; a
 * listing prepares its own, so that a callback may call the store.
 *
 * Never crashes on a full disk, an I/O error or a foreign file: every SQLite
 * result is mapped to an AGD_STORE_ERR_* and returned.
 */
#include "agd_store.h"

#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "AGDS": marks a file as this store in its header (PRAGMA application_id). */
#define APPLICATION_ID 0x41474453

/* Statements prepared once per handle. */
enum stmt_id {
	S_SEG_PUT,
	S_SEG_GET,
	S_SEG_HAS,
	S_SEG_DEL,
	S_AGENT_PUT,
	S_AGENT_GET,
	S_AGENT_DEL,
	S_AGENT_STATUS,
	S_AGENT_PEEK, /* [bal] */
	S_STATE_PUT,
	S_STATE_DEL,
	S_FWD_PUT,
	S_FWD_GET,
	S_FWD_DEL,
	S_RES_PUT,
	S_RES_GET,
	S_RES_DEL,
	S_KV_PUT,
	S_KV_GET,
	S_KV_DEL,
	/* Transaction control, run by ctl(): sqlite3_exec would parse each
	 * anew, and a hop runs a dozen of them on each side. */
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_TX_SAVEPOINT,
	S_TX_RELEASE,
	S_TX_ROLLBACK_TO,
	S_SYNC_NORMAL,
	S_SYNC_FULL,
	S_COUNT,
};

static const char *const stmt_sql[S_COUNT] = {
	[S_SEG_PUT] = "INSERT INTO segments(hash, name, signed, added_ms) VALUES (?1, ?2, ?3, ?4) "
		      "ON CONFLICT(hash) DO NOTHING",
	[S_SEG_GET] = "SELECT signed FROM segments WHERE hash = ?1",
	[S_SEG_HAS] = "SELECT 1 FROM segments WHERE hash = ?1",
	[S_SEG_DEL] = "DELETE FROM segments WHERE hash = ?1",
	[S_AGENT_PUT] = "INSERT INTO agents(id, segment, status, epoch, home, mobility, "
			"activation, updated_ms, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
			"ON CONFLICT(id) DO UPDATE SET segment = excluded.segment, "
			"status = excluded.status, epoch = max(agents.epoch, excluded.epoch), "
			"home = excluded.home, "
			"mobility = excluded.mobility, activation = excluded.activation, "
			"updated_ms = excluded.updated_ms, reason = excluded.reason",
	[S_AGENT_GET] = "SELECT a.id, a.segment, s.state, a.status, a.epoch, a.home, a.mobility, "
			"a.activation, a.updated_ms, a.reason FROM agents a "
			"LEFT JOIN agent_states s ON s.id = a.id WHERE a.id = ?1",
	[S_AGENT_DEL] = "DELETE FROM agents WHERE id = ?1",
	[S_AGENT_STATUS] = "UPDATE agents SET status = ?2, reason = ?3, updated_ms = ?4, "
			   "epoch = max(epoch, ?5) WHERE id = ?1",
	[S_AGENT_PEEK] = "SELECT id, segment, NULL, status, epoch, home, mobility, activation, "
			 "updated_ms, reason FROM agents WHERE id = ?1",
	/* The same bytes again (an admission storing the state its transfer
	 * has just stored, a passivation of an agent that did not run) leave
	 * the row alone: comparing reads the old state, rewriting it would
	 * write it to the WAL and later to the file. length() is compared
	 * first: it is answered from the record header without reading the
	 * overflow pages. */
	[S_STATE_PUT] = "INSERT INTO agent_states(id, state) VALUES (?1, ?2) "
			"ON CONFLICT(id) DO UPDATE SET state = excluded.state "
			"WHERE length(agent_states.state) != length(excluded.state) "
			"OR agent_states.state != excluded.state",
	[S_STATE_DEL] = "DELETE FROM agent_states WHERE id = ?1",
	[S_FWD_PUT] = "INSERT INTO forwards(agent, host, epoch, updated_ms) VALUES (?1, ?2, ?3, ?4) "
		      "ON CONFLICT(agent) DO UPDATE SET host = excluded.host, epoch = excluded.epoch, "
		      "updated_ms = excluded.updated_ms",
	[S_FWD_GET] = "SELECT host, epoch FROM forwards WHERE agent = ?1",
	[S_FWD_DEL] = "DELETE FROM forwards WHERE agent = ?1",
	[S_RES_PUT] = "INSERT INTO resources(id, kind, attachment, home, meta) VALUES (?1, ?2, ?3, ?4, ?5) "
		      "ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, attachment = excluded.attachment, "
		      "home = excluded.home, meta = excluded.meta",
	[S_RES_GET] = "SELECT id, kind, attachment, home, meta FROM resources WHERE id = ?1",
	[S_RES_DEL] = "DELETE FROM resources WHERE id = ?1",
	[S_KV_PUT] = "INSERT INTO kv(key, value) VALUES (?1, ?2) "
		     "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
	[S_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
	[S_KV_DEL] = "DELETE FROM kv WHERE key = ?1",
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	/* A call of several statements inside a transaction (atomic_begin). */
	[S_SAVEPOINT] = "SAVEPOINT agd_atomic",
	[S_RELEASE] = "RELEASE agd_atomic",
	[S_ROLLBACK_TO] = "ROLLBACK TO agd_atomic",
	/* A caller's transaction inside a group commit. */
	[S_TX_SAVEPOINT] = "SAVEPOINT agd_tx",
	[S_TX_RELEASE] = "RELEASE agd_tx",
	[S_TX_ROLLBACK_TO] = "ROLLBACK TO agd_tx",
	[S_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
	[S_SYNC_FULL] = "PRAGMA synchronous = FULL",
};

/* The tables and trigger of version 3 that the upgrades rebuild, one text
 * for the schema and the upgrades. */
#define AGENTS_V3                                                 \
	"CREATE TABLE agents ("                                   \
	"  id TEXT PRIMARY KEY NOT NULL,"                         \
	"  segment BLOB NOT NULL REFERENCES segments(hash),"      \
	"  status TEXT NOT NULL,"                                 \
	"  epoch INTEGER NOT NULL,"                               \
	"  home TEXT NOT NULL,"                                   \
	"  mobility INTEGER NOT NULL,"                            \
	"  activation INTEGER NOT NULL,"                          \
	"  updated_ms INTEGER NOT NULL,"                          \
	"  reason TEXT NOT NULL) WITHOUT ROWID;"
#define FORWARDS_V3                                               \
	"CREATE TABLE forwards ("                                 \
	"  agent TEXT PRIMARY KEY NOT NULL,"                      \
	"  host TEXT NOT NULL,"                                   \
	"  epoch INTEGER NOT NULL,"                               \
	"  updated_ms INTEGER NOT NULL) WITHOUT ROWID;"
#define STATE_TRIGGER                                             \
	"CREATE TRIGGER agents_state_gone AFTER DELETE ON agents BEGIN" \
	"  DELETE FROM agent_states WHERE id = old.id; END;"

/* Schema version 3. Segments and agent states are rowid tables: their
 * rows are large. An agent's state has a table of its own so that the
 * agents row stays small: a status change rewrites the whole record, and
 * SQLite rewrites a record with its overflow pages, which for a state are
 * megabytes; a peek or a listing would walk them too. An agent without a
 * state has no agent_states row; the trigger deletes the state with its
 * agent, in the same statement.
 *
 * agents and forwards, small rows found by their key, are WITHOUT ROWID
 * tables with no other index: one B-tree each, where a rowid table with a
 * TEXT key keeps two and version 2's agents four (status and segment
 * indexes, which nothing on a hot path reads: listings are of all agents,
 * and a segment is deleted rarely enough to scan for its users). Every
 * commit writes each page it changed to the WAL, and a hop commits four
 * times on its two hosts: 31 pages a hop with version 2's tables, 25 with
 * these. */
static const char schema_v3[] =
	"CREATE TABLE segments ("
	"  hash BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),"
	"  name TEXT NOT NULL,"
	"  signed BLOB NOT NULL,"
	"  added_ms INTEGER NOT NULL);"
	AGENTS_V3
	"CREATE TABLE agent_states ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  state BLOB NOT NULL);"
	STATE_TRIGGER
	FORWARDS_V3
	"CREATE TABLE resources ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  attachment TEXT NOT NULL,"
	"  home TEXT NOT NULL,"
	"  meta BLOB);"
	"CREATE TABLE kv ("
	"  key TEXT PRIMARY KEY NOT NULL,"
	"  value BLOB NOT NULL);";

/* From version 1, where the state was the agents table's third column:
 * the states move to their table, the column goes (DROP COLUMN rewrites
 * every agents row without it, so the old rows lose their overflow pages
 * too). Run inside the transaction that sets user_version. */
static const char migrate_v1_v2[] =
	"CREATE TABLE agent_states ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  state BLOB NOT NULL);"
	"INSERT INTO agent_states(id, state) "
	"  SELECT id, state FROM agents WHERE state IS NOT NULL AND length(state) > 0;"
	"ALTER TABLE agents DROP COLUMN state;"
	STATE_TRIGGER;

/* From version 2: agents and forwards rebuilt WITHOUT ROWID, agents'
 * status and segment indexes gone (they go with the old table). The old
 * table's trigger is dropped first: the copy is renamed away and dropped,
 * and its rows' states must stay. Run inside the transaction that sets
 * user_version. */
static const char migrate_v2_v3[] =
	"ALTER TABLE agents RENAME TO agents_v2;"
	"DROP TRIGGER agents_state_gone;"
	AGENTS_V3
	"INSERT INTO agents(id, segment, status, epoch, home, mobility, activation, updated_ms, reason) "
	"  SELECT id, segment, status, epoch, home, mobility, activation, updated_ms, reason FROM agents_v2;"
	"DROP TABLE agents_v2;"
	STATE_TRIGGER
	"ALTER TABLE forwards RENAME TO forwards_v2;"
	FORWARDS_V3
	"INSERT INTO forwards(agent, host, epoch, updated_ms) "
	"  SELECT agent, host, epoch, updated_ms FROM forwards_v2;"
	"DROP TABLE forwards_v2;";

struct agd_store {
	sqlite3 *db;                  /* the one connection */
	pthread_mutex_t lock;         /* recursive; held from begin to commit */
	int in_tx;                    /* a transaction is open (by the lock's holder) */
	int grouping;                 /* between agd_store_group_begin and _end */
	int outer;                    /* the group's own transaction is open */
	int tx_outer;                 /* the open transaction began the group's (no
					 savepoint: it is all the group holds so far) */
	uint64_t commits;             /* transactions committed (agd_store_commits) */
	int sync_normal;              /* the connection's synchronous level is NORMAL now
					 (else FULL): see sync_level */
	struct timespec busy_since;   /* when the lock we wait for was first found busy */
	sqlite3_stmt *stmts[S_COUNT]; /* prepared on first use */
};

const char *agd_store_strerror(int code)
{
	switch (code) {
	case AGD_STORE_OK: return "ok";
	case AGD_STORE_ERR_NOMEM: return "out of memory";
	case AGD_STORE_ERR_IO: return "store I/O error (read-only, unreadable or cannot open)";
	case AGD_STORE_ERR_FULL: return "store full (disk full or size limit)";
	case AGD_STORE_ERR_CORRUPT: return "not a store, or damaged";
	case AGD_STORE_ERR_VERSION: return "store schema newer than this build";
	case AGD_STORE_ERR_BUSY: return "store locked by another process";
	case AGD_STORE_ERR_NOTFOUND: return "not found";
	case AGD_STORE_ERR_CONSTRAINT: return "constraint violated";
	case AGD_STORE_ERR_ARG: return "invalid argument";
	case AGD_STORE_ERR_TOOBIG: return "value too large";
	case AGD_STORE_ERR_SQL: return "store error";
	case AGD_STORE_ERR_ABORTED: return "transaction aborted by an earlier error";
	}
	return "unknown store error";
}

static int map(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM: return AGD_STORE_ERR_NOMEM;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return AGD_STORE_ERR_IO;
	case SQLITE_FULL: return AGD_STORE_ERR_FULL;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return AGD_STORE_ERR_CORRUPT;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return AGD_STORE_ERR_BUSY;
	case SQLITE_CONSTRAINT: return AGD_STORE_ERR_CONSTRAINT;
	case SQLITE_TOOBIG: return AGD_STORE_ERR_TOOBIG;
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
		return AGD_STORE_ERR_ARG;
	}
	return AGD_STORE_ERR_SQL;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether s is a non-NULL string of 1..max bytes (or 0..max if empty_ok). */
static int text_ok(const char *s, size_t max, int empty_ok)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strnlen(s, max + 1);
	return n <= max && (empty_ok || n > 0);
}

static void copy_text(char *dst, size_t cap, const unsigned char *src)
{
	size_t n = src != NULL ? strnlen((const char *)src, cap - 1) : 0;

	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* A malloc'd copy of a blob column; NULL for an empty or NULL one. */
static int copy_blob(sqlite3_stmt *s, int col, uint8_t **out, size_t *len)
{
	const void *p = sqlite3_column_blob(s, col);
	int n = sqlite3_column_bytes(s, col);

	*out = NULL;
	*len = 0;
	if (p == NULL || n <= 0)
		return 0;
	if ((*out = malloc((size_t)n)) == NULL)
		return AGD_STORE_ERR_NOMEM;
	memcpy(*out, p, (size_t)n);
	*len = (size_t)n;
	return 0;
}

/* SQLite's busy handler: another connection holds the write lock. The
 * daemon opens several (runtime, mobility, resources) and their writers
 * meet all the time; sqlite3_busy_timeout would sleep 1, 2, 5, 10... ms
 * each time, which a transfer on the dispatcher pays in full although
 * the holder is done within tens of microseconds. Yield the CPU to it at
 * first, then sleep 50 us at a time, and give up after 5 s. */
static int busy_wait(void *ud, int n)
{
	struct agd_store *st = ud;
	struct timespec now, nap = { 0, 50000 };

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (n == 0)
		st->busy_since = now;
	else if ((now.tv_sec - st->busy_since.tv_sec) * 1000 +
			 (now.tv_nsec - st->busy_since.tv_nsec) / 1000000 >= 5000)
		return 0;
	if (n < 20)
		sched_yield();
	else
		nanosleep(&nap, NULL);
	return 1;
}

static void lock(struct agd_store *st)
{
	pthread_mutex_lock(&st->lock);
}

static void unlock(struct agd_store *st)
{
	pthread_mutex_unlock(&st->lock);
}

/* SQLite rolls a transaction back by itself after some errors (full disk,
 * I/O, out of memory). Statements after that would each commit on their
 * own, breaking the caller's (or the group's) atomicity: refuse them until
 * rollback (or the group's end). */
static int tx_aborted(struct agd_store *st)
{
	return (st->in_tx || st->outer) && sqlite3_get_autocommit(st->db);
}

/* Statement `id`, prepared on first use, or NULL (*rc set). */
static sqlite3_stmt *prepared(struct agd_store *st, enum stmt_id id, int *rc)
{
	if (st->stmts[id] == NULL) {
		int r = sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
					   &st->stmts[id], NULL);
		if (r != SQLITE_OK) {
			*rc = map(r);
			st->stmts[id] = NULL;
			return NULL;
		}
	}
	return st->stmts[id];
}

/* The prepared statement `id`, reset and unbound, or NULL (*rc set). */
static sqlite3_stmt *stmt(struct agd_store *st, enum stmt_id id, int *rc)
{
	if (tx_aborted(st)) {
		*rc = AGD_STORE_ERR_ABORTED;
		return NULL;
	}
	return prepared(st, id, rc);
}

/* Ends a use of a cached statement. */
static void done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

static int exec(struct agd_store *st, const char *sql)
{
	return map(sqlite3_exec(st->db, sql, NULL, NULL, NULL));
}

/* Runs the cached transaction-control statement `id` (S_BEGIN...), even
 * in a transaction SQLite has aborted (a ROLLBACK must still run). */
static int ctl(struct agd_store *st, enum stmt_id id)
{
	int rc = 0, r;
	sqlite3_stmt *s = prepared(st, id, &rc);

	if (s == NULL)
		return rc;
	r = sqlite3_step(s);
	sqlite3_reset(s);
	return r == SQLITE_DONE || r == SQLITE_ROW ? 0 : map(r);
}

/* Sets the synchronous level the next commit gets, only when it changes:
 * NORMAL for a transaction begun with durable == 0, FULL for a durable one
 * and for every write outside a transaction. The pragma costs two
 * statement runs; switching back to FULL after each NORMAL transaction
 * made the runtime's connection, which writes almost only those, pay it
 * twice per transaction. Outside a transaction only. */
static int sync_level(struct agd_store *st, int normal)
{
	int rc;

	if (st->sync_normal == normal)
		return 0;
	rc = ctl(st, normal ? S_SYNC_NORMAL : S_SYNC_FULL);
	if (rc == 0)
		st->sync_normal = normal;
	return rc;
}

/* In a group, its transaction, begun by the first write: at FULL, which
 * every write may ask for (a group cannot know its writers beforehand). */
static int group_open(struct agd_store *st)
{
	int rc;

	if (!st->grouping || st->outer)
		return 0;
	rc = sync_level(st, 0);
	if (rc == 0)
		rc = ctl(st, S_BEGIN);
	if (rc == 0)
		st->outer = 1;
	return rc;
}

/* Before a write: one outside a transaction commits on its own, durably;
 * in a group, with the group. */
static int write_level(struct agd_store *st)
{
	if (st->in_tx)
		return 0;
	return st->grouping ? group_open(st) : sync_level(st, 0);
}

/* Runs a statement expected to produce no row; returns 0 or a code. */
static int step_done(sqlite3_stmt *s)
{
	int r = sqlite3_step(s);

	return r == SQLITE_DONE ? 0 : map(r != SQLITE_ROW ? r : SQLITE_MISUSE);
}

/* Reads one integer pragma. */
static int pragma_int(struct agd_store *st, const char *sql, int64_t *v)
{
	sqlite3_stmt *s = NULL;
	int r = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);

	if (r != SQLITE_OK)
		return map(r);
	r = sqlite3_step(s);
	if (r == SQLITE_ROW)
		*v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return r == SQLITE_ROW ? 0 : map(r == SQLITE_DONE ? SQLITE_CORRUPT : r);
}

/* Brings a store of an older schema to AGD_STORE_SCHEMA in one
 * transaction: a crash half-way leaves the old schema, opened again next
 * time. Another process may be upgrading the same file: the version is
 * read again under the write lock. */
static int upgrade(struct agd_store *st)
{
	int64_t version = 0;
	int rc;

	if ((rc = exec(st, "BEGIN IMMEDIATE")) != 0)
		return rc;
	rc = pragma_int(st, "PRAGMA user_version", &version);
	if (rc == 0 && version != 1 && version != 2 && version != AGD_STORE_SCHEMA)
		rc = AGD_STORE_ERR_CORRUPT;
	/* One step after the other, all in this transaction. */
	if (rc == 0 && version == 1)
		rc = exec(st, migrate_v1_v2);
	if (rc == 0 && version <= 2)
		rc = exec(st, migrate_v2_v3);
	if (rc == 0 && version <= 2)
		rc = exec(st, "PRAGMA user_version = 3");
	if (rc != 0) {
		if (!sqlite3_get_autocommit(st->db))
			exec(st, "ROLLBACK");
		return rc;
	}
	if ((rc = exec(st, "COMMIT")) != 0 && !sqlite3_get_autocommit(st->db))
		exec(st, "ROLLBACK");
	return rc;
}

static int setup_schema(struct agd_store *st)
{
	int64_t version = 0, app = 0, nobjects = 0;
	int rc;

	/* The first read of a foreign file fails here with NOTADB. */
	if ((rc = pragma_int(st, "PRAGMA user_version", &version)) != 0 ||
	    (rc = pragma_int(st, "PRAGMA application_id", &app)) != 0 ||
	    (rc = pragma_int(st, "SELECT count(*) FROM sqlite_schema", &nobjects)) != 0)
		return rc;
	if (version == 0 && nobjects == 0 && app == 0) {
		if ((rc = exec(st, "BEGIN IMMEDIATE")) != 0)
			return rc;
		/* Another process may have created the schema while this one
		 * waited for the write lock: look again under it. */
		if ((rc = pragma_int(st, "SELECT count(*) FROM sqlite_schema", &nobjects)) != 0) {
			exec(st, "ROLLBACK");
			return rc;
		}
		if (nobjects != 0) {
			exec(st, "ROLLBACK");
			return setup_schema(st);
		}
		if ((rc = exec(st, schema_v3)) != 0 ||
		    (rc = exec(st, "PRAGMA application_id = 1095189587; PRAGMA user_version = 3")) != 0) {
			exec(st, "ROLLBACK");
			return rc;
		}
		return exec(st, "COMMIT");
	}
	if (app != APPLICATION_ID)
		return AGD_STORE_ERR_CORRUPT;
	if (version > AGD_STORE_SCHEMA)
		return AGD_STORE_ERR_VERSION;
	if (version < 1)
		return AGD_STORE_ERR_CORRUPT;
	if (version < AGD_STORE_SCHEMA)
		return upgrade(st);
	return 0;
}

static int store_open(const char *path, int private, struct agd_store **out)
{
	struct agd_store *st;
	pthread_mutexattr_t attr;
	sqlite3_stmt *s = NULL;
	int rc, r;

	if (out == NULL)
		return AGD_STORE_ERR_ARG;
	*out = NULL;
	if (path == NULL || *path == '\0')
		return AGD_STORE_ERR_ARG;
	if ((st = calloc(1, sizeof *st)) == NULL)
		return AGD_STORE_ERR_NOMEM;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	r = pthread_mutex_init(&st->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (r != 0) {
		free(st);
		return AGD_STORE_ERR_NOMEM;
	}
	r = sqlite3_open_v2(path, &st->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (r != SQLITE_OK) {
		rc = st->db != NULL ? map(r) : AGD_STORE_ERR_NOMEM;
		goto fail;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_handler(st->db, busy_wait, st);
	/* Before the first read: only then does a WAL database keep its
	 * index in this process's memory instead of a shared-memory file. */
	if (private && (rc = exec(st, "PRAGMA locking_mode = EXCLUSIVE")) != 0)
		goto fail;
	if ((rc = setup_schema(st)) != 0)
		goto fail;
	/* WAL: readers do not block the writer, commits append. The pragma
	 * answers with the mode it got; anything else than "wal" (a read-only
	 * medium, say) is an I/O error for a store that must write. */
	r = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
	if (r != SQLITE_OK) {
		rc = map(r);
		goto fail;
	}
	r = sqlite3_step(s);
	if (r != SQLITE_ROW) {
		rc = map(r);
		sqlite3_finalize(s);
		goto fail;
	}
	if (sqlite3_column_text(s, 0) == NULL ||
	    strcmp((const char *)sqlite3_column_text(s, 0), "wal") != 0) {
		sqlite3_finalize(s);
		rc = AGD_STORE_ERR_IO;
		goto fail;
	}
	sqlite3_finalize(s);
	if ((rc = exec(st, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL")) != 0)
		goto fail;
	/* Activating one of a million passive agents reads a few pages of
	 * four B-trees at random: mapped, a page the kernel holds costs a
	 * memory access instead of a pread and a copy, and a larger cache
	 * keeps the trees' upper levels. Failing to map is not an error:
	 * SQLite falls back to reads. */
	exec(st, "PRAGMA mmap_size = 1073741824; PRAGMA cache_size = -16384");
	*out = st;
	return 0;
fail:
	sqlite3_close_v2(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
	return rc;
}

int agd_store_open(const char *path, struct agd_store **out)
{
	return store_open(path, 0, out);
}

int agd_store_open_private(const char *path, struct agd_store **out)
{
	return store_open(path, 1, out);
}

void agd_store_close(struct agd_store **stp)
{
	struct agd_store *st;

	if (stp == NULL || *stp == NULL)
		return;
	st = *stp;
	if (st->in_tx || st->outer)
		exec(st, "ROLLBACK");
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmts[i]);
	sqlite3_close_v2(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
	*stp = NULL;
}

const char *agd_store_errmsg(struct agd_store *st)
{
	return st != NULL ? sqlite3_errmsg(st->db) : "no store";
}

int agd_store_set_max_size(struct agd_store *st, uint64_t max_bytes)
{
	int64_t page = 0;
	char sql[64];
	int rc;

	if (st == NULL)
		return AGD_STORE_ERR_ARG;
	lock(st);
	rc = pragma_int(st, "PRAGMA page_size", &page);
	if (rc == 0 && page > 0) {
		uint64_t pages = max_bytes == 0 ? 4294967294u : max_bytes / (uint64_t)page;

		if (pages == 0)
			pages = 1;
		if (pages > 4294967294u)
			pages = 4294967294u;
		snprintf(sql, sizeof sql, "PRAGMA max_page_count = %llu", (unsigned long long)pages);
		rc = exec(st, sql);
	}
	unlock(st);
	return rc;
}

int agd_store_begin(struct agd_store *st, int durable)
{
	int rc;

	if (st == NULL)
		return AGD_STORE_ERR_ARG;
	lock(st);
	if (st->in_tx) {
		unlock(st);
		return AGD_STORE_ERR_ARG;
	}
	if (st->grouping) {
		/* A savepoint in the group's transaction, which commits at
		 * FULL whatever durable says; or, opening that transaction, no
		 * savepoint at all: a savepoint makes SQLite keep the old
		 * content of every page it changes (a large state rewritten
		 * over freed pages is copied once more), and a first
		 * transaction can be undone by undoing the group's. */
		st->tx_outer = !st->outer;
		rc = group_open(st);
		if (rc == 0 && !st->tx_outer)
			rc = ctl(st, S_TX_SAVEPOINT);
		if (rc != 0) {
			unlock(st);
			return rc;
		}
		st->in_tx = 1;
		return 0;
	}
	/* The safety level cannot change inside a transaction: set it now. */
	rc = sync_level(st, !durable);
	if (rc == 0)
		rc = ctl(st, S_BEGIN);
	if (rc != 0) {
		unlock(st);
		return rc;
	}
	st->in_tx = 1;
	return 0; /* the lock stays held until commit or rollback */
}

static int end_tx(struct agd_store *st, int commit)
{
	int rc;

	if (st == NULL)
		return AGD_STORE_ERR_ARG;
	lock(st);
	if (!st->in_tx) {
		unlock(st);
		return AGD_STORE_ERR_ARG;
	}
	if (tx_aborted(st)) {
		/* Already rolled back by SQLite: a rollback has nothing left to
		 * do, a commit must not pretend it kept anything. */
		rc = commit ? AGD_STORE_ERR_ABORTED : 0;
	} else if (st->outer && st->tx_outer) {
		/* The group's first: kept, or undone with the group's whole
		 * transaction, which held nothing else. */
		rc = commit ? 0 : ctl(st, S_ROLLBACK);
		if (!commit)
			st->outer = 0;
	} else if (st->outer) {
		/* In a group: kept until the group commits, or undone alone. */
		rc = commit ? 0 : ctl(st, S_TX_ROLLBACK_TO);
		if (ctl(st, S_TX_RELEASE) != 0 && rc == 0)
			rc = AGD_STORE_ERR_ABORTED;
	} else {
		rc = ctl(st, commit ? S_COMMIT : S_ROLLBACK);
		if (rc == 0 && commit)
			st->commits++;
		/* A failed COMMIT (full disk, I/O) may leave the transaction
		 * open: roll it back so nothing half-done stays. */
		if (rc != 0 && sqlite3_get_autocommit(st->db) == 0)
			ctl(st, S_ROLLBACK);
	}
	st->in_tx = 0;
	unlock(st); /* this call's */
	unlock(st); /* begin's */
	return rc;
}

void agd_store_group_begin(struct agd_store *st)
{
	lock(st);
	st->grouping = 1;
	unlock(st);
}

int agd_store_group_end(struct agd_store *st)
{
	int rc = 0;

	lock(st);
	if (st->outer) {
		/* SQLite may have rolled the whole group back (full disk). */
		rc = sqlite3_get_autocommit(st->db) ? AGD_STORE_ERR_ABORTED : ctl(st, S_COMMIT);
		if (rc == 0)
			st->commits++;
		else if (!sqlite3_get_autocommit(st->db))
			ctl(st, S_ROLLBACK);
	}
	st->outer = 0;
	st->grouping = 0;
	unlock(st);
	return rc;
}

void agd_store_group_abort(struct agd_store *st)
{
	lock(st);
	if (st->outer && !sqlite3_get_autocommit(st->db))
		ctl(st, S_ROLLBACK);
	st->outer = 0;
	st->grouping = 0;
	unlock(st);
}

uint64_t agd_store_commits(struct agd_store *st)
{
	uint64_t n;

	lock(st);
	n = st->commits;
	unlock(st);
	return n;
}

int agd_store_commit(struct agd_store *st)
{
	return end_tx(st, 1);
}

int agd_store_rollback(struct agd_store *st)
{
	return end_tx(st, 0);
}

/* ---- segments ---- */

int agd_store_segment_put(struct agd_store *st, const struct mig_segment *seg)
{
	const uint8_t *bytes;
	size_t len;
	sqlite3_stmt *s;
	int rc = 0;

	if (st == NULL || seg == NULL || (bytes = mig_segment_signed_bytes(seg, &len)) == NULL)
		return AGD_STORE_ERR_ARG;
	lock(st);
	if ((rc = write_level(st)) == 0 && (s = stmt(st, S_SEG_PUT, &rc)) != NULL) {
		sqlite3_bind_blob(s, 1, mig_segment_hash(seg), MIG_SEGMENT_HASH_LEN, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, mig_segment_manifest(seg)->name, -1, SQLITE_STATIC);
		rc = map(sqlite3_bind_blob64(s, 3, bytes, len, SQLITE_STATIC));
		sqlite3_bind_int64(s, 4, now_ms());
		if (rc == 0)
			rc = step_done(s);
		done(s);
	}
	unlock(st);
	return rc;
}

int agd_store_segment_get(struct agd_store *st, const uint8_t hash[MIG_SEGMENT_HASH_LEN],
			  uint8_t **bytes, size_t *len)
{
	sqlite3_stmt *s;
	int rc = 0, r;

	if (bytes != NULL)
		*bytes = NULL;
	if (len != NULL)
		*len = 0;
	if (st == NULL || hash == NULL || bytes == NULL || len == NULL)
		return AGD_STORE_ERR_ARG;
	lock(st);
	if ((s = stmt(st, S_SEG_GET, &rc)) != NULL) {
		sqlite3_bind_blob(s, 1, hash, MIG_SEGMENT_HASH_LEN, SQLITE_STATIC);
		r = sqlite3_step(s);
		if (r == SQLITE_ROW)
			rc = copy_blob(s, 0, bytes, len);
		else
			rc = r == SQLITE_DONE ? AGD_STORE_ERR_NOTFOUND : map(r);
		done(s);
	}
	unlock(st);
	return rc;
}

int agd_store_segment_has(struct agd_store *st, const uint8_t hash[MIG_SEGMENT_HASH_LEN])
{
	sqlite3_stmt *s;
	int rc = 0, r;

	if (st == NULL || hash == NULL)
		return AGD_STORE_ERR_ARG;
	lock(st);
	if ((s = stmt(st, S_SEG_HAS, &rc)) != NULL) {
		sqlite3_bind_blob(s, 1, hash, MIG_SEGMENT_HASH_LEN, SQLITE_STATIC);
		r = sqlite3_step(s);
		rc = r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : map(r);
		done(s);
	}
	unlock(st);
	return rc;
}

/* Runs a cached one-key DELETE; NOTFOUND when no row went. */
static int delete_by(struct agd_store *st, enum stmt_id id, const void *key, int key_len, int text)
{
	sqlite3_stmt *s;
	int rc = 0;

	lock(st);
	if ((rc = write_level(st)) == 0 && (s = stmt(st, id, &rc)) != NULL) {
		if (text)
			sqlite3_bind_text(s, 1, key, key_len, SQLITE_STATIC);
		else
			sqlite3_bind_blob(s, 1, key, key_len, SQLITE_STATIC);
		rc = step_done(s);
		if (rc == 0 && sqlite3_changes(st->db) == 0)
			rc = AGD_STORE_ERR_NOTFOUND;
		done(s);
	}
	unlock(st);
	return rc;
}

int agd_store_segment_delete(struct agd_store *st, const uint8_t hash[MIG_SEGMENT_HASH_LEN])
{
	if (st == NULL || hash == NULL)
		return AGD_STORE_ERR_ARG;
	return delete_by(st, S_SEG_DEL, hash, MIG_SEGMENT_HASH_LEN, 0);
}

int agd_store_segment_list(struct agd_store *st,
			   int (*fn)(const struct agd_segment_info *info, void *ud), void *ud)
{
	sqlite3_stmt *s = NULL;
	int rc, r = SQLITE_DONE;

	if (st == NULL || fn == NULL)
		return AGD_STORE_ERR_ARG;
	lock(st);
	r = sqlite3_prepare_v2(st->db,
			       "SELECT hash, name, length(signed), added_ms FROM segments "
			       "ORDER BY added_ms, hash",
			       -1, &s, NULL);
	rc = tx_aborted(st) ? AGD_STORE_ERR_ABORTED : map(r);
	while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
		struct agd_segment_info info;

		memset(&info, 0, sizeof info);
		if (sqlite3_column_bytes(s, 0) == MIG_SEGMENT_HASH_LEN)
			memcpy(info.hash, sqlite3_column_blob(s, 0), MIG_SEGMENT_HASH_LEN);
		copy_text(info.name, sizeof info.name, sqlite3_column_text(s, 1));
		info.len = (size_t)sqlite3_column_int64(s, 2);
		info.added_ms = sqlite3_column_int64(s, 3);
		rc = fn(&info, ud);
	}
	if (rc == 0 && r != SQLITE_DONE)
		rc = map(r);
	sqlite3_finalize(s);
	unlock(st);
	return rc;
}

/* ---- agents ---- */

static int agent_rec_ok(const struct agd_agent_rec *rec)
{
	return rec != NULL && text_ok(rec->id, AGD_STORE_ID_MAX, 0) &&
	       text_ok(rec->status, AGD_STORE_STATUS_MAX, 0) &&
	       text_ok(rec->home, AGD_STORE_HOST_MAX, 1) &&
	       text_ok(rec->reason, AGD_STORE_REASON_MAX, 1) &&
	       (rec->state != NULL || rec->state_len == 0);
}

/* A call that runs several statements is atomic as a single statement
 * was: in the caller's transaction (or the group's), under a savepoint
 * undone on failure; else in a transaction of its own (durable: FULL, see
 * sync_level). atomic_end returns rc, or the commit's failure. */
static int atomic_begin(struct agd_store *st)
{
	int rc;

	if (tx_aborted(st))
		return AGD_STORE_ERR_ABORTED;
	if ((rc = write_level(st)) != 0) /* in a group, opens its transaction */
		return rc;
	return ctl(st, st->in_tx || st->outer ? S_SAVEPOINT : S_BEGIN);
}

static int atomic_end(struct agd_store *st, int rc)
{
	if (st->in_tx || st->outer) {
		/* SQLite may have rolled the whole transaction back (full
		 * disk): then there is no savepoint left to undo. */
		if (rc != 0 && !tx_aborted(st))
			ctl(st, S_ROLLBACK_TO);
		if (!tx_aborted(st))
			ctl(st, S_RELEASE);
		return rc;
	}
	if (rc == 0 && (rc = ctl(st, S_COMMIT)) == 0)
		st->commits++;
	if (rc != 0 && !sqlite3_get_autocommit(st->db))
		ctl(st, S_ROLLBACK);
	return rc;
}

int agd_store_agent_put(struct agd_store *st, const struct agd_agent_rec *rec)
{
	sqlite3_stmt *s, *t;
	int rc = 0;

	if (st == NULL || !agent_rec_ok(rec))
		return AGD_STORE_ERR_ARG;
	lock(st);
	if ((rc = atomic_begin(st)) != 0)
		goto out;
	/* The row first: it checks that the segment is stored. */
	if ((s = stmt(st, S_AGENT_PUT, &rc)) != NULL) {
		sqlite3_bind_text(s, 1, rec->id, -1, SQLITE_STATIC);
		sqlite3_bind_blob(s, 2, rec->segment, MIG_SEGMENT_HASH_LEN, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, rec->status, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, (sqlite3_int64)rec->epoch);
		sqlite3_bind_text(s, 5, rec->home, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 6, rec->mobility);
		sqlite3_bind_int(s, 7, rec->activation);
		sqlite3_bind_int64(s, 8, now_ms());
		sqlite3_bind_text(s, 9, rec->reason, -1, SQLITE_STATIC);
		rc = step_done(s);
		done(s);
	}
	if (rc == 0 && (t = stmt(st, rec->state_len > 0 ? S_STATE_PUT : S_STATE_DEL, &rc)) != NULL) {
		sqlite3_bind_text(t, 1, rec->id, -1, SQLITE_STATIC);
		if (rec->state_len > 0)
			rc = map(sqlite3_bind_blob64(t, 2, rec->state, rec->state_len, SQLITE_STATIC));
		if (rc == 0)
			rc = step_done(t);
		done(t);
	}
	rc = atomic_end(st, rc);
out:
	unlock(st);
	return rc;
}

/* Fills rec from a row of (id, segment, state, status, epoch, home,
 * mobility, activation, updated_ms, reason). With copy_state the state is
 * malloc'd; else borrowed from the statement (or NULL when !with_state). */
static int agent_from_row(sqlite3_stmt *s, struct agd_agent_rec *rec, int with_state, int copy_state)
{
	memset(rec, 0, sizeof *rec);
	copy_text(rec->id, sizeof rec->id, sqlite3_column_text(s, 0));
	if (sqlite3_column_bytes(s, 1) == MIG_SEGMENT_HASH_LEN)
		memcpy(rec->segment, sqlite3_column_blob(s, 1), MIG_SEGMENT_HASH_LEN);
	if (with_state) {
		if (copy_state) {
			int rc = copy_blob(s, 2, &rec->state, &rec->state_len);

			if (rc != 0)
				return rc;
		} else {
			rec->state = (uint8_t *)sqlite3_column_blob(s, 2);
			rec->state_len = rec->state != NULL ? (size_t)sqlite3_column_bytes(s, 2) : 0;
		}
	}
	copy_text(rec->status, sizeof rec->status, sqlite3_column_text(s, 3));
	rec->epoch = (uint64_t)sqlite3_column_int64(s, 4);
	copy_text(rec->home, sizeof rec->home, sqlite3_column_text(s, 5));
	rec->mobility = sqlite3_column_int(s, 6);
	rec->activation = sqlite3_column_int(s, 7);
	rec->updated_ms = sqlite3_column_int64(s, 8);
	copy_text(rec->reason, sizeof rec->reason, sqlite3_column_text(s, 9));
	return 0;
}

/* One agent's row by id through statement `which`, with its state
 * (copied) or without. */
static int agent_read(struct agd_store *st, enum stmt_id which, int with_state, const char *id,
		      struct agd_agent_rec *rec)
{
	sqlite3_stmt *s;
	int rc = 0, r;

	if (rec != NULL)
		memset(rec, 0, sizeof *rec);
	if (st == NULL || rec == NULL || !text_ok(id, AGD_STORE_ID_MAX, 0))
		return AGD_STORE_ERR_ARG;
	lock(st);
	if ((s = stmt(st, which, &rc)) != NULL) {
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		r = sqlite3_step(s);
		if (r == SQLITE_ROW)
			rc = agent_from_row(s, rec, with_state, with_state);
		else
			rc = r == SQLITE_DONE ? AGD_STORE_ERR_NOTFOUND : map(r);
		done(s);
	}
	unlock(st);
	return rc;
}

int agd_store_agent_get(struct agd_store *st, const char *id, struct agd_agent_rec *rec)
{
	return agent_read(st, S_AGENT_GET, 1, id, rec);
}

int agd_store_agent_peek(struct agd_store *st, const char *id, struct agd_agent_rec *rec)
{
	return agent_read(st, S_AGENT_PEEK, 0, id, rec);
}

void agd_store_agent_clear(struct agd_agent_rec *rec)
{
	if (rec == NULL)
		return;
	free(rec->state);
	rec->state = NULL;
	rec->state_len = 0;
}

int agd_store_agent_delete(struct agd_store *st, const char *id)
{
	if (st == NULL || !text_ok(id, AGD_STORE_ID_MAX, 0))
		return AGD_STORE_ERR_ARG;
	return delete_by(st, S_AGENT_DEL, id, -1, 1);
}

int agd_store_agent_set_status(struct agd_store *st, const char *id, const char *status,
			       const char *reason)
{
	return agd_store_agent_mark(st, id, status, reason, 0);
}

int agd_store_agent_mark(struct agd_store *st, const char *id, const char *status,
			 const char *reason, uint64_t epoch)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (reason == NULL)
		reason = "";
	if (st == NULL || !text_ok(id, AGD_STORE_ID_MAX, 0) ||
	    !text_ok(status, AGD_STORE_STATUS_MAX, 0) || !text_ok(reason, AGD_STORE_REASON_MAX, 1))
		return AGD_STORE_ERR_ARG;
	lock(st);
	if ((rc = write_level(st)) == 0 && (s = stmt(st, S_AGENT_STATUS, &rc)) != NULL) {
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, now_ms());
		sqlite3_bind_int64(s, 5, (sqlite3_int64)epoch);
		rc = step_done(s);
		if (rc == 0 && sqlite3_changes(st->db) == 0)
			rc = AGD_STORE_ERR_NOTFOUND;
		done(s);
	}
	unlock(st);
	return rc;
}

int agd_store_agent_list(struct agd_store *st, const char *status, int with_state,
			 int (*fn)(const struct agd_agent_rec *rec, void *ud), void *ud)
{
	sqlite3_stmt *s = NULL;
	const char *sql;
	int rc, r = SQLITE_DONE;

	if (st == NULL || fn == NULL || (status != NULL && !text_ok(status, AGD_STORE_STATUS_MAX, 0)))
		return AGD_STORE_ERR_ARG;
	/* Without the state agent_states is not read at all: listing a
	 * million passive agents stays cheap. */
	if (with_state)
		sql = status != NULL
			? "SELECT a.id, a.segment, s.state, a.status, a.epoch, a.home, a.mobility, "
			  "a.activation, a.updated_ms, a.reason FROM agents a "
			  "LEFT JOIN agent_states s ON s.id = a.id WHERE a.status = ?1 ORDER BY a.id"
			: "SELECT a.id, a.segment, s.state, a.status, a.epoch, a.home, a.mobility, "
			  "a.activation, a.updated_ms, a.reason FROM agents a "
			  "LEFT JOIN agent_states s ON s.id = a.id ORDER BY a.id";
	else
		sql = status != NULL
			? "SELECT id, segment, NULL, status, epoch, home, mobility, activation, "
			  "updated_ms, reason FROM agents WHERE status = ?1 ORDER BY id"
			: "SELECT id, segment, NULL, status, epoch, home, mobility, activation, "
			  "updated_ms, reason FROM agents ORDER BY id";
	lock(st);
	rc = map(sqlite3_prepare_v2(st->db, sql, -1, &s, NULL));
	if (rc == 0 && tx_aborted(st))
		rc = AGD_STORE_ERR_ABORTED;
	if (rc == 0 && status != NULL)
		sqlite3_bind_text(s, 1, status, -1, SQLITE_STATIC);
	while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
		struct agd_agent_rec rec;

		agent_from_row(s, &rec, with_state, 0);
		rc = fn(&rec, ud);
	}
	if (rc == 0 && r != SQLITE_DONE)
		rc = map(r);
	sqlite3_finalize(s);
	unlock(st);
	return rc;
}

int agd_store_agent_count(struct agd_store *st, const char *status, uint64_t *count)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if (count != NULL)
		*count = 0;
	if (st == NULL || count == NULL || (status != NULL && !text_ok(status, AGD_STORE_STATUS_MAX, 0)))
		return AGD_STORE_ERR_ARG;
	lock(st);
	rc = map(sqlite3_prepare_v2(st->db,
				    status != NULL ? "SELECT count(*) FROM agents WHERE status = ?1"
						   : "SELECT count(*) FROM agents",
				    -1, &s, NULL));
	if (rc == 0) {
		if (status != NULL)
			sqlite3_bind_text(s, 1, status, -1, SQLITE_STATIC);
		r = sqlite3_step(s);
		if (r == SQLITE_ROW)
			*count = (uint64_t)sqlite3_column_int64(s, 0);
		else
			rc = map(r);
	}
	sqlite3_finalize(s);
	unlock(st);
	return rc;
}

/* ---- forwarding pointers ---- */

int agd_store_forward_put(struct agd_store *st, const char *id, const char *host, uint64_t epoch)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (st == NULL || !text_ok(id, AGD_STORE_ID_MAX, 0) || !text_ok(host, AGD_STORE_HOST_MAX, 0))
		return AGD_STORE_ERR_ARG;
	lock(st);
	if ((rc = write_level(st)) == 0 && (s = stmt(st, S_FWD_PUT, &rc)) != NULL) {
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, host, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, (sqlite3_int64)epoch);
		sqlite3_bind_int64(s, 4, now_ms());
		rc = step_done(s);
		done(s);
	}
	unlock(st);
	return rc;
}

int agd_store_forward_get(struct agd_store *st, const char *id, char *host, uint64_t *epoch)
{
	sqlite3_stmt *s;
	int rc = 0, r;

	if (st == NULL || !text_ok(id, AGD_STORE_ID_MAX, 0) || host == NULL || epoch == NULL)
		return AGD_STORE_ERR_ARG;
	host[0] = '\0';
	*epoch = 0;
	lock(st);
	if ((s = stmt(st, S_FWD_GET, &rc)) != NULL) {
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		r = sqlite3_step(s);
		if (r == SQLITE_ROW) {
			copy_text(host, AGD_STORE_HOST_MAX + 1, sqlite3_column_text(s, 0));
			*epoch = (uint64_t)sqlite3_column_int64(s, 1);
		} else {
			rc = r == SQLITE_DONE ? AGD_STORE_ERR_NOTFOUND : map(r);
		}
		done(s);
	}
	unlock(st);
	return rc;
}

int agd_store_forward_delete(struct agd_store *st, const char *id)
{
	if (st == NULL || !text_ok(id, AGD_STORE_ID_MAX, 0))
		return AGD_STORE_ERR_ARG;
	return delete_by(st, S_FWD_DEL, id, -1, 1);
}

/* ---- resources ---- */

int agd_store_resource_put(struct agd_store *st, const struct agd_resource_rec *rec)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (st == NULL || rec == NULL || !text_ok(rec->id, AGD_STORE_ID_MAX, 0) ||
	    !text_ok(rec->kind, AGD_STORE_KIND_MAX, 0) ||
	    !text_ok(rec->attachment, AGD_STORE_KIND_MAX, 0) ||
	    !text_ok(rec->home, AGD_STORE_HOST_MAX, 1) || (rec->meta == NULL && rec->meta_len > 0))
		return AGD_STORE_ERR_ARG;
	lock(st);
	if ((rc = write_level(st)) == 0 && (s = stmt(st, S_RES_PUT, &rc)) != NULL) {
		sqlite3_bind_text(s, 1, rec->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, rec->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, rec->attachment, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, rec->home, -1, SQLITE_STATIC);
		if (rec->meta_len > 0)
			rc = map(sqlite3_bind_blob64(s, 5, rec->meta, rec->meta_len, SQLITE_STATIC));
		else
			sqlite3_bind_null(s, 5);
		if (rc == 0)
			rc = step_done(s);
		done(s);
	}
	unlock(st);
	return rc;
}

static int resource_from_row(sqlite3_stmt *s, struct agd_resource_rec *rec, int copy)
{
	memset(rec, 0, sizeof *rec);
	copy_text(rec->id, sizeof rec->id, sqlite3_column_text(s, 0));
	copy_text(rec->kind, sizeof rec->kind, sqlite3_column_text(s, 1));
	copy_text(rec->attachment, sizeof rec->attachment, sqlite3_column_text(s, 2));
	copy_text(rec->home, sizeof rec->home, sqlite3_column_text(s, 3));
	if (copy)
		return copy_blob(s, 4, &rec->meta, &rec->meta_len);
	rec->meta = (uint8_t *)sqlite3_column_blob(s, 4);
	rec->meta_len = rec->meta != NULL ? (size_t)sqlite3_column_bytes(s, 4) : 0;
	return 0;
}

int agd_store_resource_get(struct agd_store *st, const char *id, struct agd_resource_rec *rec)
{
	sqlite3_stmt *s;
	int rc = 0, r;

	if (rec != NULL)
		memset(rec, 0, sizeof *rec);
	if (st == NULL || rec == NULL || !text_ok(id, AGD_STORE_ID_MAX, 0))
		return AGD_STORE_ERR_ARG;
	lock(st);
	if ((s = stmt(st, S_RES_GET, &rc)) != NULL) {
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		r = sqlite3_step(s);
		if (r == SQLITE_ROW)
			rc = resource_from_row(s, rec, 1);
		else
			rc = r == SQLITE_DONE ? AGD_STORE_ERR_NOTFOUND : map(r);
		done(s);
	}
	unlock(st);
	return rc;
}

void agd_store_resource_clear(struct agd_resource_rec *rec)
{
	if (rec == NULL)
		return;
	free(rec->meta);
	rec->meta = NULL;
	rec->meta_len = 0;
}

int agd_store_resource_delete(struct agd_store *st, const char *id)
{
	if (st == NULL || !text_ok(id, AGD_STORE_ID_MAX, 0))
		return AGD_STORE_ERR_ARG;
	return delete_by(st, S_RES_DEL, id, -1, 1);
}

int agd_store_resource_list(struct agd_store *st,
			    int (*fn)(const struct agd_resource_rec *rec, void *ud), void *ud)
{
	sqlite3_stmt *s = NULL;
	int rc, r = SQLITE_DONE;

	if (st == NULL || fn == NULL)
		return AGD_STORE_ERR_ARG;
	lock(st);
	rc = map(sqlite3_prepare_v2(st->db,
				    "SELECT id, kind, attachment, home, meta FROM resources ORDER BY id",
				    -1, &s, NULL));
	if (rc == 0 && tx_aborted(st))
		rc = AGD_STORE_ERR_ABORTED;
	while (rc == 0 && (r = sqlite3_step(s)) == SQLITE_ROW) {
		struct agd_resource_rec rec;

		resource_from_row(s, &rec, 0);
		rc = fn(&rec, ud);
	}
	if (rc == 0 && r != SQLITE_DONE)
		rc = map(r);
	sqlite3_finalize(s);
	unlock(st);
	return rc;
}

/* ---- host metadata ---- */

int agd_store_kv_put(struct agd_store *st, const char *key, const void *value, size_t len)
{
	sqlite3_stmt *s;
	int rc = 0;

	if (st == NULL || !text_ok(key, AGD_STORE_KEY_MAX, 0) || (value == NULL && len > 0))
		return AGD_STORE_ERR_ARG;
	lock(st);
	if ((rc = write_level(st)) == 0 && (s = stmt(st, S_KV_PUT, &rc)) != NULL) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		/* zeroblob for an empty value: NOT NULL holds and get gives 0 bytes. */
		if (len > 0)
			rc = map(sqlite3_bind_blob64(s, 2, value, len, SQLITE_STATIC));
		else
			sqlite3_bind_zeroblob(s, 2, 0);
		if (rc == 0)
			rc = step_done(s);
		done(s);
	}
	unlock(st);
	return rc;
}

int agd_store_kv_get(struct agd_store *st, const char *key, void **value, size_t *len)
{
	sqlite3_stmt *s;
	int rc = 0, r;

	if (value != NULL)
		*value = NULL;
	if (len != NULL)
		*len = 0;
	if (st == NULL || !text_ok(key, AGD_STORE_KEY_MAX, 0) || value == NULL || len == NULL)
		return AGD_STORE_ERR_ARG;
	lock(st);
	if ((s = stmt(st, S_KV_GET, &rc)) != NULL) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		r = sqlite3_step(s);
		if (r == SQLITE_ROW)
			rc = copy_blob(s, 0, (uint8_t **)value, len);
		else
			rc = r == SQLITE_DONE ? AGD_STORE_ERR_NOTFOUND : map(r);
		done(s);
	}
	unlock(st);
	return rc;
}

int agd_store_kv_prune(struct agd_store *st, const char *prefix, uint64_t keep, uint64_t *deleted)
{
	sqlite3_stmt *s = NULL;
	char hi[AGD_STORE_KEY_MAX + 2];
	size_t n;
	int rc;

	if (deleted != NULL)
		*deleted = 0;
	if (st == NULL || !text_ok(prefix, AGD_STORE_KEY_MAX, 0) || keep > INT64_MAX)
		return AGD_STORE_ERR_ARG;
	/* Keys in [prefix, prefix with its last byte + 1): a range the
	 * primary key's index answers, with no LIKE escaping. */
	n = strlen(prefix);
	memcpy(hi, prefix, n + 1);
	if ((unsigned char)hi[n - 1] == 0xff)
		return AGD_STORE_ERR_ARG;
	hi[n - 1] = (char)((unsigned char)hi[n - 1] + 1);
	lock(st);
	if ((rc = write_level(st)) != 0) {
		unlock(st);
		return rc;
	}
	/* A key keeps its rowid when its value is replaced: rowid order is
	 * the order keys were first written in. */
	rc = map(sqlite3_prepare_v2(st->db,
				    "DELETE FROM kv WHERE key >= ?1 AND key < ?2 AND rowid NOT IN "
				    "(SELECT rowid FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY rowid DESC LIMIT ?3)",
				    -1, &s, NULL));
	if (rc == 0 && tx_aborted(st))
		rc = AGD_STORE_ERR_ABORTED;
	if (rc == 0) {
		sqlite3_bind_text(s, 1, prefix, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, hi, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, (sqlite3_int64)keep);
		rc = step_done(s);
		if (rc == 0 && deleted != NULL)
			*deleted = (uint64_t)sqlite3_changes(st->db);
	}
	sqlite3_finalize(s);
	unlock(st);
	return rc;
}

int agd_store_kv_delete(struct agd_store *st, const char *key)
{
	if (st == NULL || !text_ok(key, AGD_STORE_KEY_MAX, 0))
		return AGD_STORE_ERR_ARG;
	return delete_by(st, S_KV_DEL, key, -1, 1);
}

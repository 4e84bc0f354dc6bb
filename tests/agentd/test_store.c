/*
 * test_store.c: the durable store keeps what it acknowledged (across
 * reopen and kill -9), enforces its invariants (an agent's segment is
 * cached; a cached segment in use stays), makes transactions atomic across
 * threads, and turns full disks, I/O errors and foreign files into error
 * codes.
 */
#include "agd_store.h"
#include "tst_proc.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];
static char path[512];
static struct mig_key *author;

static void setup(void)
{
	cr_assert_eq(tst_tmpdir(dir, sizeof dir), 0);
	snprintf(path, sizeof path, "%s/%s", dir, AGD_STORE_FILE);
	cr_assert_eq(mig_key_generate("author", &author), 0);
}

static void teardown(void)
{
	mig_key_destroy(&author);
	tst_rmtree(dir);
}

TestSuite(agd_store, .init = setup, .fini = teardown, .timeout = 120);

/* A signed, decoded segment named `name` whose source is `src`. */
static struct mig_segment *segment(const char *name, const char *src)
{
	char manifest[256];
	struct mig_seg_file f = { "main.lua", src, strlen(src) };
	struct mig_segment *seg = NULL, *signed_seg = NULL;
	struct mig_error err;
	uint8_t *buf;
	size_t len;

	snprintf(manifest, sizeof manifest,
		 "agentd-manifest 1\nname = %s\nversion = 1\nentry = main.lua main\nmobility = strong\n"
		 "file = main.lua\n", name);
	cr_assert_eq(mig_segment_build(manifest, strlen(manifest), &f, 1, &seg, &err), 0, "%s", err.msg);
	cr_assert_eq(mig_segment_sign(seg, author, &buf, &len), 0);
	cr_assert_eq(mig_segment_decode(buf, len, &signed_seg, &err), 0, "%s", err.msg);
	free(buf);
	mig_segment_destroy(&seg);
	return signed_seg;
}

static struct agd_store *open_store(void)
{
	struct agd_store *st = NULL;
	int rc = agd_store_open(path, &st);

	cr_assert_eq(rc, 0, "%s", agd_store_strerror(rc));
	return st;
}

static void agent(struct agd_agent_rec *r, const char *id, const struct mig_segment *seg,
		  const char *state, const char *status)
{
	memset(r, 0, sizeof *r);
	snprintf(r->id, sizeof r->id, "%s", id);
	memcpy(r->segment, mig_segment_hash(seg), 32);
	r->state = (uint8_t *)state;
	r->state_len = state != NULL ? strlen(state) : 0;
	snprintf(r->status, sizeof r->status, "%s", status);
	r->epoch = 7;
	snprintf(r->home, sizeof r->home, "tcp://127.0.0.1:7401");
	r->mobility = MIG_MOBILITY_STRONG;
	r->activation = MIG_ACTIVATION_ON_DEMAND;
	snprintf(r->reason, sizeof r->reason, "created by test");
}

Test(agd_store, fresh_store_has_the_versioned_schema_in_wal_mode)
{
	struct agd_store *st = open_store();
	sqlite3 *db;
	sqlite3_stmt *s;

	agd_store_close(&st);
	cr_assert_null(st);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(s, 0), AGD_STORE_SCHEMA);
	sqlite3_finalize(s);
	cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	cr_assert_eq(sqlite3_prepare_v2(db,
					"SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
					"('segments','agents','forwards','resources','kv')",
					-1, &s, NULL),
		     SQLITE_OK);
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	cr_assert_eq(sqlite3_column_int(s, 0), 5);
	sqlite3_finalize(s);
	sqlite3_close(db);
	/* And it opens again. */
	st = open_store();
	agd_store_close(&st);
}

Test(agd_store, code_cache_answers_has_and_gives_back_the_signed_bytes)
{
	struct agd_store *st = open_store();
	struct mig_segment *seg = segment("pinger", "function main() end"), *back = NULL;
	const uint8_t *orig;
	uint8_t *bytes = NULL, other[32] = { 1 };
	size_t len, olen;
	struct mig_error err;

	cr_assert_eq(agd_store_segment_has(st, mig_segment_hash(seg)), 0);
	cr_assert_eq(agd_store_segment_get(st, mig_segment_hash(seg), &bytes, &len), AGD_STORE_ERR_NOTFOUND);
	cr_assert_eq(agd_store_segment_put(st, seg), 0);
	cr_assert_eq(agd_store_segment_put(st, seg), 0, "storing twice is harmless");
	cr_assert_eq(agd_store_segment_has(st, mig_segment_hash(seg)), 1);
	cr_assert_eq(agd_store_segment_has(st, other), 0);
	cr_assert_eq(agd_store_segment_get(st, mig_segment_hash(seg), &bytes, &len), 0);
	orig = mig_segment_signed_bytes(seg, &olen);
	cr_assert_eq(len, olen);
	cr_assert_eq(memcmp(bytes, orig, len), 0);
	cr_assert_eq(mig_segment_decode(bytes, len, &back, &err), 0);
	cr_assert_eq(mig_segment_verify(back), 0);
	free(bytes);
	mig_segment_destroy(&back);
	cr_assert_eq(agd_store_segment_delete(st, mig_segment_hash(seg)), 0);
	cr_assert_eq(agd_store_segment_has(st, mig_segment_hash(seg)), 0);
	cr_assert_eq(agd_store_segment_delete(st, mig_segment_hash(seg)), AGD_STORE_ERR_NOTFOUND);
	mig_segment_destroy(&seg);
	agd_store_close(&st);
}

Test(agd_store, an_unsigned_segment_is_not_cached)
{
	struct agd_store *st = open_store();
	static const char m[] = "agentd-manifest 1\nname = a\nversion = 1\nentry = a.lua f\n"
				"mobility = weak\nfile = a.lua\n";
	struct mig_seg_file f = { "a.lua", "x = 1", 5 };
	struct mig_segment *seg = NULL;

	cr_assert_eq(mig_segment_build(m, strlen(m), &f, 1, &seg, NULL), 0);
	cr_assert_eq(agd_store_segment_put(st, seg), AGD_STORE_ERR_ARG);
	mig_segment_destroy(&seg);
	agd_store_close(&st);
}

static int count_seg(const struct agd_segment_info *info, void *ud)
{
	(void)info;
	++*(int *)ud;
	return 0;
}

/* Agent id's row in st holds state (len bytes; none when 0) and, when
 * status is not NULL, that status and epoch. */
static void assert_row(struct agd_store *st, const char *id, const char *state, size_t len,
		       uint64_t epoch, const char *status)
{
	struct agd_agent_rec got;

	cr_assert_eq(agd_store_agent_get(st, id, &got), 0, "%s", id);
	cr_assert_eq(got.state_len, len, "%s", id);
	if (len > 0)
		cr_assert_eq(memcmp(got.state, state, len), 0, "%s", id);
	if (status != NULL) {
		cr_assert_eq(got.epoch, epoch, "%s", id);
		cr_assert_str_eq(got.status, status);
	}
	agd_store_agent_clear(&got);
}

/* A row's epoch only goes up: a put or a status change with an older one
 * (a writer that knew less) keeps the higher; mark raises it. */
Test(agd_store, an_agents_epoch_never_goes_down)
{
	struct agd_store *st = open_store();
	struct mig_segment *seg = segment("pinger", "function main() end");
	struct agd_agent_rec r;

	cr_assert_eq(agd_store_segment_put(st, seg), 0);
	agent(&r, "a1", seg, "S", "running");
	r.epoch = 5;
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	r.epoch = 3;
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	assert_row(st, "a1", "S", 1, 5, "running");
	cr_assert_eq(agd_store_agent_mark(st, "a1", "migrating", "to h2", 9), 0);
	cr_assert_eq(agd_store_agent_set_status(st, "a1", "running", "transfer failed"), 0);
	cr_assert_eq(agd_store_agent_mark(st, "a1", "running", "", 4), 0);
	r.epoch = 0;
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	assert_row(st, "a1", "S", 1, 9, "running");
	cr_assert_eq(agd_store_agent_mark(st, "nobody", "running", "", 1), AGD_STORE_ERR_NOTFOUND);
	agd_store_close(&st);
	mig_segment_destroy(&seg);
}

Test(agd_store, agents_round_trip_and_need_their_segment)
{
	struct agd_store *st = open_store();
	struct mig_segment *seg = segment("pinger", "function main() end");
	struct mig_segment *stray = segment("stray", "function main() return 1 end");
	struct agd_agent_rec r, got;
	int nseg = 0;

	agent(&r, "a1", stray, "STATE-BYTES", "passive");
	cr_assert_eq(agd_store_agent_put(st, &r), AGD_STORE_ERR_CONSTRAINT,
		     "an agent whose code is not cached is refused");
	cr_assert_eq(agd_store_segment_put(st, seg), 0);
	agent(&r, "a1", seg, "STATE-BYTES", "passive");
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	cr_assert_eq(agd_store_agent_get(st, "a1", &got), 0);
	cr_assert_str_eq(got.id, "a1");
	cr_assert_eq(memcmp(got.segment, mig_segment_hash(seg), 32), 0);
	cr_assert_eq(got.state_len, 11);
	cr_assert_eq(memcmp(got.state, "STATE-BYTES", 11), 0);
	cr_assert_str_eq(got.status, "passive");
	cr_assert_eq(got.epoch, 7);
	cr_assert_str_eq(got.home, "tcp://127.0.0.1:7401");
	cr_assert_eq(got.mobility, MIG_MOBILITY_STRONG);
	cr_assert_eq(got.activation, MIG_ACTIVATION_ON_DEMAND);
	cr_assert_str_eq(got.reason, "created by test");
	cr_assert_gt(got.updated_ms, 1600000000000LL);
	agd_store_agent_clear(&got);
	cr_assert_null(got.state);

	/* Replace: new state, new epoch. */
	agent(&r, "a1", seg, "NEW", "running");
	r.epoch = 8;
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	cr_assert_eq(agd_store_agent_get(st, "a1", &got), 0);
	cr_assert_eq(got.state_len, 3);
	cr_assert_eq(got.epoch, 8);
	agd_store_agent_clear(&got);

	/* A cached segment in use cannot be evicted. */
	cr_assert_eq(agd_store_segment_delete(st, mig_segment_hash(seg)), AGD_STORE_ERR_CONSTRAINT);
	cr_assert_eq(agd_store_agent_set_status(st, "a1", "failed", "out of memory"), 0);
	cr_assert_eq(agd_store_agent_get(st, "a1", &got), 0);
	cr_assert_str_eq(got.status, "failed");
	cr_assert_str_eq(got.reason, "out of memory");
	cr_assert_eq(got.state_len, 3, "set_status keeps the state");
	agd_store_agent_clear(&got);
	cr_assert_eq(agd_store_agent_set_status(st, "zz", "failed", NULL), AGD_STORE_ERR_NOTFOUND);

	cr_assert_eq(agd_store_agent_delete(st, "a1"), 0);
	cr_assert_eq(agd_store_agent_get(st, "a1", &got), AGD_STORE_ERR_NOTFOUND);
	cr_assert_eq(agd_store_agent_delete(st, "a1"), AGD_STORE_ERR_NOTFOUND);
	cr_assert_eq(agd_store_segment_list(st, count_seg, &nseg), 0);
	cr_assert_eq(nseg, 1);
	cr_assert_eq(agd_store_segment_delete(st, mig_segment_hash(seg)), 0);
	mig_segment_destroy(&seg);
	mig_segment_destroy(&stray);
	agd_store_close(&st);
}

/* Counts the rows of `sql` (a SELECT count(*)) in the store's file. */
static int count_rows(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int n;

	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

Test(agd_store, a_state_lives_and_dies_with_its_agent_and_an_empty_one_has_no_row)
{
	struct agd_store *st = open_store();
	struct mig_segment *seg = segment("pinger", "function main() end");
	struct agd_agent_rec r, got;

	cr_assert_eq(agd_store_segment_put(st, seg), 0);
	agent(&r, "a1", seg, "STATE-BYTES", "passive");
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	agent(&r, "a2", seg, "OTHER", "passive");
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	/* The same state again leaves it as it was; a status change too. */
	agent(&r, "a1", seg, "STATE-BYTES", "running");
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	cr_assert_eq(agd_store_agent_set_status(st, "a1", "waiting", "sleep"), 0);
	cr_assert_eq(agd_store_agent_get(st, "a1", &got), 0);
	cr_assert_eq(got.state_len, 11);
	cr_assert_eq(memcmp(got.state, "STATE-BYTES", 11), 0);
	cr_assert_str_eq(got.status, "waiting");
	agd_store_agent_clear(&got);
	/* Peek gives the row without the state. */
	cr_assert_eq(agd_store_agent_peek(st, "a1", &got), 0);
	cr_assert_null(got.state);
	cr_assert_str_eq(got.status, "waiting");
	/* No state: no state row, and get gives none. */
	agent(&r, "a2", seg, NULL, "created");
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	cr_assert_eq(agd_store_agent_get(st, "a2", &got), 0);
	cr_assert_eq(got.state_len, 0);
	cr_assert_null(got.state);
	agd_store_agent_clear(&got);
	agd_store_close(&st);
	cr_assert_eq(count_rows("SELECT count(*) FROM agent_states"), 1);
	/* Deleting the agent deletes its state. */
	st = open_store();
	cr_assert_eq(agd_store_agent_delete(st, "a1"), 0);
	agd_store_close(&st);
	cr_assert_eq(count_rows("SELECT count(*) FROM agent_states"), 0);
	mig_segment_destroy(&seg);
}

/* The agents table as versions 1 and 2 made it (rowid, with status and
 * segment indexes); version 1 had the state as a column (extra). */
#define LEGACY_AGENTS(extra)                                                        \
	"CREATE TABLE agents (id TEXT PRIMARY KEY NOT NULL,"                        \
	" segment BLOB NOT NULL REFERENCES segments(hash)," extra                   \
	" status TEXT NOT NULL, epoch INTEGER NOT NULL, home TEXT NOT NULL,"        \
	" mobility INTEGER NOT NULL, activation INTEGER NOT NULL,"                  \
	" updated_ms INTEGER NOT NULL, reason TEXT NOT NULL);"                      \
	"CREATE INDEX agents_status ON agents(status);"                             \
	"CREATE INDEX agents_segment ON agents(segment);"

/* A store at `path` holding seg, turned by `sql` into what an earlier
 * version wrote. */
static void legacy_store(const struct mig_segment *seg, const char *sql)
{
	struct agd_store *st = open_store();
	sqlite3 *db;

	cr_assert_eq(agd_store_segment_put(st, seg), 0);
	agd_store_close(&st);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
}

Test(agd_store, a_version_1_store_is_upgraded_in_place_with_its_states)
{
	struct agd_store *st;
	struct mig_segment *seg = segment("pinger", "function main() end");

	/* A store as version 1 wrote it: the state a column of agents. */
	legacy_store(seg, "DROP TRIGGER agents_state_gone; DROP TABLE agent_states; DROP TABLE agents;"
			  LEGACY_AGENTS(" state BLOB,")
			  "INSERT INTO agents VALUES ('old1', (SELECT hash FROM segments), X'01020304',"
			  " 'passive', 5, 'tcp://h:1', 2, 1, 1, 'r');"
			  "INSERT INTO agents VALUES ('old2', (SELECT hash FROM segments), NULL,"
			  " 'created', 1, 'tcp://h:1', 2, 1, 1, 'r');"
			  "PRAGMA user_version = 1");

	st = open_store();
	assert_row(st, "old1", "\x01\x02\x03\x04", 4, 5, "passive");
	assert_row(st, "old2", NULL, 0, 0, NULL);
	agd_store_close(&st);
	cr_assert_eq(count_rows("SELECT count(*) FROM pragma_table_info('agents') WHERE name = 'state'"), 0);
	cr_assert_eq(count_rows("SELECT count(*) FROM pragma_user_version WHERE user_version = 3"), 1);
	mig_segment_destroy(&seg);
}

/* Version 2 kept agents and forwards as rowid tables, agents with status
 * and segment indexes. Opened, such a store is rebuilt in place: rows,
 * states and forwarding pointers kept, the tables WITHOUT ROWID, the
 * indexes gone, and deleting an agent still takes its state with it. */
Test(agd_store, a_version_2_store_is_upgraded_in_place_keeping_rows_states_and_pointers)
{
	struct agd_store *st;
	struct mig_segment *seg = segment("pinger", "function main() end");
	struct agd_agent_rec got;
	char host[64];
	uint64_t epoch = 0;

	legacy_store(seg, "DROP TRIGGER agents_state_gone; DROP TABLE agents; DROP TABLE forwards;"
			  LEGACY_AGENTS("")
			  "CREATE TRIGGER agents_state_gone AFTER DELETE ON agents BEGIN"
			  " DELETE FROM agent_states WHERE id = old.id; END;"
			  "CREATE TABLE forwards (agent TEXT PRIMARY KEY NOT NULL, host TEXT NOT NULL,"
			  " epoch INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
			  "INSERT INTO agents VALUES ('a1', (SELECT hash FROM segments), 'waiting', 7,"
			  " 'h1', 3, 1, 1, 'sleep');"
			  "INSERT INTO agents VALUES ('a2', (SELECT hash FROM segments), 'created', 1,"
			  " 'h1', 3, 1, 1, '');"
			  "INSERT INTO agent_states VALUES ('a1', X'0A0B0C');"
			  "INSERT INTO forwards VALUES ('gone1', 'h2', 4, 1);"
			  "PRAGMA user_version = 2");

	st = open_store();
	assert_row(st, "a1", "\x0a\x0b\x0c", 3, 7, "waiting");
	cr_assert_eq(agd_store_agent_get(st, "a1", &got), 0);
	cr_assert_str_eq(got.reason, "sleep");
	agd_store_agent_clear(&got);
	assert_row(st, "a2", NULL, 0, 0, NULL);
	cr_assert_eq(agd_store_forward_get(st, "gone1", host, &epoch), 0);
	cr_assert_str_eq(host, "h2");
	cr_assert_eq(epoch, 4);
	/* The trigger came along: a deleted agent's state goes with it. */
	cr_assert_eq(agd_store_agent_delete(st, "a1"), 0);
	agd_store_close(&st);
	cr_assert_eq(count_rows("SELECT count(*) FROM agent_states"), 0);
	cr_assert_eq(count_rows("SELECT count(*) FROM sqlite_schema WHERE name IN ('agents', 'forwards')"
				" AND sql LIKE '%WITHOUT ROWID'"), 2);
	cr_assert_eq(count_rows("SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND"
				" tbl_name = 'agents' AND sql IS NOT NULL"), 0);
	cr_assert_eq(count_rows("SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_v2'"), 0);
	cr_assert_eq(count_rows("SELECT count(*) FROM pragma_user_version WHERE user_version = 3"), 1);
	mig_segment_destroy(&seg);
}

Test(agd_store, oversized_or_missing_fields_are_refused)
{
	struct agd_store *st = open_store();
	struct mig_segment *seg = segment("pinger", "function main() end");
	struct agd_agent_rec r;

	cr_assert_eq(agd_store_segment_put(st, seg), 0);
	agent(&r, "a1", seg, NULL, "passive");
	memset(r.id, 'x', sizeof r.id); /* no NUL inside */
	cr_assert_eq(agd_store_agent_put(st, &r), AGD_STORE_ERR_ARG);
	agent(&r, "", seg, NULL, "passive");
	cr_assert_eq(agd_store_agent_put(st, &r), AGD_STORE_ERR_ARG);
	agent(&r, "a1", seg, NULL, "");
	cr_assert_eq(agd_store_agent_put(st, &r), AGD_STORE_ERR_ARG);
	agent(&r, "a1", seg, NULL, "passive");
	r.state_len = 5; /* with a NULL state */
	cr_assert_eq(agd_store_agent_put(st, &r), AGD_STORE_ERR_ARG);
	cr_assert_eq(agd_store_agent_get(st, NULL, &r), AGD_STORE_ERR_ARG);
	mig_segment_destroy(&seg);
	agd_store_close(&st);
}

struct listing {
	int n;
	char ids[8][AGD_STORE_ID_MAX + 1];
	size_t state_bytes;
};

static int collect(const struct agd_agent_rec *rec, void *ud)
{
	struct listing *l = ud;

	if (l->n < 8)
		snprintf(l->ids[l->n], sizeof l->ids[0], "%s", rec->id);
	l->n++;
	l->state_bytes += rec->state_len;
	return 0;
}

static int stop_at_two(const struct agd_agent_rec *rec, void *ud)
{
	(void)rec;
	return ++*(int *)ud == 2 ? 42 : 0;
}

Test(agd_store, agents_are_listed_by_status_with_or_without_state)
{
	struct agd_store *st = open_store();
	struct mig_segment *seg = segment("pinger", "function main() end");
	struct agd_agent_rec r;
	struct listing l;
	uint64_t count;
	int n = 0;

	cr_assert_eq(agd_store_segment_put(st, seg), 0);
	agent(&r, "c", seg, "333", "passive");
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	agent(&r, "a", seg, "1", "passive");
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	agent(&r, "b", seg, "22", "running");
	cr_assert_eq(agd_store_agent_put(st, &r), 0);

	memset(&l, 0, sizeof l);
	cr_assert_eq(agd_store_agent_list(st, NULL, 1, collect, &l), 0);
	cr_assert_eq(l.n, 3);
	cr_assert_str_eq(l.ids[0], "a");
	cr_assert_str_eq(l.ids[2], "c");
	cr_assert_eq(l.state_bytes, 6);
	memset(&l, 0, sizeof l);
	cr_assert_eq(agd_store_agent_list(st, "passive", 0, collect, &l), 0);
	cr_assert_eq(l.n, 2);
	cr_assert_eq(l.state_bytes, 0, "without state no state is read");
	cr_assert_eq(agd_store_agent_list(st, NULL, 0, stop_at_two, &n), 42);
	cr_assert_eq(n, 2);
	cr_assert_eq(agd_store_agent_count(st, NULL, &count), 0);
	cr_assert_eq(count, 3);
	cr_assert_eq(agd_store_agent_count(st, "running", &count), 0);
	cr_assert_eq(count, 1);
	mig_segment_destroy(&seg);
	agd_store_close(&st);
}

/* A listing callback may call the store (same thread). */
static int reenter(const struct agd_agent_rec *rec, void *ud)
{
	struct agd_store *st = ud;

	return agd_store_agent_set_status(st, rec->id, "running", "activated");
}

Test(agd_store, a_listing_callback_may_call_the_store)
{
	struct agd_store *st = open_store();
	struct mig_segment *seg = segment("pinger", "function main() end");
	struct agd_agent_rec r;
	uint64_t count;

	cr_assert_eq(agd_store_segment_put(st, seg), 0);
	agent(&r, "a", seg, "1", "passive");
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	agent(&r, "b", seg, "1", "passive");
	cr_assert_eq(agd_store_agent_put(st, &r), 0);
	cr_assert_eq(agd_store_agent_list(st, "passive", 0, reenter, st), 0);
	cr_assert_eq(agd_store_agent_count(st, "running", &count), 0);
	cr_assert_eq(count, 2);
	mig_segment_destroy(&seg);
	agd_store_close(&st);
}

Test(agd_store, forwards_resources_and_kv_round_trip)
{
	struct agd_store *st = open_store();
	char host[AGD_STORE_HOST_MAX + 1];
	uint64_t epoch;
	struct agd_resource_rec res, got;
	void *val;
	size_t len;

	cr_assert_eq(agd_store_forward_get(st, "a1", host, &epoch), AGD_STORE_ERR_NOTFOUND);
	cr_assert_eq(agd_store_forward_put(st, "a1", "h2", 3), 0);
	cr_assert_eq(agd_store_forward_put(st, "a1", "h3", 4), 0);
	cr_assert_eq(agd_store_forward_get(st, "a1", host, &epoch), 0);
	cr_assert_str_eq(host, "h3");
	cr_assert_eq(epoch, 4);
	cr_assert_eq(agd_store_forward_delete(st, "a1"), 0);
	cr_assert_eq(agd_store_forward_delete(st, "a1"), AGD_STORE_ERR_NOTFOUND);

	memset(&res, 0, sizeof res);
	snprintf(res.id, sizeof res.id, "printer-1");
	snprintf(res.kind, sizeof res.kind, "device");
	snprintf(res.attachment, sizeof res.attachment, "fixed");
	snprintf(res.home, sizeof res.home, "h1");
	res.meta = (uint8_t *)"{\"path\":\"/dev/null\"}";
	res.meta_len = strlen((char *)res.meta);
	cr_assert_eq(agd_store_resource_put(st, &res), 0);
	cr_assert_eq(agd_store_resource_get(st, "printer-1", &got), 0);
	cr_assert_str_eq(got.kind, "device");
	cr_assert_str_eq(got.attachment, "fixed");
	cr_assert_eq(got.meta_len, res.meta_len);
	cr_assert_eq(memcmp(got.meta, res.meta, res.meta_len), 0);
	agd_store_resource_clear(&got);
	cr_assert_eq(agd_store_resource_delete(st, "printer-1"), 0);
	cr_assert_eq(agd_store_resource_get(st, "printer-1", &got), AGD_STORE_ERR_NOTFOUND);

	cr_assert_eq(agd_store_kv_get(st, "host.id", &val, &len), AGD_STORE_ERR_NOTFOUND);
	cr_assert_eq(agd_store_kv_put(st, "host.id", "h1\0x", 4), 0);
	cr_assert_eq(agd_store_kv_get(st, "host.id", &val, &len), 0);
	cr_assert_eq(len, 4);
	cr_assert_eq(memcmp(val, "h1\0x", 4), 0);
	free(val);
	cr_assert_eq(agd_store_kv_put(st, "empty", NULL, 0), 0);
	cr_assert_eq(agd_store_kv_get(st, "empty", &val, &len), 0);
	cr_assert_eq(len, 0);
	free(val);
	cr_assert_eq(agd_store_kv_delete(st, "host.id"), 0);
	agd_store_close(&st);
}

static int count_res(const struct agd_resource_rec *rec, void *ud)
{
	(void)rec;
	++*(int *)ud;
	return 0;
}

Test(agd_store, rollback_discards_and_commit_survives_reopen)
{
	struct agd_store *st = open_store();
	struct agd_resource_rec res;
	int n = 0;

	memset(&res, 0, sizeof res);
	snprintf(res.kind, sizeof res.kind, "kv");
	snprintf(res.attachment, sizeof res.attachment, "unattached");
	cr_assert_eq(agd_store_begin(st, 1), 0);
	cr_assert_eq(agd_store_begin(st, 1), AGD_STORE_ERR_ARG, "no nesting");
	snprintf(res.id, sizeof res.id, "r1");
	cr_assert_eq(agd_store_resource_put(st, &res), 0);
	cr_assert_eq(agd_store_rollback(st), 0);
	cr_assert_eq(agd_store_commit(st), AGD_STORE_ERR_ARG, "nothing to commit");

	cr_assert_eq(agd_store_begin(st, 0), 0);
	snprintf(res.id, sizeof res.id, "r2");
	cr_assert_eq(agd_store_resource_put(st, &res), 0);
	snprintf(res.id, sizeof res.id, "r3");
	cr_assert_eq(agd_store_resource_put(st, &res), 0);
	cr_assert_eq(agd_store_commit(st), 0);
	agd_store_close(&st);

	st = open_store();
	cr_assert_eq(agd_store_resource_list(st, count_res, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(agd_store_resource_get(st, "r1", &res), AGD_STORE_ERR_NOTFOUND);
	agd_store_close(&st);
}

/* Each thread adds 1 to a shared counter 200 times, read-modify-write in a
 * transaction; without isolation between threads updates would be lost. */
static void *increment(void *arg)
{
	struct agd_store *st = arg;

	for (int i = 0; i < 200; i++) {
		void *val = NULL;
		size_t len = 0;
		uint64_t v = 0;

		if (agd_store_begin(st, 0) != 0)
			return (void *)1;
		if (agd_store_kv_get(st, "counter", &val, &len) == 0 && len == sizeof v)
			memcpy(&v, val, sizeof v);
		free(val);
		v++;
		if (agd_store_kv_put(st, "counter", &v, sizeof v) != 0 || agd_store_commit(st) != 0)
			return (void *)1;
	}
	return NULL;
}

/* Joins n `increment` threads; the counter they reached. */
static uint64_t join_and_count(struct agd_store *st, pthread_t *th, int n)
{
	void *val, *ret;
	size_t len;
	uint64_t v;

	for (int i = 0; i < n; i++) {
		cr_assert_eq(pthread_join(th[i], &ret), 0);
		cr_assert_null(ret);
	}
	cr_assert_eq(agd_store_kv_get(st, "counter", &val, &len), 0);
	cr_assert_eq(len, sizeof v);
	memcpy(&v, val, sizeof v);
	free(val);
	return v;
}

Test(agd_store, transactions_are_atomic_across_threads)
{
	struct agd_store *st = open_store();
	pthread_t th[4];

	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, increment, st), 0);
	cr_assert_eq(join_and_count(st, th, 4), 800);
	agd_store_close(&st);
}

/* Runs work(path) in a child process that then waits, still holding the
 * store, to be killed; returns its pid once work succeeded. */
static pid_t child_at_work(int (*work)(const char *path))
{
	int fds[2];
	pid_t pid;
	char c;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		if (work(path) != 0 || write(fds[1], "k", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	cr_assert_eq(read(fds[0], &c, 1), 1, "the child's work failed");
	close(fds[0]);
	return pid;
}

static void kill_9(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Acknowledges one commit, then keeps a transaction open that must not
 * survive. */
static int ack_then_pend(const char *file)
{
	struct agd_store *cst = NULL;

	if (agd_store_open(file, &cst) != 0 || agd_store_begin(cst, 1) != 0 ||
	    agd_store_kv_put(cst, "acked", "yes", 3) != 0 || agd_store_commit(cst) != 0)
		return -1;
	if (agd_store_begin(cst, 1) != 0 || agd_store_kv_put(cst, "pending", "no", 2) != 0)
		return -1;
	return 0;
}

Test(agd_store, a_commit_survives_kill_9)
{
	struct agd_store *st;
	void *val;
	size_t len;

	kill_9(child_at_work(ack_then_pend));
	st = open_store();
	cr_assert_eq(agd_store_kv_get(st, "acked", &val, &len), 0);
	cr_assert_eq(len, 3);
	free(val);
	cr_assert_eq(agd_store_kv_get(st, "pending", &val, &len), AGD_STORE_ERR_NOTFOUND);
	agd_store_close(&st);
}

/* The daemon's handle (private): while a process holds it nobody else
 * opens the file (a second daemon on the same data directory is refused,
 * not let in to corrupt it); its commits survive its kill -9, the WAL
 * index it kept in memory rebuilt by the next opener. */
/* 50 commits through a private handle, durable and not. */
static int fifty_private(const char *file)
{
	struct agd_store *cst = NULL;

	if (agd_store_open_private(file, &cst) != 0)
		return -1;
	for (int i = 0; i < 50; i++) {
		char key[32];

		snprintf(key, sizeof key, "k%d", i);
		if (agd_store_begin(cst, i % 2) != 0 || agd_store_kv_put(cst, key, "v", 1) != 0 ||
		    agd_store_commit(cst) != 0)
			return -1;
	}
	return 0;
}

Test(agd_store, a_private_store_keeps_others_out_and_its_commits_survive_kill_9)
{
	pid_t pid = child_at_work(fifty_private);
	struct agd_store *st = NULL;
	void *val;
	size_t len;

	cr_assert_eq(agd_store_open(path, &st), AGD_STORE_ERR_BUSY, "a second opener got in");
	cr_assert_null(st);
	kill_9(pid);

	cr_assert_eq(agd_store_open_private(path, &st), 0);
	for (int i = 0; i < 50; i++) {
		char key[32];

		snprintf(key, sizeof key, "k%d", i);
		cr_assert_eq(agd_store_kv_get(st, key, &val, &len), 0, "commit %d lost", i);
		free(val);
	}
	agd_store_close(&st);
	/* Closed, it lets others in again. */
	cr_assert_eq(agd_store_open(path, &st), 0);
	agd_store_close(&st);
}

static int kv_has(struct agd_store *st, const char *key)
{
	void *val = NULL;
	size_t len = 0;
	int rc = agd_store_kv_get(st, key, &val, &len);

	free(val);
	cr_assert(rc == 0 || rc == AGD_STORE_ERR_NOTFOUND, "%s: %s", key, agd_store_strerror(rc));
	return rc == 0;
}

/* A group: its transactions and lone statements commit once, together; a
 * rollback inside undoes its own writes only. */
Test(agd_store, a_group_commits_its_writes_once_and_a_rollback_inside_undoes_only_its_own)
{
	struct agd_store *st = open_store();
	uint64_t before = agd_store_commits(st);

	/* The group's first transaction undone, then the rest. */
	agd_store_group_begin(st);
	cr_assert_eq(agd_store_begin(st, 1), 0);
	cr_assert_eq(agd_store_kv_put(st, "x", "0", 1), 0);
	cr_assert_eq(agd_store_rollback(st), 0);
	cr_assert(!kv_has(st, "x"));
	cr_assert_eq(agd_store_begin(st, 1), 0);
	cr_assert_eq(agd_store_kv_put(st, "a", "1", 1), 0);
	cr_assert_eq(agd_store_commit(st), 0);
	cr_assert_eq(agd_store_begin(st, 0), 0);
	cr_assert_eq(agd_store_begin(st, 0), AGD_STORE_ERR_ARG, "no nesting in a group either");
	cr_assert_eq(agd_store_kv_put(st, "b", "2", 1), 0);
	cr_assert_eq(agd_store_rollback(st), 0);
	cr_assert_eq(agd_store_kv_put(st, "c", "3", 1), 0);
	cr_assert_eq(agd_store_begin(st, 1), 0);
	cr_assert_eq(agd_store_kv_put(st, "d", "4", 1), 0);
	cr_assert_eq(agd_store_commit(st), 0);
	cr_assert(kv_has(st, "a") && !kv_has(st, "b") && kv_has(st, "c") && kv_has(st, "d"),
		  "the group reads its own writes");
	cr_assert_eq(agd_store_commits(st), before, "nothing committed before the group ends");
	cr_assert_eq(agd_store_group_end(st), 0);
	cr_assert_eq(agd_store_commits(st), before + 1, "one commit for the group");
	cr_assert_eq(agd_store_group_end(st), 0, "no group open is not an error");
	agd_store_close(&st);

	st = open_store();
	cr_assert(kv_has(st, "a") && !kv_has(st, "b") && kv_has(st, "c") && kv_has(st, "d"));
	cr_assert(!kv_has(st, "x"));
	/* Outside a group, transactions are their own again. */
	cr_assert_eq(agd_store_begin(st, 1), 0);
	cr_assert_eq(agd_store_kv_put(st, "e", "5", 1), 0);
	cr_assert_eq(agd_store_commit(st), 0);
	cr_assert_eq(agd_store_commits(st), 1);
	agd_store_close(&st);
}

/* Until its end a group is not durable, though its commits said 0: a
 * kill -9 before the end loses all of it and nothing before it. */
/* A lone commit, an ended group, then a group left open. */
static int groups_one_open(const char *file)
{
	struct agd_store *cst = NULL;

	if (agd_store_open_private(file, &cst) != 0 || agd_store_kv_put(cst, "alone", "x", 1) != 0)
		return -1;
	agd_store_group_begin(cst);
	if (agd_store_begin(cst, 1) != 0 || agd_store_kv_put(cst, "ended", "x", 1) != 0 ||
	    agd_store_commit(cst) != 0 || agd_store_group_end(cst) != 0)
		return -1;
	agd_store_group_begin(cst);
	if (agd_store_begin(cst, 1) != 0 || agd_store_kv_put(cst, "open", "x", 1) != 0 ||
	    agd_store_commit(cst) != 0 || agd_store_kv_put(cst, "open2", "x", 1) != 0)
		return -1;
	return 0;
}

Test(agd_store, a_group_killed_before_its_end_leaves_nothing_and_an_ended_one_survives)
{
	struct agd_store *st;

	kill_9(child_at_work(groups_one_open));
	st = open_store();
	cr_assert(kv_has(st, "alone"));
	cr_assert(kv_has(st, "ended"), "an ended group was lost");
	cr_assert(!kv_has(st, "open") && !kv_has(st, "open2"), "a group that never ended survived");
	agd_store_close(&st);
}

/* Other threads' transactions during a group are savepoints in it, each
 * still atomic: no increment is lost. */
Test(agd_store, transactions_of_other_threads_join_a_group_and_stay_atomic)
{
	struct agd_store *st = open_store();
	pthread_t th[2];

	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, increment, st), 0);
	for (int g = 0; g < 200; g++) {
		agd_store_group_begin(st);
		cr_assert_eq(agd_store_kv_put(st, "group", &g, sizeof g), 0);
		cr_assert_eq(agd_store_group_end(st), 0);
	}
	cr_assert_eq(join_and_count(st, th, 2), 400);
	agd_store_close(&st);
}

/* A write a full store refuses inside a group: that transaction is undone
 * (or SQLite ended the whole group, which then says so); the store stays
 * consistent and usable. */
Test(agd_store, a_full_store_inside_a_group_leaves_it_consistent)
{
	struct agd_store *st = open_store();
	size_t big = 1 << 20;
	char *blob = calloc(1, big);
	int rc;

	cr_assert_not_null(blob);
	cr_assert_eq(agd_store_set_max_size(st, 256 * 1024), 0);
	agd_store_group_begin(st);
	cr_assert_eq(agd_store_begin(st, 1), 0);
	cr_assert_eq(agd_store_kv_put(st, "kept", "x", 1), 0);
	cr_assert_eq(agd_store_commit(st), 0);
	cr_assert_eq(agd_store_begin(st, 1), 0);
	rc = agd_store_kv_put(st, "big", blob, big);
	cr_assert_eq(rc, AGD_STORE_ERR_FULL, "%s", agd_store_strerror(rc));
	agd_store_rollback(st);
	rc = agd_store_kv_put(st, "after", "y", 1);
	cr_assert(rc == 0 || rc == AGD_STORE_ERR_ABORTED, "%d", rc);
	rc = agd_store_group_end(st);
	if (rc == 0) {
		cr_assert(kv_has(st, "kept"));
	} else {
		cr_assert_eq(rc, AGD_STORE_ERR_ABORTED, "%s", agd_store_strerror(rc));
		cr_assert(!kv_has(st, "kept") && !kv_has(st, "after"), "half a group survived");
	}
	cr_assert(!kv_has(st, "big"));
	cr_assert_eq(agd_store_kv_put(st, "usable", "z", 1), 0);
	free(blob);
	agd_store_close(&st);
}

Test(agd_store, size_limit_reports_full_and_the_store_stays_usable)
{
	struct agd_store *st = open_store();
	size_t big = 1 << 20;
	char *blob = calloc(1, big);
	void *val;
	size_t len;
	int rc;

	cr_assert_eq(agd_store_kv_put(st, "small", "x", 1), 0);
	cr_assert_eq(agd_store_set_max_size(st, 256 * 1024), 0);
	rc = agd_store_kv_put(st, "big", blob, big);
	cr_assert_eq(rc, AGD_STORE_ERR_FULL, "%s", agd_store_strerror(rc));
	/* In a transaction too: the commit fails or the put does; either way
	 * the store is left consistent and usable. */
	cr_assert_eq(agd_store_begin(st, 1), 0);
	cr_assert_eq(agd_store_kv_put(st, "small1", "z", 1), 0);
	rc = agd_store_kv_put(st, "big", blob, big);
	cr_assert_eq(rc, AGD_STORE_ERR_FULL);
	/* SQLite may have ended the transaction by itself: then nothing more
	 * may run in it, and a commit does not claim to keep "small1". */
	rc = agd_store_kv_put(st, "small3", "w", 1);
	cr_assert(rc == 0 || rc == AGD_STORE_ERR_ABORTED, "%d", rc);
	rc = agd_store_commit(st);
	if (rc == 0) {
		cr_assert_eq(agd_store_kv_get(st, "small1", &val, &len), 0);
		free(val);
	} else {
		cr_assert_eq(rc, AGD_STORE_ERR_ABORTED);
		cr_assert_eq(agd_store_kv_get(st, "small1", &val, &len), AGD_STORE_ERR_NOTFOUND);
		cr_assert_eq(agd_store_kv_get(st, "small3", &val, &len), AGD_STORE_ERR_NOTFOUND);
	}
	cr_assert_eq(agd_store_commit(st), AGD_STORE_ERR_ARG, "the transaction is over");
	cr_assert_eq(agd_store_kv_get(st, "small", &val, &len), 0);
	free(val);
	cr_assert_eq(agd_store_kv_get(st, "big", &val, &len), AGD_STORE_ERR_NOTFOUND);
	cr_assert_eq(agd_store_kv_put(st, "small2", "y", 1), 0);
	cr_assert_eq(agd_store_set_max_size(st, 0), 0);
	cr_assert_eq(agd_store_kv_put(st, "big", blob, big), 0);
	free(blob);
	agd_store_close(&st);
}

Test(agd_store, a_file_size_limit_gives_an_error_not_a_crash)
{
	struct agd_store *st = open_store();
	struct rlimit rl = { 64 * 1024, 64 * 1024 };
	size_t big = 1 << 20;
	char *blob = calloc(1, big);
	int rc;

	/* Writing past RLIMIT_FSIZE fails with EFBIG once SIGXFSZ is ignored:
	 * an I/O error from the disk's point of view. (Each Criterion test
	 * runs in its own process, so the limit stays here.) */
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	rc = agd_store_kv_put(st, "big", blob, big);
	cr_assert(rc == AGD_STORE_ERR_IO || rc == AGD_STORE_ERR_FULL, "got %d (%s)", rc,
		  agd_store_strerror(rc));
	cr_assert_neq(strlen(agd_store_errmsg(st)), 0);
	free(blob);
	agd_store_close(&st);
}

Test(agd_store, foreign_newer_or_unreachable_files_are_refused)
{
	struct agd_store *st = NULL;
	char other[600];
	FILE *f;
	sqlite3 *db;

	/* Not a database at all. */
	snprintf(other, sizeof other, "%s/junk.db", dir);
	f = fopen(other, "w");
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite database, just text. ", f);
	fclose(f);
	cr_assert_eq(agd_store_open(other, &st), AGD_STORE_ERR_CORRUPT);
	cr_assert_null(st);

	/* An SQLite database that is someone else's. */
	snprintf(other, sizeof other, "%s/theirs.db", dir);
	cr_assert_eq(sqlite3_open(other, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version = 1", NULL, NULL, NULL),
		     SQLITE_OK);
	sqlite3_close(db);
	cr_assert_eq(agd_store_open(other, &st), AGD_STORE_ERR_CORRUPT);

	/* Our store, from a newer build. */
	st = open_store();
	agd_store_close(&st);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	{
		char sql[64];

		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", AGD_STORE_SCHEMA + 1);
		cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	}
	sqlite3_close(db);
	cr_assert_eq(agd_store_open(path, &st), AGD_STORE_ERR_VERSION);

	/* A directory that is not there. */
	snprintf(other, sizeof other, "%s/no/such/dir/agentd.db", dir);
	cr_assert_eq(agd_store_open(other, &st), AGD_STORE_ERR_IO);
	/* A directory where the file should be. */
	cr_assert_neq(agd_store_open(dir, &st), 0);
	cr_assert_null(st);
}

Test(agd_store, strerror_names_every_code)
{
	for (int c = AGD_STORE_ERR_NOMEM; c >= AGD_STORE_ERR_ABORTED; c--)
		cr_assert_str_neq(agd_store_strerror(c), "unknown store error", "code %d", c);
	cr_assert_str_eq(agd_store_strerror(-1), "unknown store error");
}

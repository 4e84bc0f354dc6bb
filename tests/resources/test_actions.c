/*
 * test_actions.c: MV, CP, RB and GR carried out between registries of one
 * process joined by a loopback transport, with real files and SQLite stores
 * in temp dirs. Each test checks where the content is after the action, and
 * that the agent reads and writes through its handle before and after the
 * hop; GRs keep working after further hops, and a GR to a dead home gives a
 * clear error while the agent goes on.
 */
#include "res_agent.h"

#include <dirent.h>
#include <sqlite3.h>

static struct fx_cluster c;

static void setup3(void)
{
	fx_cluster_init(&c, 3);
}

static void teardown(void)
{
	fx_cluster_fini(&c);
}

TestSuite(res_actions, .init = setup3, .fini = teardown, .timeout = 60);

#define H1 (&c.host[0])
#define H2 (&c.host[1])
#define H3 (&c.host[2])

static const char *decision(const struct res_decision *d)
{
	static char buf[256];

	cr_assert_eq(res_decision_format(d, 0, buf, sizeof buf), 0);
	return buf;
}

/* A kv value read directly from a store on disk, bypassing the library. */
static char *db_get(const char *path, const char *key)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *out = NULL;

	cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK, "%s", path);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT v FROM kv WHERE k = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, key, (int)strlen(key), SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		out = strndup(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

Test(res_actions, mv_moves_a_file_and_leaves_a_forward_for_agents_still_there)
{
	struct res_decision d;
	struct res_info info;
	lua_State *A, *B;
	char *disk;

	cr_assert_eq(fx_add(H1->reg, NULL, "notes", "kind=file", fx_pathkv(c.dir, "notes.txt"), NULL),
		     0);
	A = fx_agent_new(H1);
	fx_agent_bind(A, H1, "notes", RES_BIND_ID, "notes");
	fx_lua_eq(A, "assert(h:write('v1')) return h:read()", "v1");
	/* B stays on h1 with its own handle but does not count as a binder
	 * (it bound before the daemon counted: the test wants MV). */
	B = fx_agent_new(H1);
	{
		struct res_bind b;

		cr_assert_eq(res_bind_resolve(H1->reg, "notes", RES_BIND_ID, "notes", &b), 0);
		res_lua_push_handle(B, &b);
		lua_setglobal(B, "h");
	}

	A = fx_migrate(&c, A, 0, 1, &d);
	cr_assert_str_eq(decision(&d), "action=MV origin=default tried=MV:ok");
	/* The content is at h2, under h2's data dir, and gone from h1. */
	cr_assert(!fx_exists(fx_path(c.dir, "notes.txt")), "the source copy is gone");
	cr_assert_eq(res_registry_info(H2->reg, "notes", &info), 0);
	cr_assert_eq(info.forward, 0);
	cr_assert_eq(info.imported, 1);
	disk = fx_slurp(info.path, NULL);
	cr_assert_str_eq(disk, "v1");
	free(disk);
	cr_assert_eq(res_registry_info(H1->reg, "notes", &info), 0);
	cr_assert_eq(info.forward, 1);
	cr_assert_str_eq(info.home, "h2");
	/* The moved agent works on its local resource at h2. */
	fx_lua_eq(A, "local i = h:info() return i.mode .. ' ' .. i.home .. ' ' .. i.action", "local h2 MV");
	fx_lua_eq(A, "assert(h:append('+h2')) return h:read()", "v1+h2");
	c.net.calls = 0;
	fx_lua_eq(A, "return h:size()", "5");
	cr_assert_eq(c.net.calls, 0, "local ops do not touch the transport");
	/* The agent left behind reaches the new home through the forward,
	 * and learns it. */
	fx_lua_eq(B, "return h:read()", "v1+h2");
	cr_assert_str_eq(c.net.last_home, "h2");
	fx_lua_eq(B, "assert(h:append('+B')) local i = h:info() return i.home .. ' ' .. i.mode",
		  "h2 remote");
	fx_lua_eq(A, "return h:read()", "v1+h2+B");
	lua_close(A);
	lua_close(B);
}

Test(res_actions, mv_of_a_kv_store_carries_every_pair)
{
	struct res_decision d;
	struct res_info info;
	lua_State *A;
	char *v;

	cr_assert_eq(fx_add(H1->reg, NULL, "cart", "kind=kv", fx_pathkv(c.dir, "cart.db"),
			    "attachment=unattached", NULL), 0);
	A = fx_agent_new(H1);
	fx_agent_bind(A, H1, "cart", RES_BIND_ID, "cart");
	fx_lua_do(A, "for i = 1, 50 do assert(h:put('item' .. i, string.rep('x', i))) end");
	A = fx_migrate(&c, A, 0, 1, &d);
	cr_assert_str_eq(decision(&d), "action=MV origin=default tried=MV:ok");
	cr_assert(!fx_exists(fx_path(c.dir, "cart.db")));
	cr_assert_eq(res_registry_info(H2->reg, "cart", &info), 0);
	v = db_get(info.path, "item50");
	cr_assert_not_null(v);
	cr_assert_eq(strlen(v), 50);
	free(v);
	fx_lua_eq(A, "return #h:keys() .. ' ' .. h:get('item7')", "50 xxxxxxx");
	fx_lua_do(A, "assert(h:put('new', 'at h2')) assert(h:delete('item1'))");
	v = db_get(info.path, "new");
	cr_assert_str_eq(v, "at h2");
	free(v);
	lua_close(A);
}

Test(res_actions, mv_while_others_bind_falls_back_to_gr_and_content_stays)
{
	struct res_decision d;
	struct res_info info;
	lua_State *A;
	char *disk;

	cr_assert_eq(fx_add(H1->reg, NULL, "log", "kind=file", fx_pathkv(c.dir, "log"), NULL), 0);
	cr_assert_eq(res_registry_bind(H1->reg, "log"), 0); /* another agent */
	A = fx_agent_new(H1);
	fx_agent_bind(A, H1, "log", RES_BIND_ID, "log");
	fx_lua_do(A, "assert(h:write('a'))");
	A = fx_migrate(&c, A, 0, 1, &d);
	cr_assert_str_eq(decision(&d), "action=GR origin=default tried=MV:shared,GR:ok");
	cr_assert_eq(res_registry_info(H2->reg, "log", &info), RES_ERR_NOTFOUND);
	c.net.calls = 0;
	fx_lua_eq(A, "assert(h:append('b')) local i = h:info() return i.mode .. ' ' .. i.home .. ' ' .. "
		     "i.action .. ' ' .. h:read()",
		  "remote h1 GR ab");
	cr_assert(c.net.calls >= 2, "ops went through the transport");
	disk = fx_slurp(fx_path(c.dir, "log"), NULL);
	cr_assert_str_eq(disk, "ab", "the write landed at the home");
	free(disk);
	lua_close(A);
}

Test(res_actions, cp_by_value_gives_the_target_its_own_copy)
{
	struct res_decision d;
	struct res_info info;
	lua_State *A;
	char *disk;

	cr_assert_eq(fx_add(H1->reg, NULL, "doc", "kind=file", fx_pathkv(c.dir, "doc"), NULL), 0);
	A = fx_agent_new(H1);
	fx_agent_bind(A, H1, "doc", RES_BIND_VALUE, "doc");
	fx_lua_do(A, "assert(h:write('draft'))");
	A = fx_migrate(&c, A, 0, 1, &d);
	cr_assert_str_eq(decision(&d), "action=CP origin=default tried=CP:ok");
	cr_assert_eq(res_registry_info(H2->reg, "doc.copy", &info), 0);
	fx_lua_eq(A, "local i = h:info() return i.id .. '@' .. i.home .. ' ' .. i.action .. ' ' .. h:read()",
		  "doc.copy@h2 CP draft");
	fx_lua_do(A, "assert(h:write('edited at h2'))");
	disk = fx_slurp(info.path, NULL);
	cr_assert_str_eq(disk, "edited at h2");
	free(disk);
	disk = fx_slurp(fx_path(c.dir, "doc"), NULL);
	cr_assert_str_eq(disk, "draft", "the original is untouched");
	free(disk);
	cr_assert_eq(res_registry_info(H1->reg, "doc", &info), 0);
	cr_assert_eq(info.forward, 0, "a copy leaves the source as it was");
	lua_close(A);
}

Test(res_actions, cp_of_a_kv_store_and_fresh_ids_on_repeat)
{
	struct res_decision d;
	struct res_info info;
	lua_State *A;
	char *v;

	cr_assert_eq(fx_add(H1->reg, NULL, "prefs", "kind=kv", fx_pathkv(c.dir, "prefs.db"),
			    "attachment=unattached", NULL), 0);
	A = fx_agent_new(H1);
	fx_agent_bind(A, H1, "prefs", RES_BIND_VALUE, "prefs");
	fx_lua_do(A, "assert(h:put('lang', 'en'))");
	A = fx_migrate(&c, A, 0, 1, &d);
	cr_assert_str_eq(decision(&d), "action=CP origin=default tried=CP:ok");
	fx_lua_eq(A, "assert(h:put('lang', 'fr')) return h:info().id .. ' ' .. h:get('lang')",
		  "prefs.copy fr");
	v = db_get(fx_path(c.dir, "prefs.db"), "lang");
	cr_assert_str_eq(v, "en");
	free(v);
	lua_close(A);
	/* A second copy to the same host gets the next fresh id. */
	{
		void *blob;
		size_t len;
		char id[RES_ID_MAX];

		cr_assert_eq(res_export(H1->reg, "prefs", &blob, &len), 0);
		cr_assert_eq(res_import(H2->reg, blob, len, RES_ACT_CP, id), 0);
		cr_assert_str_eq(id, "prefs.copy2");
		cr_assert_eq(res_import(H2->reg, blob, len, RES_ACT_MV, id), 0,
			     "MV keeps the id, free on h2");
		cr_assert_str_eq(id, "prefs");
		cr_assert_eq(res_import(H2->reg, blob, len, RES_ACT_MV, id), RES_ERR_EXISTS);
		free(blob);
		cr_assert_eq(res_registry_info(H2->reg, "prefs.copy2", &info), 0);
		v = db_get(info.path, "lang");
		cr_assert_str_eq(v, "en");
		free(v);
	}
}

Test(res_actions, rb_by_type_binds_the_targets_own_store)
{
	struct res_decision d;
	lua_State *A;
	char *v;

	cr_assert_eq(fx_add(H1->reg, NULL, "cache", "kind=kv", fx_pathkv(c.dir, "c1.db"), NULL), 0);
	cr_assert_eq(fx_add(H2->reg, NULL, "scratch", "kind=file", fx_pathkv(c.dir, "s2"), NULL), 0);
	cr_assert_eq(fx_add(H2->reg, NULL, "cache2", "kind=kv", fx_pathkv(c.dir, "c2.db"), NULL), 0);
	A = fx_agent_new(H1);
	fx_agent_bind(A, H1, "cache", RES_BIND_TYPE, "kv");
	fx_lua_do(A, "assert(h:put('where', 'h1'))");
	A = fx_migrate(&c, A, 0, 1, &d);
	cr_assert_str_eq(decision(&d), "action=RB origin=default tried=RB:ok");
	fx_lua_eq(A, "local i = h:info() return i.id .. '@' .. i.home .. ' ' .. i.mode .. ' ' .. tostring(h:get('where'))",
		  "cache2@h2 local nil");
	fx_lua_do(A, "assert(h:put('where', 'h2'))");
	v = db_get(fx_path(c.dir, "c2.db"), "where");
	cr_assert_str_eq(v, "h2");
	free(v);
	v = db_get(fx_path(c.dir, "c1.db"), "where");
	cr_assert_str_eq(v, "h1", "h1's store is its own");
	free(v);
	lua_close(A);
}

Test(res_actions, rb_without_a_kind_on_the_target_falls_back_to_gr)
{
	struct res_decision d;
	lua_State *A;
	char *v;

	cr_assert_eq(fx_add(H1->reg, NULL, "cache", "kind=kv", fx_pathkv(c.dir, "c1.db"), NULL), 0);
	A = fx_agent_new(H1);
	fx_agent_bind(A, H1, "cache", RES_BIND_TYPE, "kv");
	A = fx_migrate(&c, A, 0, 1, &d);
	cr_assert_str_eq(decision(&d), "action=GR origin=default tried=RB:no-kind,GR:ok");
	fx_lua_do(A, "assert(h:put('k', 'from h2'))");
	v = db_get(fx_path(c.dir, "c1.db"), "k");
	cr_assert_str_eq(v, "from h2");
	free(v);
	lua_close(A);
}

Test(res_actions, gr_keeps_working_after_two_further_hops)
{
	struct res_decision d;
	lua_State *A;
	char *v;

	cr_assert_eq(fx_add(H1->reg, NULL, "ledger", "kind=kv", fx_pathkv(c.dir, "ledger.db"), NULL),
		     0);
	A = fx_agent_new(H1);
	fx_agent_bind(A, H1, "ledger", RES_BIND_ID, "ledger");
	fx_lua_do(A, "assert(h:put('stop', 'h1'))");
	A = fx_migrate(&c, A, 0, 1, &d); /* h1 -> h2 */
	cr_assert_str_eq(decision(&d), "action=GR origin=default tried=GR:ok");
	fx_lua_do(A, "assert(h:put('stop', 'h2'))");
	A = fx_migrate(&c, A, 1, 2, &d); /* h2 -> h3 */
	cr_assert_str_eq(decision(&d), "action=GR origin=default tried=GR:ok");
	fx_lua_eq(A, "assert(h:get('stop') == 'h2') assert(h:put('stop', 'h3')) "
		     "local i = h:info() return i.home .. ' ' .. i.mode",
		  "h1 remote");
	cr_assert_str_eq(c.net.last_home, "h1", "ops go to the home, not to the previous host");
	A = fx_migrate(&c, A, 2, 1, &d); /* h3 -> h2 */
	cr_assert_str_eq(decision(&d), "action=GR origin=default tried=GR:ok");
	fx_lua_eq(A, "return h:get('stop')", "h3");
	v = db_get(fx_path(c.dir, "ledger.db"), "stop");
	cr_assert_str_eq(v, "h3");
	free(v);
	/* Back home, the handle is local again. */
	A = fx_migrate(&c, A, 1, 0, &d);
	fx_lua_eq(A, "return h:info().mode", "local");
	lua_close(A);
}

Test(res_actions, mv_back_home_replaces_the_forward_and_chains_are_followed)
{
	struct res_decision d;
	struct res_info info;
	lua_State *A, *B;

	cr_assert_eq(fx_add(H1->reg, NULL, "bag", "kind=file", fx_pathkv(c.dir, "bag"), NULL), 0);
	A = fx_agent_new(H1);
	fx_agent_bind(A, H1, "bag", RES_BIND_ID, "bag");
	B = fx_agent_new(H1);
	{
		struct res_bind b;

		cr_assert_eq(res_bind_resolve(H1->reg, "bag", RES_BIND_ID, "bag", &b), 0);
		res_lua_push_handle(B, &b);
		lua_setglobal(B, "h");
	}
	fx_lua_do(A, "assert(h:write('1'))");
	A = fx_migrate(&c, A, 0, 1, &d); /* MV h1 -> h2 */
	cr_assert_eq(d.action, RES_ACT_MV);
	A = fx_migrate(&c, A, 1, 2, &d); /* MV h2 -> h3 */
	cr_assert_eq(d.action, RES_ACT_MV);
	fx_lua_do(A, "assert(h:append('3'))");
	/* B, still at h1 and bound to (bag, h1), follows h1 -> h2 -> h3. */
	fx_lua_eq(B, "return h:read() .. ' ' .. h:info().home", "13 h3");
	A = fx_migrate(&c, A, 2, 0, &d); /* MV h3 -> h1: home again */
	cr_assert_eq(d.action, RES_ACT_MV);
	cr_assert_eq(res_registry_info(H1->reg, "bag", &info), 0);
	cr_assert_eq(info.forward, 0, "the forward became the resource again");
	cr_assert_eq(res_registry_count(H1->reg), 1);
	fx_lua_eq(A, "return h:read() .. ' ' .. h:info().mode", "13 local");
	fx_lua_eq(B, "return h:read() .. ' ' .. h:info().home", "13 h1");
	lua_close(A);
	lua_close(B);
}

Test(res_actions, fixed_printer_is_reached_by_gr_from_elsewhere)
{
	struct res_decision d;
	lua_State *A;
	char *disk;

	cr_assert_eq(fx_add(H1->reg, NULL, "lp0", "kind=printer", fx_pathkv(c.dir, "lp0"), NULL), 0);
	A = fx_agent_new(H1);
	fx_agent_bind(A, H1, "printer", RES_BIND_ID, "lp0");
	fx_lua_do(A, "assert(h:print('from h1'))");
	A = fx_migrate(&c, A, 0, 1, &d);
	cr_assert_str_eq(decision(&d), "action=GR origin=default tried=GR:ok");
	fx_lua_do(A, "assert(h:print('from h2'))");
	disk = fx_slurp(fx_path(c.dir, "lp0"), NULL);
	cr_assert_str_eq(disk, "from h1\nfrom h2\n");
	free(disk);
	{
		void *blob = (void *)1;
		size_t len;

		cr_assert_eq(res_export(H1->reg, "lp0", &blob, &len), RES_ERR_DENIED,
			     "a fixed resource never leaves its host");
		cr_assert_null(blob);
	}
	lua_close(A);
}

Test(res_actions, gr_to_a_dead_home_fails_clearly_and_the_agent_goes_on)
{
	struct res_decision d;
	lua_State *A;

	cr_assert_eq(fx_add(H1->reg, NULL, "db", "kind=kv", fx_pathkv(c.dir, "db.db"), NULL), 0);
	A = fx_agent_new(H1);
	fx_agent_bind(A, H1, "db", RES_BIND_ID, "db");
	A = fx_migrate(&c, A, 0, 1, &d);
	cr_assert_eq(d.action, RES_ACT_GR);
	fx_lua_do(A, "assert(h:put('k', 'v'))");
	c.net.down[0] = 1; /* h1 dies */
	fx_lua_eq(A,
		  "local v, msg, code = h:get('k') "
		  "assert(v == nil) "
		  "return code .. ' | ' .. msg",
		  "unreachable | resource 'db' (db@h1): home host h1 unreachable");
	fx_lua_eq(A, "local ok, msg = h:put('a', 'b') return tostring(ok) .. ' ' .. msg:match('unreachable')",
		  "nil unreachable");
	fx_lua_eq(A, "local t = {} for i = 1, 3 do t[i] = i * 2 end return #t .. ' still running'",
		  "3 still running");
	/* Moving on from h2 while the home is down: no action applies to an
	 * identifier binding whose home cannot be reached. */
	cr_assert_null(fx_migrate(&c, A, 1, 2, &d));
	cr_assert_str_eq(decision(&d), "action=none origin=default tried=GR:home-down,MV:not-local");
	c.net.down[0] = 0; /* h1 is back */
	fx_lua_eq(A, "return h:get('k')", "v");
	lua_close(A);
}

Test(res_actions, host_override_changes_the_action_taken)
{
	struct res_decision d;
	lua_State *A;

	cr_assert_eq(fx_add(H1->reg, NULL, "notes", "kind=file", fx_pathkv(c.dir, "n"), NULL), 0);
	cr_assert_eq(res_policy_set(&H1->policy, "identifier.unattached", "GR,MV", NULL), 0);
	A = fx_agent_new(H1);
	fx_agent_bind(A, H1, "notes", RES_BIND_ID, "notes");
	A = fx_migrate(&c, A, 0, 1, &d);
	cr_assert_str_eq(decision(&d), "action=GR origin=host tried=GR:ok");
	cr_assert(fx_exists(fx_path(c.dir, "n")), "nothing moved");
	lua_close(A);
}

Test(res_actions, import_refuses_every_truncation_and_leaves_no_trace)
{
	void *blob;
	size_t len;
	char id[RES_ID_MAX];

	cr_assert_eq(fx_add(H1->reg, NULL, "kv", "kind=kv", fx_pathkv(c.dir, "kv.db"),
			    "attachment=unattached", NULL), 0);
	cr_assert_eq(fx_add(H1->reg, NULL, "f", "kind=file", fx_pathkv(c.dir, "f"), NULL), 0);
	{
		struct fx_reply r;

		cr_assert_eq(fx_op(H1->reg, "kv", "put", 0, &r, "a", "1", NULL), 0);
		fx_reply_free(&r);
		cr_assert_eq(fx_op(H1->reg, "kv", "put", 0, &r, "b", "22", NULL), 0);
		fx_reply_free(&r);
		cr_assert_eq(fx_op(H1->reg, "f", "write", 0, &r, "content", NULL), 0);
		fx_reply_free(&r);
	}
	for (int which = 0; which < 2; which++) {
		cr_assert_eq(res_export(H1->reg, which ? "f" : "kv", &blob, &len), 0);
		for (size_t cut = 0; cut < len; cut++) {
			int rc = res_import(H2->reg, blob, cut, RES_ACT_CP, id);

			cr_assert(rc == RES_ERR_TRUNCATED || rc == RES_ERR_MALFORMED,
				  "cut %zu: %d", cut, rc);
			cr_assert_eq(res_registry_count(H2->reg), (size_t)which);
		}
		/* A byte too many is malformed, not ignored. */
		{
			uint8_t *more = malloc(len + 1);

			memcpy(more, blob, len);
			more[len] = 0;
			cr_assert_eq(res_import(H2->reg, more, len + 1, RES_ACT_CP, id), RES_ERR_MALFORMED);
			free(more);
		}
		cr_assert_eq(res_import(H2->reg, blob, len, RES_ACT_CP, id), 0);
		free(blob);
	}
	cr_assert_eq(res_registry_count(H2->reg), 2);
	/* Only the two complete imports are in the data dir (plus SQLite's
	 * side files of the open store). */
	cr_assert(fx_exists(fx_path(c.dir, "data-h2/kv.copy.db")));
	cr_assert(fx_exists(fx_path(c.dir, "data-h2/f.copy.file")));
	{
		DIR *d = opendir(fx_path(c.dir, "data-h2"));
		struct dirent *de;

		cr_assert_not_null(d);
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			cr_assert(strncmp(de->d_name, "kv.copy.db", 10) == 0 ||
				  strcmp(de->d_name, "f.copy.file") == 0,
				  "left over by a failed import: %s", de->d_name);
		}
		closedir(d);
	}
}

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

Test(res_actions, mutated_blobs_never_crash_the_importer)
{
	void *blob;
	size_t len;
	uint32_t seed = 42;
	char id[RES_ID_MAX];
	int imported = 0;

	cr_assert_eq(fx_add(H1->reg, NULL, "kv", "kind=kv", fx_pathkv(c.dir, "kv.db"),
			    "attachment=unattached", NULL), 0);
	{
		struct fx_reply r;

		cr_assert_eq(fx_op(H1->reg, "kv", "put", 0, &r, "key", "value", NULL), 0);
		fx_reply_free(&r);
	}
	cr_assert_eq(res_export(H1->reg, "kv", &blob, &len), 0);
	for (int i = 0; i < 800; i++) { /* each import that succeeds costs a store */
		uint8_t *m = malloc(len);
		int rc;

		memcpy(m, blob, len);
		m[rnd(&seed) % len] = (uint8_t)rnd(&seed);
		rc = res_import(H2->reg, m, len, RES_ACT_CP, id);
		if (rc == 0) {
			imported++;
			cr_assert(res_id_valid(id));
			cr_assert_eq(res_registry_remove(H2->reg, id, 1), 0);
		}
		free(m);
	}
	cr_assert_eq(res_registry_count(H2->reg), 0);
	cr_assert(imported > 0, "some mutations (of content bytes) still import");
	free(blob);
}

Test(res_actions, commit_and_resolve_check_their_arguments)
{
	struct res_bind b;

	cr_assert_eq(fx_add(H1->reg, NULL, "f", "kind=file", fx_pathkv(c.dir, "f"), NULL), 0);
	cr_assert_eq(res_move_commit(H1->reg, "f", "h1"), RES_ERR_ARG, "not to itself");
	cr_assert_eq(res_move_commit(H1->reg, "f", "bad host"), RES_ERR_ARG);
	cr_assert_eq(res_move_commit(H1->reg, "nope", "h2"), RES_ERR_NOTFOUND);
	cr_assert_eq(res_move_commit(H1->reg, "f", "h2"), 0);
	cr_assert_eq(res_move_commit(H1->reg, "f", "h3"), RES_ERR_MOVED);
	cr_assert_eq(res_bind_resolve(H1->reg, "x", RES_BIND_ID, "f", &b), 0);
	cr_assert_str_eq(b.home, "h2", "a forward resolves to the new home");
	cr_assert_eq(res_bind_resolve(H1->reg, "x", RES_BIND_TYPE, "file", &b), RES_ERR_NOTFOUND,
		     "a forward is no local resource of the kind");
	cr_assert_eq(res_bind_resolve(H1->reg, "x", RES_BIND_TYPE, "gizmo", &b), RES_ERR_ARG);
	cr_assert_eq(res_bind_resolve(H1->reg, "x", RES_BIND_ID, "nope", &b), RES_ERR_NOTFOUND);
	{
		void *blob = (void *)1;
		size_t len;

		cr_assert_eq(res_export(H1->reg, "f", &blob, &len), RES_ERR_MOVED);
		cr_assert_null(blob);
	}
}

Test(res_actions, ctx_fill_reports_the_sources_facts)
{
	struct res_bind b;
	struct res_policy_ctx ctx;
	struct fx_reply r;

	cr_assert_eq(fx_add(H1->reg, NULL, "db", "kind=kv", fx_pathkv(c.dir, "db.db"),
			    "transfer_limit=1k", "remote=no", "copy=no", NULL), 0);
	cr_assert_eq(fx_op(H1->reg, "db", "put", 0, &r, "key", "value", NULL), 0);
	fx_reply_free(&r);
	cr_assert_eq(res_bind_resolve(H1->reg, "d", RES_BIND_VALUE, "db", &b), 0);
	cr_assert_eq(res_registry_bind(H1->reg, "db"), 0);
	cr_assert_eq(res_registry_bind(H1->reg, "db"), 0);
	cr_assert_eq(res_policy_ctx_fill(H1->reg, &b, &ctx), 0);
	cr_assert_eq(ctx.binding, RES_BIND_VALUE);
	cr_assert_eq(ctx.attach, RES_ATT_FASTENED);
	cr_assert_eq(ctx.size, 8);
	cr_assert_eq(ctx.transfer_limit, 1024);
	cr_assert_eq(ctx.other_binders, 1, "the mover is not counted");
	cr_assert_eq(ctx.not_local, 0);
	cr_assert_eq(ctx.remote_denied, 1);
	cr_assert_eq(ctx.copy_denied, 1);
	cr_assert_eq(ctx.home_down, 0, "peer facts are the daemon's");
	/* Seen from h2, the same binding is not local. */
	cr_assert_eq(res_policy_ctx_fill(H2->reg, &b, &ctx), 0);
	cr_assert_eq(ctx.not_local, 1);
	cr_assert_eq(ctx.attach, RES_ATT_FASTENED, "the binding's attachment is kept");
	/* After a move, the source's forward is not local either. */
	cr_assert_eq(res_move_commit(H1->reg, "db", "h2"), 0);
	cr_assert_eq(res_policy_ctx_fill(H1->reg, &b, &ctx), 0);
	cr_assert_eq(ctx.not_local, 1);
}

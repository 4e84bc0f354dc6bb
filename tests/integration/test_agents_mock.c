/*
 * test_agents_mock.c: every example agent under agents/ is a valid segment
 * (its manifest parses and lists its files, the segment builds), and its
 * Lua logic does what its header comment says when run against a mock of
 * the host API: a three-host world in one process where migrate() changes
 * the current host, resources answer per host, and log() collects lines.
 * (The same agents on real daemons: test_agents_cluster.c.)
 */
#include "mig_manifest.h"
#include "mig_segment.h"

#include <criterion/criterion.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const agent_names[] = { "hello", "counter", "tour", "mover", "replicas",
					   "balancer" };

/* The mock host API. State lives in the table M; the test reads M.logs. */
static const char mock[] =
	"M = { hosts = {'h1','h2','h3'}, cur = 'h1', home = 'h1', id = 'a1', logs = {},\n"
	"      sent = {}, files = { notes = '' }, notes_home = 'h1', clones = 0,\n"
	"      probe = { h1 = '10', h2 = '20', h3 = '30' }, fail_to = {}, exported = nil }\n"
	"local function handle(name)\n"
	"  local h = { name = name }\n"
	"  function h:read() if name == 'probe' then return M.probe[M.cur] .. '\\n' end return M.files[name] end\n"
	"  function h:append(s) M.files[name] = M.files[name] .. s; return true end\n"
	"  function h:info()\n"
	"    if name == 'probe' then return { action = M.cur == M.home and 'none' or 'RB', mode = 'local', home = M.cur } end\n"
	"    return { action = M.cur == 'h1' and 'none' or 'MV', mode = 'local', home = M.notes_home }\n"
	"  end\n"
	"  return h\n"
	"end\n"
	"agent = {\n"
	"  id = function() return M.id end,\n"
	"  host = function() return M.cur end,\n"
	"  home = function() return M.home end,\n"
	"  hosts = function() local t = {} for i, h in ipairs(M.hosts) do t[i] = h end return t end,\n"
	"  log = function(...) local t = {} for i = 1, select('#', ...) do t[i] = tostring(select(i, ...)) end\n"
	"                      M.logs[#M.logs + 1] = M.cur .. ': ' .. table.concat(t, ' ') end,\n"
	"  sleep = function() end,\n"
	"  recv = function() return table.remove(M.inbox or {}, 1) end,\n"
	"  send = function(to, msg) M.sent[#M.sent + 1] = { to = to, msg = msg } return true end,\n"
	"  migrate = function(h)\n"
	"    if M.fail_to[h] then return nil, 'refused', 'refused' end\n"
	"    M.cur = h; M.notes_home = h; return true end,\n"
	"  clone = function(h) M.clones = M.clones + 1; return 'c' .. M.clones end,\n"
	"  resource = function(name) return handle(name) end,\n"
	"  export = function(t) M.exported = t; return true end,\n"
	"  proxy = function() return nil, 'no proxy in the mock', 'unavailable' end,\n"
	"}\n";

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static const char *src_dir(void)
{
	const char *d = getenv("AGENTD_SOURCE_DIR");

	cr_assert_not_null(d, "AGENTD_SOURCE_DIR not set");
	return d;
}

static int traceback(lua_State *L)
{
	luaL_traceback(L, L, lua_tostring(L, 1), 1);
	return 1;
}

/* Runs agents/<name>/main.lua's main(args) against the mock, after `setup`
 * (Lua run after the mock is installed, may be NULL), with `args` a Lua
 * expression. Returns the state for the test to inspect; logs joined with
 * newlines are at global LOGTEXT. */
static lua_State *run_agent(const char *name, const char *setup, const char *args)
{
	lua_State *L = luaL_newstate();
	char path[512], call[512];
	size_t len;
	char *text;

	cr_assert_not_null(L);
	luaL_openlibs(L);
	lua_pushcfunction(L, traceback);
	cr_assert_eq(luaL_loadstring(L, mock), LUA_OK, "%s", lua_tostring(L, -1));
	cr_assert_eq(lua_pcall(L, 0, 0, 1), LUA_OK, "%s", lua_tostring(L, -1));
	if (setup != NULL) {
		cr_assert_eq(luaL_loadstring(L, setup), LUA_OK, "%s", lua_tostring(L, -1));
		cr_assert_eq(lua_pcall(L, 0, 0, 1), LUA_OK, "%s", lua_tostring(L, -1));
	}
	snprintf(path, sizeof path, "%s/agents/%s/main.lua", src_dir(), name);
	text = slurp(path, &len);
	cr_assert_eq(luaL_loadbuffer(L, text, len, name), LUA_OK, "%s", lua_tostring(L, -1));
	free(text);
	cr_assert_eq(lua_pcall(L, 0, 0, 1), LUA_OK, "%s", lua_tostring(L, -1));
	snprintf(call, sizeof call, "RESULT = main(%s)\nLOGTEXT = table.concat(M.logs, '\\n')", args);
	cr_assert_eq(luaL_loadstring(L, call), LUA_OK, "%s", lua_tostring(L, -1));
	cr_assert_eq(lua_pcall(L, 0, 0, 1), LUA_OK, "%s: %s", name, lua_tostring(L, -1));
	return L;
}

static const char *logtext(lua_State *L)
{
	lua_getglobal(L, "LOGTEXT");
	return lua_tostring(L, -1);
}

/* Evaluates a Lua expression in L and returns it as an integer. */
static long long eval_int(lua_State *L, const char *expr)
{
	char code[256];
	long long v;

	snprintf(code, sizeof code, "return %s", expr);
	cr_assert_eq(luaL_dostring(L, code), LUA_OK, "%s", lua_tostring(L, -1));
	v = lua_tointeger(L, -1);
	lua_pop(L, 1);
	return v;
}

TestSuite(agents, .timeout = 30);

Test(agents, every_agent_is_a_valid_segment_whose_entry_compiles)
{
	for (size_t i = 0; i < sizeof agent_names / sizeof agent_names[0]; i++) {
		char dir[512];
		struct mig_segment *seg = NULL;
		struct mig_error err = { 0, "" };
		const struct mig_manifest *m;
		const char *text;
		size_t len;
		lua_State *L;

		snprintf(dir, sizeof dir, "%s/agents/%s", src_dir(), agent_names[i]);
		cr_assert_eq(mig_segment_load_dir(dir, &seg, &err), 0, "%s: %s", dir, err.msg);
		m = mig_segment_manifest(seg);
		cr_assert_str_eq(m->name, agent_names[i]);
		cr_assert_str_eq(m->entry_func, "main");
		cr_assert_eq(mig_segment_find(seg, m->entry_file, &text, &len), 0);
		L = luaL_newstate();
		cr_assert_eq(luaL_loadbuffer(L, text, len, agent_names[i]), LUA_OK, "%s",
			     lua_tostring(L, -1));
		lua_close(L);
		mig_segment_destroy(&seg);
	}
}

Test(agents, hello_is_weak_and_the_others_strong)
{
	for (size_t i = 0; i < sizeof agent_names / sizeof agent_names[0]; i++) {
		char path[512];
		struct mig_manifest m;
		struct mig_error err = { 0, "" };
		size_t len;
		char *text;

		snprintf(path, sizeof path, "%s/agents/%s/manifest", src_dir(), agent_names[i]);
		text = slurp(path, &len);
		cr_assert_eq(mig_manifest_parse(text, len, &m, &err), 0, "%s: %s", path, err.msg);
		free(text);
		if (i == 0)
			cr_assert_eq(m.mobility, MIG_MOBILITY_WEAK);
		else
			cr_assert(m.mobility & MIG_MOBILITY_STRONG, "%s moves strongly", agent_names[i]);
	}
}

Test(agents, hello_greets_from_its_host_and_answers_a_named_sender)
{
	lua_State *L = run_agent("hello", "M.inbox = { { from = 'b7', text = 'hi' }, 'stop' }", "{}");

	cr_assert(strstr(logtext(L), "h1: hello from h1: I am a1") != NULL, "%s", logtext(L));
	cr_assert(strstr(logtext(L), "got hi on h1") != NULL, "%s", logtext(L));
	cr_assert_eq(eval_int(L, "#M.sent"), 1);
	cr_assert_eq(luaL_dostring(L, "return M.sent[1].to == 'b7' and M.sent[1].msg.text"), LUA_OK);
	cr_assert_str_eq(lua_tostring(L, -1), "hello, b7, from h1");
	lua_close(L);
}

Test(agents, counter_counts_on_across_every_hop_and_goes_home)
{
	lua_State *L = run_agent("counter", NULL, "{ rounds = 2, linger = 0 }");
	const char *t = logtext(L);

	cr_assert(strstr(t, "h1: count=1 round=1 host=h1") != NULL, "%s", t);
	cr_assert(strstr(t, "h2: count=2 round=1 host=h2") != NULL, "%s", t);
	cr_assert(strstr(t, "h3: count=6 round=2 host=h3") != NULL, "%s", t);
	cr_assert(strstr(t, "h1: done: count=6 hops=6 path=h1>h2>h3>h1>h2>h3>h1") != NULL, "%s", t);
	cr_assert_eq(eval_int(L, "RESULT"), 6);
	cr_assert_eq(eval_int(L, "M.exported.count()"), 6);
	lua_close(L);
}

Test(agents, counter_keeps_counting_where_it_is_when_a_move_is_refused)
{
	lua_State *L = run_agent("counter", "M.fail_to.h2 = true", "{ rounds = 1, linger = 0 }");
	const char *t = logtext(L);

	cr_assert(strstr(t, "could not move to h2: refused") != NULL, "%s", t);
	cr_assert(strstr(t, "h1: count=2 round=1 host=h1") != NULL, "%s", t);
	cr_assert_eq(eval_int(L, "RESULT"), 3);
	lua_close(L);
}

Test(agents, counter_that_stays_counts_in_place_and_notes_hosts_it_was_moved_to)
{
	/* The mock's sleep plays an outside push: after the second step the
	 * agent finds itself on h3. */
	lua_State *L = run_agent("counter",
				 "local n = 0\nagent.sleep = function() n = n + 1; if n == 2 then M.cur = 'h3' end end",
				 "{ stay = true, rounds = 4, pause = 0.1, linger = 0 }");
	const char *t = logtext(L);

	cr_assert(strstr(t, "h1: count=2 step=2 host=h1") != NULL, "%s", t);
	cr_assert(strstr(t, "h3: count=3 step=3 host=h3") != NULL, "%s", t);
	cr_assert(strstr(t, "h3: done: count=4 hops=1 path=h1>h3") != NULL, "%s", t);
	lua_close(L);
}

Test(agents, tour_visits_every_host_reads_each_probe_and_comes_home)
{
	lua_State *L = run_agent("tour", NULL, "{ linger = 0 }");
	const char *t = logtext(L);

	cr_assert(strstr(t, "h2: hop 2: host=h2 binding=probe action=RB mode=local value=20") != NULL,
		  "%s", t);
	cr_assert(strstr(t, "h1: visit 3: host=h3 binding=probe action=RB mode=local value=30") != NULL,
		  "%s", t);
	cr_assert(strstr(t, "h1: itinerary: h1 > h2 > h3 > h1") != NULL, "%s", t);
	cr_assert(strstr(t, "h1: result: h1=10 h2=20 h3=30 sum=60") != NULL, "%s", t);
	cr_assert_eq(eval_int(L, "RESULT"), 60);
	cr_assert_eq(eval_int(L, "#M.exported.result().visits"), 3);
	lua_close(L);
}

Test(agents, mover_appends_on_every_host_and_reads_it_all_back)
{
	lua_State *L = run_agent("mover", NULL, "{ linger = 0 }");
	const char *t = logtext(L);

	cr_assert(strstr(t, "h2: hop 2: host=h2 binding=notes action=MV mode=local file-home=h2") != NULL,
		  "%s", t);
	cr_assert_eq(luaL_dostring(L, "return M.files.notes"), LUA_OK);
	cr_assert_str_eq(lua_tostring(L, -1), "hop 0: h1\nhop 2: h2\nhop 3: h3\nhop 4: h1\n");
	cr_assert(strstr(t, "h1:   hop 3: h3") != NULL, "%s", t);
	cr_assert(strstr(t, "h1: binding notes, hop by hop: h1:none h2:MV h3:MV h1:none") != NULL, "%s", t);
	lua_close(L);
}

Test(agents, replicas_original_makes_two_clones_and_names_all_three)
{
	lua_State *L = run_agent("replicas", NULL, "{ linger = 0, value = 7 }");
	const char *t = logtext(L);

	cr_assert(strstr(t, "h1: replicas: a1,c1,c2") != NULL, "%s", t);
	cr_assert_eq(eval_int(L, "M.exported.get()"), 7);
	cr_assert_eq(eval_int(L, "#M.exported.members()"), 3);
	lua_close(L);
}

Test(agents, replicas_clone_stops_cloning_and_serves)
{
	/* The mock's clone turns the caller into the clone: its id changes. */
	lua_State *L = run_agent("replicas",
				 "agent.clone = function(h) M.id = 'c1'; M.cur = h; return nil end",
				 "{ linger = 0 }");
	const char *t = logtext(L);

	cr_assert(strstr(t, "h2: clone c1 serving on h2, value=42") != NULL, "%s", t);
	cr_assert(strstr(t, "replicas:") == NULL, "%s", t);
	lua_close(L);
}

Test(agents, balancer_pool_hands_out_every_job_once_to_workers_that_ask)
{
	/* Two workers were cloned; they ask in turn and report results. The
	 * mock's recv plays them: each `want` is answered by the pool through
	 * send, and the mock feeds back a result for every job it saw sent. */
	lua_State *L = run_agent(
		"balancer",
		"local wants = 0\n"
		"agent.recv = function()\n"
		"  for _, s in ipairs(M.sent) do\n"
		"    if s.msg.job and not s.seen then s.seen = true\n"
		"      return { done = s.msg.job, result = 1, host = s.to == 'c1' and 'h2' or 'h3', from = s.to } end\n"
		"  end\n"
		"  wants = wants + 1\n"
		"  return { want = (wants % 2 == 1) and 'c1' or 'c2' }\n"
		"end\n",
		"{ jobs = 5, size = 10, linger = 0 }");
	const char *t = logtext(L);

	cr_assert(strstr(t, "pool: 5/5 jobs done") != NULL, "%s", t);
	cr_assert(strstr(t, "h2=") != NULL && strstr(t, "h3=") != NULL, "%s", t);
	cr_assert_eq(eval_int(L, "RESULT"), 5);
	/* five jobs and a stop for each worker */
	cr_assert_eq(eval_int(L, "(function() local j, s = 0, 0 for _, m in ipairs(M.sent) do"
			      " if m.msg.job then j = j + 1 elseif m.msg.stop then s = s + 1 end end"
			      " return j * 10 + s end)()"),
		     52);
	lua_close(L);
}

Test(agents, balancer_worker_pulls_until_told_to_stop)
{
	lua_State *L = run_agent(
		"balancer",
		"local n = 0\n"
		"agent.clone = function(h) M.id = 'w1'; M.cur = h; return nil end\n"
		"agent.recv = function() n = n + 1; if n <= 2 then return { job = n, n = 30 } end return { stop = true } end\n",
		"{}");
	const char *t = logtext(L);

	cr_assert(strstr(t, "h2: worker w1 on h2 did 2 jobs") != NULL, "%s", t);
	/* primes below 31 and 32: 10 each */
	cr_assert_eq(eval_int(L, "M.sent[2].msg.result"), 10);
	cr_assert_eq(luaL_dostring(L, "return M.sent[1].to"), LUA_OK);
	cr_assert_str_eq(lua_tostring(L, -1), "a1", "workers ask the pool, never the reverse");
	lua_close(L);
}

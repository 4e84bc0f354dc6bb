/*
 * test_lua.c: resource handles in a plain Lua state (no daemon): the
 * methods each kind has, misuse raising, expected failures returning
 * nil, msg, code, and the persist/restore hooks, including hostile
 * persisted tables and the daemon's rebind context.
 */
#include "res_agent.h"

static struct fx_cluster c;
static lua_State *L;

static void setup(void)
{
	fx_cluster_init(&c, 2);
	fx_spit(fx_path(c.dir, "temp"), "19.0\n");
	cr_assert_eq(fx_add(c.host[0].reg, NULL, "notes", "kind=file", fx_pathkv(c.dir, "notes"),
			    "max_size=16", NULL), 0);
	cr_assert_eq(fx_add(c.host[0].reg, NULL, "kv", "kind=kv", fx_pathkv(c.dir, "kv.db"), NULL), 0);
	cr_assert_eq(fx_add(c.host[0].reg, NULL, "lp", "kind=printer", fx_pathkv(c.dir, "lp"), NULL),
		     0);
	cr_assert_eq(fx_add(c.host[0].reg, NULL, "temp", "kind=sensor", fx_pathkv(c.dir, "temp"),
			    NULL), 0);
	L = fx_agent_new(&c.host[0]);
}

static void teardown(void)
{
	if (L)
		lua_close(L);
	L = NULL;
	fx_cluster_fini(&c);
}

TestSuite(res_lua, .init = setup, .fini = teardown, .timeout = 30);

static void bind_global(const char *global, enum res_binding b, const char *ref)
{
	struct res_bind bind;

	cr_assert_eq(res_bind_resolve(c.host[0].reg, global, b, ref, &bind), 0);
	res_lua_push_handle(L, &bind);
	lua_setglobal(L, global);
}

/* Runs chunk and returns the error message it raised (static buffer). */
static const char *raises(const char *chunk)
{
	static char buf[512];

	cr_assert_neq(luaL_dostring(L, chunk), LUA_OK, "should raise: %s", chunk);
	snprintf(buf, sizeof buf, "%s", lua_tostring(L, -1));
	lua_settop(L, 0);
	return buf;
}

Test(res_lua, each_kind_has_its_methods_and_no_others)
{
	bind_global("f", RES_BIND_ID, "notes");
	bind_global("k", RES_BIND_ID, "kv");
	bind_global("p", RES_BIND_ID, "lp");
	bind_global("s", RES_BIND_ID, "temp");
	fx_lua_eq(L, "local r = {} for _, m in ipairs{'read','write','append','size','get','put',"
		     "'delete','keys','print','info'} do r[#r+1] = (f[m] and 'F' or '-') .. "
		     "(k[m] and 'K' or '-') .. (p[m] and 'P' or '-') .. (s[m] and 'S' or '-') end "
		     "return table.concat(r, ' ')",
		  "F-PS F--- F--- FKP- -K-- -K-- -K-- -K-- --P- FKPS");
	cr_assert(strstr(raises("k:write('x')"), "attempt to call a nil value") != NULL);
	fx_lua_eq(L, "return tostring(f)", "resource file 'f' (notes@h1)");
	fx_lua_eq(L, "return getmetatable(f)", "agentd.resource");
	fx_lua_eq(L, "return s:read()", "19.0");
	fx_lua_eq(L, "assert(p:print('job')) return p:read()", "job\n");
}

Test(res_lua, file_and_kv_methods_return_what_was_written)
{
	bind_global("f", RES_BIND_ID, "notes");
	bind_global("k", RES_BIND_TYPE, "kv");
	fx_lua_eq(L, "assert(f:write('abc')) assert(f:append('def')) "
		     "return f:read() .. ' ' .. f:read(2) .. ' ' .. f:read(2, 3) .. ' ' .. f:size()",
		  "abcdef ab de 6");
	fx_lua_eq(L, "assert(k:put('b', '2')) assert(k:put('a', '1')) assert(k:put('c', 'x\\0y')) "
		     "assert(k:delete('b')) local ks = k:keys() "
		     "return table.concat(ks, ',') .. ' ' .. #k:get('c') .. ' ' .. tostring(k:get('b'))",
		  "a,c 3 nil");
	fx_lua_eq(L, "local i = k:info() return i.name .. ' ' .. i.binding .. ' ' .. i.kind .. ' ' .. "
		     "i.id .. ' ' .. i.home .. ' ' .. i.mode .. ' ' .. i.action .. ' ' .. i.attachment",
		  "k type kv kv h1 local none fastened");
}

Test(res_lua, misuse_raises_and_expected_failures_return_nil_msg_code)
{
	bind_global("f", RES_BIND_ID, "notes");
	cr_assert(strstr(raises("f:write()"), "bad argument #1 to 'write'") != NULL);
	cr_assert(strstr(raises("f:read(-1)"), "negative length") != NULL);
	cr_assert(strstr(raises("f:read('x')"), "number expected") != NULL);
	cr_assert(strstr(raises("local r = f.read r({})"), "agentd.resource expected") != NULL);
	/* Over max_size (16): an expected failure, and nothing written. */
	fx_lua_eq(L, "local ok, msg, code = f:write(string.rep('x', 17)) "
		     "return tostring(ok) .. ' ' .. code .. ' ' .. tostring(msg:find('max_size') ~= nil) "
		     ".. ' ' .. f:size()",
		  "nil limit true 0");
	fx_lua_eq(L, "f:write('y') return f:read()", "y");
}

Test(res_lua, an_unbound_handle_fails_every_op_but_still_answers_info)
{
	struct res_bind b;

	memset(&b, 0, sizeof b);
	snprintf(b.name, sizeof b.name, "gone");
	b.kind = RES_KIND_FILE;
	res_lua_push_handle(L, &b);
	lua_setglobal(L, "g");
	fx_lua_eq(L, "local v, msg, code = g:read() return tostring(v) .. ' ' .. code", "nil unbound");
	fx_lua_eq(L, "return g:info().mode", "unbound");
}

/* Calls res_lua_push_handle under lua_pcall. */
static int push_under_pcall(lua_State *S)
{
	res_lua_push_handle(S, lua_touserdata(S, 1));
	return 1;
}

Test(res_lua, push_handle_raises_for_invalid_bindings)
{
	struct res_bind b;

	memset(&b, 0, sizeof b);
	snprintf(b.name, sizeof b.name, "x");
	b.bound = 1;
	snprintf(b.id, sizeof b.id, "bad id!");
	snprintf(b.home, sizeof b.home, "h1");
	lua_pushcfunction(L, push_under_pcall);
	lua_pushlightuserdata(L, &b);
	cr_assert_eq(lua_pcall(L, 1, 1, 0), LUA_ERRRUN);
	cr_assert(strstr(lua_tostring(L, -1), "invalid resource binding") != NULL);
	lua_settop(L, 0);
	snprintf(b.id, sizeof b.id, "ok");
	b.kind = 9;
	lua_pushcfunction(L, push_under_pcall);
	lua_pushlightuserdata(L, &b);
	cr_assert_eq(lua_pcall(L, 1, 1, 0), LUA_ERRRUN);
	lua_settop(L, 0);
	b.kind = RES_KIND_KV;
	lua_pushcfunction(L, push_under_pcall);
	lua_pushlightuserdata(L, &b);
	cr_assert_eq(lua_pcall(L, 1, 1, 0), LUA_OK);
	cr_assert_not_null(res_lua_tobind(L, -1));
	lua_newtable(L);
	cr_assert_null(res_lua_tobind(L, -1), "a table is no handle");
	lua_settop(L, 0);
}

/* Persists global `name` and returns the table left on the stack. */
static void persist_global(const char *name)
{
	lua_pushcfunction(L, res_lua_persist);
	lua_getglobal(L, name);
	cr_assert_eq(lua_pcall(L, 1, 1, 0), LUA_OK, "%s", lua_tostring(L, -1));
}

Test(res_lua, persisted_handle_is_a_table_of_its_binding)
{
	bind_global("k", RES_BIND_VALUE, "kv");
	persist_global("k");
	lua_setglobal(L, "t");
	fx_lua_eq(L, "local keys = {} for k in pairs(t) do keys[#keys+1] = k end table.sort(keys) "
		     "return table.concat(keys, ',')",
		  "action,attachment,binding,bound,home,id,kind,name,v");
	fx_lua_eq(L, "return t.v .. t.name .. t.binding .. t.kind .. t.id .. t.home .. tostring(t.bound)",
		  "1kvaluekvkvh1true");
}

/* Restores the table built by chunk; returns the lua_pcall status, and on
 * success leaves the handle as global `r`. */
static int restore_from(const char *chunk)
{
	int rc;

	lua_pushcfunction(L, res_lua_restore);
	if (luaL_dostring(L, chunk) != LUA_OK)
		cr_assert_fail("%s", lua_tostring(L, -1));
	rc = lua_pcall(L, 1, 1, 0);
	if (rc == LUA_OK)
		lua_setglobal(L, "r");
	lua_settop(L, 0);
	return rc;
}

#define GOOD "v=1, name='k', binding='identifier', kind='kv', attachment='fastened', " \
	     "action='GR', bound=true, id='kv', home='h1'"

Test(res_lua, restore_refuses_every_malformed_table)
{
	static const char *const bad[] = {
		"return 42",
		"return {}",
		"return {v=2, name='k', binding='identifier', kind='kv', attachment='fastened', action='GR', bound=true, id='kv', home='h1'}",
		"return {v=1, name='k', binding='bogus', kind='kv', attachment='fastened', action='GR', bound=true, id='kv', home='h1'}",
		"return {v=1, name='k', binding='identifier', kind='device', attachment='fastened', action='GR', bound=true, id='kv', home='h1'}",
		"return {v=1, name='k', binding='identifier', kind='kv', attachment='loose', action='GR', bound=true, id='kv', home='h1'}",
		"return {v=1, name='k', binding='identifier', kind='kv', attachment='fastened', action='XX', bound=true, id='kv', home='h1'}",
		"return {v=1, name='k', binding='identifier', kind='kv', attachment='fastened', action='GR', bound=1, id='kv', home='h1'}",
		"return {v=1, name='k', binding='identifier', kind='kv', attachment='fastened', action='GR', bound=true, id='../x', home='h1'}",
		"return {v=1, name='k', binding='identifier', kind='kv', attachment='fastened', action='GR', bound=true, id='kv', home=string.rep('h', 64)}",
		"return {v=1, name=string.rep('n', 64), binding='identifier', kind='kv', attachment='fastened', action='GR', bound=true, id='kv', home='h1'}",
		"return {v=1, name='a\\0b', binding='identifier', kind='kv', attachment='fastened', action='GR', bound=true, id='kv', home='h1'}",
		"return {v=1, name='k', binding='identifier', kind='kv', attachment='fastened', action='GR', bound=true, id={}, home='h1'}",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(restore_from(bad[i]), LUA_ERRRUN, "accepted: %s", bad[i]);
	cr_assert_eq(restore_from("return {" GOOD "}"), LUA_OK);
	fx_lua_eq(L, "return r:info().id .. '@' .. r:info().home", "kv@h1");
}

Test(res_lua, restore_applies_the_daemons_rebind_by_name)
{
	struct res_bind rb[2];

	memset(rb, 0, sizeof rb);
	snprintf(rb[0].name, sizeof rb[0].name, "other");
	rb[0].bound = 1;
	snprintf(rb[0].id, sizeof rb[0].id, "nope");
	snprintf(rb[0].home, sizeof rb[0].home, "h9");
	snprintf(rb[1].name, sizeof rb[1].name, "k");
	rb[1].bound = 1;
	rb[1].action = RES_ACT_RB;
	rb[1].kind = RES_KIND_FILE; /* ignored: no action changes the kind */
	rb[1].attach = RES_ATT_UNATTACHED;
	snprintf(rb[1].id, sizeof rb[1].id, "kv");
	snprintf(rb[1].home, sizeof rb[1].home, "h1");
	c.host[0].env.rebinds = rb;
	c.host[0].env.nrebinds = 2;
	cr_assert_eq(restore_from("return {v=1, name='k', binding='type', kind='kv', "
				  "attachment='fastened', action='none', bound=true, id='old', home='h2'}"),
		     LUA_OK);
	fx_lua_eq(L, "local i = r:info() return i.id .. '@' .. i.home .. ' ' .. i.action .. ' ' .. "
		     "i.attachment .. ' ' .. i.mode .. ' ' .. i.kind",
		  "kv@h1 RB unattached local kv");
	fx_lua_do(L, "assert(r:put('x', 'y'))");
	/* A GR outcome (empty id) keeps the persisted home and id. */
	rb[1].action = RES_ACT_GR;
	rb[1].id[0] = '\0';
	cr_assert_eq(restore_from("return {v=1, name='k', binding='identifier', kind='kv', "
				  "attachment='fastened', action='GR', bound=true, id='kv', home='h2'}"),
		     LUA_OK);
	fx_lua_eq(L, "local i = r:info() return i.id .. '@' .. i.home .. ' ' .. i.mode", "kv@h2 remote");
	/* No action possible: unbound. */
	rb[1].bound = 0;
	cr_assert_eq(restore_from("return {" GOOD "}"), LUA_OK);
	fx_lua_eq(L, "local v, m, code = r:get('x') return r:info().mode .. ' ' .. code",
		  "unbound unbound");
	c.host[0].env.rebinds = NULL;
	c.host[0].env.nrebinds = 0;
}

Test(res_lua, a_state_without_the_env_raises_rather_than_crashes)
{
	lua_State *S = luaL_newstate();
	struct res_bind b;

	luaL_openlibs(S);
	cr_assert_eq(res_bind_resolve(c.host[0].reg, "f", RES_BIND_ID, "notes", &b), 0);
	/* No res_lua_open: no metatable, no env. */
	lua_pushcfunction(S, res_lua_restore);
	lua_newtable(S);
	cr_assert_eq(lua_pcall(S, 1, 1, 0), LUA_ERRRUN);
	cr_assert(strstr(lua_tostring(S, -1), "not set up") != NULL, "%s", lua_tostring(S, -1));
	lua_close(S);
	cr_assert_eq(res_lua_open(NULL, &c.host[0].env), RES_ERR_ARG);
}

Test(res_lua, function_list_names_every_method)
{
	int n = 0;

	for (const luaL_Reg *f = res_lua_functions(); f->name != NULL; f++) {
		cr_assert_not_null(f->func);
		n++;
	}
	cr_assert_eq(n, 12);
}

/* ---- parking: a fake daemon that records what start sent and lets the
 * test answer it by resuming the coroutine, as the runtime would. */

#define FAKE_TIMEOUT (-14)

static struct {
	uint64_t next, token, done_token;
	int starts, dones, done_code;
	char home[RES_HOST_MAX], id[RES_ID_MAX], op[16], agent[32];
	char args[256];
	size_t args_len;
} pk;

static uint64_t pk_token(lua_State *Ls)
{
	(void)Ls;
	return ++pk.next;
}

static int pk_start(void *ud, const char *agent, const char *home, const char *id, const char *op,
		    const void *args, size_t args_len, uint64_t token, double *timeout_s)
{
	(void)ud;
	pk.starts++;
	pk.token = token;
	snprintf(pk.agent, sizeof pk.agent, "%s", agent);
	snprintf(pk.home, sizeof pk.home, "%s", home);
	snprintf(pk.id, sizeof pk.id, "%s", id);
	snprintf(pk.op, sizeof pk.op, "%s", op);
	cr_assert_leq(args_len, sizeof pk.args);
	memcpy(pk.args, args, args_len);
	pk.args_len = args_len;
	*timeout_s = 1.5;
	return 0;
}

static int pk_yield(lua_State *Ls, uint64_t token, double timeout_s, lua_KContext ctx,
		    lua_KFunction k)
{
	cr_assert_eq(token, pk.token);
	cr_assert_float_eq(timeout_s, 1.5, 1e-9);
	return lua_yieldk(Ls, 0, ctx, k);
}

static void pk_done(void *ud, const char *agent, uint64_t token, int code)
{
	(void)ud;
	(void)agent;
	pk.dones++;
	pk.done_token = token;
	pk.done_code = code;
}

/* An agent on h2 holding a GR to h1's `notes`, parking its remote ops. */
static lua_State *parked_agent(void)
{
	struct res_bind b;
	lua_State *A;

	memset(&pk, 0, sizeof pk);
	c.host[1].env.agent = "agent-1";
	c.host[1].env.park = (struct res_lua_park){ pk_token, pk_start, pk_yield, pk_done,
						    FAKE_TIMEOUT, NULL };
	A = fx_agent_new(&c.host[1]);
	cr_assert_eq(res_bind_resolve(c.host[0].reg, "f", RES_BIND_ID, "notes", &b), 0);
	b.action = RES_ACT_GR;
	res_lua_push_handle(A, &b);
	lua_setglobal(A, "f");
	return A;
}

/* Starts chunk in a fresh coroutine of A; returns it, parked. */
static lua_State *park_chunk(lua_State *A, const char *chunk)
{
	lua_State *co = lua_newthread(A);
	int nres;

	lua_setglobal(A, "the_co"); /* anchored */
	cr_assert_eq(luaL_loadstring(co, chunk), LUA_OK);
	cr_assert_eq(lua_resume(co, A, 0, &nres), LUA_YIELD, "%s", lua_tostring(co, -1));
	cr_assert_eq(nres, 0);
	return co;
}

/* Answers the park as the runtime would: data (or NULL), code; returns
 * the status of the resume. */
static int answer(lua_State *A, lua_State *co, const void *data, size_t len, int code, int *nres)
{
	if (data != NULL)
		lua_pushlstring(co, data, len);
	else
		lua_pushnil(co);
	lua_pushinteger(co, code);
	lua_pushliteral(co, "");
	return lua_resume(co, A, 3, nres);
}

/* What h1's daemon does with the op start sent. */
static void serve_h1(void **reply, size_t *len)
{
	cr_assert_str_eq(pk.home, "h1");
	res_exec_op(c.host[0].reg, pk.id, pk.op, pk.args, pk.args_len, RES_EXEC_REMOTE, reply, len);
	cr_assert_not_null(*reply);
}

Test(res_lua, a_remote_op_parks_and_the_answer_becomes_its_results)
{
	lua_State *A = parked_agent(), *co;
	void *reply = NULL;
	size_t len = 0;
	int nres;

	co = park_chunk(A, "assert(f:write('parked')) return f:read(), f:size()");
	cr_assert_eq(pk.starts, 1);
	cr_assert_str_eq(pk.op, "write");
	cr_assert_str_eq(pk.agent, "agent-1");
	cr_assert_eq(c.net.calls, 0, "a parked op does not use the blocking transport");
	serve_h1(&reply, &len);
	cr_assert_eq(answer(A, co, reply, len, 0, &nres), LUA_YIELD); /* now read parks */
	free(reply);
	cr_assert_eq(pk.dones, 1);
	cr_assert_eq(pk.done_code, 0);
	cr_assert_str_eq(pk.op, "read");
	serve_h1(&reply, &len);
	cr_assert_eq(answer(A, co, reply, len, 0, &nres), LUA_YIELD); /* size parks */
	free(reply);
	cr_assert_str_eq(pk.op, "size");
	serve_h1(&reply, &len);
	cr_assert_eq(answer(A, co, reply, len, 0, &nres), LUA_OK, "%s", lua_tostring(co, -1));
	free(reply);
	cr_assert_eq(nres, 2);
	cr_assert_str_eq(lua_tostring(co, -2), "parked");
	cr_assert_eq(lua_tointeger(co, -1), 6);
	cr_assert_eq(pk.dones, 3);
	cr_assert_eq(pk.done_token, pk.token);
	lua_close(A);
}

Test(res_lua, a_park_without_answer_returns_nil_unreachable_and_the_agent_goes_on)
{
	lua_State *A = parked_agent(), *co;
	int nres;

	co = park_chunk(A, "local v, msg, code = f:read() return tostring(v), msg, code, 'alive'");
	cr_assert_eq(answer(A, co, NULL, 0, FAKE_TIMEOUT, &nres), LUA_OK, "%s", lua_tostring(co, -1));
	cr_assert_eq(nres, 4);
	cr_assert_str_eq(lua_tostring(co, -4), "nil");
	cr_assert_str_eq(lua_tostring(co, -3), "resource 'f' (notes@h1): home host h1 unreachable");
	cr_assert_str_eq(lua_tostring(co, -2), "unreachable");
	cr_assert_str_eq(lua_tostring(co, -1), "alive");
	cr_assert_eq(pk.done_code, FAKE_TIMEOUT);
	lua_close(A);
}

Test(res_lua, a_parked_op_that_meets_a_forward_parks_again_at_the_new_home)
{
	lua_State *A = parked_agent(), *co;
	void *reply = NULL;
	size_t len = 0;
	int nres;

	co = park_chunk(A, "local v = f:read() return v, f:info().home");
	/* h1 answers that notes moved to h3 (the agent is on h2). */
	cr_assert_eq(res_reply_error(RES_ERR_MOVED, "moved", "h3", &reply, &len), 0);
	cr_assert_eq(answer(A, co, reply, len, 0, &nres), LUA_YIELD);
	free(reply);
	cr_assert_eq(pk.starts, 2);
	cr_assert_str_eq(pk.home, "h3");
	/* h3 has it: answer as its daemon would. */
	{
		struct res_msg ok = { RES_MSG_OK, 1, { { "moved content", 13 } } };

		cr_assert_eq(res_msg_encode(&ok, &reply, &len), 0);
	}
	cr_assert_eq(answer(A, co, reply, len, 0, &nres), LUA_OK, "%s", lua_tostring(co, -1));
	free(reply);
	cr_assert_str_eq(lua_tostring(co, -2), "moved content");
	cr_assert_str_eq(lua_tostring(co, -1), "h3");
	lua_close(A);
}

Test(res_lua, where_the_state_cannot_yield_a_remote_op_waits_in_the_transport)
{
	lua_State *A = parked_agent();

	/* The main thread of a state cannot yield: luaL_dostring there. */
	cr_assert_eq(luaL_dostring(A, "assert(f:write('sync')) return f:read()"), LUA_OK, "%s",
		     lua_tostring(A, -1));
	cr_assert_str_eq(lua_tostring(A, -1), "sync");
	cr_assert_eq(pk.starts, 0);
	cr_assert_geq(c.net.calls, 2);
	lua_close(A);
}

static int l_set_main(lua_State *Ls)
{
	res_lua_set_main(Ls, Ls);
	return 0;
}

Test(res_lua, a_remote_op_in_a_nested_coroutine_waits_in_the_transport_and_the_main_one_parks)
{
	lua_State *A = parked_agent(), *co;
	int nres;

	lua_register(A, "set_main", l_set_main);
	co = park_chunk(A, "set_main() "
			   "local ok = coroutine.wrap(function() return f:write('nested') end)() "
			   "assert(ok == true, 'nested write') "
			   "return f:read()");
	/* The nested write went through the blocking transport; the read in
	 * the main coroutine parked. */
	cr_assert_geq(c.net.calls, 1);
	cr_assert_eq(pk.starts, 1);
	cr_assert_str_eq(pk.op, "read");
	{
		void *reply = NULL;
		size_t len = 0;

		serve_h1(&reply, &len);
		cr_assert_eq(answer(A, co, reply, len, 0, &nres), LUA_OK, "%s", lua_tostring(co, -1));
		free(reply);
	}
	cr_assert_str_eq(lua_tostring(co, -1), "nested");
	lua_close(A);
}

/*
 * test_state_values.c: every kind of value survives a move into a fresh
 * state (persist, lua_close, restore), with identity, cycles, metatables,
 * shared upvalues and permanents kept; what cannot move is refused with
 * its path; plain data round-trips.
 */
#include "test_state_util.h"

#include <math.h>

TestSuite(mig_state, .timeout = 60);

Test(mig_state, roundtrip_keeps_scalars_exactly)
{
	lua_State *L = tst_state(7);

	tst_run(L,
		"local big = string.rep('ab\\0c', 30000)\n"
		"return { n = nil, t = true, f = false, i = 42, min = math.mininteger,\n"
		"  max = math.maxinteger, nz = -0.0, nan = 0/0, inf = 1/0, ninf = -1/0,\n"
		"  half = 0.5, tiny = 5e-324, pi = math.pi, big = big, z = 'a\\0b',\n"
		"  e = '', fi = 3.0, neg = -12345.25 }",
		1);
	tst_move(&L);
	tst_check(L,
		  "local t = ...\n"
		  "assert(t.t == true and t.f == false and t.n == nil)\n"
		  "assert(math.type(t.i) == 'integer' and t.i == 42)\n"
		  "assert(t.min == math.mininteger and t.max == math.maxinteger)\n"
		  "assert(t.nz == 0 and 1/t.nz == -1/0)\n"
		  "assert(t.nan ~= t.nan)\n"
		  "assert(t.inf == 1/0 and t.ninf == -1/0)\n"
		  "assert(t.half == 0.5 and t.tiny == 5e-324 and t.pi == math.pi)\n"
		  "assert(t.big == string.rep('ab\\0c', 30000) and #t.big == 120000)\n"
		  "assert(t.z == 'a\\0b' and #t.z == 3 and t.e == '')\n"
		  "assert(math.type(t.fi) == 'float' and t.fi == 3 and t.neg == -12345.25)\n"
		  "return true");
	lua_close(L);
}

Test(mig_state, roundtrip_keeps_identity_and_cycles)
{
	lua_State *L = tst_state(8);

	tst_run(L,
		"local shared = { 'shared' }\n"
		"local t = { a = shared, b = shared, list = { shared, shared } }\n"
		"t.self = t\n"
		"local x, y = {}, {}\n"
		"x.peer, y.peer = y, x\n"
		"t.x = x\n"
		"return t",
		1);
	tst_move(&L);
	tst_check(L,
		  "local t = ...\n"
		  "assert(t.self == t)\n"
		  "assert(t.a == t.b and t.list[1] == t.a and t.list[2] == t.a)\n"
		  "assert(t.a[1] == 'shared')\n"
		  "assert(t.x.peer.peer == t.x and t.x.peer ~= t.x)\n"
		  "return true");
	lua_close(L);
}

Test(mig_state, roundtrip_keeps_keys_of_every_type)
{
	lua_State *L = tst_state(9);

	tst_run(L,
		"local kt, kf = {}, function() return 'kf' end\n"
		"local co = coroutine.create(function() end)\n"
		"local t = { [true] = 'T', [false] = 'F', [1.5] = 'fl', [-7] = 'neg',\n"
		"  [2^53] = 'bigf', [kt] = 'table', [kf] = 'func', [co] = 'thread',\n"
		"  [print] = 'perm', [''] = 'empty', [math.mininteger] = 'min' }\n"
		"for i = 1, 10 do t[i] = i * i end\n"
		"return { t = t, kt = kt, kf = kf, co = co }",
		1);
	tst_move(&L);
	tst_check(L,
		  "local r = ...\n"
		  "local t = r.t\n"
		  "assert(t[true] == 'T' and t[false] == 'F' and t[1.5] == 'fl' and t[-7] == 'neg')\n"
		  "assert(t[2^53] == 'bigf' and t[''] == 'empty' and t[math.mininteger] == 'min')\n"
		  "assert(t[r.kt] == 'table' and t[r.kf] == 'func' and t[r.co] == 'thread')\n"
		  "assert(t[print] == 'perm')\n"
		  "for i = 1, 10 do assert(t[i] == i * i) end\n"
		  "local n = 0 for k, v in pairs(t) do n = n + 1 end\n"
		  "assert(n == 21, n)\n"
		  "t[{}] = 'new' t.fresh = 1\n"
		  "n = 0 for k, v in pairs(t) do n = n + 1 end\n"
		  "assert(n == 23, n)\n"
		  "return true");
	lua_close(L);
}

Test(mig_state, roundtrip_keeps_metatables_and_weak_modes)
{
	lua_State *L = tst_state(10);

	tst_run(L,
		"local mt = { __index = function(t, k) return k .. '!' end,\n"
		"  __add = function(a, b) return 'added' end }\n"
		"local a = setmetatable({}, mt)\n"
		"local b = setmetatable({}, mt)\n"
		"local weak = setmetatable({}, { __mode = 'k' })\n"
		"weak[a] = 1\n"
		"return { a = a, b = b, weak = weak }",
		1);
	tst_move(&L);
	tst_check(L,
		  "local r = ...\n"
		  "assert(r.a.foo == 'foo!' and r.a + r.b == 'added')\n"
		  "assert(getmetatable(r.a) == getmetatable(r.b))\n"
		  "assert(getmetatable(r.weak).__mode == 'k' and r.weak[r.a] == 1)\n"
		  "r.a = nil r.b = nil collectgarbage() collectgarbage()\n"
		  "assert(next(r.weak) == nil, 'weak key kept')\n"
		  "return true");
	lua_close(L);
}

Test(mig_state, roundtrip_keeps_shared_upvalues)
{
	lua_State *L = tst_state(11);

	tst_run(L,
		"local n = 0\n"
		"local function inc() n = n + 1 return n end\n"
		"local function get() return n end\n"
		"inc() inc()\n"
		"local other = 10\n"
		"local function mk() local own = 0 return function() own = own + 1 other = other + 1 return own, other end end\n"
		"return { inc = inc, get = get, c1 = mk(), c2 = mk() }",
		1);
	tst_move(&L);
	tst_check(L,
		  "local r = ...\n"
		  "assert(r.get() == 2)\n"
		  "assert(r.inc() == 3 and r.get() == 3)\n"
		  "local o1, s1 = r.c1() local o2, s2 = r.c2()\n"
		  "assert(o1 == 1 and o2 == 1 and s1 == 11 and s2 == 12)\n"
		  "return true");
	lua_close(L);
}

Test(mig_state, permanents_bind_to_the_targets_objects)
{
	lua_State *L = tst_state(12);

	tst_run(L,
		"return { print, string.format, string, _G, coroutine.wrap, math.huge, io.write,\n"
		"  getmetatable('').__index, next, pairs, pcall, load }",
		1);
	tst_move(&L);
	tst_check(L,
		  "local t = ...\n"
		  "assert(t[1] == print and t[2] == string.format and t[3] == string)\n"
		  "assert(t[4] == _G and t[5] == coroutine.wrap and t[6] == math.huge)\n"
		  "assert(t[7] == io.write and t[8] == string and t[9] == next)\n"
		  "assert(t[10] == pairs and t[11] == pcall and t[12] == load)\n"
		  "return true");
	lua_close(L);
}

static int host_fn(lua_State *L)
{
	lua_pushinteger(L, 99);
	return 1;
}

Test(mig_state, host_permanents_need_the_same_name_on_both_sides)
{
	lua_State *L = tst_state(13);

	lua_pushcfunction(L, host_fn);
	cr_assert_eq(mig_perm_add(L, "host.fn", -1), 0);
	cr_assert_eq(mig_perm_add(L, "host.fn", -1), MIG_ERR_ARG);
	lua_setglobal(L, "hostfn");
	tst_run(L, "return { f = hostfn }", 1);
	{
		struct mig_buf b = { 0 };
		struct mig_error err = { 0 };
		lua_State *L2;

		cr_assert_eq(mig_state_persist(L, -1, &b, &err), 0, "%s", err.msg);
		lua_close(L);
		L2 = tst_state(13);
		/* Without the permanent, the target refuses. */
		cr_assert_neq(mig_state_restore(L2, b.data, b.len, &err), 0);
		cr_assert(strstr(err.msg, "host.fn") != NULL, "%s", err.msg);
		lua_pushcfunction(L2, host_fn);
		cr_assert_eq(mig_perm_add(L2, "host.fn", -1), 0);
		lua_pop(L2, 1);
		memset(&err, 0, sizeof err);
		cr_assert_eq(mig_state_restore(L2, b.data, b.len, &err), 0, "%s", err.msg);
		tst_check(L2, "local t = ... return t.f() == 99");
		mig_buf_free(&b);
		lua_close(L2);
	}
}

Test(mig_state, unpersistable_values_are_refused_with_their_path)
{
	lua_State *L = tst_state(14);
	struct mig_buf b = { 0 };
	struct mig_error err = { 0 };

	tst_run(L, "return { inner = { deep = {} } }", 1);
	lua_getfield(L, -1, "inner");
	lua_getfield(L, -1, "deep");
	lua_pushlightuserdata(L, &err);
	lua_setfield(L, -2, "bad");
	lua_pop(L, 2);
	cr_assert_eq(mig_state_persist(L, -1, &b, &err), MIG_ERR_UNPERSISTABLE);
	cr_assert(strstr(err.msg, "light userdata") != NULL, "%s", err.msg);
	cr_assert(strstr(err.msg, "root.field 'inner'.field 'deep'.field 'bad'") != NULL, "%s", err.msg);
	cr_assert_eq(b.len, 0);
	lua_pop(L, 1);

	memset(&err, 0, sizeof err);
	lua_newtable(L);
	lua_pushcfunction(L, host_fn);
	lua_setfield(L, -2, "fn");
	cr_assert_eq(mig_state_persist(L, -1, &b, &err), MIG_ERR_UNPERSISTABLE);
	cr_assert(strstr(err.msg, "field 'fn'") != NULL, "%s", err.msg);
	lua_pop(L, 1);

	/* A function compiled behind the engine's back has no known source. */
	memset(&err, 0, sizeof err);
	cr_assert_eq(luaL_loadstring(L, "return 1"), LUA_OK);
	cr_assert_eq(mig_state_persist(L, -1, &b, &err), MIG_ERR_NOSOURCE);
	lua_pop(L, 1);
	mig_buf_free(&b);
	lua_close(L);
}

struct point {
	double x, y;
};

static int point_persist(lua_State *L)
{
	struct point *p = luaL_checkudata(L, 1, "test.point");

	lua_createtable(L, 2, 0);
	lua_pushnumber(L, p->x);
	lua_rawseti(L, -2, 1);
	lua_pushnumber(L, p->y);
	lua_rawseti(L, -2, 2);
	return 1;
}

static int point_restore(lua_State *L)
{
	struct point *p;

	luaL_checktype(L, 1, LUA_TTABLE);
	p = lua_newuserdatauv(L, sizeof *p, 0);
	lua_rawgeti(L, 1, 1);
	p->x = lua_tonumber(L, -1);
	lua_rawgeti(L, 1, 2);
	p->y = lua_tonumber(L, -1);
	lua_pop(L, 2);
	luaL_setmetatable(L, "test.point");
	return 1;
}

static int point_x(lua_State *L)
{
	struct point *p = luaL_checkudata(L, 1, "test.point");

	lua_pushnumber(L, p->x + p->y);
	return 1;
}

static void point_setup(lua_State *L)
{
	luaL_newmetatable(L, "test.point");
	lua_pushcfunction(L, point_x);
	lua_setfield(L, -2, "sum");
	lua_pushvalue(L, -1);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	cr_assert_eq(mig_udata_register(L, "test.point", point_persist, point_restore), 0);
	lua_pushcfunction(L, point_x);
	cr_assert_eq(mig_perm_add(L, "test.point.sum", -1), 0);
	lua_pop(L, 1);
}

Test(mig_state, userdata_moves_through_its_hooks)
{
	lua_State *L = tst_state(15), *L2;
	struct point *p;
	struct mig_buf b = { 0 };
	struct mig_error err = { 0 };

	point_setup(L);
	tst_run(L, "return {}", 1);
	p = lua_newuserdatauv(L, sizeof *p, 0);
	p->x = 1.5;
	p->y = 2.0;
	luaL_setmetatable(L, "test.point");
	lua_pushvalue(L, -1);
	lua_setfield(L, -3, "p");
	lua_setfield(L, -2, "q");
	cr_assert_eq(mig_state_persist(L, -1, &b, &err), 0, "%s", err.msg);
	lua_close(L);
	L2 = tst_state(15);
	point_setup(L2);
	cr_assert_eq(mig_state_restore(L2, b.data, b.len, &err), 0, "%s", err.msg);
	tst_check(L2, "local t = ... return t.p:sum() == 3.5 and t.p == t.q");
	mig_buf_free(&b);
	lua_close(L2);
}

Test(mig_state, functions_made_by_load_move_with_their_text)
{
	lua_State *L = tst_state(16);

	tst_run(L,
		"local f = load('local a = ... return function(b) return a * b end')(6)\n"
		"local g = load('return x + 1', 'chunk', 't', { x = 41 })\n"
		"return { f = f, g = g }",
		1);
	tst_move(&L);
	tst_check(L, "local t = ... return t.f(7) == 42 and t.g() == 42");
	lua_close(L);
}

Test(mig_state, load_refuses_binary_chunks)
{
	lua_State *L = tst_state(17);

	lua_pushnil(L);
	tst_check(L,
		  "local _ = ...\n"
		  "local f, msg = load(string.dump(function() return 1 end))\n"
		  "assert(f == nil and msg:find('binary'), msg)\n"
		  "f, msg = load('return 1', 'x', 'b')\n"
		  "assert(f == nil, 'mode b accepted')\n"
		  "f, msg = load('\\27Lua junk')\n"
		  "assert(f == nil)\n"
		  "return load('return 1', 'x', 'bt')() == 1");
	{
		uint8_t h[MIG_HASH_LEN];

		cr_assert_eq(mig_source_add(L, "\x1bLua", 4, "=b", 0, h), MIG_ERR_ARG);
	}
	lua_close(L);
}

Test(mig_state, external_sources_travel_by_hash_only)
{
	const char *src = "local secret = 'text of the code segment'\n"
			  "return function() return secret end";
	lua_State *L = tst_state(18), *L2;
	struct mig_buf b = { 0 };
	struct mig_error err = { 0 };
	uint8_t h[MIG_HASH_LEN];

	tst_load(L, src, 1);
	cr_assert_eq(lua_pcall(L, 0, 1, 0), LUA_OK);
	cr_assert_eq(mig_state_persist(L, -1, &b, &err), 0, "%s", err.msg);
	cr_assert_null(memmem(b.data, b.len, "return secret", 13), "external text was written");
	lua_close(L);
	L2 = tst_state(18);
	cr_assert_eq(mig_state_restore(L2, b.data, b.len, &err), MIG_ERR_NOSOURCE);
	cr_assert_eq(mig_source_add(L2, src, strlen(src), "=seg", 1, h), 0);
	memset(&err, 0, sizeof err);
	cr_assert_eq(mig_state_restore(L2, b.data, b.len, &err), 0, "%s", err.msg);
	tst_check(L2, "local f = ... return f() == 'text of the code segment'");
	mig_buf_free(&b);
	lua_close(L2);
}

Test(mig_state, long_chains_of_nested_tables_move)
{
	lua_State *L = tst_state(19);

	tst_run(L,
		"local head = {} local t = head\n"
		"for i = 1, 100000 do local n = { i = i } t.next = n t = n end\n"
		"return head",
		1);
	tst_move(&L);
	tst_check(L,
		  "local t = (...).next local n = 0\n"
		  "while t do n = n + 1 assert(t.i == n) t = t.next end\n"
		  "return n == 100000");
	lua_close(L);
}

Test(mig_state, finalizers_are_carried_and_not_run_at_the_source)
{
	lua_State *L = tst_state(20);

	lua_newtable(L);
	lua_setglobal(L, "log");
	tst_run(L,
		"local t = setmetatable({}, { __gc = function() log[#log + 1] = 'gc' end })\n"
		"return { t = t }",
		1);
	/* forget_finalizers inside tst_move: lua_close must not write. */
	tst_move(&L);
	lua_newtable(L);
	lua_setglobal(L, "log");
	tst_check(L, "local r = ... r.t = nil collectgarbage() collectgarbage() return #log == 1");
	lua_close(L);
}

Test(mig_state, forget_finalizers_silences_lua_close)
{
	lua_State *L = tst_state(21);
	static int ran;

	ran = 0;
	tst_run(L, "FIN = setmetatable({}, { __gc = function() error('should not run') end }) return 1", 1);
	mig_state_forget_finalizers(L);
	lua_close(L);
	cr_assert_eq(ran, 0);
}

Test(mig_state, plain_data_round_trips_with_cycles)
{
	lua_State *L = tst_state(22);
	struct mig_buf b = { 0 };
	struct mig_error err = { 0 };

	tst_run(L, "local t = { 1, 2.5, 'x\\0y', true, k = { } } t.k.up = t t.k2 = t.k return t", 1);
	cr_assert_eq(mig_data_encode(L, -1, &b, &err), 0, "%s", err.msg);
	cr_assert_eq(mig_data_decode(L, b.data, b.len, &err), 0, "%s", err.msg);
	tst_check(L,
		  "local t = ... return t[1] == 1 and t[2] == 2.5 and t[3] == 'x\\0y' and t[4] == true\n"
		  "and t.k.up == t and t.k2 == t.k");
	for (size_t i = 0; i < b.len; i++)
		cr_assert_neq(mig_data_decode(L, b.data, i, &err), 0);
	mig_buf_free(&b);
	lua_pushcfunction(L, host_fn);
	cr_assert_eq(mig_data_encode(L, -1, &b, &err), MIG_ERR_UNPERSISTABLE);
	mig_buf_free(&b);
	lua_close(L);
}

Test(mig_state, engine_pairs_honours___pairs)
{
	lua_State *L = tst_state(23);

	tst_run(L,
		"local t = setmetatable({}, { __pairs = function(t) return function(_, k)\n"
		"  if not k then return 1, 'one' end end, t, nil end })\n"
		"return t",
		1);
	tst_move(&L);
	tst_check(L, "local t = ... local n, v = 0 for k, x in pairs(t) do n = n + 1 v = x end return n == 1 and v == 'one'");
	lua_close(L);
}

Test(mig_state, plain_data_refuses_mutated_bytes_cleanly)
{
	lua_State *L = tst_state(24);
	struct mig_buf b = { 0 };
	struct mig_error err;
	unsigned rng = 99;
	uint8_t *copy;

	tst_run(L, "local t = { 'a', { 'b', 2.5, { true } }, x = { y = { z = 'deep' } } } t.me = t return t", 1);
	cr_assert_eq(mig_data_encode(L, -1, &b, NULL), 0);
	copy = malloc(b.len);
	for (int i = 0; i < 5000; i++) {
		int top = lua_gettop(L);

		memcpy(copy, b.data, b.len);
		rng = rng * 1103515245u + 12345u;
		copy[5 + (rng >> 8) % (b.len - 5)] = (uint8_t)(rng >> 20);
		memset(&err, 0, sizeof err);
		if (mig_data_decode(L, copy, b.len, &err) == 0)
			lua_settop(L, top);
		cr_assert_eq(lua_gettop(L), top);
	}
	free(copy);
	mig_buf_free(&b);
	lua_close(L);
}

/*
 * test_state_coroutines.c: a suspended coroutine moved between resumes
 * (persist, lua_close, restore into a fresh state) gives exactly what it
 * gives when it never moves: deep stacks, varargs, pcall/xpcall, yields
 * inside metamethods and hooks, to-be-closed variables, open upvalues,
 * nested coroutines in every status, and traversals in flight.
 */
#include "test_state_util.h"

#include <stdio.h>

TestSuite(mig_co, .timeout = 120);

static void yield_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_yield(L, 0);
}

enum hookkind { NOHOOK, COUNTHOOK, LINEHOOK };

static void set_hook(lua_State *co, enum hookkind h)
{
	if (h == COUNTHOOK)
		lua_sethook(co, yield_hook, LUA_MASKCOUNT, 997);
	else if (h == LINEHOOK)
		lua_sethook(co, yield_hook, LUA_MASKLINE, 0);
}

/* Runs the coroutine body returned by src to its end, appending what each
 * resume returns to out; with move_every > 0, the coroutine moves to a
 * fresh state after every move_every-th resume. Returns the number of
 * moves made. */
static int transcript(const char *src, unsigned seed, int move_every, enum hookkind hook, char *out,
		      size_t cap)
{
	lua_State *L = tst_state(seed), *co;
	size_t len = 0;
	int moves = 0;

	out[0] = '\0';
	tst_run(L, src, 1);
	co = lua_newthread(L);
	lua_insert(L, -2);
	lua_xmove(L, co, 1);
	set_hook(co, hook);
	for (int step = 0; step < 100000; step++) {
		/* A coroutine stopped by a hook takes no values back. */
		int nres = 0, status = lua_resume(co, L, step == 0 || hook != NOHOOK ? 0 : 1, &nres);

		len += (size_t)snprintf(out + len, cap - len, "#%d:%d", step, status);
		cr_assert(len < cap);
		if (status != LUA_OK && status != LUA_YIELD) {
			len += (size_t)snprintf(out + len, cap - len, " err=%s", lua_tostring(co, -1));
			break;
		}
		for (int i = 1; i <= nres; i++) {
			size_t l;
			const char *s = luaL_tolstring(co, -nres - 1 + i, &l);

			len += (size_t)snprintf(out + len, cap - len, " %s", s);
			lua_pop(co, 1);
		}
		lua_pop(co, nres);
		cr_assert(len < cap);
		if (status == LUA_OK)
			break;
		if (move_every > 0 && step % move_every == 0) {
			tst_move(&L);
			co = lua_tothread(L, -1);
			cr_assert_not_null(co);
			set_hook(co, hook);
			moves++;
		}
		if (hook == NOHOOK)
			lua_pushinteger(co, step + 1);
	}
	lua_close(L);
	return moves;
}

static void same_with_moves(const char *src, enum hookkind hook)
{
	static char ref[1 << 16], moved[1 << 16], moved3[1 << 16];
	int moves;

	transcript(src, 4242, 0, hook, ref, sizeof ref);
	moves = transcript(src, 4242, 1, hook, moved, sizeof moved);
	cr_assert_gt(moves, 2, "the program hardly yielded: %s", ref);
	transcript(src, 4242, 3, hook, moved3, sizeof moved3);
	if (hook == COUNTHOOK) {
		/* The host reinstalls its count hook after a move, which
		 * restarts the count (lua_sethook): when the hook fires is
		 * the host's business, what the agent computes is not. */
		const char *want = strchr(strrchr(ref, '#'), ':');

		cr_assert_str_eq(strchr(strrchr(moved, '#'), ':'), want);
		cr_assert_str_eq(strchr(strrchr(moved3, '#'), ':'), want);
		return;
	}
	cr_assert_str_eq(moved, ref);
	cr_assert_str_eq(moved3, ref);
}

Test(mig_co, suspended_coroutine_continues_where_it_stopped)
{
	same_with_moves("return function(...)\n"
			"  local acc = {}\n"
			"  local a, b = 1, 2.5\n"
			"  for i = 1, 6 do\n"
			"    local got = coroutine.yield(i, a, b, #acc)\n"
			"    acc[#acc + 1] = got\n"
			"    a = a * 3 b = b / 2\n"
			"  end\n"
			"  return table.concat(acc, ',')\n"
			"end",
			NOHOOK);
}

Test(mig_co, deep_stacks_of_200_frames_move)
{
	same_with_moves("local function rec(n, a, b, c)\n"
			"  if n == 0 then local x = coroutine.yield('bottom', a) return x + a end\n"
			"  local r = rec(n - 1, a + 1, b, c)\n"
			"  return r + 1\n"
			"end\n"
			"return function()\n"
			"  local r = rec(200, 0, 'b', {})\n"
			"  coroutine.yield(r)\n"
			"  return rec(3, 1, 2, 3)\n"
			"end",
			NOHOOK);
}

Test(mig_co, varargs_and_tail_calls_move)
{
	same_with_moves("local function va(...)\n"
			"  local n = select('#', ...)\n"
			"  local y = coroutine.yield(n, ...)\n"
			"  return select(2, ...), y\n"
			"end\n"
			"local function tail(x) return coroutine.yield('tail', x) end\n"
			"return function(...)\n"
			"  local a, b, c = va(1, nil, 'x', nil)\n"
			"  coroutine.yield(a, b, c)\n"
			"  local t = tail(5)\n"
			"  return va(t, 'end')\n"
			"end",
			NOHOOK);
}

Test(mig_co, pcall_and_xpcall_frames_move_with_their_handlers)
{
	same_with_moves("return function()\n"
			"  local ok, err = pcall(function()\n"
			"    local v = coroutine.yield('in pcall')\n"
			"    error('boom ' .. tostring(v), 0)\n"
			"  end)\n"
			"  coroutine.yield(ok, err)\n"
			"  local ok2, r = pcall(function(x) return coroutine.yield('again') * x end, 5)\n"
			"  coroutine.yield(ok2, r)\n"
			"  local ok3, msg = xpcall(function()\n"
			"      local inner = { pcall(function() coroutine.yield('nested') error('in', 0) end) }\n"
			"      coroutine.yield('in xpcall', inner[1], inner[2])\n"
			"      local t = nil\n"
			"      return t.x\n"
			"    end,\n"
			"    function(m) return 'handled: ' .. tostring(m) end)\n"
			"  return ok3, msg\n"
			"end",
			NOHOOK);
}

Test(mig_co, yields_inside_metamethods_move)
{
	same_with_moves("local mt = {}\n"
			"mt.__index = function(t, k) return coroutine.yield('index ' .. k) end\n"
			"mt.__newindex = function(t, k, v) rawset(t, k, coroutine.yield('newindex ' .. k)) end\n"
			"mt.__lt = function(a, b) return coroutine.yield('lt') end\n"
			"mt.__le = function(a, b) return coroutine.yield('le') end\n"
			"mt.__eq = function(a, b) return coroutine.yield('eq') end\n"
			"mt.__add = function(a, b) return coroutine.yield('add') end\n"
			"mt.__concat = function(a, b) return coroutine.yield('concat') end\n"
			"mt.__len = function(a) return coroutine.yield('len') end\n"
			"mt.__unm = function(a) return coroutine.yield('unm') end\n"
			"mt.__call = function(self, x) return coroutine.yield('call') end\n"
			"return function()\n"
			"  local a, b = setmetatable({}, mt), setmetatable({}, mt)\n"
			"  local r = {}\n"
			"  r[#r + 1] = a.foo\n"
			"  a.bar = 1\n"
			"  r[#r + 1] = tostring(rawget(a, 'bar'))\n"
			"  r[#r + 1] = tostring(a < b)\n"
			"  r[#r + 1] = tostring(a <= b)\n"
			"  r[#r + 1] = tostring(a == b)\n"
			"  r[#r + 1] = a + 1\n"
			"  r[#r + 1] = 'x' .. a .. 'y' .. 'z'\n"
			"  r[#r + 1] = #a\n"
			"  r[#r + 1] = -a\n"
			"  r[#r + 1] = a(3)\n"
			"  if a < b then r[#r + 1] = 'jumped' end\n"
			"  return table.concat(r, '|')\n"
			"end",
			NOHOOK);
}

Test(mig_co, to_be_closed_variables_move)
{
	same_with_moves("return function()\n"
			"  local log = {}\n"
			"  do\n"
			"    local x <close> = setmetatable({}, { __close = function()\n"
			"      log[#log + 1] = 'closed:' .. tostring(coroutine.yield('closing')) end })\n"
			"    local y <close> = false\n"
			"    log[#log + 1] = 'body:' .. tostring(coroutine.yield('in scope'))\n"
			"  end\n"
			"  local ok, e = pcall(function()\n"
			"    local z <close> = setmetatable({}, { __close = function(_, err)\n"
			"      log[#log + 1] = 'err-close:' .. tostring(err) .. ':' .. tostring(coroutine.yield('closing on error')) end })\n"
			"    coroutine.yield('before error')\n"
			"    error('E', 0)\n"
			"  end)\n"
			"  log[#log + 1] = tostring(ok) .. ':' .. tostring(e)\n"
			"  return table.concat(log, ',')\n"
			"end",
			NOHOOK);
}

Test(mig_co, open_upvalues_stay_linked_to_their_slots)
{
	same_with_moves("return function()\n"
			"  local n = 0\n"
			"  local function bump() n = n + 10 return n end\n"
			"  local got = coroutine.yield('start')\n"
			"  n = n + got\n"
			"  coroutine.yield(bump())\n"
			"  coroutine.yield(n)\n"
			"  local fs = {}\n"
			"  for i = 1, 3 do fs[i] = function() i = i + 1 return i end end\n"
			"  coroutine.yield(fs[1](), fs[2](), fs[1]())\n"
			"  return bump(), n\n"
			"end",
			NOHOOK);
}

Test(mig_co, nested_coroutines_move_in_every_status)
{
	same_with_moves(
		"return function()\n"
		"  local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i * 100) end end)\n"
		"  local inner = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end)\n"
		"  local notstarted = coroutine.create(function(x) return x end)\n"
		"  local dead = coroutine.create(function() end) coroutine.resume(dead)\n"
		"  local errd = coroutine.create(function() error('oops', 0) end) coroutine.resume(errd)\n"
		"  local ok, v = coroutine.resume(inner, 1)\n"
		"  coroutine.yield(gen(), v, coroutine.status(inner), coroutine.status(notstarted),\n"
		"    coroutine.status(dead), coroutine.status(errd))\n"
		"  coroutine.yield(gen(), select(2, coroutine.resume(inner, 21)), coroutine.status(inner))\n"
		"  coroutine.yield(gen(), select(2, coroutine.resume(notstarted, 'ns')), select(2, coroutine.resume(errd)))\n"
		"  return 'done', coroutine.status(notstarted)\n"
		"end",
		NOHOOK);
}

Test(mig_co, traversal_with_string_keys_continues_after_a_move)
{
	same_with_moves("return function()\n"
			"  local t = {}\n"
			"  for i = 1, 60 do t['k' .. i] = i end\n"
			"  for i = 1, 8 do t[i] = i end\n"
			"  t[2.5] = 'f' t[true] = 'b'\n"
			"  local seen = {}\n"
			"  for k, v in pairs(t) do\n"
			"    seen[#seen + 1] = tostring(k)\n"
			"    if type(v) == 'number' and v % 3 == 0 then t[k] = nil end\n"
			"    if type(v) == 'number' and v % 5 == 0 then collectgarbage() end\n"
			"    coroutine.yield(k)\n"
			"  end\n"
			"  local k, v = next(t)\n"
			"  local n = 0\n"
			"  while k ~= nil do\n"
			"    n = n + 1\n"
			"    if n % 2 == 0 then t[k] = nil collectgarbage() end\n"
			"    coroutine.yield('manual', k)\n"
			"    k, v = next(t, k)\n"
			"  end\n"
			"  return #seen, n\n"
			"end",
			NOHOOK);
}

/* Address-hashed keys are visited in an order that differs between runs
 * (allocation addresses), so the program checks the traversal itself:
 * every key exactly once, removed keys not again. */
Test(mig_co, traversal_with_object_keys_visits_each_key_once)
{
	static char out[1 << 16];
	const char *src =
		"return function()\n"
		"  local t, keys = {}, {}\n"
		"  for i = 1, 40 do local k = { id = i } keys[i] = k t[k] = i end\n"
		"  for i = 1, 10 do t[function() return i end] = 100 + i end\n"
		"  for i = 1, 10 do t['s' .. i] = 200 + i end\n"
		"  local co = coroutine.create(function() end) t[co] = 300\n"
		"  local seen, n, removed = {}, 0, 0\n"
		"  for k, v in pairs(t) do\n"
		"    assert(not seen[v], 'visited twice: ' .. v)\n"
		"    seen[v] = true n = n + 1\n"
		"    if n % 4 == 0 then t[k] = nil removed = removed + 1 collectgarbage() end\n"
		"    coroutine.yield()\n"
		"  end\n"
		"  assert(n == 61, 'visited ' .. n)\n"
		"  local m, k = 0, nil\n"
		"  repeat\n"
		"    k = next(t, k)\n"
		"    if k ~= nil then m = m + 1 if m % 3 == 0 then t[k] = nil end coroutine.yield() end\n"
		"  until k == nil\n"
		"  assert(m == 61 - removed, 'manual ' .. m)\n"
		"  local c = 0 for _ in pairs(t) do c = c + 1 end\n"
		"  return 'ok', n, m, c\n"
		"end";

	transcript(src, 77, 1, NOHOOK, out, sizeof out);
	cr_assert(strstr(out, " ok 61 ") != NULL, "%s", out + (strlen(out) > 300 ? strlen(out) - 300 : 0));
	transcript(src, 77, 7, NOHOOK, out, sizeof out);
	cr_assert(strstr(out, " ok 61 ") != NULL, "%s", out + (strlen(out) > 300 ? strlen(out) - 300 : 0));
}

Test(mig_co, yields_from_count_hooks_move)
{
	same_with_moves("return function()\n"
			"  local s = 0\n"
			"  for i = 1, 20000 do s = s + i % 7 end\n"
			"  local t = {}\n"
			"  for i = 1, 300 do t[#t + 1] = tostring(i) end\n"
			"  return s, #table.concat(t)\n"
			"end",
			COUNTHOOK);
}

Test(mig_co, yields_from_line_hooks_move)
{
	same_with_moves("return function()\n"
			"  local s = 0\n"
			"  for i = 1, 30 do\n"
			"    s = s + i\n"
			"  end\n"
			"  return s\n"
			"end",
			LINEHOOK);
}

Test(mig_co, running_and_main_threads_are_refused)
{
	lua_State *L = tst_state(5);
	struct mig_buf b = { 0 };
	struct mig_error err = { 0 };

	lua_pushthread(L);
	cr_assert_eq(mig_state_persist(L, -1, &b, &err), MIG_ERR_BUSY, "%s", err.msg);
	lua_pop(L, 1);
	{
		lua_State *co = lua_newthread(L);

		lua_newtable(co);
		lua_pushthread(L);
		lua_xmove(L, co, 1);
		lua_setfield(co, -2, "main");
		memset(&err, 0, sizeof err);
		cr_assert_eq(mig_state_persist(co, -1, &b, &err), MIG_ERR_UNPERSISTABLE, "%s", err.msg);
		cr_assert(strstr(err.msg, "field 'main'") != NULL, "%s", err.msg);
	}
	mig_buf_free(&b);
	lua_close(L);
}

static int host_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	lua_pushinteger(L, (lua_Integer)ctx + lua_tointeger(L, -1));
	return 1;
}

static int host_yield(lua_State *L)
{
	return lua_yieldk(L, 0, 40, host_k);
}

static int host_counter(lua_State *L)
{
	lua_Integer n = lua_tointeger(L, lua_upvalueindex(1)) + 1;

	lua_pushinteger(L, n);
	lua_copy(L, -1, lua_upvalueindex(1));
	return 1;
}

static void host_setup(lua_State *L)
{
	lua_pushcfunction(L, host_yield);
	cr_assert_eq(mig_perm_add(L, "host.yield", -1), 0);
	lua_setglobal(L, "hostyield");
	cr_assert_eq(mig_cont_add(L, "host.k", host_k), 0);
	cr_assert_eq(mig_cont_add(L, "host.k2", host_k), MIG_ERR_ARG);
	cr_assert_eq(mig_cfunc_add(L, "host.counter", host_counter), 0);
}

Test(mig_co, host_continuations_and_c_closures_known_by_name_move)
{
	lua_State *L = tst_state(6), *L2, *co;
	struct mig_buf b = { 0 };
	struct mig_error err = { 0 };
	int nres;

	host_setup(L);
	tst_run(L, "return function(counter) counter() local v = hostyield() return v, counter() end", 1);
	co = lua_newthread(L);
	lua_insert(L, -2);
	lua_xmove(L, co, 1);
	lua_pushinteger(co, 0);
	lua_pushcclosure(co, host_counter, 1);
	cr_assert_eq(lua_resume(co, L, 1, &nres), LUA_YIELD, "%s", lua_tostring(co, -1));
	cr_assert_eq(nres, 0);
	cr_assert_eq(mig_state_persist(L, -1, &b, &err), 0, "%s", err.msg);
	lua_close(L);
	L2 = tst_state(6);
	host_setup(L2);
	cr_assert_eq(mig_state_restore(L2, b.data, b.len, &err), 0, "%s", err.msg);
	co = lua_tothread(L2, -1);
	lua_pushinteger(co, 2);
	cr_assert_eq(lua_resume(co, L2, 1, &nres), LUA_OK, "%s", lua_tostring(co, -1));
	cr_assert_eq(nres, 2);
	cr_assert_eq(lua_tointeger(co, -2), 42);
	cr_assert_eq(lua_tointeger(co, -1), 2, "the C closure's upvalue did not move");
	mig_buf_free(&b);
	lua_close(L2);
}

Test(mig_co, generational_collector_on_both_sides)
{
	static char ref[1 << 14], moved[1 << 14];
	const char *src = "collectgarbage('generational')\n"
			  "return function()\n"
			  "  local keep = {}\n"
			  "  for i = 1, 2000 do keep[i % 50 + 1] = { i, tostring(i) } if i % 100 == 0 then\n"
			  "    collectgarbage('step') coroutine.yield(i, #keep, keep[1][2]) end end\n"
			  "  return #keep\n"
			  "end";

	transcript(src, 99, 0, NOHOOK, ref, sizeof ref);
	tst_gen_target = 1;
	transcript(src, 99, 1, NOHOOK, moved, sizeof moved);
	tst_gen_target = 0;
	cr_assert_str_eq(moved, ref);
}

Test(mig_co, library_iterators_in_flight_move)
{
	same_with_moves("return function()\n"
			"  local out = {}\n"
			"  for i, v in ipairs({ 'a', 'b', 'c' }) do coroutine.yield(i, v) end\n"
			"  for w, n in ('one=1, two=2, three=3'):gmatch('(%a+)=(%d)') do coroutine.yield(w, n) end\n"
			"  for w in ('x y z'):gmatch('%a', 3) do coroutine.yield(w) end\n"
			"  for p, c in utf8.codes('h\\u{e9}!') do coroutine.yield(p, c) end\n"
			"  local g = ('aaa'):gmatch('a*') coroutine.yield(g(), g(), g())\n"
			"  return 'done'\n"
			"end",
			NOHOOK);
}

/* string.format leaves its buffer's light userdata in registers it has
 * finished with; a move at any line after it must not trip over them. */
Test(mig_co, stale_values_in_dead_registers_do_not_block_a_move)
{
	static const char *src =
		"local function move() coroutine.yield() end\n"
		"return function()\n"
		"  local F, out = string.format, {}\n"
		"  out[#out + 1] = F('%x %X %#x %o', 255, 255, 255, 8) .. F('%d', math.mininteger)\n"
		"  move()\n"
		"  out[#out + 1] = F('%f %.2f %10.3f %-10.1f| %e', 3.14159, 3.14159, 3.14159, 3.14159, 1.5)\n"
		"  out[#out + 1] = F('%g %g', 1e20, 2 / 3) .. F('%5.1f|%-8.3e', 2.25, 1234.5)\n"
		"  move()\n"
		"  for i = 1, 6 do out[#out + 1] = F('%5.2f|%-8s|%q', i / 3, ('x'):rep(i), 'q' .. i) move() end\n"
		"  return table.concat(out, ';')\n"
		"end";

	same_with_moves(src, NOHOOK);
	same_with_moves(src, LINEHOOK);
}

/* After a first move the table has an overlay; keys added later are in
 * Lua's raw order behind it. Removing each key as it is visited (and
 * collecting, so removed keys die) must still visit every key once, across
 * further moves. */
Test(mig_co, traversal_over_keys_added_after_a_move_visits_each_once)
{
	static char out[1 << 15];
	const char *src =
		"return function()\n"
		"  local t = {}\n"
		"  for i = 1, 10 do t[{ i }] = i end\n"
		"  coroutine.yield('first')\n"
		"  for i = 11, 25 do t[{ i }] = i end\n"
		"  t.s = 26\n"
		"  local seen, n = {}, 0\n"
		"  for k, v in pairs(t) do\n"
		"    assert(not seen[v], 'twice ' .. v)\n"
		"    seen[v] = true n = n + 1\n"
		"    if v >= 20 then t[k] = nil collectgarbage() coroutine.yield() end\n"
		"  end\n"
		"  local left = 0 for _ in pairs(t) do left = left + 1 end\n"
		"  return 'ok', n, left\n"
		"end";

	transcript(src, 88, 1, NOHOOK, out, sizeof out);
	cr_assert(strstr(out, " ok 26 19") != NULL, "%s", out + (strlen(out) > 300 ? strlen(out) - 300 : 0));
	transcript(src, 88, 2, NOHOOK, out, sizeof out);
	cr_assert(strstr(out, " ok 26 19") != NULL, "%s", out + (strlen(out) > 300 ? strlen(out) - 300 : 0));
}

/* A host that re-arms its count hook after a hook yield (as agentd does
 * after a restore) restarts the count, so the frame that was stopped keeps
 * Lua's hook-yield mark while it runs on and yields some other way. That
 * stale mark must not make the state unmovable. */
Test(mig_co, frame_left_by_a_hook_yield_moves_after_a_plain_yield)
{
	lua_State *L = tst_state(777u), *co;
	int nres = 0;

	tst_run(L,
		"return function()\n"
		"  local s = 0\n"
		"  for i = 1, 100 do\n"
		"    s = s + i\n"
		"    if i % 10 == 0 then coroutine.yield(s) end\n"
		"  end\n"
		"  return s\n"
		"end\n",
		1);
	co = lua_newthread(L);
	lua_insert(L, -2);
	lua_xmove(L, co, 1);
	lua_sethook(co, yield_hook, LUA_MASKCOUNT, 5);
	cr_assert_eq(lua_resume(co, L, 0, &nres), LUA_YIELD);
	cr_assert_eq(nres, 0, "expected a hook yield first");
	lua_sethook(co, yield_hook, LUA_MASKCOUNT, 1000000);
	cr_assert_eq(lua_resume(co, L, 0, &nres), LUA_YIELD);
	cr_assert_eq(nres, 1);
	cr_assert_eq(lua_tointeger(co, -1), 55);
	lua_pop(co, nres);
	tst_move(&L);
	co = lua_tothread(L, -1);
	cr_assert_not_null(co);
	lua_sethook(co, yield_hook, LUA_MASKCOUNT, 1000000);
	for (int i = 0; i < 20; i++) {
		int st = lua_resume(co, L, 0, &nres);

		if (st == LUA_OK)
			break;
		cr_assert_eq(st, LUA_YIELD, "%s", lua_tostring(co, -1));
		lua_pop(co, nres);
	}
	cr_assert_eq(lua_status(co), LUA_OK);
	cr_assert_eq(lua_tointeger(co, -1), 5050);
	lua_close(L);
}

/*
 * test_state_hostile.c: restoring bytes that are not a state the engine
 * wrote (cut at any offset, mutated, another version, another seed) fails
 * with the right code, never crashes, and leaves the target state usable.
 * Run under the sanitizer build, these also check that nothing is read out
 * of bounds or leaked.
 */
#include "test_state_util.h"

#include <stdio.h>

TestSuite(mig_hostile, .timeout = 280);

#define SEED 31337u

/* A state with a bit of everything: a coroutine suspended inside pcall
 * inside a metamethod inside a traversal, closures sharing upvalues,
 * object keys, removed keys, a wrapped generator, strings of all sizes. */
static const char *rich_src =
	"local shared = { 'shared', 1.5, -0.0, math.mininteger }\n"
	"local mt = { __index = function(t, k) return coroutine.yield('idx', k) end }\n"
	"local obj = setmetatable({}, mt)\n"
	"local weird = { [shared] = 1, [print] = 2, [true] = 3, [2.5] = 4, s = string.rep('x', 300) }\n"
	"local gen = coroutine.wrap(function() local i = 0 while true do i = i + 1 coroutine.yield(i) end end)\n"
	"local n = 0\n"
	"local function inc() n = n + 1 return n end\n"
	"return function()\n"
	"  local t = {}\n"
	"  for i = 1, 20 do t['k' .. i] = i end\n"
	"  for k, v in pairs(t) do\n"
	"    if v % 2 == 0 then t[k] = nil end\n"
	"    local ok, r = pcall(function() return obj[k] end)\n"
	"    inc() gen()\n"
	"    local x <close> = setmetatable({}, { __close = function() end })\n"
	"    coroutine.yield(ok, r, weird, shared)\n"
	"  end\n"
	"  return n\n"
	"end\n";

/* Persists the rich coroutine after a few resumes into b. */
static void rich_state(struct mig_buf *b)
{
	lua_State *L = tst_state(SEED), *co;
	struct mig_error err = { 0 };
	int nres;

	tst_run(L, rich_src, 1);
	co = lua_newthread(L);
	lua_insert(L, -2);
	lua_xmove(L, co, 1);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(lua_resume(co, L, 0, &nres), LUA_YIELD, "%s", lua_tostring(co, -1));
		lua_pop(co, nres);
	}
	cr_assert_eq(mig_state_persist(L, -1, b, &err), 0, "%s", err.msg);
	mig_state_forget_finalizers(L);
	lua_close(L);
}

/* Resumes a restored coroutine to its end (or error): whatever the bytes
 * said, this must not crash. */
static void drive(lua_State *L)
{
	lua_State *co = lua_tothread(L, -1);
	int nres;

	if (co == NULL)
		return;
	for (int i = 0; i < 200; i++) {
		int st = lua_status(co);

		if (st != LUA_YIELD && !(st == LUA_OK && lua_gettop(co) > 0))
			break;
		st = lua_resume(co, L, 0, &nres);
		if (st != LUA_YIELD)
			break;
		lua_pop(co, nres);
	}
}

Test(mig_hostile, rich_state_restores_and_runs_to_the_end)
{
	struct mig_buf b = { 0 };
	struct mig_error err = { 0 };
	lua_State *L;
	lua_State *co;
	int nres, st;

	rich_state(&b);
	L = tst_state(SEED);
	cr_assert_eq(mig_state_restore(L, b.data, b.len, &err), 0, "%s", err.msg);
	co = lua_tothread(L, -1);
	cr_assert_not_null(co);
	while ((st = lua_resume(co, L, 0, &nres)) == LUA_YIELD)
		lua_pop(co, nres);
	cr_assert_eq(st, LUA_OK, "%s", lua_tostring(co, -1));
	cr_assert_eq(lua_tointeger(co, -1), 20);
	mig_buf_free(&b);
	lua_close(L);
}

Test(mig_hostile, every_truncation_is_reported_as_truncated)
{
	struct mig_buf b = { 0 };
	struct mig_error err;
	lua_State *L;
	int top;

	rich_state(&b);
	L = tst_state(SEED);
	top = lua_gettop(L);
	for (size_t len = 0; len < b.len; len++) {
		int rc;

		memset(&err, 0, sizeof err);
		rc = mig_state_restore(L, b.data, len, &err);
		cr_assert_eq(rc, MIG_ERR_TRUNCATED, "cut at %zu of %zu: %d %s", len, b.len, rc, err.msg);
		cr_assert_eq(lua_gettop(L), top);
		if (len % 256 == 0)
			lua_gc(L, LUA_GCCOLLECT);
	}
	/* The state that saw all those failures still works. */
	memset(&err, 0, sizeof err);
	cr_assert_eq(mig_state_restore(L, b.data, b.len, &err), 0, "%s", err.msg);
	drive(L);
	cr_assert_eq(luaL_dostring(L, "local t = {} for i = 1, 1000 do t[i] = {} end collectgarbage() return #t"),
		     LUA_OK);
	mig_buf_free(&b);
	lua_close(L);
}

Test(mig_hostile, random_mutations_never_crash)
{
	struct mig_buf b = { 0 };
	struct mig_error err;
	lua_State *L;
	uint8_t *copy;
	unsigned rng = 12345;
	int ok = 0, failed = 0;

	rich_state(&b);
	copy = malloc(b.len);
	cr_assert_not_null(copy);
	L = tst_state(SEED);
	for (int iter = 0; iter < 3000; iter++) {
		int nmut, rc, top = lua_gettop(L);

		memcpy(copy, b.data, b.len);
		rng = rng * 1103515245u + 12345u;
		nmut = 1 + (int)((rng >> 16) % 4);
		for (int m = 0; m < nmut; m++) {
			size_t at;

			rng = rng * 1103515245u + 12345u;
			/* Keep the header mostly intact so that the body is
			 * what gets exercised. */
			at = 20 + (size_t)(rng >> 8) % (b.len - 20);
			rng = rng * 1103515245u + 12345u;
			copy[at] = (uint8_t)(rng >> 16);
		}
		memset(&err, 0, sizeof err);
		rc = mig_state_restore(L, copy, b.len, &err);
		if (rc == 0) {
			ok++;
			drive(L);
			lua_settop(L, top);
		} else {
			failed++;
			cr_assert_eq(lua_gettop(L), top);
			cr_assert(rc < 0 && err.msg[0] != '\0');
		}
		if (iter % 64 == 0)
			lua_gc(L, LUA_GCCOLLECT);
	}
	cr_assert_gt(failed, 0);
	cr_log_info("mutations: %d restored, %d refused", ok, failed);
	free(copy);
	mig_buf_free(&b);
	lua_close(L);
}

Test(mig_hostile, header_checks_come_first)
{
	struct mig_buf b = { 0 };
	struct mig_error err = { 0 };
	struct mig_state_info info;
	lua_State *L;
	uint8_t *copy;

	rich_state(&b);
	copy = malloc(b.len);
	cr_assert_not_null(copy);
	L = tst_state(SEED);

	cr_assert_eq(mig_state_peek(b.data, b.len, &info), 0);
	cr_assert_eq(info.version, MIG_STATE_VERSION);
	cr_assert_eq(info.seed, SEED);
	cr_assert_gt(info.nobjects, 10);

	memcpy(copy, b.data, b.len);
	copy[4] = MIG_STATE_VERSION + 1;
	cr_assert_eq(mig_state_restore(L, copy, b.len, &err), MIG_ERR_VERSION);
	memcpy(copy, b.data, b.len);
	copy[0] = 'X';
	cr_assert_eq(mig_state_restore(L, copy, b.len, &err), MIG_ERR_MALFORMED);
	memcpy(copy, b.data, b.len);
	copy[19] = 0x7f; /* billions of objects */
	cr_assert_lt(mig_state_restore(L, copy, b.len, &err), 0);
	memcpy(copy, b.data, b.len);
	copy[8] ^= 1; /* another seed */
	cr_assert_eq(mig_state_restore(L, copy, b.len, &err), MIG_ERR_ARG);
	/* Trailing bytes are not a state. */
	{
		uint8_t *longer = malloc(b.len + 1);

		memcpy(longer, b.data, b.len);
		longer[b.len] = 0;
		memset(&err, 0, sizeof err);
		cr_assert_eq(mig_state_restore(L, longer, b.len + 1, &err), MIG_ERR_MALFORMED, "%s", err.msg);
		free(longer);
	}
	cr_assert_eq(lua_gettop(L), 0);
	free(copy);
	mig_buf_free(&b);
	lua_close(L);
}

Test(mig_hostile, restore_into_a_state_without_env_is_refused)
{
	struct mig_buf b = { 0 };
	struct mig_error err = { 0 };
	lua_State *L;

	rich_state(&b);
	L = mig_lua_newstate(tst_alloc, NULL, SEED);
	luaL_openlibs(L);
	cr_assert_eq(mig_state_restore(L, b.data, b.len, &err), MIG_ERR_ARG);
	cr_assert_eq(lua_gettop(L), 0);
	mig_buf_free(&b);
	lua_close(L);
}

/* A to-be-closed variable whose value lost its __close after it was
 * declared is a state Lua itself cannot close safely (its own assertion
 * fires in debug builds); found by fuzz_state_restore as a one-bit flip.
 * The restorer refuses such a slot instead of building it. */
Test(mig_hostile, tbc_slot_without_close_is_refused)
{
	lua_State *L = tst_state(SEED), *L2, *co;
	struct mig_buf b = { 0 };
	struct mig_error err = { 0 };
	struct mig_state_info info;
	int nres, rc;

	tst_run(L,
		"local mt = { __close = function() end }\n"
		"local co = coroutine.create(function()\n"
		"  local x <close> = setmetatable({}, mt)\n"
		"  coroutine.yield()\n"
		"end)\n"
		"coroutine.resume(co)\n"
		"mt.__close = nil\n"
		"return co\n",
		1);
	co = lua_tothread(L, -1);
	cr_assert_eq(lua_status(co), LUA_YIELD);
	cr_assert_eq(mig_state_persist(L, -1, &b, &err), 0, "%s", err.msg);
	mig_state_forget_finalizers(L);
	lua_close(L);
	cr_assert_eq(mig_state_peek(b.data, b.len, &info), 0);
	L2 = tst_state(info.seed);
	rc = mig_state_restore(L2, b.data, b.len, &err);
	cr_assert_eq(rc, MIG_ERR_MALFORMED, "restore gave %d (%s)", rc, err.msg);
	cr_assert(strstr(err.msg, "to-be-closed") != NULL, "%s", err.msg);
	/* The target state is still usable. */
	tst_run(L2, "return 1 + 1", 1);
	cr_assert_eq(lua_tointeger(L2, -1), 2);
	(void)nres;
	mig_buf_free(&b);
	lua_close(L2);
}

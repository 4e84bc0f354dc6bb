/*
 * test_lua.c: the pinned Lua is 5.4.7 and states made with a chosen seed
 * have that seed, so `next` visits string keys in the same order.
 */
#include "mig_lua.h"

#include <criterion/criterion.h>
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

static void *alloc(void *ud, void *p, size_t osize, size_t nsize)
{
	(void)ud;
	(void)osize;
	if (nsize == 0) {
		free(p);
		return NULL;
	}
	return realloc(p, nsize);
}

/* The keys of a table built by the same code, in `next` order. */
static void key_order(lua_State *L, char *out, size_t len)
{
	const char *chunk =
		"local t = {} for i = 1, 64 do t['key' .. i] = i end "
		"local s = {} for k in pairs(t) do s[#s + 1] = k end "
		"return table.concat(s, ',')";

	luaL_openlibs(L);
	cr_assert_eq(luaL_dostring(L, chunk), LUA_OK, "%s", lua_tostring(L, -1));
	strncpy(out, lua_tostring(L, -1), len - 1);
	out[len - 1] = '\0';
}

Test(mig_lua, pinned_lua_is_5_4_7)
{
	cr_assert_str_eq(LUA_RELEASE, "Lua 5.4.7");
}

Test(mig_lua, state_gets_the_seed_it_was_given)
{
	lua_State *L = mig_lua_newstate(alloc, NULL, 0xdeadbeefu);

	cr_assert_not_null(L);
	cr_assert_eq(mig_lua_seed(L), 0xdeadbeefu);
	lua_close(L);
}

Test(mig_lua, same_seed_gives_same_next_order)
{
	static char a[2048], b[2048];
	lua_State *L1 = mig_lua_newstate(alloc, NULL, 12345u);
	lua_State *L2 = mig_lua_newstate(alloc, NULL, 12345u);

	key_order(L1, a, sizeof a);
	key_order(L2, b, sizeof b);
	cr_assert_str_eq(a, b);
	lua_close(L1);
	lua_close(L2);
}

Test(mig_lua, random_seeds_differ)
{
	lua_State *L1 = mig_lua_newstate_random(alloc, NULL);
	lua_State *L2 = mig_lua_newstate_random(alloc, NULL);

	/* 2^-32 chance of a false failure. */
	cr_assert_neq(mig_lua_seed(L1), mig_lua_seed(L2));
	lua_close(L1);
	lua_close(L2);
}

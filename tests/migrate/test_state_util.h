/*
 * test_state_util.h: helpers shared by the engine's tests: states made the
 * way the daemon makes them, agent code registered as source, and the move
 * itself (persist, forget finalizers, close, restore into a fresh state).
 */
#ifndef TEST_STATE_UTIL_H
#define TEST_STATE_UTIL_H

#include "mig_lua.h"
#include "mig_state.h"

#include <criterion/criterion.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

static void *tst_alloc(void *ud, void *p, size_t osize, size_t nsize)
{
	(void)ud;
	(void)osize;
	if (nsize == 0) {
		free(p);
		return NULL;
	}
	return realloc(p, nsize);
}

/* A state as the daemon makes it. */
static inline lua_State *tst_state(unsigned seed)
{
	lua_State *L = mig_lua_newstate(tst_alloc, NULL, seed);

	cr_assert_not_null(L);
	luaL_openlibs(L);
	cr_assert_eq(mig_env_open(L), 0);
	return L;
}

/* Registers src as agent code (travelling inside the state unless
 * external) and pushes its main function. */
static inline void tst_load(lua_State *L, const char *src, int external)
{
	uint8_t h[MIG_HASH_LEN];
	struct mig_error err = { 0 };

	cr_assert_eq(mig_source_add(L, src, strlen(src), "=agent", external, h), 0);
	cr_assert_eq(mig_source_load(L, h, &err), 0, "%s", err.msg);
}

/* Runs agent code src with nres results left on the stack. */
static inline void tst_run(lua_State *L, const char *src, int nres)
{
	tst_load(L, src, 0);
	if (lua_pcall(L, 0, nres, 0) != LUA_OK)
		cr_assert_fail("agent code failed: %s", lua_tostring(L, -1));
}

/* Runs host-side check code with the value at the top as `...`; the
 * chunk must return true or raise. Pops the checked value. */
static inline void tst_check(lua_State *L, const char *code)
{
	if (luaL_loadstring(L, code) != LUA_OK)
		cr_assert_fail("check code: %s", lua_tostring(L, -1));
	lua_insert(L, -2);
	if (lua_pcall(L, 1, 1, 0) != LUA_OK)
		cr_assert_fail("check failed: %s", lua_tostring(L, -1));
	cr_assert(lua_toboolean(L, -1), "check returned false: %s", code);
	lua_pop(L, 1);
}

/* When set, tst_move restores into a state running the generational
 * collector. */
static int tst_gen_target;

/* Persists the value at the top of *Lp, closes that state and restores
 * the value into a brand-new one (same seed), which replaces *Lp with the
 * value at its top. Returns the number of bytes moved. */
static inline size_t tst_move(lua_State **Lp)
{
	lua_State *L = *Lp, *L2;
	struct mig_buf b = { 0 };
	struct mig_error err = { 0 };
	struct mig_state_info info;
	size_t len;
	int rc;

	rc = mig_state_persist(L, -1, &b, &err);
	cr_assert_eq(rc, 0, "persist: %d %s", rc, err.msg);
	mig_state_forget_finalizers(L);
	lua_close(L);
	cr_assert_eq(mig_state_peek(b.data, b.len, &info), 0);
	L2 = tst_state(info.seed);
	if (tst_gen_target)
		lua_gc(L2, LUA_GCGEN, 0, 0);
	rc = mig_state_restore(L2, b.data, b.len, &err);
	cr_assert_eq(rc, 0, "restore: %d %s", rc, err.msg);
	len = b.len;
	mig_buf_free(&b);
	*Lp = L2;
	return len;
}

#endif
